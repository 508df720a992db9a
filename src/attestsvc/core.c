/*
 * Attestation core of the service: store pool, clients for the KMS and the TEEs,
 * the TEE endpoint table, one attestation of one TEE (fresh evidence bound to a
 * nonce, own verification against the manifest and the registry entry), EAR
 * tokens, history records and alerts.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "attestsvc/ear.h"
#include "attestsvc/history.h"
#include "attestsvc/service.h"
#include "base/buf.h"
#include "base/err.h"
#include "base/json.h"
#include "base/log.h"
#include "base/parse.h"
#include "base/secmem.h"
#include "crypto/hash.h"
#include "http/route.h"
#include "proto/authz.h"

uint64_t cf_attestsvc_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* ---- store pool ----------------------------------------------------------------- */

int cf_attestsvc_store_get(cf_attestsvc *a, cf_store **ret)
{
    cf_store *s = NULL;

    pthread_mutex_lock(&a->pool_mu);
    if (a->nidle > 0)
        s = a->idle[--a->nidle];
    pthread_mutex_unlock(&a->pool_mu);
    if (s == NULL)
        CF_GUARD(cf_store_open(a->dsn, &s));
    *ret = s;
    return 0;
}

void cf_attestsvc_store_put(cf_attestsvc *a, cf_store *s)
{
    if (s == NULL)
        return;
    /* A handle left inside a transaction would poison its next user. */
    cf_store_rollback(s);
    pthread_mutex_lock(&a->pool_mu);
    if (a->nidle < CF_ATTESTSVC_STORE_POOL) {
        a->idle[a->nidle++] = s;
        s = NULL;
    }
    pthread_mutex_unlock(&a->pool_mu);
    cf_store_close(s);
}

/* ---- clients ---------------------------------------------------------------------- */

static const char *cfg_str(const cf_attestsvc *a, const char *key)
{
    const char *v = NULL;
    return cf_config_get_str(cf_svc_config(a->svc), key, &v) == 0 ? v : NULL;
}

int cf_attestsvc_client(cf_attestsvc *a, const char *url, const char *expect_service, uint32_t timeout_ms,
                        size_t max_response, cf_http_client **ret)
{
    char peer[96];
    cf_http_client_opts o;

    memset(&o, 0, sizeof(o));
    o.base_url = url;
    o.ca_file = cfg_str(a, "tls.ca");
    o.cert_file = cfg_str(a, "tls.cert");
    o.key_file = cfg_str(a, "tls.key");
    o.timeout_ms = timeout_ms;
    o.connect_timeout_ms = timeout_ms < CF_HTTP_CLIENT_CONNECT_TIMEOUT_MS ? timeout_ms : 0;
    o.max_response = max_response;
    if (expect_service != NULL && strncmp(url, "https://", 8) == 0) {
        CF_GUARD(cf_fmt(peer, sizeof(peer), "spiffe://coffer/%s", expect_service));
        o.expect_peer_id = peer;
    }
    return cf_http_client_new(&o, ret);
}

/* ---- TEE endpoints ---------------------------------------------------------------- */

static int endpoint_put(cf_attestsvc *a, const char *id, const char *url, bool discovered)
{
    int rc = 0;

    CF_ENSURE(cf_attest_id_valid(id), cf_err_set(CF_E_PARSE, "TEE id '%.64s' is not valid", id));
    CF_ENSURE(cf_attest_endpoint_valid(url),
              cf_err_set(CF_E_PARSE, "endpoint for TEE '%s' is not an http(s) base URL without a trailing '/'", id));
    pthread_mutex_lock(&a->ep_mu);
    for (size_t i = 0; i < a->neps; i++) {
        if (strcmp(a->eps[i].id, id) == 0) {
            memcpy(a->eps[i].url, url, strlen(url) + 1);
            a->eps[i].discovered = discovered;
            goto out;
        }
    }
    if (a->neps == CF_ATTESTSVC_MAX_TEES) {
        rc = cf_err_set(CF_E_TOO_LARGE, "endpoint table is full (%u TEEs)", CF_ATTESTSVC_MAX_TEES);
        goto out;
    }
    if (a->eps == NULL) {
        a->eps = calloc(CF_ATTESTSVC_MAX_TEES, sizeof(*a->eps));
        if (a->eps == NULL) {
            rc = CF_E_NOMEM;
            goto out;
        }
    }
    memcpy(a->eps[a->neps].id, id, strlen(id) + 1);
    memcpy(a->eps[a->neps].url, url, strlen(url) + 1);
    a->eps[a->neps].discovered = discovered;
    a->neps++;
out:
    pthread_mutex_unlock(&a->ep_mu);
    return rc;
}

int cf_attestsvc_endpoint_set(cf_attestsvc *a, const char *id, const char *url)
{
    return endpoint_put(a, id, url, false);
}

void cf_attestsvc_endpoint_forget(cf_attestsvc *a, const char *id)
{
    pthread_mutex_lock(&a->ep_mu);
    for (size_t i = 0; i < a->neps; i++) {
        if (strcmp(a->eps[i].id, id) == 0 && a->eps[i].discovered) {
            a->eps[i] = a->eps[--a->neps];
            break;
        }
    }
    pthread_mutex_unlock(&a->ep_mu);
}

static int pool_add(cf_attestsvc *a, const char *url)
{
    CF_ENSURE(cf_attest_endpoint_valid(url),
              cf_err_set(CF_E_PARSE, "'%.64s' is not an http(s) base URL without a trailing '/'", url));
    CF_ENSURE(a->npool < CF_ATTESTSVC_MAX_DISCOVERY,
              cf_err_set(CF_E_TOO_LARGE, "at most %u bare URLs", CF_ATTESTSVC_MAX_DISCOVERY));
    if (a->pool == NULL) {
        a->pool = calloc(CF_ATTESTSVC_MAX_DISCOVERY, sizeof(*a->pool));
        CF_ENSURE(a->pool != NULL, CF_E_NOMEM);
    }
    memcpy(a->pool[a->npool++], url, strlen(url) + 1);
    return 0;
}

int cf_attestsvc_endpoints_configure(cf_attestsvc *a, const char *spec)
{
    char item[CF_ID_MAX_LEN + CF_ATTESTSVC_MAX_ENDPOINT + 2];
    const char *p = spec;

    CF_ENSURE(strlen(spec) <= CF_ATTESTSVC_MAX_ENDPOINTS_CONFIG,
              cf_err_set(CF_E_CONFIG, "tee.endpoints is longer than %u bytes", CF_ATTESTSVC_MAX_ENDPOINTS_CONFIG));
    while (*p != '\0') {
        const char *end = strchr(p, ',');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        char *eq;
        int rc;

        CF_ENSURE(n > 0 && n < sizeof(item), cf_err_set(CF_E_CONFIG, "tee.endpoints: empty or oversized entry"));
        memcpy(item, p, n);
        item[n] = '\0';
        eq = strchr(item, '=');
        if (eq != NULL && strstr(item, "://") > eq) {
            *eq = '\0';
            rc = cf_attestsvc_endpoint_set(a, item, eq + 1);
        } else {
            rc = pool_add(a, item);
        }
        CF_ENSURE(rc == 0, cf_err_set(CF_E_CONFIG, "tee.endpoints: %s", cf_err_detail(rc)));
        p += n;
        if (*p == ',')
            p++;
    }
    return 0;
}

static bool table_lookup(cf_attestsvc *a, const char *id, char out[CF_ATTESTSVC_MAX_ENDPOINT + 1])
{
    bool found = false;

    pthread_mutex_lock(&a->ep_mu);
    for (size_t i = 0; i < a->neps && !found; i++) {
        if (strcmp(a->eps[i].id, id) == 0) {
            memcpy(out, a->eps[i].url, strlen(a->eps[i].url) + 1);
            found = true;
        }
    }
    pthread_mutex_unlock(&a->ep_mu);
    return found;
}

/* Asks each pool URL for evidence (to a throw-away nonce) and keeps the one
 * whose runtime answers as this TEE with the key the registry holds for it.
 * Nothing of the answer is trusted beyond "this is where to ask": the real
 * attestation that follows verifies the binding to the registered key, and a
 * runtime claiming another TEE's id without its key is not recorded. */
static bool discover(cf_attestsvc *a, const cf_attest_tee_entry *e, char out[CF_ATTESTSVC_MAX_ENDPOINT + 1])
{
    cf_attest_tee_evidence *t = calloc(1, sizeof(*t));
    uint8_t nonce[CF_BINDING_NONCE_LEN];
    cf_buf body;
    bool found = false;

    cf_buf_init(&body, 256);
    if (t == NULL || cf_random(nonce, sizeof(nonce)) != 0 || cf_attest_tee_request_build(nonce, &body) != 0)
        goto out;
    for (size_t i = 0; i < a->npool && !found; i++) {
        cf_http_client *c = NULL;
        cf_http_request rq = {.method = "POST", .path = "/v1/evidence", .body = body.data, .body_len = body.len};
        cf_http_response resp;

        memset(&resp, 0, sizeof(resp));
        if (cf_attestsvc_client(a, a->pool[i], NULL, a->tee_timeout_ms, CF_ATTESTSVC_TEE_MAX_RESPONSE, &c) == 0 &&
            cf_http_client_do(c, &rq, &resp) == 0 && resp.status == 200 &&
            cf_attest_tee_evidence_parse(resp.body.data, resp.body.len, t) == 0 && strcmp(t->tee_id, e->id) == 0 &&
            (!e->has_public_key || cf_ct_eq(t->public_key, e->public_key, CF_ATTEST_X25519_LEN))) {
            memcpy(out, a->pool[i], strlen(a->pool[i]) + 1);
            found = endpoint_put(a, e->id, a->pool[i], true) == 0;
        }
        cf_http_response_free(&resp);
        cf_http_client_free(c);
    }
    if (found)
        cf_log(CF_LOG_INFO, "tee.endpoint_discovered", "tee_id", e->id, "endpoint", out, NULL);
out:
    cf_buf_free(&body);
    free(t);
    return found;
}

int cf_attestsvc_endpoint_for(cf_attestsvc *a, const cf_attest_tee_entry *e, char out[CF_ATTESTSVC_MAX_ENDPOINT + 1])
{
    /* The registry's record wins: it is what the KMS admitted. */
    if (e->endpoint[0] != '\0') {
        memcpy(out, e->endpoint, strlen(e->endpoint) + 1);
        return 0;
    }
    if (table_lookup(a, e->id, out) || (a->npool > 0 && discover(a, e, out)))
        return 0;
    return cf_err_set(CF_E_NOT_FOUND, "no endpoint known for TEE %s (the registry has none; see tee.endpoints)",
                      e->id);
}

/* ---- registry --------------------------------------------------------------------- */

/* Percent-encodes a cursor for a query string (RFC 3986 unreserved kept). */
static int pct_encode(const char *s, cf_buf *out)
{
    static const char hex[] = "0123456789ABCDEF";

    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '-' ||
            *p == '.' || *p == '_' || *p == '~') {
            CF_GUARD(cf_buf_put_u8(out, *p));
        } else {
            CF_GUARD(cf_buf_put_u8(out, '%'));
            CF_GUARD(cf_buf_put_u8(out, (uint8_t)hex[*p >> 4]));
            CF_GUARD(cf_buf_put_u8(out, (uint8_t)hex[*p & 15]));
        }
    }
    return 0;
}

int cf_attestsvc_registry_list(cf_attestsvc *a, cf_attest_tee_list *ret)
{
    cf_http_client *c = NULL;
    cf_attest_tee_list l = {0};
    char next[CF_ATTESTSVC_MAX_CURSOR + 1] = "";
    cf_buf path;
    int rc;

    CF_ENSURE(a->kms_url != NULL, cf_err_set(CF_E_UNAVAILABLE, "no KMS configured (kms.url): the registry cannot be read"));
    cf_buf_init(&path, CF_HTTP_MAX_URL);
    CF_GUARD_OUT(cf_attestsvc_client(a, a->kms_url, "kms", 0, CF_ATTESTSVC_REGISTRY_MAX_BYTES, &c));
    for (int page = 0;; page++) {
        cf_http_request rq = {.method = "GET"};
        cf_http_response resp;

        CF_ENSURE_OUT(page < CF_ATTESTSVC_REGISTRY_MAX_PAGES,
                      cf_err_set(CF_E_TOO_LARGE, "registry listing has more than %u pages",
                                 CF_ATTESTSVC_REGISTRY_MAX_PAGES));
        cf_buf_reset(&path);
        CF_GUARD_OUT(cf_buf_printf(&path, "/v1/registry/tees?limit=%u", CF_ATTESTSVC_REGISTRY_PAGE));
        if (next[0] != '\0') {
            CF_GUARD_OUT(cf_buf_put_str(&path, "&after="));
            CF_GUARD_OUT(pct_encode(next, &path));
        }
        CF_GUARD_OUT(cf_buf_nul_terminate(&path));
        rq.path = (const char *)path.data;
        memset(&resp, 0, sizeof(resp));
        rc = cf_http_client_do(c, &rq, &resp);
        if (rc != 0) {
            rc = cf_err_set(CF_E_UNAVAILABLE, "KMS registry unreachable: %s", cf_err_detail(rc));
            goto out;
        }
        if (resp.status != 200) {
            cf_http_response_free(&resp);
            rc = cf_err_set(CF_E_UNAVAILABLE, "KMS registry answered HTTP %ld", resp.status);
            goto out;
        }
        rc = cf_attest_registry_parse_page(resp.body.data, resp.body.len, &l, next, sizeof(next));
        cf_http_response_free(&resp);
        if (rc != 0) {
            rc = cf_err_set(CF_E_UNAVAILABLE, "KMS registry listing is malformed: %s", cf_err_detail(rc));
            goto out;
        }
        if (next[0] == '\0')
            break;
    }
    *ret = l;
    l.v = NULL;
    rc = 0;
out:
    cf_attest_tee_list_free(&l);
    cf_http_client_free(c);
    cf_buf_free(&path);
    return rc;
}

/* ---- one attestation ---------------------------------------------------------------- */

void cf_attestsvc_outcome_free(cf_attestsvc_outcome *o)
{
    free(o->tee);
    cf_verify_result_free(o->result);
    memset(o, 0, sizeof(*o));
}

/* Asks the TEE; on any failure fills o->error and returns with o->reached false. */
static void fetch_evidence(cf_attestsvc *a, const cf_attest_tee_entry *e, const uint8_t nonce[CF_BINDING_NONCE_LEN],
                           cf_attestsvc_outcome *o)
{
    char url[CF_ATTESTSVC_MAX_ENDPOINT + 1];
    cf_http_client *c = NULL;
    cf_http_request rq = {.method = "POST", .path = "/v1/evidence"};
    cf_http_response resp;
    cf_buf body;
    int rc;

    memset(&resp, 0, sizeof(resp));
    cf_buf_init(&body, 256);
    rc = cf_attestsvc_endpoint_for(a, e, url);
    if (rc != 0) {
        snprintf(o->error, sizeof(o->error), "%s", cf_err_detail(rc));
        goto out;
    }
    rc = cf_attestsvc_client(a, url, NULL, a->tee_timeout_ms, CF_ATTESTSVC_TEE_MAX_RESPONSE, &c);
    if (rc == 0)
        rc = cf_attest_tee_request_build(nonce, &body);
    if (rc != 0) {
        snprintf(o->error, sizeof(o->error), "cannot ask TEE %s: %s", e->id, cf_err_detail(rc));
        goto out;
    }
    rq.body = body.data;
    rq.body_len = body.len;
    rc = cf_http_client_do(c, &rq, &resp);
    if (rc != 0) {
        snprintf(o->error, sizeof(o->error), "TEE %s unreachable: %s", e->id, cf_err_detail(rc));
        /* A discovered address may be stale (the runtime moved): look again next time. */
        cf_attestsvc_endpoint_forget(a, e->id);
        goto out;
    }
    if (resp.status != 200) {
        snprintf(o->error, sizeof(o->error), "TEE %s answered HTTP %ld to the evidence request", e->id, resp.status);
        goto out;
    }
    o->tee = calloc(1, sizeof(*o->tee));
    if (o->tee == NULL) {
        snprintf(o->error, sizeof(o->error), "out of memory");
        goto out;
    }
    rc = cf_attest_tee_evidence_parse(resp.body.data, resp.body.len, o->tee);
    if (rc != 0) {
        snprintf(o->error, sizeof(o->error), "TEE %s sent malformed evidence: %s", e->id, cf_err_detail(rc));
        free(o->tee);
        o->tee = NULL;
        goto out;
    }
    o->reached = true;
out:
    cf_http_response_free(&resp);
    cf_http_client_free(c);
    cf_buf_free(&body);
}

int cf_attestsvc_attest(cf_attestsvc *a, const cf_attest_tee_entry *e, const uint8_t nonce[CF_BINDING_NONCE_LEN],
                        cf_attestsvc_outcome *ret)
{
    cf_verify_input in;
    int rc;

    memset(ret, 0, sizeof(*ret));
    ret->at = (int64_t)time(NULL);
    fetch_evidence(a, e, nonce, ret);
    if (!ret->reached)
        return 0;
    memset(&in, 0, sizeof(in));
    in.platform = ret->tee->evidence.platform;
    in.report = ret->tee->evidence.report;
    in.report_len = ret->tee->evidence.report_len;
    in.cert = ret->tee->evidence.cert;
    in.cert_len = ret->tee->evidence.cert_len;
    /* The registry's deployment and tenant, not the TEE's own claim. */
    in.deployment = e->deployment;
    in.tenant = e->tenant[0] != '\0' ? e->tenant : NULL;
    in.tee_public_key = ret->tee->public_key;
    in.tee_public_key_len = CF_ATTEST_X25519_LEN;
    in.nonce = nonce;
    in.at = (time_t)ret->at;
    rc = cf_verifier_verify(a->verifier, &in, &ret->result);
    if (rc != 0) {
        cf_attestsvc_outcome_free(ret);
        return rc;
    }
    cf_attest_registry_check(e, ret->tee, ret->result, &ret->registry);
    return 0;
}

uint32_t cf_attestsvc_token_ttl(const cf_attestsvc *a)
{
    /* DESIGN.md §2 rule 4: an attestation older than 2 x the interval is stale. */
    return (uint32_t)(2 * a->interval_s);
}

int cf_attestsvc_token(cf_attestsvc *a, const cf_attestsvc_outcome *o, const cf_attest_tee_entry *e,
                       const uint8_t nonce[CF_BINDING_NONCE_LEN], char **ret)
{
    cf_ear_input in;

    memset(&in, 0, sizeof(in));
    in.result = o->result;
    in.identity_failed = o->registry.status == CF_CHECK_FAILED;
    in.deployment = e->deployment;
    in.tee_id = e->id;
    in.build_hash = o->tee->build_hash;
    in.tee_public_key = o->tee->public_key;
    in.tee_public_key_len = CF_ATTEST_X25519_LEN;
    in.nonce = nonce;
    in.iat = o->at;
    in.ttl = cf_attestsvc_token_ttl(a);
    return cf_ear_sign(cf_attest_signer_key(a->signer), cf_attest_signer_kid(a->signer), &in, ret);
}

static void copy_str(char *dst, size_t cap, const char *src)
{
    size_t n = strnlen(src, cap - 1);
    memcpy(dst, src, n);
    dst[n] = '\0';
}

void cf_attestsvc_record(cf_attestsvc *a, const cf_attestsvc_outcome *o, const cf_attest_tee_entry *e,
                         const char *kind, cf_attest_record *ret)
{
    memset(ret, 0, sizeof(*ret));
    ret->at = o->at;
    copy_str(ret->kind, sizeof(ret->kind), kind);
    copy_str(ret->tee_id, sizeof(ret->tee_id), e->id);
    copy_str(ret->deployment, sizeof(ret->deployment), e->deployment);
    copy_str(ret->tenant, sizeof(ret->tenant), e->tenant);
    copy_str(ret->manifest_hash, sizeof(ret->manifest_hash), cf_manifest_hash_str(a->manifest));
    if (!o->reached) {
        copy_str(ret->status, sizeof(ret->status), "unreachable");
        copy_str(ret->reason, sizeof(ret->reason), o->error);
        return;
    }
    {
        cf_ear_vector v;
        cf_ear_status st;
        bool ok = o->result->verified && o->registry.status != CF_CHECK_FAILED;

        cf_ear_appraise(o->result, o->registry.status == CF_CHECK_FAILED, &v, &st);
        copy_str(ret->status, sizeof(ret->status), ok ? "verified" : "failed");
        copy_str(ret->ear_status, sizeof(ret->ear_status), cf_ear_status_name(st));
        if (o->result->facts.report_parsed)
            copy_str(ret->measurement, sizeof(ret->measurement), o->result->facts.measurement);
        copy_str(ret->build_hash, sizeof(ret->build_hash), o->tee->build_hash);
        cf_attest_first_failure(o->result, &o->registry, ret->reason, sizeof(ret->reason));
    }
}

/* ---- alerts --------------------------------------------------------------------------- */

/* Splits "https://host:port/some/path?q" into the base URL (scheme and
 * authority) and the request path ("/" when the URL has none). */
static int split_url(const char *url, char *base, size_t base_size, const char **ret_path)
{
    const char *auth = strstr(url, "://"), *slash;
    size_t n;

    CF_ENSURE(auth != NULL, cf_err_set(CF_E_CONFIG, "alert.webhook is not a URL"));
    slash = strchr(auth + 3, '/');
    n = slash ? (size_t)(slash - url) : strlen(url);
    CF_ENSURE(n < base_size, cf_err_set(CF_E_CONFIG, "alert.webhook is too long"));
    memcpy(base, url, n);
    base[n] = '\0';
    *ret_path = slash ? slash : "/";
    return 0;
}

static void webhook_post(cf_attestsvc *a, const cf_attest_tee_entry *e, const char *reason, int64_t at)
{
    char base[CF_HTTP_MAX_URL + 1];
    cf_http_client_opts o;
    cf_http_client *c = NULL;
    cf_http_request rq = {.method = "POST", .content_type = "application/json"};
    cf_http_response resp;
    char ts[21];
    json_t *j;
    char *body = NULL;
    int rc;

    memset(&resp, 0, sizeof(resp));
    cf_attest_time_rfc3339(at, ts);
    j = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s}", "event", "tee.attestation_failed", "service", "attest", "tee_id",
                  e->id, "deployment", e->deployment, "tenant", e->tenant, "reason", reason, "at", ts);
    body = j ? cf_json_dump(j) : NULL;
    json_decref(j);
    if (body == NULL)
        return;
    /* An outside receiver (chat, paging): the system trust store, no client
     * certificate, a short bounded timeout; best effort only. */
    memset(&o, 0, sizeof(o));
    if (split_url(a->webhook, base, sizeof(base), &rq.path) != 0) {
        free(body);
        return;
    }
    o.base_url = base;
    o.timeout_ms = CF_ATTESTSVC_WEBHOOK_TIMEOUT_MS;
    o.connect_timeout_ms = CF_ATTESTSVC_WEBHOOK_TIMEOUT_MS;
    o.max_response = CF_ATTESTSVC_WEBHOOK_MAX_RESPONSE;
    rq.body = body;
    rq.body_len = strlen(body);
    rc = cf_http_client_new(&o, &c);
    if (rc == 0)
        rc = cf_http_client_do(c, &rq, &resp);
    if (rc != 0)
        cf_log(CF_LOG_WARN, "alert.webhook_failed", "tee_id", e->id, "reason", cf_err_detail(rc), NULL);
    else if (resp.status < 200 || resp.status > 299)
        cf_log(CF_LOG_WARN, "alert.webhook_failed", "tee_id", e->id, "reason", "non-2xx answer", NULL);
    cf_http_response_free(&resp);
    cf_http_client_free(c);
    free(body);
}

void cf_attestsvc_alert(cf_attestsvc *a, const cf_attest_tee_entry *e, const char *reason)
{
    cf_principal self;
    char resource[CF_ID_MAX_LEN + 8];
    int64_t now = (int64_t)time(NULL);
    json_t *details;
    int rc;

    cf_log(CF_LOG_WARN, "tee.attestation_failed", "tee_id", e->id, "deployment", e->deployment, "reason", reason,
           NULL);
    memset(&self, 0, sizeof(self));
    copy_str(self.sub, sizeof(self.sub), CF_ATTESTSVC_SPIFFE);
    copy_str(self.tenant, sizeof(self.tenant), CF_PLATFORM_TENANT);
    snprintf(resource, sizeof(resource), "tee/%s", e->id);
    details = json_pack("{s:s,s:s,s:s}", "tee_id", e->id, "deployment", e->deployment, "reason", reason);
    rc = cf_svc_audit(a->svc, NULL, &self, "tee.attestation_failed", e->tenant[0] ? e->tenant : NULL, resource,
                      "failure", details);
    if (rc != 0)
        cf_log(CF_LOG_ERROR, "alert.audit_failed", "tee_id", e->id, "reason", cf_err_detail(rc), NULL);
    if (a->webhook != NULL)
        webhook_post(a, e, reason, now);
}
