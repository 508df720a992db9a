/*
 * Verifier (src/attest/verify.c) and binding (src/attest/binding.c) against the
 * real SEV-SNP evidence in ../shared/testdata/sev-snp (SOURCES.md) and a
 * test-local simulated AMD chain (RSA-PSS ARK/ASK, P-384 VCEK with the AMD
 * extensions) for what real evidence cannot show: a custom root, the simulated
 * root, a report bound to a key and nonce, CRLs.
 *
 * Each negative test asserts which check failed and its message.
 */
#include <jansson.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <string.h>

#include "attest/binding.h"
#include "attest/manifest.h"
#include "attest/snp.h"
#include "attest/verify.h"
#include "base/err.h"
#include "base/parse.h"
#include "crypto/hash.h"
#include "test.h"

#define DEV_KEY "F4L2-KeulD8PjwNzy78QLHGrVxORTCycQOMoWyensAk"
/* 2025-09-01T00:00:00Z: inside every test certificate's validity, including
 * the VLEK's (2024-12-10 .. 2025-12-10) and the Genoa/Turin VCEKs' (from July 2025). */
#define T_VALID 1756684800
#define T_2026 1795000000     /* 2026-11-18: after the VLEK expired */
#define T_2025_JAN 1735689600 /* 2025-01-01: before the Turin and Genoa VCEKs */

/* Facts of the real reports, decoded independently of the parser under test
 * (Python over the raw bytes, ABI offsets 0x90 MEASUREMENT, 0x180 REPORTED_TCB). */
struct real {
    const char *name, *cert;
    cf_snp_product product;
    const char *measurement;
    uint8_t fmc, bl, tee, snp, ucode;
    unsigned vmpl;
    bool debug, vlek;
};

static const struct real reals[] = {
    {"milan-v2", "milan-v2.vcek.der", CF_SNP_PRODUCT_MILAN,
     "7a1e5c266c0108dbc9bb94fa926951320940915d0aafb42464bd88b579ea158d3e1a0dc39b2c60bd95b9c480cd818"
     "41f",
     0, 3, 0, 8, 115, 0, false, false},
    {"milan-v2-debug", "milan-v2-debug.vcek.der", CF_SNP_PRODUCT_MILAN,
     "b07af9620f3b839b47996422ddec6058338951d984e312115131ea82705eaf5b6bdf8a9ece31a5a608eb0cf2e4872"
     "b01",
     0, 2, 0, 5, 68, 0, true, false},
    {"milan-v2-tcbskew", "milan-v2-tcbskew.vcek.der", CF_SNP_PRODUCT_MILAN,
     "a1f3930413247bb38cfc171579ea3c12d5fe4901f0c792f63fd75d98f1ef827c23500644e0e692e6be917f9050d3d"
     "38c",
     0, 3, 0, 8, 115, 0, false, false},
    {"milan-v3", "milan-v3.vcek.der", CF_SNP_PRODUCT_MILAN,
     "195b01b74976a1faba13bd85eaf787958f0a46e6dddd45c5bdbf8673522777842b8057ae5d866b75416efb62012de"
     "aa3",
     0, 4, 0, 24, 219, 0, false, false},
    {"milan-v3-vlek", "milan-v3-vlek.vlek.der", CF_SNP_PRODUCT_MILAN,
     "8922ebbdd00ec2c541f36a6e7a82a8773a7accb451ed67bc94e740dbe92c93c4e8c9af857f5ceeb5a493df2a570d7"
     "bf0",
     0, 4, 0, 24, 217, 1, false, true},
    {"genoa-v3", "genoa-v3.vcek.pem", CF_SNP_PRODUCT_GENOA,
     "b0f5d097b5c7addd4ee06a6f5fd04a745c5415d77363ca74857b44226a1bd7da50329549def0897c234695e37b8c2"
     "793",
     0, 9, 0, 23, 72, 0, false, false},
    {"turin-v5", "turin-v5.vcek.der", CF_SNP_PRODUCT_TURIN,
     "f924dd18f168df60fbea937f0b086284d51b1b376de872bac43694f61134d57967c318018de7335503023dbb50dee"
     "624",
     0, 1, 0, 2, 71, 0, false, false},
};

#define MILAN_V2 (&reals[0])
#define MILAN_DEBUG (&reals[1])
#define MILAN_SKEW (&reals[2])
#define MILAN_V3 (&reals[3])
#define MILAN_VLEK (&reals[4])
#define GENOA (&reals[5])
#define TURIN (&reals[6])

#define CHIP_MILAN_V2                                                                              \
    "d49554ec717f4e5b0fe6b143bcf0405bd7ae304727edf46603f2a76aef6a3abc15d7af38db757039029f0efacfd0" \
    "8e2443"                                                                                       \
    "24884738c72b082e2f87a44d541eb6"

/* ---- evidence ---- */

typedef struct {
    uint8_t *report, *cert;
    size_t report_len, cert_len;
} evidence;

static void load(const struct real *r, evidence *e)
{
    char path[256];

    (void)snprintf(path, sizeof(path), "sev-snp/reports/%s.report.bin", r->name);
    e->report = t_read_file(t_testdata(path), &e->report_len);
    (void)snprintf(path, sizeof(path), "sev-snp/reports/%s", r->cert);
    e->cert = t_read_file(t_testdata(path), &e->cert_len);
}

static void load_cert(const char *rel, evidence *e)
{
    free(e->cert);
    e->cert = t_read_file(t_testdata(rel), &e->cert_len);
}

static void unload(evidence *e)
{
    free(e->report);
    free(e->cert);
    memset(e, 0, sizeof(*e));
}

/* ---- manifests ---- */

/* Options for the test manifest. Zero = defaults (all AMD roots, minimums at
 * or below every real report, debug not allowed, VMPL 0, one deployment per
 * real report named after it, tenant "t-<name>"). */
typedef struct {
    bool allow_debug;
    const char *vmpls;     /* JSON, e.g. "[0,1]" */
    const char *roots;     /* JSON, e.g. "[\"amd:genoa\"]" */
    const char *min_milan; /* JSON object */
    const char *min_turin;
    const char *chip_ids;     /* JSON */
    const char *signing_keys; /* JSON */
    const char *guest_policy; /* JSON */
    long long min_guest_svn;  /* < 0 or 0 = absent (use 1 + value for 0) */
    bool set_min_guest_svn;
    const char *skip_measurement; /* deployment without this report's measurement */
    const char *host_data;        /* for every deployment */
    const char *extra_deployment; /* JSON object appended */
    json_t *extra_roots;          /* appended to roots (stolen) */
} mopts;

static json_t *jparse(const char *s)
{
    json_error_t jerr;
    json_t *v = json_loads(s, JSON_DECODE_ANY, &jerr);
    if (v == NULL) {
        fprintf(stderr, "bad test JSON %s: %s\n", s, jerr.text);
        abort();
    }
    return v;
}

static cf_manifest *make_manifest(const mopts *o)
{
    json_t *doc = json_object(), *snp = json_object(), *min = json_object(), *deps = json_array();
    json_t *roots;
    cf_manifest *m = NULL;
    char *text;
    int rc;

    roots = jparse(o->roots ? o->roots : "[\"amd:milan\",\"amd:genoa\",\"amd:turin\"]");
    if (o->extra_roots != NULL)
        json_array_extend(roots, o->extra_roots), json_decref(o->extra_roots);
    json_object_set_new(snp, "roots", roots);
    json_object_set_new(min, "milan",
                        jparse(o->min_milan
                                   ? o->min_milan
                                   : "{\"bootloader\":2,\"tee\":0,\"snp\":5,\"microcode\":68}"));
    json_object_set_new(min, "genoa",
                        jparse("{\"bootloader\":9,\"tee\":0,\"snp\":23,\"microcode\":72}"));
    json_object_set_new(
        min, "turin",
        jparse(o->min_turin ? o->min_turin
                            : "{\"fmc\":0,\"bootloader\":1,\"tee\":0,\"snp\":2,\"microcode\":71}"));
    json_object_set_new(snp, "min_tcb", min);
    if (o->allow_debug)
        json_object_set_new(snp, "allow_debug", json_true());
    if (o->vmpls)
        json_object_set_new(snp, "vmpls", jparse(o->vmpls));
    if (o->chip_ids)
        json_object_set_new(snp, "chip_ids", jparse(o->chip_ids));
    if (o->signing_keys)
        json_object_set_new(snp, "signing_keys", jparse(o->signing_keys));
    if (o->guest_policy)
        json_object_set_new(snp, "guest_policy", jparse(o->guest_policy));
    if (o->set_min_guest_svn)
        json_object_set_new(snp, "min_guest_svn", json_integer(o->min_guest_svn));
    for (size_t i = 0; i < CF_ARRAY_LEN(reals); i++) {
        char tenant[64];
        json_t *dsnp;
        if (o->skip_measurement != NULL && strcmp(o->skip_measurement, reals[i].name) == 0)
            continue;
        (void)snprintf(tenant, sizeof(tenant), "t-%s", reals[i].name);
        dsnp = json_pack("{s:[s]}", "measurements", reals[i].measurement);
        if (o->host_data)
            json_object_set_new(dsnp, "host_data", json_string(o->host_data));
        json_array_append_new(deps, json_pack("{s:s,s:s,s:[s],s:s,s:{s:o}}", "name", reals[i].name,
                                              "tenant", tenant, "jobs", "echo", "developer_key",
                                              DEV_KEY, "platforms", "sev-snp", dsnp));
    }
    if (o->extra_deployment)
        json_array_append_new(deps, jparse(o->extra_deployment));
    json_object_set_new(doc, "version", json_integer(1));
    json_object_set_new(doc, "platforms", json_pack("{s:o}", "sev-snp", snp));
    json_object_set_new(doc, "deployments", deps);
    text = json_dumps(doc, 0);
    json_decref(doc);
    rc = cf_manifest_parse(text, strlen(text), &m);
    if (rc != 0) {
        fprintf(stderr, "test manifest rejected: %s\n%s\n", cf_err_detail(rc), text);
        abort();
    }
    free(text);
    return m;
}

static cf_verify_result *run(const cf_manifest *m, const evidence *e, const char *deployment,
                             time_t at)
{
    cf_verify_input in;
    cf_verify_result *r = NULL;
    int rc;

    memset(&in, 0, sizeof(in));
    in.report = e->report;
    in.report_len = e->report_len;
    in.cert = e->cert;
    in.cert_len = e->cert_len;
    in.deployment = deployment;
    in.at = at;
    rc = cf_verify_evidence(m, &in, &r);
    if (rc != 0 || r == NULL) {
        fprintf(stderr, "cf_verify_evidence failed: %d %s\n", rc, cf_err_detail(rc));
        abort();
    }
    return r;
}

static void dump(const cf_verify_result *r)
{
    cf_buf b;
    cf_buf_init(&b, 1 << 16);
    if (cf_verify_result_to_text(r, &b) == 0 && cf_buf_nul_terminate(&b) == 0)
        fprintf(stderr, "%s", (const char *)b.data);
    cf_buf_free(&b);
}

static bool msg_ok(const char *hay, const char *needle)
{
    return needle == NULL || strstr(hay, needle) != NULL;
}

/* Asserts a check's status and that its message contains msg (NULL: any). */
#define T_CHECK(r, id, st, msg)                                                                    \
    do {                                                                                           \
        const cf_check *c_ = cf_verify_result_check((r), (id));                                    \
        if (c_->status != (st) || !msg_ok(c_->message, (msg))) {                                   \
            dump(r);                                                                               \
            T_FAIL_("check %s: status %s, message \"%s\"; wanted %s \"%s\"", c_->name,             \
                    cf_check_status_name(c_->status), c_->message, cf_check_status_name(st),       \
                    (msg) != NULL ? (const char *)(msg) : "");                                     \
        }                                                                                          \
    } while (0)

/* Exactly the listed checks failed (bitmask of 1 << cf_check_id). */
#define T_FAILED_ONLY(r, mask)                                                                     \
    do {                                                                                           \
        unsigned m_ = 0;                                                                           \
        for (unsigned i_ = 0; i_ < CF_CHECK__COUNT; i_++)                                          \
            if ((r)->checks[i_].status == CF_CHECK_FAILED)                                         \
                m_ |= 1u << i_;                                                                    \
        if (m_ != (unsigned)(mask)) {                                                              \
            dump(r);                                                                               \
            T_FAIL_("failed checks 0x%x, expected 0x%x", m_, (unsigned)(mask));                    \
        }                                                                                          \
        T_ASSERT((r)->verified == ((mask) == 0));                                                  \
    } while (0)

#define BIT(id) (1u << (id))

/* ---- binding ---- */

static void test_binding(void)
{
    uint8_t key[32], nonce[32], out[64], want[64];
    const char *kat = "aac4e15593b46a822dfc7355499d72b19f4e15e4cb9ff07145b7d178478160ab"
                      "f384bd860e11025ce7a90526346c598cacb4d3481695b61934cc1515ce0fdbbb";

    for (int i = 0; i < 32; i++) {
        key[i] = (uint8_t)i;
        nonce[i] = (uint8_t)(100 + i);
    }
    /* Known answer computed independently: Python hashlib.sha512(b"coffer/v1 evidence\0" + key + nonce). */
    T_OK(cf_hex_decode(kat, want, 64));
    T_OK(cf_binding_compute(key, sizeof(key), nonce, out));
    T_MEMEQ(out, want, 64);
    T_OK(cf_binding_check(want, key, sizeof(key), nonce));
    want[63] ^= 1;
    T_ERR(cf_binding_check(want, key, sizeof(key), nonce), CF_E_VERIFY);
    T_STREQ(cf_err_detail(CF_E_VERIFY), "report_data does not bind key and nonce");
    want[63] ^= 1;
    nonce[0] ^= 1;
    T_ERR(cf_binding_check(want, key, sizeof(key), nonce), CF_E_VERIFY);
    nonce[0] ^= 1;
    T_ERR(cf_binding_check(want, key, sizeof(key) - 1, nonce), CF_E_VERIFY);
    T_ERR(cf_binding_compute(key, 0, nonce, out), CF_E_INVAL);
    T_ERR(cf_binding_compute(key, CF_TEE_KEY_MAX_LEN + 1, nonce, out), CF_E_INVAL);
}

/* ---- real evidence ---- */

static void test_all_real_reports_verify(void)
{
    mopts o = {.allow_debug = true, .vmpls = "[0,1]"};
    cf_manifest *m = make_manifest(&o);

    for (size_t i = 0; i < CF_ARRAY_LEN(reals); i++) {
        const struct real *rr = &reals[i];
        evidence e = {0};
        cf_verify_result *r;
        char tcb_raw_tenant[64];

        load(rr, &e);
        /* Named deployment, then resolved by measurement. */
        for (int named = 1; named >= 0; named--) {
            r = run(m, &e, named ? rr->name : NULL, T_VALID);
            T_ASSERT_MSG(r->verified, "%s did not verify", rr->name);
            if (!r->verified)
                dump(r);
            T_FAILED_ONLY(r, 0);
            T_CHECK(r, CF_CHECK_PARSE, CF_CHECK_PASSED, NULL);
            T_CHECK(r, CF_CHECK_SIGNATURE, CF_CHECK_PASSED, NULL);
            T_CHECK(r, CF_CHECK_CHAIN, CF_CHECK_PASSED, "chains to the built-in AMD");
            T_CHECK(r, CF_CHECK_BINDING, CF_CHECK_SKIPPED, "no TEE public key and nonce given");
            T_CHECK(r, CF_CHECK_REVOCATION, CF_CHECK_SKIPPED, "no CRL given");
            T_CHECK(r, CF_CHECK_CHIP_ID, rr->vlek ? CF_CHECK_SKIPPED : CF_CHECK_PASSED, NULL);
            T_CHECK(r, CF_CHECK_DEPLOYMENT, CF_CHECK_PASSED, rr->name);
            T_STREQ(r->deployment, rr->name);
            (void)snprintf(tcb_raw_tenant, sizeof(tcb_raw_tenant), "t-%s", rr->name);
            T_STREQ(r->tenant, tcb_raw_tenant);
            T_STREQ(r->facts.measurement, rr->measurement);
            T_EQ(r->facts.product, rr->product);
            T_EQ(r->facts.vmpl, rr->vmpl);
            T_EQ(r->facts.debug, rr->debug);
            T_EQ(r->facts.cert_is_vlek, rr->vlek);
            T_EQ(r->facts.signing_key, rr->vlek ? CF_SNP_KEY_VLEK : CF_SNP_KEY_VCEK);
            T_EQ(r->facts.reported_tcb.bootloader, rr->bl);
            T_EQ(r->facts.reported_tcb.snp, rr->snp);
            T_EQ(r->facts.reported_tcb.microcode, rr->ucode);
            T_EQ(r->facts.reported_tcb.fmc, rr->fmc);
            T_ASSERT(!r->facts.simulated);
            T_ASSERT(strncmp(r->facts.root, "amd:", 4) == 0);
            T_STREQ(r->facts.root + 4, cf_manifest_product_name(rr->product));
            T_EQ(strlen(r->facts.ark_fingerprint), 96);
            T_STREQ(r->manifest_hash, cf_manifest_hash_str(m));
            T_OK(cf_verify_result_status(r));
            cf_verify_result_free(r);
        }
        unload(&e);
    }
    cf_manifest_free(m);
}

static void test_tcbskew_uses_reported_tcb(void)
{
    /* current_tcb microcode 206, reported_tcb 115: the VCEK matches reported. */
    cf_manifest *m = make_manifest(&(mopts){0});
    evidence e = {0};
    cf_verify_result *r;

    load(MILAN_SKEW, &e);
    r = run(m, &e, NULL, T_VALID);
    T_FAILED_ONLY(r, 0);
    T_CHECK(r, CF_CHECK_TCB_MATCH, CF_CHECK_PASSED, "equal the report's reported_tcb");
    T_EQ(r->facts.current_tcb.microcode, 206);
    T_EQ(r->facts.reported_tcb.microcode, 115);
    T_STREQ(r->checks[CF_CHECK_TCB_MATCH].expected,
            "reported_tcb bootloader=3 tee=0 snp=8 microcode=115");
    cf_verify_result_free(r);
    unload(&e);
    cf_manifest_free(m);
}

static void test_debug(void)
{
    cf_manifest *m = make_manifest(&(mopts){0});
    cf_manifest *dm = make_manifest(&(mopts){.allow_debug = true});
    evidence e = {0};
    cf_verify_result *r;

    load(MILAN_DEBUG, &e);
    r = run(m, &e, "milan-v2-debug", T_VALID);
    T_FAILED_ONLY(r, BIT(CF_CHECK_DEBUG));
    T_CHECK(r, CF_CHECK_DEBUG, CF_CHECK_FAILED, "policy has DEBUG set: debugging is not allowed");
    T_STREQ(r->checks[CF_CHECK_DEBUG].expected, "DEBUG clear");
    T_STREQ(r->checks[CF_CHECK_DEBUG].actual, "DEBUG set");
    T_ASSERT(r->facts.debug);
    T_ERR(cf_verify_result_status(r), CF_E_VERIFY);
    T_STREQ(cf_err_detail(CF_E_VERIFY), "debug: policy has DEBUG set: debugging is not allowed");
    T_ASSERT(cf_verify_first_failure(r) == cf_verify_result_check(r, CF_CHECK_DEBUG));
    cf_verify_result_free(r);

    r = run(dm, &e, "milan-v2-debug", T_VALID);
    T_FAILED_ONLY(r, 0);
    T_CHECK(r, CF_CHECK_DEBUG, CF_CHECK_PASSED, "the manifest allows debugging");
    cf_verify_result_free(r);
    unload(&e);

    /* A non-debug report passes the default manifest's debug check. */
    load(MILAN_V2, &e);
    r = run(m, &e, NULL, T_VALID);
    T_CHECK(r, CF_CHECK_DEBUG, CF_CHECK_PASSED, "debugging is disabled");
    cf_verify_result_free(r);
    unload(&e);
    cf_manifest_free(m);
    cf_manifest_free(dm);
}

static void test_measurement_and_deployment(void)
{
    cf_manifest *m = make_manifest(&(mopts){.skip_measurement = "milan-v2"});
    cf_manifest *full = make_manifest(&(mopts){0});
    cf_manifest *dup = make_manifest(
        &(mopts){.extra_deployment =
                     "{\"name\":\"twin\",\"tenant\":\"t-twin\",\"jobs\":[\"echo\"],\"developer_"
                     "key\":\"" DEV_KEY "\",\"platforms\":{\"sev-snp\":{\"measurements\":["
                                        "\"7a1e5c266c0108dbc9bb94fa926951320940915d0aafb4"
                     "2464bd88b579ea158d3e1a0dc39b2c60bd95b9c480cd81841f\"]}}}"});
    evidence e = {0};
    cf_verify_result *r;
    cf_verify_input in;

    load(MILAN_V2, &e);
    /* Unnamed: nothing allows the measurement. */
    r = run(m, &e, NULL, T_VALID);
    T_FAILED_ONLY(r, BIT(CF_CHECK_MEASUREMENT) | BIT(CF_CHECK_DEPLOYMENT));
    T_CHECK(r, CF_CHECK_MEASUREMENT, CF_CHECK_FAILED, "measurement not in manifest");
    T_STREQ(r->checks[CF_CHECK_MEASUREMENT].actual, MILAN_V2->measurement);
    T_CHECK(r, CF_CHECK_DEPLOYMENT, CF_CHECK_FAILED, "no deployment allows this measurement");
    T_CHECK(r, CF_CHECK_HOST_DATA, CF_CHECK_SKIPPED, "no deployment resolved");
    T_STREQ(r->deployment, "");
    cf_verify_result_free(r);

    /* Named, existing deployment that does not allow it. */
    r = run(full, &e, "milan-v3", T_VALID);
    T_FAILED_ONLY(r, BIT(CF_CHECK_MEASUREMENT));
    T_CHECK(r, CF_CHECK_MEASUREMENT, CF_CHECK_FAILED,
            "measurement not allowed for deployment 'milan-v3' (it is allowed for 'milan-v2')");
    T_STREQ(r->checks[CF_CHECK_MEASUREMENT].expected, MILAN_V3->measurement);
    cf_verify_result_free(r);

    /* Named deployment that does not exist. */
    r = run(full, &e, "nope", T_VALID);
    T_FAILED_ONLY(r, BIT(CF_CHECK_DEPLOYMENT));
    T_CHECK(r, CF_CHECK_DEPLOYMENT, CF_CHECK_FAILED, "deployment 'nope' not in manifest");
    cf_verify_result_free(r);

    /* Ambiguous: two deployments allow the measurement. */
    r = run(dup, &e, NULL, T_VALID);
    T_FAILED_ONLY(r, BIT(CF_CHECK_DEPLOYMENT));
    T_CHECK(r, CF_CHECK_DEPLOYMENT, CF_CHECK_FAILED,
            "measurement is allowed by 2 deployments ('milan-v2'; 'twin'): name the deployment");
    cf_verify_result_free(r);
    r = run(dup, &e, "twin", T_VALID);
    T_FAILED_ONLY(r, 0);
    T_STREQ(r->tenant, "t-twin");
    cf_verify_result_free(r);

    /* Tenant. */
    memset(&in, 0, sizeof(in));
    in.report = e.report;
    in.report_len = e.report_len;
    in.cert = e.cert;
    in.cert_len = e.cert_len;
    in.at = T_VALID;
    in.tenant = "t-other";
    T_OK(cf_verify_evidence(full, &in, &r));
    T_FAILED_ONLY(r, BIT(CF_CHECK_DEPLOYMENT));
    T_CHECK(r, CF_CHECK_DEPLOYMENT, CF_CHECK_FAILED,
            "deployment 'milan-v2' belongs to tenant 't-milan-v2', not 't-other'");
    cf_verify_result_free(r);
    in.tenant = "t-milan-v2";
    T_OK(cf_verify_evidence(full, &in, &r));
    T_FAILED_ONLY(r, 0);
    cf_verify_result_free(r);

    unload(&e);
    cf_manifest_free(m);
    cf_manifest_free(full);
    cf_manifest_free(dup);
}

static void test_min_tcb(void)
{
    cf_manifest *m = make_manifest(
        &(mopts){.min_milan = "{\"bootloader\":2,\"tee\":0,\"snp\":14,\"microcode\":68}"});
    cf_manifest *m2 = make_manifest(
        &(mopts){.min_milan = "{\"bootloader\":3,\"tee\":1,\"snp\":14,\"microcode\":200}"});
    cf_manifest *exact = make_manifest(
        &(mopts){.min_milan = "{\"bootloader\":3,\"tee\":0,\"snp\":8,\"microcode\":115}"});
    cf_manifest *mt = make_manifest(
        &(mopts){.min_turin = "{\"fmc\":1,\"bootloader\":1,\"tee\":0,\"snp\":2,\"microcode\":71}"});
    evidence e = {0};
    cf_verify_result *r;

    load(MILAN_V2, &e);
    r = run(m, &e, NULL, T_VALID);
    T_FAILED_ONLY(r, BIT(CF_CHECK_MIN_TCB));
    T_STREQ(r->checks[CF_CHECK_MIN_TCB].message, "snp TCB 8 below minimum 14");
    T_STREQ(r->checks[CF_CHECK_MIN_TCB].expected, ">= bootloader=2 tee=0 snp=14 microcode=68");
    T_STREQ(r->checks[CF_CHECK_MIN_TCB].actual, "bootloader=3 tee=0 snp=8 microcode=115");
    cf_verify_result_free(r);
    /* Several components below: all are listed. */
    r = run(m2, &e, NULL, T_VALID);
    T_FAILED_ONLY(r, BIT(CF_CHECK_MIN_TCB));
    T_STREQ(r->checks[CF_CHECK_MIN_TCB].message, "tee TCB 0 below minimum 1; snp TCB 8 below "
                                                 "minimum 14; microcode TCB 115 below minimum 200");
    cf_verify_result_free(r);
    /* Equal to the minimum passes. */
    r = run(exact, &e, NULL, T_VALID);
    T_FAILED_ONLY(r, 0);
    T_CHECK(r, CF_CHECK_MIN_TCB, CF_CHECK_PASSED, "reported TCB meets the Milan minimum");
    cf_verify_result_free(r);
    unload(&e);

    /* Turin: the FMC component is compared too. */
    load(TURIN, &e);
    r = run(mt, &e, NULL, T_VALID);
    T_FAILED_ONLY(r, BIT(CF_CHECK_MIN_TCB));
    T_STREQ(r->checks[CF_CHECK_MIN_TCB].message, "fmc TCB 0 below minimum 1");
    T_STREQ(r->checks[CF_CHECK_MIN_TCB].actual, "fmc=0 bootloader=1 tee=0 snp=2 microcode=71");
    cf_verify_result_free(r);
    /* The Milan minimum does not apply to Turin evidence. */
    r = run(m2, &e, NULL, T_VALID);
    T_FAILED_ONLY(r, 0);
    cf_verify_result_free(r);
    unload(&e);
    cf_manifest_free(m);
    cf_manifest_free(m2);
    cf_manifest_free(exact);
    cf_manifest_free(mt);
}

static void test_vmpl(void)
{
    cf_manifest *m = make_manifest(&(mopts){0});
    cf_manifest *m1 = make_manifest(&(mopts){.vmpls = "[0,1]"});
    cf_manifest *only2 = make_manifest(&(mopts){.vmpls = "[2]"});
    evidence e = {0};
    cf_verify_result *r;

    load(MILAN_VLEK, &e);
    r = run(m, &e, "milan-v3-vlek", T_VALID);
    T_FAILED_ONLY(r, BIT(CF_CHECK_VMPL));
    T_CHECK(r, CF_CHECK_VMPL, CF_CHECK_FAILED, "VMPL 1 is not allowed (allowed: 0)");
    T_STREQ(r->checks[CF_CHECK_VMPL].actual, "1");
    cf_verify_result_free(r);
    r = run(m1, &e, "milan-v3-vlek", T_VALID);
    T_FAILED_ONLY(r, 0);
    T_CHECK(r, CF_CHECK_VMPL, CF_CHECK_PASSED, "VMPL 1 is allowed");
    T_CHECK(r, CF_CHECK_CHAIN, CF_CHECK_PASSED, "VLEK chains to the built-in AMD Milan root");
    cf_verify_result_free(r);
    unload(&e);
    load(MILAN_V3, &e);
    r = run(only2, &e, NULL, T_VALID);
    T_FAILED_ONLY(r, BIT(CF_CHECK_VMPL));
    T_CHECK(r, CF_CHECK_VMPL, CF_CHECK_FAILED, "VMPL 0 is not allowed (allowed: 2)");
    cf_verify_result_free(r);
    unload(&e);
    cf_manifest_free(m);
    cf_manifest_free(m1);
    cf_manifest_free(only2);
}

static void test_chip_allowlist(void)
{
    cf_manifest *ok = make_manifest(
        &(mopts){.vmpls = "[0,1]", .chip_ids = "[\"" CHIP_MILAN_V2 "\",\"3b42092f69c656d3\"]"});
    cf_manifest *other =
        make_manifest(&(mopts){.vmpls = "[0,1]", .chip_ids = "[\"0102030405060708\"]"});
    evidence e = {0};
    cf_verify_result *r;

    load(MILAN_V2, &e);
    r = run(ok, &e, NULL, T_VALID);
    T_FAILED_ONLY(r, 0);
    T_CHECK(r, CF_CHECK_CHIP_ALLOWLIST, CF_CHECK_PASSED, "chip_id is on the manifest's allow-list");
    cf_verify_result_free(r);
    r = run(other, &e, NULL, T_VALID);
    T_FAILED_ONLY(r, BIT(CF_CHECK_CHIP_ALLOWLIST));
    T_CHECK(r, CF_CHECK_CHIP_ALLOWLIST, CF_CHECK_FAILED,
            "chip_id not in the manifest's allow-list");
    T_STREQ(r->checks[CF_CHECK_CHIP_ALLOWLIST].actual, CHIP_MILAN_V2);
    cf_verify_result_free(r);
    unload(&e);

    /* Turin: the 8-byte form matches. */
    load(TURIN, &e);
    r = run(ok, &e, NULL, T_VALID);
    T_FAILED_ONLY(r, 0);
    T_CHECK(r, CF_CHECK_CHIP_ID, CF_CHECK_PASSED, "(8 bytes)");
    cf_verify_result_free(r);
    unload(&e);

    /* A masked chip id (the VLEK report's is all zero) never matches. */
    load(MILAN_VLEK, &e);
    r = run(ok, &e, NULL, T_VALID);
    T_FAILED_ONLY(r, BIT(CF_CHECK_CHIP_ALLOWLIST));
    T_CHECK(r, CF_CHECK_CHIP_ALLOWLIST, CF_CHECK_FAILED, "chip_id is masked (all zero)");
    cf_verify_result_free(r);
    unload(&e);

    /* No list: skipped. */
    {
        cf_manifest *none = make_manifest(&(mopts){0});
        load(MILAN_V2, &e);
        r = run(none, &e, NULL, T_VALID);
        T_CHECK(r, CF_CHECK_CHIP_ALLOWLIST, CF_CHECK_SKIPPED, "no chip-ID allow-list");
        cf_verify_result_free(r);
        unload(&e);
        cf_manifest_free(none);
    }
    cf_manifest_free(ok);
    cf_manifest_free(other);
}

static void test_tampered_vceks(void)
{
    static const char *const files[] = {"sev-snp/negative/tampered-vcek-legacy.der",
                                        "sev-snp/negative/tampered-vcek-octetstring.der"};
    cf_manifest *m = make_manifest(&(mopts){0});

    for (size_t i = 0; i < CF_ARRAY_LEN(files); i++) {
        evidence e = {0};
        cf_verify_result *r;
        load(MILAN_SKEW, &e);
        load_cert(files[i], &e);
        r = run(m, &e, NULL, T_VALID);
        T_ASSERT(!r->verified);
        /* The altered hwID breaks the ASK's signature over the VCEK... */
        T_CHECK(r, CF_CHECK_CHAIN, CF_CHECK_FAILED, "VCEK does not chain to amd:milan");
        /* ...and no longer names the report's chip. */
        T_CHECK(r, CF_CHECK_CHIP_ID, CF_CHECK_FAILED,
                "VCEK hwID does not match the report's CHIP_ID");
        T_STREQ(r->checks[CF_CHECK_CHIP_ID].actual,
                "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
                "202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f");
        T_STREQ(r->facts.root, "");
        cf_verify_result_free(r);
        unload(&e);
    }
    cf_manifest_free(m);
}

static void test_wrong_cert(void)
{
    cf_manifest *m = make_manifest(&(mopts){.vmpls = "[0,1]"});
    evidence e = {0};
    cf_verify_result *r;

    /* Another chip's genuine VCEK. */
    load(MILAN_V2, &e);
    load_cert("sev-snp/reports/milan-v3.vcek.der", &e);
    r = run(m, &e, NULL, T_VALID);
    T_FAILED_ONLY(r, BIT(CF_CHECK_SIGNATURE) | BIT(CF_CHECK_TCB_MATCH) | BIT(CF_CHECK_CHIP_ID));
    T_CHECK(r, CF_CHECK_SIGNATURE, CF_CHECK_FAILED,
            "report signature does not verify with the VCEK key");
    T_CHECK(r, CF_CHECK_TCB_MATCH, CF_CHECK_FAILED,
            "certificate snp SPL 24 differs from reported_tcb snp 8");
    T_CHECK(r, CF_CHECK_CHAIN, CF_CHECK_PASSED, NULL);
    cf_verify_result_free(r);
    unload(&e);

    /* A Genoa report with a Milan VCEK: the product check names both. */
    load(GENOA, &e);
    load_cert("sev-snp/reports/milan-v3.vcek.der", &e);
    r = run(m, &e, NULL, T_VALID);
    T_ASSERT(!r->verified);
    T_CHECK(r, CF_CHECK_PRODUCT, CF_CHECK_FAILED,
            "report CPUID says Genoa but the certificate is for Milan");
    T_CHECK(r, CF_CHECK_SIGNATURE, CF_CHECK_FAILED, NULL);
    cf_verify_result_free(r);
    unload(&e);

    /* A VLEK-signed report with a VCEK (same product and TCB): the key kinds differ. */
    load(MILAN_VLEK, &e);
    load_cert("sev-snp/reports/milan-v3.vcek.der", &e);
    r = run(m, &e, NULL, T_VALID);
    T_ASSERT(!r->verified);
    T_CHECK(r, CF_CHECK_LEAF_KEY, CF_CHECK_FAILED,
            "report says it was signed by the VLEK but the certificate is a VCEK");
    T_CHECK(r, CF_CHECK_SIGNATURE, CF_CHECK_FAILED, NULL);
    cf_verify_result_free(r);
    unload(&e);
    cf_manifest_free(m);
}

static void test_signing_keys_and_roots(void)
{
    cf_manifest *vcek_only =
        make_manifest(&(mopts){.vmpls = "[0,1]", .signing_keys = "[\"vcek\"]"});
    cf_manifest *genoa_only = make_manifest(&(mopts){.roots = "[\"amd:genoa\"]"});
    evidence e = {0};
    cf_verify_result *r;

    load(MILAN_VLEK, &e);
    r = run(vcek_only, &e, NULL, T_VALID);
    T_FAILED_ONLY(r, BIT(CF_CHECK_LEAF_KEY));
    T_CHECK(r, CF_CHECK_LEAF_KEY, CF_CHECK_FAILED,
            "VLEK-signed reports are not allowed by this manifest (signing_keys)");
    cf_verify_result_free(r);
    unload(&e);

    load(MILAN_V2, &e);
    r = run(genoa_only, &e, NULL, T_VALID);
    T_FAILED_ONLY(r, BIT(CF_CHECK_CHAIN));
    T_CHECK(r, CF_CHECK_CHAIN, CF_CHECK_FAILED,
            "the manifest pins no root for Milan VCEK certificates");
    cf_verify_result_free(r);
    unload(&e);
    cf_manifest_free(vcek_only);
    cf_manifest_free(genoa_only);
}

static void test_guest_svn_policy_host_data(void)
{
    cf_manifest *svn5 = make_manifest(&(mopts){.set_min_guest_svn = true, .min_guest_svn = 5});
    cf_manifest *svn4 = make_manifest(&(mopts){.set_min_guest_svn = true, .min_guest_svn = 4});
    cf_manifest *pol = make_manifest(
        &(mopts){.guest_policy = "{\"require\":[\"single_socket\"],\"forbid\":[\"smt\"]}"});
    cf_manifest *pol_ok = make_manifest(
        &(mopts){.guest_policy = "{\"require\":[\"smt\"],\"forbid\":[\"migrate_ma\"]}"});
    cf_manifest *hd0 = make_manifest(
        &(mopts){.host_data = "0000000000000000000000000000000000000000000000000000000000000000"});
    cf_manifest *hd1 = make_manifest(
        &(mopts){.host_data = "1100000000000000000000000000000000000000000000000000000000000000"});
    evidence e = {0};
    cf_verify_result *r;

    load(MILAN_SKEW, &e); /* guest_svn 4, policy 0x3001f */
    r = run(svn5, &e, NULL, T_VALID);
    T_FAILED_ONLY(r, BIT(CF_CHECK_GUEST_SVN));
    T_CHECK(r, CF_CHECK_GUEST_SVN, CF_CHECK_FAILED, "guest_svn 4 below minimum 5");
    cf_verify_result_free(r);
    r = run(svn4, &e, NULL, T_VALID);
    T_FAILED_ONLY(r, 0);
    T_CHECK(r, CF_CHECK_GUEST_SVN, CF_CHECK_PASSED, NULL);
    cf_verify_result_free(r);
    r = run(pol, &e, NULL, T_VALID);
    T_FAILED_ONLY(r, BIT(CF_CHECK_GUEST_POLICY));
    T_STREQ(r->checks[CF_CHECK_GUEST_POLICY].message,
            "policy bit smt is set but forbidden; policy bit single_socket is required but clear");
    T_STREQ(r->checks[CF_CHECK_GUEST_POLICY].actual, "policy 0x3001f");
    cf_verify_result_free(r);
    r = run(pol_ok, &e, NULL, T_VALID);
    T_FAILED_ONLY(r, 0);
    T_CHECK(r, CF_CHECK_GUEST_POLICY, CF_CHECK_PASSED, NULL);
    cf_verify_result_free(r);
    r = run(hd0, &e, NULL, T_VALID);
    T_FAILED_ONLY(r, 0);
    T_CHECK(r, CF_CHECK_HOST_DATA, CF_CHECK_PASSED,
            "host_data matches deployment 'milan-v2-tcbskew'");
    cf_verify_result_free(r);
    r = run(hd1, &e, NULL, T_VALID);
    T_FAILED_ONLY(r, BIT(CF_CHECK_HOST_DATA));
    T_CHECK(r, CF_CHECK_HOST_DATA, CF_CHECK_FAILED,
            "host_data does not match deployment 'milan-v2-tcbskew'");
    cf_verify_result_free(r);
    r = run(svn5, &e, NULL, T_VALID);
    T_CHECK(r, CF_CHECK_HOST_DATA, CF_CHECK_SKIPPED, "does not pin host_data");
    T_CHECK(r, CF_CHECK_GUEST_POLICY, CF_CHECK_SKIPPED, NULL);
    cf_verify_result_free(r);
    unload(&e);
    cf_manifest_free(svn5);
    cf_manifest_free(svn4);
    cf_manifest_free(pol);
    cf_manifest_free(pol_ok);
    cf_manifest_free(hd0);
    cf_manifest_free(hd1);
}

static void test_binding_mismatch_real(void)
{
    cf_manifest *m = make_manifest(&(mopts){0});
    evidence e = {0};
    cf_verify_result *r = NULL;
    cf_verify_input in;
    uint8_t key[32] = {1}, nonce[32] = {2};

    load(MILAN_V2, &e);
    memset(&in, 0, sizeof(in));
    in.report = e.report;
    in.report_len = e.report_len;
    in.cert = e.cert;
    in.cert_len = e.cert_len;
    in.at = T_VALID;
    in.tee_public_key = key;
    in.tee_public_key_len = sizeof(key);
    in.nonce = nonce;
    T_OK(cf_verify_evidence(m, &in, &r));
    T_FAILED_ONLY(r, BIT(CF_CHECK_BINDING) | BIT(CF_CHECK_FRESHNESS));
    T_CHECK(r, CF_CHECK_BINDING, CF_CHECK_FAILED, "report_data does not bind key and nonce");
    T_STREQ(r->checks[CF_CHECK_BINDING].actual, r->facts.report_data);
    T_EQ(strlen(r->checks[CF_CHECK_BINDING].expected), 128);
    T_CHECK(r, CF_CHECK_FRESHNESS, CF_CHECK_FAILED,
            "the verifier's nonce is not bound in report_data");
    cf_verify_result_free(r);

    /* Caller errors are not results. */
    r = NULL;
    in.nonce = NULL;
    T_ERR(cf_verify_evidence(m, &in, &r), CF_E_INVAL);
    T_ASSERT(r == NULL);
    in.nonce = nonce;
    in.tee_public_key_len = 0;
    T_ERR(cf_verify_evidence(m, &in, &r), CF_E_INVAL);
    in.tee_public_key_len = 32;
    in.at = 0;
    T_ERR(cf_verify_evidence(m, &in, &r), CF_E_INVAL);
    in.at = T_VALID;
    in.platform = "tdx";
    T_ERR(cf_verify_evidence(m, &in, &r), CF_E_UNSUPPORTED);
    T_ASSERT(r == NULL);
    unload(&e);
    cf_manifest_free(m);
}

static void test_time_validity(void)
{
    cf_manifest *m = make_manifest(&(mopts){.vmpls = "[0,1]"});
    evidence e = {0};
    cf_verify_result *r;

    /* The VLEK expired on 2025-12-10. */
    load(MILAN_VLEK, &e);
    r = run(m, &e, NULL, T_2026);
    T_ASSERT(!r->verified);
    T_CHECK(r, CF_CHECK_FRESHNESS, CF_CHECK_FAILED,
            "verification time 2026-11-18T11:06:40Z is after the certificate's notAfter "
            "2025-12-10T22:14:21Z");
    T_CHECK(r, CF_CHECK_CHAIN, CF_CHECK_FAILED, "VLEK does not chain to amd:milan");
    T_FAILED_ONLY(r, BIT(CF_CHECK_CHAIN) | BIT(CF_CHECK_FRESHNESS));
    cf_verify_result_free(r);
    unload(&e);

    /* The Turin VCEK was issued in July 2025. */
    load(TURIN, &e);
    r = run(m, &e, NULL, T_2025_JAN);
    T_CHECK(r, CF_CHECK_FRESHNESS, CF_CHECK_FAILED,
            "verification time 2025-01-01T00:00:00Z is before the certificate's notBefore "
            "2025-07-17T17:04:46Z");
    T_FAILED_ONLY(r, BIT(CF_CHECK_CHAIN) | BIT(CF_CHECK_FRESHNESS));
    cf_verify_result_free(r);
    r = run(m, &e, NULL, T_VALID);
    T_CHECK(r, CF_CHECK_FRESHNESS, CF_CHECK_PASSED,
            "certificate valid at 2025-09-01T00:00:00Z; no nonce given, so the report's age is "
            "unknown");
    cf_verify_result_free(r);
    unload(&e);
    cf_manifest_free(m);
}

static void test_malformed_evidence(void)
{
    cf_manifest *m = make_manifest(&(mopts){0});
    evidence e = {0};
    cf_verify_result *r;
    uint8_t junk[100];
    size_t len;

    load(MILAN_V2, &e);
    /* A certificate that does not parse: the report checks still run. */
    memset(junk, 0x30, sizeof(junk));
    free(e.cert);
    e.cert = malloc(sizeof(junk));
    memcpy(e.cert, junk, sizeof(junk));
    e.cert_len = sizeof(junk);
    r = run(m, &e, NULL, T_VALID);
    T_ASSERT(!r->verified);
    T_CHECK(r, CF_CHECK_PARSE, CF_CHECK_FAILED, "certificate: invalid DER certificate");
    T_CHECK(r, CF_CHECK_PRODUCT, CF_CHECK_FAILED, "cannot determine the product");
    T_CHECK(r, CF_CHECK_SIGNATURE, CF_CHECK_SKIPPED, "no usable certificate");
    T_CHECK(r, CF_CHECK_CHAIN, CF_CHECK_SKIPPED, NULL);
    T_CHECK(r, CF_CHECK_MEASUREMENT, CF_CHECK_PASSED, NULL);
    T_CHECK(r, CF_CHECK_DEBUG, CF_CHECK_PASSED, NULL);
    T_CHECK(r, CF_CHECK_VMPL, CF_CHECK_PASSED, NULL);
    cf_verify_result_free(r);

    /* DER with a trailing byte. */
    load_cert("sev-snp/reports/milan-v2.vcek.der", &e);
    e.cert = realloc(e.cert, e.cert_len + 1);
    e.cert[e.cert_len++] = 0;
    r = run(m, &e, NULL, T_VALID);
    T_CHECK(r, CF_CHECK_PARSE, CF_CHECK_FAILED, "certificate: 1 bytes after the DER certificate");
    cf_verify_result_free(r);

    /* The same certificate as PEM verifies. */
    {
        X509 *x;
        const unsigned char *p;
        BIO *bio = BIO_new(BIO_s_mem());
        char *pem;
        long n;
        load_cert("sev-snp/reports/milan-v2.vcek.der", &e);
        p = e.cert;
        x = d2i_X509(NULL, &p, (long)e.cert_len);
        T_ASSERT(x != NULL && PEM_write_bio_X509(bio, x) == 1);
        n = BIO_get_mem_data(bio, &pem);
        free(e.cert);
        e.cert = malloc((size_t)n);
        memcpy(e.cert, pem, (size_t)n);
        e.cert_len = (size_t)n;
        X509_free(x);
        BIO_free(bio);
        r = run(m, &e, NULL, T_VALID);
        T_FAILED_ONLY(r, 0);
        cf_verify_result_free(r);
        /* PEM followed by junk is rejected. */
        e.cert = realloc(e.cert, e.cert_len + 4);
        memcpy(e.cert + e.cert_len, "junk", 4);
        e.cert_len += 4;
        r = run(m, &e, NULL, T_VALID);
        T_CHECK(r, CF_CHECK_PARSE, CF_CHECK_FAILED, "certificate: data after the PEM certificate");
        cf_verify_result_free(r);
    }

    /* A truncated report: the certificate checks still run. */
    load_cert("sev-snp/reports/milan-v2.vcek.der", &e);
    len = e.report_len;
    e.report_len = 1000;
    r = run(m, &e, NULL, T_VALID);
    T_ASSERT(!r->verified);
    T_CHECK(r, CF_CHECK_PARSE, CF_CHECK_FAILED, "report: ");
    T_CHECK(r, CF_CHECK_PRODUCT, CF_CHECK_PASSED, "Milan");
    T_CHECK(r, CF_CHECK_LEAF_KEY, CF_CHECK_PASSED, NULL);
    T_CHECK(r, CF_CHECK_CHAIN, CF_CHECK_PASSED, NULL);
    T_CHECK(r, CF_CHECK_SIGNATURE, CF_CHECK_SKIPPED, NULL);
    T_CHECK(r, CF_CHECK_MEASUREMENT, CF_CHECK_SKIPPED, NULL);
    e.report_len = len;
    cf_verify_result_free(r);

    /* A flipped bit in the signed area: only the signature check can tell. */
    e.report[0x90] ^= 1;
    r = run(m, &e, "milan-v2", T_VALID);
    T_ASSERT(!r->verified);
    T_CHECK(r, CF_CHECK_SIGNATURE, CF_CHECK_FAILED, "report signature does not verify");
    T_CHECK(r, CF_CHECK_MEASUREMENT, CF_CHECK_FAILED,
            "measurement not allowed for deployment 'milan-v2'");
    cf_verify_result_free(r);
    unload(&e);
    cf_manifest_free(m);
}

static void test_output(void)
{
    cf_manifest *m = make_manifest(
        &(mopts){.min_milan = "{\"bootloader\":2,\"tee\":0,\"snp\":14,\"microcode\":68}"});
    evidence e = {0};
    cf_verify_result *r;
    json_t *j, *checks, *c;
    cf_buf b;
    const char *text;

    load(MILAN_V2, &e);
    r = run(m, &e, NULL, T_VALID);
    j = cf_verify_result_to_json(r);
    T_ASSERT(j != NULL);
    T_ASSERT(json_is_false(json_object_get(j, "verified")));
    T_STREQ(json_string_value(json_object_get(j, "status")), "failed");
    T_STREQ(json_string_value(json_object_get(j, "manifest_hash")), cf_manifest_hash_str(m));
    T_STREQ(json_string_value(json_object_get(j, "verification_time")), "2025-09-01T00:00:00Z");
    T_STREQ(json_string_value(json_object_get(j, "deployment")), "milan-v2");
    checks = json_object_get(j, "checks");
    T_EQ(json_array_size(checks), CF_CHECK__COUNT);
    c = json_array_get(checks, CF_CHECK_MIN_TCB);
    T_STREQ(json_string_value(json_object_get(c, "name")), "min_tcb");
    T_STREQ(json_string_value(json_object_get(c, "status")), "failed");
    T_STREQ(json_string_value(json_object_get(c, "message")), "snp TCB 8 below minimum 14");
    T_STREQ(json_string_value(json_object_get(c, "actual")),
            "bootloader=3 tee=0 snp=8 microcode=115");
    c = json_array_get(checks, CF_CHECK_BINDING);
    T_STREQ(json_string_value(json_object_get(c, "status")), "skipped");
    T_ASSERT(json_object_get(c, "expected") == NULL);
    c = json_object_get(j, "facts");
    T_STREQ(json_string_value(json_object_get(c, "measurement")), MILAN_V2->measurement);
    T_STREQ(json_string_value(json_object_get(c, "product")), "Milan");
    T_STREQ(json_string_value(json_object_get(c, "signing_key")), "vcek");
    T_STREQ(json_string_value(json_object_get(c, "root")), "amd:milan");
    T_ASSERT(json_is_false(json_object_get(c, "debug")));
    T_EQ(json_integer_value(json_object_get(json_object_get(c, "reported_tcb"), "snp")), 8);
    T_EQ(json_integer_value(json_object_get(c, "report_version")), 2);
    json_decref(j);

    cf_buf_init(&b, 1 << 16);
    T_OK(cf_verify_result_to_text(r, &b));
    T_OK(cf_buf_nul_terminate(&b));
    text = (const char *)b.data;
    T_ASSERT(strncmp(text, "NOT verified: 1 of 19 checks failed", 35) == 0);
    T_ASSERT(strstr(text,
                    "\xe2\x9c\x97 min_tcb: snp TCB 8 below minimum 14 (expected >= bootloader=2 "
                    "tee=0 snp=14 "
                    "microcode=68, actual bootloader=3 tee=0 snp=8 microcode=115)\n") != NULL);
    T_ASSERT(strstr(text, "\xe2\x9c\x93 debug: debugging is disabled (policy DEBUG clear)\n") !=
             NULL);
    T_ASSERT(strstr(text, "- binding: no TEE public key and nonce given (skipped)\n") != NULL);
    cf_buf_free(&b);
    T_ASSERT(cf_verify_result_find(r, "min_tcb") == cf_verify_result_check(r, CF_CHECK_MIN_TCB));
    T_ASSERT(cf_verify_result_find(r, "nope") == NULL);
    T_ASSERT(cf_verify_result_check(r, CF_CHECK__COUNT) == NULL);
    T_STREQ(cf_check_name(CF_CHECK_CHIP_ALLOWLIST), "chip_allowlist");
    cf_verify_result_free(r);
    unload(&e);
    cf_manifest_free(m);
}

/* ---- test-local simulated AMD chain ----
 * Same structure as AMD's (VCEK spec): RSA ARK/ASK with RSASSA-PSS SHA-384
 * salt 48, a P-384 VCEK with the 1.3.6.1.4.1.3704.1.* extensions. RSA-2048
 * keeps the test fast (the chain verifier accepts >= 2048 bits). */

typedef struct {
    EVP_PKEY *ark_key, *ask_key, *vcek_key;
    X509 *ark, *ask, *vcek;
    char *chain_pem; /* ASK then ARK */
    uint8_t chip_id[64];
} sim_chain;

static EVP_PKEY *gen_rsa(void) { return EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048); }

static int pss_sign(X509 *x, X509_CRL *crl, EVP_PKEY *key)
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    int ok = md != NULL && EVP_DigestSignInit(md, &pctx, EVP_sha384(), NULL, key) == 1 &&
             EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) == 1 &&
             EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, 48) == 1 &&
             EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, EVP_sha384()) == 1 &&
             (x != NULL ? X509_sign_ctx(x, md) > 0 : X509_CRL_sign_ctx(crl, md) > 0);
    EVP_MD_CTX_free(md);
    return ok ? 0 : -1;
}

static void add_raw_ext(X509 *x, const char *oid, const uint8_t *der, size_t n)
{
    ASN1_OBJECT *o = OBJ_txt2obj(oid, 1);
    ASN1_OCTET_STRING *s = ASN1_OCTET_STRING_new();
    X509_EXTENSION *e;

    if (o == NULL || s == NULL || ASN1_OCTET_STRING_set(s, der, (int)n) != 1)
        abort();
    e = X509_EXTENSION_create_by_OBJ(NULL, o, 0, s);
    if (e == NULL || X509_add_ext(x, e, -1) != 1)
        abort();
    X509_EXTENSION_free(e);
    ASN1_OCTET_STRING_free(s);
    ASN1_OBJECT_free(o);
}

static void add_int_ext(X509 *x, const char *oid, unsigned v)
{
    uint8_t der[4] = {0x02, 0x01, (uint8_t)v, 0};
    if (v >= 0x80) {
        der[1] = 2;
        der[2] = 0;
        der[3] = (uint8_t)v;
    }
    add_raw_ext(x, oid, der, v >= 0x80 ? 4 : 3);
}

static X509 *make_cert(const char *cn, EVP_PKEY *pub, X509 *issuer, EVP_PKEY *issuer_key,
                       long serial, bool ca)
{
    X509 *x = X509_new();
    X509_NAME *name = X509_NAME_new();
    X509V3_CTX v3;
    X509_EXTENSION *bc;

    if (x == NULL || name == NULL)
        abort();
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), serial);
    X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, (const unsigned char *)"Coffer test", -1,
                               -1, 0);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
    X509_set_subject_name(x, name);
    X509_set_issuer_name(x, issuer != NULL ? X509_get_subject_name(issuer) : name);
    X509_NAME_free(name);
    /* 2025-01-01 .. 2035-01-01 */
    ASN1_TIME_set(X509_getm_notBefore(x), (time_t)1735689600);
    ASN1_TIME_set(X509_getm_notAfter(x), (time_t)2051222400);
    X509_set_pubkey(x, pub);
    if (ca) {
        X509V3_set_ctx(&v3, issuer != NULL ? issuer : x, x, NULL, NULL, 0);
        bc = X509V3_EXT_conf_nid(NULL, &v3, NID_basic_constraints, "critical,CA:TRUE");
        if (bc == NULL || X509_add_ext(x, bc, -1) != 1)
            abort();
        X509_EXTENSION_free(bc);
    }
    (void)issuer_key;
    return x;
}

static const cf_snp_tcb sim_tcb = {.bootloader = 4, .tee = 0, .snp = 22, .microcode = 213};

static void sim_new(sim_chain *s, const char *prefix)
{
    char cn[64];
    BIO *bio = BIO_new(BIO_s_mem());
    char *p;
    long n;
    static const uint8_t product[] = {0x16, 0x08, 'M', 'i', 'l', 'a', 'n', '-', 'B', '0'};

    memset(s, 0, sizeof(*s));
    for (int i = 0; i < 64; i++)
        s->chip_id[i] = (uint8_t)(0xa0 + i);
    s->ark_key = gen_rsa();
    s->ask_key = gen_rsa();
    s->vcek_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
    if (s->ark_key == NULL || s->ask_key == NULL || s->vcek_key == NULL || bio == NULL)
        abort();
    (void)snprintf(cn, sizeof(cn), "%s ARK", prefix);
    s->ark = make_cert(cn, s->ark_key, NULL, s->ark_key, 1, true);
    if (pss_sign(s->ark, NULL, s->ark_key) != 0)
        abort();
    (void)snprintf(cn, sizeof(cn), "%s ASK", prefix);
    s->ask = make_cert(cn, s->ask_key, s->ark, s->ark_key, 2, true);
    if (pss_sign(s->ask, NULL, s->ark_key) != 0)
        abort();
    (void)snprintf(cn, sizeof(cn), "%s VCEK", prefix);
    s->vcek = make_cert(cn, s->vcek_key, s->ask, s->ask_key, 3, false);
    /* AMD extensions, encoded as AMD's KDS encodes them (VCEK spec table). */
    add_int_ext(s->vcek, "1.3.6.1.4.1.3704.1.1", 0);
    add_raw_ext(s->vcek, "1.3.6.1.4.1.3704.1.2", product, sizeof(product));
    add_int_ext(s->vcek, "1.3.6.1.4.1.3704.1.3.1", sim_tcb.bootloader);
    add_int_ext(s->vcek, "1.3.6.1.4.1.3704.1.3.2", sim_tcb.tee);
    add_int_ext(s->vcek, "1.3.6.1.4.1.3704.1.3.3", sim_tcb.snp);
    add_int_ext(s->vcek, "1.3.6.1.4.1.3704.1.3.4", 0);
    add_int_ext(s->vcek, "1.3.6.1.4.1.3704.1.3.5", 0);
    add_int_ext(s->vcek, "1.3.6.1.4.1.3704.1.3.6", 0);
    add_int_ext(s->vcek, "1.3.6.1.4.1.3704.1.3.7", 0);
    add_int_ext(s->vcek, "1.3.6.1.4.1.3704.1.3.8", sim_tcb.microcode);
    add_raw_ext(s->vcek, "1.3.6.1.4.1.3704.1.4", s->chip_id, 64);
    if (pss_sign(s->vcek, NULL, s->ask_key) != 0)
        abort();
    if (PEM_write_bio_X509(bio, s->ask) != 1 || PEM_write_bio_X509(bio, s->ark) != 1)
        abort();
    n = BIO_get_mem_data(bio, &p);
    s->chain_pem = strndup(p, (size_t)n);
    BIO_free(bio);
}

static void sim_free(sim_chain *s)
{
    EVP_PKEY_free(s->ark_key);
    EVP_PKEY_free(s->ask_key);
    EVP_PKEY_free(s->vcek_key);
    X509_free(s->ark);
    X509_free(s->ask);
    X509_free(s->vcek);
    free(s->chain_pem);
}

#define SIM_MEASUREMENT                                                                            \
    "51515151515151515151515151515151515151515151515151515151515151515151515151515151515151515151" \
    "51"                                                                                           \
    "51"

/* A v3 Milan report signed by the simulated VCEK, report_data = binding(key, nonce). */
static void sim_report(const sim_chain *s, const uint8_t key[32], const uint8_t nonce[32],
                       evidence *e)
{
    cf_snp_report r;
    int len;
    unsigned char *der = NULL;

    memset(&r, 0, sizeof(r));
    r.version = 3;
    r.policy = 0x30000; /* SMT allowed, reserved bit 17 set; no DEBUG */
    r.vmpl = 0;
    r.signature_algo = CF_SNP_SIG_ALGO_ECDSA_P384_SHA384;
    r.current_tcb_raw = r.reported_tcb_raw = r.committed_tcb_raw = r.launch_tcb_raw =
        cf_snp_tcb_encode(&sim_tcb, CF_SNP_PRODUCT_MILAN);
    r.cpuid_fam_id = 0x19;
    r.cpuid_mod_id = 0x01;
    r.cpuid_step = 0x01;
    memcpy(r.chip_id, s->chip_id, 64);
    if (cf_hex_decode(SIM_MEASUREMENT, r.measurement, 48) != 0 ||
        cf_binding_compute(key, 32, nonce, r.report_data) != 0)
        abort();
    e->report = malloc(CF_SNP_REPORT_LEN);
    e->report_len = CF_SNP_REPORT_LEN;
    if (e->report == NULL || cf_snp_report_encode(&r, e->report) != 0 ||
        cf_snp_report_sign(e->report, s->vcek_key) != 0)
        abort();
    len = i2d_X509(s->vcek, &der);
    if (len <= 0)
        abort();
    e->cert = malloc((size_t)len);
    memcpy(e->cert, der, (size_t)len);
    e->cert_len = (size_t)len;
    OPENSSL_free(der);
}

static cf_manifest *sim_manifest(const sim_chain *trusted, bool flag_simulated)
{
    json_t *extra = json_array();
    mopts o = {0};

    if (trusted != NULL) {
        json_t *root = json_pack("{s:s,s:s,s:s}", "name", "coffer-simulated", "product", "milan",
                                 "chain", trusted->chain_pem);
        if (flag_simulated)
            json_object_set_new(root, "simulated", json_true());
        json_array_append_new(extra, root);
    }
    o.extra_roots = extra;
    o.extra_deployment =
        "{\"name\":\"sim\",\"tenant\":\"t-sim\",\"jobs\":[\"echo\"],\"developer_key\":\"" DEV_KEY
        "\",\"platforms\":{\"sev-snp\":{\"measurements\":[\"" SIM_MEASUREMENT "\"]}}}";
    return make_manifest(&o);
}

static cf_verify_result *run_bound(const cf_manifest *m, const evidence *e, const uint8_t key[32],
                                   const uint8_t nonce[32], STACK_OF(X509_CRL) * crls)
{
    cf_verify_input in;
    cf_verify_result *r = NULL;

    memset(&in, 0, sizeof(in));
    in.report = e->report;
    in.report_len = e->report_len;
    in.cert = e->cert;
    in.cert_len = e->cert_len;
    in.deployment = "sim";
    in.at = T_VALID;
    in.tee_public_key = key;
    in.tee_public_key_len = 32;
    in.nonce = nonce;
    in.crls = crls;
    if (cf_verify_evidence(m, &in, &r) != 0)
        abort();
    return r;
}

static X509_CRL *make_crl(const sim_chain *s, long revoked_serial)
{
    X509_CRL *crl = X509_CRL_new();
    ASN1_TIME *t = ASN1_TIME_new();

    if (crl == NULL || t == NULL)
        abort();
    X509_CRL_set_version(crl, 1);
    X509_CRL_set_issuer_name(crl, X509_get_subject_name(s->ark));
    ASN1_TIME_set(t, (time_t)1750000000);
    X509_CRL_set1_lastUpdate(crl, t);
    ASN1_TIME_set(t, (time_t)2051222400);
    X509_CRL_set1_nextUpdate(crl, t);
    if (revoked_serial > 0) {
        X509_REVOKED *rev = X509_REVOKED_new();
        ASN1_INTEGER *sn = ASN1_INTEGER_new();
        ASN1_INTEGER_set(sn, revoked_serial);
        X509_REVOKED_set_serialNumber(rev, sn);
        ASN1_TIME_set(t, (time_t)1750000000);
        X509_REVOKED_set_revocationDate(rev, t);
        X509_CRL_add0_revoked(crl, rev);
        ASN1_INTEGER_free(sn);
    }
    ASN1_TIME_free(t);
    X509_CRL_sort(crl);
    if (pss_sign(NULL, crl, s->ark_key) != 0)
        abort();
    return crl;
}

static void test_simulated_root(void)
{
    sim_chain sim, other;
    evidence e = {0};
    uint8_t key[32], nonce[32], wrong_nonce[32];
    cf_manifest *prod, *dev, *dev_flagged, *dev_other;
    cf_verify_result *r;

    for (int i = 0; i < 32; i++) {
        key[i] = (uint8_t)(7 * i);
        nonce[i] = (uint8_t)(200 - i);
        wrong_nonce[i] = (uint8_t)(201 - i);
    }
    sim_new(&sim, "Coffer Simulated");
    sim_new(&other, "Coffer Simulated");
    sim_report(&sim, key, nonce, &e);
    prod = sim_manifest(NULL, false);
    dev = sim_manifest(&sim, false);
    dev_flagged = sim_manifest(&sim, true);
    dev_other = sim_manifest(&other, false);

    /* Production manifest: the simulated root is not trusted, and the message says so. */
    r = run_bound(prod, &e, key, nonce, NULL);
    T_FAILED_ONLY(r, BIT(CF_CHECK_CHAIN));
    T_CHECK(r, CF_CHECK_CHAIN, CF_CHECK_FAILED,
            "report signed by the simulated root, which this manifest does not trust");
    T_STREQ(r->checks[CF_CHECK_CHAIN].actual, "issuer CN=Coffer Simulated ASK");
    T_CHECK(r, CF_CHECK_BINDING, CF_CHECK_PASSED,
            "report_data binds the TEE public key and the nonce");
    T_CHECK(r, CF_CHECK_SIGNATURE, CF_CHECK_PASSED, NULL);
    cf_verify_result_free(r);

    /* Development manifest pinning it (simulated detected from the ARK's CN). */
    T_ASSERT(cf_manifest_snp_policy(dev)->roots[0].simulated);
    r = run_bound(dev, &e, key, nonce, NULL);
    T_FAILED_ONLY(r, 0);
    T_CHECK(r, CF_CHECK_CHAIN, CF_CHECK_PASSED, "chains to manifest root 'coffer-simulated'");
    T_CHECK(r, CF_CHECK_CHAIN, CF_CHECK_PASSED, "SIMULATED");
    T_ASSERT(r->facts.simulated);
    T_STREQ(r->facts.root, "coffer-simulated");
    T_CHECK(
        r, CF_CHECK_FRESHNESS, CF_CHECK_PASSED,
        "certificate valid at 2025-09-01T00:00:00Z; the verifier's nonce is bound in report_data");
    T_CHECK(r, CF_CHECK_CHIP_ID, CF_CHECK_PASSED, "(64 bytes)");
    T_STREQ(r->deployment, "sim");
    cf_verify_result_free(r);
    r = run_bound(dev_flagged, &e, key, nonce, NULL);
    T_FAILED_ONLY(r, 0);
    T_ASSERT(r->facts.simulated);
    cf_verify_result_free(r);

    /* Binding: another nonce or another key fails binding and freshness. */
    r = run_bound(dev, &e, key, wrong_nonce, NULL);
    T_FAILED_ONLY(r, BIT(CF_CHECK_BINDING) | BIT(CF_CHECK_FRESHNESS));
    T_CHECK(r, CF_CHECK_BINDING, CF_CHECK_FAILED, "report_data does not bind key and nonce");
    T_CHECK(r, CF_CHECK_FRESHNESS, CF_CHECK_FAILED, "(the report may be a replay)");
    cf_verify_result_free(r);
    key[0] ^= 1;
    r = run_bound(dev, &e, key, nonce, NULL);
    T_FAILED_ONLY(r, BIT(CF_CHECK_BINDING) | BIT(CF_CHECK_FRESHNESS));
    key[0] ^= 1;
    cf_verify_result_free(r);

    /* A different simulated installation's root. */
    r = run_bound(dev_other, &e, key, nonce, NULL);
    T_FAILED_ONLY(r, BIT(CF_CHECK_CHAIN));
    T_CHECK(r, CF_CHECK_CHAIN, CF_CHECK_FAILED,
            "report signed by a simulated root that is not the one this manifest trusts "
            "('coffer-simulated')");
    cf_verify_result_free(r);

    /* Revocation: an ARK-issued CRL that revokes the ASK (serial 2), then one that does not. */
    {
        STACK_OF(X509_CRL) *crls = sk_X509_CRL_new_null();
        X509_CRL *revoking = make_crl(&sim, 2), *clean = make_crl(&sim, 99);
        sk_X509_CRL_push(crls, revoking);
        r = run_bound(dev, &e, key, nonce, crls);
        T_FAILED_ONLY(r, BIT(CF_CHECK_REVOCATION));
        T_CHECK(r, CF_CHECK_REVOCATION, CF_CHECK_FAILED, "certificate revoked");
        T_CHECK(r, CF_CHECK_CHAIN, CF_CHECK_PASSED, NULL);
        cf_verify_result_free(r);
        (void)sk_X509_CRL_pop(crls);
        sk_X509_CRL_push(crls, clean);
        r = run_bound(dev, &e, key, nonce, crls);
        T_FAILED_ONLY(r, 0);
        T_CHECK(r, CF_CHECK_REVOCATION, CF_CHECK_PASSED, "no certificate of the chain is revoked");
        cf_verify_result_free(r);
        /* A CRL from another issuer cannot vouch for this chain: fail closed. */
        {
            X509_CRL *foreign = make_crl(&other, 99);
            (void)sk_X509_CRL_pop(crls);
            sk_X509_CRL_push(crls, foreign);
            r = run_bound(dev, &e, key, nonce, crls);
            T_FAILED_ONLY(r, BIT(CF_CHECK_REVOCATION));
            T_CHECK(r, CF_CHECK_REVOCATION, CF_CHECK_FAILED, "revocation could not be checked");
            cf_verify_result_free(r);
            X509_CRL_free(foreign);
        }
        sk_X509_CRL_free(crls);
        X509_CRL_free(revoking);
        X509_CRL_free(clean);
    }

    /* The verifier object is reusable: the chain cache serves repeated checks. */
    {
        cf_verifier *v = NULL;
        cf_verify_input in;
        memset(&in, 0, sizeof(in));
        in.report = e.report;
        in.report_len = e.report_len;
        in.cert = e.cert;
        in.cert_len = e.cert_len;
        in.at = T_VALID;
        T_OK(cf_verifier_new(dev, &v));
        for (int i = 0; i < 3; i++) {
            T_OK(cf_verifier_verify(v, &in, &r));
            T_FAILED_ONLY(r, 0);
            cf_verify_result_free(r);
        }
        cf_verifier_free(v);
    }

    unload(&e);
    cf_manifest_free(prod);
    cf_manifest_free(dev);
    cf_manifest_free(dev_flagged);
    cf_manifest_free(dev_other);
    sim_free(&sim);
    sim_free(&other);
}

int main(void)
{
    T_RUN(test_binding);
    T_RUN(test_all_real_reports_verify);
    T_RUN(test_tcbskew_uses_reported_tcb);
    T_RUN(test_debug);
    T_RUN(test_measurement_and_deployment);
    T_RUN(test_min_tcb);
    T_RUN(test_vmpl);
    T_RUN(test_chip_allowlist);
    T_RUN(test_tampered_vceks);
    T_RUN(test_wrong_cert);
    T_RUN(test_signing_keys_and_roots);
    T_RUN(test_guest_svn_policy_host_data);
    T_RUN(test_binding_mismatch_real);
    T_RUN(test_time_validity);
    T_RUN(test_malformed_evidence);
    T_RUN(test_output);
    T_RUN(test_simulated_root);
    return t_done();
}
