/*
 * `cofferd kms` as a separate process (DESIGN.md §1): HTTPS with an internal
 * CA and mTLS peers, access tokens checked against a JWKS file, a SoftHSM2
 * token in the state dir, a manifest pinning a simulated AMD chain. Covers
 * registration (and its refusals), OTK issue -> release -> open, at most once
 * (also two client processes against two KMS processes on one store),
 * refusals for wrong keys, tenants and gateway credentials, expiry,
 * re-attestation quarantine with an alert in the spool, stale quarantine,
 * kill -9 under load and restart, and start-up failures (wrong PIN, missing
 * manifest, missing module). Every process started here is stopped by pid.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "attest/verify.h"
#include "base/err.h"
#include "base/file.h"
#include "base/json.h"
#include "base/log.h"
#include "base/parse.h"
#include "base/secmem.h"
#include "crypto/jose.h"
#include "crypto/keys.h"
#include "crypto/pki.h"
#include "http/client.h"
#include "kms/wire.h"
#include "kms_test_util.h"
#include "proto/authz.h"
#include "test.h"

#ifndef COFFERD_BIN
#error "COFFERD_BIN must name the cofferd binary (tests/kms/tests.cmake)"
#endif

#define MUT(s) ((char *)(uintptr_t)(s))
#define OTK_TTL 5
#define DAY 86400

static char D[256];
static cf_sim *g_sim;
static cf_key *g_signer;
static cf_hpke_key *g_release_pub;
static char g_release_kid[64];

/* KMS processes */
typedef struct {
    pid_t pid;
    int port;
    char port_file[512], log[512];
} proc;
static proc A, B;

/* clients: anonymous (TEEs, clients: token only), the attestation service and the gateway */
static cf_http_client *c_anon, *c_attest, *c_gw, *cb_anon;

/* ---- files, processes ---------------------------------------------------------------------- */

static void path(char *out, size_t n, const char *rel)
{
    if (cf_fmt(out, n, "%s/%s", D, rel) != 0)
        abort();
}

static int write_file(const char *rel, const char *data, mode_t mode)
{
    char p[512];
    path(p, sizeof(p), rel);
    return cf_file_write_atomic(p, data, strlen(data), mode);
}

/* Starts cofferd kms with the common flags plus extra ones (NULL-terminated). */
static int start_kms(proc *p, const char *name, const char *const *extra)
{
    char a[32][600];
    char *argv[40];
    int n = 0, fd;
    pid_t pid;

    memset(p, 0, sizeof(*p));
    if (cf_fmt(p->port_file, sizeof(p->port_file), "%s/%s.port", D, name) != 0 ||
        cf_fmt(p->log, sizeof(p->log), "%s/%s.log", D, name) != 0)
        return CF_E_INVAL;
    unlink(p->port_file);
#define ARG(...)                                                                         \
    do {                                                                                 \
        if (cf_fmt(a[n], sizeof(a[n]), __VA_ARGS__) != 0)                                \
            return CF_E_INVAL;                                                           \
        argv[n] = a[n];                                                                  \
        n++;                                                                             \
    } while (0)
    ARG("%s", COFFERD_BIN);
    ARG("kms");
    ARG("--state_dir=%s/state", D);
    ARG("--listen.port=0");
    ARG("--port_file=%s", p->port_file);
    ARG("--tls.cert=%s/pki/kms.crt", D);
    ARG("--tls.key=%s/pki/kms.key", D);
    ARG("--tls.ca=%s/pki/ca.crt", D);
    ARG("--iam.jwks=%s/jwks.json", D);
    ARG("--hsm.so_pin=@%s/so_pin", D);
    ARG("--log.level=warn");
    for (size_t i = 0; extra != NULL && extra[i] != NULL; i++)
        ARG("%s", extra[i]);
#undef ARG
    argv[n] = NULL;
    pid = fork();
    if (pid < 0)
        return CF_E_IO;
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        fd = open(p->log, O_WRONLY | O_CREAT | O_APPEND, 0600);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
            close(fd);
        }
        execv(argv[0], argv);
        _exit(127);
    }
    p->pid = pid;
    return 0;
}

/* Waits for the port file (or the process's exit). */
static int wait_ready(proc *p)
{
    for (int i = 0; i < 600; i++) {
        cf_buf b;
        uint64_t port = 0;
        int st, rc;

        if (waitpid(p->pid, &st, WNOHANG) == p->pid) {
            p->pid = 0;
            return cf_err_set(CF_E_UNAVAILABLE, "cofferd kms exited early (see %s)", p->log);
        }
        cf_buf_init(&b, 16);
        rc = cf_file_read(p->port_file, 16, &b);
        if (rc == 0 && cf_buf_nul_terminate(&b) == 0 &&
            cf_parse_u64((const char *)b.data, 65535, &port) == 0 && port > 0) {
            cf_buf_free(&b);
            p->port = (int)port;
            return 0;
        }
        cf_buf_free(&b);
        usleep(50 * 1000);
    }
    return cf_err_set(CF_E_TIMEOUT, "cofferd kms did not start");
}

static int stop(proc *p, int sig)
{
    int st = 0;

    if (p->pid <= 0)
        return -1;
    kill(p->pid, sig);
    for (int i = 0; i < 200; i++) {
        if (waitpid(p->pid, &st, WNOHANG) == p->pid) {
            p->pid = 0;
            return st;
        }
        usleep(50 * 1000);
    }
    kill(p->pid, SIGKILL);
    waitpid(p->pid, &st, 0);
    p->pid = 0;
    return st;
}

/* Runs cofferd kms expecting a start-up failure; returns its exit status and output. */
static int run_failing(const char *name, const char *const *extra, char *out, size_t out_size)
{
    proc p;
    cf_buf b;
    int st = -1;

    out[0] = 0;
    if (start_kms(&p, name, extra) != 0)
        return -1;
    for (int i = 0; i < 400 && p.pid > 0; i++) {
        if (waitpid(p.pid, &st, WNOHANG) == p.pid) {
            p.pid = 0;
            break;
        }
        usleep(50 * 1000);
    }
    if (p.pid > 0) {
        stop(&p, SIGKILL);
        return -1;
    }
    cf_buf_init(&b, out_size - 1);
    if (cf_file_read(p.log, out_size - 1, &b) == 0 && cf_buf_nul_terminate(&b) == 0)
        memcpy(out, b.data, b.len + 1);
    cf_buf_free(&b);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

static cf_http_client *client_for(int port, const char *who)
{
    char url[64], crt[512], key[512], ca[512];
    cf_http_client_opts o;
    cf_http_client *c = NULL;

    memset(&o, 0, sizeof(o));
    if (cf_fmt(url, sizeof(url), "https://127.0.0.1:%d", port) != 0)
        return NULL;
    path(ca, sizeof(ca), "pki/ca.crt");
    o.base_url = url;
    o.ca_file = ca;
    o.expect_peer_id = "spiffe://coffer/kms";
    if (who != NULL) {
        char r1[64], r2[64];
        if (cf_fmt(r1, sizeof(r1), "pki/%s.crt", who) != 0 || cf_fmt(r2, sizeof(r2), "pki/%s.key", who) != 0)
            return NULL;
        path(crt, sizeof(crt), r1);
        path(key, sizeof(key), r2);
        o.cert_file = crt;
        o.key_file = key;
    }
    if (cf_http_client_new(&o, &c) != 0)
        return NULL;
    return c;
}

/* ---- HTTP helpers ----------------------------------------------------------------------------- */

/* One request; returns the status (-1 on transport failure) and the JSON body in *ret (may be NULL). */
static long req(cf_http_client *c, const char *method, const char *p, const char *bearer,
                const char *body, const char *ctype, json_t **ret)
{
    cf_http_request rq;
    cf_http_response resp;
    long st;

    memset(&rq, 0, sizeof(rq));
    memset(&resp, 0, sizeof(resp));
    rq.method = method;
    rq.path = p;
    rq.bearer = bearer;
    rq.body = body;
    rq.body_len = body ? strlen(body) : 0;
    rq.content_type = ctype;
    if (ret != NULL)
        *ret = NULL;
    if (cf_http_client_do(c, &rq, &resp) != 0)
        return -1;
    st = resp.status;
    if (ret != NULL && resp.body.len > 0 && cf_json_parse(resp.body.data, resp.body.len, 1u << 20, ret) != 0)
        *ret = NULL;
    cf_http_response_free(&resp);
    return st;
}

static long post(cf_http_client *c, const char *p, const char *bearer, json_t *body, json_t **ret)
{
    char *s = body ? json_dumps(body, JSON_COMPACT) : NULL;
    long st = req(c, "POST", p, bearer, s, NULL, ret);
    free(s);
    json_decref(body);
    return st;
}

static const char *jstr(const json_t *o, const char *k) { return json_string_value(json_object_get(o, k)); }

static const char *err_msg(const json_t *o)
{
    const char *m = json_string_value(json_object_get(json_object_get(o, "error"), "message"));
    return m ? m : "";
}

static bool has(const char *hay, const char *needle)
{
    if (hay != NULL && strstr(hay, needle) != NULL)
        return true;
    fprintf(stderr, "  '%s' does not contain '%s'\n", hay ? hay : "(null)", needle);
    return false;
}

/* Access token minted with the test signing key (what IAM would issue). */
static char *token(const char *tenant, const char *sub, uint32_t roles, const cf_hpke_key *ck)
{
    cf_principal p;
    char *t = NULL;

    memset(&p, 0, sizeof(p));
    memcpy(p.tenant, tenant, strlen(tenant) + 1);
    memcpy(p.sub, sub, strlen(sub) + 1);
    memcpy(p.kind, "user", 5);
    p.roles = roles;
    if (ck != NULL) {
        p.has_client_key = true;
        memcpy(p.client_key, kt_pub(ck), 32);
    }
    if (cf_token_mint(g_signer, "test-1", &p, (int64_t)time(NULL), 900, &t) != 0)
        abort();
    return t;
}

static char *b64(const uint8_t *p, size_t n)
{
    char *s = cf_b64url_encode_alloc(p, n);
    if (s == NULL)
        abort();
    return s;
}

static int b64dec(const char *s, size_t max, cf_buf *out)
{
    if (s == NULL)
        return CF_E_PARSE;
    return cf_b64url_decode(s, strlen(s), out) == 0 && out->len <= max ? 0 : CF_E_PARSE;
}

/* ---- registry helpers ------------------------------------------------------------------------ */

static char *g_operator, *g_acme_client, *g_acme_admin, *g_globex_client, *g_nocnf;
static cf_hpke_key *g_client;

static int get_nonce(cf_http_client *c, uint8_t nonce[32])
{
    json_t *r = NULL;
    long st = post(c, "/v1/registry/nonce", NULL, NULL, &r);
    int rc = st == 200 && cf_hex_decode(jstr(r, "nonce"), nonce, 32) == 0 ? 0 : CF_E_HTTP;
    json_decref(r);
    return rc;
}

static char *join_token(const char *tenant, const char *deployment, int ttl, int uses)
{
    json_t *r = NULL;
    char *tok = NULL;
    long st = post(c_anon, "/v1/registry/join-tokens", g_operator,
                   json_pack("{s:s,s:s,s:i,s:i}", "tenant", tenant, "deployment", deployment, "ttl",
                             ttl, "uses", uses),
                   &r);
    if (st == 201 && jstr(r, "token") != NULL)
        tok = strdup(jstr(r, "token"));
    json_decref(r);
    return tok;
}

static json_t *evidence_json(const cf_hpke_key *bound, const uint8_t nonce[32], uint8_t meas, bool debug)
{
    uint8_t report[CF_SNP_REPORT_LEN];
    cf_buf cert;
    char *r64, *c64;
    json_t *e;

    cf_buf_init(&cert, CF_CERT_MAX_BYTES);
    if (kt_evidence(g_sim, kt_pub(bound), nonce, meas, debug, report, &cert) != 0)
        abort();
    r64 = b64(report, sizeof(report));
    c64 = b64(cert.data, cert.len);
    e = json_pack("{s:s,s:s,s:s}", "platform", "sev-snp", "report", r64, "cert", c64);
    free(r64);
    free(c64);
    cf_buf_free(&cert);
    return e;
}

/* POST /v1/registry/tees; the key registered is `key`, the evidence is bound to `bound`. */
static long register_tee(cf_http_client *c, const char *jt, const cf_hpke_key *key,
                         const cf_hpke_key *bound, const uint8_t *nonce_in, uint8_t meas, bool debug,
                         json_t **ret)
{
    uint8_t nonce[32];
    char hex[65], *pk;
    long st;

    if (nonce_in != NULL)
        memcpy(nonce, nonce_in, 32);
    else if (get_nonce(c, nonce) != 0)
        return -1;
    cf_hex_encode(nonce, 32, hex);
    pk = b64(kt_pub(key), 32);
    st = post(c, "/v1/registry/tees", NULL,
              json_pack("{s:s,s:s,s:s,s:o,s:s}", "join_token", jt, "nonce", hex, "public_key", pk,
                        "evidence", evidence_json(bound, nonce, meas, debug), "endpoint",
                        "https://127.0.0.1:9443"),
              ret);
    free(pk);
    return st;
}

typedef struct {
    cf_hpke_key *key;
    char id[64];
} tee_t;

static int new_tee(tee_t *t, uint8_t meas)
{
    char *jt = join_token("acme", "demo", 600, 1);
    json_t *r = NULL;
    long st;

    t->key = kt_keypair();
    if (jt == NULL)
        return CF_E_HTTP;
    st = register_tee(c_anon, jt, t->key, t->key, NULL, meas, false, &r);
    free(jt);
    if (st != 201 || jstr(r, "id") == NULL) {
        fprintf(stderr, "  register: %ld %s\n", st, err_msg(r));
        json_decref(r);
        return CF_E_HTTP;
    }
    memcpy(t->id, jstr(r, "id"), strlen(jstr(r, "id")) + 1);
    json_decref(r);
    return 0;
}

/* ---- OTK helpers ---------------------------------------------------------------------------------- */

typedef struct {
    char otk_id[64];
    uint8_t otk[32];
} otk_t;

static long issue_otk(cf_http_client *c, const char *bearer, const char *tee_id, otk_t *ret, json_t **rj)
{
    json_t *r = NULL;
    long st = post(c, "/v1/kms/otk", bearer, json_pack("{s:s}", "tee_id", tee_id), &r);

    if (st == 201 && ret != NULL) {
        cf_buf enc, ct, plain;
        cf_buf_init(&enc, 64);
        cf_buf_init(&ct, 128);
        cf_buf_init_secret(&plain, 32);
        memcpy(ret->otk_id, jstr(r, "otk_id"), strlen(jstr(r, "otk_id")) + 1);
        if (b64dec(jstr(r, "enc"), 32, &enc) != 0 || b64dec(jstr(r, "ct"), 64, &ct) != 0 ||
            cf_kms_wire_open_otk(g_client, g_release_pub, ret->otk_id, tee_id, enc.data, enc.len,
                                 ct.data, ct.len, &plain) != 0 ||
            plain.len != 32)
            st = -2;
        else
            memcpy(ret->otk, plain.data, 32);
        cf_buf_free(&enc);
        cf_buf_free(&ct);
        cf_buf_free(&plain);
    }
    if (rj != NULL)
        *rj = r;
    else
        json_decref(r);
    return st;
}

/* The TEE's side: proof with `signer`, then open the answer with it. */
static long release_otk(cf_http_client *c, const char *otk_id, const char *tee_id,
                        const cf_hpke_key *signer, cf_kms_released *out, json_t **rj)
{
    uint8_t enc[32];
    cf_buf ct;
    char p[128], *e64, *c64;
    json_t *r = NULL;
    long st;

    cf_buf_init(&ct, 1024);
    if (cf_kms_wire_seal_release_request(signer, g_release_pub, otk_id, tee_id, (int64_t)time(NULL),
                                         enc, &ct) != 0)
        abort();
    e64 = b64(enc, 32);
    c64 = b64(ct.data, ct.len);
    if (cf_fmt(p, sizeof(p), "/v1/kms/otk/%s/release", otk_id) != 0)
        abort();
    st = post(c, p, NULL, json_pack("{s:s,s:s,s:s}", "tee_id", tee_id, "enc", e64, "ct", c64), &r);
    if (st == 200 && out != NULL) {
        cf_buf renc, rct;
        cf_buf_init(&renc, 64);
        cf_buf_init(&rct, 2048);
        if (b64dec(jstr(r, "enc"), 32, &renc) != 0 || b64dec(jstr(r, "ct"), 2048, &rct) != 0 ||
            cf_kms_wire_open_release(signer, g_release_pub, otk_id, renc.data, renc.len, rct.data,
                                     rct.len, out) != 0)
            st = -2;
        cf_buf_free(&renc);
        cf_buf_free(&rct);
    }
    free(e64);
    free(c64);
    cf_buf_free(&ct);
    if (rj != NULL)
        *rj = r;
    else
        json_decref(r);
    return st;
}

/* The last part of a KMS log, for a failed run. */
static void dump_log(const char *p)
{
    cf_buf b;

    if (p == NULL)
        return;
    cf_buf_init(&b, 8u << 20);
    if (cf_file_read(p, 8u << 20, &b) == 0) {
        size_t from = b.len > 4000 ? b.len - 4000 : 0;
        fprintf(stderr, "---- %s (end) ----\n%.*s\n", p, (int)(b.len - from), (const char *)b.data + from);
    }
    cf_buf_free(&b);
}

static bool spool_has(const char *needle)
{
    char p[512];
    cf_buf b;
    bool found = false;

    path(p, sizeof(p), "state/kms/spool/events.log");
    cf_buf_init(&b, 64u << 20);
    if (cf_file_read(p, 64u << 20, &b) == 0)
        found = memmem(b.data, b.len, needle, strlen(needle)) != NULL;
    cf_buf_free(&b);
    return found;
}

/* ---- set-up --------------------------------------------------------------------------------------- */

static int setup_pki(void)
{
    static const char *const ips[] = {"127.0.0.1", NULL};
    cf_pki_leaf_opts kms = {"spiffe://coffer/kms", NULL, ips, CF_PKI_SERVER | CF_PKI_CLIENT, DAY, NULL};
    cf_pki_leaf_opts att = {"spiffe://coffer/attest", NULL, NULL, CF_PKI_CLIENT, DAY, NULL};
    cf_pki_leaf_opts gw = {"spiffe://coffer/gateway", NULL, NULL, CF_PKI_CLIENT, DAY, NULL};
    cf_pki_cred *ca = NULL, *l = NULL;
    char d[512], c[512], k[512];
    int rc;

    path(d, sizeof(d), "pki");
    CF_GUARD(cf_mkdirs(d, 0700));
    CF_GUARD(cf_pki_ca_create("KMS test CA", DAY, &ca));
    path(c, sizeof(c), "pki/ca.crt");
    CF_GUARD_OUT(cf_pki_write(ca, c, NULL));
    const cf_pki_leaf_opts *leafs[] = {&kms, &att, &gw};
    const char *names[] = {"kms", "attest", "gateway"};
    for (int i = 0; i < 3; i++) {
        char rc_[64], rk_[64];
        CF_GUARD_OUT(cf_pki_issue(ca, leafs[i], &l));
        CF_GUARD_OUT(cf_fmt(rc_, sizeof(rc_), "pki/%s.crt", names[i]));
        CF_GUARD_OUT(cf_fmt(rk_, sizeof(rk_), "pki/%s.key", names[i]));
        path(c, sizeof(c), rc_);
        path(k, sizeof(k), rk_);
        CF_GUARD_OUT(cf_pki_write(l, c, k));
        cf_pki_free(l);
        l = NULL;
    }
out:
    cf_pki_free(l);
    cf_pki_free(ca);
    return rc;
}

static int setup(void)
{
    cf_jwks *set = NULL;
    char *jwks = NULL, *m = NULL, p[512];
    cf_sim_tcb tcb;
    int rc;

    kt_mkdtemp(D, sizeof(D), "kmsproc");
    CF_GUARD(setup_pki());
    CF_GUARD(cf_key_generate(CF_KEY_ED25519, &g_signer));
    CF_GUARD(cf_jwks_new(&set));
    CF_GUARD_OUT(cf_jwks_add(set, "test-1", g_signer));
    CF_GUARD_OUT(cf_jwks_serialise(set, &jwks));
    CF_GUARD_OUT(write_file("jwks.json", jwks, 0644));
    CF_GUARD_OUT(write_file("pin", "user-pin-4321\n", 0600));
    CF_GUARD_OUT(write_file("so_pin", "so-pin-8765\n", 0600));
    path(p, sizeof(p), "sim");
    cf_sim_tcb_default(&tcb);
    CF_GUARD_OUT(cf_sim_open(p, &tcb, &g_sim));
    m = kt_manifest(g_sim);
    CF_ENSURE_OUT(m != NULL, CF_E_NOMEM);
    CF_GUARD_OUT(write_file("manifest.json", m, 0644));
    free(m);
    m = kt_manifest(NULL);
    CF_ENSURE_OUT(m != NULL, CF_E_NOMEM);
    CF_GUARD_OUT(write_file("manifest-prod.json", m, 0644));
    g_client = kt_keypair();
    g_operator = token("platform", "op-1", CF_ROLE_OPERATOR, NULL);
    g_acme_client = token("acme", "alice", CF_ROLE_CLIENT, g_client);
    g_acme_admin = token("acme", "acme-admin", CF_ROLE_TENANT_ADMIN, NULL);
    g_globex_client = token("globex", "gus", CF_ROLE_CLIENT, g_client);
    g_nocnf = token("acme", "bob", CF_ROLE_CLIENT, NULL);
out:
    free(m);
    free(jwks);
    cf_jwks_free(set);
    return rc;
}

static const char *a_args[8];

static int start_a(const char *interval)
{
    char p1[600], p2[600];
    static char s1[600], s2[600], s3[600], s4[64];
    int rc;

    path(p1, sizeof(p1), "pin");
    path(p2, sizeof(p2), "manifest.json");
    if (cf_fmt(s1, sizeof(s1), "--hsm.pin=@%s", p1) != 0 || cf_fmt(s2, sizeof(s2), "--manifest=%s", p2) != 0 ||
        cf_fmt(s3, sizeof(s3), "--otk.ttl=%ds", OTK_TTL) != 0 ||
        cf_fmt(s4, sizeof(s4), "--reattest.interval=%s", interval) != 0)
        return CF_E_INVAL;
    a_args[0] = s1;
    a_args[1] = s2;
    a_args[2] = s3;
    a_args[3] = s4;
    a_args[4] = NULL;
    CF_GUARD(start_kms(&A, "a", a_args));
    rc = wait_ready(&A);
    if (rc != 0)
        return rc;
    cf_http_client_free(c_anon);
    cf_http_client_free(c_attest);
    cf_http_client_free(c_gw);
    c_anon = client_for(A.port, NULL);
    c_attest = client_for(A.port, "attest");
    c_gw = client_for(A.port, "gateway");
    return c_anon && c_attest && c_gw ? 0 : CF_E_INVAL;
}

/* ---- tests ------------------------------------------------------------------------------------------- */

static char *g_short_jt; /* ttl 1 s, used once it has expired */
static tee_t g_tee;        /* the main registered TEE */

static void test_start_and_release_key(void)
{
    json_t *r = NULL;
    cf_buf pub;

    T_OK(start_a("60s"));
    T_EQ(req(c_anon, "GET", "/v1/kms/release-key", NULL, NULL, NULL, &r), 200);
    T_ASSERT(jstr(r, "kid") != NULL && strlen(jstr(r, "kid")) == 43);
    memcpy(g_release_kid, jstr(r, "kid"), 44);
    cf_buf_init(&pub, 32);
    T_OK(b64dec(jstr(r, "x25519"), 32, &pub));
    T_EQ(pub.len, 32);
    T_OK(cf_hpke_key_from_public(CF_HPKE_KEM_X25519_SHA256, pub.data, 32, &g_release_pub));
    cf_buf_free(&pub);
    json_decref(r);
    /* the PIN never reaches the log */
    {
        cf_buf b;
        cf_buf_init(&b, 1u << 20);
        T_OK(cf_file_read(A.log, 1u << 20, &b));
        T_ASSERT(memmem(b.data, b.len, "user-pin-4321", 13) == NULL);
        cf_buf_free(&b);
    }
}

static void test_registration(void)
{
    tee_t x;
    json_t *r = NULL;
    char *jt, *jt1;
    uint8_t nonce[32], bogus[32];
    cf_hpke_key *other = kt_keypair();

    g_short_jt = join_token("acme", "demo", 1, 5);
    T_ASSERT(g_short_jt != NULL);
    /* happy path */
    T_OK(new_tee(&g_tee, KT_M1));
    T_EQ(req(c_anon, "GET", "/v1/registry/tees/x", g_operator, NULL, NULL, &r), 400);
    json_decref(r);
    {
        char p[128];
        T_OK(cf_fmt(p, sizeof(p), "/v1/registry/tees/%s", g_tee.id));
        T_EQ(req(c_anon, "GET", p, g_operator, NULL, NULL, &r), 200);
        T_STREQ(jstr(r, "status"), "active");
        T_STREQ(jstr(r, "tenant"), "acme");
        T_STREQ(jstr(r, "deployment"), "demo");
        T_STREQ(jstr(r, "platform"), "sev-snp");
        T_STREQ(jstr(r, "endpoint"), "https://127.0.0.1:9443");
        T_EQ(json_integer_value(json_object_get(r, "attestation_count")), 1);
        json_decref(r);
        /* the gateway and the attestation service may read without a token */
        T_EQ(req(c_gw, "GET", p, NULL, NULL, NULL, NULL), 200);
        T_EQ(req(c_attest, "GET", "/v1/registry/tees?status=active", NULL, NULL, NULL, &r), 200);
        T_ASSERT(json_array_size(json_object_get(r, "tees")) >= 1);
        json_decref(r);
        /* anonymous: no */
        T_EQ(req(c_anon, "GET", p, NULL, NULL, NULL, NULL), 401);
        /* a client of tenant acme has no registry.read; globex's admin cannot see acme's TEE */
        T_EQ(req(c_anon, "GET", p, g_acme_client, NULL, NULL, NULL), 403);
    }

    jt = join_token("acme", "demo", 600, 10);
    T_ASSERT(jt != NULL);
    /* wrong measurement: 403 naming the check, with the verifier's check list */
    x.key = kt_keypair();
    T_EQ(register_tee(c_anon, jt, x.key, x.key, NULL, KT_MBAD, false, &r), 403);
    T_ASSERT(has(err_msg(r), "measurement:"));
    T_ASSERT(json_array_size(json_object_get(r, "checks")) == CF_CHECK__COUNT);
    json_decref(r);
    /* debug launch */
    T_EQ(register_tee(c_anon, jt, x.key, x.key, NULL, KT_M1, true, &r), 403);
    T_ASSERT(has(err_msg(r), "debug:"));
    json_decref(r);
    /* evidence bound to another key */
    T_EQ(register_tee(c_anon, jt, x.key, other, NULL, KT_M1, false, &r), 403);
    T_ASSERT(has(err_msg(r), "binding:"));
    json_decref(r);
    /* unknown nonce, reused nonce */
    T_OK(cf_random(bogus, 32));
    T_EQ(register_tee(c_anon, jt, x.key, x.key, bogus, KT_M1, false, &r), 403);
    T_ASSERT(has(err_msg(r), "nonce unknown"));
    json_decref(r);
    T_OK(get_nonce(c_anon, nonce));
    T_EQ(register_tee(c_anon, jt, x.key, x.key, nonce, KT_M1, false, NULL), 201);
    T_EQ(register_tee(c_anon, jt, other, other, nonce, KT_M1, false, &r), 403);
    T_ASSERT(has(err_msg(r), "nonce unknown or already used"));
    json_decref(r);
    /* single-use join token used twice */
    jt1 = join_token("acme", "demo", 600, 1);
    T_EQ(register_tee(c_anon, jt1, other, other, NULL, KT_M1, false, NULL), 201);
    {
        cf_hpke_key *k3 = kt_keypair();
        T_EQ(register_tee(c_anon, jt1, k3, k3, NULL, KT_M1, false, &r), 403);
        T_ASSERT(has(err_msg(r), "no uses left"));
        json_decref(r);
        /* unknown join token */
        T_EQ(register_tee(c_anon, "cjt_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", k3, k3, NULL, KT_M1,
                          false, &r),
             401);
        json_decref(r);
        cf_hpke_key_free(k3);
    }
    /* malformed, unknown field, wrong type, oversized, wrong content type */
    T_EQ(req(c_anon, "POST", "/v1/registry/tees", NULL, "{\"join_token\":", NULL, &r), 400);
    json_decref(r);
    T_EQ(post(c_anon, "/v1/registry/tees", NULL, json_pack("{s:s,s:i}", "join_token", jt, "extra", 1), &r), 400);
    T_ASSERT(has(err_msg(r), "unknown field 'extra'"));
    json_decref(r);
    T_EQ(post(c_anon, "/v1/registry/join-tokens", g_operator,
              json_pack("{s:s,s:s,s:s}", "tenant", "acme", "deployment", "demo", "ttl", "1h"), &r),
         400);
    json_decref(r);
    {
        size_t big = CF_KMS_MAX_BODY + 100;
        char *s = malloc(big + 1);
        T_ASSERT(s != NULL);
        memset(s, ' ', big);
        s[0] = '{';
        s[big - 1] = '}';
        s[big] = 0;
        T_EQ(req(c_anon, "POST", "/v1/registry/tees", NULL, s, NULL, &r), 413);
        json_decref(r);
        free(s);
    }
    T_EQ(req(c_anon, "POST", "/v1/registry/tees", NULL, "{}", "text/plain", NULL), 415);
    /* join tokens: only operators, only manifest deployments */
    T_EQ(post(c_anon, "/v1/registry/join-tokens", g_acme_client,
              json_pack("{s:s,s:s}", "tenant", "acme", "deployment", "demo"), NULL),
         403);
    T_EQ(post(c_anon, "/v1/registry/join-tokens", NULL,
              json_pack("{s:s,s:s}", "tenant", "acme", "deployment", "demo"), NULL),
         401);
    T_EQ(post(c_anon, "/v1/registry/join-tokens", g_operator,
              json_pack("{s:s,s:s}", "tenant", "acme", "deployment", "pay"), &r),
         403);
    json_decref(r);
    /* audit events for refusals too */
    T_ASSERT(spool_has("\"action\":\"tee.register\""));
    T_ASSERT(spool_has("\"outcome\":\"failure\""));
    free(jt);
    free(jt1);
    cf_hpke_key_free(x.key);
    cf_hpke_key_free(other);
}

static void test_otk_flow(void)
{
    otk_t o, o2;
    json_t *r = NULL;
    cf_kms_released *rel = cf_secure_alloc(sizeof(*rel));
    cf_hpke_key *stranger = kt_keypair();
    tee_t b;

    T_ASSERT(rel != NULL);
    T_EQ(issue_otk(c_anon, g_acme_client, g_tee.id, &o, NULL), 201);
    /* release -> opens with the TEE key; tenant and client key inside */
    T_EQ(release_otk(c_anon, o.otk_id, g_tee.id, g_tee.key, rel, NULL), 200);
    T_MEMEQ(rel->otk, o.otk, 32);
    T_STREQ(rel->tenant, "acme");
    T_MEMEQ(rel->client_key, kt_pub(g_client), 32);
    T_STREQ(rel->tee_id, g_tee.id);
    /* second release */
    T_EQ(release_otk(c_anon, o.otk_id, g_tee.id, g_tee.key, NULL, &r), 409);
    T_ASSERT(has(err_msg(r), "OTK already released"));
    json_decref(r);

    /* without the TEE key: refused, and the OTK is still there for the TEE */
    T_EQ(issue_otk(c_anon, g_acme_client, g_tee.id, &o2, NULL), 201);
    T_EQ(release_otk(c_anon, o2.otk_id, g_tee.id, stranger, NULL, &r), 403);
    json_decref(r);
    /* gateway credentials (its certificate, no client token) can neither issue nor release */
    T_EQ(issue_otk(c_gw, NULL, g_tee.id, NULL, NULL), 401);
    T_EQ(release_otk(c_gw, o2.otk_id, g_tee.id, stranger, NULL, NULL), 403);
    T_EQ(release_otk(c_anon, o2.otk_id, g_tee.id, g_tee.key, rel, NULL), 200);
    T_MEMEQ(rel->otk, o2.otk, 32);

    /* wrong tenant's client, no client key, unknown TEE */
    T_EQ(issue_otk(c_anon, g_globex_client, g_tee.id, NULL, &r), 403);
    T_ASSERT(has(err_msg(r), "does not serve tenant globex"));
    json_decref(r);
    T_EQ(issue_otk(c_anon, g_nocnf, g_tee.id, NULL, &r), 400);
    T_ASSERT(has(err_msg(r), "no client key registered for this principal"));
    json_decref(r);
    T_EQ(issue_otk(c_anon, g_acme_client, "tee_00000000000000000000000000000000", NULL, &r), 404);
    json_decref(r);
    T_EQ(issue_otk(c_anon, g_operator, g_tee.id, NULL, NULL), 403); /* operators do not get OTKs */
    /* an OTK for another TEE of the tenant, asked for by g_tee */
    T_OK(new_tee(&b, KT_M1));
    T_EQ(issue_otk(c_anon, g_acme_client, b.id, &o2, NULL), 201);
    T_EQ(release_otk(c_anon, o2.otk_id, g_tee.id, g_tee.key, NULL, &r), 403);
    T_ASSERT(has(err_msg(r), "not bound to TEE"));
    json_decref(r);

    /* expiry: 410 */
    T_EQ(issue_otk(c_anon, g_acme_client, g_tee.id, &o, NULL), 201);
    sleep(OTK_TTL + 1);
    T_EQ(release_otk(c_anon, o.otk_id, g_tee.id, g_tee.key, NULL, &r), 410);
    T_ASSERT(has(err_msg(r), "OTK expired"));
    json_decref(r);
    /* the short-lived join token has expired by now */
    {
        cf_hpke_key *k = kt_keypair();
        T_EQ(register_tee(c_anon, g_short_jt, k, k, NULL, KT_M1, false, &r), 403);
        T_ASSERT(has(err_msg(r), "expired"));
        json_decref(r);
        cf_hpke_key_free(k);
    }
    T_ASSERT(spool_has("\"action\":\"otk.release\""));
    cf_secure_free(rel);
    cf_hpke_key_free(stranger);
    cf_hpke_key_free(b.key);
}

static void test_reattestation(void)
{
    tee_t q;
    otk_t o;
    uint8_t nonce[32];
    char hex[65], p[160];
    json_t *r = NULL;

    /* a good report: count goes up */
    T_OK(get_nonce(c_attest, nonce));
    cf_hex_encode(nonce, 32, hex);
    T_OK(cf_fmt(p, sizeof(p), "/v1/registry/tees/%s/attestations", g_tee.id));
    T_EQ(post(c_attest, p, NULL,
              json_pack("{s:s,s:o}", "nonce", hex, "evidence", evidence_json(g_tee.key, nonce, KT_M1, false)),
              &r),
         200);
    T_STREQ(jstr(r, "status"), "active");
    T_EQ(json_integer_value(json_object_get(r, "attestation_count")), 2);
    json_decref(r);
    /* only the attestation service may report */
    T_EQ(post(c_gw, p, NULL, json_pack("{s:s}", "nonce", hex), NULL), 403);
    T_EQ(post(c_anon, p, NULL, json_pack("{s:s}", "nonce", hex), NULL), 401);

    /* a changed measurement: quarantined at once, keys revoked, alert in the spool */
    T_OK(new_tee(&q, KT_M1));
    T_EQ(issue_otk(c_anon, g_acme_client, q.id, &o, NULL), 201);
    T_OK(get_nonce(c_attest, nonce));
    cf_hex_encode(nonce, 32, hex);
    T_OK(cf_fmt(p, sizeof(p), "/v1/registry/tees/%s/attestations", q.id));
    T_EQ(post(c_attest, p, NULL,
              json_pack("{s:s,s:o}", "nonce", hex, "evidence", evidence_json(q.key, nonce, KT_M3, false)),
              &r),
         200);
    T_STREQ(jstr(r, "status"), "quarantined");
    T_ASSERT(has(jstr(r, "reason"), "measurement changed"));
    json_decref(r);
    T_EQ(release_otk(c_anon, o.otk_id, q.id, q.key, NULL, &r), 403);
    T_ASSERT(has(err_msg(r), "quarantined"));
    json_decref(r);
    T_ASSERT(spool_has("\"action\":\"tee.quarantined\""));
    T_ASSERT(spool_has("\"outcome\":\"alert\""));
    T_ASSERT(spool_has("\"action\":\"tee.revoke\"")); /* kms/keys.h: the TEE's keys */
    /* operator actions */
    T_OK(cf_fmt(p, sizeof(p), "/v1/registry/tees/%s/revoke", q.id));
    T_EQ(post(c_anon, p, g_operator, json_pack("{s:s}", "reason", "decommissioned"), &r), 200);
    T_STREQ(jstr(r, "status"), "revoked");
    json_decref(r);
    T_EQ(post(c_anon, p, g_operator, json_pack("{s:s}", "reason", "again"), NULL), 409);
    T_EQ(post(c_anon, p, g_acme_client, json_pack("{s:s}", "reason", "x"), NULL), 403);
    cf_hpke_key_free(q.key);
}

/* A child process releasing one OTK through `port`: exit 0 = 200, 1 = 409, 2 = other. */
static int race_child(int port, const char *otk_id, const char *tee_id, const cf_hpke_key *key, int go)
{
    cf_http_client *c = client_for(port, NULL);
    char x;
    long st;

    if (c == NULL || read(go, &x, 1) != 1)
        _exit(3);
    st = release_otk(c, otk_id, tee_id, key, NULL, NULL);
    cf_http_client_free(c);
    _exit(st == 200 ? 0 : st == 409 ? 1 : 2);
}

static void test_two_processes_race(void)
{
    char p1[600], p2[600], s1[600], s2[600], s3[600], s4[600];
    const char *args[8];
    json_t *r = NULL;
    tee_t t;

    /* KMS B: same store and HSM token, its own spool and port; a production
     * manifest (no simulated root): releases do not look at evidence. */
    path(p1, sizeof(p1), "pin");
    path(p2, sizeof(p2), "manifest-prod.json");
    T_OK(cf_fmt(s1, sizeof(s1), "--hsm.pin=@%s", p1));
    T_OK(cf_fmt(s2, sizeof(s2), "--manifest=%s", p2));
    T_OK(cf_fmt(s3, sizeof(s3), "--audit.spool=%s/b-spool", D));
    T_OK(cf_fmt(s4, sizeof(s4), "--otk.ttl=%ds", OTK_TTL));
    args[0] = s1;
    args[1] = s2;
    args[2] = s3;
    args[3] = s4;
    args[4] = NULL;
    T_OK(start_kms(&B, "b", args));
    T_OK(wait_ready(&B));
    cb_anon = client_for(B.port, NULL);
    T_ASSERT(cb_anon != NULL);
    /* the same release key on both */
    T_EQ(req(cb_anon, "GET", "/v1/kms/release-key", NULL, NULL, NULL, &r), 200);
    T_STREQ(jstr(r, "kid"), g_release_kid);
    json_decref(r);
    /* B does not trust the simulated root: registration refused, naming it */
    {
        char *jt = join_token("acme", "demo", 600, 1);
        cf_hpke_key *k = kt_keypair();
        T_EQ(register_tee(cb_anon, jt, k, k, NULL, KT_M1, false, &r), 403);
        T_ASSERT(has(err_msg(r), "simulated root, which this manifest does not trust"));
        json_decref(r);
        free(jt);
        cf_hpke_key_free(k);
    }

    T_OK(new_tee(&t, KT_M1));
    for (int round = 0; round < 10; round++) {
        otk_t o;
        int go[2], st, wins = 0, conflicts = 0;
        pid_t kids[2];

        T_EQ(issue_otk(c_anon, g_acme_client, t.id, &o, NULL), 201);
        T_ASSERT(pipe(go) == 0);
        for (int i = 0; i < 2; i++) {
            kids[i] = fork();
            T_ASSERT(kids[i] >= 0);
            if (kids[i] == 0) {
                close(go[1]);
                race_child(i == 0 ? A.port : B.port, o.otk_id, t.id, t.key, go[0]);
            }
        }
        close(go[0]);
        T_ASSERT(write(go[1], "xx", 2) == 2); /* both start at once */
        close(go[1]);
        for (int i = 0; i < 2; i++) {
            T_ASSERT(waitpid(kids[i], &st, 0) == kids[i] && WIFEXITED(st));
            wins += WEXITSTATUS(st) == 0;
            conflicts += WEXITSTATUS(st) == 1;
        }
        T_EQ(wins, 1);
        T_EQ(conflicts, 1);
    }
    /* a clean, graceful stop (and, in the sanitizer build, no leak report) */
    T_EQ(stop(&B, SIGTERM), 0);
    cf_hpke_key_free(t.key);
}

/* Load: issue + release pairs until told to stop; one line per OTK: "<otk_id> <release status>". */
static void load_child(const char *logpath, int port, const char *tee_id, const cf_hpke_key *key)
{
    cf_http_client *c = client_for(port, NULL);
    FILE *f = fopen(logpath, "w");
    int fails = 0;

    if (c == NULL || f == NULL)
        _exit(3);
    for (int i = 0; i < 100000 && fails < 20; i++) {
        otk_t o;
        long st = issue_otk(c, g_acme_client, tee_id, &o, NULL);
        if (st != 201) {
            fails++;
            usleep(20 * 1000);
            continue;
        }
        st = release_otk(c, o.otk_id, tee_id, key, NULL, NULL);
        fprintf(f, "%s %ld\n", o.otk_id, st);
        fflush(f);
        if (st < 0)
            fails++;
    }
    fclose(f);
    cf_http_client_free(c);
    _exit(0);
}

static void test_kill9_restart(void)
{
    char logpath[512], line[128], kid_before[64];
    json_t *r = NULL;
    cf_buf plain;
    char *ct = NULL;
    const char *pt = "tenant data that must survive";
    int released = 0, st;
    pid_t kid;
    FILE *f;

    /* state that must survive: a value encrypted under the tenant key */
    {
        char *pt64 = b64((const uint8_t *)pt, strlen(pt));
        T_EQ(post(c_anon, "/v1/kms/encrypt", g_acme_client, json_pack("{s:s}", "plaintext", pt64), &r),
             200);
        free(pt64);
    }
    T_ASSERT(jstr(r, "ciphertext") != NULL);
    ct = strdup(jstr(r, "ciphertext"));
    json_decref(r);
    memcpy(kid_before, g_release_kid, sizeof(kid_before));

    path(logpath, sizeof(logpath), "load.log");
    kid = fork();
    T_ASSERT(kid >= 0);
    if (kid == 0)
        load_child(logpath, A.port, g_tee.id, g_tee.key);
    usleep(1500 * 1000);
    stop(&A, SIGKILL);
    T_ASSERT(waitpid(kid, &st, 0) == kid);

    T_OK(start_a("60s"));
    /* release key, registry and tenant keys intact */
    T_EQ(req(c_anon, "GET", "/v1/kms/release-key", NULL, NULL, NULL, &r), 200);
    T_STREQ(jstr(r, "kid"), kid_before);
    json_decref(r);
    {
        char p[128];
        T_OK(cf_fmt(p, sizeof(p), "/v1/registry/tees/%s", g_tee.id));
        T_EQ(req(c_anon, "GET", p, g_operator, NULL, NULL, &r), 200);
        T_STREQ(jstr(r, "status"), "active");
        json_decref(r);
    }
    T_EQ(post(c_anon, "/v1/kms/decrypt", g_acme_client, json_pack("{s:s}", "ciphertext", ct), &r), 200);
    cf_buf_init_secret(&plain, 256);
    T_OK(b64dec(jstr(r, "plaintext"), 256, &plain));
    T_EQ(plain.len, strlen(pt));
    T_MEMEQ(plain.data, pt, strlen(pt));
    cf_buf_free(&plain);
    json_decref(r);
    T_EQ(req(c_anon, "GET", "/v1/kms/keys/acme", g_acme_admin, NULL, NULL, &r), 200);
    T_ASSERT(json_integer_value(json_object_get(r, "current_version")) >= 1);
    json_decref(r);

    /* no OTK released twice: every one released before the kill is refused now,
     * and one in flight at the kill is released at most once */
    f = fopen(logpath, "r");
    T_ASSERT(f != NULL);
    while (fgets(line, sizeof(line), f) != NULL) {
        char *sp = strchr(line, ' '), *nl = strchr(line, '\n');
        int64_t before = 0;
        long now;
        const char *id = line;
        if (sp == NULL || nl == NULL)
            continue;
        *sp = 0;
        *nl = 0;
        if (cf_parse_i64(sp + 1, -10, 999, &before) != 0 || !cf_kms_id_valid(id, "otk_"))
            continue;
        now = release_otk(c_anon, id, g_tee.id, g_tee.key, NULL, NULL);
        if (before == 200) {
            released++;
            T_ASSERT_MSG(now == 409 || now == 410, "OTK %s released before the kill answered %ld", id,
                         now);
        } else {
            T_ASSERT_MSG(now == 200 || now == 409 || now == 410, "OTK %s answered %ld", id, now);
        }
    }
    fclose(f);
    T_ASSERT_MSG(released >= 3, "only %d releases before the kill", released);

    /* key admin over HTTP: revoking the version that sealed a value and an OTK */
    {
        otk_t o;
        char p[128];
        int64_t v;
        T_EQ(issue_otk(c_anon, g_acme_client, g_tee.id, &o, NULL), 201);
        T_EQ(req(c_anon, "GET", "/v1/kms/keys/acme", g_acme_admin, NULL, NULL, &r), 200);
        v = json_integer_value(json_object_get(r, "current_version"));
        json_decref(r);
        T_OK(cf_fmt(p, sizeof(p), "/v1/kms/keys/acme/versions/%lld/revoke", (long long)v));
        T_EQ(post(c_anon, p, g_globex_client, json_pack("{s:s}", "reason", "x"), NULL), 403);
        T_EQ(post(c_anon, p, g_acme_admin, json_pack("{s:s}", "reason", "drill"), &r), 200);
        T_EQ(json_integer_value(json_object_get(r, "current_version")), v + 1);
        json_decref(r);
        T_EQ(release_otk(c_anon, o.otk_id, g_tee.id, g_tee.key, NULL, &r), 403);
        T_ASSERT(has(err_msg(r), "revoked"));
        json_decref(r);
        T_EQ(post(c_anon, "/v1/kms/decrypt", g_acme_client, json_pack("{s:s}", "ciphertext", ct), &r), 403);
        json_decref(r);
        /* the next OTK uses the new version */
        T_EQ(issue_otk(c_anon, g_acme_client, g_tee.id, &o, NULL), 201);
        T_EQ(release_otk(c_anon, o.otk_id, g_tee.id, g_tee.key, NULL, NULL), 200);
    }
    free(ct);
}

static void test_stale_quarantine(void)
{
    char p[128];
    json_t *r = NULL;
    otk_t o;
    int i;

    /* restart with a 1 s interval: the TEE, last attested long ago, is stale */
    T_EQ(stop(&A, SIGTERM), 0);
    T_OK(start_a("1s"));
    T_OK(cf_fmt(p, sizeof(p), "/v1/registry/tees/%s", g_tee.id));
    for (i = 0; i < 100; i++) {
        T_EQ(req(c_anon, "GET", p, g_operator, NULL, NULL, &r), 200);
        if (jstr(r, "status") != NULL && strcmp(jstr(r, "status"), "active") != 0)
            break;
        json_decref(r);
        r = NULL;
        usleep(100 * 1000);
    }
    T_STREQ(jstr(r, "status"), "quarantined");
    T_ASSERT(has(jstr(r, "reason"), "attestation stale"));
    json_decref(r);
    T_EQ(issue_otk(c_anon, g_acme_client, g_tee.id, &o, &r), 403);
    T_ASSERT(has(err_msg(r), "quarantined"));
    json_decref(r);
    T_ASSERT(spool_has("\"trigger\":\"stale\""));
}

static void test_startup_failures(void)
{
    char out[16384], p1[600], s1[600], s2[600];
    const char *args[6];
    int st;

    if (A.pid > 0)
        T_EQ(stop(&A, SIGTERM), 0);
    path(p1, sizeof(p1), "manifest.json");
    T_OK(cf_fmt(s2, sizeof(s2), "--manifest=%s", p1));
    /* wrong PIN */
    args[0] = "--hsm.pin=not-the-pin";
    args[1] = s2;
    args[2] = NULL;
    st = run_failing("wrongpin", args, out, sizeof(out));
    T_ASSERT(st != 0 && st != 128 && st != 127);
    T_ASSERT(has(out, "cofferd kms: HSM: HSM login failed: incorrect PIN"));
    T_ASSERT(strstr(out, "Sanitizer") == NULL);
    T_ASSERT(strstr(out, "not-the-pin") == NULL);
    /* missing manifest */
    path(p1, sizeof(p1), "pin");
    T_OK(cf_fmt(s1, sizeof(s1), "--hsm.pin=@%s", p1));
    args[0] = s1;
    args[1] = "--manifest=/nonexistent/manifest.json";
    args[2] = NULL;
    st = run_failing("nomanifest", args, out, sizeof(out));
    T_ASSERT(st != 0 && st != 128 && st != 127);
    T_ASSERT(has(out, "cofferd kms: manifest:"));
    T_ASSERT(strstr(out, "Sanitizer") == NULL);
    /* missing PKCS#11 module */
    args[1] = s2;
    args[2] = "--hsm.module=/nonexistent/libpkcs11.so";
    args[3] = NULL;
    st = run_failing("nomodule", args, out, sizeof(out));
    T_ASSERT(st != 0 && st != 128 && st != 127);
    T_ASSERT(has(out, "cannot load PKCS#11 module"));
    T_ASSERT(strstr(out, "Sanitizer") == NULL);
    /* no PIN at all */
    args[0] = s2;
    args[1] = NULL;
    st = run_failing("nopin", args, out, sizeof(out));
    T_ASSERT(st != 0);
    T_ASSERT(has(out, "hsm.pin"));
}

int main(void)
{
    int rc;

    cf_log_set_level(CF_LOG_ERROR);
    signal(SIGPIPE, SIG_IGN);
    rc = setup();
    if (rc != 0) {
        fprintf(stderr, "setup failed: %s\n", cf_err_detail(rc));
        kt_rmtree(D);
        return 1;
    }
    T_RUN(test_start_and_release_key);
    if (A.pid > 0) {
        T_RUN(test_registration);
        T_RUN(test_otk_flow);
        T_RUN(test_reattestation);
        T_RUN(test_two_processes_race);
        T_RUN(test_kill9_restart);
        T_RUN(test_stale_quarantine);
    }
    T_RUN(test_startup_failures);
    if (t_failed) {
        dump_log(A.log[0] ? A.log : NULL);
        dump_log(B.log[0] ? B.log : NULL);
    }
    stop(&A, SIGTERM);
    stop(&B, SIGTERM);
    cf_http_client_free(c_anon);
    cf_http_client_free(c_attest);
    cf_http_client_free(c_gw);
    cf_http_client_free(cb_anon);
    cf_hpke_key_free(g_release_pub);
    cf_hpke_key_free(g_client);
    cf_hpke_key_free(g_tee.key);
    cf_key_free(g_signer);
    cf_sim_free(g_sim);
    free(g_operator);
    free(g_acme_client);
    free(g_acme_admin);
    free(g_globex_client);
    free(g_nocnf);
    free(g_short_jt);
    kt_rmtree(D);
    return t_done();
}
