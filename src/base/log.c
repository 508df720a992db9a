#include "base/log.h"

#include <pthread.h>
#include <stdarg.h>
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

/* JSON string escaping; control characters become \u00XX so one event is one line. */
static void put_json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        switch (*p) {
        case '"':
            fputs("\\\"", f);
            break;
        case '\\':
            fputs("\\\\", f);
            break;
        case '\n':
            fputs("\\n", f);
            break;
        case '\r':
            fputs("\\r", f);
            break;
        case '\t':
            fputs("\\t", f);
            break;
        default:
            if (*p < 0x20 || *p == 0x7f)
                fprintf(f, "\\u%04x", *p);
            else
                fputc(*p, f);
        }
    }
    fputc('"', f);
}

static void emit(cf_log_level level, const char *event, const char *msg, va_list *kv)
{
    FILE *f = out_stream ? out_stream : stderr;
    struct timespec ts;
    struct tm tm;
    char tbuf[40];

    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    strftime(tbuf, sizeof(tbuf), "%Y-%m-%dT%H:%M:%S", &tm);

    pthread_mutex_lock(&log_lock);
    fprintf(f, "{\"ts\":\"%s.%03ldZ\",\"level\":\"%s\",\"svc\":", tbuf, ts.tv_nsec / 1000000,
            level_names[level]);
    put_json_str(f, service_name);
    fputs(",\"event\":", f);
    put_json_str(f, event);
    if (request_id[0]) {
        fputs(",\"request_id\":", f);
        put_json_str(f, request_id);
    }
    if (msg != NULL) {
        fputs(",\"msg\":", f);
        put_json_str(f, msg);
    }
    if (kv != NULL) {
        for (;;) {
            const char *k = va_arg(*kv, const char *);
            const char *v;
            if (k == NULL)
                break;
            v = va_arg(*kv, const char *);
            fputc(',', f);
            put_json_str(f, k);
            fputc(':', f);
            put_json_str(f, v ? v : "");
        }
    }
    fputs("}\n", f);
    fflush(f);
    pthread_mutex_unlock(&log_lock);
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
