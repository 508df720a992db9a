/*
 * Fuzz the signed tree head JSON codec and signature check on arbitrary bytes:
 * an accepted head re-encodes to an equal head; verifying never crashes.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "auditlog/sth.h"
#include "base/json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The fixed tree-head key of the seed corpus: Ed25519 private key 32 x 0x01. */
static cf_key *fixed_key(void)
{
    static cf_key *k;
    static const uint8_t seed[32] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
                                     1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1};
    if (k == NULL && cf_key_from_private(CF_KEY_ED25519, seed, sizeof(seed), &k) != 0)
        abort();
    return k;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cf_audit_sth s, back;
    json_t *j = NULL;
    char *txt;

    if (cf_audit_sth_parse(data, size, &s) != 0)
        return 0;
    if (cf_audit_sth_verify(&s, fixed_key()) == 0) {
        /* a valid signature binds the size: another size must not verify */
        back = s;
        back.size ^= 1;
        if (cf_audit_sth_verify(&back, fixed_key()) == 0)
            __builtin_trap();
    }
    if (cf_audit_sth_to_json(&s, &j) != 0)
        __builtin_trap();
    txt = cf_json_dump(j);
    if (txt == NULL || cf_audit_sth_parse(txt, strlen(txt), &back) != 0 ||
        memcmp(&back, &s, sizeof(s)) != 0)
        __builtin_trap();
    free(txt);
    json_decref(j);
    return 0;
}
