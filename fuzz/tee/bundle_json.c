/*
 * Fuzz target: the bundle manifest parser (coffer.json, cf_bundle_manifest_parse)
 * on arbitrary bytes; a parsed manifest is also searched for a few job names.
 * Deterministic, no output, leak-free; bad input only returns.
 */
#include <stddef.h>
#include <stdint.h>

#include "tee/bundle.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cf_bundle_manifest *m = NULL;
    static const char *const names[] = {"echo", "sha256", "", "zzz"};

    if (cf_bundle_manifest_parse(data, size, &m) != 0)
        return 0;
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        (void)cf_bundle_manifest_job(m, names[i]);
    for (size_t i = 0; i < m->n_jobs; i++)
        if (cf_bundle_manifest_job(m, m->jobs[i].name) != &m->jobs[i])
            __builtin_trap(); /* every parsed job must be found by name */
    cf_bundle_manifest_free(m);
    return 0;
}
