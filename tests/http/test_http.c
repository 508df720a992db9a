/*
 * Tests for http/route, http/server and http/client: in-process servers on
 * 127.0.0.1 port 0, plain HTTP, TLS and mTLS with certificates from crypto/pki
 * in a temporary directory.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "base/err.h"
#include "base/json.h"
#include "base/limits.h"
#include "base/log.h"
#include "base/parse.h"
#include "crypto/pki.h"
#include "http/client.h"
#include "http/route.h"
#include "http/server.h"
#include "test.h"

#include <openssl/pem.h>
#include <openssl/x509v3.h>

#define DAY 86400u

static char tmpdir[64];
static char path_ca[256], path_srv_crt[256], path_srv_key[256], path_cli_crt[256],
    path_cli_key[256], path_other_ca[256], path_other_crt[256], path_other_key[256],
    path_srvonly_crt[256], path_srvonly_key[256];

/* Client certificates from the right CA whose SAN breaks the identity rule. */
enum { ODD_NO_URI, ODD_TWO_URIS, ODD_HTTPS_URI, ODD_DOTDOT, ODD_COUNT };
static char path_odd_crt[ODD_COUNT][256], path_odd_key[ODD_COUNT][256];

/* ---- handlers ------------------------------------------------------------------- */

struct state {
    atomic_int calls;
    pthread_mutex_t mu;
    char last_peer[256];
};

static struct state st = {.mu = PTHREAD_MUTEX_INITIALIZER};

static void note_call(const cf_http_req *req)
{
    const char *peer = cf_http_req_peer_id(req);
    atomic_fetch_add(&st.calls, 1);
    pthread_mutex_lock(&st.mu);
    if (cf_fmt(st.last_peer, sizeof(st.last_peer), "%s", peer ? peer : "(none)") < 0)
        st.last_peer[0] = 0;
    pthread_mutex_unlock(&st.mu);
}

static int h_echo(void *cls, const cf_http_req *req, cf_http_resp *resp)
{
    json_t *v;
    int rc;
    const char *q = cf_http_req_query(req, "x"), *peer = cf_http_req_peer_id(req);

    (void)cls;
    note_call(req);
    v = json_pack("{s:s?,s:s?,s:s?,s:s,s:s?,s:s,s:s}", "id", cf_http_req_param(req, "id"), "name",
                  cf_http_req_param(req, "name"), "x", q, "rid", cf_http_req_id(req), "peer",
                  peer, "route", cf_http_req_route(req), "method", cf_http_req_method(req));
    if (v == NULL)
        return CF_E_NOMEM;
    rc = cf_http_resp_json(resp, 200, v);
    json_decref(v);
    return rc;
}

static int h_body(void *cls, const cf_http_req *req, cf_http_resp *resp)
{
    json_t *in = NULL, *out;
    size_t n;
    int rc;

    (void)cls;
    note_call(req);
    CF_GUARD(cf_http_require_content_type(req, resp, "application/json"));
    (void)cf_http_req_body(req, &n);
    CF_GUARD(cf_http_req_json(req, &in));
    json_decref(in);
    out = json_pack("{s:I}", "len", (json_int_t)n);
    CF_ENSURE(out != NULL, CF_E_NOMEM);
    rc = cf_http_resp_json(resp, 201, out);
    json_decref(out);
    return rc;
}

static int h_raw_len(void *cls, const cf_http_req *req, cf_http_resp *resp)
{
    char msg[32];
    size_t n;

    (void)cls;
    note_call(req);
    (void)cf_http_req_body(req, &n);
    CF_GUARD(cf_fmt(msg, sizeof(msg), "%zu", n));
    return cf_http_resp_set(resp, 200, "text/plain", msg, strlen(msg));
}

static int h_fail(void *cls, const cf_http_req *req, cf_http_resp *resp)
{
    (void)cls;
    (void)resp;
    note_call(req);
    return cf_err_set(CF_E_NOT_FOUND, "tee '%s' not found", cf_http_req_param(req, "id"));
}

static int h_internal(void *cls, const cf_http_req *req, cf_http_resp *resp)
{
    (void)cls;
    (void)resp;
    note_call(req);
    return cf_err_set(CF_E_STORE, "sqlite: cannot open /var/secret-location/kms.db");
}

static int h_none(void *cls, const cf_http_req *req, cf_http_resp *resp)
{
    (void)cls;
    (void)resp;
    note_call(req);
    return 0;
}

#define LARGE_LEN (200u * 1024)

static int h_large(void *cls, const cf_http_req *req, cf_http_resp *resp)
{
    static char big[LARGE_LEN];
    (void)cls;
    note_call(req);
    memset(big, 'z', sizeof(big));
    return cf_http_resp_set(resp, 200, "application/octet-stream", big, sizeof(big));
}

static int h_retry(void *cls, const cf_http_req *req, cf_http_resp *resp)
{
    (void)cls;
    note_call(req);
    CF_GUARD(cf_http_resp_error(resp, CF_E_RATE_LIMITED, "slow down"));
    CF_GUARD(cf_http_resp_header(resp, "Retry-After", "7"));
    /* Framing and injection attempts are refused. */
    if (cf_http_resp_header(resp, "Content-Length", "1") == 0 ||
        cf_http_resp_header(resp, "X-Evil", "a\r\nSet-Cookie: x") == 0 ||
        cf_http_resp_header(resp, "Bad Name", "v") == 0)
        return cf_http_resp_error(resp, CF_E_INTERNAL, "header check failed");
    return 0;
}

static int h_slow(void *cls, const cf_http_req *req, cf_http_resp *resp)
{
    struct timespec ts = {0, 300 * 1000 * 1000};
    (void)cls;
    note_call(req);
    nanosleep(&ts, NULL);
    return cf_http_resp_set(resp, 200, "text/plain", "done", 4);
}

static int add_routes(cf_http_server *s)
{
    CF_GUARD(cf_http_server_route(s, "GET", "/v1/echo/{id}/sub/{name}", h_echo, NULL, 0));
    CF_GUARD(cf_http_server_route(s, "DELETE", "/v1/echo/{id}/sub/{name}", h_echo, NULL, 0));
    CF_GUARD(cf_http_server_route(s, "GET", "/", h_echo, NULL, 0));
    CF_GUARD(cf_http_server_route(s, "POST", "/v1/body", h_body, NULL, 64));
    CF_GUARD(cf_http_server_route(s, "POST", "/v1/raw", h_raw_len, NULL, 0));
    CF_GUARD(cf_http_server_route(s, "GET", "/v1/fail/{id}", h_fail, NULL, 0));
    CF_GUARD(cf_http_server_route(s, "GET", "/v1/internal", h_internal, NULL, 0));
    CF_GUARD(cf_http_server_route(s, "GET", "/v1/none", h_none, NULL, 0));
    CF_GUARD(cf_http_server_route(s, "GET", "/v1/large", h_large, NULL, 0));
    CF_GUARD(cf_http_server_route(s, "GET", "/v1/retry", h_retry, NULL, 0));
    CF_GUARD(cf_http_server_route(s, "GET", "/v1/slow", h_slow, NULL, 0));
    return 0;
}

static cf_http_server *start(const cf_http_server_opts *o)
{
    cf_http_server *s = NULL;
    if (cf_http_server_new(o, &s) != 0 || add_routes(s) != 0 || cf_http_server_start(s) != 0) {
        fprintf(stderr, "server start failed: %s\n", cf_err_detail(CF_E_IO));
        cf_http_server_free(s);
        return NULL;
    }
    return s;
}

static cf_http_client *client(const cf_http_server *s, bool tls, const char *ca,
                              const char *crt, const char *key, const char *expect, size_t cap)
{
    char url[64];
    cf_http_client *c = NULL;
    cf_http_client_opts o = {0};

    if (cf_fmt(url, sizeof(url), "%s://127.0.0.1:%u", tls ? "https" : "http",
               (unsigned)cf_http_server_port(s)) < 0)
        return NULL;
    o.base_url = url;
    o.ca_file = ca;
    o.cert_file = crt;
    o.key_file = key;
    o.expect_peer_id = expect;
    o.max_response = cap;
    o.timeout_ms = 10000;
    if (cf_http_client_new(&o, &c) != 0)
        return NULL;
    return c;
}

static int get(cf_http_client *c, const char *method, const char *path, cf_http_response *r)
{
    cf_http_request q = {0};
    q.method = method;
    q.path = path;
    return cf_http_client_do(c, &q, r);
}

/* Checks the error shape and returns the code (borrowed from *ret_doc). */
static const char *error_code(const cf_http_response *r, json_t **ret_doc)
{
    json_t *v = NULL, *e;
    const char *code = NULL, *rid = NULL, *msg = NULL;

    *ret_doc = NULL;
    if (cf_http_response_json(r, &v) != 0)
        return NULL;
    e = json_object_get(v, "error");
    if (json_object_size(v) != 1 || !json_is_object(e) || json_object_size(e) != 3 ||
        cf_json_get_str(e, "code", true, 64, &code) != 0 ||
        cf_json_get_str(e, "message", true, 512, &msg) != 0 ||
        cf_json_get_str(e, "request_id", true, 64, &rid) != 0 || strcmp(rid, r->request_id) != 0 ||
        strcmp(r->content_type, "application/json") != 0) {
        json_decref(v);
        return NULL;
    }
    *ret_doc = v;
    return code;
}

static const char *err_message(json_t *doc)
{
    return json_string_value(json_object_get(json_object_get(doc, "error"), "message"));
}

/* ---- route unit tests ------------------------------------------------------------ */

static void test_route_parsing(void)
{
    cf_http_pattern p;
    cf_http_segs s;
    cf_http_params prm;
    cf_http_query q;
    char out[16];
    size_t n = 0;
    const char *path;

    T_OK(cf_http_pattern_compile("/v1/kms/otk/{id}/release", &p));
    T_EQ(p.nseg, 5);
    T_EQ(p.nparams, 1);
    T_OK(cf_http_pattern_compile("/", &p));
    T_EQ(p.nseg, 0);
    T_ERR(cf_http_pattern_compile("v1/x", &p), CF_E_INVAL);
    T_ERR(cf_http_pattern_compile("/v1//x", &p), CF_E_INVAL);
    T_ERR(cf_http_pattern_compile("/v1/x/", &p), CF_E_INVAL);
    T_ERR(cf_http_pattern_compile("/v1/{}", &p), CF_E_INVAL);
    T_ERR(cf_http_pattern_compile("/v1/{Id}", &p), CF_E_INVAL);
    T_ERR(cf_http_pattern_compile("/v1/{id}/{id}", &p), CF_E_INVAL);
    T_ERR(cf_http_pattern_compile("/v1/a{id}", &p), CF_E_INVAL);
    T_ERR(cf_http_pattern_compile("/v1/a%20b", &p), CF_E_INVAL);
    T_ERR(cf_http_pattern_compile("/{a}/{b}/{c}/{d}/{e}/{f}/{g}/{h}/{i}", &p), CF_E_INVAL);

    T_OK(cf_http_pattern_compile("/v1/kms/otk/{id}/release", &p));
    path = "/v1/kms/otk/a%41b~c/release";
    T_OK(cf_http_path_split(path, strlen(path), &s));
    T_ASSERT(cf_http_pattern_match(&p, path, &s));
    T_OK(cf_http_params_decode(&p, path, &s, &prm));
    T_STREQ(cf_http_kv_get(prm.kv, prm.n, "id"), "aAb~c");
    T_ASSERT(cf_http_kv_get(prm.kv, prm.n, "nope") == NULL);
    path = "/v1/kms/otk/a/release/x";
    T_OK(cf_http_path_split(path, strlen(path), &s));
    T_ASSERT(!cf_http_pattern_match(&p, path, &s));
    path = "/v1/kms/OTK/a/release"; /* literals are exact */
    T_OK(cf_http_path_split(path, strlen(path), &s));
    T_ASSERT(!cf_http_pattern_match(&p, path, &s));
    /* Encoded '/', NUL, controls, bad escapes, raw non-pchar. */
    const char *bad[] = {"/v1/kms/otk/a%2Fb/release", "/v1/kms/otk/a%00/release",
                         "/v1/kms/otk/a%0a/release", "/v1/kms/otk/a%zz/release",
                         "/v1/kms/otk/a%4/release", "/v1/kms/otk/a\"b/release",
                         "/v1/kms/otk/a%7f/release"};
    for (size_t i = 0; i < CF_ARRAY_LEN(bad); i++) {
        T_OK(cf_http_path_split(bad[i], strlen(bad[i]), &s));
        T_ASSERT(cf_http_pattern_match(&p, bad[i], &s));
        T_ERR(cf_http_params_decode(&p, bad[i], &s, &prm), CF_E_PARSE);
    }
    T_ASSERT(strstr(cf_err_detail(CF_E_PARSE), "'id'") != NULL);
    /* Path shape. */
    T_ERR(cf_http_path_split("", 0, &s), CF_E_PARSE);
    T_ERR(cf_http_path_split("x/y", 3, &s), CF_E_PARSE);
    T_ERR(cf_http_path_split("/a//b", 5, &s), CF_E_PARSE);
    T_ERR(cf_http_path_split("/a/", 3, &s), CF_E_PARSE);
    T_ERR(cf_http_path_split("/a\0b", 4, &s), CF_E_PARSE);
    T_ERR(cf_http_path_split("/a/b/c/d/e/f/g/h/i/j/k/l/m/n/o/p/q", 34, &s), CF_E_PARSE);
    T_OK(cf_http_path_split("/a/b/c/d/e/f/g/h/i/j/k/l/m/n/o/p", 32, &s));
    {
        static char longp[CF_HTTP_MAX_URL + 2];
        memset(longp, 'a', sizeof(longp));
        longp[0] = '/';
        T_ERR(cf_http_path_split(longp, sizeof(longp), &s), CF_E_TOO_LARGE);
    }
    /* Percent-decoding. */
    T_OK(cf_http_pct_decode("a+b%2B%41", 9, true, out, sizeof(out), &n));
    T_STREQ(out, "a b+A");
    T_OK(cf_http_pct_decode("a+b", 3, false, out, sizeof(out), &n));
    T_STREQ(out, "a+b");
    T_ERR(cf_http_pct_decode("%", 1, false, out, sizeof(out), &n), CF_E_PARSE);
    T_ERR(cf_http_pct_decode("%g0", 3, false, out, sizeof(out), &n), CF_E_PARSE);
    T_ERR(cf_http_pct_decode("0123456789abcdef", 16, false, out, sizeof(out), &n), CF_E_TOO_LARGE);
    /* Query strings. */
    T_OK(cf_http_query_parse("a=1&b=x+y%21&&c&a=2", 19, &q));
    T_EQ(q.n, 4);
    T_STREQ(cf_http_kv_get(q.kv, q.n, "a"), "1");
    T_STREQ(cf_http_kv_get(q.kv, q.n, "b"), "x y!");
    T_STREQ(cf_http_kv_get(q.kv, q.n, "c"), "");
    T_OK(cf_http_query_parse("", 0, &q));
    T_EQ(q.n, 0);
    T_ERR(cf_http_query_parse("=1", 2, &q), CF_E_PARSE);
    T_ERR(cf_http_query_parse("a=%00", 5, &q), CF_E_PARSE);
    T_ERR(cf_http_query_parse("a=%x", 4, &q), CF_E_PARSE);
    {
        char many[4 * (CF_HTTP_MAX_QUERY_PARAMS + 1) + 1];
        size_t k = 0;
        for (int i = 0; i <= CF_HTTP_MAX_QUERY_PARAMS; i++) {
            memcpy(many + k, "a=1&", 4);
            k += 4;
        }
        T_ERR(cf_http_query_parse(many, k, &q), CF_E_PARSE);
    }
    /* Request ids. */
    T_ASSERT(cf_http_request_id_valid("abc-DEF_1.2", 11));
    T_ASSERT(!cf_http_request_id_valid("a b", 3));
    T_ASSERT(!cf_http_request_id_valid("", 0));
    T_ASSERT(!cf_http_request_id_valid("a\nb", 3));
    {
        char longid[CF_HTTP_MAX_REQUEST_ID + 2];
        memset(longid, 'a', sizeof(longid));
        T_ASSERT(cf_http_request_id_valid(longid, CF_HTTP_MAX_REQUEST_ID));
        T_ASSERT(!cf_http_request_id_valid(longid, CF_HTTP_MAX_REQUEST_ID + 1));
    }
}

/* ---- plain HTTP ------------------------------------------------------------------- */

static void test_routing(void)
{
    cf_http_server_opts o = {.name = "test"};
    cf_http_server *s = start(&o);
    cf_http_client *c;
    cf_http_response r;
    json_t *v = NULL;
    const char *str = NULL;
    int before;

    T_ASSERT(s != NULL);
    T_ASSERT(cf_http_server_port(s) != 0);
    c = client(s, false, NULL, NULL, NULL, NULL, 0);
    T_ASSERT(c != NULL);

    T_OK(get(c, "GET", "/v1/echo/tee%2D1/sub/a%20b?x=1+2%21&y=z", &r));
    T_EQ(r.status, 200);
    T_STREQ(r.content_type, "application/json");
    T_OK(cf_http_response_json(&r, &v));
    T_OK(cf_json_get_str(v, "id", true, 64, &str));
    T_STREQ(str, "tee-1");
    T_OK(cf_json_get_str(v, "name", true, 64, &str));
    T_STREQ(str, "a b");
    T_OK(cf_json_get_str(v, "x", true, 64, &str));
    T_STREQ(str, "1 2!");
    T_OK(cf_json_get_str(v, "route", true, 64, &str));
    T_STREQ(str, "/v1/echo/{id}/sub/{name}");
    T_ASSERT(json_is_null(json_object_get(v, "peer")));
    /* A generated request id: 32 hex characters, echoed in the header. */
    T_OK(cf_json_get_str(v, "rid", true, 64, &str));
    T_EQ(strlen(str), 32);
    T_STREQ(str, r.request_id);
    json_decref(v);
    v = NULL;
    cf_http_response_free(&r);

    T_OK(get(c, "GET", "/", &r));
    T_EQ(r.status, 200);
    cf_http_response_free(&r);

    /* 404: unknown path, trailing slash, empty segment, extra segment. */
    const char *missing[] = {"/v1/nope", "/v1/echo/a/sub/b/", "/v1//echo", "/v1/echo/a/sub/b/c",
                             "/v1/ECHO/a/sub/b"};
    for (size_t i = 0; i < CF_ARRAY_LEN(missing); i++) {
        T_OK(get(c, "GET", missing[i], &r));
        T_EQ(r.status, 404);
        T_STREQ(error_code(&r, &v), "not_found");
        json_decref(v);
        cf_http_response_free(&r);
    }

    /* 405 with Allow listing the methods of that path. */
    T_OK(get(c, "PUT", "/v1/echo/a/sub/b", &r));
    T_EQ(r.status, 405);
    T_STREQ(error_code(&r, &v), "method_not_allowed");
    json_decref(v);
    cf_http_response_free(&r);
    T_OK(get(c, "DELETE", "/v1/echo/a/sub/b", &r));
    T_EQ(r.status, 200);
    cf_http_response_free(&r);

    /* Bad parameters never reach the handler. */
    before = atomic_load(&st.calls);
    const char *badp[] = {"/v1/echo/a%2Fb/sub/c", "/v1/echo/a%00/sub/c", "/v1/echo/%zz/sub/c",
                          "/v1/echo/a/sub/b?x=%00", "/v1/echo/a/sub/b?=1"};
    for (size_t i = 0; i < CF_ARRAY_LEN(badp); i++) {
        T_OK(get(c, "GET", badp[i], &r));
        T_EQ(r.status, 400);
        T_STREQ(error_code(&r, &v), "malformed");
        json_decref(v);
        cf_http_response_free(&r);
    }
    T_EQ(atomic_load(&st.calls), before);

    cf_http_client_free(c);
    cf_http_server_free(s);
}

/* A raw HTTP/1.1 exchange over a socket: for headers the client does not keep. */
static int raw_exchange(uint16_t port, const char *request, char *out, size_t cap)
{
    struct sockaddr_in a = {0};
    size_t n = 0;
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    if (fd < 0)
        return -1;
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
        write(fd, request, strlen(request)) != (ssize_t)strlen(request)) {
        close(fd);
        return -1;
    }
    for (;;) {
        ssize_t got = read(fd, out + n, cap - 1 - n);
        if (got <= 0)
            break;
        n += (size_t)got;
        if (n == cap - 1)
            break;
    }
    out[n] = 0;
    close(fd);
    return 0;
}

static void test_raw_requests(void)
{
    cf_http_server_opts o = {0};
    cf_http_server *s = start(&o);
    char out[4096], req[3000];

    T_ASSERT(s != NULL);
    T_OK(raw_exchange(cf_http_server_port(s),
                      "PUT /v1/echo/a/sub/b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                      "Content-Length: 0\r\n\r\n",
                      out, sizeof(out)));
    T_ASSERT(strncmp(out, "HTTP/1.1 405", 12) == 0);
    T_ASSERT(strstr(out, "Allow: GET, DELETE\r\n") != NULL);
    T_ASSERT(strstr(out, "Cache-Control: no-store\r\n") != NULL);
    T_ASSERT(strstr(out, "X-Content-Type-Options: nosniff\r\n") != NULL);
    /* A request target longer than CF_HTTP_MAX_URL: 414, no handler. */
    {
        int before = atomic_load(&st.calls);
        memcpy(req, "GET /v1/echo/a/sub/", 19);
        memset(req + 19, 'b', CF_HTTP_MAX_URL);
        T_OK(cf_fmt(req + 19 + CF_HTTP_MAX_URL, sizeof(req) - 19 - CF_HTTP_MAX_URL,
                    " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
        T_OK(raw_exchange(cf_http_server_port(s), req, out, sizeof(out)));
        T_ASSERT(strncmp(out, "HTTP/1.1 414", 12) == 0);
        T_EQ(atomic_load(&st.calls), before);
    }
    /* Absolute-form and fragments are not routed. */
    T_OK(raw_exchange(cf_http_server_port(s),
                      "GET /v1/echo/a/sub/b#frag HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                      out, sizeof(out)));
    T_ASSERT(strncmp(out, "HTTP/1.1 400", 12) == 0);
    T_OK(raw_exchange(cf_http_server_port(s),
                      "GET http://x/v1/echo/a/sub/b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                      out, sizeof(out)));
    T_ASSERT(strncmp(out, "HTTP/1.1 404", 12) == 0);
    cf_http_server_free(s);
}

static void test_request_id(void)
{
    cf_http_server_opts o = {0};
    cf_http_server *s = start(&o);
    cf_http_client *c;
    cf_http_response r;
    cf_http_request q = {.method = "GET", .path = "/v1/echo/a/sub/b"};
    json_t *v = NULL;
    const char *str = NULL;

    T_ASSERT(s != NULL);
    c = client(s, false, NULL, NULL, NULL, NULL, 0);
    T_ASSERT(c != NULL);
    q.request_id = "req-abc_123.x";
    T_OK(cf_http_client_do(c, &q, &r));
    T_STREQ(r.request_id, "req-abc_123.x");
    T_OK(cf_http_response_json(&r, &v));
    T_OK(cf_json_get_str(v, "rid", true, 64, &str));
    T_STREQ(str, "req-abc_123.x");
    json_decref(v);
    cf_http_response_free(&r);

    /* Malformed incoming ids are replaced, not echoed (sent as raw extra headers: the
     * client itself refuses to send them as request_id). */
    const char *bad[] = {"X-Request-Id: has space", "X-Request-Id: semi;colon",
                         "X-Request-Id: "
                         "0123456789012345678901234567890123456789012345678901234567890123456789"};
    q.request_id = "0123456789012345678901234567890123456789012345678901234567890123456789";
    T_ERR(cf_http_client_do(c, &q, &r), CF_E_INVAL);
    q.request_id = NULL;
    for (size_t i = 0; i < CF_ARRAY_LEN(bad); i++) {
        const char *hl[] = {bad[i], NULL};
        q.headers = hl;
        T_OK(cf_http_client_do(c, &q, &r));
        T_EQ(r.status, 200);
        T_ASSERT(strstr(bad[i], r.request_id) == NULL);
        T_EQ(strlen(r.request_id), 32);
        cf_http_response_free(&r);
    }
    q.headers = NULL;
    /* The id also appears in error bodies (checked by error_code). */
    q.request_id = "err-id-1";
    q.path = "/v1/nope";
    T_OK(cf_http_client_do(c, &q, &r));
    T_STREQ(r.request_id, "err-id-1");
    T_STREQ(error_code(&r, &v), "not_found");
    json_decref(v);
    cf_http_response_free(&r);
    cf_http_client_free(c);
    cf_http_server_free(s);
}

static void test_body_limits(void)
{
    cf_http_server_opts o = {.max_body = 4096};
    cf_http_server *s = start(&o);
    cf_http_client *c;
    cf_http_response r;
    cf_http_request q = {.method = "POST", .path = "/v1/body"};
    char body[200];
    json_t *v = NULL;
    int before;
    const char *chunked[] = {"Transfer-Encoding: chunked", NULL};

    T_ASSERT(s != NULL);
    c = client(s, false, NULL, NULL, NULL, NULL, 0);
    T_ASSERT(c != NULL);

    /* 64 bytes (the route's cap) pass. */
    memset(body, ' ', sizeof(body));
    memcpy(body, "{\"a\":1}", 7);
    q.body = body;
    q.body_len = 64;
    T_OK(cf_http_client_do(c, &q, &r));
    T_EQ(r.status, 201);
    cf_http_response_free(&r);

    /* 65 bytes: 413 before the handler. */
    before = atomic_load(&st.calls);
    q.body_len = 65;
    T_OK(cf_http_client_do(c, &q, &r));
    T_EQ(r.status, 413);
    T_STREQ(error_code(&r, &v), "too_large");
    json_decref(v);
    cf_http_response_free(&r);
    /* The same, chunked (no Content-Length): discarded while streaming, then 413. */
    q.headers = chunked;
    q.body_len = 150;
    T_OK(cf_http_client_do(c, &q, &r));
    T_EQ(r.status, 413);
    cf_http_response_free(&r);
    q.headers = NULL;
    T_EQ(atomic_load(&st.calls), before);

    /* A huge chunked body is dropped after CF_HTTP_MAX_DRAIN: no handler, no success. */
    {
        size_t big_len = CF_HTTP_MAX_DRAIN + 512 * 1024;
        char *big = malloc(big_len);
        T_ASSERT(big != NULL);
        memset(big, 'x', big_len);
        q.headers = chunked;
        q.body = big;
        q.body_len = big_len;
        int rc = cf_http_client_do(c, &q, &r);
        if (rc == 0) {
            T_EQ(r.status, 413);
            cf_http_response_free(&r);
        }
        q.headers = NULL;
        free(big);
        T_EQ(atomic_load(&st.calls), before);
    }

    /* Server default cap applies to routes without their own. */
    q.path = "/v1/raw";
    q.body = body;
    q.body_len = sizeof(body);
    q.content_type = "application/octet-stream";
    T_OK(cf_http_client_do(c, &q, &r));
    T_EQ(r.status, 200);
    T_ASSERT(r.body.len == 3 && memcmp(r.body.data, "200", 3) == 0);
    cf_http_response_free(&r);
    {
        char *big = calloc(1, 4097);
        T_ASSERT(big != NULL);
        q.body = big;
        q.body_len = 4097;
        T_OK(cf_http_client_do(c, &q, &r));
        T_EQ(r.status, 413);
        cf_http_response_free(&r);
        free(big);
    }

    /* Content type: 415 from the helper; parameters are ignored. */
    q.path = "/v1/body";
    q.body = "{\"a\":1}";
    q.body_len = 7;
    q.content_type = "text/plain";
    T_OK(cf_http_client_do(c, &q, &r));
    T_EQ(r.status, 415);
    T_STREQ(error_code(&r, &v), "unsupported_media_type");
    json_decref(v);
    cf_http_response_free(&r);
    q.content_type = "application/JSON; charset=utf-8";
    T_OK(cf_http_client_do(c, &q, &r));
    T_EQ(r.status, 201);
    cf_http_response_free(&r);
    q.content_type = "application/jsonx";
    T_OK(cf_http_client_do(c, &q, &r));
    T_EQ(r.status, 415);
    cf_http_response_free(&r);
    /* Malformed JSON body: 400 with the parser's message. */
    q.content_type = NULL;
    q.body = "{\"a\":";
    q.body_len = 5;
    T_OK(cf_http_client_do(c, &q, &r));
    T_EQ(r.status, 400);
    T_STREQ(error_code(&r, &v), "malformed");
    T_ASSERT(strstr(err_message(v), "invalid JSON") != NULL);
    json_decref(v);
    cf_http_response_free(&r);

    cf_http_client_free(c);
    cf_http_server_free(s);
}

static void test_handler_errors(void)
{
    cf_http_server_opts o = {0};
    cf_http_server *s = start(&o);
    cf_http_client *c;
    cf_http_response r;
    json_t *v = NULL;
    uint64_t ra = 0;

    T_ASSERT(s != NULL);
    c = client(s, false, NULL, NULL, NULL, NULL, 0);
    T_ASSERT(c != NULL);
    /* A 4xx detail reaches the client. */
    T_OK(get(c, "GET", "/v1/fail/t-9", &r));
    T_EQ(r.status, 404);
    T_STREQ(error_code(&r, &v), "not_found");
    T_STREQ(err_message(v), "tee 't-9' not found");
    json_decref(v);
    cf_http_response_free(&r);
    /* A 5xx detail does not. */
    T_OK(get(c, "GET", "/v1/internal", &r));
    T_EQ(r.status, 500);
    T_STREQ(error_code(&r, &v), "store_error");
    T_ASSERT(strstr(err_message(v), "secret-location") == NULL);
    json_decref(v);
    cf_http_response_free(&r);
    /* No response at all: 500. */
    T_OK(get(c, "GET", "/v1/none", &r));
    T_EQ(r.status, 500);
    T_STREQ(error_code(&r, &v), "internal_error");
    json_decref(v);
    cf_http_response_free(&r);
    /* Extra headers: Retry-After kept and parsed; bad headers refused by the helper. */
    T_OK(get(c, "GET", "/v1/retry", &r));
    T_EQ(r.status, 429);
    T_STREQ(r.retry_after, "7");
    T_OK(cf_http_response_retry_after(&r, &ra));
    T_EQ(ra, 7);
    T_STREQ(error_code(&r, &v), "rate_limited");
    T_STREQ(err_message(v), "slow down");
    json_decref(v);
    cf_http_response_free(&r);
    T_OK(get(c, "GET", "/v1/echo/a/sub/b", &r));
    T_ERR(cf_http_response_retry_after(&r, &ra), CF_E_NOT_FOUND);
    cf_http_response_free(&r);
    cf_http_client_free(c);
    cf_http_server_free(s);
}

static void test_client_limits(void)
{
    cf_http_server_opts o = {0};
    cf_http_server *s = start(&o);
    cf_http_client *c_small, *c_big, *c_dead = NULL;
    cf_http_client_opts co = {0};
    cf_http_response r;
    cf_http_request q = {.method = "GET", .path = "/v1/large"};

    T_ASSERT(s != NULL);
    c_small = client(s, false, NULL, NULL, NULL, NULL, 64 * 1024);
    c_big = client(s, false, NULL, NULL, NULL, NULL, 1u << 20);
    T_ASSERT(c_small != NULL && c_big != NULL);
    T_ERR(cf_http_client_do(c_small, &q, &r), CF_E_TOO_LARGE);
    /* The handle is reusable after an aborted transfer. */
    T_OK(get(c_small, "GET", "/v1/echo/a/sub/b", &r));
    T_EQ(r.status, 200);
    cf_http_response_free(&r);
    T_OK(cf_http_client_do(c_big, &q, &r));
    T_EQ(r.status, 200);
    T_EQ(r.body.len, LARGE_LEN);
    cf_http_response_free(&r);

    /* Request validation on the client side. */
    q.path = "no-slash";
    T_ERR(cf_http_client_do(c_big, &q, &r), CF_E_INVAL);
    q.path = "/a b";
    T_ERR(cf_http_client_do(c_big, &q, &r), CF_E_INVAL);
    q.path = "/v1/echo/a/sub/b";
    q.bearer = "tok\r\nX-Injected: 1";
    T_ERR(cf_http_client_do(c_big, &q, &r), CF_E_INVAL);
    q.bearer = NULL;
    q.method = "get";
    T_ERR(cf_http_client_do(c_big, &q, &r), CF_E_INVAL);

    /* Options. */
    co.base_url = "ftp://127.0.0.1/";
    T_ERR(cf_http_client_new(&co, &c_dead), CF_E_CONFIG);
    co.base_url = "http://127.0.0.1:1";
    co.cert_file = "/x.crt";
    T_ERR(cf_http_client_new(&co, &c_dead), CF_E_CONFIG);
    co.cert_file = NULL;
    co.expect_peer_id = "spiffe://coffer/kms";
    T_ERR(cf_http_client_new(&co, &c_dead), CF_E_CONFIG); /* identity needs https */
    co.expect_peer_id = NULL;

    cf_http_client_free(c_small);
    cf_http_client_free(c_big);
    /* Nothing listens after the server is gone. */
    {
        char url[64];
        T_OK(cf_fmt(url, sizeof(url), "http://127.0.0.1:%u", (unsigned)cf_http_server_port(s)));
        cf_http_server_free(s);
        co.base_url = url;
        co.connect_timeout_ms = 2000;
        T_OK(cf_http_client_new(&co, &c_dead));
        q.method = "GET";
        T_ERR(cf_http_client_do(c_dead, &q, &r), CF_E_UNAVAILABLE);
        cf_http_client_free(c_dead);
    }
}

static void test_server_options(void)
{
    cf_http_server *s = NULL;
    cf_http_server_opts o = {0};

    o.bind_addr = "localhost"; /* literals only */
    T_ERR(cf_http_server_new(&o, &s), CF_E_CONFIG);
    o.bind_addr = NULL;
    o.mtls = CF_HTTP_MTLS_REQUIRE; /* without TLS */
    T_ERR(cf_http_server_new(&o, &s), CF_E_CONFIG);
    o.tls_cert_file = path_srv_crt;
    o.tls_key_file = path_srv_key; /* without a client CA */
    T_ERR(cf_http_server_new(&o, &s), CF_E_CONFIG);
    o.mtls = CF_HTTP_MTLS_OFF;
    o.tls_key_file = NULL;
    T_ERR(cf_http_server_new(&o, &s), CF_E_CONFIG);
    o.tls_key_file = "/nonexistent/key.pem";
    T_ERR(cf_http_server_new(&o, &s), CF_E_CONFIG);
    o.tls_cert_file = o.tls_key_file = NULL;
    o.threads = CF_HTTP_MAX_THREADS + 1;
    T_ERR(cf_http_server_new(&o, &s), CF_E_CONFIG);
    o.threads = 0;
    T_ASSERT(s == NULL);

    T_OK(cf_http_server_new(&o, &s));
    T_OK(cf_http_server_route(s, "GET", "/v1/a/{id}", h_echo, NULL, 0));
    T_ERR(cf_http_server_route(s, "GET", "/v1/a/{other}", h_echo, NULL, 0), CF_E_EXISTS);
    T_OK(cf_http_server_route(s, "POST", "/v1/a/{id}", h_echo, NULL, 0));
    T_ERR(cf_http_server_route(s, "get", "/v1/b", h_echo, NULL, 0), CF_E_INVAL);
    T_ERR(cf_http_server_route(s, "GET", "/v1/b/", h_echo, NULL, 0), CF_E_INVAL);
    T_OK(cf_http_server_start(s));
    T_ERR(cf_http_server_route(s, "GET", "/v1/c", h_echo, NULL, 0), CF_E_CONFLICT);
    T_ERR(cf_http_server_start(s), CF_E_CONFLICT);
    /* Two servers cannot share a port. */
    {
        cf_http_server *s2 = NULL;
        cf_http_server_opts o2 = {.port = cf_http_server_port(s)};
        T_OK(cf_http_server_new(&o2, &s2));
        T_ERR(cf_http_server_start(s2), CF_E_IO);
        cf_http_server_free(s2);
    }
    cf_http_server_stop(s, 100);
    cf_http_server_stop(s, 100); /* idempotent */
    cf_http_server_free(s);
}

/* A plain TCP connection to the server on loopback, or -1. */
static int raw_connect(uint16_t port)
{
    struct sockaddr_in a = {0};
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
        close(fd);
        fd = -1;
    }
    return fd;
}

/* Reads once, waiting up to wait_ms: 0 = closed by the peer, >0 bytes, -1 nothing yet. */
static ssize_t read_within(int fd, int wait_ms, char *buf, size_t cap)
{
    struct timeval tv = {wait_ms / 1000, (wait_ms % 1000) * 1000};
    if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) != 0)
        return -2;
    return read(fd, buf, cap);
}

static void test_connection_limits(void)
{
    cf_http_server_opts o = {.threads = 1, .max_connections = 2, .conn_timeout_s = 1};
    cf_http_server *s = start(&o);
    static const char get_req[] =
        "GET /v1/echo/a/sub/b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    char buf[256];
    int a, b, c, d;
    struct timespec ts = {0, 100 * 1000 * 1000};

    T_ASSERT(s != NULL);
    a = raw_connect(cf_http_server_port(s));
    b = raw_connect(cf_http_server_port(s));
    T_ASSERT(a >= 0 && b >= 0);
    nanosleep(&ts, NULL);
    /* Over the limit: the server does not take the third connection while two are open. */
    c = raw_connect(cf_http_server_port(s));
    T_ASSERT(c >= 0);
    T_ASSERT(write(c, get_req, sizeof(get_req) - 1) == (ssize_t)(sizeof(get_req) - 1));
    T_EQ(read_within(c, 300, buf, sizeof(buf)), -1);
    close(a);
    close(b);
    T_ASSERT(read_within(c, 3000, buf, sizeof(buf)) > 12);
    T_ASSERT(strncmp(buf, "HTTP/1.1 200", 12) == 0);
    close(c);
    /* An idle connection is closed after the timeout (1 s), not kept forever. */
    d = raw_connect(cf_http_server_port(s));
    T_ASSERT(d >= 0);
    T_EQ(read_within(d, 200, buf, sizeof(buf)), -1);
    T_EQ(read_within(d, 3000, buf, sizeof(buf)), 0);
    close(d);
    cf_http_server_free(s);
}

/* ---- concurrency, epoll, graceful stop -------------------------------------------------- */

struct worker {
    cf_http_client *c;
    const char *path;
    int ok;
    int n;
};

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    for (int i = 0; i < w->n; i++) {
        cf_http_response r;
        if (get(w->c, "GET", w->path, &r) == 0 && r.status == 200)
            w->ok++;
        cf_http_response_free(&r);
    }
    return NULL;
}

static void test_epoll_concurrency(void)
{
    cf_http_server_opts o = {.threading = CF_HTTP_THREADS_EPOLL, .threads = 4};
    cf_http_server *s = start(&o);
    struct worker w[3];
    pthread_t t[3];

    T_ASSERT(s != NULL);
    for (int i = 0; i < 3; i++) {
        w[i] = (struct worker){client(s, false, NULL, NULL, NULL, NULL, 0), "/v1/echo/a/sub/b", 0,
                               50};
        T_ASSERT(w[i].c != NULL);
    }
    for (int i = 0; i < 3; i++)
        T_ASSERT(pthread_create(&t[i], NULL, worker_main, &w[i]) == 0);
    for (int i = 0; i < 3; i++)
        pthread_join(t[i], NULL);
    for (int i = 0; i < 3; i++) {
        T_EQ(w[i].ok, 50);
        cf_http_client_free(w[i].c);
    }
    cf_http_server_free(s);
}

static void test_graceful_stop(void)
{
    cf_http_server_opts o = {0};
    cf_http_server *s = start(&o);
    struct worker w;
    pthread_t t;
    struct timespec ts = {0, 10 * 1000 * 1000};
    int before;

    T_ASSERT(s != NULL);
    w = (struct worker){client(s, false, NULL, NULL, NULL, NULL, 0), "/v1/slow", 0, 1};
    T_ASSERT(w.c != NULL);
    before = atomic_load(&st.calls);
    T_ASSERT(pthread_create(&t, NULL, worker_main, &w) == 0);
    /* Wait until the request is inside the (300 ms) handler, then stop. */
    for (int i = 0; i < 500 && atomic_load(&st.calls) == before; i++)
        nanosleep(&ts, NULL);
    cf_http_server_stop(s, 5000);
    pthread_join(t, NULL);
    T_EQ(w.ok, 1); /* finished, not cut off */
    cf_http_client_free(w.c);
    cf_http_server_free(s);
}

/* ---- access log -------------------------------------------------------------------------- */

static void test_access_log(void)
{
    cf_http_server_opts o = {.name = "logtest"};
    cf_http_server *s = start(&o);
    cf_http_client *c;
    cf_http_response r;
    cf_http_request q = {.method = "POST", .path = "/v1/body?token=SECRETQUERY",
                         .bearer = "SECRETTOKEN", .body = "{\"k\":\"SECRETBODY\"}",
                         .request_id = "log-rid-1"};
    FILE *f = tmpfile();
    char buf[8192];
    size_t n;

    T_ASSERT(s != NULL && f != NULL);
    q.body_len = strlen(q.body);
    c = client(s, false, NULL, NULL, NULL, NULL, 0);
    T_ASSERT(c != NULL);
    cf_log_set_stream(f);
    T_OK(cf_http_client_do(c, &q, &r));
    T_EQ(r.status, 201);
    cf_http_response_free(&r);
    cf_http_client_free(c);
    cf_http_server_free(s); /* completes the request's log line */
    cf_log_set_stream(NULL);
    rewind(f);
    n = fread(buf, 1, sizeof(buf) - 1, f);
    buf[n] = 0;
    fclose(f);
    T_ASSERT(strstr(buf, "\"event\":\"http.access\"") != NULL);
    T_ASSERT(strstr(buf, "\"request_id\":\"log-rid-1\"") != NULL);
    T_ASSERT(strstr(buf, "\"route\":\"/v1/body\"") != NULL);
    T_ASSERT(strstr(buf, "\"method\":\"POST\"") != NULL);
    T_ASSERT(strstr(buf, "\"status\":\"201\"") != NULL);
    T_ASSERT(strstr(buf, "\"duration_ms\":") != NULL);
    T_ASSERT(strstr(buf, "SECRET") == NULL);
}

/* ---- TLS and mTLS ------------------------------------------------------------------------- */

static void test_tls(void)
{
    cf_http_server_opts o = {.tls_cert_file = path_srv_crt, .tls_key_file = path_srv_key};
    cf_http_server *s = start(&o);
    cf_http_client *c;
    cf_http_response r;
    json_t *v = NULL;

    T_ASSERT(s != NULL);
    c = client(s, true, path_ca, NULL, NULL, NULL, 0);
    T_ASSERT(c != NULL);
    T_OK(get(c, "GET", "/v1/echo/a/sub/b", &r));
    T_EQ(r.status, 200);
    T_OK(cf_http_response_json(&r, &v));
    T_ASSERT(json_is_null(json_object_get(v, "peer"))); /* no client certificate requested */
    json_decref(v);
    cf_http_response_free(&r);
    /* Several requests over the kept connection. */
    for (int i = 0; i < 3; i++) {
        T_OK(get(c, "GET", "/v1/echo/a/sub/b", &r));
        T_EQ(r.status, 200);
        cf_http_response_free(&r);
    }
    cf_http_client_free(c);

    /* The client refuses a server certificate from an unknown CA. */
    c = client(s, true, path_other_ca, NULL, NULL, NULL, 0);
    T_ASSERT(c != NULL);
    T_ERR(get(c, "GET", "/v1/echo/a/sub/b", &r), CF_E_VERIFY);
    cf_http_client_free(c);
    c = client(s, true, NULL, NULL, NULL, NULL, 0); /* system store: does not know our CA */
    T_ASSERT(c != NULL);
    T_ERR(get(c, "GET", "/v1/echo/a/sub/b", &r), CF_E_VERIFY);
    cf_http_client_free(c);
    /* Server identity pinning. */
    c = client(s, true, path_ca, NULL, NULL, "spiffe://coffer/kms", 0);
    T_ASSERT(c != NULL);
    T_OK(get(c, "GET", "/v1/echo/a/sub/b", &r));
    T_EQ(r.status, 200);
    cf_http_response_free(&r);
    cf_http_client_free(c);
    c = client(s, true, path_ca, NULL, NULL, "spiffe://coffer/iam", 0);
    T_ASSERT(c != NULL);
    T_ERR(get(c, "GET", "/v1/echo/a/sub/b", &r), CF_E_VERIFY);
    cf_http_client_free(c);
    /* Plain HTTP to a TLS port fails. */
    c = client(s, false, NULL, NULL, NULL, NULL, 0);
    T_ASSERT(c != NULL);
    T_FAILS(get(c, "GET", "/v1/echo/a/sub/b", &r));
    cf_http_client_free(c);
    cf_http_server_free(s);
}

/* A request the server must refuse with 401/403, never a handler call. */
static void expect_refused(cf_http_client *c, const char *path, int expect_status)
{
    cf_http_response r;
    int before = atomic_load(&st.calls);
    json_t *v = NULL;

    /* The server answers (rather than resetting the connection) so that a client
     * learns why; either way the handler must not run. */
    T_OK(get(c, "GET", path, &r));
    T_EQ(r.status, expect_status);
    T_ASSERT(error_code(&r, &v) != NULL);
    json_decref(v);
    cf_http_response_free(&r);
    T_EQ(atomic_load(&st.calls), before);
}

static void test_mtls_require(void)
{
    cf_http_server_opts o = {.tls_cert_file = path_srv_crt,
                             .tls_key_file = path_srv_key,
                             .client_ca_file = path_ca,
                             .mtls = CF_HTTP_MTLS_REQUIRE};
    cf_http_server *s = start(&o);
    cf_http_client *c;
    cf_http_response r;
    json_t *v = NULL;
    const char *peer = NULL;
    int before;

    T_ASSERT(s != NULL);
    /* No client certificate: refused, for existing and unknown routes alike. */
    c = client(s, true, path_ca, NULL, NULL, NULL, 0);
    T_ASSERT(c != NULL);
    expect_refused(c, "/v1/echo/a/sub/b", 401);
    expect_refused(c, "/v1/nope", 401);
    expect_refused(c, "/v1/echo/a/sub/b", 401); /* again, on a new connection */
    cf_http_client_free(c);
    /* A certificate from another CA, with a valid-looking SPIFFE ID. */
    c = client(s, true, path_ca, path_other_crt, path_other_key, NULL, 0);
    T_ASSERT(c != NULL);
    expect_refused(c, "/v1/echo/a/sub/b", 403);
    cf_http_client_free(c);
    /* Right CA, but a server-only certificate (no clientAuth). */
    c = client(s, true, path_ca, path_srvonly_crt, path_srvonly_key, NULL, 0);
    T_ASSERT(c != NULL);
    expect_refused(c, "/v1/echo/a/sub/b", 403);
    cf_http_client_free(c);
    /* Right CA, client usage, but not exactly one valid SPIFFE ID in the SAN: the
     * chain passes both verifiers, the identity rule refuses it. */
    for (int i = 0; i < ODD_COUNT; i++) {
        c = client(s, true, path_ca, path_odd_crt[i], path_odd_key[i], NULL, 0);
        T_ASSERT(c != NULL);
        expect_refused(c, "/v1/echo/a/sub/b", 403);
        cf_http_client_free(c);
    }
    /* A valid client certificate: the handler sees the SPIFFE ID. */
    before = atomic_load(&st.calls);
    c = client(s, true, path_ca, path_cli_crt, path_cli_key, "spiffe://coffer/kms", 0);
    T_ASSERT(c != NULL);
    for (int i = 0; i < 2; i++) { /* the second over the same connection */
        T_OK(get(c, "GET", "/v1/echo/a/sub/b", &r));
        T_EQ(r.status, 200);
        T_OK(cf_http_response_json(&r, &v));
        T_OK(cf_json_get_str(v, "peer", true, 256, &peer));
        T_STREQ(peer, "spiffe://coffer/gateway");
        json_decref(v);
        cf_http_response_free(&r);
    }
    T_EQ(atomic_load(&st.calls), before + 2);
    pthread_mutex_lock(&st.mu);
    T_STREQ(st.last_peer, "spiffe://coffer/gateway");
    pthread_mutex_unlock(&st.mu);
    cf_http_client_free(c);
    cf_http_server_free(s);
}

static void test_mtls_optional(void)
{
    cf_http_server_opts o = {.tls_cert_file = path_srv_crt,
                             .tls_key_file = path_srv_key,
                             .client_ca_file = path_ca,
                             .mtls = CF_HTTP_MTLS_OPTIONAL,
                             .threading = CF_HTTP_THREADS_EPOLL};
    cf_http_server *s = start(&o);
    cf_http_client *c;
    cf_http_response r;
    json_t *v = NULL;
    const char *peer = NULL;

    T_ASSERT(s != NULL);
    c = client(s, true, path_ca, NULL, NULL, NULL, 0);
    T_ASSERT(c != NULL);
    T_OK(get(c, "GET", "/v1/echo/a/sub/b", &r));
    T_EQ(r.status, 200);
    T_OK(cf_http_response_json(&r, &v));
    T_ASSERT(json_is_null(json_object_get(v, "peer"))); /* anonymous */
    json_decref(v);
    cf_http_response_free(&r);
    cf_http_client_free(c);
    c = client(s, true, path_ca, path_cli_crt, path_cli_key, NULL, 0);
    T_ASSERT(c != NULL);
    T_OK(get(c, "GET", "/v1/echo/a/sub/b", &r));
    T_OK(cf_http_response_json(&r, &v));
    T_OK(cf_json_get_str(v, "peer", true, 256, &peer));
    T_STREQ(peer, "spiffe://coffer/gateway");
    json_decref(v);
    cf_http_response_free(&r);
    cf_http_client_free(c);
    /* An untrusted certificate is refused, not downgraded to anonymous. */
    c = client(s, true, path_ca, path_other_crt, path_other_key, NULL, 0);
    T_ASSERT(c != NULL);
    expect_refused(c, "/v1/echo/a/sub/b", 403);
    cf_http_client_free(c);
    cf_http_server_free(s);
}

/* ---- set-up -------------------------------------------------------------------------------- */

static int add_gen(GENERAL_NAMES *g, int type, const char *v)
{
    GENERAL_NAME *n = GENERAL_NAME_new();
    ASN1_IA5STRING *s5 = ASN1_IA5STRING_new();
    if (n == NULL || s5 == NULL || ASN1_STRING_set(s5, v, (int)strlen(v)) != 1)
        return -1;
    GENERAL_NAME_set0_value(n, type, s5);
    return sk_GENERAL_NAME_push(g, n) > 0 ? 0 : -1;
}

/* Issues a normal client leaf, replaces its SAN and signs it again with the CA key. */
static int make_odd_cert(const cf_pki_cred *ca, int variant, const char *crt, const char *key)
{
    cf_pki_leaf_opts o = {"spiffe://coffer/odd", NULL, NULL, CF_PKI_CLIENT, DAY, NULL};
    cf_pki_cred *l = NULL;
    GENERAL_NAMES *g = sk_GENERAL_NAME_new_null();
    FILE *f;
    int rc = -1;

    if (g == NULL || cf_pki_issue(ca, &o, &l) != 0)
        goto out;
    switch (variant) {
    case ODD_NO_URI:
        rc = add_gen(g, GEN_DNS, "odd.example");
        break;
    case ODD_TWO_URIS:
        rc = add_gen(g, GEN_URI, "spiffe://coffer/a") | add_gen(g, GEN_URI, "spiffe://coffer/b");
        break;
    case ODD_HTTPS_URI:
        rc = add_gen(g, GEN_URI, "https://coffer/kms");
        break;
    default:
        rc = add_gen(g, GEN_URI, "spiffe://coffer/../kms");
        break;
    }
    if (rc != 0 ||
        X509_add1_ext_i2d(cf_pki_cert(l), NID_subject_alt_name, g, 0, X509V3_ADD_REPLACE) != 1 ||
        X509_sign(cf_pki_cert(l), cf_pki_key(ca), EVP_sha256()) <= 0) {
        rc = -1;
        goto out;
    }
    rc = -1;
    if ((f = fopen(crt, "w")) == NULL)
        goto out;
    if (PEM_write_X509(f, cf_pki_cert(l)) != 1) {
        fclose(f);
        goto out;
    }
    fclose(f);
    if ((f = fopen(key, "w")) == NULL)
        goto out;
    if (PEM_write_PrivateKey(f, cf_pki_key(l), NULL, NULL, 0, NULL, NULL) != 1) {
        fclose(f);
        goto out;
    }
    fclose(f);
    rc = 0;
out:
    GENERAL_NAMES_free(g);
    cf_pki_free(l);
    return rc;
}

static int make_certs(void)
{
    const char *dns[] = {"localhost", NULL};
    const char *ips[] = {"127.0.0.1", NULL};
    cf_pki_cred *ca = NULL, *other = NULL, *l = NULL;
    cf_pki_leaf_opts srv = {"spiffe://coffer/kms", dns, ips, CF_PKI_SERVER | CF_PKI_CLIENT, DAY,
                            NULL};
    cf_pki_leaf_opts cli = {"spiffe://coffer/gateway", NULL, NULL, CF_PKI_CLIENT, DAY, NULL};
    cf_pki_leaf_opts srvonly = {"spiffe://coffer/attest", NULL, NULL, CF_PKI_SERVER, DAY, NULL};
    int rc = 0;

#define P(var, name) CF_GUARD_OUT(cf_fmt(var, sizeof(var), "%s/%s", tmpdir, name))
    P(path_ca, "ca.crt");
    P(path_srv_crt, "srv.crt");
    P(path_srv_key, "srv.key");
    P(path_cli_crt, "cli.crt");
    P(path_cli_key, "cli.key");
    P(path_other_ca, "other-ca.crt");
    P(path_other_crt, "other.crt");
    P(path_other_key, "other.key");
    P(path_srvonly_crt, "srvonly.crt");
    P(path_srvonly_key, "srvonly.key");
#undef P
    CF_GUARD_OUT(cf_pki_ca_create("Coffer test CA", DAY, &ca));
    CF_GUARD_OUT(cf_pki_ca_create("Other CA", DAY, &other));
    CF_GUARD_OUT(cf_pki_write(ca, path_ca, NULL));
    CF_GUARD_OUT(cf_pki_write(other, path_other_ca, NULL));
    CF_GUARD_OUT(cf_pki_issue(ca, &srv, &l));
    CF_GUARD_OUT(cf_pki_write(l, path_srv_crt, path_srv_key));
    cf_pki_free(l);
    l = NULL;
    CF_GUARD_OUT(cf_pki_issue(ca, &cli, &l));
    CF_GUARD_OUT(cf_pki_write(l, path_cli_crt, path_cli_key));
    cf_pki_free(l);
    l = NULL;
    CF_GUARD_OUT(cf_pki_issue(other, &cli, &l));
    CF_GUARD_OUT(cf_pki_write(l, path_other_crt, path_other_key));
    cf_pki_free(l);
    l = NULL;
    CF_GUARD_OUT(cf_pki_issue(ca, &srvonly, &l));
    CF_GUARD_OUT(cf_pki_write(l, path_srvonly_crt, path_srvonly_key));
    for (int i = 0; i < ODD_COUNT; i++) {
        CF_GUARD_OUT(cf_fmt(path_odd_crt[i], sizeof(path_odd_crt[i]), "%s/odd%d.crt", tmpdir, i));
        CF_GUARD_OUT(cf_fmt(path_odd_key[i], sizeof(path_odd_key[i]), "%s/odd%d.key", tmpdir, i));
        CF_ENSURE_OUT(make_odd_cert(ca, i, path_odd_crt[i], path_odd_key[i]) == 0, CF_E_CRYPTO);
    }
out:
    cf_pki_free(l);
    cf_pki_free(ca);
    cf_pki_free(other);
    return rc;
}

static void test_url_split(void)
{
    char base[64];
    const char *path = NULL;

    T_OK(cf_http_url_split("https://127.0.0.1:8443/.well-known/jwks.json?x=1", base, sizeof(base), &path));
    T_STREQ(base, "https://127.0.0.1:8443");
    T_STREQ(path, "/.well-known/jwks.json?x=1");
    T_OK(cf_http_url_split("http://localhost:80", base, sizeof(base), &path));
    T_STREQ(base, "http://localhost:80");
    T_STREQ(path, "/");
    T_ERR(cf_http_url_split("ftp://x/y", base, sizeof(base), &path), CF_E_INVAL);
    T_ERR(cf_http_url_split("https:///nohost", base, sizeof(base), &path), CF_E_INVAL);
    T_ERR(cf_http_url_split("https://", base, sizeof(base), &path), CF_E_INVAL);
    T_ERR(cf_http_url_split("https://a-very-long-host-name-that-does-not-fit-in-the-buffer.example:1/", base, 16,
                            &path), CF_E_INVAL);
}

int main(void)
{
    char cmd[128];

    cf_log_set_level(CF_LOG_WARN); /* keep the test output readable */
    if (cf_fmt(tmpdir, sizeof(tmpdir), "/tmp/coffer-http-XXXXXX") < 0 || mkdtemp(tmpdir) == NULL)
        abort();
    if (make_certs() != 0) {
        fprintf(stderr, "certificate set-up failed: %s\n", cf_err_detail(CF_E_CRYPTO));
        return 1;
    }
    T_RUN(test_url_split);
    T_RUN(test_route_parsing);
    T_RUN(test_routing);
    T_RUN(test_raw_requests);
    T_RUN(test_request_id);
    T_RUN(test_body_limits);
    T_RUN(test_handler_errors);
    T_RUN(test_client_limits);
    T_RUN(test_server_options);
    T_RUN(test_connection_limits);
    T_RUN(test_epoll_concurrency);
    T_RUN(test_graceful_stop);
    cf_log_set_level(CF_LOG_INFO);
    T_RUN(test_access_log);
    cf_log_set_level(CF_LOG_WARN);
    T_RUN(test_tls);
    T_RUN(test_mtls_require);
    T_RUN(test_mtls_optional);
    if (cf_fmt(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir) == 0 && system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", tmpdir);
    return t_done();
}
