/*
 * The audit log over the store, on SQLite and on PostgreSQL (the same tests):
 * append, de-duplication, batch atomicity, append-only tables, tree heads,
 * proofs against an in-memory tree, scoped queries with paging, two
 * concurrent appending processes, and kill -9 during appends.
 */
#include "audit_testutil.h"

#include "auditlog/log.h"
#include "auditlog/verify.h"
#include "base/json.h"
#include "base/limits.h"
#include "merkle/merkle.h"
#include "test.h"

static cf_key *g_key, *g_pub;

static int open_log(cf_store **ret_s, cf_audit_log **ret_l, char *dsn, size_t dsn_size)
{
    char tmp[PATH_MAX + 128];
    if (dsn == NULL) {
        dsn = tmp;
        dsn_size = sizeof(tmp);
    }
    tu_fresh_dsn(dsn, dsn_size);
    CF_GUARD(cf_store_open(dsn, ret_s));
    return cf_audit_log_open(*ret_s, ret_l);
}

static void close_log(cf_store *s, cf_audit_log *l)
{
    cf_audit_log_close(l);
    cf_store_close(s);
}

/* In-memory reference over the stored entries' leaf hashes (for proofs). */
static uint8_t (*read_leaves(cf_audit_log *l, uint64_t n))[32]
{
    uint8_t(*leaves)[32] = calloc(n > 0 ? n : 1, 32);
    for (uint64_t i = 0; i < n; i++) {
        cf_audit_entry e;
        if (cf_audit_get_entry(l, i, &e) != 0)
            abort();
        if (cf_merkle_leaf_hash(e.entry, e.entry_len, leaves[i]) != 0)
            abort();
        cf_audit_entry_clear(&e);
    }
    return leaves;
}

static void test_append_basic(void)
{
    cf_store *s = NULL;
    cf_audit_log *l = NULL;
    cf_audit_append_result res;
    cf_audit_event **evs = tu_events(1, 0, 3);
    cf_audit_entry e;
    uint8_t root[32], want[32];
    uint64_t size = 99;
    uint8_t(*leaves)[32];
    cf_merkle_mem m;

    T_OK(open_log(&s, &l, NULL, 0));
    T_OK(cf_audit_tree_size(l, &size));
    T_EQ(size, 0);
    T_OK(cf_audit_root(l, 0, root));
    cf_merkle_empty_root(want);
    T_MEMEQ(root, want, 32);

    T_OK(cf_audit_append(l, evs, 3, &res));
    T_EQ(res.added, 3);
    T_EQ(res.duplicates, 0);
    T_EQ(res.tree_size, 3);
    T_OK(cf_audit_get_entry(l, 1, &e));
    T_EQ(e.seq, 1);
    T_STREQ(e.event_id, evs[1]->event_id);
    T_EQ(e.entry_len, evs[1]->entry_len);
    T_MEMEQ(e.entry, evs[1]->entry, e.entry_len);
    T_MEMEQ(e.leaf, evs[1]->leaf, 32);
    T_STREQ(e.tenant, "acme");
    T_STREQ(e.action, "kms.otk.issue");
    T_ASSERT(e.tee_id == NULL);
    T_EQ(e.ts_ms, evs[1]->ts_ms);
    cf_audit_entry_clear(&e);
    T_OK(cf_audit_find_event(l, evs[2]->event_id, &e));
    T_EQ(e.seq, 2);
    cf_audit_entry_clear(&e);
    T_ERR(cf_audit_get_entry(l, 3, &e), CF_E_NOT_FOUND);
    T_ERR(cf_audit_find_event(l, "00000000000000000000000000000000", &e), CF_E_NOT_FOUND);
    T_ERR(cf_audit_find_event(l, "short", &e), CF_E_INVAL);

    leaves = read_leaves(l, 3);
    cf_merkle_mem_init(&m, (const uint8_t(*)[32])leaves, 3);
    T_OK(cf_merkle_root(3, cf_merkle_mem_node, &m, want));
    T_OK(cf_audit_root(l, 3, root));
    T_MEMEQ(root, want, 32);
    T_ERR(cf_audit_root(l, 4, root), CF_E_RANGE);
    free(leaves);

    T_OK(cf_audit_append(l, NULL, 0, &res)); /* an empty batch is fine */
    T_EQ(res.added, 0);
    T_EQ(res.tree_size, 3);
    T_ERR(cf_audit_append(l, evs, CF_AUDIT_MAX_BATCH + 1, &res), CF_E_TOO_LARGE);
    cf_audit_events_free(evs, 3);
    close_log(s, l);
}

static void test_dedup(void)
{
    cf_store *s = NULL;
    cf_audit_log *l = NULL;
    cf_audit_append_result res;
    cf_audit_event **a = tu_events(2, 0, 5), **b = tu_events(2, 3, 5);
    cf_audit_event *batch[3];
    cf_audit_entry e;
    uint64_t size;
    int rc;

    T_OK(open_log(&s, &l, NULL, 0));
    T_OK(cf_audit_append(l, a, 5, &res));
    T_EQ(res.added, 5);
    /* a resend is acknowledged, not added */
    T_OK(cf_audit_append(l, a, 5, &res));
    T_EQ(res.added, 0);
    T_EQ(res.duplicates, 5);
    T_EQ(res.tree_size, 5);
    /* partly known: 3 and 4 again, 5..7 new */
    T_OK(cf_audit_append(l, b, 5, &res));
    T_EQ(res.added, 3);
    T_EQ(res.duplicates, 2);
    T_EQ(res.tree_size, 8);
    T_OK(cf_audit_find_event(l, b[4]->event_id, &e));
    T_EQ(e.seq, 7);
    cf_audit_entry_clear(&e);

    /* the same id with other content is refused, and fails the whole batch */
    batch[0] = tu_event(2, 100, "acme", "kms.otk.issue", NULL, 1714564800000LL);
    batch[1] = tu_event(2, 0, "globex", "kms.otk.issue", NULL, 1714564800000LL);
    rc = cf_audit_append(l, batch, 2, &res);
    T_ERR(rc, CF_E_CONFLICT);
    T_ASSERT(strstr(cf_err_detail(rc), "different content") != NULL);
    T_ERR(cf_audit_find_event(l, batch[0]->event_id, &e), CF_E_NOT_FOUND);
    T_OK(cf_audit_tree_size(l, &size));
    T_EQ(size, 8);
    cf_audit_event_free(batch[1]);

    /* a repeat inside one batch: once if identical, refused if not */
    batch[1] = tu_event(2, 100, "acme", "kms.otk.issue", NULL, 1714564800000LL);
    T_OK(cf_audit_append(l, batch, 2, &res));
    T_EQ(res.added, 1);
    T_EQ(res.duplicates, 1);
    T_EQ(res.tree_size, 9);
    cf_audit_event_free(batch[0]);
    cf_audit_event_free(batch[1]);
    batch[0] = tu_event(2, 101, "acme", "kms.otk.issue", NULL, 1714564800000LL);
    batch[1] = tu_event(2, 102, "acme", "kms.otk.issue", NULL, 1714564800000LL);
    batch[2] = tu_event(2, 101, "acme", "kms.otk.revoke", NULL, 1714564800000LL);
    T_ERR(cf_audit_append(l, batch, 3, &res), CF_E_CONFLICT);
    T_ERR(cf_audit_find_event(l, batch[1]->event_id, &e), CF_E_NOT_FOUND);
    for (int i = 0; i < 3; i++)
        cf_audit_event_free(batch[i]);
    cf_audit_events_free(a, 5);
    cf_audit_events_free(b, 5);
    close_log(s, l);
}

/* A failure anywhere in a batch (an invalid event, an entry insert, a subtree
 * hash insert) leaves nothing of it behind; the log works on afterwards. */
static void test_batch_atomicity(void)
{
    cf_store *s = NULL;
    cf_audit_log *l = NULL;
    cf_audit_append_result res;
    cf_audit_event **pre = tu_events(3, 0, 3), **evs = tu_events(3, 10, 5), **parsed = NULL;
    char sql[512], body[8192];
    size_t n = 0, o;
    cf_audit_entry e;
    uint64_t size;
    uint8_t root[32], want[32];
    uint8_t(*leaves)[32];
    cf_merkle_mem m;
    json_t *bad;
    char *bad_txt;

    T_OK(open_log(&s, &l, NULL, 0));
    T_OK(cf_audit_append(l, pre, 3, &res));

    /* one invalid event in a request body rejects the batch before the store */
    bad = tu_event_json(3, 99, "acme", "kms.otk.issue", NULL, 1714564800000LL);
    json_object_set_new(bad, "outcome", json_string("perhaps"));
    bad_txt = cf_json_dump(bad);
    o = (size_t)snprintf(body, sizeof(body), "{\"events\":[");
    for (int i = 0; i < 2; i++)
        o += (size_t)snprintf(body + o, sizeof(body) - o, "%.*s,", (int)evs[i]->entry_len,
                              (const char *)evs[i]->entry);
    (void)snprintf(body + o, sizeof(body) - o, "%s]}", bad_txt);
    T_ERR(cf_audit_batch_parse(body, strlen(body), &parsed, &n), CF_E_PARSE);
    T_ASSERT(parsed == NULL);
    free(bad_txt);
    json_decref(bad);

    /* a failing entry insert (the 4th of the batch) */
    if (tu_backend == CF_STORE_SQLITE) {
        tu_fmt(sql, sizeof(sql),
               "CREATE TEMP TRIGGER inject BEFORE INSERT ON audit_entries WHEN NEW.event_id = '%s' "
               "BEGIN SELECT RAISE(ABORT, 'injected'); END",
               evs[3]->event_id);
        T_OK(cf_store_exec(s, sql, NULL, 0, NULL));
    } else {
        tu_fmt(sql, sizeof(sql),
               "CREATE FUNCTION inject() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN IF "
               "NEW.event_id = ''%s'' THEN RAISE EXCEPTION ''injected''; END IF; RETURN NEW; END'",
               evs[3]->event_id);
        T_OK(cf_store_exec(s, sql, NULL, 0, NULL));
        T_OK(cf_store_exec(s,
                           "CREATE TRIGGER inject BEFORE INSERT ON audit_entries FOR EACH ROW "
                           "EXECUTE FUNCTION inject()",
                           NULL, 0, NULL));
    }
    T_FAILS(cf_audit_append(l, evs, 5, &res));
    T_OK(cf_audit_tree_size(l, &size));
    T_EQ(size, 3);
    for (int i = 0; i < 5; i++)
        T_ERR(cf_audit_find_event(l, evs[i]->event_id, &e), CF_E_NOT_FOUND);
    T_OK(cf_store_exec(s, tu_backend == CF_STORE_SQLITE ? "DROP TRIGGER inject"
                                                        : "DROP TRIGGER inject ON audit_entries",
                       NULL, 0, NULL));

    /* a failing subtree-hash insert: the leaf at index 3 completes the level-2 node */
    if (tu_backend == CF_STORE_SQLITE) {
        T_OK(cf_store_exec(s,
                           "CREATE TEMP TRIGGER inject BEFORE INSERT ON audit_nodes WHEN NEW.lvl = 2 "
                           "BEGIN SELECT RAISE(ABORT, 'injected'); END",
                           NULL, 0, NULL));
    } else {
        T_OK(cf_store_exec(s,
                           "CREATE OR REPLACE FUNCTION inject() RETURNS trigger LANGUAGE plpgsql AS "
                           "'BEGIN IF NEW.lvl = 2 THEN RAISE EXCEPTION ''injected''; END IF; RETURN "
                           "NEW; END'",
                           NULL, 0, NULL));
        T_OK(cf_store_exec(s,
                           "CREATE TRIGGER inject BEFORE INSERT ON audit_nodes FOR EACH ROW "
                           "EXECUTE FUNCTION inject()",
                           NULL, 0, NULL));
    }
    T_FAILS(cf_audit_append(l, evs, 5, &res));
    T_OK(cf_audit_tree_size(l, &size));
    T_EQ(size, 3);
    T_ERR(cf_audit_find_event(l, evs[0]->event_id, &e), CF_E_NOT_FOUND);
    T_OK(cf_store_exec(s, tu_backend == CF_STORE_SQLITE ? "DROP TRIGGER inject"
                                                        : "DROP TRIGGER inject ON audit_nodes",
                       NULL, 0, NULL));

    /* and the log is whole: the same batch now goes in, the root is right */
    T_OK(cf_audit_append(l, evs, 5, &res));
    T_EQ(res.added, 5);
    T_EQ(res.tree_size, 8);
    leaves = read_leaves(l, 8);
    cf_merkle_mem_init(&m, (const uint8_t(*)[32])leaves, 8);
    T_OK(cf_merkle_root(8, cf_merkle_mem_node, &m, want));
    T_OK(cf_audit_root(l, 8, root));
    T_MEMEQ(root, want, 32);
    free(leaves);
    cf_audit_events_free(pre, 3);
    cf_audit_events_free(evs, 5);
    close_log(s, l);
}

static void test_proofs(void)
{
    static const size_t batches[] = {1, 2, 5, 13, 1, 7, 20, 21};
    static const uint64_t sizes[] = {1, 2, 3, 8, 17, 31, 64, 70};
    cf_store *s = NULL;
    cf_audit_log *l = NULL;
    cf_audit_append_result res;
    uint8_t(*leaves)[32];
    cf_merkle_mem m;
    cf_merkle_proof p, want;
    unsigned next = 0;

    T_OK(open_log(&s, &l, NULL, 0));
    for (size_t b = 0; b < CF_ARRAY_LEN(batches); b++) {
        cf_audit_event **evs = tu_events(4, next, batches[b]);
        T_OK(cf_audit_append(l, evs, batches[b], &res));
        next += (unsigned)batches[b];
        T_EQ(res.tree_size, next);
        cf_audit_events_free(evs, batches[b]);
    }
    leaves = read_leaves(l, 70);
    cf_merkle_mem_init(&m, (const uint8_t(*)[32])leaves, 70);
    T_OK(cf_merkle_mem_build(&m));
    for (size_t k = 0; k < CF_ARRAY_LEN(sizes); k++) {
        uint64_t n = sizes[k];
        uint8_t root[32], mroot[32];
        T_OK(cf_audit_root(l, n, root));
        T_OK(cf_merkle_root(n, cf_merkle_mem_node, &m, mroot));
        T_MEMEQ(root, mroot, 32);
        for (uint64_t i = 0; i < n; i++) {
            T_OK(cf_audit_inclusion_proof(l, i, n, &p));
            T_OK(cf_merkle_inclusion_proof(i, n, cf_merkle_mem_node, &m, &want));
            T_EQ(p.len, want.len);
            T_MEMEQ(p.h, want.h, p.len * 32);
            T_OK(cf_merkle_verify_inclusion(leaves[i], i, n, &p, root));
        }
        for (size_t j = 0; j <= k; j++) {
            uint8_t r1[32];
            T_OK(cf_audit_consistency_proof(l, sizes[j], n, &p));
            T_OK(cf_merkle_consistency_proof(sizes[j], n, cf_merkle_mem_node, &m, &want));
            T_EQ(p.len, want.len);
            T_MEMEQ(p.h, want.h, p.len * 32);
            T_OK(cf_audit_root(l, sizes[j], r1));
            T_OK(cf_merkle_verify_consistency(sizes[j], n, r1, root, &p));
        }
    }
    T_ERR(cf_audit_inclusion_proof(l, 70, 70, &p), CF_E_RANGE);
    T_ERR(cf_audit_inclusion_proof(l, 0, 71, &p), CF_E_RANGE);
    T_ERR(cf_audit_consistency_proof(l, 0, 5, &p), CF_E_RANGE);
    T_ERR(cf_audit_consistency_proof(l, 6, 5, &p), CF_E_RANGE);
    T_ERR(cf_audit_consistency_proof(l, 5, 71, &p), CF_E_RANGE);
    cf_merkle_mem_free(&m);
    free(leaves);
    close_log(s, l);
}

static void test_sth(void)
{
    cf_store *s = NULL;
    cf_audit_log *l = NULL;
    cf_audit_sth h, h2, *list = NULL;
    cf_audit_event **evs = tu_events(5, 0, 10);
    uint8_t root[32];
    size_t n;
    bool more;
    cf_key *p256 = NULL;

    T_OK(open_log(&s, &l, NULL, 0));
    T_ERR(cf_audit_sth_latest(l, &h), CF_E_NOT_FOUND);
    T_OK(cf_audit_sth_create(l, g_key, &h));
    T_EQ(h.id, 1);
    T_EQ(h.size, 0);
    cf_merkle_empty_root(root);
    T_MEMEQ(h.root, root, 32);
    T_OK(cf_audit_sth_verify(&h, g_pub));
    T_OK(cf_audit_append(l, evs, 10, NULL));
    T_OK(cf_audit_sth_create(l, g_key, &h2));
    T_EQ(h2.id, 2);
    T_EQ(h2.size, 10);
    T_OK(cf_audit_root(l, 10, root));
    T_MEMEQ(h2.root, root, 32);
    T_ASSERT(h2.timestamp_ms >= h.timestamp_ms);
    T_OK(cf_audit_sth_verify(&h2, g_pub));
    for (int i = 0; i < 3; i++)
        T_OK(cf_audit_sth_create(l, g_key, &h));
    T_EQ(h.id, 5);
    T_OK(cf_audit_sth_latest(l, &h2));
    T_MEMEQ(&h2, &h, sizeof(h));
    T_OK(cf_audit_sth_get(l, 2, &h2));
    T_EQ(h2.size, 10);
    T_STREQ(h2.key_id, h.key_id);
    T_ERR(cf_audit_sth_get(l, 99, &h2), CF_E_NOT_FOUND);
    T_OK(cf_audit_sth_list(l, 0, 2, &list, &n, &more));
    T_EQ(n, 2);
    T_ASSERT(more);
    T_EQ(list[1].id, 2);
    free(list);
    T_OK(cf_audit_sth_list(l, 4, 2, &list, &n, &more));
    T_EQ(n, 1);
    T_ASSERT(!more);
    T_EQ(list[0].id, 5);
    free(list);
    T_ERR(cf_audit_sth_list(l, 0, 0, &list, &n, &more), CF_E_RANGE);
    T_ERR(cf_audit_sth_create(l, g_pub, &h), CF_E_INVAL);
    T_OK(cf_key_generate(CF_KEY_P256, &p256));
    T_ERR(cf_audit_sth_create(l, p256, &h), CF_E_INVAL);
    cf_key_free(p256);
    cf_audit_events_free(evs, 10);
    close_log(s, l);
}

#define QBASE 1714564800000LL

static size_t run_query(cf_audit_log *l, cf_audit_query q, uint64_t *seqs, size_t max)
{
    cf_audit_page p;
    size_t n = 0;

    q.limit = CF_AUDIT_MAX_PAGE;
    if (cf_audit_query_entries(l, &q, &p) != 0)
        return (size_t)-1;
    for (size_t i = 0; i < p.n && n < max; i++)
        seqs[n++] = p.items[i].seq;
    cf_audit_page_free(&p);
    return n;
}

static void test_queries(void)
{
    cf_store *s = NULL;
    cf_audit_log *l = NULL;
    cf_audit_event *evs[30];
    cf_audit_query q;
    cf_audit_page p;
    uint64_t seqs[64], got[64];
    size_t n, total;

    T_OK(open_log(&s, &l, NULL, 0));
    for (unsigned i = 0; i < 30; i++) {
        const char *tenant = i % 3 == 0 ? "acme" : (i % 3 == 1 ? "globex" : "");
        const char *tee = i % 5 == 0 ? "tee-a" : (i % 5 == 1 ? "tee-b" : NULL);
        evs[i] = tu_event(6, i, tenant, i % 2 ? "kms.otk.release" : "kms.otk.issue", tee,
                          QBASE + i * 1000);
    }
    T_OK(cf_audit_append(l, evs, 30, NULL));

    memset(&q, 0, sizeof(q));
    q.scope_tenant = "acme";
    n = run_query(l, q, seqs, 64);
    T_EQ(n, 10);
    for (size_t i = 0; i < n; i++)
        T_EQ(seqs[i], 3 * i);
    memset(&q, 0, sizeof(q));
    q.tenant = "globex";
    T_EQ(run_query(l, q, seqs, 64), 10);
    T_EQ(seqs[0], 1);
    memset(&q, 0, sizeof(q));
    T_EQ(run_query(l, q, seqs, 64), 30);
    q.tenant = "";
    T_EQ(run_query(l, q, seqs, 64), 10); /* platform events, for auditors */
    T_EQ(seqs[0], 2);

    /* scoping is enforced */
    memset(&q, 0, sizeof(q));
    q.scope_tenant = "acme";
    q.tenant = "globex";
    q.limit = 10;
    T_ERR(cf_audit_query_entries(l, &q, &p), CF_E_FORBIDDEN);
    q.tenant = "acme";
    T_OK(cf_audit_query_entries(l, &q, &p));
    T_EQ(p.n, 10);
    cf_audit_page_free(&p);
    q.scope_tenant = "";
    q.tenant = NULL;
    T_ERR(cf_audit_query_entries(l, &q, &p), CF_E_INVAL);
    q.scope_tenant = "initech"; /* a tenant without entries sees nothing */
    T_OK(cf_audit_query_entries(l, &q, &p));
    T_EQ(p.n, 0);
    T_ASSERT(!p.more);
    cf_audit_page_free(&p);

    /* filters */
    memset(&q, 0, sizeof(q));
    q.scope_tenant = "acme";
    q.action = "kms.otk.release";
    n = run_query(l, q, seqs, 64);
    T_EQ(n, 5);
    T_EQ(seqs[0], 3);
    T_EQ(seqs[4], 27);
    memset(&q, 0, sizeof(q));
    q.tee_id = "tee-a";
    T_EQ(run_query(l, q, seqs, 64), 6);
    memset(&q, 0, sizeof(q));
    q.has_from = q.has_to = true;
    q.from_ms = QBASE + 5000;
    q.to_ms = QBASE + 15000;
    n = run_query(l, q, seqs, 64);
    T_EQ(n, 10);
    T_EQ(seqs[0], 5);
    T_EQ(seqs[9], 14);
    memset(&q, 0, sizeof(q));
    q.scope_tenant = "acme";
    q.tee_id = "tee-a";
    q.has_from = q.has_to = true;
    q.from_ms = QBASE;
    q.to_ms = QBASE + 20000;
    n = run_query(l, q, seqs, 64);
    T_EQ(n, 2);
    T_EQ(seqs[0], 0);
    T_EQ(seqs[1], 15);

    /* paging with the cursor: every entry once, in order */
    memset(&q, 0, sizeof(q));
    q.limit = 7;
    total = 0;
    for (int page = 0; page < 10; page++) {
        T_OK(cf_audit_query_entries(l, &q, &p));
        for (size_t i = 0; i < p.n; i++) {
            T_MEMEQ(p.items[i].entry, evs[p.items[i].seq]->entry, p.items[i].entry_len);
            got[total++] = p.items[i].seq;
        }
        T_EQ(p.more, page < 4);
        if (p.n > 0) {
            q.has_after = true;
            q.after = p.items[p.n - 1].seq;
        }
        if (!p.more) {
            cf_audit_page_free(&p);
            break;
        }
        cf_audit_page_free(&p);
    }
    T_EQ(total, 30);
    for (size_t i = 0; i < total; i++)
        T_EQ(got[i], i);
    q.limit = 0;
    T_ERR(cf_audit_query_entries(l, &q, &p), CF_E_RANGE);
    q.limit = CF_AUDIT_MAX_PAGE + 1;
    T_ERR(cf_audit_query_entries(l, &q, &p), CF_E_RANGE);
    for (int i = 0; i < 30; i++)
        cf_audit_event_free(evs[i]);
    close_log(s, l);
}

static int64_t count_rows(cf_store *s, const char *sql)
{
    cf_store_rows *r = NULL;
    int64_t v = -1;
    if (cf_store_query_row(s, sql, NULL, 0, &r) == 0)
        (void)!cf_store_col_i64(r, 0, &v);
    cf_store_rows_close(r);
    return v;
}

/* The tables refuse UPDATE and DELETE (and TRUNCATE on PostgreSQL). */
static void test_append_only(void)
{
    static const char *const refused[] = {
        "UPDATE audit_entries SET tenant = 'x'", "DELETE FROM audit_entries WHERE seq = 1",
        "UPDATE audit_nodes SET hash = hash",    "DELETE FROM audit_nodes",
        "UPDATE audit_sth SET tree_size = 99",   "DELETE FROM audit_sth"};
    cf_store *s = NULL;
    cf_audit_log *l = NULL;
    cf_audit_event **evs = tu_events(7, 0, 4);
    cf_audit_sth h;

    T_OK(open_log(&s, &l, NULL, 0));
    T_OK(cf_audit_append(l, evs, 4, NULL));
    T_OK(cf_audit_sth_create(l, g_key, &h));
    for (size_t i = 0; i < CF_ARRAY_LEN(refused); i++)
        T_ASSERT_MSG(cf_store_exec(s, refused[i], NULL, 0, NULL) < 0, "allowed: %s", refused[i]);
    if (tu_backend == CF_STORE_POSTGRES) {
        T_FAILS(cf_store_exec(s, "TRUNCATE audit_entries", NULL, 0, NULL));
        T_FAILS(cf_store_exec(s, "TRUNCATE audit_nodes", NULL, 0, NULL));
        T_FAILS(cf_store_exec(s, "TRUNCATE audit_sth", NULL, 0, NULL));
    }
    T_EQ(count_rows(s, "SELECT count(*) FROM audit_entries WHERE tenant = 'acme'"), 4);
    T_EQ(count_rows(s, "SELECT count(*) FROM audit_nodes"), 3);
    T_EQ(count_rows(s, "SELECT CAST(max(tree_size) AS BIGINT) FROM audit_sth"), 4);
    cf_audit_events_free(evs, 4);
    close_log(s, l);
}

/* ---- several processes -------------------------------------------------------------- */

/* Child: appends `batches` batches of `per` events of run `run`, from batch
 * `first`; writes each acknowledged batch number to fd. Exit status 0 = all ok. */
static int child_appender(const char *dsn, unsigned run, unsigned first, unsigned batches,
                          unsigned per, int fd)
{
    cf_store *s = NULL;
    cf_audit_log *l = NULL;

    if (cf_store_open(dsn, &s) != 0 || cf_audit_log_open(s, &l) != 0)
        return 2;
    for (unsigned b = first; b < first + batches; b++) {
        cf_audit_event **evs = tu_events(run, b * per, per);
        int rc = cf_audit_append(l, evs, per, NULL);
        cf_audit_events_free(evs, per);
        if (rc != 0) {
            fprintf(stderr, "child append: %s\n", cf_err_detail(rc));
            return 3;
        }
        if (fd >= 0 && write(fd, &b, sizeof(b)) != (ssize_t)sizeof(b))
            return 4;
    }
    cf_audit_log_close(l);
    cf_store_close(s);
    return 0;
}

static void test_concurrent_appenders(void)
{
    char dsn[PATH_MAX + 128];
    cf_store *s = NULL;
    cf_audit_log *l = NULL;
    cf_audit_report rep;
    cf_audit_sth h;
    pid_t pids[2];
    uint64_t size;

    T_OK(open_log(&s, &l, dsn, sizeof(dsn)));
    for (int k = 0; k < 2; k++) {
        pids[k] = fork();
        T_ASSERT(pids[k] >= 0);
        if (pids[k] == 0)
            _exit(child_appender(dsn, 20 + (unsigned)k, 0, 30, 5, -1));
    }
    for (int k = 0; k < 2; k++) {
        int st = 0;
        T_ASSERT(waitpid(pids[k], &st, 0) == pids[k]);
        T_ASSERT_MSG(WIFEXITED(st) && WEXITSTATUS(st) == 0, "appender %d failed: %d", k, st);
    }
    T_OK(cf_audit_tree_size(l, &size));
    T_EQ(size, 300);
    for (unsigned k = 0; k < 2; k++)
        for (unsigned b = 0; b < 150; b += 37) {
            cf_audit_event *ev = tu_event(20 + k, b, "acme", "kms.otk.issue", NULL,
                                          1714564800000LL + b * 1000);
            cf_audit_entry e;
            T_OK(cf_audit_find_event(l, ev->event_id, &e));
            cf_audit_entry_clear(&e);
            cf_audit_event_free(ev);
        }
    /* the tree built by two interleaved writers is sound */
    T_OK(cf_audit_sth_create(l, g_key, &h));
    T_OK(cf_audit_verify_log(l, g_pub, NULL, &rep));
    T_EQ(rep.entries_checked, 300);
    cf_audit_report_free(&rep);
    close_log(s, l);
}

/* kill -9 while a child appends: every batch it reported as acknowledged is
 * there, no batch is there in part, and the tree is sound. */
static void test_kill9_appender(void)
{
    char dsn[PATH_MAX + 128];
    cf_store *s = NULL;
    cf_audit_log *l = NULL;
    unsigned acked_upto = 0; /* batches 0..acked_upto-1 acknowledged */
    uint64_t size = 0;
    const unsigned per = 10;

    T_OK(open_log(&s, &l, dsn, sizeof(dsn)));
    for (int round = 0; round < 3; round++) {
        int fds[2], st;
        unsigned b, got = 0, first = (unsigned)(size / per);
        pid_t pid;

        T_ASSERT(pipe(fds) == 0);
        pid = fork();
        T_ASSERT(pid >= 0);
        if (pid == 0) {
            close(fds[0]);
            _exit(child_appender(dsn, 30, first, 1000000, per, fds[1]));
        }
        close(fds[1]);
        while (got < 12 && read(fds[0], &b, sizeof(b)) == (ssize_t)sizeof(b)) {
            T_EQ(b, first + got);
            got++;
        }
        tu_sleep_ms(round); /* land somewhere inside the next append */
        T_ASSERT(kill(pid, SIGKILL) == 0);
        T_ASSERT(waitpid(pid, &st, 0) == pid);
        T_ASSERT(WIFSIGNALED(st));
        /* acknowledgements written before the kill count too */
        while (read(fds[0], &b, sizeof(b)) == (ssize_t)sizeof(b)) {
            T_EQ(b, first + got);
            got++;
        }
        close(fds[0]);
        T_ASSERT(got >= 12);
        acked_upto = first + got;

        T_OK(cf_audit_tree_size(l, &size));
        T_ASSERT_MSG(size >= (uint64_t)acked_upto * per, "size %llu < %u acknowledged batches",
                     (unsigned long long)size, acked_upto);
        T_EQ(size % per, 0); /* never part of a batch */
        for (unsigned k = 0; k < acked_upto; k++) {
            cf_audit_event **evs = tu_events(30, k * per, per);
            for (unsigned i = 0; i < per; i += per - 1) {
                cf_audit_entry e;
                T_OK(cf_audit_find_event(l, evs[i]->event_id, &e));
                cf_audit_entry_clear(&e);
            }
            cf_audit_events_free(evs, per);
        }
    }
    {
        cf_audit_sth h;
        cf_audit_report rep;
        T_OK(cf_audit_sth_create(l, g_key, &h));
        T_OK(cf_audit_verify_log(l, g_pub, NULL, &rep));
        T_EQ(rep.entries_checked, size);
        cf_audit_report_free(&rep);
    }
    close_log(s, l);
}

static void run_suite(void)
{
    T_RUN(test_append_basic);
    T_RUN(test_dedup);
    T_RUN(test_batch_atomicity);
    T_RUN(test_proofs);
    T_RUN(test_sth);
    T_RUN(test_queries);
    T_RUN(test_append_only);
    T_RUN(test_concurrent_appenders);
    T_RUN(test_kill9_appender);
}

int main(void)
{
    int rc;

    if (tu_init("auditlog") != 0 || cf_key_generate(CF_KEY_ED25519, &g_key) != 0 ||
        cf_key_public_only(g_key, &g_pub) != 0)
        return 1;
    fprintf(stderr, "# backend: sqlite\n");
    tu_backend = CF_STORE_SQLITE;
    run_suite();

    tu_backend = CF_STORE_POSTGRES;
    rc = tu_pg_start();
    if (rc == 1) {
        printf("SKIP: PostgreSQL audit log tests: no server binaries (install 'postgresql' or set "
               "COFFER_PG_BINDIR)\n");
    } else if (rc < 0) {
        fprintf(stderr, "not ok - PostgreSQL test server did not start\n");
        t_failed++;
    } else {
        fprintf(stderr, "# backend: postgresql\n");
        run_suite();
    }
    tu_pg_stop();
    tu_rm_tree(tu_tmp);
    cf_key_free(g_key);
    cf_key_free(g_pub);
    return t_done();
}
