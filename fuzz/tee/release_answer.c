/*
 * Fuzz target: what the TEE runtime reads from the KMS when it asks for an OTK.
 * First input byte: 0 = the sealed plaintext parser
 * (cf_tee_release_plaintext_parse), 1 = the whole 200 answer
 * (cf_tee_release_answer_open: JSON, base64url, HPKE open with fixed keys, then
 * the plaintext), 2 = the registry answers (nonce, registration). The keys are
 * derived from the constants below, so seeds sealed with them (generated for
 * fuzz/corpus/fuzz_release_answer/) reach the plaintext parser through the real
 * decryption. Deterministic, no output, leak-free; bad input only returns.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/hpke.h"
#include "tee/kmswire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Shared with the corpus generator. */
static const uint8_t tee_ikm[32] = "coffer fuzz TEE runtime key ....";
static const uint8_t kms_ikm[32] = "coffer fuzz KMS release key ....";

static cf_hpke_key *tee, *kms_pub; /* kept for the whole run */

static void init_keys(void)
{
    cf_hpke_key *kms = NULL;

    if (tee != NULL)
        return;
    if (cf_hpke_key_derive(CF_HPKE_KEM_X25519_SHA256, tee_ikm, sizeof(tee_ikm), &tee) != 0 ||
        cf_hpke_key_derive(CF_HPKE_KEM_X25519_SHA256, kms_ikm, sizeof(kms_ikm), &kms) != 0 ||
        cf_hpke_key_public_only(kms, &kms_pub) != 0)
        abort();
    cf_hpke_key_free(kms);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cf_tee_release r;
    uint8_t nonce[32];
    char id[CF_ID_MAX_LEN + 1];

    init_keys();
    if (size < 1)
        return 0;
    memset(&r, 0, sizeof(r));
    switch (data[0]) {
    case 0:
        if (cf_tee_release_plaintext_parse(data + 1, size - 1, "otk-fuzz-1", "tee-fuzz-1", &r) ==
            0) {
            if (r.otk.len != CF_TEE_OTK_LEN || !cf_tee_id_valid(r.tenant))
                __builtin_trap();
            cf_tee_release_clear(&r);
        }
        break;
    case 1:
        if (cf_tee_release_answer_open(tee, kms_pub, "otk-fuzz-1", "tee-fuzz-1", data + 1,
                                       size - 1, &r) == 0)
            cf_tee_release_clear(&r);
        break;
    case 2:
        if (cf_tee_nonce_answer_parse(data + 1, size - 1, nonce) == 0)
            memset(nonce, 0, sizeof(nonce));
        if (cf_tee_register_answer_parse(data + 1, size - 1, id) == 0 && !cf_tee_id_valid(id))
            __builtin_trap();
        break;
    default:
        break;
    }
    return 0;
}
