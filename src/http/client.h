/*
 * HTTP client over libcurl for service-to-service and SDK calls.
 *
 * Server certificate verification is always on (peer and host name) and cannot
 * be turned off: with ca_file set only that CA is trusted (no system store),
 * otherwise the system store is used. For mTLS, give cert_file/key_file, and
 * optionally expect_peer_id to require the server's certificate to carry that
 * SPIFFE ID as its (only) URI SAN (DESIGN.md §2 rule 5: both sides authenticate).
 * Only http and https are spoken; redirects are never followed.
 *
 * Responses are capped (max_response): a transfer that would exceed the cap is
 * aborted and the call fails with CF_E_TOO_LARGE.
 *
 * Connection reuse: one client keeps one CURL easy handle (and its connection
 * cache) across calls. Thread-safety: a client may be shared between threads;
 * an internal mutex serialises its calls. For parallel calls use one client per
 * thread.
 */
#ifndef COFFER_HTTP_CLIENT_H
#define COFFER_HTTP_CLIENT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/compiler.h"
#include "base/limits.h"

typedef struct cf_http_client cf_http_client;

typedef struct {
    const char *base_url;       /* "https://127.0.0.1:8443" (paths are appended) */
    const char *ca_file;        /* PEM CA(s) trusted for the server; NULL = system store */
    const char *cert_file;      /* client certificate for mTLS (optional) */
    const char *key_file;       /* its private key */
    const char *expect_peer_id; /* required server SPIFFE ID (optional, https only) */
    unsigned connect_timeout_ms; /* 0 = CF_HTTP_CLIENT_CONNECT_TIMEOUT_MS */
    unsigned timeout_ms;         /* whole transfer; 0 = CF_HTTP_CLIENT_TIMEOUT_MS */
    size_t max_response;         /* body cap; 0 = CF_HTTP_MAX_BODY */
} cf_http_client_opts;

typedef struct {
    const char *method;       /* "GET", "POST", ... */
    const char *path;         /* "/v1/kms/otk" (appended to base_url, may hold a query) */
    const char *bearer;       /* access token for "Authorization: Bearer" (optional) */
    const char *content_type; /* for the body (default "application/json" when a body is set) */
    const void *body;
    size_t body_len;
    const char *request_id;   /* sent as X-Request-Id (optional) */
    const char *const *headers; /* extra "Name: value" lines, NULL-terminated (optional) */
} cf_http_request;

typedef struct {
    long status;
    cf_buf body; /* owned; release with cf_http_response_free */
    char content_type[CF_HTTP_MAX_CAPTURED_HEADER];
    char request_id[CF_HTTP_MAX_REQUEST_ID + 1];
    char retry_after[CF_HTTP_MAX_CAPTURED_HEADER]; /* raw Retry-After, "" if absent */
} cf_http_response;

/* Splits "https://host:port/some/path?q" into the base "https://host:port"
 * (written to base, NUL-terminated) and the path part (*ret_path points into url;
 * "/" when the URL has no path). CF_E_INVAL for anything but http(s) URLs. */
int cf_http_url_split(const char *url, char *base, size_t base_size, const char **ret_path) CF_WUR;

/* Validates the options (files readable later by libcurl) and creates the handle. */
int cf_http_client_new(const cf_http_client_opts *o, cf_http_client **ret) CF_WUR;
/* NULL is accepted. */
void cf_http_client_free(cf_http_client *c);

/*
 * Performs one request. On success (any HTTP status) *ret is filled and owns
 * its body. Transport failures: CF_E_TIMEOUT, CF_E_TOO_LARGE (response cap),
 * CF_E_UNAVAILABLE (connection refused / DNS), CF_E_VERIFY (server certificate
 * or identity not accepted, or our client certificate refused in the
 * handshake), CF_E_HTTP (other), with a detail through cf_err_set.
 */
int cf_http_client_do(cf_http_client *c, const cf_http_request *req,
                      cf_http_response *ret) CF_WUR;
void cf_http_response_free(cf_http_response *r);

/* Parses the response body as a JSON object. Caller owns *ret. */
int cf_http_response_json(const cf_http_response *r, json_t **ret) CF_WUR;
/* Retry-After in seconds (delta-seconds form only, RFC 9110 §10.2.3); CF_E_NOT_FOUND if absent. */
int cf_http_response_retry_after(const cf_http_response *r, uint64_t *ret) CF_WUR;

#endif
