/*
 * /dev/sev-guest provider: SNP_GET_EXT_REPORT (Linux UAPI
 * include/uapi/linux/sev-guest.h), falling back to SNP_GET_REPORT when the
 * kernel lacks the extended request. Compiled and reviewed; it needs an
 * SEV-SNP guest to run, so the test suite does not exercise the ioctl.
 *
 * The response buffer holds the firmware's MSG_REPORT_RSP (AMD SEV-SNP ABI,
 * "MSG_REPORT_RSP Message Structure"): STATUS (u32 LE) at 0x00, REPORT_SIZE
 * (u32 LE) at 0x04, reserved 0x08-0x1F, REPORT at 0x20. The certificate buffer
 * receives the GHCB certificate table; its length must be a multiple of the
 * page size, and when it is too small the ioctl fails with VMM error
 * SNP_GUEST_VMM_ERR_INVALID_LEN and certs_len set to the size needed.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "attest/provider.h"
#include "attest/provider_impl.h"
#include "base/err.h"
#include "base/limits.h"

#if defined(__has_include)
#if __has_include(<linux/sev-guest.h>)
#include <linux/sev-guest.h>
#define COFFER_HAVE_SEV_GUEST_H 1
#endif
#endif

#ifndef COFFER_HAVE_SEV_GUEST_H
/* The kernel UAPI, declared here for systems without the header. */
struct snp_report_req {
    uint8_t user_data[64];
    uint32_t vmpl;
    uint8_t rsvd[28];
};
struct snp_report_resp {
    uint8_t data[4000];
};
struct snp_guest_request_ioctl {
    uint8_t msg_version;
    uint64_t req_data;
    uint64_t resp_data;
    uint64_t exitinfo2; /* bits 63:32 VMM error, 31:0 firmware error */
};
struct snp_ext_report_req {
    struct snp_report_req data;
    uint64_t certs_address;
    uint32_t certs_len;
};
#define SNP_GUEST_REQ_IOC_TYPE 'S'
#define SNP_GET_REPORT _IOWR(SNP_GUEST_REQ_IOC_TYPE, 0x0, struct snp_guest_request_ioctl)
#define SNP_GET_EXT_REPORT _IOWR(SNP_GUEST_REQ_IOC_TYPE, 0x2, struct snp_guest_request_ioctl)
#define SNP_GUEST_VMM_ERR_SHIFT 32
#define SNP_GUEST_VMM_ERR_INVALID_LEN 1
#endif

/* Headers before Linux 6.3 named the error word fw_err (no VMM/firmware split). */
#ifdef SNP_GUEST_VMM_ERR_SHIFT
#define IO_EXITINFO(io) ((io).exitinfo2)
#else
#define IO_EXITINFO(io) ((io).fw_err)
#endif

_Static_assert(sizeof(struct snp_report_req) == 96, "snp_report_req ABI");
_Static_assert(sizeof(struct snp_report_resp) == 4000, "snp_report_resp ABI");
_Static_assert(sizeof(struct snp_guest_request_ioctl) == 32, "snp_guest_request_ioctl ABI");

#define SNP_PAGE 4096u
#define SNP_MSG_VERSION 1
#define MSG_REPORT_RSP_HDR 0x20

int cf_provider_open_sev_guest(const char *path, cf_provider **ret)
{
    int fd;
    int rc;

    CF_ENSURE(ret != NULL, CF_E_INVAL);
    if (path == NULL)
        path = CF_SEV_GUEST_DEVICE;
    fd = open(path, O_RDWR | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return cf_err_set(CF_E_UNAVAILABLE, "cannot open %s: %s", path, strerror(errno));
    rc = cf_provider__new(CF_PROVIDER_SEV_GUEST, fd, ret);
    if (rc < 0)
        close(fd);
    return rc;
}

/* MSG_REPORT_RSP -> the report bytes (borrowed from resp). */
static int parse_report_rsp(const struct snp_report_resp *resp, const uint8_t **ret,
                            size_t *ret_len)
{
    cf_buf b;
    uint32_t status, size;
    const uint8_t *report;

    cf_buf_view(&b, resp->data, sizeof(resp->data));
    CF_GUARD(cf_buf_get_u32le(&b, &status));
    CF_GUARD(cf_buf_get_u32le(&b, &size));
    CF_GUARD(cf_buf_skip(&b, MSG_REPORT_RSP_HDR - 8));
    if (status != 0)
        return cf_err_set(CF_E_UNAVAILABLE, "SEV-SNP firmware refused the report (status 0x%x)",
                          status);
    if (size != CF_SNP_REPORT_LEN)
        return cf_err_set(CF_E_PARSE, "firmware report is %u bytes, expected %d", size,
                          CF_SNP_REPORT_LEN);
    CF_GUARD(cf_buf_get_ptr(&b, size, &report));
    *ret = report;
    *ret_len = size;
    return 0;
}

int cf_provider__sev_guest_get(cf_provider *p, const uint8_t report_data[64],
                               cf_provider_evidence *ret)
{
    struct snp_ext_report_req req;
    struct snp_guest_request_ioctl io;
    struct snp_report_resp *resp = NULL;
    uint8_t *certs = NULL;
    size_t certs_len = 4 * SNP_PAGE;
    const uint8_t *report = NULL;
    size_t report_len = 0;
    bool have_certs = false;
    int rc = 0;

    resp = calloc(1, sizeof(*resp));
    CF_ENSURE_OUT(resp != NULL, CF_E_NOMEM);
    for (int attempt = 0;; attempt++) {
        uint64_t info;
        int r, err;

        free(certs);
        certs = aligned_alloc(SNP_PAGE, certs_len);
        CF_ENSURE_OUT(certs != NULL, CF_E_NOMEM);
        memset(certs, 0, certs_len);
        memset(&req, 0, sizeof(req));
        memcpy(req.data.user_data, report_data, 64);
        req.data.vmpl = 0;
        req.certs_address = (uint64_t)(uintptr_t)certs;
        req.certs_len = (uint32_t)certs_len;
        memset(&io, 0, sizeof(io));
        io.msg_version = SNP_MSG_VERSION;
        io.req_data = (uint64_t)(uintptr_t)&req;
        io.resp_data = (uint64_t)(uintptr_t)resp;
        r = ioctl(p->fd, SNP_GET_EXT_REPORT, &io);
        if (r == 0) {
            have_certs = true;
            break;
        }
        err = errno;
        info = IO_EXITINFO(io);
        if ((info >> 32) == SNP_GUEST_VMM_ERR_INVALID_LEN && attempt == 0 &&
            req.certs_len > certs_len && req.certs_len <= CF_SNP_EXT_CERTS_MAX &&
            req.certs_len % SNP_PAGE == 0) {
            certs_len = req.certs_len; /* the host told us the size it needs */
            continue;
        }
        if (err == ENOTTY) {
            /* No extended request in this kernel: a plain report, no certificates. */
            memset(&io, 0, sizeof(io));
            io.msg_version = SNP_MSG_VERSION;
            io.req_data = (uint64_t)(uintptr_t)&req.data;
            io.resp_data = (uint64_t)(uintptr_t)resp;
            r = ioctl(p->fd, SNP_GET_REPORT, &io);
            err = errno;
            info = IO_EXITINFO(io);
            if (r == 0)
                break;
        }
        rc = cf_err_set(CF_E_UNAVAILABLE, "SEV-SNP report request failed: %s (firmware error "
                                          "0x%x, VMM error 0x%x)",
                        strerror(err), (unsigned)(info & 0xffffffffu), (unsigned)(info >> 32));
        goto out;
    }
    CF_GUARD_OUT(parse_report_rsp(resp, &report, &report_len));
    CF_GUARD_OUT(cf_provider__finish(report_data, report, report_len, have_certs ? certs : NULL,
                                     have_certs ? certs_len : 0, ret));
out:
    free(certs);
    free(resp);
    return rc;
}
