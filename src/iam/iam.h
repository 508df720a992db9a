/*
 * IAM core: tenants, principals, roles, API keys, client keys, access tokens
 * and the token-signing keys (DESIGN.md §1, §5 step 1, §6; docs/PROTOCOL.md §4).
 * The model, schema, formats and rules are described in docs/internals/iam.md;
 * this header is the contract. The HTTP API (api.c) is a thin layer over it.
 *
 * AUTHORISATION. Every management call takes the caller (a principal verified
 * from an access token of this IAM) and checks it with cf_authz_check — the one
 * role -> permission table of src/proto/authz.c — scoped to the tenant of the
 * resource, plus the IAM's own rules (granting, self-only client keys), listed
 * in docs/internals/iam.md "Authorisation". The caller must also still be an
 * active principal of an active tenant: IAM has the store at hand, so unlike
 * the other services it does not wait for the token to expire.
 *
 * TOKENS. cf_iam_token_issue exchanges an API key ("cfk_<key id>_<secret>")
 * for an access token signed with the current Ed25519 key (EdDSA). Revoking a
 * key or disabling a principal or tenant stops new tokens at once; tokens
 * already issued stay valid until they expire (at most iam.token_ttl, <= 1 h):
 * "revocation takes effect within the token TTL".
 *
 * SIGNING KEYS. Ed25519, the private half wrapped by the HSM master key (AAD
 * "coffer/v1 iam-signing-key" || 0x00 || kid). One key is current; a rotated
 * key stays published in the JWKS (and verifies) for the overlap period, then
 * is retired: removed from the JWKS and its wrapped private key deleted.
 *
 * AUDIT. Every operation, successful or not, calls the audit hook (opts.audit)
 * with ids only — never an API key secret, a private key or a token. Mutations
 * call it for their success event inside the store transaction, before commit:
 * if the hook fails (the audit spool is not writable) the transaction rolls
 * back and the operation fails (DESIGN.md §2 rule 6).
 *
 * THREADS. All functions may be called from several threads at once (the core
 * keeps a pool of store handles and a lock-protected key ring).
 *
 * ERRORS (with a precise detail through cf_err_detail):
 *   CF_E_UNAUTHENTICATED  malformed / unknown API key, wrong secret, bad token
 *   CF_E_EXPIRED          expired API key or access token
 *   CF_E_REVOKED          revoked API key
 *   CF_E_FORBIDDEN        permission, tenant scope or granting rule; disabled
 *                         principal or tenant; API key of another tenant
 *   CF_E_RATE_LIMITED     too many failed attempts for this key id
 *   CF_E_NOT_FOUND / CF_E_EXISTS / CF_E_CONFLICT / CF_E_INVAL / CF_E_PARSE
 *   CF_E_UNAVAILABLE / CF_E_STORE / CF_E_HSM  a dependency failed: refused
 */
#ifndef COFFER_IAM_IAM_H
#define COFFER_IAM_IAM_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/compiler.h"
#include "base/limits.h"
#include "base/secmem.h"
#include "crypto/jose.h"
#include "hsm/hsm.h"
#include "proto/authz.h"

/* ---- API key format (docs/internals/iam.md "API keys") ----------------------
 * "cfk_" || key id (16 lower-case hex chars, public) || "_" || secret (32
 * random bytes, base64url without padding: 43 chars). Stored: only
 * SHA-256("coffer/v1 api-key" || 0x00 || key id || 0x00 || secret bytes). */
#define CF_IAM_APIKEY_PREFIX "cfk_"
#define CF_IAM_KEY_ID_LEN 16
#define CF_IAM_APIKEY_SECRET_LEN 32
#define CF_IAM_APIKEY_SECRET_CHARS 43
#define CF_IAM_APIKEY_LEN (4 + CF_IAM_KEY_ID_LEN + 1 + CF_IAM_APIKEY_SECRET_CHARS)
#define CF_IAM_APIKEY_HASH_LEN 32

/* Parses an API key of len bytes strictly (exact length, prefix, lower-case
 * hex id, canonical base64url secret). On success ret_key_id receives the id
 * (NUL-terminated) and ret_secret the 32 secret bytes (pass secret memory).
 * CF_E_UNAUTHENTICATED ("malformed API key ...") otherwise; nothing written. */
int cf_iam_apikey_parse(const char *s, size_t len, char ret_key_id[CF_IAM_KEY_ID_LEN + 1],
                        uint8_t ret_secret[CF_IAM_APIKEY_SECRET_LEN]) CF_WUR;
/* The stored verifier of a key (see above). */
int cf_iam_apikey_hash(const char *key_id, const uint8_t secret[CF_IAM_APIKEY_SECRET_LEN],
                       uint8_t ret_hash[CF_IAM_APIKEY_HASH_LEN]) CF_WUR;
/* A new key: random id (public DRBG), random secret (private DRBG). ret_key
 * receives the formatted key, NUL-terminated, in new secret memory (caller
 * frees with cf_secret_free; len counts the NUL). */
int cf_iam_apikey_generate(char ret_key_id[CF_IAM_KEY_ID_LEN + 1], cf_secret *ret_key,
                           uint8_t ret_hash[CF_IAM_APIKEY_HASH_LEN]) CF_WUR;

/* ---- client keys ---------------------------------------------------------------
 * An X25519 public key (RFC 7748 §5): exactly 32 bytes, canonical (u < p, top
 * bit clear), and not of small order — checked as RFC 7748 §6.1 suggests, by a
 * Diffie-Hellman with a fresh scalar whose result must not be all zero.
 * CF_E_INVAL with a detail otherwise. */
int cf_iam_clientkey_check(const uint8_t *pub, size_t len) CF_WUR;

/* ---- roles ------------------------------------------------------------------------ */

/* Roles a platform principal may hold, and roles a tenant principal may hold
 * (platform principals act on every tenant, so tenant-scoped operator roles
 * such as client or tenant-admin are never given to them). */
#define CF_IAM_PLATFORM_ROLES ((uint32_t)(CF_ROLE_PLATFORM_ADMIN | CF_ROLE_OPERATOR | CF_ROLE_AUDITOR))
#define CF_IAM_TENANT_ROLES                                                                \
    ((uint32_t)(CF_ROLE_TENANT_ADMIN | CF_ROLE_DEVELOPER | CF_ROLE_CLIENT | CF_ROLE_AUDITOR))
#define CF_IAM_ALL_ROLES ((uint32_t)((1u << CF_ROLE_COUNT) - 1))

/* Granting rule: may `actor` create a principal of `tenant` holding `roles`?
 * Needs principal.manage on that tenant; roles non-empty and all known;
 * platform roles only for platform principals and only by a platform-admin;
 * tenant principals only tenant roles. CF_E_FORBIDDEN / CF_E_INVAL with a
 * detail otherwise. */
int cf_iam_check_grant(const cf_principal *actor, const char *tenant, uint32_t roles) CF_WUR;
/* ["client", ...] -> role bits: strings only, known names, no duplicates, at
 * most CF_ROLE_COUNT entries. CF_E_INVAL / CF_E_PARSE with a detail. */
int cf_iam_roles_from_json(const json_t *arr, uint32_t *ret) CF_WUR;
/* Role bits -> new JSON array of names (caller owns). */
int cf_iam_roles_to_json(uint32_t roles, json_t **ret) CF_WUR;
/* Ids chosen by callers (tenant ids): 1..CF_ID_MAX_LEN of [A-Za-z0-9._:-]. */
bool cf_iam_id_ok(const char *s);
/* Names: 1..CF_NAME_MAX_LEN bytes of valid UTF-8 without control characters. */
bool cf_iam_name_ok(const char *s);
/* Free text (reasons): 1..max bytes of valid UTF-8 without control characters. */
bool cf_iam_text_ok(const char *s, size_t max);
/* "user", "service", "developer", "client". */
bool cf_iam_kind_ok(const char *s);

/* ---- the core ------------------------------------------------------------------------ */

typedef struct cf_iam cf_iam;

/* Who asks. actor: the verified caller (NULL for unauthenticated calls such as
 * the token exchange, or internal ones). ctx is handed to the audit hook
 * unchanged (the service passes its HTTP request). */
typedef struct {
    const cf_principal *actor;
    const void *ctx;
} cf_iam_caller;

/* The audit hook. actor: the principal the event is attributed to (NULL:
 * anonymous). details is consumed (json_decref'd by the hook); may be NULL.
 * Returns 0 once the event is durable, an error otherwise. */
typedef int (*cf_iam_audit_fn)(void *arg, const void *ctx, const cf_principal *actor,
                               const char *action, const char *tenant, const char *resource,
                               const char *outcome, json_t *details);
/* Unix seconds; tests inject a fixed clock. */
typedef int64_t (*cf_iam_clock_fn)(void *arg);

/* A ready-made audit hook for callers without a service runtime (e.g. `coffer
 * init` bootstrapping into STATE_DIR/iam): arg is a cf_spool *, the event has
 * the shape cf_svc_audit writes ({"service":"iam","action",...}); ctx is
 * ignored. */
int cf_iam_spool_audit(void *arg, const void *ctx, const cf_principal *actor, const char *action,
                       const char *tenant, const char *resource, const char *outcome, json_t *details) CF_WUR;

typedef struct {
    const char *store_dsn;      /* required; not "sqlite::memory:" (one db per handle) */
    cf_hsm *hsm;                /* required: wraps the signing keys; borrowed */
    cf_iam_audit_fn audit;      /* required */
    void *audit_arg;
    cf_iam_clock_fn clock;      /* NULL = time() */
    void *clock_arg;
    uint32_t token_ttl;         /* seconds, 0 = CF_IAM_TOKEN_TTL_DEFAULT, <= CF_IAM_TOKEN_TTL_MAX */
    uint64_t rotate_every;      /* 0 = CF_IAM_ROTATE_DEFAULT_S; MIN..MAX, > overlap */
    uint64_t overlap;           /* 0 = CF_IAM_OVERLAP_DEFAULT_S; >= token_ttl + 60, <= MAX */
    uint64_t apikey_default_ttl; /* 0 = CF_IAM_APIKEY_TTL_DEFAULT */
} cf_iam_opts;

/* Runs the "iam" migrations, loads the signing keys (creating the first one if
 * the store has none) and checks that the current one unwraps. The hsm must
 * outlive the object. Caller releases with cf_iam_close. */
int cf_iam_open(const cf_iam_opts *opts, cf_iam **ret) CF_WUR;
void cf_iam_close(cf_iam *iam);
/* The core's clock (unix seconds). */
int64_t cf_iam_now(const cf_iam *iam);
/* The configured access token lifetime (seconds). */
uint32_t cf_iam_token_ttl(const cf_iam *iam);
/* Readiness: a store round trip and a current signing key. */
int cf_iam_ready(cf_iam *iam) CF_WUR;

/* ---- tenants ---- */
typedef struct {
    char id[CF_ID_MAX_LEN + 1];
    char name[CF_NAME_MAX_LEN + 1];
    bool active;
    int64_t created_at;
    int64_t disabled_at; /* 0 if active */
} cf_iam_tenant;

/* tenant.manage on the platform. id NULL = generated ("t-" + 16 hex). The id
 * "platform" is reserved. CF_E_EXISTS if the id is taken. */
int cf_iam_tenant_create(cf_iam *iam, const cf_iam_caller *who, const char *id, const char *name,
                         cf_iam_tenant *ret) CF_WUR;
/* principal.manage on that tenant (a platform-admin, or that tenant's admin). */
int cf_iam_tenant_get(cf_iam *iam, const cf_iam_caller *who, const char *id, cf_iam_tenant *ret) CF_WUR;
/* tenant.manage on the platform. Ids above `after` (NULL = from the start) in
 * ascending order, at most max (<= CF_IAM_MAX_LIST); *ret_n = how many. */
int cf_iam_tenant_list(cf_iam *iam, const cf_iam_caller *who, const char *after, cf_iam_tenant *out,
                       size_t max, size_t *ret_n) CF_WUR;
/* tenant.manage on the platform; the platform tenant cannot be disabled.
 * CF_E_CONFLICT if already disabled. */
int cf_iam_tenant_disable(cf_iam *iam, const cf_iam_caller *who, const char *id,
                          const char *reason) CF_WUR;

/* ---- principals ---- */
typedef struct {
    char id[CF_ID_MAX_LEN + 1];
    char tenant[CF_ID_MAX_LEN + 1];
    char kind[16];
    char name[CF_NAME_MAX_LEN + 1];
    uint32_t roles;
    bool active;
    int64_t created_at;
    int64_t disabled_at;
    bool has_client_key;
    uint8_t client_key[32];
    int64_t client_key_created_at;
} cf_iam_principal;

/* cf_iam_check_grant + kind valid + name unique in the tenant (CF_E_EXISTS)
 * + tenant exists and is active. The id is generated ("p-" + 16 hex). */
int cf_iam_principal_create(cf_iam *iam, const cf_iam_caller *who, const char *tenant,
                            const char *kind, const char *name, uint32_t roles,
                            cf_iam_principal *ret) CF_WUR;
/* principal.manage on the principal's tenant. */
int cf_iam_principal_get(cf_iam *iam, const cf_iam_caller *who, const char *id,
                         cf_iam_principal *ret) CF_WUR;
int cf_iam_principal_list(cf_iam *iam, const cf_iam_caller *who, const char *tenant,
                          const char *after, cf_iam_principal *out, size_t max,
                          size_t *ret_n) CF_WUR;
/* principal.manage on the principal's tenant; not oneself (CF_E_CONFLICT), and
 * CF_E_CONFLICT if already disabled. */
int cf_iam_principal_disable(cf_iam *iam, const cf_iam_caller *who, const char *id,
                             const char *reason) CF_WUR;

/* ---- API keys ---- */
typedef struct {
    char id[CF_IAM_KEY_ID_LEN + 1];
    char principal[CF_ID_MAX_LEN + 1];
    char tenant[CF_ID_MAX_LEN + 1];
    int64_t created_at, expires_at;
    int64_t revoked_at;   /* 0 if not revoked */
    int64_t last_used_at; /* 0 if never used */
} cf_iam_apikey;

/* apikey.manage on the principal's tenant; the principal must be active.
 * ttl: seconds, 0 = the default, 1..CF_IAM_APIKEY_TTL_MAX. The key is
 * returned ONCE in ret_key (secret memory, NUL-terminated; free with
 * cf_secret_free); only its hash is stored. */
int cf_iam_apikey_create(cf_iam *iam, const cf_iam_caller *who, const char *principal, uint64_t ttl,
                         cf_iam_apikey *ret_info, cf_secret *ret_key) CF_WUR;
/* apikey.manage on the principal's tenant. Metadata only, by key id. */
int cf_iam_apikey_list(cf_iam *iam, const cf_iam_caller *who, const char *principal,
                       cf_iam_apikey *out, size_t max, size_t *ret_n) CF_WUR;
/* apikey.manage on the key's tenant. CF_E_CONFLICT if already revoked. */
int cf_iam_apikey_revoke(cf_iam *iam, const cf_iam_caller *who, const char *key_id,
                         const char *reason) CF_WUR;

/* ---- client keys ---- */
/* clientkey.register on the principal's tenant, and either the caller is that
 * principal or a tenant-admin. cf_iam_clientkey_check on the key. Registering
 * replaces (revokes) the previous key of that principal. */
int cf_iam_clientkey_register(cf_iam *iam, const cf_iam_caller *who, const char *principal,
                              const uint8_t *pub, size_t len) CF_WUR;

/* ---- tokens ---- */
typedef struct {
    char *access_token;  /* malloc'd; free with cf_iam_token_free */
    uint32_t expires_in;
    cf_principal claims; /* what the token says (tenant, sub, kind, roles, jti, iat, exp, cnf) */
    char kid[CF_JWK_KID_MAX_LEN + 1];
} cf_iam_token;

/* API key (+ expected tenant, NULL = any) -> access token. Refused: malformed
 * or unknown key, wrong secret (CF_E_UNAUTHENTICATED); expired (CF_E_EXPIRED);
 * revoked (CF_E_REVOKED); disabled principal / tenant or tenant mismatch
 * (CF_E_FORBIDDEN); too many failures for this key id (CF_E_RATE_LIMITED, with
 * *ret_retry_after seconds if ret_retry_after != NULL). */
int cf_iam_token_issue(cf_iam *iam, const cf_iam_caller *who, const char *api_key, size_t len,
                       const char *tenant, cf_iam_token *ret, uint32_t *ret_retry_after) CF_WUR;
void cf_iam_token_free(cf_iam_token *t);
/* Verifies an access token of this IAM in-process against its own key ring
 * (cf_token_verify at the core's clock). */
int cf_iam_verify(cf_iam *iam, const char *token, size_t len, cf_principal *ret) CF_WUR;

/* ---- signing keys ---- */
/* The published JWKS ({"keys":[...]}: current and overlapping keys), as
 * compact JSON text; *ret is malloc'd, owned by the caller. */
int cf_iam_jwks_json(cf_iam *iam, char **ret) CF_WUR;
/* tenant.manage on the platform (platform-admin). A new current key; the old
 * one stays published until now + overlap. CF_E_CONFLICT when
 * CF_IAM_SIGNING_KEYS_MAX keys are still published. ret_kid may be NULL. */
int cf_iam_signing_rotate(cf_iam *iam, const cf_iam_caller *who,
                          char ret_kid[CF_JWK_KID_MAX_LEN + 1]) CF_WUR;
/* Rotates the current key when it is older than rotate_every, retires keys
 * whose overlap has ended, and reloads the key ring. Safe from several threads
 * and replicas (each due rotation happens once). ret_rotated (may be NULL) is
 * set when this call rotated. */
int cf_iam_signing_maintain(cf_iam *iam, bool *ret_rotated) CF_WUR;
/* Kid of the current signing key. */
int cf_iam_signing_current(cf_iam *iam, char ret_kid[CF_JWK_KID_MAX_LEN + 1]) CF_WUR;

/* ---- bootstrap (`cofferd iam --bootstrap-admin`, later `coffer init`) ---- */
typedef struct {
    char principal[CF_ID_MAX_LEN + 1];
    char key_id[CF_IAM_KEY_ID_LEN + 1];
    int64_t expires_at;
    cf_secret api_key; /* NUL-terminated key, shown once; caller frees with cf_secret_free */
} cf_iam_bootstrap_result;

/* Creates the platform tenant (if missing), a platform-admin principal named
 * `name` (NULL = "admin") and its API key (ttl 0 = the default). Needs no HSM.
 * CF_E_EXISTS ("a platform admin already exists") if any active platform-admin
 * exists. audit (required) is called as for any mutation; now 0 = time(). */
int cf_iam_bootstrap(const char *store_dsn, cf_iam_audit_fn audit, void *audit_arg,
                     const char *name, uint64_t ttl, int64_t now,
                     cf_iam_bootstrap_result *ret) CF_WUR;

#endif
