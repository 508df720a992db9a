/*
 * SQLite backend of cf_store (DESIGN.md §8: the embedded default, one file
 * per service).
 *
 * Durability and concurrency choices, all from the SQLite documentation
 * (https://sqlite.org/wal.html, https://sqlite.org/pragma.html,
 * https://sqlite.org/lang_transaction.html):
 *  - journal_mode=WAL: readers do not block the writer and vice versa, and
 *    several processes can share the file.
 *  - synchronous=FULL: in WAL mode the WAL is fsync'ed at every commit, so a
 *    commit that returned survives power loss (NORMAL would only survive an
 *    application crash).
 *  - BEGIN IMMEDIATE: the write lock is taken when the transaction starts, so
 *    writers serialise across processes and "read, then update" inside one
 *    transaction is atomic. A deferred transaction could instead fail with
 *    SQLITE_BUSY when upgrading from read to write, without the busy handler.
 *  - a busy handler: lock waits are retried inside SQLite up to the busy
 *    timeout (sq_busy).
 *  - foreign_keys=ON (off by default for compatibility), secure_delete=ON
 *    (deleted content is overwritten, e.g. released one-time keys; copies
 *    may remain in the WAL until the next checkpoint), DEFENSIVE and no
 *    trusted schema (a tampered file cannot run SQL functions with side
 *    effects from its schema).
 * The connection is opened SQLITE_OPEN_NOMUTEX: a cf_store handle is used by
 * one thread at a time (store.h), so SQLite's per-connection mutex is not
 * needed.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/err.h"
#include "base/limits.h"
#include "base/parse.h"
#include "store/store_int.h"

struct sq_conn {
    sqlite3 *db;
    uint32_t busy_ms;    /* busy timeout */
    int64_t busy_start;  /* when the current wait began (ms, monotonic) */
    uint64_t rng;        /* jitter for the busy handler */
};

static sqlite3 *db_of(const cf_store *s) { return ((const struct sq_conn *)s->be)->db; }

static int64_t mono_ms(void)
{
    struct timespec ts;

    (void)clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Busy handler (sqlite3_busy_handler) instead of sqlite3_busy_timeout: the
 * built-in one sleeps in growing steps up to 100 ms, so a waiting process
 * keeps waking while the other holds the lock again and can starve for the
 * whole timeout. Short jittered polls (1-3 ms, up to 10 ms after many tries)
 * give waiters a fair chance at the gap between two transactions. */
static int sq_busy(void *arg, int count)
{
    struct sq_conn *c = arg;
    int64_t now = mono_ms();
    struct timespec ts;
    long us;

    if (count == 0)
        c->busy_start = now;
    if (now - c->busy_start >= (int64_t)c->busy_ms)
        return 0; /* give up: the statement fails with SQLITE_BUSY */
    c->rng ^= c->rng << 13;
    c->rng ^= c->rng >> 7;
    c->rng ^= c->rng << 17;
    us = 1000 + (long)(c->rng % 2000) + (count > 50 ? 7000 : 0);
    ts.tv_sec = 0;
    ts.tv_nsec = us * 1000;
    (void)nanosleep(&ts, NULL);
    return 1;
}

/* Maps a SQLite result code (extended codes are enabled) to a cf_err.
 * sqlite3_errmsg never contains bound parameter values: it names tables,
 * columns, constraints or SQL text, all of which come from our code. */
static int sq_fail(cf_store *s, int rc, const char *what)
{
    sqlite3 *db = s != NULL ? db_of(s) : NULL;
    const char *msg = db != NULL ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    bool retry = false;
    int err;

    switch (rc & 0xff) {
    case SQLITE_CONSTRAINT:
        err = (rc == SQLITE_CONSTRAINT_UNIQUE || rc == SQLITE_CONSTRAINT_PRIMARYKEY ||
               rc == SQLITE_CONSTRAINT_ROWID)
                  ? CF_E_EXISTS
                  : CF_E_CONFLICT;
        break;
    case SQLITE_BUSY:
        /* Another connection holds the lock longer than the busy timeout:
         * worth retrying the whole transaction (cf_store_tx). */
        err = CF_E_UNAVAILABLE;
        retry = true;
        break;
    case SQLITE_LOCKED:
        /* A conflict inside this connection (e.g. an open cursor on a table
         * being dropped): retrying the same thing would not help. */
        err = CF_E_CONFLICT;
        break;
    case SQLITE_NOMEM:
        err = CF_E_NOMEM;
        break;
    case SQLITE_TOOBIG:
        err = CF_E_TOO_LARGE;
        break;
    case SQLITE_RANGE:
    case SQLITE_MISMATCH:
    case SQLITE_MISUSE:
        err = CF_E_INVAL;
        break;
    default:
        /* IOERR, CORRUPT, FULL, CANTOPEN, READONLY, NOTADB, ERROR (bad SQL) ... */
        err = CF_E_STORE;
        break;
    }
    return cf_store__fail(s, err, retry, "store: %s: %s (sqlite %d)", what,
                          msg != NULL ? msg : "unknown error", rc);
}

/* Prepares exactly one statement with only anonymous `?` parameters, the
 * portable form (store.h), and binds params. SQLITE_STATIC borrows the
 * caller's bytes: only for statements finalized before the call returns. */
static int sq_prepare(cf_store *s, const char *sql, const cf_store_val *p, size_t n,
                      bool borrow, sqlite3_stmt **ret)
{
    sqlite3 *db = db_of(s);
    sqlite3_stmt *st = NULL, *extra = NULL;
    sqlite3_destructor_type keep = borrow ? SQLITE_STATIC : SQLITE_TRANSIENT;
    const char *tail = NULL, *tail2 = NULL;
    int rc, src;

    src = sqlite3_prepare_v2(db, sql, -1, &st, &tail);
    CF_ENSURE_OUT(src == SQLITE_OK, sq_fail(s, src, "prepare"));
    CF_ENSURE_OUT(st != NULL, cf_err_set(CF_E_INVAL, "store: empty statement"));
    /* The rest may only be whitespace or comments (one statement per call,
     * as PostgreSQL's extended protocol requires). */
    if (tail != NULL && tail[0] != '\0') {
        src = sqlite3_prepare_v2(db, tail, -1, &extra, &tail2);
        CF_ENSURE_OUT(src == SQLITE_OK && extra == NULL,
                      cf_err_set(CF_E_INVAL, "store: one statement per call"));
    }
    if ((size_t)sqlite3_bind_parameter_count(st) != n) {
        rc = cf_err_set(CF_E_INVAL, "store: statement has %d placeholders, %zu values given",
                        sqlite3_bind_parameter_count(st), n);
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        int idx = (int)i + 1;
        if (sqlite3_bind_parameter_name(st, idx) != NULL) {
            rc = cf_err_set(CF_E_INVAL, "store: only anonymous '?' placeholders are portable");
            goto out;
        }
        switch (p[i].type) {
        case CF_STORE_INT:
            src = sqlite3_bind_int64(st, idx, p[i].i);
            break;
        case CF_STORE_TEXT:
            /* A NULL pointer would bind SQL NULL: empty text needs "". */
            src = sqlite3_bind_text64(st, idx, p[i].n > 0 ? (const char *)p[i].p : "", p[i].n,
                                      keep, SQLITE_UTF8);
            break;
        case CF_STORE_BLOB:
            src = sqlite3_bind_blob64(st, idx, p[i].n > 0 ? p[i].p : "", p[i].n, keep);
            break;
        default:
            src = sqlite3_bind_null(st, idx);
            break;
        }
        CF_ENSURE_OUT(src == SQLITE_OK, sq_fail(s, src, "bind"));
    }
    *ret = st;
    st = NULL;
    rc = 0;
out:
    sqlite3_finalize(extra);
    sqlite3_finalize(st);
    return rc;
}

static int sq_exec(cf_store *s, const char *sql, const cf_store_val *p, size_t n,
                   int64_t *ret_changes)
{
    sqlite3 *db = db_of(s);
    sqlite3_stmt *st = NULL;
    sqlite3_int64 before;
    int rc, src;

    CF_GUARD(sq_prepare(s, sql, p, n, true, &st));
    before = sqlite3_total_changes64(db);
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
    }
    CF_ENSURE_OUT(src == SQLITE_DONE, sq_fail(s, src, "exec"));
    /* sqlite3_changes64 keeps the count of the last INSERT/UPDATE/DELETE, also
     * after other statements; if the total did not move, nothing changed. */
    *ret_changes = sqlite3_total_changes64(db) != before ? sqlite3_changes64(db) : 0;
    rc = 0;
out:
    sqlite3_finalize(st);
    return rc;
}

static int sq_query(cf_store *s, const char *sql, const cf_store_val *p, size_t n,
                    cf_store_rows *r)
{
    sqlite3_stmt *st = NULL;

    CF_GUARD(sq_prepare(s, sql, p, n, false, &st));
    r->be = st;
    r->ncols = sqlite3_column_count(st);
    return 0;
}

static int sq_next(cf_store_rows *r)
{
    int src = sqlite3_step(r->be);

    if (src == SQLITE_ROW)
        return 1;
    if (src == SQLITE_DONE)
        return 0;
    return sq_fail(r->s, src, "step");
}

static void sq_cell(const cf_store_rows *r, int col, store_cell *c)
{
    sqlite3_stmt *st = r->be;

    switch (sqlite3_column_type(st, col)) {
    case SQLITE_NULL:
        c->kind = STORE_CELL_NULL;
        break;
    case SQLITE_INTEGER:
        c->kind = STORE_CELL_INT;
        c->i = sqlite3_column_int64(st, col);
        break;
    case SQLITE_TEXT:
        /* Pointer first, then the size (sqlite3_column_bytes documentation). */
        c->p = sqlite3_column_text(st, col);
        c->n = (size_t)sqlite3_column_bytes(st, col);
        c->kind = c->p != NULL ? STORE_CELL_TEXT : STORE_CELL_OTHER;
        c->other = "unreadable (out of memory)";
        break;
    case SQLITE_BLOB:
        c->kind = STORE_CELL_BLOB;
        c->p = sqlite3_column_blob(st, col); /* NULL for an empty blob */
        c->n = (size_t)sqlite3_column_bytes(st, col);
        if (c->p == NULL && c->n > 0) {
            c->kind = STORE_CELL_OTHER;
            c->other = "unreadable (out of memory)";
        }
        break;
    default:
        c->kind = STORE_CELL_OTHER;
        c->other = "a floating-point number";
        break;
    }
}

static void sq_rows_close(cf_store_rows *r)
{
    sqlite3_finalize(r->be);
    r->be = NULL;
}

static int sq_simple(cf_store *s, const char *sql, const char *what)
{
    sqlite3_stmt *st = NULL;
    int rc, src;

    src = sqlite3_prepare_v2(db_of(s), sql, -1, &st, NULL);
    CF_ENSURE_OUT(src == SQLITE_OK, sq_fail(s, src, what));
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
    }
    CF_ENSURE_OUT(src == SQLITE_DONE, sq_fail(s, src, what));
    rc = 0;
out:
    sqlite3_finalize(st);
    return rc;
}

static int sq_exec_script(cf_store *s, const char *sql)
{
    char *errmsg = NULL;
    int src = sqlite3_exec(db_of(s), sql, NULL, NULL, &errmsg);

    sqlite3_free(errmsg); /* sqlite3_errmsg(db) holds the same text */
    if (src != SQLITE_OK)
        return sq_fail(s, src, "script");
    if (sqlite3_get_autocommit(db_of(s)))
        return cf_store__fail(s, CF_E_INVAL, false, "store: script ended the transaction");
    return 0;
}

static int sq_begin(cf_store *s, store_tx_mode mode)
{
    (void)mode; /* SQLite transactions are serial already */
    return sq_simple(s, "BEGIN IMMEDIATE", "begin");
}

static int sq_commit(cf_store *s) { return sq_simple(s, "COMMIT", "commit"); }

static void sq_rollback(cf_store *s)
{
    /* After some errors (e.g. SQLITE_FULL) SQLite already rolled back. */
    if (!sqlite3_get_autocommit(db_of(s)))
        (void)sq_simple(s, "ROLLBACK", "rollback");
}

static int sq_set_busy_timeout(cf_store *s, uint32_t ms)
{
    struct sq_conn *c = s->be;
    int src;

    c->busy_ms = ms;
    src = sqlite3_busy_handler(c->db, ms > 0 ? sq_busy : NULL, c);
    if (src != SQLITE_OK)
        return sq_fail(s, src, "busy handler");
    return 0;
}

static int sq_migrate_prepare(cf_store *s)
{
    (void)s; /* BEGIN IMMEDIATE already excludes other migrators */
    return 0;
}

static void sq_close(cf_store *s)
{
    struct sq_conn *c = s->be;

    /* close_v2: a forgotten cursor cannot keep the file open forever. */
    if (c != NULL) {
        sqlite3_close_v2(c->db);
        free(c);
    }
    s->be = NULL;
}

static const struct store_ops sqlite_ops = {
    .kind = CF_STORE_SQLITE,
    .name = "sqlite",
    .exec = sq_exec,
    .query = sq_query,
    .next = sq_next,
    .cell = sq_cell,
    .rows_close = sq_rows_close,
    .exec_script = sq_exec_script,
    .begin = sq_begin,
    .commit = sq_commit,
    .rollback = sq_rollback,
    .set_busy_timeout = sq_set_busy_timeout,
    .migrate_prepare = sq_migrate_prepare,
    .close = sq_close,
};

/* Runs a PRAGMA that answers with one text row and checks the answer. */
static int sq_pragma(cf_store *s, const char *sql, const char *want1, const char *want2)
{
    sqlite3_stmt *st = NULL;
    const unsigned char *v;
    int rc, src;

    src = sqlite3_prepare_v2(db_of(s), sql, -1, &st, NULL);
    CF_ENSURE_OUT(src == SQLITE_OK, sq_fail(s, src, "pragma"));
    src = sqlite3_step(st);
    CF_ENSURE_OUT(src == SQLITE_ROW || src == SQLITE_DONE, sq_fail(s, src, "pragma"));
    if (want1 != NULL) {
        v = src == SQLITE_ROW ? sqlite3_column_text(st, 0) : NULL;
        if (v == NULL || (strcmp((const char *)v, want1) != 0 &&
                          (want2 == NULL || strcmp((const char *)v, want2) != 0))) {
            rc = cf_err_set(CF_E_STORE, "store: '%s' did not take effect", sql);
            goto out;
        }
    }
    rc = 0;
out:
    sqlite3_finalize(st);
    return rc;
}

/* Creates the file with mode 0600 before SQLite does (it would use 0644 minus
 * umask; the store holds wrapped keys and registry state). SQLite gives the
 * -wal and -shm files the mode of the database file. A new file's directory
 * entry is fsync'ed so that it survives power loss. */
static int precreate(const char *path)
{
    char *dir_copy = NULL;
    int fd, dfd, rc;

    fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        if (errno == EEXIST)
            return 0;
        return cf_err_set(CF_E_STORE, "store: cannot create database file: %s", strerror(errno));
    }
    rc = fsync(fd);
    (void)close(fd);
    CF_ENSURE(rc == 0, cf_err_set(CF_E_STORE, "store: fsync of new database file failed"));
    dir_copy = cf_strndup_max(path, PATH_MAX);
    CF_ENSURE(dir_copy != NULL, CF_E_NOMEM);
    dfd = open(dirname(dir_copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    free(dir_copy);
    if (dfd >= 0) {
        (void)fsync(dfd);
        (void)close(dfd);
    }
    return 0;
}

int cf_store__sqlite_open(const char *path, cf_store *s)
{
    struct sq_conn *c = NULL;
    sqlite3 *db = NULL;
    bool memory = strcmp(path, ":memory:") == 0;
    struct timespec ts;
    int rc, src;

    s->ops = &sqlite_ops;
    if (!memory)
        CF_GUARD(precreate(path));
    c = calloc(1, sizeof(*c));
    CF_ENSURE(c != NULL, CF_E_NOMEM);
    (void)clock_gettime(CLOCK_MONOTONIC, &ts);
    c->rng = ((uint64_t)ts.tv_nsec << 24) ^ (uint64_t)getpid() ^ 0x9e3779b97f4a7c15ull;
    src = sqlite3_open_v2(path, &db,
                          SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX |
                              SQLITE_OPEN_NOFOLLOW,
                          NULL);
    if (db == NULL) {
        free(c);
        return cf_err_set(CF_E_NOMEM, "store: sqlite3_open_v2 failed");
    }
    c->db = db;
    s->be = c;
    CF_ENSURE_OUT(src == SQLITE_OK, sq_fail(s, src, "open"));
    (void)sqlite3_extended_result_codes(db, 1);
    (void)sqlite3_db_config(db, SQLITE_DBCONFIG_DEFENSIVE, 1, (int *)NULL);
    (void)sqlite3_db_config(db, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, (int *)NULL);
    (void)sqlite3_db_config(db, SQLITE_DBCONFIG_ENABLE_LOAD_EXTENSION, 0, (int *)NULL);
    CF_GUARD_OUT(sq_set_busy_timeout(s, CF_STORE_BUSY_TIMEOUT_MS));
    /* An in-memory database has no WAL; it answers "memory". Switching a new
     * file to WAL takes an exclusive lock for a moment, and SQLite may answer
     * BUSY to a second process doing the same without calling the busy handler:
     * retry that step, bounded (several services or replicas may open one file
     * at the same time). */
    for (int attempt = 0;; attempt++) {
        rc = sq_pragma(s, "PRAGMA journal_mode=WAL", "wal", memory ? "memory" : NULL);
        if (rc != CF_E_UNAVAILABLE || attempt >= 100)
            break;
        struct timespec pause = {0, (long)(5 + (c->rng = c->rng * 6364136223846793005ull + 1) % 20) * 1000000L};
        nanosleep(&pause, NULL);
    }
    CF_GUARD_OUT(rc);
    CF_GUARD_OUT(sq_pragma(s, "PRAGMA synchronous=FULL", NULL, NULL));
    CF_GUARD_OUT(sq_pragma(s, "PRAGMA synchronous", "2", NULL));
    CF_GUARD_OUT(sq_pragma(s, "PRAGMA foreign_keys=ON", NULL, NULL));
    CF_GUARD_OUT(sq_pragma(s, "PRAGMA foreign_keys", "1", NULL));
    CF_GUARD_OUT(sq_pragma(s, "PRAGMA secure_delete=ON", "1", NULL));
    rc = 0;
out:
    if (rc < 0)
        sq_close(s);
    return rc;
}
