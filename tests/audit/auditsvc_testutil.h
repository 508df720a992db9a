/*
 * Helpers shared by the audit service tests and their fixture program:
 * an internal CA with service certificates (src/crypto/pki.h), an IAM-like
 * token key with its JWKS file and tokens minted with cf_token_mint, running
 * `cofferd audit` as a process (stopped by pid), mTLS HTTP clients, and event
 * batches.
 */
#ifndef COFFER_TESTS_AUDITSVC_TESTUTIL_H
#define COFFER_TESTS_AUDITSVC_TESTUTIL_H

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/compiler.h"
#include "base/err.h"
#include "base/file.h"
#include "base/json.h"
#include "base/parse.h"
#include "crypto/hash.h"
#include "crypto/jose.h"
#include "crypto/keys.h"
#include "crypto/pki.h"
#include "http/client.h"
#include "proto/authz.h"

#define AT_KID "iam-test-key"

static CF_UNUSED void at_fmt(char *out, size_t size, const char *fmt, ...) CF_PRINTF(3, 4);
static CF_UNUSED void at_fmt(char *out, size_t size, const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(out, size, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= size)
        abort();
}

static CF_UNUSED void at_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static CF_UNUSED int at_rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(p);
}

static CF_UNUSED void at_rm_tree(const char *dir)
{
    if (dir[0] != '\0')
        (void)nftw(dir, at_rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

/* ---- PKI: DIR/ca.pem, DIR/<name>.pem + DIR/<name>.key for spiffe://coffer/<name> ---- */

static CF_UNUSED int at_pki(const char *dir, const char *const *names)
{
    static const char *const ips[] = {"127.0.0.1", NULL};
    cf_pki_cred *ca = NULL;
    char p1[512], p2[512];
    int rc;

    CF_GUARD(cf_pki_ca_create("coffer test CA", 86400, &ca));
    at_fmt(p1, sizeof(p1), "%s/ca.pem", dir);
    rc = cf_pki_write(ca, p1, NULL);
    for (size_t i = 0; rc == 0 && names[i] != NULL; i++) {
        char id[128];
        cf_pki_cred *leaf = NULL;
        cf_pki_leaf_opts o;
        memset(&o, 0, sizeof(o));
        at_fmt(id, sizeof(id), "spiffe://coffer/%s", names[i]);
        o.spiffe_id = id;
        o.ips = ips;
        o.usage = CF_PKI_SERVER | CF_PKI_CLIENT;
        o.valid_seconds = 86400;
        rc = cf_pki_issue(ca, &o, &leaf);
        if (rc == 0) {
            at_fmt(p1, sizeof(p1), "%s/%s.pem", dir, names[i]);
            at_fmt(p2, sizeof(p2), "%s/%s.key", dir, names[i]);
            rc = cf_pki_write(leaf, p1, p2);
        }
        cf_pki_free(leaf);
    }
    cf_pki_free(ca);
    return rc;
}

/* ---- tokens: an IAM stand-in key, its JWKS at DIR/jwks.json ---- */

static CF_UNUSED int at_jwks_write(const cf_key *k, const char *path)
{
    cf_jwks *set = NULL;
    cf_key *pub = NULL;
    char *js = NULL;
    int rc;

    CF_GUARD(cf_jwks_new(&set));
    rc = cf_key_public_only(k, &pub);
    if (rc == 0)
        rc = cf_jwks_add(set, AT_KID, pub);
    if (rc == 0)
        rc = cf_jwks_serialise(set, &js);
    if (rc == 0)
        rc = cf_file_write_atomic(path, js, strlen(js), 0644);
    free(js);
    cf_key_free(pub);
    cf_jwks_free(set);
    return rc;
}

/* A token (malloc'd) for principal sub of tenant with the given role bits; NULL on failure. */
static CF_UNUSED char *at_token(const cf_key *k, const char *tenant, const char *sub, uint32_t roles)
{
    cf_principal p;
    char *t = NULL;

    memset(&p, 0, sizeof(p));
    at_fmt(p.tenant, sizeof(p.tenant), "%s", tenant);
    at_fmt(p.sub, sizeof(p.sub), "%s", sub);
    at_fmt(p.kind, sizeof(p.kind), "user");
    p.roles = roles;
    if (cf_token_mint(k, AT_KID, &p, (int64_t)time(NULL), 3600, &t) != 0)
        return NULL;
    return t;
}

/* ---- processes ---- */

/* Runs bin with argv (argv[0] set by the caller), stdout+stderr appended to log. */
static CF_UNUSED pid_t at_spawn(const char *bin, char *const *argv, const char *log)
{
    pid_t pid = fork();

    if (pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
        sigset_t none;
        /* cf_svc_init blocks SIGTERM/SIGINT in its caller; exec keeps the mask. */
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        if (fd < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0)
            _exit(127);
        execv(bin, argv);
        _exit(127);
    }
    return pid;
}

/* Waits (up to timeout_ms) for a process to write its port file. */
static CF_UNUSED int at_wait_port(const char *port_file, pid_t pid, unsigned timeout_ms, uint16_t *ret)
{
    for (unsigned waited = 0; waited < timeout_ms; waited += 20) {
        cf_buf b;
        uint64_t port = 0;
        int st;
        if (pid > 0 && waitpid(pid, &st, WNOHANG) == pid)
            return cf_err_set(CF_E_UNAVAILABLE, "process exited before listening");
        cf_buf_init(&b, 16);
        if (cf_file_read(port_file, 16, &b) == 0 && cf_buf_nul_terminate(&b) == 0 &&
            cf_parse_u64((const char *)b.data, 65535, &port) == 0 && port != 0) {
            cf_buf_free(&b);
            *ret = (uint16_t)port;
            return 0;
        }
        cf_buf_free(&b);
        at_sleep_ms(20);
    }
    return cf_err_set(CF_E_TIMEOUT, "no port file %s", port_file);
}

/* Stops a child: sig (SIGTERM: then SIGKILL after 10 s; SIGKILL: at once) and reaps it.
 * Returns the wait status, or -1. */
static CF_UNUSED int at_stop(pid_t pid, int sig)
{
    int st = -1;

    if (pid <= 0)
        return -1;
    kill(pid, sig);
    for (int i = 0; i < 200; i++) {
        if (waitpid(pid, &st, WNOHANG) == pid)
            return st;
        at_sleep_ms(50);
    }
    kill(pid, SIGKILL);
    waitpid(pid, &st, 0);
    return -1;
}

/* ---- HTTP ---- */

/* A client for url trusting DIR/ca.pem; with DIR/<cert>.pem/.key when cert is not NULL. */
static CF_UNUSED int at_client(const char *dir, const char *url, const char *cert, cf_http_client **ret)
{
    char ca[512], c[512], k[512];
    cf_http_client_opts o;

    memset(&o, 0, sizeof(o));
    at_fmt(ca, sizeof(ca), "%s/ca.pem", dir);
    o.base_url = url;
    o.ca_file = ca;
    o.max_response = 8u << 20;
    if (cert != NULL) {
        at_fmt(c, sizeof(c), "%s/%s.pem", dir, cert);
        at_fmt(k, sizeof(k), "%s/%s.key", dir, cert);
        o.cert_file = c;
        o.key_file = k;
    }
    return cf_http_client_new(&o, ret);
}

/* One call; *ret_json is NULL when the body is not a JSON object. */
static CF_UNUSED int at_call(cf_http_client *c, const char *method, const char *path, const char *bearer,
                             const void *body, size_t len, const char *ctype, long *ret_status, json_t **ret_json)
{
    cf_http_request rq = {.method = method, .path = path, .bearer = bearer, .body = body, .body_len = len,
                          .content_type = ctype};
    cf_http_response resp;

    memset(&resp, 0, sizeof(resp));
    CF_GUARD(cf_http_client_do(c, &rq, &resp));
    *ret_status = resp.status;
    *ret_json = NULL;
    if (resp.body.len > 0 && cf_http_response_json(&resp, ret_json) != 0)
        *ret_json = NULL;
    cf_http_response_free(&resp);
    return 0;
}

/* ---- events ---- */

/* A valid event as JSON text into out (appended). id: 32 hex digits. */
static CF_UNUSED int at_event(cf_buf *out, const char *id, const char *service, const char *tenant,
                              const char *action, unsigned n)
{
    json_t *e = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:{s:i}}", "event_id", id, "ts", "2024-05-01T12:00:00.000Z",
                          "service", service, "actor", "spiffe://coffer/test", "action", action, "outcome",
                          "success", "resource", "test/resource", "details", "n", (int)n);
    char *s = NULL;
    int rc;

    if (e == NULL)
        return CF_E_NOMEM;
    if (tenant != NULL && tenant[0] != '\0' && json_object_set_new(e, "tenant", json_string(tenant)) != 0) {
        json_decref(e);
        return CF_E_NOMEM;
    }
    s = cf_json_dump(e);
    json_decref(e);
    if (s == NULL)
        return CF_E_NOMEM;
    rc = cf_buf_put_str(out, s);
    free(s);
    return rc;
}

/* An event id made from a label and a number (deterministic, 32 hex digits). */
static CF_UNUSED void at_event_id(const char *label, unsigned n, char out[33])
{
    uint8_t h[CF_SHA256_LEN];
    char in[128];

    at_fmt(in, sizeof(in), "%s/%u", label, n);
    if (cf_sha256(in, strlen(in), h) != 0)
        abort();
    cf_hex_encode(h, 16, out);
}

/* {"events":[...]}: n events label/first.. as service, tenants cycling through tenants[]. */
static CF_UNUSED int at_batch(cf_buf *out, const char *label, unsigned first, unsigned n, const char *service,
                              const char *const *tenants, size_t ntenants)
{
    CF_GUARD(cf_buf_put_str(out, "{\"events\":["));
    for (unsigned i = 0; i < n; i++) {
        char id[33];
        at_event_id(label, first + i, id);
        if (i > 0)
            CF_GUARD(cf_buf_put_str(out, ","));
        CF_GUARD(at_event(out, id, service, ntenants > 0 ? tenants[(first + i) % ntenants] : NULL,
                          "test.event.write", first + i));
    }
    return cf_buf_put_str(out, "]}");
}

#endif
