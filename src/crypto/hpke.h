/*
 * HPKE, RFC 9180, built on OpenSSL 3.0 EVP primitives (OpenSSL 3.0 has no HPKE).
 *
 * Implemented:
 *   KEM   DHKEM(P-256, HKDF-SHA256) 0x0010, DHKEM(X25519, HKDF-SHA256) 0x0020
 *   KDF   HKDF-SHA256 1, HKDF-SHA384 2, HKDF-SHA512 3
 *   AEAD  AES-128-GCM 1, AES-256-GCM 2, ChaCha20-Poly1305 3, export-only 0xFFFF
 *   modes base, psk, auth, auth_psk (§5.1)
 * Coffer's own suite (DESIGN.md §5) is CF_HPKE_SUITE_COFFER: X25519 / HKDF-SHA256 / AES-256-GCM.
 *
 * Keys (cf_hpke_key) are opaque and belong to one KEM. A key holds a public key and
 * optionally the matching private key; a private key can be used wherever a public
 * key is expected. Private keys live in secret memory (base/secmem.h) and are wiped
 * by cf_hpke_key_free. The OpenSSL EVP_PKEY cached inside a key is cleansed by
 * OpenSSL when freed.
 *
 * Contexts (cf_hpke_ctx) are the RFC's ContextS / ContextR: a sender context can
 * seal and export, a receiver context can open and export. The key, base nonce,
 * exporter secret and sequence number live in secret memory and are wiped by
 * cf_hpke_ctx_free. Contexts are not thread-safe (the sequence number changes).
 *
 * Errors: CF_E_UNSUPPORTED (unknown kem/kdf/aead id), CF_E_INVAL (bad arguments,
 * wrong-length or invalid keys, §5.1 PSK rule violations, mismatched KEMs),
 * CF_E_DECRYPT (tag did not verify), CF_E_OVERFLOW (sequence number exhausted),
 * CF_E_RANGE (export length), CF_E_TOO_LARGE (info / psk / aad over a limit),
 * CF_E_CRYPTO (OpenSSL failure), CF_E_NOMEM. cf_err_detail() says which rule failed.
 */
#ifndef COFFER_CRYPTO_HPKE_H
#define COFFER_CRYPTO_HPKE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/compiler.h"

/* Algorithm identifiers, RFC 9180 §7 Tables 2, 3, 5. */
#define CF_HPKE_KEM_P256_SHA256 0x0010
#define CF_HPKE_KEM_X25519_SHA256 0x0020
#define CF_HPKE_KDF_HKDF_SHA256 0x0001
#define CF_HPKE_KDF_HKDF_SHA384 0x0002
#define CF_HPKE_KDF_HKDF_SHA512 0x0003
#define CF_HPKE_AEAD_AES128GCM 0x0001
#define CF_HPKE_AEAD_AES256GCM 0x0002
#define CF_HPKE_AEAD_CHACHA20POLY1305 0x0003
#define CF_HPKE_AEAD_EXPORT_ONLY 0xFFFF

/* Sizes over every implemented algorithm. */
#define CF_HPKE_MAX_PK 65    /* Npk = Nenc: 32 (X25519), 65 (P-256 uncompressed) */
#define CF_HPKE_MAX_ENC 65
#define CF_HPKE_SK_LEN 32    /* Nsk of both KEMs */
#define CF_HPKE_NN 12        /* Nn of every AEAD */
#define CF_HPKE_NT 16        /* Nt of every AEAD (0 for export-only, which cannot seal) */
#define CF_HPKE_MAX_NK 32
#define CF_HPKE_MAX_NH 64
#define CF_HPKE_MIN_PSK 32   /* §9.5: a PSK MUST have at least 32 bytes of entropy */

/* RFC 9180 §5 Table 1. */
typedef enum {
    CF_HPKE_MODE_BASE = 0,
    CF_HPKE_MODE_PSK = 1,
    CF_HPKE_MODE_AUTH = 2,
    CF_HPKE_MODE_AUTH_PSK = 3
} cf_hpke_mode;

typedef struct {
    uint16_t kem;
    uint16_t kdf;
    uint16_t aead;
} cf_hpke_suite;

#define CF_HPKE_SUITE_COFFER                                                             \
    ((cf_hpke_suite){CF_HPKE_KEM_X25519_SHA256, CF_HPKE_KDF_HKDF_SHA256,                  \
                     CF_HPKE_AEAD_AES256GCM})

/*
 * Everything that both sides must agree on, besides keys. Pointers are borrowed
 * for the duration of the call only. psk/psk_id: NULL/0 unless the mode is psk or
 * auth_psk (§5.1 VerifyPSKInputs); info may be NULL/0.
 */
typedef struct {
    cf_hpke_suite suite;
    cf_hpke_mode mode;
    const uint8_t *info;
    size_t info_len;   /* <= CF_HPKE_MAX_INFO */
    const uint8_t *psk;
    size_t psk_len;    /* CF_HPKE_MIN_PSK..CF_HPKE_MAX_PSK when present */
    const uint8_t *psk_id;
    size_t psk_id_len; /* 1..CF_HPKE_MAX_PSK_ID when present */
} cf_hpke_params;

typedef struct cf_hpke_key cf_hpke_key;
typedef struct cf_hpke_ctx cf_hpke_ctx;

/* 0 if every id of the suite is implemented, else CF_E_UNSUPPORTED with a detail. */
int cf_hpke_suite_check(const cf_hpke_suite *suite) CF_WUR;
/* Npk (= Nenc) of a KEM, 0 if the KEM is not implemented. */
size_t cf_hpke_kem_pk_len(uint16_t kem);

/* ---- keys (RFC 9180 §4, §7.1) ----------------------------------------------------
 * Every constructor returns a new key in *ret that the caller frees with
 * cf_hpke_key_free; *ret is untouched on failure. */

/* GenerateKeyPair: DeriveKeyPair over Nsk fresh bytes from the private DRBG. */
int cf_hpke_key_generate(uint16_t kem, cf_hpke_key **ret) CF_WUR;
/* DeriveKeyPair (§7.1.3); ikm_len in CF_HPKE_SK_LEN..CF_HPKE_MAX_IKM. P-256 uses the
 * rejection-sampling loop (bitmask 0xff) and fails after 256 candidates. */
int cf_hpke_key_derive(uint16_t kem, const uint8_t *ikm, size_t ikm_len,
                       cf_hpke_key **ret) CF_WUR;
/* DeserializePublicKey (§7.1.1) with §7.1.4 validation: exact length; P-256 must be
 * an uncompressed (0x04) point on the curve, not the identity. X25519 public keys
 * of small order are caught when used (all-zero DH output). */
int cf_hpke_key_from_public(uint16_t kem, const uint8_t *pk, size_t pk_len,
                            cf_hpke_key **ret) CF_WUR;
/* DeserializePrivateKey (§7.1.2): X25519 input is clamped; a P-256 scalar must be in
 * [1, order-1]. The public key is computed. */
int cf_hpke_key_from_private(uint16_t kem, const uint8_t *sk, size_t sk_len,
                             cf_hpke_key **ret) CF_WUR;
/* A new public-only key with the public half of k. */
int cf_hpke_key_public_only(const cf_hpke_key *k, cf_hpke_key **ret) CF_WUR;
/* SerializePublicKey (§7.1.1): borrowed pointer to the encoded public key, valid
 * until the key is freed; *ret_len receives Npk. */
const uint8_t *cf_hpke_key_pub(const cf_hpke_key *k, size_t *ret_len);
/* SerializePrivateKey (§7.1.2, X25519 output clamped) into out[CF_HPKE_SK_LEN].
 * out is a secret: keep it in secret memory and wipe it. CF_E_INVAL for a public key. */
int cf_hpke_key_priv(const cf_hpke_key *k, uint8_t out[CF_HPKE_SK_LEN]) CF_WUR;
uint16_t cf_hpke_key_kem(const cf_hpke_key *k);
bool cf_hpke_key_has_private(const cf_hpke_key *k);
/* Wipes and frees. NULL is accepted. */
void cf_hpke_key_free(cf_hpke_key *k);

/* ---- contexts (RFC 9180 §5) ---------------------------------------------------- */

/*
 * SetupBaseS / SetupPSKS / SetupAuthS / SetupAuthPSKS by p->mode. pkR: recipient
 * key (public or private) of p->suite.kem. skS: sender private key in auth modes,
 * NULL otherwise. On success ret_enc[0..*ret_enc_len) holds enc (Nenc bytes) and
 * *ret_ctx a new sender context (free with cf_hpke_ctx_free).
 */
int cf_hpke_setup_sender(const cf_hpke_params *p, const cf_hpke_key *pkR,
                         const cf_hpke_key *skS, uint8_t ret_enc[CF_HPKE_MAX_ENC],
                         size_t *ret_enc_len, cf_hpke_ctx **ret_ctx) CF_WUR;
/*
 * SetupBaseR / SetupPSKR / SetupAuthR / SetupAuthPSKR by p->mode. enc must be
 * exactly Nenc bytes. skR: recipient private key. pkS: sender public key in auth
 * modes, NULL otherwise. On success *ret_ctx is a new receiver context.
 */
int cf_hpke_setup_receiver(const cf_hpke_params *p, const uint8_t *enc, size_t enc_len,
                           const cf_hpke_key *skR, const cf_hpke_key *pkS,
                           cf_hpke_ctx **ret_ctx) CF_WUR;

/*
 * ContextS.Seal (§5.2): encrypts pt with nonce = base_nonce XOR I2OSP(seq, Nn), then
 * increments seq. ct must hold pt_len + CF_HPKE_NT bytes (ct_size); *ret_ct_len
 * receives that length. CF_E_OVERFLOW once the sequence number is exhausted;
 * CF_E_UNSUPPORTED for the export-only AEAD; CF_E_INVAL on a receiver context.
 * pt and ct must not overlap.
 */
int cf_hpke_seal(cf_hpke_ctx *ctx, const uint8_t *aad, size_t aad_len, const uint8_t *pt,
                 size_t pt_len, uint8_t *ct, size_t ct_size, size_t *ret_ct_len) CF_WUR;
/*
 * ContextR.Open (§5.2): pt must hold ct_len - CF_HPKE_NT bytes (pt_size) and should
 * be secret memory. On success *ret_pt_len is set and seq incremented; on any
 * failure pt is wiped, seq is unchanged and CF_E_DECRYPT means the tag (or aad,
 * key, nonce) did not verify.
 */
int cf_hpke_open(cf_hpke_ctx *ctx, const uint8_t *aad, size_t aad_len, const uint8_t *ct,
                 size_t ct_len, uint8_t *pt, size_t pt_size, size_t *ret_pt_len) CF_WUR;
/* cf_hpke_open with the tag given separately: ct is the ct_len bytes before the tag
 * and pt receives ct_len bytes. pt may equal ct (in-place decryption; no other
 * overlap). Same failure behaviour: pt wiped, seq unchanged. */
int cf_hpke_open_detached(cf_hpke_ctx *ctx, const uint8_t *aad, size_t aad_len,
                          const uint8_t *ct, size_t ct_len, const uint8_t tag[CF_HPKE_NT],
                          uint8_t *pt) CF_WUR;
/* Context.Export (§5.3): out[0..L) = LabeledExpand(exporter_secret, "sec",
 * exporter_context, L); 1 <= L <= 255 * Nh; exporter_context <= CF_HPKE_MAX_INFO. */
int cf_hpke_export(const cf_hpke_ctx *ctx, const uint8_t *exporter_context,
                   size_t exporter_context_len, uint8_t *out, size_t L) CF_WUR;
/* The suite of a context. */
cf_hpke_suite cf_hpke_ctx_suite(const cf_hpke_ctx *ctx);
/* Wipes and frees. NULL is accepted. */
void cf_hpke_ctx_free(cf_hpke_ctx *ctx);

/* ---- single-shot API (RFC 9180 §6) ---------------------------------------------
 * Setup + one Seal/Open. enc goes to ret_enc (as for cf_hpke_setup_sender); the
 * ciphertext is appended to ct, the plaintext to pt (which must be a
 * cf_buf_init_secret buffer, else CF_E_INVAL). On failure the buffers' contents are
 * as before the call. */
int cf_hpke_seal_once(const cf_hpke_params *p, const cf_hpke_key *pkR, const cf_hpke_key *skS,
                      const uint8_t *aad, size_t aad_len, const uint8_t *pt, size_t pt_len,
                      uint8_t ret_enc[CF_HPKE_MAX_ENC], size_t *ret_enc_len, cf_buf *ct) CF_WUR;
int cf_hpke_open_once(const cf_hpke_params *p, const uint8_t *enc, size_t enc_len,
                      const cf_hpke_key *skR, const cf_hpke_key *pkS, const uint8_t *aad,
                      size_t aad_len, const uint8_t *ct, size_t ct_len, cf_buf *pt) CF_WUR;

/* ---- TEST-ONLY hooks -----------------------------------------------------------
 * For the RFC 9180 Appendix A vectors and for overflow tests. They break HPKE's
 * security if used in production (a chosen ephemeral key, a rewound counter) and
 * must only be called from tests/ and fuzz/. */

/* Intermediate values of a setup (§4.1, §5.1). Lengths are the suite's. */
typedef struct {
    uint8_t shared_secret[32];
    size_t shared_secret_len;
    uint8_t key_schedule_context[1 + 2 * CF_HPKE_MAX_NH];
    size_t key_schedule_context_len;
    uint8_t secret[CF_HPKE_MAX_NH];
    size_t secret_len;
    uint8_t key[CF_HPKE_MAX_NK];
    size_t key_len;
    uint8_t base_nonce[CF_HPKE_NN];
    size_t base_nonce_len;
    uint8_t exporter_secret[CF_HPKE_MAX_NH];
    size_t exporter_secret_len;
} cf_hpke_trace;

/* TEST ONLY: cf_hpke_setup_sender with the ephemeral key skE instead of a fresh one;
 * trace (may be NULL) receives the intermediate values. */
int cf_hpke_test_setup_sender(const cf_hpke_params *p, const cf_hpke_key *pkR,
                              const cf_hpke_key *skS, const cf_hpke_key *skE,
                              uint8_t ret_enc[CF_HPKE_MAX_ENC], size_t *ret_enc_len,
                              cf_hpke_ctx **ret_ctx, cf_hpke_trace *trace) CF_WUR;
/* TEST ONLY: cf_hpke_setup_receiver that also fills trace (may be NULL). */
int cf_hpke_test_setup_receiver(const cf_hpke_params *p, const uint8_t *enc, size_t enc_len,
                                const cf_hpke_key *skR, const cf_hpke_key *pkS,
                                cf_hpke_ctx **ret_ctx, cf_hpke_trace *trace) CF_WUR;
/* TEST ONLY: sets the sequence number (e.g. 255, 256, or UINT64_MAX - 1 to reach
 * the overflow). */
void cf_hpke_test_set_seq(cf_hpke_ctx *ctx, uint64_t seq);
/* TEST ONLY: the nonce the next seal/open will use (§5.2 ComputeNonce). */
void cf_hpke_test_nonce(const cf_hpke_ctx *ctx, uint8_t out[CF_HPKE_NN]);
/* TEST ONLY: the raw sk of DeriveKeyPair (§7.1.3) before X25519 clamping, as printed
 * in the RFC's vectors (skRm, skEm, skSm). */
int cf_hpke_test_derive_sk(uint16_t kem, const uint8_t *ikm, size_t ikm_len,
                           uint8_t out[CF_HPKE_SK_LEN]) CF_WUR;

#endif
