/*
 * HPKE single-shot seal+open (mode auth, X25519 / HKDF-SHA256 / AES-256-GCM) of
 * 1 KiB and 1 MiB, next to the crypto-bound limit measured with raw OpenSSL in the
 * same run. An auth-mode seal+open costs 4 X25519 derives (2 in AuthEncap, 2 in
 * AuthDecap) and 2 AES-256-GCM passes over the message, so
 *     limit = 1 / (4 * t_derive + 2 * n / gcm_rate(n)).
 * The sender's ephemeral key pair is a 5th scalar multiplication (X25519 keygen);
 * the limit including it is printed as well. Times are process CPU time (user +
 * sys; the benchmark is single-threaded), so that other load on a shared machine
 * does not skew one side of the ratio. Takes about 3 CPU seconds.
 */
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/buf.h"
#include "crypto/hpke.h"

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

/* ---- raw OpenSSL ---- */

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

/* One AES-256-GCM seal of n bytes (key already set; new IV, aad, data, tag). */
static int raw_gcm(void *arg)
{
    raw *r = arg;
    static const uint8_t iv[12], aad[16];
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

/* ---- HPKE ---- */

typedef struct {
    cf_hpke_params p;
    cf_hpke_key *skS, *pkS, *skR, *pkR;
    const uint8_t *msg;
    size_t n;
    cf_buf ct, pt;
} hpke_bench;

static int hpke_seal_open(void *arg)
{
    hpke_bench *h = arg;
    uint8_t enc[CF_HPKE_MAX_ENC];
    size_t enc_len = 0;
    static const uint8_t aad[] = "bench aad";

    cf_buf_reset(&h->ct);
    cf_buf_reset(&h->pt);
    if (cf_hpke_seal_once(&h->p, h->pkR, h->skS, aad, sizeof(aad), h->msg, h->n, enc, &enc_len,
                          &h->ct) != 0)
        return -1;
    if (cf_hpke_open_once(&h->p, enc, enc_len, h->skR, h->pkS, aad, sizeof(aad), h->ct.data,
                          h->ct.len, &h->pt) != 0)
        return -1;
    return h->pt.len == h->n ? 0 : -1;
}

int main(void)
{
    static const size_t sizes[] = {1024, 1u << 20};
    EVP_PKEY *a = EVP_PKEY_Q_keygen(NULL, NULL, "X25519");
    EVP_PKEY *b = EVP_PKEY_Q_keygen(NULL, NULL, "X25519");
    static const uint8_t key[32] = {1};
    hpke_bench h;
    raw r;
    double derive_rate, keygen_rate;

    memset(&r, 0, sizeof(r));
    memset(&h, 0, sizeof(h));
    r.derive = EVP_PKEY_CTX_new(a, NULL);
    r.gcm = EVP_CIPHER_CTX_new();
    r.buf = calloc(1, sizes[1]);
    if (a == NULL || b == NULL || r.derive == NULL || r.gcm == NULL || r.buf == NULL ||
        EVP_PKEY_derive_init(r.derive) != 1 || EVP_PKEY_derive_set_peer(r.derive, b) != 1 ||
        EVP_EncryptInit_ex(r.gcm, EVP_aes_256_gcm(), NULL, key, NULL) != 1) {
        fprintf(stderr, "OpenSSL setup failed\n");
        return 1;
    }
    h.p.suite = CF_HPKE_SUITE_COFFER;
    h.p.mode = CF_HPKE_MODE_AUTH;
    h.p.info = (const uint8_t *)"bench";
    h.p.info_len = 5;
    if (cf_hpke_key_generate(CF_HPKE_KEM_X25519_SHA256, &h.skS) != 0 ||
        cf_hpke_key_generate(CF_HPKE_KEM_X25519_SHA256, &h.skR) != 0 ||
        cf_hpke_key_public_only(h.skS, &h.pkS) != 0 ||
        cf_hpke_key_public_only(h.skR, &h.pkR) != 0) {
        fprintf(stderr, "key setup failed\n");
        return 1;
    }
    cf_buf_init(&h.ct, sizes[1] + 64);
    cf_buf_init_secret(&h.pt, sizes[1]);
    h.msg = r.buf;

    derive_rate = rate(raw_derive, &r);
    keygen_rate = rate(raw_keygen, NULL);
    printf("HPKE mode auth, DHKEM(X25519, HKDF-SHA256) / HKDF-SHA256 / AES-256-GCM, "
           "single-shot seal+open\n");
    printf("raw OpenSSL (same run): X25519 derive %.0f/s, X25519 keygen %.0f/s\n", derive_rate,
           keygen_rate);
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        double gcm_bps, t_limit, t_limit_kg, got;

        r.n = sizes[i];
        gcm_bps = rate(raw_gcm, &r) * (double)sizes[i];
        h.n = sizes[i];
        got = rate(hpke_seal_open, &h);
        t_limit = 4.0 / derive_rate + 2.0 * (double)sizes[i] / gcm_bps;
        t_limit_kg = t_limit + 1.0 / keygen_rate;
        printf("%-5s  raw AES-256-GCM %8.1f MB/s | hpke seal+open %9.1f/s (%8.1f MB/s) | "
               "limit 4 derive + 2 GCM %9.1f/s  ratio %.2f | limit incl. keygen %9.1f/s  "
               "ratio %.2f\n",
               sizes[i] == 1024 ? "1KiB" : "1MiB", gcm_bps / 1e6, got,
               got * (double)sizes[i] / 1e6, 1.0 / t_limit, got * t_limit, 1.0 / t_limit_kg,
               got * t_limit_kg);
    }
    cf_buf_free(&h.ct);
    cf_buf_free(&h.pt);
    cf_hpke_key_free(h.skS);
    cf_hpke_key_free(h.pkS);
    cf_hpke_key_free(h.skR);
    cf_hpke_key_free(h.pkR);
    EVP_PKEY_CTX_free(r.derive);
    EVP_CIPHER_CTX_free(r.gcm);
    EVP_PKEY_free(a);
    EVP_PKEY_free(b);
    free(r.buf);
    return 0;
}
