/*
 * IAM HTTP API: routes, authentication with this IAM's own tokens (verified
 * in-process against its key ring: no HTTP round trip), request parsing, JSON
 * replies. Authorisation and auditing of the operations happen in the core
 * (iam.c); failures before the core is reached (no/bad token, malformed body)
 * are audited here.
 */
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/json.h"
#include "base/log.h"
#include "base/parse.h"
#include "base/secmem.h"
#include "iam/api.h"

#define DEFAULT_PAGE 100

/* ---- helpers ---------------------------------------------------------------- */

static int api_fail(cf_iam_api *a, const cf_http_req *req, const cf_principal *actor, const char *action,
                    const char *resource, int rc)
{
    char detail[256];
    const char *d = cf_err_detail(rc);
    size_t i;
    json_t *det;

    for (i = 0; i + 1 < sizeof(detail) && d[i] != '\0'; i++)
        detail[i] = (d[i] >= 0x20 && d[i] < 0x7f) ? d[i] : '?';
    detail[i] = '\0';
    det = json_pack("{s:s,s:s}", "error", cf_err_name(rc), "reason", detail);
    if (a->audit(a->audit_arg, req, actor, action, NULL, resource, "failure", det) < 0)
        cf_log(CF_LOG_ERROR, "iam.audit_failure_lost", "action", action, NULL);
    return cf_err_set(rc, "%s", detail);
}

/* Bearer token of this IAM -> verified principal. */
static int authenticate(cf_iam_api *a, const cf_http_req *req, const char *action, cf_principal *ret)
{
    const char *tok = NULL;
    size_t len = 0;
    int rc;

    rc = cf_bearer_token(cf_http_req_header(req, "Authorization"), &tok, &len);
    if (rc == 0)
        rc = cf_iam_verify(a->iam, tok, len, ret);
    if (rc < 0)
        return api_fail(a, req, NULL, action, NULL, rc);
    return 0;
}

/* The body, if any, must be JSON (415 otherwise). */
static int body_of(cf_iam_api *a, const cf_http_req *req, cf_http_resp *resp, const cf_principal *actor,
                   const char *action, bool allow_empty, const uint8_t **ret, size_t *ret_len)
{
    size_t n = 0;
    const uint8_t *b = cf_http_req_body(req, &n);
    int rc;

    if (n == 0 && !allow_empty)
        return api_fail(a, req, actor, action, NULL, cf_err_set(CF_E_PARSE, "a JSON request body is required"));
    if (n > 0) {
        rc = cf_http_require_content_type(req, resp, "application/json");
        if (rc < 0) {
            (void)api_fail(a, req, actor, action, NULL,
                           cf_err_set(rc, "request body must be application/json"));
            return rc;
        }
    }
    *ret = b;
    *ret_len = n;
    return 0;
}

static int reply(cf_http_resp *resp, int status, json_t *v)
{
    int rc;

    if (v == NULL)
        return CF_E_NOMEM;
    rc = cf_http_resp_json(resp, status, v);
    json_decref(v);
    return rc;
}

static int set_json(json_t *o, const char *key, json_t *v)
{
    if (o == NULL || v == NULL || json_object_set_new(o, key, v) != 0) {
        json_decref(v);
        return CF_E_NOMEM;
    }
    return 0;
}

static json_t *tenant_json(const cf_iam_tenant *t)
{
    json_t *o = json_pack("{s:s,s:s,s:s,s:I}", "id", t->id, "name", t->name, "status",
                          t->active ? "active" : "disabled", "created_at", (json_int_t)t->created_at);

    if (o != NULL && t->disabled_at != 0 && set_json(o, "disabled_at", json_integer(t->disabled_at)) != 0) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static json_t *principal_json(const cf_iam_principal *p)
{
    json_t *roles = NULL, *o = NULL;
    char b64[64];

    if (cf_iam_roles_to_json(p->roles, &roles) != 0)
        return NULL;
    o = json_pack("{s:s,s:s,s:s,s:s,s:o,s:s,s:I}", "id", p->id, "tenant", p->tenant, "kind", p->kind, "name",
                  p->name, "roles", roles, "status", p->active ? "active" : "disabled", "created_at",
                  (json_int_t)p->created_at);
    if (o == NULL)
        return NULL;
    if (p->disabled_at != 0 && set_json(o, "disabled_at", json_integer(p->disabled_at)) != 0)
        goto fail;
    if (p->has_client_key) {
        cf_b64url_encode(p->client_key, sizeof(p->client_key), b64);
        if (set_json(o, "client_key",
                     json_pack("{s:s,s:I}", "x25519", b64, "created_at", (json_int_t)p->client_key_created_at)) != 0)
            goto fail;
    }
    return o;
fail:
    json_decref(o);
    return NULL;
}

static const char *apikey_status(const cf_iam_apikey *k, int64_t now)
{
    if (k->revoked_at != 0)
        return "revoked";
    return k->expires_at <= now ? "expired" : "active";
}

static json_t *apikey_json(const cf_iam_apikey *k, int64_t now)
{
    json_t *o = json_pack("{s:s,s:s,s:s,s:I,s:I,s:s}", "key_id", k->id, "principal", k->principal, "tenant",
                          k->tenant, "created_at", (json_int_t)k->created_at, "expires_at",
                          (json_int_t)k->expires_at, "status", apikey_status(k, now));

    if (o == NULL)
        return NULL;
    if ((k->revoked_at != 0 && set_json(o, "revoked_at", json_integer(k->revoked_at)) != 0) ||
        (k->last_used_at != 0 && set_json(o, "last_used_at", json_integer(k->last_used_at)) != 0)) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* ?limit=N (1..CF_IAM_MAX_LIST, default DEFAULT_PAGE) and ?after=<id>. */
static int page_params(const cf_http_req *req, size_t *ret_limit, const char **ret_after)
{
    const char *l = cf_http_req_query(req, "limit");
    uint64_t v = DEFAULT_PAGE;

    if (l != NULL && (cf_parse_u64(l, CF_IAM_MAX_LIST, &v) != 0 || v == 0))
        return cf_err_set(CF_E_INVAL, "query parameter 'limit' must be 1-%d", CF_IAM_MAX_LIST);
    *ret_limit = (size_t)v;
    *ret_after = cf_http_req_query(req, "after");
    return 0;
}

/* ---- token, JWKS, health ------------------------------------------------------- */

static int h_token(void *cls, const cf_http_req *req, cf_http_resp *resp)
{
    static const char *const action = "iam.token.issue";
    cf_iam_api *a = cls;
    cf_iam_caller who = {.actor = NULL, .ctx = req};
    char tenant[CF_ID_MAX_LEN + 1];
    const uint8_t *b = NULL;
    size_t n = 0;
    cf_secret key = {0};
    cf_iam_token tok;
    uint32_t retry = 0;
    json_t *o = NULL, *roles = NULL;
    int rc;

    memset(&tok, 0, sizeof(tok));
    CF_GUARD(body_of(a, req, resp, NULL, action, false, &b, &n));
    rc = cf_iam_req_token(b, n, &key, tenant);
    if (rc < 0)
        return api_fail(a, req, NULL, action, NULL, rc);
    rc = cf_iam_token_issue(a->iam, &who, (const char *)key.p, strlen((const char *)key.p),
                            tenant[0] != '\0' ? tenant : NULL, &tok, &retry);
    cf_secret_free(&key);
    if (rc == CF_E_RATE_LIMITED) {
        char ra[24];
        CF_GUARD(cf_fmt(ra, sizeof(ra), "%u", retry > 0 ? retry : 1));
        CF_GUARD(cf_http_resp_error(resp, rc, cf_err_detail(rc)));
        CF_GUARD(cf_http_resp_header(resp, "Retry-After", ra));
        return 0;
    }
    CF_GUARD(rc);
    CF_GUARD_OUT(cf_iam_roles_to_json(tok.claims.roles, &roles));
    /* RFC 6749 §5.1 response shape (token_type, expires_in). */
    o = json_pack("{s:s,s:s,s:I,s:s,s:s,s:O}", "access_token", tok.access_token, "token_type", "Bearer",
                  "expires_in", (json_int_t)tok.expires_in, "tenant", tok.claims.tenant, "principal",
                  tok.claims.sub, "roles", roles);
    CF_ENSURE_OUT(o != NULL, CF_E_NOMEM);
    /* RFC 6749 §5.1 wants "Cache-Control: no-store" on token responses: the
     * HTTP server sets it on every response. */
    CF_GUARD_OUT(cf_http_resp_json(resp, 200, o));
out:
    json_decref(o);
    json_decref(roles);
    cf_iam_token_free(&tok);
    return rc;
}

static int h_jwks(void *cls, const cf_http_req *req, cf_http_resp *resp)
{
    cf_iam_api *a = cls;
    char *s = NULL;
    int rc;

    (void)req;
    CF_GUARD(cf_iam_jwks_json(a->iam, &s));
    rc = cf_http_resp_set(resp, 200, "application/json", s, strlen(s));
    free(s);
    return rc;
}

static int h_healthz(void *cls, const cf_http_req *req, cf_http_resp *resp)
{
    (void)cls;
    (void)req;
    return reply(resp, 200, json_pack("{s:s}", "status", "ok"));
}

static int h_readyz(void *cls, const cf_http_req *req, cf_http_resp *resp)
{
    cf_iam_api *a = cls;
    int rc = cf_iam_ready(a->iam);

    (void)req;
    if (rc < 0)
        return cf_http_resp_error(resp, CF_E_UNAVAILABLE, "not ready: store or signing key unavailable");
    return reply(resp, 200, json_pack("{s:s}", "status", "ready"));
}

/* ---- tenants -------------------------------------------------------------------- */

static int h_tenant_create(void *cls, const cf_http_req *req, cf_http_resp *resp)
{
    static const char *const action = "iam.tenant.create";
    cf_iam_api *a = cls;
    cf_principal actor;
    cf_iam_caller who = {.actor = &actor, .ctx = req};
    char id[CF_ID_MAX_LEN + 1], name[CF_NAME_MAX_LEN + 1];
    const uint8_t *b = NULL;
    size_t n = 0;
    cf_iam_tenant t;
    int rc;

    CF_GUARD(authenticate(a, req, action, &actor));
    CF_GUARD(body_of(a, req, resp, &actor, action, false, &b, &n));
    rc = cf_iam_req_tenant(b, n, id, name);
    if (rc < 0)
        return api_fail(a, req, &actor, action, NULL, rc);
    CF_GUARD(cf_iam_tenant_create(a->iam, &who, id[0] != '\0' ? id : NULL, name, &t));
    return reply(resp, 201, tenant_json(&t));
}

static int h_tenant_list(void *cls, const cf_http_req *req, cf_http_resp *resp)
{
    static const char *const action = "iam.tenant.list";
    cf_iam_api *a = cls;
    cf_principal actor;
    cf_iam_caller who = {.actor = &actor, .ctx = req};
    cf_iam_tenant *list = NULL;
    json_t *o = NULL, *arr = NULL;
    const char *after = NULL;
    size_t limit = 0, n = 0;
    int rc;

    CF_GUARD(authenticate(a, req, action, &actor));
    rc = page_params(req, &limit, &after);
    if (rc < 0)
        return api_fail(a, req, &actor, action, NULL, rc);
    list = calloc(limit, sizeof(*list));
    CF_ENSURE(list != NULL, CF_E_NOMEM);
    CF_GUARD_OUT(cf_iam_tenant_list(a->iam, &who, after, list, limit, &n));
    arr = json_array();
    CF_ENSURE_OUT(arr != NULL, CF_E_NOMEM);
    for (size_t i = 0; i < n; i++)
        CF_ENSURE_OUT(json_array_append_new(arr, tenant_json(&list[i])) == 0, CF_E_NOMEM);
    o = json_pack("{s:O}", "tenants", arr);
    CF_ENSURE_OUT(o != NULL, CF_E_NOMEM);
    if (n == limit)
        CF_GUARD_OUT(set_json(o, "next", json_string(list[n - 1].id)));
    CF_GUARD_OUT(cf_http_resp_json(resp, 200, o));
out:
    json_decref(o);
    json_decref(arr);
    free(list);
    return rc;
}

static int h_tenant_get(void *cls, const cf_http_req *req, cf_http_resp *resp)
{
    cf_iam_api *a = cls;
    cf_principal actor;
    cf_iam_caller who = {.actor = &actor, .ctx = req};
    cf_iam_tenant t;

    CF_GUARD(authenticate(a, req, "iam.tenant.get", &actor));
    CF_GUARD(cf_iam_tenant_get(a->iam, &who, cf_http_req_param(req, "id"), &t));
    return reply(resp, 200, tenant_json(&t));
}

static int h_tenant_disable(void *cls, const cf_http_req *req, cf_http_resp *resp)
{
    static const char *const action = "iam.tenant.disable";
    cf_iam_api *a = cls;
    cf_principal actor;
    cf_iam_caller who = {.actor = &actor, .ctx = req};
    char reason[CF_IAM_MAX_REASON + 1];
    const char *id = cf_http_req_param(req, "id");
    const uint8_t *b = NULL;
    size_t n = 0;
    int rc;

    CF_GUARD(authenticate(a, req, action, &actor));
    CF_GUARD(body_of(a, req, resp, &actor, action, true, &b, &n));
    rc = cf_iam_req_reason(b, n, reason);
    if (rc < 0)
        return api_fail(a, req, &actor, action, NULL, rc);
    CF_GUARD(cf_iam_tenant_disable(a->iam, &who, id, reason[0] != '\0' ? reason : NULL));
    return reply(resp, 200, json_pack("{s:s,s:s}", "id", id, "status", "disabled"));
}

/* ---- principals ----------------------------------------------------------------- */

static int h_principal_create(void *cls, const cf_http_req *req, cf_http_resp *resp)
{
    static const char *const action = "iam.principal.create";
    cf_iam_api *a = cls;
    cf_principal actor;
    cf_iam_caller who = {.actor = &actor, .ctx = req};
    char kind[16], name[CF_NAME_MAX_LEN + 1];
    uint32_t roles = 0;
    const uint8_t *b = NULL;
    size_t n = 0;
    cf_iam_principal p;
    int rc;

    CF_GUARD(authenticate(a, req, action, &actor));
    CF_GUARD(body_of(a, req, resp, &actor, action, false, &b, &n));
    rc = cf_iam_req_principal(b, n, kind, name, &roles);
    if (rc < 0)
        return api_fail(a, req, &actor, action, NULL, rc);
    CF_GUARD(cf_iam_principal_create(a->iam, &who, cf_http_req_param(req, "tenant"), kind, name, roles, &p));
    return reply(resp, 201, principal_json(&p));
}

static int h_principal_list(void *cls, const cf_http_req *req, cf_http_resp *resp)
{
    static const char *const action = "iam.principal.list";
    cf_iam_api *a = cls;
    cf_principal actor;
    cf_iam_caller who = {.actor = &actor, .ctx = req};
    cf_iam_principal *list = NULL;
    json_t *o = NULL, *arr = NULL;
    const char *after = NULL;
    size_t limit = 0, n = 0;
    int rc;

    CF_GUARD(authenticate(a, req, action, &actor));
    rc = page_params(req, &limit, &after);
    if (rc < 0)
        return api_fail(a, req, &actor, action, NULL, rc);
    list = calloc(limit, sizeof(*list));
    CF_ENSURE(list != NULL, CF_E_NOMEM);
    CF_GUARD_OUT(cf_iam_principal_list(a->iam, &who, cf_http_req_param(req, "tenant"), after, list, limit, &n));
    arr = json_array();
    CF_ENSURE_OUT(arr != NULL, CF_E_NOMEM);
    for (size_t i = 0; i < n; i++)
        CF_ENSURE_OUT(json_array_append_new(arr, principal_json(&list[i])) == 0, CF_E_NOMEM);
    o = json_pack("{s:O}", "principals", arr);
    CF_ENSURE_OUT(o != NULL, CF_E_NOMEM);
    if (n == limit)
        CF_GUARD_OUT(set_json(o, "next", json_string(list[n - 1].id)));
    CF_GUARD_OUT(cf_http_resp_json(resp, 200, o));
out:
    json_decref(o);
    json_decref(arr);
    free(list);
    return rc;
}

static int h_principal_get(void *cls, const cf_http_req *req, cf_http_resp *resp)
{
    cf_iam_api *a = cls;
    cf_principal actor;
    cf_iam_caller who = {.actor = &actor, .ctx = req};
    cf_iam_principal p;

    CF_GUARD(authenticate(a, req, "iam.principal.get", &actor));
    CF_GUARD(cf_iam_principal_get(a->iam, &who, cf_http_req_param(req, "id"), &p));
    return reply(resp, 200, principal_json(&p));
}

static int h_principal_disable(void *cls, const cf_http_req *req, cf_http_resp *resp)
{
    static const char *const action = "iam.principal.disable";
    cf_iam_api *a = cls;
    cf_principal actor;
    cf_iam_caller who = {.actor = &actor, .ctx = req};
    char reason[CF_IAM_MAX_REASON + 1];
    const char *id = cf_http_req_param(req, "id");
    const uint8_t *b = NULL;
    size_t n = 0;
    int rc;

    CF_GUARD(authenticate(a, req, action, &actor));
    CF_GUARD(body_of(a, req, resp, &actor, action, true, &b, &n));
    rc = cf_iam_req_reason(b, n, reason);
    if (rc < 0)
        return api_fail(a, req, &actor, action, NULL, rc);
    CF_GUARD(cf_iam_principal_disable(a->iam, &who, id, reason[0] != '\0' ? reason : NULL));
    return reply(resp, 200, json_pack("{s:s,s:s}", "id", id, "status", "disabled"));
}

/* ---- API keys --------------------------------------------------------------------- */

static int h_apikey_create(void *cls, const cf_http_req *req, cf_http_resp *resp)
{
    static const char *const action = "iam.apikey.create";
    cf_iam_api *a = cls;
    cf_principal actor;
    cf_iam_caller who = {.actor = &actor, .ctx = req};
    const uint8_t *b = NULL;
    size_t n = 0;
    uint64_t ttl = 0;
    cf_iam_apikey info;
    cf_secret key = {0};
    cf_buf out;
    int rc;

    CF_GUARD(authenticate(a, req, action, &actor));
    CF_GUARD(body_of(a, req, resp, &actor, action, true, &b, &n));
    rc = cf_iam_req_apikey(b, n, &ttl);
    if (rc < 0)
        return api_fail(a, req, &actor, action, NULL, rc);
    CF_GUARD(cf_iam_apikey_create(a->iam, &who, cf_http_req_param(req, "id"), ttl, &info, &key));
    /* Built by hand in secret memory: the key is shown once and does not pass
     * through jansson's ordinary heap. Every value is an id, a key of
     * [A-Za-z0-9_-] or a number: nothing needs escaping. */
    cf_buf_init_secret(&out, 1024);
    rc = cf_buf_printf(&out,
                       "{\"api_key\":\"%s\",\"created_at\":%lld,\"expires_at\":%lld,\"key_id\":\"%s\","
                       "\"principal\":\"%s\",\"tenant\":\"%s\"}",
                       (const char *)key.p, (long long)info.created_at, (long long)info.expires_at, info.id,
                       info.principal, info.tenant);
    cf_secret_free(&key);
    if (rc == 0) /* the server marks every response "Cache-Control: no-store" */
        rc = cf_http_resp_set(resp, 201, "application/json", out.data, out.len);
    cf_buf_free(&out);
    return rc;
}

static int h_apikey_list(void *cls, const cf_http_req *req, cf_http_resp *resp)
{
    cf_iam_api *a = cls;
    cf_principal actor;
    cf_iam_caller who = {.actor = &actor, .ctx = req};
    cf_iam_apikey *list = NULL;
    json_t *o = NULL, *arr = NULL;
    size_t n = 0;
    int rc;

    CF_GUARD(authenticate(a, req, "iam.apikey.list", &actor));
    list = calloc(CF_IAM_MAX_LIST, sizeof(*list));
    CF_ENSURE(list != NULL, CF_E_NOMEM);
    CF_GUARD_OUT(cf_iam_apikey_list(a->iam, &who, cf_http_req_param(req, "id"), list, CF_IAM_MAX_LIST, &n));
    arr = json_array();
    CF_ENSURE_OUT(arr != NULL, CF_E_NOMEM);
    for (size_t i = 0; i < n; i++)
        CF_ENSURE_OUT(json_array_append_new(arr, apikey_json(&list[i], cf_iam_now(a->iam))) == 0, CF_E_NOMEM);
    o = json_pack("{s:O}", "api_keys", arr);
    CF_ENSURE_OUT(o != NULL, CF_E_NOMEM);
    CF_GUARD_OUT(cf_http_resp_json(resp, 200, o));
out:
    json_decref(o);
    json_decref(arr);
    free(list);
    return rc;
}

static int h_apikey_revoke(void *cls, const cf_http_req *req, cf_http_resp *resp)
{
    static const char *const action = "iam.apikey.revoke";
    cf_iam_api *a = cls;
    cf_principal actor;
    cf_iam_caller who = {.actor = &actor, .ctx = req};
    char reason[CF_IAM_MAX_REASON + 1];
    const char *id = cf_http_req_param(req, "key_id");
    const uint8_t *b = NULL;
    size_t n = 0;
    int rc;

    CF_GUARD(authenticate(a, req, action, &actor));
    CF_GUARD(body_of(a, req, resp, &actor, action, true, &b, &n));
    rc = cf_iam_req_reason(b, n, reason);
    if (rc < 0)
        return api_fail(a, req, &actor, action, NULL, rc);
    CF_GUARD(cf_iam_apikey_revoke(a->iam, &who, id, reason[0] != '\0' ? reason : NULL));
    return reply(resp, 200, json_pack("{s:s,s:s}", "key_id", id, "status", "revoked"));
}

/* ---- client keys, signing keys ------------------------------------------------------ */

static int h_clientkey(void *cls, const cf_http_req *req, cf_http_resp *resp)
{
    static const char *const action = "iam.clientkey.register";
    cf_iam_api *a = cls;
    cf_principal actor;
    cf_iam_caller who = {.actor = &actor, .ctx = req};
    const char *id = cf_http_req_param(req, "id");
    const uint8_t *b = NULL;
    size_t n = 0;
    uint8_t pub[32];
    char b64[64];
    int rc;

    CF_GUARD(authenticate(a, req, action, &actor));
    CF_GUARD(body_of(a, req, resp, &actor, action, false, &b, &n));
    rc = cf_iam_req_clientkey(b, n, pub);
    if (rc < 0)
        return api_fail(a, req, &actor, action, NULL, rc);
    CF_GUARD(cf_iam_clientkey_register(a->iam, &who, id, pub, sizeof(pub)));
    cf_b64url_encode(pub, sizeof(pub), b64);
    return reply(resp, 200, json_pack("{s:s,s:s,s:s}", "principal", id, "x25519", b64, "status", "registered"));
}

static int h_rotate(void *cls, const cf_http_req *req, cf_http_resp *resp)
{
    static const char *const action = "iam.signing_key.rotate";
    cf_iam_api *a = cls;
    cf_principal actor;
    cf_iam_caller who = {.actor = &actor, .ctx = req};
    char reason[CF_IAM_MAX_REASON + 1], kid[CF_JWK_KID_MAX_LEN + 1];
    const uint8_t *b = NULL;
    size_t n = 0;
    int rc;

    CF_GUARD(authenticate(a, req, action, &actor));
    CF_GUARD(body_of(a, req, resp, &actor, action, true, &b, &n));
    rc = cf_iam_req_reason(b, n, reason);
    if (rc < 0)
        return api_fail(a, req, &actor, action, NULL, rc);
    CF_GUARD(cf_iam_signing_rotate(a->iam, &who, kid));
    return reply(resp, 200, json_pack("{s:s,s:s}", "kid", kid, "alg", "EdDSA"));
}

/* ---- route table ------------------------------------------------------------------------ */

int cf_iam_api_register(cf_http_server *srv, cf_iam_api *api)
{
    static const struct {
        const char *method, *pattern;
        cf_http_handler h;
    } routes[] = {
        {"POST", "/v1/iam/token", h_token},
        {"GET", "/.well-known/jwks.json", h_jwks},
        {"GET", "/healthz", h_healthz},
        {"GET", "/readyz", h_readyz},
        {"POST", "/v1/iam/tenants", h_tenant_create},
        {"GET", "/v1/iam/tenants", h_tenant_list},
        {"GET", "/v1/iam/tenants/{id}", h_tenant_get},
        {"POST", "/v1/iam/tenants/{id}/disable", h_tenant_disable},
        {"POST", "/v1/iam/tenants/{tenant}/principals", h_principal_create},
        {"GET", "/v1/iam/tenants/{tenant}/principals", h_principal_list},
        {"GET", "/v1/iam/principals/{id}", h_principal_get},
        {"POST", "/v1/iam/principals/{id}/disable", h_principal_disable},
        {"POST", "/v1/iam/principals/{id}/api-keys", h_apikey_create},
        {"GET", "/v1/iam/principals/{id}/api-keys", h_apikey_list},
        {"POST", "/v1/iam/api-keys/{key_id}/revoke", h_apikey_revoke},
        {"PUT", "/v1/iam/principals/{id}/client-key", h_clientkey},
        {"POST", "/v1/iam/principals/{id}/client-key", h_clientkey},
        {"POST", "/v1/iam/signing-keys/rotate", h_rotate},
    };

    CF_ENSURE(srv != NULL && api != NULL && api->iam != NULL && api->audit != NULL, CF_E_INVAL);
    for (size_t i = 0; i < CF_ARRAY_LEN(routes); i++)
        CF_GUARD(cf_http_server_route(srv, routes[i].method, routes[i].pattern, routes[i].h, api,
                                      CF_IAM_MAX_BODY));
    return 0;
}
