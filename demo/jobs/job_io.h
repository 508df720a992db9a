/*
 * Input and output for the demo jobs (DESIGN.md §7; docs/internals/tee.md "Jobs").
 *
 * A job reads its whole input from stdin, writes its result to stdout and
 * exits 0; a non-zero exit is a failed job, and what it wrote to stderr goes
 * (bounded) into the failure report sealed to the client. The sandbox allows
 * only a few system calls (read, write, memory management, exit, ...), so the
 * jobs use nothing beyond plain read/write and malloc: no files, no network,
 * no locale, no stdio.
 *
 * Jobs are built as static executables without the project's headers or
 * libraries: they are what the bundle measures, and they must run with an
 * empty environment and no loader.
 */
#ifndef COFFER_DEMO_JOB_IO_H
#define COFFER_DEMO_JOB_IO_H

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Upper bound on what a job buffers; the sandbox's memory limit is lower
 * anyway, this only keeps the size arithmetic below obviously safe. */
#define JOB_MAX_INPUT ((size_t)1 << 30)

static inline int job_write_all(int fd, const void *p, size_t n)
{
    const unsigned char *c = p;

    while (n > 0) {
        ssize_t w = write(fd, c, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        c += (size_t)w;
        n -= (size_t)w;
    }
    return 0;
}

static inline int job_puts(int fd, const char *s) { return job_write_all(fd, s, strlen(s)); }

/* Ends the job with a message on stderr and exit status 1. */
static inline void job_fail(const char *msg)
{
    (void)job_puts(2, msg);
    (void)job_puts(2, "\n");
    exit(1);
}

/* The whole of stdin in a malloc'd buffer (never NULL; *ret_len may be 0). */
static inline unsigned char *job_read_all(size_t *ret_len)
{
    size_t cap = 64 * 1024, len = 0;
    unsigned char *buf = malloc(cap);

    if (buf == NULL)
        job_fail("out of memory");
    for (;;) {
        ssize_t r;
        if (len == cap) {
            unsigned char *nb;
            if (cap >= JOB_MAX_INPUT / 2)
                job_fail("input too large");
            nb = realloc(buf, cap * 2);
            if (nb == NULL)
                job_fail("out of memory");
            buf = nb;
            cap *= 2;
        }
        r = read(0, buf + len, cap - len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            job_fail("cannot read input");
        if (r == 0)
            break;
        len += (size_t)r;
    }
    *ret_len = len;
    return buf;
}

/* Decimal text of v into out (at least 21 bytes), NUL-terminated. */
static inline void job_u64_text(unsigned long long v, char out[21])
{
    char tmp[21];
    size_t n = 0, i;

    do {
        tmp[n++] = (char)('0' + (v % 10));
        v /= 10;
    } while (v != 0);
    for (i = 0; i < n; i++)
        out[i] = tmp[n - 1 - i];
    out[n] = '\0';
}

#endif
