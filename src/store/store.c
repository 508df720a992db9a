/*
 * Backend-independent half of cf_store: DSN dispatch, argument checks, the
 * concurrent-use detector, typed column getters, transaction state, the retry
 * helper and schema migrations. The semantics are documented in store.h and
 * docs/internals/store.md; the backends (sqlite.c, pg.c) only translate.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/err.h"
#include "base/limits.h"
#include "base/parse.h"
#include "store/store.h"
#include "store/store_int.h"

#define SQLITE_PREFIX "sqlite:"
#define PG_PREFIX1 "postgres://"
#define PG_PREFIX2 "postgresql://"

int cf_store__fail(cf_store *s, int err, bool retryable, const char *fmt, ...)
{
    char msg[256];
    va_list ap;

    va_start(ap, fmt);
    /* Truncation is acceptable for a diagnostic message. */
    (void)vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (s != NULL) {
        s->retryable = retryable;
        if (s->in_tx)
            s->tx_failed = true;
    }
    return cf_err_set(err, "%s", msg);
}

/* ---- concurrent-use detector ------------------------------------------------ */

static int enter(cf_store *s)
{
    if (atomic_exchange(&s->busy, 1) != 0)
        return cf_err_set(CF_E_INTERNAL, "store: handle used from two threads at once "
                                         "(use one cf_store per thread)");
    return 0;
}

static void leave(cf_store *s) { atomic_store(&s->busy, 0); }

/* ---- open / close ------------------------------------------------------------ */

static bool has_prefix(const char *s, const char *p) { return strncmp(s, p, strlen(p)) == 0; }

int cf_store_open(const char *dsn, cf_store **ret)
{
    cf_store *s = NULL;
    size_t n;
    int rc;

    CF_ENSURE(dsn != NULL && ret != NULL, CF_E_INVAL);
    n = strnlen(dsn, CF_STORE_MAX_DSN + 1);
    if (n > CF_STORE_MAX_DSN)
        return cf_err_set(CF_E_TOO_LARGE, "store: DSN longer than %u bytes", CF_STORE_MAX_DSN);
    s = calloc(1, sizeof(*s));
    CF_ENSURE(s != NULL, CF_E_NOMEM);
    atomic_init(&s->busy, 0);
    if (has_prefix(dsn, SQLITE_PREFIX)) {
        const char *path = dsn + strlen(SQLITE_PREFIX);
        CF_ENSURE_OUT(path[0] != '\0',
                      cf_err_set(CF_E_CONFIG, "store: empty path in sqlite DSN"));
        CF_GUARD_OUT(cf_store__sqlite_open(path, s));
    } else if (has_prefix(dsn, PG_PREFIX1) || has_prefix(dsn, PG_PREFIX2)) {
        CF_GUARD_OUT(cf_store__pg_open(dsn, s));
    } else {
        /* The DSN may hold a password: do not echo it. */
        rc = cf_err_set(CF_E_CONFIG, "store: unknown DSN scheme (expected sqlite:, postgres:// "
                                     "or postgresql://)");
        goto out;
    }
    *ret = s;
    s = NULL;
    rc = 0;
out:
    free(s);
    return rc;
}

void cf_store_close(cf_store *s)
{
    if (s == NULL)
        return;
    if (s->in_tx)
        s->ops->rollback(s);
    s->ops->close(s);
    free(s);
}

cf_store_backend_kind cf_store_backend(const cf_store *s) { return s->ops->kind; }

bool cf_store_in_tx(const cf_store *s) { return s->in_tx; }

int cf_store_set_busy_timeout(cf_store *s, uint32_t ms)
{
    int rc;

    CF_ENSURE(s != NULL, CF_E_INVAL);
    if (ms > 3600u * 1000u)
        return cf_err_set(CF_E_RANGE, "store: busy timeout above one hour");
    if (s->in_tx)
        return cf_err_set(CF_E_INVAL, "store: cannot change the busy timeout inside a transaction");
    CF_GUARD(enter(s));
    rc = s->ops->set_busy_timeout(s, ms);
    leave(s);
    return rc;
}

/* ---- statement checks -------------------------------------------------------- */

/* Transaction control must go through cf_store_begin/commit/rollback, or the
 * handle's idea of the transaction state would be wrong. */
static bool is_tx_control(const char *sql)
{
    static const char *const words[] = {"BEGIN", "COMMIT", "END", "ROLLBACK", "SAVEPOINT",
                                        "RELEASE", "START", "ABORT"};
    char w[12];
    size_t i = 0, k = 0;

    while (sql[i] == ' ' || sql[i] == '\t' || sql[i] == '\n' || sql[i] == '\r')
        i++;
    while (k < sizeof(w) - 1 && ((sql[i] >= 'a' && sql[i] <= 'z') ||
                                 (sql[i] >= 'A' && sql[i] <= 'Z'))) {
        w[k++] = (char)(sql[i] & ~0x20); /* ASCII upper case */
        i++;
    }
    w[k] = '\0';
    for (size_t j = 0; j < CF_ARRAY_LEN(words); j++)
        if (strcmp(w, words[j]) == 0)
            return true;
    return false;
}

static int check_stmt(cf_store *s, const char *sql, const cf_store_val *p, size_t n)
{
    if (sql == NULL || (n > 0 && p == NULL))
        return cf_err_set(CF_E_INVAL, "store: missing SQL or parameters");
    if (strnlen(sql, CF_STORE_MAX_SQL + 1) > CF_STORE_MAX_SQL)
        return cf_err_set(CF_E_TOO_LARGE, "store: statement longer than %u bytes",
                          CF_STORE_MAX_SQL);
    if (n > CF_STORE_MAX_PARAMS)
        return cf_err_set(CF_E_TOO_LARGE, "store: more than %d parameters", CF_STORE_MAX_PARAMS);
    if (is_tx_control(sql))
        return cf_err_set(CF_E_INVAL, "store: use cf_store_begin/commit/rollback for "
                                      "transaction control");
    for (size_t i = 0; i < n; i++) {
        switch (p[i].type) {
        case CF_STORE_NULL:
        case CF_STORE_INT:
            break;
        case CF_STORE_TEXT:
        case CF_STORE_BLOB:
            if (p[i].n > CF_STORE_MAX_VALUE)
                return cf_err_set(CF_E_TOO_LARGE, "store: parameter %zu longer than %u bytes",
                                  i + 1, CF_STORE_MAX_VALUE);
            if (p[i].n > 0 && p[i].p == NULL)
                return cf_err_set(CF_E_INVAL, "store: parameter %zu has no data", i + 1);
            if (p[i].type == CF_STORE_TEXT && p[i].n > 0 && memchr(p[i].p, 0, p[i].n) != NULL)
                return cf_err_set(CF_E_INVAL, "store: text parameter %zu contains a NUL byte",
                                  i + 1);
            break;
        default:
            return cf_err_set(CF_E_INVAL, "store: parameter %zu has an unknown type", i + 1);
        }
    }
    if (s->in_tx && s->tx_failed)
        return cf_err_set(s->retryable ? CF_E_UNAVAILABLE : CF_E_CONFLICT,
                          "store: transaction aborted by an earlier error; roll back");
    return 0;
}

/* Any failed statement inside a transaction poisons it, on both backends (a
 * PostgreSQL transaction is unusable after an error anyway; SQLite would go on
 * with a partial transaction, which we refuse). */
static int poison(cf_store *s, int rc)
{
    if (rc < 0 && s->in_tx)
        s->tx_failed = true;
    return rc;
}

/* ---- statements ---------------------------------------------------------------- */

int cf_store_exec(cf_store *s, const char *sql, const cf_store_val *params, size_t nparams,
                  int64_t *ret_changes)
{
    int64_t changes = 0;
    int rc;

    CF_ENSURE(s != NULL, CF_E_INVAL);
    CF_GUARD(enter(s));
    rc = check_stmt(s, sql, params, nparams);
    if (rc == 0)
        rc = s->ops->exec(s, sql, params, nparams, &changes);
    leave(s);
    if (poison(s, rc) < 0)
        return rc;
    if (ret_changes != NULL)
        *ret_changes = changes;
    return 0;
}

int cf_store_query(cf_store *s, const char *sql, const cf_store_val *params, size_t nparams,
                   cf_store_rows **ret_rows)
{
    cf_store_rows *r = NULL;
    int rc;

    CF_ENSURE(s != NULL && ret_rows != NULL, CF_E_INVAL);
    CF_GUARD(enter(s));
    CF_GUARD_OUT(check_stmt(s, sql, params, nparams));
    r = calloc(1, sizeof(*r));
    CF_ENSURE_OUT(r != NULL, CF_E_NOMEM);
    r->s = s;
    CF_GUARD_OUT(s->ops->query(s, sql, params, nparams, r));
    *ret_rows = r;
    r = NULL;
    rc = 0;
out:
    free(r);
    leave(s);
    return poison(s, rc);
}

int cf_store_next(cf_store_rows *r)
{
    int rc;

    CF_ENSURE(r != NULL, CF_E_INVAL);
    if (r->done) {
        r->on_row = false;
        return 0;
    }
    CF_GUARD(enter(r->s));
    rc = r->s->ops->next(r);
    r->on_row = rc == 1;
    r->done = rc != 1;
    leave(r->s);
    return poison(r->s, rc);
}

int cf_store_query_row(cf_store *s, const char *sql, const cf_store_val *params, size_t nparams,
                       cf_store_rows **ret_rows)
{
    cf_store_rows *r = NULL;
    int rc;

    CF_GUARD(cf_store_query(s, sql, params, nparams, &r));
    rc = cf_store_next(r);
    if (rc < 0)
        goto out;
    /* No row is an answer, not a failed statement: it does not poison. */
    CF_ENSURE_OUT(rc == 1, cf_err_set(CF_E_NOT_FOUND, "store: no matching row"));
    *ret_rows = r;
    r = NULL;
    rc = 0;
out:
    cf_store_rows_close(r);
    return rc;
}

void cf_store_rows_close(cf_store_rows *r)
{
    if (r == NULL)
        return;
    r->s->ops->rows_close(r);
    free(r);
}

/* ---- typed getters ----------------------------------------------------------- */

static const char *kind_name(const store_cell *c)
{
    switch (c->kind) {
    case STORE_CELL_NULL:
        return "NULL";
    case STORE_CELL_INT:
        return "an integer";
    case STORE_CELL_TEXT:
        return "text";
    case STORE_CELL_BLOB:
        return "a blob";
    default:
        return c->other != NULL ? c->other : "of an unsupported type";
    }
}

static int get_cell(const cf_store_rows *r, int col, store_cell_kind want, store_cell *ret)
{
    static const char *const want_names[] = {"NULL", "an integer", "text", "a blob", "?"};
    store_cell c;

    if (r == NULL || ret == NULL)
        return cf_err_set(CF_E_INVAL, "store: missing cursor");
    if (!r->on_row)
        return cf_err_set(CF_E_INVAL, "store: cursor is not on a row");
    if (col < 0 || col >= r->ncols)
        return cf_err_set(CF_E_INVAL, "store: column %d out of range (%d columns)", col,
                          r->ncols);
    memset(&c, 0, sizeof(c));
    r->s->ops->cell(r, col, &c);
    if (c.kind != want)
        return cf_err_set(CF_E_INVAL, "store: column %d is %s, expected %s", col, kind_name(&c),
                          want_names[want]);
    if ((want == STORE_CELL_TEXT || want == STORE_CELL_BLOB) && c.n > CF_STORE_MAX_VALUE)
        return cf_err_set(CF_E_TOO_LARGE, "store: column %d longer than %u bytes", col,
                          CF_STORE_MAX_VALUE);
    *ret = c;
    return 0;
}

int cf_store_col_count(const cf_store_rows *r) { return r != NULL ? r->ncols : 0; }

int cf_store_col_is_null(const cf_store_rows *r, int col, bool *ret)
{
    store_cell c;

    if (r == NULL || ret == NULL || !r->on_row || col < 0 || col >= r->ncols)
        return cf_err_set(CF_E_INVAL, "store: no such column %d on the current row", col);
    memset(&c, 0, sizeof(c));
    r->s->ops->cell(r, col, &c);
    *ret = c.kind == STORE_CELL_NULL;
    return 0;
}

int cf_store_col_i64(const cf_store_rows *r, int col, int64_t *ret)
{
    store_cell c;

    CF_GUARD(get_cell(r, col, STORE_CELL_INT, &c));
    *ret = c.i;
    return 0;
}

static int text_cell(const cf_store_rows *r, int col, store_cell *c)
{
    CF_GUARD(get_cell(r, col, STORE_CELL_TEXT, c));
    if (c->n > 0 && memchr(c->p, 0, c->n) != NULL)
        return cf_err_set(CF_E_PARSE, "store: text in column %d contains a NUL byte", col);
    return 0;
}

int cf_store_col_text(const cf_store_rows *r, int col, char *out, size_t out_size,
                      size_t *ret_len)
{
    store_cell c;

    CF_ENSURE(out != NULL, CF_E_INVAL);
    CF_GUARD(text_cell(r, col, &c));
    if (c.n >= out_size)
        return cf_err_set(CF_E_TOO_LARGE, "store: text in column %d longer than %zu bytes", col,
                          out_size > 0 ? out_size - 1 : 0);
    if (c.n > 0)
        memcpy(out, c.p, c.n);
    out[c.n] = '\0';
    if (ret_len != NULL)
        *ret_len = c.n;
    return 0;
}

int cf_store_col_text_dup(const cf_store_rows *r, int col, size_t max_len, char **ret)
{
    store_cell c;
    char *d;

    CF_ENSURE(ret != NULL, CF_E_INVAL);
    CF_GUARD(text_cell(r, col, &c));
    if (c.n > max_len)
        return cf_err_set(CF_E_TOO_LARGE, "store: text in column %d longer than %zu bytes", col,
                          max_len);
    d = malloc(c.n + 1);
    CF_ENSURE(d != NULL, CF_E_NOMEM);
    if (c.n > 0)
        memcpy(d, c.p, c.n);
    d[c.n] = '\0';
    *ret = d;
    return 0;
}

int cf_store_col_blob(const cf_store_rows *r, int col, uint8_t *out, size_t out_size,
                      size_t *ret_len)
{
    store_cell c;

    CF_GUARD(get_cell(r, col, STORE_CELL_BLOB, &c));
    if (c.n > out_size)
        return cf_err_set(CF_E_TOO_LARGE, "store: blob in column %d longer than %zu bytes", col,
                          out_size);
    if (c.n > 0) {
        CF_ENSURE(out != NULL, CF_E_INVAL);
        memcpy(out, c.p, c.n);
    }
    if (ret_len != NULL)
        *ret_len = c.n;
    return 0;
}

int cf_store_col_blob_buf(const cf_store_rows *r, int col, cf_buf *b)
{
    store_cell c;

    CF_ENSURE(b != NULL, CF_E_INVAL);
    CF_GUARD(get_cell(r, col, STORE_CELL_BLOB, &c));
    if (c.n == 0)
        return 0;
    if (cf_buf_put(b, c.p, c.n) < 0)
        return cf_err_set(CF_E_TOO_LARGE, "store: blob in column %d (%zu bytes) does not fit",
                          col, c.n);
    return 0;
}

/* ---- transactions ---------------------------------------------------------- */

static int tx_begin(cf_store *s, store_tx_mode mode)
{
    int rc;

    CF_ENSURE(s != NULL, CF_E_INVAL);
    if (s->in_tx)
        return cf_err_set(CF_E_INVAL, "store: a transaction is already open on this handle");
    CF_GUARD(enter(s));
    s->retryable = false;
    s->tx_failed = false;
    rc = s->ops->begin(s, mode);
    if (rc == 0)
        s->in_tx = true;
    leave(s);
    return rc;
}

int cf_store_begin(cf_store *s) { return tx_begin(s, STORE_TX_SERIAL); }

int cf_store_commit(cf_store *s)
{
    int rc;

    CF_ENSURE(s != NULL, CF_E_INVAL);
    if (!s->in_tx)
        return cf_err_set(CF_E_INVAL, "store: commit without a transaction");
    CF_GUARD(enter(s));
    if (s->tx_failed) {
        rc = cf_err_set(s->retryable ? CF_E_UNAVAILABLE : CF_E_CONFLICT,
                        "store: transaction aborted by an earlier error; rolled back");
        s->ops->rollback(s);
    } else {
        rc = s->ops->commit(s);
        /* A failed commit leaves nothing behind: the backend may still hold
         * the open transaction (SQLite BUSY), so roll it back. */
        if (rc < 0)
            s->ops->rollback(s);
    }
    s->in_tx = false;
    s->tx_failed = false;
    leave(s);
    return rc;
}

void cf_store_rollback(cf_store *s)
{
    if (s == NULL || !s->in_tx)
        return;
    if (enter(s) < 0)
        return;
    s->ops->rollback(s);
    s->in_tx = false;
    s->tx_failed = false;
    leave(s);
}

/* Randomized back-off between attempts, so that two processes that collided
 * do not collide again in lock-step. Not security relevant: a thread-local
 * xorshift seeded from the clock and pid is enough. */
static void backoff(int attempt)
{
    static _Thread_local uint64_t state;
    struct timespec ts;
    uint64_t cap_ms, r;

    if (state == 0) {
        (void)clock_gettime(CLOCK_MONOTONIC, &ts);
        state = ((uint64_t)ts.tv_nsec << 20) ^ (uint64_t)ts.tv_sec ^
                ((uint64_t)getpid() << 40) ^ 0x9e3779b97f4a7c15ull;
    }
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    r = state;
    cap_ms = 1ull << (attempt < 10 ? attempt : 10);
    if (cap_ms > CF_STORE_TX_BACKOFF_MAX_MS)
        cap_ms = CF_STORE_TX_BACKOFF_MAX_MS;
    r %= cap_ms * 1000000ull + 1;
    ts.tv_sec = (time_t)(r / 1000000000ull);
    ts.tv_nsec = (long)(r % 1000000000ull);
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static int run_tx(cf_store *s, store_tx_mode mode, cf_store_tx_fn fn, void *ctx)
{
    int rc = CF_E_INTERNAL;

    CF_ENSURE(s != NULL && fn != NULL, CF_E_INVAL);
    if (s->in_tx)
        return cf_err_set(CF_E_INVAL, "store: cf_store_tx inside an open transaction");
    for (int attempt = 1; attempt <= CF_STORE_TX_MAX_ATTEMPTS; attempt++) {
        rc = tx_begin(s, mode);
        if (rc == 0) {
            rc = fn(s, ctx);
            if (rc > 0)
                rc = cf_err_set(CF_E_INTERNAL, "store: transaction callback returned %d", rc);
            if (rc == 0 && !s->in_tx)
                rc = cf_err_set(CF_E_INVAL, "store: transaction callback ended the transaction");
            if (rc == 0)
                rc = cf_store_commit(s);
            else
                cf_store_rollback(s);
        }
        if (rc == 0)
            return 0;
        if (rc != CF_E_UNAVAILABLE || !s->retryable)
            return rc;
        if (attempt < CF_STORE_TX_MAX_ATTEMPTS)
            backoff(attempt);
    }
    return cf_err_set(CF_E_UNAVAILABLE, "store: still busy or conflicting after %d attempts",
                      CF_STORE_TX_MAX_ATTEMPTS);
}

int cf_store_tx(cf_store *s, cf_store_tx_fn fn, void *ctx)
{
    return run_tx(s, STORE_TX_SERIAL, fn, ctx);
}

/* ---- migrations ------------------------------------------------------------ */

static const char schema_table_sql[] =
    "CREATE TABLE IF NOT EXISTS schema_version ("
    " scope TEXT NOT NULL,"
    " version BIGINT NOT NULL,"
    " name TEXT NOT NULL,"
    " applied_at BIGINT NOT NULL,"
    " PRIMARY KEY (scope, version))";

struct mig_ctx {
    const char *scope;
    const cf_store_migration *steps;
    size_t nsteps;
    size_t step; /* index being applied (apply_step) */
    bool applied; /* apply_step: it was applied now, not earlier */
};

static const cf_store_migration *find_step(const struct mig_ctx *m, int64_t version)
{
    for (size_t i = 0; i < m->nsteps; i++)
        if (m->steps[i].version == version)
            return &m->steps[i];
    return NULL;
}

/* Every version recorded for the scope must be one this binary knows; a
 * higher one means a newer binary migrated the store (fail, change nothing). */
static int check_known(cf_store *s, const struct mig_ctx *m)
{
    cf_store_rows *r = NULL;
    int64_t v, last = m->steps[m->nsteps - 1].version;
    int rc;

    CF_GUARD_OUT(cf_store_query(s, "SELECT version FROM schema_version WHERE scope = ? "
                                   "ORDER BY version",
                                CF_STORE_ARGS(cf_sv_text(m->scope)), &r));
    while ((rc = cf_store_next(r)) == 1) {
        CF_GUARD_OUT(cf_store_col_i64(r, 0, &v));
        if (v > last) {
            rc = cf_err_set(CF_E_UNSUPPORTED,
                            "store: schema of '%s' is at version %lld but this binary knows "
                            "versions up to %lld; run a newer binary",
                            m->scope, (long long)v, (long long)last);
            goto out;
        }
        if (find_step(m, v) == NULL) {
            rc = cf_err_set(CF_E_UNSUPPORTED,
                            "store: schema of '%s' has version %lld applied, which this binary "
                            "does not know",
                            m->scope, (long long)v);
            goto out;
        }
    }
out:
    cf_store_rows_close(r);
    return rc;
}

static int bootstrap_tx(cf_store *s, void *ctx)
{
    struct mig_ctx *m = ctx;

    CF_GUARD(s->ops->migrate_prepare(s));
    CF_GUARD(cf_store_exec(s, schema_table_sql, NULL, 0, NULL));
    return check_known(s, m);
}

static int exec_script(cf_store *s, const char *sql)
{
    int rc;

    CF_GUARD(enter(s));
    rc = s->ops->exec_script(s, sql);
    leave(s);
    return poison(s, rc);
}

static int apply_step_tx(cf_store *s, void *ctx)
{
    struct mig_ctx *m = ctx;
    const cf_store_migration *st = &m->steps[m->step];
    const char *sql = st->sql;
    cf_store_rows *r = NULL;
    int rc;

    m->applied = false;
    CF_GUARD(s->ops->migrate_prepare(s));
    /* Re-checked under the lock: another process may have moved on. */
    CF_GUARD(check_known(s, m));
    rc = cf_store_query_row(s, "SELECT version FROM schema_version WHERE scope = ? AND version = ?",
                            CF_STORE_ARGS(cf_sv_text(m->scope), cf_sv_int(st->version)), &r);
    cf_store_rows_close(r);
    if (rc == 0)
        return 0; /* already applied */
    if (rc != CF_E_NOT_FOUND)
        return rc;
    if (s->ops->kind == CF_STORE_POSTGRES && st->sql_pg != NULL)
        sql = st->sql_pg;
    CF_GUARD(exec_script(s, sql));
    CF_GUARD(cf_store_exec(s, "INSERT INTO schema_version (scope, version, name, applied_at) "
                              "VALUES (?, ?, ?, ?)",
                           CF_STORE_ARGS(cf_sv_text(m->scope), cf_sv_int(st->version),
                                         cf_sv_text(st->name), cf_sv_int((int64_t)time(NULL))),
                           NULL));
    m->applied = true;
    return 0;
}

static int check_migrations(const char *scope, const cf_store_migration *steps, size_t n)
{
    size_t len;

    if (scope == NULL || steps == NULL)
        return cf_err_set(CF_E_INVAL, "store: migrate needs a scope and steps");
    len = strnlen(scope, CF_NAME_MAX_LEN + 1);
    if (len == 0 || len > CF_NAME_MAX_LEN)
        return cf_err_set(CF_E_INVAL, "store: migration scope must be 1..%d bytes",
                          CF_NAME_MAX_LEN);
    if (n == 0 || n > CF_STORE_MAX_MIGRATIONS)
        return cf_err_set(CF_E_INVAL, "store: 1..%d migration steps expected",
                          CF_STORE_MAX_MIGRATIONS);
    for (size_t i = 0; i < n; i++) {
        const cf_store_migration *st = &steps[i];
        if (st->version < 1 || (i > 0 && st->version <= steps[i - 1].version))
            return cf_err_set(CF_E_INVAL, "store: migration versions must start at 1 or more "
                                          "and strictly increase (step %zu)", i);
        if (st->name == NULL || strnlen(st->name, CF_NAME_MAX_LEN + 1) > CF_NAME_MAX_LEN)
            return cf_err_set(CF_E_INVAL, "store: migration step %zu needs a short name", i);
        if (st->sql == NULL || strnlen(st->sql, CF_STORE_MAX_SCRIPT + 1) > CF_STORE_MAX_SCRIPT ||
            (st->sql_pg != NULL &&
             strnlen(st->sql_pg, CF_STORE_MAX_SCRIPT + 1) > CF_STORE_MAX_SCRIPT))
            return cf_err_set(CF_E_INVAL, "store: migration step %zu needs SQL of at most %u "
                                          "bytes", i, CF_STORE_MAX_SCRIPT);
    }
    return 0;
}

int cf_store_migrate(cf_store *s, const char *scope, const cf_store_migration *steps,
                     size_t nsteps)
{
    struct mig_ctx m = {.scope = scope, .steps = steps, .nsteps = nsteps};
    char detail[200];
    int rc;

    CF_ENSURE(s != NULL, CF_E_INVAL);
    CF_GUARD(check_migrations(scope, steps, nsteps));
    if (s->in_tx)
        return cf_err_set(CF_E_INVAL, "store: migrate inside an open transaction");
    CF_GUARD(run_tx(s, STORE_TX_MIGRATE, bootstrap_tx, &m));
    for (m.step = 0; m.step < nsteps; m.step++) {
        rc = run_tx(s, STORE_TX_MIGRATE, apply_step_tx, &m);
        if (rc < 0) {
            if (rc == CF_E_UNSUPPORTED)
                return rc;
            /* cf_err_detail points at the thread's buffer that cf_err_set
             * overwrites: copy it first (truncation is fine for a message). */
            (void)snprintf(detail, sizeof(detail), "%s", cf_err_detail(rc));
            return cf_err_set(rc, "store: migration '%s' %lld (%s) failed: %s", scope,
                              (long long)steps[m.step].version, steps[m.step].name, detail);
        }
    }
    return 0;
}

int cf_store_schema_version(cf_store *s, const char *scope, int64_t *ret)
{
    static const char sqlite_has[] =
        "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'";
    static const char pg_has[] =
        "SELECT count(*) FROM information_schema.tables WHERE table_name = 'schema_version' "
        "AND table_schema = current_schema()";
    cf_store_rows *r = NULL;
    int64_t n = 0, v = 0;
    bool null;
    int rc;

    CF_ENSURE(s != NULL && scope != NULL && ret != NULL, CF_E_INVAL);
    CF_GUARD_OUT(cf_store_query_row(s, s->ops->kind == CF_STORE_SQLITE ? sqlite_has : pg_has,
                                    NULL, 0, &r));
    CF_GUARD_OUT(cf_store_col_i64(r, 0, &n));
    cf_store_rows_close(r);
    r = NULL;
    if (n > 0) {
        CF_GUARD_OUT(cf_store_query_row(s, "SELECT max(version) FROM schema_version "
                                           "WHERE scope = ?",
                                        CF_STORE_ARGS(cf_sv_text(scope)), &r));
        CF_GUARD_OUT(cf_store_col_is_null(r, 0, &null));
        if (!null)
            CF_GUARD_OUT(cf_store_col_i64(r, 0, &v));
    }
    *ret = v;
    rc = 0;
out:
    cf_store_rows_close(r);
    return rc;
}
