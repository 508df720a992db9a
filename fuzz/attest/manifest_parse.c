/*
 * Fuzz target: manifest parser and canonical hash (docs/MANIFEST.md).
 * Properties checked beyond "no crash, no leak": a manifest that parses has a
 * canonical form that (1) hashes to its manifest hash, (2) parses again to the
 * same hash (canonicalisation is idempotent), and (3) is no longer than the
 * input; every accessor works on what the parser accepted.
 */
#include <stdint.h>
#include <string.h>

#include "attest/manifest.h"
#include "crypto/hash.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void walk(const cf_manifest *m)
{
    const cf_manifest_snp *p = cf_manifest_snp_policy(m);
    uint8_t zero[CF_SNP_CHIP_ID_LEN] = {0};

    if (p == NULL)
        __builtin_trap(); /* sev-snp is the only platform a manifest can have today */
    (void)cf_manifest_snp_chip_allowed(p, zero);
    for (size_t i = 0; i < p->n_roots; i++)
        if (p->roots[i].chain_pem == NULL ||
            strlen(p->roots[i].chain_pem) != p->roots[i].chain_pem_len)
            __builtin_trap();
    for (size_t i = 0; i < cf_manifest_deployment_count(m); i++) {
        const cf_manifest_deployment *d = cf_manifest_deployment_at(m, i);
        if (d == NULL || cf_manifest_find_deployment(m, d->name) != d || d->n_jobs == 0 ||
            !cf_manifest_deployment_has_job(d, d->jobs[0]) || d->n_snp_measurements == 0 ||
            !cf_manifest_deployment_allows_snp_measurement(d, d->snp_measurements[0]))
            __builtin_trap();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cf_manifest *m = NULL, *again = NULL;
    const char *canon;
    size_t clen = 0;
    uint8_t h[CF_SHA256_LEN];

    if (cf_manifest_parse(data, size, &m) != 0)
        return 0;
    walk(m);
    canon = cf_manifest_canonical(m, &clen);
    if (canon == NULL || clen > size || cf_sha256(canon, clen, h) != 0 ||
        memcmp(h, cf_manifest_hash(m), sizeof(h)) != 0)
        __builtin_trap();
    if (cf_manifest_parse(canon, clen, &again) != 0 ||
        memcmp(cf_manifest_hash(again), cf_manifest_hash(m), CF_MANIFEST_HASH_LEN) != 0 ||
        cf_manifest_check_hash(again, cf_manifest_hash_str(m)) != 0)
        __builtin_trap();
    cf_manifest_free(again);
    cf_manifest_free(m);
    return 0;
}
