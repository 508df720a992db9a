/*
 * Access tokens for the CLI (token.h).
 */
#include "token.h"

#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/err.h"
#include "base/file.h"
#include "base/json.h"
#include "base/limits.h"
#include "base/secmem.h"

static const char *env(const char *name)
{
    const char *v = getenv(name);
    return v != NULL && v[0] != '\0' ? v : NULL;
}

bool cli_token_renewable(const char *api_key_file)
{
    return env("COFFER_ACCESS_TOKEN") == NULL && (api_key_file != NULL || env("COFFER_API_KEY") != NULL);
}

static int copy_secret(const char *s, size_t n, char **ret)
{
    char *t;

    CF_ENSURE(n > 0 && n <= CF_JWT_MAX_BYTES, cf_err_set(CF_E_PARSE, "the access token is empty or too long"));
    t = cf_secure_alloc(n + 1);
    CF_ENSURE(t != NULL, CF_E_NOMEM);
    memcpy(t, s, n);
    t[n] = '\0';
    *ret = t;
    return 0;
}

/* The API key from a file (one trailing newline dropped) or COFFER_API_KEY, into key. */
static int api_key(const char *file, cf_buf *key)
{
    const char *e = env("COFFER_API_KEY");
    int rc;

    if (file != NULL) {
        rc = cf_file_read(file, CF_SDK_MAX_API_KEY + 1, key);
        if (rc != 0)
            return cf_err_set(CF_E_CONFIG, "cannot read the API key file: %s", cf_err_detail(rc));
        if (key->len > 0 && key->data[key->len - 1] == '\n')
            key->len--;
    } else if (e != NULL) {
        CF_GUARD(cf_buf_put_str(key, e));
    } else {
        return cf_err_set(CF_E_NOT_FOUND, "no credentials: set COFFER_API_KEY (and COFFER_TENANT_ID) or "
                                          "COFFER_ACCESS_TOKEN");
    }
    CF_ENSURE(key->len > 0 && key->len <= CF_SDK_MAX_API_KEY,
              cf_err_set(CF_E_CONFIG, "the API key is empty or too long"));
    /* printable ASCII without quote or backslash: it goes into JSON as is */
    for (size_t i = 0; i < key->len; i++)
        CF_ENSURE(key->data[i] > 0x20 && key->data[i] < 0x7f && key->data[i] != '"' && key->data[i] != '\\',
                  cf_err_set(CF_E_CONFIG, "the API key holds a character no API key has"));
    return 0;
}

int cli_token(cf_http_client *c, const char *api_key_file, const char *tenant, char **ret)
{
    cf_http_request rq = {.method = "POST", .path = "/v1/iam/token", .content_type = "application/json"};
    cf_http_response resp;
    const char *tok = env("COFFER_ACCESS_TOKEN"), *t = NULL;
    json_t *ans = NULL, *jt = NULL;
    char *tq = NULL;
    cf_buf key, body;
    int rc;

    if (tok != NULL && api_key_file == NULL)
        return copy_secret(tok, strlen(tok), ret);
    if (tenant == NULL)
        tenant = env("COFFER_TENANT_ID");
    memset(&resp, 0, sizeof(resp));
    cf_buf_init_secret(&key, CF_SDK_MAX_API_KEY + 2);
    cf_buf_init_secret(&body, CF_SDK_MAX_API_KEY + 4 * CF_ID_MAX_LEN + 64);
    CF_GUARD_OUT(api_key(api_key_file, &key));
    CF_GUARD_OUT(cf_buf_nul_terminate(&key));
    /* The body is built in secret memory (it holds the key); the tenant is
     * quoted by jansson. */
    CF_GUARD_OUT(cf_buf_printf(&body, "{\"api_key\":\"%s\"", (const char *)key.data));
    if (tenant != NULL) {
        jt = json_string(tenant);
        tq = jt != NULL ? json_dumps(jt, JSON_ENCODE_ANY) : NULL;
        CF_ENSURE_OUT(tq != NULL && strlen(tenant) <= CF_ID_MAX_LEN,
                      cf_err_set(CF_E_CONFIG, "the tenant id is not valid (UTF-8, at most %d bytes)", CF_ID_MAX_LEN));
        CF_GUARD_OUT(cf_buf_printf(&body, ",\"tenant\":%s", tq));
    }
    CF_GUARD_OUT(cf_buf_put_str(&body, "}"));
    rq.body = body.data;
    rq.body_len = body.len;
    CF_GUARD_OUT(cf_http_client_do(c, &rq, &resp));
    if (resp.status != 200) {
        rc = cf_err_set(resp.status == 401 || resp.status == 403 ? CF_E_UNAUTHENTICATED : CF_E_UNAVAILABLE,
                        "the API key was refused: POST /v1/iam/token answered HTTP %ld", resp.status);
        goto out;
    }
    CF_GUARD_OUT(cf_http_response_json(&resp, &ans));
    CF_GUARD_OUT(cf_json_get_str(ans, "access_token", true, CF_JWT_MAX_BYTES, &t));
    rc = copy_secret(t, strlen(t), ret);
out:
    /* the answer holds the token: wipe it before it is freed */
    if (resp.body.data != NULL)
        cf_wipe(resp.body.data, resp.body.len);
    free(tq);
    json_decref(jt);
    json_decref(ans);
    cf_buf_free(&body);
    cf_http_response_free(&resp);
    cf_buf_free(&key);
    return rc;
}
