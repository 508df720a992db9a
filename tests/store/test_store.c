/*
 * cf_store tests. The same cases run against every backend (DESIGN.md §8:
 * "same schema, same tests, both backends"): first SQLite files in a temp
 * dir, then a throwaway PostgreSQL server that this program starts itself
 * (initdb + postgres on a unix socket in a temp dir, as the `postgres` user
 * when run as root, since the server refuses root) and stops by pid. Without
 * PostgreSQL server binaries the PostgreSQL half prints a SKIP line.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <glob.h>
#include <grp.h>
#include <libpq-fe.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/err.h"
#include "base/limits.h"
#include "store/store.h"
#include "store/store_int.h"
#include "test.h"

/* ---- environment ------------------------------------------------------------ */

static char g_tmp[PATH_MAX];          /* SQLite files */
static cf_store_backend_kind g_backend;
static int g_seq;
/* PostgreSQL server started by this program */
static pid_t g_pg_pid = -1;
static char g_pg_dir[PATH_MAX];
static char g_pg_bin[PATH_MAX];
static cf_store *g_pg_admin;

/* snprintf that aborts instead of truncating (paths in tests). */
static void tfmt(char *out, size_t size, const char *f, ...) __attribute__((format(printf, 3, 4)));
static void tfmt(char *out, size_t size, const char *f, ...)
{
    va_list ap;
    int n;

    va_start(ap, f);
    n = vsnprintf(out, size, f, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= size)
        abort();
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path) == 0 ? 0 : -1;
}

static void rm_tree(const char *dir)
{
    if (dir[0] != '\0')
        (void)nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* schema may be NULL; otherwise the connection's search_path (URI-encoded
 * "-c search_path=NAME" in libpq's options parameter). */
static void pg_uri(char *out, size_t size, const char *db, const char *schema)
{
    if ((size_t)snprintf(out, size, "postgresql:///%s?host=%s&port=5432&user=coffer%s%s", db,
                         g_pg_dir, schema != NULL ? "&options=-csearch_path%3D" : "",
                         schema != NULL ? schema : "") >= size)
        abort();
}

/* A DSN for an empty store of the current backend: a new SQLite file, or a
 * new schema in the throwaway server's database (much faster than CREATE
 * DATABASE; the store keeps everything, schema_version included, in
 * current_schema()). */
static int fresh_dsn(char *out, size_t size)
{
    char sql[64];

    g_seq++;
    if (g_backend == CF_STORE_SQLITE) {
        if ((size_t)snprintf(out, size, "sqlite:%s/db%d.sqlite", g_tmp, g_seq) >= size)
            return -1;
        return 0;
    }
    tfmt(sql, sizeof(sql), "CREATE SCHEMA t%d", g_seq);
    if (cf_store_exec(g_pg_admin, sql, NULL, 0, NULL) < 0) {
        fprintf(stderr, "CREATE SCHEMA failed: %s\n", cf_err_detail(CF_E_STORE));
        return -1;
    }
    tfmt(sql, sizeof(sql), "t%d", g_seq);
    pg_uri(out, size, "postgres", sql);
    return 0;
}

static int open_fresh(cf_store **ret, char *dsn, size_t dsn_size)
{
    char tmp[PATH_MAX + 64];

    if (dsn == NULL) {
        dsn = tmp;
        dsn_size = sizeof(tmp);
    }
    if (fresh_dsn(dsn, dsn_size) < 0)
        return CF_E_INTERNAL;
    return cf_store_open(dsn, ret);
}

static int exec0(cf_store *s, const char *sql) { return cf_store_exec(s, sql, NULL, 0, NULL); }

/* First column of the first row as an integer. */
static int q_i64(cf_store *s, const char *sql, const cf_store_val *p, size_t n, int64_t *ret)
{
    cf_store_rows *r = NULL;
    int rc = cf_store_query_row(s, sql, p, n, &r);
    if (rc == 0)
        rc = cf_store_col_i64(r, 0, ret);
    cf_store_rows_close(r);
    return rc;
}

static bool detail_has(int rc, const char *needle)
{
    return strstr(cf_err_detail(rc), needle) != NULL;
}

static const cf_store_migration kv_steps[] = {
    {1, "kv table",
     "CREATE TABLE kv (k TEXT PRIMARY KEY, v TEXT, n BIGINT, b BLOB);"
     "CREATE TABLE parent (id BIGINT PRIMARY KEY);"
     "CREATE TABLE child (id BIGINT PRIMARY KEY, parent_id BIGINT NOT NULL REFERENCES parent(id),"
     " qty BIGINT CHECK (qty >= 0), tag TEXT UNIQUE)",
     NULL},
};

static int open_kv(cf_store **ret, char *dsn, size_t dsn_size)
{
    cf_store *s = NULL;
    int rc = open_fresh(&s, dsn, dsn_size);
    if (rc == 0)
        rc = cf_store_migrate(s, "test", kv_steps, CF_ARRAY_LEN(kv_steps));
    if (rc < 0) {
        fprintf(stderr, "open_kv: %s\n", cf_err_detail(rc));
        cf_store_close(s);
        return rc;
    }
    *ret = s;
    return 0;
}

/* ---- backend-independent ------------------------------------------------------ */

static void test_open_errors(void)
{
    cf_store *s = NULL;
    char big[CF_STORE_MAX_DSN + 16];
    char dsn[PATH_MAX + 64];
    int rc;

    T_ERR(cf_store_open("mysql://x", &s), CF_E_CONFIG);
    T_ERR(cf_store_open("sqlite:", &s), CF_E_CONFIG);
    T_ERR(cf_store_open("", &s), CF_E_CONFIG);
    T_ERR(cf_store_open(NULL, &s), CF_E_INVAL);
    memset(big, 'a', sizeof(big) - 1);
    memcpy(big, "sqlite:", 7);
    big[sizeof(big) - 1] = '\0';
    T_ERR(cf_store_open(big, &s), CF_E_TOO_LARGE);
    tfmt(dsn, sizeof(dsn), "sqlite:%s/no/such/dir/x.db", g_tmp);
    T_ERR(cf_store_open(dsn, &s), CF_E_STORE);
    T_ASSERT(s == NULL); /* never written on failure */
    /* An unreachable server; the password must not reach the message. */
    rc = cf_store_open("postgresql://u:SECRETPW42@/db?host=/nonexistent-coffer&connect_timeout=2",
                       &s);
    T_ERR(rc, CF_E_UNAVAILABLE);
    T_ASSERT(!detail_has(rc, "SECRETPW42"));
    T_ASSERT(s == NULL);
}

static void test_pg_rewrite(void)
{
    cf_buf b;

    cf_buf_init(&b, 4096);
    T_OK(cf_store__pg_rewrite("SELECT ? , '?' , \"?\" , ? -- ?\n /* ? /* ? */ ? */ ?", 3, &b));
    T_STREQ((const char *)b.data, "SELECT $1 , '?' , \"?\" , $2 -- ?\n /* ? /* ? */ ? */ $3");
    cf_buf_reset(&b);
    /* '' inside a literal, an E'' literal with \' escape, a doubled "" */
    T_OK(cf_store__pg_rewrite("SELECT 'it''s ?', E'a\\'?', \"x\"\"?\", ?", 1, &b));
    T_STREQ((const char *)b.data, "SELECT 'it''s ?', E'a\\'?', \"x\"\"?\", $1");
    cf_buf_reset(&b);
    /* A plain literal ending in a backslash is complete (standard strings). */
    T_OK(cf_store__pg_rewrite("SELECT 'a\\', ?", 1, &b));
    T_STREQ((const char *)b.data, "SELECT 'a\\', $1");
    cf_buf_reset(&b);
    T_OK(cf_store__pg_rewrite("SELECT '$1'", 0, &b)); /* $ inside a literal is data */
    cf_buf_reset(&b);
    T_ERR(cf_store__pg_rewrite("SELECT $1", 1, &b), CF_E_INVAL);
    cf_buf_reset(&b);
    T_ERR(cf_store__pg_rewrite("SELECT ?1", 1, &b), CF_E_INVAL);
    cf_buf_reset(&b);
    T_ERR(cf_store__pg_rewrite("SELECT ?", 2, &b), CF_E_INVAL);
    cf_buf_reset(&b);
    T_ERR(cf_store__pg_rewrite("SELECT ?, ?", 1, &b), CF_E_INVAL);
    cf_buf_reset(&b);
    T_ERR(cf_store__pg_rewrite("SELECT 'open ?", 1, &b), CF_E_INVAL);
    cf_buf_reset(&b);
    T_ERR(cf_store__pg_rewrite("SELECT \"open", 0, &b), CF_E_INVAL);
    cf_buf_reset(&b);
    T_ERR(cf_store__pg_rewrite("SELECT 1 /* /* */", 0, &b), CF_E_INVAL);
    cf_buf_reset(&b);
    /* E'...' only after a word boundary: in name'...' the quote is plain. */
    T_ERR(cf_store__pg_rewrite("SELECT E'\\'", 0, &b), CF_E_INVAL);
    cf_buf_free(&b);
}

/* ---- cases run on every backend -------------------------------------------------- */

static void test_crud(void)
{
    cf_store *s = NULL;
    cf_store_rows *r = NULL;
    int64_t changes = -1, n = 0;
    char v[32];

    T_OK(open_kv(&s, NULL, 0));
    T_OK(cf_store_exec(s, "INSERT INTO kv (k, v, n) VALUES (?, ?, ?)",
                       CF_STORE_ARGS(cf_sv_text("a"), cf_sv_text("alpha"), cf_sv_int(1)), &changes));
    T_EQ(changes, 1);
    T_OK(cf_store_exec(s, "INSERT INTO kv (k, v, n) VALUES (?, ?, ?), (?, ?, ?)",
                       CF_STORE_ARGS(cf_sv_text("b"), cf_sv_text("beta"), cf_sv_int(2),
                                     cf_sv_text("c"), cf_sv_text("gamma"), cf_sv_int(3)),
                       &changes));
    T_EQ(changes, 2);
    /* read one */
    T_OK(cf_store_query_row(s, "SELECT v, n FROM kv WHERE k = ?", CF_STORE_ARGS(cf_sv_text("b")),
                            &r));
    T_EQ(cf_store_col_count(r), 2);
    T_OK(cf_store_col_text(r, 0, v, sizeof(v), NULL));
    T_STREQ(v, "beta");
    T_OK(cf_store_col_i64(r, 1, &n));
    T_EQ(n, 2);
    cf_store_rows_close(r);
    r = NULL;
    /* iterate in order */
    T_OK(cf_store_query(s, "SELECT k FROM kv ORDER BY n DESC", NULL, 0, &r));
    T_EQ(cf_store_next(r), 1);
    T_OK(cf_store_col_text(r, 0, v, sizeof(v), NULL));
    T_STREQ(v, "c");
    T_EQ(cf_store_next(r), 1);
    T_EQ(cf_store_next(r), 1);
    T_OK(cf_store_col_text(r, 0, v, sizeof(v), NULL));
    T_STREQ(v, "a");
    T_EQ(cf_store_next(r), 0);
    T_EQ(cf_store_next(r), 0); /* stays at the end */
    T_ERR(cf_store_col_text(r, 0, v, sizeof(v), NULL), CF_E_INVAL); /* not on a row */
    cf_store_rows_close(r);
    r = NULL;
    /* update: the conditional-update count the KMS relies on */
    T_OK(cf_store_exec(s, "UPDATE kv SET v = ? WHERE k = ? AND v = ?",
                       CF_STORE_ARGS(cf_sv_text("ALPHA"), cf_sv_text("a"), cf_sv_text("alpha")),
                       &changes));
    T_EQ(changes, 1);
    T_OK(cf_store_exec(s, "UPDATE kv SET v = ? WHERE k = ? AND v = ?",
                       CF_STORE_ARGS(cf_sv_text("ALPHA"), cf_sv_text("a"), cf_sv_text("alpha")),
                       &changes));
    T_EQ(changes, 0);
    T_OK(cf_store_exec(s, "UPDATE kv SET n = n + 10", NULL, 0, &changes));
    T_EQ(changes, 3);
    /* statements that change nothing report 0, also after a DML statement */
    T_OK(cf_store_exec(s, "SELECT k FROM kv", NULL, 0, &changes));
    T_EQ(changes, 0);
    T_OK(cf_store_exec(s, "CREATE TABLE extra (x BIGINT)", NULL, 0, &changes));
    T_EQ(changes, 0);
    /* delete */
    T_OK(cf_store_exec(s, "DELETE FROM kv WHERE k = ?", CF_STORE_ARGS(cf_sv_text("b")), &changes));
    T_EQ(changes, 1);
    T_OK(q_i64(s, "SELECT count(*) FROM kv", NULL, 0, &n));
    T_EQ(n, 2);
    T_ERR(cf_store_query_row(s, "SELECT v FROM kv WHERE k = ?", CF_STORE_ARGS(cf_sv_text("b")),
                             &r),
          CF_E_NOT_FOUND);
    T_ASSERT(r == NULL);
    /* RETURNING, the portable replacement for last-insert ids */
    T_OK(cf_store_query_row(s, "INSERT INTO kv (k, n) VALUES (?, ?) RETURNING n",
                            CF_STORE_ARGS(cf_sv_text("d"), cf_sv_int(44)), &r));
    T_OK(cf_store_col_i64(r, 0, &n));
    T_EQ(n, 44);
    cf_store_rows_close(r);
    r = NULL;
    /* upsert */
    T_OK(cf_store_exec(s, "INSERT INTO kv (k, n) VALUES (?, ?) ON CONFLICT (k) DO NOTHING",
                       CF_STORE_ARGS(cf_sv_text("d"), cf_sv_int(1)), &changes));
    T_EQ(changes, 0);
    T_OK(cf_store_exec(s, "INSERT INTO kv (k, n) VALUES (?, ?) ON CONFLICT (k) DO UPDATE "
                          "SET n = excluded.n",
                       CF_STORE_ARGS(cf_sv_text("d"), cf_sv_int(45)), &changes));
    T_EQ(changes, 1);
    T_OK(q_i64(s, "SELECT n FROM kv WHERE k = 'd'", NULL, 0, &n));
    T_EQ(n, 45);
    cf_store_close(s);
}

static void test_typed_getters(void)
{
    cf_store *s = NULL;
    cf_store_rows *r = NULL;
    int64_t i = 0;
    char small[4], buf[64], *dup = NULL;
    size_t len = 0;
    uint8_t blob[8];
    bool null = true;

    T_OK(open_kv(&s, NULL, 0));
    T_OK(cf_store_exec(s, "INSERT INTO kv (k, v, n, b) VALUES (?, ?, ?, ?), (?, ?, ?, ?)",
                       CF_STORE_ARGS(cf_sv_text("min"), cf_sv_text("h\xc3\xa9llo"),
                                     cf_sv_int(INT64_MIN), cf_sv_blob("xy", 2),
                                     cf_sv_text("max"), cf_sv_text("abc"), cf_sv_int(INT64_MAX),
                                     cf_sv_blob("z", 1)),
                       NULL));
    T_OK(cf_store_query_row(s, "SELECT k, v, n, b FROM kv WHERE k = ?",
                            CF_STORE_ARGS(cf_sv_text("min")), &r));
    T_OK(cf_store_col_i64(r, 2, &i));
    T_ASSERT(i == INT64_MIN);
    T_OK(cf_store_col_text(r, 1, buf, sizeof(buf), &len));
    T_STREQ(buf, "h\xc3\xa9llo");
    T_EQ(len, 6);
    T_OK(cf_store_col_is_null(r, 1, &null));
    T_ASSERT(!null);
    /* bounded copies */
    T_ERR(cf_store_col_text(r, 1, small, sizeof(small), NULL), CF_E_TOO_LARGE);
    T_ERR(cf_store_col_text(r, 1, buf, 6, NULL), CF_E_TOO_LARGE); /* no room for NUL */
    T_OK(cf_store_col_text(r, 1, buf, 7, NULL));
    T_ERR(cf_store_col_text_dup(r, 1, 5, &dup), CF_E_TOO_LARGE);
    T_ASSERT(dup == NULL);
    T_OK(cf_store_col_text_dup(r, 1, 6, &dup));
    T_STREQ(dup, "h\xc3\xa9llo");
    free(dup);
    dup = NULL;
    T_ERR(cf_store_col_blob(r, 3, blob, 1, &len), CF_E_TOO_LARGE);
    T_OK(cf_store_col_blob(r, 3, blob, sizeof(blob), &len));
    T_EQ(len, 2);
    T_MEMEQ(blob, "xy", 2);
    /* strict types */
    T_ERR(cf_store_col_i64(r, 1, &i), CF_E_INVAL);
    T_ASSERT(detail_has(CF_E_INVAL, "expected an integer"));
    T_ERR(cf_store_col_text(r, 2, buf, sizeof(buf), NULL), CF_E_INVAL);
    T_ERR(cf_store_col_blob(r, 1, blob, sizeof(blob), &len), CF_E_INVAL);
    T_ERR(cf_store_col_text(r, 3, buf, sizeof(buf), NULL), CF_E_INVAL);
    /* columns out of range */
    T_ERR(cf_store_col_i64(r, 4, &i), CF_E_INVAL);
    T_ERR(cf_store_col_i64(r, -1, &i), CF_E_INVAL);
    T_ERR(cf_store_col_is_null(r, 9, &null), CF_E_INVAL);
    cf_store_rows_close(r);
    r = NULL;
    T_OK(q_i64(s, "SELECT n FROM kv WHERE k = 'max'", NULL, 0, &i));
    T_ASSERT(i == INT64_MAX);
    /* expressions map the same way on both backends: comparisons give 0/1,
     * small integer types widen, non-portable types are refused */
    T_OK(q_i64(s, "SELECT (1 < 2)", NULL, 0, &i));
    T_EQ(i, 1);
    T_OK(q_i64(s, "SELECT EXISTS (SELECT 1 FROM kv WHERE k = 'nope')", NULL, 0, &i));
    T_EQ(i, 0);
    T_OK(q_i64(s, "SELECT CAST(-7 AS INTEGER)", NULL, 0, &i));
    T_EQ(i, -7);
    T_OK(q_i64(s, "SELECT CAST(-3 AS SMALLINT)", NULL, 0, &i));
    T_EQ(i, -3);
    T_OK(q_i64(s, "SELECT ? + 1", CF_STORE_ARGS(cf_sv_int(41)), &i));
    T_EQ(i, 42);
    T_ERR(q_i64(s, "SELECT 1.5", NULL, 0, &i), CF_E_INVAL);
    T_OK(cf_store_query_row(s, "SELECT ?, ?", CF_STORE_ARGS(cf_sv_text("t"), cf_sv_blob("\0", 1)),
                            &r));
    T_OK(cf_store_col_text(r, 0, buf, sizeof(buf), NULL));
    T_STREQ(buf, "t");
    T_OK(cf_store_col_blob(r, 1, blob, sizeof(blob), &len));
    T_EQ(len, 1);
    T_EQ(blob[0], 0);
    cf_store_rows_close(r);
    cf_store_close(s);
}

static void test_nulls(void)
{
    cf_store *s = NULL;
    cf_store_rows *r = NULL;
    bool null = false;
    int64_t i;
    char buf[8];
    size_t len = 99;
    cf_buf b;

    T_OK(open_kv(&s, NULL, 0));
    T_OK(cf_store_exec(s, "INSERT INTO kv (k, v, n, b) VALUES (?, ?, ?, ?)",
                       CF_STORE_ARGS(cf_sv_text("nul"), cf_sv_text(NULL), cf_sv_null(),
                                     cf_sv_null()),
                       NULL));
    T_OK(cf_store_exec(s, "INSERT INTO kv (k, v, n, b) VALUES (?, ?, ?, ?)",
                       CF_STORE_ARGS(cf_sv_text("empty"), cf_sv_text(""), cf_sv_int(0),
                                     cf_sv_blob(NULL, 0)),
                       NULL));
    T_OK(cf_store_query_row(s, "SELECT v, n, b FROM kv WHERE k = 'nul'", NULL, 0, &r));
    for (int c = 0; c < 3; c++) {
        T_OK(cf_store_col_is_null(r, c, &null));
        T_ASSERT(null);
    }
    T_ERR(cf_store_col_i64(r, 1, &i), CF_E_INVAL);
    T_ASSERT(detail_has(CF_E_INVAL, "NULL"));
    T_ERR(cf_store_col_text(r, 0, buf, sizeof(buf), NULL), CF_E_INVAL);
    T_ERR(cf_store_col_blob(r, 2, (uint8_t *)buf, sizeof(buf), &len), CF_E_INVAL);
    cf_store_rows_close(r);
    r = NULL;
    /* empty text and empty blob are values, not NULL */
    T_OK(cf_store_query_row(s, "SELECT v, n, b FROM kv WHERE k = 'empty'", NULL, 0, &r));
    for (int c = 0; c < 3; c++) {
        T_OK(cf_store_col_is_null(r, c, &null));
        T_ASSERT(!null);
    }
    T_OK(cf_store_col_text(r, 0, buf, sizeof(buf), &len));
    T_EQ(len, 0);
    T_STREQ(buf, "");
    T_OK(cf_store_col_blob(r, 2, NULL, 0, &len));
    T_EQ(len, 0);
    cf_buf_init(&b, 4);
    T_OK(cf_store_col_blob_buf(r, 2, &b));
    T_EQ(b.len, 0);
    cf_buf_free(&b);
    cf_store_rows_close(r);
    r = NULL;
    /* WHERE x IS NULL with a bound NULL */
    /* a NULL parameter needs a type from its context (PostgreSQL): cast it */
    T_OK(q_i64(s, "SELECT count(*) FROM kv WHERE CAST(? AS BIGINT) IS NULL AND v IS NULL",
               CF_STORE_ARGS(cf_sv_null()), &i));
    T_EQ(i, 1);
    cf_store_close(s);
}

static void test_blobs(void)
{
    cf_store *s = NULL;
    cf_store_rows *r = NULL;
    uint8_t all[256], out[256], *big = NULL;
    size_t len = 0;
    cf_buf b, small;

    for (int i = 0; i < 256; i++)
        all[i] = (uint8_t)i;
    big = malloc(1u << 20);
    T_ASSERT(big != NULL);
    for (size_t i = 0; i < (1u << 20); i++)
        big[i] = (uint8_t)(i * 7 + (i >> 8));
    T_OK(open_kv(&s, NULL, 0));
    T_OK(cf_store_exec(s, "INSERT INTO kv (k, b) VALUES (?, ?), (?, ?)",
                       CF_STORE_ARGS(cf_sv_text("all"), cf_sv_blob(all, sizeof(all)),
                                     cf_sv_text("big"), cf_sv_blob(big, 1u << 20)),
                       NULL));
    T_OK(cf_store_query_row(s, "SELECT b FROM kv WHERE k = ?", CF_STORE_ARGS(cf_sv_text("all")),
                            &r));
    T_OK(cf_store_col_blob(r, 0, out, sizeof(out), &len));
    T_EQ(len, 256);
    T_MEMEQ(out, all, 256);
    cf_buf_init(&small, 255);
    T_ERR(cf_store_col_blob_buf(r, 0, &small), CF_E_TOO_LARGE);
    cf_buf_free(&small);
    cf_store_rows_close(r);
    r = NULL;
    T_OK(cf_store_query_row(s, "SELECT b FROM kv WHERE k = 'big'", NULL, 0, &r));
    cf_buf_init(&b, 1u << 20);
    T_OK(cf_store_col_blob_buf(r, 0, &b));
    T_EQ(b.len, 1u << 20);
    T_MEMEQ(b.data, big, 1u << 20);
    cf_buf_free(&b);
    cf_store_rows_close(r);
    r = NULL;
    /* blob equality in WHERE works with bound blobs (NUL bytes included) */
    T_OK(cf_store_query_row(s, "SELECT k FROM kv WHERE b = ?",
                            CF_STORE_ARGS(cf_sv_blob(all, sizeof(all))), &r));
    cf_store_rows_close(r);
    r = NULL;
    /* a blob value is not text, and text may not carry NUL bytes */
    T_ERR(cf_store_exec(s, "INSERT INTO kv (k, v) VALUES (?, ?)",
                        CF_STORE_ARGS(cf_sv_text("t"), cf_sv_textn("a\0b", 3)), NULL),
          CF_E_INVAL);
    /* oversized values are refused before they reach the database */
    T_ERR(cf_store_exec(s, "INSERT INTO kv (k, b) VALUES (?, ?)",
                        CF_STORE_ARGS(cf_sv_text("huge"), cf_sv_blob(all, CF_STORE_MAX_VALUE + 1u)),
                        NULL),
          CF_E_TOO_LARGE);
    T_ERR(cf_store_exec(s, "INSERT INTO kv (k, b) VALUES (?, ?)",
                        CF_STORE_ARGS(cf_sv_text("nul"), cf_sv_blob(NULL, 3)), NULL),
          CF_E_INVAL);
    free(big);
    cf_store_close(s);
}

static void test_statement_checks(void)
{
    cf_store *s = NULL;
    cf_store_rows *r = NULL;
    cf_store_val many[CF_STORE_MAX_PARAMS + 1];
    char buf[8];
    int64_t i;
    int rc;

    for (size_t k = 0; k < CF_ARRAY_LEN(many); k++)
        many[k] = cf_sv_int(1);
    T_OK(open_kv(&s, NULL, 0));
    T_ERR(cf_store_exec(s, "INSERT INTO kv (k, n) VALUES (?, ?)",
                        CF_STORE_ARGS(cf_sv_text("a")), NULL),
          CF_E_INVAL);
    T_ERR(cf_store_exec(s, "INSERT INTO kv (k) VALUES (?)",
                        CF_STORE_ARGS(cf_sv_text("a"), cf_sv_int(1)), NULL),
          CF_E_INVAL);
    /* only anonymous ? is portable */
    T_ERR(cf_store_exec(s, "INSERT INTO kv (k) VALUES (:k)", CF_STORE_ARGS(cf_sv_text("a")), NULL),
          CF_E_INVAL);
    T_ERR(cf_store_exec(s, "INSERT INTO kv (k) VALUES (?1)", CF_STORE_ARGS(cf_sv_text("a")), NULL),
          CF_E_INVAL);
    T_ERR(cf_store_exec(s, "INSERT INTO kv (k) VALUES ($1)", CF_STORE_ARGS(cf_sv_text("a")), NULL),
          CF_E_INVAL);
    /* ? inside literals and comments is not a placeholder */
    T_OK(cf_store_query_row(s, "SELECT '?' /* ? */, ? -- ?", CF_STORE_ARGS(cf_sv_int(5)), &r));
    T_OK(cf_store_col_text(r, 0, buf, sizeof(buf), NULL));
    T_STREQ(buf, "?");
    T_OK(cf_store_col_i64(r, 1, &i));
    T_EQ(i, 5);
    cf_store_rows_close(r);
    r = NULL;
    /* one statement per call; transaction control through the API only */
    T_ERR(exec0(s, "INSERT INTO kv (k) VALUES ('x'); DELETE FROM kv"), CF_E_INVAL);
    T_OK(q_i64(s, "SELECT count(*) FROM kv", NULL, 0, &i));
    T_EQ(i, 0);
    T_OK(exec0(s, "INSERT INTO kv (k) VALUES ('x'); -- trailing comment"));
    T_ERR(exec0(s, "BEGIN"), CF_E_INVAL);
    T_ERR(exec0(s, "  commit"), CF_E_INVAL);
    T_ERR(exec0(s, "SAVEPOINT a"), CF_E_INVAL);
    T_ERR(exec0(s, ""), CF_E_INVAL);
    T_ERR(exec0(s, " -- only a comment"), CF_E_INVAL);
    rc = exec0(s, "SELEC 1");
    T_ERR(rc, CF_E_STORE);
    T_ERR(exec0(s, "SELECT * FROM no_such_table"), CF_E_STORE);
    T_ERR(cf_store_exec(s, "SELECT 1", many, CF_ARRAY_LEN(many), NULL), CF_E_TOO_LARGE);
    T_ERR(cf_store_exec(s, "SELECT 1", NULL, 1, NULL), CF_E_INVAL);
    T_ERR(cf_store_query(s, NULL, NULL, 0, &r), CF_E_INVAL);
    /* the concurrent-use detector (store.h THREAD-SAFETY) */
    atomic_store(&s->busy, 1);
    T_ERR(exec0(s, "SELECT 1"), CF_E_INTERNAL);
    atomic_store(&s->busy, 0);
    T_OK(exec0(s, "SELECT 1"));
    cf_store_close(s);
}

static void test_constraints(void)
{
    cf_store *s = NULL;
    cf_store_rows *r = NULL;
    int rc;

    T_OK(open_kv(&s, NULL, 0));
    T_OK(cf_store_exec(s, "INSERT INTO kv (k, v) VALUES (?, ?)",
                       CF_STORE_ARGS(cf_sv_text("SECRET-KEY-1"), cf_sv_text("SECRET-VAL-1")), NULL));
    rc = cf_store_exec(s, "INSERT INTO kv (k, v) VALUES (?, ?)",
                       CF_STORE_ARGS(cf_sv_text("SECRET-KEY-1"), cf_sv_text("SECRET-VAL-2")), NULL);
    T_ERR(rc, CF_E_EXISTS);
    T_ASSERT(!detail_has(rc, "SECRET"));
    T_OK(exec0(s, "INSERT INTO parent (id) VALUES (1)"));
    T_OK(cf_store_exec(s, "INSERT INTO child (id, parent_id, qty, tag) VALUES (?, ?, ?, ?)",
                       CF_STORE_ARGS(cf_sv_int(1), cf_sv_int(1), cf_sv_int(5),
                                     cf_sv_text("SECRET-TAG")),
                       NULL));
    /* unique (non-key) column */
    rc = cf_store_exec(s, "INSERT INTO child (id, parent_id, qty, tag) VALUES (?, ?, ?, ?)",
                       CF_STORE_ARGS(cf_sv_int(2), cf_sv_int(1), cf_sv_int(5),
                                     cf_sv_text("SECRET-TAG")),
                       NULL);
    T_ERR(rc, CF_E_EXISTS);
    T_ASSERT(!detail_has(rc, "SECRET"));
    /* foreign key (SQLite enforces it only with foreign_keys=ON) */
    rc = cf_store_exec(s, "INSERT INTO child (id, parent_id, qty) VALUES (?, ?, ?)",
                       CF_STORE_ARGS(cf_sv_int(3), cf_sv_int(999), cf_sv_int(5)), NULL);
    T_ERR(rc, CF_E_CONFLICT);
    T_ASSERT(!detail_has(rc, "999"));
    T_ERR(exec0(s, "DELETE FROM parent WHERE id = 1"), CF_E_CONFLICT);
    /* check and not-null */
    rc = cf_store_exec(s, "INSERT INTO child (id, parent_id, qty) VALUES (?, ?, ?)",
                       CF_STORE_ARGS(cf_sv_int(4), cf_sv_int(1), cf_sv_int(-987654)), NULL);
    T_ERR(rc, CF_E_CONFLICT);
    T_ASSERT(!detail_has(rc, "987654"));
    T_ERR(cf_store_exec(s, "INSERT INTO child (id, parent_id) VALUES (?, ?)",
                        CF_STORE_ARGS(cf_sv_int(5), cf_sv_null()), NULL),
          CF_E_CONFLICT);
    /* a bad value in a conversion: PostgreSQL's message would quote it */
    rc = cf_store_query_row(s, "SELECT CAST(? AS BIGINT)", CF_STORE_ARGS(cf_sv_text("SECRET-9f8e")),
                            &r);
    cf_store_rows_close(r);
    if (g_backend == CF_STORE_POSTGRES)
        T_ERR(rc, CF_E_INVAL);
    if (rc < 0)
        T_ASSERT(!detail_has(rc, "SECRET"));
    cf_store_close(s);
}

static void test_tx_commit_rollback(void)
{
    char dsn[PATH_MAX + 64];
    cf_store *s = NULL, *s2 = NULL;
    int64_t n = -1;
    int rc;

    T_OK(open_kv(&s, dsn, sizeof(dsn)));
    T_OK(cf_store_open(dsn, &s2));
    T_ERR(cf_store_commit(s), CF_E_INVAL);
    cf_store_rollback(s); /* no-op */
    T_OK(cf_store_begin(s));
    T_ASSERT(cf_store_in_tx(s));
    T_ERR(cf_store_begin(s), CF_E_INVAL);
    T_OK(exec0(s, "INSERT INTO kv (k) VALUES ('c1')"));
    T_OK(exec0(s, "INSERT INTO kv (k) VALUES ('c2')"));
    T_OK(cf_store_commit(s));
    T_ASSERT(!cf_store_in_tx(s));
    T_OK(q_i64(s2, "SELECT count(*) FROM kv", NULL, 0, &n));
    T_EQ(n, 2);
    /* rollback */
    T_OK(cf_store_begin(s));
    T_OK(exec0(s, "INSERT INTO kv (k) VALUES ('r1')"));
    T_OK(exec0(s, "DELETE FROM kv WHERE k = 'c1'"));
    cf_store_rollback(s);
    T_ASSERT(!cf_store_in_tx(s));
    T_OK(q_i64(s2, "SELECT count(*) FROM kv WHERE k IN ('c1', 'c2')", NULL, 0, &n));
    T_EQ(n, 2);
    T_OK(q_i64(s2, "SELECT count(*) FROM kv WHERE k = 'r1'", NULL, 0, &n));
    T_EQ(n, 0);
    /* a failed statement poisons the transaction: nothing of it survives */
    T_OK(cf_store_begin(s));
    T_OK(exec0(s, "INSERT INTO kv (k) VALUES ('p1')"));
    T_ERR(exec0(s, "INSERT INTO kv (k) VALUES ('c1')"), CF_E_EXISTS);
    T_ERR(exec0(s, "INSERT INTO kv (k) VALUES ('p2')"), CF_E_CONFLICT);
    rc = cf_store_commit(s);
    T_ERR(rc, CF_E_CONFLICT);
    T_ASSERT(!cf_store_in_tx(s));
    T_OK(q_i64(s2, "SELECT count(*) FROM kv WHERE k IN ('p1', 'p2')", NULL, 0, &n));
    T_EQ(n, 0);
    /* closing with an open transaction rolls it back */
    T_OK(cf_store_begin(s));
    T_OK(exec0(s, "INSERT INTO kv (k) VALUES ('z1')"));
    cf_store_close(s);
    s = NULL;
    T_OK(q_i64(s2, "SELECT count(*) FROM kv WHERE k = 'z1'", NULL, 0, &n));
    T_EQ(n, 0);
    /* the handle works normally after all that */
    T_OK(cf_store_open(dsn, &s));
    T_OK(exec0(s, "INSERT INTO kv (k) VALUES ('z2')"));
    T_OK(q_i64(s2, "SELECT count(*) FROM kv", NULL, 0, &n));
    T_EQ(n, 3);
    cf_store_close(s);
    cf_store_close(s2);
}

struct tx_ctx {
    int calls;
    int fail_with;
    const char *key;
};

static int tx_insert_fn(cf_store *s, void *vctx)
{
    struct tx_ctx *c = vctx;

    c->calls++;
    CF_GUARD(cf_store_exec(s, "INSERT INTO kv (k) VALUES (?)", CF_STORE_ARGS(cf_sv_text(c->key)),
                           NULL));
    return c->fail_with;
}

static int tx_nested_fn(cf_store *s, void *vctx)
{
    struct tx_ctx *c = vctx;
    c->calls++;
    return cf_store_tx(s, tx_insert_fn, vctx);
}

static int tx_commit_inside_fn(cf_store *s, void *vctx)
{
    (void)vctx;
    return cf_store_commit(s);
}

static void test_tx_helper(void)
{
    cf_store *s = NULL;
    struct tx_ctx c = {0};
    int64_t n = -1;

    T_OK(open_kv(&s, NULL, 0));
    c.key = "ok";
    T_OK(cf_store_tx(s, tx_insert_fn, &c));
    T_EQ(c.calls, 1);
    T_OK(q_i64(s, "SELECT count(*) FROM kv WHERE k = 'ok'", NULL, 0, &n));
    T_EQ(n, 1);
    /* an application error: rolled back, not retried */
    c = (struct tx_ctx){.key = "bad", .fail_with = CF_E_CONFLICT};
    T_ERR(cf_store_tx(s, tx_insert_fn, &c), CF_E_CONFLICT);
    T_EQ(c.calls, 1);
    T_ASSERT(!cf_store_in_tx(s));
    /* "unavailable" from something other than the store is not retried either */
    c = (struct tx_ctx){.key = "bad", .fail_with = CF_E_UNAVAILABLE};
    T_ERR(cf_store_tx(s, tx_insert_fn, &c), CF_E_UNAVAILABLE);
    T_EQ(c.calls, 1);
    c = (struct tx_ctx){.key = "bad", .fail_with = 7};
    T_ERR(cf_store_tx(s, tx_insert_fn, &c), CF_E_INTERNAL);
    T_OK(q_i64(s, "SELECT count(*) FROM kv WHERE k = 'bad'", NULL, 0, &n));
    T_EQ(n, 0);
    /* a store error inside fn (duplicate key) is returned, not retried */
    c = (struct tx_ctx){.key = "ok"};
    T_ERR(cf_store_tx(s, tx_insert_fn, &c), CF_E_EXISTS);
    T_EQ(c.calls, 1);
    /* misuse */
    c = (struct tx_ctx){.key = "nested"};
    T_ERR(cf_store_tx(s, tx_nested_fn, &c), CF_E_INVAL);
    T_ERR(cf_store_tx(s, tx_commit_inside_fn, NULL), CF_E_INVAL);
    T_ERR(cf_store_tx(s, NULL, NULL), CF_E_INVAL);
    T_OK(q_i64(s, "SELECT count(*) FROM kv", NULL, 0, &n));
    T_EQ(n, 1);
    cf_store_close(s);
}

static int incr_fn(cf_store *s, void *vctx)
{
    struct tx_ctx *c = vctx;

    c->calls++;
    return cf_store_exec(s, "UPDATE kv SET n = n + 1 WHERE k = 'x'", NULL, 0, NULL);
}

/* While another handle holds the write lock, cf_store_tx gives up after a
 * bounded number of attempts with CF_E_UNAVAILABLE and leaves no state. */
static void test_tx_busy_bounded(void)
{
    char dsn[PATH_MAX + 64];
    cf_store *a = NULL, *b = NULL;
    struct tx_ctx c = {0};
    int64_t n = -1, t0, dt;

    T_OK(open_kv(&a, dsn, sizeof(dsn)));
    T_OK(cf_store_open(dsn, &b));
    T_OK(exec0(a, "INSERT INTO kv (k, n) VALUES ('x', 0)"));
    T_ERR(cf_store_set_busy_timeout(b, 3600u * 1000u + 1), CF_E_RANGE);
    T_OK(cf_store_set_busy_timeout(b, 20));
    T_OK(cf_store_begin(a));
    T_OK(exec0(a, "UPDATE kv SET n = n + 10 WHERE k = 'x'"));
    T_ERR(cf_store_set_busy_timeout(a, 20), CF_E_INVAL); /* not inside a transaction */
    t0 = now_ms();
    T_ERR(cf_store_tx(b, incr_fn, &c), CF_E_UNAVAILABLE);
    dt = now_ms() - t0;
    T_ASSERT_MSG(dt < 5000, "gave up after %lld ms", (long long)dt);
    T_ASSERT(!cf_store_in_tx(b));
    T_ASSERT(c.calls <= CF_STORE_TX_MAX_ATTEMPTS);
    T_OK(cf_store_commit(a));
    c.calls = 0;
    T_OK(cf_store_tx(b, incr_fn, &c));
    T_EQ(c.calls, 1);
    T_OK(q_i64(a, "SELECT n FROM kv WHERE k = 'x'", NULL, 0, &n));
    T_EQ(n, 11);
    cf_store_close(a);
    cf_store_close(b);
}

/* A child process holds the lock for a while; the retry helper outlasts it. */
static void test_tx_retry_succeeds(void)
{
    char dsn[PATH_MAX + 64];
    cf_store *a = NULL;
    struct tx_ctx c = {0};
    int64_t n = -1;
    int fds[2], status = 0;
    char ch = 0;
    pid_t pid;

    T_OK(open_kv(&a, dsn, sizeof(dsn)));
    T_OK(exec0(a, "INSERT INTO kv (k, n) VALUES ('x', 0)"));
    T_OK(cf_store_set_busy_timeout(a, 60));
    T_ASSERT(pipe(fds) == 0);
    pid = fork();
    T_ASSERT(pid >= 0);
    if (pid == 0) {
        cf_store *cs = NULL;
        int ok = cf_store_open(dsn, &cs) == 0 && cf_store_begin(cs) == 0 &&
                 exec0(cs, "UPDATE kv SET n = n + 1 WHERE k = 'x'") == 0;
        if (write(fds[1], ok ? "1" : "0", 1) != 1)
            _exit(3);
        sleep_ms(250);
        _exit(ok && cf_store_commit(cs) == 0 ? 0 : 2);
    }
    close(fds[1]);
    T_ASSERT(read(fds[0], &ch, 1) == 1 && ch == '1');
    close(fds[0]);
    T_OK(cf_store_tx(a, incr_fn, &c));
    T_ASSERT(waitpid(pid, &status, 0) == pid);
    T_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    T_OK(q_i64(a, "SELECT n FROM kv WHERE k = 'x'", NULL, 0, &n));
    T_EQ(n, 2);
    cf_store_close(a);
}

struct lost_ctx {
    cf_store *other;
    int calls;
    int other_rc;
};

/* Read-modify-write while another connection updates the same row between
 * our read and our write. SQLite: our BEGIN IMMEDIATE holds the write lock,
 * so the other update fails busy. PostgreSQL: the other update commits, ours
 * fails with 40001 and cf_store_tx runs fn again on fresh data. Either way
 * no committed update is lost. */
static int lost_fn(cf_store *s, void *vctx)
{
    struct lost_ctx *c = vctx;
    int64_t v = 0;

    c->calls++;
    CF_GUARD(q_i64(s, "SELECT n FROM kv WHERE k = 'x'", NULL, 0, &v));
    if (c->calls == 1)
        c->other_rc = exec0(c->other, "UPDATE kv SET n = n + 100 WHERE k = 'x'");
    return cf_store_exec(s, "UPDATE kv SET n = ? WHERE k = 'x'", CF_STORE_ARGS(cf_sv_int(v + 1)),
                         NULL);
}

static void test_tx_no_lost_update(void)
{
    char dsn[PATH_MAX + 64];
    cf_store *a = NULL, *b = NULL;
    struct lost_ctx c = {0};
    int64_t n = -1;

    T_OK(open_kv(&a, dsn, sizeof(dsn)));
    T_OK(cf_store_open(dsn, &b));
    T_OK(cf_store_set_busy_timeout(b, 20));
    T_OK(exec0(a, "INSERT INTO kv (k, n) VALUES ('x', 1)"));
    c.other = b;
    T_OK(cf_store_tx(a, lost_fn, &c));
    T_OK(q_i64(a, "SELECT n FROM kv WHERE k = 'x'", NULL, 0, &n));
    T_EQ(n, 1 + (c.other_rc == 0 ? 100 : 0) + 1);
    if (g_backend == CF_STORE_POSTGRES) {
        T_OK(c.other_rc);
        T_EQ(c.calls, 2); /* serialization failure, then success */
    } else {
        T_ERR(c.other_rc, CF_E_UNAVAILABLE);
        T_EQ(c.calls, 1);
    }
    cf_store_close(a);
    cf_store_close(b);
}

/* ---- migrations ------------------------------------------------------------------ */

static const cf_store_migration mig_v3[] = {
    {1, "accounts", "CREATE TABLE acct (id TEXT PRIMARY KEY, created BIGINT NOT NULL)", NULL},
    {2, "acct keys",
     "CREATE TABLE acct_key (acct TEXT NOT NULL REFERENCES acct(id), kid BIGINT NOT NULL,"
     " wrapped BLOB NOT NULL, PRIMARY KEY (acct, kid));"
     "CREATE INDEX acct_key_kid ON acct_key (kid)",
     NULL},
    {5, "acct state", "ALTER TABLE acct ADD COLUMN state TEXT NOT NULL DEFAULT 'active'",
     "ALTER TABLE acct ADD COLUMN state TEXT NOT NULL DEFAULT 'active';"
     "ALTER TABLE acct ADD COLUMN pg_only BIGINT"},
};

static void test_migrations(void)
{
    char dsn[PATH_MAX + 64];
    cf_store *s = NULL;
    cf_store_rows *r = NULL;
    int64_t v = -1, n = -1;
    uint8_t w[4];
    size_t len = 0;
    int rc;
    const cf_store_migration bad_step[] = {
        mig_v3[0], mig_v3[1], mig_v3[2],
        {6, "half", "CREATE TABLE t6 (x BIGINT); CREATE TABLEX oops", NULL},
    };
    const cf_store_migration unknown[] = {mig_v3[0], {3, "other", "SELECT 1", NULL}, mig_v3[2]};
    const cf_store_migration bad_order[] = {mig_v3[1], mig_v3[0]};
    const cf_store_migration bad_zero[] = {{0, "zero", "SELECT 1", NULL}};
    const cf_store_migration bad_sql[] = {{1, "nosql", NULL, NULL}};
    const cf_store_migration other_scope[] = {{1, "other", "CREATE TABLE other_t (x BIGINT)", NULL}};
    const cf_store_migration commits[] = {
        {1, "sneaky commit", "CREATE TABLE sneaky (x BIGINT); COMMIT", NULL}};

    T_OK(open_fresh(&s, dsn, sizeof(dsn)));
    T_OK(cf_store_schema_version(s, "acct", &v));
    T_EQ(v, 0); /* no schema_version table yet */
    /* fresh: first two steps */
    T_OK(cf_store_migrate(s, "acct", mig_v3, 2));
    T_OK(cf_store_schema_version(s, "acct", &v));
    T_EQ(v, 2);
    T_OK(exec0(s, "INSERT INTO acct (id, created) VALUES ('a1', 100)"));
    T_OK(cf_store_exec(s, "INSERT INTO acct_key (acct, kid, wrapped) VALUES ('a1', 1, ?)",
                       CF_STORE_ARGS(cf_sv_blob("\x00\x01\x02", 3)), NULL));
    /* re-run: nothing applied twice, data kept */
    T_OK(cf_store_migrate(s, "acct", mig_v3, 2));
    T_OK(q_i64(s, "SELECT count(*) FROM schema_version WHERE scope = 'acct'", NULL, 0, &n));
    T_EQ(n, 2);
    /* a newer binary adds step 5 (versions need not be contiguous) */
    T_OK(cf_store_migrate(s, "acct", mig_v3, 3));
    T_OK(cf_store_migrate(s, "acct", mig_v3, 3));
    T_OK(cf_store_schema_version(s, "acct", &v));
    T_EQ(v, 5);
    T_OK(q_i64(s, "SELECT count(*) FROM acct WHERE state = 'active'", NULL, 0, &n));
    T_EQ(n, 1);
    T_OK(cf_store_query_row(s, "SELECT wrapped FROM acct_key WHERE acct = 'a1'", NULL, 0, &r));
    T_OK(cf_store_col_blob(r, 0, w, sizeof(w), &len));
    T_EQ(len, 3);
    T_MEMEQ(w, "\x00\x01\x02", 3);
    cf_store_rows_close(r);
    r = NULL;
    /* sql_pg replaces sql on PostgreSQL only */
    rc = exec0(s, "SELECT pg_only FROM acct");
    if (g_backend == CF_STORE_POSTGRES)
        T_OK(rc);
    else
        T_ERR(rc, CF_E_STORE);
    /* the older binary (knows up to 2) refuses the newer schema, changes nothing */
    rc = cf_store_migrate(s, "acct", mig_v3, 2);
    T_ERR(rc, CF_E_UNSUPPORTED);
    T_ASSERT(detail_has(rc, "version 5"));
    T_ASSERT(detail_has(rc, "up to 2"));
    /* a binary that does not know an applied version refuses too */
    T_ERR(cf_store_migrate(s, "acct", unknown, CF_ARRAY_LEN(unknown)), CF_E_UNSUPPORTED);
    /* a failing step is rolled back as a whole; earlier steps stay */
    rc = cf_store_migrate(s, "acct", bad_step, CF_ARRAY_LEN(bad_step));
    T_ERR(rc, CF_E_STORE);
    T_ASSERT(detail_has(rc, "half"));
    T_OK(cf_store_schema_version(s, "acct", &v));
    T_EQ(v, 5);
    T_ERR(exec0(s, "SELECT x FROM t6"), CF_E_STORE);
    /* scopes are independent */
    T_OK(cf_store_migrate(s, "other", other_scope, 1));
    T_OK(cf_store_schema_version(s, "other", &v));
    T_EQ(v, 1);
    T_OK(cf_store_schema_version(s, "acct", &v));
    T_EQ(v, 5);
    T_OK(cf_store_schema_version(s, "never", &v));
    T_EQ(v, 0);
    /* invalid step lists */
    T_ERR(cf_store_migrate(s, "acct", bad_order, 2), CF_E_INVAL);
    T_ERR(cf_store_migrate(s, "acct", bad_zero, 1), CF_E_INVAL);
    T_ERR(cf_store_migrate(s, "acct", bad_sql, 1), CF_E_INVAL);
    T_ERR(cf_store_migrate(s, "", mig_v3, 1), CF_E_INVAL);
    T_ERR(cf_store_migrate(s, "acct", mig_v3, 0), CF_E_INVAL);
    T_OK(cf_store_begin(s));
    T_ERR(cf_store_migrate(s, "acct", mig_v3, 3), CF_E_INVAL);
    cf_store_rollback(s);
    /* a step may not end the transaction it runs in */
    T_ERR(cf_store_migrate(s, "sneaky", commits, 1), CF_E_INVAL);
    T_OK(cf_store_schema_version(s, "sneaky", &v));
    T_EQ(v, 0);
    T_ASSERT(!cf_store_in_tx(s));
    cf_store_close(s);
    /* and it all survives a reopen */
    T_OK(cf_store_open(dsn, &s));
    T_OK(cf_store_migrate(s, "acct", mig_v3, 3));
    T_OK(cf_store_schema_version(s, "acct", &v));
    T_EQ(v, 5);
    cf_store_close(s);
}

/* Several processes migrating one fresh store at once: each step once. */
static void test_migrate_concurrent(void)
{
    char dsn[PATH_MAX + 64];
    cf_store *s = NULL;
    pid_t pids[3];
    int go[2], status;
    int64_t n = -1;
    char ch = 'g';

    T_OK(fresh_dsn(dsn, sizeof(dsn)));
    T_ASSERT(pipe(go) == 0);
    for (int i = 0; i < 3; i++) {
        pids[i] = fork();
        T_ASSERT(pids[i] >= 0);
        if (pids[i] == 0) {
            cf_store *cs = NULL;
            close(go[1]);
            if (read(go[0], &ch, 1) != 0) /* EOF = go */
                _exit(4);
            if (cf_store_open(dsn, &cs) < 0)
                _exit(2);
            _exit(cf_store_migrate(cs, "acct", mig_v3, 3) == 0 ? 0 : 3);
        }
    }
    close(go[0]);
    close(go[1]);
    for (int i = 0; i < 3; i++) {
        T_ASSERT(waitpid(pids[i], &status, 0) == pids[i]);
        T_ASSERT_MSG(WIFEXITED(status) && WEXITSTATUS(status) == 0, "migrator %d failed (%d)", i,
                     status);
    }
    T_OK(cf_store_open(dsn, &s));
    T_OK(q_i64(s, "SELECT count(*) FROM schema_version WHERE scope = 'acct'", NULL, 0, &n));
    T_EQ(n, 3);
    cf_store_close(s);
}

/* ---- several processes ------------------------------------------------------------ */

#define CLAIM_ROWS 60
#define CLAIM_INCR 40

struct claim_ctx {
    int64_t id, me, changed;
};

/* The OTK release pattern: the conditional update decides. */
static int claim_cond_fn(cf_store *s, void *vctx)
{
    struct claim_ctx *c = vctx;

    return cf_store_exec(s, "UPDATE otk SET state = 'released', claimed_by = ? "
                            "WHERE id = ? AND state = 'issued'",
                         CF_STORE_ARGS(cf_sv_int(c->me), cf_sv_int(c->id)), &c->changed);
}

/* "Check, then update": correct only with serializable transactions. */
static int claim_check_fn(cf_store *s, void *vctx)
{
    struct claim_ctx *c = vctx;
    cf_store_rows *r = NULL;
    char state[16];
    int rc;

    c->changed = 0;
    CF_GUARD_OUT(cf_store_query_row(s, "SELECT state FROM otk2 WHERE id = ?",
                                    CF_STORE_ARGS(cf_sv_int(c->id)), &r));
    CF_GUARD_OUT(cf_store_col_text(r, 0, state, sizeof(state), NULL));
    cf_store_rows_close(r);
    r = NULL;
    if (strcmp(state, "issued") == 0)
        CF_GUARD_OUT(cf_store_exec(s, "UPDATE otk2 SET state = 'released', claimed_by = ? "
                                      "WHERE id = ?",
                                   CF_STORE_ARGS(cf_sv_int(c->me), cf_sv_int(c->id)), &c->changed));
    rc = 0;
out:
    cf_store_rows_close(r);
    return rc;
}

static int counter_fn(cf_store *s, void *vctx)
{
    int64_t v = 0;

    (void)vctx;
    CF_GUARD(q_i64(s, "SELECT n FROM kv WHERE k = 'counter'", NULL, 0, &v));
    return cf_store_exec(s, "UPDATE kv SET n = ? WHERE k = 'counter'",
                         CF_STORE_ARGS(cf_sv_int(v + 1)), NULL);
}

/* A caller that receives CF_E_UNAVAILABLE after cf_store_tx's own retries would
 * answer 503; here the child simply asks again (bounded). */
static int tx_persist(cf_store *s, cf_store_tx_fn fn, void *ctx)
{
    int rc = CF_E_UNAVAILABLE;
    for (int i = 0; i < 50 && rc == CF_E_UNAVAILABLE; i++)
        rc = cf_store_tx(s, fn, ctx);
    return rc;
}

static void claim_child(const char *dsn, int me, int go_fd, int out_fd)
{
    cf_store *s = NULL;
    int64_t res[3] = {0, 0, 0};
    char ch;

    if (cf_store_open(dsn, &s) < 0)
        _exit(2);
    if (read(go_fd, &ch, 1) != 0)
        _exit(4);
    for (int i = 0; i < CLAIM_ROWS; i++) {
        /* opposite orders, so that the two meet in the middle */
        struct claim_ctx c = {.id = me == 1 ? i + 1 : CLAIM_ROWS - i, .me = me};
        if (tx_persist(s, claim_cond_fn, &c) < 0) {
            fprintf(stderr, "child %d: claim: %s\n", me, cf_err_detail(CF_E_UNAVAILABLE));
            _exit(5);
        }
        res[0] += c.changed;
        if (tx_persist(s, claim_check_fn, &c) < 0)
            _exit(6);
        res[1] += c.changed;
        if (i < CLAIM_INCR) {
            if (tx_persist(s, counter_fn, NULL) < 0)
                _exit(7);
            res[2]++;
        }
        /* SQLite's busy handler sleeps while the other process takes the
         * lock again at once; a pause like that between requests lets both
         * processes really interleave. */
        sleep_ms(1);
    }
    if (write(out_fd, res, sizeof(res)) != (ssize_t)sizeof(res))
        _exit(8);
    _exit(0);
}

static void test_multiprocess_claim(void)
{
    char dsn[PATH_MAX + 64];
    cf_store *s = NULL;
    static const cf_store_migration steps[] = {
        {1, "otk",
         "CREATE TABLE otk (id BIGINT PRIMARY KEY, state TEXT NOT NULL, claimed_by BIGINT);"
         "CREATE TABLE otk2 (id BIGINT PRIMARY KEY, state TEXT NOT NULL, claimed_by BIGINT)",
         NULL},
    };
    int go[2], out[2][2], status;
    int64_t res[2][3], n = -1;
    pid_t pids[2];
    char ch = 0;

    T_OK(open_kv(&s, dsn, sizeof(dsn)));
    T_OK(cf_store_migrate(s, "claim", steps, 1));
    T_OK(cf_store_begin(s));
    for (int i = 1; i <= CLAIM_ROWS; i++) {
        T_OK(cf_store_exec(s, "INSERT INTO otk (id, state) VALUES (?, 'issued')",
                           CF_STORE_ARGS(cf_sv_int(i)), NULL));
        T_OK(cf_store_exec(s, "INSERT INTO otk2 (id, state) VALUES (?, 'issued')",
                           CF_STORE_ARGS(cf_sv_int(i)), NULL));
    }
    T_OK(exec0(s, "INSERT INTO kv (k, n) VALUES ('counter', 0)"));
    T_OK(cf_store_commit(s));
    T_ASSERT(pipe(go) == 0);
    for (int k = 0; k < 2; k++) {
        T_ASSERT(pipe(out[k]) == 0);
        pids[k] = fork();
        T_ASSERT(pids[k] >= 0);
        if (pids[k] == 0) {
            close(go[1]);
            close(out[k][0]);
            claim_child(dsn, k + 1, go[0], out[k][1]);
        }
        close(out[k][1]);
    }
    close(go[0]);
    sleep_ms(50); /* both children connected; closing the pipe starts them together */
    close(go[1]);
    for (int k = 0; k < 2; k++) {
        T_ASSERT(read(out[k][0], res[k], sizeof(res[k])) == (ssize_t)sizeof(res[k]));
        close(out[k][0]);
        T_ASSERT(waitpid(pids[k], &status, 0) == pids[k]);
        T_ASSERT_MSG(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child %d status %d", k + 1,
                     status);
        (void)ch;
    }
    /* every row claimed exactly once overall, and by whom the child says */
    T_EQ(res[0][0] + res[1][0], CLAIM_ROWS);
    T_EQ(res[0][1] + res[1][1], CLAIM_ROWS);
    T_OK(q_i64(s, "SELECT count(*) FROM otk WHERE state = 'released'", NULL, 0, &n));
    T_EQ(n, CLAIM_ROWS);
    T_OK(q_i64(s, "SELECT count(*) FROM otk WHERE claimed_by = 1", NULL, 0, &n));
    T_EQ(n, res[0][0]);
    T_OK(q_i64(s, "SELECT count(*) FROM otk2 WHERE claimed_by = 1", NULL, 0, &n));
    T_EQ(n, res[0][1]);
    T_OK(q_i64(s, "SELECT count(*) FROM otk2 WHERE claimed_by = 2", NULL, 0, &n));
    T_EQ(n, res[1][1]);
    /* read-modify-write increments: none lost */
    T_OK(q_i64(s, "SELECT n FROM kv WHERE k = 'counter'", NULL, 0, &n));
    T_EQ(n, res[0][2] + res[1][2]);
    T_EQ(n, 2 * CLAIM_INCR);
    fprintf(stderr, "  # claims: child1 %lld+%lld, child2 %lld+%lld\n", (long long)res[0][0],
            (long long)res[0][1], (long long)res[1][0], (long long)res[1][1]);
    cf_store_close(s);
}

/* kill -9 right after commit returned: the data is there on reopen; a
 * transaction open at the kill is not. */
static void test_durability_kill9(void)
{
    char dsn[PATH_MAX + 64], buf[32];
    cf_store *s = NULL;
    cf_store_rows *r = NULL;
    int fds[2], status = 0;
    char got[2] = {0, 0};
    int64_t n = -1;
    pid_t pid;

    T_OK(open_kv(&s, dsn, sizeof(dsn)));
    cf_store_close(s);
    s = NULL;
    T_ASSERT(pipe(fds) == 0);
    pid = fork();
    T_ASSERT(pid >= 0);
    if (pid == 0) {
        cf_store *cs = NULL;
        struct tx_ctx c = {.key = "committed"};
        close(fds[0]);
        if (cf_store_open(dsn, &cs) < 0 || cf_store_tx(cs, tx_insert_fn, &c) < 0)
            _exit(2);
        if (write(fds[1], "C", 1) != 1)
            _exit(3);
        if (cf_store_begin(cs) < 0 || exec0(cs, "INSERT INTO kv (k) VALUES ('open')") < 0)
            _exit(2);
        if (write(fds[1], "U", 1) != 1)
            _exit(3);
        for (;;)
            pause();
    }
    close(fds[1]);
    T_ASSERT(read(fds[0], &got[0], 1) == 1 && got[0] == 'C');
    T_ASSERT(read(fds[0], &got[1], 1) == 1 && got[1] == 'U');
    close(fds[0]);
    T_ASSERT(kill(pid, SIGKILL) == 0);
    T_ASSERT(waitpid(pid, &status, 0) == pid);
    T_ASSERT(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    T_OK(cf_store_open(dsn, &s));
    T_OK(q_i64(s, "SELECT count(*) FROM kv WHERE k = 'committed'", NULL, 0, &n));
    T_EQ(n, 1);
    T_OK(q_i64(s, "SELECT count(*) FROM kv WHERE k = 'open'", NULL, 0, &n));
    T_EQ(n, 0);
    if (g_backend == CF_STORE_SQLITE) {
        T_OK(cf_store_query_row(s, "PRAGMA integrity_check", NULL, 0, &r));
        T_OK(cf_store_col_text(r, 0, buf, sizeof(buf), NULL));
        T_STREQ(buf, "ok");
        cf_store_rows_close(r);
    }
    /* and the store is writable again (no stale lock left by the dead child) */
    T_OK(exec0(s, "INSERT INTO kv (k) VALUES ('after')"));
    cf_store_close(s);
}

/* ---- SQLite specifics ------------------------------------------------------------- */

static void test_sqlite_settings(void)
{
    char dsn[PATH_MAX + 64], path[PATH_MAX + 64], link_path[PATH_MAX + 64], buf[16];
    cf_store *s = NULL;
    cf_store_rows *r = NULL;
    struct stat st;
    int64_t v = -1;

    T_OK(open_kv(&s, dsn, sizeof(dsn)));
    T_OK(cf_store_query_row(s, "PRAGMA journal_mode", NULL, 0, &r));
    T_OK(cf_store_col_text(r, 0, buf, sizeof(buf), NULL));
    T_STREQ(buf, "wal");
    cf_store_rows_close(r);
    r = NULL;
    T_OK(q_i64(s, "PRAGMA synchronous", NULL, 0, &v));
    T_EQ(v, 2); /* FULL */
    T_OK(q_i64(s, "PRAGMA foreign_keys", NULL, 0, &v));
    T_EQ(v, 1);
    T_OK(exec0(s, "INSERT INTO kv (k) VALUES ('w')"));
    tfmt(path, sizeof(path), "%s", dsn + strlen("sqlite:"));
    T_ASSERT(stat(path, &st) == 0);
    T_EQ(st.st_mode & 0777, 0600);
    tfmt(link_path, sizeof(link_path), "%s-wal", path);
    T_ASSERT(stat(link_path, &st) == 0);
    T_EQ(st.st_mode & 0077, 0);
    cf_store_close(s);
    s = NULL;
    /* symlinks are refused */
    tfmt(link_path, sizeof(link_path), "%s/link.sqlite", g_tmp);
    T_ASSERT(symlink(path, link_path) == 0);
    tfmt(dsn, sizeof(dsn), "sqlite:%s", link_path);
    T_FAILS(cf_store_open(dsn, &s));
    T_ASSERT(s == NULL);
    /* in-memory stores work (tests of other modules use them) */
    T_OK(cf_store_open("sqlite::memory:", &s));
    T_OK(cf_store_migrate(s, "test", kv_steps, 1));
    T_OK(exec0(s, "INSERT INTO kv (k) VALUES ('m')"));
    T_OK(q_i64(s, "SELECT count(*) FROM kv", NULL, 0, &v));
    T_EQ(v, 1);
    T_EQ(cf_store_backend(s), CF_STORE_SQLITE);
    cf_store_close(s);
}

/* ---- PostgreSQL server for the tests -------------------------------------------- */

static int run_as_server_user(const char *log, const char *const argv[])
{
    char *args[24];
    size_t k;

    struct passwd *pw = NULL;
    pid_t pid;
    int fd;

    if (geteuid() == 0) {
        pw = getpwnam("postgres");
        if (pw == NULL)
            pw = getpwnam("nobody");
        if (pw == NULL)
            return -1;
    }
    pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        if (fd >= 0) {
            (void)dup2(fd, 1);
            (void)dup2(fd, 2);
        }
        if (pw != NULL && (setgroups(0, NULL) != 0 || setgid(pw->pw_gid) != 0 ||
                           setuid(pw->pw_uid) != 0))
            _exit(126);
        /* execv wants char *const[]: copy (this child execs or exits) */
        for (k = 0; k < CF_ARRAY_LEN(args) - 1 && argv[k] != NULL; k++)
            if ((args[k] = strdup(argv[k])) == NULL)
                _exit(125);
        args[k] = NULL;
        execv(args[0], args);
        _exit(127);
    }
    return pid;
}

/* 1 = no server binaries (skip), 0 = running, -1 = failed to start. */
static int pg_start(void)
{
    char initdb[PATH_MAX + 16], postgres[PATH_MAX + 16], data[PATH_MAX + 16], log[PATH_MAX + 16];
    char uri[PATH_MAX + 128];
    const char *bindir = getenv("COFFER_PG_BINDIR");
    glob_t g;
    struct passwd *pw;
    int status, pid;

    if (bindir != NULL && bindir[0] != '\0') {
        tfmt(g_pg_bin, sizeof(g_pg_bin), "%s", bindir);
    } else {
        if (glob("/usr/lib/postgresql/*/bin/postgres", 0, NULL, &g) != 0 || g.gl_pathc == 0)
            return 1;
        /* the highest version (glob sorts; "15" < "16" as strings too) */
        tfmt(g_pg_bin, sizeof(g_pg_bin), "%s", g.gl_pathv[g.gl_pathc - 1]);
        globfree(&g);
        *strrchr(g_pg_bin, '/') = '\0';
    }
    tfmt(initdb, sizeof(initdb), "%s/initdb", g_pg_bin);
    tfmt(postgres, sizeof(postgres), "%s/postgres", g_pg_bin);
    if (access(initdb, X_OK) != 0 || access(postgres, X_OK) != 0)
        return 1;
    tfmt(g_pg_dir, sizeof(g_pg_dir), "/tmp/coffer-pg-XXXXXX");
    if (mkdtemp(g_pg_dir) == NULL)
        return -1;
    if (geteuid() == 0) {
        pw = getpwnam("postgres");
        if (pw == NULL)
            pw = getpwnam("nobody");
        if (pw == NULL || chown(g_pg_dir, pw->pw_uid, pw->pw_gid) != 0)
            return -1;
    }
    tfmt(data, sizeof(data), "%s/data", g_pg_dir);
    tfmt(log, sizeof(log), "%s/log", g_pg_dir);
    {
        const char *argv[] = {initdb, "-D", data, "-U", "coffer", "--auth=trust", "-N",
                        "-E", "UTF8", "--locale=C", NULL};
        pid = run_as_server_user(log, argv);
        if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ||
            WEXITSTATUS(status) != 0) {
            fprintf(stderr, "initdb failed (see %s)\n", log);
            return -1;
        }
    }
    {
        /* unix socket only; fsync off: server crash-durability is not what
         * these tests check, and it makes CREATE DATABASE fast */
        const char *argv[] = {postgres, "-D", data, "-k", g_pg_dir, "-p", "5432",
                        "-c", "listen_addresses=", "-c", "fsync=off",
                        "-c", "full_page_writes=off", "-c", "max_connections=50", NULL};
        g_pg_pid = run_as_server_user(log, argv);
        if (g_pg_pid < 0)
            return -1;
    }
    pg_uri(uri, sizeof(uri), "postgres", NULL);
    for (int i = 0; i < 300; i++) {
        if (PQping(uri) == PQPING_OK)
            break;
        if (waitpid(g_pg_pid, &status, WNOHANG) == g_pg_pid) {
            g_pg_pid = -1;
            fprintf(stderr, "postgres exited at start-up (see %s)\n", log);
            return -1;
        }
        sleep_ms(50);
    }
    if (cf_store_open(uri, &g_pg_admin) < 0) {
        fprintf(stderr, "cannot connect to the test database: %s\n",
                cf_err_detail(CF_E_UNAVAILABLE));
        return -1;
    }
    return 0;
}

static void pg_stop(void)
{
    int status;

    cf_store_close(g_pg_admin);
    g_pg_admin = NULL;
    if (g_pg_pid > 0) {
        (void)kill(g_pg_pid, SIGINT); /* "fast" shutdown */
        for (int i = 0; i < 200; i++) {
            if (waitpid(g_pg_pid, &status, WNOHANG) == g_pg_pid) {
                g_pg_pid = -1;
                break;
            }
            sleep_ms(50);
        }
        if (g_pg_pid > 0) {
            (void)kill(g_pg_pid, SIGKILL);
            (void)waitpid(g_pg_pid, &status, 0);
            g_pg_pid = -1;
        }
    }
    rm_tree(g_pg_dir);
}

static void test_pg_open(void)
{
    char dsn[PATH_MAX + 64];
    cf_store *s = NULL;

    cf_store_rows *r = NULL;
    char enc[16];
    size_t n;

    T_OK(open_fresh(&s, dsn, sizeof(dsn)));
    T_EQ(cf_store_backend(s), CF_STORE_POSTGRES);
    cf_store_close(s);
    s = NULL;
    /* the DSN cannot change the client encoding the backend relies on */
    n = strlen(dsn);
    tfmt(dsn + n, sizeof(dsn) - n, "&client_encoding=LATIN1");
    T_OK(cf_store_open(dsn, &s));
    T_OK(cf_store_query_row(s, "SELECT current_setting('client_encoding')", NULL, 0, &r));
    T_OK(cf_store_col_text(r, 0, enc, sizeof(enc), NULL));
    T_STREQ(enc, "UTF8");
    cf_store_rows_close(r);
    cf_store_close(s);
    s = NULL;
    pg_uri(dsn, sizeof(dsn), "no_such_db", NULL);
    T_ERR(cf_store_open(dsn, &s), CF_E_UNAVAILABLE);
    T_ASSERT(s == NULL);
}

/* T_RUN plus the time taken, to keep an eye on the ~60 s budget. */
#define TRUN(fn)                                                                         \
    do {                                                                                 \
        int64_t t0_ = now_ms();                                                          \
        T_RUN(fn);                                                                       \
        fprintf(stderr, "  # %lld ms\n", (long long)(now_ms() - t0_));                   \
    } while (0)

/* A connection the server drops is re-established before the next statement
 * (outside transactions), with the handle's session settings. */
static void test_pg_reconnect(void)
{
    cf_store *s = NULL;
    cf_store_rows *r = NULL;
    int64_t pid = 0, n = 0;
    char setting[32];
    int rc;

    T_OK(open_kv(&s, NULL, 0));
    T_OK(cf_store_set_busy_timeout(s, 1234));
    T_OK(q_i64(s, "SELECT CAST(pg_backend_pid() AS BIGINT)", NULL, 0, &pid));
    T_OK(q_i64(g_pg_admin, "SELECT CAST(pg_terminate_backend(CAST(? AS INTEGER)) AS INTEGER)",
               CF_STORE_ARGS(cf_sv_int(pid)), &n));
    T_EQ(n, 1);
    sleep_ms(100);
    rc = exec0(s, "INSERT INTO kv (k) VALUES ('lost')");
    T_ERR(rc, CF_E_UNAVAILABLE);
    T_OK(exec0(s, "INSERT INTO kv (k) VALUES ('back')"));
    T_OK(cf_store_query_row(s, "SELECT current_setting('lock_timeout')", NULL, 0, &r));
    T_OK(cf_store_col_text(r, 0, setting, sizeof(setting), NULL));
    T_STREQ(setting, "1234ms");
    cf_store_rows_close(r);
    r = NULL;
    /* inside a transaction the loss is reported, not papered over */
    T_OK(q_i64(s, "SELECT CAST(pg_backend_pid() AS BIGINT)", NULL, 0, &pid));
    T_OK(cf_store_begin(s));
    T_OK(exec0(s, "INSERT INTO kv (k) VALUES ('in-tx')"));
    T_OK(q_i64(g_pg_admin, "SELECT CAST(pg_terminate_backend(CAST(? AS INTEGER)) AS INTEGER)",
               CF_STORE_ARGS(cf_sv_int(pid)), &n));
    sleep_ms(100);
    T_ERR(exec0(s, "INSERT INTO kv (k) VALUES ('in-tx-2')"), CF_E_UNAVAILABLE);
    T_ERR(cf_store_commit(s), CF_E_CONFLICT);
    T_OK(q_i64(s, "SELECT count(*) FROM kv WHERE k LIKE 'in-tx%'", NULL, 0, &n));
    T_EQ(n, 0);
    cf_store_close(s);
}

static void run_backend_suite(void)
{
    TRUN(test_crud);
    TRUN(test_typed_getters);
    TRUN(test_nulls);
    TRUN(test_blobs);
    TRUN(test_statement_checks);
    TRUN(test_constraints);
    TRUN(test_tx_commit_rollback);
    TRUN(test_tx_helper);
    TRUN(test_tx_busy_bounded);
    TRUN(test_tx_retry_succeeds);
    TRUN(test_tx_no_lost_update);
    TRUN(test_migrations);
    TRUN(test_migrate_concurrent);
    TRUN(test_multiprocess_claim);
    TRUN(test_durability_kill9);
}

int main(void)
{
    const char *tmp = getenv("TMPDIR");
    int rc;

    tfmt(g_tmp, sizeof(g_tmp), "%s/coffer-store-XXXXXX",
                   tmp != NULL && tmp[0] != '\0' ? tmp : "/tmp");
    if (mkdtemp(g_tmp) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    T_RUN(test_open_errors);
    T_RUN(test_pg_rewrite);

    fprintf(stderr, "# backend: sqlite\n");
    g_backend = CF_STORE_SQLITE;
    T_RUN(test_sqlite_settings);
    run_backend_suite();

    g_backend = CF_STORE_POSTGRES;
    rc = pg_start();
    if (rc == 1) {
        printf("SKIP: PostgreSQL backend tests: no server binaries in /usr/lib/postgresql/*/bin "
               "(install the 'postgresql' package or set COFFER_PG_BINDIR)\n");
    } else if (rc < 0) {
        fprintf(stderr, "not ok - PostgreSQL test server did not start\n");
        t_failed++;
    } else {
        fprintf(stderr, "# backend: postgres (%s, socket in %s)\n", g_pg_bin, g_pg_dir);
        T_RUN(test_pg_open);
        T_RUN(test_pg_reconnect);
        run_backend_suite();
    }
    pg_stop();
    rm_tree(g_tmp);
    return t_done();
}
