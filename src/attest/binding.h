/*
 * Evidence binding (DESIGN.md §3 "Binding"): the 64-byte report_data of a TEE's
 * evidence commits to the TEE's public key and to a verifier-chosen nonce:
 *
 *   report_data = SHA-512("coffer/v1 evidence" || 0x00 || tee_public_key || nonce)
 *
 * tee_public_key is the key's wire encoding (for the HPKE X25519 key: the
 * 32-byte SerializePublicKey output, RFC 9180 §7.1.1). The nonce is exactly
 * CF_BINDING_NONCE_LEN random bytes; because it has a fixed length and comes
 * last, the concatenation is unambiguous for any key length.
 */
#ifndef COFFER_ATTEST_BINDING_H
#define COFFER_ATTEST_BINDING_H

#include <stddef.h>
#include <stdint.h>

#include "base/compiler.h"

#define CF_BINDING_NONCE_LEN 32
#define CF_BINDING_LEN 64 /* == SEV-SNP report_data, SHA-512 output */
#define CF_BINDING_LABEL "coffer/v1 evidence"

/* Computes the binding value. key_len must be 1..CF_TEE_KEY_MAX_LEN (limits.h).
 * ret is written only on success. */
int cf_binding_compute(const uint8_t *tee_public_key, size_t key_len,
                       const uint8_t nonce[CF_BINDING_NONCE_LEN],
                       uint8_t ret[CF_BINDING_LEN]) CF_WUR;

/* 0 if report_data equals the binding of (key, nonce), compared in constant
 * time; CF_E_VERIFY ("report_data does not bind key and nonce") otherwise;
 * CF_E_INVAL for a bad key length. */
int cf_binding_check(const uint8_t report_data[CF_BINDING_LEN], const uint8_t *tee_public_key,
                     size_t key_len, const uint8_t nonce[CF_BINDING_NONCE_LEN]) CF_WUR;

#endif
