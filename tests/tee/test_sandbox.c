/*
 * The job sandbox (src/tee/sandbox.c) with the probe job (tests/tee/jobs/probe.c),
 * which misbehaves on request, and the demo jobs (demo/jobs), which must give
 * the right answers. After every misbehaving job the test process — standing
 * in for the TEE runtime — must still be healthy: no child left, no descriptor
 * leaked, the next job runs.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/err.h"
#include "base/secmem.h"
#include "tee/bundle.h"
#include "tee/sandbox.h"
#include "test.h"

static cf_sandbox *g_sb;
static int g_probe = -1;

static const cf_job_limits default_limits = {
    .cpu_s = 5, .memory_mb = 64, .output_kb = 8191, .timeout_ms = 10000};

typedef struct {
    int rc;
    cf_sandbox_result res;
    cf_buf out, err;
} outcome;

static void outcome_free(outcome *o)
{
    cf_buf_free(&o->out);
    cf_buf_free(&o->err);
}

/* Runs exe with args (NULL-terminated) and input; the outcome must be freed. */
static void run_exe(int exe, const char *name, const char *const *args, cf_job_limits l,
                    const void *input, size_t input_len, outcome *o)
{
    char *argv[8];
    size_t n = 0;
    cf_sandbox_job j;

    memset(o, 0, sizeof(*o));
    cf_buf_init_secret(&o->out, 16u << 20);
    cf_buf_init_secret(&o->err, CF_TEE_MAX_STDERR);
    for (; args != NULL && args[n] != NULL && n < CF_ARRAY_LEN(argv); n++)
        argv[n] = (char *)(uintptr_t)args[n];
    memset(&j, 0, sizeof(j));
    j.name = name;
    j.exe_fd = exe;
    j.args = argv;
    j.n_args = n;
    j.limits = l;
    o->rc = cf_sandbox_run(g_sb, &j, input, input_len, &o->out, &o->err, &o->res);
}

static void probe(const char *mode, const char *arg, cf_job_limits l, const void *input,
                  size_t input_len, outcome *o)
{
    const char *args[3] = {mode, arg, NULL};
    run_exe(g_probe, "probe", args, l, input, input_len, o);
}

static bool out_is(const outcome *o, const char *s)
{
    return o->out.len == strlen(s) && (o->out.len == 0 || memcmp(o->out.data, s, o->out.len) == 0);
}

static int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    int n = 0;

    if (d == NULL)
        return -1;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n;
}

/* The "runtime" is healthy: no child process left behind, fds as before. */
static int g_fds;
static void assert_healthy(void)
{
    int st;
    errno = 0;
    T_ASSERT(waitpid(-1, &st, WNOHANG) == -1 && errno == ECHILD);
    T_EQ(count_fds(), g_fds);
}

static void test_echo(void)
{
    size_t n = 3u << 20; /* larger than any pipe buffer: needs the poll loop */
    uint8_t *in = malloc(n);
    outcome o;

    T_ASSERT(in != NULL);
    for (size_t i = 0; i < n; i++)
        in[i] = (uint8_t)(i * 7 + (i >> 9));
    probe("echo", NULL, default_limits, in, n, &o);
    T_OK(o.rc);
    T_EQ(o.res.status, CF_JOB_OK);
    T_EQ(o.res.exit_code, 0);
    T_EQ(o.out.len, n);
    T_ASSERT(memcmp(o.out.data, in, n) == 0);
    T_STREQ(o.res.reason, "");
    outcome_free(&o);
    free(in);

    probe("echo", NULL, default_limits, NULL, 0, &o); /* empty input: EOF at once */
    T_OK(o.rc);
    T_EQ(o.res.status, CF_JOB_OK);
    T_EQ(o.out.len, 0);
    outcome_free(&o);
    assert_healthy();
}

static void test_socket_killed(void)
{
    outcome o;
    probe("socket", NULL, default_limits, NULL, 0, &o);
    T_OK(o.rc);
    T_EQ(o.res.status, CF_JOB_KILLED);
    T_EQ(o.res.signal, SIGSYS);
    T_EQ(o.out.len, 0);
    T_ASSERT(strstr(o.res.reason, "forbidden system call") != NULL);
    outcome_free(&o);
    assert_healthy();
}

static void test_fork_bomb_stopped(void)
{
    outcome o;
    probe("forkbomb", NULL, default_limits, NULL, 0, &o);
    T_OK(o.rc);
    T_EQ(o.res.status, CF_JOB_KILLED);
    T_EQ(o.res.signal, SIGSYS);
    outcome_free(&o);
    assert_healthy();
}

static void test_memory_limit(void)
{
    cf_job_limits l = default_limits;
    outcome o;

    l.memory_mb = 64;
    probe("mem", "16", l, NULL, 0, &o); /* within the limit */
    T_OK(o.rc);
    T_EQ(o.res.status, CF_JOB_OK);
    T_ASSERT(out_is(&o, "ok"));
    outcome_free(&o);

    probe("mem", "200", l, NULL, 0, &o); /* beyond it: malloc fails, the job gives up */
    T_OK(o.rc);
    T_EQ(o.res.status, CF_JOB_FAILED);
    T_EQ(o.res.exit_code, 1);
    T_EQ(o.out.len, 0);
    T_ASSERT(o.err.len > 0 && memmem(o.err.data, o.err.len, "allocation failed", 17) != NULL);
    outcome_free(&o);
    assert_healthy();
}

static void test_timeout(void)
{
    cf_job_limits l = default_limits;
    outcome o;

    l.timeout_ms = 300;
    probe("spin", NULL, l, NULL, 0, &o);
    T_OK(o.rc);
    T_EQ(o.res.status, CF_JOB_TIMEOUT);
    T_EQ(o.res.signal, SIGKILL);
    T_ASSERT(o.res.wall_ms >= 300 && o.res.wall_ms < 3000);
    T_ASSERT(strstr(o.res.reason, "timed out after 300 ms") != NULL);
    outcome_free(&o);

    probe("sleep", NULL, l, NULL, 0, &o); /* wall clock, not CPU */
    T_OK(o.rc);
    T_EQ(o.res.status, CF_JOB_TIMEOUT);
    outcome_free(&o);
    assert_healthy();
}

static void test_cpu_limit(void)
{
    cf_job_limits l = default_limits;
    outcome o;

    l.cpu_s = 1;
    probe("spin", NULL, l, NULL, 0, &o);
    T_OK(o.rc);
    T_EQ(o.res.status, CF_JOB_KILLED);
    T_EQ(o.res.signal, SIGXCPU);
    T_ASSERT(strstr(o.res.reason, "CPU time limit") != NULL);
    outcome_free(&o);
    assert_healthy();
}

static void test_output_cap(void)
{
    cf_job_limits l = default_limits;
    size_t cap = 64u * 1024;
    uint8_t *in = malloc(cap + 1);
    outcome o;

    T_ASSERT(in != NULL);
    memset(in, 'a', cap + 1);
    l.output_kb = 64;
    probe("flood", NULL, l, NULL, 0, &o);
    T_OK(o.rc);
    T_EQ(o.res.status, CF_JOB_OUTPUT_TOO_LARGE);
    T_EQ(o.out.len, 0); /* partial output is not returned */
    outcome_free(&o);

    probe("echo", NULL, l, in, cap, &o); /* exactly the cap: fine */
    T_OK(o.rc);
    T_EQ(o.res.status, CF_JOB_OK);
    T_EQ(o.out.len, cap);
    outcome_free(&o);

    probe("echo", NULL, l, in, cap + 1, &o); /* one byte more: refused */
    T_OK(o.rc);
    T_EQ(o.res.status, CF_JOB_OUTPUT_TOO_LARGE);
    outcome_free(&o);
    free(in);
    assert_healthy();
}

static void test_crash_and_exit_code(void)
{
    outcome o;

    probe("segv", NULL, default_limits, NULL, 0, &o);
    T_OK(o.rc);
    T_EQ(o.res.status, CF_JOB_CRASHED);
    T_EQ(o.res.signal, SIGSEGV);
    T_ASSERT(strstr(o.res.reason, "SEGV") != NULL);
    outcome_free(&o);

    probe("exit", "3", default_limits, NULL, 0, &o);
    T_OK(o.rc);
    T_EQ(o.res.status, CF_JOB_FAILED);
    T_EQ(o.res.exit_code, 3);
    T_ASSERT(strstr(o.res.reason, "exit code 3") != NULL);
    T_ASSERT(o.err.len == 9 && memcmp(o.err.data, "bad input", 9) == 0);
    outcome_free(&o);
    assert_healthy();
}

static void test_no_files_exec_or_code(void)
{
    outcome o;

    probe("open", NULL, default_limits, NULL, 0, &o);
    T_OK(o.rc);
    T_EQ(o.res.status, CF_JOB_KILLED);
    T_EQ(o.res.signal, SIGSYS);
    outcome_free(&o);

    probe("exec", NULL, default_limits, NULL, 0, &o);
    T_OK(o.rc);
    T_EQ(o.res.status, CF_JOB_KILLED);
    T_EQ(o.res.signal, SIGSYS);
    outcome_free(&o);

    probe("execmem", NULL, default_limits, NULL, 0, &o);
    T_OK(o.rc);
    T_EQ(o.res.status, CF_JOB_KILLED);
    T_EQ(o.res.signal, SIGSYS);
    outcome_free(&o);

    /* The one allowed exec names fd 3, which closed at the job's own exec:
     * EBADF where the rule is "NULL pathname", SIGSYS where the kernel needs the
     * runtime's fixed pathname (sandbox.c). Either way nothing runs. */
    probe("execfd", NULL, default_limits, NULL, 0, &o);
    T_OK(o.rc);
    T_ASSERT((o.res.status == CF_JOB_OK && out_is(&o, "EBADF")) ||
             (o.res.status == CF_JOB_KILLED && o.res.signal == SIGSYS));
    outcome_free(&o);

    /* As root, the job's file system is an empty directory. */
    probe("stat", NULL, default_limits, NULL, 0, &o);
    T_OK(o.rc);
    T_EQ(o.res.status, CF_JOB_OK);
    if (geteuid() == 0)
        T_ASSERT(out_is(&o, "absent"));
    outcome_free(&o);
    assert_healthy();
}

static void test_no_signals_to_others(void)
{
    outcome o;
    probe("kill", NULL, default_limits, NULL, 0, &o);
    T_OK(o.rc);
    T_EQ(o.res.status, CF_JOB_OK);
    T_ASSERT(out_is(&o, "EPERM"));
    outcome_free(&o);
    assert_healthy();
}

static void test_job_that_ignores_input(void)
{
    size_t n = 4u << 20;
    uint8_t *in = calloc(1, n);
    outcome o;

    T_ASSERT(in != NULL);
    probe("noread", NULL, default_limits, in, n, &o); /* EPIPE must not hurt us */
    T_OK(o.rc);
    T_EQ(o.res.status, CF_JOB_OK);
    T_ASSERT(out_is(&o, "bye"));
    outcome_free(&o);
    free(in);
    assert_healthy();
}

static void test_descriptors_and_ids(void)
{
    outcome o;

    probe("fds", NULL, default_limits, NULL, 0, &o);
    T_OK(o.rc);
    T_ASSERT(out_is(&o, "closed"));
    outcome_free(&o);

    probe("ids", NULL, default_limits, NULL, 0, &o);
    T_OK(o.rc);
    if (geteuid() == 0)
        T_ASSERT(out_is(&o, "65534 65534"));
    else
        T_ASSERT(o.out.len > 0);
    outcome_free(&o);
    assert_healthy();
}

static void test_setup_failure_is_an_error(void)
{
    int m = memfd_create("not-elf", MFD_CLOEXEC);
    cf_buf out;
    cf_sandbox_result res;
    cf_sandbox_job j;
    outcome o;

    T_ASSERT(m >= 0 && write(m, "#!/bin/sh\necho hi\n", 18) == 18);
    run_exe(m, "script", NULL, default_limits, NULL, 0, &o); /* execveat refuses it */
    T_ASSERT(o.rc < 0);
    T_ASSERT(strstr(cf_err_detail(o.rc), "execveat") != NULL);
    outcome_free(&o);
    close(m);

    /* Output must go to secret memory. */
    cf_buf_init(&out, 1024);
    memset(&j, 0, sizeof(j));
    j.name = "probe";
    j.exe_fd = g_probe;
    j.limits = default_limits;
    T_ERR(cf_sandbox_run(g_sb, &j, NULL, 0, &out, NULL, &res), CF_E_INVAL);
    cf_buf_free(&out);
    assert_healthy();
}

/* ---- concurrency: jobs from several threads at once ---- */

static void *par_job(void *arg)
{
    outcome o;
    char in[64];
    intptr_t ok;
    int n = snprintf(in, sizeof(in), "thread %ld", (long)(intptr_t)arg);

    probe("echo", NULL, default_limits, in, (size_t)n, &o);
    ok = o.rc == 0 && o.res.status == CF_JOB_OK && o.out.len == (size_t)n &&
         memcmp(o.out.data, in, (size_t)n) == 0;
    outcome_free(&o);
    return (void *)ok;
}

static void test_concurrent_jobs(void)
{
    pthread_t th[6];
    for (intptr_t i = 0; i < 6; i++)
        T_ASSERT(pthread_create(&th[i], NULL, par_job, (void *)i) == 0);
    for (int i = 0; i < 6; i++) {
        void *r = NULL;
        T_ASSERT(pthread_join(th[i], &r) == 0);
        T_ASSERT(r == (void *)1);
    }
    assert_healthy();
}

/* ---- the demo jobs give the right answers ---- */

static int demo_exe(const char *name)
{
    char path[1024];
    int fd = -1;
    if ((size_t)snprintf(path, sizeof(path), "%s/demo-%s", TEE_JOBS_DIR, name) >= sizeof(path) ||
        cf_bundle_copy_executable(AT_FDCWD, path, name, &fd) < 0)
        abort();
    return fd;
}

static void demo(const char *name, const char *input, const char *want)
{
    int fd = demo_exe(name);
    outcome o;

    run_exe(fd, name, NULL, default_limits, input, strlen(input), &o);
    close(fd);
    T_OK(o.rc);
    T_EQ(o.res.status, CF_JOB_OK);
    T_ASSERT_MSG(out_is(&o, want), "%s: got \"%.*s\", want \"%s\"", name, (int)o.out.len,
                 (const char *)o.out.data, want);
    outcome_free(&o);
}

static void test_demo_jobs(void)
{
    demo("echo", "hello, TEE\n", "hello, TEE\n");
    demo("echo", "", "");
    /* FIPS 180-4 examples (NIST CSRC "SHA256.pdf"): "abc", "" and the 448-bit message. */
    demo("sha256", "abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad\n");
    demo("sha256", "", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n");
    demo("sha256", "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
         "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1\n");
    demo("wordcount", "hello world\nfoo  bar\tbaz\n", "2 5 25\n");
    demo("wordcount", "", "0 0 0\n");
    demo("wordcount", "no newline", "0 2 10\n");
    demo("redact", "write to jane.doe+tag@mail.example.com.", "write to [EMAIL].");
    demo("redact", "card 4111 1111 1111 1111 exp 12/30", "card [CARD] exp 12/30");
    demo("redact", "card 4111-1111-1111-1111, amex 378282246310005", "card [CARD], amex [CARD]");
    /* Luhn-invalid numbers, too short or too long ones, and non-addresses stay. */
    demo("redact", "order 4111 1111 1111 1112 ok", "order 4111 1111 1111 1112 ok");
    demo("redact", "id 411111111111 and 41111111111111111111111", "id 411111111111 and "
                                                                  "41111111111111111111111");
    demo("redact", "a@b, x@y.z, @example.com, user@", "a@b, x@y.z, @example.com, user@");
    /* A card inside a longer run of digit groups is still found. */
    demo("redact", "ref 12 4111 1111 1111 1111", "ref 12 [CARD]");
    demo("redact", "mail bob@example.org or 5500-0000-0000-0004\n",
         "mail [EMAIL] or [CARD]\n");
    assert_healthy();
}

int main(void)
{
    cf_sandbox_opts so = {0, 0, false};

    if (cf_sandbox_new(&so, &g_sb) < 0 ||
        cf_bundle_copy_executable(AT_FDCWD, TEE_PROBE_BIN, "probe", &g_probe) < 0) {
        fprintf(stderr, "setup failed: %s\n", cf_err_detail(CF_E_INTERNAL));
        return 1;
    }
    g_fds = count_fds();
    T_RUN(test_echo);
    T_RUN(test_socket_killed);
    T_RUN(test_fork_bomb_stopped);
    T_RUN(test_memory_limit);
    T_RUN(test_timeout);
    T_RUN(test_cpu_limit);
    T_RUN(test_output_cap);
    T_RUN(test_crash_and_exit_code);
    T_RUN(test_no_files_exec_or_code);
    T_RUN(test_no_signals_to_others);
    T_RUN(test_job_that_ignores_input);
    T_RUN(test_descriptors_and_ids);
    T_RUN(test_setup_failure_is_an_error);
    T_RUN(test_concurrent_jobs);
    T_RUN(test_demo_jobs);
    close(g_probe);
    cf_sandbox_free(g_sb);
    return t_done();
}
