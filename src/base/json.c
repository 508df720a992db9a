#include "base/json.h"

#include <string.h>

#include "base/err.h"
#include "base/limits.h"
#include "base/parse.h"

/* Nesting check before jansson sees the text: jansson's own limit is far deeper. */
static int check_depth(const char *s, size_t len, unsigned max_depth)
{
    unsigned depth = 0;
    bool in_str = false, esc = false;

    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (c == '\0')
            return cf_err_set(CF_E_PARSE, "JSON contains a NUL byte at offset %zu", i);
        if (in_str) {
            if (esc)
                esc = false;
            else if (c == '\\')
                esc = true;
            else if (c == '"')
                in_str = false;
            continue;
        }
        if (c == '"') {
            in_str = true;
        } else if (c == '{' || c == '[') {
            if (++depth > max_depth)
                return cf_err_set(CF_E_PARSE, "JSON nested deeper than %u levels", max_depth);
        } else if ((c == '}' || c == ']') && depth > 0) {
            depth--;
        }
    }
    return 0;
}

int cf_json_parse(const void *data, size_t len, size_t max_bytes, json_t **ret)
{
    json_error_t jerr;
    json_t *v = NULL;

    CF_ENSURE(data != NULL || len == 0, CF_E_INVAL);
    if (len > max_bytes)
        return cf_err_set(CF_E_TOO_LARGE, "JSON body of %zu bytes exceeds the limit of %zu", len,
                          max_bytes);
    if (len == 0)
        return cf_err_set(CF_E_PARSE, "empty JSON body");
    CF_GUARD(check_depth(data, len, CF_JSON_MAX_DEPTH));
    v = json_loadb(data, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
    if (v == NULL)
        return cf_err_set(CF_E_PARSE, "invalid JSON at line %d column %d: %s", jerr.line,
                          jerr.column, jerr.text);
    *ret = v;
    return 0;
}

int cf_json_parse_object(const void *data, size_t len, size_t max_bytes, json_t **ret)
{
    json_t *v = NULL;

    CF_GUARD(cf_json_parse(data, len, max_bytes, &v));
    if (!json_is_object(v)) {
        json_decref(v);
        return cf_err_set(CF_E_PARSE, "JSON body must be an object");
    }
    *ret = v;
    return 0;
}

int cf_json_only_keys(const json_t *obj, const char *const *allowed)
{
    const char *key;
    json_t *val;

    CF_ENSURE(json_is_object(obj), CF_E_PARSE);
    /* jansson's iteration macro takes a non-const object. */
    json_object_foreach((json_t *)(uintptr_t)obj, key, val) {
        bool ok = false;
        (void)val;
        for (size_t i = 0; allowed[i] != NULL; i++) {
            if (strcmp(key, allowed[i]) == 0) {
                ok = true;
                break;
            }
        }
        if (!ok)
            return cf_err_set(CF_E_PARSE, "unknown field '%.64s'", key);
    }
    return 0;
}

/* 1 = present (*ret set), 0 = absent and optional, <0 = error. */
static int lookup(const json_t *obj, const char *key, bool required, json_t **ret)
{
    json_t *v = NULL;

    if (!json_is_object(obj))
        return cf_err_set(CF_E_PARSE, "expected a JSON object");
    v = json_object_get(obj, key);
    if (v == NULL || (json_is_null(v) && !required)) {
        if (required)
            return cf_err_set(CF_E_PARSE, "missing required field '%s'", key);
        return 0;
    }
    *ret = v;
    return 1;
}

int cf_json_get_str(const json_t *obj, const char *key, bool required, size_t max_len,
                    const char **ret)
{
    json_t *v = NULL;
    int rc = lookup(obj, key, required, &v);

    if (rc <= 0)
        return rc;
    if (!json_is_string(v))
        return cf_err_set(CF_E_PARSE, "field '%s' must be a string", key);
    if (json_string_length(v) > max_len)
        return cf_err_set(CF_E_TOO_LARGE, "field '%s' is longer than %zu bytes", key, max_len);
    *ret = json_string_value(v);
    return 0;
}

int cf_json_get_u64(const json_t *obj, const char *key, bool required, uint64_t max, uint64_t *ret)
{
    json_t *v = NULL;
    json_int_t i;
    int rc = lookup(obj, key, required, &v);

    if (rc <= 0)
        return rc;
    if (!json_is_integer(v))
        return cf_err_set(CF_E_PARSE, "field '%s' must be an integer", key);
    i = json_integer_value(v);
    if (i < 0 || (uint64_t)i > max)
        return cf_err_set(CF_E_RANGE, "field '%s' must be between 0 and %llu", key,
                          (unsigned long long)max);
    *ret = (uint64_t)i;
    return 0;
}

int cf_json_get_bool(const json_t *obj, const char *key, bool required, bool *ret)
{
    json_t *v = NULL;
    int rc = lookup(obj, key, required, &v);

    if (rc <= 0)
        return rc;
    if (!json_is_boolean(v))
        return cf_err_set(CF_E_PARSE, "field '%s' must be true or false", key);
    *ret = json_is_true(v);
    return 0;
}

int cf_json_get_obj(const json_t *obj, const char *key, bool required, json_t **ret)
{
    json_t *v = NULL;
    int rc = lookup(obj, key, required, &v);

    if (rc <= 0)
        return rc;
    if (!json_is_object(v))
        return cf_err_set(CF_E_PARSE, "field '%s' must be an object", key);
    *ret = v;
    return 0;
}

int cf_json_get_array(const json_t *obj, const char *key, bool required, size_t max_items,
                      json_t **ret)
{
    json_t *v = NULL;
    int rc = lookup(obj, key, required, &v);

    if (rc <= 0)
        return rc;
    if (!json_is_array(v))
        return cf_err_set(CF_E_PARSE, "field '%s' must be an array", key);
    if (json_array_size(v) > max_items)
        return cf_err_set(CF_E_TOO_LARGE, "field '%s' has more than %zu items", key, max_items);
    *ret = v;
    return 0;
}

int cf_json_get_b64url(const json_t *obj, const char *key, bool required, size_t max_bytes,
                       cf_buf *out)
{
    const char *s = NULL;
    size_t before = out->len;
    int rc;

    CF_GUARD(cf_json_get_str(obj, key, required, cf_b64url_encoded_len(max_bytes), &s));
    if (s == NULL)
        return 0;
    rc = cf_b64url_decode(s, strlen(s), out);
    if (rc < 0) {
        out->len = before;
        return cf_err_set(rc == CF_E_TOO_LARGE ? CF_E_TOO_LARGE : CF_E_PARSE,
                          "field '%s' is not valid base64url", key);
    }
    return 0;
}

int cf_json_get_hex(const json_t *obj, const char *key, bool required, uint8_t *out, size_t n)
{
    const char *s = NULL;

    CF_GUARD(cf_json_get_str(obj, key, required, 2 * n, &s));
    if (s == NULL)
        return 0;
    if (cf_hex_decode(s, out, n) != 0)
        return cf_err_set(CF_E_PARSE, "field '%s' must be %zu hex digits", key, 2 * n);
    return 0;
}

char *cf_json_dump(const json_t *v)
{
    return json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
}
