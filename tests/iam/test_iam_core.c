/*
 * IAM core against a real SoftHSM2 token and a SQLite store in a temp dir,
 * with an injected clock: bootstrap, tenants, granting rules, API keys
 * (hash-only storage, expiry, revocation, last use), token claims incl. cnf,
 * client keys, signing-key rotation with overlap and retirement, the
 * failed-attempt limiter, fail-closed auditing.
 */
#include <ftw.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/err.h"
#include "base/json.h"
#include "base/parse.h"
#include "base/secmem.h"
#include "crypto/keys.h"
#include "iam/iam.h"
#include "spool/spool.h"
#include "store/store.h"
#include "test.h"

#define T0 1700000000LL

static char g_dir[64];
static char g_dsn[512];
static bool g_sqlite = true;
static cf_hsm *g_hsm;
static cf_iam *g_iam;
static int64_t g_now = T0;

static int64_t clock_fn(void *arg)
{
    (void)arg;
    return g_now;
}

/* ---- audit recorder ---- */

#define MAX_EV 4096
static struct {
    char action[64], outcome[16], actor[CF_ID_MAX_LEN + 1], tenant[CF_ID_MAX_LEN + 1];
    char *details; /* compact JSON or NULL */
} g_ev[MAX_EV];
static size_t g_nev;
static bool g_audit_fail;
static pthread_mutex_t g_ev_mu = PTHREAD_MUTEX_INITIALIZER;

static void cp(char *dst, size_t size, const char *src)
{
    size_t n = src ? strnlen(src, size - 1) : 0;
    if (n)
        memcpy(dst, src, n);
    dst[n] = 0;
}

static int audit_fn(void *arg, const void *ctx, const cf_principal *actor, const char *action, const char *tenant,
                    const char *resource, const char *outcome, json_t *details)
{
    (void)arg;
    (void)ctx;
    (void)resource;
    if (g_audit_fail) {
        json_decref(details);
        return CF_E_IO;
    }
    pthread_mutex_lock(&g_ev_mu);
    if (g_nev < MAX_EV) {
        cp(g_ev[g_nev].action, sizeof(g_ev[0].action), action);
        cp(g_ev[g_nev].outcome, sizeof(g_ev[0].outcome), outcome);
        cp(g_ev[g_nev].actor, sizeof(g_ev[0].actor), actor ? actor->sub : "");
        cp(g_ev[g_nev].tenant, sizeof(g_ev[0].tenant), tenant);
        g_ev[g_nev].details = details ? cf_json_dump(details) : NULL;
        g_nev++;
    }
    pthread_mutex_unlock(&g_ev_mu);
    json_decref(details);
    return 0;
}

/* Index of the last event with this action, or -1. */
static long last_ev(const char *action)
{
    for (size_t i = g_nev; i > 0; i--)
        if (strcmp(g_ev[i - 1].action, action) == 0)
            return (long)(i - 1);
    return -1;
}

static bool any_event_contains(const char *needle)
{
    for (size_t i = 0; i < g_nev; i++)
        if (g_ev[i].details != NULL && strstr(g_ev[i].details, needle) != NULL)
            return true;
    return false;
}

/* ---- helpers ---- */

static int rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(p);
}

static int open_iam(void)
{
    cf_iam_opts o = {.store_dsn = g_dsn, .hsm = g_hsm, .audit = audit_fn, .clock = clock_fn,
                     .token_ttl = 300, .rotate_every = 86400, .overlap = 3600};
    return cf_iam_open(&o, &g_iam);
}

static char g_admin_key[CF_IAM_APIKEY_LEN + 1];
static cf_principal g_admin;

/* API key -> verified principal of its token. */
static int login(const char *key, const char *tenant, cf_principal *ret)
{
    cf_iam_token t;
    cf_iam_caller who = {0};
    int rc = cf_iam_token_issue(g_iam, &who, key, strlen(key), tenant, &t, NULL);
    if (rc < 0)
        return rc;
    rc = cf_iam_verify(g_iam, t.access_token, strlen(t.access_token), ret);
    cf_iam_token_free(&t);
    return rc;
}

/* Creates a principal as actor, an API key for it (key_out: 65 bytes) and logs it in. */
static int mk_user(const cf_principal *actor, const char *tenant, const char *kind, const char *name, uint32_t roles,
                   cf_iam_principal *ret_p, char *key_out, cf_principal *ret_tok)
{
    cf_iam_caller who = {.actor = actor};
    cf_iam_principal p;
    cf_iam_apikey info;
    cf_secret key = {0};
    int rc;

    CF_GUARD(cf_iam_principal_create(g_iam, &who, tenant, kind, name, roles, &p));
    CF_GUARD(cf_iam_apikey_create(g_iam, &who, p.id, 0, &info, &key));
    memcpy(key_out, key.p, CF_IAM_APIKEY_LEN + 1);
    cf_secret_free(&key);
    rc = ret_tok != NULL ? login(key_out, NULL, ret_tok) : 0;
    if (rc == 0 && ret_p != NULL)
        *ret_p = p;
    return rc;
}

#define WHO(p) (&(cf_iam_caller){.actor = &(p)})

/* ---- tests ---- */

static void test_bootstrap(void)
{
    cf_iam_bootstrap_result r, r2;
    cf_store *s = NULL;
    cf_store_rows *rows = NULL;
    uint8_t stored[32], secret[32], want[32];
    char kid[17];
    size_t n = 0;

    T_OK(cf_iam_bootstrap(g_dsn, audit_fn, NULL, NULL, 0, g_now, &r));
    T_EQ(r.expires_at, g_now + (int64_t)CF_IAM_APIKEY_TTL_DEFAULT);
    T_EQ(strlen((const char *)r.api_key.p), CF_IAM_APIKEY_LEN);
    memcpy(g_admin_key, r.api_key.p, sizeof(g_admin_key));
    cf_secret_free(&r.api_key);
    T_ASSERT(last_ev("iam.bootstrap") >= 0);
    T_STREQ(g_ev[last_ev("iam.bootstrap")].outcome, "success");
    /* Only one bootstrap. */
    T_ERR(cf_iam_bootstrap(g_dsn, audit_fn, NULL, NULL, 0, g_now, &r2), CF_E_EXISTS);
    T_ASSERT(strstr(cf_err_detail(CF_E_EXISTS), "platform admin already exists") != NULL);
    T_STREQ(g_ev[last_ev("iam.bootstrap")].outcome, "failure");

    /* The store holds SHA-256 over the secret, never the key. */
    T_OK(cf_iam_apikey_parse(g_admin_key, CF_IAM_APIKEY_LEN, kid, secret));
    T_STREQ(kid, r.key_id);
    T_OK(cf_iam_apikey_hash(kid, secret, want));
    T_OK(cf_store_open(g_dsn, &s));
    T_OK(cf_store_query_row(s, "SELECT hash FROM iam_api_key WHERE id = ?", CF_STORE_ARGS(cf_sv_text(kid)), &rows));
    T_OK(cf_store_col_blob(rows, 0, stored, sizeof(stored), &n));
    cf_store_rows_close(rows);
    cf_store_close(s);
    T_EQ(n, 32);
    T_MEMEQ(stored, want, 32);

    T_OK(login(g_admin_key, NULL, &g_admin));
    T_STREQ(g_admin.tenant, "platform");
    T_STREQ(g_admin.sub, r.principal);
    T_EQ(g_admin.roles, CF_ROLE_PLATFORM_ADMIN);
    T_STREQ(g_admin.kind, "user");
}

/* Bootstrap as `coffer init` will do it: no service runtime, the ready-made
 * spool hook, a store of its own. */
static void test_bootstrap_spool_hook(void)
{
    char spooldir[128], dsn[160];
    cf_spool *sp = NULL;
    cf_iam_bootstrap_result r;

    T_OK(cf_fmt(spooldir, sizeof(spooldir), "%s/init-spool", g_dir));
    T_OK(cf_fmt(dsn, sizeof(dsn), "sqlite:%s/init.db", g_dir));
    T_OK(cf_spool_open(spooldir, &sp));
    T_OK(cf_iam_bootstrap(dsn, cf_iam_spool_audit, sp, "root-admin", 3600, g_now, &r));
    T_EQ(r.expires_at, g_now + 3600);
    cf_secret_free(&r.api_key);
    T_EQ(cf_spool_pending_count(sp), 1);
    T_ERR(cf_iam_bootstrap(dsn, cf_iam_spool_audit, sp, NULL, 0, g_now, &r), CF_E_EXISTS);
    T_EQ(cf_spool_pending_count(sp), 2); /* the refusal is recorded too */
    cf_spool_close(sp);
    T_ERR(cf_iam_bootstrap(dsn, cf_iam_spool_audit, NULL, NULL, 0, g_now, &r), CF_E_EXISTS);

    /* Fail closed: no durable event, no admin. */
    T_OK(cf_fmt(dsn, sizeof(dsn), "sqlite:%s/init2.db", g_dir));
    g_audit_fail = true;
    T_ERR(cf_iam_bootstrap(dsn, audit_fn, NULL, NULL, 0, g_now, &r), CF_E_UNAVAILABLE);
    g_audit_fail = false;
    T_OK(cf_iam_bootstrap(dsn, audit_fn, NULL, NULL, 0, g_now, &r));
    cf_secret_free(&r.api_key);
}

static void test_secrets_never_stored_or_audited(void)
{
    size_t len = 0;
    unsigned char *db;
    char path[160];
    const char *secret_part = g_admin_key + 21; /* the base64url secret */

    T_ASSERT(!any_event_contains(secret_part));
    if (!g_sqlite)
        return;
    T_OK(cf_fmt(path, sizeof(path), "%s/iam.db", g_dir));
    db = t_read_file(path, &len);
    T_ASSERT(memmem(db, len, secret_part, strlen(secret_part)) == NULL);
    free(db);
    T_OK(cf_fmt(path, sizeof(path), "%s/iam.db-wal", g_dir));
    if (access(path, F_OK) == 0) {
        db = t_read_file(path, &len);
        T_ASSERT(memmem(db, len, secret_part, strlen(secret_part)) == NULL);
        free(db);
    }
}

static void test_tenants(void)
{
    cf_iam_tenant t, list[8];
    size_t n = 0;
    cf_principal ta, cl;
    char k1[65], k2[65];

    T_OK(cf_iam_tenant_create(g_iam, WHO(g_admin), "acme", "Acme Corp", &t));
    T_STREQ(t.id, "acme");
    T_STREQ(t.name, "Acme Corp");
    T_ASSERT(t.active);
    T_EQ(t.created_at, g_now);
    T_ERR(cf_iam_tenant_create(g_iam, WHO(g_admin), "acme", "again", &t), CF_E_EXISTS);
    T_ERR(cf_iam_tenant_create(g_iam, WHO(g_admin), "platform", "x", &t), CF_E_EXISTS);
    T_ERR(cf_iam_tenant_create(g_iam, WHO(g_admin), "a/b", "x", &t), CF_E_INVAL);
    T_ERR(cf_iam_tenant_create(g_iam, WHO(g_admin), "ok", "", &t), CF_E_INVAL);
    T_OK(cf_iam_tenant_create(g_iam, WHO(g_admin), NULL, "Generated", &t));
    T_ASSERT(strncmp(t.id, "t-", 2) == 0 && strlen(t.id) == 18);
    T_OK(cf_iam_tenant_create(g_iam, WHO(g_admin), "globex", "Globex", &t));
    T_OK(cf_iam_tenant_list(g_iam, WHO(g_admin), NULL, list, 8, &n));
    T_EQ(n, 4); /* acme, globex, platform, t-... (sorted) */
    T_STREQ(list[0].id, "acme");
    T_STREQ(list[2].id, "platform");
    T_OK(cf_iam_tenant_list(g_iam, WHO(g_admin), "globex", list, 8, &n));
    T_EQ(n, 2);
    T_STREQ(list[0].id, "platform");
    T_ERR(cf_iam_tenant_list(g_iam, WHO(g_admin), NULL, list, 0, &n), CF_E_INVAL);

    /* A tenant admin sees its own tenant only, cannot create or list tenants. */
    T_OK(mk_user(&g_admin, "acme", "user", "acme-admin", CF_ROLE_TENANT_ADMIN, NULL, k1, &ta));
    T_OK(cf_iam_tenant_get(g_iam, WHO(ta), "acme", &t));
    T_STREQ(t.name, "Acme Corp");
    T_ERR(cf_iam_tenant_get(g_iam, WHO(ta), "globex", &t), CF_E_FORBIDDEN);
    T_ERR(cf_iam_tenant_create(g_iam, WHO(ta), "evil", "x", &t), CF_E_FORBIDDEN);
    T_ERR(cf_iam_tenant_list(g_iam, WHO(ta), NULL, list, 8, &n), CF_E_FORBIDDEN);
    T_ERR(cf_iam_tenant_get(g_iam, WHO(g_admin), "nope", &t), CF_E_NOT_FOUND);

    /* Disabling a tenant: no new tokens for its principals, no new principals. */
    T_OK(mk_user(&g_admin, "globex", "client", "gx-client", CF_ROLE_CLIENT, NULL, k2, &cl));
    T_ERR(cf_iam_tenant_disable(g_iam, WHO(ta), "globex", NULL), CF_E_FORBIDDEN);
    T_ERR(cf_iam_tenant_disable(g_iam, WHO(g_admin), "platform", NULL), CF_E_CONFLICT);
    T_OK(cf_iam_tenant_disable(g_iam, WHO(g_admin), "globex", "contract ended"));
    T_ERR(cf_iam_tenant_disable(g_iam, WHO(g_admin), "globex", NULL), CF_E_CONFLICT);
    T_OK(cf_iam_tenant_get(g_iam, WHO(g_admin), "globex", &t));
    T_ASSERT(!t.active);
    T_EQ(t.disabled_at, g_now);
    T_ERR(login(k2, NULL, &cl), CF_E_FORBIDDEN);
    T_ASSERT(strstr(cf_err_detail(CF_E_FORBIDDEN), "tenant 'globex' is disabled") != NULL);
    cf_iam_principal p;
    T_ERR(cf_iam_principal_create(g_iam, WHO(g_admin), "globex", "user", "late", CF_ROLE_CLIENT, &p), CF_E_CONFLICT);
}

static void test_principals_and_granting(void)
{
    cf_principal ta, dev, op;
    cf_iam_principal p, list[16];
    size_t n = 0;
    char k[65];

    T_OK(login(g_admin_key, NULL, &g_admin));
    T_OK(mk_user(&g_admin, "acme", "user", "acme-admin2", CF_ROLE_TENANT_ADMIN, NULL, k, &ta));
    /* tenant-admin grants tenant roles in its tenant */
    T_OK(mk_user(&ta, "acme", "developer", "dev1", CF_ROLE_DEVELOPER | CF_ROLE_AUDITOR, &p, k, &dev));
    T_STREQ(p.tenant, "acme");
    T_STREQ(p.kind, "developer");
    T_EQ(p.roles, CF_ROLE_DEVELOPER | CF_ROLE_AUDITOR);
    T_ASSERT(strncmp(p.id, "p-", 2) == 0);
    T_EQ(dev.roles, CF_ROLE_DEVELOPER | CF_ROLE_AUDITOR);
    T_STREQ(dev.kind, "developer");
    T_OK(cf_iam_principal_create(g_iam, WHO(ta), "acme", "user", "admin3", CF_ROLE_TENANT_ADMIN, &p));
    /* ...but not platform roles, not in another tenant, not on the platform */
    T_ERR(cf_iam_principal_create(g_iam, WHO(ta), "acme", "user", "x1", CF_ROLE_PLATFORM_ADMIN, &p), CF_E_FORBIDDEN);
    T_ERR(cf_iam_principal_create(g_iam, WHO(ta), "acme", "user", "x2", CF_ROLE_OPERATOR, &p), CF_E_FORBIDDEN);
    T_ERR(cf_iam_principal_create(g_iam, WHO(ta), "t-other", "user", "x3", CF_ROLE_CLIENT, &p), CF_E_FORBIDDEN);
    T_ERR(cf_iam_principal_create(g_iam, WHO(ta), "platform", "user", "x4", CF_ROLE_AUDITOR, &p), CF_E_FORBIDDEN);
    /* a developer cannot manage principals */
    T_ERR(cf_iam_principal_create(g_iam, WHO(dev), "acme", "user", "x5", CF_ROLE_CLIENT, &p), CF_E_FORBIDDEN);
    /* platform-admin: platform roles on the platform only */
    T_OK(mk_user(&g_admin, "platform", "service", "ops", CF_ROLE_OPERATOR, &p, k, &op));
    T_STREQ(op.tenant, "platform");
    T_ERR(cf_iam_principal_create(g_iam, WHO(g_admin), "platform", "user", "x6", CF_ROLE_CLIENT, &p), CF_E_FORBIDDEN);
    T_ERR(cf_iam_principal_create(g_iam, WHO(op), "platform", "user", "x7", CF_ROLE_OPERATOR, &p), CF_E_FORBIDDEN);
    /* validation, uniqueness, unknown tenant: nothing created */
    T_ERR(cf_iam_principal_create(g_iam, WHO(g_admin), "acme", "robot", "x8", CF_ROLE_CLIENT, &p), CF_E_INVAL);
    T_ERR(cf_iam_principal_create(g_iam, WHO(g_admin), "acme", "user", "dev1", CF_ROLE_CLIENT, &p), CF_E_EXISTS);
    T_ERR(cf_iam_principal_create(g_iam, WHO(g_admin), "nope", "user", "x9", CF_ROLE_CLIENT, &p), CF_E_NOT_FOUND);
    T_ERR(cf_iam_principal_create(g_iam, WHO(g_admin), "acme", "user", "x10", 0, &p), CF_E_INVAL);
    /* listing: scoped */
    T_OK(cf_iam_principal_list(g_iam, WHO(ta), "acme", NULL, list, 16, &n));
    for (size_t i = 0; i < n; i++) {
        T_STREQ(list[i].tenant, "acme");
        T_ASSERT(strcmp(list[i].name, "x8") != 0 && strcmp(list[i].name, "x9") != 0);
    }
    T_ASSERT(n >= 4);
    T_ERR(cf_iam_principal_list(g_iam, WHO(ta), "platform", NULL, list, 16, &n), CF_E_FORBIDDEN);
    T_OK(cf_iam_principal_list(g_iam, WHO(g_admin), "platform", NULL, list, 16, &n));
    T_EQ(n, 2); /* admin, ops */
    /* get: scoped */
    T_OK(cf_iam_principal_get(g_iam, WHO(ta), dev.sub, &p));
    T_STREQ(p.name, "dev1");
    T_ERR(cf_iam_principal_get(g_iam, WHO(ta), op.sub, &p), CF_E_FORBIDDEN);
    T_ERR(cf_iam_principal_get(g_iam, WHO(dev), dev.sub, &p), CF_E_FORBIDDEN);
    T_ERR(cf_iam_principal_get(g_iam, WHO(g_admin), "p-nope", &p), CF_E_NOT_FOUND);
}

static void test_apikeys(void)
{
    cf_principal ta, cl, tok;
    cf_iam_principal p;
    cf_iam_apikey info, list[8];
    cf_secret key = {0};
    char k[65], k2[65], bad[65];
    size_t n = 0;
    long e;

    T_OK(login(g_admin_key, NULL, &g_admin));
    T_OK(mk_user(&g_admin, "acme", "user", "keys-admin", CF_ROLE_TENANT_ADMIN, NULL, k, &ta));
    T_OK(mk_user(&ta, "acme", "client", "keys-client", CF_ROLE_CLIENT, &p, k, &cl));

    /* last_used_at: set on first use, not rewritten within a minute */
    T_OK(cf_iam_apikey_list(g_iam, WHO(ta), p.id, list, 8, &n));
    T_EQ(n, 1);
    T_EQ(list[0].last_used_at, g_now);
    T_EQ(list[0].expires_at, g_now + (int64_t)CF_IAM_APIKEY_TTL_DEFAULT);
    T_EQ(list[0].revoked_at, 0);
    g_now += 30;
    T_OK(login(k, NULL, &tok));
    T_OK(cf_iam_apikey_list(g_iam, WHO(ta), p.id, list, 8, &n));
    T_EQ(list[0].last_used_at, g_now - 30);
    g_now += 31;
    T_OK(login(k, NULL, &tok));
    T_OK(cf_iam_apikey_list(g_iam, WHO(ta), p.id, list, 8, &n));
    T_EQ(list[0].last_used_at, g_now);

    /* tenant given: must match */
    T_OK(login(k, "acme", &tok));
    T_ERR(login(k, "t-other", &tok), CF_E_FORBIDDEN);
    T_ASSERT(strstr(cf_err_detail(CF_E_FORBIDDEN), "does not belong to tenant") != NULL);

    /* wrong secret, unknown id, malformed: one message, no oracle */
    memcpy(bad, k, sizeof(bad));
    bad[30] = bad[30] == 'A' ? 'B' : 'A';
    T_ERR(login(bad, NULL, &tok), CF_E_UNAUTHENTICATED);
    T_STREQ(cf_err_detail(CF_E_UNAUTHENTICATED), "invalid API key");
    memcpy(bad, k, sizeof(bad));
    bad[5] = bad[5] == 'a' ? 'b' : 'a';
    T_ERR(login(bad, NULL, &tok), CF_E_UNAUTHENTICATED);
    T_STREQ(cf_err_detail(CF_E_UNAUTHENTICATED), "invalid API key");
    T_ERR(login("cfk_nope", NULL, &tok), CF_E_UNAUTHENTICATED);
    e = last_ev("iam.token.issue");
    T_STREQ(g_ev[e].outcome, "failure");
    T_ASSERT(g_ev[e].details != NULL && strstr(g_ev[e].details, "malformed") != NULL);

    /* expiry */
    T_OK(cf_iam_apikey_create(g_iam, WHO(ta), p.id, 100, &info, &key));
    memcpy(k2, key.p, sizeof(k2));
    cf_secret_free(&key);
    T_EQ(info.expires_at, g_now + 100);
    T_OK(login(k2, NULL, &tok));
    g_now += 100;
    T_ERR(login(k2, NULL, &tok), CF_E_EXPIRED);
    T_ASSERT(strstr(cf_err_detail(CF_E_EXPIRED), info.id) != NULL);
    T_ERR(cf_iam_apikey_create(g_iam, WHO(ta), p.id, CF_IAM_APIKEY_TTL_MAX + 1, &info, &key), CF_E_RANGE);
    T_ASSERT(key.p == NULL);

    /* revocation: immediate for new tokens; the issued token stays valid until exp */
    cf_iam_token t;
    cf_iam_caller anon = {0};
    T_OK(cf_iam_token_issue(g_iam, &anon, k, strlen(k), NULL, &t, NULL));
    T_OK(cf_iam_apikey_list(g_iam, WHO(ta), p.id, list, 8, &n));
    T_EQ(n, 2);
    T_ERR(cf_iam_apikey_revoke(g_iam, WHO(cl), list[0].id, NULL), CF_E_FORBIDDEN);
    T_OK(cf_iam_apikey_revoke(g_iam, WHO(ta), list[0].id, "rotated"));
    T_ERR(cf_iam_apikey_revoke(g_iam, WHO(ta), list[0].id, NULL), CF_E_CONFLICT);
    T_ERR(cf_iam_apikey_revoke(g_iam, WHO(ta), "0123456789abcdef", NULL), CF_E_NOT_FOUND);
    T_ERR(cf_iam_apikey_revoke(g_iam, WHO(ta), "XYZ", NULL), CF_E_INVAL);
    T_ERR(login(k, NULL, &tok), CF_E_REVOKED);
    T_ASSERT(strstr(cf_err_detail(CF_E_REVOKED), "was revoked") != NULL);
    T_OK(cf_iam_verify(g_iam, t.access_token, strlen(t.access_token), &tok));
    g_now += 300 + 29; /* valid while now - 30 s skew < exp (RFC 7519 §4.1.4) */
    T_OK(cf_iam_verify(g_iam, t.access_token, strlen(t.access_token), &tok));
    g_now += 1;
    T_ERR(cf_iam_verify(g_iam, t.access_token, strlen(t.access_token), &tok), CF_E_EXPIRED);
    cf_iam_token_free(&t);

    /* other tenants' keys are out of reach */
    cf_principal ta2;
    char k3[65];
    cf_iam_tenant tt;
    T_OK(login(g_admin_key, NULL, &g_admin));
    T_OK(cf_iam_tenant_create(g_iam, WHO(g_admin), "initech", "Initech", &tt));
    T_OK(mk_user(&g_admin, "initech", "user", "i-admin", CF_ROLE_TENANT_ADMIN, NULL, k3, &ta2));
    T_ERR(cf_iam_apikey_create(g_iam, WHO(ta2), p.id, 0, &info, &key), CF_E_FORBIDDEN);
    T_ERR(cf_iam_apikey_list(g_iam, WHO(ta2), p.id, list, 8, &n), CF_E_FORBIDDEN);
    T_ERR(cf_iam_apikey_revoke(g_iam, WHO(ta2), list[1].id, NULL), CF_E_FORBIDDEN);

    /* disabling a principal stops its tokens; nobody disables itself */
    T_ERR(cf_iam_principal_disable(g_iam, WHO(ta), ta.sub, NULL), CF_E_CONFLICT);
    T_ERR(cf_iam_principal_disable(g_iam, WHO(ta2), cl.sub, NULL), CF_E_FORBIDDEN);
    T_OK(cf_iam_apikey_create(g_iam, WHO(ta), p.id, 0, &info, &key));
    memcpy(k2, key.p, sizeof(k2));
    cf_secret_free(&key);
    T_OK(cf_iam_principal_disable(g_iam, WHO(ta), cl.sub, "left"));
    T_ERR(login(k2, NULL, &tok), CF_E_FORBIDDEN);
    T_ASSERT(strstr(cf_err_detail(CF_E_FORBIDDEN), "is disabled") != NULL);
    T_ERR(cf_iam_apikey_create(g_iam, WHO(ta), p.id, 0, &info, &key), CF_E_CONFLICT);
    T_ERR(cf_iam_principal_disable(g_iam, WHO(ta), cl.sub, NULL), CF_E_CONFLICT);
    T_ASSERT(!any_event_contains(k2 + 21));
    T_ASSERT(!any_event_contains(k + 21));
}

static void test_disabled_actor_refused_at_once(void)
{
    cf_principal ta, ta_b;
    cf_iam_tenant t;
    char k[65], kb[65];

    T_OK(login(g_admin_key, NULL, &g_admin));
    T_OK(mk_user(&g_admin, "acme", "user", "soon-gone", CF_ROLE_TENANT_ADMIN, NULL, k, &ta));
    T_OK(mk_user(&g_admin, "acme", "user", "stays", CF_ROLE_TENANT_ADMIN, NULL, kb, &ta_b));
    T_OK(cf_iam_tenant_get(g_iam, WHO(ta), "acme", &t));
    T_OK(cf_iam_principal_disable(g_iam, WHO(ta_b), ta.sub, NULL));
    /* The token still verifies (other services honour it until exp)... */
    T_OK(login(kb, NULL, &ta_b));
    /* ...but the IAM's own management API refuses the disabled principal now. */
    T_ERR(cf_iam_tenant_get(g_iam, WHO(ta), "acme", &t), CF_E_FORBIDDEN);
    T_ASSERT(strstr(cf_err_detail(CF_E_FORBIDDEN), "is disabled") != NULL);
}

static void test_client_keys_and_cnf(void)
{
    cf_principal ta, cl, cl2, tok;
    cf_iam_principal p;
    cf_key *k = NULL;
    uint8_t pub[32], pub2[32], zero[32] = {0};
    size_t n = 0;
    char key[65], key2[65], kt[65];
    cf_jwks *jwks = NULL;
    char *jwks_json = NULL;
    cf_iam_token t;
    cf_iam_caller anon = {0};

    T_OK(login(g_admin_key, NULL, &g_admin));
    T_OK(mk_user(&g_admin, "acme", "user", "ck-admin", CF_ROLE_TENANT_ADMIN, NULL, kt, &ta));
    T_OK(mk_user(&ta, "acme", "client", "ck-client", CF_ROLE_CLIENT, &p, key, &cl));
    T_OK(mk_user(&ta, "acme", "client", "ck-client2", CF_ROLE_CLIENT, NULL, key2, &cl2));
    T_ASSERT(!cl.has_client_key);
    T_OK(cf_key_generate(CF_KEY_X25519, &k));
    T_OK(cf_key_export_public(k, pub, sizeof(pub), &n));
    cf_key_free(k);
    T_OK(cf_key_generate(CF_KEY_X25519, &k));
    T_OK(cf_key_export_public(k, pub2, sizeof(pub2), &n));
    cf_key_free(k);

    /* self: yes; another client: no; tenant admin: yes; platform admin: no (no permission) */
    T_OK(cf_iam_clientkey_register(g_iam, WHO(cl), cl.sub, pub, 32));
    T_ERR(cf_iam_clientkey_register(g_iam, WHO(cl2), cl.sub, pub2, 32), CF_E_FORBIDDEN);
    T_ASSERT(strstr(cf_err_detail(CF_E_FORBIDDEN), "only for itself") != NULL);
    T_ERR(cf_iam_clientkey_register(g_iam, WHO(g_admin), cl.sub, pub2, 32), CF_E_FORBIDDEN);
    T_ERR(cf_iam_clientkey_register(g_iam, WHO(cl), cl.sub, zero, 32), CF_E_INVAL);
    T_ERR(cf_iam_clientkey_register(g_iam, WHO(cl), cl.sub, pub, 31), CF_E_INVAL);

    /* the token carries cnf.x25519 = the registered key; verify against the served JWKS */
    T_OK(cf_iam_token_issue(g_iam, &anon, key, strlen(key), NULL, &t, NULL));
    T_OK(cf_iam_jwks_json(g_iam, &jwks_json));
    T_OK(cf_jwks_parse(jwks_json, strlen(jwks_json), &jwks));
    T_OK(cf_token_verify(t.access_token, strlen(t.access_token), jwks, g_now, &tok));
    T_ASSERT(tok.has_client_key);
    T_MEMEQ(tok.client_key, pub, 32);
    T_STREQ(tok.sub, cl.sub);
    T_STREQ(tok.tenant, "acme");
    T_STREQ(tok.kind, "client");
    T_EQ(tok.roles, CF_ROLE_CLIENT);
    T_EQ(tok.iat, g_now);
    T_EQ(tok.exp, g_now + 300);
    T_EQ(t.expires_in, 300);
    T_EQ(strlen(tok.jti), 32);
    T_STREQ(t.claims.jti, tok.jti);
    T_EQ(t.claims.iat, tok.iat);
    T_EQ(t.claims.exp, tok.exp);
    T_STREQ(t.claims.sub, tok.sub);
    T_EQ(t.claims.roles, tok.roles);
    T_ASSERT(t.claims.has_client_key && memcmp(t.claims.client_key, pub, 32) == 0);
    /* the audit event names the token's jti and the key id, never the token */
    long e = last_ev("iam.token.issue");
    T_STREQ(g_ev[e].outcome, "success");
    T_STREQ(g_ev[e].actor, cl.sub);
    T_ASSERT(strstr(g_ev[e].details, tok.jti) != NULL);
    T_ASSERT(!any_event_contains(t.access_token));
    /* expired per the verifier after exp + 30 s skew */
    T_ERR(cf_token_verify(t.access_token, strlen(t.access_token), jwks, g_now + 331, &tok), CF_E_EXPIRED);
    cf_iam_token_free(&t);

    /* the tenant admin replaces it: one active key, the new one in new tokens */
    T_OK(cf_iam_clientkey_register(g_iam, WHO(ta), cl.sub, pub2, 32));
    T_OK(login(key, NULL, &tok));
    T_ASSERT(tok.has_client_key);
    T_MEMEQ(tok.client_key, pub2, 32);
    T_OK(cf_iam_principal_get(g_iam, WHO(ta), cl.sub, &p));
    T_ASSERT(p.has_client_key);
    T_MEMEQ(p.client_key, pub2, 32);
    /* a principal without a client key: no cnf */
    T_OK(login(key2, NULL, &tok));
    T_ASSERT(!tok.has_client_key);
    cf_jwks_free(jwks);
    free(jwks_json);
}

static int jwks_of(cf_jwks **ret)
{
    char *s = NULL;
    int rc;

    CF_GUARD(cf_iam_jwks_json(g_iam, &s));
    rc = cf_jwks_parse(s, strlen(s), ret);
    free(s);
    return rc;
}

static void test_rotation_overlap(void)
{
    cf_principal tok, dev;
    cf_iam_token t1, t2;
    cf_iam_caller anon = {0};
    cf_jwks *j = NULL;
    const cf_key *found = NULL;
    char k1[CF_JWK_KID_MAX_LEN + 1], k2[CF_JWK_KID_MAX_LEN + 1], k3[CF_JWK_KID_MAX_LEN + 1], dk[65];
    int64_t t_rot;
    bool rotated = true;
    cf_store *s = NULL;
    cf_store_rows *r = NULL;
    bool null = false;

    T_OK(login(g_admin_key, NULL, &g_admin));
    T_OK(mk_user(&g_admin, "acme", "developer", "rot-dev", CF_ROLE_DEVELOPER, NULL, dk, &dev));
    T_OK(cf_iam_signing_current(g_iam, k1));
    T_OK(cf_iam_token_issue(g_iam, &anon, g_admin_key, CF_IAM_APIKEY_LEN, NULL, &t1, NULL));
    T_STREQ(t1.kid, k1);

    /* only tenant.manage on the platform may rotate */
    T_ERR(cf_iam_signing_rotate(g_iam, WHO(dev), k2), CF_E_FORBIDDEN);
    T_OK(cf_iam_signing_current(g_iam, k2));
    T_STREQ(k2, k1);

    t_rot = g_now;
    T_OK(cf_iam_signing_rotate(g_iam, WHO(g_admin), k2));
    T_ASSERT(strcmp(k1, k2) != 0);
    T_OK(cf_iam_signing_current(g_iam, k3));
    T_STREQ(k3, k2);
    /* overlap: both published; the old token verifies against the served JWKS */
    T_OK(jwks_of(&j));
    T_EQ(cf_jwks_count(j), 2);
    T_OK(cf_jwks_find(j, k1, &found));
    T_OK(cf_jwks_find(j, k2, &found));
    T_OK(cf_token_verify(t1.access_token, strlen(t1.access_token), j, g_now, &tok));
    cf_jwks_free(j);
    j = NULL;
    T_OK(cf_iam_token_issue(g_iam, &anon, g_admin_key, CF_IAM_APIKEY_LEN, NULL, &t2, NULL));
    T_STREQ(t2.kid, k2);

    /* maintenance before the end of the overlap changes nothing */
    g_now = t_rot + 3600 - 1;
    T_OK(cf_iam_signing_maintain(g_iam, &rotated));
    T_ASSERT(!rotated);
    T_OK(jwks_of(&j));
    T_EQ(cf_jwks_count(j), 2);
    cf_jwks_free(j);
    j = NULL;

    /* after the overlap: retired, unpublished, private key deleted */
    g_now = t_rot + 3600;
    T_OK(cf_iam_signing_maintain(g_iam, &rotated));
    T_ASSERT(!rotated);
    T_OK(jwks_of(&j));
    T_EQ(cf_jwks_count(j), 1);
    T_ERR(cf_jwks_find(j, k1, &found), CF_E_NOT_FOUND);
    /* the old token no longer verifies against the served JWKS, even at its own time */
    T_ERR(cf_token_verify(t1.access_token, strlen(t1.access_token), j, t_rot, &tok), CF_E_UNAUTHENTICATED);
    T_ASSERT(strstr(cf_err_detail(CF_E_UNAUTHENTICATED), "kid") != NULL);
    T_OK(cf_token_verify(t2.access_token, strlen(t2.access_token), j, t_rot, &tok));
    cf_jwks_free(j);
    j = NULL;
    T_OK(cf_store_open(g_dsn, &s));
    T_OK(cf_store_query_row(s, "SELECT wrapped, status FROM iam_signing_key WHERE kid = ?",
                            CF_STORE_ARGS(cf_sv_text(k1)), &r));
    T_OK(cf_store_col_is_null(r, 0, &null));
    T_ASSERT(null);
    cf_store_rows_close(r);
    cf_store_close(s);
    T_ASSERT(last_ev("iam.signing_key.retire") >= 0);

    /* automatic rotation when due (rotate_every = 1 day), once */
    g_now = t_rot + 86400;
    T_OK(cf_iam_signing_maintain(g_iam, &rotated));
    T_ASSERT(rotated);
    T_OK(cf_iam_signing_current(g_iam, k3));
    T_ASSERT(strcmp(k3, k2) != 0);
    T_OK(cf_iam_signing_maintain(g_iam, &rotated));
    T_ASSERT(!rotated);

    /* bounded: at most CF_IAM_SIGNING_KEYS_MAX published keys */
    T_OK(login(g_admin_key, NULL, &g_admin));
    for (int i = 0; i < CF_IAM_SIGNING_KEYS_MAX - 2; i++)
        T_OK(cf_iam_signing_rotate(g_iam, WHO(g_admin), k3));
    T_ERR(cf_iam_signing_rotate(g_iam, WHO(g_admin), k3), CF_E_CONFLICT);
    T_OK(jwks_of(&j));
    T_EQ(cf_jwks_count(j), CF_IAM_SIGNING_KEYS_MAX);
    cf_jwks_free(j);
    g_now += 3600;
    T_OK(cf_iam_signing_maintain(g_iam, &rotated));
    T_OK(jwks_of(&j));
    T_EQ(cf_jwks_count(j), 1);
    cf_jwks_free(j);
    cf_iam_token_free(&t1);
    cf_iam_token_free(&t2);
}

static void test_keys_survive_restart(void)
{
    char kid[CF_JWK_KID_MAX_LEN + 1], kid2[CF_JWK_KID_MAX_LEN + 1];
    cf_principal p;

    T_OK(cf_iam_signing_current(g_iam, kid));
    cf_iam_close(g_iam);
    g_iam = NULL;
    T_OK(open_iam());
    T_OK(cf_iam_signing_current(g_iam, kid2));
    T_STREQ(kid, kid2); /* unwrapped from the store under the same HSM master key */
    T_OK(login(g_admin_key, NULL, &p));
}

static void test_rate_limit(void)
{
    cf_principal tok;
    cf_iam_token t;
    cf_iam_caller anon = {0};
    char bad[65];
    uint32_t retry = 0;
    size_t before;

    memcpy(bad, g_admin_key, sizeof(bad));
    bad[40] = bad[40] == 'A' ? 'B' : 'A';
    for (int i = 0; i < CF_IAM_RL_MAX_FAILS; i++)
        T_ERR(login(bad, NULL, &tok), CF_E_UNAUTHENTICATED);
    /* now even the right secret is refused for this key id until the window ends */
    T_ERR(cf_iam_token_issue(g_iam, &anon, g_admin_key, CF_IAM_APIKEY_LEN, NULL, &t, &retry), CF_E_RATE_LIMITED);
    T_ASSERT(retry > 0 && retry <= CF_IAM_RL_WINDOW_S);
    /* a flood is reported once, not once per attempt */
    before = g_nev;
    for (int i = 0; i < 20; i++)
        T_ERR(login(bad, NULL, &tok), CF_E_RATE_LIMITED);
    T_EQ(g_nev, before);
    g_now += CF_IAM_RL_WINDOW_S;
    T_OK(login(g_admin_key, NULL, &tok));

    /* unknown ids share one counter that never locks out real keys */
    for (int i = 0; i < CF_IAM_RL_UNKNOWN_MAX; i++)
        T_ERR(login("cfk_0000000000000000_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", NULL, &tok),
              CF_E_UNAUTHENTICATED);
    T_ERR(login("cfk_0000000000000001_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", NULL, &tok), CF_E_RATE_LIMITED);
    T_ERR(login("garbage", NULL, &tok), CF_E_RATE_LIMITED);
    T_OK(login(g_admin_key, NULL, &tok));
    g_now += CF_IAM_RL_WINDOW_S;
}

static void test_audit_fail_closed(void)
{
    cf_iam_tenant t;
    cf_iam_token tk;
    cf_iam_caller anon = {0};

    T_OK(login(g_admin_key, NULL, &g_admin));
    g_audit_fail = true;
    T_ERR(cf_iam_tenant_create(g_iam, WHO(g_admin), "audit-less", "x", &t), CF_E_UNAVAILABLE);
    T_ERR(cf_iam_token_issue(g_iam, &anon, g_admin_key, CF_IAM_APIKEY_LEN, NULL, &tk, NULL), CF_E_UNAVAILABLE);
    g_audit_fail = false;
    /* nothing was committed */
    T_ERR(cf_iam_tenant_get(g_iam, WHO(g_admin), "audit-less", &t), CF_E_NOT_FOUND);
}

/* Several threads exchange keys and verify tokens while the key is rotated:
 * no failure, every token verifies (the sanitizer build checks the locking). */
#define CONC_THREADS 4
#define CONC_ROUNDS 15
static int conc_errors;
static pthread_mutex_t conc_mu = PTHREAD_MUTEX_INITIALIZER;

static void *conc_main(void *arg)
{
    (void)arg;
    for (int i = 0; i < CONC_ROUNDS; i++) {
        cf_principal p;
        if (login(g_admin_key, NULL, &p) != 0 || p.roles != CF_ROLE_PLATFORM_ADMIN) {
            pthread_mutex_lock(&conc_mu);
            conc_errors++;
            pthread_mutex_unlock(&conc_mu);
        }
    }
    return NULL;
}

static void test_concurrent_tokens(void)
{
    pthread_t th[CONC_THREADS];
    char kid[CF_JWK_KID_MAX_LEN + 1];
    size_t before = g_nev;

    T_OK(login(g_admin_key, NULL, &g_admin));
    for (int i = 0; i < CONC_THREADS; i++)
        T_ASSERT(pthread_create(&th[i], NULL, conc_main, NULL) == 0);
    T_OK(cf_iam_signing_rotate(g_iam, WHO(g_admin), kid));
    for (int i = 0; i < CONC_THREADS; i++)
        pthread_join(th[i], NULL);
    T_EQ(conc_errors, 0);
    T_ASSERT(g_nev - before >= CONC_THREADS * CONC_ROUNDS + 1);
}

static void test_open_validation(void)
{
    cf_iam *x = NULL;
    cf_iam_opts o = {.store_dsn = g_dsn, .hsm = g_hsm, .audit = audit_fn};

    o.token_ttl = 3601;
    T_ERR(cf_iam_open(&o, &x), CF_E_CONFIG);
    o.token_ttl = 300;
    o.overlap = 300; /* shorter than a token's life */
    T_ERR(cf_iam_open(&o, &x), CF_E_CONFIG);
    o.overlap = 7200;
    o.rotate_every = 3600; /* not longer than the overlap */
    T_ERR(cf_iam_open(&o, &x), CF_E_CONFIG);
    o.rotate_every = 0;
    o.store_dsn = "sqlite::memory:";
    T_ERR(cf_iam_open(&o, &x), CF_E_CONFIG);
    o.store_dsn = g_dsn;
    o.audit = NULL;
    T_ERR(cf_iam_open(&o, &x), CF_E_INVAL);
    T_ASSERT(x == NULL);
}

/* PostgreSQL: the suite runs again in a schema of its own inside the database
 * that COFFER_IAM_TEST_PG_DSN names (a libpq URI, e.g. a throwaway server as in
 * tests/store). */
static char g_pg_schema[64];

static int pg_exec(const char *base, const char *sql)
{
    cf_store *s = NULL;
    int rc;

    CF_GUARD(cf_store_open(base, &s));
    rc = cf_store_exec(s, sql, NULL, 0, NULL);
    cf_store_close(s);
    return rc;
}

static void run_suite(const char *name)
{
    fprintf(stderr, "# backend: %s\n", name);
    g_now = T0;
    for (size_t i = 0; i < g_nev; i++)
        free(g_ev[i].details);
    g_nev = 0;
    if (open_iam() != 0) {
        fprintf(stderr, "cannot open the IAM on %s: %s\n", name, cf_err_detail(CF_E_STORE));
        t_failed++;
        return;
    }
    T_RUN(test_open_validation);
    T_RUN(test_bootstrap);
    T_RUN(test_tenants);
    T_RUN(test_principals_and_granting);
    T_RUN(test_apikeys);
    T_RUN(test_disabled_actor_refused_at_once);
    T_RUN(test_client_keys_and_cnf);
    T_RUN(test_rotation_overlap);
    T_RUN(test_keys_survive_restart);
    T_RUN(test_rate_limit);
    T_RUN(test_concurrent_tokens);
    T_RUN(test_audit_fail_closed);
    T_RUN(test_secrets_never_stored_or_audited);
    if (g_sqlite)
        T_RUN(test_bootstrap_spool_hook);
    cf_iam_close(g_iam);
    g_iam = NULL;
}

int main(void)
{
    char hsmdir[128], sql[128];
    const char *pg = getenv("COFFER_IAM_TEST_PG_DSN");
    cf_hsm_opts ho = {.pin = "iam-user-pin", .so_pin = "iam-so-pin", .token_label = "coffer-iam-test",
                      .create_master = true, .master_label = "coffer-iam-master"};

    memcpy(g_dir, "/tmp/coffer-iam-test.XXXXXX", 28);
    if (mkdtemp(g_dir) == NULL)
        return 1;
    if (cf_fmt(g_dsn, sizeof(g_dsn), "sqlite:%s/iam.db", g_dir) != 0 ||
        cf_fmt(hsmdir, sizeof(hsmdir), "%s/softhsm", g_dir) != 0)
        return 1;
    ho.softhsm_dir = hsmdir;
    if (cf_hsm_open(&ho, &g_hsm) != 0) {
        fprintf(stderr, "setup failed: %s\n", cf_err_detail(CF_E_HSM));
        return 1;
    }
    run_suite("sqlite");
    if (pg != NULL && pg[0] != '\0') {
        g_sqlite = false;
        if (cf_fmt(g_pg_schema, sizeof(g_pg_schema), "iam_test_%ld", (long)getpid()) != 0 ||
            cf_fmt(sql, sizeof(sql), "CREATE SCHEMA %s", g_pg_schema) != 0 || pg_exec(pg, sql) != 0 ||
            cf_fmt(g_dsn, sizeof(g_dsn), "%s%soptions=-csearch_path%%3D%s", pg, strchr(pg, '?') ? "&" : "?",
                   g_pg_schema) != 0) {
            fprintf(stderr, "cannot prepare PostgreSQL schema: %s\n", cf_err_detail(CF_E_STORE));
            t_failed++;
        } else {
            run_suite("postgres");
            if (cf_fmt(sql, sizeof(sql), "DROP SCHEMA %s CASCADE", g_pg_schema) != 0 || pg_exec(pg, sql) != 0)
                fprintf(stderr, "cannot drop schema %s\n", g_pg_schema);
        }
    } else {
        fprintf(stderr, "SKIP: PostgreSQL half (set COFFER_IAM_TEST_PG_DSN to a libpq URI)\n");
    }
    cf_hsm_close(g_hsm);
    for (size_t i = 0; i < g_nev; i++)
        free(g_ev[i].details);
    nftw(g_dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
    return t_done();
}
