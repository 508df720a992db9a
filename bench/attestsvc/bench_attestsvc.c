/*
 * The attestation service's per-request work for POST /v1/attestation/evidence,
 * in process (no HTTP): parse the JSON body (base64url report + VCEK), run the
 * full verifier with the manifest (chain cache warm, as for a service that
 * re-attests the same TEEs), render the verifier JSON, and sign an EAR token
 * (ES256) — next to the two public-key operations it cannot avoid, measured in
 * the same run with OpenSSL directly: one ECDSA P-384/SHA-384 verify of the
 * report's 672 signed bytes and one ECDSA P-256/SHA-256 sign of a token-sized
 * message. Limit rate = 1 / (t_verify + t_sign).
 *
 * Evidence: the real Milan v3 report and VCEK of testdata (its report_data is
 * not bound to the request's nonce, so the binding check fails; the work is the
 * same). Slices alternate with the OpenSSL side; about 9 s in total. A second
 * row isolates the verifier (the attest module) against the report signature
 * check alone, to show where the time goes.
 */
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "attest/manifest.h"
#include "attest/snp.h"
#include "attest/verify.h"
#include "attestsvc/ear.h"
#include "attestsvc/wire.h"
#include "base/buf.h"
#include "base/err.h"
#include "base/json.h"
#include "base/parse.h"
#include "crypto/keys.h"
#include "test.h"

#define SECONDS 3.0 /* per side */
#define SLICES 10
#define T_FIXED ((time_t)1756684800) /* 2025-09-01: inside the VCEK's validity */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what, int rc)
{
    fprintf(stderr, "bench_attestsvc: %s failed (%s)\n", what, rc ? cf_err_detail(rc) : "");
    exit(1);
}

typedef int (*bench_op)(void *ctx);

static void measure_pair(bench_op a, void *ca, bench_op b, void *cb, double seconds, double *ret_a, double *ret_b)
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
    char *body;
    cf_manifest *m;
    cf_verifier *v;
    cf_key *sk;
    char kid[CF_KEY_THUMBPRINT_LEN + 1];
    /* raw OpenSSL side */
    uint8_t *report;
    EVP_PKEY *vcek_pub, *p256;
    unsigned char *sig_der;
    size_t sig_len;
    uint8_t token_msg[700];
    cf_verify_input vin;
    uint8_t nonce[32], tee_key[32];
};

/* One POST /v1/attestation/evidence, without the HTTP layer. */
static int service_op(void *p)
{
    struct ctx *c = p;
    cf_attest_evidence_request *r = calloc(1, sizeof(*r));
    cf_verify_result *res = NULL;
    cf_verify_input in;
    cf_ear_input ei;
    json_t *rj = NULL;
    char *text = NULL, *tok = NULL;
    int rc;

    if (r == NULL)
        return CF_E_NOMEM;
    rc = cf_attest_evidence_request_parse(c->body, strlen(c->body), r);
    if (rc == 0) {
        memset(&in, 0, sizeof(in));
        in.report = r->evidence.report;
        in.report_len = r->evidence.report_len;
        in.cert = r->evidence.cert;
        in.cert_len = r->evidence.cert_len;
        in.deployment = r->deployment;
        in.tee_public_key = r->public_key;
        in.tee_public_key_len = r->public_key_len;
        in.nonce = r->nonce;
        in.at = T_FIXED;
        rc = cf_verifier_verify(c->v, &in, &res);
    }
    if (rc == 0) {
        rj = cf_verify_result_to_json(res);
        text = rj ? cf_json_dump(rj) : NULL;
        rc = text ? 0 : CF_E_NOMEM;
    }
    if (rc == 0) {
        memset(&ei, 0, sizeof(ei));
        ei.result = res;
        ei.deployment = r->deployment;
        ei.tee_public_key = r->public_key;
        ei.tee_public_key_len = r->public_key_len;
        ei.nonce = r->nonce;
        ei.iat = T_FIXED;
        ei.ttl = 120;
        rc = cf_ear_sign(c->sk, c->kid, &ei, &tok);
    }
    free(tok);
    free(text);
    json_decref(rj);
    cf_verify_result_free(res);
    free(r);
    return rc;
}

/* The verifier alone on the decoded request, and its floor (the report signature). */
static int verify_op(void *p)
{
    struct ctx *c = p;
    cf_verify_result *res = NULL;
    int rc = cf_verifier_verify(c->v, &c->vin, &res);

    cf_verify_result_free(res);
    return rc;
}

static int raw_verify_op(void *p)
{
    struct ctx *c = p;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    int ok = md != NULL && EVP_DigestVerifyInit(md, NULL, EVP_sha384(), NULL, c->vcek_pub) == 1 &&
             EVP_DigestVerify(md, c->sig_der, c->sig_len, c->report, CF_SNP_SIGNED_LEN) == 1;
    EVP_MD_CTX_free(md);
    return ok ? 0 : CF_E_CRYPTO;
}

/* The floor: the report signature check and the token signature. */
static int raw_op(void *p)
{
    struct ctx *c = p;
    EVP_MD_CTX *md = EVP_MD_CTX_new(), *ms = EVP_MD_CTX_new();
    unsigned char sig[80];
    size_t sl = sizeof(sig);
    int ok = md != NULL && ms != NULL && EVP_DigestVerifyInit(md, NULL, EVP_sha384(), NULL, c->vcek_pub) == 1 &&
             EVP_DigestVerify(md, c->sig_der, c->sig_len, c->report, CF_SNP_SIGNED_LEN) == 1 &&
             EVP_DigestSignInit(ms, NULL, EVP_sha256(), NULL, c->p256) == 1 &&
             EVP_DigestSign(ms, sig, &sl, c->token_msg, sizeof(c->token_msg)) == 1;
    EVP_MD_CTX_free(md);
    EVP_MD_CTX_free(ms);
    return ok ? 0 : CF_E_CRYPTO;
}

static unsigned char *sig_to_der(const uint8_t *report, size_t *ret_len)
{
    uint8_t be[2][72];
    ECDSA_SIG *sig = ECDSA_SIG_new();
    unsigned char *der = NULL;
    int n = 0;

    /* AMD SEV-SNP ABI: r and s are 72-byte little-endian fields at 0x2A0 and 0x2E8. */
    for (int k = 0; k < 2; k++)
        for (int i = 0; i < 72; i++)
            be[k][i] = report[0x2A0 + 72 * k + 71 - i];
    if (sig == NULL || ECDSA_SIG_set0(sig, BN_bin2bn(be[0], 72, NULL), BN_bin2bn(be[1], 72, NULL)) != 1 ||
        (n = i2d_ECDSA_SIG(sig, &der)) <= 0)
        die("signature conversion", 0);
    ECDSA_SIG_free(sig);
    *ret_len = (size_t)n;
    return der;
}

int main(void)
{
    struct ctx c;
    size_t rn = 0, vn = 0;
    uint8_t *vcek;
    const unsigned char *p;
    X509 *x;
    cf_snp_report rep;
    char meas[97], mtext[2048], *rb64, *cb64;
    uint8_t key[32];
    cf_buf body;
    double svc, raw, ver, rawv;
    int rc;

    (void)t_cur_failed; /* test.h for t_testdata / t_read_file only */
    memset(&c, 0, sizeof(c));
    c.report = t_read_file(t_testdata("sev-snp/reports/milan-v3.report.bin"), &rn);
    vcek = t_read_file(t_testdata("sev-snp/reports/milan-v3.vcek.der"), &vn);
    if (rn != CF_SNP_REPORT_LEN || cf_snp_report_parse(c.report, rn, &rep) != 0)
        die("reading the report", 0);
    cf_hex_encode(rep.measurement, 48, meas);
    snprintf(mtext, sizeof(mtext),
             "{\"version\":1,\"platforms\":{\"sev-snp\":{\"roots\":[\"amd:milan\"],\"min_tcb\":{\"milan\":"
             "{\"bootloader\":0,\"tee\":0,\"snp\":0,\"microcode\":0}}}},\"deployments\":[{\"name\":\"demo\","
             "\"tenant\":\"t1\",\"jobs\":[\"echo\"],\"developer_key\":\"F4L2-KeulD8PjwNzy78QLHGrVxORTCycQOMoWyensAk\","
             "\"platforms\":{\"sev-snp\":{\"measurements\":[\"%s\"]}}}]}",
             meas);
    if ((rc = cf_manifest_parse(mtext, strlen(mtext), &c.m)) != 0 || (rc = cf_verifier_new(c.m, &c.v)) != 0)
        die("manifest", rc);
    if ((rc = cf_key_generate(CF_KEY_P256, &c.sk)) != 0 || (rc = cf_key_thumbprint(c.sk, c.kid)) != 0)
        die("signing key", rc);
    memset(key, 9, sizeof(key));
    rb64 = cf_b64url_encode_alloc(c.report, rn);
    cb64 = cf_b64url_encode_alloc(vcek, vn);
    cf_buf_init(&body, 64 * 1024);
    if (rb64 == NULL || cb64 == NULL ||
        cf_buf_printf(&body,
                      "{\"evidence\":{\"platform\":\"sev-snp\",\"report\":\"%s\",\"cert\":\"%s\"},\"deployment\":"
                      "\"demo\",\"nonce\":\"0101010101010101010101010101010101010101010101010101010101010101\","
                      "\"public_key\":\"CQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQk\"}",
                      rb64, cb64) != 0 ||
        cf_buf_nul_terminate(&body) != 0)
        die("request body", 0);
    c.body = (char *)body.data;
    p = vcek;
    x = d2i_X509(NULL, &p, (long)vn);
    if (x == NULL)
        die("d2i_X509", 0);
    c.vcek_pub = X509_get_pubkey(x);
    X509_free(x);
    c.sig_der = sig_to_der(c.report, &c.sig_len);
    c.p256 = cf_key_evp(c.sk);
    memset(c.token_msg, 'e', sizeof(c.token_msg));
    memset(c.nonce, 1, sizeof(c.nonce));
    memset(c.tee_key, 9, sizeof(c.tee_key));
    c.vin.report = c.report;
    c.vin.report_len = rn;
    c.vin.cert = vcek;
    c.vin.cert_len = vn;
    c.vin.deployment = "demo";
    c.vin.tee_public_key = c.tee_key;
    c.vin.tee_public_key_len = sizeof(c.tee_key);
    c.vin.nonce = c.nonce;
    c.vin.at = T_FIXED;
    /* Sanity, and a warm chain cache. */
    if ((rc = service_op(&c)) != 0 || (rc = raw_op(&c)) != 0)
        die("sanity", rc);

    measure_pair(service_op, &c, raw_op, &c, SECONDS, &svc, &raw);
    measure_pair(verify_op, &c, raw_verify_op, &c, SECONDS / 2, &ver, &rawv);
    printf("Attestation service: POST /v1/attestation/evidence work per request (no HTTP)\n");
    printf("  %-58s %8.0f /s\n", "OpenSSL P-384 verify + P-256 sign (limit)", raw);
    printf("  %-58s %8.0f /s   ratio %.2f\n", "parse + verify (chain cached) + result JSON + EAR sign", svc,
           svc / raw);
    printf("  %-58s %8.0f /s\n", "OpenSSL P-384 verify (limit)", rawv);
    printf("  %-58s %8.0f /s   ratio %.2f\n", "of which: cf_verifier_verify alone (chain cached)", ver, ver / rawv);

    EVP_PKEY_free(c.vcek_pub);
    OPENSSL_free(c.sig_der);
    cf_key_free(c.sk);
    cf_verifier_free(c.v);
    cf_manifest_free(c.m);
    cf_buf_free(&body);
    free(rb64);
    free(cb64);
    free(vcek);
    free(c.report);
    return 0;
}
