/*
 * The IAM HTTP API (DESIGN.md §6; docs/internals/iam.md "HTTP API"): request
 * body parsers (strict JSON: only the listed members, typed, bounded — also
 * the fuzz target's entry points) and the route table over the IAM core.
 */
#ifndef COFFER_IAM_API_H
#define COFFER_IAM_API_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/compiler.h"
#include "base/limits.h"
#include "base/secmem.h"
#include "http/server.h"
#include "iam/iam.h"

/* ---- request bodies ----
 * Each parser takes the raw body (len bytes, at most CF_IAM_MAX_BODY) and
 * fails with CF_E_PARSE / CF_E_INVAL / CF_E_TOO_LARGE and a detail naming the
 * field; outputs are written only on success. Parsers marked "empty ok"
 * accept an empty body as {}. */

/* {"api_key": string, "tenant"?: id}. ret_key: the key in new secret memory,
 * NUL-terminated (free with cf_secret_free); ret_tenant "" when absent. */
int cf_iam_req_token(const void *body, size_t len, cf_secret *ret_key,
                     char ret_tenant[CF_ID_MAX_LEN + 1]) CF_WUR;
/* {"id"?: id, "name": string}. ret_id "" when absent. */
int cf_iam_req_tenant(const void *body, size_t len, char ret_id[CF_ID_MAX_LEN + 1],
                      char ret_name[CF_NAME_MAX_LEN + 1]) CF_WUR;
/* {"kind": user|service|developer|client, "name": string, "roles": [role, ...]}. */
int cf_iam_req_principal(const void *body, size_t len, char ret_kind[16],
                         char ret_name[CF_NAME_MAX_LEN + 1], uint32_t *ret_roles) CF_WUR;
/* {"ttl"?: seconds 1..CF_IAM_APIKEY_TTL_MAX}; empty ok. *ret_ttl 0 when absent. */
int cf_iam_req_apikey(const void *body, size_t len, uint64_t *ret_ttl) CF_WUR;
/* {"x25519": base64url of 32 bytes}; key validated with cf_iam_clientkey_check. */
int cf_iam_req_clientkey(const void *body, size_t len, uint8_t ret_pub[32]) CF_WUR;
/* {"reason"?: string}; empty ok. ret_reason "" when absent. */
int cf_iam_req_reason(const void *body, size_t len, char ret_reason[CF_IAM_MAX_REASON + 1]) CF_WUR;

/* ---- routes ---- */

/* Writes one audit event (the service's cf_svc_audit); see cf_iam_audit_fn. */
typedef struct {
    cf_iam *iam;
    cf_iam_audit_fn audit;
    void *audit_arg;
} cf_iam_api;

/* Registers every IAM route on srv (before it starts). api must outlive srv. */
int cf_iam_api_register(cf_http_server *srv, cf_iam_api *api) CF_WUR;

#endif
