/*
 * Step 2 of the request flow (DESIGN.md §5): a session with a TEE, verified by
 * the client itself (DESIGN.md §2 rule 1).
 *
 *   POST /v1/sessions {"job","nonce": 64 hex} -> {"tee_id","public_key","deployment",
 *        "build_hash","nonce","evidence":{"platform","report","cert"},"token",
 *        "manifest_hash","expires_at"}
 *
 * The nonce is 32 fresh random bytes chosen here. Two independent checks must
 * pass before the TEE's key is used:
 *   (a) the hardware evidence, with the same verifier the KMS and the
 *       attestation service use, against the CLIENT's manifest: the
 *       deployment must be one of the client's tenant that serves the job, and
 *       report_data must bind (public_key, our nonce) (DESIGN.md §3 "Binding");
 *   (b) the attestation service's EAR token (JWT, ES256) against the PINNED
 *       JWKS: affirming for the deployment, cnf = the TEE key, eat_nonce = our
 *       nonce, coffer.manifest_hash = the hash of the client's own manifest,
 *       not expired.
 * The gateway's other fields (build_hash, manifest_hash) are not trusted.
 *
 * A verified TEE is cached per job until its EAR token expires (or the access
 * token it was obtained with, or the session's expires_at, if sooner).
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "attest/verify.h"
#include "base/buf.h"
#include "base/err.h"
#include "base/json.h"
#include "base/parse.h"
#include "base/secmem.h"
#include "crypto/hash.h"
#include "crypto/keys.h"
#include "sdk/sdk.h"

#define STEP_SESSION "session"

static int attest_fail(const char *check, int cf_code, const char *fmt, ...) CF_PRINTF(3, 4);

/* COFFER_E_ATTESTATION with the check named; the message starts with
 * "attestation failed: ". */
static int attest_fail(const char *check, int cf_code, const char *fmt, ...)
{
    char msg[CF_SDK_MAX_ERROR];
    va_list ap;
    int rc;

    va_start(ap, fmt);
    (void)vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    rc = cf_sdk_fail(cf_code, COFFER_E_ATTESTATION, "attestation failed: %s", msg);
    cf_sdk_set_failed_check(check);
    return rc;
}

int cf_sdk_verify_evidence(const coffer_client *c, const json_t *evidence, const char *tee_id,
                           const char *deployment, const char *job,
                           const uint8_t tee_key[CF_SDK_X25519_LEN],
                           const uint8_t nonce[CF_BINDING_NONCE_LEN], int64_t now,
                           bool *ret_simulated)
{
    const char *platform = NULL;
    cf_buf report, cert;
    cf_verify_result *res = NULL;
    const cf_check *f;
    const cf_manifest_deployment *d;
    cf_verify_input in;
    int rc;

    cf_buf_init(&report, CF_SNP_REPORT_SIZE);
    cf_buf_init(&cert, CF_CERT_MAX_BYTES);
    rc = cf_json_get_str(evidence, "platform", true, 32, &platform);
    if (rc == 0)
        rc = cf_json_get_b64url(evidence, "report", true, CF_SNP_REPORT_SIZE, &report);
    if (rc == 0)
        rc = cf_json_get_b64url(evidence, "cert", true, CF_CERT_MAX_BYTES, &cert);
    if (rc < 0) {
        rc = cf_sdk_fail(rc, COFFER_E_PROTOCOL, "%s: evidence: %s", STEP_SESSION,
                         cf_err_detail(rc));
        goto out;
    }
    CF_ENSURE_OUT(strcmp(platform, CF_PLATFORM_SEV_SNP) == 0,
                  attest_fail("platform", CF_E_UNSUPPORTED,
                              "platform: evidence of platform '%.32s' cannot be verified by this "
                              "client (TEE %s)",
                              platform, tee_id));
    memset(&in, 0, sizeof(in));
    in.platform = CF_PLATFORM_SEV_SNP;
    in.report = report.data;
    in.report_len = report.len;
    in.cert = cert.data;
    in.cert_len = cert.len;
    in.deployment = deployment;
    in.tenant = c->tenant;
    in.tee_public_key = tee_key;
    in.tee_public_key_len = CF_SDK_X25519_LEN;
    in.nonce = nonce;
    in.at = (time_t)now;
    rc = cf_verifier_verify(c->verifier, &in, &res);
    if (rc < 0) {
        rc = cf_sdk_fail(rc, rc == CF_E_NOMEM ? COFFER_E_NOMEM : COFFER_E_PROTOCOL,
                         "%s: evidence cannot be verified: %s", STEP_SESSION, cf_err_detail(rc));
        goto out;
    }
    if (!res->verified) {
        f = cf_verify_first_failure(res);
        rc = attest_fail(f ? f->name : "unknown", CF_E_VERIFY, "%s: %s (TEE %s, deployment %s)",
                         f ? f->name : "unknown", f ? f->message : "not verified", tee_id,
                         deployment);
        goto out;
    }
    d = cf_manifest_find_deployment(c->manifest, deployment);
    CF_ENSURE_OUT(d != NULL && cf_manifest_deployment_has_job(d, job),
                  attest_fail("job", CF_E_VERIFY,
                              "job: deployment '%s' does not serve job '%s' in the client's "
                              "manifest (TEE %s)",
                              deployment, job, tee_id));
    *ret_simulated = res->facts.simulated;
out:
    cf_verify_result_free(res);
    cf_buf_free(&report);
    cf_buf_free(&cert);
    return rc;
}

int cf_sdk_verify_ear(const cf_jwks *jwks, const char *manifest_hash, const char *token,
                      const char *deployment, const uint8_t tee_key[CF_SDK_X25519_LEN],
                      const uint8_t nonce[CF_BINDING_NONCE_LEN], int64_t now, bool simulated_ok,
                      int64_t *ret_exp)
{
    cf_jwt_verify_opts o = {.typ = CF_SDK_EAR_TYP, .now = now, .leeway = CF_SDK_EAR_LEEWAY_S};
    json_t *claims = NULL, *submods = NULL, *sub = NULL, *cnf = NULL, *jwk = NULL;
    const char *mh = NULL, *eat_nonce = NULL, *status = NULL;
    char want_nonce[48];
    cf_key *k = NULL;
    uint8_t pub[CF_X25519_LEN];
    size_t pl = 0;
    uint64_t exp = 0;
    int rc;

    /* The signature and the registered claims (RFC 7519 §4.1, typ "JWT"). The
     * JWKS decides the key and so the algorithm (ES256 only, client.c). */
    rc = cf_jwt_verify(token, strlen(token), NULL, jwks, &o, &claims);
    switch (rc) {
    case 0:
        break;
    case CF_E_SIGNATURE:
    case CF_E_NOT_FOUND:
    case CF_E_UNSUPPORTED:
        return attest_fail("ear_signature", CF_E_SIGNATURE,
                           "ear_signature: the attestation result is not signed by the pinned "
                           "attestation-service key (%s)",
                           cf_err_detail(rc));
    case CF_E_EXPIRED:
    case CF_E_NOT_YET_VALID:
        return attest_fail("ear_expired", CF_E_EXPIRED,
                           "ear_expired: the attestation result is not valid now (%s)",
                           cf_err_detail(rc));
    case CF_E_NOMEM:
        return rc;
    default:
        return attest_fail("ear_format", CF_E_VERIFY,
                           "ear_format: the attestation result token is malformed (%s)",
                           cf_err_detail(rc));
    }
    rc = cf_json_get_u64(claims, "exp", true, (uint64_t)CF_JWT_MAX_TIME, &exp);
    if (rc == 0)
        rc = cf_json_get_str(claims, "coffer.manifest_hash", true, CF_MANIFEST_HASH_STR_LEN, &mh);
    if (rc == 0)
        rc = cf_json_get_str(claims, "eat_nonce", true, 64, &eat_nonce);
    if (rc == 0)
        rc = cf_json_get_obj(claims, "submods", true, &submods);
    if (rc == 0)
        rc = cf_json_get_obj(claims, "cnf", true, &cnf);
    if (rc == 0)
        rc = cf_json_get_obj(cnf, "jwk", true, &jwk);
    if (rc < 0) {
        rc = attest_fail("ear_format", CF_E_VERIFY, "ear_format: attestation result: %s",
                         cf_err_detail(rc));
        goto out;
    }
    /* DESIGN.md §3 "Manifest": the client pins the manifest hash it expects; the
     * attestation service reports the hash it runs with; a mismatch fails. */
    CF_ENSURE_OUT(strcmp(mh, manifest_hash) == 0,
                  attest_fail("ear_manifest_hash", CF_E_VERIFY,
                              "attestation service runs manifest %s, client expects %s", mh,
                              manifest_hash));
    cf_b64url_encode(nonce, CF_BINDING_NONCE_LEN, want_nonce);
    CF_ENSURE_OUT(strcmp(eat_nonce, want_nonce) == 0,
                  attest_fail("ear_nonce", CF_E_VERIFY,
                              "ear_nonce: the attestation result is for another nonce than this "
                              "session's"));
    rc = cf_jwk_from_json(jwk, &k, NULL);
    if (rc == 0 && cf_key_get_type(k) != CF_KEY_X25519)
        rc = cf_err_set(CF_E_UNSUPPORTED, "cnf.jwk is not an X25519 key");
    if (rc == 0)
        rc = cf_key_export_public(k, pub, sizeof(pub), &pl);
    if (rc < 0) {
        rc = attest_fail("ear_key", CF_E_VERIFY, "ear_key: attestation result cnf: %s",
                         cf_err_detail(rc));
        goto out;
    }
    CF_ENSURE_OUT(pl == CF_SDK_X25519_LEN && cf_ct_eq(pub, tee_key, CF_SDK_X25519_LEN),
                  attest_fail("ear_key", CF_E_VERIFY,
                              "ear_key: the attestation result is for another TEE key than the "
                              "one in the evidence"));
    /* EAR (draft-ietf-rats-ar4si / veraison EAR): submods.<name>."ear.status". */
    sub = json_object_get(submods, deployment);
    status = json_is_object(sub) ? json_string_value(json_object_get(sub, "ear.status")) : NULL;
    CF_ENSURE_OUT(status != NULL,
                  attest_fail("ear_status", CF_E_VERIFY,
                              "ear_status: the attestation result has no appraisal for deployment "
                              "'%s'",
                              deployment));
    /* "warning" is what the attestation service says of a TEE on the simulated
     * secure processor: acceptable only when this client's own manifest trusts
     * that simulated root (a development manifest), never otherwise. */
    CF_ENSURE_OUT(strcmp(status, CF_SDK_EAR_AFFIRMING) == 0 || (simulated_ok && strcmp(status, "warning") == 0),
                  attest_fail("ear_status", CF_E_VERIFY,
                              "ear_status: the attestation service's status for deployment '%s' "
                              "is '%.32s', not 'affirming'",
                              deployment, status));
    *ret_exp = (int64_t)exp;
out:
    cf_key_free(k);
    json_decref(claims);
    return rc;
}

/* ---- the cache ---- */

static bool avoided(const char *tee_id, const char *const *avoid, size_t n_avoid)
{
    for (size_t i = 0; i < n_avoid; i++)
        if (strcmp(avoid[i], tee_id) == 0)
            return true;
    return false;
}

static bool cache_get(coffer_client *c, const char *job, const char *const *avoid,
                      size_t n_avoid, cf_sdk_tee *ret)
{
    int64_t now = cf_sdk_now();
    bool found = false;

    if (pthread_mutex_lock(&c->cache_mu) != 0)
        return false;
    for (size_t i = 0; i < c->n_cache; i++) {
        const cf_sdk_tee *e = &c->cache[i];
        if (strcmp(e->job, job) == 0 && e->expires > now && !avoided(e->tee_id, avoid, n_avoid)) {
            *ret = *e;
            found = true;
            break;
        }
    }
    pthread_mutex_unlock(&c->cache_mu);
    return found;
}

static void cache_put(coffer_client *c, const cf_sdk_tee *t)
{
    size_t slot = c->n_cache;
    int64_t now = cf_sdk_now();

    if (pthread_mutex_lock(&c->cache_mu) != 0)
        return;
    for (size_t i = 0; i < c->n_cache; i++) {
        /* The same job's entry is replaced; an expired one is reused. */
        if (strcmp(c->cache[i].job, t->job) == 0 || c->cache[i].expires <= now) {
            slot = i;
            break;
        }
    }
    if (slot == c->n_cache) {
        if (c->n_cache < CF_SDK_TEE_CACHE) {
            c->n_cache++;
        } else {
            /* Full: evict the entry that expires first. */
            slot = 0;
            for (size_t i = 1; i < c->n_cache; i++)
                if (c->cache[i].expires < c->cache[slot].expires)
                    slot = i;
        }
    }
    c->cache[slot] = *t;
    pthread_mutex_unlock(&c->cache_mu);
}

void cf_sdk_cache_drop_tee(coffer_client *c, const char *tee_id)
{
    if (pthread_mutex_lock(&c->cache_mu) != 0)
        return;
    for (size_t i = 0; i < c->n_cache;) {
        if (strcmp(c->cache[i].tee_id, tee_id) == 0) {
            c->cache[i] = c->cache[c->n_cache - 1];
            c->n_cache--;
        } else {
            i++;
        }
    }
    pthread_mutex_unlock(&c->cache_mu);
}

/* ---- the session ---- */

int cf_sdk_session_parse(const json_t *ans, cf_sdk_session_answer *ret)
{
    cf_sdk_session_answer sa;
    const char *tee_id = NULL, *deployment = NULL, *ear = NULL;
    json_t *evidence = NULL, *exp_at;
    cf_buf pub;
    int rc;

    memset(&sa, 0, sizeof(sa));
    cf_buf_init(&pub, CF_SDK_X25519_LEN);
    /* Members beyond these are ignored: the gateway may add some, and nothing
     * it sends is trusted without the checks of cf_sdk_verify_*. */
    CF_GUARD_OUT(cf_json_get_str(ans, "tee_id", true, CF_ID_MAX_LEN, &tee_id));
    CF_GUARD_OUT(cf_json_get_b64url(ans, "public_key", true, CF_SDK_X25519_LEN, &pub));
    CF_GUARD_OUT(cf_json_get_str(ans, "deployment", true, CF_NAME_MAX_LEN, &deployment));
    CF_GUARD_OUT(cf_json_get_obj(ans, "evidence", true, &evidence));
    CF_GUARD_OUT(cf_json_get_str(ans, "token", true, CF_JWT_MAX_BYTES, &ear));
    if (json_object_get(ans, "nonce") != NULL) {
        CF_GUARD_OUT(cf_json_get_hex(ans, "nonce", true, sa.nonce, sizeof(sa.nonce)));
        sa.has_nonce = true;
    }
    if ((exp_at = json_object_get(ans, "expires_at")) != NULL)
        CF_GUARD_OUT(cf_sdk_parse_time(exp_at, &sa.expires_at));
    CF_ENSURE_OUT(json_is_object(evidence),
                  cf_err_set(CF_E_PARSE, "field 'evidence' must be an object"));
    CF_ENSURE_OUT(pub.len == CF_SDK_X25519_LEN,
                  cf_err_set(CF_E_PARSE, "field 'public_key' must be a 32-byte X25519 key"));
    CF_ENSURE_OUT(cf_sdk_id_ok(tee_id, CF_ID_MAX_LEN),
                  cf_err_set(CF_E_PARSE, "field 'tee_id' is not a valid id"));
    CF_ENSURE_OUT(cf_sdk_name_ok(deployment, CF_NAME_MAX_LEN),
                  cf_err_set(CF_E_PARSE, "field 'deployment' is not a valid name"));
    memcpy(sa.tee_id, tee_id, strlen(tee_id) + 1);
    memcpy(sa.deployment, deployment, strlen(deployment) + 1);
    memcpy(sa.public_key, pub.data, CF_SDK_X25519_LEN);
    sa.evidence = evidence;
    sa.ear = ear;
    *ret = sa;
out:
    cf_buf_free(&pub);
    return rc;
}

static int new_session(coffer_client *c, const cf_sdk_auth *a, const char *job,
                       const char *const *avoid, size_t n_avoid, cf_sdk_tee *ret)
{
    uint8_t nonce[CF_BINDING_NONCE_LEN];
    char nonce_hex[2 * CF_BINDING_NONCE_LEN + 1], body[CF_NAME_MAX_LEN + 128];
    json_t *ans = NULL;
    cf_http_request req;
    cf_http_response resp;
    cf_sdk_session_answer sa;
    cf_sdk_tee t;
    int64_t now, ear_exp = 0;
    bool simulated = false;
    int rc;

    memset(&resp, 0, sizeof(resp));
    memset(&t, 0, sizeof(t));
    /* DESIGN.md §3 "Binding": the nonce is chosen by the verifier, here the client. */
    CF_GUARD_OUT(cf_random(nonce, sizeof(nonce)));
    cf_hex_encode(nonce, sizeof(nonce), nonce_hex);
    /* job was checked to be a manifest name: no JSON escaping needed. */
    CF_GUARD_OUT(cf_fmt(body, sizeof(body), "{\"job\":\"%s\",\"nonce\":\"%s\"}", job, nonce_hex));
    req = (cf_http_request){.method = "POST",
                            .path = "/v1/sessions",
                            .bearer = a->token,
                            .content_type = "application/json",
                            .body = body,
                            .body_len = strlen(body)};
    CF_GUARD_OUT(cf_sdk_http(c, &req, &resp, STEP_SESSION));
    CF_GUARD_OUT(cf_sdk_json_answer(&resp, resp.status == 201 ? 201 : 200, STEP_SESSION, &ans));
    rc = cf_sdk_session_parse(ans, &sa);
    if (rc < 0) {
        rc = cf_sdk_fail(rc, COFFER_E_PROTOCOL, "%s: %s", STEP_SESSION, cf_err_detail(rc));
        goto out;
    }
    CF_ENSURE_OUT(!avoided(sa.tee_id, avoid, n_avoid),
                  cf_sdk_fail(CF_E_REVOKED, COFFER_E_TEE_REVOKED,
                              "%s: the gateway offered TEE %s again, which was just reported "
                              "quarantined or revoked; no other TEE serves job '%s'",
                              STEP_SESSION, sa.tee_id, job));
    CF_ENSURE_OUT(!sa.has_nonce || cf_ct_eq(sa.nonce, nonce, sizeof(nonce)),
                  attest_fail("nonce", CF_E_VERIFY,
                              "nonce: the session answer is for another nonce (TEE %s)",
                              sa.tee_id));

    now = cf_sdk_now();
    CF_GUARD_OUT(cf_sdk_verify_evidence(c, sa.evidence, sa.tee_id, sa.deployment, job,
                                        sa.public_key, nonce, now, &simulated));
    CF_GUARD_OUT(cf_sdk_verify_ear(c->ear_jwks, cf_manifest_hash_str(c->manifest), sa.ear,
                                   sa.deployment, sa.public_key, nonce, now, simulated, &ear_exp));

    memcpy(t.job, job, strlen(job) + 1);
    memcpy(t.tee_id, sa.tee_id, sizeof(t.tee_id));
    memcpy(t.deployment, sa.deployment, sizeof(t.deployment));
    memcpy(t.public_key, sa.public_key, CF_SDK_X25519_LEN);
    t.expires = CF_MIN(ear_exp, a->token_exp);
    if (sa.expires_at > 0)
        t.expires = CF_MIN(t.expires, sa.expires_at);
    *ret = t;
out:
    json_decref(ans);
    cf_http_response_free(&resp);
    return rc;
}

int cf_sdk_tee_get(coffer_client *c, const cf_sdk_auth *a, const char *job,
                   const char *const *avoid, size_t n_avoid, cf_sdk_tee *ret)
{
    cf_sdk_tee t;

    if (cache_get(c, job, avoid, n_avoid, ret))
        return 0;
    CF_GUARD(new_session(c, a, job, avoid, n_avoid, &t));
    cache_put(c, &t);
    *ret = t;
    return 0;
}
