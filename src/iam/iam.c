/*
 * IAM core: store, audit runner, tenants, principals, API keys, client keys,
 * token exchange and bootstrap. See iam.h for the contract and
 * docs/internals/iam.md for the model. Signing keys live in signing.c.
 */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/err.h"
#include "base/json.h"
#include "base/log.h"
#include "base/parse.h"
#include "base/secmem.h"
#include "crypto/hash.h"
#include "iam/iam_int.h"
#include "spool/spool.h"

/* ---- time, store pool, internal actor --------------------------------------- */

int64_t iam_now(const cf_iam *iam)
{
    return iam->clock != NULL ? iam->clock(iam->clock_arg) : (int64_t)time(NULL);
}

int iam_store_get(cf_iam *iam, cf_store **ret)
{
    cf_store *s = NULL;

    pthread_mutex_lock(&iam->pool_mu);
    if (iam->nidle > 0)
        s = iam->idle[--iam->nidle];
    pthread_mutex_unlock(&iam->pool_mu);
    if (s == NULL)
        CF_GUARD(cf_store_open(iam->dsn, &s));
    *ret = s;
    return 0;
}

void iam_store_put(cf_iam *iam, cf_store *s)
{
    if (s == NULL)
        return;
    cf_store_rollback(s); /* no-op unless a transaction was left open */
    pthread_mutex_lock(&iam->pool_mu);
    if (iam->nidle < CF_IAM_STORE_POOL) {
        iam->idle[iam->nidle++] = s;
        s = NULL;
    }
    pthread_mutex_unlock(&iam->pool_mu);
    cf_store_close(s);
}

const cf_principal *iam_internal_actor(void)
{
    static const cf_principal internal = {.tenant = CF_PLATFORM_TENANT, .sub = "iam", .kind = "service"};
    return &internal;
}

static int col_i64_or0(cf_store_rows *r, int col, int64_t *ret)
{
    bool null;

    CF_GUARD(cf_store_col_is_null(r, col, &null));
    if (null) {
        *ret = 0;
        return 0;
    }
    return cf_store_col_i64(r, col, ret);
}

static void random_id(const char *prefix, char *out, size_t size)
{
    uint8_t raw[8];
    char hex[17];

    if (cf_random(raw, sizeof(raw)) != 0 || cf_fmt(out, size, "%s", prefix) != 0) {
        out[0] = '\0';
        return;
    }
    cf_hex_encode(raw, sizeof(raw), hex);
    if (cf_fmt(out, size, "%s%s", prefix, hex) != 0)
        out[0] = '\0';
}

/* ---- audit -------------------------------------------------------------------- */

/* Error text for an event: printable ASCII only, whatever a lower layer wrote. */
static void detail_copy(int rc, char *out, size_t size)
{
    const char *d = cf_err_detail(rc);
    size_t i;

    for (i = 0; i + 1 < size && d[i] != '\0'; i++)
        out[i] = (d[i] >= 0x20 && d[i] < 0x7f) ? d[i] : '?';
    out[i] = '\0';
}

int iam_audit(cf_iam_audit_fn fn, void *arg, const cf_iam_caller *who, const cf_principal *actor,
              const char *action, const char *tenant, const char *resource, bool success,
              json_t *details)
{
    int rc;

    if (actor == NULL && who != NULL)
        actor = who->actor;
    rc = fn(arg, who != NULL ? who->ctx : NULL, actor, action,
            tenant != NULL && tenant[0] != '\0' ? tenant : NULL,
            resource != NULL && resource[0] != '\0' ? resource : NULL, success ? "success" : "failure",
            details);
    if (rc < 0) {
        cf_log(CF_LOG_ERROR, "iam.audit_failed", "action", action, NULL);
        return cf_err_set(CF_E_UNAVAILABLE, "audit log unavailable: operation refused");
    }
    return 0;
}

int iam_audit_failure(cf_iam_audit_fn fn, void *arg, const cf_iam_caller *who, const char *action,
                      const char *tenant, const char *resource, int rc, json_t *details)
{
    char detail[IAM_DETAIL_MAX];

    detail_copy(rc, detail, sizeof(detail));
    if (details == NULL)
        details = json_object();
    if (details != NULL) {
        json_object_set_new(details, "error", json_string(cf_err_name(rc)));
        json_object_set_new(details, "reason", json_string(detail));
    }
    /* The operation fails anyway; its own error is what the caller needs. */
    if (iam_audit(fn, arg, who, NULL, action, cf_iam_id_ok(tenant) ? tenant : NULL, resource, false,
                  details) < 0)
        cf_log(CF_LOG_ERROR, "iam.audit_failure_lost", "action", action, NULL);
    return cf_err_set(rc, "%s", detail);
}

int cf_iam_spool_audit(void *arg, const void *ctx, const cf_principal *actor, const char *action,
                       const char *tenant, const char *resource, const char *outcome, json_t *details)
{
    json_t *ev = json_pack("{s:s,s:s,s:s,s:s}", "service", "iam", "action", action, "outcome", outcome, "actor",
                           actor != NULL ? actor->sub : "anonymous");
    int rc = CF_E_NOMEM;

    (void)ctx;
    if (arg == NULL || ev == NULL)
        goto out;
    if ((tenant != NULL && json_object_set_new(ev, "tenant", json_string(tenant)) != 0) ||
        (resource != NULL && json_object_set_new(ev, "resource", json_string(resource)) != 0) ||
        (details != NULL && json_object_set(ev, "details", details) != 0))
        goto out;
    rc = cf_spool_append(arg, ev, NULL);
out:
    json_decref(ev);
    json_decref(details);
    return rc;
}

void iam_op_set_tenant(iam_op *op, const char *tenant)
{
    if (cf_iam_id_ok(tenant))
        memcpy(op->tenant, tenant, strlen(tenant) + 1);
}

void iam_op_set_resource(iam_op *op, const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(op->resource, sizeof(op->resource), fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof(op->resource))
        op->resource[0] = '\0';
}

static json_t *op_details(iam_op *op)
{
    if (op->details == NULL)
        op->details = json_object();
    return op->details;
}

void iam_op_detail_str(iam_op *op, const char *key, const char *val)
{
    json_t *d = op_details(op);

    if (d != NULL && val != NULL)
        json_object_set_new(d, key, json_string(val));
}

void iam_op_detail_int(iam_op *op, const char *key, int64_t val)
{
    json_t *d = op_details(op);

    if (d != NULL)
        json_object_set_new(d, key, json_integer(val));
}

/* ---- the runner ----------------------------------------------------------------
 * Order inside the transaction: the operation's statements, then the success
 * event (durable), then commit. No change is committed without its event; if
 * a commit fails after the event was appended, a failure event follows (before
 * the retry of the whole transaction, or before the error is returned). */

static int run_tx(cf_store *s, void *arg)
{
    iam_op *op = arg;
    const cf_principal *actor = op->event_actor;
    int rc;

    if (op->pending) {
        json_t *d = json_pack("{s:s,s:s}", "error", "unavailable", "reason",
                              "store commit failed after the event was recorded; operation retried");
        CF_GUARD(iam_audit(op->audit, op->audit_arg, op->who, actor, op->action, op->tenant, op->resource,
                           false, d));
        op->pending = false;
    }
    json_decref(op->details);
    op->details = NULL;
    op->no_event = false;
    op->event_actor = NULL;
    CF_GUARD(op->body(s, op));
    if (op->no_event)
        return 0;
    rc = iam_audit(op->audit, op->audit_arg, op->who, op->event_actor, op->action, op->tenant,
                   op->resource, true, op->details);
    op->details = NULL;
    CF_GUARD(rc);
    op->pending = true;
    return 0;
}

/* Runs op in one transaction on s. Does not audit a failure: see run_audited. */
int iam_run(iam_op *op, cf_store *s)
{
    int rc;

    op->pending = false;
    rc = cf_store_tx(s, run_tx, op);
    json_decref(op->details);
    op->details = NULL;
    return rc;
}

/* Runs op on a pooled handle; a failure (including rc0 from argument checks,
 * which skips the store) is audited. */
int iam_run_audited(iam_op *op, int rc0)
{
    cf_store *s = NULL;
    int rc = rc0;

    op->audit = op->iam->audit;
    op->audit_arg = op->iam->audit_arg;
    if (op->now == 0)
        op->now = iam_now(op->iam);
    if (rc == 0)
        rc = iam_store_get(op->iam, &s);
    if (rc == 0)
        rc = iam_run(op, s);
    iam_store_put(op->iam, s);
    if (rc == 0)
        return 0;
    return iam_audit_failure(op->audit, op->audit_arg, op->who, op->action, op->tenant, op->resource, rc,
                             op->pending ? json_pack("{s:b}", "uncommitted_success_event", 1) : NULL);
}

/* ---- schema --------------------------------------------------------------------- */

static const cf_store_migration iam_migrations[] = {
    {1, "tenants, principals, API keys, client keys, signing keys",
     "CREATE TABLE iam_tenant ("
     " id TEXT PRIMARY KEY,"
     " name TEXT NOT NULL,"
     " status TEXT NOT NULL CHECK (status IN ('active', 'disabled')),"
     " created_at BIGINT NOT NULL,"
     " disabled_at BIGINT);"
     "CREATE TABLE iam_principal ("
     " id TEXT PRIMARY KEY,"
     " tenant TEXT NOT NULL REFERENCES iam_tenant (id),"
     " kind TEXT NOT NULL CHECK (kind IN ('user', 'service', 'developer', 'client')),"
     " name TEXT NOT NULL,"
     " roles BIGINT NOT NULL CHECK (roles > 0 AND roles < 64),"
     " status TEXT NOT NULL CHECK (status IN ('active', 'disabled')),"
     " created_at BIGINT NOT NULL,"
     " created_by TEXT,"
     " disabled_at BIGINT,"
     " UNIQUE (tenant, name));"
     "CREATE TABLE iam_api_key ("
     " id TEXT PRIMARY KEY,"
     " principal TEXT NOT NULL REFERENCES iam_principal (id),"
     " hash BLOB NOT NULL,"
     " created_at BIGINT NOT NULL,"
     " expires_at BIGINT NOT NULL,"
     " revoked_at BIGINT,"
     " last_used_at BIGINT);"
     "CREATE INDEX iam_api_key_principal ON iam_api_key (principal);"
     "CREATE TABLE iam_client_key ("
     " id TEXT PRIMARY KEY,"
     " principal TEXT NOT NULL REFERENCES iam_principal (id),"
     " public_key BLOB NOT NULL,"
     " created_at BIGINT NOT NULL,"
     " revoked_at BIGINT);"
     /* One active client key per principal, also under concurrent writers. */
     "CREATE UNIQUE INDEX iam_client_key_active ON iam_client_key (principal) WHERE revoked_at IS NULL;"
     "CREATE TABLE iam_signing_key ("
     " kid TEXT PRIMARY KEY,"
     " alg TEXT NOT NULL CHECK (alg = 'EdDSA'),"
     " wrapped BLOB,"
     " public_key BLOB NOT NULL,"
     " created_at BIGINT NOT NULL,"
     " retire_after BIGINT,"
     " retired_at BIGINT,"
     " status TEXT NOT NULL CHECK (status IN ('current', 'previous', 'retired')),"
     " CHECK ((status = 'retired') = (wrapped IS NULL)));"
     /* Exactly one current key, also with several replicas rotating at once. */
     "CREATE UNIQUE INDEX iam_signing_key_current ON iam_signing_key (status) WHERE status = 'current';",
     NULL},
};

int iam_migrate(cf_store *s)
{
    return cf_store_migrate(s, "iam", iam_migrations, CF_ARRAY_LEN(iam_migrations));
}

static int ensure_platform_tenant(cf_store *s, int64_t now)
{
    return cf_store_exec(s,
                         "INSERT INTO iam_tenant (id, name, status, created_at) VALUES (?, 'Platform', "
                         "'active', ?) ON CONFLICT (id) DO NOTHING",
                         CF_STORE_ARGS(cf_sv_text(CF_PLATFORM_TENANT), cf_sv_int(now)), NULL);
}

/* ---- open / close ------------------------------------------------------------------ */

static int check_opts(const cf_iam_opts *o, uint32_t *ttl, uint64_t *rot, uint64_t *ovl, uint64_t *akt)
{
    CF_ENSURE(o != NULL && o->store_dsn != NULL && o->hsm != NULL && o->audit != NULL, CF_E_INVAL);
    if (strncmp(o->store_dsn, "sqlite::memory:", 15) == 0)
        return cf_err_set(CF_E_CONFIG, "the IAM needs a shared store: \"sqlite::memory:\" gives every "
                                       "connection its own database");
    *ttl = o->token_ttl ? o->token_ttl : CF_IAM_TOKEN_TTL_DEFAULT;
    *rot = o->rotate_every ? o->rotate_every : CF_IAM_ROTATE_DEFAULT_S;
    *ovl = o->overlap ? o->overlap : CF_IAM_OVERLAP_DEFAULT_S;
    *akt = o->apikey_default_ttl ? o->apikey_default_ttl : CF_IAM_APIKEY_TTL_DEFAULT;
    if (*ttl > CF_IAM_TOKEN_TTL_MAX)
        return cf_err_set(CF_E_CONFIG, "iam.token_ttl %u exceeds %d seconds", *ttl, CF_IAM_TOKEN_TTL_MAX);
    /* A token signed just before a rotation must verify until it expires
     * (plus the verifiers' 30 s clock skew): the old key stays that long. */
    if (*ovl < (uint64_t)*ttl + 60 || *ovl > CF_IAM_OVERLAP_MAX_S)
        return cf_err_set(CF_E_CONFIG, "iam.signing_key_overlap must be between token_ttl + 60 s (%u) and %llu s",
                          *ttl + 60, (unsigned long long)CF_IAM_OVERLAP_MAX_S);
    if (*rot < CF_IAM_ROTATE_MIN_S || *rot > CF_IAM_ROTATE_MAX_S || *rot <= *ovl)
        return cf_err_set(CF_E_CONFIG,
                          "iam.signing_key_rotate_every must be between %d s and %llu s and longer than "
                          "the overlap",
                          CF_IAM_ROTATE_MIN_S, (unsigned long long)CF_IAM_ROTATE_MAX_S);
    if (*akt > CF_IAM_APIKEY_TTL_MAX)
        return cf_err_set(CF_E_CONFIG, "default API key lifetime exceeds %llu s",
                          (unsigned long long)CF_IAM_APIKEY_TTL_MAX);
    return 0;
}

int cf_iam_open(const cf_iam_opts *o, cf_iam **ret)
{
    cf_iam *iam = NULL;
    cf_store *s = NULL;
    uint32_t ttl = 0;
    uint64_t rot = 0, ovl = 0, akt = 0;
    int rc;

    CF_GUARD(check_opts(o, &ttl, &rot, &ovl, &akt));
    iam = calloc(1, sizeof(*iam));
    CF_ENSURE(iam != NULL, CF_E_NOMEM);
    iam->hsm = o->hsm;
    iam->audit = o->audit;
    iam->audit_arg = o->audit_arg;
    iam->clock = o->clock;
    iam->clock_arg = o->clock_arg;
    iam->token_ttl = ttl;
    iam->rotate_every = rot;
    iam->overlap = ovl;
    iam->apikey_ttl = akt;
    pthread_mutex_init(&iam->pool_mu, NULL);
    iam->dsn = cf_strndup_max(o->store_dsn, CF_STORE_MAX_DSN);
    CF_ENSURE_OUT(iam->dsn != NULL, CF_E_NOMEM);
    CF_GUARD_OUT(cf_iam_rl_init(&iam->rl));
    CF_GUARD_OUT(iam_ring_init(iam));
    CF_GUARD_OUT(cf_store_open(iam->dsn, &s));
    CF_GUARD_OUT(iam_migrate(s));
    CF_GUARD_OUT(ensure_platform_tenant(s, iam_now(iam)));
    iam_store_put(iam, s);
    s = NULL;
    CF_GUARD_OUT(iam_ring_ensure(iam));
    CF_GUARD_OUT(iam_ring_reload(iam, 0));
    *ret = iam;
    iam = NULL;
    rc = 0;
out:
    cf_store_close(s);
    cf_iam_close(iam); /* safe on a half-built object: ring and limiter know if they were set up */
    return rc;
}

void cf_iam_close(cf_iam *iam)
{
    if (iam == NULL)
        return;
    iam_ring_destroy(&iam->ring);
    cf_iam_rl_destroy(&iam->rl);
    for (size_t i = 0; i < iam->nidle; i++)
        cf_store_close(iam->idle[i]);
    pthread_mutex_destroy(&iam->pool_mu);
    free(iam->dsn);
    free(iam);
}

uint32_t cf_iam_token_ttl(const cf_iam *iam) { return iam->token_ttl; }

int64_t cf_iam_now(const cf_iam *iam) { return iam_now(iam); }

int cf_iam_ready(cf_iam *iam)
{
    cf_store *s = NULL;
    cf_store_rows *r = NULL;
    char kid[CF_JWK_KID_MAX_LEN + 1];
    int rc;

    CF_GUARD_OUT(iam_store_get(iam, &s));
    CF_GUARD_OUT(cf_store_query_row(s, "SELECT 1", NULL, 0, &r));
    CF_GUARD_OUT(cf_iam_signing_current(iam, kid));
out:
    cf_store_rows_close(r);
    iam_store_put(iam, s);
    return rc;
}

/* ---- the caller ------------------------------------------------------------------ */

/* The caller must still be an active principal of an active tenant: IAM reads
 * its own store, so a disabled administrator is refused at once here. */
int iam_check_actor(cf_store *s, const cf_iam_caller *who)
{
    cf_store_rows *r = NULL;
    char ps[16], ts[16], tenant[CF_ID_MAX_LEN + 1];
    int rc;

    if (who == NULL || who->actor == NULL)
        return cf_err_set(CF_E_UNAUTHENTICATED, "an access token is required");
    rc = cf_store_query_row(s,
                            "SELECT p.status, t.status, p.tenant FROM iam_principal p JOIN iam_tenant t "
                            "ON t.id = p.tenant WHERE p.id = ?",
                            CF_STORE_ARGS(cf_sv_text(who->actor->sub)), &r);
    if (rc == CF_E_NOT_FOUND)
        return cf_err_set(CF_E_UNAUTHENTICATED, "the token's principal does not exist");
    CF_GUARD_OUT(rc);
    CF_GUARD_OUT(cf_store_col_text(r, 0, ps, sizeof(ps), NULL));
    CF_GUARD_OUT(cf_store_col_text(r, 1, ts, sizeof(ts), NULL));
    CF_GUARD_OUT(cf_store_col_text(r, 2, tenant, sizeof(tenant), NULL));
    if (strcmp(tenant, who->actor->tenant) != 0)
        rc = cf_err_set(CF_E_UNAUTHENTICATED, "the token's tenant does not match its principal");
    else if (strcmp(ps, "active") != 0)
        rc = cf_err_set(CF_E_FORBIDDEN, "principal '%s' is disabled", who->actor->sub);
    else if (strcmp(ts, "active") != 0)
        rc = cf_err_set(CF_E_FORBIDDEN, "tenant '%s' is disabled", tenant);
out:
    cf_store_rows_close(r);
    return rc;
}

static int check_reason(const char *reason)
{
    if (reason != NULL && !cf_iam_text_ok(reason, CF_IAM_MAX_REASON))
        return cf_err_set(CF_E_INVAL, "reason must be 1-%d bytes of printable UTF-8", CF_IAM_MAX_REASON);
    return 0;
}

/* ---- tenants ---------------------------------------------------------------------- */

static int row_tenant(cf_store_rows *r, cf_iam_tenant *t)
{
    char status[16];

    memset(t, 0, sizeof(*t));
    CF_GUARD(cf_store_col_text(r, 0, t->id, sizeof(t->id), NULL));
    CF_GUARD(cf_store_col_text(r, 1, t->name, sizeof(t->name), NULL));
    CF_GUARD(cf_store_col_text(r, 2, status, sizeof(status), NULL));
    CF_GUARD(cf_store_col_i64(r, 3, &t->created_at));
    CF_GUARD(col_i64_or0(r, 4, &t->disabled_at));
    t->active = strcmp(status, "active") == 0;
    return 0;
}

#define TENANT_COLS "id, name, status, created_at, disabled_at"

static int read_tenant(cf_store *s, const char *id, cf_iam_tenant *ret)
{
    cf_store_rows *r = NULL;
    int rc;

    rc = cf_store_query_row(s, "SELECT " TENANT_COLS " FROM iam_tenant WHERE id = ?",
                            CF_STORE_ARGS(cf_sv_text(id)), &r);
    if (rc == CF_E_NOT_FOUND)
        return cf_err_set(CF_E_NOT_FOUND, "tenant '%s' not found", id);
    CF_GUARD(rc);
    rc = row_tenant(r, ret);
    cf_store_rows_close(r);
    return rc;
}

typedef struct {
    const char *id, *name, *reason, *after;
    cf_iam_tenant *out;
    size_t max, n;
} tenant_ctx;

static int tenant_create_body(cf_store *s, iam_op *op)
{
    tenant_ctx *c = op->arg;
    int rc;

    CF_GUARD(iam_check_actor(s, op->who));
    CF_GUARD(cf_authz_check(op->who->actor, CF_PERM_TENANT_MANAGE, CF_PLATFORM_TENANT));
    rc = cf_store_exec(s, "INSERT INTO iam_tenant (id, name, status, created_at) VALUES (?, ?, 'active', ?)",
                       CF_STORE_ARGS(cf_sv_text(c->id), cf_sv_text(c->name), cf_sv_int(op->now)), NULL);
    if (rc == CF_E_EXISTS)
        return cf_err_set(CF_E_EXISTS, "tenant '%s' already exists", c->id);
    CF_GUARD(rc);
    CF_GUARD(read_tenant(s, c->id, c->out));
    iam_op_detail_str(op, "name", c->name);
    return 0;
}

int cf_iam_tenant_create(cf_iam *iam, const cf_iam_caller *who, const char *id, const char *name,
                         cf_iam_tenant *ret)
{
    char gen[CF_ID_MAX_LEN + 1];
    cf_iam_tenant t;
    tenant_ctx c = {.name = name, .out = &t};
    iam_op op = {.iam = iam, .who = who, .action = "iam.tenant.create", .body = tenant_create_body, .arg = &c};
    int rc0 = 0;

    if (id == NULL) {
        random_id("t-", gen, sizeof(gen));
        id = gen;
    }
    c.id = id;
    iam_op_set_tenant(&op, id);
    iam_op_set_resource(&op, "tenant/%s", cf_iam_id_ok(id) ? id : "");
    if (!cf_iam_id_ok(id))
        rc0 = cf_err_set(CF_E_INVAL, "tenant id must be 1-%d characters of A-Z a-z 0-9 . _ : -", CF_ID_MAX_LEN);
    else if (strcmp(id, CF_PLATFORM_TENANT) == 0)
        rc0 = cf_err_set(CF_E_EXISTS, "tenant id '%s' is reserved", CF_PLATFORM_TENANT);
    else if (!cf_iam_name_ok(name))
        rc0 = cf_err_set(CF_E_INVAL, "tenant name must be 1-%d bytes of printable UTF-8", CF_NAME_MAX_LEN);
    CF_GUARD(iam_run_audited(&op, rc0));
    *ret = t;
    return 0;
}

static int tenant_get_body(cf_store *s, iam_op *op)
{
    tenant_ctx *c = op->arg;

    CF_GUARD(iam_check_actor(s, op->who));
    CF_GUARD(cf_authz_check(op->who->actor, CF_PERM_PRINCIPAL_MANAGE, c->id));
    return read_tenant(s, c->id, c->out);
}

int cf_iam_tenant_get(cf_iam *iam, const cf_iam_caller *who, const char *id, cf_iam_tenant *ret)
{
    cf_iam_tenant t;
    tenant_ctx c = {.id = id, .out = &t};
    iam_op op = {.iam = iam, .who = who, .action = "iam.tenant.get", .body = tenant_get_body, .arg = &c};
    int rc0 = 0;

    iam_op_set_tenant(&op, id);
    if (!cf_iam_id_ok(id))
        rc0 = cf_err_set(CF_E_INVAL, "malformed tenant id");
    else
        iam_op_set_resource(&op, "tenant/%s", id);
    CF_GUARD(iam_run_audited(&op, rc0));
    *ret = t;
    return 0;
}

static int tenant_list_body(cf_store *s, iam_op *op)
{
    tenant_ctx *c = op->arg;
    cf_store_rows *r = NULL;
    int rc, more;

    c->n = 0;
    CF_GUARD(iam_check_actor(s, op->who));
    CF_GUARD(cf_authz_check(op->who->actor, CF_PERM_TENANT_MANAGE, CF_PLATFORM_TENANT));
    CF_GUARD(cf_store_query(s, "SELECT " TENANT_COLS " FROM iam_tenant WHERE id > ? ORDER BY id LIMIT ?",
                            CF_STORE_ARGS(cf_sv_text(c->after ? c->after : ""), cf_sv_int((int64_t)c->max)),
                            &r));
    while ((more = cf_store_next(r)) == 1 && c->n < c->max)
        CF_GUARD_OUT(row_tenant(r, &c->out[c->n++]));
    rc = more < 0 ? more : 0;
    iam_op_detail_int(op, "count", (int64_t)c->n);
out:
    cf_store_rows_close(r);
    return rc;
}

int cf_iam_tenant_list(cf_iam *iam, const cf_iam_caller *who, const char *after, cf_iam_tenant *out,
                       size_t max, size_t *ret_n)
{
    tenant_ctx c = {.after = after, .out = out, .max = max};
    iam_op op = {.iam = iam, .who = who, .action = "iam.tenant.list", .body = tenant_list_body, .arg = &c};
    int rc0 = 0;

    iam_op_set_resource(&op, "tenants");
    if (out == NULL || max == 0 || max > CF_IAM_MAX_LIST)
        rc0 = cf_err_set(CF_E_INVAL, "listing limit must be 1-%d", CF_IAM_MAX_LIST);
    else if (after != NULL && !cf_iam_id_ok(after))
        rc0 = cf_err_set(CF_E_INVAL, "malformed 'after' cursor");
    CF_GUARD(iam_run_audited(&op, rc0));
    *ret_n = c.n;
    return 0;
}

static int tenant_disable_body(cf_store *s, iam_op *op)
{
    tenant_ctx *c = op->arg;
    cf_iam_tenant t;
    int64_t changed = 0;

    CF_GUARD(iam_check_actor(s, op->who));
    CF_GUARD(cf_authz_check(op->who->actor, CF_PERM_TENANT_MANAGE, CF_PLATFORM_TENANT));
    CF_GUARD(read_tenant(s, c->id, &t));
    if (!t.active)
        return cf_err_set(CF_E_CONFLICT, "tenant '%s' is already disabled", c->id);
    CF_GUARD(cf_store_exec(s, "UPDATE iam_tenant SET status = 'disabled', disabled_at = ? WHERE id = ? AND "
                              "status = 'active'",
                           CF_STORE_ARGS(cf_sv_int(op->now), cf_sv_text(c->id)), &changed));
    CF_ENSURE(changed == 1, CF_E_CONFLICT);
    iam_op_detail_str(op, "reason", c->reason);
    return 0;
}

int cf_iam_tenant_disable(cf_iam *iam, const cf_iam_caller *who, const char *id, const char *reason)
{
    tenant_ctx c = {.id = id, .reason = reason};
    iam_op op = {.iam = iam, .who = who, .action = "iam.tenant.disable", .body = tenant_disable_body, .arg = &c};
    int rc0 = 0;

    iam_op_set_tenant(&op, id);
    if (!cf_iam_id_ok(id))
        rc0 = cf_err_set(CF_E_INVAL, "malformed tenant id");
    else if (strcmp(id, CF_PLATFORM_TENANT) == 0)
        rc0 = cf_err_set(CF_E_CONFLICT, "the platform tenant cannot be disabled");
    else
        rc0 = check_reason(reason);
    if (cf_iam_id_ok(id))
        iam_op_set_resource(&op, "tenant/%s", id);
    return iam_run_audited(&op, rc0);
}

/* ---- principals -------------------------------------------------------------------- */

#define PRINCIPAL_SELECT                                                                   \
    "SELECT p.id, p.tenant, p.kind, p.name, p.roles, p.status, p.created_at, p.disabled_at, " \
    "c.public_key, c.created_at FROM iam_principal p LEFT JOIN iam_client_key c "          \
    "ON c.principal = p.id AND c.revoked_at IS NULL "

static int row_principal(cf_store_rows *r, cf_iam_principal *p)
{
    char status[16];
    int64_t roles;
    bool null;
    size_t n = 0;

    memset(p, 0, sizeof(*p));
    CF_GUARD(cf_store_col_text(r, 0, p->id, sizeof(p->id), NULL));
    CF_GUARD(cf_store_col_text(r, 1, p->tenant, sizeof(p->tenant), NULL));
    CF_GUARD(cf_store_col_text(r, 2, p->kind, sizeof(p->kind), NULL));
    CF_GUARD(cf_store_col_text(r, 3, p->name, sizeof(p->name), NULL));
    CF_GUARD(cf_store_col_i64(r, 4, &roles));
    CF_GUARD(cf_store_col_text(r, 5, status, sizeof(status), NULL));
    CF_GUARD(cf_store_col_i64(r, 6, &p->created_at));
    CF_GUARD(col_i64_or0(r, 7, &p->disabled_at));
    if (roles <= 0 || roles > (int64_t)CF_IAM_ALL_ROLES)
        return cf_err_set(CF_E_STORE, "iam store holds invalid roles for a principal");
    p->roles = (uint32_t)roles;
    p->active = strcmp(status, "active") == 0;
    CF_GUARD(cf_store_col_is_null(r, 8, &null));
    if (!null) {
        CF_GUARD(cf_store_col_blob(r, 8, p->client_key, sizeof(p->client_key), &n));
        if (n != sizeof(p->client_key))
            return cf_err_set(CF_E_STORE, "iam store holds a client key of the wrong size");
        CF_GUARD(cf_store_col_i64(r, 9, &p->client_key_created_at));
        p->has_client_key = true;
    }
    return 0;
}

static int read_principal(cf_store *s, const char *id, cf_iam_principal *ret)
{
    cf_store_rows *r = NULL;
    int rc;

    rc = cf_store_query_row(s, PRINCIPAL_SELECT "WHERE p.id = ?", CF_STORE_ARGS(cf_sv_text(id)), &r);
    if (rc == CF_E_NOT_FOUND)
        return cf_err_set(CF_E_NOT_FOUND, "principal '%s' not found", id);
    CF_GUARD(rc);
    rc = row_principal(r, ret);
    cf_store_rows_close(r);
    return rc;
}

typedef struct {
    const char *id, *tenant, *kind, *name, *reason, *after;
    uint32_t roles;
    cf_iam_principal *out;
    size_t max, n;
} principal_ctx;

static int principal_create_body(cf_store *s, iam_op *op)
{
    principal_ctx *c = op->arg;
    cf_iam_tenant t;
    char id[CF_ID_MAX_LEN + 1];
    json_t *roles = NULL;
    int rc;

    CF_GUARD(iam_check_actor(s, op->who));
    CF_GUARD(cf_iam_check_grant(op->who->actor, c->tenant, c->roles));
    CF_GUARD(read_tenant(s, c->tenant, &t));
    if (!t.active)
        return cf_err_set(CF_E_CONFLICT, "tenant '%s' is disabled", c->tenant);
    random_id("p-", id, sizeof(id));
    CF_ENSURE(id[0] != '\0', CF_E_CRYPTO);
    rc = cf_store_exec(s,
                       "INSERT INTO iam_principal (id, tenant, kind, name, roles, status, created_at, "
                       "created_by) VALUES (?, ?, ?, ?, ?, 'active', ?, ?)",
                       CF_STORE_ARGS(cf_sv_text(id), cf_sv_text(c->tenant), cf_sv_text(c->kind),
                                     cf_sv_text(c->name), cf_sv_int(c->roles), cf_sv_int(op->now),
                                     cf_sv_text(op->who->actor->sub)),
                       NULL);
    if (rc == CF_E_EXISTS)
        return cf_err_set(CF_E_EXISTS, "tenant '%s' already has a principal with this name", c->tenant);
    CF_GUARD(rc);
    CF_GUARD(read_principal(s, id, c->out));
    iam_op_set_resource(op, "principal/%s", id);
    iam_op_detail_str(op, "kind", c->kind);
    if (cf_iam_roles_to_json(c->roles, &roles) == 0 && op_details(op) != NULL)
        json_object_set_new(op->details, "roles", roles);
    else
        json_decref(roles);
    return 0;
}

int cf_iam_principal_create(cf_iam *iam, const cf_iam_caller *who, const char *tenant, const char *kind,
                            const char *name, uint32_t roles, cf_iam_principal *ret)
{
    cf_iam_principal p;
    principal_ctx c = {.tenant = tenant, .kind = kind, .name = name, .roles = roles, .out = &p};
    iam_op op = {.iam = iam, .who = who, .action = "iam.principal.create", .body = principal_create_body,
                 .arg = &c};
    int rc0 = 0;

    iam_op_set_tenant(&op, tenant);
    if (!cf_iam_id_ok(tenant))
        rc0 = cf_err_set(CF_E_INVAL, "malformed tenant id");
    else if (!cf_iam_kind_ok(kind))
        rc0 = cf_err_set(CF_E_INVAL, "kind must be user, service, developer or client");
    else if (!cf_iam_name_ok(name))
        rc0 = cf_err_set(CF_E_INVAL, "principal name must be 1-%d bytes of printable UTF-8", CF_NAME_MAX_LEN);
    else if (roles == 0 || (roles & ~CF_IAM_ALL_ROLES))
        rc0 = cf_err_set(CF_E_INVAL, "a principal needs at least one known role");
    CF_GUARD(iam_run_audited(&op, rc0));
    *ret = p;
    return 0;
}

/* Loads principal id and checks perm on its tenant (the event names that tenant). */
static int load_scoped(cf_store *s, iam_op *op, const char *id, cf_perm perm, cf_iam_principal *ret)
{
    cf_iam_principal p;

    CF_GUARD(iam_check_actor(s, op->who));
    CF_GUARD(read_principal(s, id, &p));
    iam_op_set_tenant(op, p.tenant);
    CF_GUARD(cf_authz_check(op->who->actor, perm, p.tenant));
    *ret = p;
    return 0;
}

static int principal_get_body(cf_store *s, iam_op *op)
{
    principal_ctx *c = op->arg;

    return load_scoped(s, op, c->id, CF_PERM_PRINCIPAL_MANAGE, c->out);
}

int cf_iam_principal_get(cf_iam *iam, const cf_iam_caller *who, const char *id, cf_iam_principal *ret)
{
    cf_iam_principal p;
    principal_ctx c = {.id = id, .out = &p};
    iam_op op = {.iam = iam, .who = who, .action = "iam.principal.get", .body = principal_get_body, .arg = &c};
    int rc0 = 0;

    if (!cf_iam_id_ok(id))
        rc0 = cf_err_set(CF_E_INVAL, "malformed principal id");
    else
        iam_op_set_resource(&op, "principal/%s", id);
    CF_GUARD(iam_run_audited(&op, rc0));
    *ret = p;
    return 0;
}

static int principal_list_body(cf_store *s, iam_op *op)
{
    principal_ctx *c = op->arg;
    cf_iam_tenant t;
    cf_store_rows *r = NULL;
    int rc, more;

    c->n = 0;
    CF_GUARD(iam_check_actor(s, op->who));
    CF_GUARD(cf_authz_check(op->who->actor, CF_PERM_PRINCIPAL_MANAGE, c->tenant));
    CF_GUARD(read_tenant(s, c->tenant, &t));
    CF_GUARD(cf_store_query(s, PRINCIPAL_SELECT "WHERE p.tenant = ? AND p.id > ? ORDER BY p.id LIMIT ?",
                            CF_STORE_ARGS(cf_sv_text(c->tenant), cf_sv_text(c->after ? c->after : ""),
                                          cf_sv_int((int64_t)c->max)),
                            &r));
    while ((more = cf_store_next(r)) == 1 && c->n < c->max)
        CF_GUARD_OUT(row_principal(r, &c->out[c->n++]));
    rc = more < 0 ? more : 0;
    iam_op_detail_int(op, "count", (int64_t)c->n);
out:
    cf_store_rows_close(r);
    return rc;
}

int cf_iam_principal_list(cf_iam *iam, const cf_iam_caller *who, const char *tenant, const char *after,
                          cf_iam_principal *out, size_t max, size_t *ret_n)
{
    principal_ctx c = {.tenant = tenant, .after = after, .out = out, .max = max};
    iam_op op = {.iam = iam, .who = who, .action = "iam.principal.list", .body = principal_list_body,
                 .arg = &c};
    int rc0 = 0;

    iam_op_set_tenant(&op, tenant);
    if (!cf_iam_id_ok(tenant))
        rc0 = cf_err_set(CF_E_INVAL, "malformed tenant id");
    else if (out == NULL || max == 0 || max > CF_IAM_MAX_LIST)
        rc0 = cf_err_set(CF_E_INVAL, "listing limit must be 1-%d", CF_IAM_MAX_LIST);
    else if (after != NULL && !cf_iam_id_ok(after))
        rc0 = cf_err_set(CF_E_INVAL, "malformed 'after' cursor");
    if (cf_iam_id_ok(tenant))
        iam_op_set_resource(&op, "tenant/%s/principals", tenant);
    CF_GUARD(iam_run_audited(&op, rc0));
    *ret_n = c.n;
    return 0;
}

static int principal_disable_body(cf_store *s, iam_op *op)
{
    principal_ctx *c = op->arg;
    cf_iam_principal p;
    int64_t changed = 0;

    CF_GUARD(load_scoped(s, op, c->id, CF_PERM_PRINCIPAL_MANAGE, &p));
    if (strcmp(p.id, op->who->actor->sub) == 0)
        return cf_err_set(CF_E_CONFLICT, "a principal cannot disable itself");
    if (!p.active)
        return cf_err_set(CF_E_CONFLICT, "principal '%s' is already disabled", p.id);
    CF_GUARD(cf_store_exec(s, "UPDATE iam_principal SET status = 'disabled', disabled_at = ? WHERE id = ? "
                              "AND status = 'active'",
                           CF_STORE_ARGS(cf_sv_int(op->now), cf_sv_text(p.id)), &changed));
    CF_ENSURE(changed == 1, CF_E_CONFLICT);
    iam_op_detail_str(op, "reason", c->reason);
    return 0;
}

int cf_iam_principal_disable(cf_iam *iam, const cf_iam_caller *who, const char *id, const char *reason)
{
    principal_ctx c = {.id = id, .reason = reason};
    iam_op op = {.iam = iam, .who = who, .action = "iam.principal.disable", .body = principal_disable_body,
                 .arg = &c};
    int rc0 = 0;

    if (!cf_iam_id_ok(id))
        rc0 = cf_err_set(CF_E_INVAL, "malformed principal id");
    else
        rc0 = check_reason(reason);
    if (cf_iam_id_ok(id))
        iam_op_set_resource(&op, "principal/%s", id);
    return iam_run_audited(&op, rc0);
}

/* ---- API keys ------------------------------------------------------------------------ */

#define APIKEY_SELECT                                                                      \
    "SELECT k.id, k.principal, p.tenant, k.created_at, k.expires_at, k.revoked_at, "      \
    "k.last_used_at FROM iam_api_key k JOIN iam_principal p ON p.id = k.principal "

static int row_apikey(cf_store_rows *r, cf_iam_apikey *k)
{
    memset(k, 0, sizeof(*k));
    CF_GUARD(cf_store_col_text(r, 0, k->id, sizeof(k->id), NULL));
    CF_GUARD(cf_store_col_text(r, 1, k->principal, sizeof(k->principal), NULL));
    CF_GUARD(cf_store_col_text(r, 2, k->tenant, sizeof(k->tenant), NULL));
    CF_GUARD(cf_store_col_i64(r, 3, &k->created_at));
    CF_GUARD(cf_store_col_i64(r, 4, &k->expires_at));
    CF_GUARD(col_i64_or0(r, 5, &k->revoked_at));
    CF_GUARD(col_i64_or0(r, 6, &k->last_used_at));
    return 0;
}

typedef struct {
    const char *principal, *key_id, *reason;
    uint64_t ttl;
    cf_iam_apikey *out;
    size_t max, n;
    /* create: made before the transaction (random), so a retry reuses them */
    char new_id[CF_IAM_KEY_ID_LEN + 1];
    uint8_t hash[CF_IAM_APIKEY_HASH_LEN];
} apikey_ctx;

static int insert_apikey(cf_store *s, const char *id, const char *principal, const uint8_t *hash,
                         int64_t now, uint64_t ttl)
{
    int rc = cf_store_exec(s,
                           "INSERT INTO iam_api_key (id, principal, hash, created_at, expires_at) VALUES "
                           "(?, ?, ?, ?, ?)",
                           CF_STORE_ARGS(cf_sv_text(id), cf_sv_text(principal),
                                         cf_sv_blob(hash, CF_IAM_APIKEY_HASH_LEN), cf_sv_int(now),
                                         cf_sv_int(now + (int64_t)ttl)),
                           NULL);
    if (rc == CF_E_EXISTS) /* 64-bit random ids: only a broken generator gets here */
        return cf_err_set(CF_E_INTERNAL, "API key id collision");
    return rc;
}

static int apikey_create_body(cf_store *s, iam_op *op)
{
    apikey_ctx *c = op->arg;
    cf_iam_principal p;
    cf_store_rows *r = NULL;
    int64_t active = 0;
    int rc;

    CF_GUARD(load_scoped(s, op, c->principal, CF_PERM_APIKEY_MANAGE, &p));
    if (!p.active)
        return cf_err_set(CF_E_CONFLICT, "principal '%s' is disabled", p.id);
    CF_GUARD(cf_store_query_row(s,
                                "SELECT CAST(count(*) AS BIGINT) FROM iam_api_key WHERE principal = ? AND "
                                "revoked_at IS NULL AND expires_at > ?",
                                CF_STORE_ARGS(cf_sv_text(p.id), cf_sv_int(op->now)), &r));
    rc = cf_store_col_i64(r, 0, &active);
    cf_store_rows_close(r);
    CF_GUARD(rc);
    if (active >= CF_IAM_MAX_KEYS_PER_PRINCIPAL)
        return cf_err_set(CF_E_CONFLICT, "principal '%s' already has %d active API keys: revoke one first",
                          p.id, CF_IAM_MAX_KEYS_PER_PRINCIPAL);
    CF_GUARD(insert_apikey(s, c->new_id, p.id, c->hash, op->now, c->ttl));
    CF_GUARD(cf_store_query_row(s, APIKEY_SELECT "WHERE k.id = ?", CF_STORE_ARGS(cf_sv_text(c->new_id)), &r));
    rc = row_apikey(r, c->out);
    cf_store_rows_close(r);
    CF_GUARD(rc);
    iam_op_set_resource(op, "api-key/%s", c->new_id);
    iam_op_detail_str(op, "principal", p.id);
    iam_op_detail_int(op, "expires_at", c->out->expires_at);
    return 0;
}

int cf_iam_apikey_create(cf_iam *iam, const cf_iam_caller *who, const char *principal, uint64_t ttl,
                         cf_iam_apikey *ret_info, cf_secret *ret_key)
{
    cf_iam_apikey info;
    cf_secret key = {0};
    apikey_ctx c = {.principal = principal, .ttl = ttl ? ttl : iam->apikey_ttl, .out = &info};
    iam_op op = {.iam = iam, .who = who, .action = "iam.apikey.create", .body = apikey_create_body, .arg = &c};
    int rc0 = 0, rc;

    if (!cf_iam_id_ok(principal))
        rc0 = cf_err_set(CF_E_INVAL, "malformed principal id");
    else if (c.ttl > CF_IAM_APIKEY_TTL_MAX)
        rc0 = cf_err_set(CF_E_RANGE, "API key ttl exceeds %llu seconds", (unsigned long long)CF_IAM_APIKEY_TTL_MAX);
    else
        rc0 = cf_iam_apikey_generate(c.new_id, &key, c.hash);
    if (cf_iam_id_ok(principal))
        iam_op_set_resource(&op, "principal/%s/api-keys", principal);
    rc = iam_run_audited(&op, rc0);
    cf_wipe(c.hash, sizeof(c.hash));
    if (rc < 0) {
        cf_secret_free(&key);
        return rc;
    }
    *ret_info = info;
    *ret_key = key;
    return 0;
}

static int apikey_list_body(cf_store *s, iam_op *op)
{
    apikey_ctx *c = op->arg;
    cf_iam_principal p;
    cf_store_rows *r = NULL;
    int rc, more;

    c->n = 0;
    CF_GUARD(load_scoped(s, op, c->principal, CF_PERM_APIKEY_MANAGE, &p));
    CF_GUARD(cf_store_query(s, APIKEY_SELECT "WHERE k.principal = ? ORDER BY k.created_at, k.id LIMIT ?",
                            CF_STORE_ARGS(cf_sv_text(p.id), cf_sv_int((int64_t)c->max)), &r));
    while ((more = cf_store_next(r)) == 1 && c->n < c->max)
        CF_GUARD_OUT(row_apikey(r, &c->out[c->n++]));
    rc = more < 0 ? more : 0;
    iam_op_detail_int(op, "count", (int64_t)c->n);
out:
    cf_store_rows_close(r);
    return rc;
}

int cf_iam_apikey_list(cf_iam *iam, const cf_iam_caller *who, const char *principal, cf_iam_apikey *out,
                       size_t max, size_t *ret_n)
{
    apikey_ctx c = {.principal = principal, .out = out, .max = max};
    iam_op op = {.iam = iam, .who = who, .action = "iam.apikey.list", .body = apikey_list_body, .arg = &c};
    int rc0 = 0;

    if (!cf_iam_id_ok(principal))
        rc0 = cf_err_set(CF_E_INVAL, "malformed principal id");
    else if (out == NULL || max == 0 || max > CF_IAM_MAX_LIST)
        rc0 = cf_err_set(CF_E_INVAL, "listing limit must be 1-%d", CF_IAM_MAX_LIST);
    if (cf_iam_id_ok(principal))
        iam_op_set_resource(&op, "principal/%s/api-keys", principal);
    CF_GUARD(iam_run_audited(&op, rc0));
    *ret_n = c.n;
    return 0;
}

static bool key_id_ok(const char *s)
{
    if (s == NULL || strnlen(s, CF_IAM_KEY_ID_LEN + 1) != CF_IAM_KEY_ID_LEN)
        return false;
    for (size_t i = 0; i < CF_IAM_KEY_ID_LEN; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

static int apikey_revoke_body(cf_store *s, iam_op *op)
{
    apikey_ctx *c = op->arg;
    cf_store_rows *r = NULL;
    cf_iam_apikey k;
    int64_t changed = 0;
    int rc;

    CF_GUARD(iam_check_actor(s, op->who));
    rc = cf_store_query_row(s, APIKEY_SELECT "WHERE k.id = ?", CF_STORE_ARGS(cf_sv_text(c->key_id)), &r);
    if (rc == CF_E_NOT_FOUND)
        return cf_err_set(CF_E_NOT_FOUND, "API key '%s' not found", c->key_id);
    CF_GUARD(rc);
    rc = row_apikey(r, &k);
    cf_store_rows_close(r);
    CF_GUARD(rc);
    iam_op_set_tenant(op, k.tenant);
    CF_GUARD(cf_authz_check(op->who->actor, CF_PERM_APIKEY_MANAGE, k.tenant));
    if (k.revoked_at != 0)
        return cf_err_set(CF_E_CONFLICT, "API key '%s' is already revoked", k.id);
    CF_GUARD(cf_store_exec(s, "UPDATE iam_api_key SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
                           CF_STORE_ARGS(cf_sv_int(op->now), cf_sv_text(k.id)), &changed));
    CF_ENSURE(changed == 1, CF_E_CONFLICT);
    iam_op_detail_str(op, "principal", k.principal);
    iam_op_detail_str(op, "reason", c->reason);
    return 0;
}

int cf_iam_apikey_revoke(cf_iam *iam, const cf_iam_caller *who, const char *key_id, const char *reason)
{
    apikey_ctx c = {.key_id = key_id, .reason = reason};
    iam_op op = {.iam = iam, .who = who, .action = "iam.apikey.revoke", .body = apikey_revoke_body, .arg = &c};
    int rc0 = 0;

    if (!key_id_ok(key_id))
        rc0 = cf_err_set(CF_E_INVAL, "malformed API key id (16 lower-case hex characters)");
    else
        rc0 = check_reason(reason);
    if (key_id_ok(key_id))
        iam_op_set_resource(&op, "api-key/%s", key_id);
    return iam_run_audited(&op, rc0);
}

/* ---- client keys --------------------------------------------------------------------- */

typedef struct {
    const char *principal;
    const uint8_t *pub;
    char id[CF_ID_MAX_LEN + 1];
} clientkey_ctx;

static int clientkey_body(cf_store *s, iam_op *op)
{
    clientkey_ctx *c = op->arg;
    cf_iam_principal p;
    const cf_principal *a = op->who->actor;
    int64_t replaced = 0;
    char tp[CF_KEY_THUMBPRINT_LEN + 1];
    cf_key *k = NULL;

    CF_GUARD(load_scoped(s, op, c->principal, CF_PERM_CLIENTKEY_REGISTER, &p));
    /* A client registers only its own key; a tenant-admin (same tenant: the
     * scope check above) registers it for principals of its tenant. */
    if (strcmp(a->sub, p.id) != 0 && !(a->roles & CF_ROLE_TENANT_ADMIN))
        return cf_err_set(CF_E_FORBIDDEN, "principal '%s' may register a client key only for itself", a->sub);
    if (!p.active)
        return cf_err_set(CF_E_CONFLICT, "principal '%s' is disabled", p.id);
    CF_GUARD(cf_store_exec(s, "UPDATE iam_client_key SET revoked_at = ? WHERE principal = ? AND revoked_at IS NULL",
                           CF_STORE_ARGS(cf_sv_int(op->now), cf_sv_text(p.id)), &replaced));
    CF_GUARD(cf_store_exec(s, "INSERT INTO iam_client_key (id, principal, public_key, created_at) VALUES (?, ?, ?, ?)",
                           CF_STORE_ARGS(cf_sv_text(c->id), cf_sv_text(p.id), cf_sv_blob(c->pub, 32),
                                         cf_sv_int(op->now)),
                           NULL));
    iam_op_detail_int(op, "replaced", replaced);
    /* The thumbprint identifies the key in the audit trail without the key itself. */
    if (cf_key_from_public(CF_KEY_X25519, c->pub, 32, &k) == 0 && cf_key_thumbprint(k, tp) == 0)
        iam_op_detail_str(op, "thumbprint", tp);
    cf_key_free(k);
    return 0;
}

int cf_iam_clientkey_register(cf_iam *iam, const cf_iam_caller *who, const char *principal,
                              const uint8_t *pub, size_t len)
{
    clientkey_ctx c = {.principal = principal, .pub = pub};
    iam_op op = {.iam = iam, .who = who, .action = "iam.clientkey.register", .body = clientkey_body, .arg = &c};
    int rc0 = 0;

    random_id("ck-", c.id, sizeof(c.id));
    if (!cf_iam_id_ok(principal))
        rc0 = cf_err_set(CF_E_INVAL, "malformed principal id");
    else
        rc0 = cf_iam_clientkey_check(pub, len);
    if (cf_iam_id_ok(principal))
        iam_op_set_resource(&op, "principal/%s/client-key", principal);
    return iam_run_audited(&op, rc0);
}

/* ---- token exchange ------------------------------------------------------------------ */

typedef struct {
    cf_iam *iam;
    const char *key_id;
    const uint8_t *secret;
    const char *want_tenant;
    cf_iam_token *out;
    cf_principal p;
    int auth_fail; /* 1: unknown key id, 2: wrong secret */
} token_ctx;

static int token_body(cf_store *s, iam_op *op)
{
    token_ctx *c = op->arg;
    cf_store_rows *r = NULL;
    uint8_t stored[CF_IAM_APIKEY_HASH_LEN], got[CF_IAM_APIKEY_HASH_LEN];
    char pstatus[16], tstatus[16];
    int64_t expires_at = 0, revoked_at = 0, last_used = 0, roles = 0;
    size_t n = 0, klen = 0;
    uint8_t jti[16];
    int rc, eq;

    free(c->out->access_token);
    c->out->access_token = NULL;
    c->auth_fail = 0;
    memset(&c->p, 0, sizeof(c->p));
    CF_GUARD(cf_iam_apikey_hash(c->key_id, c->secret, got));
    rc = cf_store_query_row(s,
                            "SELECT k.hash, k.expires_at, k.revoked_at, k.last_used_at, p.id, p.tenant, "
                            "p.kind, p.roles, p.status, t.status FROM iam_api_key k JOIN iam_principal p "
                            "ON p.id = k.principal JOIN iam_tenant t ON t.id = p.tenant WHERE k.id = ?",
                            CF_STORE_ARGS(cf_sv_text(c->key_id)), &r);
    if (rc == CF_E_NOT_FOUND) {
        /* Same work as a wrong secret: the answer does not time the id lookup. */
        memset(stored, 0xa5, sizeof(stored));
        (void)cf_ct_eq(stored, got, sizeof(got));
        c->auth_fail = 1;
        return cf_err_set(CF_E_UNAUTHENTICATED, "invalid API key");
    }
    CF_GUARD_OUT(rc);
    CF_GUARD_OUT(cf_store_col_blob(r, 0, stored, sizeof(stored), &n));
    CF_GUARD_OUT(cf_store_col_i64(r, 1, &expires_at));
    CF_GUARD_OUT(col_i64_or0(r, 2, &revoked_at));
    CF_GUARD_OUT(col_i64_or0(r, 3, &last_used));
    CF_GUARD_OUT(cf_store_col_text(r, 4, c->p.sub, sizeof(c->p.sub), NULL));
    CF_GUARD_OUT(cf_store_col_text(r, 5, c->p.tenant, sizeof(c->p.tenant), NULL));
    CF_GUARD_OUT(cf_store_col_text(r, 6, c->p.kind, sizeof(c->p.kind), NULL));
    CF_GUARD_OUT(cf_store_col_i64(r, 7, &roles));
    CF_GUARD_OUT(cf_store_col_text(r, 8, pstatus, sizeof(pstatus), NULL));
    CF_GUARD_OUT(cf_store_col_text(r, 9, tstatus, sizeof(tstatus), NULL));
    cf_store_rows_close(r);
    r = NULL;
    CF_ENSURE_OUT(n == sizeof(stored), CF_E_STORE);
    /* Constant time: the comparison does not reveal how much of the hash matched. */
    eq = cf_ct_eq(stored, got, sizeof(got));
    if (!eq) {
        c->auth_fail = 2;
        rc = cf_err_set(CF_E_UNAUTHENTICATED, "invalid API key");
        goto out;
    }
    /* From here on the caller has proven knowledge of the secret: precise reasons. */
    iam_op_set_tenant(op, c->p.tenant);
    if (revoked_at != 0) {
        rc = cf_err_set(CF_E_REVOKED, "API key %s was revoked", c->key_id);
        goto out;
    }
    if (expires_at <= op->now) {
        rc = cf_err_set(CF_E_EXPIRED, "API key %s expired at %lld (unix time)", c->key_id,
                        (long long)expires_at);
        goto out;
    }
    if (strcmp(pstatus, "active") != 0) {
        rc = cf_err_set(CF_E_FORBIDDEN, "principal '%s' is disabled", c->p.sub);
        goto out;
    }
    if (strcmp(tstatus, "active") != 0) {
        rc = cf_err_set(CF_E_FORBIDDEN, "tenant '%s' is disabled", c->p.tenant);
        goto out;
    }
    if (c->want_tenant != NULL && strcmp(c->want_tenant, c->p.tenant) != 0) {
        rc = cf_err_set(CF_E_FORBIDDEN, "API key does not belong to tenant '%s'", c->want_tenant);
        goto out;
    }
    if (roles <= 0 || roles > (int64_t)CF_IAM_ALL_ROLES) {
        rc = cf_err_set(CF_E_STORE, "iam store holds invalid roles for a principal");
        goto out;
    }
    c->p.roles = (uint32_t)roles;
    rc = cf_store_query_row(s, "SELECT public_key FROM iam_client_key WHERE principal = ? AND revoked_at IS NULL",
                            CF_STORE_ARGS(cf_sv_text(c->p.sub)), &r);
    if (rc == 0) {
        CF_GUARD_OUT(cf_store_col_blob(r, 0, c->p.client_key, sizeof(c->p.client_key), &klen));
        CF_ENSURE_OUT(klen == sizeof(c->p.client_key), CF_E_STORE);
        c->p.has_client_key = true;
    } else if (rc != CF_E_NOT_FOUND) {
        goto out;
    }
    cf_store_rows_close(r);
    r = NULL;
    /* At most one write per key per CF_IAM_LAST_USED_GRANULARITY_S. */
    if (last_used == 0 || op->now - last_used >= CF_IAM_LAST_USED_GRANULARITY_S)
        CF_GUARD_OUT(cf_store_exec(s,
                                   "UPDATE iam_api_key SET last_used_at = ? WHERE id = ? AND (last_used_at IS "
                                   "NULL OR last_used_at <= ?)",
                                   CF_STORE_ARGS(cf_sv_int(op->now), cf_sv_text(c->key_id),
                                                 cf_sv_int(op->now - CF_IAM_LAST_USED_GRANULARITY_S)),
                                   NULL));
    /* Our own jti, so that the audit event can name the token it records. */
    CF_GUARD_OUT(cf_random(jti, sizeof(jti)));
    cf_hex_encode(jti, sizeof(jti), c->p.jti);
    CF_GUARD_OUT(iam_ring_mint(c->iam, &c->p, op->now, c->iam->token_ttl, &c->out->access_token, c->out->kid));
    c->out->expires_in = c->iam->token_ttl;
    /* The event is attributed to the principal that received the token. */
    op->event_actor = &c->p;
    iam_op_detail_str(op, "key_id", c->key_id);
    iam_op_detail_str(op, "kid", c->out->kid);
    iam_op_detail_str(op, "jti", c->p.jti);
    iam_op_detail_int(op, "exp", op->now + c->iam->token_ttl);
    rc = 0;
out:
    cf_store_rows_close(r);
    cf_wipe(got, sizeof(got));
    return rc;
}

void cf_iam_token_free(cf_iam_token *t)
{
    if (t == NULL)
        return;
    if (t->access_token != NULL)
        cf_freezero(t->access_token, strlen(t->access_token));
    memset(t, 0, sizeof(*t));
}

/* A refusal by the limiter: reported once per window and key id (a flood of
 * guesses must not become a flood of durable events), logged always. */
static int rate_limited(cf_iam *iam, const cf_iam_caller *who, const char *key_id, bool first, int rc)
{
    char res[IAM_RESOURCE_MAX];

    cf_log(CF_LOG_WARN, "iam.token.rate_limited", "key_id", key_id ? key_id : "(unknown)", NULL);
    if (!first)
        return rc;
    if (key_id == NULL || cf_fmt(res, sizeof(res), "api-key/%s", key_id) != 0)
        res[0] = '\0';
    return iam_audit_failure(iam->audit, iam->audit_arg, who, "iam.token.issue", NULL, res, rc,
                             key_id ? json_pack("{s:s}", "key_id", key_id) : NULL);
}

int cf_iam_token_issue(cf_iam *iam, const cf_iam_caller *who, const char *api_key, size_t len,
                       const char *tenant, cf_iam_token *ret, uint32_t *ret_retry_after)
{
    char key_id[CF_IAM_KEY_ID_LEN + 1];
    uint8_t *secret = NULL;
    cf_iam_token tok;
    token_ctx c;
    iam_op op = {.iam = iam, .who = who, .action = "iam.token.issue", .body = token_body, .arg = &c};
    cf_store *s = NULL;
    uint32_t retry = 0;
    bool first = false;
    int64_t now = iam_now(iam);
    int rc;

    memset(&tok, 0, sizeof(tok));
    memset(&c, 0, sizeof(c));
    op.now = now;
    op.audit = iam->audit;
    op.audit_arg = iam->audit_arg;
    if (tenant != NULL && !cf_iam_id_ok(tenant)) {
        rc = cf_err_set(CF_E_INVAL, "malformed tenant id");
        return iam_audit_failure(iam->audit, iam->audit_arg, who, op.action, NULL, NULL, rc, NULL);
    }
    secret = cf_secure_alloc(CF_IAM_APIKEY_SECRET_LEN);
    CF_ENSURE(secret != NULL, CF_E_NOMEM);
    rc = cf_iam_apikey_parse(api_key, len, key_id, secret);
    if (rc < 0) {
        /* Malformed keys share the unknown-id counter. */
        int lim = cf_iam_rl_check(&iam->rl, NULL, now, &retry, &first);
        if (lim < 0) {
            rc = rate_limited(iam, who, NULL, first, lim);
            goto out;
        }
        cf_iam_rl_fail(&iam->rl, NULL, now);
        rc = iam_audit_failure(iam->audit, iam->audit_arg, who, op.action, tenant, NULL, rc, NULL);
        goto out;
    }
    iam_op_set_resource(&op, "api-key/%s", key_id);
    rc = cf_iam_rl_check(&iam->rl, key_id, now, &retry, &first);
    if (rc < 0) {
        rc = rate_limited(iam, who, key_id, first, rc);
        goto out;
    }
    c.iam = iam;
    c.key_id = key_id;
    c.secret = secret;
    c.want_tenant = tenant;
    c.out = &tok;
    rc = iam_store_get(iam, &s);
    if (rc == 0)
        rc = iam_run(&op, s);
    iam_store_put(iam, s);
    if (rc == 0) {
        cf_iam_rl_success(&iam->rl, key_id);
        /* What cf_token_mint put in the token (iat = now, exp = now + ttl, our jti). */
        tok.claims = c.p;
        tok.claims.iat = now;
        tok.claims.exp = now + (int64_t)iam->token_ttl;
        *ret = tok;
        goto out;
    }
    cf_iam_token_free(&tok);
    if (c.auth_fail == 1) {
        int lim = cf_iam_rl_check(&iam->rl, NULL, now, &retry, &first);
        if (lim < 0) {
            rc = rate_limited(iam, who, NULL, first, lim);
            goto out;
        }
        cf_iam_rl_fail(&iam->rl, NULL, now);
    } else if (c.auth_fail == 2) {
        cf_iam_rl_fail(&iam->rl, key_id, now);
    }
    rc = iam_audit_failure(iam->audit, iam->audit_arg, who, op.action, op.tenant, op.resource, rc,
                           json_pack("{s:s}", "key_id", key_id));
out:
    cf_secure_free(secret);
    if (rc == CF_E_RATE_LIMITED && ret_retry_after != NULL)
        *ret_retry_after = retry;
    return rc;
}

/* ---- bootstrap ------------------------------------------------------------------------- */

typedef struct {
    const char *name;
    uint64_t ttl;
    char principal[CF_ID_MAX_LEN + 1];
    char key_id[CF_IAM_KEY_ID_LEN + 1];
    uint8_t hash[CF_IAM_APIKEY_HASH_LEN];
} boot_ctx;

static int boot_body(cf_store *s, iam_op *op)
{
    boot_ctx *c = op->arg;
    cf_store_rows *r = NULL;
    int64_t admins = 0;
    int rc;

    CF_GUARD(ensure_platform_tenant(s, op->now));
    CF_GUARD(cf_store_query_row(s,
                                "SELECT CAST(count(*) AS BIGINT) FROM iam_principal WHERE tenant = ? AND "
                                "status = 'active' AND (roles & ?) <> 0",
                                CF_STORE_ARGS(cf_sv_text(CF_PLATFORM_TENANT), cf_sv_int(CF_ROLE_PLATFORM_ADMIN)),
                                &r));
    rc = cf_store_col_i64(r, 0, &admins);
    cf_store_rows_close(r);
    CF_GUARD(rc);
    if (admins > 0)
        return cf_err_set(CF_E_EXISTS, "a platform admin already exists: bootstrap refused");
    rc = cf_store_exec(s,
                       "INSERT INTO iam_principal (id, tenant, kind, name, roles, status, created_at, "
                       "created_by) VALUES (?, ?, 'user', ?, ?, 'active', ?, 'bootstrap')",
                       CF_STORE_ARGS(cf_sv_text(c->principal), cf_sv_text(CF_PLATFORM_TENANT),
                                     cf_sv_text(c->name), cf_sv_int(CF_ROLE_PLATFORM_ADMIN), cf_sv_int(op->now)),
                       NULL);
    if (rc == CF_E_EXISTS)
        return cf_err_set(CF_E_EXISTS, "a platform principal named '%s' already exists", c->name);
    CF_GUARD(rc);
    CF_GUARD(insert_apikey(s, c->key_id, c->principal, c->hash, op->now, c->ttl));
    iam_op_set_tenant(op, CF_PLATFORM_TENANT);
    iam_op_set_resource(op, "principal/%s", c->principal);
    iam_op_detail_str(op, "key_id", c->key_id);
    iam_op_detail_str(op, "role", "platform-admin");
    return 0;
}

int cf_iam_bootstrap(const char *store_dsn, cf_iam_audit_fn audit, void *audit_arg, const char *name,
                     uint64_t ttl, int64_t now, cf_iam_bootstrap_result *ret)
{
    boot_ctx c;
    cf_iam_caller who = {.actor = iam_internal_actor()};
    iam_op op = {.who = &who, .action = "iam.bootstrap", .body = boot_body, .arg = &c, .audit = audit,
                 .audit_arg = audit_arg};
    cf_secret key = {0};
    cf_store *s = NULL;
    int rc;

    CF_ENSURE(store_dsn != NULL && audit != NULL && ret != NULL, CF_E_INVAL);
    memset(&c, 0, sizeof(c));
    c.name = name != NULL ? name : "admin";
    c.ttl = ttl != 0 ? ttl : CF_IAM_APIKEY_TTL_DEFAULT;
    op.now = now != 0 ? now : (int64_t)time(NULL);
    if (!cf_iam_name_ok(c.name))
        rc = cf_err_set(CF_E_INVAL, "admin name must be 1-%d bytes of printable UTF-8", CF_NAME_MAX_LEN);
    else if (c.ttl > CF_IAM_APIKEY_TTL_MAX)
        rc = cf_err_set(CF_E_RANGE, "API key ttl exceeds %llu seconds", (unsigned long long)CF_IAM_APIKEY_TTL_MAX);
    else
        rc = cf_iam_apikey_generate(c.key_id, &key, c.hash);
    random_id("p-", c.principal, sizeof(c.principal));
    if (rc == 0)
        rc = cf_store_open(store_dsn, &s);
    if (rc == 0)
        rc = iam_migrate(s);
    if (rc == 0)
        rc = iam_run(&op, s);
    cf_store_close(s);
    cf_wipe(c.hash, sizeof(c.hash));
    if (rc < 0) {
        cf_secret_free(&key);
        return iam_audit_failure(audit, audit_arg, &who, op.action, CF_PLATFORM_TENANT, NULL, rc, NULL);
    }
    memset(ret, 0, sizeof(*ret));
    memcpy(ret->principal, c.principal, sizeof(c.principal));
    memcpy(ret->key_id, c.key_id, sizeof(c.key_id));
    ret->expires_at = op.now + (int64_t)c.ttl;
    ret->api_key = key;
    return 0;
}
