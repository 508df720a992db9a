/*
 * CFE1 envelope / CFR1 response: round trips, strict parsing, tampering of every
 * field, wrong keys, and a forged envelope whose inner layer comes from another
 * client key. forge() below builds envelopes independently of envelope.c from the
 * format description (HPKE + OpenSSL directly), so the tests also pin the format.
 */
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>

#include "base/buf.h"
#include "base/err.h"
#include "base/limits.h"
#include "base/parse.h"
#include "base/secmem.h"
#include "crypto/hash.h"
#include "crypto/hpke.h"
#include "proto/envelope.h"
#include "test.h"

static const cf_env_ids IDS = {"req-0001", "tenant-a", "tee-7", "otk-42", "wordcount"};

typedef struct {
    cf_hpke_key *client;     /* client private key */
    cf_hpke_key *client_pub; /* what the KMS vouches for */
    cf_hpke_key *tee;        /* TEE private key */
    cf_hpke_key *tee_pub;    /* what the client verified */
    uint8_t otk[CF_ENV_OTK_LEN];
} world;

static int world_new(world *w)
{
    memset(w, 0, sizeof(*w));
    CF_GUARD(cf_hpke_key_generate(CF_HPKE_KEM_X25519_SHA256, &w->client));
    CF_GUARD(cf_hpke_key_public_only(w->client, &w->client_pub));
    CF_GUARD(cf_hpke_key_generate(CF_HPKE_KEM_X25519_SHA256, &w->tee));
    CF_GUARD(cf_hpke_key_public_only(w->tee, &w->tee_pub));
    return cf_random(w->otk, sizeof(w->otk));
}

static void world_free(world *w)
{
    cf_hpke_key_free(w->client);
    cf_hpke_key_free(w->client_pub);
    cf_hpke_key_free(w->tee);
    cf_hpke_key_free(w->tee_pub);
}

/* parse + open with the world's keys; returns the first error. */
static int parse_open(const world *w, const uint8_t *env, size_t len, cf_buf *out,
                      cf_hpke_ctx **ret_ctx)
{
    cf_env e;

    CF_GUARD(cf_env_parse(env, len, &e));
    return cf_env_open(&e, w->otk, w->tee, w->client_pub, out, ret_ctx);
}

static int try_open(const world *w, const uint8_t *env, size_t len)
{
    cf_buf out;
    int rc;

    cf_buf_init_secret(&out, CF_ENV_MAX_PAYLOAD);
    rc = parse_open(w, env, len, &out, NULL);
    cf_buf_free(&out);
    return rc;
}

static uint32_t header_len_of(const cf_buf *env)
{
    return (uint32_t)env->data[4] << 24 | (uint32_t)env->data[5] << 16 |
           (uint32_t)env->data[6] << 8 | env->data[7];
}

/* Replaces the header of env by new_header (fixing the length field) into out. */
static int rewrite_header(const cf_buf *env, const char *new_header, cf_buf *out)
{
    uint32_t hl = header_len_of(env);

    cf_buf_init(out, CF_ENV_MAX_BYTES);
    CF_GUARD(cf_buf_put(out, "CFE1", 4));
    CF_GUARD(cf_buf_put_u32be(out, (uint32_t)strlen(new_header)));
    CF_GUARD(cf_buf_put_str(out, new_header));
    return cf_buf_put(out, env->data + 8 + hl, env->len - 8 - hl);
}

/* The header of env as a C string (malloc'd). */
static char *header_of(const cf_buf *env)
{
    uint32_t hl = header_len_of(env);
    char *s = malloc(hl + 1);

    if (s != NULL) {
        memcpy(s, env->data + 8, hl);
        s[hl] = 0;
    }
    return s;
}

/* s with the first occurrence of from replaced by to (malloc'd), or NULL. */
static char *replace(const char *s, const char *from, const char *to)
{
    const char *at = strstr(s, from);
    size_t n;
    char *r;

    if (at == NULL)
        return NULL;
    n = strlen(s) - strlen(from) + strlen(to);
    r = malloc(n + 1);
    if (r == NULL)
        return NULL;
    memcpy(r, s, (size_t)(at - s));
    memcpy(r + (at - s), to, strlen(to));
    memcpy(r + (at - s) + strlen(to), at + strlen(from), strlen(at + strlen(from)) + 1);
    return r;
}

/*
 * Independent construction of a CFE1 envelope from the documented format. The header
 * is tmpl with "{CK}" and "{ENC}" replaced by the base64url client key (of
 * header_client) and enc. The inner layer is sealed by inner_sender; the outer key
 * uses header_client's public key.
 */
static int forge(const char *tmpl, const uint8_t otk[32], const cf_hpke_key *header_client,
                 const cf_hpke_key *inner_sender, const cf_hpke_key *tee_pub, const uint8_t *data,
                 size_t n, cf_buf *out, cf_hpke_ctx **ret_ctx)
{
    cf_hpke_params p;
    cf_hpke_ctx *ctx = NULL;
    uint8_t enc[CF_HPKE_MAX_ENC], salt[32], key[32], nonce[12], tag[16], *inner = NULL;
    size_t enc_len = 0, pk_len = 0, inner_len = 0;
    char ck64[64], enc64[64], *h1 = NULL, *h2 = NULL;
    const uint8_t *pk = cf_hpke_key_pub(header_client, &pk_len);
    EVP_CIPHER_CTX *c = NULL;
    int outl = 0, rc = CF_E_CRYPTO;

    memset(&p, 0, sizeof(p));
    p.suite = CF_HPKE_SUITE_COFFER;
    p.mode = CF_HPKE_MODE_AUTH;
    p.info = (const uint8_t *)"coffer/v1 request";
    p.info_len = 17;
    CF_GUARD(cf_hpke_setup_sender(&p, tee_pub, inner_sender, enc, &enc_len, &ctx));
    cf_b64url_encode(pk, pk_len, ck64);
    cf_b64url_encode(enc, enc_len, enc64);
    h1 = replace(tmpl, "{CK}", ck64);
    h2 = h1 != NULL ? replace(h1, "{ENC}", enc64) : NULL;
    inner = malloc(n + 16);
    if (h2 == NULL || inner == NULL)
        goto out;
    CF_GUARD_OUT(cf_hpke_seal(ctx, (const uint8_t *)h2, strlen(h2), data, n, inner, n + 16,
                              &inner_len));
    CF_GUARD_OUT(cf_sha256(pk, pk_len, salt));
    CF_GUARD_OUT(cf_hkdf(CF_SHA256, salt, 32, otk, 32, (const uint8_t *)"coffer/v1 outer", 15,
                         key, 32));
    CF_GUARD_OUT(cf_random(nonce, sizeof(nonce)));
    c = EVP_CIPHER_CTX_new();
    rc = CF_E_CRYPTO;
    if (c == NULL || EVP_EncryptInit_ex(c, EVP_aes_256_gcm(), NULL, key, nonce) != 1 ||
        EVP_EncryptUpdate(c, NULL, &outl, (const uint8_t *)h2, (int)strlen(h2)) != 1 ||
        EVP_EncryptUpdate(c, inner, &outl, inner, (int)inner_len) != 1 ||
        EVP_EncryptFinal_ex(c, tag, &outl) != 1 ||
        EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, 16, tag) != 1)
        goto out;
    CF_GUARD_OUT(cf_buf_put(out, "CFE1", 4));
    CF_GUARD_OUT(cf_buf_put_u32be(out, (uint32_t)strlen(h2)));
    CF_GUARD_OUT(cf_buf_put_str(out, h2));
    CF_GUARD_OUT(cf_buf_put(out, nonce, 12));
    CF_GUARD_OUT(cf_buf_put(out, inner, inner_len));
    CF_GUARD_OUT(cf_buf_put(out, tag, 16));
    if (ret_ctx != NULL) {
        *ret_ctx = ctx;
        ctx = NULL;
    }
    rc = 0;
out:
    EVP_CIPHER_CTX_free(c);
    cf_wipe(key, sizeof(key));
    free(inner);
    free(h1);
    free(h2);
    cf_hpke_ctx_free(ctx);
    return rc;
}

#define STD_TMPL                                                                         \
    "{\"client_key\":\"{CK}\",\"enc\":\"{ENC}\",\"job\":\"wordcount\",\"otk_id\":\"otk-42\"," \
    "\"request_id\":\"req-0001\",\"tee_id\":\"tee-7\",\"tenant\":\"tenant-a\",\"v\":1}"

/* ---- round trips -------------------------------------------------------------------- */

static void roundtrip(size_t n)
{
    world w;
    cf_buf env, data, resp, out;
    cf_env e;
    cf_hpke_ctx *cctx = NULL, *tctx = NULL;
    uint8_t *input = malloc(n ? n : 1), status = 0xff;
    size_t pk_len = 0;
    const uint8_t *pk;

    T_ASSERT(input != NULL);
    for (size_t i = 0; i < n; i++)
        input[i] = (uint8_t)(i * 131 + 7);
    T_OK(world_new(&w));
    cf_buf_init(&env, CF_ENV_MAX_BYTES);
    cf_buf_init_secret(&data, CF_ENV_MAX_PAYLOAD);
    cf_buf_init(&resp, CF_ENV_MAX_RESPONSE_BYTES);
    cf_buf_init_secret(&out, CF_ENV_MAX_PAYLOAD);

    T_OK(cf_env_seal(&IDS, w.otk, w.client, w.tee_pub, input, n, &env, &cctx));
    T_MEMEQ(env.data, "CFE1", 4);
    T_OK(cf_env_parse(env.data, env.len, &e));
    /* Layout: magic, length, header, nonce, ct = data + inner tag, outer tag. */
    T_EQ(e.header_len, header_len_of(&env));
    T_EQ(e.ct_len, n + CF_HPKE_NT);
    T_EQ(env.len, 8 + e.header_len + 12 + n + 16 + 16);
    T_ASSERT(e.header == env.data + 8);
    T_ASSERT(e.tag == env.data + env.len - 16);
    T_STREQ(e.hdr.request_id, "req-0001");
    T_STREQ(e.hdr.tenant, "tenant-a");
    T_STREQ(e.hdr.tee_id, "tee-7");
    T_STREQ(e.hdr.otk_id, "otk-42");
    T_STREQ(e.hdr.job, "wordcount");
    pk = cf_hpke_key_pub(w.client, &pk_len);
    T_MEMEQ(e.hdr.client_key, pk, 32);
    /* Compact JSON with sorted keys. */
    T_ASSERT(memcmp(e.header, "{\"client_key\":\"", 15) == 0);
    T_ASSERT(memchr(e.header, ' ', e.header_len) == NULL);

    T_OK(cf_env_open(&e, w.otk, w.tee, w.client_pub, &data, &tctx));
    T_EQ(data.len, n);
    if (n > 0)
        T_MEMEQ(data.data, input, n);

    /* The TEE answers; only the client's context of this request opens it. */
    T_OK(cf_env_response_seal(tctx, "req-0001", CF_ENV_STATUS_OK, data.data, data.len, &resp));
    T_EQ(resp.len, 4 + 12 + 1 + n + 16);
    T_MEMEQ(resp.data, "CFR1", 4);
    T_OK(cf_env_response_open(cctx, "req-0001", resp.data, resp.len, &status, &out));
    T_EQ(status, CF_ENV_STATUS_OK);
    T_EQ(out.len, n);
    if (n > 0)
        T_MEMEQ(out.data, input, n);

    cf_hpke_ctx_free(cctx);
    cf_hpke_ctx_free(tctx);
    cf_buf_free(&env);
    cf_buf_free(&data);
    cf_buf_free(&resp);
    cf_buf_free(&out);
    world_free(&w);
    free(input);
}

static void test_roundtrip_empty(void) { roundtrip(0); }
static void test_roundtrip_1(void) { roundtrip(1); }
static void test_roundtrip_1mib(void) { roundtrip(1u << 20); }

/* The envelope made by forge() from the format description opens, also with a
 * header in another key order with whitespace (any JSON object is accepted). */
static void test_format_independent(void)
{
    world w;
    cf_buf env, data;
    cf_hpke_ctx *cctx = NULL, *tctx = NULL;
    uint8_t status = 9;
    cf_buf resp, out;

    T_OK(world_new(&w));
    cf_buf_init(&env, CF_ENV_MAX_BYTES);
    cf_buf_init_secret(&data, 1024);
    cf_buf_init(&resp, 1024);
    cf_buf_init_secret(&out, 1024);
    T_OK(forge(STD_TMPL, w.otk, w.client, w.client, w.tee_pub, (const uint8_t *)"hello", 5, &env,
               &cctx));
    T_OK(parse_open(&w, env.data, env.len, &data, &tctx));
    T_EQ(data.len, 5);
    T_MEMEQ(data.data, "hello", 5);
    /* Response made by envelope.c opens with the forged request's context. */
    T_OK(cf_env_response_seal(tctx, "req-0001", 0, (const uint8_t *)"HELLO", 5, &resp));
    T_OK(cf_env_response_open(cctx, "req-0001", resp.data, resp.len, &status, &out));
    T_EQ(status, 0);
    T_MEMEQ(out.data, "HELLO", 5);
    cf_hpke_ctx_free(cctx);
    cf_hpke_ctx_free(tctx);
    cf_buf_reset(&env);
    cf_buf_reset(&data);
    T_OK(forge("{ \"v\": 1, \"request_id\": \"r\", \"tenant\": \"t\", \"tee_id\": \"x\", "
               "\"otk_id\": \"o\", \"job\": \"j\", \"enc\": \"{ENC}\", \"client_key\": \"{CK}\" }",
               w.otk, w.client, w.client, w.tee_pub, (const uint8_t *)"hi", 2, &env, NULL));
    T_OK(parse_open(&w, env.data, env.len, &data, NULL));
    T_MEMEQ(data.data, "hi", 2);
    cf_buf_free(&env);
    cf_buf_free(&data);
    cf_buf_free(&resp);
    cf_buf_free(&out);
    world_free(&w);
}

/* ---- tampering ------------------------------------------------------------------------ */

static void test_tamper_every_byte(void)
{
    world w;
    cf_buf env;
    uint8_t data[40];
    cf_env e;
    int rc, decrypt = 0;

    memset(data, 'd', sizeof(data));
    T_OK(world_new(&w));
    cf_buf_init(&env, CF_ENV_MAX_BYTES);
    T_OK(cf_env_seal(&IDS, w.otk, w.client, w.tee_pub, data, sizeof(data), &env, NULL));
    T_OK(try_open(&w, env.data, env.len));
    /* Flipping any single bit of any byte must be refused. */
    for (size_t i = 0; i < env.len; i++) {
        for (int bit = 0; bit < 8; bit += 7) {
            env.data[i] ^= (uint8_t)(1u << bit);
            rc = try_open(&w, env.data, env.len);
            T_ASSERT_MSG(rc < 0, "flip of bit %d of byte %zu was accepted", bit, i);
            if (rc == CF_E_DECRYPT)
                decrypt++;
            env.data[i] ^= (uint8_t)(1u << bit);
        }
    }
    /* Nonce, ciphertext and tag (12 + 56 + 16 bytes, two bits each) end at the tag. */
    T_ASSERT(decrypt >= 2 * (12 + 56 + 16));
    /* Magic. */
    env.data[0] = 'X';
    T_ERR(cf_env_parse(env.data, env.len, &e), CF_E_PARSE);
    env.data[0] = 'C';
    cf_buf_free(&env);
    world_free(&w);
}

static void test_tamper_regions(void)
{
    world w;
    cf_buf env;
    static uint8_t data[1000];
    cf_env e;
    uint32_t hl;
    size_t ct_start, ct_len;
    const size_t offs_in_ct[] = {0, 1, 500, 999, 1000, 1007, 1015}; /* data, inner tag */

    T_OK(world_new(&w));
    cf_buf_init(&env, CF_ENV_MAX_BYTES);
    T_OK(cf_env_seal(&IDS, w.otk, w.client, w.tee_pub, data, sizeof(data), &env, NULL));
    hl = header_len_of(&env);
    ct_start = 8 + hl + 12;
    ct_len = sizeof(data) + 16;
    T_EQ(env.len, ct_start + ct_len + 16);
    /* Header length: one more / one less breaks the JSON; too large; zero. */
    env.data[7]++;
    T_ERR(cf_env_parse(env.data, env.len, &e), CF_E_PARSE);
    env.data[7] -= 2;
    T_ERR(cf_env_parse(env.data, env.len, &e), CF_E_PARSE);
    env.data[7]++;
    env.data[6] ^= 0x10; /* +4096 */
    T_FAILS(cf_env_parse(env.data, env.len, &e));
    env.data[6] ^= 0x10;
    env.data[4] = 0x7f;
    T_ERR(cf_env_parse(env.data, env.len, &e), CF_E_TOO_LARGE);
    env.data[4] = 0;
    T_OK(cf_env_parse(env.data, env.len, &e));
    /* Nonce. */
    for (size_t i = 0; i < 12; i++) {
        env.data[8 + hl + i] ^= 0x20;
        T_ERR(try_open(&w, env.data, env.len), CF_E_DECRYPT);
        env.data[8 + hl + i] ^= 0x20;
    }
    /* Every region of the ciphertext: start, middle, end of data, inner tag. */
    for (size_t k = 0; k < CF_ARRAY_LEN(offs_in_ct); k++) {
        env.data[ct_start + offs_in_ct[k]] ^= 0x01;
        T_ERR(try_open(&w, env.data, env.len), CF_E_DECRYPT);
        T_ASSERT(strstr(cf_err_detail(CF_E_DECRYPT), "outer") != NULL);
        env.data[ct_start + offs_in_ct[k]] ^= 0x01;
    }
    /* Outer tag. */
    for (size_t i = 0; i < 16; i++) {
        env.data[env.len - 16 + i] ^= 0x80;
        T_ERR(try_open(&w, env.data, env.len), CF_E_DECRYPT);
        env.data[env.len - 16 + i] ^= 0x80;
    }
    T_OK(try_open(&w, env.data, env.len));
    cf_buf_free(&env);
    world_free(&w);
}

/* Each header field changed (to another valid value): the AAD changes, so the outer
 * tag fails; client_key changed: refused before any decryption. */
static void test_tamper_header_fields(void)
{
    static const struct {
        const char *from, *to;
        int want;
    } cases[] = {
        {"\"request_id\":\"req-0001\"", "\"request_id\":\"req-0002\"", CF_E_DECRYPT},
        {"\"tenant\":\"tenant-a\"", "\"tenant\":\"tenant-b\"", CF_E_DECRYPT},
        {"\"tee_id\":\"tee-7\"", "\"tee_id\":\"tee-8\"", CF_E_DECRYPT},
        {"\"otk_id\":\"otk-42\"", "\"otk_id\":\"otk-43\"", CF_E_DECRYPT},
        {"\"job\":\"wordcount\"", "\"job\":\"sha256\"", CF_E_DECRYPT},
        {"\"v\":1", "\"v\":2", CF_E_UNSUPPORTED},
        {"\"v\":1", "\"v\":1.0", CF_E_PARSE},
        {"\"v\":1", "\"v\":\"1\"", CF_E_PARSE},
        {"\"v\":1", "\"v\":1,\"extra\":0", CF_E_PARSE},
        {"\"v\":1", "\"v\":1,\"v\":1", CF_E_PARSE},
        {",\"v\":1", "", CF_E_PARSE},
        {"\"job\":\"wordcount\"", "\"job\":\"\"", CF_E_PARSE},
        {"\"job\":\"wordcount\"", "\"job\":\"word count\"", CF_E_PARSE},
        {"\"job\":\"wordcount\"", "\"job\":\"word\\u0001count\"", CF_E_PARSE},
        {"\"job\":\"wordcount\"", "\"job\":\"word\\u0000count\"", CF_E_PARSE},
        {"\"job\":\"wordcount\"", "\"job\":\"w\\u00e9\"", CF_E_PARSE},
        {"\"job\":\"wordcount\"", "\"job\":7", CF_E_PARSE},
        {"\"tenant\":\"tenant-a\"", "\"tenant\":null", CF_E_PARSE},
        {"{", "[{", CF_E_PARSE},
        {"\"v\":1}", "\"v\":1} ", CF_E_DECRYPT}, /* still valid JSON: other AAD */
    };
    world w;
    cf_buf env, env2, data;
    char *h, *h2, enc_b64[64], longid[CF_ID_MAX_LEN + 2];
    cf_env e;
    uint8_t otherkey[32];

    T_OK(world_new(&w));
    cf_buf_init(&env, CF_ENV_MAX_BYTES);
    cf_buf_init_secret(&data, 1024);
    T_OK(cf_env_seal(&IDS, w.otk, w.client, w.tee_pub, (const uint8_t *)"x", 1, &env, NULL));
    h = header_of(&env);
    T_ASSERT(h != NULL);
    for (size_t i = 0; i < CF_ARRAY_LEN(cases); i++) {
        int rc;
        h2 = replace(h, cases[i].from, cases[i].to);
        T_ASSERT_MSG(h2 != NULL, "case %zu: '%s' not in header", i, cases[i].from);
        T_OK(rewrite_header(&env, h2, &env2));
        rc = try_open(&w, env2.data, env2.len);
        T_ASSERT_MSG(rc == cases[i].want, "case %zu (%s): got %d (%s)", i, cases[i].to, rc,
                     cf_err_detail(rc));
        cf_buf_free(&env2);
        free(h2);
    }
    /* An id one byte over the limit. */
    memset(longid, 'a', sizeof(longid) - 1);
    longid[sizeof(longid) - 1] = 0;
    h2 = replace(h, "tee-7", longid);
    T_OK(rewrite_header(&env, h2, &env2));
    T_ERR(cf_env_parse(env2.data, env2.len, &e), CF_E_TOO_LARGE);
    cf_buf_free(&env2);
    free(h2);
    /* enc replaced by another valid 32-byte value: outer tag fails. */
    T_OK(cf_env_parse(env.data, env.len, &e));
    cf_b64url_encode(e.hdr.enc, 32, enc_b64);
    memcpy(otherkey, e.hdr.enc, 32);
    otherkey[0] ^= 1;
    {
        char other_b64[64];
        cf_b64url_encode(otherkey, 32, other_b64);
        h2 = replace(h, enc_b64, other_b64);
        T_OK(rewrite_header(&env, h2, &env2));
        T_ERR(try_open(&w, env2.data, env2.len), CF_E_DECRYPT);
        cf_buf_free(&env2);
        free(h2);
        /* enc of 31 bytes, and not base64url. */
        h2 = replace(h, enc_b64, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
        T_OK(rewrite_header(&env, h2, &env2));
        T_ERR(cf_env_parse(env2.data, env2.len, &e), CF_E_PARSE);
        cf_buf_free(&env2);
        free(h2);
        h2 = replace(h, enc_b64, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA+AAA");
        T_OK(rewrite_header(&env, h2, &env2));
        T_ERR(cf_env_parse(env2.data, env2.len, &e), CF_E_PARSE);
        cf_buf_free(&env2);
        free(h2);
    }
    /* client_key replaced: refused as not the KMS's client key. */
    {
        char ck[64], other[64];
        const uint8_t *pk;
        size_t n = 0;
        pk = cf_hpke_key_pub(w.client, &n);
        cf_b64url_encode(pk, n, ck);
        cf_b64url_encode(otherkey, 32, other);
        h2 = replace(h, ck, other);
        T_OK(rewrite_header(&env, h2, &env2));
        T_ERR(try_open(&w, env2.data, env2.len), CF_E_UNAUTHENTICATED);
        cf_buf_free(&env2);
        free(h2);
    }
    free(h);
    cf_buf_free(&env);
    cf_buf_free(&data);
    world_free(&w);
}

/* ---- keys ------------------------------------------------------------------------------ */

static void test_wrong_keys(void)
{
    world w;
    cf_buf env, out;
    cf_env e;
    cf_hpke_key *other = NULL, *other_pub = NULL;
    uint8_t otk2[32];

    T_OK(world_new(&w));
    T_OK(cf_hpke_key_generate(CF_HPKE_KEM_X25519_SHA256, &other));
    T_OK(cf_hpke_key_public_only(other, &other_pub));
    cf_buf_init(&env, CF_ENV_MAX_BYTES);
    cf_buf_init_secret(&out, 1024);
    T_OK(cf_buf_put(&out, "keep", 4));
    T_OK(cf_env_seal(&IDS, w.otk, w.client, w.tee_pub, (const uint8_t *)"payload", 7, &env, NULL));
    T_OK(cf_env_parse(env.data, env.len, &e));
    /* Wrong OTK: outer layer. */
    memcpy(otk2, w.otk, 32);
    otk2[31] ^= 1;
    T_ERR(cf_env_open(&e, otk2, w.tee, w.client_pub, &out, NULL), CF_E_DECRYPT);
    T_ASSERT(strstr(cf_err_detail(CF_E_DECRYPT), "outer") != NULL);
    /* Wrong TEE key: outer passes, inner fails. */
    T_ERR(cf_env_open(&e, w.otk, other, w.client_pub, &out, NULL), CF_E_DECRYPT);
    T_ASSERT(strstr(cf_err_detail(CF_E_DECRYPT), "inner") != NULL);
    /* The KMS vouches for another client key than the header names. */
    T_ERR(cf_env_open(&e, w.otk, w.tee, other_pub, &out, NULL), CF_E_UNAUTHENTICATED);
    /* A public TEE key cannot open. */
    T_ERR(cf_env_open(&e, w.otk, w.tee_pub, w.client_pub, &out, NULL), CF_E_INVAL);
    /* Plaintext only goes to secret memory. */
    {
        cf_buf plain;
        cf_buf_init(&plain, 1024);
        T_ERR(cf_env_open(&e, w.otk, w.tee, w.client_pub, &plain, NULL), CF_E_INVAL);
        T_EQ(plain.len, 0);
        cf_buf_free(&plain);
    }
    /* Failed opens left the output untouched. */
    T_EQ(out.len, 4);
    T_MEMEQ(out.data, "keep", 4);
    T_OK(cf_env_open(&e, w.otk, w.tee, w.client_pub, &out, NULL));
    T_EQ(out.len, 11);
    T_MEMEQ(out.data, "keeppayload", 11);
    cf_hpke_key_free(other);
    cf_hpke_key_free(other_pub);
    cf_buf_free(&env);
    cf_buf_free(&out);
    world_free(&w);
}

/* An attacker who obtained the OTK but not the client's private key: the header and
 * outer layer name the real client key, the inner layer is sealed with the
 * attacker's key. The inner HPKE auth mode catches it. */
static void test_inner_sealed_by_other_client(void)
{
    world w;
    cf_hpke_key *mallory = NULL;
    cf_buf env, out;
    cf_env e;

    T_OK(world_new(&w));
    T_OK(cf_hpke_key_generate(CF_HPKE_KEM_X25519_SHA256, &mallory));
    cf_buf_init(&env, CF_ENV_MAX_BYTES);
    cf_buf_init_secret(&out, 1024);
    T_OK(forge(STD_TMPL, w.otk, w.client_pub, mallory, w.tee_pub, (const uint8_t *)"evil", 4,
               &env, NULL));
    T_OK(cf_env_parse(env.data, env.len, &e));
    T_ERR(cf_env_open(&e, w.otk, w.tee, w.client_pub, &out, NULL), CF_E_DECRYPT);
    T_ASSERT(strstr(cf_err_detail(CF_E_DECRYPT), "inner") != NULL);
    T_EQ(out.len, 0);
    /* Honest header naming mallory: the KMS's key differs, refused up front. */
    cf_buf_reset(&env);
    T_OK(forge(STD_TMPL, w.otk, mallory, mallory, w.tee_pub, (const uint8_t *)"evil", 4, &env,
               NULL));
    T_OK(cf_env_parse(env.data, env.len, &e));
    T_ERR(cf_env_open(&e, w.otk, w.tee, w.client_pub, &out, NULL), CF_E_UNAUTHENTICATED);
    cf_hpke_key_free(mallory);
    cf_buf_free(&env);
    cf_buf_free(&out);
    world_free(&w);
}

/* ---- sizes --------------------------------------------------------------------------- */

static void test_truncated_and_extended(void)
{
    world w;
    cf_buf env, big;
    cf_env e;
    uint32_t hl;

    T_OK(world_new(&w));
    cf_buf_init(&env, CF_ENV_MAX_BYTES);
    T_OK(cf_env_seal(&IDS, w.otk, w.client, w.tee_pub, (const uint8_t *)"abc", 3, &env, NULL));
    hl = header_len_of(&env);
    /* Every proper prefix is refused, by the parser or by the outer tag. */
    for (size_t n = 0; n < env.len; n++) {
        int rc = try_open(&w, env.data, n);
        T_ASSERT_MSG(rc < 0, "prefix of %zu bytes accepted", n);
        if (n < 8 + hl + 12 + 32)
            T_ASSERT_MSG(cf_env_parse(env.data, n, &e) == CF_E_TRUNCATED ||
                             cf_env_parse(env.data, n, &e) == CF_E_PARSE,
                         "prefix %zu", n);
    }
    T_ERR(cf_env_parse(env.data, 3, &e), CF_E_TRUNCATED);
    T_ERR(cf_env_parse(env.data, 6, &e), CF_E_TRUNCATED);
    T_ERR(cf_env_parse(env.data, 8 + hl - 1, &e), CF_E_TRUNCATED);
    T_ERR(cf_env_parse(env.data, 8 + hl + 11, &e), CF_E_TRUNCATED);
    T_ERR(cf_env_parse(env.data, 8 + hl + 12 + 31, &e), CF_E_TRUNCATED);
    T_ERR(cf_env_parse(NULL, 0, &e), CF_E_TRUNCATED);
    /* Extra bytes: the tag no longer sits at the end. */
    T_OK(cf_buf_put_u8(&env, 0));
    T_OK(cf_env_parse(env.data, env.len, &e));
    T_ERR(try_open(&w, env.data, env.len), CF_E_DECRYPT);
    T_OK(cf_buf_put(&env, "0123456789abcdef", 16));
    T_ERR(try_open(&w, env.data, env.len), CF_E_DECRYPT);
    /* Too large as a whole. */
    cf_buf_init(&big, CF_ENV_MAX_BYTES + 1);
    T_OK(cf_buf_put(&big, env.data, env.len));
    {
        uint8_t *p = NULL;
        T_OK(cf_buf_put_space(&big, CF_ENV_MAX_BYTES + 1 - big.len, &p));
        memset(p, 0, CF_ENV_MAX_BYTES + 1 - env.len);
    }
    T_ERR(cf_env_parse(big.data, big.len, &e), CF_E_TOO_LARGE);
    T_ERR(cf_env_parse(big.data, CF_ENV_MAX_BYTES, &e), CF_E_TOO_LARGE); /* ct > payload limit */
    cf_buf_free(&big);
    cf_buf_free(&env);
    world_free(&w);
}

static void test_oversized_header(void)
{
    world w;
    cf_buf env, env2;
    cf_env e;
    char *h, *h2, *pad;
    size_t padn = CF_ENV_MAX_HEADER;

    T_OK(world_new(&w));
    cf_buf_init(&env, CF_ENV_MAX_BYTES);
    T_OK(cf_env_seal(&IDS, w.otk, w.client, w.tee_pub, (const uint8_t *)"abc", 3, &env, NULL));
    h = header_of(&env);
    pad = malloc(padn + 16);
    T_ASSERT(h != NULL && pad != NULL);
    /* Valid JSON (whitespace before "v"), one byte over CF_ENV_MAX_HEADER, then
     * exactly at it (which parses and fails only at the tag). */
    for (int over = 1; over >= 0; over--) {
        size_t k = CF_ENV_MAX_HEADER - strlen(h) + (size_t)over;
        memset(pad, ' ', k);
        memcpy(pad + k, "\"v\":1", 6);
        h2 = replace(h, "\"v\":1", pad);
        T_ASSERT(h2 != NULL);
        T_EQ(strlen(h2), CF_ENV_MAX_HEADER + (size_t)over);
        T_OK(rewrite_header(&env, h2, &env2));
        if (over) {
            T_ERR(cf_env_parse(env2.data, env2.len, &e), CF_E_TOO_LARGE);
        } else {
            T_OK(cf_env_parse(env2.data, env2.len, &e));
            T_ERR(try_open(&w, env2.data, env2.len), CF_E_DECRYPT);
        }
        cf_buf_free(&env2);
        free(h2);
    }
    /* Header length field pointing past the end. */
    T_OK(rewrite_header(&env, "{}", &env2));
    env2.data[7] = 0xff;
    T_ERR(cf_env_parse(env2.data, env2.len, &e), CF_E_TRUNCATED);
    cf_buf_free(&env2);
    free(pad);
    free(h);
    cf_buf_free(&env);
    world_free(&w);
}

static void test_seal_inputs(void)
{
    world w;
    cf_buf env;
    cf_env_ids ids = IDS;
    cf_hpke_key *p256 = NULL;
    char longid[CF_ID_MAX_LEN + 2];
    cf_hpke_ctx *ctx = NULL;

    T_OK(world_new(&w));
    cf_buf_init(&env, CF_ENV_MAX_BYTES);
    ids.tenant = "";
    T_ERR(cf_env_seal(&ids, w.otk, w.client, w.tee_pub, NULL, 0, &env, &ctx), CF_E_INVAL);
    ids.tenant = "has space";
    T_ERR(cf_env_seal(&ids, w.otk, w.client, w.tee_pub, NULL, 0, &env, &ctx), CF_E_INVAL);
    ids.tenant = NULL;
    T_ERR(cf_env_seal(&ids, w.otk, w.client, w.tee_pub, NULL, 0, &env, &ctx), CF_E_INVAL);
    memset(longid, 'a', sizeof(longid) - 1);
    longid[sizeof(longid) - 1] = 0;
    ids.tenant = longid;
    T_ERR(cf_env_seal(&ids, w.otk, w.client, w.tee_pub, NULL, 0, &env, &ctx), CF_E_TOO_LARGE);
    longid[CF_ID_MAX_LEN] = 0; /* exactly the limit */
    T_OK(cf_env_seal(&ids, w.otk, w.client, w.tee_pub, NULL, 0, &env, NULL));
    cf_buf_reset(&env);
    /* Keys: the client key must be private, both X25519. */
    T_ERR(cf_env_seal(&IDS, w.otk, w.client_pub, w.tee_pub, NULL, 0, &env, &ctx), CF_E_INVAL);
    T_OK(cf_hpke_key_generate(CF_HPKE_KEM_P256_SHA256, &p256));
    T_ERR(cf_env_seal(&IDS, w.otk, w.client, p256, NULL, 0, &env, &ctx), CF_E_INVAL);
    T_ERR(cf_env_seal(&IDS, w.otk, p256, w.tee_pub, NULL, 0, &env, &ctx), CF_E_INVAL);
    /* Payload over the limit (checked before the data is read). */
    T_ERR(cf_env_seal(&IDS, w.otk, w.client, w.tee_pub, w.otk, CF_ENV_MAX_PAYLOAD + 1, &env,
                      &ctx),
          CF_E_TOO_LARGE);
    /* An output buffer too small for the envelope: nothing appended. */
    {
        cf_buf small;
        cf_buf_init(&small, 100);
        T_ERR(cf_env_seal(&IDS, w.otk, w.client, w.tee_pub, NULL, 0, &small, &ctx),
              CF_E_TOO_LARGE);
        T_EQ(small.len, 0);
        cf_buf_free(&small);
    }
    T_EQ(env.len, 0);
    T_ASSERT(ctx == NULL);
    cf_hpke_key_free(p256);
    cf_buf_free(&env);
    world_free(&w);
}

/* ---- response --------------------------------------------------------------------------- */

typedef struct {
    world w;
    cf_hpke_ctx *cctx, *tctx;
} session;

static int session_new(session *s, const char *request_id)
{
    cf_buf env, data;
    cf_env_ids ids = IDS;
    int rc;

    ids.request_id = request_id;
    CF_GUARD(world_new(&s->w));
    cf_buf_init(&env, CF_ENV_MAX_BYTES);
    cf_buf_init_secret(&data, 1024);
    rc = cf_env_seal(&ids, s->w.otk, s->w.client, s->w.tee_pub, (const uint8_t *)"q", 1, &env,
                     &s->cctx);
    if (rc == 0)
        rc = parse_open(&s->w, env.data, env.len, &data, &s->tctx);
    cf_buf_free(&env);
    cf_buf_free(&data);
    return rc;
}

static void session_free(session *s)
{
    cf_hpke_ctx_free(s->cctx);
    cf_hpke_ctx_free(s->tctx);
    world_free(&s->w);
}

static void test_response(void)
{
    session s, s2;
    cf_buf resp, out;
    uint8_t status = 0xee;

    T_OK(session_new(&s, "req-0001"));
    T_OK(session_new(&s2, "req-0002"));
    cf_buf_init(&resp, 4096);
    cf_buf_init_secret(&out, 4096);
    T_OK(cf_env_response_seal(s.tctx, "req-0001", CF_ENV_STATUS_OK, (const uint8_t *)"result", 6,
                              &resp));
    /* Every byte is protected: magic -> parse error, the rest -> tag. */
    for (size_t i = 0; i < resp.len; i++) {
        resp.data[i] ^= 0x04;
        T_ERR(cf_env_response_open(s.cctx, "req-0001", resp.data, resp.len, &status, &out),
              i < 4 ? CF_E_PARSE : CF_E_DECRYPT);
        resp.data[i] ^= 0x04;
    }
    T_EQ(status, 0xee);
    T_EQ(out.len, 0);
    /* Truncated, extended. */
    for (size_t n = 0; n < resp.len; n++)
        T_FAILS(cf_env_response_open(s.cctx, "req-0001", resp.data, n, &status, &out));
    T_ERR(cf_env_response_open(s.cctx, "req-0001", resp.data, 4 + 12 + 16, &status, &out),
          CF_E_TRUNCATED);
    T_OK(cf_buf_put_u8(&resp, 0));
    T_ERR(cf_env_response_open(s.cctx, "req-0001", resp.data, resp.len, &status, &out),
          CF_E_DECRYPT);
    resp.len--;
    /* Another request id, another request's context. */
    T_ERR(cf_env_response_open(s.cctx, "req-0002", resp.data, resp.len, &status, &out),
          CF_E_DECRYPT);
    T_ERR(cf_env_response_open(s2.cctx, "req-0001", resp.data, resp.len, &status, &out),
          CF_E_DECRYPT);
    T_ERR(cf_env_response_open(s.cctx, "", resp.data, resp.len, &status, &out), CF_E_INVAL);
    T_ERR(cf_env_response_open(s.cctx, "req-0001", resp.data, CF_ENV_MAX_RESPONSE_BYTES + 1,
                               &status, &out),
          CF_E_TOO_LARGE);
    T_EQ(status, 0xee);
    T_EQ(out.len, 0);
    /* Plaintext only goes to secret memory. */
    {
        cf_buf plain;
        cf_buf_init(&plain, 1024);
        T_ERR(cf_env_response_open(s.cctx, "req-0001", resp.data, resp.len, &status, &plain),
              CF_E_INVAL);
        T_EQ(plain.len, 0);
        cf_buf_free(&plain);
    }
    /* The right one. */
    T_OK(cf_env_response_open(s.cctx, "req-0001", resp.data, resp.len, &status, &out));
    T_EQ(status, CF_ENV_STATUS_OK);
    T_EQ(out.len, 6);
    T_MEMEQ(out.data, "result", 6);
    /* Non-zero status with an empty output, and with an error text. */
    cf_buf_reset(&resp);
    cf_buf_reset(&out);
    T_OK(cf_env_response_seal(s2.tctx, "req-0002", 3, NULL, 0, &resp));
    T_EQ(resp.len, 4 + 12 + 1 + 16);
    T_OK(cf_env_response_open(s2.cctx, "req-0002", resp.data, resp.len, &status, &out));
    T_EQ(status, 3);
    T_EQ(out.len, 0);
    cf_buf_reset(&resp);
    T_OK(cf_env_response_seal(s2.tctx, "req-0002", 1, (const uint8_t *)"job failed", 10, &resp));
    T_OK(cf_env_response_open(s2.cctx, "req-0002", resp.data, resp.len, &status, &out));
    T_EQ(status, 1);
    T_MEMEQ(out.data, "job failed", 10);
    /* Seal input checks. */
    T_ERR(cf_env_response_seal(s.tctx, "bad id", 0, NULL, 0, &resp), CF_E_INVAL);
    T_ERR(cf_env_response_seal(s.tctx, "req-0001", 0, (const uint8_t *)"x",
                               CF_ENV_MAX_PAYLOAD + 1, &resp),
          CF_E_TOO_LARGE);
    cf_buf_free(&resp);
    cf_buf_free(&out);
    session_free(&s);
    session_free(&s2);
}

int main(void)
{
    T_RUN(test_roundtrip_empty);
    T_RUN(test_roundtrip_1);
    T_RUN(test_roundtrip_1mib);
    T_RUN(test_format_independent);
    T_RUN(test_tamper_every_byte);
    T_RUN(test_tamper_regions);
    T_RUN(test_tamper_header_fields);
    T_RUN(test_wrong_keys);
    T_RUN(test_inner_sealed_by_other_client);
    T_RUN(test_truncated_and_extended);
    T_RUN(test_oversized_header);
    T_RUN(test_seal_inputs);
    T_RUN(test_response);
    return t_done();
}
