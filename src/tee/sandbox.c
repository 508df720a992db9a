/*
 * Job sandbox: fork, confine, execute the sealed executable, feed and collect
 * through pipes under poll, enforce the wall clock and the output cap, reap.
 * Policy and reasons: sandbox.h and docs/internals/tee.md "Sandbox".
 *
 * The child of fork() in a multi-threaded runtime may only call
 * async-signal-safe functions: everything it needs (argv, the seccomp program)
 * is prepared by the parent, and the child's code below uses only system calls.
 */
#include "tee/sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/err.h"
#include "base/log.h"
#include "base/parse.h"
#include "base/secmem.h"

#define DEFAULT_ID 65534 /* nobody / nogroup */
#define EXE_FD 3         /* the executable in the child: the only fd execveat may use */
#define STATUS_FD 4      /* setup failures reported to the parent; closes on exec */
#define JOB_NOFILE 4     /* RLIMIT_NOFILE: fds 0..3 are all a job ever has */
#define CHUNK (64u * 1024)

/* Setup steps, reported by a child that could not start the job. */
enum {
    STEP_SIGNALS = 1,
    STEP_SETSID,
    STEP_NETNS,
    STEP_FDS,
    STEP_CHROOT,
    STEP_IDS,
    STEP_PDEATHSIG,
    STEP_RLIMIT,
    STEP_NO_NEW_PRIVS,
    STEP_SECCOMP,
    STEP_EXEC,
};

static const char *const step_names[] = {
    "", "signals", "setsid", "network namespace", "descriptors", "chroot", "uid/gid change",
    "parent-death signal", "rlimits", "no_new_privs", "seccomp", "execveat",
};

/* Pathname used by execveat when the kernel refuses a NULL one (see
 * exec_null_path below). Its address is the same in the forked child. */
static const char empty_path[] = "";

struct cf_sandbox {
    struct sock_fprog prog; /* the exported seccomp program (filter malloc'd) */
    uid_t uid;
    gid_t gid;
    bool change_ids;
    char root[64];          /* empty directory jobs are chrooted into ("" if not root) */
    bool netns;
    bool exec_null_path; /* execveat(fd, NULL, ..., AT_EMPTY_PATH) works */
};

const char *cf_job_status_name(cf_job_status s)
{
    switch (s) {
    case CF_JOB_OK:
        return "ok";
    case CF_JOB_FAILED:
        return "failed";
    case CF_JOB_TIMEOUT:
        return "timeout";
    case CF_JOB_OUTPUT_TOO_LARGE:
        return "output_too_large";
    case CF_JOB_KILLED:
        return "killed";
    case CF_JOB_CRASHED:
        return "crashed";
    }
    return "unknown";
}

bool cf_sandbox_has_netns(const cf_sandbox *s) { return s->netns; }

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* ---- the seccomp allow-list ---- */

static int add(scmp_filter_ctx ctx, uint32_t action, int nr)
{
    return seccomp_rule_add(ctx, action, nr, 0) == 0 ? 0 : CF_E_INTERNAL;
}

/* One argument comparison, every field set (libseccomp's SCMP_Ax macros leave
 * datum_b to the compiler). MASKED_EQ: (arg & a) == b; EQ: arg == a. */
static struct scmp_arg_cmp arg_cmp(unsigned arg, enum scmp_compare op, scmp_datum_t a,
                                   scmp_datum_t b)
{
    struct scmp_arg_cmp c = {.arg = arg, .op = op, .datum_a = a, .datum_b = b};
    return c;
}

/*
 * What a static glibc program needs to start, read stdin, compute, write
 * stdout and exit; nothing that reaches outside the process. Everything else
 * kills the process (SIGSYS). A few calls that libc makes but that are not
 * needed return an error instead, so that a harmless probe does not kill.
 */
static int build_filter(const cf_sandbox *s, struct sock_fprog *ret)
{
    static const int allow[] = {
        SCMP_SYS(read), SCMP_SYS(write), SCMP_SYS(readv), SCMP_SYS(writev), SCMP_SYS(close),
        SCMP_SYS(lseek), SCMP_SYS(fstat), SCMP_SYS(newfstatat), SCMP_SYS(brk), SCMP_SYS(munmap),
        SCMP_SYS(mremap), SCMP_SYS(madvise), SCMP_SYS(rt_sigreturn), SCMP_SYS(rt_sigaction),
        SCMP_SYS(rt_sigprocmask), SCMP_SYS(sigaltstack), SCMP_SYS(exit), SCMP_SYS(exit_group),
        SCMP_SYS(getrandom), SCMP_SYS(clock_gettime), SCMP_SYS(clock_getres),
        SCMP_SYS(gettimeofday), SCMP_SYS(time), SCMP_SYS(nanosleep), SCMP_SYS(clock_nanosleep),
        SCMP_SYS(futex), SCMP_SYS(sched_yield), SCMP_SYS(arch_prctl), SCMP_SYS(set_tid_address),
        SCMP_SYS(set_robust_list), SCMP_SYS(rseq), SCMP_SYS(getpid), SCMP_SYS(getppid), SCMP_SYS(gettid),
        SCMP_SYS(getuid), SCMP_SYS(geteuid), SCMP_SYS(getgid), SCMP_SYS(getegid),
        SCMP_SYS(uname), SCMP_SYS(restart_syscall), SCMP_SYS(getrlimit),
    };
    /* Signals to other processes: refused, not fatal (abort() tries tgkill). */
    static const int eperm[] = {SCMP_SYS(kill), SCMP_SYS(tkill), SCMP_SYS(tgkill),
                                SCMP_SYS(rt_sigqueueinfo), SCMP_SYS(rt_tgsigqueueinfo)};
    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_KILL_PROCESS);
    uint8_t *prog = NULL;
    off_t size;
    int rc = 0, fd = -1;

    CF_ENSURE(ctx != NULL, CF_E_NOMEM);
    CF_ENSURE_OUT(seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS) == 0,
                  CF_E_INTERNAL);
    for (size_t i = 0; i < CF_ARRAY_LEN(allow); i++)
        CF_GUARD_OUT(add(ctx, SCMP_ACT_ALLOW, allow[i]));
    for (size_t i = 0; i < CF_ARRAY_LEN(eperm); i++)
        CF_GUARD_OUT(add(ctx, SCMP_ACT_ERRNO(EPERM), eperm[i]));
    /* Static glibc reads /proc/self/exe at start-up; a job gets no file names. */
    CF_GUARD_OUT(add(ctx, SCMP_ACT_ERRNO(ENOENT), SCMP_SYS(readlink)));
    CF_GUARD_OUT(add(ctx, SCMP_ACT_ERRNO(ENOENT), SCMP_SYS(readlinkat)));
    /* isatty() and friends: the job's descriptors are pipes. */
    CF_GUARD_OUT(add(ctx, SCMP_ACT_ERRNO(ENOTTY), SCMP_SYS(ioctl)));
    /* No new executable memory: a job cannot load code beyond its own image. */
    CF_ENSURE_OUT(seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(mmap), 1,
                                   arg_cmp(2, SCMP_CMP_MASKED_EQ, PROT_EXEC, 0)) == 0,
                  CF_E_INTERNAL);
    CF_ENSURE_OUT(seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(mprotect), 1,
                                   arg_cmp(2, SCMP_CMP_MASKED_EQ, PROT_EXEC, 0)) == 0,
                  CF_E_INTERNAL);
    /* Reading limits is fine; setting them (new_limit != NULL) is not. */
    CF_ENSURE_OUT(seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(prlimit64), 1,
                                   arg_cmp(2, SCMP_CMP_EQ, 0, 0)) == 0,
                  CF_E_INTERNAL);
    /* The one exec: the executable at fd 3 (close-on-exec, and no allowed call
     * creates a descriptor, so after the exec no fd 3 can exist again) with the
     * pathname NULL. Kernels that refuse a NULL pathname need a string: then
     * the rule names our empty_path, and a job that recreates a string at that
     * address could execute a file by absolute path — but as root the job's
     * file system is an empty directory, and whatever ran would be under this
     * same filter (a non-root runtime logs the weaker rule at start-up). */
    CF_ENSURE_OUT(seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(execveat), 3,
                                   arg_cmp(0, SCMP_CMP_EQ, EXE_FD, 0),
                                   arg_cmp(1, SCMP_CMP_EQ,
                                           s->exec_null_path ? 0
                                                             : (scmp_datum_t)(uintptr_t)empty_path,
                                           0),
                                   arg_cmp(4, SCMP_CMP_EQ, AT_EMPTY_PATH, 0)) == 0,
                  CF_E_INTERNAL);

    fd = memfd_create("coffer-seccomp", MFD_CLOEXEC);
    CF_ENSURE_OUT(fd >= 0, cf_err_set(CF_E_IO, "memfd_create: %s", strerror(errno)));
    CF_ENSURE_OUT(seccomp_export_bpf(ctx, fd) == 0,
                  cf_err_set(CF_E_INTERNAL, "cannot export the seccomp program"));
    size = lseek(fd, 0, SEEK_END);
    CF_ENSURE_OUT(size > 0 && size % (off_t)sizeof(struct sock_filter) == 0 &&
                      size / (off_t)sizeof(struct sock_filter) <= BPF_MAXINSNS,
                  cf_err_set(CF_E_INTERNAL, "unexpected seccomp program size"));
    prog = malloc((size_t)size);
    CF_ENSURE_OUT(prog != NULL, CF_E_NOMEM);
    CF_ENSURE_OUT(pread(fd, prog, (size_t)size, 0) == (ssize_t)size,
                  cf_err_set(CF_E_IO, "cannot read the seccomp program"));
    ret->len = (unsigned short)(size / (off_t)sizeof(struct sock_filter));
    ret->filter = (struct sock_filter *)(void *)prog;
    prog = NULL;
out:
    free(prog);
    if (fd >= 0)
        close(fd);
    seccomp_release(ctx);
    return rc;
}

/* ---- start-up probes (in a throw-away child) ---- */

static int probe_status(pid_t pid)
{
    int st;

    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR)
            return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static bool probe_netns(void)
{
    pid_t pid = fork();

    if (pid < 0)
        return false;
    if (pid == 0)
        _exit(unshare(CLONE_NEWNET) == 0 ? 0 : 1);
    return probe_status(pid) == 0;
}

/* execveat(fd, NULL, ..., AT_EMPTY_PATH) on an empty file: ENOEXEC if the kernel
 * takes a NULL pathname, EFAULT if it does not. */
static bool probe_exec_null_path(void)
{
    int fd = memfd_create("coffer-probe", MFD_CLOEXEC);
    pid_t pid;
    bool ok;

    if (fd < 0)
        return false;
    pid = fork();
    if (pid < 0) {
        close(fd);
        return false;
    }
    if (pid == 0) {
        char *const argv[] = {NULL};
        (void)syscall(SYS_execveat, fd, NULL, argv, argv, AT_EMPTY_PATH);
        _exit(errno == EFAULT ? 1 : 0);
    }
    ok = probe_status(pid) == 0;
    close(fd);
    return ok;
}

int cf_sandbox_new(const cf_sandbox_opts *o, cf_sandbox **ret)
{
    cf_sandbox *s = calloc(1, sizeof(*s));
    struct sigaction sa;
    int rc = 0;

    CF_ENSURE(s != NULL, CF_E_NOMEM);
    s->uid = o != NULL && o->uid != 0 ? o->uid : DEFAULT_ID;
    s->gid = o != NULL && o->gid != 0 ? o->gid : DEFAULT_ID;
    s->change_ids = geteuid() == 0 && !(o != NULL && o->keep_ids);
    s->netns = probe_netns();
    s->exec_null_path = probe_exec_null_path();
    if (geteuid() == 0) {
        /* An empty, root-owned, read-only directory as the jobs' whole file
         * system: nothing to stat, read or execute by path. */
        CF_GUARD_OUT(cf_fmt(s->root, sizeof(s->root), "/tmp/coffer-jobroot-XXXXXX"));
        if (mkdtemp(s->root) == NULL) {
            rc = cf_err_set(CF_E_IO, "cannot create the jobs' empty root: %s", strerror(errno));
            s->root[0] = '\0';
            goto out;
        }
        CF_ENSURE_OUT(chmod(s->root, 0555) == 0,
                      cf_err_set(CF_E_IO, "chmod %s: %s", s->root, strerror(errno)));
    }
    CF_GUARD_OUT(build_filter(s, &s->prog));
    /* A job that exits without reading its input makes our write fail with
     * EPIPE; the default SIGPIPE would end the whole runtime. */
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = SIG_IGN;
    CF_ENSURE_OUT(sigaction(SIGPIPE, &sa, NULL) == 0, CF_E_INTERNAL);
    cf_log(CF_LOG_INFO, "sandbox.ready", "network_namespace", s->netns ? "yes" : "no (seccomp "
                                                                               "denies sockets)",
           "job_ids", s->change_ids ? "unprivileged" : "unchanged (not root)", "job_root",
           s->root[0] ? s->root : "unchanged (not root)", "exec_rule",
           s->exec_null_path ? "fd 3, NULL pathname" : "fd 3, fixed empty pathname", NULL);
    if (!s->exec_null_path && s->root[0] == '\0')
        cf_log(CF_LOG_WARN, "sandbox.exec_rule_weaker", "reason",
               "the kernel refuses execveat with a NULL pathname and jobs cannot be chrooted "
               "(not root): a job could execute another file, under the same filter", NULL);
    *ret = s;
    s = NULL;
out:
    cf_sandbox_free(s);
    return rc;
}

void cf_sandbox_free(cf_sandbox *s)
{
    if (s == NULL)
        return;
    if (s->root[0] != '\0')
        (void)rmdir(s->root);
    free(s->prog.filter);
    free(s);
}

/* ---- the child ---- */

/* Reports (step, errno) to the parent and ends the child. Async-signal-safe. */
static void __attribute__((noreturn)) child_fail(int status_fd, int step)
{
    int msg[2] = {step, errno};
    ssize_t w = write(status_fd, msg, sizeof(msg));
    (void)w;
    _exit(127);
}

typedef struct {
    const cf_sandbox *s;
    const cf_sandbox_job *job;
    char *const *argv;
    pid_t parent;
    int in_r, out_w, err_w, status_w;
} child_args;

static int set_limit(int resource, rlim_t soft, rlim_t hard)
{
    struct rlimit rl = {.rlim_cur = soft, .rlim_max = hard};
    return setrlimit(resource, &rl);
}

static void __attribute__((noreturn)) child_main(const child_args *a)
{
    static char *const envp[] = {NULL};
    const cf_job_limits *l = &a->job->limits;
    struct sigaction sa;
    sigset_t none;
    int in_r, out_w, err_w, exe, st;

    /* Signals: nothing inherited (ignored ones would survive the exec). */
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = SIG_DFL;
    for (int sig = 1; sig < NSIG; sig++)
        (void)sigaction(sig, &sa, NULL);
    sigemptyset(&none);
    if (sigprocmask(SIG_SETMASK, &none, NULL) != 0)
        child_fail(a->status_w, STEP_SIGNALS);
    if (setsid() < 0)
        child_fail(a->status_w, STEP_SETSID);
    if (a->s->netns && unshare(CLONE_NEWNET) != 0)
        child_fail(a->status_w, STEP_NETNS);

    /* Descriptors: first to fresh numbers above everything we place, then
     * 0,1,2 = pipes, 3 = executable, 4 = status (both close-on-exec), rest closed. */
    in_r = fcntl(a->in_r, F_DUPFD_CLOEXEC, 16);
    out_w = fcntl(a->out_w, F_DUPFD_CLOEXEC, 16);
    err_w = fcntl(a->err_w, F_DUPFD_CLOEXEC, 16);
    exe = fcntl(a->job->exe_fd, F_DUPFD_CLOEXEC, 16);
    st = fcntl(a->status_w, F_DUPFD_CLOEXEC, 16);
    if (in_r < 0 || out_w < 0 || err_w < 0 || exe < 0 || st < 0)
        child_fail(a->status_w, STEP_FDS);
    if (dup3(st, STATUS_FD, O_CLOEXEC) < 0)
        child_fail(st, STEP_FDS);
    if (dup2(in_r, 0) < 0 || dup2(out_w, 1) < 0 || dup2(err_w, 2) < 0 ||
        dup3(exe, EXE_FD, O_CLOEXEC) < 0 || close_range(STATUS_FD + 1, ~0u, 0) != 0)
        child_fail(STATUS_FD, STEP_FDS);
    /* The empty root (root only): the executable is already open. */
    if ((a->s->root[0] != '\0' && chroot(a->s->root) != 0) || chdir("/") != 0)
        child_fail(STATUS_FD, STEP_CHROOT);

    /* Identity: an unprivileged uid/gid drops every capability (root only). */
    if (a->s->change_ids) {
        if (setgroups(0, NULL) != 0 || setresgid(a->s->gid, a->s->gid, a->s->gid) != 0 ||
            setresuid(a->s->uid, a->s->uid, a->s->uid) != 0 || getuid() != a->s->uid ||
            geteuid() != a->s->uid)
            child_fail(STATUS_FD, STEP_IDS);
    }
    /* After the uid change, which clears it. The job dies with the runtime. */
    if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) != 0 || getppid() != a->parent)
        child_fail(STATUS_FD, STEP_PDEATHSIG);

    /* Resource limits. RLIMIT_CPU: SIGXCPU at the soft limit, SIGKILL one second
     * later. RLIMIT_NPROC is set after the uid change so that the change itself
     * is not refused; fork is also denied by the filter. */
    if (set_limit(RLIMIT_CPU, l->cpu_s, (rlim_t)l->cpu_s + 1) != 0 ||
        set_limit(RLIMIT_AS, (rlim_t)l->memory_mb << 20, (rlim_t)l->memory_mb << 20) != 0 ||
        set_limit(RLIMIT_FSIZE, 0, 0) != 0 || set_limit(RLIMIT_NPROC, 1, 1) != 0 ||
        set_limit(RLIMIT_NOFILE, JOB_NOFILE, JOB_NOFILE) != 0 ||
        set_limit(RLIMIT_CORE, 0, 0) != 0 || set_limit(RLIMIT_MEMLOCK, 0, 0) != 0 ||
        set_limit(RLIMIT_MSGQUEUE, 0, 0) != 0)
        child_fail(STATUS_FD, STEP_RLIMIT);

    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
        child_fail(STATUS_FD, STEP_NO_NEW_PRIVS);
    if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &a->s->prog) != 0)
        child_fail(STATUS_FD, STEP_SECCOMP);
    (void)syscall(SYS_execveat, EXE_FD, a->s->exec_null_path ? NULL : empty_path, a->argv,
                  envp, AT_EMPTY_PATH);
    child_fail(STATUS_FD, STEP_EXEC);
}

/* ---- the parent ---- */

static void close_fd(int *fd)
{
    if (*fd >= 0) {
        close(*fd);
        *fd = -1;
    }
}

static int make_pipe(int p[2])
{
    if (pipe2(p, O_CLOEXEC) != 0)
        return cf_err_set(CF_E_IO, "pipe: %s", strerror(errno));
    return 0;
}

static int set_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    return fl >= 0 && fcntl(fd, F_SETFL, fl | O_NONBLOCK) == 0 ? 0 : CF_E_IO;
}

static int pidfd_open_(pid_t pid) { return (int)syscall(SYS_pidfd_open, pid, 0); }

static void pidfd_kill(int pidfd)
{
    (void)syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, NULL, 0);
}

typedef struct {
    int in_w, out_r, err_r, status_r, pidfd;
    const uint8_t *input;
    size_t input_len, input_off;
    cf_buf *out, *err;
    size_t out_base, err_base; /* lengths before the run */
    size_t out_cap;
    uint8_t *chunk; /* secret scratch */
    bool exited, killed_timeout, killed_output, setup_failed, setup_timeout;
    int setup_msg[2];
    size_t setup_got;
} run_state;

/* Drops what a run appended to a secret buffer (wiped). */
static void buf_truncate(cf_buf *b, size_t len)
{
    if (b != NULL && b->len > len) {
        cf_wipe(b->data + len, b->len - len);
        b->len = len;
    }
}

/* Reads what a pipe has into dst, keeping at most cap bytes past base (dst
 * NULL: discard). Returns true if data beyond cap arrived (or dst is full). */
static bool drain(run_state *r, int *fd, cf_buf *dst, size_t base, size_t cap)
{
    ssize_t n = read(*fd, r->chunk, CHUNK);
    bool over = false;

    if (n < 0 && (errno == EINTR || errno == EAGAIN))
        return false;
    if (n <= 0) {
        close_fd(fd);
        return false;
    }
    if (dst != NULL) {
        size_t have = dst->len - base;
        size_t take = have >= cap ? 0 : CF_MIN((size_t)n, cap - have);
        if (take > 0 && cf_buf_put(dst, r->chunk, take) < 0)
            take = 0;
        over = take < (size_t)n;
    }
    cf_wipe(r->chunk, (size_t)n);
    return over;
}

static void feed(run_state *r)
{
    size_t left = r->input_len - r->input_off;
    ssize_t n = left == 0 ? 0 : write(r->in_w, r->input + r->input_off, CF_MIN(left, (size_t)CHUNK));

    if (n < 0 && (errno == EINTR || errno == EAGAIN))
        return;
    if (n < 0) { /* EPIPE: the job does not want (more) input */
        close_fd(&r->in_w);
        return;
    }
    r->input_off += (size_t)n;
    if (r->input_off == r->input_len)
        close_fd(&r->in_w); /* EOF for the job */
}

static void read_status(run_state *r)
{
    ssize_t n = read(r->status_r, (uint8_t *)r->setup_msg + r->setup_got,
                     sizeof(r->setup_msg) - r->setup_got);

    if (n < 0 && (errno == EINTR || errno == EAGAIN))
        return;
    if (n <= 0) { /* EOF: the exec happened (the pipe is close-on-exec) */
        close_fd(&r->status_r);
        return;
    }
    r->setup_got += (size_t)n;
    if (r->setup_got == sizeof(r->setup_msg)) {
        r->setup_failed = true;
        close_fd(&r->status_r);
    }
}

/* The poll loop: until the job has exited and both output pipes are at EOF. */
static void supervise(run_state *r, uint64_t deadline, uint64_t setup_deadline)
{
    while (!r->exited || r->out_r >= 0 || r->err_r >= 0) {
        struct pollfd p[5];
        int idx[5], np = 0;
        uint64_t now = now_ms(), until;

        if (!r->killed_timeout && !r->exited &&
            (now >= deadline || (r->status_r >= 0 && now >= setup_deadline))) {
            pidfd_kill(r->pidfd);
            r->killed_timeout = true;
            r->setup_timeout = r->status_r >= 0;
        }
        /* After the kill we only wait for the exit and the pipes' EOF. */
        until = r->killed_timeout || r->killed_output ? now + 1000 : deadline;
        if (r->status_r >= 0)
            until = CF_MIN(until, setup_deadline);
        if (r->in_w >= 0 && r->status_r < 0) { /* feed only a started job */
            p[np] = (struct pollfd){.fd = r->in_w, .events = POLLOUT};
            idx[np++] = 0;
        }
        if (r->out_r >= 0) {
            p[np] = (struct pollfd){.fd = r->out_r, .events = POLLIN};
            idx[np++] = 1;
        }
        if (r->err_r >= 0) {
            p[np] = (struct pollfd){.fd = r->err_r, .events = POLLIN};
            idx[np++] = 2;
        }
        if (r->status_r >= 0) {
            p[np] = (struct pollfd){.fd = r->status_r, .events = POLLIN};
            idx[np++] = 3;
        }
        if (!r->exited) {
            p[np] = (struct pollfd){.fd = r->pidfd, .events = POLLIN};
            idx[np++] = 4;
        }
        if (np == 0)
            break;
        if (poll(p, (nfds_t)np, (int)CF_MIN(until > now ? until - now : 0, 1000u)) < 0 &&
            errno != EINTR)
            break;
        for (int i = 0; i < np; i++) {
            if (p[i].revents == 0)
                continue;
            switch (idx[i]) {
            case 0:
                if (p[i].revents & (POLLERR | POLLHUP))
                    close_fd(&r->in_w);
                else
                    feed(r);
                break;
            case 1:
                if (drain(r, &r->out_r, r->out, r->out_base, r->out_cap) &&
                    !r->killed_output && !r->killed_timeout && !r->exited) {
                    pidfd_kill(r->pidfd);
                    r->killed_output = true;
                }
                break;
            case 2:
                (void)drain(r, &r->err_r, r->err, r->err_base, CF_TEE_MAX_STDERR);
                break;
            case 3:
                read_status(r);
                break;
            default:
                r->exited = true;
                close_fd(&r->in_w);
                break;
            }
        }
        if (r->killed_timeout && now_ms() > deadline + 5000) {
            /* A killed process always exits; this is only a guard against a
             * descriptor held open elsewhere keeping the loop alive. */
            break;
        }
    }
}

static void describe(cf_sandbox_result *res, const cf_sandbox_job *job)
{
    int rc = 0;

    switch (res->status) {
    case CF_JOB_OK:
        res->reason[0] = '\0';
        break;
    case CF_JOB_FAILED:
        rc = cf_fmt(res->reason, sizeof(res->reason), "job '%s' failed: exit code %d",
                    job->name, res->exit_code);
        break;
    case CF_JOB_TIMEOUT:
        rc = cf_fmt(res->reason, sizeof(res->reason),
                    "job '%s' timed out after %u ms and was killed", job->name,
                    job->limits.timeout_ms);
        break;
    case CF_JOB_OUTPUT_TOO_LARGE:
        rc = cf_fmt(res->reason, sizeof(res->reason),
                    "job '%s' wrote more than %u KiB of output and was killed", job->name,
                    job->limits.output_kb);
        break;
    case CF_JOB_KILLED:
        rc = cf_fmt(res->reason, sizeof(res->reason), "job '%s' was stopped by the sandbox: %s",
                    job->name,
                    res->signal == SIGSYS    ? "forbidden system call (SIGSYS)"
                    : res->signal == SIGXCPU ? "CPU time limit (SIGXCPU)"
                    : res->signal == SIGXFSZ ? "file size limit (SIGXFSZ)"
                                             : "resource limit (SIGKILL)");
        break;
    case CF_JOB_CRASHED:
        rc = cf_fmt(res->reason, sizeof(res->reason), "job '%s' crashed: signal %d (%s)",
                    job->name, res->signal, sigabbrev_np(res->signal) ? sigabbrev_np(res->signal)
                                                                      : "?");
        break;
    }
    if (rc < 0)
        res->reason[0] = '\0';
}

int cf_sandbox_run(cf_sandbox *s, const cf_sandbox_job *job, const uint8_t *input,
                   size_t input_len, cf_buf *out, cf_buf *err, cf_sandbox_result *ret)
{
    int in[2] = {-1, -1}, o[2] = {-1, -1}, e[2] = {-1, -1}, stp[2] = {-1, -1};
    char **argv = NULL;
    size_t out_before = out->len, err_before = err != NULL ? err->len : 0;
    uint64_t start = now_ms();
    cf_sandbox_result res;
    run_state r;
    child_args ca;
    pid_t pid = -1;
    int rc = 0, wst = 0;

    memset(&r, 0, sizeof(r));
    r.in_w = r.out_r = r.err_r = r.status_r = r.pidfd = -1;
    memset(&res, 0, sizeof(res));
    CF_ENSURE(out->secret && (err == NULL || err->secret),
              cf_err_set(CF_E_INVAL, "job output must go to secret buffers"));
    CF_ENSURE(job->exe_fd >= 0 && job->limits.cpu_s > 0 && job->limits.memory_mb > 0 &&
                  job->limits.output_kb > 0 && job->limits.timeout_ms > 0 &&
                  job->n_args <= CF_TEE_MAX_ARGS,
              CF_E_INVAL);
    r.chunk = cf_secure_alloc(CHUNK);
    CF_ENSURE_OUT(r.chunk != NULL, CF_E_NOMEM);
    argv = calloc(job->n_args + 2, sizeof(*argv));
    CF_ENSURE_OUT(argv != NULL, CF_E_NOMEM);
    argv[0] = (char *)(uintptr_t)job->name;
    for (size_t i = 0; i < job->n_args; i++)
        argv[i + 1] = job->args[i];
    CF_GUARD_OUT(make_pipe(in));
    CF_GUARD_OUT(make_pipe(o));
    CF_GUARD_OUT(make_pipe(e));
    CF_GUARD_OUT(make_pipe(stp));

    ca = (child_args){.s = s, .job = job, .argv = argv, .parent = getpid(), .in_r = in[0],
                      .out_w = o[1], .err_w = e[1], .status_w = stp[1]};
    pid = fork();
    CF_ENSURE_OUT(pid >= 0, cf_err_set(CF_E_UNAVAILABLE, "fork: %s", strerror(errno)));
    if (pid == 0)
        child_main(&ca);

    r.pidfd = pidfd_open_(pid);
    if (r.pidfd < 0) {
        rc = cf_err_set(CF_E_INTERNAL, "pidfd_open: %s", strerror(errno));
        kill(pid, SIGKILL); /* not reaped yet: the pid is still ours */
        goto out;
    }
    close_fd(&in[0]);
    close_fd(&o[1]);
    close_fd(&e[1]);
    close_fd(&stp[1]);
    r.in_w = in[1];
    r.out_r = o[0];
    r.err_r = e[0];
    r.status_r = stp[0];
    in[1] = o[0] = e[0] = stp[0] = -1;
    r.input = input;
    r.input_len = input_len;
    r.out = out;
    r.err = err;
    r.out_base = out_before;
    r.err_base = err_before;
    r.out_cap = (size_t)job->limits.output_kb * 1024u;
    if (input_len == 0)
        close_fd(&r.in_w);
    CF_ENSURE_OUT((r.in_w < 0 || set_nonblock(r.in_w) == 0) && set_nonblock(r.out_r) == 0 &&
                      set_nonblock(r.err_r) == 0 && set_nonblock(r.status_r) == 0,
                  CF_E_IO);
    supervise(&r, start + job->limits.timeout_ms, start + CF_TEE_SETUP_TIMEOUT_MS);

out:
    if (pid > 0) {
        /* Always reap: a child never outlives its request. */
        if (!r.exited && r.pidfd >= 0)
            pidfd_kill(r.pidfd);
        while (waitpid(pid, &wst, 0) < 0 && errno == EINTR)
            ;
    }
    if (rc == 0 && r.setup_timeout)
        rc = cf_err_set(CF_E_INTERNAL, "sandbox setup did not finish within %u ms",
                        (unsigned)CF_TEE_SETUP_TIMEOUT_MS);
    if (rc == 0 && r.setup_failed) {
        int step = r.setup_msg[0], en = r.setup_msg[1];
        rc = cf_err_set(CF_E_INTERNAL, "sandbox setup failed at %s: %s",
                        step > 0 && step < (int)CF_ARRAY_LEN(step_names) ? step_names[step] : "?",
                        strerror(en));
    }
    if (rc == 0) {
        res.exit_code = -1;
        res.wall_ms = now_ms() - start;
        if (WIFEXITED(wst))
            res.exit_code = WEXITSTATUS(wst);
        else if (WIFSIGNALED(wst))
            res.signal = WTERMSIG(wst);
        if (r.killed_timeout)
            res.status = CF_JOB_TIMEOUT;
        else if (r.killed_output)
            res.status = CF_JOB_OUTPUT_TOO_LARGE;
        else if (WIFEXITED(wst))
            res.status = res.exit_code == 0 ? CF_JOB_OK : CF_JOB_FAILED;
        else if (res.signal == SIGSYS || res.signal == SIGXCPU || res.signal == SIGXFSZ ||
                 res.signal == SIGKILL)
            res.status = CF_JOB_KILLED;
        else
            res.status = CF_JOB_CRASHED;
        describe(&res, job);
        if (res.status != CF_JOB_OK) {
            /* Partial output is not a result: only the report goes back. */
            buf_truncate(out, out_before);
        }
        *ret = res;
    } else {
        buf_truncate(out, out_before);
        buf_truncate(err, err_before);
    }
    close_fd(&r.in_w);
    close_fd(&r.out_r);
    close_fd(&r.err_r);
    close_fd(&r.status_r);
    close_fd(&r.pidfd);
    for (int i = 0; i < 2; i++) {
        close_fd(&in[i]);
        close_fd(&o[i]);
        close_fd(&e[i]);
        close_fd(&stp[i]);
    }
    free(argv);
    cf_secure_free(r.chunk);
    return rc;
}
