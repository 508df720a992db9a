/*
 * Pinned AMD roots and VCEK/VLEK chain verification.
 *
 * Trust model (AMD VCEK/KDS spec, "Certificate Chain"): ARK (self-signed AMD
 * Root Key) -> ASK (AMD SEV Key; ASVK for VLEKs) -> VCEK/VLEK. ARK and ASK are
 * RSA-4096 and every signature in the chain is RSASSA-PSS with SHA-384,
 * MGF1-SHA-384 and a 48-byte salt. The VCEK/VLEK key is ECDSA P-384.
 *
 * Both ARK and ASK come from the pinned set, never from the evidence: the
 * caller provides only the leaf. OpenSSL's X509_verify_cert does the path
 * checks with a store holding just the pinned ARK as trust anchor and the
 * pinned ASK as the only (untrusted) intermediate, no partial chains, and the
 * anchor's self-signature checked (X509_V_FLAG_CHECK_SS_SIGNATURE). No purpose
 * is set: AMD's leaf certificates carry neither keyUsage nor extendedKeyUsage,
 * and purpose checks add nothing for a key that only signs reports.
 */
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attest/snp.h"
#include "base/err.h"
#include "base/limits.h"

#define FPR_LEN 48        /* SHA-384 fingerprints */
#define PSS_SALT_LEN 48   /* AMD: salt length = hash length (SHA-384) */
#define MIN_RSA_BITS 2048 /* floor for a pinned ARK/ASK key (AMD's are 4096) */
#define N_PRODUCTS 3      /* Milan, Genoa, Turin */
#define CHAIN_LEN 3       /* leaf, ASK/ASVK, ARK */
#define CACHE_DEFAULT_CAPACITY 256
#define CACHE_PROBE 4 /* slots looked at per key (small set-associative cache) */

struct root_slot {
    bool present;
    X509 *ask, *ark;
    uint8_t ask_fpr[FPR_LEN], ark_fpr[FPR_LEN];
};

struct cf_snp_roots {
    struct root_slot slot[N_PRODUCTS][2]; /* [product - 1][vlek] */
    uint8_t id[FPR_LEN];                  /* roots_id() of the current content */
};

static struct root_slot *slot_of(const cf_snp_roots *roots, cf_snp_product product, bool vlek)
{
    if (product != CF_SNP_PRODUCT_MILAN && product != CF_SNP_PRODUCT_GENOA &&
        product != CF_SNP_PRODUCT_TURIN)
        return NULL;
    /* The set is logically const for lookups; the cast only drops it for the shared helper. */
    return (struct root_slot *)(uintptr_t)&roots->slot[product - 1][vlek ? 1 : 0];
}

static int fingerprint(const X509 *x, uint8_t out[FPR_LEN])
{
    unsigned int n = 0;
    if (X509_digest(x, EVP_sha384(), out, &n) != 1 || n != FPR_LEN)
        return CF_E_CRYPTO;
    return 0;
}

/* RSASSA-PSS-params (RFC 4055 §3.1) of x's signature must be SHA-384,
 * MGF1 with SHA-384, salt 48, trailer 1: AMD's only scheme. */
static int check_pss(const X509 *x, const char *what)
{
    const X509_ALGOR *alg = NULL;
    const ASN1_OBJECT *aobj;
    const void *pval;
    const ASN1_STRING *seq;
    const unsigned char *p;
    RSA_PSS_PARAMS *pss = NULL;
    X509_ALGOR *mgf_hash = NULL;
    int ptype, rc = CF_E_UNSUPPORTED;

    X509_get0_signature(NULL, &alg, x);
    if (alg == NULL)
        goto out;
    X509_ALGOR_get0(&aobj, &ptype, &pval, alg);
    if (OBJ_obj2nid(aobj) != NID_rsassaPss || ptype != V_ASN1_SEQUENCE || pval == NULL)
        goto out;
    seq = pval;
    p = ASN1_STRING_get0_data(seq);
    pss = d2i_RSA_PSS_PARAMS(NULL, &p, ASN1_STRING_length(seq));
    if (pss == NULL || pss->hashAlgorithm == NULL || pss->maskGenAlgorithm == NULL ||
        pss->saltLength == NULL)
        goto out; /* absent fields mean SHA-1 / MGF1-SHA-1 / salt 20 */
    if (OBJ_obj2nid(pss->hashAlgorithm->algorithm) != NID_sha384 ||
        OBJ_obj2nid(pss->maskGenAlgorithm->algorithm) != NID_mgf1)
        goto out;
    X509_ALGOR_get0(&aobj, &ptype, &pval, pss->maskGenAlgorithm);
    if (ptype != V_ASN1_SEQUENCE || pval == NULL)
        goto out;
    seq = pval;
    p = ASN1_STRING_get0_data(seq);
    mgf_hash = d2i_X509_ALGOR(NULL, &p, ASN1_STRING_length(seq));
    if (mgf_hash == NULL || OBJ_obj2nid(mgf_hash->algorithm) != NID_sha384)
        goto out;
    if (ASN1_INTEGER_get(pss->saltLength) != PSS_SALT_LEN)
        goto out;
    if (pss->trailerField != NULL && ASN1_INTEGER_get(pss->trailerField) != 1)
        goto out;
    rc = 0;
out:
    X509_ALGOR_free(mgf_hash);
    RSA_PSS_PARAMS_free(pss);
    ERR_clear_error();
    if (rc < 0)
        cf_err_set(rc, "%s is not signed with RSASSA-PSS SHA-384/MGF1-SHA-384/salt 48", what);
    return rc;
}

/* Identity of a roots set's content: SHA-384 over every slot's ARK and ASK
 * fingerprints. Caches keyed with it are never confused between two sets with
 * different pins, and may be shared between sets with the same pins. */
static int roots_id(const cf_snp_roots *roots, uint8_t out[FPR_LEN])
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    unsigned int n = 0;
    int ok;

    CF_ENSURE(md != NULL, CF_E_NOMEM);
    ok = EVP_DigestInit_ex(md, EVP_sha384(), NULL) == 1;
    for (size_t i = 0; ok && i < N_PRODUCTS; i++) {
        for (size_t v = 0; ok && v < 2; v++) {
            const struct root_slot *s = &roots->slot[i][v];
            uint8_t present = s->present ? 1 : 0;
            ok = EVP_DigestUpdate(md, &present, 1) == 1 &&
                 (!s->present || (EVP_DigestUpdate(md, s->ark_fpr, FPR_LEN) == 1 &&
                                  EVP_DigestUpdate(md, s->ask_fpr, FPR_LEN) == 1));
        }
    }
    ok = ok && EVP_DigestFinal_ex(md, out, &n) == 1 && n == FPR_LEN;
    EVP_MD_CTX_free(md);
    return ok ? 0 : CF_E_CRYPTO;
}

int cf_snp_roots_new(cf_snp_roots **ret)
{
    cf_snp_roots *r;

    CF_ENSURE(ret != NULL, CF_E_INVAL);
    r = calloc(1, sizeof(*r));
    CF_ENSURE(r != NULL, CF_E_NOMEM);
    if (roots_id(r, r->id) != 0) {
        free(r);
        return CF_E_CRYPTO;
    }
    *ret = r;
    return 0;
}

void cf_snp_roots_free(cf_snp_roots *roots)
{
    if (roots == NULL)
        return;
    for (size_t i = 0; i < N_PRODUCTS; i++) {
        for (size_t v = 0; v < 2; v++) {
            X509_free(roots->slot[i][v].ask);
            X509_free(roots->slot[i][v].ark);
        }
    }
    free(roots);
}

static bool rsa_key_ok(const X509 *x)
{
    EVP_PKEY *pk = X509_get0_pubkey(x);
    return pk != NULL && (EVP_PKEY_is_a(pk, "RSA") || EVP_PKEY_is_a(pk, "RSA-PSS")) &&
           EVP_PKEY_get_bits(pk) >= MIN_RSA_BITS;
}

int cf_snp_roots_add_pem(cf_snp_roots *roots, cf_snp_product product, bool vlek, const char *pem,
                         size_t len)
{
    struct root_slot *s;
    BIO *bio = NULL;
    X509 *ask = NULL, *ark = NULL, *extra = NULL;
    int rc;

    CF_ENSURE(roots != NULL && pem != NULL, CF_E_INVAL);
    s = slot_of(roots, product, vlek);
    if (s == NULL)
        return cf_err_set(CF_E_INVAL, "roots need a known product (Milan, Genoa, Turin)");
    if (s->present)
        return cf_err_set(CF_E_EXISTS, "a %s %s chain is already pinned",
                          cf_snp_product_name(product), vlek ? "VLEK" : "VCEK");
    if (len > CF_SNP_ROOTS_PEM_MAX)
        return cf_err_set(CF_E_TOO_LARGE, "root chain PEM exceeds %u bytes", CF_SNP_ROOTS_PEM_MAX);
    if (memchr(pem, '\0', len) != NULL)
        return cf_err_set(CF_E_PARSE, "root chain PEM contains a NUL byte");

    bio = BIO_new_mem_buf(pem, (int)len);
    CF_ENSURE_OUT(bio != NULL, CF_E_NOMEM);
    ask = PEM_read_bio_X509(bio, NULL, NULL, NULL);
    ark = ask != NULL ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
    if (ask == NULL || ark == NULL) {
        rc = cf_err_set(CF_E_PARSE, "root chain PEM must hold two certificates: ASK then ARK");
        goto out;
    }
    extra = PEM_read_bio_X509(bio, NULL, NULL, NULL);
    if (extra != NULL) {
        rc = cf_err_set(CF_E_PARSE, "root chain PEM holds more than two certificates");
        goto out;
    }
    ERR_clear_error();

    /* ARK: self-issued, self-signed CA. ASK: CA issued and signed by the ARK. */
    if (X509_check_issued(ark, ark) != X509_V_OK || X509_verify(ark, X509_get0_pubkey(ark)) != 1) {
        rc = cf_err_set(CF_E_VERIFY, "second certificate (ARK) is not self-signed");
        goto out;
    }
    if (X509_check_issued(ark, ask) != X509_V_OK || X509_verify(ask, X509_get0_pubkey(ark)) != 1) {
        rc = cf_err_set(CF_E_VERIFY, "first certificate (ASK) is not signed by the ARK");
        goto out;
    }
    if (X509_check_ca(ark) < 1 || X509_check_ca(ask) < 1) {
        rc = cf_err_set(CF_E_VERIFY, "ARK and ASK must be CA certificates");
        goto out;
    }
    if (!rsa_key_ok(ark) || !rsa_key_ok(ask)) {
        rc = cf_err_set(CF_E_UNSUPPORTED, "ARK and ASK keys must be RSA of at least %d bits",
                        MIN_RSA_BITS);
        goto out;
    }
    CF_GUARD_OUT(check_pss(ark, "ARK"));
    CF_GUARD_OUT(check_pss(ask, "ASK"));
    CF_GUARD_OUT(fingerprint(ark, s->ark_fpr));
    CF_GUARD_OUT(fingerprint(ask, s->ask_fpr));
    s->ask = ask;
    s->ark = ark;
    s->present = true;
    ask = ark = NULL;
    if (roots_id(roots, roots->id) != 0) {
        /* Cannot identify the new content: undo, so no cache confuses it. */
        X509_free(s->ask);
        X509_free(s->ark);
        memset(s, 0, sizeof(*s));
        (void)roots_id(roots, roots->id);
        rc = CF_E_CRYPTO;
        goto out;
    }
    rc = 0;
out:
    ERR_clear_error();
    X509_free(extra);
    X509_free(ask);
    X509_free(ark);
    BIO_free(bio);
    return rc;
}

int cf_snp_roots_add_file(cf_snp_roots *roots, cf_snp_product product, bool vlek, const char *path)
{
    FILE *f = NULL;
    char *text = NULL;
    size_t n;
    int rc;

    CF_ENSURE(roots != NULL && path != NULL, CF_E_INVAL);
    f = fopen(path, "rb");
    if (f == NULL)
        return cf_err_set(CF_E_IO, "cannot open root chain file %s", path);
    text = malloc(CF_SNP_ROOTS_PEM_MAX + 1);
    CF_ENSURE_OUT(text != NULL, CF_E_NOMEM);
    /* Read one byte more than the limit to tell "exactly at the limit" from "over". */
    n = fread(text, 1, CF_SNP_ROOTS_PEM_MAX + 1, f);
    CF_ENSURE_OUT(!ferror(f), cf_err_set(CF_E_IO, "cannot read root chain file %s", path));
    CF_ENSURE_OUT(n <= CF_SNP_ROOTS_PEM_MAX,
                  cf_err_set(CF_E_TOO_LARGE, "root chain file %s exceeds %u bytes", path,
                             CF_SNP_ROOTS_PEM_MAX));
    rc = cf_snp_roots_add_pem(roots, product, vlek, text, n);
out:
    free(text);
    if (f != NULL)
        fclose(f);
    return rc;
}

int cf_snp_roots_amd(cf_snp_roots **ret)
{
    static const cf_snp_product products[] = {CF_SNP_PRODUCT_MILAN, CF_SNP_PRODUCT_GENOA,
                                              CF_SNP_PRODUCT_TURIN};
    cf_snp_roots *r = NULL;
    int rc;

    CF_ENSURE(ret != NULL, CF_E_INVAL);
    CF_GUARD(cf_snp_roots_new(&r));
    for (size_t i = 0; i < CF_ARRAY_LEN(products); i++) {
        for (int v = 0; v < 2; v++) {
            const char *pem = cf_snp_roots_amd_pem(products[i], v == 1);
            CF_ENSURE_OUT(pem != NULL, CF_E_INTERNAL);
            CF_GUARD_OUT(cf_snp_roots_add_pem(r, products[i], v == 1, pem, strlen(pem)));
        }
    }
    *ret = r;
    r = NULL;
    rc = 0;
out:
    cf_snp_roots_free(r);
    return rc;
}

int cf_snp_roots_ark_fingerprint(const cf_snp_roots *roots, cf_snp_product product, bool vlek,
                                 uint8_t out[48])
{
    const struct root_slot *s;

    CF_ENSURE(roots != NULL && out != NULL, CF_E_INVAL);
    s = slot_of(roots, product, vlek);
    if (s == NULL || !s->present)
        return cf_err_set(CF_E_NOT_FOUND, "no pinned %s %s chain", cf_snp_product_name(product),
                          vlek ? "VLEK" : "VCEK");
    memcpy(out, s->ark_fpr, FPR_LEN);
    return 0;
}

/* AMD's KDS CRL is issued by the ARK and lists revoked ASKs; AMD issues no
 * CRL for VCEKs/VLEKs (their TCB is what gets "revoked"). With
 * CRL_CHECK_ALL OpenSSL asks for a CRL for every certificate, so a missing CRL
 * is tolerated for the leaf (depth 0) and for the self-signed anchor, never for
 * the ASK. Everything else keeps OpenSSL's verdict. */
static int crl_verify_cb(int ok, X509_STORE_CTX *ctx)
{
    int depth;
    STACK_OF(X509) *chain;

    if (ok || X509_STORE_CTX_get_error(ctx) != X509_V_ERR_UNABLE_TO_GET_CRL)
        return ok;
    depth = X509_STORE_CTX_get_error_depth(ctx);
    chain = X509_STORE_CTX_get0_chain(ctx);
    if (depth == 0 || (chain != NULL && depth == sk_X509_num(chain) - 1))
        return 1;
    return ok;
}

static int map_verify_error(int err, int depth)
{
    int code;

    switch (err) {
    case X509_V_ERR_CERT_HAS_EXPIRED: code = CF_E_EXPIRED; break;
    case X509_V_ERR_CERT_NOT_YET_VALID: code = CF_E_NOT_YET_VALID; break;
    case X509_V_ERR_CERT_REVOKED: code = CF_E_REVOKED; break;
    default: code = CF_E_VERIFY; break;
    }
    return cf_err_set(code, "certificate chain: %s (depth %d)", X509_verify_cert_error_string(err),
                      depth);
}

static bool is_p384(EVP_PKEY *pk)
{
    char group[32];
    size_t glen = 0;

    if (pk == NULL || !EVP_PKEY_is_a(pk, "EC"))
        return false;
    if (EVP_PKEY_get_group_name(pk, group, sizeof(group), &glen) != 1)
        return false;
    return strcmp(group, "secp384r1") == 0;
}

int cf_snp_chain_verify(const cf_snp_roots *roots, X509 *leaf, cf_snp_product product, bool vlek,
                        time_t at, STACK_OF(X509_CRL) *crls, uint8_t ret_ark_fpr[48])
{
    const struct root_slot *s;
    X509_STORE *store = NULL;
    X509_STORE_CTX *ctx = NULL;
    STACK_OF(X509) *untrusted = NULL;
    STACK_OF(X509) *chain;
    X509_VERIFY_PARAM *param;
    unsigned long flags = X509_V_FLAG_CHECK_SS_SIGNATURE;
    int rc;

    CF_ENSURE(roots != NULL && leaf != NULL, CF_E_INVAL);
    s = slot_of(roots, product, vlek);
    if (s == NULL || !s->present)
        return cf_err_set(CF_E_NOT_FOUND, "no pinned %s %s chain", cf_snp_product_name(product),
                          vlek ? "VLEK" : "VCEK");
    if (!is_p384(X509_get0_pubkey(leaf))) {
        ERR_clear_error();
        return cf_err_set(CF_E_UNSUPPORTED, "%s key is not ECDSA P-384", vlek ? "VLEK" : "VCEK");
    }
    CF_GUARD(check_pss(leaf, vlek ? "VLEK" : "VCEK"));

    store = X509_STORE_new();
    untrusted = sk_X509_new_null();
    ctx = X509_STORE_CTX_new();
    CF_ENSURE_OUT(store != NULL && untrusted != NULL && ctx != NULL, CF_E_NOMEM);
    CF_ENSURE_OUT(X509_STORE_add_cert(store, s->ark) == 1, CF_E_CRYPTO);
    CF_ENSURE_OUT(sk_X509_push(untrusted, s->ask) > 0, CF_E_NOMEM);
    CF_ENSURE_OUT(X509_STORE_CTX_init(ctx, store, leaf, untrusted) == 1, CF_E_CRYPTO);
    param = X509_STORE_CTX_get0_param(ctx);
    /* Sets X509_V_FLAG_USE_CHECK_TIME: validity is judged at `at`, not now. */
    X509_VERIFY_PARAM_set_time(param, at);
    if (crls != NULL) {
        X509_STORE_CTX_set0_crls(ctx, crls);
        flags |= X509_V_FLAG_CRL_CHECK | X509_V_FLAG_CRL_CHECK_ALL;
        X509_STORE_CTX_set_verify_cb(ctx, crl_verify_cb);
    }
    X509_VERIFY_PARAM_set_flags(param, flags);

    if (X509_verify_cert(ctx) != 1) {
        rc = map_verify_error(X509_STORE_CTX_get_error(ctx), X509_STORE_CTX_get_error_depth(ctx));
        goto out;
    }
    /* Belt and braces: the path must be exactly leaf -> pinned ASK -> pinned ARK. */
    chain = X509_STORE_CTX_get0_chain(ctx);
    if (chain == NULL || sk_X509_num(chain) != CHAIN_LEN ||
        X509_cmp(sk_X509_value(chain, 1), s->ask) != 0 ||
        X509_cmp(sk_X509_value(chain, 2), s->ark) != 0) {
        rc = cf_err_set(CF_E_VERIFY, "certificate chain does not end in the pinned ASK and ARK");
        goto out;
    }
    if (ret_ark_fpr != NULL)
        memcpy(ret_ark_fpr, s->ark_fpr, FPR_LEN);
    rc = 0;
out:
    ERR_clear_error();
    X509_STORE_CTX_free(ctx);
    sk_X509_free(untrusted);
    X509_STORE_free(store);
    return rc;
}

/* ---- chain cache ---- */

struct cache_entry {
    bool used;
    uint8_t key[FPR_LEN];
    uint8_t ark_fpr[FPR_LEN];
    time_t not_before, not_after; /* intersection of the three validity windows */
    uint64_t stamp;               /* insertion order, for replacement */
    X509 *leaf;                   /* one reference held by the cache */
};

struct cf_snp_chain_cache {
    pthread_mutex_t lock;
    struct cache_entry *e;
    size_t cap;
    uint64_t clock, hits, misses;
};

int cf_snp_chain_cache_new(size_t capacity, cf_snp_chain_cache **ret)
{
    cf_snp_chain_cache *c;

    CF_ENSURE(ret != NULL, CF_E_INVAL);
    if (capacity == 0)
        capacity = CACHE_DEFAULT_CAPACITY;
    if (capacity > CF_SNP_CHAIN_CACHE_MAX)
        return cf_err_set(CF_E_RANGE, "chain cache capacity exceeds %d", CF_SNP_CHAIN_CACHE_MAX);
    c = calloc(1, sizeof(*c));
    CF_ENSURE(c != NULL, CF_E_NOMEM);
    c->e = calloc(capacity, sizeof(*c->e));
    if (c->e == NULL || pthread_mutex_init(&c->lock, NULL) != 0) {
        free(c->e);
        free(c);
        return CF_E_NOMEM;
    }
    c->cap = capacity;
    *ret = c;
    return 0;
}

void cf_snp_chain_cache_free(cf_snp_chain_cache *cache)
{
    if (cache == NULL)
        return;
    for (size_t i = 0; i < cache->cap; i++)
        X509_free(cache->e[i].leaf);
    pthread_mutex_destroy(&cache->lock);
    free(cache->e);
    free(cache);
}

void cf_snp_chain_cache_stats(const cf_snp_chain_cache *cache, uint64_t *ret_hits,
                              uint64_t *ret_misses)
{
    /* Lock through a non-const alias: stats are a read, the mutex is bookkeeping. */
    cf_snp_chain_cache *c = (cf_snp_chain_cache *)(uintptr_t)cache;
    uint64_t h = 0, m = 0;

    if (c != NULL) {
        pthread_mutex_lock(&c->lock);
        h = c->hits;
        m = c->misses;
        pthread_mutex_unlock(&c->lock);
    }
    if (ret_hits != NULL)
        *ret_hits = h;
    if (ret_misses != NULL)
        *ret_misses = m;
}

/* Key = SHA-384(SHA-384(leaf DER) || roots id || product || vlek). */
static int cache_key(const cf_snp_roots *roots, const uint8_t leaf_fpr[FPR_LEN],
                     cf_snp_product product, bool vlek, uint8_t key[FPR_LEN])
{
    uint8_t tail[2] = {(uint8_t)product, (uint8_t)vlek};
    EVP_MD_CTX *md;
    unsigned int n = 0;
    int rc = CF_E_CRYPTO;

    md = EVP_MD_CTX_new();
    CF_ENSURE(md != NULL, CF_E_NOMEM);
    if (EVP_DigestInit_ex(md, EVP_sha384(), NULL) == 1 &&
        EVP_DigestUpdate(md, leaf_fpr, FPR_LEN) == 1 &&
        EVP_DigestUpdate(md, roots->id, FPR_LEN) == 1 &&
        EVP_DigestUpdate(md, tail, sizeof(tail)) == 1 && EVP_DigestFinal_ex(md, key, &n) == 1 &&
        n == FPR_LEN)
        rc = 0;
    EVP_MD_CTX_free(md);
    return rc;
}

static int asn1_time_to_time_t(const ASN1_TIME *t, time_t *ret)
{
    struct tm tm;
    time_t v;

    if (t == NULL || ASN1_TIME_to_tm(t, &tm) != 1)
        return CF_E_PARSE;
    v = timegm(&tm);
    if (v == (time_t)-1)
        return CF_E_RANGE;
    *ret = v;
    return 0;
}

/* Validity window shared by leaf, ASK and ARK (inclusive, as X509_cmp_time). */
static int validity_window(const struct root_slot *s, const X509 *leaf, time_t *ret_nb,
                           time_t *ret_na)
{
    const X509 *certs[CHAIN_LEN] = {leaf, s->ask, s->ark};
    time_t nb = 0, na = 0;

    for (size_t i = 0; i < CHAIN_LEN; i++) {
        time_t b, a;
        CF_GUARD(asn1_time_to_time_t(X509_get0_notBefore(certs[i]), &b));
        CF_GUARD(asn1_time_to_time_t(X509_get0_notAfter(certs[i]), &a));
        if (i == 0 || b > nb)
            nb = b;
        if (i == 0 || a < na)
            na = a;
    }
    *ret_nb = nb;
    *ret_na = na;
    return 0;
}

static size_t cache_home(const cf_snp_chain_cache *c, const uint8_t key[FPR_LEN])
{
    uint64_t h = 0;
    for (size_t i = 0; i < sizeof(h); i++)
        h = h << 8 | key[i];
    return (size_t)(h % c->cap);
}

/* On a hit: copies the ARK fingerprint and (if ret_leaf) a new reference to the
 * cached certificate. Counts hits and misses. */
static bool cache_lookup(cf_snp_chain_cache *c, const uint8_t key[FPR_LEN], time_t at,
                         uint8_t fpr[FPR_LEN], X509 **ret_leaf)
{
    size_t home = cache_home(c, key);
    bool hit = false;

    pthread_mutex_lock(&c->lock);
    for (size_t i = 0; i < CACHE_PROBE && i < c->cap; i++) {
        const struct cache_entry *e = &c->e[(home + i) % c->cap];
        if (e->used && memcmp(e->key, key, FPR_LEN) == 0 && at >= e->not_before &&
            at <= e->not_after && (ret_leaf == NULL || X509_up_ref(e->leaf) == 1)) {
            memcpy(fpr, e->ark_fpr, FPR_LEN);
            if (ret_leaf != NULL)
                *ret_leaf = e->leaf;
            hit = true;
            break;
        }
    }
    if (hit)
        c->hits++;
    else
        c->misses++;
    pthread_mutex_unlock(&c->lock);
    return hit;
}

/* Remembers a verified chain (best effort: a failure here only costs a miss). */
static void cache_store(cf_snp_chain_cache *c, const struct root_slot *s,
                        const uint8_t key[FPR_LEN], const uint8_t fpr[FPR_LEN], X509 *leaf)
{
    size_t home = cache_home(c, key);
    struct cache_entry *victim = NULL;
    X509 *old;
    time_t nb, na;

    if (validity_window(s, leaf, &nb, &na) != 0 || X509_up_ref(leaf) != 1)
        return;
    pthread_mutex_lock(&c->lock);
    for (size_t i = 0; i < CACHE_PROBE && i < c->cap; i++) {
        struct cache_entry *e = &c->e[(home + i) % c->cap];
        if (e->used && memcmp(e->key, key, FPR_LEN) == 0) {
            victim = e; /* refresh the entry for the same key */
            break;
        }
        if (victim == NULL || !e->used || (victim->used && e->stamp < victim->stamp))
            victim = e;
    }
    if (victim == NULL) { /* unreachable: capacity >= 1 */
        pthread_mutex_unlock(&c->lock);
        X509_free(leaf);
        return;
    }
    old = victim->leaf;
    victim->used = true;
    memcpy(victim->key, key, FPR_LEN);
    memcpy(victim->ark_fpr, fpr, FPR_LEN);
    victim->not_before = nb;
    victim->not_after = na;
    victim->stamp = ++c->clock;
    victim->leaf = leaf;
    pthread_mutex_unlock(&c->lock);
    X509_free(old);
}

int cf_snp_chain_verify_cached(cf_snp_chain_cache *cache, const cf_snp_roots *roots, X509 *leaf,
                               cf_snp_product product, bool vlek, time_t at,
                               STACK_OF(X509_CRL) *crls, uint8_t ret_ark_fpr[48])
{
    const struct root_slot *s;
    uint8_t leaf_fpr[FPR_LEN], key[FPR_LEN], fpr[FPR_LEN];

    if (cache == NULL || crls != NULL)
        return cf_snp_chain_verify(roots, leaf, product, vlek, at, crls, ret_ark_fpr);
    CF_ENSURE(roots != NULL && leaf != NULL, CF_E_INVAL);
    s = slot_of(roots, product, vlek);
    if (s == NULL || !s->present)
        return cf_snp_chain_verify(roots, leaf, product, vlek, at, crls, ret_ark_fpr);
    CF_GUARD(fingerprint(leaf, leaf_fpr));
    CF_GUARD(cache_key(roots, leaf_fpr, product, vlek, key));
    if (!cache_lookup(cache, key, at, fpr, NULL)) {
        CF_GUARD(cf_snp_chain_verify(roots, leaf, product, vlek, at, NULL, fpr));
        /* Only a success is remembered, with the window it holds for. */
        cache_store(cache, s, key, fpr, leaf);
    }
    if (ret_ark_fpr != NULL)
        memcpy(ret_ark_fpr, fpr, FPR_LEN);
    return 0;
}

/* d2i of exactly len bytes of canonical DER (re-encoding has the same length). */
static int leaf_from_der(const uint8_t *der, size_t len, X509 **ret)
{
    const unsigned char *p = der;
    X509 *x;

    if (len == 0 || len > CF_CERT_MAX_BYTES)
        return cf_err_set(CF_E_TOO_LARGE, "certificate must be 1..%u bytes of DER",
                          CF_CERT_MAX_BYTES);
    x = d2i_X509(NULL, &p, (long)len);
    if (x == NULL || i2d_X509(x, NULL) != (int)len) {
        X509_free(x);
        ERR_clear_error();
        return cf_err_set(CF_E_PARSE, "certificate is not one DER X.509 certificate");
    }
    *ret = x;
    return 0;
}

int cf_snp_chain_verify_der_cached(cf_snp_chain_cache *cache, const cf_snp_roots *roots,
                                   const uint8_t *der, size_t len, cf_snp_product product,
                                   bool vlek, time_t at, STACK_OF(X509_CRL) *crls,
                                   X509 **ret_leaf, uint8_t ret_ark_fpr[48])
{
    uint8_t der_fpr[FPR_LEN], key[FPR_LEN], fpr[FPR_LEN];
    const struct root_slot *s;
    cf_snp_product p = product;
    cf_snp_cert_ext ext;
    X509 *x = NULL;
    bool use_cache = cache != NULL && crls == NULL, hit = false;
    int rc;

    CF_ENSURE(roots != NULL && der != NULL && ret_leaf != NULL, CF_E_INVAL);
    if (len > CF_CERT_MAX_BYTES)
        return cf_err_set(CF_E_TOO_LARGE, "certificate exceeds %u bytes", CF_CERT_MAX_BYTES);
    if (use_cache) {
        CF_ENSURE(EVP_Digest(der, len, der_fpr, NULL, EVP_sha384(), NULL) == 1, CF_E_CRYPTO);
        CF_GUARD(cache_key(roots, der_fpr, product, vlek, key));
        hit = cache_lookup(cache, key, at, fpr, &x);
    }
    if (!hit) {
        CF_GUARD(leaf_from_der(der, len, &x));
        if (p == CF_SNP_PRODUCT_UNKNOWN) {
            /* A v2 report does not name its product: take the certificate's. */
            CF_GUARD_OUT(cf_snp_cert_parse_ext(x, &ext));
            p = ext.product;
            CF_ENSURE_OUT(p != CF_SNP_PRODUCT_UNKNOWN,
                          cf_err_set(CF_E_UNSUPPORTED,
                                     "certificate names an unknown product \"%s\"",
                                     ext.product_name));
        }
        CF_GUARD_OUT(cf_snp_chain_verify(roots, x, p, vlek, at, crls, fpr));
        s = slot_of(roots, p, vlek);
        if (use_cache && s != NULL)
            cache_store(cache, s, key, fpr, x);
    }
    if (ret_ark_fpr != NULL)
        memcpy(ret_ark_fpr, fpr, FPR_LEN);
    *ret_leaf = x;
    x = NULL;
    rc = 0;
out:
    X509_free(x);
    return rc;
}
