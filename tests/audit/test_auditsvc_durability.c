/*
 * Durability of the audit path (DESIGN.md §10: a crash of any process loses no
 * acknowledged audit event):
 *
 *  - kill -9 of `cofferd audit`, three times, while a sender drains a spool of
 *    1500 events into it with cf_audit_drain over mTLS: after the restarts the
 *    spool is empty, every event the audit service acknowledged — in fact every
 *    spooled event — is in the log exactly once, and the whole log verifies
 *    (cf_audit_verify_log with the service's published key);
 *  - the svc forwarder: an in-process service (cf_svc "kms" with audit.url)
 *    spools events, the forwarder ships them; while the audit service is down
 *    they wait in the spool, and go out once it is back; its configuration
 *    errors (plain http, no certificate) are refused.
 * Every process is stopped by pid.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>

#include "auditlog/forward.h"
#include "auditlog/log.h"
#include "auditlog/verify.h"
#include "auditsvc_testutil.h"
#include "spool/spool.h"
#include "store/store.h"
#include "svc/svc.h"
#include "test.h"

#ifndef COFFERD_BIN
#define COFFERD_BIN ""
#endif

#define N_EVENTS 1500
#define N_FWD1 40
#define N_FWD2 20

static char g_dir[64];
static pid_t g_pid = -1;
static uint16_t g_port;
static char g_url[64];
static cf_key *g_pub;

static int free_port(uint16_t *ret)
{
    struct sockaddr_in a;
    socklen_t len = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0), rc = CF_E_IO;

    if (fd < 0)
        return CF_E_IO;
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 && getsockname(fd, (struct sockaddr *)&a, &len) == 0) {
        *ret = ntohs(a.sin_port);
        rc = 0;
    }
    close(fd);
    return rc;
}

/* Starts cofferd audit on g_port (retried for a while: the port may linger). */
static int start_service(void)
{
    char a[9][600], port_file[128], log[128];
    char *argv[16];
    uint16_t port = 0;
    int n = 0;

    at_fmt(port_file, sizeof(port_file), "%s/port", g_dir);
    at_fmt(log, sizeof(log), "%s/audit.log", g_dir);
    at_fmt(a[0], sizeof(a[0]), "--state_dir=%s/state", g_dir);
    at_fmt(a[1], sizeof(a[1]), "--port_file=%s", port_file);
    at_fmt(a[2], sizeof(a[2]), "--tls.cert=%s/audit.pem", g_dir);
    at_fmt(a[3], sizeof(a[3]), "--tls.key=%s/audit.key", g_dir);
    at_fmt(a[4], sizeof(a[4]), "--tls.ca=%s/ca.pem", g_dir);
    at_fmt(a[5], sizeof(a[5]), "--hsm.pin=audit-pin");
    at_fmt(a[6], sizeof(a[6]), "--hsm.so_pin=audit-so-pin");
    at_fmt(a[7], sizeof(a[7]), "--listen.port=%u", (unsigned)g_port);
    at_fmt(a[8], sizeof(a[8]), "--log.level=error");
    argv[n++] = (char *)(uintptr_t)COFFERD_BIN;
    argv[n++] = (char *)(uintptr_t)"audit";
    for (int i = 0; i < 9; i++)
        argv[n++] = a[i];
    argv[n] = NULL;
    for (int attempt = 0; attempt < 50; attempt++) {
        (void)unlink(port_file);
        g_pid = at_spawn(COFFERD_BIN, argv, log);
        CF_ENSURE(g_pid > 0, CF_E_IO);
        if (at_wait_port(port_file, g_pid, 60000, &port) == 0)
            return port == g_port ? 0 : CF_E_INTERNAL;
        at_stop(g_pid, SIGKILL);
        g_pid = -1;
        at_sleep_ms(100);
    }
    return CF_E_UNAVAILABLE;
}

/* Opens the service's SQLite store (the service must be stopped). */
static int open_log(cf_store **ret_s, cf_audit_log **ret_log)
{
    char dsn[160];

    at_fmt(dsn, sizeof(dsn), "sqlite:%s/state/audit/audit.db", g_dir);
    CF_GUARD(cf_store_open(dsn, ret_s));
    return cf_audit_log_open(*ret_s, ret_log);
}

/* Entries with this action, all pages. */
static int count_action(cf_audit_log *log, const char *action, size_t *ret)
{
    cf_audit_query q;
    size_t n = 0;
    bool more = true;

    memset(&q, 0, sizeof(q));
    q.action = action;
    q.limit = CF_AUDIT_MAX_PAGE;
    while (more) {
        cf_audit_page p;
        CF_GUARD(cf_audit_query_entries(log, &q, &p));
        n += p.n;
        more = p.more;
        if (p.n > 0) {
            q.has_after = true;
            q.after = p.items[p.n - 1].seq;
        }
        cf_audit_page_free(&p);
    }
    *ret = n;
    return 0;
}

static int verify_log(cf_audit_log *log)
{
    cf_audit_report rep;
    int rc;

    memset(&rep, 0, sizeof(rep));
    rc = cf_audit_verify_log(log, g_pub, NULL, &rep);
    for (size_t i = 0; i < rep.n; i++)
        fprintf(stderr, "  finding: %s\n", rep.findings[i].message);
    cf_audit_report_free(&rep);
    return rc;
}

/* ---- the sender: cf_audit_drain over mTLS, recording what was acknowledged ---- */

typedef struct {
    cf_spool *spool;
    cf_http_client *c;
    pthread_mutex_t mu;
    size_t acked, added, failures;
    bool stop;
} sender;

static int send_http(void *arg, cf_audit_event *const *evs, size_t n)
{
    sender *s = arg;
    cf_buf body;
    long st = 0;
    json_t *j = NULL;
    int rc;

    cf_buf_init(&body, CF_AUDIT_MAX_BATCH_BYTES);
    rc = cf_audit_batch_encode(evs, n, &body);
    if (rc == 0)
        rc = at_call(s->c, "POST", "/v1/audit/events", NULL, body.data, body.len, "application/json", &st, &j);
    cf_buf_free(&body);
    if (rc == 0 && (st != 200 || (size_t)json_integer_value(json_object_get(j, "accepted")) != n))
        rc = CF_E_HTTP;
    if (rc == 0) {
        pthread_mutex_lock(&s->mu);
        s->acked += n;
        s->added += (size_t)json_integer_value(json_object_get(j, "new"));
        pthread_mutex_unlock(&s->mu);
    }
    json_decref(j);
    return rc;
}

static void *sender_main(void *arg)
{
    sender *s = arg;

    for (;;) {
        bool stop;
        int rc = cf_audit_drain(s->spool, 10, send_http, s, NULL);
        pthread_mutex_lock(&s->mu);
        if (rc != 0)
            s->failures++;
        stop = s->stop;
        pthread_mutex_unlock(&s->mu);
        if (stop)
            break;
        at_sleep_ms(rc != 0 ? 30 : 5);
    }
    return NULL;
}

static size_t acked(sender *s)
{
    size_t n;

    pthread_mutex_lock(&s->mu);
    n = s->acked;
    pthread_mutex_unlock(&s->mu);
    return n;
}

/* ---- tests ---- */

static void test_setup(void)
{
    static const char *const names[] = {"audit", "kms", NULL};
    cf_http_client *c = NULL;
    json_t *j = NULL;
    long st = 0;
    cf_buf b;

    T_OK(at_pki(g_dir, names));
    T_OK(free_port(&g_port));
    T_OK(start_service());
    at_fmt(g_url, sizeof(g_url), "https://127.0.0.1:%u", (unsigned)g_port);
    T_OK(at_client(g_dir, g_url, NULL, &c));
    T_OK(at_call(c, "GET", "/v1/audit/public-key", NULL, NULL, 0, NULL, &st, &j));
    cf_http_client_free(c);
    T_EQ(st, 200);
    cf_buf_init(&b, 64);
    T_OK(cf_json_get_b64url(j, "public_key", true, 32, &b));
    json_decref(j);
    T_OK(cf_key_from_public(CF_KEY_ED25519, b.data, b.len, &g_pub));
    cf_buf_free(&b);
}

static void test_kill9_during_load(void)
{
    static const char *const tenants[] = {"acme", "globex", ""};
    static const size_t kill_at[] = {200, 600, 1000};
    char spool_dir[128];
    sender s;
    pthread_t th;
    cf_store *st = NULL;
    cf_audit_log *log = NULL;
    size_t n = 0;
    bool drained = false;

    memset(&s, 0, sizeof(s));
    pthread_mutex_init(&s.mu, NULL);
    at_fmt(spool_dir, sizeof(spool_dir), "%s/sender-spool", g_dir);
    T_OK(cf_spool_open(spool_dir, &s.spool));
    for (unsigned i = 0; i < N_EVENTS; i++) {
        cf_buf b;
        char id[33];
        json_t *ev = NULL;
        at_event_id("load", i, id);
        cf_buf_init(&b, 4096);
        T_OK(at_event(&b, id, "kms", tenants[i % 3], "test.load", i));
        T_OK(cf_json_parse_object(b.data, b.len, 4096, &ev));
        cf_buf_free(&b);
        T_OK(cf_spool_append(s.spool, ev, NULL));
        json_decref(ev);
    }
    T_EQ(cf_spool_pending_count(s.spool), N_EVENTS);
    T_OK(at_client(g_dir, g_url, "kms", &s.c));
    T_ASSERT(pthread_create(&th, NULL, sender_main, &s) == 0);
    for (size_t k = 0; k < CF_ARRAY_LEN(kill_at); k++) {
        for (int i = 0; i < 6000 && acked(&s) < kill_at[k]; i++)
            at_sleep_ms(5);
        T_ASSERT_MSG(acked(&s) >= kill_at[k], "sender stalled at %zu", acked(&s));
        T_ASSERT(at_stop(g_pid, SIGKILL) != -1);
        g_pid = -1;
        at_sleep_ms(50);
        T_OK(start_service());
    }
    for (int i = 0; i < 3000 && !drained; i++) { /* up to 30 s */
        drained = cf_spool_pending_count(s.spool) == 0;
        if (!drained)
            at_sleep_ms(10);
    }
    pthread_mutex_lock(&s.mu);
    s.stop = true;
    pthread_mutex_unlock(&s.mu);
    pthread_join(th, NULL);
    T_ASSERT_MSG(drained, "%zu events still pending", cf_spool_pending_count(s.spool));
    T_ASSERT(s.acked >= N_EVENTS);
    fprintf(stderr, "  %zu acknowledged (%zu added, %zu re-sent after a lost answer), %zu failed attempts\n",
            s.acked, s.added, s.acked - s.added, s.failures);
    /* a batch committed just before a kill is re-sent (its answer was lost) and
     * then acknowledged without being added again: added <= N, and the store
     * check below shows that nothing is missing */
    T_ASSERT(s.added <= N_EVENTS);
    T_ASSERT(s.failures > 0); /* the kills did hit the sender mid-stream */
    cf_http_client_free(s.c);
    cf_spool_close(s.spool);
    pthread_mutex_destroy(&s.mu);

    /* stop it cleanly and look at the store itself */
    T_ASSERT(WIFEXITED(at_stop(g_pid, SIGTERM)));
    g_pid = -1;
    T_OK(open_log(&st, &log));
    for (unsigned i = 0; i < N_EVENTS; i++) {
        cf_audit_entry e;
        char id[33];
        at_event_id("load", i, id);
        T_OK(cf_audit_find_event(log, id, &e));
        cf_audit_entry_clear(&e);
    }
    T_OK(count_action(log, "test.load", &n));
    T_EQ(n, N_EVENTS); /* exactly once each */
    T_OK(verify_log(log));
    cf_audit_log_close(log);
    cf_store_close(st);
    T_OK(start_service());
}

static cf_svc *g_svc;

static void *run_svc(void *arg)
{
    (void)arg;
    if (cf_svc_run(g_svc) != 0)
        fprintf(stderr, "cf_svc_run failed\n");
    return NULL;
}

/* The arguments of the in-process service: with or without its certificate. */
static int svc_args(char a[6][600], const char *url, bool cert)
{
    int n = 0;

    at_fmt(a[n++], 600, "--state_dir=%s/fwd", g_dir);
    at_fmt(a[n++], 600, "--tls.ca=%s/ca.pem", g_dir);
    at_fmt(a[n++], 600, "--audit.url=%s", url);
    at_fmt(a[n++], 600, "--log.level=error");
    if (cert) {
        at_fmt(a[n++], 600, "--tls.cert=%s/kms.pem", g_dir);
        at_fmt(a[n++], 600, "--tls.key=%s/kms.key", g_dir);
    }
    return n;
}

static bool wait_pending(size_t want, int timeout_ms)
{
    for (int t = 0; t < timeout_ms; t += 20) {
        if (cf_spool_pending_count(cf_svc_spool(g_svc)) == want)
            return true;
        at_sleep_ms(20);
    }
    return false;
}

static int spool_events(unsigned first, unsigned n)
{
    for (unsigned i = first; i < first + n; i++) {
        char res[32];
        at_fmt(res, sizeof(res), "thing/%u", i);
        CF_GUARD(cf_svc_audit(g_svc, NULL, NULL, "test.forward", i % 2 ? "acme" : NULL, res, "success",
                              json_pack("{s:i}", "i", (int)i)));
    }
    return 0;
}

static void test_svc_forwarder(void)
{
    char a[6][600], *argv[6];
    char http_url[64];
    cf_svc *bad = NULL;
    pthread_t th;
    cf_store *st = NULL;
    cf_audit_log *log = NULL;
    size_t n = 0;
    int argc;

    /* a URL that is not http(s) is refused; plain http or no certificate cannot
     * be forwarded: the service starts, without a forwarder */
    argc = svc_args(a, "ftp://127.0.0.1:1", true);
    for (int i = 0; i < argc; i++)
        argv[i] = a[i];
    T_ERR(cf_svc_init(&(cf_svc_def){.name = "kms"}, argc, argv, &bad), CF_E_CONFIG);
    T_ASSERT(bad == NULL);
    at_fmt(http_url, sizeof(http_url), "http://127.0.0.1:%u", (unsigned)g_port);
    argc = svc_args(a, http_url, true);
    for (int i = 0; i < argc; i++)
        argv[i] = a[i];
    T_OK(cf_svc_init(&(cf_svc_def){.name = "kms"}, argc, argv, &bad));
    cf_svc_free(bad);
    bad = NULL;

    argc = svc_args(a, g_url, true);
    for (int i = 0; i < argc; i++)
        argv[i] = a[i];
    T_OK(cf_svc_init(&(cf_svc_def){.name = "kms"}, argc, argv, &g_svc));
    T_OK(spool_events(0, N_FWD1));
    T_ASSERT(pthread_create(&th, NULL, run_svc, NULL) == 0);
    T_ASSERT_MSG(wait_pending(0, 20000), "forwarder did not ship (%zu pending)",
                 cf_spool_pending_count(cf_svc_spool(g_svc)));
    /* the audit service goes away: events wait in the spool */
    T_ASSERT(WIFEXITED(at_stop(g_pid, SIGTERM)));
    g_pid = -1;
    T_OK(spool_events(N_FWD1, N_FWD2));
    at_sleep_ms(1500);
    T_EQ(cf_spool_pending_count(cf_svc_spool(g_svc)), N_FWD2);
    /* ... and go out once it is back (retried with back-off) */
    T_OK(start_service());
    T_ASSERT_MSG(wait_pending(0, 30000), "forwarder did not resume (%zu pending)",
                 cf_spool_pending_count(cf_svc_spool(g_svc)));
    cf_svc_request_stop(g_svc);
    T_ASSERT(pthread_join(th, NULL) == 0);
    cf_svc_free(g_svc);
    g_svc = NULL;

    T_ASSERT(WIFEXITED(at_stop(g_pid, SIGTERM)));
    g_pid = -1;
    T_OK(open_log(&st, &log));
    T_OK(count_action(log, "test.forward", &n));
    T_EQ(n, N_FWD1 + N_FWD2);
    T_OK(verify_log(log));
    cf_audit_log_close(log);
    cf_store_close(st);
}

int main(void)
{
    if (COFFERD_BIN[0] == '\0' || cf_fmt(g_dir, sizeof(g_dir), "/tmp/coffer-auditdur-XXXXXX") != 0 ||
        mkdtemp(g_dir) == NULL)
        return 1;
    T_RUN(test_setup);
    if (g_pid > 0)
        T_RUN(test_kill9_during_load);
    if (g_pid > 0)
        T_RUN(test_svc_forwarder);
    if (g_pid > 0)
        at_stop(g_pid, SIGTERM);
    cf_key_free(g_pub);
    if (getenv("COFFER_KEEP_TEST_DIR") == NULL)
        at_rm_tree(g_dir);
    return t_done();
}
