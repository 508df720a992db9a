/*
 * AMD extensions of VCEK / VLEK certificates.
 *
 * Spec: AMD "Versioned Chip Endorsement Key (VCEK) Certificate and KDS
 * Interface Specification" (pub. 57230), table "VCEK Certificate Extensions",
 * and the VLEK additions (cspId). Every extension lives under the AMD arc
 * 1.3.6.1.4.1.3704.1 and its extnValue holds one DER value:
 *
 *   .1      structVersion  INTEGER
 *   .2      productName1   IA5String   e.g. "Milan-B0", "Genoa", "Turin"
 *   .3.1    blSPL          INTEGER     TCB_VERSION boot loader SVN
 *   .3.2    teeSPL         INTEGER     TEE (PSP OS) SVN
 *   .3.3    snpSPL         INTEGER     SNP firmware SVN
 *   .3.4-7  spl_4..spl_7   INTEGER     reserved TCB bytes (validated, not used)
 *   .3.8    ucodeSPL       INTEGER     microcode patch level
 *   .3.9    fmcSPL         INTEGER     FMC SVN (Turin only)
 *   .4      hwID           raw bytes   CHIP_ID: 64 bytes (Milan, Genoa), 8 (Turin); VCEK only
 *   .5      cspId          IA5String   cloud provider of a VLEK; VLEK only
 *
 * hwID is the exception: AMD's KDS puts the CHIP_ID bytes directly in extnValue
 * without an inner tag. Some tooling wraps it in a DER OCTET STRING; both forms
 * are accepted (the signature over the certificate is what makes it
 * trustworthy, not the encoding), anything else is rejected.
 *
 * Strictness: each value must be a single canonical DER value (re-encoding it
 * must give the same bytes), SPLs are non-negative INTEGERs within 0..255,
 * strings are printable ASCII without NULs, and every extension may appear at
 * most once.
 */
#include <openssl/asn1.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <string.h>

#include "attest/snp.h"
#include "base/err.h"

enum {
    EXT_STRUCT_VERSION,
    EXT_PRODUCT_NAME,
    EXT_BL_SPL,
    EXT_TEE_SPL,
    EXT_SNP_SPL,
    EXT_SPL_4,
    EXT_SPL_5,
    EXT_SPL_6,
    EXT_SPL_7,
    EXT_UCODE_SPL,
    EXT_FMC_SPL,
    EXT_HWID,
    EXT_CSP_ID,
    EXT__COUNT
};

static const struct {
    const char *oid;
    const char *name;
} ext_info[EXT__COUNT] = {
    [EXT_STRUCT_VERSION] = {"1.3.6.1.4.1.3704.1.1", "structVersion"},
    [EXT_PRODUCT_NAME] = {"1.3.6.1.4.1.3704.1.2", "productName1"},
    [EXT_BL_SPL] = {"1.3.6.1.4.1.3704.1.3.1", "blSPL"},
    [EXT_TEE_SPL] = {"1.3.6.1.4.1.3704.1.3.2", "teeSPL"},
    [EXT_SNP_SPL] = {"1.3.6.1.4.1.3704.1.3.3", "snpSPL"},
    [EXT_SPL_4] = {"1.3.6.1.4.1.3704.1.3.4", "spl_4"},
    [EXT_SPL_5] = {"1.3.6.1.4.1.3704.1.3.5", "spl_5"},
    [EXT_SPL_6] = {"1.3.6.1.4.1.3704.1.3.6", "spl_6"},
    [EXT_SPL_7] = {"1.3.6.1.4.1.3704.1.3.7", "spl_7"},
    [EXT_UCODE_SPL] = {"1.3.6.1.4.1.3704.1.3.8", "ucodeSPL"},
    [EXT_FMC_SPL] = {"1.3.6.1.4.1.3704.1.3.9", "fmcSPL"},
    [EXT_HWID] = {"1.3.6.1.4.1.3704.1.4", "hwID"},
    [EXT_CSP_ID] = {"1.3.6.1.4.1.3704.1.5", "cspId"},
};

#define HWID_LEN_LEGACY 64 /* Milan, Genoa: the full CHIP_ID */
#define HWID_LEN_TURIN 8   /* Turin: CHIP_ID bytes 0-7 (the report zero-fills the rest) */
#define SPL_MAX 255        /* each SPL is one byte of TCB_VERSION */

/* The OIDs are created once per process and never freed (static lifetime). */
static ASN1_OBJECT *ext_obj[EXT__COUNT];
static bool ext_obj_ok;
static pthread_once_t ext_obj_once = PTHREAD_ONCE_INIT;

static void ext_obj_init(void)
{
    for (size_t i = 0; i < EXT__COUNT; i++) {
        ext_obj[i] = OBJ_txt2obj(ext_info[i].oid, 1);
        if (ext_obj[i] == NULL)
            return;
    }
    ext_obj_ok = true;
}

/* Finds the extension; *ret = NULL if absent. Rejects a second occurrence. */
static int find_ext(X509 *cert, int id, const ASN1_OCTET_STRING **ret)
{
    int idx = X509_get_ext_by_OBJ(cert, ext_obj[id], -1);

    *ret = NULL;
    if (idx < 0)
        return 0;
    if (X509_get_ext_by_OBJ(cert, ext_obj[id], idx) >= 0)
        return cf_err_set(CF_E_PARSE, "certificate has a duplicate %s extension",
                          ext_info[id].name);
    *ret = X509_EXTENSION_get_data(X509_get_ext(cert, idx));
    if (*ret == NULL)
        return cf_err_set(CF_E_PARSE, "certificate extension %s has no value", ext_info[id].name);
    return 0;
}

static int require_ext(X509 *cert, int id, const ASN1_OCTET_STRING **ret)
{
    CF_GUARD(find_ext(cert, id, ret));
    if (*ret == NULL)
        return cf_err_set(CF_E_PARSE, "certificate lacks the %s extension", ext_info[id].name);
    return 0;
}

/* True if the re-encoding enc/n (from i2d) equals der/len: canonical DER, one
 * value, no trailing bytes. Frees enc. */
static bool same_der(unsigned char *enc, int n, const unsigned char *der, long len)
{
    bool eq = enc != NULL && n > 0 && (long)n == len && memcmp(enc, der, (size_t)n) == 0;
    OPENSSL_free(enc);
    return eq;
}

/* extnValue = INTEGER in [0, max]. */
static int ext_uint(const ASN1_OCTET_STRING *v, int id, uint64_t max, uint64_t *ret)
{
    const unsigned char *der = ASN1_STRING_get0_data(v), *p = der;
    long len = ASN1_STRING_length(v);
    ASN1_INTEGER *ai = d2i_ASN1_INTEGER(NULL, &p, len);
    unsigned char *enc = NULL;
    uint64_t val;
    int n, rc;

    n = ai != NULL ? i2d_ASN1_INTEGER(ai, &enc) : -1;
    if (ai == NULL || !same_der(enc, n, der, len)) {
        rc = cf_err_set(CF_E_PARSE, "extension %s is not a DER INTEGER", ext_info[id].name);
        goto out;
    }
    if (ASN1_STRING_type(ai) != V_ASN1_INTEGER || ASN1_INTEGER_get_uint64(&val, ai) != 1 ||
        val > max) {
        rc = cf_err_set(CF_E_RANGE, "extension %s is out of range 0..%llu", ext_info[id].name,
                        (unsigned long long)max);
        goto out;
    }
    *ret = val;
    rc = 0;
out:
    ASN1_INTEGER_free(ai);
    ERR_clear_error();
    return rc;
}

static int ext_spl(const ASN1_OCTET_STRING *v, int id, uint8_t *ret)
{
    uint64_t val;
    CF_GUARD(ext_uint(v, id, SPL_MAX, &val));
    *ret = (uint8_t)val;
    return 0;
}

/* extnValue = IA5String of 1..max printable ASCII characters; out gets max+1 bytes. */
static int ext_ia5(const ASN1_OCTET_STRING *v, int id, size_t max, char *out)
{
    const unsigned char *der = ASN1_STRING_get0_data(v), *p = der;
    long len = ASN1_STRING_length(v);
    ASN1_IA5STRING *s = d2i_ASN1_IA5STRING(NULL, &p, len);
    unsigned char *enc = NULL;
    const unsigned char *d;
    int n, rc;

    n = s != NULL ? i2d_ASN1_IA5STRING(s, &enc) : -1;
    if (s == NULL || !same_der(enc, n, der, len) || ASN1_STRING_type(s) != V_ASN1_IA5STRING) {
        rc = cf_err_set(CF_E_PARSE, "extension %s is not a DER IA5String", ext_info[id].name);
        goto out;
    }
    n = ASN1_STRING_length(s);
    d = ASN1_STRING_get0_data(s);
    if (n < 1 || (size_t)n > max) {
        rc = cf_err_set(CF_E_PARSE, "extension %s must be 1..%zu characters", ext_info[id].name,
                        max);
        goto out;
    }
    for (int i = 0; i < n; i++) {
        if (d[i] < 0x20 || d[i] > 0x7E) {
            rc = cf_err_set(CF_E_PARSE, "extension %s has a non-printable character",
                            ext_info[id].name);
            goto out;
        }
    }
    memcpy(out, d, (size_t)n);
    out[n] = '\0';
    rc = 0;
out:
    ASN1_IA5STRING_free(s);
    ERR_clear_error();
    return rc;
}

static bool hwid_len_ok(cf_snp_product product, size_t n)
{
    switch (product) {
    case CF_SNP_PRODUCT_MILAN:
    case CF_SNP_PRODUCT_GENOA: return n == HWID_LEN_LEGACY;
    case CF_SNP_PRODUCT_TURIN: return n == HWID_LEN_TURIN;
    case CF_SNP_PRODUCT_UNKNOWN: break;
    }
    return n == HWID_LEN_LEGACY || n == HWID_LEN_TURIN;
}

/* hwID: the raw CHIP_ID bytes, or the same bytes inside a DER OCTET STRING. */
static int ext_hwid(const ASN1_OCTET_STRING *v, cf_snp_product product, uint8_t out[64],
                    size_t *ret_len)
{
    const unsigned char *der = ASN1_STRING_get0_data(v), *p = der;
    long len = ASN1_STRING_length(v);
    ASN1_OCTET_STRING *inner = NULL;
    unsigned char *enc = NULL;
    int n, rc;

    if (len > 0 && hwid_len_ok(product, (size_t)len)) {
        memcpy(out, der, (size_t)len);
        *ret_len = (size_t)len;
        return 0;
    }
    inner = d2i_ASN1_OCTET_STRING(NULL, &p, len);
    n = inner != NULL ? i2d_ASN1_OCTET_STRING(inner, &enc) : -1;
    if (inner == NULL || !same_der(enc, n, der, len) || ASN1_STRING_length(inner) <= 0 ||
        !hwid_len_ok(product, (size_t)ASN1_STRING_length(inner))) {
        rc = cf_err_set(CF_E_PARSE, "extension hwID must hold %s bytes",
                        product == CF_SNP_PRODUCT_TURIN     ? "8"
                        : product == CF_SNP_PRODUCT_UNKNOWN ? "8 or 64"
                                                            : "64");
        goto out;
    }
    memcpy(out, ASN1_STRING_get0_data(inner), (size_t)ASN1_STRING_length(inner));
    *ret_len = (size_t)ASN1_STRING_length(inner);
    rc = 0;
out:
    ASN1_OCTET_STRING_free(inner);
    ERR_clear_error();
    return rc;
}

/* productName1 is "<product>" or "<product>-<stepping>" (e.g. "Milan-B0"). */
static cf_snp_product product_from_name(const char *name)
{
    static const cf_snp_product all[] = {CF_SNP_PRODUCT_MILAN, CF_SNP_PRODUCT_GENOA,
                                         CF_SNP_PRODUCT_TURIN};
    for (size_t i = 0; i < CF_ARRAY_LEN(all); i++) {
        const char *p = cf_snp_product_name(all[i]);
        size_t n = strlen(p);
        if (strncmp(name, p, n) == 0 && (name[n] == '\0' || name[n] == '-'))
            return all[i];
    }
    return CF_SNP_PRODUCT_UNKNOWN;
}

int cf_snp_cert_parse_ext(X509 *cert, cf_snp_cert_ext *ret)
{
    static const int reserved_spl[] = {EXT_SPL_4, EXT_SPL_5, EXT_SPL_6, EXT_SPL_7};
    const ASN1_OCTET_STRING *v, *hwid, *csp;
    cf_snp_cert_ext e;
    uint64_t sv;
    uint8_t ignored;

    CF_ENSURE(cert != NULL && ret != NULL, CF_E_INVAL);
    CF_ENSURE(pthread_once(&ext_obj_once, ext_obj_init) == 0 && ext_obj_ok, CF_E_NOMEM);
    memset(&e, 0, sizeof(e));

    CF_GUARD(find_ext(cert, EXT_STRUCT_VERSION, &v));
    if (v != NULL) {
        CF_GUARD(ext_uint(v, EXT_STRUCT_VERSION, UINT32_MAX, &sv));
        e.struct_version = (uint32_t)sv;
    }
    CF_GUARD(require_ext(cert, EXT_PRODUCT_NAME, &v));
    CF_GUARD(ext_ia5(v, EXT_PRODUCT_NAME, CF_SNP_PRODUCT_NAME_MAX, e.product_name));
    e.product = product_from_name(e.product_name);

    CF_GUARD(require_ext(cert, EXT_BL_SPL, &v));
    CF_GUARD(ext_spl(v, EXT_BL_SPL, &e.tcb.bootloader));
    CF_GUARD(require_ext(cert, EXT_TEE_SPL, &v));
    CF_GUARD(ext_spl(v, EXT_TEE_SPL, &e.tcb.tee));
    CF_GUARD(require_ext(cert, EXT_SNP_SPL, &v));
    CF_GUARD(ext_spl(v, EXT_SNP_SPL, &e.tcb.snp));
    CF_GUARD(require_ext(cert, EXT_UCODE_SPL, &v));
    CF_GUARD(ext_spl(v, EXT_UCODE_SPL, &e.tcb.microcode));
    for (size_t i = 0; i < CF_ARRAY_LEN(reserved_spl); i++) {
        CF_GUARD(find_ext(cert, reserved_spl[i], &v));
        if (v != NULL)
            CF_GUARD(ext_spl(v, reserved_spl[i], &ignored));
    }
    /* fmcSPL exists exactly on Turin, whose TCB_VERSION has an FMC byte. */
    CF_GUARD(find_ext(cert, EXT_FMC_SPL, &v));
    if (v != NULL) {
        if (e.product != CF_SNP_PRODUCT_TURIN && e.product != CF_SNP_PRODUCT_UNKNOWN)
            return cf_err_set(CF_E_PARSE, "fmcSPL extension on a %s certificate",
                              cf_snp_product_name(e.product));
        CF_GUARD(ext_spl(v, EXT_FMC_SPL, &e.tcb.fmc));
    } else if (e.product == CF_SNP_PRODUCT_TURIN) {
        return cf_err_set(CF_E_PARSE, "Turin certificate lacks the fmcSPL extension");
    }
    e.tcb.raw = cf_snp_tcb_encode(&e.tcb, e.product);

    /* A VCEK names its chip (hwID); a VLEK names its cloud provider (cspId). */
    CF_GUARD(find_ext(cert, EXT_HWID, &hwid));
    CF_GUARD(find_ext(cert, EXT_CSP_ID, &csp));
    if (hwid != NULL && csp != NULL)
        return cf_err_set(CF_E_PARSE, "certificate has both hwID and cspId extensions");
    if (hwid == NULL && csp == NULL)
        return cf_err_set(CF_E_PARSE, "certificate has neither a hwID nor a cspId extension");
    if (hwid != NULL) {
        CF_GUARD(ext_hwid(hwid, e.product, e.hwid, &e.hwid_len));
    } else {
        CF_GUARD(ext_ia5(csp, EXT_CSP_ID, CF_SNP_CSP_ID_MAX, e.csp_id));
        e.is_vlek = true;
    }
    *ret = e;
    return 0;
}
