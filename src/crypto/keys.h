/*
 * Asymmetric keys the platform uses, over OpenSSL 3 EVP_PKEY:
 *   X25519          HPKE key agreement (RFC 7748)
 *   Ed25519         developer bundle signatures, tokens (RFC 8032, pure Ed25519)
 *   ECDSA P-256     EAR and access tokens (ES256), TDX quotes (FIPS 186-4, SHA-256)
 *   ECDSA P-384     SEV-SNP reports and VCEKs (FIPS 186-4, SHA-384)
 *
 * A cf_key is immutable once made and may be shared read-only between threads.
 * Every constructor validates the key: EC points must be on the named curve,
 * EC scalars in [1, n-1], keys with explicit curve parameters or of any other
 * type are refused (CF_E_UNSUPPORTED).
 *
 * Ownership: constructors hand a new cf_key to the caller, who releases it with
 * cf_key_free. Private key bytes leave this module only in secret memory
 * (cf_secret / secret cf_buf), which the caller wipes by freeing it.
 */
#ifndef COFFER_CRYPTO_KEYS_H
#define COFFER_CRYPTO_KEYS_H

#include <openssl/evp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/compiler.h"
#include "base/secmem.h"

typedef enum {
    CF_KEY_X25519 = 1,
    CF_KEY_ED25519 = 2,
    CF_KEY_P256 = 3,
    CF_KEY_P384 = 4,
} cf_key_type;

/* Encodings of a signature (only ECDSA has two; see cf_key_sign). */
typedef enum {
    CF_SIG_RAW = 0, /* fixed-length r || s, big-endian (RFC 7518 §3.4, IEEE P1363) */
    CF_SIG_DER = 1, /* DER ECDSA-Sig-Value SEQUENCE { r INTEGER, s INTEGER } (RFC 3279 §2.2.3) */
} cf_sig_format;

#define CF_X25519_LEN 32          /* public key, private key (RFC 7748 §5) */
#define CF_ED25519_LEN 32         /* public key, private seed (RFC 8032 §5.1.5) */
#define CF_ED25519_SIG_LEN 64
#define CF_P256_PUB_LEN 65        /* 0x04 || X || Y (SEC 1 §2.3.3, uncompressed) */
#define CF_P384_PUB_LEN 97
#define CF_P256_PRIV_LEN 32
#define CF_P384_PRIV_LEN 48
#define CF_P256_SIG_LEN 64        /* raw r || s */
#define CF_P384_SIG_LEN 96
#define CF_KEY_MAX_PUB_LEN CF_P384_PUB_LEN
#define CF_KEY_MAX_PRIV_LEN CF_P384_PRIV_LEN
#define CF_KEY_MAX_SIG_LEN 104    /* DER of a P-384 signature: 2 + 2 * (2 + 49) */
#define CF_KEY_THUMBPRINT_LEN 43  /* base64url of a SHA-256 digest, without NUL */

typedef struct cf_key cf_key;

/* "X25519", "Ed25519", "P-256", "P-384" (JOSE "crv" names); "?" for anything else. */
const char *cf_key_type_name(cf_key_type type);
/* Sizes for a type: raw public key, raw private key, raw (r||s) signature.
 * 0 where not applicable (X25519 does not sign) or for an unknown type. */
size_t cf_key_type_pub_len(cf_key_type type);
size_t cf_key_type_priv_len(cf_key_type type);
size_t cf_key_type_sig_len(cf_key_type type);

cf_key_type cf_key_get_type(const cf_key *k);
bool cf_key_has_private(const cf_key *k);
/* Borrowed: valid as long as k. For modules that need OpenSSL directly (HPKE, X.509);
 * do not modify it. Use EVP_PKEY_up_ref to keep it beyond k's lifetime. */
EVP_PKEY *cf_key_evp(const cf_key *k);

/* A new key pair from the private DRBG. */
int cf_key_generate(cf_key_type type, cf_key **ret) CF_WUR;
/* Wraps an existing EVP_PKEY (takes its own reference; the caller keeps theirs).
 * Refuses unsupported types and curves, and EC keys with explicit parameters. */
int cf_key_from_evp(EVP_PKEY *pkey, cf_key **ret) CF_WUR;
/* A new key holding only the public half of k. */
int cf_key_public_only(const cf_key *k, cf_key **ret) CF_WUR;
/* Releases k (and wipes its private part). NULL is accepted. */
void cf_key_free(cf_key *k);
/* 1 if a and b have the same type and the same public key, else 0. */
int cf_key_public_eq(const cf_key *a, const cf_key *b);

/* ---- raw forms ---- */
/* Public key: 32 bytes (X25519, Ed25519) or uncompressed SEC 1 point (65 / 97 bytes),
 * checked to lie on the curve. */
int cf_key_from_public(cf_key_type type, const uint8_t *pub, size_t len, cf_key **ret) CF_WUR;
/* Writes cf_key_type_pub_len(type) bytes to out (out_len must be at least that)
 * and sets *ret_len. */
int cf_key_export_public(const cf_key *k, uint8_t *out, size_t out_len, size_t *ret_len) CF_WUR;
/* Private key: the 32-byte X25519 / Ed25519 private key, or the big-endian EC
 * scalar of exactly 32 / 48 bytes (1 <= d < n). The public key is derived. */
int cf_key_from_private(cf_key_type type, const uint8_t *priv, size_t len, cf_key **ret) CF_WUR;
/* Exports the private key in the same form into new secret memory (*ret; the
 * caller frees it with cf_secret_free). CF_E_INVAL if k has no private part. */
int cf_key_export_private(const cf_key *k, cf_secret *ret) CF_WUR;

/* ---- PEM / DER ----
 * Import is strict: exactly one PEM block with the expected label ("PRIVATE KEY" =
 * unencrypted PKCS#8 (RFC 5208/5958), "PUBLIC KEY" = SubjectPublicKeyInfo
 * (RFC 5280 §4.1.2.7)), no PEM headers, nothing but whitespace after it, DER
 * without trailing bytes. A PEM of another label or key type is refused. */
int cf_key_from_private_pem(const char *pem, size_t len, cf_key **ret) CF_WUR;
int cf_key_from_public_pem(const char *pem, size_t len, cf_key **ret) CF_WUR;
int cf_key_from_spki_der(const uint8_t *der, size_t len, cf_key **ret) CF_WUR;
/* PKCS#8 PEM of the private key, appended to out, which must be a secret buffer
 * (cf_buf_init_secret); NUL-terminated. */
int cf_key_export_private_pem(const cf_key *k, cf_buf *out) CF_WUR;
/* SubjectPublicKeyInfo PEM, appended to out; NUL-terminated. */
int cf_key_export_public_pem(const cf_key *k, cf_buf *out) CF_WUR;
/* DER SubjectPublicKeyInfo, appended to out. */
int cf_key_export_spki_der(const cf_key *k, cf_buf *out) CF_WUR;

/* RFC 7638 JWK thumbprint (SHA-256 over the required public JWK members, in
 * lexicographic order; RFC 8037 §2 for OKP keys), base64url without padding:
 * out receives CF_KEY_THUMBPRINT_LEN characters and a NUL. Used as key id. */
int cf_key_thumbprint(const cf_key *k, char out[CF_KEY_THUMBPRINT_LEN + 1]) CF_WUR;

/* ---- signatures ----
 * Ed25519 is pure Ed25519 over the message (RFC 8032 §5.1.6); its 64-byte
 * signature has one encoding, which both formats denote. ECDSA hashes the
 * message with SHA-256 (P-256) or SHA-384 (P-384) (FIPS 186-4 §6.4; RFC 7518
 * §3.4). X25519 keys cannot sign (CF_E_UNSUPPORTED).
 *
 * cf_key_sign appends the signature to sig: raw form is exactly
 * cf_key_type_sig_len bytes; DER at most CF_KEY_MAX_SIG_LEN.
 * cf_key_verify returns 0 if the signature is valid, CF_E_SIGNATURE if it is not
 * (wrong length, non-canonical DER, r or s zero or >= n, wrong key or message). */
int cf_key_sign(const cf_key *k, cf_sig_format fmt, const uint8_t *msg, size_t len,
                cf_buf *sig) CF_WUR;
int cf_key_verify(const cf_key *k, cf_sig_format fmt, const uint8_t *msg, size_t len,
                  const uint8_t *sig, size_t sig_len) CF_WUR;

/* Converts an ECDSA signature between the two encodings for a P-256 / P-384 key
 * type, appending to out. Raw input must have the exact length; DER input must be
 * canonical; r and s must fit the curve size. */
int cf_sig_raw_to_der(cf_key_type type, const uint8_t *raw, size_t len, cf_buf *out) CF_WUR;
int cf_sig_der_to_raw(cf_key_type type, const uint8_t *der, size_t len, cf_buf *out) CF_WUR;

#endif
