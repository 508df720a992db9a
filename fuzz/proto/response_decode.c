/*
 * Fuzz target: cf_env_response_open (CFR1) on arbitrary bytes, with an HPKE context
 * derived from fixed keys (the same TEE and client keys as envelope_decode.c, and a
 * fixed enc), so that seeds sealed with that context's export
 * (fuzz/corpus/fuzz_response_decode/) pass the tag. Deterministic and leak-free.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/limits.h"
#include "crypto/hpke.h"
#include "proto/envelope.h"

static const uint8_t tee_ikm[32] = "coffer fuzz TEE key ikm ........";
static const uint8_t client_ikm[32] = "coffer fuzz client key ikm .....";
static const uint8_t eph_ikm[32] = "coffer fuzz ephemeral key ikm ..";
#define FUZZ_REQUEST_ID "req-fuzz"

static cf_hpke_ctx *ctx;

/* The TEE-side context of a request whose enc is the fixed ephemeral public key. */
static void init_ctx(void)
{
    cf_hpke_key *tee = NULL, *client = NULL, *eph = NULL;
    cf_hpke_params p;
    const uint8_t *enc;
    size_t enc_len = 0;

    if (ctx != NULL)
        return;
    memset(&p, 0, sizeof(p));
    p.suite = CF_HPKE_SUITE_COFFER;
    p.mode = CF_HPKE_MODE_AUTH;
    p.info = (const uint8_t *)CF_ENV_INFO;
    p.info_len = strlen(CF_ENV_INFO);
    if (cf_hpke_key_derive(CF_HPKE_KEM_X25519_SHA256, tee_ikm, 32, &tee) != 0 ||
        cf_hpke_key_derive(CF_HPKE_KEM_X25519_SHA256, client_ikm, 32, &client) != 0 ||
        cf_hpke_key_derive(CF_HPKE_KEM_X25519_SHA256, eph_ikm, 32, &eph) != 0)
        abort();
    enc = cf_hpke_key_pub(eph, &enc_len);
    if (cf_hpke_setup_receiver(&p, enc, enc_len, tee, client, &ctx) != 0)
        abort();
    cf_hpke_key_free(tee);
    cf_hpke_key_free(client);
    cf_hpke_key_free(eph);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cf_buf out;
    uint8_t status = 0;

    init_ctx();
    cf_buf_init_secret(&out, CF_ENV_MAX_PAYLOAD);
    if (cf_env_response_open(ctx, FUZZ_REQUEST_ID, data, size, &status, &out) == 0 &&
        out.len + 1 + 4 + 12 + 16 != size)
        abort(); /* an accepted response accounts for every byte */
    cf_buf_free(&out);
    return 0;
}
