#include "svc/svc.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "auditlog/event.h"
#include "base/err.h"
#include "base/file.h"
#include "base/json.h"
#include "base/log.h"
#include "base/parse.h"
#include "base/secmem.h"

#define JWKS_REFRESH_MIN_S 5
#define MAX_OPTS 96

static const cf_config_opt common_opts[] = {
    {"state_dir", CF_CFG_PATH, "var", "directory for service state", 0, 0, 0},
    {"listen.host", CF_CFG_STRING, "127.0.0.1", "bind address", 0, 0, 0},
    {"listen.port", CF_CFG_INT, "0", "port (0 = ephemeral)", 0, 0, 65535},
    {"port_file", CF_CFG_PATH, NULL, "write the bound port to this file once listening", 0, 0, 0},
    {"tls.cert", CF_CFG_PATH, NULL, "service certificate (PEM); unset = plain HTTP", 0, 0, 0},
    {"tls.key", CF_CFG_PATH, NULL, "service private key (PEM)", 0, 0, 0},
    {"tls.ca", CF_CFG_PATH, NULL, "internal CA certificate (PEM) for mTLS", 0, 0, 0},
    {"tls.client_auth", CF_CFG_STRING, "optional", "client certificates: off, optional, require", 0, 0, 0},
    {"iam.jwks", CF_CFG_STRING, NULL, "IAM JWKS: file path or https:// URL", 0, 0, 0},
    {"audit.spool", CF_CFG_PATH, NULL, "audit spool directory (default STATE_DIR/<service>/spool)", 0, 0, 0},
    {"audit.url", CF_CFG_STRING, NULL, "audit service (https://host:port): the spool is forwarded there", 0, 0, 0},
    {"http.threads", CF_CFG_INT, "2", "HTTP server threads", 0, 1, 64},
    {"log.level", CF_CFG_STRING, "info", "debug, info, warn, error", 0, 0, 0},
};

struct cf_svc {
    char name[32];
    cf_config_opt *schema;
    cf_config *cfg;
    char dir[4096];
    cf_spool *spool;
    cf_http_server *http;
    /* JWKS: read-locked for verification, write-locked to replace. */
    pthread_rwlock_t jwks_lock;
    cf_jwks *jwks;
    pthread_mutex_t refresh_lock;
    int64_t last_refresh;
    /* stop signalling */
    pthread_mutex_t stop_lock;
    pthread_cond_t stop_cond;
    int stop;
    int stopped_by_signal;
    /* audit forwarder: fwd_send (with fwd_arg) ships the spool; fwd_client is
     * the mTLS client to audit.url when fwd_send is the POST */
    pthread_mutex_t fwd_lock;
    pthread_cond_t fwd_cond;
    bool fwd_stop, fwd_kick, fwd_running;
    pthread_t fwd_thread;
    cf_audit_send_fn fwd_send;
    void *fwd_arg;
    cf_http_client *fwd_client;
};

int64_t cf_svc_now(void) { return (int64_t)time(NULL); }

const char *cf_svc_name(const cf_svc *s) { return s->name; }
const cf_config *cf_svc_config(const cf_svc *s) { return s->cfg; }
cf_http_server *cf_svc_http(cf_svc *s) { return s->http; }
cf_spool *cf_svc_spool(cf_svc *s) { return s->spool; }
const char *cf_svc_dir(const cf_svc *s) { return s->dir; }

static const char *opt_str(const cf_svc *s, const char *key)
{
    const char *v = NULL;
    return cf_config_get_str(s->cfg, key, &v) == 0 ? v : NULL;
}

/* Loads the JWKS from a file or an https URL. */
static int jwks_load(cf_svc *s, cf_jwks **ret)
{
    const char *src = opt_str(s, "iam.jwks");
    cf_buf b;
    int rc;

    if (src == NULL)
        return cf_err_set(CF_E_UNAVAILABLE, "no IAM JWKS configured (iam.jwks): cannot verify access tokens");
    if (strncmp(src, "https://", 8) == 0 || strncmp(src, "http://", 7) == 0) {
        cf_http_client *c = NULL;
        cf_http_request rq = {.method = "GET", .path = "/"};
        cf_http_response resp;
        char base[CF_HTTP_MAX_URL];
        memset(&resp, 0, sizeof(resp));
        CF_GUARD(cf_http_url_split(src, base, sizeof(base), &rq.path));
        CF_GUARD(cf_svc_client(s, base, "iam", &c));
        rc = cf_http_client_do(c, &rq, &resp);
        cf_http_client_free(c);
        if (rc != 0)
            return cf_err_set(CF_E_UNAVAILABLE, "cannot fetch IAM JWKS: %s", cf_err_detail(rc));
        if (resp.status != 200) {
            cf_http_response_free(&resp);
            return cf_err_set(CF_E_UNAVAILABLE, "IAM JWKS answered HTTP %ld", resp.status);
        }
        rc = cf_jwks_parse(resp.body.data, resp.body.len, ret);
        cf_http_response_free(&resp);
        return rc;
    }
    cf_buf_init(&b, CF_JWKS_MAX_BYTES);
    rc = cf_file_read(src, CF_JWKS_MAX_BYTES, &b);
    if (rc == 0)
        rc = cf_jwks_parse(b.data, b.len, ret);
    cf_buf_free(&b);
    if (rc != 0)
        return cf_err_set(CF_E_UNAVAILABLE, "cannot load IAM JWKS from %s: %s", src, cf_err_detail(rc));
    return 0;
}

/* Replaces the JWKS, at most once per JWKS_REFRESH_MIN_S (so a flood of tokens
 * with made-up kids cannot turn into a flood of fetches). */
static int jwks_refresh(cf_svc *s, bool force)
{
    cf_jwks *fresh = NULL, *old;
    int64_t now = cf_svc_now();
    int rc;

    pthread_mutex_lock(&s->refresh_lock);
    if (!force && now - s->last_refresh < JWKS_REFRESH_MIN_S) {
        pthread_mutex_unlock(&s->refresh_lock);
        return 0;
    }
    s->last_refresh = now;
    rc = jwks_load(s, &fresh);
    pthread_mutex_unlock(&s->refresh_lock);
    if (rc != 0) {
        cf_log(CF_LOG_WARN, "svc.jwks_unavailable", "reason", cf_err_detail(rc), NULL);
        return rc;
    }
    pthread_rwlock_wrlock(&s->jwks_lock);
    old = s->jwks;
    s->jwks = fresh;
    pthread_rwlock_unlock(&s->jwks_lock);
    cf_jwks_free(old);
    return 0;
}

static int verify_with_current(cf_svc *s, const char *tok, size_t len, cf_principal *ret)
{
    int rc;

    pthread_rwlock_rdlock(&s->jwks_lock);
    if (s->jwks == NULL)
        rc = cf_err_set(CF_E_UNAVAILABLE, "IAM JWKS not loaded: cannot verify access tokens");
    else
        rc = cf_token_verify(tok, len, s->jwks, 0, ret);
    pthread_rwlock_unlock(&s->jwks_lock);
    return rc;
}

int cf_svc_authenticate(cf_svc *s, const cf_http_req *req, cf_principal *ret)
{
    const char *tok;
    size_t len;
    int rc;

    CF_GUARD(cf_bearer_token(cf_http_req_header(req, "Authorization"), &tok, &len));
    rc = verify_with_current(s, tok, len, ret);
    if (rc == CF_E_UNAVAILABLE || (rc == CF_E_UNAUTHENTICATED && strstr(cf_err_detail(rc), "kid") != NULL)) {
        /* Key rotation at IAM, or the JWKS was not reachable at start-up. */
        char why[256];
        if (cf_fmt(why, sizeof(why), "%s", cf_err_detail(rc)) != 0)
            why[0] = 0;
        if (jwks_refresh(s, false) == 0)
            rc = verify_with_current(s, tok, len, ret);
        else if (rc == CF_E_UNAVAILABLE)
            rc = cf_err_set(CF_E_UNAVAILABLE, "%s", why);
    }
    return rc;
}

int cf_svc_jwks_ready(cf_svc *s)
{
    bool loaded;

    pthread_rwlock_rdlock(&s->jwks_lock);
    loaded = s->jwks != NULL;
    pthread_rwlock_unlock(&s->jwks_lock);
    if (loaded)
        return 0;
    CF_GUARD(jwks_refresh(s, false));
    pthread_rwlock_rdlock(&s->jwks_lock);
    loaded = s->jwks != NULL;
    pthread_rwlock_unlock(&s->jwks_lock);
    return loaded ? 0 : cf_err_set(CF_E_UNAVAILABLE, "IAM JWKS not loaded");
}

int cf_svc_authorize(cf_svc *s, const cf_http_req *req, cf_perm perm, const char *tenant, cf_principal *ret)
{
    cf_principal p;

    CF_GUARD(cf_svc_authenticate(s, req, &p));
    CF_GUARD(cf_authz_check(&p, perm, tenant));
    *ret = p;
    return 0;
}

int cf_svc_require_peer(const cf_http_req *req, const char *const *services)
{
    const char *peer = cf_http_req_peer_id(req);
    char want[96];

    if (peer == NULL)
        return cf_err_set(CF_E_UNAUTHENTICATED, "this endpoint is for Coffer services: a client certificate is required");
    for (size_t i = 0; services[i] != NULL; i++) {
        if (cf_fmt(want, sizeof(want), "spiffe://coffer/%s", services[i]) == 0 && strcmp(peer, want) == 0)
            return 0;
    }
    return cf_err_set(CF_E_FORBIDDEN, "service identity %.96s may not call this endpoint", peer);
}

/* Wakes the audit forwarder: a new event is in the spool. */
static void fwd_kick(cf_svc *s)
{
    pthread_mutex_lock(&s->fwd_lock);
    s->fwd_kick = true;
    pthread_cond_signal(&s->fwd_cond);
    pthread_mutex_unlock(&s->fwd_lock);
}

int cf_svc_audit(cf_svc *s, const cf_http_req *req, const cf_principal *actor, const char *action,
                 const char *tenant, const char *resource, const char *outcome, json_t *details)
{
    json_t *ev = json_object();
    const char *peer = req ? cf_http_req_peer_id(req) : NULL;
    int rc = CF_E_NOMEM;

    if (ev == NULL)
        goto out;
    if (json_object_set_new(ev, "service", json_string(s->name)) != 0 ||
        json_object_set_new(ev, "action", json_string(action)) != 0 ||
        json_object_set_new(ev, "outcome", json_string(outcome)) != 0)
        goto out;
    if (actor != NULL) {
        if (json_object_set_new(ev, "actor", json_string(actor->sub)) != 0)
            goto out;
    } else if (json_object_set_new(ev, "actor", json_string(peer ? peer : "anonymous")) != 0) {
        goto out;
    }
    if (tenant != NULL && json_object_set_new(ev, "tenant", json_string(tenant)) != 0)
        goto out;
    if (resource != NULL && json_object_set_new(ev, "resource", json_string(resource)) != 0)
        goto out;
    if (req != NULL && json_object_set_new(ev, "request_id", json_string(cf_http_req_id(req))) != 0)
        goto out;
    if (details != NULL) {
        if (json_object_set(ev, "details", details) != 0)
            goto out;
    }
    rc = cf_spool_append(s->spool, ev, NULL);
    if (rc != 0) {
        cf_log(CF_LOG_ERROR, "audit.append_failed", "action", action, "reason", cf_err_detail(rc), NULL);
        rc = cf_err_set(CF_E_UNAVAILABLE, "audit log unavailable: operation refused");
    } else {
        fwd_kick(s);
    }
out:
    json_decref(ev);
    json_decref(details);
    return rc;
}

/* A client with this service's certificate; timeouts 0 = the client defaults. */
static int new_client(cf_svc *s, const char *url, const char *expect_service, unsigned connect_ms,
                      unsigned timeout_ms, cf_http_client **ret)
{
    char peer[96];
    cf_http_client_opts o;

    memset(&o, 0, sizeof(o));
    o.base_url = url;
    o.ca_file = opt_str(s, "tls.ca");
    o.cert_file = opt_str(s, "tls.cert");
    o.key_file = opt_str(s, "tls.key");
    o.connect_timeout_ms = connect_ms;
    o.timeout_ms = timeout_ms;
    if (expect_service != NULL && strncmp(url, "https://", 8) == 0) {
        CF_GUARD(cf_fmt(peer, sizeof(peer), "spiffe://coffer/%s", expect_service));
        o.expect_peer_id = peer;
    }
    return cf_http_client_new(&o, ret);
}

int cf_svc_client(cf_svc *s, const char *url, const char *expect_service, cf_http_client **ret)
{
    return new_client(s, url, expect_service, 0, 0, ret);
}

/* ---- audit forwarder (svc.h "Audit forwarding") -------------------------------- */

/* cf_audit_send_fn: one batch to POST {audit.url}/v1/audit/events. Acknowledged
 * only by a 200 whose "accepted" counts the whole batch. */
static int fwd_post(void *arg, cf_audit_event *const *events, size_t n)
{
    cf_svc *s = arg;
    cf_http_request rq = {.method = "POST", .path = "/v1/audit/events", .content_type = "application/json"};
    cf_http_response resp;
    json_t *j = NULL;
    uint64_t accepted = 0;
    cf_buf body;
    int rc;

    memset(&resp, 0, sizeof(resp));
    cf_buf_init(&body, CF_AUDIT_MAX_BATCH_BYTES);
    CF_GUARD_OUT(cf_audit_batch_encode(events, n, &body));
    rq.body = body.data;
    rq.body_len = body.len;
    CF_GUARD_OUT(cf_http_client_do(s->fwd_client, &rq, &resp));
    if (resp.status != 200) {
        const char *msg = NULL;
        if (cf_http_response_json(&resp, &j) == 0)
            msg = json_string_value(json_object_get(json_object_get(j, "error"), "message"));
        rc = cf_err_set(resp.status >= 500 ? CF_E_UNAVAILABLE : CF_E_HTTP,
                        "the audit service answered HTTP %ld: %.200s", resp.status,
                        msg != NULL ? msg : "(no message)");
        goto out;
    }
    CF_GUARD_OUT(cf_http_response_json(&resp, &j));
    CF_GUARD_OUT(cf_json_get_u64(j, "accepted", true, CF_AUDIT_MAX_BATCH, &accepted));
    CF_ENSURE_OUT(accepted == n, cf_err_set(CF_E_HTTP, "the audit service acknowledged %llu of %zu events",
                                            (unsigned long long)accepted, n));
    rc = 0;
out:
    json_decref(j);
    cf_http_response_free(&resp);
    cf_buf_free(&body);
    return rc;
}

static void *fwd_main(void *arg)
{
    cf_svc *s = arg;
    unsigned backoff = 0; /* ms; 0 while deliveries succeed */
    bool stop = false;

    while (!stop) {
        struct timespec until;
        unsigned wait_ms = backoff > 0 ? backoff : CF_AUDIT_FWD_POLL_MS;
        cf_audit_drain_stats st = {0, 0};
        size_t pending;
        int rc;

        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += wait_ms / 1000;
        until.tv_nsec += (long)(wait_ms % 1000) * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        pthread_mutex_lock(&s->fwd_lock);
        /* While backing off, new events wait for the timer (no hammering of
         * an audit service that is down); a stop request ends the wait. */
        while (!s->fwd_stop && !(s->fwd_kick && backoff == 0))
            if (pthread_cond_timedwait(&s->fwd_cond, &s->fwd_lock, &until) == ETIMEDOUT)
                break;
        stop = s->fwd_stop;
        s->fwd_kick = false;
        pthread_mutex_unlock(&s->fwd_lock);

        pending = cf_spool_pending_count(s->spool);
        if (pending == 0) {
            backoff = 0;
            continue;
        }
        rc = cf_audit_drain(s->spool, CF_AUDIT_MAX_BATCH, s->fwd_send, s->fwd_arg, &st);
        if (rc == 0) {
            if (backoff > 0)
                cf_log(CF_LOG_INFO, "audit.forward_resumed", NULL);
            backoff = 0;
            continue;
        }
        if (backoff == 0) { /* log a failure once, not at every retry */
            char n[24];
            if (cf_fmt(n, sizeof(n), "%zu", cf_spool_pending_count(s->spool)) != 0)
                n[0] = 0;
            cf_log(rc == CF_E_PARSE ? CF_LOG_ERROR : CF_LOG_WARN, "audit.forward_failed", "reason",
                   cf_err_detail(rc), "pending", n, NULL);
        }
        backoff = backoff == 0 ? CF_AUDIT_FWD_BACKOFF_MIN_MS : backoff * 2;
        if (backoff > CF_AUDIT_FWD_BACKOFF_MAX_MS)
            backoff = CF_AUDIT_FWD_BACKOFF_MAX_MS;
    }
    return NULL;
}

int cf_svc_set_audit_sink(cf_svc *s, cf_audit_send_fn send, void *arg)
{
    CF_ENSURE(send != NULL && !s->fwd_running, CF_E_INVAL);
    s->fwd_send = send;
    s->fwd_arg = arg;
    return 0;
}

static int fwd_start(cf_svc *s)
{
    if (s->fwd_send == NULL && s->fwd_client != NULL) {
        s->fwd_send = fwd_post;
        s->fwd_arg = s;
    }
    if (s->fwd_send == NULL)
        return 0;
    s->fwd_stop = false;
    s->fwd_kick = true; /* events left from an earlier run go out at once */
    if (pthread_create(&s->fwd_thread, NULL, fwd_main, s) != 0)
        return cf_err_set(CF_E_NOMEM, "cannot start the audit forwarder");
    s->fwd_running = true;
    return 0;
}

static void fwd_stop(cf_svc *s)
{
    if (!s->fwd_running)
        return;
    pthread_mutex_lock(&s->fwd_lock);
    s->fwd_stop = true;
    pthread_cond_signal(&s->fwd_cond);
    pthread_mutex_unlock(&s->fwd_lock);
    pthread_join(s->fwd_thread, NULL);
    s->fwd_running = false;
}

/* audit.url: forwarded over https with our certificate (the audit service takes
 * events from mTLS-authenticated services only). A plain http URL or a missing
 * certificate cannot work: the service starts (the gateway's audit.url is also
 * its proxy target, which may be plain http behind a TLS proxy), says so, and
 * its events stay in the durable spool. */
static int fwd_setup(cf_svc *s)
{
    const char *url = opt_str(s, "audit.url");
    int rc;

    if (url == NULL)
        return 0;
    if (strlen(url) > CF_HTTP_MAX_URL || (strncmp(url, "https://", 8) != 0 && strncmp(url, "http://", 7) != 0))
        return cf_err_set(CF_E_CONFIG, "config 'audit.url': must be an https:// URL");
    if (strncmp(url, "https://", 8) != 0 || opt_str(s, "tls.cert") == NULL || opt_str(s, "tls.key") == NULL) {
        cf_log(CF_LOG_WARN, "audit.forward_disabled", "reason",
               "audit.url needs https and this service's tls.cert/tls.key (the audit service accepts events over "
               "mTLS only): events stay in the spool",
               NULL);
        return 0;
    }
    rc = new_client(s, url, "audit", CF_AUDIT_FWD_CONNECT_TIMEOUT_MS, CF_AUDIT_FWD_TIMEOUT_MS, &s->fwd_client);
    if (rc != 0)
        return cf_err_set(CF_E_CONFIG, "config 'audit.url': %s", cf_err_detail(rc));
    return 0;
}

static int parse_mtls(const char *v, cf_http_mtls *ret)
{
    if (strcmp(v, "off") == 0)
        *ret = CF_HTTP_MTLS_OFF;
    else if (strcmp(v, "optional") == 0)
        *ret = CF_HTTP_MTLS_OPTIONAL;
    else if (strcmp(v, "require") == 0)
        *ret = CF_HTTP_MTLS_REQUIRE;
    else
        return cf_err_set(CF_E_CONFIG, "tls.client_auth must be off, optional or require");
    return 0;
}

static int setup_http(cf_svc *s)
{
    cf_http_server_opts o;
    int64_t port = 0, threads = 2;
    const char *mtls = opt_str(s, "tls.client_auth");

    memset(&o, 0, sizeof(o));
    o.name = s->name;
    o.bind_addr = opt_str(s, "listen.host");
    CF_GUARD(cf_config_get_int(s->cfg, "listen.port", &port));
    CF_GUARD(cf_config_get_int(s->cfg, "http.threads", &threads));
    o.port = (uint16_t)port;
    o.threads = (unsigned)threads;
    o.threading = CF_HTTP_THREADS_EPOLL;
    o.tls_cert_file = opt_str(s, "tls.cert");
    o.tls_key_file = opt_str(s, "tls.key");
    o.client_ca_file = opt_str(s, "tls.ca");
    if ((o.tls_cert_file == NULL) != (o.tls_key_file == NULL))
        return cf_err_set(CF_E_CONFIG, "tls.cert and tls.key go together");
    CF_GUARD(parse_mtls(mtls ? mtls : "optional", &o.mtls));
    if (o.tls_cert_file == NULL || o.client_ca_file == NULL)
        o.mtls = CF_HTTP_MTLS_OFF;
    return cf_http_server_new(&o, &s->http);
}

/* Whether the service declares key itself (it then replaces the common option). */
static bool def_declares(const cf_svc_def *def, const char *key)
{
    for (size_t i = 0; i < def->nopts; i++)
        if (strcmp(def->opts[i].key, key) == 0)
            return true;
    return false;
}

int cf_svc_init(const cf_svc_def *def, int argc, char **argv, cf_svc **ret)
{
    size_t n = CF_ARRAY_LEN(common_opts) + def->nopts, k = 0;
    cf_svc *s;
    const char *state = NULL, *lvl = NULL, *spool_dir = NULL;
    char spool_buf[4096];
    cf_log_level level;
    sigset_t set;
    int rc;

    CF_ENSURE(n <= MAX_OPTS && strlen(def->name) < sizeof(s->name), CF_E_INVAL);
    s = calloc(1, sizeof(*s));
    CF_ENSURE(s != NULL, CF_E_NOMEM);
    memcpy(s->name, def->name, strlen(def->name) + 1);
    pthread_rwlock_init(&s->jwks_lock, NULL);
    pthread_mutex_init(&s->refresh_lock, NULL);
    pthread_mutex_init(&s->stop_lock, NULL);
    pthread_cond_init(&s->stop_cond, NULL);
    pthread_mutex_init(&s->fwd_lock, NULL);
    pthread_cond_init(&s->fwd_cond, NULL);
    cf_log_set_service(s->name);
    cf_harden_process();

    s->schema = calloc(n, sizeof(*s->schema));
    CF_ENSURE_OUT(s->schema != NULL, CF_E_NOMEM);
    for (size_t i = 0; i < CF_ARRAY_LEN(common_opts); i++)
        if (!def_declares(def, common_opts[i].key))
            s->schema[k++] = common_opts[i];
    if (def->nopts > 0)
        memcpy(s->schema + k, def->opts, def->nopts * sizeof(*def->opts));
    CF_GUARD_OUT(cf_config_new(s->schema, k + def->nopts, &s->cfg));
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            cf_buf help;
            cf_buf_init(&help, 1 << 16);
            if (cf_config_help(s->cfg, &help) == 0 && cf_buf_nul_terminate(&help) == 0)
                printf("usage: cofferd %s [--key=value ...]\n\n%s", s->name, (const char *)help.data);
            cf_buf_free(&help);
            rc = CF_E_NOT_FOUND;
            goto out;
        }
    }
    rc = cf_config_load_all(s->cfg, argc, argv, NULL, NULL);
    if (rc != 0) {
        rc = cf_err_set(CF_E_CONFIG, "%s", cf_err_detail(rc));
        goto out;
    }
    lvl = opt_str(s, "log.level");
    if (lvl != NULL) {
        CF_GUARD_OUT(cf_log_level_parse(lvl, &level));
        cf_log_set_level(level);
    }
    state = opt_str(s, "state_dir");
    CF_GUARD_OUT(cf_fmt(s->dir, sizeof(s->dir), "%s/%s", state, s->name));
    CF_GUARD_OUT(cf_mkdirs(s->dir, 0700));
    spool_dir = opt_str(s, "audit.spool");
    if (spool_dir == NULL) {
        CF_GUARD_OUT(cf_fmt(spool_buf, sizeof(spool_buf), "%s/spool", s->dir));
        spool_dir = spool_buf;
    }
    rc = cf_spool_open(spool_dir, &s->spool);
    if (rc != 0) {
        rc = cf_err_set(CF_E_UNAVAILABLE, "audit spool %s: %s", spool_dir, cf_err_detail(rc));
        goto out;
    }
    CF_GUARD_OUT(setup_http(s));
    CF_GUARD_OUT(fwd_setup(s));
    if (opt_str(s, "iam.jwks") != NULL)
        (void)jwks_refresh(s, true); /* not fatal: IAM may start later; retried on demand */
    /* Signals are taken synchronously by cf_svc_run (sigwait); every thread
     * created from here on inherits the mask. */
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    cf_config_log(s->cfg);
    *ret = s;
    s = NULL;
    rc = 0;
out:
    cf_svc_free(s);
    return rc;
}

void cf_svc_request_stop(cf_svc *s)
{
    pthread_mutex_lock(&s->stop_lock);
    s->stop = 1;
    pthread_cond_broadcast(&s->stop_cond);
    pthread_mutex_unlock(&s->stop_lock);
}

static void *signal_thread(void *arg)
{
    cf_svc *s = arg;
    sigset_t set;
    int sig = 0;

    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    if (sigwait(&set, &sig) == 0) {
        pthread_mutex_lock(&s->stop_lock);
        int already = s->stop;
        s->stopped_by_signal = 1;
        pthread_mutex_unlock(&s->stop_lock);
        if (!already)
            cf_log(CF_LOG_INFO, "service.signal", "signal", sig == SIGTERM ? "SIGTERM" : "SIGINT", NULL);
        cf_svc_request_stop(s);
    }
    return NULL;
}

int cf_svc_run(cf_svc *s)
{
    const char *port_file = opt_str(s, "port_file");
    char port[16];
    pthread_t sigt;

    CF_GUARD(cf_http_server_start(s->http));
    CF_GUARD(cf_fmt(port, sizeof(port), "%u", (unsigned)cf_http_server_port(s->http)));
    if (port_file != NULL)
        CF_GUARD(cf_file_write_atomic(port_file, port, strlen(port), 0644));
    cf_log(CF_LOG_INFO, "service.listening", "port", port, "tls", opt_str(s, "tls.cert") ? "on" : "off", NULL);
    CF_GUARD(fwd_start(s));
    if (pthread_create(&sigt, NULL, signal_thread, s) != 0) {
        fwd_stop(s);
        return CF_E_NOMEM;
    }
    pthread_mutex_lock(&s->stop_lock);
    while (!s->stop)
        pthread_cond_wait(&s->stop_cond, &s->stop_lock);
    int by_signal = s->stopped_by_signal;
    pthread_mutex_unlock(&s->stop_lock);
    /* Stopped from inside the process: wake the signal thread so that it does
     * not outlive this call (it only ever takes SIGTERM/SIGINT). */
    if (!by_signal)
        pthread_kill(sigt, SIGTERM);
    pthread_join(sigt, NULL);
    cf_http_server_stop(s->http, 5000);
    /* After the server: the events of the last requests get a last attempt. */
    fwd_stop(s);
    cf_log(CF_LOG_INFO, "service.stopped", NULL);
    return 0;
}

void cf_svc_free(cf_svc *s)
{
    if (s == NULL)
        return;
    fwd_stop(s);
    cf_http_server_free(s->http);
    cf_http_client_free(s->fwd_client);
    cf_spool_close(s->spool);
    cf_jwks_free(s->jwks);
    cf_config_free(s->cfg);
    free(s->schema);
    pthread_rwlock_destroy(&s->jwks_lock);
    pthread_mutex_destroy(&s->refresh_lock);
    pthread_mutex_destroy(&s->stop_lock);
    pthread_cond_destroy(&s->stop_cond);
    pthread_mutex_destroy(&s->fwd_lock);
    pthread_cond_destroy(&s->fwd_cond);
    free(s);
}
