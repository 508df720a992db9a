/*
 * libcoffer against a fake platform (fake_platform.h) that speaks the wire
 * contract with real crypto: the happy path through coffer_request, and each
 * thing a platform component can get wrong or lie about, with the error code
 * and the message the application sees. Also unit tests of the individual
 * client-side steps (sdk/sdk.h).
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/log.h"
#include "coffer.h"
#include "fake_platform.h"
#include "sdk/sdk.h"
#include "test.h"

static char alice_key[300];

static int client_full(const char *api_key, const char *key_path, const char *manifest,
                       int max_retries, coffer_client **ret)
{
    coffer_client_options o = {.gateway_url = F.url,
                               .tenant_id = FAKE_TENANT,
                               .api_key = api_key,
                               .manifest_path = manifest ? manifest : F.manifest_path,
                               .attestation_jwks_path = F.jwks_path,
                               .kms_release_key = F.release_b64,
                               .ca_path = F.ca_path,
                               .client_key_path = key_path,
                               .max_retries = max_retries};
    return coffer_client_new(&o, ret);
}

/* alice with her key file: the client most tests use. */
static int client_alice(coffer_client **ret)
{
    return client_full("key-alice", alice_key, NULL, 0, ret);
}

static bool contains(const char *hay, const char *needle)
{
    return hay != NULL && strstr(hay, needle) != NULL;
}

#define T_CONTAINS(hay, needle)                                                          \
    T_ASSERT_MSG(contains((hay), (needle)), "'%s' does not contain '%s'", (hay), (needle))

static int counter(const int *p)
{
    int v;
    fake_lock();
    v = *p;
    fake_unlock();
    return v;
}

/* ---- options ---- */

static void test_options(void)
{
    coffer_client *c = NULL;
    coffer_client_options o;
    char p[300];

    memset(&o, 0, sizeof(o));
    T_EQ(coffer_client_new(&o, &c), COFFER_E_INVALID);
    T_CONTAINS(coffer_client_last_error(NULL), "gateway_url is required");
    T_EQ(coffer_client_last_error_code(NULL), COFFER_E_INVALID);
    T_ASSERT(c == NULL);

    o = (coffer_client_options){.gateway_url = "http://gateway.example:8080",
                                .tenant_id = FAKE_TENANT,
                                .api_key = "key-alice",
                                .manifest_path = F.manifest_path,
                                .attestation_jwks_path = F.jwks_path,
                                .kms_release_key = F.release_b64};
    T_EQ(coffer_client_new(&o, &c), COFFER_E_INVALID);
    T_CONTAINS(coffer_client_last_error(NULL), "must be https://");
    o.gateway_url = "http://127.0.0.1:1";
    T_EQ(coffer_client_new(&o, &c), COFFER_OK);
    T_STREQ(coffer_client_last_error(NULL), "");
    coffer_client_free(c);
    c = NULL;
    o.gateway_url = F.url;

    o.tenant_id = "bad tenant";
    T_EQ(coffer_client_new(&o, &c), COFFER_E_INVALID);
    T_CONTAINS(coffer_client_last_error(NULL), "tenant_id");
    o.tenant_id = "t9";
    T_EQ(coffer_client_new(&o, &c), COFFER_E_CONFIG);
    T_CONTAINS(coffer_client_last_error(NULL), "has no deployment of tenant 't9'");
    o.tenant_id = FAKE_TENANT;

    o.api_key = "has\"quote";
    T_EQ(coffer_client_new(&o, &c), COFFER_E_INVALID);
    o.api_key = "key-alice";

    o.manifest_path = "/nonexistent/manifest.json";
    T_EQ(coffer_client_new(&o, &c), COFFER_E_CONFIG);
    T_CONTAINS(coffer_client_last_error(NULL), "/nonexistent/manifest.json");
    o.manifest_path = NULL;
    T_EQ(coffer_client_new(&o, &c), COFFER_E_INVALID);
    T_CONTAINS(coffer_client_last_error(NULL), "manifest_path is required");
    o.manifest_path = F.manifest_path;

    /* The JWKS is pinned and must hold ES256 keys only. */
    o.attestation_jwks_path = NULL;
    T_EQ(coffer_client_new(&o, &c), COFFER_E_INVALID);
    FAKE_PATH(p, "%s/ed-jwks.json", F.dir);
    {
        cf_jwks *set = NULL;
        char *js = NULL;
        T_OK(cf_jwks_new(&set));
        T_OK(cf_jwks_add(set, "iam", F.iam_key));
        T_OK(cf_jwks_serialise(set, &js));
        cf_jwks_free(set);
        T_OK(fake_write(p, js, strlen(js), 0644));
        free(js);
    }
    o.attestation_jwks_path = p;
    T_EQ(coffer_client_new(&o, &c), COFFER_E_CONFIG);
    T_CONTAINS(coffer_client_last_error(NULL), "not a P-256 (ES256) key");
    o.attestation_jwks_path = F.jwks_path;

    /* Release key: exactly one form, a valid X25519 key. */
    o.kms_release_key_path = F.jwks_path;
    T_EQ(coffer_client_new(&o, &c), COFFER_E_INVALID);
    T_CONTAINS(coffer_client_last_error(NULL), "exactly one of kms_release_key");
    o.kms_release_key_path = NULL;
    o.kms_release_key = "AAAA";
    T_EQ(coffer_client_new(&o, &c), COFFER_E_CONFIG);
    T_CONTAINS(coffer_client_last_error(NULL), "32 bytes");
    o.kms_release_key = NULL;
    FAKE_PATH(p, "%s/release.txt", F.dir);
    {
        char line[80];
        FAKE_PATH(line, "%s\n", F.release_b64);
        T_OK(fake_write(p, line, strlen(line), 0644));
    }
    o.kms_release_key_path = p;
    T_EQ(coffer_client_new(&o, &c), COFFER_OK);
    coffer_client_free(c);
    c = NULL;
    o.kms_release_key_path = NULL;
    o.kms_release_key = F.release_b64;

    o.max_retries = CF_SDK_MAX_RETRIES + 1;
    T_EQ(coffer_client_new(&o, &c), COFFER_E_INVALID);
    o.max_retries = 0;
    o.timeout_ms = CF_SDK_MAX_TIMEOUT_MS + 1;
    T_EQ(coffer_client_new(&o, &c), COFFER_E_INVALID);
    T_ASSERT(c == NULL);

    T_STREQ(coffer_version(), COFFER_VERSION);
    T_STREQ(coffer_error_name(COFFER_E_ATTESTATION), "COFFER_E_ATTESTATION");
    T_STREQ(coffer_strerror(COFFER_E_TEE_REVOKED), "TEE quarantined or revoked");
    T_STREQ(coffer_strerror(12345), "unknown error");
}

/* Runs before the fake platform's threads exist: setenv is not thread-safe. */
static void test_options_from_env(void)
{
    coffer_client_options o;

    memset(&o, 0, sizeof(o));
    o.ca_path = "keep-me";
    T_OK(setenv("COFFER_GATEWAY_URL", "https://gw.example", 1));
    T_OK(setenv("COFFER_TENANT_ID", "acme", 1));
    T_OK(setenv("COFFER_KMS_RELEASE_KEY", "abc", 1));
    T_OK(setenv("COFFER_TIMEOUT_MS", "1500", 1));
    T_OK(setenv("COFFER_MAX_RETRIES", "-1", 1));
    T_EQ(coffer_client_options_from_env(&o), COFFER_OK);
    T_STREQ(o.gateway_url, "https://gw.example");
    T_STREQ(o.tenant_id, "acme");
    T_STREQ(o.kms_release_key, "abc");
    T_STREQ(o.ca_path, "keep-me"); /* unset variable: field untouched */
    T_ASSERT(o.api_key == NULL);
    T_EQ(o.timeout_ms, 1500);
    T_EQ(o.max_retries, -1);
    T_OK(setenv("COFFER_TIMEOUT_MS", "soon", 1));
    T_EQ(coffer_client_options_from_env(&o), COFFER_E_INVALID);
    T_CONTAINS(coffer_client_last_error(NULL), "COFFER_TIMEOUT_MS");
    for (const char *const *v = (const char *const[]){"COFFER_GATEWAY_URL", "COFFER_TENANT_ID",
                                                       "COFFER_KMS_RELEASE_KEY",
                                                       "COFFER_TIMEOUT_MS", "COFFER_MAX_RETRIES",
                                                       NULL};
         *v; v++)
        T_OK(unsetenv(*v));
}

/* ---- unit tests of single steps ---- */

static void test_step_helpers(void)
{
    json_t *v, *claims = NULL;
    int64_t t = 0;
    char out[64];

    v = json_integer(1700000000);
    T_OK(cf_sdk_parse_time(v, &t));
    T_EQ(t, 1700000000);
    json_decref(v);
    v = json_string("2023-11-14T22:13:20Z");
    T_OK(cf_sdk_parse_time(v, &t));
    T_EQ(t, 1700000000);
    json_decref(v);
    v = json_string("2023-11-14T22:13:20.250Z");
    T_OK(cf_sdk_parse_time(v, &t));
    T_EQ(t, 1700000000);
    json_decref(v);
    v = json_string("2023-11-14T22:13:20+01:00");
    T_FAILS(cf_sdk_parse_time(v, &t));
    json_decref(v);
    v = json_integer(-5);
    T_FAILS(cf_sdk_parse_time(v, &t));
    json_decref(v);

    T_OK(cf_sdk_pct_encode("a b/c%", out, sizeof(out)));
    T_STREQ(out, "a%20b%2Fc%25");
    T_ERR(cf_sdk_pct_encode("abcdef", out, 4), CF_E_TOO_LARGE);
    T_ASSERT(cf_sdk_name_ok("sha256", 128));
    T_ASSERT(!cf_sdk_name_ok("../x", 128));
    T_ASSERT(!cf_sdk_name_ok("", 128));
    T_ASSERT(cf_sdk_id_ok("tee_1", 128));
    T_ASSERT(!cf_sdk_id_ok("tee 1", 128));
    T_ASSERT(!cf_sdk_id_ok("a/b", 128));

    /* Our own token's payload is read without verification. */
    T_OK(cf_sdk_jwt_payload("eyJhbGciOiJub25lIn0.eyJleHAiOjQyfQ.c2ln", &claims));
    T_EQ(json_integer_value(json_object_get(claims, "exp")), 42);
    json_decref(claims);
    claims = NULL;
    T_FAILS(cf_sdk_jwt_payload("eyJhbGciOiJub25lIn0.eyJleHAiOjQyfQ", &claims));
    T_FAILS(cf_sdk_jwt_payload("a.b.c.d", &claims));
    T_FAILS(cf_sdk_jwt_payload("a.!!.c", &claims));
    T_ASSERT(claims == NULL);
}

/* The default key path (XDG Base Directory spec); main sets XDG_CONFIG_HOME. */
static void test_default_key_path(void)
{
    char p[CF_SDK_MAX_PATH + 1], want[600];

    T_OK(cf_sdk_default_key_path("t1", "alice", p, sizeof(p)));
    FAKE_PATH(want, "%s/xdg/coffer/client-t1-alice.key", F.dir);
    T_STREQ(p, want);
    T_OK(cf_sdk_default_key_path("t1", "svc:x", p, sizeof(p)));
    FAKE_PATH(want, "%s/xdg/coffer/client-t1-svc%%3Ax.key", F.dir);
    T_STREQ(p, want);
    T_ERR(cf_sdk_default_key_path("t1", "alice", p, 10), CF_E_TOO_LARGE);
}

static cf_http_response fake_answer(long status, const char *json, const char *retry_after)
{
    cf_http_response r;
    memset(&r, 0, sizeof(r));
    r.status = status;
    cf_buf_init(&r.body, 4096);
    if (json != NULL && cf_buf_put_str(&r.body, json) != 0)
        abort();
    if (retry_after != NULL)
        memcpy(r.retry_after, retry_after, strlen(retry_after) + 1);
    return r;
}

/* DESIGN.md §6 errors to public codes (the mapping table of docs/SDK.md). */
static void test_http_error_mapping(void)
{
    static const struct {
        long status;
        const char *body;
        int want;
    } cases[] = {
        {401, "{\"error\":{\"code\":\"expired\",\"message\":\"token expired\"}}", COFFER_E_AUTH},
        {403, "{\"error\":{\"code\":\"forbidden\",\"message\":\"no permission\"}}",
         COFFER_E_FORBIDDEN},
        {403, "{\"error\":{\"code\":\"revoked\",\"message\":\"TEE keys revoked\"}}",
         COFFER_E_TEE_REVOKED},
        {409, "{\"error\":{\"code\":\"quarantined\",\"message\":\"q\"}}", COFFER_E_TEE_REVOKED},
        {409, "{\"error\":{\"code\":\"conflict\",\"message\":\"TEE not active\"}}",
         COFFER_E_TEE_REVOKED},
        {410, "{\"error\":{\"code\":\"gone\"}}", COFFER_E_TEE_REVOKED},
        {410, "{\"error\":{\"code\":\"expired\",\"message\":\"OTK expired\"}}",
         COFFER_E_KEY_EXPIRED},
        {400, "{\"error\":{\"code\":\"key_expired\"}}", COFFER_E_KEY_EXPIRED},
        {429, "{\"error\":{\"code\":\"rate_limited\"}}", COFFER_E_RATE_LIMITED},
        {502, NULL, COFFER_E_UNAVAILABLE},
        {503, "{\"error\":{\"code\":\"unavailable\"}}", COFFER_E_UNAVAILABLE},
        {504, "not json", COFFER_E_UNAVAILABLE},
        {404, "{\"error\":{\"code\":\"not_found\"}}", COFFER_E_NOT_FOUND},
        {413, NULL, COFFER_E_TOO_LARGE},
        {400, "{\"error\":{\"code\":\"malformed\"}}", COFFER_E_PROTOCOL},
        {418, "{}", COFFER_E_PROTOCOL},
    };
    for (size_t i = 0; i < CF_ARRAY_LEN(cases); i++) {
        cf_http_response r = fake_answer(cases[i].status, cases[i].body, NULL);
        int rc;
        cf_sdk_begin();
        rc = cf_sdk_http_error(&r, "step");
        T_ASSERT(rc < 0);
        T_ASSERT_MSG(cf_sdk_classify(rc) == cases[i].want, "case %zu: %s", i,
                     coffer_error_name(cf_sdk_classify(rc)));
        T_EQ(cf_sdk_finish(rc), cases[i].want);
        cf_http_response_free(&r);
    }
    /* The service's message reaches the application; Retry-After is kept. */
    {
        cf_http_response r = fake_answer(
            429, "{\"error\":{\"code\":\"rate_limited\",\"message\":\"slow down\"}}", "7");
        cf_sdk_begin();
        T_EQ(cf_sdk_finish(cf_sdk_http_error(&r, "session")), COFFER_E_RATE_LIMITED);
        T_CONTAINS(coffer_client_last_error(NULL), "slow down");
        T_CONTAINS(coffer_client_last_error(NULL), "retry after 7 s");
        T_EQ(coffer_client_last_retry_after(NULL), 7);
        cf_http_response_free(&r);
    }
    /* An unclassified failure falls back to the generic mapping, not to a stale one. */
    cf_sdk_begin();
    (void)cf_sdk_fail(CF_E_PARSE, COFFER_E_ATTESTATION, "old");
    (void)cf_err_set(CF_E_PARSE, "something else");
    T_EQ(cf_sdk_classify(CF_E_PARSE), COFFER_E_PROTOCOL);
}

/* The check cf_sdk_verify_ear names for a token ("ok" if it passes). */
static const char *ear_check(const cf_jwks *jwks, const char *tok, const char *deployment,
                             const uint8_t tee[32], const uint8_t nonce[32], int64_t now)
{
    int64_t exp = 0;
    int rc;

    cf_sdk_begin();
    rc = cf_sdk_verify_ear(jwks, F.manifest_hash, tok, deployment, tee, nonce, now, false, &exp);
    if (rc == 0)
        return exp > now ? "ok" : "bad exp";
    if (cf_sdk_finish(rc) != COFFER_E_ATTESTATION)
        return "not an attestation error";
    return coffer_client_last_failed_check(NULL);
}

/* EAR checks on crafted tokens, without a platform. */
static void test_step_ear(void)
{
    cf_jwks *jwks = NULL;
    uint8_t tee[32], nonce[32];
    fake_knobs k;
    char *tok = NULL;
    int64_t now = (int64_t)time(NULL);
    json_t *claims;

    T_OK(cf_jwks_new(&jwks));
    T_OK(cf_jwks_add(jwks, FAKE_EAR_KID, F.ear_key));
    memcpy(tee, F.tees[0].pub, 32);
    T_OK(cf_random(nonce, 32));

    memset(&k, 0, sizeof(k));
    T_OK(fake_ear(&k, tee, nonce, "demo", &tok));
    T_STREQ(ear_check(jwks, tok, "demo", tee, nonce, now), "ok");
    /* Another deployment's appraisal is not this one's. */
    T_STREQ(ear_check(jwks, tok, "other", tee, nonce, now), "ear_status");
    /* Past its exp (and the leeway). */
    T_STREQ(ear_check(jwks, tok, "demo", tee, nonce, now + 400), "ear_expired");
    /* Another TEE key, another nonce. */
    tee[5] ^= 1;
    T_STREQ(ear_check(jwks, tok, "demo", tee, nonce, now), "ear_key");
    tee[5] ^= 1;
    nonce[0] ^= 1;
    T_STREQ(ear_check(jwks, tok, "demo", tee, nonce, now), "ear_nonce");
    nonce[0] ^= 1;
    /* "warning" (what the service says of a simulated TEE) passes only when the
     * client's own verification trusted a simulated root. */
    {
        char *wtok = NULL;
        int64_t exp = 0;
        int rc;
        k.ear_status = "warning";
        T_OK(fake_ear(&k, tee, nonce, "demo", &wtok));
        k.ear_status = NULL;
        T_STREQ(ear_check(jwks, wtok, "demo", tee, nonce, now), "ear_status");
        cf_sdk_begin();
        rc = cf_sdk_verify_ear(jwks, F.manifest_hash, wtok, "demo", tee, nonce, now, true, &exp);
        (void)cf_sdk_finish(rc);
        T_OK(rc);
        free(wtok);
    }
    /* A tampered token. */
    tok[strlen(tok) - 3] = tok[strlen(tok) - 3] == 'A' ? 'B' : 'A';
    T_STREQ(ear_check(jwks, tok, "demo", tee, nonce, now), "ear_signature");
    free(tok);
    tok = NULL;
    /* A token of another type is not an EAR. */
    claims = json_pack("{s:I,s:s}", "exp", (json_int_t)now + 60, "eat_nonce", "x");
    T_OK(cf_jwt_sign(F.ear_key, claims, "at+jwt", FAKE_EAR_KID, &tok));
    json_decref(claims);
    T_STREQ(ear_check(jwks, tok, "demo", tee, nonce, now), "ear_format");
    free(tok);
    tok = NULL;
    /* No exp at all. */
    claims = json_pack("{s:s}", "eat_nonce", "x");
    T_OK(cf_jwt_sign(F.ear_key, claims, "JWT", FAKE_EAR_KID, &tok));
    json_decref(claims);
    T_STREQ(ear_check(jwks, tok, "demo", tee, nonce, now), "ear_format");
    free(tok);
    cf_jwks_free(jwks);
}

/* EAR tokens made independently (Python `cryptography`, the fuzz seeds of
 * fuzz/corpus/fuzz_sdk_answers/): the SDK's reading of the format is not only
 * its own. Key, TEE key, nonce, manifest hash and time as in
 * fuzz/sdk/sdk_answers.c. */
static void test_step_ear_interop(void)
{
    static const uint8_t scalar[32] = "coffer fuzz EAR key ............";
    static const uint8_t tee[32] = "coffer fuzz TEE public key .....";
    static const uint8_t nonce[32] = "coffer fuzz session nonce ......";
    static const char *const seeds[][2] = {
        {"ear-ok", "ok"},
        {"ear-otherhash", "ear_manifest_hash"},
        {"ear-warning", "ear_status"},
        {"ear-expired", "ear_expired"},
        {"ear-typ", "ear_format"},
    };
    const char *mh = "sha256:00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
    cf_jwks *jwks = NULL;
    cf_key *k = NULL;

    T_OK(cf_key_from_private(CF_KEY_P256, scalar, 32, &k));
    T_OK(cf_jwks_new(&jwks));
    T_OK(cf_jwks_add(jwks, "fuzz", k));
    cf_key_free(k);
    for (size_t i = 0; i < CF_ARRAY_LEN(seeds); i++) {
        char path[512], *tok;
        size_t n;
        int64_t exp = 0;
        int rc;
        const char *got;
        unsigned char *d;

        FAKE_PATH(path, "%s/fuzz/corpus/fuzz_sdk_answers/%s", COFFER_SOURCE_DIR, seeds[i][0]);
        d = t_read_file(path, &n);
        T_ASSERT(n > 1 && d[0] == 5);
        tok = (char *)d + 1;
        cf_sdk_begin();
        rc = cf_sdk_verify_ear(jwks, mh, tok, "demo", tee, nonce, 1700000000, false, &exp);
        got = rc == 0 ? "ok" : (cf_sdk_finish(rc), coffer_client_last_failed_check(NULL));
        free(d);
        T_ASSERT_MSG(strcmp(got, seeds[i][1]) == 0, "%s: %s, expected %s", seeds[i][0], got,
                     seeds[i][1]);
    }
    cf_jwks_free(jwks);
}

/* The OTK opens only with the pinned release key as sender, for this id and TEE. */
static void test_step_otk_open(void)
{
    cf_hpke_key *client = NULL;
    cf_hpke_params hp = {.suite = CF_HPKE_SUITE_COFFER,
                         .mode = CF_HPKE_MODE_AUTH,
                         .info = (const uint8_t *)"coffer/v1 otk",
                         .info_len = 13};
    const char *aad = "coffer/v1 otk|otk_1|tee_a";
    uint8_t otk[32], got[32], enc[CF_HPKE_MAX_ENC];
    size_t enc_len = 0;
    cf_buf ct;

    cf_buf_init(&ct, 64);
    T_OK(cf_hpke_key_generate(CF_HPKE_KEM_X25519_SHA256, &client));
    T_OK(cf_random(otk, 32));
    T_OK(cf_hpke_seal_once(&hp, client, F.release, (const uint8_t *)aad, strlen(aad), otk, 32, enc,
                           &enc_len, &ct));
    T_OK(cf_sdk_otk_open(client, F.release, "otk_1", "tee_a", enc, enc_len, ct.data, ct.len, got));
    T_MEMEQ(got, otk, 32);
    cf_sdk_begin();
    T_ERR(cf_sdk_otk_open(client, F.release_other, "otk_1", "tee_a", enc, enc_len, ct.data,
                          ct.len, got),
          CF_E_DECRYPT);
    T_EQ(cf_sdk_finish(CF_E_DECRYPT), COFFER_E_INTEGRITY);
    T_CONTAINS(coffer_client_last_error(NULL), "not sealed by the pinned KMS release key");
    T_ERR(cf_sdk_otk_open(client, F.release, "otk_1", "tee_b", enc, enc_len, ct.data, ct.len, got),
          CF_E_DECRYPT);
    T_ERR(cf_sdk_otk_open(client, F.release, "otk_2", "tee_a", enc, enc_len, ct.data, ct.len, got),
          CF_E_DECRYPT);
    cf_hpke_key_free(client);
    cf_buf_free(&ct);
}

/* ---- the flow through coffer_request ---- */

static void test_happy_path(void)
{
    coffer_client *c = NULL, *c2 = NULL;
    coffer_result *r = NULL;
    uint8_t digest[32];
    struct stat st;
    const char *msg = "hello, enclave";

    fake_reset();
    T_EQ(client_alice(&c), COFFER_OK);
    /* No traffic before the first request. */
    T_EQ(counter(&F.n_token), 0);
    T_EQ(coffer_request(c, "echo", msg, strlen(msg), &r), COFFER_OK);
    T_EQ(coffer_result_size(r), strlen(msg));
    T_MEMEQ(coffer_result_data(r), msg, strlen(msg));
    T_EQ(coffer_result_status(r), 0);
    T_STREQ(coffer_result_tee_id(r), "tee_a");
    T_EQ(strlen(coffer_result_request_id(r)), 32);
    coffer_result_free(r);
    r = NULL;

    /* The client key was generated, stored 0600 and registered once; the first
     * token had no cnf, so a second one was fetched. */
    T_OK(stat(alice_key, &st));
    T_EQ(st.st_mode & 0777, 0600);
    T_EQ(counter(&F.n_register), 1);
    T_EQ(counter(&F.n_token), 2);
    T_EQ(counter(&F.n_session), 1);

    /* Second request: cached token and TEE; a fresh OTK. */
    T_EQ(coffer_request(c, "sha256", msg, strlen(msg), &r), COFFER_OK);
    T_OK(cf_sha256(msg, strlen(msg), digest));
    T_EQ(coffer_result_size(r), 32);
    T_MEMEQ(coffer_result_data(r), digest, 32);
    coffer_result_free(r);
    r = NULL;
    T_EQ(counter(&F.n_session), 2); /* another job: another session */
    T_EQ(coffer_request(c, "echo", "", 0, &r), COFFER_OK);
    T_EQ(coffer_result_size(r), 0);
    T_ASSERT(coffer_result_data(r) != NULL);
    coffer_result_free(r);
    r = NULL;
    T_EQ(counter(&F.n_session), 2); /* echo's TEE was cached */
    T_EQ(counter(&F.n_token), 2);
    T_EQ(counter(&F.n_otk), 3);

    /* A new client reuses the key file: no second registration. */
    T_EQ(client_alice(&c2), COFFER_OK);
    T_EQ(coffer_request(c2, "echo", "x", 1, &r), COFFER_OK);
    T_EQ(counter(&F.n_register), 1);
    T_EQ(counter(&F.n_token), 3);
    coffer_result_free(r);
    coffer_client_free(c2);
    coffer_client_free(c);
}

static void test_default_key_file(void)
{
    coffer_client *c = NULL;
    coffer_result *r = NULL;
    char p[400];
    struct stat st;

    fake_reset();
    T_EQ(client_full("key-carol", NULL, NULL, 0, &c), COFFER_OK);
    T_EQ(coffer_request(c, "echo", "hi", 2, &r), COFFER_OK);
    FAKE_PATH(p, "%s/xdg/coffer/client-t1-carol.key", F.dir);
    T_OK(stat(p, &st));
    T_EQ(st.st_mode & 0777, 0600);
    FAKE_PATH(p, "%s/xdg/coffer", F.dir);
    T_OK(stat(p, &st));
    T_EQ(st.st_mode & 0777, 0700);
    coffer_result_free(r);
    coffer_client_free(c);
}

static void test_client_key_problems(void)
{
    coffer_client *c = NULL;
    coffer_result *r = NULL;
    cf_hpke_key *k = NULL;
    char p[300];
    size_t pl;

    fake_reset();
    /* bob's registered key is one this machine never had. */
    T_OK(cf_hpke_key_generate(CF_HPKE_KEM_X25519_SHA256, &k));
    fake_lock();
    F.princ[1].has_key = true;
    memcpy(F.princ[1].key, cf_hpke_key_pub(k, &pl), 32);
    fake_unlock();
    cf_hpke_key_free(k);

    /* No key file: refused, and no key is generated behind the user's back. */
    FAKE_PATH(p, "%s/bob.key", F.dir);
    T_EQ(client_full("key-bob", p, NULL, 0, &c), COFFER_OK);
    T_EQ(coffer_request(c, "echo", "x", 1, &r), COFFER_E_CLIENT_KEY);
    T_CONTAINS(coffer_client_last_error(c), "already has a registered client key");
    T_ASSERT(access(p, F_OK) != 0);
    T_EQ(counter(&F.n_register), 0);
    coffer_client_free(c);
    c = NULL;

    /* A key file that is not the registered key. */
    k = NULL;
    T_OK(cf_sdk_key_create(p, &k));
    cf_hpke_key_free(k);
    k = NULL;
    T_EQ(client_full("key-bob", p, NULL, 0, &c), COFFER_OK);
    T_EQ(coffer_request(c, "echo", "x", 1, &r), COFFER_E_CLIENT_KEY);
    T_CONTAINS(coffer_client_last_error(c),
               "client key on file does not match the key registered for this principal");
    T_CONTAINS(coffer_client_last_error(c), p);
    T_EQ(counter(&F.n_register), 0);
    T_ASSERT(r == NULL);
    coffer_client_free(c);
    c = NULL;

    /* A key file others can read is not used. */
    T_OK(chmod(alice_key, 0644));
    T_EQ(client_alice(&c), COFFER_OK);
    T_EQ(coffer_request(c, "echo", "x", 1, &r), COFFER_E_CLIENT_KEY);
    T_CONTAINS(coffer_client_last_error(c), "accessible by group or others (mode 0644)");
    T_OK(chmod(alice_key, 0600));
    T_EQ(coffer_request(c, "echo", "x", 1, &r), COFFER_OK);
    coffer_result_free(r);
    r = NULL;
    coffer_client_free(c);
    c = NULL;

    /* Garbage in the key file. */
    FAKE_PATH(p, "%s/garbage.key", F.dir);
    T_OK(fake_write(p, "not a key", 9, 0600));
    cf_sdk_begin();
    {
        int rc = cf_sdk_key_load(p, &k);
        T_ASSERT(rc < 0 && rc != CF_E_NOT_FOUND);
        T_EQ(cf_sdk_classify(rc), COFFER_E_CLIENT_KEY);
    }
    T_ASSERT(k == NULL);
    FAKE_PATH(p, "%s/none.key", F.dir);
    T_ERR(cf_sdk_key_load(p, &k), CF_E_NOT_FOUND);
}

static void test_api_key_rejected(void)
{
    coffer_client *c = NULL;
    coffer_result *r = NULL;

    fake_reset();
    T_EQ(client_full("key-mallory", alice_key, NULL, 0, &c), COFFER_OK);
    T_EQ(coffer_request(c, "echo", "x", 1, &r), COFFER_E_AUTH);
    T_CONTAINS(coffer_client_last_error(c), "the API key was rejected for tenant 't1'");
    T_CONTAINS(coffer_client_last_error(c), "unknown API key");
    T_EQ(counter(&F.n_token), 1); /* not retried */
    coffer_client_free(c);
}

/* One misbehaviour of the platform -> COFFER_E_ATTESTATION naming `check`. */
static void expect_attestation_failure(const char *manifest, const char *check, const char *text)
{
    coffer_client *c = NULL;
    coffer_result *r = NULL;

    T_EQ(client_full("key-alice", alice_key, manifest, 0, &c), COFFER_OK);
    T_EQ(coffer_request(c, "echo", "secret", 6, &r), COFFER_E_ATTESTATION);
    T_ASSERT(r == NULL);
    T_STREQ(coffer_client_last_failed_check(c), check);
    T_CONTAINS(coffer_client_last_error(c), "attestation failed: ");
    T_CONTAINS(coffer_client_last_error(c), text);
    /* Nothing was sent for an unverified TEE. */
    T_EQ(counter(&F.n_otk), 0);
    T_EQ(counter(&F.n_job), 0);
    coffer_client_free(c);
}

#define WITH_KNOB(stmt)                                                                  \
    do {                                                                                 \
        fake_reset();                                                                    \
        fake_lock();                                                                     \
        stmt;                                                                            \
        fake_unlock();                                                                   \
    } while (0)

static void test_attestation_failures(void)
{
    /* Evidence (checked against the client's own manifest). */
    WITH_KNOB(F.k.debug = true);
    expect_attestation_failure(NULL, "debug",
                               "debug: policy has DEBUG set: debugging is not allowed");
    WITH_KNOB(F.k.wrong_measurement = true);
    expect_attestation_failure(NULL, "measurement", "measurement");
    WITH_KNOB((void)0);
    expect_attestation_failure(F.manifest_prod_path, "chain",
                               "report signed by the simulated root, which this manifest does "
                               "not trust");
    WITH_KNOB(F.k.deployment = "other");
    expect_attestation_failure(NULL, "deployment", "deployment");
    WITH_KNOB(F.k.evidence_other_nonce = true);
    expect_attestation_failure(NULL, "binding", "report_data does not bind key and nonce");

    /* The attestation service's result (checked against the pinned JWKS). */
    WITH_KNOB(F.k.ear_other_key = true);
    expect_attestation_failure(NULL, "ear_signature", "not signed by the pinned");
    WITH_KNOB(F.k.ear_other_hash = true);
    {
        char want[400];
        FAKE_PATH(want,
                  "attestation failed: attestation service runs manifest sha256:%064d, client "
                  "expects %s",
                  0, F.manifest_hash);
        expect_attestation_failure(NULL, "ear_manifest_hash", want);
    }
    WITH_KNOB(F.k.ear_other_nonce = true);
    expect_attestation_failure(NULL, "ear_nonce", "another nonce");
    WITH_KNOB(F.k.ear_other_cnf = true);
    expect_attestation_failure(NULL, "ear_key", "another TEE key");
    WITH_KNOB(F.k.ear_status = "contraindicated");
    expect_attestation_failure(NULL, "ear_status", "'contraindicated', not 'affirming'");
    WITH_KNOB(F.k.ear_ttl = -100);
    expect_attestation_failure(NULL, "ear_expired", "not valid now");
}

static void test_otk_not_from_release_key(void)
{
    coffer_client *c = NULL;
    coffer_result *r = NULL;

    WITH_KNOB(F.k.otk_other_release = true);
    T_EQ(client_alice(&c), COFFER_OK);
    T_EQ(coffer_request(c, "echo", "secret", 6, &r), COFFER_E_INTEGRITY);
    T_CONTAINS(coffer_client_last_error(c), "not sealed by the pinned KMS release key");
    T_EQ(counter(&F.n_job), 0); /* no envelope was sent */
    coffer_client_free(c);
}

static void test_tampered_response(void)
{
    coffer_client *c = NULL;
    coffer_result *r = NULL;

    WITH_KNOB(F.k.tamper_response = true);
    T_EQ(client_alice(&c), COFFER_OK);
    T_EQ(coffer_request(c, "echo", "secret", 6, &r), COFFER_E_INTEGRITY);
    T_ASSERT(r == NULL);
    T_CONTAINS(coffer_client_last_error(c), "the answer failed authentication");
    /* That TEE is not reused without being verified again. */
    fake_lock();
    F.k.tamper_response = false;
    fake_unlock();
    T_EQ(coffer_request(c, "echo", "secret", 6, &r), COFFER_OK);
    T_EQ(counter(&F.n_session), 2);
    coffer_result_free(r);
    coffer_client_free(c);
}

static void test_quarantine_retry(void)
{
    coffer_client *c = NULL;
    coffer_result *r = NULL;

    fake_reset();
    T_EQ(client_alice(&c), COFFER_OK);
    T_EQ(coffer_request(c, "echo", "a", 1, &r), COFFER_OK);
    T_STREQ(coffer_result_tee_id(r), "tee_a");
    coffer_result_free(r);
    r = NULL;

    /* tee_a (cached) is quarantined: the job answers 409; one new session on another TEE. */
    fake_lock();
    F.tees[0].quarantined = Q_AT_JOB;
    fake_unlock();
    T_EQ(coffer_request(c, "echo", "b", 1, &r), COFFER_OK);
    T_STREQ(coffer_result_tee_id(r), "tee_b");
    T_EQ(counter(&F.n_session), 2);
    coffer_result_free(r);
    r = NULL;
    /* tee_b is cached now. */
    T_EQ(coffer_request(c, "echo", "c", 1, &r), COFFER_OK);
    T_STREQ(coffer_result_tee_id(r), "tee_b");
    T_EQ(counter(&F.n_session), 2);
    coffer_result_free(r);
    r = NULL;

    /* Quarantined at the KMS (OTK refused): the same. */
    fake_lock();
    F.tees[1].quarantined = Q_AT_OTK;
    fake_unlock();
    T_EQ(coffer_request(c, "echo", "d", 1, &r), COFFER_OK);
    T_STREQ(coffer_result_tee_id(r), "tee_c");
    coffer_result_free(r);
    r = NULL;

    /* The gateway keeps offering the quarantined TEE: one retry, then a clear error. */
    fake_lock();
    F.tees[2].quarantined = Q_AT_JOB;
    F.k.pick = 2;
    fake_unlock();
    T_EQ(coffer_request(c, "echo", "e", 1, &r), COFFER_E_TEE_REVOKED);
    T_CONTAINS(coffer_client_last_error(c), "offered TEE tee_c again");
    T_ASSERT(r == NULL);
    coffer_client_free(c);
    c = NULL;

    /* Retries disabled. */
    fake_reset();
    T_EQ(client_full("key-alice", alice_key, NULL, -1, &c), COFFER_OK);
    fake_lock();
    F.tees[0].quarantined = Q_AT_JOB;
    F.k.pick = 0;
    fake_unlock();
    T_EQ(coffer_request(c, "echo", "f", 1, &r), COFFER_E_TEE_REVOKED);
    T_CONTAINS(coffer_client_last_error(c), "TEE tee_a");
    T_CONTAINS(coffer_client_last_error(c), "HTTP 409 quarantined");
    T_EQ(counter(&F.n_session), 1);
    coffer_client_free(c);
}

static void test_rate_limited(void)
{
    coffer_client *c = NULL;
    coffer_result *r = NULL;

    WITH_KNOB(F.k.rate_limit = true);
    T_EQ(client_alice(&c), COFFER_OK);
    T_EQ(coffer_request(c, "echo", "x", 1, &r), COFFER_E_RATE_LIMITED);
    T_EQ(coffer_client_last_retry_after(c), 7);
    T_CONTAINS(coffer_client_last_error(c), "tenant t1 is over its rate");
    T_EQ(counter(&F.n_session), 1); /* reported, not retried */
    /* Another failure clears it. */
    T_EQ(coffer_request(c, "nope", "x", 1, &r), COFFER_E_NOT_FOUND);
    T_EQ(coffer_client_last_retry_after(c), -1);
    coffer_client_free(c);
}

static void test_job_failed(void)
{
    coffer_client *c = NULL;
    coffer_result *r = NULL;

    fake_reset();
    T_EQ(client_alice(&c), COFFER_OK);
    T_EQ(coffer_request(c, "fail", "x", 1, &r), COFFER_E_JOB_FAILED);
    T_ASSERT(r != NULL);
    T_EQ(coffer_result_status(r), COFFER_JOB_FAILED);
    T_EQ(coffer_result_size(r), 4);
    T_MEMEQ(coffer_result_data(r), "boom", 4);
    T_CONTAINS(coffer_client_last_error(c), "job 'fail' failed on TEE tee_a");
    T_CONTAINS(coffer_client_last_error(c), "status 1");
    coffer_result_free(r);
    coffer_client_free(c);
}

static void test_token_refetched_once(void)
{
    coffer_client *c = NULL;
    coffer_result *r = NULL;

    fake_reset();
    T_EQ(client_alice(&c), COFFER_OK);
    T_EQ(coffer_request(c, "echo", "x", 1, &r), COFFER_OK);
    coffer_result_free(r);
    r = NULL;
    T_EQ(counter(&F.n_token), 1);
    fake_lock();
    F.k.job_401 = 1;
    fake_unlock();
    T_EQ(coffer_request(c, "echo", "y", 1, &r), COFFER_OK);
    T_EQ(counter(&F.n_token), 2);
    coffer_result_free(r);
    r = NULL;
    /* Twice 401: the second one stands. */
    fake_lock();
    F.k.job_401 = 2;
    fake_unlock();
    T_EQ(coffer_request(c, "echo", "z", 1, &r), COFFER_E_AUTH);
    T_CONTAINS(coffer_client_last_error(c), "HTTP 401");
    T_EQ(counter(&F.n_token), 3);
    coffer_client_free(c);
}

static void test_local_refusals(void)
{
    coffer_client *c = NULL;
    coffer_result *r = NULL;
    static uint8_t big[CF_ENV_MAX_PAYLOAD + 1];

    fake_reset();
    T_EQ(client_alice(&c), COFFER_OK);
    T_EQ(coffer_request(c, "wordcount", "x", 1, &r), COFFER_E_NOT_FOUND);
    T_CONTAINS(coffer_client_last_error(c), "serves job 'wordcount'");
    T_EQ(coffer_request(c, "../etc", "x", 1, &r), COFFER_E_INVALID);
    T_EQ(coffer_request(c, "echo", NULL, 5, &r), COFFER_E_INVALID);
    T_EQ(coffer_request(c, "echo", big, sizeof(big), &r), COFFER_E_TOO_LARGE);
    T_EQ(coffer_request(NULL, "echo", "x", 1, &r), COFFER_E_INVALID);
    T_ASSERT(r == NULL);
    T_EQ(counter(&F.n_token), 0); /* all refused before any traffic */
    coffer_client_free(c);
    c = NULL;

    /* Nothing listens: a network error, with the reason. */
    {
        coffer_client_options o = {.gateway_url = "https://127.0.0.1:1",
                                   .tenant_id = FAKE_TENANT,
                                   .api_key = "key-alice",
                                   .manifest_path = F.manifest_path,
                                   .attestation_jwks_path = F.jwks_path,
                                   .kms_release_key = F.release_b64,
                                   .client_key_path = alice_key};
        T_EQ(coffer_client_new(&o, &c), COFFER_OK);
        T_EQ(coffer_request(c, "echo", "x", 1, &r), COFFER_E_NETWORK);
        T_CONTAINS(coffer_client_last_error(c), "cannot reach the gateway");
        coffer_client_free(c);
        c = NULL;
        /* The gateway's certificate is not signed by a trusted CA (system store). */
        o.gateway_url = F.url;
        T_EQ(coffer_client_new(&o, &c), COFFER_OK);
        T_EQ(coffer_request(c, "echo", "x", 1, &r), COFFER_E_NETWORK);
        T_CONTAINS(coffer_client_last_error(c), "TLS certificate is not trusted");
        coffer_client_free(c);
    }
}

static void test_cache_expiry(void)
{
    coffer_client *c1 = NULL, *c2 = NULL;
    coffer_result *r = NULL;

    /* c1: a short-lived attestation result; c2: a short-lived access token. */
    WITH_KNOB(F.k.ear_ttl = 3);
    T_EQ(client_alice(&c1), COFFER_OK);
    T_EQ(coffer_request(c1, "echo", "x", 1, &r), COFFER_OK);
    coffer_result_free(r);
    r = NULL;
    T_EQ(coffer_request(c1, "echo", "x", 1, &r), COFFER_OK); /* cached */
    coffer_result_free(r);
    r = NULL;
    fake_lock();
    F.k.ear_ttl = 0;
    F.k.token_ttl = 3;
    fake_unlock();
    T_EQ(client_alice(&c2), COFFER_OK);
    T_EQ(coffer_request(c2, "echo", "x", 1, &r), COFFER_OK);
    coffer_result_free(r);
    r = NULL;
    T_EQ(counter(&F.n_session), 2);
    T_EQ(counter(&F.n_token), 2);
    fake_lock();
    F.k.token_ttl = 0;
    fake_unlock();

    sleep(4);
    /* c1: the EAR expired, the token did not: a new session, the same token. */
    T_EQ(coffer_request(c1, "echo", "x", 1, &r), COFFER_OK);
    coffer_result_free(r);
    r = NULL;
    T_EQ(counter(&F.n_session), 3);
    T_EQ(counter(&F.n_token), 2);
    /* c2: the token expired, and with it the TEE it was verified under. */
    T_EQ(coffer_request(c2, "echo", "x", 1, &r), COFFER_OK);
    coffer_result_free(r);
    T_EQ(counter(&F.n_token), 3);
    T_EQ(counter(&F.n_session), 4);
    coffer_client_free(c1);
    coffer_client_free(c2);
}

#define NTHREADS 4
#define PER_THREAD 6

typedef struct {
    coffer_client *c;
    int id;
    int ok;
} worker;

static void *work(void *arg)
{
    worker *w = arg;
    for (int i = 0; i < PER_THREAD; i++) {
        char msg[64];
        coffer_result *r = NULL;
        int n = snprintf(msg, sizeof(msg), "thread %d request %d", w->id, i);
        if (coffer_request(w->c, i % 2 ? "sha256" : "echo", msg, (size_t)n, &r) == COFFER_OK) {
            uint8_t d[32];
            if (i % 2 == 0 && coffer_result_size(r) == (size_t)n &&
                memcmp(coffer_result_data(r), msg, (size_t)n) == 0)
                w->ok++;
            else if (i % 2 == 1 && cf_sha256(msg, (size_t)n, d) == 0 &&
                     coffer_result_size(r) == 32 && memcmp(coffer_result_data(r), d, 32) == 0)
                w->ok++;
        } else {
            fprintf(stderr, "  thread %d: %s\n", w->id, coffer_client_last_error(w->c));
        }
        coffer_result_free(r);
    }
    return NULL;
}

static void test_concurrent_requests(void)
{
    coffer_client *c = NULL;
    pthread_t th[NTHREADS];
    worker w[NTHREADS];
    int total = 0;

    fake_reset();
    T_EQ(client_alice(&c), COFFER_OK);
    for (int i = 0; i < NTHREADS; i++) {
        w[i] = (worker){c, i, 0};
        T_OK(pthread_create(&th[i], NULL, work, &w[i]));
    }
    for (int i = 0; i < NTHREADS; i++) {
        pthread_join(th[i], NULL);
        total += w[i].ok;
    }
    T_EQ(total, NTHREADS * PER_THREAD);
    /* One token for everyone (single-flight), a handful of sessions at most. */
    T_EQ(counter(&F.n_token), 1);
    T_ASSERT(counter(&F.n_session) <= 2 * NTHREADS);
    T_EQ(counter(&F.n_otk), NTHREADS * PER_THREAD);
    coffer_client_free(c);
}

int main(void)
{
    char xdg[300];

    cf_log_set_level(CF_LOG_WARN); /* no access log lines from the fake platform */
    if (fake_prepare() != 0)
        return 1;
    FAKE_PATH(alice_key, "%s/keys/alice.key", F.dir);
    FAKE_PATH(xdg, "%s/xdg", F.dir);
    /* Before any thread exists: setenv is not thread-safe with threads that may
     * call getenv (the SDK itself, libcurl). */
    if (setenv("XDG_CONFIG_HOME", xdg, 1) != 0)
        return 1;
    T_RUN(test_options_from_env);
    if (fake_start() != 0) {
        fprintf(stderr, "fake platform: %s\n", cf_err_detail(CF_E_INTERNAL));
        return 1;
    }
    T_RUN(test_options);
    T_RUN(test_step_helpers);
    T_RUN(test_default_key_path);
    T_RUN(test_http_error_mapping);
    T_RUN(test_step_ear);
    T_RUN(test_step_ear_interop);
    T_RUN(test_step_otk_open);
    T_RUN(test_happy_path);
    T_RUN(test_default_key_file);
    T_RUN(test_client_key_problems);
    T_RUN(test_api_key_rejected);
    T_RUN(test_attestation_failures);
    T_RUN(test_otk_not_from_release_key);
    T_RUN(test_tampered_response);
    T_RUN(test_quarantine_retry);
    T_RUN(test_rate_limited);
    T_RUN(test_job_failed);
    T_RUN(test_token_refetched_once);
    T_RUN(test_local_refusals);
    T_RUN(test_cache_expiry);
    T_RUN(test_concurrent_requests);
    fake_stop();
    return t_done();
}
