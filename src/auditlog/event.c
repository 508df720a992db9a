/*
 * Audit event validation and canonical form. The rules are listed in event.h.
 */
#include "auditlog/event.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/err.h"
#include "base/json.h"
#include "base/limits.h"

static const char *const event_fields[] = {"event_id", "ts",       "service",    "actor",
                                           "tenant",   "action",   "resource",   "outcome",
                                           "request_id", "details", "tee_id",    NULL};

/* Key names that only a secret would carry (event.h): exact, any case. */
static const char *const secret_keys[] = {"password",  "secret",  "private_key",
                                          "token",     "otk",     "plaintext",
                                          "api_key",   "key_material", NULL};

const char *cf_audit_outcome_name(cf_audit_outcome o)
{
    switch (o) {
    case CF_AUDIT_OUTCOME_SUCCESS: return "success";
    case CF_AUDIT_OUTCOME_FAILURE: return "failure";
    case CF_AUDIT_OUTCOME_DENIED: return "denied";
    }
    return "?";
}

/* ---- time --------------------------------------------------------------------------- */

static int get_digits(cf_buf *b, unsigned n, unsigned *ret)
{
    unsigned v = 0;

    for (unsigned i = 0; i < n; i++) {
        uint8_t c;
        CF_GUARD(cf_buf_get_u8(b, &c));
        if (c < '0' || c > '9')
            return CF_E_PARSE;
        v = v * 10 + (unsigned)(c - '0');
    }
    *ret = v;
    return 0;
}

static int expect_char(cf_buf *b, char want)
{
    uint8_t c;

    CF_GUARD(cf_buf_get_u8(b, &c));
    return c == (uint8_t)want ? 0 : CF_E_PARSE;
}

static bool is_leap(unsigned y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

/* Days from 1970-01-01 to y-m-d (proleptic Gregorian calendar). */
static int64_t days_since_epoch(unsigned y, unsigned m, unsigned d)
{
    static const unsigned before_month[12] = {0,   31,  59,  90,  120, 151,
                                              181, 212, 243, 273, 304, 334};
    int64_t py = (int64_t)y - 1, leaps = py / 4 - py / 100 + py / 400;
    int64_t leaps1970 = 1969 / 4 - 1969 / 100 + 1969 / 400;
    int64_t days = 365 * ((int64_t)y - 1970) + (leaps - leaps1970) + before_month[m - 1] + d - 1;

    if (m > 2 && is_leap(y))
        days++;
    return days;
}

static int parse_time(const char *s, int64_t *ret_ms)
{
    static const unsigned month_days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    unsigned y, mo, d, h, mi, sec, ms = 0;
    size_t len = strnlen(s, 64);
    cf_buf b;
    uint8_t c;

    /* RFC 3339 §5.6 date-time, restricted to UTC ("Z") and to the 'T' separator. */
    if (len >= 64)
        return CF_E_PARSE;
    cf_buf_view(&b, (const uint8_t *)s, len);
    CF_GUARD(get_digits(&b, 4, &y));
    CF_GUARD(expect_char(&b, '-'));
    CF_GUARD(get_digits(&b, 2, &mo));
    CF_GUARD(expect_char(&b, '-'));
    CF_GUARD(get_digits(&b, 2, &d));
    CF_GUARD(expect_char(&b, 'T'));
    CF_GUARD(get_digits(&b, 2, &h));
    CF_GUARD(expect_char(&b, ':'));
    CF_GUARD(get_digits(&b, 2, &mi));
    CF_GUARD(expect_char(&b, ':'));
    CF_GUARD(get_digits(&b, 2, &sec));
    CF_GUARD(cf_buf_get_u8(&b, &c));
    if (c == '.') {
        /* time-secfrac: 1 to 9 digits; milliseconds are kept, the rest truncated */
        unsigned ndig = 0, scale = 100;
        for (;;) {
            CF_GUARD(cf_buf_get_u8(&b, &c));
            if (c < '0' || c > '9')
                break;
            if (++ndig > 9)
                return CF_E_PARSE;
            ms += (unsigned)(c - '0') * scale;
            scale /= 10;
        }
        if (ndig == 0)
            return CF_E_PARSE;
    }
    if (c != 'Z')
        return CF_E_PARSE;
    CF_GUARD(cf_buf_expect_end(&b));
    if (y < 1970 || mo < 1 || mo > 12 || d < 1 || h > 23 || mi > 59 || sec > 59)
        return CF_E_PARSE;
    if (d > month_days[mo - 1] + (mo == 2 && is_leap(y) ? 1u : 0u))
        return CF_E_PARSE;
    *ret_ms = ((days_since_epoch(y, mo, d) * 24 + h) * 60 + mi) * 60000 + (int64_t)sec * 1000 + ms;
    return 0;
}

int cf_audit_parse_time(const char *s, int64_t *ret_ms)
{
    CF_ENSURE(s != NULL, CF_E_INVAL);
    if (parse_time(s, ret_ms) != 0)
        return cf_err_set(CF_E_PARSE, "time must be RFC 3339 UTC like 2024-05-01T12:00:00.000Z");
    return 0;
}

/* ---- fields ------------------------------------------------------------------------- */

typedef enum {
    TEXT_ANY = 0, /* any UTF-8 without control characters */
    TEXT_NAME,    /* [a-z0-9._-] */
    TEXT_ACTION,  /* [a-z0-9._-], first a letter */
} text_kind;

static int get_text(const json_t *obj, const char *key, bool required, size_t min, size_t max,
                    text_kind kind, const char **ret)
{
    json_t *v = json_object_get(obj, key);
    const char *s;
    size_t n;

    if (v == NULL) {
        if (required)
            return cf_err_set(CF_E_PARSE, "missing required field '%s'", key);
        *ret = NULL;
        return 0;
    }
    if (!json_is_string(v))
        return cf_err_set(CF_E_PARSE, "field '%s' must be a string", key);
    s = json_string_value(v);
    n = json_string_length(v);
    if (strlen(s) != n)
        return cf_err_set(CF_E_PARSE, "field '%s' contains a NUL character", key);
    if (n > max)
        return cf_err_set(CF_E_TOO_LARGE, "field '%s' is longer than %zu bytes", key, max);
    if (n < min)
        return cf_err_set(CF_E_PARSE, "field '%s' must not be empty", key);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        bool ok;
        if (kind == TEXT_ANY) {
            ok = c >= 0x20 && c != 0x7f;
        } else {
            ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
                 c == '-';
            if (kind == TEXT_ACTION && i == 0)
                ok = c >= 'a' && c <= 'z';
        }
        if (!ok)
            return cf_err_set(CF_E_PARSE, "field '%s' has a character that is not allowed at "
                                          "byte %zu",
                              key, i);
    }
    *ret = s;
    return 0;
}

/* Walks details: depth, number types and secret-looking keys. */
static int check_details(const json_t *v, unsigned depth)
{
    if (depth > CF_AUDIT_MAX_DETAILS_DEPTH)
        return cf_err_set(CF_E_PARSE, "field 'details' is nested deeper than %d levels",
                          CF_AUDIT_MAX_DETAILS_DEPTH);
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        const char *key;
        json_t *val;
        json_object_foreach((json_t *)(uintptr_t)v, key, val) {
            for (size_t i = 0; secret_keys[i] != NULL; i++)
                if (strcasecmp(key, secret_keys[i]) == 0)
                    return cf_err_set(CF_E_PARSE, "details key '%s' names a secret: audit events "
                                                  "must never carry secrets",
                                      secret_keys[i]);
            CF_GUARD(check_details(val, depth + 1));
        }
        return 0;
    }
    case JSON_ARRAY:
        for (size_t i = 0; i < json_array_size(v); i++)
            CF_GUARD(check_details(json_array_get(v, i), depth + 1));
        return 0;
    case JSON_REAL:
        return cf_err_set(CF_E_PARSE, "field 'details' must not contain floating-point numbers");
    case JSON_STRING:
        if (strlen(json_string_value(v)) != json_string_length(v))
            return cf_err_set(CF_E_PARSE, "field 'details' contains a NUL character");
        return 0;
    default:
        return 0;
    }
}

static int check_event_id(const char *s)
{
    for (size_t i = 0; i < CF_AUDIT_EVENT_ID_LEN; i++) {
        char c = s[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return cf_err_set(CF_E_PARSE, "field 'event_id' must be %d lower-case hex digits",
                              CF_AUDIT_EVENT_ID_LEN);
    }
    return s[CF_AUDIT_EVENT_ID_LEN] == '\0'
               ? 0
               : cf_err_set(CF_E_PARSE, "field 'event_id' must be %d lower-case hex digits",
                            CF_AUDIT_EVENT_ID_LEN);
}

void cf_audit_event_free(cf_audit_event *ev)
{
    if (ev == NULL)
        return;
    free(ev->entry);
    json_decref(ev->json);
    free(ev);
}

int cf_audit_event_from_json(json_t *obj, cf_audit_event **ret)
{
    cf_audit_event *ev = NULL;
    const char *id = NULL, *ts = NULL, *outcome = NULL;
    json_t *details;
    char *canon = NULL, *dcanon = NULL;
    size_t n;
    int rc;

    CF_ENSURE(obj != NULL, CF_E_INVAL);
    if (!json_is_object(obj))
        return cf_err_set(CF_E_PARSE, "an audit event must be a JSON object");
    CF_GUARD(cf_json_only_keys(obj, event_fields));
    ev = calloc(1, sizeof(*ev));
    CF_ENSURE(ev != NULL, CF_E_NOMEM);
    ev->json = json_incref(obj);

    CF_GUARD_OUT(get_text(obj, "event_id", true, CF_AUDIT_EVENT_ID_LEN, CF_AUDIT_EVENT_ID_LEN,
                          TEXT_ANY, &id));
    CF_GUARD_OUT(check_event_id(id));
    memcpy(ev->event_id, id, CF_AUDIT_EVENT_ID_LEN + 1);
    CF_GUARD_OUT(get_text(obj, "ts", true, 1, 63, TEXT_ANY, &ts));
    if (parse_time(ts, &ev->ts_ms) != 0) {
        rc = cf_err_set(CF_E_PARSE, "field 'ts' must be an RFC 3339 UTC time like "
                                    "2024-05-01T12:00:00.000Z");
        goto out;
    }
    CF_GUARD_OUT(get_text(obj, "service", true, 1, CF_AUDIT_MAX_SERVICE_LEN, TEXT_NAME,
                          &ev->service));
    CF_GUARD_OUT(get_text(obj, "actor", true, 1, CF_AUDIT_MAX_ACTOR_LEN, TEXT_ANY, &ev->actor));
    CF_GUARD_OUT(get_text(obj, "tenant", false, 0, CF_ID_MAX_LEN, TEXT_ANY, &ev->tenant));
    CF_GUARD_OUT(get_text(obj, "action", true, 1, CF_AUDIT_MAX_ACTION_LEN, TEXT_ACTION,
                          &ev->action));
    CF_GUARD_OUT(get_text(obj, "resource", false, 0, CF_AUDIT_MAX_RESOURCE_LEN, TEXT_ANY,
                          &ev->resource));
    CF_GUARD_OUT(get_text(obj, "request_id", false, 0, CF_ID_MAX_LEN, TEXT_ANY, &ev->request_id));
    /* absent = empty (event.h); the canonical form keeps them absent */
    if (ev->tenant == NULL)
        ev->tenant = "";
    if (ev->resource == NULL)
        ev->resource = "";
    if (ev->request_id == NULL)
        ev->request_id = "";
    CF_GUARD_OUT(get_text(obj, "tee_id", false, 1, CF_ID_MAX_LEN, TEXT_ANY, &ev->tee_id));
    CF_GUARD_OUT(get_text(obj, "outcome", true, 1, 16, TEXT_NAME, &outcome));
    if (strcmp(outcome, "success") == 0) {
        ev->outcome = CF_AUDIT_OUTCOME_SUCCESS;
    } else if (strcmp(outcome, "failure") == 0) {
        ev->outcome = CF_AUDIT_OUTCOME_FAILURE;
    } else if (strcmp(outcome, "denied") == 0) {
        ev->outcome = CF_AUDIT_OUTCOME_DENIED;
    } else {
        rc = cf_err_set(CF_E_PARSE, "field 'outcome' must be one of success, failure, denied");
        goto out;
    }
    details = json_object_get(obj, "details");
    if (details != NULL) {
        if (!json_is_object(details)) {
            rc = cf_err_set(CF_E_PARSE, "field 'details' must be an object");
            goto out;
        }
        CF_GUARD_OUT(check_details(details, 1));
        dcanon = cf_json_dump(details);
        CF_ENSURE_OUT(dcanon != NULL, CF_E_NOMEM);
        if (strlen(dcanon) > CF_AUDIT_MAX_DETAILS_BYTES) {
            rc = cf_err_set(CF_E_TOO_LARGE, "field 'details' is larger than %u bytes",
                            CF_AUDIT_MAX_DETAILS_BYTES);
            goto out;
        }
    }
    canon = cf_json_dump(obj);
    CF_ENSURE_OUT(canon != NULL, CF_E_NOMEM);
    n = strlen(canon);
    if (n > CF_AUDIT_MAX_EVENT_BYTES) {
        rc = cf_err_set(CF_E_TOO_LARGE, "audit event of %zu bytes exceeds the limit of %u", n,
                        CF_AUDIT_MAX_EVENT_BYTES);
        goto out;
    }
    CF_GUARD_OUT(cf_merkle_leaf_hash(canon, n, ev->leaf));
    ev->entry = (uint8_t *)canon;
    ev->entry_len = n;
    canon = NULL;
    *ret = ev;
    ev = NULL;
    rc = 0;
out:
    free(canon);
    free(dcanon);
    cf_audit_event_free(ev);
    return rc;
}

int cf_audit_event_parse(const void *data, size_t len, cf_audit_event **ret)
{
    json_t *obj = NULL;
    int rc;

    if (len > CF_AUDIT_MAX_EVENT_BYTES)
        return cf_err_set(CF_E_TOO_LARGE, "audit event of %zu bytes exceeds the limit of %u", len,
                          CF_AUDIT_MAX_EVENT_BYTES);
    CF_GUARD(cf_json_parse_object(data, len, CF_AUDIT_MAX_EVENT_BYTES, &obj));
    rc = cf_audit_event_from_json(obj, ret);
    json_decref(obj);
    return rc;
}

/* ---- batches ------------------------------------------------------------------------ */

void cf_audit_events_free(cf_audit_event **events, size_t n)
{
    if (events == NULL)
        return;
    for (size_t i = 0; i < n; i++)
        cf_audit_event_free(events[i]);
    free(events);
}

int cf_audit_batch_parse(const void *body, size_t len, cf_audit_event ***ret, size_t *ret_n)
{
    static const char *const batch_fields[] = {"events", NULL};
    json_t *obj = NULL, *arr = NULL;
    cf_audit_event **evs = NULL;
    size_t n = 0, count;
    int rc;

    CF_GUARD(cf_json_parse_object(body, len, CF_AUDIT_MAX_BATCH_BYTES, &obj));
    CF_GUARD_OUT(cf_json_only_keys(obj, batch_fields));
    CF_GUARD_OUT(cf_json_get_array(obj, "events", true, CF_AUDIT_MAX_BATCH, &arr));
    count = json_array_size(arr);
    evs = calloc(count > 0 ? count : 1, sizeof(*evs));
    CF_ENSURE_OUT(evs != NULL, CF_E_NOMEM);
    for (n = 0; n < count; n++) {
        rc = cf_audit_event_from_json(json_array_get(arr, n), &evs[n]);
        if (rc < 0) {
            rc = cf_err_set(rc, "event %zu: %s", n, cf_err_detail(rc));
            goto out;
        }
    }
    *ret = evs;
    *ret_n = n;
    evs = NULL;
    rc = 0;
out:
    cf_audit_events_free(evs, n);
    json_decref(obj);
    return rc;
}

int cf_audit_batch_encode(cf_audit_event *const *events, size_t n, cf_buf *out)
{
    size_t before = out->len;
    int rc;

    CF_ENSURE(n <= CF_AUDIT_MAX_BATCH, CF_E_TOO_LARGE);
    CF_GUARD_OUT(cf_buf_put_str(out, "{\"events\":["));
    for (size_t i = 0; i < n; i++) {
        if (i > 0)
            CF_GUARD_OUT(cf_buf_put_u8(out, ','));
        /* the canonical entry is itself compact JSON: embed it as is */
        CF_GUARD_OUT(cf_buf_put(out, events[i]->entry, events[i]->entry_len));
    }
    CF_GUARD_OUT(cf_buf_put_str(out, "]}"));
    if (out->len - before > CF_AUDIT_MAX_BATCH_BYTES) {
        rc = cf_err_set(CF_E_TOO_LARGE, "audit batch exceeds %u bytes", CF_AUDIT_MAX_BATCH_BYTES);
        goto out;
    }
    rc = 0;
out:
    if (rc < 0)
        out->len = before;
    return rc;
}
