/*
 * Fuzz target: the gateway's parser of a KMS registry listing page
 * (cf_gw_registry_parse_page, src/gateway/registry.h), then the sort and
 * duplicate check of cf_gw_tee_list_finish. Input is the page as the KMS
 * would send it. Checks the invariants of a successful parse: every entry has
 * a valid id and deployment, a non-empty status, and the list is sorted with
 * unique ids after finishing. Deterministic, no output, leak-free.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/registry.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cf_gw_tee_list l = {0};
    char next[CF_GW_MAX_CURSOR + 1];

    if (cf_gw_registry_parse_page(data, size, &l, next, sizeof(next)) != 0) {
        if (l.n != 0)
            abort(); /* a failed page leaves the list as it was (empty) */
        goto out;
    }
    if (strlen(next) > CF_GW_MAX_CURSOR || l.n > CF_GW_MAX_TEES)
        abort();
    for (size_t i = 0; i < l.n; i++)
        if (!cf_gw_id_valid(l.v[i].id) || !cf_gw_name_valid(l.v[i].deployment) || l.v[i].status[0] == 0 ||
            (l.v[i].tenant[0] != 0 && !cf_gw_id_valid(l.v[i].tenant)))
            abort();
    if (cf_gw_tee_list_finish(&l) == 0)
        for (size_t i = 1; i < l.n; i++)
            if (strcmp(l.v[i - 1].id, l.v[i].id) >= 0)
                abort();
out:
    cf_gw_tee_list_free(&l);
    return 0;
}
