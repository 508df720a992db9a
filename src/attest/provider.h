/*
 * Hardware attestation providers (DESIGN.md §3 "Hardware providers").
 *
 * One interface — get_report(report_data[64]) -> evidence (the raw 1184-byte
 * SEV-SNP report and, if the platform hands it out, the DER certificate of the
 * key that signed it) — over three back ends:
 *   launcher     coffer-launch, the simulated secure processor, over the
 *                inherited socket whose number is in COFFER_LAUNCHER_FD
 *   configfs-tsm Linux's shared report ABI (Documentation/ABI/testing/
 *                configfs-tsm-report): a fresh entry under
 *                /sys/kernel/config/tsm/report per request
 *   sev-guest    /dev/sev-guest, SNP_GET_EXT_REPORT ioctl (<linux/sev-guest.h>)
 * The code above the provider is the same for all three.
 *
 * Every back end checks that the report is exactly 1184 bytes and that it
 * carries the report_data that was asked for (a stale or crossed answer is
 * refused); it does NOT verify the signature or the chain: that is the
 * verifier's job (attest/snp.h), on the verifier's side.
 *
 * A cf_provider may be used from several threads: requests are serialised by
 * an internal mutex.
 */
#ifndef COFFER_ATTEST_PROVIDER_H
#define COFFER_ATTEST_PROVIDER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "attest/snp.h"
#include "base/buf.h"
#include "base/compiler.h"

#define CF_LAUNCHER_FD_ENV "COFFER_LAUNCHER_FD"
#define CF_TSM_REPORT_ROOT "/sys/kernel/config/tsm/report"
#define CF_SEV_GUEST_DEVICE "/dev/sev-guest"

/* Evidence as a provider returns it. cert_der is malloc'd and owned by the
 * evidence (NULL when the platform gave no certificate); release with
 * cf_provider_evidence_free. */
typedef struct {
    uint8_t report[CF_SNP_REPORT_LEN];
    uint8_t *cert_der;
    size_t cert_len;
    bool cert_is_vlek; /* the certificate is a VLEK (report KEY_INFO says VLEK) */
} cf_provider_evidence;

void cf_provider_evidence_free(cf_provider_evidence *e);
/* Stores a copy of a certificate in e after checking that it is exactly one
 * DER X.509 certificate of at most CF_CERT_MAX_BYTES. */
int cf_provider_evidence_set_cert(cf_provider_evidence *e, const uint8_t *der, size_t len,
                                  bool vlek) CF_WUR;

typedef enum {
    CF_PROVIDER_LAUNCHER = 1,
    CF_PROVIDER_TSM = 2,
    CF_PROVIDER_SEV_GUEST = 3,
} cf_provider_kind;

/* "launcher", "configfs-tsm", "sev-guest". */
const char *cf_provider_kind_name(cf_provider_kind kind);

typedef struct cf_provider cf_provider;

/* Auto-detection, in this order: COFFER_LAUNCHER_FD set -> launcher (a set but
 * invalid value is an error, never a fall-through to hardware); the
 * configfs-tsm report directory exists -> configfs-tsm; /dev/sev-guest exists
 * -> sev-guest; otherwise CF_E_UNAVAILABLE naming all three. */
int cf_provider_open_auto(cf_provider **ret) CF_WUR;
/* Same with the configfs-tsm root and sev-guest device paths given (tests). */
int cf_provider_open_auto_at(const char *tsm_root, const char *sev_guest_path,
                             cf_provider **ret) CF_WUR;

/* Launcher: the fd named by COFFER_LAUNCHER_FD, or an explicit fd. The fd must
 * be an AF_UNIX SOCK_SEQPACKET socket; on success the provider owns it and
 * marks it close-on-exec (so jobs the runtime spawns do not inherit it). */
int cf_provider_open_launcher_env(cf_provider **ret) CF_WUR;
int cf_provider_open_launcher_fd(int fd, cf_provider **ret) CF_WUR;
/* configfs-tsm under root (NULL = CF_TSM_REPORT_ROOT). */
int cf_provider_open_tsm(const char *root, cf_provider **ret) CF_WUR;
/* /dev/sev-guest (NULL = CF_SEV_GUEST_DEVICE); requests are made at VMPL 0. */
int cf_provider_open_sev_guest(const char *path, cf_provider **ret) CF_WUR;
void cf_provider_free(cf_provider *p);

cf_provider_kind cf_provider_get_kind(const cf_provider *p);

/* Asks for a report carrying report_data. *ret is written only on success
 * (free it with cf_provider_evidence_free). Errors carry a cf_err_set detail. */
int cf_provider_get_report(cf_provider *p, const uint8_t report_data[64],
                           cf_provider_evidence *ret) CF_WUR;

/* ---- configfs-tsm test hook ----
 * A plain directory does not generate reports, so tests drive the real code
 * path (mkdir, write inblob, read generation/outblob/auxblob, rmdir) against a
 * fake tree: the hook is called at each point with the entry directory and may
 * create or change the files the kernel would. Not for production use. */
typedef enum {
    CF_TSM_HOOK_CREATED = 1,       /* after mkdir of the entry */
    CF_TSM_HOOK_INBLOB_WRITTEN,    /* after inblob was written */
    CF_TSM_HOOK_BLOBS_READ,        /* after outblob/auxblob were read, before generation re-check */
    CF_TSM_HOOK_REMOVING,          /* just before rmdir of the entry */
} cf_tsm_hook_point;
typedef int (*cf_tsm_hook)(cf_tsm_hook_point point, const char *entry_path, void *arg);
void cf_provider_tsm_set_hook(cf_provider *p, cf_tsm_hook hook, void *arg);

/* ---- SNP certificate table (GHCB spec v2, "SNP Extended Guest Request") ----
 * Entries of 24 bytes: GUID (16 bytes, in the byte order of its text form, as
 * AMD's tools write it), offset (u32 LE, from the start of the table), length
 * (u32 LE); the table ends with an all-zero entry; certificates follow it.
 * Padding after the certificates is allowed (the buffer is page-sized). */
#define CF_SNP_CERT_ENTRY_LEN 24
extern const uint8_t cf_snp_guid_vcek[16]; /* 63da758d-e664-4564-adc5-f4b93be8accd */
extern const uint8_t cf_snp_guid_vlek[16]; /* a8074bc2-a25a-483e-aae6-39c045a0b8a1 */
extern const uint8_t cf_snp_guid_ask[16];  /* 4ab7b379-bbac-4fe4-a02f-05aef327c782 */
extern const uint8_t cf_snp_guid_ark[16];  /* c0b406a4-a803-4952-9743-3fb6014cd0ae */

/* Validates the whole table (terminator present, at most
 * CF_SNP_CERT_TABLE_MAX_ENTRIES entries, every entry inside the buffer and past
 * the table, no duplicate GUIDs, no empty or oversized certificate), then finds
 * guid: *ret_off and *ret_len give the certificate's place in the buffer.
 * CF_E_NOT_FOUND if the table is valid but has no such entry. */
int cf_snp_cert_table_find(const uint8_t *table, size_t len, const uint8_t guid[16],
                           size_t *ret_off, size_t *ret_len) CF_WUR;
/* Appends a table with the given entries and certificates (tests, simulator). */
int cf_snp_cert_table_build(const uint8_t (*guids)[16], const uint8_t *const *certs,
                            const size_t *cert_lens, size_t n, cf_buf *out) CF_WUR;

/* ---- launcher wire format (coffer-launch <-> launcher provider) ----
 * One SOCK_SEQPACKET message each way; integers big-endian.
 *   request  = "CFLQ" u16 version(1) u16 type(1 = report) u32 body_len(64) report_data[64]
 *   response = "CFLR" u16 version(1) u16 status u32 body_len body
 *     status 0: body = u32 report_len(1184) report u32 cert_len(1..16384) cert DER
 *     else    : body = printable ASCII reason (at most CF_LAUNCHER_MAX_ERROR bytes)
 * Parsers are strict: exact lengths, no trailing bytes. */
#define CF_LAUNCHER_VERSION 1
#define CF_LAUNCHER_TYPE_REPORT 1
#define CF_LAUNCHER_HDR_LEN 12
#define CF_LAUNCHER_REQUEST_LEN (CF_LAUNCHER_HDR_LEN + 64)
enum {
    CF_LAUNCHER_STATUS_OK = 0,
    CF_LAUNCHER_STATUS_MALFORMED = 1,   /* request did not parse */
    CF_LAUNCHER_STATUS_UNSUPPORTED = 2, /* unknown version or type */
    CF_LAUNCHER_STATUS_INTERNAL = 3,    /* the launcher failed to build or sign */
};

int cf_launcher_request_encode(const uint8_t report_data[64],
                               uint8_t out[CF_LAUNCHER_REQUEST_LEN]) CF_WUR;
/* On error, *ret_status (if non-NULL) gets the status the launcher answers with. */
int cf_launcher_request_parse(const uint8_t *msg, size_t len, uint8_t ret_report_data[64],
                              uint16_t *ret_status) CF_WUR;
int cf_launcher_response_encode(const uint8_t report[CF_SNP_REPORT_LEN], const uint8_t *cert,
                                size_t cert_len, cf_buf *out) CF_WUR;
/* reason is sanitised to printable ASCII and truncated to CF_LAUNCHER_MAX_ERROR. */
int cf_launcher_error_encode(uint16_t status, const char *reason, cf_buf *out) CF_WUR;
/* A refused request (status != 0) is CF_E_UNAVAILABLE with the launcher's reason. */
int cf_launcher_response_parse(const uint8_t *msg, size_t len,
                               cf_provider_evidence *ret) CF_WUR;

#endif
