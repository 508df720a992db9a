/*
 * The request envelope (CFE1) and its response (CFR1): DESIGN.md §5 steps 4 and 8.
 *
 * Request, all integers big-endian:
 *
 *   "CFE1" | u32 header_len | header (header_len bytes) | nonce (12) | ct | tag (16)
 *
 *   header  compact JSON object with exactly the fields
 *           v (integer, 1), request_id, tenant, tee_id, otk_id, job (strings),
 *           client_key, enc (base64url without padding, 32 bytes each).
 *           The exact header bytes are the AAD of both layers.
 *   ct, tag everything after the nonce except the last 16 bytes is the outer
 *           ciphertext ct; the last 16 bytes are the outer tag. There is no
 *           separate length: the total length implies it, and any extra or missing
 *           byte makes the outer tag fail.
 *   outer   AES-256-GCM(key = HKDF-SHA256(salt = SHA-256(client public key),
 *           ikm = OTK, info = "coffer/v1 outer", L = 32), nonce, aad = header)
 *           over the inner ciphertext.
 *   inner   HPKE (RFC 9180) mode auth, DHKEM(X25519, HKDF-SHA256) / HKDF-SHA256 /
 *           AES-256-GCM, sender = client key, recipient = TEE key,
 *           info = "coffer/v1 request", aad = header, sequence 0; plaintext = the
 *           data. enc travels in the header. So ct is len(data) + 16 bytes long.
 *
 * Response:
 *
 *   "CFR1" | nonce (12) | ct | tag (16)
 *
 *   AES-256-GCM(key = HPKE export of the request's inner context with
 *   exporter_context "coffer/v1 response", L = 32; aad = "CFR1" | request_id)
 *   over status (1 byte, 0 = ok) | output.
 *
 * Header strings (request_id, tenant, tee_id, otk_id, job) are 1..CF_ID_MAX_LEN
 * (job: CF_NAME_MAX_LEN) bytes of visible ASCII 0x21..0x7e: no spaces, control
 * characters or non-ASCII, so they are safe to log and to compare byte-wise.
 */
#ifndef COFFER_PROTO_ENVELOPE_H
#define COFFER_PROTO_ENVELOPE_H

#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/compiler.h"
#include "base/limits.h"
#include "crypto/hpke.h"

#define CF_ENV_MAGIC "CFE1"
#define CF_ENV_RESPONSE_MAGIC "CFR1"
#define CF_ENV_MAGIC_LEN 4
#define CF_ENV_VERSION 1
#define CF_ENV_OTK_LEN 32
#define CF_ENV_KEY_LEN 32   /* X25519 public key and HPKE enc */
#define CF_ENV_NONCE_LEN 12
#define CF_ENV_TAG_LEN 16
#define CF_ENV_INFO "coffer/v1 request"
#define CF_ENV_OUTER_INFO "coffer/v1 outer"
#define CF_ENV_RESPONSE_EXPORT "coffer/v1 response"

/* Response status byte. Other values are failures defined by the TEE runtime. */
#define CF_ENV_STATUS_OK 0

/* The ids a client puts in a request (borrowed strings). */
typedef struct {
    const char *request_id;
    const char *tenant;
    const char *tee_id;
    const char *otk_id;
    const char *job;
} cf_env_ids;

/* A decoded header (v is always CF_ENV_VERSION once parsed). */
typedef struct {
    char request_id[CF_ID_MAX_LEN + 1];
    char tenant[CF_ID_MAX_LEN + 1];
    char tee_id[CF_ID_MAX_LEN + 1];
    char otk_id[CF_ID_MAX_LEN + 1];
    char job[CF_NAME_MAX_LEN + 1];
    uint8_t client_key[CF_ENV_KEY_LEN];
    uint8_t enc[CF_ENV_KEY_LEN];
} cf_env_header;

/* A parsed envelope. The pointers borrow the bytes given to cf_env_parse and are
 * valid as long as those bytes are. */
typedef struct {
    cf_env_header hdr;
    const uint8_t *header; /* exact header bytes: the AAD of both layers */
    size_t header_len;
    const uint8_t *nonce;  /* CF_ENV_NONCE_LEN bytes */
    const uint8_t *ct;     /* outer ciphertext */
    size_t ct_len;         /* >= CF_HPKE_NT (the inner tag) */
    const uint8_t *tag;    /* CF_ENV_TAG_LEN bytes */
} cf_env;

/*
 * Client side (DESIGN.md §5 step 4). Seals data (<= CF_ENV_MAX_PAYLOAD bytes) for
 * the TEE: ids are validated as described above, client_key is the client's X25519
 * private key (the HPKE auth sender), tee_key the TEE's attested X25519 public key,
 * otk the one-time key the KMS released. The envelope is appended to out. On
 * success *ret_ctx (if ret_ctx is not NULL) is the inner HPKE context, which the
 * client keeps to open the response and frees with cf_hpke_ctx_free. On failure
 * out is as before and *ret_ctx untouched.
 */
int cf_env_seal(const cf_env_ids *ids, const uint8_t otk[CF_ENV_OTK_LEN],
                const cf_hpke_key *client_key, const cf_hpke_key *tee_key, const uint8_t *data,
                size_t data_len, cf_buf *out, cf_hpke_ctx **ret_ctx) CF_WUR;

/*
 * Parses untrusted bytes (gateway and TEE). Checks: total <= CF_ENV_MAX_BYTES,
 * magic, 0 < header_len <= CF_ENV_MAX_HEADER, the header is one JSON object with
 * exactly the known fields (no duplicates), v == 1 (else CF_E_UNSUPPORTED), the
 * strings as described above, client_key and enc exactly 32 bytes, a nonce, an
 * outer ciphertext of at least CF_HPKE_NT bytes and a tag. Nothing is decrypted.
 * Errors: CF_E_TOO_LARGE, CF_E_PARSE, CF_E_TRUNCATED, CF_E_UNSUPPORTED (with a
 * cf_err_detail). *ret is written only on success.
 */
int cf_env_parse(const uint8_t *data, size_t len, cf_env *ret) CF_WUR;

/*
 * TEE side (DESIGN.md §5 step 7). client_key is the client public key that the
 * KMS released with the OTK; the header's client_key must equal it (constant
 * time; else CF_E_UNAUTHENTICATED). The outer tag is verified before the inner
 * layer is touched; then the inner HPKE layer is opened with tee_key (the TEE's
 * private key) and client_key as the authenticated sender. Any failed tag is
 * CF_E_DECRYPT. The data is appended to out, which must be a cf_buf_init_secret
 * buffer (else CF_E_INVAL); *ret_ctx (if not NULL) receives the inner receiver
 * context for cf_env_response_seal. On failure out is as before.
 */
int cf_env_open(const cf_env *env, const uint8_t otk[CF_ENV_OTK_LEN], const cf_hpke_key *tee_key,
                const cf_hpke_key *client_key, cf_buf *out, cf_hpke_ctx **ret_ctx) CF_WUR;

/*
 * TEE side (DESIGN.md §5 step 8): appends the CFR1 response carrying status and
 * output (<= CF_ENV_MAX_PAYLOAD bytes) to out. ctx is the context from
 * cf_env_open, request_id the request's id. On failure out is as before.
 */
int cf_env_response_seal(const cf_hpke_ctx *ctx, const char *request_id, uint8_t status,
                         const uint8_t *output, size_t output_len, cf_buf *out) CF_WUR;

/*
 * Client side: opens a CFR1 response with the context from cf_env_seal. Checks the
 * size bound (CF_E_TOO_LARGE), the magic (CF_E_PARSE), the length (CF_E_TRUNCATED),
 * then the tag, whose AAD binds request_id (CF_E_DECRYPT for a response to another
 * request or any altered byte). Only then are *ret_status set and the output
 * appended to out, which must be a cf_buf_init_secret buffer (else CF_E_INVAL). A non-zero status is not an
 * error of this function: the caller decides what it means.
 */
int cf_env_response_open(const cf_hpke_ctx *ctx, const char *request_id, const uint8_t *resp,
                         size_t resp_len, uint8_t *ret_status, cf_buf *out) CF_WUR;

#endif
