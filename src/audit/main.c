/*
 * `cofferd audit`: the audit log service (DESIGN.md §1, §6, §10;
 * docs/internals/audit-service.md).
 *
 *   cofferd audit [--key=value ...]
 *
 * Options besides the common ones of svc/svc.h:
 *   store.dsn            default sqlite:STATE_DIR/audit/audit.db
 *   hsm.module / hsm.token   PKCS#11 module (default SoftHSM2) / token "coffer-audit"
 *   hsm.pin / hsm.so_pin secrets (@/path/to/file); so_pin only to create the token
 *   hsm.softhsm          private SoftHSM2 in STATE_DIR/audit/softhsm (default true)
 *   audit.sth_interval   sign a tree head this often when the tree grew (default 10 s; 0 = on demand only)
 * audit.url (a common option: where a service forwards its spool) must not be
 * set here: the audit service appends its own events to its log in-process.
 */
#include <stdio.h>
#include <string.h>

#include "audit/auditsvc.h"
#include "base/err.h"
#include "base/log.h"
#include "base/parse.h"
#include "cmd/cofferd/services.h"

#define MASTER_LABEL "coffer-audit-master"

static const cf_config_opt audit_opts[] = {
    {"store.dsn", CF_CFG_STRING, NULL, "store DSN (default sqlite:STATE_DIR/audit/audit.db)", 0, 0, 0},
    {"hsm.module", CF_CFG_PATH, NULL, "PKCS#11 module (default SoftHSM2)", 0, 0, 0},
    {"hsm.token", CF_CFG_STRING, "coffer-audit", "HSM token label", 0, 0, 0},
    {"hsm.pin", CF_CFG_STRING, NULL, "HSM user PIN (secret; @/path/to/file)", CF_CFG_SECRET, 0, 0},
    {"hsm.so_pin", CF_CFG_STRING, NULL, "HSM SO PIN, only to create a new SoftHSM2 token (secret)",
     CF_CFG_SECRET, 0, 0},
    {"hsm.softhsm", CF_CFG_BOOL, "true", "use a private SoftHSM2 token in STATE_DIR/audit/softhsm", 0, 0, 0},
    {"audit.sth_interval", CF_CFG_DURATION, "10s", "sign a tree head this often when the tree grew (0 = on demand)",
     0, 0, CF_AUDITSVC_STH_INTERVAL_MAX_S},
};

static const char *opt_str(const cf_svc *s, const char *key)
{
    const char *v = NULL;
    return cf_config_get_str(cf_svc_config(s), key, &v) == 0 ? v : NULL;
}

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
    const char *d = opt_str(s, "store.dsn");
    cf_auditsvc_opts o;
    cf_auditsvc *a = NULL;
    cf_hsm *hsm = NULL;
    int rc;

    memset(&o, 0, sizeof(o));
    if (opt_str(s, "audit.url") != NULL)
        return cf_err_set(CF_E_CONFIG, "config 'audit.url': not for the audit service itself (it appends its "
                                       "own events to its log)");
    if (d != NULL)
        CF_GUARD(cf_fmt(dsn, sizeof(dsn), "%s", d));
    else
        CF_GUARD(cf_fmt(dsn, sizeof(dsn), "sqlite:%s/audit.db", cf_svc_dir(s)));
    CF_GUARD(cf_config_get_duration(cf_svc_config(s), "audit.sth_interval", &o.sth_interval_s));
    CF_GUARD_OUT(open_hsm(s, &hsm));
    o.store_dsn = dsn;
    o.hsm = hsm;
    o.svc = s;
    CF_GUARD_OUT(cf_auditsvc_open(&o, &a));
    cf_log(CF_LOG_INFO, "audit.sth_key", "key_id", cf_auditsvc_key_id(a), NULL);
    CF_GUARD_OUT(cf_auditsvc_own_events(a));
    CF_GUARD_OUT(cf_auditsvc_routes(a, cf_svc_http(s)));
    CF_GUARD_OUT(cf_auditsvc_start(a));
    rc = cf_svc_run(s);
    /* cf_svc_run has stopped the server and the forwarder: nothing uses a now. */
out:
    cf_auditsvc_close(a);
    cf_hsm_close(hsm);
    return rc;
}

int cf_audit_main(int argc, char **argv)
{
    static const cf_svc_def def = {.name = "audit", .opts = audit_opts, .nopts = CF_ARRAY_LEN(audit_opts)};
    cf_svc *s = NULL;
    int rc;

    /* argv[0] is the service name. */
    rc = cf_svc_init(&def, argc - 1, argv + 1, &s);
    if (rc == CF_E_NOT_FOUND) /* --help */
        return 0;
    if (rc < 0) {
        fprintf(stderr, "cofferd audit: %s\n", cf_err_detail(rc));
        return 1;
    }
    rc = serve(s);
    if (rc < 0) {
        cf_log(CF_LOG_ERROR, "audit.failed", "reason", cf_err_detail(rc), NULL);
        fprintf(stderr, "cofferd audit: %s\n", cf_err_detail(rc));
    }
    cf_svc_free(s);
    return rc < 0 ? 1 : 0;
}
