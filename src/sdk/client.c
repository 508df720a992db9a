/*
 * The client object: options, pinned trust anchors, the HTTP connection pool
 * (include/coffer.h; docs/SDK.md "Options").
 *
 * Everything a request is checked against is loaded here, once, from the
 * client's own files — never from the platform: the manifest (policy and its
 * hash), the attestation service's JWK Set and the KMS release key
 * (DESIGN.md §2 rule 1: the client trusts no component's word about a TEE).
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "base/buf.h"
#include "base/err.h"
#include "base/file.h"
#include "base/json.h"
#include "base/parse.h"
#include "base/secmem.h"
#include "crypto/keys.h"
#include "proto/envelope.h"
#include "sdk/sdk.h"

int64_t cf_sdk_now(void)
{
    return (int64_t)time(NULL);
}

bool cf_sdk_id_ok(const char *s, size_t max)
{
    size_t n;

    if (s == NULL)
        return false;
    n = strnlen(s, max + 1);
    if (n == 0 || n > max)
        return false;
    for (size_t i = 0; i < n; i++)
        if (s[i] < 0x21 || s[i] > 0x7e || s[i] == '"' || s[i] == '\\' || s[i] == '/')
            return false;
    return true;
}

bool cf_sdk_name_ok(const char *s, size_t max)
{
    size_t n;

    if (s == NULL)
        return false;
    n = strnlen(s, max + 1);
    if (n == 0 || n > max || !isalnum((unsigned char)s[0]))
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '.' && s[i] != '_' && s[i] != '-')
            return false;
    return true;
}

int cf_sdk_pct_encode(const char *s, char *out, size_t out_size)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;

    for (const char *p = s; *p; p++) {
        unsigned char ch = (unsigned char)*p;
        /* RFC 3986 §2.3 unreserved characters pass; everything else is escaped. */
        if (isalnum(ch) || ch == '-' || ch == '.' || ch == '_' || ch == '~') {
            CF_ENSURE(o + 1 < out_size, CF_E_TOO_LARGE);
            out[o++] = (char)ch;
        } else {
            CF_ENSURE(o + 3 < out_size, CF_E_TOO_LARGE);
            out[o++] = '%';
            out[o++] = hex[ch >> 4];
            out[o++] = hex[ch & 15];
        }
    }
    CF_ENSURE(out_size > 0, CF_E_TOO_LARGE);
    out[o] = 0;
    return 0;
}

int cf_sdk_parse_time(const json_t *v, int64_t *ret)
{
    char text[CF_SDK_MAX_TIME_TEXT + 1];
    const char *s, *end;
    struct tm tm;
    time_t t;
    size_t n;

    if (json_is_integer(v)) {
        json_int_t i = json_integer_value(v);
        CF_ENSURE(i > 0 && i <= CF_JWT_MAX_TIME, cf_err_set(CF_E_RANGE, "time out of range"));
        *ret = (int64_t)i;
        return 0;
    }
    s = json_string_value(v);
    CF_ENSURE(s != NULL, cf_err_set(CF_E_PARSE, "time must be an integer or RFC 3339 text"));
    n = strnlen(s, sizeof(text));
    CF_ENSURE(n < sizeof(text), cf_err_set(CF_E_PARSE, "time text too long"));
    memcpy(text, s, n + 1);
    /* RFC 3339 §5.6 in UTC: YYYY-MM-DDTHH:MM:SS[.frac]Z */
    memset(&tm, 0, sizeof(tm));
    end = strptime(text, "%Y-%m-%dT%H:%M:%S", &tm);
    CF_ENSURE(end != NULL, cf_err_set(CF_E_PARSE, "time '%s' is not RFC 3339", text));
    if (*end == '.') {
        end++;
        CF_ENSURE(isdigit((unsigned char)*end), cf_err_set(CF_E_PARSE, "bad fraction in '%s'", text));
        while (isdigit((unsigned char)*end))
            end++;
    }
    CF_ENSURE((end[0] == 'Z' || end[0] == 'z') && end[1] == 0,
              cf_err_set(CF_E_PARSE, "time '%s' is not RFC 3339 UTC (...Z)", text));
    t = timegm(&tm);
    CF_ENSURE(t > 0, cf_err_set(CF_E_RANGE, "time '%s' out of range", text));
    *ret = (int64_t)t;
    return 0;
}

/* ---- HTTP ---- */

static int pool_acquire(coffer_client *c, size_t *ret)
{
    CF_ENSURE(pthread_mutex_lock(&c->pool_mu) == 0, CF_E_INTERNAL);
    for (;;) {
        for (size_t i = 0; i < CF_SDK_HTTP_POOL; i++) {
            if (!c->pool_busy[i]) {
                c->pool_busy[i] = true;
                pthread_mutex_unlock(&c->pool_mu);
                *ret = i;
                return 0;
            }
        }
        if (pthread_cond_wait(&c->pool_cv, &c->pool_mu) != 0) {
            pthread_mutex_unlock(&c->pool_mu);
            return CF_E_INTERNAL;
        }
    }
}

static void pool_release(coffer_client *c, size_t i)
{
    if (pthread_mutex_lock(&c->pool_mu) != 0)
        return;
    c->pool_busy[i] = false;
    pthread_cond_signal(&c->pool_cv);
    pthread_mutex_unlock(&c->pool_mu);
}

int cf_sdk_http(coffer_client *c, const cf_http_request *req, cf_http_response *ret,
                const char *step)
{
    size_t slot;
    int rc;

    CF_GUARD(pool_acquire(c, &slot));
    rc = cf_http_client_do(c->pool[slot], req, ret);
    pool_release(c, slot);
    if (rc < 0)
        return cf_sdk_transport_error(rc, step);
    return 0;
}

int cf_sdk_json_answer(const cf_http_response *r, long want_status, const char *step,
                       json_t **ret)
{
    int rc;

    if (r->status != want_status)
        return cf_sdk_http_error(r, step);
    rc = cf_json_parse_object(r->body.data, r->body.len, CF_JSON_MAX_BYTES, ret);
    if (rc < 0)
        return cf_sdk_fail(rc, COFFER_E_PROTOCOL, "%s: malformed answer: %s", step,
                           cf_err_detail(rc));
    return 0;
}

/* ---- options ---- */

static int dup_str(const char *s, size_t max, const char *what, char **ret)
{
    if (s == NULL) {
        *ret = NULL;
        return 0;
    }
    CF_ENSURE(s[0] != 0 && strnlen(s, max + 1) <= max,
              cf_sdk_fail(CF_E_INVAL, COFFER_E_INVALID, "option %s is empty or too long", what));
    *ret = strdup(s);
    return *ret != NULL ? 0 : CF_E_NOMEM;
}

/* Plain http only where nothing travels over a network: loopback addresses. */
static bool loopback_http(const char *url)
{
    const char *h = url + 7;
    size_t n = strcspn(h, ":/");

    if (strncmp(h, "[::1]", 5) == 0)
        return h[5] == 0 || h[5] == ':' || h[5] == '/';
    return (n == 9 && strncasecmp(h, "localhost", 9) == 0) || strncmp(h, "127.", 4) == 0;
}

static int check_url(const char *url)
{
    CF_ENSURE(url != NULL && url[0] != 0,
              cf_sdk_fail(CF_E_INVAL, COFFER_E_INVALID,
                          "option gateway_url is required (COFFER_GATEWAY_URL)"));
    CF_ENSURE(strnlen(url, CF_HTTP_MAX_URL + 1) <= CF_HTTP_MAX_URL,
              cf_sdk_fail(CF_E_INVAL, COFFER_E_INVALID, "option gateway_url is too long"));
    if (strncmp(url, "https://", 8) == 0 && url[8] != 0)
        return 0;
    if (strncmp(url, "http://", 7) == 0 && loopback_http(url))
        return 0;
    return cf_sdk_fail(CF_E_INVAL, COFFER_E_INVALID,
                       "gateway_url '%.256s' must be https:// (plain http:// is accepted only for "
                       "loopback addresses)",
                       url);
}

static int load_manifest(coffer_client *c, const char *path)
{
    bool ours = false;
    int rc;

    CF_ENSURE(path != NULL && path[0] != 0,
              cf_sdk_fail(CF_E_INVAL, COFFER_E_INVALID,
                          "option manifest_path is required (COFFER_MANIFEST): evidence is "
                          "verified against the client's own manifest"));
    rc = cf_manifest_load(path, &c->manifest);
    if (rc < 0)
        return cf_sdk_fail(rc, COFFER_E_CONFIG, "manifest %s: %s", path, cf_err_detail(rc));
    rc = cf_verifier_new(c->manifest, &c->verifier);
    if (rc < 0)
        return cf_sdk_fail(rc, COFFER_E_CONFIG, "manifest %s: %s", path, cf_err_detail(rc));
    for (size_t i = 0; i < cf_manifest_deployment_count(c->manifest); i++)
        if (strcmp(cf_manifest_deployment_at(c->manifest, i)->tenant, c->tenant) == 0)
            ours = true;
    CF_ENSURE(ours, cf_sdk_fail(CF_E_CONFIG, COFFER_E_CONFIG,
                                "manifest %s has no deployment of tenant '%s'", path, c->tenant));
    return 0;
}

static int load_jwks(coffer_client *c, const char *path)
{
    cf_buf b;
    int rc = 0;

    CF_ENSURE(path != NULL && path[0] != 0,
              cf_sdk_fail(CF_E_INVAL, COFFER_E_INVALID,
                          "option attestation_jwks_path is required (COFFER_ATTESTATION_JWKS): "
                          "the attestation service's key is pinned, never fetched"));
    cf_buf_init(&b, CF_JWKS_MAX_BYTES);
    rc = cf_file_read(path, CF_JWKS_MAX_BYTES, &b);
    if (rc == 0)
        rc = cf_jwks_parse(b.data, b.len, &c->ear_jwks);
    if (rc < 0) {
        rc = cf_sdk_fail(rc, COFFER_E_CONFIG, "attestation JWKS %s: %s", path, cf_err_detail(rc));
        goto out;
    }
    CF_ENSURE_OUT(cf_jwks_count(c->ear_jwks) > 0,
                  cf_sdk_fail(CF_E_CONFIG, COFFER_E_CONFIG, "attestation JWKS %s has no key", path));
    /* EAR tokens are ES256 (DESIGN.md §3 "Results"): pin the algorithm by
     * refusing any other key type in the set. */
    for (size_t i = 0; i < cf_jwks_count(c->ear_jwks); i++) {
        const char *kid = NULL;
        const cf_key *k = cf_jwks_key_at(c->ear_jwks, i, &kid);
        CF_ENSURE_OUT(k != NULL && cf_key_get_type(k) == CF_KEY_P256,
                      cf_sdk_fail(CF_E_CONFIG, COFFER_E_CONFIG,
                                  "attestation JWKS %s: key '%s' is not a P-256 (ES256) key", path,
                                  kid ? kid : "?"));
    }
out:
    cf_buf_free(&b);
    return rc;
}

/* The release key: base64url of the raw 32 bytes, or (in a file) a PEM
 * SubjectPublicKeyInfo of an X25519 key. */
static int release_key_from_text(const char *text, size_t len, const char *origin,
                                 cf_hpke_key **ret)
{
    cf_buf raw;
    cf_key *k = NULL;
    uint8_t pub[CF_X25519_LEN];
    size_t pl = 0;
    int rc = 0;

    cf_buf_init(&raw, CF_KEY_MAX_PEM_BYTES);
    while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == '\r' || text[len - 1] == ' '))
        len--;
    if (len > 10 && memcmp(text, "-----BEGIN", 10) == 0) {
        rc = cf_key_from_public_pem(text, len, &k);
        if (rc == 0 && cf_key_get_type(k) != CF_KEY_X25519)
            rc = cf_err_set(CF_E_UNSUPPORTED, "not an X25519 key");
        if (rc == 0)
            rc = cf_key_export_public(k, pub, sizeof(pub), &pl);
        if (rc == 0)
            rc = cf_buf_put(&raw, pub, pl);
    } else {
        rc = cf_b64url_decode(text, len, &raw);
    }
    if (rc == 0 && raw.len != CF_X25519_LEN)
        rc = cf_err_set(CF_E_PARSE, "an X25519 public key is 32 bytes, not %zu", raw.len);
    if (rc == 0)
        rc = cf_hpke_key_from_public(CF_HPKE_KEM_X25519_SHA256, raw.data, raw.len, ret);
    if (rc < 0)
        rc = cf_sdk_fail(rc, COFFER_E_CONFIG, "KMS release key (%s): %s", origin,
                         cf_err_detail(rc));
    cf_key_free(k);
    cf_buf_free(&raw);
    return rc;
}

static int load_release_key(coffer_client *c, const coffer_client_options *o)
{
    cf_buf b;
    int rc;

    CF_ENSURE((o->kms_release_key != NULL) != (o->kms_release_key_path != NULL),
              cf_sdk_fail(CF_E_INVAL, COFFER_E_INVALID,
                          "exactly one of kms_release_key (COFFER_KMS_RELEASE_KEY) and "
                          "kms_release_key_path (COFFER_KMS_RELEASE_KEY_FILE) is required: the "
                          "KMS release key is pinned, never fetched"));
    if (o->kms_release_key != NULL)
        return release_key_from_text(o->kms_release_key,
                                     strnlen(o->kms_release_key, CF_KEY_MAX_PEM_BYTES),
                                     "kms_release_key", &c->release_key);
    cf_buf_init(&b, CF_KEY_MAX_PEM_BYTES + 1);
    rc = cf_file_read(o->kms_release_key_path, CF_KEY_MAX_PEM_BYTES, &b);
    if (rc == 0)
        rc = cf_buf_nul_terminate(&b);
    if (rc < 0)
        rc = cf_sdk_fail(rc, COFFER_E_CONFIG, "KMS release key: %s", cf_err_detail(rc));
    else
        rc = release_key_from_text((const char *)b.data, b.len, o->kms_release_key_path,
                                   &c->release_key);
    cf_buf_free(&b);
    return rc;
}

static int check_api_key(const char *k)
{
    size_t n;

    CF_ENSURE(k != NULL && k[0] != 0,
              cf_sdk_fail(CF_E_INVAL, COFFER_E_INVALID,
                          "option api_key is required (COFFER_API_KEY)"));
    n = strnlen(k, CF_SDK_MAX_API_KEY + 1);
    CF_ENSURE(n <= CF_SDK_MAX_API_KEY,
              cf_sdk_fail(CF_E_INVAL, COFFER_E_INVALID, "api_key is too long"));
    /* It is placed in a JSON string as is: visible ASCII without quotes or
     * backslashes needs no escaping. */
    for (size_t i = 0; i < n; i++)
        CF_ENSURE(k[i] >= 0x21 && k[i] <= 0x7e && k[i] != '"' && k[i] != '\\',
                  cf_sdk_fail(CF_E_INVAL, COFFER_E_INVALID,
                              "api_key holds a character that no API key has"));
    return 0;
}

/* A zeroed client with its locks initialised (coffer_client_free undoes both). */
static int client_alloc(coffer_client **ret)
{
    coffer_client *c = calloc(1, sizeof(*c));

    CF_ENSURE(c != NULL, CF_E_NOMEM);
    if (pthread_mutex_init(&c->pool_mu, NULL) != 0)
        goto fail0;
    if (pthread_cond_init(&c->pool_cv, NULL) != 0)
        goto fail1;
    if (pthread_mutex_init(&c->auth_mu, NULL) != 0)
        goto fail2;
    if (pthread_mutex_init(&c->cache_mu, NULL) != 0)
        goto fail3;
    *ret = c;
    return 0;
    /* Unwinding a partial initialisation in reverse order. */
fail3:
    pthread_mutex_destroy(&c->auth_mu);
fail2:
    pthread_cond_destroy(&c->pool_cv);
fail1:
    pthread_mutex_destroy(&c->pool_mu);
fail0:
    free(c);
    return CF_E_NOMEM;
}

int coffer_client_new(const coffer_client_options *o, coffer_client **ret)
{
    coffer_client *c = NULL;
    size_t kl;
    int rc = 0;

    cf_sdk_begin();
    CF_ENSURE_OUT(o != NULL && ret != NULL,
                  cf_sdk_fail(CF_E_INVAL, COFFER_E_INVALID, "options and ret are required"));
    CF_GUARD_OUT(check_url(o->gateway_url));
    CF_ENSURE_OUT(cf_sdk_id_ok(o->tenant_id, CF_ID_MAX_LEN),
                  cf_sdk_fail(CF_E_INVAL, COFFER_E_INVALID,
                              "option tenant_id is required (COFFER_TENANT_ID): 1-%d visible "
                              "characters",
                              CF_ID_MAX_LEN));
    CF_GUARD_OUT(check_api_key(o->api_key));
    CF_ENSURE_OUT(o->timeout_ms <= CF_SDK_MAX_TIMEOUT_MS,
                  cf_sdk_fail(CF_E_INVAL, COFFER_E_INVALID, "timeout_ms exceeds %u",
                              (unsigned)CF_SDK_MAX_TIMEOUT_MS));
    CF_ENSURE_OUT(o->max_retries <= CF_SDK_MAX_RETRIES,
                  cf_sdk_fail(CF_E_INVAL, COFFER_E_INVALID, "max_retries exceeds %d",
                              CF_SDK_MAX_RETRIES));

    CF_GUARD_OUT(client_alloc(&c));
    c->timeout_ms = o->timeout_ms;
    c->max_retries = o->max_retries == 0  ? CF_SDK_DEFAULT_RETRIES
                     : o->max_retries < 0 ? 0
                                          : o->max_retries;
    CF_GUARD_OUT(dup_str(o->gateway_url, CF_HTTP_MAX_URL, "gateway_url", &c->gateway_url));
    CF_GUARD_OUT(dup_str(o->tenant_id, CF_ID_MAX_LEN, "tenant_id", &c->tenant));
    CF_GUARD_OUT(dup_str(o->ca_path, CF_SDK_MAX_PATH, "ca_path", &c->ca_path));
    CF_GUARD_OUT(
        dup_str(o->client_key_path, CF_SDK_MAX_PATH, "client_key_path", &c->client_key_path));
    kl = strlen(o->api_key);
    c->api_key = cf_secure_alloc(kl + 1);
    CF_ENSURE_OUT(c->api_key != NULL, CF_E_NOMEM);
    memcpy(c->api_key, o->api_key, kl);

    CF_GUARD_OUT(load_manifest(c, o->manifest_path));
    CF_GUARD_OUT(load_jwks(c, o->attestation_jwks_path));
    CF_GUARD_OUT(load_release_key(c, o));

    for (size_t i = 0; i < CF_SDK_HTTP_POOL; i++) {
        cf_http_client_opts ho = {.base_url = c->gateway_url,
                                  .ca_file = c->ca_path,
                                  .timeout_ms = c->timeout_ms,
                                  /* The largest answer is a job's CFR1 response; JSON
                                   * answers are bounded again when parsed. */
                                  .max_response = CF_ENV_MAX_RESPONSE_BYTES};
        rc = cf_http_client_new(&ho, &c->pool[i]);
        if (rc < 0) {
            rc = cf_sdk_fail(rc, rc == CF_E_NOMEM ? COFFER_E_NOMEM : COFFER_E_INVALID,
                             "gateway connection: %s", cf_err_detail(rc));
            goto out;
        }
    }
    *ret = c;
    c = NULL;
out:
    coffer_client_free(c);
    return cf_sdk_finish(rc);
}

void coffer_client_free(coffer_client *c)
{
    if (c == NULL)
        return;
    for (size_t i = 0; i < CF_SDK_HTTP_POOL; i++)
        cf_http_client_free(c->pool[i]);
    cf_secure_free(c->api_key);
    cf_secure_free(c->token);
    cf_hpke_key_free(c->client_key);
    cf_hpke_key_free(c->release_key);
    cf_jwks_free(c->ear_jwks);
    cf_verifier_free(c->verifier);
    cf_manifest_free(c->manifest);
    free(c->gateway_url);
    free(c->tenant);
    free(c->ca_path);
    free(c->client_key_path);
    pthread_mutex_destroy(&c->cache_mu);
    pthread_mutex_destroy(&c->auth_mu);
    pthread_cond_destroy(&c->pool_cv);
    pthread_mutex_destroy(&c->pool_mu);
    cf_wipe(c, sizeof(*c));
    free(c);
}

int coffer_client_options_from_env(coffer_client_options *o)
{
    const char *v;
    uint64_t u;
    int64_t i;
    int rc = 0;

    cf_sdk_begin();
    CF_ENSURE_OUT(o != NULL, cf_sdk_fail(CF_E_INVAL, COFFER_E_INVALID, "options are required"));
    {
        const struct {
            const char *name;
            const char **field;
        } vars[] = {
            {"COFFER_GATEWAY_URL", &o->gateway_url},
            {"COFFER_TENANT_ID", &o->tenant_id},
            {"COFFER_API_KEY", &o->api_key},
            {"COFFER_MANIFEST", &o->manifest_path},
            {"COFFER_CA", &o->ca_path},
            {"COFFER_ATTESTATION_JWKS", &o->attestation_jwks_path},
            {"COFFER_KMS_RELEASE_KEY", &o->kms_release_key},
            {"COFFER_KMS_RELEASE_KEY_FILE", &o->kms_release_key_path},
            {"COFFER_CLIENT_KEY", &o->client_key_path},
        };
        for (size_t k = 0; k < CF_ARRAY_LEN(vars); k++) {
            v = getenv(vars[k].name);
            if (v != NULL && v[0] != 0)
                *vars[k].field = v;
        }
    }
    v = getenv("COFFER_TIMEOUT_MS");
    if (v != NULL && v[0] != 0) {
        CF_ENSURE_OUT(cf_parse_u64(v, CF_SDK_MAX_TIMEOUT_MS, &u) == 0,
                      cf_sdk_fail(CF_E_INVAL, COFFER_E_INVALID,
                                  "COFFER_TIMEOUT_MS must be milliseconds up to %u",
                                  (unsigned)CF_SDK_MAX_TIMEOUT_MS));
        o->timeout_ms = (unsigned)u;
    }
    v = getenv("COFFER_MAX_RETRIES");
    if (v != NULL && v[0] != 0) {
        CF_ENSURE_OUT(cf_parse_i64(v, -1, CF_SDK_MAX_RETRIES, &i) == 0,
                      cf_sdk_fail(CF_E_INVAL, COFFER_E_INVALID,
                                  "COFFER_MAX_RETRIES must be -1..%d", CF_SDK_MAX_RETRIES));
        o->max_retries = (int)i;
    }
out:
    return cf_sdk_finish(rc);
}

const char *coffer_version(void)
{
    return COFFER_VERSION;
}
