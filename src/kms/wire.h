/*
 * The KMS's sealed messages for one-time keys (DESIGN.md §4-§5, steps 3 and 6;
 * docs/internals/kms.md "Wire formats"). All are HPKE (RFC 9180) mode auth with
 * CF_HPKE_SUITE_COFFER (X25519 / HKDF-SHA256 / AES-256-GCM), single shot
 * (sequence 0), enc = 32 bytes:
 *
 *   OTK issue      sender KMS release key -> recipient client key
 *                  info "coffer/v1 otk", aad "coffer/v1 otk|" || otk_id || "|" || tee_id,
 *                  plaintext = the 32-byte OTK
 *   release request  sender TEE key -> recipient KMS release key
 *                  info "coffer/v1 release request", aad = otk_id,
 *                  plaintext = compact JSON {"otk_id":..,"tee_id":..,"ts":<unix seconds>}
 *   release        sender KMS release key -> recipient TEE key
 *                  info "coffer/v1 otk release", aad = otk_id,
 *                  plaintext = exactly {"client_key":"<b64url>","otk":"<b64url>",
 *                  "otk_id":"..","tee_id":"..","tenant":".."} (compact, this key order)
 *
 * Both directions live here (the KMS side and the client / TEE side), so one
 * module defines the format and the tests exercise it end to end. The TEE
 * runtime and the SDK use the *_open / seal_release_request functions (or
 * reimplement them from the page above).
 *
 * Secrets: OTKs travel only in cf_secret / secret cf_buf memory; the release
 * plaintext is built and parsed in secret memory without a JSON library (which
 * would copy the OTK into ordinary heap).
 */
#ifndef COFFER_KMS_WIRE_H
#define COFFER_KMS_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/compiler.h"
#include "base/limits.h"
#include "crypto/hpke.h"

#define CF_KMS_INFO_OTK "coffer/v1 otk"
#define CF_KMS_AAD_OTK_PREFIX "coffer/v1 otk|"
#define CF_KMS_INFO_RELEASE_REQUEST "coffer/v1 release request"
#define CF_KMS_INFO_RELEASE "coffer/v1 otk release"
#define CF_KMS_X25519_LEN 32
#define CF_KMS_ENC_LEN 32

/* Ids on the wire: otk ids are "otk_" + 32 lowercase hex digits, TEE ids
 * "tee_" + 32 lowercase hex digits. */
#define CF_KMS_ID_HEX 32
#define CF_KMS_OTK_ID_LEN (4 + CF_KMS_ID_HEX)
#define CF_KMS_TEE_ID_LEN (4 + CF_KMS_ID_HEX)

/* true if s is prefix + CF_KMS_ID_HEX lowercase hex digits (prefix "otk_", "tee_", "jt_"). */
bool cf_kms_id_valid(const char *s, const char *prefix);
/* Tenant names as the access token carries them and the manifest allows:
 * 1..CF_ID_MAX_LEN of [A-Za-z0-9._-], starting with a letter or digit (safe to
 * place in JSON and audit resources without escaping). */
bool cf_kms_tenant_valid(const char *s);

/* A decoded release request. */
typedef struct {
    char otk_id[CF_KMS_OTK_ID_LEN + 1];
    char tee_id[CF_KMS_TEE_ID_LEN + 1];
    int64_t ts;
} cf_kms_release_request;

/* What the TEE receives. Keep it in secret memory (cf_secure_alloc) and wipe it. */
typedef struct {
    char otk_id[CF_KMS_OTK_ID_LEN + 1];
    char tee_id[CF_KMS_TEE_ID_LEN + 1];
    char tenant[CF_ID_MAX_LEN + 1];
    uint8_t otk[CF_KMS_OTK_LEN];
    uint8_t client_key[CF_KMS_X25519_LEN];
} cf_kms_released;

/* ---- OTK issue (KMS -> client) ---- */

/* KMS side: appends the ciphertext to ct; ret_enc receives CF_KMS_ENC_LEN bytes. */
int cf_kms_wire_seal_otk(const cf_hpke_key *release_sk, const cf_hpke_key *client_pk,
                         const char *otk_id, const char *tee_id, const uint8_t otk[CF_KMS_OTK_LEN],
                         uint8_t ret_enc[CF_KMS_ENC_LEN], cf_buf *ct) CF_WUR;
/* Client side: the OTK is appended to ret_otk (a secret buffer). CF_E_DECRYPT if
 * the message was not sealed by release_pk for this otk_id / tee_id. */
int cf_kms_wire_open_otk(const cf_hpke_key *client_sk, const cf_hpke_key *release_pk,
                         const char *otk_id, const char *tee_id, const uint8_t *enc, size_t enc_len,
                         const uint8_t *ct, size_t ct_len, cf_buf *ret_otk) CF_WUR;

/* ---- release request (TEE -> KMS) ---- */

/* TEE side: seals {"otk_id","tee_id","ts"}; appends the ciphertext to ct. */
int cf_kms_wire_seal_release_request(const cf_hpke_key *tee_sk, const cf_hpke_key *release_pk,
                                     const char *otk_id, const char *tee_id, int64_t ts,
                                     uint8_t ret_enc[CF_KMS_ENC_LEN], cf_buf *ct) CF_WUR;
/* KMS side: opens with pkS = the TEE's registered key (CF_E_DECRYPT if another
 * key sealed it, or for another otk_id) and parses the plaintext strictly. */
int cf_kms_wire_open_release_request(const cf_hpke_key *release_sk, const cf_hpke_key *tee_pk,
                                     const char *otk_id, const uint8_t *enc, size_t enc_len,
                                     const uint8_t *ct, size_t ct_len,
                                     cf_kms_release_request *ret) CF_WUR;
/* The plaintext parser alone (strict JSON object with exactly these three keys). */
int cf_kms_wire_parse_release_request(const uint8_t *pt, size_t len,
                                      cf_kms_release_request *ret) CF_WUR;

/* ---- release (KMS -> TEE) ---- */

/* KMS side: builds the plaintext in secret memory, seals it, wipes it. */
int cf_kms_wire_seal_release(const cf_hpke_key *release_sk, const cf_hpke_key *tee_pk,
                             const cf_kms_released *r, uint8_t ret_enc[CF_KMS_ENC_LEN],
                             cf_buf *ct) CF_WUR;
/* TEE side: opens (CF_E_DECRYPT unless sealed by release_pk for otk_id) and
 * parses into *ret (caller's secret memory); *ret is wiped on failure. */
int cf_kms_wire_open_release(const cf_hpke_key *tee_sk, const cf_hpke_key *release_pk,
                             const char *otk_id, const uint8_t *enc, size_t enc_len,
                             const uint8_t *ct, size_t ct_len, cf_kms_released *ret) CF_WUR;
/* The plaintext builder and parser alone (exact compact form, see above). */
int cf_kms_wire_build_release(const cf_kms_released *r, cf_buf *ret_pt) CF_WUR;
int cf_kms_wire_parse_release(const uint8_t *pt, size_t len, cf_kms_released *ret) CF_WUR;

#endif
