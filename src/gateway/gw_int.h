/*
 * Internals shared by the gateway's source files (gateway.c: set-up, admission,
 * health and metrics; session.c: POST /v1/sessions; jobs.c: POST /v1/jobs/{job};
 * proxy.c: the proxied service APIs). Not for other modules.
 */
#ifndef COFFER_GATEWAY_GW_INT_H
#define COFFER_GATEWAY_GW_INT_H

#include <jansson.h>
#include <pthread.h>
#include <stdint.h>

#include "attest/manifest.h"
#include "gateway/gateway.h"
#include "gateway/metrics.h"
#include "gateway/ratelimit.h"
#include "gateway/registry.h"
#include "gateway/upstream.h"

/* Upstream names: metrics labels and SPIFFE ids (spiffe://coffer/<name>). */
#define GW_UP_IAM "iam"
#define GW_UP_KMS "kms"
#define GW_UP_REGISTRY "registry" /* the KMS, read for the routing view */
#define GW_UP_ATTEST "attest"
#define GW_UP_AUDIT "audit"
#define GW_UP_TEE "tee"

#define GW_CT_JSON "application/json"
#define GW_CT_ENVELOPE "application/coffer-envelope"
#define GW_CT_RESPONSE "application/coffer-response"

/* One proxied API prefix. */
struct gw_proxy {
    struct cf_gw *gw;
    const char *prefix;   /* "/v1/kms" */
    const char *label;    /* metrics route label: the prefix and a "*" segment */
    const char *upstream; /* GW_UP_* */
    const char *url;      /* base URL from the configuration, NULL = not configured */
    const char *expect;   /* SPIFFE service name of the upstream */
};

#define GW_NPROXIES 5

struct gw_auth_slot {
    uint8_t digest[32]; /* SHA-256 of the token */
    int64_t until;      /* unix seconds; 0 = empty */
    cf_principal p;
};

struct cf_gw {
    cf_svc *svc;
    cf_manifest *manifest;
    const char *iam_url, *kms_url, *attest_url, *audit_url; /* borrowed from the config */
    cf_gw_registry *registry;
    cf_gw_limiter *limiter;
    cf_gw_metrics *metrics;
    cf_gw_clients *clients;
    cf_gw_limit tenant_limit, ip_limit;
    unsigned upstream_timeout_ms, job_timeout_ms;
    int64_t session_ttl_s;
    int64_t auth_cache_ttl_s; /* 0 = every request verifies its token */
    pthread_mutex_t auth_mu;
    struct gw_auth_slot *auth_cache; /* CF_GW_AUTH_CACHE_SLOTS, NULL if disabled */
    struct gw_proxy proxies[GW_NPROXIES];
};

/* Adds a response header; a failure (it cannot happen for our fixed, valid
 * names and values) is logged, the answer goes out without it. */
void gw_header(cf_http_resp *resp, const char *name, const char *value);
/* A JSON error answer with an explicit status and code; returns CF_E_INTERNAL
 * only if even that could not be built (the server then answers 500). */
int gw_fail(cf_http_resp *resp, int status, const char *code, const char *fmt, ...) CF_PRINTF(4, 5);
/* The answer for a failed upstream call (transport error rc): 504 on a timeout,
 * 502 otherwise; counted in coffer_gateway_upstream_errors_total{upstream}. */
int gw_fail_upstream(struct cf_gw *gw, cf_http_resp *resp, const char *upstream, int rc);

/* Handlers (cls = struct cf_gw, or struct gw_proxy for the proxies). */
int gw_h_sessions(void *cls, const cf_http_req *req, cf_http_resp *resp);
int gw_h_jobs(void *cls, const cf_http_req *req, cf_http_resp *resp);
int gw_h_proxy(void *cls, const cf_http_req *req, cf_http_resp *resp);
int gw_h_token(void *cls, const cf_http_req *req, cf_http_resp *resp);

/* Fetches the whole registry from the KMS (cf_gw_registry_fetch; cls = struct cf_gw). */
int gw_fetch_registry(void *cls, cf_gw_tee_list *ret);

/* ---- parsers of upstream answers (exposed for the fuzz targets) ---- */

/* A TEE's answer to POST /v1/evidence. The strings and evidence are borrowed
 * from doc, which the caller releases with json_decref. */
typedef struct {
    json_t *doc;
    const char *tee_id, *public_key, *deployment, *build_hash;
    json_t *evidence; /* object */
} gw_evidence;

/* Parses and checks the shape (sizes, types, printable text). expect_id /
 * expect_deployment (may be NULL) must match the answer's tee_id / deployment.
 * On success *ret owns doc. */
int gw_evidence_parse(const void *data, size_t len, const char *expect_id,
                      const char *expect_deployment, gw_evidence *ret) CF_WUR;

/* The attestation service's answer to POST /v1/attestation/evidence:
 * *ret_verified, and *ret_token (malloc'd) when verified. */
int gw_attest_parse(const void *data, size_t len, bool *ret_verified, char **ret_token) CF_WUR;

/* The body of POST /v1/sessions: {"job","nonce"} (exactly these keys). job is
 * copied to ret_job (CF_NAME_MAX_LEN + 1), the nonce decoded to 32 bytes. */
int gw_session_request_parse(const void *data, size_t len, char *ret_job,
                             uint8_t ret_nonce[32]) CF_WUR;

#endif
