/*
 * HTTP/JSON server for every Coffer service, over libmicrohttpd, with optional
 * TLS and mutual TLS against an internal CA (DESIGN.md §2 rule 5, §6).
 *
 * Life cycle: cf_http_server_new -> cf_http_server_route (any number, before
 * start) -> cf_http_server_start -> ... -> cf_http_server_stop -> cf_http_server_free.
 * The route table is immutable once started, so handlers run concurrently on
 * the server's threads without locking it; a handler must itself be
 * thread-safe with respect to its cls.
 *
 * Every request gets a request id (a well-formed incoming X-Request-Id, or a
 * random one) that is echoed in the X-Request-Id response header, set as the
 * thread's log request id while the handler runs, and put into JSON errors:
 *   {"error":{"code":"not_found","message":"...","request_id":"..."}}
 * One access log line (event "http.access") is written per request with
 * method, route pattern, status, duration and peer identity; never bodies,
 * query strings or headers.
 *
 * With mTLS "require", a client without a certificate, or with one that does
 * not chain to the configured client CA (for TLS client authentication), or
 * without exactly one SPIFFE URI SAN, is answered 401/403 before any route is
 * looked up: handlers never see such a request.
 */
#ifndef COFFER_HTTP_SERVER_H
#define COFFER_HTTP_SERVER_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/compiler.h"

typedef struct cf_http_server cf_http_server;
typedef struct cf_http_req cf_http_req;
typedef struct cf_http_resp cf_http_resp;

typedef enum {
    CF_HTTP_THREADS_POOL = 0, /* MHD internal thread pool, poll() per thread */
    CF_HTTP_THREADS_EPOLL,    /* MHD internal thread pool, epoll per thread */
    /* One thread per connection (poll), `threads` unused: for servers whose
     * handlers block for long (a proxy waiting on an upstream), which in a pool
     * would stall every other connection served by the same thread. */
    CF_HTTP_THREADS_PER_CONNECTION,
} cf_http_threading;

typedef enum {
    CF_HTTP_MTLS_OFF = 0,  /* no client certificate requested */
    CF_HTTP_MTLS_OPTIONAL, /* requested; none = anonymous, an invalid one = refused */
    CF_HTTP_MTLS_REQUIRE,  /* a valid client certificate is required */
} cf_http_mtls;

typedef struct {
    const char *name;           /* for log lines, e.g. "kms" (optional) */
    const char *bind_addr;      /* IPv4 or IPv6 literal; NULL = "127.0.0.1" */
    uint16_t port;              /* 0 = ephemeral (see cf_http_server_port) */
    cf_http_threading threading;
    unsigned threads;           /* 1..CF_HTTP_MAX_THREADS; 0 = 2 */
    const char *tls_cert_file;  /* PEM certificate (chain); NULL = plain HTTP */
    const char *tls_key_file;   /* PEM private key */
    const char *client_ca_file; /* PEM CA certificate(s) for mTLS */
    cf_http_mtls mtls;          /* needs TLS and client_ca_file unless OFF */
    size_t max_body;            /* default request body cap; 0 = CF_HTTP_MAX_BODY */
    unsigned conn_timeout_s;    /* idle connection timeout; 0 = CF_HTTP_CONN_TIMEOUT_S */
    unsigned max_connections;   /* 0 = CF_HTTP_MAX_CONNECTIONS */
} cf_http_server_opts;

/*
 * A handler fills resp. Returning a negative cf_err code without having set a
 * response produces the JSON error for that code (status from
 * cf_err_http_status; the message is cf_err_detail for 4xx and the generic
 * cf_err_str for 5xx, whose details are only logged). Returning 0 without a
 * response is a 500.
 */
typedef int (*cf_http_handler)(void *cls, const cf_http_req *req, cf_http_resp *resp);

/* Reads the TLS files (bounded; the key into secret memory). Nothing listens yet. */
int cf_http_server_new(const cf_http_server_opts *o, cf_http_server **ret) CF_WUR;
/*
 * Adds a route: method ("GET", "POST", ...) and pattern (see http/route.h, e.g.
 * "/v1/kms/otk/{id}/release"). max_body: body cap for this route, 0 = the
 * server default. The same method+pattern twice is CF_E_EXISTS. Only before start.
 */
int cf_http_server_route(cf_http_server *s, const char *method, const char *pattern,
                         cf_http_handler h, void *cls, size_t max_body) CF_WUR;
/*
 * Optional observer, told about every finished request (also those the server
 * answered itself: 404, 405, 413, mTLS refusals) after the response was sent:
 * route is the matched pattern or "" when none matched, status 0 when no
 * response was queued, seconds the time since the request line arrived. Called
 * on server threads, concurrently: it must be thread-safe and fast (metrics).
 * Only before start.
 */
typedef void (*cf_http_observer)(void *cls, const char *route, int status, double seconds);
int cf_http_server_observe(cf_http_server *s, cf_http_observer fn, void *cls) CF_WUR;
/* Changes the threading mode chosen at creation. Only before start. */
int cf_http_server_set_threading(cf_http_server *s, cf_http_threading t) CF_WUR;
/* Binds and starts the threads. */
int cf_http_server_start(cf_http_server *s) CF_WUR;
/* The bound port (after start; the chosen one when opts.port was 0). */
uint16_t cf_http_server_port(const cf_http_server *s);
/*
 * Graceful stop: stops accepting connections, waits up to grace_ms for
 * requests in progress to finish, then closes everything. Idempotent.
 */
void cf_http_server_stop(cf_http_server *s, unsigned grace_ms);
/* Stops (grace 0) if needed, wipes the key and frees. NULL is accepted. */
void cf_http_server_free(cf_http_server *s);

/* ---- request (borrowed by the handler for the duration of the call) ---- */

const char *cf_http_req_method(const cf_http_req *r);
/* Raw (undecoded) path, without the query string. */
const char *cf_http_req_path(const cf_http_req *r);
/* The matched route pattern, e.g. "/v1/kms/otk/{id}/release". */
const char *cf_http_req_route(const cf_http_req *r);
/* Decoded {param} value, or NULL. */
const char *cf_http_req_param(const cf_http_req *r, const char *name);
/* The raw (undecoded) query string without '?', "" if none; it passed
 * cf_http_query_parse. For proxies that forward the request target as is. */
const char *cf_http_req_query_string(const cf_http_req *r);
/* The client's IP address as text (no port), "" if unknown. */
const char *cf_http_req_remote_addr(const cf_http_req *r);
/* Decoded query parameter (first occurrence), or NULL. */
const char *cf_http_req_query(const cf_http_req *r, const char *name);
/* Request header (case-insensitive name), or NULL. */
const char *cf_http_req_header(const cf_http_req *r, const char *name);
/* Body bytes (at most the route's cap); *ret_len 0 and a non-NULL pointer if none. */
const uint8_t *cf_http_req_body(const cf_http_req *r, size_t *ret_len);
const char *cf_http_req_id(const cf_http_req *r);
/* SPIFFE ID from the verified client certificate, or NULL (no mTLS / anonymous). */
const char *cf_http_req_peer_id(const cf_http_req *r);
/* True if Content-Type's media type equals media_type (case-insensitive, parameters
 * such as "; charset=utf-8" ignored). */
bool cf_http_req_content_type_is(const cf_http_req *r, const char *media_type);
/* Parses the body as a JSON object (base/json.h rules). Caller owns *ret. */
int cf_http_req_json(const cf_http_req *r, json_t **ret) CF_WUR;

/* ---- response ---- */

/* Copies body. content_type NULL = no Content-Type (only for empty bodies). */
int cf_http_resp_set(cf_http_resp *r, int status, const char *content_type, const void *body,
                     size_t len) CF_WUR;
/* Serialises v (compact, sorted keys) as application/json. */
int cf_http_resp_json(cf_http_resp *r, int status, const json_t *v) CF_WUR;
/* {"error":{"code":cf_err_name(err),"message":message,"request_id":...}} with
 * status cf_err_http_status(err). message NULL = cf_err_str(err). */
int cf_http_resp_error(cf_http_resp *r, int err, const char *message) CF_WUR;
/* The same shape with an explicit status and code (e.g. 415, "unsupported_media_type"). */
int cf_http_resp_error_status(cf_http_resp *r, int status, const char *code,
                              const char *message) CF_WUR;
/* Adds a response header. Names are HTTP tokens; values hold no CR, LF or NUL.
 * Framing headers (Content-Length, Transfer-Encoding, Connection) are refused. */
int cf_http_resp_header(cf_http_resp *r, const char *name, const char *value) CF_WUR;
/*
 * 415 helper: returns 0 if the request's media type is media_type; otherwise
 * fills resp with a 415 JSON error and returns CF_E_UNSUPPORTED, so a handler
 * can write `CF_GUARD(cf_http_require_content_type(req, resp, "application/json"));`.
 */
int cf_http_require_content_type(const cf_http_req *req, cf_http_resp *resp,
                                 const char *media_type) CF_WUR;

#endif
