#include "attestsvc/wire.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "attest/manifest.h"
#include "base/buf.h"
#include "base/err.h"
#include "base/json.h"
#include "base/parse.h"

static bool name_char(char c, bool first)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return true;
    return !first && (c == '.' || c == '_' || c == '-');
}

static bool token_valid(const char *s, size_t max)
{
    size_t n;

    if (s == NULL)
        return false;
    n = strnlen(s, max + 1);
    if (n == 0 || n > max)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!name_char(s[i], i == 0))
            return false;
    return true;
}

bool cf_attest_id_valid(const char *s) { return token_valid(s, CF_ID_MAX_LEN); }

bool cf_attest_name_valid(const char *s) { return token_valid(s, CF_NAME_MAX_LEN); }

bool cf_attest_endpoint_valid(const char *s)
{
    size_t n, scheme;

    if (s == NULL)
        return false;
    n = strnlen(s, CF_ATTESTSVC_MAX_ENDPOINT + 1);
    if (n > CF_ATTESTSVC_MAX_ENDPOINT)
        return false;
    if (strncmp(s, "http://", 7) == 0)
        scheme = 7;
    else if (strncmp(s, "https://", 8) == 0)
        scheme = 8;
    else
        return false;
    if (n == scheme || s[n - 1] == '/')
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>')
            return false;
    }
    return true;
}

/* Copies an optional/required string field with a validity predicate. */
static int get_token(const json_t *obj, const char *key, bool required, size_t max,
                     bool (*valid)(const char *), char *out, size_t out_size)
{
    const char *s = NULL;

    CF_GUARD(cf_json_get_str(obj, key, required, max, &s));
    if (s == NULL)
        return 0;
    if (valid != NULL && !valid(s))
        return cf_err_set(CF_E_PARSE, "field '%s' is not a valid name", key);
    return cf_fmt(out, out_size, "%s", s) == 0
               ? 0
               : cf_err_set(CF_E_TOO_LARGE, "field '%s' is too long", key);
}

/* base64url field decoded into out[0..max); *ret_len gets the size. */
static int get_b64(const json_t *obj, const char *key, bool required, uint8_t *out, size_t max,
                   size_t *ret_len)
{
    cf_buf b;
    int rc;

    cf_buf_init(&b, max);
    rc = cf_json_get_b64url(obj, key, required, max, &b);
    if (rc == 0 && b.len > 0) {
        memcpy(out, b.data, b.len);
        *ret_len = b.len;
    } else if (rc == 0 && json_object_get(obj, key) != NULL && !json_is_null(json_object_get(obj, key))) {
        rc = cf_err_set(CF_E_PARSE, "field '%s' must not be empty", key);
    }
    cf_buf_free(&b);
    return rc;
}

int cf_attest_evidence_from_json(const json_t *obj, cf_attest_evidence *ret)
{
    static const char *const keys[] = {"platform", "report", "cert", NULL};
    cf_attest_evidence *e = NULL;
    const char *platform = NULL;
    int rc;

    CF_ENSURE(json_is_object(obj), cf_err_set(CF_E_PARSE, "evidence must be an object"));
    CF_GUARD(cf_json_only_keys(obj, keys));
    CF_GUARD(cf_json_get_str(obj, "platform", true, CF_ATTESTSVC_MAX_PLATFORM_LEN, &platform));
    /* Only SEV-SNP is implemented (DESIGN.md §3); "tdx" is reserved. */
    CF_ENSURE(strcmp(platform, CF_PLATFORM_SEV_SNP) == 0,
              cf_err_set(CF_E_UNSUPPORTED, "evidence platform '%s' is not supported", platform));
    e = calloc(1, sizeof(*e));
    CF_ENSURE(e != NULL, CF_E_NOMEM);
    memcpy(e->platform, CF_PLATFORM_SEV_SNP, sizeof(CF_PLATFORM_SEV_SNP));
    CF_GUARD_OUT(get_b64(obj, "report", true, e->report, sizeof(e->report), &e->report_len));
    CF_GUARD_OUT(get_b64(obj, "cert", true, e->cert, sizeof(e->cert), &e->cert_len));
    memcpy(ret, e, sizeof(*e));
    rc = 0;
out:
    free(e);
    return rc;
}

json_t *cf_attest_evidence_to_json(const cf_attest_evidence *e)
{
    char *report = cf_b64url_encode_alloc(e->report, e->report_len);
    char *cert = cf_b64url_encode_alloc(e->cert, e->cert_len);
    json_t *o = NULL;

    if (report != NULL && cert != NULL)
        o = json_pack("{s:s,s:s,s:s}", "platform", e->platform, "report", report, "cert", cert);
    free(report);
    free(cert);
    return o;
}

int cf_attest_tee_request_build(const uint8_t nonce[CF_BINDING_NONCE_LEN], cf_buf *out)
{
    char hex[2 * CF_BINDING_NONCE_LEN + 1];

    cf_hex_encode(nonce, CF_BINDING_NONCE_LEN, hex);
    CF_GUARD(cf_buf_printf(out, "{\"nonce\":\"%s\"}", hex));
    return cf_buf_nul_terminate(out);
}

/* The TEE's X25519 key: base64url (the wire format) or, from the registry,
 * 64 hex digits; the lengths (43 vs 64 characters) cannot be confused. */
static int get_x25519(const json_t *obj, const char *key, bool required, uint8_t out[32],
                      bool allow_hex, bool *ret_present)
{
    const char *s = NULL;
    cf_buf b;
    int rc;

    CF_GUARD(cf_json_get_str(obj, key, required, 64, &s));
    if (s == NULL)
        return 0;
    if (allow_hex && strlen(s) == 64) {
        if (cf_hex_decode(s, out, 32) != 0)
            return cf_err_set(CF_E_PARSE, "field '%s' is not a 32-byte X25519 key", key);
        *ret_present = true;
        return 0;
    }
    cf_buf_init(&b, 32);
    rc = cf_b64url_decode(s, strlen(s), &b);
    if (rc == 0 && b.len == 32)
        memcpy(out, b.data, 32);
    else
        rc = cf_err_set(CF_E_PARSE, "field '%s' is not a 32-byte X25519 key in base64url", key);
    cf_buf_free(&b);
    if (rc == 0)
        *ret_present = true;
    return rc;
}

int cf_attest_tee_evidence_parse(const void *data, size_t len, cf_attest_tee_evidence *ret)
{
    json_t *o = NULL, *ev = NULL;
    cf_attest_tee_evidence *t = NULL;
    const char *bh = NULL;
    uint8_t digest[CF_BUNDLE_DIGEST_LEN];
    bool have_key = false;
    int rc;

    CF_GUARD(cf_json_parse_object(data, len, CF_ATTESTSVC_TEE_MAX_RESPONSE, &o));
    t = calloc(1, sizeof(*t));
    CF_ENSURE_OUT(t != NULL, CF_E_NOMEM);
    CF_GUARD_OUT(get_token(o, "tee_id", true, CF_ID_MAX_LEN, cf_attest_id_valid, t->tee_id,
                           sizeof(t->tee_id)));
    CF_GUARD_OUT(get_x25519(o, "public_key", true, t->public_key, false, &have_key));
    CF_GUARD_OUT(get_token(o, "deployment", true, CF_NAME_MAX_LEN, cf_attest_name_valid,
                           t->deployment, sizeof(t->deployment)));
    CF_GUARD_OUT(cf_json_get_str(o, "build_hash", true, CF_BUILD_HASH_STR_LEN, &bh));
    rc = cf_build_hash_parse(bh, digest);
    CF_ENSURE_OUT(rc == 0, cf_err_set(CF_E_PARSE, "field 'build_hash' must be sha256:<64 hex digits>"));
    cf_build_hash_format(digest, t->build_hash);
    CF_GUARD_OUT(cf_json_get_obj(o, "evidence", true, &ev));
    rc = cf_attest_evidence_from_json(ev, &t->evidence);
    CF_ENSURE_OUT(rc == 0, cf_err_set(rc, "evidence: %s", cf_err_detail(rc)));
    memcpy(ret, t, sizeof(*t));
    rc = 0;
out:
    free(t);
    json_decref(o);
    return rc;
}

void cf_attest_tee_list_free(cf_attest_tee_list *l)
{
    free(l->v);
    l->v = NULL;
    l->n = l->cap = 0;
}

/* RFC 3339 UTC "YYYY-MM-DDTHH:MM:SSZ" or a JSON integer; null/absent = 0. */
static int get_time(const json_t *obj, const char *key, int64_t *ret)
{
    const json_t *v = json_object_get(obj, key);
    const char *s, *end;
    struct tm tm;

    if (v == NULL || json_is_null(v))
        return 0;
    if (json_is_integer(v)) {
        json_int_t i = json_integer_value(v);
        CF_ENSURE(i >= 0 && i <= CF_JWT_MAX_TIME,
                  cf_err_set(CF_E_RANGE, "field '%s' is out of range", key));
        *ret = (int64_t)i;
        return 0;
    }
    CF_ENSURE(json_is_string(v) && json_string_length(v) <= 40,
              cf_err_set(CF_E_PARSE, "field '%s' must be a time", key));
    s = json_string_value(v);
    memset(&tm, 0, sizeof(tm));
    end = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
    if (end != NULL && *end == '.') /* fractional seconds are dropped */
        for (end++; *end >= '0' && *end <= '9'; end++)
            ;
    CF_ENSURE(end != NULL && strcmp(end, "Z") == 0,
              cf_err_set(CF_E_PARSE, "field '%s' must be RFC 3339 UTC or unix seconds", key));
    *ret = (int64_t)timegm(&tm);
    return 0;
}

static int parse_entry(const json_t *o, cf_attest_tee_entry *e)
{
    const char *ep = NULL;

    CF_ENSURE(json_is_object(o), cf_err_set(CF_E_PARSE, "entry must be an object"));
    memset(e, 0, sizeof(*e));
    CF_GUARD(get_token(o, "id", true, CF_ID_MAX_LEN, cf_attest_id_valid, e->id, sizeof(e->id)));
    CF_GUARD(get_token(o, "tenant", false, CF_ID_MAX_LEN, cf_attest_id_valid, e->tenant,
                       sizeof(e->tenant)));
    CF_GUARD(get_token(o, "deployment", true, CF_NAME_MAX_LEN, cf_attest_name_valid, e->deployment,
                       sizeof(e->deployment)));
    CF_GUARD(get_token(o, "platform", false, CF_ATTESTSVC_MAX_PLATFORM_LEN, cf_attest_name_valid, e->platform,
                       sizeof(e->platform)));
    CF_GUARD(get_token(o, "status", true, CF_ATTESTSVC_MAX_STATUS_LEN, cf_attest_name_valid,
                       e->status, sizeof(e->status)));
    CF_GUARD(get_x25519(o, "public_key", false, e->public_key, true, &e->has_public_key));
    /* null or "" = not recorded */
    if (json_object_get(o, "measurement") != NULL && !json_is_null(json_object_get(o, "measurement")) &&
        !(json_is_string(json_object_get(o, "measurement")) &&
          json_string_length(json_object_get(o, "measurement")) == 0)) {
        CF_GUARD(cf_json_get_hex(o, "measurement", true, e->measurement, CF_MEASUREMENT_LEN));
        e->has_measurement = true;
    }
    CF_GUARD(get_time(o, "last_attested_at", &e->last_attested_at));
    CF_GUARD(cf_json_get_str(o, "endpoint", false, CF_ATTESTSVC_MAX_ENDPOINT, &ep));
    if (ep != NULL && ep[0] != '\0') {
        CF_ENSURE(cf_attest_endpoint_valid(ep),
                  cf_err_set(CF_E_PARSE, "field 'endpoint' is not an http(s) base URL"));
        memcpy(e->endpoint, ep, strlen(ep) + 1);
    }
    return 0;
}

int cf_attest_registry_parse_page(const void *data, size_t len, cf_attest_tee_list *l,
                                  char *ret_next, size_t next_size)
{
    json_t *root = NULL, *arr = NULL;
    const char *next = NULL;
    size_t before = l->n, count;
    int rc;

    CF_ENSURE(next_size > CF_ATTESTSVC_MAX_CURSOR, CF_E_INVAL);
    CF_GUARD(cf_json_parse(data, len, CF_ATTESTSVC_REGISTRY_MAX_BYTES, &root));
    if (json_is_array(root)) {
        arr = root;
    } else if (json_is_object(root)) {
        CF_GUARD_OUT(cf_json_get_array(root, "tees", true, CF_ATTESTSVC_MAX_TEES, &arr));
        CF_GUARD_OUT(cf_json_get_str(root, "next", false, CF_ATTESTSVC_MAX_CURSOR, &next));
    } else {
        CF_GUARD_OUT(cf_err_set(CF_E_PARSE, "registry listing must be an object or an array"));
    }
    count = json_array_size(arr);
    CF_ENSURE_OUT(count <= CF_ATTESTSVC_MAX_TEES - l->n,
                  cf_err_set(CF_E_TOO_LARGE, "registry lists more than %u TEEs", CF_ATTESTSVC_MAX_TEES));
    if (l->n + count > l->cap) {
        size_t cap = l->n + count;
        cf_attest_tee_entry *v = realloc(l->v, cap * sizeof(*v));
        CF_ENSURE_OUT(v != NULL, CF_E_NOMEM);
        l->v = v;
        l->cap = cap;
    }
    for (size_t i = 0; i < count; i++) {
        cf_attest_tee_entry *e = &l->v[l->n];
        rc = parse_entry(json_array_get(arr, i), e);
        CF_ENSURE_OUT(rc == 0, cf_err_set(rc, "tees[%zu]: %s", i, cf_err_detail(rc)));
        for (size_t j = 0; j < l->n; j++)
            CF_ENSURE_OUT(strcmp(l->v[j].id, e->id) != 0,
                          cf_err_set(CF_E_PARSE, "tees[%zu]: duplicate id '%s'", i, e->id));
        l->n++;
    }
    if (next != NULL && next[0] != '\0') {
        for (const char *p = next; *p; p++)
            CF_ENSURE_OUT((unsigned char)*p >= 0x20 && (unsigned char)*p < 0x7f,
                          cf_err_set(CF_E_PARSE, "field 'next' holds a control or non-ASCII character"));
        memcpy(ret_next, next, strlen(next) + 1);
    } else {
        ret_next[0] = '\0';
    }
    rc = 0;
out:
    if (rc != 0)
        l->n = before;
    json_decref(root);
    return rc;
}

int cf_attest_kms_nonce_parse(const void *data, size_t len, uint8_t ret_nonce[CF_BINDING_NONCE_LEN])
{
    json_t *o = NULL;
    uint8_t nonce[CF_BINDING_NONCE_LEN];
    int64_t exp = 0;
    int rc;

    CF_GUARD(cf_json_parse_object(data, len, CF_ATTESTSVC_KMS_MAX_RESPONSE, &o));
    CF_GUARD_OUT(cf_json_get_hex(o, "nonce", true, nonce, sizeof(nonce)));
    CF_GUARD_OUT(get_time(o, "expires_at", &exp));
    memcpy(ret_nonce, nonce, sizeof(nonce));
    rc = 0;
out:
    json_decref(o);
    return rc;
}

int cf_attest_kms_report_build(const uint8_t nonce[CF_BINDING_NONCE_LEN], const cf_attest_evidence *e,
                               cf_buf *out)
{
    char hex[2 * CF_BINDING_NONCE_LEN + 1];
    json_t *o = NULL, *ev = cf_attest_evidence_to_json(e);
    char *s = NULL;
    int rc = CF_E_NOMEM;

    cf_hex_encode(nonce, CF_BINDING_NONCE_LEN, hex);
    if (ev != NULL)
        o = json_pack("{s:s,s:O}", "nonce", hex, "evidence", ev);
    if (o != NULL)
        s = cf_json_dump(o);
    if (s != NULL) {
        rc = cf_buf_put_str(out, s);
        if (rc == 0)
            rc = cf_buf_nul_terminate(out);
    }
    free(s);
    json_decref(o);
    json_decref(ev);
    return rc;
}

int cf_attest_verify_request_parse(const void *data, size_t len, cf_attest_verify_request *ret)
{
    static const char *const keys[] = {"deployment_id", "nonce", NULL};
    cf_attest_verify_request r;
    json_t *o = NULL;
    int rc;

    memset(&r, 0, sizeof(r));
    CF_GUARD(cf_json_parse_object(data, len, CF_ATTESTSVC_MAX_BODY, &o));
    CF_GUARD_OUT(cf_json_only_keys(o, keys));
    CF_GUARD_OUT(get_token(o, "deployment_id", true, CF_NAME_MAX_LEN, cf_attest_name_valid,
                           r.deployment, sizeof(r.deployment)));
    if (json_object_get(o, "nonce") != NULL) {
        CF_GUARD_OUT(cf_json_get_hex(o, "nonce", true, r.nonce, sizeof(r.nonce)));
        r.has_nonce = true;
    }
    *ret = r;
    rc = 0;
out:
    json_decref(o);
    return rc;
}

int cf_attest_evidence_request_parse(const void *data, size_t len, cf_attest_evidence_request *ret)
{
    static const char *const keys[] = {"evidence", "deployment", "tenant", "nonce", "public_key", NULL};
    cf_attest_evidence_request *r = NULL;
    json_t *o = NULL, *ev = NULL;
    int rc;

    CF_GUARD(cf_json_parse_object(data, len, CF_ATTESTSVC_MAX_BODY, &o));
    r = calloc(1, sizeof(*r));
    CF_ENSURE_OUT(r != NULL, CF_E_NOMEM);
    CF_GUARD_OUT(cf_json_only_keys(o, keys));
    CF_GUARD_OUT(cf_json_get_obj(o, "evidence", true, &ev));
    rc = cf_attest_evidence_from_json(ev, &r->evidence);
    CF_ENSURE_OUT(rc == 0, cf_err_set(rc, "evidence: %s", cf_err_detail(rc)));
    CF_GUARD_OUT(get_token(o, "deployment", false, CF_NAME_MAX_LEN, cf_attest_name_valid,
                           r->deployment, sizeof(r->deployment)));
    CF_GUARD_OUT(get_token(o, "tenant", false, CF_ID_MAX_LEN, cf_attest_id_valid, r->tenant,
                           sizeof(r->tenant)));
    if (json_object_get(o, "nonce") != NULL) {
        CF_GUARD_OUT(cf_json_get_hex(o, "nonce", true, r->nonce, sizeof(r->nonce)));
        r->has_nonce = true;
    }
    CF_GUARD_OUT(get_b64(o, "public_key", false, r->public_key, sizeof(r->public_key),
                         &r->public_key_len));
    CF_ENSURE_OUT(r->has_nonce == (r->public_key_len > 0),
                  cf_err_set(CF_E_PARSE, "'nonce' and 'public_key' go together (the binding needs both)"));
    memcpy(ret, r, sizeof(*r));
    rc = 0;
out:
    free(r);
    json_decref(o);
    return rc;
}
