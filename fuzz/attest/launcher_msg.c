/*
 * Fuzz target: the messages coffer-launch and the launcher provider exchange
 * (cf_launcher_request_parse, cf_launcher_response_parse) and the GHCB
 * certificate table hardware providers parse (cf_snp_cert_table_find). Every
 * parser gets the whole input: they must reject what is not theirs without
 * crashing, leaking or reading out of bounds.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "attest/provider.h"
#include "base/buf.h"
#include "base/limits.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t rd[64], req[CF_LAUNCHER_REQUEST_LEN];
    uint16_t status;
    cf_provider_evidence ev;
    size_t off, len;
    cf_buf out;

    /* Whatever parses must re-encode to exactly the input (strict, canonical). */
    if (cf_launcher_request_parse(data, size, rd, &status) == 0) {
        if (cf_launcher_request_encode(rd, req) != 0 || size != sizeof(req) ||
            memcmp(req, data, size) != 0)
            __builtin_trap();
    }
    if (cf_launcher_response_parse(data, size, &ev) == 0) {
        cf_buf_init(&out, CF_LAUNCHER_MAX_RESPONSE);
        if (cf_launcher_response_encode(ev.report, ev.cert_der, ev.cert_len, &out) != 0 ||
            out.len != size || memcmp(out.data, data, size) != 0)
            __builtin_trap();
        cf_buf_free(&out);
        cf_provider_evidence_free(&ev);
    }
    if (cf_snp_cert_table_find(data, size, cf_snp_guid_vcek, &off, &len) == 0 &&
        (off > size || len > size - off))
        __builtin_trap(); /* a found certificate must lie inside the input */
    return 0;
}
