/*
 * Gateway set-up, admission (authentication, rate limits), health, readiness
 * and metrics (gateway.h). The request handlers live in session.c, jobs.c and
 * proxy.c.
 */
#include "gateway/gateway.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/log.h"
#include "base/parse.h"
#include "base/secmem.h"
#include "crypto/hash.h"
#include "gateway/gw_int.h"

const cf_config_opt cf_gw_options[] = {
    {"manifest", CF_CFG_PATH, NULL, "the manifest (policy) the platform runs with: deployments, tenants, jobs",
     CF_CFG_REQUIRED, 0, 0},
    {"insecure_http", CF_CFG_BOOL, "false",
     "allow serving plain HTTP when tls.cert is unset (tests, or a TLS proxy in front)", 0, 0, 0},
    {"iam.url", CF_CFG_STRING, NULL, "IAM base URL (https://host:port)", 0, 0, 0},
    {"kms.url", CF_CFG_STRING, NULL, "KMS base URL: TEE registry and /v1/kms/*", 0, 0, 0},
    {"attest.url", CF_CFG_STRING, NULL, "attestation service base URL", 0, 0, 0},
    {"audit.url", CF_CFG_STRING, NULL, "audit service base URL (/v1/audit/* is proxied there)", 0, 0, 0},
    {"upstream.cert", CF_CFG_PATH, NULL, "client certificate for mTLS to the services (default tls.cert)", 0, 0, 0},
    {"upstream.key", CF_CFG_PATH, NULL, "its private key (default tls.key)", 0, 0, 0},
    {"upstream.ca", CF_CFG_PATH, NULL, "CA trusted for the services (default tls.ca)", 0, 0, 0},
    {"registry.ttl", CF_CFG_DURATION, "2s", "how long the TEE registry view is used before it is re-read", 0, 0,
     3600},
    {"registry.unhealthy_for", CF_CFG_DURATION, "10s", "how long a TEE that failed stays out of rotation", 0, 0,
     3600},
    {"ratelimit.rps", CF_CFG_INT, "50", "requests per second per tenant", 0, 1, CF_GW_MAX_RATE},
    {"ratelimit.burst", CF_CFG_INT, "100", "burst per tenant", 0, 1, CF_GW_MAX_RATE},
    {"ratelimit.concurrency", CF_CFG_INT, "32", "requests in flight per tenant (0 = no cap)", 0, 0,
     CF_GW_MAX_RATE},
    {"ratelimit.ip_rps", CF_CFG_INT, "5", "token requests per second per source address", 0, 1, CF_GW_MAX_RATE},
    {"ratelimit.ip_burst", CF_CFG_INT, "20", "token request burst per source address", 0, 1, CF_GW_MAX_RATE},
    {"timeouts.connect_ms", CF_CFG_INT, "2000", "connect timeout for upstream calls (ms)", 0, 1, 60000},
    {"timeouts.upstream", CF_CFG_DURATION, "15s", "whole-call timeout for services and TEE evidence", 0, 0, 600},
    {"timeouts.job", CF_CFG_DURATION, "120s", "whole-call timeout for a job forwarded to a TEE", 0, 0, 3600},
    {"session.ttl", CF_CFG_DURATION, "5m", "longest validity announced for a session (expires_at)", 0, 0, 86400},
    {"auth.cache_ttl", CF_CFG_DURATION, "30s", "remember verified access tokens this long (0 = verify every request)",
     0, 0, CF_GW_AUTH_CACHE_MAX_TTL},
};
const size_t cf_gw_noptions = CF_ARRAY_LEN(cf_gw_options);

/* Metrics route labels: the route patterns, proxies collapsed to "<prefix>/...". */
static const char *const route_labels[] = {
    "/healthz",       "/readyz",          "/metrics",   "/v1/sessions",      "/v1/jobs/{job}",
    "/v1/iam/token",  "/v1/iam/*",        "/v1/kms/*",  "/v1/registry/*",    "/v1/attestation/*",
    "/v1/audit/*",    "unmatched",
};
static const char *const upstream_labels[] = {GW_UP_IAM,    GW_UP_KMS,   GW_UP_REGISTRY,
                                              GW_UP_ATTEST, GW_UP_AUDIT, GW_UP_TEE};

static const char *const proxy_methods[] = {"GET", "POST", "PUT", "PATCH", "DELETE"};

/* ---- errors ------------------------------------------------------------------------ */

void gw_header(cf_http_resp *resp, const char *name, const char *value)
{
    if (cf_http_resp_header(resp, name, value) < 0)
        cf_log(CF_LOG_WARN, "gateway.header_dropped", "header", name, NULL);
}

int gw_fail(cf_http_resp *resp, int status, const char *code, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(msg, sizeof(msg), fmt, ap); /* a long message is cut, not refused */
    va_end(ap);
    if (n < 0)
        msg[0] = 0;
    if (cf_http_resp_error_status(resp, status, code, msg) < 0)
        return CF_E_INTERNAL;
    return 0;
}

int gw_fail_upstream(struct cf_gw *gw, cf_http_resp *resp, const char *upstream, int rc)
{
    cf_gw_metrics_upstream_error(gw->metrics, upstream);
    /* The transport detail (addresses, TLS errors) goes to the log, not to the client. */
    cf_log(CF_LOG_WARN, "gateway.upstream_error", "upstream", upstream, "reason", cf_err_detail(rc), NULL);
    if (rc == CF_E_TIMEOUT)
        return gw_fail(resp, 504, "gateway_timeout", "%s did not answer in time", upstream);
    if (rc == CF_E_TOO_LARGE)
        return gw_fail(resp, 502, "bad_gateway", "%s answered with more data than allowed", upstream);
    return gw_fail(resp, 502, "bad_gateway", "%s is unavailable", upstream);
}

/* ---- admission ----------------------------------------------------------------------- */

static struct gw_auth_slot *auth_slot(cf_gw *gw, const uint8_t d[32])
{
    uint32_t i = (uint32_t)d[0] | (uint32_t)d[1] << 8 | (uint32_t)d[2] << 16;
    return &gw->auth_cache[i % CF_GW_AUTH_CACHE_SLOTS];
}

/*
 * Verified-token cache: a token is verified once (signature, claims) and then
 * recognised by its SHA-256 until min(exp, now + auth.cache_ttl). The digest is
 * compared in constant time; a collision in the slot index only evicts. Tokens
 * are short-lived and IAM does not revoke single tokens, so a cached verdict is
 * the verdict a fresh verification would give, except for a JWKS key removed
 * within the last auth.cache_ttl seconds.
 */
static bool auth_cache_get(cf_gw *gw, const uint8_t d[32], int64_t now, cf_principal *ret)
{
    struct gw_auth_slot *s;
    bool hit = false;

    if (gw->auth_cache == NULL)
        return false;
    pthread_mutex_lock(&gw->auth_mu);
    s = auth_slot(gw, d);
    if (s->until > now && s->p.exp > now && cf_ct_eq(s->digest, d, 32)) {
        *ret = s->p;
        hit = true;
    }
    pthread_mutex_unlock(&gw->auth_mu);
    return hit;
}

static void auth_cache_put(cf_gw *gw, const uint8_t d[32], int64_t now, const cf_principal *p)
{
    struct gw_auth_slot *s;

    if (gw->auth_cache == NULL || p->exp <= now)
        return;
    pthread_mutex_lock(&gw->auth_mu);
    s = auth_slot(gw, d);
    memcpy(s->digest, d, 32);
    s->p = *p;
    s->until = CF_MIN(p->exp, now + gw->auth_cache_ttl_s);
    pthread_mutex_unlock(&gw->auth_mu);
}

static int authenticate(cf_gw *gw, const cf_http_req *req, const char *tok, size_t len,
                        cf_principal *ret)
{
    uint8_t d[32];
    int64_t now = cf_svc_now();
    cf_principal p;

    CF_GUARD(cf_sha256(tok, len, d));
    if (auth_cache_get(gw, d, now, ret))
        return 0;
    CF_GUARD(cf_svc_authenticate(gw->svc, req, &p));
    auth_cache_put(gw, d, now, &p);
    *ret = p;
    return 0;
}

int cf_gw_admit(cf_gw *gw, const cf_http_req *req, cf_http_resp *resp, cf_gw_admit_mode mode,
                cf_gw_caller *ret)
{
    const cf_gw_limit *lim;
    cf_gw_caller c;
    uint32_t retry = 0;
    char ra[16];
    int rc;

    memset(&c, 0, sizeof(c));
    if (mode == CF_GW_ADMIT_SOURCE) {
        const char *addr = cf_http_req_remote_addr(req);
        CF_GUARD(cf_fmt(c.key, sizeof(c.key), "ip:%s", addr[0] ? addr : "unknown"));
        lim = &gw->ip_limit;
    } else {
        const char *tok = NULL;
        size_t len = 0;
        rc = cf_bearer_token(cf_http_req_header(req, "Authorization"), &tok, &len);
        if (rc == 0)
            rc = authenticate(gw, req, tok, len, &c.p);
        if (rc < 0) {
            int status = cf_err_http_status(rc);
            if (status >= 500) {
                cf_log(CF_LOG_WARN, "gateway.auth_unavailable", "reason", cf_err_detail(rc), NULL);
                gw_fail(resp, 503, cf_err_name(CF_E_UNAVAILABLE),
                        "cannot verify access tokens right now");
                return CF_E_UNAVAILABLE;
            }
            /* 401 for every token problem (RFC 6750 §3.1 invalid_token). */
            gw_fail(resp, 401, cf_err_name(CF_E_UNAUTHENTICATED), "%s", cf_err_detail(rc));
            gw_header(resp, "WWW-Authenticate", "Bearer");
            return CF_E_UNAUTHENTICATED;
        }
        c.authenticated = true;
        c.bearer = tok;
        CF_GUARD(cf_fmt(c.key, sizeof(c.key), "t:%s", c.p.tenant));
        lim = &gw->tenant_limit;
    }
    rc = cf_gw_limiter_acquire(gw->limiter, c.key, lim, cf_gw_now_ms(), &retry);
    if (rc < 0) {
        cf_gw_metrics_rate_limited(gw->metrics);
        gw_fail(resp, 429, cf_err_name(CF_E_RATE_LIMITED), "%s", cf_err_detail(rc));
        if (cf_fmt(ra, sizeof(ra), "%u", retry ? retry : 1) == 0)
            gw_header(resp, "Retry-After", ra);
        return CF_E_RATE_LIMITED;
    }
    c.holds_slot = lim->concurrency > 0;
    *ret = c;
    return 0;
}

void cf_gw_release(cf_gw *gw, cf_gw_caller *c)
{
    if (c == NULL || !c->holds_slot)
        return;
    cf_gw_limiter_release(gw->limiter, c->key);
    c->holds_slot = false;
}

/* ---- registry --------------------------------------------------------------------------- */

/* Appends s percent-encoded (RFC 3986 §2.1: everything but unreserved). */
static int put_pct(cf_buf *b, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
            ch == '-' || ch == '.' || ch == '_' || ch == '~') {
            CF_GUARD(cf_buf_put_u8(b, ch));
        } else {
            CF_GUARD(cf_buf_put_u8(b, '%'));
            CF_GUARD(cf_buf_put_u8(b, (uint8_t)hex[ch >> 4]));
            CF_GUARD(cf_buf_put_u8(b, (uint8_t)hex[ch & 15]));
        }
    }
    return 0;
}

/* GET {kms}/v1/registry/tees, following "next" cursors (?after=), over mTLS
 * with the gateway's own identity: the KMS lets spiffe://coffer/gateway read the
 * listing without a token (routing facts, no secrets). */
int gw_fetch_registry(void *cls, cf_gw_tee_list *ret)
{
    cf_gw *gw = cls;
    cf_gw_tee_list l = {0};
    char next[CF_GW_MAX_CURSOR + 1] = "";
    cf_buf path;
    int rc = 0, pages = 0;

    cf_buf_init(&path, CF_HTTP_MAX_URL);
    CF_ENSURE_OUT(gw->kms_url != NULL, cf_err_set(CF_E_UNAVAILABLE, "kms.url is not configured"));
    do {
        cf_http_request rq;
        cf_http_response r;

        CF_ENSURE_OUT(pages < CF_GW_REGISTRY_MAX_PAGES,
                      cf_err_set(CF_E_TOO_LARGE, "registry listing has more than %d pages",
                                 CF_GW_REGISTRY_MAX_PAGES));
        cf_buf_reset(&path);
        CF_GUARD_OUT(cf_buf_printf(&path, "/v1/registry/tees?limit=%d", CF_GW_REGISTRY_PAGE));
        if (next[0] != 0) {
            CF_GUARD_OUT(cf_buf_put_str(&path, "&after="));
            CF_GUARD_OUT(put_pct(&path, next));
        }
        CF_GUARD_OUT(cf_buf_nul_terminate(&path));
        memset(&rq, 0, sizeof(rq));
        memset(&r, 0, sizeof(r));
        rq.method = "GET";
        rq.path = (const char *)path.data;
        rc = cf_gw_call(gw->clients, gw->kms_url, "kms", gw->upstream_timeout_ms,
                        CF_GW_MAX_REGISTRY_RESPONSE, &rq, &r);
        if (rc < 0)
            goto out;
        if (r.status != 200) {
            rc = cf_err_set(CF_E_UNAVAILABLE, "KMS registry listing answered HTTP %ld", r.status);
            cf_http_response_free(&r);
            goto out;
        }
        rc = cf_gw_registry_parse_page(r.body.data, r.body.len, &l, next, sizeof(next));
        cf_http_response_free(&r);
        if (rc < 0)
            goto out;
        pages++;
    } while (next[0] != 0);
    CF_GUARD_OUT(cf_gw_tee_list_finish(&l));
    *ret = l;
    memset(&l, 0, sizeof(l));
out:
    if (rc < 0)
        cf_gw_metrics_upstream_error(gw->metrics, GW_UP_REGISTRY);
    cf_gw_tee_list_free(&l);
    cf_buf_free(&path);
    return rc;
}

/* ---- health, readiness, metrics ---------------------------------------------------- */

static int h_healthz(void *cls, const cf_http_req *req, cf_http_resp *resp)
{
    static const char body[] = "{\"status\":\"ok\"}";
    (void)cls;
    (void)req;
    return cf_http_resp_set(resp, 200, GW_CT_JSON, body, sizeof(body) - 1);
}

static int h_readyz(void *cls, const cf_http_req *req, cf_http_resp *resp)
{
    static const char body[] = "{\"status\":\"ready\"}";
    cf_gw *gw = cls;
    int rc;

    (void)req;
    rc = cf_svc_jwks_ready(gw->svc);
    if (rc < 0)
        return gw_fail(resp, 503, cf_err_name(CF_E_UNAVAILABLE), "not ready: IAM JWKS not loaded");
    rc = cf_gw_registry_sync(gw->registry, false);
    if (rc < 0)
        return gw_fail(resp, 503, cf_err_name(CF_E_UNAVAILABLE), "not ready: TEE registry unreachable");
    return cf_http_resp_set(resp, 200, GW_CT_JSON, body, sizeof(body) - 1);
}

static int h_metrics(void *cls, const cf_http_req *req, cf_http_resp *resp)
{
    cf_gw *gw = cls;
    cf_buf b;
    int rc;

    (void)req;
    cf_buf_init(&b, 1u << 20);
    rc = cf_gw_metrics_render(gw->metrics, &b);
    if (rc == 0)
        rc = cf_http_resp_set(resp, 200, CF_GW_METRICS_CONTENT_TYPE, b.data, b.len);
    cf_buf_free(&b);
    return rc;
}

/* Metrics label of a matched route pattern (see route_labels). */
static const char *route_label(const cf_gw *gw, const char *route)
{
    if (route[0] == 0)
        return "unmatched";
    for (size_t i = 0; i < GW_NPROXIES; i++) {
        const struct gw_proxy *p = &gw->proxies[i];
        size_t n = strlen(p->prefix);
        if (strncmp(route, p->prefix, n) == 0 && strncmp(route + n, "/{gw1}", 6) == 0)
            return p->label;
    }
    return route;
}

static void observe(void *cls, const char *route, int status, double seconds)
{
    cf_gw *gw = cls;
    cf_gw_metrics_observe(gw->metrics, route_label(gw, route), status, seconds);
}

/* ---- set-up ---------------------------------------------------------------------------- */

static const char *opt_str(const cf_config *cfg, const char *key)
{
    const char *v = NULL;
    return cf_config_get_str(cfg, key, &v) == 0 ? v : NULL;
}

static int opt_u32(const cf_config *cfg, const char *key, uint32_t *ret)
{
    int64_t v = 0;
    CF_GUARD(cf_config_get_int(cfg, key, &v));
    CF_ENSURE(v >= 0 && v <= (int64_t)UINT32_MAX, CF_E_CONFIG);
    *ret = (uint32_t)v;
    return 0;
}

static int check_url(const char *key, const char *url)
{
    if (url == NULL)
        return 0;
    CF_ENSURE(strnlen(url, CF_HTTP_MAX_URL + 1) <= CF_HTTP_MAX_URL &&
                  (strncmp(url, "https://", 8) == 0 || strncmp(url, "http://", 7) == 0),
              cf_err_set(CF_E_CONFIG, "config '%s': must be an http:// or https:// URL", key));
    return 0;
}

/* Proxy routes for one prefix: "<prefix>/{gw1}" ... "<prefix>/{gw1}/.../{gwN}" for
 * every method (the router matches whole segments, so each depth is a route). */
static int add_proxy_routes(cf_http_server *http, struct gw_proxy *p)
{
    char pat[CF_HTTP_MAX_PATTERN + 1];
    size_t len;

    CF_GUARD(cf_fmt(pat, sizeof(pat), "%s", p->prefix));
    len = strlen(pat);
    for (int depth = 1; depth <= CF_GW_PROXY_MAX_DEPTH; depth++) {
        CF_GUARD(cf_fmt(pat + len, sizeof(pat) - len, "/{gw%d}", depth));
        len = strlen(pat);
        for (size_t m = 0; m < CF_ARRAY_LEN(proxy_methods); m++)
            CF_GUARD(cf_http_server_route(http, proxy_methods[m], pat, gw_h_proxy, p,
                                          CF_GW_MAX_PROXY_BODY));
    }
    return 0;
}

/* Services append audit events with their own mTLS identity. Proxied, an append
 * would arrive under the gateway's identity on behalf of any token holder, so
 * the audit log would accept forged "gateway" events: refuse it here. */
static int h_refuse_audit_append(void *cls, const cf_http_req *req, cf_http_resp *resp)
{
    (void)cls;
    (void)req;
    return cf_http_resp_error(resp, CF_E_FORBIDDEN,
                              "audit events are appended by Coffer services directly, not through the gateway");
}

static int add_routes(cf_gw *gw)
{
    cf_http_server *http = cf_svc_http(gw->svc);

    /* One thread per connection: a job forward waits on its TEE for up to
     * timeouts.job, and in a thread pool it would stall every other client
     * connection served by the same thread meanwhile. */
    CF_GUARD(cf_http_server_set_threading(http, CF_HTTP_THREADS_PER_CONNECTION));

    CF_GUARD(cf_http_server_route(http, "GET", "/healthz", h_healthz, gw, 1));
    CF_GUARD(cf_http_server_route(http, "GET", "/readyz", h_readyz, gw, 1));
    CF_GUARD(cf_http_server_route(http, "GET", "/metrics", h_metrics, gw, 1));
    CF_GUARD(cf_http_server_route(http, "POST", "/v1/sessions", gw_h_sessions, gw, CF_GW_MAX_SESSION_BODY));
    CF_GUARD(cf_http_server_route(http, "POST", "/v1/jobs/{job}", gw_h_jobs, gw, CF_HTTP_MAX_ENVELOPE_BODY));
    /* Before the /v1/iam proxy routes: the first matching route wins. */
    CF_GUARD(cf_http_server_route(http, "POST", "/v1/iam/token", gw_h_token, &gw->proxies[0],
                                  CF_GW_MAX_TOKEN_BODY));
    CF_GUARD(cf_http_server_route(http, "POST", "/v1/audit/events", h_refuse_audit_append, gw, 0));
    for (size_t i = 0; i < GW_NPROXIES; i++)
        CF_GUARD(add_proxy_routes(http, &gw->proxies[i]));
    return cf_http_server_observe(http, observe, gw);
}

int cf_gw_new(cf_svc *svc, cf_gw **ret)
{
    const cf_config *cfg = cf_svc_config(svc);
    cf_gw *gw = NULL;
    cf_gw_clients_opts co;
    uint64_t ttl = 0, unhealthy = 0, up = 0, job = 0, sttl = 0, cttl = 0;
    int64_t connect_ms = 0;
    bool insecure = false;
    const char *mpath = opt_str(cfg, "manifest");
    int rc = 0;

    CF_ENSURE(ret != NULL, CF_E_INVAL);
    CF_ENSURE(mpath != NULL, cf_err_set(CF_E_CONFIG, "config 'manifest': required"));
    CF_GUARD(cf_config_get_bool(cfg, "insecure_http", &insecure));
    CF_ENSURE(opt_str(cfg, "tls.cert") != NULL || insecure,
              cf_err_set(CF_E_CONFIG, "the gateway serves HTTPS: set tls.cert and tls.key "
                                      "(or insecure_http=true behind a TLS proxy)"));
    gw = calloc(1, sizeof(*gw));
    CF_ENSURE(gw != NULL, CF_E_NOMEM);
    gw->svc = svc;
    CF_ENSURE_OUT(pthread_mutex_init(&gw->auth_mu, NULL) == 0, CF_E_NOMEM);
    rc = cf_manifest_load(mpath, &gw->manifest);
    if (rc < 0) {
        rc = cf_err_set(CF_E_CONFIG, "config 'manifest': %s", cf_err_detail(rc));
        goto out;
    }
    gw->iam_url = opt_str(cfg, "iam.url");
    gw->kms_url = opt_str(cfg, "kms.url");
    gw->attest_url = opt_str(cfg, "attest.url");
    gw->audit_url = opt_str(cfg, "audit.url");
    CF_GUARD_OUT(check_url("iam.url", gw->iam_url));
    CF_GUARD_OUT(check_url("kms.url", gw->kms_url));
    CF_GUARD_OUT(check_url("attest.url", gw->attest_url));
    CF_GUARD_OUT(check_url("audit.url", gw->audit_url));

    CF_GUARD_OUT(opt_u32(cfg, "ratelimit.rps", &gw->tenant_limit.rps));
    CF_GUARD_OUT(opt_u32(cfg, "ratelimit.burst", &gw->tenant_limit.burst));
    CF_GUARD_OUT(opt_u32(cfg, "ratelimit.concurrency", &gw->tenant_limit.concurrency));
    CF_GUARD_OUT(opt_u32(cfg, "ratelimit.ip_rps", &gw->ip_limit.rps));
    CF_GUARD_OUT(opt_u32(cfg, "ratelimit.ip_burst", &gw->ip_limit.burst));
    gw->ip_limit.concurrency = 0;
    CF_GUARD_OUT(cf_config_get_duration(cfg, "registry.ttl", &ttl));
    CF_GUARD_OUT(cf_config_get_duration(cfg, "registry.unhealthy_for", &unhealthy));
    CF_GUARD_OUT(cf_config_get_int(cfg, "timeouts.connect_ms", &connect_ms));
    CF_GUARD_OUT(cf_config_get_duration(cfg, "timeouts.upstream", &up));
    CF_GUARD_OUT(cf_config_get_duration(cfg, "timeouts.job", &job));
    CF_GUARD_OUT(cf_config_get_duration(cfg, "session.ttl", &sttl));
    CF_GUARD_OUT(cf_config_get_duration(cfg, "auth.cache_ttl", &cttl));
    CF_ENSURE_OUT(up >= 1 && job >= 1,
                  cf_err_set(CF_E_CONFIG, "timeouts.upstream and timeouts.job must be at least 1s"));
    CF_ENSURE_OUT(sttl >= 1, cf_err_set(CF_E_CONFIG, "session.ttl must be at least 1s"));
    gw->upstream_timeout_ms = (unsigned)(up * 1000u);
    gw->job_timeout_ms = (unsigned)(job * 1000u);
    gw->session_ttl_s = (int64_t)sttl;
    gw->auth_cache_ttl_s = (int64_t)cttl;
    if (cttl > 0) {
        gw->auth_cache = calloc(CF_GW_AUTH_CACHE_SLOTS, sizeof(*gw->auth_cache));
        CF_ENSURE_OUT(gw->auth_cache != NULL, CF_E_NOMEM);
    }

    memset(&co, 0, sizeof(co));
    co.ca_file = opt_str(cfg, "upstream.ca") ? opt_str(cfg, "upstream.ca") : opt_str(cfg, "tls.ca");
    co.cert_file = opt_str(cfg, "upstream.cert") ? opt_str(cfg, "upstream.cert") : opt_str(cfg, "tls.cert");
    co.key_file = opt_str(cfg, "upstream.key") ? opt_str(cfg, "upstream.key") : opt_str(cfg, "tls.key");
    CF_ENSURE_OUT((co.cert_file == NULL) == (co.key_file == NULL),
                  cf_err_set(CF_E_CONFIG, "upstream.cert and upstream.key go together"));
    co.connect_timeout_ms = (unsigned)connect_ms;
    CF_GUARD_OUT(cf_gw_clients_new(&co, &gw->clients));
    CF_GUARD_OUT(cf_gw_limiter_new(CF_GW_MAX_BUCKETS, &gw->limiter));
    CF_GUARD_OUT(cf_gw_metrics_new(route_labels, CF_ARRAY_LEN(route_labels), upstream_labels,
                                   CF_ARRAY_LEN(upstream_labels), &gw->metrics));
    CF_GUARD_OUT(cf_gw_registry_new(gw_fetch_registry, gw, ttl * 1000u, unhealthy * 1000u,
                                    &gw->registry));

    gw->proxies[0] = (struct gw_proxy){gw, "/v1/iam", "/v1/iam/*", GW_UP_IAM, gw->iam_url, "iam"};
    gw->proxies[1] = (struct gw_proxy){gw, "/v1/kms", "/v1/kms/*", GW_UP_KMS, gw->kms_url, "kms"};
    gw->proxies[2] =
        (struct gw_proxy){gw, "/v1/registry", "/v1/registry/*", GW_UP_KMS, gw->kms_url, "kms"};
    gw->proxies[3] = (struct gw_proxy){gw, "/v1/attestation", "/v1/attestation/*", GW_UP_ATTEST,
                                       gw->attest_url, "attest"};
    gw->proxies[4] =
        (struct gw_proxy){gw, "/v1/audit", "/v1/audit/*", GW_UP_AUDIT, gw->audit_url, "audit"};
    CF_GUARD_OUT(add_routes(gw));
    {
        char nd[24];
        if (cf_fmt(nd, sizeof(nd), "%zu", cf_manifest_deployment_count(gw->manifest)) < 0)
            nd[0] = 0;
        cf_log(CF_LOG_INFO, "gateway.configured", "manifest_hash",
               cf_manifest_hash_str(gw->manifest), "deployments", nd, NULL);
    }
    *ret = gw;
    gw = NULL;
out:
    cf_gw_free(gw);
    return rc;
}

void cf_gw_free(cf_gw *gw)
{
    if (gw == NULL)
        return;
    cf_gw_registry_free(gw->registry);
    cf_gw_metrics_free(gw->metrics);
    cf_gw_limiter_free(gw->limiter);
    cf_gw_clients_free(gw->clients);
    cf_manifest_free(gw->manifest);
    if (gw->auth_cache != NULL)
        cf_freezero(gw->auth_cache, CF_GW_AUTH_CACHE_SLOTS * sizeof(*gw->auth_cache));
    pthread_mutex_destroy(&gw->auth_mu);
    free(gw);
}

cf_gw_registry *cf_gw_registry_view(cf_gw *gw) { return gw->registry; }
cf_gw_metrics *cf_gw_metrics_view(cf_gw *gw) { return gw->metrics; }
