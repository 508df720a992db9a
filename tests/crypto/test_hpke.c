/* HPKE (RFC 9180) round trips and negative tests. Known answers: hpke_vectors.c. */
#include <stdint.h>
#include <string.h>

#include "base/buf.h"
#include "base/err.h"
#include "base/limits.h"
#include "base/secmem.h"
#include "crypto/hpke.h"
#include "test.h"

static const uint16_t all_kems[] = {CF_HPKE_KEM_P256_SHA256, CF_HPKE_KEM_X25519_SHA256};
static const uint16_t all_kdfs[] = {CF_HPKE_KDF_HKDF_SHA256, CF_HPKE_KDF_HKDF_SHA384,
                                    CF_HPKE_KDF_HKDF_SHA512};
static const uint16_t all_aeads[] = {CF_HPKE_AEAD_AES128GCM, CF_HPKE_AEAD_AES256GCM,
                                     CF_HPKE_AEAD_CHACHA20POLY1305};

static const uint8_t PSK[32] = "0123456789abcdef0123456789abcdef";
static const uint8_t PSK_ID[] = "coffer test psk";
static const uint8_t INFO[] = "coffer test info";

static bool is_auth(cf_hpke_mode m) { return m == CF_HPKE_MODE_AUTH || m == CF_HPKE_MODE_AUTH_PSK; }
static bool is_psk(cf_hpke_mode m) { return m == CF_HPKE_MODE_PSK || m == CF_HPKE_MODE_AUTH_PSK; }

static cf_hpke_params mkparams(uint16_t kem, uint16_t kdf, uint16_t aead, cf_hpke_mode mode)
{
    cf_hpke_params p;

    memset(&p, 0, sizeof(p));
    p.suite = (cf_hpke_suite){kem, kdf, aead};
    p.mode = mode;
    p.info = INFO;
    p.info_len = sizeof(INFO) - 1;
    if (is_psk(mode)) {
        p.psk = PSK;
        p.psk_len = sizeof(PSK);
        p.psk_id = PSK_ID;
        p.psk_id_len = sizeof(PSK_ID) - 1;
    }
    return p;
}

/* Keys of one test: recipient, sender (auth modes), and their public halves. */
typedef struct {
    cf_hpke_key *skR, *pkR, *skS, *pkS;
} keyset;

static int keys_new(uint16_t kem, keyset *k)
{
    memset(k, 0, sizeof(*k));
    CF_GUARD(cf_hpke_key_generate(kem, &k->skR));
    CF_GUARD(cf_hpke_key_generate(kem, &k->skS));
    CF_GUARD(cf_hpke_key_public_only(k->skR, &k->pkR));
    CF_GUARD(cf_hpke_key_public_only(k->skS, &k->pkS));
    return 0;
}

static void keys_free(keyset *k)
{
    cf_hpke_key_free(k->skR);
    cf_hpke_key_free(k->pkR);
    cf_hpke_key_free(k->skS);
    cf_hpke_key_free(k->pkS);
    memset(k, 0, sizeof(*k));
}

/* A sender/receiver pair over fresh keys. */
typedef struct {
    keyset k;
    cf_hpke_params p;
    cf_hpke_ctx *s, *r;
    uint8_t enc[CF_HPKE_MAX_ENC];
    size_t enc_len;
} pair;

static int pair_new(pair *x, uint16_t kem, uint16_t kdf, uint16_t aead, cf_hpke_mode mode)
{
    memset(x, 0, sizeof(*x));
    x->p = mkparams(kem, kdf, aead, mode);
    CF_GUARD(keys_new(kem, &x->k));
    CF_GUARD(cf_hpke_setup_sender(&x->p, x->k.pkR, is_auth(mode) ? x->k.skS : NULL, x->enc,
                                  &x->enc_len, &x->s));
    return cf_hpke_setup_receiver(&x->p, x->enc, x->enc_len, x->k.skR,
                                  is_auth(mode) ? x->k.pkS : NULL, &x->r);
}

static void pair_free(pair *x)
{
    cf_hpke_ctx_free(x->s);
    cf_hpke_ctx_free(x->r);
    keys_free(&x->k);
}

static void test_roundtrip_all_suites(void)
{
    static const size_t sizes[] = {0, 1, 100, 4096};
    uint8_t pt[4096], ct[4096 + CF_HPKE_NT], back[4096], e1[48], e2[48];
    int combos = 0;

    for (size_t i = 0; i < sizeof(pt); i++)
        pt[i] = (uint8_t)(i * 7 + 3);
    for (size_t a = 0; a < CF_ARRAY_LEN(all_kems); a++)
        for (size_t b = 0; b < CF_ARRAY_LEN(all_kdfs); b++)
            for (size_t c = 0; c < CF_ARRAY_LEN(all_aeads); c++)
                for (int mode = 0; mode <= 3; mode++) {
                    pair x;
                    int rc = pair_new(&x, all_kems[a], all_kdfs[b], all_aeads[c],
                                      (cf_hpke_mode)mode);
                    T_ASSERT_MSG(rc == 0, "setup kem %04x kdf %d aead %d mode %d: %s",
                                 all_kems[a], all_kdfs[b], all_aeads[c], mode,
                                 cf_err_detail(rc));
                    T_EQ(x.enc_len, cf_hpke_kem_pk_len(all_kems[a]));
                    /* Several messages in order, each with its own aad. */
                    for (size_t m = 0; m < CF_ARRAY_LEN(sizes); m++) {
                        size_t ct_len = 0, back_len = 0;
                        uint8_t aad[8] = {'a', 'a', 'd', (uint8_t)m};
                        T_OK(cf_hpke_seal(x.s, aad, sizeof(aad), pt, sizes[m], ct, sizeof(ct),
                                          &ct_len));
                        T_EQ(ct_len, sizes[m] + CF_HPKE_NT);
                        T_OK(cf_hpke_open(x.r, aad, sizeof(aad), ct, ct_len, back, sizeof(back),
                                          &back_len));
                        T_EQ(back_len, sizes[m]);
                        T_MEMEQ(back, pt, sizes[m]);
                    }
                    /* Both sides export the same secret; another context differs. */
                    T_OK(cf_hpke_export(x.s, (const uint8_t *)"ctx", 3, e1, sizeof(e1)));
                    T_OK(cf_hpke_export(x.r, (const uint8_t *)"ctx", 3, e2, sizeof(e2)));
                    T_MEMEQ(e1, e2, sizeof(e1));
                    T_OK(cf_hpke_export(x.r, (const uint8_t *)"ctx2", 4, e2, sizeof(e2)));
                    T_ASSERT(memcmp(e1, e2, sizeof(e1)) != 0);
                    pair_free(&x);
                    combos++;
                }
    T_EQ(combos, 2 * 3 * 3 * 4);
}

static void test_single_shot(void)
{
    for (size_t a = 0; a < CF_ARRAY_LEN(all_kems); a++)
        for (int mode = 0; mode <= 3; mode++) {
            keyset k;
            cf_hpke_params p = mkparams(all_kems[a], CF_HPKE_KDF_HKDF_SHA256,
                                        CF_HPKE_AEAD_AES256GCM, (cf_hpke_mode)mode);
            uint8_t enc[CF_HPKE_MAX_ENC];
            size_t enc_len = 0;
            cf_buf ct, pt;

            T_OK(keys_new(all_kems[a], &k));
            cf_buf_init(&ct, 1024);
            cf_buf_init_secret(&pt, 1024);
            T_OK(cf_buf_put(&ct, "prefix", 6)); /* appended after existing bytes */
            T_OK(cf_hpke_seal_once(&p, k.pkR, is_auth((cf_hpke_mode)mode) ? k.skS : NULL,
                                   (const uint8_t *)"aad", 3, (const uint8_t *)"hello", 5, enc,
                                   &enc_len, &ct));
            T_EQ(ct.len, 6 + 5 + CF_HPKE_NT);
            T_OK(cf_hpke_open_once(&p, enc, enc_len, k.skR,
                                   is_auth((cf_hpke_mode)mode) ? k.pkS : NULL,
                                   (const uint8_t *)"aad", 3, ct.data + 6, ct.len - 6, &pt));
            T_EQ(pt.len, 5);
            T_MEMEQ(pt.data, "hello", 5);
            /* A failed open leaves the output buffer as it was. */
            ct.data[6] ^= 1;
            T_ERR(cf_hpke_open_once(&p, enc, enc_len, k.skR,
                                    is_auth((cf_hpke_mode)mode) ? k.pkS : NULL,
                                    (const uint8_t *)"aad", 3, ct.data + 6, ct.len - 6, &pt),
                  CF_E_DECRYPT);
            T_EQ(pt.len, 5);
            T_ERR(cf_hpke_open_once(&p, enc, enc_len, k.skR, NULL, (const uint8_t *)"aad", 3,
                                    ct.data + 6, 15, &pt),
                  CF_E_DECRYPT);
            /* Plaintext only goes to secret memory. */
            {
                cf_buf plain;
                cf_buf_init(&plain, 1024);
                ct.data[6] ^= 1;
                T_ERR(cf_hpke_open_once(&p, enc, enc_len, k.skR,
                                        is_auth((cf_hpke_mode)mode) ? k.pkS : NULL,
                                        (const uint8_t *)"aad", 3, ct.data + 6, ct.len - 6, &plain),
                      CF_E_INVAL);
                T_EQ(plain.len, 0);
                cf_buf_free(&plain);
            }
            cf_buf_free(&ct);
            cf_buf_free(&pt);
            keys_free(&k);
        }
}

static void test_export_only(void)
{
    for (size_t a = 0; a < CF_ARRAY_LEN(all_kems); a++) {
        pair x;
        uint8_t buf[64], e1[32], e2[32];
        size_t n = 0;

        T_OK(pair_new(&x, all_kems[a], CF_HPKE_KDF_HKDF_SHA256, CF_HPKE_AEAD_EXPORT_ONLY,
                      CF_HPKE_MODE_BASE));
        T_ERR(cf_hpke_seal(x.s, NULL, 0, (const uint8_t *)"x", 1, buf, sizeof(buf), &n),
              CF_E_UNSUPPORTED);
        T_ERR(cf_hpke_open(x.r, NULL, 0, buf, 17, buf, sizeof(buf), &n), CF_E_UNSUPPORTED);
        T_OK(cf_hpke_export(x.s, NULL, 0, e1, sizeof(e1)));
        T_OK(cf_hpke_export(x.r, NULL, 0, e2, sizeof(e2)));
        T_MEMEQ(e1, e2, sizeof(e1));
        pair_free(&x);
    }
}

/* Seal one message with a fresh pair (of the Coffer suite) for tamper tests. */
static int seal_one(pair *x, uint16_t kem, cf_hpke_mode mode, uint8_t *ct, size_t *ct_len)
{
    CF_GUARD(pair_new(x, kem, CF_HPKE_KDF_HKDF_SHA256, CF_HPKE_AEAD_AES256GCM, mode));
    return cf_hpke_seal(x->s, (const uint8_t *)"aad", 3, (const uint8_t *)"secret data", 11, ct,
                        64, ct_len);
}

static void test_wrong_keys(void)
{
    for (size_t a = 0; a < CF_ARRAY_LEN(all_kems); a++) {
        pair x;
        cf_hpke_key *other = NULL, *other_pub = NULL;
        cf_hpke_ctx *r = NULL;
        uint8_t ct[64], pt[64];
        size_t ct_len = 0, n = 0;

        T_OK(seal_one(&x, all_kems[a], CF_HPKE_MODE_AUTH, ct, &ct_len));
        T_OK(cf_hpke_key_generate(all_kems[a], &other));
        T_OK(cf_hpke_key_public_only(other, &other_pub));
        /* Wrong recipient private key: setup works, the tag does not verify. */
        T_OK(cf_hpke_setup_receiver(&x.p, x.enc, x.enc_len, other, x.k.pkS, &r));
        T_ERR(cf_hpke_open(r, (const uint8_t *)"aad", 3, ct, ct_len, pt, sizeof(pt), &n),
              CF_E_DECRYPT);
        cf_hpke_ctx_free(r);
        r = NULL;
        /* Wrong sender public key in auth mode. */
        T_OK(cf_hpke_setup_receiver(&x.p, x.enc, x.enc_len, x.k.skR, other_pub, &r));
        T_ERR(cf_hpke_open(r, (const uint8_t *)"aad", 3, ct, ct_len, pt, sizeof(pt), &n),
              CF_E_DECRYPT);
        cf_hpke_ctx_free(r);
        r = NULL;
        /* Auth-mode message opened as base mode (no sender key) fails too. */
        x.p.mode = CF_HPKE_MODE_BASE;
        T_OK(cf_hpke_setup_receiver(&x.p, x.enc, x.enc_len, x.k.skR, NULL, &r));
        T_ERR(cf_hpke_open(r, (const uint8_t *)"aad", 3, ct, ct_len, pt, sizeof(pt), &n),
              CF_E_DECRYPT);
        cf_hpke_ctx_free(r);
        r = NULL;
        /* The right keys open it. */
        x.p.mode = CF_HPKE_MODE_AUTH;
        T_OK(cf_hpke_open(x.r, (const uint8_t *)"aad", 3, ct, ct_len, pt, sizeof(pt), &n));
        T_MEMEQ(pt, "secret data", 11);
        cf_hpke_key_free(other);
        cf_hpke_key_free(other_pub);
        pair_free(&x);
    }
}

static void test_tamper(void)
{
    for (size_t a = 0; a < CF_ARRAY_LEN(all_kems); a++) {
        pair x;
        uint8_t ct[64], pt[64], bad[64], enc[CF_HPKE_MAX_ENC];
        size_t ct_len = 0, n = 0;
        cf_hpke_ctx *r = NULL;
        cf_hpke_params p2;
        int rc;

        T_OK(seal_one(&x, all_kems[a], CF_HPKE_MODE_AUTH_PSK, ct, &ct_len));
        /* Every byte of ciphertext and tag is authenticated. */
        for (size_t i = 0; i < ct_len; i++) {
            memcpy(bad, ct, ct_len);
            bad[i] ^= 0x80;
            memset(pt, 0xaa, sizeof(pt));
            T_ERR(cf_hpke_open(x.r, (const uint8_t *)"aad", 3, bad, ct_len, pt, sizeof(pt), &n),
                  CF_E_DECRYPT);
            /* No unauthenticated plaintext is left behind. */
            for (size_t j = 0; j < ct_len - CF_HPKE_NT; j++)
                T_EQ(pt[j], 0);
        }
        /* Truncated ciphertext, shorter than the tag, altered aad. */
        T_ERR(cf_hpke_open(x.r, (const uint8_t *)"aad", 3, ct, ct_len - 1, pt, sizeof(pt), &n),
              CF_E_DECRYPT);
        T_ERR(cf_hpke_open(x.r, (const uint8_t *)"aad", 3, ct, CF_HPKE_NT - 1, pt, sizeof(pt), &n),
              CF_E_DECRYPT);
        T_ERR(cf_hpke_open(x.r, (const uint8_t *)"aaD", 3, ct, ct_len, pt, sizeof(pt), &n),
              CF_E_DECRYPT);
        T_ERR(cf_hpke_open(x.r, NULL, 0, ct, ct_len, pt, sizeof(pt), &n), CF_E_DECRYPT);
        /* Tampered enc: X25519 accepts any 32 bytes but derives other keys; a P-256 enc
         * with a flipped coordinate bit is no longer on the curve. */
        memcpy(enc, x.enc, x.enc_len);
        enc[x.enc_len - 1] ^= 0x01;
        rc = cf_hpke_setup_receiver(&x.p, enc, x.enc_len, x.k.skR, x.k.pkS, &r);
        if (all_kems[a] == CF_HPKE_KEM_X25519_SHA256) {
            T_OK(rc);
            T_ERR(cf_hpke_open(r, (const uint8_t *)"aad", 3, ct, ct_len, pt, sizeof(pt), &n),
                  CF_E_DECRYPT);
            cf_hpke_ctx_free(r);
            r = NULL;
        } else {
            T_EQ(rc, CF_E_INVAL);
        }
        T_ERR(cf_hpke_setup_receiver(&x.p, x.enc, x.enc_len - 1, x.k.skR, x.k.pkS, &r),
              CF_E_INVAL);
        /* Tampered info, psk, psk_id: other keys, the tag fails. */
        p2 = x.p;
        p2.info = (const uint8_t *)"other info";
        p2.info_len = 10;
        T_OK(cf_hpke_setup_receiver(&p2, x.enc, x.enc_len, x.k.skR, x.k.pkS, &r));
        T_ERR(cf_hpke_open(r, (const uint8_t *)"aad", 3, ct, ct_len, pt, sizeof(pt), &n),
              CF_E_DECRYPT);
        cf_hpke_ctx_free(r);
        r = NULL;
        p2 = x.p;
        p2.psk = (const uint8_t *)"0123456789abcdef0123456789abcdeF";
        T_OK(cf_hpke_setup_receiver(&p2, x.enc, x.enc_len, x.k.skR, x.k.pkS, &r));
        T_ERR(cf_hpke_open(r, (const uint8_t *)"aad", 3, ct, ct_len, pt, sizeof(pt), &n),
              CF_E_DECRYPT);
        cf_hpke_ctx_free(r);
        r = NULL;
        p2 = x.p;
        p2.psk_id = (const uint8_t *)"coffer test psK";
        T_OK(cf_hpke_setup_receiver(&p2, x.enc, x.enc_len, x.k.skR, x.k.pkS, &r));
        T_ERR(cf_hpke_open(r, (const uint8_t *)"aad", 3, ct, ct_len, pt, sizeof(pt), &n),
              CF_E_DECRYPT);
        cf_hpke_ctx_free(r);
        r = NULL;
        /* After all those failures the untouched receiver still opens message 0. */
        T_OK(cf_hpke_open(x.r, (const uint8_t *)"aad", 3, ct, ct_len, pt, sizeof(pt), &n));
        T_EQ(n, 11);
        T_MEMEQ(pt, "secret data", 11);
        pair_free(&x);
    }
}

/* §5.1 VerifyPSKInputs and the key-per-mode rules. */
static void test_mode_rules(void)
{
    keyset k;
    cf_hpke_params p;
    cf_hpke_ctx *c = NULL;
    uint8_t enc[CF_HPKE_MAX_ENC], short_psk[31] = {1};
    size_t enc_len = 0;

    T_OK(keys_new(CF_HPKE_KEM_X25519_SHA256, &k));
    /* psk mode without a psk. */
    p = mkparams(CF_HPKE_KEM_X25519_SHA256, 1, 2, CF_HPKE_MODE_PSK);
    p.psk = NULL;
    p.psk_len = 0;
    p.psk_id = NULL;
    p.psk_id_len = 0;
    T_ERR(cf_hpke_setup_sender(&p, k.pkR, NULL, enc, &enc_len, &c), CF_E_INVAL);
    T_ASSERT(strstr(cf_err_detail(CF_E_INVAL), "missing required PSK") != NULL);
    p.mode = CF_HPKE_MODE_AUTH_PSK;
    T_ERR(cf_hpke_setup_sender(&p, k.pkR, k.skS, enc, &enc_len, &c), CF_E_INVAL);
    /* psk given in base and auth modes. */
    p = mkparams(CF_HPKE_KEM_X25519_SHA256, 1, 2, CF_HPKE_MODE_PSK);
    p.mode = CF_HPKE_MODE_BASE;
    T_ERR(cf_hpke_setup_sender(&p, k.pkR, NULL, enc, &enc_len, &c), CF_E_INVAL);
    T_ASSERT(strstr(cf_err_detail(CF_E_INVAL), "not needed") != NULL);
    T_ERR(cf_hpke_setup_receiver(&p, enc, 32, k.skR, NULL, &c), CF_E_INVAL);
    p.mode = CF_HPKE_MODE_AUTH;
    T_ERR(cf_hpke_setup_sender(&p, k.pkR, k.skS, enc, &enc_len, &c), CF_E_INVAL);
    /* psk without psk_id and the reverse. */
    p = mkparams(CF_HPKE_KEM_X25519_SHA256, 1, 2, CF_HPKE_MODE_PSK);
    p.psk_id_len = 0;
    p.psk_id = NULL;
    T_ERR(cf_hpke_setup_sender(&p, k.pkR, NULL, enc, &enc_len, &c), CF_E_INVAL);
    T_ASSERT(strstr(cf_err_detail(CF_E_INVAL), "inconsistent") != NULL);
    p = mkparams(CF_HPKE_KEM_X25519_SHA256, 1, 2, CF_HPKE_MODE_PSK);
    p.psk_len = 0;
    p.psk = NULL;
    T_ERR(cf_hpke_setup_sender(&p, k.pkR, NULL, enc, &enc_len, &c), CF_E_INVAL);
    /* A psk below 32 bytes (§9.5), and over the limit. */
    p = mkparams(CF_HPKE_KEM_X25519_SHA256, 1, 2, CF_HPKE_MODE_PSK);
    p.psk = short_psk;
    p.psk_len = sizeof(short_psk);
    T_ERR(cf_hpke_setup_sender(&p, k.pkR, NULL, enc, &enc_len, &c), CF_E_INVAL);
    p.psk_len = CF_HPKE_MAX_PSK + 1;
    T_ERR(cf_hpke_setup_sender(&p, k.pkR, NULL, enc, &enc_len, &c), CF_E_TOO_LARGE);
    /* Auth modes need a sender key; the others refuse one. */
    p = mkparams(CF_HPKE_KEM_X25519_SHA256, 1, 2, CF_HPKE_MODE_AUTH);
    T_ERR(cf_hpke_setup_sender(&p, k.pkR, NULL, enc, &enc_len, &c), CF_E_INVAL);
    T_ERR(cf_hpke_setup_sender(&p, k.pkR, k.pkS, enc, &enc_len, &c), CF_E_INVAL); /* public */
    T_ERR(cf_hpke_setup_receiver(&p, enc, 32, k.skR, NULL, &c), CF_E_INVAL);
    p.mode = CF_HPKE_MODE_BASE;
    T_ERR(cf_hpke_setup_sender(&p, k.pkR, k.skS, enc, &enc_len, &c), CF_E_INVAL);
    T_ERR(cf_hpke_setup_receiver(&p, enc, 32, k.skR, k.pkS, &c), CF_E_INVAL);
    /* Receiver needs a private key; unknown mode; oversized info. */
    T_ERR(cf_hpke_setup_receiver(&p, enc, 32, k.pkR, NULL, &c), CF_E_INVAL);
    p.mode = (cf_hpke_mode)4;
    T_ERR(cf_hpke_setup_sender(&p, k.pkR, NULL, enc, &enc_len, &c), CF_E_INVAL);
    p.mode = CF_HPKE_MODE_BASE;
    p.info_len = CF_HPKE_MAX_INFO + 1;
    T_ERR(cf_hpke_setup_sender(&p, k.pkR, NULL, enc, &enc_len, &c), CF_E_TOO_LARGE);
    T_ASSERT(c == NULL);
    keys_free(&k);
}

static void test_suites_and_key_kinds(void)
{
    keyset k;
    cf_hpke_key *p256 = NULL;
    cf_hpke_params p = mkparams(CF_HPKE_KEM_X25519_SHA256, 1, 2, CF_HPKE_MODE_BASE);
    cf_hpke_ctx *c = NULL;
    uint8_t enc[CF_HPKE_MAX_ENC];
    size_t enc_len = 0;

    T_OK(keys_new(CF_HPKE_KEM_X25519_SHA256, &k));
    T_OK(cf_hpke_key_generate(CF_HPKE_KEM_P256_SHA256, &p256));
    /* A P-256 key in an X25519 suite. */
    T_ERR(cf_hpke_setup_sender(&p, p256, NULL, enc, &enc_len, &c), CF_E_INVAL);
    /* Unimplemented algorithms. */
    p.suite.kem = 0x0012;
    T_ERR(cf_hpke_setup_sender(&p, k.pkR, NULL, enc, &enc_len, &c), CF_E_UNSUPPORTED);
    p.suite = (cf_hpke_suite){CF_HPKE_KEM_X25519_SHA256, 4, 2};
    T_ERR(cf_hpke_setup_sender(&p, k.pkR, NULL, enc, &enc_len, &c), CF_E_UNSUPPORTED);
    p.suite = (cf_hpke_suite){CF_HPKE_KEM_X25519_SHA256, 1, 4};
    T_ERR(cf_hpke_setup_sender(&p, k.pkR, NULL, enc, &enc_len, &c), CF_E_UNSUPPORTED);
    T_ERR(cf_hpke_key_generate(0x0021, &p256), CF_E_UNSUPPORTED);
    T_ASSERT(c == NULL);
    T_ASSERT(cf_hpke_key_has_private(k.skR));
    T_ASSERT(!cf_hpke_key_has_private(k.pkR));
    T_EQ(cf_hpke_key_kem(p256), CF_HPKE_KEM_P256_SHA256);
    T_EQ(cf_hpke_kem_pk_len(0x0012), 0);
    cf_hpke_key_free(p256);
    keys_free(&k);
}

static void test_roles_and_sequence(void)
{
    pair x;
    uint8_t ct1[64], ct2[64], pt[64], nonce0[CF_HPKE_NN], nonce1[CF_HPKE_NN];
    size_t l1 = 0, l2 = 0, n = 0;

    T_OK(pair_new(&x, CF_HPKE_KEM_X25519_SHA256, 1, 2, CF_HPKE_MODE_BASE));
    /* Seal is for senders, open for receivers. */
    T_ERR(cf_hpke_seal(x.r, NULL, 0, (const uint8_t *)"m", 1, ct1, sizeof(ct1), &l1), CF_E_INVAL);
    T_ERR(cf_hpke_open(x.s, NULL, 0, ct1, 17, pt, sizeof(pt), &n), CF_E_INVAL);
    /* Output buffer too small. */
    T_ERR(cf_hpke_seal(x.s, NULL, 0, (const uint8_t *)"m", 1, ct1, 16, &l1), CF_E_INVAL);
    /* Each message gets the next nonce (§5.2). */
    cf_hpke_test_nonce(x.s, nonce0);
    T_OK(cf_hpke_seal(x.s, NULL, 0, (const uint8_t *)"m1", 2, ct1, sizeof(ct1), &l1));
    cf_hpke_test_nonce(x.s, nonce1);
    T_ASSERT(memcmp(nonce0, nonce1, CF_HPKE_NN - 1) == 0);
    T_EQ(nonce0[CF_HPKE_NN - 1] ^ nonce1[CF_HPKE_NN - 1], 1);
    T_OK(cf_hpke_seal(x.s, NULL, 0, (const uint8_t *)"m2", 2, ct2, sizeof(ct2), &l2));
    /* Out of order: message 2 at sequence 0 fails and does not advance the counter. */
    T_ERR(cf_hpke_open(x.r, NULL, 0, ct2, l2, pt, sizeof(pt), &n), CF_E_DECRYPT);
    T_OK(cf_hpke_open(x.r, NULL, 0, ct1, l1, pt, sizeof(pt), &n));
    T_MEMEQ(pt, "m1", 2);
    /* Replay of message 1 at sequence 1 fails. */
    T_ERR(cf_hpke_open(x.r, NULL, 0, ct1, l1, pt, sizeof(pt), &n), CF_E_DECRYPT);
    T_OK(cf_hpke_open(x.r, NULL, 0, ct2, l2, pt, sizeof(pt), &n));
    T_MEMEQ(pt, "m2", 2);
    pair_free(&x);
}

/* Detached tag, decrypting in place. */
static void test_open_detached(void)
{
    pair x;
    uint8_t buf[64], tag[CF_HPKE_NT], copy[64];
    size_t l = 0;

    T_OK(pair_new(&x, CF_HPKE_KEM_X25519_SHA256, 1, 2, CF_HPKE_MODE_BASE));
    T_OK(cf_hpke_seal(x.s, (const uint8_t *)"a", 1, (const uint8_t *)"in place!", 9, buf,
                      sizeof(buf), &l));
    memcpy(tag, buf + 9, CF_HPKE_NT);
    memcpy(copy, buf, 9);
    tag[0] ^= 1;
    T_ERR(cf_hpke_open_detached(x.r, (const uint8_t *)"a", 1, buf, 9, tag, buf), CF_E_DECRYPT);
    for (size_t i = 0; i < 9; i++)
        T_EQ(buf[i], 0); /* wiped, not left half-decrypted */
    memcpy(buf, copy, 9);
    tag[0] ^= 1;
    T_OK(cf_hpke_open_detached(x.r, (const uint8_t *)"a", 1, buf, 9, tag, buf));
    T_MEMEQ(buf, "in place!", 9);
    pair_free(&x);
}

static void test_sequence_overflow(void)
{
    pair x;
    uint8_t ct[64], pt[64];
    size_t l = 0, n = 0;

    T_OK(pair_new(&x, CF_HPKE_KEM_X25519_SHA256, 1, 3, CF_HPKE_MODE_BASE));
    cf_hpke_test_set_seq(x.s, UINT64_MAX - 1);
    cf_hpke_test_set_seq(x.r, UINT64_MAX - 1);
    T_OK(cf_hpke_seal(x.s, NULL, 0, (const uint8_t *)"last", 4, ct, sizeof(ct), &l));
    T_ERR(cf_hpke_seal(x.s, NULL, 0, (const uint8_t *)"more", 4, ct + 32, 32, &n),
          CF_E_OVERFLOW);
    T_OK(cf_hpke_open(x.r, NULL, 0, ct, l, pt, sizeof(pt), &n));
    T_MEMEQ(pt, "last", 4);
    T_ERR(cf_hpke_open(x.r, NULL, 0, ct, l, pt, sizeof(pt), &n), CF_E_OVERFLOW);
    /* Export still works: it does not use the counter. */
    T_OK(cf_hpke_export(x.s, NULL, 0, pt, 32));
    pair_free(&x);
}

static void test_export_limits(void)
{
    pair x;
    static uint8_t out[255 * 64 + 1], ctx_big[CF_HPKE_MAX_INFO + 1];

    T_OK(pair_new(&x, CF_HPKE_KEM_X25519_SHA256, CF_HPKE_KDF_HKDF_SHA256, 2, CF_HPKE_MODE_BASE));
    T_ERR(cf_hpke_export(x.s, NULL, 0, out, 0), CF_E_RANGE);
    T_OK(cf_hpke_export(x.s, NULL, 0, out, 255 * 32));
    T_ERR(cf_hpke_export(x.s, NULL, 0, out, 255 * 32 + 1), CF_E_RANGE);
    T_OK(cf_hpke_export(x.s, ctx_big, CF_HPKE_MAX_INFO, out, 32));
    T_ERR(cf_hpke_export(x.s, ctx_big, sizeof(ctx_big), out, 32), CF_E_TOO_LARGE);
    pair_free(&x);
    T_OK(pair_new(&x, CF_HPKE_KEM_P256_SHA256, CF_HPKE_KDF_HKDF_SHA512, 2, CF_HPKE_MODE_BASE));
    T_OK(cf_hpke_export(x.r, NULL, 0, out, 255 * 64));
    T_ERR(cf_hpke_export(x.r, NULL, 0, out, 255 * 64 + 1), CF_E_RANGE);
    pair_free(&x);
}

/* §7.1.4: invalid public keys, and small-order X25519 points at Encap and Decap. */
static void test_invalid_public_keys(void)
{
    static const uint8_t x_small[][32] = {
        {0}, /* u = 0 */
        {1}, /* u = 1 */
        /* a point of order 8 (RFC 7748 §5 / curve25519 small-order list) */
        {0xe0, 0xeb, 0x7a, 0x7c, 0x3b, 0x41, 0xb8, 0xae, 0x16, 0x56, 0xe3, 0xfa, 0xf1, 0x9f, 0xc4, 0x6a,
         0xda, 0x09, 0x8d, 0xeb, 0x9c, 0x32, 0xb1, 0xfd, 0x86, 0x62, 0x05, 0x16, 0x5f, 0x49, 0xb8, 0x00},
    };
    keyset k;
    cf_hpke_key *bad = NULL, *p256 = NULL;
    cf_hpke_ctx *c = NULL;
    cf_hpke_params p = mkparams(CF_HPKE_KEM_X25519_SHA256, 1, 2, CF_HPKE_MODE_BASE);
    uint8_t enc[CF_HPKE_MAX_ENC], pk[65];
    size_t enc_len = 0, n = 0;
    const uint8_t *pub;

    T_OK(keys_new(CF_HPKE_KEM_X25519_SHA256, &k));
    T_ERR(cf_hpke_key_from_public(CF_HPKE_KEM_X25519_SHA256, x_small[0], 31, &bad), CF_E_INVAL);
    T_ERR(cf_hpke_key_from_public(CF_HPKE_KEM_X25519_SHA256, pk, 33, &bad), CF_E_INVAL);
    for (size_t i = 0; i < CF_ARRAY_LEN(x_small); i++) {
        T_OK(cf_hpke_key_from_public(CF_HPKE_KEM_X25519_SHA256, x_small[i], 32, &bad));
        T_ERR(cf_hpke_setup_sender(&p, bad, NULL, enc, &enc_len, &c), CF_E_INVAL);
        T_ERR(cf_hpke_setup_receiver(&p, x_small[i], 32, k.skR, NULL, &c), CF_E_INVAL);
        /* As the sender's key in auth mode. */
        p.mode = CF_HPKE_MODE_AUTH;
        T_ERR(cf_hpke_setup_receiver(&p, x_small[i], 32, k.skR, k.pkS, &c), CF_E_INVAL);
        p.mode = CF_HPKE_MODE_BASE;
        cf_hpke_key_free(bad);
        bad = NULL;
    }
    T_ASSERT(c == NULL);

    /* P-256: length, prefix, off-curve, coordinate >= p, identity, all zero. */
    T_OK(cf_hpke_key_generate(CF_HPKE_KEM_P256_SHA256, &p256));
    pub = cf_hpke_key_pub(p256, &n);
    T_EQ(n, 65);
    T_EQ(pub[0], 0x04);
    memcpy(pk, pub, 65);
    T_OK(cf_hpke_key_from_public(CF_HPKE_KEM_P256_SHA256, pk, 65, &bad));
    cf_hpke_key_free(bad);
    bad = NULL;
    T_ERR(cf_hpke_key_from_public(CF_HPKE_KEM_P256_SHA256, pk, 64, &bad), CF_E_INVAL);
    T_ERR(cf_hpke_key_from_public(CF_HPKE_KEM_P256_SHA256, pk, 33, &bad), CF_E_INVAL);
    pk[0] = 0x02; /* compressed prefix on a 65-byte string */
    T_ERR(cf_hpke_key_from_public(CF_HPKE_KEM_P256_SHA256, pk, 65, &bad), CF_E_INVAL);
    pk[0] = 0x06; /* hybrid form */
    T_ERR(cf_hpke_key_from_public(CF_HPKE_KEM_P256_SHA256, pk, 65, &bad), CF_E_INVAL);
    pk[0] = 0x04;
    pk[64] ^= 0x01; /* y no longer matches x */
    T_ERR(cf_hpke_key_from_public(CF_HPKE_KEM_P256_SHA256, pk, 65, &bad), CF_E_INVAL);
    memset(pk + 1, 0xff, 32); /* x >= p */
    T_ERR(cf_hpke_key_from_public(CF_HPKE_KEM_P256_SHA256, pk, 65, &bad), CF_E_INVAL);
    memset(pk, 0, 65);
    pk[0] = 0x04;
    T_ERR(cf_hpke_key_from_public(CF_HPKE_KEM_P256_SHA256, pk, 65, &bad), CF_E_INVAL);
    T_ERR(cf_hpke_key_from_public(CF_HPKE_KEM_P256_SHA256, pk, 1, &bad), CF_E_INVAL);
    /* The same invalid enc at Decap. */
    p = mkparams(CF_HPKE_KEM_P256_SHA256, 1, 2, CF_HPKE_MODE_BASE);
    {
        cf_hpke_key *skR = NULL;
        T_OK(cf_hpke_key_generate(CF_HPKE_KEM_P256_SHA256, &skR));
        T_ERR(cf_hpke_setup_receiver(&p, pk, 65, skR, NULL, &c), CF_E_INVAL);
        cf_hpke_key_free(skR);
    }
    T_ASSERT(bad == NULL && c == NULL);
    cf_hpke_key_free(p256);
    keys_free(&k);
}

static void test_private_keys(void)
{
    static const uint8_t order[32] = {
        0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51,
    };
    uint8_t sk[32], out[32], ikm[32];
    cf_hpke_key *k = NULL, *k2 = NULL;
    const uint8_t *p1, *p2;
    size_t n1 = 0, n2 = 0;

    /* P-256 scalar range [1, order-1]. */
    memset(sk, 0, sizeof(sk));
    T_ERR(cf_hpke_key_from_private(CF_HPKE_KEM_P256_SHA256, sk, 32, &k), CF_E_INVAL);
    T_ERR(cf_hpke_key_from_private(CF_HPKE_KEM_P256_SHA256, order, 32, &k), CF_E_INVAL);
    memset(sk, 0xff, sizeof(sk));
    T_ERR(cf_hpke_key_from_private(CF_HPKE_KEM_P256_SHA256, sk, 32, &k), CF_E_INVAL);
    memcpy(sk, order, 32);
    sk[31] -= 1;
    T_OK(cf_hpke_key_from_private(CF_HPKE_KEM_P256_SHA256, sk, 32, &k));
    T_OK(cf_hpke_key_priv(k, out));
    T_MEMEQ(out, sk, 32);
    cf_hpke_key_free(k);
    k = NULL;
    memset(sk, 0, sizeof(sk));
    sk[31] = 1; /* sk = 1: pk is the generator */
    T_OK(cf_hpke_key_from_private(CF_HPKE_KEM_P256_SHA256, sk, 32, &k));
    p1 = cf_hpke_key_pub(k, &n1);
    T_EQ(p1[1], 0x6b); /* Gx = 6b17d1f2... */
    T_EQ(p1[2], 0x17);
    cf_hpke_key_free(k);
    k = NULL;
    T_ERR(cf_hpke_key_from_private(CF_HPKE_KEM_P256_SHA256, sk, 31, &k), CF_E_INVAL);

    /* X25519: SerializePrivateKey clamps; clamped and unclamped give one public key. */
    memset(sk, 0xff, sizeof(sk));
    T_OK(cf_hpke_key_from_private(CF_HPKE_KEM_X25519_SHA256, sk, 32, &k));
    T_OK(cf_hpke_key_priv(k, out));
    T_EQ(out[0], 0xf8);
    T_EQ(out[31], 0x7f);
    T_OK(cf_hpke_key_from_private(CF_HPKE_KEM_X25519_SHA256, out, 32, &k2));
    p1 = cf_hpke_key_pub(k, &n1);
    p2 = cf_hpke_key_pub(k2, &n2);
    T_EQ(n1, 32);
    T_MEMEQ(p1, p2, 32);
    cf_hpke_key_free(k2);
    k2 = NULL;
    T_ERR(cf_hpke_key_from_private(CF_HPKE_KEM_X25519_SHA256, sk, 33, &k2), CF_E_INVAL);
    /* A public key has no private part to serialize. */
    T_OK(cf_hpke_key_public_only(k, &k2));
    T_ERR(cf_hpke_key_priv(k2, out), CF_E_INVAL);
    cf_hpke_key_free(k2);
    k2 = NULL;
    cf_hpke_key_free(k);
    k = NULL;

    /* DeriveKeyPair: deterministic, ikm length bounds, distinct per ikm. */
    for (size_t a = 0; a < CF_ARRAY_LEN(all_kems); a++) {
        memset(ikm, 0x42, sizeof(ikm));
        T_OK(cf_hpke_key_derive(all_kems[a], ikm, 32, &k));
        T_OK(cf_hpke_key_derive(all_kems[a], ikm, 32, &k2));
        p1 = cf_hpke_key_pub(k, &n1);
        p2 = cf_hpke_key_pub(k2, &n2);
        T_MEMEQ(p1, p2, n1);
        cf_hpke_key_free(k2);
        k2 = NULL;
        ikm[0] ^= 1;
        T_OK(cf_hpke_key_derive(all_kems[a], ikm, 32, &k2));
        p2 = cf_hpke_key_pub(k2, &n2);
        T_ASSERT(memcmp(p1, p2, n1) != 0);
        cf_hpke_key_free(k2);
        k2 = NULL;
        T_ERR(cf_hpke_key_derive(all_kems[a], ikm, 31, &k2), CF_E_INVAL);
        T_ERR(cf_hpke_key_derive(all_kems[a], ikm, CF_HPKE_MAX_IKM + 1, &k2), CF_E_INVAL);
        cf_hpke_key_free(k);
        k = NULL;
        /* Two generated keys differ. */
        T_OK(cf_hpke_key_generate(all_kems[a], &k));
        T_OK(cf_hpke_key_generate(all_kems[a], &k2));
        p1 = cf_hpke_key_pub(k, &n1);
        p2 = cf_hpke_key_pub(k2, &n2);
        T_ASSERT(memcmp(p1, p2, n1) != 0);
        cf_hpke_key_free(k);
        cf_hpke_key_free(k2);
        k = k2 = NULL;
    }
}

/* A context made with the test hook and a fixed ephemeral key is deterministic, and
 * the normal API uses a fresh ephemeral key each time. */
static void test_ephemeral(void)
{
    keyset k;
    cf_hpke_key *skE = NULL;
    cf_hpke_params p = mkparams(CF_HPKE_KEM_X25519_SHA256, 1, 2, CF_HPKE_MODE_BASE);
    cf_hpke_ctx *c1 = NULL, *c2 = NULL;
    cf_hpke_trace t1, t2;
    uint8_t e1[CF_HPKE_MAX_ENC], e2[CF_HPKE_MAX_ENC], ikm[32] = {7};
    size_t l1 = 0, l2 = 0;

    T_OK(keys_new(CF_HPKE_KEM_X25519_SHA256, &k));
    T_OK(cf_hpke_key_derive(CF_HPKE_KEM_X25519_SHA256, ikm, sizeof(ikm), &skE));
    T_OK(cf_hpke_test_setup_sender(&p, k.pkR, NULL, skE, e1, &l1, &c1, &t1));
    T_OK(cf_hpke_test_setup_receiver(&p, e1, l1, k.skR, NULL, &c2, &t2));
    T_MEMEQ(&t1, &t2, sizeof(t1));
    T_EQ(t1.key_len, 32);
    T_EQ(t1.key_schedule_context_len, 65);
    cf_hpke_ctx_free(c1);
    cf_hpke_ctx_free(c2);
    c1 = c2 = NULL;
    T_OK(cf_hpke_setup_sender(&p, k.pkR, NULL, e1, &l1, &c1));
    T_OK(cf_hpke_setup_sender(&p, k.pkR, NULL, e2, &l2, &c2));
    T_ASSERT(memcmp(e1, e2, 32) != 0);
    T_EQ(cf_hpke_ctx_suite(c1).aead, CF_HPKE_AEAD_AES256GCM);
    cf_hpke_ctx_free(c1);
    cf_hpke_ctx_free(c2);
    cf_hpke_key_free(skE);
    keys_free(&k);
}

int main(void)
{
    T_RUN(test_roundtrip_all_suites);
    T_RUN(test_single_shot);
    T_RUN(test_export_only);
    T_RUN(test_wrong_keys);
    T_RUN(test_tamper);
    T_RUN(test_mode_rules);
    T_RUN(test_suites_and_key_kinds);
    T_RUN(test_roles_and_sequence);
    T_RUN(test_open_detached);
    T_RUN(test_sequence_overflow);
    T_RUN(test_export_limits);
    T_RUN(test_invalid_public_keys);
    T_RUN(test_private_keys);
    T_RUN(test_ephemeral);
    return t_done();
}
