#include "crypto/jose.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "base/err.h"
#include "base/json.h"
#include "base/limits.h"
#include "base/parse.h"

/* ---- algorithms ---- */

const char *cf_jws_alg_name(cf_jws_alg alg)
{
    switch (alg) {
    case CF_JWS_ES256: return "ES256";
    case CF_JWS_ES384: return "ES384";
    case CF_JWS_EDDSA: return "EdDSA";
    }
    return "?";
}

int cf_jws_alg_for_key(const cf_key *k, cf_jws_alg *ret)
{
    switch (cf_key_get_type(k)) {
    case CF_KEY_P256: *ret = CF_JWS_ES256; return 0;
    case CF_KEY_P384: *ret = CF_JWS_ES384; return 0;
    case CF_KEY_ED25519: *ret = CF_JWS_EDDSA; return 0;
    case CF_KEY_X25519: break;
    }
    return cf_err_set(CF_E_UNSUPPORTED, "%s keys cannot be used with JWS",
                      cf_key_type_name(cf_key_get_type(k)));
}

/* RFC 7515 §4.1.1: "alg" values are case-sensitive. */
static bool alg_from_name(const char *s, cf_jws_alg *ret)
{
    static const cf_jws_alg all[] = {CF_JWS_ES256, CF_JWS_ES384, CF_JWS_EDDSA};
    for (size_t i = 0; i < CF_ARRAY_LEN(all); i++) {
        if (strcmp(s, cf_jws_alg_name(all[i])) == 0) {
            *ret = all[i];
            return true;
        }
    }
    return false;
}

static bool is_ec(cf_key_type t) { return t == CF_KEY_P256 || t == CF_KEY_P384; }

/* Keeps the detail of the last failure while adding context in front of it. */
static int err_prefix(int rc, const char *prefix)
{
    char detail[192];

    if (cf_fmt(detail, sizeof(detail), "%s", cf_err_detail(rc)) != 0)
        detail[0] = '\0';
    return cf_err_set(rc, "%s: %s", prefix, detail);
}

/* ---- JWK ---- */

/* Members that only a private (or symmetric) JWK has: RFC 7518 §6.2.2, §6.3.2,
 * §6.4.1; RFC 8037 §2. */
static const char *const private_members[] = {"d", "p", "q", "dp", "dq", "qi", "oth", "k"};

/* A base64url member that must decode to exactly n bytes (RFC 7518 §6.2.1.2:
 * EC coordinates are the full field size; RFC 8037 §2 for OKP "x"). */
static int get_fixed_b64(const json_t *jwk, const char *name, size_t n, uint8_t *out)
{
    const char *s = NULL;
    size_t enc = cf_b64url_encoded_len(n);
    cf_buf b;
    int rc;

    CF_GUARD(cf_json_get_str(jwk, name, true, CF_JWK_MAX_BYTES, &s));
    if (strlen(s) != enc)
        return cf_err_set(CF_E_PARSE, "JWK member '%s' must be %zu base64url characters", name,
                          enc);
    cf_buf_init(&b, n);
    rc = cf_b64url_decode(s, enc, &b);
    if (rc == 0 && b.len == n)
        memcpy(out, b.data, n);
    else
        rc = cf_err_set(CF_E_PARSE, "JWK member '%s' is not valid base64url", name);
    cf_buf_free(&b);
    return rc;
}

static const char *jwk_alg_of(cf_key_type t)
{
    switch (t) {
    case CF_KEY_P256: return "ES256";
    case CF_KEY_P384: return "ES384";
    case CF_KEY_ED25519: return "EdDSA";
    case CF_KEY_X25519: break;
    }
    return NULL;
}

int cf_jwk_from_json(const json_t *jwk, cf_key **ret_key, char **ret_kid)
{
    const char *kty = NULL, *crv = NULL, *alg = NULL, *use = NULL, *kid = NULL;
    json_t *ops = NULL;
    cf_key_type type;
    uint8_t pub[CF_KEY_MAX_PUB_LEN];
    size_t c = 0;
    cf_key *k = NULL;
    char *kidcopy = NULL;

    if (!json_is_object(jwk))
        return cf_err_set(CF_E_PARSE, "JWK must be a JSON object");
    for (size_t i = 0; i < CF_ARRAY_LEN(private_members); i++)
        if (json_object_get(jwk, private_members[i]) != NULL)
            return cf_err_set(CF_E_UNSUPPORTED,
                              "JWK has private member '%s' where a public key is expected",
                              private_members[i]);
    CF_GUARD(cf_json_get_str(jwk, "kty", true, CF_JOSE_MAX_NAME_LEN, &kty));
    if (strcmp(kty, "EC") == 0) {
        /* RFC 7518 §6.2.1 */
        CF_GUARD(cf_json_get_str(jwk, "crv", true, CF_JOSE_MAX_NAME_LEN, &crv));
        if (strcmp(crv, "P-256") == 0)
            type = CF_KEY_P256;
        else if (strcmp(crv, "P-384") == 0)
            type = CF_KEY_P384;
        else
            return cf_err_set(CF_E_UNSUPPORTED, "unknown EC crv '%s'", crv);
        c = cf_key_type_priv_len(type);
        pub[0] = 0x04;
        CF_GUARD(get_fixed_b64(jwk, "x", c, pub + 1));
        CF_GUARD(get_fixed_b64(jwk, "y", c, pub + 1 + c));
    } else if (strcmp(kty, "OKP") == 0) {
        /* RFC 8037 §2 */
        CF_GUARD(cf_json_get_str(jwk, "crv", true, CF_JOSE_MAX_NAME_LEN, &crv));
        if (strcmp(crv, "Ed25519") == 0)
            type = CF_KEY_ED25519;
        else if (strcmp(crv, "X25519") == 0)
            type = CF_KEY_X25519;
        else
            return cf_err_set(CF_E_UNSUPPORTED, "unknown OKP crv '%s'", crv);
        if (json_object_get(jwk, "y") != NULL)
            return cf_err_set(CF_E_PARSE, "OKP JWK must not have member 'y'");
        CF_GUARD(get_fixed_b64(jwk, "x", 32, pub));
    } else {
        return cf_err_set(CF_E_UNSUPPORTED, "unknown kty '%s'", kty);
    }

    /* RFC 7517 §4.4: a JWK "alg" restricts the key to that algorithm. */
    CF_GUARD(cf_json_get_str(jwk, "alg", false, CF_JOSE_MAX_NAME_LEN, &alg));
    if (alg != NULL) {
        const char *want = jwk_alg_of(type);
        bool ok = want ? strcmp(alg, want) == 0 : strncmp(alg, "ECDH-ES", 7) == 0;
        if (!ok)
            return cf_err_set(CF_E_UNSUPPORTED, "JWK alg '%s' does not fit a %s key", alg,
                              cf_key_type_name(type));
    }
    /* RFC 7517 §4.2 */
    CF_GUARD(cf_json_get_str(jwk, "use", false, CF_JOSE_MAX_NAME_LEN, &use));
    if (use != NULL && strcmp(use, type == CF_KEY_X25519 ? "enc" : "sig") != 0)
        return cf_err_set(CF_E_UNSUPPORTED, "JWK use '%s' does not fit a %s key", use,
                          cf_key_type_name(type));
    CF_GUARD(cf_json_get_array(jwk, "key_ops", false, CF_JWK_MAX_KEY_OPS, &ops));
    CF_GUARD(cf_json_get_str(jwk, "kid", false, CF_JWK_KID_MAX_LEN, &kid));
    if (kid != NULL && kid[0] == '\0')
        return cf_err_set(CF_E_PARSE, "JWK kid must not be empty");

    CF_GUARD(cf_key_from_public(type, pub, cf_key_type_pub_len(type), &k));
    if (ret_kid != NULL && kid != NULL) {
        kidcopy = strdup(kid);
        if (kidcopy == NULL) {
            cf_key_free(k);
            return CF_E_NOMEM;
        }
    }
    *ret_key = k;
    if (ret_kid != NULL)
        *ret_kid = kidcopy;
    return 0;
}

int cf_jwk_parse(const void *data, size_t len, cf_key **ret_key, char **ret_kid)
{
    json_t *v = NULL;
    int rc;

    CF_GUARD(cf_json_parse_object(data, len, CF_JWK_MAX_BYTES, &v));
    rc = cf_jwk_from_json(v, ret_key, ret_kid);
    json_decref(v);
    return rc;
}

/* Sets o[name] = base64url(p[0..n)); -1 on failure. */
static int set_b64(json_t *o, const char *name, const uint8_t *p, size_t n)
{
    char *s = cf_b64url_encode_alloc(p, n);
    int r;

    if (s == NULL)
        return -1;
    r = json_object_set_new(o, name, json_string(s));
    free(s);
    return r;
}

int cf_jwk_to_json(const cf_key *k, const char *kid, json_t **ret)
{
    cf_key_type t = cf_key_get_type(k);
    uint8_t pub[CF_KEY_MAX_PUB_LEN];
    size_t n = 0, c = cf_key_type_priv_len(t);
    json_t *o;
    int bad = 0;

    if (kid != NULL && (kid[0] == '\0' || strlen(kid) > CF_JWK_KID_MAX_LEN))
        return cf_err_set(CF_E_INVAL, "kid must be 1 to %d bytes", CF_JWK_KID_MAX_LEN);
    CF_GUARD(cf_key_export_public(k, pub, sizeof(pub), &n));
    o = json_object();
    CF_ENSURE(o != NULL, CF_E_NOMEM);
    bad |= json_object_set_new(o, "kty", json_string(is_ec(t) ? "EC" : "OKP"));
    bad |= json_object_set_new(o, "crv", json_string(cf_key_type_name(t)));
    if (is_ec(t)) {
        bad |= set_b64(o, "x", pub + 1, c);
        bad |= set_b64(o, "y", pub + 1 + c, c);
    } else {
        bad |= set_b64(o, "x", pub, n);
    }
    if (jwk_alg_of(t) != NULL)
        bad |= json_object_set_new(o, "alg", json_string(jwk_alg_of(t)));
    bad |= json_object_set_new(o, "use", json_string(t == CF_KEY_X25519 ? "enc" : "sig"));
    if (kid != NULL)
        bad |= json_object_set_new(o, "kid", json_string(kid));
    if (bad) {
        json_decref(o);
        return CF_E_NOMEM;
    }
    *ret = o;
    return 0;
}

/* ---- JWK Set ---- */

struct cf_jwks {
    size_t n;
    struct {
        char *kid;
        cf_key *key;
    } e[CF_JWKS_MAX_KEYS];
};

int cf_jwks_new(cf_jwks **ret)
{
    cf_jwks *s = calloc(1, sizeof(*s));

    CF_ENSURE(s != NULL, CF_E_NOMEM);
    *ret = s;
    return 0;
}

void cf_jwks_free(cf_jwks *set)
{
    if (set == NULL)
        return;
    for (size_t i = 0; i < set->n; i++) {
        free(set->e[i].kid);
        cf_key_free(set->e[i].key);
    }
    free(set);
}

size_t cf_jwks_count(const cf_jwks *set) { return set->n; }

const cf_key *cf_jwks_key_at(const cf_jwks *set, size_t i, const char **ret_kid)
{
    if (i >= set->n)
        return NULL;
    if (ret_kid != NULL)
        *ret_kid = set->e[i].kid;
    return set->e[i].key;
}

int cf_jwks_find(const cf_jwks *set, const char *kid, const cf_key **ret)
{
    CF_ENSURE(kid != NULL, CF_E_INVAL);
    for (size_t i = 0; i < set->n; i++) {
        if (strcmp(set->e[i].kid, kid) == 0) {
            *ret = set->e[i].key;
            return 0;
        }
    }
    return cf_err_set(CF_E_NOT_FOUND, "unknown kid '%.64s'", kid);
}

int cf_jwks_add(cf_jwks *set, const char *kid, const cf_key *k)
{
    char tp[CF_KEY_THUMBPRINT_LEN + 1];
    const cf_key *dup = NULL;
    cf_key *pub = NULL;
    char *kc = NULL;

    if (kid == NULL) {
        CF_GUARD(cf_key_thumbprint(k, tp));
        kid = tp;
    }
    if (kid[0] == '\0' || strlen(kid) > CF_JWK_KID_MAX_LEN)
        return cf_err_set(CF_E_INVAL, "kid must be 1 to %d bytes", CF_JWK_KID_MAX_LEN);
    if (set->n >= CF_JWKS_MAX_KEYS)
        return cf_err_set(CF_E_TOO_LARGE, "a JWK Set holds at most %d keys", CF_JWKS_MAX_KEYS);
    if (cf_jwks_find(set, kid, &dup) == 0)
        return cf_err_set(CF_E_EXISTS, "duplicate kid '%.64s'", kid);
    cf_err_clear();
    CF_GUARD(cf_key_public_only(k, &pub));
    kc = strdup(kid);
    if (kc == NULL) {
        cf_key_free(pub);
        return CF_E_NOMEM;
    }
    set->e[set->n].kid = kc;
    set->e[set->n].key = pub;
    set->n++;
    return 0;
}

int cf_jwks_from_json(const json_t *v, cf_jwks **ret)
{
    json_t *keys = NULL;
    cf_jwks *set = NULL;
    int rc;

    if (!json_is_object(v))
        return cf_err_set(CF_E_PARSE, "JWK Set must be a JSON object");
    CF_GUARD(cf_json_get_array(v, "keys", true, CF_JWKS_MAX_KEYS, &keys));
    CF_GUARD(cf_jwks_new(&set));
    for (size_t i = 0; i < json_array_size(keys); i++) {
        cf_key *k = NULL;
        char *kid = NULL;
        char where[48];

        rc = cf_jwk_from_json(json_array_get(keys, i), &k, &kid);
        if (rc < 0) {
            if (cf_fmt(where, sizeof(where), "JWK Set key %zu", i) == 0)
                rc = err_prefix(rc, where);
            goto out;
        }
        if (kid == NULL)
            rc = cf_err_set(CF_E_PARSE, "JWK Set key %zu has no kid", i);
        else
            rc = cf_jwks_add(set, kid, k);
        if (rc == CF_E_EXISTS)
            rc = cf_err_set(CF_E_PARSE, "JWK Set has duplicate kid '%.64s'", kid);
        free(kid);
        cf_key_free(k);
        if (rc < 0)
            goto out;
    }
    *ret = set;
    set = NULL;
    rc = 0;
out:
    cf_jwks_free(set);
    return rc;
}

int cf_jwks_parse(const void *data, size_t len, cf_jwks **ret)
{
    json_t *v = NULL;
    int rc;

    CF_GUARD(cf_json_parse_object(data, len, CF_JWKS_MAX_BYTES, &v));
    rc = cf_jwks_from_json(v, ret);
    json_decref(v);
    return rc;
}

int cf_jwks_to_json(const cf_jwks *set, json_t **ret)
{
    json_t *o = json_object(), *arr = json_array();
    int rc = CF_E_NOMEM;

    if (o == NULL || arr == NULL)
        goto out;
    for (size_t i = 0; i < set->n; i++) {
        json_t *jwk = NULL;
        CF_GUARD_OUT(cf_jwk_to_json(set->e[i].key, set->e[i].kid, &jwk));
        if (json_array_append_new(arr, jwk) != 0) {
            rc = CF_E_NOMEM;
            goto out;
        }
    }
    if (json_object_set(o, "keys", arr) != 0) {
        rc = CF_E_NOMEM;
        goto out;
    }
    *ret = o;
    o = NULL;
    rc = 0;
out:
    json_decref(arr);
    json_decref(o);
    return rc;
}

int cf_jwks_serialise(const cf_jwks *set, char **ret)
{
    json_t *o = NULL;
    char *s;

    CF_GUARD(cf_jwks_to_json(set, &o));
    s = cf_json_dump(o);
    json_decref(o);
    CF_ENSURE(s != NULL, CF_E_NOMEM);
    *ret = s;
    return 0;
}

/* ---- JWS compact serialisation ---- */

struct jws_parts {
    const uint8_t *h, *p, *s; /* the three base64url segments (borrowed) */
    size_t hlen, plen, slen;
};

/* Reads up to the next '.' (or the end) without consuming the dot. */
static int take_segment(cf_buf *b, const uint8_t **ret, size_t *ret_len)
{
    cf_buf peek = *b; /* a copy of a view: reading it leaves b untouched */
    uint8_t c;
    size_t n = 0;

    while (cf_buf_get_u8(&peek, &c) == 0 && c != '.')
        n++;
    CF_GUARD(cf_buf_get_ptr(b, n, ret));
    *ret_len = n;
    return 0;
}

/* RFC 7515 §7.1: BASE64URL(header) '.' BASE64URL(payload) '.' BASE64URL(signature). */
static int jws_split(const char *token, size_t len, struct jws_parts *ret)
{
    struct jws_parts pt = {NULL, NULL, NULL, 0, 0, 0};
    size_t dots = 0;
    uint8_t dot;
    cf_buf b;

    for (size_t i = 0; i < len; i++) {
        if (token[i] == '\0')
            return cf_err_set(CF_E_PARSE, "token contains a NUL byte");
        dots += token[i] == '.';
    }
    if (dots != 2)
        return cf_err_set(CF_E_PARSE, "token has %zu segments, a compact JWS has 3", dots + 1);
    cf_buf_view(&b, (const uint8_t *)token, len);
    CF_GUARD(take_segment(&b, &pt.h, &pt.hlen));
    CF_GUARD(cf_buf_get_u8(&b, &dot));
    CF_GUARD(take_segment(&b, &pt.p, &pt.plen));
    CF_GUARD(cf_buf_get_u8(&b, &dot));
    CF_GUARD(take_segment(&b, &pt.s, &pt.slen));
    CF_GUARD(cf_buf_expect_end(&b));
    *ret = pt;
    return 0;
}

/* Header checks that do not depend on the key: alg is one we implement,
 * crit absent, b64 absent or true, kid / typ well-typed. */
static int check_header(const json_t *hdr, cf_jws_alg *ret_alg, const char **ret_kid)
{
    const char *alg = NULL, *kid = NULL, *typ = NULL;
    json_t *crit, *b64;
    cf_jws_alg a;

    CF_GUARD(cf_json_get_str(hdr, "alg", true, CF_JOSE_MAX_NAME_LEN, &alg));
    /* RFC 8725 §3.1 / §2.1: unsecured JWS is never acceptable here. */
    if (strcasecmp(alg, "none") == 0)
        return cf_err_set(CF_E_UNSUPPORTED, "alg none is not accepted");
    if (!alg_from_name(alg, &a))
        return cf_err_set(CF_E_UNSUPPORTED, "alg '%s' is not accepted", alg);
    /* RFC 7515 §4.1.11: we implement no extension, so any "crit" is unknown. */
    crit = json_object_get(hdr, "crit");
    if (crit != NULL) {
        json_t *first = json_is_array(crit) ? json_array_get(crit, 0) : NULL;
        if (json_is_string(first))
            return cf_err_set(CF_E_UNSUPPORTED, "unknown critical header parameter '%.32s'",
                              json_string_value(first));
        return cf_err_set(CF_E_UNSUPPORTED, "header parameter 'crit' is not accepted");
    }
    /* RFC 7797 §3: b64 false means an unencoded payload, which we refuse. */
    b64 = json_object_get(hdr, "b64");
    if (b64 != NULL && !json_is_true(b64))
        return cf_err_set(CF_E_UNSUPPORTED, "b64 false (unencoded payload) is not accepted");
    CF_GUARD(cf_json_get_str(hdr, "kid", false, CF_JWK_KID_MAX_LEN, &kid));
    CF_GUARD(cf_json_get_str(hdr, "typ", false, CF_JWT_MAX_TYP_LEN, &typ));
    *ret_alg = a;
    *ret_kid = kid;
    return 0;
}

static int b64_segment(const uint8_t *seg, size_t n, cf_buf *out, const char *what)
{
    int rc = cf_b64url_decode((const char *)seg, n, out);

    if (rc == CF_E_TOO_LARGE)
        return cf_err_set(rc, "JWS %s is too large", what);
    if (rc < 0)
        return cf_err_set(CF_E_PARSE, "JWS %s is not valid base64url", what);
    return 0;
}

int cf_jws_verify(const char *token, size_t len, const cf_key *key, const cf_jwks *jwks,
                  json_t **ret_header, cf_buf *payload)
{
    struct jws_parts pt = {NULL, NULL, NULL, 0, 0, 0};
    cf_buf hb, pb, sb;
    json_t *hdr = NULL;
    const char *kid = NULL;
    const cf_key *k = key;
    cf_jws_alg alg = CF_JWS_ES256, want = CF_JWS_ES256;
    size_t siglen;
    int rc;

    CF_ENSURE(token != NULL && (key == NULL) != (jwks == NULL), CF_E_INVAL);
    if (len > CF_JWT_MAX_BYTES)
        return cf_err_set(CF_E_TOO_LARGE, "token of %zu bytes exceeds the limit of %u", len,
                          (unsigned)CF_JWT_MAX_BYTES);
    CF_GUARD(jws_split(token, len, &pt));
    if (pt.hlen > cf_b64url_encoded_len(CF_JWT_MAX_HEADER_BYTES))
        return cf_err_set(CF_E_TOO_LARGE, "JWS header exceeds %d bytes", CF_JWT_MAX_HEADER_BYTES);
    cf_buf_init(&hb, CF_JWT_MAX_HEADER_BYTES);
    cf_buf_init(&pb, CF_JWT_MAX_BYTES);
    cf_buf_init(&sb, CF_KEY_MAX_SIG_LEN);

    CF_GUARD_OUT(b64_segment(pt.h, pt.hlen, &hb, "header"));
    rc = cf_json_parse_object(hb.data, hb.len, CF_JWT_MAX_HEADER_BYTES, &hdr);
    if (rc < 0) {
        rc = err_prefix(rc, "JWS header");
        goto out;
    }
    CF_GUARD_OUT(check_header(hdr, &alg, &kid));

    /* The key decides the algorithm (RFC 8725 §3.1); the header must agree. */
    if (jwks != NULL) {
        if (kid == NULL) {
            rc = cf_err_set(CF_E_NOT_FOUND, "token has no kid to select a key");
            goto out;
        }
        CF_GUARD_OUT(cf_jwks_find(jwks, kid, &k));
    }
    CF_GUARD_OUT(cf_jws_alg_for_key(k, &want));
    if (alg != want) {
        rc = cf_err_set(CF_E_UNSUPPORTED, "alg %s does not match %s key", cf_jws_alg_name(alg),
                        cf_key_type_name(cf_key_get_type(k)));
        goto out;
    }

    CF_GUARD_OUT(b64_segment(pt.p, pt.plen, &pb, "payload"));
    siglen = cf_key_type_sig_len(cf_key_get_type(k));
    /* RFC 7518 §3.4: the ECDSA signature is exactly R || S; RFC 8037 §3.1: 64 bytes. */
    if (pt.slen > cf_b64url_encoded_len(CF_KEY_MAX_SIG_LEN)) {
        rc = cf_err_set(CF_E_SIGNATURE, "signature is not %zu bytes as %s needs", siglen,
                        cf_jws_alg_name(alg));
        goto out;
    }
    CF_GUARD_OUT(b64_segment(pt.s, pt.slen, &sb, "signature"));
    if (sb.len != siglen) {
        rc = cf_err_set(CF_E_SIGNATURE, "signature is %zu bytes, %s needs %zu", sb.len,
                        cf_jws_alg_name(alg), siglen);
        goto out;
    }
    /* RFC 7515 §5.2 step 8: the signing input is the token's own first two
     * segments and the dot between them, exactly as received. */
    if (cf_key_verify(k, CF_SIG_RAW, (const uint8_t *)token, pt.hlen + 1 + pt.plen, sb.data,
                      sb.len) != 0) {
        rc = cf_err_set(CF_E_SIGNATURE, "%s signature did not verify", cf_jws_alg_name(alg));
        goto out;
    }
    if (payload != NULL)
        CF_GUARD_OUT(cf_buf_put(payload, pb.data, pb.len));
    if (ret_header != NULL) {
        *ret_header = hdr;
        hdr = NULL;
    }
    rc = 0;
out:
    json_decref(hdr);
    cf_buf_free(&hb);
    cf_buf_free(&pb);
    cf_buf_free(&sb);
    return rc;
}

static int put_b64(cf_buf *b, const uint8_t *p, size_t n)
{
    char *s = cf_b64url_encode_alloc(p, n);
    int rc;

    CF_ENSURE(s != NULL, CF_E_NOMEM);
    rc = cf_buf_put_str(b, s);
    free(s);
    return rc;
}

int cf_jws_sign(const cf_key *k, const json_t *extra_header, const uint8_t *payload, size_t len,
                char **ret_token)
{
    static const char *const reserved[] = {"alg", "crit", "b64"};
    json_t *hdr = NULL;
    char *hjson = NULL;
    cf_buf tok, sig;
    cf_jws_alg alg;
    size_t n = 0;
    int rc;

    CF_ENSURE(payload != NULL || len == 0, CF_E_INVAL);
    CF_GUARD(cf_jws_alg_for_key(k, &alg));
    if (!cf_key_has_private(k))
        return cf_err_set(CF_E_INVAL, "signing needs a private key");
    if (extra_header != NULL) {
        if (!json_is_object(extra_header))
            return cf_err_set(CF_E_INVAL, "extra JWS header must be an object");
        for (size_t i = 0; i < CF_ARRAY_LEN(reserved); i++)
            if (json_object_get(extra_header, reserved[i]) != NULL)
                return cf_err_set(CF_E_INVAL, "header member '%s' is not for the caller to set",
                                  reserved[i]);
    }
    cf_buf_init(&tok, CF_JWT_MAX_BYTES);
    cf_buf_init(&sig, CF_KEY_MAX_SIG_LEN);
    hdr = extra_header != NULL ? json_deep_copy(extra_header) : json_object();
    CF_ENSURE_OUT(hdr != NULL, CF_E_NOMEM);
    CF_ENSURE_OUT(json_object_set_new(hdr, "alg", json_string(cf_jws_alg_name(alg))) == 0,
                  CF_E_NOMEM);
    hjson = cf_json_dump(hdr);
    CF_ENSURE_OUT(hjson != NULL, CF_E_NOMEM);
    if (strlen(hjson) > CF_JWT_MAX_HEADER_BYTES) {
        rc = cf_err_set(CF_E_TOO_LARGE, "JWS header exceeds %d bytes", CF_JWT_MAX_HEADER_BYTES);
        goto out;
    }
    /* Bound before encoding: 4/3 of the payload must fit the token limit. */
    if (len > CF_JWT_MAX_BYTES) {
        rc = cf_err_set(CF_E_TOO_LARGE, "payload exceeds the token limit");
        goto out;
    }
    CF_GUARD_OUT(put_b64(&tok, (const uint8_t *)hjson, strlen(hjson)));
    CF_GUARD_OUT(cf_buf_put_u8(&tok, '.'));
    CF_GUARD_OUT(put_b64(&tok, payload, len));
    CF_GUARD_OUT(cf_key_sign(k, CF_SIG_RAW, tok.data, tok.len, &sig));
    CF_GUARD_OUT(cf_buf_put_u8(&tok, '.'));
    CF_GUARD_OUT(put_b64(&tok, sig.data, sig.len));
    CF_GUARD_OUT(cf_buf_nul_terminate(&tok));
    *ret_token = (char *)cf_buf_detach(&tok, &n);
    rc = 0;
out:
    if (rc == CF_E_TOO_LARGE)
        rc = cf_err_set(rc, "token would exceed %u bytes", (unsigned)CF_JWT_MAX_BYTES);
    free(hjson);
    json_decref(hdr);
    cf_buf_free(&tok);
    cf_buf_free(&sig);
    return rc;
}

/* ---- JWT ---- */

int cf_jwt_sign(const cf_key *k, const json_t *claims, const char *typ, const char *kid,
                char **ret_token)
{
    char tp[CF_KEY_THUMBPRINT_LEN + 1];
    json_t *hdr = NULL;
    char *body = NULL;
    int rc;

    if (!json_is_object(claims))
        return cf_err_set(CF_E_INVAL, "JWT claims must be a JSON object");
    if (typ == NULL)
        typ = "JWT";
    if (typ[0] == '\0' || strlen(typ) > CF_JWT_MAX_TYP_LEN)
        return cf_err_set(CF_E_INVAL, "typ must be 1 to %d bytes", CF_JWT_MAX_TYP_LEN);
    if (kid == NULL) {
        CF_GUARD(cf_key_thumbprint(k, tp));
        kid = tp;
    }
    if (kid[0] == '\0' || strlen(kid) > CF_JWK_KID_MAX_LEN)
        return cf_err_set(CF_E_INVAL, "kid must be 1 to %d bytes", CF_JWK_KID_MAX_LEN);
    hdr = json_pack("{s:s, s:s}", "typ", typ, "kid", kid);
    CF_ENSURE(hdr != NULL, CF_E_NOMEM);
    body = cf_json_dump(claims);
    if (body == NULL) {
        rc = CF_E_NOMEM;
    } else {
        rc = cf_jws_sign(k, hdr, (const uint8_t *)body, strlen(body), ret_token);
        free(body);
    }
    json_decref(hdr);
    return rc;
}

static void fmt_time(int64_t t, char out[32])
{
    struct tm tm;
    time_t tt = (time_t)t;

    if (gmtime_r(&tt, &tm) == NULL || strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        out[0] = '\0';
}

/* RFC 7519 §2 NumericDate; we accept integers only. 1 = present, 0 = absent. */
static int get_date(const json_t *claims, const char *name, int64_t *ret)
{
    json_t *v = json_object_get(claims, name);
    json_int_t i;

    if (v == NULL)
        return 0;
    if (!json_is_integer(v))
        return cf_err_set(CF_E_PARSE, "claim '%s' must be an integer NumericDate", name);
    i = json_integer_value(v);
    if (i < 0 || i > CF_JWT_MAX_TIME)
        return cf_err_set(CF_E_RANGE, "claim '%s' is out of range", name);
    *ret = (int64_t)i;
    return 1;
}

static int check_times(const json_t *claims, int64_t now, int64_t leeway, bool allow_missing_exp)
{
    int64_t exp = 0, nbf = 0, iat = 0;
    char when[32];
    int has;

    /* RFC 7519 §4.1.4: the current time MUST be before exp. */
    CF_GUARD(has = get_date(claims, "exp", &exp));
    if (has == 0 && !allow_missing_exp)
        return cf_err_set(CF_E_VERIFY, "token has no exp");
    if (has == 1 && now - leeway >= exp) {
        fmt_time(exp, when);
        return cf_err_set(CF_E_EXPIRED, "token expired at %s", when);
    }
    /* RFC 7519 §4.1.5: not before nbf. */
    CF_GUARD(has = get_date(claims, "nbf", &nbf));
    if (has == 1 && now + leeway < nbf) {
        fmt_time(nbf, when);
        return cf_err_set(CF_E_NOT_YET_VALID, "token is not valid before %s", when);
    }
    /* RFC 7519 §4.1.6 sets no rule for iat; one from the future means a skewed
     * or forged issuer clock, so it is refused like an early nbf. */
    CF_GUARD(has = get_date(claims, "iat", &iat));
    if (has == 1 && now + leeway < iat) {
        fmt_time(iat, when);
        return cf_err_set(CF_E_NOT_YET_VALID, "token issued in the future (%s)", when);
    }
    return 0;
}

/* RFC 7519 §4.1.3 */
static int check_aud(const json_t *claims, const char *want)
{
    json_t *aud = json_object_get(claims, "aud");

    if (aud == NULL) {
        if (want != NULL)
            return cf_err_set(CF_E_VERIFY, "token has no aud, expected '%.64s'", want);
        return 0;
    }
    if (json_is_string(aud)) {
        if (want != NULL && strcmp(json_string_value(aud), want) == 0)
            return 0;
    } else if (json_is_array(aud) && json_array_size(aud) <= CF_JWT_MAX_AUD) {
        bool found = false;
        for (size_t i = 0; i < json_array_size(aud); i++) {
            json_t *a = json_array_get(aud, i);
            if (!json_is_string(a))
                return cf_err_set(CF_E_PARSE, "claim 'aud' must hold strings");
            if (want != NULL && strcmp(json_string_value(a), want) == 0)
                found = true;
        }
        if (found)
            return 0;
    } else {
        return cf_err_set(CF_E_PARSE, "claim 'aud' must be a string or an array of at most %d",
                          CF_JWT_MAX_AUD);
    }
    if (want == NULL)
        return cf_err_set(CF_E_VERIFY, "token has an audience but none is expected");
    return cf_err_set(CF_E_VERIFY, "aud does not include '%.64s'", want);
}

int cf_jwt_verify(const char *token, size_t len, const cf_key *key, const cf_jwks *jwks,
                  const cf_jwt_verify_opts *opts, json_t **ret_claims)
{
    static const cf_jwt_verify_opts defaults;
    json_t *hdr = NULL, *claims = NULL;
    const char *typ = NULL, *iss = NULL;
    int64_t now;
    cf_buf pb;
    int rc;

    if (opts == NULL)
        opts = &defaults;
    if (opts->leeway > CF_JWT_MAX_LEEWAY)
        return cf_err_set(CF_E_INVAL, "leeway above %d seconds", CF_JWT_MAX_LEEWAY);
    now = opts->now != 0 ? opts->now : (int64_t)time(NULL);
    CF_ENSURE(now > 0 && now <= CF_JWT_MAX_TIME, CF_E_INVAL);
    cf_buf_init(&pb, CF_JWT_MAX_BYTES);
    CF_GUARD_OUT(cf_jws_verify(token, len, key, jwks, &hdr, &pb));

    /* RFC 8725 §3.11: explicit typing, compared exactly. */
    if (opts->typ != NULL) {
        CF_GUARD_OUT(cf_json_get_str(hdr, "typ", false, CF_JWT_MAX_TYP_LEN, &typ));
        if (typ == NULL) {
            rc = cf_err_set(CF_E_VERIFY, "token has no typ, expected '%.64s'", opts->typ);
            goto out;
        }
        if (strcmp(typ, opts->typ) != 0) {
            rc = cf_err_set(CF_E_VERIFY, "typ '%.64s' is not '%.64s'", typ, opts->typ);
            goto out;
        }
    }
    /* RFC 7519 §7.2 step 10: the payload is the JWT Claims Set, a JSON object. */
    rc = cf_json_parse_object(pb.data, pb.len, CF_JWT_MAX_BYTES, &claims);
    if (rc < 0) {
        rc = err_prefix(rc, "JWT claims");
        goto out;
    }
    CF_GUARD_OUT(check_times(claims, now, (int64_t)opts->leeway, opts->allow_missing_exp));
    if (opts->iss != NULL) {
        CF_GUARD_OUT(cf_json_get_str(claims, "iss", false, CF_JSON_MAX_STRING, &iss));
        if (iss == NULL) {
            rc = cf_err_set(CF_E_VERIFY, "token has no iss, expected '%.64s'", opts->iss);
            goto out;
        }
        if (strcmp(iss, opts->iss) != 0) {
            rc = cf_err_set(CF_E_VERIFY, "iss '%.64s' is not '%.64s'", iss, opts->iss);
            goto out;
        }
    }
    CF_GUARD_OUT(check_aud(claims, opts->aud));
    *ret_claims = claims;
    claims = NULL;
    rc = 0;
out:
    json_decref(claims);
    json_decref(hdr);
    cf_buf_free(&pb);
    return rc;
}
