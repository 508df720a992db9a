/*
 * Helpers shared by the KMS service tests (library level and the cofferd
 * process test): temp directories, a simulated secure processor, evidence
 * bound to a key and nonce, and manifests that pin (or do not pin) the
 * simulated root. Header-only: included by one test program each.
 */
#ifndef COFFER_TESTS_KMS_TEST_UTIL_H
#define COFFER_TESTS_KMS_TEST_UTIL_H

#include <ftw.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "attest/binding.h"
#include "attest/measure.h"
#include "attest/sim.h"
#include "base/buf.h"
#include "base/json.h"
#include "base/parse.h"
#include "crypto/hash.h"
#include "crypto/hpke.h"

#define KT_DEV_KEY "F4L2-KeulD8PjwNzy78QLHGrVxORTCycQOMoWyensAk"
#define KT_M1 0x11 /* measurement bytes of deployment "demo" (tenant acme) */
#define KT_M2 0x22 /* deployment "pay" (tenant globex) */
#define KT_MBAD 0x33 /* in no deployment */
#define KT_M3 0x44 /* also allowed for "demo" (an update the registered TEE did not make) */

static int kt_rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(p);
}

static inline void kt_rmtree(const char *dir)
{
    if (dir != NULL && dir[0] != 0)
        (void)nftw(dir, kt_rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

/* A fresh temp directory (aborts on failure). */
static inline void kt_mkdtemp(char *out, size_t size, const char *name)
{
    if (cf_fmt(out, size, "/tmp/coffer-%s-XXXXXX", name) != 0 || mkdtemp(out) == NULL)
        abort();
}

static inline void kt_meas(uint8_t out[48], uint8_t byte)
{
    memset(out, byte, 48);
}

/* A v3 report from the simulator with report_data = binding(key, nonce). */
static inline int kt_evidence(const cf_sim *sim, const uint8_t key[32], const uint8_t nonce[32],
                              uint8_t meas_byte, bool debug, uint8_t report[CF_SNP_REPORT_LEN],
                              cf_buf *cert_der)
{
    cf_sim_launch l;
    cf_launch_config lc = {.debug = debug, .vmpl = 0};
    uint8_t rd[64];

    memset(&l, 0, sizeof(l));
    l.policy = cf_launch_policy(&lc);
    l.vmpl = 0;
    kt_meas(l.measurement, meas_byte);
    CF_GUARD(cf_random(l.report_id, sizeof(l.report_id)));
    CF_GUARD(cf_binding_compute(key, 32, nonce, rd));
    CF_GUARD(cf_sim_report(sim, &l, rd, report));
    if (cert_der != NULL && cert_der->len == 0)
        CF_GUARD(cf_sim_vcek_der(sim, cert_der));
    return 0;
}

/* Manifest text: deployments demo (acme, M1) and pay (globex, M2); roots are
 * the simulated chain of sim (when sim != NULL) or the built-in amd:milan only.
 * malloc'd; NULL on failure. */
static inline char *kt_manifest(const cf_sim *sim)
{
    char m1[97], m2[97], m3[97];
    uint8_t b[48];
    cf_buf pem;
    json_t *roots = json_array(), *doc;
    char *out = NULL;

    kt_meas(b, KT_M1);
    cf_hex_encode(b, 48, m1);
    kt_meas(b, KT_M2);
    cf_hex_encode(b, 48, m2);
    kt_meas(b, KT_M3);
    cf_hex_encode(b, 48, m3);
    cf_buf_init(&pem, 64 * 1024);
    if (roots == NULL)
        return NULL;
    if (sim != NULL) {
        if (cf_sim_chain_pem(sim, &pem) != 0) {
            json_decref(roots);
            cf_buf_free(&pem);
            return NULL;
        }
        json_array_append_new(roots, json_pack("{s:s,s:s,s:s%}", "name", "coffer-simulated",
                                               "product", "milan", "chain", (const char *)pem.data,
                                               pem.len));
    } else {
        json_array_append_new(roots, json_string("amd:milan"));
    }
    doc = json_pack(
        "{s:i,s:s,s:{s:{s:o,s:{s:{s:i,s:i,s:i,s:i}}}},s:[{s:s,s:s,s:[s],s:s,s:{s:{s:[s,s]}}},"
        "{s:s,s:s,s:[s],s:s,s:{s:{s:[s]}}}]}",
        "version", 1, "name", "kms-test", "platforms", "sev-snp", "roots", roots, "min_tcb",
        "milan", "bootloader", 0, "tee", 0, "snp", 0, "microcode", 0, "deployments", "name",
        "demo", "tenant", "acme", "jobs", "echo", "developer_key", KT_DEV_KEY, "platforms",
        "sev-snp", "measurements", m1, m3, "name", "pay", "tenant", "globex", "jobs", "run",
        "developer_key", KT_DEV_KEY, "platforms", "sev-snp", "measurements", m2);
    if (doc != NULL)
        out = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    cf_buf_free(&pem);
    return out;
}

/* An X25519 key pair (TEE or client key). */
static inline cf_hpke_key *kt_keypair(void)
{
    cf_hpke_key *k = NULL;
    if (cf_hpke_key_generate(CF_HPKE_KEM_X25519_SHA256, &k) != 0)
        abort();
    return k;
}

static inline const uint8_t *kt_pub(const cf_hpke_key *k)
{
    size_t n = 0;
    return cf_hpke_key_pub(k, &n);
}

#endif
