/*
 * A fake Coffer platform for the SDK tests: one HTTPS server on 127.0.0.1 that
 * implements the gateway's client-facing wire contract (docs/SDK.md "Wire
 * contract") with REAL crypto, and lets each test make one part of it lie.
 *
 *   POST /v1/iam/token                       access tokens minted with cf_token_mint
 *   PUT  /v1/iam/principals/{p}/client-key   client-key registration
 *   POST /v1/sessions                        evidence from the real simulator library
 *                                            (cf_sim_report, bound to the client's nonce)
 *                                            + an EAR token signed with a test ES256 key
 *   POST /v1/kms/otk                         OTKs HPKE-sealed by a fake release key
 *   POST /v1/jobs/{job}                      the TEE side: cf_env_open, run the job,
 *                                            cf_env_response_seal
 *
 * Jobs: echo (output = input), sha256 (32-byte digest), fail (status 1, output
 * "boom"). Tenant "t1" with principals alice / bob / carol (API keys
 * "key-alice", ...). Three TEEs tee_a, tee_b, tee_c of deployment "demo".
 *
 * Header-only (static functions) so that each test program includes it once.
 */
#ifndef COFFER_TEST_SDK_FAKE_PLATFORM_H
#define COFFER_TEST_SDK_FAKE_PLATFORM_H

#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "attest/binding.h"
#include "attest/manifest.h"
#include "attest/measure.h"
#include "attest/sim.h"
#include "base/buf.h"
#include "base/err.h"
#include "base/file.h"
#include "base/json.h"
#include "base/parse.h"
#include "base/secmem.h"
#include "crypto/hash.h"
#include "crypto/hpke.h"
#include "crypto/jose.h"
#include "crypto/keys.h"
#include "crypto/pki.h"
#include "http/server.h"
#include "proto/authz.h"
#include "proto/envelope.h"

#define FAKE_TENANT "t1"
#define FAKE_NTEE 3
#define FAKE_NPRINC 3
#define FAKE_MAX_OTKS 4096
#define FAKE_DEV_KEY "F4L2-KeulD8PjwNzy78QLHGrVxORTCycQOMoWyensAk"
#define FAKE_EAR_KID "ear-1"
#define FAKE_IAM_KID "iam-1"

/* Where a TEE turns out to be quarantined. */
enum { Q_NONE = 0, Q_AT_OTK, Q_AT_JOB };

typedef struct {
    char id[32];
    cf_hpke_key *key; /* private */
    uint8_t pub[32];
    int quarantined;  /* Q_* */
} fake_tee;

typedef struct {
    const char *api_key;
    const char *name;
    bool has_key;
    uint8_t key[32];
} fake_principal;

typedef struct {
    char id[40];
    char tee_id[32];
    uint8_t otk[32];
    uint8_t client_key[32];
    bool used;
} fake_otk;

/* What a test can make the platform do wrong (all false/0 = honest). */
typedef struct {
    int pick;               /* session: TEE index to offer; -1 = first not quarantined */
    bool debug;             /* evidence: launched with DEBUG */
    bool wrong_measurement; /* evidence: measurement not in the manifest */
    bool evidence_other_nonce; /* report_data binds another nonce (the answer echoes ours) */
    const char *deployment; /* session: deployment named (NULL = "demo") */
    bool ear_other_key;     /* EAR signed by a key that is not pinned (same kid) */
    bool ear_other_hash;    /* EAR names another manifest hash */
    bool ear_other_nonce;
    bool ear_other_cnf;     /* EAR cnf is another X25519 key */
    const char *ear_status; /* NULL = "affirming" */
    int ear_ttl;            /* seconds; 0 = 300 */
    bool otk_other_release; /* OTK sealed by a key other than the pinned release key */
    bool tamper_response;   /* one bit of the CFR1 answer flipped */
    bool rate_limit;        /* sessions answer 429 with Retry-After: 7 */
    int job_401;            /* this many job calls answer 401 */
    int token_ttl;          /* 0 = 300 */
} fake_knobs;

typedef struct {
    char dir[256];
    cf_sim *sim;
    cf_buf vcek_der;
    uint8_t measurement[48];
    cf_key *iam_key;
    cf_jwks *iam_jwks;
    cf_key *ear_key, *ear_other;
    cf_hpke_key *release, *release_other;
    char release_b64[64];
    char manifest_path[300], manifest_prod_path[300], jwks_path[300], ca_path[300];
    char srv_crt[300], srv_key[300];
    char manifest_hash[CF_MANIFEST_HASH_STR_LEN + 1];
    char url[64];
    fake_tee tees[FAKE_NTEE];
    fake_principal princ[FAKE_NPRINC];
    fake_otk otks[FAKE_MAX_OTKS];
    size_t n_otks;
    cf_http_server *srv;

    pthread_mutex_t mu; /* everything below, and tees[].quarantined, princ[] */
    fake_knobs k;
    int n_token, n_register, n_session, n_otk, n_job;
} fake;

static fake F;

#define FAKE_PATH(buf, ...)                                                              \
    do {                                                                                 \
        if ((size_t)snprintf((buf), sizeof(buf), __VA_ARGS__) >= sizeof(buf))            \
            abort();                                                                     \
    } while (0)

static void fake_lock(void) { pthread_mutex_lock(&F.mu); }
static void fake_unlock(void) { pthread_mutex_unlock(&F.mu); }

/* Knobs back to honest, counters to zero, TEEs active. */
static void fake_reset(void)
{
    fake_lock();
    memset(&F.k, 0, sizeof(F.k));
    F.k.pick = -1;
    F.n_token = F.n_register = F.n_session = F.n_otk = F.n_job = 0;
    for (int i = 0; i < FAKE_NTEE; i++)
        F.tees[i].quarantined = Q_NONE;
    fake_unlock();
}

/* ---- helpers ---- */

static int fake_auth(const cf_http_req *req, cf_principal *p)
{
    const char *tok;
    size_t len;
    const char *h = cf_http_req_header(req, "Authorization");

    CF_ENSURE(h != NULL, CF_E_UNAUTHENTICATED);
    CF_GUARD(cf_bearer_token(h, &tok, &len));
    return cf_token_verify(tok, len, F.iam_jwks, 0, p);
}

static fake_principal *fake_princ_by_name(const char *name)
{
    for (int i = 0; i < FAKE_NPRINC; i++)
        if (strcmp(F.princ[i].name, name) == 0)
            return &F.princ[i];
    return NULL;
}

static fake_tee *fake_tee_by_id(const char *id)
{
    for (int i = 0; i < FAKE_NTEE; i++)
        if (strcmp(F.tees[i].id, id) == 0)
            return &F.tees[i];
    return NULL;
}

static char *fake_b64(const uint8_t *p, size_t n)
{
    char *s = cf_b64url_encode_alloc(p, n);
    if (s == NULL)
        abort();
    return s;
}

/* ---- IAM ---- */

static int h_token(void *cls, const cf_http_req *req, cf_http_resp *resp)
{
    json_t *body = NULL, *ans = NULL;
    const char *key = NULL, *tenant = NULL;
    fake_principal *pr = NULL;
    cf_principal p;
    char *tok = NULL;
    int ttl, rc;

    (void)cls;
    CF_GUARD(cf_http_req_json(req, &body));
    if (cf_json_get_str(body, "api_key", true, 256, &key) < 0 ||
        cf_json_get_str(body, "tenant", true, 256, &tenant) < 0) {
        json_decref(body);
        return CF_E_PARSE;
    }
    fake_lock();
    F.n_token++;
    for (int i = 0; i < FAKE_NPRINC; i++)
        if (strcmp(F.princ[i].api_key, key) == 0)
            pr = &F.princ[i];
    ttl = F.k.token_ttl ? F.k.token_ttl : 300;
    if (pr == NULL || strcmp(tenant, FAKE_TENANT) != 0) {
        fake_unlock();
        json_decref(body);
        return cf_http_resp_error(resp, CF_E_UNAUTHENTICATED, "unknown API key");
    }
    memset(&p, 0, sizeof(p));
    memcpy(p.tenant, FAKE_TENANT, sizeof(FAKE_TENANT));
    memcpy(p.sub, pr->name, strlen(pr->name) + 1);
    memcpy(p.kind, "client", 7);
    p.roles = CF_ROLE_CLIENT;
    p.has_client_key = pr->has_key;
    memcpy(p.client_key, pr->key, 32);
    fake_unlock();
    json_decref(body);
    CF_GUARD(cf_token_mint(F.iam_key, FAKE_IAM_KID, &p, (int64_t)time(NULL), (uint32_t)ttl, &tok));
    ans = json_pack("{s:s,s:s,s:i,s:s,s:s,s:[s]}", "access_token", tok, "token_type", "Bearer",
                    "expires_in", ttl, "tenant", FAKE_TENANT, "principal", p.sub, "roles",
                    "client");
    free(tok);
    CF_ENSURE(ans != NULL, CF_E_NOMEM);
    rc = cf_http_resp_json(resp, 200, ans);
    json_decref(ans);
    return rc;
}

static int h_register(void *cls, const cf_http_req *req, cf_http_resp *resp)
{
    json_t *body = NULL;
    cf_principal p;
    fake_principal *pr;
    cf_buf key;
    int rc = 0;

    (void)cls;
    cf_buf_init(&key, 32);
    CF_GUARD_OUT(fake_auth(req, &p));
    CF_ENSURE_OUT(strcmp(cf_http_req_param(req, "principal"), p.sub) == 0, CF_E_FORBIDDEN);
    CF_GUARD_OUT(cf_http_req_json(req, &body));
    CF_GUARD_OUT(cf_json_get_b64url(body, "x25519", true, 32, &key));
    CF_ENSURE_OUT(key.len == 32, CF_E_PARSE);
    fake_lock();
    F.n_register++;
    pr = fake_princ_by_name(p.sub);
    if (pr == NULL) {
        fake_unlock();
        rc = CF_E_NOT_FOUND;
        goto out;
    }
    if (pr->has_key && memcmp(pr->key, key.data, 32) != 0) {
        fake_unlock();
        rc = cf_http_resp_error(resp, CF_E_CONFLICT, "another client key is registered");
        goto out;
    }
    pr->has_key = true;
    memcpy(pr->key, key.data, 32);
    fake_unlock();
    rc = cf_http_resp_set(resp, 201, "application/json", "{}", 2);
out:
    json_decref(body);
    cf_buf_free(&key);
    return rc;
}

/* ---- gateway: sessions ---- */

static int fake_ear(const fake_knobs *k, const uint8_t tee_pub[32], const uint8_t nonce[32],
                    const char *deployment, char **ret)
{
    cf_key *tk = NULL, *other = NULL;
    cf_hpke_key *ok = NULL;
    json_t *jwk = NULL, *claims = NULL;
    uint8_t n2[32];
    char *nb = NULL;
    int64_t now = (int64_t)time(NULL);
    int rc = 0;

    memcpy(n2, nonce, 32);
    if (k->ear_other_nonce)
        n2[0] ^= 1;
    nb = fake_b64(n2, 32);
    if (k->ear_other_cnf) {
        size_t pl;
        CF_GUARD_OUT(cf_hpke_key_generate(CF_HPKE_KEM_X25519_SHA256, &ok));
        CF_GUARD_OUT(cf_key_from_public(CF_KEY_X25519, cf_hpke_key_pub(ok, &pl), 32, &tk));
    } else {
        CF_GUARD_OUT(cf_key_from_public(CF_KEY_X25519, tee_pub, 32, &tk));
    }
    CF_GUARD_OUT(cf_jwk_to_json(tk, NULL, &jwk));
    claims = json_pack("{s:I,s:I,s:s,s:s,s:s,s:{s:o},s:{s:{s:s}}}", "iat", (json_int_t)now,
                       "exp", (json_int_t)(now + (k->ear_ttl ? k->ear_ttl : 300)), "eat_profile",
                       "tag:github.com,2023:veraison/ear", "eat_nonce", nb,
                       "coffer.manifest_hash",
                       k->ear_other_hash ? "sha256:0000000000000000000000000000000000000000000000"
                                           "000000000000000000"
                                         : F.manifest_hash,
                       "cnf", "jwk", jwk, "submods", deployment, "ear.status",
                       k->ear_status ? k->ear_status : "affirming");
    jwk = NULL;
    CF_ENSURE_OUT(claims != NULL, CF_E_NOMEM);
    CF_GUARD_OUT(cf_jwt_sign(k->ear_other_key ? F.ear_other : F.ear_key, claims, "JWT",
                             FAKE_EAR_KID, ret));
out:
    free(nb);
    json_decref(claims);
    cf_key_free(tk);
    cf_key_free(other);
    cf_hpke_key_free(ok);
    return rc;
}

static int h_session(void *cls, const cf_http_req *req, cf_http_resp *resp)
{
    json_t *body = NULL, *ans = NULL;
    const char *job = NULL;
    uint8_t nonce[32], bound[32], rd[64], report[CF_SNP_REPORT_LEN];
    cf_principal p;
    fake_knobs k;
    fake_tee *t = NULL;
    cf_sim_launch l;
    cf_launch_config lc = {0};
    char *ear = NULL, *pub = NULL, *rep = NULL, *cert = NULL, nonce_hex[65];
    const char *deployment;
    int rc = 0;

    (void)cls;
    CF_GUARD_OUT(fake_auth(req, &p));
    CF_GUARD_OUT(cf_http_req_json(req, &body));
    CF_GUARD_OUT(cf_json_get_str(body, "job", true, 128, &job));
    CF_GUARD_OUT(cf_json_get_hex(body, "nonce", true, nonce, 32));
    fake_lock();
    F.n_session++;
    k = F.k;
    if (k.pick >= 0) {
        t = &F.tees[k.pick];
    } else {
        for (int i = 0; i < FAKE_NTEE && t == NULL; i++)
            if (F.tees[i].quarantined == Q_NONE)
                t = &F.tees[i];
    }
    fake_unlock();
    if (k.rate_limit) {
        CF_GUARD_OUT(cf_http_resp_error(resp, CF_E_RATE_LIMITED, "tenant t1 is over its rate"));
        rc = cf_http_resp_header(resp, "Retry-After", "7");
        goto out;
    }
    if (t == NULL) {
        rc = cf_http_resp_error(resp, CF_E_UNAVAILABLE, "no active TEE serves this job");
        goto out;
    }
    deployment = k.deployment ? k.deployment : "demo";
    /* The evidence: what coffer-launch would sign for this TEE. */
    memcpy(bound, nonce, 32);
    if (k.evidence_other_nonce)
        bound[31] ^= 0x80;
    CF_GUARD_OUT(cf_binding_compute(t->pub, 32, bound, rd));
    memset(&l, 0, sizeof(l));
    lc.debug = k.debug;
    l.policy = cf_launch_policy(&lc);
    memcpy(l.measurement, F.measurement, 48);
    if (k.wrong_measurement)
        l.measurement[0] ^= 0xff;
    CF_GUARD_OUT(cf_random(l.report_id, sizeof(l.report_id)));
    CF_GUARD_OUT(cf_sim_report(F.sim, &l, rd, report));
    CF_GUARD_OUT(fake_ear(&k, t->pub, nonce, deployment, &ear));
    pub = fake_b64(t->pub, 32);
    rep = fake_b64(report, sizeof(report));
    cert = fake_b64(F.vcek_der.data, F.vcek_der.len);
    cf_hex_encode(nonce, 32, nonce_hex);
    ans = json_pack("{s:s,s:s,s:s,s:s,s:s,s:{s:s,s:s,s:s},s:s,s:s,s:I}", "tee_id", t->id,
                    "public_key", pub, "deployment", deployment, "build_hash",
                    "sha256:1111111111111111111111111111111111111111111111111111111111111111",
                    "nonce", nonce_hex, "evidence", "platform", "sev-snp", "report", rep, "cert",
                    cert, "token", ear, "manifest_hash", F.manifest_hash, "expires_at",
                    (json_int_t)time(NULL) + 600);
    CF_ENSURE_OUT(ans != NULL, CF_E_NOMEM);
    rc = cf_http_resp_json(resp, 200, ans);
out:
    json_decref(body);
    json_decref(ans);
    free(ear);
    free(pub);
    free(rep);
    free(cert);
    return rc;
}

/* ---- KMS: one-time keys ---- */

static int h_otk(void *cls, const cf_http_req *req, cf_http_resp *resp)
{
    json_t *body = NULL, *ans = NULL;
    const char *tee_id = NULL;
    cf_principal p;
    fake_tee *t;
    fake_otk *o;
    cf_hpke_key *client = NULL;
    cf_buf ct, aad;
    uint8_t enc[CF_HPKE_MAX_ENC], raw[16];
    size_t enc_len = 0;
    char *enc_s = NULL, *ct_s = NULL;
    bool other;
    int rc = 0;

    (void)cls;
    cf_buf_init(&ct, 64);
    cf_buf_init(&aad, 256);
    CF_GUARD_OUT(fake_auth(req, &p));
    if (!p.has_client_key) {
        rc = cf_http_resp_error(resp, CF_E_FORBIDDEN, "the token carries no client key");
        goto out;
    }
    CF_GUARD_OUT(cf_http_req_json(req, &body));
    CF_GUARD_OUT(cf_json_get_str(body, "tee_id", true, 64, &tee_id));
    fake_lock();
    F.n_otk++;
    t = fake_tee_by_id(tee_id);
    if (t == NULL || t->quarantined == Q_AT_OTK || F.n_otks == FAKE_MAX_OTKS) {
        fake_unlock();
        rc = cf_http_resp_error_status(resp, 409, "quarantined", "TEE is quarantined");
        goto out;
    }
    o = &F.otks[F.n_otks++];
    other = F.k.otk_other_release;
    fake_unlock();
    memset(o, 0, sizeof(*o));
    CF_GUARD_OUT(cf_random(raw, sizeof(raw)));
    memcpy(o->id, "otk_", 4);
    cf_hex_encode(raw, sizeof(raw), o->id + 4);
    memcpy(o->tee_id, t->id, strlen(t->id) + 1);
    memcpy(o->client_key, p.client_key, 32);
    CF_GUARD_OUT(cf_random(o->otk, 32));
    /* kms/wire.h: HPKE mode auth from the release key to the client key. */
    CF_GUARD_OUT(cf_hpke_key_from_public(CF_HPKE_KEM_X25519_SHA256, p.client_key, 32, &client));
    CF_GUARD_OUT(cf_buf_printf(&aad, "coffer/v1 otk|%s|%s", o->id, o->tee_id));
    {
        cf_hpke_params hp = {.suite = CF_HPKE_SUITE_COFFER,
                             .mode = CF_HPKE_MODE_AUTH,
                             .info = (const uint8_t *)"coffer/v1 otk",
                             .info_len = 13};
        CF_GUARD_OUT(cf_hpke_seal_once(&hp, client, other ? F.release_other : F.release, aad.data,
                                       aad.len, o->otk, 32, enc, &enc_len, &ct));
    }
    enc_s = fake_b64(enc, enc_len);
    ct_s = fake_b64(ct.data, ct.len);
    ans = json_pack("{s:s,s:s,s:I,s:s,s:s}", "otk_id", o->id, "tee_id", o->tee_id, "expires_at",
                    (json_int_t)time(NULL) + 120, "enc", enc_s, "ct", ct_s);
    CF_ENSURE_OUT(ans != NULL, CF_E_NOMEM);
    rc = cf_http_resp_json(resp, 201, ans);
out:
    cf_hpke_key_free(client);
    json_decref(body);
    json_decref(ans);
    free(enc_s);
    free(ct_s);
    cf_buf_free(&ct);
    cf_buf_free(&aad);
    return rc;
}

/* ---- the TEE ---- */

static int h_job(void *cls, const cf_http_req *req, cf_http_resp *resp)
{
    const uint8_t *body;
    size_t len;
    cf_principal p;
    cf_env env;
    fake_tee *t;
    fake_otk *o = NULL;
    cf_hpke_key *client = NULL;
    cf_hpke_ctx *ctx = NULL;
    cf_buf in, out;
    uint8_t status = 0, otk[32], digest[32];
    const uint8_t *output = NULL;
    size_t output_len = 0;
    bool tamper;
    int rc = 0;

    (void)cls;
    cf_buf_init_secret(&in, CF_ENV_MAX_PAYLOAD);
    cf_buf_init(&out, CF_ENV_MAX_RESPONSE_BYTES);
    fake_lock();
    F.n_job++;
    if (F.k.job_401 > 0) {
        F.k.job_401--;
        fake_unlock();
        rc = cf_http_resp_error(resp, CF_E_UNAUTHENTICATED, "access token expired");
        goto out;
    }
    tamper = F.k.tamper_response;
    fake_unlock();
    CF_GUARD_OUT(fake_auth(req, &p));
    if (!cf_http_req_content_type_is(req, "application/coffer-envelope")) {
        rc = cf_http_resp_error_status(resp, 415, "unsupported_media_type", "not an envelope");
        goto out;
    }
    body = cf_http_req_body(req, &len);
    CF_GUARD_OUT(cf_env_parse(body, len, &env));
    CF_ENSURE_OUT(strcmp(env.hdr.job, cf_http_req_param(req, "job")) == 0 &&
                      strcmp(env.hdr.tenant, p.tenant) == 0,
                  CF_E_FORBIDDEN);
    fake_lock();
    t = fake_tee_by_id(env.hdr.tee_id);
    if (t != NULL && t->quarantined != Q_NONE) {
        fake_unlock();
        rc = cf_http_resp_error_status(resp, 409, "quarantined", "TEE is quarantined");
        goto out;
    }
    for (size_t i = 0; i < F.n_otks; i++)
        if (strcmp(F.otks[i].id, env.hdr.otk_id) == 0 && !F.otks[i].used &&
            strcmp(F.otks[i].tee_id, env.hdr.tee_id) == 0)
            o = &F.otks[i];
    if (o != NULL) {
        /* DESIGN.md §4: released at most once. */
        o->used = true;
        memcpy(otk, o->otk, 32);
    }
    fake_unlock();
    CF_ENSURE_OUT(t != NULL && o != NULL, CF_E_NOT_FOUND);
    CF_GUARD_OUT(cf_hpke_key_from_public(CF_HPKE_KEM_X25519_SHA256, o->client_key, 32, &client));
    rc = cf_env_open(&env, otk, t->key, client, &in, &ctx);
    cf_wipe(otk, sizeof(otk));
    CF_GUARD_OUT(rc);
    if (strcmp(env.hdr.job, "echo") == 0) {
        output = in.data;
        output_len = in.len;
    } else if (strcmp(env.hdr.job, "sha256") == 0) {
        CF_GUARD_OUT(cf_sha256(in.data, in.len, digest));
        output = digest;
        output_len = sizeof(digest);
    } else {
        status = 1;
        output = (const uint8_t *)"boom";
        output_len = 4;
    }
    CF_GUARD_OUT(cf_env_response_seal(ctx, env.hdr.request_id, status, output, output_len, &out));
    if (tamper)
        out.data[out.len / 2] ^= 0x01;
    rc = cf_http_resp_set(resp, 200, "application/coffer-response", out.data, out.len);
out:
    cf_hpke_ctx_free(ctx);
    cf_hpke_key_free(client);
    cf_buf_free(&in);
    cf_buf_free(&out);
    return rc;
}

/* ---- set-up ---- */

static int fake_write(const char *path, const void *d, size_t n, mode_t mode)
{
    return cf_file_write_atomic(path, d, n, mode);
}

/* The client's manifest: deployment "demo" of tenant t1 (echo, sha256, fail),
 * and "other" of tenant t2 with the same measurement. With sim_root, the
 * simulated root is pinned (a development manifest); without, only AMD's. */
static int fake_manifest(bool sim_root, const char *path, char *ret_hash)
{
    cf_buf pem;
    char meas[97];
    json_t *m = NULL, *roots;
    char *js = NULL;
    cf_manifest *parsed = NULL;
    int rc = 0;

    cf_buf_init(&pem, 65536);
    CF_GUARD_OUT(cf_sim_chain_pem(F.sim, &pem));
    cf_hex_encode(F.measurement, 48, meas);
    roots = sim_root ? json_pack("[{s:s,s:s,s:s}]", "name", "coffer-simulated", "product",
                                 "milan", "chain", (const char *)pem.data)
                     : json_pack("[s]", "amd:milan");
    m = json_pack("{s:i,s:s,s:{s:{s:o,s:{s:{s:i,s:i,s:i,s:i}}}},"
                  "s:[{s:s,s:s,s:[s,s,s],s:s,s:{s:{s:[s]}}},{s:s,s:s,s:[s],s:s,s:{s:{s:[s]}}}]}",
                  "version", 1, "name", "sdk-test", "platforms", "sev-snp", "roots", roots,
                  "min_tcb", "milan", "bootloader", 0, "tee", 0, "snp", 0, "microcode", 0,
                  "deployments", "name", "demo", "tenant", FAKE_TENANT, "jobs", "echo", "sha256",
                  "fail", "developer_key", FAKE_DEV_KEY, "platforms", "sev-snp", "measurements",
                  meas, "name", "other", "tenant", "t2", "jobs", "echo", "developer_key",
                  FAKE_DEV_KEY, "platforms", "sev-snp", "measurements", meas);
    CF_ENSURE_OUT(m != NULL, CF_E_NOMEM);
    js = json_dumps(m, JSON_INDENT(2));
    CF_ENSURE_OUT(js != NULL, CF_E_NOMEM);
    CF_GUARD_OUT(cf_manifest_parse(js, strlen(js), &parsed));
    if (ret_hash != NULL)
        memcpy(ret_hash, cf_manifest_hash_str(parsed), CF_MANIFEST_HASH_STR_LEN + 1);
    CF_GUARD_OUT(fake_write(path, js, strlen(js), 0644));
out:
    cf_manifest_free(parsed);
    free(js);
    json_decref(m);
    cf_buf_free(&pem);
    return rc;
}

static int fake_tls(void)
{
    static const char *const ips[] = {"127.0.0.1", NULL};
    cf_pki_cred *ca = NULL, *leaf = NULL;
    cf_pki_leaf_opts lo = {"spiffe://coffer/gateway", NULL, ips, CF_PKI_SERVER, 86400, NULL};
    int rc;

    CF_GUARD_OUT(cf_pki_ca_create("SDK test CA", 86400, &ca));
    CF_GUARD_OUT(cf_pki_write(ca, F.ca_path, NULL));
    CF_GUARD_OUT(cf_pki_issue(ca, &lo, &leaf));
    CF_GUARD_OUT(cf_pki_write(leaf, F.srv_crt, F.srv_key));
out:
    cf_pki_free(ca);
    cf_pki_free(leaf);
    return rc;
}

/* The temporary directory, before any thread exists (a test may want to set
 * environment variables that name paths in it). */
static int fake_prepare(void)
{
    memset(&F, 0, sizeof(F));
    pthread_mutex_init(&F.mu, NULL);
    FAKE_PATH(F.dir, "/tmp/coffer-sdk-test-XXXXXX");
    return mkdtemp(F.dir) != NULL ? 0 : CF_E_IO;
}

static int fake_start(void)
{
    static const char *const names[FAKE_NPRINC] = {"alice", "bob", "carol"};
    static const char *const keys[FAKE_NPRINC] = {"key-alice", "key-bob", "key-carol"};
    char p[300], *js = NULL;
    cf_sim_tcb tcb;
    cf_key *pub = NULL;
    size_t pl;
    int rc = 0;

    CF_ENSURE(F.dir[0] != 0, CF_E_INVAL); /* fake_prepare first */
    FAKE_PATH(F.manifest_path, "%s/manifest.json", F.dir);
    FAKE_PATH(F.manifest_prod_path, "%s/manifest-prod.json", F.dir);
    FAKE_PATH(F.jwks_path, "%s/attestation-jwks.json", F.dir);
    FAKE_PATH(F.ca_path, "%s/ca.pem", F.dir);
    FAKE_PATH(F.srv_crt, "%s/gw.crt", F.dir);
    FAKE_PATH(F.srv_key, "%s/gw.key", F.dir);
    FAKE_PATH(p, "%s/simstate", F.dir);

    cf_sim_tcb_default(&tcb);
    CF_GUARD_OUT(cf_sim_open(p, &tcb, &F.sim));
    cf_buf_init(&F.vcek_der, CF_CERT_MAX_BYTES);
    CF_GUARD_OUT(cf_sim_vcek_der(F.sim, &F.vcek_der));
    for (int i = 0; i < 48; i++)
        F.measurement[i] = (uint8_t)(0x30 + i);
    CF_GUARD_OUT(fake_manifest(true, F.manifest_path, F.manifest_hash));
    CF_GUARD_OUT(fake_manifest(false, F.manifest_prod_path, NULL));

    CF_GUARD_OUT(cf_key_generate(CF_KEY_ED25519, &F.iam_key));
    CF_GUARD_OUT(cf_jwks_new(&F.iam_jwks));
    CF_GUARD_OUT(cf_jwks_add(F.iam_jwks, FAKE_IAM_KID, F.iam_key));
    CF_GUARD_OUT(cf_key_generate(CF_KEY_P256, &F.ear_key));
    CF_GUARD_OUT(cf_key_generate(CF_KEY_P256, &F.ear_other));
    {
        cf_jwks *set = NULL;
        CF_GUARD_OUT(cf_jwks_new(&set));
        rc = cf_jwks_add(set, FAKE_EAR_KID, F.ear_key);
        if (rc == 0)
            rc = cf_jwks_serialise(set, &js);
        cf_jwks_free(set);
        CF_GUARD_OUT(rc);
        CF_GUARD_OUT(fake_write(F.jwks_path, js, strlen(js), 0644));
    }
    CF_GUARD_OUT(cf_hpke_key_generate(CF_HPKE_KEM_X25519_SHA256, &F.release));
    CF_GUARD_OUT(cf_hpke_key_generate(CF_HPKE_KEM_X25519_SHA256, &F.release_other));
    cf_b64url_encode(cf_hpke_key_pub(F.release, &pl), 32, F.release_b64);

    for (int i = 0; i < FAKE_NTEE; i++) {
        FAKE_PATH(F.tees[i].id, "tee_%c", 'a' + i);
        CF_GUARD_OUT(cf_hpke_key_generate(CF_HPKE_KEM_X25519_SHA256, &F.tees[i].key));
        memcpy(F.tees[i].pub, cf_hpke_key_pub(F.tees[i].key, &pl), 32);
    }
    for (int i = 0; i < FAKE_NPRINC; i++) {
        F.princ[i].name = names[i];
        F.princ[i].api_key = keys[i];
    }

    CF_GUARD_OUT(fake_tls());
    {
        cf_http_server_opts so = {.name = "fake-gateway",
                                  .threads = 8,
                                  .tls_cert_file = F.srv_crt,
                                  .tls_key_file = F.srv_key};
        CF_GUARD_OUT(cf_http_server_new(&so, &F.srv));
    }
    CF_GUARD_OUT(cf_http_server_route(F.srv, "POST", "/v1/iam/token", h_token, NULL, 0));
    CF_GUARD_OUT(cf_http_server_route(F.srv, "PUT", "/v1/iam/principals/{principal}/client-key",
                                      h_register, NULL, 0));
    CF_GUARD_OUT(cf_http_server_route(F.srv, "POST", "/v1/sessions", h_session, NULL, 0));
    CF_GUARD_OUT(cf_http_server_route(F.srv, "POST", "/v1/kms/otk", h_otk, NULL, 0));
    CF_GUARD_OUT(cf_http_server_route(F.srv, "POST", "/v1/jobs/{job}", h_job, NULL,
                                      CF_ENV_MAX_BYTES));
    CF_GUARD_OUT(cf_http_server_start(F.srv));
    FAKE_PATH(F.url, "https://127.0.0.1:%u", (unsigned)cf_http_server_port(F.srv));
    fake_reset();
out:
    free(js);
    cf_key_free(pub);
    return rc;
}

static int fake_rm(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void fake_stop(void)
{
    cf_http_server_free(F.srv);
    cf_sim_free(F.sim);
    cf_buf_free(&F.vcek_der);
    cf_key_free(F.iam_key);
    cf_jwks_free(F.iam_jwks);
    cf_key_free(F.ear_key);
    cf_key_free(F.ear_other);
    cf_hpke_key_free(F.release);
    cf_hpke_key_free(F.release_other);
    for (int i = 0; i < FAKE_NTEE; i++)
        cf_hpke_key_free(F.tees[i].key);
    if (F.dir[0] != 0)
        nftw(F.dir, fake_rm, 16, FTW_DEPTH | FTW_PHYS);
    pthread_mutex_destroy(&F.mu);
}

#endif
