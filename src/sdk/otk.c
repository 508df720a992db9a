/*
 * Step 3 of the request flow (DESIGN.md §5): the one-time key.
 *
 *   POST /v1/kms/otk {"tee_id"} -> 201 {"otk_id","tee_id","expires_at","enc","ct"}
 *
 * The KMS seals the OTK with HPKE (RFC 9180) mode auth: sender = the KMS
 * release key, recipient = the client key registered for the principal,
 * info "coffer/v1 otk", aad "coffer/v1 otk|" || otk_id || "|" || tee_id
 * (docs/PROTOCOL.md; the KMS side is kms/wire.h). Opening it with the PINNED
 * release key as the authenticated sender proves the KMS issued it for this
 * TEE: the gateway, which relays it, can neither read nor forge it
 * (DESIGN.md §2 rule 2).
 */
#include <string.h>

#include "base/buf.h"
#include "base/err.h"
#include "base/json.h"
#include "base/parse.h"
#include "base/secmem.h"
#include "sdk/sdk.h"

#define STEP_OTK "one-time key"

int cf_sdk_otk_open(const cf_hpke_key *client_key, const cf_hpke_key *release_key,
                    const char *otk_id, const char *tee_id, const uint8_t *enc, size_t enc_len,
                    const uint8_t *ct, size_t ct_len, uint8_t *ret_otk)
{
    cf_hpke_params p = {.suite = CF_HPKE_SUITE_COFFER,
                        .mode = CF_HPKE_MODE_AUTH,
                        .info = (const uint8_t *)CF_SDK_OTK_INFO,
                        .info_len = strlen(CF_SDK_OTK_INFO)};
    cf_buf aad, pt;
    int rc;

    cf_buf_init(&aad, 2 * CF_ID_MAX_LEN + 32);
    cf_buf_init_secret(&pt, CF_SDK_OTK_LEN + CF_HPKE_NT);
    CF_GUARD_OUT(cf_buf_printf(&aad, "%s%s|%s", CF_SDK_OTK_AAD_PREFIX, otk_id, tee_id));
    rc = cf_hpke_open_once(&p, enc, enc_len, client_key, release_key, aad.data, aad.len, ct,
                           ct_len, &pt);
    if (rc == CF_E_DECRYPT || rc == CF_E_INVAL) {
        rc = cf_sdk_fail(CF_E_DECRYPT, COFFER_E_INTEGRITY,
                         "%s: %s is not sealed by the pinned KMS release key to this client's key "
                         "for TEE %s",
                         STEP_OTK, otk_id, tee_id);
        goto out;
    }
    CF_GUARD_OUT(rc);
    CF_ENSURE_OUT(pt.len == CF_SDK_OTK_LEN,
                  cf_sdk_fail(CF_E_PARSE, COFFER_E_PROTOCOL, "%s: %s is %zu bytes, not %d",
                              STEP_OTK, otk_id, pt.len, CF_SDK_OTK_LEN));
    memcpy(ret_otk, pt.data, CF_SDK_OTK_LEN);
out:
    cf_buf_free(&pt);
    cf_buf_free(&aad);
    return rc;
}

int cf_sdk_otk_parse(const json_t *ans, cf_sdk_otk_answer *ret)
{
    cf_sdk_otk_answer oa;
    const char *otk_id = NULL, *tee_id = NULL;
    json_t *exp_at;
    cf_buf enc, ct;
    int rc;

    memset(&oa, 0, sizeof(oa));
    cf_buf_init(&enc, sizeof(oa.enc));
    cf_buf_init(&ct, sizeof(oa.ct));
    CF_GUARD_OUT(cf_json_get_str(ans, "otk_id", true, CF_ID_MAX_LEN, &otk_id));
    CF_GUARD_OUT(cf_json_get_str(ans, "tee_id", true, CF_ID_MAX_LEN, &tee_id));
    CF_GUARD_OUT(cf_json_get_b64url(ans, "enc", true, sizeof(oa.enc), &enc));
    CF_GUARD_OUT(cf_json_get_b64url(ans, "ct", true, sizeof(oa.ct), &ct));
    if ((exp_at = json_object_get(ans, "expires_at")) != NULL)
        CF_GUARD_OUT(cf_sdk_parse_time(exp_at, &oa.expires_at));
    CF_ENSURE_OUT(cf_sdk_id_ok(otk_id, CF_ID_MAX_LEN) && cf_sdk_id_ok(tee_id, CF_ID_MAX_LEN),
                  cf_err_set(CF_E_PARSE, "field 'otk_id' or 'tee_id' is not a valid id"));
    memcpy(oa.otk_id, otk_id, strlen(otk_id) + 1);
    memcpy(oa.tee_id, tee_id, strlen(tee_id) + 1);
    memcpy(oa.enc, enc.data, enc.len);
    oa.enc_len = enc.len;
    memcpy(oa.ct, ct.data, ct.len);
    oa.ct_len = ct.len;
    *ret = oa;
out:
    cf_buf_free(&enc);
    cf_buf_free(&ct);
    return rc;
}

int cf_sdk_otk_get(coffer_client *c, const cf_sdk_auth *a, const char *tee_id,
                   char ret_otk_id[CF_ID_MAX_LEN + 1], uint8_t *ret_otk)
{
    char body[CF_ID_MAX_LEN + 32];
    json_t *ans = NULL;
    cf_http_request req;
    cf_http_response resp;
    cf_sdk_otk_answer oa;
    int rc;

    memset(&resp, 0, sizeof(resp));
    /* tee_id passed cf_sdk_id_ok: no JSON escaping needed. */
    CF_GUARD_OUT(cf_fmt(body, sizeof(body), "{\"tee_id\":\"%s\"}", tee_id));
    req = (cf_http_request){.method = "POST",
                            .path = "/v1/kms/otk",
                            .bearer = a->token,
                            .content_type = "application/json",
                            .body = body,
                            .body_len = strlen(body)};
    CF_GUARD_OUT(cf_sdk_http(c, &req, &resp, STEP_OTK));
    CF_GUARD_OUT(cf_sdk_json_answer(&resp, resp.status == 200 ? 200 : 201, STEP_OTK, &ans));
    rc = cf_sdk_otk_parse(ans, &oa);
    if (rc < 0) {
        rc = cf_sdk_fail(rc, COFFER_E_PROTOCOL, "%s: %s", STEP_OTK, cf_err_detail(rc));
        goto out;
    }
    /* The aad binds the TEE anyway; this gives the clearer message. */
    CF_ENSURE_OUT(strcmp(oa.tee_id, tee_id) == 0,
                  cf_sdk_fail(CF_E_PARSE, COFFER_E_PROTOCOL, "%s: issued for TEE %s, asked for %s",
                              STEP_OTK, oa.tee_id, tee_id));
    CF_ENSURE_OUT(oa.expires_at == 0 || oa.expires_at > cf_sdk_now(),
                  cf_sdk_fail(CF_E_EXPIRED, COFFER_E_KEY_EXPIRED,
                              "%s: %s expired before it could be used", STEP_OTK, oa.otk_id));
    CF_GUARD_OUT(cf_sdk_otk_open(a->client_key, c->release_key, oa.otk_id, tee_id, oa.enc,
                                 oa.enc_len, oa.ct, oa.ct_len, ret_otk));
    memcpy(ret_otk_id, oa.otk_id, sizeof(oa.otk_id));
out:
    json_decref(ans);
    cf_http_response_free(&resp);
    return rc;
}
