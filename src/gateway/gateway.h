/*
 * The API gateway (`cofferd gateway`, DESIGN.md §1, §5 steps 2 and 5, §6;
 * docs/internals/gateway.md): the public HTTPS entry point. It validates every
 * request (method, path, content type, size, JSON shape), authenticates the
 * caller with IAM's access tokens verified locally (svc), rate-limits per
 * tenant (and per source address for the token exchange), routes sessions and
 * envelopes to TEEs, and proxies the IAM / KMS / registry / attestation / audit
 * APIs with the caller's own credentials (each service authorises on its own).
 *
 * What it never holds (DESIGN.md §2 rule 2): no key that opens an envelope, no
 * OTK, no plaintext. Envelopes are forwarded byte for byte after reading their
 * cleartext header (cf_env_parse); bodies and tokens are never logged.
 *
 * Routes (all answers JSON unless noted; errors {"error":{code,message,request_id}}):
 *   GET  /healthz                process alive
 *   GET  /readyz                 IAM JWKS loaded and TEE registry reachable (else 503)
 *   GET  /metrics                Prometheus text (metrics.h)
 *   POST /v1/sessions            {"job","nonce"} -> TEE, fresh evidence, EAR token, manifest hash
 *   POST /v1/jobs/{job}          application/coffer-envelope -> the TEE's answer
 *   POST /v1/iam/token           proxied to IAM without authentication, rate-limited per source address
 *   *    /v1/iam/..., /v1/kms/..., /v1/registry/..., /v1/attestation/..., /v1/audit/...
 *                                proxied with the caller's Authorization (a valid token is required)
 */
#ifndef COFFER_GATEWAY_GATEWAY_H
#define COFFER_GATEWAY_GATEWAY_H

#include <stdbool.h>
#include <stddef.h>

#include "base/compiler.h"
#include "base/config.h"
#include "base/limits.h"
#include "gateway/metrics.h"
#include "gateway/registry.h"
#include "http/server.h"
#include "proto/authz.h"
#include "svc/svc.h"

/* The gateway's own configuration options (beside the svc common ones). */
extern const cf_config_opt cf_gw_options[];
extern const size_t cf_gw_noptions;

typedef struct cf_gw cf_gw;

/*
 * Reads the gateway's configuration from svc, loads the manifest, creates the
 * registry view, rate limiter and metrics, and registers the routes and the
 * metrics observer on svc's HTTP server (which must not be started yet). The
 * gateway borrows svc: free the gateway after the server has stopped and
 * before svc.
 */
int cf_gw_new(cf_svc *svc, cf_gw **ret) CF_WUR;
/* NULL is accepted. */
void cf_gw_free(cf_gw *gw);

/* An admitted request (cf_gw_admit). */
typedef struct {
    bool authenticated;             /* false: admitted by source address */
    cf_principal p;                 /* valid if authenticated */
    const char *bearer;             /* the caller's token (borrowed from the request) or NULL */
    char key[CF_GW_BUCKET_KEY_MAX + 1]; /* rate-limit key */
    bool holds_slot;                /* a concurrency slot to give back */
} cf_gw_caller;

typedef enum {
    CF_GW_ADMIT_TOKEN = 0, /* a valid access token is required; per-tenant limits */
    CF_GW_ADMIT_SOURCE,    /* credentials are not examined here; per-source-address limits */
} cf_gw_admit_mode;

/*
 * Admission of a request. CF_GW_ADMIT_TOKEN authenticates "Authorization:
 * Bearer" (401 for a missing, malformed, invalid or expired token; 503 if
 * IAM's JWKS cannot be loaded) and applies the tenant's rate limit and
 * concurrency cap; CF_GW_ADMIT_SOURCE (the API-key exchange, which IAM
 * authenticates itself) applies the source address's rate limit. Refusals are
 * 429 with Retry-After. On failure resp holds the error answer and a negative
 * code is returned. On success call cf_gw_release when the request is done.
 */
int cf_gw_admit(cf_gw *gw, const cf_http_req *req, cf_http_resp *resp, cf_gw_admit_mode mode,
                cf_gw_caller *ret) CF_WUR;
void cf_gw_release(cf_gw *gw, cf_gw_caller *c);

/* Borrowed internals, for tests and benchmarks. */
cf_gw_registry *cf_gw_registry_view(cf_gw *gw);
cf_gw_metrics *cf_gw_metrics_view(cf_gw *gw);

#endif
