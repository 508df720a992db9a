/*
 * End to end: `cofferd attest` as its own process against a fake KMS (mTLS)
 * and fake TEE runtimes whose evidence comes from the real simulated secure
 * processor (fake_platform.h), with a re-attestation interval of 1 s.
 *
 * Covers: the exact /verify JSON with an EAR token that verifies with the
 * served JWKS and names this evidence; local re-verification of the returned
 * evidence; /evidence on posted (and tampered) evidence; history growing with
 * re-attestation, paging and tenant scope; a TEE that starts reporting another
 * measurement is reported to the KMS, quarantined, and alerted (audit spool and
 * webhook); the debug launch is contraindicated; the manifest endpoint; self
 * attestation outside a TEE; per-source rate limiting; the KMS-only endpoint.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "attest/manifest.h"
#include "attest/verify.h"
#include "attestsvc/ear.h"
#include "attestsvc/wire.h"
#include "base/buf.h"
#include "base/err.h"
#include "base/file.h"
#include "base/json.h"
#include "base/parse.h"
#include "crypto/hash.h"
#include "crypto/jose.h"
#include "crypto/keys.h"
#include "fake_platform.h"
#include "http/client.h"
#include "http/server.h"
#include "test.h"

extern char **environ;

static char g_root[] = "/tmp/coffer-attestsvc-e2e-XXXXXX";
static char g_plat[512], g_state[512];
static fake_platform *g_fp;
static pid_t g_pid = -1;
static char g_url[64];
static cf_http_client *g_gw, *g_anon;
static cf_manifest *g_manifest;
static cf_jwks *g_jwks;
static char g_tok_platform[4096], g_tok_acme[4096];
static cf_http_server *g_hook;
static int g_hook_hits;
static pthread_mutex_t g_hook_mu = PTHREAD_MUTEX_INITIALIZER;

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static int h_hook(void *cls, const cf_http_req *req, cf_http_resp *resp)
{
    json_t *j = NULL;
    (void)cls;
    if (cf_http_req_json(req, &j) == 0 && json_is_string(json_object_get(j, "tee_id"))) {
        pthread_mutex_lock(&g_hook_mu);
        g_hook_hits++;
        pthread_mutex_unlock(&g_hook_mu);
    }
    json_decref(j);
    return cf_http_resp_set(resp, 204, NULL, NULL, 0);
}

static int hook_hits(void)
{
    int n;
    pthread_mutex_lock(&g_hook_mu);
    n = g_hook_hits;
    pthread_mutex_unlock(&g_hook_mu);
    return n;
}

static void read_small(const char *path, char *out, size_t cap)
{
    cf_buf b;
    cf_buf_init(&b, cap - 1);
    out[0] = 0;
    if (cf_file_read(path, cap - 1, &b) == 0) {
        memcpy(out, b.data, b.len);
        out[b.len] = 0;
    }
    cf_buf_free(&b);
}

/* One request; *ret_json gets the parsed object (NULL if the body is not one). */
static long call(cf_http_client *c, const char *method, const char *path, const char *body, const char *bearer,
                 json_t **ret_json, cf_http_response *keep)
{
    cf_http_request rq = {.method = method, .path = path, .bearer = bearer};
    cf_http_response resp;
    long st;

    memset(&resp, 0, sizeof(resp));
    if (body != NULL) {
        rq.body = body;
        rq.body_len = strlen(body);
    }
    if (cf_http_client_do(c, &rq, &resp) != 0)
        return -1;
    st = resp.status;
    if (st >= 500) /* diagnostics for a failing run */
        fprintf(stderr, "  %s %s -> %ld %.*s\n", method, path, st, (int)resp.body.len, (const char *)resp.body.data);
    if (ret_json != NULL && cf_http_response_json(&resp, ret_json) != 0)
        *ret_json = NULL;
    if (keep != NULL)
        *keep = resp;
    else
        cf_http_response_free(&resp);
    return st;
}

/* Exactly these keys (NULL-terminated). */
static bool has_exact_keys(const json_t *o, const char *const *keys)
{
    size_t n = 0;
    if (!json_is_object(o))
        return false;
    for (; keys[n] != NULL; n++)
        if (json_object_get(o, keys[n]) == NULL)
            return false;
    return json_object_size(o) == n;
}

/* Walks "a/b/c" (object keys separated by '/'). */
static json_t *jget(json_t *o, const char *path)
{
    json_t *v = o;
    const char *p = path;
    char key[128];

    while (v != NULL && *p != '\0') {
        const char *slash = strchr(p, '/');
        size_t n = slash ? (size_t)(slash - p) : strlen(p);
        if (n >= sizeof(key))
            return NULL;
        memcpy(key, p, n);
        key[n] = '\0';
        v = json_object_get(v, key);
        p += n + (slash ? 1 : 0);
    }
    return v;
}

static const char *jstr(json_t *o, const char *path)
{
    const json_t *v = jget(o, path);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

static int start_service(void)
{
    char kms[128], kms_path[600], eps[200], eps_path[600], a[24][1200], port_file[600], log_path[600];
    char *argv[26];
    int n = 0;
    posix_spawn_file_actions_t fa;
    int rc;

    snprintf(kms_path, sizeof(kms_path), "%s/kms.url", g_plat);
    read_small(kms_path, kms, sizeof(kms));
    snprintf(eps_path, sizeof(eps_path), "%s/tee.endpoints", g_plat);
    read_small(eps_path, eps, sizeof(eps));
    snprintf(port_file, sizeof(port_file), "%s/port", g_root);
    snprintf(log_path, sizeof(log_path), "%s/service.log", g_root);
#define ARG(...) snprintf(a[n], sizeof(a[n]), __VA_ARGS__), argv[n] = a[n], n++
    ARG("%s", COFFERD_BIN);
    ARG("attest");
    ARG("--state_dir=%s", g_state);
    ARG("--manifest=%s/manifest.json", g_plat);
    ARG("--kms.url=%s", kms);
    ARG("--reattest.interval=1");
    ARG("--tee.endpoints=%s", eps);
    ARG("--tls.cert=%s/attest.crt", g_plat);
    ARG("--tls.key=%s/attest.key", g_plat);
    ARG("--tls.ca=%s/ca.pem", g_plat);
    ARG("--iam.jwks=%s/jwks.json", g_plat);
    ARG("--hsm.pin=attest-user-pin");
    ARG("--hsm.so_pin=attest-so-pin");
    ARG("--port_file=%s", port_file);
    ARG("--alert.webhook=http://127.0.0.1:%u/hook", (unsigned)cf_http_server_port(g_hook));
    ARG("--ratelimit.rate=2");
    ARG("--ratelimit.burst=5");
    ARG("--log.level=warn");
#undef ARG
    argv[n] = NULL;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, log_path, O_WRONLY | O_CREAT | O_APPEND, 0600);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    rc = posix_spawn(&g_pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0)
        return -1;
    /* Up to 90 s: the first start creates a SoftHSM token and under the
     * sanitizers everything is slower. */
    for (int i = 0; i < 900; i++) {
        char port[16];
        uint64_t p = 0;
        int status;
        read_small(port_file, port, sizeof(port));
        if (port[0] != 0 && cf_parse_u64(port, 65535, &p) == 0) {
            snprintf(g_url, sizeof(g_url), "https://127.0.0.1:%u", (unsigned)p);
            return 0;
        }
        if (waitpid(g_pid, &status, WNOHANG) == g_pid) {
            g_pid = -1;
            fprintf(stderr, "cofferd attest exited early; see %s\n", log_path);
            return -1;
        }
        sleep_ms(100);
    }
    return -1;
}

static int make_clients(void)
{
    char ca[600], crt[600], key[600];
    cf_http_client_opts o;

    snprintf(ca, sizeof(ca), "%s/ca.pem", g_plat);
    snprintf(crt, sizeof(crt), "%s/gateway.crt", g_plat);
    snprintf(key, sizeof(key), "%s/gateway.key", g_plat);
    memset(&o, 0, sizeof(o));
    o.base_url = g_url;
    o.ca_file = ca;
    o.expect_peer_id = "spiffe://coffer/attest";
    o.timeout_ms = 60000;
    if (cf_http_client_new(&o, &g_anon) != 0)
        return -1;
    o.cert_file = crt;
    o.key_file = key;
    return cf_http_client_new(&o, &g_gw);
}

static int setup(void)
{
    char path[600];
    cf_http_server_opts ho;

    if (mkdtemp(g_root) == NULL)
        return -1;
    snprintf(g_plat, sizeof(g_plat), "%s/plat", g_root);
    snprintf(g_state, sizeof(g_state), "%s/state", g_root);
    if (mkdir(g_plat, 0700) != 0 || fake_platform_start(g_plat, &g_fp) != 0) {
        fprintf(stderr, "fake platform: %s\n", cf_err_detail(CF_E_INTERNAL));
        return -1;
    }
    memset(&ho, 0, sizeof(ho));
    ho.name = "hook";
    if (cf_http_server_new(&ho, &g_hook) != 0 || cf_http_server_route(g_hook, "POST", "/hook", h_hook, NULL, 0) != 0 ||
        cf_http_server_start(g_hook) != 0)
        return -1;
    snprintf(path, sizeof(path), "%s/manifest.json", g_plat);
    if (cf_manifest_load(path, &g_manifest) != 0)
        return -1;
    snprintf(path, sizeof(path), "%s/token-platform", g_plat);
    read_small(path, g_tok_platform, sizeof(g_tok_platform));
    snprintf(path, sizeof(path), "%s/token-acme", g_plat);
    read_small(path, g_tok_acme, sizeof(g_tok_acme));
    if (start_service() != 0 || make_clients() != 0)
        return -1;
    return 0;
}

static void stop_service(void)
{
    int status = 0;
    if (g_pid > 0) {
        kill(g_pid, SIGTERM);
        for (int i = 0; i < 200 && waitpid(g_pid, &status, WNOHANG) != g_pid; i++)
            sleep_ms(50);
        if (kill(g_pid, 0) == 0) {
            kill(g_pid, SIGKILL);
            waitpid(g_pid, &status, 0);
        }
        g_pid = -1;
    }
}

/* ---- tests ---- */

static void test_manifest_endpoint(void)
{
    json_t *j = NULL;
    char *doc = NULL;
    uint8_t h[CF_MANIFEST_HASH_LEN];
    char hex[2 * CF_MANIFEST_HASH_LEN + 1], want[80];

    T_EQ(call(g_gw, "GET", "/v1/attestation/manifest", NULL, NULL, &j, NULL), 200);
    T_ASSERT(j != NULL);
    T_STREQ(jstr(j, "hash"), cf_manifest_hash_str(g_manifest));
    /* The served document hashes to the served hash. */
    doc = cf_json_dump(json_object_get(j, "manifest"));
    T_ASSERT(doc != NULL);
    T_OK(cf_manifest_hash_document(doc, strlen(doc), h));
    cf_hex_encode(h, sizeof(h), hex);
    snprintf(want, sizeof(want), "sha256:%s", hex);
    T_STREQ(want, jstr(j, "hash"));
    free(doc);
    json_decref(j);
}

static void test_jwks_endpoints(void)
{
    cf_http_response a, b;

    T_EQ(call(g_gw, "GET", "/.well-known/jwks.json", NULL, NULL, NULL, &a), 200);
    T_EQ(call(g_gw, "GET", "/v1/attestation/jwks", NULL, NULL, NULL, &b), 200);
    T_ASSERT(a.body.len == b.body.len && memcmp(a.body.data, b.body.data, a.body.len) == 0);
    T_OK(cf_jwks_parse(a.body.data, a.body.len, &g_jwks));
    T_EQ(cf_jwks_count(g_jwks), 1);
    cf_http_response_free(&a);
    cf_http_response_free(&b);
}

/* Decodes the returned evidence and verifies it here, with our own manifest. */
static cf_verify_result *verify_locally(json_t *ev, const char *deployment, const uint8_t *nonce)
{
    cf_attest_evidence *e = calloc(1, sizeof(*e));
    json_t *o = json_pack("{s:O,s:O,s:O}", "platform", json_object_get(ev, "platform"), "report",
                          json_object_get(ev, "report"), "cert", json_object_get(ev, "cert"));
    cf_buf pk;
    cf_verify_input in;
    cf_verify_result *r = NULL;

    cf_buf_init(&pk, 32);
    if (e != NULL && o != NULL && cf_attest_evidence_from_json(o, e) == 0 &&
        cf_b64url_decode(jstr(ev, "public_key"), strlen(jstr(ev, "public_key")), &pk) == 0) {
        memset(&in, 0, sizeof(in));
        in.report = e->report;
        in.report_len = e->report_len;
        in.cert = e->cert;
        in.cert_len = e->cert_len;
        in.deployment = deployment;
        in.tee_public_key = pk.data;
        in.tee_public_key_len = pk.len;
        in.nonce = nonce;
        in.at = time(NULL);
        if (cf_verify_evidence(g_manifest, &in, &r) != 0)
            r = NULL;
    }
    cf_buf_free(&pk);
    json_decref(o);
    free(e);
    return r;
}

static void test_verify_shape_and_token(void)
{
    static const char *const top[] = {"status", "attestation", "token", "evidence", NULL};
    static const char *const att[] = {"id", "timestamp", "deployment_id", "build_hash", "measurements",
                                      "signature_verification", "platform_verification", NULL};
    static const char *const meas[] = {"MEASUREMENT", "HOST_DATA", "REPORT_DATA", "CHIP_ID", NULL};
    static const char *const sig[] = {"developer_id", "signature_valid", "key_id", NULL};
    static const char *const plat[] = {"tcb_status", "debug", "product", "tcb", "checks", NULL};
    static const char *const ev[] = {"platform", "report", "cert", "nonce", "public_key", "tee_id", NULL};
    uint8_t nonce[32];
    char nhex[65], body[200], *nb64;
    json_t *j = NULL, *claims = NULL;
    cf_verify_result *local = NULL;
    const char *tok;
    cf_key *dev = NULL;
    char kid[CF_KEY_THUMBPRINT_LEN + 1];
    cf_buf devkey;

    T_ASSERT(g_jwks != NULL);
    T_OK(cf_random(nonce, sizeof(nonce)));
    cf_hex_encode(nonce, sizeof(nonce), nhex);
    snprintf(body, sizeof(body), "{\"deployment_id\":\"demo\",\"nonce\":\"%s\"}", nhex);
    T_EQ(call(g_gw, "POST", "/v1/attestation/verify", body, NULL, &j, NULL), 200);
    T_ASSERT(j != NULL);
    T_ASSERT(has_exact_keys(j, top));
    T_ASSERT(has_exact_keys(jget(j, "attestation"), att));
    T_ASSERT(has_exact_keys(jget(j, "attestation/measurements"), meas));
    T_ASSERT(has_exact_keys(jget(j, "attestation/signature_verification"), sig));
    T_ASSERT(has_exact_keys(jget(j, "attestation/platform_verification"), plat));
    T_ASSERT(has_exact_keys(jget(j, "evidence"), ev));
    T_STREQ(jstr(j, "status"), "verified");
    T_STREQ(jstr(j, "attestation/deployment_id"), "demo");
    T_ASSERT(strncmp(jstr(j, "attestation/build_hash"), "sha256:", 7) == 0);
    T_ASSERT(strlen(jstr(j, "attestation/id")) == 32);
    T_ASSERT(strlen(jstr(j, "attestation/timestamp")) == 20);
    T_STREQ(jstr(j, "attestation/platform_verification/tcb_status"), "Up to date");
    T_ASSERT(json_is_false(jget(j, "attestation/platform_verification/debug")));
    T_STREQ(jstr(j, "attestation/platform_verification/product"), "Milan");
    T_ASSERT(json_is_true(jget(j, "attestation/signature_verification/signature_valid")));
    /* key_id is the RFC 7638 thumbprint of the deployment's developer key. */
    cf_buf_init(&devkey, 32);
    T_OK(cf_b64url_decode(jstr(j, "attestation/signature_verification/developer_id"), 43, &devkey));
    T_OK(cf_key_from_public(CF_KEY_ED25519, devkey.data, devkey.len, &dev));
    T_OK(cf_key_thumbprint(dev, kid));
    cf_key_free(dev);
    cf_buf_free(&devkey);
    T_STREQ(jstr(j, "attestation/signature_verification/key_id"), kid);
    T_ASSERT(json_array_size(jget(j, "attestation/platform_verification/checks")) == CF_CHECK__COUNT + 1);
    T_STREQ(jstr(j, "evidence/nonce"), nhex);
    T_STREQ(jstr(j, "evidence/tee_id"), "tee_good");

    /* Verify the evidence ourselves: the service's verdict is not taken on trust. */
    local = verify_locally(jget(j, "evidence"), "demo", nonce);
    T_ASSERT(local != NULL);
    T_ASSERT(local->verified);
    T_STREQ(jstr(j, "attestation/measurements/MEASUREMENT"), local->facts.measurement);
    T_STREQ(jstr(j, "attestation/measurements/REPORT_DATA"), local->facts.report_data);

    /* The EAR token verifies with the served JWKS and names exactly this evidence. */
    tok = jstr(j, "token");
    T_ASSERT(tok != NULL);
    T_OK(cf_ear_verify(tok, strlen(tok), g_jwks, 0, &claims));
    T_STREQ(jstr(claims, "eat_profile"), CF_EAR_PROFILE);
    T_STREQ(jstr(claims, "coffer.deployment"), "demo");
    T_STREQ(jstr(claims, "coffer.tee_id"), "tee_good");
    T_STREQ(jstr(claims, "coffer.measurement"), local->facts.measurement);
    T_STREQ(jstr(claims, "coffer.manifest_hash"), cf_manifest_hash_str(g_manifest));
    T_STREQ(jstr(claims, "coffer.build_hash"), jstr(j, "attestation/build_hash"));
    T_STREQ(jstr(claims, "cnf/jwk/x"), jstr(j, "evidence/public_key"));
    T_STREQ(jstr(claims, "cnf/jwk/crv"), "X25519");
    nb64 = cf_b64url_encode_alloc(nonce, sizeof(nonce));
    T_STREQ(jstr(claims, "eat_nonce"), nb64);
    free(nb64);
    /* Simulated root: the best a simulated TEE gets is "warning" (unsafe hardware). */
    T_STREQ(json_string_value(json_object_get(json_object_get(jget(claims, "submods"), "demo"), "ear.status")),
            "warning");
    T_EQ(json_integer_value(json_object_get(
             json_object_get(json_object_get(jget(claims, "submods"), "demo"), "ear.trustworthiness-vector"),
             "hardware")),
         CF_AR4SI_UNSAFE_HARDWARE);
    T_STREQ(json_string_value(json_object_get(json_object_get(jget(claims, "submods"), "demo"),
                                              "ear.appraisal-policy-id")),
            cf_manifest_hash_str(g_manifest));
    /* exp = iat + 2 x the 1 s interval */
    T_EQ(json_integer_value(json_object_get(claims, "exp")) - json_integer_value(json_object_get(claims, "iat")), 2);
    cf_verify_result_free(local);
    json_decref(claims);
    json_decref(j);
}

static void test_verify_anonymous_and_errors(void)
{
    json_t *j = NULL;

    /* Public: no token, no certificate. The service picks the nonce. */
    T_EQ(call(g_anon, "POST", "/v1/attestation/verify", "{\"deployment_id\":\"demo\"}", NULL, &j, NULL), 200);
    T_STREQ(jstr(j, "status"), "verified");
    T_ASSERT(strlen(jstr(j, "evidence/nonce")) == 64);
    json_decref(j);
    j = NULL;
    T_EQ(call(g_gw, "POST", "/v1/attestation/verify", "{\"deployment_id\":\"nope\"}", NULL, &j, NULL), 404);
    T_ASSERT(strstr(jstr(j, "error/message"), "not in the manifest") != NULL);
    json_decref(j);
    j = NULL;
    T_EQ(call(g_gw, "POST", "/v1/attestation/verify", "{\"deployment\":\"demo\"}", NULL, &j, NULL), 400);
    json_decref(j);
    j = NULL;
    T_EQ(call(g_gw, "POST", "/v1/attestation/verify", "{\"deployment_id\":\"demo\",\"nonce\":\"00\"}", NULL, &j, NULL),
         400);
    json_decref(j);
}

static void test_debug_launch_contraindicated(void)
{
    json_t *j = NULL, *claims = NULL, *checks;
    const char *tok;
    bool debug_failed = false;
    size_t i;
    json_t *c;

    T_EQ(call(g_gw, "POST", "/v1/attestation/verify", "{\"deployment_id\":\"dbg\"}", NULL, &j, NULL), 200);
    T_STREQ(jstr(j, "status"), "failed");
    T_ASSERT(json_is_true(jget(j, "attestation/platform_verification/debug")));
    T_ASSERT(json_is_false(jget(j, "attestation/signature_verification/signature_valid")));
    checks = jget(j, "attestation/platform_verification/checks");
    json_array_foreach(checks, i, c) {
        if (strcmp(jstr(c, "name"), "debug") == 0 && strcmp(jstr(c, "status"), "failed") == 0)
            debug_failed = true;
    }
    T_ASSERT(debug_failed);
    tok = jstr(j, "token");
    T_ASSERT(tok != NULL);
    T_OK(cf_ear_verify(tok, strlen(tok), g_jwks, 0, &claims));
    T_STREQ(json_string_value(json_object_get(json_object_get(jget(claims, "submods"), "dbg"), "ear.status")),
            "contraindicated");
    T_EQ(json_integer_value(json_object_get(
             json_object_get(json_object_get(jget(claims, "submods"), "dbg"), "ear.trustworthiness-vector"),
             "runtime-opaque")),
         CF_AR4SI_VISIBLE_MEMORY_RUNTIME);
    json_decref(claims);
    json_decref(j);
}

static void test_evidence_endpoint(void)
{
    uint8_t nonce[32];
    char nhex[65], body[256];
    json_t *j = NULL, *req = NULL, *r = NULL, *claims = NULL;
    char *text = NULL;
    cf_buf rep;
    char *tampered = NULL;

    T_OK(cf_random(nonce, sizeof(nonce)));
    cf_hex_encode(nonce, sizeof(nonce), nhex);
    snprintf(body, sizeof(body), "{\"deployment_id\":\"demo\",\"nonce\":\"%s\"}", nhex);
    T_EQ(call(g_gw, "POST", "/v1/attestation/verify", body, NULL, &j, NULL), 200);
    /* Posted back as a public verifier would receive it. */
    req = json_pack("{s:{s:O,s:O,s:O},s:s,s:s,s:O}", "evidence", "platform", jget(j, "evidence/platform"), "report",
                    jget(j, "evidence/report"), "cert", jget(j, "evidence/cert"), "deployment", "demo", "nonce", nhex,
                    "public_key", jget(j, "evidence/public_key"));
    T_ASSERT(req != NULL);
    text = cf_json_dump(req);
    T_EQ(call(g_gw, "POST", "/v1/attestation/evidence", text, NULL, &r, NULL), 200);
    T_ASSERT(json_is_true(json_object_get(r, "verified")));
    T_STREQ(jstr(r, "result/status"), "verified");
    T_ASSERT(jstr(r, "token") != NULL);
    T_OK(cf_ear_verify(jstr(r, "token"), strlen(jstr(r, "token")), g_jwks, 0, &claims));
    T_STREQ(jstr(claims, "cnf/jwk/x"), jstr(j, "evidence/public_key"));
    json_decref(claims);
    json_decref(r);
    r = NULL;
    free(text);

    /* Another nonce: the binding fails. */
    json_object_set_new(req, "nonce", json_string("0000000000000000000000000000000000000000000000000000000000000000"));
    text = cf_json_dump(req);
    T_EQ(call(g_gw, "POST", "/v1/attestation/evidence", text, NULL, &r, NULL), 200);
    T_ASSERT(json_is_false(json_object_get(r, "verified")));
    json_decref(r);
    r = NULL;
    free(text);

    /* One flipped bit in the measurement: the signature no longer verifies. */
    cf_buf_init(&rep, 4096);
    T_OK(cf_b64url_decode(jstr(j, "evidence/report"), strlen(jstr(j, "evidence/report")), &rep));
    rep.data[0x90] ^= 1;
    tampered = cf_b64url_encode_alloc(rep.data, rep.len);
    cf_buf_free(&rep);
    json_object_set_new(json_object_get(req, "evidence"), "report", json_string(tampered));
    json_object_set_new(req, "nonce", json_string(nhex));
    text = cf_json_dump(req);
    T_EQ(call(g_gw, "POST", "/v1/attestation/evidence", text, NULL, &r, NULL), 200);
    T_ASSERT(json_is_false(json_object_get(r, "verified")));
    T_STREQ(jstr(r, "result/status"), "failed");
    {
        size_t i;
        json_t *c;
        bool sig_failed = false;
        json_array_foreach(json_object_get(json_object_get(r, "result"), "checks"), i, c)
            if (strcmp(jstr(c, "name"), "signature") == 0 && strcmp(jstr(c, "status"), "failed") == 0)
                sig_failed = true;
        T_ASSERT(sig_failed);
    }
    json_decref(r);
    r = NULL;
    free(text);
    text = NULL;

    /* Without nonce and key: verified as to authenticity, but no token. */
    json_object_del(req, "nonce");
    json_object_del(req, "public_key");
    json_object_set_new(json_object_get(req, "evidence"), "report", json_incref(jget(j, "evidence/report")));
    text = cf_json_dump(req);
    T_EQ(call(g_gw, "POST", "/v1/attestation/evidence", text, NULL, &r, NULL), 200);
    T_ASSERT(json_is_true(json_object_get(r, "verified")));
    T_ASSERT(json_object_get(r, "token") == NULL);
    json_decref(r);
    r = NULL;
    free(text);
    text = NULL;

    /* Malformed requests. */
    T_EQ(call(g_gw, "POST", "/v1/attestation/evidence", "{\"evidence\":{\"platform\":\"tdx\",\"report\":\"AA\","
                                                       "\"cert\":\"AA\"}}",
              NULL, NULL, NULL),
         400);
    T_EQ(call(g_gw, "POST", "/v1/attestation/evidence", "{\"evidence\":{},\"extra\":1}", NULL, NULL, NULL), 400);
    snprintf(body, sizeof(body), "{\"evidence\":{\"platform\":\"sev-snp\",\"report\":\"AA\",\"cert\":\"AA\"},"
                                 "\"nonce\":\"%s\"}", nhex);
    T_EQ(call(g_gw, "POST", "/v1/attestation/evidence", body, NULL, NULL, NULL), 400);
    free(tampered);
    json_decref(req);
    json_decref(j);
}

static size_t history_count(const char *query, const char *token, json_t **ret_last)
{
    json_t *j = NULL;
    char path[256];
    size_t n;

    snprintf(path, sizeof(path), "/v1/attestation/history?%s", query);
    if (call(g_gw, "GET", path, NULL, token, &j, NULL) != 200) {
        json_decref(j);
        return (size_t)-1;
    }
    n = json_array_size(json_object_get(j, "items"));
    if (ret_last != NULL)
        *ret_last = j;
    else
        json_decref(j);
    return n;
}

static void test_history(void)
{
    json_t *j = NULL, *p2 = NULL, *item;
    size_t c0, c1, i;
    char path[256];

    T_EQ(call(g_gw, "GET", "/v1/attestation/history", NULL, NULL, NULL, NULL), 401);
    c0 = history_count("tee_id=tee_good&limit=100", g_tok_platform, NULL);
    T_ASSERT(c0 != (size_t)-1 && c0 >= 1);
    sleep_ms(2500);
    c1 = history_count("tee_id=tee_good&limit=100", g_tok_platform, NULL);
    T_ASSERT_MSG(c1 != (size_t)-1 && c1 > c0, "history did not grow: %zu -> %zu", c0, c1);
    /* Re-attestations are recorded as such, verified. */
    T_ASSERT(history_count("tee_id=tee_good&limit=1", g_tok_platform, &j) == 1);
    item = json_array_get(json_object_get(j, "items"), 0);
    T_STREQ(jstr(item, "deployment"), "demo");
    T_STREQ(jstr(item, "status"), "verified");
    T_STREQ(jstr(item, "ear_status"), "warning");
    /* Paging: the cursor leads to older records only. */
    T_ASSERT(jstr(j, "next") != NULL);
    snprintf(path, sizeof(path), "tee_id=tee_good&limit=1&after=%s", jstr(j, "next"));
    T_ASSERT(history_count(path, g_tok_platform, &p2) == 1);
    T_ASSERT(strcmp(jstr(json_array_get(json_object_get(p2, "items"), 0), "id"), jstr(item, "id")) < 0);
    json_decref(p2);
    json_decref(j);
    j = NULL;
    /* A tenant's principal sees its tenant only (tee_flip belongs to acme). */
    T_ASSERT(history_count("limit=100", g_tok_acme, &j) >= 1);
    json_array_foreach(json_object_get(j, "items"), i, item)
        T_STREQ(jstr(item, "tenant"), "acme");
    json_decref(j);
    T_EQ(history_count("tee_id=tee_good&limit=100", g_tok_acme, NULL), 0);
    T_EQ(call(g_gw, "GET", "/v1/attestation/history?limit=0", NULL, g_tok_platform, NULL, NULL), 400);
    T_EQ(call(g_gw, "GET", "/v1/attestation/history?after=zz", NULL, g_tok_platform, NULL, NULL), 400);
}

static bool file_contains(const char *path, const char *a, const char *b)
{
    cf_buf f;
    bool found = false;

    cf_buf_init(&f, 64u << 20);
    if (cf_file_read(path, 64u << 20, &f) == 0 && cf_buf_nul_terminate(&f) == 0) {
        /* records are separated by binary headers: look at each JSON payload */
        for (size_t i = 0; i + 1 < f.len && !found; i++) {
            if (f.data[i] == '{') {
                const char *rec = (const char *)f.data + i;
                size_t n = strnlen(rec, f.len - i);
                char *copy = strndup(rec, n);
                if (copy != NULL && strstr(copy, a) != NULL && strstr(copy, b) != NULL)
                    found = true;
                free(copy);
            }
        }
    }
    cf_buf_free(&f);
    return found;
}

static void test_measurement_change_quarantined_and_alerted(void)
{
    fake_kms_stats st;
    char spool[700];
    json_t *j = NULL, *item;
    size_t i;
    bool failed_seen = false;
    int tries;

    fake_platform_kms_stats(g_fp, "tee_flip", &st);
    T_STREQ(st.status, "active");
    T_EQ(st.failed_reports, 0);
    T_ASSERT(st.reports >= 1);
    fake_platform_set_mode(g_fp, "tee_flip", FAKE_TEE_CHANGED);
    for (tries = 0; tries < 300; tries++) {
        fake_platform_kms_stats(g_fp, "tee_flip", &st);
        if (st.failed_reports >= 1 && strcmp(st.status, "quarantined") == 0)
            break;
        sleep_ms(100);
    }
    T_ASSERT_MSG(tries < 300, "the KMS never received the changed evidence");
    /* The alert event is in the service's durable audit spool. */
    snprintf(spool, sizeof(spool), "%s/attest/spool/events.log", g_state);
    for (tries = 0; tries < 100 && !file_contains(spool, "tee.attestation_failed", "tee_flip"); tries++)
        sleep_ms(100);
    T_ASSERT(file_contains(spool, "tee.attestation_failed", "tee_flip"));
    /* The failed re-attestation is in the history, with why. */
    T_ASSERT(history_count("tee_id=tee_flip&limit=100", g_tok_platform, &j) >= 1);
    json_array_foreach(json_object_get(j, "items"), i, item) {
        if (strcmp(jstr(item, "status"), "failed") == 0 && strstr(jstr(item, "reason"), "measurement") != NULL &&
            strcmp(jstr(item, "ear_status"), "contraindicated") == 0)
            failed_seen = true;
    }
    json_decref(j);
    T_ASSERT(failed_seen);
    /* Quarantined: no active TEE left for the deployment. */
    T_EQ(call(g_gw, "POST", "/v1/attestation/verify", "{\"deployment_id\":\"demo2\"}", NULL, NULL, NULL), 404);
    /* Every report used a nonce the KMS issued. */
    fake_platform_kms_stats(g_fp, "tee_good", &st);
    T_EQ(st.bad_nonce, 0);
    T_ASSERT(st.reports >= 2);
    T_EQ(st.failed_reports, 0);
}

static void test_webhook_alerts(void)
{
    /* tee_debug fails every second; each failure is posted to the webhook. */
    for (int i = 0; i < 100 && hook_hits() == 0; i++)
        sleep_ms(100);
    T_ASSERT(hook_hits() > 0);
}

static void test_self_outside_tee(void)
{
    json_t *j = NULL;

    T_EQ(call(g_gw, "GET", "/v1/attestation/self?nonce="
                           "0101010101010101010101010101010101010101010101010101010101010101",
              NULL, NULL, &j, NULL),
         404);
    T_ASSERT(strstr(jstr(j, "error/message"), "not running in a TEE") != NULL);
    json_decref(j);
    T_EQ(call(g_gw, "GET", "/v1/attestation/self", NULL, NULL, NULL, NULL), 400);
}

static void test_endpoint_notice_kms_only(void)
{
    T_EQ(call(g_gw, "PUT", "/v1/attestation/tees/tee_x/endpoint", "{\"endpoint\":\"http://127.0.0.1:1\"}", NULL, NULL,
              NULL),
         403);
    T_EQ(call(g_anon, "PUT", "/v1/attestation/tees/tee_x/endpoint", "{\"endpoint\":\"http://127.0.0.1:1\"}", NULL,
              NULL, NULL),
         401);
}

static void test_rate_limit_per_source(void)
{
    int limited = 0, ok_gw = 0;
    cf_http_response resp;

    /* rate 2/s, burst 5 for anonymous sources. */
    for (int i = 0; i < 30; i++) {
        long st = call(g_anon, "GET", "/v1/attestation/manifest", NULL, NULL, NULL, &resp);
        if (st == 429) {
            uint64_t ra = 0;
            limited++;
            T_OK(cf_http_response_retry_after(&resp, &ra));
            T_ASSERT(ra >= 1);
        }
        cf_http_response_free(&resp);
    }
    T_ASSERT(limited > 0);
    /* A Coffer service identity (the gateway) is not limited here. */
    for (int i = 0; i < 30; i++)
        ok_gw += call(g_gw, "GET", "/v1/attestation/manifest", NULL, NULL, NULL, NULL) == 200;
    T_EQ(ok_gw, 30);
}

static void test_graceful_stop(void)
{
    int status = -1;
    pid_t pid = g_pid;

    T_ASSERT(pid > 0);
    T_OK(kill(pid, SIGTERM));
    for (int i = 0; i < 300 && waitpid(pid, &status, WNOHANG) != pid; i++)
        sleep_ms(50);
    g_pid = -1;
    T_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

static int rm_cb(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path) == 0 ? 0 : 0;
}

static void rm_rf(const char *path)
{
    if (strncmp(path, "/tmp/coffer-", 12) == 0)
        (void)nftw(path, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

int main(void)
{
    int rc;

    signal(SIGPIPE, SIG_IGN);
    if (setup() != 0) {
        fprintf(stderr, "setup failed (service log in %s/service.log)\n", g_root);
        stop_service();
        fake_platform_stop(g_fp);
        return 1;
    }
    T_RUN(test_manifest_endpoint);
    T_RUN(test_jwks_endpoints);
    T_RUN(test_verify_shape_and_token);
    T_RUN(test_verify_anonymous_and_errors);
    T_RUN(test_debug_launch_contraindicated);
    T_RUN(test_evidence_endpoint);
    T_RUN(test_history);
    T_RUN(test_measurement_change_quarantined_and_alerted);
    T_RUN(test_webhook_alerts);
    T_RUN(test_self_outside_tee);
    T_RUN(test_endpoint_notice_kms_only);
    T_RUN(test_rate_limit_per_source);
    T_RUN(test_graceful_stop);
    rc = t_done();
    if (rc != 0) {
        char log[600];
        snprintf(log, sizeof(log), "%s/service.log", g_root);
        cf_buf b;
        cf_buf_init(&b, 1u << 20);
        if (cf_file_read(log, 1u << 20, &b) == 0 && b.len > 0) {
            size_t from = b.len > 6000 ? b.len - 6000 : 0;
            fprintf(stderr, "--- service log (tail) ---\n%.*s\n", (int)(b.len - from), (const char *)b.data + from);
        }
        cf_buf_free(&b);
    }
    stop_service();
    cf_http_client_free(g_gw);
    cf_http_client_free(g_anon);
    cf_http_server_free(g_hook);
    fake_platform_stop(g_fp);
    cf_jwks_free(g_jwks);
    cf_manifest_free(g_manifest);
    rm_rf(g_root);
    return rc;
}
