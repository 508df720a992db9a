/* Fake KMS and fake TEE runtimes for the attestation service tests (see fake_platform.h). */
#include "fake_platform.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "attest/binding.h"
#include "attest/manifest.h"
#include "attest/measure.h"
#include "attest/sim.h"
#include "attest/verify.h"
#include "attestsvc/wire.h"
#include "base/buf.h"
#include "base/err.h"
#include "base/file.h"
#include "base/json.h"
#include "base/parse.h"
#include "crypto/hash.h"
#include "crypto/jose.h"
#include "crypto/keys.h"
#include "crypto/pki.h"
#include "http/server.h"
#include "proto/authz.h"

#define NTEES 3
#define NNONCES 256
#define DAY 86400u
#define DEV_KEY "F4L2-KeulD8PjwNzy78QLHGrVxORTCycQOMoWyensAk"

typedef struct {
    fake_platform *plat;
    const char *id, *deployment, *tenant;
    bool debug, enforce;
    cf_key *key;
    uint8_t pub[32];
    cf_sim_launch launch, changed;
    char build_hash[CF_BUILD_HASH_STR_LEN + 1], changed_hash[CF_BUILD_HASH_STR_LEN + 1];
    uint8_t registered_meas[48];
    cf_http_server *srv;
    uint16_t port;
    fake_tee_mode mode;
    fake_kms_stats st;
    int64_t last_attested_at;
} tee;

struct fake_platform {
    char dir[3072];
    pthread_mutex_t mu;
    cf_sim *sim;
    cf_manifest *manifest;
    tee tees[NTEES];
    cf_http_server *kms;
    uint16_t kms_port;
    char nonces[NNONCES][65];
    size_t next_nonce;
    int listings;
};

static int path_of(const fake_platform *p, const char *name, char *out, size_t cap)
{
    return cf_fmt(out, cap, "%s/%s", p->dir, name);
}

static int write_text(const fake_platform *p, const char *name, const char *text, mode_t mode)
{
    char path[4096];
    CF_GUARD(path_of(p, name, path, sizeof(path)));
    return cf_file_write_atomic(path, text, strlen(text), mode);
}

static tee *find_tee(fake_platform *p, const char *id)
{
    for (int i = 0; i < NTEES; i++)
        if (id != NULL && strcmp(p->tees[i].id, id) == 0)
            return &p->tees[i];
    return NULL;
}

/* ---- fake TEE runtime: POST /v1/evidence ---- */

static int h_tee_evidence(void *cls, const cf_http_req *req, cf_http_resp *resp)
{
    tee *t = cls;
    fake_platform *p = t->plat;
    json_t *in = NULL, *out = NULL;
    uint8_t nonce[32], rd[64], report[CF_SNP_REPORT_LEN];
    cf_buf cert;
    fake_tee_mode mode;
    cf_sim_launch launch;
    const char *bh;
    char *rep = NULL, *crt = NULL, *pk = NULL;
    int rc;

    pthread_mutex_lock(&p->mu);
    mode = t->mode;
    pthread_mutex_unlock(&p->mu);
    if (mode == FAKE_TEE_DOWN)
        return cf_http_resp_error(resp, CF_E_UNAVAILABLE, "runtime is down");
    cf_buf_init(&cert, CF_CERT_MAX_BYTES);
    CF_GUARD_OUT(cf_http_req_json(req, &in));
    CF_GUARD_OUT(cf_json_get_hex(in, "nonce", true, nonce, sizeof(nonce)));
    CF_GUARD_OUT(cf_binding_compute(t->pub, sizeof(t->pub), nonce, rd));
    launch = mode == FAKE_TEE_CHANGED ? t->changed : t->launch;
    bh = mode == FAKE_TEE_CHANGED ? t->changed_hash : t->build_hash;
    CF_GUARD_OUT(cf_sim_report(p->sim, &launch, rd, report));
    CF_GUARD_OUT(cf_sim_vcek_der(p->sim, &cert));
    rep = cf_b64url_encode_alloc(report, sizeof(report));
    crt = cf_b64url_encode_alloc(cert.data, cert.len);
    pk = cf_b64url_encode_alloc(t->pub, sizeof(t->pub));
    CF_ENSURE_OUT(rep && crt && pk, CF_E_NOMEM);
    out = json_pack("{s:s,s:s,s:s,s:s,s:{s:s,s:s,s:s}}", "tee_id", t->id, "public_key", pk, "deployment",
                    t->deployment, "build_hash", bh, "evidence", "platform", "sev-snp", "report", rep, "cert", crt);
    CF_ENSURE_OUT(out != NULL, CF_E_NOMEM);
    rc = cf_http_resp_json(resp, 200, out);
out:
    json_decref(in);
    json_decref(out);
    free(rep);
    free(crt);
    free(pk);
    cf_buf_free(&cert);
    return rc;
}

/* ---- fake KMS ---- */

static int require_attest(const cf_http_req *req)
{
    const char *peer = cf_http_req_peer_id(req);
    if (peer == NULL || strcmp(peer, "spiffe://coffer/attest") != 0)
        return cf_err_set(CF_E_FORBIDDEN, "only the attestation service may call this");
    return 0;
}

static int h_kms_list(void *cls, const cf_http_req *req, cf_http_resp *resp)
{
    fake_platform *p = cls;
    json_t *arr = json_array(), *out;
    int rc = 0;

    CF_GUARD(require_attest(req));
    if (arr == NULL)
        return CF_E_NOMEM;
    pthread_mutex_lock(&p->mu);
    p->listings++;
    for (int i = 0; i < NTEES && rc == 0; i++) {
        tee *t = &p->tees[i];
        char meas[97], ep[64];
        char *pk = cf_b64url_encode_alloc(t->pub, sizeof(t->pub));
        cf_hex_encode(t->registered_meas, 48, meas);
        snprintf(ep, sizeof(ep), "http://127.0.0.1:%u", (unsigned)t->port);
        /* Like the real KMS, tee_good's entry does not say where it listens: the
         * service must find it through tee.endpoints. */
        if (pk == NULL ||
            json_array_append_new(arr, json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:I,s:s?}", "id", t->id, "tenant",
                                                 t->tenant, "deployment", t->deployment, "platform", "sev-snp",
                                                 "public_key", pk, "measurement", meas, "status", t->st.status,
                                                 "last_attested_at", (json_int_t)t->last_attested_at, "endpoint",
                                                 strcmp(t->id, "tee_good") == 0 ? NULL : ep)) != 0)
            rc = CF_E_NOMEM;
        free(pk);
    }
    pthread_mutex_unlock(&p->mu);
    out = json_pack("{s:o}", "tees", arr);
    if (rc != 0 || out == NULL) {
        json_decref(out);
        return CF_E_NOMEM;
    }
    rc = cf_http_resp_json(resp, 200, out);
    json_decref(out);
    return rc;
}

static int h_kms_nonce(void *cls, const cf_http_req *req, cf_http_resp *resp)
{
    fake_platform *p = cls;
    uint8_t n[32];
    char hex[65];
    json_t *out;
    int rc;

    CF_GUARD(require_attest(req));
    CF_GUARD(cf_random(n, sizeof(n)));
    cf_hex_encode(n, sizeof(n), hex);
    pthread_mutex_lock(&p->mu);
    memcpy(p->nonces[p->next_nonce++ % NNONCES], hex, sizeof(hex));
    pthread_mutex_unlock(&p->mu);
    out = json_pack("{s:s,s:I}", "nonce", hex, "expires_at", (json_int_t)time(NULL) + 60);
    if (out == NULL)
        return CF_E_NOMEM;
    rc = cf_http_resp_json(resp, 201, out);
    json_decref(out);
    return rc;
}

static int h_kms_attestation(void *cls, const cf_http_req *req, cf_http_resp *resp)
{
    fake_platform *p = cls;
    tee *t = find_tee(p, cf_http_req_param(req, "id"));
    json_t *in = NULL, *ev = NULL, *out = NULL;
    const char *nonce_hex = NULL;
    uint8_t nonce[32];
    cf_attest_evidence *e = NULL;
    cf_verify_result *r = NULL;
    cf_verify_input vi;
    bool known = false;
    char status[16], reason[400] = "";
    int rc;

    CF_GUARD(require_attest(req));
    CF_ENSURE(t != NULL, cf_err_set(CF_E_NOT_FOUND, "no such TEE"));
    CF_GUARD_OUT(cf_http_req_json(req, &in));
    CF_GUARD_OUT(cf_json_get_str(in, "nonce", true, 64, &nonce_hex));
    CF_GUARD_OUT(cf_json_get_hex(in, "nonce", true, nonce, sizeof(nonce)));
    CF_GUARD_OUT(cf_json_get_obj(in, "evidence", true, &ev));
    e = calloc(1, sizeof(*e));
    CF_ENSURE_OUT(e != NULL, CF_E_NOMEM);
    CF_GUARD_OUT(cf_attest_evidence_from_json(ev, e));
    /* Only nonces this KMS issued, each once. */
    pthread_mutex_lock(&p->mu);
    for (int i = 0; i < NNONCES; i++) {
        if (strcmp(p->nonces[i], nonce_hex) == 0) {
            p->nonces[i][0] = '\0';
            known = true;
            break;
        }
    }
    if (!known)
        t->st.bad_nonce++;
    pthread_mutex_unlock(&p->mu);
    CF_ENSURE_OUT(known, cf_err_set(CF_E_CONFLICT, "nonce was not issued by this KMS or was used"));
    /* The KMS's own verification, with the key it registered. */
    memset(&vi, 0, sizeof(vi));
    vi.report = e->report;
    vi.report_len = e->report_len;
    vi.cert = e->cert;
    vi.cert_len = e->cert_len;
    vi.deployment = t->deployment;
    vi.tenant = t->tenant;
    vi.tee_public_key = t->pub;
    vi.tee_public_key_len = sizeof(t->pub);
    vi.nonce = nonce;
    vi.at = time(NULL);
    CF_GUARD_OUT(cf_verify_evidence(p->manifest, &vi, &r));
    if (r->verified && strcmp(r->facts.measurement, "") != 0) {
        char reg[97];
        cf_hex_encode(t->registered_meas, 48, reg);
        if (strcmp(reg, r->facts.measurement) != 0)
            snprintf(reason, sizeof(reason), "measurement changed");
    }
    if (!r->verified && cf_verify_first_failure(r) != NULL)
        snprintf(reason, sizeof(reason), "%s: %s", cf_verify_first_failure(r)->name,
                 cf_verify_first_failure(r)->message);
    pthread_mutex_lock(&p->mu);
    t->st.reports++;
    if (reason[0] != '\0') {
        t->st.failed_reports++;
        if (t->enforce)
            snprintf(t->st.status, sizeof(t->st.status), "quarantined");
    } else {
        t->last_attested_at = (int64_t)time(NULL);
    }
    snprintf(status, sizeof(status), "%s", t->st.status);
    pthread_mutex_unlock(&p->mu);
    out = reason[0] ? json_pack("{s:s,s:s}", "status", status, "reason", reason) : json_pack("{s:s}", "status", status);
    CF_ENSURE_OUT(out != NULL, CF_E_NOMEM);
    rc = cf_http_resp_json(resp, 200, out);
out:
    cf_verify_result_free(r);
    free(e);
    json_decref(in);
    json_decref(out);
    return rc;
}

/* ---- set-up ---- */

static int make_pki(fake_platform *p)
{
    static const char *const ips[] = {"127.0.0.1", NULL};
    cf_pki_cred *ca = NULL, *l = NULL;
    cf_pki_leaf_opts att = {"spiffe://coffer/attest", NULL, ips, CF_PKI_SERVER | CF_PKI_CLIENT, DAY, NULL};
    cf_pki_leaf_opts kms = {"spiffe://coffer/kms", NULL, ips, CF_PKI_SERVER | CF_PKI_CLIENT, DAY, NULL};
    cf_pki_leaf_opts gw = {"spiffe://coffer/gateway", NULL, NULL, CF_PKI_CLIENT, DAY, NULL};
    const cf_pki_leaf_opts *leaves[] = {&att, &kms, &gw};
    const char *names[] = {"attest", "kms", "gateway"};
    char crt[4096], key[4096];
    int rc;

    CF_GUARD(cf_pki_ca_create("Coffer test CA", DAY, &ca));
    CF_GUARD_OUT(path_of(p, "ca.pem", crt, sizeof(crt)));
    CF_GUARD_OUT(cf_pki_write(ca, crt, NULL));
    for (int i = 0; i < 3; i++) {
        char n1[32], n2[32];
        snprintf(n1, sizeof(n1), "%s.crt", names[i]);
        snprintf(n2, sizeof(n2), "%s.key", names[i]);
        CF_GUARD_OUT(path_of(p, n1, crt, sizeof(crt)));
        CF_GUARD_OUT(path_of(p, n2, key, sizeof(key)));
        CF_GUARD_OUT(cf_pki_issue(ca, leaves[i], &l));
        CF_GUARD_OUT(cf_pki_write(l, crt, key));
        cf_pki_free(l);
        l = NULL;
    }
    rc = 0;
out:
    cf_pki_free(l);
    cf_pki_free(ca);
    return rc;
}

static int make_iam(fake_platform *p)
{
    cf_key *sk = NULL, *pk = NULL;
    cf_jwks *set = NULL;
    char *text = NULL, *tok = NULL;
    cf_principal pr;
    int64_t now = (int64_t)time(NULL);
    int rc;

    CF_GUARD_OUT(cf_key_generate(CF_KEY_ED25519, &sk));
    CF_GUARD_OUT(cf_key_public_only(sk, &pk));
    CF_GUARD_OUT(cf_jwks_new(&set));
    CF_GUARD_OUT(cf_jwks_add(set, "iam-test", pk));
    CF_GUARD_OUT(cf_jwks_serialise(set, &text));
    CF_GUARD_OUT(write_text(p, "jwks.json", text, 0644));
    memset(&pr, 0, sizeof(pr));
    snprintf(pr.tenant, sizeof(pr.tenant), "%s", CF_PLATFORM_TENANT);
    snprintf(pr.sub, sizeof(pr.sub), "operator-1");
    snprintf(pr.kind, sizeof(pr.kind), "user");
    pr.roles = CF_ROLE_OPERATOR;
    CF_GUARD_OUT(cf_token_mint(sk, "iam-test", &pr, now, 3600, &tok));
    CF_GUARD_OUT(write_text(p, "token-platform", tok, 0600));
    free(tok);
    tok = NULL;
    snprintf(pr.tenant, sizeof(pr.tenant), "acme");
    snprintf(pr.sub, sizeof(pr.sub), "client-1");
    snprintf(pr.kind, sizeof(pr.kind), "client");
    pr.roles = CF_ROLE_CLIENT;
    CF_GUARD_OUT(cf_token_mint(sk, "iam-test", &pr, now, 3600, &tok));
    CF_GUARD_OUT(write_text(p, "token-acme", tok, 0600));
    rc = 0;
out:
    free(tok);
    free(text);
    cf_jwks_free(set);
    cf_key_free(pk);
    cf_key_free(sk);
    return rc;
}

static int launch_for(const uint8_t runtime[48], const char *bundle_label, bool debug, cf_sim_launch *ret,
                      char hash[CF_BUILD_HASH_STR_LEN + 1])
{
    cf_launch_config cfg = {.debug = debug, .vmpl = 0};
    uint8_t digest[32];

    memset(ret, 0, sizeof(*ret));
    CF_GUARD(cf_sha256(bundle_label, strlen(bundle_label), digest));
    cf_build_hash_format(digest, hash);
    ret->policy = cf_launch_policy(&cfg);
    ret->vmpl = 0;
    CF_GUARD(cf_random(ret->report_id, sizeof(ret->report_id)));
    return cf_launch_measurement(runtime, digest, &cfg, ret->measurement);
}

static int make_manifests(fake_platform *p)
{
    cf_buf chain;
    json_t *deps = json_array(), *m = NULL;
    char *text = NULL, path[4096];
    int rc;

    cf_buf_init(&chain, 64 * 1024);
    CF_ENSURE_OUT(deps != NULL, CF_E_NOMEM);
    CF_GUARD_OUT(cf_sim_chain_pem(p->sim, &chain));
    for (int i = 0; i < NTEES; i++) {
        tee *t = &p->tees[i];
        char meas[97];
        /* The manifest allows each deployment's normal (non-debug) launch. */
        cf_hex_encode(t->registered_meas, 48, meas);
        if (json_array_append_new(deps, json_pack("{s:s,s:s,s:[s],s:s,s:{s:{s:[s]}}}", "name", t->deployment,
                                                  "tenant", t->tenant, "jobs", "echo", "developer_key", DEV_KEY,
                                                  "platforms", "sev-snp", "measurements", meas)) != 0)
            CF_GUARD_OUT(CF_E_NOMEM);
    }
    for (int prod = 0; prod < 2; prod++) {
        json_t *roots = prod ? json_pack("[s]", "amd:milan")
                             : json_pack("[{s:s,s:s,s:s}]", "name", "coffer-sim", "product", "milan", "chain",
                                         (const char *)chain.data);
        m = json_pack("{s:i,s:s,s:{s:{s:o,s:{s:{s:i,s:i,s:i,s:i}}}},s:O}", "version", 1, "name",
                      prod ? "attest-test-prod" : "attest-test-dev", "platforms", "sev-snp", "roots", roots, "min_tcb",
                      "milan", "bootloader", 0, "tee", 0, "snp", 0, "microcode", 0, "deployments", deps);
        CF_ENSURE_OUT(m != NULL, CF_E_NOMEM);
        text = json_dumps(m, JSON_INDENT(2) | JSON_SORT_KEYS);
        CF_ENSURE_OUT(text != NULL, CF_E_NOMEM);
        CF_GUARD_OUT(write_text(p, prod ? "manifest-prod.json" : "manifest.json", text, 0644));
        free(text);
        text = NULL;
        json_decref(m);
        m = NULL;
    }
    CF_GUARD_OUT(path_of(p, "manifest.json", path, sizeof(path)));
    CF_GUARD_OUT(cf_manifest_load(path, &p->manifest));
    rc = 0;
out:
    free(text);
    json_decref(m);
    json_decref(deps);
    cf_buf_free(&chain);
    return rc;
}

static int start_server(fake_platform *p, bool tls, cf_http_server **ret)
{
    char crt[4096], key[4096], ca[4096];
    cf_http_server_opts o;

    memset(&o, 0, sizeof(o));
    o.name = tls ? "fake-kms" : "fake-tee";
    o.threads = 2;
    if (tls) {
        CF_GUARD(path_of(p, "kms.crt", crt, sizeof(crt)));
        CF_GUARD(path_of(p, "kms.key", key, sizeof(key)));
        CF_GUARD(path_of(p, "ca.pem", ca, sizeof(ca)));
        o.tls_cert_file = crt;
        o.tls_key_file = key;
        o.client_ca_file = ca;
        o.mtls = CF_HTTP_MTLS_REQUIRE;
    }
    return cf_http_server_new(&o, ret);
}

int fake_platform_start(const char *dir, fake_platform **ret)
{
    static const struct {
        const char *id, *dep, *tenant;
        bool debug, enforce;
    } defs[NTEES] = {
        {"tee_good", "demo", "demo-tenant", false, true},
        {"tee_flip", "demo2", "acme", false, true},
        {"tee_debug", "dbg", "demo-tenant", true, false},
    };
    fake_platform *p = calloc(1, sizeof(*p));
    cf_sim_tcb tcb;
    uint8_t runtime[48];
    char path[4096], url[64];
    int rc;

    CF_ENSURE(p != NULL, CF_E_NOMEM);
    pthread_mutex_init(&p->mu, NULL);
    CF_GUARD_OUT(cf_fmt(p->dir, sizeof(p->dir), "%s", dir));
    CF_GUARD_OUT(make_pki(p));
    CF_GUARD_OUT(make_iam(p));
    cf_sim_tcb_default(&tcb);
    CF_GUARD_OUT(path_of(p, "sim", path, sizeof(path)));
    CF_GUARD_OUT(cf_sim_open(path, &tcb, &p->sim));
    CF_GUARD_OUT(cf_sha384("fake coffer-tee runtime", 23, runtime));
    for (int i = 0; i < NTEES; i++) {
        tee *t = &p->tees[i];
        char label[128], hash[CF_BUILD_HASH_STR_LEN + 1];
        cf_sim_launch normal;
        size_t n = 0;

        t->plat = p;
        t->id = defs[i].id;
        t->deployment = defs[i].dep;
        t->tenant = defs[i].tenant;
        t->debug = defs[i].debug;
        t->enforce = defs[i].enforce;
        snprintf(t->st.status, sizeof(t->st.status), "active");
        t->last_attested_at = (int64_t)time(NULL);
        CF_GUARD_OUT(cf_key_generate(CF_KEY_X25519, &t->key));
        CF_GUARD_OUT(cf_key_export_public(t->key, t->pub, sizeof(t->pub), &n));
        snprintf(label, sizeof(label), "bundle:%s", t->deployment);
        CF_GUARD_OUT(launch_for(runtime, label, false, &normal, hash));
        memcpy(t->registered_meas, normal.measurement, 48);
        CF_GUARD_OUT(launch_for(runtime, label, t->debug, &t->launch, t->build_hash));
        snprintf(label, sizeof(label), "bundle:%s:changed", t->deployment);
        CF_GUARD_OUT(launch_for(runtime, label, t->debug, &t->changed, t->changed_hash));
        CF_GUARD_OUT(start_server(p, false, &t->srv));
        CF_GUARD_OUT(cf_http_server_route(t->srv, "POST", "/v1/evidence", h_tee_evidence, t, 0));
        CF_GUARD_OUT(cf_http_server_start(t->srv));
        t->port = cf_http_server_port(t->srv);
    }
    CF_GUARD_OUT(make_manifests(p));
    CF_GUARD_OUT(start_server(p, true, &p->kms));
    CF_GUARD_OUT(cf_http_server_route(p->kms, "GET", "/v1/registry/tees", h_kms_list, p, 0));
    CF_GUARD_OUT(cf_http_server_route(p->kms, "POST", "/v1/registry/nonce", h_kms_nonce, p, 0));
    CF_GUARD_OUT(cf_http_server_route(p->kms, "POST", "/v1/registry/tees/{id}/attestations", h_kms_attestation, p,
                                      0));
    CF_GUARD_OUT(cf_http_server_start(p->kms));
    p->kms_port = cf_http_server_port(p->kms);
    snprintf(url, sizeof(url), "https://127.0.0.1:%u", (unsigned)p->kms_port);
    CF_GUARD_OUT(write_text(p, "kms.url", url, 0644));
    {
        /* Discovery pool for the service: a decoy (another TEE) first. */
        char eps[160];
        snprintf(eps, sizeof(eps), "http://127.0.0.1:%u,http://127.0.0.1:%u", (unsigned)p->tees[1].port,
                 (unsigned)p->tees[0].port);
        CF_GUARD_OUT(write_text(p, "tee.endpoints", eps, 0644));
    }
    *ret = p;
    p = NULL;
    rc = 0;
out:
    fake_platform_stop(p);
    return rc;
}

void fake_platform_stop(fake_platform *p)
{
    if (p == NULL)
        return;
    cf_http_server_free(p->kms);
    for (int i = 0; i < NTEES; i++) {
        cf_http_server_free(p->tees[i].srv);
        cf_key_free(p->tees[i].key);
    }
    cf_manifest_free(p->manifest);
    cf_sim_free(p->sim);
    pthread_mutex_destroy(&p->mu);
    free(p);
}

void fake_platform_set_mode(fake_platform *p, const char *tee_id, fake_tee_mode mode)
{
    tee *t = find_tee(p, tee_id);
    if (t == NULL)
        return;
    pthread_mutex_lock(&p->mu);
    t->mode = mode;
    pthread_mutex_unlock(&p->mu);
}

void fake_platform_kms_stats(fake_platform *p, const char *tee_id, fake_kms_stats *ret)
{
    tee *t = find_tee(p, tee_id);
    memset(ret, 0, sizeof(*ret));
    if (t == NULL)
        return;
    pthread_mutex_lock(&p->mu);
    *ret = t->st;
    pthread_mutex_unlock(&p->mu);
}

int fake_platform_listings(fake_platform *p)
{
    int n;
    pthread_mutex_lock(&p->mu);
    n = p->listings;
    pthread_mutex_unlock(&p->mu);
    return n;
}
