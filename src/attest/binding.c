#include "attest/binding.h"

#include "base/err.h"
#include "base/limits.h"
#include "base/secmem.h"
#include "crypto/hash.h"

/* The label is hashed with its terminating NUL: that is the 0x00 separator of
 * DESIGN.md §3, which keeps the label prefix-free. */
static const char binding_label[] = CF_BINDING_LABEL;

int cf_binding_compute(const uint8_t *tee_public_key, size_t key_len,
                       const uint8_t nonce[CF_BINDING_NONCE_LEN], uint8_t ret[CF_BINDING_LEN])
{
    uint8_t digest[CF_SHA512_LEN];
    cf_iov parts[3];

    CF_ENSURE(tee_public_key != NULL && nonce != NULL && ret != NULL, CF_E_INVAL);
    if (key_len == 0 || key_len > CF_TEE_KEY_MAX_LEN)
        return cf_err_set(CF_E_INVAL, "TEE public key must be 1 to %u bytes, got %zu",
                          (unsigned)CF_TEE_KEY_MAX_LEN, key_len);
    parts[0] = (cf_iov){binding_label, sizeof(binding_label)};
    parts[1] = (cf_iov){tee_public_key, key_len};
    parts[2] = (cf_iov){nonce, CF_BINDING_NONCE_LEN};
    CF_GUARD(cf_hash(CF_SHA512, parts, CF_ARRAY_LEN(parts), digest));
    for (size_t i = 0; i < CF_BINDING_LEN; i++)
        ret[i] = digest[i];
    return 0;
}

int cf_binding_check(const uint8_t report_data[CF_BINDING_LEN], const uint8_t *tee_public_key,
                     size_t key_len, const uint8_t nonce[CF_BINDING_NONCE_LEN])
{
    uint8_t want[CF_BINDING_LEN];

    CF_ENSURE(report_data != NULL, CF_E_INVAL);
    CF_GUARD(cf_binding_compute(tee_public_key, key_len, nonce, want));
    /* Constant time: report_data is attacker-supplied and compared with a digest. */
    if (!cf_ct_eq(report_data, want, CF_BINDING_LEN))
        return cf_err_set(CF_E_VERIFY, "report_data does not bind key and nonce");
    return 0;
}
