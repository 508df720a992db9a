/*
 * Fuzz target: arbitrary bytes as one JWK and as a JWK Set.
 * Whatever parses must survive a serialise / parse round trip unchanged
 * (same key type, same public key, same kid); a difference aborts.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/json.h"
#include "crypto/jose.h"
#include "crypto/keys.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void jwk_roundtrip(const cf_key *k, const char *kid)
{
    json_t *j = NULL;
    cf_key *back = NULL;
    char *kid2 = NULL;

    if (cf_jwk_to_json(k, kid, &j) != 0 || cf_jwk_from_json(j, &back, &kid2) != 0)
        abort();
    if (!cf_key_public_eq(k, back) || (kid == NULL) != (kid2 == NULL) ||
        (kid != NULL && strcmp(kid, kid2) != 0))
        abort();
    json_decref(j);
    cf_key_free(back);
    free(kid2);
}

static void jwks_roundtrip(const cf_jwks *set)
{
    cf_jwks *back = NULL;
    char *text = NULL;

    if (cf_jwks_serialise(set, &text) != 0 || cf_jwks_parse(text, strlen(text), &back) != 0)
        abort();
    if (cf_jwks_count(back) != cf_jwks_count(set))
        abort();
    for (size_t i = 0; i < cf_jwks_count(set); i++) {
        const char *kid = NULL;
        const cf_key *a = cf_jwks_key_at(set, i, &kid), *b = NULL;
        if (a == NULL || cf_jwks_find(back, kid, &b) != 0 || !cf_key_public_eq(a, b))
            abort();
    }
    free(text);
    cf_jwks_free(back);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cf_key *k = NULL;
    char *kid = NULL;
    cf_jwks *set = NULL;

    if (cf_jwk_parse(data, size, &k, &kid) == 0) {
        if (cf_key_has_private(k))
            abort(); /* a JWK import never yields a private key */
        jwk_roundtrip(k, kid);
        cf_key_free(k);
        free(kid);
    }
    if (cf_jwks_parse(data, size, &set) == 0) {
        jwks_roundtrip(set);
        cf_jwks_free(set);
    }
    return 0;
}
