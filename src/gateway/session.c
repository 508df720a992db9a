/*
 * POST /v1/sessions (DESIGN.md §5 step 2): pick a TEE for the caller's job and
 * hand the client everything it needs to decide for itself whether to trust
 * it — the TEE's public key, fresh evidence bound to the CLIENT's nonce, the
 * attestation service's EAR token and the manifest hash the gateway routes by.
 *
 * The gateway does not verify the evidence (the SDK does, against its own
 * manifest: §2 rule 1); it only declines to offer a TEE that the attestation
 * service says is not verified, so that a client is not sent to a TEE that is
 * about to be quarantined.
 */
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/json.h"
#include "base/log.h"
#include "base/parse.h"
#include "gateway/gw_int.h"

#define NONCE_LEN 32

/* ---- parsers ------------------------------------------------------------------------ */

static bool printable(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x21 || (unsigned char)*s > 0x7e)
            return false;
    return true;
}

int gw_session_request_parse(const void *data, size_t len, char *ret_job, uint8_t ret_nonce[32])
{
    static const char *const keys[] = {"job", "nonce", NULL};
    json_t *o = NULL;
    const char *job = NULL;
    uint8_t nonce[NONCE_LEN];
    int rc = 0;

    CF_GUARD(cf_json_parse_object(data, len, CF_GW_MAX_SESSION_BODY, &o));
    CF_GUARD_OUT(cf_json_only_keys(o, keys));
    CF_GUARD_OUT(cf_json_get_str(o, "job", true, CF_NAME_MAX_LEN, &job));
    CF_ENSURE_OUT(cf_gw_name_valid(job),
                  cf_err_set(CF_E_PARSE, "field 'job' must be 1 to %d characters of A-Z a-z 0-9 . _ - "
                                         "starting with a letter or digit",
                             CF_NAME_MAX_LEN));
    CF_GUARD_OUT(cf_json_get_hex(o, "nonce", true, nonce, sizeof(nonce)));
    memcpy(ret_job, job, strlen(job) + 1);
    memcpy(ret_nonce, nonce, sizeof(nonce));
out:
    json_decref(o);
    return rc;
}

int gw_evidence_parse(const void *data, size_t len, const char *expect_id,
                      const char *expect_deployment, gw_evidence *ret)
{
    gw_evidence e;
    int rc = 0;

    CF_ENSURE(ret != NULL, CF_E_INVAL);
    memset(&e, 0, sizeof(e));
    CF_GUARD(cf_json_parse_object(data, len, CF_GW_MAX_EVIDENCE_RESPONSE, &e.doc));
    CF_GUARD_OUT(cf_json_get_str(e.doc, "tee_id", true, CF_ID_MAX_LEN, &e.tee_id));
    CF_ENSURE_OUT(cf_gw_id_valid(e.tee_id), cf_err_set(CF_E_PARSE, "field 'tee_id' is not a valid id"));
    CF_GUARD_OUT(cf_json_get_str(e.doc, "public_key", true, CF_GW_MAX_KEY_TEXT, &e.public_key));
    CF_ENSURE_OUT(e.public_key[0] != 0 && printable(e.public_key),
                  cf_err_set(CF_E_PARSE, "field 'public_key' must be printable ASCII"));
    CF_GUARD_OUT(cf_json_get_str(e.doc, "deployment", true, CF_NAME_MAX_LEN, &e.deployment));
    CF_ENSURE_OUT(cf_gw_name_valid(e.deployment),
                  cf_err_set(CF_E_PARSE, "field 'deployment' is not a valid name"));
    CF_GUARD_OUT(cf_json_get_str(e.doc, "build_hash", true, CF_GW_MAX_KEY_TEXT, &e.build_hash));
    CF_ENSURE_OUT(e.build_hash[0] != 0 && printable(e.build_hash),
                  cf_err_set(CF_E_PARSE, "field 'build_hash' must be printable ASCII"));
    CF_GUARD_OUT(cf_json_get_obj(e.doc, "evidence", true, &e.evidence));
    CF_ENSURE_OUT(json_is_object(e.evidence),
                  cf_err_set(CF_E_PARSE, "field 'evidence' must be an object"));
    /* A TEE answering for another id or deployment is not the one the registry
     * lists at this endpoint. */
    CF_ENSURE_OUT(expect_id == NULL || strcmp(e.tee_id, expect_id) == 0,
                  cf_err_set(CF_E_VERIFY, "TEE at this endpoint answered as %s", e.tee_id));
    CF_ENSURE_OUT(expect_deployment == NULL || strcmp(e.deployment, expect_deployment) == 0,
                  cf_err_set(CF_E_VERIFY, "TEE answered with deployment %s, the registry says %s",
                             e.deployment, expect_deployment));
    *ret = e;
    e.doc = NULL;
out:
    json_decref(e.doc);
    return rc;
}

int gw_attest_parse(const void *data, size_t len, bool *ret_verified, char **ret_token)
{
    json_t *o = NULL;
    bool verified = false;
    const char *tok = NULL;
    char *copy = NULL;
    int rc = 0;

    CF_ENSURE(ret_verified != NULL && ret_token != NULL, CF_E_INVAL);
    CF_GUARD(cf_json_parse_object(data, len, CF_GW_MAX_ATTEST_RESPONSE, &o));
    CF_GUARD_OUT(cf_json_get_bool(o, "verified", true, &verified));
    if (verified) {
        CF_GUARD_OUT(cf_json_get_str(o, "token", true, CF_JWT_MAX_BYTES, &tok));
        /* JWS compact serialisation: base64url parts separated by '.' (RFC 7515 §7.1). */
        CF_ENSURE_OUT(tok[0] != 0 && strspn(tok, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                                 "0123456789-_.") == strlen(tok),
                      cf_err_set(CF_E_PARSE, "field 'token' is not a compact JWS"));
        copy = strdup(tok);
        CF_ENSURE_OUT(copy != NULL, CF_E_NOMEM);
    }
    *ret_verified = verified;
    *ret_token = copy;
    copy = NULL;
out:
    free(copy);
    json_decref(o);
    return rc;
}

/* ---- handler --------------------------------------------------------------------------- */

struct serves_ctx {
    const cf_manifest *m;
    const char *tenant;
    const char *job;
};

/* The manifest decides which deployments serve a job: those of the tenant whose
 * "jobs" list it (DESIGN.md §3 "Manifest"). */
static bool serves(void *cls, const char *deployment)
{
    const struct serves_ctx *s = cls;
    const cf_manifest_deployment *d = cf_manifest_find_deployment(s->m, deployment);
    return d != NULL && strcmp(d->tenant, s->tenant) == 0 && cf_manifest_deployment_has_job(d, s->job);
}

static bool any_deployment_serves(const struct serves_ctx *s)
{
    for (size_t i = 0; i < cf_manifest_deployment_count(s->m); i++) {
        const cf_manifest_deployment *d = cf_manifest_deployment_at(s->m, i);
        if (strcmp(d->tenant, s->tenant) == 0 && cf_manifest_deployment_has_job(d, s->job))
            return true;
    }
    return false;
}

/* A TEE that failed a session step leaves rotation for registry.unhealthy_for. */
static int tee_failed(cf_gw *gw, const cf_gw_tee *t, const char *reason)
{
    cf_gw_registry_mark_unhealthy(gw->registry, t->id);
    cf_gw_metrics_upstream_error(gw->metrics, GW_UP_TEE);
    cf_log(CF_LOG_WARN, "gateway.tee_failed", "tee_id", t->id, "reason", reason, NULL);
    return 1;
}

/* Fresh evidence from TEE t for the client's nonce. 0, or 1 if the TEE failed. */
static int fetch_evidence(cf_gw *gw, const cf_http_req *req, const cf_gw_tee *t,
                          const char *nonce_hex, gw_evidence *ret)
{
    char body[96], why[320];
    cf_http_request rq;
    cf_http_response r;
    int rc;

    memset(&r, 0, sizeof(r));
    CF_GUARD(cf_fmt(body, sizeof(body), "{\"nonce\":\"%s\"}", nonce_hex));
    memset(&rq, 0, sizeof(rq));
    rq.method = "POST";
    rq.path = "/v1/evidence";
    rq.content_type = GW_CT_JSON;
    rq.body = body;
    rq.body_len = strlen(body);
    rq.request_id = cf_http_req_id(req);
    cf_gw_registry_begin(gw->registry, t->id);
    rc = cf_gw_call(gw->clients, t->endpoint, NULL, gw->upstream_timeout_ms,
                    CF_GW_MAX_EVIDENCE_RESPONSE, &rq, &r);
    cf_gw_registry_end(gw->registry, t->id);
    if (rc < 0) {
        if (cf_fmt(why, sizeof(why), "evidence request failed: %s", cf_err_detail(rc)) < 0)
            memcpy(why, "evidence request failed", sizeof("evidence request failed"));
        return tee_failed(gw, t, why);
    }
    if (r.status != 200) {
        if (cf_fmt(why, sizeof(why), "evidence request answered HTTP %ld", r.status) < 0)
            why[0] = 0;
        cf_http_response_free(&r);
        return tee_failed(gw, t, why);
    }
    rc = gw_evidence_parse(r.body.data, r.body.len, t->id, t->deployment, ret);
    cf_http_response_free(&r);
    if (rc < 0) {
        if (cf_fmt(why, sizeof(why), "bad evidence answer: %s", cf_err_detail(rc)) < 0)
            memcpy(why, "bad evidence answer", sizeof("bad evidence answer"));
        return tee_failed(gw, t, why);
    }
    return 0;
}

/*
 * The attestation service's verdict and EAR token for the evidence. 0 with
 * *ret_token (malloc'd) if verified; 1 if this TEE is not verified (try the
 * next); <0 with resp filled if the service cannot be used at all (fail closed).
 */
static int attest(cf_gw *gw, const cf_http_req *req, cf_http_resp *resp, const cf_gw_caller *c,
                  const cf_gw_tee *t, const gw_evidence *ev, const char *nonce_hex, char **ret_token)
{
    json_t *body = NULL;
    char *text = NULL, *token = NULL, why[160];
    cf_http_request rq;
    cf_http_response r;
    bool verified = false;
    int rc = 0;

    memset(&r, 0, sizeof(r));
    if (gw->attest_url == NULL) {
        gw_fail(resp, 503, cf_err_name(CF_E_UNAVAILABLE), "attestation service not configured");
        return CF_E_UNAVAILABLE;
    }
    body = json_pack("{s:O,s:s,s:s,s:s}", "evidence", ev->evidence, "deployment", t->deployment,
                     "nonce", nonce_hex, "public_key", ev->public_key);
    CF_ENSURE_OUT(body != NULL, CF_E_NOMEM);
    text = cf_json_dump(body);
    CF_ENSURE_OUT(text != NULL, CF_E_NOMEM);
    memset(&rq, 0, sizeof(rq));
    rq.method = "POST";
    rq.path = "/v1/attestation/evidence";
    rq.bearer = c->bearer; /* the attestation service authorises the caller itself */
    rq.content_type = GW_CT_JSON;
    rq.body = text;
    rq.body_len = strlen(text);
    rq.request_id = cf_http_req_id(req);
    rc = cf_gw_call(gw->clients, gw->attest_url, "attest", gw->upstream_timeout_ms,
                    CF_GW_MAX_ATTEST_RESPONSE, &rq, &r);
    if (rc < 0) {
        gw_fail_upstream(gw, resp, GW_UP_ATTEST, rc);
        goto out;
    }
    if (r.status >= 500) {
        cf_gw_metrics_upstream_error(gw->metrics, GW_UP_ATTEST);
        gw_fail(resp, 503, cf_err_name(CF_E_UNAVAILABLE), "attestation service unavailable (HTTP %ld)",
                r.status);
        rc = CF_E_UNAVAILABLE;
        goto out;
    }
    if (r.status == 401 || r.status == 403) {
        gw_fail(resp, 502, "bad_gateway", "attestation service refused the request (HTTP %ld)", r.status);
        rc = CF_E_FORBIDDEN;
        goto out;
    }
    if (r.status != 200) {
        if (cf_fmt(why, sizeof(why), "attestation service answered HTTP %ld", r.status) < 0)
            why[0] = 0;
        rc = tee_failed(gw, t, why);
        goto out;
    }
    rc = gw_attest_parse(r.body.data, r.body.len, &verified, &token);
    if (rc < 0) {
        cf_gw_metrics_upstream_error(gw->metrics, GW_UP_ATTEST);
        cf_log(CF_LOG_WARN, "gateway.attest_bad_answer", "reason", cf_err_detail(rc), NULL);
        gw_fail(resp, 502, "bad_gateway", "attestation service gave a malformed answer");
        goto out;
    }
    if (!verified) {
        rc = tee_failed(gw, t, "evidence not verified by the attestation service");
        goto out;
    }
    *ret_token = token;
    token = NULL;
    rc = 0;
out:
    free(token);
    free(text);
    json_decref(body);
    cf_http_response_free(&r);
    return rc;
}

static int respond(cf_gw *gw, const cf_http_req *req, cf_http_resp *resp, const cf_gw_caller *c,
                   const cf_gw_tee *t, const gw_evidence *ev, const char *job,
                   const char *nonce_hex, const char *token)
{
    int64_t now = cf_svc_now(), expires = CF_MIN(c->p.exp, now + gw->session_ttl_s);
    char resource[CF_ID_MAX_LEN + 8];
    json_t *v = NULL;
    int rc = 0;

    CF_GUARD(cf_fmt(resource, sizeof(resource), "tee/%s", t->id));
    /* Audited before the answer leaves: if the event cannot be made durable the
     * session is refused (DESIGN.md §2 rule 6). */
    rc = cf_svc_audit(gw->svc, req, &c->p, "gateway.session.create", c->p.tenant, resource, "success",
                      json_pack("{s:s,s:s,s:s}", "job", job, "deployment", t->deployment, "tee_id", t->id));
    if (rc < 0)
        return gw_fail(resp, 503, cf_err_name(CF_E_UNAVAILABLE), "audit log unavailable: session refused");
    v = json_pack("{s:s,s:s,s:s,s:s,s:s,s:O,s:s,s:s,s:I}", "tee_id", t->id, "public_key",
                  ev->public_key, "deployment", t->deployment, "build_hash", ev->build_hash, "nonce",
                  nonce_hex, "evidence", ev->evidence, "token", token, "manifest_hash",
                  cf_manifest_hash_str(gw->manifest), "expires_at", (json_int_t)expires);
    CF_ENSURE(v != NULL, CF_E_NOMEM);
    rc = cf_http_resp_json(resp, 200, v);
    json_decref(v);
    cf_log(CF_LOG_INFO, "gateway.session", "tee_id", t->id, "job", job, NULL);
    return rc;
}

static int session(cf_gw *gw, const cf_http_req *req, cf_http_resp *resp, const cf_gw_caller *c)
{
    cf_gw_tee cand[CF_GW_SESSION_MAX_TRIES];
    char job[CF_NAME_MAX_LEN + 1], nonce_hex[2 * NONCE_LEN + 1];
    uint8_t nonce[NONCE_LEN];
    struct serves_ctx sc;
    const uint8_t *body;
    size_t n = 0, blen;
    bool unhealthy = false;
    int rc;

    rc = cf_authz_check(&c->p, CF_PERM_SESSION_CREATE, c->p.tenant);
    if (rc < 0)
        return gw_fail(resp, 403, cf_err_name(CF_E_FORBIDDEN), "%s", cf_err_detail(rc));
    CF_GUARD(cf_http_require_content_type(req, resp, GW_CT_JSON));
    body = cf_http_req_body(req, &blen);
    rc = gw_session_request_parse(body, blen, job, nonce);
    if (rc < 0)
        return gw_fail(resp, 400, cf_err_name(CF_E_PARSE), "%s", cf_err_detail(rc));
    cf_hex_encode(nonce, sizeof(nonce), nonce_hex);

    sc = (struct serves_ctx){gw->manifest, c->p.tenant, job};
    if (!any_deployment_serves(&sc))
        return gw_fail(resp, 404, cf_err_name(CF_E_NOT_FOUND), "no TEE serves job %s for tenant %s", job,
                       c->p.tenant);
    rc = cf_gw_registry_pick(gw->registry, c->p.tenant, serves, &sc, cand, CF_ARRAY_LEN(cand), &n,
                             &unhealthy);
    if (rc < 0) {
        cf_log(CF_LOG_WARN, "gateway.registry_unavailable", "reason", cf_err_detail(rc), NULL);
        return gw_fail(resp, 503, cf_err_name(CF_E_UNAVAILABLE), "TEE registry unavailable");
    }
    if (n == 0 && !unhealthy)
        return gw_fail(resp, 404, cf_err_name(CF_E_NOT_FOUND), "no TEE serves job %s for tenant %s", job,
                       c->p.tenant);
    for (size_t i = 0; i < n; i++) {
        gw_evidence ev;
        char *token = NULL;

        memset(&ev, 0, sizeof(ev));
        if (fetch_evidence(gw, req, &cand[i], nonce_hex, &ev) != 0)
            continue;
        rc = attest(gw, req, resp, c, &cand[i], &ev, nonce_hex, &token);
        if (rc == 0)
            rc = respond(gw, req, resp, c, &cand[i], &ev, job, nonce_hex, token);
        free(token);
        json_decref(ev.doc);
        if (rc != 1)
            return rc; /* answered: a session, or a failure that no other TEE can fix */
    }
    return gw_fail(resp, 503, cf_err_name(CF_E_UNAVAILABLE), "no attested TEE available for job %s", job);
}

int gw_h_sessions(void *cls, const cf_http_req *req, cf_http_resp *resp)
{
    cf_gw *gw = cls;
    cf_gw_caller c;
    int rc;

    CF_GUARD(cf_gw_admit(gw, req, resp, CF_GW_ADMIT_TOKEN, &c));
    rc = session(gw, req, resp, &c);
    cf_gw_release(gw, &c);
    return rc;
}
