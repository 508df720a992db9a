/*
 * The attestation service process (`cofferd attest`): state shared by the HTTP
 * handlers (api.c), the re-attestation scheduler (scheduler.c) and the
 * attestation core (core.c). Internal to src/attestsvc; the design is in
 * docs/internals/attestation-service.md.
 *
 * Threads: the HTTP server's threads run handlers concurrently, and one
 * scheduler thread re-attests TEEs. Everything in cf_attestsvc is immutable
 * after start-up except what is guarded by its own mutex (store pool, endpoint
 * table, scheduler stop flag); manifest, verifier, signer and rate limiter are
 * thread-safe by their own contracts.
 */
#ifndef COFFER_ATTESTSVC_SERVICE_H
#define COFFER_ATTESTSVC_SERVICE_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "attest/manifest.h"
#include "attest/provider.h"
#include "attest/verify.h"
#include "attestsvc/ratelimit.h"
#include "attestsvc/report.h"
#include "attestsvc/signer.h"
#include "attestsvc/wire.h"
#include "base/compiler.h"
#include "base/limits.h"
#include "hsm/hsm.h"
#include "http/client.h"
#include "store/store.h"
#include "svc/svc.h"

#define CF_ATTESTSVC_SPIFFE "spiffe://coffer/attest"

typedef struct {
    char id[CF_ID_MAX_LEN + 1];
    char url[CF_ATTESTSVC_MAX_ENDPOINT + 1];
    bool discovered; /* learned by probing the discovery pool (forgotten when unreachable) */
} cf_attestsvc_endpoint;

typedef struct cf_attestsvc {
    cf_svc *svc;
    cf_manifest *manifest;
    cf_verifier *verifier;
    char *manifest_text; /* {"manifest":...,"hash":...}, served as is */
    char dsn[CF_STORE_MAX_DSN + 1];
    cf_hsm *hsm;
    cf_attest_signer *signer;
    cf_ratelimit *rl;
    cf_provider *provider;   /* NULL when not running in a TEE */
    char provider_error[256];
    const char *kms_url;     /* borrowed from the configuration; NULL = none */
    const char *webhook;     /* idem */
    uint64_t interval_s;
    uint32_t tee_timeout_ms;
    uint64_t retention_s;
    bool reattest_enabled;

    pthread_mutex_t pool_mu;
    cf_store *idle[CF_ATTESTSVC_STORE_POOL];
    size_t nidle;

    pthread_mutex_t ep_mu;
    cf_attestsvc_endpoint *eps;
    size_t neps;
    /* bare URLs of tee.endpoints: TEE runtimes whose ids are not known in
     * advance (they are made at registration); found by asking each */
    char (*pool)[CF_ATTESTSVC_MAX_ENDPOINT + 1];
    size_t npool;

    pthread_t sched;
    bool sched_started;
    pthread_mutex_t sched_mu;
    pthread_cond_t sched_cond;
    bool stopping;
} cf_attestsvc;

/* ---- store pool (one handle per thread at a time) ---- */
int cf_attestsvc_store_get(cf_attestsvc *a, cf_store **ret) CF_WUR;
void cf_attestsvc_store_put(cf_attestsvc *a, cf_store *s);

/* ---- clients ---- */
/* An HTTP client for url with this service's certificate and CA (mTLS),
 * pinning spiffe://coffer/<expect_service> for https when expect_service is set. */
int cf_attestsvc_client(cf_attestsvc *a, const char *url, const char *expect_service, uint32_t timeout_ms,
                        size_t max_response, cf_http_client **ret) CF_WUR;

/* ---- TEE endpoint table (registry, configuration tee.endpoints, registration
 * notices, discovery) ---- */
/* Parses "id=url,url,..." : id=url entries go to the table, bare URLs to the
 * discovery pool. */
int cf_attestsvc_endpoints_configure(cf_attestsvc *a, const char *spec) CF_WUR;
int cf_attestsvc_endpoint_set(cf_attestsvc *a, const char *id, const char *url) CF_WUR;
/* Copies the URL for a TEE: the registry's, else the table's, else one found
 * by probing the discovery pool (see core.c). CF_E_NOT_FOUND if none. */
int cf_attestsvc_endpoint_for(cf_attestsvc *a, const cf_attest_tee_entry *e, char out[CF_ATTESTSVC_MAX_ENDPOINT + 1]) CF_WUR;
/* Forgets a discovered (not a configured) URL of a TEE that did not answer there. */
void cf_attestsvc_endpoint_forget(cf_attestsvc *a, const char *id);

/* ---- KMS registry ---- */
/* Every TEE the KMS lists (all pages). CF_E_UNAVAILABLE when the KMS cannot be
 * asked (fail closed: no answer is not an empty registry). */
int cf_attestsvc_registry_list(cf_attestsvc *a, cf_attest_tee_list *ret) CF_WUR;

/* ---- one attestation of one TEE ---- */
typedef struct {
    bool reached;                          /* the TEE answered with well-formed evidence */
    char error[CF_ATTESTSVC_MAX_REASON + 1]; /* why not, when !reached */
    cf_attest_tee_evidence *tee;           /* the answer (heap), when reached */
    cf_verify_result *result;              /* when reached */
    cf_attest_regcheck registry;
    int64_t at;
} cf_attestsvc_outcome;

void cf_attestsvc_outcome_free(cf_attestsvc_outcome *o);
/* Asks the TEE for evidence bound to nonce and verifies it against the
 * manifest and the registry entry. Returns 0 whenever an outcome was produced
 * (reached or not); negative only for local failures (memory). */
int cf_attestsvc_attest(cf_attestsvc *a, const cf_attest_tee_entry *e, const uint8_t nonce[CF_BINDING_NONCE_LEN],
                        cf_attestsvc_outcome *ret) CF_WUR;
/* EAR token for an outcome (reached). *ret malloc'd. */
int cf_attestsvc_token(cf_attestsvc *a, const cf_attestsvc_outcome *o, const cf_attest_tee_entry *e,
                       const uint8_t nonce[CF_BINDING_NONCE_LEN], char **ret) CF_WUR;
/* Fills a history record for an outcome (kind "verify" / "reattest"). */
void cf_attestsvc_record(cf_attestsvc *a, const cf_attestsvc_outcome *o, const cf_attest_tee_entry *e,
                         const char *kind, cf_attest_record *ret);
/* The token lifetime: 2 x the re-attestation interval. */
uint32_t cf_attestsvc_token_ttl(const cf_attestsvc *a);

/* ---- alerts (audit event + warn log + optional webhook) ---- */
void cf_attestsvc_alert(cf_attestsvc *a, const cf_attest_tee_entry *e, const char *reason);

/* ---- HTTP API and scheduler ---- */
int cf_attestsvc_routes(cf_attestsvc *a) CF_WUR;
int cf_attestsvc_scheduler_start(cf_attestsvc *a) CF_WUR;
void cf_attestsvc_scheduler_stop(cf_attestsvc *a);

/* Monotonic milliseconds. */
uint64_t cf_attestsvc_mono_ms(void);

#endif
