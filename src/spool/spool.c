#include "spool/spool.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/err.h"
#include "base/json.h"
#include "base/log.h"
#include "base/parse.h"
#include "base/secmem.h"
#include "crypto/hash.h"

#define MAGIC "CFS1"
#define MAGIC_LEN 4
#define SUM_LEN 8
#define REC_HDR (4 + SUM_LEN)
#define MAX_SPOOL_FILE (1ull << 34) /* 16 GiB: refuse to grow past it */

struct cf_spool {
    pthread_mutex_t mu;
    int dirfd;
    int fd;         /* events.log, O_APPEND */
    uint64_t end;   /* size of the valid log */
    uint64_t acked; /* ack mark */
    size_t pending; /* records after the ack mark */
};

static int io_err(const char *what)
{
    return cf_err_set(CF_E_IO, "audit spool: %s: %s", what, strerror(errno));
}

int cf_spool_scan(const uint8_t *data, size_t len, size_t *ret_valid, size_t *ret_records)
{
    cf_buf b;
    size_t valid, records = 0;

    if (len < MAGIC_LEN || memcmp(data, MAGIC, MAGIC_LEN) != 0) {
        if (len == 0) {
            *ret_valid = 0;
            *ret_records = 0;
            return 0;
        }
        return cf_err_set(CF_E_PARSE, "audit spool: bad magic");
    }
    cf_buf_view(&b, data, len);
    CF_GUARD(cf_buf_skip(&b, MAGIC_LEN));
    valid = MAGIC_LEN;
    for (;;) {
        uint32_t n;
        const uint8_t *sum, *payload;
        uint8_t h[CF_SHA256_LEN];

        if (cf_buf_get_u32be(&b, &n) != 0 || n == 0 || n > CF_SPOOL_MAX_RECORD)
            break;
        if (cf_buf_get_ptr(&b, SUM_LEN, &sum) != 0 || cf_buf_get_ptr(&b, n, &payload) != 0)
            break;
        CF_GUARD(cf_sha256(payload, n, h));
        if (!cf_ct_eq(h, sum, SUM_LEN))
            break;
        valid = b.rpos;
        records++;
    }
    *ret_valid = valid;
    *ret_records = records;
    return 0;
}

/* True if the bytes from `valid` to the end can be one interrupted append. */
static int is_torn_tail(const uint8_t *data, size_t len, size_t valid)
{
    cf_buf b;
    uint32_t n;
    size_t i;

    cf_buf_view(&b, data, len);
    if (cf_buf_skip(&b, valid) != 0 || cf_buf_get_u32be(&b, &n) != 0)
        return 1; /* not even a whole length field */
    if (n > 0 && n <= CF_SPOOL_MAX_RECORD && valid + REC_HDR + n >= len)
        return 1; /* the damaged record reaches the end of the file */
    for (i = valid; i < len; i++)
        if (data[i] != 0)
            return 0;
    return 1; /* zero-filled blocks from an extension that never got its data */
}

static int read_all(int fd, cf_buf *out, uint64_t size)
{
    uint8_t *dst;
    size_t got = 0;

    CF_ENSURE(size <= MAX_SPOOL_FILE, CF_E_TOO_LARGE);
    CF_GUARD(cf_buf_put_space(out, (size_t)size, &dst));
    while (got < size) {
        ssize_t r = pread(fd, dst + got, (size_t)size - got, (off_t)got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return io_err("read");
        got += (size_t)r;
    }
    return 0;
}

static int write_all(int fd, const uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return io_err("write");
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static int load_ack(cf_spool *s, uint64_t *ret)
{
    uint8_t raw[8];
    cf_buf b;
    uint64_t v;
    int fd = openat(s->dirfd, "ack", O_RDONLY | O_CLOEXEC);
    ssize_t r;

    if (fd < 0) {
        if (errno == ENOENT) {
            *ret = MAGIC_LEN;
            return 0;
        }
        return io_err("open ack");
    }
    r = read(fd, raw, sizeof(raw));
    close(fd);
    if (r != (ssize_t)sizeof(raw))
        return cf_err_set(CF_E_PARSE, "audit spool: ack file is corrupt");
    cf_buf_view(&b, raw, sizeof(raw));
    CF_GUARD(cf_buf_get_u64be(&b, &v));
    *ret = v;
    return 0;
}

static int store_ack(cf_spool *s, uint64_t off)
{
    uint8_t raw[8];
    cf_buf b;
    int fd;

    cf_buf_init(&b, sizeof(raw));
    CF_GUARD(cf_buf_put_u64be(&b, off));
    memcpy(raw, b.data, sizeof(raw));
    cf_buf_free(&b);
    fd = openat(s->dirfd, "ack.tmp", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return io_err("open ack.tmp");
    if (write_all(fd, raw, sizeof(raw)) != 0 || fdatasync(fd) != 0) {
        close(fd);
        return io_err("write ack");
    }
    close(fd);
    if (renameat(s->dirfd, "ack.tmp", s->dirfd, "ack") != 0 || fsync(s->dirfd) != 0)
        return io_err("rename ack");
    return 0;
}

/* Counts records in [from, end) of the current log. */
static int count_from(cf_spool *s, uint64_t from, size_t *ret)
{
    cf_buf img;
    size_t valid, records, before = 0;
    int rc;

    cf_buf_init(&img, MAX_SPOOL_FILE);
    rc = read_all(s->fd, &img, s->end);
    if (rc == 0)
        rc = cf_spool_scan(img.data, img.len, &valid, &records);
    if (rc == 0 && from > MAGIC_LEN) {
        size_t boundary;
        rc = cf_spool_scan(img.data, (size_t)from, &boundary, &before);
        if (rc == 0 && boundary != from)
            rc = cf_err_set(CF_E_RANGE, "audit spool: offset %llu is not a record boundary",
                            (unsigned long long)from);
    }
    cf_buf_free(&img);
    if (rc == 0)
        *ret = records - before;
    return rc;
}

int cf_spool_open(const char *dir, cf_spool **ret)
{
    cf_spool *s;
    struct stat st;
    cf_buf img;
    size_t valid = 0, records = 0;
    int rc;

    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        return io_err("create directory");
    s = calloc(1, sizeof(*s));
    CF_ENSURE(s != NULL, CF_E_NOMEM);
    pthread_mutex_init(&s->mu, NULL);
    s->fd = -1;
    cf_buf_init(&img, MAX_SPOOL_FILE);
    s->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (s->dirfd < 0) {
        rc = io_err("open directory");
        goto out;
    }
    if (flock(s->dirfd, LOCK_EX | LOCK_NB) != 0) {
        rc = cf_err_set(CF_E_CONFLICT, "audit spool %s is in use by another process", dir);
        goto out;
    }
    s->fd = openat(s->dirfd, "events.log", O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (s->fd < 0 || fstat(s->fd, &st) != 0) {
        rc = io_err("open events.log");
        goto out;
    }
    if (st.st_size == 0) {
        CF_GUARD_OUT(write_all(s->fd, (const uint8_t *)MAGIC, MAGIC_LEN));
        if (fdatasync(s->fd) != 0 || fsync(s->dirfd) != 0) {
            rc = io_err("sync");
            goto out;
        }
        st.st_size = MAGIC_LEN;
    }
    CF_GUARD_OUT(read_all(s->fd, &img, (uint64_t)st.st_size));
    CF_GUARD_OUT(cf_spool_scan(img.data, img.len, &valid, &records));
    if (valid < (size_t)st.st_size) {
        /* Only a partial LAST record can come from a crash during append (it was
         * never acknowledged): truncate it. Damage followed by more data is
         * corruption of acknowledged events: refuse to guess (fail closed). */
        if (!is_torn_tail(img.data, img.len, valid)) {
            rc = cf_err_set(CF_E_PARSE, "audit spool %s is corrupted at offset %zu; refusing to open it",
                            dir, valid);
            goto out;
        }
        cf_log(CF_LOG_WARN, "spool.truncated_torn_tail", "dir", dir, NULL);
        if (ftruncate(s->fd, (off_t)valid) != 0 || fdatasync(s->fd) != 0) {
            rc = io_err("truncate torn tail");
            goto out;
        }
    }
    s->end = valid;
    CF_GUARD_OUT(load_ack(s, &s->acked));
    if (s->acked < MAGIC_LEN || s->acked > s->end) {
        rc = cf_err_set(CF_E_PARSE, "audit spool: ack mark %llu outside the log",
                        (unsigned long long)s->acked);
        goto out;
    }
    CF_GUARD_OUT(count_from(s, s->acked, &s->pending));
    *ret = s;
    s = NULL;
    rc = 0;
out:
    cf_buf_free(&img);
    if (s != NULL)
        cf_spool_close(s);
    return rc;
}

void cf_spool_close(cf_spool *s)
{
    if (s == NULL)
        return;
    if (s->fd >= 0)
        close(s->fd);
    if (s->dirfd >= 0)
        close(s->dirfd); /* releases the flock */
    pthread_mutex_destroy(&s->mu);
    free(s);
}

static int add_defaults(json_t *ev, char id[CF_SPOOL_EVENT_ID_LEN + 1])
{
    json_t *v = json_object_get(ev, "event_id");

    if (v == NULL) {
        uint8_t raw[16];
        CF_GUARD(cf_random(raw, sizeof(raw)));
        cf_hex_encode(raw, sizeof(raw), id);
        CF_ENSURE(json_object_set_new(ev, "event_id", json_string(id)) == 0, CF_E_NOMEM);
    } else {
        const char *s = json_string_value(v);
        CF_ENSURE(s != NULL && strlen(s) == CF_SPOOL_EVENT_ID_LEN, CF_E_INVAL);
        memcpy(id, s, CF_SPOOL_EVENT_ID_LEN + 1);
    }
    if (json_object_get(ev, "ts") == NULL) {
        struct timespec ts;
        struct tm tm;
        char t[40];
        clock_gettime(CLOCK_REALTIME, &ts);
        gmtime_r(&ts.tv_sec, &tm);
        strftime(t, sizeof(t), "%Y-%m-%dT%H:%M:%S", &tm);
        char full[48];
        CF_GUARD(cf_fmt(full, sizeof(full), "%s.%03ldZ", t, ts.tv_nsec / 1000000));
        CF_ENSURE(json_object_set_new(ev, "ts", json_string(full)) == 0, CF_E_NOMEM);
    }
    return 0;
}

int cf_spool_append(cf_spool *s, json_t *ev, char ret_id[CF_SPOOL_EVENT_ID_LEN + 1])
{
    char id[CF_SPOOL_EVENT_ID_LEN + 1];
    char *js = NULL;
    uint8_t sum[CF_SHA256_LEN];
    cf_buf rec;
    size_t n;
    int rc;

    CF_ENSURE(json_is_object(ev), CF_E_INVAL);
    CF_GUARD(add_defaults(ev, id));
    js = cf_json_dump(ev);
    CF_ENSURE(js != NULL, CF_E_NOMEM);
    n = strlen(js);
    cf_buf_init(&rec, CF_SPOOL_MAX_RECORD + REC_HDR);
    if (n == 0 || n > CF_SPOOL_MAX_RECORD) {
        rc = cf_err_set(CF_E_TOO_LARGE, "audit event of %zu bytes exceeds the spool record limit", n);
        goto out;
    }
    CF_GUARD_OUT(cf_sha256(js, n, sum));
    CF_GUARD_OUT(cf_buf_put_u32be(&rec, (uint32_t)n));
    CF_GUARD_OUT(cf_buf_put(&rec, sum, SUM_LEN));
    CF_GUARD_OUT(cf_buf_put(&rec, js, n));

    pthread_mutex_lock(&s->mu);
    rc = write_all(s->fd, rec.data, rec.len);
    if (rc == 0 && fdatasync(s->fd) != 0)
        rc = io_err("fdatasync");
    if (rc == 0) {
        s->end += rec.len;
        s->pending++;
    } else {
        /* Do not leave a partial record that a later append would follow. */
        (void)!ftruncate(s->fd, (off_t)s->end);
    }
    pthread_mutex_unlock(&s->mu);
    if (rc == 0 && ret_id != NULL)
        memcpy(ret_id, id, sizeof(id));
out:
    free(js);
    cf_buf_free(&rec);
    return rc;
}

int cf_spool_pending(cf_spool *s, size_t max, cf_spool_fn fn, void *arg)
{
    cf_buf img, b;
    uint64_t start, end;
    size_t done = 0;
    int rc;

    pthread_mutex_lock(&s->mu);
    start = s->acked;
    end = s->end;
    pthread_mutex_unlock(&s->mu);

    cf_buf_init(&img, MAX_SPOOL_FILE);
    rc = read_all(s->fd, &img, end);
    if (rc < 0)
        goto out;
    cf_buf_view(&b, img.data, img.len);
    CF_GUARD_OUT(cf_buf_skip(&b, (size_t)start));
    while (done < max && cf_buf_remaining(&b) > 0) {
        uint32_t n;
        const uint8_t *p;
        CF_GUARD_OUT(cf_buf_get_u32be(&b, &n));
        CF_GUARD_OUT(cf_buf_skip(&b, SUM_LEN));
        CF_GUARD_OUT(cf_buf_get_ptr(&b, n, &p));
        rc = fn(arg, (const char *)p, n, b.rpos);
        if (rc < 0)
            goto out;
        done++;
        if (rc == 1)
            break;
    }
    rc = 0;
out:
    cf_buf_free(&img);
    return rc;
}

int cf_spool_ack(cf_spool *s, uint64_t offset)
{
    size_t pending;
    int rc;

    pthread_mutex_lock(&s->mu);
    if (offset <= s->acked) {
        pthread_mutex_unlock(&s->mu);
        return 0;
    }
    if (offset > s->end) {
        pthread_mutex_unlock(&s->mu);
        return cf_err_set(CF_E_RANGE, "audit spool: ack past the end of the log");
    }
    if (offset == s->end) {
        /* Everything is acknowledged: start the log afresh. The ack mark is
         * reset first, so a crash in between re-sends (harmless: the audit
         * service de-duplicates by event_id) and never loses an event. */
        rc = store_ack(s, MAGIC_LEN);
        if (rc == 0 && (ftruncate(s->fd, MAGIC_LEN) != 0 || fdatasync(s->fd) != 0))
            rc = io_err("compact");
        if (rc == 0) {
            s->acked = s->end = MAGIC_LEN;
            s->pending = 0;
        }
        pthread_mutex_unlock(&s->mu);
        return rc;
    }
    /* Validate (record boundary) before anything is persisted. */
    rc = count_from(s, offset, &pending);
    if (rc == 0)
        rc = store_ack(s, offset);
    if (rc == 0) {
        s->acked = offset;
        s->pending = pending;
    }
    pthread_mutex_unlock(&s->mu);
    return rc;
}

size_t cf_spool_pending_count(cf_spool *s)
{
    size_t n;

    pthread_mutex_lock(&s->mu);
    n = s->pending;
    pthread_mutex_unlock(&s->mu);
    return n;
}
