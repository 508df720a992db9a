/*
 * Fuzz target: the KMS's sealed-message plaintext parsers (src/kms/wire.h).
 * The first byte selects the parser, the rest is its input:
 *   'R' (or anything else even)  cf_kms_wire_parse_release: the exact compact
 *                                form a TEE receives (holds the OTK)
 *   'Q' (or anything else odd)   cf_kms_wire_parse_release_request: the strict
 *                                JSON a TEE seals to ask for a release
 * A successful parse must round-trip: rebuilding the release and parsing it
 * again gives the same struct, and the parsed ids satisfy their validators.
 * Deterministic, no output, leak-free; bad input only returns.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/secmem.h"
#include "kms/wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void release(const uint8_t *d, size_t n)
{
    cf_kms_released *a = cf_secure_alloc(sizeof(*a)), *b = cf_secure_alloc(sizeof(*b));
    cf_buf pt;

    if (a == NULL || b == NULL)
        abort();
    cf_buf_init_secret(&pt, CF_KMS_RELEASE_PT_MAX);
    if (cf_kms_wire_parse_release(d, n, a) == 0) {
        if (!cf_kms_id_valid(a->otk_id, "otk_") || !cf_kms_id_valid(a->tee_id, "tee_") ||
            !cf_kms_tenant_valid(a->tenant))
            abort();
        /* one form only: the rebuilt text is the input, byte for byte */
        if (cf_kms_wire_build_release(a, &pt) != 0 || pt.len != n || memcmp(pt.data, d, n) != 0)
            abort();
        if (cf_kms_wire_parse_release(pt.data, pt.len, b) != 0 || memcmp(a, b, sizeof(*a)) != 0)
            abort();
    }
    cf_buf_free(&pt);
    cf_secure_free(a);
    cf_secure_free(b);
}

static void request(const uint8_t *d, size_t n)
{
    cf_kms_release_request r;

    if (cf_kms_wire_parse_release_request(d, n, &r) == 0) {
        if (!cf_kms_id_valid(r.otk_id, "otk_") || !cf_kms_id_valid(r.tee_id, "tee_") || r.ts < 0)
            abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    if ((data[0] & 1) == 0)
        release(data + 1, size - 1);
    else
        request(data + 1, size - 1);
    return 0;
}
