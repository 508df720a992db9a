/*
 * Helpers shared by the audit log tests: temp directories, event builders,
 * and a throwaway PostgreSQL server (the store tests' approach: initdb +
 * postgres from /usr/lib/postgresql/<v>/bin or $COFFER_PG_BINDIR, unix socket
 * only, one schema per test, stopped by pid).
 */
#ifndef COFFER_TESTS_AUDIT_TESTUTIL_H
#define COFFER_TESTS_AUDIT_TESTUTIL_H

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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "auditlog/event.h"
#include "base/compiler.h"
#include "base/err.h"
#include "store/store.h"

static char tu_tmp[PATH_MAX];
static int tu_seq;

static CF_UNUSED void tu_fmt(char *out, size_t size, const char *fmt, ...) CF_PRINTF(3, 4);
static CF_UNUSED void tu_fmt(char *out, size_t size, const char *fmt, ...)
{
    va_list ap;
    int n;
    va_start(ap, fmt);
    n = vsnprintf(out, size, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= size)
        abort();
}

static CF_UNUSED void tu_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static CF_UNUSED int tu_rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(p);
}

static CF_UNUSED void tu_rm_tree(const char *dir)
{
    if (dir[0] != '\0')
        (void)nftw(dir, tu_rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

/* Creates the test's temp root; returns 0 or -1. */
static CF_UNUSED int tu_init(const char *name)
{
    const char *tmp = getenv("TMPDIR");
    tu_fmt(tu_tmp, sizeof(tu_tmp), "%s/coffer-%s-XXXXXX", tmp != NULL && tmp[0] ? tmp : "/tmp",
           name);
    return mkdtemp(tu_tmp) != NULL ? 0 : -1;
}

/* A new path under the temp root. */
static CF_UNUSED void tu_path(char *out, size_t size, const char *what)
{
    tu_fmt(out, size, "%s/%s-%d", tu_tmp, what, tu_seq++);
}

/* RFC 3339 UTC with milliseconds. */
static CF_UNUSED void tu_time(int64_t ms, char out[32])
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    char d[24];
    gmtime_r(&t, &tm);
    strftime(d, sizeof(d), "%Y-%m-%dT%H:%M:%S", &tm);
    tu_fmt(out, 32, "%s.%03dZ", d, (int)(ms % 1000));
}

/* Event number n (its id is derived from n and `run`, so ids are distinct). */
static CF_UNUSED json_t *tu_event_json(unsigned run, unsigned n, const char *tenant,
                                       const char *action, const char *tee, int64_t ts_ms)
{
    char id[40], ts[32];
    json_t *o;
    tu_fmt(id, sizeof(id), "%08x%08x%016x", run, n, n * 2654435761u);
    tu_time(ts_ms, ts);
    o = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:{s:i,s:s}}", "event_id", id, "ts", ts,
                  "service", "kms", "actor", "spiffe://coffer/kms", "tenant", tenant, "action",
                  action, "resource", "otk/1", "outcome", "success", "request_id", "req",
                  "details", "n", (json_int_t)n, "note", "test");
    if (o == NULL)
        abort();
    if (tee != NULL && json_object_set_new(o, "tee_id", json_string(tee)) != 0)
        abort();
    return o;
}

static CF_UNUSED cf_audit_event *tu_event(unsigned run, unsigned n, const char *tenant,
                                          const char *action, const char *tee, int64_t ts_ms)
{
    json_t *o = tu_event_json(run, n, tenant, action, tee, ts_ms);
    cf_audit_event *ev = NULL;
    if (cf_audit_event_from_json(o, &ev) != 0) {
        fprintf(stderr, "tu_event: %s\n", cf_err_detail(CF_E_PARSE));
        abort();
    }
    json_decref(o);
    return ev;
}

/* Events run/n for n in [from, from + count), simple defaults. */
static CF_UNUSED cf_audit_event **tu_events(unsigned run, unsigned from, size_t count)
{
    cf_audit_event **evs = calloc(count > 0 ? count : 1, sizeof(*evs));
    if (evs == NULL)
        abort();
    for (size_t i = 0; i < count; i++)
        evs[i] = tu_event(run, from + (unsigned)i, "acme", "kms.otk.issue", NULL,
                          1714564800000LL + (int64_t)(from + i) * 1000);
    return evs;
}

/* ---- PostgreSQL ------------------------------------------------------------------ */

static char tu_pg_dir[PATH_MAX];
static pid_t tu_pg_pid = -1;
static cf_store *tu_pg_admin;

static CF_UNUSED void tu_pg_uri(char *out, size_t size, const char *schema)
{
    tu_fmt(out, size, "postgresql:///postgres?host=%s&port=5432&user=coffer%s%s", tu_pg_dir,
           schema != NULL ? "&options=-csearch_path%3D" : "", schema != NULL ? schema : "");
}

static CF_UNUSED pid_t tu_run_as_pg(const char *log, const char *const argv[])
{
    struct passwd *pw = NULL;
    char *args[24];
    pid_t pid;
    if (geteuid() == 0) {
        pw = getpwnam("postgres");
        if (pw == NULL)
            pw = getpwnam("nobody");
        if (pw == NULL)
            return -1;
    }
    pid = fork();
    if (pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        if (fd >= 0) {
            (void)dup2(fd, 1);
            (void)dup2(fd, 2);
        }
        if (pw != NULL &&
            (setgroups(0, NULL) != 0 || setgid(pw->pw_gid) != 0 || setuid(pw->pw_uid) != 0))
            _exit(126);
        /* execv wants char *const[]: copy (this child execs or exits) */
        for (size_t k = 0; k < 23 && argv[k] != NULL; k++) {
            if ((args[k] = strdup(argv[k])) == NULL)
                _exit(125);
            args[k + 1] = NULL;
        }
        execv(args[0], args);
        _exit(127);
    }
    return pid;
}

/* 1 = no server binaries (skip), 0 = running, -1 = failed. */
static CF_UNUSED int tu_pg_start(void)
{
    char bin[PATH_MAX], initdb[PATH_MAX + 16], postgres[PATH_MAX + 16], data[PATH_MAX + 16],
        log[PATH_MAX + 16], uri[PATH_MAX + 128];
    const char *bindir = getenv("COFFER_PG_BINDIR");
    int status;
    pid_t pid;

    if (bindir != NULL && bindir[0] != '\0') {
        tu_fmt(bin, sizeof(bin), "%s", bindir);
    } else {
        glob_t g;
        if (glob("/usr/lib/postgresql/*/bin/postgres", 0, NULL, &g) != 0 || g.gl_pathc == 0)
            return 1;
        tu_fmt(bin, sizeof(bin), "%s", g.gl_pathv[g.gl_pathc - 1]);
        globfree(&g);
        *strrchr(bin, '/') = '\0';
    }
    tu_fmt(initdb, sizeof(initdb), "%s/initdb", bin);
    tu_fmt(postgres, sizeof(postgres), "%s/postgres", bin);
    if (access(initdb, X_OK) != 0 || access(postgres, X_OK) != 0)
        return 1;
    tu_fmt(tu_pg_dir, sizeof(tu_pg_dir), "/tmp/coffer-auditpg-XXXXXX");
    if (mkdtemp(tu_pg_dir) == NULL)
        return -1;
    if (geteuid() == 0) {
        struct passwd *pw = getpwnam("postgres");
        if (pw == NULL)
            pw = getpwnam("nobody");
        if (pw == NULL || chown(tu_pg_dir, pw->pw_uid, pw->pw_gid) != 0)
            return -1;
    }
    tu_fmt(data, sizeof(data), "%s/data", tu_pg_dir);
    tu_fmt(log, sizeof(log), "%s/log", tu_pg_dir);
    {
        const char *argv[] = {initdb, "-D", data, "-U", "coffer", "--auth=trust", "-N",
                              "-E", "UTF8", "--locale=C", NULL};
        pid = tu_run_as_pg(log, argv);
        if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ||
            WEXITSTATUS(status) != 0) {
            fprintf(stderr, "initdb failed (see %s)\n", log);
            return -1;
        }
    }
    {
        /* fsync off: the server's own crash durability is not under test */
        const char *argv[] = {postgres, "-D", data, "-k", tu_pg_dir, "-p", "5432", "-c",
                              "listen_addresses=", "-c", "fsync=off", "-c",
                              "max_connections=40", NULL};
        tu_pg_pid = tu_run_as_pg(log, argv);
        if (tu_pg_pid < 0)
            return -1;
    }
    tu_pg_uri(uri, sizeof(uri), NULL);
    for (int i = 0; i < 300 && PQping(uri) != PQPING_OK; i++) {
        if (waitpid(tu_pg_pid, &status, WNOHANG) == tu_pg_pid) {
            tu_pg_pid = -1;
            return -1;
        }
        tu_sleep_ms(50);
    }
    return cf_store_open(uri, &tu_pg_admin) == 0 ? 0 : -1;
}

static CF_UNUSED void tu_pg_stop(void)
{
    int status;
    cf_store_close(tu_pg_admin);
    tu_pg_admin = NULL;
    if (tu_pg_pid > 0) {
        (void)kill(tu_pg_pid, SIGINT);
        for (int i = 0; i < 200 && tu_pg_pid > 0; i++) {
            if (waitpid(tu_pg_pid, &status, WNOHANG) == tu_pg_pid)
                tu_pg_pid = -1;
            else
                tu_sleep_ms(50);
        }
        if (tu_pg_pid > 0) {
            (void)kill(tu_pg_pid, SIGKILL);
            (void)waitpid(tu_pg_pid, &status, 0);
            tu_pg_pid = -1;
        }
    }
    tu_rm_tree(tu_pg_dir);
}

/* ---- backends ---------------------------------------------------------------------- */

static cf_store_backend_kind tu_backend = CF_STORE_SQLITE;

/* A DSN for an empty store of the current backend. */
static CF_UNUSED void tu_fresh_dsn(char *out, size_t size)
{
    if (tu_backend == CF_STORE_SQLITE) {
        char p[PATH_MAX];
        tu_path(p, sizeof(p), "audit.db");
        tu_fmt(out, size, "sqlite:%s", p);
    } else {
        char sql[64], schema[32];
        tu_fmt(schema, sizeof(schema), "t%d", tu_seq++);
        tu_fmt(sql, sizeof(sql), "CREATE SCHEMA %s", schema);
        if (cf_store_exec(tu_pg_admin, sql, NULL, 0, NULL) != 0)
            abort();
        tu_pg_uri(out, size, schema);
    }
}

#endif
