/*
 * Fuzz target: AMD VCEK/VLEK certificate extensions. Arbitrary bytes are
 * decoded as a DER certificate (bounded by CF_CERT_MAX_BYTES), then the AMD
 * extensions are parsed and the chain check (RSASSA-PSS parameter parsing, key
 * checks, X509_verify_cert against the pinned AMD Milan roots) is run on it.
 * Invariants of a successful parse are checked.
 */
#include <openssl/err.h>
#include <openssl/x509.h>
#include <stdint.h>
#include <string.h>

#include "attest/snp.h"
#include "base/limits.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static cf_snp_roots *roots;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    if (cf_snp_roots_amd(&roots) != 0)
        __builtin_trap();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const unsigned char *p = data;
    cf_snp_cert_ext e;
    X509 *x;

    if (size > CF_CERT_MAX_BYTES)
        return 0;
    x = d2i_X509(NULL, &p, (long)size);
    if (x == NULL) {
        ERR_clear_error();
        return 0;
    }
    if (cf_snp_cert_parse_ext(x, &e) == 0) {
        if (e.is_vlek != (e.hwid_len == 0) ||
            (e.hwid_len != 0 && e.hwid_len != 8 && e.hwid_len != 64))
            __builtin_trap();
        if (e.is_vlek != (e.csp_id[0] != '\0'))
            __builtin_trap();
        if (strlen(e.product_name) == 0 || strlen(e.product_name) > CF_SNP_PRODUCT_NAME_MAX)
            __builtin_trap();
        if (e.product == CF_SNP_PRODUCT_TURIN && e.hwid_len == 64)
            __builtin_trap();
    }
    if (roots != NULL) {
        /* 2025-09-01: a fixed time keeps the target deterministic. */
        uint8_t fpr[48];
        int rc = cf_snp_chain_verify(roots, x, CF_SNP_PRODUCT_MILAN, false, (time_t)1756684800,
                                     NULL, fpr);
        if (rc == 0 && cf_snp_cert_parse_ext(x, &e) != 0)
            __builtin_trap(); /* chains to AMD: genuine, so it must parse */
    }
    X509_free(x);
    ERR_clear_error();
    return 0;
}
