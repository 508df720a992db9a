/*
 * The request path end to end, without the real KMS: coffer-tee runs under
 * coffer-launch (the real simulated secure processor) with a test bundle (the
 * demo jobs plus probe jobs that fail), and talks to a fake KMS served here that
 * implements the registry and release endpoints in the exact wire format
 * (docs/internals/tee.md "KMS protocol") and checks what it is sent as a real
 * KMS would: join token, nonce, binding, report signature and measurement, the
 * sealed release request. A test client seals envelopes (cf_env_seal) with OTKs
 * the fake KMS knows and opens the responses (cf_env_response_open).
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <openssl/x509.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "attest/binding.h"
#include "attest/measure.h"
#include "attest/snp.h"
#include "base/err.h"
#include "base/json.h"
#include "base/parse.h"
#include "base/secmem.h"
#include "crypto/hash.h"
#include "crypto/hpke.h"
#include "crypto/keys.h"
#include "http/client.h"
#include "http/server.h"
#include "proto/envelope.h"
#include "tee/bundle.h"
#include "tee/kmswire.h"
#include "test.h"

#define MUT(s) ((char *)(uintptr_t)(s))
#define PATHF(buf, ...)                                                                  \
    do {                                                                                 \
        if ((size_t)snprintf((buf), sizeof(buf), __VA_ARGS__) >= sizeof(buf))            \
            abort();                                                                     \
    } while (0)

static const char join_token[] = "join-secret-e2e-7f3a";
static const char tee_id_assigned[] = "tee-e2e-1";
static const char payload_marker[] = "PAYLOAD-MARKER-5e1d";

static char tmp_root[256], state_dir[512], bundle_dir[512], log_path[512], port_path[512];
static char dev_pub[64], kms_pub[64];
static pid_t g_launcher = -1;

/* ---- the fake KMS ---- */

typedef struct {
    char otk_id[64];
    uint8_t otk[32];
    char tenant[64];
    uint8_t client_pub[32];
    bool released, expired;
} fake_otk;

static struct {
    pthread_mutex_t lock;
    cf_http_server *http;
    cf_hpke_key *release_key;
    int nonce_calls, nonce_fail_first;
    char nonces[64][65];
    bool nonce_used[64];
    int n_nonces;
    bool registered;
    uint8_t tee_pub[32];
    uint8_t measurement[48]; /* what the TEE must be running */
    fake_otk otks[64];
    int n_otks;
    atomic_int releases;
} kms;

static int kms_refuse(cf_http_resp *resp, int status, const char *msg)
{
    return cf_http_resp_error_status(resp, status, status == 403 ? "forbidden" : "refused", msg);
}

static int h_nonce(void *cls, const cf_http_req *req, cf_http_resp *resp)
{
    uint8_t n[32];
    char hex[65], body[160];
    int rc;

    (void)cls;
    (void)req;
    pthread_mutex_lock(&kms.lock);
    kms.nonce_calls++;
    if (kms.nonce_calls <= kms.nonce_fail_first || kms.n_nonces == 64) {
        pthread_mutex_unlock(&kms.lock);
        return kms_refuse(resp, 503, "starting up");
    }
    if (cf_random(n, sizeof(n)) < 0)
        abort();
    cf_hex_encode(n, sizeof(n), hex);
    memcpy(kms.nonces[kms.n_nonces++], hex, sizeof(hex));
    pthread_mutex_unlock(&kms.lock);
    PATHF(body, "{\"nonce\":\"%s\",\"expires_at\":\"2099-01-01T00:00:00Z\"}", hex);
    rc = cf_http_resp_set(resp, 200, "application/json", body, strlen(body));
    return rc;
}

/* POST /v1/registry/tees: the checks a KMS makes before it trusts a TEE. */
static int h_register(void *cls, const cf_http_req *req, cf_http_resp *resp)
{
    static const char *const keys[] = {"join_token", "nonce", "public_key", "evidence", NULL};
    static const char *const ekeys[] = {"platform", "report", "cert", NULL};
    const char *tok = NULL, *nonce_hex = NULL, *platform = NULL;
    json_t *o = NULL, *ev = NULL;
    cf_buf pub, report, cert;
    uint8_t nonce[32];
    cf_snp_report r;
    X509 *x = NULL;
    const uint8_t *p;
    int rc = 0, slot = -1;

    (void)cls;
    cf_buf_init(&pub, 64);
    cf_buf_init(&report, 2048);
    cf_buf_init(&cert, 16384);
    if (cf_http_req_json(req, &o) < 0 || cf_json_only_keys(o, keys) < 0 ||
        cf_json_get_str(o, "join_token", true, 128, &tok) < 0 ||
        cf_json_get_str(o, "nonce", true, 64, &nonce_hex) < 0 ||
        cf_json_get_hex(o, "nonce", true, nonce, 32) < 0 ||
        cf_json_get_b64url(o, "public_key", true, 32, &pub) < 0 || pub.len != 32 ||
        cf_json_get_obj(o, "evidence", true, &ev) < 0 || cf_json_only_keys(ev, ekeys) < 0 ||
        cf_json_get_str(ev, "platform", true, 32, &platform) < 0 ||
        strcmp(platform, "sev-snp") != 0 ||
        cf_json_get_b64url(ev, "report", true, 1184, &report) < 0 || report.len != 1184 ||
        cf_json_get_b64url(ev, "cert", true, 16384, &cert) < 0) {
        rc = kms_refuse(resp, 400, "malformed registration");
        goto out;
    }
    if (strcmp(tok, join_token) != 0) {
        rc = kms_refuse(resp, 403, "unknown join token");
        goto out;
    }
    pthread_mutex_lock(&kms.lock);
    for (int i = 0; i < kms.n_nonces; i++)
        if (strcmp(kms.nonces[i], nonce_hex) == 0 && !kms.nonce_used[i])
            slot = i;
    if (slot >= 0)
        kms.nonce_used[slot] = true;
    pthread_mutex_unlock(&kms.lock);
    if (slot < 0) {
        rc = kms_refuse(resp, 409, "nonce unknown or used");
        goto out;
    }
    p = cert.data;
    x = d2i_X509(NULL, &p, (long)cert.len);
    if (x == NULL || cf_snp_report_parse(report.data, report.len, &r) < 0 ||
        cf_snp_report_verify_signature(report.data, x) < 0 ||
        cf_binding_check(r.report_data, pub.data, 32, nonce) < 0 ||
        memcmp(r.measurement, kms.measurement, 48) != 0) {
        rc = kms_refuse(resp, 403, "evidence does not verify");
        goto out;
    }
    pthread_mutex_lock(&kms.lock);
    memcpy(kms.tee_pub, pub.data, 32);
    kms.registered = true;
    pthread_mutex_unlock(&kms.lock);
    {
        char body[128];
        PATHF(body, "{\"id\":\"%s\",\"status\":\"active\"}", tee_id_assigned);
        rc = cf_http_resp_set(resp, 201, "application/json", body, strlen(body));
    }
out:
    X509_free(x);
    json_decref(o);
    cf_buf_free(&pub);
    cf_buf_free(&report);
    cf_buf_free(&cert);
    return rc;
}

static cf_hpke_params auth(const char *info)
{
    cf_hpke_params p;
    memset(&p, 0, sizeof(p));
    p.suite = CF_HPKE_SUITE_COFFER;
    p.mode = CF_HPKE_MODE_AUTH;
    p.info = (const uint8_t *)info;
    p.info_len = strlen(info);
    return p;
}

/* POST /v1/kms/otk/{id}/release. */
static int h_release(void *cls, const cf_http_req *req, cf_http_resp *resp)
{
    static const char *const keys[] = {"tee_id", "enc", "ct", NULL};
    const char *otk_id = cf_http_req_param(req, "id"), *tee = NULL, *s = NULL;
    cf_hpke_params preq = auth(CF_TEE_RELEASE_REQUEST_INFO), pans = auth(CF_TEE_RELEASE_ANSWER_INFO);
    cf_hpke_key *tee_key = NULL;
    json_t *o = NULL, *inner = NULL;
    cf_buf enc, ct, pt, act;
    uint8_t aenc[CF_HPKE_MAX_ENC];
    size_t aenc_len = 0;
    uint64_t ts = 0;
    fake_otk *k = NULL;
    char plain[512], *e64 = NULL, *c64 = NULL, *otk64 = NULL, *ck64 = NULL, *body = NULL;
    int rc = 0;

    (void)cls;
    atomic_fetch_add(&kms.releases, 1);
    cf_buf_init(&enc, 64);
    cf_buf_init(&ct, 4096);
    cf_buf_init_secret(&pt, 4096);
    cf_buf_init(&act, 4096);
    if (cf_http_req_json(req, &o) < 0 || cf_json_only_keys(o, keys) < 0 ||
        cf_json_get_str(o, "tee_id", true, 128, &tee) < 0 ||
        cf_json_get_b64url(o, "enc", true, 64, &enc) < 0 ||
        cf_json_get_b64url(o, "ct", true, 4096, &ct) < 0) {
        rc = kms_refuse(resp, 400, "malformed release request");
        goto out;
    }
    if (!kms.registered || strcmp(tee, tee_id_assigned) != 0) {
        rc = kms_refuse(resp, 403, "TEE not active");
        goto out;
    }
    /* Proof of possession: sealed by the registered TEE key, bound to otk_id. */
    if (cf_hpke_key_from_public(CF_HPKE_KEM_X25519_SHA256, kms.tee_pub, 32, &tee_key) < 0 ||
        cf_hpke_open_once(&preq, enc.data, enc.len, kms.release_key, tee_key,
                          (const uint8_t *)otk_id, strlen(otk_id), ct.data, ct.len, &pt) < 0 ||
        cf_json_parse_object(pt.data, pt.len, 4096, &inner) < 0 ||
        cf_json_get_str(inner, "otk_id", true, 128, &s) < 0 || strcmp(s, otk_id) != 0 ||
        cf_json_get_str(inner, "tee_id", true, 128, &s) < 0 || strcmp(s, tee_id_assigned) != 0 ||
        cf_json_get_u64(inner, "ts", true, UINT64_MAX, &ts) < 0 ||
        ts + 300 < (uint64_t)time(NULL) || ts > (uint64_t)time(NULL) + 300) {
        rc = kms_refuse(resp, 403, "release request does not verify");
        goto out;
    }
    pthread_mutex_lock(&kms.lock);
    for (int i = 0; i < kms.n_otks; i++)
        if (strcmp(kms.otks[i].otk_id, otk_id) == 0)
            k = &kms.otks[i];
    if (k == NULL) {
        pthread_mutex_unlock(&kms.lock);
        rc = kms_refuse(resp, 404, "unknown one-time key");
        goto out;
    }
    if (k->expired || k->released) {
        bool expired = k->expired;
        pthread_mutex_unlock(&kms.lock);
        rc = kms_refuse(resp, expired ? 410 : 409, expired ? "expired" : "already released");
        goto out;
    }
    k->released = true;
    otk64 = cf_b64url_encode_alloc(k->otk, 32);
    ck64 = cf_b64url_encode_alloc(k->client_pub, 32);
    PATHF(plain, "{\"client_key\":\"%s\",\"otk\":\"%s\",\"otk_id\":\"%s\",\"tee_id\":\"%s\","
                 "\"tenant\":\"%s\"}",
          ck64, otk64, otk_id, tee_id_assigned, k->tenant);
    pthread_mutex_unlock(&kms.lock);
    if (cf_hpke_seal_once(&pans, tee_key, kms.release_key, (const uint8_t *)otk_id,
                          strlen(otk_id), (const uint8_t *)plain, strlen(plain), aenc, &aenc_len,
                          &act) < 0)
        abort();
    e64 = cf_b64url_encode_alloc(aenc, aenc_len);
    c64 = cf_b64url_encode_alloc(act.data, act.len);
    body = malloc(strlen(c64) + 128);
    if (body == NULL)
        abort();
    if (cf_fmt(body, strlen(c64) + 128, "{\"enc\":\"%s\",\"ct\":\"%s\"}", e64, c64) < 0)
        abort();
    rc = cf_http_resp_set(resp, 200, "application/json", body, strlen(body));
out:
    cf_wipe(plain, sizeof(plain));
    free(body);
    free(e64);
    free(c64);
    cf_freezero(otk64, otk64 ? strlen(otk64) : 0);
    free(ck64);
    json_decref(o);
    json_decref(inner);
    cf_hpke_key_free(tee_key);
    cf_buf_free(&enc);
    cf_buf_free(&ct);
    cf_buf_free(&pt);
    cf_buf_free(&act);
    return rc;
}

/* An OTK the fake KMS will release once. */
static void add_otk(const char *id, const char *tenant, const cf_hpke_key *client, bool expired,
                    uint8_t otk[32])
{
    size_t n = 0;
    const uint8_t *pub = cf_hpke_key_pub(client, &n);
    fake_otk *k;

    pthread_mutex_lock(&kms.lock);
    if (kms.n_otks == 64 || n != 32)
        abort();
    k = &kms.otks[kms.n_otks++];
    memset(k, 0, sizeof(*k));
    PATHF(k->otk_id, "%s", id);
    PATHF(k->tenant, "%s", tenant);
    memcpy(k->client_pub, pub, 32);
    k->expired = expired;
    if (cf_random(k->otk, 32) < 0)
        abort();
    memcpy(otk, k->otk, 32);
    pthread_mutex_unlock(&kms.lock);
}

/* ---- set-up: bundle, keys, processes ---- */

static int rm_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void put_file(const char *path, const void *p, size_t n, mode_t mode)
{
    FILE *f = fopen(path, "wb");
    if (f == NULL || fwrite(p, 1, n, f) != n || fclose(f) != 0 || chmod(path, mode) != 0)
        abort();
}

static void copy_file(const char *from, const char *to, mode_t mode)
{
    size_t n;
    unsigned char *d = t_read_file(from, &n);
    put_file(to, d, n, mode);
    free(d);
}

#define LIM(t) "\"limits\":{\"cpu_s\":5,\"memory_mb\":64,\"output_kb\":8191,\"timeout_ms\":" #t "}"

static const char e2e_manifest[] =
    "{\"name\":\"e2e\",\"version\":\"1.0\",\"jobs\":{"
    "\"echo\":{\"command\":\"bin/echo\"," LIM(10000) "},"
    "\"sha256\":{\"command\":\"bin/sha256\"," LIM(10000) "},"
    "\"redact\":{\"command\":\"bin/redact\"," LIM(10000) "},"
    "\"crash\":{\"command\":\"bin/probe\",\"args\":[\"segv\"]," LIM(10000) "},"
    "\"fail\":{\"command\":\"bin/probe\",\"args\":[\"exit\",\"3\"]," LIM(10000) "},"
    "\"escape\":{\"command\":\"bin/probe\",\"args\":[\"socket\"]," LIM(10000) "},"
    "\"slow\":{\"command\":\"bin/probe\",\"args\":[\"sleep\"]," LIM(1500) "}}}";

/* The e2e bundle, signed with a fresh developer key; dev_pub gets its public key. */
static void make_bundle(void)
{
    static const char *const demo[] = {"echo", "sha256", "redact"};
    char p[1024], q[1024];
    uint8_t pub[32];
    size_t n = 0;
    cf_key *dev = NULL;

    PATHF(bundle_dir, "%s/bundle", tmp_root);
    PATHF(p, "%s/bin", bundle_dir);
    if (mkdir(bundle_dir, 0755) != 0 || mkdir(p, 0755) != 0)
        abort();
    for (size_t i = 0; i < CF_ARRAY_LEN(demo); i++) {
        PATHF(p, "%s/bin/%s", TEE_DEMO_BUNDLE, demo[i]);
        PATHF(q, "%s/bin/%s", bundle_dir, demo[i]);
        copy_file(p, q, 0755);
    }
    PATHF(q, "%s/bin/probe", bundle_dir);
    copy_file(TEE_PROBE_BIN, q, 0755);
    PATHF(q, "%s/coffer.json", bundle_dir);
    put_file(q, e2e_manifest, strlen(e2e_manifest), 0644);
    if (cf_key_generate(CF_KEY_ED25519, &dev) < 0 || cf_bundle_sign_dir(dev, bundle_dir, NULL) < 0 ||
        cf_key_export_public(dev, pub, sizeof(pub), &n) < 0)
        abort();
    cf_b64url_encode(pub, 32, dev_pub);
    cf_key_free(dev);
}

/* Starts coffer-launch -- coffer-tee with the given join token file and
 * developer key; output to log_path. */
static pid_t start_tee(const char *token_file, const char *devkey, const char *port_file)
{
    char a_url[128], a_rk[128], a_tok[600], a_bundle[600], a_dev[128], a_port[600];
    pid_t pid;

    PATHF(a_url, "--kms.url=http://127.0.0.1:%u", (unsigned)cf_http_server_port(kms.http));
    PATHF(a_rk, "--kms.release_key=%s", kms_pub);
    PATHF(a_tok, "--join_token=@%s", token_file);
    PATHF(a_bundle, "--bundle=%s", bundle_dir);
    PATHF(a_dev, "--deployment.developer_key=%s", devkey);
    PATHF(a_port, "--port_file=%s", port_file);
    char *const argv[] = {MUT(COFFER_LAUNCH_BIN), MUT("--state"), state_dir, MUT("--bundle"),
                          bundle_dir, MUT("--"), MUT(COFFER_TEE_BIN), a_url, a_rk, a_tok,
                          a_bundle, MUT("--deployment.name=e2e"), a_dev, a_port,
                          MUT("--sandbox.max_jobs=1"), MUT("--kms.register_timeout=30s"), NULL};
    pid = fork();
    if (pid < 0)
        abort();
    if (pid == 0) {
        int fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        if (fd < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0)
            _exit(120);
        execv(argv[0], argv);
        _exit(121);
    }
    return pid;
}

/* Waits up to ms for pid to exit; its exit code (128+sig if killed), or -1. */
static int wait_exit(pid_t pid, int ms)
{
    for (int i = 0; i < ms / 20; i++) {
        int st;
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid)
            return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        usleep(20000);
    }
    return -1;
}

static void dump_log(void)
{
    size_t n;
    struct stat st;
    unsigned char *d;
    if (stat(log_path, &st) != 0)
        return;
    d = t_read_file(log_path, &n);
    fprintf(stderr, "---- coffer-launch / coffer-tee log ----\n%s\n----\n", (const char *)d);
    free(d);
}

/* ---- the client ---- */

static cf_http_client *g_client;
static cf_hpke_key *g_tee_key;
static char g_tee_id[CF_ID_MAX_LEN + 1];
static uint16_t g_port;

static cf_http_client *new_client(void)
{
    char url[64];
    cf_http_client_opts o;
    cf_http_client *c = NULL;

    memset(&o, 0, sizeof(o));
    PATHF(url, "http://127.0.0.1:%u", (unsigned)g_port);
    o.base_url = url;
    o.max_response = CF_ENV_MAX_RESPONSE_BYTES + 4096;
    if (cf_http_client_new(&o, &c) < 0)
        abort();
    return c;
}

static long post(cf_http_client *c, const char *path, const char *type, const void *body,
                 size_t len, cf_http_response *ret)
{
    cf_http_request rq;

    memset(&rq, 0, sizeof(rq));
    memset(ret, 0, sizeof(*ret));
    rq.method = "POST";
    rq.path = path;
    rq.content_type = type;
    rq.body = body;
    rq.body_len = len;
    if (cf_http_client_do(c, &rq, ret) < 0)
        return -1;
    return ret->status;
}

/* The JSON error code of a response ("" if none). */
static const char *error_code(const cf_http_response *r, char *buf, size_t n)
{
    json_t *o = NULL, *e = NULL;
    const char *code = NULL;

    buf[0] = '\0';
    if (cf_http_response_json(r, &o) == 0 && cf_json_get_obj(o, "error", true, &e) == 0 &&
        cf_json_get_str(e, "code", true, 64, &code) == 0)
        if (cf_fmt(buf, n, "%s", code) < 0)
            buf[0] = '\0';
    json_decref(o);
    return buf;
}

typedef struct {
    const char *path_job;     /* URL's job (NULL = the header's) */
    const char *job, *tenant, *otk_id, *request_id;
    const cf_hpke_key *client;
    const uint8_t *otk;
    const void *data;
    size_t len;
    long tamper_at;           /* flip this byte of the envelope (-1 = none) */
    long tamper_end;          /* flip the byte this far from the end (0 = none) */
    const char *content_type; /* NULL = application/coffer-envelope */
    cf_http_client *http;     /* NULL = g_client */
} job_req;

typedef struct {
    long http;
    char code[64];            /* JSON error code for non-200 */
    uint8_t status;           /* CFR1 status byte */
    cf_buf out;               /* secret */
    cf_buf envelope;          /* what was sent, for replays */
} job_res;

static void job_res_free(job_res *r)
{
    cf_buf_free(&r->out);
    cf_buf_free(&r->envelope);
}

/* Seals, sends, and opens the answer. */
static void send_job(const job_req *q, job_res *r)
{
    cf_env_ids ids = {q->request_id, q->tenant, g_tee_id, q->otk_id, q->job};
    cf_hpke_ctx *ctx = NULL;
    cf_http_response resp;
    char path[256];

    memset(r, 0, sizeof(*r));
    cf_buf_init_secret(&r->out, CF_ENV_MAX_PAYLOAD);
    cf_buf_init(&r->envelope, CF_ENV_MAX_BYTES);
    if (cf_env_seal(&ids, q->otk, q->client, g_tee_key, q->data, q->len, &r->envelope, &ctx) < 0)
        abort();
    if (q->tamper_at >= 0)
        r->envelope.data[q->tamper_at] ^= 0x01;
    if (q->tamper_end > 0)
        r->envelope.data[r->envelope.len - (size_t)q->tamper_end] ^= 0x01;
    PATHF(path, "/v1/jobs/%s", q->path_job ? q->path_job : q->job);
    r->http = post(q->http ? q->http : g_client, path,
                   q->content_type ? q->content_type : "application/coffer-envelope",
                   r->envelope.data, r->envelope.len, &resp);
    if (r->http == 200) {
        if (strcmp(resp.content_type, "application/coffer-response") != 0 ||
            cf_env_response_open(ctx, q->request_id, resp.body.data, resp.body.len, &r->status,
                                 &r->out) < 0)
            r->http = -2; /* a 200 that does not open is a failure */
    } else if (r->http > 0) {
        error_code(&resp, r->code, sizeof(r->code));
    }
    cf_http_response_free(&resp);
    cf_hpke_ctx_free(ctx);
}

/* Re-sends the exact bytes of an earlier request. */
static long resend(const job_res *earlier, const char *path_job, char *code, size_t n)
{
    cf_http_response resp;
    char path[256];
    long st;

    PATHF(path, "/v1/jobs/%s", path_job);
    st = post(g_client, path, "application/coffer-envelope", earlier->envelope.data,
              earlier->envelope.len, &resp);
    error_code(&resp, code, n);
    cf_http_response_free(&resp);
    return st;
}

static cf_hpke_key *g_client_key, *g_other_client;
static int g_seq;

/* A request for job with fresh ids and a fresh OTK bound to (tenant, client). */
static void fresh(job_req *q, const char *job, const void *data, size_t len, uint8_t otk[32],
                  char ids[2][32])
{
    memset(q, 0, sizeof(*q));
    g_seq++;
    PATHF(ids[0], "otk-%d", g_seq);
    PATHF(ids[1], "req-%d", g_seq);
    add_otk(ids[0], "tenant-a", g_client_key, false, otk);
    q->job = job;
    q->tenant = "tenant-a";
    q->otk_id = ids[0];
    q->request_id = ids[1];
    q->client = g_client_key;
    q->otk = otk;
    q->data = data;
    q->len = len;
    q->tamper_at = -1;
}

static bool out_is(const job_res *r, const char *s)
{
    return r->out.len == strlen(s) && (r->out.len == 0 || memcmp(r->out.data, s, r->out.len) == 0);
}

static bool healthy(void)
{
    cf_http_request rq;
    cf_http_response resp;
    bool ok;

    memset(&rq, 0, sizeof(rq));
    memset(&resp, 0, sizeof(resp));
    rq.method = "GET";
    rq.path = "/healthz";
    ok = cf_http_client_do(g_client, &rq, &resp) == 0 && resp.status == 200;
    cf_http_response_free(&resp);
    return ok;
}

/* ---- tests ---- */

static void test_registered_with_retry(void)
{
    /* The KMS answered 503 at first: the runtime backed off and retried. */
    T_ASSERT(kms.nonce_calls >= kms.nonce_fail_first + 1);
    T_ASSERT(kms.registered);
    T_STREQ(g_tee_id, tee_id_assigned);
}

static void test_evidence(void)
{
    uint8_t nonce[32], key[32];
    char body[128], hex[65], bh[CF_BUILD_HASH_STR_LEN + 1];
    cf_http_response resp;
    json_t *o = NULL, *ev = NULL;
    const char *s = NULL;
    cf_buf pk, report, cert;
    cf_snp_report r;
    uint8_t dig[32];
    const uint8_t *p;
    X509 *x;
    size_t n = 0;

    cf_buf_init(&pk, 64);
    cf_buf_init(&report, 2048);
    cf_buf_init(&cert, 16384);
    T_OK(cf_random(nonce, 32));
    cf_hex_encode(nonce, 32, hex);
    PATHF(body, "{\"nonce\":\"%s\"}", hex);
    T_EQ(post(g_client, "/v1/evidence", "application/json", body, strlen(body), &resp), 200);
    T_OK(cf_http_response_json(&resp, &o));
    cf_http_response_free(&resp);
    T_OK(cf_json_get_str(o, "tee_id", true, 128, &s));
    T_STREQ(s, tee_id_assigned);
    T_OK(cf_json_get_str(o, "deployment", true, 128, &s));
    T_STREQ(s, "e2e");
    T_OK(cf_bundle_digest(bundle_dir, dig));
    cf_build_hash_format(dig, bh);
    T_OK(cf_json_get_str(o, "build_hash", true, 128, &s));
    T_STREQ(s, bh);
    T_OK(cf_json_get_b64url(o, "public_key", true, 32, &pk));
    T_EQ(pk.len, 32);
    /* The key the KMS registered is the key the evidence names. */
    T_MEMEQ(pk.data, kms.tee_pub, 32);
    T_OK(cf_json_get_obj(o, "evidence", true, &ev));
    T_OK(cf_json_get_b64url(ev, "report", true, 1184, &report));
    T_OK(cf_json_get_b64url(ev, "cert", true, 16384, &cert));
    T_OK(cf_snp_report_parse(report.data, report.len, &r));
    /* Fresh, bound to this nonce and this key, signed, and measuring what runs. */
    T_OK(cf_binding_check(r.report_data, pk.data, 32, nonce));
    p = cert.data;
    x = d2i_X509(NULL, &p, (long)cert.len);
    T_ASSERT(x != NULL);
    T_OK(cf_snp_report_verify_signature(report.data, x));
    X509_free(x);
    T_MEMEQ(r.measurement, kms.measurement, 48);
    /* The client trusts this key from now on. */
    memcpy(key, pk.data, 32);
    T_OK(cf_hpke_key_from_public(CF_HPKE_KEM_X25519_SHA256, key, 32, &g_tee_key));
    T_ASSERT(cf_hpke_key_pub(g_tee_key, &n) != NULL && n == 32);

    /* Bad nonces. */
    T_EQ(post(g_client, "/v1/evidence", "application/json", "{\"nonce\":\"00\"}", 14, &resp), 400);
    cf_http_response_free(&resp);
    T_EQ(post(g_client, "/v1/evidence", "application/json", "{\"nonce\":1,\"x\":2}", 17, &resp),
         400);
    cf_http_response_free(&resp);
    json_decref(o);
    cf_buf_free(&pk);
    cf_buf_free(&report);
    cf_buf_free(&cert);
}

static void test_jobs_answer(void)
{
    static const char want_abc[] =
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad\n";
    uint8_t otk[32];
    char ids[2][32];
    job_req q;
    job_res r;
    size_t big = 1u << 20;
    uint8_t *data = malloc(big);

    T_ASSERT(g_tee_key != NULL && data != NULL);
    fresh(&q, "sha256", "abc", 3, otk, ids);
    send_job(&q, &r);
    T_EQ(r.http, 200);
    T_EQ(r.status, 0);
    T_ASSERT(out_is(&r, want_abc));
    job_res_free(&r);

    /* Empty input and empty output. */
    fresh(&q, "sha256", "", 0, otk, ids);
    send_job(&q, &r);
    T_EQ(r.http, 200);
    T_EQ(r.status, 0);
    T_ASSERT(out_is(&r, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n"));
    job_res_free(&r);
    fresh(&q, "echo", "", 0, otk, ids);
    send_job(&q, &r);
    T_EQ(r.http, 200);
    T_EQ(r.status, 0);
    T_EQ(r.out.len, 0);
    job_res_free(&r);

    for (size_t i = 0; i < big; i++)
        data[i] = (uint8_t)(i ^ (i >> 8));
    memcpy(data, payload_marker, strlen(payload_marker));
    fresh(&q, "echo", data, big, otk, ids);
    send_job(&q, &r);
    T_EQ(r.http, 200);
    T_EQ(r.status, 0);
    T_ASSERT(r.out.len == big && memcmp(r.out.data, data, big) == 0);
    job_res_free(&r);
    free(data);

    {
        static const char text[] =
            "to bob@example.org, card 4111 1111 1111 1111, not 4111 1111 1111 1112";
        fresh(&q, "redact", text, strlen(text), otk, ids);
    }
    send_job(&q, &r);
    T_EQ(r.http, 200);
    T_EQ(r.status, 0);
    T_ASSERT(out_is(&r, "to [EMAIL], card [CARD], not 4111 1111 1111 1112"));
    job_res_free(&r);
    T_ASSERT(healthy());
}

static void test_failing_jobs(void)
{
    uint8_t otk[32];
    char ids[2][32];
    job_req q;
    job_res r;

    fresh(&q, "crash", "x", 1, otk, ids);
    send_job(&q, &r);
    T_EQ(r.http, 200);
    T_EQ(r.status, 5);
    T_ASSERT(r.out.len > 0 && memmem(r.out.data, r.out.len, "crashed", 7) != NULL);
    job_res_free(&r);

    fresh(&q, "fail", "x", 1, otk, ids);
    send_job(&q, &r);
    T_EQ(r.http, 200);
    T_EQ(r.status, 1);
    T_ASSERT(memmem(r.out.data, r.out.len, "exit code 3", 11) != NULL);
    T_ASSERT(memmem(r.out.data, r.out.len, "bad input", 9) != NULL); /* its stderr */
    job_res_free(&r);

    fresh(&q, "escape", "x", 1, otk, ids);
    send_job(&q, &r);
    T_EQ(r.http, 200);
    T_EQ(r.status, 4);
    T_ASSERT(memmem(r.out.data, r.out.len, "forbidden system call", 21) != NULL);
    job_res_free(&r);
    T_ASSERT(healthy());
}

static void test_replay_refused(void)
{
    uint8_t otk[32];
    char ids[2][32], code[64];
    job_req q;
    job_res r;

    fresh(&q, "echo", "once", 4, otk, ids);
    send_job(&q, &r);
    T_EQ(r.http, 200);
    T_ASSERT(out_is(&r, "once"));
    /* The same bytes again: the KMS has released that OTK already. */
    T_EQ(resend(&r, "echo", code, sizeof(code)), 409);
    T_STREQ(code, "conflict");
    job_res_free(&r);
    T_ASSERT(healthy());
}

static void test_wrong_or_unknown_job(void)
{
    uint8_t otk[32];
    char ids[2][32], code[64];
    int before;
    job_req q;
    job_res r;

    /* Header says echo, URL says sha256: refused before the KMS is asked. */
    before = atomic_load(&kms.releases);
    fresh(&q, "echo", "hi", 2, otk, ids);
    q.path_job = "sha256";
    send_job(&q, &r);
    T_EQ(r.http, 400);
    T_EQ(atomic_load(&kms.releases), before);
    /* ... so the OTK is intact and the right URL works. */
    T_EQ(resend(&r, "echo", code, sizeof(code)), 200);
    job_res_free(&r);

    fresh(&q, "nope", "hi", 2, otk, ids);
    send_job(&q, &r);
    T_EQ(r.http, 404);
    T_STREQ(r.code, "not_found");
    job_res_free(&r);
    T_EQ(atomic_load(&kms.releases), before + 1);
}

static void test_tampered_envelopes(void)
{
    uint8_t otk[32];
    char ids[2][32];
    job_req q;
    job_res r;

    /* A flipped bit in the outer ciphertext (before the 16-byte tag): the
     * outer tag fails. */
    fresh(&q, "echo", "secret data", 11, otk, ids);
    q.tamper_end = 20;
    send_job(&q, &r);
    T_EQ(r.http, 400);
    T_STREQ(r.code, "decrypt_failed");
    job_res_free(&r);

    /* The last byte (the outer tag). */
    fresh(&q, "echo", "secret data", 11, otk, ids);
    q.tamper_end = 1;
    send_job(&q, &r);
    T_EQ(r.http, 400);
    T_STREQ(r.code, "decrypt_failed");
    job_res_free(&r);

    /* The magic, and a header byte: refused by the parser, before the KMS. */
    fresh(&q, "echo", "secret data", 11, otk, ids);
    q.tamper_at = 0;
    send_job(&q, &r);
    T_EQ(r.http, 400);
    job_res_free(&r);
    fresh(&q, "echo", "secret data", 11, otk, ids);
    q.tamper_at = 12; /* inside the JSON header */
    send_job(&q, &r);
    T_ASSERT(r.http == 400 || r.http == 404);
    job_res_free(&r);

    /* Garbage and an empty body. */
    {
        cf_http_response resp;
        long st = post(g_client, "/v1/jobs/echo", "application/coffer-envelope", "CFE1junk", 8,
                       &resp);
        cf_http_response_free(&resp);
        T_ASSERT(st == 400 || st == 413); /* "junk" read as a header length is too large */
        T_EQ(post(g_client, "/v1/jobs/echo", "application/coffer-envelope", "", 0, &resp), 400);
        cf_http_response_free(&resp);
    }
    /* Not an envelope content type. */
    fresh(&q, "echo", "x", 1, otk, ids);
    q.content_type = "application/json";
    send_job(&q, &r);
    T_EQ(r.http, 415);
    job_res_free(&r);
    T_ASSERT(healthy());
}

static void test_kms_bindings(void)
{
    uint8_t otk[32];
    char ids[2][32];
    job_req q;
    job_res r;

    /* The OTK belongs to another tenant than the header claims. */
    fresh(&q, "echo", "x", 1, otk, ids);
    q.tenant = "tenant-b";
    send_job(&q, &r);
    T_EQ(r.http, 403);
    job_res_free(&r);

    /* Sealed by another client key than the one the OTK is bound to. */
    fresh(&q, "echo", "x", 1, otk, ids);
    q.client = g_other_client;
    send_job(&q, &r);
    T_EQ(r.http, 401);
    job_res_free(&r);

    /* A wrong OTK (the outer layer does not open). */
    fresh(&q, "echo", "x", 1, otk, ids);
    otk[0] ^= 1;
    send_job(&q, &r);
    T_EQ(r.http, 400);
    T_STREQ(r.code, "decrypt_failed");
    job_res_free(&r);

    /* Expired and unknown OTKs. */
    fresh(&q, "echo", "x", 1, otk, ids);
    add_otk("otk-expired", "tenant-a", g_client_key, true, otk);
    q.otk_id = "otk-expired";
    send_job(&q, &r);
    T_EQ(r.http, 410);
    T_STREQ(r.code, "expired");
    job_res_free(&r);
    fresh(&q, "echo", "x", 1, otk, ids);
    q.otk_id = "otk-never-issued";
    send_job(&q, &r);
    T_EQ(r.http, 404);
    job_res_free(&r);

    /* An envelope for another TEE. */
    {
        char saved[CF_ID_MAX_LEN + 1];
        memcpy(saved, g_tee_id, sizeof(saved));
        PATHF(g_tee_id, "%s", "tee-other");
        fresh(&q, "echo", "x", 1, otk, ids);
        send_job(&q, &r);
        memcpy(g_tee_id, saved, sizeof(saved));
        T_EQ(r.http, 400);
        job_res_free(&r);
    }
    T_ASSERT(healthy());
}

typedef struct {
    job_req q;
    job_res r;
} slow_arg;

static void *slow_thread(void *arg)
{
    slow_arg *a = arg;
    a->q.http = new_client();
    send_job(&a->q, &a->r);
    cf_http_client_free(a->q.http);
    return NULL;
}

/* sandbox.max_jobs=1: a second job while one runs is 503 busy, and its OTK is
 * not spent. The slow job itself times out and says so (status 2). */
static void test_busy_and_timeout(void)
{
    static uint8_t otk_slow[32];
    static char ids_slow[2][32];
    uint8_t otk[32];
    char ids[2][32], code[64];
    slow_arg a;
    pthread_t th;
    job_req q;
    job_res r;
    int before = atomic_load(&kms.releases);

    fresh(&a.q, "slow", "x", 1, otk_slow, ids_slow);
    T_ASSERT(pthread_create(&th, NULL, slow_thread, &a) == 0);
    for (int i = 0; i < 200 && atomic_load(&kms.releases) == before; i++)
        usleep(10000);
    usleep(100000); /* the slow job is in the sandbox now */
    fresh(&q, "echo", "later", 5, otk, ids);
    send_job(&q, &r);
    T_ASSERT(pthread_join(th, NULL) == 0); /* before any assertion can return */
    T_EQ(r.http, 503);
    T_STREQ(r.code, "busy");
    T_EQ(a.r.http, 200);
    T_EQ(a.r.status, 2);
    T_ASSERT(memmem(a.r.out.data, a.r.out.len, "timed out", 9) != NULL);
    job_res_free(&a.r);
    T_EQ(resend(&r, "echo", code, sizeof(code)), 200);
    job_res_free(&r);
    T_ASSERT(healthy());
}

static void test_no_secrets_in_log(void)
{
    size_t n;
    unsigned char *d = t_read_file(log_path, &n);

    T_ASSERT(n > 0);
    T_ASSERT(memmem(d, n, join_token, strlen(join_token)) == NULL);
    T_ASSERT(memmem(d, n, payload_marker, strlen(payload_marker)) == NULL);
    T_ASSERT(memmem(d, n, "tee.job", 7) != NULL); /* it did log the jobs, by id */
    free(d);
}

static void test_evidence_rate_limited(void)
{
    char body[128], hex[65];
    uint8_t nonce[32] = {1};
    int ok = 0, limited = 0;

    cf_hex_encode(nonce, 32, hex);
    PATHF(body, "{\"nonce\":\"%s\"}", hex);
    for (int i = 0; i < 3 * CF_TEE_EVIDENCE_BURST; i++) {
        cf_http_response resp;
        long st = post(g_client, "/v1/evidence", "application/json", body, strlen(body), &resp);
        cf_http_response_free(&resp);
        if (st == 200)
            ok++;
        else if (st == 429)
            limited++;
    }
    T_ASSERT(ok >= CF_TEE_EVIDENCE_BURST / 2);
    T_ASSERT(limited > 0);
    T_EQ(ok + limited, 3 * CF_TEE_EVIDENCE_BURST);
}

/* Start-up refusals: a bundle that does not verify with the configured
 * developer key (no KMS contact at all), and a join token the KMS refuses. */
static void test_refuses_to_start(void)
{
    char tok[600], port2[600];
    int regs;
    pid_t pid;

    {
        char a_dev[128];
        PATHF(a_dev, "--deployment.developer_key=%s", "GuvcdUcD6oXIXQy_61tbIHqBoQcy0gLKOAm2Xjiew9c");
        char *const argv[] = {MUT(COFFER_TEE_BIN), MUT("--kms.url=http://127.0.0.1:1"),
                              MUT("--kms.release_key=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
                              MUT("--join_token=x"), MUT("--deployment.name=e2e"), a_dev,
                              MUT("--bundle"), bundle_dir, NULL};
        pid = fork();
        T_ASSERT(pid >= 0);
        if (pid == 0) {
            int fd = open("/dev/null", O_WRONLY);
            if (fd >= 0) {
                dup2(fd, 1);
                dup2(fd, 2);
            }
            execv(argv[0], argv);
            _exit(121);
        }
        T_EQ(wait_exit(pid, 20000), 1);
    }

    PATHF(tok, "%s/bad-token", tmp_root);
    put_file(tok, "wrong-token\n", 12, 0600);
    PATHF(port2, "%s/port2", tmp_root);
    regs = kms.nonce_calls;
    pid = start_tee(tok, dev_pub, port2);
    T_EQ(wait_exit(pid, 30000), 1); /* 403 is final: no retries until the timeout */
    T_ASSERT(kms.nonce_calls == regs + 1);
    T_ASSERT(access(port2, F_OK) != 0);
}

/* ---- main ---- */

static int setup(void)
{
    char tok[600];
    uint8_t pub[32];
    size_t n = 0;
    const uint8_t *pk;
    cf_http_server_opts so;
    cf_measure_result m;
    cf_launch_config lc = {.debug = false, .vmpl = 0};
    uint64_t port = 0;

    PATHF(tmp_root, "/tmp/coffer-test-tee-e2e-%d", (int)getpid());
    PATHF(state_dir, "%s/state", tmp_root);
    PATHF(log_path, "%s/tee.log", tmp_root);
    PATHF(port_path, "%s/port", tmp_root);
    if (mkdir(tmp_root, 0700) != 0 || mkdir(state_dir, 0700) != 0)
        return -1;
    make_bundle();
    if (cf_measure(COFFER_TEE_BIN, bundle_dir, &lc, &m) < 0)
        return -1;
    memcpy(kms.measurement, m.measurement, 48);

    /* The fake KMS. */
    pthread_mutex_init(&kms.lock, NULL);
    kms.nonce_fail_first = 2;
    if (cf_hpke_key_generate(CF_HPKE_KEM_X25519_SHA256, &kms.release_key) < 0)
        return -1;
    pk = cf_hpke_key_pub(kms.release_key, &n);
    memcpy(pub, pk, 32);
    cf_b64url_encode(pub, 32, kms_pub);
    memset(&so, 0, sizeof(so));
    so.name = "fake-kms";
    so.threads = 4;
    if (cf_http_server_new(&so, &kms.http) < 0 ||
        cf_http_server_route(kms.http, "POST", "/v1/registry/nonce", h_nonce, NULL, 0) < 0 ||
        cf_http_server_route(kms.http, "POST", "/v1/registry/tees", h_register, NULL, 0) < 0 ||
        cf_http_server_route(kms.http, "POST", "/v1/kms/otk/{id}/release", h_release, NULL, 0) <
            0 ||
        cf_http_server_start(kms.http) < 0)
        return -1;

    if (cf_hpke_key_generate(CF_HPKE_KEM_X25519_SHA256, &g_client_key) < 0 ||
        cf_hpke_key_generate(CF_HPKE_KEM_X25519_SHA256, &g_other_client) < 0)
        return -1;

    /* coffer-launch -- coffer-tee. The first launch creates the simulated AMD
     * chain (RSA-4096 keys: seconds). */
    PATHF(tok, "%s/join-token", tmp_root);
    put_file(tok, join_token, strlen(join_token), 0600);
    g_launcher = start_tee(tok, dev_pub, port_path);
    for (int i = 0; i < 900; i++) { /* 90 s */
        size_t len;
        unsigned char *d;
        struct stat st;
        if (stat(port_path, &st) == 0 && st.st_size > 0) {
            d = t_read_file(port_path, &len);
            if (cf_parse_u64((const char *)d, 65535, &port) < 0)
                port = 0;
            free(d);
            break;
        }
        if (waitpid(g_launcher, NULL, WNOHANG) == g_launcher) {
            g_launcher = -1;
            break;
        }
        usleep(100000);
    }
    if (port == 0) {
        fprintf(stderr, "coffer-tee did not come up\n");
        dump_log();
        return -1;
    }
    g_port = (uint16_t)port;
    g_client = new_client();
    PATHF(g_tee_id, "%s", tee_id_assigned);
    return 0;
}

static void teardown(void)
{
    if (g_launcher > 0) {
        int code;
        kill(g_launcher, SIGTERM); /* forwarded to coffer-tee */
        code = wait_exit(g_launcher, 20000);
        if (code < 0) {
            kill(g_launcher, SIGKILL);
            waitpid(g_launcher, NULL, 0);
        }
        if (code != 0) {
            fprintf(stderr, "coffer-tee exited with %d after SIGTERM\n", code);
            dump_log();
            t_failed++;
        }
    }
    cf_http_client_free(g_client);
    cf_http_server_free(kms.http);
    cf_hpke_key_free(kms.release_key);
    cf_hpke_key_free(g_tee_key);
    cf_hpke_key_free(g_client_key);
    cf_hpke_key_free(g_other_client);
    (void)nftw(tmp_root, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    if (setup() < 0) {
        teardown();
        fprintf(stderr, "set-up failed\n");
        return 1;
    }
    T_RUN(test_registered_with_retry);
    T_RUN(test_evidence);
    T_RUN(test_jobs_answer);
    T_RUN(test_failing_jobs);
    T_RUN(test_replay_refused);
    T_RUN(test_wrong_or_unknown_job);
    T_RUN(test_tampered_envelopes);
    T_RUN(test_kms_bindings);
    T_RUN(test_busy_and_timeout);
    T_RUN(test_no_secrets_in_log);
    T_RUN(test_evidence_rate_limited);
    T_RUN(test_refuses_to_start);
    if (t_failed > 0)
        dump_log();
    teardown();
    return t_done();
}
