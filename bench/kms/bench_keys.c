/*
 * KMS value operations on 1 KiB values, next to the limits measured with
 * OpenSSL and the file system directly in the same run:
 *   - cf_kms_keys_seal (no audit event): store lookup + cached key + one
 *     AES-256-GCM pass; limit = raw EVP AES-256-GCM seal of 1 KiB.
 *   - cf_kms_keys_encrypt (audited): the same plus one durable audit append;
 *     limit = raw AES-256-GCM seal + write+fdatasync of a 400-byte record to a
 *     file in the same directory as the spool (what any durable audit costs).
 *   - cf_kms_keys_decrypt with an empty cache (every call unwraps in the HSM):
 *     shows what the key cache saves.
 * Times are wall clock (fdatasync waits are the point), about 1 s per figure,
 * with a real SoftHSM2 token and a SQLite store in a temporary directory.
 */
#include <fcntl.h>
#include <ftw.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/parse.h"
#include "hsm/hsm.h"
#include "kms/keys.h"
#include "spool/spool.h"

#define SECS 1.0
#define VAL 1024

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static double rate(int (*fn)(void *), void *arg)
{
    double t0 = now(), t;
    long n = 0;

    do {
        if (fn(arg) != 0) {
            fprintf(stderr, "benchmark operation failed\n");
            exit(1);
        }
        n++;
        t = now() - t0;
    } while (t < SECS);
    return (double)n / t;
}

typedef struct {
    EVP_CIPHER_CTX *c;
    uint8_t key[32], iv[12], in[VAL], out[VAL + 16];
    int fd;
    uint8_t rec[400];
    cf_kms_keys *keys;
    cf_kms_binding b;
    cf_buf w, p;
    uint8_t wrapped[VAL + 64];
    size_t wrapped_len;
} ctx;

static int raw_gcm(void *arg)
{
    ctx *x = arg;
    int n = 0, f = 0;

    x->iv[0]++;
    if (EVP_EncryptInit_ex(x->c, EVP_aes_256_gcm(), NULL, x->key, x->iv) != 1 ||
        EVP_EncryptUpdate(x->c, x->out, &n, x->in, VAL) != 1 ||
        EVP_EncryptFinal_ex(x->c, x->out + n, &f) != 1 ||
        EVP_CIPHER_CTX_ctrl(x->c, EVP_CTRL_GCM_GET_TAG, 16, x->out + VAL) != 1)
        return -1;
    return 0;
}

static int raw_gcm_fsync(void *arg)
{
    ctx *x = arg;

    if (raw_gcm(x) != 0 || write(x->fd, x->rec, sizeof(x->rec)) != (ssize_t)sizeof(x->rec) ||
        fdatasync(x->fd) != 0)
        return -1;
    return 0;
}

static int kms_seal(void *arg)
{
    ctx *x = arg;

    cf_buf_reset(&x->w);
    return cf_kms_keys_seal(x->keys, &x->b, x->in, VAL, &x->w);
}

static int kms_encrypt(void *arg)
{
    ctx *x = arg;

    cf_buf_reset(&x->w);
    return cf_kms_keys_encrypt(x->keys, NULL, &x->b, x->in, VAL, &x->w);
}

static int kms_decrypt(void *arg)
{
    ctx *x = arg;

    cf_buf_reset(&x->p);
    return cf_kms_keys_decrypt(x->keys, NULL, &x->b, x->wrapped, x->wrapped_len, &x->p);
}

static int rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(p);
}

int main(void)
{
    char dir[64], hsmdir[96], spooldir[96], dsn[128], rawpath[128];
    cf_hsm_opts ho = {.pin = "bench-pin-1234", .so_pin = "bench-so-1234", .token_label = "bench",
                      .create_master = true};
    cf_kms_keys_opts one = {.cache_capacity = 1};
    cf_hsm *hsm = NULL;
    cf_spool *sp = NULL;
    cf_kms_keys *cold = NULL;
    ctx x;
    double r_gcm, r_seal, r_lim, r_enc, r_cold, r_warm;

    memset(&x, 0, sizeof(x));
    if (cf_fmt(dir, sizeof(dir), "/tmp/coffer-bench-kms-XXXXXX") != 0 || mkdtemp(dir) == NULL ||
        cf_fmt(hsmdir, sizeof(hsmdir), "%s/hsm", dir) != 0 ||
        cf_fmt(spooldir, sizeof(spooldir), "%s/spool", dir) != 0 ||
        cf_fmt(dsn, sizeof(dsn), "sqlite:%s/kms.db", dir) != 0 ||
        cf_fmt(rawpath, sizeof(rawpath), "%s/raw.log", dir) != 0)
        return 1;
    ho.softhsm_dir = hsmdir;
    x.c = EVP_CIPHER_CTX_new();
    x.fd = open(rawpath, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    memset(x.rec, 'r', sizeof(x.rec));
    cf_buf_init(&x.w, VAL + 64);
    cf_buf_init_secret(&x.p, VAL);
    x.b = (cf_kms_binding){.tenant = "bench", .context = (const uint8_t *)"obj", .context_len = 3};
    if (x.c == NULL || x.fd < 0 || cf_hsm_open(&ho, &hsm) != 0 || cf_spool_open(spooldir, &sp) != 0 ||
        cf_kms_keys_open(hsm, dsn, sp, NULL, &x.keys) != 0 ||
        cf_kms_keys_open(hsm, dsn, sp, &one, &cold) != 0 ||
        cf_kms_keys_create(x.keys, NULL, "bench", NULL, NULL) != 0 ||
        cf_kms_keys_create(x.keys, NULL, "bench2", NULL, NULL) != 0) {
        fprintf(stderr, "setup failed\n");
        return 1;
    }

    r_gcm = rate(raw_gcm, &x);
    r_seal = rate(kms_seal, &x);
    r_lim = rate(raw_gcm_fsync, &x);
    r_enc = rate(kms_encrypt, &x);
    memcpy(x.wrapped, x.w.data, x.w.len);
    x.wrapped_len = x.w.len;
    r_warm = rate(kms_decrypt, &x);
    /* cold: a cache of one slot, alternating two tenants, so every call unwraps */
    {
        cf_kms_binding b2 = {.tenant = "bench2", .context = (const uint8_t *)"obj", .context_len = 3};
        cf_buf w2;
        uint8_t v2[VAL + 64];
        size_t v2n;
        double t0, t;
        long n = 0;

        cf_buf_init(&w2, VAL + 64);
        if (cf_kms_keys_encrypt(x.keys, NULL, &b2, x.in, VAL, &w2) != 0)
            return 1;
        memcpy(v2, w2.data, w2.len);
        v2n = w2.len;
        cf_buf_free(&w2);
        t0 = now();
        do {
            cf_buf_reset(&x.p);
            if (cf_kms_keys_decrypt(cold, NULL, (n & 1) ? &b2 : &x.b, (n & 1) ? v2 : x.wrapped,
                                    (n & 1) ? v2n : x.wrapped_len, &x.p) != 0)
                return 1;
            n++;
            t = now() - t0;
        } while (t < SECS);
        r_cold = (double)n / t;
    }

    printf("KMS value operations, 1 KiB values (wall clock; SoftHSM2 + SQLite in %s)\n", dir);
    printf("seal (no audit)          %9.0f/s | limit raw AES-256-GCM          %9.0f/s | ratio %.3f\n",
           r_seal, r_gcm, r_seal / r_gcm);
    printf("encrypt (audited)        %9.0f/s | limit GCM + write+fdatasync    %9.0f/s | ratio %.3f\n",
           r_enc, r_lim, r_enc / r_lim);
    printf("decrypt, key cached      %9.0f/s | limit GCM + write+fdatasync    %9.0f/s | ratio %.3f\n",
           r_warm, r_lim, r_warm / r_lim);
    printf("decrypt, HSM unwrap each %9.0f/s | (cached: %.0f/s)\n", r_cold, r_warm);

    cf_kms_keys_close(cold);
    cf_kms_keys_close(x.keys);
    cf_spool_close(sp);
    cf_hsm_close(hsm);
    cf_buf_free(&x.w);
    cf_buf_free(&x.p);
    EVP_CIPHER_CTX_free(x.c);
    close(x.fd);
    nftw(dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
    return 0;
}
