/*
 * The job sandbox (DESIGN.md §7; docs/internals/tee.md "Sandbox").
 *
 * Every job runs in a fresh child process that the TEE runtime forks and then
 * confines before it executes the job's sealed executable:
 *
 *   - a new network namespace (only a down loopback) when the kernel allows it
 *     (root); the system call filter forbids sockets in any case
 *   - a new session; every descriptor closed except stdin/stdout/stderr (pipes
 *     to the runtime) and the executable itself, which is close-on-exec
 *   - when the runtime runs as root: chroot into an empty read-only directory
 *     (nothing to stat, read or execute by path), no supplementary groups, the
 *     configured unprivileged uid/gid (no capabilities survive)
 *   - rlimits: CPU (limits.cpu_s), address space (limits.memory_mb), file size 0,
 *     processes 1 (after the uid change), descriptors 4, core 0, locked memory 0
 *   - PR_SET_NO_NEW_PRIVS and a seccomp allow-list (libseccomp, default
 *     action: kill the process). The only exec it allows is execveat() of
 *     descriptor 3 with AT_EMPTY_PATH — the executable, which closes on exec —
 *     so once the job runs it cannot execute anything, nor open files, create
 *     sockets, fork or signal other processes. (Where the kernel refuses a NULL
 *     pathname the rule must name a pathname address instead: see sandbox.c.)
 *
 * The runtime writes the input to the job's stdin and reads its stdout under
 * poll (no deadlock on large inputs or outputs), stops reading at the output
 * cap, kills the job at the wall-clock timeout, and always reaps it. A job that
 * fails, crashes or runs away gives a non-zero status; the runtime stays
 * healthy. stdout and stderr are collected into secret (locked, wiped) buffers.
 *
 * The jobs' executables must be static ELF binaries (no loader: the filter
 * allows neither open() nor executable mappings); see demo/.
 */
#ifndef COFFER_TEE_SANDBOX_H
#define COFFER_TEE_SANDBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "base/buf.h"
#include "base/compiler.h"
#include "tee/bundle.h"

/*
 * Status byte of a CFR1 response (DESIGN.md §5 step 8: 0 = ok). For any
 * non-zero status the output is a short UTF-8 report from the runtime (what
 * happened, and the first CF_TEE_MAX_STDERR bytes of the job's stderr), never
 * the job's partial stdout.
 */
typedef enum {
    CF_JOB_OK = 0,               /* exit code 0; output = stdout */
    CF_JOB_FAILED = 1,           /* the job exited with a non-zero code */
    CF_JOB_TIMEOUT = 2,          /* wall-clock limit (limits.timeout_ms): killed */
    CF_JOB_OUTPUT_TOO_LARGE = 3, /* stdout exceeded limits.output_kb: killed */
    CF_JOB_KILLED = 4,           /* stopped by a resource limit or the sandbox policy:
                                    SIGSYS (forbidden system call), SIGXCPU / SIGKILL
                                    (CPU limit), SIGXFSZ */
    CF_JOB_CRASHED = 5,          /* another signal: SIGSEGV, SIGABRT, SIGBUS, SIGILL, ... */
} cf_job_status;

/* "ok", "failed", "timeout", "output_too_large", "killed", "crashed". */
const char *cf_job_status_name(cf_job_status s);

typedef struct {
    uid_t uid;       /* ids the job runs as when the runtime is root; */
    gid_t gid;       /* 0 = 65534 (nobody / nogroup) */
    bool keep_ids;   /* tests only: do not change ids even as root */
} cf_sandbox_opts;

typedef struct cf_sandbox cf_sandbox;

/* Builds the seccomp program once and sets SIGPIPE to SIG_IGN for the process
 * (a job that exits before reading its input must not kill the runtime). Probes
 * whether network namespaces are available and logs it. */
int cf_sandbox_new(const cf_sandbox_opts *o, cf_sandbox **ret) CF_WUR;
void cf_sandbox_free(cf_sandbox *s);
/* Whether jobs get their own network namespace on this system. */
bool cf_sandbox_has_netns(const cf_sandbox *s);

typedef struct {
    const char *name;          /* argv[0] and log lines */
    int exe_fd;                /* the executable (sealed memfd), borrowed */
    char *const *args;         /* argv[1..n_args], borrowed */
    size_t n_args;
    cf_job_limits limits;
} cf_sandbox_job;

typedef struct {
    cf_job_status status;
    int exit_code;      /* when the job exited (else -1) */
    int signal;         /* the signal that ended it (else 0) */
    uint64_t wall_ms;
    char reason[CF_TEE_MAX_REASON]; /* for a non-zero status: what happened (no job data) */
} cf_sandbox_result;

/*
 * Runs one job with input on its stdin. stdout is appended to out (a
 * cf_buf_init_secret buffer, else CF_E_INVAL), at most limits.output_kb KiB;
 * the first CF_TEE_MAX_STDERR bytes of stderr to err (secret buffer, or NULL to
 * discard). Every outcome of the job itself — including crashes, timeouts and
 * policy violations — returns 0 with ret->status saying what happened; a
 * negative code means the sandbox could not be set up (fork, pipes, a refused
 * uid change, ...) and the job did not run. Thread-safe.
 */
int cf_sandbox_run(cf_sandbox *s, const cf_sandbox_job *job, const uint8_t *input,
                   size_t input_len, cf_buf *out, cf_buf *err, cf_sandbox_result *ret) CF_WUR;

#endif
