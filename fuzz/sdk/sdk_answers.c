/*
 * Fuzz target: what the SDK parses from the platform (src/sdk). The first byte
 * selects the parser, the rest is its input:
 *   0 session answer (cf_sdk_session_parse)      1 OTK answer (cf_sdk_otk_parse)
 *   2 token answer (cf_sdk_token_parse)          3 own JWT payload (cf_sdk_jwt_payload)
 *   4 HTTP error body, status from byte 1 (cf_sdk_http_error)
 *   5 EAR token (cf_sdk_verify_ear) against a fixed ES256 key, TEE key, nonce and
 *     time, so that seeds signed with that key reach the claim checks
 *   6 a JSON "expires_at" value (cf_sdk_parse_time)
 * Deterministic, no output, leak-free; bad input only returns.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/err.h"
#include "base/json.h"
#include "base/limits.h"
#include "crypto/jose.h"
#include "crypto/keys.h"
#include "sdk/sdk.h"

/* The seeds in fuzz/corpus/fuzz_sdk_answers/ that start with 5 are EAR tokens
 * signed with this P-256 scalar (big-endian) over claims naming tee_key, nonce,
 * FUZZ_MANIFEST_HASH and deployment "demo". */
static const uint8_t ear_scalar[32] = "coffer fuzz EAR key ............";
static const uint8_t tee_key[32] = "coffer fuzz TEE public key .....";
static const uint8_t nonce[32] = "coffer fuzz session nonce ......";
#define FUZZ_MANIFEST_HASH "sha256:00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
#define FUZZ_NOW 1700000000

static cf_jwks *jwks;

/* Kept for the whole run (reachable at exit). A failure here is a build bug. */
static void init_jwks(void)
{
    cf_key *k = NULL;

    if (jwks != NULL)
        return;
    if (cf_key_from_private(CF_KEY_P256, ear_scalar, sizeof(ear_scalar), &k) != 0 ||
        cf_jwks_new(&jwks) != 0 || cf_jwks_add(jwks, "fuzz", k) != 0)
        abort();
    cf_key_free(k);
}

static json_t *parse_object(const uint8_t *d, size_t n)
{
    json_t *v = NULL;
    return cf_json_parse_object(d, n, CF_JSON_MAX_BYTES, &v) == 0 ? v : NULL;
}

/* A NUL-terminated copy (the token parsers take C strings). */
static char *text(const uint8_t *d, size_t n)
{
    char *s = malloc(n + 1);
    if (s == NULL)
        abort();
    memcpy(s, d, n);
    s[n] = 0;
    return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *d;
    size_t n;
    json_t *v = NULL, *w = NULL;
    char *s = NULL;

    if (size < 1 || size > CF_JSON_MAX_BYTES)
        return 0;
    d = data + 1;
    n = size - 1;
    cf_sdk_begin();
    switch (data[0]) {
    case 0: {
        cf_sdk_session_answer a;
        if ((v = parse_object(d, n)) != NULL && cf_sdk_session_parse(v, &a) == 0 &&
            (a.tee_id[0] == 0 || a.ear == NULL || a.evidence == NULL))
            abort();
        break;
    }
    case 1: {
        cf_sdk_otk_answer a;
        if ((v = parse_object(d, n)) != NULL && cf_sdk_otk_parse(v, &a) == 0 &&
            (a.enc_len > sizeof(a.enc) || a.ct_len > sizeof(a.ct)))
            abort();
        break;
    }
    case 2: {
        cf_sdk_token_answer a;
        if ((v = parse_object(d, n)) != NULL && cf_sdk_token_parse(v, &a) == 0 &&
            (a.access_token[0] == 0 || a.principal[0] == 0))
            abort();
        break;
    }
    case 3:
        s = text(d, n);
        if (strlen(s) == n && cf_sdk_jwt_payload(s, &w) == 0 && !json_is_object(w))
            abort();
        break;
    case 4: {
        static const long statuses[] = {400, 401, 403, 404, 409, 410, 413, 429, 500, 502, 503, 504};
        cf_http_response r;
        if (n < 1)
            break;
        memset(&r, 0, sizeof(r));
        r.status = statuses[d[0] % (sizeof(statuses) / sizeof(statuses[0]))];
        memcpy(r.retry_after, "3", 2);
        cf_buf_view(&r.body, d + 1, n - 1);
        {
            int rc = cf_sdk_http_error(&r, "fuzz");
            if (rc >= 0 || cf_sdk_finish(rc) == COFFER_OK)
                abort(); /* an error answer is always an error */
        }
        break;
    }
    case 5: {
        int64_t exp = 0;
        init_jwks();
        s = text(d, n);
        if (strlen(s) == n && n <= CF_JWT_MAX_BYTES &&
            cf_sdk_verify_ear(jwks, FUZZ_MANIFEST_HASH, s, "demo", tee_key, nonce, FUZZ_NOW,
                              (n & 1) != 0, &exp) == 0 &&
            exp + CF_SDK_EAR_LEEWAY_S <= FUZZ_NOW)
            abort(); /* an accepted result is never expired */
        break;
    }
    case 6:
        if (cf_json_parse(d, n, 256, &v) == 0) {
            int64_t t;
            if (cf_sdk_parse_time(v, &t) == 0 && t <= 0)
                abort();
        }
        break;
    default:
        break;
    }
    json_decref(v);
    json_decref(w);
    free(s);
    return 0;
}
