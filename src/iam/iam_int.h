/*
 * Internals shared by the files of the IAM core (iam.c, signing.c). Not for
 * other modules: they use iam.h.
 */
#ifndef COFFER_IAM_IAM_INT_H
#define COFFER_IAM_IAM_INT_H

#include <pthread.h>

#include "iam/iam.h"
#include "iam/ratelimit.h"
#include "store/store.h"

#define IAM_RESOURCE_MAX (CF_ID_MAX_LEN + 48)
#define IAM_DETAIL_MAX 256

/* The signing key ring: the published keys and the current private key.
 * Signing and verification hold the read lock; a reload swaps under the write
 * lock, so a key is never freed while in use. */
typedef struct {
    pthread_rwlock_t lock;
    cf_jwks *jwks;      /* published: current + keys in their overlap period */
    char *jwks_json;    /* its serialisation, served as /.well-known/jwks.json */
    cf_key *current;    /* private signing key */
    char current_kid[CF_JWK_KID_MAX_LEN + 1];
    pthread_mutex_t reload_mu;
    int64_t loaded_at;
    bool inited;
} iam_ring;

struct cf_iam {
    char *dsn;
    cf_hsm *hsm;
    cf_iam_audit_fn audit;
    void *audit_arg;
    cf_iam_clock_fn clock;
    void *clock_arg;
    uint32_t token_ttl;
    uint64_t rotate_every, overlap, apikey_ttl;
    pthread_mutex_t pool_mu;
    cf_store *idle[CF_IAM_STORE_POOL];
    size_t nidle;
    iam_ring ring;
    cf_iam_rl rl;
};

int64_t iam_now(const cf_iam *iam);
int iam_store_get(cf_iam *iam, cf_store **ret) CF_WUR;
void iam_store_put(cf_iam *iam, cf_store *s);

/* The IAM itself as the actor of internal operations (rotation, bootstrap). */
const cf_principal *iam_internal_actor(void);

/* Calls the audit hook; keeps the thread's error detail intact. details consumed. */
int iam_audit(cf_iam_audit_fn fn, void *arg, const cf_iam_caller *who, const cf_principal *actor,
              const char *action, const char *tenant, const char *resource, bool success,
              json_t *details) CF_WUR;
/* Failure event for rc, then returns rc with its detail. */
int iam_audit_failure(cf_iam_audit_fn fn, void *arg, const cf_iam_caller *who, const char *action,
                      const char *tenant, const char *resource, int rc, json_t *details);

/* ---- mutation runner: one store transaction per operation ----
 * body runs inside cf_store_tx (possibly several times on busy/serialization
 * failures: it must reset its outputs) and fills tenant/resource/details for
 * the event; the success event is appended before commit. */
typedef struct iam_op iam_op;
struct iam_op {
    cf_iam *iam;                     /* NULL for bootstrap (uses dsn/audit below) */
    cf_iam_audit_fn audit;
    void *audit_arg;
    const cf_iam_caller *who;
    const char *action;
    int (*body)(cf_store *s, iam_op *op);
    void *arg;
    int64_t now;
    char tenant[CF_ID_MAX_LEN + 1];   /* for the event; "" = none */
    char resource[IAM_RESOURCE_MAX];  /* for the event; "" = none */
    json_t *details;                  /* success details built by body (consumed) */
    const cf_principal *event_actor;  /* overrides who->actor for the event (token issue) */
    bool no_event;                    /* body decided there is nothing to record */
    bool pending;                     /* an attempt appended its event, commit not yet done */
};
int iam_run(iam_op *op, cf_store *s) CF_WUR;
/* iam_run on a pooled handle of op->iam; a failure (also rc0 from argument
 * checks, which skips the store) is audited. */
int iam_run_audited(iam_op *op, int rc0) CF_WUR;
/* The caller must be an active principal of an active tenant (store check). */
int iam_check_actor(cf_store *s, const cf_iam_caller *who) CF_WUR;
void iam_op_set_tenant(iam_op *op, const char *tenant);
void iam_op_set_resource(iam_op *op, const char *fmt, ...) CF_PRINTF(2, 3);
/* Adds a string / integer to op->details (created on demand). */
void iam_op_detail_str(iam_op *op, const char *key, const char *val);
void iam_op_detail_int(iam_op *op, const char *key, int64_t val);

/* ---- signing (signing.c) ---- */
int iam_ring_init(cf_iam *iam) CF_WUR;
void iam_ring_destroy(iam_ring *r);
/* Creates the first signing key if the store has no current one. */
int iam_ring_ensure(cf_iam *iam) CF_WUR;
/* Reloads from the store unless the ring was loaded less than min_age seconds
 * ago (0 = always). */
int iam_ring_reload(cf_iam *iam, int64_t min_age) CF_WUR;
/* Mints an access token for p with the current key (read lock held). */
int iam_ring_mint(cf_iam *iam, const cf_principal *p, int64_t now, uint32_t ttl, char **ret_token,
                  char ret_kid[CF_JWK_KID_MAX_LEN + 1]) CF_WUR;

/* Runs the "iam" migrations on s. */
int iam_migrate(cf_store *s) CF_WUR;

#endif
