/*
 * Internals of libcoffer, the client SDK (include/coffer.h, docs/SDK.md).
 * Nothing here is part of the public API; only coffer_* symbols leave the
 * shared library (src/sdk/coffer.map).
 *
 * One file per step of the request flow (DESIGN.md §5):
 *   errors.c   thread-local error state, HTTP error mapping, coffer_strerror
 *   client.c   options, coffer_client_new/free, the HTTP connection pool
 *   auth.c     step 1 (access token) and the client key (file, registration)
 *   session.c  step 2 (session, evidence + EAR verification, verified-TEE cache)
 *   otk.c      step 3 (one-time key)
 *   request.c  steps 4, 5, 8 (envelope, send, response) and the retry policy
 *
 * Error handling: internal functions return 0 or a negative cf_err code like
 * the rest of the code base. Where the public code is not implied by the
 * cf_err code, the failure is classified with cf_sdk_fail(), which records the
 * coffer_error and the message for the calling thread; cf_sdk_finish() turns
 * the cf_err code returned at the API boundary into the public code.
 *
 * Locking (struct coffer_client): pool_mu guards the HTTP pool and is held only
 * to take or return a connection; auth_mu guards the token and the client key
 * and is held across a token fetch (so exactly one thread fetches while the
 * others wait for its result), during which pool_mu is taken — the only
 * nesting, always in that order; cache_mu guards the verified-TEE cache and is
 * taken alone, never across network I/O.
 */
#ifndef COFFER_SDK_SDK_H
#define COFFER_SDK_SDK_H

#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "attest/binding.h"
#include "attest/manifest.h"
#include "attest/verify.h"
#include "base/compiler.h"
#include "base/limits.h"
#include "coffer.h"
#include "crypto/hpke.h"
#include "crypto/jose.h"
#include "http/client.h"

#define CF_SDK_X25519_LEN 32
#define CF_SDK_OTK_LEN 32
#define CF_SDK_OTK_INFO "coffer/v1 otk"     /* docs/PROTOCOL.md; KMS side: kms/wire.h */
#define CF_SDK_OTK_AAD_PREFIX "coffer/v1 otk|"
#define CF_SDK_CT_ENVELOPE "application/coffer-envelope"
#define CF_SDK_CT_RESPONSE "application/coffer-response"
#define CF_SDK_EAR_TYP "JWT"
#define CF_SDK_EAR_AFFIRMING "affirming"
#define CF_SDK_REQUEST_ID_BYTES 16 /* 32 hex digits */

/* A TEE whose evidence and attestation result verified (DESIGN.md §5 step 2). */
typedef struct {
    char job[CF_NAME_MAX_LEN + 1];
    char tee_id[CF_ID_MAX_LEN + 1];
    char deployment[CF_NAME_MAX_LEN + 1];
    uint8_t public_key[CF_SDK_X25519_LEN];
    int64_t expires; /* unix seconds: min(EAR exp, access-token exp, session expires_at) */
} cf_sdk_tee;

/* What one request takes from the shared auth state: a private copy of the
 * token (valid while the shared one is replaced) and the client key. */
typedef struct {
    char *token;      /* cf_secure_alloc, NUL-terminated */
    int64_t token_exp;
    uint64_t generation;
    const cf_hpke_key *client_key; /* owned by the client; set once, never replaced */
} cf_sdk_auth;

struct coffer_client {
    /* Immutable after coffer_client_new. */
    char *gateway_url;
    char *tenant;
    char *api_key; /* cf_secure_alloc */
    char *ca_path;
    char *client_key_path; /* NULL: the default, decided once the principal is known */
    cf_manifest *manifest;
    cf_verifier *verifier;
    cf_jwks *ear_jwks;
    cf_hpke_key *release_key;
    unsigned timeout_ms;
    int max_retries;

    pthread_mutex_t pool_mu;
    pthread_cond_t pool_cv;
    cf_http_client *pool[CF_SDK_HTTP_POOL];
    bool pool_busy[CF_SDK_HTTP_POOL];

    pthread_mutex_t auth_mu;
    char *token; /* cf_secure_alloc; NULL: none yet, or invalidated */
    int64_t token_exp;
    int64_t token_refresh_at;
    uint64_t token_generation;
    char principal[CF_ID_MAX_LEN + 1];
    char key_path[CF_SDK_MAX_PATH + 1];
    cf_hpke_key *client_key;

    pthread_mutex_t cache_mu;
    cf_sdk_tee cache[CF_SDK_TEE_CACHE];
    size_t n_cache;
};

/* ---- errors.c ---- */

/* Clears the calling thread's pending classification and its last error. */
void cf_sdk_begin(void);
/* Records the public code and message of the failure being returned and sets
 * the cf_err detail to the same message; returns cf_code. */
int cf_sdk_fail(int cf_code, int pub, const char *fmt, ...) CF_PRINTF(3, 4);
/* Adds facts to the pending failure (after cf_sdk_fail). */
void cf_sdk_set_retry_after(long seconds);
void cf_sdk_set_failed_check(const char *name);
/* The public code of a failure rc (negative cf_err): the pending classification
 * when it belongs to rc, else a default mapping. */
int cf_sdk_classify(int rc);
/* At the API boundary: publishes the thread's last error for rc and returns the
 * public code (0 for rc == 0). */
int cf_sdk_finish(int rc);
/* Classifies a transport failure of cf_http_client_do during `step`. */
int cf_sdk_transport_error(int rc, const char *step);
/* Classifies an HTTP answer that is not the expected success (DESIGN.md §6
 * error shape {"error":{"code","message"}}); returns the cf_err code. */
int cf_sdk_http_error(const cf_http_response *r, const char *step);

/* ---- client.c ---- */

int64_t cf_sdk_now(void);
/* One HTTP call on a pooled connection; transport failures are classified. */
int cf_sdk_http(coffer_client *c, const cf_http_request *req, cf_http_response *ret,
                const char *step) CF_WUR;
/* Parses a JSON object answer with the given success status; any other status
 * goes through cf_sdk_http_error. */
int cf_sdk_json_answer(const cf_http_response *r, long want_status, const char *step,
                       json_t **ret) CF_WUR;
/* Percent-encodes s (RFC 3986 §2.1: everything but unreserved) into out. */
int cf_sdk_pct_encode(const char *s, char *out, size_t out_size) CF_WUR;
/* Visible ASCII 0x21..0x7e, 1..max bytes, none of `"`, `\`, `/`. */
bool cf_sdk_id_ok(const char *s, size_t max);
/* Manifest name rule: [A-Za-z0-9._-], starting with a letter or digit. */
bool cf_sdk_name_ok(const char *s, size_t max);
/* "expires_at": unix seconds (integer) or RFC 3339 UTC text. */
int cf_sdk_parse_time(const json_t *v, int64_t *ret) CF_WUR;

/* ---- auth.c ---- */

/* The fields of a POST /v1/iam/token answer (strings borrowed from it). */
typedef struct {
    const char *access_token; /* a compact JWS: base64url parts and dots */
    uint64_t expires_in;
    const char *tenant;
    const char *principal;
} cf_sdk_token_answer;

/* token_type must be "Bearer" (RFC 6749 §7.1, case-insensitive). */
int cf_sdk_token_parse(const json_t *ans, cf_sdk_token_answer *ret) CF_WUR;

/* A valid token and the client key; on first use fetches the token, loads or
 * creates the client key and registers it. Release with cf_sdk_auth_release. */
int cf_sdk_auth_get(coffer_client *c, cf_sdk_auth *ret) CF_WUR;
void cf_sdk_auth_release(cf_sdk_auth *a);
/* Forgets the token of that generation (after a 401), so the next
 * cf_sdk_auth_get fetches a new one. */
void cf_sdk_auth_invalidate(coffer_client *c, uint64_t generation);
/* Decodes a JWT's payload WITHOUT verifying it (the SDK only reads its own
 * token's claims: exp, cnf). Caller owns *ret. */
int cf_sdk_jwt_payload(const char *token, json_t **ret) CF_WUR;
/* $XDG_CONFIG_HOME/coffer/client-<tenant>-<principal>.key or
 * $HOME/.config/coffer/..., with the ids percent-encoded. */
int cf_sdk_default_key_path(const char *tenant, const char *principal, char *out,
                            size_t out_size) CF_WUR;
/* Loads the X25519 private key at path (PKCS#8 PEM). CF_E_NOT_FOUND if there is
 * no file; a file accessible by group or others, or not owned by the user, is
 * refused. */
int cf_sdk_key_load(const char *path, cf_hpke_key **ret) CF_WUR;
/* Generates a key and creates path exclusively with mode 0600 (the directory
 * 0700 if it is created). If another process created the file first, that key
 * is loaded instead. */
int cf_sdk_key_create(const char *path, cf_hpke_key **ret) CF_WUR;

/* ---- session.c ---- */

/* The fields of a POST /v1/sessions answer, shape-checked only (nothing in it
 * is trusted until cf_sdk_verify_evidence and cf_sdk_verify_ear pass). */
typedef struct {
    char tee_id[CF_ID_MAX_LEN + 1];
    uint8_t public_key[CF_SDK_X25519_LEN];
    char deployment[CF_NAME_MAX_LEN + 1];
    bool has_nonce;
    uint8_t nonce[CF_BINDING_NONCE_LEN]; /* the echo of our nonce */
    int64_t expires_at;                  /* 0 if absent */
    const json_t *evidence;              /* borrowed from the answer */
    const char *ear;                     /* borrowed from the answer */
} cf_sdk_session_answer;

/* Parses a session answer (fuzz/sdk/sdk_answers.c). Borrowed pointers live as
 * long as ans. cf_err detail names the bad field. */
int cf_sdk_session_parse(const json_t *ans, cf_sdk_session_answer *ret) CF_WUR;

/* A verified TEE for job: from the cache, or a new session (verified). A TEE
 * named in avoid (n_avoid ids) is refused as TEE_REVOKED. */
int cf_sdk_tee_get(coffer_client *c, const cf_sdk_auth *a, const char *job,
                   const char *const *avoid, size_t n_avoid, cf_sdk_tee *ret) CF_WUR;
void cf_sdk_cache_drop_tee(coffer_client *c, const char *tee_id);
/* Checks evidence against the client's manifest (DESIGN.md §3): deployment of
 * the client's tenant serving job, binding to (tee_key, nonce), at `now`. */
int cf_sdk_verify_evidence(const coffer_client *c, const json_t *evidence, const char *tee_id,
                           const char *deployment, const char *job,
                           const uint8_t tee_key[CF_SDK_X25519_LEN],
                           const uint8_t nonce[CF_BINDING_NONCE_LEN], int64_t now, bool *ret_simulated) CF_WUR;
/* Checks the attestation service's EAR token against the pinned JWKS and the
 * client's expectations; *ret_exp receives its exp. */
/* simulated_ok: the client's own verification found the evidence signed by a
 * simulated root that the client's manifest explicitly trusts; only then is the
 * attestation service's "warning" status (which it gives simulated TEEs) accepted
 * besides "affirming". */
int cf_sdk_verify_ear(const cf_jwks *jwks, const char *manifest_hash, const char *token,
                      const char *deployment, const uint8_t tee_key[CF_SDK_X25519_LEN],
                      const uint8_t nonce[CF_BINDING_NONCE_LEN], int64_t now,
                      bool simulated_ok, int64_t *ret_exp) CF_WUR;

/* ---- otk.c ---- */

/* The fields of a POST /v1/kms/otk answer. */
typedef struct {
    char otk_id[CF_ID_MAX_LEN + 1];
    char tee_id[CF_ID_MAX_LEN + 1];
    int64_t expires_at; /* 0 if absent */
    uint8_t enc[CF_HPKE_MAX_ENC];
    size_t enc_len;
    uint8_t ct[CF_SDK_OTK_LEN + CF_HPKE_NT];
    size_t ct_len;
} cf_sdk_otk_answer;

int cf_sdk_otk_parse(const json_t *ans, cf_sdk_otk_answer *ret) CF_WUR;

/* POST /v1/kms/otk for tee_id; the opened OTK goes to ret_otk (CF_SDK_OTK_LEN
 * bytes of secret memory owned by the caller). */
int cf_sdk_otk_get(coffer_client *c, const cf_sdk_auth *a, const char *tee_id,
                   char ret_otk_id[CF_ID_MAX_LEN + 1], uint8_t *ret_otk) CF_WUR;
/* Opens the sealed OTK: HPKE mode auth, recipient = client key, sender = the
 * pinned release key, info "coffer/v1 otk", aad "coffer/v1 otk|" otk_id "|" tee_id. */
int cf_sdk_otk_open(const cf_hpke_key *client_key, const cf_hpke_key *release_key,
                    const char *otk_id, const char *tee_id, const uint8_t *enc, size_t enc_len,
                    const uint8_t *ct, size_t ct_len, uint8_t *ret_otk) CF_WUR;

#endif
