/*
 * HTTP API of the audit service (docs/internals/audit-service.md "API").
 *
 *   POST /v1/audit/events                  services only (mTLS: spiffe://coffer/<kms|iam|gateway|attest|tee>)
 *   GET  /v1/audit/sth[?fresh=1]           audit.read
 *   GET  /v1/audit/sth/{size}              audit.read
 *   GET  /v1/audit/sths?after=&limit=      audit.read
 *   GET  /v1/audit/proof/inclusion?seq=&tree_size=       audit.read
 *   GET  /v1/audit/proof/consistency?first=&second=      audit.read
 *   GET  /v1/audit/entries?tenant=&action=&tee_id=&since=&until=&after=&limit=&tree_size=
 *                                          audit.read, scoped to the caller's tenant
 *   GET  /v1/audit/entries/{seq}[?tree_size=]            audit.read, scoped
 *   GET  /v1/audit/public-key              public: the tree-head key
 *   GET  /healthz, /readyz
 *
 * Scoping (DESIGN.md §6 "entries (scoped by role and tenant)"): a principal of
 * the platform tenant with audit.read (platform admins, platform auditors)
 * sees every entry; any other principal with audit.read (a tenant admin or
 * auditor) sees only entries of its own tenant, whatever it asks for: naming
 * another tenant is 403 (cf_authz_check). Tree heads and proofs carry hashes
 * and sizes only, never entry contents: they need audit.read but are not
 * scoped. Reads of entries and every refusal are themselves audited.
 */
#include <stdlib.h>
#include <string.h>

#include "audit/auditsvc.h"
#include "audit/wire.h"
#include "base/err.h"
#include "base/json.h"
#include "base/log.h"
#include "base/parse.h"
#include "crypto/jose.h"
#include "proto/authz.h"

#define SPIFFE_PREFIX "spiffe://coffer/"
#define A_APPEND "audit.events.append"
#define A_ENTRIES "audit.entries.read"
#define A_STH "audit.sth.read"
#define A_PROOF "audit.proof.read"

/* The services that may append (their events must name themselves). */
static const char *const appenders[] = {"kms", "iam", "gateway", "attest", "tee", NULL};

/* ---- helpers ---------------------------------------------------------------------------- */

static int reply(cf_http_resp *resp, int status, json_t *v)
{
    int rc;

    if (v == NULL)
        return CF_E_NOMEM;
    rc = cf_http_resp_json(resp, status, v);
    json_decref(v);
    return rc;
}

static int set_new(json_t *o, const char *key, json_t *v)
{
    if (o == NULL || v == NULL || json_object_set_new(o, key, v) != 0) {
        json_decref(v);
        return CF_E_NOMEM;
    }
    return 0;
}

static int parse_query(const cf_http_req *req, cf_http_query *q)
{
    const char *qs = cf_http_req_query_string(req);

    return cf_http_query_parse(qs, strlen(qs), q);
}

/* Records a refused or failed request (fail closed does not apply: it is
 * refused anyway) and returns rc with its detail intact. The detail is made
 * printable ASCII: an event the log would refuse would block the forwarder. */
static int refuse(cf_auditsvc *a, const cf_http_req *req, const cf_principal *p, const char *action,
                  const char *tenant, int rc)
{
    char detail[256];
    const char *d = cf_err_detail(rc);
    const char *outcome = (rc == CF_E_UNAUTHENTICATED || rc == CF_E_EXPIRED || rc == CF_E_FORBIDDEN ||
                           rc == CF_E_NOT_YET_VALID)
                              ? "denied"
                              : "failure";
    size_t i;

    for (i = 0; i + 1 < sizeof(detail) && d[i] != '\0'; i++)
        detail[i] = (d[i] >= 0x20 && d[i] < 0x7f) ? d[i] : '?';
    detail[i] = '\0';
    if (cf_auditsvc_svc(a) != NULL &&
        cf_svc_audit(cf_auditsvc_svc(a), req, p, action, tenant, NULL, outcome,
                     json_pack("{s:s,s:s}", "error", cf_err_name(rc), "reason", detail)) != 0)
        cf_log(CF_LOG_ERROR, "audit.own_event_lost", "action", action, NULL);
    return cf_err_set(rc, "%s", detail);
}

/* audit.read; *ret_scope: NULL for the platform (every tenant), else the
 * caller's own tenant (borrowed from *p). tenant: the tenant the request
 * names, if any (another one than the caller's is 403 for a tenant principal). */
static int authorize_read(cf_auditsvc *a, const cf_http_req *req, const char *action, const char *tenant,
                          cf_principal *p, const char **ret_scope)
{
    int rc;

    CF_ENSURE(cf_auditsvc_svc(a) != NULL, CF_E_UNAVAILABLE);
    rc = cf_svc_authorize(cf_auditsvc_svc(a), req, CF_PERM_AUDIT_READ, tenant, p);
    if (rc != 0)
        return refuse(a, req, NULL, action, tenant, rc);
    *ret_scope = cf_principal_is_platform(p) ? NULL : p->tenant;
    return 0;
}

static int path_u64(const cf_http_req *req, const char *name, uint64_t max, uint64_t *ret)
{
    const char *v = cf_http_req_param(req, name);

    if (v == NULL || cf_parse_u64(v, max, ret) != 0)
        return cf_err_set(CF_E_PARSE, "path parameter '%s' must be an integer 0..%llu", name,
                          (unsigned long long)max);
    return 0;
}

/* tree_size must not exceed the log: a proof for a tree that does not exist yet. */
static int check_tree_size(cf_audit_log *log, uint64_t tree_size)
{
    uint64_t size = 0;

    CF_GUARD(cf_audit_tree_size(log, &size));
    if (tree_size > size)
        return cf_err_set(CF_E_RANGE, "tree_size %llu exceeds the log size %llu", (unsigned long long)tree_size,
                          (unsigned long long)size);
    return 0;
}

/* ---- append ---------------------------------------------------------------------------------- */

static int h_append(void *cls, const cf_http_req *req, cf_http_resp *resp)
{
    cf_auditsvc *a = cls;
    cf_auditsvc_handle h = {NULL, NULL};
    cf_audit_event **evs = NULL;
    cf_audit_append_result res;
    const char *peer, *name;
    const uint8_t *body;
    size_t n = 0, len = 0;
    int rc;

    rc = cf_svc_require_peer(req, appenders);
    if (rc != 0)
        return refuse(a, req, NULL, A_APPEND, NULL, rc);
    /* A service appends under its own identity and sends no token; a request
     * with one is a client's request relayed by a proxy (the gateway), which
     * must not lend its identity to it (a confused deputy). */
    if (cf_http_req_header(req, "Authorization") != NULL)
        return refuse(a, req, NULL, A_APPEND, NULL,
                      cf_err_set(CF_E_FORBIDDEN, "audit events are appended by services under their own identity: "
                                                 "a request carrying an access token (a relayed client request) is "
                                                 "refused"));
    CF_GUARD(cf_http_require_content_type(req, resp, "application/json"));
    peer = cf_http_req_peer_id(req);
    name = peer + strlen(SPIFFE_PREFIX); /* cf_svc_require_peer matched the prefix */
    body = cf_http_req_body(req, &len);
    CF_GUARD(cf_audit_batch_parse(body, len, &evs, &n));
    /* A service writes its own events only: a compromised KMS cannot put
     * words in IAM's mouth. */
    for (size_t i = 0; i < n; i++)
        if (strcmp(evs[i]->service, name) != 0) {
            rc = cf_err_set(CF_E_FORBIDDEN, "event %zu (%s) names service '%.64s' but the caller is %s", i,
                            evs[i]->event_id, evs[i]->service, peer);
            rc = refuse(a, req, NULL, A_APPEND, NULL, rc);
            goto out;
        }
    CF_GUARD_OUT(cf_auditsvc_get(a, &h));
    rc = cf_audit_append(h.log, evs, n, &res);
    cf_auditsvc_put(a, &h, rc);
    CF_GUARD_OUT(rc);
    rc = reply(resp, 200,
               json_pack("{s:I,s:I,s:I}", "accepted", (json_int_t)n, "new", (json_int_t)res.added, "tree_size",
                         (json_int_t)res.tree_size));
out:
    cf_audit_events_free(evs, n);
    return rc;
}

/* ---- tree heads --------------------------------------------------------------------------------- */

static int sth_reply(cf_http_resp *resp, const cf_audit_sth *sth)
{
    json_t *j = NULL;

    CF_GUARD(cf_audit_sth_to_json(sth, &j));
    return reply(resp, 200, j);
}

static int h_sth(void *cls, const cf_http_req *req, cf_http_resp *resp)
{
    cf_auditsvc *a = cls;
    cf_auditsvc_handle h = {NULL, NULL};
    cf_http_query q;
    cf_principal p;
    cf_audit_sth sth;
    const char *scope = NULL;
    bool fresh = false, made = false;
    int rc;

    CF_GUARD(parse_query(req, &q));
    CF_GUARD(cf_auditsvc_q_sth(&q, &fresh));
    CF_GUARD(authorize_read(a, req, A_STH, NULL, &p, &scope));
    CF_GUARD(cf_auditsvc_get(a, &h));
    rc = fresh ? CF_E_NOT_FOUND : cf_audit_sth_latest(h.log, &sth);
    if (rc == CF_E_NOT_FOUND)
        rc = cf_auditsvc_sth_refresh(a, h.log, &sth, &made);
    cf_auditsvc_put(a, &h, rc);
    CF_GUARD(rc);
    return sth_reply(resp, &sth);
}

static int h_sth_size(void *cls, const cf_http_req *req, cf_http_resp *resp)
{
    cf_auditsvc *a = cls;
    cf_auditsvc_handle h = {NULL, NULL};
    cf_store_rows *r = NULL;
    cf_principal p;
    cf_audit_sth sth;
    const char *scope = NULL;
    uint64_t size = 0;
    int64_t id = 0;
    int rc;

    CF_GUARD(path_u64(req, "size", CF_MERKLE_MAX_SIZE, &size));
    CF_GUARD(authorize_read(a, req, A_STH, NULL, &p, &scope));
    CF_GUARD(cf_auditsvc_get(a, &h));
    /* The first head of that size (the service signs a size once unless asked
     * for a fresh head of an unchanged tree, which it does not sign again). */
    rc = cf_store_query_row(h.store, "SELECT id FROM audit_sth WHERE tree_size = ? ORDER BY id LIMIT 1",
                            CF_STORE_ARGS(cf_sv_int((int64_t)size)), &r);
    if (rc == 0)
        rc = cf_store_col_i64(r, 0, &id);
    cf_store_rows_close(r);
    if (rc == 0)
        rc = cf_audit_sth_get(h.log, id, &sth);
    cf_auditsvc_put(a, &h, rc);
    if (rc == CF_E_NOT_FOUND)
        return cf_err_set(rc, "no tree head of size %llu", (unsigned long long)size);
    CF_GUARD(rc);
    return sth_reply(resp, &sth);
}

static int h_sths(void *cls, const cf_http_req *req, cf_http_resp *resp)
{
    cf_auditsvc *a = cls;
    cf_auditsvc_handle h = {NULL, NULL};
    cf_http_query q;
    cf_principal p;
    cf_audit_sth *list = NULL;
    const char *scope = NULL;
    json_t *o = NULL, *arr = NULL;
    int64_t after = 0;
    size_t limit = 0, n = 0;
    bool more = false;
    int rc;

    CF_GUARD(parse_query(req, &q));
    CF_GUARD(cf_auditsvc_q_sths(&q, &after, &limit));
    CF_GUARD(authorize_read(a, req, A_STH, NULL, &p, &scope));
    CF_GUARD(cf_auditsvc_get(a, &h));
    rc = cf_audit_sth_list(h.log, after, limit, &list, &n, &more);
    cf_auditsvc_put(a, &h, rc);
    CF_GUARD(rc);
    arr = json_array();
    CF_ENSURE_OUT(arr != NULL, CF_E_NOMEM);
    for (size_t i = 0; i < n; i++) {
        json_t *j = NULL;
        CF_GUARD_OUT(cf_audit_sth_to_json(&list[i], &j));
        CF_ENSURE_OUT(json_array_append_new(arr, j) == 0, CF_E_NOMEM);
    }
    o = json_object();
    CF_GUARD_OUT(set_new(o, "sths", arr));
    arr = NULL;
    CF_GUARD_OUT(set_new(o, "more", json_boolean(more)));
    rc = reply(resp, 200, o);
    o = NULL;
out:
    json_decref(arr);
    json_decref(o);
    free(list);
    return rc;
}

/* ---- proofs ---------------------------------------------------------------------------------------- */

static int h_inclusion(void *cls, const cf_http_req *req, cf_http_resp *resp)
{
    cf_auditsvc *a = cls;
    cf_auditsvc_handle h = {NULL, NULL};
    cf_merkle_proof pr;
    cf_http_query q;
    cf_principal p;
    const char *scope = NULL;
    uint64_t seq = 0, size = 0;
    json_t *arr = NULL;
    int rc;

    CF_GUARD(parse_query(req, &q));
    CF_GUARD(cf_auditsvc_q_inclusion(&q, &seq, &size));
    CF_GUARD(authorize_read(a, req, A_PROOF, NULL, &p, &scope));
    CF_GUARD(cf_auditsvc_get(a, &h));
    rc = check_tree_size(h.log, size);
    if (rc == 0)
        rc = cf_audit_inclusion_proof(h.log, seq, size, &pr);
    cf_auditsvc_put(a, &h, rc);
    CF_GUARD(rc);
    CF_GUARD(cf_audit_proof_to_json(&pr, &arr));
    return reply(resp, 200,
                 json_pack("{s:I,s:I,s:o}", "seq", (json_int_t)seq, "tree_size", (json_int_t)size, "proof", arr));
}

static int h_consistency(void *cls, const cf_http_req *req, cf_http_resp *resp)
{
    cf_auditsvc *a = cls;
    cf_auditsvc_handle h = {NULL, NULL};
    cf_merkle_proof pr;
    cf_http_query q;
    cf_principal p;
    const char *scope = NULL;
    uint64_t m = 0, n = 0;
    json_t *arr = NULL;
    int rc;

    CF_GUARD(parse_query(req, &q));
    CF_GUARD(cf_auditsvc_q_consistency(&q, &m, &n));
    CF_GUARD(authorize_read(a, req, A_PROOF, NULL, &p, &scope));
    CF_GUARD(cf_auditsvc_get(a, &h));
    rc = check_tree_size(h.log, n);
    if (rc == 0)
        rc = cf_audit_consistency_proof(h.log, m, n, &pr);
    cf_auditsvc_put(a, &h, rc);
    CF_GUARD(rc);
    CF_GUARD(cf_audit_proof_to_json(&pr, &arr));
    return reply(resp, 200,
                 json_pack("{s:I,s:I,s:o}", "first", (json_int_t)m, "second", (json_int_t)n, "proof", arr));
}

/* ---- entries ----------------------------------------------------------------------------------------- */

/* Records a successful read; an unrecordable read is refused (DESIGN.md §2 rule 6). */
static int audit_read(cf_auditsvc *a, const cf_http_req *req, const cf_principal *p, const char *tenant,
                      json_t *details)
{
    int rc = cf_svc_audit(cf_auditsvc_svc(a), req, p, A_ENTRIES, tenant, NULL, "success", details);

    if (rc != 0)
        return cf_err_set(CF_E_UNAVAILABLE, "audit log unavailable: read refused");
    return 0;
}

static int h_entries(void *cls, const cf_http_req *req, cf_http_resp *resp)
{
    cf_auditsvc *a = cls;
    cf_auditsvc_handle h = {NULL, NULL};
    cf_auditsvc_entries_q eq;
    cf_audit_query aq;
    cf_audit_page page = {NULL, 0, false};
    cf_http_query q;
    cf_principal p;
    const char *scope = NULL;
    json_t *arr = NULL, *o = NULL;
    size_t used = 0, shown = 0;
    bool cut = false;
    int rc;

    CF_GUARD(parse_query(req, &q));
    CF_GUARD(cf_auditsvc_q_entries(&q, &eq));
    CF_GUARD(authorize_read(a, req, A_ENTRIES, eq.tenant, &p, &scope));
    memset(&aq, 0, sizeof(aq));
    aq.scope_tenant = scope;
    aq.tenant = eq.tenant;
    aq.action = eq.action;
    aq.tee_id = eq.tee_id;
    aq.has_from = eq.has_since;
    aq.from_ms = eq.since_ms;
    aq.has_to = eq.has_until;
    aq.to_ms = eq.until_ms;
    aq.has_after = eq.has_after;
    aq.after = eq.after;
    aq.limit = eq.limit;
    arr = json_array();
    CF_ENSURE(arr != NULL, CF_E_NOMEM);
    CF_GUARD_OUT(cf_auditsvc_get(a, &h));
    if (eq.has_tree_size)
        CF_GUARD_OUT(check_tree_size(h.log, eq.tree_size));
    CF_GUARD_OUT(cf_audit_query_entries(h.log, &aq, &page));
    for (size_t i = 0; i < page.n; i++) {
        const cf_audit_entry *e = &page.items[i];
        bool with_proof = eq.has_tree_size && e->seq < eq.tree_size;
        cf_merkle_proof pr;
        size_t bound;
        json_t *j = NULL;

        pr.len = 0;
        if (with_proof) {
            rc = cf_audit_inclusion_proof(h.log, e->seq, eq.tree_size, &pr);
            if (rc != 0) {
                uint64_t size = 0;
                /* A hash the proof needs is missing or malformed (the store was
                 * damaged behind the log's back) if the store itself still
                 * answers: the entry goes out without a proof, and the verifier
                 * says what that leaves unproven. Otherwise the request fails. */
                int alive = cf_audit_tree_size(h.log, &size);
                if (rc != CF_E_STORE || alive != 0)
                    goto out;
                cf_log(CF_LOG_ERROR, "audit.proof_unavailable", "reason", cf_err_detail(rc), NULL);
                with_proof = false;
                pr.len = 0;
            }
        }
        bound = cf_auditsvc_entry_json_bound(e, pr.len);
        /* A page stays below the gateway's response cap: it ends early (with
         * "more") rather than fail; one entry always fits. */
        if (shown > 0 && used + bound > CF_AUDITSVC_MAX_PAGE_BYTES) {
            cut = true;
            break;
        }
        CF_GUARD_OUT(cf_auditsvc_entry_to_json(e, with_proof ? &pr : NULL, &j));
        CF_ENSURE_OUT(json_array_append_new(arr, j) == 0, CF_E_NOMEM);
        used += bound;
        shown++;
    }
    cf_auditsvc_put(a, &h, 0);
    CF_GUARD_OUT(audit_read(a, req, &p, eq.tenant != NULL ? eq.tenant : p.tenant,
                            json_pack("{s:I}", "count", (json_int_t)shown)));
    o = json_object();
    CF_GUARD_OUT(set_new(o, "entries", arr));
    arr = NULL;
    CF_GUARD_OUT(set_new(o, "more", json_boolean(page.more || cut)));
    if (shown > 0)
        CF_GUARD_OUT(set_new(o, "next", json_integer((json_int_t)page.items[shown - 1].seq)));
    CF_GUARD_OUT(set_new(o, "scope", json_string(scope == NULL ? "all" : "tenant")));
    if (scope != NULL)
        CF_GUARD_OUT(set_new(o, "tenant", json_string(scope)));
    rc = reply(resp, 200, o);
    o = NULL;
out:
    cf_auditsvc_put(a, &h, rc);
    cf_audit_page_free(&page);
    json_decref(arr);
    json_decref(o);
    return rc;
}

static int h_entry(void *cls, const cf_http_req *req, cf_http_resp *resp)
{
    cf_auditsvc *a = cls;
    cf_auditsvc_handle h = {NULL, NULL};
    cf_audit_entry e;
    cf_merkle_proof pr;
    cf_http_query q;
    cf_principal p;
    const char *scope = NULL;
    uint64_t seq = 0, size = 0;
    bool has_size = false;
    json_t *j = NULL;
    int rc;

    memset(&e, 0, sizeof(e));
    CF_GUARD(path_u64(req, "seq", CF_MERKLE_MAX_SIZE - 1, &seq));
    CF_GUARD(parse_query(req, &q));
    CF_GUARD(cf_auditsvc_q_entry(&q, &has_size, &size));
    if (has_size && seq >= size)
        return cf_err_set(CF_E_RANGE, "entry %llu is not in a tree of %llu entries", (unsigned long long)seq,
                          (unsigned long long)size);
    CF_GUARD(authorize_read(a, req, A_ENTRIES, NULL, &p, &scope));
    CF_GUARD(cf_auditsvc_get(a, &h));
    rc = cf_audit_get_entry(h.log, seq, &e);
    if (rc == 0 && has_size) {
        rc = check_tree_size(h.log, size);
        if (rc == 0)
            rc = cf_audit_inclusion_proof(h.log, seq, size, &pr);
    }
    cf_auditsvc_put(a, &h, rc);
    if (rc == CF_E_NOT_FOUND)
        return cf_err_set(rc, "no entry %llu", (unsigned long long)seq);
    CF_GUARD(rc);
    if (scope != NULL && strcmp(e.tenant, scope) != 0) {
        rc = refuse(a, req, &p, A_ENTRIES, p.tenant,
                    cf_err_set(CF_E_FORBIDDEN, "entry %llu is outside tenant %s's scope", (unsigned long long)seq,
                               scope));
        goto out;
    }
    CF_GUARD_OUT(audit_read(a, req, &p, e.tenant[0] != '\0' ? e.tenant : p.tenant,
                            json_pack("{s:I}", "seq", (json_int_t)seq)));
    CF_GUARD_OUT(cf_auditsvc_entry_to_json(&e, has_size ? &pr : NULL, &j));
    rc = reply(resp, 200, j);
out:
    cf_audit_entry_clear(&e);
    return rc;
}

/* ---- key, health ------------------------------------------------------------------------------------------- */

static int h_public_key(void *cls, const cf_http_req *req, cf_http_resp *resp)
{
    cf_auditsvc *a = cls;
    uint8_t pub[CF_ED25519_LEN];
    char b64[64];
    size_t n = 0;
    json_t *jwk = NULL;

    (void)req;
    CF_GUARD(cf_key_export_public(cf_auditsvc_public_key(a), pub, sizeof(pub), &n));
    CF_ENSURE(n == sizeof(pub), CF_E_INTERNAL);
    cf_b64url_encode(pub, n, b64);
    CF_GUARD(cf_jwk_to_json(cf_auditsvc_public_key(a), cf_auditsvc_key_id(a), &jwk));
    return reply(resp, 200,
                 json_pack("{s:s,s:s,s:s,s:o}", "alg", "EdDSA", "key_id", cf_auditsvc_key_id(a), "public_key", b64,
                           "jwk", jwk));
}

static int h_healthz(void *cls, const cf_http_req *req, cf_http_resp *resp)
{
    (void)cls;
    (void)req;
    return reply(resp, 200, json_pack("{s:s}", "status", "ok"));
}

static int h_readyz(void *cls, const cf_http_req *req, cf_http_resp *resp)
{
    cf_auditsvc *a = cls;
    cf_auditsvc_handle h = {NULL, NULL};
    uint64_t size = 0;
    int rc;

    (void)req;
    rc = cf_auditsvc_get(a, &h);
    if (rc == 0)
        rc = cf_audit_tree_size(h.log, &size);
    cf_auditsvc_put(a, &h, rc);
    if (rc != 0)
        return cf_http_resp_error(resp, CF_E_UNAVAILABLE, "not ready: the audit store is unavailable");
    return reply(resp, 200, json_pack("{s:s,s:I}", "status", "ready", "tree_size", (json_int_t)size));
}

int cf_auditsvc_routes(cf_auditsvc *a, cf_http_server *http)
{
    static const struct {
        const char *method, *pattern;
        cf_http_handler h;
        size_t max_body;
    } routes[] = {
        {"POST", "/v1/audit/events", h_append, CF_AUDIT_MAX_BATCH_BYTES},
        {"GET", "/v1/audit/sth", h_sth, 0},
        {"GET", "/v1/audit/sth/{size}", h_sth_size, 0},
        {"GET", "/v1/audit/sths", h_sths, 0},
        {"GET", "/v1/audit/proof/inclusion", h_inclusion, 0},
        {"GET", "/v1/audit/proof/consistency", h_consistency, 0},
        {"GET", "/v1/audit/entries", h_entries, 0},
        {"GET", "/v1/audit/entries/{seq}", h_entry, 0},
        {"GET", "/v1/audit/public-key", h_public_key, 0},
        {"GET", "/healthz", h_healthz, 0},
        {"GET", "/readyz", h_readyz, 0},
    };

    for (size_t i = 0; i < CF_ARRAY_LEN(routes); i++)
        CF_GUARD(cf_http_server_route(http, routes[i].method, routes[i].pattern, routes[i].h, a,
                                      routes[i].max_body));
    return 0;
}
