/*
 * AMD SEV-SNP attestation report: parse, encode, TCB layouts, signature.
 *
 * Spec: AMD "SEV Secure Nested Paging Firmware ABI Specification" (pub. 56860),
 * "ATTESTATION_REPORT Structure" (Table 22 in rev 1.55, Table 23 in later revisions),
 * "TCB_VERSION Structure" and "Guest Policy Structure"; the signature format is
 * the ABI's "ECDSA P-384 with SHA-384 Signature" (r and s as 72-byte
 * little-endian integers) over bytes 0x000-0x29F of the report.
 *
 * Reserved-field policy: a field is rejected when non-zero only if every ABI
 * revision that defines the report version marks it reserved/MBZ and every real
 * report we have (Milan v2/v3, Genoa v3, Turin v5, ../shared/testdata) carries
 * zero there. PLATFORM_INFO and the upper GUEST_POLICY bits are NOT checked:
 * AMD adds flags there without bumping the report version (Turin v5 reports
 * 0x67), so rejecting unknown bits would reject real hardware. VMPL is not
 * range-checked either: which VMPLs are acceptable is policy (verify.c).
 */
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <string.h>

#include "attest/snp.h"
#include "base/buf.h"
#include "base/err.h"

/* Offsets (ABI ATTESTATION_REPORT table) used for messages and by sign/verify. */
#define OFF_SIG_ALGO 0x034
#define OFF_SIG_R 0x2A0
#define OFF_SIG_S 0x2E8
#define OFF_SIG_RESERVED 0x330
#define SIG_RESERVED_LEN (CF_SNP_REPORT_LEN - OFF_SIG_RESERVED) /* 0x330-0x49F */

/* KEY_INFO (0x048): bit 0 AUTHOR_KEY_EN, bit 1 MASK_CHIP_KEY, bits 4:2 SIGNING_KEY,
 * bits 31:5 reserved (MBZ). */
#define KEY_INFO_DEFINED_MASK 0x1Fu
#define KEY_INFO_SIGNING_KEY_SHIFT 2
#define KEY_INFO_SIGNING_KEY_MASK 0x7u

_Static_assert(CF_SNP_REPORT_LEN == CF_SNP_REPORT_SIZE, "report size constants disagree");

static bool version_supported(uint32_t v) { return v == 2 || v == 3 || v == 5; }

/* Reads n bytes that the ABI marks reserved (must be zero). */
static int get_mbz(cf_buf *b, size_t n)
{
    size_t off = b->rpos;
    const uint8_t *p;

    CF_GUARD(cf_buf_get_ptr(b, n, &p));
    for (size_t i = 0; i < n; i++)
        if (p[i] != 0)
            return cf_err_set(CF_E_PARSE, "reserved report byte 0x%03zx is not zero", off + i);
    return 0;
}

/* Reads a field that only exists from report version `since`; before that the
 * bytes are reserved and must be zero. */
static int get_versioned(cf_buf *b, uint32_t version, uint32_t since, void *out, size_t n)
{
    size_t off = b->rpos;
    const uint8_t *p;

    if (version >= since)
        return cf_buf_get(b, out, n);
    CF_GUARD(cf_buf_get_ptr(b, n, &p));
    for (size_t i = 0; i < n; i++)
        if (p[i] != 0)
            return cf_err_set(CF_E_PARSE,
                              "report byte 0x%03zx is reserved before version %u and must be zero"
                              " (version %u)",
                              off + i, since, version);
    memset(out, 0, n);
    return 0;
}

int cf_snp_report_parse(const uint8_t *data, size_t len, cf_snp_report *ret)
{
    cf_snp_report r;
    cf_buf b;
    uint8_t cpuid[3], mit[16];
    uint32_t signing_key;

    CF_ENSURE(data != NULL && ret != NULL, CF_E_INVAL);
    if (len < CF_SNP_REPORT_LEN)
        return cf_err_set(CF_E_TRUNCATED, "attestation report is %zu bytes, expected %d", len,
                          CF_SNP_REPORT_LEN);
    if (len > CF_SNP_REPORT_LEN)
        return cf_err_set(CF_E_TRAILING, "attestation report is %zu bytes, expected %d", len,
                          CF_SNP_REPORT_LEN);
    memset(&r, 0, sizeof(r));
    cf_buf_view(&b, data, len);

    /* 0x000 VERSION: 2; 3 adds CPUID_FAM_ID/MOD_ID/STEP; 5 adds LAUNCH/CURRENT_MIT_VECTOR.
     * Other values (1, 4, 6, ...) have layouts we do not know: reject. */
    CF_GUARD(cf_buf_get_u32le(&b, &r.version));
    if (!version_supported(r.version))
        return cf_err_set(CF_E_UNSUPPORTED, "unsupported report version %u", r.version);
    CF_GUARD(cf_buf_get_u32le(&b, &r.guest_svn)); /* 0x004 */
    CF_GUARD(cf_buf_get_u64le(&b, &r.policy));    /* 0x008 */
    /* Guest Policy bit 17 is "reserved, must be one": SNP_LAUNCH_START refuses a
     * policy without it, so no genuine report can carry it clear. */
    if ((r.policy & CF_SNP_POLICY_RESERVED_1) == 0)
        return cf_err_set(CF_E_PARSE, "guest policy bit 17 (reserved, must be one) is clear");
    CF_GUARD(cf_buf_get(&b, r.family_id, sizeof(r.family_id))); /* 0x010 */
    CF_GUARD(cf_buf_get(&b, r.image_id, sizeof(r.image_id)));   /* 0x020 */
    CF_GUARD(cf_buf_get_u32le(&b, &r.vmpl));                    /* 0x030 */
    CF_GUARD(cf_buf_get_u32le(&b, &r.signature_algo));          /* 0x034 */
    if (r.signature_algo != CF_SNP_SIG_ALGO_ECDSA_P384_SHA384)
        return cf_err_set(CF_E_UNSUPPORTED, "unsupported signature algorithm %u", r.signature_algo);
    CF_GUARD(cf_buf_get_u64le(&b, &r.current_tcb_raw)); /* 0x038 */
    CF_GUARD(cf_buf_get_u64le(&b, &r.platform_info));   /* 0x040 */
    CF_GUARD(cf_buf_get_u32le(&b, &r.key_info));        /* 0x048 */
    if ((r.key_info & ~KEY_INFO_DEFINED_MASK) != 0)
        return cf_err_set(CF_E_PARSE, "reserved KEY_INFO bits set (0x%08x)", r.key_info);
    signing_key = (r.key_info >> KEY_INFO_SIGNING_KEY_SHIFT) & KEY_INFO_SIGNING_KEY_MASK;
    if (signing_key != CF_SNP_KEY_VCEK && signing_key != CF_SNP_KEY_VLEK &&
        signing_key != CF_SNP_KEY_NONE)
        return cf_err_set(CF_E_PARSE, "reserved SIGNING_KEY value %u", signing_key);
    CF_GUARD(get_mbz(&b, 4));                                                   /* 0x04C */
    CF_GUARD(cf_buf_get(&b, r.report_data, sizeof(r.report_data)));             /* 0x050 */
    CF_GUARD(cf_buf_get(&b, r.measurement, sizeof(r.measurement)));             /* 0x090 */
    CF_GUARD(cf_buf_get(&b, r.host_data, sizeof(r.host_data)));                 /* 0x0C0 */
    CF_GUARD(cf_buf_get(&b, r.id_key_digest, sizeof(r.id_key_digest)));         /* 0x0E0 */
    CF_GUARD(cf_buf_get(&b, r.author_key_digest, sizeof(r.author_key_digest))); /* 0x110 */
    CF_GUARD(cf_buf_get(&b, r.report_id, sizeof(r.report_id)));                 /* 0x140 */
    CF_GUARD(cf_buf_get(&b, r.report_id_ma, sizeof(r.report_id_ma)));           /* 0x160 */
    CF_GUARD(cf_buf_get_u64le(&b, &r.reported_tcb_raw));                        /* 0x180 */
    /* 0x188-0x18A CPUID_FAM_ID, CPUID_MOD_ID, CPUID_STEP: version 3 and later. */
    CF_GUARD(get_versioned(&b, r.version, 3, cpuid, sizeof(cpuid)));
    r.cpuid_fam_id = cpuid[0];
    r.cpuid_mod_id = cpuid[1];
    r.cpuid_step = cpuid[2];
    CF_GUARD(get_mbz(&b, 0x1A0 - 0x18B));                   /* 0x18B-0x19F */
    CF_GUARD(cf_buf_get(&b, r.chip_id, sizeof(r.chip_id))); /* 0x1A0 */
    CF_GUARD(cf_buf_get_u64le(&b, &r.committed_tcb_raw));   /* 0x1E0 */
    CF_GUARD(cf_buf_get_u8(&b, &r.current_build));          /* 0x1E8 */
    CF_GUARD(cf_buf_get_u8(&b, &r.current_minor));          /* 0x1E9 */
    CF_GUARD(cf_buf_get_u8(&b, &r.current_major));          /* 0x1EA */
    CF_GUARD(get_mbz(&b, 1));                               /* 0x1EB */
    CF_GUARD(cf_buf_get_u8(&b, &r.committed_build));        /* 0x1EC */
    CF_GUARD(cf_buf_get_u8(&b, &r.committed_minor));        /* 0x1ED */
    CF_GUARD(cf_buf_get_u8(&b, &r.committed_major));        /* 0x1EE */
    CF_GUARD(get_mbz(&b, 1));                               /* 0x1EF */
    CF_GUARD(cf_buf_get_u64le(&b, &r.launch_tcb_raw));      /* 0x1F0 */
    /* 0x1F8 LAUNCH_MIT_VECTOR, 0x200 CURRENT_MIT_VECTOR: version 5 and later. */
    CF_GUARD(get_versioned(&b, r.version, 5, mit, sizeof(mit)));
    {
        cf_buf m;
        cf_buf_view(&m, mit, sizeof(mit));
        CF_GUARD(cf_buf_get_u64le(&m, &r.launch_mit_vector));
        CF_GUARD(cf_buf_get_u64le(&m, &r.current_mit_vector));
    }
    CF_GUARD(get_mbz(&b, OFF_SIG_R - 0x208)); /* 0x208-0x29F */
    /* 0x2A0 SIGNATURE: r and s (72 bytes each, little-endian); the rest of the
     * 512-byte signature field is reserved. It lies outside the signed range,
     * so rejecting junk there keeps the report bytes non-malleable. */
    CF_GUARD(cf_buf_get(&b, r.sig_r, sizeof(r.sig_r)));
    CF_GUARD(cf_buf_get(&b, r.sig_s, sizeof(r.sig_s)));
    CF_GUARD(get_mbz(&b, SIG_RESERVED_LEN));
    CF_GUARD(cf_buf_expect_end(&b));

    *ret = r;
    return 0;
}

static int put_zero(cf_buf *b, size_t n)
{
    uint8_t *p;
    CF_GUARD(cf_buf_put_space(b, n, &p));
    memset(p, 0, n);
    return 0;
}

int cf_snp_report_encode(const cf_snp_report *r, uint8_t out[CF_SNP_REPORT_LEN])
{
    cf_buf b;
    uint32_t signing_key;
    int rc;

    CF_ENSURE(r != NULL && out != NULL, CF_E_INVAL);
    /* Encode only what parse accepts, so that parse(encode(r)) always succeeds. */
    if (!version_supported(r->version))
        return cf_err_set(CF_E_INVAL, "unsupported report version %u", r->version);
    if (r->signature_algo != CF_SNP_SIG_ALGO_ECDSA_P384_SHA384)
        return cf_err_set(CF_E_INVAL, "unsupported signature algorithm %u", r->signature_algo);
    if ((r->policy & CF_SNP_POLICY_RESERVED_1) == 0)
        return cf_err_set(CF_E_INVAL, "guest policy bit 17 (reserved, must be one) is clear");
    signing_key = (r->key_info >> KEY_INFO_SIGNING_KEY_SHIFT) & KEY_INFO_SIGNING_KEY_MASK;
    if ((r->key_info & ~KEY_INFO_DEFINED_MASK) != 0 ||
        (signing_key != CF_SNP_KEY_VCEK && signing_key != CF_SNP_KEY_VLEK &&
         signing_key != CF_SNP_KEY_NONE))
        return cf_err_set(CF_E_INVAL, "invalid KEY_INFO 0x%08x", r->key_info);
    if (r->version < 3 && (r->cpuid_fam_id | r->cpuid_mod_id | r->cpuid_step) != 0)
        return cf_err_set(CF_E_INVAL, "CPUID fields need report version 3 or later");
    if (r->version < 5 && (r->launch_mit_vector | r->current_mit_vector) != 0)
        return cf_err_set(CF_E_INVAL, "mitigation vectors need report version 5 or later");

    cf_buf_init(&b, CF_SNP_REPORT_LEN);
    CF_GUARD_OUT(cf_buf_put_u32le(&b, r->version));                   /* 0x000 */
    CF_GUARD_OUT(cf_buf_put_u32le(&b, r->guest_svn));                 /* 0x004 */
    CF_GUARD_OUT(cf_buf_put_u64le(&b, r->policy));                    /* 0x008 */
    CF_GUARD_OUT(cf_buf_put(&b, r->family_id, sizeof(r->family_id))); /* 0x010 */
    CF_GUARD_OUT(cf_buf_put(&b, r->image_id, sizeof(r->image_id)));   /* 0x020 */
    CF_GUARD_OUT(cf_buf_put_u32le(&b, r->vmpl));                      /* 0x030 */
    CF_GUARD_OUT(cf_buf_put_u32le(&b, r->signature_algo));            /* 0x034 */
    CF_GUARD_OUT(cf_buf_put_u64le(&b, r->current_tcb_raw));           /* 0x038 */
    CF_GUARD_OUT(cf_buf_put_u64le(&b, r->platform_info));             /* 0x040 */
    CF_GUARD_OUT(cf_buf_put_u32le(&b, r->key_info));                  /* 0x048 */
    CF_GUARD_OUT(put_zero(&b, 4));                                    /* 0x04C */
    CF_GUARD_OUT(cf_buf_put(&b, r->report_data, sizeof(r->report_data)));
    CF_GUARD_OUT(cf_buf_put(&b, r->measurement, sizeof(r->measurement)));
    CF_GUARD_OUT(cf_buf_put(&b, r->host_data, sizeof(r->host_data)));
    CF_GUARD_OUT(cf_buf_put(&b, r->id_key_digest, sizeof(r->id_key_digest)));
    CF_GUARD_OUT(cf_buf_put(&b, r->author_key_digest, sizeof(r->author_key_digest)));
    CF_GUARD_OUT(cf_buf_put(&b, r->report_id, sizeof(r->report_id)));
    CF_GUARD_OUT(cf_buf_put(&b, r->report_id_ma, sizeof(r->report_id_ma)));
    CF_GUARD_OUT(cf_buf_put_u64le(&b, r->reported_tcb_raw)); /* 0x180 */
    CF_GUARD_OUT(cf_buf_put_u8(&b, r->cpuid_fam_id));        /* 0x188 */
    CF_GUARD_OUT(cf_buf_put_u8(&b, r->cpuid_mod_id));        /* 0x189 */
    CF_GUARD_OUT(cf_buf_put_u8(&b, r->cpuid_step));          /* 0x18A */
    CF_GUARD_OUT(put_zero(&b, 0x1A0 - 0x18B));
    CF_GUARD_OUT(cf_buf_put(&b, r->chip_id, sizeof(r->chip_id))); /* 0x1A0 */
    CF_GUARD_OUT(cf_buf_put_u64le(&b, r->committed_tcb_raw));     /* 0x1E0 */
    CF_GUARD_OUT(cf_buf_put_u8(&b, r->current_build));
    CF_GUARD_OUT(cf_buf_put_u8(&b, r->current_minor));
    CF_GUARD_OUT(cf_buf_put_u8(&b, r->current_major));
    CF_GUARD_OUT(put_zero(&b, 1)); /* 0x1EB */
    CF_GUARD_OUT(cf_buf_put_u8(&b, r->committed_build));
    CF_GUARD_OUT(cf_buf_put_u8(&b, r->committed_minor));
    CF_GUARD_OUT(cf_buf_put_u8(&b, r->committed_major));
    CF_GUARD_OUT(put_zero(&b, 1));                             /* 0x1EF */
    CF_GUARD_OUT(cf_buf_put_u64le(&b, r->launch_tcb_raw));     /* 0x1F0 */
    CF_GUARD_OUT(cf_buf_put_u64le(&b, r->launch_mit_vector));  /* 0x1F8 */
    CF_GUARD_OUT(cf_buf_put_u64le(&b, r->current_mit_vector)); /* 0x200 */
    CF_GUARD_OUT(put_zero(&b, OFF_SIG_R - 0x208));
    CF_GUARD_OUT(cf_buf_put(&b, r->sig_r, sizeof(r->sig_r))); /* 0x2A0 */
    CF_GUARD_OUT(cf_buf_put(&b, r->sig_s, sizeof(r->sig_s))); /* 0x2E8 */
    CF_GUARD_OUT(put_zero(&b, SIG_RESERVED_LEN));
    CF_ENSURE_OUT(b.len == CF_SNP_REPORT_LEN, CF_E_INTERNAL);
    memcpy(out, b.data, CF_SNP_REPORT_LEN);
    rc = 0;
out:
    cf_buf_free(&b);
    return rc;
}

cf_snp_signing_key cf_snp_report_signing_key(const cf_snp_report *r)
{
    return (cf_snp_signing_key)((r->key_info >> KEY_INFO_SIGNING_KEY_SHIFT) &
                                KEY_INFO_SIGNING_KEY_MASK);
}

/* CPUID Fn0000_0001_EAX family/model as the report gives them (extended family
 * already added, model = ext_model:base_model). Milan: family 19h models
 * 00h-0Fh; Genoa (incl. Bergamo/Siena): 19h models 10h-1Fh and A0h-AFh; Turin
 * (incl. Turin dense): 1Ah models 00h-11h. Real reports: Milan 19h/01h, Genoa
 * 19h/11h, Turin 1Ah/02h. */
cf_snp_product cf_snp_product_from_cpuid(uint8_t family, uint8_t model)
{
    if (family == 0x19) {
        if (model <= 0x0F)
            return CF_SNP_PRODUCT_MILAN;
        if ((model >= 0x10 && model <= 0x1F) || (model >= 0xA0 && model <= 0xAF))
            return CF_SNP_PRODUCT_GENOA;
    } else if (family == 0x1A && model <= 0x11) {
        return CF_SNP_PRODUCT_TURIN;
    }
    return CF_SNP_PRODUCT_UNKNOWN;
}

cf_snp_product cf_snp_report_product(const cf_snp_report *r)
{
    if (r->version < 3)
        return CF_SNP_PRODUCT_UNKNOWN;
    return cf_snp_product_from_cpuid(r->cpuid_fam_id, r->cpuid_mod_id);
}

/* TCB_VERSION byte positions. Milan/Genoa: 0 BOOT_LOADER, 1 TEE, 2-5 reserved,
 * 6 SNP, 7 MICROCODE. Turin: 0 FMC, 1 BOOT_LOADER, 2 TEE, 3 SNP, 4-6 reserved,
 * 7 MICROCODE. Unknown products (v2 reports) use the Milan/Genoa layout: every
 * Turin report is version 3 or later and so names its product. */
static uint8_t tcb_byte(uint64_t raw, unsigned i) { return (uint8_t)(raw >> (8 * i)); }

void cf_snp_tcb_decode(uint64_t raw, cf_snp_product product, cf_snp_tcb *ret)
{
    cf_snp_tcb t;

    memset(&t, 0, sizeof(t));
    t.raw = raw;
    if (product == CF_SNP_PRODUCT_TURIN) {
        t.fmc = tcb_byte(raw, 0);
        t.bootloader = tcb_byte(raw, 1);
        t.tee = tcb_byte(raw, 2);
        t.snp = tcb_byte(raw, 3);
    } else {
        t.bootloader = tcb_byte(raw, 0);
        t.tee = tcb_byte(raw, 1);
        t.snp = tcb_byte(raw, 6);
    }
    t.microcode = tcb_byte(raw, 7);
    *ret = t;
}

uint64_t cf_snp_tcb_encode(const cf_snp_tcb *tcb, cf_snp_product product)
{
    uint64_t raw;

    if (product == CF_SNP_PRODUCT_TURIN)
        raw = (uint64_t)tcb->fmc | (uint64_t)tcb->bootloader << 8 | (uint64_t)tcb->tee << 16 |
              (uint64_t)tcb->snp << 24;
    else
        raw = (uint64_t)tcb->bootloader | (uint64_t)tcb->tee << 8 | (uint64_t)tcb->snp << 48;
    return raw | (uint64_t)tcb->microcode << 56;
}

bool cf_snp_tcb_eq(const cf_snp_tcb *a, const cf_snp_tcb *b, cf_snp_product product)
{
    if (a->bootloader != b->bootloader || a->tee != b->tee || a->snp != b->snp ||
        a->microcode != b->microcode)
        return false;
    return product != CF_SNP_PRODUCT_TURIN || a->fmc == b->fmc;
}

const char *cf_snp_product_name(cf_snp_product p)
{
    switch (p) {
    case CF_SNP_PRODUCT_MILAN: return "Milan";
    case CF_SNP_PRODUCT_GENOA: return "Genoa";
    case CF_SNP_PRODUCT_TURIN: return "Turin";
    case CF_SNP_PRODUCT_UNKNOWN: break;
    }
    return "unknown";
}

/* ---- signature (ABI "ECDSA P-384 with SHA-384 Signature") ---- */

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

/* Reads the 4-byte SIGNATURE_ALGO at 0x034 of a raw report. */
static int raw_sig_algo(const uint8_t raw[CF_SNP_REPORT_LEN], uint32_t *ret)
{
    cf_buf b;
    cf_buf_view(&b, raw, CF_SNP_REPORT_LEN);
    CF_GUARD(cf_buf_skip(&b, OFF_SIG_ALGO));
    return cf_buf_get_u32le(&b, ret);
}

/* 72-byte little-endian field -> BIGNUM (the ABI stores r and s LE, zero-padded). */
static BIGNUM *le72_to_bn(const uint8_t *le)
{
    uint8_t be[CF_SNP_SIG_COMPONENT_LEN];
    for (size_t i = 0; i < CF_SNP_SIG_COMPONENT_LEN; i++)
        be[i] = le[CF_SNP_SIG_COMPONENT_LEN - 1 - i];
    return BN_bin2bn(be, (int)sizeof(be), NULL);
}

static int bn_to_le72(const BIGNUM *bn, uint8_t *le)
{
    uint8_t be[CF_SNP_SIG_COMPONENT_LEN];
    if (BN_bn2binpad(bn, be, (int)sizeof(be)) != (int)sizeof(be))
        return CF_E_CRYPTO;
    for (size_t i = 0; i < CF_SNP_SIG_COMPONENT_LEN; i++)
        le[i] = be[CF_SNP_SIG_COMPONENT_LEN - 1 - i];
    return 0;
}

int cf_snp_report_verify_signature(const uint8_t raw[CF_SNP_REPORT_LEN], X509 *signer)
{
    EVP_PKEY *pk;
    EVP_MD_CTX *md = NULL;
    ECDSA_SIG *sig = NULL;
    BIGNUM *r = NULL, *s = NULL;
    unsigned char *der = NULL;
    const uint8_t *pr, *ps;
    uint32_t algo;
    cf_buf b;
    int derlen, rc;

    CF_ENSURE(raw != NULL && signer != NULL, CF_E_INVAL);
    CF_GUARD(raw_sig_algo(raw, &algo));
    if (algo != CF_SNP_SIG_ALGO_ECDSA_P384_SHA384)
        return cf_err_set(CF_E_UNSUPPORTED, "unsupported signature algorithm %u", algo);
    pk = X509_get0_pubkey(signer);
    if (!is_p384(pk)) {
        ERR_clear_error();
        return cf_err_set(CF_E_UNSUPPORTED, "report signing key is not ECDSA P-384");
    }
    cf_buf_view(&b, raw, CF_SNP_REPORT_LEN);
    CF_GUARD(cf_buf_skip(&b, OFF_SIG_R));
    CF_GUARD(cf_buf_get_ptr(&b, CF_SNP_SIG_COMPONENT_LEN, &pr));
    CF_GUARD(cf_buf_get_ptr(&b, CF_SNP_SIG_COMPONENT_LEN, &ps));

    /* Re-encode as the DER ECDSA-Sig-Value that EVP expects. */
    r = le72_to_bn(pr);
    s = le72_to_bn(ps);
    sig = ECDSA_SIG_new();
    CF_ENSURE_OUT(r != NULL && s != NULL && sig != NULL, CF_E_NOMEM);
    CF_ENSURE_OUT(ECDSA_SIG_set0(sig, r, s) == 1, CF_E_CRYPTO);
    r = s = NULL; /* owned by sig */
    derlen = i2d_ECDSA_SIG(sig, &der);
    CF_ENSURE_OUT(derlen > 0, CF_E_CRYPTO);

    md = EVP_MD_CTX_new();
    CF_ENSURE_OUT(md != NULL, CF_E_NOMEM);
    CF_ENSURE_OUT(EVP_DigestVerifyInit(md, NULL, EVP_sha384(), NULL, pk) == 1, CF_E_CRYPTO);
    if (EVP_DigestVerify(md, der, (size_t)derlen, raw, CF_SNP_SIGNED_LEN) != 1) {
        rc = cf_err_set(CF_E_SIGNATURE, "attestation report signature does not verify");
        goto out;
    }
    rc = 0;
out:
    ERR_clear_error();
    OPENSSL_free(der);
    ECDSA_SIG_free(sig);
    BN_free(r);
    BN_free(s);
    EVP_MD_CTX_free(md);
    return rc;
}

int cf_snp_report_sign(uint8_t raw[CF_SNP_REPORT_LEN], EVP_PKEY *p384_key)
{
    EVP_MD_CTX *md = NULL;
    ECDSA_SIG *sig = NULL;
    unsigned char *der = NULL;
    const unsigned char *p;
    const BIGNUM *r, *s;
    uint8_t r_le[CF_SNP_SIG_COMPONENT_LEN], s_le[CF_SNP_SIG_COMPONENT_LEN];
    size_t derlen = 0;
    uint32_t algo;
    int rc;

    CF_ENSURE(raw != NULL && p384_key != NULL, CF_E_INVAL);
    CF_GUARD(raw_sig_algo(raw, &algo));
    if (algo != CF_SNP_SIG_ALGO_ECDSA_P384_SHA384)
        return cf_err_set(CF_E_INVAL, "unsupported signature algorithm %u", algo);
    if (!is_p384(p384_key)) {
        ERR_clear_error();
        return cf_err_set(CF_E_INVAL, "report signing key is not ECDSA P-384");
    }

    md = EVP_MD_CTX_new();
    CF_ENSURE_OUT(md != NULL, CF_E_NOMEM);
    CF_ENSURE_OUT(EVP_DigestSignInit(md, NULL, EVP_sha384(), NULL, p384_key) == 1, CF_E_CRYPTO);
    CF_ENSURE_OUT(EVP_DigestSign(md, NULL, &derlen, raw, CF_SNP_SIGNED_LEN) == 1, CF_E_CRYPTO);
    der = OPENSSL_malloc(derlen);
    CF_ENSURE_OUT(der != NULL, CF_E_NOMEM);
    CF_ENSURE_OUT(EVP_DigestSign(md, der, &derlen, raw, CF_SNP_SIGNED_LEN) == 1, CF_E_CRYPTO);
    p = der;
    sig = d2i_ECDSA_SIG(NULL, &p, (long)derlen);
    CF_ENSURE_OUT(sig != NULL, CF_E_CRYPTO);
    ECDSA_SIG_get0(sig, &r, &s);
    CF_GUARD_OUT(bn_to_le72(r, r_le));
    CF_GUARD_OUT(bn_to_le72(s, s_le));
    /* The signature field lies outside the signed range 0x000-0x29F. */
    memcpy(&raw[OFF_SIG_R], r_le, sizeof(r_le));
    memcpy(&raw[OFF_SIG_S], s_le, sizeof(s_le));
    rc = 0;
out:
    ERR_clear_error();
    ECDSA_SIG_free(sig);
    OPENSSL_free(der);
    EVP_MD_CTX_free(md);
    return rc;
}
