#include <string.h>

#include "base/err.h"
#include "base/json.h"
#include "base/limits.h"
#include "test.h"

#define P(s, out) cf_json_parse_object((s), strlen(s), 4096, (out))

static void test_parse_limits(void)
{
    json_t *v = NULL;
    char deep[200];
    size_t i;

    T_OK(P("{\"a\":1}", &v));
    json_decref(v);
    T_ERR(P("{\"a\":1,\"a\":2}", &v), CF_E_PARSE); /* duplicate key */
    T_ERR(P("{\"a\":1} x", &v), CF_E_PARSE);       /* trailing data */
    T_ERR(P("[1]", &v), CF_E_PARSE);               /* not an object */
    T_ERR(P("", &v), CF_E_PARSE);
    T_ERR(P("{\"a\":\"x\\u0000y\"}", &v), CF_E_PARSE); /* NUL in string */
    T_ERR(cf_json_parse_object("{\"a\":1}\0", 8, 4096, &v), CF_E_PARSE);
    T_ERR(cf_json_parse_object("{\"a\":1}", 7, 6, &v), CF_E_TOO_LARGE);
    for (i = 0; i < CF_JSON_MAX_DEPTH + 1; i++)
        deep[i] = '[';
    deep[i] = 0;
    T_ERR(cf_json_parse(deep, strlen(deep), 4096, &v), CF_E_PARSE);
    T_ASSERT(strstr(cf_err_detail(CF_E_PARSE), "nested") != NULL);
    /* Brackets inside strings do not count. */
    memset(deep, '[', 100);
    memcpy(deep, "{\"a\":\"", 6);
    memcpy(deep + 94, "\"}", 3);
    T_OK(cf_json_parse_object(deep, strlen(deep), 4096, &v));
    json_decref(v);
}

static void test_getters(void)
{
    json_t *v = NULL;
    const char *s = "default";
    uint64_t u = 7;
    bool b = false;
    uint8_t h[2];
    cf_buf buf;
    static const char *const allowed[] = {"name", "n", "flag", "hex", "b64", "opt", NULL};

    T_OK(P("{\"name\":\"x\",\"n\":5,\"flag\":true,\"hex\":\"abcd\",\"b64\":\"aGk\",\"opt\":null}", &v));
    T_OK(cf_json_only_keys(v, allowed));
    T_OK(cf_json_get_str(v, "name", true, 10, &s));
    T_STREQ(s, "x");
    T_ERR(cf_json_get_str(v, "name", true, 0, &s), CF_E_TOO_LARGE);
    T_ERR(cf_json_get_str(v, "n", true, 10, &s), CF_E_PARSE);
    T_STREQ(cf_err_detail(CF_E_PARSE), "field 'n' must be a string");
    T_ERR(cf_json_get_str(v, "missing", true, 10, &s), CF_E_PARSE);
    T_STREQ(cf_err_detail(CF_E_PARSE), "missing required field 'missing'");
    s = "default";
    T_OK(cf_json_get_str(v, "missing", false, 10, &s));
    T_STREQ(s, "default");
    T_OK(cf_json_get_str(v, "opt", false, 10, &s));
    T_STREQ(s, "default");
    T_OK(cf_json_get_u64(v, "n", true, 10, &u));
    T_EQ(u, 5);
    T_ERR(cf_json_get_u64(v, "n", true, 4, &u), CF_E_RANGE);
    T_OK(cf_json_get_bool(v, "flag", true, &b));
    T_ASSERT(b);
    T_OK(cf_json_get_hex(v, "hex", true, h, 2));
    T_EQ(h[0], 0xab);
    T_ERR(cf_json_get_hex(v, "name", true, h, 2), CF_E_PARSE);
    cf_buf_init(&buf, 16);
    T_OK(cf_json_get_b64url(v, "b64", true, 16, &buf));
    T_EQ(buf.len, 2);
    T_ERR(cf_json_get_b64url(v, "hex", true, 1, &buf), CF_E_TOO_LARGE);
    T_EQ(buf.len, 2);
    cf_buf_free(&buf);
    json_decref(v);

    T_OK(P("{\"name\":\"x\",\"evil\":1}", &v));
    T_ERR(cf_json_only_keys(v, allowed), CF_E_PARSE);
    T_STREQ(cf_err_detail(CF_E_PARSE), "unknown field 'evil'");
    json_decref(v);

    T_OK(P("{\"b\":1,\"a\":[true,null]}", &v));
    char *d = cf_json_dump(v);
    T_STREQ(d, "{\"a\":[true,null],\"b\":1}");
    free(d);
    json_decref(v);
}

int main(void)
{
    T_RUN(test_parse_limits);
    T_RUN(test_getters);
    return t_done();
}
