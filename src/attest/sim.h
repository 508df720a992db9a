/*
 * Simulated AMD secure processor (DESIGN.md §3; docs/internals/simulator.md).
 *
 * A simulated ARK -> ASK -> VCEK chain with AMD's certificate structure (VCEK
 * Certificate and KDS Interface Specification): ARK and ASK are RSA-4096 and
 * sign with RSASSA-PSS (SHA-384, MGF1-SHA-384, salt 48); the VCEK is ECDSA
 * P-384 and carries the AMD extensions 1.3.6.1.4.1.3704.1.* encoded as AMD
 * encodes them (INTEGER SPLs, IA5String productName1, the 64 raw hwID bytes).
 * The simulated product is Milan ("Milan-B0"). Reports are built in the exact
 * ATTESTATION_REPORT layout by cf_snp_report_encode and signed with the VCEK by
 * cf_snp_report_sign (attest/snp.h), so one verifier serves hardware and the
 * simulator; only the pinned root differs (CN "Coffer Simulated ARK").
 *
 * State (created once, loaded on later runs, never regenerated silently):
 *   STATE/sim/                    0700, renamed into place atomically
 *     ark.pem, ask.pem            0644  the root chain (ARK private key is discarded)
 *     ask.key                     0600  PKCS#8 PEM, used only to issue VCEKs
 *     chip_id                     0644  64 random bytes, hex (the simulated CHIP_ID)
 *     vcek-<tcb>/vcek.pem         0644  one VCEK per TCB (like AMD: the VCEK is
 *     vcek-<tcb>/vcek.key         0600  derived from chip and TCB), <tcb> = 16 hex
 *                                       digits of the raw TCB_VERSION
 * A state that exists but is incomplete, inconsistent or group/other-accessible
 * is an error (CF_E_CONFIG with the reason), never silently replaced.
 *
 * Threading: a cf_sim is immutable after cf_sim_open and may be shared
 * read-only between threads.
 */
#ifndef COFFER_ATTEST_SIM_H
#define COFFER_ATTEST_SIM_H

#include <openssl/x509.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "attest/snp.h"
#include "base/buf.h"
#include "base/compiler.h"

#define CF_SIM_ARK_CN "Coffer Simulated ARK"
#define CF_SIM_ASK_CN "Coffer Simulated ASK"
#define CF_SIM_VCEK_CN "Coffer Simulated VCEK"
#define CF_SIM_PRODUCT_NAME "Milan-B0"
#define CF_SIM_RSA_BITS 4096
#define CF_SIM_CHIP_ID_LEN 64

/* CPUID of the simulated part (reported at 0x188..0x18A of a v3 report):
 * family 19h, model 01h (Milan), stepping 1. */
#define CF_SIM_CPUID_FAMILY 0x19
#define CF_SIM_CPUID_MODEL 0x01
#define CF_SIM_CPUID_STEPPING 0x01
/* Simulated SNP firmware version (CURRENT/COMMITTED major.minor.build). */
#define CF_SIM_FW_MAJOR 1
#define CF_SIM_FW_MINOR 55
#define CF_SIM_FW_BUILD 21

/* The simulated TCB (Milan TCB_VERSION: byte 0 bootloader, 1 TEE, 6 SNP,
 * 7 microcode; SPL 4..7 are always 0). Defaults: bl 4, tee 0, snp 22, ucode 213. */
typedef struct {
    uint8_t bootloader, tee, snp, microcode;
} cf_sim_tcb;

void cf_sim_tcb_default(cf_sim_tcb *ret);
/* Parses "bl=4,tee=0,snp=22,ucode=213"; keys may be omitted or reordered, each
 * at most once; an omitted key keeps the value already in *ret (so start from
 * cf_sim_tcb_default). *ret is unchanged on failure. */
int cf_sim_tcb_parse(const char *spec, cf_sim_tcb *ret) CF_WUR;
/* The little-endian TCB_VERSION value as it stands in a report. */
uint64_t cf_sim_tcb_raw(const cf_sim_tcb *tcb);

typedef struct cf_sim cf_sim;

/* Opens the simulator state under state_dir (created with mode 0700 if it does
 * not exist; its parent must), creating the chain on first use and issuing the
 * VCEK for tcb on first use of that TCB. Concurrent first opens are safe (the
 * loser of the rename loads the winner's chain). Loading checks permissions,
 * that ARK -> ASK -> VCEK signatures verify, that each private key matches its
 * certificate and that the VCEK's extensions match tcb and the stored chip id.
 * The VCEK private key stays in the returned object; free it with cf_sim_free. */
int cf_sim_open(const char *state_dir, const cf_sim_tcb *tcb, cf_sim **ret) CF_WUR;
void cf_sim_free(cf_sim *sim);

/* Whether this cf_sim_open created the chain / issued the VCEK (for logs). */
bool cf_sim_created_chain(const cf_sim *sim);
bool cf_sim_issued_vcek(const cf_sim *sim);

/* Borrowed; valid as long as sim. */
X509 *cf_sim_ark(const cf_sim *sim);
X509 *cf_sim_ask(const cf_sim *sim);
X509 *cf_sim_vcek(const cf_sim *sim);
const uint8_t *cf_sim_chip_id(const cf_sim *sim); /* CF_SIM_CHIP_ID_LEN bytes */
const cf_sim_tcb *cf_sim_get_tcb(const cf_sim *sim);

/* Appends the VCEK's DER to out. */
int cf_sim_vcek_der(const cf_sim *sim, cf_buf *out) CF_WUR;
/* Appends the pinned-root PEM (ASK first, then ARK: the order cf_snp_roots_add_pem
 * and manifests expect) to out and NUL-terminates it. */
int cf_sim_chain_pem(const cf_sim *sim, cf_buf *out) CF_WUR;

/* Per-launch values a report carries besides report_data. */
typedef struct {
    uint64_t policy;        /* cf_launch_policy() */
    uint32_t vmpl;          /* 0..3 */
    uint8_t measurement[48];
    uint8_t host_data[32];  /* zero unless the host supplies some */
    uint8_t report_id[32];  /* random per launch: REPORT_ID identifies the guest */
} cf_sim_launch;

/* Builds a version-3 report (signing key VCEK, signature algorithm 1, TCB and
 * chip id of sim, Milan CPUID, REPORT_ID_MA all ones = no migration agent) with
 * report_data and signs it with the VCEK. Writes CF_SNP_REPORT_LEN bytes. */
int cf_sim_report(const cf_sim *sim, const cf_sim_launch *launch, const uint8_t report_data[64],
                  uint8_t ret[CF_SNP_REPORT_LEN]) CF_WUR;

#endif
