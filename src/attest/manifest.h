/*
 * The manifest: the attestation policy that every verifier (client SDK, KMS,
 * attestation service, CLI) applies to evidence (DESIGN.md §3 "Manifest").
 * Schema, canonical form and hash rule: docs/MANIFEST.md.
 *
 * Parsing is strict: unknown fields, JSON null, wrong types, out-of-range
 * values, non-lowercase hex and duplicates are errors, reported through
 * cf_err_set with the path of the offending value, e.g.
 *   "platforms.sev-snp.min_tcb.milan: unknown field 'snp_svn'"
 *   "deployments[0].platforms.sev-snp.measurements[1]: must be 96 lowercase hex digits ..."
 *
 * Ownership: a cf_manifest is immutable after parsing and safe to share between
 * threads. Every pointer returned by an accessor (structs, strings, byte
 * arrays) is borrowed from the manifest and valid until cf_manifest_free.
 */
#ifndef COFFER_ATTEST_MANIFEST_H
#define COFFER_ATTEST_MANIFEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "attest/snp.h"
#include "base/compiler.h"

#define CF_MANIFEST_VERSION 1
#define CF_MANIFEST_HASH_LEN 32 /* SHA-256 */
#define CF_MANIFEST_HASH_PREFIX "sha256:"
#define CF_MANIFEST_HASH_STR_LEN (7 + 2 * CF_MANIFEST_HASH_LEN) /* without NUL */

#define CF_PLATFORM_SEV_SNP "sev-snp"
#define CF_PLATFORM_TDX "tdx" /* reserved: rejected as unsupported */

/* Names of the simulated AMD chain made by coffer-launch (docs/MANIFEST.md
 * "The simulated root"). A custom root whose ARK has this CN is marked
 * simulated; evidence whose leaf issuer CN starts with the prefix is reported
 * as "signed by the simulated root" when the manifest does not trust it. */
#define CF_SIMULATED_ARK_CN "Coffer Simulated ARK"
#define CF_SIMULATED_CN_PREFIX "Coffer Simulated"

#define CF_SNP_PRODUCT_COUNT 4    /* array size indexed by cf_snp_product */
#define CF_SNP_MEASUREMENT_LEN 48 /* SHA-384 launch digest */
#define CF_SNP_HOST_DATA_LEN 32
#define CF_SNP_CHIP_ID_LEN 64
#define CF_ED25519_KEY_LEN 32

/* Minimum TCB for one product: SPL of each component (AMD SEV-SNP ABI
 * "TCB_VERSION"). fmc is only meaningful (and only accepted) for Turin. */
typedef struct {
    bool present;
    uint8_t bootloader, tee, snp, microcode, fmc;
} cf_manifest_tcb;

/* An inline custom root chain (e.g. the simulated one). */
typedef struct {
    char *name; /* unique label, e.g. "coffer-simulated" */
    cf_snp_product product;
    bool vlek;       /* chain is ASVK + ARK (VLEK) rather than ASK + ARK */
    bool simulated;  /* "simulated": true, or the ARK is CF_SIMULATED_ARK_CN */
    char *chain_pem; /* NUL-terminated PEM: ASK/ASVK first, then ARK */
    size_t chain_pem_len;
} cf_manifest_snp_root;

/* Policy for platform "sev-snp". */
typedef struct {
    bool amd[CF_SNP_PRODUCT_COUNT]; /* "amd:<product>": built-in AMD roots pinned */
    cf_manifest_snp_root *roots;    /* inline custom roots */
    size_t n_roots;
    cf_manifest_tcb min_tcb[CF_SNP_PRODUCT_COUNT];
    bool allow_debug;            /* default false */
    uint8_t vmpl_mask;           /* bit i set: VMPL i allowed; default VMPL 0 only */
    bool allow_vcek, allow_vlek; /* "signing_keys"; default both */
    uint8_t (
        *chip_ids)[CF_SNP_CHIP_ID_LEN]; /* allow-list (8-byte ids zero-padded); NULL if absent */
    size_t n_chip_ids;
    bool has_min_guest_svn;
    uint32_t min_guest_svn;
    uint64_t policy_require; /* guest policy bits that must be set */
    uint64_t policy_forbid;  /* guest policy bits that must be clear */
} cf_manifest_snp;

typedef struct {
    char *name;
    char *tenant;
    char **jobs;
    size_t n_jobs;
    uint8_t developer_key[CF_ED25519_KEY_LEN]; /* raw Ed25519 public key (RFC 8032) */
    bool has_snp;                              /* has a "sev-snp" section */
    uint8_t (*snp_measurements)[CF_SNP_MEASUREMENT_LEN];
    size_t n_snp_measurements;
    bool has_host_data;
    uint8_t host_data[CF_SNP_HOST_DATA_LEN];
} cf_manifest_deployment;

typedef struct cf_manifest cf_manifest;

/* Parses and validates a manifest of len bytes (<= CF_MANIFEST_MAX_BYTES). */
int cf_manifest_parse(const void *data, size_t len, cf_manifest **ret) CF_WUR;
/* Reads a file (<= CF_MANIFEST_MAX_BYTES) and parses it. */
int cf_manifest_load(const char *path, cf_manifest **ret) CF_WUR;
void cf_manifest_free(cf_manifest *m);

/* SHA-256 of the canonical serialisation (docs/MANIFEST.md "Manifest hash"). */
const uint8_t *cf_manifest_hash(const cf_manifest *m);
/* The same as "sha256:<64 lowercase hex>". */
const char *cf_manifest_hash_str(const cf_manifest *m);
/* The canonical serialisation itself (the bytes that were hashed). */
const char *cf_manifest_canonical(const cf_manifest *m, size_t *ret_len);
/* 0 if expected ("sha256:<hex>") is this manifest's hash; CF_E_VERIFY with
 * both hashes in the detail if not; CF_E_PARSE if expected is malformed. */
int cf_manifest_check_hash(const cf_manifest *m, const char *expected) CF_WUR;
/* Computes the manifest hash of a document (validating it fully). */
int cf_manifest_hash_document(const void *data, size_t len,
                              uint8_t ret[CF_MANIFEST_HASH_LEN]) CF_WUR;

/* Optional "name" of the manifest, or NULL. */
const char *cf_manifest_name(const cf_manifest *m);
/* Policy for "sev-snp", or NULL if the manifest has none. */
const cf_manifest_snp *cf_manifest_snp_policy(const cf_manifest *m);

size_t cf_manifest_deployment_count(const cf_manifest *m);
/* i < count, else NULL. Order is the document's. */
const cf_manifest_deployment *cf_manifest_deployment_at(const cf_manifest *m, size_t i);
/* By name, or NULL. */
const cf_manifest_deployment *cf_manifest_find_deployment(const cf_manifest *m, const char *name);

bool cf_manifest_deployment_allows_snp_measurement(const cf_manifest_deployment *d,
                                                   const uint8_t meas[CF_SNP_MEASUREMENT_LEN]);
bool cf_manifest_deployment_has_job(const cf_manifest_deployment *d, const char *job);
/* Whether chip_id (64 bytes from the report) is on the allow-list. False when
 * the policy has no allow-list (check n_chip_ids first). */
bool cf_manifest_snp_chip_allowed(const cf_manifest_snp *p,
                                  const uint8_t chip_id[CF_SNP_CHIP_ID_LEN]);

/* Manifest spelling of a product: "milan", "genoa", "turin"; "unknown" otherwise. */
const char *cf_manifest_product_name(cf_snp_product p);

/* Name of a guest policy bit as spelled in "guest_policy" ("smt", "migrate_ma",
 * ...), or NULL for bits the manifest cannot name. */
const char *cf_manifest_policy_bit_name(unsigned bit);

#endif
