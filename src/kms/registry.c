/*
 * TEE registry: join tokens, nonces, registration with evidence the KMS
 * verifies itself, re-attestation, quarantine and revocation (kms/kms.h;
 * docs/internals/kms.md "Registry"). DESIGN.md §2 rules 1, 3, 4.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attest/binding.h"
#include "base/err.h"
#include "base/log.h"
#include "base/parse.h"
#include "base/secmem.h"
#include "crypto/hash.h"
#include "kms/kms_int.h"

#define TOKEN_PREFIX "cjt_"
#define TOKEN_B64_LEN 43 /* base64url of 32 bytes */
#define TEE_COLS                                                                           \
    "id, tenant, deployment, platform, public_key, measurement, chip_id, evidence_digest,"  \
    " status, reason, registered_at, last_attested_at, attestation_count, join_token_id, endpoint"

static const char *const status_names[] = {"active", "quarantined", "revoked"};

const char *cf_kms_tee_status_name(cf_kms_tee_status s)
{
    return (unsigned)s < CF_ARRAY_LEN(status_names) ? status_names[s] : "unknown";
}

static int status_parse(const char *s, cf_kms_tee_status *ret)
{
    for (size_t i = 0; i < CF_ARRAY_LEN(status_names); i++) {
        if (strcmp(s, status_names[i]) == 0) {
            *ret = (cf_kms_tee_status)i;
            return 0;
        }
    }
    return cf_err_set(CF_E_STORE, "kms store holds an unknown TEE status");
}

/* A reason for the store and audit events: truncated (ASCII input) to
 * CF_KMS_MAX_REASON; anything that is not clean text becomes a fixed phrase. */
static void set_reason(char out[CF_KMS_MAX_REASON + 1], const char *fmt, ...) CF_PRINTF(2, 3);
static void set_reason(char out[CF_KMS_MAX_REASON + 1], const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    (void)vsnprintf(out, CF_KMS_MAX_REASON + 1, fmt, ap);
    va_end(ap);
    if (!kms_text_ok(out, CF_KMS_MAX_REASON))
        memcpy(out, "attestation failed", sizeof("attestation failed"));
}

json_t *cf_kms_tee_to_json(const cf_kms_tee *t)
{
    char pk[CF_KMS_X25519_LEN * 2];
    json_t *v;

    cf_b64url_encode(t->public_key, CF_KMS_X25519_LEN, pk);
    v = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:I,s:I,s:I}", "id", t->id, "tenant",
                  t->tenant, "deployment", t->deployment, "platform", t->platform, "public_key", pk,
                  "measurement", t->measurement, "chip_id", t->chip_id, "evidence_digest",
                  t->evidence_digest, "status", cf_kms_tee_status_name(t->status), "registered_at",
                  (json_int_t)t->registered_at, "last_attested_at", (json_int_t)t->last_attested_at,
                  "attestation_count", (json_int_t)t->attestation_count);
    if (v != NULL && ((t->reason[0] != 0 && json_object_set_new(v, "reason", json_string(t->reason)) != 0) ||
                      (t->endpoint[0] != 0 &&
                       json_object_set_new(v, "endpoint", json_string(t->endpoint)) != 0))) {
        json_decref(v);
        return NULL;
    }
    return v;
}

/* ---- rows ------------------------------------------------------------------------- */

static int tee_from_row(cf_store_rows *r, cf_kms_tee *ret)
{
    cf_kms_tee t;
    char status[16];
    size_t n = 0;
    int64_t count;
    bool null;

    memset(&t, 0, sizeof(t));
    CF_GUARD(cf_store_col_text(r, 0, t.id, sizeof(t.id), NULL));
    CF_GUARD(cf_store_col_text(r, 1, t.tenant, sizeof(t.tenant), NULL));
    CF_GUARD(cf_store_col_text(r, 2, t.deployment, sizeof(t.deployment), NULL));
    CF_GUARD(cf_store_col_text(r, 3, t.platform, sizeof(t.platform), NULL));
    CF_GUARD(cf_store_col_blob(r, 4, t.public_key, sizeof(t.public_key), &n));
    if (n != CF_KMS_X25519_LEN)
        return cf_err_set(CF_E_STORE, "kms store holds a TEE key of %zu bytes", n);
    CF_GUARD(cf_store_col_text(r, 5, t.measurement, sizeof(t.measurement), NULL));
    CF_GUARD(cf_store_col_text(r, 6, t.chip_id, sizeof(t.chip_id), NULL));
    CF_GUARD(cf_store_col_text(r, 7, t.evidence_digest, sizeof(t.evidence_digest), NULL));
    CF_GUARD(cf_store_col_text(r, 8, status, sizeof(status), NULL));
    CF_GUARD(status_parse(status, &t.status));
    CF_GUARD(cf_store_col_is_null(r, 9, &null));
    if (!null)
        CF_GUARD(cf_store_col_text(r, 9, t.reason, sizeof(t.reason), NULL));
    CF_GUARD(cf_store_col_i64(r, 10, &t.registered_at));
    CF_GUARD(cf_store_col_i64(r, 11, &t.last_attested_at));
    CF_GUARD(cf_store_col_i64(r, 12, &count));
    t.attestation_count = count > 0 ? (uint64_t)count : 0;
    CF_GUARD(cf_store_col_text(r, 13, t.join_token_id, sizeof(t.join_token_id), NULL));
    CF_GUARD(cf_store_col_is_null(r, 14, &null));
    if (!null)
        CF_GUARD(cf_store_col_text(r, 14, t.endpoint, sizeof(t.endpoint), NULL));
    *ret = t;
    return 0;
}

int kms_tee_read(cf_store *s, const char *tee_id, cf_kms_tee *ret)
{
    cf_store_rows *r = NULL;
    int rc = 0;

    if (!cf_kms_id_valid(tee_id, "tee_"))
        return cf_err_set(CF_E_INVAL, "malformed TEE id (expected tee_ and 32 hex digits)");
    rc = cf_store_query_row(s, "SELECT " TEE_COLS " FROM kms_tee WHERE id = ?",
                            CF_STORE_ARGS(cf_sv_text(tee_id)), &r);
    if (rc == CF_E_NOT_FOUND)
        return cf_err_set(CF_E_NOT_FOUND, "unknown TEE %s", tee_id);
    CF_GUARD(rc);
    rc = tee_from_row(r, ret);
    cf_store_rows_close(r);
    return rc;
}

int kms_tee_usable(const cf_kms *k, const cf_kms_tee *t, const char *tenant, int64_t now)
{
    int64_t limit = 2 * (int64_t)k->interval, age = now - t->last_attested_at;

    if (tenant != NULL && strcmp(t->tenant, tenant) != 0)
        return cf_err_set(CF_E_FORBIDDEN, "TEE %s does not serve tenant %s", t->id, tenant);
    /* 403, not 409: on the release endpoint 409 means "already released" only. */
    if (t->status != CF_KMS_TEE_ACTIVE)
        return cf_err_set(CF_E_FORBIDDEN, "TEE %s is %s: no key release (%s)", t->id,
                          cf_kms_tee_status_name(t->status), t->reason[0] ? t->reason : "no reason");
    /* DESIGN.md §2 rule 4: stale = older than 2 x the re-attestation interval. */
    if (age > limit)
        return cf_err_set(CF_E_FORBIDDEN,
                          "attestation of TEE %s is stale (last %lld s ago, limit %lld s)", t->id,
                          (long long)age, (long long)limit);
    return 0;
}

/* ---- join tokens ---------------------------------------------------------------------- */

typedef struct {
    kms_op *o;
    const cf_kms_join_token *jt;
    const uint8_t *hash;
    int64_t now;
} jt_ctx;

static int jt_tx(cf_store *s, void *arg)
{
    jt_ctx *c = arg;

    CF_GUARD(cf_store_exec(s,
                           "INSERT INTO kms_join_token (id, token_hash, tenant, deployment, uses,"
                           " uses_left, created_at, expires_at, created_by)"
                           " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                           CF_STORE_ARGS(cf_sv_text(c->jt->id), cf_sv_blob(c->hash, CF_SHA256_LEN),
                                         cf_sv_text(c->jt->tenant), cf_sv_text(c->jt->deployment),
                                         cf_sv_int((int64_t)c->jt->uses),
                                         cf_sv_int((int64_t)c->jt->uses), cf_sv_int(c->now),
                                         cf_sv_int(c->jt->expires_at),
                                         cf_sv_text(c->o->who ? c->o->who->actor : NULL)),
                           NULL));
    return kms_op_audit(c->o, "success",
                        json_pack("{s:s,s:s,s:I,s:I}", "join_token_id", c->jt->id, "deployment",
                                  c->jt->deployment, "uses", (json_int_t)c->jt->uses, "expires_at",
                                  (json_int_t)c->jt->expires_at));
}

static int check_deployment(const cf_kms *k, const char *tenant, const char *deployment)
{
    const cf_manifest_deployment *d;

    if (!cf_kms_tenant_valid(tenant))
        return cf_err_set(CF_E_INVAL, "tenant must be 1-%d characters of A-Z a-z 0-9 . _ - "
                          "starting with a letter or digit", CF_ID_MAX_LEN);
    if (!cf_kms_tenant_valid(deployment) || strlen(deployment) > CF_NAME_MAX_LEN)
        return cf_err_set(CF_E_INVAL, "deployment must be 1-%d characters of A-Z a-z 0-9 . _ - "
                          "starting with a letter or digit", CF_NAME_MAX_LEN);
    d = cf_manifest_find_deployment(k->manifest, deployment);
    if (d == NULL)
        return cf_err_set(CF_E_NOT_FOUND, "deployment '%s' is not in the KMS manifest", deployment);
    if (strcmp(d->tenant, tenant) != 0)
        return cf_err_set(CF_E_FORBIDDEN, "deployment '%s' belongs to another tenant, not '%s'",
                          deployment, tenant);
    return 0;
}

int cf_kms_join_token_create(cf_kms *k, const cf_kms_who *who, const char *tenant,
                             const char *deployment, uint64_t ttl, uint64_t uses,
                             cf_kms_join_token *ret)
{
    cf_kms_join_token *jt = NULL;
    uint8_t raw[32], hash[CF_SHA256_LEN];
    char b64[TOKEN_B64_LEN + 1];
    cf_store *s = NULL;
    kms_op o;
    jt_ctx c;
    int rc = 0;

    CF_ENSURE(k != NULL && ret != NULL, CF_E_INVAL);
    kms_op_init(&o, k, who, "join_token.create");
    kms_op_tenant(&o, tenant);
    CF_GUARD_OUT(check_deployment(k, tenant, deployment));
    if (ttl < 1 || ttl > CF_KMS_JOIN_TTL_MAX) {
        rc = cf_err_set(CF_E_RANGE, "ttl must be 1-%u seconds", (unsigned)CF_KMS_JOIN_TTL_MAX);
        goto out;
    }
    if (uses < 1 || uses > CF_KMS_JOIN_MAX_USES) {
        rc = cf_err_set(CF_E_RANGE, "uses must be 1-%d", CF_KMS_JOIN_MAX_USES);
        goto out;
    }
    jt = cf_secure_alloc(sizeof(*jt));
    CF_ENSURE_OUT(jt != NULL, CF_E_NOMEM);
    CF_GUARD_OUT(kms_new_id("jt_", jt->id, sizeof(jt->id)));
    kms_op_resource(&o, "join-token", jt->id);
    memcpy(jt->tenant, tenant, strlen(tenant) + 1);
    memcpy(jt->deployment, deployment, strlen(deployment) + 1);
    jt->uses = uses;
    CF_GUARD_OUT(cf_random_secret(raw, sizeof(raw)));
    cf_b64url_encode(raw, sizeof(raw), b64);
    CF_GUARD_OUT(cf_fmt(jt->token, sizeof(jt->token), "%s%s", TOKEN_PREFIX, b64));
    /* Only the hash is stored: a copy of the store does not register TEEs. */
    CF_GUARD_OUT(cf_sha256(jt->token, strlen(jt->token), hash));
    c = (jt_ctx){.o = &o, .jt = jt, .hash = hash, .now = kms_now(k)};
    jt->expires_at = c.now + (int64_t)ttl;
    CF_GUARD_OUT(kms_store_get(k, &s));
    CF_GUARD_OUT(cf_store_tx(s, jt_tx, &c));
    memcpy(ret, jt, sizeof(*jt));
out:
    cf_wipe(raw, sizeof(raw));
    cf_wipe(b64, sizeof(b64));
    cf_secure_free(jt);
    kms_store_put(k, s);
    if (rc < 0)
        return kms_op_fail(&o, rc, json_pack("{s:s?}", "deployment",
                                             cf_kms_tenant_valid(deployment) ? deployment : NULL));
    return 0;
}

typedef struct {
    char id[CF_KMS_ID_HEX + 4];
    char tenant[CF_ID_MAX_LEN + 1];
    char deployment[CF_NAME_MAX_LEN + 1];
    int64_t uses_left, expires_at;
} jt_row;

/* Finds the join token, checks it is usable at now. The lookup is by the
 * token's SHA-256 (an index lookup on a hash of 256 random bits tells a timing
 * observer nothing useful); the stored digest is then compared in constant time. */
static int jt_lookup(cf_store *s, const char *token, int64_t now, jt_row *ret)
{
    uint8_t hash[CF_SHA256_LEN], stored[CF_SHA256_LEN];
    cf_store_rows *r = NULL;
    size_t n = 0, tl;
    jt_row j;
    int rc = 0;

    memset(&j, 0, sizeof(j));
    tl = token != NULL ? strnlen(token, sizeof(TOKEN_PREFIX) + TOKEN_B64_LEN) : 0;
    if (tl != strlen(TOKEN_PREFIX) + TOKEN_B64_LEN || memcmp(token, TOKEN_PREFIX, 4) != 0)
        return cf_err_set(CF_E_UNAUTHENTICATED, "unknown join token");
    CF_GUARD(cf_sha256(token, tl, hash));
    rc = cf_store_query_row(s,
                            "SELECT id, token_hash, tenant, deployment, uses_left, expires_at"
                            " FROM kms_join_token WHERE token_hash = ?",
                            CF_STORE_ARGS(cf_sv_blob(hash, sizeof(hash))), &r);
    if (rc == CF_E_NOT_FOUND)
        return cf_err_set(CF_E_UNAUTHENTICATED, "unknown join token");
    CF_GUARD(rc);
    CF_GUARD_OUT(cf_store_col_text(r, 0, j.id, sizeof(j.id), NULL));
    CF_GUARD_OUT(cf_store_col_blob(r, 1, stored, sizeof(stored), &n));
    CF_GUARD_OUT(cf_store_col_text(r, 2, j.tenant, sizeof(j.tenant), NULL));
    CF_GUARD_OUT(cf_store_col_text(r, 3, j.deployment, sizeof(j.deployment), NULL));
    CF_GUARD_OUT(cf_store_col_i64(r, 4, &j.uses_left));
    CF_GUARD_OUT(cf_store_col_i64(r, 5, &j.expires_at));
    if (n != sizeof(stored) || !cf_ct_eq(stored, hash, sizeof(hash))) {
        rc = cf_err_set(CF_E_UNAUTHENTICATED, "unknown join token");
        goto out;
    }
    if (now >= j.expires_at) {
        rc = cf_err_set(CF_E_FORBIDDEN, "join token %s expired", j.id);
        goto out;
    }
    if (j.uses_left <= 0) {
        rc = cf_err_set(CF_E_FORBIDDEN, "join token %s has no uses left", j.id);
        goto out;
    }
    *ret = j;
out:
    cf_store_rows_close(r);
    return rc;
}

/* ---- nonces ----------------------------------------------------------------------- */

typedef struct {
    cf_kms *k;
    kms_op *o;
    const uint8_t *nonce;
    int64_t now;
} nonce_ctx;

static int nonce_tx(cf_store *s, void *arg)
{
    nonce_ctx *c = arg;
    cf_store_rows *r = NULL;
    int64_t live = 0;
    int rc = 0;

    /* Expired nonces go first, so the bound counts only live ones. */
    CF_GUARD(cf_store_exec(s, "DELETE FROM kms_nonce WHERE expires_at <= ?",
                           CF_STORE_ARGS(cf_sv_int(c->now)), NULL));
    CF_GUARD(cf_store_query_row(s, "SELECT COUNT(*) FROM kms_nonce", NULL, 0, &r));
    rc = cf_store_col_i64(r, 0, &live);
    cf_store_rows_close(r);
    CF_GUARD(rc);
    if (live >= (int64_t)c->k->max_nonces)
        return cf_err_set(CF_E_RATE_LIMITED, "too many outstanding nonces (%lld); retry in %d s",
                          (long long)live, CF_KMS_NONCE_TTL_S);
    CF_GUARD(cf_store_exec(s, "INSERT INTO kms_nonce (nonce, created_at, expires_at) VALUES (?, ?, ?)",
                           CF_STORE_ARGS(cf_sv_blob(c->nonce, CF_BINDING_NONCE_LEN),
                                         cf_sv_int(c->now),
                                         cf_sv_int(c->now + CF_KMS_NONCE_TTL_S)),
                           NULL));
    return kms_op_audit(c->o, "success",
                        json_pack("{s:I}", "expires_at", (json_int_t)(c->now + CF_KMS_NONCE_TTL_S)));
}

int cf_kms_nonce_issue(cf_kms *k, const cf_kms_who *who, uint8_t ret_nonce[CF_BINDING_NONCE_LEN],
                       int64_t *ret_expires_at)
{
    uint8_t nonce[CF_BINDING_NONCE_LEN];
    cf_store *s = NULL;
    nonce_ctx c;
    kms_op o;
    int rc = 0;

    CF_ENSURE(k != NULL && ret_nonce != NULL && ret_expires_at != NULL, CF_E_INVAL);
    kms_op_init(&o, k, who, "nonce.issue");
    CF_GUARD_OUT(cf_random(nonce, sizeof(nonce)));
    c = (nonce_ctx){.k = k, .o = &o, .nonce = nonce, .now = kms_now(k)};
    CF_GUARD_OUT(kms_store_get(k, &s));
    CF_GUARD_OUT(cf_store_tx(s, nonce_tx, &c));
    memcpy(ret_nonce, nonce, sizeof(nonce));
    *ret_expires_at = c.now + CF_KMS_NONCE_TTL_S;
out:
    kms_store_put(k, s);
    if (rc < 0)
        return kms_op_fail(&o, rc, NULL);
    return 0;
}

/* Read-only check (before the expensive verification). */
static int nonce_check(cf_store *s, const uint8_t nonce[CF_BINDING_NONCE_LEN], int64_t now)
{
    cf_store_rows *r = NULL;
    int64_t exp = 0;
    int rc = 0;

    rc = cf_store_query_row(s, "SELECT expires_at FROM kms_nonce WHERE nonce = ?",
                            CF_STORE_ARGS(cf_sv_blob(nonce, CF_BINDING_NONCE_LEN)), &r);
    if (rc == CF_E_NOT_FOUND)
        return cf_err_set(CF_E_FORBIDDEN, "nonce unknown or already used (ask POST "
                          "/v1/registry/nonce for a fresh one)");
    CF_GUARD(rc);
    rc = cf_store_col_i64(r, 0, &exp);
    cf_store_rows_close(r);
    CF_GUARD(rc);
    if (now >= exp)
        return cf_err_set(CF_E_FORBIDDEN, "nonce expired (nonces are valid %d s)", CF_KMS_NONCE_TTL_S);
    return 0;
}

/* Inside a transaction: the nonce is used once, by whoever deletes it. */
static int nonce_consume(cf_store *s, const uint8_t nonce[CF_BINDING_NONCE_LEN], int64_t now)
{
    int64_t changes = 0;

    CF_GUARD(cf_store_exec(s, "DELETE FROM kms_nonce WHERE nonce = ? AND expires_at > ?",
                           CF_STORE_ARGS(cf_sv_blob(nonce, CF_BINDING_NONCE_LEN), cf_sv_int(now)),
                           &changes));
    if (changes == 1)
        return 0;
    CF_GUARD(nonce_check(s, nonce, now));
    return cf_err_set(CF_E_FORBIDDEN, "nonce unknown or already used");
}

/* ---- evidence ------------------------------------------------------------------------ */

static int check_evidence(const cf_kms_evidence *ev)
{
    if (ev == NULL || ev->report == NULL || ev->cert == NULL)
        return cf_err_set(CF_E_INVAL, "evidence needs platform, report and cert");
    if (ev->platform == NULL || strcmp(ev->platform, CF_PLATFORM_SEV_SNP) != 0)
        return cf_err_set(CF_E_UNSUPPORTED, "evidence platform must be \"sev-snp\"");
    if (ev->report_len != CF_SNP_REPORT_SIZE)
        return cf_err_set(CF_E_INVAL, "evidence report must be %d bytes, not %zu",
                          CF_SNP_REPORT_SIZE, ev->report_len);
    if (ev->cert_len == 0 || ev->cert_len > CF_CERT_MAX_BYTES)
        return cf_err_set(CF_E_INVAL, "evidence cert must be 1-%u bytes", (unsigned)CF_CERT_MAX_BYTES);
    return 0;
}

static int verify(cf_kms *k, const cf_kms_evidence *ev, const char *deployment, const char *tenant,
                  const uint8_t *key, const uint8_t *nonce, int64_t now, cf_verify_result **ret)
{
    cf_verify_input in;

    memset(&in, 0, sizeof(in));
    in.platform = ev->platform;
    in.report = ev->report;
    in.report_len = ev->report_len;
    in.cert = ev->cert;
    in.cert_len = ev->cert_len;
    in.deployment = deployment;
    in.tenant = tenant;
    in.tee_public_key = key;
    in.tee_public_key_len = CF_KMS_X25519_LEN;
    in.nonce = nonce;
    in.at = (time_t)now;
    return cf_verifier_verify(k->verifier, &in, ret);
}

/* The names of the failed checks, for audit events. */
static json_t *failed_checks(const cf_verify_result *r)
{
    json_t *a = json_array();

    for (int i = 0; a != NULL && i < CF_CHECK__COUNT; i++)
        if (r->checks[i].status == CF_CHECK_FAILED)
            (void)json_array_append_new(a, json_string(r->checks[i].name));
    return a;
}

static int evidence_digest(const cf_kms_evidence *ev, char out[7 + 64 + 1])
{
    uint8_t d[CF_SHA256_LEN];
    char hex[2 * CF_SHA256_LEN + 1];

    /* The report is what the hardware signed; it names chip, TCB, measurement and binding. */
    CF_GUARD(cf_sha256(ev->report, ev->report_len, d));
    cf_hex_encode(d, sizeof(d), hex);
    return cf_fmt(out, 7 + 64 + 1, "sha256:%s", hex);
}

/* ---- registration ---------------------------------------------------------------------- */

typedef struct {
    kms_op *o;
    const jt_row *jt;
    const uint8_t *nonce;
    const cf_kms_tee *t;
    bool simulated;
    int64_t now;
} reg_ctx;

static int reg_tx(cf_store *s, void *arg)
{
    reg_ctx *c = arg;
    const cf_kms_tee *t = c->t;
    int64_t changes = 0;
    int rc = 0;

    /* The token and nonce were checked before verification; re-check and use
     * them here, atomically with the insert (another registration may have
     * used the last use or the nonce in between). */
    CF_GUARD(cf_store_exec(s,
                           "UPDATE kms_join_token SET uses_left = uses_left - 1"
                           " WHERE id = ? AND uses_left > 0 AND expires_at > ?",
                           CF_STORE_ARGS(cf_sv_text(c->jt->id), cf_sv_int(c->now)), &changes));
    if (changes != 1)
        return cf_err_set(CF_E_FORBIDDEN, "join token %s expired or has no uses left", c->jt->id);
    CF_GUARD(nonce_consume(s, c->nonce, c->now));
    rc = cf_store_exec(
        s,
        "INSERT INTO kms_tee (" TEE_COLS ", updated_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'active', NULL, ?, ?, 1, ?, ?, ?)",
        CF_STORE_ARGS(cf_sv_text(t->id), cf_sv_text(t->tenant), cf_sv_text(t->deployment),
                      cf_sv_text(t->platform), cf_sv_blob(t->public_key, CF_KMS_X25519_LEN),
                      cf_sv_text(t->measurement), cf_sv_text(t->chip_id),
                      cf_sv_text(t->evidence_digest), cf_sv_int(c->now), cf_sv_int(c->now),
                      cf_sv_text(t->join_token_id), cf_sv_text(t->endpoint[0] ? t->endpoint : NULL),
                      cf_sv_int(c->now)),
        NULL);
    if (rc == CF_E_EXISTS)
        return cf_err_set(CF_E_EXISTS, "this TEE public key is already registered (a restarted "
                          "TEE registers with a new key)");
    CF_GUARD(rc);
    return kms_op_audit(c->o, "success",
                        json_pack("{s:s,s:s,s:s,s:s,s:s,s:b}", "deployment", t->deployment,
                                  "measurement", t->measurement, "chip_id", t->chip_id,
                                  "evidence_digest", t->evidence_digest, "join_token_id",
                                  t->join_token_id, "simulated", c->simulated));
}

/* http(s)://host[:port][/path]: printable ASCII without quotes, backslashes or
 * spaces (the gateway's rule), so it can be used as a base URL as is. */
static bool endpoint_ok(const char *s)
{
    size_t n = strnlen(s, CF_KMS_MAX_ENDPOINT + 1), skip;

    if (n > CF_KMS_MAX_ENDPOINT)
        return false;
    if (strncmp(s, "http://", 7) == 0)
        skip = 7;
    else if (strncmp(s, "https://", 8) == 0)
        skip = 8;
    else
        return false;
    if (n == skip || s[skip] == '/')
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= 0x20 || c >= 0x7f || c == '"' || c == '\\')
            return false;
    }
    return true;
}

int cf_kms_tee_register(cf_kms *k, const cf_kms_who *who, const char *join_token,
                        const uint8_t nonce[CF_BINDING_NONCE_LEN],
                        const uint8_t public_key[CF_KMS_X25519_LEN], const char *endpoint,
                        const cf_kms_evidence *ev, cf_kms_tee *ret_tee,
                        cf_verify_result **ret_result)
{
    cf_verify_result *vr = NULL;
    cf_hpke_key *pk = NULL;
    cf_store *s = NULL;
    cf_kms_tee t;
    jt_row jt;
    kms_op o;
    reg_ctx c;
    char actor[64];
    cf_kms_who me = {0};
    json_t *fail_details = NULL;
    int64_t now;
    int rc = 0;

    CF_ENSURE(k != NULL && ret_tee != NULL, CF_E_INVAL);
    if (ret_result != NULL)
        *ret_result = NULL;
    if (who != NULL)
        me = *who;
    memset(&t, 0, sizeof(t));
    kms_op_init(&o, k, &me, "tee.register");
    now = kms_now(k);
    CF_ENSURE_OUT(nonce != NULL && public_key != NULL, CF_E_INVAL);
    if (endpoint != NULL && !endpoint_ok(endpoint)) {
        rc = cf_err_set(CF_E_INVAL, "endpoint must be an http:// or https:// URL of at most %d "
                        "printable bytes", CF_KMS_MAX_ENDPOINT);
        goto out;
    }
    CF_GUARD_OUT(check_evidence(ev));
    /* The key must be a usable HPKE recipient (X25519, RFC 9180 §7.1.1). */
    rc = cf_hpke_key_from_public(CF_HPKE_KEM_X25519_SHA256, public_key, CF_KMS_X25519_LEN, &pk);
    if (rc < 0) {
        rc = cf_err_set(CF_E_INVAL, "public_key is not a valid X25519 public key");
        goto out;
    }
    CF_GUARD_OUT(kms_store_get(k, &s));
    {
        KMS_PROF_START(k);
        rc = jt_lookup(s, join_token, now, &jt);
        if (rc == 0)
            rc = nonce_check(s, nonce, now);
        KMS_PROF_END(k, store_ns);
    }
    CF_GUARD_OUT(rc);
    if (cf_fmt(actor, sizeof(actor), "join-token:%s", jt.id) == 0)
        me.actor = actor;
    kms_op_tenant(&o, jt.tenant);
    CF_GUARD_OUT(kms_new_id("tee_", t.id, sizeof(t.id)));
    kms_op_resource(&o, "tee", t.id);

    /* DESIGN.md §2 rule 1: the KMS verifies the evidence itself, against its
     * own manifest, for the deployment the operator named in the join token,
     * bound to this key and to a nonce this KMS issued. */
    CF_GUARD_OUT(verify(k, ev, jt.deployment, jt.tenant, public_key, nonce, now, &vr));
    if (!vr->verified) {
        rc = cf_verify_result_status(vr); /* CF_E_VERIFY, "<check>: <message>" */
        fail_details = json_pack("{s:s,s:o?}", "deployment", jt.deployment, "failed_checks",
                                 failed_checks(vr));
        goto out;
    }
    memcpy(t.tenant, jt.tenant, sizeof(t.tenant));
    memcpy(t.deployment, jt.deployment, sizeof(t.deployment));
    memcpy(t.platform, CF_PLATFORM_SEV_SNP, sizeof(CF_PLATFORM_SEV_SNP));
    memcpy(t.public_key, public_key, CF_KMS_X25519_LEN);
    memcpy(t.measurement, vr->facts.measurement, sizeof(t.measurement));
    memcpy(t.chip_id, vr->facts.chip_id, sizeof(t.chip_id));
    CF_GUARD_OUT(evidence_digest(ev, t.evidence_digest));
    t.status = CF_KMS_TEE_ACTIVE;
    t.registered_at = t.last_attested_at = now;
    t.attestation_count = 1;
    memcpy(t.join_token_id, jt.id, sizeof(t.join_token_id));
    if (endpoint != NULL)
        memcpy(t.endpoint, endpoint, strlen(endpoint) + 1);
    c = (reg_ctx){.o = &o, .jt = &jt, .nonce = nonce, .t = &t, .simulated = vr->facts.simulated,
                  .now = now};
    {
        KMS_PROF_START(k);
        rc = cf_store_tx(s, reg_tx, &c);
        KMS_PROF_END(k, store_ns);
    }
    CF_GUARD_OUT(rc);
    cf_log(CF_LOG_INFO, "kms.tee_registered", "tee", t.id, "tenant", t.tenant, "deployment",
           t.deployment, NULL);
    *ret_tee = t;
out:
    kms_store_put(k, s);
    cf_hpke_key_free(pk);
    if (rc < 0) {
        rc = kms_op_fail(&o, rc, fail_details);
        if (rc == CF_E_VERIFY && ret_result != NULL) {
            *ret_result = vr;
            vr = NULL;
        }
    }
    cf_verify_result_free(vr);
    return rc;
}

/* ---- re-attestation --------------------------------------------------------------------- */

typedef struct {
    cf_kms *k;
    kms_op *o;
    const char *tee_id;
    const uint8_t *nonce;
    bool ok;
    const char *reason;
    const cf_verify_result *vr;
    int64_t now;
} att_ctx;

static int att_tx(cf_store *s, void *arg)
{
    att_ctx *c = arg;
    int64_t changes = 0;

    CF_GUARD(nonce_consume(s, c->nonce, c->now));
    if (c->ok) {
        CF_GUARD(cf_store_exec(s,
                               "UPDATE kms_tee SET last_attested_at = ?, attestation_count ="
                               " attestation_count + 1, updated_at = ? WHERE id = ? AND status = 'active'",
                               CF_STORE_ARGS(cf_sv_int(c->now), cf_sv_int(c->now),
                                             cf_sv_text(c->tee_id)),
                               &changes));
        if (changes != 1)
            return cf_err_set(CF_E_CONFLICT, "TEE %s is no longer active", c->tee_id);
        return kms_op_audit(c->o, "success", NULL);
    }
    CF_GUARD(cf_store_exec(s,
                           "UPDATE kms_tee SET status = 'quarantined', reason = ?, updated_at = ?"
                           " WHERE id = ? AND status = 'active'",
                           CF_STORE_ARGS(cf_sv_text(c->reason), cf_sv_int(c->now),
                                         cf_sv_text(c->tee_id)),
                           &changes));
    if (changes != 1)
        return cf_err_set(CF_E_CONFLICT, "TEE %s is no longer active", c->tee_id);
    /* DESIGN.md §2 rule 4: the alert and the reason go to the audit log with the change. */
    c->o->action = "tee.quarantined";
    return kms_op_audit(c->o, "alert",
                        json_pack("{s:s,s:s,s:o?}", "trigger", "attestation", "reason", c->reason,
                                  "failed_checks", c->vr != NULL ? failed_checks(c->vr) : NULL));
}

/* Revokes the TEE's keys (kms/keys.h audits it). A failure here is logged and
 * retried by the background reconciliation: the registry status alone already
 * refuses every release. */
static void revoke_keys(cf_kms *k, const cf_kms_who *who, const char *tee_id, const char *reason)
{
    cf_kms_caller kc = {.principal = NULL, .request_id = who ? who->request_id : NULL};
    int rc = cf_kms_keys_revoke_tee(k->keys, &kc, tee_id, reason);

    if (rc < 0)
        cf_log(CF_LOG_ERROR, "kms.tee_key_revocation_failed", "tee", tee_id, "reason",
               cf_err_detail(rc), NULL);
}

static void hex_prefix(const char *hex, char out[17])
{
    memcpy(out, hex, 16);
    out[16] = 0;
}

int cf_kms_tee_attest(cf_kms *k, const cf_kms_who *who, const char *tee_id,
                      const uint8_t nonce[CF_BINDING_NONCE_LEN], const cf_kms_evidence *ev,
                      cf_kms_tee *ret_tee, bool *ret_quarantined, cf_verify_result **ret_result)
{
    cf_verify_result *vr = NULL;
    cf_store *s = NULL;
    char reason[CF_KMS_MAX_REASON + 1] = "";
    cf_kms_tee t;
    att_ctx c;
    kms_op o;
    int64_t now;
    int rc = 0;

    CF_ENSURE(k != NULL && ret_tee != NULL && ret_quarantined != NULL, CF_E_INVAL);
    if (ret_result != NULL)
        *ret_result = NULL;
    kms_op_init(&o, k, who, "tee.attest");
    now = kms_now(k);
    if (cf_kms_id_valid(tee_id, "tee_"))
        kms_op_resource(&o, "tee", tee_id);
    CF_ENSURE_OUT(nonce != NULL, CF_E_INVAL);
    CF_GUARD_OUT(kms_store_get(k, &s));
    CF_GUARD_OUT(kms_tee_read(s, tee_id, &t));
    kms_op_tenant(&o, t.tenant);
    if (t.status != CF_KMS_TEE_ACTIVE) {
        rc = cf_err_set(CF_E_CONFLICT, "TEE %s is %s; a fixed TEE registers again", t.id,
                        cf_kms_tee_status_name(t.status));
        goto out;
    }
    /* Evidence bound to anything but a nonce of ours proves nothing either
     * way (DESIGN.md §2 rule 3: the attestation service's nonce and verdict
     * are not trusted): refuse without touching the TEE. */
    CF_GUARD_OUT(nonce_check(s, nonce, now));
    CF_ENSURE_OUT(ev != NULL, CF_E_INVAL);
    /* Evidence that is not even well formed (bound to our nonce, so a genuine
     * attempt) counts as a failed attestation, like evidence that fails a check. */
    rc = check_evidence(ev);
    if (rc < 0)
        set_reason(reason, "attestation failed: evidence malformed: %s", cf_err_detail(rc));
    else
        CF_GUARD_OUT(verify(k, ev, t.deployment, t.tenant, t.public_key, nonce, now, &vr));

    c = (att_ctx){.k = k, .o = &o, .tee_id = t.id, .nonce = nonce, .ok = false, .reason = reason,
                  .vr = vr, .now = now};
    if (vr == NULL) {
        /* reason set above */
    } else if (!vr->verified) {
        const cf_check *f = cf_verify_first_failure(vr);
        set_reason(reason, "attestation failed: %s: %s", f ? f->name : "verdict",
                   f ? f->message : "not verified");
    } else if (strcmp(vr->facts.measurement, t.measurement) != 0) {
        char was[17], now_m[17];
        hex_prefix(t.measurement, was);
        hex_prefix(vr->facts.measurement, now_m);
        set_reason(reason, "measurement changed (registered %s..., attested %s...)", was, now_m);
    } else if (strcmp(vr->facts.chip_id, t.chip_id) != 0) {
        set_reason(reason, "chip id changed: the TEE's evidence comes from another machine");
    } else {
        c.ok = true;
    }
    rc = cf_store_tx(s, att_tx, &c);
    CF_GUARD_OUT(rc);
    if (!c.ok) {
        cf_log(CF_LOG_WARN, "kms.tee_quarantined", "tee", t.id, "tenant", t.tenant, "reason",
               reason, NULL);
        revoke_keys(k, who, t.id, reason);
    }
    CF_GUARD_OUT(kms_tee_read(s, t.id, ret_tee));
    *ret_quarantined = !c.ok;
    if (ret_result != NULL) {
        *ret_result = vr;
        vr = NULL;
    }
out:
    kms_store_put(k, s);
    cf_verify_result_free(vr);
    if (rc < 0)
        return kms_op_fail(&o, rc, NULL);
    return 0;
}

/* ---- reads ------------------------------------------------------------------------------ */

int cf_kms_tee_get(cf_kms *k, const cf_kms_who *who, const char *tee_id, const char *expect_tenant,
                   cf_kms_tee *ret)
{
    cf_store *s = NULL;
    cf_kms_tee t;
    kms_op o;
    int rc = 0;

    CF_ENSURE(k != NULL && ret != NULL, CF_E_INVAL);
    kms_op_init(&o, k, who, "tee.get");
    if (cf_kms_id_valid(tee_id, "tee_"))
        kms_op_resource(&o, "tee", tee_id);
    CF_GUARD_OUT(kms_store_get(k, &s));
    CF_GUARD_OUT(kms_tee_read(s, tee_id, &t));
    kms_op_tenant(&o, t.tenant);
    if (expect_tenant != NULL && strcmp(t.tenant, expect_tenant) != 0) {
        rc = cf_err_set(CF_E_FORBIDDEN, "TEE %s belongs to another tenant", t.id);
        goto out;
    }
    if (who != NULL)
        CF_GUARD_OUT(kms_op_audit(&o, "success", NULL));
    *ret = t;
out:
    kms_store_put(k, s);
    if (rc < 0 && who != NULL)
        return kms_op_fail(&o, rc, NULL);
    return rc;
}

int cf_kms_tee_list(cf_kms *k, const cf_kms_who *who, const cf_kms_tee_filter *f, cf_kms_tee *out,
                    size_t max, size_t *ret_n)
{
    static const cf_kms_tee_filter none = {0};
    cf_kms_tee_status st = CF_KMS_TEE_ACTIVE;
    cf_store_rows *r = NULL;
    cf_store *s = NULL;
    size_t limit, n = 0;
    kms_op o;
    int rc = 0;

    CF_ENSURE(k != NULL && out != NULL && ret_n != NULL, CF_E_INVAL);
    if (f == NULL)
        f = &none;
    kms_op_init(&o, k, who, "tee.list");
    kms_op_tenant(&o, f->tenant);
    limit = f->limit ? f->limit : CF_KMS_LIST_DEFAULT;
    if (limit > CF_KMS_LIST_MAX || limit > max) {
        rc = cf_err_set(CF_E_RANGE, "limit must be 1-%d", CF_KMS_LIST_MAX);
        goto out;
    }
    if (f->tenant != NULL && !cf_kms_tenant_valid(f->tenant)) {
        rc = cf_err_set(CF_E_INVAL, "malformed tenant filter");
        goto out;
    }
    if (f->deployment != NULL && !cf_kms_tenant_valid(f->deployment)) {
        rc = cf_err_set(CF_E_INVAL, "malformed deployment filter");
        goto out;
    }
    if (f->status != NULL && status_parse(f->status, &st) != 0) {
        rc = cf_err_set(CF_E_INVAL, "status must be active, quarantined or revoked");
        goto out;
    }
    if (f->after != NULL && !cf_kms_id_valid(f->after, "tee_")) {
        rc = cf_err_set(CF_E_INVAL, "after must be a TEE id");
        goto out;
    }
    CF_GUARD_OUT(kms_store_get(k, &s));
    /* NULL filters match everything: one statement, values bound, never spliced. */
    CF_GUARD_OUT(cf_store_query(
        s,
        "SELECT " TEE_COLS " FROM kms_tee WHERE (CAST(? AS TEXT) IS NULL OR tenant = ?)"
        " AND (CAST(? AS TEXT) IS NULL OR deployment = ?) AND (CAST(? AS TEXT) IS NULL OR status = ?)"
        " AND (CAST(? AS TEXT) IS NULL OR id > ?) ORDER BY id LIMIT ?",
        CF_STORE_ARGS(cf_sv_text(f->tenant), cf_sv_text(f->tenant), cf_sv_text(f->deployment),
                      cf_sv_text(f->deployment), cf_sv_text(f->status), cf_sv_text(f->status),
                      cf_sv_text(f->after), cf_sv_text(f->after), cf_sv_int((int64_t)limit)),
        &r));
    for (;;) {
        rc = cf_store_next(r);
        if (rc <= 0)
            break;
        CF_ENSURE_OUT(n < limit, CF_E_INTERNAL);
        CF_GUARD_OUT(tee_from_row(r, &out[n]));
        n++;
    }
    CF_GUARD_OUT(rc);
    cf_store_rows_close(r);
    r = NULL;
    CF_GUARD_OUT(kms_op_audit(&o, "success", json_pack("{s:I}", "count", (json_int_t)n)));
    *ret_n = n;
out:
    cf_store_rows_close(r);
    kms_store_put(k, s);
    if (rc < 0)
        return kms_op_fail(&o, rc, NULL);
    return 0;
}

/* ---- operator actions -------------------------------------------------------------------- */

typedef struct {
    kms_op *o;
    const char *tee_id;
    const char *expect_tenant;
    const char *reason;
    cf_kms_tee_status to;
    int64_t now;
} state_ctx;

static int state_tx(cf_store *s, void *arg)
{
    state_ctx *c = arg;
    cf_kms_tee t;
    int64_t changes = 0;

    CF_GUARD(kms_tee_read(s, c->tee_id, &t));
    kms_op_tenant(c->o, t.tenant);
    if (c->expect_tenant != NULL && strcmp(t.tenant, c->expect_tenant) != 0)
        return cf_err_set(CF_E_FORBIDDEN, "TEE %s belongs to another tenant", t.id);
    if (t.status == c->to || t.status == CF_KMS_TEE_REVOKED)
        return cf_err_set(CF_E_CONFLICT, "TEE %s is already %s", t.id,
                          cf_kms_tee_status_name(t.status));
    CF_GUARD(cf_store_exec(s,
                           "UPDATE kms_tee SET status = ?, reason = ?, updated_at = ?"
                           " WHERE id = ? AND status = ?",
                           CF_STORE_ARGS(cf_sv_text(cf_kms_tee_status_name(c->to)),
                                         cf_sv_text(c->reason), cf_sv_int(c->now),
                                         cf_sv_text(t.id),
                                         cf_sv_text(cf_kms_tee_status_name(t.status))),
                           &changes));
    if (changes != 1)
        return cf_err_set(CF_E_CONFLICT, "TEE %s changed state concurrently", t.id);
    return kms_op_audit(c->o, c->to == CF_KMS_TEE_QUARANTINED ? "alert" : "success",
                        json_pack("{s:s,s:s,s:s}", "trigger", "operator", "reason", c->reason,
                                  "previous_status", cf_kms_tee_status_name(t.status)));
}

static int set_state(cf_kms *k, const cf_kms_who *who, const char *action, cf_kms_tee_status to,
                     const char *tee_id, const char *expect_tenant, const char *reason,
                     cf_kms_tee *ret)
{
    cf_store *s = NULL;
    state_ctx c;
    kms_op o;
    int rc = 0;

    CF_ENSURE(k != NULL && ret != NULL, CF_E_INVAL);
    kms_op_init(&o, k, who, action);
    if (cf_kms_id_valid(tee_id, "tee_"))
        kms_op_resource(&o, "tee", tee_id);
    if (!kms_text_ok(reason, CF_KMS_MAX_REASON)) {
        rc = cf_err_set(CF_E_INVAL, "reason is required: 1-%d bytes of printable UTF-8",
                        CF_KMS_MAX_REASON);
        goto out;
    }
    c = (state_ctx){.o = &o, .tee_id = tee_id, .expect_tenant = expect_tenant, .reason = reason,
                    .to = to, .now = kms_now(k)};
    CF_GUARD_OUT(kms_store_get(k, &s));
    CF_GUARD_OUT(cf_store_tx(s, state_tx, &c));
    cf_log(CF_LOG_WARN, to == CF_KMS_TEE_QUARANTINED ? "kms.tee_quarantined" : "kms.tee_revoked",
           "tee", tee_id, "trigger", "operator", NULL);
    revoke_keys(k, who, tee_id, reason);
    CF_GUARD_OUT(kms_tee_read(s, tee_id, ret));
out:
    kms_store_put(k, s);
    if (rc < 0)
        return kms_op_fail(&o, rc, NULL);
    return 0;
}

int cf_kms_tee_quarantine(cf_kms *k, const cf_kms_who *who, const char *tee_id,
                          const char *expect_tenant, const char *reason, cf_kms_tee *ret)
{
    return set_state(k, who, "tee.quarantine", CF_KMS_TEE_QUARANTINED, tee_id, expect_tenant,
                     reason, ret);
}

int cf_kms_tee_revoke(cf_kms *k, const cf_kms_who *who, const char *tee_id,
                      const char *expect_tenant, const char *reason, cf_kms_tee *ret)
{
    return set_state(k, who, "tee.revoke", CF_KMS_TEE_REVOKED, tee_id, expect_tenant, reason, ret);
}

/* ---- background: stale TEEs, revocation reconciliation ----------------------------------- */

typedef struct {
    char id[CF_KMS_TEE_ID_LEN + 1];
    char tenant[CF_ID_MAX_LEN + 1];
    int64_t last;
} stale_row;

typedef struct {
    kms_op *o;
    const stale_row *row;
    int64_t now, cutoff;
    const char *reason;
    bool done;
} stale_ctx;

static int stale_tx(cf_store *s, void *arg)
{
    stale_ctx *c = arg;
    int64_t changes = 0;

    c->done = false;
    /* Conditional: another KMS process (or a fresh attestation) may have got here first. */
    CF_GUARD(cf_store_exec(s,
                           "UPDATE kms_tee SET status = 'quarantined', reason = ?, updated_at = ?"
                           " WHERE id = ? AND status = 'active' AND last_attested_at < ?",
                           CF_STORE_ARGS(cf_sv_text(c->reason), cf_sv_int(c->now),
                                         cf_sv_text(c->row->id), cf_sv_int(c->cutoff)),
                           &changes));
    if (changes != 1)
        return 0;
    c->done = true;
    return kms_op_audit(c->o, "alert",
                        json_pack("{s:s,s:s,s:I}", "trigger", "stale", "reason", c->reason,
                                  "last_attested_at", (json_int_t)c->row->last));
}

int kms_quarantine_stale(cf_kms *k, int64_t now, size_t *ret_n)
{
    int64_t limit = 2 * (int64_t)k->interval, cutoff = now - limit;
    stale_row *rows = NULL;
    cf_store_rows *r = NULL;
    cf_store *s = NULL;
    size_t n = 0, done = 0;
    int rc, first = 0;

    rows = calloc(CF_KMS_TASK_BATCH, sizeof(*rows));
    CF_ENSURE(rows != NULL, CF_E_NOMEM);
    CF_GUARD_OUT(kms_store_get(k, &s));
    CF_GUARD_OUT(cf_store_query(s,
                                "SELECT id, tenant, last_attested_at FROM kms_tee WHERE status ="
                                " 'active' AND last_attested_at < ? ORDER BY last_attested_at LIMIT ?",
                                CF_STORE_ARGS(cf_sv_int(cutoff), cf_sv_int(CF_KMS_TASK_BATCH)), &r));
    while ((rc = cf_store_next(r)) == 1 && n < CF_KMS_TASK_BATCH) {
        CF_GUARD_OUT(cf_store_col_text(r, 0, rows[n].id, sizeof(rows[n].id), NULL));
        CF_GUARD_OUT(cf_store_col_text(r, 1, rows[n].tenant, sizeof(rows[n].tenant), NULL));
        CF_GUARD_OUT(cf_store_col_i64(r, 2, &rows[n].last));
        n++;
    }
    CF_GUARD_OUT(rc);
    cf_store_rows_close(r);
    r = NULL;
    for (size_t i = 0; i < n; i++) {
        char reason[CF_KMS_MAX_REASON + 1];
        stale_ctx c;
        kms_op o;

        set_reason(reason, "attestation stale: last attested %lld s ago, limit %lld s",
                   (long long)(now - rows[i].last), (long long)limit);
        kms_op_init(&o, k, NULL, "tee.quarantined");
        kms_op_tenant(&o, rows[i].tenant);
        kms_op_resource(&o, "tee", rows[i].id);
        c = (stale_ctx){.o = &o, .row = &rows[i], .now = now, .cutoff = cutoff, .reason = reason};
        rc = cf_store_tx(s, stale_tx, &c);
        if (rc < 0) {
            first = first ? first : rc;
            continue;
        }
        if (!c.done)
            continue;
        done++;
        cf_log(CF_LOG_WARN, "kms.tee_quarantined", "tee", rows[i].id, "tenant", rows[i].tenant,
               "reason", reason, NULL);
        revoke_keys(k, NULL, rows[i].id, reason);
    }
    rc = first;
out:
    cf_store_rows_close(r);
    kms_store_put(k, s);
    free(rows);
    if (ret_n != NULL)
        *ret_n += done;
    return rc;
}

int kms_reconcile_revocations(cf_kms *k, size_t *ret_n)
{
    char (*ids)[CF_KMS_TEE_ID_LEN + 1] = NULL;
    cf_store_rows *r = NULL;
    cf_store *s = NULL;
    size_t n = 0, done = 0;
    int rc = 0;

    ids = calloc(CF_KMS_TASK_BATCH, sizeof(*ids));
    CF_ENSURE(ids != NULL, CF_E_NOMEM);
    CF_GUARD_OUT(kms_store_get(k, &s));
    /* kms_tee_revocation is kms/keys.h's record of revoked TEEs (its contract
     * names it). A crash between the registry change and the key revocation
     * leaves a non-active TEE without one: finish the job. */
    CF_GUARD_OUT(cf_store_query(s,
                                "SELECT t.id FROM kms_tee t WHERE t.status <> 'active' AND NOT EXISTS"
                                " (SELECT 1 FROM kms_tee_revocation r WHERE r.tee_id = t.id) LIMIT ?",
                                CF_STORE_ARGS(cf_sv_int(CF_KMS_TASK_BATCH)), &r));
    while ((rc = cf_store_next(r)) == 1 && n < CF_KMS_TASK_BATCH) {
        CF_GUARD_OUT(cf_store_col_text(r, 0, ids[n], sizeof(ids[n]), NULL));
        n++;
    }
    CF_GUARD_OUT(rc);
    cf_store_rows_close(r);
    r = NULL;
    kms_store_put(k, s);
    s = NULL;
    for (size_t i = 0; i < n; i++) {
        cf_kms_caller kc = {0};
        rc = cf_kms_keys_revoke_tee(k->keys, &kc, ids[i], "TEE not active (registry)");
        if (rc < 0)
            goto out;
        done++;
    }
    rc = 0;
out:
    cf_store_rows_close(r);
    kms_store_put(k, s);
    free(ids);
    if (ret_n != NULL)
        *ret_n += done;
    return rc;
}
