/*
 * Fuzz target: a TEE runtime's answer to POST /v1/evidence as the gateway
 * reads it (gw_evidence_parse, src/gateway/gw_int.h), once without and once
 * with the identity the registry expects ("tee-a" in deployment "d1"). A
 * successful parse must give a valid id and deployment and an evidence object.
 * Deterministic, no output, leak-free.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/gw_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    gw_evidence e;

    if (gw_evidence_parse(data, size, NULL, NULL, &e) == 0) {
        if (!cf_gw_id_valid(e.tee_id) || !cf_gw_name_valid(e.deployment) || !json_is_object(e.evidence) ||
            e.public_key[0] == 0 || e.build_hash[0] == 0)
            abort();
        json_decref(e.doc);
    }
    if (gw_evidence_parse(data, size, "tee-a", "d1", &e) == 0) {
        if (strcmp(e.tee_id, "tee-a") != 0 || strcmp(e.deployment, "d1") != 0)
            abort();
        json_decref(e.doc);
    }
    return 0;
}
