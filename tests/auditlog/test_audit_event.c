/*
 * Audit events: validation rules, canonical form, time parsing, batches.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auditlog/event.h"
#include "base/err.h"
#include "base/json.h"
#include "base/limits.h"
#include "crypto/hash.h"
#include "test.h"

#define ID1 "0123456789abcdef0123456789abcdef"

/* A valid event with one field replaced (value = raw JSON text) or removed
 * (value = NULL), as JSON text in out. */
static void make_event(char *out, size_t size, const char *field, const char *value)
{
    static const char *const names[] = {"event_id", "ts",       "service",    "actor",
                                        "tenant",   "action",   "resource",   "outcome",
                                        "request_id", "details", NULL};
    static const char *const values[] = {
        "\"" ID1 "\"", "\"2024-05-01T12:00:00.123Z\"", "\"kms\"", "\"spiffe://coffer/gateway\"",
        "\"acme\"",    "\"kms.otk.release\"",         "\"otk/42\"", "\"success\"", "\"req-1\"",
        "{\"tee\":\"t1\",\"n\":3}"};
    size_t o = 0;
    bool replaced = false;

    o += (size_t)snprintf(out + o, size - o, "{");
    for (size_t i = 0; names[i] != NULL; i++) {
        const char *v = values[i];
        if (field != NULL && strcmp(field, names[i]) == 0) {
            replaced = true;
            if (value == NULL)
                continue;
            v = value;
        }
        o += (size_t)snprintf(out + o, size - o, "%s\"%s\": %s", o > 1 ? ", " : "", names[i], v);
    }
    if (field != NULL && !replaced && value != NULL)
        o += (size_t)snprintf(out + o, size - o, ", \"%s\": %s", field, value);
    (void)snprintf(out + o, size - o, "}");
}

static int parse_with(const char *field, const char *value, cf_audit_event **ret)
{
    char buf[32768];
    make_event(buf, sizeof(buf), field, value);
    return cf_audit_event_parse(buf, strlen(buf), ret);
}

/* Expects the event with that change to be refused with code and a detail
 * containing `detail`. */
#define T_REFUSED(field, value, code, detail)                                            \
    do {                                                                                 \
        cf_audit_event *ev_ = NULL;                                                      \
        const char *v_ = (value);                                                        \
        int rc_ = parse_with(field, v_, &ev_);                                           \
        T_ASSERT_MSG(rc_ == (code), "%s=%.60s: got %d (%s)", field,                      \
                     v_ != NULL ? v_ : "(absent)", rc_, cf_err_detail(rc_));             \
        T_ASSERT_MSG(strstr(cf_err_detail(rc_), detail) != NULL, "%s: detail '%s'", field,  \
                     cf_err_detail(rc_));                                                \
        T_ASSERT(ev_ == NULL);                                                           \
    } while (0)

static void test_valid_event(void)
{
    cf_audit_event *ev = NULL, *again = NULL;
    uint8_t want[32];
    uint8_t pre[1 + 1024];
    const char *canon = "{\"action\":\"kms.otk.release\",\"actor\":\"spiffe://coffer/gateway\","
                        "\"details\":{\"n\":3,\"tee\":\"t1\"},\"event_id\":\"" ID1 "\","
                        "\"outcome\":\"success\",\"request_id\":\"req-1\",\"resource\":\"otk/42\","
                        "\"service\":\"kms\",\"tenant\":\"acme\",\"ts\":\"2024-05-01T12:00:00.123Z\"}";

    T_OK(parse_with(NULL, NULL, &ev));
    T_STREQ(ev->event_id, ID1);
    T_EQ(ev->ts_ms, 1714564800123LL);
    T_STREQ(ev->service, "kms");
    T_STREQ(ev->actor, "spiffe://coffer/gateway");
    T_STREQ(ev->tenant, "acme");
    T_STREQ(ev->action, "kms.otk.release");
    T_STREQ(ev->resource, "otk/42");
    T_STREQ(ev->request_id, "req-1");
    T_ASSERT(ev->tee_id == NULL);
    T_EQ(ev->outcome, CF_AUDIT_OUTCOME_SUCCESS);
    T_STREQ(cf_audit_outcome_name(ev->outcome), "success");
    /* canonical: sorted keys, compact */
    T_EQ(ev->entry_len, strlen(canon));
    T_MEMEQ(ev->entry, canon, ev->entry_len);
    /* leaf = SHA-256(0x00 || entry) */
    pre[0] = 0;
    memcpy(pre + 1, ev->entry, ev->entry_len);
    T_OK(cf_sha256(pre, 1 + ev->entry_len, want));
    T_MEMEQ(ev->leaf, want, 32);
    /* the canonical form is a fixed point */
    T_OK(cf_audit_event_parse(ev->entry, ev->entry_len, &again));
    T_EQ(again->entry_len, ev->entry_len);
    T_MEMEQ(again->entry, ev->entry, ev->entry_len);
    cf_audit_event_free(again);
    cf_audit_event_free(ev);

    /* optional tee_id, empty tenant / resource / request_id, other outcomes */
    T_OK(parse_with("tee_id", "\"tee-7\"", &ev));
    T_STREQ(ev->tee_id, "tee-7");
    cf_audit_event_free(ev);
    T_OK(parse_with("tenant", "\"\"", &ev));
    T_STREQ(ev->tenant, "");
    cf_audit_event_free(ev);
    T_OK(parse_with("resource", "\"\"", &ev));
    cf_audit_event_free(ev);
    T_OK(parse_with("request_id", "\"\"", &ev));
    cf_audit_event_free(ev);
    T_OK(parse_with("outcome", "\"denied\"", &ev));
    T_EQ(ev->outcome, CF_AUDIT_OUTCOME_DENIED);
    cf_audit_event_free(ev);
    T_OK(parse_with("outcome", "\"failure\"", &ev));
    T_EQ(ev->outcome, CF_AUDIT_OUTCOME_FAILURE);
    cf_audit_event_free(ev);
    /* optional fields may be absent (what cf_svc_audit leaves out) */
    {
        static const char *const optional[] = {"tenant", "resource", "request_id", "details", NULL};
        for (size_t i = 0; optional[i] != NULL; i++) {
            char needle[32];
            T_OK(parse_with(optional[i], NULL, &ev));
            (void)snprintf(needle, sizeof(needle), "\"%s\":", optional[i]);
            T_ASSERT(memmem(ev->entry, ev->entry_len, needle, strlen(needle)) == NULL);
            cf_audit_event_free(ev);
        }
        T_OK(parse_with("tenant", NULL, &ev));
        T_STREQ(ev->tenant, "");
        cf_audit_event_free(ev);
    }
    {
        /* the least a service sends (cf_svc_audit without request, tenant, details) */
        const char *min = "{\"event_id\":\"" ID1 "\",\"ts\":\"2024-05-01T12:00:00Z\","
                          "\"service\":\"attest\",\"actor\":\"anonymous\","
                          "\"action\":\"tee.attestation_failed\",\"outcome\":\"failure\"}";
        T_OK(cf_audit_event_parse(min, strlen(min), &ev));
        T_EQ(ev->entry_len, strlen(min));
        T_STREQ(ev->tenant, "");
        cf_audit_event_free(ev);
    }
    T_OK(parse_with("details", "{}", &ev));
    cf_audit_event_free(ev);
    T_OK(parse_with("details", "{\"a\":[1,true,null,\"x\",{\"b\":-5}],\"u\":\"\\u00e9\"}",
                    &ev));
    cf_audit_event_free(ev);
    T_OK(parse_with("actor", "\"usr:\\u00e9l\\u00e8ve@acme\"", &ev));
    cf_audit_event_free(ev);
}

/* Different spellings of one event have one canonical form. */
static void test_canonical(void)
{
    const char *a = "{\"tenant\":\"acme\",\"event_id\":\"" ID1 "\",\"ts\":\"2024-05-01T12:00:00Z\","
                    "\"service\":\"kms\",\"actor\":\"u1\",\"action\":\"a.b\",\"resource\":\"r\","
                    "\"outcome\":\"success\",\"request_id\":\"\",\"details\":{\"z\":1,\"a\":\"\\/\"}}";
    const char *b = "  {\n \"details\" : { \"a\" : \"/\", \"z\" : 1 },\n \"outcome\":\"success\", "
                    "\"action\":\"a.b\",\"actor\":\"u1\",\"event_id\":\"" ID1 "\",\"request_id\":\"\","
                    "\"resource\":\"r\",\"service\":\"kms\",\"tenant\":\"acme\","
                    "\"ts\":\"2024-05-01T12:00:00Z\"}\n";
    cf_audit_event *ea = NULL, *eb = NULL;

    T_OK(cf_audit_event_parse(a, strlen(a), &ea));
    T_OK(cf_audit_event_parse(b, strlen(b), &eb));
    T_EQ(ea->entry_len, eb->entry_len);
    T_MEMEQ(ea->entry, eb->entry, ea->entry_len);
    T_MEMEQ(ea->leaf, eb->leaf, 32);
    T_ASSERT(memchr(ea->entry, ' ', ea->entry_len) == NULL);
    cf_audit_event_free(ea);
    cf_audit_event_free(eb);
}

static void test_refused_fields(void)
{
    static const char *const required[] = {"event_id", "ts",     "service",
                                           "actor",    "action", "outcome", NULL};
    for (size_t i = 0; required[i] != NULL; i++)
        T_REFUSED(required[i], NULL, CF_E_PARSE, "missing required field");
    T_REFUSED("extra", "1", CF_E_PARSE, "unknown field 'extra'");
    T_REFUSED("event_id", "\"0123456789ABCDEF0123456789abcdef\"", CF_E_PARSE, "lower-case hex");
    T_REFUSED("event_id", "\"0123456789abcdef0123456789abcde\"", CF_E_PARSE, "event_id");
    T_REFUSED("event_id", "\"0123456789abcdef0123456789abcdef0\"", CF_E_TOO_LARGE, "event_id");
    T_REFUSED("event_id", "\"0123456789abcdef0123456789abcdeg\"", CF_E_PARSE, "lower-case hex");
    T_REFUSED("event_id", "12", CF_E_PARSE, "must be a string");
    T_REFUSED("service", "\"KMS\"", CF_E_PARSE, "not allowed");
    T_REFUSED("service", "\"\"", CF_E_PARSE, "must not be empty");
    T_REFUSED("service", "\"k m s\"", CF_E_PARSE, "not allowed");
    T_REFUSED("action", "\"1kms\"", CF_E_PARSE, "not allowed at byte 0");
    T_REFUSED("action", "\"kms/otk\"", CF_E_PARSE, "not allowed");
    T_REFUSED("actor", "\"\"", CF_E_PARSE, "must not be empty");
    T_REFUSED("actor", "\"a\\nb\"", CF_E_PARSE, "not allowed at byte 1");
    T_REFUSED("actor", "\"a\\u007fb\"", CF_E_PARSE, "not allowed");
    T_REFUSED("actor", "\"a\\u0000b\"", CF_E_PARSE, "");
    T_REFUSED("tenant", "null", CF_E_PARSE, "must be a string");
    T_REFUSED("tenant", "[\"acme\"]", CF_E_PARSE, "must be a string");
    T_REFUSED("tee_id", "null", CF_E_PARSE, "must be a string");
    T_REFUSED("tee_id", "\"\"", CF_E_PARSE, "must not be empty");
    T_REFUSED("outcome", "\"ok\"", CF_E_PARSE, "success, failure, denied");
    T_REFUSED("outcome", "\"SUCCESS\"", CF_E_PARSE, "");
    T_REFUSED("details", "[]", CF_E_PARSE, "must be an object");
    T_REFUSED("details", "null", CF_E_PARSE, "must be an object");
    T_REFUSED("resource", "null", CF_E_PARSE, "must be a string");
    T_REFUSED("request_id", "null", CF_E_PARSE, "must be a string");
    T_REFUSED("details", "\"x\"", CF_E_PARSE, "must be an object");
    T_REFUSED("details", "{\"ms\":1.5}", CF_E_PARSE, "floating-point");
    T_REFUSED("details", "{\"a\":[{\"b\":1e3}]}", CF_E_PARSE, "floating-point");
    T_REFUSED("details", "{\"Password\":\"x\"}", CF_E_PARSE, "'password'");
    T_REFUSED("details", "{\"a\":{\"b\":[{\"otk\":\"x\"}]}}", CF_E_PARSE, "'otk'");
    T_REFUSED("details", "{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":1}}}}}}}}",
              CF_E_PARSE, "deeper than 8");
    T_REFUSED("request_id", "\"x\", \"request_id\": \"y\"", CF_E_PARSE, "");
    {
        /* limits: a maximal resource passes, one byte more does not */
        char v[CF_AUDIT_MAX_RESOURCE_LEN + 4];
        cf_audit_event *ev = NULL;
        v[0] = '"';
        memset(v + 1, 'r', CF_AUDIT_MAX_RESOURCE_LEN);
        v[CF_AUDIT_MAX_RESOURCE_LEN + 1] = '"';
        v[CF_AUDIT_MAX_RESOURCE_LEN + 2] = '\0';
        T_OK(parse_with("resource", v, &ev));
        cf_audit_event_free(ev);
        memmove(v + 1, v, CF_AUDIT_MAX_RESOURCE_LEN + 3);
        v[1] = 'r';
        T_REFUSED("resource", v, CF_E_TOO_LARGE, "longer than 512");
    }
}

static void test_sizes(void)
{
    static char v[40000];
    cf_audit_event *ev = NULL;
    size_t o = 0;

    /* details just under and over CF_AUDIT_MAX_DETAILS_BYTES (canonical {"s":"..."}) */
    o = (size_t)snprintf(v, sizeof(v), "{\"s\":\"");
    memset(v + o, 'd', CF_AUDIT_MAX_DETAILS_BYTES - 8);
    o += CF_AUDIT_MAX_DETAILS_BYTES - 8;
    (void)snprintf(v + o, sizeof(v) - o, "\"}");
    T_OK(parse_with("details", v, &ev));
    cf_audit_event_free(ev);
    ev = NULL;
    v[o] = 'd';
    (void)snprintf(v + o + 1, sizeof(v) - o - 1, "\"}");
    T_REFUSED("details", v, CF_E_TOO_LARGE, "'details' is larger than");
    /* the whole event over CF_AUDIT_MAX_EVENT_BYTES (as text) */
    memset(v, ' ', CF_AUDIT_MAX_EVENT_BYTES + 1);
    v[CF_AUDIT_MAX_EVENT_BYTES + 1] = '\0';
    T_ERR(cf_audit_event_parse(v, CF_AUDIT_MAX_EVENT_BYTES + 1, &ev), CF_E_TOO_LARGE);
    T_ERR(cf_audit_event_parse("", 0, &ev), CF_E_PARSE);
    T_ERR(cf_audit_event_parse("[]", 2, &ev), CF_E_PARSE);
    T_ERR(cf_audit_event_parse("{", 1, &ev), CF_E_PARSE);
    {
        char buf[2048];
        make_event(buf, sizeof(buf), NULL, NULL);
        size_t l = strlen(buf);
        memcpy(buf + l, " x", 3); /* trailing garbage */
        T_ERR(cf_audit_event_parse(buf, strlen(buf), &ev), CF_E_PARSE);
    }
    T_ASSERT(ev == NULL);
}

static void test_time(void)
{
    static const struct {
        const char *s;
        long long ms;
    } good[] = {
        {"1970-01-01T00:00:00Z", 0},
        {"2000-03-01T00:00:00Z", 951868800000LL},
        {"2100-03-01T00:00:00Z", 4107542400000LL}, /* 2100 is not a leap year */
        {"2024-02-29T23:59:59Z", 1709251199000LL},
        {"2023-12-31T23:59:59.9Z", 1704067199900LL},
        {"2024-05-01T12:00:00.123456789Z", 1714564800123LL},
        {"9999-12-31T23:59:59.999Z", 253402300799999LL},
    };
    static const char *const bad[] = {
        "2024-05-01T12:00:00",        "2024-05-01T12:00:00+00:00", "2024-05-01t12:00:00Z",
        "2024-05-01 12:00:00Z",       "2024-13-01T12:00:00Z",      "2024-00-01T12:00:00Z",
        "2023-02-29T12:00:00Z",       "2024-02-30T12:00:00Z",      "2024-04-31T00:00:00Z",
        "1969-12-31T23:59:59Z",       "2024-05-01T24:00:00Z",      "2024-05-01T12:60:00Z",
        "2024-05-01T12:00:60Z",       "2024-05-01T12:00:00.Z",     "2024-05-01T12:00:00.1234567890Z",
        "2024-5-01T12:00:00Z",        "+024-05-01T12:00:00Z",      "2024-05-01T12:00:00ZZ",
        "",                           "2024-05-01T12:00:00.12a3Z", "2024-05-01T12:00:00z"};
    int64_t ms;

    for (size_t i = 0; i < CF_ARRAY_LEN(good); i++) {
        T_OK(cf_audit_parse_time(good[i].s, &ms));
        T_ASSERT_MSG(ms == good[i].ms, "%s -> %lld", good[i].s, (long long)ms);
    }
    for (size_t i = 0; i < CF_ARRAY_LEN(bad); i++) {
        ms = 77;
        T_ASSERT_MSG(cf_audit_parse_time(bad[i], &ms) == CF_E_PARSE, "accepted %s", bad[i]);
        T_EQ(ms, 77);
    }
    T_REFUSED("ts", "\"2024-05-01T12:00:00+01:00\"", CF_E_PARSE, "RFC 3339 UTC");
    T_REFUSED("ts", "1714564800", CF_E_PARSE, "must be a string");
}

static void test_batches(void)
{
    char e1[2048], e2[2048], body[8192];
    cf_audit_event **evs = NULL, **again = NULL;
    size_t n = 0, n2 = 0;
    cf_buf enc;
    int rc;

    make_event(e1, sizeof(e1), NULL, NULL);
    make_event(e2, sizeof(e2), "event_id", "\"ffffffffffffffffffffffffffffffff\"");
    (void)snprintf(body, sizeof(body), "{\"events\":[%s, %s]}", e1, e2);
    T_OK(cf_audit_batch_parse(body, strlen(body), &evs, &n));
    T_EQ(n, 2);
    T_STREQ(evs[1]->event_id, "ffffffffffffffffffffffffffffffff");
    /* encode -> parse gives the same entries */
    cf_buf_init(&enc, CF_AUDIT_MAX_BATCH_BYTES);
    T_OK(cf_audit_batch_encode(evs, n, &enc));
    T_OK(cf_audit_batch_parse(enc.data, enc.len, &again, &n2));
    T_EQ(n2, 2);
    for (size_t i = 0; i < n; i++) {
        T_EQ(again[i]->entry_len, evs[i]->entry_len);
        T_MEMEQ(again[i]->entry, evs[i]->entry, evs[i]->entry_len);
    }
    cf_audit_events_free(again, n2);
    cf_buf_free(&enc);
    cf_audit_events_free(evs, n);
    evs = NULL;

    /* empty batch */
    T_OK(cf_audit_batch_parse("{\"events\":[]}", 13, &evs, &n));
    T_EQ(n, 0);
    cf_audit_events_free(evs, n);
    evs = NULL;

    /* one bad event rejects the batch, naming it */
    make_event(e2, sizeof(e2), "outcome", "\"maybe\"");
    (void)snprintf(body, sizeof(body), "{\"events\":[%s, %s]}", e1, e2);
    rc = cf_audit_batch_parse(body, strlen(body), &evs, &n);
    T_ERR(rc, CF_E_PARSE);
    T_ASSERT_MSG(strstr(cf_err_detail(rc), "event 1: field 'outcome'") != NULL, "%s",
                 cf_err_detail(rc));
    T_ASSERT(evs == NULL);
    T_ERR(cf_audit_batch_parse("{\"events\":[], \"x\":1}", 20, &evs, &n), CF_E_PARSE);
    T_ERR(cf_audit_batch_parse("{\"events\":{}}", 13, &evs, &n), CF_E_PARSE);
    T_ERR(cf_audit_batch_parse("[]", 2, &evs, &n), CF_E_PARSE);
    T_ERR(cf_audit_batch_parse("{}", 2, &evs, &n), CF_E_PARSE);
    T_ERR(cf_audit_batch_parse("{\"events\":[1]}", 14, &evs, &n), CF_E_PARSE);
    {
        /* more than CF_AUDIT_MAX_BATCH events */
        cf_buf big;
        cf_buf_init(&big, 1u << 20);
        T_OK(cf_buf_put_str(&big, "{\"events\":["));
        for (int i = 0; i <= CF_AUDIT_MAX_BATCH; i++)
            T_OK(cf_buf_put_str(&big, i > 0 ? ",{}" : "{}"));
        T_OK(cf_buf_put_str(&big, "]}"));
        T_ERR(cf_audit_batch_parse(big.data, big.len, &evs, &n), CF_E_TOO_LARGE);
        cf_buf_free(&big);
    }
    T_ASSERT(evs == NULL);
}

int main(void)
{
    T_RUN(test_valid_event);
    T_RUN(test_canonical);
    T_RUN(test_refused_fields);
    T_RUN(test_sizes);
    T_RUN(test_time);
    T_RUN(test_batches);
    return t_done();
}
