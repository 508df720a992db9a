/*
 * Fuzz target: the CFW1 wrapped-value parser (cf_wrapped_parse, src/kms/aead.h)
 * on arbitrary bytes. When the parse succeeds, the body is also opened with
 * cf_aead_open under a fixed key with the header as AAD, so that seeds sealed
 * that way (fuzz/corpus/fuzz_kms_wrapped/ok-*) reach the plaintext path and
 * mutations of them exercise tag rejection. Deterministic, no output,
 * leak-free; bad input only returns.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/limits.h"
#include "kms/aead.h"

/* Shared with the seed generator (see the corpus README). */
static const uint8_t fuzz_key[CF_AEAD_KEY_LEN] = "coffer fuzz kms wrap key .......";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cf_wrapped w;
    cf_buf out;

    if (cf_wrapped_parse(data, size, &w) != 0)
        return 0;
    /* Invariants of a successful parse. */
    if (w.version == 0 || w.version > CF_KMS_MAX_KEY_VERSION || w.header != data ||
        w.body != data + CF_WRAPPED_HEADER_LEN || w.body_len + CF_WRAPPED_HEADER_LEN != size ||
        w.body_len < CF_AEAD_OVERHEAD)
        abort();
    cf_buf_init_secret(&out, CF_KMS_MAX_PLAINTEXT);
    if (cf_aead_open(fuzz_key, w.header, CF_WRAPPED_HEADER_LEN, w.body, w.body_len, &out) == 0 &&
        out.len != w.body_len - CF_AEAD_OVERHEAD)
        abort();
    cf_buf_free(&out);
    return 0;
}
