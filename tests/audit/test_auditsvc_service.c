/*
 * Integration: `cofferd audit` as its own process with TLS, an internal CA,
 * service client certificates (spiffe://coffer/kms, .../iam, a rogue one),
 * and access tokens minted against a JWKS file. Covers: who may append
 * (no certificate 401, a non-service identity 403, an event naming another
 * service 403), batch validation, de-duplication on resend and conflicts,
 * signed tree heads (on demand, by size, listed, periodic), inclusion and
 * consistency proofs checked with the library verifier, tenant scoping of
 * entries (a tenant sees only its own, naming another is 403, platform
 * auditors see all), filters and paging, the audit of reads, a complete
 * verification of everything fetched over HTTP, and a restart keeping the
 * key and the history. Every process is stopped by pid.
 */
#include <pthread.h>

#include "auditlog/event.h"
#include "auditlog/sth.h"
#include "auditlog/verify.h"
#include "auditsvc_testutil.h"
#include "test.h"

#ifndef COFFERD_BIN
#define COFFERD_BIN ""
#endif

static char g_dir[64];
static pid_t g_pid = -1;
static char g_url[64];
static cf_key *g_iam, *g_pub;
static cf_http_client *g_anon, *g_kms, *g_iamc, *g_rogue;
static char *t_platform, *t_admin, *t_operator, *t_acme, *t_globex, *t_client;
static const char *const g_tenants[] = {"acme", "globex", ""};

/* ---- process ---- */

static int start_service(void)
{
    char a[10][600], port_file[128], log[128];
    char *argv[16];
    uint16_t port = 0;
    int n = 0;

    at_fmt(port_file, sizeof(port_file), "%s/port", g_dir);
    at_fmt(log, sizeof(log), "%s/audit.log", g_dir);
    (void)unlink(port_file);
    at_fmt(a[0], sizeof(a[0]), "--state_dir=%s/state", g_dir);
    at_fmt(a[1], sizeof(a[1]), "--port_file=%s", port_file);
    at_fmt(a[2], sizeof(a[2]), "--tls.cert=%s/audit.pem", g_dir);
    at_fmt(a[3], sizeof(a[3]), "--tls.key=%s/audit.key", g_dir);
    at_fmt(a[4], sizeof(a[4]), "--tls.ca=%s/ca.pem", g_dir);
    at_fmt(a[5], sizeof(a[5]), "--iam.jwks=%s/jwks.json", g_dir);
    at_fmt(a[6], sizeof(a[6]), "--hsm.pin=@%s/pin", g_dir);
    at_fmt(a[7], sizeof(a[7]), "--hsm.so_pin=@%s/sopin", g_dir);
    at_fmt(a[8], sizeof(a[8]), "--audit.sth_interval=1s");
    at_fmt(a[9], sizeof(a[9]), "--log.level=warn");
    argv[n++] = (char *)(uintptr_t)COFFERD_BIN;
    argv[n++] = (char *)(uintptr_t)"audit";
    for (int i = 0; i < 10; i++)
        argv[n++] = a[i];
    argv[n] = NULL;
    g_pid = at_spawn(COFFERD_BIN, argv, log);
    CF_ENSURE(g_pid > 0, CF_E_IO);
    CF_GUARD(at_wait_port(port_file, g_pid, 60000, &port));
    at_fmt(g_url, sizeof(g_url), "https://127.0.0.1:%u", (unsigned)port);
    return 0;
}

static void free_clients(void)
{
    cf_http_client_free(g_anon);
    cf_http_client_free(g_kms);
    cf_http_client_free(g_iamc);
    cf_http_client_free(g_rogue);
    g_anon = g_kms = g_iamc = g_rogue = NULL;
}

static int make_clients(void)
{
    free_clients();
    CF_GUARD(at_client(g_dir, g_url, NULL, &g_anon));
    CF_GUARD(at_client(g_dir, g_url, "kms", &g_kms));
    CF_GUARD(at_client(g_dir, g_url, "iam", &g_iamc));
    return at_client(g_dir, g_url, "rogue", &g_rogue);
}

/* ---- calls ---- */

static long post(cf_http_client *c, const char *body, const char *ctype, json_t **ret)
{
    long st = -1;
    json_t *j = NULL;

    if (at_call(c, "POST", "/v1/audit/events", NULL, body, strlen(body), ctype ? ctype : "application/json", &st,
                &j) != 0)
        return -1;
    if (ret != NULL)
        *ret = j;
    else
        json_decref(j);
    return st;
}

static long get(const char *path, const char *tok, json_t **ret)
{
    long st = -1;
    json_t *j = NULL;

    if (at_call(g_anon, "GET", path, tok, NULL, 0, NULL, &st, &j) != 0)
        return -1;
    if (ret != NULL)
        *ret = j;
    else
        json_decref(j);
    return st;
}

static const char *err_msg(const json_t *j)
{
    const char *m = json_string_value(json_object_get(json_object_get(j, "error"), "message"));
    return m != NULL ? m : "";
}

static long long jint(const json_t *j, const char *key)
{
    return (long long)json_integer_value(json_object_get(j, key));
}

static long post_batch(cf_http_client *c, const char *label, unsigned first, unsigned n, const char *service,
                       json_t **ret)
{
    cf_buf b;
    long st = -1;

    cf_buf_init(&b, CF_AUDIT_MAX_BATCH_BYTES);
    if (at_batch(&b, label, first, n, service, g_tenants, 3) == 0 && cf_buf_nul_terminate(&b) == 0)
        st = post(c, (const char *)b.data, NULL, ret);
    cf_buf_free(&b);
    return st;
}

static int fresh_sth(cf_audit_sth *ret)
{
    json_t *j = NULL;
    int rc = CF_E_HTTP;

    if (get("/v1/audit/sth?fresh=1", t_platform, &j) == 200)
        rc = cf_audit_sth_from_json(j, ret);
    json_decref(j);
    return rc;
}

/* Entries fetched over HTTP. */
typedef struct {
    uint64_t seq;
    uint8_t *entry;
    size_t len;
    uint8_t leaf[CF_MERKLE_HASH_LEN];
    bool has_proof;
    cf_merkle_proof proof;
    json_t *ev; /* the entry parsed */
} ent;

typedef struct {
    ent *v;
    size_t n, cap;
    char scope[16];
} ents;

static void ents_free(ents *e)
{
    for (size_t i = 0; i < e->n; i++) {
        free(e->v[i].entry);
        json_decref(e->v[i].ev);
    }
    free(e->v);
    memset(e, 0, sizeof(*e));
}

static int ent_from_json(const json_t *o, ent *ret)
{
    const json_t *s = json_object_get(o, "entry");
    const json_t *pr = json_object_get(o, "proof");
    ent e;

    memset(&e, 0, sizeof(e));
    CF_ENSURE(json_is_integer(json_object_get(o, "seq")) && json_is_string(s), CF_E_PARSE);
    e.seq = (uint64_t)json_integer_value(json_object_get(o, "seq"));
    e.len = json_string_length(s);
    e.entry = malloc(e.len + 1);
    CF_ENSURE(e.entry != NULL, CF_E_NOMEM);
    memcpy(e.entry, json_string_value(s), e.len);
    if (cf_json_get_hex(o, "leaf_hash", true, e.leaf, sizeof(e.leaf)) != 0 ||
        (pr != NULL && cf_audit_proof_from_json(pr, &e.proof) != 0) ||
        cf_json_parse_object(e.entry, e.len, CF_AUDIT_MAX_EVENT_BYTES, &e.ev) != 0) {
        free(e.entry);
        return CF_E_PARSE;
    }
    e.has_proof = pr != NULL;
    *ret = e;
    return 0;
}

/* All pages of GET /v1/audit/entries?<query>, following "next". */
static long fetch(const char *tok, const char *query, size_t limit, ents *ret)
{
    char path[512];
    bool more = true, have_after = false;
    uint64_t after = 0;

    memset(ret, 0, sizeof(*ret));
    while (more) {
        json_t *j = NULL, *arr;
        long st;
        if (have_after)
            at_fmt(path, sizeof(path), "/v1/audit/entries?limit=%zu&after=%llu%s%s", limit, (unsigned long long)after,
                   query[0] ? "&" : "", query);
        else
            at_fmt(path, sizeof(path), "/v1/audit/entries?limit=%zu%s%s", limit, query[0] ? "&" : "", query);
        st = get(path, tok, &j);
        if (st != 200) {
            json_decref(j);
            return st;
        }
        at_fmt(ret->scope, sizeof(ret->scope), "%s", json_string_value(json_object_get(j, "scope")));
        arr = json_object_get(j, "entries");
        for (size_t i = 0; i < json_array_size(arr); i++) {
            if (ret->n == ret->cap) {
                size_t cap = ret->cap ? ret->cap * 2 : 64;
                ent *v = realloc(ret->v, cap * sizeof(*v));
                if (v == NULL)
                    abort();
                ret->v = v;
                ret->cap = cap;
            }
            if (ent_from_json(json_array_get(arr, i), &ret->v[ret->n]) != 0) {
                json_decref(j);
                return -2;
            }
            ret->n++;
        }
        more = json_is_true(json_object_get(j, "more"));
        if (more) {
            after = (uint64_t)json_integer_value(json_object_get(j, "next"));
            have_after = true;
        }
        json_decref(j);
    }
    return 200;
}

static const char *ev_str(const ent *e, const char *key)
{
    const char *s = json_string_value(json_object_get(e->ev, key));
    return s != NULL ? s : "";
}

static size_t count_action(const ents *e, const char *action, const char *tenant)
{
    size_t n = 0;

    for (size_t i = 0; i < e->n; i++)
        if (strcmp(ev_str(&e->v[i], "action"), action) == 0 &&
            (tenant == NULL || strcmp(ev_str(&e->v[i], "tenant"), tenant) == 0))
            n++;
    return n;
}

/* ---- tests ---- */

static void test_setup(void)
{
    static const char *const names[] = {"audit", "kms", "iam", "gateway", "rogue", NULL};
    char p[128];
    json_t *j = NULL;
    cf_buf b;

    T_OK(at_pki(g_dir, names));
    T_OK(cf_key_generate(CF_KEY_ED25519, &g_iam));
    at_fmt(p, sizeof(p), "%s/jwks.json", g_dir);
    T_OK(at_jwks_write(g_iam, p));
    at_fmt(p, sizeof(p), "%s/pin", g_dir);
    T_OK(cf_file_write_atomic(p, "audit-user-pin", 14, 0600));
    at_fmt(p, sizeof(p), "%s/sopin", g_dir);
    T_OK(cf_file_write_atomic(p, "audit-so-pin", 12, 0600));
    t_platform = at_token(g_iam, "platform", "p-auditor", CF_ROLE_AUDITOR);
    t_admin = at_token(g_iam, "platform", "p-admin", CF_ROLE_PLATFORM_ADMIN);
    t_operator = at_token(g_iam, "platform", "p-operator", CF_ROLE_OPERATOR);
    t_acme = at_token(g_iam, "acme", "acme-auditor", CF_ROLE_AUDITOR);
    t_globex = at_token(g_iam, "globex", "globex-admin", CF_ROLE_TENANT_ADMIN);
    t_client = at_token(g_iam, "acme", "acme-client", CF_ROLE_CLIENT);
    T_ASSERT(t_platform && t_admin && t_operator && t_acme && t_globex && t_client);
    T_OK(start_service());
    T_OK(make_clients());
    T_EQ(get("/healthz", NULL, NULL), 200);
    T_EQ(get("/readyz", NULL, NULL), 200);
    /* the tree-head key: public, as a JWK and raw */
    T_EQ(get("/v1/audit/public-key", NULL, &j), 200);
    cf_buf_init(&b, 64);
    T_OK(cf_json_get_b64url(j, "public_key", true, 32, &b));
    T_OK(cf_key_from_public(CF_KEY_ED25519, b.data, b.len, &g_pub));
    cf_buf_free(&b);
    T_STREQ(json_string_value(json_object_get(j, "alg")), "EdDSA");
    T_STREQ(json_string_value(json_object_get(json_object_get(j, "jwk"), "crv")), "Ed25519");
    json_decref(j);
}

static void test_append_auth(void)
{
    json_t *j = NULL;
    long st = 0;
    cf_buf b;
    char id[33];

    /* no client certificate */
    T_EQ(post_batch(g_anon, "auth", 0, 1, "kms", &j), 401);
    T_ASSERT(strstr(err_msg(j), "client certificate") != NULL);
    json_decref(j);
    /* a certificate of the CA, but not a service that writes events */
    T_EQ(post_batch(g_rogue, "auth", 0, 1, "rogue", &j), 403);
    T_ASSERT(strstr(err_msg(j), "spiffe://coffer/rogue") != NULL);
    json_decref(j);
    /* an event that claims another service's name */
    T_EQ(post_batch(g_kms, "auth", 0, 1, "iam", &j), 403);
    T_ASSERT(strstr(err_msg(j), "names service 'iam'") != NULL);
    json_decref(j);
    /* an access token is no substitute for the mTLS identity */
    T_EQ(at_call(g_anon, "POST", "/v1/audit/events", t_admin, "{\"events\":[]}", 13, "application/json", &st, &j),
         0);
    T_EQ(st, 401);
    json_decref(j);
    /* ... nor an addition to it: a service's append carries no token, a relayed
     * client request (through the gateway, with its identity) does */
    T_EQ(at_call(g_kms, "POST", "/v1/audit/events", t_admin, "{\"events\":[]}", 13, "application/json", &st, &j), 0);
    T_EQ(st, 403);
    T_ASSERT(strstr(err_msg(j), "access token") != NULL);
    json_decref(j);
    T_EQ(get("/v1/audit/sth", t_admin, NULL), 200);
    /* media type, malformed batches: the whole batch is refused, naming the event */
    T_EQ(post(g_kms, "{\"events\":[]}", "text/plain", NULL), 415);
    T_EQ(post(g_kms, "{\"events\":[{\"event_id\":\"x\"}]}", NULL, &j), 400);
    T_ASSERT(strstr(err_msg(j), "event 0") != NULL);
    json_decref(j);
    cf_buf_init(&b, 65536);
    at_event_id("bad", 1, id);
    T_OK(cf_buf_put_str(&b, "{\"events\":["));
    T_OK(at_event(&b, id, "kms", "acme", "test.event.write", 1));
    T_OK(cf_buf_put_str(&b, ",{\"nope\":1}]}"));
    T_OK(cf_buf_nul_terminate(&b));
    T_EQ(post(g_kms, (const char *)b.data, NULL, &j), 400);
    T_ASSERT(strstr(err_msg(j), "event 1") != NULL);
    json_decref(j);
    cf_buf_free(&b);
    T_EQ(post(g_kms, "{\"events\":[]", NULL, NULL), 400);
    T_EQ(post(g_kms, "{\"events\":[]}", NULL, &j), 200);
    T_EQ(jint(j, "accepted"), 0);
    json_decref(j);
}

static uint64_t g_size_after_a;

static void test_append_dedup(void)
{
    json_t *j = NULL;
    cf_buf b;
    char id[33];

    T_EQ(post_batch(g_kms, "a", 0, 30, "kms", &j), 200);
    T_EQ(jint(j, "accepted"), 30);
    T_EQ(jint(j, "new"), 30);
    T_ASSERT(jint(j, "tree_size") >= 30);
    g_size_after_a = (uint64_t)jint(j, "tree_size");
    json_decref(j);
    /* a resend after a lost answer: acknowledged, nothing added */
    T_EQ(post_batch(g_kms, "a", 0, 30, "kms", &j), 200);
    T_EQ(jint(j, "accepted"), 30);
    T_EQ(jint(j, "new"), 0);
    json_decref(j);
    T_EQ(post_batch(g_kms, "a", 25, 10, "kms", &j), 200); /* half old, half new */
    T_EQ(jint(j, "new"), 5);
    json_decref(j);
    T_EQ(post_batch(g_iamc, "i", 0, 12, "iam", &j), 200);
    T_EQ(jint(j, "new"), 12);
    json_decref(j);
    /* the same id with other content: refused, and the batch leaves nothing behind */
    cf_buf_init(&b, 65536);
    T_OK(cf_buf_put_str(&b, "{\"events\":["));
    at_event_id("conflict", 0, id);
    T_OK(at_event(&b, id, "kms", "acme", "test.event.write", 0));
    T_OK(cf_buf_put_str(&b, ","));
    at_event_id("a", 3, id);
    T_OK(at_event(&b, id, "kms", "acme", "test.event.changed", 3));
    T_OK(cf_buf_put_str(&b, "]}"));
    T_OK(cf_buf_nul_terminate(&b));
    T_EQ(post(g_kms, (const char *)b.data, NULL, &j), 409);
    json_decref(j);
    cf_buf_free(&b);
    T_EQ(post_batch(g_kms, "conflict", 0, 1, "kms", &j), 200);
    T_EQ(jint(j, "new"), 1); /* it was not added by the refused batch */
    json_decref(j);
}

static void test_sth_and_proofs(void)
{
    cf_audit_sth s1, s2, s3;
    json_t *j = NULL, *arr;
    cf_merkle_proof pr;
    ents all;
    char path[256];
    bool grew = false;

    T_OK(fresh_sth(&s1));
    T_OK(cf_audit_sth_verify(&s1, g_pub));
    T_ASSERT(s1.size >= g_size_after_a + 5 + 12 + 1);
    /* by size */
    at_fmt(path, sizeof(path), "/v1/audit/sth/%llu", (unsigned long long)s1.size);
    T_EQ(get(path, t_platform, &j), 200);
    T_OK(cf_audit_sth_from_json(j, &s2));
    json_decref(j);
    T_MEMEQ(s2.root, s1.root, sizeof(s1.root));
    T_EQ(get("/v1/audit/sth/999999", t_platform, NULL), 404);
    T_EQ(get("/v1/audit/sth/x", t_platform, NULL), 400);
    /* listed, all signed, in order */
    T_EQ(get("/v1/audit/sths?limit=1000", t_acme, &j), 200);
    arr = json_object_get(j, "sths");
    T_ASSERT(json_array_size(arr) >= 2);
    for (size_t i = 0; i < json_array_size(arr); i++) {
        T_OK(cf_audit_sth_from_json(json_array_get(arr, i), &s2));
        T_OK(cf_audit_sth_verify(&s2, g_pub));
        T_EQ(s2.id, (int64_t)i + 1);
    }
    json_decref(j);
    T_EQ(get("/v1/audit/sths?after=0&limit=1", t_platform, &j), 200);
    T_EQ(json_array_size(json_object_get(j, "sths")), 1);
    T_ASSERT(json_is_true(json_object_get(j, "more")));
    json_decref(j);

    /* every entry with its inclusion proof in s1, checked with the library */
    at_fmt(path, sizeof(path), "tree_size=%llu", (unsigned long long)s1.size);
    T_EQ(fetch(t_platform, path, 1000, &all), 200);
    T_STREQ(all.scope, "all");
    T_ASSERT(all.n >= s1.size);
    for (size_t i = 0; i < all.n; i++) {
        uint8_t leaf[CF_MERKLE_HASH_LEN];
        ent *e = &all.v[i];
        T_OK(cf_merkle_leaf_hash(e->entry, e->len, leaf));
        T_MEMEQ(leaf, e->leaf, sizeof(leaf));
        T_EQ(e->seq, i);
        if (e->seq >= s1.size) {
            T_ASSERT(!e->has_proof);
            continue;
        }
        T_ASSERT(e->has_proof);
        T_OK(cf_merkle_verify_inclusion(leaf, e->seq, s1.size, &e->proof, s1.root));
        if (e->seq == 5) { /* the dedicated endpoint gives the same proof */
            at_fmt(path, sizeof(path), "/v1/audit/proof/inclusion?seq=5&tree_size=%llu", (unsigned long long)s1.size);
            T_EQ(get(path, t_acme, &j), 200);
            T_OK(cf_audit_proof_from_json(json_object_get(j, "proof"), &pr));
            json_decref(j);
            T_EQ(pr.len, e->proof.len);
            T_MEMEQ(pr.h, e->proof.h, pr.len * CF_MERKLE_HASH_LEN);
            /* and it does not prove another entry */
            T_FAILS(cf_merkle_verify_inclusion(all.v[6].leaf, 5, s1.size, &pr, s1.root));
        }
    }
    ents_free(&all);

    /* grow, then consistency s1 -> s3 */
    T_EQ(post_batch(g_kms, "b", 0, 7, "kms", NULL), 200);
    T_OK(fresh_sth(&s3));
    T_ASSERT(s3.size > s1.size && s3.id > s1.id);
    at_fmt(path, sizeof(path), "/v1/audit/proof/consistency?first=%llu&second=%llu", (unsigned long long)s1.size,
           (unsigned long long)s3.size);
    T_EQ(get(path, t_platform, &j), 200);
    T_OK(cf_audit_proof_from_json(json_object_get(j, "proof"), &pr));
    json_decref(j);
    T_OK(cf_merkle_verify_consistency(s1.size, s3.size, s1.root, s3.root, &pr));
    s2 = s1;
    s2.root[0] ^= 1;
    T_FAILS(cf_merkle_verify_consistency(s1.size, s3.size, s2.root, s3.root, &pr));
    /* an unchanged tree gets no new head, even when a fresh one is asked for */
    T_OK(fresh_sth(&s2));
    if (s2.size == s3.size) /* (unless an audited read grew it in between) */
        T_EQ(s2.id, s3.id);

    /* bad requests */
    at_fmt(path, sizeof(path), "/v1/audit/proof/inclusion?seq=%llu&tree_size=%llu", (unsigned long long)s3.size,
           (unsigned long long)s3.size);
    T_EQ(get(path, t_platform, NULL), 400);
    T_EQ(get("/v1/audit/proof/inclusion?seq=0&tree_size=99999999", t_platform, &j), 400);
    T_ASSERT(strstr(err_msg(j), "exceeds the log size") != NULL);
    json_decref(j);
    T_EQ(get("/v1/audit/proof/inclusion?seq=0", t_platform, NULL), 400);
    T_EQ(get("/v1/audit/proof/inclusion?seq=0&tree_size=2&seq=1", t_platform, NULL), 400);
    T_EQ(get("/v1/audit/proof/consistency?first=0&second=2", t_platform, NULL), 400);
    T_EQ(get("/v1/audit/proof/consistency?first=3&second=2", t_platform, NULL), 400);
    T_EQ(get("/v1/audit/sth?fresh=maybe", t_platform, NULL), 400);
    T_EQ(get("/v1/audit/sth?bogus=1", t_platform, &j), 400);
    T_ASSERT(strstr(err_msg(j), "unknown query parameter 'bogus'") != NULL);
    json_decref(j);
    /* who may read tree heads and proofs */
    T_EQ(get("/v1/audit/sth", NULL, NULL), 401);
    T_EQ(get("/v1/audit/sth", "garbage", NULL), 401);
    T_EQ(get("/v1/audit/sth", t_client, NULL), 403);
    T_EQ(get("/v1/audit/proof/consistency?first=1&second=2", t_operator, NULL), 403);
    T_EQ(get("/v1/audit/sth", t_globex, NULL), 200);

    /* periodic heads (interval 1 s) follow the tree without being asked */
    T_EQ(post_batch(g_kms, "c", 0, 3, "kms", NULL), 200);
    for (int i = 0; i < 60 && !grew; i++) {
        at_sleep_ms(100);
        T_EQ(get("/v1/audit/sth", t_platform, &j), 200);
        T_OK(cf_audit_sth_from_json(j, &s2));
        json_decref(j);
        grew = s2.size >= s3.size + 3;
    }
    T_ASSERT_MSG(grew, "no periodic tree head");
    T_OK(cf_audit_sth_verify(&s2, g_pub));
}

static void test_scoping(void)
{
    ents e, f;
    json_t *j = NULL;
    char path[128];
    uint64_t globex_seq = 0, acme_seq = 0;
    bool found_g = false, found_a = false;

    /* a tenant auditor: only its tenant, whatever it asks */
    T_EQ(fetch(t_acme, "", 1000, &e), 200);
    T_STREQ(e.scope, "tenant");
    T_ASSERT(e.n > 0);
    for (size_t i = 0; i < e.n; i++)
        T_STREQ(ev_str(&e.v[i], "tenant"), "acme");
    /* n % 3 == 0 of a0..34 (12), i0..11 (4), conflict0 (1), b0..6 (3), c0..2 (1) */
    T_EQ(count_action(&e, "test.event.write", "acme"), 12 + 4 + 1 + 3 + 1);
    ents_free(&e);
    T_EQ(get("/v1/audit/entries?tenant=globex", t_acme, &j), 403);
    T_ASSERT(strstr(err_msg(j), "globex") != NULL || strstr(err_msg(j), "tenant") != NULL);
    json_decref(j);
    T_EQ(get("/v1/audit/entries?tenant=acme&limit=1", t_acme, NULL), 200);
    /* a tenant admin of globex: globex only */
    T_EQ(fetch(t_globex, "action=test.event.write", 1000, &e), 200);
    T_ASSERT(e.n > 0);
    for (size_t i = 0; i < e.n; i++)
        T_STREQ(ev_str(&e.v[i], "tenant"), "globex");
    ents_free(&e);
    /* the platform auditor sees all, including platform events (no tenant) */
    T_EQ(fetch(t_platform, "action=test.event.write", 1000, &e), 200);
    T_EQ(count_action(&e, "test.event.write", NULL), 35 + 12 + 1 + 7 + 3);
    T_EQ(count_action(&e, "test.event.write", ""), 11 + 4 + 0 + 2 + 1);
    for (size_t i = 0; i < e.n; i++) {
        if (!found_g && strcmp(ev_str(&e.v[i], "tenant"), "globex") == 0) {
            globex_seq = e.v[i].seq;
            found_g = true;
        }
        if (!found_a && strcmp(ev_str(&e.v[i], "tenant"), "acme") == 0) {
            acme_seq = e.v[i].seq;
            found_a = true;
        }
    }
    T_ASSERT(found_g && found_a);
    /* paging in small steps gives the same entries */
    T_EQ(fetch(t_platform, "action=test.event.write", 7, &f), 200);
    T_EQ(f.n, e.n);
    for (size_t i = 0; i < e.n; i++)
        T_EQ(f.v[i].seq, e.v[i].seq);
    ents_free(&f);
    ents_free(&e);
    T_EQ(fetch(t_admin, "tenant=globex&action=test.event.write", 1000, &e), 200);
    T_EQ(e.n, 12 + 4 + 2 + 1);
    ents_free(&e);
    /* one entry: scoped the same way */
    at_fmt(path, sizeof(path), "/v1/audit/entries/%llu", (unsigned long long)globex_seq);
    T_EQ(get(path, t_acme, &j), 403);
    json_decref(j);
    T_EQ(get(path, t_globex, NULL), 200);
    at_fmt(path, sizeof(path), "/v1/audit/entries/%llu?tree_size=1", (unsigned long long)acme_seq + 1);
    T_EQ(get(path, t_acme, NULL), 400);
    at_fmt(path, sizeof(path), "/v1/audit/entries/%llu", (unsigned long long)acme_seq);
    T_EQ(get(path, t_acme, &j), 200);
    T_EQ(jint(j, "seq"), (long long)acme_seq);
    json_decref(j);
    T_EQ(get("/v1/audit/entries/99999999", t_platform, NULL), 404);
    /* filters: time range (test events are dated 2024-05-01T12:00:00Z, reads now) */
    T_EQ(fetch(t_platform, "since=2024-05-01T12:00:00Z&until=1714564801000", 1000, &e), 200);
    T_EQ(e.n, count_action(&e, "test.event.write", NULL));
    T_ASSERT(e.n > 0);
    ents_free(&e);
    T_EQ(fetch(t_platform, "until=2024-05-01T12:00:00Z", 1000, &e), 200);
    T_EQ(e.n, 0);
    ents_free(&e);
    T_EQ(get("/v1/audit/entries?since=yesterday", t_platform, NULL), 400);
    T_EQ(get("/v1/audit/entries?since=2000&until=1000", t_platform, NULL), 400);
    T_EQ(get("/v1/audit/entries?limit=0", t_platform, NULL), 400);
    T_EQ(get("/v1/audit/entries?limit=1001", t_platform, NULL), 400);
    T_EQ(get("/v1/audit/entries?tenant=", t_platform, NULL), 400);
    T_EQ(get("/v1/audit/entries?tenant=a&tenant=b", t_platform, NULL), 400);
    T_EQ(get("/v1/audit/entries?after=-1", t_platform, NULL), 400);
    /* who may read entries */
    T_EQ(get("/v1/audit/entries", NULL, NULL), 401);
    T_EQ(get("/v1/audit/entries", t_client, NULL), 403);
    T_EQ(get("/v1/audit/entries", t_operator, NULL), 403);
    /* reads are audited: the platform sees acme's auditor reading, in acme's scope
     * (appended by the service's own forwarder, so allow it a moment) */
    for (int i = 0; i < 50; i++) {
        T_EQ(fetch(t_platform, "action=audit.entries.read&tenant=acme", 1000, &e), 200);
        if (e.n >= 4)
            break;
        ents_free(&e);
        at_sleep_ms(100);
    }
    T_ASSERT(e.n >= 4);
    T_STREQ(ev_str(&e.v[0], "actor"), "acme-auditor");
    T_STREQ(ev_str(&e.v[0], "service"), "audit");
    ents_free(&e);
    /* and so are refusals */
    T_EQ(fetch(t_platform, "action=audit.events.append", 1000, &e), 200);
    T_ASSERT(e.n >= 3);
    T_STREQ(ev_str(&e.v[0], "outcome"), "denied");
    ents_free(&e);
}

/* Everything fetched over HTTP passes the complete verification. */
static void test_verify_over_http(void)
{
    cf_audit_sth s;
    ents all;
    cf_audit_vitem *items;
    cf_merkle_proof **proofs = NULL;
    cf_audit_verify_input in;
    cf_audit_report rep;
    char q[64];
    size_t n = 0;

    T_OK(fresh_sth(&s));
    at_fmt(q, sizeof(q), "tree_size=%llu", (unsigned long long)s.size);
    T_EQ(fetch(t_platform, q, 1000, &all), 200);
    items = calloc(all.n, sizeof(*items));
    T_ASSERT(items != NULL);
    for (size_t i = 0; i < all.n && all.v[i].seq < s.size; i++, n++) {
        items[n].seq = all.v[i].seq;
        items[n].entry = all.v[i].entry;
        items[n].entry_len = all.v[i].len;
        items[n].has_proof = all.v[i].has_proof;
        items[n].proof = (const uint8_t(*)[CF_MERKLE_HASH_LEN])all.v[i].proof.h;
        items[n].proof_len = all.v[i].proof.len;
    }
    memset(&in, 0, sizeof(in));
    in.key = g_pub;
    in.sths = &s;
    in.nsths = 1;
    in.consistency = (const cf_merkle_proof *const *)proofs;
    in.items = items;
    in.nitems = n;
    in.complete = true;
    memset(&rep, 0, sizeof(rep));
    T_OK(cf_audit_verify(&in, &rep));
    T_EQ(rep.total, 0);
    T_EQ(rep.entries_checked, s.size);
    cf_audit_report_free(&rep);
    /* the same data with one byte of one entry changed: caught, and named */
    all.v[3].entry[all.v[3].len - 2] ^= 0x01; /* items[3] points at it */
    memset(&rep, 0, sizeof(rep));
    T_ERR(cf_audit_verify(&in, &rep), CF_E_VERIFY);
    {
        bool named = false;
        for (size_t i = 0; i < rep.n; i++)
            named = named || (rep.findings[i].kind == CF_AUDIT_FIND_ENTRY_MISMATCH && rep.findings[i].first == 3 &&
                              rep.findings[i].last == 3);
        T_ASSERT_MSG(named, "no ENTRY_MISMATCH for entry 3 (%zu findings)", rep.n);
    }
    cf_audit_report_free(&rep);
    free(items);
    ents_free(&all);
}

/* A restart keeps the key and the history; new heads are consistent with old ones. */
static void test_restart(void)
{
    cf_audit_sth before, after;
    json_t *j = NULL;
    cf_merkle_proof pr;
    cf_key *pub2 = NULL;
    cf_buf b;
    char path[160];

    T_OK(fresh_sth(&before));
    T_ASSERT(WIFEXITED(at_stop(g_pid, SIGTERM)));
    g_pid = -1;
    T_OK(start_service());
    T_OK(make_clients());
    T_EQ(get("/v1/audit/public-key", NULL, &j), 200);
    cf_buf_init(&b, 64);
    T_OK(cf_json_get_b64url(j, "public_key", true, 32, &b));
    json_decref(j);
    T_OK(cf_key_from_public(CF_KEY_ED25519, b.data, b.len, &pub2));
    cf_buf_free(&b);
    T_ASSERT(cf_key_public_eq(pub2, g_pub));
    cf_key_free(pub2);
    T_EQ(post_batch(g_kms, "after-restart", 0, 4, "kms", NULL), 200);
    T_EQ(post_batch(g_kms, "a", 0, 30, "kms", &j), 200); /* still de-duplicated */
    T_EQ(jint(j, "new"), 0);
    json_decref(j);
    T_OK(fresh_sth(&after));
    T_OK(cf_audit_sth_verify(&after, g_pub));
    T_ASSERT(after.size >= before.size + 4);
    at_fmt(path, sizeof(path), "/v1/audit/proof/consistency?first=%llu&second=%llu",
           (unsigned long long)before.size, (unsigned long long)after.size);
    T_EQ(get(path, t_platform, &j), 200);
    T_OK(cf_audit_proof_from_json(json_object_get(j, "proof"), &pr));
    json_decref(j);
    T_OK(cf_merkle_verify_consistency(before.size, after.size, before.root, after.root, &pr));
}

int main(void)
{
    if (COFFERD_BIN[0] == '\0' || cf_fmt(g_dir, sizeof(g_dir), "/tmp/coffer-auditsvc-XXXXXX") != 0 ||
        mkdtemp(g_dir) == NULL)
        return 1;
    T_RUN(test_setup);
    if (g_pid > 0) {
        T_RUN(test_append_auth);
        T_RUN(test_append_dedup);
        T_RUN(test_sth_and_proofs);
        T_RUN(test_scoping);
        T_RUN(test_verify_over_http);
        T_RUN(test_restart);
    }
    if (g_pid > 0)
        at_stop(g_pid, SIGTERM);
    free_clients();
    free(t_platform);
    free(t_admin);
    free(t_operator);
    free(t_acme);
    free(t_globex);
    free(t_client);
    cf_key_free(g_iam);
    cf_key_free(g_pub);
    if (getenv("COFFER_KEEP_TEST_DIR") == NULL)
        at_rm_tree(g_dir);
    return t_done();
}
