/*
 * Fuzz audit event validation (and batch bodies, and the time parser) on
 * arbitrary bytes. Invariants checked on every accepted input: the canonical
 * form is accepted again and is a fixed point; a batch re-encodes to the same
 * entries.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "auditlog/event.h"
#include "base/limits.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_event(const uint8_t *data, size_t size)
{
    cf_audit_event *ev = NULL, *again = NULL;

    if (cf_audit_event_parse(data, size, &ev) != 0)
        return;
    if (cf_audit_event_parse(ev->entry, ev->entry_len, &again) != 0 ||
        again->entry_len != ev->entry_len || memcmp(again->entry, ev->entry, ev->entry_len) != 0 ||
        memcmp(again->leaf, ev->leaf, sizeof(ev->leaf)) != 0 || again->ts_ms != ev->ts_ms)
        __builtin_trap();
    cf_audit_event_free(again);
    cf_audit_event_free(ev);
}

static void check_batch(const uint8_t *data, size_t size)
{
    cf_audit_event **evs = NULL, **again = NULL;
    size_t n = 0, n2 = 0;
    cf_buf body;

    if (cf_audit_batch_parse(data, size, &evs, &n) != 0)
        return;
    cf_buf_init(&body, CF_AUDIT_MAX_BATCH_BYTES);
    if (cf_audit_batch_encode(evs, n, &body) == 0) {
        if (cf_audit_batch_parse(body.data, body.len, &again, &n2) != 0 || n2 != n)
            __builtin_trap();
        for (size_t i = 0; i < n; i++)
            if (again[i]->entry_len != evs[i]->entry_len ||
                memcmp(again[i]->entry, evs[i]->entry, evs[i]->entry_len) != 0)
                __builtin_trap();
        cf_audit_events_free(again, n2);
    }
    cf_buf_free(&body);
    cf_audit_events_free(evs, n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char ts[48];
    int64_t ms;

    check_event(data, size);
    check_batch(data, size);
    if (size < sizeof(ts)) {
        memcpy(ts, data, size);
        ts[size] = '\0';
        if (cf_audit_parse_time(ts, &ms) == 0 && (ms < 0 || ms > CF_AUDIT_MAX_TIME_MS))
            __builtin_trap();
    }
    return 0;
}
