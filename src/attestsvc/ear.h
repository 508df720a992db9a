/*
 * EAT Attestation Result (EAR) tokens: the attestation service's signed verdict
 * (DESIGN.md §3 "Results"; draft-ietf-rats-ear, the "tag:github.com,2023:veraison/ear"
 * profile; trustworthiness vector of draft-ietf-rats-ar4si §2.3).
 *
 * A token is a JWT (RFC 7519) signed ES256 with header {"alg":"ES256","kid","typ":"JWT"}
 * carrying:
 *   eat_profile       "tag:github.com,2023:veraison/ear"
 *   iat, exp          issue time and expiry (the caller's ttl: 2 x the re-attestation interval)
 *   ear.verifier-id   {"developer":"coffer","build":"coffer-attest/<version>"}
 *   submods           {"<deployment>": {"ear.status", "ear.trustworthiness-vector",
 *                                       "ear.appraisal-policy-id": <manifest hash>}}
 *   coffer.manifest_hash, coffer.deployment, coffer.measurement, coffer.tee_id,
 *   coffer.build_hash, eat_nonce (base64url of the 32-byte nonce),
 *   cnf               {"jwk": the TEE's X25519 key as an OKP JWK} (RFC 7800 §3.2)
 * Optional members (tee_id, build_hash, nonce, cnf) are left out when unknown.
 *
 * Appraisal (cf_ear_appraise) maps the verifier's checks to the AR4SI vector;
 * the status is the worst tier of the vector (0-1 none, 2-31 affirming, 32-95
 * warning, 96-127 contraindicated: ar4si §2.3.1). Every failed check maps to a
 * value of the contraindicated tier, so a result that is not verified is never
 * "affirming" or "warning". The full table is in
 * docs/internals/attestation-service.md "EAR".
 */
#ifndef COFFER_ATTESTSVC_EAR_H
#define COFFER_ATTESTSVC_EAR_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "attest/verify.h"
#include "base/compiler.h"
#include "crypto/jose.h"
#include "crypto/keys.h"

#define CF_EAR_PROFILE "tag:github.com,2023:veraison/ear"
#define CF_EAR_TYP "JWT"
#define CF_EAR_DEVELOPER "coffer"

/* The eight AR4SI claims, in the order the draft lists them. */
typedef enum {
    CF_EAR_INSTANCE_IDENTITY = 0,
    CF_EAR_CONFIGURATION,
    CF_EAR_EXECUTABLES,
    CF_EAR_FILE_SYSTEM,
    CF_EAR_HARDWARE,
    CF_EAR_RUNTIME_OPAQUE,
    CF_EAR_STORAGE_OPAQUE,
    CF_EAR_SOURCED_DATA,
    CF_EAR__CLAIMS
} cf_ear_claim;

/* Registered values used here (draft-ietf-rats-ar4si §2.3.2 - §2.3.9). */
#define CF_AR4SI_NO_CLAIM 0
#define CF_AR4SI_CRYPTO_VALIDATION_FAILED 99
#define CF_AR4SI_TRUSTWORTHY_INSTANCE 2
#define CF_AR4SI_UNTRUSTWORTHY_INSTANCE 96
#define CF_AR4SI_UNRECOGNIZED_INSTANCE 97
#define CF_AR4SI_APPROVED_CONFIG 2
#define CF_AR4SI_UNSUPPORTABLE_CONFIG 96
#define CF_AR4SI_APPROVED_RUNTIME 2
#define CF_AR4SI_CONTRAINDICATED_RUNTIME 96
#define CF_AR4SI_APPROVED_FILES 2
#define CF_AR4SI_GENUINE_HARDWARE 2
#define CF_AR4SI_UNSAFE_HARDWARE 32
#define CF_AR4SI_CONTRAINDICATED_HARDWARE 96
#define CF_AR4SI_UNRECOGNIZED_HARDWARE 97
#define CF_AR4SI_ENCRYPTED_MEMORY_RUNTIME 2
#define CF_AR4SI_ISOLATED_MEMORY_RUNTIME 32
#define CF_AR4SI_VISIBLE_MEMORY_RUNTIME 96

typedef enum {
    CF_EAR_STATUS_NONE = 0,
    CF_EAR_STATUS_AFFIRMING,
    CF_EAR_STATUS_WARNING,
    CF_EAR_STATUS_CONTRAINDICATED,
} cf_ear_status;

typedef struct {
    int v[CF_EAR__CLAIMS];
} cf_ear_vector;

/* "instance-identity", "configuration", ...; "?" out of range. */
const char *cf_ear_claim_name(cf_ear_claim c);
/* "none", "affirming", "warning", "contraindicated". */
const char *cf_ear_status_name(cf_ear_status s);
/* CF_EAR_STATUS_* of a claim value (ar4si §2.3.1 tiers). */
cf_ear_status cf_ear_tier(int value);
/* Parses a status name; CF_E_PARSE for anything else. */
int cf_ear_status_parse(const char *s, cf_ear_status *ret) CF_WUR;

/* Vector and status for a verification result. identity_failed: a check made
 * outside the verifier (the TEE's id, key, deployment or measurement differ
 * from the registry's record) failed, which makes the instance untrustworthy. */
void cf_ear_appraise(const cf_verify_result *r, bool identity_failed, cf_ear_vector *ret_vector,
                     cf_ear_status *ret_status);

typedef struct {
    const cf_verify_result *result; /* required */
    bool identity_failed;           /* see cf_ear_appraise */
    const char *deployment;         /* submodule name; NULL: result->deployment, else "unknown" */
    const char *tee_id;             /* optional */
    const char *build_hash;         /* optional: as the TEE reported it */
    const uint8_t *tee_public_key;  /* optional X25519 key (32 bytes): cnf.jwk */
    size_t tee_public_key_len;
    const uint8_t *nonce;           /* optional: CF_BINDING_NONCE_LEN bytes -> eat_nonce */
    int64_t iat;                    /* issue time (unix seconds, > 0) */
    uint32_t ttl;                   /* exp = iat + ttl (> 0) */
} cf_ear_input;

/* The claim set; *ret is a new reference owned by the caller. */
int cf_ear_claims(const cf_ear_input *in, json_t **ret) CF_WUR;
/* Claims signed with k (a P-256 private key: ES256) under kid. *ret_token is
 * malloc'd, owned by the caller. */
int cf_ear_sign(const cf_key *k, const char *kid, const cf_ear_input *in, char **ret_token) CF_WUR;
/* Verifies a token against jwks at time now (0 = clock): ES256 signature by
 * the key its kid names, typ "JWT", exp present and not passed, eat_profile,
 * and a "submods" object whose every entry has a known ear.status.
 * *ret_claims is a new reference owned by the caller. */
int cf_ear_verify(const char *token, size_t len, const cf_jwks *jwks, int64_t now,
                  json_t **ret_claims) CF_WUR;

#endif
