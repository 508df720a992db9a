/*
 * Tenant keys, data keys and wrapped values of the KMS (DESIGN.md §4).
 * The model, schema, formats and audit ordering are described in
 * docs/internals/kms-keys.md; this header is the contract.
 *
 * HIERARCHY. HSM master key (AES-256, non-extractable) -> tenant-key versions
 * (32 random bytes each, stored wrapped by the HSM with AAD
 * "coffer/v1 tenant-key" || tenant || version) -> wrapped values ("CFW1",
 * kms/aead.h) under a per-version key derived with HKDF-SHA256 from the tenant
 * key. Every wrapped value names its version; old versions keep decrypting
 * until they are revoked, destroyed, or below the tenant's
 * min_decryption_version.
 *
 * STATE (all in the store; scope "kms_keys"). A tenant is active or revoked; a
 * version is active, revoked or destroyed (active -> revoked -> destroyed, or
 * active -> destroyed; never back). Invariant: while a tenant is active its
 * current version is active — revoking or destroying the current version of an
 * active tenant first rotates to a new version in the same transaction.
 * Revoking a tenant revokes every version and stops automatic rotation; an
 * explicit cf_kms_keys_rotate re-keys it (new active version, old ones stay
 * revoked). min_decryption_version only rises, up to the current version.
 * Every operation reads the state from the store, so a revocation made by any
 * KMS replica takes effect at once everywhere; the cache below only saves HSM
 * unwraps.
 *
 * TEE REVOCATION. cf_kms_keys_revoke_tee records a TEE id in the table
 * kms_tee_revocation (final). Every path that hands out key material for a TEE
 * consults it: data-key and encrypt/decrypt calls naming a tee_id (bound into
 * the wrapped value's AAD, so such a value opens only for that TEE), and the
 * one-time-key paths through cf_kms_tee_check_tx inside their own transaction.
 *
 * KEY CACHE. Unwrapped (derived) keys live in one locked, non-dumpable slab
 * (cf_secure_alloc) in an LRU cache keyed by (tenant, version), bounded by
 * opts.cache_capacity; a slot is wiped on eviction, when its version is revoked
 * or destroyed in this process, when the tenant is revoked, and on close.
 *
 * AUDIT. Every operation, successful or not, appends one event to the spool
 * ({"service":"kms","action":"key.rotate","tenant":"t1",
 * "resource":"tenant-key/t1/v3","outcome":"success"|"failure",...}); no event
 * holds key material or plaintext. Mutations append their success event inside
 * the store transaction, after its statements and before its commit: if the
 * append fails the transaction is rolled back and the operation fails (fail
 * closed), so no change is ever committed without a durable event. If the
 * commit then fails, a failure event with "corrects": <event_id> follows.
 * Reads and crypto operations append their event before any output is handed
 * to the caller; if that append fails the output is wiped and the call fails.
 *
 * STORE HANDLES. cf_store handles are single-threaded; a cf_kms_keys keeps a
 * small pool (up to CF_KMS_STORE_POOL idle handles, more opened on demand) and
 * each call takes a handle for its duration, so all functions here may be
 * called from several threads at once. "sqlite::memory:" is refused: every
 * handle would see a different database.
 *
 * ERRORS (with a precise detail through cf_err_detail):
 *   CF_E_NOT_FOUND  unknown tenant, unknown key version
 *   CF_E_EXISTS     create of a tenant that has keys
 *   CF_E_REVOKED    revoked or destroyed version, revoked tenant, revoked TEE
 *   CF_E_FORBIDDEN  version below min_decryption_version
 *   CF_E_CONFLICT   transition not allowed (already revoked, min version decrease)
 *   CF_E_RANGE / CF_E_INVAL  bad argument (ids, policy values, sizes)
 *   CF_E_PARSE / CF_E_TRUNCATED / CF_E_TOO_LARGE  malformed wrapped value
 *   CF_E_DECRYPT    wrapped value failed authentication (tampered, wrong
 *                   context, tenant or TEE)
 *   CF_E_STORE      also: a stored tenant key that does not unwrap under the
 *                   HSM master key (store modified, or a different HSM)
 *   CF_E_IO / CF_E_HSM / CF_E_STORE / CF_E_UNAVAILABLE  a dependency failed
 *                   (audit spool, HSM, store): the operation was refused
 */
#ifndef COFFER_KMS_KEYS_H
#define COFFER_KMS_KEYS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/compiler.h"
#include "base/limits.h"
#include "hsm/hsm.h"
#include "spool/spool.h"
#include "store/store.h"

typedef struct cf_kms_keys cf_kms_keys;

/* Unix seconds; tests inject a fixed clock. */
typedef int64_t (*cf_kms_clock_fn)(void *arg);

typedef struct {
    size_t cache_capacity;   /* unwrapped versions kept; 0 = CF_KMS_CACHE_DEFAULT, max CF_KMS_CACHE_MAX */
    cf_kms_clock_fn clock;   /* NULL = wall clock (time()) */
    void *clock_arg;
} cf_kms_keys_opts;

/* Who asked, for the audit event. All fields optional (NULL): an absent
 * principal is recorded as "kms" (an internal caller such as the rotation task). */
typedef struct {
    const char *principal; /* e.g. "spiffe://coffer/gateway" or a user id; <= CF_ID_MAX_LEN */
    const char *request_id;
} cf_kms_caller;

/* Opens the key service: runs the "kms_keys" migrations on store_dsn and keeps
 * a pool of its own store handles. hsm and audit are borrowed and must outlive
 * the returned object; opts may be NULL. Caller releases with cf_kms_keys_close. */
int cf_kms_keys_open(cf_hsm *hsm, const char *store_dsn, cf_spool *audit,
                     const cf_kms_keys_opts *opts, cf_kms_keys **ret) CF_WUR;
/* Wipes the key cache, closes the store handles. No other call on k may be in
 * progress. NULL is accepted. */
void cf_kms_keys_close(cf_kms_keys *k);

/* ---- tenant keys ---------------------------------------------------------- */

typedef struct {
    char tenant[CF_ID_MAX_LEN + 1];
    uint32_t current_version;
    uint32_t min_decryption_version;
    uint64_t rotate_every;    /* seconds; 0 = manual rotation only */
    int64_t next_rotation_at; /* unix seconds; 0 = none */
    bool revoked;             /* cf_kms_keys_revoke_tenant; until re-keyed by rotate */
    int64_t created_at;
} cf_kms_tenant_info;

typedef enum { CF_KMS_KEY_ACTIVE = 0, CF_KMS_KEY_REVOKED, CF_KMS_KEY_DESTROYED } cf_kms_key_state;

typedef struct {
    uint32_t version;
    cf_kms_key_state state;
    int64_t created_at;
    int64_t revoked_at;   /* 0 if never revoked */
    int64_t destroyed_at; /* 0 if not destroyed */
    char reason[CF_KMS_MAX_REASON + 1];
} cf_kms_version_info;

/* Policy update: only the fields whose set_* flag is true change. */
typedef struct {
    bool set_rotate_every;
    uint64_t rotate_every;           /* 0 or CF_KMS_ROTATE_MIN_S..CF_KMS_ROTATE_MAX_S */
    bool set_min_decryption_version;
    uint32_t min_decryption_version; /* 1..current version, never lower than before */
} cf_kms_policy;

/* Creates version 1 of a new tenant's key (policy may be NULL: manual rotation,
 * min_decryption_version 1; a min_decryption_version other than 1 is refused). */
int cf_kms_keys_create(cf_kms_keys *k, const cf_kms_caller *who, const char *tenant,
                       const cf_kms_policy *policy, cf_kms_tenant_info *ret_info) CF_WUR;
/* New version becomes current; older versions stay for decryption. Also
 * re-keys a revoked tenant. ret_version may be NULL. */
int cf_kms_keys_rotate(cf_kms_keys *k, const cf_kms_caller *who, const char *tenant,
                       uint32_t *ret_version) CF_WUR;
/* Changes rotate_every and/or min_decryption_version (see cf_kms_policy). A new
 * rotate_every is counted from the creation of the current version (so a key
 * already older than the period is due at the next rotation run). */
int cf_kms_keys_set_policy(cf_kms_keys *k, const cf_kms_caller *who, const char *tenant,
                           const cf_kms_policy *policy, cf_kms_tenant_info *ret_info) CF_WUR;
int cf_kms_keys_describe(cf_kms_keys *k, const cf_kms_caller *who, const char *tenant,
                         cf_kms_tenant_info *ret_info) CF_WUR;
/* Versions above after_version in ascending order, at most max (<= CF_KMS_MAX_LIST);
 * *ret_n receives how many were written to out. */
int cf_kms_keys_list_versions(cf_kms_keys *k, const cf_kms_caller *who, const char *tenant,
                              uint32_t after_version, cf_kms_version_info *out, size_t max,
                              size_t *ret_n) CF_WUR;

/* Revokes one version (reason: printable text <= CF_KMS_MAX_REASON, required).
 * Revoking the current version of an active tenant rotates first;
 * ret_new_current (may be NULL) receives the current version afterwards. */
int cf_kms_keys_revoke_version(cf_kms_keys *k, const cf_kms_caller *who, const char *tenant,
                               uint32_t version, const char *reason,
                               uint32_t *ret_new_current) CF_WUR;
/* Revokes every version of the tenant and stops automatic rotation. */
int cf_kms_keys_revoke_tenant(cf_kms_keys *k, const cf_kms_caller *who, const char *tenant,
                              const char *reason) CF_WUR;
/* Destroys one version: its wrapped key is overwritten and removed from the
 * store (SQLite: then checkpointed out of the WAL), and wiped from the cache.
 * Values wrapped under it can never be decrypted again. Destroying the current
 * version of an active tenant rotates first. */
int cf_kms_keys_destroy_version(cf_kms_keys *k, const cf_kms_caller *who, const char *tenant,
                                uint32_t version, const char *reason,
                                uint32_t *ret_new_current) CF_WUR;

/* Rotates every active tenant whose policy is due at `now` (at most
 * CF_KMS_ROTATE_BATCH per call, oldest due first; call again while
 * *ret_rotated == CF_KMS_ROTATE_BATCH). Safe to run from several threads and
 * KMS processes at once: each due rotation happens exactly once (the due
 * condition is re-checked inside the rotating transaction). If some rotation
 * fails the others still happen and the first error is returned. */
int cf_kms_keys_rotate_due(cf_kms_keys *k, int64_t now, size_t *ret_rotated) CF_WUR;

/* ---- TEE revocation --------------------------------------------------------- */

/* Records tee_id as revoked (idempotent: a second call succeeds and is audited
 * as already revoked). From then on every key path refuses that TEE. */
int cf_kms_keys_revoke_tee(cf_kms_keys *k, const cf_kms_caller *who, const char *tee_id,
                           const char *reason) CF_WUR;
/* 0 if the TEE is not revoked, CF_E_REVOKED ("TEE x is revoked") if it is. */
int cf_kms_keys_check_tee(cf_kms_keys *k, const char *tee_id) CF_WUR;
/* Same check on the caller's own store handle, e.g. inside the transaction that
 * releases a one-time key, so that the check and the release are atomic. */
int cf_kms_tee_check_tx(cf_store *s, const char *tee_id) CF_WUR;

/* ---- data keys and wrapped values ------------------------------------------- */

/* What a wrapped value is bound to. tenant is required; tee_id (optional) binds
 * the value to one TEE and makes it subject to TEE revocation; context
 * (optional, <= CF_KMS_MAX_CONTEXT bytes, e.g. an object id) must be presented
 * again to decrypt. All three go into the AAD. */
typedef struct {
    const char *tenant;
    const char *tee_id;
    const uint8_t *context;
    size_t context_len;
} cf_kms_binding;

/* GenerateDataKey: 32 random bytes wrapped under the tenant's current version.
 * ret_plain (a secret cf_buf, appended to) may be NULL for "wrapped only". */
int cf_kms_keys_generate_data_key(cf_kms_keys *k, const cf_kms_caller *who,
                                  const cf_kms_binding *b, cf_buf *ret_plain,
                                  cf_buf *ret_wrapped) CF_WUR;
/* Unwraps a data key (must be CF_KMS_KEY_LEN bytes) into ret_plain (secret buf). */
int cf_kms_keys_decrypt_data_key(cf_kms_keys *k, const cf_kms_caller *who,
                                 const cf_kms_binding *b, const uint8_t *wrapped,
                                 size_t wrapped_len, cf_buf *ret_plain) CF_WUR;
/* Encrypts a small value (<= CF_KMS_MAX_PLAINTEXT) under the current version;
 * the wrapped value is appended to ret_wrapped. */
int cf_kms_keys_encrypt(cf_kms_keys *k, const cf_kms_caller *who, const cf_kms_binding *b,
                        const uint8_t *pt, size_t pt_len, cf_buf *ret_wrapped) CF_WUR;
/* Decrypts a wrapped value with the version it names; plaintext is appended to
 * ret_plain, which must be a secret buffer (cf_buf_init_secret). */
int cf_kms_keys_decrypt(cf_kms_keys *k, const cf_kms_caller *who, const cf_kms_binding *b,
                        const uint8_t *wrapped, size_t wrapped_len, cf_buf *ret_plain) CF_WUR;
/* Re-encrypts a wrapped value under the current version (same binding); the
 * plaintext never leaves the KMS. Refused like cf_kms_keys_decrypt (a value
 * below min_decryption_version can no longer be rewrapped: rewrap first,
 * then raise the minimum). */
int cf_kms_keys_rewrap(cf_kms_keys *k, const cf_kms_caller *who, const cf_kms_binding *b,
                       const uint8_t *wrapped, size_t wrapped_len, cf_buf *ret_wrapped) CF_WUR;

/* KMS-internal sealing (e.g. one-time keys at rest): like encrypt/decrypt but
 * under a separate AAD label ("coffer/v1 seal"), so a sealed value never opens
 * through cf_kms_keys_decrypt and vice versa, and WITHOUT an audit event: the
 * caller audits the enclosing operation. Never expose these to clients. */
int cf_kms_keys_seal(cf_kms_keys *k, const cf_kms_binding *b, const uint8_t *pt, size_t pt_len,
                     cf_buf *ret_sealed) CF_WUR;
int cf_kms_keys_unseal(cf_kms_keys *k, const cf_kms_binding *b, const uint8_t *sealed,
                       size_t sealed_len, cf_buf *ret_plain) CF_WUR;

/* ---- diagnostics ------------------------------------------------------------ */

typedef struct {
    uint64_t hits, misses, evictions, unwraps;
    size_t cached, capacity;
} cf_kms_keys_stats;

void cf_kms_keys_get_stats(cf_kms_keys *k, cf_kms_keys_stats *ret);

#endif
