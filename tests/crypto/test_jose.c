#include <string.h>

#include "base/buf.h"
#include "base/err.h"
#include "base/json.h"
#include "base/limits.h"
#include "base/parse.h"
#include "crypto/hash.h"
#include "crypto/jose.h"
#include "crypto/keys.h"
#include "test.h"

/* iat of the veraison EAR example (ear-claims.json); the token has no exp. */
#define EAR_IAT 1666091373
#define NOW 1700000000 /* fixed verification time for synthetic tokens */

static const cf_key_type sig_types[] = {CF_KEY_P256, CF_KEY_P384, CF_KEY_ED25519};

/* ---- helpers (abort on internal failure: they build test inputs) ---- */

static void must(int rc)
{
    if (rc != 0) {
        fprintf(stderr, "helper failed: %d %s\n", rc, cf_err_detail(rc));
        abort();
    }
}

static cf_key *gen(cf_key_type t)
{
    cf_key *k = NULL;
    must(cf_key_generate(t, &k));
    return k;
}

static void put_b64(cf_buf *b, const void *p, size_t n)
{
    char *s = cf_b64url_encode_alloc(p, n);
    if (s == NULL)
        abort();
    must(cf_buf_put_str(b, s));
    free(s);
}

/* A compact JWS with an arbitrary header text, signed by k with raw signature
 * bytes (k NULL: the signature is sig_len zero bytes). Caller frees. */
static char *forge(const char *hdr, const char *payload, const cf_key *k, size_t sig_len)
{
    cf_buf t, sig;
    size_t n;
    char *out;

    cf_buf_init(&t, 1u << 20);
    cf_buf_init(&sig, 256);
    put_b64(&t, hdr, strlen(hdr));
    must(cf_buf_put_u8(&t, '.'));
    put_b64(&t, payload, strlen(payload));
    if (k != NULL) {
        must(cf_key_sign(k, CF_SIG_RAW, t.data, t.len, &sig));
    } else {
        uint8_t *z;
        must(cf_buf_put_space(&sig, sig_len, &z));
        memset(z, 0, sig_len);
    }
    must(cf_buf_put_u8(&t, '.'));
    put_b64(&t, sig.data, sig.len);
    must(cf_buf_nul_terminate(&t));
    out = (char *)cf_buf_detach(&t, &n);
    cf_buf_free(&sig);
    return out;
}

static int verify_jwt(const char *tok, const cf_key *k, const cf_jwt_verify_opts *o)
{
    json_t *claims = NULL;
    int rc = cf_jwt_verify(tok, strlen(tok), k, NULL, o, &claims);
    if (rc == 0 && !json_is_object(claims))
        rc = 99;
    json_decref(claims);
    return rc;
}

static int verify_jws(const char *tok, const cf_key *k)
{
    return cf_jws_verify(tok, strlen(tok), k, NULL, NULL, NULL);
}

static char *sign_claims(const cf_key *k, const char *claims_json, const char *typ)
{
    json_t *c = NULL;
    char *tok = NULL;
    must(cf_json_parse_object(claims_json, strlen(claims_json), 4096, &c));
    must(cf_jwt_sign(k, c, typ, NULL, &tok));
    json_decref(c);
    return tok;
}

static int detail_has(int rc, const char *needle)
{
    const char *d = cf_err_detail(rc);
    if (strstr(d, needle) == NULL) {
        fprintf(stderr, "  detail \"%s\" lacks \"%s\"\n", d, needle);
        return 0;
    }
    return 1;
}

/* Reads a test vector file and strips the trailing newline that text files carry. */
static char *read_text(const char *rel, size_t *ret_len)
{
    size_t n = 0;
    char *d = (char *)t_read_file(t_testdata(rel), &n);
    while (n > 0 && (d[n - 1] == '\n' || d[n - 1] == '\r' || d[n - 1] == ' '))
        d[--n] = '\0';
    *ret_len = n;
    return d;
}

/* ---- tests ---- */

static void test_alg_names(void)
{
    cf_key *k = gen(CF_KEY_X25519);
    cf_jws_alg a = CF_JWS_ES256;

    T_STREQ(cf_jws_alg_name(CF_JWS_ES256), "ES256");
    T_STREQ(cf_jws_alg_name(CF_JWS_ES384), "ES384");
    T_STREQ(cf_jws_alg_name(CF_JWS_EDDSA), "EdDSA");
    T_STREQ(cf_jws_alg_name((cf_jws_alg)0), "?");
    T_ERR(cf_jws_alg_for_key(k, &a), CF_E_UNSUPPORTED);
    cf_key_free(k);
    k = gen(CF_KEY_P384);
    T_OK(cf_jws_alg_for_key(k, &a));
    T_EQ(a, CF_JWS_ES384);
    cf_key_free(k);
}

/* Sign/verify round trip per algorithm, with a binary payload. */
static void test_jws_roundtrip(void)
{
    static const uint8_t payload[] = {0, 1, 2, 0xff, 0xfe, '.', 'x', 0};
    for (size_t i = 0; i < CF_ARRAY_LEN(sig_types); i++) {
        cf_key *k = gen(sig_types[i]), *pub = NULL, *other = gen(sig_types[i]);
        json_t *extra = json_pack("{s:s, s:s}", "typ", "test+jws", "kid", "k1");
        json_t *hdr = NULL;
        char *tok = NULL, *empty = NULL;
        cf_buf out;
        cf_jws_alg alg = CF_JWS_ES256;

        cf_buf_init(&out, 1024);
        T_OK(cf_key_public_only(k, &pub));
        T_OK(cf_jws_alg_for_key(k, &alg));
        T_OK(cf_jws_sign(k, extra, payload, sizeof(payload), &tok));
        T_OK(cf_jws_verify(tok, strlen(tok), pub, NULL, &hdr, &out));
        T_EQ(out.len, sizeof(payload));
        T_MEMEQ(out.data, payload, sizeof(payload));
        T_STREQ(json_string_value(json_object_get(hdr, "alg")), cf_jws_alg_name(alg));
        T_STREQ(json_string_value(json_object_get(hdr, "typ")), "test+jws");
        T_STREQ(json_string_value(json_object_get(hdr, "kid")), "k1");
        /* Another key of the same type does not verify it. */
        T_ERR(verify_jws(tok, other), CF_E_SIGNATURE);
        /* Flip one signature character (keeping valid base64url). */
        size_t n = strlen(tok);
        tok[n - 3] = tok[n - 3] == 'A' ? 'B' : 'A';
        T_ERR(verify_jws(tok, pub), CF_E_SIGNATURE);
        /* Empty payload is a valid JWS. */
        T_OK(cf_jws_sign(k, NULL, NULL, 0, &empty));
        T_OK(verify_jws(empty, pub));
        T_ASSERT(strstr(empty, "..") != NULL);

        json_decref(extra);
        json_decref(hdr);
        free(tok);
        free(empty);
        cf_buf_free(&out);
        cf_key_free(k);
        cf_key_free(pub);
        cf_key_free(other);
    }
}

/* RFC 8037 §A.4 / §A.5: Ed25519 signing of "Example of Ed25519 signing" with the
 * RFC 8032 TEST 1 key. EdDSA is deterministic, so our signer must produce the
 * exact token, and the verifier must accept it. */
static void test_rfc8037_kat(void)
{
    static const char want[] =
        "eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc."
        "hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg";
    static const char jwk[] =
        "{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo\"}";
    uint8_t sk[32];
    cf_key *k = NULL, *pub = NULL;
    char *tok = NULL;
    cf_buf out;

    cf_buf_init(&out, 256);
    T_OK(cf_hex_decode("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60", sk, 32));
    T_OK(cf_key_from_private(CF_KEY_ED25519, sk, 32, &k));
    T_OK(cf_jws_sign(k, NULL, (const uint8_t *)"Example of Ed25519 signing", 26, &tok));
    T_STREQ(tok, want);
    T_OK(cf_jwk_parse(jwk, strlen(jwk), &pub, NULL));
    T_OK(cf_jws_verify(want, strlen(want), pub, NULL, NULL, &out));
    T_EQ(out.len, 26);
    T_MEMEQ(out.data, "Example of Ed25519 signing", 26);
    cf_key_free(k);
    cf_key_free(pub);
    free(tok);
    cf_buf_free(&out);
}

static void test_jwk_roundtrip(void)
{
    static const cf_key_type all[] = {CF_KEY_P256, CF_KEY_P384, CF_KEY_ED25519, CF_KEY_X25519};
    for (size_t i = 0; i < CF_ARRAY_LEN(all); i++) {
        cf_key *k = gen(all[i]), *back = NULL;
        json_t *j = NULL;
        char *kid = NULL, *text = NULL;

        T_OK(cf_jwk_to_json(k, "key-1", &j));
        T_ASSERT(json_object_get(j, "d") == NULL);
        T_STREQ(json_string_value(json_object_get(j, "crv")), cf_key_type_name(all[i]));
        T_STREQ(json_string_value(json_object_get(j, "use")), all[i] == CF_KEY_X25519 ? "enc" : "sig");
        T_OK(cf_jwk_from_json(j, &back, &kid));
        T_STREQ(kid, "key-1");
        T_ASSERT(cf_key_public_eq(k, back));
        T_ASSERT(!cf_key_has_private(back));
        text = cf_json_dump(j);
        T_ASSERT(text != NULL);
        cf_key_free(back);
        back = NULL;
        free(kid);
        kid = NULL;
        T_OK(cf_jwk_parse(text, strlen(text), &back, &kid));
        T_ASSERT(cf_key_public_eq(k, back));
        free(kid);
        free(text);
        json_decref(j);
        cf_key_free(k);
        cf_key_free(back);
    }
}

static int jwk_try(const char *text)
{
    cf_key *k = NULL;
    char *kid = NULL;
    int rc = cf_jwk_parse(text, strlen(text), &k, &kid);
    cf_key_free(k);
    free(kid);
    return rc;
}

static void test_jwk_strict(void)
{
    /* The EAR verification key: P-256, no kid. */
    size_t n = 0;
    static char unset[] = "unset";
    char *pk = read_text("ear/pkey.json", &n), *kid = unset;
    cf_key *k = NULL;
    const char *x = "\"x\":\"usWxHK2PmfnHKwXPS54m0kTcGJ90UiglWiGahtagnv8\"";
    const char *y = "\"y\":\"IBOL-C3BttVivg-lSreASjpkttcsz-1rb7btKLv8EX4\"";
    char buf[512];

    T_OK(cf_jwk_parse(pk, n, &k, &kid));
    T_ASSERT(kid == NULL);
    T_EQ(cf_key_get_type(k), CF_KEY_P256);
    cf_key_free(k);
    free(pk);

#define JWK(...) (cf_fmt(buf, sizeof(buf), __VA_ARGS__) == 0 ? jwk_try(buf) : -1000)
    T_OK(JWK("{\"kty\":\"EC\",\"crv\":\"P-256\",%s,%s}", x, y));
    T_OK(JWK("{\"kty\":\"EC\",\"crv\":\"P-256\",%s,%s,\"alg\":\"ES256\",\"use\":\"sig\",\"kid\":\"a\","
             "\"key_ops\":[\"verify\"],\"x5t\":\"ignored\"}", x, y));
    /* Private member, unknown kty / crv. */
    T_ERR(JWK("{\"kty\":\"EC\",\"crv\":\"P-256\",%s,%s,\"d\":\"AAAA\"}", x, y), CF_E_UNSUPPORTED);
    T_ASSERT(detail_has(CF_E_UNSUPPORTED, "private member 'd'"));
    T_ERR(JWK("{\"kty\":\"RSA\",\"n\":\"AQAB\",\"e\":\"AQAB\"}"), CF_E_UNSUPPORTED);
    T_ASSERT(detail_has(CF_E_UNSUPPORTED, "unknown kty 'RSA'"));
    T_ERR(JWK("{\"kty\":\"oct\",\"k\":\"AAAA\"}"), CF_E_UNSUPPORTED);
    T_ERR(JWK("{\"kty\":\"EC\",\"crv\":\"P-521\",%s,%s}", x, y), CF_E_UNSUPPORTED);
    T_ERR(JWK("{\"kty\":\"EC\",\"crv\":\"secp256k1\",%s,%s}", x, y), CF_E_UNSUPPORTED);
    T_ERR(JWK("{\"kty\":\"OKP\",\"crv\":\"Ed448\",%s}", x), CF_E_UNSUPPORTED);
    T_ERR(JWK("{\"crv\":\"P-256\",%s,%s}", x, y), CF_E_PARSE);             /* no kty */
    T_ERR(JWK("{\"kty\":\"EC\",%s,%s}", x, y), CF_E_PARSE);                /* no crv */
    T_ERR(JWK("{\"kty\":\"EC\",\"crv\":\"P-256\",%s}", x), CF_E_PARSE);    /* no y */
    T_ERR(JWK("{\"kty\":\"EC\",\"crv\":\"P-384\",%s,%s}", x, y), CF_E_PARSE); /* wrong size */
    /* Coordinate lengths and base64url strictness. */
    T_ERR(JWK("{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"usWxHK2PmfnHKwXPS54m0kTcGJ90UiglWiGahtagnv\",%s}", y),
          CF_E_PARSE);
    T_ERR(JWK("{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"usWxHK2PmfnHKwXPS54m0kTcGJ90UiglWiGahtagnv8=\",%s}", y),
          CF_E_PARSE);
    T_ERR(JWK("{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"usWxHK2PmfnHKwXPS54m0kTcGJ90UiglWiGahtagnv+\",%s}", y),
          CF_E_PARSE);
    /* Non-canonical trailing bits ('9' = ...8 + 1 in the last sextet). */
    T_ERR(JWK("{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"usWxHK2PmfnHKwXPS54m0kTcGJ90UiglWiGahtagnv9\",%s}", y),
          CF_E_PARSE);
    T_ERR(JWK("{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":5,%s}", y), CF_E_PARSE);
    /* Off-curve point: y changed in its last full byte. */
    T_ERR(JWK("{\"kty\":\"EC\",\"crv\":\"P-256\",%s,\"y\":\"IBOL-C3BttVivg-lSreASjpkttcsz-1rb7btKLv8EX8\"}", x),
          CF_E_PARSE);
    /* alg / use that do not fit the key; empty kid. */
    T_ERR(JWK("{\"kty\":\"EC\",\"crv\":\"P-256\",%s,%s,\"alg\":\"ES384\"}", x, y), CF_E_UNSUPPORTED);
    T_ERR(JWK("{\"kty\":\"EC\",\"crv\":\"P-256\",%s,%s,\"alg\":\"HS256\"}", x, y), CF_E_UNSUPPORTED);
    T_ERR(JWK("{\"kty\":\"EC\",\"crv\":\"P-256\",%s,%s,\"use\":\"enc\"}", x, y), CF_E_UNSUPPORTED);
    T_ERR(JWK("{\"kty\":\"EC\",\"crv\":\"P-256\",%s,%s,\"kid\":\"\"}", x, y), CF_E_PARSE);
    T_ERR(JWK("{\"kty\":\"EC\",\"crv\":\"P-256\",%s,%s,\"kid\":7}", x, y), CF_E_PARSE);
    /* OKP: 32-byte x, no y; X25519 with an ECDH-ES alg. */
    T_OK(JWK("{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo\"}"));
    T_ERR(JWK("{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo\",%s}", y),
          CF_E_PARSE);
    T_ERR(JWK("{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHUR\"}"),
          CF_E_PARSE);
    T_OK(JWK("{\"kty\":\"OKP\",\"crv\":\"X25519\",\"alg\":\"ECDH-ES\",\"x\":\"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo\"}"));
    T_ERR(JWK("{\"kty\":\"OKP\",\"crv\":\"X25519\",\"alg\":\"EdDSA\",\"x\":\"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo\"}"),
          CF_E_UNSUPPORTED);
    /* Not an object; duplicate member; trailing data. */
    T_ERR(JWK("[1]"), CF_E_PARSE);
    T_ERR(JWK("{\"kty\":\"EC\",\"kty\":\"EC\",\"crv\":\"P-256\",%s,%s}", x, y), CF_E_PARSE);
    T_ERR(JWK("{\"kty\":\"EC\",\"crv\":\"P-256\",%s,%s} x", x, y), CF_E_PARSE);
#undef JWK
    /* Too large. */
    char *big = malloc(CF_JWK_MAX_BYTES + 2);
    T_ASSERT(big != NULL);
    memset(big, ' ', CF_JWK_MAX_BYTES + 1);
    big[0] = '{';
    big[CF_JWK_MAX_BYTES] = '}';
    big[CF_JWK_MAX_BYTES + 1] = 0;
    T_ERR(jwk_try(big), CF_E_TOO_LARGE);
    free(big);
}

static void test_jwks(void)
{
    cf_jwks *set = NULL, *back = NULL;
    cf_key *keys[4] = {gen(CF_KEY_P256), gen(CF_KEY_P384), gen(CF_KEY_ED25519), gen(CF_KEY_X25519)};
    const char *kids[4] = {"p256", "p384", NULL, "x"};
    const cf_key *found = NULL;
    const char *kid = NULL;
    char tp[CF_KEY_THUMBPRINT_LEN + 1];
    char *text = NULL;

    T_OK(cf_jwks_new(&set));
    for (int i = 0; i < 4; i++)
        T_OK(cf_jwks_add(set, kids[i], keys[i]));
    T_EQ(cf_jwks_count(set), 4);
    /* NULL kid = thumbprint. */
    T_OK(cf_key_thumbprint(keys[2], tp));
    T_OK(cf_jwks_find(set, tp, &found));
    T_ASSERT(cf_key_public_eq(found, keys[2]));
    T_ASSERT(!cf_key_has_private(found)); /* the set keeps public keys only */
    T_ERR(cf_jwks_add(set, "p256", keys[1]), CF_E_EXISTS);
    T_ERR(cf_jwks_add(set, "", keys[1]), CF_E_INVAL);
    T_ERR(cf_jwks_find(set, "nope", &found), CF_E_NOT_FOUND);
    T_ASSERT(detail_has(CF_E_NOT_FOUND, "unknown kid 'nope'"));

    T_OK(cf_jwks_serialise(set, &text));
    T_ASSERT(strstr(text, "\"d\"") == NULL);
    T_OK(cf_jwks_parse(text, strlen(text), &back));
    T_EQ(cf_jwks_count(back), 4);
    for (size_t i = 0; i < 4; i++) {
        const cf_key *a = cf_jwks_key_at(set, i, &kid), *b = NULL;
        T_OK(cf_jwks_find(back, kid, &b));
        T_ASSERT(cf_key_public_eq(a, b));
    }
    T_ASSERT(cf_jwks_key_at(back, 4, &kid) == NULL);
    free(text);
    cf_jwks_free(back);
    back = NULL;

    /* Capacity: CF_JWKS_MAX_KEYS, then TOO_LARGE; parsing a larger set fails too. */
    for (int i = 4; i < CF_JWKS_MAX_KEYS; i++) {
        char name[16];
        T_OK(cf_fmt(name, sizeof(name), "k%d", i));
        T_OK(cf_jwks_add(set, name, keys[0]));
    }
    T_ERR(cf_jwks_add(set, "one-more", keys[0]), CF_E_TOO_LARGE);
    T_OK(cf_jwks_serialise(set, &text));
    T_OK(cf_jwks_parse(text, strlen(text), &back));
    T_EQ(cf_jwks_count(back), CF_JWKS_MAX_KEYS);
    cf_jwks_free(back);
    back = NULL;
    {
        /* Add one more JWK to the text: {"keys":[...,{...}]} */
        json_t *v = NULL, *extra = NULL;
        T_OK(cf_json_parse_object(text, strlen(text), CF_JWKS_MAX_BYTES, &v));
        T_OK(cf_jwk_to_json(keys[1], "extra", &extra));
        T_ASSERT(json_array_append_new(json_object_get(v, "keys"), extra) == 0);
        T_ERR(cf_jwks_from_json(v, &back), CF_E_TOO_LARGE);
        json_decref(v);
    }
    free(text);

    /* Strictness of members: missing kid, duplicate kid, private JWK, no "keys". */
    static const char *bad[] = {
        "{\"keys\":[{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo\"}]}",
        "{\"keys\":[{\"kid\":\"a\",\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo\"},"
        "{\"kid\":\"a\",\"kty\":\"OKP\",\"crv\":\"X25519\",\"x\":\"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo\"}]}",
        "{\"keys\":[{\"kid\":\"a\",\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"d\":\"nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A\","
        "\"x\":\"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo\"}]}",
        "{\"keys\":{}}",
        "{}",
        "[]",
        "{\"keys\":[1]}",
    };
    static const int want[] = {CF_E_PARSE, CF_E_PARSE, CF_E_UNSUPPORTED, CF_E_PARSE,
                               CF_E_PARSE, CF_E_PARSE, CF_E_PARSE};
    for (size_t i = 0; i < CF_ARRAY_LEN(bad); i++) {
        T_ASSERT_MSG(cf_jwks_parse(bad[i], strlen(bad[i]), &back) == want[i], "bad JWKS %zu", i);
        T_ASSERT(back == NULL);
    }
    const char *empty = "{\"keys\":[]}";
    T_OK(cf_jwks_parse(empty, strlen(empty), &back));
    T_EQ(cf_jwks_count(back), 0);
    cf_jwks_free(back);

    cf_jwks_free(set);
    for (int i = 0; i < 4; i++)
        cf_key_free(keys[i]);
}

/* The real veraison EAR token (ES256) with its published key. */
static void test_ear_token(void)
{
    size_t tn = 0, kn = 0;
    char *tok = read_text("ear/testJWT.jwt", &tn);
    char *jwk = read_text("ear/pkey.json", &kn);
    cf_key *k = NULL, *other = gen(CF_KEY_P256);
    json_t *claims = NULL, *sub = NULL;
    cf_jwt_verify_opts o = {.typ = "JWT", .now = EAR_IAT + 3600, .allow_missing_exp = true};
    cf_jwks *set = NULL;
    uint64_t iat = 0;
    const char *prof = NULL;

    T_OK(cf_jwk_parse(jwk, kn, &k, NULL));
    T_OK(cf_jwt_verify(tok, tn, k, NULL, &o, &claims));
    T_OK(cf_json_get_u64(claims, "iat", true, UINT64_MAX, &iat));
    T_EQ(iat, EAR_IAT);
    T_OK(cf_json_get_str(claims, "eat_profile", true, 256, &prof));
    T_STREQ(prof, "tag:github.com,2023:veraison/ear");
    T_OK(cf_json_get_obj(claims, "submods", true, &sub));
    T_ASSERT(json_object_get(json_object_get(sub, "test"), "ear.status") != NULL);
    T_STREQ(json_string_value(json_object_get(json_object_get(sub, "test"), "ear.status")),
            "affirming");
    json_decref(claims);
    claims = NULL;

    /* It has no exp: refused unless the caller allows that. */
    o.allow_missing_exp = false;
    T_ERR(cf_jwt_verify(tok, tn, k, NULL, &o, &claims), CF_E_VERIFY);
    T_ASSERT(detail_has(CF_E_VERIFY, "no exp"));
    o.allow_missing_exp = true;
    /* Before its iat: issued in the future; the leeway covers small skews. */
    o.now = EAR_IAT - 3600;
    T_ERR(cf_jwt_verify(tok, tn, k, NULL, &o, &claims), CF_E_NOT_YET_VALID);
    T_ASSERT(detail_has(CF_E_NOT_YET_VALID, "2022-10-18T11:09:33Z"));
    o.now = EAR_IAT - 30;
    o.leeway = 60;
    T_OK(cf_jwt_verify(tok, tn, k, NULL, &o, &claims));
    json_decref(claims);
    claims = NULL;
    o.now = EAR_IAT + 3600;
    o.leeway = 0;
    /* Wrong typ expected. */
    o.typ = "application/eat+jwt";
    T_ERR(cf_jwt_verify(tok, tn, k, NULL, &o, &claims), CF_E_VERIFY);
    T_ASSERT(detail_has(CF_E_VERIFY, "typ 'JWT' is not 'application/eat+jwt'"));
    o.typ = "JWT";
    /* A token without aud is fine when none is expected, refused when one is. */
    o.aud = "coffer";
    T_ERR(cf_jwt_verify(tok, tn, k, NULL, &o, &claims), CF_E_VERIFY);
    o.aud = NULL;
    /* A different key. */
    T_ERR(cf_jwt_verify(tok, tn, other, NULL, &o, &claims), CF_E_SIGNATURE);
    /* Not an Ed25519 or P-384 key's algorithm. */
    cf_key *ed = gen(CF_KEY_ED25519);
    T_ERR(cf_jwt_verify(tok, tn, ed, NULL, &o, &claims), CF_E_UNSUPPORTED);
    T_ASSERT(detail_has(CF_E_UNSUPPORTED, "alg ES256 does not match Ed25519 key"));
    cf_key_free(ed);
    /* One flipped character (still base64url) in the signature, in the payload
     * and in the header ("alg" -> "alf"-like damage gives a parse error). */
    size_t pos[] = {tn - 5, tn / 2, 5};
    int want[] = {CF_E_SIGNATURE, CF_E_SIGNATURE, CF_E_PARSE};
    for (size_t i = 0; i < CF_ARRAY_LEN(pos); i++) {
        char c = tok[pos[i]];
        tok[pos[i]] = c == 'Q' ? 'R' : 'Q';
        T_ASSERT_MSG(cf_jwt_verify(tok, tn, k, NULL, &o, &claims) == want[i], "flip at %zu: %s",
                     pos[i], cf_err_detail(want[i]));
        tok[pos[i]] = c;
    }
    /* The file's trailing newline is not part of a token. */
    tok[tn] = '\n';
    T_ERR(cf_jwt_verify(tok, tn + 1, k, NULL, &o, &claims), CF_E_PARSE);
    tok[tn] = '\0';
    T_OK(cf_jwt_verify(tok, tn, k, NULL, &o, &claims));
    json_decref(claims);
    claims = NULL;
    /* Through a JWKS: the token has no kid to select a key with. */
    T_OK(cf_jwks_new(&set));
    T_OK(cf_jwks_add(set, "ear", k));
    T_ERR(cf_jwt_verify(tok, tn, NULL, set, &o, &claims), CF_E_NOT_FOUND);
    T_ASSERT(detail_has(CF_E_NOT_FOUND, "no kid"));
    T_ASSERT(claims == NULL);

    cf_jwks_free(set);
    cf_key_free(k);
    cf_key_free(other);
    free(tok);
    free(jwk);
}

static void test_jwt_roundtrip(void)
{
    for (size_t i = 0; i < CF_ARRAY_LEN(sig_types); i++) {
        cf_key *k = gen(sig_types[i]), *pub = NULL;
        char tp[CF_KEY_THUMBPRINT_LEN + 1];
        char *tok = sign_claims(k, "{\"iss\":\"coffer-iam\",\"sub\":\"alice\",\"aud\":\"coffer-kms\","
                                   "\"iat\":1699999000,\"nbf\":1699999000,\"exp\":1700000600}",
                                NULL);
        cf_jwt_verify_opts o = {.now = NOW, .iss = "coffer-iam", .aud = "coffer-kms", .typ = "JWT"};
        json_t *claims = NULL, *hdr = NULL;
        cf_jwks *set = NULL;
        const char *sub = NULL;

        T_OK(cf_key_public_only(k, &pub));
        T_OK(cf_jwt_verify(tok, strlen(tok), pub, NULL, &o, &claims));
        T_OK(cf_json_get_str(claims, "sub", true, 64, &sub));
        T_STREQ(sub, "alice");
        json_decref(claims);
        claims = NULL;
        /* Header: typ JWT by default, kid = thumbprint. */
        T_OK(cf_jws_verify(tok, strlen(tok), pub, NULL, &hdr, NULL));
        T_OK(cf_key_thumbprint(k, tp));
        T_STREQ(json_string_value(json_object_get(hdr, "typ")), "JWT");
        T_STREQ(json_string_value(json_object_get(hdr, "kid")), tp);
        json_decref(hdr);
        /* Selected from a JWKS by kid; an unknown kid fails. */
        T_OK(cf_jwks_new(&set));
        T_OK(cf_jwks_add(set, "other", k));
        T_ERR(cf_jwt_verify(tok, strlen(tok), NULL, set, &o, &claims), CF_E_NOT_FOUND);
        T_ASSERT(detail_has(CF_E_NOT_FOUND, "unknown kid"));
        T_OK(cf_jwks_add(set, NULL, k));
        T_OK(cf_jwt_verify(tok, strlen(tok), NULL, set, &o, &claims));
        json_decref(claims);
        claims = NULL;
        /* Exactly one of key / jwks. */
        T_ERR(cf_jwt_verify(tok, strlen(tok), pub, set, &o, &claims), CF_E_INVAL);
        T_ERR(cf_jwt_verify(tok, strlen(tok), NULL, NULL, &o, &claims), CF_E_INVAL);
        cf_jwks_free(set);

        /* iss / aud mismatches. */
        o.iss = "someone-else";
        T_ERR(verify_jwt(tok, pub, &o), CF_E_VERIFY);
        T_ASSERT(detail_has(CF_E_VERIFY, "iss 'coffer-iam' is not 'someone-else'"));
        o.iss = NULL;
        T_OK(verify_jwt(tok, pub, &o));
        o.aud = "coffer-gateway";
        T_ERR(verify_jwt(tok, pub, &o), CF_E_VERIFY);
        o.aud = NULL;
        T_ERR(verify_jwt(tok, pub, &o), CF_E_VERIFY); /* has aud, none expected */
        o.aud = "coffer-kms";
        /* Expiry: at exp it is expired; leeway extends it. */
        o.now = 1700000600;
        T_ERR(verify_jwt(tok, pub, &o), CF_E_EXPIRED);
        T_ASSERT(detail_has(CF_E_EXPIRED, "token expired at 2023-11-14T22:23:20Z"));
        o.leeway = 5;
        T_OK(verify_jwt(tok, pub, &o));
        o.leeway = CF_JWT_MAX_LEEWAY + 1;
        T_ERR(verify_jwt(tok, pub, &o), CF_E_INVAL);
        o.leeway = 0;
        /* Not yet valid (nbf). */
        o.now = 1699998999;
        T_ERR(verify_jwt(tok, pub, &o), CF_E_NOT_YET_VALID);
        T_ASSERT(detail_has(CF_E_NOT_YET_VALID, "not valid before"));
        o.now = NOW;
        /* Wrong typ expected. */
        o.typ = "at+jwt";
        T_ERR(verify_jwt(tok, pub, &o), CF_E_VERIFY);
        T_ASSERT(detail_has(CF_E_VERIFY, "typ 'JWT' is not 'at+jwt'"));
        free(tok);

        /* A custom typ, matched exactly (not case-folded). */
        tok = sign_claims(k, "{\"exp\":1700000600}", "at+jwt");
        o.aud = NULL;
        T_OK(verify_jwt(tok, pub, &o));
        o.typ = "AT+JWT";
        T_ERR(verify_jwt(tok, pub, &o), CF_E_VERIFY);
        o.typ = NULL;
        T_OK(verify_jwt(tok, pub, &o));
        free(tok);

        cf_key_free(k);
        cf_key_free(pub);
    }
}

static void test_jwt_claims(void)
{
    cf_key *k = gen(CF_KEY_ED25519);
    cf_jwt_verify_opts o = {.now = NOW};
    static const struct {
        const char *claims;
        int want;
    } cases[] = {
        {"{\"exp\":1700000001}", 0},
        {"{\"exp\":1700000000}", CF_E_EXPIRED},
        {"{\"exp\":1}", CF_E_EXPIRED},
        {"{}", CF_E_VERIFY},                                  /* exp required */
        {"{\"exp\":\"1700000001\"}", CF_E_PARSE},             /* string */
        {"{\"exp\":1700000001.5}", CF_E_PARSE},               /* not an integer */
        {"{\"exp\":-1}", CF_E_RANGE},
        {"{\"exp\":null}", CF_E_PARSE},
        {"{\"exp\":9999999999999}", CF_E_RANGE},
        {"{\"exp\":1700000001,\"nbf\":1700000000}", 0},
        {"{\"exp\":1700000100,\"nbf\":1700000001}", CF_E_NOT_YET_VALID},
        {"{\"exp\":1700000100,\"iat\":1700000001}", CF_E_NOT_YET_VALID},
        {"{\"exp\":1700000100,\"iat\":1700000000}", 0},
        {"{\"exp\":1700000100,\"aud\":[\"a\",\"b\"]}", CF_E_VERIFY}, /* aud, none expected */
        {"{\"exp\":1700000100,\"aud\":[\"a\",2]}", CF_E_PARSE},
        {"{\"exp\":1700000100,\"aud\":5}", CF_E_PARSE},
    };
    for (size_t i = 0; i < CF_ARRAY_LEN(cases); i++) {
        char *tok = sign_claims(k, cases[i].claims, NULL);
        int rc = verify_jwt(tok, k, &o);
        T_ASSERT_MSG(rc == cases[i].want, "claims %s: got %d want %d (%s)", cases[i].claims, rc,
                     cases[i].want, cf_err_detail(rc));
        free(tok);
    }
    /* aud arrays and exact matching. */
    char *tok = sign_claims(k, "{\"exp\":1700000100,\"aud\":[\"a\",\"kms\"]}", NULL);
    o.aud = "kms";
    T_OK(verify_jwt(tok, k, &o));
    o.aud = "km";
    T_ERR(verify_jwt(tok, k, &o), CF_E_VERIFY);
    T_ASSERT(detail_has(CF_E_VERIFY, "aud does not include 'km'"));
    o.aud = NULL;
    free(tok);
    /* Expected iss missing from the token. */
    tok = sign_claims(k, "{\"exp\":1700000100}", NULL);
    o.iss = "iam";
    T_ERR(verify_jwt(tok, k, &o), CF_E_VERIFY);
    o.iss = NULL;
    /* A verification time of 0 means now: this token expired in 2023. */
    o.now = 0;
    T_ERR(verify_jwt(tok, k, &o), CF_E_EXPIRED);
    free(tok);
    /* Payloads that are not a claims object. */
    const char *payloads[] = {"[]", "\"x\"", "{\"a\":1,\"a\":2}", "not json", ""};
    o.now = NOW;
    for (size_t i = 0; i < CF_ARRAY_LEN(payloads); i++) {
        tok = forge("{\"alg\":\"EdDSA\"}", payloads[i], k, 0);
        T_ASSERT_MSG(verify_jwt(tok, k, &o) == CF_E_PARSE, "payload %s", payloads[i]);
        T_OK(verify_jws(tok, k)); /* the JWS itself is fine */
        free(tok);
    }
    cf_key_free(k);
}

/* The header alg must be the key's: algorithm confusion and "none". */
static void test_alg_confusion(void)
{
    cf_key *p256 = gen(CF_KEY_P256), *p384 = gen(CF_KEY_P384), *ed = gen(CF_KEY_ED25519);
    cf_key *x = gen(CF_KEY_X25519);
    const char *claims = "{\"exp\":1700000100}";
    cf_jwt_verify_opts o = {.now = NOW};
    char *tok;

    /* Control: a correctly signed ES256 token verifies. */
    tok = forge("{\"alg\":\"ES256\"}", claims, p256, 0);
    T_OK(verify_jwt(tok, p256, &o));
    T_ERR(verify_jwt(tok, x, &o), CF_E_UNSUPPORTED); /* X25519 cannot verify */
    free(tok);

    /* HS256 with the public key as HMAC secret (the classic confusion attack). */
    {
        uint8_t pub[CF_KEY_MAX_PUB_LEN], mac[32];
        size_t n = 0;
        cf_buf t;
        size_t tl;
        T_OK(cf_key_export_public(p256, pub, sizeof(pub), &n));
        cf_buf_init(&t, 4096);
        put_b64(&t, "{\"alg\":\"HS256\"}", 15);
        T_OK(cf_buf_put_u8(&t, '.'));
        put_b64(&t, claims, strlen(claims));
        T_OK(cf_hmac(CF_SHA256, pub, n, t.data, t.len, mac));
        T_OK(cf_buf_put_u8(&t, '.'));
        put_b64(&t, mac, sizeof(mac));
        T_OK(cf_buf_nul_terminate(&t));
        tok = (char *)cf_buf_detach(&t, &tl);
        T_ERR(verify_jwt(tok, p256, &o), CF_E_UNSUPPORTED);
        T_ASSERT(detail_has(CF_E_UNSUPPORTED, "alg 'HS256' is not accepted"));
        free(tok);
    }
    /* ES384 header on a P-256 key (signed with a P-384 key, so only the key choice differs). */
    tok = forge("{\"alg\":\"ES384\"}", claims, p384, 0);
    T_OK(verify_jwt(tok, p384, &o));
    T_ERR(verify_jwt(tok, p256, &o), CF_E_UNSUPPORTED);
    T_ASSERT(detail_has(CF_E_UNSUPPORTED, "alg ES384 does not match P-256 key"));
    free(tok);
    /* EdDSA header on EC keys. */
    tok = forge("{\"alg\":\"EdDSA\"}", claims, ed, 0);
    T_OK(verify_jwt(tok, ed, &o));
    T_ERR(verify_jwt(tok, p256, &o), CF_E_UNSUPPORTED);
    T_ASSERT(detail_has(CF_E_UNSUPPORTED, "alg EdDSA does not match P-256 key"));
    T_ERR(verify_jwt(tok, p384, &o), CF_E_UNSUPPORTED);
    free(tok);
    /* ES256 header on an Ed25519 key. */
    tok = forge("{\"alg\":\"ES256\"}", claims, p256, 0);
    T_ERR(verify_jwt(tok, ed, &o), CF_E_UNSUPPORTED);
    T_ASSERT(detail_has(CF_E_UNSUPPORTED, "alg ES256 does not match Ed25519 key"));
    free(tok);
    /* alg none, with an empty or a zero signature; any case. */
    const char *nones[] = {"{\"alg\":\"none\"}", "{\"alg\":\"None\"}", "{\"alg\":\"NONE\"}"};
    for (size_t i = 0; i < CF_ARRAY_LEN(nones); i++) {
        tok = forge(nones[i], claims, NULL, 0);
        T_ERR(verify_jwt(tok, p256, &o), CF_E_UNSUPPORTED);
        T_ASSERT(detail_has(CF_E_UNSUPPORTED, "alg none is not accepted"));
        free(tok);
        tok = forge(nones[i], claims, NULL, 64);
        T_ERR(verify_jwt(tok, ed, &o), CF_E_UNSUPPORTED);
        free(tok);
    }
    /* Other spellings and types of alg. */
    const char *algs[] = {"{\"alg\":\"es256\"}", "{\"alg\":\"RS256\"}", "{\"alg\":\"Ed25519\"}",
                          "{\"alg\":\"\"}"};
    for (size_t i = 0; i < CF_ARRAY_LEN(algs); i++) {
        tok = forge(algs[i], claims, p256, 0);
        T_ERR(verify_jwt(tok, p256, &o), CF_E_UNSUPPORTED);
        free(tok);
    }
    tok = forge("{\"typ\":\"JWT\"}", claims, p256, 0); /* no alg */
    T_ERR(verify_jwt(tok, p256, &o), CF_E_PARSE);
    free(tok);
    tok = forge("{\"alg\":256}", claims, p256, 0);
    T_ERR(verify_jwt(tok, p256, &o), CF_E_PARSE);
    free(tok);

    cf_key_free(p256);
    cf_key_free(p384);
    cf_key_free(ed);
    cf_key_free(x);
}

static void test_jws_structure(void)
{
    cf_key *k = gen(CF_KEY_P256), *ed = gen(CF_KEY_ED25519);
    const char *claims = "{\"exp\":1700000100}";
    cf_jwt_verify_opts o = {.now = NOW};
    char *good = forge("{\"alg\":\"ES256\"}", claims, k, 0), *tok;
    size_t gl = strlen(good);
    char buf[1024];

    T_OK(verify_jwt(good, k, &o));
    /* Segment counts. */
    T_OK(cf_fmt(buf, sizeof(buf), "%s.%s", good, "AAAA"));
    T_ERR(verify_jws(buf, k), CF_E_PARSE);
    T_ASSERT(detail_has(CF_E_PARSE, "4 segments"));
    T_OK(cf_fmt(buf, sizeof(buf), "%s", good));
    *strrchr(buf, '.') = '\0';
    T_ERR(verify_jws(buf, k), CF_E_PARSE);
    T_ASSERT(detail_has(CF_E_PARSE, "2 segments"));
    T_ERR(verify_jws("abc", k), CF_E_PARSE);
    T_ERR(verify_jws("", k), CF_E_PARSE);
    T_ERR(verify_jws("..", k), CF_E_PARSE);
    T_ERR(verify_jws("....", k), CF_E_PARSE);
    /* Embedded NUL. */
    T_ERR(cf_jws_verify(good, gl + 1, k, NULL, NULL, NULL), CF_E_PARSE);
    /* Bad base64url in each segment: padding, '+', whitespace. */
    const char *dot1 = strchr(good, '.');
    size_t hl = (size_t)(dot1 - good);
    T_OK(cf_fmt(buf, sizeof(buf), "%.*s=%s", (int)hl, good, dot1));
    T_ERR(verify_jws(buf, k), CF_E_PARSE);
    T_OK(cf_fmt(buf, sizeof(buf), "%s", good));
    buf[hl + 2] = '+';
    T_ERR(verify_jws(buf, k), CF_E_PARSE);
    T_OK(cf_fmt(buf, sizeof(buf), "%s", good));
    buf[gl - 2] = '/';
    T_ERR(verify_jws(buf, k), CF_E_PARSE);
    T_OK(cf_fmt(buf, sizeof(buf), " %s", good));
    T_ERR(verify_jws(buf, k), CF_E_PARSE);
    /* Header not a JSON object, invalid JSON, duplicate keys. */
    const char *hdrs[] = {"[\"ES256\"]", "\"ES256\"", "123", "{\"alg\":\"ES256\"", "",
                          "{\"alg\":\"ES256\",\"alg\":\"ES256\"}",
                          "{\"alg\":\"ES256\",\"kid\":\"a\",\"kid\":\"b\"}"};
    for (size_t i = 0; i < CF_ARRAY_LEN(hdrs); i++) {
        tok = forge(hdrs[i], claims, k, 0);
        T_ASSERT_MSG(verify_jws(tok, k) == CF_E_PARSE, "header %s", hdrs[i]);
        free(tok);
    }
    tok = forge("{\"alg\":\"ES256\",\"alg\":\"ES256\"}", claims, k, 0);
    T_ERR(verify_jws(tok, k), CF_E_PARSE);
    T_ASSERT(detail_has(CF_E_PARSE, "duplicate"));
    free(tok);
    /* crit, b64. */
    tok = forge("{\"alg\":\"ES256\",\"crit\":[\"exp\"],\"exp\":1}", claims, k, 0);
    T_ERR(verify_jws(tok, k), CF_E_UNSUPPORTED);
    T_ASSERT(detail_has(CF_E_UNSUPPORTED, "unknown critical header parameter 'exp'"));
    free(tok);
    tok = forge("{\"alg\":\"ES256\",\"crit\":[]}", claims, k, 0);
    T_ERR(verify_jws(tok, k), CF_E_UNSUPPORTED);
    free(tok);
    tok = forge("{\"alg\":\"ES256\",\"b64\":false,\"crit\":[\"b64\"]}", claims, k, 0);
    T_ERR(verify_jws(tok, k), CF_E_UNSUPPORTED);
    free(tok);
    tok = forge("{\"alg\":\"ES256\",\"b64\":false}", claims, k, 0);
    T_ERR(verify_jws(tok, k), CF_E_UNSUPPORTED);
    T_ASSERT(detail_has(CF_E_UNSUPPORTED, "b64 false"));
    free(tok);
    tok = forge("{\"alg\":\"ES256\",\"b64\":true}", claims, k, 0);
    T_OK(verify_jws(tok, k));
    free(tok);
    /* kid / typ of the wrong type. */
    tok = forge("{\"alg\":\"ES256\",\"kid\":1}", claims, k, 0);
    T_ERR(verify_jws(tok, k), CF_E_PARSE);
    free(tok);
    tok = forge("{\"alg\":\"ES256\",\"typ\":[]}", claims, k, 0);
    T_ERR(verify_jws(tok, k), CF_E_PARSE);
    free(tok);
    /* Header-embedded keys are never used: a jwk member changes nothing. */
    tok = forge("{\"alg\":\"EdDSA\",\"jwk\":{\"kty\":\"OKP\"}}", claims, ed, 0);
    T_ERR(verify_jws(tok, k), CF_E_UNSUPPORTED);
    T_OK(verify_jws(tok, ed));
    free(tok);

    /* Signature of the wrong length: zero-filled 63, 65, 0 bytes; a DER signature. */
    size_t lens[] = {63, 65, 0, 32, 128};
    for (size_t i = 0; i < CF_ARRAY_LEN(lens); i++) {
        tok = forge("{\"alg\":\"ES256\"}", claims, NULL, lens[i]);
        T_ASSERT_MSG(verify_jws(tok, k) == CF_E_SIGNATURE, "sig len %zu", lens[i]);
        free(tok);
    }
    tok = forge("{\"alg\":\"ES256\"}", claims, NULL, 64); /* right length, r = s = 0 */
    T_ERR(verify_jws(tok, k), CF_E_SIGNATURE);
    free(tok);
    {
        cf_buf t, der;
        size_t tl;
        cf_buf_init(&t, 4096);
        cf_buf_init(&der, 256);
        put_b64(&t, "{\"alg\":\"ES256\"}", 15);
        T_OK(cf_buf_put_u8(&t, '.'));
        put_b64(&t, claims, strlen(claims));
        T_OK(cf_key_sign(k, CF_SIG_DER, t.data, t.len, &der));
        T_OK(cf_buf_put_u8(&t, '.'));
        put_b64(&t, der.data, der.len);
        T_OK(cf_buf_nul_terminate(&t));
        tok = (char *)cf_buf_detach(&t, &tl);
        T_ERR(verify_jws(tok, k), CF_E_SIGNATURE);
        T_ASSERT(detail_has(CF_E_SIGNATURE, "ES256 needs 64"));
        free(tok);
        cf_buf_free(&der);
    }

    /* Size bounds: whole token, header. */
    char *big = malloc(CF_JWT_MAX_BYTES + 2);
    T_ASSERT(big != NULL);
    memset(big, 'A', CF_JWT_MAX_BYTES + 1);
    big[10] = '.';
    big[20] = '.';
    big[CF_JWT_MAX_BYTES + 1] = 0;
    T_ERR(verify_jws(big, k), CF_E_TOO_LARGE);
    big[CF_JWT_MAX_BYTES] = 0; /* at the limit: not too large, just a bad token */
    T_ERR(verify_jws(big, k), CF_E_PARSE);
    free(big);
    big = malloc(CF_JWT_MAX_HEADER_BYTES + 64);
    T_ASSERT(big != NULL);
    memset(big, ' ', CF_JWT_MAX_HEADER_BYTES + 63);
    memcpy(big, "{\"alg\":\"ES256\"", 14);
    big[CF_JWT_MAX_HEADER_BYTES + 62] = '}';
    big[CF_JWT_MAX_HEADER_BYTES + 63] = 0;
    tok = forge(big, claims, k, 0);
    T_ERR(verify_jws(tok, k), CF_E_TOO_LARGE);
    free(tok);
    free(big);

    /* Verification writes nothing on failure. */
    {
        json_t *hdr = NULL;
        cf_buf out;
        cf_buf_init(&out, 1024);
        T_ERR(cf_jws_verify(good, gl, ed, NULL, &hdr, &out), CF_E_UNSUPPORTED);
        T_ASSERT(hdr == NULL);
        T_EQ(out.len, 0);
        cf_buf_free(&out);
    }
    free(good);
    cf_key_free(k);
    cf_key_free(ed);
}

static void test_sign_errors(void)
{
    cf_key *k = gen(CF_KEY_P256), *pub = NULL, *x = gen(CF_KEY_X25519);
    json_t *claims = json_pack("{s:i}", "exp", 1700000100), *arr = json_array();
    json_t *bad_hdr = json_pack("{s:s}", "alg", "none"), *crit = json_pack("{s:[s]}", "crit", "x");
    char *tok = NULL;
    uint8_t *big = calloc(1, CF_JWT_MAX_BYTES);

    T_ASSERT(big != NULL);
    T_OK(cf_key_public_only(k, &pub));
    T_ERR(cf_jwt_sign(pub, claims, NULL, NULL, &tok), CF_E_INVAL);
    T_ERR(cf_jwt_sign(x, claims, NULL, NULL, &tok), CF_E_UNSUPPORTED);
    T_ERR(cf_jwt_sign(k, arr, NULL, NULL, &tok), CF_E_INVAL);
    T_ERR(cf_jwt_sign(k, claims, "", NULL, &tok), CF_E_INVAL);
    T_ERR(cf_jwt_sign(k, claims, NULL, "", &tok), CF_E_INVAL);
    T_ERR(cf_jws_sign(k, bad_hdr, (const uint8_t *)"x", 1, &tok), CF_E_INVAL);
    T_ERR(cf_jws_sign(k, crit, (const uint8_t *)"x", 1, &tok), CF_E_INVAL);
    T_ERR(cf_jws_sign(k, arr, (const uint8_t *)"x", 1, &tok), CF_E_INVAL);
    /* A payload whose token would exceed CF_JWT_MAX_BYTES. */
    T_ERR(cf_jws_sign(k, NULL, big, CF_JWT_MAX_BYTES * 3 / 4, &tok), CF_E_TOO_LARGE);
    T_ASSERT(tok == NULL);
    /* The largest payload that fits still verifies. */
    T_OK(cf_jws_sign(k, NULL, big, CF_JWT_MAX_BYTES * 3 / 4 - 128, &tok));
    T_ASSERT(strlen(tok) <= CF_JWT_MAX_BYTES);
    T_OK(verify_jws(tok, pub));
    free(tok);
    tok = NULL;
    /* Custom kid and typ land in the header. */
    {
        json_t *hdr = NULL;
        T_OK(cf_jwt_sign(k, claims, "application/eat+jwt", "attest-1", &tok));
        T_OK(cf_jws_verify(tok, strlen(tok), pub, NULL, &hdr, NULL));
        T_STREQ(json_string_value(json_object_get(hdr, "kid")), "attest-1");
        T_STREQ(json_string_value(json_object_get(hdr, "typ")), "application/eat+jwt");
        json_decref(hdr);
        free(tok);
    }
    free(big);
    json_decref(claims);
    json_decref(arr);
    json_decref(bad_hdr);
    json_decref(crit);
    cf_key_free(k);
    cf_key_free(pub);
    cf_key_free(x);
}

int main(void)
{
    T_RUN(test_alg_names);
    T_RUN(test_jws_roundtrip);
    T_RUN(test_rfc8037_kat);
    T_RUN(test_jwk_roundtrip);
    T_RUN(test_jwk_strict);
    T_RUN(test_jwks);
    T_RUN(test_ear_token);
    T_RUN(test_jwt_roundtrip);
    T_RUN(test_jwt_claims);
    T_RUN(test_alg_confusion);
    T_RUN(test_jws_structure);
    T_RUN(test_sign_errors);
    return t_done();
}
