/*
 * Hashes, HMAC, HKDF (RFC 5869) and randomness over OpenSSL 3.
 */
#ifndef COFFER_CRYPTO_HASH_H
#define COFFER_CRYPTO_HASH_H

#include <stddef.h>
#include <stdint.h>

#include "base/compiler.h"

typedef enum { CF_SHA256 = 0, CF_SHA384 = 1, CF_SHA512 = 2 } cf_hash_alg;

#define CF_SHA256_LEN 32
#define CF_SHA384_LEN 48
#define CF_SHA512_LEN 64
#define CF_HASH_MAX_LEN 64

/* A scatter/gather part for hashing concatenations without copying. */
typedef struct {
    const void *p;
    size_t n;
} cf_iov;

size_t cf_hash_len(cf_hash_alg alg);
/* out receives cf_hash_len(alg) bytes: H(parts[0] || parts[1] || ...). */
int cf_hash(cf_hash_alg alg, const cf_iov *parts, size_t nparts, uint8_t *out) CF_WUR;
int cf_sha256(const void *d, size_t n, uint8_t out[CF_SHA256_LEN]) CF_WUR;
int cf_sha384(const void *d, size_t n, uint8_t out[CF_SHA384_LEN]) CF_WUR;
int cf_sha512(const void *d, size_t n, uint8_t out[CF_SHA512_LEN]) CF_WUR;

int cf_hmac(cf_hash_alg alg, const uint8_t *key, size_t key_len, const uint8_t *d, size_t n,
            uint8_t *out) CF_WUR;

/* RFC 5869 HKDF-Extract: prk receives cf_hash_len(alg) bytes. salt may be NULL/0. */
int cf_hkdf_extract(cf_hash_alg alg, const uint8_t *salt, size_t salt_len, const uint8_t *ikm,
                    size_t ikm_len, uint8_t *prk) CF_WUR;
/* RFC 5869 HKDF-Expand: out_len <= 255 * hash length. */
int cf_hkdf_expand(cf_hash_alg alg, const uint8_t *prk, size_t prk_len, const uint8_t *info,
                   size_t info_len, uint8_t *out, size_t out_len) CF_WUR;
/* Extract then expand. */
int cf_hkdf(cf_hash_alg alg, const uint8_t *salt, size_t salt_len, const uint8_t *ikm,
            size_t ikm_len, const uint8_t *info, size_t info_len, uint8_t *out,
            size_t out_len) CF_WUR;

/* Random bytes from the OpenSSL DRBG: cf_random for public values (nonces, ids),
 * cf_random_secret (private DRBG) for key material. */
int cf_random(void *out, size_t n) CF_WUR;
int cf_random_secret(void *out, size_t n) CF_WUR;

#endif
