/*
 * Audit log throughput, each figure next to the raw limit it is bounded by,
 * measured in the same run on the same filesystem:
 *
 *   durable appends, batches of 1     vs  fdatasync() per second (each commit is
 *                                         at least one WAL sync: synchronous=FULL)
 *   durable appends, batches of 100   vs  the same, x100 (the bound if only the
 *                                         sync mattered), and SHA-256 over an
 *                                         event-sized input (OpenSSL EVP)
 *   inclusion / consistency proofs    vs  indexed point reads per second (sqlite3
 *   from the store                        prepared statement on the same file)
 *                                         divided by the reads one proof needs
 *
 * About 14 s in total. The SQLite files live in $TMPDIR (default /tmp).
 */
#include <fcntl.h>
#include <ftw.h>
#include <openssl/evp.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "auditlog/event.h"
#include "auditlog/log.h"
#include "base/err.h"
#include "merkle/merkle.h"

#define PROOF_TREE 20000

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what)
{
    fprintf(stderr, "bench_audit: %s failed: %s\n", what, cf_err_detail(CF_E_INTERNAL));
    exit(1);
}

static char g_dir[512];
static unsigned g_next;

static int rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(p);
}

/* A realistic event (about 400 bytes canonical). */
static cf_audit_event *make_event(void)
{
    char id[40];
    json_t *o;
    cf_audit_event *ev = NULL;
    unsigned n = g_next++;

    (void)snprintf(id, sizeof(id), "%016x%016x", 0xbe11c400u, n);
    o = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:{s:s,s:i,s:s}}", "event_id", id,
                  "ts", "2024-05-01T12:00:00.123Z", "service", "kms", "actor",
                  "spiffe://coffer/gateway", "tenant", "tenant-0042", "action", "kms.otk.release",
                  "resource", "otk/4f0c2a7d9e1b3c5a", "outcome", "success", "request_id",
                  "7b2d1f0e-3c4a-4b5d-8e9f-0a1b2c3d4e5f", "tee_id", "tee-snp-0007", "details",
                  "deployment", "demo-wordcount", "version", 3, "client_key",
                  "k7Q1xS0p3xv4Zt8wN2mH5rLq9cB6yE1uJ0aFhGdKiOs");
    if (o == NULL || cf_audit_event_from_json(o, &ev) != 0)
        die("event");
    json_decref(o);
    return ev;
}

static cf_audit_log *open_log(const char *name, cf_store **ret_s, char *path, size_t psize)
{
    char dsn[600];
    cf_audit_log *l = NULL;

    (void)snprintf(path, psize, "%s/%s", g_dir, name);
    (void)snprintf(dsn, sizeof(dsn), "sqlite:%s", path);
    if (cf_store_open(dsn, ret_s) != 0 || cf_audit_log_open(*ret_s, &l) != 0)
        die("open log");
    return l;
}

/* ---- raw limits ---------------------------------------------------------------------- */

static double fdatasync_rate(double secs)
{
    char path[600];
    char rec[256];
    long n = 0;
    double t0, el;
    int fd;

    (void)snprintf(path, sizeof(path), "%s/sync.dat", g_dir);
    fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0)
        die("open sync file");
    memset(rec, 'x', sizeof(rec));
    t0 = now_s();
    do {
        if (write(fd, rec, sizeof(rec)) != (ssize_t)sizeof(rec) || fdatasync(fd) != 0)
            die("write+fdatasync");
        n++;
        el = now_s() - t0;
    } while (el < secs);
    close(fd);
    return (double)n / el;
}

static double sha256_rate(size_t len, double secs)
{
    unsigned char in[1024], out[32];
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    long n = 0;
    double t0, el;

    memset(in, 0x5a, sizeof(in));
    t0 = now_s();
    do {
        for (int i = 0; i < 256; i++) {
            if (EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1 ||
                EVP_DigestUpdate(ctx, in, len) != 1 || EVP_DigestFinal_ex(ctx, out, NULL) != 1)
                die("EVP SHA-256");
            n++;
        }
        el = now_s() - t0;
    } while (el < secs);
    EVP_MD_CTX_free(ctx);
    return (double)n / el;
}

/* Point reads per second on the subtree-hash index, prepared once. */
static double point_read_rate(const char *db_path, uint64_t size, double secs)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    long n = 0;
    double t0, el;
    unsigned x = 12345;

    if (sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(db, "SELECT hash FROM audit_nodes WHERE lvl = ? AND idx = ?", -1, &st,
                           NULL) != SQLITE_OK)
        die("sqlite3 prepare");
    t0 = now_s();
    do {
        for (int i = 0; i < 64; i++) {
            int lvl = 1 + (int)(x % 8);
            x = x * 1103515245u + 12345u;
            sqlite3_bind_int(st, 1, lvl);
            sqlite3_bind_int64(st, 2, (sqlite3_int64)(x % (size >> lvl)));
            if (sqlite3_step(st) != SQLITE_ROW)
                die("sqlite3 step");
            sqlite3_reset(st);
            n++;
        }
        el = now_s() - t0;
    } while (el < secs);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return (double)n / el;
}

/* ---- the audit log --------------------------------------------------------------------- */

static double append_rate(size_t batch, double secs, double *ret_commits)
{
    char path[600];
    cf_store *s = NULL;
    cf_audit_log *l;
    cf_audit_event **evs = calloc(batch, sizeof(*evs));
    long events = 0, commits = 0;
    double t0, el;
    char name[32];

    (void)snprintf(name, sizeof(name), "append%zu.db", batch);
    l = open_log(name, &s, path, sizeof(path));
    t0 = now_s();
    do {
        cf_audit_append_result r;
        for (size_t i = 0; i < batch; i++)
            evs[i] = make_event(); /* made outside the timed part would need memory for all */
        if (cf_audit_append(l, evs, batch, &r) != 0 || r.added != batch)
            die("append");
        for (size_t i = 0; i < batch; i++)
            cf_audit_event_free(evs[i]);
        events += (long)batch;
        commits++;
        el = now_s() - t0;
    } while (el < secs);
    free(evs);
    cf_audit_log_close(l);
    cf_store_close(s);
    *ret_commits = (double)commits / el;
    return (double)events / el;
}

static double event_build_rate(double secs)
{
    long n = 0;
    double t0 = now_s(), el;
    do {
        cf_audit_event_free(make_event());
        n++;
        el = now_s() - t0;
    } while (el < secs);
    return (double)n / el;
}

struct proof_bench {
    cf_audit_log *log;
    uint64_t size;
    double reads_per_incl, reads_per_cons;
};

static double proof_rate(struct proof_bench *b, int consistency, double secs)
{
    unsigned x = 777;
    long n = 0, reads = 0;
    double t0 = now_s(), el;
    cf_merkle_proof p;
    int pop = __builtin_popcountll(b->size);

    do {
        for (int i = 0; i < 16; i++) {
            uint64_t k = (x = x * 1103515245u + 12345u) % b->size;
            int rc;
            if (consistency) {
                rc = cf_audit_consistency_proof(b->log, k + 1 < b->size ? k + 1 : 1, b->size, &p);
            } else {
                rc = cf_audit_inclusion_proof(b->log, k, b->size, &p);
            }
            if (rc != 0)
                die("proof");
            /* store reads: tree size, the frontier (at most), one per element */
            reads += 1 + pop + (long)p.len;
            n++;
        }
        el = now_s() - t0;
    } while (el < secs);
    if (consistency)
        b->reads_per_cons = (double)reads / (double)n;
    else
        b->reads_per_incl = (double)reads / (double)n;
    return (double)n / el;
}

int main(void)
{
    const char *tmp = getenv("TMPDIR");
    double sync_rate, sha_event, sha_node, a1, c1, a100, c100, build, reads, incl, cons;
    struct proof_bench pb;
    cf_store *s = NULL;
    char path[600];
    size_t event_len;

    (void)snprintf(g_dir, sizeof(g_dir), "%s/coffer-bench-audit-XXXXXX",
                   tmp != NULL && tmp[0] != '\0' ? tmp : "/tmp");
    if (mkdtemp(g_dir) == NULL)
        die("mkdtemp");
    {
        cf_audit_event *ev = make_event();
        event_len = ev->entry_len;
        cf_audit_event_free(ev);
    }

    sync_rate = fdatasync_rate(1.5);
    sha_event = sha256_rate(event_len + 1, 0.7);
    sha_node = sha256_rate(65, 0.7);
    build = event_build_rate(0.7);
    a1 = append_rate(1, 2.0, &c1);
    a100 = append_rate(100, 2.0, &c100);

    /* a log of PROOF_TREE entries for the proofs */
    memset(&pb, 0, sizeof(pb));
    pb.log = open_log("proofs.db", &s, path, sizeof(path));
    for (size_t done = 0; done < PROOF_TREE; done += 1000) {
        cf_audit_event *evs[1000];
        for (int i = 0; i < 1000; i++)
            evs[i] = make_event();
        if (cf_audit_append(pb.log, evs, 1000, NULL) != 0)
            die("fill");
        for (int i = 0; i < 1000; i++)
            cf_audit_event_free(evs[i]);
    }
    pb.size = PROOF_TREE;
    reads = point_read_rate(path, pb.size, 1.5);
    incl = proof_rate(&pb, 0, 2.0);
    cons = proof_rate(&pb, 1, 2.0);
    cf_audit_log_close(pb.log);
    cf_store_close(s);
    (void)nftw(g_dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);

    printf("audit log benchmark (SQLite WAL, synchronous=FULL, files in %s)\n",
           tmp != NULL && tmp[0] != '\0' ? tmp : "/tmp");
    printf("  limit: write(256 B) + fdatasync          %10.0f /s\n", sync_rate);
    printf("  limit: SHA-256 of %4zu B (OpenSSL EVP)    %10.0f /s\n", event_len + 1, sha_event);
    printf("  limit: SHA-256 of   65 B (OpenSSL EVP)    %10.0f /s\n", sha_node);
    printf("  (building + validating one event          %10.0f /s, included below)\n", build);
    printf("  durable appends, batch of 1:   %9.0f events/s = %7.0f commits/s  "
           "ratio to fdatasync %.2f\n",
           a1, c1, c1 / sync_rate);
    printf("  durable appends, batch of 100: %9.0f events/s = %7.0f commits/s  "
           "ratio to fdatasync x100 %.2f, to SHA-256 of an event %.3f\n",
           a100, c100, a100 / (sync_rate * 100.0), a100 / sha_event);
    printf("  limit: sqlite3 indexed point reads        %10.0f /s\n", reads);
    printf("  inclusion proofs (tree of %d):    %8.0f /s  (<= %.1f reads each; bound %.0f /s, "
           "ratio %.2f)\n",
           PROOF_TREE, incl, pb.reads_per_incl, reads / pb.reads_per_incl,
           incl / (reads / pb.reads_per_incl));
    printf("  consistency proofs (tree of %d):  %8.0f /s  (<= %.1f reads each; bound %.0f /s, "
           "ratio %.2f)\n",
           PROOF_TREE, cons, pb.reads_per_cons, reads / pb.reads_per_cons,
           cons / (reads / pb.reads_per_cons));
    return 0;
}
