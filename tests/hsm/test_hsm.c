/* HSM wrapper against a real SoftHSM2 token in a temporary directory. */
#include <ftw.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/err.h"
#include "base/parse.h"
#include "hsm/hsm.h"
#include "test.h"

static char dir[64];

static int rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(p);
}

static cf_hsm_opts opts(const char *pin, bool create)
{
    cf_hsm_opts o = {.pin = pin, .so_pin = "so-secret-1234", .softhsm_dir = dir,
                     .token_label = "coffer-test", .create_master = create};
    return o;
}

static const uint8_t aad[] = "tenant=t1;version=1";
static uint8_t saved_wrapped[64];
static size_t saved_len;

static void test_create_and_wrap(void)
{
    cf_hsm *h = NULL;
    cf_hsm_opts o = opts("user-pin-1234", true);
    bool sens = false, ext = true;
    uint8_t key[32], r1[32], r2[32];
    cf_buf w, p;

    T_OK(cf_hsm_open(&o, &h));
    T_OK(cf_hsm_master_attrs(h, &sens, &ext));
    T_ASSERT(sens);
    T_ASSERT(!ext);
    T_OK(cf_hsm_master_value_refused(h));

    for (int i = 0; i < 32; i++)
        key[i] = (uint8_t)i;
    cf_buf_init(&w, 256);
    cf_buf_init_secret(&p, 256);
    T_OK(cf_hsm_wrap(h, aad, sizeof(aad), key, sizeof(key), &w));
    T_EQ(w.len, sizeof(key) + CF_HSM_WRAP_OVERHEAD);
    T_ASSERT(memmem(w.data, w.len, key, sizeof(key)) == NULL);
    T_OK(cf_hsm_unwrap(h, aad, sizeof(aad), w.data, w.len, &p));
    T_EQ(p.len, 32);
    T_MEMEQ(p.data, key, 32);
    memcpy(saved_wrapped, w.data, w.len);
    saved_len = w.len;

    /* Wrong AAD, flipped bytes, truncation: refused, nothing written. */
    cf_buf_reset(&p);
    T_ERR(cf_hsm_unwrap(h, (const uint8_t *)"tenant=t2;version=1", 20, w.data, w.len, &p), CF_E_DECRYPT);
    T_EQ(p.len, 0);
    for (size_t i = 0; i < w.len; i += 5) {
        w.data[i] ^= 0x01;
        T_ERR(cf_hsm_unwrap(h, aad, sizeof(aad), w.data, w.len, &p), CF_E_DECRYPT);
        w.data[i] ^= 0x01;
        T_EQ(p.len, 0);
    }
    T_ERR(cf_hsm_unwrap(h, aad, sizeof(aad), w.data, 28, &p), CF_E_DECRYPT);
    T_ERR(cf_hsm_unwrap(h, aad, sizeof(aad), w.data, w.len - 1, &p), CF_E_DECRYPT);

    /* Two wraps of the same key differ (fresh IV). */
    cf_buf w2;
    cf_buf_init(&w2, 256);
    T_OK(cf_hsm_wrap(h, aad, sizeof(aad), key, sizeof(key), &w2));
    T_ASSERT(memcmp(w.data, w2.data, w.len) != 0);
    cf_buf_free(&w2);

    T_OK(cf_hsm_random(h, r1, sizeof(r1)));
    T_OK(cf_hsm_random(h, r2, sizeof(r2)));
    T_ASSERT(memcmp(r1, r2, sizeof(r1)) != 0);

    /* Only one session per process. */
    cf_hsm *h2 = NULL;
    T_ERR(cf_hsm_open(&o, &h2), CF_E_CONFLICT);

    cf_buf_free(&w);
    cf_buf_free(&p);
    cf_hsm_close(h);
}

static void test_reopen_keeps_key(void)
{
    cf_hsm *h = NULL;
    cf_hsm_opts o = opts("user-pin-1234", false);
    cf_buf p;

    T_ASSERT(saved_len > 0);
    T_OK(cf_hsm_open(&o, &h));
    cf_buf_init_secret(&p, 64);
    T_OK(cf_hsm_unwrap(h, aad, sizeof(aad), saved_wrapped, saved_len, &p));
    T_EQ(p.len, 32);
    T_EQ(p.data[31], 31);
    cf_buf_free(&p);
    cf_hsm_close(h);
}

static void test_wrong_pin(void)
{
    cf_hsm *h = NULL;
    cf_hsm_opts o = opts("wrong-pin-0000", false);

    T_ERR(cf_hsm_open(&o, &h), CF_E_HSM);
    T_ASSERT(strstr(cf_err_detail(CF_E_HSM), "incorrect PIN") != NULL);
    T_ASSERT(h == NULL);
    /* A failed open leaves the process able to open again. */
    o = opts("user-pin-1234", false);
    T_OK(cf_hsm_open(&o, &h));
    cf_hsm_close(h);
}

static void test_missing_master_and_module(void)
{
    cf_hsm *h = NULL;
    cf_hsm_opts o = opts("user-pin-1234", false);

    o.master_label = "no-such-key";
    T_ERR(cf_hsm_open(&o, &h), CF_E_HSM);
    T_ASSERT(strstr(cf_err_detail(CF_E_HSM), "not found") != NULL);

    o = opts("user-pin-1234", false);
    o.module = "/nonexistent/libpkcs11.so";
    T_ERR(cf_hsm_open(&o, &h), CF_E_HSM);
    T_ASSERT(strstr(cf_err_detail(CF_E_HSM), "cannot load PKCS#11 module") != NULL);

    o = opts(NULL, false);
    T_ERR(cf_hsm_open(&o, &h), CF_E_CONFIG);

    /* A token that does not exist, without a SoftHSM dir to create it in. */
    o = opts("user-pin-1234", false);
    o.softhsm_dir = NULL;
    o.token_label = "absent-token";
    T_ERR(cf_hsm_open(&o, &h), CF_E_HSM);
    T_ASSERT(strstr(cf_err_detail(CF_E_HSM), "not found") != NULL);
}

int main(void)
{
    if (cf_fmt(dir, sizeof(dir), "/tmp/coffer-hsm-XXXXXX") != 0 || mkdtemp(dir) == NULL)
        return 1;
    T_RUN(test_create_and_wrap);
    T_RUN(test_reopen_keeps_key);
    T_RUN(test_wrong_pin);
    T_RUN(test_missing_master_and_module);
    nftw(dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
    return t_done();
}
