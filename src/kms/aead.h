/*
 * AES-256-GCM over OpenSSL EVP, and the self-describing wrapped-value format
 * of the KMS (docs/internals/kms-keys.md).
 *
 * AEAD. cf_aead_seal draws a fresh random 96-bit nonce for every message (the
 * RBG-based construction of NIST SP 800-38D §8.2.2) and appends
 * nonce(12) || ciphertext || tag(16). cf_aead_open authenticates before it
 * releases a single byte: it decrypts into private secret memory, checks the
 * tag (EVP_DecryptFinal_ex), and only then appends the plaintext to `out`.
 * With random nonces one key must seal fewer than 2^32 messages (SP 800-38D
 * §8.3); tenant keys are rotated long before that (kms-keys.md, "Limits").
 *
 * WRAPPED VALUE ("CFW1"), all integers big-endian:
 *     "CFW1" || u32 key version || nonce(12) || ciphertext || tag(16)
 * The first 8 bytes (magic and version) are the header; callers bind them into
 * the AAD, so a value cannot be relabelled with another version.
 * cf_wrapped_parse is strict: exact magic, version in 1..CF_KMS_MAX_KEY_VERSION,
 * at least an empty ciphertext plus tag, at most CF_KMS_MAX_WRAPPED bytes.
 */
#ifndef COFFER_KMS_AEAD_H
#define COFFER_KMS_AEAD_H

#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/compiler.h"

#define CF_AEAD_KEY_LEN 32
#define CF_AEAD_NONCE_LEN 12
#define CF_AEAD_TAG_LEN 16
#define CF_AEAD_OVERHEAD (CF_AEAD_NONCE_LEN + CF_AEAD_TAG_LEN)
/* Largest plaintext cf_aead_seal/open accept (a bound for int-sized EVP calls). */
#define CF_AEAD_MAX_INPUT (16u << 20)

#define CF_WRAPPED_MAGIC "CFW1"
#define CF_WRAPPED_HEADER_LEN 8 /* magic + u32 version */

/* Seals pt under key and appends nonce || ct || tag to out. aad may be NULL
 * when aad_len is 0; pt may be NULL when pt_len is 0. On failure out is left
 * as it was. */
int cf_aead_seal(const uint8_t key[CF_AEAD_KEY_LEN], const uint8_t *aad, size_t aad_len,
                 const uint8_t *pt, size_t pt_len, cf_buf *out) CF_WUR;

/* Opens nonce || ct || tag and appends the plaintext to out (which should be a
 * secret buffer). CF_E_DECRYPT if the input is too short or the tag does not
 * verify (wrong key, AAD or data); nothing is appended then. */
int cf_aead_open(const uint8_t key[CF_AEAD_KEY_LEN], const uint8_t *aad, size_t aad_len,
                 const uint8_t *in, size_t in_len, cf_buf *out) CF_WUR;

/* A parsed wrapped value. Pointers borrow the input passed to cf_wrapped_parse. */
typedef struct {
    uint32_t version;
    const uint8_t *header; /* CF_WRAPPED_HEADER_LEN bytes: bind into the AAD */
    const uint8_t *body;   /* nonce || ct || tag, for cf_aead_open */
    size_t body_len;
} cf_wrapped;

/* Parses a wrapped value strictly (see above); CF_E_PARSE / CF_E_TRUNCATED /
 * CF_E_TOO_LARGE / CF_E_RANGE with a precise detail. ret is written only on success. */
int cf_wrapped_parse(const uint8_t *in, size_t in_len, cf_wrapped *ret) CF_WUR;

/* Appends the header "CFW1" || u32 version to out. */
int cf_wrapped_put_header(cf_buf *out, uint32_t version) CF_WUR;

#endif
