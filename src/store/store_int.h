/*
 * Internal to src/store: the backend vtable and the state shared by store.c
 * (public entry points, typed getters, transactions, migrations) and the
 * backends sqlite.c and pg.c. Not for use outside src/store and its tests.
 */
#ifndef COFFER_STORE_STORE_INT_H
#define COFFER_STORE_STORE_INT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/compiler.h"
#include "store/store.h"

/* What one column of the current row holds, as a backend reports it.
 * p borrows backend memory valid until the cursor moves or closes. */
typedef enum { STORE_CELL_NULL, STORE_CELL_INT, STORE_CELL_TEXT, STORE_CELL_BLOB,
               STORE_CELL_OTHER } store_cell_kind;

typedef struct {
    store_cell_kind kind;
    int64_t i;
    const uint8_t *p;
    size_t n;
    const char *other; /* STORE_CELL_OTHER: backend type name for the message */
} store_cell;

/* Transaction flavours. SERIAL is what cf_store_begin gives. MIGRATE is for
 * cf_store_migrate: on PostgreSQL a READ COMMITTED transaction holding an
 * advisory lock (a serializable snapshot taken before the lock wait would
 * hide a concurrent migrator's work); on SQLite the same as SERIAL. */
typedef enum { STORE_TX_SERIAL, STORE_TX_MIGRATE } store_tx_mode;

struct store_ops {
    cf_store_backend_kind kind;
    const char *name;
    int (*exec)(cf_store *s, const char *sql, const cf_store_val *p, size_t n,
                int64_t *ret_changes);
    int (*query)(cf_store *s, const char *sql, const cf_store_val *p, size_t n,
                 cf_store_rows *r);
    int (*next)(cf_store_rows *r);
    void (*cell)(const cf_store_rows *r, int col, store_cell *ret);
    void (*rows_close)(cf_store_rows *r);
    /* Several statements, no parameters, inside the current transaction;
     * fails if they ended that transaction (COMMIT in a migration step). */
    int (*exec_script)(cf_store *s, const char *sql);
    int (*begin)(cf_store *s, store_tx_mode mode);
    int (*commit)(cf_store *s);
    void (*rollback)(cf_store *s);
    int (*set_busy_timeout)(cf_store *s, uint32_t ms);
    /* Backend-specific bootstrap before migrations (inside the MIGRATE tx). */
    int (*migrate_prepare)(cf_store *s);
    void (*close)(cf_store *s);
};

struct cf_store {
    const struct store_ops *ops;
    void *be;            /* backend connection state */
    bool in_tx;
    bool tx_failed;      /* a statement failed inside the open transaction */
    bool retryable;      /* the last backend error was busy/serialization */
    atomic_int busy;     /* concurrent-use detector (see store.h THREAD-SAFETY) */
};

struct cf_store_rows {
    cf_store *s;
    void *be;            /* backend cursor state */
    int ncols;
    bool on_row;
    bool done;           /* end reached or failed: SQLite would restart the statement */
};

/* Records a backend failure on s (sets retryable, poisons an open transaction)
 * and the thread's error detail. Returns err. */
int cf_store__fail(cf_store *s, int err, bool retryable, const char *fmt, ...) CF_PRINTF(4, 5);

/* Backend constructors: dsn is validated (bounded, NUL-free) by store.c. */
int cf_store__sqlite_open(const char *path, cf_store *s) CF_WUR;
int cf_store__pg_open(const char *dsn, cf_store *s) CF_WUR;

/* PostgreSQL placeholder rewrite (exposed for tests): appends sql to out with
 * every `?` outside quotes, quoted identifiers and comments replaced by
 * $1..$n. Fails with CF_E_INVAL if the count differs from nparams, on `$`
 * outside quotes, or on an unterminated quote or comment. */
int cf_store__pg_rewrite(const char *sql, size_t nparams, cf_buf *out) CF_WUR;

#endif
