/*
 * Test helper run by coffer-launch in test_sim.c (not a test itself): it plays
 * the TEE runtime's part, asking the launcher for reports through the real
 * provider code (cf_provider_open_auto -> launcher provider), and records what
 * it saw in OUTDIR for the test to check.
 *
 *   sim_helper OUTDIR STEP...
 *     report:HEX   get a report for 64 bytes of report_data through the provider;
 *                  writes N.report and N.cert (or N.err with the error detail)
 *     raw:HEX      send HEX (any length, may be empty) as one message on the
 *                  launcher socket; writes the raw answer to N.resp
 *     fds          writes the open descriptors (and COFFER_LAUNCHER_FD) to N.fds
 *     pid          writes the process id to N.pid
 *     wait         writes OUTDIR/ready, waits for SIGTERM/SIGINT, writes the
 *                  signal number to N.sig and exits 42
 *     exit:CODE    exits with CODE
 * N is the step's index (0-based).
 */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "attest/provider.h"
#include "base/buf.h"
#include "base/err.h"
#include "base/limits.h"
#include "base/parse.h"

static const char *outdir;

static void write_out(int step, const char *ext, const void *p, size_t n)
{
    char path[4096];
    FILE *f;

    if ((size_t)snprintf(path, sizeof(path), "%s/%d.%s", outdir, step, ext) >= sizeof(path))
        exit(90);
    f = fopen(path, "wb");
    if (f == NULL || (n > 0 && fwrite(p, 1, n, f) != n) || fclose(f) != 0)
        exit(91);
}

static void write_text(int step, const char *ext, const char *s)
{
    write_out(step, ext, s, strlen(s));
}

static int launcher_fd(void)
{
    const char *v = getenv(CF_LAUNCHER_FD_ENV);
    uint64_t fd;

    if (v == NULL || cf_parse_u64(v, 1 << 20, &fd) < 0)
        exit(92);
    return (int)fd;
}

static void step_report(int step, const char *hex, cf_provider **prov)
{
    uint8_t rd[64];
    cf_provider_evidence ev;
    int rc;

    if (cf_hex_decode(hex, rd, sizeof(rd)) < 0)
        exit(93);
    if (*prov == NULL) {
        rc = cf_provider_open_auto(prov);
        if (rc < 0) {
            write_text(step, "err", cf_err_detail(rc));
            return;
        }
    }
    rc = cf_provider_get_report(*prov, rd, &ev);
    if (rc < 0) {
        write_text(step, "err", cf_err_detail(rc));
        return;
    }
    write_out(step, "report", ev.report, sizeof(ev.report));
    write_out(step, "cert", ev.cert_der, ev.cert_len);
    cf_provider_evidence_free(&ev);
}

static void step_raw(int step, const char *hex)
{
    cf_buf msg;
    uint8_t *resp;
    ssize_t n;
    int fd = launcher_fd();

    cf_buf_init(&msg, 4096);
    if (cf_hex_decode_buf(hex, 2048, &msg) < 0)
        exit(94);
    if (send(fd, msg.data, msg.len, MSG_NOSIGNAL) != (ssize_t)msg.len)
        exit(95);
    resp = malloc(CF_LAUNCHER_MAX_RESPONSE);
    if (resp == NULL)
        exit(96);
    n = recv(fd, resp, CF_LAUNCHER_MAX_RESPONSE, 0);
    if (n < 0)
        exit(97);
    write_out(step, "resp", resp, (size_t)n);
    free(resp);
    cf_buf_free(&msg);
}

static void step_fds(int step)
{
    cf_buf out;
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    const char *env = getenv(CF_LAUNCHER_FD_ENV);

    char self[16];

    if (d == NULL)
        exit(98);
    /* The directory stream's own descriptor is not one we inherited. */
    snprintf(self, sizeof(self), "%d", dirfd(d));
    cf_buf_init(&out, 65536);
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.' || strcmp(e->d_name, self) == 0)
            continue;
        if (cf_buf_put_str(&out, e->d_name) < 0 || cf_buf_put_u8(&out, '\n') < 0)
            exit(99);
    }
    closedir(d);
    if (cf_buf_printf(&out, "env=%.32s\n", env ? env : "") < 0)
        exit(99);
    write_out(step, "fds", out.data, out.len);
    cf_buf_free(&out);
}

static void step_wait(int step)
{
    char path[4096], num[16];
    sigset_t set;
    int sig = 0;
    FILE *f;

    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    if (sigprocmask(SIG_BLOCK, &set, NULL) != 0)
        exit(100);
    snprintf(path, sizeof(path), "%s/ready", outdir);
    f = fopen(path, "w");
    if (f == NULL || fclose(f) != 0)
        exit(101);
    if (sigwait(&set, &sig) != 0)
        exit(102);
    snprintf(num, sizeof(num), "%d", sig);
    write_text(step, "sig", num);
    exit(42);
}

int main(int argc, char **argv)
{
    cf_provider *prov = NULL;

    if (argc < 2)
        return 2;
    outdir = argv[1];
    for (int i = 2; i < argc; i++) {
        const char *s = argv[i];
        int step = i - 2;

        if (strncmp(s, "report:", 7) == 0) {
            step_report(step, s + 7, &prov);
        } else if (strncmp(s, "raw:", 4) == 0) {
            step_raw(step, s + 4);
        } else if (strcmp(s, "fds") == 0) {
            step_fds(step);
        } else if (strcmp(s, "pid") == 0) {
            char num[24];
            snprintf(num, sizeof(num), "%ld", (long)getpid());
            write_text(step, "pid", num);
        } else if (strcmp(s, "wait") == 0) {
            step_wait(step);
        } else if (strncmp(s, "exit:", 5) == 0) {
            uint64_t code;
            if (cf_parse_u64(s + 5, 255, &code) < 0)
                return 2;
            cf_provider_free(prov);
            return (int)code;
        } else {
            return 2;
        }
    }
    cf_provider_free(prov);
    return 0;
}
