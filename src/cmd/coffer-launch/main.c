/*
 * coffer-launch: the simulated secure processor (DESIGN.md §3;
 * docs/internals/simulator.md).
 *
 *   coffer-launch --state DIR --bundle BUNDLE [--debug] [--vmpl N] [--tcb SPEC]
 *                 -- PROGRAM [ARGS...]
 *   coffer-launch --state DIR [--tcb SPEC] --print-chain
 *   coffer-launch --bundle BUNDLE [--debug] [--vmpl N] --measure-only -- PROGRAM
 *
 * Launch: loads (or creates) the simulated chain, copies PROGRAM into a sealed
 * memfd and measures it together with the bundle and the launch options BEFORE
 * anything runs, then executes exactly the sealed bytes (fexecve) with one end
 * of a SOCK_SEQPACKET socketpair inherited as COFFER_LAUNCHER_FD. The launcher
 * keeps the VCEK private key in its own process (non-dumpable, so a same-user
 * child cannot ptrace it; the child is exec'd, so it inherits no memory, and
 * every descriptor but stdio and the socket is closed on exec), answers report
 * requests on its end, forwards SIGTERM/SIGINT/SIGHUP/SIGQUIT to the child,
 * and exits with the child's status (128 + signal number if it was killed).
 *
 * Own failures: 2 usage, 125 launcher error (state, measurement, ...),
 * 126 the program could not be executed.
 */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "attest/measure.h"
#include "attest/provider.h"
#include "attest/sim.h"
#include "base/buf.h"
#include "base/err.h"
#include "base/json.h"
#include "base/limits.h"
#include "base/log.h"
#include "base/parse.h"
#include "base/secmem.h"
#include "crypto/hash.h"

extern char **environ;

enum { EXIT_USAGE = 2, EXIT_LAUNCHER = 125, EXIT_EXEC = 126 };

typedef struct {
    const char *state;
    const char *bundle;
    bool debug;
    uint32_t vmpl;
    cf_sim_tcb tcb;
    bool print_chain;
    bool measure_only;
    char **program; /* argv of the program, NULL-terminated */
} options;

static void usage(FILE *f)
{
    fprintf(f,
            "usage: coffer-launch --state DIR --bundle BUNDLE [--debug] [--vmpl N] [--tcb SPEC]\n"
            "                     -- PROGRAM [ARGS...]\n"
            "       coffer-launch --state DIR [--tcb SPEC] --print-chain\n"
            "       coffer-launch --bundle BUNDLE [--debug] [--vmpl N] --measure-only -- PROGRAM\n"
            "\n"
            "  --state DIR     simulator state (the simulated AMD chain lives in DIR/sim)\n"
            "  --bundle DIR    deployment bundle measured into the launch measurement\n"
            "  --debug         launch with the guest policy DEBUG bit (never trusted by default)\n"
            "  --vmpl N        VMPL reported (0..3, default 0)\n"
            "  --tcb SPEC      simulated TCB, e.g. bl=4,tee=0,snp=22,ucode=213 (the default)\n"
            "  --print-chain   print the simulated ASK and ARK (PEM) to pin in a manifest\n"
            "  --measure-only  print the measurement and build_hash as JSON; run nothing\n"
            "  --log-level L   debug, info (default), warn, error, off\n");
}

static int parse_args(int argc, char **argv, options *o)
{
    cf_sim_tcb_default(&o->tcb);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;

        if (strcmp(a, "--") == 0) {
            if (i + 1 >= argc) {
                fprintf(stderr, "coffer-launch: no PROGRAM after --\n");
                return -1;
            }
            o->program = argv + i + 1;
            return 0;
        } else if (strcmp(a, "--debug") == 0) {
            o->debug = true;
        } else if (strcmp(a, "--print-chain") == 0) {
            o->print_chain = true;
        } else if (strcmp(a, "--measure-only") == 0) {
            o->measure_only = true;
        } else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            exit(0);
        } else if (v == NULL) {
            fprintf(stderr, "coffer-launch: unknown option or missing value: %s\n", a);
            return -1;
        } else if (strcmp(a, "--state") == 0) {
            o->state = v;
            i++;
        } else if (strcmp(a, "--bundle") == 0) {
            o->bundle = v;
            i++;
        } else if (strcmp(a, "--vmpl") == 0) {
            uint64_t n;
            if (cf_parse_u64(v, 3, &n) < 0) {
                fprintf(stderr, "coffer-launch: --vmpl must be 0..3\n");
                return -1;
            }
            o->vmpl = (uint32_t)n;
            i++;
        } else if (strcmp(a, "--tcb") == 0) {
            int rc = cf_sim_tcb_parse(v, &o->tcb);
            if (rc < 0) {
                fprintf(stderr, "coffer-launch: --tcb: %s\n", cf_err_detail(rc));
                return -1;
            }
            i++;
        } else if (strcmp(a, "--log-level") == 0) {
            cf_log_level l;
            if (cf_log_level_parse(v, &l) < 0) {
                fprintf(stderr, "coffer-launch: %s\n", cf_err_detail(CF_E_INVAL));
                return -1;
            }
            cf_log_set_level(l);
            i++;
        } else {
            fprintf(stderr, "coffer-launch: unknown option %s\n", a);
            return -1;
        }
    }
    return 0;
}

static int fail(int rc, const char *what)
{
    cf_log(CF_LOG_ERROR, "launch.failed", "step", what, "error", cf_err_name(rc), "detail",
           cf_err_detail(rc), NULL);
    fprintf(stderr, "coffer-launch: %s: %s\n", what, cf_err_detail(rc));
    return EXIT_LAUNCHER;
}

/* ---- --print-chain ---- */

static int run_print_chain(const options *o)
{
    cf_sim *sim = NULL;
    cf_buf pem;
    int rc;

    cf_buf_init(&pem, 2 * CF_CERT_MAX_BYTES);
    rc = cf_sim_open(o->state, &o->tcb, &sim);
    if (rc < 0)
        return fail(rc, "simulator state");
    if (cf_sim_created_chain(sim))
        cf_log(CF_LOG_INFO, "launch.chain_created", "state", o->state, NULL);
    rc = cf_sim_chain_pem(sim, &pem);
    cf_sim_free(sim);
    if (rc < 0) {
        cf_buf_free(&pem);
        return fail(rc, "chain");
    }
    fwrite(pem.data, 1, pem.len, stdout);
    cf_buf_free(&pem);
    return fflush(stdout) == 0 ? 0 : EXIT_LAUNCHER;
}

/* ---- measurement ---- */

static void hex(const uint8_t *p, size_t n, char *out) { cf_hex_encode(p, n, out); }

static int run_measure_only(const options *o)
{
    cf_launch_config cfg = {.debug = o->debug, .vmpl = o->vmpl};
    cf_measure_result m;
    char meas[2 * CF_MEASUREMENT_LEN + 1], rt[2 * 48 + 1], bh[CF_BUILD_HASH_STR_LEN + 1];
    char policy[24];
    json_t *j;
    char *s;
    int rc;

    rc = cf_measure(o->program[0], o->bundle, &cfg, &m);
    if (rc < 0)
        return fail(rc, "measure");
    hex(m.measurement, sizeof(m.measurement), meas);
    hex(m.runtime_sha384, sizeof(m.runtime_sha384), rt);
    cf_build_hash_format(m.bundle_digest, bh);
    if (cf_fmt(policy, sizeof(policy), "0x%llx", (unsigned long long)m.policy) < 0)
        return EXIT_LAUNCHER;
    j = json_pack("{s:s, s:s, s:s, s:s, s:b, s:I}", "measurement", meas, "build_hash", bh,
                  "runtime_sha384", rt, "policy", policy, "debug", (int)o->debug, "vmpl",
                  (json_int_t)o->vmpl);
    s = j != NULL ? cf_json_dump(j) : NULL;
    json_decref(j);
    if (s == NULL)
        return fail(CF_E_NOMEM, "output");
    printf("%s\n", s);
    free(s);
    return fflush(stdout) == 0 ? 0 : EXIT_LAUNCHER;
}

/* Copies the program into a sealed memfd (what gets measured is exactly what
 * gets executed: later writes to the file on disk change nothing) and hashes
 * the sealed copy. */
static int load_program(const char *path, int *ret_fd, uint8_t sha[48])
{
    uint8_t chunk[64 * 1024];
    struct stat st;
    uint64_t total = 0;
    int src = -1, m = -1;
    int rc = 0;

    src = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    CF_ENSURE_OUT(src >= 0, cf_err_set(CF_E_IO, "cannot open program '%s': %s", path,
                                       strerror(errno)));
    CF_ENSURE_OUT(fstat(src, &st) == 0 && S_ISREG(st.st_mode),
                  cf_err_set(CF_E_INVAL, "program '%s' is not a regular file", path));
    /* The memfd is always executable: check the original's permission ourselves. */
    CF_ENSURE_OUT(faccessat(AT_FDCWD, path, X_OK, AT_EACCESS) == 0,
                  cf_err_set(CF_E_FORBIDDEN, "program '%s' is not executable", path));
    m = memfd_create("coffer-tee", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    CF_ENSURE_OUT(m >= 0, cf_err_set(CF_E_IO, "memfd_create: %s", strerror(errno)));
    for (;;) {
        ssize_t n = read(src, chunk, sizeof(chunk));
        if (n < 0 && errno == EINTR)
            continue;
        CF_ENSURE_OUT(n >= 0, cf_err_set(CF_E_IO, "cannot read program '%s'", path));
        if (n == 0)
            break;
        CF_ENSURE_OUT((uint64_t)n <= CF_TEE_BINARY_MAX_BYTES - total,
                      cf_err_set(CF_E_TOO_LARGE, "program exceeds %llu bytes",
                                 (unsigned long long)CF_TEE_BINARY_MAX_BYTES));
        total += (uint64_t)n;
        for (ssize_t done = 0; done < n;) {
            ssize_t w = write(m, chunk + done, (size_t)(n - done));
            if (w < 0 && errno == EINTR)
                continue;
            CF_ENSURE_OUT(w > 0, cf_err_set(CF_E_IO, "cannot copy program"));
            done += w;
        }
    }
    CF_ENSURE_OUT(fcntl(m, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) ==
                      0,
                  cf_err_set(CF_E_IO, "cannot seal program copy: %s", strerror(errno)));
    CF_ENSURE_OUT(lseek(m, 0, SEEK_SET) == 0, CF_E_IO);
    CF_GUARD_OUT(cf_sha384_fd(m, CF_TEE_BINARY_MAX_BYTES, sha, NULL));
    *ret_fd = m;
    m = -1;
out:
    if (src >= 0)
        close(src);
    if (m >= 0)
        close(m);
    return rc;
}

/* environ without any COFFER_LAUNCHER_FD, plus ours. */
static char **child_env(int fd, char *slot, size_t slot_len)
{
    static const char key[] = CF_LAUNCHER_FD_ENV "=";
    size_t n = 0, k = 0;
    char **env;

    while (environ[n] != NULL)
        n++;
    env = calloc(n + 2, sizeof(*env));
    if (env == NULL || cf_fmt(slot, slot_len, "%s%d", key, fd) < 0) {
        free(env);
        return NULL;
    }
    for (size_t i = 0; i < n; i++)
        if (strncmp(environ[i], key, sizeof(key) - 1) != 0)
            env[k++] = environ[i];
    env[k++] = slot;
    env[k] = NULL;
    return env;
}

/* In the child between fork and exec: only async-signal-safe calls. */
static void __attribute__((noreturn))
exec_child(int exe, int sock, int errfd, const sigset_t *mask, pid_t parent, char **argv,
           char **envp)
{
    int e;

    sigprocmask(SIG_SETMASK, mask, NULL);
    /* Without its launcher the "TEE" has no secure processor: stop with it. */
    if (prctl(PR_SET_PDEATHSIG, SIGTERM) != 0 || getppid() != parent)
        _exit(EXIT_LAUNCHER);
    /* Nothing but stdio and the launcher socket crosses exec. */
    if (close_range(3, ~0u, CLOSE_RANGE_CLOEXEC) != 0) {
        for (int fd = 3; fd < 1024; fd++)
            (void)fcntl(fd, F_SETFD, FD_CLOEXEC);
    }
    if (fcntl(sock, F_SETFD, 0) == 0)
        fexecve(exe, argv, envp);
    e = errno;
    (void)!write(errfd, &e, sizeof(e));
    _exit(EXIT_EXEC);
}

typedef struct {
    const cf_sim *sim;
    cf_sim_launch launch;
    cf_buf vcek_der;
    unsigned long served, refused;
} server;

static void send_msg(int sock, const cf_buf *m)
{
    ssize_t n;

    do {
        n = send(sock, m->data, m->len, MSG_DONTWAIT | MSG_NOSIGNAL);
    } while (n < 0 && errno == EINTR);
    if (n != (ssize_t)m->len)
        cf_log(CF_LOG_WARN, "launch.response_dropped", "reason",
               n < 0 ? strerror(errno) : "short send", NULL);
}

static void refuse(server *s, int sock, uint16_t status, const char *reason)
{
    cf_buf m;

    s->refused++;
    cf_log(CF_LOG_WARN, "launch.bad_request", "reason", reason, NULL);
    cf_buf_init(&m, CF_LAUNCHER_HDR_LEN + CF_LAUNCHER_MAX_ERROR);
    if (cf_launcher_error_encode(status, reason, &m) == 0)
        send_msg(sock, &m);
    cf_buf_free(&m);
}

/* Serves one message. Returns false when the child closed its end. */
static bool serve_one(server *s, int sock, bool hup)
{
    uint8_t req[CF_LAUNCHER_REQUEST_LEN + 1];
    uint8_t rd[64], report[CF_SNP_REPORT_LEN];
    uint16_t status = CF_LAUNCHER_STATUS_MALFORMED;
    char count[24];
    cf_buf m;
    ssize_t n;
    int rc;

    do {
        /* MSG_TRUNC: the real length of an oversized message, which is then refused. */
        n = recv(sock, req, sizeof(req), MSG_DONTWAIT | MSG_TRUNC);
    } while (n < 0 && errno == EINTR);
    if (n < 0)
        return errno == EAGAIN || errno == EWOULDBLOCK;
    if (n == 0) {
        /* SOCK_SEQPACKET reads 0 for an empty message and at end of stream. */
        if (hup)
            return false;
        refuse(s, sock, CF_LAUNCHER_STATUS_MALFORMED, "empty request");
        return true;
    }
    if ((size_t)n > CF_LAUNCHER_REQUEST_LEN) {
        refuse(s, sock, CF_LAUNCHER_STATUS_MALFORMED, "request too large");
        return true;
    }
    rc = cf_launcher_request_parse(req, (size_t)n, rd, &status);
    if (rc < 0) {
        refuse(s, sock, status, cf_err_detail(rc));
        return true;
    }
    rc = cf_sim_report(s->sim, &s->launch, rd, report);
    if (rc < 0) {
        cf_log(CF_LOG_ERROR, "launch.sign_failed", "detail", cf_err_detail(rc), NULL);
        refuse(s, sock, CF_LAUNCHER_STATUS_INTERNAL, "could not sign the report");
        return true;
    }
    cf_buf_init(&m, CF_LAUNCHER_MAX_RESPONSE);
    if (cf_launcher_response_encode(report, s->vcek_der.data, s->vcek_der.len, &m) == 0)
        send_msg(sock, &m);
    cf_buf_free(&m);
    s->served++;
    if (cf_fmt(count, sizeof(count), "%lu", s->served) == 0)
        cf_log(CF_LOG_INFO, "launch.report_signed", "count", count, NULL);
    return true;
}

static int exit_code(int status)
{
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    if (WIFSIGNALED(status))
        return 128 + WTERMSIG(status);
    return EXIT_LAUNCHER;
}

static int run_launch(const options *o)
{
    cf_launch_config cfg = {.debug = o->debug, .vmpl = o->vmpl};
    uint8_t runtime[48], bundle[CF_BUNDLE_DIGEST_LEN];
    char meas_hex[2 * CF_MEASUREMENT_LEN + 1], bh[CF_BUILD_HASH_STR_LEN + 1];
    char pid_s[24], code_s[24], env_slot[64];
    server s;
    cf_sim *sim = NULL;
    sigset_t set, old;
    char **env = NULL;
    int exe = -1, sv[2] = {-1, -1}, errp[2] = {-1, -1}, sfd = -1;
    int status = 0, code = EXIT_LAUNCHER, rc, exec_err = 0;
    bool sock_open = true, child_done = false;
    pid_t pid = -1, self = getpid();

    memset(&s, 0, sizeof(s));
    cf_buf_init(&s.vcek_der, CF_CERT_MAX_BYTES);
    rc = cf_sim_open(o->state, &o->tcb, &sim);
    if (rc < 0) {
        code = fail(rc, "simulator state");
        goto out;
    }
    if (cf_sim_created_chain(sim))
        cf_log(CF_LOG_INFO, "launch.chain_created", "state", o->state, NULL);
    if (cf_sim_issued_vcek(sim))
        cf_log(CF_LOG_INFO, "launch.vcek_issued", "state", o->state, NULL);
    s.sim = sim;
    if ((rc = cf_sim_vcek_der(sim, &s.vcek_der)) < 0) {
        code = fail(rc, "VCEK");
        goto out;
    }

    /* Measure before anything of the program runs. */
    if ((rc = load_program(o->program[0], &exe, runtime)) < 0 ||
        (rc = cf_bundle_digest(o->bundle, bundle)) < 0 ||
        (rc = cf_launch_measurement(runtime, bundle, &cfg, s.launch.measurement)) < 0 ||
        (rc = cf_random(s.launch.report_id, sizeof(s.launch.report_id))) < 0) {
        code = fail(rc, "measure");
        goto out;
    }
    s.launch.policy = cf_launch_policy(&cfg);
    s.launch.vmpl = o->vmpl;
    cf_hex_encode(s.launch.measurement, CF_MEASUREMENT_LEN, meas_hex);
    cf_build_hash_format(bundle, bh);
    cf_log(CF_LOG_INFO, "launch.measured", "measurement", meas_hex, "build_hash", bh, "debug",
           o->debug ? "true" : "false", NULL);

    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0 ||
        pipe2(errp, O_CLOEXEC) != 0) {
        code = fail(cf_err_set(CF_E_IO, "socketpair: %s", strerror(errno)), "channel");
        goto out;
    }
    env = child_env(sv[1], env_slot, sizeof(env_slot));
    if (env == NULL) {
        code = fail(CF_E_NOMEM, "environment");
        goto out;
    }
    sigemptyset(&set);
    sigaddset(&set, SIGCHLD);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGQUIT);
    /* Blocked before fork: nothing is lost between fork and the loop. */
    if (sigprocmask(SIG_BLOCK, &set, &old) != 0 ||
        (sfd = signalfd(-1, &set, SFD_CLOEXEC)) < 0) {
        code = fail(CF_E_IO, "signals");
        goto out;
    }
    pid = fork();
    if (pid < 0) {
        code = fail(cf_err_set(CF_E_IO, "fork: %s", strerror(errno)), "fork");
        goto out;
    }
    if (pid == 0)
        exec_child(exe, sv[1], errp[1], &old, self, o->program, env);
    close(sv[1]);
    sv[1] = -1;
    close(errp[1]);
    errp[1] = -1;
    if (read(errp[0], &exec_err, sizeof(exec_err)) == (ssize_t)sizeof(exec_err)) {
        (void)waitpid(pid, &status, 0);
        pid = -1;
        /* fexecve of a close-on-exec copy cannot run "#!" scripts: the kernel
         * hands the interpreter a /dev/fd path that is gone by then (ENOENT). */
        (void)fail(cf_err_set(CF_E_IO, "cannot execute '%s': %s%s", o->program[0],
                              strerror(exec_err),
                              exec_err == ENOENT ? " (PROGRAM must be an ELF executable, "
                                                   "not a script)"
                                                 : ""),
                   "exec");
        code = EXIT_EXEC;
        goto out;
    }
    if (cf_fmt(pid_s, sizeof(pid_s), "%ld", (long)pid) == 0)
        cf_log(CF_LOG_INFO, "launch.started", "pid", pid_s, "program", o->program[0], NULL);

    while (!child_done) {
        struct pollfd fds[2] = {{.fd = sfd, .events = POLLIN}, {.fd = sv[0], .events = POLLIN}};
        int n = poll(fds, sock_open ? 2 : 1, -1);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            break;
        if (fds[0].revents & POLLIN) {
            struct signalfd_siginfo si;
            if (read(sfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
                if (si.ssi_signo == SIGCHLD) {
                    if (waitpid(pid, &status, WNOHANG) == pid)
                        child_done = true;
                } else {
                    char sig_s[8];
                    if (cf_fmt(sig_s, sizeof(sig_s), "%u", si.ssi_signo) == 0)
                        cf_log(CF_LOG_INFO, "launch.signal_forwarded", "signal", sig_s, NULL);
                    (void)kill(pid, (int)si.ssi_signo);
                }
            }
        }
        if (sock_open && !child_done && fds[1].revents != 0) {
            bool hup = (fds[1].revents & (POLLHUP | POLLERR)) != 0;
            if (fds[1].revents & POLLIN)
                sock_open = serve_one(&s, sv[0], hup);
            else
                sock_open = !hup;
        }
    }
    if (!child_done) {
        /* poll failed: never leave the child behind. */
        (void)kill(pid, SIGKILL);
        (void)waitpid(pid, &status, 0);
    }
    pid = -1;
    code = exit_code(status);
    if (cf_fmt(code_s, sizeof(code_s), "%d", code) == 0)
        cf_log(CF_LOG_INFO, "launch.exited", "status", code_s, NULL);
out:
    if (sfd >= 0)
        close(sfd);
    for (int i = 0; i < 2; i++) {
        if (sv[i] >= 0)
            close(sv[i]);
        if (errp[i] >= 0)
            close(errp[i]);
    }
    if (exe >= 0)
        close(exe);
    free(env);
    cf_buf_free(&s.vcek_der);
    cf_wipe(&s.launch, sizeof(s.launch));
    cf_sim_free(sim);
    return code;
}

int main(int argc, char **argv)
{
    options o;

    /* Non-dumpable: a child running as the same user cannot ptrace us or read
     * our memory through /proc, which is where the VCEK private key lives. */
    cf_harden_process();
    /* Private keys decoded by OpenSSL go to its locked, non-dumped secure heap. */
    (void)CRYPTO_secure_malloc_init(64 * 1024, 32);
    cf_log_set_service("coffer-launch");
    memset(&o, 0, sizeof(o));
    if (parse_args(argc, argv, &o) < 0) {
        usage(stderr);
        return EXIT_USAGE;
    }
    if (o.print_chain) {
        if (o.state == NULL || o.measure_only || o.program != NULL) {
            fprintf(stderr, "coffer-launch: --print-chain takes only --state [--tcb]\n");
            return EXIT_USAGE;
        }
        return run_print_chain(&o);
    }
    if (o.bundle == NULL || o.program == NULL) {
        fprintf(stderr, "coffer-launch: --bundle and -- PROGRAM are required\n");
        usage(stderr);
        return EXIT_USAGE;
    }
    if (o.measure_only)
        return run_measure_only(&o);
    if (o.state == NULL) {
        fprintf(stderr, "coffer-launch: --state is required to launch\n");
        return EXIT_USAGE;
    }
    /* A program name without a slash would be looked up in PATH: be explicit
     * about which file is measured and executed. */
    if (strchr(o.program[0], '/') == NULL) {
        fprintf(stderr, "coffer-launch: PROGRAM must be a path (e.g. ./%s)\n", o.program[0]);
        return EXIT_USAGE;
    }
    return run_launch(&o);
}
