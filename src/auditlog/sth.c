/*
 * Signed tree heads: fixed binary encoding, Ed25519 signature, JSON codec.
 * The encoding is documented in sth.h.
 */
#include "auditlog/sth.h"

#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/err.h"
#include "base/json.h"
#include "base/limits.h"
#include "base/parse.h"

void cf_audit_sth_tbs(const cf_audit_sth *sth, uint8_t out[CF_AUDIT_STH_TBS_LEN])
{
    size_t o = 0;

    memcpy(out, CF_AUDIT_STH_LABEL, 13);
    o = 13;
    out[o++] = 0x00;
    for (int i = 7; i >= 0; i--)
        out[o++] = (uint8_t)(sth->size >> (8 * i));
    for (int i = 7; i >= 0; i--)
        out[o++] = (uint8_t)(sth->timestamp_ms >> (8 * i));
    memcpy(out + o, sth->root, CF_MERKLE_HASH_LEN);
}

static int check_key(const cf_key *key)
{
    if (key == NULL || cf_key_get_type(key) != CF_KEY_ED25519)
        return cf_err_set(CF_E_INVAL, "the tree-head key must be an Ed25519 key");
    return 0;
}

int cf_audit_sth_sign(cf_audit_sth *sth, const cf_key *key)
{
    uint8_t tbs[CF_AUDIT_STH_TBS_LEN];
    char kid[CF_KEY_THUMBPRINT_LEN + 1];
    cf_buf sig;
    int rc;

    CF_GUARD(check_key(key));
    if (!cf_key_has_private(key))
        return cf_err_set(CF_E_INVAL, "signing a tree head needs the private key");
    cf_audit_sth_tbs(sth, tbs);
    cf_buf_init(&sig, CF_KEY_MAX_SIG_LEN);
    CF_GUARD_OUT(cf_key_sign(key, CF_SIG_RAW, tbs, sizeof(tbs), &sig));
    CF_ENSURE_OUT(sig.len == CF_ED25519_SIG_LEN, CF_E_CRYPTO);
    CF_GUARD_OUT(cf_key_thumbprint(key, kid));
    memcpy(sth->signature, sig.data, CF_ED25519_SIG_LEN);
    memcpy(sth->key_id, kid, sizeof(kid));
    rc = 0;
out:
    cf_buf_free(&sig);
    return rc;
}

int cf_audit_sth_verify(const cf_audit_sth *sth, const cf_key *key)
{
    uint8_t tbs[CF_AUDIT_STH_TBS_LEN];

    CF_GUARD(check_key(key));
    cf_audit_sth_tbs(sth, tbs);
    return cf_key_verify(key, CF_SIG_RAW, tbs, sizeof(tbs), sth->signature, CF_ED25519_SIG_LEN) == 0
               ? 0
               : CF_E_SIGNATURE;
}

int cf_audit_sth_to_json(const cf_audit_sth *sth, json_t **ret)
{
    char root[2 * CF_MERKLE_HASH_LEN + 1];
    char sig[CF_ED25519_SIG_LEN * 2];
    json_t *o;

    cf_hex_encode(sth->root, CF_MERKLE_HASH_LEN, root);
    cf_b64url_encode(sth->signature, CF_ED25519_SIG_LEN, sig);
    o = json_pack("{s:I,s:I,s:I,s:s,s:s}", "id", (json_int_t)sth->id, "size",
                  (json_int_t)sth->size, "timestamp", (json_int_t)sth->timestamp_ms, "root", root,
                  "signature", sig);
    CF_ENSURE(o != NULL, CF_E_NOMEM);
    if (sth->key_id[0] != '\0' && json_object_set_new(o, "key_id", json_string(sth->key_id)) != 0) {
        json_decref(o);
        return CF_E_NOMEM;
    }
    *ret = o;
    return 0;
}

int cf_audit_sth_from_json(const json_t *obj, cf_audit_sth *ret)
{
    static const char *const fields[] = {"id",        "size",   "timestamp", "root",
                                         "signature", "key_id", NULL};
    cf_audit_sth s;
    uint64_t id = 0;
    const char *kid = NULL;
    cf_buf sig;
    int rc;

    memset(&s, 0, sizeof(s));
    if (!json_is_object(obj))
        return cf_err_set(CF_E_PARSE, "a tree head must be a JSON object");
    CF_GUARD(cf_json_only_keys(obj, fields));
    CF_GUARD(cf_json_get_u64(obj, "id", false, INT64_MAX, &id));
    CF_GUARD(cf_json_get_u64(obj, "size", true, CF_MERKLE_MAX_SIZE, &s.size));
    CF_GUARD(cf_json_get_u64(obj, "timestamp", true, (uint64_t)CF_AUDIT_MAX_TIME_MS,
                             &s.timestamp_ms));
    CF_GUARD(cf_json_get_hex(obj, "root", true, s.root, CF_MERKLE_HASH_LEN));
    CF_GUARD(cf_json_get_str(obj, "key_id", false, CF_KEY_THUMBPRINT_LEN, &kid));
    if (kid != NULL) {
        size_t n = strlen(kid);
        bool ok = n == CF_KEY_THUMBPRINT_LEN;
        for (size_t i = 0; ok && i < n; i++) {
            char c = kid[i];
            ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                 c == '-' || c == '_';
        }
        if (!ok)
            return cf_err_set(CF_E_PARSE, "field 'key_id' must be a base64url key thumbprint");
        memcpy(s.key_id, kid, n + 1);
    }
    cf_buf_init(&sig, CF_ED25519_SIG_LEN);
    rc = cf_json_get_b64url(obj, "signature", true, CF_ED25519_SIG_LEN, &sig);
    if (rc == 0 && sig.len != CF_ED25519_SIG_LEN)
        rc = cf_err_set(CF_E_PARSE, "field 'signature' must hold %d bytes", CF_ED25519_SIG_LEN);
    if (rc == 0)
        memcpy(s.signature, sig.data, CF_ED25519_SIG_LEN);
    cf_buf_free(&sig);
    CF_GUARD(rc);
    s.id = (int64_t)id;
    *ret = s;
    return 0;
}

int cf_audit_sth_parse(const void *data, size_t len, cf_audit_sth *ret)
{
    json_t *obj = NULL;
    int rc;

    CF_GUARD(cf_json_parse_object(data, len, CF_AUDIT_MAX_STH_JSON, &obj));
    rc = cf_audit_sth_from_json(obj, ret);
    json_decref(obj);
    return rc;
}

int cf_audit_proof_to_json(const cf_merkle_proof *p, json_t **ret)
{
    json_t *a = json_array();

    CF_ENSURE(a != NULL, CF_E_NOMEM);
    for (size_t i = 0; i < p->len; i++) {
        char hex[2 * CF_MERKLE_HASH_LEN + 1];
        cf_hex_encode(p->h[i], CF_MERKLE_HASH_LEN, hex);
        if (json_array_append_new(a, json_string(hex)) != 0) {
            json_decref(a);
            return CF_E_NOMEM;
        }
    }
    *ret = a;
    return 0;
}

int cf_audit_proof_from_json(const json_t *arr, cf_merkle_proof *ret)
{
    cf_merkle_proof p;
    size_t n;

    if (!json_is_array(arr))
        return cf_err_set(CF_E_PARSE, "a proof must be a JSON array of hex hashes");
    n = json_array_size(arr);
    if (n > CF_MERKLE_MAX_PROOF)
        return cf_err_set(CF_E_TOO_LARGE, "a proof has at most %d hashes", CF_MERKLE_MAX_PROOF);
    p.len = n;
    for (size_t i = 0; i < n; i++) {
        const json_t *v = json_array_get(arr, i);
        const char *s = json_string_value(v);
        if (s == NULL || json_string_length(v) != 2 * CF_MERKLE_HASH_LEN ||
            cf_hex_decode(s, p.h[i], CF_MERKLE_HASH_LEN) != 0)
            return cf_err_set(CF_E_PARSE, "proof element %zu must be %d hex digits", i,
                              2 * CF_MERKLE_HASH_LEN);
    }
    memcpy(ret, &p, sizeof(p));
    return 0;
}
