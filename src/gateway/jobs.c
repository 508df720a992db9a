/*
 * POST /v1/jobs/{job} (DESIGN.md §5 step 5): check the envelope's cleartext
 * header against the caller and the registry, then forward the envelope byte
 * for byte to the TEE it names and pass the TEE's answer back.
 *
 * The gateway cannot open the envelope (the outer layer needs the OTK, which
 * the KMS seals to the client and the TEE; the inner layer needs the TEE's
 * private key) and does not try: cf_env_parse reads the header and checks the
 * framing, nothing is decrypted, and the body is neither copied into logs nor
 * into audit events (§2 rule 2).
 */
#include <string.h>

#include "base/err.h"
#include "base/json.h"
#include "base/log.h"
#include "base/parse.h"
#include "gateway/gw_int.h"
#include "proto/envelope.h"

enum route_verdict { ROUTE_OK = 0, ROUTE_NOT_ROUTABLE, ROUTE_NOT_ACTIVE };

/* Whether TEE t may take job for tenant: its tenant, a deployment of that
 * tenant that lists the job in the manifest, and status active. */
static enum route_verdict judge(const cf_gw *gw, const cf_gw_tee *t, const char *tenant,
                                const char *job)
{
    const cf_manifest_deployment *d;

    if (t->tenant[0] == 0 || strcmp(t->tenant, tenant) != 0)
        return ROUTE_NOT_ROUTABLE;
    d = cf_manifest_find_deployment(gw->manifest, t->deployment);
    if (d == NULL || strcmp(d->tenant, tenant) != 0 || !cf_manifest_deployment_has_job(d, job))
        return ROUTE_NOT_ROUTABLE;
    if (strcmp(t->status, CF_GW_TEE_ACTIVE) != 0)
        return ROUTE_NOT_ACTIVE;
    return ROUTE_OK;
}

/* Best effort, for refusals and failed forwards: the answer goes out whether or
 * not its event is durable (nothing was let through). */
static void audit_outcome(cf_gw *gw, const cf_http_req *req, const cf_gw_caller *c, const char *tee_id,
                          const char *job, const char *outcome, const char *reason)
{
    char resource[CF_ID_MAX_LEN + 8];

    if (cf_fmt(resource, sizeof(resource), "tee/%s", tee_id) < 0)
        resource[0] = 0;
    if (cf_svc_audit(gw->svc, req, &c->p, "gateway.job.forward", c->p.tenant, resource, outcome,
                     json_pack("{s:s,s:s,s:s}", "tee_id", tee_id, "job", job, "reason", reason)) < 0)
        cf_log(CF_LOG_WARN, "gateway.audit_failed", "action", "gateway.job.forward", NULL);
}

static void audit_denied(cf_gw *gw, const cf_http_req *req, const cf_gw_caller *c, const char *tee_id,
                         const char *job, const char *reason)
{
    audit_outcome(gw, req, c, tee_id, job, "denied", reason);
}

static int forward(cf_gw *gw, const cf_http_req *req, cf_http_resp *resp, const cf_gw_caller *c,
                   const cf_gw_tee *t, const char *job, const uint8_t *body, size_t blen)
{
    char path[CF_NAME_MAX_LEN + 16], resource[CF_ID_MAX_LEN + 8];
    cf_http_request rq;
    cf_http_response r;
    const char *ct;
    int rc;

    memset(&r, 0, sizeof(r));
    CF_GUARD(cf_fmt(path, sizeof(path), "/v1/jobs/%s", job)); /* job: [A-Za-z0-9._-], no escaping */
    CF_GUARD(cf_fmt(resource, sizeof(resource), "tee/%s", t->id));
    /* Recorded before the envelope leaves: fail closed if it cannot be (§2 rule 6). */
    rc = cf_svc_audit(gw->svc, req, &c->p, "gateway.job.forward", c->p.tenant, resource, "success",
                      json_pack("{s:s,s:s,s:s}", "tee_id", t->id, "job", job, "deployment", t->deployment));
    if (rc < 0)
        return gw_fail(resp, 503, cf_err_name(CF_E_UNAVAILABLE), "audit log unavailable: request refused");

    memset(&rq, 0, sizeof(rq));
    rq.method = "POST";
    rq.path = path;
    rq.content_type = GW_CT_ENVELOPE;
    rq.body = body; /* unchanged: the TEE authenticates every byte of it */
    rq.body_len = blen;
    rq.request_id = cf_http_req_id(req);
    /* No Authorization: the TEE has no use for the caller's token, so it does not get it. */
    cf_gw_registry_begin(gw->registry, t->id);
    rc = cf_gw_call(gw->clients, t->endpoint, NULL, gw->job_timeout_ms, CF_ENV_MAX_RESPONSE_BYTES, &rq,
                    &r);
    cf_gw_registry_end(gw->registry, t->id);
    if (rc == CF_E_TIMEOUT || rc == CF_E_TOO_LARGE) {
        audit_outcome(gw, req, c, t->id, job, "failure",
                      rc == CF_E_TIMEOUT ? "TEE did not answer in time" : "TEE answer too large");
        rc = gw_fail_upstream(gw, resp, GW_UP_TEE, rc);
        goto out;
    }
    if (rc < 0) {
        /* The TEE is gone or broken: out of rotation, and the view is re-read so
         * that a quarantine or a new endpoint is seen by the next session. */
        cf_gw_metrics_upstream_error(gw->metrics, GW_UP_TEE);
        cf_log(CF_LOG_WARN, "gateway.tee_failed", "tee_id", t->id, "reason", cf_err_detail(rc), NULL);
        cf_gw_registry_mark_unhealthy(gw->registry, t->id);
        audit_outcome(gw, req, c, t->id, job, "failure", "TEE unavailable");
        if (cf_gw_registry_sync(gw->registry, true) < 0)
            cf_log(CF_LOG_WARN, "gateway.registry_unavailable", "reason", cf_err_detail(CF_E_UNAVAILABLE),
                   NULL);
        rc = gw_fail(resp, 503, cf_err_name(CF_E_UNAVAILABLE), "TEE unavailable: create a new session");
        goto out;
    }
    ct = r.content_type;
    if (r.body.len > 0 && strncmp(ct, GW_CT_RESPONSE, strlen(GW_CT_RESPONSE)) != 0 &&
        strncmp(ct, GW_CT_JSON, strlen(GW_CT_JSON)) != 0) {
        cf_gw_metrics_upstream_error(gw->metrics, GW_UP_TEE);
        rc = gw_fail(resp, 502, "bad_gateway", "TEE answered with an unexpected content type");
        goto out;
    }
    if (r.status >= 500)
        cf_gw_metrics_upstream_error(gw->metrics, GW_UP_TEE);
    rc = cf_http_resp_set(resp, (int)r.status, r.body.len ? ct : NULL, r.body.data, r.body.len);
    if (rc == 0 && r.retry_after[0] != 0)
        gw_header(resp, "Retry-After", r.retry_after);
out:
    cf_http_response_free(&r);
    return rc;
}

static int submit(cf_gw *gw, const cf_http_req *req, cf_http_resp *resp, const cf_gw_caller *c)
{
    const char *path_job = cf_http_req_param(req, "job");
    const uint8_t *body;
    size_t blen;
    cf_env env;
    cf_gw_tee t;
    enum route_verdict v = ROUTE_NOT_ROUTABLE;
    int rc;

    rc = cf_authz_check(&c->p, CF_PERM_JOB_SUBMIT, c->p.tenant);
    if (rc < 0)
        return gw_fail(resp, 403, cf_err_name(CF_E_FORBIDDEN), "%s", cf_err_detail(rc));
    if (path_job == NULL || !cf_gw_name_valid(path_job))
        return gw_fail(resp, 400, cf_err_name(CF_E_PARSE), "job name in the path is not valid");
    CF_GUARD(cf_http_require_content_type(req, resp, GW_CT_ENVELOPE));
    body = cf_http_req_body(req, &blen);
    rc = cf_env_parse(body, blen, &env);
    if (rc < 0)
        /* 400 also for a length field out of range: the body itself was within the cap. */
        return gw_fail(resp, 400, cf_err_name(rc), "malformed envelope: %s", cf_err_detail(rc));
    if (strcmp(env.hdr.tenant, c->p.tenant) != 0) {
        audit_denied(gw, req, c, env.hdr.tee_id, path_job, "envelope for another tenant");
        return gw_fail(resp, 403, cf_err_name(CF_E_FORBIDDEN),
                       "envelope is for tenant %s, the access token is for tenant %s", env.hdr.tenant,
                       c->p.tenant);
    }
    if (strcmp(env.hdr.job, path_job) != 0)
        return gw_fail(resp, 400, cf_err_name(CF_E_PARSE),
                       "envelope job %s does not match the job %s in the path", env.hdr.job, path_job);

    /* Judge on the cached view; a TEE that is unknown or not routable there is
     * judged once more on a fresh view before the request is refused. */
    for (int attempt = 0; attempt < 2; attempt++) {
        if (attempt == 1 && cf_gw_registry_sync(gw->registry, true) < 0)
            rc = CF_E_UNAVAILABLE;
        else
            rc = cf_gw_registry_get(gw->registry, env.hdr.tee_id, &t);
        if (rc == CF_E_UNAVAILABLE || (rc < 0 && rc != CF_E_NOT_FOUND)) {
                return gw_fail(resp, 503, cf_err_name(CF_E_UNAVAILABLE), "TEE registry unavailable");
        }
        v = rc == 0 ? judge(gw, &t, c->p.tenant, path_job) : ROUTE_NOT_ROUTABLE;
        if (v == ROUTE_OK)
            break;
    }
    if (v == ROUTE_NOT_ROUTABLE) {
        audit_denied(gw, req, c, env.hdr.tee_id, path_job, "TEE not routable for tenant");
        return gw_fail(resp, 403, cf_err_name(CF_E_FORBIDDEN), "TEE %s is not routable for tenant %s",
                       env.hdr.tee_id, c->p.tenant);
    }
    if (v == ROUTE_NOT_ACTIVE) {
        audit_denied(gw, req, c, env.hdr.tee_id, path_job, t.status);
        return gw_fail(resp, 409, cf_err_name(CF_E_CONFLICT), "TEE %s is %s", t.id, t.status);
    }
    if (t.endpoint[0] == 0)
        return gw_fail(resp, 503, cf_err_name(CF_E_UNAVAILABLE), "TEE unavailable: create a new session");
    return forward(gw, req, resp, c, &t, path_job, body, blen);
}

int gw_h_jobs(void *cls, const cf_http_req *req, cf_http_resp *resp)
{
    cf_gw *gw = cls;
    cf_gw_caller c;
    int rc;

    CF_GUARD(cf_gw_admit(gw, req, resp, CF_GW_ADMIT_TOKEN, &c));
    rc = submit(gw, req, resp, &c);
    cf_gw_release(gw, &c);
    return rc;
}
