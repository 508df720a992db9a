/*
 * SEV-SNP attestation report: parse/encode against real Milan, Genoa and Turin
 * reports (../shared/testdata/sev-snp/reports), TCB layouts, signature verify
 * and sign, and rejection of malformed reports.
 */
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <string.h>

#include "attest/snp.h"
#include "base/err.h"
#include "test.h"

typedef struct {
    const char *name;     /* file stem under sev-snp/reports/ */
    const char *cert_ext; /* ".vcek.der", ".vlek.der" or ".vcek.pem" */
    uint32_t version;
    cf_snp_product product; /* from CPUID (unknown for v2) */
} report_case;

static const report_case cases[] = {
    {"milan-v2-debug", ".vcek.der", 2, CF_SNP_PRODUCT_UNKNOWN},
    {"milan-v2", ".vcek.der", 2, CF_SNP_PRODUCT_UNKNOWN},
    {"milan-v2-tcbskew", ".vcek.der", 2, CF_SNP_PRODUCT_UNKNOWN},
    {"milan-v3-vlek", ".vlek.der", 3, CF_SNP_PRODUCT_MILAN},
    {"milan-v3", ".vcek.der", 3, CF_SNP_PRODUCT_MILAN},
    {"genoa-v3", ".vcek.pem", 3, CF_SNP_PRODUCT_GENOA},
    {"turin-v5", ".vcek.der", 5, CF_SNP_PRODUCT_TURIN},
};

static uint8_t *load_report(const char *name)
{
    char rel[256];
    size_t n;
    uint8_t *d;

    snprintf(rel, sizeof(rel), "sev-snp/reports/%s.report.bin", name);
    d = t_read_file(t_testdata(rel), &n);
    if (n != CF_SNP_REPORT_LEN)
        abort();
    return d;
}

static X509 *load_cert(const char *name, const char *ext)
{
    char rel[256];
    size_t n;
    unsigned char *d;
    const unsigned char *p;
    X509 *x;

    snprintf(rel, sizeof(rel), "sev-snp/reports/%s%s", name, ext);
    d = t_read_file(t_testdata(rel), &n);
    if (strstr(ext, ".pem") != NULL) {
        BIO *b = BIO_new_mem_buf(d, (int)n);
        x = PEM_read_bio_X509(b, NULL, NULL, NULL);
        BIO_free(b);
    } else {
        p = d;
        x = d2i_X509(NULL, &p, (long)n);
    }
    free(d);
    if (x == NULL)
        abort();
    return x;
}

static void parse_case(const char *name, cf_snp_report *r, uint8_t **ret_raw)
{
    uint8_t *raw = load_report(name);
    if (cf_snp_report_parse(raw, CF_SNP_REPORT_LEN, r) != 0) {
        fprintf(stderr, "parse %s: %s\n", name, cf_err_detail(CF_E_PARSE));
        abort();
    }
    *ret_raw = raw;
}

static bool all_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != 0)
            return false;
    return true;
}

/* Every real report parses, re-encodes to the same bytes and verifies with its cert. */
static void test_real_reports_parse_roundtrip_verify(void)
{
    for (size_t i = 0; i < CF_ARRAY_LEN(cases); i++) {
        cf_snp_report r;
        uint8_t *raw = load_report(cases[i].name), enc[CF_SNP_REPORT_LEN];
        X509 *cert = load_cert(cases[i].name, cases[i].cert_ext);
        int rc = cf_snp_report_parse(raw, CF_SNP_REPORT_LEN, &r);

        T_ASSERT_MSG(rc == 0, "%s: %s", cases[i].name, cf_err_detail(rc));
        T_EQ(r.version, cases[i].version);
        T_EQ(r.signature_algo, 1);
        T_EQ(cf_snp_report_product(&r), cases[i].product);
        T_ASSERT((r.policy & CF_SNP_POLICY_RESERVED_1) != 0);
        T_OK(cf_snp_report_encode(&r, enc));
        T_ASSERT_MSG(memcmp(enc, raw, CF_SNP_REPORT_LEN) == 0, "%s: round trip differs",
                     cases[i].name);
        rc = cf_snp_report_verify_signature(raw, cert);
        T_ASSERT_MSG(rc == 0, "%s: %s", cases[i].name, cf_err_detail(rc));
        X509_free(cert);
        free(raw);
    }
}

static void test_known_fields(void)
{
    cf_snp_report r;
    cf_snp_tcb cur, rep;
    uint8_t *raw;

    /* go-sev-guest debug report: policy 0xb0000, DEBUG (bit 19) set;
     * report_data 01 02 03 04 05 00... */
    parse_case("milan-v2-debug", &r, &raw);
    T_EQ(r.policy, 0xb0000);
    T_ASSERT((r.policy & CF_SNP_POLICY_DEBUG) != 0);
    T_ASSERT(r.report_data[0] == 1 && r.report_data[4] == 5 && all_zero(&r.report_data[5], 59));
    T_EQ(cf_snp_report_signing_key(&r), CF_SNP_KEY_VCEK);
    free(raw);

    parse_case("milan-v2", &r, &raw);
    T_ASSERT((r.policy & CF_SNP_POLICY_DEBUG) == 0);
    T_EQ(r.vmpl, 0);
    T_EQ(r.cpuid_fam_id, 0);
    free(raw);

    /* VLEK-signed: SIGNING_KEY (key_info bits 4:2) = 1, VMPL 1, chip_id masked to zero. */
    parse_case("milan-v3-vlek", &r, &raw);
    T_EQ(cf_snp_report_signing_key(&r), CF_SNP_KEY_VLEK);
    T_EQ(r.key_info, 0x4);
    T_EQ(r.vmpl, 1);
    T_ASSERT(all_zero(r.chip_id, sizeof(r.chip_id)));
    free(raw);

    /* Milan v3: CPUID family 19h model 01h stepping 1; Milan TCB layout. */
    parse_case("milan-v3", &r, &raw);
    T_EQ(r.cpuid_fam_id, 0x19);
    T_EQ(r.cpuid_mod_id, 0x01);
    T_EQ(r.cpuid_step, 0x01);
    cf_snp_tcb_decode(r.reported_tcb_raw, CF_SNP_PRODUCT_MILAN, &rep);
    T_EQ(rep.bootloader, 4);
    T_EQ(rep.tee, 0);
    T_EQ(rep.snp, 24);
    T_EQ(rep.microcode, 219);
    free(raw);

    parse_case("genoa-v3", &r, &raw);
    T_EQ(r.cpuid_fam_id, 0x19);
    T_EQ(r.cpuid_mod_id, 0x11);
    T_EQ(cf_snp_report_product(&r), CF_SNP_PRODUCT_GENOA);
    free(raw);

    /* current_tcb microcode 206 != reported_tcb 115 (the VCEK matches reported_tcb). */
    parse_case("milan-v2-tcbskew", &r, &raw);
    cf_snp_tcb_decode(r.current_tcb_raw, CF_SNP_PRODUCT_MILAN, &cur);
    cf_snp_tcb_decode(r.reported_tcb_raw, CF_SNP_PRODUCT_MILAN, &rep);
    T_EQ(cur.microcode, 206);
    T_EQ(rep.microcode, 115);
    T_EQ(rep.bootloader, 3);
    T_EQ(rep.snp, 8);
    T_ASSERT(!cf_snp_tcb_eq(&cur, &rep, CF_SNP_PRODUCT_MILAN));
    free(raw);

    /* Turin v5: CPUID 1Ah/02h; chip_id only 8 bytes; Turin TCB layout (FMC first). */
    parse_case("turin-v5", &r, &raw);
    T_EQ(r.cpuid_fam_id, 0x1A);
    T_EQ(r.cpuid_mod_id, 0x02);
    T_ASSERT(!all_zero(r.chip_id, 8));
    T_ASSERT(all_zero(&r.chip_id[8], 56));
    T_EQ(r.launch_mit_vector, 0);
    T_EQ(r.current_mit_vector, 0);
    T_EQ(r.reported_tcb_raw, 0x4700000002000100ull);
    cf_snp_tcb_decode(r.reported_tcb_raw, CF_SNP_PRODUCT_TURIN, &rep);
    T_EQ(rep.fmc, 0);
    T_EQ(rep.bootloader, 1);
    T_EQ(rep.tee, 0);
    T_EQ(rep.snp, 2);
    T_EQ(rep.microcode, 0x47);
    /* The same bytes read with the Milan layout give different components. */
    cf_snp_tcb_decode(r.reported_tcb_raw, CF_SNP_PRODUCT_MILAN, &cur);
    T_EQ(cur.bootloader, 0);
    T_EQ(cur.tee, 1);
    free(raw);
}

static void test_tcb_encode_decode(void)
{
    cf_snp_tcb t = {.bootloader = 3, .tee = 0, .snp = 8, .microcode = 115}, d;
    cf_snp_tcb turin = {.fmc = 1, .bootloader = 2, .tee = 3, .snp = 4, .microcode = 0x47};

    T_EQ(cf_snp_tcb_encode(&t, CF_SNP_PRODUCT_MILAN), 0x7308000000000003ull);
    T_EQ(cf_snp_tcb_encode(&t, CF_SNP_PRODUCT_GENOA), 0x7308000000000003ull);
    T_EQ(cf_snp_tcb_encode(&turin, CF_SNP_PRODUCT_TURIN), 0x4700000004030201ull);
    cf_snp_tcb_decode(0x4700000004030201ull, CF_SNP_PRODUCT_TURIN, &d);
    T_ASSERT(cf_snp_tcb_eq(&d, &turin, CF_SNP_PRODUCT_TURIN));
    T_EQ(d.raw, 0x4700000004030201ull);
    /* Reserved bytes are ignored by the comparison, FMC only counts on Turin. */
    cf_snp_tcb_decode(0x7308001122330003ull, CF_SNP_PRODUCT_MILAN, &d);
    T_ASSERT(cf_snp_tcb_eq(&d, &t, CF_SNP_PRODUCT_MILAN));
    d.fmc = 9;
    T_ASSERT(cf_snp_tcb_eq(&d, &t, CF_SNP_PRODUCT_MILAN));
    turin.fmc = 2;
    cf_snp_tcb_decode(0x4700000004030201ull, CF_SNP_PRODUCT_TURIN, &d);
    T_ASSERT(!cf_snp_tcb_eq(&d, &turin, CF_SNP_PRODUCT_TURIN));
    cf_snp_tcb_decode(0x7308000000000003ull, CF_SNP_PRODUCT_MILAN, &d);
    T_ASSERT(cf_snp_tcb_eq(&d, &t, CF_SNP_PRODUCT_MILAN));
    d.microcode = 0x72;
    T_ASSERT(!cf_snp_tcb_eq(&d, &t, CF_SNP_PRODUCT_MILAN));
    d.microcode = t.microcode;
    d.snp = 7;
    T_ASSERT(!cf_snp_tcb_eq(&d, &t, CF_SNP_PRODUCT_MILAN));
}

static void test_product_from_cpuid(void)
{
    T_EQ(cf_snp_product_from_cpuid(0x19, 0x01), CF_SNP_PRODUCT_MILAN);
    T_EQ(cf_snp_product_from_cpuid(0x19, 0x0F), CF_SNP_PRODUCT_MILAN);
    T_EQ(cf_snp_product_from_cpuid(0x19, 0x10), CF_SNP_PRODUCT_GENOA);
    T_EQ(cf_snp_product_from_cpuid(0x19, 0x11), CF_SNP_PRODUCT_GENOA);
    T_EQ(cf_snp_product_from_cpuid(0x19, 0xA0), CF_SNP_PRODUCT_GENOA);
    T_EQ(cf_snp_product_from_cpuid(0x19, 0xAF), CF_SNP_PRODUCT_GENOA);
    T_EQ(cf_snp_product_from_cpuid(0x19, 0x20), CF_SNP_PRODUCT_UNKNOWN);
    T_EQ(cf_snp_product_from_cpuid(0x19, 0xB0), CF_SNP_PRODUCT_UNKNOWN);
    T_EQ(cf_snp_product_from_cpuid(0x1A, 0x02), CF_SNP_PRODUCT_TURIN);
    T_EQ(cf_snp_product_from_cpuid(0x1A, 0x11), CF_SNP_PRODUCT_TURIN);
    T_EQ(cf_snp_product_from_cpuid(0x1A, 0x12), CF_SNP_PRODUCT_UNKNOWN);
    T_EQ(cf_snp_product_from_cpuid(0x17, 0x01), CF_SNP_PRODUCT_UNKNOWN);
    T_STREQ(cf_snp_product_name(CF_SNP_PRODUCT_MILAN), "Milan");
    T_STREQ(cf_snp_product_name(CF_SNP_PRODUCT_GENOA), "Genoa");
    T_STREQ(cf_snp_product_name(CF_SNP_PRODUCT_TURIN), "Turin");
    T_STREQ(cf_snp_product_name(CF_SNP_PRODUCT_UNKNOWN), "unknown");
}

/* Flipping any signed byte, or any byte of r or s, breaks the signature. */
static void test_bit_flips_fail_verification(void)
{
    static const char *names[] = {"milan-v3", "turin-v5"};

    for (size_t k = 0; k < CF_ARRAY_LEN(names); k++) {
        uint8_t *raw = load_report(names[k]);
        X509 *cert = load_cert(names[k], ".vcek.der");
        size_t checked = 0;

        T_OK(cf_snp_report_verify_signature(raw, cert));
        for (size_t i = 0; i < CF_SNP_REPORT_LEN; i++) {
            bool in_sig = i >= 0x2A0 && i < 0x2A0 + 2 * CF_SNP_SIG_COMPONENT_LEN;
            if (!((i < CF_SNP_SIGNED_LEN && i % 7 == 0) || in_sig))
                continue;
            raw[i] ^= 0x01;
            int rc = cf_snp_report_verify_signature(raw, cert);
            raw[i] ^= 0x01;
            if (i == 0x34) /* flipping SIGNATURE_ALGO makes it unsupported, also a failure */
                T_ASSERT_MSG(rc == CF_E_UNSUPPORTED, "byte 0x%zx: rc %d", i, rc);
            else
                T_ASSERT_MSG(rc == CF_E_SIGNATURE, "byte 0x%zx: rc %d", i, rc);
            checked++;
        }
        T_ASSERT(checked > 96 + 144 - 1);
        T_OK(cf_snp_report_verify_signature(raw, cert));
        X509_free(cert);
        free(raw);
    }
}

static void test_wrong_signer(void)
{
    uint8_t *raw = load_report("milan-v3");
    X509 *other = load_cert("genoa-v3", ".vcek.pem");
    X509 *mine = load_cert("milan-v3", ".vcek.der");

    T_ERR(cf_snp_report_verify_signature(raw, other), CF_E_SIGNATURE);
    T_OK(cf_snp_report_verify_signature(raw, mine));
    /* The VLEK report does not verify with an unrelated VCEK. */
    free(raw);
    raw = load_report("milan-v3-vlek");
    T_ERR(cf_snp_report_verify_signature(raw, mine), CF_E_SIGNATURE);
    X509_free(other);
    X509_free(mine);
    free(raw);
}

static void put_u32le(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void test_length_version_algo_errors(void)
{
    uint8_t *raw = load_report("milan-v3");
    uint8_t big[CF_SNP_REPORT_LEN + 1];
    cf_snp_report r;
    static const uint32_t bad_versions[] = {0, 1, 4, 6, 0xFFFFFFFFu};
    static const uint32_t bad_algos[] = {0, 2, 0xFFFFFFFFu};
    char want[64];
    int rc;

    T_ERR(cf_snp_report_parse(raw, CF_SNP_REPORT_LEN - 1, &r), CF_E_TRUNCATED);
    T_ERR(cf_snp_report_parse(raw, 0, &r), CF_E_TRUNCATED);
    memcpy(big, raw, CF_SNP_REPORT_LEN);
    big[CF_SNP_REPORT_LEN] = 0;
    T_ERR(cf_snp_report_parse(big, sizeof(big), &r), CF_E_TRAILING);
    for (size_t i = 0; i < CF_ARRAY_LEN(bad_versions); i++) {
        put_u32le(raw, bad_versions[i]);
        rc = cf_snp_report_parse(raw, CF_SNP_REPORT_LEN, &r);
        T_EQ(rc, CF_E_UNSUPPORTED);
        snprintf(want, sizeof(want), "unsupported report version %u", bad_versions[i]);
        T_STREQ(cf_err_detail(rc), want);
    }
    put_u32le(raw, 3);
    T_OK(cf_snp_report_parse(raw, CF_SNP_REPORT_LEN, &r));
    for (size_t i = 0; i < CF_ARRAY_LEN(bad_algos); i++) {
        put_u32le(&raw[0x34], bad_algos[i]);
        rc = cf_snp_report_parse(raw, CF_SNP_REPORT_LEN, &r);
        T_EQ(rc, CF_E_UNSUPPORTED);
        snprintf(want, sizeof(want), "unsupported signature algorithm %u", bad_algos[i]);
        T_STREQ(cf_err_detail(rc), want);
    }
    put_u32le(&raw[0x34], 1);
    T_OK(cf_snp_report_parse(raw, CF_SNP_REPORT_LEN, &r));
    free(raw);
}

/* Reserved bytes that the ABI requires to be zero are rejected, per version. */
static void test_reserved_fields(void)
{
    /* Offsets reserved in every supported version. */
    static const size_t mbz[] = {0x04C, 0x04F, 0x18B, 0x19F, 0x1EB,
                                 0x1EF, 0x208, 0x29F, 0x330, 0x49F};
    uint8_t *v2 = load_report("milan-v2"), *v3 = load_report("milan-v3"),
            *v5 = load_report("turin-v5");
    cf_snp_report r;

    for (size_t i = 0; i < CF_ARRAY_LEN(mbz); i++) {
        uint8_t *reps[] = {v2, v3, v5};
        for (size_t k = 0; k < 3; k++) {
            reps[k][mbz[i]] = 0x80;
            T_ASSERT_MSG(cf_snp_report_parse(reps[k], CF_SNP_REPORT_LEN, &r) == CF_E_PARSE,
                         "offset 0x%zx accepted", mbz[i]);
            reps[k][mbz[i]] = 0;
        }
    }
    /* CPUID bytes are reserved in v2 but fields in v3+. */
    v2[0x188] = 0x19;
    T_ERR(cf_snp_report_parse(v2, CF_SNP_REPORT_LEN, &r), CF_E_PARSE);
    v2[0x188] = 0;
    T_OK(cf_snp_report_parse(v2, CF_SNP_REPORT_LEN, &r));
    /* Mitigation vectors are reserved before v5 and fields in v5. */
    v3[0x1F8] = 1;
    T_ERR(cf_snp_report_parse(v3, CF_SNP_REPORT_LEN, &r), CF_E_PARSE);
    v3[0x1F8] = 0;
    v3[0x207] = 1;
    T_ERR(cf_snp_report_parse(v3, CF_SNP_REPORT_LEN, &r), CF_E_PARSE);
    v3[0x207] = 0;
    v5[0x1F8] = 0x05;
    v5[0x207] = 0x80;
    T_OK(cf_snp_report_parse(v5, CF_SNP_REPORT_LEN, &r));
    T_EQ(r.launch_mit_vector, 5);
    T_EQ(r.current_mit_vector, 0x8000000000000000ull);
    v5[0x1F8] = 0;
    v5[0x207] = 0;
    /* KEY_INFO: bits 31:5 reserved; SIGNING_KEY 2..6 reserved; 7 (none) allowed. */
    v3[0x48] = 0x20;
    T_ERR(cf_snp_report_parse(v3, CF_SNP_REPORT_LEN, &r), CF_E_PARSE);
    v3[0x48] = 2 << 2;
    T_ERR(cf_snp_report_parse(v3, CF_SNP_REPORT_LEN, &r), CF_E_PARSE);
    v3[0x48] = 7 << 2 | 3;
    T_OK(cf_snp_report_parse(v3, CF_SNP_REPORT_LEN, &r));
    T_EQ(cf_snp_report_signing_key(&r), CF_SNP_KEY_NONE);
    v3[0x48] = 0;
    /* Guest policy bit 17 must be one; unknown upper policy bits and PLATFORM_INFO
     * bits are not rejected (AMD adds them without a version bump). */
    v3[0x0A] &= (uint8_t)~0x02;
    T_ERR(cf_snp_report_parse(v3, CF_SNP_REPORT_LEN, &r), CF_E_PARSE);
    v3[0x0A] |= 0x02;
    v3[0x0B] = 0xFF;
    v3[0x47] = 0xFF;
    T_OK(cf_snp_report_parse(v3, CF_SNP_REPORT_LEN, &r));
    free(v2);
    free(v3);
    free(v5);
}

static void test_encode_rejects_what_parse_rejects(void)
{
    uint8_t *raw = load_report("milan-v2"), out[CF_SNP_REPORT_LEN];
    cf_snp_report r, bad;

    T_OK(cf_snp_report_parse(raw, CF_SNP_REPORT_LEN, &r));
    bad = r;
    bad.version = 4;
    T_ERR(cf_snp_report_encode(&bad, out), CF_E_INVAL);
    bad = r;
    bad.signature_algo = 2;
    T_ERR(cf_snp_report_encode(&bad, out), CF_E_INVAL);
    bad = r;
    bad.cpuid_fam_id = 0x19; /* v2 has no CPUID fields */
    T_ERR(cf_snp_report_encode(&bad, out), CF_E_INVAL);
    bad = r;
    bad.current_mit_vector = 1; /* v2 has no mitigation vectors */
    T_ERR(cf_snp_report_encode(&bad, out), CF_E_INVAL);
    bad = r;
    bad.key_info = 1u << 5;
    T_ERR(cf_snp_report_encode(&bad, out), CF_E_INVAL);
    bad = r;
    bad.policy &= ~CF_SNP_POLICY_RESERVED_1;
    T_ERR(cf_snp_report_encode(&bad, out), CF_E_INVAL);
    T_OK(cf_snp_report_encode(&r, out));
    T_MEMEQ(out, raw, CF_SNP_REPORT_LEN);
    free(raw);
}

static EVP_PKEY *gen_ec(const char *curve) { return EVP_PKEY_Q_keygen(NULL, NULL, "EC", curve); }

/* A minimal self-signed certificate carrying key (for the signer argument). */
static X509 *self_signed(EVP_PKEY *key)
{
    X509 *x = X509_new();
    X509_NAME *n;

    if (x == NULL || X509_set_version(x, 2) != 1 ||
        ASN1_INTEGER_set(X509_get_serialNumber(x), 1) != 1 ||
        X509_gmtime_adj(X509_getm_notBefore(x), 0) == NULL ||
        X509_gmtime_adj(X509_getm_notAfter(x), 3600) == NULL || X509_set_pubkey(x, key) != 1)
        abort();
    n = X509_get_subject_name(x);
    if (X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)"test", -1, -1,
                                   0) != 1 ||
        X509_set_issuer_name(x, n) != 1 || X509_sign(x, key, EVP_sha384()) <= 0)
        abort();
    return x;
}

/* The simulated secure processor's path: encode, sign, then verify and parse. */
static void test_sign_then_verify(void)
{
    EVP_PKEY *key = gen_ec("P-384"), *other = gen_ec("P-384"), *p256 = gen_ec("P-256");
    X509 *cert = self_signed(key), *other_cert = self_signed(other), *p256_cert = self_signed(p256);
    cf_snp_report r, back;
    uint8_t raw[CF_SNP_REPORT_LEN];

    T_ASSERT(key != NULL && other != NULL && p256 != NULL);
    memset(&r, 0, sizeof(r));
    r.version = 5;
    r.policy = CF_SNP_POLICY_SMT | CF_SNP_POLICY_RESERVED_1;
    r.signature_algo = CF_SNP_SIG_ALGO_ECDSA_P384_SHA384;
    r.cpuid_fam_id = 0x19;
    r.cpuid_mod_id = 0x01;
    r.cpuid_step = 1;
    r.current_tcb_raw = r.reported_tcb_raw = r.committed_tcb_raw = r.launch_tcb_raw =
        0xdb18000000000004ull;
    memset(r.measurement, 0xAB, sizeof(r.measurement));
    memset(r.report_data, 0x5A, sizeof(r.report_data));
    memset(r.chip_id, 0x11, sizeof(r.chip_id));
    r.launch_mit_vector = 3;
    T_OK(cf_snp_report_encode(&r, raw));
    T_OK(cf_snp_report_sign(raw, key));
    T_OK(cf_snp_report_verify_signature(raw, cert));
    T_ERR(cf_snp_report_verify_signature(raw, other_cert), CF_E_SIGNATURE);
    T_ERR(cf_snp_report_verify_signature(raw, p256_cert), CF_E_UNSUPPORTED);
    T_OK(cf_snp_report_parse(raw, sizeof(raw), &back));
    T_MEMEQ(back.measurement, r.measurement, sizeof(r.measurement));
    T_EQ(back.launch_mit_vector, 3);
    T_EQ(cf_snp_report_product(&back), CF_SNP_PRODUCT_MILAN);
    /* r/s are stored little-endian in 72 bytes: the top 24 bytes stay zero. */
    T_ASSERT(all_zero(&back.sig_r[48], 24) && all_zero(&back.sig_s[48], 24));
    T_ASSERT(!all_zero(back.sig_r, 48) && !all_zero(back.sig_s, 48));
    raw[0x90] ^= 1;
    T_ERR(cf_snp_report_verify_signature(raw, cert), CF_E_SIGNATURE);
    /* Signing needs a P-384 key and the ECDSA algorithm id. */
    T_ERR(cf_snp_report_sign(raw, p256), CF_E_INVAL);
    raw[0x34] = 2;
    T_ERR(cf_snp_report_sign(raw, key), CF_E_INVAL);
    T_ERR(cf_snp_report_verify_signature(raw, cert), CF_E_UNSUPPORTED);
    X509_free(cert);
    X509_free(other_cert);
    X509_free(p256_cert);
    EVP_PKEY_free(key);
    EVP_PKEY_free(other);
    EVP_PKEY_free(p256);
}

int main(void)
{
    T_RUN(test_real_reports_parse_roundtrip_verify);
    T_RUN(test_known_fields);
    T_RUN(test_tcb_encode_decode);
    T_RUN(test_product_from_cpuid);
    T_RUN(test_bit_flips_fail_verification);
    T_RUN(test_wrong_signer);
    T_RUN(test_length_version_algo_errors);
    T_RUN(test_reserved_fields);
    T_RUN(test_encode_rejects_what_parse_rejects);
    T_RUN(test_sign_then_verify);
    return t_done();
}
