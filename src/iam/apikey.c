/*
 * API key format, verifier hash, and client-key validation
 * (docs/internals/iam.md "API keys", "Client keys").
 */
#include <openssl/evp.h>
#include <string.h>

#include "base/buf.h"
#include "base/err.h"
#include "base/parse.h"
#include "base/secmem.h"
#include "crypto/hash.h"
#include "crypto/keys.h"
#include "iam/iam.h"

/* Domain separation: this digest is an API key verifier and nothing else. */
#define LABEL_APIKEY "coffer/v1 api-key"

_Static_assert(CF_IAM_APIKEY_SECRET_CHARS == (CF_IAM_APIKEY_SECRET_LEN * 8 + 5) / 6,
               "base64url length of the secret");
_Static_assert(CF_IAM_APIKEY_HASH_LEN == CF_SHA256_LEN, "verifier is SHA-256");

static int malformed(const char *why)
{
    /* Never echo the input: it may be a real key with a typo. */
    return cf_err_set(CF_E_UNAUTHENTICATED, "malformed API key: %s (expected cfk_<16 hex>_<43 base64url>)",
                      why);
}

int cf_iam_apikey_parse(const char *s, size_t len, char ret_key_id[CF_IAM_KEY_ID_LEN + 1],
                        uint8_t ret_secret[CF_IAM_APIKEY_SECRET_LEN])
{
    const uint8_t *prefix, *id, *sep, *sec;
    char id_copy[CF_IAM_KEY_ID_LEN + 1];
    char sec_copy[CF_IAM_APIKEY_SECRET_CHARS + 1];
    cf_buf in, dec;
    int rc;

    if (s == NULL || len != CF_IAM_APIKEY_LEN)
        return malformed("wrong length");
    cf_buf_view(&in, (const uint8_t *)s, len);
    cf_buf_init_secret(&dec, CF_IAM_APIKEY_SECRET_LEN);
    /* Layout: "cfk_" (4) | key id (16) | "_" (1) | secret (43). */
    if (cf_buf_get_ptr(&in, 4, &prefix) != 0 || cf_buf_get_ptr(&in, CF_IAM_KEY_ID_LEN, &id) != 0 ||
        cf_buf_get_ptr(&in, 1, &sep) != 0 ||
        cf_buf_get_ptr(&in, CF_IAM_APIKEY_SECRET_CHARS, &sec) != 0 || cf_buf_expect_end(&in) != 0) {
        rc = malformed("wrong length");
        goto out;
    }
    if (memcmp(prefix, CF_IAM_APIKEY_PREFIX, 4) != 0) {
        rc = malformed("wrong prefix");
        goto out;
    }
    for (size_t i = 0; i < CF_IAM_KEY_ID_LEN; i++) {
        uint8_t c = id[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
            rc = malformed("key id is not lower-case hex");
            goto out;
        }
        id_copy[i] = (char)c;
    }
    id_copy[CF_IAM_KEY_ID_LEN] = '\0';
    if (sep[0] != '_') {
        rc = malformed("missing separator");
        goto out;
    }
    memcpy(sec_copy, sec, CF_IAM_APIKEY_SECRET_CHARS);
    sec_copy[CF_IAM_APIKEY_SECRET_CHARS] = '\0';
    /* Strict base64url: canonical trailing bits, so one secret has one spelling. */
    rc = cf_b64url_decode(sec_copy, CF_IAM_APIKEY_SECRET_CHARS, &dec);
    cf_wipe(sec_copy, sizeof(sec_copy));
    if (rc != 0 || dec.len != CF_IAM_APIKEY_SECRET_LEN) {
        rc = malformed("secret is not 32 bytes of base64url");
        goto out;
    }
    memcpy(ret_key_id, id_copy, sizeof(id_copy));
    memcpy(ret_secret, dec.data, CF_IAM_APIKEY_SECRET_LEN);
    rc = 0;
out:
    cf_buf_free(&dec);
    return rc;
}

int cf_iam_apikey_hash(const char *key_id, const uint8_t secret[CF_IAM_APIKEY_SECRET_LEN],
                       uint8_t ret_hash[CF_IAM_APIKEY_HASH_LEN])
{
    static const uint8_t zero = 0;
    /* The key id is inside the digest: a verifier copied to another key's row
     * does not verify there. */
    cf_iov parts[] = {
        {LABEL_APIKEY, sizeof(LABEL_APIKEY) - 1},
        {&zero, 1},
        {key_id, CF_IAM_KEY_ID_LEN},
        {&zero, 1},
        {secret, CF_IAM_APIKEY_SECRET_LEN},
    };

    CF_ENSURE(key_id != NULL && strlen(key_id) == CF_IAM_KEY_ID_LEN && secret != NULL, CF_E_INVAL);
    return cf_hash(CF_SHA256, parts, CF_ARRAY_LEN(parts), ret_hash);
}

int cf_iam_apikey_generate(char ret_key_id[CF_IAM_KEY_ID_LEN + 1], cf_secret *ret_key,
                           uint8_t ret_hash[CF_IAM_APIKEY_HASH_LEN])
{
    uint8_t raw_id[CF_IAM_KEY_ID_LEN / 2];
    char id[CF_IAM_KEY_ID_LEN + 1];
    cf_secret secret = {0}, key = {0};
    uint8_t hash[CF_IAM_APIKEY_HASH_LEN];
    char *p;
    int rc;

    CF_GUARD(cf_random(raw_id, sizeof(raw_id)));
    cf_hex_encode(raw_id, sizeof(raw_id), id);
    CF_GUARD_OUT(cf_secret_new(&secret, CF_IAM_APIKEY_SECRET_LEN));
    CF_GUARD_OUT(cf_random_secret(secret.p, secret.len));
    CF_GUARD_OUT(cf_secret_new(&key, CF_IAM_APIKEY_LEN + 1));
    p = (char *)key.p;
    memcpy(p, CF_IAM_APIKEY_PREFIX, 4);
    memcpy(p + 4, id, CF_IAM_KEY_ID_LEN);
    p[4 + CF_IAM_KEY_ID_LEN] = '_';
    cf_b64url_encode(secret.p, secret.len, p + 5 + CF_IAM_KEY_ID_LEN); /* 43 chars + NUL */
    CF_GUARD_OUT(cf_iam_apikey_hash(id, secret.p, hash));
    memcpy(ret_key_id, id, sizeof(id));
    memcpy(ret_hash, hash, sizeof(hash));
    *ret_key = key;
    key.p = NULL;
    rc = 0;
out:
    cf_secret_free(&secret);
    cf_secret_free(&key);
    return rc;
}

/* RFC 7748 §5: u-coordinates are taken mod p = 2^255 - 19 after masking bit 255.
 * We accept only the canonical encoding: bit 255 clear and u < p. */
static bool x25519_canonical(const uint8_t *u)
{
    if (u[31] & 0x80)
        return false;
    if (u[31] != 0x7f || u[0] < 0xed)
        return true;
    for (int i = 1; i < 31; i++)
        if (u[i] != 0xff)
            return true;
    return false; /* p <= u <= 2^255 - 1 */
}

int cf_iam_clientkey_check(const uint8_t *pub, size_t len)
{
    cf_key *peer = NULL, *eph = NULL;
    EVP_PKEY_CTX *ctx = NULL;
    uint8_t shared[32];
    size_t n = sizeof(shared);
    uint8_t acc = 0;
    int rc;

    if (pub == NULL || len != CF_X25519_LEN)
        return cf_err_set(CF_E_INVAL, "client key must be a 32-byte X25519 public key, got %zu bytes", len);
    if (!x25519_canonical(pub))
        return cf_err_set(CF_E_INVAL, "client key is not a canonical X25519 public key (u >= p or bit 255 set)");
    CF_GUARD_OUT(cf_key_from_public(CF_KEY_X25519, pub, len, &peer));
    CF_GUARD_OUT(cf_key_generate(CF_KEY_X25519, &eph));
    /* RFC 7748 §6.1: a public key of small order gives the all-zero shared
     * secret for every (clamped) scalar; OpenSSL refuses to derive it. */
    ctx = EVP_PKEY_CTX_new(cf_key_evp(eph), NULL);
    CF_ENSURE_OUT(ctx != NULL, CF_E_NOMEM);
    if (EVP_PKEY_derive_init(ctx) <= 0 || EVP_PKEY_derive_set_peer(ctx, cf_key_evp(peer)) <= 0 ||
        EVP_PKEY_derive(ctx, shared, &n) <= 0 || n != sizeof(shared)) {
        rc = cf_err_set(CF_E_INVAL, "client key is of small order (RFC 7748 §6.1): not usable for key agreement");
        goto out;
    }
    for (size_t i = 0; i < sizeof(shared); i++)
        acc |= shared[i];
    if (acc == 0) {
        rc = cf_err_set(CF_E_INVAL, "client key is of small order (RFC 7748 §6.1): not usable for key agreement");
        goto out;
    }
    rc = 0;
out:
    cf_wipe(shared, sizeof(shared));
    EVP_PKEY_CTX_free(ctx);
    cf_key_free(eph);
    cf_key_free(peer);
    if (rc < 0 && rc != CF_E_INVAL && rc != CF_E_NOMEM)
        rc = cf_err_set(CF_E_INVAL, "client key is not a valid X25519 public key");
    return rc;
}
