/*
 * Fuzz target: the CFE1 envelope parser (cf_env_parse) on arbitrary bytes. When the
 * parse succeeds, the envelope is also opened with fixed keys: a TEE key, a client
 * key and an OTK derived from the constants below, so that seeds sealed with them
 * (fuzz/corpus/fuzz_envelope_decode/) drive the outer and inner layers and the
 * response seal. Deterministic, no output, leak-free; bad input only returns.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "base/buf.h"
#include "base/limits.h"
#include "crypto/hpke.h"
#include "proto/envelope.h"

/* Shared with fuzz/proto/response_decode.c and the corpus generator. */
static const uint8_t tee_ikm[32] = "coffer fuzz TEE key ikm ........";
static const uint8_t client_ikm[32] = "coffer fuzz client key ikm .....";
static const uint8_t fuzz_otk[CF_ENV_OTK_LEN] = "coffer fuzz one-time key .......";

static cf_hpke_key *tee, *client_pub;

/* Kept for the whole run (reachable at exit). A failure here is a build bug. */
static void init_keys(void)
{
    cf_hpke_key *client = NULL;

    if (tee != NULL)
        return;
    if (cf_hpke_key_derive(CF_HPKE_KEM_X25519_SHA256, tee_ikm, sizeof(tee_ikm), &tee) != 0 ||
        cf_hpke_key_derive(CF_HPKE_KEM_X25519_SHA256, client_ikm, sizeof(client_ikm), &client) !=
            0 ||
        cf_hpke_key_public_only(client, &client_pub) != 0)
        abort();
    cf_hpke_key_free(client);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cf_env e;
    cf_buf plain, resp;
    cf_hpke_ctx *ctx = NULL;

    init_keys();
    if (cf_env_parse(data, size, &e) != 0)
        return 0;
    cf_buf_init_secret(&plain, CF_ENV_MAX_PAYLOAD);
    cf_buf_init(&resp, CF_ENV_MAX_RESPONSE_BYTES);
    if (cf_env_open(&e, fuzz_otk, tee, client_pub, &plain, &ctx) == 0) {
        /* As the TEE would: answer with the request's context. */
        if (cf_env_response_seal(ctx, e.hdr.request_id, CF_ENV_STATUS_OK, plain.data, plain.len,
                                 &resp) != 0)
            abort(); /* valid inputs must always produce a response */
    }
    cf_hpke_ctx_free(ctx);
    cf_buf_free(&plain);
    cf_buf_free(&resp);
    return 0;
}
