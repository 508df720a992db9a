/*
 * JOSE: JSON Web Keys (RFC 7517, RFC 8037 OKP), JWS compact serialisation
 * (RFC 7515) and JSON Web Tokens (RFC 7519), restricted to the algorithms the
 * platform uses: ES256 (P-256), ES384 (P-384) and EdDSA (Ed25519) (RFC 7518
 * §3.4, RFC 8037 §3.1).
 *
 * Verification is driven by the key, never by the token (RFC 8725 §2.1, §3.1):
 * the caller passes the key, or a JWK Set from which the header's "kid" selects
 * one; the only algorithm accepted is the one that key type implies, so a header
 * "alg" that differs (HS256, "none", ES384 on a P-256 key, ...) is rejected.
 * Keys embedded in or referenced by the token ("jwk", "jku", "x5c", "x5u") are
 * never used. Unknown "crit" extensions and "b64": false (RFC 7797) are
 * rejected; header and token sizes are bounded; base64url is strict (no
 * padding, canonical trailing bits); the header must be a JSON object without
 * duplicate member names.
 *
 * Error codes: CF_E_TOO_LARGE (size bounds), CF_E_PARSE (malformed token, JWK,
 * claims), CF_E_UNSUPPORTED (alg not accepted or not matching the key, crit,
 * b64, unknown kty/crv, private JWK members), CF_E_NOT_FOUND (unknown kid),
 * CF_E_SIGNATURE (bad signature), CF_E_EXPIRED, CF_E_NOT_YET_VALID, CF_E_VERIFY
 * (typ / iss / aud mismatch, missing exp). Each failure sets a precise
 * cf_err_set detail, e.g. "alg ES256 does not match Ed25519 key". Details never
 * contain key material or the token itself.
 */
#ifndef COFFER_CRYPTO_JOSE_H
#define COFFER_CRYPTO_JOSE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/compiler.h"
#include "crypto/keys.h"

typedef enum {
    CF_JWS_ES256 = 1, /* ECDSA P-256 + SHA-256 (RFC 7518 §3.4) */
    CF_JWS_ES384 = 2, /* ECDSA P-384 + SHA-384 (RFC 7518 §3.4) */
    CF_JWS_EDDSA = 3, /* Ed25519 (RFC 8037 §3.1) */
} cf_jws_alg;

/* "ES256", "ES384", "EdDSA"; "?" otherwise. */
const char *cf_jws_alg_name(cf_jws_alg alg);
/* The one algorithm a key may be used with. CF_E_UNSUPPORTED for X25519. */
int cf_jws_alg_for_key(const cf_key *k, cf_jws_alg *ret) CF_WUR;

/* ---- JWK (public keys only) ----
 * Import accepts kty "EC" (crv P-256, P-384; members x, y) and kty "OKP" (crv
 * Ed25519, X25519; member x), with coordinates of exactly the curve's size in
 * strict base64url; EC points are checked to be on the curve. A JWK carrying a
 * private member ("d", or RSA/symmetric private members) is refused, as are
 * unknown kty / crv values, an "alg" that does not fit the key and a "use" other
 * than "sig" (signing keys) / "enc" (X25519). Other members are ignored
 * (RFC 7517 §4). *ret_kid (optional, may be NULL) receives a malloc'd copy of
 * "kid", or NULL if the JWK has none. */
int cf_jwk_from_json(const json_t *jwk, cf_key **ret_key, char **ret_kid) CF_WUR;
/* Same, from JSON text of at most CF_JWK_MAX_BYTES. */
int cf_jwk_parse(const void *data, size_t len, cf_key **ret_key, char **ret_kid) CF_WUR;
/* Public JWK of k: kty, crv, x[, y], alg and use ("sig"; "enc" for X25519, no
 * alg), and kid when kid != NULL. *ret is a new reference owned by the caller. */
int cf_jwk_to_json(const cf_key *k, const char *kid, json_t **ret) CF_WUR;

/* ---- JWK Set (RFC 7517 §5) ----
 * Holds at most CF_JWKS_MAX_KEYS public keys, each with a unique, non-empty kid
 * (required: verification selects keys by kid). Parsing is strict: a member of
 * "keys" that is not an acceptable public JWK fails the whole set (unlike the
 * RFC's SHOULD-ignore, since our sets come from our own services). */
typedef struct cf_jwks cf_jwks;

int cf_jwks_new(cf_jwks **ret) CF_WUR;
void cf_jwks_free(cf_jwks *set);
/* Adds the public part of k under kid (NULL: its RFC 7638 thumbprint).
 * CF_E_EXISTS for a duplicate kid, CF_E_TOO_LARGE when the set is full. */
int cf_jwks_add(cf_jwks *set, const char *kid, const cf_key *k) CF_WUR;
size_t cf_jwks_count(const cf_jwks *set);
/* Borrowed pointers, valid until the set is freed. NULL if i is out of range. */
const cf_key *cf_jwks_key_at(const cf_jwks *set, size_t i, const char **ret_kid);
/* CF_E_NOT_FOUND ("unknown kid '...'") if no key has this kid. *ret is borrowed. */
int cf_jwks_find(const cf_jwks *set, const char *kid, const cf_key **ret) CF_WUR;
int cf_jwks_from_json(const json_t *v, cf_jwks **ret) CF_WUR;
/* From JSON text of at most CF_JWKS_MAX_BYTES. */
int cf_jwks_parse(const void *data, size_t len, cf_jwks **ret) CF_WUR;
/* {"keys":[...]}; *ret is a new reference owned by the caller. */
int cf_jwks_to_json(const cf_jwks *set, json_t **ret) CF_WUR;
/* Compact JSON text; *ret is malloc'd, owned by the caller. */
int cf_jwks_serialise(const cf_jwks *set, char **ret) CF_WUR;

/* ---- JWS compact serialisation (RFC 7515 §7.1) ---- */

/* Signs payload with k (private). The protected header is {"alg": <from k>}
 * plus the members of extra_header (may be NULL), which must not set "alg",
 * "crit" or "b64". *ret_token is malloc'd, NUL-terminated, owned by the caller;
 * at most CF_JWT_MAX_BYTES. */
int cf_jws_sign(const cf_key *k, const json_t *extra_header, const uint8_t *payload, size_t len,
                char **ret_token) CF_WUR;

/* Verifies a compact JWS of len bytes (no NUL needed) with exactly one of key
 * or jwks (the other NULL; with jwks the header "kid" selects the key).
 * On success: *ret_header (optional) receives the protected header (new
 * reference), and the payload is appended to payload (optional). Nothing is
 * written on failure. */
int cf_jws_verify(const char *token, size_t len, const cf_key *key, const cf_jwks *jwks,
                  json_t **ret_header, cf_buf *payload) CF_WUR;

/* ---- JWT (RFC 7519) ---- */

/* Signs claims (a JSON object) with header {"alg", "kid", "typ"}: typ NULL means
 * "JWT" (RFC 7519 §5.1), kid NULL means the key's RFC 7638 thumbprint. */
int cf_jwt_sign(const cf_key *k, const json_t *claims, const char *typ, const char *kid,
                char **ret_token) CF_WUR;

typedef struct {
    /* Expected header "typ", compared exactly (RFC 8725 §3.11 explicit typing);
     * a token without typ or with another typ is rejected. NULL: not checked. */
    const char *typ;
    /* Verification time in seconds since the epoch; 0 means the current time. */
    int64_t now;
    /* Allowed clock skew in seconds (<= CF_JWT_MAX_LEEWAY). */
    uint32_t leeway;
    /* "exp" is required unless this is set (e.g. EAR tokens without exp). */
    bool allow_missing_exp;
    /* Expected "iss" (exact); NULL: not checked. */
    const char *iss;
    /* Expected audience: "aud" must equal it or, if an array, contain it. NULL:
     * a token that has "aud" is rejected (RFC 7519 §4.1.3). */
    const char *aud;
} cf_jwt_verify_opts;

/*
 * Verifies the signature as cf_jws_verify does, then the claims (RFC 7519 §4.1):
 * the payload must be a JSON object; "exp", "nbf", "iat" when present must be
 * integer NumericDates; now - leeway < exp; nbf <= now + leeway;
 * iat <= now + leeway; then typ, iss and aud as set in opts (NULL opts: all
 * defaults). On success *ret_claims is a new reference owned by the caller.
 */
int cf_jwt_verify(const char *token, size_t len, const cf_key *key, const cf_jwks *jwks,
                  const cf_jwt_verify_opts *opts, json_t **ret_claims) CF_WUR;

#endif
