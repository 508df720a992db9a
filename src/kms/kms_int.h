/*
 * Internals shared by kms.c (open, release key, store pool, audit, background
 * work), registry.c and otk.c. Not for use outside src/kms.
 */
#ifndef COFFER_KMS_KMS_INT_H
#define COFFER_KMS_KMS_INT_H

#include <pthread.h>
#include <stdatomic.h>

#include "kms/kms.h"
#include "store/store.h"

#define KMS_OP_ID_LEN 16 /* hex chars of the per-operation id in audit events */

struct cf_kms {
    cf_hsm *hsm;
    cf_kms_keys *keys;
    const cf_manifest *manifest;
    cf_verifier *verifier;
    char *dsn;
    pthread_mutex_t pool_mu;
    cf_store *idle[CF_KMS_STORE_POOL];
    size_t nidle;
    cf_hpke_key *release;              /* private: secret memory inside cf_hpke_key */
    cf_hpke_key *release_pub;          /* public half, handed out by cf_kms_release_key */
    char release_kid[CF_KEY_THUMBPRINT_LEN + 1];
    uint64_t otk_ttl, interval;
    size_t max_nonces;
    cf_kms_clock_fn clock;
    void *clock_arg;
    cf_kms_audit_fn audit;
    void *audit_arg;
    cf_kms_prof *prof;
    _Atomic int64_t last_purge;
};

/* One operation's context for audit events: every event of one operation
 * carries the same "op" id, so that a success event appended inside a
 * transaction that then failed to commit is matched by the failure event that
 * follows it (the store is authoritative). */
typedef struct {
    cf_kms *k;
    const cf_kms_who *who;
    const char *action;
    char tenant[CF_ID_MAX_LEN + 1];     /* "" = none */
    char resource[96];                  /* "" = none */
    char op[KMS_OP_ID_LEN + 1];
} kms_op;

void kms_op_init(kms_op *o, cf_kms *k, const cf_kms_who *who, const char *action);
void kms_op_tenant(kms_op *o, const char *tenant);
void kms_op_resource(kms_op *o, const char *kind, const char *id);
/* Appends the outcome event; details consumed (may be NULL); "op" added. */
int kms_op_audit(kms_op *o, const char *outcome, json_t *details) CF_WUR;
/* Failure: audits {"error": name, "reason": detail, ...details} and returns rc
 * with its detail preserved. An audit failure is logged (the operation is
 * refused anyway). */
int kms_op_fail(kms_op *o, int rc, json_t *details);

int64_t kms_now(const cf_kms *k);
uint64_t kms_mono_ns(void);

int kms_store_get(cf_kms *k, cf_store **ret) CF_WUR;
void kms_store_put(cf_kms *k, cf_store *s);

/* Random id: prefix + 32 lowercase hex (public randomness). out >= prefix + 33. */
int kms_new_id(const char *prefix, char *out, size_t size) CF_WUR;

/* Registry rows (registry.c). */
int kms_tee_read(cf_store *s, const char *tee_id, cf_kms_tee *ret) CF_WUR;
/* Whether the TEE may receive key material now: of `tenant` when not NULL,
 * active, freshly attested; CF_E_FORBIDDEN with the reason otherwise. */
int kms_tee_usable(const cf_kms *k, const cf_kms_tee *t, const char *tenant, int64_t now) CF_WUR;
/* Quarantine of a stale TEE by the background task (registry.c). */
int kms_quarantine_stale(cf_kms *k, int64_t now, size_t *ret_n) CF_WUR;
int kms_reconcile_revocations(cf_kms *k, size_t *ret_n) CF_WUR;

/* Checks free text for audit events and the store: 1..max bytes of printable UTF-8. */
bool kms_text_ok(const char *s, size_t max);

#define KMS_PROF_START(k) uint64_t kms_prof_t0_ = (k)->prof ? kms_mono_ns() : 0
#define KMS_PROF_END(k, field)                                                           \
    do {                                                                                 \
        if ((k)->prof)                                                                   \
            (k)->prof->field += kms_mono_ns() - kms_prof_t0_;                            \
    } while (0)

#endif
