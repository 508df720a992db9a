/*
 * Error codes. Every fallible function returns 0 on success or a negative
 * cf_err code, and is marked CF_WUR. A human-readable detail for the last
 * failure on this thread can be attached with cf_err_set() and read with
 * cf_err_detail(); it must never contain secrets (it may reach a client).
 */
#ifndef COFFER_BASE_ERR_H
#define COFFER_BASE_ERR_H

#include "base/compiler.h"

typedef enum {
    CF_OK = 0,
    CF_E_NOMEM = -1,          /* allocation failed */
    CF_E_INVAL = -2,          /* invalid argument (caller bug or bad request field) */
    CF_E_PARSE = -3,          /* malformed input */
    CF_E_TOO_LARGE = -4,      /* input exceeds a limit */
    CF_E_TRUNCATED = -5,      /* input ended early */
    CF_E_TRAILING = -6,       /* unexpected bytes after the end */
    CF_E_RANGE = -7,          /* number out of range */
    CF_E_CRYPTO = -8,         /* crypto library failure */
    CF_E_DECRYPT = -9,        /* authentication tag did not verify */
    CF_E_SIGNATURE = -10,     /* signature did not verify */
    CF_E_UNSUPPORTED = -11,   /* algorithm, version or feature not supported */
    CF_E_IO = -12,            /* file or socket error */
    CF_E_NOT_FOUND = -13,
    CF_E_EXISTS = -14,
    CF_E_EXPIRED = -15,
    CF_E_NOT_YET_VALID = -16,
    CF_E_UNAUTHENTICATED = -17, /* missing or bad credentials */
    CF_E_FORBIDDEN = -18,     /* authenticated but not allowed */
    CF_E_CONFLICT = -19,      /* state does not allow the operation */
    CF_E_STORE = -20,         /* storage failure */
    CF_E_HTTP = -21,          /* HTTP transport failure */
    CF_E_HSM = -22,           /* PKCS#11 failure */
    CF_E_OVERFLOW = -23,      /* counter exhausted (e.g. HPKE sequence) */
    CF_E_TIMEOUT = -24,
    CF_E_UNAVAILABLE = -25,   /* a dependency needed for a check is unreachable */
    CF_E_VERIFY = -26,        /* attestation or policy verification failed */
    CF_E_REVOKED = -27,
    CF_E_RATE_LIMITED = -28,
    CF_E_CONFIG = -29,        /* configuration is missing or invalid */
    CF_E_INTERNAL = -30,
    CF_E__LAST = -31
} cf_err;

/* Short stable identifier, e.g. "parse_error". Never NULL. */
const char *cf_err_name(int err);
/* Generic sentence for the code, e.g. "malformed input". Never NULL. */
const char *cf_err_str(int err);
/* HTTP status that a service answers with for this code. */
int cf_err_http_status(int err);

/* Record a detail message for this thread and return err (for `return cf_err_set(...)`). */
int cf_err_set(int err, const char *fmt, ...) CF_PRINTF(2, 3);
/* Detail of the last cf_err_set on this thread, or cf_err_str(code) if none matches. */
const char *cf_err_detail(int err);
void cf_err_clear(void);

/* Guard macros: keep the success path straight (s2n POSIX_GUARD style). */
#define CF_GUARD(expr)                                                                   \
    do {                                                                                 \
        int cf_guard_rc_ = (expr);                                                       \
        if (cf_guard_rc_ < 0)                                                            \
            return cf_guard_rc_;                                                         \
    } while (0)

#define CF_ENSURE(cond, err)                                                             \
    do {                                                                                 \
        if (!(cond))                                                                     \
            return (err);                                                                \
    } while (0)

/* For functions with a single `out:` cleanup label and an `int rc` variable. */
#define CF_GUARD_OUT(expr)                                                               \
    do {                                                                                 \
        rc = (expr);                                                                     \
        if (rc < 0)                                                                      \
            goto out;                                                                    \
    } while (0)

#define CF_ENSURE_OUT(cond, err)                                                         \
    do {                                                                                 \
        if (!(cond)) {                                                                   \
            rc = (err);                                                                  \
            goto out;                                                                    \
        }                                                                                \
    } while (0)

#endif
