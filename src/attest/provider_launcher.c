/*
 * Launcher provider: asks coffer-launch (the simulated secure processor) for
 * reports over the inherited SOCK_SEQPACKET socket, and the wire format both
 * sides share (attest/provider.h; docs/internals/simulator.md "Launcher
 * protocol"). SOCK_SEQPACKET keeps message boundaries, so every message is
 * parsed on its own and a malformed one cannot desynchronise the stream.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "attest/provider.h"
#include "attest/provider_impl.h"
#include "base/err.h"
#include "base/limits.h"
#include "base/parse.h"

static const uint8_t req_magic[4] = {'C', 'F', 'L', 'Q'};
static const uint8_t resp_magic[4] = {'C', 'F', 'L', 'R'};

int cf_launcher_request_encode(const uint8_t report_data[64], uint8_t out[CF_LAUNCHER_REQUEST_LEN])
{
    cf_buf b;
    int rc = 0;

    cf_buf_init(&b, CF_LAUNCHER_REQUEST_LEN);
    CF_GUARD_OUT(cf_buf_put(&b, req_magic, sizeof(req_magic)));
    CF_GUARD_OUT(cf_buf_put_u16be(&b, CF_LAUNCHER_VERSION));
    CF_GUARD_OUT(cf_buf_put_u16be(&b, CF_LAUNCHER_TYPE_REPORT));
    CF_GUARD_OUT(cf_buf_put_u32be(&b, 64));
    CF_GUARD_OUT(cf_buf_put(&b, report_data, 64));
    CF_ENSURE_OUT(b.len == CF_LAUNCHER_REQUEST_LEN, CF_E_INTERNAL);
    memcpy(out, b.data, CF_LAUNCHER_REQUEST_LEN);
out:
    cf_buf_free(&b);
    return rc;
}

int cf_launcher_request_parse(const uint8_t *msg, size_t len, uint8_t ret_report_data[64],
                              uint16_t *ret_status)
{
    uint8_t magic[4], rd[64];
    uint16_t version, type;
    uint32_t body_len;
    uint16_t status = CF_LAUNCHER_STATUS_MALFORMED;
    cf_buf b;
    int rc = 0;

    if (len > CF_LAUNCHER_REQUEST_LEN) {
        rc = cf_err_set(CF_E_TOO_LARGE, "request is %zu bytes, at most %d expected", len,
                        CF_LAUNCHER_REQUEST_LEN);
        goto out;
    }
    cf_buf_view(&b, msg, len);
    if (cf_buf_get(&b, magic, sizeof(magic)) < 0 || cf_buf_get_u16be(&b, &version) < 0 ||
        cf_buf_get_u16be(&b, &type) < 0 || cf_buf_get_u32be(&b, &body_len) < 0) {
        rc = cf_err_set(CF_E_TRUNCATED, "request shorter than its %d-byte header",
                        CF_LAUNCHER_HDR_LEN);
        goto out;
    }
    CF_ENSURE_OUT(memcmp(magic, req_magic, sizeof(magic)) == 0,
                  cf_err_set(CF_E_PARSE, "request does not start with \"CFLQ\""));
    if (version != CF_LAUNCHER_VERSION || type != CF_LAUNCHER_TYPE_REPORT) {
        status = CF_LAUNCHER_STATUS_UNSUPPORTED;
        rc = cf_err_set(CF_E_UNSUPPORTED, "unsupported request version %u type %u", version,
                        type);
        goto out;
    }
    CF_ENSURE_OUT(body_len == 64, cf_err_set(CF_E_PARSE, "report request body must be 64 bytes "
                                                         "of report_data, not %u",
                                             body_len));
    CF_ENSURE_OUT(cf_buf_get(&b, rd, sizeof(rd)) == 0,
                  cf_err_set(CF_E_TRUNCATED, "request ends inside report_data"));
    CF_ENSURE_OUT(cf_buf_expect_end(&b) == 0, CF_E_TRAILING);
    memcpy(ret_report_data, rd, sizeof(rd));
out:
    if (rc < 0 && ret_status != NULL)
        *ret_status = status;
    return rc;
}

static int put_header(cf_buf *out, uint16_t status, size_t body_len)
{
    CF_GUARD(cf_buf_put(out, resp_magic, sizeof(resp_magic)));
    CF_GUARD(cf_buf_put_u16be(out, CF_LAUNCHER_VERSION));
    CF_GUARD(cf_buf_put_u16be(out, status));
    return cf_buf_put_u32be(out, (uint32_t)body_len);
}

int cf_launcher_response_encode(const uint8_t report[CF_SNP_REPORT_LEN], const uint8_t *cert,
                                size_t cert_len, cf_buf *out)
{
    CF_ENSURE(cert_len > 0 && cert_len <= CF_CERT_MAX_BYTES, CF_E_TOO_LARGE);
    CF_GUARD(put_header(out, CF_LAUNCHER_STATUS_OK, 4 + CF_SNP_REPORT_LEN + 4 + cert_len));
    CF_GUARD(cf_buf_put_u32be(out, CF_SNP_REPORT_LEN));
    CF_GUARD(cf_buf_put(out, report, CF_SNP_REPORT_LEN));
    CF_GUARD(cf_buf_put_u32be(out, (uint32_t)cert_len));
    return cf_buf_put(out, cert, cert_len);
}

static bool printable(uint8_t c) { return c >= 0x20 && c < 0x7f; }

int cf_launcher_error_encode(uint16_t status, const char *reason, cf_buf *out)
{
    size_t n = strnlen(reason, CF_LAUNCHER_MAX_ERROR);

    CF_ENSURE(status != CF_LAUNCHER_STATUS_OK, CF_E_INVAL);
    if (n == 0) {
        reason = "request refused";
        n = strlen(reason);
    }
    CF_GUARD(put_header(out, status, n));
    for (size_t i = 0; i < n; i++)
        CF_GUARD(cf_buf_put_u8(out, printable((uint8_t)reason[i]) ? (uint8_t)reason[i] : '?'));
    return 0;
}

int cf_launcher_response_parse(const uint8_t *msg, size_t len, cf_provider_evidence *ret)
{
    cf_provider_evidence e;
    uint8_t magic[4];
    uint16_t version, status;
    uint32_t body_len, report_len, cert_len;
    const uint8_t *report, *cert, *reason;
    cf_buf b;
    int rc = 0;

    memset(&e, 0, sizeof(e));
    if (len > CF_LAUNCHER_MAX_RESPONSE)
        return cf_err_set(CF_E_TOO_LARGE, "launcher response exceeds %u bytes",
                          (unsigned)CF_LAUNCHER_MAX_RESPONSE);
    cf_buf_view(&b, msg, len);
    if (cf_buf_get(&b, magic, sizeof(magic)) < 0 || cf_buf_get_u16be(&b, &version) < 0 ||
        cf_buf_get_u16be(&b, &status) < 0 || cf_buf_get_u32be(&b, &body_len) < 0)
        return cf_err_set(CF_E_TRUNCATED, "launcher response shorter than its header");
    if (memcmp(magic, resp_magic, sizeof(magic)) != 0)
        return cf_err_set(CF_E_PARSE, "launcher response does not start with \"CFLR\"");
    if (version != CF_LAUNCHER_VERSION)
        return cf_err_set(CF_E_UNSUPPORTED, "launcher response version %u", version);
    if (body_len != cf_buf_remaining(&b))
        return cf_err_set(body_len > cf_buf_remaining(&b) ? CF_E_TRUNCATED : CF_E_TRAILING,
                          "launcher response body length %u does not match the message",
                          body_len);
    if (status != CF_LAUNCHER_STATUS_OK) {
        if (body_len == 0 || body_len > CF_LAUNCHER_MAX_ERROR)
            return cf_err_set(CF_E_PARSE, "launcher error reason must be 1..%d bytes",
                              CF_LAUNCHER_MAX_ERROR);
        CF_GUARD(cf_buf_get_ptr(&b, body_len, &reason));
        for (uint32_t i = 0; i < body_len; i++)
            if (!printable(reason[i]))
                return cf_err_set(CF_E_PARSE, "launcher error reason is not printable ASCII");
        return cf_err_set(CF_E_UNAVAILABLE, "coffer-launch refused the request (status %u): %.*s",
                          status, (int)body_len, (const char *)reason);
    }
    if (cf_buf_get_u32be(&b, &report_len) < 0 || report_len != CF_SNP_REPORT_LEN ||
        cf_buf_get_ptr(&b, CF_SNP_REPORT_LEN, &report) < 0)
        return cf_err_set(CF_E_PARSE, "launcher response must carry a %d-byte report",
                          CF_SNP_REPORT_LEN);
    if (cf_buf_get_u32be(&b, &cert_len) < 0 || cert_len == 0 || cert_len > CF_CERT_MAX_BYTES ||
        cf_buf_get_ptr(&b, cert_len, &cert) < 0)
        return cf_err_set(CF_E_PARSE, "launcher response must carry a 1..%u-byte certificate",
                          (unsigned)CF_CERT_MAX_BYTES);
    CF_GUARD(cf_buf_expect_end(&b));
    memcpy(e.report, report, CF_SNP_REPORT_LEN);
    CF_GUARD_OUT(cf_provider_evidence_set_cert(&e, cert, cert_len, false));
    *ret = e;
    memset(&e, 0, sizeof(e));
out:
    cf_provider_evidence_free(&e);
    return rc;
}

/* ---- the provider ---- */

int cf_provider_open_launcher_fd(int fd, cf_provider **ret)
{
    int type = 0, domain = 0, flags;
    socklen_t sl = sizeof(type), dl = sizeof(domain);

    CF_ENSURE(ret != NULL, CF_E_INVAL);
    flags = fcntl(fd, F_GETFD);
    if (fd < 0 || flags < 0)
        return cf_err_set(CF_E_CONFIG, "%s=%d is not an open file descriptor",
                          CF_LAUNCHER_FD_ENV, fd);
    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &sl) != 0 ||
        getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &dl) != 0 || type != SOCK_SEQPACKET ||
        domain != AF_UNIX)
        return cf_err_set(CF_E_CONFIG, "%s=%d is not the launcher's AF_UNIX SOCK_SEQPACKET "
                                       "socket", CF_LAUNCHER_FD_ENV, fd);
    /* Programs this process starts (jobs) must not inherit the channel. */
    if (fcntl(fd, F_SETFD, flags | FD_CLOEXEC) != 0)
        return CF_E_IO;
    return cf_provider__new(CF_PROVIDER_LAUNCHER, fd, ret);
}

int cf_provider_open_launcher_env(cf_provider **ret)
{
    const char *v = getenv(CF_LAUNCHER_FD_ENV);
    uint64_t fd;

    if (v == NULL)
        return cf_err_set(CF_E_CONFIG, "%s is not set (not started by coffer-launch)",
                          CF_LAUNCHER_FD_ENV);
    if (cf_parse_u64(v, INT_MAX, &fd) < 0)
        return cf_err_set(CF_E_CONFIG, "%s must be a file descriptor number",
                          CF_LAUNCHER_FD_ENV);
    return cf_provider_open_launcher_fd((int)fd, ret);
}

int cf_provider__launcher_get(cf_provider *p, const uint8_t report_data[64],
                              cf_provider_evidence *ret)
{
    uint8_t req[CF_LAUNCHER_REQUEST_LEN];
    uint8_t *resp = NULL, drain[1];
    cf_provider_evidence e;
    struct pollfd pfd;
    ssize_t n;
    int rc = 0;

    memset(&e, 0, sizeof(e));
    /* Drop answers to earlier requests that timed out: they would not match. */
    while (recv(p->fd, drain, sizeof(drain), MSG_DONTWAIT | MSG_TRUNC) > 0) {
    }
    CF_GUARD_OUT(cf_launcher_request_encode(report_data, req));
    do {
        n = send(p->fd, req, sizeof(req), MSG_NOSIGNAL);
    } while (n < 0 && errno == EINTR);
    CF_ENSURE_OUT(n == (ssize_t)sizeof(req),
                  cf_err_set(CF_E_UNAVAILABLE, "cannot reach coffer-launch: %s",
                             n < 0 ? strerror(errno) : "short send"));
    pfd.fd = p->fd;
    pfd.events = POLLIN;
    do {
        pfd.revents = 0;
        n = poll(&pfd, 1, CF_LAUNCHER_TIMEOUT_MS);
    } while (n < 0 && errno == EINTR);
    CF_ENSURE_OUT(n > 0, n == 0 ? cf_err_set(CF_E_TIMEOUT, "coffer-launch did not answer within "
                                                           "%d ms", CF_LAUNCHER_TIMEOUT_MS)
                                : CF_E_IO);
    resp = malloc(CF_LAUNCHER_MAX_RESPONSE + 1);
    CF_ENSURE_OUT(resp != NULL, CF_E_NOMEM);
    do {
        /* MSG_TRUNC: returns the real message length, so oversize is detected. */
        n = recv(p->fd, resp, CF_LAUNCHER_MAX_RESPONSE + 1, MSG_TRUNC);
    } while (n < 0 && errno == EINTR);
    CF_ENSURE_OUT(n > 0, cf_err_set(CF_E_UNAVAILABLE, "coffer-launch closed the connection"));
    CF_ENSURE_OUT((size_t)n <= CF_LAUNCHER_MAX_RESPONSE,
                  cf_err_set(CF_E_TOO_LARGE, "launcher response exceeds %u bytes",
                             (unsigned)CF_LAUNCHER_MAX_RESPONSE));
    CF_GUARD_OUT(cf_launcher_response_parse(resp, (size_t)n, &e));
    CF_GUARD_OUT(cf_provider__check_echo(e.report, report_data));
    *ret = e;
    memset(&e, 0, sizeof(e));
out:
    cf_provider_evidence_free(&e);
    free(resp);
    return rc;
}
