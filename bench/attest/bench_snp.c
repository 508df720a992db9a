/*
 * Full SEV-SNP report verification per second, next to the raw OpenSSL
 * operation it rests on (one EVP ECDSA P-384 / SHA-384 verify over the 672
 * signed bytes), measured in the same run on the same real Milan report.
 *
 * "Full" = from the bytes (report + VCEK DER): cf_snp_report_parse, the VCEK,
 * cf_snp_cert_parse_ext, TCB and chip-id comparison,
 * cf_snp_report_verify_signature and the VCEK -> ASK -> ARK chain check, either
 * uncached (d2i_X509 + cf_snp_chain_verify: X509_verify_cert with three RSA-PSS
 * 4096 verifies) or cached (cf_snp_chain_verify_der_cached: parsed VCEK and
 * chain result memoised per VCEK DER fingerprint, as for a verifier that
 * re-attests the same TEE). Target: cached >= 0.9 x raw.
 *
 * Figures run in alternating slices with their OpenSSL counterpart so that
 * load on a shared machine affects both alike; about 7 s in total.
 */
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "attest/snp.h"
#include "base/err.h"
#include "test.h"

#define SECONDS_CACHED 2.0   /* per side */
#define SECONDS_UNCACHED 1.5 /* per side */
#define SLICES 10
#define TARGET_RATIO 0.9
#define T_FIXED ((time_t)1756684800) /* 2025-09-01: inside the VCEK's validity */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what, int rc)
{
    fprintf(stderr, "bench_snp: %s failed (%s)\n", what, rc ? cf_err_detail(rc) : "");
    exit(1);
}

typedef int (*bench_op)(void *ctx);

static void measure_pair(bench_op a, void *ca, bench_op b, void *cb, double seconds, double *ret_a,
                         double *ret_b)
{
    double t[2] = {0, 0};
    long n[2] = {0, 0};

    for (int s = 0; s < SLICES; s++) {
        for (int side = 0; side < 2; side++) {
            bench_op op = side == 0 ? a : b;
            void *ctx = side == 0 ? ca : cb;
            double start = now_s(), el;
            do {
                int rc = op(ctx);
                if (rc != 0)
                    die("operation", rc);
                n[side]++;
                el = now_s() - start;
            } while (el < seconds / SLICES);
            t[side] += el;
        }
    }
    *ret_a = (double)n[0] / t[0];
    *ret_b = (double)n[1] / t[1];
}

struct ctx {
    uint8_t *report;
    unsigned char *vcek_der;
    size_t vcek_len;
    cf_snp_roots *roots;
    cf_snp_chain_cache *cache;
    /* raw OpenSSL side */
    EVP_PKEY *pub;
    unsigned char *sig_der;
    size_t sig_len;
};

/* The OpenSSL baseline: one ECDSA P-384/SHA-384 verify of the signed range. */
static int raw_op(void *p)
{
    struct ctx *c = p;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    int ok = md != NULL && EVP_DigestVerifyInit(md, NULL, EVP_sha384(), NULL, c->pub) == 1 &&
             EVP_DigestVerify(md, c->sig_der, c->sig_len, c->report, CF_SNP_SIGNED_LEN) == 1;
    EVP_MD_CTX_free(md);
    return ok ? 0 : CF_E_SIGNATURE;
}

/* Both paths start from the bytes a verifier receives: report + VCEK DER. The
 * cached path gets the parsed VCEK from the cache (keyed by the DER's SHA-384)
 * together with the chain result; the uncached one parses and checks all. */
static int full_verify(struct ctx *c, bool cached)
{
    X509 *vcek = NULL;
    cf_snp_report r;
    cf_snp_cert_ext e;
    cf_snp_tcb rep;
    uint8_t fpr[48];
    int rc;

    rc = cf_snp_report_parse(c->report, CF_SNP_REPORT_LEN, &r);
    if (rc != 0)
        return rc;
    if (cached) {
        rc = cf_snp_chain_verify_der_cached(
            c->cache, c->roots, c->vcek_der, c->vcek_len, cf_snp_report_product(&r),
            cf_snp_report_signing_key(&r) == CF_SNP_KEY_VLEK, T_FIXED, NULL, &vcek, fpr);
    } else {
        const unsigned char *p = c->vcek_der;
        vcek = d2i_X509(NULL, &p, (long)c->vcek_len);
        rc = vcek != NULL ? 0 : CF_E_PARSE;
    }
    if (rc == 0)
        rc = cf_snp_cert_parse_ext(vcek, &e);
    if (rc == 0) {
        cf_snp_tcb_decode(r.reported_tcb_raw, e.product, &rep);
        if (!cf_snp_tcb_eq(&rep, &e.tcb, e.product) || e.hwid_len == 0 ||
            memcmp(e.hwid, r.chip_id, e.hwid_len) != 0)
            rc = CF_E_VERIFY;
    }
    if (rc == 0)
        rc = cf_snp_report_verify_signature(c->report, vcek);
    if (rc == 0 && !cached)
        rc = cf_snp_chain_verify(c->roots, vcek, e.product, e.is_vlek, T_FIXED, NULL, fpr);
    X509_free(vcek);
    return rc;
}

static int cached_op(void *p) { return full_verify(p, true); }
static int uncached_op(void *p) { return full_verify(p, false); }

static unsigned char *sig_to_der(const uint8_t *report, size_t *ret_len)
{
    uint8_t be[2][72];
    ECDSA_SIG *sig = ECDSA_SIG_new();
    unsigned char *der = NULL;
    int n = 0;

    for (int k = 0; k < 2; k++)
        for (int i = 0; i < 72; i++)
            be[k][i] = report[0x2A0 + 72 * k + 71 - i];
    if (sig == NULL ||
        ECDSA_SIG_set0(sig, BN_bin2bn(be[0], 72, NULL), BN_bin2bn(be[1], 72, NULL)) != 1 ||
        (n = i2d_ECDSA_SIG(sig, &der)) <= 0)
        die("signature conversion", 0);
    ECDSA_SIG_free(sig);
    *ret_len = (size_t)n;
    return der;
}

int main(void)
{
    struct ctx c;
    size_t n;
    const unsigned char *p;
    X509 *vcek;
    double raw_a, cached, raw_b, uncached;
    uint64_t hits, misses;
    int rc;

    (void)t_cur_failed; /* test.h is included for t_testdata/t_read_file only */
    memset(&c, 0, sizeof(c));
    c.report = t_read_file(t_testdata("sev-snp/reports/milan-v3.report.bin"), &n);
    if (n != CF_SNP_REPORT_LEN)
        die("reading the report", 0);
    c.vcek_der = t_read_file(t_testdata("sev-snp/reports/milan-v3.vcek.der"), &c.vcek_len);
    if ((rc = cf_snp_roots_amd(&c.roots)) != 0 || (rc = cf_snp_chain_cache_new(0, &c.cache)) != 0)
        die("set-up", rc);
    p = c.vcek_der;
    vcek = d2i_X509(NULL, &p, (long)c.vcek_len);
    if (vcek == NULL)
        die("d2i_X509", 0);
    c.pub = X509_get_pubkey(vcek);
    X509_free(vcek);
    c.sig_der = sig_to_der(c.report, &c.sig_len);
    /* Sanity: every path accepts the real report before anything is timed. */
    if ((rc = raw_op(&c)) != 0 || (rc = uncached_op(&c)) != 0 || (rc = cached_op(&c)) != 0)
        die("sanity verification", rc);

    measure_pair(cached_op, &c, raw_op, &c, SECONDS_CACHED, &cached, &raw_a);
    measure_pair(uncached_op, &c, raw_op, &c, SECONDS_UNCACHED, &uncached, &raw_b);
    cf_snp_chain_cache_stats(c.cache, &hits, &misses);

    printf("SEV-SNP report verification (Milan v3 report + VCEK, parse + signature + chain)\n");
    printf("  %-44s %10.0f /s\n", "raw OpenSSL ECDSA P-384 verify (limit)", raw_a);
    printf("  %-44s %10.0f /s   ratio %.2f (target >= %.2f) %s\n", "full verify, chain cached",
           cached, cached / raw_a, TARGET_RATIO, cached / raw_a >= TARGET_RATIO ? "OK" : "BELOW");
    printf("  %-44s %10.0f /s\n", "raw OpenSSL ECDSA P-384 verify (limit)", raw_b);
    printf("  %-44s %10.0f /s   ratio %.2f\n", "full verify, chain uncached", uncached,
           uncached / raw_b);
    printf("  chain cache: %llu hits, %llu misses\n", (unsigned long long)hits,
           (unsigned long long)misses);

    EVP_PKEY_free(c.pub);
    OPENSSL_free(c.sig_der);
    cf_snp_chain_cache_free(c.cache);
    cf_snp_roots_free(c.roots);
    free(c.vcek_der);
    free(c.report);
    return 0;
}
