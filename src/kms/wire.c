/*
 * Sealed OTK messages (kms/wire.h; docs/internals/kms.md "Wire formats").
 * HPKE mode auth, RFC 9180 §5.1.3 (SetupAuthS / SetupAuthR): the receiver's
 * open succeeds only if the sender holds the private key of the public key the
 * receiver names, which is how the KMS knows a release request comes from the
 * registered TEE and the TEE knows a release comes from the pinned KMS key.
 */
#include "kms/wire.h"

#include <string.h>

#include "base/err.h"
#include "base/json.h"
#include "base/parse.h"
#include "base/secmem.h"

#define B64_32 43 /* base64url (unpadded) length of 32 bytes */
#define OTK_AAD_MAX (sizeof(CF_KMS_AAD_OTK_PREFIX) + CF_KMS_OTK_ID_LEN + 1 + CF_KMS_TEE_ID_LEN + 1)

bool cf_kms_id_valid(const char *s, const char *prefix)
{
    size_t pl = strlen(prefix), n;

    if (s == NULL)
        return false;
    n = strnlen(s, pl + CF_KMS_ID_HEX + 1);
    if (n != pl + CF_KMS_ID_HEX || memcmp(s, prefix, pl) != 0)
        return false;
    for (size_t i = pl; i < n; i++) {
        char c = s[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return false;
    }
    return true;
}

bool cf_kms_tenant_valid(const char *s)
{
    size_t n;

    if (s == NULL)
        return false;
    n = strnlen(s, CF_ID_MAX_LEN + 1);
    if (n == 0 || n > CF_ID_MAX_LEN)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
        if (!alnum && (i == 0 || (c != '.' && c != '_' && c != '-')))
            return false;
    }
    return true;
}

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

static int check_ids(const char *otk_id, const char *tee_id)
{
    if (!cf_kms_id_valid(otk_id, "otk_"))
        return cf_err_set(CF_E_INVAL, "malformed OTK id");
    if (tee_id != NULL && !cf_kms_id_valid(tee_id, "tee_"))
        return cf_err_set(CF_E_INVAL, "malformed TEE id");
    return 0;
}

/* "coffer/v1 otk|" || otk_id || "|" || tee_id: both ids have a fixed alphabet
 * without '|', so the concatenation is unambiguous. */
static int otk_aad(const char *otk_id, const char *tee_id, char *out, size_t size)
{
    return cf_fmt(out, size, "%s%s|%s", CF_KMS_AAD_OTK_PREFIX, otk_id, tee_id);
}

static int seal(const char *info, const cf_hpke_key *skS, const cf_hpke_key *pkR,
                const char *aad, const uint8_t *pt, size_t pt_len, uint8_t ret_enc[CF_KMS_ENC_LEN],
                cf_buf *ct)
{
    cf_hpke_params p = params(info);
    uint8_t enc[CF_HPKE_MAX_ENC];
    size_t enc_len = 0;

    CF_ENSURE(skS != NULL && pkR != NULL && ct != NULL, CF_E_INVAL);
    CF_GUARD(cf_hpke_seal_once(&p, pkR, skS, (const uint8_t *)aad, strlen(aad), pt, pt_len, enc,
                               &enc_len, ct));
    CF_ENSURE(enc_len == CF_KMS_ENC_LEN, CF_E_INTERNAL);
    memcpy(ret_enc, enc, CF_KMS_ENC_LEN);
    return 0;
}

static int open_(const char *info, const cf_hpke_key *skR, const cf_hpke_key *pkS, const char *aad,
                 const uint8_t *enc, size_t enc_len, const uint8_t *ct, size_t ct_len, cf_buf *pt)
{
    cf_hpke_params p = params(info);

    CF_ENSURE(skR != NULL && pkS != NULL && pt != NULL && (ct != NULL || ct_len == 0), CF_E_INVAL);
    if (enc == NULL || enc_len != CF_KMS_ENC_LEN)
        return cf_err_set(CF_E_INVAL, "enc must be %d bytes", CF_KMS_ENC_LEN);
    return cf_hpke_open_once(&p, enc, enc_len, skR, pkS, (const uint8_t *)aad, strlen(aad), ct,
                             ct_len, pt);
}

/* ---- OTK issue ---- */

int cf_kms_wire_seal_otk(const cf_hpke_key *release_sk, const cf_hpke_key *client_pk,
                         const char *otk_id, const char *tee_id, const uint8_t otk[CF_KMS_OTK_LEN],
                         uint8_t ret_enc[CF_KMS_ENC_LEN], cf_buf *ct)
{
    char aad[OTK_AAD_MAX];

    CF_GUARD(check_ids(otk_id, tee_id));
    CF_GUARD(otk_aad(otk_id, tee_id, aad, sizeof(aad)));
    return seal(CF_KMS_INFO_OTK, release_sk, client_pk, aad, otk, CF_KMS_OTK_LEN, ret_enc, ct);
}

int cf_kms_wire_open_otk(const cf_hpke_key *client_sk, const cf_hpke_key *release_pk,
                         const char *otk_id, const char *tee_id, const uint8_t *enc, size_t enc_len,
                         const uint8_t *ct, size_t ct_len, cf_buf *ret_otk)
{
    char aad[OTK_AAD_MAX];
    cf_buf pt;
    int rc;

    CF_ENSURE(ret_otk != NULL && ret_otk->secret, CF_E_INVAL);
    CF_GUARD(check_ids(otk_id, tee_id));
    CF_GUARD(otk_aad(otk_id, tee_id, aad, sizeof(aad)));
    if (ct_len != CF_KMS_OTK_LEN + CF_HPKE_NT)
        return cf_err_set(CF_E_DECRYPT, "sealed OTK has %zu bytes, expected %d", ct_len,
                          CF_KMS_OTK_LEN + CF_HPKE_NT);
    cf_buf_init_secret(&pt, CF_KMS_OTK_LEN);
    CF_GUARD_OUT(open_(CF_KMS_INFO_OTK, client_sk, release_pk, aad, enc, enc_len, ct, ct_len, &pt));
    CF_ENSURE_OUT(pt.len == CF_KMS_OTK_LEN, CF_E_DECRYPT);
    CF_GUARD_OUT(cf_buf_put(ret_otk, pt.data, pt.len));
out:
    cf_buf_free(&pt);
    return rc;
}

/* ---- release request ---- */

int cf_kms_wire_parse_release_request(const uint8_t *pt, size_t len, cf_kms_release_request *ret)
{
    static const char *const keys[] = {"otk_id", "tee_id", "ts", NULL};
    cf_kms_release_request r;
    json_t *o = NULL;
    const char *otk_id = NULL, *tee_id = NULL;
    uint64_t ts = 0;
    int rc;

    memset(&r, 0, sizeof(r));
    CF_GUARD_OUT(cf_json_parse_object(pt, len, CF_KMS_RELEASE_REQ_MAX, &o));
    CF_GUARD_OUT(cf_json_only_keys(o, keys));
    CF_GUARD_OUT(cf_json_get_str(o, "otk_id", true, CF_KMS_OTK_ID_LEN, &otk_id));
    CF_GUARD_OUT(cf_json_get_str(o, "tee_id", true, CF_KMS_TEE_ID_LEN, &tee_id));
    CF_GUARD_OUT(cf_json_get_u64(o, "ts", true, (uint64_t)CF_JWT_MAX_TIME, &ts));
    if (!cf_kms_id_valid(otk_id, "otk_") || !cf_kms_id_valid(tee_id, "tee_")) {
        rc = cf_err_set(CF_E_PARSE, "release request: malformed otk_id or tee_id");
        goto out;
    }
    memcpy(r.otk_id, otk_id, CF_KMS_OTK_ID_LEN);
    memcpy(r.tee_id, tee_id, CF_KMS_TEE_ID_LEN);
    r.ts = (int64_t)ts;
    *ret = r;
out:
    json_decref(o);
    if (rc < 0 && rc != CF_E_NOMEM)
        rc = cf_err_set(CF_E_PARSE, "release request: %s", cf_err_detail(rc));
    return rc;
}

int cf_kms_wire_seal_release_request(const cf_hpke_key *tee_sk, const cf_hpke_key *release_pk,
                                     const char *otk_id, const char *tee_id, int64_t ts,
                                     uint8_t ret_enc[CF_KMS_ENC_LEN], cf_buf *ct)
{
    char pt[CF_KMS_RELEASE_REQ_MAX];

    CF_GUARD(check_ids(otk_id, tee_id));
    CF_ENSURE(ts >= 0 && ts <= CF_JWT_MAX_TIME, CF_E_RANGE);
    CF_GUARD(cf_fmt(pt, sizeof(pt), "{\"otk_id\":\"%s\",\"tee_id\":\"%s\",\"ts\":%lld}", otk_id,
                    tee_id, (long long)ts));
    return seal(CF_KMS_INFO_RELEASE_REQUEST, tee_sk, release_pk, otk_id, (const uint8_t *)pt,
                strlen(pt), ret_enc, ct);
}

int cf_kms_wire_open_release_request(const cf_hpke_key *release_sk, const cf_hpke_key *tee_pk,
                                     const char *otk_id, const uint8_t *enc, size_t enc_len,
                                     const uint8_t *ct, size_t ct_len, cf_kms_release_request *ret)
{
    cf_buf pt;
    int rc;

    CF_GUARD(check_ids(otk_id, NULL));
    if (ct_len < CF_HPKE_NT || ct_len > CF_KMS_RELEASE_REQ_MAX + CF_HPKE_NT)
        return cf_err_set(CF_E_DECRYPT, "sealed release request has %zu bytes", ct_len);
    cf_buf_init_secret(&pt, CF_KMS_RELEASE_REQ_MAX);
    CF_GUARD_OUT(open_(CF_KMS_INFO_RELEASE_REQUEST, release_sk, tee_pk, otk_id, enc, enc_len, ct,
                       ct_len, &pt));
    rc = cf_kms_wire_parse_release_request(pt.data, pt.len, ret);
out:
    cf_buf_free(&pt);
    return rc;
}

/* ---- release ---- */

/* Appends the base64url form of 32 bytes without an intermediate heap copy. */
static int put_b64_32(cf_buf *b, const uint8_t in[32])
{
    char tmp[B64_32 + 1];
    int rc;

    cf_b64url_encode(in, 32, tmp);
    rc = cf_buf_put(b, tmp, B64_32);
    cf_wipe(tmp, sizeof(tmp));
    return rc;
}

int cf_kms_wire_build_release(const cf_kms_released *r, cf_buf *ret_pt)
{
    size_t before;
    int rc;

    CF_ENSURE(r != NULL && ret_pt != NULL && ret_pt->secret, CF_E_INVAL);
    if (!cf_kms_id_valid(r->otk_id, "otk_") || !cf_kms_id_valid(r->tee_id, "tee_") ||
        !cf_kms_tenant_valid(r->tenant))
        return cf_err_set(CF_E_INVAL, "release: malformed otk_id, tee_id or tenant");
    before = ret_pt->len;
    /* Keys in sorted order, compact: the one form the parser below accepts. The
     * ids and the tenant have alphabets that need no JSON escaping. */
    CF_GUARD_OUT(cf_buf_put_str(ret_pt, "{\"client_key\":\""));
    CF_GUARD_OUT(put_b64_32(ret_pt, r->client_key));
    CF_GUARD_OUT(cf_buf_put_str(ret_pt, "\",\"otk\":\""));
    CF_GUARD_OUT(put_b64_32(ret_pt, r->otk));
    CF_GUARD_OUT(cf_buf_put_str(ret_pt, "\",\"otk_id\":\""));
    CF_GUARD_OUT(cf_buf_put_str(ret_pt, r->otk_id));
    CF_GUARD_OUT(cf_buf_put_str(ret_pt, "\",\"tee_id\":\""));
    CF_GUARD_OUT(cf_buf_put_str(ret_pt, r->tee_id));
    CF_GUARD_OUT(cf_buf_put_str(ret_pt, "\",\"tenant\":\""));
    CF_GUARD_OUT(cf_buf_put_str(ret_pt, r->tenant));
    CF_GUARD_OUT(cf_buf_put_str(ret_pt, "\"}"));
out:
    if (rc < 0 && ret_pt->len > before) {
        cf_wipe(ret_pt->data + before, ret_pt->len - before);
        ret_pt->len = before;
    }
    return rc;
}

static int expect(cf_buf *b, const char *lit)
{
    size_t n = strlen(lit);
    const uint8_t *p;

    if (cf_buf_get_ptr(b, n, &p) != 0 || memcmp(p, lit, n) != 0)
        return cf_err_set(CF_E_PARSE, "release: expected '%s'", lit);
    return 0;
}

/* Reads a JSON string body and its closing quote: 1..max bytes, none of them
 * '\\' (this form has no escapes), control characters or non-ASCII. */
static int string_body(cf_buf *b, size_t max, const uint8_t **ret, size_t *ret_len)
{
    const uint8_t *start;
    size_t n = 0;
    uint8_t c;

    CF_GUARD(cf_buf_get_ptr(b, 0, &start));
    for (;;) {
        if (cf_buf_remaining(b) == 0)
            return cf_err_set(CF_E_PARSE, "release: unterminated string");
        CF_GUARD(cf_buf_get_u8(b, &c));
        if (c == '"')
            break;
        if (c < 0x20 || c >= 0x7f || c == '\\')
            return cf_err_set(CF_E_PARSE, "release: unexpected character in a string");
        if (++n > max)
            return cf_err_set(CF_E_PARSE, "release: string longer than %zu bytes", max);
    }
    if (n == 0)
        return cf_err_set(CF_E_PARSE, "release: empty string");
    *ret = start;
    *ret_len = n;
    return 0;
}

static int b64_32_field(cf_buf *b, uint8_t out[32])
{
    const uint8_t *s;
    size_t n;
    cf_buf dec;
    int rc;

    CF_GUARD(string_body(b, B64_32, &s, &n));
    if (n != B64_32)
        return cf_err_set(CF_E_PARSE, "release: a key field is not 32 bytes of base64url");
    cf_buf_init_secret(&dec, 32);
    rc = cf_b64url_decode((const char *)s, n, &dec);
    if (rc == 0 && dec.len != 32)
        rc = CF_E_PARSE;
    if (rc == 0)
        memcpy(out, dec.data, 32);
    else
        rc = cf_err_set(CF_E_PARSE, "release: a key field is not 32 bytes of base64url");
    cf_buf_free(&dec);
    return rc;
}

static int id_field(cf_buf *b, size_t max, char *out)
{
    const uint8_t *s;
    size_t n;

    CF_GUARD(string_body(b, max, &s, &n));
    memcpy(out, s, n);
    out[n] = 0;
    return 0;
}

int cf_kms_wire_parse_release(const uint8_t *pt, size_t len, cf_kms_released *ret)
{
    cf_kms_released *r = NULL;
    cf_buf b;
    int rc;

    CF_ENSURE(ret != NULL && (pt != NULL || len == 0), CF_E_INVAL);
    if (len > CF_KMS_RELEASE_PT_MAX)
        return cf_err_set(CF_E_TOO_LARGE, "release: plaintext exceeds %d bytes", CF_KMS_RELEASE_PT_MAX);
    r = cf_secure_alloc(sizeof(*r));
    CF_ENSURE(r != NULL, CF_E_NOMEM);
    cf_buf_view(&b, pt, len);
    CF_GUARD_OUT(expect(&b, "{\"client_key\":\""));
    CF_GUARD_OUT(b64_32_field(&b, r->client_key));
    CF_GUARD_OUT(expect(&b, ",\"otk\":\""));
    CF_GUARD_OUT(b64_32_field(&b, r->otk));
    CF_GUARD_OUT(expect(&b, ",\"otk_id\":\""));
    CF_GUARD_OUT(id_field(&b, CF_KMS_OTK_ID_LEN, r->otk_id));
    CF_GUARD_OUT(expect(&b, ",\"tee_id\":\""));
    CF_GUARD_OUT(id_field(&b, CF_KMS_TEE_ID_LEN, r->tee_id));
    CF_GUARD_OUT(expect(&b, ",\"tenant\":\""));
    CF_GUARD_OUT(id_field(&b, CF_ID_MAX_LEN, r->tenant));
    CF_GUARD_OUT(expect(&b, "}"));
    if (cf_buf_expect_end(&b) != 0) {
        rc = cf_err_set(CF_E_TRAILING, "release: bytes after the end of the object");
        goto out;
    }
    if (!cf_kms_id_valid(r->otk_id, "otk_") || !cf_kms_id_valid(r->tee_id, "tee_") ||
        !cf_kms_tenant_valid(r->tenant)) {
        rc = cf_err_set(CF_E_PARSE, "release: malformed otk_id, tee_id or tenant");
        goto out;
    }
    memcpy(ret, r, sizeof(*r));
out:
    cf_secure_free(r); /* wipes */
    return rc;
}

int cf_kms_wire_seal_release(const cf_hpke_key *release_sk, const cf_hpke_key *tee_pk,
                             const cf_kms_released *r, uint8_t ret_enc[CF_KMS_ENC_LEN], cf_buf *ct)
{
    cf_buf pt;
    int rc;

    cf_buf_init_secret(&pt, CF_KMS_RELEASE_PT_MAX);
    CF_GUARD_OUT(cf_kms_wire_build_release(r, &pt));
    rc = seal(CF_KMS_INFO_RELEASE, release_sk, tee_pk, r->otk_id, pt.data, pt.len, ret_enc, ct);
out:
    cf_buf_free(&pt);
    return rc;
}

int cf_kms_wire_open_release(const cf_hpke_key *tee_sk, const cf_hpke_key *release_pk,
                             const char *otk_id, const uint8_t *enc, size_t enc_len,
                             const uint8_t *ct, size_t ct_len, cf_kms_released *ret)
{
    cf_kms_released *r = NULL;
    cf_buf pt;
    int rc;

    CF_ENSURE(ret != NULL, CF_E_INVAL);
    CF_GUARD(check_ids(otk_id, NULL));
    if (ct_len < CF_HPKE_NT || ct_len > CF_KMS_RELEASE_PT_MAX + CF_HPKE_NT)
        return cf_err_set(CF_E_DECRYPT, "sealed release has %zu bytes", ct_len);
    cf_buf_init_secret(&pt, CF_KMS_RELEASE_PT_MAX);
    r = cf_secure_alloc(sizeof(*r));
    CF_ENSURE_OUT(r != NULL, CF_E_NOMEM);
    CF_GUARD_OUT(open_(CF_KMS_INFO_RELEASE, tee_sk, release_pk, otk_id, enc, enc_len, ct, ct_len, &pt));
    CF_GUARD_OUT(cf_kms_wire_parse_release(pt.data, pt.len, r));
    /* The AAD already binds otk_id; the plaintext must agree with it. */
    if (strcmp(r->otk_id, otk_id) != 0) {
        rc = cf_err_set(CF_E_DECRYPT, "release names another OTK");
        goto out;
    }
    memcpy(ret, r, sizeof(*r));
out:
    cf_secure_free(r);
    cf_buf_free(&pt);
    return rc;
}
