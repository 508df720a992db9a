/*
 * AMD SEV-SNP attestation report and VCEK/VLEK certificates.
 *
 * Layout: AMD "SEV Secure Nested Paging Firmware ABI Specification",
 * ATTESTATION_REPORT structure (Table "ATTESTATION_REPORT Structure") and
 * TCB_VERSION structure; certificate extensions: AMD "Versioned Chip
 * Endorsement Key (VCEK) Certificate and KDS Interface Specification".
 *
 * This header is the contract between the report parser/encoder and chain
 * verifier (snp_report.c, snp_cert.c), the policy verifier (verify.c) and the
 * simulated secure processor (coffer-launch), which emits the same bytes.
 */
#ifndef COFFER_ATTEST_SNP_H
#define COFFER_ATTEST_SNP_H

#include <openssl/x509.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "base/compiler.h"
#include "base/limits.h"

#define CF_SNP_REPORT_LEN 1184          /* 0x4A0 */
#define CF_SNP_SIGNED_LEN 0x2A0         /* signature covers bytes 0x000-0x29F */
#define CF_SNP_SIG_ALGO_ECDSA_P384_SHA384 1
#define CF_SNP_SIG_COMPONENT_LEN 72     /* r and s: 72-byte little-endian fields */

/* Guest policy bits (ABI "Guest Policy Structure"). */
#define CF_SNP_POLICY_SMT (1ull << 16)
#define CF_SNP_POLICY_RESERVED_1 (1ull << 17) /* must be 1 */
#define CF_SNP_POLICY_MIGRATE_MA (1ull << 18)
#define CF_SNP_POLICY_DEBUG (1ull << 19)
#define CF_SNP_POLICY_SINGLE_SOCKET (1ull << 20)

/* Which key signed the report: key_info bits 4:2 (SIGNING_KEY). */
typedef enum { CF_SNP_KEY_VCEK = 0, CF_SNP_KEY_VLEK = 1, CF_SNP_KEY_NONE = 7 } cf_snp_signing_key;

typedef enum {
    CF_SNP_PRODUCT_UNKNOWN = 0,
    CF_SNP_PRODUCT_MILAN,
    CF_SNP_PRODUCT_GENOA,
    CF_SNP_PRODUCT_TURIN,
} cf_snp_product;

/* TCB_VERSION decoded. Milan/Genoa: byte0 bootloader, byte1 TEE, byte6 SNP,
 * byte7 microcode. Turin: byte0 FMC, byte1 bootloader, byte2 TEE, byte3 SNP,
 * byte7 microcode. `raw` is the little-endian u64 as it stands in the report. */
typedef struct {
    uint64_t raw;
    uint8_t bootloader, tee, snp, microcode, fmc; /* fmc only meaningful on Turin */
} cf_snp_tcb;

/* Every field of the report, in ABI order. Byte arrays are copied verbatim. */
typedef struct {
    uint32_t version;                 /* 0x000: 2, 3 or 5 accepted */
    uint32_t guest_svn;               /* 0x004 */
    uint64_t policy;                  /* 0x008 */
    uint8_t family_id[16];            /* 0x010 */
    uint8_t image_id[16];             /* 0x020 */
    uint32_t vmpl;                    /* 0x030 */
    uint32_t signature_algo;          /* 0x034 */
    uint64_t current_tcb_raw;         /* 0x038 */
    uint64_t platform_info;           /* 0x040 */
    uint32_t key_info;                /* 0x048: bit0 AUTHOR_KEY_EN, bit1 MASK_CHIP_KEY, bits 4:2 SIGNING_KEY */
    uint8_t report_data[64];          /* 0x050 */
    uint8_t measurement[48];          /* 0x090 */
    uint8_t host_data[32];            /* 0x0C0 */
    uint8_t id_key_digest[48];        /* 0x0E0 */
    uint8_t author_key_digest[48];    /* 0x110 */
    uint8_t report_id[32];            /* 0x140 */
    uint8_t report_id_ma[32];         /* 0x160 */
    uint64_t reported_tcb_raw;        /* 0x180 */
    uint8_t cpuid_fam_id;             /* 0x188 (v3+) */
    uint8_t cpuid_mod_id;             /* 0x189 (v3+) */
    uint8_t cpuid_step;               /* 0x18A (v3+) */
    uint8_t chip_id[64];              /* 0x1A0 */
    uint64_t committed_tcb_raw;       /* 0x1E0 */
    uint8_t current_build, current_minor, current_major;       /* 0x1E8.. */
    uint8_t committed_build, committed_minor, committed_major; /* 0x1EC.. */
    uint64_t launch_tcb_raw;          /* 0x1F0 */
    uint64_t launch_mit_vector;       /* 0x1F8 (v5) */
    uint64_t current_mit_vector;      /* 0x200 (v5) */
    uint8_t sig_r[72];                /* 0x2A0, little-endian */
    uint8_t sig_s[72];                /* 0x2E8, little-endian */
} cf_snp_report;

/* Parses exactly CF_SNP_REPORT_LEN bytes. Rejects other lengths, versions other
 * than 2/3/5, unknown signature algorithms and non-zero reserved fields that the
 * ABI requires to be zero (with a cf_err_set reason). Errors: CF_E_TRUNCATED
 * (shorter), CF_E_TRAILING (longer), CF_E_UNSUPPORTED ("unsupported report
 * version N", "unsupported signature algorithm N"), CF_E_PARSE (a reserved
 * byte or bit set, SIGNING_KEY 2-6, guest policy bit 17 clear). CPUID fields
 * are read from version 3, mitigation vectors from version 5; before that their
 * bytes are reserved. PLATFORM_INFO and unknown upper policy bits are kept, not
 * rejected (firmware adds flags without a version bump). The signature is not
 * checked here: see cf_snp_report_verify_signature. */
int cf_snp_report_parse(const uint8_t *data, size_t len, cf_snp_report *ret) CF_WUR;
/* Serialises a report (the inverse of parse; reserved bytes zero). out: CF_SNP_REPORT_LEN bytes.
 * Refuses (CF_E_INVAL) what parse would reject, so parse(encode(r)) succeeds:
 * version 2/3/5, signature_algo 1, policy bit 17 set, valid key_info, no CPUID
 * fields before v3 and no mitigation vectors before v5. sig_r/sig_s are copied
 * as they are (zero them and call cf_snp_report_sign to sign). */
int cf_snp_report_encode(const cf_snp_report *r, uint8_t out[CF_SNP_REPORT_LEN]) CF_WUR;

cf_snp_signing_key cf_snp_report_signing_key(const cf_snp_report *r);
/* Product from CPUID family/model (v3+); CF_SNP_PRODUCT_UNKNOWN for v2. */
cf_snp_product cf_snp_report_product(const cf_snp_report *r);
/* Decodes a TCB_VERSION for a product (layouts differ on Turin). */
void cf_snp_tcb_decode(uint64_t raw, cf_snp_product product, cf_snp_tcb *ret);
uint64_t cf_snp_tcb_encode(const cf_snp_tcb *tcb, cf_snp_product product);
const char *cf_snp_product_name(cf_snp_product p); /* "Milan", "Genoa", "Turin", "unknown" */
/* Product from a CPUID family/model pair as reported at 0x188/0x189 (v3+). */
cf_snp_product cf_snp_product_from_cpuid(uint8_t family, uint8_t model);
/* Compares the TCB components that matter for the product (bootloader, TEE, SNP,
 * microcode, and FMC on Turin); reserved bytes of `raw` are ignored. Use it to
 * compare a report's reported_tcb with the VCEK's TCB extensions. */
bool cf_snp_tcb_eq(const cf_snp_tcb *a, const cf_snp_tcb *b, cf_snp_product product);

/* Verifies the report signature (ECDSA P-384/SHA-384 over bytes 0x000-0x29F of
 * raw, r/s little-endian) with the public key of the VCEK/VLEK cert. Errors:
 * CF_E_SIGNATURE (does not verify), CF_E_UNSUPPORTED (signature_algo not 1, or
 * the signer's key is not P-384). Does not check the cert: see cf_snp_chain_verify. */
int cf_snp_report_verify_signature(const uint8_t raw[CF_SNP_REPORT_LEN], X509 *signer) CF_WUR;
/* Signs bytes 0x000-0x29F of raw with a P-384 private key and writes r/s into raw
 * (used by the simulated secure processor). raw's signature_algo must be 1. */
int cf_snp_report_sign(uint8_t raw[CF_SNP_REPORT_LEN], EVP_PKEY *p384_key) CF_WUR;

/* AMD extensions of a VCEK/VLEK certificate (OIDs 1.3.6.1.4.1.3704.1.*). */
typedef struct {
    cf_snp_product product;   /* from productName1 (e.g. "Milan-B0") */
    char product_name[32];
    bool is_vlek;             /* has csp_id (1.3.6.1.4.1.3704.1.5), no hwID */
    cf_snp_tcb tcb;           /* blSPL, teeSPL, snpSPL, ucodeSPL, fmcSPL */
    uint8_t hwid[64];         /* chip id (VCEK only) */
    size_t hwid_len;          /* 64, or 8 on Turin; 0 for VLEK */
    uint32_t struct_version;  /* structVersion (1.3.6.1.4.1.3704.1.1); 0 if absent */
    char csp_id[CF_SNP_CSP_ID_MAX + 1]; /* VLEK cspId, NUL-terminated; "" for VCEK */
} cf_snp_cert_ext;

/* Parses the AMD extensions from a certificate. Bounded; rejects malformed,
 * duplicate or wrongly typed extension values. Required: productName1, blSPL,
 * teeSPL, snpSPL, ucodeSPL, fmcSPL exactly on Turin, and exactly one of hwID
 * (VCEK) or cspId (VLEK). An unrecognised productName1 gives
 * CF_SNP_PRODUCT_UNKNOWN (not an error): the caller must reject it. hwID is
 * accepted as the raw bytes AMD emits or wrapped in a DER OCTET STRING. */
int cf_snp_cert_parse_ext(X509 *cert, cf_snp_cert_ext *ret) CF_WUR;

/* Pinned trust anchors: ARK + ASK (VCEK chain) or ARK + ASVK (VLEK chain). */
typedef struct cf_snp_roots cf_snp_roots;
/* Built-in public AMD chains for Milan, Genoa and Turin (VCEK and VLEK). */
int cf_snp_roots_amd(cf_snp_roots **ret) CF_WUR;
/* The built-in PEM (ASK/ASVK then ARK) for product/vlek: static storage, never
 * freed; NULL for CF_SNP_PRODUCT_UNKNOWN. */
const char *cf_snp_roots_amd_pem(cf_snp_product product, bool vlek);
/* Empty set; add chains (PEM: ASK/ASVK first, then ARK) per product.
 * add_pem checks that the ARK is self-signed, that the ASK is a CA signed by
 * it, and that both signatures are RSASSA-PSS with SHA-384, MGF1-SHA-384 and a
 * 48-byte salt (AMD's scheme; a simulated chain must use it too). Each
 * product/vlek slot can be filled once (CF_E_EXISTS otherwise). */
int cf_snp_roots_new(cf_snp_roots **ret) CF_WUR;
int cf_snp_roots_add_pem(cf_snp_roots *roots, cf_snp_product product, bool vlek,
                         const char *pem, size_t len) CF_WUR;
int cf_snp_roots_add_file(cf_snp_roots *roots, cf_snp_product product, bool vlek,
                          const char *path) CF_WUR;
void cf_snp_roots_free(cf_snp_roots *roots);
/* SHA-384 of the ARK's DER for product/vlek (identifies which root a chain used). */
int cf_snp_roots_ark_fingerprint(const cf_snp_roots *roots, cf_snp_product product, bool vlek,
                                 uint8_t out[48]) CF_WUR;

/* Verifies leaf -> ASK/ASVK -> ARK for the product at time `at` (RSA-PSS
 * SHA-384 signatures, ARK self-signed and pinned). crls: optional X509_CRL list
 * (may be NULL). On success *ret_ark_fpr (if non-NULL) receives the ARK's SHA-384. */
int cf_snp_chain_verify(const cf_snp_roots *roots, X509 *leaf, cf_snp_product product, bool vlek,
                        time_t at, STACK_OF(X509_CRL) *crls, uint8_t ret_ark_fpr[48]) CF_WUR;
/* Errors of cf_snp_chain_verify: CF_E_NOT_FOUND (no pinned chain for
 * product/vlek), CF_E_EXPIRED / CF_E_NOT_YET_VALID (a cert outside its validity
 * at `at`), CF_E_REVOKED, CF_E_UNSUPPORTED (leaf key not P-384, or not RSA-PSS
 * SHA-384/salt 48), CF_E_VERIFY (any other chain failure), with a detail.
 * CRLs: AMD's KDS CRL is issued by the ARK and covers the ASK/ASVK; a leaf
 * without an ASK-issued CRL is accepted, an ASK missing from the ARK's CRL
 * list is not (X509_V_FLAG_CRL_CHECK | X509_V_FLAG_CRL_CHECK_ALL). */

/* Memoises successful chain verifications, keyed by SHA-384 over the leaf's
 * DER, the content of the pinned set (every ARK/ASK fingerprint) and
 * product/vlek; each entry also keeps a reference to the parsed leaf. An entry
 * is reused only while `at` lies inside every certificate's validity window,
 * and never when CRLs are given (those calls always run the full check).
 * Failures are not cached. Thread-safe (internal mutex). Owned by the caller;
 * free with cf_snp_chain_cache_free (after the last call using it). */
typedef struct cf_snp_chain_cache cf_snp_chain_cache;
/* capacity: number of entries (0 = default 256; at most CF_SNP_CHAIN_CACHE_MAX). */
int cf_snp_chain_cache_new(size_t capacity, cf_snp_chain_cache **ret) CF_WUR;
void cf_snp_chain_cache_free(cf_snp_chain_cache *cache);
/* cf_snp_chain_verify through the cache (cache may be NULL: no caching). */
int cf_snp_chain_verify_cached(cf_snp_chain_cache *cache, const cf_snp_roots *roots, X509 *leaf,
                               cf_snp_product product, bool vlek, time_t at,
                               STACK_OF(X509_CRL) *crls, uint8_t ret_ark_fpr[48]) CF_WUR;
/* The same from the leaf's DER (at most CF_CERT_MAX_BYTES, one canonical DER
 * certificate, nothing after it): a DER seen before (same bytes, same pins,
 * product and vlek, `at` inside the validity window) is not even re-parsed,
 * which is most of the cost after the signature (d2i of an X.509 with an EC key
 * is slow in OpenSSL 3.0). product CF_SNP_PRODUCT_UNKNOWN takes the product
 * from the certificate's productName1 (for v2 reports, which do not name it).
 * On success *ret_leaf receives a new reference to the certificate (X509_free it). */
int cf_snp_chain_verify_der_cached(cf_snp_chain_cache *cache, const cf_snp_roots *roots,
                                   const uint8_t *der, size_t len, cf_snp_product product,
                                   bool vlek, time_t at, STACK_OF(X509_CRL) *crls,
                                   X509 **ret_leaf, uint8_t ret_ark_fpr[48]) CF_WUR;
/* Hits and misses since creation (for tests and metrics). */
void cf_snp_chain_cache_stats(const cf_snp_chain_cache *cache, uint64_t *ret_hits,
                              uint64_t *ret_misses);

#endif
