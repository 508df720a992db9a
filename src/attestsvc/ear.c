#include "attestsvc/ear.h"

#include <stdlib.h>
#include <string.h>

#include "attest/binding.h"
#include "base/buf.h"
#include "base/err.h"
#include "base/json.h"
#include "base/limits.h"
#include "base/parse.h"

static const char *const claim_names[CF_EAR__CLAIMS] = {
    [CF_EAR_INSTANCE_IDENTITY] = "instance-identity",
    [CF_EAR_CONFIGURATION] = "configuration",
    [CF_EAR_EXECUTABLES] = "executables",
    [CF_EAR_FILE_SYSTEM] = "file-system",
    [CF_EAR_HARDWARE] = "hardware",
    [CF_EAR_RUNTIME_OPAQUE] = "runtime-opaque",
    [CF_EAR_STORAGE_OPAQUE] = "storage-opaque",
    [CF_EAR_SOURCED_DATA] = "sourced-data",
};

static const char *const status_names[] = {"none", "affirming", "warning", "contraindicated"};

const char *cf_ear_claim_name(cf_ear_claim c)
{
    return (unsigned)c < CF_EAR__CLAIMS ? claim_names[c] : "?";
}

const char *cf_ear_status_name(cf_ear_status s)
{
    return (unsigned)s < CF_ARRAY_LEN(status_names) ? status_names[s] : "none";
}

int cf_ear_status_parse(const char *s, cf_ear_status *ret)
{
    for (size_t i = 0; i < CF_ARRAY_LEN(status_names); i++) {
        if (strcmp(s, status_names[i]) == 0) {
            *ret = (cf_ear_status)i;
            return 0;
        }
    }
    return cf_err_set(CF_E_PARSE, "unknown ear.status '%.32s'", s);
}

/* ar4si §2.3.1: -1..1 and -128..-2 carry no trust tier, 2..31 affirming,
 * 32..95 warning, 96..127 contraindicated. */
cf_ear_status cf_ear_tier(int value)
{
    if (value >= 96 && value <= 127)
        return CF_EAR_STATUS_CONTRAINDICATED;
    if (value >= 32 && value <= 95)
        return CF_EAR_STATUS_WARNING;
    if (value >= 2 && value <= 31)
        return CF_EAR_STATUS_AFFIRMING;
    return CF_EAR_STATUS_NONE;
}

/* What a failed check says about the TEE. Every value is in the
 * contraindicated tier: a manifest is an allow-list, so evidence it does not
 * allow is contraindicated by policy, not merely "unrecognized". */
static const struct {
    cf_ear_claim claim;
    int value;
} fail_map[CF_CHECK__COUNT] = {
    [CF_CHECK_PARSE] = {CF_EAR_HARDWARE, CF_AR4SI_UNRECOGNIZED_HARDWARE},
    [CF_CHECK_PRODUCT] = {CF_EAR_HARDWARE, CF_AR4SI_UNRECOGNIZED_HARDWARE},
    [CF_CHECK_SIGNATURE] = {CF_EAR_HARDWARE, CF_AR4SI_CRYPTO_VALIDATION_FAILED},
    [CF_CHECK_CHAIN] = {CF_EAR_HARDWARE, CF_AR4SI_UNRECOGNIZED_HARDWARE},
    [CF_CHECK_LEAF_KEY] = {CF_EAR_HARDWARE, CF_AR4SI_UNRECOGNIZED_HARDWARE},
    [CF_CHECK_TCB_MATCH] = {CF_EAR_HARDWARE, CF_AR4SI_UNRECOGNIZED_HARDWARE},
    [CF_CHECK_CHIP_ID] = {CF_EAR_HARDWARE, CF_AR4SI_UNRECOGNIZED_HARDWARE},
    [CF_CHECK_MIN_TCB] = {CF_EAR_HARDWARE, CF_AR4SI_CONTRAINDICATED_HARDWARE},
    [CF_CHECK_GUEST_SVN] = {CF_EAR_CONFIGURATION, CF_AR4SI_UNSUPPORTABLE_CONFIG},
    [CF_CHECK_DEBUG] = {CF_EAR_CONFIGURATION, CF_AR4SI_UNSUPPORTABLE_CONFIG},
    [CF_CHECK_GUEST_POLICY] = {CF_EAR_CONFIGURATION, CF_AR4SI_UNSUPPORTABLE_CONFIG},
    [CF_CHECK_VMPL] = {CF_EAR_CONFIGURATION, CF_AR4SI_UNSUPPORTABLE_CONFIG},
    [CF_CHECK_MEASUREMENT] = {CF_EAR_EXECUTABLES, CF_AR4SI_CONTRAINDICATED_RUNTIME},
    [CF_CHECK_DEPLOYMENT] = {CF_EAR_EXECUTABLES, CF_AR4SI_CONTRAINDICATED_RUNTIME},
    [CF_CHECK_HOST_DATA] = {CF_EAR_CONFIGURATION, CF_AR4SI_UNSUPPORTABLE_CONFIG},
    [CF_CHECK_CHIP_ALLOWLIST] = {CF_EAR_INSTANCE_IDENTITY, CF_AR4SI_UNRECOGNIZED_INSTANCE},
    [CF_CHECK_BINDING] = {CF_EAR_INSTANCE_IDENTITY, CF_AR4SI_UNTRUSTWORTHY_INSTANCE},
    [CF_CHECK_FRESHNESS] = {CF_EAR_INSTANCE_IDENTITY, CF_AR4SI_UNTRUSTWORTHY_INSTANCE},
    [CF_CHECK_REVOCATION] = {CF_EAR_HARDWARE, CF_AR4SI_CONTRAINDICATED_HARDWARE},
};

static bool passed(const cf_verify_result *r, cf_check_id id)
{
    return r->checks[id].status == CF_CHECK_PASSED;
}

static bool not_failed(const cf_verify_result *r, cf_check_id id)
{
    return r->checks[id].status != CF_CHECK_FAILED;
}

/* Worse = higher tier; within a tier the higher value. */
static void worsen(cf_ear_vector *v, cf_ear_claim c, int value)
{
    cf_ear_status a = cf_ear_tier(v->v[c]), b = cf_ear_tier(value);
    if (b > a || (b == a && value > v->v[c]))
        v->v[c] = value;
}

void cf_ear_appraise(const cf_verify_result *r, bool identity_failed, cf_ear_vector *ret_vector,
                     cf_ear_status *ret_status)
{
    cf_ear_vector v;
    cf_ear_status st = CF_EAR_STATUS_NONE;
    bool genuine;

    memset(&v, 0, sizeof(v));
    /* What passed checks vouch for. */
    if (passed(r, CF_CHECK_BINDING))
        v.v[CF_EAR_INSTANCE_IDENTITY] = CF_AR4SI_TRUSTWORTHY_INSTANCE;
    if (passed(r, CF_CHECK_DEBUG) && passed(r, CF_CHECK_VMPL) && not_failed(r, CF_CHECK_GUEST_POLICY) &&
        not_failed(r, CF_CHECK_GUEST_SVN) && not_failed(r, CF_CHECK_HOST_DATA))
        v.v[CF_EAR_CONFIGURATION] = CF_AR4SI_APPROVED_CONFIG;
    if (passed(r, CF_CHECK_MEASUREMENT) && passed(r, CF_CHECK_DEPLOYMENT))
        v.v[CF_EAR_EXECUTABLES] = CF_AR4SI_APPROVED_RUNTIME;
    /* The bundle digest is part of the launch digest (docs/internals/simulator.md
     * "Measurement"), so an allowed measurement vouches for the bundle's files. */
    if (passed(r, CF_CHECK_MEASUREMENT))
        v.v[CF_EAR_FILE_SYSTEM] = CF_AR4SI_APPROVED_FILES;
    genuine = passed(r, CF_CHECK_PARSE) && passed(r, CF_CHECK_PRODUCT) && passed(r, CF_CHECK_SIGNATURE) &&
              passed(r, CF_CHECK_CHAIN) && passed(r, CF_CHECK_LEAF_KEY) && passed(r, CF_CHECK_TCB_MATCH) &&
              passed(r, CF_CHECK_MIN_TCB) && not_failed(r, CF_CHECK_CHIP_ID) &&
              not_failed(r, CF_CHECK_REVOCATION);
    /* The simulated secure processor signs in the real format but protects
     * nothing: ar4si "unsafe hardware" and "isolated" (not encrypted) memory,
     * which puts simulated TEEs in the warning tier at best. */
    if (genuine)
        v.v[CF_EAR_HARDWARE] = r->facts.simulated ? CF_AR4SI_UNSAFE_HARDWARE : CF_AR4SI_GENUINE_HARDWARE;
    if (passed(r, CF_CHECK_SIGNATURE) && passed(r, CF_CHECK_CHAIN)) {
        /* SEV-SNP guest memory is encrypted; DEBUG lets the host read it. */
        if (r->facts.debug)
            v.v[CF_EAR_RUNTIME_OPAQUE] = CF_AR4SI_VISIBLE_MEMORY_RUNTIME;
        else
            v.v[CF_EAR_RUNTIME_OPAQUE] =
                r->facts.simulated ? CF_AR4SI_ISOLATED_MEMORY_RUNTIME : CF_AR4SI_ENCRYPTED_MEMORY_RUNTIME;
    }
    /* storage-opaque and sourced-data: nothing in the evidence speaks to them. */

    for (int i = 0; i < CF_CHECK__COUNT; i++)
        if (r->checks[i].status == CF_CHECK_FAILED)
            worsen(&v, fail_map[i].claim, fail_map[i].value);
    if (r->facts.debug)
        worsen(&v, CF_EAR_RUNTIME_OPAQUE, CF_AR4SI_VISIBLE_MEMORY_RUNTIME);
    if (identity_failed)
        worsen(&v, CF_EAR_INSTANCE_IDENTITY, CF_AR4SI_UNTRUSTWORTHY_INSTANCE);
    for (int i = 0; i < CF_EAR__CLAIMS; i++) {
        cf_ear_status t = cf_ear_tier(v.v[i]);
        if (t > st)
            st = t;
    }
    /* Structural guarantee (the map above already ensures it). */
    if (!r->verified || identity_failed)
        st = CF_EAR_STATUS_CONTRAINDICATED;
    *ret_vector = v;
    *ret_status = st;
}

static int set_str(json_t *o, const char *k, const char *v)
{
    return json_object_set_new(o, k, json_string(v)) == 0 ? 0 : CF_E_NOMEM;
}

int cf_ear_claims(const cf_ear_input *in, json_t **ret)
{
    const cf_verify_result *r = in->result;
    const char *dep = in->deployment ? in->deployment : (r->deployment[0] ? r->deployment : "unknown");
    json_t *c = NULL, *tv = NULL, *sub = NULL, *subs = NULL, *jwk = NULL;
    cf_key *tee = NULL;
    cf_ear_vector vec;
    cf_ear_status st;
    char build[64];
    int rc = CF_E_NOMEM;

    CF_ENSURE(r != NULL && in->iat > 0 && in->ttl > 0, CF_E_INVAL);
    cf_ear_appraise(r, in->identity_failed, &vec, &st);
    CF_GUARD(cf_fmt(build, sizeof(build), "coffer-attest/%s", COFFER_VERSION));
    c = json_object();
    tv = json_object();
    sub = json_object();
    subs = json_object();
    if (c == NULL || tv == NULL || sub == NULL || subs == NULL)
        goto out;
    for (int i = 0; i < CF_EAR__CLAIMS; i++)
        if (json_object_set_new(tv, claim_names[i], json_integer(vec.v[i])) != 0)
            goto out;
    CF_GUARD_OUT(set_str(sub, "ear.status", cf_ear_status_name(st)));
    if (json_object_set(sub, "ear.trustworthiness-vector", tv) != 0)
        goto out;
    /* The policy the appraisal applied is the manifest, named by its hash. */
    CF_GUARD_OUT(set_str(sub, "ear.appraisal-policy-id", r->manifest_hash));
    if (json_object_set(subs, dep, sub) != 0)
        goto out;
    CF_GUARD_OUT(set_str(c, "eat_profile", CF_EAR_PROFILE));
    if (json_object_set_new(c, "iat", json_integer(in->iat)) != 0 ||
        json_object_set_new(c, "exp", json_integer(in->iat + (int64_t)in->ttl)) != 0 ||
        json_object_set_new(c, "ear.verifier-id",
                            json_pack("{s:s,s:s}", "developer", CF_EAR_DEVELOPER, "build", build)) != 0 ||
        json_object_set(c, "submods", subs) != 0)
        goto out;
    CF_GUARD_OUT(set_str(c, "coffer.manifest_hash", r->manifest_hash));
    CF_GUARD_OUT(set_str(c, "coffer.deployment", dep));
    if (r->facts.report_parsed)
        CF_GUARD_OUT(set_str(c, "coffer.measurement", r->facts.measurement));
    if (in->tee_id != NULL)
        CF_GUARD_OUT(set_str(c, "coffer.tee_id", in->tee_id));
    if (in->build_hash != NULL)
        CF_GUARD_OUT(set_str(c, "coffer.build_hash", in->build_hash));
    if (in->nonce != NULL) {
        char *n = cf_b64url_encode_alloc(in->nonce, CF_BINDING_NONCE_LEN);
        rc = n != NULL ? set_str(c, "eat_nonce", n) : CF_E_NOMEM;
        free(n);
        CF_GUARD_OUT(rc);
    }
    if (in->tee_public_key != NULL) {
        /* RFC 7800 §3.2: the key the attested TEE holds, as a JWK. */
        CF_GUARD_OUT(cf_key_from_public(CF_KEY_X25519, in->tee_public_key, in->tee_public_key_len, &tee));
        CF_GUARD_OUT(cf_jwk_to_json(tee, NULL, &jwk));
        rc = json_object_set_new(c, "cnf", json_pack("{s:O}", "jwk", jwk)) == 0 ? 0 : CF_E_NOMEM;
        CF_GUARD_OUT(rc);
    }
    *ret = c;
    c = NULL;
    rc = 0;
out:
    cf_key_free(tee);
    json_decref(jwk);
    json_decref(c);
    json_decref(tv);
    json_decref(sub);
    json_decref(subs);
    return rc;
}

int cf_ear_sign(const cf_key *k, const char *kid, const cf_ear_input *in, char **ret_token)
{
    json_t *c = NULL;
    int rc;

    CF_ENSURE(cf_key_get_type(k) == CF_KEY_P256 && cf_key_has_private(k),
              cf_err_set(CF_E_INVAL, "EAR tokens are signed with a P-256 key (ES256)"));
    CF_GUARD(cf_ear_claims(in, &c));
    rc = cf_jwt_sign(k, c, CF_EAR_TYP, kid, ret_token);
    json_decref(c);
    return rc;
}

/* The kid of a compact JWS header, read only to choose the key (the header is
 * authenticated by the signature check that follows). */
static int header_kid(const char *token, size_t len, char *out, size_t out_size)
{
    const char *dot = memchr(token, '.', len);
    json_t *h = NULL;
    const char *kid = NULL;
    cf_buf b;
    int rc;

    CF_ENSURE(dot != NULL, cf_err_set(CF_E_PARSE, "EAR token is not a compact JWS"));
    cf_buf_init(&b, CF_JWT_MAX_HEADER_BYTES);
    rc = cf_b64url_decode(token, (size_t)(dot - token), &b);
    if (rc == 0)
        rc = cf_json_parse_object(b.data, b.len, CF_JWT_MAX_HEADER_BYTES, &h);
    if (rc == 0)
        rc = cf_json_get_str(h, "kid", true, CF_JWK_KID_MAX_LEN, &kid);
    if (rc == 0)
        rc = cf_fmt(out, out_size, "%s", kid);
    if (rc != 0)
        rc = cf_err_set(CF_E_PARSE, "EAR token header: %s", cf_err_detail(rc));
    json_decref(h);
    cf_buf_free(&b);
    return rc;
}

int cf_ear_verify(const char *token, size_t len, const cf_jwks *jwks, int64_t now, json_t **ret_claims)
{
    cf_jwt_verify_opts o = {.typ = CF_EAR_TYP, .now = now, .leeway = 30};
    char kid[CF_JWK_KID_MAX_LEN + 1];
    const cf_key *k = NULL;
    json_t *c = NULL, *subs = NULL;
    const char *prof = NULL, *key;
    json_t *sub;
    int rc;

    CF_ENSURE(len <= CF_JWT_MAX_BYTES, cf_err_set(CF_E_TOO_LARGE, "EAR token too large"));
    CF_GUARD(header_kid(token, len, kid, sizeof(kid)));
    CF_GUARD(cf_jwks_find(jwks, kid, &k));
    CF_ENSURE(cf_key_get_type(k) == CF_KEY_P256,
              cf_err_set(CF_E_UNSUPPORTED, "EAR key '%s' is not a P-256 (ES256) key", kid));
    CF_GUARD(cf_jwt_verify(token, len, k, NULL, &o, &c));
    CF_GUARD_OUT(cf_json_get_str(c, "eat_profile", true, 128, &prof));
    CF_ENSURE_OUT(strcmp(prof, CF_EAR_PROFILE) == 0,
                  cf_err_set(CF_E_VERIFY, "eat_profile is not %s", CF_EAR_PROFILE));
    CF_GUARD_OUT(cf_json_get_obj(c, "submods", true, &subs));
    CF_ENSURE_OUT(json_is_object(subs) && json_object_size(subs) > 0,
                  cf_err_set(CF_E_PARSE, "submods must be a non-empty object"));
    json_object_foreach(subs, key, sub) {
        const char *st = NULL;
        cf_ear_status s;
        CF_ENSURE_OUT(json_is_object(sub), cf_err_set(CF_E_PARSE, "submods.%s must be an object", key));
        CF_GUARD_OUT(cf_json_get_str(sub, "ear.status", true, 32, &st));
        CF_GUARD_OUT(cf_ear_status_parse(st, &s));
    }
    *ret_claims = c;
    c = NULL;
    rc = 0;
out:
    json_decref(c);
    return rc;
}
