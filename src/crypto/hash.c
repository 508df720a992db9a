#include "crypto/hash.h"

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <string.h>

#include "base/err.h"
#include "base/secmem.h"

static const char *md_name(cf_hash_alg alg)
{
    switch (alg) {
    case CF_SHA256: return "SHA256";
    case CF_SHA384: return "SHA384";
    case CF_SHA512: return "SHA512";
    }
    return NULL;
}

static const EVP_MD *md_of(cf_hash_alg alg)
{
    switch (alg) {
    case CF_SHA256: return EVP_sha256();
    case CF_SHA384: return EVP_sha384();
    case CF_SHA512: return EVP_sha512();
    }
    return NULL;
}

size_t cf_hash_len(cf_hash_alg alg)
{
    switch (alg) {
    case CF_SHA256: return CF_SHA256_LEN;
    case CF_SHA384: return CF_SHA384_LEN;
    case CF_SHA512: return CF_SHA512_LEN;
    }
    return 0;
}

int cf_hash(cf_hash_alg alg, const cf_iov *parts, size_t nparts, uint8_t *out)
{
    const EVP_MD *md = md_of(alg);
    EVP_MD_CTX *ctx;
    int rc = CF_E_CRYPTO;

    CF_ENSURE(md != NULL, CF_E_INVAL);
    ctx = EVP_MD_CTX_new();
    CF_ENSURE(ctx != NULL, CF_E_NOMEM);
    if (EVP_DigestInit_ex(ctx, md, NULL) != 1)
        goto out;
    for (size_t i = 0; i < nparts; i++)
        if (parts[i].n > 0 && EVP_DigestUpdate(ctx, parts[i].p, parts[i].n) != 1)
            goto out;
    if (EVP_DigestFinal_ex(ctx, out, NULL) != 1)
        goto out;
    rc = 0;
out:
    EVP_MD_CTX_free(ctx);
    return rc;
}

int cf_sha256(const void *d, size_t n, uint8_t out[CF_SHA256_LEN])
{
    cf_iov v = {d, n};
    return cf_hash(CF_SHA256, &v, 1, out);
}

int cf_sha384(const void *d, size_t n, uint8_t out[CF_SHA384_LEN])
{
    cf_iov v = {d, n};
    return cf_hash(CF_SHA384, &v, 1, out);
}

int cf_sha512(const void *d, size_t n, uint8_t out[CF_SHA512_LEN])
{
    cf_iov v = {d, n};
    return cf_hash(CF_SHA512, &v, 1, out);
}

int cf_hmac(cf_hash_alg alg, const uint8_t *key, size_t key_len, const uint8_t *d, size_t n,
            uint8_t *out)
{
    unsigned int olen = 0;
    const EVP_MD *md = md_of(alg);

    CF_ENSURE(md != NULL && key_len <= INT32_MAX, CF_E_INVAL);
    /* HMAC() with a zero-length key still needs a valid pointer. */
    if (HMAC(md, key_len ? key : (const uint8_t *)"", (int)key_len, d, n, out, &olen) == NULL)
        return CF_E_CRYPTO;
    CF_ENSURE(olen == cf_hash_len(alg), CF_E_CRYPTO);
    return 0;
}

/* EVP_KDF_fetch searches the provider tables on every call (microseconds);
 * fetch the implementation once per process. */
static EVP_KDF *hkdf_impl;
static pthread_once_t hkdf_once = PTHREAD_ONCE_INIT;

static void hkdf_fetch(void) { hkdf_impl = EVP_KDF_fetch(NULL, "HKDF", NULL); }

static int hkdf_run(cf_hash_alg alg, int mode, const uint8_t *salt, size_t salt_len,
                    const uint8_t *key, size_t key_len, const uint8_t *info, size_t info_len,
                    uint8_t *out, size_t out_len)
{
    EVP_KDF_CTX *kctx = NULL;
    OSSL_PARAM params[6], *p = params;
    const char *mdn = md_name(alg);
    static const uint8_t empty[1];
    int rc = CF_E_CRYPTO;

    CF_ENSURE(mdn != NULL, CF_E_INVAL);
    pthread_once(&hkdf_once, hkdf_fetch);
    if (hkdf_impl == NULL)
        goto out;
    kctx = EVP_KDF_CTX_new(hkdf_impl);
    if (kctx == NULL)
        goto out;
    *p++ = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)(uintptr_t)mdn, 0);
    *p++ = OSSL_PARAM_construct_int(OSSL_KDF_PARAM_MODE, &mode);
    *p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY,
                                             (void *)(uintptr_t)(key_len ? key : empty), key_len);
    if (salt_len > 0)
        *p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *)(uintptr_t)salt,
                                                 salt_len);
    if (info_len > 0)
        *p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (void *)(uintptr_t)info,
                                                 info_len);
    *p = OSSL_PARAM_construct_end();
    if (EVP_KDF_derive(kctx, out, out_len, params) != 1)
        goto out;
    rc = 0;
out:
    EVP_KDF_CTX_free(kctx);
    return rc;
}

int cf_hkdf_extract(cf_hash_alg alg, const uint8_t *salt, size_t salt_len, const uint8_t *ikm,
                    size_t ikm_len, uint8_t *prk)
{
    uint8_t zeros[CF_HASH_MAX_LEN] = {0};

    /* RFC 5869 §2.2: an absent salt is HashLen zero bytes. */
    if (salt_len == 0) {
        salt = zeros;
        salt_len = cf_hash_len(alg);
    }
    return hkdf_run(alg, EVP_KDF_HKDF_MODE_EXTRACT_ONLY, salt, salt_len, ikm, ikm_len, NULL, 0,
                    prk, cf_hash_len(alg));
}

int cf_hkdf_expand(cf_hash_alg alg, const uint8_t *prk, size_t prk_len, const uint8_t *info,
                   size_t info_len, uint8_t *out, size_t out_len)
{
    CF_ENSURE(out_len > 0 && out_len <= 255 * cf_hash_len(alg), CF_E_RANGE);
    return hkdf_run(alg, EVP_KDF_HKDF_MODE_EXPAND_ONLY, NULL, 0, prk, prk_len, info, info_len,
                    out, out_len);
}

int cf_hkdf(cf_hash_alg alg, const uint8_t *salt, size_t salt_len, const uint8_t *ikm,
            size_t ikm_len, const uint8_t *info, size_t info_len, uint8_t *out, size_t out_len)
{
    uint8_t prk[CF_HASH_MAX_LEN];
    int rc;

    rc = cf_hkdf_extract(alg, salt, salt_len, ikm, ikm_len, prk);
    if (rc == 0)
        rc = cf_hkdf_expand(alg, prk, cf_hash_len(alg), info, info_len, out, out_len);
    cf_wipe(prk, sizeof(prk));
    return rc;
}

int cf_random(void *out, size_t n)
{
    CF_ENSURE(n <= INT32_MAX, CF_E_INVAL);
    return RAND_bytes(out, (int)n) == 1 ? 0 : CF_E_CRYPTO;
}

int cf_random_secret(void *out, size_t n)
{
    CF_ENSURE(n <= INT32_MAX, CF_E_INVAL);
    return RAND_priv_bytes(out, (int)n) == 1 ? 0 : CF_E_CRYPTO;
}
