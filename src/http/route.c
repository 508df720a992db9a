/*
 * Route patterns, path splitting, percent-decoding and query parsing (route.h).
 * Input is read through a cf_buf cursor, output written with explicit bounds.
 */
#include "http/route.h"

#include <string.h>

#include "base/buf.h"
#include "base/err.h"

/* RFC 3986 §2.3 unreserved = ALPHA / DIGIT / "-" / "." / "_" / "~" */
static bool is_unreserved(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '-' || c == '.' || c == '_' || c == '~';
}

/* RFC 3986 §3.3 pchar = unreserved / pct-encoded / sub-delims / ":" / "@" ('%' checked
 * by the decoder). */
static bool is_pchar(unsigned char c)
{
    return is_unreserved(c) || c == '%' || c == '!' || c == '$' || c == '&' || c == '\'' ||
           c == '(' || c == ')' || c == '*' || c == '+' || c == ',' || c == ';' || c == '=' ||
           c == ':' || c == '@';
}

static int hexval(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int cf_http_pct_decode(const char *in, size_t n, bool plus_is_space, char *out, size_t cap,
                       size_t *ret_len)
{
    cf_buf r;
    size_t o = 0;
    uint8_t c;

    CF_ENSURE(in != NULL || n == 0, CF_E_INVAL);
    CF_ENSURE(out != NULL && cap > 0, CF_E_INVAL);
    cf_buf_view(&r, (const uint8_t *)in, n);
    while (cf_buf_remaining(&r) > 0) {
        CF_GUARD(cf_buf_get_u8(&r, &c));
        if (c == '%') {
            uint8_t h[2];
            int hi, lo;
            if (cf_buf_get(&r, h, 2) < 0)
                return cf_err_set(CF_E_PARSE, "truncated percent-escape");
            hi = hexval(h[0]);
            lo = hexval(h[1]);
            if (hi < 0 || lo < 0)
                return cf_err_set(CF_E_PARSE, "malformed percent-escape");
            c = (uint8_t)(hi << 4 | lo);
        } else if (c == '+' && plus_is_space) {
            c = ' ';
        }
        if (c == 0)
            return cf_err_set(CF_E_PARSE, "percent-escape decodes to NUL");
        if (o + 1 >= cap)
            return CF_E_TOO_LARGE;
        out[o++] = (char)c;
    }
    out[o] = 0;
    if (ret_len != NULL)
        *ret_len = o;
    return 0;
}

int cf_http_path_split(const char *path, size_t len, cf_http_segs *ret)
{
    cf_http_segs s = {0};
    cf_buf r;
    uint8_t c;
    size_t pos;

    CF_ENSURE(path != NULL, CF_E_INVAL);
    if (len > CF_HTTP_MAX_URL)
        return cf_err_set(CF_E_TOO_LARGE, "request path longer than %u bytes",
                          (unsigned)CF_HTTP_MAX_URL);
    cf_buf_view(&r, (const uint8_t *)path, len);
    if (cf_buf_get_u8(&r, &c) < 0 || c != '/')
        return cf_err_set(CF_E_PARSE, "request path must start with '/'");
    if (len == 1) { /* "/" */
        *ret = s;
        return 0;
    }
    /* Each round reads one segment, which starts right after a '/'. */
    for (;;) {
        size_t start = r.rpos;
        bool more = false;
        while (cf_buf_remaining(&r) > 0) {
            CF_GUARD(cf_buf_get_u8(&r, &c));
            if (c == '/') {
                more = true;
                break;
            }
            if (c == 0)
                return cf_err_set(CF_E_PARSE, "NUL in request path");
        }
        pos = more ? r.rpos - 1 : r.rpos;
        if (pos == start)
            return cf_err_set(CF_E_PARSE, "empty segment in request path");
        if (s.n >= CF_HTTP_MAX_PATH_SEGMENTS)
            return cf_err_set(CF_E_PARSE, "more than %d segments in request path",
                              CF_HTTP_MAX_PATH_SEGMENTS);
        s.seg[s.n].off = start;
        s.seg[s.n].len = pos - start;
        s.n++;
        if (!more)
            break;
    }
    *ret = s;
    return 0;
}

static bool name_char(unsigned char c, bool first)
{
    return (c >= 'a' && c <= 'z') || c == '_' || (!first && c >= '0' && c <= '9');
}

int cf_http_pattern_compile(const char *pattern, cf_http_pattern *ret)
{
    cf_http_segs segs;
    size_t len;

    CF_ENSURE(pattern != NULL && ret != NULL, CF_E_INVAL);
    len = strnlen(pattern, CF_HTTP_MAX_PATTERN + 1);
    if (len > CF_HTTP_MAX_PATTERN)
        return cf_err_set(CF_E_INVAL, "route pattern longer than %d bytes", CF_HTTP_MAX_PATTERN);
    if (cf_http_path_split(pattern, len, &segs) < 0)
        return cf_err_set(CF_E_INVAL, "route pattern '%.64s': %s", pattern,
                          cf_err_detail(CF_E_PARSE));
    memset(ret, 0, sizeof(*ret));
    memcpy(ret->text, pattern, len);
    ret->text[len] = 0;
    ret->nseg = segs.n;
    for (size_t i = 0; i < segs.n; i++) {
        const char *seg = pattern + segs.seg[i].off;
        size_t sl = segs.seg[i].len;
        if (seg[0] == '{') {
            size_t nl = sl - 2;
            if (sl < 3 || seg[sl - 1] != '}' || nl > CF_HTTP_MAX_PARAM_NAME)
                return cf_err_set(CF_E_INVAL, "route pattern '%.64s': bad parameter segment",
                                  pattern);
            if (ret->nparams >= CF_HTTP_MAX_PARAMS)
                return cf_err_set(CF_E_INVAL, "route pattern '%.64s': more than %d parameters",
                                  pattern, CF_HTTP_MAX_PARAMS);
            for (size_t k = 0; k < nl; k++)
                if (!name_char((unsigned char)seg[1 + k], k == 0))
                    return cf_err_set(CF_E_INVAL,
                                      "route pattern '%.64s': parameter names are [a-z_][a-z0-9_]*",
                                      pattern);
            char *name = ret->names[ret->nparams];
            memcpy(name, seg + 1, nl);
            name[nl] = 0;
            for (size_t k = 0; k < ret->nparams; k++)
                if (strcmp(ret->names[k], name) == 0)
                    return cf_err_set(CF_E_INVAL, "route pattern '%.64s': parameter '%s' twice",
                                      pattern, name);
            ret->seg[i].param = true;
            ret->seg[i].off = ret->nparams++;
            ret->seg[i].len = nl;
        } else {
            for (size_t k = 0; k < sl; k++)
                if (!is_unreserved((unsigned char)seg[k]))
                    return cf_err_set(CF_E_INVAL,
                                      "route pattern '%.64s': literal segments are RFC 3986 "
                                      "unreserved characters",
                                      pattern);
            ret->seg[i].off = segs.seg[i].off;
            ret->seg[i].len = sl;
        }
    }
    return 0;
}

bool cf_http_pattern_match(const cf_http_pattern *p, const char *path, const cf_http_segs *s)
{
    if (p->nseg != s->n)
        return false;
    for (size_t i = 0; i < s->n; i++) {
        if (p->seg[i].param)
            continue;
        if (p->seg[i].len != s->seg[i].len ||
            memcmp(p->text + p->seg[i].off, path + s->seg[i].off, s->seg[i].len) != 0)
            return false;
    }
    return true;
}

int cf_http_params_decode(const cf_http_pattern *p, const char *path, const cf_http_segs *s,
                          cf_http_params *ret)
{
    size_t used = 0;

    CF_ENSURE(p->nseg == s->n, CF_E_INVAL);
    ret->n = 0;
    for (size_t i = 0; i < s->n; i++) {
        const char *raw = path + s->seg[i].off;
        const char *name;
        size_t rl = s->seg[i].len, dl = 0;
        char *dst;
        int rc;
        if (!p->seg[i].param)
            continue;
        name = p->names[p->seg[i].off];
        for (size_t k = 0; k < rl; k++)
            if (!is_pchar((unsigned char)raw[k]))
                return cf_err_set(CF_E_PARSE, "path parameter '%s' holds an invalid character",
                                  name);
        dst = ret->buf + used;
        rc = cf_http_pct_decode(raw, rl, false, dst, sizeof(ret->buf) - used, &dl);
        if (rc < 0)
            return cf_err_set(CF_E_PARSE, "path parameter '%s' is not validly percent-encoded",
                              name);
        for (size_t k = 0; k < dl; k++) {
            unsigned char c = (unsigned char)dst[k];
            if (c == '/' || c < 0x20 || c == 0x7f)
                return cf_err_set(CF_E_PARSE,
                                  "path parameter '%s' holds an encoded '/' or control character",
                                  name);
        }
        ret->kv[ret->n].name = name;
        ret->kv[ret->n].value = dst;
        ret->n++;
        used += dl + 1;
    }
    return 0;
}

int cf_http_query_parse(const char *q, size_t len, cf_http_query *ret)
{
    cf_buf r;
    size_t used = 0;

    CF_ENSURE(q != NULL || len == 0, CF_E_INVAL);
    if (len > CF_HTTP_MAX_URL)
        return cf_err_set(CF_E_TOO_LARGE, "query string longer than %u bytes",
                          (unsigned)CF_HTTP_MAX_URL);
    ret->n = 0;
    cf_buf_view(&r, (const uint8_t *)q, len);
    while (cf_buf_remaining(&r) > 0) {
        size_t start = r.rpos, eq = SIZE_MAX, end;
        uint8_t c = 0;
        while (cf_buf_remaining(&r) > 0) {
            CF_GUARD(cf_buf_get_u8(&r, &c));
            if (c == '&')
                break;
            if (c == '=' && eq == SIZE_MAX)
                eq = r.rpos - 1;
        }
        end = c == '&' ? r.rpos - 1 : r.rpos;
        if (end == start)
            continue; /* "a=1&&b=2" */
        if (eq == SIZE_MAX)
            eq = end;
        if (eq == start)
            return cf_err_set(CF_E_PARSE, "query parameter without a name");
        if (ret->n >= CF_HTTP_MAX_QUERY_PARAMS)
            return cf_err_set(CF_E_PARSE, "more than %d query parameters",
                              CF_HTTP_MAX_QUERY_PARAMS);
        size_t nl = 0, vl = 0;
        char *name = ret->buf + used;
        if (cf_http_pct_decode(q + start, eq - start, true, name, sizeof(ret->buf) - used, &nl) <
            0)
            return cf_err_set(CF_E_PARSE, "query parameter name is not validly encoded");
        used += nl + 1;
        char *value = ret->buf + used;
        size_t vstart = eq < end ? eq + 1 : end;
        if (cf_http_pct_decode(q + vstart, end - vstart, true, value, sizeof(ret->buf) - used,
                               &vl) < 0)
            return cf_err_set(CF_E_PARSE, "query parameter '%.32s' is not validly encoded", name);
        used += vl + 1;
        ret->kv[ret->n].name = name;
        ret->kv[ret->n].value = value;
        ret->n++;
    }
    return 0;
}

const char *cf_http_kv_get(const cf_http_kv *kv, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(kv[i].name, name) == 0)
            return kv[i].value;
    return NULL;
}

bool cf_http_request_id_valid(const char *s, size_t n)
{
    if (s == NULL || n == 0 || n > CF_HTTP_MAX_REQUEST_ID)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '.' || c == '_'))
            return false;
    }
    return true;
}
