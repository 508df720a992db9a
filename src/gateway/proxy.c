/*
 * Proxied service APIs: /v1/iam/..., /v1/kms/..., /v1/registry/..., /v1/attestation/...,
 * /v1/audit/... (DESIGN.md §6). Each service authorises the caller itself from
 * the caller's own token (§2 rule 2); the gateway adds authentication (so that
 * rate limits are per tenant and garbage never reaches a service), shape checks
 * and bounds, but lends no authority of its own: a request without a valid
 * token is refused here, so the gateway's mTLS identity never stands in for an
 * anonymous caller (a confused deputy).
 *
 * What is forwarded: method, raw path and query, a JSON body (checked), the
 * caller's Authorization and the request id. Nothing else — in particular no
 * hop-by-hop header (RFC 9110 §7.6.1), no cookies, no client-supplied
 * forwarding headers. What comes back: status, Content-Type, body (bounded),
 * Retry-After.
 */
#include <string.h>

#include "base/err.h"
#include "base/json.h"
#include "base/log.h"
#include "base/parse.h"
#include "base/secmem.h"
#include "gateway/gw_int.h"

/* Request target for the upstream: the raw path (its segments passed the
 * router's pchar check) and the raw query (it passed cf_http_query_parse). */
static int target(const cf_http_req *req, char *out, size_t cap)
{
    const char *q = cf_http_req_query_string(req);

    /* RFC 3986 §3.4: a query is visible ASCII; anything else must arrive encoded. */
    for (const char *p = q; *p; p++)
        CF_ENSURE((unsigned char)*p > 0x20 && (unsigned char)*p < 0x7f,
                  cf_err_set(CF_E_PARSE, "unencoded character in the query string"));
    if (q[0] == 0)
        return cf_fmt(out, cap, "%s", cf_http_req_path(req));
    return cf_fmt(out, cap, "%s?%s", cf_http_req_path(req), q);
}

/* No "." or ".." segment (also percent-encoded: the router decodes parameters):
 * libcurl would resolve them (RFC 3986 §5.2.4) and reach a path outside the
 * proxied prefix on the upstream. */
static int check_segments(const cf_http_req *req, cf_http_resp *resp)
{
    char name[8];

    for (int i = 1; i <= CF_GW_PROXY_MAX_DEPTH; i++) {
        const char *v;
        CF_GUARD(cf_fmt(name, sizeof(name), "gw%d", i));
        v = cf_http_req_param(req, name);
        if (v == NULL)
            break;
        if (strcmp(v, ".") == 0 || strcmp(v, "..") == 0) {
            gw_fail(resp, 400, cf_err_name(CF_E_PARSE), "'.' and '..' path segments are not allowed");
            return CF_E_PARSE;
        }
    }
    return 0;
}

static int pass_back(cf_gw *gw, const struct gw_proxy *p, cf_http_resp *resp,
                     const cf_http_response *r)
{
    const char *ct = r->content_type[0] ? r->content_type : "application/octet-stream";
    int rc;

    if (r->status >= 500)
        cf_gw_metrics_upstream_error(gw->metrics, p->upstream);
    if (r->status < 100 || r->status > 599)
        return gw_fail(resp, 502, "bad_gateway", "%s gave an invalid answer", p->upstream);
    rc = cf_http_resp_set(resp, (int)r->status, r->body.len ? ct : NULL, r->body.data, r->body.len);
    if (rc == 0 && r->retry_after[0] != 0)
        gw_header(resp, "Retry-After", r->retry_after);
    return rc;
}

/* Forwards the request. auth_line: a complete "Authorization: ..." header to
 * pass on as is (the API-key exchange), or NULL to send c->bearer. */
static int forward(const struct gw_proxy *p, const cf_http_req *req, cf_http_resp *resp,
                   const cf_gw_caller *c, const char *auth_line)
{
    cf_gw *gw = p->gw;
    char path[CF_HTTP_MAX_URL + 1];
    const char *headers[2] = {auth_line, NULL};
    const uint8_t *body;
    size_t blen;
    cf_http_request rq;
    cf_http_response r;
    int rc;

    memset(&r, 0, sizeof(r));
    CF_GUARD(check_segments(req, resp));
    if (p->url == NULL)
        return gw_fail(resp, 503, cf_err_name(CF_E_UNAVAILABLE), "%s is not configured", p->upstream);
    body = cf_http_req_body(req, &blen);
    if (blen > 0) {
        json_t *v = NULL;
        CF_GUARD(cf_http_require_content_type(req, resp, GW_CT_JSON));
        rc = cf_json_parse(body, blen, CF_GW_MAX_PROXY_BODY, &v);
        json_decref(v);
        if (rc < 0)
            return gw_fail(resp, 400, cf_err_name(CF_E_PARSE), "%s", cf_err_detail(rc));
    }
    rc = target(req, path, sizeof(path));
    if (rc == CF_E_PARSE)
        return gw_fail(resp, 400, cf_err_name(CF_E_PARSE), "%s", cf_err_detail(rc));
    if (rc < 0)
        return gw_fail(resp, 414, "uri_too_long", "request target is too long");

    memset(&rq, 0, sizeof(rq));
    rq.method = cf_http_req_method(req);
    rq.path = path;
    rq.bearer = auth_line ? NULL : c->bearer;
    rq.headers = auth_line ? headers : NULL;
    rq.content_type = blen > 0 ? GW_CT_JSON : NULL;
    rq.body = blen > 0 ? body : NULL;
    rq.body_len = blen;
    rq.request_id = cf_http_req_id(req);
    rc = cf_gw_call(gw->clients, p->url, p->expect, gw->upstream_timeout_ms, CF_GW_MAX_PROXY_RESPONSE, &rq,
                    &r);
    if (rc < 0)
        return gw_fail_upstream(gw, resp, p->upstream, rc);
    rc = pass_back(gw, p, resp, &r);
    cf_http_response_free(&r);
    return rc;
}

int gw_h_proxy(void *cls, const cf_http_req *req, cf_http_resp *resp)
{
    const struct gw_proxy *p = cls;
    cf_gw_caller c;
    int rc;

    CF_GUARD(cf_gw_admit(p->gw, req, resp, CF_GW_ADMIT_TOKEN, &c));
    rc = forward(p, req, resp, &c, NULL);
    cf_gw_release(p->gw, &c);
    return rc;
}

/* POST /v1/iam/token: the API-key exchange. Whatever credential the caller
 * presents is IAM's to judge; the gateway only limits the rate per source
 * address (guessing API keys through the gateway is slow) and passes the
 * Authorization header on unchanged if there is one. */
int gw_h_token(void *cls, const cf_http_req *req, cf_http_resp *resp)
{
    const struct gw_proxy *p = cls;
    const char *auth = cf_http_req_header(req, "Authorization");
    char line[CF_HTTP_MAX_HEADER_VALUE + 32];
    cf_gw_caller c;
    int rc = 0;

    CF_GUARD(cf_gw_admit(p->gw, req, resp, CF_GW_ADMIT_SOURCE, &c));
    if (auth != NULL && cf_fmt(line, sizeof(line), "Authorization: %s", auth) < 0)
        rc = gw_fail(resp, 400, cf_err_name(CF_E_PARSE), "Authorization header is too long");
    else
        rc = forward(p, req, resp, &c, auth != NULL ? line : NULL);
    cf_wipe(line, sizeof(line)); /* may have held an API key */
    cf_gw_release(p->gw, &c);
    return rc;
}
