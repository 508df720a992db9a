/*
 * The tree-head signing key (docs/internals/audit-service.md "Tree-head key"):
 * Ed25519, generated once, stored in the audit service's store only wrapped by
 * the HSM master key (AES-256-GCM inside the HSM, AAD binding it to its
 * purpose and key id), like IAM's token-signing keys. The private key is in
 * clear only in this process's secret memory.
 *
 * Table (migration scope "audit_service"): audit_service_key, one row (id 1):
 * key_id (RFC 7638 thumbprint), public_key (32 bytes), wrapped, created_at.
 * There is no rotation: verifiers pin this key (`coffer audit verify`).
 */
#include <string.h>
#include <time.h>

#include "audit/auditsvc.h"
#include "base/err.h"
#include "base/log.h"
#include "base/secmem.h"

#define AAD_LABEL "coffer/v1 audit-sth-key"
#define AAD_MAX (sizeof(AAD_LABEL) + CF_KEY_THUMBPRINT_LEN)
#define WRAPPED_MAX (CF_ED25519_LEN + CF_HSM_WRAP_OVERHEAD)

static const cf_store_migration migrations[] = {
    {1, "tree-head signing key",
     "CREATE TABLE audit_service_key ("
     " id BIGINT PRIMARY KEY CHECK (id = 1),"
     " key_id TEXT NOT NULL,"
     " public_key BLOB NOT NULL,"
     " wrapped BLOB NOT NULL,"
     " created_at BIGINT NOT NULL);",
     NULL},
};

/* label || 0x00 || key id: a wrapped key unwraps only as the tree-head key it was made as. */
static int key_aad(const char *kid, uint8_t aad[AAD_MAX], size_t *ret_len)
{
    size_t kl = strlen(kid), ll = sizeof(AAD_LABEL);

    CF_ENSURE(kl > 0 && kl <= CF_KEY_THUMBPRINT_LEN, CF_E_INVAL);
    memcpy(aad, AAD_LABEL, ll);
    memcpy(aad + ll, kid, kl);
    *ret_len = ll + kl;
    return 0;
}

/* A new key, stored wrapped unless a row exists already (another replica won). */
static int create_key(cf_store *s, cf_hsm *hsm)
{
    cf_key *k = NULL;
    cf_secret priv = {0};
    char kid[CF_KEY_THUMBPRINT_LEN + 1];
    uint8_t pub[CF_ED25519_LEN], aad[AAD_MAX];
    size_t pub_len = 0, aad_len = 0;
    int64_t added = 0;
    cf_buf w;
    int rc;

    cf_buf_init(&w, WRAPPED_MAX);
    CF_GUARD_OUT(cf_key_generate(CF_KEY_ED25519, &k));
    CF_GUARD_OUT(cf_key_thumbprint(k, kid));
    CF_GUARD_OUT(cf_key_export_public(k, pub, sizeof(pub), &pub_len));
    CF_ENSURE_OUT(pub_len == sizeof(pub), CF_E_INTERNAL);
    CF_GUARD_OUT(cf_key_export_private(k, &priv));
    CF_GUARD_OUT(key_aad(kid, aad, &aad_len));
    CF_GUARD_OUT(cf_hsm_wrap(hsm, aad, aad_len, priv.p, priv.len, &w));
    CF_GUARD_OUT(cf_store_exec(s,
                               "INSERT INTO audit_service_key (id, key_id, public_key, wrapped, created_at) "
                               "VALUES (1, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING",
                               CF_STORE_ARGS(cf_sv_text(kid), cf_sv_blob(pub, sizeof(pub)),
                                             cf_sv_blob(w.data, w.len), cf_sv_int((int64_t)time(NULL))),
                               &added));
    if (added == 1)
        cf_log(CF_LOG_INFO, "audit.sth_key_created", "key_id", kid, NULL);
    rc = 0;
out:
    cf_secret_free(&priv);
    cf_key_free(k);
    cf_buf_free(&w);
    return rc;
}

static int read_key(cf_store *s, cf_hsm *hsm, cf_key **ret)
{
    cf_store_rows *r = NULL;
    char kid[CF_KEY_THUMBPRINT_LEN + 1], check[CF_KEY_THUMBPRINT_LEN + 1];
    uint8_t pub[CF_ED25519_LEN], wrapped[WRAPPED_MAX], aad[AAD_MAX];
    size_t pub_len = 0, wlen = 0, aad_len = 0;
    cf_key *k = NULL, *p = NULL;
    cf_buf plain;
    int rc;

    /* The HSM wants room for ciphertext + tag even though it writes less. */
    cf_buf_init_secret(&plain, WRAPPED_MAX);
    CF_GUARD_OUT(cf_store_query_row(s, "SELECT key_id, public_key, wrapped FROM audit_service_key WHERE id = 1",
                                    NULL, 0, &r));
    CF_GUARD_OUT(cf_store_col_text(r, 0, kid, sizeof(kid), NULL));
    CF_GUARD_OUT(cf_store_col_blob(r, 1, pub, sizeof(pub), &pub_len));
    CF_GUARD_OUT(cf_store_col_blob(r, 2, wrapped, sizeof(wrapped), &wlen));
    CF_ENSURE_OUT(pub_len == sizeof(pub), cf_err_set(CF_E_STORE, "stored tree-head public key has a bad length"));
    CF_GUARD_OUT(key_aad(kid, aad, &aad_len));
    rc = cf_hsm_unwrap(hsm, aad, aad_len, wrapped, wlen, &plain);
    if (rc == CF_E_DECRYPT) {
        rc = cf_err_set(CF_E_STORE, "the tree-head key %s does not unwrap under this HSM's master key", kid);
        goto out;
    }
    CF_GUARD_OUT(rc);
    CF_GUARD_OUT(cf_key_from_private(CF_KEY_ED25519, plain.data, plain.len, &k));
    CF_GUARD_OUT(cf_key_from_public(CF_KEY_ED25519, pub, pub_len, &p));
    CF_GUARD_OUT(cf_key_thumbprint(k, check));
    /* What verifiers get (the stored public key, the key id) must be this key's. */
    if (!cf_key_public_eq(k, p) || strcmp(check, kid) != 0) {
        rc = cf_err_set(CF_E_STORE, "tree-head key %s: stored public key or id does not match the private key", kid);
        goto out;
    }
    *ret = k;
    k = NULL;
    rc = 0;
out:
    cf_store_rows_close(r);
    cf_key_free(k);
    cf_key_free(p);
    cf_buf_free(&plain);
    return rc;
}

int cf_auditsvc_key_load(cf_store *s, cf_hsm *hsm, cf_key **ret)
{
    int rc;

    CF_GUARD(cf_store_migrate(s, "audit_service", migrations, CF_ARRAY_LEN(migrations)));
    rc = read_key(s, hsm, ret);
    if (rc != CF_E_NOT_FOUND)
        return rc;
    CF_GUARD(create_key(s, hsm));
    return read_key(s, hsm, ret);
}
