#include "attestsvc/signer.h"

#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/err.h"
#include "base/limits.h"
#include "base/log.h"
#include "base/secmem.h"

struct cf_attest_signer {
    cf_key *key;
    char kid[CF_KEY_THUMBPRINT_LEN + 1];
    cf_jwks *jwks;
    char *jwks_text;
};

const cf_key *cf_attest_signer_key(const cf_attest_signer *sg) { return sg->key; }
const char *cf_attest_signer_kid(const cf_attest_signer *sg) { return sg->kid; }
const cf_jwks *cf_attest_signer_jwks(const cf_attest_signer *sg) { return sg->jwks; }
const char *cf_attest_signer_jwks_text(const cf_attest_signer *sg) { return sg->jwks_text; }

void cf_attest_signer_free(cf_attest_signer *sg)
{
    if (sg == NULL)
        return;
    cf_key_free(sg->key);
    cf_jwks_free(sg->jwks);
    free(sg->jwks_text);
    free(sg);
}

/* AAD = label || 0x00 || kid: binds the wrapped scalar to its row. */
static int make_aad(const char *kid, cf_buf *aad)
{
    CF_GUARD(cf_buf_put_str(aad, CF_ATTEST_SIGNING_KEY_AAD));
    CF_GUARD(cf_buf_put_u8(aad, 0));
    return cf_buf_put_str(aad, kid);
}

/* Generates a key and inserts it as the active one unless another process got
 * there first (then nothing is inserted and *ret_inserted is false). */
static int create_key(cf_hsm *hsm, cf_store *s, int64_t now, bool *ret_inserted)
{
    cf_key *k = NULL;
    cf_secret priv = {0};
    char kid[CF_KEY_THUMBPRINT_LEN + 1];
    uint8_t pub[CF_P256_PUB_LEN];
    size_t pub_len = 0;
    cf_buf aad, wrapped;
    int64_t changes = 0;
    int rc;

    cf_buf_init(&aad, 256);
    cf_buf_init(&wrapped, CF_P256_PRIV_LEN + CF_HSM_WRAP_OVERHEAD);
    CF_GUARD_OUT(cf_key_generate(CF_KEY_P256, &k));
    CF_GUARD_OUT(cf_key_thumbprint(k, kid));
    CF_GUARD_OUT(cf_key_export_public(k, pub, sizeof(pub), &pub_len));
    CF_GUARD_OUT(cf_key_export_private(k, &priv));
    CF_GUARD_OUT(make_aad(kid, &aad));
    CF_GUARD_OUT(cf_hsm_wrap(hsm, aad.data, aad.len, priv.p, priv.len, &wrapped));
    CF_GUARD_OUT(cf_store_exec(s,
                               "INSERT INTO attest_signing_key (kid, public_key, wrapped, created_at, state)"
                               " VALUES (?, ?, ?, ?, 'active') ON CONFLICT DO NOTHING",
                               CF_STORE_ARGS(cf_sv_text(kid), cf_sv_blob(pub, pub_len),
                                             cf_sv_blob(wrapped.data, wrapped.len), cf_sv_int(now)),
                               &changes));
    *ret_inserted = changes == 1;
    rc = 0;
out:
    cf_secret_free(&priv);
    cf_key_free(k);
    cf_buf_free(&aad);
    cf_buf_free(&wrapped);
    return rc;
}

/* Unwraps one stored key and checks it against its row. */
static int load_row(cf_hsm *hsm, cf_store_rows *rows, cf_key **ret_key, char ret_kid[CF_KEY_THUMBPRINT_LEN + 1])
{
    char kid[CF_KEY_THUMBPRINT_LEN + 1], kid2[CF_KEY_THUMBPRINT_LEN + 1];
    uint8_t pub[CF_P256_PUB_LEN], pub2[CF_P256_PUB_LEN];
    size_t pub_len = 0, pub2_len = 0;
    cf_buf wrapped, aad, priv;
    cf_key *k = NULL;
    int rc;

    cf_buf_init(&wrapped, CF_P256_PRIV_LEN + CF_HSM_WRAP_OVERHEAD);
    cf_buf_init(&aad, 256);
    /* The HSM wants room for ciphertext + tag while it decrypts. */
    cf_buf_init_secret(&priv, CF_P256_PRIV_LEN + CF_HSM_WRAP_OVERHEAD);
    CF_GUARD_OUT(cf_store_col_text(rows, 0, kid, sizeof(kid), NULL));
    CF_GUARD_OUT(cf_store_col_blob(rows, 1, pub, sizeof(pub), &pub_len));
    CF_GUARD_OUT(cf_store_col_blob_buf(rows, 2, &wrapped));
    CF_GUARD_OUT(make_aad(kid, &aad));
    rc = cf_hsm_unwrap(hsm, aad.data, aad.len, wrapped.data, wrapped.len, &priv);
    CF_ENSURE_OUT(rc == 0, cf_err_set(CF_E_STORE,
                                      "signing key %s does not unwrap under this HSM's master key (%s)",
                                      kid, cf_err_detail(rc)));
    CF_ENSURE_OUT(priv.len == CF_P256_PRIV_LEN, cf_err_set(CF_E_STORE, "signing key %s has a bad length", kid));
    CF_GUARD_OUT(cf_key_from_private(CF_KEY_P256, priv.data, priv.len, &k));
    CF_GUARD_OUT(cf_key_export_public(k, pub2, sizeof(pub2), &pub2_len));
    CF_GUARD_OUT(cf_key_thumbprint(k, kid2));
    CF_ENSURE_OUT(pub_len == pub2_len && cf_ct_eq(pub, pub2, pub_len) && strcmp(kid, kid2) == 0,
                  cf_err_set(CF_E_STORE, "signing key %s does not match its stored public key", kid));
    *ret_key = k;
    k = NULL;
    memcpy(ret_kid, kid, sizeof(kid));
    rc = 0;
out:
    cf_key_free(k);
    cf_buf_free(&priv); /* wiped: secret buffer */
    cf_buf_free(&aad);
    cf_buf_free(&wrapped);
    return rc;
}

static int load_jwks(cf_store *s, cf_attest_signer *sg)
{
    cf_store_rows *rows = NULL;
    cf_key *pk = NULL;
    int rc;

    CF_GUARD(cf_jwks_new(&sg->jwks));
    CF_GUARD(cf_store_query(s,
                            "SELECT kid, public_key FROM attest_signing_key ORDER BY created_at DESC, kid"
                            " LIMIT ?",
                            CF_STORE_ARGS(cf_sv_int(CF_ATTESTSVC_SIGNING_KEYS_MAX)), &rows));
    while ((rc = cf_store_next(rows)) == 1) {
        char kid[CF_KEY_THUMBPRINT_LEN + 1];
        uint8_t pub[CF_P256_PUB_LEN];
        size_t n = 0;
        CF_GUARD_OUT(cf_store_col_text(rows, 0, kid, sizeof(kid), NULL));
        CF_GUARD_OUT(cf_store_col_blob(rows, 1, pub, sizeof(pub), &n));
        CF_GUARD_OUT(cf_key_from_public(CF_KEY_P256, pub, n, &pk));
        CF_GUARD_OUT(cf_jwks_add(sg->jwks, kid, pk));
        cf_key_free(pk);
        pk = NULL;
    }
    CF_GUARD_OUT(rc);
    CF_GUARD_OUT(cf_jwks_serialise(sg->jwks, &sg->jwks_text));
    rc = 0;
out:
    cf_key_free(pk);
    cf_store_rows_close(rows);
    return rc;
}

int cf_attest_signer_open(cf_hsm *hsm, cf_store *s, int64_t now, cf_attest_signer **ret, bool *ret_created)
{
    cf_attest_signer *sg = calloc(1, sizeof(*sg));
    cf_store_rows *rows = NULL;
    bool created = false;
    int rc;

    CF_ENSURE(sg != NULL, CF_E_NOMEM);
    for (int attempt = 0; attempt < 2 && sg->key == NULL; attempt++) {
        rc = cf_store_query_row(s, "SELECT kid, public_key, wrapped FROM attest_signing_key WHERE state = 'active'",
                                NULL, 0, &rows);
        if (rc == CF_E_NOT_FOUND && attempt == 0) {
            bool inserted = false;
            CF_GUARD_OUT(create_key(hsm, s, now, &inserted));
            created = inserted;
            continue;
        }
        CF_GUARD_OUT(rc);
        CF_GUARD_OUT(load_row(hsm, rows, &sg->key, sg->kid));
        cf_store_rows_close(rows);
        rows = NULL;
    }
    CF_ENSURE_OUT(sg->key != NULL, cf_err_set(CF_E_STORE, "no active signing key after creating one"));
    CF_GUARD_OUT(load_jwks(s, sg));
    if (created)
        cf_log(CF_LOG_INFO, "attest.signing_key.created", "kid", sg->kid, NULL);
    if (ret_created != NULL)
        *ret_created = created;
    *ret = sg;
    sg = NULL;
    rc = 0;
out:
    cf_store_rows_close(rows);
    cf_attest_signer_free(sg);
    return rc;
}
