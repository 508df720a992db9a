/*
 * HTTP server over libmicrohttpd (see server.h).
 *
 * TLS and client certificates — how mTLS is enforced
 * ---------------------------------------------------
 * Debian's libmicrohttpd does TLS with GnuTLS. Given a trust list
 * (MHD_OPTION_HTTPS_MEM_TRUST) MHD only *requests* a client certificate
 * (GNUTLS_CERT_REQUEST); it never verifies one, so the handshake succeeds with
 * no certificate or with any self-made one. The server therefore verifies the
 * peer itself, on the first request of every connection and before any route
 * is looked up:
 *   1. GnuTLS: gnutls_certificate_verify_peers() against the trust list that
 *      MHD loaded from the client CA file, requiring the TLS client key purpose
 *      (RFC 5280 §4.2.1.12); validity times are checked.
 *   2. OpenSSL: the peer chain (DER, from gnutls_certificate_get_peers) is
 *      verified again with X509_verify_cert against a store built from the same
 *      CA file, purpose sslclient, strict X.509 checks; the leaf must not be a CA.
 *      Two independent implementations must agree, and OpenSSL is also what
 *      parses the identity.
 *   3. The leaf must carry exactly one URI SAN holding a syntactically valid
 *      SPIFFE ID (X509-SVID spec §2): that is the peer identity.
 * Possession of the certificate's key was proven by the TLS handshake itself
 * (CertificateVerify). The verdict is cached in the MHD socket context of the
 * connection. With mTLS "require", no certificate gives 401 and a rejected one
 * 403, both with "Connection: close"; with "optional", no certificate is an
 * anonymous peer but a rejected one is still 403. Any error while checking is a
 * rejection (fail closed, DESIGN.md §2 rule 6).
 *
 * Request processing
 * ------------------
 * The raw request target is captured by the URI log callback (before MHD
 * unescapes anything) and parsed by http/route.c; MHD's own decoded `url` is
 * not used, so "%2F" can never turn into a path separator. The first access
 * callback does identity, routing, parameter decoding and the body cap
 * (Content-Length over the cap is answered 413 at once, without reading the
 * body); body chunks are then appended to a buffer capped at the route's
 * limit, a chunked body that overflows is discarded (at most CF_HTTP_MAX_DRAIN
 * bytes, then the connection is dropped) and answered 413; the final callback
 * runs the handler.
 */
#include "http/server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/err.h"
#include "base/json.h"
#include "base/limits.h"
#include "base/log.h"
#include "base/parse.h"
#include "base/secmem.h"
#include "http/route.h"

/* TLS 1.2 and 1.3 only. */
#define TLS_PRIORITIES "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2"
/* Longest peer chain we look at (leaf + intermediates). */
#define PEER_CHAIN_MAX 4
#define DEFAULT_THREADS 2

struct route {
    char method[CF_HTTP_MAX_METHOD + 1];
    cf_http_pattern pat;
    cf_http_handler h;
    void *cls;
    size_t max_body;
};

struct cf_http_server {
    cf_http_server_opts o;
    char name[32];
    char bind[INET6_ADDRSTRLEN];
    struct route *routes;
    size_t nroutes;
    struct MHD_Daemon *d;
    MHD_socket quiesced_fd;
    uint16_t port;
    char *cert_pem;  /* malloc'd */
    char *key_pem;   /* cf_secure_alloc'd */
    size_t key_size;
    char *ca_pem;    /* malloc'd */
    X509_STORE *ca_store;
    atomic_int inflight;
    bool stopped;
    cf_http_observer observer; /* optional: told about every finished request */
    void *observer_cls;
};

enum peer_state { PEER_UNCHECKED = 0, PEER_OK, PEER_ANON, PEER_NONE, PEER_BAD };

struct conn_ctx {
    enum peer_state state;
    char *peer_id; /* malloc'd; valid while the connection lives */
};

enum req_state { REQ_NEW = 0, REQ_BODY, REQ_DONE };

struct cf_http_req {
    cf_http_server *srv;
    struct MHD_Connection *conn;
    struct timespec t0;
    enum req_state state;
    int status;
    const struct route *route;
    char method[CF_HTTP_MAX_METHOD + 1];
    char uri[CF_HTTP_MAX_URL + 1]; /* path, NUL, query */
    size_t uri_len;
    bool uri_too_long;
    size_t path_len;
    const char *query_raw; /* undecoded query string inside uri, "" if none */
    char remote[INET6_ADDRSTRLEN];
    char rid[CF_HTTP_MAX_REQUEST_ID + 1];
    const char *peer_id; /* borrowed from the conn_ctx */
    cf_http_params params;
    cf_http_query query;
    cf_buf body;
    size_t max_body;
    bool too_large;
    size_t drained;
};

struct resp_header {
    char *name, *value;
};

struct cf_http_resp {
    const struct cf_http_req *req;
    int status;
    char ctype[128];
    char *body; /* malloc'd */
    size_t len;
    size_t nh;
    struct resp_header h[CF_HTTP_MAX_RESP_HEADERS];
    bool close;
};

/* ---- small helpers ------------------------------------------------------------ */

static const char *srv_name(const cf_http_server *s) { return s->name[0] ? s->name : "http"; }

static double elapsed_ms(const struct timespec *t0)
{
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (double)(t1.tv_sec - t0->tv_sec) * 1e3 + (double)(t1.tv_nsec - t0->tv_nsec) / 1e6;
}

/* Reads a PEM file (at most CF_HTTP_MAX_PEM_BYTES) as a NUL-terminated string. */
static int read_pem(const char *path, bool secret, char **ret, size_t *ret_size)
{
    cf_buf b;
    uint8_t chunk[1024];
    int fd, rc = 0;
    size_t n = 0;

    if (secret)
        cf_buf_init_secret(&b, CF_HTTP_MAX_PEM_BYTES + 1);
    else
        cf_buf_init(&b, CF_HTTP_MAX_PEM_BYTES + 1);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        rc = cf_err_set(CF_E_CONFIG, "cannot open %.256s: %s", path, strerror(errno));
        goto out;
    }
    for (;;) {
        ssize_t got = read(fd, chunk, sizeof(chunk));
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            rc = cf_err_set(CF_E_CONFIG, "cannot read %.256s: %s", path, strerror(errno));
            goto out;
        }
        if (got == 0)
            break;
        if (b.len + (size_t)got > CF_HTTP_MAX_PEM_BYTES || cf_buf_put(&b, chunk, (size_t)got) < 0) {
            rc = cf_err_set(CF_E_CONFIG, "%.256s is larger than %u bytes", path,
                            (unsigned)CF_HTTP_MAX_PEM_BYTES);
            goto out;
        }
    }
    if (b.len == 0 || memchr(b.data, 0, b.len) != NULL) {
        rc = cf_err_set(CF_E_CONFIG, "%.256s is empty or not a PEM file", path);
        goto out;
    }
    CF_GUARD_OUT(cf_buf_nul_terminate(&b));
    *ret = (char *)cf_buf_detach(&b, &n);
    if (ret_size != NULL)
        *ret_size = secret ? cf_secure_size(*ret) : n + 1;
out:
    cf_wipe(chunk, sizeof(chunk));
    if (fd >= 0)
        close(fd);
    cf_buf_free(&b);
    return rc;
}

static int build_ca_store(const char *pem, X509_STORE **ret)
{
    X509_STORE *st = X509_STORE_new();
    BIO *bio = BIO_new_mem_buf(pem, -1);
    X509 *x;
    int count = 0, rc = 0;

    CF_ENSURE_OUT(st != NULL && bio != NULL, CF_E_NOMEM);
    while ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
        int ok = X509_STORE_add_cert(st, x);
        X509_free(x);
        CF_ENSURE_OUT(ok == 1, cf_err_set(CF_E_CONFIG, "cannot add a client CA certificate"));
        count++;
    }
    ERR_clear_error(); /* the end of the PEM stream */
    CF_ENSURE_OUT(count > 0, cf_err_set(CF_E_CONFIG, "client CA file holds no certificate"));
    X509_STORE_set_flags(st, X509_V_FLAG_X509_STRICT);
    *ret = st;
    st = NULL;
out:
    BIO_free(bio);
    X509_STORE_free(st);
    return rc;
}

/* ---- life cycle ------------------------------------------------------------------ */

int cf_http_server_new(const cf_http_server_opts *o, cf_http_server **ret)
{
    cf_http_server *s = NULL;
    struct in6_addr a6;
    struct in_addr a4;
    int rc = 0;

    CF_ENSURE(o != NULL && ret != NULL, CF_E_INVAL);
    s = calloc(1, sizeof(*s));
    CF_ENSURE(s != NULL, CF_E_NOMEM);
    s->o = *o;
    s->quiesced_fd = MHD_INVALID_SOCKET;
    atomic_init(&s->inflight, 0);
    CF_ENSURE_OUT(o->name == NULL || cf_fmt(s->name, sizeof(s->name), "%s", o->name) == 0,
                  cf_err_set(CF_E_INVAL, "server name too long"));
    CF_GUARD_OUT(cf_fmt(s->bind, sizeof(s->bind), "%s", o->bind_addr ? o->bind_addr : "127.0.0.1"));
    CF_ENSURE_OUT(inet_pton(AF_INET, s->bind, &a4) == 1 || inet_pton(AF_INET6, s->bind, &a6) == 1,
                  cf_err_set(CF_E_CONFIG, "bind address '%.64s' is not an IP address", s->bind));
    /* The copied options must not point at caller strings we no longer need. */
    s->o.name = NULL;
    s->o.bind_addr = NULL;
    s->o.tls_cert_file = s->o.tls_key_file = s->o.client_ca_file = NULL;
    if (s->o.threads == 0)
        s->o.threads = DEFAULT_THREADS;
    CF_ENSURE_OUT(s->o.threads <= CF_HTTP_MAX_THREADS,
                  cf_err_set(CF_E_CONFIG, "at most %d server threads", CF_HTTP_MAX_THREADS));
    CF_ENSURE_OUT(s->o.threading == CF_HTTP_THREADS_POOL || s->o.threading == CF_HTTP_THREADS_EPOLL ||
                      s->o.threading == CF_HTTP_THREADS_PER_CONNECTION,
                  CF_E_INVAL);
    if (s->o.max_body == 0)
        s->o.max_body = CF_HTTP_MAX_BODY;
    if (s->o.conn_timeout_s == 0)
        s->o.conn_timeout_s = CF_HTTP_CONN_TIMEOUT_S;
    if (s->o.max_connections == 0)
        s->o.max_connections = CF_HTTP_MAX_CONNECTIONS;

    CF_ENSURE_OUT((o->tls_cert_file == NULL) == (o->tls_key_file == NULL),
                  cf_err_set(CF_E_CONFIG, "TLS needs both a certificate and a key"));
    if (o->mtls != CF_HTTP_MTLS_OFF) {
        CF_ENSURE_OUT(o->mtls == CF_HTTP_MTLS_OPTIONAL || o->mtls == CF_HTTP_MTLS_REQUIRE,
                      CF_E_INVAL);
        CF_ENSURE_OUT(o->tls_cert_file != NULL && o->client_ca_file != NULL,
                      cf_err_set(CF_E_CONFIG, "mTLS needs TLS and a client CA file"));
    }
    if (o->tls_cert_file != NULL) {
        CF_GUARD_OUT(read_pem(o->tls_cert_file, false, &s->cert_pem, NULL));
        CF_GUARD_OUT(read_pem(o->tls_key_file, true, &s->key_pem, &s->key_size));
    }
    if (o->mtls != CF_HTTP_MTLS_OFF) {
        CF_GUARD_OUT(read_pem(o->client_ca_file, false, &s->ca_pem, NULL));
        CF_GUARD_OUT(build_ca_store(s->ca_pem, &s->ca_store));
    }
    *ret = s;
    s = NULL;
out:
    cf_http_server_free(s);
    return rc;
}

static bool method_valid(const char *m)
{
    size_t n = strnlen(m, CF_HTTP_MAX_METHOD + 1);
    if (n == 0 || n > CF_HTTP_MAX_METHOD)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!(m[i] >= 'A' && m[i] <= 'Z'))
            return false;
    return true;
}

int cf_http_server_route(cf_http_server *s, const char *method, const char *pattern,
                         cf_http_handler h, void *cls, size_t max_body)
{
    struct route *r, *nr;

    CF_ENSURE(s != NULL && method != NULL && pattern != NULL && h != NULL, CF_E_INVAL);
    CF_ENSURE(s->d == NULL && !s->stopped,
              cf_err_set(CF_E_CONFLICT, "routes are added before the server starts"));
    CF_ENSURE(method_valid(method), cf_err_set(CF_E_INVAL, "bad HTTP method '%.16s'", method));
    CF_ENSURE(s->nroutes < CF_HTTP_MAX_ROUTES,
              cf_err_set(CF_E_TOO_LARGE, "more than %d routes", CF_HTTP_MAX_ROUTES));
    nr = realloc(s->routes, (s->nroutes + 1) * sizeof(*s->routes));
    CF_ENSURE(nr != NULL, CF_E_NOMEM);
    s->routes = nr;
    r = &s->routes[s->nroutes];
    memset(r, 0, sizeof(*r));
    CF_GUARD(cf_http_pattern_compile(pattern, &r->pat));
    for (size_t i = 0; i < s->nroutes; i++) {
        const struct route *o = &s->routes[i];
        if (strcmp(o->method, method) != 0 || o->pat.nseg != r->pat.nseg)
            continue;
        /* Same shape (literals equal, params anywhere equal): the second could never match. */
        bool same = true;
        for (size_t k = 0; k < o->pat.nseg && same; k++) {
            if (o->pat.seg[k].param != r->pat.seg[k].param)
                same = false;
            else if (!o->pat.seg[k].param &&
                     (o->pat.seg[k].len != r->pat.seg[k].len ||
                      memcmp(o->pat.text + o->pat.seg[k].off, r->pat.text + r->pat.seg[k].off,
                             o->pat.seg[k].len) != 0))
                same = false;
        }
        if (same)
            return cf_err_set(CF_E_EXISTS, "route %s %.64s is already registered", method, pattern);
    }
    memcpy(r->method, method, strlen(method) + 1);
    r->h = h;
    r->cls = cls;
    r->max_body = max_body ? max_body : s->o.max_body;
    s->nroutes++;
    return 0;
}

int cf_http_server_set_threading(cf_http_server *s, cf_http_threading t)
{
    CF_ENSURE(s != NULL, CF_E_INVAL);
    CF_ENSURE(t == CF_HTTP_THREADS_POOL || t == CF_HTTP_THREADS_EPOLL ||
                  t == CF_HTTP_THREADS_PER_CONNECTION,
              CF_E_INVAL);
    CF_ENSURE(s->d == NULL && !s->stopped,
              cf_err_set(CF_E_CONFLICT, "threading is chosen before the server starts"));
    s->o.threading = t;
    return 0;
}

int cf_http_server_observe(cf_http_server *s, cf_http_observer fn, void *cls)
{
    CF_ENSURE(s != NULL && fn != NULL, CF_E_INVAL);
    CF_ENSURE(s->d == NULL && !s->stopped,
              cf_err_set(CF_E_CONFLICT, "the observer is set before the server starts"));
    s->observer = fn;
    s->observer_cls = cls;
    return 0;
}

/* ---- responses -------------------------------------------------------------------- */

static void resp_init(struct cf_http_resp *r, const struct cf_http_req *q)
{
    memset(r, 0, sizeof(*r));
    r->req = q;
}

static void resp_clear(struct cf_http_resp *r)
{
    free(r->body);
    for (size_t i = 0; i < r->nh; i++) {
        free(r->h[i].name);
        free(r->h[i].value);
    }
    memset(r, 0, sizeof(*r));
}

int cf_http_resp_set(cf_http_resp *r, int status, const char *content_type, const void *body,
                     size_t len)
{
    char *copy = NULL;

    CF_ENSURE(r != NULL && status >= 100 && status <= 599, CF_E_INVAL);
    CF_ENSURE(body != NULL || len == 0, CF_E_INVAL);
    CF_ENSURE(content_type != NULL || len == 0, CF_E_INVAL);
    if (content_type != NULL) {
        CF_ENSURE(strpbrk(content_type, "\r\n") == NULL, CF_E_INVAL);
        CF_GUARD(cf_fmt(r->ctype, sizeof(r->ctype), "%s", content_type));
    } else {
        r->ctype[0] = 0;
    }
    if (len > 0) {
        copy = malloc(len);
        CF_ENSURE(copy != NULL, CF_E_NOMEM);
        memcpy(copy, body, len);
    }
    free(r->body);
    r->body = copy;
    r->len = len;
    r->status = status;
    return 0;
}

int cf_http_resp_json(cf_http_resp *r, int status, const json_t *v)
{
    char *s;

    CF_ENSURE(r != NULL && v != NULL && status >= 100 && status <= 599, CF_E_INVAL);
    s = cf_json_dump(v);
    CF_ENSURE(s != NULL, CF_E_NOMEM);
    free(r->body);
    r->body = s;
    r->len = strlen(s);
    r->status = status;
    memcpy(r->ctype, "application/json", sizeof("application/json"));
    return 0;
}

int cf_http_resp_error_status(cf_http_resp *r, int status, const char *code, const char *message)
{
    json_t *v;
    int rc;

    CF_ENSURE(r != NULL && code != NULL && message != NULL, CF_E_INVAL);
    v = json_pack("{s:{s:s,s:s,s:s}}", "error", "code", code, "message", message, "request_id",
                  r->req ? r->req->rid : "");
    if (v == NULL) /* message not valid UTF-8: say less rather than fail */
        v = json_pack("{s:{s:s,s:s,s:s}}", "error", "code", code, "message", "request failed",
                      "request_id", r->req ? r->req->rid : "");
    CF_ENSURE(v != NULL, CF_E_NOMEM);
    rc = cf_http_resp_json(r, status, v);
    json_decref(v);
    return rc;
}

int cf_http_resp_error(cf_http_resp *r, int err, const char *message)
{
    if (err >= 0)
        err = CF_E_INTERNAL;
    return cf_http_resp_error_status(r, cf_err_http_status(err), cf_err_name(err),
                                     message ? message : cf_err_str(err));
}

static bool token_valid(const char *s, size_t max)
{
    size_t n = strnlen(s, max + 1);
    if (n == 0 || n > max)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        /* RFC 9110 §5.6.2 tchar */
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              strchr("!#$%&'*+-.^_`|~", c) != NULL))
            return false;
    }
    return true;
}

int cf_http_resp_header(cf_http_resp *r, const char *name, const char *value)
{
    static const char *const reserved[] = {"Content-Length", "Transfer-Encoding", "Connection",
                                           "Content-Type", "X-Request-Id"};
    size_t vl;

    CF_ENSURE(r != NULL && name != NULL && value != NULL, CF_E_INVAL);
    CF_ENSURE(token_valid(name, 64), cf_err_set(CF_E_INVAL, "bad header name"));
    for (size_t i = 0; i < CF_ARRAY_LEN(reserved); i++)
        CF_ENSURE(strcasecmp(name, reserved[i]) != 0,
                  cf_err_set(CF_E_INVAL, "header %s is set by the server", reserved[i]));
    vl = strnlen(value, CF_HTTP_MAX_HEADER_VALUE + 1);
    CF_ENSURE(vl <= CF_HTTP_MAX_HEADER_VALUE, CF_E_TOO_LARGE);
    for (size_t i = 0; i < vl; i++) {
        unsigned char c = (unsigned char)value[i];
        CF_ENSURE(c >= 0x20 || c == '\t', cf_err_set(CF_E_INVAL, "control character in header"));
        CF_ENSURE(c != 0x7f, CF_E_INVAL);
    }
    CF_ENSURE(r->nh < CF_HTTP_MAX_RESP_HEADERS, CF_E_TOO_LARGE);
    r->h[r->nh].name = strdup(name);
    r->h[r->nh].value = strdup(value);
    if (r->h[r->nh].name == NULL || r->h[r->nh].value == NULL) {
        free(r->h[r->nh].name);
        free(r->h[r->nh].value);
        return CF_E_NOMEM;
    }
    r->nh++;
    return 0;
}

/* Queues r for q. Takes the body; r is cleared. */
static enum MHD_Result send_resp(struct cf_http_req *q, struct cf_http_resp *r, const char *allow)
{
    struct MHD_Response *mr;
    bool ok = true;

    if (r->len > 0) {
        mr = MHD_create_response_from_buffer_with_free_callback(r->len, r->body, &free);
        if (mr != NULL)
            r->body = NULL; /* MHD owns it now */
    } else {
        mr = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
    }
    if (mr == NULL) {
        resp_clear(r);
        return MHD_NO;
    }
    if (r->ctype[0] != 0)
        ok &= MHD_add_response_header(mr, "Content-Type", r->ctype) == MHD_YES;
    ok &= MHD_add_response_header(mr, "X-Request-Id", q->rid) == MHD_YES;
    /* API answers may carry one-time secrets (a new API key): never cache them. */
    ok &= MHD_add_response_header(mr, "Cache-Control", "no-store") == MHD_YES;
    ok &= MHD_add_response_header(mr, "X-Content-Type-Options", "nosniff") == MHD_YES;
    if (allow != NULL)
        ok &= MHD_add_response_header(mr, "Allow", allow) == MHD_YES;
    if (r->close)
        ok &= MHD_add_response_header(mr, "Connection", "close") == MHD_YES;
    for (size_t i = 0; i < r->nh; i++)
        ok &= MHD_add_response_header(mr, r->h[i].name, r->h[i].value) == MHD_YES;
    if (ok)
        ok = MHD_queue_response(q->conn, (unsigned)r->status, mr) == MHD_YES;
    MHD_destroy_response(mr);
    q->status = r->status;
    q->state = REQ_DONE;
    resp_clear(r);
    return ok ? MHD_YES : MHD_NO;
}

static enum MHD_Result send_error(struct cf_http_req *q, int status, const char *code,
                                  const char *message, const char *allow, bool close)
{
    struct cf_http_resp r;

    resp_init(&r, q);
    if (cf_http_resp_error_status(&r, status, code, message) < 0) {
        resp_clear(&r);
        return MHD_NO;
    }
    r.close = close;
    return send_resp(q, &r, allow);
}

/* ---- peer identity (mTLS) ------------------------------------------------------ */

/* Exactly one subjectAltName extension with exactly one URI, a SPIFFE ID. */
static int leaf_spiffe_id(X509 *leaf, char **ret)
{
    GENERAL_NAMES *gens;
    const ASN1_IA5STRING *uri = NULL;
    int crit = 0, nuri = 0, rc = 0;
    char *id;

    gens = X509_get_ext_d2i(leaf, NID_subject_alt_name, &crit, NULL);
    if (gens == NULL)
        return cf_err_set(CF_E_FORBIDDEN, "client certificate has no (or several) SAN extensions");
    for (int i = 0; i < sk_GENERAL_NAME_num(gens); i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
        if (g->type == GEN_URI) {
            uri = g->d.uniformResourceIdentifier;
            nuri++;
        }
    }
    if (nuri != 1 ||
        !cf_spiffe_id_valid((const char *)ASN1_STRING_get0_data(uri), (size_t)ASN1_STRING_length(uri))) {
        rc = cf_err_set(CF_E_FORBIDDEN, "client certificate must hold exactly one SPIFFE ID");
        goto out;
    }
    id = malloc((size_t)ASN1_STRING_length(uri) + 1);
    CF_ENSURE_OUT(id != NULL, CF_E_NOMEM);
    memcpy(id, ASN1_STRING_get0_data(uri), (size_t)ASN1_STRING_length(uri));
    id[ASN1_STRING_length(uri)] = 0;
    *ret = id;
out:
    GENERAL_NAMES_free(gens);
    return rc;
}

static X509 *der_to_x509(const gnutls_datum_t *d)
{
    const unsigned char *p = d->data;
    X509 *x;

    if (d->size == 0 || d->size > CF_CERT_MAX_BYTES)
        return NULL;
    x = d2i_X509(NULL, &p, (long)d->size);
    if (x != NULL && p != d->data + d->size) { /* trailing bytes after the certificate */
        X509_free(x);
        x = NULL;
    }
    return x;
}

/* Second, independent chain check with OpenSSL, then the identity. */
static int openssl_verify(cf_http_server *s, const gnutls_datum_t *certs, unsigned n, char **ret)
{
    X509 *leaf = NULL;
    STACK_OF(X509) *chain = sk_X509_new_null();
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    int rc = 0;

    CF_ENSURE_OUT(chain != NULL && ctx != NULL, CF_E_NOMEM);
    leaf = der_to_x509(&certs[0]);
    CF_ENSURE_OUT(leaf != NULL, cf_err_set(CF_E_FORBIDDEN, "unparsable client certificate"));
    for (unsigned i = 1; i < n; i++) {
        X509 *x = der_to_x509(&certs[i]);
        CF_ENSURE_OUT(x != NULL, cf_err_set(CF_E_FORBIDDEN, "unparsable client chain"));
        if (sk_X509_push(chain, x) <= 0) {
            X509_free(x);
            rc = CF_E_NOMEM;
            goto out;
        }
    }
    CF_ENSURE_OUT(X509_STORE_CTX_init(ctx, s->ca_store, leaf, chain) == 1, CF_E_NOMEM);
    X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_SSL_CLIENT);
    if (X509_verify_cert(ctx) != 1) {
        rc = cf_err_set(CF_E_FORBIDDEN, "client certificate rejected: %s",
                        X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx)));
        goto out;
    }
    CF_ENSURE_OUT(X509_check_ca(leaf) == 0,
                  cf_err_set(CF_E_FORBIDDEN, "client certificate is a CA certificate"));
    CF_GUARD_OUT(leaf_spiffe_id(leaf, ret));
out:
    ERR_clear_error();
    X509_STORE_CTX_free(ctx);
    sk_X509_pop_free(chain, X509_free);
    X509_free(leaf);
    return rc;
}

static enum peer_state verify_peer(cf_http_server *s, struct MHD_Connection *conn,
                                   struct conn_ctx *cc)
{
    const union MHD_ConnectionInfo *ci;
    gnutls_session_t sess;
    const gnutls_datum_t *certs;
    unsigned int n = 0, status = 0;
    gnutls_typed_vdata_st purpose;
    char *id = NULL;

    ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_GNUTLS_SESSION);
    if (ci == NULL || ci->tls_session == NULL)
        return PEER_BAD;
    sess = (gnutls_session_t)ci->tls_session;
    certs = gnutls_certificate_get_peers(sess, &n);
    if (certs == NULL || n == 0)
        return s->o.mtls == CF_HTTP_MTLS_OPTIONAL ? PEER_ANON : PEER_NONE;
    if (n > PEER_CHAIN_MAX) {
        cf_log(CF_LOG_WARN, "http.mtls_reject", "server", srv_name(s), "reason",
               "client chain too long", NULL);
        return PEER_BAD;
    }
    /* 1. GnuTLS against the trust list MHD loaded (MHD_OPTION_HTTPS_MEM_TRUST). */
    memset(&purpose, 0, sizeof(purpose));
    purpose.type = GNUTLS_DT_KEY_PURPOSE_OID;
    purpose.data = (unsigned char *)(uintptr_t)GNUTLS_KP_TLS_WWW_CLIENT;
    if (gnutls_certificate_verify_peers(sess, &purpose, 1, &status) < 0 || status != 0) {
        cf_log(CF_LOG_WARN, "http.mtls_reject", "server", srv_name(s), "reason",
               "client certificate not trusted (GnuTLS)", NULL);
        return PEER_BAD;
    }
    /* 2. + 3. OpenSSL chain check and the SPIFFE identity. */
    if (openssl_verify(s, certs, n, &id) < 0) {
        cf_log(CF_LOG_WARN, "http.mtls_reject", "server", srv_name(s), "reason",
               cf_err_detail(CF_E_FORBIDDEN), NULL);
        return PEER_BAD;
    }
    cc->peer_id = id;
    return PEER_OK;
}

static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe)
{
    (void)cls;
    (void)conn;
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        *socket_context = calloc(1, sizeof(struct conn_ctx)); /* NULL: refused in check_peer */
    } else if (toe == MHD_CONNECTION_NOTIFY_CLOSED) {
        struct conn_ctx *cc = *socket_context;
        if (cc != NULL) {
            free(cc->peer_id);
            free(cc);
        }
        *socket_context = NULL;
    }
}

/* 0 if the request may proceed (q->peer_id set or anonymous); else the refusal was queued. */
static int check_peer(cf_http_server *s, struct cf_http_req *q, enum MHD_Result *ret)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(q->conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    struct conn_ctx *cc = ci ? ci->socket_context : NULL;
    enum peer_state st = cc ? cc->state : PEER_BAD;

    if (cc != NULL && st == PEER_UNCHECKED)
        st = cc->state = verify_peer(s, q->conn, cc);
    switch (st) {
    case PEER_OK:
        q->peer_id = cc->peer_id;
        return 0;
    case PEER_ANON:
        return 0;
    case PEER_NONE:
        *ret = send_error(q, 401, cf_err_name(CF_E_UNAUTHENTICATED),
                          "a client certificate is required", NULL, true);
        return -1;
    default:
        *ret = send_error(q, 403, cf_err_name(CF_E_FORBIDDEN), "client certificate not accepted",
                          NULL, true);
        return -1;
    }
}

/* ---- request handling ---------------------------------------------------------- */

static void *on_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
    cf_http_server *s = cls;
    struct cf_http_req *q = calloc(1, sizeof(*q));
    size_t n;

    (void)conn;
    if (q == NULL)
        return NULL;
    clock_gettime(CLOCK_MONOTONIC, &q->t0);
    q->srv = s;
    n = uri ? strnlen(uri, CF_HTTP_MAX_URL + 1) : 0;
    if (n > CF_HTTP_MAX_URL) {
        q->uri_too_long = true;
        n = 0;
    }
    memcpy(q->uri, uri ? uri : "", n);
    q->uri[n] = 0;
    q->uri_len = n;
    atomic_fetch_add(&s->inflight, 1);
    return q;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    cf_http_server *s = cls;
    struct cf_http_req *q = *con_cls;
    char status[8], dur[32];

    (void)conn;
    if (q == NULL)
        return;
    if (cf_fmt(status, sizeof(status), "%d", q->status) < 0)
        status[0] = 0;
    if (cf_fmt(dur, sizeof(dur), "%.3f", elapsed_ms(&q->t0)) < 0)
        dur[0] = 0;
    cf_log_set_request_id(q->rid[0] ? q->rid : NULL);
    /* Never the path or query (they may name secrets' ids and carry tokens), never bodies
     * or headers: the route pattern says what was called. */
    cf_log(CF_LOG_INFO, "http.access", "server", srv_name(s), "method",
           q->method[0] ? q->method : "-", "route", q->route ? q->route->pat.text : "-", "status",
           status, "duration_ms", dur, "peer", q->peer_id ? q->peer_id : "",
           "outcome", toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? "ok" : "aborted", NULL);
    cf_log_set_request_id(NULL);
    if (s->observer != NULL)
        s->observer(s->observer_cls, q->route ? q->route->pat.text : "", q->status,
                    elapsed_ms(&q->t0) / 1e3);
    cf_buf_free(&q->body);
    free(q);
    *con_cls = NULL;
    atomic_fetch_sub(&s->inflight, 1);
}

/*
 * Random request ids: 16 bytes from the OpenSSL DRBG, hex. Drawn in batches
 * into a per-thread pool, since one RAND_bytes call per request was a visible
 * share of the per-request CPU time (bench_http). Ids are not secrets.
 */
#define RID_BYTES 16
#define RID_POOL (RID_BYTES * 32)

static int new_request_id(char *out, size_t cap)
{
    static _Thread_local uint8_t pool[RID_POOL];
    static _Thread_local size_t avail;

    CF_ENSURE(cap >= 2 * RID_BYTES + 1, CF_E_INVAL);
    if (avail < RID_BYTES) {
        if (RAND_bytes(pool, sizeof(pool)) != 1)
            return CF_E_CRYPTO;
        avail = sizeof(pool);
    }
    avail -= RID_BYTES;
    cf_hex_encode(pool + avail, RID_BYTES, out);
    return 0;
}

/* The client's IP address as text ("" if MHD cannot tell). */
static void remote_addr(struct MHD_Connection *conn, char *out, size_t cap)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    const struct sockaddr *sa = ci ? ci->client_addr : NULL;
    const void *a = NULL;

    out[0] = 0;
    if (sa == NULL)
        return;
    if (sa->sa_family == AF_INET)
        a = &((const struct sockaddr_in *)(const void *)sa)->sin_addr;
    else if (sa->sa_family == AF_INET6)
        a = &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr;
    if (a == NULL || inet_ntop(sa->sa_family, a, out, (socklen_t)cap) == NULL)
        out[0] = 0;
}

/* Appends m to the comma-separated allow list if not there yet. */
static void allow_add(char *allow, size_t cap, const char *m)
{
    size_t ml = strlen(m), al = strlen(allow);
    for (const char *p = allow; (p = strstr(p, m)) != NULL; p += ml)
        if ((p == allow || p[-1] == ' ') && (p[ml] == ',' || p[ml] == 0))
            return;
    if (al + ml + 3 > cap)
        return;
    if (cf_fmt(allow + al, cap - al, "%s%s", al ? ", " : "", m) < 0)
        allow[al] = 0;
}

static enum MHD_Result on_headers(cf_http_server *s, struct cf_http_req *q,
                                  struct MHD_Connection *conn, const char *method)
{
    const char *hdr, *query = NULL;
    char allow[256] = "";
    cf_http_segs segs;
    const struct route *found = NULL;
    size_t path_len, query_len = 0;
    enum MHD_Result ret = MHD_YES;
    char *qm;
    int rc;

    q->conn = conn;
    remote_addr(conn, q->remote, sizeof(q->remote));
    hdr = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Request-Id");
    if (hdr != NULL && cf_http_request_id_valid(hdr, strnlen(hdr, CF_HTTP_MAX_REQUEST_ID + 1)))
        memcpy(q->rid, hdr, strlen(hdr) + 1);
    else if (new_request_id(q->rid, sizeof(q->rid)) < 0)
        return MHD_NO;
    if (method == NULL || !method_valid(method))
        return send_error(q, 400, cf_err_name(CF_E_PARSE), "bad request method", NULL, true);
    memcpy(q->method, method, strlen(method) + 1);

    /* Identity first: an unauthenticated client learns nothing about routes. */
    if (s->o.mtls != CF_HTTP_MTLS_OFF && check_peer(s, q, &ret) < 0)
        return ret;

    if (q->uri_too_long)
        return send_error(q, 414, "uri_too_long", "request target is too long", NULL, true);
    if (memchr(q->uri, '#', q->uri_len) != NULL)
        return send_error(q, 400, cf_err_name(CF_E_PARSE), "fragment in request target", NULL,
                          false);
    qm = memchr(q->uri, '?', q->uri_len);
    path_len = qm ? (size_t)(qm - q->uri) : q->uri_len;
    q->query_raw = "";
    if (qm != NULL) {
        *qm = 0;
        query = qm + 1;
        query_len = q->uri_len - path_len - 1;
        q->query_raw = query; /* NUL-terminated: uri[uri_len] is 0 */
    }
    q->path_len = path_len;
    if (cf_http_path_split(q->uri, path_len, &segs) < 0)
        return send_error(q, 404, cf_err_name(CF_E_NOT_FOUND), "no such resource", NULL, false);

    for (size_t i = 0; i < s->nroutes; i++) {
        const struct route *r = &s->routes[i];
        if (!cf_http_pattern_match(&r->pat, q->uri, &segs))
            continue;
        if (strcmp(r->method, q->method) == 0) {
            found = r;
            break;
        }
        allow_add(allow, sizeof(allow), r->method);
    }
    if (found == NULL && allow[0] != 0)
        return send_error(q, 405, "method_not_allowed", "method not allowed for this resource",
                          allow, false);
    if (found == NULL)
        return send_error(q, 404, cf_err_name(CF_E_NOT_FOUND), "no such resource", NULL, false);
    q->route = found;

    if (cf_http_params_decode(&found->pat, q->uri, &segs, &q->params) < 0)
        return send_error(q, 400, cf_err_name(CF_E_PARSE), cf_err_detail(CF_E_PARSE), NULL, false);
    rc = cf_http_query_parse(query, query_len, &q->query);
    if (rc < 0)
        return send_error(q, 400, cf_err_name(CF_E_PARSE), cf_err_detail(rc), NULL, false);

    q->max_body = found->max_body;
    hdr = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (hdr != NULL) {
        uint64_t cl = 0;
        if (cf_parse_u64(hdr, UINT64_MAX, &cl) == 0 && cl > q->max_body) {
            char msg[96];
            if (cf_fmt(msg, sizeof(msg), "request body exceeds %zu bytes", q->max_body) < 0)
                msg[0] = 0;
            /* Answered before the body is read; MHD then closes the connection. */
            return send_error(q, 413, cf_err_name(CF_E_TOO_LARGE), msg, NULL, true);
        }
    }
    cf_buf_init(&q->body, q->max_body);
    q->state = REQ_BODY;
    return MHD_YES;
}

static enum MHD_Result dispatch(struct cf_http_req *q)
{
    const struct route *r = q->route;
    struct cf_http_resp resp;
    enum MHD_Result ret;
    int rc;

    resp_init(&resp, q);
    cf_log_set_request_id(q->rid);
    cf_err_clear();
    rc = r->h(r->cls, q, &resp);
    if (resp.status == 0) {
        if (rc >= 0) {
            cf_log(CF_LOG_ERROR, "http.no_response", "route", r->pat.text, NULL);
            rc = CF_E_INTERNAL;
        }
        const char *detail = cf_err_detail(rc);
        if (cf_err_http_status(rc) >= 500) {
            /* Internal details stay in the log; the client gets the generic sentence. */
            cf_log(CF_LOG_WARN, "http.handler_error", "route", r->pat.text, "code",
                   cf_err_name(rc), "detail", detail, NULL);
            detail = cf_err_str(rc);
        }
        if (cf_http_resp_error(&resp, rc, detail) < 0) {
            resp_clear(&resp);
            cf_log_set_request_id(NULL);
            return MHD_NO;
        }
    }
    ret = send_resp(q, &resp, NULL);
    cf_log_set_request_id(NULL);
    return ret;
}

static enum MHD_Result on_access(void *cls, struct MHD_Connection *conn, const char *url,
                                 const char *method, const char *version,
                                 const char *upload_data, size_t *upload_data_size,
                                 void **con_cls)
{
    cf_http_server *s = cls;
    struct cf_http_req *q = *con_cls;
    size_t n;

    (void)url;
    (void)version;
    if (q == NULL)
        return MHD_NO; /* out of memory in on_uri */
    if (q->state == REQ_NEW)
        return on_headers(s, q, conn, method);
    n = *upload_data_size;
    if (q->state == REQ_DONE) {
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (n > 0) {
        *upload_data_size = 0;
        if (!q->too_large && q->body.len + n <= q->max_body) {
            if (cf_buf_put(&q->body, upload_data, n) < 0)
                return MHD_NO;
            return MHD_YES;
        }
        /* Over the cap (a chunked body, or more than Content-Length promised): keep
         * nothing, drain a bounded amount so that the 413 can be delivered. */
        q->too_large = true;
        cf_buf_free(&q->body);
        q->drained += n;
        return q->drained > CF_HTTP_MAX_DRAIN ? MHD_NO : MHD_YES;
    }
    if (q->too_large) {
        char msg[96];
        if (cf_fmt(msg, sizeof(msg), "request body exceeds %zu bytes", q->max_body) < 0)
            msg[0] = 0;
        return send_error(q, 413, cf_err_name(CF_E_TOO_LARGE), msg, NULL, true);
    }
    return dispatch(q);
}

static void mhd_logger(void *cls, const char *fmt, va_list ap) CF_PRINTF(2, 0);
static void mhd_logger(void *cls, const char *fmt, va_list ap)
{
    cf_http_server *s = cls;
    char msg[256];
    size_t n;

    (void)vsnprintf(msg, sizeof(msg), fmt, ap); /* truncation is fine for a diagnostic */
    n = strlen(msg);
    while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = 0;
    cf_log(CF_LOG_WARN, "http.mhd", "server", srv_name(s), "msg", msg, NULL);
}

int cf_http_server_start(cf_http_server *s)
{
    struct sockaddr_storage ss;
    struct MHD_OptionItem extra[8];
    size_t ne = 0;
    unsigned int flags;
    const union MHD_DaemonInfo *di;

    CF_ENSURE(s != NULL, CF_E_INVAL);
    CF_ENSURE(s->d == NULL && !s->stopped, CF_E_CONFLICT);
    memset(&ss, 0, sizeof(ss));
    if (inet_pton(AF_INET, s->bind, &((struct sockaddr_in *)&ss)->sin_addr) == 1) {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        a->sin_family = AF_INET;
        a->sin_port = htons(s->o.port);
        flags = 0;
    } else {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        CF_ENSURE(inet_pton(AF_INET6, s->bind, &a->sin6_addr) == 1, CF_E_CONFIG);
        a->sin6_family = AF_INET6;
        a->sin6_port = htons(s->o.port);
        flags = MHD_USE_IPv6;
    }
    if (s->o.threading == CF_HTTP_THREADS_PER_CONNECTION)
        flags |= MHD_USE_THREAD_PER_CONNECTION | MHD_USE_POLL_INTERNAL_THREAD;
    else
        flags |= s->o.threading == CF_HTTP_THREADS_EPOLL ? MHD_USE_EPOLL_INTERNAL_THREAD
                                                         : MHD_USE_POLL_INTERNAL_THREAD;
    flags |= MHD_USE_ITC | MHD_USE_ERROR_LOG;
    if (s->o.threads > 1 && s->o.threading != CF_HTTP_THREADS_PER_CONNECTION)
        extra[ne++] = (struct MHD_OptionItem){MHD_OPTION_THREAD_POOL_SIZE, (intptr_t)s->o.threads,
                                              NULL};
    if (s->cert_pem != NULL) {
        flags |= MHD_USE_TLS;
        extra[ne++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_CERT, 0, s->cert_pem};
        extra[ne++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_KEY, 0, s->key_pem};
        extra[ne++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_PRIORITIES, 0,
                                              (void *)(uintptr_t)TLS_PRIORITIES};
    }
    if (s->ca_pem != NULL) {
        extra[ne++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_TRUST, 0, s->ca_pem};
        extra[ne++] = (struct MHD_OptionItem){MHD_OPTION_NOTIFY_CONNECTION,
                                              (intptr_t)&on_connection, NULL};
    }
    extra[ne++] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};

    /* The logger comes first so that MHD's messages about later options reach it. */
    s->d = MHD_start_daemon(
        flags, 0, NULL, NULL, &on_access, s, MHD_OPTION_EXTERNAL_LOGGER, &mhd_logger, s,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss, MHD_OPTION_URI_LOG_CALLBACK, &on_uri, s,
        MHD_OPTION_NOTIFY_COMPLETED, &on_completed, s, MHD_OPTION_CONNECTION_LIMIT,
        (unsigned int)s->o.max_connections, MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned int)s->o.conn_timeout_s, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
        (size_t)CF_HTTP_CONN_MEMORY, MHD_OPTION_STRICT_FOR_CLIENT, (int)1, MHD_OPTION_ARRAY, extra,
        MHD_OPTION_END);
    if (s->d == NULL)
        return cf_err_set(CF_E_IO, "cannot start the %s HTTP server on %s port %u", srv_name(s),
                          s->bind, (unsigned)s->o.port);
    di = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
    s->port = di ? di->port : s->o.port;
    cf_log(CF_LOG_INFO, "http.listen", "server", srv_name(s), "addr", s->bind, "tls",
           s->cert_pem ? (s->ca_pem ? "mtls" : "tls") : "off", NULL);
    return 0;
}

uint16_t cf_http_server_port(const cf_http_server *s) { return s ? s->port : 0; }

void cf_http_server_stop(cf_http_server *s, unsigned grace_ms)
{
    struct timespec t0;

    if (s == NULL || s->d == NULL)
        return;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    /* Stop accepting, let requests in progress finish, then close everything
     * (idle keep-alive connections included). */
    s->quiesced_fd = MHD_quiesce_daemon(s->d);
    while (atomic_load(&s->inflight) > 0 && elapsed_ms(&t0) < (double)grace_ms) {
        struct timespec ts = {0, 2 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    MHD_stop_daemon(s->d);
    s->d = NULL;
    if (s->quiesced_fd != MHD_INVALID_SOCKET)
        close(s->quiesced_fd); /* MHD hands the listen socket over on quiesce */
    s->quiesced_fd = MHD_INVALID_SOCKET;
    s->stopped = true;
}

void cf_http_server_free(cf_http_server *s)
{
    if (s == NULL)
        return;
    cf_http_server_stop(s, 0);
    free(s->routes);
    free(s->cert_pem);
    cf_secure_free(s->key_pem);
    free(s->ca_pem);
    X509_STORE_free(s->ca_store);
    free(s);
}

/* ---- request accessors ------------------------------------------------------------ */

const char *cf_http_req_method(const cf_http_req *r) { return r->method; }
const char *cf_http_req_path(const cf_http_req *r) { return r->uri; }
const char *cf_http_req_route(const cf_http_req *r) { return r->route ? r->route->pat.text : ""; }
const char *cf_http_req_id(const cf_http_req *r) { return r->rid; }
const char *cf_http_req_peer_id(const cf_http_req *r) { return r->peer_id; }
const char *cf_http_req_remote_addr(const cf_http_req *r) { return r->remote; }
const char *cf_http_req_query_string(const cf_http_req *r)
{
    return r->query_raw ? r->query_raw : "";
}

const char *cf_http_req_param(const cf_http_req *r, const char *name)
{
    return cf_http_kv_get(r->params.kv, r->params.n, name);
}

const char *cf_http_req_query(const cf_http_req *r, const char *name)
{
    return cf_http_kv_get(r->query.kv, r->query.n, name);
}

const char *cf_http_req_header(const cf_http_req *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

const uint8_t *cf_http_req_body(const cf_http_req *r, size_t *ret_len)
{
    static const uint8_t empty[1];

    *ret_len = r->body.len;
    return r->body.len ? r->body.data : empty;
}

bool cf_http_req_content_type_is(const cf_http_req *r, const char *media_type)
{
    const char *ct = cf_http_req_header(r, MHD_HTTP_HEADER_CONTENT_TYPE);
    size_t ml = strlen(media_type), n;

    if (ct == NULL)
        return false;
    /* RFC 9110 §8.3.1: type/subtype, optional whitespace, then ";" parameters. */
    n = strcspn(ct, "; \t");
    if (n != ml || strncasecmp(ct, media_type, ml) != 0)
        return false;
    ct += n;
    ct += strspn(ct, " \t");
    return *ct == 0 || *ct == ';';
}

int cf_http_req_json(const cf_http_req *r, json_t **ret)
{
    size_t n;
    const uint8_t *b = cf_http_req_body(r, &n);

    return cf_json_parse_object(b, n, CF_MIN((size_t)CF_JSON_MAX_BYTES, r->max_body), ret);
}

int cf_http_require_content_type(const cf_http_req *req, cf_http_resp *resp,
                                 const char *media_type)
{
    char msg[160];

    if (cf_http_req_content_type_is(req, media_type))
        return 0;
    if (cf_fmt(msg, sizeof(msg), "content type must be %.100s", media_type) < 0)
        msg[0] = 0;
    CF_GUARD(cf_http_resp_error_status(resp, 415, "unsupported_media_type", msg));
    return cf_err_set(CF_E_UNSUPPORTED, "%s", msg);
}
