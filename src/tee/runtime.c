/*
 * The TEE runtime: registration with the KMS, the evidence endpoint and the
 * job request path (DESIGN.md §5 steps 6–8). API and HTTP surface: runtime.h;
 * walkthrough: docs/internals/tee.md.
 */
#include "tee/runtime.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "attest/binding.h"
#include "attest/provider.h"
#include "base/err.h"
#include "base/json.h"
#include "base/log.h"
#include "base/parse.h"
#include "base/secmem.h"
#include "crypto/hpke.h"
#include "http/client.h"
#include "tee/kmswire.h"

struct cf_tee {
    cf_hpke_key *key;               /* our X25519 key pair (secret memory) */
    uint8_t pub[CF_TEE_KEY_LEN];
    cf_hpke_key *kms_key;           /* pinned KMS release key (public) */
    cf_bundle *bundle;
    cf_sandbox *sandbox;
    cf_provider *provider;
    cf_http_client *kms;            /* serialised by its own mutex */
    char endpoint[CF_TEE_MAX_ENDPOINT + 1]; /* "" if none */
    char tee_id[CF_ID_MAX_LEN + 1]; /* set once by cf_tee_register */
    unsigned max_jobs;
    atomic_uint running;
    /* evidence rate limit: a token bucket */
    pthread_mutex_t rl_lock;
    double rl_tokens;
    uint64_t rl_last_ms;
};

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

const char *cf_tee_id(const cf_tee *t) { return t->tee_id; }
const cf_bundle *cf_tee_bundle(const cf_tee *t) { return t->bundle; }

/* ---- set-up ---- */

static int open_provider(const char *kind, cf_provider **ret)
{
    if (kind == NULL || strcmp(kind, "auto") == 0)
        return cf_provider_open_auto(ret);
    if (strcmp(kind, "launcher") == 0)
        return cf_provider_open_launcher_env(ret);
    if (strcmp(kind, "configfs-tsm") == 0)
        return cf_provider_open_tsm(NULL, ret);
    if (strcmp(kind, "sev-guest") == 0)
        return cf_provider_open_sev_guest(NULL, ret);
    return cf_err_set(CF_E_CONFIG, "provider must be auto, launcher, configfs-tsm or sev-guest");
}

static int parse_kms_key(const char *text, cf_hpke_key **ret)
{
    cf_buf raw;
    int rc = 0;

    cf_buf_init(&raw, CF_TEE_KEY_LEN);
    if (text == NULL || strlen(text) != cf_b64url_encoded_len(CF_TEE_KEY_LEN) ||
        cf_b64url_decode(text, strlen(text), &raw) < 0 || raw.len != CF_TEE_KEY_LEN)
        rc = cf_err_set(CF_E_CONFIG, "kms.release_key must be the KMS release key: 43 base64url "
                                     "characters (X25519, 32 bytes)");
    else
        rc = cf_hpke_key_from_public(CF_HPKE_KEM_X25519_SHA256, raw.data, raw.len, ret);
    cf_buf_free(&raw);
    return rc;
}

int cf_tee_new(const cf_tee_opts *o, cf_tee **ret)
{
    cf_http_client_opts co;
    cf_key *dev = NULL;
    cf_tee *t = calloc(1, sizeof(*t));
    const uint8_t *pub;
    size_t pub_len = 0;
    int rc = 0;

    CF_ENSURE(t != NULL, CF_E_NOMEM);
    pthread_mutex_init(&t->rl_lock, NULL);
    atomic_init(&t->running, 0);
    t->rl_tokens = CF_TEE_EVIDENCE_BURST;
    t->rl_last_ms = mono_ms();
    t->max_jobs = o->max_jobs == 0 ? CF_TEE_DEFAULT_CONCURRENT_JOBS : o->max_jobs;
    CF_ENSURE_OUT(t->max_jobs <= CF_TEE_MAX_CONCURRENT_JOBS,
                  cf_err_set(CF_E_CONFIG, "sandbox.max_jobs must be 1..%u",
                             (unsigned)CF_TEE_MAX_CONCURRENT_JOBS));
    CF_ENSURE_OUT(o->kms_url != NULL && o->bundle_dir != NULL && o->deployment != NULL &&
                      o->developer_key != NULL,
                  cf_err_set(CF_E_CONFIG, "kms.url, bundle, deployment.name and "
                                          "deployment.developer_key are required"));

    /* The key pair is made here, inside, and never leaves this process. */
    CF_GUARD_OUT(cf_hpke_key_generate(CF_HPKE_KEM_X25519_SHA256, &t->key));
    pub = cf_hpke_key_pub(t->key, &pub_len);
    CF_ENSURE_OUT(pub != NULL && pub_len == CF_TEE_KEY_LEN, CF_E_INTERNAL);
    memcpy(t->pub, pub, CF_TEE_KEY_LEN);
    CF_GUARD_OUT(parse_kms_key(o->kms_release_key, &t->kms_key));

    /* The bundle: signed by the configured developer, of the configured deployment. */
    if (o->endpoint != NULL) {
        size_t n = strnlen(o->endpoint, CF_TEE_MAX_ENDPOINT + 1);
        CF_ENSURE_OUT(n > 0 && n <= CF_TEE_MAX_ENDPOINT &&
                          (strncmp(o->endpoint, "http://", 7) == 0 || strncmp(o->endpoint, "https://", 8) == 0),
                      cf_err_set(CF_E_CONFIG, "advertise_url must be an http:// or https:// URL of at most %u bytes",
                                 (unsigned)CF_TEE_MAX_ENDPOINT));
        memcpy(t->endpoint, o->endpoint, n + 1);
    }
    rc = cf_developer_key_parse(o->developer_key, &dev);
    if (rc < 0) {
        rc = cf_err_set(CF_E_CONFIG, "deployment.developer_key: %s", cf_err_detail(rc));
        goto out;
    }
    CF_GUARD_OUT(cf_bundle_load(o->bundle_dir, dev, &t->bundle));
    CF_ENSURE_OUT(strcmp(cf_bundle_get_manifest(t->bundle)->name, o->deployment) == 0,
                  cf_err_set(CF_E_CONFIG, "the bundle is deployment '%s', not '%s'",
                             cf_bundle_get_manifest(t->bundle)->name, o->deployment));

    CF_GUARD_OUT(cf_sandbox_new(&o->sandbox, &t->sandbox));
    CF_GUARD_OUT(open_provider(o->provider, &t->provider));

    memset(&co, 0, sizeof(co));
    co.base_url = o->kms_url;
    co.ca_file = o->kms_ca;
    if (strncmp(o->kms_url, "https://", 8) == 0)
        co.expect_peer_id = o->kms_peer_id;
    co.max_response = CF_TEE_KMS_MAX_RESPONSE;
    CF_GUARD_OUT(cf_http_client_new(&co, &t->kms));
    cf_log(CF_LOG_INFO, "tee.ready", "deployment", o->deployment, "build_hash",
           cf_bundle_build_hash(t->bundle), "provider", cf_provider_kind_name(
               cf_provider_get_kind(t->provider)), NULL);
    *ret = t;
    t = NULL;
out:
    cf_key_free(dev);
    cf_tee_free(t);
    return rc;
}

void cf_tee_free(cf_tee *t)
{
    if (t == NULL)
        return;
    cf_http_client_free(t->kms);
    cf_provider_free(t->provider);
    cf_sandbox_free(t->sandbox);
    cf_bundle_free(t->bundle);
    cf_hpke_key_free(t->kms_key);
    cf_hpke_key_free(t->key);
    pthread_mutex_destroy(&t->rl_lock);
    free(t);
}

/* ---- talking to the KMS ---- */

/* The KMS's error message ({"error":{"message"}}), reduced to printable ASCII,
 * or "" — for log lines and for errors passed on to the client. */
static void kms_error_text(const cf_http_response *r, char *out, size_t n)
{
    json_t *o = NULL, *e = NULL;
    const char *msg = NULL;
    size_t k = 0;

    out[0] = '\0';
    if (r->body.len == 0 || cf_json_parse_object(r->body.data, r->body.len, CF_TEE_KMS_MAX_RESPONSE,
                                                  &o) < 0)
        return;
    if (cf_json_get_obj(o, "error", false, &e) == 0 && e != NULL && json_is_object(e) &&
        cf_json_get_str(e, "message", false, 256, &msg) == 0 && msg != NULL) {
        for (; msg[k] != '\0' && k + 1 < n; k++)
            out[k] = (msg[k] >= 0x20 && msg[k] < 0x7f) ? msg[k] : '?';
        out[k] = '\0';
    }
    json_decref(o);
}

static int kms_post(cf_tee *t, const char *path, const uint8_t *body, size_t len,
                    cf_http_response *ret)
{
    cf_http_request rq;

    memset(&rq, 0, sizeof(rq));
    rq.method = "POST";
    rq.path = path;
    rq.content_type = "application/json";
    rq.body = body;
    rq.body_len = len;
    return cf_http_client_do(t->kms, &rq, ret);
}

static bool retryable_status(long st) { return st >= 500 || st == 409 || st == 410 || st == 429; }

/* One attempt. *retry says whether a failure is worth another attempt. */
static int register_once(cf_tee *t, const char *join_token, bool *retry)
{
    uint8_t nonce[CF_BINDING_NONCE_LEN], rd[CF_BINDING_LEN];
    char id[CF_ID_MAX_LEN + 1], why[256];
    cf_provider_evidence ev;
    cf_http_response r;
    cf_buf body;
    int rc = 0;

    memset(&ev, 0, sizeof(ev));
    memset(&r, 0, sizeof(r));
    cf_buf_init_secret(&body, CF_HTTP_MAX_BODY);
    *retry = true;
    rc = kms_post(t, "/v1/registry/nonce", (const uint8_t *)"{}", 2, &r);
    if (rc < 0) {
        rc = cf_err_set(CF_E_UNAVAILABLE, "KMS unreachable: %s", cf_err_detail(rc));
        goto out;
    }
    if (r.status != 200 && r.status != 201) {
        kms_error_text(&r, why, sizeof(why));
        *retry = retryable_status(r.status);
        rc = cf_err_set(*retry ? CF_E_UNAVAILABLE : CF_E_FORBIDDEN,
                        "KMS refused a registration nonce: HTTP %ld %s", r.status, why);
        goto out;
    }
    *retry = false;
    CF_GUARD_OUT(cf_tee_nonce_answer_parse(r.body.data, r.body.len, nonce));
    cf_http_response_free(&r);

    /* Evidence bound to (our key, the KMS's nonce): DESIGN.md §3 "Binding". A
     * provider that does not answer (launcher busy, firmware) may recover. */
    CF_GUARD_OUT(cf_binding_compute(t->pub, sizeof(t->pub), nonce, rd));
    *retry = true;
    CF_GUARD_OUT(cf_provider_get_report(t->provider, rd, &ev));
    *retry = false;
    CF_GUARD_OUT(cf_tee_register_body(join_token, nonce, t->pub, sizeof(t->pub), &ev,
                                      t->endpoint[0] ? t->endpoint : NULL, &body));
    *retry = true;
    rc = kms_post(t, "/v1/registry/tees", body.data, body.len, &r);
    if (rc < 0) {
        rc = cf_err_set(CF_E_UNAVAILABLE, "KMS unreachable: %s", cf_err_detail(rc));
        goto out;
    }
    if (r.status != 201 && r.status != 200) {
        kms_error_text(&r, why, sizeof(why));
        *retry = retryable_status(r.status);
        rc = cf_err_set(*retry ? CF_E_UNAVAILABLE : CF_E_FORBIDDEN,
                        "KMS refused the registration: HTTP %ld %s", r.status, why);
        goto out;
    }
    *retry = false;
    CF_GUARD_OUT(cf_tee_register_answer_parse(r.body.data, r.body.len, id));
    memcpy(t->tee_id, id, sizeof(id));
out:
    cf_http_response_free(&r);
    cf_provider_evidence_free(&ev);
    cf_buf_free(&body);
    return rc;
}

int cf_tee_register(cf_tee *t, const char *join_token, uint64_t timeout_s)
{
    uint64_t deadline = mono_ms() + timeout_s * 1000u, backoff = CF_TEE_REGISTER_BACKOFF_MIN_MS;
    unsigned attempt = 0;
    bool retry = false;
    int rc;

    CF_ENSURE(join_token != NULL && join_token[0] != '\0',
              cf_err_set(CF_E_CONFIG, "join_token is required to register with the KMS"));
    for (;;) {
        attempt++;
        rc = register_once(t, join_token, &retry);
        if (rc == 0)
            break;
        if (!retry || mono_ms() + backoff > deadline)
            return cf_err_set(rc, "registration failed after %u attempt(s): %s", attempt,
                              cf_err_detail(rc));
        cf_log(CF_LOG_WARN, "tee.register_retry", "reason", cf_err_detail(rc), NULL);
        {
            struct timespec ts = {.tv_sec = (time_t)(backoff / 1000),
                                  .tv_nsec = (long)(backoff % 1000) * 1000000L};
            while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
                ;
        }
        backoff = CF_MIN(backoff * 2, (uint64_t)CF_TEE_REGISTER_BACKOFF_MAX_MS);
    }
    cf_log(CF_LOG_INFO, "tee.registered", "tee_id", t->tee_id, NULL);
    return 0;
}

/* POST {kms}/v1/kms/otk/{otk_id}/release, answer opened with the pinned key.
 * KMS refusals become the client's errors (409 replay, 410 expired, 403). */
static int release_otk(cf_tee *t, const cf_env *env, cf_http_resp *resp, cf_tee_release *ret)
{
    const char *otk_id = env->hdr.otk_id;
    char path[64 + 3 * CF_ID_MAX_LEN], why[256];
    size_t p = 0;
    cf_http_response r;
    cf_buf body;
    int rc = 0;

    memset(&r, 0, sizeof(r));
    cf_buf_init(&body, CF_HTTP_MAX_BODY);
    /* The id is visible ASCII (cf_env_parse); percent-encode all but RFC 3986
     * unreserved characters for the path segment. */
    CF_GUARD_OUT(cf_fmt(path, sizeof(path), "/v1/kms/otk/"));
    p = strlen(path);
    for (const char *c = otk_id; *c != '\0'; c++) {
        bool unreserved = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
                          (*c >= '0' && *c <= '9') || *c == '-' || *c == '.' || *c == '_' ||
                          *c == '~';
        CF_GUARD_OUT(unreserved ? cf_fmt(path + p, sizeof(path) - p, "%c", *c)
                                : cf_fmt(path + p, sizeof(path) - p, "%%%02X",
                                         (unsigned)(unsigned char)*c));
        p += strlen(path + p);
    }
    CF_GUARD_OUT(cf_fmt(path + p, sizeof(path) - p, "/release"));
    CF_GUARD_OUT(cf_tee_release_request(t->key, t->kms_key, otk_id, t->tee_id,
                                        (int64_t)time(NULL), &body));
    rc = kms_post(t, path, body.data, body.len, &r);
    if (rc < 0) {
        cf_log(CF_LOG_WARN, "tee.kms_unreachable", "reason", cf_err_detail(rc), NULL);
        rc = cf_err_set(CF_E_UNAVAILABLE, "the KMS is unreachable");
        goto out;
    }
    if (r.status != 200) {
        kms_error_text(&r, why, sizeof(why));
        cf_log(CF_LOG_WARN, "tee.release_refused", "otk_id", otk_id, "status",
               r.status == 409 ? "409" : r.status == 410 ? "410" : r.status == 403 ? "403" : "other",
               "reason", why, NULL);
        if (r.status == 409)
            rc = cf_err_set(CF_E_CONFLICT, "one-time key '%s' was already released: a replayed "
                                           "or duplicate request", otk_id);
        else if (r.status == 410) {
            /* No cf_err code maps to 410 Gone: the response is set here. */
            CF_GUARD_OUT(cf_http_resp_error_status(resp, 410, "expired",
                                                   "the one-time key has expired: request a new "
                                                   "one"));
            rc = CF_E_EXPIRED;
        } else if (r.status == 403)
            rc = cf_err_set(CF_E_FORBIDDEN, "the KMS refused to release the key to this TEE: %s",
                            why[0] ? why : "not active or quarantined");
        else if (r.status == 404)
            rc = cf_err_set(CF_E_NOT_FOUND, "the KMS does not know one-time key '%s'", otk_id);
        else
            rc = cf_err_set(CF_E_HTTP, "the KMS answered HTTP %ld to the key release", r.status);
        goto out;
    }
    CF_GUARD_OUT(cf_tee_release_answer_open(t->key, t->kms_key, otk_id, t->tee_id, r.body.data,
                                            r.body.len, ret));
out:
    cf_http_response_free(&r);
    cf_buf_free(&body);
    return rc;
}

/* ---- handlers ---- */

int cf_tee_request_check(const uint8_t *body, size_t len, const char *path_job,
                         const char *tee_id, const cf_bundle_manifest *m, cf_env *ret)
{
    cf_env env;

    CF_GUARD(cf_env_parse(body, len, &env));
    if (strcmp(env.hdr.tee_id, tee_id) != 0)
        return cf_err_set(CF_E_INVAL, "the envelope is for TEE '%s', not for this one ('%s')",
                          env.hdr.tee_id, tee_id);
    if (path_job == NULL || strcmp(env.hdr.job, path_job) != 0)
        return cf_err_set(CF_E_INVAL, "the envelope's job '%s' does not match the URL's",
                          env.hdr.job);
    if (cf_bundle_manifest_job(m, env.hdr.job) == NULL)
        return cf_err_set(CF_E_NOT_FOUND, "deployment '%s' has no job '%s'", m->name,
                          env.hdr.job);
    *ret = env;
    return 0;
}

static bool take_evidence_token(cf_tee *t)
{
    uint64_t now = mono_ms();
    bool ok;

    pthread_mutex_lock(&t->rl_lock);
    t->rl_tokens += (double)(now - t->rl_last_ms) * CF_TEE_EVIDENCE_RATE / 1000.0;
    if (t->rl_tokens > CF_TEE_EVIDENCE_BURST)
        t->rl_tokens = CF_TEE_EVIDENCE_BURST;
    t->rl_last_ms = now;
    ok = t->rl_tokens >= 1.0;
    if (ok)
        t->rl_tokens -= 1.0;
    pthread_mutex_unlock(&t->rl_lock);
    return ok;
}

static int h_evidence(void *cls, const cf_http_req *req, cf_http_resp *resp)
{
    static const char *const keys[] = {"nonce", NULL};
    cf_tee *t = cls;
    uint8_t nonce[CF_BINDING_NONCE_LEN], rd[CF_BINDING_LEN];
    cf_provider_evidence ev;
    json_t *in = NULL, *out = NULL, *evj = NULL;
    char *pub = NULL;
    int rc = 0;

    memset(&ev, 0, sizeof(ev));
    CF_GUARD(cf_http_require_content_type(req, resp, "application/json"));
    if (!take_evidence_token(t)) {
        CF_GUARD(cf_http_resp_header(resp, "Retry-After", "1"));
        return cf_err_set(CF_E_RATE_LIMITED, "evidence is limited to %u reports per second",
                          (unsigned)CF_TEE_EVIDENCE_RATE);
    }
    CF_GUARD_OUT(cf_http_req_json(req, &in));
    CF_GUARD_OUT(cf_json_only_keys(in, keys));
    CF_GUARD_OUT(cf_json_get_hex(in, "nonce", true, nonce, sizeof(nonce)));
    CF_GUARD_OUT(cf_binding_compute(t->pub, sizeof(t->pub), nonce, rd));
    rc = cf_provider_get_report(t->provider, rd, &ev);
    if (rc < 0) {
        cf_log(CF_LOG_ERROR, "tee.evidence_failed", "reason", cf_err_detail(rc), NULL);
        rc = cf_err_set(CF_E_UNAVAILABLE, "the hardware provider gave no report");
        goto out;
    }
    CF_GUARD_OUT(cf_tee_evidence_json(&ev, &evj));
    pub = cf_b64url_encode_alloc(t->pub, sizeof(t->pub));
    CF_ENSURE_OUT(pub != NULL, CF_E_NOMEM);
    out = json_pack("{s:s, s:s, s:s, s:s, s:O}", "tee_id", t->tee_id, "public_key", pub,
                    "deployment", cf_bundle_get_manifest(t->bundle)->name, "build_hash",
                    cf_bundle_build_hash(t->bundle), "evidence", evj);
    CF_ENSURE_OUT(out != NULL, CF_E_NOMEM);
    CF_GUARD_OUT(cf_http_resp_json(resp, 200, out));
out:
    free(pub);
    json_decref(in);
    json_decref(out);
    json_decref(evj);
    cf_provider_evidence_free(&ev);
    return rc;
}

static int h_health(void *cls, const cf_http_req *req, cf_http_resp *resp)
{
    cf_tee *t = cls;
    json_t *o;
    int rc;

    (void)req;
    o = json_pack("{s:s, s:s, s:s, s:s}", "status", "ok", "tee_id", t->tee_id, "deployment",
                  cf_bundle_get_manifest(t->bundle)->name, "build_hash",
                  cf_bundle_build_hash(t->bundle));
    CF_ENSURE(o != NULL, CF_E_NOMEM);
    rc = cf_http_resp_json(resp, 200, o);
    json_decref(o);
    return rc;
}

/* What a non-zero status carries: the runtime's reason, then the job's stderr
 * (bounded). Both go to the client only, sealed. */
static int failure_report(const cf_sandbox_result *res, const cf_buf *err, cf_buf *out)
{
    CF_GUARD(cf_buf_put_str(out, res->reason));
    if (err->len > 0) {
        CF_GUARD(cf_buf_put_str(out, "\nstderr:\n"));
        CF_GUARD(cf_buf_put(out, err->data, err->len));
    }
    return 0;
}

static int h_job(void *cls, const cf_http_req *req, cf_http_resp *resp)
{
    cf_tee *t = cls;
    const char *job_name = cf_http_req_param(req, "job");
    const cf_bundle_job *job = NULL;
    const uint8_t *body;
    size_t len = 0;
    cf_env env;
    cf_tee_release rel;
    cf_hpke_key *client = NULL;
    cf_hpke_ctx *ctx = NULL;
    cf_sandbox_result res;
    cf_sandbox_job sj;
    cf_buf in, out, err, report, sealed;
    const cf_buf *result;
    bool slot = false;
    int exe = -1, rc = 0;
    char wall[24];

    memset(&rel, 0, sizeof(rel));
    memset(&res, 0, sizeof(res));
    cf_buf_init_secret(&in, CF_ENV_MAX_PAYLOAD);
    cf_buf_init_secret(&out, (size_t)CF_TEE_MAX_OUTPUT_KB * 1024u);
    cf_buf_init_secret(&err, CF_TEE_MAX_STDERR);
    cf_buf_init_secret(&report, CF_TEE_MAX_REASON + CF_TEE_MAX_STDERR + 16);
    cf_buf_init(&sealed, CF_ENV_MAX_RESPONSE_BYTES);
    CF_GUARD_OUT(cf_http_require_content_type(req, resp, CF_TEE_ENVELOPE_TYPE));
    body = cf_http_req_body(req, &len);

    /* 1. The parsing front: nothing reaches the KMS unless this passes. */
    CF_GUARD_OUT(cf_tee_request_check(body, len, job_name, t->tee_id,
                                      cf_bundle_get_manifest(t->bundle), &env));
    CF_GUARD_OUT(cf_bundle_job_get(t->bundle, env.hdr.job, &job, &exe));

    /* 2. A job slot, before the OTK is spent. */
    if (atomic_fetch_add(&t->running, 1) >= t->max_jobs) {
        atomic_fetch_sub(&t->running, 1);
        CF_GUARD_OUT(cf_http_resp_header(resp, "Retry-After", "1"));
        CF_GUARD_OUT(cf_http_resp_error_status(resp, 503, "busy",
                                               "all job slots of this TEE are in use"));
        rc = CF_E_UNAVAILABLE;
        goto out;
    }
    slot = true;

    /* 3. The OTK from the KMS (single use: a replay stops here with 409). */
    CF_GUARD_OUT(release_otk(t, &env, resp, &rel));
    /* 4. The tenant the KMS bound the OTK to must be the header's. */
    CF_ENSURE_OUT(strcmp(rel.tenant, env.hdr.tenant) == 0,
                  cf_err_set(CF_E_FORBIDDEN, "the one-time key belongs to another tenant"));
    /* 5. Both layers; cf_env_open checks the header's client_key against the
     * KMS's in constant time and authenticates the sender (HPKE auth). */
    CF_GUARD_OUT(cf_hpke_key_from_public(CF_HPKE_KEM_X25519_SHA256, rel.client_key,
                                         sizeof(rel.client_key), &client));
    CF_GUARD_OUT(cf_env_open(&env, rel.otk.p, t->key, client, &in, &ctx));
    cf_tee_release_clear(&rel); /* the OTK has done its work */

    /* 6. The job, in the sandbox. */
    memset(&sj, 0, sizeof(sj));
    sj.name = job->name;
    sj.exe_fd = exe;
    sj.args = job->args;
    sj.n_args = job->n_args;
    sj.limits = job->limits;
    CF_GUARD_OUT(cf_sandbox_run(t->sandbox, &sj, in.data, in.len, &out, &err, &res));
    cf_buf_reset(&in);

    /* 7. The sealed result: status byte and output (or the failure report). */
    result = &out;
    if (res.status != CF_JOB_OK) {
        CF_GUARD_OUT(failure_report(&res, &err, &report));
        result = &report;
    }
    CF_GUARD_OUT(cf_env_response_seal(ctx, env.hdr.request_id, (uint8_t)res.status,
                                      result->data, result->len, &sealed));
    CF_GUARD_OUT(cf_http_resp_set(resp, 200, CF_TEE_RESPONSE_TYPE, sealed.data, sealed.len));
    if (cf_fmt(wall, sizeof(wall), "%llu", (unsigned long long)res.wall_ms) < 0)
        wall[0] = '\0';
    cf_log(res.status == CF_JOB_OK ? CF_LOG_INFO : CF_LOG_WARN, "tee.job", "job", job->name,
           "tenant", env.hdr.tenant, "otk_id", env.hdr.otk_id, "status",
           cf_job_status_name(res.status), "wall_ms", wall, NULL);
out:
    if (slot)
        atomic_fetch_sub(&t->running, 1);
    cf_tee_release_clear(&rel);
    cf_hpke_ctx_free(ctx);
    cf_hpke_key_free(client);
    cf_buf_free(&in);
    cf_buf_free(&out);
    cf_buf_free(&err);
    cf_buf_free(&report);
    cf_buf_free(&sealed);
    return rc;
}

int cf_tee_add_routes(cf_tee *t, cf_http_server *s)
{
    CF_ENSURE(t->tee_id[0] != '\0', cf_err_set(CF_E_CONFLICT, "register before serving"));
    CF_GUARD(cf_http_server_route(s, "POST", "/v1/evidence", h_evidence, t, 0));
    CF_GUARD(cf_http_server_route(s, "POST", "/v1/jobs/{job}", h_job, t,
                                  CF_HTTP_MAX_ENVELOPE_BODY));
    CF_GUARD(cf_http_server_route(s, "GET", "/healthz", h_health, t, 0));
    return 0;
}
