/*
 * AES-256-GCM (NIST SP 800-38D) over OpenSSL EVP, and the CFW1 wrapped-value
 * header. See aead.h.
 */
#include "kms/aead.h"

#include <limits.h>
#include <openssl/evp.h>
#include <string.h>

#include "base/err.h"
#include "base/limits.h"
#include "base/secmem.h"
#include "crypto/hash.h"

_Static_assert(CF_KMS_WRAPPED_OVERHEAD == CF_WRAPPED_HEADER_LEN + CF_AEAD_OVERHEAD,
               "limits.h CF_KMS_WRAPPED_OVERHEAD must match the CFW1 layout");
_Static_assert(CF_AEAD_MAX_INPUT < INT_MAX, "EVP lengths are int");

static int crypto_fail(const char *what)
{
    return cf_err_set(CF_E_CRYPTO, "AES-256-GCM %s failed", what);
}

/* EVP_*Update with a NULL buffer and length 0 is allowed for AAD, but keep the
 * calls uniform: skip empty inputs entirely. */
static int gcm_init(EVP_CIPHER_CTX *c, int enc, const uint8_t *key, const uint8_t *nonce)
{
    if (EVP_CipherInit_ex(c, EVP_aes_256_gcm(), NULL, NULL, NULL, enc) != 1 ||
        EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_IVLEN, CF_AEAD_NONCE_LEN, NULL) != 1 ||
        EVP_CipherInit_ex(c, NULL, NULL, key, nonce, enc) != 1)
        return crypto_fail("initialisation");
    return 0;
}

static int gcm_aad(EVP_CIPHER_CTX *c, const uint8_t *aad, size_t aad_len)
{
    int n = 0;

    if (aad_len == 0)
        return 0;
    if (EVP_CipherUpdate(c, NULL, &n, aad, (int)aad_len) != 1)
        return crypto_fail("AAD");
    return 0;
}

int cf_aead_seal(const uint8_t key[CF_AEAD_KEY_LEN], const uint8_t *aad, size_t aad_len,
                 const uint8_t *pt, size_t pt_len, cf_buf *out)
{
    EVP_CIPHER_CTX *c = NULL;
    uint8_t nonce[CF_AEAD_NONCE_LEN], *dst;
    size_t before = out->len;
    int n = 0, fin = 0, rc;

    CF_ENSURE(key != NULL && (aad != NULL || aad_len == 0) && (pt != NULL || pt_len == 0),
              CF_E_INVAL);
    if (pt_len > CF_AEAD_MAX_INPUT || aad_len > CF_AEAD_MAX_INPUT)
        return cf_err_set(CF_E_TOO_LARGE, "AES-256-GCM input of %zu bytes exceeds the limit",
                          CF_MAX(pt_len, aad_len));
    /* SP 800-38D §8.2.2: a 96-bit random field from an approved RBG. */
    CF_GUARD(cf_random(nonce, sizeof(nonce)));
    c = EVP_CIPHER_CTX_new();
    CF_ENSURE_OUT(c != NULL, CF_E_NOMEM);
    CF_GUARD_OUT(gcm_init(c, 1, key, nonce));
    CF_GUARD_OUT(gcm_aad(c, aad, aad_len));
    CF_GUARD_OUT(cf_buf_put(out, nonce, sizeof(nonce)));
    CF_GUARD_OUT(cf_buf_put_space(out, pt_len + CF_AEAD_TAG_LEN, &dst));
    if (pt_len > 0 && (EVP_EncryptUpdate(c, dst, &n, pt, (int)pt_len) != 1 || (size_t)n != pt_len)) {
        rc = crypto_fail("encryption");
        goto out;
    }
    if (EVP_EncryptFinal_ex(c, dst + n, &fin) != 1 || fin != 0) {
        rc = crypto_fail("finalisation");
        goto out;
    }
    if (EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, CF_AEAD_TAG_LEN, dst + pt_len) != 1) {
        rc = crypto_fail("tag");
        goto out;
    }
    rc = 0;
out:
    if (rc < 0)
        out->len = before; /* ciphertext only: nothing secret to wipe */
    EVP_CIPHER_CTX_free(c);
    return rc;
}

int cf_aead_open(const uint8_t key[CF_AEAD_KEY_LEN], const uint8_t *aad, size_t aad_len,
                 const uint8_t *in, size_t in_len, cf_buf *out)
{
    EVP_CIPHER_CTX *c = NULL;
    uint8_t tag[CF_AEAD_TAG_LEN], last[CF_AEAD_TAG_LEN];
    uint8_t *tmp = NULL;
    size_t ct_len;
    int n = 0, fin = 0, rc;

    CF_ENSURE(key != NULL && (aad != NULL || aad_len == 0) && in != NULL, CF_E_INVAL);
    if (in_len < CF_AEAD_OVERHEAD)
        return cf_err_set(CF_E_DECRYPT, "sealed value is shorter than nonce and tag");
    if (in_len > CF_AEAD_MAX_INPUT + CF_AEAD_OVERHEAD || aad_len > CF_AEAD_MAX_INPUT)
        return cf_err_set(CF_E_TOO_LARGE, "AES-256-GCM input exceeds the limit");
    ct_len = in_len - CF_AEAD_OVERHEAD;
    memcpy(tag, in + CF_AEAD_NONCE_LEN + ct_len, sizeof(tag));
    /* Verify before use: the plaintext goes to private locked memory first and
     * reaches `out` only after the tag has been checked. */
    if (ct_len > 0) {
        tmp = cf_secure_alloc(ct_len);
        CF_ENSURE_OUT(tmp != NULL, CF_E_NOMEM);
    }
    c = EVP_CIPHER_CTX_new();
    CF_ENSURE_OUT(c != NULL, CF_E_NOMEM);
    CF_GUARD_OUT(gcm_init(c, 0, key, in));
    CF_GUARD_OUT(gcm_aad(c, aad, aad_len));
    if (ct_len > 0 && (EVP_DecryptUpdate(c, tmp, &n, in + CF_AEAD_NONCE_LEN, (int)ct_len) != 1 ||
                       (size_t)n != ct_len)) {
        rc = crypto_fail("decryption");
        goto out;
    }
    if (EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, CF_AEAD_TAG_LEN, tag) != 1) {
        rc = crypto_fail("tag");
        goto out;
    }
    /* EVP_DecryptFinal_ex compares the tag in constant time (OpenSSL
     * CRYPTO_memcmp in the GCM implementation). */
    if (EVP_DecryptFinal_ex(c, last, &fin) != 1 || fin != 0) {
        rc = cf_err_set(CF_E_DECRYPT, "sealed value failed authentication (wrong key, context or data)");
        goto out;
    }
    if (ct_len > 0)
        CF_GUARD_OUT(cf_buf_put(out, tmp, ct_len));
    rc = 0;
out:
    EVP_CIPHER_CTX_free(c);
    cf_secure_free(tmp); /* wipes */
    return rc;
}

int cf_wrapped_put_header(cf_buf *out, uint32_t version)
{
    size_t before = out->len;
    int rc;

    if (version == 0 || version > CF_KMS_MAX_KEY_VERSION)
        return cf_err_set(CF_E_RANGE, "key version %u out of range", version);
    rc = cf_buf_put(out, CF_WRAPPED_MAGIC, 4);
    if (rc == 0)
        rc = cf_buf_put_u32be(out, version);
    if (rc < 0)
        out->len = before;
    return rc;
}

int cf_wrapped_parse(const uint8_t *in, size_t in_len, cf_wrapped *ret)
{
    cf_buf b;
    const uint8_t *magic, *body;
    uint32_t version;
    size_t body_len;

    CF_ENSURE(ret != NULL && (in != NULL || in_len == 0), CF_E_INVAL);
    if (in_len > CF_KMS_MAX_WRAPPED)
        return cf_err_set(CF_E_TOO_LARGE, "wrapped value of %zu bytes exceeds %u bytes", in_len,
                          (unsigned)CF_KMS_MAX_WRAPPED);
    cf_buf_view(&b, in, in_len);
    if (cf_buf_get_ptr(&b, 4, &magic) != 0)
        return cf_err_set(CF_E_TRUNCATED, "wrapped value is truncated (no header)");
    if (memcmp(magic, CF_WRAPPED_MAGIC, 4) != 0)
        return cf_err_set(CF_E_PARSE, "not a wrapped value (bad magic)");
    if (cf_buf_get_u32be(&b, &version) != 0)
        return cf_err_set(CF_E_TRUNCATED, "wrapped value is truncated (no key version)");
    if (version == 0 || version > CF_KMS_MAX_KEY_VERSION)
        return cf_err_set(CF_E_RANGE, "wrapped value names key version %u, out of range", version);
    body_len = cf_buf_remaining(&b);
    if (body_len < CF_AEAD_OVERHEAD)
        return cf_err_set(CF_E_TRUNCATED, "wrapped value is truncated (no nonce and tag)");
    CF_GUARD(cf_buf_get_ptr(&b, body_len, &body));
    CF_GUARD(cf_buf_expect_end(&b));
    ret->version = version;
    ret->header = in;
    ret->body = body;
    ret->body_len = body_len;
    return 0;
}
