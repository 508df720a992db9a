/*
 * HPKE (RFC 9180) over OpenSSL 3.0: X25519 / P-256 through EVP_PKEY, the AEADs
 * through EVP_CIPHER, HKDF through crypto/hash.h. Section numbers below are RFC 9180.
 */
#include "crypto/hpke.h"

#include <limits.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/obj_mac.h>
#include <openssl/param_build.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/limits.h"
#include "base/secmem.h"
#include "crypto/hash.h"

/* ---- algorithm tables (§7) -------------------------------------------------------- */

typedef struct {
    uint16_t id;
    size_t npk; /* Npk = Nenc */
    const char *name;
} kem_alg;

/* Both DHKEMs use HKDF-SHA256, Nsecret = 32, Nsk = 32, and a 32-byte DH output. */
#define KEM_NSECRET 32
#define KEM_NDH 32

static const kem_alg kems[] = {
    {CF_HPKE_KEM_P256_SHA256, 65, "DHKEM(P-256, HKDF-SHA256)"},
    {CF_HPKE_KEM_X25519_SHA256, 32, "DHKEM(X25519, HKDF-SHA256)"},
};

typedef struct {
    uint16_t id;
    cf_hash_alg hash;
    size_t nh;
} kdf_alg;

static const kdf_alg kdfs[] = {
    {CF_HPKE_KDF_HKDF_SHA256, CF_SHA256, 32},
    {CF_HPKE_KDF_HKDF_SHA384, CF_SHA384, 48},
    {CF_HPKE_KDF_HKDF_SHA512, CF_SHA512, 64},
};

typedef struct {
    uint16_t id;
    const char *ossl_name; /* NULL: export-only */
    size_t nk;
} aead_alg;

static const aead_alg aeads[] = {
    {CF_HPKE_AEAD_AES128GCM, "AES-128-GCM", 16},
    {CF_HPKE_AEAD_AES256GCM, "AES-256-GCM", 32},
    {CF_HPKE_AEAD_CHACHA20POLY1305, "ChaCha20-Poly1305", 32},
    {CF_HPKE_AEAD_EXPORT_ONLY, NULL, 0},
};

/* Fetch each cipher once: an EVP_aes_*() handle would be re-fetched on every init. */
static EVP_CIPHER *cipher_cache[CF_ARRAY_LEN(aeads)];
static pthread_once_t cipher_once = PTHREAD_ONCE_INIT;

static void fetch_ciphers(void)
{
    for (size_t i = 0; i < CF_ARRAY_LEN(aeads); i++)
        if (aeads[i].ossl_name != NULL)
            cipher_cache[i] = EVP_CIPHER_fetch(NULL, aeads[i].ossl_name, NULL);
}

static const EVP_CIPHER *aead_cipher(const aead_alg *a)
{
    (void)pthread_once(&cipher_once, fetch_ciphers);
    return cipher_cache[a - aeads];
}

static const kem_alg *find_kem(uint16_t id)
{
    for (size_t i = 0; i < CF_ARRAY_LEN(kems); i++)
        if (kems[i].id == id)
            return &kems[i];
    return NULL;
}

static const kdf_alg *find_kdf(uint16_t id)
{
    for (size_t i = 0; i < CF_ARRAY_LEN(kdfs); i++)
        if (kdfs[i].id == id)
            return &kdfs[i];
    return NULL;
}

static const aead_alg *find_aead(uint16_t id)
{
    for (size_t i = 0; i < CF_ARRAY_LEN(aeads); i++)
        if (aeads[i].id == id)
            return &aeads[i];
    return NULL;
}

int cf_hpke_suite_check(const cf_hpke_suite *suite)
{
    CF_ENSURE(suite != NULL, CF_E_INVAL);
    if (find_kem(suite->kem) == NULL)
        return cf_err_set(CF_E_UNSUPPORTED, "HPKE KEM 0x%04x is not implemented", suite->kem);
    if (find_kdf(suite->kdf) == NULL)
        return cf_err_set(CF_E_UNSUPPORTED, "HPKE KDF 0x%04x is not implemented", suite->kdf);
    if (find_aead(suite->aead) == NULL)
        return cf_err_set(CF_E_UNSUPPORTED, "HPKE AEAD 0x%04x is not implemented", suite->aead);
    return 0;
}

size_t cf_hpke_kem_pk_len(uint16_t kem)
{
    const kem_alg *k = find_kem(kem);
    return k != NULL ? k->npk : 0;
}

/* ---- LabeledExtract / LabeledExpand (§4) ----------------------------------------- */

#define HPKE_V1 "HPKE-v1"
#define HPKE_V1_LEN 7
#define SUITE_ID_MAX 10 /* "HPKE" || kem || kdf || aead */
#define LABEL_MAX 16    /* longest label used: "shared_secret" */

/* Largest ikm given to LabeledExtract: info, psk, psk_id, DeriveKeyPair ikm, dh. */
#define EXTRACT_IKM_MAX                                                                  \
    CF_MAX(CF_MAX(CF_HPKE_MAX_INFO, CF_HPKE_MAX_PSK),                                    \
           CF_MAX(CF_MAX(CF_HPKE_MAX_PSK_ID, CF_HPKE_MAX_IKM), 2 * KEM_NDH))
#define SCRATCH_MAX (HPKE_V1_LEN + SUITE_ID_MAX + LABEL_MAX + EXTRACT_IKM_MAX)
/* Largest info given to LabeledExpand: exporter_context; kem_context and
 * key_schedule_context are smaller (checked below). */
#define EXPAND_INFO_MAX CF_HPKE_MAX_INFO
_Static_assert(EXPAND_INFO_MAX >= 3 * CF_HPKE_MAX_PK, "kem_context must fit");
_Static_assert(EXPAND_INFO_MAX >= 1 + 2 * CF_HPKE_MAX_NH, "key_schedule_context must fit");

/* A suite_id with the KDF it labels for: KEM-internal ("KEM" || kem_id, §4.1) or the
 * full HPKE suite ("HPKE" || kem_id || kdf_id || aead_id, §5.1). */
typedef struct {
    uint8_t id[SUITE_ID_MAX];
    size_t id_len;
    cf_hash_alg hash;
    size_t nh;
} labeler;

static void labeler_kem(labeler *l, uint16_t kem)
{
    l->id[0] = 'K';
    l->id[1] = 'E';
    l->id[2] = 'M';
    l->id[3] = (uint8_t)(kem >> 8);
    l->id[4] = (uint8_t)kem;
    l->id_len = 5;
    /* Both implemented DHKEMs use HKDF-SHA256 (§7.1 Table 2). */
    l->hash = CF_SHA256;
    l->nh = CF_SHA256_LEN;
}

static void labeler_suite(labeler *l, const cf_hpke_suite *s, const kdf_alg *kdf)
{
    const uint16_t ids[3] = {s->kem, s->kdf, s->aead};

    memcpy(l->id, "HPKE", 4);
    for (size_t i = 0; i < 3; i++) {
        l->id[4 + 2 * i] = (uint8_t)(ids[i] >> 8);
        l->id[5 + 2 * i] = (uint8_t)ids[i];
    }
    l->id_len = 10;
    l->hash = kdf->hash;
    l->nh = kdf->nh;
}

/* Appends n bytes at *off in a buffer of size cap (the caller has checked the total). */
static void put(uint8_t *dst, size_t *off, const void *src, size_t n)
{
    if (n > 0) {
        memcpy(dst + *off, src, n);
        *off += n;
    }
}

/*
 * LabeledExtract(salt, label, ikm) = Extract(salt, "HPKE-v1" || suite_id || label || ikm).
 * The labeled ikm holds secrets (DH output, psk), so it is assembled in scratch, which
 * the caller keeps in secret memory, and wiped. out receives Nh bytes.
 */
static int labeled_extract(const labeler *l, const uint8_t *salt, size_t salt_len,
                           const char *label, const uint8_t *ikm, size_t ikm_len,
                           uint8_t *scratch, size_t scratch_size, uint8_t *out)
{
    size_t label_len = strlen(label), off = 0;
    int rc;

    CF_ENSURE(label_len <= LABEL_MAX, CF_E_INTERNAL);
    CF_ENSURE(ikm_len <= scratch_size - (HPKE_V1_LEN + l->id_len + label_len), CF_E_TOO_LARGE);
    put(scratch, &off, HPKE_V1, HPKE_V1_LEN);
    put(scratch, &off, l->id, l->id_len);
    put(scratch, &off, label, label_len);
    put(scratch, &off, ikm, ikm_len);
    rc = cf_hkdf_extract(l->hash, salt, salt_len, scratch, off, out);
    cf_wipe(scratch, off);
    return rc;
}

/* LabeledExpand(prk, label, info, L) = Expand(prk, I2OSP(L, 2) || "HPKE-v1" || suite_id ||
 * label || info, L). info is public in every use (kem_context, key_schedule_context,
 * exporter_context, the DeriveKeyPair counter). */
static int labeled_expand(const labeler *l, const uint8_t *prk, size_t prk_len,
                          const char *label, const uint8_t *info, size_t info_len, uint8_t *out,
                          size_t L)
{
    uint8_t labeled_info[2 + HPKE_V1_LEN + SUITE_ID_MAX + LABEL_MAX + EXPAND_INFO_MAX];
    size_t label_len = strlen(label), off = 0;
    uint8_t l2[2];

    CF_ENSURE(label_len <= LABEL_MAX, CF_E_INTERNAL);
    CF_ENSURE(info_len <= EXPAND_INFO_MAX, CF_E_TOO_LARGE);
    /* §4: L fits I2OSP(L, 2); HKDF-Expand allows at most 255 * Nh. */
    CF_ENSURE(L > 0 && L <= 255 * l->nh && L <= 0xffff, CF_E_RANGE);
    l2[0] = (uint8_t)(L >> 8);
    l2[1] = (uint8_t)L;
    put(labeled_info, &off, l2, 2);
    put(labeled_info, &off, HPKE_V1, HPKE_V1_LEN);
    put(labeled_info, &off, l->id, l->id_len);
    put(labeled_info, &off, label, label_len);
    put(labeled_info, &off, info, info_len);
    return cf_hkdf_expand(l->hash, prk, prk_len, labeled_info, off, out, L);
}

/* ---- keys (§7.1) ------------------------------------------------------------------ */

struct cf_hpke_key {
    const kem_alg *kem;
    bool has_sk;
    bool secure; /* allocated with cf_secure_alloc (as a key_block) */
    uint8_t pk[CF_HPKE_MAX_PK];
    uint8_t sk[CF_HPKE_SK_LEN];
    EVP_PKEY *pkey;
};

/*
 * Secret working memory of one key derivation or setup. Every cf_secure_alloc maps
 * and locks at least one page (and costs an mmap/mlock/munlock/munmap round trip),
 * so the work area lives in the same allocation as the private key or context it
 * produces (key_block, cf_hpke_ctx) and is wiped as soon as the operation ends.
 */
typedef struct {
    cf_hpke_key eph; /* the sender's ephemeral key pair, built in place */
    uint8_t ikm[CF_HPKE_SK_LEN];
    uint8_t dkp_prk[CF_SHA256_LEN];
    uint8_t dh[2 * KEM_NDH];
    uint8_t kem_context[3 * CF_HPKE_MAX_PK];
    uint8_t eae_prk[CF_SHA256_LEN];
    uint8_t shared_secret[KEM_NSECRET];
    uint8_t psk_id_hash[CF_HPKE_MAX_NH];
    uint8_t info_hash[CF_HPKE_MAX_NH];
    uint8_t ks_context[1 + 2 * CF_HPKE_MAX_NH];
    uint8_t secret[CF_HPKE_MAX_NH];
    uint8_t scratch[SCRATCH_MAX];
} hpke_work;

static hpke_work *work_new(void) { return cf_secure_alloc(sizeof(hpke_work)); }

/* A private key with the work area that made it; the key comes first so that the
 * key pointer is the allocation. */
typedef struct {
    cf_hpke_key key;
    hpke_work work;
} key_block;

static const uint8_t p256_order[32] = {
    0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51,
};

/* 1 if the big-endian scalar s is in [1, order-1], without secret-dependent branches. */
static int p256_scalar_ok(const uint8_t s[32])
{
    unsigned borrow = 0, nz = 0;

    for (size_t i = 32; i-- > 0;) {
        unsigned d = (unsigned)s[i] - p256_order[i] - borrow;
        borrow = (d >> 8) & 1u;
        nz |= s[i];
    }
    /* borrow set: s - order < 0, i.e. s < order. */
    return (int)(borrow & (unsigned)((nz | (0u - nz)) >> 8 & 1u));
}

/* RFC 7748 §5 decodeScalar25519 clamping, required by §7.1.2 for X25519 keys. */
static void x25519_clamp(uint8_t sk[32])
{
    sk[0] &= 248;
    sk[31] &= 127;
    sk[31] |= 64;
}

static cf_hpke_key *key_alloc(const kem_alg *kem, bool secret)
{
    cf_hpke_key *k = secret ? cf_secure_alloc(sizeof(key_block)) : calloc(1, sizeof(*k));

    if (k != NULL) {
        k->kem = kem;
        k->secure = secret;
    }
    return k;
}

static hpke_work *key_work(cf_hpke_key *k) { return &((key_block *)(void *)k)->work; }

/* Releases what an in-place key holds outside itself (the EVP_PKEY). */
static void key_clear(cf_hpke_key *k)
{
    EVP_PKEY_free(k->pkey);
    k->pkey = NULL;
}

void cf_hpke_key_free(cf_hpke_key *k)
{
    if (k == NULL)
        return;
    key_clear(k);
    if (k->secure)
        cf_secure_free(k);
    else
        free(k);
}

static int x25519_load_sk(cf_hpke_key *k)
{
    size_t n = 32;

    k->pkey = EVP_PKEY_new_raw_private_key_ex(NULL, "X25519", NULL, k->sk, 32);
    if (k->pkey == NULL)
        return CF_E_CRYPTO;
    if (EVP_PKEY_get_raw_public_key(k->pkey, k->pk, &n) != 1 || n != 32)
        return CF_E_CRYPTO;
    return 0;
}

/* Builds an EC EVP_PKEY on P-256 from OSSL_PARAMs (public only, or key pair). */
static int p256_fromdata(OSSL_PARAM_BLD *bld, int selection, EVP_PKEY **ret)
{
    OSSL_PARAM *params = NULL;
    EVP_PKEY_CTX *pctx = NULL;
    EVP_PKEY *pkey = NULL;
    int rc = CF_E_CRYPTO;

    if (OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, SN_X9_62_prime256v1,
                                        0) != 1)
        goto out;
    params = OSSL_PARAM_BLD_to_param(bld);
    pctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
    if (params == NULL || pctx == NULL || EVP_PKEY_fromdata_init(pctx) != 1)
        goto out;
    if (EVP_PKEY_fromdata(pctx, &pkey, selection, params) != 1) {
        rc = CF_E_INVAL;
        goto out;
    }
    *ret = pkey;
    pkey = NULL;
    rc = 0;
out:
    EVP_PKEY_free(pkey);
    EVP_PKEY_CTX_free(pctx);
    OSSL_PARAM_free(params);
    return rc;
}

/* k->sk holds a scalar in [1, order-1]: compute pk = sk * G (SEC1 uncompressed). */
static int p256_load_sk(cf_hpke_key *k)
{
    BN_CTX *bnctx = BN_CTX_secure_new();
    BIGNUM *d = BN_secure_new();
    EC_GROUP *g = EC_GROUP_new_by_curve_name(NID_X9_62_prime256v1);
    EC_POINT *P = NULL;
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    int rc = CF_E_CRYPTO;

    if (bnctx == NULL || d == NULL || g == NULL || bld == NULL)
        goto out;
    P = EC_POINT_new(g);
    if (P == NULL || BN_bin2bn(k->sk, 32, d) == NULL)
        goto out;
    if (EC_POINT_mul(g, P, d, NULL, NULL, bnctx) != 1 ||
        EC_POINT_point2oct(g, P, POINT_CONVERSION_UNCOMPRESSED, k->pk, 65, bnctx) != 65)
        goto out;
    if (OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_PRIV_KEY, d) != 1 ||
        OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, k->pk, 65) != 1)
        goto out;
    rc = p256_fromdata(bld, EVP_PKEY_KEYPAIR, &k->pkey);
    if (rc == CF_E_INVAL)
        rc = CF_E_CRYPTO; /* our own scalar and point: not the caller's fault */
out:
    OSSL_PARAM_BLD_free(bld);
    EC_POINT_free(P);
    EC_GROUP_free(g);
    BN_clear_free(d);
    BN_CTX_free(bnctx);
    return rc;
}

/* k->sk is set (clamped for X25519, range-checked for P-256): derive pk and pkey. */
static int key_load_sk(cf_hpke_key *k)
{
    k->has_sk = true;
    if (k->kem->id == CF_HPKE_KEM_X25519_SHA256)
        return x25519_load_sk(k);
    return p256_load_sk(k);
}

/* DeriveKeyPair (§7.1.3) up to the raw sk: what the RFC's vectors print. */
static int derive_sk(const kem_alg *kem, const uint8_t *ikm, size_t ikm_len, hpke_work *w,
                     uint8_t sk[CF_HPKE_SK_LEN])
{
    labeler l;

    labeler_kem(&l, kem->id);
    if (ikm_len < CF_HPKE_SK_LEN || ikm_len > CF_HPKE_MAX_IKM)
        return cf_err_set(CF_E_INVAL, "DeriveKeyPair ikm must be %d to %d bytes", CF_HPKE_SK_LEN,
                          CF_HPKE_MAX_IKM);
    CF_GUARD(labeled_extract(&l, NULL, 0, "dkp_prk", ikm, ikm_len, w->scratch,
                             sizeof(w->scratch), w->dkp_prk));
    if (kem->id == CF_HPKE_KEM_X25519_SHA256)
        return labeled_expand(&l, w->dkp_prk, sizeof(w->dkp_prk), "sk", NULL, 0, sk,
                              CF_HPKE_SK_LEN);
    /* P-256: rejection sampling over candidates until one is in [1, order-1]. */
    for (unsigned counter = 0; counter <= 255; counter++) {
        uint8_t c = (uint8_t)counter;
        CF_GUARD(labeled_expand(&l, w->dkp_prk, sizeof(w->dkp_prk), "candidate", &c, 1, sk,
                                CF_HPKE_SK_LEN));
        sk[0] &= 0xff; /* bitmask for P-256 (§7.1.3) */
        if (p256_scalar_ok(sk))
            return 0;
    }
    cf_wipe(sk, CF_HPKE_SK_LEN);
    return cf_err_set(CF_E_CRYPTO, "DeriveKeyPairError: no valid P-256 scalar in 256 candidates");
}

/* DeriveKeyPair into k (zeroed, in secret memory); the caller clears k on failure. */
static int key_derive_into(const kem_alg *kem, const uint8_t *ikm, size_t ikm_len, hpke_work *w,
                           cf_hpke_key *k)
{
    k->kem = kem;
    CF_GUARD(derive_sk(kem, ikm, ikm_len, w, k->sk));
    if (kem->id == CF_HPKE_KEM_X25519_SHA256)
        x25519_clamp(k->sk);
    return key_load_sk(k);
}

/* DeriveKeyPair over ikm, or over Nsk fresh private-DRBG bytes if ikm is NULL
 * (GenerateKeyPair, §7.1.3 allows DeriveKeyPair over uniformly random input). */
static int key_new(const kem_alg *kem, const uint8_t *ikm, size_t ikm_len, cf_hpke_key **ret)
{
    cf_hpke_key *k = key_alloc(kem, true);
    hpke_work *w;
    int rc;

    CF_ENSURE(k != NULL, CF_E_NOMEM);
    w = key_work(k);
    if (ikm == NULL) {
        CF_GUARD_OUT(cf_random_secret(w->ikm, sizeof(w->ikm)));
        ikm = w->ikm;
        ikm_len = sizeof(w->ikm);
    }
    CF_GUARD_OUT(key_derive_into(kem, ikm, ikm_len, w, k));
    cf_wipe(w, sizeof(*w));
    *ret = k;
    k = NULL;
out:
    cf_hpke_key_free(k);
    return rc;
}

static int find_kem_or_fail(uint16_t id, const kem_alg **ret)
{
    const kem_alg *kem = find_kem(id);

    if (kem == NULL)
        return cf_err_set(CF_E_UNSUPPORTED, "HPKE KEM 0x%04x is not implemented", id);
    *ret = kem;
    return 0;
}

int cf_hpke_key_derive(uint16_t kem_id, const uint8_t *ikm, size_t ikm_len, cf_hpke_key **ret)
{
    const kem_alg *kem = NULL;

    CF_ENSURE(ret != NULL && ikm != NULL, CF_E_INVAL);
    CF_GUARD(find_kem_or_fail(kem_id, &kem));
    return key_new(kem, ikm, ikm_len, ret);
}

int cf_hpke_key_generate(uint16_t kem_id, cf_hpke_key **ret)
{
    const kem_alg *kem = NULL;

    CF_ENSURE(ret != NULL, CF_E_INVAL);
    CF_GUARD(find_kem_or_fail(kem_id, &kem));
    return key_new(kem, NULL, 0, ret);
}

int cf_hpke_test_derive_sk(uint16_t kem_id, const uint8_t *ikm, size_t ikm_len,
                           uint8_t out[CF_HPKE_SK_LEN])
{
    const kem_alg *kem = NULL;
    hpke_work *w = NULL;
    int rc;

    CF_ENSURE(out != NULL && (ikm != NULL || ikm_len == 0), CF_E_INVAL);
    CF_GUARD(find_kem_or_fail(kem_id, &kem));
    w = work_new();
    CF_ENSURE(w != NULL, CF_E_NOMEM);
    rc = derive_sk(kem, ikm, ikm_len, w, out);
    cf_secure_free(w);
    return rc;
}

int cf_hpke_key_from_private(uint16_t kem_id, const uint8_t *sk, size_t sk_len,
                             cf_hpke_key **ret)
{
    const kem_alg *kem = NULL;
    cf_hpke_key *k = NULL;
    int rc;

    CF_ENSURE(ret != NULL && sk != NULL, CF_E_INVAL);
    CF_GUARD(find_kem_or_fail(kem_id, &kem));
    if (sk_len != CF_HPKE_SK_LEN)
        return cf_err_set(CF_E_INVAL, "%s private key must be %d bytes, got %zu", kem->name,
                          CF_HPKE_SK_LEN, sk_len);
    k = key_alloc(kem, true);
    CF_ENSURE(k != NULL, CF_E_NOMEM);
    memcpy(k->sk, sk, CF_HPKE_SK_LEN);
    if (kem->id == CF_HPKE_KEM_X25519_SHA256) {
        x25519_clamp(k->sk); /* §7.1.2: DeserializePrivateKey MUST clamp its input */
    } else if (!p256_scalar_ok(k->sk)) {
        /* §7.1.2: a P-256 private key is a scalar in [1, order-1]. */
        rc = cf_err_set(CF_E_INVAL, "P-256 private key is zero or not below the group order");
        goto out;
    }
    CF_GUARD_OUT(key_load_sk(k));
    *ret = k;
    k = NULL;
    rc = 0;
out:
    cf_hpke_key_free(k);
    return rc;
}

static int key_from_public(const kem_alg *kem, const uint8_t *pk, size_t pk_len,
                           cf_hpke_key **ret)
{
    cf_hpke_key *k = NULL;
    OSSL_PARAM_BLD *bld = NULL;
    EVP_PKEY_CTX *chk = NULL;
    int rc;

    CF_ENSURE(kem != NULL, CF_E_INVAL);
    if (pk_len != kem->npk)
        return cf_err_set(CF_E_INVAL, "%s public key must be %zu bytes, got %zu", kem->name,
                          kem->npk, pk_len);
    k = key_alloc(kem, false);
    CF_ENSURE(k != NULL, CF_E_NOMEM);
    memcpy(k->pk, pk, pk_len);
    if (kem->id == CF_HPKE_KEM_X25519_SHA256) {
        /* Every 32-byte string is an X25519 u-coordinate (RFC 7748 §5); small-order
         * points are caught by the all-zero DH check (§7.1.4). */
        k->pkey = EVP_PKEY_new_raw_public_key_ex(NULL, "X25519", NULL, pk, pk_len);
        CF_ENSURE_OUT(k->pkey != NULL, CF_E_CRYPTO);
    } else {
        /* §7.1.1 / §7.1.4: SEC1 uncompressed point, on the curve, not the identity.
         * OpenSSL rejects off-curve points and out-of-range coordinates on import;
         * the explicit public check repeats the full validation. */
        if (pk[0] != 0x04) {
            rc = cf_err_set(CF_E_INVAL, "P-256 public key is not an uncompressed point");
            goto out;
        }
        bld = OSSL_PARAM_BLD_new();
        CF_ENSURE_OUT(bld != NULL, CF_E_NOMEM);
        CF_ENSURE_OUT(OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pk,
                                                       pk_len) == 1,
                      CF_E_CRYPTO);
        rc = p256_fromdata(bld, EVP_PKEY_PUBLIC_KEY, &k->pkey);
        if (rc == 0) {
            chk = EVP_PKEY_CTX_new_from_pkey(NULL, k->pkey, NULL);
            CF_ENSURE_OUT(chk != NULL, CF_E_NOMEM);
            if (EVP_PKEY_public_check(chk) != 1)
                rc = CF_E_INVAL;
        }
        if (rc == CF_E_INVAL)
            rc = cf_err_set(CF_E_INVAL, "P-256 public key is not a valid curve point");
        if (rc < 0)
            goto out;
    }
    *ret = k;
    k = NULL;
    rc = 0;
out:
    ERR_clear_error();
    EVP_PKEY_CTX_free(chk);
    OSSL_PARAM_BLD_free(bld);
    cf_hpke_key_free(k);
    return rc;
}

int cf_hpke_key_from_public(uint16_t kem_id, const uint8_t *pk, size_t pk_len,
                            cf_hpke_key **ret)
{
    const kem_alg *kem = NULL;

    CF_ENSURE(ret != NULL && pk != NULL, CF_E_INVAL);
    CF_GUARD(find_kem_or_fail(kem_id, &kem));
    return key_from_public(kem, pk, pk_len, ret);
}

int cf_hpke_key_public_only(const cf_hpke_key *k, cf_hpke_key **ret)
{
    CF_ENSURE(k != NULL && ret != NULL, CF_E_INVAL);
    return key_from_public(k->kem, k->pk, k->kem->npk, ret);
}

const uint8_t *cf_hpke_key_pub(const cf_hpke_key *k, size_t *ret_len)
{
    *ret_len = k->kem->npk;
    return k->pk;
}

int cf_hpke_key_priv(const cf_hpke_key *k, uint8_t out[CF_HPKE_SK_LEN])
{
    CF_ENSURE(k != NULL && out != NULL, CF_E_INVAL);
    if (!k->has_sk)
        return cf_err_set(CF_E_INVAL, "HPKE key has no private part");
    /* Stored clamped (X25519) or reduced (P-256): SerializePrivateKey per §7.1.2. */
    memcpy(out, k->sk, CF_HPKE_SK_LEN);
    return 0;
}

uint16_t cf_hpke_key_kem(const cf_hpke_key *k) { return k->kem->id; }
bool cf_hpke_key_has_private(const cf_hpke_key *k) { return k->has_sk; }

/* DH(sk, pk) into out[KEM_NDH]. §7.1.4: an all-zero X25519 output means pk has small
 * order and MUST be rejected (OpenSSL refuses it too; the explicit check keeps the
 * rule visible and independent of the library). */
static int dh(const cf_hpke_key *sk, const cf_hpke_key *pk, uint8_t out[KEM_NDH])
{
    EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_from_pkey(NULL, sk->pkey, NULL);
    size_t n = KEM_NDH;
    uint8_t acc = 0;
    int rc = CF_E_CRYPTO;

    CF_ENSURE(c != NULL, CF_E_NOMEM);
    if (EVP_PKEY_derive_init(c) != 1)
        goto out;
    if (EVP_PKEY_derive_set_peer(c, pk->pkey) != 1 || EVP_PKEY_derive(c, out, &n) != 1) {
        rc = cf_err_set(CF_E_INVAL, "Diffie-Hellman with the peer's %s public key failed "
                                    "(invalid or small-order key, RFC 9180 §7.1.4)",
                        pk->kem->name);
        goto out;
    }
    CF_ENSURE_OUT(n == KEM_NDH, CF_E_CRYPTO);
    for (size_t i = 0; i < KEM_NDH; i++)
        acc |= out[i];
    if (acc == 0) {
        rc = cf_err_set(CF_E_INVAL, "X25519 output is all zero: small-order public key "
                                    "(RFC 9180 §7.1.4)");
        goto out;
    }
    rc = 0;
out:
    if (rc < 0)
        cf_wipe(out, KEM_NDH);
    ERR_clear_error();
    EVP_PKEY_CTX_free(c);
    return rc;
}

/* ---- contexts (§5) ---------------------------------------------------------------- */

struct cf_hpke_ctx {
    cf_hpke_suite suite;
    labeler lab;
    const aead_alg *aead;
    bool sender;
    uint64_t seq;
    uint8_t key[CF_HPKE_MAX_NK];
    uint8_t base_nonce[CF_HPKE_NN];
    uint8_t exporter_secret[CF_HPKE_MAX_NH];
    hpke_work work; /* setup scratch on the context's locked page; wiped after setup */
};

typedef struct {
    const kem_alg *kem;
    const kdf_alg *kdf;
    const aead_alg *aead;
} suite_algs;

static bool mode_is_auth(cf_hpke_mode m) { return m == CF_HPKE_MODE_AUTH || m == CF_HPKE_MODE_AUTH_PSK; }
static bool mode_is_psk(cf_hpke_mode m) { return m == CF_HPKE_MODE_PSK || m == CF_HPKE_MODE_AUTH_PSK; }

/* Suite, mode, lengths and §5.1 VerifyPSKInputs. */
static int check_params(const cf_hpke_params *p, suite_algs *ret)
{
    bool got_psk, got_psk_id;

    CF_ENSURE(p != NULL, CF_E_INVAL);
    CF_GUARD(cf_hpke_suite_check(&p->suite));
    if ((unsigned)p->mode > CF_HPKE_MODE_AUTH_PSK)
        return cf_err_set(CF_E_INVAL, "unknown HPKE mode %u", (unsigned)p->mode);
    CF_ENSURE(p->info != NULL || p->info_len == 0, CF_E_INVAL);
    CF_ENSURE(p->psk != NULL || p->psk_len == 0, CF_E_INVAL);
    CF_ENSURE(p->psk_id != NULL || p->psk_id_len == 0, CF_E_INVAL);
    if (p->info_len > CF_HPKE_MAX_INFO)
        return cf_err_set(CF_E_TOO_LARGE, "HPKE info is longer than %d bytes", CF_HPKE_MAX_INFO);
    got_psk = p->psk_len > 0;
    got_psk_id = p->psk_id_len > 0;
    if (got_psk != got_psk_id)
        return cf_err_set(CF_E_INVAL, "inconsistent PSK inputs: psk and psk_id go together "
                                      "(RFC 9180 §5.1)");
    if (got_psk && !mode_is_psk(p->mode))
        return cf_err_set(CF_E_INVAL, "PSK input provided when not needed (RFC 9180 §5.1)");
    if (!got_psk && mode_is_psk(p->mode))
        return cf_err_set(CF_E_INVAL, "missing required PSK input (RFC 9180 §5.1)");
    if (got_psk && p->psk_len < CF_HPKE_MIN_PSK)
        return cf_err_set(CF_E_INVAL, "PSK must be at least %d bytes (RFC 9180 §9.5)",
                          CF_HPKE_MIN_PSK);
    if (p->psk_len > CF_HPKE_MAX_PSK || p->psk_id_len > CF_HPKE_MAX_PSK_ID)
        return cf_err_set(CF_E_TOO_LARGE, "PSK or PSK id over the limit");
    ret->kem = find_kem(p->suite.kem);
    ret->kdf = find_kdf(p->suite.kdf);
    ret->aead = find_aead(p->suite.aead);
    return 0;
}

static int check_key(const cf_hpke_key *k, const kem_alg *kem, bool need_private,
                     const char *what)
{
    if (k == NULL)
        return cf_err_set(CF_E_INVAL, "missing %s", what);
    if (k->kem != kem)
        return cf_err_set(CF_E_INVAL, "%s is a %s key, the suite uses %s", what, k->kem->name,
                          kem->name);
    if (need_private && !k->has_sk)
        return cf_err_set(CF_E_INVAL, "%s must be a private key", what);
    return 0;
}

/* Auth modes need the sender key; the others must not be given one (caller bug). */
static int check_auth_key(cf_hpke_mode mode, const cf_hpke_key *k, const kem_alg *kem,
                          bool need_private, const char *what)
{
    if (!mode_is_auth(mode)) {
        if (k != NULL)
            return cf_err_set(CF_E_INVAL, "%s given in a mode without sender authentication",
                              what);
        return 0;
    }
    return check_key(k, kem, need_private, what);
}

/* ExtractAndExpand (§4.1). */
static int extract_and_expand(const kem_alg *kem, hpke_work *w, size_t dh_len,
                              size_t kem_context_len)
{
    labeler l;

    labeler_kem(&l, kem->id);
    CF_GUARD(labeled_extract(&l, NULL, 0, "eae_prk", w->dh, dh_len, w->scratch,
                             sizeof(w->scratch), w->eae_prk));
    return labeled_expand(&l, w->eae_prk, sizeof(w->eae_prk), "shared_secret", w->kem_context,
                          kem_context_len, w->shared_secret, KEM_NSECRET);
}

/* KeySchedule (§5.1), from w->shared_secret to a new context. */
static int key_schedule(const cf_hpke_params *p, const suite_algs *a, bool sender,
                        cf_hpke_ctx *ctx, cf_hpke_trace *trace)
{
    hpke_work *w = &ctx->work;
    size_t nh = a->kdf->nh, ks_len = 1 + 2 * nh;

    ctx->suite = p->suite;
    ctx->aead = a->aead;
    ctx->sender = sender;
    labeler_suite(&ctx->lab, &p->suite, a->kdf);
    CF_GUARD(labeled_extract(&ctx->lab, NULL, 0, "psk_id_hash", p->psk_id, p->psk_id_len,
                             w->scratch, sizeof(w->scratch), w->psk_id_hash));
    CF_GUARD(labeled_extract(&ctx->lab, NULL, 0, "info_hash", p->info, p->info_len, w->scratch,
                             sizeof(w->scratch), w->info_hash));
    w->ks_context[0] = (uint8_t)p->mode;
    memcpy(w->ks_context + 1, w->psk_id_hash, nh);
    memcpy(w->ks_context + 1 + nh, w->info_hash, nh);
    CF_GUARD(labeled_extract(&ctx->lab, w->shared_secret, KEM_NSECRET, "secret", p->psk,
                             p->psk_len, w->scratch, sizeof(w->scratch), w->secret));
    if (a->aead->nk > 0) {
        CF_GUARD(labeled_expand(&ctx->lab, w->secret, nh, "key", w->ks_context, ks_len, ctx->key,
                                a->aead->nk));
        CF_GUARD(labeled_expand(&ctx->lab, w->secret, nh, "base_nonce", w->ks_context, ks_len,
                                ctx->base_nonce, CF_HPKE_NN));
    }
    CF_GUARD(labeled_expand(&ctx->lab, w->secret, nh, "exp", w->ks_context, ks_len,
                            ctx->exporter_secret, nh));
    if (trace != NULL) {
        memset(trace, 0, sizeof(*trace));
        memcpy(trace->shared_secret, w->shared_secret, KEM_NSECRET);
        trace->shared_secret_len = KEM_NSECRET;
        memcpy(trace->key_schedule_context, w->ks_context, ks_len);
        trace->key_schedule_context_len = ks_len;
        memcpy(trace->secret, w->secret, nh);
        trace->secret_len = nh;
        memcpy(trace->key, ctx->key, a->aead->nk);
        trace->key_len = a->aead->nk;
        memcpy(trace->base_nonce, ctx->base_nonce, CF_HPKE_NN);
        trace->base_nonce_len = a->aead->nk > 0 ? CF_HPKE_NN : 0;
        memcpy(trace->exporter_secret, ctx->exporter_secret, nh);
        trace->exporter_secret_len = nh;
    }
    return 0;
}

/* Ends a setup: on success the context keeps only its key-schedule outputs (the
 * work area is wiped); on failure everything is wiped and freed. */
static int setup_finish(int rc, cf_hpke_ctx *ctx, cf_hpke_ctx **ret_ctx)
{
    key_clear(&ctx->work.eph);
    if (rc < 0) {
        cf_secure_free(ctx);
        return rc;
    }
    cf_wipe(&ctx->work, sizeof(ctx->work));
    *ret_ctx = ctx;
    return 0;
}

static int setup_sender(const cf_hpke_params *p, const cf_hpke_key *pkR, const cf_hpke_key *skS,
                        const cf_hpke_key *skE, uint8_t ret_enc[CF_HPKE_MAX_ENC],
                        size_t *ret_enc_len, cf_hpke_ctx **ret_ctx, cf_hpke_trace *trace)
{
    suite_algs a;
    cf_hpke_ctx *ctx = NULL;
    hpke_work *w;
    size_t npk, dh_len = KEM_NDH, off = 0;
    int rc;

    CF_ENSURE(ret_enc != NULL && ret_enc_len != NULL && ret_ctx != NULL, CF_E_INVAL);
    CF_GUARD(check_params(p, &a));
    CF_GUARD(check_key(pkR, a.kem, false, "recipient public key"));
    CF_GUARD(check_auth_key(p->mode, skS, a.kem, true, "sender private key"));
    if (skE != NULL)
        CF_GUARD(check_key(skE, a.kem, true, "ephemeral private key"));
    npk = a.kem->npk;
    ctx = cf_secure_alloc(sizeof(*ctx));
    CF_ENSURE(ctx != NULL, CF_E_NOMEM);
    w = &ctx->work;
    if (skE == NULL) {
        /* GenerateKeyPair: DeriveKeyPair over fresh private-DRBG bytes (§7.1.3). */
        CF_GUARD_OUT(cf_random_secret(w->ikm, sizeof(w->ikm)));
        CF_GUARD_OUT(key_derive_into(a.kem, w->ikm, sizeof(w->ikm), w, &w->eph));
        skE = &w->eph;
    }
    /* Encap / AuthEncap (§4.1): dh = DH(skE, pkR) [|| DH(skS, pkR)],
     * kem_context = enc || pkRm [|| pkSm]. */
    CF_GUARD_OUT(dh(skE, pkR, w->dh));
    put(w->kem_context, &off, skE->pk, npk);
    put(w->kem_context, &off, pkR->pk, npk);
    if (mode_is_auth(p->mode)) {
        CF_GUARD_OUT(dh(skS, pkR, w->dh + KEM_NDH));
        dh_len += KEM_NDH;
        put(w->kem_context, &off, skS->pk, npk);
    }
    CF_GUARD_OUT(extract_and_expand(a.kem, w, dh_len, off));
    CF_GUARD_OUT(key_schedule(p, &a, true, ctx, trace));
    memcpy(ret_enc, skE->pk, npk);
    *ret_enc_len = npk;
out:
    return setup_finish(rc, ctx, ret_ctx);
}

static int setup_receiver(const cf_hpke_params *p, const uint8_t *enc, size_t enc_len,
                          const cf_hpke_key *skR, const cf_hpke_key *pkS, cf_hpke_ctx **ret_ctx,
                          cf_hpke_trace *trace)
{
    suite_algs a;
    cf_hpke_ctx *ctx = NULL;
    cf_hpke_key *pkE = NULL;
    hpke_work *w;
    size_t npk, dh_len = KEM_NDH, off = 0;
    int rc;

    CF_ENSURE(ret_ctx != NULL && enc != NULL, CF_E_INVAL);
    CF_GUARD(check_params(p, &a));
    CF_GUARD(check_key(skR, a.kem, true, "recipient private key"));
    CF_GUARD(check_auth_key(p->mode, pkS, a.kem, false, "sender public key"));
    npk = a.kem->npk;
    if (enc_len != npk)
        return cf_err_set(CF_E_INVAL, "HPKE enc must be %zu bytes, got %zu", npk, enc_len);
    /* Decap / AuthDecap (§4.1): pkE = DeserializePublicKey(enc) (validated),
     * dh = DH(skR, pkE) [|| DH(skR, pkS)], kem_context = enc || pkRm [|| pkSm]. */
    CF_GUARD(key_from_public(a.kem, enc, enc_len, &pkE));
    ctx = cf_secure_alloc(sizeof(*ctx));
    if (ctx == NULL) {
        cf_hpke_key_free(pkE);
        return CF_E_NOMEM;
    }
    w = &ctx->work;
    CF_GUARD_OUT(dh(skR, pkE, w->dh));
    put(w->kem_context, &off, enc, npk);
    put(w->kem_context, &off, skR->pk, npk);
    if (mode_is_auth(p->mode)) {
        CF_GUARD_OUT(dh(skR, pkS, w->dh + KEM_NDH));
        dh_len += KEM_NDH;
        put(w->kem_context, &off, pkS->pk, npk);
    }
    CF_GUARD_OUT(extract_and_expand(a.kem, w, dh_len, off));
    CF_GUARD_OUT(key_schedule(p, &a, false, ctx, trace));
out:
    cf_hpke_key_free(pkE);
    return setup_finish(rc, ctx, ret_ctx);
}

int cf_hpke_setup_sender(const cf_hpke_params *p, const cf_hpke_key *pkR, const cf_hpke_key *skS,
                         uint8_t ret_enc[CF_HPKE_MAX_ENC], size_t *ret_enc_len,
                         cf_hpke_ctx **ret_ctx)
{
    return setup_sender(p, pkR, skS, NULL, ret_enc, ret_enc_len, ret_ctx, NULL);
}

int cf_hpke_setup_receiver(const cf_hpke_params *p, const uint8_t *enc, size_t enc_len,
                           const cf_hpke_key *skR, const cf_hpke_key *pkS, cf_hpke_ctx **ret_ctx)
{
    return setup_receiver(p, enc, enc_len, skR, pkS, ret_ctx, NULL);
}

int cf_hpke_test_setup_sender(const cf_hpke_params *p, const cf_hpke_key *pkR,
                              const cf_hpke_key *skS, const cf_hpke_key *skE,
                              uint8_t ret_enc[CF_HPKE_MAX_ENC], size_t *ret_enc_len,
                              cf_hpke_ctx **ret_ctx, cf_hpke_trace *trace)
{
    CF_ENSURE(skE != NULL, CF_E_INVAL);
    return setup_sender(p, pkR, skS, skE, ret_enc, ret_enc_len, ret_ctx, trace);
}

int cf_hpke_test_setup_receiver(const cf_hpke_params *p, const uint8_t *enc, size_t enc_len,
                                const cf_hpke_key *skR, const cf_hpke_key *pkS,
                                cf_hpke_ctx **ret_ctx, cf_hpke_trace *trace)
{
    return setup_receiver(p, enc, enc_len, skR, pkS, ret_ctx, trace);
}

/* ComputeNonce (§5.2): base_nonce XOR I2OSP(seq, Nn); seq is 64 bits wide here. */
static void compute_nonce(const cf_hpke_ctx *ctx, uint8_t out[CF_HPKE_NN])
{
    memcpy(out, ctx->base_nonce, CF_HPKE_NN);
    for (size_t i = 0; i < 8; i++)
        out[CF_HPKE_NN - 1 - i] ^= (uint8_t)(ctx->seq >> (8 * i));
}

void cf_hpke_test_set_seq(cf_hpke_ctx *ctx, uint64_t seq) { ctx->seq = seq; }
void cf_hpke_test_nonce(const cf_hpke_ctx *ctx, uint8_t out[CF_HPKE_NN]) { compute_nonce(ctx, out); }
cf_hpke_suite cf_hpke_ctx_suite(const cf_hpke_ctx *ctx) { return ctx->suite; }

void cf_hpke_ctx_free(cf_hpke_ctx *ctx) { cf_secure_free(ctx); }

/* One AEAD pass. Encrypt: writes in_len bytes to out and the tag to tag. Decrypt:
 * checks tag; CF_E_DECRYPT if it does not verify (out must then be discarded). */
static int aead_pass(const aead_alg *a, bool enc, const uint8_t *key,
                     const uint8_t nonce[CF_HPKE_NN], const uint8_t *aad, size_t aad_len,
                     const uint8_t *in, size_t in_len, uint8_t *out, uint8_t tag[CF_HPKE_NT])
{
    const EVP_CIPHER *cipher = aead_cipher(a);
    EVP_CIPHER_CTX *c = NULL;
    uint8_t fin[CF_HPKE_NT];
    int outl = 0, rc = CF_E_CRYPTO;

    CF_ENSURE(cipher != NULL, CF_E_CRYPTO);
    CF_ENSURE(aad_len <= INT_MAX && in_len <= INT_MAX, CF_E_TOO_LARGE);
    c = EVP_CIPHER_CTX_new();
    CF_ENSURE(c != NULL, CF_E_NOMEM);
    /* Nn = 12 is the default IV length of all three AEADs. */
    if (EVP_CipherInit_ex2(c, cipher, key, nonce, enc ? 1 : 0, NULL) != 1)
        goto out;
    if (!enc && EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_SET_TAG, CF_HPKE_NT, tag) != 1)
        goto out;
    if (aad_len > 0 && EVP_CipherUpdate(c, NULL, &outl, aad, (int)aad_len) != 1)
        goto out;
    if (in_len > 0 &&
        (EVP_CipherUpdate(c, out, &outl, in, (int)in_len) != 1 || (size_t)outl != in_len))
        goto out;
    /* GCM and ChaCha20-Poly1305 produce no bytes at Final; fin only satisfies the API. */
    if (EVP_CipherFinal_ex(c, fin, &outl) != 1) {
        rc = enc ? CF_E_CRYPTO : CF_E_DECRYPT;
        goto out;
    }
    if (enc && EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_GET_TAG, CF_HPKE_NT, tag) != 1)
        goto out;
    rc = 0;
out:
    ERR_clear_error();
    EVP_CIPHER_CTX_free(c);
    return rc;
}

int cf_hpke_seal(cf_hpke_ctx *ctx, const uint8_t *aad, size_t aad_len, const uint8_t *pt,
                 size_t pt_len, uint8_t *ct, size_t ct_size, size_t *ret_ct_len)
{
    uint8_t nonce[CF_HPKE_NN];
    int rc;

    CF_ENSURE(ctx != NULL && ct != NULL && ret_ct_len != NULL, CF_E_INVAL);
    CF_ENSURE((aad != NULL || aad_len == 0) && (pt != NULL || pt_len == 0), CF_E_INVAL);
    if (ctx->aead->nk == 0)
        return cf_err_set(CF_E_UNSUPPORTED, "the export-only AEAD cannot seal (RFC 9180 §5.3)");
    if (!ctx->sender)
        return cf_err_set(CF_E_INVAL, "seal needs a sender context");
    /* §5.2: the sequence number must not wrap; our counter is 64 bits. */
    if (ctx->seq == UINT64_MAX)
        return cf_err_set(CF_E_OVERFLOW, "HPKE sequence number exhausted (RFC 9180 §5.2)");
    CF_ENSURE(pt_len <= INT_MAX - CF_HPKE_NT, CF_E_TOO_LARGE);
    CF_ENSURE(ct_size >= pt_len + CF_HPKE_NT, CF_E_INVAL);
    compute_nonce(ctx, nonce);
    rc = aead_pass(ctx->aead, true, ctx->key, nonce, aad, aad_len, pt, pt_len, ct, ct + pt_len);
    if (rc < 0) {
        cf_wipe(ct, pt_len + CF_HPKE_NT);
        return rc;
    }
    ctx->seq++;
    *ret_ct_len = pt_len + CF_HPKE_NT;
    return 0;
}

int cf_hpke_open_detached(cf_hpke_ctx *ctx, const uint8_t *aad, size_t aad_len,
                          const uint8_t *ct, size_t ct_len, const uint8_t tag[CF_HPKE_NT],
                          uint8_t *pt)
{
    uint8_t nonce[CF_HPKE_NN], t[CF_HPKE_NT];
    int rc;

    CF_ENSURE(ctx != NULL && ct != NULL && tag != NULL && pt != NULL, CF_E_INVAL);
    CF_ENSURE(aad != NULL || aad_len == 0, CF_E_INVAL);
    if (ctx->aead->nk == 0)
        return cf_err_set(CF_E_UNSUPPORTED, "the export-only AEAD cannot open (RFC 9180 §5.3)");
    if (ctx->sender)
        return cf_err_set(CF_E_INVAL, "open needs a receiver context");
    /* §5.2: the sequence number must not wrap; our counter is 64 bits. */
    if (ctx->seq == UINT64_MAX)
        return cf_err_set(CF_E_OVERFLOW, "HPKE sequence number exhausted (RFC 9180 §5.2)");
    memcpy(t, tag, CF_HPKE_NT);
    compute_nonce(ctx, nonce);
    rc = aead_pass(ctx->aead, false, ctx->key, nonce, aad, aad_len, ct, ct_len, pt, t);
    if (rc < 0) {
        /* Never hand out unauthenticated plaintext. */
        cf_wipe(pt, ct_len);
        if (rc == CF_E_DECRYPT)
            rc = cf_err_set(CF_E_DECRYPT, "HPKE open failed: tag did not verify");
        return rc;
    }
    ctx->seq++;
    return 0;
}

int cf_hpke_open(cf_hpke_ctx *ctx, const uint8_t *aad, size_t aad_len, const uint8_t *ct,
                 size_t ct_len, uint8_t *pt, size_t pt_size, size_t *ret_pt_len)
{
    cf_buf v;
    const uint8_t *body = NULL, *tag = NULL;
    size_t pt_len;

    CF_ENSURE(ctx != NULL && ct != NULL && pt != NULL && ret_pt_len != NULL, CF_E_INVAL);
    if (ct_len < CF_HPKE_NT)
        return cf_err_set(CF_E_DECRYPT, "HPKE ciphertext shorter than its tag");
    pt_len = ct_len - CF_HPKE_NT;
    CF_ENSURE(pt_size >= pt_len, CF_E_INVAL);
    /* ct = ciphertext || tag (§5.2, Seal output). */
    cf_buf_view(&v, ct, ct_len);
    CF_GUARD(cf_buf_get_ptr(&v, pt_len, &body));
    CF_GUARD(cf_buf_get_ptr(&v, CF_HPKE_NT, &tag));
    CF_GUARD(cf_hpke_open_detached(ctx, aad, aad_len, body, pt_len, tag, pt));
    *ret_pt_len = pt_len;
    return 0;
}

int cf_hpke_export(const cf_hpke_ctx *ctx, const uint8_t *exporter_context,
                   size_t exporter_context_len, uint8_t *out, size_t L)
{
    CF_ENSURE(ctx != NULL && out != NULL, CF_E_INVAL);
    CF_ENSURE(exporter_context != NULL || exporter_context_len == 0, CF_E_INVAL);
    if (exporter_context_len > CF_HPKE_MAX_INFO)
        return cf_err_set(CF_E_TOO_LARGE, "exporter context is longer than %d bytes",
                          CF_HPKE_MAX_INFO);
    if (L == 0 || L > 255 * ctx->lab.nh || L > CF_HPKE_MAX_EXPORT)
        return cf_err_set(CF_E_RANGE, "export length must be 1 to %zu bytes (RFC 9180 §5.3)",
                          255 * ctx->lab.nh);
    return labeled_expand(&ctx->lab, ctx->exporter_secret, ctx->lab.nh, "sec", exporter_context,
                          exporter_context_len, out, L);
}

/* ---- single-shot (§6) ------------------------------------------------------------- */

int cf_hpke_seal_once(const cf_hpke_params *p, const cf_hpke_key *pkR, const cf_hpke_key *skS,
                      const uint8_t *aad, size_t aad_len, const uint8_t *pt, size_t pt_len,
                      uint8_t ret_enc[CF_HPKE_MAX_ENC], size_t *ret_enc_len, cf_buf *ct)
{
    cf_hpke_ctx *ctx = NULL;
    uint8_t enc[CF_HPKE_MAX_ENC], *dst = NULL;
    size_t enc_len = 0, before, ct_len = 0;
    int rc;

    CF_ENSURE(ct != NULL && ret_enc != NULL && ret_enc_len != NULL, CF_E_INVAL);
    CF_ENSURE(pt_len <= INT_MAX - CF_HPKE_NT, CF_E_TOO_LARGE);
    before = ct->len;
    CF_GUARD(cf_hpke_setup_sender(p, pkR, skS, enc, &enc_len, &ctx));
    CF_GUARD_OUT(cf_buf_put_space(ct, pt_len + CF_HPKE_NT, &dst));
    rc = cf_hpke_seal(ctx, aad, aad_len, pt, pt_len, dst, pt_len + CF_HPKE_NT, &ct_len);
    if (rc < 0) {
        ct->len = before;
        goto out;
    }
    memcpy(ret_enc, enc, enc_len);
    *ret_enc_len = enc_len;
out:
    cf_hpke_ctx_free(ctx);
    return rc;
}

int cf_hpke_open_once(const cf_hpke_params *p, const uint8_t *enc, size_t enc_len,
                      const cf_hpke_key *skR, const cf_hpke_key *pkS, const uint8_t *aad,
                      size_t aad_len, const uint8_t *ct, size_t ct_len, cf_buf *pt)
{
    cf_hpke_ctx *ctx = NULL;
    uint8_t *dst = NULL;
    size_t before, pt_len = 0;
    int rc;

    CF_ENSURE(pt != NULL && ct != NULL, CF_E_INVAL);
    if (!pt->secret)
        return cf_err_set(CF_E_INVAL, "HPKE plaintext needs a secret buffer");
    if (ct_len < CF_HPKE_NT)
        return cf_err_set(CF_E_DECRYPT, "HPKE ciphertext shorter than its tag");
    before = pt->len;
    CF_GUARD(cf_hpke_setup_receiver(p, enc, enc_len, skR, pkS, &ctx));
    CF_GUARD_OUT(cf_buf_put_space(pt, ct_len - CF_HPKE_NT, &dst));
    rc = cf_hpke_open(ctx, aad, aad_len, ct, ct_len, dst, ct_len - CF_HPKE_NT, &pt_len);
    if (rc < 0)
        pt->len = before;
out:
    cf_hpke_ctx_free(ctx);
    return rc;
}
