/*
 * TEE <-> KMS codecs (src/tee/kmswire.c) against an independent KMS side
 * written here with the HPKE primitives directly, following the wire format in
 * docs/internals/tee.md "KMS protocol": what the TEE seals the KMS can open,
 * what the KMS seals the TEE opens, and nothing else opens.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attest/binding.h"
#include "base/err.h"
#include "base/json.h"
#include "base/parse.h"
#include "base/secmem.h"
#include "crypto/hpke.h"
#include "tee/kmswire.h"
#include "test.h"

static cf_hpke_key *g_tee, *g_kms, *g_other;

static cf_hpke_params params(const char *info)
{
    cf_hpke_params p;
    memset(&p, 0, sizeof(p));
    p.suite = CF_HPKE_SUITE_COFFER;
    p.mode = CF_HPKE_MODE_AUTH;
    p.info = (const uint8_t *)info;
    p.info_len = strlen(info);
    return p;
}

static json_t *obj(const cf_buf *b)
{
    json_t *o = NULL;
    if (cf_json_parse_object(b->data, b->len, 1 << 20, &o) < 0)
        abort();
    return o;
}

static void b64(const json_t *o, const char *key, cf_buf *out)
{
    if (cf_json_get_b64url(o, key, true, 4096, out) < 0)
        abort();
}

/* The KMS's answer, sealed by `sender` to `recipient` with the given plaintext. */
static void kms_answer(const cf_hpke_key *sender, const cf_hpke_key *recipient, const char *info,
                       const char *aad, const char *plaintext, cf_buf *out)
{
    cf_hpke_params p = params(info);
    uint8_t enc[CF_HPKE_MAX_ENC];
    size_t enc_len = 0;
    cf_buf ct;
    char *e, *c;

    cf_buf_init(&ct, 4096);
    if (cf_hpke_seal_once(&p, recipient, sender, (const uint8_t *)aad, strlen(aad),
                          (const uint8_t *)plaintext, strlen(plaintext), enc, &enc_len, &ct) < 0)
        abort();
    e = cf_b64url_encode_alloc(enc, enc_len);
    c = cf_b64url_encode_alloc(ct.data, ct.len);
    if (e == NULL || c == NULL || cf_buf_printf(out, "{\"enc\":\"%s\",\"ct\":\"%s\"}", e, c) < 0)
        abort();
    free(e);
    free(c);
    cf_buf_free(&ct);
}

static char *b64s(const uint8_t *p, size_t n)
{
    char *s = cf_b64url_encode_alloc(p, n);
    if (s == NULL)
        abort();
    return s;
}

static uint8_t g_otk[32], g_ck[32];

/* A well-formed release plaintext with the fields given (NULL = default). */
static void plaintext(char *out, size_t n, const char *otk_id, const char *tee_id,
                      const char *extra)
{
    char *otk = b64s(g_otk, 32), *ck = b64s(g_ck, 32);
    if ((size_t)snprintf(out, n,
                         "{\"client_key\":\"%s\",\"otk\":\"%s\",\"otk_id\":\"%s\",\"tee_id\":\"%s\","
                         "\"tenant\":\"tenant-a\"%s}",
                         ck, otk, otk_id, tee_id, extra ? extra : "") >= n)
        abort();
    free(otk);
    free(ck);
}

static void test_release_request_opens_at_kms(void)
{
    cf_hpke_params p = params(CF_TEE_RELEASE_REQUEST_INFO);
    cf_buf body, enc, ct, pt;
    json_t *o, *inner = NULL;
    const char *s = NULL;
    uint64_t ts = 0;

    cf_buf_init(&body, 1 << 16);
    cf_buf_init(&enc, 64);
    cf_buf_init(&ct, 4096);
    cf_buf_init_secret(&pt, 4096);
    T_OK(cf_tee_release_request(g_tee, g_kms, "otk-1", "tee-9", 1700000000, &body));
    o = obj(&body);
    T_OK(cf_json_get_str(o, "tee_id", true, 128, &s));
    T_STREQ(s, "tee-9");
    T_EQ(json_object_size(o), 3);
    b64(o, "enc", &enc);
    b64(o, "ct", &ct);
    T_EQ(enc.len, 32);
    /* The KMS opens it with its release key, the TEE's registered key as sender,
     * aad = otk_id. */
    T_OK(cf_hpke_open_once(&p, enc.data, enc.len, g_kms, g_tee, (const uint8_t *)"otk-1", 5,
                           ct.data, ct.len, &pt));
    T_OK(cf_json_parse_object(pt.data, pt.len, 4096, &inner));
    T_EQ(json_object_size(inner), 3);
    T_OK(cf_json_get_str(inner, "otk_id", true, 128, &s));
    T_STREQ(s, "otk-1");
    T_OK(cf_json_get_str(inner, "tee_id", true, 128, &s));
    T_STREQ(s, "tee-9");
    T_OK(cf_json_get_u64(inner, "ts", true, UINT64_MAX, &ts));
    T_EQ(ts, 1700000000);
    /* Compact, sorted keys: exactly this text. */
    T_ASSERT(pt.len == strlen("{\"otk_id\":\"otk-1\",\"tee_id\":\"tee-9\",\"ts\":1700000000}") &&
             memcmp(pt.data, "{\"otk_id\":\"otk-1\",\"tee_id\":\"tee-9\",\"ts\":1700000000}",
                    pt.len) == 0);
    cf_buf_reset(&pt);
    /* Bound to the otk_id (aad), the sender (auth) and the recipient. */
    T_ERR(cf_hpke_open_once(&p, enc.data, enc.len, g_kms, g_tee, (const uint8_t *)"otk-2", 5,
                            ct.data, ct.len, &pt),
          CF_E_DECRYPT);
    T_ERR(cf_hpke_open_once(&p, enc.data, enc.len, g_kms, g_other, (const uint8_t *)"otk-1", 5,
                            ct.data, ct.len, &pt),
          CF_E_DECRYPT);
    T_ERR(cf_hpke_open_once(&p, enc.data, enc.len, g_other, g_tee, (const uint8_t *)"otk-1", 5,
                            ct.data, ct.len, &pt),
          CF_E_DECRYPT);
    /* Bad ids are refused before anything is sealed. */
    cf_buf_reset(&body);
    T_ERR(cf_tee_release_request(g_tee, g_kms, "otk 1", "tee-9", 1, &body), CF_E_INVAL);
    T_ERR(cf_tee_release_request(g_tee, g_kms, "otk-1", "", 1, &body), CF_E_INVAL);
    T_EQ(body.len, 0);
    json_decref(inner);
    json_decref(o);
    cf_buf_free(&body);
    cf_buf_free(&enc);
    cf_buf_free(&ct);
    cf_buf_free(&pt);
}

static void test_release_answer_opens(void)
{
    char pt[1024];
    cf_buf ans;
    cf_tee_release r;

    memset(&r, 0, sizeof(r));
    cf_buf_init(&ans, 1 << 16);
    plaintext(pt, sizeof(pt), "otk-1", "tee-9", NULL);
    kms_answer(g_kms, g_tee, CF_TEE_RELEASE_ANSWER_INFO, "otk-1", pt, &ans);
    T_OK(cf_tee_release_answer_open(g_tee, g_kms, "otk-1", "tee-9", ans.data, ans.len, &r));
    T_EQ(r.otk.len, 32);
    T_MEMEQ(r.otk.p, g_otk, 32);
    T_MEMEQ(r.client_key, g_ck, 32);
    T_STREQ(r.tenant, "tenant-a");
    cf_tee_release_clear(&r);
    T_ASSERT(r.otk.p == NULL);
    cf_buf_free(&ans);
}

static void expect_refused(const cf_hpke_key *sender, const cf_hpke_key *recipient,
                           const char *info, const char *aad, const char *pt, int err)
{
    cf_buf ans;
    cf_tee_release r;
    int rc;

    memset(&r, 0, sizeof(r));
    cf_buf_init(&ans, 1 << 16);
    kms_answer(sender, recipient, info, aad, pt, &ans);
    rc = cf_tee_release_answer_open(g_tee, g_kms, "otk-1", "tee-9", ans.data, ans.len, &r);
    T_ASSERT_MSG(rc == err, "got %d (%s), want %d", rc, cf_err_detail(rc), err);
    T_ASSERT(r.otk.p == NULL);
    cf_buf_free(&ans);
}

static void test_release_answer_refusals(void)
{
    char pt[1024], bad[1024];

    plaintext(pt, sizeof(pt), "otk-1", "tee-9", NULL);
    /* Not sealed by the pinned KMS key, sealed to another TEE, another info or
     * another otk_id as aad. */
    expect_refused(g_other, g_tee, CF_TEE_RELEASE_ANSWER_INFO, "otk-1", pt, CF_E_DECRYPT);
    expect_refused(g_kms, g_other, CF_TEE_RELEASE_ANSWER_INFO, "otk-1", pt, CF_E_DECRYPT);
    expect_refused(g_kms, g_tee, CF_TEE_RELEASE_REQUEST_INFO, "otk-1", pt, CF_E_DECRYPT);
    expect_refused(g_kms, g_tee, CF_TEE_RELEASE_ANSWER_INFO, "otk-2", pt, CF_E_DECRYPT);
    /* Validly sealed, but for another OTK or another TEE. */
    plaintext(bad, sizeof(bad), "otk-2", "tee-9", NULL);
    expect_refused(g_kms, g_tee, CF_TEE_RELEASE_ANSWER_INFO, "otk-1", bad, CF_E_VERIFY);
    plaintext(bad, sizeof(bad), "otk-1", "tee-8", NULL);
    expect_refused(g_kms, g_tee, CF_TEE_RELEASE_ANSWER_INFO, "otk-1", bad, CF_E_VERIFY);
    /* Malformed plaintexts. */
    plaintext(bad, sizeof(bad), "otk-1", "tee-9", ",\"extra\":1");
    expect_refused(g_kms, g_tee, CF_TEE_RELEASE_ANSWER_INFO, "otk-1", bad, CF_E_PARSE);
    expect_refused(g_kms, g_tee, CF_TEE_RELEASE_ANSWER_INFO, "otk-1",
                   "{\"otk_id\":\"otk-1\",\"tee_id\":\"tee-9\"}", CF_E_PARSE);
    expect_refused(g_kms, g_tee, CF_TEE_RELEASE_ANSWER_INFO, "otk-1",
                   "{\"client_key\":\"AAAA\",\"otk\":\"AAAA\",\"otk_id\":\"otk-1\",\"tee_id\":"
                   "\"tee-9\",\"tenant\":\"t\"}",
                   CF_E_PARSE); /* short keys */
    expect_refused(g_kms, g_tee, CF_TEE_RELEASE_ANSWER_INFO, "otk-1", "not json", CF_E_PARSE);
}

static void test_release_answer_envelope(void)
{
    char pt[1024];
    cf_buf ans;
    json_t *o;
    cf_tee_release r;
    char *s;

    memset(&r, 0, sizeof(r));
    cf_buf_init(&ans, 1 << 16);
    plaintext(pt, sizeof(pt), "otk-1", "tee-9", NULL);
    kms_answer(g_kms, g_tee, CF_TEE_RELEASE_ANSWER_INFO, "otk-1", pt, &ans);
    /* One flipped bit of the ciphertext. */
    o = obj(&ans);
    {
        cf_buf ct;
        char *c;
        cf_buf_init(&ct, 4096);
        b64(o, "ct", &ct);
        ct.data[ct.len / 2] ^= 1;
        c = b64s(ct.data, ct.len);
        T_OK(json_object_set_new(o, "ct", json_string(c)) == 0 ? 0 : -1);
        free(c);
        cf_buf_free(&ct);
    }
    s = cf_json_dump(o);
    T_ERR(cf_tee_release_answer_open(g_tee, g_kms, "otk-1", "tee-9", (const uint8_t *)s,
                                     strlen(s), &r),
          CF_E_DECRYPT);
    free(s);
    /* An extra or a missing outer field. */
    T_OK(json_object_set_new(o, "x", json_true()) == 0 ? 0 : -1);
    s = cf_json_dump(o);
    T_ERR(cf_tee_release_answer_open(g_tee, g_kms, "otk-1", "tee-9", (const uint8_t *)s,
                                     strlen(s), &r),
          CF_E_PARSE);
    free(s);
    T_OK(json_object_del(o, "x"));
    T_OK(json_object_del(o, "enc"));
    s = cf_json_dump(o);
    T_ERR(cf_tee_release_answer_open(g_tee, g_kms, "otk-1", "tee-9", (const uint8_t *)s,
                                     strlen(s), &r),
          CF_E_PARSE);
    free(s);
    T_ERR(cf_tee_release_answer_open(g_tee, g_kms, "otk-1", "tee-9", (const uint8_t *)"[]", 2,
                                     &r),
          CF_E_PARSE);
    json_decref(o);
    cf_buf_free(&ans);
}

static void test_registry_codecs(void)
{
    static const char nonce_hex[] =
        "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
    uint8_t nonce[32], pub[32];
    char id[CF_ID_MAX_LEN + 1];
    const char *s = NULL;
    cf_provider_evidence ev;
    cf_buf body, plain, v;
    json_t *o, *e = NULL;
    char ans[256];

    T_ERR(snprintf(ans, sizeof(ans), "{\"nonce\":\"%s\",\"expires_at\":\"x\"}", nonce_hex) < 0, 0);
    T_OK(cf_tee_nonce_answer_parse((const uint8_t *)ans, strlen(ans), nonce));
    T_EQ(nonce[31], 0x1f);
    T_ERR(cf_tee_nonce_answer_parse((const uint8_t *)"{\"nonce\":\"00\"}", 14, nonce), CF_E_PARSE);
    T_ERR(cf_tee_nonce_answer_parse((const uint8_t *)"{}", 2, nonce), CF_E_PARSE);

    memset(&ev, 0, sizeof(ev));
    memset(ev.report, 0xab, sizeof(ev.report));
    memset(pub, 0x42, sizeof(pub));
    cf_buf_init_secret(&body, 1 << 16);
    cf_buf_init(&plain, 1 << 16);
    cf_buf_init(&v, 4096);
    /* The join token is a secret: only a secret buffer takes the body. */
    T_ERR(cf_tee_register_body("join", nonce, pub, 32, &ev, NULL, &plain), CF_E_INVAL);
    T_OK(cf_tee_register_body("join-token-1", nonce, pub, 32, &ev, "http://127.0.0.1:7001", &body));
    o = obj(&body);
    T_EQ(json_object_size(o), 5);
    T_OK(cf_json_get_str(o, "endpoint", true, 128, &s));
    T_STREQ(s, "http://127.0.0.1:7001");
    T_OK(cf_json_get_str(o, "join_token", true, 128, &s));
    T_STREQ(s, "join-token-1");
    T_OK(cf_json_get_str(o, "nonce", true, 128, &s));
    T_STREQ(s, nonce_hex);
    b64(o, "public_key", &v);
    T_ASSERT(v.len == 32 && memcmp(v.data, pub, 32) == 0);
    T_OK(cf_json_get_obj(o, "evidence", true, &e));
    T_OK(cf_json_get_str(e, "platform", true, 32, &s));
    T_STREQ(s, "sev-snp");
    cf_buf_reset(&v);
    b64(e, "report", &v);
    T_ASSERT(v.len == 1184 && v.data[0] == 0xab);
    T_ASSERT(json_object_get(e, "cert") == NULL); /* no certificate given */
    json_decref(o);

#define ANSWER(text) cf_tee_register_answer_parse((const uint8_t *)(text), strlen(text), id)
    T_OK(ANSWER("{\"id\":\"tee-1\",\"status\":\"active\"}"));
    T_STREQ(id, "tee-1");
    T_ERR(ANSWER("{\"id\":\"tee 1\"}"), CF_E_PARSE);
    T_ERR(ANSWER("{\"id\":7}"), CF_E_PARSE);
    T_ERR(ANSWER("{}"), CF_E_PARSE);
#undef ANSWER
    cf_buf_free(&body);
    cf_buf_free(&plain);
    cf_buf_free(&v);
}

static void test_ids(void)
{
    char long_id[CF_ID_MAX_LEN + 2];
    T_ASSERT(cf_tee_id_valid("a"));
    T_ASSERT(cf_tee_id_valid("tee_1/x:y"));
    T_ASSERT(!cf_tee_id_valid(""));
    T_ASSERT(!cf_tee_id_valid("a b"));
    T_ASSERT(!cf_tee_id_valid("caf\xc3\xa9"));
    memset(long_id, 'a', sizeof(long_id) - 1);
    long_id[sizeof(long_id) - 1] = '\0';
    T_ASSERT(!cf_tee_id_valid(long_id));
    long_id[CF_ID_MAX_LEN] = '\0';
    T_ASSERT(cf_tee_id_valid(long_id));
}

int main(void)
{
    cf_tee_json_wipe_on_free(); /* as in coffer-tee: the codecs must work with it */
    if (cf_hpke_key_generate(CF_HPKE_KEM_X25519_SHA256, &g_tee) < 0 ||
        cf_hpke_key_generate(CF_HPKE_KEM_X25519_SHA256, &g_kms) < 0 ||
        cf_hpke_key_generate(CF_HPKE_KEM_X25519_SHA256, &g_other) < 0)
        return 1;
    for (int i = 0; i < 32; i++) {
        g_otk[i] = (uint8_t)(i + 1);
        g_ck[i] = (uint8_t)(0xf0 ^ i);
    }
    T_RUN(test_release_request_opens_at_kms);
    T_RUN(test_release_answer_opens);
    T_RUN(test_release_answer_refusals);
    T_RUN(test_release_answer_envelope);
    T_RUN(test_registry_codecs);
    T_RUN(test_ids);
    cf_hpke_key_free(g_tee);
    cf_hpke_key_free(g_kms);
    cf_hpke_key_free(g_other);
    return t_done();
}
