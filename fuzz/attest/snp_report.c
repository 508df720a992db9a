/*
 * Fuzz target: SEV-SNP attestation report parser (AMD SEV-SNP ABI,
 * ATTESTATION_REPORT). Properties checked beyond "no crash": every report that
 * parses re-encodes to exactly the input bytes, TCB decode/encode agree on the
 * defined bytes, and signature verification of any parsed report fails cleanly
 * against an unrelated P-384 key.
 */
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stdint.h>
#include <string.h>

#include "attest/snp.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static X509 *signer; /* unrelated P-384 key: a parsed input must never verify */

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");

    (void)argc;
    (void)argv;
    signer = X509_new();
    if (key == NULL || signer == NULL || X509_set_pubkey(signer, key) != 1)
        __builtin_trap();
    EVP_PKEY_free(key);
    return 0;
}

/* TCB_VERSION bytes that carry a component: Milan/Genoa 0, 1, 6, 7; Turin 0-3, 7. */
static uint64_t tcb_defined_mask(cf_snp_product p)
{
    return p == CF_SNP_PRODUCT_TURIN ? 0xFF000000FFFFFFFFull : 0xFFFF00000000FFFFull;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cf_snp_report r;
    cf_snp_tcb t;
    cf_snp_product p;
    uint8_t out[CF_SNP_REPORT_LEN];

    if (cf_snp_report_parse(data, size, &r) != 0)
        return 0;
    if (size != CF_SNP_REPORT_LEN || cf_snp_report_encode(&r, out) != 0 ||
        memcmp(out, data, CF_SNP_REPORT_LEN) != 0)
        __builtin_trap();
    p = cf_snp_report_product(&r);
    if (r.version < 3 && p != CF_SNP_PRODUCT_UNKNOWN)
        __builtin_trap();
    cf_snp_tcb_decode(r.reported_tcb_raw, p, &t);
    if (cf_snp_tcb_encode(&t, p) != (r.reported_tcb_raw & tcb_defined_mask(p)))
        __builtin_trap();
    if (cf_snp_report_signing_key(&r) > CF_SNP_KEY_NONE)
        __builtin_trap();
    if (signer != NULL && cf_snp_report_verify_signature(data, signer) == 0)
        __builtin_trap();
    ERR_clear_error();
    return 0;
}
