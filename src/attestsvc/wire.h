/*
 * Wire formats the attestation service speaks (docs/internals/attestation-service.md
 * "Wire formats"), with strict, bounded parsers (fuzz/attestsvc/attestsvc_wire.c):
 *
 *   evidence object      {"platform":"sev-snp","report":b64url,"cert":b64url}
 *   TEE runtime          POST {tee}/v1/evidence {"nonce": 64 hex} ->
 *                        {"tee_id","public_key" (b64url X25519),"deployment","build_hash",
 *                         "evidence": <evidence object>}
 *                        with report_data = cf_binding_compute(public_key, nonce)
 *   KMS registry         GET {kms}/v1/registry/tees -> {"tees":[{id, tenant, deployment,
 *                        platform, public_key, measurement, status, last_attested_at,
 *                        endpoint?}, ...], "next"?: cursor}
 *                        POST {kms}/v1/registry/nonce -> {"nonce","expires_at"}
 *   public API requests  POST /v1/attestation/verify {"deployment_id","nonce"?}
 *                        POST /v1/attestation/evidence {"evidence","deployment"?,"tenant"?,
 *                                                       "nonce"?,"public_key"?}
 *
 * Strictness: our own request bodies and the evidence object accept exactly the
 * fields above. Answers of other services (TEE runtime, KMS) must have the
 * fields above with the right types and sizes but may carry additional members,
 * which are ignored: those services evolve on their own schedule, and nothing
 * they add is trusted or used. A malformed field is an error naming it, e.g.
 * "tees[3].measurement: field 'measurement' must be 96 hex digits".
 *
 * Ownership: all structs are plain values owned by the caller; parsers write
 * *ret only on success. cf_attest_tee_list owns its array (cf_attest_tee_list_free).
 */
#ifndef COFFER_ATTESTSVC_WIRE_H
#define COFFER_ATTESTSVC_WIRE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "attest/binding.h"
#include "attest/measure.h"
#include "base/buf.h"
#include "base/compiler.h"
#include "base/limits.h"

#define CF_ATTEST_X25519_LEN 32

/* Raw evidence as it travels between TEE, services and clients. */
typedef struct {
    char platform[CF_ATTESTSVC_MAX_PLATFORM_LEN + 1]; /* "sev-snp" */
    uint8_t report[CF_ATTESTSVC_MAX_REPORT];
    size_t report_len;
    uint8_t cert[CF_CERT_MAX_BYTES]; /* VCEK/VLEK, DER or PEM */
    size_t cert_len;
} cf_attest_evidence;

/* An id of the platform (TEE id, tenant): 1..CF_ID_MAX_LEN of [A-Za-z0-9._-],
 * starting with a letter or digit (safe in URL paths, JSON and logs). */
bool cf_attest_id_valid(const char *s);
/* A deployment name (manifest rule): 1..CF_NAME_MAX_LEN, same alphabet. */
bool cf_attest_name_valid(const char *s);
/* An http:// or https:// base URL of at most CF_ATTESTSVC_MAX_ENDPOINT bytes,
 * printable ASCII without spaces, quotes or backslashes, no trailing '/'. */
bool cf_attest_endpoint_valid(const char *s);

/* The evidence object (exact keys). Platforms other than "sev-snp" are
 * CF_E_UNSUPPORTED. */
int cf_attest_evidence_from_json(const json_t *obj, cf_attest_evidence *ret) CF_WUR;
/* {"platform","report","cert"}; a new reference or NULL (allocation failure). */
json_t *cf_attest_evidence_to_json(const cf_attest_evidence *e);

/* ---- TEE runtime: POST /v1/evidence ---- */

/* Request body {"nonce":"<64 hex>"} appended to out (NUL-terminated). */
int cf_attest_tee_request_build(const uint8_t nonce[CF_BINDING_NONCE_LEN], cf_buf *out) CF_WUR;

typedef struct {
    char tee_id[CF_ID_MAX_LEN + 1];
    uint8_t public_key[CF_ATTEST_X25519_LEN];
    char deployment[CF_NAME_MAX_LEN + 1];
    char build_hash[CF_BUILD_HASH_STR_LEN + 1]; /* normalised "sha256:<lowercase hex>" */
    cf_attest_evidence evidence;
} cf_attest_tee_evidence;

/* Parses a TEE's answer (at most CF_ATTESTSVC_TEE_MAX_RESPONSE bytes). */
int cf_attest_tee_evidence_parse(const void *data, size_t len, cf_attest_tee_evidence *ret) CF_WUR;

/* ---- KMS registry ---- */

typedef struct {
    char id[CF_ID_MAX_LEN + 1];
    char tenant[CF_ID_MAX_LEN + 1];         /* "" if the listing has none */
    char deployment[CF_NAME_MAX_LEN + 1];
    char platform[CF_ATTESTSVC_MAX_PLATFORM_LEN + 1]; /* "" if absent */
    char status[CF_ATTESTSVC_MAX_STATUS_LEN + 1];
    bool has_public_key;
    uint8_t public_key[CF_ATTEST_X25519_LEN];
    bool has_measurement;
    uint8_t measurement[CF_MEASUREMENT_LEN];
    int64_t last_attested_at; /* unix seconds, 0 if unknown */
    char endpoint[CF_ATTESTSVC_MAX_ENDPOINT + 1]; /* "" if the registry does not record it */
} cf_attest_tee_entry;

typedef struct {
    cf_attest_tee_entry *v;
    size_t n, cap;
} cf_attest_tee_list;

void cf_attest_tee_list_free(cf_attest_tee_list *l);
/* Appends the entries of one listing page to l (at most CF_ATTESTSVC_MAX_TEES
 * in total: CF_E_TOO_LARGE beyond). The page is {"tees":[...]} (a bare array
 * is accepted too); ret_next receives its "next" cursor, "" when there is none
 * (next_size >= CF_ATTESTSVC_MAX_CURSOR + 1). On failure l keeps only the
 * entries it had before. Duplicate ids are an error. */
int cf_attest_registry_parse_page(const void *data, size_t len, cf_attest_tee_list *l,
                                  char *ret_next, size_t next_size) CF_WUR;

/* {"nonce":"<64 hex>","expires_at":...}: the nonce the KMS issued. */
int cf_attest_kms_nonce_parse(const void *data, size_t len,
                              uint8_t ret_nonce[CF_BINDING_NONCE_LEN]) CF_WUR;

/* Body of POST {kms}/v1/registry/tees/{id}/attestations: {"evidence","nonce"}. */
int cf_attest_kms_report_build(const uint8_t nonce[CF_BINDING_NONCE_LEN],
                               const cf_attest_evidence *e, cf_buf *out) CF_WUR;

/* ---- public API requests ---- */

typedef struct {
    char deployment[CF_NAME_MAX_LEN + 1];
    bool has_nonce; /* the caller's own nonce, used for the TEE's evidence */
    uint8_t nonce[CF_BINDING_NONCE_LEN];
} cf_attest_verify_request;

int cf_attest_verify_request_parse(const void *data, size_t len,
                                   cf_attest_verify_request *ret) CF_WUR;

typedef struct {
    cf_attest_evidence evidence;
    char deployment[CF_NAME_MAX_LEN + 1]; /* "" if not given */
    char tenant[CF_ID_MAX_LEN + 1];       /* "" if not given */
    bool has_nonce;
    uint8_t nonce[CF_BINDING_NONCE_LEN];
    size_t public_key_len; /* 0 if not given */
    uint8_t public_key[CF_TEE_KEY_MAX_LEN];
} cf_attest_evidence_request;

/* nonce and public_key must come together (the binding needs both). */
int cf_attest_evidence_request_parse(const void *data, size_t len,
                                     cf_attest_evidence_request *ret) CF_WUR;

#endif
