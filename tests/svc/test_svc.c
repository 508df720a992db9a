/* Service runtime: configuration, bearer-token authentication against a JWKS
 * file (with refresh on an unknown kid), authorisation, audit events, lifecycle. */
#include <ftw.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/err.h"
#include "base/file.h"
#include "base/parse.h"
#include "crypto/jose.h"
#include "crypto/keys.h"
#include "http/client.h"
#include "svc/svc.h"
#include "test.h"

static char dir[64], jwks_path[128], port_path[128], state[128];
static cf_key *k1, *k2;
static cf_svc *svc;
static pthread_t runner;
static cf_http_client *client;

static int rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(p);
}

static int write_jwks(cf_key *const *keys, const char *const *kids, size_t n)
{
    cf_jwks *set = NULL;
    char *js = NULL;
    int rc;

    CF_GUARD(cf_jwks_new(&set));
    for (size_t i = 0; i < n; i++) {
        cf_key *pub = NULL;
        rc = cf_key_public_only(keys[i], &pub);
        if (rc == 0)
            rc = cf_jwks_add(set, kids[i], pub);
        cf_key_free(pub);
        if (rc != 0) {
            cf_jwks_free(set);
            return rc;
        }
    }
    rc = cf_jwks_serialise(set, &js);
    if (rc == 0)
        rc = cf_file_write_atomic(jwks_path, js, strlen(js), 0644);
    free(js);
    cf_jwks_free(set);
    return rc;
}

static char *token(cf_key *k, const char *kid, const char *tenant, uint32_t roles, int64_t iat, uint32_t ttl)
{
    cf_principal p;
    char *t = NULL;

    memset(&p, 0, sizeof(p));
    memcpy(p.tenant, tenant, strlen(tenant) + 1);
    memcpy(p.sub, "alice", 6);
    memcpy(p.kind, "client", 7);
    p.roles = roles;
    if (cf_token_mint(k, kid, &p, iat, ttl, &t) != 0)
        return NULL;
    return t;
}

/* GET /v1/test/whoami?tenant=T: needs otk.issue on tenant T; audited. */
static int h_whoami(void *cls, const cf_http_req *req, cf_http_resp *resp)
{
    cf_svc *s = cls;
    cf_principal p;
    const char *tenant = cf_http_req_query(req, "tenant");
    int rc = cf_svc_authorize(s, req, CF_PERM_OTK_ISSUE, tenant, &p);
    json_t *body;

    if (rc != 0) {
        CF_GUARD(cf_svc_audit(s, req, NULL, "test.whoami", tenant, NULL, "denied", NULL));
        return rc;
    }
    CF_GUARD(cf_svc_audit(s, req, &p, "test.whoami", p.tenant, NULL, "success",
                          json_pack("{s:s}", "note", "no secrets here")));
    body = json_pack("{s:s,s:s}", "sub", p.sub, "tenant", p.tenant);
    rc = cf_http_resp_json(resp, 200, body);
    json_decref(body);
    return rc;
}

static int h_peer(void *cls, const cf_http_req *req, cf_http_resp *resp)
{
    static const char *const allowed[] = {"attest", NULL};
    (void)cls;
    CF_GUARD(cf_svc_require_peer(req, allowed));
    return cf_http_resp_json(resp, 200, NULL);
}

static void *run_svc(void *arg)
{
    (void)arg;
    if (cf_svc_run(svc) != 0)
        fprintf(stderr, "cf_svc_run failed: %s\n", cf_err_detail(CF_E_INTERNAL));
    return NULL;
}

static long get(const char *path, const char *tok)
{
    cf_http_request rq = {.method = "GET", .path = path, .bearer = tok};
    cf_http_response r;
    long st;

    memset(&r, 0, sizeof(r));
    if (cf_http_client_do(client, &rq, &r) != 0)
        return -1;
    st = r.status;
    cf_http_response_free(&r);
    return st;
}

static void test_config_errors(void)
{
    cf_svc *s = NULL;
    char a0[160], a1[64], help[] = "--help";
    char *argv_help[] = {help};
    char *argv_bad[] = {a0, a1};

    T_ERR(cf_svc_init(&(cf_svc_def){.name = "t"}, 1, argv_help, &s), CF_E_NOT_FOUND);
    T_ASSERT(s == NULL);
    T_OK(cf_fmt(a0, sizeof(a0), "--state_dir=%s", state));
    T_OK(cf_fmt(a1, sizeof(a1), "--tls.client_auth=maybe"));
    T_ERR(cf_svc_init(&(cf_svc_def){.name = "t"}, 2, argv_bad, &s), CF_E_CONFIG);
    T_OK(cf_fmt(a1, sizeof(a1), "--no.such.option=1"));
    T_ERR(cf_svc_init(&(cf_svc_def){.name = "t"}, 2, argv_bad, &s), CF_E_CONFIG);
    T_ASSERT(s == NULL);
}

static void test_start(void)
{
    char a0[160], a1[160], a2[160];
    char *argv[] = {a0, a1, a2};
    const char *kids[] = {"k1"};
    cf_buf pb;
    char url[64];
    cf_http_client_opts co;

    T_OK(cf_key_generate(CF_KEY_ED25519, &k1));
    T_OK(cf_key_generate(CF_KEY_ED25519, &k2));
    T_OK(write_jwks(&k1, kids, 1));
    T_OK(cf_fmt(a0, sizeof(a0), "--state_dir=%s", state));
    T_OK(cf_fmt(a1, sizeof(a1), "--iam.jwks=%s", jwks_path));
    T_OK(cf_fmt(a2, sizeof(a2), "--port_file=%s", port_path));
    T_OK(cf_svc_init(&(cf_svc_def){.name = "testsvc"}, 3, argv, &svc));
    T_OK(cf_http_server_route(cf_svc_http(svc), "GET", "/v1/test/whoami", h_whoami, svc, 0));
    T_OK(cf_http_server_route(cf_svc_http(svc), "GET", "/v1/test/peer", h_peer, svc, 0));
    T_ASSERT(pthread_create(&runner, NULL, run_svc, NULL) == 0);
    cf_buf_init(&pb, 16);
    for (int i = 0; i < 200 && cf_file_read(port_path, 16, &pb) != 0; i++)
        usleep(20000);
    T_ASSERT(pb.len > 0);
    T_OK(cf_buf_nul_terminate(&pb));
    T_OK(cf_fmt(url, sizeof(url), "http://127.0.0.1:%s", (char *)pb.data));
    cf_buf_free(&pb);
    memset(&co, 0, sizeof(co));
    co.base_url = url;
    T_OK(cf_http_client_new(&co, &client));
}

static void test_auth(void)
{
    int64_t now = cf_svc_now();
    char *good = token(k1, "k1", "t1", CF_ROLE_CLIENT, now, 300);
    char *norole = token(k1, "k1", "t1", CF_ROLE_AUDITOR, now, 300);
    char *expired = token(k1, "k1", "t1", CF_ROLE_CLIENT, now - 1000, 300);
    char *forged = token(k2, "k1", "t1", CF_ROLE_CLIENT, now, 300);

    T_ASSERT(good && norole && expired && forged);
    T_EQ(get("/v1/test/whoami?tenant=t1", NULL), 401);
    T_EQ(get("/v1/test/whoami?tenant=t1", good), 200);
    T_EQ(get("/v1/test/whoami?tenant=t2", good), 403);
    T_EQ(get("/v1/test/whoami?tenant=t1", norole), 403);
    T_EQ(get("/v1/test/whoami?tenant=t1", expired), 401);
    T_EQ(get("/v1/test/whoami?tenant=t1", forged), 401);
    T_EQ(get("/v1/test/whoami?tenant=t1", "not.a.token"), 401);
    /* No client certificate: service-only endpoint refused. */
    T_EQ(get("/v1/test/peer", NULL), 401);
    free(good);
    free(norole);
    free(expired);
    free(forged);
}

/* IAM rotates its signing key: a token with the new kid is accepted once the
 * JWKS is reloaded (refreshes are rate-limited to one per 5 s). */
static void test_jwks_rotation(void)
{
    cf_key *keys[] = {k1, k2};
    const char *kids[] = {"k1", "k2"};
    char *t2 = token(k2, "k2", "t1", CF_ROLE_CLIENT, cf_svc_now(), 300);
    int ok = 0;

    T_ASSERT(t2 != NULL);
    T_OK(write_jwks(keys, kids, 2));
    for (int i = 0; i < 80 && !ok; i++) { /* up to 8 s */
        ok = get("/v1/test/whoami?tenant=t1", t2) == 200;
        if (!ok)
            usleep(100000);
    }
    T_ASSERT_MSG(ok, "token with the new kid never accepted");
    free(t2);
}

struct count {
    int success, denied;
};

static int count_cb(void *arg, const char *js, size_t len, uint64_t next)
{
    struct count *c = arg;
    (void)next;
    if (memmem(js, len, "\"outcome\":\"success\"", 19))
        c->success++;
    if (memmem(js, len, "\"outcome\":\"denied\"", 18))
        c->denied++;
    /* Tokens must never reach the audit log. */
    if (memmem(js, len, "eyJ", 3))
        return CF_E_INTERNAL;
    return 0;
}

static void test_audit_and_stop(void)
{
    struct count c = {0, 0};

    T_OK(cf_spool_pending(cf_svc_spool(svc), 1000, count_cb, &c));
    T_ASSERT(c.success >= 2);
    T_ASSERT(c.denied >= 5);
    cf_svc_request_stop(svc);
    T_ASSERT(pthread_join(runner, NULL) == 0);
    /* Stopped: nothing listens any more. */
    T_EQ(get("/v1/test/whoami?tenant=t1", NULL), -1);
}

int main(void)
{
    if (cf_fmt(dir, sizeof(dir), "/tmp/coffer-svc-XXXXXX") != 0 || mkdtemp(dir) == NULL ||
        cf_fmt(jwks_path, sizeof(jwks_path), "%s/jwks.json", dir) != 0 ||
        cf_fmt(port_path, sizeof(port_path), "%s/port", dir) != 0 ||
        cf_fmt(state, sizeof(state), "%s/state", dir) != 0)
        return 1;
    T_RUN(test_config_errors);
    T_RUN(test_start);
    T_RUN(test_auth);
    T_RUN(test_jwks_rotation);
    T_RUN(test_audit_and_stop);
    cf_http_client_free(client);
    cf_svc_free(svc);
    cf_key_free(k1);
    cf_key_free(k2);
    nftw(dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
    return t_done();
}
