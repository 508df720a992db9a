/*
 * The audit log over cf_store: schema, batched append with de-duplication,
 * subtree hashes, signed tree heads, proofs and scoped queries (log.h).
 */
#include "auditlog/log.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/err.h"
#include "base/limits.h"
#include "base/parse.h"

struct cf_audit_log {
    cf_store *s;
    /* The frontier after this handle's last append: the next append starts
     * from it without reading the store, unless another writer grew the tree
     * meanwhile (the size read inside the transaction tells). */
    bool have_frontier;
    cf_merkle_frontier frontier;
};

/* ---- schema ------------------------------------------------------------------------- */

/* SQLite: seq and id are INTEGER PRIMARY KEY (rowid aliases, 64-bit). The
 * triggers make the tables append-only against anything that goes through
 * SQL; they are defence in depth, not the integrity guarantee (verify.h). */
static const char SCHEMA_SQLITE[] =
    "CREATE TABLE audit_entries ("
    "  seq INTEGER PRIMARY KEY CHECK (seq >= 0),"
    "  event_id TEXT NOT NULL UNIQUE,"
    "  ts_ms BIGINT NOT NULL,"
    "  tenant TEXT NOT NULL,"
    "  action TEXT NOT NULL,"
    "  tee_id TEXT,"
    "  entry BLOB NOT NULL,"
    "  leaf_hash BLOB NOT NULL);"
    "CREATE INDEX audit_entries_by_tenant ON audit_entries (tenant, seq);"
    "CREATE INDEX audit_entries_by_action ON audit_entries (action, seq);"
    "CREATE INDEX audit_entries_by_tee ON audit_entries (tee_id, seq);"
    "CREATE INDEX audit_entries_by_ts ON audit_entries (ts_ms, seq);"
    "CREATE TABLE audit_nodes ("
    "  lvl INTEGER NOT NULL CHECK (lvl >= 1),"
    "  idx BIGINT NOT NULL CHECK (idx >= 0),"
    "  hash BLOB NOT NULL,"
    "  PRIMARY KEY (lvl, idx)) WITHOUT ROWID;"
    "CREATE TABLE audit_sth ("
    "  id INTEGER PRIMARY KEY CHECK (id >= 1),"
    "  tree_size BIGINT NOT NULL,"
    "  ts_ms BIGINT NOT NULL,"
    "  root BLOB NOT NULL,"
    "  signature BLOB NOT NULL,"
    "  key_id TEXT NOT NULL);"
    "CREATE TRIGGER audit_entries_no_update BEFORE UPDATE ON audit_entries"
    "  BEGIN SELECT RAISE(ABORT, 'audit_entries is append-only'); END;"
    "CREATE TRIGGER audit_entries_no_delete BEFORE DELETE ON audit_entries"
    "  BEGIN SELECT RAISE(ABORT, 'audit_entries is append-only'); END;"
    "CREATE TRIGGER audit_nodes_no_update BEFORE UPDATE ON audit_nodes"
    "  BEGIN SELECT RAISE(ABORT, 'audit_nodes is append-only'); END;"
    "CREATE TRIGGER audit_nodes_no_delete BEFORE DELETE ON audit_nodes"
    "  BEGIN SELECT RAISE(ABORT, 'audit_nodes is append-only'); END;"
    "CREATE TRIGGER audit_sth_no_update BEFORE UPDATE ON audit_sth"
    "  BEGIN SELECT RAISE(ABORT, 'audit_sth is append-only'); END;"
    "CREATE TRIGGER audit_sth_no_delete BEFORE DELETE ON audit_sth"
    "  BEGIN SELECT RAISE(ABORT, 'audit_sth is append-only'); END;";

/* PostgreSQL: the same tables; one trigger function refuses UPDATE, DELETE and
 * TRUNCATE (its body is a quoted string: `$` is not allowed by cf_store). */
static const char SCHEMA_PG[] =
    "CREATE TABLE audit_entries ("
    "  seq BIGINT PRIMARY KEY CHECK (seq >= 0),"
    "  event_id TEXT NOT NULL UNIQUE,"
    "  ts_ms BIGINT NOT NULL,"
    "  tenant TEXT NOT NULL,"
    "  action TEXT NOT NULL,"
    "  tee_id TEXT,"
    "  entry BLOB NOT NULL,"
    "  leaf_hash BLOB NOT NULL);"
    "CREATE INDEX audit_entries_by_tenant ON audit_entries (tenant, seq);"
    "CREATE INDEX audit_entries_by_action ON audit_entries (action, seq);"
    "CREATE INDEX audit_entries_by_tee ON audit_entries (tee_id, seq);"
    "CREATE INDEX audit_entries_by_ts ON audit_entries (ts_ms, seq);"
    "CREATE TABLE audit_nodes ("
    "  lvl INTEGER NOT NULL CHECK (lvl >= 1),"
    "  idx BIGINT NOT NULL CHECK (idx >= 0),"
    "  hash BLOB NOT NULL,"
    "  PRIMARY KEY (lvl, idx));"
    "CREATE TABLE audit_sth ("
    "  id BIGINT PRIMARY KEY CHECK (id >= 1),"
    "  tree_size BIGINT NOT NULL,"
    "  ts_ms BIGINT NOT NULL,"
    "  root BLOB NOT NULL,"
    "  signature BLOB NOT NULL,"
    "  key_id TEXT NOT NULL);"
    "CREATE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql AS"
    "  'BEGIN RAISE EXCEPTION ''% is append-only'', TG_TABLE_NAME; END';"
    "CREATE TRIGGER audit_entries_append_only BEFORE UPDATE OR DELETE ON audit_entries"
    "  FOR EACH ROW EXECUTE FUNCTION audit_append_only();"
    "CREATE TRIGGER audit_entries_no_truncate BEFORE TRUNCATE ON audit_entries"
    "  FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only();"
    "CREATE TRIGGER audit_nodes_append_only BEFORE UPDATE OR DELETE ON audit_nodes"
    "  FOR EACH ROW EXECUTE FUNCTION audit_append_only();"
    "CREATE TRIGGER audit_nodes_no_truncate BEFORE TRUNCATE ON audit_nodes"
    "  FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only();"
    "CREATE TRIGGER audit_sth_append_only BEFORE UPDATE OR DELETE ON audit_sth"
    "  FOR EACH ROW EXECUTE FUNCTION audit_append_only();"
    "CREATE TRIGGER audit_sth_no_truncate BEFORE TRUNCATE ON audit_sth"
    "  FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only();";

static const cf_store_migration audit_steps[] = {
    {1, "audit log: entries, subtree hashes, signed tree heads", SCHEMA_SQLITE, SCHEMA_PG},
};

int cf_audit_log_open(cf_store *store, cf_audit_log **ret)
{
    cf_audit_log *log;

    CF_ENSURE(store != NULL, CF_E_INVAL);
    CF_GUARD(cf_store_migrate(store, "audit", audit_steps, CF_ARRAY_LEN(audit_steps)));
    log = calloc(1, sizeof(*log));
    CF_ENSURE(log != NULL, CF_E_NOMEM);
    log->s = store;
    *ret = log;
    return 0;
}

void cf_audit_log_close(cf_audit_log *log) { free(log); }

/* ---- small helpers ------------------------------------------------------------------ */

static int64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* One BIGINT from a one-row query. */
static int query_i64(cf_store *s, const char *sql, const cf_store_val *p, size_t np, int64_t *ret)
{
    cf_store_rows *r = NULL;
    int64_t v;
    int rc;

    CF_GUARD(cf_store_query_row(s, sql, p, np, &r));
    rc = cf_store_col_i64(r, 0, &v);
    cf_store_rows_close(r);
    CF_GUARD(rc);
    *ret = v;
    return 0;
}

/* The tree size: entries are numbered densely from 0. */
static int tree_size(cf_store *s, uint64_t *ret)
{
    int64_t v;

    CF_GUARD(query_i64(s, "SELECT CAST(COALESCE(MAX(seq) + 1, 0) AS BIGINT) FROM audit_entries",
                       NULL, 0, &v));
    CF_ENSURE(v >= 0, CF_E_STORE);
    *ret = (uint64_t)v;
    return 0;
}

int cf_audit_tree_size(cf_audit_log *log, uint64_t *ret) { return tree_size(log->s, ret); }

static int store_damaged(unsigned level, uint64_t index, const char *what)
{
    uint64_t start = index << level, end = ((index + 1) << level) - 1;

    if (start == end)
        return cf_err_set(CF_E_STORE, "audit store is damaged: the hash of entry %llu is %s",
                          (unsigned long long)start, what);
    return cf_err_set(CF_E_STORE, "audit store is damaged: the hash of entries %llu..%llu is %s",
                      (unsigned long long)start, (unsigned long long)end, what);
}

/* cf_merkle_node_fn over the store (ctx is the cf_store). Level 0 is the
 * leaf_hash column of the entry; higher levels come from audit_nodes. */
static int store_node(void *ctx, unsigned level, uint64_t index, uint8_t out[CF_MERKLE_HASH_LEN])
{
    cf_store *s = ctx;
    cf_store_rows *r = NULL;
    uint8_t h[CF_MERKLE_HASH_LEN];
    size_t n = 0;
    int rc;

    CF_ENSURE(level < 63 && index <= (uint64_t)INT64_MAX, CF_E_INTERNAL);
    if (level == 0)
        rc = cf_store_query_row(s, "SELECT leaf_hash FROM audit_entries WHERE seq = ?",
                                CF_STORE_ARGS(cf_sv_int((int64_t)index)), &r);
    else
        rc = cf_store_query_row(s, "SELECT hash FROM audit_nodes WHERE lvl = ? AND idx = ?",
                                CF_STORE_ARGS(cf_sv_int(level), cf_sv_int((int64_t)index)), &r);
    if (rc == CF_E_NOT_FOUND)
        return store_damaged(level, index, "missing");
    CF_GUARD(rc);
    rc = cf_store_col_blob(r, 0, h, sizeof(h), &n);
    cf_store_rows_close(r);
    if (rc < 0 || n != CF_MERKLE_HASH_LEN)
        return store_damaged(level, index, "malformed");
    memcpy(out, h, CF_MERKLE_HASH_LEN);
    return 0;
}

/* Writers (appends, new tree heads) read the tree size and then extend the
 * tree: they must run one at a time. SQLite's BEGIN IMMEDIATE already
 * serialises them. On PostgreSQL, SERIALIZABLE alone would let two of them run
 * and then abort one (40001) — under steady concurrent appends often enough to
 * exhaust cf_store_tx's retries — so the transaction first takes a table lock
 * that conflicts with itself. It is taken before the first query, hence
 * before the transaction's snapshot (PostgreSQL docs, LOCK), so the writer
 * then sees every earlier writer's commit. Readers are not blocked. */
static int serialize_writers(cf_store *s)
{
    if (cf_store_backend(s) != CF_STORE_POSTGRES)
        return 0;
    return cf_store_exec(s, "LOCK TABLE audit_entries IN SHARE ROW EXCLUSIVE MODE", NULL, 0, NULL);
}

/* ---- append ------------------------------------------------------------------------- */

/* Statements carry up to CF_STORE_MAX_PARAMS values: a batch goes in as few
 * statements as that allows (each statement is prepared anew). */
#define ENTRY_COLS 8
#define ENTRY_ROWS (CF_STORE_MAX_PARAMS / ENTRY_COLS)
#define NODE_COLS 3
#define NODE_ROWS (CF_STORE_MAX_PARAMS / NODE_COLS)
#define LOOKUP_IDS CF_STORE_MAX_PARAMS

struct new_node {
    unsigned level;
    uint64_t index;
    uint8_t hash[CF_MERKLE_HASH_LEN];
};

struct append_ctx {
    cf_audit_event *const *evs;
    size_t n;
    const cf_merkle_frontier *cached; /* NULL if none */
    cf_merkle_frontier f;             /* the frontier after the batch (if added > 0) */
    bool *is_new;
    size_t *cand; /* indexes of the events to look up, then to insert */
    struct new_node *nodes;
    size_t nnodes, nodes_cap;
    size_t added, dups;
    uint64_t size;
};

static bool same_entry(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
    return alen == blen && memcmp(a, b, alen) == 0;
}

/* "<head> (?, ?, ?), (?, ?, ?)": rows groups of cols placeholders. */
static int values_sql(cf_buf *b, const char *head, size_t rows, size_t cols)
{
    cf_buf_reset(b);
    CF_GUARD(cf_buf_put_str(b, head));
    for (size_t r = 0; r < rows; r++) {
        CF_GUARD(cf_buf_put_str(b, r == 0 ? " (" : ", ("));
        for (size_t k = 0; k < cols; k++)
            CF_GUARD(cf_buf_put_str(b, k == 0 ? "?" : ", ?"));
        CF_GUARD(cf_buf_put_u8(b, ')'));
    }
    return cf_buf_nul_terminate(b);
}

/* Which candidates are logged already: same bytes = a duplicate (acknowledged,
 * not added); other bytes = CF_E_CONFLICT. One query per LOOKUP_IDS ids. */
static int mark_logged(cf_store *s, struct append_ctx *c, size_t ncand, cf_buf *sql)
{
    cf_store_val p[LOOKUP_IDS];
    cf_buf stored;
    int rc = 0;

    cf_buf_init(&stored, CF_AUDIT_MAX_STORED_ENTRY);
    for (size_t at = 0; at < ncand && rc == 0; at += LOOKUP_IDS) {
        size_t k = CF_MIN(LOOKUP_IDS, ncand - at);
        cf_store_rows *r = NULL;
        for (size_t i = 0; i < k; i++)
            p[i] = cf_sv_text(c->evs[c->cand[at + i]]->event_id);
        CF_GUARD_OUT(values_sql(sql, "SELECT event_id, entry FROM audit_entries WHERE event_id IN",
                                1, k));
        CF_GUARD_OUT(cf_store_query(s, (const char *)sql->data, p, k, &r));
        for (;;) {
            char id[CF_AUDIT_EVENT_ID_LEN + 1];
            rc = cf_store_next(r);
            if (rc <= 0)
                break;
            cf_buf_reset(&stored);
            rc = cf_store_col_text(r, 0, id, sizeof(id), NULL);
            if (rc == 0)
                rc = cf_store_col_blob_buf(r, 1, &stored);
            for (size_t i = 0; rc == 0 && i < k; i++) {
                size_t e = c->cand[at + i];
                const cf_audit_event *ev = c->evs[e];
                if (strcmp(ev->event_id, id) != 0)
                    continue;
                if (!same_entry(stored.data, stored.len, ev->entry, ev->entry_len)) {
                    rc = cf_err_set(CF_E_CONFLICT,
                                    "event %s is already logged with different content", id);
                } else if (c->is_new[e]) {
                    c->is_new[e] = false;
                    c->dups++;
                }
            }
            if (rc < 0)
                break;
        }
        cf_store_rows_close(r);
    }
out:
    cf_buf_free(&stored);
    return rc;
}

/* cf_merkle_emit_fn: keeps each newly complete subtree for a bulk insert. */
static int collect_node(void *ctx, unsigned level, uint64_t index,
                        const uint8_t h[CF_MERKLE_HASH_LEN])
{
    struct append_ctx *c = ctx;

    if (c->nnodes == c->nodes_cap) {
        size_t cap = c->nodes_cap == 0 ? 64 : c->nodes_cap * 2;
        struct new_node *n = realloc(c->nodes, cap * sizeof(*n));
        CF_ENSURE(n != NULL, CF_E_NOMEM);
        c->nodes = n;
        c->nodes_cap = cap;
    }
    c->nodes[c->nnodes].level = level;
    c->nodes[c->nnodes].index = index;
    memcpy(c->nodes[c->nnodes].hash, h, CF_MERKLE_HASH_LEN);
    c->nnodes++;
    return 0;
}

static int insert_entries(cf_store *s, const struct append_ctx *c, size_t nnew, uint64_t first_seq,
                          cf_buf *sql)
{
    cf_store_val p[ENTRY_ROWS * ENTRY_COLS];

    for (size_t at = 0; at < nnew; at += ENTRY_ROWS) {
        size_t k = CF_MIN(ENTRY_ROWS, nnew - at), np = 0;
        for (size_t i = 0; i < k; i++) {
            const cf_audit_event *ev = c->evs[c->cand[at + i]];
            p[np++] = cf_sv_int((int64_t)(first_seq + at + i));
            p[np++] = cf_sv_text(ev->event_id);
            p[np++] = cf_sv_int(ev->ts_ms);
            p[np++] = cf_sv_text(ev->tenant);
            p[np++] = cf_sv_text(ev->action);
            p[np++] = cf_sv_text(ev->tee_id);
            p[np++] = cf_sv_blob(ev->entry, ev->entry_len);
            p[np++] = cf_sv_blob(ev->leaf, CF_MERKLE_HASH_LEN);
        }
        CF_GUARD(values_sql(sql,
                            "INSERT INTO audit_entries (seq, event_id, ts_ms, tenant, action, "
                            "tee_id, entry, leaf_hash) VALUES",
                            k, ENTRY_COLS));
        CF_GUARD(cf_store_exec(s, (const char *)sql->data, p, np, NULL));
    }
    return 0;
}

static int insert_nodes(cf_store *s, const struct append_ctx *c, cf_buf *sql)
{
    cf_store_val p[NODE_ROWS * NODE_COLS];

    for (size_t at = 0; at < c->nnodes; at += NODE_ROWS) {
        size_t k = CF_MIN(NODE_ROWS, c->nnodes - at), np = 0;
        int rc;
        for (size_t i = 0; i < k; i++) {
            const struct new_node *nd = &c->nodes[at + i];
            p[np++] = cf_sv_int(nd->level);
            p[np++] = cf_sv_int((int64_t)nd->index);
            p[np++] = cf_sv_blob(nd->hash, CF_MERKLE_HASH_LEN);
        }
        CF_GUARD(values_sql(sql, "INSERT INTO audit_nodes (lvl, idx, hash) VALUES", k, NODE_COLS));
        rc = cf_store_exec(s, (const char *)sql->data, p, np, NULL);
        if (rc == CF_E_EXISTS)
            return cf_err_set(CF_E_STORE, "audit store is damaged: a subtree hash for the new "
                                          "entries is already present (were entries removed?)");
        CF_GUARD(rc);
    }
    return 0;
}

static int append_tx(cf_store *s, void *arg)
{
    struct append_ctx *c = arg;
    uint64_t size;
    size_t ncand = 0, nnew = 0;
    cf_buf sql;
    int rc;

    /* cf_store_tx may run this more than once: start from scratch. */
    c->added = c->dups = 0;
    c->nnodes = 0;
    cf_buf_init(&sql, CF_STORE_MAX_SQL);
    CF_GUARD_OUT(serialize_writers(s));
    CF_GUARD_OUT(tree_size(s, &size));
    for (size_t i = 0; i < c->n; i++) {
        const cf_audit_event *ev = c->evs[i];
        bool repeat = false;
        /* a repeat inside the batch (a forwarder never sends one, a client might) */
        for (size_t j = 0; j < i && !repeat; j++) {
            if (strcmp(c->evs[j]->event_id, ev->event_id) != 0)
                continue;
            if (!same_entry(c->evs[j]->entry, c->evs[j]->entry_len, ev->entry, ev->entry_len)) {
                rc = cf_err_set(CF_E_CONFLICT, "event %s appears twice in the batch with "
                                               "different content",
                                ev->event_id);
                goto out;
            }
            repeat = true;
        }
        c->is_new[i] = !repeat;
        if (repeat)
            c->dups++;
        else
            c->cand[ncand++] = i;
    }
    CF_GUARD_OUT(mark_logged(s, c, ncand, &sql));
    for (size_t i = 0; i < c->n; i++)
        if (c->is_new[i])
            c->cand[nnew++] = i;
    if (nnew > 0) {
        /* consecutive sequence numbers in batch order, then the tree over them */
        CF_GUARD_OUT(insert_entries(s, c, nnew, size, &sql));
        if (c->cached != NULL && c->cached->size == size)
            c->f = *c->cached;
        else
            CF_GUARD_OUT(cf_merkle_frontier_load(&c->f, size, store_node, s));
        for (size_t i = 0; i < nnew; i++)
            CF_GUARD_OUT(
                cf_merkle_frontier_append(&c->f, c->evs[c->cand[i]]->leaf, collect_node, c));
        CF_GUARD_OUT(insert_nodes(s, c, &sql));
        size = c->f.size;
        c->added = nnew;
    }
    c->size = size;
    rc = 0;
out:
    cf_buf_free(&sql);
    return rc;
}

int cf_audit_append(cf_audit_log *log, cf_audit_event *const *events, size_t n,
                    cf_audit_append_result *ret)
{
    struct append_ctx c;
    int rc;

    CF_ENSURE(log != NULL && (events != NULL || n == 0), CF_E_INVAL);
    if (n > CF_AUDIT_MAX_BATCH)
        return cf_err_set(CF_E_TOO_LARGE, "an audit batch holds at most %d events",
                          CF_AUDIT_MAX_BATCH);
    memset(&c, 0, sizeof(c));
    c.evs = events;
    c.n = n;
    c.cached = log->have_frontier ? &log->frontier : NULL;
    c.is_new = calloc(n > 0 ? n : 1, sizeof(bool));
    c.cand = calloc(n > 0 ? n : 1, sizeof(size_t));
    if (c.is_new != NULL && c.cand != NULL)
        rc = cf_store_tx(log->s, append_tx, &c);
    else
        rc = CF_E_NOMEM;
    free(c.is_new);
    free(c.cand);
    free(c.nodes);
    CF_GUARD(rc);
    if (c.added > 0) { /* committed: the cache may move on */
        log->frontier = c.f;
        log->have_frontier = true;
    }
    if (ret != NULL) {
        ret->added = c.added;
        ret->duplicates = c.dups;
        ret->tree_size = c.size;
    }
    return 0;
}

int cf_audit_send_local(void *arg, cf_audit_event *const *events, size_t n)
{
    return cf_audit_append(arg, events, n, NULL);
}

int cf_audit_root(cf_audit_log *log, uint64_t size, uint8_t out[CF_MERKLE_HASH_LEN])
{
    uint64_t cur;

    CF_GUARD(tree_size(log->s, &cur));
    if (size > cur)
        return cf_err_set(CF_E_RANGE, "tree size %llu exceeds the log size %llu",
                          (unsigned long long)size, (unsigned long long)cur);
    return cf_merkle_root(size, store_node, log->s, out);
}

/* ---- signed tree heads -------------------------------------------------------------- */

#define STH_COLUMNS "id, tree_size, ts_ms, root, signature, key_id"

static int sth_from_row(cf_store_rows *r, cf_audit_sth *ret)
{
    cf_audit_sth s;
    int64_t id, size, ts;
    size_t n1 = 0, n2 = 0;

    memset(&s, 0, sizeof(s));
    CF_GUARD(cf_store_col_i64(r, 0, &id));
    CF_GUARD(cf_store_col_i64(r, 1, &size));
    CF_GUARD(cf_store_col_i64(r, 2, &ts));
    /* A damaged row still yields a head (whose signature then fails), unless
     * its fields cannot even be represented. */
    if (id < 1 || size < 0 || ts < 0 || cf_store_col_blob(r, 3, s.root, sizeof(s.root), &n1) < 0 ||
        cf_store_col_blob(r, 4, s.signature, sizeof(s.signature), &n2) < 0 ||
        cf_store_col_text(r, 5, s.key_id, sizeof(s.key_id), NULL) < 0)
        return cf_err_set(CF_E_STORE, "audit store is damaged: tree head %lld is malformed",
                          (long long)id);
    s.id = id;
    s.size = (uint64_t)size;
    s.timestamp_ms = (uint64_t)ts;
    *ret = s;
    return 0;
}

static int sth_query_one(cf_store *s, const char *sql, const cf_store_val *p, size_t np,
                         cf_audit_sth *ret)
{
    cf_store_rows *r = NULL;
    int rc;

    CF_GUARD(cf_store_query_row(s, sql, p, np, &r));
    rc = sth_from_row(r, ret);
    cf_store_rows_close(r);
    return rc;
}

struct sth_ctx {
    const cf_key *key;
    cf_audit_sth sth;
};

static int sth_create_tx(cf_store *s, void *arg)
{
    struct sth_ctx *c = arg;
    cf_audit_sth prev, sth;
    int64_t ts = now_ms();
    int rc;

    memset(&sth, 0, sizeof(sth));
    CF_GUARD(serialize_writers(s));
    CF_GUARD(tree_size(s, &sth.size));
    CF_GUARD(cf_merkle_root(sth.size, store_node, s, sth.root));
    rc = sth_query_one(s, "SELECT " STH_COLUMNS " FROM audit_sth ORDER BY id DESC LIMIT 1", NULL,
                       0, &prev);
    if (rc == 0) {
        sth.id = prev.id + 1;
        /* time never goes backwards in the list of heads, whatever the clock does */
        if ((uint64_t)ts < prev.timestamp_ms)
            ts = (int64_t)prev.timestamp_ms;
    } else if (rc == CF_E_NOT_FOUND) {
        sth.id = 1;
    } else {
        return rc;
    }
    sth.timestamp_ms = (uint64_t)ts;
    CF_GUARD(cf_audit_sth_sign(&sth, c->key));
    CF_GUARD(cf_store_exec(s,
                           "INSERT INTO audit_sth (" STH_COLUMNS ") VALUES (?, ?, ?, ?, ?, ?)",
                           CF_STORE_ARGS(cf_sv_int(sth.id), cf_sv_int((int64_t)sth.size),
                                         cf_sv_int(ts), cf_sv_blob(sth.root, sizeof(sth.root)),
                                         cf_sv_blob(sth.signature, sizeof(sth.signature)),
                                         cf_sv_text(sth.key_id)),
                           NULL));
    c->sth = sth;
    return 0;
}

int cf_audit_sth_create(cf_audit_log *log, const cf_key *key, cf_audit_sth *ret)
{
    struct sth_ctx c;

    CF_ENSURE(log != NULL && key != NULL, CF_E_INVAL);
    if (cf_key_get_type(key) != CF_KEY_ED25519 || !cf_key_has_private(key))
        return cf_err_set(CF_E_INVAL, "the tree-head key must be an Ed25519 private key");
    memset(&c, 0, sizeof(c));
    c.key = key;
    CF_GUARD(cf_store_tx(log->s, sth_create_tx, &c));
    *ret = c.sth;
    return 0;
}

int cf_audit_sth_latest(cf_audit_log *log, cf_audit_sth *ret)
{
    return sth_query_one(log->s, "SELECT " STH_COLUMNS " FROM audit_sth ORDER BY id DESC LIMIT 1",
                         NULL, 0, ret);
}

int cf_audit_sth_get(cf_audit_log *log, int64_t id, cf_audit_sth *ret)
{
    return sth_query_one(log->s, "SELECT " STH_COLUMNS " FROM audit_sth WHERE id = ?",
                         CF_STORE_ARGS(cf_sv_int(id)), ret);
}

int cf_audit_sth_list(cf_audit_log *log, int64_t after_id, size_t limit, cf_audit_sth **ret,
                      size_t *ret_n, bool *ret_more)
{
    cf_store_rows *r = NULL;
    cf_audit_sth *list = NULL;
    size_t n = 0;
    bool more = false;
    int rc;

    if (limit < 1 || limit > CF_AUDIT_MAX_PAGE)
        return cf_err_set(CF_E_RANGE, "page size must be 1..%d", CF_AUDIT_MAX_PAGE);
    list = calloc(limit, sizeof(*list));
    CF_ENSURE(list != NULL, CF_E_NOMEM);
    CF_GUARD_OUT(cf_store_query(log->s,
                                "SELECT " STH_COLUMNS " FROM audit_sth WHERE id > ? ORDER BY id "
                                "LIMIT ?",
                                CF_STORE_ARGS(cf_sv_int(after_id), cf_sv_int((int64_t)limit + 1)),
                                &r));
    for (;;) {
        CF_GUARD_OUT(cf_store_next(r));
        if (rc == 0)
            break;
        if (n == limit) {
            more = true;
            break;
        }
        CF_GUARD_OUT(sth_from_row(r, &list[n]));
        n++;
    }
    *ret = list;
    *ret_n = n;
    *ret_more = more;
    list = NULL;
    rc = 0;
out:
    cf_store_rows_close(r);
    free(list);
    return rc;
}

/* ---- proofs ------------------------------------------------------------------------- */

int cf_audit_inclusion_proof(cf_audit_log *log, uint64_t seq, uint64_t tsize, cf_merkle_proof *ret)
{
    uint64_t cur;

    CF_GUARD(tree_size(log->s, &cur));
    if (tsize > cur)
        return cf_err_set(CF_E_RANGE, "tree size %llu exceeds the log size %llu",
                          (unsigned long long)tsize, (unsigned long long)cur);
    if (seq >= tsize)
        return cf_err_set(CF_E_RANGE, "entry %llu is not in a tree of size %llu",
                          (unsigned long long)seq, (unsigned long long)tsize);
    return cf_merkle_inclusion_proof(seq, tsize, store_node, log->s, ret);
}

int cf_audit_consistency_proof(cf_audit_log *log, uint64_t m, uint64_t n, cf_merkle_proof *ret)
{
    uint64_t cur;

    CF_GUARD(tree_size(log->s, &cur));
    if (n > cur)
        return cf_err_set(CF_E_RANGE, "tree size %llu exceeds the log size %llu",
                          (unsigned long long)n, (unsigned long long)cur);
    if (m == 0 || m > n)
        return cf_err_set(CF_E_RANGE, "a consistency proof needs 0 < first <= second size");
    return cf_merkle_consistency_proof(m, n, store_node, log->s, ret);
}

/* ---- queries ------------------------------------------------------------------------ */

#define ENTRY_COLUMNS "seq, event_id, ts_ms, tenant, action, tee_id, entry, leaf_hash"

void cf_audit_entry_clear(cf_audit_entry *e)
{
    if (e == NULL)
        return;
    free(e->tenant);
    free(e->action);
    free(e->tee_id);
    free(e->entry);
    memset(e, 0, sizeof(*e));
}

void cf_audit_page_free(cf_audit_page *p)
{
    if (p == NULL)
        return;
    for (size_t i = 0; i < p->n; i++)
        cf_audit_entry_clear(&p->items[i]);
    free(p->items);
    memset(p, 0, sizeof(*p));
}

/* The stored row as it is: entries are not re-validated (a verifier must see
 * exactly what the store holds). A leaf hash of the wrong length reads as zeros. */
static int entry_from_row(cf_store_rows *r, cf_audit_entry *ret)
{
    cf_audit_entry e;
    int64_t seq = -1;
    bool null_tee = true;
    size_t n = 0;
    cf_buf b;
    int rc;

    memset(&e, 0, sizeof(e));
    cf_buf_init(&b, CF_AUDIT_MAX_STORED_ENTRY);
    CF_GUARD_OUT(cf_store_col_i64(r, 0, &seq));
    CF_ENSURE_OUT(seq >= 0, CF_E_STORE);
    e.seq = (uint64_t)seq;
    rc = cf_store_col_text(r, 1, e.event_id, sizeof(e.event_id), NULL);
    if (rc < 0)
        memset(e.event_id, 0, sizeof(e.event_id));
    CF_GUARD_OUT(cf_store_col_i64(r, 2, &e.ts_ms));
    CF_GUARD_OUT(cf_store_col_text_dup(r, 3, CF_AUDIT_MAX_STORED_ENTRY, &e.tenant));
    CF_GUARD_OUT(cf_store_col_text_dup(r, 4, CF_AUDIT_MAX_STORED_ENTRY, &e.action));
    CF_GUARD_OUT(cf_store_col_is_null(r, 5, &null_tee));
    if (!null_tee)
        CF_GUARD_OUT(cf_store_col_text_dup(r, 5, CF_AUDIT_MAX_STORED_ENTRY, &e.tee_id));
    CF_GUARD_OUT(cf_store_col_blob_buf(r, 6, &b));
    if (cf_store_col_blob(r, 7, e.leaf, sizeof(e.leaf), &n) < 0 || n != sizeof(e.leaf))
        memset(e.leaf, 0, sizeof(e.leaf));
    e.entry_len = b.len;
    e.entry = malloc(b.len > 0 ? b.len : 1);
    CF_ENSURE_OUT(e.entry != NULL, CF_E_NOMEM);
    if (b.len > 0)
        memcpy(e.entry, b.data, b.len);
    *ret = e;
    memset(&e, 0, sizeof(e));
    rc = 0;
out:
    if (rc < 0 && rc != CF_E_NOMEM)
        rc = cf_err_set(CF_E_STORE, "audit store: cannot read entry %lld: %s", (long long)seq,
                        cf_err_detail(rc));
    cf_buf_free(&b);
    cf_audit_entry_clear(&e);
    return rc;
}

static int entry_query_one(cf_store *s, const char *sql, const cf_store_val *p, size_t np,
                           cf_audit_entry *ret)
{
    cf_store_rows *r = NULL;
    int rc;

    CF_GUARD(cf_store_query_row(s, sql, p, np, &r));
    rc = entry_from_row(r, ret);
    cf_store_rows_close(r);
    return rc;
}

int cf_audit_get_entry(cf_audit_log *log, uint64_t seq, cf_audit_entry *ret)
{
    CF_ENSURE(seq <= (uint64_t)INT64_MAX, CF_E_RANGE);
    return entry_query_one(log->s, "SELECT " ENTRY_COLUMNS " FROM audit_entries WHERE seq = ?",
                           CF_STORE_ARGS(cf_sv_int((int64_t)seq)), ret);
}

int cf_audit_find_event(cf_audit_log *log, const char *event_id, cf_audit_entry *ret)
{
    CF_ENSURE(event_id != NULL, CF_E_INVAL);
    if (strnlen(event_id, CF_AUDIT_EVENT_ID_LEN + 1) != CF_AUDIT_EVENT_ID_LEN)
        return cf_err_set(CF_E_INVAL, "an event id has %d hex digits", CF_AUDIT_EVENT_ID_LEN);
    return entry_query_one(log->s,
                           "SELECT " ENTRY_COLUMNS " FROM audit_entries WHERE event_id = ?",
                           CF_STORE_ARGS(cf_sv_text(event_id)), ret);
}

int cf_audit_query_entries(cf_audit_log *log, const cf_audit_query *q, cf_audit_page *ret)
{
    cf_store_val params[8];
    size_t np = 0;
    cf_buf sql;
    cf_store_rows *r = NULL;
    cf_audit_page page;
    const char *tenant;
    int rc;

    CF_ENSURE(log != NULL && q != NULL, CF_E_INVAL);
    memset(&page, 0, sizeof(page));
    if (q->limit < 1 || q->limit > CF_AUDIT_MAX_PAGE)
        return cf_err_set(CF_E_RANGE, "page size must be 1..%d", CF_AUDIT_MAX_PAGE);
    if (q->scope_tenant != NULL && q->scope_tenant[0] == '\0')
        return cf_err_set(CF_E_INVAL, "an empty tenant scope sees nothing: pass NULL for all "
                                      "tenants or a tenant id");
    if (q->scope_tenant != NULL && q->tenant != NULL && strcmp(q->scope_tenant, q->tenant) != 0)
        return cf_err_set(CF_E_FORBIDDEN, "entries of another tenant are not visible");
    if (q->has_after && q->after > (uint64_t)INT64_MAX)
        return cf_err_set(CF_E_RANGE, "cursor out of range");
    tenant = q->scope_tenant != NULL ? q->scope_tenant : q->tenant;

    /* Only fixed fragments go into the SQL text; every value is bound. */
    cf_buf_init(&sql, 1024);
    CF_GUARD_OUT(cf_buf_put_str(&sql, "SELECT " ENTRY_COLUMNS " FROM audit_entries WHERE 1 = 1"));
    if (tenant != NULL) {
        CF_GUARD_OUT(cf_buf_put_str(&sql, " AND tenant = ?"));
        params[np++] = cf_sv_text(tenant);
    }
    if (q->action != NULL) {
        CF_GUARD_OUT(cf_buf_put_str(&sql, " AND action = ?"));
        params[np++] = cf_sv_text(q->action);
    }
    if (q->tee_id != NULL) {
        CF_GUARD_OUT(cf_buf_put_str(&sql, " AND tee_id = ?"));
        params[np++] = cf_sv_text(q->tee_id);
    }
    if (q->has_from) {
        CF_GUARD_OUT(cf_buf_put_str(&sql, " AND ts_ms >= ?"));
        params[np++] = cf_sv_int(q->from_ms);
    }
    if (q->has_to) {
        CF_GUARD_OUT(cf_buf_put_str(&sql, " AND ts_ms < ?"));
        params[np++] = cf_sv_int(q->to_ms);
    }
    if (q->has_after) {
        CF_GUARD_OUT(cf_buf_put_str(&sql, " AND seq > ?"));
        params[np++] = cf_sv_int((int64_t)q->after);
    }
    CF_GUARD_OUT(cf_buf_put_str(&sql, " ORDER BY seq LIMIT ?"));
    params[np++] = cf_sv_int((int64_t)q->limit + 1);
    CF_GUARD_OUT(cf_buf_nul_terminate(&sql));

    page.items = calloc(q->limit, sizeof(*page.items));
    CF_ENSURE_OUT(page.items != NULL, CF_E_NOMEM);
    CF_GUARD_OUT(cf_store_query(log->s, (const char *)sql.data, params, np, &r));
    for (;;) {
        CF_GUARD_OUT(cf_store_next(r));
        if (rc == 0)
            break;
        if (page.n == q->limit) {
            page.more = true;
            break;
        }
        CF_GUARD_OUT(entry_from_row(r, &page.items[page.n]));
        page.n++;
    }
    *ret = page;
    memset(&page, 0, sizeof(page));
    rc = 0;
out:
    cf_store_rows_close(r);
    cf_audit_page_free(&page);
    cf_buf_free(&sql);
    return rc;
}
