/*
 * JWT sign / verify throughput (ES256, EdDSA) next to the raw OpenSSL
 * operation it is built on (EVP ECDSA P-256 / SHA-256, EVP Ed25519), measured
 * in the same run. The ratio shows what the JOSE layer costs on top: base64url,
 * JSON header and claims parsing, claim checks and the r||s <-> DER conversion.
 *
 * Each figure runs for about BENCH_SECONDS (in alternating slices with its
 * OpenSSL counterpart); 8 figures, about 8 s in total.
 */
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/err.h"
#include "crypto/jose.h"
#include "crypto/keys.h"

#define BENCH_SECONDS 1.0

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what)
{
    fprintf(stderr, "bench_jose: %s failed\n", what);
    exit(1);
}

/* Runs a and b for BENCH_SECONDS each, alternating in slices of 1/SLICES of
 * that, so that load changes on a shared machine affect both sides alike.
 * Returns operations per second of each. */
#define SLICES 10
typedef int (*bench_op)(void *ctx);

static void measure_pair(bench_op a, void *ca, bench_op b, void *cb, double *ret_a, double *ret_b)
{
    double t[2] = {0, 0};
    long n[2] = {0, 0};

    for (int s = 0; s < SLICES; s++) {
        for (int side = 0; side < 2; side++) {
            bench_op op = side == 0 ? a : b;
            void *ctx = side == 0 ? ca : cb;
            double start = now_s(), el;
            do {
                for (int i = 0; i < 8; i++) {
                    if (op(ctx) != 0)
                        die("operation");
                    n[side]++;
                }
                el = now_s() - start;
            } while (el < BENCH_SECONDS / SLICES);
            t[side] += el;
        }
    }
    *ret_a = (double)n[0] / t[0];
    *ret_b = (double)n[1] / t[1];
}

/* ---- JOSE ---- */

struct jwt_ctx {
    const cf_key *key;
    json_t *claims;
    char *token;
    cf_jwt_verify_opts opts;
};

static int jwt_sign_op(void *p)
{
    struct jwt_ctx *c = p;
    char *t = NULL;
    int rc = cf_jwt_sign(c->key, c->claims, NULL, "bench", &t);
    free(t);
    return rc;
}

static int jwt_verify_op(void *p)
{
    struct jwt_ctx *c = p;
    json_t *claims = NULL;
    int rc = cf_jwt_verify(c->token, strlen(c->token), c->key, NULL, &c->opts, &claims);
    json_decref(claims);
    return rc;
}

/* ---- OpenSSL EVP directly, over a message of the same size as the JWT signing input ---- */

struct evp_ctx {
    EVP_PKEY *pkey;
    const char *md; /* NULL for Ed25519 */
    unsigned char msg[512];
    size_t msg_len;
    unsigned char sig[128];
    size_t sig_len;
};

static int evp_sign_op(void *p)
{
    struct evp_ctx *c = p;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    size_t n = sizeof(c->sig);
    int ok = ctx != NULL && EVP_DigestSignInit_ex(ctx, NULL, c->md, NULL, NULL, c->pkey, NULL) == 1 &&
             EVP_DigestSign(ctx, c->sig, &n, c->msg, c->msg_len) == 1;
    EVP_MD_CTX_free(ctx);
    c->sig_len = n;
    return ok ? 0 : -1;
}

static int evp_verify_op(void *p)
{
    struct evp_ctx *c = p;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int ok = ctx != NULL &&
             EVP_DigestVerifyInit_ex(ctx, NULL, c->md, NULL, NULL, c->pkey, NULL) == 1 &&
             EVP_DigestVerify(ctx, c->sig, c->sig_len, c->msg, c->msg_len) == 1;
    EVP_MD_CTX_free(ctx);
    return ok ? 0 : -1;
}

static void run(const char *label, cf_key_type type, const char *md, json_t *claims)
{
    struct jwt_ctx j = {0};
    struct evp_ctx e = {0};
    cf_key *k = NULL;
    double js, jv, es, ev;
    const char *dot;

    if (cf_key_generate(type, &k) != 0)
        die("keygen");
    j.key = k;
    j.claims = claims;
    j.opts.now = 1700000000;
    if (cf_jwt_sign(k, claims, NULL, "bench", &j.token) != 0)
        die("cf_jwt_sign");
    if (jwt_verify_op(&j) != 0)
        die("cf_jwt_verify");
    /* Same bytes as the JWT signing input, so both sides hash the same amount. */
    dot = strrchr(j.token, '.');
    e.msg_len = (size_t)(dot - j.token);
    if (e.msg_len > sizeof(e.msg))
        die("message size");
    memcpy(e.msg, j.token, e.msg_len);
    e.pkey = cf_key_evp(k);
    e.md = md;
    if (evp_sign_op(&e) != 0 || evp_verify_op(&e) != 0)
        die("EVP");

    measure_pair(jwt_sign_op, &j, evp_sign_op, &e, &js, &es);
    measure_pair(jwt_verify_op, &j, evp_verify_op, &e, &jv, &ev);
    printf("%-6s sign   : cf_jwt_sign   %9.0f/s   OpenSSL EVP %-16s %9.0f/s   ratio %.2f\n", label,
           js, md ? "ECDSA P-256" : "Ed25519", es, js / es);
    printf("%-6s verify : cf_jwt_verify %9.0f/s   OpenSSL EVP %-16s %9.0f/s   ratio %.2f\n", label,
           jv, md ? "ECDSA P-256" : "Ed25519", ev, jv / ev);
    free(j.token);
    cf_key_free(k);
}

int main(void)
{
    json_t *claims = json_pack("{s:s, s:s, s:s, s:I, s:I, s:I, s:[s]}", "iss", "coffer-iam", "sub",
                               "principal-0123456789", "tenant", "tenant-demo", "iat",
                               (json_int_t)1699999000, "nbf", (json_int_t)1699999000, "exp",
                               (json_int_t)1700000600, "roles", "developer");

    if (claims == NULL)
        die("claims");
    printf("JWT throughput vs. raw OpenSSL signatures (same key, same signing input, %.0f s each)\n",
           BENCH_SECONDS);
    run("ES256", CF_KEY_P256, "SHA256", claims);
    run("EdDSA", CF_KEY_ED25519, NULL, claims);
    json_decref(claims);
    return 0;
}
