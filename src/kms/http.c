/*
 * KMS HTTP API (kms/http.h; docs/internals/kms.md "HTTP API").
 *
 * Who may call what (DESIGN.md §2 rules 2 and 5; proto/authz.h):
 *   GET  /v1/kms/release-key                     anyone (public key, pinned by clients and TEEs)
 *   POST /v1/kms/otk                             access token with otk.issue and cnf.x25519
 *   POST /v1/kms/otk/{id}/release                the registered TEE (proof sealed with its key)
 *   POST /v1/registry/join-tokens                registry.admin (for the token's tenant)
 *   POST /v1/registry/nonce                      anyone (TEEs have no credentials yet); bounded
 *   POST /v1/registry/tees                       a join token (in the body) + evidence
 *   GET  /v1/registry/tees[/{id}]                registry.read (tenant-scoped), or the mTLS
 *                                                peers spiffe://coffer/gateway and /attest
 *   POST /v1/registry/tees/{id}/quarantine|revoke  registry.admin (tenant-scoped)
 *   POST /v1/registry/tees/{id}/attestations     only the mTLS peer spiffe://coffer/attest
 *   /v1/kms/keys/{tenant}...                     key.admin (tenant-scoped)
 *   POST /v1/kms/datakeys|encrypt|decrypt|rewrap datakey.use (the token's tenant)
 * Access tokens are verified locally against IAM's JWKS (cf_svc_authenticate).
 */
#include "kms/http.h"

#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/json.h"
#include "base/log.h"
#include "base/parse.h"
#include "base/secmem.h"

#define JSON_CT "application/json"

typedef struct {
    cf_kms_api *api;
    const cf_http_req *req;
    cf_http_resp *resp;
    const char *action;
    cf_principal p;
    bool have_p;
    cf_kms_who who;
    char resource[96];
} call;

static void call_init(call *c, void *cls, const cf_http_req *req, cf_http_resp *resp,
                      const char *action)
{
    memset(c, 0, sizeof(*c));
    c->api = cls;
    c->req = req;
    c->resp = resp;
    c->action = action;
    c->who.request_id = cf_http_req_id(req);
    c->who.ctx = req;
}

static void call_resource(call *c, const char *kind, const char *id, const char *prefix)
{
    if (cf_kms_id_valid(id, prefix) &&
        cf_fmt(c->resource, sizeof(c->resource), "%s/%s", kind, id) == 0)
        return;
    c->resource[0] = 0;
}

/* ---- errors ------------------------------------------------------------------------------ */

/* HTTP status of a KMS result (kms/kms.h "ERRORS"). */
static int status_of(int rc)
{
    switch (rc) {
    case CF_E_EXPIRED:
        return 410; /* an expired OTK is gone for good (RFC 9110 §15.5.11) */
    case CF_E_UNAUTHENTICATED:
        return 401;
    default:
        return cf_err_http_status(rc);
    }
}

static int send_err(call *c, int rc, int status)
{
    const char *msg = cf_err_detail(rc);

    if (status >= 500) {
        /* Details of internal failures stay in the log. */
        cf_log(CF_LOG_WARN, "kms.request_failed", "action", c->action, "code", cf_err_name(rc),
               "detail", msg, NULL);
        msg = cf_err_str(rc);
    }
    if (rc == CF_E_RATE_LIMITED && cf_http_resp_header(c->resp, "Retry-After", "5") < 0)
        cf_log(CF_LOG_WARN, "kms.header_failed", "header", "Retry-After", NULL);
    if (cf_http_resp_error_status(c->resp, status, cf_err_name(rc), msg) < 0)
        return CF_E_NOMEM;
    return rc;
}

/* A request refused before it reached the core: audited here, then answered.
 * status 0 = status_of(rc). */
static int reject(call *c, int rc, const char *tenant, int status)
{
    char saved[256];
    json_t *d;
    int arc;

    if (cf_fmt(saved, sizeof(saved), "%s", cf_err_detail(rc)) != 0)
        saved[0] = 0;
    d = json_pack("{s:s,s:s}", "error", cf_err_name(rc), "reason", saved);
    arc = cf_svc_audit(c->api->svc, c->req, c->have_p ? &c->p : NULL, c->action,
                       cf_kms_tenant_valid(tenant) ? tenant : NULL,
                       c->resource[0] ? c->resource : NULL, "failure", d);
    if (arc != 0)
        cf_log(CF_LOG_ERROR, "kms.audit_failed", "action", c->action, NULL);
    cf_err_set(rc, "%s", saved);
    return send_err(c, rc, status ? status : status_of(rc));
}

/* ---- authentication ----------------------------------------------------------------------- */

static int authenticate(call *c)
{
    int rc = cf_svc_authenticate(c->api->svc, c->req, &c->p);

    if (rc < 0)
        return reject(c, rc, NULL, cf_err_http_status(rc) == 500 ? 401 : cf_err_http_status(rc));
    c->have_p = true;
    c->who.actor = c->p.sub;
    return 0;
}

static int authorize(call *c, cf_perm perm, const char *tenant)
{
    int rc = cf_authz_check(&c->p, perm, tenant);

    return rc < 0 ? reject(c, rc, tenant, 403) : 0;
}

/* Registry reads: an access token with registry.read, or (no Authorization
 * header) the gateway's or the attestation service's mTLS identity. Sets
 * *ret_scope to the tenant a non-platform principal is limited to (NULL: all). */
static int registry_reader(call *c, const char **ret_scope)
{
    static const char *const peers[] = {"gateway", "attest", NULL};
    int rc;

    *ret_scope = NULL;
    if (cf_http_req_header(c->req, "Authorization") != NULL) {
        CF_GUARD(authenticate(c));
        CF_GUARD(authorize(c, CF_PERM_REGISTRY_READ, NULL));
        if (!cf_principal_is_platform(&c->p))
            *ret_scope = c->p.tenant;
        return 0;
    }
    rc = cf_svc_require_peer(c->req, peers);
    if (rc < 0)
        return reject(c, rc == CF_E_UNAUTHENTICATED
                             ? cf_err_set(CF_E_UNAUTHENTICATED, "an access token with registry.read "
                                          "or a gateway / attestation service certificate is required")
                             : rc,
                      NULL, 0);
    return 0;
}

/* ---- request bodies ------------------------------------------------------------------------ */

/* Field getters report CF_E_TOO_LARGE for long values; a long field is a bad
 * request (400), the 413 is for the body. */
static int field(int rc)
{
    if (rc == CF_E_TOO_LARGE)
        return cf_err_set(CF_E_INVAL, "%s", cf_err_detail(rc));
    return rc;
}

static int body_json(call *c, size_t limit, const char *const *keys, bool optional, json_t **ret)
{
    size_t n = 0;
    const uint8_t *b = cf_http_req_body(c->req, &n);
    json_t *o = NULL;
    int rc;

    if (n > limit)
        return reject(c, cf_err_set(CF_E_TOO_LARGE, "request body exceeds %zu bytes", limit), NULL, 413);
    if (n == 0 && optional) {
        *ret = json_object();
        return *ret != NULL ? 0 : CF_E_NOMEM;
    }
    if (!cf_http_req_content_type_is(c->req, JSON_CT))
        return reject(c, cf_err_set(CF_E_UNSUPPORTED, "content type must be %s", JSON_CT), NULL, 415);
    rc = cf_json_parse_object(b, n, limit, &o);
    if (rc == 0)
        rc = cf_json_only_keys(o, keys);
    if (rc < 0) {
        json_decref(o);
        return reject(c, rc == CF_E_TOO_LARGE ? rc : field(rc), NULL, 0);
    }
    *ret = o;
    return 0;
}

/* base64url field of exactly n bytes (when exact) or at most n bytes. */
static int b64_field(const json_t *o, const char *key, bool required, size_t n, bool exact, cf_buf *out)
{
    size_t before = out->len;

    CF_GUARD(field(cf_json_get_b64url(o, key, required, n, out)));
    if (exact && out->len - before != n && (required || out->len != before))
        return cf_err_set(CF_E_INVAL, "field '%s' must be %zu bytes of base64url", key, n);
    return 0;
}

typedef struct {
    char platform[16];
    cf_buf report, cert;
    cf_kms_evidence ev;
} evidence_in;

static void evidence_init(evidence_in *e)
{
    memset(e, 0, sizeof(*e));
    cf_buf_init(&e->report, CF_SNP_REPORT_SIZE);
    cf_buf_init(&e->cert, CF_CERT_MAX_BYTES);
}

static void evidence_free(evidence_in *e)
{
    cf_buf_free(&e->report);
    cf_buf_free(&e->cert);
}

/* "evidence": {"platform": "sev-snp", "report": base64url, "cert": base64url} */
static int evidence_parse(const json_t *o, evidence_in *e)
{
    static const char *const keys[] = {"platform", "report", "cert", NULL};
    const char *platform = NULL;
    json_t *ev = NULL;

    CF_GUARD(cf_json_get_obj(o, "evidence", true, &ev));
    if (!json_is_object(ev))
        return cf_err_set(CF_E_PARSE, "field 'evidence' must be an object");
    CF_GUARD(cf_json_only_keys(ev, keys));
    CF_GUARD(field(cf_json_get_str(ev, "platform", true, sizeof(e->platform) - 1, &platform)));
    memcpy(e->platform, platform, strlen(platform) + 1);
    CF_GUARD(b64_field(ev, "report", true, CF_SNP_REPORT_SIZE, false, &e->report));
    CF_GUARD(b64_field(ev, "cert", true, CF_CERT_MAX_BYTES, false, &e->cert));
    e->ev = (cf_kms_evidence){.platform = e->platform, .report = e->report.data,
                              .report_len = e->report.len, .cert = e->cert.data,
                              .cert_len = e->cert.len};
    return 0;
}

/* ---- responses ------------------------------------------------------------------------------- */

static int reply(call *c, int status, json_t *v)
{
    int rc;

    if (v == NULL)
        return cf_err_set(CF_E_NOMEM, "cannot build the response");
    rc = cf_http_resp_json(c->resp, status, v);
    json_decref(v);
    return rc;
}

static char *b64(const uint8_t *p, size_t n)
{
    return cf_b64url_encode_alloc(p, n);
}

/* Appends "key":"<base64url>" built in secret memory (for plaintext key material). */
static int put_secret_b64(cf_buf *out, const char *key, const uint8_t *p, size_t n)
{
    size_t el = cf_b64url_encoded_len(n);
    char *tmp = cf_secure_alloc(el + 1);
    int rc;

    CF_ENSURE(tmp != NULL, CF_E_NOMEM);
    cf_b64url_encode(p, n, tmp);
    rc = cf_buf_printf(out, "\"%s\":\"", key);
    if (rc == 0)
        rc = cf_buf_put(out, tmp, el);
    if (rc == 0)
        rc = cf_buf_put_str(out, "\"");
    cf_secure_free(tmp);
    return rc;
}

/* {"<k1>":"<b64>"[,"<k2>":"<b64>"]} from secret memory; the HTTP layer copies it once more
 * into its response buffer. */
static int reply_secret(call *c, int status, const char *k1, const uint8_t *v1, size_t n1,
                        const char *k2, const uint8_t *v2, size_t n2)
{
    cf_buf out;
    int rc;

    cf_buf_init_secret(&out, 4 * (n1 + n2) / 3 + 256);
    CF_GUARD_OUT(cf_buf_put_str(&out, "{"));
    CF_GUARD_OUT(put_secret_b64(&out, k1, v1, n1));
    if (k2 != NULL) {
        CF_GUARD_OUT(cf_buf_put_str(&out, ","));
        CF_GUARD_OUT(put_secret_b64(&out, k2, v2, n2));
    }
    CF_GUARD_OUT(cf_buf_put_str(&out, "}"));
    rc = cf_http_resp_set(c->resp, status, JSON_CT, out.data, out.len);
out:
    cf_buf_free(&out);
    return rc;
}

/* ---- release key, OTKs ----------------------------------------------------------------------- */

static int h_release_key(void *cls, const cf_http_req *req, cf_http_resp *resp)
{
    call c;
    size_t n = 0;
    const uint8_t *pub;
    char *x = NULL;
    json_t *v;
    int rc;

    call_init(&c, cls, req, resp, "release_key.get");
    pub = cf_hpke_key_pub(cf_kms_release_key(c.api->kms), &n);
    x = b64(pub, n);
    CF_ENSURE(x != NULL, CF_E_NOMEM);
    v = json_pack("{s:s,s:s}", "kid", cf_kms_release_kid(c.api->kms), "x25519", x);
    free(x);
    rc = cf_svc_audit(c.api->svc, req, NULL, c.action, NULL, "release-key", "success", NULL);
    if (rc < 0) {
        json_decref(v);
        return send_err(&c, rc, 503);
    }
    return reply(&c, 200, v);
}

static int h_otk_issue(void *cls, const cf_http_req *req, cf_http_resp *resp)
{
    static const char *const keys[] = {"tee_id", NULL};
    const char *tee_id = NULL;
    cf_kms_issued iss;
    json_t *o = NULL;
    char *enc = NULL, *ct = NULL;
    call c;
    int rc;

    call_init(&c, cls, req, resp, "otk.issue");
    CF_GUARD(authenticate(&c));
    CF_GUARD(authorize(&c, CF_PERM_OTK_ISSUE, NULL));
    CF_GUARD(body_json(&c, CF_KMS_MAX_BODY, keys, false, &o));
    rc = field(cf_json_get_str(o, "tee_id", true, CF_KMS_TEE_ID_LEN, &tee_id));
    if (rc < 0) {
        json_decref(o);
        return reject(&c, rc, c.p.tenant, 0);
    }
    /* DESIGN.md §5 step 3: sealed to the client key the token names (cnf.x25519). */
    rc = cf_kms_otk_issue(c.api->kms, &c.who, c.p.tenant, c.p.sub,
                          c.p.has_client_key ? c.p.client_key : NULL, tee_id, &iss);
    json_decref(o);
    if (rc < 0)
        return send_err(&c, rc, status_of(rc));
    enc = b64(iss.enc, sizeof(iss.enc));
    ct = b64(iss.ct, sizeof(iss.ct));
    rc = reply(&c, 201,
               enc && ct ? json_pack("{s:s,s:s,s:I,s:s,s:s}", "otk_id", iss.otk_id, "tee_id",
                                     iss.tee_id, "expires_at", (json_int_t)iss.expires_at, "enc",
                                     enc, "ct", ct)
                         : NULL);
    free(enc);
    free(ct);
    return rc;
}

static int h_otk_release(void *cls, const cf_http_req *req, cf_http_resp *resp)
{
    static const char *const keys[] = {"tee_id", "enc", "ct", NULL};
    const char *otk_id = cf_http_req_param(req, "id"), *tee_id = NULL;
    cf_kms_release_resp *rel = NULL;
    cf_buf enc, ct;
    json_t *o = NULL;
    char *e64 = NULL, *c64 = NULL;
    call c;
    int rc;

    call_init(&c, cls, req, resp, "otk.release");
    call_resource(&c, "otk", otk_id, "otk_");
    cf_buf_init(&enc, CF_KMS_ENC_LEN);
    cf_buf_init(&ct, CF_KMS_RELEASE_REQ_MAX + CF_HPKE_NT);
    rc = body_json(&c, CF_KMS_MAX_BODY, keys, false, &o);
    if (rc < 0)
        goto done;
    rc = field(cf_json_get_str(o, "tee_id", true, CF_KMS_TEE_ID_LEN, &tee_id));
    if (rc == 0)
        rc = b64_field(o, "enc", true, CF_KMS_ENC_LEN, true, &enc);
    if (rc == 0)
        rc = b64_field(o, "ct", true, CF_KMS_RELEASE_REQ_MAX + CF_HPKE_NT, false, &ct);
    if (rc < 0) {
        rc = reject(&c, rc, NULL, 0);
        goto done;
    }
    rel = calloc(1, sizeof(*rel));
    if (rel == NULL) {
        rc = CF_E_NOMEM;
        goto done;
    }
    /* DESIGN.md §5 step 6. No bearer token: the proof of possession of the
     * registered TEE key is the credential (a gateway cannot make one). */
    rc = cf_kms_otk_release(c.api->kms, &c.who, otk_id, tee_id, enc.data, enc.len, ct.data, ct.len,
                            rel);
    if (rc < 0) {
        rc = send_err(&c, rc, status_of(rc));
        goto done;
    }
    e64 = b64(rel->enc, sizeof(rel->enc));
    c64 = b64(rel->ct, rel->ct_len);
    rc = reply(&c, 200, e64 && c64 ? json_pack("{s:s,s:s}", "enc", e64, "ct", c64) : NULL);
done:
    free(e64);
    free(c64);
    free(rel);
    json_decref(o);
    cf_buf_free(&enc);
    cf_buf_free(&ct);
    return rc;
}

/* ---- registry ------------------------------------------------------------------------------ */

static int h_join_token(void *cls, const cf_http_req *req, cf_http_resp *resp)
{
    static const char *const keys[] = {"tenant", "deployment", "ttl", "uses", NULL};
    const char *tenant = NULL, *deployment = NULL;
    uint64_t ttl = 3600, uses = 1;
    cf_kms_join_token jt;
    json_t *o = NULL;
    call c;
    int rc;

    call_init(&c, cls, req, resp, "join_token.create");
    CF_GUARD(authenticate(&c));
    CF_GUARD(body_json(&c, CF_KMS_MAX_BODY, keys, false, &o));
    rc = field(cf_json_get_str(o, "tenant", true, CF_ID_MAX_LEN, &tenant));
    if (rc == 0)
        rc = field(cf_json_get_str(o, "deployment", true, CF_NAME_MAX_LEN, &deployment));
    if (rc == 0)
        rc = cf_json_get_u64(o, "ttl", false, CF_KMS_JOIN_TTL_MAX, &ttl);
    if (rc == 0)
        rc = cf_json_get_u64(o, "uses", false, CF_KMS_JOIN_MAX_USES, &uses);
    if (rc < 0) {
        rc = reject(&c, rc, tenant, 0);
        goto done;
    }
    rc = authorize(&c, CF_PERM_REGISTRY_ADMIN, tenant);
    if (rc < 0)
        goto done;
    rc = cf_kms_join_token_create(c.api->kms, &c.who, tenant, deployment, ttl, uses, &jt);
    if (rc < 0) {
        rc = send_err(&c, rc, status_of(rc));
        goto done;
    }
    /* The token is shown once; only its hash is kept. */
    rc = reply(&c, 201,
               json_pack("{s:s,s:s,s:s,s:s,s:I,s:I}", "id", jt.id, "token", jt.token, "tenant",
                         jt.tenant, "deployment", jt.deployment, "expires_at",
                         (json_int_t)jt.expires_at, "uses", (json_int_t)jt.uses));
    cf_wipe(&jt, sizeof(jt));
done:
    json_decref(o);
    return rc;
}

static int h_nonce(void *cls, const cf_http_req *req, cf_http_resp *resp)
{
    static const char *const keys[] = {NULL};
    uint8_t nonce[CF_BINDING_NONCE_LEN];
    char hex[2 * CF_BINDING_NONCE_LEN + 1];
    int64_t exp = 0;
    json_t *o = NULL;
    call c;
    int rc;

    call_init(&c, cls, req, resp, "nonce.issue");
    CF_GUARD(body_json(&c, CF_KMS_MAX_BODY, keys, true, &o));
    json_decref(o);
    rc = cf_kms_nonce_issue(c.api->kms, &c.who, nonce, &exp);
    if (rc < 0)
        return send_err(&c, rc, status_of(rc));
    cf_hex_encode(nonce, sizeof(nonce), hex);
    return reply(&c, 200, json_pack("{s:s,s:I}", "nonce", hex, "expires_at", (json_int_t)exp));
}

/* 403 for evidence that did not verify: the error plus the verifier's check list. */
static int reply_verify_failure(call *c, int rc, const cf_verify_result *vr)
{
    json_t *full = cf_verify_result_to_json(vr), *checks, *v;

    checks = full != NULL ? json_object_get(full, "checks") : NULL;
    v = json_pack("{s:{s:s,s:s,s:s},s:O?}", "error", "code", cf_err_name(rc), "message",
                  cf_err_detail(rc), "request_id", cf_http_req_id(c->req), "checks", checks);
    json_decref(full);
    if (v == NULL)
        return send_err(c, rc, 403);
    rc = cf_http_resp_json(c->resp, 403, v);
    json_decref(v);
    return rc < 0 ? rc : CF_E_VERIFY;
}

static int h_register(void *cls, const cf_http_req *req, cf_http_resp *resp)
{
    static const char *const keys[] = {"join_token", "nonce", "public_key", "evidence", "endpoint",
                                       NULL};
    const char *token = NULL, *endpoint = NULL;
    uint8_t nonce[CF_BINDING_NONCE_LEN];
    cf_verify_result *vr = NULL;
    cf_buf pk;
    evidence_in e;
    cf_kms_tee t;
    json_t *o = NULL;
    call c;
    int rc;

    call_init(&c, cls, req, resp, "tee.register");
    cf_buf_init(&pk, CF_KMS_X25519_LEN);
    evidence_init(&e);
    rc = body_json(&c, CF_KMS_MAX_BODY, keys, false, &o);
    if (rc < 0)
        goto done;
    rc = field(cf_json_get_str(o, "join_token", true, 64, &token));
    if (rc == 0)
        rc = cf_json_get_hex(o, "nonce", true, nonce, sizeof(nonce));
    if (rc == 0)
        rc = b64_field(o, "public_key", true, CF_KMS_X25519_LEN, true, &pk);
    if (rc == 0)
        rc = evidence_parse(o, &e);
    if (rc == 0)
        rc = field(cf_json_get_str(o, "endpoint", false, CF_KMS_MAX_ENDPOINT, &endpoint));
    if (rc < 0) {
        rc = reject(&c, field(rc), NULL, 0);
        goto done;
    }
    rc = cf_kms_tee_register(c.api->kms, &c.who, token, nonce, pk.data, endpoint, &e.ev, &t, &vr);
    if (rc == CF_E_VERIFY && vr != NULL) {
        rc = reply_verify_failure(&c, rc, vr);
        goto done;
    }
    if (rc < 0) {
        rc = send_err(&c, rc, status_of(rc));
        goto done;
    }
    rc = reply(&c, 201, cf_kms_tee_to_json(&t));
done:
    cf_verify_result_free(vr);
    json_decref(o);
    cf_buf_free(&pk);
    evidence_free(&e);
    return rc;
}

static int parse_limit(const char *s, size_t *ret)
{
    uint64_t v = 0;

    if (s == NULL)
        return 0;
    if (cf_parse_u64(s, CF_KMS_LIST_MAX, &v) != 0 || v == 0)
        return cf_err_set(CF_E_INVAL, "limit must be 1-%d", CF_KMS_LIST_MAX);
    *ret = (size_t)v;
    return 0;
}

static int h_tee_list(void *cls, const cf_http_req *req, cf_http_resp *resp)
{
    cf_kms_tee_filter f;
    const char *scope = NULL;
    cf_kms_tee *out = NULL;
    size_t n = 0;
    json_t *arr = NULL;
    call c;
    int rc;

    call_init(&c, cls, req, resp, "tee.list");
    CF_GUARD(registry_reader(&c, &scope));
    memset(&f, 0, sizeof(f));
    f.tenant = cf_http_req_query(req, "tenant");
    f.deployment = cf_http_req_query(req, "deployment");
    f.status = cf_http_req_query(req, "status");
    f.after = cf_http_req_query(req, "after");
    f.limit = CF_KMS_LIST_DEFAULT;
    rc = parse_limit(cf_http_req_query(req, "limit"), &f.limit);
    if (rc < 0)
        return reject(&c, rc, scope, 0);
    if (scope != NULL) {
        if (f.tenant != NULL && strcmp(f.tenant, scope) != 0)
            return reject(&c, cf_err_set(CF_E_FORBIDDEN, "principal of tenant '%s' cannot list "
                                         "another tenant's TEEs", scope),
                          scope, 403);
        f.tenant = scope;
    }
    out = calloc(f.limit, sizeof(*out));
    CF_ENSURE(out != NULL, CF_E_NOMEM);
    rc = cf_kms_tee_list(c.api->kms, &c.who, &f, out, f.limit, &n);
    if (rc < 0) {
        rc = send_err(&c, rc, status_of(rc));
        goto done;
    }
    arr = json_array();
    for (size_t i = 0; arr != NULL && i < n; i++) {
        if (json_array_append_new(arr, cf_kms_tee_to_json(&out[i])) != 0) {
            json_decref(arr);
            arr = NULL;
        }
    }
    rc = reply(&c, 200,
               arr ? json_pack("{s:o,s:s?}", "tees", arr, "next", n == f.limit && n > 0 ? out[n - 1].id : NULL)
                   : NULL);
done:
    free(out);
    return rc;
}

static int h_tee_get(void *cls, const cf_http_req *req, cf_http_resp *resp)
{
    const char *id = cf_http_req_param(req, "id"), *scope = NULL;
    cf_kms_tee t;
    call c;
    int rc;

    call_init(&c, cls, req, resp, "tee.get");
    call_resource(&c, "tee", id, "tee_");
    CF_GUARD(registry_reader(&c, &scope));
    rc = cf_kms_tee_get(c.api->kms, &c.who, id, scope, &t);
    if (rc < 0)
        return send_err(&c, rc, status_of(rc));
    return reply(&c, 200, cf_kms_tee_to_json(&t));
}

static int tee_state(void *cls, const cf_http_req *req, cf_http_resp *resp, bool revoke)
{
    static const char *const keys[] = {"reason", NULL};
    const char *id = cf_http_req_param(req, "id"), *reason = NULL;
    cf_kms_tee t;
    json_t *o = NULL;
    call c;
    int rc;

    call_init(&c, cls, req, resp, revoke ? "tee.revoke" : "tee.quarantine");
    call_resource(&c, "tee", id, "tee_");
    CF_GUARD(authenticate(&c));
    CF_GUARD(authorize(&c, CF_PERM_REGISTRY_ADMIN, NULL));
    CF_GUARD(body_json(&c, CF_KMS_MAX_BODY, keys, false, &o));
    rc = field(cf_json_get_str(o, "reason", true, CF_KMS_MAX_REASON, &reason));
    if (rc < 0) {
        json_decref(o);
        return reject(&c, rc, NULL, 0);
    }
    {
        const char *scope = cf_principal_is_platform(&c.p) ? NULL : c.p.tenant;
        rc = revoke ? cf_kms_tee_revoke(c.api->kms, &c.who, id, scope, reason, &t)
                    : cf_kms_tee_quarantine(c.api->kms, &c.who, id, scope, reason, &t);
    }
    json_decref(o);
    if (rc < 0)
        return send_err(&c, rc, status_of(rc));
    return reply(&c, 200, cf_kms_tee_to_json(&t));
}

static int h_tee_quarantine(void *cls, const cf_http_req *req, cf_http_resp *resp)
{
    return tee_state(cls, req, resp, false);
}

static int h_tee_revoke(void *cls, const cf_http_req *req, cf_http_resp *resp)
{
    return tee_state(cls, req, resp, true);
}

static int h_tee_attest(void *cls, const cf_http_req *req, cf_http_resp *resp)
{
    static const char *const keys[] = {"nonce", "evidence", NULL};
    static const char *const peers[] = {"attest", NULL};
    const char *id = cf_http_req_param(req, "id");
    uint8_t nonce[CF_BINDING_NONCE_LEN];
    cf_verify_result *vr = NULL;
    bool quarantined = false;
    evidence_in e;
    cf_kms_tee t;
    json_t *o = NULL, *v = NULL;
    call c;
    int rc;

    call_init(&c, cls, req, resp, "tee.attest");
    call_resource(&c, "tee", id, "tee_");
    evidence_init(&e);
    /* Only the attestation service reports; its verdict is not trusted (the
     * evidence is verified again below), but nobody else may trigger this. */
    rc = cf_svc_require_peer(req, peers);
    if (rc < 0) {
        rc = reject(&c, rc, NULL, 0);
        goto done;
    }
    rc = body_json(&c, CF_KMS_MAX_BODY, keys, false, &o);
    if (rc < 0)
        goto done;
    rc = cf_json_get_hex(o, "nonce", true, nonce, sizeof(nonce));
    if (rc == 0)
        rc = evidence_parse(o, &e);
    if (rc < 0) {
        rc = reject(&c, field(rc), NULL, 0);
        goto done;
    }
    rc = cf_kms_tee_attest(c.api->kms, &c.who, id, nonce, &e.ev, &t, &quarantined, &vr);
    if (rc < 0) {
        rc = send_err(&c, rc, status_of(rc));
        goto done;
    }
    /* 200 either way: the report was processed; "status" says what it did. */
    v = cf_kms_tee_to_json(&t);
    if (v != NULL && quarantined && vr != NULL) {
        json_t *full = cf_verify_result_to_json(vr);
        json_t *checks = full ? json_object_get(full, "checks") : NULL;
        if (checks != NULL)
            (void)json_object_set(v, "checks", checks);
        json_decref(full);
    }
    rc = reply(&c, 200, v);
done:
    cf_verify_result_free(vr);
    json_decref(o);
    evidence_free(&e);
    return rc;
}

/* ---- tenant keys ------------------------------------------------------------------------------ */

static json_t *tenant_json(const cf_kms_tenant_info *i)
{
    return json_pack("{s:s,s:I,s:I,s:I,s:I,s:s,s:I}", "tenant", i->tenant, "current_version",
                     (json_int_t)i->current_version, "min_decryption_version",
                     (json_int_t)i->min_decryption_version, "rotate_every",
                     (json_int_t)i->rotate_every, "next_rotation_at",
                     (json_int_t)i->next_rotation_at, "state", i->revoked ? "revoked" : "active",
                     "created_at", (json_int_t)i->created_at);
}

static const char *key_state_name(cf_kms_key_state s)
{
    return s == CF_KMS_KEY_ACTIVE ? "active" : s == CF_KMS_KEY_REVOKED ? "revoked" : "destroyed";
}

/* Common part of the key-admin endpoints: token with key.admin for the path tenant. */
static int key_admin(call *c, const char **ret_tenant, cf_kms_caller *ret_who)
{
    const char *tenant = cf_http_req_param(c->req, "tenant");

    CF_GUARD(authenticate(c));
    CF_GUARD(authorize(c, CF_PERM_KEY_ADMIN, tenant));
    *ret_tenant = tenant;
    *ret_who = (cf_kms_caller){.principal = c->p.sub, .request_id = cf_http_req_id(c->req)};
    return 0;
}

static int policy_from(const json_t *o, cf_kms_policy *p)
{
    uint64_t v = 0;

    memset(p, 0, sizeof(*p));
    if (json_object_get(o, "rotate_every") != NULL) {
        CF_GUARD(cf_json_get_u64(o, "rotate_every", true, CF_KMS_ROTATE_MAX_S, &v));
        p->set_rotate_every = true;
        p->rotate_every = v;
    }
    if (json_object_get(o, "min_decryption_version") != NULL) {
        CF_GUARD(cf_json_get_u64(o, "min_decryption_version", true, CF_KMS_MAX_KEY_VERSION, &v));
        p->set_min_decryption_version = true;
        p->min_decryption_version = (uint32_t)v;
    }
    return 0;
}

static int h_key_create(void *cls, const cf_http_req *req, cf_http_resp *resp)
{
    static const char *const keys[] = {"rotate_every", NULL};
    const char *tenant = NULL;
    cf_kms_caller who;
    cf_kms_tenant_info info;
    cf_kms_policy pol;
    json_t *o = NULL;
    call c;
    int rc;

    call_init(&c, cls, req, resp, "key.create");
    CF_GUARD(key_admin(&c, &tenant, &who));
    CF_GUARD(body_json(&c, CF_KMS_MAX_BODY, keys, true, &o));
    rc = policy_from(o, &pol);
    json_decref(o);
    if (rc < 0)
        return reject(&c, rc, tenant, 0);
    rc = cf_kms_keys_create(c.api->keys, &who, tenant, &pol, &info);
    if (rc < 0)
        return send_err(&c, rc, status_of(rc));
    return reply(&c, 201, tenant_json(&info));
}

static int h_key_rotate(void *cls, const cf_http_req *req, cf_http_resp *resp)
{
    static const char *const keys[] = {NULL};
    const char *tenant = NULL;
    cf_kms_caller who;
    uint32_t v = 0;
    json_t *o = NULL;
    call c;
    int rc;

    call_init(&c, cls, req, resp, "key.rotate");
    CF_GUARD(key_admin(&c, &tenant, &who));
    CF_GUARD(body_json(&c, CF_KMS_MAX_BODY, keys, true, &o));
    json_decref(o);
    rc = cf_kms_keys_rotate(c.api->keys, &who, tenant, &v);
    if (rc < 0)
        return send_err(&c, rc, status_of(rc));
    return reply(&c, 200, json_pack("{s:s,s:I}", "tenant", tenant, "current_version", (json_int_t)v));
}

static int h_key_policy(void *cls, const cf_http_req *req, cf_http_resp *resp)
{
    static const char *const keys[] = {"rotate_every", "min_decryption_version", NULL};
    const char *tenant = NULL;
    cf_kms_caller who;
    cf_kms_tenant_info info;
    cf_kms_policy pol;
    json_t *o = NULL;
    call c;
    int rc;

    call_init(&c, cls, req, resp, "key.policy");
    CF_GUARD(key_admin(&c, &tenant, &who));
    CF_GUARD(body_json(&c, CF_KMS_MAX_BODY, keys, false, &o));
    rc = policy_from(o, &pol);
    json_decref(o);
    if (rc < 0)
        return reject(&c, rc, tenant, 0);
    rc = cf_kms_keys_set_policy(c.api->keys, &who, tenant, &pol, &info);
    if (rc < 0)
        return send_err(&c, rc, status_of(rc));
    return reply(&c, 200, tenant_json(&info));
}

static int h_key_get(void *cls, const cf_http_req *req, cf_http_resp *resp)
{
    const char *tenant = NULL;
    cf_kms_caller who;
    cf_kms_tenant_info info;
    cf_kms_version_info *vs = NULL;
    size_t n = 0;
    json_t *v = NULL, *arr = NULL;
    call c;
    int rc;

    call_init(&c, cls, req, resp, "key.describe");
    CF_GUARD(key_admin(&c, &tenant, &who));
    rc = cf_kms_keys_describe(c.api->keys, &who, tenant, &info);
    if (rc < 0)
        return send_err(&c, rc, status_of(rc));
    vs = calloc(CF_KMS_MAX_LIST, sizeof(*vs));
    CF_ENSURE(vs != NULL, CF_E_NOMEM);
    rc = cf_kms_keys_list_versions(c.api->keys, &who, tenant, 0, vs, CF_KMS_MAX_LIST, &n);
    if (rc < 0) {
        free(vs);
        return send_err(&c, rc, status_of(rc));
    }
    v = tenant_json(&info);
    arr = json_array();
    for (size_t i = 0; v != NULL && arr != NULL && i < n; i++) {
        json_t *e = json_pack("{s:I,s:s,s:I}", "version", (json_int_t)vs[i].version, "state",
                              key_state_name(vs[i].state), "created_at", (json_int_t)vs[i].created_at);
        if (e != NULL && vs[i].revoked_at)
            (void)json_object_set_new(e, "revoked_at", json_integer(vs[i].revoked_at));
        if (e != NULL && vs[i].destroyed_at)
            (void)json_object_set_new(e, "destroyed_at", json_integer(vs[i].destroyed_at));
        if (e != NULL && vs[i].reason[0])
            (void)json_object_set_new(e, "reason", json_string(vs[i].reason));
        (void)json_array_append_new(arr, e);
    }
    free(vs);
    if (v != NULL && arr != NULL && json_object_set_new(v, "versions", arr) == 0)
        arr = NULL;
    json_decref(arr);
    return reply(&c, 200, v);
}

static int key_reason_op(void *cls, const cf_http_req *req, cf_http_resp *resp, const char *action)
{
    static const char *const keys[] = {"reason", NULL};
    const char *tenant = NULL, *reason = NULL, *vs = cf_http_req_param(req, "version");
    uint64_t version = 0;
    uint32_t cur = 0;
    cf_kms_caller who;
    json_t *o = NULL;
    call c;
    int rc;

    call_init(&c, cls, req, resp, action);
    CF_GUARD(key_admin(&c, &tenant, &who));
    CF_GUARD(body_json(&c, CF_KMS_MAX_BODY, keys, false, &o));
    rc = field(cf_json_get_str(o, "reason", true, CF_KMS_MAX_REASON, &reason));
    if (rc == 0 && vs != NULL && (cf_parse_u64(vs, CF_KMS_MAX_KEY_VERSION, &version) != 0 || version == 0))
        rc = cf_err_set(CF_E_INVAL, "key version must be 1-%u", (unsigned)CF_KMS_MAX_KEY_VERSION);
    if (rc < 0) {
        json_decref(o);
        return reject(&c, rc, tenant, 0);
    }
    if (strcmp(action, "key.revoke") == 0)
        rc = cf_kms_keys_revoke_version(c.api->keys, &who, tenant, (uint32_t)version, reason, &cur);
    else if (strcmp(action, "key.destroy") == 0)
        rc = cf_kms_keys_destroy_version(c.api->keys, &who, tenant, (uint32_t)version, reason, &cur);
    else
        rc = cf_kms_keys_revoke_tenant(c.api->keys, &who, tenant, reason);
    json_decref(o);
    if (rc < 0)
        return send_err(&c, rc, status_of(rc));
    if (vs == NULL)
        return reply(&c, 200, json_pack("{s:s,s:s}", "tenant", tenant, "state", "revoked"));
    return reply(&c, 200, json_pack("{s:s,s:I,s:s,s:I}", "tenant", tenant, "version",
                                     (json_int_t)version, "state",
                                     strcmp(action, "key.destroy") == 0 ? "destroyed" : "revoked",
                                     "current_version", (json_int_t)cur));
}

static int h_key_version_revoke(void *cls, const cf_http_req *req, cf_http_resp *resp)
{
    return key_reason_op(cls, req, resp, "key.revoke");
}

static int h_key_version_destroy(void *cls, const cf_http_req *req, cf_http_resp *resp)
{
    return key_reason_op(cls, req, resp, "key.destroy");
}

static int h_key_tenant_revoke(void *cls, const cf_http_req *req, cf_http_resp *resp)
{
    return key_reason_op(cls, req, resp, "key.revoke_tenant");
}

/* ---- data keys and small values ------------------------------------------------------------- */

typedef struct {
    cf_buf context;
    const char *tee_id;
    cf_kms_binding b;
} binding_in;

static void binding_init(binding_in *bi)
{
    memset(bi, 0, sizeof(*bi));
    cf_buf_init(&bi->context, CF_KMS_MAX_CONTEXT);
}

/* Optional "context" (base64url) and "tee_id"; the tenant is the caller's. */
static int binding_parse(const json_t *o, const cf_principal *p, binding_in *bi)
{
    CF_GUARD(b64_field(o, "context", false, CF_KMS_MAX_CONTEXT, false, &bi->context));
    CF_GUARD(field(cf_json_get_str(o, "tee_id", false, CF_ID_MAX_LEN, &bi->tee_id)));
    bi->b = (cf_kms_binding){.tenant = p->tenant, .tee_id = bi->tee_id,
                             .context = bi->context.len ? bi->context.data : NULL,
                             .context_len = bi->context.len};
    return 0;
}

/* Authenticates (datakey.use), parses the body (plus one optional value field). */
static int data_begin(call *c, const char *const *keys, size_t limit, json_t **ret_o,
                      binding_in *bi, cf_kms_caller *who)
{
    int rc;

    CF_GUARD(authenticate(c));
    CF_GUARD(authorize(c, CF_PERM_DATAKEY_USE, NULL));
    CF_GUARD(body_json(c, limit, keys, true, ret_o));
    rc = binding_parse(*ret_o, &c->p, bi);
    if (rc < 0) {
        json_decref(*ret_o);
        *ret_o = NULL;
        return reject(c, rc, c->p.tenant, 0);
    }
    *who = (cf_kms_caller){.principal = c->p.sub, .request_id = cf_http_req_id(c->req)};
    return 0;
}

static int h_datakey(void *cls, const cf_http_req *req, cf_http_resp *resp)
{
    static const char *const keys[] = {"context", "tee_id", "wrapped_only", NULL};
    cf_buf plain, wrapped;
    bool wrapped_only = false;
    cf_kms_caller who;
    binding_in bi;
    json_t *o = NULL;
    call c;
    int rc;

    call_init(&c, cls, req, resp, "datakey.generate");
    binding_init(&bi);
    cf_buf_init_secret(&plain, CF_KMS_KEY_LEN);
    cf_buf_init(&wrapped, CF_KMS_MAX_WRAPPED);
    rc = data_begin(&c, keys, CF_KMS_MAX_BODY, &o, &bi, &who);
    if (rc < 0)
        goto done;
    rc = cf_json_get_bool(o, "wrapped_only", false, &wrapped_only);
    if (rc < 0) {
        rc = reject(&c, rc, c.p.tenant, 0);
        goto done;
    }
    rc = cf_kms_keys_generate_data_key(c.api->keys, &who, &bi.b, wrapped_only ? NULL : &plain,
                                       &wrapped);
    if (rc < 0) {
        rc = send_err(&c, rc, status_of(rc));
        goto done;
    }
    rc = reply_secret(&c, 201, "wrapped", wrapped.data, wrapped.len,
                      wrapped_only ? NULL : "plaintext", plain.data, plain.len);
done:
    json_decref(o);
    cf_buf_free(&bi.context);
    cf_buf_free(&plain);
    cf_buf_free(&wrapped);
    return rc;
}

/* encrypt / decrypt / rewrap: one value in, one value out. */
static int data_op(void *cls, const cf_http_req *req, cf_http_resp *resp, const char *action)
{
    static const char *const enc_keys[] = {"plaintext", "context", "tee_id", NULL};
    static const char *const dec_keys[] = {"ciphertext", "context", "tee_id", NULL};
    bool encrypt = strcmp(action, "data.encrypt") == 0;
    bool decrypt = strcmp(action, "data.decrypt") == 0;
    const char *in_key = encrypt ? "plaintext" : "ciphertext";
    cf_buf in, out;
    cf_kms_caller who;
    binding_in bi;
    json_t *o = NULL;
    call c;
    int rc;

    call_init(&c, cls, req, resp, action);
    binding_init(&bi);
    /* Plaintext in and out lives in secret buffers (what jansson copied from
     * the request body is outside our control). */
    if (encrypt)
        cf_buf_init_secret(&in, CF_KMS_MAX_PLAINTEXT);
    else
        cf_buf_init(&in, CF_KMS_MAX_WRAPPED);
    if (decrypt)
        cf_buf_init_secret(&out, CF_KMS_MAX_PLAINTEXT);
    else
        cf_buf_init(&out, CF_KMS_MAX_WRAPPED);
    rc = data_begin(&c, encrypt ? enc_keys : dec_keys, CF_KMS_MAX_DATA_BODY, &o, &bi, &who);
    if (rc < 0)
        goto done;
    rc = b64_field(o, in_key, true, encrypt ? CF_KMS_MAX_PLAINTEXT : CF_KMS_MAX_WRAPPED, false, &in);
    if (rc < 0) {
        rc = reject(&c, rc, c.p.tenant, 0);
        goto done;
    }
    if (encrypt)
        rc = cf_kms_keys_encrypt(c.api->keys, &who, &bi.b, in.data, in.len, &out);
    else if (decrypt)
        rc = cf_kms_keys_decrypt(c.api->keys, &who, &bi.b, in.data, in.len, &out);
    else
        rc = cf_kms_keys_rewrap(c.api->keys, &who, &bi.b, in.data, in.len, &out);
    if (rc < 0) {
        rc = send_err(&c, rc, status_of(rc));
        goto done;
    }
    rc = reply_secret(&c, 200, decrypt ? "plaintext" : "ciphertext", out.data, out.len, NULL, NULL,
                      0);
done:
    json_decref(o);
    cf_buf_free(&bi.context);
    cf_buf_free(&in);
    cf_buf_free(&out);
    return rc;
}

static int h_encrypt(void *cls, const cf_http_req *req, cf_http_resp *resp)
{
    return data_op(cls, req, resp, "data.encrypt");
}

static int h_decrypt(void *cls, const cf_http_req *req, cf_http_resp *resp)
{
    return data_op(cls, req, resp, "data.decrypt");
}

static int h_rewrap(void *cls, const cf_http_req *req, cf_http_resp *resp)
{
    return data_op(cls, req, resp, "data.rewrap");
}

/* ---- wiring ------------------------------------------------------------------------------------- */

int cf_kms_svc_audit(void *arg, const cf_kms_who *who, const char *action, const char *tenant,
                     const char *resource, const char *outcome, json_t *details)
{
    cf_svc *svc = arg;
    const cf_http_req *req = who != NULL ? who->ctx : NULL;
    cf_principal tmp, *actor = NULL;
    const char *name = who != NULL && who->actor != NULL ? who->actor : (req == NULL ? "kms" : NULL);

    /* No actor and a request: cf_svc_audit names the mTLS peer or "anonymous". */
    if (name != NULL) {
        memset(&tmp, 0, sizeof(tmp));
        memcpy(tmp.sub, name, CF_MIN(strlen(name), sizeof(tmp.sub) - 1));
        actor = &tmp;
    }
    return cf_svc_audit(svc, req, actor, action, tenant, resource, outcome, details);
}

int cf_kms_http_routes(cf_kms_api *api)
{
    static const struct {
        const char *method, *pattern;
        cf_http_handler h;
        size_t limit;
    } routes[] = {
        {"GET", "/v1/kms/release-key", h_release_key, CF_KMS_MAX_BODY},
        {"POST", "/v1/kms/otk", h_otk_issue, CF_KMS_MAX_BODY},
        {"POST", "/v1/kms/otk/{id}/release", h_otk_release, CF_KMS_MAX_BODY},
        {"POST", "/v1/registry/join-tokens", h_join_token, CF_KMS_MAX_BODY},
        {"POST", "/v1/registry/nonce", h_nonce, CF_KMS_MAX_BODY},
        {"POST", "/v1/registry/tees", h_register, CF_KMS_MAX_BODY},
        {"GET", "/v1/registry/tees", h_tee_list, CF_KMS_MAX_BODY},
        {"GET", "/v1/registry/tees/{id}", h_tee_get, CF_KMS_MAX_BODY},
        {"POST", "/v1/registry/tees/{id}/quarantine", h_tee_quarantine, CF_KMS_MAX_BODY},
        {"POST", "/v1/registry/tees/{id}/revoke", h_tee_revoke, CF_KMS_MAX_BODY},
        {"POST", "/v1/registry/tees/{id}/attestations", h_tee_attest, CF_KMS_MAX_BODY},
        {"POST", "/v1/kms/keys/{tenant}", h_key_create, CF_KMS_MAX_BODY},
        {"GET", "/v1/kms/keys/{tenant}", h_key_get, CF_KMS_MAX_BODY},
        {"POST", "/v1/kms/keys/{tenant}/rotate", h_key_rotate, CF_KMS_MAX_BODY},
        {"POST", "/v1/kms/keys/{tenant}/policy", h_key_policy, CF_KMS_MAX_BODY},
        {"POST", "/v1/kms/keys/{tenant}/revoke", h_key_tenant_revoke, CF_KMS_MAX_BODY},
        {"POST", "/v1/kms/keys/{tenant}/versions/{version}/revoke", h_key_version_revoke,
         CF_KMS_MAX_BODY},
        {"POST", "/v1/kms/keys/{tenant}/versions/{version}/destroy", h_key_version_destroy,
         CF_KMS_MAX_BODY},
        {"POST", "/v1/kms/datakeys", h_datakey, CF_KMS_MAX_BODY},
        {"POST", "/v1/kms/encrypt", h_encrypt, CF_KMS_MAX_DATA_BODY},
        {"POST", "/v1/kms/decrypt", h_decrypt, CF_KMS_MAX_DATA_BODY},
        {"POST", "/v1/kms/rewrap", h_rewrap, CF_KMS_MAX_DATA_BODY},
    };
    cf_http_server *srv;

    CF_ENSURE(api != NULL && api->kms != NULL && api->keys != NULL && api->svc != NULL, CF_E_INVAL);
    srv = cf_svc_http(api->svc);
    for (size_t i = 0; i < CF_ARRAY_LEN(routes); i++) {
        /* The server's cap is 4x the endpoint's limit: a body somewhat over the
         * limit still reaches the handler and gets an audited 413; beyond that
         * the HTTP layer answers 413 itself (logged, not audited). */
        CF_GUARD(cf_http_server_route(srv, routes[i].method, routes[i].pattern, routes[i].h, api,
                                      4 * routes[i].limit));
    }
    return 0;
}
