/*
 * Strict parsers for the IAM API request bodies (docs/internals/iam.md
 * "HTTP API"). Unknown members, wrong types, oversized values, duplicate keys
 * and trailing bytes are refused with a detail naming the field.
 */
#include <stdint.h>
#include <string.h>

#include "base/err.h"
#include "base/json.h"
#include "base/secmem.h"
#include "iam/api.h"

/* Longest api_key string we look at: a bit more than a valid key, so that a
 * near-miss gets the format's own message rather than "too long". */
#define API_KEY_FIELD_MAX 256

static int parse(const void *body, size_t len, const char *const *allowed, json_t **ret)
{
    json_t *o = NULL;

    if (len > CF_IAM_MAX_BODY)
        return cf_err_set(CF_E_TOO_LARGE, "request body exceeds %d bytes", CF_IAM_MAX_BODY);
    CF_GUARD(cf_json_parse_object(body, len, CF_IAM_MAX_BODY, &o));
    if (cf_json_only_keys(o, allowed) != 0) {
        json_decref(o);
        return CF_E_PARSE;
    }
    *ret = o;
    return 0;
}

static int copy_str(const char *s, char *out, size_t size)
{
    size_t n = strlen(s);

    CF_ENSURE(n < size, CF_E_TOO_LARGE);
    memcpy(out, s, n + 1);
    return 0;
}

/* Best effort: jansson keeps its own copy of the string; wipe it before the
 * object is freed (the HTTP layer's copy of the body is outside our reach). */
static void wipe_json_string(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    const char *s = json_string_value(v);

    if (s != NULL)
        cf_wipe((void *)(uintptr_t)s, json_string_length(v));
}

int cf_iam_req_token(const void *body, size_t len, cf_secret *ret_key, char ret_tenant[CF_ID_MAX_LEN + 1])
{
    static const char *const keys[] = {"api_key", "tenant", NULL};
    json_t *o = NULL;
    const char *key = NULL, *tenant = NULL;
    cf_secret k = {0};
    int rc;

    CF_GUARD(parse(body, len, keys, &o));
    CF_GUARD_OUT(cf_json_get_str(o, "api_key", true, API_KEY_FIELD_MAX, &key));
    CF_GUARD_OUT(cf_json_get_str(o, "tenant", false, CF_ID_MAX_LEN, &tenant));
    if (tenant != NULL && !cf_iam_id_ok(tenant)) {
        rc = cf_err_set(CF_E_INVAL, "field 'tenant' is not a valid tenant id");
        goto out;
    }
    if (key[0] == '\0') {
        rc = cf_err_set(CF_E_INVAL, "field 'api_key' is empty");
        goto out;
    }
    CF_GUARD_OUT(cf_secret_from(&k, key, strlen(key) + 1));
    if (tenant != NULL)
        memcpy(ret_tenant, tenant, strlen(tenant) + 1);
    else
        ret_tenant[0] = '\0';
    *ret_key = k;
    k.p = NULL;
    rc = 0;
out:
    if (o != NULL)
        wipe_json_string(o, "api_key");
    json_decref(o);
    cf_secret_free(&k);
    return rc;
}

int cf_iam_req_tenant(const void *body, size_t len, char ret_id[CF_ID_MAX_LEN + 1],
                      char ret_name[CF_NAME_MAX_LEN + 1])
{
    static const char *const keys[] = {"id", "name", NULL};
    json_t *o = NULL;
    const char *id = NULL, *name = NULL;
    int rc;

    CF_GUARD(parse(body, len, keys, &o));
    CF_GUARD_OUT(cf_json_get_str(o, "id", false, CF_ID_MAX_LEN, &id));
    CF_GUARD_OUT(cf_json_get_str(o, "name", true, CF_NAME_MAX_LEN, &name));
    if (id != NULL && !cf_iam_id_ok(id)) {
        rc = cf_err_set(CF_E_INVAL, "field 'id' must be 1-%d characters of A-Z a-z 0-9 . _ : -", CF_ID_MAX_LEN);
        goto out;
    }
    if (!cf_iam_name_ok(name)) {
        rc = cf_err_set(CF_E_INVAL, "field 'name' must be 1-%d bytes of printable UTF-8", CF_NAME_MAX_LEN);
        goto out;
    }
    if (id != NULL)
        memcpy(ret_id, id, strlen(id) + 1);
    else
        ret_id[0] = '\0';
    CF_GUARD_OUT(copy_str(name, ret_name, CF_NAME_MAX_LEN + 1));
out:
    json_decref(o);
    return rc;
}

int cf_iam_req_principal(const void *body, size_t len, char ret_kind[16], char ret_name[CF_NAME_MAX_LEN + 1],
                         uint32_t *ret_roles)
{
    static const char *const keys[] = {"kind", "name", "roles", NULL};
    json_t *o = NULL, *roles = NULL;
    const char *kind = NULL, *name = NULL;
    uint32_t bits = 0;
    int rc;

    CF_GUARD(parse(body, len, keys, &o));
    CF_GUARD_OUT(cf_json_get_str(o, "kind", true, 15, &kind));
    CF_GUARD_OUT(cf_json_get_str(o, "name", true, CF_NAME_MAX_LEN, &name));
    CF_GUARD_OUT(cf_json_get_array(o, "roles", true, CF_ROLE_COUNT, &roles));
    if (!cf_iam_kind_ok(kind)) {
        rc = cf_err_set(CF_E_INVAL, "field 'kind' must be user, service, developer or client");
        goto out;
    }
    if (!cf_iam_name_ok(name)) {
        rc = cf_err_set(CF_E_INVAL, "field 'name' must be 1-%d bytes of printable UTF-8", CF_NAME_MAX_LEN);
        goto out;
    }
    CF_GUARD_OUT(cf_iam_roles_from_json(roles, &bits));
    if (bits == 0) {
        rc = cf_err_set(CF_E_INVAL, "field 'roles' must name at least one role");
        goto out;
    }
    memcpy(ret_kind, kind, strlen(kind) + 1);
    CF_GUARD_OUT(copy_str(name, ret_name, CF_NAME_MAX_LEN + 1));
    *ret_roles = bits;
out:
    json_decref(o);
    return rc;
}

int cf_iam_req_apikey(const void *body, size_t len, uint64_t *ret_ttl)
{
    static const char *const keys[] = {"ttl", NULL};
    json_t *o = NULL;
    uint64_t ttl = 0;
    int rc;

    if (len == 0) {
        *ret_ttl = 0;
        return 0;
    }
    CF_GUARD(parse(body, len, keys, &o));
    CF_GUARD_OUT(cf_json_get_u64(o, "ttl", false, CF_IAM_APIKEY_TTL_MAX, &ttl));
    if (json_object_get(o, "ttl") != NULL && !json_is_null(json_object_get(o, "ttl")) && ttl == 0) {
        rc = cf_err_set(CF_E_RANGE, "field 'ttl' must be 1-%llu seconds", (unsigned long long)CF_IAM_APIKEY_TTL_MAX);
        goto out;
    }
    *ret_ttl = ttl;
out:
    json_decref(o);
    return rc;
}

int cf_iam_req_clientkey(const void *body, size_t len, uint8_t ret_pub[32])
{
    static const char *const keys[] = {"x25519", NULL};
    json_t *o = NULL;
    cf_buf b;
    int rc;

    cf_buf_init(&b, 64);
    CF_GUARD_OUT(parse(body, len, keys, &o));
    /* Decode up to 64 bytes so that a wrong length gets its own message. */
    CF_GUARD_OUT(cf_json_get_b64url(o, "x25519", true, 64, &b));
    CF_GUARD_OUT(cf_iam_clientkey_check(b.data, b.len));
    memcpy(ret_pub, b.data, 32);
out:
    json_decref(o);
    cf_buf_free(&b);
    return rc;
}

int cf_iam_req_reason(const void *body, size_t len, char ret_reason[CF_IAM_MAX_REASON + 1])
{
    static const char *const keys[] = {"reason", NULL};
    json_t *o = NULL;
    const char *reason = NULL;
    int rc;

    if (len == 0) {
        ret_reason[0] = '\0';
        return 0;
    }
    CF_GUARD(parse(body, len, keys, &o));
    CF_GUARD_OUT(cf_json_get_str(o, "reason", false, CF_IAM_MAX_REASON, &reason));
    if (reason != NULL && reason[0] != '\0' && !cf_iam_text_ok(reason, CF_IAM_MAX_REASON)) {
        rc = cf_err_set(CF_E_INVAL, "field 'reason' must be printable UTF-8");
        goto out;
    }
    if (reason != NULL && reason[0] != '\0')
        CF_GUARD_OUT(copy_str(reason, ret_reason, CF_IAM_MAX_REASON + 1));
    else
        ret_reason[0] = '\0';
out:
    json_decref(o);
    return rc;
}
