#include "base/parse.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/limits.h"

int cf_parse_u64(const char *s, uint64_t max, uint64_t *ret)
{
    uint64_t v = 0;
    size_t i;

    CF_ENSURE(s != NULL && s[0] != '\0', CF_E_PARSE);
    CF_ENSURE(!(s[0] == '0' && s[1] != '\0'), CF_E_PARSE);
    for (i = 0; s[i] != '\0'; i++) {
        unsigned d;
        CF_ENSURE(s[i] >= '0' && s[i] <= '9', CF_E_PARSE);
        CF_ENSURE(i < 20, CF_E_RANGE);
        d = (unsigned)(s[i] - '0');
        CF_ENSURE(v <= (UINT64_MAX - d) / 10, CF_E_RANGE);
        v = v * 10 + d;
    }
    CF_ENSURE(v <= max, CF_E_RANGE);
    *ret = v;
    return 0;
}

int cf_parse_i64(const char *s, int64_t min, int64_t max, int64_t *ret)
{
    uint64_t mag;
    int neg = 0;

    CF_ENSURE(s != NULL, CF_E_PARSE);
    if (s[0] == '-') {
        neg = 1;
        s++;
    }
    CF_GUARD(cf_parse_u64(s, neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX, &mag));
    if (neg) {
        CF_ENSURE(mag != 0, CF_E_PARSE); /* "-0" is not canonical */
        int64_t v = mag == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)mag;
        CF_ENSURE(v >= min && v <= max, CF_E_RANGE);
        *ret = v;
    } else {
        CF_ENSURE((int64_t)mag >= min && (int64_t)mag <= max, CF_E_RANGE);
        *ret = (int64_t)mag;
    }
    return 0;
}

int cf_parse_duration(const char *s, uint64_t max_seconds, uint64_t *ret)
{
    char num[24];
    size_t n;
    uint64_t v, mult = 1;

    CF_ENSURE(s != NULL, CF_E_PARSE);
    n = strlen(s);
    CF_ENSURE(n > 0 && n < sizeof(num), CF_E_PARSE);
    memcpy(num, s, n + 1);
    switch (num[n - 1]) {
    case 's': mult = 1; num[--n] = 0; break;
    case 'm': mult = 60; num[--n] = 0; break;
    case 'h': mult = 3600; num[--n] = 0; break;
    case 'd': mult = 86400; num[--n] = 0; break;
    default: break;
    }
    CF_GUARD(cf_parse_u64(num, UINT64_MAX / mult, &v));
    v *= mult;
    CF_ENSURE(v <= max_seconds, CF_E_RANGE);
    *ret = v;
    return 0;
}

static const char hexdig[] = "0123456789abcdef";

void cf_hex_encode(const uint8_t *in, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hexdig[in[i] >> 4];
        out[2 * i + 1] = hexdig[in[i] & 15];
    }
    out[2 * n] = 0;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int cf_hex_decode(const char *s, uint8_t *out, size_t out_len)
{
    CF_ENSURE(s != NULL, CF_E_PARSE);
    CF_ENSURE(strnlen(s, 2 * out_len + 1) == 2 * out_len, CF_E_PARSE);
    for (size_t i = 0; i < out_len; i++) {
        int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);
        CF_ENSURE(hi >= 0 && lo >= 0, CF_E_PARSE);
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return 0;
}

int cf_hex_decode_buf(const char *s, size_t max, cf_buf *b)
{
    size_t n;
    uint8_t *dst;

    CF_ENSURE(s != NULL, CF_E_PARSE);
    n = strnlen(s, 2 * max + 1);
    CF_ENSURE(n <= 2 * max, CF_E_TOO_LARGE);
    CF_ENSURE(n % 2 == 0, CF_E_PARSE);
    for (size_t i = 0; i < n; i++)
        CF_ENSURE(hexval(s[i]) >= 0, CF_E_PARSE);
    CF_GUARD(cf_buf_put_space(b, n / 2, &dst));
    for (size_t i = 0; i < n / 2; i++)
        dst[i] = (uint8_t)(hexval(s[2 * i]) << 4 | hexval(s[2 * i + 1]));
    return 0;
}

static const char b64url_alpha[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
static const char b64_alpha[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t cf_b64url_encoded_len(size_t n) { return n / 3 * 4 + (n % 3 ? n % 3 + 1 : 0); }
size_t cf_b64_encoded_len(size_t n) { return (n + 2) / 3 * 4; }

static void b64_encode(const char *alpha, int pad, const uint8_t *in, size_t n, char *out)
{
    size_t i = 0, o = 0;

    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[o++] = alpha[v >> 18];
        out[o++] = alpha[(v >> 12) & 63];
        out[o++] = alpha[(v >> 6) & 63];
        out[o++] = alpha[v & 63];
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)in[i] << 16;
        out[o++] = alpha[v >> 18];
        out[o++] = alpha[(v >> 12) & 63];
        if (pad) {
            out[o++] = '=';
            out[o++] = '=';
        }
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
        out[o++] = alpha[v >> 18];
        out[o++] = alpha[(v >> 12) & 63];
        out[o++] = alpha[(v >> 6) & 63];
        if (pad)
            out[o++] = '=';
    }
    out[o] = 0;
}

void cf_b64url_encode(const uint8_t *in, size_t n, char *out) { b64_encode(b64url_alpha, 0, in, n, out); }
void cf_b64_encode(const uint8_t *in, size_t n, char *out) { b64_encode(b64_alpha, 1, in, n, out); }

char *cf_b64url_encode_alloc(const uint8_t *in, size_t n)
{
    char *out = malloc(cf_b64url_encoded_len(n) + 1);

    if (out != NULL)
        cf_b64url_encode(in, n, out);
    return out;
}

static int b64_val(const char *alpha, char c)
{
    const char *p;

    if (c == 0)
        return -1;
    p = memchr(alpha, c, 64);
    return p ? (int)(p - alpha) : -1;
}

/* Decodes unpadded base64 text of length n (n % 4 != 1) with the given alphabet. */
static int b64_decode_core(const char *alpha, const char *s, size_t n, cf_buf *b)
{
    uint8_t *dst;
    size_t full = n / 4, rem = n % 4, outlen, o = 0;

    CF_ENSURE(rem != 1, CF_E_PARSE);
    outlen = full * 3 + (rem ? rem - 1 : 0);
    for (size_t i = 0; i < n; i++)
        CF_ENSURE(b64_val(alpha, s[i]) >= 0, CF_E_PARSE);
    /* Canonical form: unused low bits of the last character must be zero. */
    if (rem == 2)
        CF_ENSURE((b64_val(alpha, s[n - 1]) & 0x0f) == 0, CF_E_PARSE);
    if (rem == 3)
        CF_ENSURE((b64_val(alpha, s[n - 1]) & 0x03) == 0, CF_E_PARSE);
    CF_GUARD(cf_buf_put_space(b, outlen, &dst));
    for (size_t i = 0; i + 4 <= n; i += 4) {
        uint32_t v = (uint32_t)b64_val(alpha, s[i]) << 18 | (uint32_t)b64_val(alpha, s[i + 1]) << 12 |
                     (uint32_t)b64_val(alpha, s[i + 2]) << 6 | (uint32_t)b64_val(alpha, s[i + 3]);
        dst[o++] = (uint8_t)(v >> 16);
        dst[o++] = (uint8_t)(v >> 8);
        dst[o++] = (uint8_t)v;
    }
    if (rem >= 2) {
        uint32_t v = (uint32_t)b64_val(alpha, s[full * 4]) << 18 |
                     (uint32_t)b64_val(alpha, s[full * 4 + 1]) << 12;
        if (rem == 3)
            v |= (uint32_t)b64_val(alpha, s[full * 4 + 2]) << 6;
        dst[o++] = (uint8_t)(v >> 16);
        if (rem == 3)
            dst[o++] = (uint8_t)(v >> 8);
    }
    return 0;
}

int cf_b64url_decode(const char *s, size_t slen, cf_buf *b)
{
    CF_ENSURE(s != NULL, CF_E_PARSE);
    return b64_decode_core(b64url_alpha, s, slen, b);
}

int cf_b64_decode(const char *s, size_t slen, cf_buf *b)
{
    size_t n = slen;

    CF_ENSURE(s != NULL && slen % 4 == 0, CF_E_PARSE);
    if (n >= 1 && s[n - 1] == '=')
        n--;
    if (n >= 1 && s[n - 1] == '=')
        n--;
    return b64_decode_core(b64_alpha, s, n, b);
}

char *cf_strndup_max(const char *s, size_t max)
{
    size_t n;
    char *d;

    if (s == NULL)
        return NULL;
    n = strnlen(s, max + 1);
    if (n > max)
        return NULL;
    d = malloc(n + 1);
    if (d == NULL)
        return NULL;
    memcpy(d, s, n);
    d[n] = 0;
    return d;
}

int cf_fmt(char *out, size_t size, const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(out, size, fmt, ap);
    va_end(ap);
    if (n < 0)
        return CF_E_INVAL;
    if ((size_t)n >= size)
        return CF_E_TOO_LARGE;
    return 0;
}

static bool spiffe_domain_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '_';
}

static bool spiffe_path_char(char c)
{
    return spiffe_domain_char(c) || (c >= 'A' && c <= 'Z');
}

bool cf_spiffe_id_valid(const char *id, size_t n)
{
    static const char scheme[] = "spiffe://";
    size_t i = sizeof(scheme) - 1, seg = 0, seg_start;

    if (id == NULL || n > CF_SPIFFE_ID_MAX_LEN || n <= i || memcmp(id, scheme, i) != 0)
        return false;
    /* Trust domain (§2.1). */
    for (; i < n && id[i] != '/'; i++, seg++)
        if (!spiffe_domain_char(id[i]))
            return false;
    /* Coffer identities always name a workload: the path (§2.2) is required. */
    if (seg == 0 || i == n)
        return false;
    while (i < n) {
        seg_start = ++i; /* past the '/' */
        for (; i < n && id[i] != '/'; i++)
            if (!spiffe_path_char(id[i]))
                return false;
        seg = i - seg_start;
        if (seg == 0 || (seg == 1 && id[seg_start] == '.') ||
            (seg == 2 && id[seg_start] == '.' && id[seg_start + 1] == '.'))
            return false;
    }
    return true;
}
