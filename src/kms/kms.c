/*
 * KMS core: open/close, schema, release key, store pool, audit helpers and
 * the background work (kms/kms.h; docs/internals/kms.md).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/err.h"
#include "base/log.h"
#include "base/parse.h"
#include "base/secmem.h"
#include "crypto/hash.h"
#include "kms/kms_int.h"

#define RELEASE_KEY_AAD "coffer/v1 kms release key"
#define RELEASE_WRAPPED_LEN (CF_HPKE_SK_LEN + CF_HSM_WRAP_OVERHEAD)

/* ---- schema (scope "kms"; the key hierarchy is scope "kms_keys") ----------------- */

static const cf_store_migration kms_migrations[] = {
    {1, "release key, join tokens, nonces, TEE registry, one-time keys",
     "CREATE TABLE kms_release_key ("
     " id BIGINT PRIMARY KEY CHECK (id = 1),"
     " public_key BLOB NOT NULL,"
     " wrapped BLOB NOT NULL,"
     " created_at BIGINT NOT NULL);"
     "CREATE TABLE kms_join_token ("
     " id TEXT PRIMARY KEY,"
     " token_hash BLOB NOT NULL UNIQUE,"
     " tenant TEXT NOT NULL,"
     " deployment TEXT NOT NULL,"
     " uses BIGINT NOT NULL CHECK (uses >= 1),"
     " uses_left BIGINT NOT NULL CHECK (uses_left >= 0 AND uses_left <= uses),"
     " created_at BIGINT NOT NULL,"
     " expires_at BIGINT NOT NULL,"
     " created_by TEXT);"
     "CREATE INDEX kms_join_token_expiry ON kms_join_token (expires_at);"
     "CREATE TABLE kms_nonce ("
     " nonce BLOB PRIMARY KEY,"
     " created_at BIGINT NOT NULL,"
     " expires_at BIGINT NOT NULL);"
     "CREATE INDEX kms_nonce_expiry ON kms_nonce (expires_at);"
     "CREATE TABLE kms_tee ("
     " id TEXT PRIMARY KEY,"
     " tenant TEXT NOT NULL,"
     " deployment TEXT NOT NULL,"
     " platform TEXT NOT NULL,"
     " public_key BLOB NOT NULL UNIQUE,"
     " measurement TEXT NOT NULL,"
     " chip_id TEXT NOT NULL,"
     " evidence_digest TEXT NOT NULL,"
     " status TEXT NOT NULL CHECK (status IN ('active', 'quarantined', 'revoked')),"
     " reason TEXT,"
     " registered_at BIGINT NOT NULL,"
     " last_attested_at BIGINT NOT NULL,"
     " attestation_count BIGINT NOT NULL CHECK (attestation_count >= 1),"
     " join_token_id TEXT NOT NULL,"
     " endpoint TEXT,"
     " updated_at BIGINT NOT NULL);"
     "CREATE INDEX kms_tee_tenant ON kms_tee (tenant, id);"
     "CREATE INDEX kms_tee_fresh ON kms_tee (status, last_attested_at);"
     "CREATE TABLE kms_otk ("
     " id TEXT PRIMARY KEY,"
     " tenant TEXT NOT NULL,"
     " tee_id TEXT NOT NULL REFERENCES kms_tee (id),"
     " principal TEXT NOT NULL,"
     " client_key BLOB NOT NULL,"
     " sealed BLOB,"
     " state TEXT NOT NULL CHECK (state IN ('issued', 'released', 'expired')),"
     " issued_at BIGINT NOT NULL,"
     " expires_at BIGINT NOT NULL,"
     " released_at BIGINT,"
     " CHECK ((state = 'issued') = (sealed IS NOT NULL)));"
     "CREATE INDEX kms_otk_state_expiry ON kms_otk (state, expires_at);",
     NULL},
};

/* ---- small helpers ------------------------------------------------------------------ */

int64_t kms_now(const cf_kms *k)
{
    return k->clock != NULL ? k->clock(k->clock_arg) : (int64_t)time(NULL);
}

int64_t cf_kms_now(const cf_kms *k) { return kms_now(k); }
uint64_t cf_kms_reattest_interval(const cf_kms *k) { return k->interval; }
const cf_hpke_key *cf_kms_release_key(const cf_kms *k) { return k->release_pub; }
const char *cf_kms_release_kid(const cf_kms *k) { return k->release_kid; }

uint64_t kms_mono_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

bool kms_text_ok(const char *s, size_t max)
{
    size_t n;
    json_t *j;

    if (s == NULL)
        return false;
    n = strnlen(s, max + 1);
    if (n == 0 || n > max)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return false;
    j = json_stringn(s, n); /* NULL unless valid UTF-8 */
    if (j == NULL)
        return false;
    json_decref(j);
    return true;
}

int kms_new_id(const char *prefix, char *out, size_t size)
{
    uint8_t r[CF_KMS_ID_HEX / 2];
    char hex[CF_KMS_ID_HEX + 1];

    CF_GUARD(cf_random(r, sizeof(r)));
    cf_hex_encode(r, sizeof(r), hex);
    return cf_fmt(out, size, "%s%s", prefix, hex);
}

/* ---- store handle pool (store handles are single-threaded: store.h) ---------------- */

int kms_store_get(cf_kms *k, cf_store **ret)
{
    cf_store *s = NULL;

    pthread_mutex_lock(&k->pool_mu);
    if (k->nidle > 0)
        s = k->idle[--k->nidle];
    pthread_mutex_unlock(&k->pool_mu);
    if (s == NULL)
        CF_GUARD(cf_store_open(k->dsn, &s));
    *ret = s;
    return 0;
}

void kms_store_put(cf_kms *k, cf_store *s)
{
    if (s == NULL)
        return;
    cf_store_rollback(s); /* no-op unless a transaction was left open */
    pthread_mutex_lock(&k->pool_mu);
    if (k->nidle < CF_KMS_STORE_POOL) {
        k->idle[k->nidle++] = s;
        s = NULL;
    }
    pthread_mutex_unlock(&k->pool_mu);
    cf_store_close(s);
}

/* ---- audit ----------------------------------------------------------------------------- */

void kms_op_init(kms_op *o, cf_kms *k, const cf_kms_who *who, const char *action)
{
    uint8_t r[KMS_OP_ID_LEN / 2];

    memset(o, 0, sizeof(*o));
    o->k = k;
    o->who = who;
    o->action = action;
    /* The op id only correlates events: if randomness fails, a fixed id still works. */
    if (cf_random(r, sizeof(r)) != 0)
        memset(r, 0, sizeof(r));
    cf_hex_encode(r, sizeof(r), o->op);
}

void kms_op_tenant(kms_op *o, const char *tenant)
{
    /* Only well-formed tenants go into events (no echo of malformed input). */
    if (cf_kms_tenant_valid(tenant))
        memcpy(o->tenant, tenant, strlen(tenant) + 1);
}

void kms_op_resource(kms_op *o, const char *kind, const char *id)
{
    if (id != NULL && strlen(id) <= CF_KMS_OTK_ID_LEN && cf_fmt(o->resource, sizeof(o->resource),
                                                                "%s/%s", kind, id) == 0)
        return;
    o->resource[0] = 0;
}

int kms_op_audit(kms_op *o, const char *outcome, json_t *details)
{
    static const cf_kms_who nobody = {0};
    json_t *d = details != NULL ? details : json_object();
    int rc;

    if (d == NULL || json_object_set_new(d, "op", json_string(o->op)) != 0) {
        json_decref(d);
        return cf_err_set(CF_E_NOMEM, "cannot build audit event");
    }
    rc = o->k->audit(o->k->audit_arg, o->who ? o->who : &nobody, o->action,
                     o->tenant[0] ? o->tenant : NULL, o->resource[0] ? o->resource : NULL, outcome,
                     d);
    if (rc != 0)
        return cf_err_set(CF_E_UNAVAILABLE, "audit log unavailable: operation refused");
    return 0;
}

int kms_op_fail(kms_op *o, int rc, json_t *details)
{
    char saved[256];
    json_t *d = details != NULL ? details : json_object();

    if (cf_fmt(saved, sizeof(saved), "%s", cf_err_detail(rc)) != 0)
        saved[0] = 0;
    if (d != NULL) {
        (void)json_object_set_new(d, "error", json_string(cf_err_name(rc)));
        /* NULL (not valid UTF-8) simply leaves the reason out */
        (void)json_object_set_new(d, "reason", json_string(saved));
    }
    if (kms_op_audit(o, "failure", d) != 0)
        cf_log(CF_LOG_ERROR, "kms.audit_failed", "action", o->action, NULL);
    cf_err_set(rc, "%s", saved);
    return rc;
}

/* ---- release key ------------------------------------------------------------------- */

typedef struct {
    cf_kms *k;
    const uint8_t *pub;
    const cf_buf *wrapped;
    const char *kid;
} rk_insert;

static int rk_insert_tx(cf_store *s, void *arg)
{
    rk_insert *a = arg;
    int64_t changes = 0;
    kms_op o;

    CF_GUARD(cf_store_exec(s,
                           "INSERT INTO kms_release_key (id, public_key, wrapped, created_at)"
                           " VALUES (1, ?, ?, ?) ON CONFLICT (id) DO NOTHING",
                           CF_STORE_ARGS(cf_sv_blob(a->pub, CF_KMS_X25519_LEN),
                                         cf_sv_blob(a->wrapped->data, a->wrapped->len),
                                         cf_sv_int(kms_now(a->k))),
                           &changes));
    if (changes != 1)
        return 0; /* another KMS process created it first: use theirs */
    kms_op_init(&o, a->k, NULL, "release_key.create");
    kms_op_resource(&o, "release-key", "1");
    return kms_op_audit(&o, "success", json_pack("{s:s}", "kid", a->kid));
}

static int kid_of(const uint8_t pub[CF_KMS_X25519_LEN], char out[CF_KEY_THUMBPRINT_LEN + 1])
{
    cf_key *ck = NULL;
    int rc;

    CF_GUARD(cf_key_from_public(CF_KEY_X25519, pub, CF_KMS_X25519_LEN, &ck));
    rc = cf_key_thumbprint(ck, out);
    cf_key_free(ck);
    return rc;
}

/* Creates a key pair and stores it unless one exists (the insert is a no-op then). */
static int release_key_create(cf_kms *k, cf_store *s)
{
    cf_hpke_key *key = NULL;
    uint8_t *sk = cf_secure_alloc(CF_HPKE_SK_LEN);
    const uint8_t *pub;
    size_t pub_len = 0;
    char kid[CF_KEY_THUMBPRINT_LEN + 1];
    cf_buf wrapped;
    rk_insert a;
    int rc;

    cf_buf_init(&wrapped, RELEASE_WRAPPED_LEN);
    CF_ENSURE_OUT(sk != NULL, CF_E_NOMEM);
    CF_GUARD_OUT(cf_hpke_key_generate(CF_HPKE_KEM_X25519_SHA256, &key));
    CF_GUARD_OUT(cf_hpke_key_priv(key, sk));
    pub = cf_hpke_key_pub(key, &pub_len);
    CF_ENSURE_OUT(pub != NULL && pub_len == CF_KMS_X25519_LEN, CF_E_INTERNAL);
    CF_GUARD_OUT(kid_of(pub, kid));
    CF_GUARD_OUT(cf_hsm_wrap(k->hsm, (const uint8_t *)RELEASE_KEY_AAD, strlen(RELEASE_KEY_AAD), sk,
                             CF_HPKE_SK_LEN, &wrapped));
    a = (rk_insert){.k = k, .pub = pub, .wrapped = &wrapped, .kid = kid};
    CF_GUARD_OUT(cf_store_tx(s, rk_insert_tx, &a));
out:
    cf_secure_free(sk);
    cf_hpke_key_free(key);
    cf_buf_free(&wrapped);
    return rc;
}

static int release_key_read(cf_store *s, uint8_t pub[CF_KMS_X25519_LEN], cf_buf *wrapped)
{
    cf_store_rows *r = NULL;
    size_t n = 0;
    int rc;

    rc = cf_store_query_row(s, "SELECT public_key, wrapped FROM kms_release_key WHERE id = 1", NULL,
                            0, &r);
    if (rc < 0)
        return rc;
    CF_GUARD_OUT(cf_store_col_blob(r, 0, pub, CF_KMS_X25519_LEN, &n));
    CF_ENSURE_OUT(n == CF_KMS_X25519_LEN, CF_E_STORE);
    CF_GUARD_OUT(cf_store_col_blob_buf(r, 1, wrapped));
out:
    cf_store_rows_close(r);
    if (rc < 0 && rc != CF_E_NOT_FOUND)
        rc = cf_err_set(CF_E_STORE, "KMS release key row is unreadable: %s", cf_err_detail(rc));
    return rc;
}

static int release_key_load(cf_kms *k)
{
    uint8_t pub[CF_KMS_X25519_LEN];
    const uint8_t *derived;
    size_t dlen = 0;
    cf_store *s = NULL;
    cf_buf wrapped, sk;
    int rc;

    cf_buf_init(&wrapped, RELEASE_WRAPPED_LEN);
    cf_buf_init_secret(&sk, RELEASE_WRAPPED_LEN); /* the HSM needs room for ct and tag */
    CF_GUARD_OUT(kms_store_get(k, &s));
    rc = release_key_read(s, pub, &wrapped);
    if (rc == CF_E_NOT_FOUND) {
        CF_GUARD_OUT(release_key_create(k, s));
        rc = release_key_read(s, pub, &wrapped);
    }
    CF_GUARD_OUT(rc);
    rc = cf_hsm_unwrap(k->hsm, (const uint8_t *)RELEASE_KEY_AAD, strlen(RELEASE_KEY_AAD),
                       wrapped.data, wrapped.len, &sk);
    if (rc == CF_E_DECRYPT) {
        rc = cf_err_set(CF_E_STORE, "the stored KMS release key does not unwrap under this HSM's "
                        "master key (another HSM token, or the store was modified)");
        goto out;
    }
    CF_GUARD_OUT(rc);
    CF_ENSURE_OUT(sk.len == CF_HPKE_SK_LEN, CF_E_STORE);
    CF_GUARD_OUT(cf_hpke_key_from_private(CF_HPKE_KEM_X25519_SHA256, sk.data, sk.len, &k->release));
    derived = cf_hpke_key_pub(k->release, &dlen);
    if (derived == NULL || dlen != CF_KMS_X25519_LEN || !cf_ct_eq(derived, pub, dlen)) {
        rc = cf_err_set(CF_E_STORE, "the stored KMS release key does not match its public key");
        goto out;
    }
    CF_GUARD_OUT(cf_hpke_key_public_only(k->release, &k->release_pub));
    CF_GUARD_OUT(kid_of(pub, k->release_kid));
out:
    kms_store_put(k, s);
    cf_buf_free(&wrapped);
    cf_buf_free(&sk);
    return rc;
}

/* ---- open / close ----------------------------------------------------------------- */

int cf_kms_open(const cf_kms_opts *o, cf_kms **ret)
{
    cf_kms *k = NULL;
    cf_store *s = NULL;
    int rc;

    CF_ENSURE(o != NULL && ret != NULL && o->hsm != NULL && o->keys != NULL && o->manifest != NULL &&
                  o->store_dsn != NULL && o->audit != NULL,
              CF_E_INVAL);
    if (strncmp(o->store_dsn, "sqlite::memory:", 15) == 0)
        return cf_err_set(CF_E_CONFIG, "the KMS needs a shared store: \"sqlite::memory:\" gives "
                          "every connection its own database");
    if (o->otk_ttl > CF_KMS_OTK_TTL_MAX)
        return cf_err_set(CF_E_CONFIG, "otk.ttl must be at most %d seconds", CF_KMS_OTK_TTL_MAX);
    if (o->reattest_interval > CF_KMS_REATTEST_MAX_S)
        return cf_err_set(CF_E_CONFIG, "reattest.interval must be at most %d seconds",
                          CF_KMS_REATTEST_MAX_S);
    k = calloc(1, sizeof(*k));
    CF_ENSURE(k != NULL, CF_E_NOMEM);
    pthread_mutex_init(&k->pool_mu, NULL);
    k->hsm = o->hsm;
    k->keys = o->keys;
    k->manifest = o->manifest;
    k->otk_ttl = o->otk_ttl ? o->otk_ttl : CF_KMS_OTK_TTL_DEFAULT;
    k->interval = o->reattest_interval ? o->reattest_interval : CF_KMS_REATTEST_DEFAULT_S;
    k->max_nonces = o->max_live_nonces ? o->max_live_nonces : CF_KMS_MAX_LIVE_NONCES;
    k->clock = o->clock;
    k->clock_arg = o->clock_arg;
    k->audit = o->audit;
    k->audit_arg = o->audit_arg;
    k->prof = o->prof;
    k->dsn = cf_strndup_max(o->store_dsn, CF_STORE_MAX_DSN);
    CF_ENSURE_OUT(k->dsn != NULL, CF_E_NOMEM);
    rc = cf_verifier_new(o->manifest, &k->verifier);
    if (rc != 0) {
        rc = cf_err_set(CF_E_CONFIG, "manifest: %s", cf_err_detail(rc));
        goto out;
    }
    CF_GUARD_OUT(cf_store_open(k->dsn, &s));
    CF_GUARD_OUT(cf_store_migrate(s, "kms", kms_migrations, CF_ARRAY_LEN(kms_migrations)));
    kms_store_put(k, s);
    s = NULL;
    CF_GUARD_OUT(release_key_load(k));
    *ret = k;
    k = NULL;
out:
    cf_store_close(s);
    cf_kms_close(k);
    return rc;
}

void cf_kms_close(cf_kms *k)
{
    if (k == NULL)
        return;
    for (size_t i = 0; i < k->nidle; i++)
        cf_store_close(k->idle[i]);
    cf_hpke_key_free(k->release);
    cf_hpke_key_free(k->release_pub);
    cf_verifier_free(k->verifier);
    pthread_mutex_destroy(&k->pool_mu);
    free(k->dsn);
    free(k);
}

/* ---- background work ------------------------------------------------------------- */

typedef struct {
    cf_kms *k;
    int64_t now;
    cf_kms_tick_stats st;
} purge_ctx;

static int purge_tx(cf_store *s, void *arg)
{
    purge_ctx *p = arg;
    int64_t expired = 0, otks = 0, nonces = 0, tokens = 0;
    kms_op o;

    /* Issued OTKs past their TTL lose their sealed value at once (state
     * "expired"); the row stays CF_KMS_OTK_RETAIN_S so a late release is told
     * "expired" (410) rather than "unknown" (404). */
    CF_GUARD(cf_store_exec(s,
                           "UPDATE kms_otk SET state = 'expired', sealed = NULL WHERE id IN"
                           " (SELECT id FROM kms_otk WHERE state = 'issued' AND expires_at <= ?"
                           " LIMIT ?)",
                           CF_STORE_ARGS(cf_sv_int(p->now), cf_sv_int(CF_KMS_TASK_BATCH)),
                           &expired));
    CF_GUARD(cf_store_exec(s,
                           "DELETE FROM kms_otk WHERE id IN (SELECT id FROM kms_otk WHERE"
                           " state <> 'issued' AND expires_at < ? LIMIT ?)",
                           CF_STORE_ARGS(cf_sv_int(p->now - CF_KMS_OTK_RETAIN_S),
                                         cf_sv_int(CF_KMS_TASK_BATCH)),
                           &otks));
    CF_GUARD(cf_store_exec(s, "DELETE FROM kms_nonce WHERE expires_at <= ?",
                           CF_STORE_ARGS(cf_sv_int(p->now)), &nonces));
    CF_GUARD(cf_store_exec(s, "DELETE FROM kms_join_token WHERE expires_at < ?",
                           CF_STORE_ARGS(cf_sv_int(p->now - CF_KMS_JOIN_RETAIN_S)), &tokens));
    p->st.otks_expired = (size_t)expired;
    p->st.otks_deleted = (size_t)otks;
    p->st.nonces_deleted = (size_t)nonces;
    p->st.tokens_deleted = (size_t)tokens;
    if (expired == 0 && otks == 0 && tokens == 0)
        return 0; /* nothing worth an event (nonce expiry alone is routine) */
    kms_op_init(&o, p->k, NULL, "otk.purge");
    return kms_op_audit(&o, "success",
                        json_pack("{s:I,s:I,s:I,s:I}", "otks_expired", (json_int_t)expired,
                                  "otks_deleted", (json_int_t)otks, "nonces_deleted",
                                  (json_int_t)nonces, "join_tokens_deleted", (json_int_t)tokens));
}

int cf_kms_purge(cf_kms *k, cf_kms_tick_stats *ret)
{
    purge_ctx p;
    cf_store *s = NULL;
    int rc;

    CF_ENSURE(k != NULL, CF_E_INVAL);
    memset(&p, 0, sizeof(p));
    p.k = k;
    p.now = kms_now(k);
    atomic_store(&k->last_purge, p.now);
    CF_GUARD(kms_store_get(k, &s));
    rc = cf_store_tx(s, purge_tx, &p);
    kms_store_put(k, s);
    if (rc == 0 && ret != NULL) {
        ret->otks_expired += p.st.otks_expired;
        ret->otks_deleted += p.st.otks_deleted;
        ret->nonces_deleted += p.st.nonces_deleted;
        ret->tokens_deleted += p.st.tokens_deleted;
    }
    return rc;
}

int cf_kms_tick(cf_kms *k, cf_kms_tick_stats *ret)
{
    cf_kms_tick_stats st;
    int64_t now;
    size_t n = 0;
    int rc, first = 0;

    CF_ENSURE(k != NULL, CF_E_INVAL);
    memset(&st, 0, sizeof(st));
    now = kms_now(k);
    rc = cf_kms_purge(k, &st);
    if (rc < 0) {
        cf_log(CF_LOG_WARN, "kms.purge_failed", "reason", cf_err_detail(rc), NULL);
        first = first ? first : rc;
    }
    rc = kms_quarantine_stale(k, now, &st.quarantined);
    if (rc < 0) {
        cf_log(CF_LOG_WARN, "kms.stale_check_failed", "reason", cf_err_detail(rc), NULL);
        first = first ? first : rc;
    }
    rc = kms_reconcile_revocations(k, &st.keys_revoked);
    if (rc < 0) {
        cf_log(CF_LOG_WARN, "kms.revocation_reconcile_failed", "reason", cf_err_detail(rc), NULL);
        first = first ? first : rc;
    }
    /* The rotation policy (kms/keys.h): at most a few batches per tick. */
    for (int i = 0; i < 4; i++) {
        n = 0;
        rc = cf_kms_keys_rotate_due(k->keys, now, &n);
        st.rotated += n;
        if (rc < 0) {
            cf_log(CF_LOG_WARN, "kms.rotation_failed", "reason", cf_err_detail(rc), NULL);
            first = first ? first : rc;
            break;
        }
        if (n < CF_KMS_ROTATE_BATCH)
            break;
    }
    if (ret != NULL)
        *ret = st;
    return first;
}
