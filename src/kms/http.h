/*
 * The KMS's HTTP API (DESIGN.md §6 "KMS"; docs/internals/kms.md "HTTP API"):
 * authentication and authorisation of each endpoint, strict bounded JSON, and
 * the mapping of kms/kms.h results to responses. Every request produces an
 * audit event: the core (kms/kms.h) or kms/keys.h audits the operation; this
 * layer audits requests refused before reaching them (credentials, permission,
 * malformed or oversized bodies).
 */
#ifndef COFFER_KMS_HTTP_H
#define COFFER_KMS_HTTP_H

#include "base/compiler.h"
#include "kms/keys.h"
#include "kms/kms.h"
#include "svc/svc.h"

typedef struct {
    cf_kms *kms;       /* borrowed */
    cf_kms_keys *keys; /* borrowed */
    cf_svc *svc;       /* borrowed: authentication, audit, the HTTP server */
} cf_kms_api;

/* Adds every KMS route to cf_svc_http(api->svc). api (and what it points to)
 * must outlive the server. */
int cf_kms_http_routes(cf_kms_api *api) CF_WUR;

/* cf_kms_opts.audit for a service: arg is the cf_svc; who->ctx the request
 * (may be NULL); who->actor, when set, names the actor. */
int cf_kms_svc_audit(void *arg, const cf_kms_who *who, const char *action, const char *tenant,
                     const char *resource, const char *outcome, json_t *details);

#endif
