/*
 * `cofferd kms`: the KMS and TEE registry as its own process (DESIGN.md §1,
 * issue 4; docs/internals/kms.md "Running it").
 *
 * Start-up fails (non-zero exit, one clear line on stderr) when a check cannot
 * be made: missing or unusable PKCS#11 module, wrong PIN, locked token,
 * missing manifest, unusable store or audit spool (DESIGN.md §2 rule 6).
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "attest/manifest.h"
#include "base/err.h"
#include "base/log.h"
#include "base/parse.h"
#include "cmd/cofferd/services.h"
#include "hsm/hsm.h"
#include "kms/http.h"
#include "kms/keys.h"
#include "kms/kms.h"
#include "svc/svc.h"

static const cf_config_opt kms_opts[] = {
    {"kms.store", CF_CFG_STRING, NULL, "store DSN (default sqlite:STATE_DIR/kms/kms.db)", 0, 0, 0},
    {"hsm.module", CF_CFG_PATH, CF_HSM_DEFAULT_MODULE, "PKCS#11 module", 0, 0, 0},
    {"hsm.token", CF_CFG_STRING, "coffer-kms", "HSM token label", 0, 0, 0},
    {"hsm.pin", CF_CFG_STRING, NULL, "HSM user PIN (secret; @/path reads a file)",
     CF_CFG_SECRET | CF_CFG_REQUIRED, 0, 0},
    {"hsm.so_pin", CF_CFG_STRING, NULL, "HSM SO PIN, only to create a SoftHSM2 token (secret)",
     CF_CFG_SECRET, 0, 0},
    {"hsm.softhsm_dir", CF_CFG_STRING, NULL,
     "private SoftHSM2 directory (default STATE_DIR/kms/softhsm; \"\" = the module's own configuration)",
     0, 0, 0},
    {"manifest", CF_CFG_PATH, NULL, "attestation manifest the KMS verifies TEEs against",
     CF_CFG_REQUIRED, 0, 0},
    {"otk.ttl", CF_CFG_DURATION, "120s", "one-time key lifetime", 0, 0, CF_KMS_OTK_TTL_MAX},
    {"reattest.interval", CF_CFG_DURATION, "60s",
     "re-attestation interval: a TEE not attested for 2x this is quarantined", 0, 0,
     CF_KMS_REATTEST_MAX_S},
};

typedef struct {
    cf_kms *kms;
    pthread_mutex_t mu;
    pthread_cond_t cond;
    int stop;
    unsigned period_s;
} tasks;

static void *task_thread(void *arg)
{
    tasks *t = arg;
    struct timespec until;

    pthread_mutex_lock(&t->mu);
    while (!t->stop) {
        pthread_mutex_unlock(&t->mu);
        if (cf_kms_tick(t->kms, NULL) < 0) {
            /* each failed step was logged by the tick; the next round retries */
        }
        pthread_mutex_lock(&t->mu);
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += t->period_s;
        while (!t->stop && pthread_cond_timedwait(&t->cond, &t->mu, &until) == 0)
            ;
    }
    pthread_mutex_unlock(&t->mu);
    return NULL;
}

static int fail(const char *what, int rc)
{
    cf_log(CF_LOG_ERROR, "kms.startup_failed", "step", what, "reason", cf_err_detail(rc), NULL);
    fprintf(stderr, "cofferd kms: %s: %s\n", what, cf_err_detail(rc));
    return 1;
}

static const char *opt(const cf_config *cfg, const char *key)
{
    const char *v = NULL;
    return cf_config_get_str(cfg, key, &v) == 0 ? v : NULL;
}

int cf_kms_main(int argc, char **argv)
{
    cf_svc_def def = {.name = "kms", .opts = kms_opts, .nopts = CF_ARRAY_LEN(kms_opts)};
    cf_svc *svc = NULL;
    cf_hsm *hsm = NULL;
    cf_manifest *manifest = NULL;
    cf_kms_keys *keys = NULL;
    cf_kms *kms = NULL;
    const cf_config *cfg;
    char dsn[CF_STORE_MAX_DSN], hsmdir[4096];
    cf_hsm_opts ho;
    cf_kms_opts ko;
    cf_kms_api api;
    tasks t;
    pthread_t th;
    bool thread_started = false;
    uint64_t ttl = 0, interval = 0;
    const char *v;
    int rc, status = 1;

    memset(&t, 0, sizeof(t));
    pthread_mutex_init(&t.mu, NULL);
    pthread_cond_init(&t.cond, NULL);
    rc = cf_svc_init(&def, argc - 1, argv + 1, &svc);
    if (rc == CF_E_NOT_FOUND) {
        status = 0; /* --help */
        goto out;
    }
    if (rc < 0) {
        status = fail("configuration", rc);
        goto out;
    }
    cfg = cf_svc_config(svc);

    /* HSM: the PIN comes from the configuration (flag, environment or
     * @file) and is never logged; wrong PIN, locked token or a missing module
     * stop here. */
    memset(&ho, 0, sizeof(ho));
    ho.module = opt(cfg, "hsm.module");
    ho.token_label = opt(cfg, "hsm.token");
    ho.pin = opt(cfg, "hsm.pin");
    ho.so_pin = opt(cfg, "hsm.so_pin");
    ho.create_master = true;
    v = opt(cfg, "hsm.softhsm_dir");
    if (v == NULL) {
        rc = cf_fmt(hsmdir, sizeof(hsmdir), "%s/softhsm", cf_svc_dir(svc));
        if (rc < 0) {
            status = fail("HSM", rc);
            goto out;
        }
        ho.softhsm_dir = hsmdir;
    } else if (v[0] != 0) {
        ho.softhsm_dir = v;
    }
    rc = cf_hsm_open(&ho, &hsm);
    if (rc < 0) {
        status = fail("HSM", rc);
        goto out;
    }
    rc = cf_manifest_load(opt(cfg, "manifest"), &manifest);
    if (rc < 0) {
        status = fail("manifest", rc);
        goto out;
    }
    v = opt(cfg, "kms.store");
    if (v == NULL) {
        rc = cf_fmt(dsn, sizeof(dsn), "sqlite:%s/kms.db", cf_svc_dir(svc));
        v = dsn;
    } else {
        rc = 0;
    }
    if (rc == 0)
        rc = cf_kms_keys_open(hsm, v, cf_svc_spool(svc), NULL, &keys);
    if (rc < 0) {
        status = fail("key store", rc);
        goto out;
    }
    if (cf_config_get_duration(cfg, "otk.ttl", &ttl) != 0 ||
        cf_config_get_duration(cfg, "reattest.interval", &interval) != 0 || ttl == 0 ||
        interval == 0) {
        status = fail("configuration", cf_err_set(CF_E_CONFIG, "otk.ttl and reattest.interval must "
                                                  "be at least 1 s"));
        goto out;
    }
    memset(&ko, 0, sizeof(ko));
    ko.hsm = hsm;
    ko.keys = keys;
    ko.manifest = manifest;
    ko.store_dsn = v;
    ko.otk_ttl = ttl;
    ko.reattest_interval = interval;
    ko.audit = cf_kms_svc_audit;
    ko.audit_arg = svc;
    rc = cf_kms_open(&ko, &kms);
    if (rc < 0) {
        status = fail("KMS", rc);
        goto out;
    }
    api = (cf_kms_api){.kms = kms, .keys = keys, .svc = svc};
    rc = cf_kms_http_routes(&api);
    if (rc < 0) {
        status = fail("HTTP routes", rc);
        goto out;
    }
    cf_log(CF_LOG_INFO, "kms.ready", "release_kid", cf_kms_release_kid(kms), "manifest",
           cf_manifest_hash_str(manifest), NULL);

    /* Background work: purges, stale TEEs, revocation reconciliation, key
     * rotation. A quarter of the interval (at most CF_KMS_TICK_MAX_S) keeps the
     * stale detection within 2.25 x the interval. */
    t.kms = kms;
    t.period_s = (unsigned)CF_MAX(1, CF_MIN(interval / 4, (uint64_t)CF_KMS_TICK_MAX_S));
    if (pthread_create(&th, NULL, task_thread, &t) != 0) {
        status = fail("background tasks", cf_err_set(CF_E_NOMEM, "cannot start a thread"));
        goto out;
    }
    thread_started = true;
    rc = cf_svc_run(svc);
    if (rc < 0) {
        status = fail("server", rc);
        goto out;
    }
    status = 0;
out:
    if (thread_started) {
        pthread_mutex_lock(&t.mu);
        t.stop = 1;
        pthread_cond_broadcast(&t.cond);
        pthread_mutex_unlock(&t.mu);
        pthread_join(th, NULL);
    }
    /* The server goes first (its handlers use everything below). */
    cf_svc_free(svc);
    cf_kms_close(kms);
    cf_kms_keys_close(keys);
    cf_manifest_free(manifest);
    cf_hsm_close(hsm);
    pthread_cond_destroy(&t.cond);
    pthread_mutex_destroy(&t.mu);
    return status;
}
