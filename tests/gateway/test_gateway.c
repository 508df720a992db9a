/*
 * `cofferd gateway` end to end: the gateway runs as its own process (DESIGN.md
 * §1) against fake upstreams served from this test program over plain HTTP — a
 * KMS (registry listing + proxied API), an attestation service, an IAM and
 * several TEE runtimes. Tokens are minted with a test key published in a JWKS
 * file. Every process started here is stopped by pid.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "attest/manifest.h"
#ifdef HAVE_AUDITLOG
#include "auditlog/event.h"
#endif
#include "base/err.h"
#include "base/file.h"
#include "base/json.h"
#include "base/log.h"
#include "base/parse.h"
#include "crypto/hash.h"
#include "crypto/hpke.h"
#include "crypto/jose.h"
#include "crypto/keys.h"
#include "crypto/pki.h"
#include "http/client.h"
#include "http/server.h"
#include "proto/authz.h"
#include "proto/envelope.h"
#include "test.h"

#ifndef COFFERD_BIN
#error "COFFERD_BIN must name the cofferd executable (tests/gateway/tests.cmake)"
#endif

#define EAR_TOKEN "eyJhbGciOiJFUzI1NiJ9.eyJlYXIuc3RhdHVzIjoiYWZmaXJtaW5nIn0.c2lnbmF0dXJl"
#define MEAS "195b01b74976a1faba13bd85eaf787958f0a46e6dddd45c5bdbf8673522777842b8057ae5d866b75416efb62012deaa3"
#define DEVKEY "F4L2-KeulD8PjwNzy78QLHGrVxORTCycQOMoWyensAk"
#define PAYLOAD_MARKER "PLAINTEXT-MARKER-7f3a9c"

static char tmp[64], jwks_path[128], manifest_path[128];
static cf_key *sign_key, *other_key;
static char manifest_hash[96];

/* ---- small helpers ------------------------------------------------------------------- */

static int rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(p);
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static char *token_for(cf_key *k, const char *tenant, uint32_t roles, int64_t iat, uint32_t ttl)
{
    cf_principal p;
    char *t = NULL;

    memset(&p, 0, sizeof(p));
    memcpy(p.tenant, tenant, strlen(tenant) + 1);
    memcpy(p.sub, "alice", 6);
    memcpy(p.kind, "client", 7);
    p.roles = roles;
    if (cf_token_mint(k, "k1", &p, iat, ttl, &t) != 0)
        return NULL;
    return t;
}

static int write_jwks(void)
{
    cf_jwks *set = NULL;
    cf_key *pub = NULL;
    char *js = NULL;
    int rc;

    CF_GUARD(cf_jwks_new(&set));
    rc = cf_key_public_only(sign_key, &pub);
    if (rc == 0)
        rc = cf_jwks_add(set, "k1", pub);
    if (rc == 0)
        rc = cf_jwks_serialise(set, &js);
    if (rc == 0)
        rc = cf_file_write_atomic(jwks_path, js, strlen(js), 0644);
    free(js);
    cf_key_free(pub);
    cf_jwks_free(set);
    return rc;
}

static int write_manifest(void)
{
    static const struct {
        const char *name, *tenant, *jobs;
    } deps[] = {
        {"d1", "t1", "\"echo\",\"slow\""}, {"d2", "t2", "\"echo\""},       {"d4", "t1", "\"flaky\""},
        {"d5", "t1", "\"gone\""},          {"d6", "t1", "\"unverified\""},
    };
    cf_buf b;
    cf_manifest *m = NULL;
    int rc;

    cf_buf_init(&b, 1 << 16);
    rc = cf_buf_put_str(&b, "{\"version\":1,\"platforms\":{\"sev-snp\":{\"roots\":[\"amd:milan\"],\"min_tcb\":"
                            "{\"milan\":{\"bootloader\":1,\"tee\":0,\"snp\":1,\"microcode\":1}}}},"
                            "\"deployments\":[");
    for (size_t i = 0; rc == 0 && i < CF_ARRAY_LEN(deps); i++)
        rc = cf_buf_printf(&b,
                           "%s{\"name\":\"%s\",\"tenant\":\"%s\",\"jobs\":[%s],\"developer_key\":\"" DEVKEY
                           "\",\"platforms\":{\"sev-snp\":{\"measurements\":[\"" MEAS "\"]}}}",
                           i ? "," : "", deps[i].name, deps[i].tenant, deps[i].jobs);
    if (rc == 0)
        rc = cf_buf_put_str(&b, "]}");
    if (rc == 0)
        rc = cf_file_write_atomic(manifest_path, b.data, b.len, 0644);
    if (rc == 0)
        rc = cf_manifest_load(manifest_path, &m);
    if (rc == 0)
        rc = cf_fmt(manifest_hash, sizeof(manifest_hash), "%s", cf_manifest_hash_str(m));
    cf_manifest_free(m);
    cf_buf_free(&b);
    return rc;
}

/* Does the file contain the needle bytes? */
static bool file_contains(const char *path, const void *needle, size_t n)
{
    size_t len = 0;
    unsigned char *d;
    bool found = false;

    if (access(path, R_OK) != 0)
        return false;
    d = t_read_file(path, &len);
    for (size_t i = 0; n > 0 && i + n <= len && !found; i++)
        found = memcmp(d + i, needle, n) == 0;
    free(d);
    return found;
}

/* ---- fake upstreams ---------------------------------------------------------------------- */

static pthread_mutex_t fk_mu = PTHREAD_MUTEX_INITIALIZER;

struct fake_tee {
    char id[32], tenant[16], deployment[16], status[16], endpoint[64];
};
static struct fake_tee reg[16];
static size_t nreg;
static atomic_int kms_down, registry_fetches;

struct tee_srv {
    cf_http_server *s;
    char id[32], deployment[16], pk[64], url[64];
    bool evidence_fails;
    atomic_int evidence_calls, job_calls, slow_inside;
    /* last job received */
    unsigned char *last_body;
    size_t last_len;
    char last_ct[128], last_rid[80];
    bool last_had_auth;
};
enum { TEE_A, TEE_B, TEE_C, TEE_DEAD, TEE_UNV, TEE_T2, NTEE };
static struct tee_srv tees[NTEE];
static cf_http_server *kms_srv, *attest_srv, *iam_srv;
static char kms_url[64], attest_url[64], iam_url[64];
static char *attest_last_body, *attest_last_auth;

static void reg_add(const char *id, const char *tenant, const char *dep, const char *status, const char *ep)
{
    struct fake_tee *t;
    pthread_mutex_lock(&fk_mu);
    t = &reg[nreg++];
    snprintf(t->id, sizeof(t->id), "%s", id);
    snprintf(t->tenant, sizeof(t->tenant), "%s", tenant);
    snprintf(t->deployment, sizeof(t->deployment), "%s", dep);
    snprintf(t->status, sizeof(t->status), "%s", status);
    snprintf(t->endpoint, sizeof(t->endpoint), "%s", ep);
    pthread_mutex_unlock(&fk_mu);
}

static int h_registry(void *cls, const cf_http_req *req, cf_http_resp *resp)
{
    json_t *arr, *doc;
    int rc;

    (void)cls;
    if (atomic_load(&kms_down))
        return cf_http_resp_error_status(resp, 500, "internal_error", "down");
    if (cf_http_req_header(req, "Authorization") == NULL)
        atomic_fetch_add(&registry_fetches, 1);
    arr = json_array();
    pthread_mutex_lock(&fk_mu);
    for (size_t i = 0; i < nreg; i++)
        json_array_append_new(arr, json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:i}", "id", reg[i].id, "tenant",
                                             reg[i].tenant, "deployment", reg[i].deployment, "status",
                                             reg[i].status, "endpoint", reg[i].endpoint, "platform",
                                             "sev-snp", "public_key", "AAAA", "measurement", MEAS,
                                             "last_attested_at", 1700000000));
    pthread_mutex_unlock(&fk_mu);
    doc = json_pack("{s:o}", "tees", arr);
    rc = cf_http_resp_json(resp, 200, doc);
    json_decref(doc);
    return rc;
}

/* Echoes what arrived: method, path, query, Authorization, request id, content type, body. */
static int h_echo(void *cls, const cf_http_req *req, cf_http_resp *resp)
{
    const char *auth = cf_http_req_header(req, "Authorization");
    const char *ct = cf_http_req_header(req, "Content-Type");
    size_t n;
    const uint8_t *b = cf_http_req_body(req, &n);
    json_t *v = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s%,s:s,s:b}", "service", (const char *)cls, "method",
                          cf_http_req_method(req), "path", cf_http_req_path(req), "query",
                          cf_http_req_query_string(req), "auth", auth ? auth : "", "rid", cf_http_req_id(req),
                          "body", (const char *)b, n, "ct", ct ? ct : "", "conn_hdr",
                          cf_http_req_header(req, "X-Hop") != NULL);
    int rc = cf_http_resp_json(resp, 200, v);
    json_decref(v);
    return rc;
}

static int h_status(void *cls, const cf_http_req *req, cf_http_resp *resp)
{
    uint64_t code = 0;
    (void)cls;
    if (cf_parse_u64(cf_http_req_param(req, "code"), 599, &code) != 0 || code < 200)
        code = 500;
    if (code == 503)
        CF_GUARD(cf_http_resp_header(resp, "Retry-After", "7"));
    return cf_http_resp_error_status(resp, (int)code, "teapot", "as requested");
}

static int h_attest(void *cls, const cf_http_req *req, cf_http_resp *resp)
{
    json_t *o = NULL, *ans;
    const char *dep = NULL, *auth = cf_http_req_header(req, "Authorization");
    size_t n;
    const uint8_t *b = cf_http_req_body(req, &n);
    int rc;

    (void)cls;
    CF_GUARD(cf_http_req_json(req, &o));
    pthread_mutex_lock(&fk_mu);
    free(attest_last_body);
    free(attest_last_auth);
    attest_last_body = strndup((const char *)b, n);
    attest_last_auth = strdup(auth ? auth : "");
    pthread_mutex_unlock(&fk_mu);
    rc = cf_json_get_str(o, "deployment", true, 64, &dep);
    if (rc == 0 && strcmp(dep, "d6") == 0)
        ans = json_pack("{s:b,s:{s:s}}", "verified", 0, "result", "status", "contraindicated");
    else
        ans = json_pack("{s:b,s:{s:s},s:s}", "verified", 1, "result", "status", "affirming", "token", EAR_TOKEN);
    json_decref(o);
    rc = cf_http_resp_json(resp, 200, ans);
    json_decref(ans);
    return rc;
}

static int h_tee_evidence(void *cls, const cf_http_req *req, cf_http_resp *resp)
{
    struct tee_srv *t = cls;
    json_t *o = NULL, *ans;
    const char *nonce = NULL;
    int rc;

    atomic_fetch_add(&t->evidence_calls, 1);
    if (t->evidence_fails)
        return cf_http_resp_error_status(resp, 500, "internal_error", "broken TEE");
    CF_GUARD(cf_http_req_json(req, &o));
    rc = cf_json_get_str(o, "nonce", true, 64, &nonce);
    if (rc != 0) {
        json_decref(o);
        return rc;
    }
    /* The report field carries the nonce back so that the test sees which nonce the TEE got. */
    ans = json_pack("{s:s,s:s,s:s,s:s,s:{s:s,s:s,s:s}}", "tee_id", t->id, "public_key", t->pk, "deployment",
                    t->deployment, "build_hash", "sha256:00112233", "evidence", "platform", "sev-snp", "report",
                    nonce, "cert", "Y2VydA");
    json_decref(o);
    rc = cf_http_resp_json(resp, 200, ans);
    json_decref(ans);
    return rc;
}

static int h_tee_job(void *cls, const cf_http_req *req, cf_http_resp *resp)
{
    static const unsigned char cfr[] = "CFR1\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c-result-bytes";
    struct tee_srv *t = cls;
    const char *ct = cf_http_req_header(req, "Content-Type");
    size_t n;
    const uint8_t *b = cf_http_req_body(req, &n);

    atomic_fetch_add(&t->job_calls, 1);
    pthread_mutex_lock(&fk_mu);
    free(t->last_body);
    t->last_body = malloc(n ? n : 1);
    memcpy(t->last_body, b, n);
    t->last_len = n;
    snprintf(t->last_ct, sizeof(t->last_ct), "%s", ct ? ct : "");
    snprintf(t->last_rid, sizeof(t->last_rid), "%s", cf_http_req_id(req));
    t->last_had_auth = cf_http_req_header(req, "Authorization") != NULL;
    pthread_mutex_unlock(&fk_mu);
    if (strcmp(cf_http_req_param(req, "job"), "slow") == 0) {
        atomic_fetch_add(&t->slow_inside, 1);
        sleep_ms(1500);
        atomic_fetch_sub(&t->slow_inside, 1);
    }
    return cf_http_resp_set(resp, 200, "application/coffer-response", cfr, sizeof(cfr) - 1);
}

static int start_server(cf_http_server **ret, unsigned threads)
{
    cf_http_server_opts o;
    memset(&o, 0, sizeof(o));
    o.threads = threads;
    return cf_http_server_new(&o, ret);
}

static int started(cf_http_server *s, char *url, size_t cap)
{
    CF_GUARD(cf_http_server_start(s));
    return cf_fmt(url, cap, "http://127.0.0.1:%u", (unsigned)cf_http_server_port(s));
}

static char name_kms[] = "kms", name_attest[] = "attest", name_iam[] = "iam";

static int start_fakes(void)
{
    static const struct {
        const char *id, *dep;
        bool fails;
    } defs[NTEE] = {
        [TEE_A] = {"tee-a", "d1", false},     [TEE_B] = {"tee-b", "d1", false},
        [TEE_C] = {"tee-c", "d4", false},     [TEE_DEAD] = {"tee-dead", "d4", true},
        [TEE_UNV] = {"tee-unv", "d6", false}, [TEE_T2] = {"tee-t2", "d2", false},
    };
    cf_http_server *s;

    /* KMS: registry + a few proxied endpoints. */
    CF_GUARD(start_server(&kms_srv, 4));
    s = kms_srv;
    CF_GUARD(cf_http_server_route(s, "GET", "/v1/registry/tees", h_registry, NULL, 0));
    CF_GUARD(cf_http_server_route(s, "GET", "/v1/registry/tees/{id}", h_echo, name_kms, 0));
    CF_GUARD(cf_http_server_route(s, "GET", "/v1/kms/echo/{a}", h_echo, name_kms, 0));
    CF_GUARD(cf_http_server_route(s, "POST", "/v1/kms/echo/{a}", h_echo, name_kms, 0));
    CF_GUARD(cf_http_server_route(s, "DELETE", "/v1/kms/echo/{a}/{b}", h_echo, name_kms, 0));
    CF_GUARD(cf_http_server_route(s, "GET", "/v1/kms/status/{code}", h_status, NULL, 0));
    CF_GUARD(started(s, kms_url, sizeof(kms_url)));
    /* Attestation service. */
    CF_GUARD(start_server(&attest_srv, 4));
    CF_GUARD(cf_http_server_route(attest_srv, "POST", "/v1/attestation/evidence", h_attest, NULL, 0));
    CF_GUARD(cf_http_server_route(attest_srv, "GET", "/v1/attestation/echo/{a}", h_echo, name_attest, 0));
    CF_GUARD(started(attest_srv, attest_url, sizeof(attest_url)));
    /* IAM. */
    CF_GUARD(start_server(&iam_srv, 2));
    CF_GUARD(cf_http_server_route(iam_srv, "POST", "/v1/iam/token", h_echo, name_iam, 0));
    CF_GUARD(cf_http_server_route(iam_srv, "GET", "/v1/iam/principals/{a}", h_echo, name_iam, 0));
    CF_GUARD(started(iam_srv, iam_url, sizeof(iam_url)));
    /* TEE runtimes. */
    for (int i = 0; i < NTEE; i++) {
        struct tee_srv *t = &tees[i];
        uint8_t pk[32];
        snprintf(t->id, sizeof(t->id), "%s", defs[i].id);
        snprintf(t->deployment, sizeof(t->deployment), "%s", defs[i].dep);
        t->evidence_fails = defs[i].fails;
        CF_GUARD(cf_random(pk, sizeof(pk)));
        cf_b64url_encode(pk, sizeof(pk), t->pk);
        CF_GUARD(start_server(&t->s, i == TEE_A ? 4 : 2));
        CF_GUARD(cf_http_server_route(t->s, "POST", "/v1/evidence", h_tee_evidence, t, 0));
        CF_GUARD(cf_http_server_route(t->s, "POST", "/v1/jobs/{job}", h_tee_job, t, CF_HTTP_MAX_ENVELOPE_BODY));
        CF_GUARD(started(t->s, t->url, sizeof(t->url)));
    }
    reg_add("tee-a", "t1", "d1", "active", tees[TEE_A].url);
    reg_add("tee-b", "t1", "d1", "active", tees[TEE_B].url);
    reg_add("tee-q", "t1", "d1", "quarantined", tees[TEE_A].url);
    reg_add("tee-c", "t1", "d4", "active", tees[TEE_C].url);
    reg_add("tee-dead", "t1", "d4", "active", tees[TEE_DEAD].url);
    reg_add("tee-gone", "t1", "d5", "active", "http://127.0.0.1:1"); /* nothing listens on port 1 */
    reg_add("tee-unv", "t1", "d6", "active", tees[TEE_UNV].url);
    reg_add("tee-t2", "t2", "d2", "active", tees[TEE_T2].url);
    reg_add("tee-pending", "t1", "d1", "pending", tees[TEE_A].url);
    return 0;
}

static void stop_fakes(void)
{
    cf_http_server_free(kms_srv);
    cf_http_server_free(attest_srv);
    cf_http_server_free(iam_srv);
    for (int i = 0; i < NTEE; i++) {
        cf_http_server_free(tees[i].s);
        free(tees[i].last_body);
    }
    free(attest_last_body);
    free(attest_last_auth);
}

/* ---- gateway processes ------------------------------------------------------------------- */

struct gwproc {
    pid_t pid;
    char dir[128], log[160], url[64];
    cf_http_client *c;
};

static struct gwproc gw1, gw2, gw3, gw5;

/* Starts cofferd gateway NAME with the common flags plus extra (NULL-terminated).
 * tls: base URL scheme and CA for the test client. */
static int gw_start(struct gwproc *g, const char *name, const char *const *extra, const char *ca_file)
{
    char a[24][320], port_path[200];
    char *argv[40];
    int n = 0;
    cf_buf pb;
    cf_http_client_opts co;
    int rc = 0;

    memset(g, 0, sizeof(*g));
    CF_GUARD(cf_fmt(g->dir, sizeof(g->dir), "%s/%s", tmp, name));
    CF_GUARD(cf_fmt(g->log, sizeof(g->log), "%s/%s.log", tmp, name));
    CF_GUARD(cf_fmt(port_path, sizeof(port_path), "%s/%s.port", tmp, name));
    argv[n++] = (char *)(uintptr_t)COFFERD_BIN;
    argv[n++] = (char *)(uintptr_t) "gateway";
#define ARG(...)                                                                                   \
    do {                                                                                           \
        CF_GUARD(cf_fmt(a[n], sizeof(a[n]), __VA_ARGS__));                                         \
        argv[n] = a[n];                                                                            \
        n++;                                                                                       \
    } while (0)
    ARG("--state_dir=%s", g->dir);
    ARG("--port_file=%s", port_path);
    ARG("--manifest=%s", manifest_path);
    ARG("--iam.jwks=%s", jwks_path);
    ARG("--kms.url=%s", kms_url);
    ARG("--attest.url=%s", attest_url);
    ARG("--iam.url=%s", iam_url);
    ARG("--http.threads=8");
    for (size_t i = 0; extra != NULL && extra[i] != NULL; i++)
        ARG("%s", extra[i]);
#undef ARG
    argv[n] = NULL;
    g->pid = fork();
    if (g->pid == 0) {
        int fd = open(g->log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        execv(argv[0], argv);
        _exit(127);
    }
    CF_ENSURE(g->pid > 0, CF_E_IO);
    cf_buf_init(&pb, 16);
    for (int i = 0; i < 500; i++) {
        int st;
        if (cf_file_read(port_path, 16, &pb) == 0 && pb.len > 0)
            break;
        cf_buf_reset(&pb);
        if (waitpid(g->pid, &st, WNOHANG) == g->pid) {
            g->pid = 0;
            fprintf(stderr, "gateway %s exited early; log %s\n", name, g->log);
            cf_buf_free(&pb);
            return CF_E_IO;
        }
        sleep_ms(20);
    }
    CF_ENSURE_OUT(pb.len > 0, CF_E_TIMEOUT);
    CF_GUARD_OUT(cf_buf_nul_terminate(&pb));
    CF_GUARD_OUT(cf_fmt(g->url, sizeof(g->url), "%s://127.0.0.1:%s", ca_file ? "https" : "http",
                        (const char *)pb.data));
    memset(&co, 0, sizeof(co));
    co.base_url = g->url;
    co.ca_file = ca_file;
    co.max_response = 4u << 20;
    CF_GUARD_OUT(cf_http_client_new(&co, &g->c));
out:
    cf_buf_free(&pb);
    return rc;
}

/* SIGTERM, then wait; the exit status must be 0 (graceful stop). */
static int gw_stop(struct gwproc *g)
{
    int st = 0;

    cf_http_client_free(g->c);
    g->c = NULL;
    if (g->pid <= 0)
        return 0;
    if (kill(g->pid, SIGTERM) != 0 || waitpid(g->pid, &st, 0) != g->pid)
        return CF_E_IO;
    g->pid = 0;
    return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : CF_E_INTERNAL;
}

/* ---- requests ---------------------------------------------------------------------------- */

struct reply {
    long status;
    char *body;
    size_t len;
    char ct[256], retry[256], rid[80];
};

static void reply_free(struct reply *r)
{
    free(r->body);
    memset(r, 0, sizeof(*r));
}

static long call_h(cf_http_client *c, const char *method, const char *path, const char *tok, const char *ct,
                   const void *body, size_t len, const char *const *headers, const char *rid, struct reply *out)
{
    cf_http_request rq;
    cf_http_response r;

    memset(out, 0, sizeof(*out));
    memset(&rq, 0, sizeof(rq));
    memset(&r, 0, sizeof(r));
    rq.method = method;
    rq.path = path;
    rq.bearer = tok;
    rq.content_type = ct;
    rq.body = body;
    rq.body_len = len;
    rq.headers = headers;
    rq.request_id = rid;
    if (cf_http_client_do(c, &rq, &r) != 0)
        return out->status = -1;
    out->status = r.status;
    out->body = malloc(r.body.len + 1);
    memcpy(out->body, r.body.len ? r.body.data : (const uint8_t *)"", r.body.len);
    out->body[r.body.len] = 0;
    out->len = r.body.len;
    snprintf(out->ct, sizeof(out->ct), "%s", r.content_type);
    snprintf(out->retry, sizeof(out->retry), "%s", r.retry_after);
    snprintf(out->rid, sizeof(out->rid), "%s", r.request_id);
    cf_http_response_free(&r);
    return out->status;
}

static long call(cf_http_client *c, const char *method, const char *path, const char *tok, const char *ct,
                 const void *body, size_t len, struct reply *out)
{
    return call_h(c, method, path, tok, ct, body, len, NULL, NULL, out);
}

/* error.message of a JSON error answer ("" if none). Static buffer. */
static const char *err_msg(const struct reply *r)
{
    static char msg[512];
    json_t *o = json_loadb(r->body ? r->body : "", r->len, 0, NULL);
    const char *m = json_string_value(json_object_get(json_object_get(o, "error"), "message"));
    snprintf(msg, sizeof(msg), "%s", m ? m : "");
    json_decref(o);
    return msg;
}

static const char *err_code(const struct reply *r)
{
    static char code[64];
    json_t *o = json_loadb(r->body ? r->body : "", r->len, 0, NULL);
    const char *m = json_string_value(json_object_get(json_object_get(o, "error"), "code"));
    snprintf(code, sizeof(code), "%s", m ? m : "");
    json_decref(o);
    return code;
}

static const char *jstr(const struct reply *r, const char *key)
{
    static char v[1024];
    json_t *o = json_loadb(r->body ? r->body : "", r->len, 0, NULL);
    const char *s = json_string_value(json_object_get(o, key));
    snprintf(v, sizeof(v), "%s", s ? s : "");
    json_decref(o);
    return v;
}

static long session(cf_http_client *c, const char *tok, const char *job, const char *nonce_hex, struct reply *r)
{
    char body[256];
    if (cf_fmt(body, sizeof(body), "{\"job\":\"%s\",\"nonce\":\"%s\"}", job, nonce_hex) != 0)
        return -1;
    return call(c, "POST", "/v1/sessions", tok, "application/json", body, strlen(body), r);
}

/* A real CFE1 envelope for (tenant, tee_id, job) around PAYLOAD_MARKER. */
static int make_envelope(const char *tenant, const char *tee_id, const char *job, cf_buf *out)
{
    cf_hpke_key *client = NULL, *tee = NULL;
    uint8_t otk[CF_ENV_OTK_LEN];
    cf_env_ids ids = {"req-1", tenant, tee_id, "otk-1", job};
    char data[256];
    int rc;

    CF_GUARD(cf_fmt(data, sizeof(data), "%s and some more secret bytes", PAYLOAD_MARKER));
    CF_GUARD(cf_random(otk, sizeof(otk)));
    rc = cf_hpke_key_generate(CF_HPKE_KEM_X25519_SHA256, &client);
    if (rc == 0)
        rc = cf_hpke_key_generate(CF_HPKE_KEM_X25519_SHA256, &tee);
    if (rc == 0)
        rc = cf_env_seal(&ids, otk, client, tee, (const uint8_t *)data, strlen(data), out, NULL);
    cf_hpke_key_free(client);
    cf_hpke_key_free(tee);
    return rc;
}

static long submit(cf_http_client *c, const char *tok, const char *path_job, const cf_buf *env, const char *rid,
                   struct reply *r)
{
    char path[128];
    if (cf_fmt(path, sizeof(path), "/v1/jobs/%s", path_job) != 0)
        return -1;
    return call_h(c, "POST", path, tok, "application/coffer-envelope", env->data, env->len, NULL, rid, r);
}

/* Sends only the request head with the given Content-Length and returns the
 * status of the answer (the server judges the length before reading a body). */
static long raw_status(const struct gwproc *g, const char *request_line, const char *tok, const char *ct,
                       size_t content_length)
{
    struct sockaddr_in a;
    const char *port = strrchr(g->url, ':');
    char head[4096], resp[256];
    uint64_t p = 0;
    long status = -1;
    size_t got = 0;
    int fd;

    if (port == NULL || cf_parse_u64(port + 1, 65535, &p) != 0)
        return -1;
    if (cf_fmt(head, sizeof(head),
               "%s HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer %s\r\nContent-Type: %s\r\n"
               "Content-Length: %zu\r\n\r\n",
               request_line, tok, ct, content_length) != 0)
        return -1;
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)p);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0 && write(fd, head, strlen(head)) == (ssize_t)strlen(head)) {
        while (got < sizeof(resp) - 1) {
            ssize_t n = read(fd, resp + got, sizeof(resp) - 1 - got);
            if (n <= 0)
                break;
            got += (size_t)n;
            if (memchr(resp, '\n', got) != NULL)
                break;
        }
        resp[got] = 0;
        if (strncmp(resp, "HTTP/1.1 ", 9) == 0 && got >= 12) {
            char code[4] = {resp[9], resp[10], resp[11], 0};
            uint64_t c = 0;
            if (cf_parse_u64(code, 999, &c) == 0)
                status = (long)c;
        }
    }
    close(fd);
    return status;
}

static const char NONCE[] = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

/* Value of one series in a /metrics text, or -1. */
static long long metric(struct gwproc *g, const char *series)
{
    struct reply r;
    long long v = -1;
    char *p;

    if (call(g->c, "GET", "/metrics", NULL, NULL, NULL, 0, &r) != 200) {
        reply_free(&r);
        return -1;
    }
    /* The series at the start of a line (HELP / TYPE lines name it too). */
    for (p = strstr(r.body, series); p != NULL && p != r.body && p[-1] != '\n';)
        p = strstr(p + 1, series);
    if (p != NULL && p[strlen(series)] == ' ') {
        uint64_t u = 0;
        char num[32];
        size_t k = 0;
        p += strlen(series) + 1;
        while (k + 1 < sizeof(num) && p[k] >= '0' && p[k] <= '9') {
            num[k] = p[k];
            k++;
        }
        num[k] = 0;
        if (cf_parse_u64(num, UINT64_MAX, &u) == 0)
            v = (long long)u;
    }
    reply_free(&r);
    return v;
}

/* ---- tests: gateway 1 (generous limits, registry cached 30 s) ------------------------------- */

static char *tok_t1, *tok_t2, *tok_auditor, *tok_expired, *tok_forged;

static void test_setup(void)
{
    static const char *const extra1[] = {"--insecure_http=true", "--registry.ttl=30s",
                                         "--registry.unhealthy_for=60s", "--ratelimit.rps=1000",
                                         "--ratelimit.burst=1000", "--ratelimit.concurrency=100",
                                         "--ratelimit.ip_rps=1000", "--ratelimit.ip_burst=1000",
                                         "--audit.url=http://127.0.0.1:1", NULL};
    int64_t now = (int64_t)time(NULL);

    T_OK(cf_fmt(jwks_path, sizeof(jwks_path), "%s/jwks.json", tmp));
    T_OK(cf_fmt(manifest_path, sizeof(manifest_path), "%s/manifest.json", tmp));
    T_OK(cf_key_generate(CF_KEY_ED25519, &sign_key));
    T_OK(cf_key_generate(CF_KEY_ED25519, &other_key));
    T_OK(write_jwks());
    T_OK(write_manifest());
    tok_t1 = token_for(sign_key, "t1", CF_ROLE_CLIENT, now, 600);
    tok_t2 = token_for(sign_key, "t2", CF_ROLE_CLIENT, now, 600);
    tok_auditor = token_for(sign_key, "t1", CF_ROLE_AUDITOR, now, 600);
    tok_expired = token_for(sign_key, "t1", CF_ROLE_CLIENT, now - 2000, 600);
    tok_forged = token_for(other_key, "t1", CF_ROLE_CLIENT, now, 600);
    T_ASSERT(tok_t1 && tok_t2 && tok_auditor && tok_expired && tok_forged);
    T_OK(start_fakes());
    T_OK(gw_start(&gw1, "gw1", extra1, NULL));
}

static void test_health(void)
{
    struct reply r;

    T_EQ(call(gw1.c, "GET", "/healthz", NULL, NULL, NULL, 0, &r), 200);
    T_STREQ(jstr(&r, "status"), "ok");
    reply_free(&r);
    T_EQ(call(gw1.c, "GET", "/readyz", NULL, NULL, NULL, 0, &r), 200);
    reply_free(&r);
    T_EQ(call(gw1.c, "GET", "/metrics", NULL, NULL, NULL, 0, &r), 200);
    T_STREQ(r.ct, "text/plain; version=0.0.4; charset=utf-8");
    T_ASSERT(strstr(r.body, "# TYPE coffer_gateway_requests_total counter") != NULL);
    T_ASSERT(strstr(r.body, "# TYPE coffer_gateway_request_duration_seconds histogram") != NULL);
    T_ASSERT(strstr(r.body, "coffer_gateway_rate_limited_total 0") != NULL);
    reply_free(&r);
    T_EQ(call(gw1.c, "GET", "/no/such/thing", NULL, NULL, NULL, 0, &r), 404);
    reply_free(&r);
    T_EQ(call(gw1.c, "POST", "/healthz", NULL, "application/json", "{}", 2, &r), 405);
    reply_free(&r);
}

static void test_session_ok(void)
{
    struct reply r;
    json_t *o, *ev;
    int64_t now = (int64_t)time(NULL);
    const char *tee;
    int idx;

    T_EQ(session(gw1.c, tok_t1, "echo", NONCE, &r), 200);
    o = json_loadb(r.body, r.len, 0, NULL);
    T_ASSERT(o != NULL);
    tee = json_string_value(json_object_get(o, "tee_id"));
    T_ASSERT(tee != NULL && (strcmp(tee, "tee-a") == 0 || strcmp(tee, "tee-b") == 0));
    idx = strcmp(tee, "tee-a") == 0 ? TEE_A : TEE_B;
    T_STREQ(json_string_value(json_object_get(o, "public_key")), tees[idx].pk);
    T_STREQ(json_string_value(json_object_get(o, "deployment")), "d1");
    T_STREQ(json_string_value(json_object_get(o, "build_hash")), "sha256:00112233");
    T_STREQ(json_string_value(json_object_get(o, "nonce")), NONCE);
    T_STREQ(json_string_value(json_object_get(o, "token")), EAR_TOKEN);
    T_STREQ(json_string_value(json_object_get(o, "manifest_hash")), manifest_hash);
    /* The evidence is the TEE's, produced for the client's nonce. */
    ev = json_object_get(o, "evidence");
    T_STREQ(json_string_value(json_object_get(ev, "report")), NONCE);
    T_STREQ(json_string_value(json_object_get(ev, "platform")), "sev-snp");
    T_ASSERT(json_integer_value(json_object_get(o, "expires_at")) > now);
    T_ASSERT(json_integer_value(json_object_get(o, "expires_at")) <= now + 600 + 5);
    json_decref(o);
    reply_free(&r);
    /* The attestation service got the same evidence, nonce and key, and the caller's token. */
    pthread_mutex_lock(&fk_mu);
    o = json_loads(attest_last_body, 0, NULL);
    T_ASSERT(o != NULL);
    T_STREQ(json_string_value(json_object_get(o, "nonce")), NONCE);
    T_STREQ(json_string_value(json_object_get(o, "deployment")), "d1");
    T_STREQ(json_string_value(json_object_get(o, "public_key")), tees[idx].pk);
    T_STREQ(json_string_value(json_object_get(json_object_get(o, "evidence"), "report")), NONCE);
    T_ASSERT(strncmp(attest_last_auth, "Bearer ", 7) == 0 && strcmp(attest_last_auth + 7, tok_t1) == 0);
    json_decref(o);
    pthread_mutex_unlock(&fk_mu);

    /* An upper-case nonce is the same 32 bytes: passed on normalised. */
    {
        char up[65];
        for (int i = 0; i < 64; i++)
            up[i] = (NONCE[i] >= 'a' && NONCE[i] <= 'f') ? (char)(NONCE[i] - 32) : NONCE[i];
        up[64] = 0;
        T_EQ(session(gw1.c, tok_t1, "echo", up, &r), 200);
        T_STREQ(jstr(&r, "nonce"), NONCE);
        reply_free(&r);
    }
    /* Tenant t2's session for the same job name goes to t2's TEE only. */
    T_EQ(session(gw1.c, tok_t2, "echo", NONCE, &r), 200);
    T_STREQ(jstr(&r, "tee_id"), "tee-t2");
    reply_free(&r);
}

static void test_session_rejects(void)
{
    struct reply r;
    char big[2048];
    int64_t now = (int64_t)time(NULL);
    char *tok_t3 = token_for(sign_key, "t3", CF_ROLE_CLIENT, now, 600);

    T_EQ(call(gw1.c, "POST", "/v1/sessions", tok_t1, "application/json", "{\"job\":", 7, &r), 400);
    T_STREQ(err_code(&r), "malformed");
    reply_free(&r);
    T_EQ(call(gw1.c, "POST", "/v1/sessions", tok_t1, "application/json",
              "{\"job\":\"echo\",\"nonce\":\"00\",\"x\":1}", 33, &r),
         400);
    T_ASSERT(strstr(err_msg(&r), "unknown field 'x'") != NULL);
    reply_free(&r);
    T_EQ(call(gw1.c, "POST", "/v1/sessions", tok_t1, "application/json", "{\"job\":\"echo\"}", 14, &r), 400);
    T_ASSERT(strstr(err_msg(&r), "nonce") != NULL);
    reply_free(&r);
    T_EQ(session(gw1.c, tok_t1, "echo", "0011", &r), 400); /* nonce not 32 bytes */
    reply_free(&r);
    T_EQ(session(gw1.c, tok_t1, "../etc", NONCE, &r), 400); /* job name syntax */
    reply_free(&r);
    T_EQ(call(gw1.c, "POST", "/v1/sessions", tok_t1, "text/plain", "{}", 2, &r), 415);
    T_STREQ(err_code(&r), "unsupported_media_type");
    reply_free(&r);
    memset(big, ' ', sizeof(big));
    T_EQ(call(gw1.c, "POST", "/v1/sessions", tok_t1, "application/json", big, sizeof(big), &r), 413);
    T_STREQ(err_code(&r), "too_large");
    reply_free(&r);
    T_EQ(raw_status(&gw1, "POST /v1/sessions", tok_t1, "application/json", CF_GW_MAX_SESSION_BODY + 1), 413);
    T_EQ(session(gw1.c, NULL, "echo", NONCE, &r), 401);
    T_ASSERT(strstr(err_msg(&r), "Authorization") != NULL);
    reply_free(&r);
    T_EQ(session(gw1.c, "not.a.token", "echo", NONCE, &r), 401);
    reply_free(&r);
    T_EQ(session(gw1.c, tok_expired, "echo", NONCE, &r), 401);
    T_STREQ(err_code(&r), "unauthenticated");
    reply_free(&r);
    T_EQ(session(gw1.c, tok_forged, "echo", NONCE, &r), 401);
    reply_free(&r);
    T_EQ(session(gw1.c, tok_auditor, "echo", NONCE, &r), 403);
    T_ASSERT(strstr(err_msg(&r), "session.create") != NULL);
    reply_free(&r);
    T_EQ(session(gw1.c, tok_t1, "nope", NONCE, &r), 404);
    T_STREQ(err_msg(&r), "no TEE serves job nope for tenant t1");
    reply_free(&r);
    /* A job of another tenant's deployment is not offered. */
    T_EQ(session(gw1.c, tok_t2, "flaky", NONCE, &r), 404);
    T_STREQ(err_msg(&r), "no TEE serves job flaky for tenant t2");
    reply_free(&r);
    T_ASSERT(tok_t3 != NULL);
    T_EQ(session(gw1.c, tok_t3, "echo", NONCE, &r), 404);
    reply_free(&r);
    T_EQ(call(gw1.c, "GET", "/v1/sessions", tok_t1, NULL, NULL, 0, &r), 405);
    reply_free(&r);
    free(tok_t3);
}

static void test_job_forward(void)
{
    struct reply r;
    cf_buf env;
    static const char cfr[] = "CFR1\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c-result-bytes";
    int before = atomic_load(&tees[TEE_A].job_calls);

    cf_buf_init(&env, 1 << 20);
    T_OK(make_envelope("t1", "tee-a", "echo", &env));
    T_EQ(submit(gw1.c, tok_t1, "echo", &env, "rid-job-1", &r), 200);
    T_STREQ(r.ct, "application/coffer-response");
    T_EQ(r.len, sizeof(cfr) - 1);
    T_MEMEQ(r.body, cfr, sizeof(cfr) - 1);
    T_STREQ(r.rid, "rid-job-1");
    reply_free(&r);
    T_EQ(atomic_load(&tees[TEE_A].job_calls), before + 1);
    /* The TEE received exactly the bytes the client sent, and no credentials. */
    pthread_mutex_lock(&fk_mu);
    T_EQ(tees[TEE_A].last_len, env.len);
    T_MEMEQ(tees[TEE_A].last_body, env.data, env.len);
    T_STREQ(tees[TEE_A].last_ct, "application/coffer-envelope");
    T_STREQ(tees[TEE_A].last_rid, "rid-job-1");
    T_ASSERT(!tees[TEE_A].last_had_auth);
    pthread_mutex_unlock(&fk_mu);
    cf_buf_free(&env);
}

static void test_job_rejects(void)
{
    struct reply r;
    cf_buf env;
    int before = atomic_load(&tees[TEE_A].job_calls) + atomic_load(&tees[TEE_T2].job_calls);

    cf_buf_init(&env, 1 << 20);
    T_OK(make_envelope("t1", "tee-a", "echo", &env));
    T_EQ(submit(gw1.c, NULL, "echo", &env, NULL, &r), 401);
    reply_free(&r);
    T_EQ(submit(gw1.c, tok_expired, "echo", &env, NULL, &r), 401);
    reply_free(&r);
    T_EQ(submit(gw1.c, tok_auditor, "echo", &env, NULL, &r), 403);
    T_ASSERT(strstr(err_msg(&r), "job.submit") != NULL);
    reply_free(&r);
    T_EQ(call(gw1.c, "POST", "/v1/jobs/echo", tok_t1, "application/octet-stream", env.data, env.len, &r), 415);
    reply_free(&r);
    T_EQ(call(gw1.c, "POST", "/v1/jobs/echo", tok_t1, "application/coffer-envelope", "CFE1garbage", 11, &r),
         400);
    T_ASSERT(strncmp(err_msg(&r), "malformed envelope", 18) == 0);
    reply_free(&r);
    /* Header job differs from the path's job. */
    T_EQ(submit(gw1.c, tok_t1, "slow", &env, NULL, &r), 400);
    T_STREQ(err_msg(&r), "envelope job echo does not match the job slow in the path");
    reply_free(&r);
    /* An envelope for another tenant. */
    T_EQ(submit(gw1.c, tok_t2, "echo", &env, NULL, &r), 403);
    T_STREQ(err_msg(&r), "envelope is for tenant t1, the access token is for tenant t2");
    reply_free(&r);
    cf_buf_reset(&env);
    /* Quarantined TEE of the caller's tenant. */
    T_OK(make_envelope("t1", "tee-q", "echo", &env));
    T_EQ(submit(gw1.c, tok_t1, "echo", &env, NULL, &r), 409);
    T_STREQ(err_msg(&r), "TEE tee-q is quarantined");
    reply_free(&r);
    cf_buf_reset(&env);
    T_OK(make_envelope("t1", "tee-pending", "echo", &env));
    T_EQ(submit(gw1.c, tok_t1, "echo", &env, NULL, &r), 409);
    T_STREQ(err_msg(&r), "TEE tee-pending is pending");
    reply_free(&r);
    cf_buf_reset(&env);
    /* Unknown TEE, and a TEE of another tenant: not routable (existence not revealed). */
    T_OK(make_envelope("t1", "tee-zzz", "echo", &env));
    T_EQ(submit(gw1.c, tok_t1, "echo", &env, NULL, &r), 403);
    T_STREQ(err_msg(&r), "TEE tee-zzz is not routable for tenant t1");
    reply_free(&r);
    cf_buf_reset(&env);
    T_OK(make_envelope("t1", "tee-t2", "echo", &env));
    T_EQ(submit(gw1.c, tok_t1, "echo", &env, NULL, &r), 403);
    T_STREQ(err_msg(&r), "TEE tee-t2 is not routable for tenant t1");
    reply_free(&r);
    cf_buf_reset(&env);
    /* A TEE of the tenant whose deployment does not serve the job. */
    T_OK(make_envelope("t1", "tee-c", "echo", &env));
    T_EQ(submit(gw1.c, tok_t1, "echo", &env, NULL, &r), 403);
    reply_free(&r);
    T_EQ(atomic_load(&tees[TEE_A].job_calls) + atomic_load(&tees[TEE_T2].job_calls), before);
    cf_buf_free(&env);
    /* Over the envelope cap: refused from Content-Length, before any body byte is
     * sent (a client still sending 8 MiB could see the reset before the answer). */
    T_EQ(raw_status(&gw1, "POST /v1/jobs/echo", tok_t1, "application/coffer-envelope",
                    (size_t)CF_HTTP_MAX_ENVELOPE_BODY + 1),
         413);
    T_EQ(raw_status(&gw1, "POST /v1/jobs/echo", tok_t1, "application/coffer-envelope",
                    (size_t)CF_HTTP_MAX_ENVELOPE_BODY + 1000000),
         413);
}

/* A TEE registered after the view was cached is found by the on-demand refresh. */
static void test_registry_refresh(void)
{
    struct reply r;
    cf_buf env;
    int fetches;

    sleep_ms(300); /* past the on-demand refresh throttle of earlier refusals */
    fetches = atomic_load(&registry_fetches);
    reg_add("tee-new", "t1", "d1", "active", tees[TEE_B].url);
    cf_buf_init(&env, 1 << 20);
    T_OK(make_envelope("t1", "tee-new", "echo", &env));
    T_EQ(submit(gw1.c, tok_t1, "echo", &env, NULL, &r), 200);
    reply_free(&r);
    T_ASSERT(atomic_load(&registry_fetches) >= fetches + 1);
    /* A second unknown id right after: throttled, answered from the same view. */
    cf_buf_reset(&env);
    T_OK(make_envelope("t1", "tee-yyy", "echo", &env));
    T_EQ(submit(gw1.c, tok_t1, "echo", &env, NULL, &r), 403);
    reply_free(&r);
    T_ASSERT(atomic_load(&registry_fetches) <= fetches + 2);
    cf_buf_free(&env);
}

/* TEEs that fail are taken out of rotation. */
static void test_out_of_rotation(void)
{
    struct reply r;
    cf_buf env;

    /* Job "flaky": tee-c works, tee-dead answers 500 to evidence requests. Every
     * session lands on tee-c, and tee-dead is asked at most once. */
    for (int i = 0; i < 4; i++) {
        T_EQ(session(gw1.c, tok_t1, "flaky", NONCE, &r), 200);
        T_STREQ(jstr(&r, "tee_id"), "tee-c");
        reply_free(&r);
    }
    T_EQ(atomic_load(&tees[TEE_DEAD].evidence_calls), 1);
    /* Job "unverified": the attestation service says no, so the TEE is not offered. */
    T_EQ(session(gw1.c, tok_t1, "unverified", NONCE, &r), 503);
    T_STREQ(err_msg(&r), "no attested TEE available for job unverified");
    reply_free(&r);
    /* tee-gone does not answer: the forward fails with 503 and the TEE leaves rotation. */
    cf_buf_init(&env, 1 << 20);
    T_OK(make_envelope("t1", "tee-gone", "gone", &env));
    T_EQ(submit(gw1.c, tok_t1, "gone", &env, NULL, &r), 503);
    T_STREQ(err_msg(&r), "TEE unavailable: create a new session");
    reply_free(&r);
    cf_buf_free(&env);
    T_EQ(session(gw1.c, tok_t1, "gone", NONCE, &r), 503);
    T_STREQ(err_msg(&r), "no attested TEE available for job gone");
    reply_free(&r);
    T_ASSERT(metric(&gw1, "coffer_gateway_upstream_errors_total{upstream=\"tee\"}") >= 2);
}

static void test_proxy(void)
{
    struct reply r;
    json_t *o;
    char want_auth[2048];
    const char *const apikey_hdr[] = {"Authorization: ApiKey cfk_0123_secretsecret", NULL};
    const char *const hop[] = {"X-Hop: 1", "Connection: X-Hop", NULL};

    T_OK(cf_fmt(want_auth, sizeof(want_auth), "Bearer %s", tok_t1));
    T_EQ(call_h(gw1.c, "GET", "/v1/kms/echo/x1?a=1&b=%20z", tok_t1, NULL, NULL, 0, hop, "rid-proxy-1", &r), 200);
    o = json_loadb(r.body, r.len, 0, NULL);
    T_STREQ(json_string_value(json_object_get(o, "service")), "kms");
    T_STREQ(json_string_value(json_object_get(o, "method")), "GET");
    T_STREQ(json_string_value(json_object_get(o, "path")), "/v1/kms/echo/x1");
    T_STREQ(json_string_value(json_object_get(o, "query")), "a=1&b=%20z");
    T_STREQ(json_string_value(json_object_get(o, "auth")), want_auth);
    T_STREQ(json_string_value(json_object_get(o, "rid")), "rid-proxy-1");
    T_ASSERT(json_is_false(json_object_get(o, "conn_hdr"))); /* hop-by-hop header not forwarded */
    json_decref(o);
    reply_free(&r);
    /* A JSON body is forwarded as is. */
    T_EQ(call(gw1.c, "POST", "/v1/kms/echo/x2", tok_t1, "application/json", "{\"k\":[1,2]}", 11, &r), 200);
    T_STREQ(jstr(&r, "body"), "{\"k\":[1,2]}");
    T_STREQ(jstr(&r, "ct"), "application/json");
    reply_free(&r);
    T_EQ(call(gw1.c, "DELETE", "/v1/kms/echo/x3/y", tok_t1, NULL, NULL, 0, &r), 200);
    T_STREQ(jstr(&r, "method"), "DELETE");
    reply_free(&r);
    T_EQ(call(gw1.c, "POST", "/v1/kms/echo/x2", tok_t1, "text/plain", "hello", 5, &r), 415);
    reply_free(&r);
    T_EQ(call(gw1.c, "POST", "/v1/kms/echo/x2", tok_t1, "application/json", "{\"k\":", 5, &r), 400);
    reply_free(&r);
    /* Upstream status codes and Retry-After come back unchanged. */
    T_EQ(call(gw1.c, "GET", "/v1/kms/status/418", tok_t1, NULL, NULL, 0, &r), 418);
    T_STREQ(err_msg(&r), "as requested");
    reply_free(&r);
    T_EQ(call(gw1.c, "GET", "/v1/kms/status/503", tok_t1, NULL, NULL, 0, &r), 503);
    T_STREQ(r.retry, "7");
    reply_free(&r);
    /* Every proxied prefix reaches its own service. */
    T_EQ(call(gw1.c, "GET", "/v1/registry/tees/tee-a", tok_t1, NULL, NULL, 0, &r), 200);
    T_STREQ(jstr(&r, "path"), "/v1/registry/tees/tee-a");
    T_STREQ(jstr(&r, "auth"), want_auth);
    reply_free(&r);
    T_EQ(call(gw1.c, "GET", "/v1/attestation/echo/z", tok_t1, NULL, NULL, 0, &r), 200);
    T_STREQ(jstr(&r, "service"), "attest");
    reply_free(&r);
    T_EQ(call(gw1.c, "GET", "/v1/iam/principals/p1", tok_t1, NULL, NULL, 0, &r), 200);
    T_STREQ(jstr(&r, "service"), "iam");
    reply_free(&r);
    /* No token: refused at the gateway, so its mTLS identity never stands in for an
     * anonymous caller (the KMS lets the gateway read the registry without a token). */
    T_EQ(call(gw1.c, "GET", "/v1/registry/tees/tee-a", NULL, NULL, NULL, 0, &r), 401);
    reply_free(&r);
    T_EQ(call(gw1.c, "GET", "/v1/kms/echo/x1", "garbage", NULL, NULL, 0, &r), 401);
    reply_free(&r);
    /* A raw non-ASCII byte in the query is not forwarded (400, not a 502). */
    T_EQ(raw_status(&gw1, "GET /v1/kms/echo/x?a=\xc3\xa9", tok_t1, "application/json", 0), 400);
    /* Dot segments would be resolved by the HTTP client: refused. */
    T_EQ(call(gw1.c, "GET", "/v1/kms/%2e%2e/x", tok_t1, NULL, NULL, 0, &r), 400);
    reply_free(&r);
    T_EQ(call(gw1.c, "GET", "/v1/kms/echo/%2E", tok_t1, NULL, NULL, 0, &r), 400);
    reply_free(&r);
    /* The API-key exchange needs no token; the credential is passed to IAM unchanged. */
    T_EQ(call_h(gw1.c, "POST", "/v1/iam/token", NULL, "application/json", "{\"tenant\":\"t1\"}", 15, apikey_hdr,
                NULL, &r),
         200);
    T_STREQ(jstr(&r, "service"), "iam");
    T_STREQ(jstr(&r, "auth"), "ApiKey cfk_0123_secretsecret");
    T_STREQ(jstr(&r, "body"), "{\"tenant\":\"t1\"}");
    reply_free(&r);
    /* An upstream that is down: 502 with a JSON error. */
    T_EQ(call(gw1.c, "GET", "/v1/audit/entries", tok_t1, NULL, NULL, 0, &r), 502);
    T_STREQ(err_code(&r), "bad_gateway");
    T_STREQ(err_msg(&r), "audit is unavailable");
    reply_free(&r);
    T_ASSERT(metric(&gw1, "coffer_gateway_upstream_errors_total{upstream=\"audit\"}") >= 1);
    /* Audit appends are never proxied (they would carry the gateway's identity). */
    T_EQ(call(gw1.c, "POST", "/v1/audit/events", tok_t1, "application/json", "{\"events\":[]}", 13, &r), 403);
    T_ASSERT(strstr(err_msg(&r), "not through the gateway") != NULL);
    reply_free(&r);
}

static void test_metrics(void)
{
    struct reply r;
    long long h0 = metric(&gw1, "coffer_gateway_requests_total{route=\"/healthz\",code=\"200\"}");
    long long s0 = metric(&gw1, "coffer_gateway_requests_total{route=\"/v1/sessions\",code=\"413\"}");
    long long c0 = metric(&gw1, "coffer_gateway_request_duration_seconds_count{route=\"/healthz\"}");

    T_ASSERT(h0 >= 1 && s0 >= 1 && c0 >= 1);
    for (int i = 0; i < 3; i++) {
        T_EQ(call(gw1.c, "GET", "/healthz", NULL, NULL, NULL, 0, &r), 200);
        reply_free(&r);
    }
    /* Refusals by the server itself (over the body cap) are counted too. */
    T_EQ(raw_status(&gw1, "POST /v1/sessions", tok_t1, "application/json", 2048), 413);
    T_EQ(metric(&gw1, "coffer_gateway_requests_total{route=\"/healthz\",code=\"200\"}"), h0 + 3);
    T_EQ(metric(&gw1, "coffer_gateway_request_duration_seconds_count{route=\"/healthz\"}"), c0 + 3);
    T_EQ(metric(&gw1, "coffer_gateway_requests_total{route=\"/v1/sessions\",code=\"413\"}"), s0 + 1);
    T_ASSERT(metric(&gw1, "coffer_gateway_requests_total{route=\"/v1/jobs/{job}\",code=\"409\"}") >= 2);
    T_ASSERT(metric(&gw1, "coffer_gateway_requests_total{route=\"/v1/kms/*\",code=\"200\"}") >= 2);
    T_ASSERT(metric(&gw1, "coffer_gateway_requests_total{route=\"unmatched\",code=\"404\"}") >= 1);
    T_ASSERT(metric(&gw1, "coffer_gateway_request_duration_seconds_bucket{route=\"/healthz\",le=\"+Inf\"}") ==
             c0 + 3);
}

/* Every record of a spool file ("CFS1", then u32 length, 8-byte checksum, JSON)
 * is a valid audit event; returns the number of records, or -1. */
static long spool_events_valid(const char *path)
{
    size_t len = 0, off = 4;
    unsigned char *d = t_read_file(path, &len);
    long n = 0;

    if (len < 4 || memcmp(d, "CFS1", 4) != 0) {
        free(d);
        return -1;
    }
    while (off + 12 <= len) {
        size_t rl = (size_t)d[off] << 24 | (size_t)d[off + 1] << 16 | (size_t)d[off + 2] << 8 | d[off + 3];
        if (off + 12 + rl > len)
            break;
#ifdef HAVE_AUDITLOG
        cf_audit_event *ev = NULL;
        if (cf_audit_event_parse(d + off + 12, rl, &ev) != 0) {
            fprintf(stderr, "invalid audit event: %s: %.*s\n", cf_err_detail(CF_E_PARSE), (int)rl, d + off + 12);
            free(d);
            return -1;
        }
        cf_audit_event_free(ev);
#endif
        off += 12 + rl;
        n++;
    }
    free(d);
    return off == len ? n : -1;
}

/* DESIGN.md §2 rule 2: nothing the gateway keeps (log, audit spool) holds payload
 * bytes or credentials. The forwarded bytes were already checked to be unchanged. */
static void test_no_secrets_kept(void)
{
    cf_buf env;
    struct reply r;
    cf_env e;
    char hex[2 * 24 + 1], b64[64], spool[256];
    const uint8_t *chunk;

    cf_buf_init(&env, 1 << 20);
    T_OK(make_envelope("t1", "tee-a", "echo", &env));
    T_EQ(submit(gw1.c, tok_t1, "echo", &env, NULL, &r), 200);
    reply_free(&r);
    T_OK(cf_env_parse(env.data, env.len, &e));
    chunk = e.ct; /* 24 bytes of outer ciphertext */
    T_ASSERT(e.ct_len >= 24);
    cf_hex_encode(chunk, 24, hex);
    cf_b64url_encode(chunk, 24, b64);
    T_OK(cf_fmt(spool, sizeof(spool), "%s/gateway/spool/events.log", gw1.dir));
    T_ASSERT(access(spool, R_OK) == 0);
    /* The audit spool did record the forward (so the check below looks at real events). */
    T_ASSERT(file_contains(spool, "gateway.job.forward", strlen("gateway.job.forward")));
    T_ASSERT(file_contains(spool, "gateway.session.create", strlen("gateway.session.create")));
    T_ASSERT(spool_events_valid(spool) >= 5);
    const char *files[] = {gw1.log, spool};
    for (size_t i = 0; i < CF_ARRAY_LEN(files); i++) {
        T_ASSERT(!file_contains(files[i], chunk, 24));
        T_ASSERT(!file_contains(files[i], hex, strlen(hex)));
        T_ASSERT(!file_contains(files[i], b64, strlen(b64)));
        T_ASSERT(!file_contains(files[i], PAYLOAD_MARKER, strlen(PAYLOAD_MARKER)));
        T_ASSERT(!file_contains(files[i], tok_t1, strlen(tok_t1)));
        T_ASSERT(!file_contains(files[i], "secretsecret", 12));
        T_ASSERT(!file_contains(files[i], EAR_TOKEN, strlen(EAR_TOKEN)));
    }
    cf_buf_free(&env);
}

/* ---- gateway 2: tight limits, registry read on every request --------------------------------- */

static void test_strict_start(void)
{
    static const char *const extra2[] = {"--insecure_http=true", "--registry.ttl=0", "--ratelimit.rps=1",
                                         "--ratelimit.burst=3", "--ratelimit.concurrency=1",
                                         "--ratelimit.ip_rps=1", "--ratelimit.ip_burst=2", "--auth.cache_ttl=0",
                                         NULL};
    T_OK(gw_start(&gw2, "gw2", extra2, NULL));
}

static void test_rate_limit(void)
{
    struct reply r;
    uint64_t ra = 0;
    long long before = metric(&gw2, "coffer_gateway_rate_limited_total");

    /* Burst of 3 for tenant t2, then 429 with Retry-After. */
    for (int i = 0; i < 3; i++) {
        T_EQ(call(gw2.c, "GET", "/v1/kms/echo/r", tok_t2, NULL, NULL, 0, &r), 200);
        reply_free(&r);
    }
    T_EQ(call(gw2.c, "GET", "/v1/kms/echo/r", tok_t2, NULL, NULL, 0, &r), 429);
    T_STREQ(err_code(&r), "rate_limited");
    T_OK(cf_parse_u64(r.retry, 3600, &ra));
    T_ASSERT(ra >= 1);
    reply_free(&r);
    /* Other tenants are not affected. */
    T_EQ(session(gw2.c, tok_t1, "echo", NONCE, &r), 200);
    reply_free(&r);
    /* The token exchange: per source address (burst 2). */
    for (int i = 0; i < 2; i++) {
        T_EQ(call(gw2.c, "POST", "/v1/iam/token", NULL, "application/json", "{}", 2, &r), 200);
        reply_free(&r);
    }
    T_EQ(call(gw2.c, "POST", "/v1/iam/token", NULL, "application/json", "{}", 2, &r), 429);
    T_ASSERT(r.retry[0] != 0);
    reply_free(&r);
    T_EQ(metric(&gw2, "coffer_gateway_rate_limited_total"), before + 2);
    /* After the announced wait a token is there again. */
    sleep_ms(1100);
    T_EQ(call(gw2.c, "GET", "/v1/kms/echo/r", tok_t2, NULL, NULL, 0, &r), 200);
    reply_free(&r);
}

struct slow_arg {
    long status;
};

static void *slow_job(void *arg)
{
    struct slow_arg *a = arg;
    cf_http_client *c = NULL;
    cf_http_client_opts co;
    cf_buf env;
    struct reply r;

    memset(&co, 0, sizeof(co));
    co.base_url = gw2.url;
    a->status = -1;
    cf_buf_init(&env, 1 << 20);
    if (cf_http_client_new(&co, &c) == 0 && make_envelope("t1", "tee-a", "slow", &env) == 0) {
        a->status = submit(c, tok_t1, "slow", &env, NULL, &r);
        reply_free(&r);
    }
    cf_buf_free(&env);
    cf_http_client_free(c);
    return NULL;
}

static void test_concurrency_cap(void)
{
    pthread_t th;
    struct slow_arg a = {0};
    struct reply r;

    sleep_ms(1100); /* tenant t1's bucket refills */
    T_ASSERT(pthread_create(&th, NULL, slow_job, &a) == 0);
    for (int i = 0; i < 200 && atomic_load(&tees[TEE_A].slow_inside) == 0; i++)
        sleep_ms(10);
    T_ASSERT(atomic_load(&tees[TEE_A].slow_inside) == 1);
    /* Tenant t1 already has its one request in flight. */
    T_EQ(session(gw2.c, tok_t1, "echo", NONCE, &r), 429);
    T_ASSERT(strstr(err_msg(&r), "concurrent") != NULL);
    T_STREQ(r.retry, "1");
    reply_free(&r);
    T_ASSERT(pthread_join(th, NULL) == 0);
    T_EQ(a.status, 200);
    sleep_ms(1100);
    T_EQ(session(gw2.c, tok_t1, "echo", NONCE, &r), 200);
    reply_free(&r);
}

static void test_registry_down(void)
{
    struct reply r;

    sleep_ms(1100);
    atomic_store(&kms_down, 1);
    sleep_ms(300); /* past the refresh throttle */
    T_EQ(call(gw2.c, "GET", "/readyz", NULL, NULL, NULL, 0, &r), 503);
    T_STREQ(err_msg(&r), "not ready: TEE registry unreachable");
    reply_free(&r);
    /* Fail closed: no session and no forward on facts that cannot be checked. */
    T_EQ(session(gw2.c, tok_t1, "echo", NONCE, &r), 503);
    T_STREQ(err_msg(&r), "TEE registry unavailable");
    reply_free(&r);
    atomic_store(&kms_down, 0);
    sleep_ms(300);
    T_EQ(call(gw2.c, "GET", "/readyz", NULL, NULL, NULL, 0, &r), 200);
    reply_free(&r);
}

static void test_stop(void)
{
    T_OK(gw_stop(&gw1));
    T_OK(gw_stop(&gw2));
    T_OK(gw_stop(&gw3));
    T_OK(gw_stop(&gw5));
}

/* ---- gateway 3: HTTPS on the public port; refusal to serve plain HTTP ------------------------ */

static void test_tls(void)
{
    cf_pki_cred *ca = NULL, *leaf = NULL;
    const char *ips[] = {"127.0.0.1", NULL};
    cf_pki_leaf_opts lo = {.spiffe_id = "spiffe://coffer/gateway", .ips = ips,
                           .usage = CF_PKI_SERVER | CF_PKI_CLIENT, .valid_seconds = 3600};
    char ca_path[160], crt[160], key[160], a_crt[200], a_key[200];
    const char *extra[] = {a_crt, a_key, "--tls.client_auth=off", NULL};
    struct gwproc g4;
    struct reply r;
    cf_http_client *plain = NULL;
    cf_http_client_opts co;

    T_OK(cf_fmt(ca_path, sizeof(ca_path), "%s/ca.crt", tmp));
    T_OK(cf_fmt(crt, sizeof(crt), "%s/gw.crt", tmp));
    T_OK(cf_fmt(key, sizeof(key), "%s/gw.key", tmp));
    T_OK(cf_pki_ca_create("Coffer test CA", 3600, &ca));
    T_OK(cf_pki_issue(ca, &lo, &leaf));
    T_OK(cf_pki_write(ca, ca_path, NULL));
    T_OK(cf_pki_write(leaf, crt, key));
    cf_pki_free(leaf);
    cf_pki_free(ca);
    T_OK(cf_fmt(a_crt, sizeof(a_crt), "--tls.cert=%s", crt));
    T_OK(cf_fmt(a_key, sizeof(a_key), "--tls.key=%s", key));
    T_OK(gw_start(&gw3, "gw3", extra, ca_path));
    T_EQ(call(gw3.c, "GET", "/healthz", NULL, NULL, NULL, 0, &r), 200);
    reply_free(&r);
    T_EQ(session(gw3.c, tok_t1, "echo", NONCE, &r), 200);
    reply_free(&r);
    /* Plain HTTP to the HTTPS port gets no HTTP answer. */
    memset(&co, 0, sizeof(co));
    {
        char url[80];
        T_OK(cf_fmt(url, sizeof(url), "http://%s", strstr(gw3.url, "://") + 3));
        co.base_url = url;
        T_OK(cf_http_client_new(&co, &plain));
        T_ASSERT(call(plain, "GET", "/healthz", NULL, NULL, NULL, 0, &r) != 200);
        reply_free(&r);
        cf_http_client_free(plain);
    }
    T_OK(gw_stop(&gw3));

    /* Without tls.cert and without insecure_http the gateway refuses to start. */
    {
        static const char *const none[] = {NULL};
        T_ASSERT(gw_start(&g4, "gw4", none, NULL) != 0);
        T_ASSERT(g4.pid == 0); /* it exited by itself */
        T_ASSERT(file_contains(g4.log, "set tls.cert and tls.key", 24));
    }
}

/* Without IAM's JWKS no token can be checked: not ready, and authenticated
 * routes answer 503 rather than letting anything through (fail closed). */
static void test_no_jwks(void)
{
    static const char *const extra[] = {"--insecure_http=true", "--iam.jwks=/nonexistent/jwks.json", NULL};
    struct reply r;

    T_OK(gw_start(&gw5, "gw5", extra, NULL));
    T_EQ(call(gw5.c, "GET", "/healthz", NULL, NULL, NULL, 0, &r), 200);
    reply_free(&r);
    T_EQ(call(gw5.c, "GET", "/readyz", NULL, NULL, NULL, 0, &r), 503);
    T_STREQ(err_msg(&r), "not ready: IAM JWKS not loaded");
    reply_free(&r);
    T_EQ(session(gw5.c, tok_t1, "echo", NONCE, &r), 503);
    reply_free(&r);
    T_EQ(call(gw5.c, "GET", "/v1/kms/echo/x", tok_t1, NULL, NULL, 0, &r), 503);
    reply_free(&r);
    T_OK(gw_stop(&gw5));
}

int main(void)
{
    int rc;

    signal(SIGPIPE, SIG_IGN);
    cf_log_set_level(CF_LOG_WARN); /* the fakes' access lines would drown the test output */
    snprintf(tmp, sizeof(tmp), "/tmp/cf-gw-XXXXXX");
    if (mkdtemp(tmp) == NULL)
        return 1;
    T_RUN(test_setup);
    if (t_failed == 0) {
        T_RUN(test_health);
        T_RUN(test_session_ok);
        T_RUN(test_session_rejects);
        T_RUN(test_job_forward);
        T_RUN(test_job_rejects);
        T_RUN(test_registry_refresh);
        T_RUN(test_out_of_rotation);
        T_RUN(test_proxy);
        T_RUN(test_metrics);
        T_RUN(test_no_secrets_kept);
        T_RUN(test_strict_start);
        T_RUN(test_rate_limit);
        T_RUN(test_concurrency_cap);
        T_RUN(test_registry_down);
        T_RUN(test_tls);
        T_RUN(test_no_jwks);
    }
    T_RUN(test_stop);
    stop_fakes();
    free(tok_t1);
    free(tok_t2);
    free(tok_auditor);
    free(tok_expired);
    free(tok_forged);
    cf_key_free(sign_key);
    cf_key_free(other_key);
    rc = t_done();
    if (rc == 0)
        nftw(tmp, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
    else
        fprintf(stderr, "gateway logs kept in %s\n", tmp);
    return rc;
}
