/*
 * Integration: `cofferd iam` as its own process on 127.0.0.1 (port 0, port
 * file) with a temporary state dir. Bootstrap an admin with
 * `cofferd iam --bootstrap-admin`, create tenants and principals of every
 * role, exchange API keys for tokens and verify them with cf_token_verify
 * against the JWKS fetched from /.well-known/jwks.json (as every other service
 * does), then the ROLE MATRIX: every role x every IAM management action is
 * allowed or answered 403 exactly as src/proto/authz.c says. Then refusals:
 * revoked / expired key, wrong tenant, disabled principal, malformed /
 * oversized / mistyped bodies, bad tokens, rate limiting; signing-key rotation
 * over HTTP. Every process started here is stopped by pid.
 */
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/err.h"
#include "base/file.h"
#include "base/json.h"
#include "base/parse.h"
#include "crypto/jose.h"
#include "crypto/keys.h"
#include "http/client.h"
#include "iam/iam.h"
#include "proto/authz.h"
#include "test.h"

#ifndef COFFERD_BIN
#define COFFERD_BIN ""
#endif

static char g_dir[64];
static pid_t g_pid = -1;
static cf_http_client *g_cli;
static char g_admin_key[CF_IAM_APIKEY_LEN + 1];
static char g_admin_tok[CF_JWT_MAX_BYTES + 1];

/* ---- processes ---- */

static int rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(p);
}

/* Runs cofferd iam with args; stdout/stderr to the given files. */
static pid_t spawn(const char *const *args, const char *out, const char *err)
{
    pid_t pid = fork();

    if (pid == 0) {
        char *argv[32];
        int n = 0, fo, fe;
        argv[n++] = (char *)(uintptr_t)COFFERD_BIN;
        argv[n++] = (char *)(uintptr_t)"iam";
        for (size_t i = 0; args[i] != NULL && n < 30; i++)
            argv[n++] = (char *)(uintptr_t)args[i];
        argv[n] = NULL;
        fo = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        fe = open(err, O_WRONLY | O_CREAT | O_APPEND, 0600);
        if (fo < 0 || fe < 0 || dup2(fo, 1) < 0 || dup2(fe, 2) < 0)
            _exit(127);
        execv(COFFERD_BIN, argv);
        _exit(127);
    }
    return pid;
}

static void path(char *out, size_t size, const char *name)
{
    if (cf_fmt(out, size, "%s/%s", g_dir, name) != 0)
        abort();
}

static int write_secret(const char *name, const char *value)
{
    char p[128];
    path(p, sizeof(p), name);
    return cf_file_write_atomic(p, value, strlen(value), 0600);
}

/* SIGTERM, then SIGKILL after 5 s. Returns the wait status (-1 if none). */
static int stop_server(void)
{
    int st = -1;

    if (g_pid <= 0)
        return -1;
    kill(g_pid, SIGTERM);
    for (int i = 0; i < 100; i++) {
        if (waitpid(g_pid, &st, WNOHANG) == g_pid) {
            g_pid = -1;
            return st;
        }
        usleep(50 * 1000);
    }
    kill(g_pid, SIGKILL);
    waitpid(g_pid, &st, 0);
    g_pid = -1;
    return -1;
}

/* ---- HTTP ---- */

typedef struct {
    long status;
    json_t *json;
    char retry_after[64];
} reply;

static int call_ct(const char *method, const char *p, const char *bearer, const char *body, const char *ctype,
                   reply *r)
{
    cf_http_request q = {.method = method, .path = p, .bearer = bearer, .body = body,
                         .body_len = body ? strlen(body) : 0, .content_type = ctype};
    cf_http_response resp;
    int rc;

    memset(r, 0, sizeof(*r));
    memset(&resp, 0, sizeof(resp));
    CF_GUARD(cf_http_client_do(g_cli, &q, &resp));
    r->status = resp.status;
    memcpy(r->retry_after, resp.retry_after, sizeof(r->retry_after) - 1);
    rc = resp.body.len > 0 ? cf_http_response_json(&resp, &r->json) : 0;
    cf_http_response_free(&resp);
    return rc;
}

static int call(const char *method, const char *p, const char *bearer, const char *body, reply *r)
{
    return call_ct(method, p, bearer, body, NULL, r);
}

static void reply_free(reply *r)
{
    json_decref(r->json);
    r->json = NULL;
}

static const char *jstr(const reply *r, const char *key)
{
    return json_string_value(json_object_get(r->json, key));
}

static const char *err_msg(const reply *r)
{
    return json_string_value(json_object_get(json_object_get(r->json, "error"), "message"));
}

/* API key (+ tenant) -> access token into out (CF_JWT_MAX_BYTES + 1); returns the HTTP status. */
static long token(const char *key, const char *tenant, char *out)
{
    char body[512];
    reply r;
    long st;

    if (tenant != NULL) {
        if (cf_fmt(body, sizeof(body), "{\"api_key\":\"%s\",\"tenant\":\"%s\"}", key, tenant) != 0)
            return -1;
    } else if (cf_fmt(body, sizeof(body), "{\"api_key\":\"%s\"}", key) != 0) {
        return -1;
    }
    if (call("POST", "/v1/iam/token", NULL, body, &r) != 0)
        return -1;
    st = r.status;
    if (st == 200 && out != NULL && cf_fmt(out, CF_JWT_MAX_BYTES + 1, "%s", jstr(&r, "access_token")) != 0)
        st = -1;
    reply_free(&r);
    return st;
}

static int fetch_jwks(cf_jwks **ret)
{
    cf_http_request q = {.method = "GET", .path = "/.well-known/jwks.json"};
    cf_http_response resp;
    int rc;

    memset(&resp, 0, sizeof(resp));
    CF_GUARD(cf_http_client_do(g_cli, &q, &resp));
    rc = resp.status == 200 ? cf_jwks_parse(resp.body.data, resp.body.len, ret) : CF_E_HTTP;
    cf_http_response_free(&resp);
    return rc;
}

/* A principal with an API key and a token. */
typedef struct {
    const char *role;
    char tenant[CF_ID_MAX_LEN + 1];
    char id[CF_ID_MAX_LEN + 1];
    char key[CF_IAM_APIKEY_LEN + 1];
    char tok[CF_JWT_MAX_BYTES + 1];
} actor;

static int mk_actor(const char *bearer, const char *tenant, const char *kind, const char *name, const char *role,
                    actor *a)
{
    char p[256], body[256];
    reply r;
    int rc = CF_E_VERIFY;

    memset(a, 0, sizeof(*a));
    a->role = role;
    CF_GUARD(cf_fmt(a->tenant, sizeof(a->tenant), "%s", tenant));
    CF_GUARD(cf_fmt(p, sizeof(p), "/v1/iam/tenants/%s/principals", tenant));
    CF_GUARD(cf_fmt(body, sizeof(body), "{\"kind\":\"%s\",\"name\":\"%s\",\"roles\":[\"%s\"]}", kind, name, role));
    CF_GUARD(call("POST", p, bearer, body, &r));
    if (r.status == 201 && cf_fmt(a->id, sizeof(a->id), "%s", jstr(&r, "id")) == 0)
        rc = 0;
    reply_free(&r);
    CF_GUARD(rc);
    rc = CF_E_VERIFY;
    CF_GUARD(cf_fmt(p, sizeof(p), "/v1/iam/principals/%s/api-keys", a->id));
    CF_GUARD(call("POST", p, bearer, NULL, &r));
    if (r.status == 201 && cf_fmt(a->key, sizeof(a->key), "%s", jstr(&r, "api_key")) == 0)
        rc = 0;
    reply_free(&r);
    CF_GUARD(rc);
    return token(a->key, NULL, a->tok) == 200 ? 0 : CF_E_VERIFY;
}

/* ---- tests ---- */

static void test_bootstrap_and_token(void)
{
    const char *args[] = {NULL, "--bootstrap-admin", "--log.level=error", NULL};
    char sd[128], out[128], err[128], arg_sd[160];
    size_t len = 0;
    unsigned char *txt;
    json_t *j = NULL;
    int st = 0;
    pid_t pid;

    path(sd, sizeof(sd), "state");
    path(out, sizeof(out), "boot.json");
    path(err, sizeof(err), "boot.err");
    T_OK(cf_fmt(arg_sd, sizeof(arg_sd), "--state_dir=%s", sd));
    args[0] = arg_sd;
    pid = spawn(args, out, err);
    T_ASSERT(pid > 0);
    T_EQ(waitpid(pid, &st, 0), pid);
    T_ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    txt = t_read_file(out, &len);
    T_OK(cf_json_parse_object(txt, len, 4096, &j));
    free(txt);
    T_OK(cf_fmt(g_admin_key, sizeof(g_admin_key), "%s", json_string_value(json_object_get(j, "api_key"))));
    T_STREQ(json_string_value(json_object_get(j, "tenant")), "platform");
    json_decref(j);
    T_EQ(strlen(g_admin_key), CF_IAM_APIKEY_LEN);

    /* A second bootstrap is refused. */
    pid = spawn(args, out, err);
    T_EQ(waitpid(pid, &st, 0), pid);
    T_ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 1);
}

static void test_start(void)
{
    char sd[128], pf[128], log[128], a1[160], a2[160], a3[160], a4[160], nul[] = "/dev/null";
    const char *args[] = {a1, a2, a3, a4, "--log.level=warn", NULL};
    cf_buf b;
    uint64_t port = 0;
    char url[64];
    cf_http_client_opts o;

    path(sd, sizeof(sd), "state");
    path(pf, sizeof(pf), "port");
    path(log, sizeof(log), "server.log");
    T_OK(write_secret("pin", "iam-user-pin-42"));
    T_OK(write_secret("sopin", "iam-so-pin-42"));
    T_OK(cf_fmt(a1, sizeof(a1), "--state_dir=%s", sd));
    T_OK(cf_fmt(a2, sizeof(a2), "--port_file=%s", pf));
    T_OK(cf_fmt(a3, sizeof(a3), "--hsm.pin=@%s/pin", g_dir));
    T_OK(cf_fmt(a4, sizeof(a4), "--hsm.so_pin=@%s/sopin", g_dir));
    g_pid = spawn(args, nul, log);
    T_ASSERT(g_pid > 0);
    for (int i = 0; i < 200 && port == 0; i++) {
        int st;
        T_ASSERT_MSG(waitpid(g_pid, &st, WNOHANG) == 0, "cofferd iam exited; see %s", log);
        cf_buf_init(&b, 16);
        if (cf_file_read(pf, 16, &b) == 0 && cf_buf_nul_terminate(&b) == 0 &&
            cf_parse_u64((const char *)b.data, 65535, &port) != 0)
            port = 0;
        cf_buf_free(&b);
        if (port == 0)
            usleep(50 * 1000);
    }
    T_ASSERT_MSG(port != 0, "no port file");
    T_OK(cf_fmt(url, sizeof(url), "http://127.0.0.1:%u", (unsigned)port));
    memset(&o, 0, sizeof(o));
    o.base_url = url;
    T_OK(cf_http_client_new(&o, &g_cli));
}

static void test_token_and_jwks(void)
{
    reply r;
    cf_jwks *j = NULL;
    cf_principal p;
    char body[256];

    T_OK(call("GET", "/healthz", NULL, NULL, &r));
    T_EQ(r.status, 200);
    reply_free(&r);
    T_OK(call("GET", "/readyz", NULL, NULL, &r));
    T_EQ(r.status, 200);
    reply_free(&r);

    T_OK(cf_fmt(body, sizeof(body), "{\"api_key\":\"%s\"}", g_admin_key));
    T_OK(call("POST", "/v1/iam/token", NULL, body, &r));
    T_EQ(r.status, 200);
    T_STREQ(jstr(&r, "token_type"), "Bearer");
    T_EQ(json_integer_value(json_object_get(r.json, "expires_in")), 300);
    T_STREQ(jstr(&r, "tenant"), "platform");
    T_STREQ(json_string_value(json_array_get(json_object_get(r.json, "roles"), 0)), "platform-admin");
    T_OK(cf_fmt(g_admin_tok, sizeof(g_admin_tok), "%s", jstr(&r, "access_token")));
    reply_free(&r);

    /* Verified like any other service would: locally, against the published JWKS. */
    T_OK(fetch_jwks(&j));
    T_EQ(cf_jwks_count(j), 1);
    T_OK(cf_token_verify(g_admin_tok, strlen(g_admin_tok), j, 0, &p));
    T_STREQ(p.tenant, "platform");
    T_EQ(p.roles, CF_ROLE_PLATFORM_ADMIN);
    T_EQ(p.exp - p.iat, 300);
    T_ASSERT(!p.has_client_key);
    cf_jwks_free(j);
}

/* Every role, with its token. Platform roles live on the platform, tenant roles in "acme". */
static actor g_act[CF_ROLE_COUNT];
static actor g_target;      /* a client principal of acme that actions act on */
static char g_victim_key[CF_ROLE_COUNT][CF_IAM_KEY_ID_LEN + 1]; /* API keys to revoke, one per caller */
static actor g_victim[CF_ROLE_COUNT];                            /* principals to disable, one per caller */

static void test_setup_principals(void)
{
    static const char *roles[CF_ROLE_COUNT] = {"platform-admin", "operator", "tenant-admin",
                                               "developer", "client", "auditor"};
    reply r;
    cf_jwks *j = NULL;
    cf_principal p;
    char name[64], body[128];

    T_OK(call("POST", "/v1/iam/tenants", g_admin_tok, "{\"id\":\"acme\",\"name\":\"Acme\"}", &r));
    T_EQ(r.status, 201);
    T_STREQ(jstr(&r, "id"), "acme");
    T_STREQ(jstr(&r, "status"), "active");
    reply_free(&r);
    T_OK(call("POST", "/v1/iam/tenants", g_admin_tok, "{\"id\":\"globex\",\"name\":\"Globex\"}", &r));
    T_EQ(r.status, 201);
    reply_free(&r);
    T_OK(fetch_jwks(&j));
    for (int i = 0; i < CF_ROLE_COUNT; i++) {
        cf_role want;
        bool platform = i < 2; /* platform-admin, operator */
        T_OK(cf_fmt(name, sizeof(name), "m-%s", roles[i]));
        T_OK(mk_actor(g_admin_tok, platform ? "platform" : "acme", i == 4 ? "client" : "user", name, roles[i],
                      &g_act[i]));
        T_OK(cf_token_verify(g_act[i].tok, strlen(g_act[i].tok), j, 0, &p));
        T_OK(cf_role_parse(roles[i], &want));
        T_EQ(p.roles, want);
        T_STREQ(p.sub, g_act[i].id);
        T_STREQ(p.tenant, platform ? "platform" : "acme");
        T_STREQ(p.kind, i == 4 ? "client" : "user");
        /* things for this caller to revoke / disable */
        T_OK(cf_fmt(name, sizeof(name), "victim-%d", i));
        T_OK(mk_actor(g_admin_tok, "acme", "user", name, "client", &g_victim[i]));
        memcpy(g_victim_key[i], g_victim[i].key + 4, CF_IAM_KEY_ID_LEN);
        T_OK(cf_fmt(body, sizeof(body), "{\"id\":\"victim-t%d\",\"name\":\"V\"}", i));
        T_OK(call("POST", "/v1/iam/tenants", g_admin_tok, body, &r));
        T_EQ(r.status, 201);
        reply_free(&r);
    }
    cf_jwks_free(j);
    T_OK(mk_actor(g_admin_tok, "acme", "client", "target", "client", &g_target));
    /* a tenant-admin may not mint platform roles, in its tenant or elsewhere */
    T_OK(call("POST", "/v1/iam/tenants/acme/principals", g_act[2].tok,
              "{\"kind\":\"user\",\"name\":\"sneaky\",\"roles\":[\"platform-admin\"]}", &r));
    T_EQ(r.status, 403);
    reply_free(&r);
    T_OK(call("POST", "/v1/iam/tenants/platform/principals", g_act[2].tok,
              "{\"kind\":\"user\",\"name\":\"sneaky\",\"roles\":[\"auditor\"]}", &r));
    T_EQ(r.status, 403);
    reply_free(&r);
}

enum {
    A_TENANT_CREATE, A_TENANT_LIST, A_TENANT_GET, A_TENANT_DISABLE, A_PRINCIPAL_CREATE, A_PRINCIPAL_LIST,
    A_PRINCIPAL_GET, A_PRINCIPAL_DISABLE, A_APIKEY_CREATE, A_APIKEY_LIST, A_APIKEY_REVOKE, A_CLIENTKEY_OTHER,
    A_ROTATE, A__COUNT
};

static const struct {
    const char *name;
    cf_perm perm; /* the permission authz.c must grant for it */
} actions[A__COUNT] = {
    {"tenant.create", CF_PERM_TENANT_MANAGE},         {"tenant.list", CF_PERM_TENANT_MANAGE},
    {"tenant.get", CF_PERM_PRINCIPAL_MANAGE},         {"tenant.disable", CF_PERM_TENANT_MANAGE},
    {"principal.create", CF_PERM_PRINCIPAL_MANAGE},   {"principal.list", CF_PERM_PRINCIPAL_MANAGE},
    {"principal.get", CF_PERM_PRINCIPAL_MANAGE},      {"principal.disable", CF_PERM_PRINCIPAL_MANAGE},
    {"apikey.create", CF_PERM_APIKEY_MANAGE},         {"apikey.list", CF_PERM_APIKEY_MANAGE},
    {"apikey.revoke", CF_PERM_APIKEY_MANAGE},         {"clientkey.register(other)", CF_PERM_CLIENTKEY_REGISTER},
    {"signing-key.rotate", CF_PERM_TENANT_MANAGE},
};

/* Expected outcome, written out independently (1 = allowed, 0 = 403), in the
 * order of `actions`. Tenant roles act on tenant "acme" (their own). */
static const char *const expected[CF_ROLE_COUNT] = {
    /* platform-admin */ "1111111111101",
    /* operator       */ "0000000000000",
    /* tenant-admin   */ "0010111111110",
    /* developer      */ "0000000000000",
    /* client         */ "0000000000000",
    /* auditor        */ "0000000000000",
};

static int do_action(int a, int role, reply *r)
{
    const char *tok = g_act[role].tok;
    char p[256], body[256];
    cf_key *k = NULL;
    uint8_t pub[32];
    char b64[64];
    size_t n = 0;

    switch (a) {
    case A_TENANT_CREATE:
        CF_GUARD(cf_fmt(body, sizeof(body), "{\"id\":\"m-tenant-%d\",\"name\":\"M\"}", role));
        return call("POST", "/v1/iam/tenants", tok, body, r);
    case A_TENANT_LIST:
        return call("GET", "/v1/iam/tenants", tok, NULL, r);
    case A_TENANT_GET:
        return call("GET", "/v1/iam/tenants/acme", tok, NULL, r);
    case A_TENANT_DISABLE:
        CF_GUARD(cf_fmt(p, sizeof(p), "/v1/iam/tenants/victim-t%d/disable", role));
        return call("POST", p, tok, NULL, r);
    case A_PRINCIPAL_CREATE:
        CF_GUARD(cf_fmt(body, sizeof(body), "{\"kind\":\"client\",\"name\":\"made-by-%d\",\"roles\":[\"client\"]}",
                        role));
        return call("POST", "/v1/iam/tenants/acme/principals", tok, body, r);
    case A_PRINCIPAL_LIST:
        return call("GET", "/v1/iam/tenants/acme/principals", tok, NULL, r);
    case A_PRINCIPAL_GET:
        CF_GUARD(cf_fmt(p, sizeof(p), "/v1/iam/principals/%s", g_target.id));
        return call("GET", p, tok, NULL, r);
    case A_PRINCIPAL_DISABLE:
        CF_GUARD(cf_fmt(p, sizeof(p), "/v1/iam/principals/%s/disable", g_victim[role].id));
        return call("POST", p, tok, "{\"reason\":\"matrix\"}", r);
    case A_APIKEY_CREATE:
        CF_GUARD(cf_fmt(p, sizeof(p), "/v1/iam/principals/%s/api-keys", g_target.id));
        return call("POST", p, tok, "{\"ttl\":600}", r);
    case A_APIKEY_LIST:
        CF_GUARD(cf_fmt(p, sizeof(p), "/v1/iam/principals/%s/api-keys", g_target.id));
        return call("GET", p, tok, NULL, r);
    case A_APIKEY_REVOKE:
        CF_GUARD(cf_fmt(p, sizeof(p), "/v1/iam/api-keys/%s/revoke", g_victim_key[role]));
        return call("POST", p, tok, NULL, r);
    case A_CLIENTKEY_OTHER:
        CF_GUARD(cf_key_generate(CF_KEY_X25519, &k));
        if (cf_key_export_public(k, pub, sizeof(pub), &n) != 0) {
            cf_key_free(k);
            return CF_E_CRYPTO;
        }
        cf_key_free(k);
        cf_b64url_encode(pub, sizeof(pub), b64);
        CF_GUARD(cf_fmt(body, sizeof(body), "{\"x25519\":\"%s\"}", b64));
        CF_GUARD(cf_fmt(p, sizeof(p), "/v1/iam/principals/%s/client-key", g_target.id));
        return call("PUT", p, tok, body, r);
    case A_ROTATE:
        return call("POST", "/v1/iam/signing-keys/rotate", tok, NULL, r);
    default:
        return CF_E_INVAL;
    }
}

static void test_role_matrix(void)
{
    static const char *roles[CF_ROLE_COUNT] = {"platform-admin", "operator", "tenant-admin",
                                               "developer", "client", "auditor"};
    int checked = 0;

    for (int role = 0; role < CF_ROLE_COUNT; role++) {
        cf_role bit;
        T_OK(cf_role_parse(roles[role], &bit));
        T_EQ(strlen(expected[role]), A__COUNT);
        for (int a = 0; a < A__COUNT; a++) {
            bool want = expected[role][a] == '1';
            reply r;
            /* The table above is the authz.c table: for every action but the
             * client-key one (holders of the permission other than a
             * tenant-admin may register only their own key), allowed <=> the
             * role holds the action's permission. */
            if (a != A_CLIENTKEY_OTHER)
                T_ASSERT_MSG(want == cf_roles_grant(bit, actions[a].perm), "matrix row %s, %s disagrees with authz.c",
                             roles[role], actions[a].name);
            else
                T_ASSERT(want == (cf_roles_grant(bit, actions[a].perm) && bit == CF_ROLE_TENANT_ADMIN));
            T_OK(do_action(a, role, &r));
            if (want)
                T_ASSERT_MSG(r.status == 200 || r.status == 201, "%s %s: expected success, got %ld (%s)",
                             roles[role], actions[a].name, r.status, err_msg(&r) ? err_msg(&r) : "");
            else
                T_ASSERT_MSG(r.status == 403, "%s %s: expected 403, got %ld (%s)", roles[role], actions[a].name,
                             r.status, err_msg(&r) ? err_msg(&r) : "");
            reply_free(&r);
            checked++;
        }
    }
    T_EQ(checked, CF_ROLE_COUNT * A__COUNT);
}

static void test_client_key_self_and_cnf(void)
{
    char p[256], body[128], b64[64], tok[CF_JWT_MAX_BYTES + 1];
    cf_key *k = NULL;
    uint8_t pub[32];
    size_t n = 0;
    reply r;
    cf_jwks *j = NULL;
    cf_principal pr;

    T_OK(cf_key_generate(CF_KEY_X25519, &k));
    T_OK(cf_key_export_public(k, pub, sizeof(pub), &n));
    cf_key_free(k);
    cf_b64url_encode(pub, sizeof(pub), b64);
    T_OK(cf_fmt(body, sizeof(body), "{\"x25519\":\"%s\"}", b64));
    T_OK(cf_fmt(p, sizeof(p), "/v1/iam/principals/%s/client-key", g_act[4].id));
    T_OK(call("POST", p, g_act[4].tok, body, &r)); /* the client itself */
    T_EQ(r.status, 200);
    reply_free(&r);
    T_OK(call("PUT", p, g_act[4].tok, "{\"x25519\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\"}", &r));
    T_EQ(r.status, 400); /* all-zero: small order */
    reply_free(&r);
    T_EQ(token(g_act[4].key, NULL, tok), 200);
    T_OK(fetch_jwks(&j));
    T_OK(cf_token_verify(tok, strlen(tok), j, 0, &pr));
    T_ASSERT(pr.has_client_key);
    T_MEMEQ(pr.client_key, pub, 32);
    cf_jwks_free(j);
}

static void test_token_refusals(void)
{
    char p[256], tok[CF_JWT_MAX_BYTES + 1], key[CF_IAM_APIKEY_LEN + 1], bad[CF_IAM_APIKEY_LEN + 1];
    reply r;
    actor a;

    /* revoked key (revoked in the matrix by the admins) */
    T_EQ(token(g_victim[0].key, NULL, tok), 403);
    T_EQ(token(g_victim[2].key, NULL, tok), 403);
    T_EQ(token(g_victim[1].key, NULL, tok), 200); /* the operator could not revoke it */
    /* wrong tenant / right tenant */
    T_EQ(token(g_act[3].key, "globex", tok), 403);
    T_EQ(token(g_act[3].key, "acme", tok), 200);
    T_EQ(token(g_act[3].key, "bad tenant", tok), 400);
    /* expired key */
    T_OK(mk_actor(g_admin_tok, "acme", "service", "shortlived", "developer", &a));
    T_OK(cf_fmt(p, sizeof(p), "/v1/iam/principals/%s/api-keys", a.id));
    T_OK(call("POST", p, g_admin_tok, "{\"ttl\":1}", &r));
    T_EQ(r.status, 201);
    T_OK(cf_fmt(key, sizeof(key), "%s", jstr(&r, "api_key")));
    reply_free(&r);
    T_EQ(token(key, NULL, tok), 200);
    sleep(2);
    T_OK(cf_fmt(p, sizeof(p), "{\"api_key\":\"%s\"}", key));
    T_OK(call("POST", "/v1/iam/token", NULL, p, &r));
    T_EQ(r.status, 401);
    T_STREQ(json_string_value(json_object_get(json_object_get(r.json, "error"), "code")), "expired");
    reply_free(&r);
    /* key listing shows metadata only */
    T_OK(cf_fmt(p, sizeof(p), "/v1/iam/principals/%s/api-keys", a.id));
    T_OK(call("GET", p, g_admin_tok, NULL, &r));
    T_EQ(r.status, 200);
    T_EQ(json_array_size(json_object_get(r.json, "api_keys")), 2);
    for (size_t i = 0; i < 2; i++) {
        json_t *e = json_array_get(json_object_get(r.json, "api_keys"), i);
        T_ASSERT(json_object_get(e, "api_key") == NULL && json_object_get(e, "hash") == NULL);
        T_ASSERT(json_object_get(e, "key_id") != NULL);
    }
    reply_free(&r);
    /* disabled principal: no new tokens */
    T_OK(cf_fmt(p, sizeof(p), "/v1/iam/principals/%s/disable", a.id));
    T_OK(call("POST", p, g_admin_tok, NULL, &r));
    T_EQ(r.status, 200);
    reply_free(&r);
    T_EQ(token(a.key, NULL, tok), 403);
    /* wrong secret, malformed key */
    memcpy(bad, g_act[5].key, sizeof(bad));
    bad[40] = bad[40] == 'A' ? 'B' : 'A';
    T_EQ(token(bad, NULL, tok), 401);
    T_EQ(token("cfk_123", NULL, tok), 401);
    /* online guessing: locked after CF_IAM_RL_MAX_FAILS failures, with Retry-After */
    for (int i = 1; i < CF_IAM_RL_MAX_FAILS; i++)
        T_EQ(token(bad, NULL, tok), 401);
    T_OK(cf_fmt(p, sizeof(p), "{\"api_key\":\"%s\"}", g_act[5].key));
    T_OK(call("POST", "/v1/iam/token", NULL, p, &r));
    T_EQ(r.status, 429);
    T_ASSERT(r.retry_after[0] != '\0');
    reply_free(&r);
}

static void test_bad_requests(void)
{
    char big[5000];
    reply r;

    /* malformed, unknown field, wrong type, trailing data, duplicate keys */
    T_OK(call("POST", "/v1/iam/token", NULL, "{\"api_key\":", &r));
    T_EQ(r.status, 400);
    reply_free(&r);
    T_OK(call("POST", "/v1/iam/tenants", g_admin_tok, "{\"name\":\"x\",\"owner\":\"y\"}", &r));
    T_EQ(r.status, 400);
    T_ASSERT(strstr(err_msg(&r), "owner") != NULL);
    reply_free(&r);
    T_OK(call("POST", "/v1/iam/tenants", g_admin_tok, "{\"name\":5}", &r));
    T_EQ(r.status, 400);
    reply_free(&r);
    T_OK(call("POST", "/v1/iam/tenants", g_admin_tok, "{\"name\":\"a\"}{}", &r));
    T_EQ(r.status, 400);
    reply_free(&r);
    T_OK(call("POST", "/v1/iam/tenants", g_admin_tok, "{\"name\":\"a\",\"name\":\"b\"}", &r));
    T_EQ(r.status, 400);
    reply_free(&r);
    T_OK(call("POST", "/v1/iam/tenants/acme/principals", g_admin_tok,
              "{\"kind\":\"user\",\"name\":\"r\",\"roles\":[\"root\"]}", &r));
    T_EQ(r.status, 400);
    reply_free(&r);
    T_OK(call("POST", "/v1/iam/tenants", g_admin_tok, "", &r));
    T_EQ(r.status, 400);
    reply_free(&r);
    /* oversized */
    memset(big, 'a', sizeof(big));
    memcpy(big, "{\"name\":\"", 9);
    memcpy(big + sizeof(big) - 3, "\"}", 3);
    T_OK(call("POST", "/v1/iam/tenants", g_admin_tok, big, &r));
    T_EQ(r.status, 413);
    reply_free(&r);
    T_OK(call("POST", "/v1/iam/token", NULL, big, &r));
    T_EQ(r.status, 413);
    reply_free(&r);
    /* media type */
    T_OK(call_ct("POST", "/v1/iam/tenants", g_admin_tok, "{\"name\":\"x\"}", "text/plain", &r));
    T_EQ(r.status, 415);
    reply_free(&r);
    /* authentication */
    T_OK(call("GET", "/v1/iam/tenants", NULL, NULL, &r));
    T_EQ(r.status, 401);
    reply_free(&r);
    T_OK(call("GET", "/v1/iam/tenants", "not-a-token", NULL, &r));
    T_EQ(r.status, 401);
    reply_free(&r);
    {
        char forged[CF_JWT_MAX_BYTES + 1];
        size_t n = strlen(g_admin_tok);
        memcpy(forged, g_admin_tok, n + 1);
        forged[n - 3] = forged[n - 3] == 'A' ? 'B' : 'A'; /* signature bytes */
        T_OK(call("GET", "/v1/iam/tenants", forged, NULL, &r));
        T_EQ(r.status, 401);
        reply_free(&r);
    }
    /* not found */
    T_OK(call("GET", "/v1/iam/tenants/nope", g_admin_tok, NULL, &r));
    T_EQ(r.status, 404);
    reply_free(&r);
    T_OK(call("GET", "/v1/iam/principals/p-nope", g_admin_tok, NULL, &r));
    T_EQ(r.status, 404);
    reply_free(&r);
    T_OK(call("GET", "/v1/iam/nothing-here", g_admin_tok, NULL, &r));
    T_EQ(r.status, 404);
    reply_free(&r);
    /* conflict */
    T_OK(call("POST", "/v1/iam/tenants", g_admin_tok, "{\"id\":\"acme\",\"name\":\"Again\"}", &r));
    T_EQ(r.status, 409);
    reply_free(&r);
}

/* A graceful stop on SIGTERM with exit status 0 (under the sanitizers: no
 * leak or memory error in the service either). */
static void test_clean_shutdown(void)
{
    int st = stop_server();

    T_ASSERT_MSG(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0, "cofferd iam did not exit cleanly (%d)", st);
}

static void test_rotation_over_http(void)
{
    cf_jwks *j = NULL;
    cf_principal p;
    char tok[CF_JWT_MAX_BYTES + 1];
    const cf_key *k = NULL;

    /* The platform admin rotated during the matrix: two keys are published, the
     * admin's token from before the rotation still verifies, new tokens use the new key. */
    T_OK(fetch_jwks(&j));
    T_EQ(cf_jwks_count(j), 2);
    T_OK(cf_token_verify(g_admin_tok, strlen(g_admin_tok), j, 0, &p));
    T_EQ(token(g_admin_key, NULL, tok), 200);
    T_OK(cf_token_verify(tok, strlen(tok), j, 0, &p));
    {
        const char *kid_old = NULL, *kid_new = NULL;
        (void)cf_jwks_key_at(j, 0, &kid_old);
        (void)cf_jwks_key_at(j, 1, &kid_new);
        T_ASSERT(kid_old != NULL && kid_new != NULL && strcmp(kid_old, kid_new) != 0);
        T_OK(cf_jwks_find(j, kid_old, &k));
    }
    cf_jwks_free(j);
}

int main(void)
{
    if (COFFERD_BIN[0] == '\0') {
        fprintf(stderr, "COFFERD_BIN not set (tests/iam/tests.cmake)\n");
        return 1;
    }
    memcpy(g_dir, "/tmp/coffer-iam-svc.XXXXXX", 27);
    if (mkdtemp(g_dir) == NULL)
        return 1;
    T_RUN(test_bootstrap_and_token);
    T_RUN(test_start);
    if (g_cli != NULL) {
        T_RUN(test_token_and_jwks);
        T_RUN(test_setup_principals);
        T_RUN(test_role_matrix);
        T_RUN(test_client_key_self_and_cnf);
        T_RUN(test_token_refusals);
        T_RUN(test_bad_requests);
        T_RUN(test_rotation_over_http);
        T_RUN(test_clean_shutdown);
    }
    (void)stop_server();
    cf_http_client_free(g_cli);
    if (t_failed != 0) {
        /* The service's own account of what went wrong. */
        char log[128];
        size_t len = 0;
        unsigned char *txt;
        path(log, sizeof(log), "server.log");
        if (access(log, R_OK) == 0) {
            txt = t_read_file(log, &len);
            fprintf(stderr, "---- server.log (last 4 KiB) ----\n%s\n", (char *)txt + (len > 4096 ? len - 4096 : 0));
            free(txt);
        }
    }
    nftw(g_dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
    return t_done();
}
