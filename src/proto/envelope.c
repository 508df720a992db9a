/*
 * CFE1 request envelope and CFR1 response (DESIGN.md §5 steps 4, 7, 8). The wire
 * layout and every rule are documented in envelope.h.
 */
#include "proto/envelope.h"

#include <limits.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/json.h"
#include "base/parse.h"
#include "base/secmem.h"
#include "crypto/hash.h"

#define OUTER_KEY_LEN 32
#define RESPONSE_KEY_LEN 32

/* The header has exactly these fields (envelope.h). */
static const char *const header_fields[] = {"v",      "request_id", "tenant",     "tee_id",
                                            "otk_id", "job",        "client_key", "enc",
                                            NULL};

/* ---- AES-256-GCM over scatter/gather parts ---------------------------------------- */

static EVP_CIPHER *gcm_cipher;
static pthread_once_t gcm_once = PTHREAD_ONCE_INIT;

static void fetch_gcm(void) { gcm_cipher = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL); }

/* One plaintext/ciphertext part: n bytes from in to out (in == out is allowed). */
typedef struct {
    const uint8_t *in;
    uint8_t *out;
    size_t n;
} gcm_part;

/* AES-256-GCM with a 12-byte nonce. Encrypt writes the tag; decrypt verifies it and
 * returns CF_E_DECRYPT if it does not match (the caller must then wipe the output). */
static int gcm(bool enc, const uint8_t key[32], const uint8_t nonce[CF_ENV_NONCE_LEN],
               const cf_iov *aad, size_t naad, const gcm_part *parts, size_t nparts,
               uint8_t tag[CF_ENV_TAG_LEN])
{
    EVP_CIPHER_CTX *c = NULL;
    uint8_t fin[CF_ENV_TAG_LEN];
    int outl = 0, rc = CF_E_CRYPTO;

    (void)pthread_once(&gcm_once, fetch_gcm);
    CF_ENSURE(gcm_cipher != NULL, CF_E_CRYPTO);
    c = EVP_CIPHER_CTX_new();
    CF_ENSURE(c != NULL, CF_E_NOMEM);
    if (EVP_CipherInit_ex2(c, gcm_cipher, key, nonce, enc ? 1 : 0, NULL) != 1)
        goto out;
    if (!enc && EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_SET_TAG, CF_ENV_TAG_LEN, tag) != 1)
        goto out;
    for (size_t i = 0; i < naad; i++) {
        CF_ENSURE_OUT(aad[i].n <= INT_MAX, CF_E_TOO_LARGE);
        if (aad[i].n > 0 && EVP_CipherUpdate(c, NULL, &outl, aad[i].p, (int)aad[i].n) != 1)
            goto out;
    }
    for (size_t i = 0; i < nparts; i++) {
        CF_ENSURE_OUT(parts[i].n <= INT_MAX, CF_E_TOO_LARGE);
        if (parts[i].n > 0 &&
            (EVP_CipherUpdate(c, parts[i].out, &outl, parts[i].in, (int)parts[i].n) != 1 ||
             (size_t)outl != parts[i].n))
            goto out;
    }
    if (EVP_CipherFinal_ex(c, fin, &outl) != 1) {
        rc = enc ? CF_E_CRYPTO : CF_E_DECRYPT;
        goto out;
    }
    if (enc && EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_GET_TAG, CF_ENV_TAG_LEN, tag) != 1)
        goto out;
    rc = 0;
out:
    ERR_clear_error();
    EVP_CIPHER_CTX_free(c);
    return rc;
}

/* key = HKDF-SHA256(salt = SHA-256(client public key), ikm = OTK, info = "coffer/v1 outer"). */
static int outer_key(const uint8_t client_pk[CF_ENV_KEY_LEN], const uint8_t otk[CF_ENV_OTK_LEN],
                     uint8_t key[OUTER_KEY_LEN])
{
    uint8_t salt[CF_SHA256_LEN];

    CF_GUARD(cf_sha256(client_pk, CF_ENV_KEY_LEN, salt));
    return cf_hkdf(CF_SHA256, salt, sizeof(salt), otk, CF_ENV_OTK_LEN,
                   (const uint8_t *)CF_ENV_OUTER_INFO, strlen(CF_ENV_OUTER_INFO), key,
                   OUTER_KEY_LEN);
}

/* The inner layer's HPKE parameters: mode auth, Coffer suite, fixed info. */
static cf_hpke_params inner_params(void)
{
    cf_hpke_params p;

    memset(&p, 0, sizeof(p));
    p.suite = CF_HPKE_SUITE_COFFER;
    p.mode = CF_HPKE_MODE_AUTH;
    p.info = (const uint8_t *)CF_ENV_INFO;
    p.info_len = strlen(CF_ENV_INFO);
    return p;
}

static int check_x25519(const cf_hpke_key *k, bool need_private, const char *what)
{
    if (cf_hpke_key_kem(k) != CF_HPKE_KEM_X25519_SHA256)
        return cf_err_set(CF_E_INVAL, "%s must be an X25519 key", what);
    if (need_private && !cf_hpke_key_has_private(k))
        return cf_err_set(CF_E_INVAL, "%s must be a private key", what);
    return 0;
}

/* Restores b to length `before`, wiping what was appended. */
static void buf_rollback(cf_buf *b, size_t before)
{
    if (b->len > before) {
        cf_wipe(b->data + before, b->len - before);
        b->len = before;
    }
}

/* ---- header ----------------------------------------------------------------------- */

/* 1..max bytes of visible ASCII (0x21..0x7e); bad is the code for a bad value. */
static int check_id(const char *name, const char *s, size_t max, int bad)
{
    size_t n;

    if (s == NULL)
        return cf_err_set(bad, "missing field '%s'", name);
    n = strnlen(s, max + 1);
    if (n == 0)
        return cf_err_set(bad, "field '%s' is empty", name);
    if (n > max)
        return cf_err_set(CF_E_TOO_LARGE, "field '%s' is longer than %zu bytes", name, max);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x21 || c > 0x7e)
            return cf_err_set(bad, "field '%s' has a byte outside visible ASCII at offset %zu",
                              name, i);
    }
    return 0;
}

static int check_ids(const cf_env_ids *ids, int bad)
{
    CF_GUARD(check_id("request_id", ids->request_id, CF_ID_MAX_LEN, bad));
    CF_GUARD(check_id("tenant", ids->tenant, CF_ID_MAX_LEN, bad));
    CF_GUARD(check_id("tee_id", ids->tee_id, CF_ID_MAX_LEN, bad));
    CF_GUARD(check_id("otk_id", ids->otk_id, CF_ID_MAX_LEN, bad));
    return check_id("job", ids->job, CF_NAME_MAX_LEN, bad);
}

static int set_str(json_t *o, const char *key, const char *v)
{
    json_t *s = json_string(v);

    if (s == NULL || json_object_set_new(o, key, s) != 0)
        return CF_E_NOMEM;
    return 0;
}

static int set_b64(json_t *o, const char *key, const uint8_t *p, size_t n)
{
    char *s = cf_b64url_encode_alloc(p, n);
    int rc;

    CF_ENSURE(s != NULL, CF_E_NOMEM);
    rc = set_str(o, key, s);
    free(s);
    return rc;
}

/* Compact JSON with sorted keys (deterministic); *ret is malloc'd. */
static int header_build(const cf_env_ids *ids, const uint8_t client_pk[CF_ENV_KEY_LEN],
                        const uint8_t enc[CF_ENV_KEY_LEN], char **ret, size_t *ret_len)
{
    json_t *o = json_object();
    json_t *v = json_integer(CF_ENV_VERSION);
    char *s = NULL;
    int rc;

    if (o == NULL || v == NULL || json_object_set_new(o, "v", v) != 0) {
        json_decref(o);
        return CF_E_NOMEM;
    }
    CF_GUARD_OUT(set_str(o, "request_id", ids->request_id));
    CF_GUARD_OUT(set_str(o, "tenant", ids->tenant));
    CF_GUARD_OUT(set_str(o, "tee_id", ids->tee_id));
    CF_GUARD_OUT(set_str(o, "otk_id", ids->otk_id));
    CF_GUARD_OUT(set_str(o, "job", ids->job));
    CF_GUARD_OUT(set_b64(o, "client_key", client_pk, CF_ENV_KEY_LEN));
    CF_GUARD_OUT(set_b64(o, "enc", enc, CF_ENV_KEY_LEN));
    s = cf_json_dump(o);
    CF_ENSURE_OUT(s != NULL, CF_E_NOMEM);
    if (strlen(s) > CF_ENV_MAX_HEADER) {
        free(s);
        rc = cf_err_set(CF_E_TOO_LARGE, "envelope header over %d bytes", CF_ENV_MAX_HEADER);
        goto out;
    }
    *ret_len = strlen(s);
    *ret = s;
    rc = 0;
out:
    json_decref(o);
    return rc;
}

static int get_id(const json_t *o, const char *name, size_t max, char *dst)
{
    const char *s = NULL;

    CF_GUARD(cf_json_get_str(o, name, true, max, &s));
    CF_GUARD(check_id(name, s, max, CF_E_PARSE));
    memcpy(dst, s, strlen(s) + 1);
    return 0;
}

static int get_key(const json_t *o, const char *name, uint8_t dst[CF_ENV_KEY_LEN])
{
    cf_buf b;
    int rc;

    cf_buf_init(&b, CF_ENV_KEY_LEN);
    rc = cf_json_get_b64url(o, name, true, CF_ENV_KEY_LEN, &b);
    if (rc == 0 && b.len != CF_ENV_KEY_LEN)
        rc = cf_err_set(CF_E_PARSE, "field '%s' must encode %d bytes", name, CF_ENV_KEY_LEN);
    if (rc == 0)
        memcpy(dst, b.data, CF_ENV_KEY_LEN);
    cf_buf_free(&b);
    return rc;
}

static int header_parse(const uint8_t *p, size_t n, cf_env_header *ret)
{
    json_t *o = NULL;
    uint64_t v = 0;
    cf_env_header h;
    int rc;

    memset(&h, 0, sizeof(h));
    CF_GUARD(cf_json_parse_object(p, n, CF_ENV_MAX_HEADER, &o));
    CF_GUARD_OUT(cf_json_only_keys(o, header_fields));
    CF_GUARD_OUT(cf_json_get_u64(o, "v", true, UINT32_MAX, &v));
    if (v != CF_ENV_VERSION) {
        rc = cf_err_set(CF_E_UNSUPPORTED, "envelope version %llu is not supported",
                        (unsigned long long)v);
        goto out;
    }
    CF_GUARD_OUT(get_id(o, "request_id", CF_ID_MAX_LEN, h.request_id));
    CF_GUARD_OUT(get_id(o, "tenant", CF_ID_MAX_LEN, h.tenant));
    CF_GUARD_OUT(get_id(o, "tee_id", CF_ID_MAX_LEN, h.tee_id));
    CF_GUARD_OUT(get_id(o, "otk_id", CF_ID_MAX_LEN, h.otk_id));
    CF_GUARD_OUT(get_id(o, "job", CF_NAME_MAX_LEN, h.job));
    CF_GUARD_OUT(get_key(o, "client_key", h.client_key));
    CF_GUARD_OUT(get_key(o, "enc", h.enc));
    *ret = h;
out:
    json_decref(o);
    return rc;
}

/* ---- request ---------------------------------------------------------------------- */

int cf_env_seal(const cf_env_ids *ids, const uint8_t otk[CF_ENV_OTK_LEN],
                const cf_hpke_key *client_key, const cf_hpke_key *tee_key, const uint8_t *data,
                size_t data_len, cf_buf *out, cf_hpke_ctx **ret_ctx)
{
    cf_hpke_params p = inner_params();
    cf_hpke_ctx *ctx = NULL;
    uint8_t enc[CF_HPKE_MAX_ENC], tag[CF_ENV_TAG_LEN], *dst = NULL;
    const uint8_t *client_pk;
    char *header = NULL;
    size_t enc_len = 0, header_len = 0, pk_len = 0, before, nonce_off, ct_off, ct_len, n = 0;
    cf_secret key = {NULL, 0};
    int rc;

    CF_ENSURE(ids != NULL && otk != NULL && client_key != NULL && tee_key != NULL &&
                  out != NULL && (data != NULL || data_len == 0),
              CF_E_INVAL);
    before = out->len;
    CF_GUARD(check_ids(ids, CF_E_INVAL));
    if (data_len > CF_ENV_MAX_PAYLOAD)
        return cf_err_set(CF_E_TOO_LARGE, "request data over %u bytes", CF_ENV_MAX_PAYLOAD);
    CF_GUARD(check_x25519(client_key, true, "client key"));
    CF_GUARD(check_x25519(tee_key, false, "TEE key"));
    client_pk = cf_hpke_key_pub(client_key, &pk_len);

    /* Inner layer first: its enc goes into the header, which is the AAD of both. */
    CF_GUARD_OUT(cf_hpke_setup_sender(&p, tee_key, client_key, enc, &enc_len, &ctx));
    CF_ENSURE_OUT(enc_len == CF_ENV_KEY_LEN && pk_len == CF_ENV_KEY_LEN, CF_E_INTERNAL);
    CF_GUARD_OUT(header_build(ids, client_pk, enc, &header, &header_len));
    CF_GUARD_OUT(cf_secret_new(&key, OUTER_KEY_LEN));
    CF_GUARD_OUT(outer_key(client_pk, otk, key.p));

    ct_len = data_len + CF_HPKE_NT;
    CF_GUARD_OUT(cf_buf_reserve(out, CF_ENV_MAGIC_LEN + 4 + header_len + CF_ENV_NONCE_LEN +
                                         ct_len + CF_ENV_TAG_LEN));
    CF_GUARD_OUT(cf_buf_put(out, CF_ENV_MAGIC, CF_ENV_MAGIC_LEN));
    CF_GUARD_OUT(cf_buf_put_u32be(out, (uint32_t)header_len));
    CF_GUARD_OUT(cf_buf_put(out, header, header_len));
    nonce_off = out->len;
    CF_GUARD_OUT(cf_buf_put_space(out, CF_ENV_NONCE_LEN, &dst));
    CF_GUARD_OUT(cf_random(dst, CF_ENV_NONCE_LEN));
    ct_off = out->len;
    CF_GUARD_OUT(cf_buf_put_space(out, ct_len, &dst));
    CF_GUARD_OUT(cf_hpke_seal(ctx, (const uint8_t *)header, header_len, data, data_len, dst,
                              ct_len, &n));
    /* Outer layer, in place over the inner ciphertext. */
    {
        cf_iov aad = {header, header_len};
        gcm_part part = {out->data + ct_off, out->data + ct_off, ct_len};
        CF_GUARD_OUT(gcm(true, key.p, out->data + nonce_off, &aad, 1, &part, 1, tag));
    }
    CF_GUARD_OUT(cf_buf_put(out, tag, sizeof(tag)));
    if (ret_ctx != NULL) {
        *ret_ctx = ctx;
        ctx = NULL;
    }
    rc = 0;
out:
    if (rc < 0)
        buf_rollback(out, before);
    cf_secret_free(&key);
    free(header);
    cf_hpke_ctx_free(ctx);
    return rc;
}

int cf_env_parse(const uint8_t *data, size_t len, cf_env *ret)
{
    cf_buf b;
    cf_env e;
    const uint8_t *magic = NULL;
    uint32_t header_len = 0;
    size_t rest;

    CF_ENSURE(ret != NULL && (data != NULL || len == 0), CF_E_INVAL);
    if (len > CF_ENV_MAX_BYTES)
        return cf_err_set(CF_E_TOO_LARGE, "envelope of %zu bytes exceeds %u", len,
                          (unsigned)CF_ENV_MAX_BYTES);
    memset(&e, 0, sizeof(e));
    cf_buf_view(&b, data, len);
    if (cf_buf_get_ptr(&b, CF_ENV_MAGIC_LEN, &magic) != 0)
        return cf_err_set(CF_E_TRUNCATED, "envelope shorter than its magic");
    if (memcmp(magic, CF_ENV_MAGIC, CF_ENV_MAGIC_LEN) != 0)
        return cf_err_set(CF_E_PARSE, "not a CFE1 envelope (bad magic)");
    if (cf_buf_get_u32be(&b, &header_len) != 0)
        return cf_err_set(CF_E_TRUNCATED, "envelope ends inside the header length");
    if (header_len == 0)
        return cf_err_set(CF_E_PARSE, "envelope header is empty");
    if (header_len > CF_ENV_MAX_HEADER)
        return cf_err_set(CF_E_TOO_LARGE, "envelope header of %u bytes exceeds %d", header_len,
                          CF_ENV_MAX_HEADER);
    if (cf_buf_get_ptr(&b, header_len, &e.header) != 0)
        return cf_err_set(CF_E_TRUNCATED, "envelope ends inside the header");
    e.header_len = header_len;
    if (cf_buf_get_ptr(&b, CF_ENV_NONCE_LEN, &e.nonce) != 0)
        return cf_err_set(CF_E_TRUNCATED, "envelope ends inside the nonce");
    /* The rest is ciphertext then tag; the inner ciphertext has at least its own tag. */
    rest = cf_buf_remaining(&b);
    if (rest < CF_HPKE_NT + CF_ENV_TAG_LEN)
        return cf_err_set(CF_E_TRUNCATED, "envelope too short for ciphertext and tag");
    e.ct_len = rest - CF_ENV_TAG_LEN;
    if (e.ct_len > CF_ENV_MAX_PAYLOAD + CF_HPKE_NT)
        return cf_err_set(CF_E_TOO_LARGE, "envelope ciphertext exceeds the payload limit");
    CF_GUARD(cf_buf_get_ptr(&b, e.ct_len, &e.ct));
    CF_GUARD(cf_buf_get_ptr(&b, CF_ENV_TAG_LEN, &e.tag));
    CF_GUARD(cf_buf_expect_end(&b));
    CF_GUARD(header_parse(e.header, e.header_len, &e.hdr));
    *ret = e;
    return 0;
}

int cf_env_open(const cf_env *env, const uint8_t otk[CF_ENV_OTK_LEN], const cf_hpke_key *tee_key,
                const cf_hpke_key *client_key, cf_buf *out, cf_hpke_ctx **ret_ctx)
{
    cf_hpke_params p = inner_params();
    cf_hpke_ctx *ctx = NULL;
    const uint8_t *client_pk, *ct_body = NULL, *ct_tag = NULL;
    uint8_t *dst = NULL, inner_tag[CF_HPKE_NT];
    size_t pk_len = 0, before, data_len, dst_off;
    cf_buf v;
    cf_secret key = {NULL, 0};
    int rc;

    CF_ENSURE(env != NULL && otk != NULL && tee_key != NULL && client_key != NULL && out != NULL,
              CF_E_INVAL);
    CF_ENSURE(env->header != NULL && env->nonce != NULL && env->ct != NULL && env->tag != NULL,
              CF_E_INVAL);
    CF_ENSURE(env->ct_len >= CF_HPKE_NT && env->ct_len <= CF_ENV_MAX_PAYLOAD + CF_HPKE_NT,
              CF_E_INVAL);
    if (!out->secret)
        return cf_err_set(CF_E_INVAL, "request plaintext needs a secret buffer");
    before = out->len;
    CF_GUARD(check_x25519(tee_key, true, "TEE key"));
    CF_GUARD(check_x25519(client_key, false, "client key"));
    client_pk = cf_hpke_key_pub(client_key, &pk_len);
    CF_ENSURE(pk_len == CF_ENV_KEY_LEN, CF_E_INTERNAL);
    /* The OTK is bound to the client key the KMS holds: the header must name it. */
    if (!cf_ct_eq(client_pk, env->hdr.client_key, CF_ENV_KEY_LEN))
        return cf_err_set(CF_E_UNAUTHENTICATED,
                          "envelope client_key is not the client key bound to the OTK");

    /* The outer plaintext is the inner ciphertext (data_len bytes) || inner tag. It
     * is decrypted straight into out, the tag aside, and the inner layer is then
     * opened in place: no copy of a large request. */
    data_len = env->ct_len - CF_HPKE_NT;
    cf_buf_view(&v, env->ct, env->ct_len);
    CF_GUARD(cf_buf_get_ptr(&v, data_len, &ct_body));
    CF_GUARD(cf_buf_get_ptr(&v, CF_HPKE_NT, &ct_tag));
    CF_GUARD(cf_secret_new(&key, OUTER_KEY_LEN));
    CF_GUARD_OUT(outer_key(client_pk, otk, key.p));
    dst_off = out->len;
    CF_GUARD_OUT(cf_buf_put_space(out, data_len, &dst));

    /* Outer layer: verify the tag before the inner layer is touched. */
    {
        cf_iov aad = {env->header, env->header_len};
        gcm_part parts[2] = {{ct_body, out->data + dst_off, data_len},
                             {ct_tag, inner_tag, CF_HPKE_NT}};
        uint8_t tag[CF_ENV_TAG_LEN];
        memcpy(tag, env->tag, sizeof(tag));
        rc = gcm(false, key.p, env->nonce, &aad, 1, parts, 2, tag);
        if (rc == CF_E_DECRYPT)
            rc = cf_err_set(CF_E_DECRYPT, "envelope outer layer did not verify "
                                          "(wrong OTK or altered envelope)");
        if (rc < 0)
            goto out;
    }

    /* Inner layer: HPKE auth mode proves that the KMS's client key sent it. */
    CF_GUARD_OUT(cf_hpke_setup_receiver(&p, env->hdr.enc, CF_ENV_KEY_LEN, tee_key, client_key,
                                        &ctx));
    dst = out->data + dst_off;
    rc = cf_hpke_open_detached(ctx, env->header, env->header_len, dst, data_len, inner_tag, dst);
    if (rc == CF_E_DECRYPT)
        rc = cf_err_set(CF_E_DECRYPT, "envelope inner layer did not verify "
                                      "(wrong TEE key or not sealed by the client key)");
    if (rc < 0)
        goto out;
    if (ret_ctx != NULL) {
        *ret_ctx = ctx;
        ctx = NULL;
    }
out:
    if (rc < 0)
        buf_rollback(out, before);
    cf_secret_free(&key);
    cf_hpke_ctx_free(ctx);
    return rc;
}

/* ---- response --------------------------------------------------------------------- */

static int response_key(const cf_hpke_ctx *ctx, cf_secret *key)
{
    CF_GUARD(cf_secret_new(key, RESPONSE_KEY_LEN));
    return cf_hpke_export(ctx, (const uint8_t *)CF_ENV_RESPONSE_EXPORT,
                          strlen(CF_ENV_RESPONSE_EXPORT), key->p, RESPONSE_KEY_LEN);
}

int cf_env_response_seal(const cf_hpke_ctx *ctx, const char *request_id, uint8_t status,
                         const uint8_t *output, size_t output_len, cf_buf *out)
{
    cf_secret key = {NULL, 0};
    uint8_t *dst = NULL, tag[CF_ENV_TAG_LEN];
    size_t before, nonce_off, ct_off;
    int rc;

    CF_ENSURE(ctx != NULL && out != NULL && (output != NULL || output_len == 0), CF_E_INVAL);
    before = out->len;
    CF_GUARD(check_id("request_id", request_id, CF_ID_MAX_LEN, CF_E_INVAL));
    if (output_len > CF_ENV_MAX_PAYLOAD)
        return cf_err_set(CF_E_TOO_LARGE, "response output over %u bytes", CF_ENV_MAX_PAYLOAD);
    CF_GUARD_OUT(response_key(ctx, &key));
    CF_GUARD_OUT(cf_buf_reserve(out, CF_ENV_MAGIC_LEN + CF_ENV_NONCE_LEN + 1 + output_len +
                                         CF_ENV_TAG_LEN));
    CF_GUARD_OUT(cf_buf_put(out, CF_ENV_RESPONSE_MAGIC, CF_ENV_MAGIC_LEN));
    nonce_off = out->len;
    CF_GUARD_OUT(cf_buf_put_space(out, CF_ENV_NONCE_LEN, &dst));
    CF_GUARD_OUT(cf_random(dst, CF_ENV_NONCE_LEN));
    ct_off = out->len;
    CF_GUARD_OUT(cf_buf_put_space(out, 1 + output_len, &dst));
    {
        /* aad = "CFR1" || request_id binds the response to its request. */
        cf_iov aad[2] = {{CF_ENV_RESPONSE_MAGIC, CF_ENV_MAGIC_LEN},
                         {request_id, strlen(request_id)}};
        gcm_part parts[2] = {{&status, out->data + ct_off, 1},
                             {output, out->data + ct_off + 1, output_len}};
        CF_GUARD_OUT(gcm(true, key.p, out->data + nonce_off, aad, 2, parts, 2, tag));
    }
    CF_GUARD_OUT(cf_buf_put(out, tag, sizeof(tag)));
    rc = 0;
out:
    if (rc < 0)
        buf_rollback(out, before);
    cf_secret_free(&key);
    return rc;
}

int cf_env_response_open(const cf_hpke_ctx *ctx, const char *request_id, const uint8_t *resp,
                         size_t resp_len, uint8_t *ret_status, cf_buf *out)
{
    cf_buf b;
    cf_secret key = {NULL, 0};
    const uint8_t *magic = NULL, *nonce = NULL, *ct_status = NULL, *ct = NULL, *tagp = NULL;
    uint8_t status = 0, tag[CF_ENV_TAG_LEN], *dst = NULL;
    size_t before, rest, ct_len, out_off;
    int rc;

    CF_ENSURE(ctx != NULL && ret_status != NULL && out != NULL && (resp != NULL || resp_len == 0),
              CF_E_INVAL);
    if (!out->secret)
        return cf_err_set(CF_E_INVAL, "response plaintext needs a secret buffer");
    before = out->len;
    CF_GUARD(check_id("request_id", request_id, CF_ID_MAX_LEN, CF_E_INVAL));
    if (resp_len > CF_ENV_MAX_RESPONSE_BYTES)
        return cf_err_set(CF_E_TOO_LARGE, "response of %zu bytes exceeds %u", resp_len,
                          (unsigned)CF_ENV_MAX_RESPONSE_BYTES);
    cf_buf_view(&b, resp, resp_len);
    if (cf_buf_get_ptr(&b, CF_ENV_MAGIC_LEN, &magic) != 0)
        return cf_err_set(CF_E_TRUNCATED, "response shorter than its magic");
    if (memcmp(magic, CF_ENV_RESPONSE_MAGIC, CF_ENV_MAGIC_LEN) != 0)
        return cf_err_set(CF_E_PARSE, "not a CFR1 response (bad magic)");
    if (cf_buf_get_ptr(&b, CF_ENV_NONCE_LEN, &nonce) != 0)
        return cf_err_set(CF_E_TRUNCATED, "response ends inside the nonce");
    rest = cf_buf_remaining(&b);
    if (rest < 1 + CF_ENV_TAG_LEN)
        return cf_err_set(CF_E_TRUNCATED, "response too short for status and tag");
    ct_len = rest - CF_ENV_TAG_LEN;
    /* ct = encrypted status byte || encrypted output. */
    CF_GUARD(cf_buf_get_ptr(&b, 1, &ct_status));
    CF_GUARD(cf_buf_get_ptr(&b, ct_len - 1, &ct));
    CF_GUARD(cf_buf_get_ptr(&b, CF_ENV_TAG_LEN, &tagp));
    CF_GUARD(cf_buf_expect_end(&b));
    memcpy(tag, tagp, sizeof(tag));

    CF_GUARD(response_key(ctx, &key));
    out_off = out->len;
    CF_GUARD_OUT(cf_buf_put_space(out, ct_len - 1, &dst));
    {
        cf_iov aad[2] = {{CF_ENV_RESPONSE_MAGIC, CF_ENV_MAGIC_LEN},
                         {request_id, strlen(request_id)}};
        gcm_part parts[2] = {{ct_status, &status, 1}, {ct, out->data + out_off, ct_len - 1}};
        rc = gcm(false, key.p, nonce, aad, 2, parts, 2, tag);
        if (rc == CF_E_DECRYPT)
            rc = cf_err_set(CF_E_DECRYPT, "response did not verify (altered, or not the "
                                          "response to request '%s')",
                            request_id);
        if (rc < 0)
            goto out;
    }
    *ret_status = status;
    rc = 0;
out:
    if (rc < 0)
        buf_rollback(out, before);
    cf_wipe(&status, sizeof(status));
    cf_secret_free(&key);
    return rc;
}
