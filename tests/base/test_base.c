#include <stdint.h>
#include <string.h>

#include "base/buf.h"
#include "base/err.h"
#include "base/log.h"
#include "base/parse.h"
#include "base/secmem.h"
#include "test.h"

static void test_err_table(void)
{
    T_STREQ(cf_err_name(CF_E_PARSE), "malformed");
    T_EQ(cf_err_http_status(CF_E_TOO_LARGE), 413);
    T_EQ(cf_err_http_status(CF_E_RATE_LIMITED), 429);
    T_EQ(cf_err_http_status(CF_E_NOT_FOUND), 404);
    /* Out-of-range codes map to internal, never crash. */
    T_STREQ(cf_err_name(-9999), "internal_error");
    T_STREQ(cf_err_name(5), "internal_error");
    for (int e = 0; e > CF_E__LAST; e--) {
        T_ASSERT(cf_err_name(e) != NULL && cf_err_str(e) != NULL);
        T_ASSERT(cf_err_http_status(e) >= 200);
    }
    T_EQ(cf_err_set(CF_E_RANGE, "value %d too big", 7), CF_E_RANGE);
    T_STREQ(cf_err_detail(CF_E_RANGE), "value 7 too big");
    /* The detail only applies to the code it was set with. */
    T_STREQ(cf_err_detail(CF_E_PARSE), "malformed input");
    /* Wrapping the previous detail is safe. */
    T_EQ(cf_err_set(CF_E_RANGE, "outer: %s", cf_err_detail(CF_E_RANGE)), CF_E_RANGE);
    T_STREQ(cf_err_detail(CF_E_RANGE), "outer: value 7 too big");
    cf_err_clear();
    T_STREQ(cf_err_detail(CF_E_RANGE), "value out of range");
}

static void test_buf_write_read(void)
{
    cf_buf b;
    uint8_t u8;
    uint16_t u16;
    uint32_t u32;
    uint64_t u64;
    const uint8_t *p;

    cf_buf_init(&b, 64);
    T_OK(cf_buf_put_u8(&b, 0xab));
    T_OK(cf_buf_put_u16be(&b, 0x0102));
    T_OK(cf_buf_put_u32be(&b, 0x03040506));
    T_OK(cf_buf_put_u32le(&b, 0x0a0b0c0d));
    T_OK(cf_buf_put_u64le(&b, 0x1122334455667788ull));
    T_OK(cf_buf_put_u64be(&b, 0x99aabbccddeeff00ull));
    T_OK(cf_buf_put_str(&b, "hi"));
    T_EQ(b.len, 1 + 2 + 4 + 4 + 8 + 8 + 2);
    T_EQ(b.data[1], 0x01);
    T_EQ(b.data[7], 0x0d);
    T_OK(cf_buf_get_u8(&b, &u8));
    T_EQ(u8, 0xab);
    T_OK(cf_buf_get_u16be(&b, &u16));
    T_EQ(u16, 0x0102);
    T_OK(cf_buf_get_u32be(&b, &u32));
    T_EQ(u32, 0x03040506);
    T_OK(cf_buf_get_u32le(&b, &u32));
    T_EQ(u32, 0x0a0b0c0d);
    T_OK(cf_buf_get_u64le(&b, &u64));
    T_ASSERT(u64 == 0x1122334455667788ull);
    T_OK(cf_buf_get_u64be(&b, &u64));
    T_ASSERT(u64 == 0x99aabbccddeeff00ull);
    T_ERR(cf_buf_expect_end(&b), CF_E_TRAILING);
    T_OK(cf_buf_get_ptr(&b, 2, &p));
    T_MEMEQ(p, "hi", 2);
    T_OK(cf_buf_expect_end(&b));
    /* Reading past the end fails and leaves the cursor alone. */
    T_ERR(cf_buf_get_u8(&b, &u8), CF_E_TRUNCATED);
    T_ERR(cf_buf_get_u64le(&b, &u64), CF_E_TRUNCATED);
    T_EQ(cf_buf_remaining(&b), 0);
    cf_buf_free(&b);
}

static void test_buf_cap(void)
{
    cf_buf b;
    uint8_t big[100] = {0};

    cf_buf_init(&b, 10);
    T_OK(cf_buf_put(&b, big, 10));
    T_ERR(cf_buf_put_u8(&b, 1), CF_E_TOO_LARGE);
    T_EQ(b.len, 10);
    T_OK(cf_buf_nul_terminate(&b));
    T_EQ(b.data[10], 0);
    cf_buf_reset(&b);
    T_ERR(cf_buf_put(&b, big, 11), CF_E_TOO_LARGE);
    T_ERR(cf_buf_put(&b, big, SIZE_MAX), CF_E_TOO_LARGE);
    T_EQ(b.len, 0);
    T_ERR(cf_buf_printf(&b, "%s", "this is longer than ten"), CF_E_TOO_LARGE);
    T_OK(cf_buf_printf(&b, "n=%d", 42));
    T_OK(cf_buf_nul_terminate(&b));
    T_STREQ((char *)b.data, "n=42");
    cf_buf_free(&b);
}

static void test_buf_view_and_secret(void)
{
    static const uint8_t data[4] = {1, 2, 3, 4};
    cf_buf v, s;
    uint32_t x;
    uint8_t *d;
    size_t n;

    cf_buf_view(&v, data, sizeof(data));
    T_ERR(cf_buf_put_u8(&v, 9), CF_E_INVAL);
    T_OK(cf_buf_get_u32be(&v, &x));
    T_EQ(x, 0x01020304);
    cf_buf_free(&v);

    cf_buf_init_secret(&s, 1 << 20);
    for (int i = 0; i < 1000; i++)
        T_OK(cf_buf_put_u32be(&s, (uint32_t)i));
    T_EQ(s.len, 4000);
    T_EQ(s.data[3999], 999 & 0xff);
    d = cf_buf_detach(&s, &n);
    T_EQ(n, 4000);
    T_ASSERT(d != NULL);
    T_ASSERT(cf_secure_size(d) >= 4000);
    cf_secure_free(d);
    cf_buf_free(&s);
}

static void test_secmem(void)
{
    uint8_t *p = cf_secure_alloc(100);
    cf_secret s;

    T_ASSERT(p != NULL);
    T_EQ(cf_secure_size(p), 100);
    for (int i = 0; i < 100; i++)
        T_EQ(p[i], 0);
    memset(p, 0x5a, 100);
    cf_secure_free(p);
    cf_secure_free(NULL);
    T_ASSERT(cf_secure_alloc(0) == NULL);
    T_OK(cf_secret_from(&s, "key!", 4));
    T_EQ(s.len, 4);
    T_MEMEQ(s.p, "key!", 4);
    cf_secret_free(&s);
    T_ASSERT(s.p == NULL && s.len == 0);

    T_ASSERT(cf_ct_eq("abc", "abc", 3));
    T_ASSERT(!cf_ct_eq("abc", "abd", 3));
    T_ASSERT(cf_ct_eq("x", "y", 0));
}

/* Every size class and the large path; reused blocks come back zeroed. */
static void test_secmem_pool(void)
{
    static const size_t sizes[] = {1, 32, 48, 49, 200, 240, 241, 1000, 1008, 1009, 4080, 4081, 100000};
    void *blocks[600];

    for (size_t k = 0; k < CF_ARRAY_LEN(sizes); k++) {
        size_t n = sizes[k];
        for (int i = 0; i < 600; i++) {
            uint8_t *p = cf_secure_alloc(n);
            T_ASSERT(p != NULL);
            T_EQ(cf_secure_size(p), n);
            for (size_t j = 0; j < n; j++)
                T_ASSERT_MSG(p[j] == 0, "block of %zu not zeroed at %zu", n, j);
            memset(p, 0xa5, n);
            blocks[i] = p;
            if (n >= 100000 && i >= 4)
                break;
        }
        for (int i = 0; i < 600; i++) {
            if (n >= 100000 && i > 4)
                break;
            cf_secure_free(blocks[i]);
        }
    }
}

static void test_parse_numbers(void)
{
    uint64_t u;
    int64_t i;

    T_OK(cf_parse_u64("0", 10, &u));
    T_EQ(u, 0);
    T_OK(cf_parse_u64("18446744073709551615", UINT64_MAX, &u));
    T_ASSERT(u == UINT64_MAX);
    T_ERR(cf_parse_u64("18446744073709551616", UINT64_MAX, &u), CF_E_RANGE);
    T_ERR(cf_parse_u64("11", 10, &u), CF_E_RANGE);
    T_ERR(cf_parse_u64("", 10, &u), CF_E_PARSE);
    T_ERR(cf_parse_u64("01", 10, &u), CF_E_PARSE);
    T_ERR(cf_parse_u64("+1", 10, &u), CF_E_PARSE);
    T_ERR(cf_parse_u64(" 1", 10, &u), CF_E_PARSE);
    T_ERR(cf_parse_u64("1x", 10, &u), CF_E_PARSE);
    T_ERR(cf_parse_u64(NULL, 10, &u), CF_E_PARSE);
    T_OK(cf_parse_i64("-9223372036854775808", INT64_MIN, INT64_MAX, &i));
    T_ASSERT(i == INT64_MIN);
    T_OK(cf_parse_i64("42", -5, 50, &i));
    T_EQ(i, 42);
    T_ERR(cf_parse_i64("-6", -5, 50, &i), CF_E_RANGE);
    T_ERR(cf_parse_i64("-0", -5, 50, &i), CF_E_PARSE);
    T_ERR(cf_parse_i64("-", -5, 50, &i), CF_E_PARSE);
    T_OK(cf_parse_duration("90", 1000, &u));
    T_EQ(u, 90);
    T_OK(cf_parse_duration("15m", 10000, &u));
    T_EQ(u, 900);
    T_OK(cf_parse_duration("7d", 1000000, &u));
    T_EQ(u, 604800);
    T_ERR(cf_parse_duration("2h", 100, &u), CF_E_RANGE);
    T_ERR(cf_parse_duration("h", 100, &u), CF_E_PARSE);
    T_ERR(cf_parse_duration("5w", 100, &u), CF_E_PARSE);
}

static void test_hex(void)
{
    uint8_t out[3];
    char s[7];
    cf_buf b;

    cf_hex_encode((const uint8_t *)"\x00\xab\xff", 3, s);
    T_STREQ(s, "00abff");
    T_OK(cf_hex_decode("00ABff", out, 3));
    T_MEMEQ(out, "\x00\xab\xff", 3);
    T_ERR(cf_hex_decode("00abf", out, 3), CF_E_PARSE);
    T_ERR(cf_hex_decode("00abfff", out, 3), CF_E_PARSE);
    T_ERR(cf_hex_decode("00abfg", out, 3), CF_E_PARSE);
    cf_buf_init(&b, 2);
    T_ERR(cf_hex_decode_buf("010203", 2, &b), CF_E_TOO_LARGE);
    T_ERR(cf_hex_decode_buf("010", 2, &b), CF_E_PARSE);
    T_EQ(b.len, 0);
    T_OK(cf_hex_decode_buf("0102", 2, &b));
    T_EQ(b.len, 2);
    cf_buf_free(&b);
}

static void test_b64(void)
{
    /* RFC 4648 §10 vectors. */
    static const char *plain[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    static const char *std[] = {"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
    static const char *url[] = {"", "Zg", "Zm8", "Zm9v", "Zm9vYg", "Zm9vYmE", "Zm9vYmFy"};
    char out[32];
    cf_buf b;

    for (size_t i = 0; i < 7; i++) {
        size_t n = strlen(plain[i]);
        cf_b64_encode((const uint8_t *)plain[i], n, out);
        T_STREQ(out, std[i]);
        T_EQ(cf_b64_encoded_len(n), strlen(std[i]));
        cf_b64url_encode((const uint8_t *)plain[i], n, out);
        T_STREQ(out, url[i]);
        T_EQ(cf_b64url_encoded_len(n), strlen(url[i]));
        cf_buf_init(&b, 64);
        T_OK(cf_b64url_decode(url[i], strlen(url[i]), &b));
        T_EQ(b.len, n);
        T_ASSERT(n == 0 || memcmp(b.data, plain[i], n) == 0);
        cf_buf_reset(&b);
        T_OK(cf_b64_decode(std[i], strlen(std[i]), &b));
        T_EQ(b.len, n);
        cf_buf_free(&b);
    }
    cf_buf_init(&b, 64);
    T_ERR(cf_b64url_decode("Zg==", 4, &b), CF_E_PARSE);   /* padding */
    T_ERR(cf_b64url_decode("Z", 1, &b), CF_E_PARSE);      /* impossible length */
    T_ERR(cf_b64url_decode("Zh", 2, &b), CF_E_PARSE);     /* non-canonical bits */
    T_ERR(cf_b64url_decode("a+b/", 4, &b), CF_E_PARSE);   /* wrong alphabet */
    T_ERR(cf_b64url_decode("Zm9 v", 5, &b), CF_E_PARSE);  /* whitespace */
    T_ERR(cf_b64url_decode("Zm\0v", 4, &b), CF_E_PARSE);  /* embedded NUL */
    T_ERR(cf_b64_decode("Zm9", 3, &b), CF_E_PARSE);
    T_EQ(b.len, 0);
    /* -_ map to 62/63 */
    T_OK(cf_b64url_decode("-_8", 3, &b));
    T_EQ(b.len, 2);
    T_EQ(b.data[0], 0xfb);
    T_EQ(b.data[1], 0xff);
    cf_buf_free(&b);
}

static void test_spiffe(void)
{
#define SV(s) cf_spiffe_id_valid((s), strlen(s))
    T_ASSERT(SV("spiffe://coffer/kms"));
    T_ASSERT(SV("spiffe://example.org/ns/prod/Svc_1"));
    T_ASSERT(!SV("spiffe://coffer"));        /* no workload path */
    T_ASSERT(!SV("spiffe://coffer/"));       /* empty segment */
    T_ASSERT(!SV("spiffe://Coffer/kms"));    /* upper case in the trust domain */
    T_ASSERT(!SV("spiffe://coffer/a/../b")); /* dot segments */
    T_ASSERT(!SV("spiffe://coffer/./b"));
    T_ASSERT(!SV("spiffe://coffer:443/kms")); /* port */
    T_ASSERT(!SV("spiffe://coffer/kms?x=1")); /* query */
    T_ASSERT(!SV("https://coffer/kms"));
    T_ASSERT(!SV("spiffe:///kms"));
    T_ASSERT(!cf_spiffe_id_valid("spiffe://coffer/k\0ms", 20)); /* embedded NUL (DER strings carry lengths) */
    T_ASSERT(!cf_spiffe_id_valid(NULL, 0));
#undef SV
}

static void test_strings(void)
{
    char small[4];
    char *d;

    T_OK(cf_fmt(small, sizeof(small), "%s", "abc"));
    T_ERR(cf_fmt(small, sizeof(small), "%s", "abcd"), CF_E_TOO_LARGE);
    d = cf_strndup_max("hello", 5);
    T_STREQ(d, "hello");
    free(d);
    T_ASSERT(cf_strndup_max("hello!", 5) == NULL);
}

static void test_log_escapes(void)
{
    char *mem = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&mem, &n);
    cf_log_level lv;

    T_ASSERT(f != NULL);
    cf_log_set_stream(f);
    cf_log_set_service("test");
    cf_log_set_request_id("req-1");
    cf_log(CF_LOG_INFO, "thing.done", "who", "a\"b\nc", "n", "1", NULL);
    cf_log(CF_LOG_DEBUG, "hidden", NULL);
    cf_log_set_request_id(NULL);
    fclose(f);
    cf_log_set_stream(NULL);
    T_ASSERT(mem != NULL);
    T_ASSERT(strstr(mem, "\"event\":\"thing.done\"") != NULL);
    T_ASSERT(strstr(mem, "\"request_id\":\"req-1\"") != NULL);
    T_ASSERT(strstr(mem, "\"who\":\"a\\\"b\\nc\"") != NULL);
    T_ASSERT(strstr(mem, "hidden") == NULL);
    /* Exactly one line. */
    T_ASSERT(strchr(mem, '\n') == mem + strlen(mem) - 1);
    free(mem);
    /* An oversized value is cut at a field boundary, still one JSON line. */
    {
        char *big = malloc(20000), *m2 = NULL;
        size_t n2 = 0;
        FILE *f2 = open_memstream(&m2, &n2);
        T_ASSERT(big != NULL && f2 != NULL);
        memset(big, 'x', 19999);
        big[19999] = 0;
        cf_log_set_stream(f2);
        cf_log(CF_LOG_INFO, "big", "a", "small", "b", big, NULL);
        fclose(f2);
        cf_log_set_stream(NULL);
        free(big);
        T_ASSERT(strstr(m2, "\"a\":\"small\"") != NULL);
        T_ASSERT(strstr(m2, "\"truncated\":true}\n") != NULL);
        T_ASSERT(strlen(m2) <= 8192);
        T_ASSERT(strchr(m2, '\n') == m2 + strlen(m2) - 1);
        free(m2);
    }
    T_OK(cf_log_level_parse("warn", &lv));
    T_EQ(lv, CF_LOG_WARN);
    T_ERR(cf_log_level_parse("loud", &lv), CF_E_INVAL);
}

int main(void)
{
    T_RUN(test_err_table);
    T_RUN(test_buf_write_read);
    T_RUN(test_buf_cap);
    T_RUN(test_buf_view_and_secret);
    T_RUN(test_secmem);
    T_RUN(test_secmem_pool);
    T_RUN(test_parse_numbers);
    T_RUN(test_hex);
    T_RUN(test_b64);
    T_RUN(test_spiffe);
    T_RUN(test_strings);
    T_RUN(test_log_escapes);
    return t_done();
}
