/*
 * Fuzz the IAM API request body parsers (src/iam/requests.c) on arbitrary
 * bytes: every parser sees every input. Invariants on accepted inputs: the
 * outputs respect the documented bounds (roles known and non-empty, ids valid,
 * ttl in range, client keys pass the RFC 7748 checks).
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "base/limits.h"
#include "base/secmem.h"
#include "iam/api.h"
#include "iam/iam.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char id[CF_ID_MAX_LEN + 1], name[CF_NAME_MAX_LEN + 1], kind[16], reason[CF_IAM_MAX_REASON + 1];
    uint32_t roles = 0;
    uint64_t ttl = 0;
    uint8_t pub[32];
    cf_secret key = {0};

    if (cf_iam_req_token(data, size, &key, id) == 0) {
        if (key.p == NULL || ((const char *)key.p)[0] == '\0' || (id[0] != '\0' && !cf_iam_id_ok(id)))
            __builtin_trap();
        cf_secret_free(&key);
    }
    if (cf_iam_req_tenant(data, size, id, name) == 0 &&
        ((id[0] != '\0' && !cf_iam_id_ok(id)) || !cf_iam_name_ok(name)))
        __builtin_trap();
    if (cf_iam_req_principal(data, size, kind, name, &roles) == 0 &&
        (!cf_iam_kind_ok(kind) || !cf_iam_name_ok(name) || roles == 0 || (roles & ~CF_IAM_ALL_ROLES) != 0))
        __builtin_trap();
    if (cf_iam_req_apikey(data, size, &ttl) == 0 && ttl > CF_IAM_APIKEY_TTL_MAX)
        __builtin_trap();
    if (cf_iam_req_clientkey(data, size, pub) == 0 && cf_iam_clientkey_check(pub, sizeof(pub)) != 0)
        __builtin_trap();
    if (cf_iam_req_reason(data, size, reason) == 0 && reason[0] != '\0' &&
        !cf_iam_text_ok(reason, CF_IAM_MAX_REASON))
        __builtin_trap();
    return 0;
}
