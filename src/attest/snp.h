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
 * ABI requires to be zero (with a cf_err_set reason). */
int cf_snp_report_parse(const uint8_t *data, size_t len, cf_snp_report *ret) CF_WUR;
/* Serialises a report (the inverse of parse; reserved bytes zero). out: CF_SNP_REPORT_LEN bytes. */
int cf_snp_report_encode(const cf_snp_report *r, uint8_t out[CF_SNP_REPORT_LEN]) CF_WUR;

cf_snp_signing_key cf_snp_report_signing_key(const cf_snp_report *r);
/* Product from CPUID family/model (v3+); CF_SNP_PRODUCT_UNKNOWN for v2. */
cf_snp_product cf_snp_report_product(const cf_snp_report *r);
/* Decodes a TCB_VERSION for a product (layouts differ on Turin). */
void cf_snp_tcb_decode(uint64_t raw, cf_snp_product product, cf_snp_tcb *ret);
uint64_t cf_snp_tcb_encode(const cf_snp_tcb *tcb, cf_snp_product product);
const char *cf_snp_product_name(cf_snp_product p); /* "Milan", "Genoa", "Turin", "unknown" */

/* Verifies the report signature (ECDSA P-384/SHA-384 over bytes 0x000-0x29F of
 * raw, r/s little-endian) with the public key of the VCEK/VLEK cert. */
int cf_snp_report_verify_signature(const uint8_t raw[CF_SNP_REPORT_LEN], X509 *signer) CF_WUR;
/* Signs bytes 0x000-0x29F of raw with a P-384 private key and writes r/s into raw
 * (used by the simulated secure processor). */
int cf_snp_report_sign(uint8_t raw[CF_SNP_REPORT_LEN], EVP_PKEY *p384_key) CF_WUR;

/* AMD extensions of a VCEK/VLEK certificate (OIDs 1.3.6.1.4.1.3704.1.*). */
typedef struct {
    cf_snp_product product;   /* from productName1 (e.g. "Milan-B0") */
    char product_name[32];
    bool is_vlek;             /* has csp_id (1.3.6.1.4.1.3704.1.5), no hwID */
    cf_snp_tcb tcb;           /* blSPL, teeSPL, snpSPL, ucodeSPL, fmcSPL */
    uint8_t hwid[64];         /* chip id (VCEK only) */
    size_t hwid_len;          /* 64, or 8 on Turin; 0 for VLEK */
} cf_snp_cert_ext;

/* Parses the AMD extensions from a certificate. Bounded; rejects malformed,
 * duplicate or wrongly typed extension values. */
int cf_snp_cert_parse_ext(X509 *cert, cf_snp_cert_ext *ret) CF_WUR;

/* Pinned trust anchors: ARK + ASK (VCEK chain) or ARK + ASVK (VLEK chain). */
typedef struct cf_snp_roots cf_snp_roots;
/* Built-in public AMD chains for Milan, Genoa and Turin (VCEK and VLEK). */
int cf_snp_roots_amd(cf_snp_roots **ret) CF_WUR;
/* Empty set; add chains (PEM: ASK/ASVK first, then ARK) per product. */
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

#endif
