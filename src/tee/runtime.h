/*
 * The TEE runtime (DESIGN.md §1 "coffer-tee", §5 steps 6–8, §6 "TEE runtime";
 * docs/internals/tee.md). One cf_tee holds:
 *
 *   - its X25519 key pair, generated inside at start in secret memory and never
 *     written anywhere (the HPKE recipient key of every request)
 *   - the verified deployment bundle (tee/bundle.h) and the job sandbox
 *   - the hardware provider that signs evidence bound to that key
 *   - an HTTP client for the KMS and the pinned KMS release key
 *
 * Life cycle: cf_tee_new (key, bundle, sandbox, provider; no network) ->
 * cf_tee_register (nonce, evidence, registration: the KMS assigns the TEE id)
 * -> cf_tee_add_routes on an HTTP server -> serve -> cf_tee_free.
 *
 * HTTP API (plain HTTP on 127.0.0.1 by default: the envelope gives end-to-end
 * confidentiality and integrity, and evidence binds the key, so a man in the
 * middle learns nothing and forges nothing):
 *   POST /v1/evidence {"nonce": 64 hex}
 *        -> {"tee_id","public_key","deployment","build_hash","evidence":{...}}
 *           fresh evidence with report_data = cf_binding_compute(key, nonce);
 *           at most CF_TEE_EVIDENCE_RATE per second (burst CF_TEE_EVIDENCE_BURST), else 429
 *   POST /v1/jobs/{job} (application/coffer-envelope, at most CF_ENV_MAX_BYTES)
 *        -> 200 application/coffer-response (CFR1; status byte: sandbox.h) or a
 *           JSON error: 400 malformed / wrong TEE / job mismatch / decryption,
 *           403 tenant mismatch or KMS refusal, 404 unknown job, 409 replay (the
 *           KMS already released the OTK), 410 OTK expired, 415 content type,
 *           503 busy (all job slots in use) or KMS unreachable
 *   GET  /healthz -> {"status":"ok","tee_id","deployment","build_hash"}
 */
#ifndef COFFER_TEE_RUNTIME_H
#define COFFER_TEE_RUNTIME_H

#include <stddef.h>
#include <stdint.h>

#include "base/compiler.h"
#include "http/server.h"
#include "proto/envelope.h"
#include "tee/bundle.h"
#include "tee/sandbox.h"

#define CF_TEE_ENVELOPE_TYPE "application/coffer-envelope"
#define CF_TEE_RESPONSE_TYPE "application/coffer-response"

typedef struct {
    const char *kms_url;          /* "https://kms:8443" */
    const char *kms_ca;           /* PEM CA for the KMS's certificate (NULL: system store) */
    const char *kms_peer_id;      /* required SPIFFE id of the KMS over https (NULL: none) */
    const char *kms_release_key;  /* pinned KMS release key: base64url X25519 */
    const char *bundle_dir;
    const char *deployment;       /* the bundle's name must be this */
    const char *developer_key;    /* Ed25519, cf_developer_key_parse text */
    const char *provider;         /* "auto", "launcher", "configfs-tsm", "sev-guest" */
    const char *endpoint;         /* URL the gateway/attestation service reach us at (NULL: none
                                     advertised); routing data only, never trusted for security */
    cf_sandbox_opts sandbox;
    unsigned max_jobs;            /* concurrent jobs, 1..CF_TEE_MAX_CONCURRENT_JOBS */
} cf_tee_opts;

typedef struct cf_tee cf_tee;

/* Generates the key pair, loads and verifies the bundle (refusing to start on a
 * bad signature or a bundle of another deployment), sets up the sandbox, opens
 * the provider and the KMS client. *ret only on success. */
int cf_tee_new(const cf_tee_opts *o, cf_tee **ret) CF_WUR;
void cf_tee_free(cf_tee *t);

/* Registers with the KMS: nonce, evidence bound to (our key, nonce), POST
 * /v1/registry/tees with the join token. Transport failures, 5xx, 409/410
 * (nonce used or expired) and 429 are retried with exponential back-off
 * (CF_TEE_REGISTER_BACKOFF_*) until timeout_s has passed; any other answer is
 * final. On success the KMS's id is the TEE id. */
int cf_tee_register(cf_tee *t, const char *join_token, uint64_t timeout_s) CF_WUR;

/* Adds the routes above. Only after cf_tee_register. */
int cf_tee_add_routes(cf_tee *t, cf_http_server *s) CF_WUR;

/* Borrowed. */
const char *cf_tee_id(const cf_tee *t);
const cf_bundle *cf_tee_bundle(const cf_tee *t);

/*
 * The checks on a job request before anything is asked of the KMS (the parsing
 * front of POST /v1/jobs/{job}): the envelope parses (cf_env_parse), its header
 * names this TEE (CF_E_INVAL), its job equals the URL's (CF_E_INVAL) and the
 * bundle has it (CF_E_NOT_FOUND). *ret borrows body.
 */
int cf_tee_request_check(const uint8_t *body, size_t len, const char *path_job,
                         const char *tee_id, const cf_bundle_manifest *m, cf_env *ret) CF_WUR;

#endif
