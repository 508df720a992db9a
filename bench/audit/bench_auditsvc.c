/*
 * The audit service over HTTPS, each figure next to the library doing the
 * same work in the same run on the same filesystem (bench/auditlog measures
 * the library against fdatasync, SHA-256 and SQLite point reads):
 *
 *   durable appends, batches of 1      POST /v1/audit/events over mTLS  vs  cf_audit_append
 *   durable appends, batches of 100    the same                          vs  cf_audit_append
 *   inclusion proofs                   GET /v1/audit/proof/inclusion     vs  cf_audit_inclusion_proof
 *
 * The service runs as a child process (cf_audit_main, the code of
 * `cofferd audit`) with TLS, a SoftHSM2 token and one HTTP client connection
 * (kept alive) doing one request at a time. About 15 s in total; files in
 * $TMPDIR (default /tmp).
 */
#include <signal.h>
#include <sys/wait.h>

#include "../../tests/audit/auditsvc_testutil.h"
#include "auditlog/event.h"
#include "auditlog/log.h"
#include "cmd/cofferd/services.h"

#define PHASE_S 2.0

static char g_dir[256];

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what, int rc)
{
    fprintf(stderr, "bench_auditsvc: %s failed: %s\n", what, cf_err_detail(rc));
    exit(1);
}

static const char *const g_tenants[] = {"acme", "globex", ""};

/* One HTTP batch of n events labelled label/first.. ; returns 0 on a 200. */
static int post_batch(cf_http_client *c, const char *label, unsigned first, unsigned n)
{
    cf_buf b;
    json_t *j = NULL;
    long st = 0;
    int rc;

    cf_buf_init(&b, CF_AUDIT_MAX_BATCH_BYTES);
    rc = at_batch(&b, label, first, n, "kms", g_tenants, 3);
    if (rc == 0)
        rc = at_call(c, "POST", "/v1/audit/events", NULL, b.data, b.len, "application/json", &st, &j);
    if (rc == 0 && st != 200)
        rc = cf_err_set(CF_E_HTTP, "HTTP %ld", st);
    json_decref(j);
    cf_buf_free(&b);
    return rc;
}

/* Events appended per second over HTTP with batches of n. */
static double http_appends(cf_http_client *c, const char *label, unsigned n, unsigned *ret_count)
{
    double t0 = now_s(), t;
    unsigned i = 0;

    do {
        int rc = post_batch(c, label, i, n);
        if (rc != 0)
            die("POST /v1/audit/events", rc);
        i += n;
        t = now_s() - t0;
    } while (t < PHASE_S);
    *ret_count = i;
    return (double)i / t;
}

/* The same through the library on its own store. */
static double lib_appends(cf_audit_log *log, const char *label, unsigned n)
{
    double t0 = now_s(), t;
    unsigned i = 0;

    do {
        cf_buf b;
        size_t got = 0;
        cf_audit_event **parsed = NULL;
        int rc;
        cf_buf_init(&b, CF_AUDIT_MAX_BATCH_BYTES);
        /* the same body the service parses, so both sides validate the same JSON */
        rc = at_batch(&b, label, i, n, "kms", g_tenants, 3);
        if (rc == 0)
            rc = cf_audit_batch_parse(b.data, b.len, &parsed, &got);
        if (rc == 0)
            rc = cf_audit_append(log, parsed, got, NULL);
        cf_audit_events_free(parsed, got);
        cf_buf_free(&b);
        if (rc != 0)
            die("cf_audit_append", rc);
        i += n;
        t = now_s() - t0;
    } while (t < PHASE_S);
    return (double)i / t;
}

static double http_proofs(cf_http_client *c, const char *tok, uint64_t size)
{
    double t0 = now_s(), t;
    unsigned i = 0;
    uint64_t x = 88172645463325252ull;

    do {
        char path[128];
        json_t *j = NULL;
        long st = 0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        at_fmt(path, sizeof(path), "/v1/audit/proof/inclusion?seq=%llu&tree_size=%llu",
               (unsigned long long)(x % size), (unsigned long long)size);
        if (at_call(c, "GET", path, tok, NULL, 0, NULL, &st, &j) != 0 || st != 200)
            die("GET /v1/audit/proof/inclusion", CF_E_HTTP);
        json_decref(j);
        i++;
        t = now_s() - t0;
    } while (t < PHASE_S);
    return (double)i / t;
}

static double lib_proofs(cf_audit_log *log, uint64_t size)
{
    double t0 = now_s(), t;
    unsigned i = 0;
    uint64_t x = 88172645463325252ull;

    do {
        cf_merkle_proof p;
        json_t *j = NULL;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        if (cf_audit_inclusion_proof(log, x % size, size, &p) != 0 || cf_audit_proof_to_json(&p, &j) != 0)
            die("cf_audit_inclusion_proof", CF_E_INTERNAL);
        json_decref(j);
        i++;
        t = now_s() - t0;
    } while (t < PHASE_S);
    return (double)i / t;
}

int main(void)
{
    static const char *const names[] = {"audit", "kms", NULL};
    const char *tmp = getenv("TMPDIR");
    char a[10][600], *argv[12], port_file[300], log_path[300], url[64], dsn[320];
    cf_http_client *kms = NULL, *reader = NULL;
    cf_key *iam = NULL;
    cf_store *st = NULL;
    cf_audit_log *log = NULL;
    char *tok;
    uint16_t port = 0;
    unsigned n1 = 0, n100 = 0;
    double h1, l1, h100, l100, hp, lp;
    uint64_t size = 0, lsize = 0;
    pid_t pid;
    int rc, n = 0;

    at_fmt(g_dir, sizeof(g_dir), "%s/coffer-bench-auditsvc-XXXXXX", tmp != NULL && tmp[0] ? tmp : "/tmp");
    if (mkdtemp(g_dir) == NULL)
        die("mkdtemp", CF_E_IO);
    if ((rc = at_pki(g_dir, names)) != 0)
        die("pki", rc);
    if ((rc = cf_key_generate(CF_KEY_ED25519, &iam)) != 0)
        die("key", rc);
    at_fmt(a[0], sizeof(a[0]), "%s/jwks.json", g_dir);
    if ((rc = at_jwks_write(iam, a[0])) != 0)
        die("jwks", rc);
    tok = at_token(iam, "platform", "bench", CF_ROLE_AUDITOR);
    if (tok == NULL)
        die("token", CF_E_CRYPTO);

    at_fmt(port_file, sizeof(port_file), "%s/port", g_dir);
    at_fmt(log_path, sizeof(log_path), "%s/audit.log", g_dir);
    at_fmt(a[0], sizeof(a[0]), "--state_dir=%s/state", g_dir);
    at_fmt(a[1], sizeof(a[1]), "--port_file=%s", port_file);
    at_fmt(a[2], sizeof(a[2]), "--tls.cert=%s/audit.pem", g_dir);
    at_fmt(a[3], sizeof(a[3]), "--tls.key=%s/audit.key", g_dir);
    at_fmt(a[4], sizeof(a[4]), "--tls.ca=%s/ca.pem", g_dir);
    at_fmt(a[5], sizeof(a[5]), "--iam.jwks=%s/jwks.json", g_dir);
    at_fmt(a[6], sizeof(a[6]), "--hsm.pin=bench-pin");
    at_fmt(a[7], sizeof(a[7]), "--hsm.so_pin=bench-so-pin");
    at_fmt(a[8], sizeof(a[8]), "--audit.sth_interval=0");
    at_fmt(a[9], sizeof(a[9]), "--log.level=error");
    argv[n++] = (char *)(uintptr_t)"audit";
    for (int i = 0; i < 10; i++)
        argv[n++] = a[i];
    argv[n] = NULL;
    pid = fork();
    if (pid == 0)
        _exit(cf_audit_main(n, argv));
    if (pid < 0 || at_wait_port(port_file, pid, 60000, &port) != 0)
        die("starting the audit service", CF_E_UNAVAILABLE);
    at_fmt(url, sizeof(url), "https://127.0.0.1:%u", (unsigned)port);
    if (at_client(g_dir, url, "kms", &kms) != 0 || at_client(g_dir, url, NULL, &reader) != 0)
        die("client", CF_E_HTTP);
    if (post_batch(kms, "warm", 0, 10) != 0)
        die("warm-up", CF_E_HTTP);
    at_fmt(dsn, sizeof(dsn), "sqlite:%s/library.db", g_dir);
    if ((rc = cf_store_open(dsn, &st)) != 0 || (rc = cf_audit_log_open(st, &log)) != 0)
        die("library store", rc);

    h1 = http_appends(kms, "h1", 1, &n1);
    l1 = lib_appends(log, "l1", 1);
    h100 = http_appends(kms, "h100", 100, &n100);
    l100 = lib_appends(log, "l100", 100);
    if (cf_audit_tree_size(log, &lsize) != 0)
        die("tree size", CF_E_STORE);
    size = 10 + n1 + n100;
    if (lsize < size)
        size = lsize; /* both trees at least this large: the same proof lengths */
    hp = http_proofs(reader, tok, size);
    lp = lib_proofs(log, size);

    printf("audit service benchmark (HTTPS + mTLS, one connection, SQLite WAL synchronous=FULL, files in %s)\n",
           g_dir);
    printf("  durable appends, batch of 1:   HTTP %8.0f events/s   library (same run) %8.0f events/s   ratio %.2f\n",
           h1, l1, h1 / l1);
    printf("  durable appends, batch of 100: HTTP %8.0f events/s   library (same run) %8.0f events/s   ratio %.2f\n",
           h100, l100, h100 / l100);
    printf("  inclusion proofs (tree of %llu): HTTP %8.0f /s   library + JSON (same run) %8.0f /s   ratio %.2f\n",
           (unsigned long long)size, hp, lp, hp / lp);

    cf_audit_log_close(log);
    cf_store_close(st);
    cf_http_client_free(kms);
    cf_http_client_free(reader);
    free(tok);
    cf_key_free(iam);
    at_stop(pid, SIGTERM);
    at_rm_tree(g_dir);
    return 0;
}
