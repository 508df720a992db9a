/*
 * Fuzz the audit service's request parsing (src/audit/wire.h) on arbitrary
 * bytes taken as a query string: cf_http_query_parse, then every endpoint's
 * parameter parser (each result is checked against its documented bounds),
 * the time parser, and the entry JSON on the same bytes taken as stored entry
 * bytes: "entry" or "entry_b64" must give back exactly those bytes.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "audit/wire.h"
#include "base/json.h"
#include "base/limits.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_entry_json(const uint8_t *data, size_t size)
{
    cf_audit_entry e;
    json_t *j = NULL, *s;
    cf_buf b;

    if (size > 4096)
        return;
    memset(&e, 0, sizeof(e));
    e.seq = size;
    memcpy(e.event_id, "00000000000000000000000000000000", 33);
    e.entry = (uint8_t *)(uintptr_t)data;
    e.entry_len = size;
    if (cf_auditsvc_entry_to_json(&e, NULL, &j) != 0)
        __builtin_trap();
    s = json_object_get(j, "entry");
    if (s != NULL) {
        if (json_string_length(s) != size || (size > 0 && memcmp(json_string_value(s), data, size) != 0))
            __builtin_trap();
    } else {
        cf_buf_init(&b, 8192);
        if (cf_json_get_b64url(j, "entry_b64", true, 8192, &b) != 0 || b.len != size ||
            (size > 0 && memcmp(b.data, data, size) != 0))
            __builtin_trap();
        cf_buf_free(&b);
    }
    json_decref(j);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cf_http_query q;
    cf_auditsvc_entries_q e;
    uint64_t a = 0, b = 0;
    int64_t after = 0, ms = 0;
    size_t limit = 0;
    bool f = false, has = false;
    char text[64];

    check_entry_json(data, size);
    if (size < sizeof(text) && memchr(data, 0, size) == NULL) {
        memcpy(text, data, size);
        text[size] = 0;
        if (cf_auditsvc_parse_time(text, &ms) == 0 && (ms < 0 || ms > CF_AUDIT_MAX_TIME_MS))
            __builtin_trap();
    }
    if (cf_http_query_parse((const char *)data, size, &q) != 0)
        return 0;
    if (cf_auditsvc_q_entries(&q, &e) == 0) {
        if (e.limit < 1 || e.limit > CF_AUDIT_MAX_PAGE)
            __builtin_trap();
        if (e.has_since && e.has_until && e.since_ms >= e.until_ms)
            __builtin_trap();
        if (e.tenant != NULL && (e.tenant[0] == 0 || strlen(e.tenant) > CF_ID_MAX_LEN))
            __builtin_trap();
        if (e.has_tree_size && (e.tree_size < 1 || e.tree_size > CF_MERKLE_MAX_SIZE))
            __builtin_trap();
    }
    if (cf_auditsvc_q_entry(&q, &has, &a) == 0 && has && a < 1)
        __builtin_trap();
    if (cf_auditsvc_q_sths(&q, &after, &limit) == 0 && (after < 0 || limit < 1 || limit > CF_AUDIT_MAX_PAGE))
        __builtin_trap();
    if (cf_auditsvc_q_sth(&q, &f) == 0) {
        const char *v = cf_http_kv_get(q.kv, q.n, "fresh");
        bool want = v != NULL && (strcmp(v, "1") == 0 || strcmp(v, "true") == 0);
        if (f != want)
            __builtin_trap();
    }
    if (cf_auditsvc_q_inclusion(&q, &a, &b) == 0 && a >= b)
        __builtin_trap();
    if (cf_auditsvc_q_consistency(&q, &a, &b) == 0 && (a < 1 || a > b))
        __builtin_trap();
    return 0;
}
