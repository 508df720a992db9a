/*
 * Token-signing keys: creation, HSM wrapping, the in-memory key ring, JWKS,
 * rotation with overlap and retirement (docs/internals/iam.md "Signing keys").
 *
 * Store states: current (exactly one; signs) -> previous (published until
 * retire_after = rotation time + overlap) -> retired (unpublished, wrapped
 * private key deleted). The ring publishes current + previous keys whose
 * retire_after is still ahead, also before the retirement has been written.
 */
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/log.h"
#include "base/parse.h"
#include "base/secmem.h"
#include "iam/iam_int.h"

/* HSM wrap AAD: binds a wrapped key to its purpose and to its kid. */
#define LABEL_SIGNING "coffer/v1 iam-signing-key"
#define AAD_MAX (sizeof(LABEL_SIGNING) + CF_JWK_KID_MAX_LEN + 1)
#define WRAPPED_MAX (CF_ED25519_LEN + CF_HSM_WRAP_OVERHEAD)

_Static_assert(CF_IAM_SIGNING_KEYS_MAX <= CF_JWKS_MAX_KEYS, "the JWKS holds every published key");

int iam_ring_init(cf_iam *iam)
{
    iam_ring *r = &iam->ring;

    memset(r, 0, sizeof(*r));
    CF_ENSURE(pthread_rwlock_init(&r->lock, NULL) == 0, CF_E_NOMEM);
    pthread_mutex_init(&r->reload_mu, NULL);
    r->inited = true;
    return 0;
}

void iam_ring_destroy(iam_ring *r)
{
    if (!r->inited)
        return;
    cf_jwks_free(r->jwks);
    free(r->jwks_json);
    cf_key_free(r->current);
    pthread_rwlock_destroy(&r->lock);
    pthread_mutex_destroy(&r->reload_mu);
    memset(r, 0, sizeof(*r));
}

static int signing_aad(const char *kid, uint8_t aad[AAD_MAX], size_t *ret_len)
{
    size_t kl = strlen(kid), ll = sizeof(LABEL_SIGNING); /* label with its NUL as separator */

    CF_ENSURE(kl > 0 && kl <= CF_JWK_KID_MAX_LEN, CF_E_INVAL);
    memcpy(aad, LABEL_SIGNING, ll);
    memcpy(aad + ll, kid, kl);
    *ret_len = ll + kl;
    return 0;
}

/* ---- new keys ---- */

typedef struct {
    char kid[CF_JWK_KID_MAX_LEN + 1];
    uint8_t pub[CF_ED25519_LEN];
    uint8_t wrapped[WRAPPED_MAX];
    size_t wrapped_len;
} new_key;

/* Generates an Ed25519 key; kid = its RFC 7638 thumbprint; the private half
 * leaves this function only wrapped by the HSM master key. */
static int new_key_make(cf_iam *iam, new_key *nk)
{
    cf_key *k = NULL;
    cf_secret priv = {0};
    uint8_t aad[AAD_MAX];
    size_t aad_len = 0, pub_len = 0;
    cf_buf w;
    int rc;

    memset(nk, 0, sizeof(*nk));
    cf_buf_init(&w, WRAPPED_MAX);
    CF_GUARD_OUT(cf_key_generate(CF_KEY_ED25519, &k));
    CF_GUARD_OUT(cf_key_thumbprint(k, nk->kid));
    CF_GUARD_OUT(cf_key_export_public(k, nk->pub, sizeof(nk->pub), &pub_len));
    CF_ENSURE_OUT(pub_len == sizeof(nk->pub), CF_E_INTERNAL);
    CF_GUARD_OUT(cf_key_export_private(k, &priv));
    CF_GUARD_OUT(signing_aad(nk->kid, aad, &aad_len));
    CF_GUARD_OUT(cf_hsm_wrap(iam->hsm, aad, aad_len, priv.p, priv.len, &w));
    CF_ENSURE_OUT(w.len <= sizeof(nk->wrapped), CF_E_INTERNAL);
    memcpy(nk->wrapped, w.data, w.len);
    nk->wrapped_len = w.len;
out:
    cf_secret_free(&priv);
    cf_key_free(k);
    cf_buf_free(&w);
    return rc;
}

static int insert_current(cf_store *s, const new_key *nk, int64_t now)
{
    return cf_store_exec(s,
                         "INSERT INTO iam_signing_key (kid, alg, wrapped, public_key, created_at, status) "
                         "VALUES (?, 'EdDSA', ?, ?, ?, 'current')",
                         CF_STORE_ARGS(cf_sv_text(nk->kid), cf_sv_blob(nk->wrapped, nk->wrapped_len),
                                       cf_sv_blob(nk->pub, sizeof(nk->pub)), cf_sv_int(now)),
                         NULL);
}

/* Current key's kid and creation time; CF_E_NOT_FOUND if none. */
static int read_current(cf_store *s, char kid[CF_JWK_KID_MAX_LEN + 1], int64_t *ret_created)
{
    cf_store_rows *r = NULL;
    int rc;

    CF_GUARD(cf_store_query_row(s, "SELECT kid, created_at FROM iam_signing_key WHERE status = 'current'", NULL,
                                0, &r));
    rc = cf_store_col_text(r, 0, kid, CF_JWK_KID_MAX_LEN + 1, NULL);
    if (rc == 0)
        rc = cf_store_col_i64(r, 1, ret_created);
    cf_store_rows_close(r);
    return rc;
}

/* ---- first key ---- */

typedef struct {
    new_key nk;
    bool done;
} create_ctx;

static int create_body(cf_store *s, iam_op *op)
{
    create_ctx *c = op->arg;
    char kid[CF_JWK_KID_MAX_LEN + 1];
    int64_t created;
    int rc = read_current(s, kid, &created);

    c->done = false;
    if (rc == 0) { /* another replica was first */
        op->no_event = true;
        return 0;
    }
    if (rc != CF_E_NOT_FOUND)
        return rc;
    CF_GUARD(insert_current(s, &c->nk, op->now));
    iam_op_set_tenant(op, CF_PLATFORM_TENANT);
    iam_op_set_resource(op, "signing-key/%s", c->nk.kid);
    iam_op_detail_str(op, "alg", "EdDSA");
    c->done = true;
    return 0;
}

int iam_ring_ensure(cf_iam *iam)
{
    cf_iam_caller who = {.actor = iam_internal_actor()};
    create_ctx c;
    iam_op op = {.iam = iam, .who = &who, .action = "iam.signing_key.create", .body = create_body, .arg = &c};
    char kid[CF_JWK_KID_MAX_LEN + 1];
    int64_t created;
    cf_store *s = NULL;
    int rc;

    CF_GUARD(iam_store_get(iam, &s));
    rc = read_current(s, kid, &created);
    iam_store_put(iam, s);
    if (rc != CF_E_NOT_FOUND)
        return rc;
    memset(&c, 0, sizeof(c));
    CF_GUARD(new_key_make(iam, &c.nk));
    rc = iam_run_audited(&op, 0);
    if (rc == 0 && c.done)
        cf_log(CF_LOG_INFO, "iam.signing_key_created", "kid", c.nk.kid, NULL);
    cf_wipe(&c.nk, sizeof(c.nk));
    return rc;
}

/* ---- the ring ---- */

static int unwrap_key(cf_iam *iam, const char *kid, const uint8_t *wrapped, size_t wlen, const uint8_t *pub,
                      cf_key **ret)
{
    uint8_t aad[AAD_MAX];
    size_t aad_len = 0;
    cf_buf plain;
    cf_key *k = NULL, *p = NULL;
    int rc;

    /* The HSM wants room for ciphertext + tag even though it writes less. */
    cf_buf_init_secret(&plain, CF_ED25519_LEN + CF_HSM_WRAP_OVERHEAD);
    CF_GUARD_OUT(signing_aad(kid, aad, &aad_len));
    rc = cf_hsm_unwrap(iam->hsm, aad, aad_len, wrapped, wlen, &plain);
    if (rc == CF_E_DECRYPT) {
        rc = cf_err_set(CF_E_STORE, "signing key %s does not unwrap under this HSM's master key", kid);
        goto out;
    }
    CF_GUARD_OUT(rc);
    CF_GUARD_OUT(cf_key_from_private(CF_KEY_ED25519, plain.data, plain.len, &k));
    /* The stored public key is what verifiers get: it must be this key's. */
    CF_GUARD_OUT(cf_key_from_public(CF_KEY_ED25519, pub, CF_ED25519_LEN, &p));
    if (!cf_key_public_eq(k, p)) {
        rc = cf_err_set(CF_E_STORE, "signing key %s: stored public key does not match the private key", kid);
        goto out;
    }
    *ret = k;
    k = NULL;
out:
    cf_key_free(k);
    cf_key_free(p);
    cf_buf_free(&plain);
    return rc;
}

int iam_ring_reload(cf_iam *iam, int64_t min_age)
{
    iam_ring *ring = &iam->ring;
    cf_store *s = NULL;
    cf_store_rows *r = NULL;
    cf_jwks *set = NULL;
    cf_key *cur = NULL, *old_cur = NULL;
    char *json = NULL;
    char cur_kid[CF_JWK_KID_MAX_LEN + 1] = "";
    bool reuse = false;
    int64_t now = iam_now(iam);
    int rc, more;

    pthread_mutex_lock(&ring->reload_mu);
    if (min_age > 0 && ring->loaded_at != 0 && now - ring->loaded_at < min_age && now >= ring->loaded_at) {
        pthread_mutex_unlock(&ring->reload_mu);
        return 0;
    }
    CF_GUARD_OUT(cf_jwks_new(&set));
    CF_GUARD_OUT(iam_store_get(iam, &s));
    CF_GUARD_OUT(cf_store_query(s,
                                "SELECT kid, public_key, status, retire_after, wrapped FROM iam_signing_key "
                                "WHERE status IN ('current', 'previous') ORDER BY created_at DESC, kid LIMIT ?",
                                CF_STORE_ARGS(cf_sv_int(CF_IAM_SIGNING_KEYS_MAX + 1)), &r));
    while ((more = cf_store_next(r)) == 1) {
        char kid[CF_JWK_KID_MAX_LEN + 1], status[16];
        uint8_t pub[CF_ED25519_LEN], wrapped[WRAPPED_MAX];
        size_t plen = 0, wlen = 0;
        int64_t retire_after = 0;
        bool null = true;
        cf_key *pk = NULL;

        CF_GUARD_OUT(cf_store_col_text(r, 0, kid, sizeof(kid), NULL));
        CF_GUARD_OUT(cf_store_col_blob(r, 1, pub, sizeof(pub), &plen));
        CF_GUARD_OUT(cf_store_col_text(r, 2, status, sizeof(status), NULL));
        CF_GUARD_OUT(cf_store_col_is_null(r, 3, &null));
        if (!null)
            CF_GUARD_OUT(cf_store_col_i64(r, 3, &retire_after));
        CF_ENSURE_OUT(plen == sizeof(pub), CF_E_STORE);
        if (strcmp(status, "previous") == 0 && (null || retire_after <= now))
            continue; /* its overlap is over, retirement not yet written */
        CF_GUARD_OUT(cf_key_from_public(CF_KEY_ED25519, pub, plen, &pk));
        rc = cf_jwks_add(set, kid, pk);
        cf_key_free(pk);
        CF_GUARD_OUT(rc);
        if (strcmp(status, "current") == 0) {
            memcpy(cur_kid, kid, sizeof(kid));
            pthread_rwlock_rdlock(&ring->lock);
            reuse = ring->current != NULL && strcmp(ring->current_kid, kid) == 0;
            pthread_rwlock_unlock(&ring->lock);
            if (!reuse) {
                CF_GUARD_OUT(cf_store_col_blob(r, 4, wrapped, sizeof(wrapped), &wlen));
                CF_GUARD_OUT(unwrap_key(iam, kid, wrapped, wlen, pub, &cur));
            }
        }
    }
    CF_GUARD_OUT(more);
    if (cur_kid[0] == '\0') {
        rc = cf_err_set(CF_E_UNAVAILABLE, "the IAM store has no current signing key");
        goto out;
    }
    CF_GUARD_OUT(cf_jwks_serialise(set, &json));
    pthread_rwlock_wrlock(&ring->lock);
    cf_jwks_free(ring->jwks);
    free(ring->jwks_json);
    ring->jwks = set;
    ring->jwks_json = json;
    if (!reuse) {
        old_cur = ring->current;
        ring->current = cur;
        memcpy(ring->current_kid, cur_kid, sizeof(cur_kid));
        cur = NULL;
    }
    ring->loaded_at = now;
    pthread_rwlock_unlock(&ring->lock);
    set = NULL;
    json = NULL;
    rc = 0;
out:
    pthread_mutex_unlock(&ring->reload_mu);
    cf_store_rows_close(r);
    iam_store_put(iam, s);
    cf_jwks_free(set);
    free(json);
    cf_key_free(cur);
    cf_key_free(old_cur);
    return rc;
}

int iam_ring_mint(cf_iam *iam, const cf_principal *p, int64_t now, uint32_t ttl, char **ret_token,
                  char ret_kid[CF_JWK_KID_MAX_LEN + 1])
{
    iam_ring *ring = &iam->ring;
    int rc;

    /* Pick up a rotation made by another replica (cheap when fresh); if the
     * store is unreachable the loaded ring stays in use. */
    if (iam_ring_reload(iam, CF_IAM_KEYRING_REFRESH_S) != 0)
        cf_log(CF_LOG_WARN, "iam.ring_reload_failed", NULL);
    pthread_rwlock_rdlock(&ring->lock);
    if (ring->current == NULL) {
        rc = cf_err_set(CF_E_UNAVAILABLE, "no signing key loaded");
    } else {
        rc = cf_token_mint(ring->current, ring->current_kid, p, now, ttl, ret_token);
        if (rc == 0)
            memcpy(ret_kid, ring->current_kid, sizeof(ring->current_kid));
    }
    pthread_rwlock_unlock(&ring->lock);
    return rc;
}

static int verify_once(cf_iam *iam, const char *token, size_t len, cf_principal *ret)
{
    int rc;

    pthread_rwlock_rdlock(&iam->ring.lock);
    if (iam->ring.jwks == NULL)
        rc = cf_err_set(CF_E_UNAVAILABLE, "no signing keys loaded");
    else
        rc = cf_token_verify(token, len, iam->ring.jwks, iam_now(iam), ret);
    pthread_rwlock_unlock(&iam->ring.lock);
    return rc;
}

int cf_iam_verify(cf_iam *iam, const char *token, size_t len, cf_principal *ret)
{
    int rc;

    CF_ENSURE(token != NULL, CF_E_INVAL);
    rc = verify_once(iam, token, len, ret);
    if (rc == CF_E_UNAUTHENTICATED && strstr(cf_err_detail(rc), "kid") != NULL) {
        /* A key made by another replica: reload at most once a second. */
        char why[256];
        if (cf_fmt(why, sizeof(why), "%s", cf_err_detail(rc)) != 0)
            why[0] = '\0';
        if (iam_ring_reload(iam, 1) == 0)
            rc = verify_once(iam, token, len, ret);
        else
            rc = cf_err_set(rc, "%s", why);
    }
    return rc;
}

int cf_iam_jwks_json(cf_iam *iam, char **ret)
{
    char *s = NULL;

    if (iam_ring_reload(iam, CF_IAM_KEYRING_REFRESH_S) != 0)
        cf_log(CF_LOG_WARN, "iam.ring_reload_failed", NULL);
    pthread_rwlock_rdlock(&iam->ring.lock);
    if (iam->ring.jwks_json != NULL)
        s = cf_strndup_max(iam->ring.jwks_json, CF_JWKS_MAX_BYTES);
    pthread_rwlock_unlock(&iam->ring.lock);
    CF_ENSURE(s != NULL, CF_E_NOMEM);
    *ret = s;
    return 0;
}

int cf_iam_signing_current(cf_iam *iam, char ret_kid[CF_JWK_KID_MAX_LEN + 1])
{
    int rc = 0;

    pthread_rwlock_rdlock(&iam->ring.lock);
    if (iam->ring.current == NULL)
        rc = cf_err_set(CF_E_UNAVAILABLE, "no signing key loaded");
    else
        memcpy(ret_kid, iam->ring.current_kid, sizeof(iam->ring.current_kid));
    pthread_rwlock_unlock(&iam->ring.lock);
    return rc;
}

/* ---- rotation ---- */

typedef struct {
    new_key nk;
    bool manual;   /* tenant.manage check; not subject to the due time */
    bool rotated;
    char previous[CF_JWK_KID_MAX_LEN + 1];
} rotate_ctx;

static int rotate_body(cf_store *s, iam_op *op)
{
    rotate_ctx *c = op->arg;
    cf_store_rows *r = NULL;
    int64_t created = 0, published = 0, changed = 0;
    int rc;

    c->rotated = false;
    iam_op_set_tenant(op, CF_PLATFORM_TENANT);
    iam_op_set_resource(op, "signing-key/%s", c->nk.kid);
    if (c->manual) {
        CF_GUARD(iam_check_actor(s, op->who));
        CF_GUARD(cf_authz_check(op->who->actor, CF_PERM_TENANT_MANAGE, CF_PLATFORM_TENANT));
    }
    rc = read_current(s, c->previous, &created);
    if (rc == CF_E_NOT_FOUND) {
        c->previous[0] = '\0';
    } else {
        CF_GUARD(rc);
        /* Re-checked inside the transaction: with several replicas each due
         * rotation happens once. */
        if (!c->manual && created + (int64_t)op->iam->rotate_every > op->now) {
            op->no_event = true;
            return 0;
        }
    }
    CF_GUARD(cf_store_query_row(s,
                                "SELECT CAST(count(*) AS BIGINT) FROM iam_signing_key WHERE status IN "
                                "('current', 'previous')",
                                NULL, 0, &r));
    rc = cf_store_col_i64(r, 0, &published);
    cf_store_rows_close(r);
    CF_GUARD(rc);
    if (published >= CF_IAM_SIGNING_KEYS_MAX)
        return cf_err_set(CF_E_CONFLICT,
                          "%d signing keys are still published (overlap of earlier rotations): try again "
                          "after the oldest is retired",
                          CF_IAM_SIGNING_KEYS_MAX);
    if (c->previous[0] != '\0') {
        CF_GUARD(cf_store_exec(s,
                               "UPDATE iam_signing_key SET status = 'previous', retire_after = ? WHERE "
                               "status = 'current'",
                               CF_STORE_ARGS(cf_sv_int(op->now + (int64_t)op->iam->overlap)), &changed));
        CF_ENSURE(changed == 1, CF_E_CONFLICT);
        iam_op_detail_str(op, "previous", c->previous);
        iam_op_detail_int(op, "previous_retire_after", op->now + (int64_t)op->iam->overlap);
    }
    CF_GUARD(insert_current(s, &c->nk, op->now));
    iam_op_detail_str(op, "trigger", c->manual ? "manual" : "schedule");
    c->rotated = true;
    return 0;
}

static int rotate(cf_iam *iam, const cf_iam_caller *who, bool manual, bool *ret_rotated,
                  char ret_kid[CF_JWK_KID_MAX_LEN + 1])
{
    rotate_ctx c;
    iam_op op = {.iam = iam, .who = who, .action = "iam.signing_key.rotate", .body = rotate_body, .arg = &c};
    int rc;

    memset(&c, 0, sizeof(c));
    c.manual = manual;
    rc = new_key_make(iam, &c.nk);
    if (rc == 0) {
        rc = iam_run_audited(&op, 0);
    } else {
        iam_op_set_tenant(&op, CF_PLATFORM_TENANT);
        rc = iam_run_audited(&op, rc);
    }
    if (rc == 0 && c.rotated) {
        cf_log(CF_LOG_INFO, "iam.signing_key_rotated", "kid", c.nk.kid, "previous", c.previous, NULL);
        if (ret_kid != NULL)
            memcpy(ret_kid, c.nk.kid, sizeof(c.nk.kid));
    }
    if (ret_rotated != NULL)
        *ret_rotated = rc == 0 && c.rotated;
    cf_wipe(&c.nk, sizeof(c.nk));
    if (rc == 0)
        rc = iam_ring_reload(iam, 0);
    return rc;
}

int cf_iam_signing_rotate(cf_iam *iam, const cf_iam_caller *who, char ret_kid[CF_JWK_KID_MAX_LEN + 1])
{
    char kid[CF_JWK_KID_MAX_LEN + 1];

    CF_GUARD(rotate(iam, who, true, NULL, kid));
    if (ret_kid != NULL)
        memcpy(ret_kid, kid, sizeof(kid));
    return 0;
}

/* ---- retirement ---- */

static int retire_body(cf_store *s, iam_op *op)
{
    cf_store_rows *r = NULL;
    json_t *kids = json_array();
    int64_t changed = 0;
    int rc, more;

    CF_ENSURE(kids != NULL, CF_E_NOMEM);
    iam_op_set_tenant(op, CF_PLATFORM_TENANT);
    iam_op_set_resource(op, "signing-keys");
    CF_GUARD_OUT(cf_store_query(s,
                                "SELECT kid FROM iam_signing_key WHERE status = 'previous' AND retire_after <= ? "
                                "ORDER BY kid LIMIT ?",
                                CF_STORE_ARGS(cf_sv_int(op->now), cf_sv_int(CF_IAM_SIGNING_KEYS_MAX * 4)), &r));
    while ((more = cf_store_next(r)) == 1) {
        char kid[CF_JWK_KID_MAX_LEN + 1];
        CF_GUARD_OUT(cf_store_col_text(r, 0, kid, sizeof(kid), NULL));
        CF_ENSURE_OUT(json_array_append_new(kids, json_string(kid)) == 0, CF_E_NOMEM);
    }
    CF_GUARD_OUT(more);
    cf_store_rows_close(r);
    r = NULL;
    if (json_array_size(kids) == 0) {
        op->no_event = true;
        rc = 0;
        goto out;
    }
    /* The wrapped private key is deleted: a retired key can never sign again. */
    CF_GUARD_OUT(cf_store_exec(s,
                               "UPDATE iam_signing_key SET status = 'retired', wrapped = NULL, retired_at = ? "
                               "WHERE status = 'previous' AND retire_after <= ?",
                               CF_STORE_ARGS(cf_sv_int(op->now), cf_sv_int(op->now)), &changed));
    if (op->details == NULL)
        op->details = json_object();
    if (op->details != NULL) {
        json_object_set(op->details, "kids", kids);
        json_object_set_new(op->details, "count", json_integer(changed));
    }
    rc = 0;
out:
    cf_store_rows_close(r);
    json_decref(kids);
    return rc;
}

int cf_iam_signing_maintain(cf_iam *iam, bool *ret_rotated)
{
    cf_iam_caller who = {.actor = iam_internal_actor()};
    iam_op op = {.iam = iam, .who = &who, .action = "iam.signing_key.retire", .body = retire_body};
    char kid[CF_JWK_KID_MAX_LEN + 1];
    int64_t created = 0, now = iam_now(iam);
    bool rotated = false;
    cf_store *s = NULL;
    int rc;

    CF_GUARD(iam_run_audited(&op, 0));
    CF_GUARD(iam_store_get(iam, &s));
    rc = read_current(s, kid, &created);
    iam_store_put(iam, s);
    if (rc == CF_E_NOT_FOUND || (rc == 0 && created + (int64_t)iam->rotate_every <= now))
        rc = rotate(iam, &who, false, &rotated, NULL);
    CF_GUARD(rc);
    CF_GUARD(iam_ring_reload(iam, 0));
    if (ret_rotated != NULL)
        *ret_rotated = rotated;
    return 0;
}
