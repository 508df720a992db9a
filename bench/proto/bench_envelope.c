/*
 * CFE1 envelope seal (client) + parse + open (TEE) of 1 KiB and 1 MiB, next to the
 * crypto-bound limit measured with raw OpenSSL in the same run. One seal+open is
 * the inner HPKE auth-mode seal+open (4 X25519 derives, 2 AES-256-GCM passes) plus
 * the outer layer (2 more AES-256-GCM passes), so
 *     limit = 1 / (4 * t_derive + 4 * n / gcm_rate(n)).
 * The sender's ephemeral key pair is a 5th scalar multiplication (X25519 keygen);
 * the limit including it is printed as well. Times are process CPU time (user +
 * sys; single-threaded), so other load on a shared machine does not skew one side
 * of the ratio. Takes about 3 CPU seconds.
 */
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/buf.h"
#include "base/limits.h"
#include "crypto/hash.h"
#include "crypto/hpke.h"
#include "proto/envelope.h"

#define SECS 0.5 /* CPU seconds per figure */
#define ROUNDS 5

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Calls fn for ROUNDS runs of SECS / ROUNDS each and returns the best rate (calls
 * per second): the raw figures and ours get the same treatment, and the best run is
 * the one least disturbed by other load. */
static double rate(int (*fn)(void *), void *arg)
{
    double best = 0;

    for (int round = 0; round < ROUNDS; round++) {
        double t0 = now(), t;
        long n = 0;

        do {
            if (fn(arg) != 0) {
                fprintf(stderr, "benchmark operation failed\n");
                exit(1);
            }
            n++;
            t = now() - t0;
        } while (t < SECS / ROUNDS);
        if ((double)n / t > best)
            best = (double)n / t;
    }
    return best;
}

typedef struct {
    EVP_PKEY_CTX *derive;
    EVP_CIPHER_CTX *gcm;
    uint8_t *buf;
    size_t n;
} raw;

static int raw_derive(void *arg)
{
    raw *r = arg;
    uint8_t out[32];
    size_t len = sizeof(out);
    return EVP_PKEY_derive(r->derive, out, &len) == 1 && len == 32 ? 0 : -1;
}

static int raw_keygen(void *arg)
{
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "X25519");
    (void)arg;
    EVP_PKEY_free(k);
    return k != NULL ? 0 : -1;
}

static int raw_gcm(void *arg)
{
    raw *r = arg;
    static const uint8_t iv[12], aad[256];
    uint8_t tag[16];
    int outl = 0;

    if (EVP_EncryptInit_ex(r->gcm, NULL, NULL, NULL, iv) != 1 ||
        EVP_EncryptUpdate(r->gcm, NULL, &outl, aad, sizeof(aad)) != 1 ||
        EVP_EncryptUpdate(r->gcm, r->buf, &outl, r->buf, (int)r->n) != 1 ||
        EVP_EncryptFinal_ex(r->gcm, tag, &outl) != 1 ||
        EVP_CIPHER_CTX_ctrl(r->gcm, EVP_CTRL_GCM_GET_TAG, 16, tag) != 1)
        return -1;
    return 0;
}

typedef struct {
    cf_hpke_key *client, *client_pub, *tee, *tee_pub;
    uint8_t otk[CF_ENV_OTK_LEN];
    const uint8_t *data;
    size_t n;
    cf_buf env, plain;
} env_bench;

static int env_seal_open(void *arg)
{
    static const cf_env_ids ids = {"req-bench", "tenant-bench", "tee-bench", "otk-bench", "echo"};
    env_bench *b = arg;
    cf_env e;

    cf_buf_reset(&b->env);
    cf_buf_reset(&b->plain);
    if (cf_env_seal(&ids, b->otk, b->client, b->tee_pub, b->data, b->n, &b->env, NULL) != 0 ||
        cf_env_parse(b->env.data, b->env.len, &e) != 0 ||
        cf_env_open(&e, b->otk, b->tee, b->client_pub, &b->plain, NULL) != 0)
        return -1;
    return b->plain.len == b->n ? 0 : -1;
}

int main(void)
{
    static const size_t sizes[] = {1024, 1u << 20};
    EVP_PKEY *a = EVP_PKEY_Q_keygen(NULL, NULL, "X25519");
    EVP_PKEY *p = EVP_PKEY_Q_keygen(NULL, NULL, "X25519");
    static const uint8_t key[32] = {1};
    env_bench b;
    raw r;
    double derive_rate, keygen_rate;

    memset(&r, 0, sizeof(r));
    memset(&b, 0, sizeof(b));
    r.derive = EVP_PKEY_CTX_new(a, NULL);
    r.gcm = EVP_CIPHER_CTX_new();
    r.buf = calloc(1, sizes[1]);
    if (a == NULL || p == NULL || r.derive == NULL || r.gcm == NULL || r.buf == NULL ||
        EVP_PKEY_derive_init(r.derive) != 1 || EVP_PKEY_derive_set_peer(r.derive, p) != 1 ||
        EVP_EncryptInit_ex(r.gcm, EVP_aes_256_gcm(), NULL, key, NULL) != 1) {
        fprintf(stderr, "OpenSSL setup failed\n");
        return 1;
    }
    if (cf_hpke_key_generate(CF_HPKE_KEM_X25519_SHA256, &b.client) != 0 ||
        cf_hpke_key_generate(CF_HPKE_KEM_X25519_SHA256, &b.tee) != 0 ||
        cf_hpke_key_public_only(b.client, &b.client_pub) != 0 ||
        cf_hpke_key_public_only(b.tee, &b.tee_pub) != 0 || cf_random(b.otk, sizeof(b.otk)) != 0) {
        fprintf(stderr, "key setup failed\n");
        return 1;
    }
    cf_buf_init(&b.env, CF_ENV_MAX_BYTES);
    cf_buf_init_secret(&b.plain, CF_ENV_MAX_PAYLOAD);
    b.data = r.buf;

    derive_rate = rate(raw_derive, &r);
    keygen_rate = rate(raw_keygen, NULL);
    printf("CFE1 envelope: client seal + TEE parse + open (inner HPKE auth + outer AES-256-GCM)\n");
    printf("raw OpenSSL (same run): X25519 derive %.0f/s, X25519 keygen %.0f/s\n", derive_rate,
           keygen_rate);
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        double gcm_bps, t_limit, t_limit_kg, got;

        r.n = sizes[i];
        gcm_bps = rate(raw_gcm, &r) * (double)sizes[i];
        b.n = sizes[i];
        got = rate(env_seal_open, &b);
        t_limit = 4.0 / derive_rate + 4.0 * (double)sizes[i] / gcm_bps;
        t_limit_kg = t_limit + 1.0 / keygen_rate;
        printf("%-5s  raw AES-256-GCM %8.1f MB/s | envelope seal+open %9.1f/s (%8.1f MB/s) | "
               "limit 4 derive + 4 GCM %9.1f/s  ratio %.2f | limit incl. keygen %9.1f/s  "
               "ratio %.2f\n",
               sizes[i] == 1024 ? "1KiB" : "1MiB", gcm_bps / 1e6, got,
               got * (double)sizes[i] / 1e6, 1.0 / t_limit, got * t_limit, 1.0 / t_limit_kg,
               got * t_limit_kg);
    }
    cf_buf_free(&b.env);
    cf_buf_free(&b.plain);
    cf_hpke_key_free(b.client);
    cf_hpke_key_free(b.client_pub);
    cf_hpke_key_free(b.tee);
    cf_hpke_key_free(b.tee_pub);
    EVP_PKEY_CTX_free(r.derive);
    EVP_CIPHER_CTX_free(r.gcm);
    EVP_PKEY_free(a);
    EVP_PKEY_free(p);
    free(r.buf);
    return 0;
}
