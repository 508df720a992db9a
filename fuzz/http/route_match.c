/*
 * Fuzz target: request-target parsing of the HTTP server (http/route.h):
 * path splitting, route matching against a fixed table and against a pattern
 * taken from the input, percent-decoding of {param} values, query parsing and
 * request-id validation.
 *
 * Input: "PATTERN\nTARGET" or just "TARGET" (TARGET = path[?query]).
 * Invariants checked (trap on violation): decoded parameters hold no '/',
 * NUL or control character; decoded strings are never longer than their raw
 * form; a successful match implies the same segment count.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "base/compiler.h"
#include "base/limits.h"
#include "http/route.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const table[] = {
    "/",
    "/healthz",
    "/v1/kms/otk",
    "/v1/kms/otk/{id}/release",
    "/v1/jobs/{job}",
    "/v1/registry/tees/{tee_id}/quarantine",
    "/v1/a/{b}/c/{d}/e/{f}",
    "/.well-known/jwks.json",
};

static void check_params(const cf_http_params *p)
{
    for (size_t i = 0; i < p->n; i++) {
        const char *v = p->kv[i].value;
        size_t n = strlen(v);
        if (n > CF_HTTP_MAX_URL)
            __builtin_trap();
        for (size_t k = 0; k < n; k++) {
            unsigned char c = (unsigned char)v[k];
            if (c == '/' || c < 0x20 || c == 0x7f)
                __builtin_trap();
        }
    }
}

static void match_one(const cf_http_pattern *pat, const char *path, const cf_http_segs *segs)
{
    cf_http_params prm;

    if (!cf_http_pattern_match(pat, path, segs))
        return;
    if (pat->nseg != segs->n)
        __builtin_trap();
    if (cf_http_params_decode(pat, path, segs, &prm) == 0) {
        if (prm.n != pat->nparams)
            __builtin_trap();
        check_params(&prm);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static cf_http_pattern compiled[CF_ARRAY_LEN(table)];
    static bool ready;
    static char target[CF_HTTP_MAX_URL + 64];
    cf_http_pattern own;
    bool have_own = false;
    const uint8_t *nl;
    size_t tlen, plen;
    char *q;
    cf_http_segs segs;
    cf_http_query query;

    if (!ready) {
        for (size_t i = 0; i < CF_ARRAY_LEN(table); i++)
            if (cf_http_pattern_compile(table[i], &compiled[i]) != 0)
                __builtin_trap();
        ready = true;
    }
    nl = memchr(data, '\n', size);
    if (nl != NULL) {
        char pat[CF_HTTP_MAX_PATTERN + 2];
        size_t n = (size_t)(nl - data);
        if (n < sizeof(pat)) {
            memcpy(pat, data, n);
            pat[n] = 0;
            have_own = cf_http_pattern_compile(pat, &own) == 0;
        }
        size -= n + 1;
        data = nl + 1;
    }
    if (size >= sizeof(target))
        size = sizeof(target) - 1;
    memcpy(target, data, size);
    target[size] = 0;
    tlen = size;

    (void)cf_http_request_id_valid(target, tlen);
    {
        char out[CF_HTTP_MAX_URL + 64];
        size_t dl = 0;
        if (cf_http_pct_decode(target, tlen, true, out, sizeof(out), &dl) == 0 &&
            (dl > tlen || memchr(out, 0, dl) != NULL))
            __builtin_trap();
    }

    q = memchr(target, '?', tlen);
    plen = q ? (size_t)(q - target) : tlen;
    if (q != NULL) {
        *q = 0;
        if (cf_http_query_parse(q + 1, tlen - plen - 1, &query) == 0) {
            if (query.n > CF_HTTP_MAX_QUERY_PARAMS)
                __builtin_trap();
            for (size_t i = 0; i < query.n; i++)
                if (query.kv[i].name[0] == 0)
                    __builtin_trap();
        }
    }
    if (cf_http_path_split(target, plen, &segs) != 0)
        return 0;
    if (segs.n > CF_HTTP_MAX_PATH_SEGMENTS)
        __builtin_trap();
    for (size_t i = 0; i < CF_ARRAY_LEN(table); i++)
        match_one(&compiled[i], target, &segs);
    if (have_own)
        match_one(&own, target, &segs);
    return 0;
}
