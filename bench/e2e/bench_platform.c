/*
 * End-to-end benchmark of a running platform (issue 7): confidential requests
 * through the client SDK against `coffer up`, next to two figures measured in
 * the same run — the gateway's plain authenticated round trip and the limit
 * set by the public-key operations one request costs.
 *
 * Input: the COFFER_* environment that `coffer up` writes to STATE/client.env
 * (coffer_client_options_from_env). scripts/bench-e2e.sh starts the platform,
 * runs this program and stops the platform.
 *
 *   bench_platform [--threads N] [--seconds S] [--size BYTES] [--job NAME]
 *
 * Phases (each with N threads for S seconds):
 *   1. confidential: coffer_request(job, SIZE random bytes) on ONE shared
 *      client (coffer_request is thread-safe); the echo job's answer must equal
 *      the input. A warm-up request first pays the one-off costs (token, client
 *      key, session with evidence verification) and is reported on its own.
 *   2. plain: GET {gateway}/v1/kms/release-key with the bearer token from
 *      POST {gateway}/v1/iam/token, one keep-alive cf_http_client per thread
 *      (the HTTP client the SDK uses). The gateway admits the token (verified
 *      once, then its cache), applies the tenant rate limiter and forwards the
 *      call over mTLS to the KMS, which answers a constant and appends one
 *      audit record (fdatasync) — an authenticated hop with no crypto work.
 *   3. crypto bound: the public-key operations of one request in steady state,
 *      counted from the code (see OPS below), timed with OpenSSL directly; the
 *      limit is (online CPUs) / (CPU time of those operations), since on one
 *      machine the client, KMS and TEE share the same cores.
 *
 * Public-key operations of one confidential request in steady state (session
 * cached by the SDK, access token cached by the gateway):
 *   client   envelope seal, HPKE mode auth (RFC 9180 §5.1.3, cf_env_seal):
 *              1 ephemeral keygen + 2 X25519
 *            one-time key open, HPKE auth (sdk/otk.c):            2 X25519
 *            response open (HPKE exporter secret, symmetric):      0
 *   KMS      access token check on POST /v1/kms/otk (EdDSA JWT,
 *              cf_svc_authenticate has no cache):                   1 Ed25519 verify
 *            OTK seal to the client key (kms/wire.c):               1 keygen + 2 X25519
 *            release proof open (kms/otk.c):                        2 X25519
 *            release answer seal to the TEE key:                    1 keygen + 2 X25519
 *   TEE      release proof seal (tee/kmswire.c):                    1 keygen + 2 X25519
 *            release answer open:                                   2 X25519
 *            envelope open, HPKE auth (cf_env_open):                2 X25519
 *            response seal (exporter secret, symmetric):            0
 *   gateway  access token: verified-token cache hit:                0
 *   total    4 X25519 keygens + 16 X25519 derives + 1 Ed25519 verify = 21
 * An HPKE "keygen" is DeriveKeyPair from random bytes, i.e. one X25519 base
 * point multiplication (crypto/hpke.c x25519_load_sk), timed here the same way.
 * Not counted (amortised, not per request): TLS handshakes (connections are
 * kept alive), per-session evidence work (SNP report signature and chain,
 * EAR ES256 sign and verify: once per job per client until the EAR expires),
 * token issuance (EdDSA sign, once per token lifetime), audit tree heads.
 */
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <coffer.h>

#include "base/err.h"
#include "base/json.h"
#include "base/parse.h"
#include "http/client.h"

#define DEFAULT_THREADS 4
#define MAX_THREADS 64
#define DEFAULT_SECONDS 10
#define MAX_SECONDS 600
#define DEFAULT_SIZE 1024
#define MAX_SIZE (1024u * 1024u)
#define CRYPTO_SECONDS 0.4
#define MAX_ERROR_FRACTION 0.01 /* above this the run fails */

/* The per-request operation counts of the header comment. */
#define OPS_X25519_KEYGEN 4
#define OPS_X25519_DERIVE 16
#define OPS_ED25519_VERIFY 1

typedef struct {
    double *v;
    size_t n, cap;
} lat_list;

typedef struct {
    int id;
    /* confidential phase */
    coffer_client *client;
    const char *job;
    const uint8_t *payload;
    size_t size;
    /* plain phase */
    cf_http_client *http;
    const char *bearer;
    /* results */
    lat_list lat;
    unsigned long ok, failed, mismatched;
    int first_err;
    char first_msg[256];
} worker;

static double g_end;
static atomic_int g_go;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int lat_add(lat_list *l, double v)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 4096;
        double *p = realloc(l->v, cap * sizeof(*p));
        if (p == NULL)
            return -1;
        l->v = p;
        l->cap = cap;
    }
    l->v[l->n++] = v;
    return 0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Nearest-rank percentile of a sorted list. */
static double pct(const lat_list *l, double p)
{
    size_t i;

    if (l->n == 0)
        return 0;
    i = (size_t)(p / 100.0 * (double)l->n);
    if (i >= l->n)
        i = l->n - 1;
    return l->v[i];
}

static void note_failure(worker *w, int code, const char *msg)
{
    w->failed++;
    if (w->first_err == 0) {
        w->first_err = code;
        if (cf_fmt(w->first_msg, sizeof(w->first_msg), "%s", msg) != 0)
            w->first_msg[0] = 0;
    }
}

static void *run_confidential(void *arg)
{
    worker *w = arg;

    while (!atomic_load(&g_go))
        ;
    while (now_s() < g_end) {
        coffer_result *r = NULL;
        double t0 = now_s();
        int rc = coffer_request(w->client, w->job, w->payload, w->size, &r);
        double t1 = now_s();

        if (rc != COFFER_OK) {
            note_failure(w, rc, coffer_client_last_error(w->client));
        } else if (coffer_result_size(r) != w->size ||
                   memcmp(coffer_result_data(r), w->payload, w->size) != 0) {
            w->mismatched++;
            note_failure(w, COFFER_E_PROTOCOL, "the echo job's answer differs from the input");
        } else if (lat_add(&w->lat, t1 - t0) == 0) {
            w->ok++;
        }
        coffer_result_free(r);
    }
    return NULL;
}

static void *run_plain(void *arg)
{
    worker *w = arg;
    cf_http_request rq = {.method = "GET", .path = "/v1/kms/release-key", .bearer = w->bearer};

    while (!atomic_load(&g_go))
        ;
    while (now_s() < g_end) {
        cf_http_response resp;
        double t0 = now_s();
        int rc = cf_http_client_do(w->http, &rq, &resp);
        double t1 = now_s();

        if (rc != 0) {
            note_failure(w, rc, cf_err_detail(rc));
            continue;
        }
        if (resp.status != 200) {
            char m[64];
            if (cf_fmt(m, sizeof(m), "HTTP status %ld", resp.status) != 0)
                m[0] = 0;
            note_failure(w, -1, m);
        } else if (lat_add(&w->lat, t1 - t0) == 0) {
            w->ok++;
        }
        cf_http_response_free(&resp);
    }
    return NULL;
}

typedef struct {
    unsigned long ok, failed, mismatched;
    double seconds;
    lat_list all;
} phase_result;

/* Runs n workers for `seconds`, merges their latencies (sorted). */
static int run_phase(worker *ws, unsigned n, void *(*fn)(void *), double seconds, phase_result *ret)
{
    pthread_t th[MAX_THREADS];
    phase_result pr;
    double t0;
    unsigned started = 0;
    int rc = 0;

    memset(&pr, 0, sizeof(pr));
    atomic_store(&g_go, 0);
    g_end = now_s() + 3600; /* set for real when all threads exist */
    for (unsigned i = 0; i < n; i++) {
        if (pthread_create(&th[i], NULL, fn, &ws[i]) != 0) {
            rc = -1;
            break;
        }
        started++;
    }
    t0 = now_s();
    g_end = t0 + (rc == 0 ? seconds : 0);
    atomic_store(&g_go, 1);
    for (unsigned i = 0; i < started; i++)
        pthread_join(th[i], NULL);
    pr.seconds = now_s() - t0;
    for (unsigned i = 0; i < started; i++) {
        pr.ok += ws[i].ok;
        pr.failed += ws[i].failed;
        pr.mismatched += ws[i].mismatched;
        for (size_t k = 0; k < ws[i].lat.n; k++)
            if (lat_add(&pr.all, ws[i].lat.v[k]) != 0)
                rc = -1;
    }
    if (pr.all.n > 0)
        qsort(pr.all.v, pr.all.n, sizeof(double), cmp_double);
    *ret = pr;
    return rc;
}

static void report_failures(const char *what, const worker *ws, unsigned n, bool sdk_codes)
{
    for (unsigned i = 0; i < n; i++)
        if (ws[i].failed > 0)
            fprintf(stderr, "  %s thread %u: %lu failed, first: %s (%d) %s\n", what, i, ws[i].failed,
                    sdk_codes ? coffer_error_name(ws[i].first_err) : "error", ws[i].first_err,
                    ws[i].first_msg);
}

/* ---- crypto bound: OpenSSL directly ------------------------------------------------------- */

/* X25519 key pair from 32 random bytes: one base point multiplication, as HPKE's
 * DeriveKeyPair followed by loading the key (crypto/hpke.c). */
static int x25519_keygen_once(void)
{
    uint8_t sk[32], pk[32];
    size_t n = sizeof(pk);
    EVP_PKEY *k;
    int ok;

    if (RAND_bytes(sk, sizeof(sk)) != 1)
        return -1;
    k = EVP_PKEY_new_raw_private_key_ex(NULL, "X25519", NULL, sk, sizeof(sk));
    OPENSSL_cleanse(sk, sizeof(sk));
    ok = k != NULL && EVP_PKEY_get_raw_public_key(k, pk, &n) == 1 && n == 32;
    EVP_PKEY_free(k);
    return ok ? 0 : -1;
}

/* One X25519 shared secret with a fresh derive context (as crypto/hpke.c dh()). */
static int x25519_derive_once(EVP_PKEY *sk, EVP_PKEY *pk)
{
    uint8_t out[32];
    size_t n = sizeof(out);
    EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_from_pkey(NULL, sk, NULL);
    int ok = c != NULL && EVP_PKEY_derive_init(c) == 1 && EVP_PKEY_derive_set_peer(c, pk) == 1 &&
             EVP_PKEY_derive(c, out, &n) == 1 && n == 32;

    EVP_PKEY_CTX_free(c);
    OPENSSL_cleanse(out, sizeof(out));
    return ok ? 0 : -1;
}

static int ed25519_verify_once(EVP_PKEY *k, const uint8_t *msg, size_t len, const uint8_t *sig,
                               size_t sig_len)
{
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    int ok = c != NULL && EVP_DigestVerifyInit_ex(c, NULL, NULL, NULL, NULL, k, NULL) == 1 &&
             EVP_DigestVerify(c, sig, sig_len, msg, len) == 1;

    EVP_MD_CTX_free(c);
    return ok ? 0 : -1;
}

typedef struct {
    double keygen_s, derive_s, verify_s; /* seconds per operation, one thread */
} crypto_costs;

static int measure_crypto(crypto_costs *ret)
{
    EVP_PKEY *a = NULL, *b = NULL, *ed = NULL;
    EVP_MD_CTX *mc = NULL;
    /* Size of a JWT signing input with a cnf claim, as the KMS checks it. */
    uint8_t msg[420], sig[64];
    size_t sig_len = sizeof(sig);
    unsigned long n;
    double t0, t;
    crypto_costs out;
    int rc = -1;

    memset(msg, 'a', sizeof(msg));
    a = EVP_PKEY_Q_keygen(NULL, NULL, "X25519");
    b = EVP_PKEY_Q_keygen(NULL, NULL, "X25519");
    ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    mc = EVP_MD_CTX_new();
    if (a == NULL || b == NULL || ed == NULL || mc == NULL ||
        EVP_DigestSignInit_ex(mc, NULL, NULL, NULL, NULL, ed, NULL) != 1 ||
        EVP_DigestSign(mc, sig, &sig_len, msg, sizeof(msg)) != 1)
        goto out;

    for (n = 0, t0 = now_s(); (t = now_s() - t0) < CRYPTO_SECONDS; n++)
        if (x25519_keygen_once() != 0)
            goto out;
    out.keygen_s = t / (double)n;
    for (n = 0, t0 = now_s(); (t = now_s() - t0) < CRYPTO_SECONDS; n++)
        if (x25519_derive_once(a, b) != 0)
            goto out;
    out.derive_s = t / (double)n;
    for (n = 0, t0 = now_s(); (t = now_s() - t0) < CRYPTO_SECONDS; n++)
        if (ed25519_verify_once(ed, msg, sizeof(msg), sig, sig_len) != 0)
            goto out;
    out.verify_s = t / (double)n;
    *ret = out;
    rc = 0;
out:
    EVP_MD_CTX_free(mc);
    EVP_PKEY_free(a);
    EVP_PKEY_free(b);
    EVP_PKEY_free(ed);
    return rc;
}

/* ---- plain round trip: the access token ---------------------------------------------------- */

/* POST {gateway}/v1/iam/token; *ret (malloc) is the access token. */
static int fetch_token(cf_http_client *h, const char *tenant, const char *api_key, char **ret)
{
    json_t *body = json_pack("{s:s,s:s}", "api_key", api_key, "tenant", tenant), *ans = NULL;
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    cf_http_request rq = {.method = "POST", .path = "/v1/iam/token"};
    cf_http_response resp;
    const char *tok = NULL;
    char *copy = NULL;
    int rc = -1;

    memset(&resp, 0, sizeof(resp));
    if (text == NULL)
        goto out;
    rq.body = text;
    rq.body_len = strlen(text);
    if ((rc = cf_http_client_do(h, &rq, &resp)) != 0) {
        fprintf(stderr, "bench_platform: token request failed: %s\n", cf_err_detail(rc));
        rc = -1;
        goto out;
    }
    if (resp.status != 200 || cf_http_response_json(&resp, &ans) != 0 ||
        cf_json_get_str(ans, "access_token", true, CF_JWT_MAX_BYTES, &tok) != 0) {
        fprintf(stderr, "bench_platform: token request answered HTTP %ld\n", resp.status);
        goto out;
    }
    copy = strdup(tok);
    if (copy != NULL) {
        *ret = copy;
        rc = 0;
    }
out:
    if (text != NULL) {
        OPENSSL_cleanse(text, strlen(text)); /* held the API key */
        free(text);
    }
    json_decref(body);
    json_decref(ans);
    cf_http_response_free(&resp);
    return rc;
}

/* ---- main ------------------------------------------------------------------------------------ */

static void usage(FILE *f)
{
    fprintf(f, "usage: bench_platform [--threads N] [--seconds S] [--size BYTES] [--job NAME]\n"
               "Reads the COFFER_* environment of a running platform (coffer up: STATE/client.env).\n");
}

static int parse_args(int argc, char **argv, unsigned *threads, unsigned *seconds, size_t *size,
                      const char **job)
{
    for (int i = 1; i < argc; i++) {
        uint64_t v = 0;
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            exit(0);
        }
        if (i + 1 >= argc)
            return -1;
        if (strcmp(a, "--job") == 0) {
            *job = argv[++i];
            continue;
        }
        if (strcmp(a, "--threads") == 0) {
            if (cf_parse_u64(argv[++i], MAX_THREADS, &v) != 0 || v == 0)
                return -1;
            *threads = (unsigned)v;
        } else if (strcmp(a, "--seconds") == 0) {
            if (cf_parse_u64(argv[++i], MAX_SECONDS, &v) != 0 || v == 0)
                return -1;
            *seconds = (unsigned)v;
        } else if (strcmp(a, "--size") == 0) {
            if (cf_parse_u64(argv[++i], MAX_SIZE, &v) != 0)
                return -1;
            *size = (size_t)v;
        } else {
            return -1;
        }
    }
    return 0;
}

static void print_phase(const char *label, const phase_result *r)
{
    printf("%-44s %9.1f req/s   p50 %8.2f ms   p99 %8.2f ms   (%lu ok, %lu failed, %.1f s)\n", label,
           (double)r->ok / r->seconds, pct(&r->all, 50) * 1e3, pct(&r->all, 99) * 1e3, r->ok,
           r->failed, r->seconds);
}

int main(int argc, char **argv)
{
    unsigned threads = DEFAULT_THREADS, seconds = DEFAULT_SECONDS;
    size_t size = DEFAULT_SIZE;
    const char *job = "echo";
    coffer_client_options o;
    coffer_client *client = NULL;
    coffer_result *r = NULL;
    cf_http_client_opts ho;
    worker ws[MAX_THREADS];
    phase_result conf, plain;
    crypto_costs cc;
    uint8_t *payload = NULL;
    char *token = NULL;
    double t0, first_s, per_req_cpu, limit, ncpu;
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    int rc, status = 1;

    memset(&o, 0, sizeof(o));
    memset(ws, 0, sizeof(ws));
    memset(&conf, 0, sizeof(conf));
    memset(&plain, 0, sizeof(plain));
    if (parse_args(argc, argv, &threads, &seconds, &size, &job) != 0) {
        usage(stderr);
        return 2;
    }
    ncpu = online > 0 ? (double)online : 1.0;
    if (coffer_client_options_from_env(&o) != COFFER_OK ||
        coffer_client_new(&o, &client) != COFFER_OK) {
        fprintf(stderr, "bench_platform: %s (source STATE/client.env of `coffer up` first)\n",
                coffer_client_last_error(NULL));
        return 2;
    }
    payload = malloc(size ? size : 1);
    if (payload == NULL || RAND_bytes(payload, (int)(size ? size : 1)) != 1)
        goto out;

    printf("end-to-end: %s, job %s, %zu-byte payload, %u threads, %u s per phase, %.0f CPUs online\n",
           o.gateway_url, job, size, threads, seconds, ncpu);

    /* 3 first, on a quiet platform. */
    if (measure_crypto(&cc) != 0) {
        fprintf(stderr, "bench_platform: OpenSSL timing failed\n");
        goto out;
    }

    /* Warm-up: token, client key, session (evidence + EAR verification), OTK. */
    t0 = now_s();
    rc = coffer_request(client, job, payload, size, &r);
    first_s = now_s() - t0;
    if (rc != COFFER_OK) {
        fprintf(stderr, "bench_platform: first request failed: %s: %s\n", coffer_error_name(rc),
                coffer_client_last_error(client));
        goto out;
    }
    if (coffer_result_size(r) != size || memcmp(coffer_result_data(r), payload, size) != 0) {
        fprintf(stderr, "bench_platform: the %s job's answer differs from the input\n", job);
        goto out;
    }
    coffer_result_free(r);
    r = NULL;

    /* 1. Confidential requests on one shared client. */
    for (unsigned i = 0; i < threads; i++)
        ws[i] = (worker){.id = (int)i, .client = client, .job = job, .payload = payload, .size = size};
    if (run_phase(ws, threads, run_confidential, seconds, &conf) != 0)
        goto out;
    report_failures("confidential", ws, threads, true);

    /* 2. Plain authenticated round trips, one keep-alive HTTP client per thread. */
    memset(&ho, 0, sizeof(ho));
    ho.base_url = o.gateway_url;
    ho.ca_file = o.ca_path;
    for (unsigned i = 0; i < threads; i++) {
        free(ws[i].lat.v);
        ws[i] = (worker){.id = (int)i};
        if ((rc = cf_http_client_new(&ho, &ws[i].http)) != 0) {
            fprintf(stderr, "bench_platform: HTTP client: %s\n", cf_err_detail(rc));
            goto out;
        }
    }
    if (fetch_token(ws[0].http, o.tenant_id, o.api_key, &token) != 0)
        goto out;
    for (unsigned i = 0; i < threads; i++)
        ws[i].bearer = token;
    if (run_phase(ws, threads, run_plain, seconds, &plain) != 0)
        goto out;

    per_req_cpu = OPS_X25519_KEYGEN * cc.keygen_s + OPS_X25519_DERIVE * cc.derive_s +
                  OPS_ED25519_VERIFY * cc.verify_s;
    limit = ncpu / per_req_cpu;

    printf("first request (token, client key, session + evidence check): %.1f ms\n", first_s * 1e3);
    print_phase("confidential coffer_request (SDK, 1 client)", &conf);
    print_phase("plain GET /v1/kms/release-key (bearer)", &plain);
    printf("OpenSSL, 1 thread: X25519 keygen %.1f us, X25519 derive %.1f us, Ed25519 verify %.1f us\n",
           cc.keygen_s * 1e6, cc.derive_s * 1e6, cc.verify_s * 1e6);
    printf("public-key ops per request: %d X25519 keygen + %d X25519 derive + %d Ed25519 verify = %d "
           "(%.0f us CPU)\n",
           OPS_X25519_KEYGEN, OPS_X25519_DERIVE, OPS_ED25519_VERIFY,
           OPS_X25519_KEYGEN + OPS_X25519_DERIVE + OPS_ED25519_VERIFY, per_req_cpu * 1e6);
    printf("crypto-bound limit on %.0f CPUs: %.0f req/s\n", ncpu, limit);
    if (conf.seconds > 0 && plain.seconds > 0 && plain.ok > 0) {
        double c_rps = (double)conf.ok / conf.seconds, p_rps = (double)plain.ok / plain.seconds;
        printf("ratio confidential / plain round trip: %.3f\n", c_rps / p_rps);
        printf("ratio confidential / crypto-bound limit: %.3f\n", c_rps / limit);
    }
    status = 0;
    if (conf.ok == 0 || (double)conf.failed > MAX_ERROR_FRACTION * (double)(conf.ok + conf.failed)) {
        fprintf(stderr, "bench_platform: %lu of %lu confidential requests failed (%lu wrong answers)\n",
                conf.failed, conf.ok + conf.failed, conf.mismatched);
        status = 1;
    }
    if (plain.ok == 0 || (double)plain.failed > MAX_ERROR_FRACTION * (double)(plain.ok + plain.failed)) {
        fprintf(stderr, "bench_platform: %lu of %lu plain round trips failed\n", plain.failed,
                plain.ok + plain.failed);
        report_failures("plain", ws, threads, false);
        status = 1;
    }
out:
    for (unsigned i = 0; i < threads; i++) {
        cf_http_client_free(ws[i].http);
        free(ws[i].lat.v);
    }
    free(conf.all.v);
    free(plain.all.v);
    if (token != NULL) {
        OPENSSL_cleanse(token, strlen(token));
        free(token);
    }
    coffer_result_free(r);
    free(payload);
    coffer_client_free(client);
    return status;
}
