/*
 * Evidence verifier (DESIGN.md §3 "Verification"): applies a manifest to
 * evidence and produces a structured result — never a bare boolean. Every
 * check runs, even after another has failed, so that one result lists every
 * problem; the verdict is "verified" only if no check failed. Checks that do
 * not apply (no nonce given, no allow-list configured, ...) are skipped, and a
 * check that cannot be evaluated because its input is missing (the cert did
 * not parse) is skipped too — the verdict then fails on the check that broke.
 * The check list and its order are in docs/MANIFEST.md "Verification".
 *
 * Used by the client SDK, the KMS, the attestation service and the CLI: each
 * verifies evidence itself (DESIGN.md §2 rule 1).
 *
 * Ownership: a cf_verifier borrows its manifest (which must outlive it), is
 * immutable after cf_verifier_new and may be shared between threads (its chain
 * cache is internally locked). A cf_verify_result is a single heap block owned
 * by the caller (cf_verify_result_free); it holds copies, no borrowed pointers
 * except the static check names.
 */
#ifndef COFFER_ATTEST_VERIFY_H
#define COFFER_ATTEST_VERIFY_H

#include <jansson.h>
#include <openssl/x509.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "attest/manifest.h"
#include "attest/snp.h"
#include "base/buf.h"
#include "base/compiler.h"
#include "base/limits.h"

/* The checks, in the order they run and are reported. */
typedef enum {
    CF_CHECK_PARSE = 0,      /* "parse" */
    CF_CHECK_PRODUCT,        /* "product" */
    CF_CHECK_SIGNATURE,      /* "signature" */
    CF_CHECK_CHAIN,          /* "chain" */
    CF_CHECK_LEAF_KEY,       /* "leaf_key" */
    CF_CHECK_TCB_MATCH,      /* "tcb_match" */
    CF_CHECK_CHIP_ID,        /* "chip_id" */
    CF_CHECK_MIN_TCB,        /* "min_tcb" */
    CF_CHECK_GUEST_SVN,      /* "guest_svn" */
    CF_CHECK_DEBUG,          /* "debug" */
    CF_CHECK_GUEST_POLICY,   /* "guest_policy" */
    CF_CHECK_VMPL,           /* "vmpl" */
    CF_CHECK_MEASUREMENT,    /* "measurement" */
    CF_CHECK_DEPLOYMENT,     /* "deployment" */
    CF_CHECK_HOST_DATA,      /* "host_data" */
    CF_CHECK_CHIP_ALLOWLIST, /* "chip_allowlist" */
    CF_CHECK_BINDING,        /* "binding" */
    CF_CHECK_FRESHNESS,      /* "freshness" */
    CF_CHECK_REVOCATION,     /* "revocation" */
    CF_CHECK__COUNT
} cf_check_id;

typedef enum { CF_CHECK_PASSED = 0, CF_CHECK_FAILED, CF_CHECK_SKIPPED } cf_check_status;

#define CF_CHECK_MESSAGE_LEN 320
#define CF_CHECK_VALUE_LEN 208 /* fits a 64-byte chip id in hex with a label */

typedef struct {
    cf_check_id id;
    const char *name; /* static, e.g. "min_tcb" */
    cf_check_status status;
    char expected[CF_CHECK_VALUE_LEN]; /* "" when there is nothing to compare */
    char actual[CF_CHECK_VALUE_LEN];
    char message[CF_CHECK_MESSAGE_LEN]; /* e.g. "snp TCB 8 below minimum 14" */
} cf_check;

/* What the evidence says, decoded (for responses: attestation API, EAR, CLI).
 * Values come from the evidence as given: they are authenticated only if the
 * result is verified. Hex strings are lowercase and NUL-terminated. */
typedef struct {
    const char *platform; /* "sev-snp" (static) */
    bool report_parsed;
    bool cert_parsed; /* certificate and its AMD extensions */
    uint32_t report_version;
    cf_snp_product product;         /* as decided by the product check */
    cf_snp_signing_key signing_key; /* the report's key_info SIGNING_KEY */
    bool cert_is_vlek;
    bool debug; /* policy DEBUG bit */
    uint32_t vmpl;
    uint32_t guest_svn;
    uint64_t policy;
    char measurement[2 * CF_SNP_MEASUREMENT_LEN + 1];
    char host_data[2 * CF_SNP_HOST_DATA_LEN + 1];
    char report_data[2 * 64 + 1];
    char chip_id[2 * CF_SNP_CHIP_ID_LEN + 1];
    char report_id[2 * 32 + 1];
    cf_snp_tcb reported_tcb, current_tcb, committed_tcb, launch_tcb; /* decoded for `product` */
    bool has_cert_tcb;
    cf_snp_tcb cert_tcb;                                 /* the VCEK/VLEK TCB extensions */
    char cert_product_name[CF_SNP_PRODUCT_NAME_MAX + 1]; /* productName1, e.g. "Milan-B0" */
    char root[CF_NAME_MAX_LEN + 1];   /* root the chain verified against: "amd:milan" or a
                                            custom root's name; "" if the chain did not verify */
    bool simulated;                   /* that root is the simulated secure processor's */
    char ark_fingerprint[2 * 48 + 1]; /* SHA-384 of the ARK's DER; "" if unverified */
} cf_verify_facts;

typedef struct {
    bool verified; /* no check failed */
    time_t at;     /* verification time used */
    char manifest_hash[CF_MANIFEST_HASH_STR_LEN + 1];
    char deployment[CF_NAME_MAX_LEN + 1]; /* resolved deployment, "" if none */
    char tenant[CF_ID_MAX_LEN + 1];       /* its tenant, "" if none */
    cf_check checks[CF_CHECK__COUNT];     /* indexed by cf_check_id, in run order */
    cf_verify_facts facts;
} cf_verify_result;

typedef struct {
    const char *platform;  /* "sev-snp"; NULL means "sev-snp" */
    const uint8_t *report; /* raw ATTESTATION_REPORT (CF_SNP_REPORT_LEN bytes) */
    size_t report_len;
    const uint8_t *cert;           /* VCEK or VLEK certificate, DER or PEM */
    size_t cert_len;               /* <= CF_CERT_MAX_BYTES */
    const char *deployment;        /* optional: the deployment the TEE claims to run */
    const char *tenant;            /* optional: the deployment must belong to it */
    const uint8_t *tee_public_key; /* optional, together with nonce: binding check */
    size_t tee_public_key_len;     /* 1..CF_TEE_KEY_MAX_LEN */
    const uint8_t *nonce;          /* optional: CF_BINDING_NONCE_LEN bytes */
    time_t at;                     /* verification time (> 0; e.g. time(NULL)) */
    STACK_OF(X509_CRL) * crls;     /* optional: AMD KDS CRLs (borrowed) */
} cf_verify_input;

typedef struct cf_verifier cf_verifier;

/* Prepares the manifest's pinned roots (built-in AMD chains and inline ones)
 * and a chain cache. CF_E_UNSUPPORTED if the manifest has no sev-snp policy;
 * CF_E_CONFIG if a pinned chain is unusable. */
int cf_verifier_new(const cf_manifest *m, cf_verifier **ret) CF_WUR;
void cf_verifier_free(cf_verifier *v);

/* Verifies evidence. Returns 0 whenever a result was produced — verified or
 * not: read result->verified. Negative only for caller errors (CF_E_INVAL: no
 * report, at <= 0, key without nonce or the reverse, bad nonce/key length),
 * CF_E_UNSUPPORTED (platform other than "sev-snp") or CF_E_NOMEM. */
int cf_verifier_verify(const cf_verifier *v, const cf_verify_input *in,
                       cf_verify_result **ret) CF_WUR;
/* One-shot: cf_verifier_new + cf_verifier_verify + cf_verifier_free. */
int cf_verify_evidence(const cf_manifest *m, const cf_verify_input *in,
                       cf_verify_result **ret) CF_WUR;
void cf_verify_result_free(cf_verify_result *r);

const char *cf_check_name(cf_check_id id);           /* "min_tcb"; "unknown" if out of range */
const char *cf_check_status_name(cf_check_status s); /* "passed", "failed", "skipped" */
/* Borrowed from r. NULL for an unknown id or name. */
const cf_check *cf_verify_result_check(const cf_verify_result *r, cf_check_id id);
const cf_check *cf_verify_result_find(const cf_verify_result *r, const char *name);
/* First failed check in run order, or NULL if verified. */
const cf_check *cf_verify_first_failure(const cf_verify_result *r);
/* 0 if verified; otherwise CF_E_VERIFY with detail "<check>: <message>" of the
 * first failure (for callers that turn a result into an error response). */
int cf_verify_result_status(const cf_verify_result *r) CF_WUR;

/* {"verified","status","platform","manifest_hash","verification_time",
 *  "deployment","tenant","checks":[{"name","status","expected","actual","message"}],
 *  "facts":{...}} — a new reference (json_decref), NULL on allocation failure. */
json_t *cf_verify_result_to_json(const cf_verify_result *r);
/* Human-readable report appended to out: a verdict line, then one line per
 * check: "✓ name: message", "✗ name: message (expected X, actual Y)",
 * "- name: message (skipped)". */
int cf_verify_result_to_text(const cf_verify_result *r, cf_buf *out) CF_WUR;

#endif
