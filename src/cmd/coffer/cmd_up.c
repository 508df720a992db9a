/*
 * coffer up [--state DIR] [--bundle DIR] [--tees N] [--reattest-interval D]
 *
 * Runs the whole platform on this machine (DESIGN.md §9): on first run it
 * initialises DIR (internal CA and service certificates, HSM PINs, ports, the
 * manifest with the simulated root and the demo deployment, the bootstrap
 * platform admin, a demo tenant with a client principal and API key), then
 * starts IAM, KMS, audit, attestation, N simulated TEEs (each under
 * coffer-launch) and the gateway as separate processes on loopback, writes
 * DIR/client.env once everything answers, prints how to use it, restarts
 * crashed children and stops everything on Ctrl-C / SIGTERM.
 */
#include <fcntl.h>
#include <getopt.h>
#include <stdarg.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "attest/measure.h"
#include "base/err.h"
#include "base/file.h"
#include "base/json.h"
#include "base/log.h"
#include "base/parse.h"
#include "base/secmem.h"
#include "cli.h"
#include "platform.h"

#define MAX_TEES 4
#define DEMO_TENANT "demo"
#define DEMO_DEPLOYMENT "demo"

typedef struct {
    plat p;
    char bundle[4096];
    unsigned ntees;
    char reattest[32];
    uint16_t port_iam, port_kms, port_attest, port_audit, port_gw, port_tee[MAX_TEES];
    bool have_audit, svc_audit_url;
    char release_key[64];
    char dev_key[128];
    char url_iam[64], url_kms[64], url_attest[64], url_audit[64], url_gw[64];
} up_ctx;

static int fail(int rc, const char *what)
{
    fprintf(stderr, "coffer up: %s: %s\n", what, cf_err_detail(rc));
    return rc;
}

/* Runs argv, capturing stdout (bounded); stderr goes to ours. */
static int run_capture(const char *const *argv, cf_buf *out, int *ret_status, bool quiet)
{
    int fds[2], st = 0;
    pid_t pid;

    if (pipe2(fds, O_CLOEXEC) != 0)
        return cf_err_set(CF_E_IO, "pipe failed");
    pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        return cf_err_set(CF_E_IO, "fork failed");
    }
    if (pid == 0) {
        if (quiet) {
            int devnull = open("/dev/null", O_WRONLY);
            if (devnull >= 0)
                dup2(devnull, 2);
        }
        dup2(fds[1], 1);
        execv(argv[0], (char *const *)(uintptr_t)argv);
        fprintf(stderr, "cannot execute %s\n", argv[0]);
        _exit(127);
    }
    close(fds[1]);
    for (;;) {
        uint8_t scratch[4096];
        size_t room = out->max - out->len;
        ssize_t n = read(fds[0], scratch, sizeof(scratch));
        if (n <= 0)
            break;
        /* Keep what fits; drain the rest so that the child never blocks. */
        if (room > 0 && cf_buf_put(out, scratch, CF_MIN((size_t)n, room)) != 0)
            room = 0;
        cf_wipe(scratch, sizeof(scratch));
    }
    if (out->len == out->max)
        cf_log(CF_LOG_WARN, "up.output_truncated", "program", argv[0], NULL);
    close(fds[0]);
    while (waitpid(pid, &st, 0) < 0)
        ;
    *ret_status = WIFEXITED(st) ? WEXITSTATUS(st) : 128;
    return cf_buf_nul_terminate(out);
}

static int load_or_pick_ports(up_ctx *u)
{
    char path[4096];
    cf_buf b;
    json_t *o = NULL;
    int rc;
    uint16_t *slots[5 + MAX_TEES] = {&u->port_iam, &u->port_kms, &u->port_attest, &u->port_audit, &u->port_gw};
    const char *names[5 + MAX_TEES] = {"iam", "kms", "attest", "audit", "gateway", "tee1", "tee2", "tee3", "tee4"};

    for (unsigned i = 0; i < MAX_TEES; i++)
        slots[5 + i] = &u->port_tee[i];
    CF_GUARD(plat_path(&u->p, path, sizeof(path), "ports.json"));
    cf_buf_init(&b, 4096);
    rc = cf_file_read(path, 4096, &b);
    if (rc == 0)
        rc = cf_json_parse_object(b.data, b.len, 4096, &o);
    cf_buf_free(&b);
    if (rc != 0) {
        o = json_object();
        CF_ENSURE(o != NULL, CF_E_NOMEM);
    }
    for (size_t i = 0; i < CF_ARRAY_LEN(names); i++) {
        uint64_t v = 0;
        if (cf_json_get_u64(o, names[i], false, 65535, &v) != 0 || v == 0) {
            uint16_t port;
            rc = plat_free_port(&port);
            if (rc != 0 || json_object_set_new(o, names[i], json_integer(port)) != 0) {
                json_decref(o);
                return rc ? rc : CF_E_NOMEM;
            }
            v = port;
        }
        *slots[i] = (uint16_t)v;
    }
    char *js = cf_json_dump(o);
    json_decref(o);
    CF_ENSURE(js != NULL, CF_E_NOMEM);
    rc = cf_file_write_atomic(path, js, strlen(js), 0644);
    free(js);
    return rc;
}

/* Common flags of a cofferd service. argv gets pointers into store (owned by caller). */
struct argv_b {
    const char *v[PLAT_MAX_ARGS];
    char store[PLAT_MAX_ARGS][512];
    size_t n;
};

static int push(struct argv_b *a, const char *fmt, ...) CF_PRINTF(2, 3);
static int push(struct argv_b *a, const char *fmt, ...)
{
    va_list ap;
    int n;

    CF_ENSURE(a->n + 1 < PLAT_MAX_ARGS, CF_E_TOO_LARGE);
    va_start(ap, fmt);
    n = vsnprintf(a->store[a->n], sizeof(a->store[a->n]), fmt, ap);
    va_end(ap);
    CF_ENSURE(n >= 0 && (size_t)n < sizeof(a->store[a->n]), CF_E_TOO_LARGE);
    a->v[a->n] = a->store[a->n];
    a->n++;
    a->v[a->n] = NULL;
    return 0;
}

static int service_argv(up_ctx *u, struct argv_b *a, const char *svc, uint16_t port, bool hsm)
{
    const char *st = u->p.state;

    a->n = 0;
    CF_GUARD(push(a, "%s/cofferd", u->p.bindir));
    CF_GUARD(push(a, "%s", svc));
    CF_GUARD(push(a, "--state_dir=%s/services", st));
    CF_GUARD(push(a, "--listen.port=%u", port));
    CF_GUARD(push(a, "--tls.cert=%s/certs/%s.pem", st, svc));
    CF_GUARD(push(a, "--tls.key=%s/certs/%s.key", st, svc));
    CF_GUARD(push(a, "--tls.ca=%s/ca/ca.pem", st));
    if (strcmp(svc, "iam") != 0)
        CF_GUARD(push(a, "--iam.jwks=%s/.well-known/jwks.json", u->url_iam));
    if (hsm) {
        CF_GUARD(push(a, "--hsm.pin=@%s/secrets/%s.pin", st, svc));
        CF_GUARD(push(a, "--hsm.so_pin=@%s/secrets/%s.sopin", st, svc));
    }
    if (u->svc_audit_url && strcmp(svc, "audit") != 0)
        CF_GUARD(push(a, "--audit.url=%s", u->url_audit));
    return 0;
}

/* A cofferd option exists if `cofferd SERVICE --help` lists it. */
static bool cofferd_has(up_ctx *u, const char *svc, const char *needle)
{
    char bin[4096];
    cf_buf out;
    int st = 1;
    bool found = false;
    const char *argv[4] = {bin, svc, "--help", NULL};

    if (plat_bin(&u->p, bin, sizeof(bin), "cofferd") != 0)
        return false;
    cf_buf_init(&out, 1 << 18);
    if (run_capture(argv, &out, &st, true) == 0 && st == 0 && out.len > 0)
        found = needle == NULL || strstr((const char *)out.data, needle) != NULL;
    cf_buf_free(&out);
    return found;
}

static int write_manifest(up_ctx *u)
{
    char bin[4096], launch[4096], sim[4096], path[4096], jpath[4096], mhex[97];
    cf_buf chain, dk, jb;
    int st = 1, rc;
    cf_measure_result m;
    cf_launch_config cfg = {.debug = false, .vmpl = 0};
    json_t *bm = NULL, *jobs_in = NULL, *jobs = NULL, *man = NULL;
    const char *jname;
    json_t *jv;
    char *js = NULL;

    CF_GUARD(plat_bin(&u->p, launch, sizeof(launch), "coffer-launch"));
    CF_GUARD(plat_bin(&u->p, bin, sizeof(bin), "coffer-tee"));
    CF_GUARD(cf_fmt(sim, sizeof(sim), "%s", u->p.state)); /* coffer-launch keeps its chain in STATE/sim */
    cf_buf_init(&chain, 1 << 16);
    cf_buf_init(&dk, 1024);
    cf_buf_init(&jb, 1 << 20);
    {
        const char *argv[] = {launch, "--state", sim, "--print-chain", "--log-level", "warn", NULL};
        CF_GUARD_OUT(run_capture(argv, &chain, &st, false));
        CF_ENSURE_OUT(st == 0 && chain.len > 0, cf_err_set(CF_E_INTERNAL, "coffer-launch --print-chain failed"));
    }
    {
        const char *argv[] = {bin, "demo-key", NULL};
        CF_GUARD_OUT(run_capture(argv, &dk, &st, false));
        CF_ENSURE_OUT(st == 0 && dk.len > 0, cf_err_set(CF_E_INTERNAL, "coffer-tee demo-key failed"));
        while (dk.len > 0 && (dk.data[dk.len - 1] == '\n' || dk.data[dk.len - 1] == ' '))
            dk.data[--dk.len] = 0;
        CF_GUARD_OUT(cf_fmt(u->dev_key, sizeof(u->dev_key), "%s", (const char *)dk.data));
    }
    rc = cf_measure(bin, u->bundle, &cfg, &m);
    if (rc != 0)
        goto out;
    cf_hex_encode(m.measurement, sizeof(m.measurement), mhex);
    CF_GUARD_OUT(cf_fmt(jpath, sizeof(jpath), "%s/coffer.json", u->bundle));
    CF_GUARD_OUT(cf_file_read(jpath, 1 << 20, &jb));
    CF_GUARD_OUT(cf_json_parse_object(jb.data, jb.len, 1 << 20, &bm));
    CF_GUARD_OUT(cf_json_get_obj(bm, "jobs", true, &jobs_in));
    jobs = json_array();
    CF_ENSURE_OUT(jobs != NULL, CF_E_NOMEM);
    json_object_foreach(jobs_in, jname, jv) {
        (void)jv;
        CF_ENSURE_OUT(json_array_append_new(jobs, json_string(jname)) == 0, CF_E_NOMEM);
    }
    man = json_pack("{s:i,s:s,s:{s:{s:[s,s,s,{s:s,s:s,s:s}],s:{s:{s:i,s:i,s:i,s:i},s:{s:i,s:i,s:i,s:i},"
                    "s:{s:i,s:i,s:i,s:i,s:i}}}},s:[{s:s,s:s,s:O,s:s,s:{s:{s:[s]}}}]}",
                    "version", 1, "name", "coffer-local (simulated secure processor)", "platforms", "sev-snp",
                    "roots", "amd:milan", "amd:genoa", "amd:turin", "name", "coffer-sim", "product", "milan",
                    "chain", (const char *)chain.data, "min_tcb", "milan", "bootloader", 0, "tee", 0, "snp", 0,
                    "microcode", 0, "genoa", "bootloader", 0, "tee", 0, "snp", 0, "microcode", 0, "turin", "fmc", 0,
                    "bootloader", 0, "tee", 0, "snp", 0, "microcode", 0, "deployments", "name", DEMO_DEPLOYMENT,
                    "tenant", DEMO_TENANT, "jobs", jobs, "developer_key", u->dev_key, "platforms", "sev-snp",
                    "measurements", mhex);
    CF_ENSURE_OUT(man != NULL, cf_err_set(CF_E_INTERNAL, "cannot build the manifest"));
    js = json_dumps(man, JSON_INDENT(2) | JSON_SORT_KEYS);
    CF_ENSURE_OUT(js != NULL, CF_E_NOMEM);
    CF_GUARD_OUT(plat_path(&u->p, path, sizeof(path), "manifest.json"));
    CF_GUARD_OUT(cf_file_write_atomic(path, js, strlen(js), 0644));
    rc = 0;
out:
    free(js);
    json_decref(man);
    json_decref(jobs);
    json_decref(bm);
    cf_buf_free(&chain);
    cf_buf_free(&dk);
    cf_buf_free(&jb);
    return rc;
}

static int bootstrap_admin(up_ctx *u, bool *ret_created)
{
    char key[256];
    struct argv_b a;
    cf_buf out;
    json_t *o = NULL;
    const char *k = NULL;
    int st = 1, rc;

    *ret_created = false;
    if (plat_read_secret(&u->p, "admin.key", key, sizeof(key)) == 0) {
        cf_wipe(key, sizeof(key));
        return 0;
    }
    CF_GUARD(service_argv(u, &a, "iam", u->port_iam, true));
    CF_GUARD(push(&a, "--bootstrap-admin"));
    CF_GUARD(push(&a, "--log.level=error"));
    cf_buf_init_secret(&out, 1 << 16);
    rc = run_capture(a.v, &out, &st, false);
    if (rc == 0 && st != 0)
        rc = cf_err_set(CF_E_INTERNAL, "cofferd iam --bootstrap-admin failed (exit %d)", st);
    if (rc == 0)
        rc = cf_json_parse_object(out.data, out.len, 1 << 16, &o);
    if (rc == 0)
        rc = cf_json_get_str(o, "api_key", true, 200, &k);
    if (rc == 0)
        rc = plat_write_secret(&u->p, "admin.key", k);
    if (rc == 0)
        *ret_created = true;
    json_decref(o);
    cf_buf_free(&out);
    return rc;
}

/* An access token for the API key in secrets/<keyfile> (tenant may be NULL). */
static int token_for(up_ctx *u, const char *keyfile, const char *tenant, char *tok, size_t size)
{
    char key[256], url[128];
    json_t *body, *resp = NULL;
    long status = 0;
    const char *t = NULL;
    int rc;

    CF_GUARD(plat_read_secret(&u->p, keyfile, key, sizeof(key)));
    CF_GUARD(cf_fmt(url, sizeof(url), "%s/v1/iam/token", u->url_iam));
    body = tenant ? json_pack("{s:s,s:s}", "api_key", key, "tenant", tenant) : json_pack("{s:s}", "api_key", key);
    cf_wipe(key, sizeof(key));
    CF_ENSURE(body != NULL, CF_E_NOMEM);
    rc = plat_call(&u->p, "POST", url, NULL, body, &status, &resp);
    json_decref(body);
    if (rc == 0 && status != 200)
        rc = cf_err_set(CF_E_UNAUTHENTICATED, "IAM refused the %s key (HTTP %ld)", keyfile, status);
    if (rc == 0)
        rc = cf_json_get_str(resp, "access_token", true, size - 1, &t);
    if (rc == 0)
        rc = cf_fmt(tok, size, "%s", t);
    json_decref(resp);
    return rc;
}

static int api(up_ctx *u, const char *method, const char *base, const char *path, const char *tok, json_t *body,
               long want, json_t **ret)
{
    char url[512];
    long status = 0;
    json_t *resp = NULL;
    int rc;

    CF_GUARD(cf_fmt(url, sizeof(url), "%s%s", base, path));
    rc = plat_call(&u->p, method, url, tok, body, &status, &resp);
    json_decref(body);
    if (rc == 0 && status != want && !(want == 201 && status == 200)) {
        json_t *e = resp ? json_object_get(resp, "error") : NULL;
        const char *m = e ? json_string_value(json_object_get(e, "message")) : NULL;
        rc = cf_err_set(status == 409 ? CF_E_EXISTS : CF_E_HTTP, "%s %s: HTTP %ld %s", method, path, status,
                        m ? m : "");
    }
    if (rc == 0 && ret != NULL)
        *ret = resp;
    else
        json_decref(resp);
    return rc;
}

/* Demo tenant, a client principal and its API key (once). */
static int demo_tenant(up_ctx *u)
{
    char tok[16384], key[256], path[256];
    json_t *r = NULL;
    const char *pid = NULL, *k = NULL;
    int rc;

    if (plat_read_secret(&u->p, "demo-client.key", key, sizeof(key)) == 0) {
        cf_wipe(key, sizeof(key));
        return 0;
    }
    CF_GUARD(token_for(u, "admin.key", NULL, tok, sizeof(tok)));
    rc = api(u, "POST", u->url_iam, "/v1/iam/tenants", tok,
             json_pack("{s:s,s:s}", "id", DEMO_TENANT, "name", "Demo tenant"), 201, NULL);
    if (rc != 0 && rc != CF_E_EXISTS)
        return rc;
    CF_GUARD(api(u, "POST", u->url_iam, "/v1/iam/tenants/" DEMO_TENANT "/principals", tok,
                 json_pack("{s:s,s:s,s:[s]}", "kind", "client", "name", "demo-client", "roles", "client"), 201, &r));
    rc = cf_json_get_str(r, "id", true, 128, &pid);
    if (rc == 0)
        rc = cf_fmt(path, sizeof(path), "/v1/iam/principals/%s/api-keys", pid);
    json_decref(r);
    r = NULL;
    CF_GUARD(rc);
    CF_GUARD(api(u, "POST", u->url_iam, path, tok, json_object(), 201, &r));
    rc = cf_json_get_str(r, "api_key", true, 200, &k);
    if (rc == 0)
        rc = plat_write_secret(&u->p, "demo-client.key", k);
    json_decref(r);
    cf_wipe(tok, sizeof(tok));
    return rc;
}

static int fetch_release_key(up_ctx *u)
{
    json_t *r = NULL;
    const char *k = NULL;
    int rc;

    CF_GUARD(api(u, "GET", u->url_kms, "/v1/kms/release-key", NULL, NULL, 200, &r));
    rc = cf_json_get_str(r, "x25519", true, 60, &k);
    if (rc == 0)
        rc = cf_fmt(u->release_key, sizeof(u->release_key), "%s", k);
    json_decref(r);
    return rc;
}

static int save_attest_jwks(up_ctx *u)
{
    json_t *r = NULL;
    char path[4096], *js;
    int rc;

    CF_GUARD(api(u, "GET", u->url_attest, "/.well-known/jwks.json", NULL, NULL, 200, &r));
    js = cf_json_dump(r);
    json_decref(r);
    CF_ENSURE(js != NULL, CF_E_NOMEM);
    rc = plat_path(&u->p, path, sizeof(path), "attest-jwks.json");
    if (rc == 0)
        rc = cf_file_write_atomic(path, js, strlen(js), 0644);
    free(js);
    return rc;
}

/* Before every (re)start of a TEE: a fresh single-use join token. */
static up_ctx *g_up;
static const char *const services[] = {"iam", "kms", "attest", "audit", "gateway", NULL};

static int tee_before_start(void *platform, void *child)
{
    plat_child *c = child;
    char tok[16384], name[64];
    json_t *r = NULL;
    const char *jt = NULL;
    int rc;

    (void)platform;
    CF_GUARD(token_for(g_up, "admin.key", NULL, tok, sizeof(tok)));
    rc = api(g_up, "POST", g_up->url_kms, "/v1/registry/join-tokens", tok,
             json_pack("{s:s,s:s,s:i,s:i}", "tenant", DEMO_TENANT, "deployment", DEMO_DEPLOYMENT, "ttl", 600,
                       "uses", 1),
             201, &r);
    cf_wipe(tok, sizeof(tok));
    if (rc == 0)
        rc = cf_json_get_str(r, "token", true, 256, &jt);
    if (rc == 0)
        rc = cf_fmt(name, sizeof(name), "join-%s", c->name);
    if (rc == 0)
        rc = plat_write_secret(&g_up->p, name, jt);
    json_decref(r);
    return rc;
}

static int write_client_env(up_ctx *u)
{
    char path[4096], key[256], body[8192];
    int rc;

    CF_GUARD(plat_read_secret(&u->p, "demo-client.key", key, sizeof(key)));
    rc = cf_fmt(body, sizeof(body),
                "# Written by coffer up: settings for the coffer CLI and libcoffer (set -a; . this file; set +a)\n"
                "COFFER_GATEWAY_URL=%s\nCOFFER_TENANT_ID=%s\nCOFFER_API_KEY=%s\nCOFFER_MANIFEST=%s/manifest.json\n"
                "COFFER_CA=%s/ca/ca.pem\nCOFFER_ATTESTATION_JWKS=%s/attest-jwks.json\nCOFFER_KMS_RELEASE_KEY=%s\n"
                "COFFER_CLIENT_KEY=%s/client/demo-client.key\nCOFFER_STATE=%s\n",
                u->url_gw, DEMO_TENANT, key, u->p.state, u->p.state, u->p.state, u->release_key, u->p.state,
                u->p.state);
    cf_wipe(key, sizeof(key));
    if (rc == 0)
        rc = plat_path(&u->p, path, sizeof(path), "client.env");
    if (rc == 0)
        rc = cf_file_write_atomic(path, body, strlen(body), 0600);
    cf_wipe(body, sizeof(body));
    return rc;
}

static int add_and_start(up_ctx *u, const char *name, const char *const *argv, const char *health, unsigned wait_ms)
{
    int i = plat_add(&u->p, name, argv, health);
    int rc;

    if (i < 0)
        return i;
    if (strncmp(name, "tee", 3) == 0)
        u->p.children[i].before_start = tee_before_start;
    rc = plat_start(&u->p, (size_t)i);
    if (rc == 0)
        rc = plat_wait_healthy(&u->p, (size_t)i, wait_ms);
    if (rc != 0)
        return fail(rc, name);
    printf("  %-8s up (pid %d)\n", name, (int)u->p.children[i].pid);
    fflush(stdout);
    return 0;
}

/* First-run initialisation (idempotent): state directory, internal CA and service
 * certificates, ports, HSM PINs, manifest, bootstrap platform admin. */
static int up_prepare(up_ctx *u, const char *state, const char *bundle, bool *ret_created)
{
    char path[4096];
    int rc;

    if ((rc = plat_init(&u->p, state)) != 0)
        return fail(rc, "state directory");
    if (bundle == NULL) {
        if ((rc = plat_bin(&u->p, u->bundle, sizeof(u->bundle), "demo-bundle")) != 0)
            return rc;
    } else if (realpath(bundle, u->bundle) == NULL) {
        return cf_err_set(CF_E_NOT_FOUND, "bundle %s not found", bundle);
    }
    CF_GUARD(plat_path(&u->p, path, sizeof(path), "client.env"));
    (void)unlink(path); /* written again only once the platform is ready */
    if ((rc = plat_pki(&u->p, services)) != 0 || (rc = load_or_pick_ports(u)) != 0)
        return rc;
    for (const char *const *s = services; *s; s++) {
        char name[64], p2[4096];
        if (cf_fmt(name, sizeof(name), "%s.pin", *s) != 0 || plat_secret(&u->p, name, p2, sizeof(p2)) != 0 ||
            cf_fmt(name, sizeof(name), "%s.sopin", *s) != 0 || plat_secret(&u->p, name, p2, sizeof(p2)) != 0) {
            return CF_E_IO;
        }
    }
    CF_GUARD(cf_fmt(u->url_iam, sizeof(u->url_iam), "https://127.0.0.1:%u", u->port_iam));
    CF_GUARD(cf_fmt(u->url_kms, sizeof(u->url_kms), "https://127.0.0.1:%u", u->port_kms));
    CF_GUARD(cf_fmt(u->url_attest, sizeof(u->url_attest), "https://127.0.0.1:%u", u->port_attest));
    CF_GUARD(cf_fmt(u->url_audit, sizeof(u->url_audit), "https://127.0.0.1:%u", u->port_audit));
    CF_GUARD(cf_fmt(u->url_gw, sizeof(u->url_gw), "https://127.0.0.1:%u", u->port_gw));
    u->have_audit = cofferd_has(u, "audit", NULL);
    u->svc_audit_url = u->have_audit && cofferd_has(u, "kms", "audit.url");
    if ((rc = write_manifest(u)) != 0) {
        fail(rc, "manifest");
        return rc;
    }
    if ((rc = bootstrap_admin(u, ret_created)) != 0) {
        fail(rc, "bootstrap admin");
        return rc;
    }

    return 0;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: coffer up [--state DIR] [--bundle DIR] [--tees N] [--reattest-interval DURATION]\n"
               "\n"
               "Starts the whole platform on this machine: IAM, KMS, audit, attestation, N simulated TEEs\n"
               "(default 2) and the gateway, each as its own process on 127.0.0.1. The first run initialises\n"
               "DIR (default ./var). Writes DIR/client.env when ready. Ctrl-C stops everything.\n");
}

int cli_up(int argc, char **argv)
{
    static const struct option opts[] = {{"state", required_argument, NULL, 's'},
                                         {"bundle", required_argument, NULL, 'b'},
                                         {"tees", required_argument, NULL, 't'},
                                         {"reattest-interval", required_argument, NULL, 'r'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    static up_ctx u;
    const char *state = "var", *bundle = NULL;
    char health[256];
    struct argv_b a;
    uint64_t v;
    int c, rc;
    bool created = false;
    sigset_t set;

    memset(&u, 0, sizeof(u));
    g_up = &u;
    u.ntees = 2;
    memcpy(u.reattest, "60s", 4);
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 's': state = optarg; break;
        case 'b': bundle = optarg; break;
        case 't':
            if (cf_parse_u64(optarg, MAX_TEES, &v) != 0 || v == 0) {
                fprintf(stderr, "coffer up: --tees must be 1..%d\n", MAX_TEES);
                return CLI_EXIT_USAGE;
            }
            u.ntees = (unsigned)v;
            break;
        case 'r':
            if (cf_parse_duration(optarg, 3600, &v) != 0 || v == 0 ||
                cf_fmt(u.reattest, sizeof(u.reattest), "%llus", (unsigned long long)v) != 0) {
                fprintf(stderr, "coffer up: --reattest-interval must be a duration like 60s\n");
                return CLI_EXIT_USAGE;
            }
            break;
        case 'h': usage(stdout); return CLI_EXIT_OK;
        default: usage(stderr); return CLI_EXIT_USAGE;
        }
    }
    if (optind != argc) {
        usage(stderr);
        return CLI_EXIT_USAGE;
    }
    /* Signals are handled by the supervisor loop; block them before any child exists. */
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGCHLD);
    sigprocmask(SIG_BLOCK, &set, NULL);
    cf_log_set_service("coffer-up");

    printf("Coffer: starting the platform in %s\n", state);
    fflush(stdout);
    if ((rc = up_prepare(&u, state, bundle, &created)) != 0)
        goto fatal;
    if (created)
        printf("  initialised %s (platform admin API key in %s/secrets/admin.key)\n", u.p.state, u.p.state);

    /* IAM first: every other service verifies tokens against its JWKS. */
    CF_GUARD_OUT(service_argv(&u, &a, "iam", u.port_iam, true));
    CF_GUARD_OUT(cf_fmt(health, sizeof(health), "%s/.well-known/jwks.json", u.url_iam));
    if ((rc = add_and_start(&u, "iam", a.v, health, 60000)) != 0)
        goto fatal;
    if ((rc = demo_tenant(&u)) != 0) {
        fail(rc, "demo tenant");
        goto fatal;
    }
    if (u.have_audit) {
        CF_GUARD_OUT(service_argv(&u, &a, "audit", u.port_audit, true));
        CF_GUARD_OUT(cf_fmt(health, sizeof(health), "%s/v1/audit/public-key", u.url_audit));
        if ((rc = add_and_start(&u, "audit", a.v, health, 60000)) != 0)
            goto fatal;
    }
    CF_GUARD_OUT(service_argv(&u, &a, "kms", u.port_kms, true));
    CF_GUARD_OUT(push(&a, "--manifest=%s/manifest.json", u.p.state));
    CF_GUARD_OUT(push(&a, "--reattest.interval=%s", u.reattest));
    CF_GUARD_OUT(cf_fmt(health, sizeof(health), "%s/v1/kms/release-key", u.url_kms));
    if ((rc = add_and_start(&u, "kms", a.v, health, 60000)) != 0)
        goto fatal;
    if ((rc = fetch_release_key(&u)) != 0) {
        fail(rc, "KMS release key");
        goto fatal;
    }
    CF_GUARD_OUT(service_argv(&u, &a, "attest", u.port_attest, true));
    CF_GUARD_OUT(push(&a, "--manifest=%s/manifest.json", u.p.state));
    CF_GUARD_OUT(push(&a, "--kms.url=%s", u.url_kms));
    CF_GUARD_OUT(push(&a, "--reattest.interval=%s", u.reattest));
    CF_GUARD_OUT(cf_fmt(health, sizeof(health), "%s/.well-known/jwks.json", u.url_attest));
    if ((rc = add_and_start(&u, "attest", a.v, health, 60000)) != 0)
        goto fatal;
    if ((rc = save_attest_jwks(&u)) != 0) {
        fail(rc, "attestation JWKS");
        goto fatal;
    }
    for (unsigned i = 0; i < u.ntees; i++) {
        char name[16];
        CF_GUARD_OUT(cf_fmt(name, sizeof(name), "tee%u", i + 1));
        a.n = 0;
        CF_GUARD_OUT(push(&a, "%s/coffer-launch", u.p.bindir));
        CF_GUARD_OUT(push(&a, "--state"));
        CF_GUARD_OUT(push(&a, "%s", u.p.state)); /* the simulated chain lives in STATE/sim */
        CF_GUARD_OUT(push(&a, "--bundle"));
        CF_GUARD_OUT(push(&a, "%s", u.bundle));
        CF_GUARD_OUT(push(&a, "--"));
        CF_GUARD_OUT(push(&a, "%s/coffer-tee", u.p.bindir));
        CF_GUARD_OUT(push(&a, "--kms.url=%s", u.url_kms));
        CF_GUARD_OUT(push(&a, "--kms.ca=%s/ca/ca.pem", u.p.state));
        CF_GUARD_OUT(push(&a, "--kms.release_key=%s", u.release_key));
        CF_GUARD_OUT(push(&a, "--join_token=@%s/secrets/join-%s", u.p.state, name));
        CF_GUARD_OUT(push(&a, "--bundle=%s", u.bundle));
        CF_GUARD_OUT(push(&a, "--deployment.name=%s", DEMO_DEPLOYMENT));
        CF_GUARD_OUT(push(&a, "--deployment.developer_key=%s", u.dev_key));
        CF_GUARD_OUT(push(&a, "--listen.port=%u", u.port_tee[i]));
        CF_GUARD_OUT(cf_fmt(health, sizeof(health), "http://127.0.0.1:%u/healthz", u.port_tee[i]));
        if ((rc = add_and_start(&u, name, a.v, health, 90000)) != 0)
            goto fatal;
    }
    CF_GUARD_OUT(service_argv(&u, &a, "gateway", u.port_gw, false));
    CF_GUARD_OUT(push(&a, "--manifest=%s/manifest.json", u.p.state));
    CF_GUARD_OUT(push(&a, "--iam.url=%s", u.url_iam));
    CF_GUARD_OUT(push(&a, "--kms.url=%s", u.url_kms));
    CF_GUARD_OUT(push(&a, "--attest.url=%s", u.url_attest));
    if (u.have_audit && !u.svc_audit_url) /* otherwise service_argv already passed it */
        CF_GUARD_OUT(push(&a, "--audit.url=%s", u.url_audit));
    CF_GUARD_OUT(push(&a, "--tls.client_auth=off"));
    CF_GUARD_OUT(cf_fmt(health, sizeof(health), "%s/healthz", u.url_gw));
    if ((rc = add_and_start(&u, "gateway", a.v, health, 60000)) != 0)
        goto fatal;
    if ((rc = write_client_env(&u)) != 0) {
        fail(rc, "client.env");
        goto fatal;
    }
    printf("\nCoffer is running.\n"
           "  Gateway:        %s\n"
           "  Demo tenant:    %s (client API key in %s/secrets/demo-client.key)\n"
           "  Platform admin: API key in %s/secrets/admin.key (tenant platform)\n"
           "  Logs:           %s/logs/\n\n"
           "Try it (in another shell):\n"
           "  set -a; . %s/client.env; set +a\n"
           "  %s/coffer request --job sha256 --data 'hello, enclave'\n"
           "  %s/coffer attestation verify --deployment %s\n\n"
           "Ctrl-C stops everything.\n",
           u.url_gw, DEMO_TENANT, u.p.state, u.p.state, u.p.state, u.p.state, u.p.bindir, u.p.bindir,
           DEMO_DEPLOYMENT);
    fflush(stdout);
    rc = plat_supervise(&u.p);
    plat_free(&u.p);
    return rc == 0 ? CLI_EXIT_OK : CLI_EXIT_SERVICE;
fatal:
out:
    fprintf(stderr, "coffer up: start-up failed%s%s; stopping what was started (logs in %s/logs/)\n",
            rc ? ": " : "", rc ? cf_err_detail(rc) : "", u.p.state);
    plat_stop_all(&u.p, 5000);
    plat_free(&u.p);
    return CLI_EXIT_SERVICE;
}

/*
 * coffer init [--state DIR] [--bundle DIR]: the first-run initialisation of
 * `coffer up` alone — internal CA and certificates, HSM PINs, ports, manifest and
 * the first platform admin, whose API key is printed once (and kept, 0600, in
 * DIR/secrets/admin.key for `coffer up`, which needs it to create join tokens).
 */
int cli_init(int argc, char **argv)
{
    static const struct option opts[] = {{"state", required_argument, NULL, 's'},
                                         {"bundle", required_argument, NULL, 'b'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    static up_ctx u;
    const char *state = "var", *bundle = NULL;
    char key[256];
    bool created = false;
    int c, rc;

    memset(&u, 0, sizeof(u));
    g_up = &u;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 's': state = optarg; break;
        case 'b': bundle = optarg; break;
        case 'h':
            printf("usage: coffer init [--state DIR] [--bundle DIR]\n\n"
                   "Initialises DIR (default ./var) for `coffer up`: internal CA and service certificates,\n"
                   "HSM PINs, ports, the manifest (AMD roots + the simulated root, demo deployment) and the\n"
                   "first platform admin, whose API key is printed once. Running it again changes nothing.\n");
            return CLI_EXIT_OK;
        default: return CLI_EXIT_USAGE;
        }
    }
    if (optind != argc) {
        fprintf(stderr, "usage: coffer init [--state DIR] [--bundle DIR]\n");
        return CLI_EXIT_USAGE;
    }
    rc = up_prepare(&u, state, bundle, &created);
    if (rc != 0) {
        fprintf(stderr, "coffer init: %s\n", cf_err_detail(rc));
        return CLI_EXIT_SERVICE;
    }
    printf("Coffer state directory: %s\n  manifest: %s/manifest.json\n  internal CA: %s/ca/ca.pem\n", u.p.state,
           u.p.state, u.p.state);
    if (created && plat_read_secret(&u.p, "admin.key", key, sizeof(key)) == 0) {
        printf("\nFirst platform admin created. Its API key (shown once; also kept in %s/secrets/admin.key, mode 0600):\n"
               "  %s\n",
               u.p.state, key);
        cf_wipe(key, sizeof(key));
    } else {
        printf("\nAlready initialised: the platform admin's API key is in %s/secrets/admin.key\n", u.p.state);
    }
    printf("\nStart the platform with: coffer up --state %s\n", u.p.state);
    return CLI_EXIT_OK;
}
