/*
 * cofferd attest: the attestation service process (DESIGN.md §1, §3, §6;
 * docs/internals/attestation-service.md).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "attestsvc/history.h"
#include "attestsvc/service.h"
#include "base/err.h"
#include "base/json.h"
#include "base/log.h"
#include "base/parse.h"
#include "cmd/cofferd/services.h"
#include "proto/authz.h"

static const cf_config_opt attest_opts[] = {
    {"manifest", CF_CFG_PATH, NULL, "attestation policy: the manifest JSON (docs/MANIFEST.md)", CF_CFG_REQUIRED, 0, 0},
    {"kms.url", CF_CFG_STRING, NULL, "KMS base URL (TEE registry, nonces, attestation reports)", 0, 0, 0},
    {"reattest.interval", CF_CFG_DURATION, "60", "re-attestation interval per TEE (jittered +-10%)", 0, 0,
     CF_ATTESTSVC_INTERVAL_MAX_S},
    {"reattest.enabled", CF_CFG_BOOL, "true", "run the re-attestation scheduler (needs kms.url)", 0, 0, 0},
    {"store.dsn", CF_CFG_STRING, NULL, "store DSN (default sqlite:STATE_DIR/attest/attest.db)", 0, 0, 0},
    {"hsm.module", CF_CFG_PATH, NULL, "PKCS#11 module (default SoftHSM2)", 0, 0, 0},
    {"hsm.token", CF_CFG_STRING, "coffer-attest", "HSM token label", 0, 0, 0},
    {"hsm.pin", CF_CFG_STRING, NULL, "HSM user PIN (or @file)", CF_CFG_SECRET | CF_CFG_REQUIRED, 0, 0},
    {"hsm.so_pin", CF_CFG_STRING, NULL, "SO PIN, to initialise a new SoftHSM2 token (or @file)", CF_CFG_SECRET, 0,
     0},
    {"hsm.softhsm_dir", CF_CFG_PATH, NULL,
     "private SoftHSM2 directory (default STATE_DIR/attest/softhsm with the default module)", 0, 0, 0},
    {"hsm.master_label", CF_CFG_STRING, NULL, "label of the HSM master key (default coffer-master-key)", 0, 0, 0},
    {"alert.webhook", CF_CFG_STRING, NULL, "URL receiving alert JSON by POST (best effort)", 0, 0, 0},
    {"tee.endpoints", CF_CFG_STRING, NULL,
     "TEE URLs the registry does not record: id=url entries, or bare URLs probed to find TEEs by id", 0, 0, 0},
    {"tee.timeout", CF_CFG_DURATION, "10", "timeout of one evidence request to a TEE", 0, 0, 300},
    {"ratelimit.rate", CF_CFG_INT, "10", "public endpoints: requests per second per source address", 0, 1, 100000},
    {"ratelimit.burst", CF_CFG_INT, "20", "public endpoints: burst per source address", 0, 1, 100000},
    {"history.retention", CF_CFG_DURATION, "30d", "attestation history kept this long", 0, 0, 0},
};

static const char *opt(const cf_svc *svc, const char *key)
{
    const char *v = NULL;
    return cf_config_get_str(cf_svc_config(svc), key, &v) == 0 ? v : NULL;
}

/* {"manifest": <the canonical document>, "hash": "sha256:..."}: the document as
 * hashed, so a client can recompute the hash from the answer. */
static int manifest_text(cf_attestsvc *a)
{
    size_t len = 0;
    const char *canon = cf_manifest_canonical(a->manifest, &len);
    json_t *doc = NULL, *o = NULL;
    int rc;

    CF_GUARD(cf_json_parse(canon, len, CF_MANIFEST_MAX_BYTES, &doc));
    o = json_pack("{s:o,s:s}", "manifest", doc, "hash", cf_manifest_hash_str(a->manifest));
    CF_ENSURE(o != NULL, CF_E_NOMEM);
    a->manifest_text = cf_json_dump(o);
    json_decref(o);
    rc = a->manifest_text != NULL ? 0 : CF_E_NOMEM;
    return rc;
}

static int open_hsm(cf_attestsvc *a)
{
    cf_hsm_opts o;
    char dir[4096];
    const char *module = opt(a->svc, "hsm.module");

    memset(&o, 0, sizeof(o));
    o.module = module;
    o.token_label = opt(a->svc, "hsm.token");
    o.pin = opt(a->svc, "hsm.pin");
    o.so_pin = opt(a->svc, "hsm.so_pin");
    o.master_label = opt(a->svc, "hsm.master_label");
    o.softhsm_dir = opt(a->svc, "hsm.softhsm_dir");
    if (o.softhsm_dir == NULL && module == NULL) {
        CF_GUARD(cf_fmt(dir, sizeof(dir), "%s/softhsm", cf_svc_dir(a->svc)));
        o.softhsm_dir = dir;
    }
    o.create_master = true;
    return cf_hsm_open(&o, &a->hsm);
}

static int audit_key_created(cf_attestsvc *a)
{
    cf_principal self;
    char resource[128];

    memset(&self, 0, sizeof(self));
    snprintf(self.sub, sizeof(self.sub), "%s", CF_ATTESTSVC_SPIFFE);
    snprintf(self.tenant, sizeof(self.tenant), "%s", CF_PLATFORM_TENANT);
    snprintf(resource, sizeof(resource), "attest-signing-key/%s", cf_attest_signer_kid(a->signer));
    return cf_svc_audit(a->svc, NULL, &self, "attest.signing_key.create", NULL, resource, "success", NULL);
}

static int setup(cf_attestsvc *a)
{
    const cf_config *cfg = cf_svc_config(a->svc);
    const char *dsn = opt(a->svc, "store.dsn"), *eps = opt(a->svc, "tee.endpoints");
    cf_store *s = NULL;
    uint64_t timeout_s = 10;
    int64_t rate = CF_ATTESTSVC_RATE_DEFAULT, burst = CF_ATTESTSVC_RATE_BURST_DEFAULT;
    bool created = false;
    int rc;

    rc = cf_manifest_load(opt(a->svc, "manifest"), &a->manifest);
    CF_ENSURE(rc == 0, cf_err_set(CF_E_CONFIG, "manifest %s: %s", opt(a->svc, "manifest"), cf_err_detail(rc)));
    CF_GUARD(cf_verifier_new(a->manifest, &a->verifier));
    CF_GUARD(manifest_text(a));
    CF_GUARD(cf_config_get_duration(cfg, "reattest.interval", &a->interval_s));
    CF_ENSURE(a->interval_s >= CF_ATTESTSVC_INTERVAL_MIN_S,
              cf_err_set(CF_E_CONFIG, "reattest.interval must be at least %u s", CF_ATTESTSVC_INTERVAL_MIN_S));
    CF_GUARD(cf_config_get_bool(cfg, "reattest.enabled", &a->reattest_enabled));
    CF_GUARD(cf_config_get_duration(cfg, "tee.timeout", &timeout_s));
    CF_ENSURE(timeout_s >= 1, cf_err_set(CF_E_CONFIG, "tee.timeout must be at least 1 s"));
    /* TEEs are re-attested one after another: a TEE that hangs for the whole
     * timeout delays every other one. Keep the timeout well inside the interval
     * so that one unresponsive TEE cannot push the others past 2 x interval
     * (when the KMS would quarantine them as stale). */
    if (a->interval_s >= 1 && timeout_s > (a->interval_s + 3) / 4) {
        uint64_t capped = (a->interval_s + 3) / 4;
        char from[24], to[24];
        if (cf_fmt(from, sizeof(from), "%llu", (unsigned long long)timeout_s) == 0 &&
            cf_fmt(to, sizeof(to), "%llu", (unsigned long long)capped) == 0)
            cf_log(CF_LOG_INFO, "attest.tee_timeout_capped", "configured_s", from, "effective_s", to, NULL);
        timeout_s = capped;
    }
    a->tee_timeout_ms = (uint32_t)(timeout_s * 1000);
    CF_GUARD(cf_config_get_duration(cfg, "history.retention", &a->retention_s));
    CF_GUARD(cf_config_get_int(cfg, "ratelimit.rate", &rate));
    CF_GUARD(cf_config_get_int(cfg, "ratelimit.burst", &burst));
    a->kms_url = opt(a->svc, "kms.url");
    a->webhook = opt(a->svc, "alert.webhook");
    CF_ENSURE(a->kms_url == NULL || cf_attest_endpoint_valid(a->kms_url),
              cf_err_set(CF_E_CONFIG, "kms.url must be an http(s) base URL without a trailing '/'"));
    CF_ENSURE(a->webhook == NULL || strncmp(a->webhook, "http://", 7) == 0 || strncmp(a->webhook, "https://", 8) == 0,
              cf_err_set(CF_E_CONFIG, "alert.webhook must be an http(s) URL"));
    if (eps != NULL)
        CF_GUARD(cf_attestsvc_endpoints_configure(a, eps));

    if (dsn != NULL)
        CF_GUARD(cf_fmt(a->dsn, sizeof(a->dsn), "%s", dsn));
    else
        CF_GUARD(cf_fmt(a->dsn, sizeof(a->dsn), "sqlite:%s/attest.db", cf_svc_dir(a->svc)));
    /* Every pooled handle would see a different in-memory database. */
    CF_ENSURE(strcmp(a->dsn, "sqlite::memory:") != 0,
              cf_err_set(CF_E_CONFIG, "store.dsn sqlite::memory: cannot be shared by the service's threads"));
    CF_GUARD(cf_attestsvc_store_get(a, &s));
    rc = cf_attest_store_migrate(s);
    if (rc == 0)
        rc = open_hsm(a);
    if (rc == 0)
        rc = cf_attest_signer_open(a->hsm, s, (int64_t)time(NULL), &a->signer, &created);
    cf_attestsvc_store_put(a, s);
    CF_GUARD(rc);
    if (created)
        CF_GUARD(audit_key_created(a));
    CF_GUARD(cf_ratelimit_new((uint32_t)rate, (uint32_t)burst, &a->rl));
    /* Self attestation: only when a hardware provider (or coffer-launch) is there. */
    rc = cf_provider_open_auto(&a->provider);
    if (rc != 0) {
        snprintf(a->provider_error, sizeof(a->provider_error), "%s", cf_err_detail(rc));
        a->provider = NULL;
        cf_log(CF_LOG_INFO, "attest.self_unavailable", "reason", a->provider_error, NULL);
    }
    CF_GUARD(cf_attestsvc_routes(a));
    cf_log(CF_LOG_INFO, "attest.ready", "manifest_hash", cf_manifest_hash_str(a->manifest), "kid",
           cf_attest_signer_kid(a->signer), "kms", a->kms_url ? a->kms_url : "(none)", NULL);
    return 0;
}

static void teardown(cf_attestsvc *a)
{
    cf_attestsvc_scheduler_stop(a);
    for (size_t i = 0; i < a->nidle; i++)
        cf_store_close(a->idle[i]);
    a->nidle = 0;
    cf_provider_free(a->provider);
    cf_ratelimit_free(a->rl);
    cf_attest_signer_free(a->signer);
    cf_hsm_close(a->hsm);
    free(a->manifest_text);
    cf_verifier_free(a->verifier);
    cf_manifest_free(a->manifest);
    free(a->eps);
    free(a->pool);
    pthread_mutex_destroy(&a->pool_mu);
    pthread_mutex_destroy(&a->ep_mu);
}

int cf_attest_main(int argc, char **argv)
{
    static const cf_svc_def def = {.name = "attest", .opts = attest_opts, .nopts = CF_ARRAY_LEN(attest_opts)};
    cf_attestsvc a;
    int rc, status = 1;

    memset(&a, 0, sizeof(a));
    pthread_mutex_init(&a.pool_mu, NULL);
    pthread_mutex_init(&a.ep_mu, NULL);
    rc = cf_svc_init(&def, argc - 1, argv + 1, &a.svc);
    if (rc == CF_E_NOT_FOUND) { /* --help */
        status = 0;
        goto out;
    }
    if (rc != 0) {
        fprintf(stderr, "cofferd attest: %s\n", cf_err_detail(rc));
        status = 2;
        goto out;
    }
    rc = setup(&a);
    if (rc != 0) {
        cf_log(CF_LOG_ERROR, "attest.start_failed", "reason", cf_err_detail(rc), NULL);
        fprintf(stderr, "cofferd attest: %s\n", cf_err_detail(rc));
        goto out;
    }
    if (a.reattest_enabled && a.kms_url != NULL) {
        rc = cf_attestsvc_scheduler_start(&a);
        if (rc != 0) {
            fprintf(stderr, "cofferd attest: cannot start the scheduler\n");
            goto out;
        }
    } else {
        cf_log(CF_LOG_WARN, "reattest.off", "reason",
               a.kms_url == NULL ? "no kms.url configured" : "reattest.enabled is false", NULL);
    }
    rc = cf_svc_run(a.svc);
    if (rc != 0)
        fprintf(stderr, "cofferd attest: %s\n", cf_err_detail(rc));
    else
        status = 0;
out:
    /* The scheduler goes first: it uses the HTTP clients, store and signer. */
    teardown(&a);
    cf_svc_free(a.svc);
    return status;
}
