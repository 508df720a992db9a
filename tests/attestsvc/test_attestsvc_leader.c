/*
 * Leader election of the re-attestation scheduler (attestsvc/leader.h):
 * SQLite is single node (always the leader); PostgreSQL elects exactly one of
 * several replicas with a session advisory lock, hands over when the leader
 * goes away, and notices when its connection (and so the lock) was lost.
 * The PostgreSQL half runs against a throwaway server started here (initdb +
 * postgres from /usr/lib/postgresql/<v>/bin or $COFFER_PG_BINDIR, unix socket
 * only) and prints SKIP when the server binaries are not installed.
 */
#include <fcntl.h>
#include <ftw.h>
#include <glob.h>
#include <grp.h>
#include <libpq-fe.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "attestsvc/leader.h"
#include "base/err.h"
#include "store/store.h"
#include "test.h"

static char g_tmp[] = "/tmp/coffer-attestsvc-leader-XXXXXX";
static char g_pg_dir[256], g_pg_bin[512];
static pid_t g_pg_pid = -1;

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void test_sqlite_is_single_node(void)
{
    char dsn[600];
    cf_attest_leader *a = NULL, *b = NULL;
    bool la = false, lb = false;

    snprintf(dsn, sizeof(dsn), "sqlite:%s/attest.db", g_tmp);
    T_OK(cf_attest_leader_new(dsn, &a));
    T_OK(cf_attest_leader_new(dsn, &b));
    T_ASSERT(cf_attest_leader_single_node(a));
    T_OK(cf_attest_leader_check(a, &la));
    T_OK(cf_attest_leader_check(b, &lb));
    /* One SQLite file belongs to one service process: no election. */
    T_ASSERT(la && lb);
    cf_attest_leader_free(a);
    cf_attest_leader_free(b);
    a = NULL;
    T_FAILS(cf_attest_leader_new("mysql://nope", &a));
    T_ASSERT(a == NULL);
}

/* ---- PostgreSQL ---- */

static pid_t run_as_server_user(const char *log, const char *const argv[])
{
    struct passwd *pw = NULL;
    pid_t pid;

    if (geteuid() == 0 && (pw = getpwnam("postgres")) == NULL && (pw = getpwnam("nobody")) == NULL)
        return -1;
    pid = fork();
    if (pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        if (fd >= 0) {
            (void)dup2(fd, 1);
            (void)dup2(fd, 2);
        }
        if (pw != NULL && (setgroups(0, NULL) != 0 || setgid(pw->pw_gid) != 0 || setuid(pw->pw_uid) != 0))
            _exit(126);
        {
            /* execv wants char *const[]: copies (this child execs or exits) */
            char *args[24];
            size_t k;
            for (k = 0; k < 23 && argv[k] != NULL; k++)
                if ((args[k] = strdup(argv[k])) == NULL)
                    _exit(125);
            args[k] = NULL;
            execv(args[0], args);
        }
        _exit(127);
    }
    return pid;
}

static void pg_dsn(char *out, size_t n)
{
    snprintf(out, n, "postgresql:///postgres?host=%s&port=5432&user=coffer", g_pg_dir);
}

/* 1 = no server binaries (skip), 0 = running, -1 = failed. */
static int pg_start(void)
{
    char initdb[600], postgres[600], data[300], log[300], dsn[400];
    const char *bindir = getenv("COFFER_PG_BINDIR");
    glob_t g;
    int status;

    if (bindir != NULL && bindir[0] != '\0') {
        snprintf(g_pg_bin, sizeof(g_pg_bin), "%s", bindir);
    } else {
        if (glob("/usr/lib/postgresql/*/bin/postgres", 0, NULL, &g) != 0 || g.gl_pathc == 0)
            return 1;
        snprintf(g_pg_bin, sizeof(g_pg_bin), "%s", g.gl_pathv[g.gl_pathc - 1]);
        globfree(&g);
        *strrchr(g_pg_bin, '/') = '\0';
    }
    snprintf(initdb, sizeof(initdb), "%s/initdb", g_pg_bin);
    snprintf(postgres, sizeof(postgres), "%s/postgres", g_pg_bin);
    if (access(initdb, X_OK) != 0 || access(postgres, X_OK) != 0)
        return 1;
    snprintf(g_pg_dir, sizeof(g_pg_dir), "/tmp/coffer-attestsvc-pg-XXXXXX");
    if (mkdtemp(g_pg_dir) == NULL)
        return -1;
    if (geteuid() == 0) {
        struct passwd *pw = getpwnam("postgres");
        if (pw == NULL)
            pw = getpwnam("nobody");
        if (pw == NULL || chown(g_pg_dir, pw->pw_uid, pw->pw_gid) != 0)
            return -1;
    }
    snprintf(data, sizeof(data), "%s/data", g_pg_dir);
    snprintf(log, sizeof(log), "%s/log", g_pg_dir);
    {
        const char *const argv[] = {initdb, "-D", data, "-U", "coffer", "--auth=trust", "-N", "-E", "UTF8", "--locale=C", NULL};
        pid_t pid = run_as_server_user(log, argv);
        if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
            return -1;
    }
    {
        const char *const argv[] = {postgres, "-D", data, "-k", g_pg_dir, "-p", "5432", "-c", "listen_addresses=",
                        "-c", "fsync=off", NULL};
        g_pg_pid = run_as_server_user(log, argv);
        if (g_pg_pid < 0)
            return -1;
    }
    pg_dsn(dsn, sizeof(dsn));
    for (int i = 0; i < 300; i++) {
        if (PQping(dsn) == PQPING_OK)
            return 0;
        if (waitpid(g_pg_pid, &status, WNOHANG) == g_pg_pid) {
            g_pg_pid = -1;
            return -1;
        }
        sleep_ms(50);
    }
    return -1;
}

static int rm_cb(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    (void)remove(path);
    return 0;
}

static void pg_stop(void)
{
    int status;

    if (g_pg_pid > 0) {
        (void)kill(g_pg_pid, SIGINT);
        for (int i = 0; i < 200 && waitpid(g_pg_pid, &status, WNOHANG) != g_pg_pid; i++)
            sleep_ms(50);
        if (kill(g_pg_pid, 0) == 0) {
            (void)kill(g_pg_pid, SIGKILL);
            (void)waitpid(g_pg_pid, &status, 0);
        }
        g_pg_pid = -1;
    }
    if (g_pg_dir[0] != '\0')
        (void)nftw(g_pg_dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

/* A closed session's locks are released when its backend has exited, a moment
 * after the client disconnects: poll for what the next scheduler tick would see. */
static bool becomes_leader(cf_attest_leader *l)
{
    bool is = false;
    for (int i = 0; i < 100; i++) {
        if (cf_attest_leader_check(l, &is) == 0 && is)
            return true;
        sleep_ms(50);
    }
    return false;
}

static void test_pg_one_leader_and_handover(void)
{
    char dsn[400];
    cf_attest_leader *a = NULL, *b = NULL, *c = NULL;
    bool la = false, lb = false, lc = false;

    pg_dsn(dsn, sizeof(dsn));
    T_OK(cf_attest_leader_new(dsn, &a));
    T_OK(cf_attest_leader_new(dsn, &b));
    T_OK(cf_attest_leader_new(dsn, &c));
    T_ASSERT(!cf_attest_leader_single_node(a));
    T_ASSERT(becomes_leader(a));
    T_OK(cf_attest_leader_check(a, &la));
    T_OK(cf_attest_leader_check(b, &lb));
    T_OK(cf_attest_leader_check(c, &lc));
    T_ASSERT(la && !lb && !lc);
    /* The leader confirms it still holds the lock; the others keep failing. */
    T_OK(cf_attest_leader_check(a, &la));
    T_OK(cf_attest_leader_check(b, &lb));
    T_ASSERT(la && !lb);
    /* The leader goes away (process exit closes its session): one other takes over. */
    cf_attest_leader_free(a);
    a = NULL;
    T_ASSERT(becomes_leader(b));
    T_OK(cf_attest_leader_check(c, &lc));
    T_ASSERT(!lc);
    cf_attest_leader_free(b);
    cf_attest_leader_free(c);
}

static void test_pg_lost_connection_loses_leadership(void)
{
    char dsn[400];
    cf_attest_leader *a = NULL, *b = NULL;
    cf_store *admin = NULL;
    bool la = false, lb = false;
    int64_t n = 0;
    int rc;
    cf_store_rows *r = NULL;

    pg_dsn(dsn, sizeof(dsn));
    T_OK(cf_attest_leader_new(dsn, &a));
    T_OK(cf_attest_leader_new(dsn, &b));
    T_ASSERT(becomes_leader(a));
    /* Kill the leader's backend: the server drops its advisory lock. */
    T_OK(cf_store_open(dsn, &admin));
    T_OK(cf_store_query_row(admin,
                            "SELECT CAST(count(pg_terminate_backend(pid)) AS BIGINT) FROM pg_locks"
                            " WHERE locktype = 'advisory' AND objsubid = 1"
                            " AND CAST(classid AS BIGINT) * 4294967296 + CAST(objid AS BIGINT) = ?",
                            CF_STORE_ARGS(cf_sv_int(CF_ATTEST_LEADER_LOCK_KEY)), &r));
    T_OK(cf_store_col_i64(r, 0, &n));
    cf_store_rows_close(r);
    T_EQ(n, 1);
    /* The other replica wins the lock; the old leader must notice it lost it,
     * even if its store handle reconnects silently. */
    T_ASSERT(becomes_leader(b));
    T_OK(cf_attest_leader_check(b, &lb));
    T_ASSERT(lb);
    la = true;
    rc = cf_attest_leader_check(a, &la); /* may report the lost connection */
    T_ASSERT(rc != 0 || !la);
    la = true;
    rc = cf_attest_leader_check(a, &la);
    T_EQ(rc, 0); /* reconnected, and still not the leader */
    T_ASSERT(!la);
    cf_store_close(admin);
    cf_attest_leader_free(a);
    cf_attest_leader_free(b);
}

int main(void)
{
    int rc, pg;

    if (mkdtemp(g_tmp) == NULL)
        return 1;
    T_RUN(test_sqlite_is_single_node);
    pg = pg_start();
    if (pg == 0) {
        T_RUN(test_pg_one_leader_and_handover);
        T_RUN(test_pg_lost_connection_loses_leadership);
    } else if (pg == 1) {
        printf("SKIP: PostgreSQL server binaries not found: PostgreSQL leader election not tested\n");
    } else {
        fprintf(stderr, "could not start PostgreSQL (see %s/log)\n", g_pg_dir);
        t_failed++;
    }
    pg_stop();
    rc = t_done();
    (void)nftw(g_tmp, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
    return rc;
}
