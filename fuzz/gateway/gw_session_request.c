/*
 * Fuzz target: the body of POST /v1/sessions as the gateway parses it
 * (gw_session_request_parse, src/gateway/gw_int.h): exactly {"job","nonce"},
 * job a manifest name, nonce 64 hex digits. A successful parse must yield a
 * valid job name. Deterministic, no output, leak-free.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "gateway/gw_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char job[CF_NAME_MAX_LEN + 1];
    uint8_t nonce[32];

    if (gw_session_request_parse(data, size, job, nonce) == 0 && !cf_gw_name_valid(job))
        abort();
    return 0;
}
