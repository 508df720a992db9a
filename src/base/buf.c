#include "base/buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/secmem.h"

void cf_buf_init(cf_buf *b, size_t max)
{
    memset(b, 0, sizeof(*b));
    b->max = max;
}

void cf_buf_init_secret(cf_buf *b, size_t max)
{
    cf_buf_init(b, max);
    b->secret = true;
}

void cf_buf_view(cf_buf *b, const uint8_t *p, size_t n)
{
    memset(b, 0, sizeof(*b));
    /* The view never writes through data; the cast only fits the shared struct. */
    b->data = (uint8_t *)(uintptr_t)p;
    b->len = n;
    b->cap = n;
    b->max = n;
    b->view = true;
}

void cf_buf_free(cf_buf *b)
{
    if (b == NULL)
        return;
    if (!b->view && b->data != NULL) {
        if (b->secret)
            cf_secure_free(b->data);
        else
            free(b->data);
    }
    bool secret = b->secret;
    size_t max = b->max;
    memset(b, 0, sizeof(*b));
    b->secret = secret;
    b->max = max;
}

void cf_buf_reset(cf_buf *b)
{
    if (b->view) {
        b->rpos = 0;
        return;
    }
    if (b->secret && b->data != NULL)
        cf_wipe(b->data, b->cap);
    b->len = 0;
    b->rpos = 0;
}

int cf_buf_reserve(cf_buf *b, size_t n)
{
    uint8_t *nd;
    size_t need, ncap;

    CF_ENSURE(!b->view, CF_E_INVAL);
    CF_ENSURE(n <= b->max && b->len <= b->max - n, CF_E_TOO_LARGE);
    need = b->len + n;
    /* +1 keeps room for cf_buf_nul_terminate without a second growth. */
    if (need + 1 <= b->cap)
        return 0;
    ncap = b->cap ? b->cap : 64;
    while (ncap < need + 1) {
        if (ncap > SIZE_MAX / 2) {
            ncap = need + 1;
            break;
        }
        ncap *= 2;
    }
    if (ncap > b->max + 1)
        ncap = b->max + 1;
    if (b->secret) {
        nd = cf_secure_alloc(ncap);
        if (nd == NULL)
            return CF_E_NOMEM;
        if (b->data != NULL) {
            memcpy(nd, b->data, b->len);
            cf_secure_free(b->data);
        }
    } else {
        nd = realloc(b->data, ncap);
        if (nd == NULL)
            return CF_E_NOMEM;
    }
    b->data = nd;
    b->cap = ncap;
    return 0;
}

int cf_buf_put_space(cf_buf *b, size_t n, uint8_t **ret)
{
    CF_GUARD(cf_buf_reserve(b, n));
    *ret = b->data + b->len;
    b->len += n;
    return 0;
}

int cf_buf_put(cf_buf *b, const void *p, size_t n)
{
    if (n == 0)
        return 0;
    CF_GUARD(cf_buf_reserve(b, n));
    memcpy(b->data + b->len, p, n);
    b->len += n;
    return 0;
}

int cf_buf_put_u8(cf_buf *b, uint8_t v) { return cf_buf_put(b, &v, 1); }

int cf_buf_put_u16be(cf_buf *b, uint16_t v)
{
    uint8_t t[2] = {(uint8_t)(v >> 8), (uint8_t)v};
    return cf_buf_put(b, t, sizeof(t));
}

int cf_buf_put_u32be(cf_buf *b, uint32_t v)
{
    uint8_t t[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
    return cf_buf_put(b, t, sizeof(t));
}

int cf_buf_put_u64be(cf_buf *b, uint64_t v)
{
    CF_GUARD(cf_buf_put_u32be(b, (uint32_t)(v >> 32)));
    return cf_buf_put_u32be(b, (uint32_t)v);
}

int cf_buf_put_u32le(cf_buf *b, uint32_t v)
{
    uint8_t t[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    return cf_buf_put(b, t, sizeof(t));
}

int cf_buf_put_u64le(cf_buf *b, uint64_t v)
{
    CF_GUARD(cf_buf_put_u32le(b, (uint32_t)v));
    return cf_buf_put_u32le(b, (uint32_t)(v >> 32));
}

int cf_buf_put_str(cf_buf *b, const char *s) { return cf_buf_put(b, s, strlen(s)); }

int cf_buf_printf(cf_buf *b, const char *fmt, ...)
{
    va_list ap, ap2;
    int n;

    va_start(ap, fmt);
    va_copy(ap2, ap);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) {
        va_end(ap2);
        return CF_E_INVAL;
    }
    if (cf_buf_reserve(b, (size_t)n) != 0) {
        va_end(ap2);
        return CF_E_TOO_LARGE;
    }
    /* reserve kept one spare byte for the terminator vsnprintf writes. */
    (void)vsnprintf((char *)b->data + b->len, (size_t)n + 1, fmt, ap2);
    va_end(ap2);
    b->len += (size_t)n;
    return 0;
}

int cf_buf_nul_terminate(cf_buf *b)
{
    CF_ENSURE(!b->view, CF_E_INVAL);
    /* reserve always keeps one spare byte past len for this terminator. */
    CF_GUARD(cf_buf_reserve(b, 0));
    b->data[b->len] = 0;
    return 0;
}

size_t cf_buf_remaining(const cf_buf *b) { return b->len - b->rpos; }

int cf_buf_get_ptr(cf_buf *b, size_t n, const uint8_t **ret)
{
    CF_ENSURE(cf_buf_remaining(b) >= n, CF_E_TRUNCATED);
    *ret = b->data + b->rpos;
    b->rpos += n;
    return 0;
}

int cf_buf_get(cf_buf *b, void *out, size_t n)
{
    const uint8_t *p;

    CF_GUARD(cf_buf_get_ptr(b, n, &p));
    if (n > 0)
        memcpy(out, p, n);
    return 0;
}

int cf_buf_skip(cf_buf *b, size_t n)
{
    const uint8_t *p;
    return cf_buf_get_ptr(b, n, &p);
}

int cf_buf_get_u8(cf_buf *b, uint8_t *ret) { return cf_buf_get(b, ret, 1); }

#define GET_N(b, n, p) CF_GUARD(cf_buf_get_ptr((b), (n), &(p)))

int cf_buf_get_u16be(cf_buf *b, uint16_t *ret)
{
    const uint8_t *p;
    GET_N(b, 2, p);
    *ret = (uint16_t)((uint16_t)p[0] << 8 | p[1]);
    return 0;
}

int cf_buf_get_u32be(cf_buf *b, uint32_t *ret)
{
    const uint8_t *p;
    GET_N(b, 4, p);
    *ret = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
    return 0;
}

int cf_buf_get_u64be(cf_buf *b, uint64_t *ret)
{
    uint32_t hi, lo;
    size_t save = b->rpos;

    if (cf_buf_get_u32be(b, &hi) != 0 || cf_buf_get_u32be(b, &lo) != 0) {
        b->rpos = save;
        return CF_E_TRUNCATED;
    }
    *ret = (uint64_t)hi << 32 | lo;
    return 0;
}

int cf_buf_get_u16le(cf_buf *b, uint16_t *ret)
{
    const uint8_t *p;
    GET_N(b, 2, p);
    *ret = (uint16_t)(p[0] | (uint16_t)p[1] << 8);
    return 0;
}

int cf_buf_get_u32le(cf_buf *b, uint32_t *ret)
{
    const uint8_t *p;
    GET_N(b, 4, p);
    *ret = p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
    return 0;
}

int cf_buf_get_u64le(cf_buf *b, uint64_t *ret)
{
    uint32_t lo, hi;
    size_t save = b->rpos;

    if (cf_buf_get_u32le(b, &lo) != 0 || cf_buf_get_u32le(b, &hi) != 0) {
        b->rpos = save;
        return CF_E_TRUNCATED;
    }
    *ret = (uint64_t)hi << 32 | lo;
    return 0;
}

int cf_buf_expect_end(const cf_buf *b)
{
    return cf_buf_remaining(b) == 0 ? 0 : CF_E_TRAILING;
}

uint8_t *cf_buf_detach(cf_buf *b, size_t *ret_len)
{
    uint8_t *d;

    if (b->view || b->data == NULL || b->len == 0) {
        *ret_len = 0;
        cf_buf_free(b);
        return NULL;
    }
    d = b->data;
    *ret_len = b->len;
    b->data = NULL;
    b->len = b->cap = b->rpos = 0;
    return d;
}
