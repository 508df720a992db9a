/*
 * KMS service core (src/kms/kms.h, wire.h) without HTTP: release key, join
 * tokens, nonces, TEE registration with simulated SEV-SNP evidence verified by
 * the KMS itself, one-time keys end to end (client opens, TEE opens), at most
 * once, expiry, re-attestation and quarantine, stale TEEs, operator actions,
 * reconciliation, fail-closed audit, restart. Real SoftHSM2 token and SQLite
 * file in a temp dir; an injected clock.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/err.h"
#include "base/json.h"
#include "base/log.h"
#include "base/parse.h"
#include "base/secmem.h"
#include "hsm/hsm.h"
#include "kms/keys.h"
#include "kms/kms.h"
#include "kms/wire.h"
#include "kms_test_util.h"
#include "spool/spool.h"
#include "store/store.h"
#include "test.h"

static char g_dir[256], g_dsn[512], g_spooldir[512];
static _Atomic int64_t g_now;
static cf_hsm *g_hsm;
static cf_spool *g_spool;
static cf_kms_keys *g_keys;
static cf_sim *g_sim;
static cf_manifest *g_manifest, *g_prod_manifest;
static cf_kms *g_kms;

/* audit events seen by the hook, and a switch to make it fail */
static pthread_mutex_t g_ev_mu = PTHREAD_MUTEX_INITIALIZER;
static json_t *g_events;
static atomic_int g_audit_fail;

static int64_t test_clock(void *arg)
{
    (void)arg;
    return atomic_load(&g_now);
}

static void advance(int64_t s) { atomic_fetch_add(&g_now, s); }

static int audit_hook(void *arg, const cf_kms_who *who, const char *action, const char *tenant,
                      const char *resource, const char *outcome, json_t *details)
{
    json_t *ev;

    (void)arg;
    if (atomic_load(&g_audit_fail)) {
        json_decref(details);
        return CF_E_IO;
    }
    ev = json_pack("{s:s,s:s,s:s?,s:s?,s:s?,s:o?}", "action", action, "outcome", outcome, "tenant",
                   tenant, "resource", resource, "actor", who ? who->actor : NULL, "details",
                   details);
    if (ev == NULL)
        return CF_E_NOMEM;
    pthread_mutex_lock(&g_ev_mu);
    json_array_append_new(g_events, ev);
    pthread_mutex_unlock(&g_ev_mu);
    return 0;
}

/* The last event with this action (borrowed until the next hook call), or NULL. */
static json_t *last_event(const char *action)
{
    json_t *found = NULL;

    pthread_mutex_lock(&g_ev_mu);
    for (size_t i = json_array_size(g_events); i > 0; i--) {
        json_t *e = json_array_get(g_events, i - 1);
        if (strcmp(json_string_value(json_object_get(e, "action")), action) == 0) {
            found = e;
            break;
        }
    }
    pthread_mutex_unlock(&g_ev_mu);
    return found;
}

static const char *ev_str(json_t *e, const char *key)
{
    json_t *v = json_object_get(e, key);
    if (v == NULL)
        v = json_object_get(json_object_get(e, "details"), key);
    return json_string_value(v);
}

static int open_kms(const cf_manifest *m, size_t max_nonces, uint64_t interval, cf_kms **ret)
{
    cf_kms_opts o;

    memset(&o, 0, sizeof(o));
    o.hsm = g_hsm;
    o.keys = g_keys;
    o.manifest = m;
    o.store_dsn = g_dsn;
    o.otk_ttl = 30;
    o.reattest_interval = interval;
    o.max_live_nonces = max_nonces;
    o.clock = test_clock;
    o.audit = audit_hook;
    return cf_kms_open(&o, ret);
}

static int setup(void)
{
    cf_hsm_opts ho = {.pin = "user-pin-1234", .so_pin = "so-pin-5678", .token_label = "kms-svc-test",
                      .create_master = true};
    cf_kms_keys_opts ko = {.clock = test_clock};
    cf_sim_tcb tcb;
    char path[600], *m;
    int rc;

    atomic_store(&g_now, (int64_t)time(NULL));
    g_events = json_array();
    kt_mkdtemp(g_dir, sizeof(g_dir), "kmssvc");
    CF_GUARD(cf_fmt(path, sizeof(path), "%s/softhsm", g_dir));
    ho.softhsm_dir = path;
    CF_GUARD(cf_hsm_open(&ho, &g_hsm));
    CF_GUARD(cf_fmt(g_spooldir, sizeof(g_spooldir), "%s/spool", g_dir));
    CF_GUARD(cf_spool_open(g_spooldir, &g_spool));
    CF_GUARD(cf_fmt(g_dsn, sizeof(g_dsn), "sqlite:%s/kms.db", g_dir));
    CF_GUARD(cf_kms_keys_open(g_hsm, g_dsn, g_spool, &ko, &g_keys));
    CF_GUARD(cf_fmt(path, sizeof(path), "%s/sim", g_dir));
    cf_sim_tcb_default(&tcb);
    CF_GUARD(cf_sim_open(path, &tcb, &g_sim));
    m = kt_manifest(g_sim);
    CF_ENSURE(m != NULL, CF_E_NOMEM);
    rc = cf_manifest_parse(m, strlen(m), &g_manifest);
    free(m);
    CF_GUARD(rc);
    m = kt_manifest(NULL);
    CF_ENSURE(m != NULL, CF_E_NOMEM);
    rc = cf_manifest_parse(m, strlen(m), &g_prod_manifest);
    free(m);
    CF_GUARD(rc);
    return open_kms(g_manifest, 0, 60, &g_kms);
}

static void teardown(void)
{
    cf_kms_close(g_kms);
    cf_kms_keys_close(g_keys);
    cf_spool_close(g_spool);
    cf_hsm_close(g_hsm);
    cf_sim_free(g_sim);
    cf_manifest_free(g_manifest);
    cf_manifest_free(g_prod_manifest);
    json_decref(g_events);
    kt_rmtree(g_dir);
}

/* ---- helpers --------------------------------------------------------------------------- */

typedef struct {
    cf_hpke_key *key;
    cf_kms_tee rec;
} tee_t;

static const cf_kms_who g_op = {.actor = "operator-1", .request_id = "req-op"};

static int new_token(const char *tenant, const char *deployment, uint64_t ttl, uint64_t uses,
                     cf_kms_join_token *ret)
{
    return cf_kms_join_token_create(g_kms, &g_op, tenant, deployment, ttl, uses, ret);
}

/* Registers a TEE key with fresh evidence of measurement byte meas. */
static int do_register(cf_kms *k, const char *token, cf_hpke_key *key, uint8_t meas, bool debug,
                       cf_kms_tee *ret, cf_verify_result **vr)
{
    uint8_t nonce[32], report[CF_SNP_REPORT_LEN];
    int64_t exp = 0;
    cf_buf cert;
    cf_kms_evidence ev;
    int rc;

    cf_buf_init(&cert, CF_CERT_MAX_BYTES);
    CF_GUARD_OUT(cf_kms_nonce_issue(k, NULL, nonce, &exp));
    CF_GUARD_OUT(kt_evidence(g_sim, kt_pub(key), nonce, meas, debug, report, &cert));
    ev = (cf_kms_evidence){.platform = "sev-snp", .report = report, .report_len = sizeof(report),
                           .cert = cert.data, .cert_len = cert.len};
    rc = cf_kms_tee_register(k, NULL, token, nonce, kt_pub(key), "https://127.0.0.1:9443", &ev, ret, vr);
out:
    cf_buf_free(&cert);
    return rc;
}

static int make_tee(const char *tenant, const char *deployment, uint8_t meas, tee_t *ret)
{
    cf_kms_join_token jt;
    int rc;

    ret->key = kt_keypair();
    CF_GUARD(new_token(tenant, deployment, 60, 1, &jt));
    rc = do_register(g_kms, jt.token, ret->key, meas, false, &ret->rec, NULL);
    cf_wipe(&jt, sizeof(jt));
    return rc;
}

/* Client side of an OTK: issue and open it. */
static int issue(const char *tenant, const cf_hpke_key *client, const char *tee_id,
                 cf_kms_issued *iss, uint8_t otk[32])
{
    cf_buf plain;
    int rc;

    CF_GUARD(cf_kms_otk_issue(g_kms, NULL, tenant, "client-1", client ? kt_pub(client) : NULL,
                              tee_id, iss));
    cf_buf_init_secret(&plain, 32);
    rc = cf_kms_wire_open_otk(client, cf_kms_release_key(g_kms), iss->otk_id, tee_id, iss->enc,
                              sizeof(iss->enc), iss->ct, sizeof(iss->ct), &plain);
    if (rc == 0 && plain.len == 32)
        memcpy(otk, plain.data, 32);
    cf_buf_free(&plain);
    return rc;
}

/* TEE side of a release: seal the proof with `signer`, ask, open with `signer`. */
static int release(cf_kms *k, const char *otk_id, const char *tee_id, const cf_hpke_key *signer,
                   int64_t ts_offset, cf_kms_released *ret)
{
    uint8_t enc[32];
    cf_buf ct;
    cf_kms_release_resp resp;
    int rc;

    cf_buf_init(&ct, 1024);
    CF_GUARD_OUT(cf_kms_wire_seal_release_request(signer, cf_kms_release_key(k), otk_id, tee_id,
                                                  atomic_load(&g_now) + ts_offset, enc, &ct));
    CF_GUARD_OUT(cf_kms_otk_release(k, NULL, otk_id, tee_id, enc, sizeof(enc), ct.data, ct.len,
                                    &resp));
    if (ret != NULL)
        rc = cf_kms_wire_open_release(signer, cf_kms_release_key(k), otk_id, resp.enc,
                                      sizeof(resp.enc), resp.ct, resp.ct_len, ret);
out:
    cf_buf_free(&ct);
    return rc;
}

static int store_i64(const char *sql, const char *arg, int64_t *ret)
{
    cf_store *s = NULL;
    cf_store_rows *r = NULL;
    int rc;

    CF_GUARD(cf_store_open(g_dsn, &s));
    rc = cf_store_query_row(s, sql, CF_STORE_ARGS(cf_sv_text(arg)), &r);
    if (rc == 0)
        rc = cf_store_col_i64(r, 0, ret);
    cf_store_rows_close(r);
    cf_store_close(s);
    return rc;
}

static bool detail_has(int rc, const char *needle)
{
    const char *d = cf_err_detail(rc);
    if (strstr(d, needle) != NULL)
        return true;
    fprintf(stderr, "  detail: %s (wanted '%s')\n", d, needle);
    return false;
}

/* ---- wire formats ------------------------------------------------------------------------ */

static void test_wire(void)
{
    cf_hpke_key *rel = kt_keypair(), *tk = kt_keypair(), *other = kt_keypair();
    const char *otk_id = "otk_0123456789abcdef0123456789abcdef";
    const char *tee_id = "tee_fedcba9876543210fedcba9876543210";
    cf_kms_released *in = cf_secure_alloc(sizeof(*in)), *out = cf_secure_alloc(sizeof(*out));
    cf_kms_release_request rq;
    uint8_t enc[32];
    cf_buf ct, pt;
    const char *bad[] = {
        "{\"otk\":\"AA\",\"client_key\":\"AA\"}",
        "{\"client_key\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\",\"otk\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\","
        "\"otk_id\":\"otk_0123456789abcdef0123456789abcdef\",\"tee_id\":\"tee_fedcba9876543210fedcba9876543210\","
        "\"tenant\":\"acme\"} ",
        "{\"client_key\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\",\"otk\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\","
        "\"otk_id\":\"otk_0123456789abcdef0123456789abcdef\",\"tee_id\":\"tee_fedcba9876543210fedcba9876543210\","
        "\"tenant\":\"ac\\\"me\"}",
        "{\"client_key\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\",\"otk\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\","
        "\"otk_id\":\"otk_0123456789abcdef0123456789abcdef\",\"tee_id\":\"tee_fedcba9876543210fedcba9876543210\","
        "\"tenant\":\"acme\"}",
    };

    T_ASSERT(in != NULL && out != NULL);
    memcpy(in->otk_id, otk_id, strlen(otk_id) + 1);
    memcpy(in->tee_id, tee_id, strlen(tee_id) + 1);
    memcpy(in->tenant, "acme", 5);
    for (int i = 0; i < 32; i++) {
        in->otk[i] = (uint8_t)(i + 1);
        in->client_key[i] = (uint8_t)(0xa0 + i);
    }
    /* build -> parse round trip, exact form */
    cf_buf_init_secret(&pt, 1024);
    T_OK(cf_kms_wire_build_release(in, &pt));
    T_OK(cf_kms_wire_parse_release(pt.data, pt.len, out));
    T_MEMEQ(in, out, sizeof(*in));
    T_ASSERT(pt.len > 10 && memcmp(pt.data, "{\"client_key\":\"", 15) == 0);
    for (size_t i = 0; i < CF_ARRAY_LEN(bad); i++)
        T_FAILS(cf_kms_wire_parse_release((const uint8_t *)bad[i], strlen(bad[i]), out));
    cf_buf_free(&pt);

    /* release: only the holder of the TEE key opens it, only for this otk id */
    cf_buf_init(&ct, 2048);
    T_OK(cf_kms_wire_seal_release(rel, tk, in, enc, &ct));
    T_OK(cf_kms_wire_open_release(tk, rel, otk_id, enc, 32, ct.data, ct.len, out));
    T_MEMEQ(out->otk, in->otk, 32);
    T_ERR(cf_kms_wire_open_release(other, rel, otk_id, enc, 32, ct.data, ct.len, out), CF_E_DECRYPT);
    T_ERR(cf_kms_wire_open_release(tk, other, otk_id, enc, 32, ct.data, ct.len, out), CF_E_DECRYPT);
    T_ERR(cf_kms_wire_open_release(tk, rel, "otk_1123456789abcdef0123456789abcdef", enc, 32,
                                   ct.data, ct.len, out),
          CF_E_DECRYPT);
    cf_buf_reset(&ct);

    /* release request: strict plaintext, sender authenticated */
    T_OK(cf_kms_wire_seal_release_request(tk, rel, otk_id, tee_id, 1700000000, enc, &ct));
    T_OK(cf_kms_wire_open_release_request(rel, tk, otk_id, enc, 32, ct.data, ct.len, &rq));
    T_STREQ(rq.otk_id, otk_id);
    T_STREQ(rq.tee_id, tee_id);
    T_EQ(rq.ts, 1700000000);
    T_ERR(cf_kms_wire_open_release_request(rel, other, otk_id, enc, 32, ct.data, ct.len, &rq),
          CF_E_DECRYPT);
    {
        const char *extra = "{\"otk_id\":\"otk_0123456789abcdef0123456789abcdef\","
                            "\"tee_id\":\"tee_fedcba9876543210fedcba9876543210\",\"ts\":1,\"x\":1}";
        const char *ids = "{\"otk_id\":\"otk_X\",\"tee_id\":\"tee_Y\",\"ts\":1}";
        const char *good = "{\"otk_id\":\"otk_0123456789abcdef0123456789abcdef\","
                           "\"tee_id\":\"tee_fedcba9876543210fedcba9876543210\",\"ts\":1}";
        T_FAILS(cf_kms_wire_parse_release_request((const uint8_t *)extra, strlen(extra), &rq));
        T_FAILS(cf_kms_wire_parse_release_request((const uint8_t *)ids, strlen(ids), &rq));
        T_OK(cf_kms_wire_parse_release_request((const uint8_t *)good, strlen(good), &rq));
    }
    T_ASSERT(!cf_kms_id_valid("otk_0123456789ABCDEF0123456789abcdef", "otk_"));
    T_ASSERT(!cf_kms_id_valid("tee_0123456789abcdef0123456789abcde", "tee_"));
    T_ASSERT(cf_kms_tenant_valid("acme.corp-1_x"));
    T_ASSERT(!cf_kms_tenant_valid("-acme") && !cf_kms_tenant_valid("ac\"me") && !cf_kms_tenant_valid(""));
    cf_buf_free(&ct);
    cf_secure_free(in);
    cf_secure_free(out);
    cf_hpke_key_free(rel);
    cf_hpke_key_free(tk);
    cf_hpke_key_free(other);
}

/* ---- release key ---------------------------------------------------------------------------- */

static void test_release_key_persists(void)
{
    cf_kms *again = NULL;
    size_t n1 = 0, n2 = 0;
    const uint8_t *p1, *p2;

    T_ASSERT(strlen(cf_kms_release_kid(g_kms)) == CF_KEY_THUMBPRINT_LEN);
    T_OK(open_kms(g_manifest, 0, 60, &again));
    p1 = cf_hpke_key_pub(cf_kms_release_key(g_kms), &n1);
    p2 = cf_hpke_key_pub(cf_kms_release_key(again), &n2);
    T_EQ(n1, 32);
    T_EQ(n2, 32);
    T_MEMEQ(p1, p2, 32);
    T_STREQ(cf_kms_release_kid(g_kms), cf_kms_release_kid(again));
    cf_kms_close(again);
    /* created once, audited once */
    T_ASSERT(last_event("release_key.create") != NULL);
}

/* ---- registry -------------------------------------------------------------------------------- */

static void test_register_happy(void)
{
    cf_kms_join_token jt;
    cf_hpke_key *k = kt_keypair();
    cf_kms_tee t, got;
    char want[97];
    uint8_t m[48];
    int64_t uses = -1;
    json_t *ev;

    T_OK(new_token("acme", "demo", 600, 2, &jt));
    T_ASSERT(strncmp(jt.token, "cjt_", 4) == 0 && strlen(jt.token) == 47);
    T_ASSERT(cf_kms_id_valid(jt.id, "jt_"));
    T_OK(do_register(g_kms, jt.token, k, KT_M1, false, &t, NULL));
    T_ASSERT(cf_kms_id_valid(t.id, "tee_"));
    T_STREQ(t.tenant, "acme");
    T_STREQ(t.deployment, "demo");
    T_STREQ(t.platform, "sev-snp");
    T_EQ(t.status, CF_KMS_TEE_ACTIVE);
    T_EQ(t.attestation_count, 1);
    T_EQ(t.registered_at, atomic_load(&g_now));
    T_MEMEQ(t.public_key, kt_pub(k), 32);
    kt_meas(m, KT_M1);
    cf_hex_encode(m, 48, want);
    T_STREQ(t.measurement, want);
    T_ASSERT(strncmp(t.evidence_digest, "sha256:", 7) == 0 && strlen(t.evidence_digest) == 71);
    T_EQ(strlen(t.chip_id), 128);
    T_STREQ(t.endpoint, "https://127.0.0.1:9443");
    T_OK(cf_kms_tee_get(g_kms, NULL, t.id, NULL, &got));
    T_MEMEQ(&got, &t, sizeof(t));
    /* the token lost one use; only its hash is stored */
    T_OK(store_i64("SELECT uses_left FROM kms_join_token WHERE id = ?", jt.id, &uses));
    T_EQ(uses, 1);
    ev = last_event("tee.register");
    T_ASSERT(ev != NULL);
    T_STREQ(ev_str(ev, "outcome"), "success");
    {
        char res[64];
        T_OK(cf_fmt(res, sizeof(res), "tee/%s", t.id));
        T_STREQ(ev_str(ev, "resource"), res);
    }
    cf_wipe(&jt, sizeof(jt));
    cf_hpke_key_free(k);
}

static void test_register_rejections(void)
{
    cf_kms_join_token jt, once, pay, shortlived;
    cf_hpke_key *k = kt_keypair(), *k2 = kt_keypair();
    uint8_t nonce[32], report[CF_SNP_REPORT_LEN], bogus[32];
    cf_verify_result *vr = NULL;
    cf_kms_evidence ev;
    cf_kms_tee t;
    cf_buf cert;
    int64_t exp = 0, uses = -1;
    cf_kms *prod = NULL;
    int rc;

    cf_buf_init(&cert, CF_CERT_MAX_BYTES);
    T_OK(new_token("acme", "demo", 600, 5, &jt));

    /* wrong measurement: 403 with the verifier's reason; nothing consumed */
    rc = do_register(g_kms, jt.token, k, KT_MBAD, false, &t, &vr);
    T_ERR(rc, CF_E_VERIFY);
    T_ASSERT(detail_has(rc, "measurement"));
    T_ASSERT(vr != NULL && vr->checks[CF_CHECK_MEASUREMENT].status == CF_CHECK_FAILED);
    cf_verify_result_free(vr);
    vr = NULL;
    T_OK(store_i64("SELECT uses_left FROM kms_join_token WHERE id = ?", jt.id, &uses));
    T_EQ(uses, 5);
    T_STREQ(ev_str(last_event("tee.register"), "outcome"), "failure");
    T_ASSERT(strstr(ev_str(last_event("tee.register"), "reason"), "measurement") != NULL);

    /* debug launch */
    rc = do_register(g_kms, jt.token, k, KT_M1, true, &t, &vr);
    T_ERR(rc, CF_E_VERIFY);
    T_ASSERT(vr != NULL && vr->checks[CF_CHECK_DEBUG].status == CF_CHECK_FAILED);
    T_ASSERT(detail_has(rc, "debug"));
    cf_verify_result_free(vr);
    vr = NULL;

    /* measurement of another tenant's deployment under this token */
    rc = do_register(g_kms, jt.token, k, KT_M2, false, &t, NULL);
    T_ERR(rc, CF_E_VERIFY);

    /* evidence bound to another key than the one registered */
    T_OK(cf_kms_nonce_issue(g_kms, NULL, nonce, &exp));
    T_OK(kt_evidence(g_sim, kt_pub(k2), nonce, KT_M1, false, report, &cert));
    ev = (cf_kms_evidence){"sev-snp", report, sizeof(report), cert.data, cert.len};
    rc = cf_kms_tee_register(g_kms, NULL, jt.token, nonce, kt_pub(k), NULL, &ev, &t, &vr);
    T_ERR(rc, CF_E_VERIFY);
    T_ASSERT(vr != NULL && vr->checks[CF_CHECK_BINDING].status == CF_CHECK_FAILED);
    cf_verify_result_free(vr);
    vr = NULL;
    /* ...the same nonce is still usable: a failed registration consumes nothing */
    T_OK(kt_evidence(g_sim, kt_pub(k), nonce, KT_M1, false, report, &cert));
    T_OK(cf_kms_tee_register(g_kms, NULL, jt.token, nonce, kt_pub(k), NULL, &ev, &t, NULL));
    /* reused nonce */
    rc = cf_kms_tee_register(g_kms, NULL, jt.token, nonce, kt_pub(k2), NULL, &ev, &t, NULL);
    T_ERR(rc, CF_E_FORBIDDEN);
    T_ASSERT(detail_has(rc, "nonce unknown or already used"));
    /* unknown nonce */
    T_OK(cf_random(bogus, sizeof(bogus)));
    T_OK(kt_evidence(g_sim, kt_pub(k2), bogus, KT_M1, false, report, &cert));
    T_ERR(cf_kms_tee_register(g_kms, NULL, jt.token, bogus, kt_pub(k2), NULL, &ev, &t, NULL), CF_E_FORBIDDEN);
    /* stale nonce */
    T_OK(cf_kms_nonce_issue(g_kms, NULL, nonce, &exp));
    T_OK(kt_evidence(g_sim, kt_pub(k2), nonce, KT_M1, false, report, &cert));
    advance(CF_KMS_NONCE_TTL_S);
    rc = cf_kms_tee_register(g_kms, NULL, jt.token, nonce, kt_pub(k2), NULL, &ev, &t, NULL);
    T_ERR(rc, CF_E_FORBIDDEN);
    T_ASSERT(detail_has(rc, "nonce expired"));
    /* the same key twice */
    T_ERR(do_register(g_kms, jt.token, k, KT_M1, false, &t, NULL), CF_E_EXISTS);

    /* single-use token, used twice */
    T_OK(new_token("acme", "demo", 600, 1, &once));
    T_OK(do_register(g_kms, once.token, k2, KT_M1, false, &t, NULL));
    {
        cf_hpke_key *k3 = kt_keypair();
        rc = do_register(g_kms, once.token, k3, KT_M1, false, &t, NULL);
        T_ERR(rc, CF_E_FORBIDDEN);
        T_ASSERT(detail_has(rc, "no uses left"));
        /* expired token */
        T_OK(new_token("acme", "demo", 5, 3, &shortlived));
        advance(6);
        rc = do_register(g_kms, shortlived.token, k3, KT_M1, false, &t, NULL);
        T_ERR(rc, CF_E_FORBIDDEN);
        T_ASSERT(detail_has(rc, "expired"));
        /* unknown token, and a malformed one */
        T_ERR(do_register(g_kms, "cjt_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", k3, KT_M1, false, &t, NULL),
              CF_E_UNAUTHENTICATED);
        T_ERR(do_register(g_kms, "nope", k3, KT_M1, false, &t, NULL), CF_E_UNAUTHENTICATED);
        /* a manifest without the simulated root: the chain check names it */
        T_OK(open_kms(g_prod_manifest, 0, 60, &prod));
        T_OK(new_token("acme", "demo", 600, 1, &pay));
        rc = do_register(prod, pay.token, k3, KT_M1, false, &t, &vr);
        T_ERR(rc, CF_E_VERIFY);
        T_ASSERT(detail_has(rc, "simulated root"));
        T_ASSERT(vr != NULL && vr->checks[CF_CHECK_CHAIN].status == CF_CHECK_FAILED);
        cf_verify_result_free(vr);
        vr = NULL;
        cf_kms_close(prod);
        cf_hpke_key_free(k3);
    }
    /* join-token creation checks the manifest */
    T_ERR(new_token("acme", "nodeploy", 60, 1, &pay), CF_E_NOT_FOUND);
    T_ERR(new_token("acme", "pay", 60, 1, &pay), CF_E_FORBIDDEN);
    T_ERR(new_token("acme", "demo", 0, 1, &pay), CF_E_RANGE);
    T_ERR(new_token("acme", "demo", 60, 0, &pay), CF_E_RANGE);
    T_ERR(new_token("ac/me", "demo", 60, 1, &pay), CF_E_INVAL);
    /* endpoints are URLs */
    T_ERR(cf_kms_tee_register(g_kms, NULL, jt.token, nonce, kt_pub(k2), "ftp://x", &ev, &t, NULL),
          CF_E_INVAL);
    T_ERR(cf_kms_tee_register(g_kms, NULL, jt.token, nonce, kt_pub(k2), "https://a b", &ev, &t, NULL),
          CF_E_INVAL);
    /* platforms other than sev-snp */
    ev.platform = "tdx";
    T_ERR(cf_kms_tee_register(g_kms, NULL, jt.token, nonce, kt_pub(k2), NULL, &ev, &t, NULL), CF_E_UNSUPPORTED);
    cf_buf_free(&cert);
    cf_hpke_key_free(k);
    cf_hpke_key_free(k2);
}

static void test_nonce_bound(void)
{
    cf_kms *k = NULL;
    uint8_t n[32];
    int64_t exp = 0;

    T_OK(open_kms(g_manifest, 3, 60, &k));
    advance(CF_KMS_NONCE_TTL_S); /* earlier tests' nonces expire */
    T_OK(cf_kms_nonce_issue(k, NULL, n, &exp));
    T_EQ(exp, atomic_load(&g_now) + CF_KMS_NONCE_TTL_S);
    T_OK(cf_kms_nonce_issue(k, NULL, n, &exp));
    T_OK(cf_kms_nonce_issue(k, NULL, n, &exp));
    T_ERR(cf_kms_nonce_issue(k, NULL, n, &exp), CF_E_RATE_LIMITED);
    advance(CF_KMS_NONCE_TTL_S);
    T_OK(cf_kms_nonce_issue(k, NULL, n, &exp));
    cf_kms_close(k);
}

/* ---- one-time keys --------------------------------------------------------------------------- */

static void test_otk_roundtrip(void)
{
    tee_t a, b;
    cf_hpke_key *client = kt_keypair(), *stranger = kt_keypair();
    cf_kms_issued iss;
    uint8_t otk[32];
    cf_kms_released *rel = cf_secure_alloc(sizeof(*rel));
    int64_t n = -1;
    int rc;

    T_ASSERT(rel != NULL);
    T_OK(make_tee("acme", "demo", KT_M1, &a));
    T_OK(make_tee("acme", "demo", KT_M1, &b));
    T_OK(issue("acme", client, a.rec.id, &iss, otk));
    T_EQ(iss.expires_at, atomic_load(&g_now) + 30);
    T_STREQ(iss.tee_id, a.rec.id);
    /* at rest the OTK is sealed, never in clear */
    T_OK(store_i64("SELECT COUNT(*) FROM kms_otk WHERE id = ? AND state = 'issued' AND sealed IS NOT NULL",
                   iss.otk_id, &n));
    T_EQ(n, 1);

    /* somebody without the TEE key cannot release it (B's proof for A's id) */
    T_ERR(release(g_kms, iss.otk_id, a.rec.id, stranger, 0, NULL), CF_E_FORBIDDEN);
    T_ERR(release(g_kms, iss.otk_id, a.rec.id, b.key, 0, NULL), CF_E_FORBIDDEN);
    /* another registered TEE asking for A's OTK with its own valid proof */
    rc = release(g_kms, iss.otk_id, b.rec.id, b.key, 0, NULL);
    T_ERR(rc, CF_E_FORBIDDEN);
    T_ASSERT(detail_has(rc, "is not bound to TEE"));
    /* stale proof */
    rc = release(g_kms, iss.otk_id, a.rec.id, a.key, -(CF_KMS_RELEASE_SKEW_S + 1), NULL);
    T_ERR(rc, CF_E_FORBIDDEN);
    T_ASSERT(detail_has(rc, "timestamp"));

    /* the TEE gets it: same OTK, tenant and client key inside */
    T_OK(release(g_kms, iss.otk_id, a.rec.id, a.key, 0, rel));
    T_MEMEQ(rel->otk, otk, 32);
    T_STREQ(rel->tenant, "acme");
    T_STREQ(rel->tee_id, a.rec.id);
    T_STREQ(rel->otk_id, iss.otk_id);
    T_MEMEQ(rel->client_key, kt_pub(client), 32);
    T_STREQ(ev_str(last_event("otk.release"), "outcome"), "success");
    /* once: wiped and refused */
    T_OK(store_i64("SELECT COUNT(*) FROM kms_otk WHERE id = ? AND state = 'released' AND sealed IS NULL",
                   iss.otk_id, &n));
    T_EQ(n, 1);
    rc = release(g_kms, iss.otk_id, a.rec.id, a.key, 0, NULL);
    T_ERR(rc, CF_E_CONFLICT);
    T_ASSERT(detail_has(rc, "OTK already released"));
    T_STREQ(ev_str(last_event("otk.release"), "outcome"), "failure");
    /* unknown OTK */
    T_ERR(release(g_kms, "otk_00000000000000000000000000000000", a.rec.id, a.key, 0, NULL),
          CF_E_NOT_FOUND);

    /* issue refusals */
    rc = cf_kms_otk_issue(g_kms, NULL, "globex", "mallory", kt_pub(client), a.rec.id, &iss);
    T_ERR(rc, CF_E_FORBIDDEN);
    T_ASSERT(detail_has(rc, "does not serve tenant globex"));
    rc = cf_kms_otk_issue(g_kms, NULL, "acme", "client-1", NULL, a.rec.id, &iss);
    T_ERR(rc, CF_E_INVAL);
    T_ASSERT(detail_has(rc, "no client key registered for this principal"));
    T_ERR(cf_kms_otk_issue(g_kms, NULL, "acme", "client-1", kt_pub(client),
                           "tee_00000000000000000000000000000000", &iss),
          CF_E_NOT_FOUND);
    T_ERR(cf_kms_otk_issue(g_kms, NULL, "acme", "client-1", kt_pub(client), "tee_x", &iss), CF_E_INVAL);

    /* expiry: refused with 410's code, then purged (sealed value erased) */
    T_OK(issue("acme", client, b.rec.id, &iss, otk));
    advance(31);
    rc = release(g_kms, iss.otk_id, b.rec.id, b.key, 0, NULL);
    T_ERR(rc, CF_E_EXPIRED);
    T_ASSERT(detail_has(rc, "OTK expired"));
    T_OK(cf_kms_purge(g_kms, NULL));
    T_OK(store_i64("SELECT COUNT(*) FROM kms_otk WHERE id = ? AND state = 'expired' AND sealed IS NULL",
                   iss.otk_id, &n));
    T_EQ(n, 1);
    T_ERR(release(g_kms, iss.otk_id, b.rec.id, b.key, 0, NULL), CF_E_EXPIRED);
    /* retention over: the row goes */
    advance(CF_KMS_OTK_RETAIN_S + 1);
    {
        tee_t c;
        T_OK(make_tee("acme", "demo", KT_M1, &c)); /* fresh TEE: the others are stale now */
        T_OK(cf_kms_purge(g_kms, NULL));
        cf_hpke_key_free(c.key);
    }
    T_OK(store_i64("SELECT COUNT(*) FROM kms_otk WHERE id = ?", iss.otk_id, &n));
    T_EQ(n, 0);

    cf_secure_free(rel);
    cf_hpke_key_free(a.key);
    cf_hpke_key_free(b.key);
    cf_hpke_key_free(client);
    cf_hpke_key_free(stranger);
}

typedef struct {
    const char *otk_id, *tee_id;
    const cf_hpke_key *key;
    int rc;
    pthread_barrier_t *bar;
} racer;

static void *race_thread(void *arg)
{
    racer *r = arg;
    pthread_barrier_wait(r->bar);
    r->rc = release(g_kms, r->otk_id, r->tee_id, r->key, 0, NULL);
    return NULL;
}

static void test_release_race_threads(void)
{
    tee_t a;
    cf_hpke_key *client = kt_keypair();
    pthread_barrier_t bar;

    T_OK(make_tee("acme", "demo", KT_M1, &a));
    for (int round = 0; round < 8; round++) {
        cf_kms_issued iss;
        uint8_t otk[32];
        racer r[3];
        pthread_t th[3];
        int ok = 0, conflict = 0;

        T_OK(issue("acme", client, a.rec.id, &iss, otk));
        pthread_barrier_init(&bar, NULL, 3);
        for (int i = 0; i < 3; i++) {
            r[i] = (racer){.otk_id = iss.otk_id, .tee_id = a.rec.id, .key = a.key, .bar = &bar};
            T_ASSERT(pthread_create(&th[i], NULL, race_thread, &r[i]) == 0);
        }
        for (int i = 0; i < 3; i++) {
            pthread_join(th[i], NULL);
            ok += r[i].rc == 0;
            conflict += r[i].rc == CF_E_CONFLICT;
        }
        pthread_barrier_destroy(&bar);
        T_EQ(ok, 1);
        T_EQ(conflict, 2);
    }
    cf_hpke_key_free(a.key);
    cf_hpke_key_free(client);
}

/* ---- re-attestation, staleness, operator actions ----------------------------------------------- */

static int reattest(const tee_t *t, const cf_hpke_key *bound_key, uint8_t meas, bool *quarantined,
                    cf_kms_tee *rec)
{
    uint8_t nonce[32], report[CF_SNP_REPORT_LEN];
    int64_t exp = 0;
    cf_buf cert;
    cf_kms_evidence ev;
    const cf_kms_who attest = {.actor = "spiffe://coffer/attest"};
    int rc;

    cf_buf_init(&cert, CF_CERT_MAX_BYTES);
    CF_GUARD_OUT(cf_kms_nonce_issue(g_kms, NULL, nonce, &exp));
    CF_GUARD_OUT(kt_evidence(g_sim, kt_pub(bound_key), nonce, meas, false, report, &cert));
    ev = (cf_kms_evidence){"sev-snp", report, sizeof(report), cert.data, cert.len};
    rc = cf_kms_tee_attest(g_kms, &attest, t->rec.id, nonce, &ev, rec, quarantined, NULL);
out:
    cf_buf_free(&cert);
    return rc;
}

static void test_reattestation(void)
{
    tee_t a, b;
    cf_hpke_key *client = kt_keypair(), *other = kt_keypair();
    cf_kms_issued iss;
    cf_kms_tee rec;
    uint8_t otk[32], nonce[32], report[CF_SNP_REPORT_LEN];
    bool q = true;
    json_t *ev;
    cf_buf cert;
    cf_kms_evidence e;
    int rc;

    T_OK(make_tee("acme", "demo", KT_M1, &a));
    T_OK(make_tee("acme", "demo", KT_M1, &b));
    advance(10);
    T_OK(reattest(&a, a.key, KT_M1, &q, &rec));
    T_ASSERT(!q);
    T_EQ(rec.attestation_count, 2);
    T_EQ(rec.last_attested_at, atomic_load(&g_now));
    T_STREQ(ev_str(last_event("tee.attest"), "outcome"), "success");

    /* a nonce the KMS did not issue: refused, the TEE untouched */
    cf_buf_init(&cert, CF_CERT_MAX_BYTES);
    T_OK(cf_random(nonce, sizeof(nonce)));
    T_OK(kt_evidence(g_sim, kt_pub(a.key), nonce, KT_M2, false, report, &cert));
    e = (cf_kms_evidence){"sev-snp", report, sizeof(report), cert.data, cert.len};
    T_ERR(cf_kms_tee_attest(g_kms, NULL, a.rec.id, nonce, &e, &rec, &q, NULL), CF_E_FORBIDDEN);
    T_OK(cf_kms_tee_get(g_kms, NULL, a.rec.id, NULL, &rec));
    T_EQ(rec.status, CF_KMS_TEE_ACTIVE);
    cf_buf_free(&cert);

    /* an OTK outstanding for A, then A's measurement changes */
    T_OK(issue("acme", client, a.rec.id, &iss, otk));
    /* KT_M3 is allowed by the manifest for "demo": the evidence verifies, but it
     * is not what this TEE registered with */
    T_OK(reattest(&a, a.key, KT_M3, &q, &rec));
    T_ASSERT(q);
    T_EQ(rec.status, CF_KMS_TEE_QUARANTINED);
    T_ASSERT(strstr(rec.reason, "measurement changed") != NULL);
    ev = last_event("tee.quarantined");
    T_ASSERT(ev != NULL);
    T_STREQ(ev_str(ev, "outcome"), "alert");
    T_STREQ(ev_str(ev, "trigger"), "attestation");
    /* keys revoked at once, next release refused, no new OTK */
    T_ERR(cf_kms_keys_check_tee(g_keys, a.rec.id), CF_E_REVOKED);
    rc = release(g_kms, iss.otk_id, a.rec.id, a.key, 0, NULL);
    T_ERR(rc, CF_E_FORBIDDEN);
    T_ASSERT(detail_has(rc, "quarantined"));
    T_ERR(cf_kms_otk_issue(g_kms, NULL, "acme", "c", kt_pub(client), a.rec.id, &iss), CF_E_FORBIDDEN);
    /* a quarantined TEE cannot be re-attested back */
    T_ERR(reattest(&a, a.key, KT_M1, &q, &rec), CF_E_CONFLICT);

    /* evidence bound to another key quarantines too */
    T_OK(reattest(&b, other, KT_M1, &q, &rec));
    T_ASSERT(q);
    T_ASSERT(strstr(rec.reason, "binding") != NULL);
    /* evidence that does not verify (measurement in no deployment) */
    {
        tee_t c;
        T_OK(make_tee("acme", "demo", KT_M1, &c));
        T_OK(reattest(&c, c.key, KT_MBAD, &q, &rec));
        T_ASSERT(q);
        T_ASSERT(strstr(rec.reason, "attestation failed: measurement") != NULL);
        cf_hpke_key_free(c.key);
    }
    /* malformed evidence bound to a KMS nonce (a short report) quarantines too */
    {
        tee_t d;
        uint8_t n2[32], rep[CF_SNP_REPORT_LEN];
        int64_t exp2 = 0;
        cf_buf cert2;
        cf_kms_evidence bad;
        T_OK(make_tee("acme", "demo", KT_M1, &d));
        T_OK(cf_kms_nonce_issue(g_kms, NULL, n2, &exp2));
        cf_buf_init(&cert2, CF_CERT_MAX_BYTES);
        T_OK(kt_evidence(g_sim, kt_pub(d.key), n2, KT_M1, false, rep, &cert2));
        bad = (cf_kms_evidence){"sev-snp", rep, 1000, cert2.data, cert2.len};
        T_OK(cf_kms_tee_attest(g_kms, NULL, d.rec.id, n2, &bad, &rec, &q, NULL));
        T_ASSERT(q);
        T_ASSERT(strstr(rec.reason, "evidence malformed") != NULL);
        cf_buf_free(&cert2);
        cf_hpke_key_free(d.key);
    }
    cf_hpke_key_free(a.key);
    cf_hpke_key_free(b.key);
    cf_hpke_key_free(client);
    cf_hpke_key_free(other);
}

static void test_stale_quarantine(void)
{
    tee_t a;
    cf_hpke_key *client = kt_keypair();
    cf_kms_issued iss;
    cf_kms_tick_stats st;
    cf_kms_tee rec;
    uint8_t otk[32];
    json_t *ev;
    int rc;

    T_OK(make_tee("acme", "demo", KT_M1, &a));
    advance(2 * 60); /* exactly 2 x interval: still fresh */
    T_OK(issue("acme", client, a.rec.id, &iss, otk));
    T_OK(release(g_kms, iss.otk_id, a.rec.id, a.key, 0, NULL));
    T_OK(issue("acme", client, a.rec.id, &iss, otk));
    advance(1);
    rc = release(g_kms, iss.otk_id, a.rec.id, a.key, 0, NULL);
    T_ERR(rc, CF_E_FORBIDDEN);
    T_ASSERT(detail_has(rc, "stale"));
    T_ERR(cf_kms_otk_issue(g_kms, NULL, "acme", "c", kt_pub(client), a.rec.id, &iss), CF_E_FORBIDDEN);
    memset(&st, 0, sizeof(st));
    T_OK(cf_kms_tick(g_kms, &st));
    T_ASSERT(st.quarantined >= 1);
    T_OK(cf_kms_tee_get(g_kms, NULL, a.rec.id, NULL, &rec));
    T_EQ(rec.status, CF_KMS_TEE_QUARANTINED);
    T_ASSERT(strstr(rec.reason, "stale") != NULL);
    ev = last_event("tee.quarantined");
    T_STREQ(ev_str(ev, "trigger"), "stale");
    T_ERR(cf_kms_keys_check_tee(g_keys, a.rec.id), CF_E_REVOKED);
    /* a second tick finds nothing new */
    memset(&st, 0, sizeof(st));
    T_OK(cf_kms_tick(g_kms, &st));
    T_EQ(st.quarantined, 0);
    cf_hpke_key_free(a.key);
    cf_hpke_key_free(client);
}

static void test_operator_actions(void)
{
    tee_t a, g;
    cf_kms_tee rec;
    int rc;

    T_OK(make_tee("acme", "demo", KT_M1, &a));
    T_OK(make_tee("globex", "pay", KT_M2, &g));
    /* tenant scope */
    rc = cf_kms_tee_quarantine(g_kms, &g_op, a.rec.id, "globex", "suspicious", &rec);
    T_ERR(rc, CF_E_FORBIDDEN);
    T_ERR(cf_kms_tee_get(g_kms, &g_op, a.rec.id, "globex", &rec), CF_E_FORBIDDEN);
    T_ERR(cf_kms_tee_quarantine(g_kms, &g_op, a.rec.id, NULL, "", &rec), CF_E_INVAL);
    T_OK(cf_kms_tee_quarantine(g_kms, &g_op, a.rec.id, "acme", "suspicious", &rec));
    T_EQ(rec.status, CF_KMS_TEE_QUARANTINED);
    T_STREQ(rec.reason, "suspicious");
    T_ERR(cf_kms_keys_check_tee(g_keys, a.rec.id), CF_E_REVOKED);
    rc = cf_kms_tee_quarantine(g_kms, &g_op, a.rec.id, NULL, "again", &rec);
    T_ERR(rc, CF_E_CONFLICT);
    T_OK(cf_kms_tee_revoke(g_kms, &g_op, a.rec.id, NULL, "compromised", &rec));
    T_EQ(rec.status, CF_KMS_TEE_REVOKED);
    T_ERR(cf_kms_tee_revoke(g_kms, &g_op, a.rec.id, NULL, "again", &rec), CF_E_CONFLICT);
    T_ERR(cf_kms_tee_quarantine(g_kms, &g_op, a.rec.id, NULL, "again", &rec), CF_E_CONFLICT);
    T_ERR(cf_kms_tee_revoke(g_kms, &g_op, "tee_00000000000000000000000000000000", NULL, "x", &rec),
          CF_E_NOT_FOUND);
    T_STREQ(ev_str(last_event("tee.revoke"), "actor"), "operator-1");
    cf_hpke_key_free(a.key);
    cf_hpke_key_free(g.key);
}

static void test_list(void)
{
    cf_kms_tee *out = calloc(CF_KMS_LIST_MAX, sizeof(*out));
    cf_kms_tee_filter f;
    size_t n = 0, total = 0;
    char after[CF_KMS_TEE_ID_LEN + 1] = "";

    T_ASSERT(out != NULL);
    memset(&f, 0, sizeof(f));
    f.tenant = "globex";
    T_OK(cf_kms_tee_list(g_kms, &g_op, &f, out, CF_KMS_LIST_MAX, &n));
    T_ASSERT(n >= 1);
    for (size_t i = 0; i < n; i++)
        T_STREQ(out[i].tenant, "globex");
    f.tenant = "acme";
    f.status = "active";
    T_OK(cf_kms_tee_list(g_kms, &g_op, &f, out, CF_KMS_LIST_MAX, &n));
    for (size_t i = 0; i < n; i++)
        T_EQ(out[i].status, CF_KMS_TEE_ACTIVE);
    /* paging: one at a time, ascending ids, no repeats */
    memset(&f, 0, sizeof(f));
    f.limit = 1;
    for (;;) {
        f.after = after[0] ? after : NULL;
        T_OK(cf_kms_tee_list(g_kms, &g_op, &f, out, CF_KMS_LIST_MAX, &n));
        if (n == 0)
            break;
        T_EQ(n, 1);
        T_ASSERT(after[0] == 0 || strcmp(out[0].id, after) > 0);
        memcpy(after, out[0].id, sizeof(after));
        total++;
    }
    T_ASSERT(total >= 5);
    f.status = "bogus";
    T_ERR(cf_kms_tee_list(g_kms, &g_op, &f, out, CF_KMS_LIST_MAX, &n), CF_E_INVAL);
    free(out);
}

static void test_reconcile(void)
{
    tee_t a;
    cf_store *s = NULL;
    cf_kms_tick_stats st;

    T_OK(make_tee("acme", "demo", KT_M1, &a));
    /* as if the process died between the registry change and the key revocation */
    T_OK(cf_store_open(g_dsn, &s));
    T_OK(cf_store_exec(s, "UPDATE kms_tee SET status = 'quarantined', reason = 'x' WHERE id = ?",
                       CF_STORE_ARGS(cf_sv_text(a.rec.id)), NULL));
    cf_store_close(s);
    T_OK(cf_kms_keys_check_tee(g_keys, a.rec.id));
    memset(&st, 0, sizeof(st));
    T_OK(cf_kms_tick(g_kms, &st));
    T_ASSERT(st.keys_revoked >= 1);
    T_ERR(cf_kms_keys_check_tee(g_keys, a.rec.id), CF_E_REVOKED);
    cf_hpke_key_free(a.key);
}

/* ---- fail closed, secrets, restart ------------------------------------------------------------- */

static void test_fail_closed_audit(void)
{
    tee_t a;
    cf_hpke_key *client = kt_keypair();
    cf_kms_issued iss;
    cf_kms_join_token jt;
    uint8_t otk[32], n[32];
    int64_t before = -1, after = -1, exp;
    int rc;

    T_OK(make_tee("acme", "demo", KT_M1, &a));
    T_OK(store_i64("SELECT COUNT(*) FROM kms_otk WHERE tee_id = ?", a.rec.id, &before));
    atomic_store(&g_audit_fail, 1);
    rc = cf_kms_otk_issue(g_kms, NULL, "acme", "c", kt_pub(client), a.rec.id, &iss);
    T_ERR(rc, CF_E_UNAVAILABLE);
    T_ASSERT(detail_has(rc, "audit"));
    T_ERR(cf_kms_nonce_issue(g_kms, NULL, n, &exp), CF_E_UNAVAILABLE);
    T_ERR(new_token("acme", "demo", 60, 1, &jt), CF_E_UNAVAILABLE);
    atomic_store(&g_audit_fail, 0);
    T_OK(store_i64("SELECT COUNT(*) FROM kms_otk WHERE tee_id = ?", a.rec.id, &after));
    T_EQ(after, before);

    /* a release whose event cannot be written leaves the OTK issued */
    T_OK(issue("acme", client, a.rec.id, &iss, otk));
    atomic_store(&g_audit_fail, 1);
    T_ERR(release(g_kms, iss.otk_id, a.rec.id, a.key, 0, NULL), CF_E_UNAVAILABLE);
    atomic_store(&g_audit_fail, 0);
    T_OK(release(g_kms, iss.otk_id, a.rec.id, a.key, 0, NULL));
    cf_hpke_key_free(a.key);
    cf_hpke_key_free(client);
}

static void test_no_secrets_in_events(void)
{
    tee_t a;
    cf_hpke_key *client = kt_keypair();
    cf_kms_issued iss;
    cf_kms_join_token jt;
    uint8_t otk[32];
    char hex[65], b64[44];
    char *all;
    cf_kms_released *rel = cf_secure_alloc(sizeof(*rel));

    T_ASSERT(rel != NULL);
    T_OK(make_tee("acme", "demo", KT_M1, &a));
    T_OK(new_token("acme", "demo", 60, 1, &jt));
    T_OK(issue("acme", client, a.rec.id, &iss, otk));
    T_OK(release(g_kms, iss.otk_id, a.rec.id, a.key, 0, rel));
    cf_hex_encode(otk, 32, hex);
    cf_b64url_encode(otk, 32, b64);
    pthread_mutex_lock(&g_ev_mu);
    all = json_dumps(g_events, JSON_COMPACT);
    pthread_mutex_unlock(&g_ev_mu);
    T_ASSERT(all != NULL);
    T_ASSERT(strstr(all, iss.otk_id) != NULL); /* ids are there */
    T_ASSERT(strstr(all, hex) == NULL && strstr(all, b64) == NULL);
    T_ASSERT(strstr(all, jt.token) == NULL && strstr(all, jt.token + 4) == NULL);
    free(all);
    cf_wipe(&jt, sizeof(jt));
    cf_secure_free(rel);
    cf_hpke_key_free(a.key);
    cf_hpke_key_free(client);
}

static void test_revoked_key_version(void)
{
    tee_t a;
    cf_hpke_key *client = kt_keypair();
    cf_kms_issued iss;
    cf_kms_tenant_info info;
    cf_kms_caller admin = {.principal = "acme-admin"};
    uint8_t otk[32];
    int64_t n = -1;
    int rc;

    T_OK(make_tee("acme", "demo", KT_M1, &a));
    T_OK(issue("acme", client, a.rec.id, &iss, otk));
    T_OK(cf_kms_keys_describe(g_keys, &admin, "acme", &info));
    T_OK(cf_kms_keys_revoke_version(g_keys, &admin, "acme", info.current_version, "rotation drill",
                                    NULL));
    /* sealed under the revoked version: refused, and the OTK is left as it was */
    rc = release(g_kms, iss.otk_id, a.rec.id, a.key, 0, NULL);
    T_ERR(rc, CF_E_REVOKED);
    T_ASSERT(detail_has(rc, "revoked"));
    T_OK(store_i64("SELECT COUNT(*) FROM kms_otk WHERE id = ? AND state = 'issued'", iss.otk_id, &n));
    T_EQ(n, 1);
    /* new OTKs use the new current version */
    T_OK(issue("acme", client, a.rec.id, &iss, otk));
    T_OK(release(g_kms, iss.otk_id, a.rec.id, a.key, 0, NULL));
    cf_hpke_key_free(a.key);
    cf_hpke_key_free(client);
}

static void test_restart_keeps_keys(void)
{
    tee_t a;
    cf_hpke_key *client = kt_keypair();
    cf_kms_issued iss;
    uint8_t otk[32];
    cf_kms_released *rel = cf_secure_alloc(sizeof(*rel));
    cf_kms_keys_opts ko = {.clock = test_clock};
    cf_kms_tee rec;

    T_ASSERT(rel != NULL);
    T_OK(make_tee("acme", "demo", KT_M1, &a));
    T_OK(issue("acme", client, a.rec.id, &iss, otk));
    /* close everything but the HSM (one per process), open again */
    cf_kms_close(g_kms);
    cf_kms_keys_close(g_keys);
    g_kms = NULL;
    g_keys = NULL;
    T_OK(cf_kms_keys_open(g_hsm, g_dsn, g_spool, &ko, &g_keys));
    T_OK(open_kms(g_manifest, 0, 60, &g_kms));
    T_OK(cf_kms_tee_get(g_kms, NULL, a.rec.id, NULL, &rec));
    T_EQ(rec.status, CF_KMS_TEE_ACTIVE);
    T_OK(release(g_kms, iss.otk_id, a.rec.id, a.key, 0, rel));
    T_MEMEQ(rel->otk, otk, 32);
    cf_secure_free(rel);
    cf_hpke_key_free(a.key);
    cf_hpke_key_free(client);
}

int main(void)
{
    int rc;

    cf_log_set_level(CF_LOG_ERROR);
    rc = setup();
    if (rc != 0) {
        fprintf(stderr, "setup failed: %s\n", cf_err_detail(rc));
        teardown();
        return 1;
    }
    T_RUN(test_wire);
    T_RUN(test_release_key_persists);
    T_RUN(test_register_happy);
    T_RUN(test_register_rejections);
    T_RUN(test_nonce_bound);
    T_RUN(test_otk_roundtrip);
    T_RUN(test_release_race_threads);
    T_RUN(test_reattestation);
    T_RUN(test_stale_quarantine);
    T_RUN(test_operator_actions);
    T_RUN(test_list);
    T_RUN(test_reconcile);
    T_RUN(test_fail_closed_audit);
    T_RUN(test_no_secrets_in_events);
    T_RUN(test_revoked_key_version);
    T_RUN(test_restart_keeps_keys);
    teardown();
    return t_done();
}
