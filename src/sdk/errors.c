/*
 * Error state of the SDK (sdk.h "Error handling") and the mapping of service
 * answers to public error codes (DESIGN.md §6: errors are
 * {"error":{"code","message","request_id"}}).
 *
 * Everything is per thread, so that concurrent requests on one client each
 * keep their own message (include/coffer.h, coffer_client_last_error).
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "base/err.h"
#include "base/json.h"
#include "base/limits.h"
#include "sdk/sdk.h"

/* cf_err keeps this many bytes of a detail (base/err.c); a longer message of
 * ours still matches on its prefix. */
#define CF_DETAIL_CMP 200

typedef struct {
    /* The classification of the failure currently being returned. */
    int pending_cf;
    int pending_pub;
    char pending_msg[CF_SDK_MAX_ERROR];
    long pending_retry_after;
    char pending_check[CF_CHECK_VALUE_LEN];
    /* What coffer_client_last_* report. */
    int last_code;
    char last_msg[CF_SDK_MAX_ERROR];
    long last_retry_after;
    char last_check[CF_CHECK_VALUE_LEN];
} sdk_tls;

static _Thread_local sdk_tls tls = {.pending_retry_after = -1, .last_retry_after = -1};

static void copy_str(char *dst, size_t cap, const char *src)
{
    size_t n = strnlen(src, cap - 1);
    memcpy(dst, src, n);
    dst[n] = 0;
}

void cf_sdk_begin(void)
{
    tls.pending_cf = 0;
    tls.pending_pub = 0;
    tls.pending_msg[0] = 0;
    tls.pending_retry_after = -1;
    tls.pending_check[0] = 0;
    tls.last_code = 0;
    tls.last_msg[0] = 0;
    tls.last_retry_after = -1;
    tls.last_check[0] = 0;
    cf_err_clear();
}

int cf_sdk_fail(int cf_code, int pub, const char *fmt, ...)
{
    char tmp[CF_SDK_MAX_ERROR];
    va_list ap;

    va_start(ap, fmt);
    /* A diagnostic message may be truncated; it is never parsed. */
    (void)vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    memcpy(tls.pending_msg, tmp, sizeof(tmp));
    tls.pending_cf = cf_code;
    tls.pending_pub = pub;
    tls.pending_retry_after = -1;
    tls.pending_check[0] = 0;
    return cf_err_set(cf_code, "%s", tmp);
}

void cf_sdk_set_retry_after(long seconds) { tls.pending_retry_after = seconds; }

void cf_sdk_set_failed_check(const char *name)
{
    copy_str(tls.pending_check, sizeof(tls.pending_check), name);
}

/* Whether the pending classification describes the failure rc, i.e. nothing
 * has set another cf_err detail since cf_sdk_fail. */
static bool pending_matches(int rc)
{
    return tls.pending_cf == rc && rc < 0 &&
           strncmp(cf_err_detail(rc), tls.pending_msg, CF_DETAIL_CMP) == 0;
}

int cf_sdk_classify(int rc)
{
    if (rc >= 0)
        return COFFER_OK;
    if (pending_matches(rc))
        return tls.pending_pub;
    switch (rc) {
    case CF_E_NOMEM:
        return COFFER_E_NOMEM;
    case CF_E_INVAL:
        return COFFER_E_INVALID;
    case CF_E_CONFIG:
        return COFFER_E_CONFIG;
    case CF_E_TIMEOUT:
        return COFFER_E_TIMEOUT;
    case CF_E_UNAVAILABLE:
        return COFFER_E_UNAVAILABLE;
    case CF_E_HTTP:
        return COFFER_E_NETWORK;
    case CF_E_TOO_LARGE:
        return COFFER_E_TOO_LARGE;
    case CF_E_PARSE:
    case CF_E_TRUNCATED:
    case CF_E_TRAILING:
    case CF_E_RANGE:
    case CF_E_UNSUPPORTED:
        return COFFER_E_PROTOCOL;
    default:
        return COFFER_E_INTERNAL;
    }
}

int cf_sdk_finish(int rc)
{
    int pub;

    if (rc >= 0) {
        tls.last_code = 0;
        tls.last_msg[0] = 0;
        tls.last_retry_after = -1;
        tls.last_check[0] = 0;
        return COFFER_OK;
    }
    pub = cf_sdk_classify(rc);
    tls.last_code = pub;
    if (pending_matches(rc)) {
        memcpy(tls.last_msg, tls.pending_msg, sizeof(tls.last_msg));
        tls.last_retry_after = tls.pending_retry_after;
        memcpy(tls.last_check, tls.pending_check, sizeof(tls.last_check));
    } else {
        copy_str(tls.last_msg, sizeof(tls.last_msg), cf_err_detail(rc));
        tls.last_retry_after = -1;
        tls.last_check[0] = 0;
    }
    return pub;
}

int cf_sdk_transport_error(int rc, const char *step)
{
    const char *d = cf_err_detail(rc);

    switch (rc) {
    case CF_E_TIMEOUT:
        return cf_sdk_fail(rc, COFFER_E_TIMEOUT, "%s: the gateway did not answer in time (%s)",
                           step, d);
    case CF_E_UNAVAILABLE:
        return cf_sdk_fail(rc, COFFER_E_NETWORK, "%s: cannot reach the gateway (%s)", step, d);
    case CF_E_VERIFY:
        return cf_sdk_fail(rc, COFFER_E_NETWORK,
                           "%s: the gateway's TLS certificate is not trusted (%s); check ca_path "
                           "(COFFER_CA)",
                           step, d);
    case CF_E_TOO_LARGE:
        return cf_sdk_fail(rc, COFFER_E_TOO_LARGE, "%s: the gateway's answer is too large (%s)",
                           step, d);
    case CF_E_NOMEM:
        return rc;
    default:
        return cf_sdk_fail(rc, COFFER_E_NETWORK, "%s: HTTP request failed (%s)", step, d);
    }
}

/* Pulls code and message out of a JSON error body, if it is one. Both are
 * bounded and limited to printable ASCII so that they are safe to show. */
static void error_fields(const cf_http_response *r, char *code, size_t code_cap, char *msg,
                         size_t msg_cap)
{
    json_t *root = NULL, *err = NULL;
    const char *s;

    code[0] = msg[0] = 0;
    if (cf_json_parse_object(r->body.data, r->body.len, CF_HTTP_MAX_BODY, &root) < 0) {
        cf_err_clear();
        return;
    }
    err = json_object_get(root, "error");
    if (json_is_object(err)) {
        s = json_string_value(json_object_get(err, "code"));
        if (s != NULL)
            copy_str(code, code_cap, s);
        s = json_string_value(json_object_get(err, "message"));
        if (s != NULL)
            copy_str(msg, msg_cap, s);
    }
    json_decref(root);
    for (char *p = code; *p; p++)
        if (*p < 0x20 || *p > 0x7e)
            *p = '?';
    for (char *p = msg; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = ' ';
}

static bool code_is(const char *code, const char *a)
{
    return strcasecmp(code, a) == 0;
}

int cf_sdk_http_error(const cf_http_response *r, const char *step)
{
    char code[CF_SDK_MAX_ERROR_CODE + 1], msg[CF_SDK_MAX_SERVICE_MESSAGE + 1], what[CF_SDK_MAX_ERROR];
    long st = r->status;
    bool tee_state;
    uint64_t ra;
    int rc;

    error_fields(r, code, sizeof(code), msg, sizeof(msg));
    /* "HTTP 409 quarantined: TEE tee_1 is quarantined" */
    (void)snprintf(what, sizeof(what), "HTTP %ld%s%s%s%s", st, code[0] ? " " : "", code,
                   msg[0] ? ": " : "", msg);
    tee_state = code_is(code, "quarantined") || code_is(code, "revoked") ||
                code_is(code, "tee_quarantined") || code_is(code, "tee_revoked");

    if (st == 401)
        return cf_sdk_fail(CF_E_UNAUTHENTICATED, COFFER_E_AUTH, "%s: access denied (%s)", step,
                           what);
    if (code_is(code, "key_expired") || code_is(code, "otk_expired") ||
        (code_is(code, "expired") && st != 401))
        return cf_sdk_fail(CF_E_EXPIRED, COFFER_E_KEY_EXPIRED, "%s: key expired (%s)", step, what);
    /* 409 for a TEE the registry no longer lists as active (KMS: "TEE not active
     * or its attestation stale"), 410 for one that is gone, and a 403 that names
     * a quarantine or revocation: the TEE is not to be used any more. */
    if (st == 410 || (st == 409 && (tee_state || code_is(code, "conflict"))) ||
        (st == 403 && tee_state))
        return cf_sdk_fail(CF_E_REVOKED, COFFER_E_TEE_REVOKED,
                           "%s: the TEE is quarantined or revoked (%s)", step, what);
    if (st == 403)
        return cf_sdk_fail(CF_E_FORBIDDEN, COFFER_E_FORBIDDEN, "%s: not allowed (%s)", step, what);
    if (st == 429) {
        if (cf_http_response_retry_after(r, &ra) == 0) {
            rc = cf_sdk_fail(CF_E_RATE_LIMITED, COFFER_E_RATE_LIMITED,
                             "%s: rate limited (%s); retry after %llu s", step, what,
                             (unsigned long long)ra);
            cf_sdk_set_retry_after((long)ra);
            return rc;
        }
        return cf_sdk_fail(CF_E_RATE_LIMITED, COFFER_E_RATE_LIMITED, "%s: rate limited (%s)", step,
                           what);
    }
    if (st == 502 || st == 503 || st == 504)
        return cf_sdk_fail(CF_E_UNAVAILABLE, COFFER_E_UNAVAILABLE,
                           "%s: the platform is unavailable (%s)", step, what);
    if (st == 404)
        return cf_sdk_fail(CF_E_NOT_FOUND, COFFER_E_NOT_FOUND, "%s: not found (%s)", step, what);
    if (st == 413)
        return cf_sdk_fail(CF_E_TOO_LARGE, COFFER_E_TOO_LARGE, "%s: request too large (%s)", step,
                           what);
    return cf_sdk_fail(CF_E_PARSE, COFFER_E_PROTOCOL, "%s: unexpected answer (%s)", step, what);
}

/* ---- public ---- */

const char *coffer_client_last_error(const coffer_client *c)
{
    (void)c;
    return tls.last_msg;
}

int coffer_client_last_error_code(const coffer_client *c)
{
    (void)c;
    return tls.last_code;
}

long coffer_client_last_retry_after(const coffer_client *c)
{
    (void)c;
    return tls.last_code == COFFER_E_RATE_LIMITED ? tls.last_retry_after : -1;
}

const char *coffer_client_last_failed_check(const coffer_client *c)
{
    (void)c;
    return tls.last_code == COFFER_E_ATTESTATION ? tls.last_check : "";
}

static const struct {
    int code;
    const char *name;
    const char *text;
} errors[] = {
    {COFFER_OK, "COFFER_OK", "success"},
    {COFFER_E_INVALID, "COFFER_E_INVALID", "invalid argument or option"},
    {COFFER_E_CONFIG, "COFFER_E_CONFIG", "a configured file cannot be used"},
    {COFFER_E_NOMEM, "COFFER_E_NOMEM", "out of memory"},
    {COFFER_E_NETWORK, "COFFER_E_NETWORK", "cannot reach the gateway securely"},
    {COFFER_E_TIMEOUT, "COFFER_E_TIMEOUT", "the gateway did not answer in time"},
    {COFFER_E_AUTH, "COFFER_E_AUTH", "authentication failed"},
    {COFFER_E_FORBIDDEN, "COFFER_E_FORBIDDEN", "not allowed"},
    {COFFER_E_CLIENT_KEY, "COFFER_E_CLIENT_KEY", "client key problem"},
    {COFFER_E_ATTESTATION, "COFFER_E_ATTESTATION", "attestation failed"},
    {COFFER_E_TEE_REVOKED, "COFFER_E_TEE_REVOKED", "TEE quarantined or revoked"},
    {COFFER_E_KEY_EXPIRED, "COFFER_E_KEY_EXPIRED", "key expired"},
    {COFFER_E_RATE_LIMITED, "COFFER_E_RATE_LIMITED", "rate limited"},
    {COFFER_E_UNAVAILABLE, "COFFER_E_UNAVAILABLE", "the platform is unavailable"},
    {COFFER_E_INTEGRITY, "COFFER_E_INTEGRITY", "a sealed value failed authentication"},
    {COFFER_E_JOB_FAILED, "COFFER_E_JOB_FAILED", "the job failed"},
    {COFFER_E_NOT_FOUND, "COFFER_E_NOT_FOUND", "not found"},
    {COFFER_E_TOO_LARGE, "COFFER_E_TOO_LARGE", "too large"},
    {COFFER_E_PROTOCOL, "COFFER_E_PROTOCOL", "protocol violation by the platform"},
    {COFFER_E_INTERNAL, "COFFER_E_INTERNAL", "internal error"},
};

const char *coffer_strerror(int code)
{
    for (size_t i = 0; i < CF_ARRAY_LEN(errors); i++)
        if (errors[i].code == code)
            return errors[i].text;
    return "unknown error";
}

const char *coffer_error_name(int code)
{
    for (size_t i = 0; i < CF_ARRAY_LEN(errors); i++)
        if (errors[i].code == code)
            return errors[i].name;
    return "COFFER_E_UNKNOWN";
}
