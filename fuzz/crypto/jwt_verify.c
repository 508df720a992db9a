/*
 * Fuzz target: arbitrary bytes as a compact JWS / JWT.
 *
 * 1. The input is verified as it is against a fixed P-256 key and against a
 *    fixed JWK Set (kids "p256", "p384", "ed"), as a JWT and as a bare JWS.
 *    Random inputs almost never carry a valid signature, so this covers the
 *    splitting, base64url, header and key-selection code.
 * 2. So that the claim checks are reached too, the input's first two segments
 *    are re-signed with the fixed Ed25519 key (Ed25519 is deterministic, so the
 *    run stays reproducible) and verified again with strict options.
 *
 * The keys are fixed scalars so that seed tokens can be produced offline.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/limits.h"
#include "base/parse.h"
#include "crypto/jose.h"
#include "crypto/keys.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static cf_key *p256, *ed;
static cf_jwks *set;

static void init(void)
{
    uint8_t d[48];
    cf_key *p384 = NULL;

    if (set != NULL)
        return;
    memset(d, 0x11, 32);
    if (cf_key_from_private(CF_KEY_P256, d, 32, &p256) != 0)
        abort();
    memset(d, 0x22, 32);
    if (cf_key_from_private(CF_KEY_ED25519, d, 32, &ed) != 0)
        abort();
    memset(d, 0x33, 48);
    if (cf_key_from_private(CF_KEY_P384, d, 48, &p384) != 0 || cf_jwks_new(&set) != 0 ||
        cf_jwks_add(set, "p256", p256) != 0 || cf_jwks_add(set, "p384", p384) != 0 ||
        cf_jwks_add(set, "ed", ed) != 0)
        abort();
    cf_key_free(p384);
}

static void verify_all(const char *tok, size_t len, const cf_key *key,
                       const cf_jwt_verify_opts *o)
{
    json_t *claims = NULL, *hdr = NULL;
    cf_buf payload;

    if (cf_jwt_verify(tok, len, key, NULL, o, &claims) == 0) {
        if (!json_is_object(claims))
            abort();
        json_decref(claims);
        claims = NULL;
    }
    if (cf_jwt_verify(tok, len, NULL, set, o, &claims) == 0) {
        if (!json_is_object(claims))
            abort();
        json_decref(claims);
    }
    cf_buf_init(&payload, CF_JWT_MAX_BYTES);
    if (cf_jws_verify(tok, len, key, NULL, &hdr, &payload) == 0) {
        if (!json_is_object(hdr))
            abort();
        json_decref(hdr);
    }
    cf_buf_free(&payload);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const cf_jwt_verify_opts loose = {.now = 1700000000, .leeway = 60, .allow_missing_exp = true};
    const cf_jwt_verify_opts strict = {
        .typ = "JWT", .now = 1700000000, .iss = "coffer-iam", .aud = "coffer-kms"};
    const uint8_t *dot1, *dot2 = NULL;
    cf_buf tok, sig;
    char *s64;

    init();
    verify_all((const char *)data, size, p256, &loose);
    verify_all((const char *)data, size, p256, &strict);

    /* Re-sign "<header>.<payload>" of the input with the Ed25519 key. */
    dot1 = memchr(data, '.', size);
    if (dot1 != NULL)
        dot2 = memchr(dot1 + 1, '.', size - (size_t)(dot1 + 1 - data));
    if (dot2 == NULL || (size_t)(dot2 - data) > CF_JWT_MAX_BYTES - 128)
        return 0;
    cf_buf_init(&tok, CF_JWT_MAX_BYTES);
    cf_buf_init(&sig, CF_KEY_MAX_SIG_LEN);
    if (cf_buf_put(&tok, data, (size_t)(dot2 - data)) == 0 &&
        cf_key_sign(ed, CF_SIG_RAW, tok.data, tok.len, &sig) == 0 &&
        (s64 = cf_b64url_encode_alloc(sig.data, sig.len)) != NULL) {
        if (cf_buf_put_u8(&tok, '.') == 0 && cf_buf_put_str(&tok, s64) == 0) {
            verify_all((const char *)tok.data, tok.len, ed, &loose);
            verify_all((const char *)tok.data, tok.len, ed, &strict);
        }
        free(s64);
    }
    cf_buf_free(&tok);
    cf_buf_free(&sig);
    return 0;
}
