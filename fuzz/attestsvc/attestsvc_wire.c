/*
 * Fuzz target: the attestation service's parsers of outside input
 * (attestsvc/wire.h). The first byte selects the parser, the rest is the input:
 *   0 TEE evidence answer    1 KMS registry listing page   2 KMS nonce answer
 *   3 POST /verify body       4 POST /evidence body
 * Properties beyond "no crash, no leak": what parses is within its bounds, ids
 * and endpoints satisfy their validators, and evidence survives a round trip
 * through its JSON form unchanged.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "attestsvc/wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void roundtrip(const cf_attest_evidence *e)
{
    json_t *j = cf_attest_evidence_to_json(e);
    cf_attest_evidence *back = calloc(1, sizeof(*back));

    if (j == NULL || back == NULL || cf_attest_evidence_from_json(j, back) != 0 ||
        back->report_len != e->report_len || back->cert_len != e->cert_len ||
        memcmp(back->report, e->report, e->report_len) != 0 || memcmp(back->cert, e->cert, e->cert_len) != 0)
        __builtin_trap();
    free(back);
    json_decref(j);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *in = data + 1;
    size_t n;

    if (size < 1)
        return 0;
    n = size - 1;
    switch (data[0] % 5) {
    case 0: {
        cf_attest_tee_evidence *t = calloc(1, sizeof(*t));
        if (t != NULL && cf_attest_tee_evidence_parse(in, n, t) == 0) {
            if (!cf_attest_id_valid(t->tee_id) || !cf_attest_name_valid(t->deployment) ||
                t->evidence.report_len == 0 || t->evidence.report_len > CF_ATTESTSVC_MAX_REPORT ||
                t->evidence.cert_len == 0 || t->evidence.cert_len > CF_CERT_MAX_BYTES ||
                strlen(t->build_hash) != CF_BUILD_HASH_STR_LEN)
                __builtin_trap();
            roundtrip(&t->evidence);
        }
        free(t);
        break;
    }
    case 1: {
        cf_attest_tee_list l = {0};
        char next[CF_ATTESTSVC_MAX_CURSOR + 1];
        if (cf_attest_registry_parse_page(in, n, &l, next, sizeof(next)) == 0) {
            if (l.n > CF_ATTESTSVC_MAX_TEES || strlen(next) > CF_ATTESTSVC_MAX_CURSOR)
                __builtin_trap();
            for (size_t i = 0; i < l.n; i++)
                if (!cf_attest_id_valid(l.v[i].id) || !cf_attest_name_valid(l.v[i].deployment) ||
                    (l.v[i].endpoint[0] != '\0' && !cf_attest_endpoint_valid(l.v[i].endpoint)))
                    __builtin_trap();
        }
        cf_attest_tee_list_free(&l);
        break;
    }
    case 2: {
        uint8_t nonce[CF_BINDING_NONCE_LEN];
        if (cf_attest_kms_nonce_parse(in, n, nonce) == 0 && n < 2 * CF_BINDING_NONCE_LEN)
            __builtin_trap(); /* a nonce answer holds at least the 64 hex digits */
        break;
    }
    case 3: {
        cf_attest_verify_request v;
        if (cf_attest_verify_request_parse(in, n, &v) == 0 && !cf_attest_name_valid(v.deployment))
            __builtin_trap();
        break;
    }
    default: {
        cf_attest_evidence_request *r = calloc(1, sizeof(*r));
        if (r != NULL && cf_attest_evidence_request_parse(in, n, r) == 0) {
            if (r->has_nonce != (r->public_key_len > 0) || r->public_key_len > CF_TEE_KEY_MAX_LEN)
                __builtin_trap();
            roundtrip(&r->evidence);
        }
        free(r);
        break;
    }
    }
    return 0;
}
