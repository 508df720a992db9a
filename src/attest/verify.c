/*
 * Evidence verifier: SEV-SNP report + VCEK/VLEK certificate against a manifest.
 *
 * Report fields: AMD SEV-SNP Firmware ABI Specification, "ATTESTATION_REPORT
 * Structure" (via attest/snp.h); certificate extensions and chain: AMD
 * "Versioned Chip Endorsement Key (VCEK) Certificate and KDS Interface
 * Specification". Policy: docs/MANIFEST.md. Each check writes its own entry and
 * never stops the others (DESIGN.md §3: a failure must say exactly what is wrong,
 * and one result should say everything that is).
 */
#include "attest/verify.h"

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attest/binding.h"
#include "base/err.h"
#include "base/parse.h"

#define TCB_TEXT_LEN 80
#define TIME_TEXT_LEN 32
#define ROOT_LABEL_LEN (CF_NAME_MAX_LEN + 1)

static const char *const check_names[CF_CHECK__COUNT] = {
    [CF_CHECK_PARSE] = "parse",
    [CF_CHECK_PRODUCT] = "product",
    [CF_CHECK_SIGNATURE] = "signature",
    [CF_CHECK_CHAIN] = "chain",
    [CF_CHECK_LEAF_KEY] = "leaf_key",
    [CF_CHECK_TCB_MATCH] = "tcb_match",
    [CF_CHECK_CHIP_ID] = "chip_id",
    [CF_CHECK_MIN_TCB] = "min_tcb",
    [CF_CHECK_GUEST_SVN] = "guest_svn",
    [CF_CHECK_DEBUG] = "debug",
    [CF_CHECK_GUEST_POLICY] = "guest_policy",
    [CF_CHECK_VMPL] = "vmpl",
    [CF_CHECK_MEASUREMENT] = "measurement",
    [CF_CHECK_DEPLOYMENT] = "deployment",
    [CF_CHECK_HOST_DATA] = "host_data",
    [CF_CHECK_CHIP_ALLOWLIST] = "chip_allowlist",
    [CF_CHECK_BINDING] = "binding",
    [CF_CHECK_FRESHNESS] = "freshness",
    [CF_CHECK_REVOCATION] = "revocation",
};

const char *cf_check_name(cf_check_id id)
{
    if ((unsigned)id >= CF_CHECK__COUNT)
        return "unknown";
    return check_names[id];
}

const char *cf_check_status_name(cf_check_status s)
{
    switch (s) {
    case CF_CHECK_PASSED: return "passed";
    case CF_CHECK_FAILED: return "failed";
    case CF_CHECK_SKIPPED: return "skipped";
    }
    return "unknown";
}

/* ---- verifier (pinned roots prepared once) ---- */

struct cf_verifier {
    const cf_manifest *m;
    const cf_manifest_snp *snp;
    cf_snp_roots *amd;     /* built-in AMD chains; NULL if none pinned */
    cf_snp_roots **custom; /* one set per inline root (parallel to snp->roots) */
    cf_snp_chain_cache *cache;
};

void cf_verifier_free(cf_verifier *v)
{
    if (v == NULL)
        return;
    cf_snp_roots_free(v->amd);
    if (v->custom != NULL)
        for (size_t i = 0; i < v->snp->n_roots; i++)
            cf_snp_roots_free(v->custom[i]);
    free(v->custom);
    cf_snp_chain_cache_free(v->cache);
    free(v);
}

int cf_verifier_new(const cf_manifest *m, cf_verifier **ret)
{
    cf_verifier *v = NULL;
    bool any_amd = false;
    int rc = 0;

    CF_ENSURE(m != NULL && ret != NULL, CF_E_INVAL);
    if (cf_manifest_snp_policy(m) == NULL)
        return cf_err_set(CF_E_UNSUPPORTED, "the manifest has no sev-snp policy");
    v = calloc(1, sizeof(*v));
    CF_ENSURE(v != NULL, CF_E_NOMEM);
    v->m = m;
    v->snp = cf_manifest_snp_policy(m);
    for (unsigned p = 0; p < CF_SNP_PRODUCT_COUNT; p++)
        any_amd = any_amd || v->snp->amd[p];
    if (any_amd)
        CF_GUARD_OUT(cf_snp_roots_amd(&v->amd));
    if (v->snp->n_roots > 0) {
        v->custom = calloc(v->snp->n_roots, sizeof(*v->custom));
        CF_ENSURE_OUT(v->custom != NULL, CF_E_NOMEM);
    }
    /* One set per inline root: two roots may serve the same product and kind
     * (e.g. a rotated simulated root), and a set holds one chain per slot. */
    for (size_t i = 0; i < v->snp->n_roots; i++) {
        const cf_manifest_snp_root *r = &v->snp->roots[i];
        CF_GUARD_OUT(cf_snp_roots_new(&v->custom[i]));
        rc =
            cf_snp_roots_add_pem(v->custom[i], r->product, r->vlek, r->chain_pem, r->chain_pem_len);
        if (rc < 0) {
            char detail[256];
            (void)snprintf(detail, sizeof(detail), "%s", cf_err_detail(rc));
            rc = cf_err_set(rc == CF_E_NOMEM ? rc : CF_E_CONFIG, "manifest root '%s': %s", r->name,
                            detail);
            goto out;
        }
    }
    CF_GUARD_OUT(cf_snp_chain_cache_new(0, &v->cache));
    *ret = v;
    v = NULL;
out:
    cf_verifier_free(v);
    return rc;
}

/* ---- per-verification state ---- */

typedef struct {
    const cf_verifier *v;
    const cf_manifest_snp *pol;
    const cf_verify_input *in;
    cf_verify_result *r;
    bool report_ok;
    cf_snp_report rep;
    X509 *cert;
    bool ext_ok;
    cf_snp_cert_ext ext;
    cf_snp_product product; /* decided by check_product; UNKNOWN if undecidable */
    bool chain_ok;
    const cf_snp_roots *chain_roots;   /* the set the chain verified against */
    const cf_manifest_deployment *dep; /* resolved deployment */
    bool binding_given, binding_ok;
} vctx;

/* Diagnostic text: truncation is acceptable (the values are bounded and the
 * buffers sized for them), so plain vsnprintf. */
static void vtext(char *dst, size_t n, const char *fmt, va_list ap) CF_PRINTF(3, 0);
static void vtext(char *dst, size_t n, const char *fmt, va_list ap)
{
    (void)vsnprintf(dst, n, fmt, ap);
}

static void set(cf_check *c, cf_check_status st, const char *fmt, ...) CF_PRINTF(3, 4);
static void set(cf_check *c, cf_check_status st, const char *fmt, ...)
{
    va_list ap;

    c->status = st;
    va_start(ap, fmt);
    vtext(c->message, sizeof(c->message), fmt, ap);
    va_end(ap);
}

static void expected(cf_check *c, const char *fmt, ...) CF_PRINTF(2, 3);
static void expected(cf_check *c, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vtext(c->expected, sizeof(c->expected), fmt, ap);
    va_end(ap);
}

static void actual(cf_check *c, const char *fmt, ...) CF_PRINTF(2, 3);
static void actual(cf_check *c, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vtext(c->actual, sizeof(c->actual), fmt, ap);
    va_end(ap);
}

/* Appends "; "-separated clauses to a check's message (for checks that can
 * find several problems at once, e.g. two TCB components below minimum). */
static void append(char *dst, size_t n, const char *fmt, ...) CF_PRINTF(3, 4);
static void append(char *dst, size_t n, const char *fmt, ...)
{
    size_t len = strlen(dst);
    va_list ap;

    if (len + 3 >= n)
        return;
    if (len > 0) {
        memcpy(dst + len, "; ", 3);
        len += 2;
    }
    va_start(ap, fmt);
    vtext(dst + len, n - len, fmt, ap);
    va_end(ap);
}

static cf_check *chk(vctx *x, cf_check_id id) { return &x->r->checks[id]; }

static void hex(const uint8_t *p, size_t n, char *out) { cf_hex_encode(p, n, out); }

static bool all_zero(const uint8_t *p, size_t n)
{
    uint8_t acc = 0;
    for (size_t i = 0; i < n; i++)
        acc |= p[i];
    return acc == 0;
}

static const char *kind_name(bool vlek) { return vlek ? "VLEK" : "VCEK"; }

/* TCB as "bootloader=3 tee=0 snp=8 microcode=115" (Turin: fmc first, as in its
 * TCB_VERSION layout). */
static void tcb_text(const cf_snp_tcb *t, cf_snp_product p, char out[TCB_TEXT_LEN])
{
    if (p == CF_SNP_PRODUCT_TURIN)
        (void)snprintf(out, TCB_TEXT_LEN, "fmc=%u bootloader=%u tee=%u snp=%u microcode=%u", t->fmc,
                       t->bootloader, t->tee, t->snp, t->microcode);
    else
        (void)snprintf(out, TCB_TEXT_LEN, "bootloader=%u tee=%u snp=%u microcode=%u", t->bootloader,
                       t->tee, t->snp, t->microcode);
}

static void time_text(time_t t, char out[TIME_TEXT_LEN])
{
    struct tm tm;

    if (gmtime_r(&t, &tm) == NULL || strftime(out, TIME_TEXT_LEN, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        (void)snprintf(out, TIME_TEXT_LEN, "@%lld", (long long)t);
}

static void asn1_time_text(const ASN1_TIME *t, char out[TIME_TEXT_LEN])
{
    struct tm tm;

    if (t == NULL || ASN1_TIME_to_tm(t, &tm) != 1 ||
        strftime(out, TIME_TEXT_LEN, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        (void)snprintf(out, TIME_TEXT_LEN, "(invalid time)");
}

/* Leaf issuer CN (the ASK/ASVK's name): used to name an untrusted simulated
 * chain, never to trust anything. */
static void issuer_cn(X509 *c, char *out, size_t n)
{
    out[0] = '\0';
    if (X509_NAME_get_text_by_NID(X509_get_issuer_name(c), NID_commonName, out, (int)n) < 0)
        out[0] = '\0';
}

static bool issuer_is_simulated(X509 *c)
{
    char cn[128];

    issuer_cn(c, cn, sizeof(cn));
    return strncmp(cn, CF_SIMULATED_CN_PREFIX, strlen(CF_SIMULATED_CN_PREFIX)) == 0;
}

/* ---- parse ---- */

static bool only_space(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != ' ' && p[i] != '\t' && p[i] != '\r' && p[i] != '\n')
            return false;
    return true;
}

/* One certificate, DER or PEM, with nothing after it. */
static int parse_cert(const uint8_t *d, size_t n, X509 **ret)
{
    static const char begin[] = "-----BEGIN CERTIFICATE-----";
    X509 *c = NULL;
    size_t lead = 0;
    int rc = 0;

    if (n == 0)
        return cf_err_set(CF_E_PARSE, "no certificate given");
    if (n > CF_CERT_MAX_BYTES)
        return cf_err_set(CF_E_TOO_LARGE, "certificate of %zu bytes exceeds the limit of %u", n,
                          (unsigned)CF_CERT_MAX_BYTES);
    while (lead < n && only_space(d + lead, 1))
        lead++;
    if (n - lead >= sizeof(begin) - 1 && memcmp(d + lead, begin, sizeof(begin) - 1) == 0) {
        BIO *bio = BIO_new_mem_buf(d, (int)n);
        uint8_t rest[64];
        int got;
        CF_ENSURE(bio != NULL, CF_E_NOMEM);
        c = PEM_read_bio_X509(bio, NULL, NULL, NULL);
        while (c != NULL && (got = BIO_read(bio, rest, sizeof(rest))) > 0) {
            if (!only_space(rest, (size_t)got)) {
                X509_free(c);
                c = NULL;
                BIO_free(bio);
                ERR_clear_error();
                return cf_err_set(CF_E_TRAILING, "data after the PEM certificate");
            }
        }
        BIO_free(bio);
        if (c == NULL)
            rc = cf_err_set(CF_E_PARSE, "invalid PEM certificate");
    } else {
        const unsigned char *p = d;
        c = d2i_X509(NULL, &p, (long)n);
        if (c == NULL)
            rc = cf_err_set(CF_E_PARSE, "invalid DER certificate");
        else if ((size_t)(p - d) != n)
            rc = cf_err_set(CF_E_TRAILING, "%zu bytes after the DER certificate",
                            n - (size_t)(p - d));
    }
    ERR_clear_error();
    if (rc < 0) {
        X509_free(c);
        return rc;
    }
    *ret = c;
    return 0;
}

static void fill_report_facts(vctx *x)
{
    cf_verify_facts *f = &x->r->facts;
    const cf_snp_report *rep = &x->rep;

    f->report_parsed = true;
    f->report_version = rep->version;
    f->signing_key = cf_snp_report_signing_key(rep);
    f->debug = (rep->policy & CF_SNP_POLICY_DEBUG) != 0;
    f->vmpl = rep->vmpl;
    f->guest_svn = rep->guest_svn;
    f->policy = rep->policy;
    hex(rep->measurement, sizeof(rep->measurement), f->measurement);
    hex(rep->host_data, sizeof(rep->host_data), f->host_data);
    hex(rep->report_data, sizeof(rep->report_data), f->report_data);
    hex(rep->chip_id, sizeof(rep->chip_id), f->chip_id);
    hex(rep->report_id, sizeof(rep->report_id), f->report_id);
}

static void check_parse(vctx *x)
{
    cf_check *c = chk(x, CF_CHECK_PARSE);
    char report_err[160] = "", cert_err[160] = "";
    int rc;

    rc = cf_snp_report_parse(x->in->report, x->in->report_len, &x->rep);
    if (rc == 0) {
        x->report_ok = true;
        fill_report_facts(x);
    } else {
        (void)snprintf(report_err, sizeof(report_err), "%s", cf_err_detail(rc));
    }
    rc = parse_cert(x->in->cert, x->in->cert_len, &x->cert);
    if (rc == 0) {
        rc = cf_snp_cert_parse_ext(x->cert, &x->ext);
        if (rc == 0)
            x->ext_ok = true;
        else
            (void)snprintf(cert_err, sizeof(cert_err), "AMD extensions: %s", cf_err_detail(rc));
    } else {
        (void)snprintf(cert_err, sizeof(cert_err), "%s", cf_err_detail(rc));
    }
    if (x->ext_ok) {
        x->r->facts.cert_parsed = true;
        x->r->facts.cert_is_vlek = x->ext.is_vlek;
        x->r->facts.has_cert_tcb = true;
        x->r->facts.cert_tcb = x->ext.tcb;
        (void)snprintf(x->r->facts.cert_product_name, sizeof(x->r->facts.cert_product_name), "%s",
                       x->ext.product_name);
    }
    expected(c, "%u-byte report and a VCEK/VLEK certificate", (unsigned)CF_SNP_REPORT_LEN);
    actual(c, "%zu-byte report, %zu-byte certificate", x->in->report_len, x->in->cert_len);
    if (x->report_ok && x->ext_ok) {
        set(c, CF_CHECK_PASSED, "report version %u and %s certificate (%s) parsed", x->rep.version,
            kind_name(x->ext.is_vlek), x->ext.product_name);
        return;
    }
    c->status = CF_CHECK_FAILED;
    c->message[0] = '\0';
    if (!x->report_ok)
        append(c->message, sizeof(c->message), "report: %s", report_err);
    if (!x->ext_ok)
        append(c->message, sizeof(c->message), "certificate: %s", cert_err);
}

/* ---- product ---- */

static void check_product(vctx *x)
{
    cf_check *c = chk(x, CF_CHECK_PRODUCT);
    cf_snp_product from_report =
        x->report_ok ? cf_snp_report_product(&x->rep) : CF_SNP_PRODUCT_UNKNOWN;
    cf_snp_product from_cert = x->ext_ok ? x->ext.product : CF_SNP_PRODUCT_UNKNOWN;

    x->product = from_cert != CF_SNP_PRODUCT_UNKNOWN ? from_cert : from_report;
    expected(c, "%s", x->ext_ok ? x->ext.product_name : "");
    if (x->report_ok && x->rep.version >= 3)
        actual(c, "CPUID family %02xh model %02xh (%s)", x->rep.cpuid_fam_id, x->rep.cpuid_mod_id,
               cf_snp_product_name(from_report));
    if (x->ext_ok && from_cert == CF_SNP_PRODUCT_UNKNOWN) {
        x->product = CF_SNP_PRODUCT_UNKNOWN;
        set(c, CF_CHECK_FAILED, "certificate productName '%s' is not a known product",
            x->ext.product_name);
    } else if (from_report != CF_SNP_PRODUCT_UNKNOWN && from_cert != CF_SNP_PRODUCT_UNKNOWN &&
               from_report != from_cert) {
        /* The report's CPUID (v3+, signed) and the certificate must describe one part. */
        x->product = CF_SNP_PRODUCT_UNKNOWN;
        set(c, CF_CHECK_FAILED, "report CPUID says %s but the certificate is for %s",
            cf_snp_product_name(from_report), cf_snp_product_name(from_cert));
    } else if (x->product == CF_SNP_PRODUCT_UNKNOWN) {
        set(c, x->report_ok || x->ext_ok ? CF_CHECK_FAILED : CF_CHECK_SKIPPED,
            "cannot determine the product (no usable certificate, and the report has no "
            "known CPUID)");
    } else {
        set(c, CF_CHECK_PASSED, "%s%s", cf_snp_product_name(x->product),
            from_report == CF_SNP_PRODUCT_UNKNOWN
                ? " (from the certificate; the report names no CPUID)"
                : "");
    }
    x->r->facts.product = x->product;
    if (x->report_ok) {
        /* Decode TCBs with the decided layout; v2 reports without a product use
         * the Milan/Genoa layout, which every pre-Turin part shares. */
        cf_snp_tcb_decode(x->rep.reported_tcb_raw, x->product, &x->r->facts.reported_tcb);
        cf_snp_tcb_decode(x->rep.current_tcb_raw, x->product, &x->r->facts.current_tcb);
        cf_snp_tcb_decode(x->rep.committed_tcb_raw, x->product, &x->r->facts.committed_tcb);
        cf_snp_tcb_decode(x->rep.launch_tcb_raw, x->product, &x->r->facts.launch_tcb);
    }
}

/* ---- signature ---- */

static void check_signature(vctx *x)
{
    cf_check *c = chk(x, CF_CHECK_SIGNATURE);
    int rc;

    if (x->in->report_len != CF_SNP_REPORT_LEN || x->cert == NULL) {
        set(c, CF_CHECK_SKIPPED, "not evaluated: %s",
            x->cert == NULL ? "no usable certificate" : "the report has the wrong size");
        return;
    }
    expected(c, "ECDSA P-384/SHA-384 signature over bytes 0x000-0x29F");
    rc = cf_snp_report_verify_signature(x->in->report, x->cert);
    if (rc == 0) {
        set(c, CF_CHECK_PASSED, "report signature verifies with the %s key",
            x->ext_ok ? kind_name(x->ext.is_vlek) : "certificate's");
        actual(c, "valid");
    } else {
        set(c, CF_CHECK_FAILED, "report signature does not verify with the %s key: %s",
            x->ext_ok ? kind_name(x->ext.is_vlek) : "certificate's", cf_err_detail(rc));
        actual(c, "invalid");
    }
}

/* ---- chain ---- */

static void check_chain(vctx *x)
{
    cf_check *c = chk(x, CF_CHECK_CHAIN);
    const cf_manifest_snp *pol = x->pol;
    char candidates[CF_CHECK_VALUE_LEN] = "", cn[128], last_err[200] = "";
    const char *sim_root = NULL;
    bool vlek, any = false;
    uint8_t fpr[48] = {0};
    int rc;

    if (!x->ext_ok || x->product == CF_SNP_PRODUCT_UNKNOWN) {
        set(c, CF_CHECK_SKIPPED, "not evaluated: %s",
            !x->ext_ok ? "no usable certificate" : "unknown product");
        return;
    }
    vlek = x->ext.is_vlek;
    issuer_cn(x->cert, cn, sizeof(cn));
    actual(c, "issuer CN=%s", cn);

    if (pol->amd[x->product]) {
        any = true;
        (void)snprintf(candidates, sizeof(candidates), "amd:%s",
                       cf_manifest_product_name(x->product));
        rc = cf_snp_chain_verify_cached(x->v->cache, x->v->amd, x->cert, x->product, vlek,
                                        x->in->at, NULL, fpr);
        if (rc == 0) {
            x->chain_ok = true;
            x->chain_roots = x->v->amd;
            (void)snprintf(x->r->facts.root, sizeof(x->r->facts.root), "amd:%s",
                           cf_manifest_product_name(x->product));
        } else {
            (void)snprintf(last_err, sizeof(last_err), "%s", cf_err_detail(rc));
        }
    }
    for (size_t i = 0; i < pol->n_roots && !x->chain_ok; i++) {
        const cf_manifest_snp_root *root = &pol->roots[i];
        if (root->product != x->product || root->vlek != vlek)
            continue;
        any = true;
        if (root->simulated)
            sim_root = root->name;
        append(candidates, sizeof(candidates), "%s", root->name);
        rc = cf_snp_chain_verify_cached(x->v->cache, x->v->custom[i], x->cert, x->product, vlek,
                                        x->in->at, NULL, fpr);
        if (rc == 0) {
            x->chain_ok = true;
            x->chain_roots = x->v->custom[i];
            x->r->facts.simulated = root->simulated;
            (void)snprintf(x->r->facts.root, sizeof(x->r->facts.root), "%s", root->name);
        } else {
            (void)snprintf(last_err, sizeof(last_err), "%s", cf_err_detail(rc));
        }
    }
    expected(c, "a root pinned for %s %s: %s", cf_snp_product_name(x->product), kind_name(vlek),
             any ? candidates : "(none)");
    if (x->chain_ok) {
        hex(fpr, sizeof(fpr), x->r->facts.ark_fingerprint);
        if (x->r->facts.simulated)
            set(c, CF_CHECK_PASSED,
                "%s chains to manifest root '%s' — the SIMULATED secure processor, not AMD "
                "hardware",
                kind_name(vlek), x->r->facts.root);
        else if (strncmp(x->r->facts.root, "amd:", 4) == 0)
            set(c, CF_CHECK_PASSED, "%s chains to the built-in AMD %s root (%s)", kind_name(vlek),
                cf_snp_product_name(x->product), x->r->facts.root);
        else
            set(c, CF_CHECK_PASSED, "%s chains to manifest root '%s'", kind_name(vlek),
                x->r->facts.root);
        return;
    }
    /* Name the simulated root plainly: "chain does not verify" would hide that
     * the evidence comes from a simulator (docs/MANIFEST.md "The simulated root"). */
    if (issuer_is_simulated(x->cert)) {
        if (sim_root != NULL)
            set(c, CF_CHECK_FAILED,
                "report signed by a simulated root that is not the one this manifest trusts "
                "('%s'): %s",
                sim_root, last_err);
        else
            set(c, CF_CHECK_FAILED,
                "report signed by the simulated root, which this manifest does not trust");
    } else if (!any) {
        set(c, CF_CHECK_FAILED, "the manifest pins no root for %s %s certificates",
            cf_snp_product_name(x->product), kind_name(vlek));
    } else {
        set(c, CF_CHECK_FAILED, "%s does not chain to %s: %s", kind_name(vlek), candidates,
            last_err);
    }
}

/* ---- leaf key ---- */

static void check_leaf_key(vctx *x)
{
    cf_check *c = chk(x, CF_CHECK_LEAF_KEY);
    EVP_PKEY *pk;
    char group[32] = "";
    size_t glen = 0;
    bool p384, vlek;
    cf_snp_signing_key sk;

    if (!x->ext_ok) {
        set(c, CF_CHECK_SKIPPED, "not evaluated: no usable certificate");
        return;
    }
    vlek = x->ext.is_vlek;
    pk = X509_get0_pubkey(x->cert);
    p384 = pk != NULL && EVP_PKEY_is_a(pk, "EC") &&
           EVP_PKEY_get_group_name(pk, group, sizeof(group), &glen) == 1 &&
           strcmp(group, "secp384r1") == 0;
    ERR_clear_error();
    expected(c, "EC P-384 %s",
             x->pol->allow_vcek && x->pol->allow_vlek ? "VCEK or VLEK"
             : x->pol->allow_vcek                     ? "VCEK"
                                                      : "VLEK");
    actual(c, "%s %s", p384 ? "EC P-384" : (pk != NULL ? EVP_PKEY_get0_type_name(pk) : "no key"),
           kind_name(vlek));
    c->status = CF_CHECK_PASSED;
    c->message[0] = '\0';
    if (!p384) {
        c->status = CF_CHECK_FAILED;
        append(c->message, sizeof(c->message), "certificate key is not EC P-384");
    }
    if (x->report_ok) {
        /* key_info SIGNING_KEY (ABI ATTESTATION_REPORT, bits 4:2) must name the
         * kind of key the certificate certifies. */
        sk = cf_snp_report_signing_key(&x->rep);
        if (sk == CF_SNP_KEY_NONE) {
            c->status = CF_CHECK_FAILED;
            append(c->message, sizeof(c->message), "report is not signed (SIGNING_KEY = none)");
        } else if (sk != CF_SNP_KEY_VCEK && sk != CF_SNP_KEY_VLEK) {
            c->status = CF_CHECK_FAILED;
            append(c->message, sizeof(c->message), "report names reserved SIGNING_KEY %u",
                   (unsigned)sk);
        } else if ((sk == CF_SNP_KEY_VLEK) != vlek) {
            c->status = CF_CHECK_FAILED;
            append(c->message, sizeof(c->message),
                   "report says it was signed by the %s but the certificate is a %s",
                   kind_name(sk == CF_SNP_KEY_VLEK), kind_name(vlek));
        }
    }
    if ((vlek && !x->pol->allow_vlek) || (!vlek && !x->pol->allow_vcek)) {
        c->status = CF_CHECK_FAILED;
        append(c->message, sizeof(c->message),
               "%s-signed reports are not allowed by this manifest (signing_keys)",
               kind_name(vlek));
    }
    if (c->status == CF_CHECK_PASSED)
        set(c, CF_CHECK_PASSED, "EC P-384 %s, named by the report as its signing key",
            kind_name(vlek));
}

/* ---- TCB ---- */

struct tcb_component {
    const char *name;
    uint8_t (*get)(const cf_snp_tcb *t);
    uint8_t (*min)(const cf_manifest_tcb *t);
};

static uint8_t get_bl(const cf_snp_tcb *t) { return t->bootloader; }
static uint8_t get_tee(const cf_snp_tcb *t) { return t->tee; }
static uint8_t get_snp(const cf_snp_tcb *t) { return t->snp; }
static uint8_t get_uc(const cf_snp_tcb *t) { return t->microcode; }
static uint8_t get_fmc(const cf_snp_tcb *t) { return t->fmc; }
static uint8_t min_bl(const cf_manifest_tcb *t) { return t->bootloader; }
static uint8_t min_tee(const cf_manifest_tcb *t) { return t->tee; }
static uint8_t min_snp(const cf_manifest_tcb *t) { return t->snp; }
static uint8_t min_uc(const cf_manifest_tcb *t) { return t->microcode; }
static uint8_t min_fmc(const cf_manifest_tcb *t) { return t->fmc; }

/* VCEK spec extensions blSPL, teeSPL, snpSPL, ucodeSPL, fmcSPL (Turin only). */
static const struct tcb_component components[] = {
    {"bootloader", get_bl, min_bl}, {"tee", get_tee, min_tee}, {"snp", get_snp, min_snp},
    {"microcode", get_uc, min_uc},  {"fmc", get_fmc, min_fmc},
};

static size_t n_components(cf_snp_product p)
{
    return p == CF_SNP_PRODUCT_TURIN ? CF_ARRAY_LEN(components) : CF_ARRAY_LEN(components) - 1;
}

static void check_tcb_match(vctx *x)
{
    cf_check *c = chk(x, CF_CHECK_TCB_MATCH);
    const cf_snp_tcb *rep = &x->r->facts.reported_tcb, *cert = &x->ext.tcb;
    char a[TCB_TEXT_LEN], b[TCB_TEXT_LEN];

    if (!x->report_ok || !x->ext_ok || x->product == CF_SNP_PRODUCT_UNKNOWN) {
        set(c, CF_CHECK_SKIPPED, "not evaluated: %s",
            !x->report_ok ? "report did not parse"
                          : (!x->ext_ok ? "no usable certificate" : "unknown product"));
        return;
    }
    tcb_text(rep, x->product, a);
    tcb_text(cert, x->product, b);
    expected(c, "reported_tcb %s", a);
    actual(c, "certificate %s", b);
    /* The VCEK is derived from REPORTED_TCB (not CURRENT_TCB), so its TCB
     * extensions must equal the report's REPORTED_TCB component by component. */
    c->status = CF_CHECK_PASSED;
    c->message[0] = '\0';
    for (size_t i = 0; i < n_components(x->product); i++) {
        uint8_t want = components[i].get(rep), got = components[i].get(cert);
        if (want != got) {
            c->status = CF_CHECK_FAILED;
            append(c->message, sizeof(c->message),
                   "certificate %s SPL %u differs from reported_tcb %s %u", components[i].name, got,
                   components[i].name, want);
        }
    }
    if (c->status == CF_CHECK_PASSED)
        set(c, CF_CHECK_PASSED, "%s TCB extensions equal the report's reported_tcb",
            kind_name(x->ext.is_vlek));
}

static void check_chip_id(vctx *x)
{
    cf_check *c = chk(x, CF_CHECK_CHIP_ID);
    char a[2 * CF_SNP_CHIP_ID_LEN + 1], b[2 * CF_SNP_CHIP_ID_LEN + 1];

    if (!x->report_ok || !x->ext_ok) {
        set(c, CF_CHECK_SKIPPED, "not evaluated: %s",
            !x->report_ok ? "report did not parse" : "no usable certificate");
        return;
    }
    if (x->ext.is_vlek) {
        set(c, CF_CHECK_SKIPPED, "VLEK certificates carry no hwID (the chip id is not certified)");
        return;
    }
    /* hwID: 64 bytes, or 8 on Turin, whose CHIP_ID has only its first 8 bytes set. */
    hex(x->rep.chip_id, x->ext.hwid_len, a);
    hex(x->ext.hwid, x->ext.hwid_len, b);
    expected(c, "%s", a);
    actual(c, "%s", b);
    if (x->ext.hwid_len == 0 || x->ext.hwid_len > CF_SNP_CHIP_ID_LEN)
        set(c, CF_CHECK_FAILED, "VCEK has no usable hwID");
    else if (memcmp(x->rep.chip_id, x->ext.hwid, x->ext.hwid_len) != 0)
        set(c, CF_CHECK_FAILED, "VCEK hwID does not match the report's CHIP_ID");
    else
        set(c, CF_CHECK_PASSED, "VCEK hwID equals the report's CHIP_ID (%zu bytes)",
            x->ext.hwid_len);
}

static void check_min_tcb(vctx *x)
{
    cf_check *c = chk(x, CF_CHECK_MIN_TCB);
    const cf_snp_tcb *rep = &x->r->facts.reported_tcb;
    const cf_manifest_tcb *min;
    cf_snp_tcb min_as_tcb;
    char a[TCB_TEXT_LEN], b[TCB_TEXT_LEN];

    if (!x->report_ok || x->product == CF_SNP_PRODUCT_UNKNOWN) {
        set(c, CF_CHECK_SKIPPED, "not evaluated: %s",
            !x->report_ok ? "report did not parse" : "unknown product");
        return;
    }
    min = &x->pol->min_tcb[x->product];
    tcb_text(rep, x->product, a);
    actual(c, "%s", a);
    if (!min->present) {
        /* Fail closed: no minimum is not "any TCB". */
        set(c, CF_CHECK_FAILED, "the manifest has no minimum TCB for %s",
            cf_snp_product_name(x->product));
        return;
    }
    memset(&min_as_tcb, 0, sizeof(min_as_tcb));
    min_as_tcb.bootloader = min->bootloader;
    min_as_tcb.tee = min->tee;
    min_as_tcb.snp = min->snp;
    min_as_tcb.microcode = min->microcode;
    min_as_tcb.fmc = min->fmc;
    tcb_text(&min_as_tcb, x->product, b);
    expected(c, ">= %s", b);
    c->status = CF_CHECK_PASSED;
    c->message[0] = '\0';
    for (size_t i = 0; i < n_components(x->product); i++) {
        uint8_t have = components[i].get(rep), want = components[i].min(min);
        if (have < want) {
            c->status = CF_CHECK_FAILED;
            append(c->message, sizeof(c->message), "%s TCB %u below minimum %u", components[i].name,
                   have, want);
        }
    }
    if (c->status == CF_CHECK_PASSED)
        set(c, CF_CHECK_PASSED, "reported TCB meets the %s minimum",
            cf_snp_product_name(x->product));
}

/* ---- guest properties ---- */

static void check_guest_svn(vctx *x)
{
    cf_check *c = chk(x, CF_CHECK_GUEST_SVN);

    if (!x->pol->has_min_guest_svn) {
        set(c, CF_CHECK_SKIPPED, "the manifest sets no minimum guest_svn");
        return;
    }
    if (!x->report_ok) {
        set(c, CF_CHECK_SKIPPED, "not evaluated: report did not parse");
        return;
    }
    expected(c, ">= %u", x->pol->min_guest_svn);
    actual(c, "%u", x->rep.guest_svn);
    if (x->rep.guest_svn < x->pol->min_guest_svn)
        set(c, CF_CHECK_FAILED, "guest_svn %u below minimum %u", x->rep.guest_svn,
            x->pol->min_guest_svn);
    else
        set(c, CF_CHECK_PASSED, "guest_svn %u meets minimum %u", x->rep.guest_svn,
            x->pol->min_guest_svn);
}

static void check_debug(vctx *x)
{
    cf_check *c = chk(x, CF_CHECK_DEBUG);
    bool debug;

    if (!x->report_ok) {
        set(c, CF_CHECK_SKIPPED, "not evaluated: report did not parse");
        return;
    }
    /* Guest policy bit 19 DEBUG: the hypervisor may read and write guest memory. */
    debug = (x->rep.policy & CF_SNP_POLICY_DEBUG) != 0;
    expected(c, "%s", x->pol->allow_debug ? "DEBUG set or clear" : "DEBUG clear");
    actual(c, "DEBUG %s", debug ? "set" : "clear");
    if (debug && !x->pol->allow_debug)
        set(c, CF_CHECK_FAILED, "policy has DEBUG set: debugging is not allowed");
    else if (debug)
        set(c, CF_CHECK_PASSED, "policy has DEBUG set; the manifest allows debugging");
    else
        set(c, CF_CHECK_PASSED, "debugging is disabled (policy DEBUG clear)");
}

static void check_guest_policy(vctx *x)
{
    cf_check *c = chk(x, CF_CHECK_GUEST_POLICY);
    uint64_t req = x->pol->policy_require, forbid = x->pol->policy_forbid;

    if ((req | forbid) == 0) {
        set(c, CF_CHECK_SKIPPED, "the manifest requires and forbids no guest policy bits");
        return;
    }
    if (!x->report_ok) {
        set(c, CF_CHECK_SKIPPED, "not evaluated: report did not parse");
        return;
    }
    c->expected[0] = '\0';
    for (unsigned bit = 0; bit < 64; bit++) {
        if (req & (1ull << bit))
            append(c->expected, sizeof(c->expected), "%s set", cf_manifest_policy_bit_name(bit));
        if (forbid & (1ull << bit))
            append(c->expected, sizeof(c->expected), "%s clear", cf_manifest_policy_bit_name(bit));
    }
    actual(c, "policy 0x%llx", (unsigned long long)x->rep.policy);
    c->status = CF_CHECK_PASSED;
    c->message[0] = '\0';
    for (unsigned bit = 0; bit < 64; bit++) {
        bool on = (x->rep.policy & (1ull << bit)) != 0;
        if ((req & (1ull << bit)) && !on) {
            c->status = CF_CHECK_FAILED;
            append(c->message, sizeof(c->message), "policy bit %s is required but clear",
                   cf_manifest_policy_bit_name(bit));
        }
        if ((forbid & (1ull << bit)) && on) {
            c->status = CF_CHECK_FAILED;
            append(c->message, sizeof(c->message), "policy bit %s is set but forbidden",
                   cf_manifest_policy_bit_name(bit));
        }
    }
    if (c->status == CF_CHECK_PASSED)
        set(c, CF_CHECK_PASSED,
            "guest policy has the required bits and none of the forbidden ones");
}

static void check_vmpl(vctx *x)
{
    cf_check *c = chk(x, CF_CHECK_VMPL);
    char allowed[16] = "";

    if (!x->report_ok) {
        set(c, CF_CHECK_SKIPPED, "not evaluated: report did not parse");
        return;
    }
    for (unsigned i = 0; i < 4; i++) {
        if (x->pol->vmpl_mask & (1u << i)) {
            size_t n = strlen(allowed);
            (void)snprintf(allowed + n, sizeof(allowed) - n, "%s%u", n > 0 ? ", " : "", i);
        }
    }
    expected(c, "one of %s", allowed);
    actual(c, "%u", x->rep.vmpl);
    if (x->rep.vmpl > 3 || !(x->pol->vmpl_mask & (1u << x->rep.vmpl)))
        set(c, CF_CHECK_FAILED, "VMPL %u is not allowed (allowed: %s)", x->rep.vmpl, allowed);
    else
        set(c, CF_CHECK_PASSED, "VMPL %u is allowed", x->rep.vmpl);
}

/* ---- deployment ---- */

static void check_measurement_and_deployment(vctx *x)
{
    cf_check *cm = chk(x, CF_CHECK_MEASUREMENT), *cd = chk(x, CF_CHECK_DEPLOYMENT);
    const cf_manifest *m = x->v->m;
    const char *want = x->in->deployment;
    const cf_manifest_deployment *named =
        want != NULL ? cf_manifest_find_deployment(m, want) : NULL;
    const cf_manifest_deployment *match = NULL;
    size_t n_match = 0;
    char names[CF_CHECK_VALUE_LEN] = "";

    if (!x->report_ok) {
        set(cm, CF_CHECK_SKIPPED, "not evaluated: report did not parse");
        if (want != NULL && named == NULL)
            set(cd, CF_CHECK_FAILED, "deployment '%s' not in manifest", want);
        else
            set(cd, CF_CHECK_SKIPPED, "not evaluated: report did not parse");
        return;
    }
    for (size_t i = 0; i < cf_manifest_deployment_count(m); i++) {
        const cf_manifest_deployment *d = cf_manifest_deployment_at(m, i);
        if (d->has_snp && cf_manifest_deployment_allows_snp_measurement(d, x->rep.measurement)) {
            if (n_match++ == 0)
                match = d;
            append(names, sizeof(names), "'%s'", d->name);
        }
    }
    actual(cm, "%s", x->r->facts.measurement);

    /* measurement */
    if (named != NULL) {
        if (named->n_snp_measurements == 1) {
            char h[2 * CF_SNP_MEASUREMENT_LEN + 1];
            hex(named->snp_measurements[0], CF_SNP_MEASUREMENT_LEN, h);
            expected(cm, "%s", h);
        } else {
            expected(cm, "one of %zu measurements of deployment '%s'", named->n_snp_measurements,
                     named->name);
        }
        if (named->has_snp &&
            cf_manifest_deployment_allows_snp_measurement(named, x->rep.measurement))
            set(cm, CF_CHECK_PASSED, "measurement allowed for deployment '%s'", named->name);
        else if (n_match > 0)
            set(cm, CF_CHECK_FAILED,
                "measurement not allowed for deployment '%s' (it is allowed for %s)", named->name,
                names);
        else
            set(cm, CF_CHECK_FAILED, "measurement not allowed for deployment '%s'", named->name);
    } else {
        expected(cm, "a measurement listed in the manifest");
        if (n_match > 0)
            set(cm, CF_CHECK_PASSED, "measurement allowed for deployment %s", names);
        else
            set(cm, CF_CHECK_FAILED, "measurement not in manifest");
    }

    /* deployment (and tenant) */
    if (want != NULL) {
        expected(cd, "deployment '%s'%s%s%s", want, x->in->tenant ? " of tenant '" : "",
                 x->in->tenant ? x->in->tenant : "", x->in->tenant ? "'" : "");
        if (named == NULL) {
            actual(cd, "none");
            set(cd, CF_CHECK_FAILED, "deployment '%s' not in manifest", want);
            return;
        }
        x->dep = named;
    } else {
        expected(cd, "exactly one deployment allowing the measurement%s%s%s",
                 x->in->tenant ? " (tenant '" : "", x->in->tenant ? x->in->tenant : "",
                 x->in->tenant ? "')" : "");
        if (n_match == 0) {
            actual(cd, "none");
            set(cd, CF_CHECK_FAILED, "no deployment allows this measurement");
            return;
        }
        if (n_match > 1) {
            /* Ambiguous: the caller must say which deployment it means. */
            actual(cd, "%s", names);
            set(cd, CF_CHECK_FAILED,
                "measurement is allowed by %zu deployments (%s): name the deployment", n_match,
                names);
            return;
        }
        x->dep = match;
    }
    actual(cd, "deployment '%s' of tenant '%s'", x->dep->name, x->dep->tenant);
    (void)snprintf(x->r->deployment, sizeof(x->r->deployment), "%s", x->dep->name);
    (void)snprintf(x->r->tenant, sizeof(x->r->tenant), "%s", x->dep->tenant);
    if (x->in->tenant != NULL && strcmp(x->in->tenant, x->dep->tenant) != 0)
        set(cd, CF_CHECK_FAILED, "deployment '%s' belongs to tenant '%s', not '%s'", x->dep->name,
            x->dep->tenant, x->in->tenant);
    else if (want != NULL)
        set(cd, CF_CHECK_PASSED, "deployment '%s' (tenant '%s')", x->dep->name, x->dep->tenant);
    else
        set(cd, CF_CHECK_PASSED, "resolved to deployment '%s' (tenant '%s') by measurement",
            x->dep->name, x->dep->tenant);
}

static void check_host_data(vctx *x)
{
    cf_check *c = chk(x, CF_CHECK_HOST_DATA);
    char h[2 * CF_SNP_HOST_DATA_LEN + 1];

    if (x->dep == NULL) {
        set(c, CF_CHECK_SKIPPED, "not evaluated: no deployment resolved");
        return;
    }
    if (!x->dep->has_host_data) {
        set(c, CF_CHECK_SKIPPED, "deployment '%s' does not pin host_data", x->dep->name);
        return;
    }
    hex(x->dep->host_data, CF_SNP_HOST_DATA_LEN, h);
    expected(c, "%s", h);
    actual(c, "%s", x->r->facts.host_data);
    /* HOST_DATA is supplied by the host at launch (ABI SNP_LAUNCH_FINISH). */
    if (memcmp(x->dep->host_data, x->rep.host_data, CF_SNP_HOST_DATA_LEN) != 0)
        set(c, CF_CHECK_FAILED, "host_data does not match deployment '%s'", x->dep->name);
    else
        set(c, CF_CHECK_PASSED, "host_data matches deployment '%s'", x->dep->name);
}

static void check_chip_allowlist(vctx *x)
{
    cf_check *c = chk(x, CF_CHECK_CHIP_ALLOWLIST);

    if (x->pol->n_chip_ids == 0) {
        set(c, CF_CHECK_SKIPPED, "the manifest has no chip-ID allow-list");
        return;
    }
    if (!x->report_ok) {
        set(c, CF_CHECK_SKIPPED, "not evaluated: report did not parse");
        return;
    }
    expected(c, "one of %zu allowed chip ids", x->pol->n_chip_ids);
    actual(c, "%s", x->r->facts.chip_id);
    if (all_zero(x->rep.chip_id, CF_SNP_CHIP_ID_LEN))
        set(c, CF_CHECK_FAILED, "chip_id is masked (all zero), so it cannot match the allow-list");
    else if (!cf_manifest_snp_chip_allowed(x->pol, x->rep.chip_id))
        set(c, CF_CHECK_FAILED, "chip_id not in the manifest's allow-list");
    else
        set(c, CF_CHECK_PASSED, "chip_id is on the manifest's allow-list");
}

/* ---- binding and freshness ---- */

static void check_binding(vctx *x)
{
    cf_check *c = chk(x, CF_CHECK_BINDING);
    uint8_t want[CF_BINDING_LEN];
    char h[2 * CF_BINDING_LEN + 1];
    int rc;

    if (!x->binding_given) {
        set(c, CF_CHECK_SKIPPED, "no TEE public key and nonce given");
        return;
    }
    if (!x->report_ok) {
        set(c, CF_CHECK_SKIPPED, "not evaluated: report did not parse");
        return;
    }
    if (cf_binding_compute(x->in->tee_public_key, x->in->tee_public_key_len, x->in->nonce, want) ==
        0) {
        hex(want, sizeof(want), h);
        expected(c, "%s", h);
    }
    actual(c, "%s", x->r->facts.report_data);
    /* DESIGN.md §3 "Binding": SHA-512("coffer/v1 evidence" || 0x00 || key || nonce). */
    rc = cf_binding_check(x->rep.report_data, x->in->tee_public_key, x->in->tee_public_key_len,
                          x->in->nonce);
    if (rc == 0) {
        x->binding_ok = true;
        set(c, CF_CHECK_PASSED, "report_data binds the TEE public key and the nonce");
    } else {
        set(c, CF_CHECK_FAILED, "report_data does not bind key and nonce");
    }
}

static void check_freshness(vctx *x)
{
    cf_check *c = chk(x, CF_CHECK_FRESHNESS);
    char t[TIME_TEXT_LEN], nb[TIME_TEXT_LEN], na[TIME_TEXT_LEN];
    bool time_checked = false;
    time_t at = x->in->at;

    time_text(at, t);
    actual(c, "%s", t);
    c->status = CF_CHECK_PASSED;
    c->message[0] = '\0';
    if (x->cert != NULL) {
        const ASN1_TIME *not_before = X509_get0_notBefore(x->cert),
                        *not_after = X509_get0_notAfter(x->cert);
        asn1_time_text(not_before, nb);
        asn1_time_text(not_after, na);
        expected(c, "%s <= time <= %s%s", nb, na, x->in->nonce != NULL ? ", nonce bound" : "");
        time_checked = true;
        /* ASN1_TIME_cmp_time_t: -1 / 0 / 1 as the certificate time is before,
         * equal to or after `at`; -2 if it cannot be decoded. */
        int cmp_nb = ASN1_TIME_cmp_time_t(not_before, at),
            cmp_na = ASN1_TIME_cmp_time_t(not_after, at);
        if (cmp_nb == -2 || cmp_na == -2) {
            c->status = CF_CHECK_FAILED;
            append(c->message, sizeof(c->message), "certificate validity period is malformed");
        } else if (cmp_nb > 0) {
            c->status = CF_CHECK_FAILED;
            append(c->message, sizeof(c->message),
                   "verification time %s is before the certificate's notBefore %s", t, nb);
        } else if (cmp_na < 0) {
            c->status = CF_CHECK_FAILED;
            append(c->message, sizeof(c->message),
                   "verification time %s is after the certificate's notAfter %s", t, na);
        }
        ERR_clear_error();
    }
    if (x->in->nonce != NULL) {
        if (!x->report_ok) {
            append(c->message, sizeof(c->message), "nonce not evaluated: report did not parse");
        } else if (!x->binding_ok) {
            c->status = CF_CHECK_FAILED;
            append(c->message, sizeof(c->message),
                   "the verifier's nonce is not bound in report_data (the report may be a replay)");
        }
    }
    if (c->status == CF_CHECK_FAILED)
        return;
    if (!time_checked && x->in->nonce == NULL) {
        set(c, CF_CHECK_SKIPPED, "not evaluated: no usable certificate and no nonce");
        return;
    }
    c->message[0] = '\0';
    if (time_checked)
        append(c->message, sizeof(c->message), "certificate valid at %s", t);
    if (x->in->nonce != NULL && x->binding_ok)
        append(c->message, sizeof(c->message), "the verifier's nonce is bound in report_data");
    else if (x->in->nonce == NULL)
        append(c->message, sizeof(c->message), "no nonce given, so the report's age is unknown");
}

static void check_revocation(vctx *x)
{
    cf_check *c = chk(x, CF_CHECK_REVOCATION);
    int n = x->in->crls != NULL ? sk_X509_CRL_num(x->in->crls) : 0;
    int rc;

    if (n <= 0) {
        set(c, CF_CHECK_SKIPPED, "no CRL given: revocation not checked");
        return;
    }
    if (!x->chain_ok) {
        set(c, CF_CHECK_SKIPPED, "not evaluated: the chain did not verify");
        return;
    }
    expected(c, "no certificate of the chain revoked (%d CRL%s)", n, n == 1 ? "" : "s");
    /* AMD KDS CRLs are issued by the ARK and list revoked ASKs/ASVKs; the chain
     * verifier applies them (snp.h). Uncached: a CRL check is never memoised. */
    rc = cf_snp_chain_verify(x->chain_roots, x->cert, x->product, x->ext.is_vlek, x->in->at,
                             x->in->crls, NULL);
    if (rc == 0) {
        actual(c, "not revoked");
        set(c, CF_CHECK_PASSED, "no certificate of the chain is revoked");
    } else if (rc == CF_E_REVOKED) {
        actual(c, "revoked");
        set(c, CF_CHECK_FAILED, "certificate revoked: %s", cf_err_detail(rc));
    } else {
        actual(c, "unknown");
        /* Fail closed: a CRL that cannot be applied is not a pass. */
        set(c, CF_CHECK_FAILED, "revocation could not be checked: %s", cf_err_detail(rc));
    }
}

/* ---- entry points ---- */

static int check_input(const cf_verify_input *in)
{
    CF_ENSURE(in != NULL, CF_E_INVAL);
    if (in->platform != NULL && strcmp(in->platform, CF_PLATFORM_SEV_SNP) != 0)
        return cf_err_set(CF_E_UNSUPPORTED, "evidence platform '%.32s' is not supported",
                          in->platform);
    if (in->report == NULL)
        return cf_err_set(CF_E_INVAL, "no report given");
    if (in->cert == NULL && in->cert_len != 0)
        return cf_err_set(CF_E_INVAL, "certificate pointer missing");
    if (in->at <= 0)
        return cf_err_set(CF_E_INVAL, "a verification time is required");
    if ((in->tee_public_key == NULL) != (in->nonce == NULL))
        return cf_err_set(CF_E_INVAL,
                          "the binding check needs both the TEE public key and the nonce");
    if (in->tee_public_key != NULL &&
        (in->tee_public_key_len == 0 || in->tee_public_key_len > CF_TEE_KEY_MAX_LEN))
        return cf_err_set(CF_E_INVAL, "TEE public key must be 1 to %u bytes",
                          (unsigned)CF_TEE_KEY_MAX_LEN);
    return 0;
}

int cf_verifier_verify(const cf_verifier *v, const cf_verify_input *in, cf_verify_result **ret)
{
    vctx x;
    cf_verify_result *r;

    CF_ENSURE(v != NULL && ret != NULL, CF_E_INVAL);
    CF_GUARD(check_input(in));
    r = calloc(1, sizeof(*r));
    CF_ENSURE(r != NULL, CF_E_NOMEM);
    for (unsigned i = 0; i < CF_CHECK__COUNT; i++) {
        r->checks[i].id = (cf_check_id)i;
        r->checks[i].name = check_names[i];
        r->checks[i].status = CF_CHECK_SKIPPED;
    }
    r->at = in->at;
    r->facts.platform = CF_PLATFORM_SEV_SNP;
    r->facts.product = CF_SNP_PRODUCT_UNKNOWN;
    memcpy(r->manifest_hash, cf_manifest_hash_str(v->m), sizeof(r->manifest_hash));

    memset(&x, 0, sizeof(x));
    x.v = v;
    x.pol = v->snp;
    x.in = in;
    x.r = r;
    x.binding_given = in->tee_public_key != NULL && in->nonce != NULL;

    /* Order matters only through the facts later checks read (product, chain,
     * resolved deployment, binding); every check runs regardless of failures. */
    check_parse(&x);
    check_product(&x);
    check_signature(&x);
    check_chain(&x);
    check_leaf_key(&x);
    check_tcb_match(&x);
    check_chip_id(&x);
    check_min_tcb(&x);
    check_guest_svn(&x);
    check_debug(&x);
    check_guest_policy(&x);
    check_vmpl(&x);
    check_measurement_and_deployment(&x);
    check_host_data(&x);
    check_chip_allowlist(&x);
    check_binding(&x);
    check_freshness(&x);
    check_revocation(&x);
    X509_free(x.cert);
    ERR_clear_error();

    r->verified = true;
    for (unsigned i = 0; i < CF_CHECK__COUNT; i++)
        if (r->checks[i].status == CF_CHECK_FAILED)
            r->verified = false;
    /* Structural guarantee: evidence that did not parse or whose signature or
     * chain was not established can never be verified, even if a future edit
     * left one of those checks "skipped". */
    if (r->checks[CF_CHECK_PARSE].status != CF_CHECK_PASSED ||
        r->checks[CF_CHECK_SIGNATURE].status != CF_CHECK_PASSED ||
        r->checks[CF_CHECK_CHAIN].status != CF_CHECK_PASSED ||
        r->checks[CF_CHECK_MEASUREMENT].status != CF_CHECK_PASSED ||
        r->checks[CF_CHECK_DEPLOYMENT].status != CF_CHECK_PASSED)
        r->verified = false;
    *ret = r;
    return 0;
}

int cf_verify_evidence(const cf_manifest *m, const cf_verify_input *in, cf_verify_result **ret)
{
    cf_verifier *v = NULL;
    int rc;

    CF_GUARD(cf_verifier_new(m, &v));
    rc = cf_verifier_verify(v, in, ret);
    cf_verifier_free(v);
    return rc;
}

void cf_verify_result_free(cf_verify_result *r) { free(r); }

const cf_check *cf_verify_result_check(const cf_verify_result *r, cf_check_id id)
{
    if (r == NULL || (unsigned)id >= CF_CHECK__COUNT)
        return NULL;
    return &r->checks[id];
}

const cf_check *cf_verify_result_find(const cf_verify_result *r, const char *name)
{
    if (r == NULL || name == NULL)
        return NULL;
    for (unsigned i = 0; i < CF_CHECK__COUNT; i++)
        if (strcmp(check_names[i], name) == 0)
            return &r->checks[i];
    return NULL;
}

const cf_check *cf_verify_first_failure(const cf_verify_result *r)
{
    for (unsigned i = 0; r != NULL && i < CF_CHECK__COUNT; i++)
        if (r->checks[i].status == CF_CHECK_FAILED)
            return &r->checks[i];
    return NULL;
}

int cf_verify_result_status(const cf_verify_result *r)
{
    const cf_check *c;

    CF_ENSURE(r != NULL, CF_E_INVAL);
    if (r->verified)
        return 0;
    c = cf_verify_first_failure(r);
    if (c == NULL)
        return cf_err_set(CF_E_VERIFY, "evidence not verified");
    return cf_err_set(CF_E_VERIFY, "%s: %s", c->name, c->message);
}

/* ---- output ---- */

static json_t *tcb_json(const cf_snp_tcb *t, cf_snp_product p)
{
    char raw[19];
    json_t *o;

    (void)snprintf(raw, sizeof(raw), "0x%016llx", (unsigned long long)t->raw);
    o = json_pack("{s:i,s:i,s:i,s:i,s:s}", "bootloader", t->bootloader, "tee", t->tee, "snp",
                  t->snp, "microcode", t->microcode, "raw", raw);
    if (o != NULL && p == CF_SNP_PRODUCT_TURIN &&
        json_object_set_new(o, "fmc", json_integer(t->fmc)) != 0) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static const char *signing_key_name(cf_snp_signing_key k)
{
    switch (k) {
    case CF_SNP_KEY_VCEK: return "vcek";
    case CF_SNP_KEY_VLEK: return "vlek";
    case CF_SNP_KEY_NONE: return "none";
    }
    return "reserved";
}

static json_t *facts_json(const cf_verify_result *r)
{
    const cf_verify_facts *f = &r->facts;
    json_t *o = json_object();
    char policy[19];
    int bad = 0;

    if (o == NULL)
        return NULL;
    bad |= json_object_set_new(o, "platform", json_string(f->platform));
    bad |= json_object_set_new(o, "product", json_string(cf_snp_product_name(f->product)));
    if (f->report_parsed) {
        (void)snprintf(policy, sizeof(policy), "0x%llx", (unsigned long long)f->policy);
        bad |= json_object_set_new(o, "report_version", json_integer(f->report_version));
        bad |= json_object_set_new(o, "signing_key", json_string(signing_key_name(f->signing_key)));
        bad |= json_object_set_new(o, "measurement", json_string(f->measurement));
        bad |= json_object_set_new(o, "host_data", json_string(f->host_data));
        bad |= json_object_set_new(o, "report_data", json_string(f->report_data));
        bad |= json_object_set_new(o, "chip_id", json_string(f->chip_id));
        bad |= json_object_set_new(o, "report_id", json_string(f->report_id));
        bad |= json_object_set_new(o, "debug", json_boolean(f->debug));
        bad |= json_object_set_new(o, "vmpl", json_integer(f->vmpl));
        bad |= json_object_set_new(o, "guest_svn", json_integer(f->guest_svn));
        bad |= json_object_set_new(o, "policy", json_string(policy));
        bad |= json_object_set_new(o, "reported_tcb", tcb_json(&f->reported_tcb, f->product));
        bad |= json_object_set_new(o, "current_tcb", tcb_json(&f->current_tcb, f->product));
        bad |= json_object_set_new(o, "committed_tcb", tcb_json(&f->committed_tcb, f->product));
        bad |= json_object_set_new(o, "launch_tcb", tcb_json(&f->launch_tcb, f->product));
    }
    if (f->cert_parsed) {
        bad |= json_object_set_new(o, "certificate_kind",
                                   json_string(f->cert_is_vlek ? "vlek" : "vcek"));
        bad |= json_object_set_new(o, "certificate_product", json_string(f->cert_product_name));
        bad |= json_object_set_new(o, "certificate_tcb", tcb_json(&f->cert_tcb, f->product));
    }
    bad |= json_object_set_new(o, "root", f->root[0] ? json_string(f->root) : json_null());
    bad |= json_object_set_new(o, "simulated", json_boolean(f->simulated));
    if (f->ark_fingerprint[0])
        bad |= json_object_set_new(o, "ark_sha384", json_string(f->ark_fingerprint));
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}

json_t *cf_verify_result_to_json(const cf_verify_result *r)
{
    json_t *o = NULL, *checks = NULL;
    char t[TIME_TEXT_LEN];
    int bad = 0;

    if (r == NULL)
        return NULL;
    o = json_object();
    checks = json_array();
    if (o == NULL || checks == NULL)
        goto fail;
    for (unsigned i = 0; i < CF_CHECK__COUNT; i++) {
        const cf_check *c = &r->checks[i];
        json_t *jc = json_pack("{s:s,s:s,s:s}", "name", c->name, "status",
                               cf_check_status_name(c->status), "message", c->message);
        if (jc == NULL)
            goto fail;
        if (c->expected[0])
            bad |= json_object_set_new(jc, "expected", json_string(c->expected));
        if (c->actual[0])
            bad |= json_object_set_new(jc, "actual", json_string(c->actual));
        bad |= json_array_append_new(checks, jc);
    }
    time_text(r->at, t);
    bad |= json_object_set_new(o, "verified", json_boolean(r->verified));
    bad |= json_object_set_new(o, "status", json_string(r->verified ? "verified" : "failed"));
    bad |= json_object_set_new(o, "platform", json_string(r->facts.platform));
    bad |= json_object_set_new(o, "manifest_hash", json_string(r->manifest_hash));
    bad |= json_object_set_new(o, "verification_time", json_string(t));
    bad |= json_object_set_new(o, "deployment",
                               r->deployment[0] ? json_string(r->deployment) : json_null());
    bad |= json_object_set_new(o, "tenant", r->tenant[0] ? json_string(r->tenant) : json_null());
    bad |= json_object_set_new(o, "checks", checks);
    checks = NULL;
    bad |= json_object_set_new(o, "facts", facts_json(r));
    if (bad)
        goto fail;
    return o;
fail:
    json_decref(checks);
    json_decref(o);
    return NULL;
}

int cf_verify_result_to_text(const cf_verify_result *r, cf_buf *out)
{
    unsigned failed = 0;

    CF_ENSURE(r != NULL && out != NULL, CF_E_INVAL);
    for (unsigned i = 0; i < CF_CHECK__COUNT; i++)
        failed += r->checks[i].status == CF_CHECK_FAILED;
    if (r->verified)
        CF_GUARD(
            cf_buf_printf(out, "verified: evidence satisfies manifest %s\n", r->manifest_hash));
    else
        CF_GUARD(cf_buf_printf(out, "NOT verified: %u of %u checks failed (manifest %s)\n", failed,
                               (unsigned)CF_CHECK__COUNT, r->manifest_hash));
    for (unsigned i = 0; i < CF_CHECK__COUNT; i++) {
        const cf_check *c = &r->checks[i];
        switch (c->status) {
        case CF_CHECK_PASSED:
            CF_GUARD(cf_buf_printf(out, "\u2713 %s: %s\n", c->name, c->message));
            break;
        case CF_CHECK_FAILED:
            if (c->expected[0] || c->actual[0])
                CF_GUARD(cf_buf_printf(out, "\u2717 %s: %s (expected %s, actual %s)\n", c->name,
                                       c->message, c->expected[0] ? c->expected : "-",
                                       c->actual[0] ? c->actual : "-"));
            else
                CF_GUARD(cf_buf_printf(out, "\u2717 %s: %s\n", c->name, c->message));
            break;
        case CF_CHECK_SKIPPED:
            CF_GUARD(cf_buf_printf(out, "- %s: %s (skipped)\n", c->name, c->message));
            break;
        }
    }
    return 0;
}
