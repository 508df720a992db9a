#include "platform.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/err.h"
#include "base/file.h"
#include "base/json.h"
#include "base/log.h"
#include "base/parse.h"
#include "base/secmem.h"
#include "crypto/hash.h"
#include "crypto/pki.h"

#define CERT_VALIDITY (5ull * 365 * 24 * 3600)

int plat_path(const plat *p, char *out, size_t size, const char *rel)
{
    return cf_fmt(out, size, "%s/%s", p->state, rel);
}

int plat_bin(const plat *p, char *out, size_t size, const char *prog)
{
    return cf_fmt(out, size, "%s/%s", p->bindir, prog);
}

int plat_init(plat *p, const char *state_dir)
{
    char exe[4096];
    ssize_t n;

    memset(p, 0, sizeof(*p));
    CF_GUARD(cf_mkdirs(state_dir, 0700));
    if (chmod(state_dir, 0700) != 0 || realpath(state_dir, p->state) == NULL)
        return cf_err_set(CF_E_IO, "cannot use state directory %s: %s", state_dir, strerror(errno));
    n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n <= 0)
        return cf_err_set(CF_E_IO, "cannot find the coffer binary's directory");
    exe[n] = 0;
    CF_GUARD(cf_fmt(p->bindir, sizeof(p->bindir), "%s", dirname(exe)));
    for (const char *d = "ca\0certs\0secrets\0services\0logs\0"; *d; d += strlen(d) + 1) {
        char path[4096];
        CF_GUARD(plat_path(p, path, sizeof(path), d));
        CF_GUARD(cf_mkdirs(path, 0700));
    }
    return 0;
}

void plat_free(plat *p)
{
    for (size_t i = 0; i < p->nchildren; i++)
        for (size_t a = 0; a < PLAT_MAX_ARGS && p->children[i].argv[a]; a++)
            free(p->children[i].argv[a]);
    p->nchildren = 0;
}

int plat_free_port(uint16_t *ret)
{
    struct sockaddr_in a;
    socklen_t len = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    if (fd < 0)
        return cf_err_set(CF_E_IO, "socket: %s", strerror(errno));
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 || getsockname(fd, (struct sockaddr *)&a, &len) != 0) {
        close(fd);
        return cf_err_set(CF_E_IO, "cannot find a free port: %s", strerror(errno));
    }
    close(fd);
    *ret = ntohs(a.sin_port);
    return 0;
}

int plat_write_secret(const plat *p, const char *name, const char *value)
{
    char path[4096], rel[256];

    CF_GUARD(cf_fmt(rel, sizeof(rel), "secrets/%s", name));
    CF_GUARD(plat_path(p, path, sizeof(path), rel));
    return cf_file_write_atomic(path, value, strlen(value), 0600);
}

int plat_read_secret(const plat *p, const char *name, char *out, size_t size)
{
    char path[4096], rel[256];
    cf_buf b;
    int rc;

    CF_GUARD(cf_fmt(rel, sizeof(rel), "secrets/%s", name));
    CF_GUARD(plat_path(p, path, sizeof(path), rel));
    cf_buf_init_secret(&b, size - 1);
    rc = cf_file_read(path, size - 1, &b);
    if (rc == 0) {
        memcpy(out, b.data, b.len);
        out[b.len] = 0;
    }
    cf_buf_free(&b);
    return rc;
}

int plat_secret(const plat *p, const char *name, char *path, size_t size)
{
    char rel[256], val[64];
    uint8_t raw[32];
    struct stat st;

    CF_GUARD(cf_fmt(rel, sizeof(rel), "secrets/%s", name));
    CF_GUARD(plat_path(p, path, size, rel));
    if (stat(path, &st) == 0)
        return 0;
    CF_GUARD(cf_random_secret(raw, sizeof(raw)));
    cf_b64url_encode(raw, sizeof(raw), val);
    cf_wipe(raw, sizeof(raw));
    int rc = cf_file_write_atomic(path, val, strlen(val), 0600);
    cf_wipe(val, sizeof(val));
    return rc;
}

int plat_pki(const plat *p, const char *const *services)
{
    char cert[4096], key[4096];
    cf_pki_cred *ca = NULL;
    struct stat st;
    int rc;

    CF_GUARD(plat_path(p, cert, sizeof(cert), "ca/ca.pem"));
    CF_GUARD(plat_path(p, key, sizeof(key), "ca/ca.key"));
    if (stat(cert, &st) == 0) {
        CF_GUARD(cf_pki_load(cert, key, &ca));
    } else {
        CF_GUARD(cf_pki_ca_create("Coffer internal CA", CERT_VALIDITY * 2, &ca));
        rc = cf_pki_write(ca, cert, key);
        if (rc != 0) {
            cf_pki_free(ca);
            return rc;
        }
    }
    rc = 0;
    for (size_t i = 0; services[i] != NULL && rc == 0; i++) {
        char rel[128], spiffe[128];
        static const char *const dns[] = {"localhost", NULL};
        static const char *const ips[] = {"127.0.0.1", NULL};
        cf_pki_leaf_opts o = {.dns = dns, .ips = ips, .usage = CF_PKI_SERVER | CF_PKI_CLIENT,
                              .valid_seconds = CERT_VALIDITY};
        cf_pki_cred *leaf = NULL;

        if ((rc = cf_fmt(rel, sizeof(rel), "certs/%s.pem", services[i])) != 0 ||
            (rc = plat_path(p, cert, sizeof(cert), rel)) != 0)
            break;
        if (stat(cert, &st) == 0)
            continue;
        if ((rc = cf_fmt(rel, sizeof(rel), "certs/%s.key", services[i])) != 0 ||
            (rc = plat_path(p, key, sizeof(key), rel)) != 0 ||
            (rc = cf_fmt(spiffe, sizeof(spiffe), "spiffe://coffer/%s", services[i])) != 0)
            break;
        o.spiffe_id = spiffe;
        rc = cf_pki_issue(ca, &o, &leaf);
        if (rc == 0)
            rc = cf_pki_write(leaf, cert, key);
        cf_pki_free(leaf);
    }
    cf_pki_free(ca);
    return rc;
}

int plat_add(plat *p, const char *name, const char *const *argv, const char *health_url)
{
    plat_child *c;
    size_t i;

    CF_ENSURE(p->nchildren < PLAT_MAX_CHILDREN, CF_E_TOO_LARGE);
    c = &p->children[p->nchildren];
    memset(c, 0, sizeof(*c));
    CF_GUARD(cf_fmt(c->name, sizeof(c->name), "%s", name));
    for (i = 0; argv[i] != NULL; i++) {
        CF_ENSURE(i + 1 < PLAT_MAX_ARGS, CF_E_TOO_LARGE);
        c->argv[i] = strdup(argv[i]);
        CF_ENSURE(c->argv[i] != NULL, CF_E_NOMEM);
    }
    if (health_url != NULL)
        CF_GUARD(cf_fmt(c->health_url, sizeof(c->health_url), "%s", health_url));
    return (int)p->nchildren++;
}

int plat_start(plat *p, size_t i)
{
    plat_child *c = &p->children[i];
    char logp[4096], rel[96];
    pid_t parent = getpid(), pid;
    int fd;

    if (c->before_start != NULL)
        CF_GUARD(c->before_start(p, c));
    CF_GUARD(cf_fmt(rel, sizeof(rel), "logs/%s.log", c->name));
    CF_GUARD(plat_path(p, logp, sizeof(logp), rel));
    fd = open(logp, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0)
        return cf_err_set(CF_E_IO, "cannot open %s: %s", logp, strerror(errno));
    pid = fork();
    if (pid < 0) {
        close(fd);
        return cf_err_set(CF_E_IO, "fork: %s", strerror(errno));
    }
    if (pid == 0) {
        sigset_t none;
        int devnull = open("/dev/null", O_RDONLY);
        /* The child must not outlive the supervisor. */
        (void)prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() != parent)
            _exit(127);
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        if (devnull >= 0)
            dup2(devnull, 0);
        dup2(fd, 1);
        dup2(fd, 2);
        setpgid(0, 0); /* Ctrl-C in the terminal reaches `coffer up`, which stops us in order */
        execv(c->argv[0], c->argv);
        fprintf(stderr, "coffer up: cannot execute %s: %s\n", c->argv[0], strerror(errno));
        _exit(127);
    }
    close(fd);
    c->pid = pid;
    return 0;
}

static int http_get_status(const plat *p, const char *url, long *ret)
{
    char ca[4096];
    cf_http_client *cl = NULL;
    cf_http_client_opts o;
    cf_http_request rq = {.method = "GET", .path = "/"};
    cf_http_response r;
    int rc;
    char base[CF_HTTP_MAX_URL];

    CF_GUARD(plat_path(p, ca, sizeof(ca), "ca/ca.pem"));
    CF_GUARD(cf_http_url_split(url, base, sizeof(base), &rq.path));
    memset(&o, 0, sizeof(o));
    o.base_url = base;
    o.ca_file = ca;
    o.connect_timeout_ms = 500;
    o.timeout_ms = 2000;
    CF_GUARD(cf_http_client_new(&o, &cl));
    memset(&r, 0, sizeof(r));
    rc = cf_http_client_do(cl, &rq, &r);
    if (rc == 0) {
        *ret = r.status;
        cf_http_response_free(&r);
    }
    cf_http_client_free(cl);
    return rc;
}

int plat_wait_healthy(plat *p, size_t i, unsigned timeout_ms)
{
    plat_child *c = &p->children[i];
    struct timespec t0, t;

    if (c->health_url[0] == '\0')
        return 0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        long st = 0;
        int status;
        if (http_get_status(p, c->health_url, &st) == 0 && st == 200)
            return 0;
        if (c->pid > 0 && waitpid(c->pid, &status, WNOHANG) == c->pid) {
            c->pid = 0;
            return cf_err_set(CF_E_UNAVAILABLE, "%s exited during start-up (see %s/logs/%s.log)", c->name,
                              p->state, c->name);
        }
        clock_gettime(CLOCK_MONOTONIC, &t);
        if ((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000 > (long)timeout_ms)
            return cf_err_set(CF_E_TIMEOUT, "%s did not become ready within %u ms (see %s/logs/%s.log)",
                              c->name, timeout_ms, p->state, c->name);
        usleep(100000);
    }
}

void plat_stop_all(plat *p, unsigned grace_ms)
{
    struct timespec t0, t;
    bool any;

    /* Reverse start order: the gateway and TEEs go first, IAM last. */
    for (size_t i = p->nchildren; i-- > 0;)
        if (p->children[i].pid > 0)
            kill(p->children[i].pid, SIGTERM);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    do {
        any = false;
        for (size_t i = 0; i < p->nchildren; i++) {
            plat_child *c = &p->children[i];
            if (c->pid > 0) {
                if (waitpid(c->pid, NULL, WNOHANG) == c->pid)
                    c->pid = 0;
                else
                    any = true;
            }
        }
        clock_gettime(CLOCK_MONOTONIC, &t);
        if (any)
            usleep(50000);
    } while (any && (t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000 < (long)grace_ms);
    for (size_t i = 0; i < p->nchildren; i++) {
        plat_child *c = &p->children[i];
        if (c->pid > 0) {
            kill(c->pid, SIGKILL);
            (void)waitpid(c->pid, NULL, 0);
            c->pid = 0;
        }
    }
}

int plat_supervise(plat *p)
{
    sigset_t set;
    struct timespec tick = {1, 0};

    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGCHLD);
    sigprocmask(SIG_BLOCK, &set, NULL);
    for (;;) {
        int sig = sigtimedwait(&set, NULL, &tick);
        int64_t now = (int64_t)time(NULL);
        if (sig == SIGINT || sig == SIGTERM) {
            printf("\nstopping Coffer...\n");
            fflush(stdout);
            break;
        }
        for (size_t i = 0; i < p->nchildren; i++) {
            plat_child *c = &p->children[i];
            int status;
            if (c->pid > 0 && waitpid(c->pid, &status, WNOHANG) == c->pid) {
                unsigned delay = c->restarts < 5 ? 1u << c->restarts : 30;
                char st[32];
                if (cf_fmt(st, sizeof(st), "%d", WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status)) != 0)
                    st[0] = 0;
                cf_log(CF_LOG_WARN, "up.child_exited", "child", c->name, "status", st, NULL);
                c->pid = 0;
                c->restarts++;
                c->next_start = now + delay;
            }
            if (c->pid == 0 && c->next_start != 0 && now >= c->next_start) {
                c->next_start = 0;
                if (plat_start(p, i) == 0)
                    cf_log(CF_LOG_INFO, "up.child_restarted", "child", c->name, NULL);
                else
                    c->next_start = now + 5;
            }
        }
    }
    plat_stop_all(p, 10000);
    return 0;
}

int plat_call(const plat *p, const char *method, const char *url, const char *bearer, const json_t *body,
              long *ret_status, json_t **ret_json)
{
    char ca[4096];
    cf_http_client *cl = NULL;
    cf_http_client_opts o;
    cf_http_request rq;
    cf_http_response r;
    char *js = NULL;
    int rc;

    char base[CF_HTTP_MAX_URL];
    const char *path = NULL;

    CF_GUARD(plat_path(p, ca, sizeof(ca), "ca/ca.pem"));
    CF_GUARD(cf_http_url_split(url, base, sizeof(base), &path));
    /* coffer up acts as the platform operator's tool: it presents no client
     * certificate; it authenticates with the bootstrap admin's access token. */
    memset(&o, 0, sizeof(o));
    o.base_url = base;
    o.ca_file = ca;
    CF_GUARD(cf_http_client_new(&o, &cl));
    memset(&rq, 0, sizeof(rq));
    rq.method = method;
    rq.path = path;
    rq.bearer = bearer;
    if (body != NULL) {
        js = cf_json_dump(body);
        if (js == NULL) {
            cf_http_client_free(cl);
            return CF_E_NOMEM;
        }
        rq.body = js;
        rq.body_len = strlen(js);
        rq.content_type = "application/json";
    }
    memset(&r, 0, sizeof(r));
    rc = cf_http_client_do(cl, &rq, &r);
    free(js);
    cf_http_client_free(cl);
    if (rc != 0)
        return rc;
    *ret_status = r.status;
    *ret_json = NULL;
    if (r.body.len > 0 && cf_http_response_json(&r, ret_json) != 0)
        *ret_json = NULL; /* not JSON: the status alone speaks */
    cf_http_response_free(&r);
    return 0;
}
