#include <openssl/evp.h>
#include <openssl/x509.h>
#include <string.h>

#include "base/buf.h"
#include "base/err.h"
#include "base/limits.h"
#include "base/parse.h"
#include "base/secmem.h"
#include "crypto/keys.h"
#include "test.h"

static const cf_key_type all_types[] = {CF_KEY_X25519, CF_KEY_ED25519, CF_KEY_P256, CF_KEY_P384};
static const cf_key_type sig_types[] = {CF_KEY_ED25519, CF_KEY_P256, CF_KEY_P384};

/* P-256 group order n (SEC 2 §2.4.2). */
static const char p256_order_hex[] =
    "ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551";

static size_t unhex(const char *h, uint8_t *out, size_t cap)
{
    size_t n = strlen(h) / 2;
    if (n > cap || cf_hex_decode(h, out, n) != 0)
        abort();
    return n;
}

static void test_type_tables(void)
{
    T_STREQ(cf_key_type_name(CF_KEY_X25519), "X25519");
    T_STREQ(cf_key_type_name(CF_KEY_ED25519), "Ed25519");
    T_STREQ(cf_key_type_name(CF_KEY_P256), "P-256");
    T_STREQ(cf_key_type_name(CF_KEY_P384), "P-384");
    T_STREQ(cf_key_type_name((cf_key_type)99), "?");
    T_EQ(cf_key_type_pub_len(CF_KEY_P256), 65);
    T_EQ(cf_key_type_pub_len(CF_KEY_P384), 97);
    T_EQ(cf_key_type_pub_len(CF_KEY_ED25519), 32);
    T_EQ(cf_key_type_priv_len(CF_KEY_P384), 48);
    T_EQ(cf_key_type_sig_len(CF_KEY_P256), 64);
    T_EQ(cf_key_type_sig_len(CF_KEY_P384), 96);
    T_EQ(cf_key_type_sig_len(CF_KEY_X25519), 0);
    T_ERR(cf_key_generate((cf_key_type)99, &(cf_key *){NULL}), CF_E_INVAL);
}

/* Raw public and private forms round-trip for every type. */
static void test_raw_roundtrip(void)
{
    for (size_t i = 0; i < CF_ARRAY_LEN(all_types); i++) {
        cf_key_type t = all_types[i];
        cf_key *k = NULL, *pub = NULL, *priv = NULL, *po = NULL;
        uint8_t p1[CF_KEY_MAX_PUB_LEN], p2[CF_KEY_MAX_PUB_LEN];
        size_t n1 = 0, n2 = 0;
        cf_secret s = {NULL, 0}, s2 = {NULL, 0};

        T_OK(cf_key_generate(t, &k));
        T_EQ(cf_key_get_type(k), t);
        T_ASSERT(cf_key_has_private(k));
        T_ASSERT(cf_key_evp(k) != NULL);
        T_OK(cf_key_export_public(k, p1, sizeof(p1), &n1));
        T_EQ(n1, cf_key_type_pub_len(t));
        if (t == CF_KEY_P256 || t == CF_KEY_P384)
            T_EQ(p1[0], 0x04);
        T_ERR(cf_key_export_public(k, p1, n1 - 1, &n2), CF_E_INVAL);
        T_OK(cf_key_from_public(t, p1, n1, &pub));
        T_ASSERT(!cf_key_has_private(pub));
        T_ASSERT(cf_key_public_eq(k, pub));
        T_OK(cf_key_export_public(pub, p2, sizeof(p2), &n2));
        T_EQ(n2, n1);
        T_MEMEQ(p1, p2, n1);

        T_OK(cf_key_export_private(k, &s));
        T_EQ(s.len, cf_key_type_priv_len(t));
        T_OK(cf_key_from_private(t, s.p, s.len, &priv));
        T_ASSERT(cf_key_has_private(priv));
        T_ASSERT(cf_key_public_eq(k, priv));
        T_OK(cf_key_export_private(priv, &s2));
        T_EQ(s2.len, s.len);
        T_MEMEQ(s.p, s2.p, s.len);
        /* A public key has nothing to export. */
        T_ERR(cf_key_export_private(pub, &s2), CF_E_INVAL);

        T_OK(cf_key_public_only(k, &po));
        T_ASSERT(!cf_key_has_private(po));
        T_ASSERT(cf_key_public_eq(po, k));

        cf_secret_free(&s);
        cf_secret_free(&s2);
        cf_key_free(k);
        cf_key_free(pub);
        cf_key_free(priv);
        cf_key_free(po);
    }
}

static void test_public_eq(void)
{
    cf_key *a = NULL, *b = NULL, *c = NULL;

    T_OK(cf_key_generate(CF_KEY_P256, &a));
    T_OK(cf_key_generate(CF_KEY_P256, &b));
    T_OK(cf_key_generate(CF_KEY_P384, &c));
    T_ASSERT(cf_key_public_eq(a, a));
    T_ASSERT(!cf_key_public_eq(a, b));
    T_ASSERT(!cf_key_public_eq(a, c));
    T_ASSERT(!cf_key_public_eq(a, NULL));
    cf_key_free(a);
    cf_key_free(b);
    cf_key_free(c);
}

static void test_raw_negative(void)
{
    cf_key *k = NULL, *bad = NULL;
    uint8_t pub[CF_KEY_MAX_PUB_LEN], priv[CF_KEY_MAX_PRIV_LEN];
    size_t n = 0;

    T_OK(cf_key_generate(CF_KEY_P256, &k));
    T_OK(cf_key_export_public(k, pub, sizeof(pub), &n));
    /* Wrong lengths for every type. */
    T_ERR(cf_key_from_public(CF_KEY_P256, pub, 64, &bad), CF_E_PARSE);
    T_ERR(cf_key_from_public(CF_KEY_P256, pub, 66, &bad), CF_E_PARSE);
    T_ERR(cf_key_from_public(CF_KEY_P384, pub, 65, &bad), CF_E_PARSE);
    T_ERR(cf_key_from_public(CF_KEY_ED25519, pub, 31, &bad), CF_E_PARSE);
    T_ERR(cf_key_from_public(CF_KEY_X25519, pub, 33, &bad), CF_E_PARSE);
    T_ERR(cf_key_from_public((cf_key_type)0, pub, 32, &bad), CF_E_INVAL);
    /* Off-curve point: y changed. */
    pub[64] ^= 0x01;
    T_ERR(cf_key_from_public(CF_KEY_P256, pub, 65, &bad), CF_E_PARSE);
    pub[64] ^= 0x01;
    /* Compressed / hybrid prefixes are refused for the raw form. */
    pub[0] = 0x02;
    T_ERR(cf_key_from_public(CF_KEY_P256, pub, 65, &bad), CF_E_PARSE);
    pub[0] = 0x04;
    /* Coordinate >= p. */
    memset(pub + 1, 0xff, 32);
    T_ERR(cf_key_from_public(CF_KEY_P256, pub, 65, &bad), CF_E_PARSE);
    /* The point at infinity (all zero coordinates). */
    memset(pub + 1, 0, 64);
    T_ERR(cf_key_from_public(CF_KEY_P256, pub, 65, &bad), CF_E_PARSE);
    T_ASSERT(bad == NULL);

    /* EC scalars: 0, n, > n; wrong lengths. */
    memset(priv, 0, sizeof(priv));
    T_ERR(cf_key_from_private(CF_KEY_P256, priv, 32, &bad), CF_E_RANGE);
    unhex(p256_order_hex, priv, sizeof(priv));
    T_ERR(cf_key_from_private(CF_KEY_P256, priv, 32, &bad), CF_E_RANGE);
    memset(priv, 0xff, sizeof(priv));
    T_ERR(cf_key_from_private(CF_KEY_P256, priv, 32, &bad), CF_E_RANGE);
    T_ERR(cf_key_from_private(CF_KEY_P384, priv, 48, &bad), CF_E_RANGE);
    T_ERR(cf_key_from_private(CF_KEY_P256, priv, 31, &bad), CF_E_PARSE);
    T_ERR(cf_key_from_private(CF_KEY_P384, priv, 32, &bad), CF_E_PARSE);
    T_ERR(cf_key_from_private(CF_KEY_ED25519, priv, 33, &bad), CF_E_PARSE);
    T_ERR(cf_key_from_private(CF_KEY_X25519, priv, 0, &bad), CF_E_PARSE);
    /* n - 1 is the largest valid scalar. */
    unhex(p256_order_hex, priv, sizeof(priv));
    priv[31] -= 1;
    T_OK(cf_key_from_private(CF_KEY_P256, priv, 32, &bad));
    cf_key_free(bad);
    cf_key_free(k);
}

static void test_pem_roundtrip(void)
{
    for (size_t i = 0; i < CF_ARRAY_LEN(all_types); i++) {
        cf_key_type t = all_types[i];
        cf_key *k = NULL, *priv = NULL, *pub = NULL, *pub2 = NULL;
        cf_buf spem, ppem, der;

        cf_buf_init_secret(&spem, CF_KEY_MAX_PEM_BYTES);
        cf_buf_init(&ppem, CF_KEY_MAX_PEM_BYTES);
        cf_buf_init(&der, CF_KEY_MAX_PEM_BYTES);
        T_OK(cf_key_generate(t, &k));

        T_OK(cf_key_export_private_pem(k, &spem));
        T_ASSERT(strncmp((const char *)spem.data, "-----BEGIN PRIVATE KEY-----\n", 28) == 0);
        T_EQ(strlen((const char *)spem.data), spem.len);
        T_OK(cf_key_from_private_pem((const char *)spem.data, spem.len, &priv));
        T_ASSERT(cf_key_has_private(priv));
        T_EQ(cf_key_get_type(priv), t);
        T_ASSERT(cf_key_public_eq(k, priv));

        T_OK(cf_key_export_public_pem(k, &ppem));
        T_ASSERT(strncmp((const char *)ppem.data, "-----BEGIN PUBLIC KEY-----\n", 27) == 0);
        T_OK(cf_key_from_public_pem((const char *)ppem.data, ppem.len, &pub));
        T_ASSERT(!cf_key_has_private(pub));
        T_ASSERT(cf_key_public_eq(k, pub));

        T_OK(cf_key_export_spki_der(k, &der));
        T_OK(cf_key_from_spki_der(der.data, der.len, &pub2));
        T_ASSERT(cf_key_public_eq(k, pub2));

        /* Wrong type of PEM for each importer. */
        cf_key *bad = NULL;
        T_ERR(cf_key_from_private_pem((const char *)ppem.data, ppem.len, &bad), CF_E_PARSE);
        T_ERR(cf_key_from_public_pem((const char *)spem.data, spem.len, &bad), CF_E_PARSE);
        /* Trailing DER byte. */
        T_OK(cf_buf_put_u8(&der, 0));
        T_ERR(cf_key_from_spki_der(der.data, der.len, &bad), CF_E_TRAILING);
        T_ASSERT(bad == NULL);

        cf_key_free(k);
        cf_key_free(priv);
        cf_key_free(pub);
        cf_key_free(pub2);
        cf_buf_free(&spem);
        cf_buf_free(&ppem);
        cf_buf_free(&der);
    }
}

/* Imports text through the given PEM importer and returns its result. */
static int pem_try(int (*fn)(const char *, size_t, cf_key **), const char *s)
{
    cf_key *k = NULL;
    int rc = fn(s, strlen(s), &k);
    cf_key_free(k);
    return rc;
}

static void test_pem_negative(void)
{
    cf_key *k = NULL, *pubk = NULL;
    cf_buf pem, pub;
    char *text = NULL;
    EVP_PKEY *other = NULL;

    cf_buf_init_secret(&pem, CF_KEY_MAX_PEM_BYTES);
    cf_buf_init(&pub, CF_KEY_MAX_PEM_BYTES);
    T_OK(cf_key_generate(CF_KEY_ED25519, &k));
    T_OK(cf_key_export_private_pem(k, &pem));
    T_OK(cf_key_export_public_pem(k, &pub));

    T_ERR(pem_try(cf_key_from_private_pem, ""), CF_E_PARSE);
    T_ERR(pem_try(cf_key_from_private_pem, "garbage"), CF_E_PARSE);
    T_ERR(pem_try(cf_key_from_public_pem, "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"),
          CF_E_PARSE);
    T_ERR(pem_try(cf_key_from_public_pem, "-----BEGIN PUBLIC KEY-----\n!!!!\n-----END PUBLIC KEY-----\n"),
          CF_E_PARSE);
    T_ERR(pem_try(cf_key_from_private_pem,
                  "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIA==\n"), /* no END line */
          CF_E_PARSE);
    /* A certificate label is not a key. */
    T_ERR(pem_try(cf_key_from_public_pem,
                  "-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\n"),
          CF_E_PARSE);

    /* Leading text, trailing text, a second block, PEM headers, embedded NUL. */
    text = calloc(1, 2 * pem.len + 64);
    T_ASSERT(text != NULL);
    T_OK(cf_fmt(text, 2 * pem.len + 64, "junk\n%s", (const char *)pem.data));
    T_ERR(pem_try(cf_key_from_private_pem, text), CF_E_PARSE);
    T_OK(cf_fmt(text, 2 * pem.len + 64, "%sjunk\n", (const char *)pem.data));
    T_ERR(pem_try(cf_key_from_private_pem, text), CF_E_TRAILING);
    T_OK(cf_fmt(text, 2 * pem.len + 64, "%s%s", (const char *)pem.data, (const char *)pem.data));
    T_ERR(pem_try(cf_key_from_private_pem, text), CF_E_TRAILING);
    T_OK(cf_fmt(text, 2 * pem.len + 64, "%s\n \n", (const char *)pem.data));
    T_OK(pem_try(cf_key_from_private_pem, text)); /* trailing whitespace is fine */
    T_OK(cf_fmt(text, 2 * pem.len + 64, "-----BEGIN PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\n\n%s",
                (const char *)pem.data + 28));
    T_FAILS(pem_try(cf_key_from_private_pem, text));
    cf_key *bad = NULL;
    T_ERR(cf_key_from_private_pem((const char *)pem.data, pem.len + 1, &bad), CF_E_PARSE); /* NUL */
    T_ERR(cf_key_from_private_pem((const char *)pem.data, CF_KEY_MAX_PEM_BYTES + 1, &bad),
          CF_E_TOO_LARGE);
    /* Corrupt base64 inside the private key. */
    memcpy(text, pem.data, pem.len + 1);
    text[40] = text[40] == 'A' ? 'B' : 'A';
    T_FAILS(pem_try(cf_key_from_private_pem, text));

    /* Private PEM export needs a secret buffer, and a private key. */
    cf_buf plain;
    cf_buf_init(&plain, CF_KEY_MAX_PEM_BYTES);
    T_ERR(cf_key_export_private_pem(k, &plain), CF_E_INVAL);
    T_EQ(plain.len, 0);
    cf_buf_free(&plain);
    T_OK(cf_key_from_public_pem((const char *)pub.data, pub.len, &pubk));
    T_ERR(cf_key_export_private_pem(pubk, &pem), CF_E_INVAL);

    /* Keys of types we do not support: P-521, secp256k1, RSA. */
    other = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-521");
    T_ASSERT(other != NULL);
    T_ERR(cf_key_from_evp(other, &bad), CF_E_UNSUPPORTED);
    {
        unsigned char *der = NULL;
        int dn = i2d_PUBKEY(other, &der);
        T_ASSERT(dn > 0);
        T_ERR(cf_key_from_spki_der(der, (size_t)dn, &bad), CF_E_UNSUPPORTED);
        OPENSSL_free(der);
    }
    EVP_PKEY_free(other);
    other = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "secp256k1");
    T_ASSERT(other != NULL);
    T_ERR(cf_key_from_evp(other, &bad), CF_E_UNSUPPORTED);
    EVP_PKEY_free(other);
    other = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
    T_ASSERT(other != NULL);
    T_ERR(cf_key_from_evp(other, &bad), CF_E_UNSUPPORTED);
    EVP_PKEY_free(other);
    other = NULL;
    T_ASSERT(bad == NULL);

    free(text);
    cf_key_free(k);
    cf_key_free(pubk);
    cf_buf_free(&pem);
    cf_buf_free(&pub);
}

static void test_from_evp(void)
{
    EVP_PKEY *pk = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
    cf_key *k = NULL, *p = NULL;
    cf_buf sig;

    T_ASSERT(pk != NULL);
    T_OK(cf_key_from_evp(pk, &k));
    EVP_PKEY_free(pk); /* k holds its own reference */
    T_EQ(cf_key_get_type(k), CF_KEY_P384);
    T_ASSERT(cf_key_has_private(k));
    T_OK(cf_key_public_only(k, &p));
    /* A public-only EVP_PKEY is wrapped as public. */
    cf_key *p2 = NULL;
    T_OK(cf_key_from_evp(cf_key_evp(p), &p2));
    T_ASSERT(!cf_key_has_private(p2));
    cf_buf_init(&sig, 256);
    T_OK(cf_key_sign(k, CF_SIG_RAW, (const uint8_t *)"m", 1, &sig));
    T_OK(cf_key_verify(p2, CF_SIG_RAW, (const uint8_t *)"m", 1, sig.data, sig.len));
    T_ERR(cf_key_sign(p2, CF_SIG_RAW, (const uint8_t *)"m", 1, &sig), CF_E_INVAL);
    T_ERR(cf_key_from_evp(NULL, &p), CF_E_INVAL);
    cf_buf_free(&sig);
    cf_key_free(k);
    cf_key_free(p);
    cf_key_free(p2);
}

static void test_sign_verify(void)
{
    static const uint8_t msg[] = "attestation result";
    for (size_t i = 0; i < CF_ARRAY_LEN(sig_types); i++) {
        cf_key_type t = sig_types[i];
        cf_key *k = NULL, *pub = NULL, *other = NULL;
        uint8_t pb[CF_KEY_MAX_PUB_LEN];
        size_t pn = 0;
        cf_buf raw, der, conv;

        cf_buf_init(&raw, 256);
        cf_buf_init(&der, 256);
        cf_buf_init(&conv, 256);
        T_OK(cf_key_generate(t, &k));
        T_OK(cf_key_generate(t, &other));
        T_OK(cf_key_export_public(k, pb, sizeof(pb), &pn));
        T_OK(cf_key_from_public(t, pb, pn, &pub));

        T_OK(cf_key_sign(k, CF_SIG_RAW, msg, sizeof(msg), &raw));
        T_EQ(raw.len, cf_key_type_sig_len(t));
        T_OK(cf_key_sign(k, CF_SIG_DER, msg, sizeof(msg), &der));
        T_ASSERT(der.len <= CF_KEY_MAX_SIG_LEN);
        T_OK(cf_key_verify(pub, CF_SIG_RAW, msg, sizeof(msg), raw.data, raw.len));
        T_OK(cf_key_verify(pub, CF_SIG_DER, msg, sizeof(msg), der.data, der.len));
        T_OK(cf_key_verify(k, CF_SIG_RAW, msg, sizeof(msg), raw.data, raw.len));
        /* Empty message. */
        cf_buf_reset(&conv);
        T_OK(cf_key_sign(k, CF_SIG_RAW, NULL, 0, &conv));
        T_OK(cf_key_verify(pub, CF_SIG_RAW, NULL, 0, conv.data, conv.len));
        T_ERR(cf_key_verify(pub, CF_SIG_RAW, msg, 1, conv.data, conv.len), CF_E_SIGNATURE);

        /* Wrong key, tampered message, tampered signature. */
        T_ERR(cf_key_verify(other, CF_SIG_RAW, msg, sizeof(msg), raw.data, raw.len), CF_E_SIGNATURE);
        T_ERR(cf_key_verify(other, CF_SIG_DER, msg, sizeof(msg), der.data, der.len), CF_E_SIGNATURE);
        T_ERR(cf_key_verify(pub, CF_SIG_RAW, msg, sizeof(msg) - 1, raw.data, raw.len),
              CF_E_SIGNATURE);
        raw.data[5] ^= 0x40;
        T_ERR(cf_key_verify(pub, CF_SIG_RAW, msg, sizeof(msg), raw.data, raw.len), CF_E_SIGNATURE);
        raw.data[5] ^= 0x40;
        raw.data[raw.len - 1] ^= 0x01;
        T_ERR(cf_key_verify(pub, CF_SIG_RAW, msg, sizeof(msg), raw.data, raw.len), CF_E_SIGNATURE);
        raw.data[raw.len - 1] ^= 0x01;
        /* Wrong lengths. */
        T_ERR(cf_key_verify(pub, CF_SIG_RAW, msg, sizeof(msg), raw.data, raw.len - 1), CF_E_SIGNATURE);
        T_OK(cf_buf_put_u8(&raw, 0));
        T_ERR(cf_key_verify(pub, CF_SIG_RAW, msg, sizeof(msg), raw.data, raw.len), CF_E_SIGNATURE);
        raw.len--;
        T_ERR(cf_key_verify(pub, CF_SIG_RAW, msg, sizeof(msg), raw.data, 0), CF_E_SIGNATURE);
        T_ERR(cf_key_verify(pub, CF_SIG_RAW, msg, sizeof(msg), NULL, 0), CF_E_SIGNATURE);

        if (t != CF_KEY_ED25519) {
            size_t h = raw.len / 2;
            /* DER with a trailing byte, and a truncated DER. */
            T_OK(cf_buf_put_u8(&der, 0));
            T_ERR(cf_key_verify(pub, CF_SIG_DER, msg, sizeof(msg), der.data, der.len),
                  CF_E_SIGNATURE);
            T_ERR(cf_key_verify(pub, CF_SIG_DER, msg, sizeof(msg), der.data, der.len - 2),
                  CF_E_SIGNATURE);
            der.len--;
            /* A raw signature passed as DER, and vice versa. */
            T_ERR(cf_key_verify(pub, CF_SIG_DER, msg, sizeof(msg), raw.data, raw.len),
                  CF_E_SIGNATURE);
            T_ERR(cf_key_verify(pub, CF_SIG_RAW, msg, sizeof(msg), der.data, der.len),
                  CF_E_SIGNATURE);
            /* Encodings convert both ways. */
            T_OK(cf_sig_der_to_raw(t, der.data, der.len, &conv));
            cf_buf_reset(&conv);
            T_OK(cf_sig_raw_to_der(t, raw.data, raw.len, &conv));
            T_OK(cf_key_verify(pub, CF_SIG_DER, msg, sizeof(msg), conv.data, conv.len));
            /* r = 0 or s = 0. */
            uint8_t z[CF_P384_SIG_LEN];
            memcpy(z, raw.data, raw.len);
            memset(z, 0, h);
            T_ERR(cf_key_verify(pub, CF_SIG_RAW, msg, sizeof(msg), z, raw.len), CF_E_SIGNATURE);
            memcpy(z, raw.data, raw.len);
            memset(z + h, 0, h);
            T_ERR(cf_key_verify(pub, CF_SIG_RAW, msg, sizeof(msg), z, raw.len), CF_E_SIGNATURE);
            /* s >= n (all ones exceeds the order of both curves). */
            memset(z + h, 0xff, h);
            T_ERR(cf_key_verify(pub, CF_SIG_RAW, msg, sizeof(msg), z, raw.len), CF_E_SIGNATURE);
            /* r = s = n: a value equal to the group order is refused (SEC 1 §4.1.4 step 1). */
            if (t == CF_KEY_P256) {
                unhex(p256_order_hex, z, sizeof(z));
                unhex(p256_order_hex, z + 32, sizeof(z) - 32);
                T_ERR(cf_key_verify(pub, CF_SIG_RAW, msg, sizeof(msg), z, 64), CF_E_SIGNATURE);
            }
        } else {
            /* Ed25519 has one encoding, which both format names denote. */
            T_OK(cf_key_verify(pub, CF_SIG_DER, msg, sizeof(msg), raw.data, raw.len));
            T_ASSERT(der.len == raw.len);
        }

        cf_key_free(k);
        cf_key_free(pub);
        cf_key_free(other);
        cf_buf_free(&raw);
        cf_buf_free(&der);
        cf_buf_free(&conv);
    }
}

static void test_sign_unsupported(void)
{
    cf_key *x = NULL;
    cf_buf sig;
    uint8_t s[64] = {0};

    cf_buf_init(&sig, 256);
    T_OK(cf_key_generate(CF_KEY_X25519, &x));
    T_ERR(cf_key_sign(x, CF_SIG_RAW, s, 1, &sig), CF_E_UNSUPPORTED);
    T_ERR(cf_key_verify(x, CF_SIG_RAW, s, 1, s, 64), CF_E_UNSUPPORTED);
    T_ERR(cf_sig_raw_to_der(CF_KEY_ED25519, s, 64, &sig), CF_E_INVAL);
    T_ERR(cf_sig_raw_to_der(CF_KEY_P256, s, 63, &sig), CF_E_SIGNATURE);
    T_ERR(cf_sig_der_to_raw(CF_KEY_P256, s, 8, &sig), CF_E_SIGNATURE);
    T_EQ(sig.len, 0);
    cf_key_free(x);
    cf_buf_free(&sig);
}

/* Non-canonical DER (an INTEGER with a superfluous leading zero) is refused. */
static void test_der_strict(void)
{
    cf_key *k = NULL;
    cf_buf raw, der, bad;
    static const uint8_t msg[] = "m";

    cf_buf_init(&raw, 256);
    cf_buf_init(&der, 256);
    cf_buf_init(&bad, 256);
    T_OK(cf_key_generate(CF_KEY_P256, &k));
    T_OK(cf_key_sign(k, CF_SIG_DER, msg, 1, &der));
    /* SEQUENCE { INTEGER r, INTEGER s }: re-encode r with an extra 00 byte. */
    T_ASSERT(der.data[0] == 0x30 && der.data[2] == 0x02);
    {
        uint8_t rlen = der.data[3];
        T_OK(cf_buf_put_u8(&bad, 0x30));
        T_OK(cf_buf_put_u8(&bad, (uint8_t)(der.data[1] + 1)));
        T_OK(cf_buf_put_u8(&bad, 0x02));
        T_OK(cf_buf_put_u8(&bad, (uint8_t)(rlen + 1)));
        T_OK(cf_buf_put_u8(&bad, 0x00));
        T_OK(cf_buf_put(&bad, der.data + 4, der.len - 4));
    }
    T_ERR(cf_key_verify(k, CF_SIG_DER, msg, 1, bad.data, bad.len), CF_E_SIGNATURE);
    T_ERR(cf_sig_der_to_raw(CF_KEY_P256, bad.data, bad.len, &raw), CF_E_SIGNATURE);
    T_OK(cf_key_verify(k, CF_SIG_DER, msg, 1, der.data, der.len));
    cf_key_free(k);
    cf_buf_free(&raw);
    cf_buf_free(&der);
    cf_buf_free(&bad);
}

/* RFC 8032 §7.1 TEST 1 and TEST 2: public key derived from the secret, and the
 * exact signature bytes (Ed25519 is deterministic). */
static void test_ed25519_kat(void)
{
    static const struct {
        const char *sk, *pk, *msg, *sig;
    } v[] = {
        {"9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
         "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a", "",
         "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"},
        {"4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
         "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c", "72",
         "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"},
    };
    for (size_t i = 0; i < CF_ARRAY_LEN(v); i++) {
        uint8_t sk[32], pk[32], msg[8], sig[64], got[32];
        size_t mn = unhex(v[i].msg, msg, sizeof(msg)), gn = 0;
        cf_key *k = NULL, *pub = NULL;
        cf_buf s;

        unhex(v[i].sk, sk, sizeof(sk));
        unhex(v[i].pk, pk, sizeof(pk));
        unhex(v[i].sig, sig, sizeof(sig));
        cf_buf_init(&s, 128);
        T_OK(cf_key_from_private(CF_KEY_ED25519, sk, 32, &k));
        T_OK(cf_key_export_public(k, got, sizeof(got), &gn));
        T_MEMEQ(got, pk, 32);
        T_OK(cf_key_sign(k, CF_SIG_RAW, msg, mn, &s));
        T_EQ(s.len, 64);
        T_MEMEQ(s.data, sig, 64);
        T_OK(cf_key_from_public(CF_KEY_ED25519, pk, 32, &pub));
        T_OK(cf_key_verify(pub, CF_SIG_RAW, msg, mn, sig, 64));
        sig[63] ^= 0x80;
        T_ERR(cf_key_verify(pub, CF_SIG_RAW, msg, mn, sig, 64), CF_E_SIGNATURE);
        cf_key_free(k);
        cf_key_free(pub);
        cf_buf_free(&s);
    }
}

/* RFC 6979 §A.2.5 (ECDSA, 256 bits, prime field): key pair, and the
 * deterministic SHA-256 signature of "sample", which any verifier accepts. */
static void test_p256_kat(void)
{
    uint8_t d[32], want[65], got[65], sig[64];
    size_t gn = 0;
    cf_key *k = NULL;

    unhex("c9afa9d845ba75166b5c215767b1d6934e50c3db36e89b127b8a622b120f6721", d, sizeof(d));
    want[0] = 0x04;
    unhex("60fed4ba255a9d31c961eb74c6356d68c049b8923b61fa6ce669622e60f29fb6"
          "7903fe1008b8bc99a41ae9e95628bc64f2f1b20c2d7e9f5177a3c294d4462299",
          want + 1, 64);
    unhex("efd48b2aacb6a8fd1140dd9cd45e81d69d2c877b56aaf991c34d0ea84eaf3716"
          "f7cb1c942d657c41d436c7a1b6e29f65f3e900dbb9aff4064dc4ab2f843acda8",
          sig, sizeof(sig));
    T_OK(cf_key_from_private(CF_KEY_P256, d, 32, &k));
    T_OK(cf_key_export_public(k, got, sizeof(got), &gn));
    T_EQ(gn, 65);
    T_MEMEQ(got, want, 65);
    T_OK(cf_key_verify(k, CF_SIG_RAW, (const uint8_t *)"sample", 6, sig, 64));
    T_ERR(cf_key_verify(k, CF_SIG_RAW, (const uint8_t *)"sample", 5, sig, 64), CF_E_SIGNATURE);
    cf_key_free(k);
}

/* RFC 7748 §6.1: Alice's X25519 public key from her private key. */
static void test_x25519_kat(void)
{
    uint8_t sk[32], pk[32], got[32];
    size_t gn = 0;
    cf_key *k = NULL;

    unhex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a", sk, 32);
    unhex("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a", pk, 32);
    T_OK(cf_key_from_private(CF_KEY_X25519, sk, 32, &k));
    T_OK(cf_key_export_public(k, got, sizeof(got), &gn));
    T_MEMEQ(got, pk, 32);
    cf_key_free(k);
}

/* RFC 8037 §A.3: thumbprint of the RFC 8032 TEST 1 public key. */
static void test_thumbprint(void)
{
    uint8_t pk[32];
    char tp[CF_KEY_THUMBPRINT_LEN + 1], tp2[CF_KEY_THUMBPRINT_LEN + 1];
    cf_key *k = NULL, *a = NULL, *b = NULL, *c = NULL;
    uint8_t pub[CF_KEY_MAX_PUB_LEN];
    size_t n = 0;

    unhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a", pk, 32);
    T_OK(cf_key_from_public(CF_KEY_ED25519, pk, 32, &k));
    T_OK(cf_key_thumbprint(k, tp));
    T_STREQ(tp, "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k");
    /* Same for the private key and its public part; different for another key. */
    T_OK(cf_key_generate(CF_KEY_P384, &a));
    T_OK(cf_key_export_public(a, pub, sizeof(pub), &n));
    T_OK(cf_key_from_public(CF_KEY_P384, pub, n, &b));
    T_OK(cf_key_thumbprint(a, tp));
    T_OK(cf_key_thumbprint(b, tp2));
    T_STREQ(tp, tp2);
    T_EQ(strlen(tp), CF_KEY_THUMBPRINT_LEN);
    T_OK(cf_key_generate(CF_KEY_P384, &c));
    T_OK(cf_key_thumbprint(c, tp2));
    T_ASSERT(strcmp(tp, tp2) != 0);
    cf_key_free(k);
    cf_key_free(a);
    cf_key_free(b);
    cf_key_free(c);
}

int main(void)
{
    T_RUN(test_type_tables);
    T_RUN(test_raw_roundtrip);
    T_RUN(test_public_eq);
    T_RUN(test_raw_negative);
    T_RUN(test_pem_roundtrip);
    T_RUN(test_pem_negative);
    T_RUN(test_from_evp);
    T_RUN(test_sign_verify);
    T_RUN(test_sign_unsupported);
    T_RUN(test_der_strict);
    T_RUN(test_ed25519_kat);
    T_RUN(test_p256_kat);
    T_RUN(test_x25519_kat);
    T_RUN(test_thumbprint);
    return t_done();
}
