/*
 * One-time keys (DESIGN.md §4 "One-time keys", §5 steps 3 and 6; kms/kms.h;
 * docs/internals/kms.md "One-time keys"). 32 random bytes bound to (tenant,
 * client key, TEE), stored sealed under the tenant key, handed to the client
 * sealed to its key at issue and to the TEE sealed to its registered key at
 * release — at most once, whatever the number of KMS processes: the release
 * is a conditional UPDATE inside one transaction, and only the caller whose
 * UPDATE changed the row gets the response.
 */
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/log.h"
#include "base/parse.h"
#include "base/secmem.h"
#include "crypto/hash.h"
#include "kms/kms_int.h"

/* Seals the OTK at rest under the tenant's current key version; the binding
 * (tenant, TEE, otk id) goes into the AAD, so the sealed value opens only for
 * this OTK row and stops opening once the TEE is revoked (kms/keys.h). The
 * tenant key is created on first use. */
static int seal_at_rest(cf_kms *k, const cf_kms_binding *b, const uint8_t *otk, cf_buf *sealed)
{
    cf_kms_caller kc = {0}; /* the internal caller: audited as "kms" by kms/keys.h */
    int rc;

    rc = cf_kms_keys_seal(k->keys, b, otk, CF_KMS_OTK_LEN, sealed);
    if (rc != CF_E_NOT_FOUND)
        return rc;
    rc = cf_kms_keys_create(k->keys, &kc, b->tenant, NULL, NULL);
    if (rc < 0 && rc != CF_E_EXISTS) /* EXISTS: another request created it first */
        return rc;
    return cf_kms_keys_seal(k->keys, b, otk, CF_KMS_OTK_LEN, sealed);
}

static void maybe_purge(cf_kms *k, int64_t now)
{
    int64_t last = atomic_load(&k->last_purge);
    int rc;

    if (now - last < CF_KMS_PURGE_MIN_INTERVAL_S ||
        !atomic_compare_exchange_strong(&k->last_purge, &last, now))
        return;
    rc = cf_kms_purge(k, NULL);
    if (rc < 0)
        cf_log(CF_LOG_WARN, "kms.purge_failed", "reason", cf_err_detail(rc), NULL);
}

/* ---- issue ------------------------------------------------------------------------------ */

typedef struct {
    cf_kms *k;
    kms_op *o;
    const char *tenant, *principal, *tee_id, *otk_id;
    const uint8_t *client_key;
    const cf_buf *sealed;
    int64_t now, expires_at;
} issue_ctx;

static int issue_tx(cf_store *s, void *arg)
{
    issue_ctx *c = arg;
    cf_kms_tee t;

    /* Re-checked here: the TEE may have been quarantined or revoked by another
     * request or KMS process since it was read. */
    CF_GUARD(kms_tee_read(s, c->tee_id, &t));
    CF_GUARD(kms_tee_usable(c->k, &t, c->tenant, c->now));
    CF_GUARD(cf_kms_tee_check_tx(s, c->tee_id));
    CF_GUARD(cf_store_exec(s,
                           "INSERT INTO kms_otk (id, tenant, tee_id, principal, client_key, sealed,"
                           " state, issued_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, 'issued', ?, ?)",
                           CF_STORE_ARGS(cf_sv_text(c->otk_id), cf_sv_text(c->tenant),
                                         cf_sv_text(c->tee_id), cf_sv_text(c->principal),
                                         cf_sv_blob(c->client_key, CF_KMS_X25519_LEN),
                                         cf_sv_blob(c->sealed->data, c->sealed->len),
                                         cf_sv_int(c->now), cf_sv_int(c->expires_at)),
                           NULL));
    return kms_op_audit(c->o, "success",
                        json_pack("{s:s,s:s,s:I}", "tee_id", c->tee_id, "principal", c->principal,
                                  "expires_at", (json_int_t)c->expires_at));
}

int cf_kms_otk_issue(cf_kms *k, const cf_kms_who *who, const char *tenant, const char *principal,
                     const uint8_t client_key[CF_KMS_X25519_LEN], const char *tee_id,
                     cf_kms_issued *ret)
{
    cf_hpke_key *cpk = NULL;
    uint8_t *otk = NULL;
    cf_store *s = NULL;
    cf_kms_issued out;
    cf_kms_binding b;
    cf_buf sealed, ct;
    cf_kms_tee t;
    issue_ctx c;
    kms_op o;
    int64_t now;
    int rc = 0;

    CF_ENSURE(k != NULL && ret != NULL, CF_E_INVAL);
    memset(&out, 0, sizeof(out));
    cf_buf_init(&sealed, CF_KMS_MAX_WRAPPED);
    cf_buf_init(&ct, sizeof(out.ct));
    kms_op_init(&o, k, who, "otk.issue");
    kms_op_tenant(&o, tenant);
    now = kms_now(k);
    if (!cf_kms_tenant_valid(tenant) || !kms_text_ok(principal, CF_ID_MAX_LEN)) {
        rc = cf_err_set(CF_E_INVAL, "the caller's tenant or principal id is malformed");
        goto out;
    }
    if (client_key == NULL) {
        rc = cf_err_set(CF_E_INVAL, "no client key registered for this principal");
        goto out;
    }
    if (!cf_kms_id_valid(tee_id, "tee_")) {
        rc = cf_err_set(CF_E_INVAL, "tee_id is malformed (expected tee_ and 32 hex digits)");
        goto out;
    }
    /* RFC 9180 §7.1.4: the key must deserialise; small-order points fail at
     * the first DH below. */
    if (cf_hpke_key_from_public(CF_HPKE_KEM_X25519_SHA256, client_key, CF_KMS_X25519_LEN, &cpk) < 0) {
        rc = cf_err_set(CF_E_INVAL, "the client key (cnf.x25519) is not a valid X25519 public key");
        goto out;
    }
    maybe_purge(k, now);
    CF_GUARD_OUT(kms_store_get(k, &s));
    {
        KMS_PROF_START(k);
        rc = kms_tee_read(s, tee_id, &t);
        KMS_PROF_END(k, store_ns);
    }
    CF_GUARD_OUT(rc);
    CF_GUARD_OUT(kms_tee_usable(k, &t, tenant, now));

    CF_GUARD_OUT(kms_new_id("otk_", out.otk_id, sizeof(out.otk_id)));
    kms_op_resource(&o, "otk", out.otk_id);
    memcpy(out.tee_id, tee_id, CF_KMS_TEE_ID_LEN + 1);
    out.expires_at = now + (int64_t)k->otk_ttl;
    otk = cf_secure_alloc(CF_KMS_OTK_LEN);
    CF_ENSURE_OUT(otk != NULL, CF_E_NOMEM);
    CF_GUARD_OUT(cf_random_secret(otk, CF_KMS_OTK_LEN));
    b = (cf_kms_binding){.tenant = tenant, .tee_id = tee_id, .context = (const uint8_t *)out.otk_id,
                         .context_len = strlen(out.otk_id)};
    {
        KMS_PROF_START(k);
        rc = seal_at_rest(k, &b, otk, &sealed);
        KMS_PROF_END(k, keys_ns);
    }
    CF_GUARD_OUT(rc);
    {
        /* DESIGN.md §5 step 3: sealed to the client's registered key, from the
         * release key (mode auth): the gateway on the way learns nothing. */
        KMS_PROF_START(k);
        rc = cf_kms_wire_seal_otk(k->release, cpk, out.otk_id, tee_id, otk, out.enc, &ct);
        KMS_PROF_END(k, hpke_ns);
    }
    CF_GUARD_OUT(rc);
    CF_ENSURE_OUT(ct.len == sizeof(out.ct), CF_E_INTERNAL);
    memcpy(out.ct, ct.data, ct.len);
    c = (issue_ctx){.k = k, .o = &o, .tenant = tenant, .principal = principal, .tee_id = tee_id,
                    .otk_id = out.otk_id, .client_key = client_key, .sealed = &sealed, .now = now,
                    .expires_at = out.expires_at};
    {
        KMS_PROF_START(k);
        rc = cf_store_tx(s, issue_tx, &c);
        KMS_PROF_END(k, store_ns);
    }
    CF_GUARD_OUT(rc);
    if (k->prof != NULL)
        k->prof->calls++;
    *ret = out;
out:
    cf_secure_free(otk);
    cf_hpke_key_free(cpk);
    cf_buf_free(&sealed);
    cf_buf_free(&ct);
    kms_store_put(k, s);
    if (rc < 0)
        return kms_op_fail(&o, rc, json_pack("{s:s?}", "tee_id",
                                             cf_kms_id_valid(tee_id, "tee_") ? tee_id : NULL));
    return 0;
}

/* ---- release ------------------------------------------------------------------------------ */

typedef struct {
    char tenant[CF_ID_MAX_LEN + 1];
    char tee_id[CF_KMS_TEE_ID_LEN + 1];
    char state[16];
    uint8_t client_key[CF_KMS_X25519_LEN];
    int64_t expires_at;
} otk_row;

/* Reads the row (and, if sealed != NULL and the OTK is issued, its sealed value)
 * and applies the checks every release makes, in this order: unknown, other
 * TEE, released, expired. */
static int otk_read(cf_store *s, const char *otk_id, const char *tee_id, int64_t now, otk_row *ret,
                    cf_buf *sealed)
{
    cf_store_rows *r = NULL;
    otk_row o;
    size_t n = 0;
    bool null = true;
    int rc;

    memset(&o, 0, sizeof(o));
    rc = cf_store_query_row(s,
                            "SELECT tenant, tee_id, state, client_key, expires_at, sealed FROM kms_otk"
                            " WHERE id = ?",
                            CF_STORE_ARGS(cf_sv_text(otk_id)), &r);
    if (rc == CF_E_NOT_FOUND)
        return cf_err_set(CF_E_NOT_FOUND, "unknown OTK %s", otk_id);
    CF_GUARD(rc);
    CF_GUARD_OUT(cf_store_col_text(r, 0, o.tenant, sizeof(o.tenant), NULL));
    CF_GUARD_OUT(cf_store_col_text(r, 1, o.tee_id, sizeof(o.tee_id), NULL));
    CF_GUARD_OUT(cf_store_col_text(r, 2, o.state, sizeof(o.state), NULL));
    CF_GUARD_OUT(cf_store_col_blob(r, 3, o.client_key, sizeof(o.client_key), &n));
    CF_ENSURE_OUT(n == CF_KMS_X25519_LEN, CF_E_STORE);
    CF_GUARD_OUT(cf_store_col_i64(r, 4, &o.expires_at));
    CF_GUARD_OUT(cf_store_col_is_null(r, 5, &null));
    if (strcmp(o.tee_id, tee_id) != 0) {
        rc = cf_err_set(CF_E_FORBIDDEN, "OTK %s is not bound to TEE %s", otk_id, tee_id);
        goto out;
    }
    if (strcmp(o.state, "released") == 0) {
        rc = cf_err_set(CF_E_CONFLICT, "OTK already released");
        goto out;
    }
    if (strcmp(o.state, "issued") != 0 || now >= o.expires_at) {
        rc = cf_err_set(CF_E_EXPIRED, "OTK expired");
        goto out;
    }
    CF_ENSURE_OUT(!null, CF_E_STORE);
    if (sealed != NULL)
        CF_GUARD_OUT(cf_store_col_blob_buf(r, 5, sealed));
    *ret = o;
out:
    cf_store_rows_close(r);
    return rc;
}

typedef struct {
    cf_kms *k;
    kms_op *o;
    const char *otk_id, *tee_id;
    int64_t now;
} release_ctx;

static int release_tx(cf_store *s, void *arg)
{
    release_ctx *c = arg;
    int64_t changes = 0;
    cf_kms_tee t;
    otk_row o;

    /* Every check again, atomically with the release (DESIGN.md §2 rule 3:
     * the registry is consulted at the moment of release). */
    CF_GUARD(otk_read(s, c->otk_id, c->tee_id, c->now, &o, NULL));
    CF_GUARD(kms_tee_read(s, c->tee_id, &t));
    CF_GUARD(kms_tee_usable(c->k, &t, o.tenant, c->now));
    CF_GUARD(cf_kms_tee_check_tx(s, c->tee_id));
    /* At most once: exactly one caller changes the row (store.h). The sealed
     * value is erased in the same statement. */
    CF_GUARD(cf_store_exec(s,
                           "UPDATE kms_otk SET state = 'released', sealed = NULL, released_at = ?"
                           " WHERE id = ? AND state = 'issued' AND expires_at > ?",
                           CF_STORE_ARGS(cf_sv_int(c->now), cf_sv_text(c->otk_id), cf_sv_int(c->now)),
                           &changes));
    if (changes != 1)
        return cf_err_set(CF_E_CONFLICT, "OTK already released");
    return kms_op_audit(c->o, "success", json_pack("{s:s}", "tee_id", c->tee_id));
}

int cf_kms_otk_release(cf_kms *k, const cf_kms_who *who, const char *otk_id, const char *tee_id,
                       const uint8_t *enc, size_t enc_len, const uint8_t *ct, size_t ct_len,
                       cf_kms_release_resp *ret)
{
    cf_kms_released *rel = NULL;
    cf_kms_release_request rq;
    cf_hpke_key *tpk = NULL;
    cf_store *s = NULL;
    cf_kms_release_resp out;
    cf_kms_binding b;
    cf_buf sealed, plain, rct;
    char actor[CF_KMS_TEE_ID_LEN + 8];
    cf_kms_who me = {0};
    release_ctx c;
    cf_kms_tee t;
    otk_row row;
    kms_op o;
    int64_t now, skew;
    int rc = 0;

    CF_ENSURE(k != NULL && ret != NULL, CF_E_INVAL);
    if (who != NULL)
        me = *who;
    memset(&out, 0, sizeof(out));
    cf_buf_init(&sealed, CF_KMS_MAX_WRAPPED);
    cf_buf_init_secret(&plain, CF_KMS_OTK_LEN);
    cf_buf_init(&rct, sizeof(out.ct));
    kms_op_init(&o, k, &me, "otk.release");
    now = kms_now(k);
    if (!cf_kms_id_valid(otk_id, "otk_")) {
        rc = cf_err_set(CF_E_INVAL, "malformed OTK id (expected otk_ and 32 hex digits)");
        goto out;
    }
    kms_op_resource(&o, "otk", otk_id);
    if (!cf_kms_id_valid(tee_id, "tee_")) {
        rc = cf_err_set(CF_E_INVAL, "tee_id is malformed (expected tee_ and 32 hex digits)");
        goto out;
    }
    if (cf_fmt(actor, sizeof(actor), "tee:%s", tee_id) == 0)
        me.actor = actor;
    if (enc == NULL || enc_len != CF_KMS_ENC_LEN || ct == NULL || ct_len < CF_HPKE_NT ||
        ct_len > CF_KMS_RELEASE_REQ_MAX + CF_HPKE_NT) {
        rc = cf_err_set(CF_E_INVAL, "release proof: enc must be %d bytes and ct %d-%d bytes",
                        CF_KMS_ENC_LEN, CF_HPKE_NT, CF_KMS_RELEASE_REQ_MAX + CF_HPKE_NT);
        goto out;
    }
    CF_GUARD_OUT(kms_store_get(k, &s));
    {
        KMS_PROF_START(k);
        rc = kms_tee_read(s, tee_id, &t);
        KMS_PROF_END(k, store_ns);
    }
    CF_GUARD_OUT(rc);
    kms_op_tenant(&o, t.tenant);
    CF_GUARD_OUT(cf_hpke_key_from_public(CF_HPKE_KEM_X25519_SHA256, t.public_key, CF_KMS_X25519_LEN,
                                         &tpk));
    {
        /* Proof of possession: only the holder of the TEE's registered private
         * key can seal a request that opens with pkS = that key (RFC 9180 §5.1.3). */
        KMS_PROF_START(k);
        rc = cf_kms_wire_open_release_request(k->release, tpk, otk_id, enc, enc_len, ct, ct_len, &rq);
        KMS_PROF_END(k, hpke_ns);
    }
    if (rc == CF_E_DECRYPT || rc == CF_E_INVAL) {
        rc = cf_err_set(CF_E_FORBIDDEN, "release request is not sealed by the registered key of "
                        "TEE %s for this OTK", tee_id);
        goto out;
    }
    CF_GUARD_OUT(rc);
    if (strcmp(rq.otk_id, otk_id) != 0 || strcmp(rq.tee_id, tee_id) != 0) {
        rc = cf_err_set(CF_E_FORBIDDEN, "release request names another OTK or TEE");
        goto out;
    }
    skew = now - rq.ts;
    if (skew > CF_KMS_RELEASE_SKEW_S || skew < -CF_KMS_RELEASE_SKEW_S) {
        rc = cf_err_set(CF_E_FORBIDDEN, "release request timestamp is %lld s from now (limit %d s)",
                        (long long)skew, CF_KMS_RELEASE_SKEW_S);
        goto out;
    }
    {
        KMS_PROF_START(k);
        rc = otk_read(s, otk_id, tee_id, now, &row, &sealed);
        KMS_PROF_END(k, store_ns);
    }
    CF_GUARD_OUT(rc);
    CF_GUARD_OUT(kms_tee_usable(k, &t, row.tenant, now));

    /* Unsealed before the releasing transaction: a revoked tenant key or TEE
     * refuses here and leaves the OTK as it was; the row changes only if the
     * OTK can actually be delivered. */
    b = (cf_kms_binding){.tenant = row.tenant, .tee_id = tee_id, .context = (const uint8_t *)otk_id,
                         .context_len = strlen(otk_id)};
    {
        KMS_PROF_START(k);
        rc = cf_kms_keys_unseal(k->keys, &b, sealed.data, sealed.len, &plain);
        KMS_PROF_END(k, keys_ns);
    }
    CF_GUARD_OUT(rc);
    CF_ENSURE_OUT(plain.len == CF_KMS_OTK_LEN, CF_E_STORE);
    rel = cf_secure_alloc(sizeof(*rel));
    CF_ENSURE_OUT(rel != NULL, CF_E_NOMEM);
    memcpy(rel->otk_id, otk_id, CF_KMS_OTK_ID_LEN + 1);
    memcpy(rel->tee_id, tee_id, CF_KMS_TEE_ID_LEN + 1);
    memcpy(rel->tenant, row.tenant, sizeof(rel->tenant));
    memcpy(rel->otk, plain.data, CF_KMS_OTK_LEN);
    memcpy(rel->client_key, row.client_key, CF_KMS_X25519_LEN);
    {
        /* DESIGN.md §5 step 6: sealed to the TEE key, with tenant and client
         * key inside, before the commit, so that nothing but handing it over
         * happens after the OTK is marked released. */
        KMS_PROF_START(k);
        rc = cf_kms_wire_seal_release(k->release, tpk, rel, out.enc, &rct);
        KMS_PROF_END(k, hpke_ns);
    }
    CF_GUARD_OUT(rc);
    CF_ENSURE_OUT(rct.len <= sizeof(out.ct), CF_E_INTERNAL);
    memcpy(out.ct, rct.data, rct.len);
    out.ct_len = rct.len;
    c = (release_ctx){.k = k, .o = &o, .otk_id = otk_id, .tee_id = tee_id, .now = now};
    {
        KMS_PROF_START(k);
        rc = cf_store_tx(s, release_tx, &c);
        KMS_PROF_END(k, store_ns);
    }
    CF_GUARD_OUT(rc);
    *ret = out;
out:
    cf_secure_free(rel);
    cf_hpke_key_free(tpk);
    cf_buf_free(&sealed);
    cf_buf_free(&plain);
    cf_buf_free(&rct);
    kms_store_put(k, s);
    if (rc < 0)
        return kms_op_fail(&o, rc, json_pack("{s:s?}", "tee_id",
                                             cf_kms_id_valid(tee_id, "tee_") ? tee_id : NULL));
    return 0;
}
