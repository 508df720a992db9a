/*
 * EAR tokens (attestsvc/ear.h): AR4SI appraisal and status mapping, the claim
 * set (compared with the veraison/ear sample in testdata/ear), signing and
 * verification against a JWKS, and the public /verify shape built from a
 * result (attestsvc/report.h).
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "attest/manifest.h"
#include "attest/verify.h"
#include "attestsvc/ear.h"
#include "attestsvc/report.h"
#include "base/buf.h"
#include "base/err.h"
#include "base/json.h"
#include "base/parse.h"
#include "crypto/hash.h"
#include "crypto/jose.h"
#include "crypto/keys.h"
#include "test.h"

#define MANIFEST_HASH "sha256:1111111111111111111111111111111111111111111111111111111111111111"
#define MEAS "aa00000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000bb"

/* A result as the verifier makes it: every check passed (binding included). */
static cf_verify_result *good_result(bool simulated)
{
    cf_verify_result *r = calloc(1, sizeof(*r));
    if (r == NULL)
        abort();
    r->verified = true;
    r->at = 1700000000;
    memcpy(r->manifest_hash, MANIFEST_HASH, sizeof(MANIFEST_HASH));
    memcpy(r->deployment, "demo", 5);
    memcpy(r->tenant, "t1", 3);
    for (int i = 0; i < CF_CHECK__COUNT; i++) {
        r->checks[i].id = (cf_check_id)i;
        r->checks[i].name = cf_check_name((cf_check_id)i);
        r->checks[i].status = CF_CHECK_PASSED;
        snprintf(r->checks[i].message, sizeof(r->checks[i].message), "%s ok", r->checks[i].name);
    }
    r->checks[CF_CHECK_REVOCATION].status = CF_CHECK_SKIPPED;
    r->facts.platform = "sev-snp";
    r->facts.report_parsed = r->facts.cert_parsed = true;
    r->facts.product = CF_SNP_PRODUCT_MILAN;
    r->facts.simulated = simulated;
    memcpy(r->facts.measurement, MEAS, sizeof(MEAS));
    memset(r->facts.host_data, '0', 64);
    memset(r->facts.report_data, 'c', 128);
    memset(r->facts.chip_id, 'd', 128);
    r->facts.reported_tcb.bootloader = 4;
    r->facts.reported_tcb.snp = 22;
    r->facts.reported_tcb.microcode = 213;
    return r;
}

static void fail_check(cf_verify_result *r, cf_check_id id)
{
    r->checks[id].status = CF_CHECK_FAILED;
    r->verified = false;
}

static void test_tiers(void)
{
    T_EQ(cf_ear_tier(0), CF_EAR_STATUS_NONE);
    T_EQ(cf_ear_tier(1), CF_EAR_STATUS_NONE);
    T_EQ(cf_ear_tier(-1), CF_EAR_STATUS_NONE);
    T_EQ(cf_ear_tier(2), CF_EAR_STATUS_AFFIRMING);
    T_EQ(cf_ear_tier(31), CF_EAR_STATUS_AFFIRMING);
    T_EQ(cf_ear_tier(32), CF_EAR_STATUS_WARNING);
    T_EQ(cf_ear_tier(95), CF_EAR_STATUS_WARNING);
    T_EQ(cf_ear_tier(96), CF_EAR_STATUS_CONTRAINDICATED);
    T_EQ(cf_ear_tier(127), CF_EAR_STATUS_CONTRAINDICATED);
    T_EQ(cf_ear_tier(-2), CF_EAR_STATUS_NONE);
    T_STREQ(cf_ear_status_name(CF_EAR_STATUS_WARNING), "warning");
    T_STREQ(cf_ear_claim_name(CF_EAR_RUNTIME_OPAQUE), "runtime-opaque");
    cf_ear_status s;
    T_OK(cf_ear_status_parse("contraindicated", &s));
    T_EQ(s, CF_EAR_STATUS_CONTRAINDICATED);
    T_ERR(cf_ear_status_parse("affirmative", &s), CF_E_PARSE);
}

static void test_appraise_good(void)
{
    cf_verify_result *r = good_result(false);
    cf_ear_vector v;
    cf_ear_status st;

    cf_ear_appraise(r, false, &v, &st);
    T_EQ(st, CF_EAR_STATUS_AFFIRMING);
    T_EQ(v.v[CF_EAR_INSTANCE_IDENTITY], CF_AR4SI_TRUSTWORTHY_INSTANCE);
    T_EQ(v.v[CF_EAR_CONFIGURATION], CF_AR4SI_APPROVED_CONFIG);
    T_EQ(v.v[CF_EAR_EXECUTABLES], CF_AR4SI_APPROVED_RUNTIME);
    T_EQ(v.v[CF_EAR_FILE_SYSTEM], CF_AR4SI_APPROVED_FILES);
    T_EQ(v.v[CF_EAR_HARDWARE], CF_AR4SI_GENUINE_HARDWARE);
    T_EQ(v.v[CF_EAR_RUNTIME_OPAQUE], CF_AR4SI_ENCRYPTED_MEMORY_RUNTIME);
    T_EQ(v.v[CF_EAR_STORAGE_OPAQUE], CF_AR4SI_NO_CLAIM);
    T_EQ(v.v[CF_EAR_SOURCED_DATA], CF_AR4SI_NO_CLAIM);
    /* Without a binding, the instance is not vouched for (no claim). */
    r->checks[CF_CHECK_BINDING].status = CF_CHECK_SKIPPED;
    cf_ear_appraise(r, false, &v, &st);
    T_EQ(v.v[CF_EAR_INSTANCE_IDENTITY], CF_AR4SI_NO_CLAIM);
    T_EQ(st, CF_EAR_STATUS_AFFIRMING);
    free(r);
}

static void test_appraise_simulated_is_warning(void)
{
    cf_verify_result *r = good_result(true);
    cf_ear_vector v;
    cf_ear_status st;

    cf_ear_appraise(r, false, &v, &st);
    T_EQ(st, CF_EAR_STATUS_WARNING);
    T_EQ(v.v[CF_EAR_HARDWARE], CF_AR4SI_UNSAFE_HARDWARE);
    T_EQ(v.v[CF_EAR_RUNTIME_OPAQUE], CF_AR4SI_ISOLATED_MEMORY_RUNTIME);
    free(r);
}

static void test_every_failed_check_is_contraindicated(void)
{
    for (int i = 0; i < CF_CHECK__COUNT; i++) {
        cf_verify_result *r = good_result(false);
        cf_ear_vector v;
        cf_ear_status st;
        int worst = 0;

        fail_check(r, (cf_check_id)i);
        cf_ear_appraise(r, false, &v, &st);
        T_ASSERT_MSG(st == CF_EAR_STATUS_CONTRAINDICATED, "failed check %s gave %s", cf_check_name((cf_check_id)i),
                     cf_ear_status_name(st));
        /* ... through the vector itself, not only the final guard */
        for (int c = 0; c < CF_EAR__CLAIMS; c++)
            if (cf_ear_tier(v.v[c]) > cf_ear_tier(worst))
                worst = v.v[c];
        T_ASSERT_MSG(cf_ear_tier(worst) == CF_EAR_STATUS_CONTRAINDICATED, "vector for %s not contraindicated",
                     cf_check_name((cf_check_id)i));
        free(r);
    }
}

static void test_appraise_specific_failures(void)
{
    cf_verify_result *r = good_result(false);
    cf_ear_vector v;
    cf_ear_status st;

    fail_check(r, CF_CHECK_SIGNATURE);
    cf_ear_appraise(r, false, &v, &st);
    T_EQ(v.v[CF_EAR_HARDWARE], CF_AR4SI_CRYPTO_VALIDATION_FAILED);
    T_EQ(v.v[CF_EAR_RUNTIME_OPAQUE], CF_AR4SI_NO_CLAIM);
    free(r);

    r = good_result(false);
    fail_check(r, CF_CHECK_MEASUREMENT);
    cf_ear_appraise(r, false, &v, &st);
    T_EQ(v.v[CF_EAR_EXECUTABLES], CF_AR4SI_CONTRAINDICATED_RUNTIME);
    T_EQ(v.v[CF_EAR_FILE_SYSTEM], CF_AR4SI_NO_CLAIM);
    free(r);

    /* DEBUG set: host-visible memory, even when the manifest allows debug. */
    r = good_result(false);
    r->facts.debug = true;
    cf_ear_appraise(r, false, &v, &st);
    T_EQ(v.v[CF_EAR_RUNTIME_OPAQUE], CF_AR4SI_VISIBLE_MEMORY_RUNTIME);
    T_EQ(st, CF_EAR_STATUS_CONTRAINDICATED);
    fail_check(r, CF_CHECK_DEBUG);
    cf_ear_appraise(r, false, &v, &st);
    T_EQ(v.v[CF_EAR_CONFIGURATION], CF_AR4SI_UNSUPPORTABLE_CONFIG);
    free(r);

    /* A registry mismatch outside the verifier. */
    r = good_result(false);
    cf_ear_appraise(r, true, &v, &st);
    T_EQ(v.v[CF_EAR_INSTANCE_IDENTITY], CF_AR4SI_UNTRUSTWORTHY_INSTANCE);
    T_EQ(st, CF_EAR_STATUS_CONTRAINDICATED);
    free(r);
}

static void input(cf_ear_input *in, const cf_verify_result *r, const uint8_t *key, const uint8_t *nonce)
{
    memset(in, 0, sizeof(*in));
    in->result = r;
    in->tee_id = "tee_1";
    in->build_hash = "sha256:2222222222222222222222222222222222222222222222222222222222222222";
    in->tee_public_key = key;
    in->tee_public_key_len = 32;
    in->nonce = nonce;
    in->iat = (int64_t)time(NULL);
    in->ttl = 120;
}

static void test_claims(void)
{
    static const char *const top[] = {"eat_profile", "iat", "exp", "ear.verifier-id", "submods",
                                      "coffer.manifest_hash", "coffer.deployment", "coffer.measurement",
                                      "coffer.tee_id", "coffer.build_hash", "eat_nonce", "cnf", NULL};
    cf_verify_result *r = good_result(true);
    cf_key *tee = NULL;
    uint8_t pub[32], nonce[32];
    size_t n = 0;
    cf_ear_input in;
    json_t *c = NULL, *sub, *tv;
    char *nb = NULL, *pb = NULL;
    size_t nkeys = 0;

    T_OK(cf_key_generate(CF_KEY_X25519, &tee));
    T_OK(cf_key_export_public(tee, pub, sizeof(pub), &n));
    memset(nonce, 7, sizeof(nonce));
    input(&in, r, pub, nonce);
    T_OK(cf_ear_claims(&in, &c));
    for (; top[nkeys] != NULL; nkeys++)
        T_ASSERT_MSG(json_object_get(c, top[nkeys]) != NULL, "missing claim %s", top[nkeys]);
    T_EQ(json_object_size(c), nkeys);
    T_STREQ(json_string_value(json_object_get(c, "eat_profile")), "tag:github.com,2023:veraison/ear");
    T_EQ(json_integer_value(json_object_get(c, "exp")) - json_integer_value(json_object_get(c, "iat")), 120);
    T_STREQ(json_string_value(json_object_get(json_object_get(c, "ear.verifier-id"), "developer")), "coffer");
    T_ASSERT(strstr(json_string_value(json_object_get(json_object_get(c, "ear.verifier-id"), "build")),
                    COFFER_VERSION) != NULL);
    sub = json_object_get(json_object_get(c, "submods"), "demo");
    T_ASSERT(sub != NULL);
    T_EQ(json_object_size(json_object_get(c, "submods")), 1);
    T_STREQ(json_string_value(json_object_get(sub, "ear.status")), "warning");
    T_STREQ(json_string_value(json_object_get(sub, "ear.appraisal-policy-id")), MANIFEST_HASH);
    tv = json_object_get(sub, "ear.trustworthiness-vector");
    T_EQ(json_object_size(tv), 8);
    T_EQ(json_integer_value(json_object_get(tv, "hardware")), 32);
    T_EQ(json_integer_value(json_object_get(tv, "executables")), 2);
    T_STREQ(json_string_value(json_object_get(c, "coffer.manifest_hash")), MANIFEST_HASH);
    T_STREQ(json_string_value(json_object_get(c, "coffer.measurement")), MEAS);
    T_STREQ(json_string_value(json_object_get(c, "coffer.tee_id")), "tee_1");
    nb = cf_b64url_encode_alloc(nonce, sizeof(nonce));
    pb = cf_b64url_encode_alloc(pub, sizeof(pub));
    T_STREQ(json_string_value(json_object_get(c, "eat_nonce")), nb);
    T_STREQ(json_string_value(json_object_get(json_object_get(json_object_get(c, "cnf"), "jwk"), "x")), pb);
    T_STREQ(json_string_value(json_object_get(json_object_get(json_object_get(c, "cnf"), "jwk"), "kty")), "OKP");
    json_decref(c);
    c = NULL;
    /* Optional members left out; deployment falls back to the result's. */
    in.tee_id = NULL;
    in.build_hash = NULL;
    in.tee_public_key = NULL;
    in.nonce = NULL;
    T_OK(cf_ear_claims(&in, &c));
    T_ASSERT(json_object_get(c, "cnf") == NULL && json_object_get(c, "eat_nonce") == NULL &&
             json_object_get(c, "coffer.tee_id") == NULL);
    T_STREQ(json_string_value(json_object_get(c, "coffer.deployment")), "demo");
    json_decref(c);
    c = NULL;
    in.ttl = 0;
    T_ERR(cf_ear_claims(&in, &c), CF_E_INVAL);
    free(nb);
    free(pb);
    cf_key_free(tee);
    free(r);
}

/* The sample EAR of testdata/ear verifies (it is ES256 without kid or exp), and
 * every claim it carries — except the optional raw evidence — is in ours, with
 * the same trustworthiness-vector members. */
static void test_claims_match_sample(void)
{
    size_t n = 0, pn = 0;
    unsigned char *tok = t_read_file(t_testdata("ear/testJWT.jwt"), &n);
    unsigned char *pk = t_read_file(t_testdata("ear/pkey.json"), &pn);
    cf_key *key = NULL;
    cf_jwt_verify_opts o = {.typ = "JWT", .allow_missing_exp = true, .now = 1700000000};
    json_t *sample = NULL, *ours = NULL, *v, *ssub, *osub;
    cf_verify_result *r = good_result(false);
    cf_ear_input in;
    const char *k;

    while (n > 0 && (tok[n - 1] == '\n' || tok[n - 1] == '\r'))
        n--;
    T_OK(cf_jwk_parse(pk, pn, &key, NULL));
    T_OK(cf_jwt_verify((const char *)tok, n, key, NULL, &o, &sample));
    input(&in, r, NULL, NULL);
    in.tee_public_key = NULL;
    T_OK(cf_ear_claims(&in, &ours));
    json_object_foreach(sample, k, v) {
        if (strcmp(k, "ear.raw-evidence") == 0)
            continue;
        T_ASSERT_MSG(json_object_get(ours, k) != NULL, "sample claim %s missing", k);
    }
    T_ASSERT(json_object_get(json_object_get(ours, "ear.verifier-id"), "build") != NULL);
    ssub = json_object_get(json_object_get(sample, "submods"), "test");
    osub = json_object_get(json_object_get(ours, "submods"), "demo");
    json_object_foreach(ssub, k, v)
        T_ASSERT_MSG(json_object_get(osub, k) != NULL, "sample submod claim %s missing", k);
    json_object_foreach(json_object_get(ssub, "ear.trustworthiness-vector"), k, v)
        T_ASSERT_MSG(json_object_get(json_object_get(osub, "ear.trustworthiness-vector"), k) != NULL,
                     "vector member %s missing", k);
    T_EQ(json_object_size(json_object_get(osub, "ear.trustworthiness-vector")),
         json_object_size(json_object_get(ssub, "ear.trustworthiness-vector")));
    /* Our verifier does not accept a token without kid and exp. */
    {
        cf_jwks *set = NULL;
        json_t *c = NULL;
        T_OK(cf_jwks_new(&set));
        T_OK(cf_jwks_add(set, "sample", key));
        T_FAILS(cf_ear_verify((const char *)tok, n, set, 1700000000, &c));
        cf_jwks_free(set);
    }
    json_decref(sample);
    json_decref(ours);
    cf_key_free(key);
    free(tok);
    free(pk);
    free(r);
}

static void test_sign_verify(void)
{
    cf_verify_result *r = good_result(false);
    cf_key *sk = NULL, *other = NULL, *ed = NULL, *tee = NULL;
    cf_jwks *jwks = NULL, *wrong = NULL, *edset = NULL;
    char kid[CF_KEY_THUMBPRINT_LEN + 1], *tok = NULL, *bad = NULL;
    uint8_t pub[32], nonce[32];
    size_t n = 0;
    cf_ear_input in;
    json_t *c = NULL;
    int64_t now = (int64_t)time(NULL);

    T_OK(cf_key_generate(CF_KEY_P256, &sk));
    T_OK(cf_key_generate(CF_KEY_P256, &other));
    T_OK(cf_key_generate(CF_KEY_ED25519, &ed));
    T_OK(cf_key_generate(CF_KEY_X25519, &tee));
    T_OK(cf_key_export_public(tee, pub, sizeof(pub), &n));
    T_OK(cf_random(nonce, sizeof(nonce)));
    T_OK(cf_key_thumbprint(sk, kid));
    T_OK(cf_jwks_new(&jwks));
    T_OK(cf_jwks_add(jwks, kid, sk));
    T_OK(cf_jwks_new(&wrong));
    T_OK(cf_jwks_add(wrong, kid, other));
    T_OK(cf_jwks_new(&edset));
    T_OK(cf_jwks_add(edset, kid, ed));
    input(&in, r, pub, nonce);
    in.iat = now;
    T_OK(cf_ear_sign(sk, kid, &in, &tok));
    /* The served JWKS is what a relying party loads: round-trip it through text. */
    {
        char *text = NULL;
        cf_jwks *served = NULL;
        T_OK(cf_jwks_serialise(jwks, &text));
        T_OK(cf_jwks_parse(text, strlen(text), &served));
        T_OK(cf_ear_verify(tok, strlen(tok), served, now, &c));
        T_STREQ(json_string_value(json_object_get(c, "coffer.deployment")), "demo");
        json_decref(c);
        c = NULL;
        cf_jwks_free(served);
        free(text);
    }
    /* The header names the key and the type. */
    {
        const char *dot = strchr(tok, '.');
        cf_buf h;
        json_t *hj = NULL;
        cf_buf_init(&h, 1024);
        T_OK(cf_b64url_decode(tok, (size_t)(dot - tok), &h));
        T_OK(cf_json_parse_object(h.data, h.len, 1024, &hj));
        T_STREQ(json_string_value(json_object_get(hj, "alg")), "ES256");
        T_STREQ(json_string_value(json_object_get(hj, "typ")), "JWT");
        T_STREQ(json_string_value(json_object_get(hj, "kid")), kid);
        json_decref(hj);
        cf_buf_free(&h);
    }
    T_FAILS(cf_ear_verify(tok, strlen(tok), wrong, now, &c));
    T_ERR(cf_ear_verify(tok, strlen(tok), edset, now, &c), CF_E_UNSUPPORTED);
    T_ERR(cf_ear_verify(tok, strlen(tok), jwks, now + 120 + 60, &c), CF_E_EXPIRED);
    /* A flipped payload character breaks the signature. */
    bad = strdup(tok);
    T_ASSERT(bad != NULL);
    {
        char *p = strchr(bad, '.') + 5;
        *p = *p == 'A' ? 'B' : 'A';
    }
    T_FAILS(cf_ear_verify(bad, strlen(bad), jwks, now, &c));
    free(bad);
    bad = NULL;
    /* Another typ (an access token's) is not an EAR. */
    {
        json_t *claims = NULL;
        T_OK(cf_ear_claims(&in, &claims));
        T_OK(cf_jwt_sign(sk, claims, "at+jwt", kid, &bad));
        T_FAILS(cf_ear_verify(bad, strlen(bad), jwks, now, &c));
        free(bad);
        bad = NULL;
        json_object_set_new(claims, "eat_profile", json_string("tag:example.com,2024:other"));
        T_OK(cf_jwt_sign(sk, claims, "JWT", kid, &bad));
        T_ERR(cf_ear_verify(bad, strlen(bad), jwks, now, &c), CF_E_VERIFY);
        free(bad);
        bad = NULL;
        json_decref(claims);
    }
    /* Only P-256 keys sign EARs. */
    T_ERR(cf_ear_sign(ed, kid, &in, &bad), CF_E_INVAL);
    T_ASSERT(bad == NULL);
    free(tok);
    cf_jwks_free(jwks);
    cf_jwks_free(wrong);
    cf_jwks_free(edset);
    cf_key_free(sk);
    cf_key_free(other);
    cf_key_free(ed);
    cf_key_free(tee);
    free(r);
}

static void test_view_shape(void)
{
    static const char *const att[] = {"id", "timestamp", "deployment_id", "build_hash", "measurements",
                                      "signature_verification", "platform_verification", NULL};
    cf_verify_result *r = good_result(false);
    cf_attest_tee_evidence *tev = calloc(1, sizeof(*tev));
    cf_attest_tee_entry *entry = calloc(1, sizeof(*entry));
    cf_attest_regcheck reg;
    cf_attest_view v;
    cf_manifest *m = NULL;
    uint8_t nonce[32];
    json_t *j = NULL, *a, *checks;
    size_t i;
    const char *mj = "{\"version\":1,\"platforms\":{\"sev-snp\":{\"roots\":[\"amd:milan\"],\"min_tcb\":{\"milan\":"
                     "{\"bootloader\":0,\"tee\":0,\"snp\":0,\"microcode\":0}}}},\"deployments\":[{\"name\":\"demo\","
                     "\"tenant\":\"t1\",\"jobs\":[\"echo\"],\"developer_key\":"
                     "\"F4L2-KeulD8PjwNzy78QLHGrVxORTCycQOMoWyensAk\",\"platforms\":{\"sev-snp\":{\"measurements\":[\""
                     MEAS "\"]}}}]}";

    T_ASSERT(tev != NULL && entry != NULL);
    T_OK(cf_manifest_parse(mj, strlen(mj), &m));
    memcpy(tev->tee_id, "tee_1", 6);
    memcpy(tev->deployment, "demo", 5);
    memcpy(tev->build_hash, "sha256:2222222222222222222222222222222222222222222222222222222222222222", 72);
    memcpy(tev->evidence.platform, "sev-snp", 8);
    tev->evidence.report_len = 4;
    tev->evidence.cert_len = 4;
    memset(tev->public_key, 9, 32);
    memcpy(entry->id, "tee_1", 6);
    memcpy(entry->deployment, "demo", 5);
    memcpy(entry->public_key, tev->public_key, 32);
    entry->has_public_key = true;
    T_OK(cf_hex_decode(MEAS, entry->measurement, 48));
    entry->has_measurement = true;
    cf_attest_registry_check(entry, tev, r, &reg);
    T_EQ(reg.status, CF_CHECK_PASSED);
    memset(nonce, 5, sizeof(nonce));
    memset(&v, 0, sizeof(v));
    v.result = r;
    v.registry = &reg;
    v.deployment = cf_manifest_find_deployment(m, "demo");
    v.id = "0123456789abcdef0123456789abcdef";
    v.at = 1767225600; /* 2026-01-01T00:00:00Z */
    v.deployment_id = "demo";
    v.tee = tev;
    v.nonce = nonce;
    v.token = "x.y.z";
    j = cf_attest_view_to_json(&v);
    T_ASSERT(j != NULL);
    T_EQ(json_object_size(j), 4);
    T_STREQ(json_string_value(json_object_get(j, "status")), "verified");
    a = json_object_get(j, "attestation");
    for (i = 0; att[i] != NULL; i++)
        T_ASSERT_MSG(json_object_get(a, att[i]) != NULL, "missing %s", att[i]);
    T_EQ(json_object_size(a), i);
    T_STREQ(json_string_value(json_object_get(a, "timestamp")), "2026-01-01T00:00:00Z");
    T_EQ(json_object_size(json_object_get(a, "measurements")), 4);
    T_STREQ(json_string_value(json_object_get(json_object_get(a, "measurements"), "MEASUREMENT")), MEAS);
    T_ASSERT(json_is_true(json_object_get(json_object_get(a, "signature_verification"), "signature_valid")));
    T_STREQ(json_string_value(json_object_get(json_object_get(a, "signature_verification"), "developer_id")),
            "F4L2-KeulD8PjwNzy78QLHGrVxORTCycQOMoWyensAk");
    T_EQ(json_integer_value(json_object_get(
             json_object_get(json_object_get(a, "platform_verification"), "tcb"), "snp")),
         22);
    checks = json_object_get(json_object_get(a, "platform_verification"), "checks");
    T_EQ(json_array_size(checks), CF_CHECK__COUNT + 1);
    T_STREQ(json_string_value(json_object_get(json_array_get(checks, CF_CHECK__COUNT), "name")), "registry");
    json_decref(j);

    /* A changed measurement against the registry: failed, and so is the developer signature. */
    entry->measurement[0] ^= 1;
    cf_attest_registry_check(entry, tev, r, &reg);
    T_EQ(reg.status, CF_CHECK_FAILED);
    T_ASSERT(strstr(reg.message, "measurement changed") != NULL);
    j = cf_attest_view_to_json(&v);
    T_STREQ(json_string_value(json_object_get(j, "status")), "failed");
    T_ASSERT(json_is_false(json_object_get(
        json_object_get(json_object_get(j, "attestation"), "signature_verification"), "signature_valid")));
    json_decref(j);
    /* Another key than the registered one. */
    entry->measurement[0] ^= 1;
    entry->public_key[0] ^= 1;
    cf_attest_registry_check(entry, tev, r, &reg);
    T_EQ(reg.status, CF_CHECK_FAILED);
    T_ASSERT(strstr(reg.message, "public key") != NULL);
    /* TCB below the minimum: "Out of date". */
    entry->public_key[0] ^= 1;
    cf_attest_registry_check(entry, tev, r, &reg);
    fail_check(r, CF_CHECK_MIN_TCB);
    j = cf_attest_view_to_json(&v);
    T_STREQ(json_string_value(json_object_get(
                json_object_get(json_object_get(j, "attestation"), "platform_verification"), "tcb_status")),
            "Out of date");
    json_decref(j);
    cf_attest_registry_check(NULL, tev, r, &reg);
    T_EQ(reg.status, CF_CHECK_SKIPPED);
    cf_manifest_free(m);
    free(tev);
    free(entry);
    free(r);
}

static void test_failures_json(void)
{
    cf_verify_result *r = good_result(false);
    cf_attest_regcheck reg = {.status = CF_CHECK_FAILED};
    char *s, first[256];
    json_t *j = NULL;

    s = cf_attest_failures_json(r, NULL);
    T_STREQ(s, "[]");
    free(s);
    cf_attest_first_failure(r, NULL, first, sizeof(first));
    T_STREQ(first, "");
    fail_check(r, CF_CHECK_DEBUG);
    snprintf(reg.message, sizeof(reg.message), "measurement changed");
    cf_attest_first_failure(r, &reg, first, sizeof(first));
    T_STREQ(first, "debug: debug ok");
    s = cf_attest_failures_json(r, &reg);
    T_OK(cf_json_parse(s, strlen(s), 8192, &j));
    T_EQ(json_array_size(j), 2);
    T_STREQ(json_string_value(json_object_get(json_array_get(j, 1), "name")), "registry");
    json_decref(j);
    free(s);
    /* Every check failed with a long message: the list is cut within bounds. */
    for (int i = 0; i < CF_CHECK__COUNT; i++) {
        fail_check(r, (cf_check_id)i);
        memset(r->checks[i].message, '"', sizeof(r->checks[i].message) - 1); /* doubles when escaped */
        r->checks[i].message[sizeof(r->checks[i].message) - 1] = 0;
    }
    s = cf_attest_failures_json(r, &reg);
    T_ASSERT(s != NULL && strlen(s) <= CF_ATTESTSVC_MAX_FAILURES_JSON);
    T_ASSERT(strstr(s, "more\"") != NULL);
    free(s);
    free(r);
}

int main(void)
{
    T_RUN(test_tiers);
    T_RUN(test_appraise_good);
    T_RUN(test_appraise_simulated_is_warning);
    T_RUN(test_every_failed_check_is_contraindicated);
    T_RUN(test_appraise_specific_failures);
    T_RUN(test_claims);
    T_RUN(test_claims_match_sample);
    T_RUN(test_sign_verify);
    T_RUN(test_view_shape);
    T_RUN(test_failures_json);
    return t_done();
}
