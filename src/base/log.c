#include "base/log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/err.h"

static cf_log_level min_level = CF_LOG_INFO;
static FILE *out_stream;
static char service_name[32] = "coffer";
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static _Thread_local char request_id[64];

static const char *level_names[] = {"debug", "info", "warn", "error", "off"};

void cf_log_set_service(const char *service)
{
    size_t n = strlen(service);

    if (n >= sizeof(service_name))
        n = sizeof(service_name) - 1;
    memcpy(service_name, service, n);
    service_name[n] = 0;
}

void cf_log_set_level(cf_log_level level) { min_level = level; }

int cf_log_level_parse(const char *s, cf_log_level *ret)
{
    for (size_t i = 0; i < CF_ARRAY_LEN(level_names); i++) {
        if (strcmp(s, level_names[i]) == 0) {
            *ret = (cf_log_level)i;
            return 0;
        }
    }
    return cf_err_set(CF_E_INVAL, "unknown log level '%.16s' (debug, info, warn, error, off)", s);
}

void cf_log_set_stream(FILE *f) { out_stream = f; }

void cf_log_set_request_id(const char *rid)
{
    size_t n;

    if (rid == NULL) {
        request_id[0] = 0;
        return;
    }
    n = strnlen(rid, sizeof(request_id) - 1);
    memcpy(request_id, rid, n);
    request_id[n] = 0;
}

/* One log line is built in memory and written with a single fwrite, so lines
 * from several threads never interleave and the lock is held briefly. */
#define LINE_MAX_BYTES 8192

struct line {
    char b[LINE_MAX_BYTES];
    size_t n;
    int truncated;
};

static void put_raw(struct line *l, const char *s, size_t n)
{
    if (l->n + n > sizeof(l->b) - 2) { /* keep room for "}\n" */
        l->truncated = 1;
        return;
    }
    memcpy(l->b + l->n, s, n);
    l->n += n;
}

static void put_s(struct line *l, const char *s) { put_raw(l, s, strlen(s)); }

/* JSON string escaping; control characters become \u00XX so one event is one line. */
static void put_json_str(struct line *l, const char *s)
{
    static const char hex[] = "0123456789abcdef";

    put_raw(l, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)s; *p && !l->truncated; p++) {
        switch (*p) {
        case '"': put_raw(l, "\\\"", 2); break;
        case '\\': put_raw(l, "\\\\", 2); break;
        case '\n': put_raw(l, "\\n", 2); break;
        case '\r': put_raw(l, "\\r", 2); break;
        case '\t': put_raw(l, "\\t", 2); break;
        default:
            if (*p < 0x20 || *p == 0x7f) {
                char u[6] = {'\\', 'u', '0', '0', hex[*p >> 4], hex[*p & 15]};
                put_raw(l, u, sizeof(u));
            } else {
                put_raw(l, (const char *)p, 1);
            }
        }
    }
    put_raw(l, "\"", 1);
}

static void emit(cf_log_level level, const char *event, const char *msg, va_list *kv)
{
    FILE *f = out_stream ? out_stream : stderr;
    struct timespec ts;
    struct tm tm;
    char tbuf[64];
    struct line *l = malloc(sizeof(*l));

    if (l == NULL)
        return;
    l->n = 0;
    l->truncated = 0;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    strftime(tbuf, sizeof(tbuf), "%Y-%m-%dT%H:%M:%S", &tm);
    put_s(l, "{\"ts\":\"");
    put_s(l, tbuf);
    {
        char ms[24];
        (void)snprintf(ms, sizeof(ms), ".%03ldZ", ts.tv_nsec / 1000000);
        put_s(l, ms);
    }
    put_s(l, "\",\"level\":\"");
    put_s(l, level_names[level]);
    put_s(l, "\",\"svc\":");
    put_json_str(l, service_name);
    put_s(l, ",\"event\":");
    put_json_str(l, event);
    if (request_id[0]) {
        put_s(l, ",\"request_id\":");
        put_json_str(l, request_id);
    }
    if (msg != NULL) {
        put_s(l, ",\"msg\":");
        put_json_str(l, msg);
    }
    if (kv != NULL) {
        for (;;) {
            const char *k = va_arg(*kv, const char *);
            const char *v;
            if (k == NULL)
                break;
            v = va_arg(*kv, const char *);
            put_s(l, ",");
            put_json_str(l, k);
            put_s(l, ":");
            put_json_str(l, v ? v : "");
        }
    }
    if (l->truncated) {
        /* Cut at a safe point: drop the partial field and say so. */
        static const char tail[] = ",\"truncated\":true";
        size_t keep = sizeof(l->b) - 2 - (sizeof(tail) - 1) - 1;
        size_t i = l->n < keep ? l->n : keep;
        while (i > 0 && l->b[i] != ',')
            i--;
        l->n = i;
        l->truncated = 0;
        put_raw(l, tail, sizeof(tail) - 1);
    }
    l->b[l->n++] = '}';
    l->b[l->n++] = '\n';
    pthread_mutex_lock(&log_lock);
    (void)fwrite(l->b, 1, l->n, f);
    fflush(f);
    pthread_mutex_unlock(&log_lock);
    free(l);
}

void cf_log(cf_log_level level, const char *event, ...)
{
    va_list ap;

    if (level < min_level || level >= CF_LOG_OFF)
        return;
    va_start(ap, event);
    emit(level, event, NULL, &ap);
    va_end(ap);
}

void cf_logf(cf_log_level level, const char *fmt, ...)
{
    va_list ap;
    char msg[1024];

    if (level < min_level || level >= CF_LOG_OFF)
        return;
    va_start(ap, fmt);
    (void)vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    emit(level, "message", msg, NULL);
}
