/*
 * `coffer request` and the example program (examples/, built with pkg-config by
 * the sdk/example_build fixture) against the fake platform: output, exit codes
 * and messages, run as separate processes exactly as a user runs them.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/log.h"
#include "fake_platform.h"
#include "test.h"

extern char **environ;

#define MAX_ENV 256

typedef struct {
    int status; /* exit status, or 128 + signal */
    cf_buf out, err;
} run_result;

static char alice_key[300];
static int run_seq;

static void run_free(run_result *r)
{
    cf_buf_free(&r->out);
    cf_buf_free(&r->err);
}

/* The platform's COFFER_* settings for alice. */
static void base_env(const char **env, size_t *n)
{
    static char vars[9][400];
    FAKE_PATH(vars[0], "COFFER_GATEWAY_URL=%s", F.url);
    FAKE_PATH(vars[1], "COFFER_TENANT_ID=%s", FAKE_TENANT);
    FAKE_PATH(vars[2], "COFFER_API_KEY=key-alice");
    FAKE_PATH(vars[3], "COFFER_MANIFEST=%s", F.manifest_path);
    FAKE_PATH(vars[4], "COFFER_CA=%s", F.ca_path);
    FAKE_PATH(vars[5], "COFFER_ATTESTATION_JWKS=%s", F.jwks_path);
    FAKE_PATH(vars[6], "COFFER_KMS_RELEASE_KEY=%s", F.release_b64);
    FAKE_PATH(vars[7], "COFFER_CLIENT_KEY=%s", alice_key);
    for (int i = 0; i < 8; i++)
        env[(*n)++] = vars[i];
}

/*
 * Runs argv with the inherited environment minus every COFFER_* variable, plus
 * base_env (unless no_base), plus extra (NULL-terminated; an entry "NAME="
 * removes NAME). stdin from stdin_path (or /dev/null).
 */
static int run(const char *const *argv, const char *const *extra, bool no_base,
               const char *stdin_path, run_result *r)
{
    const char *env[MAX_ENV];
    char out_path[400], err_path[400];
    size_t n = 0;
    pid_t pid;
    int st;

    memset(r, 0, sizeof(*r));
    cf_buf_init(&r->out, 1 << 20);
    cf_buf_init(&r->err, 1 << 20);
    for (char **e = environ; *e != NULL && n < MAX_ENV - 32; e++)
        if (strncmp(*e, "COFFER_", 7) != 0)
            env[n++] = *e;
    if (!no_base)
        base_env(env, &n);
    for (size_t i = 0; extra != NULL && extra[i] != NULL; i++) {
        const char *eq = strchr(extra[i], '=');
        size_t nl = (size_t)(eq - extra[i]) + 1;
        for (size_t j = 0; j < n; j++)
            if (strncmp(env[j], extra[i], nl) == 0)
                env[j--] = env[--n];
        if (eq[1] != 0)
            env[n++] = extra[i];
    }
    env[n] = NULL;
    run_seq++;
    FAKE_PATH(out_path, "%s/run-%d.out", F.dir, run_seq);
    FAKE_PATH(err_path, "%s/run-%d.err", F.dir, run_seq);
    fflush(NULL);
    pid = fork();
    if (pid < 0)
        return CF_E_IO;
    if (pid == 0) {
        /* Only async-signal-safe calls between fork and exec. */
        int in = open(stdin_path ? stdin_path : "/dev/null", O_RDONLY);
        int o = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        int e = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (in < 0 || o < 0 || e < 0 || dup2(in, 0) < 0 || dup2(o, 1) < 0 || dup2(e, 2) < 0)
            _exit(127);
        {
            /* execve's prototype predates const; it does not modify either array. */
            char *const *a, *const *ev;
            const char *const *envc = env;
            memcpy(&a, &argv, sizeof(a));
            memcpy(&ev, &envc, sizeof(ev));
            execve(argv[0], a, ev);
        }
        _exit(127);
    }
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR)
            return CF_E_IO;
    r->status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    CF_GUARD(cf_file_read(out_path, 1 << 20, &r->out));
    CF_GUARD(cf_file_read(err_path, 1 << 20, &r->err));
    CF_GUARD(cf_buf_nul_terminate(&r->out));
    CF_GUARD(cf_buf_nul_terminate(&r->err));
    return 0;
}

#define T_EXIT(r, code)                                                                  \
    T_ASSERT_MSG((r).status == (code), "exit %d, expected %d; stderr: %s", (r).status,   \
                 (code), (const char *)(r).err.data)
#define T_ERR_HAS(r, text)                                                               \
    T_ASSERT_MSG(strstr((const char *)(r).err.data, (text)) != NULL,                     \
                 "stderr lacks '%s': %s", (text), (const char *)(r).err.data)

#define KNOB(stmt)                                                                       \
    do {                                                                                 \
        fake_reset();                                                                    \
        fake_lock();                                                                     \
        stmt;                                                                            \
        fake_unlock();                                                                   \
    } while (0)

/* ---- coffer request ---- */

static void test_cli_request_ok(void)
{
    run_result r;
    char in_path[300], out_path[300], keyf[300];
    uint8_t digest[32];
    cf_buf got;

    fake_reset();
    const char *echo[] = {COFFER_BIN, "request", "--job", "echo", "--data", "hello TEE", NULL};
    T_OK(run(echo, NULL, false, NULL, &r));
    T_EXIT(r, 0);
    T_EQ(r.out.len, 9);
    T_MEMEQ(r.out.data, "hello TEE", 9);
    run_free(&r);

    /* --file, binary output */
    FAKE_PATH(in_path, "%s/input.bin", F.dir);
    T_OK(fake_write(in_path, "\x00\x01\x02 data", 8, 0600));
    const char *sha[] = {COFFER_BIN, "request", "--job", "sha256", "--file", in_path, NULL};
    T_OK(run(sha, NULL, false, NULL, &r));
    T_EXIT(r, 0);
    T_OK(cf_sha256("\x00\x01\x02 data", 8, digest));
    T_EQ(r.out.len, 32);
    T_MEMEQ(r.out.data, digest, 32);
    run_free(&r);

    /* --file - (stdin), --output, flags over the environment, the API key from a file */
    FAKE_PATH(out_path, "%s/output.bin", F.dir);
    FAKE_PATH(keyf, "%s/api-key", F.dir);
    T_OK(fake_write(keyf, "key-alice\n", 10, 0600));
    const char *flags[] = {COFFER_BIN, "request", "--job", "echo", "--file", "-", "--output",
                           out_path, "--api-key-file", keyf, "--gateway", F.url, "--verbose",
                           NULL};
    const char *env[] = {"COFFER_API_KEY=", "COFFER_GATEWAY_URL=https://127.0.0.1:1", NULL};
    T_OK(run(flags, env, false, in_path, &r));
    T_EXIT(r, 0);
    T_EQ(r.out.len, 0);
    T_ERR_HAS(r, "ran on TEE tee_a");
    cf_buf_init(&got, 64);
    T_OK(cf_file_read(out_path, 64, &got));
    T_EQ(got.len, 8);
    T_MEMEQ(got.data, "\x00\x01\x02 data", 8);
    cf_buf_free(&got);
    run_free(&r);
}

static void test_cli_request_failures(void)
{
    run_result r;

    const char *echo[] = {COFFER_BIN, "request", "--job", "echo", "--data", "x", NULL};
    KNOB(F.k.debug = true);
    T_OK(run(echo, NULL, false, NULL, &r));
    T_EXIT(r, 1);
    T_ERR_HAS(r, "attestation failed: debug: policy has DEBUG set");
    T_EQ(r.out.len, 0);
    run_free(&r);

    KNOB(F.k.rate_limit = true);
    T_OK(run(echo, NULL, false, NULL, &r));
    T_EXIT(r, 4);
    T_ERR_HAS(r, "retry after 7 s");
    run_free(&r);

    KNOB(F.k.tamper_response = true);
    T_OK(run(echo, NULL, false, NULL, &r));
    T_EXIT(r, 1);
    T_ERR_HAS(r, "failed authentication");
    T_EQ(r.out.len, 0);
    run_free(&r);

    /* The job's failure: its output is still written, exit 5. */
    fake_reset();
    const char *fail[] = {COFFER_BIN, "request", "--job", "fail", "--data", "x", NULL};
    T_OK(run(fail, NULL, false, NULL, &r));
    T_EXIT(r, 5);
    T_EQ(r.out.len, 4);
    T_MEMEQ(r.out.data, "boom", 4);
    T_ERR_HAS(r, "status 1");
    run_free(&r);

    /* Nobody listens. */
    const char *gone[] = {COFFER_BIN, "request", "--job", "echo", "--data", "x", "--gateway",
                          "https://127.0.0.1:1", NULL};
    T_OK(run(gone, NULL, false, NULL, &r));
    T_EXIT(r, 4);
    T_ERR_HAS(r, "cannot reach the gateway");
    run_free(&r);

    /* Configuration that cannot be read. */
    const char *nomf[] = {COFFER_BIN, "request", "--job", "echo", "--data", "x", "--manifest",
                          "/nonexistent/m.json", NULL};
    T_OK(run(nomf, NULL, false, NULL, &r));
    T_EXIT(r, 3);
    T_ERR_HAS(r, "/nonexistent/m.json");
    run_free(&r);
    const char *nokey[] = {COFFER_BIN, "request", "--job", "echo", "--data", "x", NULL};
    const char *nokey_env[] = {"COFFER_API_KEY=", NULL};
    T_OK(run(nokey, nokey_env, false, NULL, &r));
    T_EXIT(r, 3);
    T_ERR_HAS(r, "api_key is required");
    run_free(&r);

    /* A job the client's manifest does not know: refused before any traffic. */
    const char *unknown[] = {COFFER_BIN, "request", "--job", "wordcount", "--data", "x", NULL};
    T_OK(run(unknown, NULL, false, NULL, &r));
    T_EXIT(r, 1);
    T_ERR_HAS(r, "serves job 'wordcount'");
    run_free(&r);

    /* Usage errors. */
    const char *u1[] = {COFFER_BIN, "request", "--data", "x", NULL};
    T_OK(run(u1, NULL, false, NULL, &r));
    T_EXIT(r, 2);
    T_ERR_HAS(r, "--job is required");
    run_free(&r);
    const char *u2[] = {COFFER_BIN, "request", "--job", "echo", "--data", "x", "--file", "y", NULL};
    T_OK(run(u2, NULL, false, NULL, &r));
    T_EXIT(r, 2);
    run_free(&r);
    const char *u3[] = {COFFER_BIN, "request", "--job", "echo", "--data", "x", "--timeout-ms",
                        "soon", NULL};
    T_OK(run(u3, NULL, false, NULL, &r));
    T_EXIT(r, 2);
    run_free(&r);
    const char *help[] = {COFFER_BIN, "request", "--help", NULL};
    T_OK(run(help, NULL, false, NULL, &r));
    T_EXIT(r, 0);
    T_ASSERT(strstr((const char *)r.out.data, "Exit status") != NULL);
    run_free(&r);
}

/* ---- the example program, built by the fixture with pkg-config ---- */

static void check_example(const char *prog)
{
    run_result r;
    char in_path[300], hex[65];
    uint8_t digest[32];

    fake_reset();
    FAKE_PATH(in_path, "%s/example-input.txt", F.dir);
    T_OK(fake_write(in_path, "to be or not to be\n", 19, 0600));
    const char *sha[] = {prog, "-x", "sha256", in_path, NULL};
    T_OK(run(sha, NULL, false, NULL, &r));
    T_EXIT(r, 0);
    T_OK(cf_sha256("to be or not to be\n", 19, digest));
    cf_hex_encode(digest, 32, hex);
    T_EQ(r.out.len, 65);
    T_MEMEQ(r.out.data, hex, 64);
    T_ERR_HAS(r, "ran on TEE tee_a");
    run_free(&r);

    const char *echo[] = {prog, "echo", NULL};
    T_OK(run(echo, NULL, false, in_path, &r));
    T_EXIT(r, 0);
    T_EQ(r.out.len, 19);
    T_MEMEQ(r.out.data, "to be or not to be\n", 19);
    run_free(&r);

    KNOB(F.k.ear_other_hash = true);
    T_OK(run(echo, NULL, false, in_path, &r));
    T_EXIT(r, 1);
    T_ERR_HAS(r, "attestation service runs manifest sha256:");
    T_ERR_HAS(r, "failed check: ear_manifest_hash");
    T_ERR_HAS(r, "COFFER_E_ATTESTATION");
    run_free(&r);

    KNOB(F.k.rate_limit = true);
    T_OK(run(echo, NULL, false, in_path, &r));
    T_EXIT(r, 1);
    T_ERR_HAS(r, "try again in 7 s");
    run_free(&r);
}

static void test_example_shared(void)
{
    check_example(COFFER_EXAMPLE_DIR "/coffer-example");
}

static void test_example_static(void)
{
    check_example(COFFER_EXAMPLE_DIR "/coffer-example-static");
}

int main(void)
{
    cf_log_set_level(CF_LOG_WARN);
    if (fake_prepare() != 0 || fake_start() != 0) {
        fprintf(stderr, "fake platform: %s\n", cf_err_detail(CF_E_INTERNAL));
        return 1;
    }
    FAKE_PATH(alice_key, "%s/alice.key", F.dir);
    T_RUN(test_cli_request_ok);
    T_RUN(test_cli_request_failures);
    T_RUN(test_example_shared);
    T_RUN(test_example_static);
    fake_stop();
    return t_done();
}
