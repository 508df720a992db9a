/*
 * libcoffer — the Coffer client SDK (docs/SDK.md).
 *
 * An application hands data to a job that runs inside a Trusted Execution
 * Environment (TEE). For every request the SDK does the whole client side of
 * the Coffer request flow (DESIGN.md §5) itself, trusting neither the gateway
 * nor any other service's word about the TEE:
 *
 *   1. exchanges the API key for a short-lived access token;
 *   2. on first use generates the client's X25519 key, stores it in a file only
 *      the user can read (0600) and registers its public half;
 *   3. opens a session with its own random nonce and verifies the TEE's hardware
 *      evidence against the client's own manifest, and the attestation
 *      service's signed result against the pinned JWKS;
 *   4. obtains a one-time key sealed by the pinned KMS release key;
 *   5. encrypts the data twice (to the attested TEE key, then with the one-time
 *      key), sends it, and decrypts and authenticates the answer.
 *
 * Minimal use:
 *
 *   coffer_client_options o = {.gateway_url = "https://gw.example:8443",
 *                              .tenant_id = "acme", .api_key = key,
 *                              .manifest_path = "manifest.json",
 *                              .attestation_jwks_path = "attestation-jwks.json",
 *                              .kms_release_key = "base64url..."};
 *   coffer_client *c = NULL;
 *   if (coffer_client_new(&o, &c) != 0)
 *       fprintf(stderr, "%s\n", coffer_client_last_error(NULL));
 *   coffer_result *r = NULL;
 *   if (coffer_request(c, "sha256", data, len, &r) != 0)
 *       fprintf(stderr, "%s\n", coffer_client_last_error(c));
 *   else
 *       use(coffer_result_data(r), coffer_result_size(r));
 *   coffer_result_free(r);
 *   coffer_client_free(c);
 *
 * Conventions: functions that can fail return 0 (COFFER_OK) or a negative
 * coffer_error. Output parameters are written only on success (one documented
 * exception: COFFER_E_JOB_FAILED). Strings and pointers returned by the library
 * are owned by it unless stated otherwise.
 *
 * Threads: a coffer_client may be used by several threads at once (see
 * coffer_request). Error messages are kept per thread.
 *
 * This header is the whole public API; it includes only standard headers.
 * Only coffer_* symbols are exported by libcoffer.so.
 */
#ifndef COFFER_H
#define COFFER_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__) || defined(__clang__)
#define COFFER_API __attribute__((visibility("default")))
#else
#define COFFER_API
#endif

#define COFFER_VERSION_MAJOR 0
#define COFFER_VERSION_MINOR 1
#define COFFER_VERSION_PATCH 0

/* Error codes. Every failure also leaves a message for the calling thread
 * (coffer_client_last_error) that says exactly what went wrong. */
typedef enum coffer_error {
    COFFER_OK = 0,
    COFFER_E_INVALID = -1,      /* bad argument or option (message names it) */
    COFFER_E_CONFIG = -2,       /* a configured file (manifest, JWKS, release key, CA)
                                   cannot be read or is invalid */
    COFFER_E_NOMEM = -3,        /* out of memory */
    COFFER_E_NETWORK = -4,      /* the gateway cannot be reached, or its TLS certificate
                                   is not trusted */
    COFFER_E_TIMEOUT = -5,      /* a call to the gateway timed out */
    COFFER_E_AUTH = -6,         /* API key or access token rejected (HTTP 401, after
                                   fetching a new token once) */
    COFFER_E_FORBIDDEN = -7,    /* authenticated but not allowed (HTTP 403) */
    COFFER_E_CLIENT_KEY = -8,   /* the client key file cannot be used, or does not match
                                   the key registered for this principal */
    COFFER_E_ATTESTATION = -9,  /* the TEE's evidence or the attestation result did not
                                   verify; the message names the failed check */
    COFFER_E_TEE_REVOKED = -10, /* the TEE was quarantined or revoked (also after
                                   retrying on another TEE) */
    COFFER_E_KEY_EXPIRED = -11, /* a key the request needs (one-time key) expired */
    COFFER_E_RATE_LIMITED = -12,/* too many requests (HTTP 429); see
                                   coffer_client_last_retry_after */
    COFFER_E_UNAVAILABLE = -13, /* the platform cannot serve the request now (502/503/504) */
    COFFER_E_INTEGRITY = -14,   /* a sealed value failed authentication: a one-time key
                                   not sealed by the pinned KMS release key, or a
                                   response altered on the way */
    COFFER_E_JOB_FAILED = -15,  /* the job ran and reported a failure status
                                   (coffer_result_status) */
    COFFER_E_NOT_FOUND = -16,   /* the platform does not know the job (HTTP 404) */
    COFFER_E_TOO_LARGE = -17,   /* data or answer larger than the platform accepts */
    COFFER_E_PROTOCOL = -18,    /* the gateway answered something the protocol does not
                                   allow (malformed answer, unexpected status) */
    COFFER_E_INTERNAL = -19,    /* unexpected internal failure (e.g. the crypto library) */
} coffer_error;

/* Job status codes (coffer_result_status), set by the TEE runtime. */
enum {
    COFFER_JOB_OK = 0,
    COFFER_JOB_FAILED = 1,          /* the job exited with an error */
    COFFER_JOB_TIMEOUT = 2,         /* the job ran out of time */
    COFFER_JOB_OUTPUT_TOO_LARGE = 3,/* the job's output exceeded its cap */
    COFFER_JOB_RESOURCE_LIMIT = 4,  /* a resource limit or the sandbox stopped the job */
};

typedef struct coffer_client coffer_client;
typedef struct coffer_result coffer_result;

/*
 * Client options. Strings are borrowed for the duration of coffer_client_new
 * only (the client keeps copies). Unset (NULL / 0) fields take the default.
 */
typedef struct coffer_client_options {
    /* Required. */
    const char *gateway_url;   /* "https://host:port"; plain http:// is accepted only for
                                  loopback addresses (127.0.0.1, ::1, localhost) */
    const char *tenant_id;     /* the tenant the API key belongs to */
    const char *api_key;       /* secret: never logged, kept in locked memory */
    const char *manifest_path; /* the client's own manifest (policy): evidence is verified
                                  against it, and its hash must be the one the attestation
                                  service runs with */
    const char *attestation_jwks_path; /* pinned JWK Set of the attestation service (ES256) */
    /* The pinned KMS release key (X25519): exactly one of the two. */
    const char *kms_release_key;       /* base64url of the 32-byte public key */
    const char *kms_release_key_path;  /* file with the base64url key or a PEM public key */

    /* Optional. */
    const char *ca_path;         /* PEM CA(s) trusted for the gateway's TLS certificate;
                                    NULL = the system trust store */
    const char *client_key_path; /* client private key file; default
                                    $XDG_CONFIG_HOME/coffer/client-<tenant>-<principal>.key
                                    (or ~/.config/coffer/...); created on first use with
                                    mode 0600 in a 0700 directory */
    unsigned timeout_ms;         /* per HTTP call; 0 = 30000 */
    int max_retries;             /* retries on another TEE when the TEE used is quarantined
                                    or revoked: 0 = default (1), negative = never, at most 5 */
} coffer_client_options;

/*
 * Fills o from the environment: COFFER_GATEWAY_URL, COFFER_TENANT_ID,
 * COFFER_API_KEY, COFFER_MANIFEST, COFFER_CA, COFFER_ATTESTATION_JWKS,
 * COFFER_KMS_RELEASE_KEY, COFFER_KMS_RELEASE_KEY_FILE, COFFER_CLIENT_KEY,
 * COFFER_TIMEOUT_MS, COFFER_MAX_RETRIES. Variables that are not set leave their
 * field untouched, so defaults or flags may be applied before or after. The
 * strings point into the environment (valid until it changes). Returns
 * COFFER_E_INVALID if COFFER_TIMEOUT_MS or COFFER_MAX_RETRIES is not a number.
 */
COFFER_API int coffer_client_options_from_env(coffer_client_options *o);

/*
 * Creates a client: checks the options, loads and checks the manifest, the
 * pinned JWKS and the release key. No network traffic happens yet: the token,
 * the client key and the sessions are set up by the first coffer_request.
 * *ret is set only on success; free it with coffer_client_free.
 */
COFFER_API int coffer_client_new(const coffer_client_options *o, coffer_client **ret);
/* Wipes the client's secrets (API key, tokens, keys) and frees it. NULL is
 * accepted. No coffer_request may be running on it. */
COFFER_API void coffer_client_free(coffer_client *c);

/*
 * Message of the last failure of a coffer_* call made by the CALLING THREAD
 * (thread-local: concurrent requests on one client do not overwrite each
 * other's message), e.g. "attestation failed: debug: policy has DEBUG set:
 * debugging is not allowed (TEE tee_1, deployment demo)". c may be NULL (for
 * a failed coffer_client_new) and is otherwise not consulted. Never NULL; ""
 * if the thread's last fallible call (coffer_client_options_from_env,
 * coffer_client_new, coffer_request) succeeded. Valid until the thread's next
 * such call.
 */
COFFER_API const char *coffer_client_last_error(const coffer_client *c);
/* The coffer_error of that failure (COFFER_OK if none). */
COFFER_API int coffer_client_last_error_code(const coffer_client *c);
/* For COFFER_E_RATE_LIMITED: the seconds the service asked to wait
 * (Retry-After), or -1 if it named none or the last failure was another one. */
COFFER_API long coffer_client_last_retry_after(const coffer_client *c);
/* For COFFER_E_ATTESTATION: the name of the first failed check ("debug",
 * "measurement", "chain", "ear_signature", "ear_manifest_hash", ...), else "". */
COFFER_API const char *coffer_client_last_failed_check(const coffer_client *c);

/*
 * Runs `job` on `len` bytes of `data` (at most 8 MiB; data may be NULL if len
 * is 0) in a verified TEE and returns the TEE's answer in *ret.
 *
 * Thread-safe: several threads may call coffer_request on one client at the
 * same time; the access token, the client key and the verified TEEs are shared
 * (under a lock), and the calls use separate HTTP connections from a small
 * pool, so they run in parallel.
 *
 * A TEE whose evidence verified is reused for the same job until its
 * attestation result expires (or the access token does, whichever is first).
 * If the TEE turns out to be quarantined or revoked, the request is retried
 * with a new session on another TEE (options.max_retries). An access token
 * that the platform rejects (401) is replaced once.
 *
 * Returns 0 and a result whose status is COFFER_JOB_OK on success. If the job
 * ran but failed, returns COFFER_E_JOB_FAILED AND sets *ret to a result
 * carrying the status and whatever output the job produced. On every other
 * error *ret is left untouched.
 */
COFFER_API int coffer_request(coffer_client *c, const char *job, const void *data, size_t len,
                              coffer_result **ret);

/* The output. Borrowed from r; valid until coffer_result_free. The memory is
 * locked and wiped when the result is freed. Never NULL (an empty output gives
 * a pointer to zero bytes). */
COFFER_API const uint8_t *coffer_result_data(const coffer_result *r);
COFFER_API size_t coffer_result_size(const coffer_result *r);
/* The job's status (COFFER_JOB_*); 0 = ok; -1 for NULL. */
COFFER_API int coffer_result_status(const coffer_result *r);
/* The id of the TEE that ran the job (borrowed from r). */
COFFER_API const char *coffer_result_tee_id(const coffer_result *r);
/* The request id (also in the service logs and the audit log; borrowed from r). */
COFFER_API const char *coffer_result_request_id(const coffer_result *r);
/* Wipes the output and frees. NULL is accepted. */
COFFER_API void coffer_result_free(coffer_result *r);

/* A sentence for an error code, e.g. "attestation failed". Never NULL. */
COFFER_API const char *coffer_strerror(int code);
/* The code's name, e.g. "COFFER_E_ATTESTATION". Never NULL. */
COFFER_API const char *coffer_error_name(int code);
/* "0.1.0" */
COFFER_API const char *coffer_version(void);

#ifdef __cplusplus
}
#endif

#endif
