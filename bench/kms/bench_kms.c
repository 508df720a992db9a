/*
 * One-time keys: issue + release pairs per second through the KMS core
 * (cf_kms_otk_issue + cf_kms_otk_release, in process, no HTTP), with a real
 * SoftHSM2 token, a SQLite store (WAL, synchronous=FULL) and a durable audit
 * spool in a temporary directory — what `cofferd kms` does per pair minus
 * TLS and JSON. The client's and the TEE's crypto (opening the OTK, sealing
 * the proof, opening the release) runs between the calls and is not counted.
 *
 * Where the time goes (counters of kms/kms.h, the audit hook timed here):
 * store (this module's reads and transactions, without the audit appends
 * made inside them), audit spool appends, kms/keys.h seal/unseal (store
 * lookup, cached tenant key, AES-GCM; HSM only on a cache miss) and HPKE.
 *
 * A second, shorter run uses a key service whose cache holds one key, with two
 * tenants in turn, so every seal and unseal unwraps in the HSM: the HSM's
 * share when the cache does not help.
 *
 * Limits measured in the same run, directly:
 *   crypto   X25519 with OpenSSL EVP: a pair costs the KMS 2 key generations
 *            and 6 DH (auth-mode seal = keygen + 2 DH; open = 2 DH)
 *   disk     write + fdatasync of a small record in the same directory: a
 *            pair makes 4 durable writes (2 commits, 2 audit appends)
 *   HSM      cf_hsm_unwrap of a 32-byte key (what a key-cache miss costs)
 * The TEE is put into the registry directly (registration is not measured).
 */
#include <fcntl.h>
#include <ftw.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/err.h"
#include "base/log.h"
#include "base/parse.h"
#include "base/secmem.h"
#include "hsm/hsm.h"
#include "kms/keys.h"
#include "kms/kms.h"
#include "kms/wire.h"
#include "spool/spool.h"
#include "store/store.h"

#define RUN_SECS 3.0
#define COLD_SECS 1.5
#define MICRO_SECS 0.5

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void die(const char *what, int rc)
{
    fprintf(stderr, "bench_kms: %s failed: %s\n", what, cf_err_detail(rc));
    exit(1);
}

static int rm_cb(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static const char manifest_text[] =
    "{\"version\":1,\"platforms\":{\"sev-snp\":{\"roots\":[\"amd:milan\"],\"min_tcb\":{\"milan\":"
    "{\"bootloader\":0,\"tee\":0,\"snp\":0,\"microcode\":0}}}},\"deployments\":[{\"name\":\"demo\","
    "\"tenant\":\"bench\",\"jobs\":[\"echo\"],\"developer_key\":"
    "\"F4L2-KeulD8PjwNzy78QLHGrVxORTCycQOMoWyensAk\",\"platforms\":{\"sev-snp\":{\"measurements\":"
    "[\"111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111\"]}}}]}";

static const uint8_t *pub_of(const cf_hpke_key *k)
{
    size_t n = 0;
    return cf_hpke_key_pub(k, &n);
}

/* ---- audit hook: a real durable append, timed ---- */

static cf_spool *g_spool;
static double g_audit_s;

static int audit(void *arg, const cf_kms_who *who, const char *action, const char *tenant,
                 const char *resource, const char *outcome, json_t *details)
{
    json_t *ev = json_pack("{s:s,s:s,s:s,s:s?,s:s?,s:o?}", "service", "kms", "action", action,
                           "outcome", outcome, "tenant", tenant, "resource", resource, "details",
                           details);
    double t0 = now_s();
    int rc;

    (void)arg;
    (void)who;
    if (ev == NULL)
        return CF_E_NOMEM;
    rc = cf_spool_append(g_spool, ev, NULL);
    g_audit_s += now_s() - t0;
    json_decref(ev);
    return rc;
}

/* ---- raw limits ---- */

static double cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Seconds per call of fn: best of 5 runs of MICRO_SECS / 5 CPU seconds each (as
 * bench/crypto/bench_hpke.c does, so that other load skews neither side). */
static double best_cpu_s(int (*fn)(void *), void *arg)
{
    double best = 1e9;

    for (int round = 0; round < 5; round++) {
        double t0 = cpu_s(), t;
        long n = 0;
        do {
            if (fn(arg) != 0)
                die("raw OpenSSL operation", CF_E_CRYPTO);
            n++;
            t = cpu_s() - t0;
        } while (t < MICRO_SECS / 5);
        if (t / (double)n < best)
            best = t / (double)n;
    }
    return best;
}

static int raw_keygen(void *arg)
{
    EVP_PKEY *k = NULL;
    int ok = EVP_PKEY_keygen((EVP_PKEY_CTX *)arg, &k) == 1;
    EVP_PKEY_free(k);
    return ok ? 0 : -1;
}

static int raw_derive(void *arg)
{
    uint8_t out[32];
    size_t len = sizeof(out);
    return EVP_PKEY_derive((EVP_PKEY_CTX *)arg, out, &len) == 1 ? 0 : -1;
}

static double x25519_keygen_s(void)
{
    EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_id(EVP_PKEY_X25519, NULL);
    double r;

    if (c == NULL || EVP_PKEY_keygen_init(c) != 1)
        die("EVP X25519 keygen", CF_E_CRYPTO);
    r = best_cpu_s(raw_keygen, c);
    EVP_PKEY_CTX_free(c);
    return r;
}

static double x25519_dh_s(void)
{
    EVP_PKEY *a = EVP_PKEY_Q_keygen(NULL, NULL, "X25519"), *b = EVP_PKEY_Q_keygen(NULL, NULL, "X25519");
    EVP_PKEY_CTX *c = a ? EVP_PKEY_CTX_new(a, NULL) : NULL;
    double r;

    if (c == NULL || b == NULL || EVP_PKEY_derive_init(c) != 1 || EVP_PKEY_derive_set_peer(c, b) != 1)
        die("EVP X25519 derive", CF_E_CRYPTO);
    r = best_cpu_s(raw_derive, c);
    EVP_PKEY_CTX_free(c);
    EVP_PKEY_free(a);
    EVP_PKEY_free(b);
    return r;
}

static double fdatasync_s(const char *dir)
{
    char p[600];
    uint8_t rec[400];
    double t0, t;
    long n = 0;
    int fd;

    memset(rec, 'x', sizeof(rec));
    if (cf_fmt(p, sizeof(p), "%s/fsync-probe", dir) != 0)
        die("path", CF_E_INVAL);
    fd = open(p, O_WRONLY | O_CREAT | O_APPEND, 0600);
    if (fd < 0)
        die("open", CF_E_IO);
    t0 = now_s();
    do {
        if (write(fd, rec, sizeof(rec)) != (ssize_t)sizeof(rec) || fdatasync(fd) != 0)
            die("write/fdatasync", CF_E_IO);
        n++;
        t = now_s() - t0;
    } while (t < MICRO_SECS);
    close(fd);
    unlink(p);
    return t / (double)n;
}

static double hsm_unwrap_s(cf_hsm *hsm)
{
    uint8_t key[32] = {1};
    cf_buf w, out;
    double t0, t;
    long n = 0;

    cf_buf_init(&w, 128);
    cf_buf_init_secret(&out, 128);
    if (cf_hsm_wrap(hsm, (const uint8_t *)"bench", 5, key, sizeof(key), &w) != 0)
        die("cf_hsm_wrap", CF_E_HSM);
    t0 = now_s();
    do {
        cf_buf_reset(&out);
        if (cf_hsm_unwrap(hsm, (const uint8_t *)"bench", 5, w.data, w.len, &out) != 0)
            die("cf_hsm_unwrap", CF_E_HSM);
        n++;
        t = now_s() - t0;
    } while (t < MICRO_SECS);
    cf_buf_free(&w);
    cf_buf_free(&out);
    return t / (double)n;
}

/* Puts an active, just-attested TEE into the registry. */
static void insert_tee(const char *dsn, const char *id, const char *tenant, const uint8_t pub[32])
{
    cf_store *s = NULL;
    int64_t t = (int64_t)time(NULL);
    int rc;

    rc = cf_store_open(dsn, &s);
    if (rc == 0)
        rc = cf_store_exec(
            s,
            "INSERT INTO kms_tee (id, tenant, deployment, platform, public_key, measurement, chip_id,"
            " evidence_digest, status, reason, registered_at, last_attested_at, attestation_count,"
            " join_token_id, updated_at) VALUES (?, ?, 'demo', 'sev-snp', ?, 'm', 'c', 'd',"
            " 'active', NULL, ?, ?, 1, 'jt_bench', ?)",
            CF_STORE_ARGS(cf_sv_text(id), cf_sv_text(tenant), cf_sv_blob(pub, 32), cf_sv_int(t),
                          cf_sv_int(t), cf_sv_int(t)),
            NULL);
    cf_store_close(s);
    if (rc != 0)
        die("registry insert", rc);
}

/* One issue + release; returns the KMS time (s) of the two calls, < 0 on failure.
 * The client's and the TEE's work in between is not counted. */
static double one_pair(cf_kms *kms, const char *tenant, const cf_hpke_key *client,
                       const cf_hpke_key *tee, const char *tee_id, cf_kms_released *rel)
{
    cf_kms_issued iss;
    cf_kms_release_resp resp;
    cf_buf otk, ct;
    uint8_t enc[32];
    double a, b, c, d;
    int rc;

    cf_buf_init_secret(&otk, 32);
    cf_buf_init(&ct, 1024);
    a = now_s();
    rc = cf_kms_otk_issue(kms, NULL, tenant, "client", pub_of(client), tee_id, &iss);
    b = now_s();
    if (rc == 0)
        rc = cf_kms_wire_open_otk(client, cf_kms_release_key(kms), iss.otk_id, tee_id, iss.enc, 32,
                                  iss.ct, sizeof(iss.ct), &otk);
    if (rc == 0)
        rc = cf_kms_wire_seal_release_request(tee, cf_kms_release_key(kms), iss.otk_id, tee_id,
                                              (int64_t)time(NULL), enc, &ct);
    c = now_s();
    if (rc == 0)
        rc = cf_kms_otk_release(kms, NULL, iss.otk_id, tee_id, enc, 32, ct.data, ct.len, &resp);
    d = now_s();
    if (rc == 0)
        rc = cf_kms_wire_open_release(tee, cf_kms_release_key(kms), iss.otk_id, resp.enc, 32,
                                      resp.ct, resp.ct_len, rel);
    if (rc == 0 && memcmp(rel->otk, otk.data, 32) != 0)
        rc = CF_E_DECRYPT;
    cf_buf_free(&otk);
    cf_buf_free(&ct);
    if (rc != 0) {
        fprintf(stderr, "bench_kms: %s\n", cf_err_detail(rc));
        return -1;
    }
    return (b - a) + (d - c);
}

int main(void)
{
    char dir[256], p[600], dsn[600];
    const char *tee_id = "tee_0123456789abcdef0123456789abcdef";
    const char *tee2_id = "tee_1123456789abcdef0123456789abcdef";
    cf_hsm_opts ho = {.pin = "bench-pin-1234", .so_pin = "bench-so-5678", .token_label = "kms-bench",
                      .create_master = true};
    cf_hsm *hsm = NULL;
    cf_kms_keys *keys = NULL;
    cf_manifest *m = NULL;
    cf_kms *kms = NULL;
    cf_kms_prof prof;
    cf_kms_opts ko;
    cf_hpke_key *client, *tee, *tee2;
    cf_kms_keys *cold_keys = NULL;
    cf_kms *cold = NULL;
    cf_kms_keys_opts cold_opts = {.cache_capacity = 1};
    cf_kms_keys_stats cs0, cs1;
    double t_cold = 0;
    long cold_pairs = 0;
    cf_kms_keys_stats ks;
    cf_kms_released *rel;
    double t_server = 0, t_wall0, t_wall = 0, kg, dh, fs, hu;
    long pairs = 0;
    int rc;

    cf_log_set_level(CF_LOG_ERROR);
    if (cf_fmt(dir, sizeof(dir), "/tmp/coffer-kmsbench-XXXXXX") != 0 || mkdtemp(dir) == NULL)
        die("mkdtemp", CF_E_IO);
    if (cf_fmt(p, sizeof(p), "%s/softhsm", dir) != 0)
        die("path", CF_E_INVAL);
    ho.softhsm_dir = p;
    if ((rc = cf_hsm_open(&ho, &hsm)) != 0)
        die("HSM open", rc);
    if (cf_fmt(p, sizeof(p), "%s/spool", dir) != 0 || (rc = cf_spool_open(p, &g_spool)) != 0)
        die("spool", rc);
    if (cf_fmt(dsn, sizeof(dsn), "sqlite:%s/kms.db", dir) != 0)
        die("dsn", CF_E_INVAL);
    if ((rc = cf_kms_keys_open(hsm, dsn, g_spool, NULL, &keys)) != 0)
        die("keys open", rc);
    if ((rc = cf_manifest_parse(manifest_text, strlen(manifest_text), &m)) != 0)
        die("manifest", rc);
    memset(&prof, 0, sizeof(prof));
    memset(&ko, 0, sizeof(ko));
    ko.hsm = hsm;
    ko.keys = keys;
    ko.manifest = m;
    ko.store_dsn = dsn;
    ko.audit = audit;
    ko.prof = &prof;
    if ((rc = cf_kms_open(&ko, &kms)) != 0)
        die("KMS open", rc);
    if (cf_hpke_key_generate(CF_HPKE_KEM_X25519_SHA256, &client) != 0 ||
        cf_hpke_key_generate(CF_HPKE_KEM_X25519_SHA256, &tee) != 0 ||
        cf_hpke_key_generate(CF_HPKE_KEM_X25519_SHA256, &tee2) != 0)
        die("keygen", CF_E_CRYPTO);
    insert_tee(dsn, tee_id, "bench", pub_of(tee));
    insert_tee(dsn, tee2_id, "bench2", pub_of(tee2));
    rel = cf_secure_alloc(sizeof(*rel));
    if (rel == NULL)
        die("alloc", CF_E_NOMEM);

    /* one pair first: creates the tenant key (an HSM wrap), not counted */
    if (one_pair(kms, "bench", client, tee, tee_id, rel) < 0)
        die("warm-up pair", CF_E_INTERNAL);
    memset(&prof, 0, sizeof(prof));
    g_audit_s = 0;
    t_wall0 = now_s();
    do {
        double t = one_pair(kms, "bench", client, tee, tee_id, rel);
        if (t < 0)
            die("pair", CF_E_INTERNAL);
        t_server += t;
        pairs++;
        t_wall = now_s() - t_wall0;
    } while (t_wall < RUN_SECS);
    cf_kms_keys_get_stats(keys, &ks);

    /* Cold key cache: a key service holding one unwrapped key, two tenants in
     * turn, so every seal and unseal unwraps its tenant key in the HSM. */
    if ((rc = cf_kms_keys_open(hsm, dsn, g_spool, &cold_opts, &cold_keys)) != 0)
        die("keys open (cold)", rc);
    ko.keys = cold_keys;
    ko.prof = NULL;
    if ((rc = cf_kms_open(&ko, &cold)) != 0)
        die("KMS open (cold)", rc);
    if (one_pair(cold, "bench2", client, tee2, tee2_id, rel) < 0)
        die("warm-up pair (cold)", CF_E_INTERNAL);
    cf_kms_keys_get_stats(cold_keys, &cs0);
    t_wall0 = now_s();
    do {
        bool second = (cold_pairs & 1) != 0;
        double t = one_pair(cold, second ? "bench2" : "bench", client, second ? tee2 : tee,
                            second ? tee2_id : tee_id, rel);
        if (t < 0)
            die("pair (cold)", CF_E_INTERNAL);
        t_cold += t;
        cold_pairs++;
    } while (now_s() - t_wall0 < COLD_SECS);
    cf_kms_keys_get_stats(cold_keys, &cs1);

    kg = x25519_keygen_s();
    dh = x25519_dh_s();
    fs = fdatasync_s(dir);
    hu = hsm_unwrap_s(hsm);

    {
        double per = t_server / (double)pairs;
        double store = (double)prof.store_ns * 1e-9 - g_audit_s;
        double keys_s = (double)prof.keys_ns * 1e-9, hpke = (double)prof.hpke_ns * 1e-9;
        double other = t_server - store - g_audit_s - keys_s - hpke;
        double hsm_s = (double)ks.unwraps * hu;
        double crypto_limit = 1.0 / (2 * kg + 6 * dh), disk_limit = 1.0 / (4 * fs);
        double rate = (double)pairs / t_server;

        printf("OTK issue+release through the KMS core (SoftHSM2, SQLite WAL synchronous=FULL, durable audit spool)\n");
        printf("  %.1f pairs/s (%ld pairs, %.2f ms of KMS time per pair)\n", rate, pairs, per * 1e3);
        printf("  share of KMS time: store %.1f%%, audit spool %.1f%%, keys seal/unseal %.1f%%, "
               "HPKE %.1f%%, other %.1f%%\n",
               100 * store / t_server, 100 * g_audit_s / t_server, 100 * keys_s / t_server,
               100 * hpke / t_server, 100 * other / t_server);
        printf("  HSM: %llu unwraps over %ld pairs (tenant key cached); at %.1f us each = %.2f%% of KMS time\n",
               (unsigned long long)ks.unwraps, pairs, hu * 1e6, 100 * hsm_s / t_server);
        printf("  cold key cache (1 slot, 2 tenants alternating): %.1f pairs/s; %llu HSM unwraps in %ld "
               "pairs at %.1f us = %.1f%% of KMS time\n",
               (double)cold_pairs / t_cold, (unsigned long long)(cs1.unwraps - cs0.unwraps), cold_pairs,
               hu * 1e6, 100 * (double)(cs1.unwraps - cs0.unwraps) * hu / t_cold);
        printf("limits measured in this run:\n");
        printf("  crypto  (OpenSSL X25519: keygen %.1f us, DH %.1f us; 2 keygen + 6 DH per pair): "
               "%.0f pairs/s -> ratio %.3f\n",
               kg * 1e6, dh * 1e6, crypto_limit, rate / crypto_limit);
        printf("  disk    (write+fdatasync %.3f ms; 4 per pair): %.0f pairs/s -> ratio %.3f\n", fs * 1e3,
               disk_limit, rate / disk_limit);
        printf("  HPKE in the KMS: %.1f us per pair (2 auth seals + 1 auth open, incl. HKDF and AES-GCM) "
               "vs %.1f us for their X25519 operations alone -> ratio %.2f\n",
               hpke / (double)pairs * 1e6, (2 * kg + 6 * dh) * 1e6,
               (2 * kg + 6 * dh) / (hpke / (double)pairs));
    }
    cf_secure_free(rel);
    cf_hpke_key_free(client);
    cf_hpke_key_free(tee);
    cf_hpke_key_free(tee2);
    cf_kms_close(cold);
    cf_kms_keys_close(cold_keys);
    cf_kms_close(kms);
    cf_kms_keys_close(keys);
    cf_manifest_free(m);
    cf_spool_close(g_spool);
    cf_hsm_close(hsm);
    (void)nftw(dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
    return 0;
}
