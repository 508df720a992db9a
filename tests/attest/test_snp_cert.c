/*
 * VCEK/VLEK certificate extensions, pinned AMD roots and chain verification,
 * against the real certificates in ../shared/testdata/sev-snp and against
 * freshly made look-alike chains (same names and extensions, other keys).
 *
 * Setting COFFER_WRITE_FUZZ_SEEDS=DIR makes the program also write the DER of
 * its synthetic certificates to DIR (seeds for fuzz/corpus/fuzz_snp_cert_ext).
 */
#include <openssl/asn1.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <string.h>

#include "attest/snp.h"
#include "base/err.h"
#include "test.h"

/* 2025-09-01T00:00:00Z: inside the validity of every real cert (the VLEK expires
 * 2025-12-10, the Genoa and Turin VCEKs start 2025-07-20 / 2025-07-17). */
#define T_FIXED ((time_t)1756684800)
#define T_2026 ((time_t)1767225600) /* 2026-01-01: the VLEK has expired */
#define T_2024 ((time_t)1704067200) /* 2024-01-01: before the Genoa/Turin VCEKs */

/* ---- loading real data ---- */

static X509 *load_cert_path(const char *rel)
{
    size_t n;
    unsigned char *d = t_read_file(t_testdata(rel), &n);
    const unsigned char *p = d;
    X509 *x;

    if (strstr(rel, ".pem") != NULL) {
        BIO *b = BIO_new_mem_buf(d, (int)n);
        x = PEM_read_bio_X509(b, NULL, NULL, NULL);
        BIO_free(b);
    } else {
        x = d2i_X509(NULL, &p, (long)n);
    }
    free(d);
    if (x == NULL)
        abort();
    return x;
}

typedef struct {
    const char *report;
    const char *cert;
    cf_snp_product product;
    bool vlek;
    const char *product_name;
} pair_case;

static const pair_case pairs[] = {
    {"milan-v2-debug", "milan-v2-debug.vcek.der", CF_SNP_PRODUCT_MILAN, false, "Milan-B0"},
    {"milan-v2", "milan-v2.vcek.der", CF_SNP_PRODUCT_MILAN, false, "Milan-B0"},
    {"milan-v2-tcbskew", "milan-v2-tcbskew.vcek.der", CF_SNP_PRODUCT_MILAN, false, "Milan-B0"},
    {"milan-v3-vlek", "milan-v3-vlek.vlek.der", CF_SNP_PRODUCT_MILAN, true, "Milan"},
    {"milan-v3", "milan-v3.vcek.der", CF_SNP_PRODUCT_MILAN, false, NULL},
    {"genoa-v3", "genoa-v3.vcek.pem", CF_SNP_PRODUCT_GENOA, false, "Genoa"},
    {"turin-v5", "turin-v5.vcek.der", CF_SNP_PRODUCT_TURIN, false, "Turin"},
};

static X509 *pair_cert(const pair_case *c)
{
    char rel[256];
    snprintf(rel, sizeof(rel), "sev-snp/reports/%s", c->cert);
    return load_cert_path(rel);
}

static void pair_report(const pair_case *c, uint8_t raw[CF_SNP_REPORT_LEN], cf_snp_report *r)
{
    char rel[256];
    size_t n;
    uint8_t *d;

    snprintf(rel, sizeof(rel), "sev-snp/reports/%s.report.bin", c->report);
    d = t_read_file(t_testdata(rel), &n);
    if (n != CF_SNP_REPORT_LEN || cf_snp_report_parse(d, n, r) != 0)
        abort();
    memcpy(raw, d, n);
    free(d);
}

static char *read_text(const char *rel, size_t *ret_len)
{
    return (char *)t_read_file(t_testdata(rel), ret_len);
}

/* ---- building look-alike certificates ---- */

#define MAX_EXTS 20
typedef struct {
    size_t n;
    struct {
        char oid[32];
        uint8_t der[96];
        size_t len;
    } e[MAX_EXTS];
} ext_list;

static void ext_raw(ext_list *l, const char *oid, const uint8_t *der, size_t len)
{
    if (l->n >= MAX_EXTS || len > sizeof(l->e[0].der))
        abort();
    snprintf(l->e[l->n].oid, sizeof(l->e[0].oid), "%s", oid);
    memcpy(l->e[l->n].der, der, len);
    l->e[l->n].len = len;
    l->n++;
}

static void ext_int(ext_list *l, const char *oid, unsigned v)
{
    uint8_t d[4] = {0x02, 0x01, (uint8_t)v};
    if (v >= 0x80) {
        d[1] = 2;
        d[2] = 0;
        d[3] = (uint8_t)v;
    }
    ext_raw(l, oid, d, v >= 0x80 ? 4 : 3);
}

static void ext_ia5(ext_list *l, const char *oid, const char *s)
{
    uint8_t d[96];
    size_t n = strlen(s);
    if (n + 2 > sizeof(d))
        abort();
    d[0] = 0x16;
    d[1] = (uint8_t)n;
    memcpy(&d[2], s, n);
    ext_raw(l, oid, d, n + 2);
}

static void ext_remove(ext_list *l, const char *oid)
{
    for (size_t i = 0; i < l->n; i++) {
        if (strcmp(l->e[i].oid, oid) == 0) {
            memmove(&l->e[i], &l->e[i + 1], (l->n - i - 1) * sizeof(l->e[0]));
            l->n--;
            return;
        }
    }
    abort();
}

static void ext_replace(ext_list *l, const char *oid, const uint8_t *der, size_t len)
{
    ext_remove(l, oid);
    ext_raw(l, oid, der, len);
}

#define OID(x) "1.3.6.1.4.1.3704.1." x

static uint8_t test_hwid[64];

/* The extension set of a Milan VCEK (structVersion 0, as AMD's KDS issues it). */
static void milan_vcek_exts(ext_list *l)
{
    memset(l, 0, sizeof(*l));
    for (size_t i = 0; i < sizeof(test_hwid); i++)
        test_hwid[i] = (uint8_t)(0xC0 ^ i);
    ext_int(l, OID("1"), 0);
    ext_ia5(l, OID("2"), "Milan-B0");
    ext_int(l, OID("3.1"), 3);
    ext_int(l, OID("3.2"), 0);
    ext_int(l, OID("3.4"), 0);
    ext_int(l, OID("3.5"), 0);
    ext_int(l, OID("3.6"), 0);
    ext_int(l, OID("3.7"), 0);
    ext_int(l, OID("3.3"), 8);
    ext_int(l, OID("3.8"), 115);
    ext_raw(l, OID("4"), test_hwid, 64);
}

static void turin_vcek_exts(ext_list *l)
{
    memset(l, 0, sizeof(*l));
    ext_int(l, OID("1"), 1);
    ext_ia5(l, OID("2"), "Turin");
    ext_int(l, OID("3.9"), 1);
    ext_int(l, OID("3.1"), 2);
    ext_int(l, OID("3.2"), 3);
    ext_int(l, OID("3.3"), 4);
    ext_int(l, OID("3.5"), 0);
    ext_int(l, OID("3.6"), 0);
    ext_int(l, OID("3.7"), 0);
    ext_int(l, OID("3.8"), 0x47);
    ext_raw(l, OID("4"), (const uint8_t *)"\x3b\x42\x09\x2f\x69\xc6\x56\xd3", 8);
}

static void milan_vlek_exts(ext_list *l)
{
    milan_vcek_exts(l);
    ext_remove(l, OID("4"));
    ext_ia5(l, OID("5"), "CN=cc-us-east-2.example.com");
}

static EVP_PKEY *gen_ec(const char *curve) { return EVP_PKEY_Q_keygen(NULL, NULL, "EC", curve); }
static EVP_PKEY *gen_rsa(void) { return EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048); }

static X509_NAME *amd_name(const char *cn)
{
    static const char *const f[][2] = {{"OU", "Engineering"},
                                       {"C", "US"},
                                       {"L", "Santa Clara"},
                                       {"ST", "CA"},
                                       {"O", "Advanced Micro Devices"}};
    X509_NAME *n = X509_NAME_new();
    for (size_t i = 0; i < CF_ARRAY_LEN(f); i++)
        if (X509_NAME_add_entry_by_txt(n, f[i][0], MBSTRING_ASC, (const unsigned char *)f[i][1], -1,
                                       -1, 0) != 1)
            abort();
    if (X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0) !=
        1)
        abort();
    return n;
}

typedef enum { SIG_PSS48, SIG_PSS32, SIG_PKCS1, SIG_ECDSA } sig_kind;

static EVP_MD_CTX *signing_ctx(EVP_PKEY *key, sig_kind kind)
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;

    if (md == NULL || EVP_DigestSignInit(md, &pctx, EVP_sha384(), NULL, key) != 1)
        abort();
    if (kind == SIG_PSS48 || kind == SIG_PSS32) {
        if (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) != 1 ||
            EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, kind == SIG_PSS48 ? 48 : 32) != 1 ||
            EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, EVP_sha384()) != 1)
            abort();
    }
    return md;
}

typedef struct {
    const char *subject, *issuer;
    EVP_PKEY *pub, *signer;
    sig_kind sig;
    bool ca;
    long serial;
    time_t not_before, not_after;
    const ext_list *exts;
} cert_spec;

static X509 *make_cert(const cert_spec *s)
{
    X509 *x = X509_new();
    X509_NAME *sn = amd_name(s->subject), *in = amd_name(s->issuer);
    time_t nb = s->not_before, na = s->not_after;
    EVP_MD_CTX *md;

    if (x == NULL || X509_set_version(x, 2) != 1 ||
        ASN1_INTEGER_set(X509_get_serialNumber(x), s->serial) != 1 ||
        X509_time_adj_ex(X509_getm_notBefore(x), 0, 0, &nb) == NULL ||
        X509_time_adj_ex(X509_getm_notAfter(x), 0, 0, &na) == NULL ||
        X509_set_subject_name(x, sn) != 1 || X509_set_issuer_name(x, in) != 1 ||
        X509_set_pubkey(x, s->pub) != 1)
        abort();
    if (s->ca) {
        X509_EXTENSION *bc =
            X509V3_EXT_conf_nid(NULL, NULL, NID_basic_constraints, "critical,CA:TRUE");
        X509_EXTENSION *ku =
            X509V3_EXT_conf_nid(NULL, NULL, NID_key_usage, "critical,keyCertSign,cRLSign");
        if (bc == NULL || ku == NULL || X509_add_ext(x, bc, -1) != 1 ||
            X509_add_ext(x, ku, -1) != 1)
            abort();
        X509_EXTENSION_free(bc);
        X509_EXTENSION_free(ku);
    }
    for (size_t i = 0; s->exts != NULL && i < s->exts->n; i++) {
        ASN1_OBJECT *o = OBJ_txt2obj(s->exts->e[i].oid, 1);
        ASN1_OCTET_STRING *v = ASN1_OCTET_STRING_new();
        X509_EXTENSION *e;
        if (o == NULL || v == NULL ||
            ASN1_OCTET_STRING_set(v, s->exts->e[i].der, (int)s->exts->e[i].len) != 1)
            abort();
        e = X509_EXTENSION_create_by_OBJ(NULL, o, 0, v);
        if (e == NULL || X509_add_ext(x, e, -1) != 1)
            abort();
        X509_EXTENSION_free(e);
        ASN1_OCTET_STRING_free(v);
        ASN1_OBJECT_free(o);
    }
    md = signing_ctx(s->signer, s->sig);
    if (X509_sign_ctx(x, md) <= 0)
        abort();
    EVP_MD_CTX_free(md);
    X509_NAME_free(sn);
    X509_NAME_free(in);
    return x;
}

/* A self-signed cert with the given AMD extensions (for extension parsing only). */
static X509 *ext_cert(const ext_list *l)
{
    static EVP_PKEY *key;
    cert_spec s = {"SEV-VCEK", "SEV-VCEK", NULL, NULL, SIG_ECDSA, false, 0, T_2024, T_2026, l};

    if (key == NULL)
        key = gen_ec("P-384");
    s.pub = s.signer = key;
    return make_cert(&s);
}

static void write_seed(const char *name, X509 *x)
{
    const char *dir = getenv("COFFER_WRITE_FUZZ_SEEDS");
    char path[1024];
    unsigned char *der = NULL;
    int n;
    FILE *f;

    if (dir == NULL || dir[0] == '\0')
        return;
    n = i2d_X509(x, &der);
    snprintf(path, sizeof(path), "%s/%s.der", dir, name);
    f = fopen(path, "wb");
    if (n <= 0 || f == NULL || fwrite(der, 1, (size_t)n, f) != (size_t)n)
        abort();
    fclose(f);
    OPENSSL_free(der);
}

/* A look-alike AMD chain: same names as the real Milan chain, fresh keys. */
typedef struct {
    EVP_PKEY *ark_key, *ask_key, *vcek_key;
    X509 *ark, *ask, *vcek;
    char *pem; /* ASK then ARK */
} fake_chain;

static EVP_PKEY *fake_ark_key, *fake_ask_key;

static void fake_chain_make(fake_chain *c, sig_kind root_sig, sig_kind leaf_sig,
                            const char *vcek_curve)
{
    ext_list l;
    BIO *b = BIO_new(BIO_s_mem());
    BUF_MEM *bm;

    memset(c, 0, sizeof(*c));
    if (fake_ark_key == NULL) {
        fake_ark_key = gen_rsa();
        fake_ask_key = gen_rsa();
    }
    c->ark_key = fake_ark_key;
    c->ask_key = fake_ask_key;
    c->vcek_key = gen_ec(vcek_curve);
    milan_vcek_exts(&l);
    cert_spec ark = {"ARK-Milan", "ARK-Milan", c->ark_key,
                     c->ark_key,  root_sig,    true,
                     0x10000,     T_2024,      T_FIXED + 3650L * 86400,
                     NULL};
    cert_spec ask = {"SEV-Milan", "ARK-Milan", c->ask_key,
                     c->ark_key,  root_sig,    true,
                     0x10001,     T_2024,      T_FIXED + 3650L * 86400,
                     NULL};
    cert_spec vcek = {"SEV-VCEK", "SEV-Milan", c->vcek_key,
                      c->ask_key, leaf_sig,    false,
                      0,          T_2024,      T_FIXED + 365L * 86400,
                      &l};
    c->ark = make_cert(&ark);
    c->ask = make_cert(&ask);
    c->vcek = make_cert(&vcek);
    if (b == NULL || PEM_write_bio_X509(b, c->ask) != 1 || PEM_write_bio_X509(b, c->ark) != 1)
        abort();
    BIO_get_mem_ptr(b, &bm);
    c->pem = malloc(bm->length + 1);
    memcpy(c->pem, bm->data, bm->length);
    c->pem[bm->length] = '\0';
    BIO_free(b);
}

static void fake_chain_free(fake_chain *c)
{
    X509_free(c->ark);
    X509_free(c->ask);
    X509_free(c->vcek);
    EVP_PKEY_free(c->vcek_key);
    free(c->pem);
}

/* ---- tests: extensions of the real certificates ---- */

static void test_real_cert_extensions_match_reports(void)
{
    for (size_t i = 0; i < CF_ARRAY_LEN(pairs); i++) {
        const pair_case *c = &pairs[i];
        X509 *x = pair_cert(c);
        cf_snp_cert_ext e;
        cf_snp_report r;
        cf_snp_tcb rep;
        uint8_t raw[CF_SNP_REPORT_LEN];
        int rc = cf_snp_cert_parse_ext(x, &e);

        T_ASSERT_MSG(rc == 0, "%s: %s", c->cert, cf_err_detail(rc));
        T_EQ(e.product, c->product);
        T_EQ(e.is_vlek, c->vlek);
        if (c->product_name != NULL)
            T_STREQ(e.product_name, c->product_name);
        pair_report(c, raw, &r);
        /* The report's product (v3+) agrees with the cert's productName1. */
        if (r.version >= 3)
            T_EQ(cf_snp_report_product(&r), e.product);
        /* The VCEK certifies reported_tcb (not current_tcb). */
        cf_snp_tcb_decode(r.reported_tcb_raw, e.product, &rep);
        T_ASSERT_MSG(cf_snp_tcb_eq(&rep, &e.tcb, e.product), "%s: TCB differs", c->cert);
        T_EQ(e.tcb.raw, cf_snp_tcb_encode(&rep, e.product));
        T_EQ(cf_snp_report_signing_key(&r), c->vlek ? CF_SNP_KEY_VLEK : CF_SNP_KEY_VCEK);
        if (c->vlek) {
            T_EQ(e.hwid_len, 0);
            T_STREQ(e.csp_id, "CN=cc-us-east-2.amazonaws.com");
        } else {
            T_EQ(e.hwid_len, c->product == CF_SNP_PRODUCT_TURIN ? 8 : 64);
            T_MEMEQ(e.hwid, r.chip_id, e.hwid_len);
            T_STREQ(e.csp_id, "");
        }
        T_OK(cf_snp_report_verify_signature(raw, x));
        X509_free(x);
    }
}

static void test_real_cert_known_values(void)
{
    X509 *x = load_cert_path("sev-snp/reports/turin-v5.vcek.der");
    cf_snp_cert_ext e;
    cf_snp_tcb cur;
    cf_snp_report r;
    uint8_t raw[CF_SNP_REPORT_LEN];

    T_OK(cf_snp_cert_parse_ext(x, &e));
    T_EQ(e.struct_version, 1);
    T_EQ(e.tcb.fmc, 0);
    T_EQ(e.tcb.bootloader, 1);
    T_EQ(e.tcb.snp, 2);
    T_EQ(e.tcb.microcode, 0x47);
    T_MEMEQ(e.hwid, "\x3b\x42\x09\x2f\x69\xc6\x56\xd3", 8);
    X509_free(x);

    /* tcbskew: the cert matches reported_tcb (ucode 115), not current_tcb (206). */
    x = load_cert_path("sev-snp/reports/milan-v2-tcbskew.vcek.der");
    T_OK(cf_snp_cert_parse_ext(x, &e));
    T_EQ(e.struct_version, 0);
    T_EQ(e.tcb.microcode, 115);
    pair_report(&pairs[2], raw, &r);
    cf_snp_tcb_decode(r.current_tcb_raw, CF_SNP_PRODUCT_MILAN, &cur);
    T_ASSERT(!cf_snp_tcb_eq(&cur, &e.tcb, CF_SNP_PRODUCT_MILAN));
    X509_free(x);

    /* The VLEK's ucodeSPL is 217, which needs a two-byte INTEGER (02 02 00 D9). */
    x = load_cert_path("sev-snp/reports/milan-v3-vlek.vlek.der");
    T_OK(cf_snp_cert_parse_ext(x, &e));
    T_EQ(e.tcb.microcode, 217);
    T_EQ(e.tcb.snp, 24);
    X509_free(x);
}

static void test_tampered_vceks(void)
{
    static const char *files[] = {"sev-snp/negative/tampered-vcek-legacy.der",
                                  "sev-snp/negative/tampered-vcek-octetstring.der"};
    cf_snp_roots *roots = NULL;
    cf_snp_report r;
    uint8_t raw[CF_SNP_REPORT_LEN], seq[64];

    for (size_t i = 0; i < sizeof(seq); i++)
        seq[i] = (uint8_t)i;
    T_OK(cf_snp_roots_amd(&roots));
    pair_report(&pairs[2], raw, &r); /* milan-v2-tcbskew */
    for (size_t i = 0; i < CF_ARRAY_LEN(files); i++) {
        X509 *x = load_cert_path(files[i]);
        cf_snp_cert_ext e;
        int rc;

        /* Both encodings of the altered hwID parse to the same 64 bytes ... */
        T_OK(cf_snp_cert_parse_ext(x, &e));
        T_EQ(e.hwid_len, 64);
        T_MEMEQ(e.hwid, seq, 64);
        T_EQ(e.product, CF_SNP_PRODUCT_MILAN);
        /* ... which is not the report's chip, and the ASK signature no longer holds. */
        T_ASSERT(memcmp(e.hwid, r.chip_id, 64) != 0);
        rc = cf_snp_chain_verify(roots, x, CF_SNP_PRODUCT_MILAN, false, T_FIXED, NULL, NULL);
        T_ASSERT_MSG(rc == CF_E_VERIFY, "%s: rc %d", files[i], rc);
        X509_free(x);
    }
    cf_snp_roots_free(roots);
}

/* ---- tests: extension parser strictness ---- */

static int parse_exts(const ext_list *l, cf_snp_cert_ext *e)
{
    X509 *x = ext_cert(l);
    int rc = cf_snp_cert_parse_ext(x, e);
    X509_free(x);
    return rc;
}

static void test_synthetic_extensions_ok(void)
{
    ext_list l;
    cf_snp_cert_ext e;
    uint8_t wrapped[66] = {0x04, 0x40};
    X509 *x;

    milan_vcek_exts(&l);
    x = ext_cert(&l);
    write_seed("milan-vcek", x);
    T_OK(cf_snp_cert_parse_ext(x, &e));
    X509_free(x);
    T_EQ(e.product, CF_SNP_PRODUCT_MILAN);
    T_EQ(e.tcb.bootloader, 3);
    T_EQ(e.tcb.snp, 8);
    T_EQ(e.tcb.microcode, 115);
    T_EQ(e.tcb.raw, 0x7308000000000003ull);
    T_EQ(e.hwid_len, 64);
    T_MEMEQ(e.hwid, test_hwid, 64);
    T_ASSERT(!e.is_vlek);

    /* hwID wrapped in an OCTET STRING gives the same bytes. */
    memcpy(&wrapped[2], test_hwid, 64);
    ext_replace(&l, OID("4"), wrapped, sizeof(wrapped));
    x = ext_cert(&l);
    write_seed("milan-vcek-wrapped-hwid", x);
    T_OK(cf_snp_cert_parse_ext(x, &e));
    X509_free(x);
    T_EQ(e.hwid_len, 64);
    T_MEMEQ(e.hwid, test_hwid, 64);

    turin_vcek_exts(&l);
    x = ext_cert(&l);
    write_seed("turin-vcek", x);
    T_OK(cf_snp_cert_parse_ext(x, &e));
    X509_free(x);
    T_EQ(e.product, CF_SNP_PRODUCT_TURIN);
    T_EQ(e.tcb.fmc, 1);
    T_EQ(e.tcb.raw, 0x4700000004030201ull);
    T_EQ(e.hwid_len, 8);

    milan_vlek_exts(&l);
    x = ext_cert(&l);
    write_seed("milan-vlek", x);
    T_OK(cf_snp_cert_parse_ext(x, &e));
    X509_free(x);
    T_ASSERT(e.is_vlek);
    T_EQ(e.hwid_len, 0);
    T_STREQ(e.csp_id, "CN=cc-us-east-2.example.com");

    /* structVersion is optional; a plain "Milan" or "Genoa" name works; an
     * unknown product parses as UNKNOWN (the verifier rejects it). */
    milan_vcek_exts(&l);
    ext_remove(&l, OID("1"));
    ext_replace(&l, OID("2"), (const uint8_t *)"\x16\x05Genoa", 7);
    T_OK(parse_exts(&l, &e));
    T_EQ(e.product, CF_SNP_PRODUCT_GENOA);
    T_EQ(e.struct_version, 0);
    ext_replace(&l, OID("2"), (const uint8_t *)"\x16\x06Venice", 8);
    T_OK(parse_exts(&l, &e));
    T_EQ(e.product, CF_SNP_PRODUCT_UNKNOWN);
    ext_replace(&l, OID("2"), (const uint8_t *)"\x16\x06Milano", 8);
    T_OK(parse_exts(&l, &e));
    T_EQ(e.product, CF_SNP_PRODUCT_UNKNOWN);
    /* SPL 255 is the top of the range. */
    milan_vcek_exts(&l);
    ext_replace(&l, OID("3.8"), (const uint8_t *)"\x02\x02\x00\xff", 4);
    T_OK(parse_exts(&l, &e));
    T_EQ(e.tcb.microcode, 255);
}

typedef struct {
    const char *what;
    const char *oid; /* extension to replace */
    const char *der; /* new value (NULL: remove the extension) */
    size_t der_len;  /* bytes of der */
    size_t len;      /* total length: der padded with 0xAA (0: der_len) */
    int want;
} bad_ext;

#define V(lit) lit, sizeof(lit) - 1

static void test_synthetic_extensions_rejected(void)
{
    static const bad_ext bad[] = {
        {"SPL 256", OID("3.1"), V("\x02\x02\x01\x00"), 4, CF_E_RANGE},
        {"negative SPL", OID("3.3"), V("\x02\x01\xff"), 3, CF_E_RANGE},
        {"SPL as OCTET STRING", OID("3.2"), V("\x04\x01\x03"), 3, CF_E_PARSE},
        {"SPL as BOOLEAN", OID("3.2"), V("\x01\x01\xff"), 3, CF_E_PARSE},
        {"non-minimal INTEGER", OID("3.1"), V("\x02\x02\x00\x03"), 4, CF_E_PARSE},
        {"long-form length", OID("3.1"), V("\x02\x81\x01\x03"), 4, CF_E_PARSE},
        {"trailing byte", OID("3.8"), V("\x02\x01\x03\x00"), 4, CF_E_PARSE},
        {"empty INTEGER", OID("3.8"), V("\x02\x00"), 2, CF_E_PARSE},
        {"truncated INTEGER", OID("3.8"), V("\x02\x02\x01"), 3, CF_E_PARSE},
        {"empty extnValue", OID("3.8"), V(""), 0, CF_E_PARSE},
        {"reserved SPL out of range", OID("3.5"), V("\x02\x02\x01\x00"), 4, CF_E_RANGE},
        {"structVersion negative", OID("1"), V("\x02\x01\x80"), 3, CF_E_RANGE},
        {"productName UTF8String", OID("2"), V("\x0c\x08Milan-B0"), 10, CF_E_PARSE},
        {"productName with NUL", OID("2"), V("\x16\x03M\x00x"), 5, CF_E_PARSE},
        {"productName empty", OID("2"), V("\x16\x00"), 2, CF_E_PARSE},
        {"productName control char", OID("2"), V("\x16\x05Mil\nn"), 7, CF_E_PARSE},
        {"productName too long", OID("2"),
         V("\x16\x20"
           "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"),
         34, CF_E_PARSE},
        {"hwID 63 bytes", OID("4"), V("\x01\x02\x03"), 63, CF_E_PARSE},
        {"hwID 65 bytes", OID("4"), V("\x01\x02\x03"), 65, CF_E_PARSE},
        {"hwID wrapped 63 bytes", OID("4"), V("\x04\x3f"), 65, CF_E_PARSE},
        {"hwID 8 bytes on Milan", OID("4"), V("\x01\x02\x03\x04\x05\x06\x07\x08"), 8, CF_E_PARSE},
        {"missing productName", OID("2"), NULL, 0, 0, CF_E_PARSE},
        {"missing blSPL", OID("3.1"), NULL, 0, 0, CF_E_PARSE},
        {"missing teeSPL", OID("3.2"), NULL, 0, 0, CF_E_PARSE},
        {"missing snpSPL", OID("3.3"), NULL, 0, 0, CF_E_PARSE},
        {"missing ucodeSPL", OID("3.8"), NULL, 0, 0, CF_E_PARSE},
        {"missing hwID and cspId", OID("4"), NULL, 0, 0, CF_E_PARSE},
    };
    ext_list l;
    cf_snp_cert_ext e;
    uint8_t buf[96];

    for (size_t i = 0; i < CF_ARRAY_LEN(bad); i++) {
        int rc;
        milan_vcek_exts(&l);
        if (bad[i].der == NULL) {
            ext_remove(&l, bad[i].oid);
        } else {
            size_t len = bad[i].len != 0 ? bad[i].len : bad[i].der_len;
            memset(buf, 0xAA, sizeof(buf));
            memcpy(buf, bad[i].der, bad[i].der_len);
            ext_replace(&l, bad[i].oid, buf, len);
        }
        if (i < 8) {
            X509 *x = ext_cert(&l);
            char name[32];
            snprintf(name, sizeof(name), "bad-%02zu", i);
            write_seed(name, x);
            X509_free(x);
        }
        rc = parse_exts(&l, &e);
        T_ASSERT_MSG(rc == bad[i].want, "%s: rc %d (%s)", bad[i].what, rc, cf_err_detail(rc));
    }

    /* Duplicates are rejected, for SPLs and for hwID. */
    milan_vcek_exts(&l);
    ext_int(&l, OID("3.1"), 3);
    T_ERR(parse_exts(&l, &e), CF_E_PARSE);
    T_ASSERT(strstr(cf_err_detail(CF_E_PARSE), "duplicate blSPL") != NULL);
    milan_vcek_exts(&l);
    ext_raw(&l, OID("4"), test_hwid, 64);
    T_ERR(parse_exts(&l, &e), CF_E_PARSE);
    /* hwID and cspId together. */
    milan_vcek_exts(&l);
    ext_ia5(&l, OID("5"), "CN=x");
    T_ERR(parse_exts(&l, &e), CF_E_PARSE);
    /* fmcSPL on Milan; Turin without fmcSPL; Turin with a 64-byte hwID. */
    milan_vcek_exts(&l);
    ext_int(&l, OID("3.9"), 0);
    T_ERR(parse_exts(&l, &e), CF_E_PARSE);
    turin_vcek_exts(&l);
    ext_remove(&l, OID("3.9"));
    T_ERR(parse_exts(&l, &e), CF_E_PARSE);
    turin_vcek_exts(&l);
    ext_replace(&l, OID("4"), test_hwid, 64);
    T_ERR(parse_exts(&l, &e), CF_E_PARSE);
    /* cspId must be an IA5String. */
    milan_vlek_exts(&l);
    ext_replace(&l, OID("5"),
                (const uint8_t *)"\x0c\x04"
                                 "CN=x",
                6);
    T_ERR(parse_exts(&l, &e), CF_E_PARSE);
}

/* ---- tests: roots and chains ---- */

static void test_real_chains_verify(void)
{
    cf_snp_roots *roots = NULL;
    uint8_t fpr[48], want[48];

    T_OK(cf_snp_roots_amd(&roots));
    for (size_t i = 0; i < CF_ARRAY_LEN(pairs); i++) {
        X509 *x = pair_cert(&pairs[i]);
        int rc = cf_snp_chain_verify(roots, x, pairs[i].product, pairs[i].vlek, T_FIXED, NULL, fpr);
        T_ASSERT_MSG(rc == 0, "%s: %s", pairs[i].cert, cf_err_detail(rc));
        T_OK(cf_snp_roots_ark_fingerprint(roots, pairs[i].product, pairs[i].vlek, want));
        T_MEMEQ(fpr, want, 48);
        X509_free(x);
    }
    /* The fingerprint is SHA-384 of the ARK's DER as published (second PEM cert). */
    {
        size_t n;
        char *pem = read_text("sev-snp/roots/ask_ark_genoa.pem", &n);
        BIO *b = BIO_new_mem_buf(pem, (int)n);
        X509 *ask = PEM_read_bio_X509(b, NULL, NULL, NULL),
             *ark = PEM_read_bio_X509(b, NULL, NULL, NULL);
        unsigned int len = 0;
        T_ASSERT(ark != NULL && X509_digest(ark, EVP_sha384(), want, &len) == 1 && len == 48);
        T_OK(cf_snp_roots_ark_fingerprint(roots, CF_SNP_PRODUCT_GENOA, false, fpr));
        T_MEMEQ(fpr, want, 48);
        /* Genoa VCEK and VLEK chains share the ARK. */
        T_OK(cf_snp_roots_ark_fingerprint(roots, CF_SNP_PRODUCT_GENOA, true, fpr));
        T_MEMEQ(fpr, want, 48);
        T_OK(cf_snp_roots_ark_fingerprint(roots, CF_SNP_PRODUCT_MILAN, false, fpr));
        T_ASSERT(memcmp(fpr, want, 48) != 0);
        X509_free(ask);
        X509_free(ark);
        BIO_free(b);
        free(pem);
    }
    cf_snp_roots_free(roots);
}

static void test_chain_wrong_root_or_time(void)
{
    cf_snp_roots *roots = NULL;
    X509 *milan = load_cert_path("sev-snp/reports/milan-v3.vcek.der");
    X509 *genoa = load_cert_path("sev-snp/reports/genoa-v3.vcek.pem");
    X509 *turin = load_cert_path("sev-snp/reports/turin-v5.vcek.der");
    X509 *vlek = load_cert_path("sev-snp/reports/milan-v3-vlek.vlek.der");
    uint8_t fpr[48] = {0};

    T_OK(cf_snp_roots_amd(&roots));
    /* Another product's root, or the VLEK (ASVK) chain of the right product. */
    T_ERR(cf_snp_chain_verify(roots, milan, CF_SNP_PRODUCT_GENOA, false, T_FIXED, NULL, fpr),
          CF_E_VERIFY);
    T_ERR(cf_snp_chain_verify(roots, milan, CF_SNP_PRODUCT_TURIN, false, T_FIXED, NULL, fpr),
          CF_E_VERIFY);
    T_ERR(cf_snp_chain_verify(roots, genoa, CF_SNP_PRODUCT_MILAN, false, T_FIXED, NULL, fpr),
          CF_E_VERIFY);
    T_ERR(cf_snp_chain_verify(roots, turin, CF_SNP_PRODUCT_GENOA, false, T_FIXED, NULL, fpr),
          CF_E_VERIFY);
    T_ERR(cf_snp_chain_verify(roots, milan, CF_SNP_PRODUCT_MILAN, true, T_FIXED, NULL, fpr),
          CF_E_VERIFY);
    T_ERR(cf_snp_chain_verify(roots, vlek, CF_SNP_PRODUCT_MILAN, false, T_FIXED, NULL, fpr),
          CF_E_VERIFY);
    T_ERR(cf_snp_chain_verify(roots, milan, CF_SNP_PRODUCT_UNKNOWN, false, T_FIXED, NULL, fpr),
          CF_E_NOT_FOUND);
    T_ASSERT(fpr[0] == 0 && memcmp(fpr, fpr + 1, 47) == 0); /* untouched on failure */
    /* Time: the VLEK expired on 2025-12-10; the Turin VCEK starts 2025-07-17. */
    T_OK(cf_snp_chain_verify(roots, vlek, CF_SNP_PRODUCT_MILAN, true, T_FIXED, NULL, NULL));
    T_ERR(cf_snp_chain_verify(roots, vlek, CF_SNP_PRODUCT_MILAN, true, T_2026, NULL, NULL),
          CF_E_EXPIRED);
    T_ERR(cf_snp_chain_verify(roots, turin, CF_SNP_PRODUCT_TURIN, false, T_2024, NULL, NULL),
          CF_E_NOT_YET_VALID);
    T_OK(cf_snp_chain_verify(roots, turin, CF_SNP_PRODUCT_TURIN, false, T_2026, NULL, NULL));
    /* An ARK/ASK certificate is not accepted as a leaf (wrong key type). */
    {
        size_t n;
        char *pem = read_text("sev-snp/roots/ask_ark_milan.pem", &n);
        BIO *b = BIO_new_mem_buf(pem, (int)n);
        X509 *ask = PEM_read_bio_X509(b, NULL, NULL, NULL);
        T_ERR(cf_snp_chain_verify(roots, ask, CF_SNP_PRODUCT_MILAN, false, T_FIXED, NULL, NULL),
              CF_E_UNSUPPORTED);
        X509_free(ask);
        BIO_free(b);
        free(pem);
    }
    X509_free(milan);
    X509_free(genoa);
    X509_free(turin);
    X509_free(vlek);
    cf_snp_roots_free(roots);
}

static void test_roots_api(void)
{
    cf_snp_roots *roots = NULL;
    X509 *milan = load_cert_path("sev-snp/reports/milan-v2.vcek.der");
    size_t nm, ng;
    char *mpem = read_text("sev-snp/roots/ask_ark_milan.pem", &nm);
    char *gpem = read_text("sev-snp/roots/ask_ark_genoa.pem", &ng);
    char *mixed, *reversed, *three, *big;
    const char *cut = strstr(mpem, "-----END CERTIFICATE-----\n");
    size_t first = (size_t)(cut - mpem) + strlen("-----END CERTIFICATE-----\n");
    const char *gcut = strstr(gpem, "-----END CERTIFICATE-----\n");
    size_t gfirst = (size_t)(gcut - gpem) + strlen("-----END CERTIFICATE-----\n");
    uint8_t fpr[48];

    T_OK(cf_snp_roots_new(&roots));
    T_ERR(cf_snp_roots_ark_fingerprint(roots, CF_SNP_PRODUCT_MILAN, false, fpr), CF_E_NOT_FOUND);
    T_ERR(cf_snp_chain_verify(roots, milan, CF_SNP_PRODUCT_MILAN, false, T_FIXED, NULL, NULL),
          CF_E_NOT_FOUND);

    /* Milan ASK + Genoa ARK: the ASK is not signed by that ARK. */
    mixed = malloc(nm + ng + 1);
    memcpy(mixed, mpem, first);
    memcpy(mixed + first, gpem + gfirst, ng - gfirst);
    T_ERR(cf_snp_roots_add_pem(roots, CF_SNP_PRODUCT_MILAN, false, mixed, first + ng - gfirst),
          CF_E_VERIFY);
    /* ARK first, then ASK: the second is not self-signed. */
    reversed = malloc(nm + 1);
    memcpy(reversed, mpem + first, nm - first);
    memcpy(reversed + nm - first, mpem, first);
    T_ERR(cf_snp_roots_add_pem(roots, CF_SNP_PRODUCT_MILAN, false, reversed, nm), CF_E_VERIFY);
    /* One certificate, three certificates, garbage, NUL, oversize, unknown product. */
    T_ERR(cf_snp_roots_add_pem(roots, CF_SNP_PRODUCT_MILAN, false, mpem, first), CF_E_PARSE);
    three = malloc(nm + first + 1);
    memcpy(three, mpem, nm);
    memcpy(three + nm, mpem, first);
    T_ERR(cf_snp_roots_add_pem(roots, CF_SNP_PRODUCT_MILAN, false, three, nm + first), CF_E_PARSE);
    T_ERR(cf_snp_roots_add_pem(roots, CF_SNP_PRODUCT_MILAN, false, "hello", 5), CF_E_PARSE);
    T_ERR(cf_snp_roots_add_pem(roots, CF_SNP_PRODUCT_MILAN, false, "ab\0cd", 5), CF_E_PARSE);
    big = calloc(1, CF_SNP_ROOTS_PEM_MAX + 1);
    memset(big, 'A', CF_SNP_ROOTS_PEM_MAX + 1);
    T_ERR(cf_snp_roots_add_pem(roots, CF_SNP_PRODUCT_MILAN, false, big, CF_SNP_ROOTS_PEM_MAX + 1),
          CF_E_TOO_LARGE);
    T_ERR(cf_snp_roots_add_pem(roots, CF_SNP_PRODUCT_UNKNOWN, false, mpem, nm), CF_E_INVAL);
    T_ERR(cf_snp_roots_add_file(roots, CF_SNP_PRODUCT_MILAN, false, "/nonexistent/x.pem"), CF_E_IO);
    /* None of the failures left anything pinned. */
    T_ERR(cf_snp_roots_ark_fingerprint(roots, CF_SNP_PRODUCT_MILAN, false, fpr), CF_E_NOT_FOUND);

    /* The real file loads, verifies the Milan VCEK, and cannot be added twice. */
    T_OK(cf_snp_roots_add_file(roots, CF_SNP_PRODUCT_MILAN, false,
                               t_testdata("sev-snp/roots/ask_ark_milan.pem")));
    T_OK(cf_snp_chain_verify(roots, milan, CF_SNP_PRODUCT_MILAN, false, T_FIXED, NULL, NULL));
    T_ERR(cf_snp_roots_add_pem(roots, CF_SNP_PRODUCT_MILAN, false, mpem, nm), CF_E_EXISTS);
    /* A Genoa chain pinned in the Milan VLEK slot does not verify a Milan VCEK. */
    T_OK(cf_snp_roots_add_pem(roots, CF_SNP_PRODUCT_MILAN, true, gpem, ng));
    T_ERR(cf_snp_chain_verify(roots, milan, CF_SNP_PRODUCT_MILAN, true, T_FIXED, NULL, NULL),
          CF_E_VERIFY);
    /* The built-in PEMs are the published files. */
    T_ASSERT(strncmp(cf_snp_roots_amd_pem(CF_SNP_PRODUCT_MILAN, false), mpem, nm) == 0);
    T_ASSERT(cf_snp_roots_amd_pem(CF_SNP_PRODUCT_UNKNOWN, false) == NULL);

    free(mixed);
    free(reversed);
    free(three);
    free(big);
    free(mpem);
    free(gpem);
    X509_free(milan);
    cf_snp_roots_free(roots);
}

/* A chain that looks like AMD's (same names, extensions, algorithms) but was made
 * here is accepted only when its own root is pinned, never with AMD's roots. */
static void test_lookalike_chain(void)
{
    cf_snp_roots *amd = NULL, *own = NULL;
    fake_chain c;
    cf_snp_cert_ext e;
    uint8_t fpr[48], own_fpr[48];

    fake_chain_make(&c, SIG_PSS48, SIG_PSS48, "P-384");
    write_seed("lookalike-vcek", c.vcek);
    T_OK(cf_snp_cert_parse_ext(c.vcek, &e));
    T_EQ(e.product, CF_SNP_PRODUCT_MILAN);
    T_OK(cf_snp_roots_amd(&amd));
    T_ERR(cf_snp_chain_verify(amd, c.vcek, CF_SNP_PRODUCT_MILAN, false, T_FIXED, NULL, NULL),
          CF_E_VERIFY);
    /* Positive control: the same chain verifies once its own root is pinned. */
    T_OK(cf_snp_roots_new(&own));
    T_OK(cf_snp_roots_add_pem(own, CF_SNP_PRODUCT_MILAN, false, c.pem, strlen(c.pem)));
    T_OK(cf_snp_chain_verify(own, c.vcek, CF_SNP_PRODUCT_MILAN, false, T_FIXED, NULL, fpr));
    T_OK(cf_snp_roots_ark_fingerprint(own, CF_SNP_PRODUCT_MILAN, false, own_fpr));
    T_MEMEQ(fpr, own_fpr, 48);
    T_OK(cf_snp_roots_ark_fingerprint(amd, CF_SNP_PRODUCT_MILAN, false, fpr));
    T_ASSERT(memcmp(fpr, own_fpr, 48) != 0);
    /* ... and a real AMD VCEK does not verify against the look-alike root. */
    {
        X509 *real = load_cert_path("sev-snp/reports/milan-v2.vcek.der");
        T_ERR(cf_snp_chain_verify(own, real, CF_SNP_PRODUCT_MILAN, false, T_FIXED, NULL, NULL),
              CF_E_VERIFY);
        X509_free(real);
    }
    cf_snp_roots_free(own);
    cf_snp_roots_free(amd);
    fake_chain_free(&c);
}

static void test_chain_algorithms_enforced(void)
{
    cf_snp_roots *own = NULL;
    fake_chain c;

    /* Roots signed with PKCS#1 v1.5 are refused when pinning. */
    fake_chain_make(&c, SIG_PKCS1, SIG_PSS48, "P-384");
    T_OK(cf_snp_roots_new(&own));
    T_ERR(cf_snp_roots_add_pem(own, CF_SNP_PRODUCT_MILAN, false, c.pem, strlen(c.pem)),
          CF_E_UNSUPPORTED);
    cf_snp_roots_free(own);
    fake_chain_free(&c);
    /* A leaf signed with PSS but a 32-byte salt. */
    fake_chain_make(&c, SIG_PSS48, SIG_PSS32, "P-384");
    T_OK(cf_snp_roots_new(&own));
    T_OK(cf_snp_roots_add_pem(own, CF_SNP_PRODUCT_MILAN, false, c.pem, strlen(c.pem)));
    T_ERR(cf_snp_chain_verify(own, c.vcek, CF_SNP_PRODUCT_MILAN, false, T_FIXED, NULL, NULL),
          CF_E_UNSUPPORTED);
    cf_snp_roots_free(own);
    fake_chain_free(&c);
    /* A leaf whose key is P-256. */
    fake_chain_make(&c, SIG_PSS48, SIG_PSS48, "P-256");
    T_OK(cf_snp_roots_new(&own));
    T_OK(cf_snp_roots_add_pem(own, CF_SNP_PRODUCT_MILAN, false, c.pem, strlen(c.pem)));
    T_ERR(cf_snp_chain_verify(own, c.vcek, CF_SNP_PRODUCT_MILAN, false, T_FIXED, NULL, NULL),
          CF_E_UNSUPPORTED);
    cf_snp_roots_free(own);
    fake_chain_free(&c);
}

static X509_CRL *make_crl(X509 *issuer, EVP_PKEY *key, const long *revoked, size_t n)
{
    X509_CRL *crl = X509_CRL_new();
    ASN1_TIME *last = ASN1_TIME_set(NULL, T_FIXED - 86400),
              *next = ASN1_TIME_set(NULL, T_FIXED + 86400);
    EVP_MD_CTX *md;

    if (crl == NULL || last == NULL || next == NULL || X509_CRL_set_version(crl, 1) != 1 ||
        X509_CRL_set_issuer_name(crl, X509_get_subject_name(issuer)) != 1 ||
        X509_CRL_set1_lastUpdate(crl, last) != 1 || X509_CRL_set1_nextUpdate(crl, next) != 1)
        abort();
    for (size_t i = 0; i < n; i++) {
        X509_REVOKED *r = X509_REVOKED_new();
        ASN1_INTEGER *sn = ASN1_INTEGER_new();
        if (r == NULL || sn == NULL || ASN1_INTEGER_set(sn, revoked[i]) != 1 ||
            X509_REVOKED_set_serialNumber(r, sn) != 1 ||
            X509_REVOKED_set_revocationDate(r, last) != 1 || X509_CRL_add0_revoked(crl, r) != 1)
            abort();
        ASN1_INTEGER_free(sn);
    }
    md = signing_ctx(key, SIG_PSS48);
    if (X509_CRL_sign_ctx(crl, md) <= 0)
        abort();
    EVP_MD_CTX_free(md);
    ASN1_TIME_free(last);
    ASN1_TIME_free(next);
    return crl;
}

static int verify_with_crls(cf_snp_roots *roots, X509 *leaf, X509_CRL *a, X509_CRL *b)
{
    STACK_OF(X509_CRL) *crls = sk_X509_CRL_new_null();
    int rc;

    if (crls == NULL || (a != NULL && sk_X509_CRL_push(crls, a) <= 0) ||
        (b != NULL && sk_X509_CRL_push(crls, b) <= 0))
        abort();
    rc = cf_snp_chain_verify(roots, leaf, CF_SNP_PRODUCT_MILAN, false, T_FIXED, crls, NULL);
    sk_X509_CRL_free(crls);
    return rc;
}

static void test_crls(void)
{
    cf_snp_roots *own = NULL;
    fake_chain c;
    EVP_PKEY *impostor = gen_rsa();
    static const long ask_serial[] = {0x10001}, other_serial[] = {0x777}, vcek_serial[] = {0};
    X509_CRL *ark_empty, *ark_revokes_ask, *ark_other, *forged, *ask_revokes_vcek, *ask_empty;

    fake_chain_make(&c, SIG_PSS48, SIG_PSS48, "P-384");
    T_OK(cf_snp_roots_new(&own));
    T_OK(cf_snp_roots_add_pem(own, CF_SNP_PRODUCT_MILAN, false, c.pem, strlen(c.pem)));
    ark_empty = make_crl(c.ark, c.ark_key, NULL, 0);
    ark_revokes_ask = make_crl(c.ark, c.ark_key, ask_serial, 1);
    ark_other = make_crl(c.ark, c.ark_key, other_serial, 1);
    forged = make_crl(c.ark, impostor, ask_serial, 0);
    ask_revokes_vcek = make_crl(c.ask, c.ask_key, vcek_serial, 1);
    ask_empty = make_crl(c.ask, c.ask_key, NULL, 0);

    T_OK(verify_with_crls(own, c.vcek, ark_empty, NULL));
    T_OK(verify_with_crls(own, c.vcek, ark_other, NULL));
    T_ERR(verify_with_crls(own, c.vcek, ark_revokes_ask, NULL), CF_E_REVOKED);
    T_ERR(verify_with_crls(own, c.vcek, ark_empty, ask_revokes_vcek), CF_E_REVOKED);
    T_ERR(verify_with_crls(own, c.vcek, ask_revokes_vcek, NULL), CF_E_REVOKED);
    T_OK(verify_with_crls(own, c.vcek, ark_empty, ask_empty));
    /* A CRL not signed by the ARK, or none at all for the ASK: fail closed. */
    T_ERR(verify_with_crls(own, c.vcek, forged, NULL), CF_E_VERIFY);
    T_ERR(verify_with_crls(own, c.vcek, NULL, NULL), CF_E_VERIFY);
    T_ERR(verify_with_crls(own, c.vcek, ask_empty, NULL), CF_E_VERIFY);
    /* Without CRLs no revocation is checked. */
    T_OK(cf_snp_chain_verify(own, c.vcek, CF_SNP_PRODUCT_MILAN, false, T_FIXED, NULL, NULL));

    X509_CRL_free(ark_empty);
    X509_CRL_free(ark_revokes_ask);
    X509_CRL_free(ark_other);
    X509_CRL_free(forged);
    X509_CRL_free(ask_revokes_vcek);
    X509_CRL_free(ask_empty);
    EVP_PKEY_free(impostor);
    cf_snp_roots_free(own);
    fake_chain_free(&c);
}

static void test_chain_cache(void)
{
    cf_snp_roots *roots = NULL;
    cf_snp_chain_cache *cache = NULL;
    X509 *milan = load_cert_path("sev-snp/reports/milan-v3.vcek.der");
    X509 *vlek = load_cert_path("sev-snp/reports/milan-v3-vlek.vlek.der");
    X509 *bad = load_cert_path("sev-snp/negative/tampered-vcek-legacy.der");
    uint8_t fpr[48], want[48];
    uint64_t hits, misses;
    STACK_OF(X509_CRL) *empty = sk_X509_CRL_new_null();

    T_ERR(cf_snp_chain_cache_new(CF_SNP_CHAIN_CACHE_MAX + 1, &cache), CF_E_RANGE);
    T_OK(cf_snp_chain_cache_new(4, &cache));
    T_OK(cf_snp_roots_amd(&roots));
    T_OK(cf_snp_roots_ark_fingerprint(roots, CF_SNP_PRODUCT_MILAN, false, want));
    T_OK(cf_snp_chain_verify_cached(cache, roots, milan, CF_SNP_PRODUCT_MILAN, false, T_FIXED, NULL,
                                    fpr));
    T_MEMEQ(fpr, want, 48);
    memset(fpr, 0, sizeof(fpr));
    T_OK(cf_snp_chain_verify_cached(cache, roots, milan, CF_SNP_PRODUCT_MILAN, false, T_FIXED + 60,
                                    NULL, fpr));
    T_MEMEQ(fpr, want, 48);
    cf_snp_chain_cache_stats(cache, &hits, &misses);
    T_EQ(hits, 1);
    T_EQ(misses, 1);
    /* The cached success is per product/vlek: another root still fails. */
    T_ERR(cf_snp_chain_verify_cached(cache, roots, milan, CF_SNP_PRODUCT_GENOA, false, T_FIXED,
                                     NULL, NULL),
          CF_E_VERIFY);
    /* Failures are not cached: the tampered cert fails every time. */
    T_ERR(cf_snp_chain_verify_cached(cache, roots, bad, CF_SNP_PRODUCT_MILAN, false, T_FIXED, NULL,
                                     NULL),
          CF_E_VERIFY);
    T_ERR(cf_snp_chain_verify_cached(cache, roots, bad, CF_SNP_PRODUCT_MILAN, false, T_FIXED, NULL,
                                     NULL),
          CF_E_VERIFY);
    /* A cached success is not reused outside the validity window. */
    T_OK(cf_snp_chain_verify_cached(cache, roots, vlek, CF_SNP_PRODUCT_MILAN, true, T_FIXED, NULL,
                                    NULL));
    T_OK(cf_snp_chain_verify_cached(cache, roots, vlek, CF_SNP_PRODUCT_MILAN, true, T_FIXED, NULL,
                                    NULL));
    T_ERR(cf_snp_chain_verify_cached(cache, roots, vlek, CF_SNP_PRODUCT_MILAN, true, T_2026, NULL,
                                     NULL),
          CF_E_EXPIRED);
    cf_snp_chain_cache_stats(cache, &hits, &misses);
    T_EQ(hits, 2);
    T_EQ(misses, 6);
    /* With CRLs the cache is bypassed (here: no CRL for the ASK -> fail closed). */
    T_ERR(cf_snp_chain_verify_cached(cache, roots, milan, CF_SNP_PRODUCT_MILAN, false, T_FIXED,
                                     empty, NULL),
          CF_E_VERIFY);
    cf_snp_chain_cache_stats(cache, &hits, &misses);
    T_EQ(hits + misses, 8);
    /* NULL cache: plain verification. */
    T_OK(cf_snp_chain_verify_cached(NULL, roots, milan, CF_SNP_PRODUCT_MILAN, false, T_FIXED, NULL,
                                    NULL));
    /* Many distinct leaves through a tiny cache: replacement keeps it correct. */
    for (size_t i = 0; i < CF_ARRAY_LEN(pairs); i++) {
        X509 *x = pair_cert(&pairs[i]);
        T_OK(cf_snp_chain_verify_cached(cache, roots, x, pairs[i].product, pairs[i].vlek, T_FIXED,
                                        NULL, NULL));
        T_OK(cf_snp_chain_verify_cached(cache, roots, x, pairs[i].product, pairs[i].vlek, T_FIXED,
                                        NULL, NULL));
        X509_free(x);
    }
    sk_X509_CRL_free(empty);
    X509_free(milan);
    X509_free(vlek);
    X509_free(bad);
    cf_snp_chain_cache_free(cache);
    cf_snp_roots_free(roots);
}

static unsigned char *read_der(const char *rel, size_t *ret_len)
{
    return t_read_file(t_testdata(rel), ret_len);
}

static void test_chain_cache_der(void)
{
    cf_snp_roots *roots = NULL;
    cf_snp_chain_cache *cache = NULL;
    size_t n, nv2, nbad;
    unsigned char *der = read_der("sev-snp/reports/milan-v3.vcek.der", &n);
    unsigned char *v2 = read_der("sev-snp/reports/milan-v2.vcek.der", &nv2);
    unsigned char *bad = read_der("sev-snp/negative/tampered-vcek-octetstring.der", &nbad);
    unsigned char *longer = malloc(n + 1);
    X509 *x1 = NULL, *x2 = NULL, *x3 = NULL, *x = NULL;
    uint8_t fpr[48], want[48];
    uint64_t hits, misses;
    cf_snp_cert_ext e;

    T_OK(cf_snp_roots_amd(&roots));
    T_OK(cf_snp_chain_cache_new(0, &cache));
    T_OK(cf_snp_roots_ark_fingerprint(roots, CF_SNP_PRODUCT_MILAN, false, want));
    /* Miss, then a hit that hands back the cached certificate itself. */
    T_OK(cf_snp_chain_verify_der_cached(cache, roots, der, n, CF_SNP_PRODUCT_MILAN, false, T_FIXED,
                                        NULL, &x1, fpr));
    T_MEMEQ(fpr, want, 48);
    T_OK(cf_snp_chain_verify_der_cached(cache, roots, der, n, CF_SNP_PRODUCT_MILAN, false, T_FIXED,
                                        NULL, &x2, fpr));
    T_ASSERT(x1 != NULL && x1 == x2);
    T_OK(cf_snp_cert_parse_ext(x2, &e));
    T_EQ(e.product, CF_SNP_PRODUCT_MILAN);
    cf_snp_chain_cache_stats(cache, &hits, &misses);
    T_EQ(hits, 1);
    T_EQ(misses, 1);
    /* The X509 entry point shares the entries (same DER fingerprint). */
    T_OK(cf_snp_chain_verify_cached(cache, roots, x1, CF_SNP_PRODUCT_MILAN, false, T_FIXED, NULL,
                                    NULL));
    cf_snp_chain_cache_stats(cache, &hits, &misses);
    T_EQ(hits, 2);
    /* Not reused for another product or after the VCEK's notAfter (2032). */
    T_ERR(cf_snp_chain_verify_der_cached(cache, roots, der, n, CF_SNP_PRODUCT_GENOA, false, T_FIXED,
                                         NULL, &x, NULL),
          CF_E_VERIFY);
    T_ERR(cf_snp_chain_verify_der_cached(cache, roots, der, n, CF_SNP_PRODUCT_MILAN, false,
                                         (time_t)2000000000, NULL, &x, NULL),
          CF_E_EXPIRED);
    T_ASSERT(x == NULL);
    /* v2 report: the product comes from the certificate. */
    T_OK(cf_snp_chain_verify_der_cached(cache, roots, v2, nv2, CF_SNP_PRODUCT_UNKNOWN, false,
                                        T_FIXED, NULL, &x3, fpr));
    T_MEMEQ(fpr, want, 48);
    T_OK(cf_snp_chain_verify_der_cached(NULL, roots, v2, nv2, CF_SNP_PRODUCT_UNKNOWN, false,
                                        T_FIXED, NULL, &x, NULL));
    T_ASSERT(x != NULL && x != x3);
    X509_free(x);
    x = NULL;
    /* Malformed DER: trailing byte, truncation, oversize; tampered cert twice. */
    memcpy(longer, der, n);
    longer[n] = 0;
    T_ERR(cf_snp_chain_verify_der_cached(cache, roots, longer, n + 1, CF_SNP_PRODUCT_MILAN, false,
                                         T_FIXED, NULL, &x, NULL),
          CF_E_PARSE);
    T_ERR(cf_snp_chain_verify_der_cached(cache, roots, der, n - 1, CF_SNP_PRODUCT_MILAN, false,
                                         T_FIXED, NULL, &x, NULL),
          CF_E_PARSE);
    T_ERR(cf_snp_chain_verify_der_cached(cache, roots, der, CF_CERT_MAX_BYTES + 1,
                                         CF_SNP_PRODUCT_MILAN, false, T_FIXED, NULL, &x, NULL),
          CF_E_TOO_LARGE);
    for (int i = 0; i < 2; i++)
        T_ERR(cf_snp_chain_verify_der_cached(cache, roots, bad, nbad, CF_SNP_PRODUCT_MILAN, false,
                                             T_FIXED, NULL, &x, NULL),
              CF_E_VERIFY);
    T_ASSERT(x == NULL);
    X509_free(x1);
    X509_free(x2);
    X509_free(x3);
    free(der);
    free(v2);
    free(bad);
    free(longer);
    cf_snp_chain_cache_free(cache);
    cf_snp_roots_free(roots);
}

int main(void)
{
    T_RUN(test_real_cert_extensions_match_reports);
    T_RUN(test_real_cert_known_values);
    T_RUN(test_tampered_vceks);
    T_RUN(test_synthetic_extensions_ok);
    T_RUN(test_synthetic_extensions_rejected);
    T_RUN(test_real_chains_verify);
    T_RUN(test_chain_wrong_root_or_time);
    T_RUN(test_roots_api);
    T_RUN(test_lookalike_chain);
    T_RUN(test_chain_algorithms_enforced);
    T_RUN(test_crls);
    T_RUN(test_chain_cache);
    T_RUN(test_chain_cache_der);
    EVP_PKEY_free(fake_ark_key);
    EVP_PKEY_free(fake_ask_key);
    return t_done();
}
