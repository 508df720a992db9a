/*
 * What the TEE runtime sends to and reads from the KMS (DESIGN.md §5 step 6,
 * §6 "KMS ... registry"; docs/internals/tee.md "KMS protocol"). Pure codecs:
 * no network, so that they can be tested against an independent KMS side and
 * fuzzed.
 *
 * Registry
 *   POST /v1/registry/nonce           -> {"nonce": 64 hex, "expires_at": ...}
 *   POST /v1/registry/tees {"join_token", "nonce", "public_key": base64url X25519,
 *        "evidence": {"platform": "sev-snp", "report": base64url, "cert": base64url}}
 *                                     -> 201 {"id", ...}
 *   The report's report_data is cf_binding_compute(public_key, nonce).
 *
 * OTK release
 *   POST /v1/kms/otk/{otk_id}/release {"tee_id", "enc", "ct"}
 *     enc, ct: HPKE (RFC 9180) mode auth, CF_HPKE_SUITE_COFFER, sender = the TEE's
 *     X25519 key, recipient = the KMS release key, info = "coffer/v1 release
 *     request", aad = otk_id, plaintext = compact JSON {"otk_id","tee_id","ts"}
 *     (ts: unix seconds).
 *   200 {"enc", "ct"}: HPKE mode auth, sender = the KMS release key (the TEE
 *     checks it against the key it was configured with), recipient = the TEE key,
 *     info = "coffer/v1 otk release", aad = otk_id, plaintext = compact JSON
 *     {"otk_id", "otk" (base64url, 32 bytes), "tenant", "client_key" (base64url,
 *     32 bytes), "tee_id"}.
 *   409 already released, 410 expired, 403 TEE not active or quarantined.
 *
 * Parsers of KMS answers are strict: exactly the listed fields.
 */
#ifndef COFFER_TEE_KMSWIRE_H
#define COFFER_TEE_KMSWIRE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "attest/binding.h"
#include "attest/provider.h"
#include "base/buf.h"
#include "base/compiler.h"
#include "base/limits.h"
#include "base/secmem.h"
#include "crypto/hpke.h"

#define CF_TEE_RELEASE_REQUEST_INFO "coffer/v1 release request"
#define CF_TEE_RELEASE_ANSWER_INFO "coffer/v1 otk release"
#define CF_TEE_PLATFORM_SNP "sev-snp"
#define CF_TEE_OTK_LEN 32
#define CF_TEE_KEY_LEN 32 /* X25519 public key */

/* 1 if s is an id as the envelope header carries them: 1..CF_ID_MAX_LEN bytes of
 * visible ASCII (0x21..0x7e). */
int cf_tee_id_valid(const char *s);

/* {"nonce": 64 hex, ...} (other fields ignored: expires_at is the KMS's). */
int cf_tee_nonce_answer_parse(const uint8_t *body, size_t len,
                              uint8_t ret_nonce[CF_BINDING_NONCE_LEN]) CF_WUR;
/* The evidence object {"platform":"sev-snp","report":...,"cert":...} ("cert"
 * omitted when the platform gave none). Caller owns *ret. */
int cf_tee_evidence_json(const cf_provider_evidence *ev, json_t **ret) CF_WUR;
/* The registration body, appended to out, which must be a secret buffer: it
 * carries the join token. */
int cf_tee_register_body(const char *join_token, const uint8_t nonce[CF_BINDING_NONCE_LEN],
                         const uint8_t *public_key, size_t key_len,
                         const cf_provider_evidence *ev, const char *endpoint, cf_buf *out) CF_WUR;
/* {"id": TEE id, ...}: the id (cf_tee_id_valid) into ret_id. */
int cf_tee_register_answer_parse(const uint8_t *body, size_t len,
                                 char ret_id[CF_ID_MAX_LEN + 1]) CF_WUR;

/* The release request body {"tee_id","enc","ct"}, appended to out. tee_key: our
 * private key; kms_key: the pinned release key. */
int cf_tee_release_request(const cf_hpke_key *tee_key, const cf_hpke_key *kms_key,
                           const char *otk_id, const char *tee_id, int64_t ts,
                           cf_buf *out) CF_WUR;

/* What the KMS released with an OTK. otk is secret memory: clear with
 * cf_tee_release_clear. */
typedef struct {
    cf_secret otk;                        /* CF_TEE_OTK_LEN bytes */
    char tenant[CF_ID_MAX_LEN + 1];
    uint8_t client_key[CF_TEE_KEY_LEN];   /* the client's X25519 public key */
} cf_tee_release;

void cf_tee_release_clear(cf_tee_release *r);

/*
 * Opens the KMS's 200 answer: JSON {"enc","ct"}, then HPKE open (auth mode:
 * only the holder of the pinned KMS key can have sealed it; CF_E_DECRYPT
 * otherwise), then cf_tee_release_plaintext_parse. *ret only on success.
 */
int cf_tee_release_answer_open(const cf_hpke_key *tee_key, const cf_hpke_key *kms_key,
                               const char *otk_id, const char *tee_id, const uint8_t *body,
                               size_t len, cf_tee_release *ret) CF_WUR;
/*
 * The sealed plaintext: exactly {"otk_id","otk","tenant","client_key","tee_id"};
 * otk_id and tee_id must equal what was asked (CF_E_VERIFY otherwise: an answer
 * for another request or another TEE), otk and client_key 32 bytes, tenant an
 * id. *ret only on success.
 */
int cf_tee_release_plaintext_parse(const uint8_t *pt, size_t len, const char *otk_id,
                                   const char *tee_id, cf_tee_release *ret) CF_WUR;

/* Makes jansson wipe every block it frees (malloc_usable_size + cf_wipe): JSON in
 * the TEE carries OTKs and join tokens. Process-wide; call once at start-up
 * before any JSON is made. */
void cf_tee_json_wipe_on_free(void);

#endif
