/*
 * Fuzz target: the attestation service's answer to POST
 * /v1/attestation/evidence as the gateway reads it (gw_attest_parse,
 * src/gateway/gw_int.h). A verified answer must come with a non-empty token
 * made of base64url characters and dots; an unverified one with none.
 * Deterministic, no output, leak-free.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/gw_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    bool verified = false;
    char *token = NULL;

    if (gw_attest_parse(data, size, &verified, &token) == 0) {
        if (verified != (token != NULL))
            abort();
        if (token != NULL &&
            (token[0] == 0 || strspn(token, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.") !=
                                  strlen(token)))
            abort();
        free(token);
    }
    return 0;
}
