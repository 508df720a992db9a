/*
 * cf_store: the one storage interface every service uses (DESIGN.md §8).
 *
 * Backends, chosen by DSN:
 *   "sqlite:/path/to/file.db"   embedded default, one file per service; WAL,
 *                               synchronous=FULL, foreign keys on, file mode 0600
 *   "sqlite::memory:"           private in-memory database (tests)
 *   "postgres://..." / "postgresql://..."
 *                               libpq connection URI, for multi-node deployments
 * Same SQL, same semantics, same tests on both (see docs/internals/store.md).
 *
 * THREAD-SAFETY. One cf_store handle is one database connection and carries
 * one transaction state, so a handle (and the cursors made from it) must be
 * used by one thread at a time: give each thread its own handle. There is no
 * internal lock (it would not give two threads separate transactions);
 * concurrent use of a handle is detected and refused with CF_E_INTERNAL.
 * Distinct handles — in one process or in several — may be used concurrently:
 * isolation between them is the database's job (see transactions below).
 *
 * STATEMENTS. One statement per call, with positional `?` placeholders (the
 * PostgreSQL backend rewrites them to $1..$n outside quotes and comments).
 * Named or numbered parameters (:x, ?1, $1) and the `$` character outside
 * quotes are refused on both backends; PostgreSQL's jsonb `?` operators are
 * therefore unavailable (use jsonb_exists()). Values are bound, never spliced
 * into SQL text. A NULL value needs a type from its context (a column, or
 * CAST(? AS BIGINT)). Error messages never contain bound values.
 *
 * PORTABLE SCHEMA. Use the types TEXT, BIGINT (or INTEGER), BLOB; store times
 * as BIGINT unix seconds and booleans as 0/1. The PostgreSQL backend creates a
 * domain `blob` over bytea when it bootstraps migrations, so "BLOB" works in
 * both. Results must be integers, text or blobs (cast anything else in SQL,
 * e.g. CAST(sum(x) AS BIGINT)). Last-insert ids are not portable: generate
 * ids in the application or use INSERT ... RETURNING with cf_store_query.
 * INSERT ... ON CONFLICT DO NOTHING / DO UPDATE works on both.
 *
 * TRANSACTIONS. cf_store_begin starts a serializable write transaction:
 * SQLite "BEGIN IMMEDIATE" (takes the database write lock at once, so writers
 * serialise across processes and "read then update" is atomic), PostgreSQL
 * "BEGIN ISOLATION LEVEL SERIALIZABLE" (conflicts surface as SQLSTATE
 * 40001/40P01). Any failed statement inside a transaction poisons it on both
 * backends: later statements fail with CF_E_CONFLICT and only rollback is
 * possible (no partial state). Use cf_store_tx, which retries the whole
 * callback on busy/serialization failures.
 *
 * ERRORS. 0 on success or a negative cf_err (base/err.h), with a detail
 * through cf_err_detail():
 *   unique / primary-key violation           CF_E_EXISTS
 *   foreign-key, not-null, check violation   CF_E_CONFLICT
 *   busy, lock timeout, serialization failure,
 *   lost connection                          CF_E_UNAVAILABLE
 *   bad value (e.g. PostgreSQL data exception),
 *   wrong column type, API misuse            CF_E_INVAL
 *   value or statement too large             CF_E_TOO_LARGE
 *   I/O, corruption, disk full, bad SQL      CF_E_STORE
 *   newer schema than this binary knows      CF_E_UNSUPPORTED
 */
#ifndef COFFER_STORE_STORE_H
#define COFFER_STORE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "base/buf.h"
#include "base/compiler.h"

typedef struct cf_store cf_store;
typedef struct cf_store_rows cf_store_rows;

typedef enum { CF_STORE_SQLITE = 1, CF_STORE_POSTGRES = 2 } cf_store_backend_kind;

/* ---- bound values --------------------------------------------------------- */

typedef enum { CF_STORE_NULL = 0, CF_STORE_INT, CF_STORE_TEXT, CF_STORE_BLOB } cf_store_type;

/* A value bound to one `?`. Text and blob bytes are borrowed for the duration
 * of the call only. Text must not contain NUL bytes. */
typedef struct {
    cf_store_type type;
    int64_t i;
    const void *p;
    size_t n;
} cf_store_val;

static inline cf_store_val cf_sv_null(void)
{
    cf_store_val v = {.type = CF_STORE_NULL};
    return v;
}
static inline cf_store_val cf_sv_int(int64_t i)
{
    cf_store_val v = {.type = CF_STORE_INT, .i = i};
    return v;
}
/* A NUL-terminated string; NULL binds SQL NULL (for optional fields). */
static inline cf_store_val cf_sv_text(const char *s)
{
    cf_store_val v = {.type = s != NULL ? CF_STORE_TEXT : CF_STORE_NULL, .p = s,
                      .n = s != NULL ? strlen(s) : 0};
    return v;
}
/* n bytes of text (need not be NUL-terminated; must not contain NUL). */
static inline cf_store_val cf_sv_textn(const char *s, size_t n)
{
    cf_store_val v = {.type = CF_STORE_TEXT, .p = s, .n = n};
    return v;
}
/* n bytes of binary data (NUL bytes fine; n == 0 is an empty blob, not NULL). */
static inline cf_store_val cf_sv_blob(const void *p, size_t n)
{
    cf_store_val v = {.type = CF_STORE_BLOB, .p = p, .n = n};
    return v;
}

/* Expands to "params, nparams" for an inline list:
 *   cf_store_exec(s, "UPDATE otk SET state='released' WHERE id=? AND state='issued'",
 *                 CF_STORE_ARGS(cf_sv_text(id)), &changed); */
#define CF_STORE_ARGS(...)                                                               \
    ((const cf_store_val[]){__VA_ARGS__}),                                               \
        (sizeof((const cf_store_val[]){__VA_ARGS__}) / sizeof(cf_store_val))

/* ---- handles ---------------------------------------------------------------- */

/* Opens a handle (one connection) for dsn. SQLite files are created with mode
 * 0600 if missing; symlinks are refused. Caller releases with cf_store_close. */
int cf_store_open(const char *dsn, cf_store **ret) CF_WUR;
/* Closes the handle; an open transaction is rolled back. All cursors made from
 * it must be closed first. NULL is accepted. */
void cf_store_close(cf_store *s);
cf_store_backend_kind cf_store_backend(const cf_store *s);
/* How long a statement waits for a lock held by another connection before it
 * fails with CF_E_UNAVAILABLE (SQLite busy timeout, PostgreSQL lock_timeout).
 * Default CF_STORE_BUSY_TIMEOUT_MS. Not inside a transaction. */
int cf_store_set_busy_timeout(cf_store *s, uint32_t ms) CF_WUR;

/* ---- statements ------------------------------------------------------------- */

/* Runs one statement. ret_changes (may be NULL) receives the number of rows the
 * statement inserted, updated or deleted (0 for other statements), e.g. 1 or 0
 * for "UPDATE ... WHERE id=? AND state='issued'". Rows a statement returns
 * are discarded. params may be NULL when nparams is 0. */
int cf_store_exec(cf_store *s, const char *sql, const cf_store_val *params, size_t nparams,
                  int64_t *ret_changes) CF_WUR;

/* Runs one statement that returns rows (SELECT, or INSERT/UPDATE ... RETURNING)
 * and hands back a cursor positioned before the first row. Close it with
 * cf_store_rows_close. With SQLite rows are produced on demand; with
 * PostgreSQL the whole result is fetched at once, so bound it (LIMIT). */
int cf_store_query(cf_store *s, const char *sql, const cf_store_val *params, size_t nparams,
                   cf_store_rows **ret_rows) CF_WUR;
/* Like cf_store_query, then moves to the first row: CF_E_NOT_FOUND (and no
 * cursor) if there is none. Meant for lookups by key; further rows are left. */
int cf_store_query_row(cf_store *s, const char *sql, const cf_store_val *params, size_t nparams,
                       cf_store_rows **ret_rows) CF_WUR;
/* Advances: 1 = positioned on a row, 0 = no more rows, < 0 = error. */
int cf_store_next(cf_store_rows *r) CF_WUR;
void cf_store_rows_close(cf_store_rows *r);

/* Column getters for the current row; col is 0-based. Strictly typed: reading a
 * NULL or a value of another type is CF_E_INVAL (check cf_store_col_is_null
 * first for nullable columns). Copies are made at once; nothing returned
 * borrows the cursor. */
int cf_store_col_count(const cf_store_rows *r);
int cf_store_col_is_null(const cf_store_rows *r, int col, bool *ret) CF_WUR;
int cf_store_col_i64(const cf_store_rows *r, int col, int64_t *ret) CF_WUR;
/* Copies text and a terminating NUL into out (CF_E_TOO_LARGE if it does not
 * fit, CF_E_PARSE if the text holds a NUL byte). ret_len may be NULL. */
int cf_store_col_text(const cf_store_rows *r, int col, char *out, size_t out_size,
                      size_t *ret_len) CF_WUR;
/* Same, into a new malloc'd string of at most max_len bytes; caller frees. */
int cf_store_col_text_dup(const cf_store_rows *r, int col, size_t max_len, char **ret) CF_WUR;
/* Copies a blob into out (CF_E_TOO_LARGE if longer than out_size). */
int cf_store_col_blob(const cf_store_rows *r, int col, uint8_t *out, size_t out_size,
                      size_t *ret_len) CF_WUR;
/* Appends a blob to b, bounded by b's own maximum (use a secret buf for
 * secrets; note the database library keeps its own copies in its caches). */
int cf_store_col_blob_buf(const cf_store_rows *r, int col, cf_buf *b) CF_WUR;

/* ---- transactions ----------------------------------------------------------- */

/* See TRANSACTIONS above. Nested begin is CF_E_INVAL. A commit of a transaction
 * in which a statement failed rolls back and returns CF_E_CONFLICT. */
int cf_store_begin(cf_store *s) CF_WUR;
int cf_store_commit(cf_store *s) CF_WUR;
/* Always leaves the handle outside any transaction. No-op when none is open. */
void cf_store_rollback(cf_store *s);
bool cf_store_in_tx(const cf_store *s);

/* Runs fn in a transaction: begin, fn, commit. If fn returns an error the
 * transaction is rolled back and that error returned. If the failure was a
 * busy/lock timeout or a serialization failure (SQLite BUSY, PostgreSQL
 * 40001/40P01/55P03) — in begin, in fn or in commit — everything is rolled
 * back and the whole sequence is tried again, at most CF_STORE_TX_MAX_ATTEMPTS
 * times with a short randomized back-off; then CF_E_UNAVAILABLE. fn may
 * therefore run several times: it must not have effects outside the store,
 * or only idempotent ones. fn must close its cursors. */
typedef int (*cf_store_tx_fn)(cf_store *s, void *ctx);
int cf_store_tx(cf_store *s, cf_store_tx_fn fn, void *ctx) CF_WUR;

/* ---- schema migrations ------------------------------------------------------ */

/* One step. Versions start at 1 and strictly increase through the array; a
 * released step is never edited, only new steps appended. sql may hold several
 * statements (no parameters). sql_pg, if not NULL, replaces sql on PostgreSQL
 * (for the rare statement that cannot be written portably). */
typedef struct {
    int64_t version;
    const char *name; /* short description, recorded in schema_version */
    const char *sql;
    const char *sql_pg;
} cf_store_migration;

/* Brings the schema of `scope` (the service name, e.g. "kms") up to the last
 * step. Table schema_version (scope, version, name, applied_at) records what
 * was applied. Each step runs in its own transaction together with its
 * schema_version row; a failing step is rolled back and reported, earlier steps
 * stay. Idempotent, and safe with several processes starting at once (SQLite:
 * write lock; PostgreSQL: transaction-scoped advisory lock). If the store holds
 * a version this binary does not know (a newer binary migrated it), fails with
 * CF_E_UNSUPPORTED and changes nothing. */
int cf_store_migrate(cf_store *s, const char *scope, const cf_store_migration *steps,
                     size_t nsteps) CF_WUR;
/* Highest applied version of scope, 0 if none (or no schema_version table). */
int cf_store_schema_version(cf_store *s, const char *scope, int64_t *ret) CF_WUR;

#endif
