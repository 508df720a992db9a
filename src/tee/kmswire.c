/*
 * TEE <-> KMS codecs. Formats: kmswire.h and docs/internals/tee.md "KMS protocol".
 */
#include "tee/kmswire.h"

#include <malloc.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/json.h"
#include "base/parse.h"

int cf_tee_id_valid(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n > CF_ID_MAX_LEN)
        return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x21 || (unsigned char)s[i] > 0x7e)
            return 0;
    return 1;
}

static cf_hpke_params auth_params(const char *info)
{
    cf_hpke_params p;

    memset(&p, 0, sizeof(p));
    p.suite = CF_HPKE_SUITE_COFFER;
    p.mode = CF_HPKE_MODE_AUTH;
    p.info = (const uint8_t *)info;
    p.info_len = strlen(info);
    return p;
}

/* Compact, sorted serialisation appended to out (which may be secret: jansson
 * writes straight into it). */
static int dump_into(const json_t *v, cf_buf *out)
{
    size_t n = json_dumpb(v, NULL, 0, JSON_COMPACT | JSON_SORT_KEYS);
    size_t before = out->len;
    uint8_t *p;

    CF_ENSURE(n > 0, CF_E_NOMEM);
    CF_GUARD(cf_buf_put_space(out, n, &p));
    if (json_dumpb(v, (char *)p, n, JSON_COMPACT | JSON_SORT_KEYS) != n) {
        cf_wipe(p, n);
        out->len = before;
        return CF_E_INTERNAL;
    }
    return 0;
}

static int set_b64(json_t *o, const char *key, const uint8_t *p, size_t n)
{
    char *s = cf_b64url_encode_alloc(p, n);
    int rc;

    if (s == NULL)
        return CF_E_NOMEM;
    rc = json_object_set_new(o, key, json_string(s)) == 0 ? 0 : CF_E_NOMEM;
    free(s);
    return rc;
}

int cf_tee_nonce_answer_parse(const uint8_t *body, size_t len,
                              uint8_t ret_nonce[CF_BINDING_NONCE_LEN])
{
    uint8_t nonce[CF_BINDING_NONCE_LEN];
    json_t *o = NULL;
    int rc;

    rc = cf_json_parse_object(body, len, CF_TEE_KMS_MAX_RESPONSE, &o);
    if (rc == 0)
        rc = cf_json_get_hex(o, "nonce", true, nonce, sizeof(nonce));
    if (rc == 0)
        memcpy(ret_nonce, nonce, sizeof(nonce));
    else
        rc = cf_err_set(rc, "KMS nonce answer: %s", cf_err_detail(rc));
    json_decref(o);
    return rc;
}

int cf_tee_evidence_json(const cf_provider_evidence *ev, json_t **ret)
{
    json_t *o = json_object();
    int rc = 0;

    CF_ENSURE(o != NULL, CF_E_NOMEM);
    CF_ENSURE_OUT(json_object_set_new(o, "platform", json_string(CF_TEE_PLATFORM_SNP)) == 0,
                  CF_E_NOMEM);
    CF_GUARD_OUT(set_b64(o, "report", ev->report, sizeof(ev->report)));
    if (ev->cert_der != NULL && ev->cert_len > 0)
        CF_GUARD_OUT(set_b64(o, "cert", ev->cert_der, ev->cert_len));
    *ret = o;
    o = NULL;
out:
    json_decref(o);
    return rc;
}

int cf_tee_register_body(const char *join_token, const uint8_t nonce[CF_BINDING_NONCE_LEN],
                         const uint8_t *public_key, size_t key_len,
                         const cf_provider_evidence *ev, const char *endpoint, cf_buf *out)
{
    char hex[2 * CF_BINDING_NONCE_LEN + 1];
    json_t *o = json_object(), *evj = NULL;
    int rc = 0;

    CF_ENSURE_OUT(o != NULL, CF_E_NOMEM);
    CF_ENSURE_OUT(out->secret, cf_err_set(CF_E_INVAL, "the registration body carries the join "
                                                      "token: it needs a secret buffer"));
    cf_hex_encode(nonce, CF_BINDING_NONCE_LEN, hex);
    CF_GUARD_OUT(cf_tee_evidence_json(ev, &evj));
    CF_ENSURE_OUT(json_object_set_new(o, "join_token", json_string(join_token)) == 0 &&
                      json_object_set_new(o, "nonce", json_string(hex)) == 0 &&
                      json_object_set(o, "evidence", evj) == 0,
                  CF_E_NOMEM);
    CF_GUARD_OUT(set_b64(o, "public_key", public_key, key_len));
    /* Where the gateway and the attestation service reach this TEE: routing
     * data for them, not a security claim (everything they get is verified). */
    if (endpoint != NULL)
        CF_ENSURE_OUT(json_object_set_new(o, "endpoint", json_string(endpoint)) == 0, CF_E_NOMEM);
    CF_GUARD_OUT(dump_into(o, out));
out:
    json_decref(evj);
    json_decref(o);
    return rc;
}

int cf_tee_register_answer_parse(const uint8_t *body, size_t len, char ret_id[CF_ID_MAX_LEN + 1])
{
    const char *id = NULL;
    json_t *o = NULL;
    int rc;

    rc = cf_json_parse_object(body, len, CF_TEE_KMS_MAX_RESPONSE, &o);
    if (rc == 0)
        rc = cf_json_get_str(o, "id", true, CF_ID_MAX_LEN, &id);
    if (rc == 0 && !cf_tee_id_valid(id))
        rc = cf_err_set(CF_E_PARSE, "field 'id' must be 1..%u visible ASCII characters",
                        (unsigned)CF_ID_MAX_LEN);
    if (rc == 0)
        memcpy(ret_id, id, strlen(id) + 1);
    else
        rc = cf_err_set(rc, "KMS registration answer: %s", cf_err_detail(rc));
    json_decref(o);
    return rc;
}

int cf_tee_release_request(const cf_hpke_key *tee_key, const cf_hpke_key *kms_key,
                           const char *otk_id, const char *tee_id, int64_t ts, cf_buf *out)
{
    cf_hpke_params p = auth_params(CF_TEE_RELEASE_REQUEST_INFO);
    uint8_t enc[CF_HPKE_MAX_ENC];
    size_t enc_len = 0, before = out->len;
    json_t *pt = NULL, *body = NULL;
    cf_buf ptb, ct;
    int rc = 0;

    cf_buf_init(&ptb, CF_TEE_RELEASE_MAX_PLAINTEXT);
    cf_buf_init(&ct, CF_TEE_RELEASE_MAX_PLAINTEXT + CF_HPKE_NT);
    CF_ENSURE_OUT(cf_tee_id_valid(otk_id) && cf_tee_id_valid(tee_id) && ts >= 0, CF_E_INVAL);
    pt = json_pack("{s:s, s:s, s:I}", "otk_id", otk_id, "tee_id", tee_id, "ts", (json_int_t)ts);
    CF_ENSURE_OUT(pt != NULL, CF_E_NOMEM);
    CF_GUARD_OUT(dump_into(pt, &ptb));
    CF_GUARD_OUT(cf_hpke_seal_once(&p, kms_key, tee_key, (const uint8_t *)otk_id, strlen(otk_id),
                                   ptb.data, ptb.len, enc, &enc_len, &ct));
    body = json_pack("{s:s}", "tee_id", tee_id);
    CF_ENSURE_OUT(body != NULL, CF_E_NOMEM);
    CF_GUARD_OUT(set_b64(body, "enc", enc, enc_len));
    CF_GUARD_OUT(set_b64(body, "ct", ct.data, ct.len));
    CF_GUARD_OUT(dump_into(body, out));
out:
    if (rc < 0)
        out->len = before;
    json_decref(pt);
    json_decref(body);
    cf_buf_free(&ptb);
    cf_buf_free(&ct);
    return rc;
}

void cf_tee_release_clear(cf_tee_release *r)
{
    cf_secret_free(&r->otk);
    memset(r, 0, sizeof(*r));
}

int cf_tee_release_plaintext_parse(const uint8_t *pt, size_t len, const char *otk_id,
                                   const char *tee_id, cf_tee_release *ret)
{
    static const char *const keys[] = {"otk_id", "otk", "tenant", "client_key", "tee_id", NULL};
    const char *got_otk_id = NULL, *got_tee_id = NULL, *tenant = NULL;
    cf_tee_release r;
    cf_buf otk, ck;
    json_t *o = NULL;
    int rc;

    memset(&r, 0, sizeof(r));
    cf_buf_init_secret(&otk, CF_TEE_OTK_LEN);
    cf_buf_init(&ck, CF_TEE_KEY_LEN);
    rc = cf_json_parse_object(pt, len, CF_TEE_RELEASE_MAX_PLAINTEXT, &o);
    if (rc == 0)
        rc = cf_json_only_keys(o, keys);
    if (rc == 0)
        rc = cf_json_get_str(o, "otk_id", true, CF_ID_MAX_LEN, &got_otk_id);
    if (rc == 0)
        rc = cf_json_get_str(o, "tee_id", true, CF_ID_MAX_LEN, &got_tee_id);
    if (rc == 0)
        rc = cf_json_get_str(o, "tenant", true, CF_ID_MAX_LEN, &tenant);
    if (rc == 0)
        rc = cf_json_get_b64url(o, "otk", true, CF_TEE_OTK_LEN, &otk);
    if (rc == 0)
        rc = cf_json_get_b64url(o, "client_key", true, CF_TEE_KEY_LEN, &ck);
    if (rc < 0) {
        rc = cf_err_set(rc, "KMS release answer: %s", cf_err_detail(rc));
        goto out;
    }
    CF_ENSURE_OUT(otk.len == CF_TEE_OTK_LEN && ck.len == CF_TEE_KEY_LEN,
                  cf_err_set(CF_E_PARSE, "KMS release answer: 'otk' and 'client_key' must be "
                                         "32 bytes"));
    CF_ENSURE_OUT(cf_tee_id_valid(tenant),
                  cf_err_set(CF_E_PARSE, "KMS release answer: 'tenant' is not a valid id"));
    /* Bound to this request and this TEE: an answer for another OTK or another
     * TEE, even validly sealed, is not ours to use. */
    CF_ENSURE_OUT(strcmp(got_otk_id, otk_id) == 0 && strcmp(got_tee_id, tee_id) == 0,
                  cf_err_set(CF_E_VERIFY, "KMS release answer is for another one-time key or "
                                          "another TEE"));
    CF_GUARD_OUT(cf_secret_from(&r.otk, otk.data, CF_TEE_OTK_LEN));
    memcpy(r.tenant, tenant, strlen(tenant) + 1);
    memcpy(r.client_key, ck.data, CF_TEE_KEY_LEN);
    *ret = r;
    memset(&r, 0, sizeof(r));
out:
    cf_secret_free(&r.otk);
    json_decref(o);
    cf_buf_free(&otk);
    cf_buf_free(&ck);
    return rc;
}

int cf_tee_release_answer_open(const cf_hpke_key *tee_key, const cf_hpke_key *kms_key,
                               const char *otk_id, const char *tee_id, const uint8_t *body,
                               size_t len, cf_tee_release *ret)
{
    static const char *const keys[] = {"enc", "ct", NULL};
    cf_hpke_params p = auth_params(CF_TEE_RELEASE_ANSWER_INFO);
    cf_buf enc, ct, pt;
    json_t *o = NULL;
    int rc;

    cf_buf_init(&enc, CF_HPKE_MAX_ENC);
    cf_buf_init(&ct, CF_TEE_RELEASE_MAX_PLAINTEXT + CF_HPKE_NT);
    cf_buf_init_secret(&pt, CF_TEE_RELEASE_MAX_PLAINTEXT);
    rc = cf_json_parse_object(body, len, CF_TEE_KMS_MAX_RESPONSE, &o);
    if (rc == 0)
        rc = cf_json_only_keys(o, keys);
    if (rc == 0)
        rc = cf_json_get_b64url(o, "enc", true, CF_HPKE_MAX_ENC, &enc);
    if (rc == 0)
        rc = cf_json_get_b64url(o, "ct", true, CF_TEE_RELEASE_MAX_PLAINTEXT + CF_HPKE_NT, &ct);
    if (rc < 0) {
        rc = cf_err_set(rc, "KMS release answer: %s", cf_err_detail(rc));
        goto out;
    }
    /* Auth mode with the pinned KMS key as sender: a forged or altered answer,
     * or one sealed to another TEE, does not open. */
    rc = cf_hpke_open_once(&p, enc.data, enc.len, tee_key, kms_key, (const uint8_t *)otk_id,
                           strlen(otk_id), ct.data, ct.len, &pt);
    if (rc < 0) {
        rc = cf_err_set(CF_E_DECRYPT, "KMS release answer does not open with this TEE's key "
                                      "and the pinned KMS release key");
        goto out;
    }
    CF_GUARD_OUT(cf_tee_release_plaintext_parse(pt.data, pt.len, otk_id, tee_id, ret));
out:
    json_decref(o);
    cf_buf_free(&enc);
    cf_buf_free(&ct);
    cf_buf_free(&pt);
    return rc;
}

/* ---- jansson allocator: wipe on free ---- */

static void *json_alloc(size_t n) { return malloc(n); }

static void json_free_wiped(void *p)
{
    if (p == NULL)
        return;
    cf_wipe(p, malloc_usable_size(p));
    free(p);
}

void cf_tee_json_wipe_on_free(void) { json_set_alloc_funcs(json_alloc, json_free_wiped); }
