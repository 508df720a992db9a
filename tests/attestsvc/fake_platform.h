/*
 * Test double of the platform around the attestation service: a fake KMS
 * (HTTPS with mTLS that requires spiffe://coffer/attest; TEE registry listing,
 * nonces, attestation reports which it re-verifies with the real verifier and
 * quarantines on failure) and fake TEE runtimes (plain HTTP, POST /v1/evidence)
 * whose evidence comes from the real simulated secure processor (cf_sim_report
 * with report_data = cf_binding_compute(key, nonce)).
 *
 * fake_platform_start(dir) writes into dir:
 *   ca.pem                       internal CA
 *   attest.crt / attest.key      spiffe://coffer/attest (server + client, IP 127.0.0.1)
 *   gateway.crt / gateway.key    spiffe://coffer/gateway (client)
 *   manifest.json                development manifest: pins the simulated root
 *   manifest-prod.json           the same deployments, AMD roots only
 *   kms.url                      "https://127.0.0.1:PORT"
 *   tee.endpoints                value for the service's tee.endpoints: bare URLs of
 *                                tee_flip (a decoy) and tee_good, whose registry entry,
 *                                like the real KMS's, has no "endpoint"
 *   jwks.json, token-platform, token-acme   an IAM JWKS and access tokens
 *                                (platform operator; client of tenant "acme")
 * TEEs (ids, deployment, tenant):
 *   tee_good   demo   demo-tenant   good
 *   tee_flip   demo2  acme          good until set to FAKE_TEE_CHANGED
 *   tee_debug  dbg    demo-tenant   launched with DEBUG; the fake KMS does not
 *                                   quarantine it, so it stays listed as active
 * Used by tests/attestsvc/test_attestsvc_e2e.c (in process) and by the
 * attestsvc_fake helper program for tests/cli/test_attestation_cli.sh.
 */
#ifndef COFFER_TEST_FAKE_PLATFORM_H
#define COFFER_TEST_FAKE_PLATFORM_H

#include <stdbool.h>
#include <stdint.h>

typedef enum {
    FAKE_TEE_GOOD = 0,
    FAKE_TEE_CHANGED = 1, /* reports another measurement (a changed bundle) */
    FAKE_TEE_DOWN = 2,    /* answers 503 */
} fake_tee_mode;

typedef struct fake_platform fake_platform;

int fake_platform_start(const char *dir, fake_platform **ret);
void fake_platform_stop(fake_platform *p);

/* Changes how a TEE answers from now on. */
void fake_platform_set_mode(fake_platform *p, const char *tee_id, fake_tee_mode mode);

/* Counters of the fake KMS for one TEE. */
typedef struct {
    int reports;        /* attestation reports received */
    int failed_reports; /* reports whose evidence did not verify at the KMS */
    int bad_nonce;      /* reports with a nonce the KMS did not issue (or reused) */
    char status[16];    /* registry status: active / quarantined */
} fake_kms_stats;

void fake_platform_kms_stats(fake_platform *p, const char *tee_id, fake_kms_stats *ret);
/* Registry listings served. */
int fake_platform_listings(fake_platform *p);

#endif
