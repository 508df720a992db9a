/*
 * Safe parsing and encoding of numbers and text (no atoi/strtol at call sites).
 * All decoders are strict: they reject whitespace, signs where none is
 * allowed, leading '+', overflow, non-canonical forms and trailing bytes.
 */
#ifndef COFFER_BASE_PARSE_H
#define COFFER_BASE_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/compiler.h"

/* Decimal unsigned integer, digits only, value <= max, no leading zeros (except "0"). */
int cf_parse_u64(const char *s, uint64_t max, uint64_t *ret) CF_WUR;
/* Decimal signed integer in [min, max]; optional leading '-'. */
int cf_parse_i64(const char *s, int64_t min, int64_t max, int64_t *ret) CF_WUR;
/* Durations like "90", "90s", "15m", "2h", "7d" -> seconds, <= max_seconds. */
int cf_parse_duration(const char *s, uint64_t max_seconds, uint64_t *ret) CF_WUR;

/* Lower-case hex. out must hold 2*n+1 bytes. */
void cf_hex_encode(const uint8_t *in, size_t n, char *out);
/* Decodes exactly out_len bytes from a hex string of length 2*out_len (either case). */
int cf_hex_decode(const char *s, uint8_t *out, size_t out_len) CF_WUR;
/* Decodes a hex string of any even length <= 2*max into a new buffer (appended to b). */
int cf_hex_decode_buf(const char *s, size_t max, cf_buf *b) CF_WUR;

/* base64url without padding (RFC 4648 §5), as used by JOSE. */
size_t cf_b64url_encoded_len(size_t n);
/* out must hold cf_b64url_encoded_len(n)+1 bytes; NUL-terminated. */
void cf_b64url_encode(const uint8_t *in, size_t n, char *out);
/* Appends decoded bytes to b. Rejects padding, '+', '/', whitespace and
 * non-canonical trailing bits. */
int cf_b64url_decode(const char *s, size_t slen, cf_buf *b) CF_WUR;
/* Encodes into a new malloc'd NUL-terminated string. */
char *cf_b64url_encode_alloc(const uint8_t *in, size_t n) CF_WUR;

/* Standard base64 with padding (RFC 4648 §4). */
size_t cf_b64_encoded_len(size_t n);
void cf_b64_encode(const uint8_t *in, size_t n, char *out);
int cf_b64_decode(const char *s, size_t slen, cf_buf *b) CF_WUR;

/* SPIFFE ID syntax (SPIFFE-ID spec §2) of the n bytes at id: "spiffe://", a trust
 * domain of [a-z0-9._-], then a required path of non-empty "/"-separated segments
 * of [A-Za-z0-9._-] other than "." and ".."; no query, fragment, port or user
 * info; at most CF_SPIFFE_ID_MAX_LEN bytes. Shared by the PKI and the mTLS server. */
bool cf_spiffe_id_valid(const char *id, size_t n);

/* Bounded strdup: NULL if s is longer than max or allocation fails. */
char *cf_strndup_max(const char *s, size_t max) CF_WUR;
/* snprintf that fails (CF_E_TOO_LARGE) instead of truncating. */
int cf_fmt(char *out, size_t size, const char *fmt, ...) CF_PRINTF(3, 4) CF_WUR;

#endif
