/*
 * The public shapes of an attestation (DESIGN.md §6, docs/internals/attestation-service.md
 * "API"): the response of POST /v1/attestation/verify and the history record of
 * an attestation. Pure functions of a verification result, so that the exact
 * JSON is unit-tested without a running service.
 *
 * A service-level check ("registry") is added to the verifier's checks: the
 * TEE's id, deployment, public key and measurement must equal what the KMS
 * registry recorded when the TEE registered (DESIGN.md §2 rule 4: a changed
 * measurement is a failure, even if the new one is also in the manifest).
 */
#ifndef COFFER_ATTESTSVC_REPORT_H
#define COFFER_ATTESTSVC_REPORT_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "attest/manifest.h"
#include "attest/verify.h"
#include "attestsvc/history.h"
#include "attestsvc/wire.h"
#include "base/compiler.h"

#define CF_ATTEST_CHECK_REGISTRY "registry"

/* The registry check. */
typedef struct {
    cf_check_status status;
    char message[CF_CHECK_MESSAGE_LEN];
} cf_attest_regcheck;

/* Compares what the TEE answered (and its evidence, through the verifier's
 * facts) with its registry entry. Skipped when there is no entry. */
void cf_attest_registry_check(const cf_attest_tee_entry *entry, const cf_attest_tee_evidence *tev,
                              const cf_verify_result *r, cf_attest_regcheck *ret);

typedef struct {
    const cf_verify_result *result;          /* required */
    const cf_attest_regcheck *registry;      /* optional */
    const cf_manifest_deployment *deployment; /* from the service's manifest; NULL if unknown */
    const char *id;                          /* attestation id */
    int64_t at;                              /* unix seconds */
    const char *deployment_id;
    const cf_attest_tee_evidence *tee;       /* the TEE's answer */
    const uint8_t *nonce;                    /* CF_BINDING_NONCE_LEN bytes */
    const char *token;                       /* EAR token, NULL if none */
} cf_attest_view;

/* true if the verifier verified and the registry check did not fail. */
bool cf_attest_view_verified(const cf_attest_view *v);

/* Exactly {"status","attestation":{"id","timestamp","deployment_id","build_hash",
 * "measurements":{"MEASUREMENT","HOST_DATA","REPORT_DATA","CHIP_ID"},
 * "signature_verification":{"developer_id","signature_valid","key_id"},
 * "platform_verification":{"tcb_status","debug","product","tcb","checks"}},
 * "token","evidence":{"platform","report","cert","nonce","public_key","tee_id"}}.
 * A new reference; NULL on allocation failure. */
json_t *cf_attest_view_to_json(const cf_attest_view *v);

/* {"developer_id","signature_valid","key_id"} alone (also used by tests). */
json_t *cf_attest_signature_json(const cf_attest_view *v);

/* JSON array [{"name","message"}] of the failed checks (verifier + registry),
 * as compact text of at most CF_ATTESTSVC_MAX_FAILURES_JSON bytes (the list is
 * cut short with a final {"name":"...","message":"N more"} if needed).
 * malloc'd; NULL on allocation failure. */
char *cf_attest_failures_json(const cf_verify_result *r, const cf_attest_regcheck *reg);
/* "check: message" of the first failure into out ("" if none). */
void cf_attest_first_failure(const cf_verify_result *r, const cf_attest_regcheck *reg, char *out,
                             size_t out_size);

/* RFC 3339 UTC "2026-01-02T03:04:05Z" (out >= 21 bytes). */
void cf_attest_time_rfc3339(int64_t t, char out[21]);

#endif
