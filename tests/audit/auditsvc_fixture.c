/*
 * Test fixture for tests/cli/test_audit_cli.sh (not a test itself):
 *
 *   auditsvc_fixture init DIR             CA + certificates (audit, kms), an IAM stand-in key
 *                                         (DIR/jwks.json) and tokens DIR/tok.{platform,acme,client}
 *   auditsvc_fixture send DIR URL LABEL N POST N events as spiffe://coffer/kms (tenants acme,
 *                                         globex, none in turn); prints the answer
 *   auditsvc_fixture sql DB SQL           runs SQL on a SQLite file (tampering, behind the service)
 *   auditsvc_fixture randkey              prints a random Ed25519 public key (base64url)
 *   auditsvc_fixture gateway DIR AUDIT_URL PORT_FILE
 *                                         a stand-in gateway on 127.0.0.1 (plain HTTP): POST
 *                                         /v1/iam/token exchanges the API keys "ak-platform" /
 *                                         "ak-acme" for tokens, GET /v1/audit/... is forwarded to
 *                                         AUDIT_URL with the caller's Authorization; runs until
 *                                         SIGTERM
 */
#include <pthread.h>
#include <sqlite3.h>

#include "auditsvc_testutil.h"
#include "http/server.h"

static int die(const char *what, int rc)
{
    fprintf(stderr, "auditsvc_fixture: %s: %s\n", what, cf_err_detail(rc));
    return 1;
}

static int write_token(const char *dir, const char *name, const char *tok)
{
    char p[512];

    CF_ENSURE(tok != NULL, CF_E_CRYPTO);
    at_fmt(p, sizeof(p), "%s/tok.%s", dir, name);
    return cf_file_write_atomic(p, tok, strlen(tok), 0600);
}

static int cmd_init(const char *dir)
{
    static const char *const names[] = {"audit", "kms", NULL};
    cf_key *k = NULL;
    cf_buf pem;
    char p[512], *t;
    int rc;

    CF_GUARD(at_pki(dir, names));
    CF_GUARD(cf_key_generate(CF_KEY_ED25519, &k));
    at_fmt(p, sizeof(p), "%s/jwks.json", dir);
    rc = at_jwks_write(k, p);
    cf_buf_init_secret(&pem, 4096);
    if (rc == 0)
        rc = cf_key_export_private_pem(k, &pem);
    at_fmt(p, sizeof(p), "%s/iam.key", dir);
    if (rc == 0)
        rc = cf_file_write_atomic(p, pem.data, pem.len, 0600);
    cf_buf_free(&pem);
    if (rc == 0) {
        t = at_token(k, "platform", "p-auditor", CF_ROLE_AUDITOR);
        rc = write_token(dir, "platform", t);
        free(t);
    }
    if (rc == 0) {
        t = at_token(k, "acme", "acme-auditor", CF_ROLE_AUDITOR);
        rc = write_token(dir, "acme", t);
        free(t);
    }
    if (rc == 0) {
        t = at_token(k, "acme", "acme-client", CF_ROLE_CLIENT);
        rc = write_token(dir, "client", t);
        free(t);
    }
    cf_key_free(k);
    return rc;
}

static int cmd_send(const char *dir, const char *url, const char *label, const char *count)
{
    static const char *const tenants[] = {"acme", "globex", ""};
    cf_http_client *c = NULL;
    uint64_t n = 0;
    json_t *j = NULL;
    long st = 0;
    cf_buf b;
    int rc;

    CF_ENSURE(cf_parse_u64(count, CF_AUDIT_MAX_BATCH, &n) == 0, cf_err_set(CF_E_INVAL, "bad count"));
    CF_GUARD(at_client(dir, url, "kms", &c));
    cf_buf_init(&b, CF_AUDIT_MAX_BATCH_BYTES);
    rc = at_batch(&b, label, 0, (unsigned)n, "kms", tenants, 3);
    if (rc == 0)
        rc = at_call(c, "POST", "/v1/audit/events", NULL, b.data, b.len, "application/json", &st, &j);
    if (rc == 0 && st != 200)
        rc = cf_err_set(CF_E_HTTP, "HTTP %ld", st);
    if (rc == 0) {
        char *s = cf_json_dump(j);
        printf("%s\n", s != NULL ? s : "");
        free(s);
    }
    json_decref(j);
    cf_buf_free(&b);
    cf_http_client_free(c);
    return rc;
}

static int cmd_sql(const char *db_path, const char *sql)
{
    sqlite3 *db = NULL;
    char *err = NULL;
    int rc = sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READWRITE, NULL);

    if (rc == SQLITE_OK)
        rc = sqlite3_exec(db, sql, NULL, NULL, &err);
    if (rc != SQLITE_OK)
        fprintf(stderr, "sql: %s\n", err != NULL ? err : sqlite3_errmsg(db));
    sqlite3_free(err);
    sqlite3_close(db);
    return rc == SQLITE_OK ? 0 : CF_E_STORE;
}

static int cmd_randkey(void)
{
    cf_key *k = NULL;
    uint8_t pub[32];
    char b64[64];
    size_t n = 0;
    int rc;

    CF_GUARD(cf_key_generate(CF_KEY_ED25519, &k));
    rc = cf_key_export_public(k, pub, sizeof(pub), &n);
    cf_key_free(k);
    CF_GUARD(rc);
    cf_b64url_encode(pub, n, b64);
    printf("%s\n", b64);
    return 0;
}

/* ---- the stand-in gateway ---- */

static struct {
    char dir[256];
    char audit_url[256];
    cf_key *iam;
} g_gw;

static int gw_token(void *cls, const cf_http_req *req, cf_http_resp *resp)
{
    json_t *j = NULL;
    const char *key = NULL;
    char *tok = NULL;
    int rc;

    (void)cls;
    CF_GUARD(cf_http_req_json(req, &j));
    rc = cf_json_get_str(j, "api_key", true, 256, &key);
    if (rc == 0 && strcmp(key, "ak-platform") == 0)
        tok = at_token(g_gw.iam, "platform", "p-auditor", CF_ROLE_AUDITOR);
    else if (rc == 0 && strcmp(key, "ak-acme") == 0)
        tok = at_token(g_gw.iam, "acme", "acme-auditor", CF_ROLE_AUDITOR);
    json_decref(j);
    if (tok == NULL)
        return cf_err_set(CF_E_UNAUTHENTICATED, "unknown API key");
    j = json_pack("{s:s,s:s,s:i}", "access_token", tok, "token_type", "Bearer", "expires_in", 3600);
    free(tok);
    rc = cf_http_resp_json(resp, 200, j);
    json_decref(j);
    return rc;
}

static int gw_proxy(void *cls, const cf_http_req *req, cf_http_resp *resp)
{
    const char *q = cf_http_req_query_string(req), *tok = NULL;
    cf_http_client *c = NULL;
    cf_http_response r;
    char target[CF_HTTP_MAX_URL + 2];
    size_t tlen = 0;
    int rc;

    (void)cls;
    if (cf_bearer_token(cf_http_req_header(req, "Authorization"), &tok, &tlen) != 0)
        return cf_err_set(CF_E_UNAUTHENTICATED, "the gateway forwards authenticated calls only");
    if (q[0] != '\0')
        at_fmt(target, sizeof(target), "%s?%s", cf_http_req_path(req), q);
    else
        at_fmt(target, sizeof(target), "%s", cf_http_req_path(req));
    CF_GUARD(at_client(g_gw.dir, g_gw.audit_url, NULL, &c));
    memset(&r, 0, sizeof(r));
    {
        cf_http_request rq = {.method = "GET", .path = target, .bearer = tok};
        rc = cf_http_client_do(c, &rq, &r);
    }
    cf_http_client_free(c);
    if (rc == 0)
        rc = cf_http_resp_set(resp, (int)r.status, r.content_type[0] ? r.content_type : "application/json",
                              r.body.data, r.body.len);
    cf_http_response_free(&r);
    return rc;
}

static int cmd_gateway(const char *dir, const char *audit_url, const char *port_file)
{
    cf_http_server *s = NULL;
    cf_http_server_opts o;
    cf_buf pem;
    char p[512], port[16];
    sigset_t set;
    int sig = 0, rc;

    at_fmt(g_gw.dir, sizeof(g_gw.dir), "%s", dir);
    at_fmt(g_gw.audit_url, sizeof(g_gw.audit_url), "%s", audit_url);
    at_fmt(p, sizeof(p), "%s/iam.key", dir);
    cf_buf_init_secret(&pem, 4096);
    rc = cf_file_read(p, 4096, &pem);
    if (rc == 0)
        rc = cf_key_from_private_pem((const char *)pem.data, pem.len, &g_gw.iam);
    cf_buf_free(&pem);
    CF_GUARD(rc);
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    memset(&o, 0, sizeof(o));
    o.name = "gateway";
    CF_GUARD(cf_http_server_new(&o, &s));
    rc = cf_http_server_route(s, "POST", "/v1/iam/token", gw_token, NULL, 0);
    if (rc == 0)
        rc = cf_http_server_route(s, "GET", "/v1/audit/{a}", gw_proxy, NULL, 0);
    if (rc == 0)
        rc = cf_http_server_route(s, "GET", "/v1/audit/{a}/{b}", gw_proxy, NULL, 0);
    if (rc == 0)
        rc = cf_http_server_route(s, "GET", "/v1/audit/{a}/{b}/{c}", gw_proxy, NULL, 0);
    if (rc == 0)
        rc = cf_http_server_start(s);
    if (rc == 0) {
        at_fmt(port, sizeof(port), "%u", (unsigned)cf_http_server_port(s));
        rc = cf_file_write_atomic(port_file, port, strlen(port), 0644);
    }
    if (rc == 0)
        sigwait(&set, &sig);
    cf_http_server_free(s);
    cf_key_free(g_gw.iam);
    return rc;
}

int main(int argc, char **argv)
{
    int rc;

    if (argc == 3 && strcmp(argv[1], "init") == 0)
        rc = cmd_init(argv[2]);
    else if (argc == 6 && strcmp(argv[1], "send") == 0)
        rc = cmd_send(argv[2], argv[3], argv[4], argv[5]);
    else if (argc == 4 && strcmp(argv[1], "sql") == 0)
        rc = cmd_sql(argv[2], argv[3]);
    else if (argc == 2 && strcmp(argv[1], "randkey") == 0)
        rc = cmd_randkey();
    else if (argc == 5 && strcmp(argv[1], "gateway") == 0)
        rc = cmd_gateway(argv[2], argv[3], argv[4]);
    else {
        fprintf(stderr, "usage: auditsvc_fixture init DIR | send DIR URL LABEL N | sql DB SQL | randkey | "
                        "gateway DIR AUDIT_URL PORT_FILE\n");
        return 2;
    }
    return rc == 0 ? 0 : die(argv[1], rc);
}
