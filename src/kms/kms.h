/*
 * The KMS service core: release key, TEE registry, one-time keys (DESIGN.md
 * §2-§5, issue 4; docs/internals/kms.md is the model, this header the
 * contract). The HTTP layer (kms/http.h) authenticates callers and maps the
 * results; everything that decides whether a TEE gets key material is here,
 * so it is tested without HTTP.
 *
 * TRUST. The core trusts nobody's word about a TEE: registration and
 * re-attestation evidence is verified here against the KMS's own manifest,
 * bound to a nonce this KMS issued and to the TEE's key; every release reads
 * the registry and the TEE revocation list inside the releasing transaction.
 *
 * STATE lives in the store (scope "kms"; the key hierarchy in scope "kms_keys",
 * kms/keys.h), so several KMS processes may share one store: every decision
 * is re-checked inside the transaction that acts on it, and the one-time-key
 * release is a conditional UPDATE that changes exactly one row for exactly one
 * caller.
 *
 * AUDIT. Every operation calls the audit hook exactly once with its outcome
 * ("success", "failure", or "alert" for quarantines), never with key material,
 * OTKs or tokens. Mutations call it for success inside their store
 * transaction, before the commit: if the hook fails, the transaction is rolled
 * back and the operation fails (fail closed, DESIGN.md §2 rule 6). Key-hierarchy
 * operations made on the caller's behalf (on-demand tenant key, TEE key
 * revocation) are audited by kms/keys.h itself.
 *
 * THREADS. A cf_kms may be used from several threads at once (a pool of store
 * handles, an immutable release key and verifier).
 *
 * ERRORS (with a precise detail through cf_err_detail; HTTP status in brackets):
 *   CF_E_INVAL / CF_E_PARSE [400]  bad argument or field
 *   CF_E_UNAUTHENTICATED [401]     unknown join token
 *   CF_E_FORBIDDEN [403]           wrong tenant, TEE not active or its
 *                                  attestation stale, bad or used nonce,
 *                                  expired or used-up join token, bad
 *                                  release proof
 *   CF_E_VERIFY [403]              evidence did not verify (*ret_result says why)
 *   CF_E_REVOKED [403]             revoked TEE keys, revoked tenant key / version
 *   CF_E_NOT_FOUND [404]           unknown TEE, OTK or tenant
 *   CF_E_CONFLICT [409]            OTK already released (on the release
 *                                  endpoint 409 means only that); TEE already
 *                                  in that state; re-attestation of a TEE
 *                                  that is not active
 *   CF_E_EXISTS [409]              TEE key already registered
 *   CF_E_EXPIRED [410]             OTK expired
 *   CF_E_RATE_LIMITED [429]        too many live nonces
 *   CF_E_UNAVAILABLE / CF_E_STORE / CF_E_HSM [5xx]  a dependency failed: refused
 */
#ifndef COFFER_KMS_KMS_H
#define COFFER_KMS_KMS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "attest/binding.h"
#include "attest/manifest.h"
#include "attest/verify.h"
#include "base/compiler.h"
#include "base/limits.h"
#include "crypto/hpke.h"
#include "crypto/keys.h"
#include "hsm/hsm.h"
#include "kms/keys.h"
#include "kms/wire.h"

typedef struct cf_kms cf_kms;

/* Who asked (for audit events). All fields optional. */
typedef struct {
    const char *actor;      /* principal id, "tee:<id>", or NULL (the hook decides, e.g. the mTLS peer) */
    const char *request_id; /* for kms/keys.h events */
    const void *ctx;        /* passed through to the hook (the HTTP layer passes the request) */
} cf_kms_who;

/* The audit hook. details is consumed (json_decref) and may be NULL. Returns 0
 * once the event is durable, else an error (the operation is then refused). */
typedef int (*cf_kms_audit_fn)(void *arg, const cf_kms_who *who, const char *action,
                               const char *tenant, const char *resource, const char *outcome,
                               json_t *details);

/* Optional timing counters for benchmarks (nanoseconds, summed over calls). */
typedef struct {
    uint64_t store_ns; /* this module's store reads and transactions */
    uint64_t keys_ns;  /* seal / unseal through kms/keys.h (store lookup, cache or HSM unwrap, AES-GCM) */
    uint64_t hpke_ns;  /* HPKE seal / open of the wire messages */
    uint64_t calls;
} cf_kms_prof;

typedef struct {
    cf_hsm *hsm;                 /* borrowed: wraps the release key */
    cf_kms_keys *keys;           /* borrowed: tenant keys, sealing, TEE revocation */
    const cf_manifest *manifest; /* borrowed: the KMS's own attestation policy */
    const char *store_dsn;       /* same store as keys ("sqlite::memory:" is refused) */
    uint64_t otk_ttl;            /* seconds; 0 = CF_KMS_OTK_TTL_DEFAULT */
    uint64_t reattest_interval;  /* seconds; 0 = CF_KMS_REATTEST_DEFAULT_S; stale after 2x */
    size_t max_live_nonces;      /* 0 = CF_KMS_MAX_LIVE_NONCES */
    cf_kms_clock_fn clock;       /* NULL = wall clock; also the verification time */
    void *clock_arg;
    cf_kms_audit_fn audit;       /* required */
    void *audit_arg;
    cf_kms_prof *prof;           /* optional; updated without locking (single-threaded benchmarks) */
} cf_kms_opts;

/* Runs the "kms" migrations, then loads the release key, creating it on first
 * start (X25519, private half wrapped by the HSM master key with AAD
 * "coffer/v1 kms release key"; several processes starting at once agree on
 * one). The borrowed objects must outlive the result. Free with cf_kms_close. */
int cf_kms_open(const cf_kms_opts *o, cf_kms **ret) CF_WUR;
/* Wipes the release key, closes store handles. NULL is accepted. */
void cf_kms_close(cf_kms *k);

/* The release key's public half (borrowed, valid until close) and its key id:
 * the RFC 7638 JWK thumbprint of {"crv":"X25519","kty":"OKP","x":...}. */
const cf_hpke_key *cf_kms_release_key(const cf_kms *k);
const char *cf_kms_release_kid(const cf_kms *k);
int64_t cf_kms_now(const cf_kms *k);
uint64_t cf_kms_reattest_interval(const cf_kms *k);

/* ---- registry ------------------------------------------------------------------- */

typedef enum { CF_KMS_TEE_ACTIVE = 0, CF_KMS_TEE_QUARANTINED, CF_KMS_TEE_REVOKED } cf_kms_tee_status;

const char *cf_kms_tee_status_name(cf_kms_tee_status s); /* "active", "quarantined", "revoked" */

typedef struct {
    char id[CF_KMS_TEE_ID_LEN + 1];
    char tenant[CF_ID_MAX_LEN + 1];
    char deployment[CF_NAME_MAX_LEN + 1];
    char platform[16];                        /* "sev-snp" */
    uint8_t public_key[CF_KMS_X25519_LEN];    /* the TEE's HPKE X25519 key */
    char measurement[2 * CF_SNP_MEASUREMENT_LEN + 1];
    char chip_id[2 * CF_SNP_CHIP_ID_LEN + 1];
    char evidence_digest[7 + 64 + 1];         /* "sha256:" + hex of SHA-256(report) */
    cf_kms_tee_status status;
    char reason[CF_KMS_MAX_REASON + 1];       /* why quarantined / revoked; "" when active */
    int64_t registered_at, last_attested_at;
    uint64_t attestation_count;
    char join_token_id[CF_KMS_ID_HEX + 4];    /* "jt_" + hex */
    char endpoint[CF_KMS_MAX_ENDPOINT + 1];   /* the TEE's base URL for the gateway; "" = none */
} cf_kms_tee;

/* {id, tenant, deployment, platform, public_key (base64url), measurement,
 *  chip_id, evidence_digest, status, [reason,] [endpoint,] registered_at,
 *  last_attested_at, attestation_count} — a new reference, NULL on allocation
 *  failure. */
json_t *cf_kms_tee_to_json(const cf_kms_tee *t);

typedef struct {
    char id[CF_KMS_ID_HEX + 4];           /* "jt_" + 32 hex */
    char token[4 + 43 + 1];               /* "cjt_" + base64url(32 random bytes): shown once */
    char tenant[CF_ID_MAX_LEN + 1];
    char deployment[CF_NAME_MAX_LEN + 1];
    int64_t expires_at;
    uint64_t uses;
} cf_kms_join_token;

/* Creates a join token for (tenant, deployment): the deployment must be in the
 * KMS manifest and belong to tenant. ttl 1..CF_KMS_JOIN_TTL_MAX seconds, uses
 * 1..CF_KMS_JOIN_MAX_USES. Only SHA-256(token) is stored. The caller must
 * cf_wipe *ret after use (it holds the token). */
int cf_kms_join_token_create(cf_kms *k, const cf_kms_who *who, const char *tenant,
                             const char *deployment, uint64_t ttl, uint64_t uses,
                             cf_kms_join_token *ret) CF_WUR;

/* Issues a single-use nonce valid CF_KMS_NONCE_TTL_S seconds. At most
 * max_live_nonces unexpired nonces exist at once (CF_E_RATE_LIMITED beyond). */
int cf_kms_nonce_issue(cf_kms *k, const cf_kms_who *who, uint8_t ret_nonce[CF_BINDING_NONCE_LEN],
                       int64_t *ret_expires_at) CF_WUR;

/* Evidence as posted. */
typedef struct {
    const char *platform; /* must be "sev-snp" */
    const uint8_t *report;
    size_t report_len;
    const uint8_t *cert;
    size_t cert_len;
} cf_kms_evidence;

/*
 * POST /v1/registry/tees: the join token must be known (compared as SHA-256 in
 * constant time), unexpired and have uses left; the nonce KMS-issued, unused
 * and unexpired; the evidence must verify against the manifest for the token's
 * deployment and tenant, bound to (public_key, nonce), at now. Then one
 * transaction uses the token, consumes the nonce and records the TEE as active.
 * endpoint (optional, NULL = none): the TEE's base URL ("http(s)://host:port",
 * <= CF_KMS_MAX_ENDPOINT printable bytes) that the gateway routes to; it is
 * not attested (clients verify the TEE's evidence themselves).
 * On CF_E_VERIFY, *ret_result (if ret_result != NULL) receives the verifier's
 * result (caller frees with cf_verify_result_free); it is NULL otherwise.
 */
int cf_kms_tee_register(cf_kms *k, const cf_kms_who *who, const char *join_token,
                        const uint8_t nonce[CF_BINDING_NONCE_LEN],
                        const uint8_t public_key[CF_KMS_X25519_LEN], const char *endpoint,
                        const cf_kms_evidence *ev, cf_kms_tee *ret_tee,
                        cf_verify_result **ret_result) CF_WUR;

/*
 * Re-attestation report (from the attestation service, whose verdict is not
 * trusted): the nonce must be KMS-issued, unused and fresh (else CF_E_FORBIDDEN,
 * nothing changes). The evidence is verified against the manifest, bound to the
 * TEE's REGISTERED key and the nonce; measurement and chip id must equal the
 * recorded ones. Success: last_attested_at = now, attestation_count + 1,
 * *ret_quarantined = false. Any failure of the evidence: the TEE is quarantined
 * and its keys revoked at once, an "alert" event "tee.quarantined" is audited
 * and a warning logged; returns 0 with *ret_quarantined = true and the reason
 * in ret_tee->reason. *ret_result (may be NULL) receives the verifier result
 * when verification ran (caller frees). CF_E_CONFLICT if the TEE is not active.
 */
int cf_kms_tee_attest(cf_kms *k, const cf_kms_who *who, const char *tee_id,
                      const uint8_t nonce[CF_BINDING_NONCE_LEN], const cf_kms_evidence *ev,
                      cf_kms_tee *ret_tee, bool *ret_quarantined,
                      cf_verify_result **ret_result) CF_WUR;

/* Reads a TEE (audited as "tee.get"; who may be NULL for internal reads, which
 * are not audited). If expect_tenant is not NULL the TEE must belong to it
 * (else CF_E_FORBIDDEN). */
int cf_kms_tee_get(cf_kms *k, const cf_kms_who *who, const char *tee_id, const char *expect_tenant,
                   cf_kms_tee *ret) CF_WUR;

typedef struct {
    const char *tenant;     /* optional filters */
    const char *deployment;
    const char *status;     /* "active", "quarantined", "revoked" */
    const char *after;      /* page after this TEE id (ids ascending) */
    size_t limit;           /* 1..CF_KMS_LIST_MAX; 0 = CF_KMS_LIST_DEFAULT */
} cf_kms_tee_filter;

/* Lists TEEs in ascending id order into out[0..max) (max >= limit). *ret_n
 * receives the count. Audited as "tee.list". */
int cf_kms_tee_list(cf_kms *k, const cf_kms_who *who, const cf_kms_tee_filter *f, cf_kms_tee *out,
                    size_t max, size_t *ret_n) CF_WUR;

/* Operator actions (reason: printable UTF-8, 1..CF_KMS_MAX_REASON bytes).
 * quarantine: active -> quarantined; revoke: active or quarantined -> revoked.
 * Both are terminal and revoke the TEE's keys (cf_kms_keys_revoke_tee) at
 * once. CF_E_CONFLICT if the TEE is already in (or past) that state. If
 * expect_tenant is not NULL the TEE must belong to it (else CF_E_FORBIDDEN). */
int cf_kms_tee_quarantine(cf_kms *k, const cf_kms_who *who, const char *tee_id,
                          const char *expect_tenant, const char *reason, cf_kms_tee *ret) CF_WUR;
int cf_kms_tee_revoke(cf_kms *k, const cf_kms_who *who, const char *tee_id,
                      const char *expect_tenant, const char *reason, cf_kms_tee *ret) CF_WUR;

/* ---- one-time keys ----------------------------------------------------------------- */

typedef struct {
    char otk_id[CF_KMS_OTK_ID_LEN + 1];
    char tee_id[CF_KMS_TEE_ID_LEN + 1];
    int64_t expires_at;
    uint8_t enc[CF_KMS_ENC_LEN];
    uint8_t ct[CF_KMS_OTK_LEN + CF_HPKE_NT];
} cf_kms_issued;

/*
 * POST /v1/kms/otk for a principal of `tenant` whose token carried client_key
 * (cnf.x25519). The TEE must exist, belong to tenant, be active and freshly
 * attested. Creates the tenant key on demand. The OTK is stored sealed under
 * the tenant key (binding: tenant, TEE, otk id) and returned HPKE-sealed to
 * client_key (kms/wire.h). principal names the caller in the OTK record.
 */
int cf_kms_otk_issue(cf_kms *k, const cf_kms_who *who, const char *tenant, const char *principal,
                     const uint8_t client_key[CF_KMS_X25519_LEN], const char *tee_id,
                     cf_kms_issued *ret) CF_WUR;

typedef struct {
    uint8_t enc[CF_KMS_ENC_LEN];
    uint8_t ct[CF_KMS_RELEASE_PT_MAX + CF_HPKE_NT];
    size_t ct_len;
} cf_kms_release_resp;

/*
 * POST /v1/kms/otk/{otk_id}/release: the request (enc, ct) must open with the
 * registered key of tee_id (kms/wire.h), name this otk_id and tee_id, and be
 * within CF_KMS_RELEASE_SKEW_S of now. The OTK must be issued (not released:
 * CF_E_CONFLICT "OTK already released"; not expired: CF_E_EXPIRED "OTK
 * expired"), bound to this TEE, and the TEE active, fresh, not revoked. One
 * transaction marks it released and erases its sealed value; the response is
 * sealed to the TEE key before that commit and handed out only after it.
 */
int cf_kms_otk_release(cf_kms *k, const cf_kms_who *who, const char *otk_id, const char *tee_id,
                       const uint8_t *enc, size_t enc_len, const uint8_t *ct, size_t ct_len,
                       cf_kms_release_resp *ret) CF_WUR;

/* ---- background work ------------------------------------------------------------ */

typedef struct {
    size_t otks_expired;   /* issued OTKs past their TTL: sealed value erased */
    size_t otks_deleted;   /* released / expired rows past CF_KMS_OTK_RETAIN_S */
    size_t nonces_deleted;
    size_t tokens_deleted;
    size_t quarantined;    /* stale TEEs quarantined */
    size_t keys_revoked;   /* TEE revocations completed (reconciliation) */
    size_t rotated;        /* tenant keys rotated by policy */
} cf_kms_tick_stats;

/* One round of background work at now: purge expired OTKs, nonces and join
 * tokens; quarantine active TEEs whose last attestation is older than 2 x the
 * re-attestation interval (alert event, keys revoked); make sure every
 * non-active TEE's keys are revoked (completes a revocation interrupted by a
 * crash); run the tenant-key rotation policy. Safe with several KMS processes.
 * Returns the first error; later steps still run. ret may be NULL. */
int cf_kms_tick(cf_kms *k, cf_kms_tick_stats *ret) CF_WUR;
/* Only the OTK / nonce / join-token purge (also run by cf_kms_otk_issue at most
 * once per CF_KMS_PURGE_MIN_INTERVAL_S). */
int cf_kms_purge(cf_kms *k, cf_kms_tick_stats *ret) CF_WUR;

#endif
