/*
 * Request-target parsing for the HTTP server: route patterns with {param}
 * segments, path splitting, percent-decoding (RFC 3986 §2.1), query strings
 * (application/x-www-form-urlencoded, WHATWG URL §5.1) and request ids.
 *
 * These are the parsers that see raw client input before any handler does,
 * so everything is bounded by the CF_HTTP_* limits, nothing allocates, and
 * every failure is an error code, never a crash. Used by server.c, the tests
 * and fuzz/http/route_match.c.
 *
 * Matching is exact per segment: a request path is split on '/', empty
 * segments ("//", a trailing '/') are not accepted, literal segments compare
 * byte for byte with the raw (undecoded) request segment, and a {param}
 * segment matches any one non-empty segment, whose value is then
 * percent-decoded and rejected if it decodes to a NUL, a '/' or another control
 * character (a parameter never spans segments, and ids never hold controls).
 */
#ifndef COFFER_HTTP_ROUTE_H
#define COFFER_HTTP_ROUTE_H

#include <stdbool.h>
#include <stddef.h>

#include "base/compiler.h"
#include "base/limits.h"

typedef struct {
    char text[CF_HTTP_MAX_PATTERN + 1]; /* the pattern as registered */
    size_t nseg;
    struct {
        size_t off, len; /* literal: bytes of text; param: index into names */
        bool param;
    } seg[CF_HTTP_MAX_PATH_SEGMENTS];
    size_t nparams;
    char names[CF_HTTP_MAX_PARAMS][CF_HTTP_MAX_PARAM_NAME + 1];
} cf_http_pattern;

/*
 * Compiles "/v1/kms/otk/{id}/release": '/' then segments that are either
 * literals of RFC 3986 unreserved characters or "{name}" with name
 * [a-z_][a-z0-9_]*, unique in the pattern. "/" alone has no segments.
 */
int cf_http_pattern_compile(const char *pattern, cf_http_pattern *ret) CF_WUR;

/* Offsets of the segments of a request path (borrowed from the path string). */
typedef struct {
    size_t n;
    struct {
        size_t off, len;
    } seg[CF_HTTP_MAX_PATH_SEGMENTS];
} cf_http_segs;

/*
 * Splits the path part of a request target (no query). It must start with '/',
 * hold at most CF_HTTP_MAX_PATH_SEGMENTS non-empty segments and no NUL.
 * CF_E_TOO_LARGE if longer than CF_HTTP_MAX_URL; CF_E_PARSE otherwise.
 */
int cf_http_path_split(const char *path, size_t len, cf_http_segs *ret) CF_WUR;

/* Structural match: same number of segments, literal segments equal. */
bool cf_http_pattern_match(const cf_http_pattern *p, const char *path, const cf_http_segs *s);

/* A decoded name/value pair; both strings point into the owning struct. */
typedef struct {
    const char *name;
    const char *value;
} cf_http_kv;

typedef struct {
    size_t n;
    cf_http_kv kv[CF_HTTP_MAX_PARAMS];
    char buf[CF_HTTP_MAX_URL + CF_HTTP_MAX_PARAMS + 1];
} cf_http_params;

/*
 * Decodes the {param} values of a matching path into ret (names borrowed from
 * p: ret must not outlive it). CF_E_PARSE with a detail naming the parameter
 * if a value holds a character outside RFC 3986 pchar, a bad escape, or
 * decodes to a NUL, '/' or control character.
 */
int cf_http_params_decode(const cf_http_pattern *p, const char *path, const cf_http_segs *s,
                          cf_http_params *ret) CF_WUR;

typedef struct {
    size_t n;
    cf_http_kv kv[CF_HTTP_MAX_QUERY_PARAMS];
    char buf[CF_HTTP_MAX_URL + 2 * CF_HTTP_MAX_QUERY_PARAMS + 2];
} cf_http_query;

/*
 * Parses a query string (without '?'): '&'-separated name[=value] pairs, '+' is
 * a space, %XX escapes decoded. Empty pairs are skipped. CF_E_PARSE on a bad
 * escape, a NUL, an empty name or more than CF_HTTP_MAX_QUERY_PARAMS pairs;
 * CF_E_TOO_LARGE beyond CF_HTTP_MAX_URL.
 */
int cf_http_query_parse(const char *q, size_t len, cf_http_query *ret) CF_WUR;

/* First value for name, or NULL. */
const char *cf_http_kv_get(const cf_http_kv *kv, size_t n, const char *name);

/*
 * Percent-decodes n bytes of in into out (cap bytes, NUL-terminated). With
 * plus_is_space, '+' becomes ' '. CF_E_PARSE on a malformed escape or a
 * decoded NUL; CF_E_TOO_LARGE if out is too small.
 */
int cf_http_pct_decode(const char *in, size_t n, bool plus_is_space, char *out, size_t cap,
                       size_t *ret_len) CF_WUR;

/* A request id we accept from a client: 1..CF_HTTP_MAX_REQUEST_ID characters
 * of [A-Za-z0-9._-]. */
bool cf_http_request_id_valid(const char *s, size_t n);

#endif
