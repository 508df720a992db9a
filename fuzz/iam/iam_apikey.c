/*
 * Fuzz the API key parser and the client-key check (src/iam/apikey.c) on
 * arbitrary bytes. Invariant: an accepted key has exactly one spelling — the
 * key formatted again from the parsed id and secret equals the input.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "base/parse.h"
#include "iam/iam.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char id[CF_IAM_KEY_ID_LEN + 1], again[CF_IAM_APIKEY_LEN + 1];
    uint8_t secret[CF_IAM_APIKEY_SECRET_LEN], hash[CF_IAM_APIKEY_HASH_LEN];

    if (cf_iam_apikey_parse((const char *)data, size, id, secret) == 0) {
        memcpy(again, CF_IAM_APIKEY_PREFIX, 4);
        memcpy(again + 4, id, CF_IAM_KEY_ID_LEN);
        again[4 + CF_IAM_KEY_ID_LEN] = '_';
        cf_b64url_encode(secret, sizeof(secret), again + 5 + CF_IAM_KEY_ID_LEN);
        if (size != CF_IAM_APIKEY_LEN || memcmp(again, data, size) != 0)
            __builtin_trap();
        if (cf_iam_apikey_hash(id, secret, hash) != 0)
            __builtin_trap();
    }
    /* Accepted or not: it must not crash; an accepted key has the right size. */
    if (cf_iam_clientkey_check(data, size) == 0 && size != 32)
        __builtin_trap();
    return 0;
}
