/*
 * HTTP API of the attestation service (DESIGN.md §6 "Attestation";
 * docs/internals/attestation-service.md "API"):
 *
 *   POST /v1/attestation/verify      public, rate-limited: fresh evidence from an
 *                                    active TEE of the deployment, verified here
 *   POST /v1/attestation/evidence    public, rate-limited: verify posted evidence
 *   GET  /v1/attestation/history     attestation.read (tenant-scoped)
 *   GET  /v1/attestation/manifest    public, rate-limited
 *   GET  /v1/attestation/self        public, rate-limited: this service's own evidence
 *   GET  /v1/attestation/jwks, /.well-known/jwks.json   public, rate-limited
 *   PUT  /v1/attestation/tees/{id}/endpoint   mTLS spiffe://coffer/kms only
 *   GET  /healthz
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "attestsvc/ear.h"
#include "attestsvc/history.h"
#include "attestsvc/service.h"
#include "base/buf.h"
#include "base/err.h"
#include "base/json.h"
#include "base/log.h"
#include "base/parse.h"
#include "crypto/hash.h"
#include "proto/authz.h"

/* Public endpoints are limited per source address. A caller with a verified
 * Coffer service identity (the gateway, over mTLS) is not: the gateway limits
 * its own clients per tenant (DESIGN.md §1), and all its traffic would
 * otherwise share one bucket. */
static int rate_limit(cf_attestsvc *a, const cf_http_req *req, cf_http_resp *resp)
{
    uint32_t retry = 1;
    char ra[16], msg[96];

    if (cf_http_req_peer_id(req) != NULL)
        return 0;
    if (cf_ratelimit_take(a->rl, cf_http_req_remote_addr(req), cf_attestsvc_mono_ms(), &retry))
        return 0;
    snprintf(ra, sizeof(ra), "%u", retry);
    snprintf(msg, sizeof(msg), "rate limit exceeded: retry in %u s", retry);
    CF_GUARD(cf_http_resp_error(resp, CF_E_RATE_LIMITED, msg));
    CF_GUARD(cf_http_resp_header(resp, "Retry-After", ra));
    return CF_E_RATE_LIMITED;
}

static int respond_json(cf_http_resp *resp, int status, json_t *v)
{
    int rc;

    if (v == NULL)
        return CF_E_NOMEM;
    rc = cf_http_resp_json(resp, status, v);
    json_decref(v);
    return rc;
}

static int64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* ---- POST /v1/attestation/verify ------------------------------------------------- */

/* Active TEEs of the deployment, most recently attested first, at most
 * CF_ATTESTSVC_MAX_VERIFY_TEES. */
static size_t pick_tees(const cf_attest_tee_list *l, const char *deployment, size_t *idx)
{
    size_t n = 0;

    for (size_t i = 0; i < l->n; i++) {
        const cf_attest_tee_entry *e = &l->v[i];
        size_t j;
        if (strcmp(e->deployment, deployment) != 0 || strcmp(e->status, "active") != 0)
            continue;
        /* insertion into the sorted prefix, dropping the oldest beyond the cap */
        for (j = n; j > 0 && l->v[idx[j - 1]].last_attested_at < e->last_attested_at; j--)
            if (j < CF_ATTESTSVC_MAX_VERIFY_TEES)
                idx[j] = idx[j - 1];
        if (j < CF_ATTESTSVC_MAX_VERIFY_TEES) {
            idx[j] = i;
            if (n < CF_ATTESTSVC_MAX_VERIFY_TEES)
                n++;
        }
    }
    return n;
}

static int audit_verify(cf_attestsvc *a, const cf_http_req *req, const cf_attest_tee_entry *e, const char *id,
                        bool ok, const char *ear_status)
{
    char resource[CF_ID_MAX_LEN + 8];
    json_t *d = json_pack("{s:s,s:s,s:s,s:s}", "deployment", e->deployment, "attestation_id", id, "status",
                          ok ? "verified" : "failed", "ear_status", ear_status);

    snprintf(resource, sizeof(resource), "tee/%s", e->id);
    return cf_svc_audit(a->svc, req, NULL, "attestation.verify", e->tenant[0] ? e->tenant : NULL, resource,
                        ok ? "success" : "failure", d);
}

static int h_verify(void *cls, const cf_http_req *req, cf_http_resp *resp)
{
    cf_attestsvc *a = cls;
    cf_attest_verify_request vr;
    const cf_manifest_deployment *dep;
    cf_attest_tee_list list = {0};
    size_t idx[CF_ATTESTSVC_MAX_VERIFY_TEES], n;
    uint8_t nonce[CF_BINDING_NONCE_LEN];
    cf_attestsvc_outcome o;
    const cf_attest_tee_entry *used = NULL;
    char lasterr[CF_ATTESTSVC_MAX_REASON + 1] = "";
    char *token = NULL, *failures = NULL;
    cf_attest_record rec;
    cf_attest_view view;
    cf_store *s = NULL;
    const uint8_t *body;
    size_t len;
    json_t *out = NULL;
    int rc;

    memset(&o, 0, sizeof(o));
    CF_GUARD(rate_limit(a, req, resp));
    CF_GUARD(cf_http_require_content_type(req, resp, "application/json"));
    body = cf_http_req_body(req, &len);
    CF_GUARD(cf_attest_verify_request_parse(body, len, &vr));
    dep = cf_manifest_find_deployment(a->manifest, vr.deployment);
    CF_ENSURE(dep != NULL, cf_err_set(CF_E_NOT_FOUND, "deployment '%s' is not in the manifest", vr.deployment));
    CF_GUARD(cf_attestsvc_registry_list(a, &list));
    n = pick_tees(&list, vr.deployment, idx);
    CF_ENSURE_OUT(n > 0, cf_err_set(CF_E_NOT_FOUND, "deployment '%s' has no active TEE in the registry", vr.deployment));
    if (vr.has_nonce)
        memcpy(nonce, vr.nonce, sizeof(nonce));
    else
        CF_GUARD_OUT(cf_random(nonce, sizeof(nonce)));
    for (size_t i = 0; i < n && used == NULL; i++) {
        CF_GUARD_OUT(cf_attestsvc_attest(a, &list.v[idx[i]], nonce, &o));
        if (o.reached) {
            used = &list.v[idx[i]];
        } else {
            snprintf(lasterr, sizeof(lasterr), "%s", o.error);
            cf_attestsvc_outcome_free(&o);
        }
    }
    CF_ENSURE_OUT(used != NULL, cf_err_set(CF_E_UNAVAILABLE, "no active TEE of deployment '%s' answered: %s",
                                           vr.deployment, lasterr));
    cf_attestsvc_record(a, &o, used, "verify", &rec);
    CF_GUARD_OUT(cf_attest_history_new_id(now_us(), rec.id));
    CF_GUARD_OUT(cf_attestsvc_token(a, &o, used, nonce, &token));
    failures = cf_attest_failures_json(o.result, &o.registry);
    CF_ENSURE_OUT(failures != NULL, CF_E_NOMEM);
    rec.failures_json = failures;
    memset(&view, 0, sizeof(view));
    view.result = o.result;
    view.registry = &o.registry;
    view.deployment = dep;
    view.id = rec.id;
    view.at = o.at;
    view.deployment_id = vr.deployment;
    view.tee = o.tee;
    view.nonce = nonce;
    view.token = token;
    out = cf_attest_view_to_json(&view);
    CF_ENSURE_OUT(out != NULL, CF_E_NOMEM);
    /* Recorded and audited before the answer leaves (fail closed). */
    CF_GUARD_OUT(cf_attestsvc_store_get(a, &s));
    rc = cf_attest_history_add(s, &rec);
    CF_ENSURE_OUT(rc == 0, cf_err_set(CF_E_UNAVAILABLE, "cannot record the attestation: %s", cf_err_detail(rc)));
    CF_GUARD_OUT(audit_verify(a, req, used, rec.id, cf_attest_view_verified(&view), rec.ear_status));
    rc = cf_http_resp_json(resp, 200, out);
out:
    cf_attestsvc_store_put(a, s);
    json_decref(out);
    free(token);
    free(failures);
    cf_attestsvc_outcome_free(&o);
    cf_attest_tee_list_free(&list);
    return rc;
}

/* ---- POST /v1/attestation/evidence ------------------------------------------------ */

static int h_evidence(void *cls, const cf_http_req *req, cf_http_resp *resp)
{
    cf_attestsvc *a = cls;
    cf_attest_evidence_request *r = NULL;
    cf_verify_result *res = NULL;
    cf_verify_input in;
    char *token = NULL;
    json_t *out = NULL, *rj = NULL;
    const uint8_t *body;
    size_t len;
    int rc;

    CF_GUARD(rate_limit(a, req, resp));
    CF_GUARD(cf_http_require_content_type(req, resp, "application/json"));
    body = cf_http_req_body(req, &len);
    r = calloc(1, sizeof(*r));
    CF_ENSURE(r != NULL, CF_E_NOMEM);
    CF_GUARD_OUT(cf_attest_evidence_request_parse(body, len, r));
    memset(&in, 0, sizeof(in));
    in.platform = r->evidence.platform;
    in.report = r->evidence.report;
    in.report_len = r->evidence.report_len;
    in.cert = r->evidence.cert;
    in.cert_len = r->evidence.cert_len;
    in.deployment = r->deployment[0] ? r->deployment : NULL;
    in.tenant = r->tenant[0] ? r->tenant : NULL;
    if (r->has_nonce) {
        in.nonce = r->nonce;
        in.tee_public_key = r->public_key;
        in.tee_public_key_len = r->public_key_len;
    }
    in.at = time(NULL);
    rc = cf_verifier_verify(a->verifier, &in, &res);
    CF_ENSURE_OUT(rc == 0, cf_err_set(rc == CF_E_NOMEM ? rc : CF_E_INVAL, "%s", cf_err_detail(rc)));
    rj = cf_verify_result_to_json(res);
    CF_ENSURE_OUT(rj != NULL, CF_E_NOMEM);
    /* A token always names a key and a nonce: without them it would be a
     * signed statement about evidence of unknown freshness. */
    if (r->has_nonce) {
        cf_ear_input ei;
        memset(&ei, 0, sizeof(ei));
        ei.result = res;
        ei.deployment = r->deployment[0] ? r->deployment : NULL;
        if (r->public_key_len == CF_ATTEST_X25519_LEN) {
            ei.tee_public_key = r->public_key;
            ei.tee_public_key_len = r->public_key_len;
        }
        ei.nonce = r->nonce;
        ei.iat = (int64_t)in.at;
        ei.ttl = cf_attestsvc_token_ttl(a);
        CF_GUARD_OUT(cf_ear_sign(cf_attest_signer_key(a->signer), cf_attest_signer_kid(a->signer), &ei, &token));
    }
    out = json_pack("{s:b,s:O}", "verified", res->verified, "result", rj);
    CF_ENSURE_OUT(out != NULL, CF_E_NOMEM);
    if (token != NULL && json_object_set_new(out, "token", json_string(token)) != 0) {
        rc = CF_E_NOMEM;
        goto out;
    }
    rc = cf_http_resp_json(resp, 200, out);
out:
    json_decref(out);
    json_decref(rj);
    free(token);
    cf_verify_result_free(res);
    free(r);
    return rc;
}

/* ---- GET /v1/attestation/history ---------------------------------------------------- */

static int h_history(void *cls, const cf_http_req *req, cf_http_resp *resp)
{
    cf_attestsvc *a = cls;
    cf_principal p;
    cf_attest_history_query q;
    const char *lim = cf_http_req_query(req, "limit");
    char next[CF_ATTESTSVC_ID_LEN + 1];
    json_t *items = NULL;
    cf_store *s = NULL;
    uint64_t limit = CF_ATTESTSVC_HISTORY_DEFAULT_PAGE;
    int rc;

    CF_GUARD(rate_limit(a, req, resp));
    CF_GUARD(cf_svc_authorize(a->svc, req, CF_PERM_ATTESTATION_READ, NULL, &p));
    memset(&q, 0, sizeof(q));
    q.deployment = cf_http_req_query(req, "deployment_id");
    q.tee_id = cf_http_req_query(req, "tee_id");
    q.after = cf_http_req_query(req, "after");
    CF_ENSURE(q.deployment == NULL || cf_attest_name_valid(q.deployment),
              cf_err_set(CF_E_PARSE, "'deployment_id' is not a deployment name"));
    CF_ENSURE(q.tee_id == NULL || cf_attest_id_valid(q.tee_id), cf_err_set(CF_E_PARSE, "'tee_id' is not a TEE id"));
    CF_ENSURE(q.after == NULL || cf_attest_history_id_valid(q.after),
              cf_err_set(CF_E_PARSE, "'after' is not an attestation id (use the 'next' of the previous page)"));
    if (lim != NULL && (cf_parse_u64(lim, CF_ATTESTSVC_HISTORY_MAX_PAGE, &limit) != 0 || limit == 0))
        return cf_err_set(CF_E_PARSE, "'limit' must be 1..%u", CF_ATTESTSVC_HISTORY_MAX_PAGE);
    q.limit = (size_t)limit;
    /* A tenant's principals see their tenant's TEEs only. */
    q.tenant = cf_principal_is_platform(&p) ? NULL : p.tenant;
    CF_GUARD(cf_attestsvc_store_get(a, &s));
    rc = cf_attest_history_list(s, &q, &items, next);
    cf_attestsvc_store_put(a, s);
    CF_GUARD(rc);
    return respond_json(resp, 200, json_pack("{s:o,s:s?}", "items", items, "next", next[0] ? next : NULL));
}

/* ---- GET manifest, JWKS, healthz ------------------------------------------------------ */

static int h_manifest(void *cls, const cf_http_req *req, cf_http_resp *resp)
{
    cf_attestsvc *a = cls;

    CF_GUARD(rate_limit(a, req, resp));
    return cf_http_resp_set(resp, 200, "application/json", a->manifest_text, strlen(a->manifest_text));
}

static int h_jwks(void *cls, const cf_http_req *req, cf_http_resp *resp)
{
    cf_attestsvc *a = cls;
    const char *t = cf_attest_signer_jwks_text(a->signer);

    CF_GUARD(rate_limit(a, req, resp));
    return cf_http_resp_set(resp, 200, "application/json", t, strlen(t));
}

static int h_healthz(void *cls, const cf_http_req *req, cf_http_resp *resp)
{
    (void)cls;
    (void)req;
    return cf_http_resp_set(resp, 200, "application/json", "{\"status\":\"ok\"}", 15);
}

/* ---- GET /v1/attestation/self ----------------------------------------------------------- */

/*
 * The service's own evidence when it runs in a TEE (docs/internals/attestation-service.md
 * "Self attestation"):
 *   public_key  = SHA-256(token-signing public key, uncompressed SEC 1 point (65 bytes)
 *                         || manifest hash (the 32 raw bytes))
 *   report_data = SHA-512("coffer/v1 evidence" || 0x00 || public_key || nonce)
 * i.e. the usual binding (attest/binding.h) with that digest as the key, so a
 * verifier that checks it knows which EAR key and which manifest the attested
 * service holds.
 */
static int h_self(void *cls, const cf_http_req *req, cf_http_resp *resp)
{
    cf_attestsvc *a = cls;
    const char *ns = cf_http_req_query(req, "nonce");
    uint8_t nonce[CF_BINDING_NONCE_LEN], digest[CF_SHA256_LEN], rd[CF_BINDING_LEN], pub[CF_P256_PUB_LEN];
    size_t pub_len = 0;
    cf_provider_evidence ev;
    cf_iov parts[2];
    cf_attest_evidence *e = NULL;
    json_t *jwk = NULL, *ej = NULL;
    char *pk = NULL;
    int rc;

    memset(&ev, 0, sizeof(ev));
    CF_GUARD(rate_limit(a, req, resp));
    CF_ENSURE(ns != NULL && strlen(ns) == 2 * CF_BINDING_NONCE_LEN && cf_hex_decode(ns, nonce, sizeof(nonce)) == 0,
              cf_err_set(CF_E_PARSE, "query parameter 'nonce' must be 64 hex digits (32 random bytes)"));
    CF_ENSURE(a->provider != NULL,
              cf_err_set(CF_E_NOT_FOUND, "this attestation service is not running in a TEE: %s", a->provider_error));
    CF_GUARD(cf_key_export_public(cf_attest_signer_key(a->signer), pub, sizeof(pub), &pub_len));
    parts[0].p = pub;
    parts[0].n = pub_len;
    parts[1].p = cf_manifest_hash(a->manifest);
    parts[1].n = CF_MANIFEST_HASH_LEN;
    CF_GUARD(cf_hash(CF_SHA256, parts, 2, digest));
    CF_GUARD(cf_binding_compute(digest, sizeof(digest), nonce, rd));
    rc = cf_provider_get_report(a->provider, rd, &ev);
    CF_ENSURE(rc == 0, cf_err_set(CF_E_UNAVAILABLE, "cannot get this service's evidence: %s", cf_err_detail(rc)));
    CF_ENSURE_OUT(ev.cert_der != NULL && ev.cert_len <= CF_CERT_MAX_BYTES,
                  cf_err_set(CF_E_UNAVAILABLE, "the platform gave no certificate with the report"));
    e = calloc(1, sizeof(*e));
    CF_ENSURE_OUT(e != NULL, CF_E_NOMEM);
    memcpy(e->platform, CF_PLATFORM_SEV_SNP, sizeof(CF_PLATFORM_SEV_SNP));
    memcpy(e->report, ev.report, CF_SNP_REPORT_LEN);
    e->report_len = CF_SNP_REPORT_LEN;
    memcpy(e->cert, ev.cert_der, ev.cert_len);
    e->cert_len = ev.cert_len;
    ej = cf_attest_evidence_to_json(e);
    pk = cf_b64url_encode_alloc(digest, sizeof(digest));
    CF_GUARD_OUT(cf_jwk_to_json(cf_attest_signer_key(a->signer), cf_attest_signer_kid(a->signer), &jwk));
    CF_ENSURE_OUT(ej != NULL && pk != NULL, CF_E_NOMEM);
    rc = respond_json(resp, 200,
                      json_pack("{s:O,s:s,s:s,s:O,s:s}", "evidence", ej, "nonce", ns, "public_key", pk, "signing_key",
                                jwk, "manifest_hash", cf_manifest_hash_str(a->manifest)));
out:
    json_decref(ej);
    json_decref(jwk);
    free(pk);
    free(e);
    cf_provider_evidence_free(&ev);
    return rc;
}

/* ---- PUT /v1/attestation/tees/{id}/endpoint ---------------------------------------------- */

/* Registration notice from the KMS: where a TEE's runtime listens, for
 * registries that do not record it in their listing. */
static int h_endpoint(void *cls, const cf_http_req *req, cf_http_resp *resp)
{
    static const char *const peers[] = {"kms", NULL};
    static const char *const keys[] = {"endpoint", NULL};
    cf_attestsvc *a = cls;
    const char *id = cf_http_req_param(req, "id"), *url = NULL;
    const uint8_t *body;
    size_t len;
    json_t *o = NULL;
    char resource[CF_ID_MAX_LEN + 8];
    int rc;

    CF_GUARD(cf_svc_require_peer(req, peers));
    CF_GUARD(cf_http_require_content_type(req, resp, "application/json"));
    CF_ENSURE(cf_attest_id_valid(id), cf_err_set(CF_E_PARSE, "TEE id is not valid"));
    body = cf_http_req_body(req, &len);
    CF_GUARD(cf_json_parse_object(body, len, CF_ATTESTSVC_MAX_BODY, &o));
    CF_GUARD_OUT(cf_json_only_keys(o, keys));
    CF_GUARD_OUT(cf_json_get_str(o, "endpoint", true, CF_ATTESTSVC_MAX_ENDPOINT, &url));
    CF_GUARD_OUT(cf_attestsvc_endpoint_set(a, id, url));
    snprintf(resource, sizeof(resource), "tee/%s", id);
    CF_GUARD_OUT(cf_svc_audit(a->svc, req, NULL, "tee.endpoint.set", NULL, resource, "success",
                              json_pack("{s:s}", "endpoint", url)));
    rc = respond_json(resp, 200, json_pack("{s:s,s:s}", "tee_id", id, "endpoint", url));
out:
    json_decref(o);
    return rc;
}

int cf_attestsvc_routes(cf_attestsvc *a)
{
    cf_http_server *h = cf_svc_http(a->svc);

    CF_GUARD(cf_http_server_route(h, "POST", "/v1/attestation/verify", h_verify, a, CF_ATTESTSVC_MAX_BODY));
    CF_GUARD(cf_http_server_route(h, "POST", "/v1/attestation/evidence", h_evidence, a, CF_ATTESTSVC_MAX_BODY));
    CF_GUARD(cf_http_server_route(h, "GET", "/v1/attestation/history", h_history, a, 0));
    CF_GUARD(cf_http_server_route(h, "GET", "/v1/attestation/manifest", h_manifest, a, 0));
    CF_GUARD(cf_http_server_route(h, "GET", "/v1/attestation/self", h_self, a, 0));
    CF_GUARD(cf_http_server_route(h, "GET", "/v1/attestation/jwks", h_jwks, a, 0));
    CF_GUARD(cf_http_server_route(h, "GET", "/.well-known/jwks.json", h_jwks, a, 0));
    CF_GUARD(cf_http_server_route(h, "PUT", "/v1/attestation/tees/{id}/endpoint", h_endpoint, a, 4096));
    CF_GUARD(cf_http_server_route(h, "GET", "/healthz", h_healthz, a, 0));
    return 0;
}
