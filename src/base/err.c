#include "base/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

struct err_info {
    const char *name;
    const char *msg;
    int http;
};

/* Indexed by -code. */
static const struct err_info err_table[] = {
    [0] = {"ok", "success", 200},
    [-CF_E_NOMEM] = {"out_of_memory", "out of memory", 503},
    [-CF_E_INVAL] = {"invalid_argument", "invalid argument", 400},
    [-CF_E_PARSE] = {"malformed", "malformed input", 400},
    [-CF_E_TOO_LARGE] = {"too_large", "input exceeds a size limit", 413},
    [-CF_E_TRUNCATED] = {"truncated", "input ended early", 400},
    [-CF_E_TRAILING] = {"trailing_data", "unexpected data after the end of input", 400},
    [-CF_E_RANGE] = {"out_of_range", "value out of range", 400},
    [-CF_E_CRYPTO] = {"crypto_error", "cryptographic operation failed", 500},
    [-CF_E_DECRYPT] = {"decrypt_failed", "authentication tag did not verify", 400},
    [-CF_E_SIGNATURE] = {"bad_signature", "signature did not verify", 400},
    [-CF_E_UNSUPPORTED] = {"unsupported", "not supported", 400},
    [-CF_E_IO] = {"io_error", "input/output error", 500},
    [-CF_E_NOT_FOUND] = {"not_found", "not found", 404},
    [-CF_E_EXISTS] = {"already_exists", "already exists", 409},
    [-CF_E_EXPIRED] = {"expired", "expired", 401},
    [-CF_E_NOT_YET_VALID] = {"not_yet_valid", "not yet valid", 401},
    [-CF_E_UNAUTHENTICATED] = {"unauthenticated", "missing or invalid credentials", 401},
    [-CF_E_FORBIDDEN] = {"forbidden", "operation not permitted", 403},
    [-CF_E_CONFLICT] = {"conflict", "state does not allow this operation", 409},
    [-CF_E_STORE] = {"store_error", "storage failure", 500},
    [-CF_E_HTTP] = {"http_error", "HTTP transport failure", 502},
    [-CF_E_HSM] = {"hsm_error", "HSM operation failed", 503},
    [-CF_E_OVERFLOW] = {"overflow", "counter exhausted", 400},
    [-CF_E_TIMEOUT] = {"timeout", "operation timed out", 504},
    [-CF_E_UNAVAILABLE] = {"unavailable", "a required service is unavailable", 503},
    [-CF_E_VERIFY] = {"verification_failed", "verification failed", 403},
    [-CF_E_REVOKED] = {"revoked", "revoked", 403},
    [-CF_E_RATE_LIMITED] = {"rate_limited", "rate limit exceeded", 429},
    [-CF_E_CONFIG] = {"config_error", "invalid configuration", 500},
    [-CF_E_INTERNAL] = {"internal_error", "internal error", 500},
};

static const struct err_info *lookup(int err)
{
    if (err > 0 || err <= CF_E__LAST)
        return &err_table[-CF_E_INTERNAL];
    return &err_table[-err];
}

const char *cf_err_name(int err) { return lookup(err)->name; }
const char *cf_err_str(int err) { return lookup(err)->msg; }
int cf_err_http_status(int err) { return lookup(err)->http; }

static _Thread_local int last_code;
static _Thread_local char last_detail[256];

int cf_err_set(int err, const char *fmt, ...)
{
    va_list ap;

    char tmp[sizeof(last_detail)];

    /* Format into a temporary: callers may wrap the previous detail
     * (cf_err_set(e, "x: %s", cf_err_detail(e))), which lives in last_detail. */
    va_start(ap, fmt);
    /* Truncation is acceptable for a diagnostic message. */
    (void)vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    memcpy(last_detail, tmp, sizeof(tmp));
    last_code = err;
    return err;
}

const char *cf_err_detail(int err)
{
    if (last_code == err && err != 0 && last_detail[0] != '\0')
        return last_detail;
    return cf_err_str(err);
}

void cf_err_clear(void)
{
    last_code = 0;
    last_detail[0] = '\0';
}
