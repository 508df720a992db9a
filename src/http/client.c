/*
 * HTTP client over libcurl (see client.h).
 *
 * The easy handle is kept for the life of the client so that connections (and
 * TLS sessions) are reused; before each call curl_easy_reset() returns every
 * option to its default — live connections survive a reset — and all options
 * are set again, so nothing leaks from one request into the next.
 *
 * Server identity (expect_peer_id): libcurl's OpenSSL backend lets us add a
 * verify callback to the SSL_CTX it builds (CURLOPT_SSL_CTX_FUNCTION is called
 * after curl has set SSL_VERIFY_PEER). The callback keeps OpenSSL's own chain
 * verdict and, for the leaf, additionally requires exactly one URI SAN equal to
 * the expected SPIFFE ID (X509-SVID spec §2). A client built against another
 * TLS backend refuses expect_peer_id rather than silently skipping the check.
 */
#include "http/client.h"

#include <curl/curl.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "base/err.h"
#include "base/json.h"
#include "base/parse.h"
#include "base/secmem.h"

/* Largest Retry-After we honour: one day (a longer one is a server bug). */
#define RETRY_AFTER_MAX 86400
#define URL_MAX (2 * CF_HTTP_MAX_URL)

struct cf_http_client {
    CURL *h;
    pthread_mutex_t mu;
    char *base_url;
    char *ca_file, *cert_file, *key_file, *expect_peer_id;
    unsigned connect_timeout_ms, timeout_ms;
    size_t max_response;
};

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static CURLcode global_rc = CURLE_FAILED_INIT;
static int ctx_ex_index = -1;

static void global_init(void)
{
    global_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
    ctx_ex_index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, NULL);
}

static bool header_value_ok(const char *s, size_t max)
{
    size_t n = strnlen(s, max + 1);
    if (n > max)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return false;
    }
    return true;
}

static int dup_opt(const char *s, char **ret)
{
    if (s == NULL) {
        *ret = NULL;
        return 0;
    }
    *ret = cf_strndup_max(s, 4096);
    return *ret != NULL ? 0 : CF_E_NOMEM;
}

int cf_http_client_new(const cf_http_client_opts *o, cf_http_client **ret)
{
    cf_http_client *c = NULL;
    const curl_version_info_data *vi;
    size_t bl;
    int rc = 0;

    CF_ENSURE(o != NULL && ret != NULL && o->base_url != NULL, CF_E_INVAL);
    pthread_once(&global_once, global_init);
    CF_ENSURE(global_rc == CURLE_OK && ctx_ex_index >= 0,
              cf_err_set(CF_E_HTTP, "libcurl initialisation failed"));
    bl = strnlen(o->base_url, CF_HTTP_MAX_URL + 1);
    CF_ENSURE(bl <= CF_HTTP_MAX_URL && header_value_ok(o->base_url, CF_HTTP_MAX_URL) &&
                  (strncmp(o->base_url, "http://", 7) == 0 ||
                   strncmp(o->base_url, "https://", 8) == 0),
              cf_err_set(CF_E_CONFIG, "base URL must be http:// or https://"));
    CF_ENSURE((o->cert_file == NULL) == (o->key_file == NULL),
              cf_err_set(CF_E_CONFIG, "client certificate and key go together"));
    if (o->expect_peer_id != NULL) {
        CF_ENSURE(strncmp(o->base_url, "https://", 8) == 0,
                  cf_err_set(CF_E_CONFIG, "a server identity can only be checked over https"));
        CF_ENSURE(strnlen(o->expect_peer_id, CF_SPIFFE_ID_MAX_LEN + 1) <= CF_SPIFFE_ID_MAX_LEN &&
                      strncmp(o->expect_peer_id, "spiffe://", 9) == 0,
                  cf_err_set(CF_E_CONFIG, "expected server identity is not a SPIFFE ID"));
        vi = curl_version_info(CURLVERSION_NOW);
        CF_ENSURE(vi != NULL && vi->ssl_version != NULL &&
                      strncmp(vi->ssl_version, "OpenSSL", 7) == 0,
                  cf_err_set(CF_E_UNSUPPORTED,
                             "server identity checks need libcurl built with OpenSSL"));
    }
    c = calloc(1, sizeof(*c));
    CF_ENSURE(c != NULL, CF_E_NOMEM);
    CF_ENSURE_OUT(pthread_mutex_init(&c->mu, NULL) == 0, CF_E_NOMEM);
    c->h = curl_easy_init();
    CF_ENSURE_OUT(c->h != NULL, CF_E_NOMEM);
    /* Without a trailing '/', so that base + "/path" has exactly one. */
    while (bl > 0 && o->base_url[bl - 1] == '/')
        bl--;
    c->base_url = strndup(o->base_url, bl);
    CF_ENSURE_OUT(c->base_url != NULL, CF_E_NOMEM);
    CF_GUARD_OUT(dup_opt(o->ca_file, &c->ca_file));
    CF_GUARD_OUT(dup_opt(o->cert_file, &c->cert_file));
    CF_GUARD_OUT(dup_opt(o->key_file, &c->key_file));
    CF_GUARD_OUT(dup_opt(o->expect_peer_id, &c->expect_peer_id));
    c->connect_timeout_ms = o->connect_timeout_ms ? o->connect_timeout_ms
                                                  : CF_HTTP_CLIENT_CONNECT_TIMEOUT_MS;
    c->timeout_ms = o->timeout_ms ? o->timeout_ms : CF_HTTP_CLIENT_TIMEOUT_MS;
    c->max_response = o->max_response ? o->max_response : CF_HTTP_MAX_BODY;
    *ret = c;
    c = NULL;
out:
    cf_http_client_free(c);
    return rc;
}

void cf_http_client_free(cf_http_client *c)
{
    if (c == NULL)
        return;
    if (c->h != NULL) {
        curl_easy_cleanup(c->h);
        pthread_mutex_destroy(&c->mu);
    }
    free(c->base_url);
    free(c->ca_file);
    free(c->cert_file);
    free(c->key_file);
    free(c->expect_peer_id);
    free(c);
}

/* ---- per-transfer state ------------------------------------------------------------- */

struct xfer {
    cf_http_response *resp;
    size_t cap;
    bool too_large;
};

static size_t on_write(char *p, size_t size, size_t nmemb, void *ud)
{
    struct xfer *x = ud;
    size_t n = size * nmemb;

    if (x->resp->body.len + n > x->cap || cf_buf_put(&x->resp->body, p, n) < 0) {
        x->too_large = true;
        return 0; /* aborts the transfer: CURLE_WRITE_ERROR */
    }
    return n;
}

/* Keeps a header value if it fits; "" otherwise. */
static void capture(char *dst, size_t cap, const char *v, size_t n)
{
    while (n > 0 && (v[n - 1] == '\r' || v[n - 1] == '\n' || v[n - 1] == ' ' || v[n - 1] == '\t'))
        n--;
    while (n > 0 && (*v == ' ' || *v == '\t')) {
        v++;
        n--;
    }
    if (n >= cap || memchr(v, 0, n) != NULL) {
        dst[0] = 0;
        return;
    }
    memcpy(dst, v, n);
    dst[n] = 0;
}

static size_t on_header(char *p, size_t size, size_t nmemb, void *ud)
{
    struct xfer *x = ud;
    size_t n = size * nmemb;
    cf_http_response *r = x->resp;
    static const struct {
        const char *name;
        size_t off, cap;
    } want[] = {
        {"content-type", offsetof(cf_http_response, content_type), CF_HTTP_MAX_CAPTURED_HEADER},
        {"x-request-id", offsetof(cf_http_response, request_id), CF_HTTP_MAX_REQUEST_ID + 1},
        {"retry-after", offsetof(cf_http_response, retry_after), CF_HTTP_MAX_CAPTURED_HEADER},
    };

    /* A new status line (after a 1xx, say) starts a new header block. */
    if (n >= 5 && memcmp(p, "HTTP/", 5) == 0) {
        r->content_type[0] = r->request_id[0] = r->retry_after[0] = 0;
        return n;
    }
    for (size_t i = 0; i < CF_ARRAY_LEN(want); i++) {
        size_t nl = strlen(want[i].name);
        if (n > nl && p[nl] == ':' && strncasecmp(p, want[i].name, nl) == 0)
            capture((char *)r + want[i].off, want[i].cap, p + nl + 1, n - nl - 1);
    }
    return n;
}

/* Leaf check for expect_peer_id; OpenSSL's chain verdict is kept as is. */
static int verify_cb(int preverify_ok, X509_STORE_CTX *ctx)
{
    SSL *ssl;
    const char *expect;
    GENERAL_NAMES *gens;
    int nuri = 0, match = 0;

    if (!preverify_ok || X509_STORE_CTX_get_error_depth(ctx) != 0)
        return preverify_ok;
    ssl = X509_STORE_CTX_get_ex_data(ctx, SSL_get_ex_data_X509_STORE_CTX_idx());
    expect = ssl ? SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), ctx_ex_index) : NULL;
    if (expect == NULL)
        goto reject; /* the callback is only installed with an expectation */
    gens = X509_get_ext_d2i(X509_STORE_CTX_get_current_cert(ctx), NID_subject_alt_name, NULL,
                            NULL);
    for (int i = 0; gens != NULL && i < sk_GENERAL_NAME_num(gens); i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
        if (g->type != GEN_URI)
            continue;
        nuri++;
        const ASN1_IA5STRING *u = g->d.uniformResourceIdentifier;
        size_t el = strlen(expect);
        if ((size_t)ASN1_STRING_length(u) == el && memcmp(ASN1_STRING_get0_data(u), expect, el) == 0)
            match = 1;
    }
    GENERAL_NAMES_free(gens);
    if (nuri == 1 && match)
        return 1;
reject:
    X509_STORE_CTX_set_error(ctx, X509_V_ERR_APPLICATION_VERIFICATION);
    return 0;
}

static CURLcode on_ssl_ctx(CURL *h, void *sslctx, void *ud)
{
    cf_http_client *c = ud;
    SSL_CTX *ctx = sslctx;

    (void)h;
    if (SSL_CTX_set_ex_data(ctx, ctx_ex_index, c->expect_peer_id) != 1)
        return CURLE_SSL_CERTPROBLEM;
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, verify_cb);
    return CURLE_OK;
}

static int map_curl_error(CURLcode cc, const struct xfer *x, const char *errbuf)
{
    const char *d = errbuf[0] ? errbuf : curl_easy_strerror(cc);

    switch (cc) {
    case CURLE_OPERATION_TIMEDOUT:
        return cf_err_set(CF_E_TIMEOUT, "HTTP request timed out: %s", d);
    case CURLE_FILESIZE_EXCEEDED:
        return cf_err_set(CF_E_TOO_LARGE, "HTTP response exceeds %zu bytes", x->cap);
    case CURLE_WRITE_ERROR:
        if (x->too_large)
            return cf_err_set(CF_E_TOO_LARGE, "HTTP response exceeds %zu bytes", x->cap);
        break;
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
        return cf_err_set(CF_E_UNAVAILABLE, "cannot connect: %s", d);
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
        return cf_err_set(CF_E_VERIFY, "TLS: %s", d);
    case CURLE_SSL_CERTPROBLEM:
        return cf_err_set(CF_E_CONFIG, "client certificate: %s", d);
    default:
        break;
    }
    return cf_err_set(CF_E_HTTP, "HTTP request failed: %s", d);
}

#define SETOPT(opt, val)                                                                 \
    do {                                                                                 \
        if (curl_easy_setopt(c->h, (opt), (val)) != CURLE_OK) {                          \
            rc = cf_err_set(CF_E_HTTP, "curl option %s refused", #opt);                  \
            goto out;                                                                    \
        }                                                                                \
    } while (0)

int cf_http_client_do(cf_http_client *c, const cf_http_request *req, cf_http_response *ret)
{
    cf_http_response resp;
    struct xfer x;
    struct curl_slist *hdrs = NULL, *nh;
    char url[URL_MAX], line[CF_HTTP_MAX_HEADER_VALUE + 64], errbuf[CURL_ERROR_SIZE];
    bool locked = false;
    CURLcode cc;
    long status = 0;
    int rc = 0;

    CF_ENSURE(c != NULL && req != NULL && ret != NULL && req->method != NULL &&
                  req->path != NULL,
              CF_E_INVAL);
    memset(&resp, 0, sizeof(resp));
    cf_buf_init(&resp.body, c->max_response);
    x.resp = &resp;
    x.cap = c->max_response;
    x.too_large = false;
    errbuf[0] = 0;

    /* The path is appended as is: it must already be percent-encoded. */
    CF_ENSURE_OUT(req->path[0] == '/' && strnlen(req->path, CF_HTTP_MAX_URL + 1) <= CF_HTTP_MAX_URL,
                  cf_err_set(CF_E_INVAL, "request path must start with '/' and be bounded"));
    for (const char *p = req->path; *p; p++)
        CF_ENSURE_OUT(*p > 0x20 && *p < 0x7f, cf_err_set(CF_E_INVAL, "unencoded byte in path"));
    CF_ENSURE_OUT(strnlen(req->method, CF_HTTP_MAX_METHOD + 1) <= CF_HTTP_MAX_METHOD &&
                      strspn(req->method, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") == strlen(req->method) &&
                      req->method[0] != 0,
                  cf_err_set(CF_E_INVAL, "bad HTTP method"));
    CF_ENSURE_OUT(req->body != NULL || req->body_len == 0, CF_E_INVAL);
    CF_GUARD_OUT(cf_fmt(url, sizeof(url), "%s%s", c->base_url, req->path));

    if (req->bearer != NULL) {
        CF_ENSURE_OUT(req->bearer[0] != 0 && header_value_ok(req->bearer, CF_JWT_MAX_BYTES) &&
                          strpbrk(req->bearer, " \t") == NULL,
                      cf_err_set(CF_E_INVAL, "bad bearer token"));
        CF_GUARD_OUT(cf_fmt(line, sizeof(line), "Authorization: Bearer %s", req->bearer));
        CF_ENSURE_OUT((nh = curl_slist_append(hdrs, line)) != NULL, CF_E_NOMEM);
        hdrs = nh;
    }
    if (req->body_len > 0 || req->content_type != NULL) {
        const char *ct = req->content_type ? req->content_type : "application/json";
        CF_ENSURE_OUT(header_value_ok(ct, 128), CF_E_INVAL);
        CF_GUARD_OUT(cf_fmt(line, sizeof(line), "Content-Type: %s", ct));
        CF_ENSURE_OUT((nh = curl_slist_append(hdrs, line)) != NULL, CF_E_NOMEM);
        hdrs = nh;
    }
    if (req->request_id != NULL) {
        CF_ENSURE_OUT(header_value_ok(req->request_id, CF_HTTP_MAX_REQUEST_ID), CF_E_INVAL);
        CF_GUARD_OUT(cf_fmt(line, sizeof(line), "X-Request-Id: %s", req->request_id));
        CF_ENSURE_OUT((nh = curl_slist_append(hdrs, line)) != NULL, CF_E_NOMEM);
        hdrs = nh;
    }
    /* No "Expect: 100-continue" round trip: bodies are small and the server answers
     * an over-cap Content-Length with 413 anyway. */
    CF_ENSURE_OUT((nh = curl_slist_append(hdrs, "Expect:")) != NULL, CF_E_NOMEM);
    hdrs = nh;
    for (size_t i = 0; req->headers != NULL && req->headers[i] != NULL; i++) {
        const char *h = req->headers[i], *colon = strchr(h, ':');
        CF_ENSURE_OUT(colon != NULL && colon != h && header_value_ok(h, CF_HTTP_MAX_HEADER_VALUE),
                      cf_err_set(CF_E_INVAL, "bad extra header"));
        CF_ENSURE_OUT((nh = curl_slist_append(hdrs, h)) != NULL, CF_E_NOMEM);
        hdrs = nh;
    }

    CF_ENSURE_OUT(pthread_mutex_lock(&c->mu) == 0, CF_E_INTERNAL);
    locked = true;
    curl_easy_reset(c->h);
    SETOPT(CURLOPT_URL, url);
    SETOPT(CURLOPT_PROTOCOLS_STR, "http,https");
    SETOPT(CURLOPT_FOLLOWLOCATION, 0L);
    SETOPT(CURLOPT_NOSIGNAL, 1L);
    SETOPT(CURLOPT_CONNECTTIMEOUT_MS, (long)c->connect_timeout_ms);
    SETOPT(CURLOPT_TIMEOUT_MS, (long)c->timeout_ms);
    SETOPT(CURLOPT_SSL_VERIFYPEER, 1L);
    SETOPT(CURLOPT_SSL_VERIFYHOST, 2L);
    SETOPT(CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
    if (c->ca_file != NULL) {
        SETOPT(CURLOPT_CAINFO, c->ca_file);
        SETOPT(CURLOPT_CAPATH, (char *)NULL); /* only this CA, not the system directory */
    }
    if (c->cert_file != NULL) {
        SETOPT(CURLOPT_SSLCERT, c->cert_file);
        SETOPT(CURLOPT_SSLCERTTYPE, "PEM");
        SETOPT(CURLOPT_SSLKEY, c->key_file);
        SETOPT(CURLOPT_SSLKEYTYPE, "PEM");
    }
    if (c->expect_peer_id != NULL) {
        SETOPT(CURLOPT_SSL_CTX_FUNCTION, on_ssl_ctx);
        SETOPT(CURLOPT_SSL_CTX_DATA, (void *)c);
    }
    SETOPT(CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)c->max_response);
    SETOPT(CURLOPT_WRITEFUNCTION, on_write);
    SETOPT(CURLOPT_WRITEDATA, (void *)&x);
    SETOPT(CURLOPT_HEADERFUNCTION, on_header);
    SETOPT(CURLOPT_HEADERDATA, (void *)&x);
    SETOPT(CURLOPT_ERRORBUFFER, errbuf);
    SETOPT(CURLOPT_HTTPHEADER, hdrs);
    if (strcmp(req->method, "GET") == 0 && req->body_len == 0) {
        SETOPT(CURLOPT_HTTPGET, 1L);
    } else if (strcmp(req->method, "HEAD") == 0) {
        SETOPT(CURLOPT_NOBODY, 1L);
    } else {
        if (req->body_len > 0 || strcmp(req->method, "POST") == 0 ||
            strcmp(req->method, "PUT") == 0 || strcmp(req->method, "PATCH") == 0) {
            SETOPT(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
            SETOPT(CURLOPT_POSTFIELDS, req->body_len ? (const char *)req->body : "");
        }
        if (strcmp(req->method, "POST") != 0)
            SETOPT(CURLOPT_CUSTOMREQUEST, req->method);
    }

    cc = curl_easy_perform(c->h);
    if (cc != CURLE_OK) {
        rc = map_curl_error(cc, &x, errbuf);
        goto out;
    }
    if (curl_easy_getinfo(c->h, CURLINFO_RESPONSE_CODE, &status) != CURLE_OK || status < 100) {
        rc = cf_err_set(CF_E_HTTP, "no HTTP status");
        goto out;
    }
    resp.status = status;
    *ret = resp;
    memset(&resp, 0, sizeof(resp));
out:
    if (locked) {
        /* Drop our pointers (headers, stack buffers) from the handle before unlocking. */
        curl_easy_reset(c->h);
        pthread_mutex_unlock(&c->mu);
    }
    curl_slist_free_all(hdrs);
    cf_buf_free(&resp.body);
    cf_wipe(line, sizeof(line)); /* may have held the bearer token */
    return rc;
}

void cf_http_response_free(cf_http_response *r)
{
    if (r == NULL)
        return;
    cf_buf_free(&r->body);
    memset(r, 0, sizeof(*r));
}

int cf_http_response_json(const cf_http_response *r, json_t **ret)
{
    CF_ENSURE(r != NULL && ret != NULL, CF_E_INVAL);
    return cf_json_parse_object(r->body.data, r->body.len, CF_JSON_MAX_BYTES, ret);
}

int cf_http_response_retry_after(const cf_http_response *r, uint64_t *ret)
{
    CF_ENSURE(r != NULL && ret != NULL, CF_E_INVAL);
    if (r->retry_after[0] == 0)
        return CF_E_NOT_FOUND;
    return cf_parse_u64(r->retry_after, RETRY_AFTER_MAX, ret);
}

int cf_http_url_split(const char *url, char *base, size_t base_size, const char **ret_path)
{
    const char *rest, *slash;
    size_t n;

    if (strncmp(url, "https://", 8) == 0)
        rest = url + 8;
    else if (strncmp(url, "http://", 7) == 0)
        rest = url + 7;
    else
        return cf_err_set(CF_E_INVAL, "not an http(s) URL");
    slash = strchr(rest, '/');
    n = slash ? (size_t)(slash - url) : strlen(url);
    if (rest[0] == '\0' || rest[0] == '/' || n >= base_size)
        return cf_err_set(CF_E_INVAL, "URL has no host or is too long");
    memcpy(base, url, n);
    base[n] = '\0';
    *ret_path = slash ? slash : "/";
    return 0;
}
