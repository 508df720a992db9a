/*
 * PostgreSQL backend of cf_store over libpq (DESIGN.md §8: multi-node
 * deployments, replicas stateless in front of one database).
 *
 * Semantics kept equal to the SQLite backend (store.h):
 *  - cf_store_begin is BEGIN ISOLATION LEVEL SERIALIZABLE. PostgreSQL's SSI
 *    makes every committed set of serializable transactions equivalent to
 *    some serial order, the guarantee SQLite's single writer gives; where it
 *    cannot, it aborts one transaction with SQLSTATE 40001
 *    (serialization_failure) or 40P01 (deadlock_detected), which cf_store_tx
 *    retries (PostgreSQL docs, "Transaction Isolation", §13.2.3).
 *  - lock_timeout = the busy timeout: a lock wait that exceeds it fails with
 *    55P03 (lock_not_available), also retried, like SQLITE_BUSY.
 *  - Statements are sent with PQexecParams (extended protocol: one statement,
 *    values never in the SQL text). Parameters travel in binary format with
 *    explicit types: int8 for integers, text, bytea. Results are requested in
 *    binary format, decoded for int2/int4/int8/bool, text-like types and
 *    bytea; other types must be cast in SQL.
 *  - `?` placeholders are rewritten to $1..$n outside string literals, quoted
 *    identifiers and comments (cf_store__pg_rewrite).
 *  - Migrations take a transaction-scoped advisory lock in a READ COMMITTED
 *    transaction, so replicas starting together apply each step once.
 *  - Whole results are fetched at once (PQexecParams); bound them with LIMIT.
 * Error messages: the server's primary message can quote a bound value (e.g.
 * 22P02 "invalid input syntax for type bigint: ..."), so it is passed on only
 * for SQLSTATE classes whose messages name objects, never data.
 */
#include <libpq-fe.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/limits.h"
#include "base/parse.h"
#include "store/store_int.h"

/* Type OIDs from PostgreSQL's pg_type.dat (stable across versions). */
#define OID_BOOL 16
#define OID_BYTEA 17
#define OID_NAME 19
#define OID_INT8 20
#define OID_INT2 21
#define OID_INT4 23
#define OID_TEXT 25
#define OID_UNKNOWN 705
#define OID_BPCHAR 1042
#define OID_VARCHAR 1043

/* Key of the advisory lock held while migrating: "Coffer" + 0001. */
#define MIGRATE_LOCK_KEY INT64_C(0x436f666665720001)

struct pg_conn {
    PGconn *conn;
    uint32_t lock_timeout_ms;
};

struct pg_rows {
    PGresult *res;
    int row;
    int nrows;
};

static PGconn *conn_of(const cf_store *s) { return ((struct pg_conn *)s->be)->conn; }

/* ---- placeholder rewrite ------------------------------------------------------ */

static char at(const char *s, size_t len, size_t i) { return i < len ? s[i] : '\0'; }

static bool ident_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '_' || (unsigned char)c >= 0x80;
}

/* Lexical rules from the PostgreSQL manual, "Lexical Structure" (§4.1):
 * '...' with '' as the escaped quote (standard_conforming_strings=on, which
 * the connection sets); E'...' where a backslash also escapes; "..." quoted
 * identifiers with ""; -- comments to the end of the line; nesting block
 * comments. Dollar quoting is refused: parameterized statements do not need
 * it, and `$` outside quotes is refused so that ? and $n never mix. */
int cf_store__pg_rewrite(const char *sql, size_t nparams, cf_buf *out)
{
    size_t len = strnlen(sql, CF_STORE_MAX_SQL + 1), i = 0, count = 0;
    bool ended = false; /* after a ';': only blanks and comments may follow */

    if (len > CF_STORE_MAX_SQL)
        return cf_err_set(CF_E_TOO_LARGE, "store: statement too long");
    while (i < len) {
        char c = sql[i];

        if (ended && c != ';' && c != ' ' && c != '\t' && c != '\n' && c != '\r' &&
            !(c == '-' && at(sql, len, i + 1) == '-') && !(c == '/' && at(sql, len, i + 1) == '*'))
            return cf_err_set(CF_E_INVAL, "store: one statement per call");
        if (c == '\'' || c == '"') {
            bool escapes = c == '\'' && i > 0 && (sql[i - 1] == 'E' || sql[i - 1] == 'e') &&
                           (i < 2 || !ident_char(sql[i - 2]));
            size_t j = i + 1;
            bool closed = false;
            while (j < len) {
                if (escapes && sql[j] == '\\' && j + 1 < len) {
                    j += 2;
                } else if (sql[j] == c) {
                    if (at(sql, len, j + 1) == c) {
                        j += 2; /* doubled quote */
                    } else {
                        j++;
                        closed = true;
                        break;
                    }
                } else {
                    j++;
                }
            }
            if (!closed)
                return cf_err_set(CF_E_INVAL, "store: unterminated quote in SQL");
            CF_GUARD(cf_buf_put(out, &sql[i], j - i));
            i = j;
        } else if (c == '-' && at(sql, len, i + 1) == '-') {
            size_t j = i;
            while (j < len && sql[j] != '\n')
                j++;
            CF_GUARD(cf_buf_put(out, &sql[i], j - i));
            i = j;
        } else if (c == '/' && at(sql, len, i + 1) == '*') {
            size_t j = i + 2, depth = 1;
            while (j < len && depth > 0) {
                if (sql[j] == '/' && at(sql, len, j + 1) == '*') {
                    depth++;
                    j += 2;
                } else if (sql[j] == '*' && at(sql, len, j + 1) == '/') {
                    depth--;
                    j += 2;
                } else {
                    j++;
                }
            }
            if (depth > 0)
                return cf_err_set(CF_E_INVAL, "store: unterminated comment in SQL");
            CF_GUARD(cf_buf_put(out, &sql[i], j - i));
            i = j;
        } else if (c == '?') {
            char d = at(sql, len, i + 1);
            if (d >= '0' && d <= '9')
                return cf_err_set(CF_E_INVAL, "store: numbered placeholders are not portable; "
                                              "use '?'");
            count++;
            if (count > CF_STORE_MAX_PARAMS)
                return cf_err_set(CF_E_TOO_LARGE, "store: more than %d placeholders",
                                  CF_STORE_MAX_PARAMS);
            CF_GUARD(cf_buf_printf(out, "$%zu", count));
            i++;
        } else if (c == '$') {
            return cf_err_set(CF_E_INVAL, "store: '$' outside quotes; use '?' placeholders");
        } else if (c == ';') {
            ended = true;
            CF_GUARD(cf_buf_put_u8(out, (uint8_t)c));
            i++;
        } else {
            CF_GUARD(cf_buf_put_u8(out, (uint8_t)c));
            i++;
        }
    }
    if (count != nparams)
        return cf_err_set(CF_E_INVAL, "store: statement has %zu placeholders, %zu values given",
                          count, nparams);
    return cf_buf_nul_terminate(out);
}

/* ---- errors ------------------------------------------------------------------- */

static bool starts(const char *s, const char *p) { return strncmp(s, p, strlen(p)) == 0; }

/* One line of libpq's message, without the trailing newline. */
static void one_line(const char *in, char *out, size_t size)
{
    size_t k = 0;

    for (size_t i = 0; in != NULL && in[i] != '\0' && k + 1 < size; i++)
        out[k++] = (in[i] == '\n' || in[i] == '\r' || in[i] == '\t') ? ' ' : in[i];
    while (k > 0 && out[k - 1] == ' ')
        k--;
    out[k] = '\0';
}

/* res may be NULL (client-side failure, e.g. lost connection). */
static int pg_fail(cf_store *s, const PGresult *res, const char *what)
{
    const char *state = res != NULL ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    const char *primary = res != NULL ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    const char *cons = res != NULL ? PQresultErrorField(res, PG_DIAG_CONSTRAINT_NAME) : NULL;
    const char *table = res != NULL ? PQresultErrorField(res, PG_DIAG_TABLE_NAME) : NULL;
    /* Classes whose messages name objects or conditions, never data values:
     * 08 connection, 0A unsupported, 25 transaction state, 40 rollback,
     * 42 syntax/access, 53 resources, 55 object state, 57 operator, 58 system. */
    static const char *const safe[] = {"08", "0A", "25", "40", "42", "53", "55", "57", "58"};
    char line[160];
    bool retry = false, show = false;
    int err;

    if (state == NULL || strlen(state) != 5) {
        one_line(PQerrorMessage(conn_of(s)), line, sizeof(line));
        return cf_store__fail(s, CF_E_UNAVAILABLE, false, "store: %s: %s", what,
                              line[0] != '\0' ? line : "connection failure");
    }
    for (size_t i = 0; i < CF_ARRAY_LEN(safe); i++)
        if (starts(state, safe[i]))
            show = true;
    if (strcmp(state, "23505") == 0) {
        err = CF_E_EXISTS;
    } else if (starts(state, "23")) {
        err = CF_E_CONFLICT;
    } else if (strcmp(state, "40001") == 0 || strcmp(state, "40P01") == 0 ||
               strcmp(state, "55P03") == 0) {
        err = CF_E_UNAVAILABLE;
        retry = true;
    } else if (starts(state, "08") || starts(state, "57P")) {
        err = CF_E_UNAVAILABLE;
    } else if (strcmp(state, "57014") == 0) {
        err = CF_E_TIMEOUT;
    } else if (starts(state, "22")) {
        err = CF_E_INVAL;
    } else if (starts(state, "54")) {
        err = CF_E_TOO_LARGE;
    } else if (starts(state, "25")) {
        err = CF_E_CONFLICT;
    } else {
        err = CF_E_STORE;
    }
    if (show) {
        one_line(primary, line, sizeof(line));
        return cf_store__fail(s, err, retry, "store: %s: %s (SQLSTATE %s)", what, line, state);
    }
    if (cons != NULL)
        return cf_store__fail(s, err, retry, "store: %s: constraint \"%s\"%s%s%s violated "
                              "(SQLSTATE %s)", what, cons, table ? " on table \"" : "",
                              table ? table : "", table ? "\"" : "", state);
    return cf_store__fail(s, err, retry, "store: %s: SQLSTATE %s", what, state);
}

/* ---- connection --------------------------------------------------------------- */

static void ignore_notice(void *arg, const char *msg)
{
    (void)arg;
    (void)msg; /* e.g. "relation already exists, skipping"; not ours to print */
}

static int pg_command(cf_store *s, const char *sql, const char *what)
{
    PGresult *res = PQexec(conn_of(s), sql);
    ExecStatusType st = res != NULL ? PQresultStatus(res) : PGRES_FATAL_ERROR;
    int rc = 0;

    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
        rc = pg_fail(s, res, what);
    PQclear(res);
    return rc;
}

/* Session settings, again after a reconnect. */
static int pg_setup(cf_store *s)
{
    struct pg_conn *pc = s->be;
    char sql[96];

    CF_GUARD(cf_fmt(sql, sizeof(sql),
                    "SET standard_conforming_strings = on; SET lock_timeout = %u",
                    pc->lock_timeout_ms));
    return pg_command(s, sql, "session setup");
}

/* A dropped connection is re-established between transactions only: inside
 * one, the transaction is gone and the caller must see the failure. */
static int pg_ready(cf_store *s)
{
    PGconn *conn = conn_of(s);

    if (PQstatus(conn) == CONNECTION_OK)
        return 0;
    if (s->in_tx)
        return cf_store__fail(s, CF_E_UNAVAILABLE, false,
                              "store: connection to PostgreSQL lost in a transaction");
    PQreset(conn);
    if (PQstatus(conn) != CONNECTION_OK)
        return cf_store__fail(s, CF_E_UNAVAILABLE, false, "store: cannot reconnect to PostgreSQL");
    return pg_setup(s);
}

/* ---- statements --------------------------------------------------------------- */

static int pg_run(cf_store *s, const char *sql, const cf_store_val *p, size_t n,
                  PGresult **ret)
{
    const char *values[CF_STORE_MAX_PARAMS];
    int lengths[CF_STORE_MAX_PARAMS], formats[CF_STORE_MAX_PARAMS];
    Oid types[CF_STORE_MAX_PARAMS];
    uint8_t ints[CF_STORE_MAX_PARAMS][8];
    cf_buf q;
    PGresult *res = NULL;
    ExecStatusType st;
    int rc;

    cf_buf_init(&q, CF_STORE_MAX_SQL + 4 * CF_STORE_MAX_PARAMS + 1);
    CF_GUARD_OUT(pg_ready(s));
    CF_GUARD_OUT(cf_store__pg_rewrite(sql, n, &q));
    for (size_t i = 0; i < n; i++) {
        formats[i] = 1; /* binary: exact bytes, no NUL terminator needed */
        switch (p[i].type) {
        case CF_STORE_INT:
            for (int b = 0; b < 8; b++)
                ints[i][b] = (uint8_t)((uint64_t)p[i].i >> (56 - 8 * b)); /* network order */
            types[i] = OID_INT8;
            values[i] = (const char *)ints[i];
            lengths[i] = 8;
            break;
        case CF_STORE_TEXT:
        case CF_STORE_BLOB:
            types[i] = p[i].type == CF_STORE_TEXT ? OID_TEXT : OID_BYTEA;
            values[i] = p[i].n > 0 ? (const char *)p[i].p : ""; /* NULL would mean SQL NULL */
            lengths[i] = (int)p[i].n; /* <= CF_STORE_MAX_VALUE, checked by store.c */
            break;
        default:
            types[i] = 0; /* inferred by the server */
            values[i] = NULL;
            lengths[i] = 0;
            break;
        }
    }
    res = PQexecParams(conn_of(s), (const char *)q.data, (int)n, types, values, lengths, formats,
                       1);
    st = res != NULL ? PQresultStatus(res) : PGRES_FATAL_ERROR;
    CF_ENSURE_OUT(st != PGRES_EMPTY_QUERY,
                  cf_store__fail(s, CF_E_INVAL, false, "store: empty statement"));
    CF_ENSURE_OUT(st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK, pg_fail(s, res, "statement"));
    *ret = res;
    res = NULL;
    rc = 0;
out:
    PQclear(res);
    cf_buf_free(&q);
    return rc;
}

static int pg_exec(cf_store *s, const char *sql, const cf_store_val *p, size_t n,
                   int64_t *ret_changes)
{
    PGresult *res = NULL;
    const char *status, *tuples;
    uint64_t v = 0;
    int rc;

    CF_GUARD(pg_run(s, sql, p, n, &res));
    /* The command tag counts rows only for data-changing commands; SELECT's
     * count is not a change (SQLite parity). */
    status = PQcmdStatus(res);
    tuples = PQcmdTuples(res);
    if ((starts(status, "INSERT ") || starts(status, "UPDATE ") || starts(status, "DELETE ") ||
         starts(status, "MERGE ")) &&
        tuples[0] != '\0') {
        rc = cf_parse_u64(tuples, INT64_MAX, &v);
        CF_ENSURE_OUT(rc == 0, cf_err_set(CF_E_STORE, "store: malformed command tag"));
    }
    *ret_changes = (int64_t)v;
    rc = 0;
out:
    PQclear(res);
    return rc;
}

static int pg_query(cf_store *s, const char *sql, const cf_store_val *p, size_t n,
                    cf_store_rows *r)
{
    struct pg_rows *pr = NULL;
    PGresult *res = NULL;
    int rc;

    pr = calloc(1, sizeof(*pr));
    CF_ENSURE_OUT(pr != NULL, CF_E_NOMEM);
    CF_GUARD_OUT(pg_run(s, sql, p, n, &res));
    pr->res = res;
    pr->row = -1;
    pr->nrows = PQntuples(res);
    r->ncols = PQnfields(res);
    r->be = pr;
    pr = NULL;
    rc = 0;
out:
    free(pr);
    return rc;
}

static int pg_next(cf_store_rows *r)
{
    struct pg_rows *pr = r->be;

    if (pr->row + 1 >= pr->nrows) {
        pr->row = pr->nrows;
        return 0;
    }
    pr->row++;
    return 1;
}

/* Binary result formats: integers in network byte order (PostgreSQL's
 * int2send/int4send/int8send/boolsend); text and bytea as raw bytes. */
static void pg_cell(const cf_store_rows *r, int col, store_cell *c)
{
    const struct pg_rows *pr = r->be;
    const uint8_t *v;
    size_t n;
    cf_buf rd;
    uint16_t u16;
    uint32_t u32;
    uint64_t u64;
    uint8_t u8;

    if (PQgetisnull(pr->res, pr->row, col)) {
        c->kind = STORE_CELL_NULL;
        return;
    }
    v = (const uint8_t *)PQgetvalue(pr->res, pr->row, col);
    n = (size_t)PQgetlength(pr->res, pr->row, col);
    cf_buf_view(&rd, v, n);
    c->kind = STORE_CELL_OTHER;
    c->other = "of a PostgreSQL type without a portable mapping (cast it in SQL)";
    switch (PQftype(pr->res, col)) {
    case OID_INT8:
        if (n == 8 && cf_buf_get_u64be(&rd, &u64) == 0) {
            c->kind = STORE_CELL_INT;
            c->i = (int64_t)u64;
        }
        break;
    case OID_INT4:
        if (n == 4 && cf_buf_get_u32be(&rd, &u32) == 0) {
            c->kind = STORE_CELL_INT;
            c->i = (int32_t)u32;
        }
        break;
    case OID_INT2:
        if (n == 2 && cf_buf_get_u16be(&rd, &u16) == 0) {
            c->kind = STORE_CELL_INT;
            c->i = (int16_t)u16;
        }
        break;
    case OID_BOOL:
        /* SQLite has no boolean: EXISTS(...) and comparisons give 0/1 there. */
        if (n == 1 && cf_buf_get_u8(&rd, &u8) == 0) {
            c->kind = STORE_CELL_INT;
            c->i = u8 != 0;
        }
        break;
    case OID_TEXT:
    case OID_VARCHAR:
    case OID_BPCHAR:
    case OID_NAME:
    case OID_UNKNOWN:
        c->kind = STORE_CELL_TEXT;
        c->p = v;
        c->n = n;
        break;
    case OID_BYTEA: /* also the `blob` domain: result columns carry the base type */
        c->kind = STORE_CELL_BLOB;
        c->p = v;
        c->n = n;
        break;
    default:
        break;
    }
}

static void pg_rows_close(cf_store_rows *r)
{
    struct pg_rows *pr = r->be;

    if (pr != NULL) {
        PQclear(pr->res);
        free(pr);
    }
    r->be = NULL;
}

static int pg_exec_script(cf_store *s, const char *sql)
{
    CF_GUARD(pg_ready(s));
    CF_GUARD(pg_command(s, sql, "script"));
    if (PQtransactionStatus(conn_of(s)) != PQTRANS_INTRANS)
        return cf_store__fail(s, CF_E_INVAL, false, "store: script ended the transaction");
    return 0;
}

static int pg_begin(cf_store *s, store_tx_mode mode)
{
    CF_GUARD(pg_ready(s));
    return pg_command(s,
                      mode == STORE_TX_MIGRATE ? "BEGIN ISOLATION LEVEL READ COMMITTED"
                                               : "BEGIN ISOLATION LEVEL SERIALIZABLE",
                      "begin");
}

static int pg_commit(cf_store *s)
{
    PGresult *res;
    int rc = 0;

    CF_GUARD(pg_ready(s));
    res = PQexec(conn_of(s), "COMMIT");
    if (res == NULL || PQresultStatus(res) != PGRES_COMMAND_OK)
        rc = pg_fail(s, res, "commit");
    else if (strcmp(PQcmdStatus(res), "COMMIT") != 0)
        /* COMMIT of a failed transaction "succeeds" with tag ROLLBACK. */
        rc = cf_store__fail(s, CF_E_CONFLICT, false, "store: commit: transaction was rolled back");
    PQclear(res);
    return rc;
}

static void pg_rollback(cf_store *s)
{
    PGconn *conn = conn_of(s);
    PGTransactionStatusType ts = PQtransactionStatus(conn);

    if (ts == PQTRANS_INTRANS || ts == PQTRANS_INERROR)
        PQclear(PQexec(conn, "ROLLBACK"));
}

static int pg_set_busy_timeout(cf_store *s, uint32_t ms)
{
    struct pg_conn *pc = s->be;

    pc->lock_timeout_ms = ms;
    CF_GUARD(pg_ready(s));
    return pg_setup(s);
}

/* Inside the MIGRATE transaction: one migrator at a time, then make "BLOB" a
 * valid type name (store.h PORTABLE SCHEMA). Result columns of a domain type
 * are described with the domain's base type, so BLOB columns read as bytea. */
static int pg_migrate_prepare(cf_store *s)
{
    cf_store_rows *r = NULL;
    int64_t have = 0;
    int rc;

    CF_GUARD_OUT(cf_store_exec(s, "SELECT pg_advisory_xact_lock(?)",
                               CF_STORE_ARGS(cf_sv_int(MIGRATE_LOCK_KEY)), NULL));
    CF_GUARD_OUT(cf_store_query_row(s, "SELECT CAST(count(*) AS BIGINT) FROM pg_type t "
                                       "JOIN pg_namespace n ON n.oid = t.typnamespace "
                                       "WHERE t.typname = 'blob' AND n.nspname = current_schema()",
                                    NULL, 0, &r));
    CF_GUARD_OUT(cf_store_col_i64(r, 0, &have));
    if (have == 0)
        CF_GUARD_OUT(cf_store_exec(s, "CREATE DOMAIN blob AS bytea", NULL, 0, NULL));
    rc = 0;
out:
    cf_store_rows_close(r);
    return rc;
}

static void pg_close(cf_store *s)
{
    struct pg_conn *pc = s->be;

    if (pc != NULL) {
        PQfinish(pc->conn);
        free(pc);
    }
    s->be = NULL;
}

static const struct store_ops pg_ops = {
    .kind = CF_STORE_POSTGRES,
    .name = "postgres",
    .exec = pg_exec,
    .query = pg_query,
    .next = pg_next,
    .cell = pg_cell,
    .rows_close = pg_rows_close,
    .exec_script = pg_exec_script,
    .begin = pg_begin,
    .commit = pg_commit,
    .rollback = pg_rollback,
    .set_busy_timeout = pg_set_busy_timeout,
    .migrate_prepare = pg_migrate_prepare,
    .close = pg_close,
};

int cf_store__pg_open(const char *dsn, cf_store *s)
{
    /* Keywords are applied in order, and the URI given as dbname is expanded
     * in place (expand_dbname): the DSN may override connect_timeout, but
     * client_encoding is always UTF8. */
    const char *const kw[] = {"connect_timeout", "dbname", "client_encoding", NULL};
    char timeout[16];
    const char *vals[4] = {timeout, dsn, "UTF8", NULL};
    struct pg_conn *pc = NULL;
    char line[160];
    int rc;

    s->ops = &pg_ops;
    CF_GUARD(cf_fmt(timeout, sizeof(timeout), "%u", CF_STORE_PG_CONNECT_TIMEOUT_S));
    pc = calloc(1, sizeof(*pc));
    CF_ENSURE(pc != NULL, CF_E_NOMEM);
    pc->lock_timeout_ms = CF_STORE_BUSY_TIMEOUT_MS;
    pc->conn = PQconnectdbParams(kw, vals, 1);
    CF_ENSURE_OUT(pc->conn != NULL, CF_E_NOMEM);
    s->be = pc;
    if (PQstatus(pc->conn) != CONNECTION_OK) {
        /* libpq's message names host, port and user, never the password. */
        one_line(PQerrorMessage(pc->conn), line, sizeof(line));
        rc = cf_err_set(CF_E_UNAVAILABLE, "store: cannot connect to PostgreSQL: %s", line);
        goto out;
    }
    PQsetNoticeProcessor(pc->conn, ignore_notice, NULL);
    CF_GUARD_OUT(pg_setup(s));
    rc = 0;
out:
    if (rc < 0) {
        if (pc != NULL)
            PQfinish(pc->conn);
        free(pc);
        s->be = NULL;
    }
    return rc;
}
