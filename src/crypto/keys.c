#include "crypto/keys.h"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <string.h>

#include "base/err.h"
#include "base/limits.h"
#include "base/parse.h"
#include "crypto/hash.h"

struct cf_key {
    cf_key_type type;
    bool priv;
    EVP_PKEY *pkey;
};

/* ---- type tables ---- */

const char *cf_key_type_name(cf_key_type type)
{
    switch (type) {
    case CF_KEY_X25519: return "X25519";
    case CF_KEY_ED25519: return "Ed25519";
    case CF_KEY_P256: return "P-256";
    case CF_KEY_P384: return "P-384";
    }
    return "?";
}

size_t cf_key_type_pub_len(cf_key_type type)
{
    switch (type) {
    case CF_KEY_X25519: return CF_X25519_LEN;
    case CF_KEY_ED25519: return CF_ED25519_LEN;
    case CF_KEY_P256: return CF_P256_PUB_LEN;
    case CF_KEY_P384: return CF_P384_PUB_LEN;
    }
    return 0;
}

size_t cf_key_type_priv_len(cf_key_type type)
{
    switch (type) {
    case CF_KEY_X25519: return CF_X25519_LEN;
    case CF_KEY_ED25519: return CF_ED25519_LEN;
    case CF_KEY_P256: return CF_P256_PRIV_LEN;
    case CF_KEY_P384: return CF_P384_PRIV_LEN;
    }
    return 0;
}

size_t cf_key_type_sig_len(cf_key_type type)
{
    switch (type) {
    case CF_KEY_X25519: return 0;
    case CF_KEY_ED25519: return CF_ED25519_SIG_LEN;
    case CF_KEY_P256: return CF_P256_SIG_LEN;
    case CF_KEY_P384: return CF_P384_SIG_LEN;
    }
    return 0;
}

static bool is_ec(cf_key_type type) { return type == CF_KEY_P256 || type == CF_KEY_P384; }

/* OpenSSL algorithm name for EVP_PKEY_*_raw_*_key_ex / fromdata. */
static const char *evp_name(cf_key_type type)
{
    switch (type) {
    case CF_KEY_X25519: return "X25519";
    case CF_KEY_ED25519: return "ED25519";
    case CF_KEY_P256:
    case CF_KEY_P384: return "EC";
    }
    return NULL;
}

/* SEC 2 names OpenSSL reports for the named curve (and accepts). */
static const char *ec_group(cf_key_type type)
{
    return type == CF_KEY_P256 ? "prime256v1" : type == CF_KEY_P384 ? "secp384r1" : NULL;
}

/* Digest that ECDSA uses for this curve (RFC 7518 §3.4: ES256 / ES384); NULL for Ed25519. */
static const char *sig_md(cf_key_type type)
{
    return type == CF_KEY_P256 ? "SHA256" : type == CF_KEY_P384 ? "SHA384" : NULL;
}

/* Field element / scalar size in bytes. */
static size_t ec_coord_len(cf_key_type type)
{
    return type == CF_KEY_P256 ? 32 : type == CF_KEY_P384 ? 48 : 0;
}

static bool valid_type(cf_key_type type) { return evp_name(type) != NULL; }

/* OpenSSL leaves reasons on its per-thread queue; ours are in cf_err_set. */
static int ossl_fail(int err)
{
    ERR_clear_error();
    return err;
}

/* ---- construction ---- */

static int classify(EVP_PKEY *pk, cf_key_type *ret)
{
    char group[64];
    size_t glen = 0;

    if (EVP_PKEY_is_a(pk, "X25519")) {
        *ret = CF_KEY_X25519;
        return 0;
    }
    if (EVP_PKEY_is_a(pk, "ED25519")) {
        *ret = CF_KEY_ED25519;
        return 0;
    }
    if (!EVP_PKEY_is_a(pk, "EC"))
        return cf_err_set(CF_E_UNSUPPORTED, "key type %.32s is not supported",
                          EVP_PKEY_get0_type_name(pk) ? EVP_PKEY_get0_type_name(pk) : "?");
    /* Only named curves: a key with explicit parameters has no group name. */
    if (EVP_PKEY_get_utf8_string_param(pk, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group),
                                       &glen) != 1)
        return ossl_fail(cf_err_set(CF_E_UNSUPPORTED, "EC key without a named curve"));
    if (strcmp(group, "prime256v1") == 0 || strcmp(group, "P-256") == 0) {
        *ret = CF_KEY_P256;
        return 0;
    }
    if (strcmp(group, "secp384r1") == 0 || strcmp(group, "P-384") == 0) {
        *ret = CF_KEY_P384;
        return 0;
    }
    return cf_err_set(CF_E_UNSUPPORTED, "EC curve %.32s is not supported", group);
}

static bool evp_has_private(EVP_PKEY *pk, cf_key_type type)
{
    if (is_ec(type)) {
        BIGNUM *d = NULL;
        bool has = EVP_PKEY_get_bn_param(pk, OSSL_PKEY_PARAM_PRIV_KEY, &d) == 1 && d != NULL;
        BN_clear_free(d);
        ERR_clear_error();
        return has;
    }
    size_t n = 0;
    bool has = EVP_PKEY_get_raw_private_key(pk, NULL, &n) == 1 && n > 0;
    ERR_clear_error();
    return has;
}

/* Full validation (SP 800-56A §5.6.2.3 for EC public keys; range and pairwise
 * consistency for private keys). */
static int check_evp(EVP_PKEY *pk, bool priv)
{
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, pk, NULL);
    int ok;

    CF_ENSURE(ctx != NULL, CF_E_NOMEM);
    ok = priv ? EVP_PKEY_check(ctx) : EVP_PKEY_public_check(ctx);
    EVP_PKEY_CTX_free(ctx);
    if (ok != 1)
        return ossl_fail(cf_err_set(CF_E_CRYPTO, "%s key failed validation",
                                    priv ? "private" : "public"));
    return 0;
}

/* Takes ownership of pk in every case. */
static int wrap(EVP_PKEY *pk, cf_key_type type, bool priv, cf_key **ret)
{
    cf_key *k = calloc(1, sizeof(*k));

    if (k == NULL) {
        EVP_PKEY_free(pk);
        return CF_E_NOMEM;
    }
    k->type = type;
    k->priv = priv;
    k->pkey = pk;
    *ret = k;
    return 0;
}

void cf_key_free(cf_key *k)
{
    if (k == NULL)
        return;
    /* EVP_PKEY_free clears private key material it owns. */
    EVP_PKEY_free(k->pkey);
    free(k);
}

cf_key_type cf_key_get_type(const cf_key *k) { return k->type; }
bool cf_key_has_private(const cf_key *k) { return k->priv; }
EVP_PKEY *cf_key_evp(const cf_key *k) { return k->pkey; }

int cf_key_generate(cf_key_type type, cf_key **ret)
{
    EVP_PKEY *pk = NULL;

    CF_ENSURE(valid_type(type), CF_E_INVAL);
    if (is_ec(type))
        pk = EVP_PKEY_Q_keygen(NULL, NULL, "EC", type == CF_KEY_P256 ? "P-256" : "P-384");
    else
        pk = EVP_PKEY_Q_keygen(NULL, NULL, evp_name(type));
    if (pk == NULL)
        return ossl_fail(CF_E_CRYPTO);
    return wrap(pk, type, true, ret);
}

int cf_key_from_evp(EVP_PKEY *pkey, cf_key **ret)
{
    cf_key_type type;
    bool priv;

    CF_ENSURE(pkey != NULL, CF_E_INVAL);
    CF_GUARD(classify(pkey, &type));
    priv = evp_has_private(pkey, type);
    CF_GUARD(check_evp(pkey, priv));
    if (EVP_PKEY_up_ref(pkey) != 1)
        return ossl_fail(CF_E_CRYPTO);
    return wrap(pkey, type, priv, ret);
}

/* ---- raw public keys ---- */

int cf_key_from_public(cf_key_type type, const uint8_t *pub, size_t len, cf_key **ret)
{
    EVP_PKEY_CTX *ctx = NULL;
    EVP_PKEY *pk = NULL;
    OSSL_PARAM params[3];
    int rc = CF_E_CRYPTO;

    CF_ENSURE(valid_type(type) && (pub != NULL || len == 0), CF_E_INVAL);
    if (len != cf_key_type_pub_len(type))
        return cf_err_set(CF_E_PARSE, "%s public key must be %zu bytes, not %zu",
                          cf_key_type_name(type), cf_key_type_pub_len(type), len);
    if (!is_ec(type)) {
        pk = EVP_PKEY_new_raw_public_key_ex(NULL, evp_name(type), NULL, pub, len);
        if (pk == NULL)
            return ossl_fail(CF_E_CRYPTO);
        return wrap(pk, type, false, ret);
    }
    /* SEC 1 §2.3.4: only the uncompressed form 0x04 || X || Y is accepted here;
     * OpenSSL's decoding rejects coordinates >= p and points not on the curve. */
    if (pub[0] != 0x04)
        return cf_err_set(CF_E_PARSE, "%s public key is not an uncompressed point",
                          cf_key_type_name(type));
    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME,
                                                 (char *)(uintptr_t)ec_group(type), 0);
    params[1] = OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY,
                                                  (void *)(uintptr_t)pub, len);
    params[2] = OSSL_PARAM_construct_end();
    ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
    CF_ENSURE_OUT(ctx != NULL, CF_E_NOMEM);
    CF_ENSURE_OUT(EVP_PKEY_fromdata_init(ctx) == 1, CF_E_CRYPTO);
    if (EVP_PKEY_fromdata(ctx, &pk, EVP_PKEY_PUBLIC_KEY, params) != 1) {
        rc = cf_err_set(CF_E_PARSE, "%s public key is not a point on the curve",
                        cf_key_type_name(type));
        goto out;
    }
    CF_GUARD_OUT(check_evp(pk, false));
    rc = wrap(pk, type, false, ret);
    pk = NULL;
out:
    if (rc < 0)
        ERR_clear_error();
    EVP_PKEY_free(pk);
    EVP_PKEY_CTX_free(ctx);
    return rc;
}

static int ec_export_public(EVP_PKEY *pk, cf_key_type type, uint8_t *out)
{
    BIGNUM *x = NULL, *y = NULL;
    size_t n = ec_coord_len(type);
    int rc = CF_E_CRYPTO;

    /* Affine coordinates, so that the output is uncompressed whatever point
     * format the EVP_PKEY was created with. */
    if (EVP_PKEY_get_bn_param(pk, OSSL_PKEY_PARAM_EC_PUB_X, &x) != 1 ||
        EVP_PKEY_get_bn_param(pk, OSSL_PKEY_PARAM_EC_PUB_Y, &y) != 1)
        goto out;
    out[0] = 0x04;
    if (BN_bn2binpad(x, out + 1, (int)n) != (int)n || BN_bn2binpad(y, out + 1 + n, (int)n) != (int)n)
        goto out;
    rc = 0;
out:
    if (rc < 0)
        ERR_clear_error();
    BN_free(x);
    BN_free(y);
    return rc;
}

int cf_key_export_public(const cf_key *k, uint8_t *out, size_t out_len, size_t *ret_len)
{
    uint8_t tmp[CF_KEY_MAX_PUB_LEN];
    size_t need = cf_key_type_pub_len(k->type), n = need;

    CF_ENSURE(out != NULL && out_len >= need, CF_E_INVAL);
    /* Built in tmp so that out is untouched on failure. */
    if (is_ec(k->type)) {
        CF_GUARD(ec_export_public(k->pkey, k->type, tmp));
    } else {
        if (EVP_PKEY_get_raw_public_key(k->pkey, tmp, &n) != 1 || n != need)
            return ossl_fail(CF_E_CRYPTO);
    }
    memcpy(out, tmp, need);
    *ret_len = need;
    return 0;
}

int cf_key_public_eq(const cf_key *a, const cf_key *b)
{
    uint8_t pa[CF_KEY_MAX_PUB_LEN], pb[CF_KEY_MAX_PUB_LEN];
    size_t na = 0, nb = 0;

    if (a == NULL || b == NULL || a->type != b->type)
        return 0;
    if (cf_key_export_public(a, pa, sizeof(pa), &na) != 0 ||
        cf_key_export_public(b, pb, sizeof(pb), &nb) != 0 || na != nb)
        return 0;
    return cf_ct_eq(pa, pb, na);
}

int cf_key_public_only(const cf_key *k, cf_key **ret)
{
    uint8_t pub[CF_KEY_MAX_PUB_LEN];
    size_t n = 0;

    CF_GUARD(cf_key_export_public(k, pub, sizeof(pub), &n));
    return cf_key_from_public(k->type, pub, n, ret);
}

/* ---- raw private keys ---- */

/* d*G for the EC public key that goes with a scalar (SEC 1 §3.2.1). */
static int ec_from_scalar(cf_key_type type, const uint8_t *priv, size_t len, EVP_PKEY **ret)
{
    EC_GROUP *group = NULL;
    EC_POINT *q = NULL;
    BIGNUM *d = NULL;
    OSSL_PARAM_BLD *bld = NULL;
    OSSL_PARAM *params = NULL;
    EVP_PKEY_CTX *ctx = NULL;
    EVP_PKEY *pk = NULL;
    uint8_t pub[CF_KEY_MAX_PUB_LEN];
    size_t publen;
    int rc = CF_E_CRYPTO;

    group = EC_GROUP_new_by_curve_name_ex(NULL, NULL,
                                          type == CF_KEY_P256 ? NID_X9_62_prime256v1
                                                              : NID_secp384r1);
    d = BN_secure_new();
    q = group ? EC_POINT_new(group) : NULL;
    CF_ENSURE_OUT(group != NULL && d != NULL && q != NULL, CF_E_NOMEM);
    BN_set_flags(d, BN_FLG_CONSTTIME);
    CF_ENSURE_OUT(BN_bin2bn(priv, (int)len, d) != NULL, CF_E_CRYPTO);
    /* SEC 1 §3.2.1: the private key is an integer in [1, n-1]. */
    if (BN_is_zero(d) || BN_cmp(d, EC_GROUP_get0_order(group)) >= 0) {
        rc = cf_err_set(CF_E_RANGE, "%s private scalar is out of range", cf_key_type_name(type));
        goto out;
    }
    CF_ENSURE_OUT(EC_POINT_mul(group, q, d, NULL, NULL, NULL) == 1, CF_E_CRYPTO);
    publen = EC_POINT_point2oct(group, q, POINT_CONVERSION_UNCOMPRESSED, pub, sizeof(pub), NULL);
    CF_ENSURE_OUT(publen == cf_key_type_pub_len(type), CF_E_CRYPTO);
    bld = OSSL_PARAM_BLD_new();
    CF_ENSURE_OUT(bld != NULL, CF_E_NOMEM);
    CF_ENSURE_OUT(OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, ec_group(type),
                                                  0) == 1 &&
                      OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pub,
                                                       publen) == 1 &&
                      OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_PRIV_KEY, d) == 1,
                  CF_E_CRYPTO);
    params = OSSL_PARAM_BLD_to_param(bld);
    ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
    CF_ENSURE_OUT(params != NULL && ctx != NULL, CF_E_NOMEM);
    CF_ENSURE_OUT(EVP_PKEY_fromdata_init(ctx) == 1 &&
                      EVP_PKEY_fromdata(ctx, &pk, EVP_PKEY_KEYPAIR, params) == 1,
                  CF_E_CRYPTO);
    *ret = pk;
    pk = NULL;
    rc = 0;
out:
    if (rc < 0)
        ERR_clear_error();
    EVP_PKEY_free(pk);
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params); /* clears the secure copy of d */
    OSSL_PARAM_BLD_free(bld);
    EC_POINT_free(q);
    BN_clear_free(d);
    EC_GROUP_free(group);
    return rc;
}

int cf_key_from_private(cf_key_type type, const uint8_t *priv, size_t len, cf_key **ret)
{
    EVP_PKEY *pk = NULL;

    CF_ENSURE(valid_type(type) && priv != NULL, CF_E_INVAL);
    if (len != cf_key_type_priv_len(type))
        return cf_err_set(CF_E_PARSE, "%s private key must be %zu bytes, not %zu",
                          cf_key_type_name(type), cf_key_type_priv_len(type), len);
    if (is_ec(type)) {
        CF_GUARD(ec_from_scalar(type, priv, len, &pk));
    } else {
        /* RFC 7748 §5 / RFC 8032 §5.1.5: any 32 bytes are a valid private key. */
        pk = EVP_PKEY_new_raw_private_key_ex(NULL, evp_name(type), NULL, priv, len);
        if (pk == NULL)
            return ossl_fail(CF_E_CRYPTO);
    }
    return wrap(pk, type, true, ret);
}

int cf_key_export_private(const cf_key *k, cf_secret *ret)
{
    cf_secret s = {NULL, 0};
    BIGNUM *d = NULL;
    size_t n = cf_key_type_priv_len(k->type), got = n;
    int rc = CF_E_CRYPTO;

    if (!k->priv)
        return cf_err_set(CF_E_INVAL, "key has no private part");
    CF_GUARD(cf_secret_new(&s, n));
    if (is_ec(k->type)) {
        CF_ENSURE_OUT(EVP_PKEY_get_bn_param(k->pkey, OSSL_PKEY_PARAM_PRIV_KEY, &d) == 1,
                      CF_E_CRYPTO);
        CF_ENSURE_OUT(BN_bn2binpad(d, s.p, (int)n) == (int)n, CF_E_CRYPTO);
    } else {
        CF_ENSURE_OUT(EVP_PKEY_get_raw_private_key(k->pkey, s.p, &got) == 1 && got == n,
                      CF_E_CRYPTO);
    }
    *ret = s;
    s.p = NULL;
    rc = 0;
out:
    if (rc < 0)
        ERR_clear_error();
    BN_clear_free(d);
    cf_secret_free(&s);
    return rc;
}

/* ---- PEM / DER ---- */

static bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

/*
 * RFC 7468 §2 textual encoding, strictly: the input starts with the
 * encapsulation boundary, carries one block whose label is `label`, has no
 * RFC 1421 headers and nothing but whitespace after the end boundary.
 * *ret_der is from OPENSSL_secure_malloc when `secret` (free with
 * OPENSSL_secure_clear_free), OPENSSL_malloc otherwise.
 */
static int pem_decode(const char *pem, size_t len, const char *label, bool secret,
                      uint8_t **ret_der, size_t *ret_len)
{
    static const char begin[] = "-----BEGIN ";
    BIO *bio = NULL;
    char *name = NULL, *header = NULL;
    unsigned char *data = NULL;
    long dlen = 0, rem;
    char *rest = NULL;
    int rc = CF_E_PARSE;

    CF_ENSURE(pem != NULL, CF_E_INVAL);
    if (len > CF_KEY_MAX_PEM_BYTES)
        return cf_err_set(CF_E_TOO_LARGE, "PEM of %zu bytes exceeds the limit of %u", len,
                          (unsigned)CF_KEY_MAX_PEM_BYTES);
    if (memchr(pem, 0, len) != NULL)
        return cf_err_set(CF_E_PARSE, "PEM contains a NUL byte");
    if (len < sizeof(begin) - 1 || memcmp(pem, begin, sizeof(begin) - 1) != 0)
        return cf_err_set(CF_E_PARSE, "input does not start with a PEM boundary");
    bio = BIO_new_mem_buf(pem, (int)len);
    CF_ENSURE_OUT(bio != NULL, CF_E_NOMEM);
    if (PEM_read_bio_ex(bio, &name, &header, &data, &dlen,
                        PEM_FLAG_ONLY_B64 | (secret ? PEM_FLAG_SECURE : 0)) != 1 ||
        dlen <= 0) {
        rc = cf_err_set(CF_E_PARSE, "malformed PEM");
        goto out;
    }
    if (strcmp(name, label) != 0) {
        rc = cf_err_set(CF_E_PARSE, "expected a PEM '%s' block, not '%.40s'", label, name);
        goto out;
    }
    if (header != NULL && header[0] != '\0') {
        rc = cf_err_set(CF_E_PARSE, "PEM headers are not accepted");
        goto out;
    }
    rem = BIO_get_mem_data(bio, &rest);
    for (long i = 0; i < rem; i++) {
        if (!is_space(rest[i])) {
            rc = cf_err_set(CF_E_TRAILING, "unexpected data after the PEM block");
            goto out;
        }
    }
    *ret_der = data;
    *ret_len = (size_t)dlen;
    data = NULL;
    rc = 0;
out:
    if (rc < 0)
        ERR_clear_error();
    BIO_free(bio);
    if (secret) {
        OPENSSL_secure_free(name);
        OPENSSL_secure_free(header);
        OPENSSL_secure_clear_free(data, dlen > 0 ? (size_t)dlen : 0);
    } else {
        OPENSSL_free(name);
        OPENSSL_free(header);
        OPENSSL_free(data);
    }
    return rc;
}

/* Re-creates a decoded key through the raw constructors, so that every cf_key
 * has one canonical internal form (named curve, uncompressed point, no
 * attributes) and passes the same validation whatever its source. */
static int normalise(EVP_PKEY *pk, bool want_priv, cf_key **ret)
{
    cf_key *tmp = NULL;
    cf_secret s = {NULL, 0};
    uint8_t pub[CF_KEY_MAX_PUB_LEN];
    size_t n = 0;
    cf_key_type type;
    int rc;

    CF_GUARD(classify(pk, &type));
    if (want_priv) {
        CF_GUARD(check_evp(pk, true));
        /* Borrow pk through a temporary wrapper only to reuse the exporter. */
        cf_key view = {type, true, pk};
        rc = cf_key_export_private(&view, &s);
        if (rc == 0)
            rc = cf_key_from_private(type, s.p, s.len, &tmp);
        cf_secret_free(&s);
        CF_GUARD(rc);
        /* A PKCS#8 EC key may carry its own public key: it must be d*G. */
        if (is_ec(type)) {
            cf_key pubview = {type, false, pk};
            if (!cf_key_public_eq(tmp, &pubview)) {
                cf_key_free(tmp);
                return cf_err_set(CF_E_CRYPTO, "private key does not match its public key");
            }
        }
    } else {
        cf_key view = {type, false, pk};
        CF_GUARD(cf_key_export_public(&view, pub, sizeof(pub), &n));
        CF_GUARD(cf_key_from_public(type, pub, n, &tmp));
    }
    *ret = tmp;
    return 0;
}

int cf_key_from_private_pem(const char *pem, size_t len, cf_key **ret)
{
    uint8_t *der = NULL;
    size_t dlen = 0;
    const unsigned char *p;
    PKCS8_PRIV_KEY_INFO *p8 = NULL;
    EVP_PKEY *pk = NULL;
    int rc;

    CF_GUARD(pem_decode(pem, len, "PRIVATE KEY", true, &der, &dlen));
    p = der;
    p8 = d2i_PKCS8_PRIV_KEY_INFO(NULL, &p, (long)dlen);
    if (p8 == NULL) {
        rc = cf_err_set(CF_E_PARSE, "malformed PKCS#8 private key");
        goto out;
    }
    if ((size_t)(p - der) != dlen) {
        rc = cf_err_set(CF_E_TRAILING, "unexpected bytes after the PKCS#8 structure");
        goto out;
    }
    pk = EVP_PKCS82PKEY(p8);
    if (pk == NULL) {
        rc = cf_err_set(CF_E_UNSUPPORTED, "unsupported or malformed PKCS#8 private key");
        goto out;
    }
    rc = normalise(pk, true, ret);
out:
    ERR_clear_error();
    EVP_PKEY_free(pk);
    PKCS8_PRIV_KEY_INFO_free(p8);
    OPENSSL_secure_clear_free(der, dlen);
    return rc;
}

int cf_key_from_spki_der(const uint8_t *der, size_t len, cf_key **ret)
{
    const unsigned char *p = der;
    EVP_PKEY *pk = NULL;
    int rc;

    CF_ENSURE(der != NULL, CF_E_INVAL);
    if (len > CF_KEY_MAX_PEM_BYTES)
        return cf_err_set(CF_E_TOO_LARGE, "SubjectPublicKeyInfo of %zu bytes is too large", len);
    pk = d2i_PUBKEY(NULL, &p, (long)len);
    if (pk == NULL) {
        ERR_clear_error();
        return cf_err_set(CF_E_PARSE, "malformed or unsupported SubjectPublicKeyInfo");
    }
    if ((size_t)(p - der) != len)
        rc = cf_err_set(CF_E_TRAILING, "unexpected bytes after the SubjectPublicKeyInfo");
    else
        rc = normalise(pk, false, ret);
    ERR_clear_error();
    EVP_PKEY_free(pk);
    return rc;
}

int cf_key_from_public_pem(const char *pem, size_t len, cf_key **ret)
{
    uint8_t *der = NULL;
    size_t dlen = 0;
    int rc;

    CF_GUARD(pem_decode(pem, len, "PUBLIC KEY", false, &der, &dlen));
    rc = cf_key_from_spki_der(der, dlen, ret);
    OPENSSL_free(der);
    return rc;
}

/* Copies a memory BIO's contents to out, NUL-terminated. */
static int bio_to_buf(BIO *bio, cf_buf *out)
{
    char *p = NULL;
    long n = BIO_get_mem_data(bio, &p);

    CF_ENSURE(n > 0 && p != NULL, CF_E_CRYPTO);
    CF_GUARD(cf_buf_put(out, p, (size_t)n));
    return cf_buf_nul_terminate(out);
}

int cf_key_export_private_pem(const cf_key *k, cf_buf *out)
{
    BIO *bio = NULL;
    size_t before = out->len;
    int rc = CF_E_CRYPTO;

    if (!k->priv)
        return cf_err_set(CF_E_INVAL, "key has no private part");
    if (!out->secret)
        return cf_err_set(CF_E_INVAL, "private key PEM needs a secret buffer");
    /* Secure-heap BIO: its buffer is cleared when freed. */
    bio = BIO_new(BIO_s_secmem());
    CF_ENSURE_OUT(bio != NULL, CF_E_NOMEM);
    /* OpenSSL 3 writes unencrypted PKCS#8 PrivateKeyInfo ("PRIVATE KEY"). */
    CF_ENSURE_OUT(PEM_write_bio_PrivateKey(bio, k->pkey, NULL, NULL, 0, NULL, NULL) == 1,
                  CF_E_CRYPTO);
    rc = bio_to_buf(bio, out);
out:
    if (rc < 0) {
        ERR_clear_error();
        if (out->len > before)
            cf_wipe(out->data + before, out->len - before);
        out->len = CF_MIN(out->len, before);
    }
    BIO_free(bio);
    return rc;
}

int cf_key_export_public_pem(const cf_key *k, cf_buf *out)
{
    BIO *bio = BIO_new(BIO_s_mem());
    size_t before = out->len;
    int rc = CF_E_CRYPTO;

    CF_ENSURE(bio != NULL, CF_E_NOMEM);
    if (PEM_write_bio_PUBKEY(bio, k->pkey) == 1)
        rc = bio_to_buf(bio, out);
    if (rc < 0) {
        ERR_clear_error();
        out->len = CF_MIN(out->len, before);
    }
    BIO_free(bio);
    return rc;
}

int cf_key_export_spki_der(const cf_key *k, cf_buf *out)
{
    unsigned char *der = NULL;
    int n = i2d_PUBKEY(k->pkey, &der);
    int rc;

    if (n <= 0)
        return ossl_fail(CF_E_CRYPTO);
    rc = cf_buf_put(out, der, (size_t)n);
    OPENSSL_free(der);
    return rc;
}

/* ---- thumbprint ---- */

int cf_key_thumbprint(const cf_key *k, char out[CF_KEY_THUMBPRINT_LEN + 1])
{
    uint8_t pub[CF_KEY_MAX_PUB_LEN], digest[CF_SHA256_LEN];
    char x[CF_KEY_MAX_PUB_LEN * 2], y[CF_KEY_MAX_PUB_LEN * 2], json[512];
    size_t n = 0, c;

    CF_GUARD(cf_key_export_public(k, pub, sizeof(pub), &n));
    /* RFC 7638 §3.2: only the required members, in lexicographic order, no
     * whitespace; RFC 7638 §3.2.1 (EC: crv, kty, x, y), RFC 8037 §2 (OKP: crv, kty, x). */
    if (is_ec(k->type)) {
        c = ec_coord_len(k->type);
        cf_b64url_encode(pub + 1, c, x);
        cf_b64url_encode(pub + 1 + c, c, y);
        CF_GUARD(cf_fmt(json, sizeof(json), "{\"crv\":\"%s\",\"kty\":\"EC\",\"x\":\"%s\",\"y\":\"%s\"}",
                        cf_key_type_name(k->type), x, y));
    } else {
        cf_b64url_encode(pub, n, x);
        CF_GUARD(cf_fmt(json, sizeof(json), "{\"crv\":\"%s\",\"kty\":\"OKP\",\"x\":\"%s\"}",
                        cf_key_type_name(k->type), x));
    }
    CF_GUARD(cf_sha256(json, strlen(json), digest));
    cf_b64url_encode(digest, sizeof(digest), out);
    return 0;
}

/* ---- signatures ---- */

int cf_sig_raw_to_der(cf_key_type type, const uint8_t *raw, size_t len, cf_buf *out)
{
    ECDSA_SIG *sig = NULL;
    BIGNUM *r = NULL, *s = NULL;
    const uint8_t *rp = NULL, *sp = NULL;
    unsigned char *der = NULL;
    size_t n = ec_coord_len(type);
    cf_buf in;
    int dlen, rc = CF_E_CRYPTO;

    CF_ENSURE(is_ec(type) && raw != NULL, CF_E_INVAL);
    if (len != 2 * n)
        return cf_err_set(CF_E_SIGNATURE, "%s signature must be %zu bytes, not %zu",
                          cf_key_type_name(type), 2 * n, len);
    /* RFC 7518 §3.4: R and S as fixed-length big-endian octet strings. */
    cf_buf_view(&in, raw, len);
    CF_GUARD(cf_buf_get_ptr(&in, n, &rp));
    CF_GUARD(cf_buf_get_ptr(&in, n, &sp));
    sig = ECDSA_SIG_new();
    r = BN_bin2bn(rp, (int)n, NULL);
    s = BN_bin2bn(sp, (int)n, NULL);
    CF_ENSURE_OUT(sig != NULL && r != NULL && s != NULL, CF_E_NOMEM);
    CF_ENSURE_OUT(ECDSA_SIG_set0(sig, r, s) == 1, CF_E_CRYPTO);
    r = s = NULL;
    dlen = i2d_ECDSA_SIG(sig, &der);
    CF_ENSURE_OUT(dlen > 0, CF_E_CRYPTO);
    rc = cf_buf_put(out, der, (size_t)dlen);
out:
    if (rc < 0)
        ERR_clear_error();
    OPENSSL_free(der);
    BN_free(r);
    BN_free(s);
    ECDSA_SIG_free(sig);
    return rc;
}

int cf_sig_der_to_raw(cf_key_type type, const uint8_t *der, size_t len, cf_buf *out)
{
    ECDSA_SIG *sig = NULL;
    const BIGNUM *r = NULL, *s = NULL;
    const unsigned char *p = der;
    unsigned char *re = NULL;
    uint8_t *dst = NULL;
    size_t n = ec_coord_len(type);
    int relen, rc = CF_E_SIGNATURE;

    CF_ENSURE(is_ec(type) && der != NULL, CF_E_INVAL);
    if (len == 0 || len > CF_KEY_MAX_SIG_LEN)
        return cf_err_set(CF_E_SIGNATURE, "DER signature of %zu bytes has an impossible length",
                          len);
    sig = d2i_ECDSA_SIG(NULL, &p, (long)len);
    CF_ENSURE_OUT(sig != NULL && (size_t)(p - der) == len, CF_E_SIGNATURE);
    /* DER is canonical: the re-encoding must give back the same bytes. */
    relen = i2d_ECDSA_SIG(sig, &re);
    CF_ENSURE_OUT(relen > 0 && (size_t)relen == len && memcmp(re, der, len) == 0, CF_E_SIGNATURE);
    ECDSA_SIG_get0(sig, &r, &s);
    CF_ENSURE_OUT(BN_num_bytes(r) <= (int)n && BN_num_bytes(s) <= (int)n, CF_E_SIGNATURE);
    CF_GUARD_OUT(cf_buf_put_space(out, 2 * n, &dst));
    if (BN_bn2binpad(r, dst, (int)n) != (int)n || BN_bn2binpad(s, dst + n, (int)n) != (int)n) {
        out->len -= 2 * n;
        rc = CF_E_CRYPTO;
        goto out;
    }
    rc = 0;
out:
    if (rc == CF_E_SIGNATURE)
        cf_err_set(rc, "malformed DER ECDSA signature");
    if (rc < 0)
        ERR_clear_error();
    OPENSSL_free(re);
    ECDSA_SIG_free(sig);
    return rc;
}

int cf_key_sign(const cf_key *k, cf_sig_format fmt, const uint8_t *msg, size_t len, cf_buf *sig)
{
    EVP_MD_CTX *ctx = NULL;
    uint8_t tmp[CF_KEY_MAX_SIG_LEN];
    size_t slen = sizeof(tmp);
    int rc = CF_E_CRYPTO;

    CF_ENSURE(msg != NULL || len == 0, CF_E_INVAL);
    CF_ENSURE(fmt == CF_SIG_RAW || fmt == CF_SIG_DER, CF_E_INVAL);
    if (k->type == CF_KEY_X25519)
        return cf_err_set(CF_E_UNSUPPORTED, "X25519 keys cannot sign");
    if (!k->priv)
        return cf_err_set(CF_E_INVAL, "signing needs a private key");
    ctx = EVP_MD_CTX_new();
    CF_ENSURE_OUT(ctx != NULL, CF_E_NOMEM);
    /* Ed25519: no digest (pure EdDSA, RFC 8032 §5.1.6). */
    CF_ENSURE_OUT(EVP_DigestSignInit_ex(ctx, NULL, sig_md(k->type), NULL, NULL, k->pkey, NULL) ==
                      1,
                  CF_E_CRYPTO);
    CF_ENSURE_OUT(EVP_DigestSign(ctx, tmp, &slen, msg ? msg : (const uint8_t *)"", len) == 1,
                  CF_E_CRYPTO);
    if (is_ec(k->type) && fmt == CF_SIG_RAW)
        rc = cf_sig_der_to_raw(k->type, tmp, slen, sig);
    else
        rc = cf_buf_put(sig, tmp, slen);
out:
    if (rc < 0)
        ERR_clear_error();
    EVP_MD_CTX_free(ctx);
    return rc;
}

int cf_key_verify(const cf_key *k, cf_sig_format fmt, const uint8_t *msg, size_t len,
                  const uint8_t *sig, size_t sig_len)
{
    EVP_MD_CTX *ctx = NULL;
    cf_buf der;
    const uint8_t *s = sig;
    size_t slen = sig_len;
    int rc = CF_E_SIGNATURE;

    CF_ENSURE(msg != NULL || len == 0, CF_E_INVAL);
    CF_ENSURE(fmt == CF_SIG_RAW || fmt == CF_SIG_DER, CF_E_INVAL);
    if (k->type == CF_KEY_X25519)
        return cf_err_set(CF_E_UNSUPPORTED, "X25519 keys cannot verify signatures");
    if (sig == NULL)
        return cf_err_set(CF_E_SIGNATURE, "missing signature");
    cf_buf_init(&der, CF_KEY_MAX_SIG_LEN);
    if (k->type == CF_KEY_ED25519) {
        if (sig_len != CF_ED25519_SIG_LEN) {
            rc = cf_err_set(CF_E_SIGNATURE, "Ed25519 signature must be 64 bytes, not %zu",
                            sig_len);
            goto out;
        }
    } else if (fmt == CF_SIG_RAW) {
        CF_GUARD_OUT(cf_sig_raw_to_der(k->type, sig, sig_len, &der));
        s = der.data;
        slen = der.len;
    } else if (sig_len == 0 || sig_len > CF_KEY_MAX_SIG_LEN) {
        rc = cf_err_set(CF_E_SIGNATURE, "DER signature of %zu bytes has an impossible length",
                        sig_len);
        goto out;
    }
    ctx = EVP_MD_CTX_new();
    CF_ENSURE_OUT(ctx != NULL, CF_E_NOMEM);
    CF_ENSURE_OUT(EVP_DigestVerifyInit_ex(ctx, NULL, sig_md(k->type), NULL, NULL, k->pkey, NULL) ==
                      1,
                  CF_E_CRYPTO);
    /* OpenSSL's ECDSA verify rejects r or s outside [1, n-1] and DER that does
     * not re-encode to the same bytes (non-canonical or trailing data). */
    if (EVP_DigestVerify(ctx, s, slen, msg ? msg : (const uint8_t *)"", len) != 1) {
        rc = cf_err_set(CF_E_SIGNATURE, "%s signature did not verify", cf_key_type_name(k->type));
        goto out;
    }
    rc = 0;
out:
    if (rc < 0)
        ERR_clear_error();
    EVP_MD_CTX_free(ctx);
    cf_buf_free(&der);
    return rc;
}
