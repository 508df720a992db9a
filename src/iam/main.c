/*
 * `cofferd iam`: the IAM service (DESIGN.md §1, §6; docs/internals/iam.md).
 *
 *   cofferd iam [--key=value ...]                    serve the API
 *   cofferd iam --bootstrap-admin [--key=value ...]  create the first platform
 *       admin and print its API key once (JSON on stdout), then exit
 *
 * Options besides the common ones of svc/svc.h:
 *   store.dsn                     default sqlite:STATE_DIR/iam/iam.db
 *   hsm.module / hsm.token        PKCS#11 module (default SoftHSM2) / token "coffer-iam"
 *   hsm.pin / hsm.so_pin          secrets (@/path/to/file); so_pin only to create the token
 *   hsm.softhsm                   private SoftHSM2 in STATE_DIR/iam/softhsm (default true)
 *   iam.token_ttl                 access token lifetime (default 300 s, max 3600 s)
 *   iam.signing_key_rotate_every  automatic rotation (default 30d)
 *   iam.signing_key_overlap       old key stays in the JWKS this long (default 2h)
 *   iam.api_key_ttl               default API key lifetime (default 90d)
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/err.h"
#include "base/log.h"
#include "base/parse.h"
#include "base/secmem.h"
#include "cmd/cofferd/services.h"
#include "hsm/hsm.h"
#include "iam/api.h"
#include "iam/iam.h"
#include "svc/svc.h"

#define MASTER_LABEL "coffer-iam-master"
#define MAX_ARGS 256

static const cf_config_opt iam_opts[] = {
    {"store.dsn", CF_CFG_STRING, NULL, "store DSN (default sqlite:STATE_DIR/iam/iam.db)", 0, 0, 0},
    {"hsm.module", CF_CFG_PATH, NULL, "PKCS#11 module (default SoftHSM2)", 0, 0, 0},
    {"hsm.token", CF_CFG_STRING, "coffer-iam", "HSM token label", 0, 0, 0},
    {"hsm.pin", CF_CFG_STRING, NULL, "HSM user PIN (secret; @/path/to/file)", CF_CFG_SECRET, 0, 0},
    {"hsm.so_pin", CF_CFG_STRING, NULL, "HSM SO PIN, only to create a new SoftHSM2 token (secret)",
     CF_CFG_SECRET, 0, 0},
    {"hsm.softhsm", CF_CFG_BOOL, "true", "use a private SoftHSM2 token in STATE_DIR/iam/softhsm", 0, 0, 0},
    {"iam.token_ttl", CF_CFG_DURATION, "300", "access token lifetime", 0, 0, CF_IAM_TOKEN_TTL_MAX},
    {"iam.signing_key_rotate_every", CF_CFG_DURATION, "30d", "automatic signing-key rotation period", 0, 0,
     CF_IAM_ROTATE_MAX_S},
    {"iam.signing_key_overlap", CF_CFG_DURATION, "2h", "a rotated key stays in the JWKS this long", 0, 0,
     CF_IAM_OVERLAP_MAX_S},
    {"iam.api_key_ttl", CF_CFG_DURATION, "90d", "default API key lifetime", 0, 0, CF_IAM_APIKEY_TTL_MAX},
};

static int audit_hook(void *arg, const void *ctx, const cf_principal *actor, const char *action,
                      const char *tenant, const char *resource, const char *outcome, json_t *details)
{
    return cf_svc_audit(arg, ctx, actor, action, tenant, resource, outcome, details);
}

static const char *opt_str(const cf_svc *s, const char *key)
{
    const char *v = NULL;
    return cf_config_get_str(cf_svc_config(s), key, &v) == 0 ? v : NULL;
}

static int store_dsn(const cf_svc *s, char *out, size_t size)
{
    const char *dsn = opt_str(s, "store.dsn");

    if (dsn != NULL)
        return cf_fmt(out, size, "%s", dsn);
    return cf_fmt(out, size, "sqlite:%s/iam.db", cf_svc_dir(s));
}

/* ---- bootstrap ---------------------------------------------------------------- */

static int bootstrap(cf_svc *s)
{
    char dsn[CF_STORE_MAX_DSN + 1];
    cf_iam_bootstrap_result r;
    uint64_t ttl = 0;
    cf_buf out;
    int rc;

    CF_GUARD(store_dsn(s, dsn, sizeof(dsn)));
    CF_GUARD(cf_config_get_duration(cf_svc_config(s), "iam.api_key_ttl", &ttl));
    CF_GUARD(cf_iam_bootstrap(dsn, audit_hook, s, "admin", ttl, 0, &r));
    cf_buf_init_secret(&out, 1024);
    rc = cf_buf_printf(&out,
                       "{\"api_key\":\"%s\",\"expires_at\":%lld,\"key_id\":\"%s\",\"principal\":\"%s\","
                       "\"roles\":[\"platform-admin\"],\"tenant\":\"%s\"}\n",
                       (const char *)r.api_key.p, (long long)r.expires_at, r.key_id, r.principal,
                       CF_PLATFORM_TENANT);
    cf_secret_free(&r.api_key);
    if (rc == 0) {
        if (fwrite(out.data, 1, out.len, stdout) != out.len || fflush(stdout) != 0)
            rc = cf_err_set(CF_E_IO, "cannot write the bootstrap key to stdout");
    }
    cf_buf_free(&out);
    if (rc == 0)
        fprintf(stderr, "cofferd iam: platform admin %s created; its API key above is shown ONCE: store it now\n",
                r.principal);
    return rc;
}

/* ---- maintenance thread: automatic rotation and retirement ------------------------ */

typedef struct {
    cf_iam *iam;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stop;
} maint_t;

static void maintain_once(cf_iam *iam)
{
    bool rotated = false;
    int rc = cf_iam_signing_maintain(iam, &rotated);

    if (rc < 0)
        cf_log(CF_LOG_ERROR, "iam.maintain_failed", "reason", cf_err_detail(rc), NULL);
    else if (rotated)
        cf_log(CF_LOG_INFO, "iam.signing_key_auto_rotated", NULL);
}

static void *maint_main(void *arg)
{
    maint_t *m = arg;
    struct timespec until;

    pthread_mutex_lock(&m->mu);
    while (!m->stop) {
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += CF_IAM_MAINTAIN_INTERVAL_S;
        while (!m->stop && pthread_cond_timedwait(&m->cv, &m->mu, &until) != ETIMEDOUT)
            ;
        if (m->stop)
            break;
        pthread_mutex_unlock(&m->mu);
        maintain_once(m->iam);
        pthread_mutex_lock(&m->mu);
    }
    pthread_mutex_unlock(&m->mu);
    return NULL;
}

/* ---- service ------------------------------------------------------------------------ */

static int open_hsm(cf_svc *s, cf_hsm **ret)
{
    char dir[4096];
    cf_hsm_opts o;
    bool softhsm = true;

    memset(&o, 0, sizeof(o));
    o.pin = opt_str(s, "hsm.pin");
    o.so_pin = opt_str(s, "hsm.so_pin");
    o.module = opt_str(s, "hsm.module");
    o.token_label = opt_str(s, "hsm.token");
    o.master_label = MASTER_LABEL;
    o.create_master = true;
    if (o.pin == NULL)
        return cf_err_set(CF_E_CONFIG, "hsm.pin is required (the HSM user PIN; give it as @/path/to/file)");
    CF_GUARD(cf_config_get_bool(cf_svc_config(s), "hsm.softhsm", &softhsm));
    if (softhsm) {
        CF_GUARD(cf_fmt(dir, sizeof(dir), "%s/softhsm", cf_svc_dir(s)));
        o.softhsm_dir = dir;
    }
    return cf_hsm_open(&o, ret);
}

static int serve(cf_svc *s)
{
    char dsn[CF_STORE_MAX_DSN + 1];
    cf_hsm *hsm = NULL;
    cf_iam *iam = NULL;
    cf_iam_opts o;
    cf_iam_api api;
    maint_t m = {.stop = false};
    pthread_t th;
    bool started = false;
    uint64_t ttl = 0;
    int rc;

    memset(&o, 0, sizeof(o));
    pthread_mutex_init(&m.mu, NULL);
    pthread_cond_init(&m.cv, NULL);
    CF_GUARD_OUT(store_dsn(s, dsn, sizeof(dsn)));
    CF_GUARD_OUT(cf_config_get_duration(cf_svc_config(s), "iam.token_ttl", &ttl));
    o.token_ttl = (uint32_t)ttl;
    CF_GUARD_OUT(cf_config_get_duration(cf_svc_config(s), "iam.signing_key_rotate_every", &o.rotate_every));
    CF_GUARD_OUT(cf_config_get_duration(cf_svc_config(s), "iam.signing_key_overlap", &o.overlap));
    CF_GUARD_OUT(cf_config_get_duration(cf_svc_config(s), "iam.api_key_ttl", &o.apikey_default_ttl));
    if (o.token_ttl == 0 || o.rotate_every == 0 || o.overlap == 0 || o.apikey_default_ttl == 0) {
        rc = cf_err_set(CF_E_CONFIG, "iam durations must be positive");
        goto out;
    }
    CF_GUARD_OUT(open_hsm(s, &hsm));
    o.store_dsn = dsn;
    o.hsm = hsm;
    o.audit = audit_hook;
    o.audit_arg = s;
    CF_GUARD_OUT(cf_iam_open(&o, &iam));
    api.iam = iam;
    api.audit = audit_hook;
    api.audit_arg = s;
    CF_GUARD_OUT(cf_iam_api_register(cf_svc_http(s), &api));
    maintain_once(iam); /* a rotation that fell due while we were down */
    m.iam = iam;
    CF_ENSURE_OUT(pthread_create(&th, NULL, maint_main, &m) == 0, CF_E_NOMEM);
    started = true;
    rc = cf_svc_run(s);
out:
    if (started) {
        pthread_mutex_lock(&m.mu);
        m.stop = true;
        pthread_cond_broadcast(&m.cv);
        pthread_mutex_unlock(&m.mu);
        pthread_join(th, NULL);
    }
    /* cf_svc_run has stopped the HTTP server: no handler uses iam any more. */
    cf_iam_close(iam);
    cf_hsm_close(hsm);
    pthread_cond_destroy(&m.cv);
    pthread_mutex_destroy(&m.mu);
    return rc;
}

int cf_iam_main(int argc, char **argv)
{
    static const cf_svc_def def = {.name = "iam", .opts = iam_opts, .nopts = CF_ARRAY_LEN(iam_opts)};
    char *args[MAX_ARGS];
    int n = 0, rc;
    bool boot = false;
    cf_svc *s = NULL;

    /* argv[0] is the service name; the rest are options, minus our own mode flag. */
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--bootstrap-admin") == 0) {
            boot = true;
            continue;
        }
        if (n == MAX_ARGS) {
            fprintf(stderr, "cofferd iam: too many arguments\n");
            return 2;
        }
        args[n++] = argv[i];
    }
    rc = cf_svc_init(&def, n, args, &s);
    if (rc == CF_E_NOT_FOUND) /* --help */
        return 0;
    if (rc < 0) {
        fprintf(stderr, "cofferd iam: %s\n", cf_err_detail(rc));
        return 1;
    }
    rc = boot ? bootstrap(s) : serve(s);
    if (rc < 0) {
        cf_log(CF_LOG_ERROR, boot ? "iam.bootstrap_failed" : "iam.failed", "reason", cf_err_detail(rc), NULL);
        fprintf(stderr, "cofferd iam: %s\n", cf_err_detail(rc));
    }
    cf_svc_free(s);
    return rc < 0 ? 1 : 0;
}
