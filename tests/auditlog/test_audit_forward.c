/*
 * Forwarder: service spool -> audit log, end to end. Sends that fail before
 * or after the log stored the batch, restarts, kill -9 of the forwarding
 * process: nothing acknowledged is lost, nothing is logged twice.
 */
#include "audit_testutil.h"

#include "auditlog/forward.h"
#include "auditlog/log.h"
#include "auditlog/verify.h"
#include "base/limits.h"
#include "spool/spool.h"
#include "test.h"

static cf_key *g_key, *g_pub;

/* An event as a service would spool it: cf_spool_append adds event_id and ts. */
static int spool_event(cf_spool *sp, unsigned n, const char *details_pad,
                       char id[CF_SPOOL_EVENT_ID_LEN + 1])
{
    json_t *ev = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:{s:i,s:s}}", "service", "gateway",
                           "actor", "spiffe://coffer/gateway", "tenant", "acme", "action",
                           "gateway.job.submit", "resource", "job/echo", "outcome", "success",
                           "request_id", "r", "details", "n", (json_int_t)n, "pad",
                           details_pad != NULL ? details_pad : "");
    int rc;
    if (ev == NULL)
        return CF_E_NOMEM;
    rc = cf_spool_append(sp, ev, id);
    json_decref(ev);
    return rc;
}

struct flaky {
    cf_audit_log *log;
    int calls;
    int fail_before_every; /* every k-th call fails before storing (0 = never) */
    int fail_after_every;  /* every k-th call stores, then reports failure (lost ack) */
    size_t max_batch_bytes;
    size_t max_batch_events;
};

static int flaky_send(void *arg, cf_audit_event *const *events, size_t n)
{
    struct flaky *f = arg;
    cf_buf body;
    int rc;

    f->calls++;
    /* every batch must fit one request body */
    cf_buf_init(&body, CF_AUDIT_MAX_BATCH_BYTES);
    rc = cf_audit_batch_encode(events, n, &body);
    if (rc == 0 && body.len > f->max_batch_bytes)
        f->max_batch_bytes = body.len;
    cf_buf_free(&body);
    if (rc != 0)
        return rc;
    if (n > f->max_batch_events)
        f->max_batch_events = n;
    if (f->fail_before_every > 0 && f->calls % f->fail_before_every == 0)
        return cf_err_set(CF_E_UNAVAILABLE, "audit service unreachable");
    rc = cf_audit_append(f->log, events, n, NULL);
    if (rc == 0 && f->fail_after_every > 0 && f->calls % f->fail_after_every == 0)
        return cf_err_set(CF_E_TIMEOUT, "response lost");
    return rc;
}

static int open_file_log(const char *db, cf_store **s, cf_audit_log **l)
{
    char dsn[PATH_MAX + 16];
    tu_fmt(dsn, sizeof(dsn), "sqlite:%s", db);
    int rc;

    CF_GUARD(cf_store_open(dsn, s));
    rc = cf_audit_log_open(*s, l);
    if (rc != 0) {
        cf_store_close(*s);
        *s = NULL;
    }
    return rc;
}

/* Every id is in the log exactly once and the log holds nothing else. */
static int check_log_holds(cf_audit_log *l, char (*ids)[CF_SPOOL_EVENT_ID_LEN + 1], size_t n)
{
    uint64_t size;
    CF_GUARD(cf_audit_tree_size(l, &size));
    if (size != n) {
        fprintf(stderr, "  log holds %llu entries, expected %zu\n", (unsigned long long)size, n);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        cf_audit_entry e;
        int rc = cf_audit_find_event(l, ids[i], &e);
        if (rc != 0) {
            fprintf(stderr, "  event %zu (%s) lost\n", i, ids[i]);
            return rc;
        }
        cf_audit_entry_clear(&e);
    }
    return 0;
}

static void test_flaky_delivery(void)
{
    enum { N = 250 };
    static char ids[N][CF_SPOOL_EVENT_ID_LEN + 1];
    char dir[PATH_MAX], db[PATH_MAX];
    cf_spool *sp = NULL;
    cf_store *s = NULL;
    cf_audit_log *l = NULL;
    struct flaky f;
    cf_audit_drain_stats st;
    cf_audit_report rep;
    cf_audit_sth h;
    int failures = 0, rounds = 0;

    tu_path(dir, sizeof(dir), "spool");
    tu_path(db, sizeof(db), "audit.db");
    T_OK(cf_spool_open(dir, &sp));
    T_OK(open_file_log(db, &s, &l));
    memset(&f, 0, sizeof(f));
    f.log = l;
    f.fail_before_every = 3;
    f.fail_after_every = 4;
    for (unsigned i = 0; i < N; i++) {
        T_OK(spool_event(sp, i, NULL, ids[i]));
        if (i % 60 == 59) { /* drain now and then while the service keeps logging */
            if (cf_audit_drain(sp, 16, flaky_send, &f, &st) != 0)
                failures++;
        }
    }
    while (cf_spool_pending_count(sp) > 0 && rounds++ < 1000) {
        if (cf_audit_drain(sp, 16, flaky_send, &f, &st) != 0) {
            failures++;
            if (rounds % 5 == 0) { /* and the service restarts now and then */
                cf_spool_close(sp);
                sp = NULL;
                T_OK(cf_spool_open(dir, &sp));
            }
        }
    }
    T_EQ(cf_spool_pending_count(sp), 0);
    T_ASSERT(failures > 5);
    T_ASSERT(f.max_batch_events <= 16);
    T_OK(check_log_holds(l, ids, N));
    /* a sound tree, whatever the resends */
    T_OK(cf_audit_sth_create(l, g_key, &h));
    T_OK(cf_audit_verify_log(l, g_pub, NULL, &rep));
    cf_audit_report_free(&rep);
    /* an empty spool drains to nothing */
    T_OK(cf_audit_drain(sp, 16, flaky_send, &f, &st));
    T_EQ(st.events, 0);
    T_ERR(cf_audit_drain(sp, 0, flaky_send, &f, &st), CF_E_RANGE);
    T_ERR(cf_audit_drain(sp, CF_AUDIT_MAX_BATCH + 1, flaky_send, &f, &st), CF_E_RANGE);
    cf_spool_close(sp);
    cf_audit_log_close(l);
    cf_store_close(s);
}

/* Batches stay within CF_AUDIT_MAX_BATCH_BYTES however big the events are. */
static void test_batch_bytes(void)
{
    enum { N = 300 };
    static char ids[N][CF_SPOOL_EVENT_ID_LEN + 1];
    char dir[PATH_MAX], db[PATH_MAX];
    char *pad = malloc(7001);
    cf_spool *sp = NULL;
    cf_store *s = NULL;
    cf_audit_log *l = NULL;
    struct flaky f;
    cf_audit_drain_stats st;

    memset(pad, 'p', 7000);
    pad[7000] = '\0';
    tu_path(dir, sizeof(dir), "spool");
    tu_path(db, sizeof(db), "audit.db");
    T_OK(cf_spool_open(dir, &sp));
    T_OK(open_file_log(db, &s, &l));
    for (unsigned i = 0; i < N; i++)
        T_OK(spool_event(sp, i, pad, ids[i]));
    memset(&f, 0, sizeof(f));
    f.log = l;
    T_OK(cf_audit_drain(sp, CF_AUDIT_MAX_BATCH, flaky_send, &f, &st));
    T_EQ(st.events, N);
    T_ASSERT(st.batches >= 3);
    T_ASSERT(f.max_batch_bytes <= CF_AUDIT_MAX_BATCH_BYTES);
    T_ASSERT(f.max_batch_bytes > CF_AUDIT_MAX_BATCH_BYTES - 8000);
    T_OK(check_log_holds(l, ids, N));
    free(pad);
    cf_spool_close(sp);
    cf_audit_log_close(l);
    cf_store_close(s);
}

/* An event the log would refuse stops the forwarder: not dropped, not skipped. */
static void test_invalid_event_blocks(void)
{
    char dir[PATH_MAX], db[PATH_MAX], id[CF_SPOOL_EVENT_ID_LEN + 1];
    cf_spool *sp = NULL;
    cf_store *s = NULL;
    cf_audit_log *l = NULL;
    struct flaky f;
    cf_audit_drain_stats st;
    json_t *bad;
    uint64_t size;
    int rc;

    tu_path(dir, sizeof(dir), "spool");
    tu_path(db, sizeof(db), "audit.db");
    T_OK(cf_spool_open(dir, &sp));
    T_OK(open_file_log(db, &s, &l));
    T_OK(spool_event(sp, 1, NULL, id));
    bad = json_pack("{s:s,s:s}", "service", "gateway", "action", "no.outcome");
    T_OK(cf_spool_append(sp, bad, id));
    json_decref(bad);
    T_OK(spool_event(sp, 3, NULL, id));
    memset(&f, 0, sizeof(f));
    f.log = l;
    rc = cf_audit_drain(sp, 10, flaky_send, &f, &st);
    T_ERR(rc, CF_E_PARSE);
    T_ASSERT_MSG(strstr(cf_err_detail(rc), "blocks the forwarder") != NULL, "%s",
                 cf_err_detail(rc));
    T_EQ(cf_spool_pending_count(sp), 3);
    T_EQ(f.calls, 0);
    T_OK(cf_audit_tree_size(l, &size));
    T_EQ(size, 0);
    cf_spool_close(sp);
    cf_audit_log_close(l);
    cf_store_close(s);
}

/* kill -9 of the forwarding process mid-run; a new one finishes the job. */
static void test_kill9_forwarder(void)
{
    enum { N = 400 };
    static char ids[N][CF_SPOOL_EVENT_ID_LEN + 1];
    char dir[PATH_MAX], db[PATH_MAX];
    cf_spool *sp = NULL;
    cf_store *s = NULL;
    cf_audit_log *l = NULL;
    struct flaky f;
    cf_audit_drain_stats st;
    int fds[2], status;
    pid_t pid;
    char c;

    tu_path(dir, sizeof(dir), "spool");
    tu_path(db, sizeof(db), "audit.db");
    T_OK(cf_spool_open(dir, &sp));
    for (unsigned i = 0; i < N; i++)
        T_OK(spool_event(sp, i, NULL, ids[i]));
    cf_spool_close(sp);
    sp = NULL;

    T_ASSERT(pipe(fds) == 0);
    pid = fork();
    T_ASSERT(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        /* Like a real forwarder, retry transient failures (a busy store while the
         * parent opens it) instead of giving up: the parent kills us regardless. */
        while (cf_spool_open(dir, &sp) != 0)
            tu_sleep_ms(10);
        while (open_file_log(db, &s, &l) != 0)
            tu_sleep_ms(10);
        memset(&f, 0, sizeof(f));
        f.log = l;
        /* one event per batch: many commits, so the kill lands inside one */
        for (;;) {
            if (cf_audit_drain(sp, 1, flaky_send, &f, &st) != 0) {
                tu_sleep_ms(10);
                continue;
            }
            if (write(fds[1], "x", 1) != 1)
                _exit(4);
            tu_sleep_ms(1000); /* done: wait to be killed */
        }
    }
    close(fds[1]);
    /* kill it once some batches are in (watching the log as a reader) */
    for (int i = 0; i < 10000; i++) {
        uint64_t size = 0;
        if (s == NULL && open_file_log(db, &s, &l) != 0) {
            cf_audit_log_close(l);
            cf_store_close(s);
            s = NULL;
            l = NULL;
        }
        if (l != NULL && cf_audit_tree_size(l, &size) == 0 && size >= 50)
            break;
        tu_sleep_ms(1);
    }
    T_ASSERT(kill(pid, SIGKILL) == 0);
    T_ASSERT(waitpid(pid, &status, 0) == pid);
    T_ASSERT(WIFSIGNALED(status));
    /* Usually it had not finished; on a slow machine it may have: what matters
     * is below (every event in the log exactly once after the restart). */
    if (read(fds[0], &c, 1) < 0)
        c = 0;
    close(fds[0]);
    T_ASSERT(l != NULL);

    /* the restarted forwarder (the spool lock died with the process) */
    T_OK(cf_spool_open(dir, &sp));
    T_ASSERT(cf_spool_pending_count(sp) > 0);
    memset(&f, 0, sizeof(f));
    f.log = l;
    T_OK(cf_audit_drain(sp, 50, flaky_send, &f, &st));
    T_EQ(cf_spool_pending_count(sp), 0);
    T_OK(check_log_holds(l, ids, N));
    cf_spool_close(sp);
    cf_audit_log_close(l);
    cf_store_close(s);
}

int main(void)
{
    if (tu_init("auditfwd") != 0 || cf_key_generate(CF_KEY_ED25519, &g_key) != 0 ||
        cf_key_public_only(g_key, &g_pub) != 0)
        return 1;
    T_RUN(test_flaky_delivery);
    T_RUN(test_batch_bytes);
    T_RUN(test_invalid_event_blocks);
    T_RUN(test_kill9_forwarder);
    tu_rm_tree(tu_tmp);
    cf_key_free(g_key);
    cf_key_free(g_pub);
    return t_done();
}
