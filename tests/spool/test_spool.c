#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/err.h"
#include "base/parse.h"
#include "spool/spool.h"
#include "test.h"

static char root[64];
static int seq;

static int rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(p);
}

static const char *newdir(void)
{
    static char d[128];
    if (cf_fmt(d, sizeof(d), "%s/s%d", root, seq++) != 0)
        abort();
    return d;
}

static int append_n(cf_spool *s, int from, int n)
{
    for (int i = from; i < from + n; i++) {
        json_t *ev = json_pack("{s:s,s:i}", "action", "test.event", "n", i);
        int rc = cf_spool_append(s, ev, NULL);
        json_decref(ev);
        if (rc != 0)
            return rc;
    }
    return 0;
}

struct collect {
    int ns[4096];
    size_t count;
    uint64_t last_next;
};

static int collect_cb(void *arg, const char *js, size_t len, uint64_t next)
{
    struct collect *c = arg;
    json_error_t e;
    json_t *v = json_loadb(js, len, 0, &e);
    if (v == NULL || c->count >= 4096)
        return CF_E_PARSE;
    c->ns[c->count++] = (int)json_integer_value(json_object_get(v, "n"));
    if (json_string_length(json_object_get(v, "event_id")) != CF_SPOOL_EVENT_ID_LEN ||
        json_object_get(v, "ts") == NULL) {
        json_decref(v);
        return CF_E_PARSE;
    }
    json_decref(v);
    c->last_next = next;
    return 0;
}

static void test_append_pending_ack(void)
{
    const char *d = newdir();
    cf_spool *s = NULL, *s2 = NULL;
    struct collect c = {0};
    char id[CF_SPOOL_EVENT_ID_LEN + 1];
    json_t *ev;
    uint64_t first_next;

    T_OK(cf_spool_open(d, &s));
    T_ERR(cf_spool_open(d, &s2), CF_E_CONFLICT); /* one process per spool */
    ev = json_pack("{s:s}", "action", "first");
    T_OK(cf_spool_append(s, ev, id));
    T_EQ(strlen(id), CF_SPOOL_EVENT_ID_LEN);
    T_STREQ(json_string_value(json_object_get(ev, "event_id")), id);
    json_decref(ev);
    T_OK(append_n(s, 1, 4));
    T_EQ(cf_spool_pending_count(s), 5);

    T_OK(cf_spool_pending(s, 100, collect_cb, &c));
    T_EQ(c.count, 5);
    T_EQ(c.ns[1], 1);
    T_EQ(c.ns[4], 4);

    /* Ack the first event only, through a 1-event page. */
    memset(&c, 0, sizeof(c));
    T_OK(cf_spool_pending(s, 1, collect_cb, &c));
    T_EQ(c.count, 1);
    first_next = c.last_next;
    T_OK(cf_spool_ack(s, first_next));
    T_EQ(cf_spool_pending_count(s), 4);
    T_ERR(cf_spool_ack(s, first_next + 3), CF_E_RANGE); /* not a record boundary */
    T_ERR(cf_spool_ack(s, 1ull << 40), CF_E_RANGE);
    T_OK(cf_spool_ack(s, 2)); /* going backwards is a no-op */
    T_EQ(cf_spool_pending_count(s), 4);
    cf_spool_close(s);

    /* Restart: the ack mark survives, the rest is pending again. */
    T_OK(cf_spool_open(d, &s));
    T_EQ(cf_spool_pending_count(s), 4);
    memset(&c, 0, sizeof(c));
    T_OK(cf_spool_pending(s, 100, collect_cb, &c));
    T_EQ(c.count, 4);
    T_EQ(c.ns[0], 1);
    /* Ack everything: the log is compacted. */
    T_OK(cf_spool_ack(s, c.last_next));
    T_EQ(cf_spool_pending_count(s), 0);
    T_OK(append_n(s, 100, 1));
    T_EQ(cf_spool_pending_count(s), 1);
    cf_spool_close(s);
    T_OK(cf_spool_open(d, &s));
    T_EQ(cf_spool_pending_count(s), 1);
    cf_spool_close(s);
}

static void test_limits(void)
{
    const char *d = newdir();
    cf_spool *s = NULL;
    char *big = malloc(CF_SPOOL_MAX_RECORD + 10);
    json_t *ev;

    T_ASSERT(big != NULL);
    memset(big, 'a', CF_SPOOL_MAX_RECORD + 9);
    big[CF_SPOOL_MAX_RECORD + 9] = 0;
    T_OK(cf_spool_open(d, &s));
    ev = json_pack("{s:s}", "blob", big);
    T_ERR(cf_spool_append(s, ev, NULL), CF_E_TOO_LARGE);
    json_decref(ev);
    T_EQ(cf_spool_pending_count(s), 0);
    ev = json_array();
    T_ERR(cf_spool_append(s, ev, NULL), CF_E_INVAL);
    json_decref(ev);
    free(big);
    cf_spool_close(s);
}

static void test_torn_tail_and_corruption(void)
{
    const char *d = newdir();
    char path[256];
    cf_spool *s = NULL;
    struct stat st;
    int fd;

    T_OK(cf_spool_open(d, &s));
    T_OK(append_n(s, 0, 3));
    cf_spool_close(s);
    T_OK(cf_fmt(path, sizeof(path), "%s/events.log", d));
    T_ASSERT(stat(path, &st) == 0);
    off_t good = st.st_size;

    /* A partial record at the end (crash mid-append) is cut away. */
    fd = open(path, O_WRONLY | O_APPEND);
    T_ASSERT(fd >= 0);
    T_ASSERT(write(fd, "\x00\x00\x00\x40partial", 11) == 11);
    close(fd);
    T_OK(cf_spool_open(d, &s));
    T_EQ(cf_spool_pending_count(s), 3);
    T_ASSERT(stat(path, &st) == 0);
    T_EQ(st.st_size, good);
    T_OK(append_n(s, 3, 1));
    T_EQ(cf_spool_pending_count(s), 4);
    cf_spool_close(s);

    /* A damaged record followed by good ones is corruption: refuse to open. */
    fd = open(path, O_RDWR);
    T_ASSERT(fd >= 0);
    T_ASSERT(pwrite(fd, "X", 1, 20) == 1);
    close(fd);
    T_ERR(cf_spool_open(d, &s), CF_E_PARSE);
    T_ASSERT(strstr(cf_err_detail(CF_E_PARSE), "corrupted") != NULL);
}

/* kill -9 while appending: every append that returned is still there. */
static void test_kill9_loses_nothing_acknowledged(void)
{
    const char *d = newdir();
    int p[2];
    pid_t pid;
    int acked[4096], nacked = 0, v;
    struct collect *c = calloc(1, sizeof(*c));
    cf_spool *s = NULL;

    T_ASSERT(c != NULL);
    T_ASSERT(pipe(p) == 0);
    pid = fork();
    T_ASSERT(pid >= 0);
    if (pid == 0) {
        cf_spool *cs = NULL;
        close(p[0]);
        if (cf_spool_open(d, &cs) != 0)
            _exit(2);
        for (int i = 0; i < 4000; i++) {
            if (append_n(cs, i, 1) != 0)
                _exit(3);
            if (write(p[1], &i, sizeof(i)) != sizeof(i))
                _exit(4);
        }
        _exit(0);
    }
    close(p[1]);
    while (nacked < 200 && read(p[0], &v, sizeof(v)) == sizeof(v))
        acked[nacked++] = v;
    kill(pid, SIGKILL);
    T_ASSERT(waitpid(pid, NULL, 0) == pid);
    while (nacked < 4096 && read(p[0], &v, sizeof(v)) == sizeof(v))
        acked[nacked++] = v;
    close(p[0]);
    T_ASSERT(nacked >= 200);

    T_OK(cf_spool_open(d, &s));
    T_OK(cf_spool_pending(s, 5000, collect_cb, c));
    T_ASSERT(c->count >= (size_t)nacked);
    for (int i = 0; i < nacked; i++)
        T_ASSERT_MSG(c->ns[i] == acked[i], "event %d lost after kill -9", acked[i]);
    cf_spool_close(s);
    free(c);
}

static void test_scan(void)
{
    size_t valid, recs;

    T_OK(cf_spool_scan((const uint8_t *)"", 0, &valid, &recs));
    T_EQ(recs, 0);
    T_ERR(cf_spool_scan((const uint8_t *)"XXXX", 4, &valid, &recs), CF_E_PARSE);
    T_OK(cf_spool_scan((const uint8_t *)"CFS1\x00\x00", 6, &valid, &recs));
    T_EQ(valid, 4);
    T_EQ(recs, 0);
}

int main(void)
{
    if (cf_fmt(root, sizeof(root), "/tmp/coffer-spool-XXXXXX") != 0 || mkdtemp(root) == NULL)
        return 1;
    T_RUN(test_append_pending_ack);
    T_RUN(test_limits);
    T_RUN(test_torn_tail_and_corruption);
    T_RUN(test_kill9_loses_nothing_acknowledged);
    T_RUN(test_scan);
    nftw(root, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
    return t_done();
}
