/*
 * Forwarder from a service's durable spool to the audit log (forward.h).
 */
#include "auditlog/forward.h"

#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/limits.h"

#define BATCH_OVERHEAD 13 /* {"events":[]} */

struct batch {
    cf_audit_event **evs;
    size_t n, max;
    size_t bytes;  /* encoded size of the batch body so far */
    uint64_t next; /* spool offset just past the last event taken */
};

static int take_event(void *arg, const char *json, size_t len, uint64_t next)
{
    struct batch *b = arg;
    cf_audit_event *ev = NULL;
    size_t add;
    int rc;

    rc = cf_audit_event_parse(json, len, &ev);
    if (rc < 0)
        return cf_err_set(CF_E_PARSE, "audit spool: the event ending at offset %llu is not a valid "
                                      "audit event and blocks the forwarder: %s",
                          (unsigned long long)next, cf_err_detail(rc));
    add = ev->entry_len + (b->n > 0 ? 1 : 0);
    if (b->n > 0 && b->bytes + add > CF_AUDIT_MAX_BATCH_BYTES) {
        cf_audit_event_free(ev); /* it opens the next batch */
        return 1;
    }
    b->evs[b->n++] = ev;
    b->bytes += add;
    b->next = next;
    return b->n == b->max ? 1 : 0;
}

int cf_audit_drain(cf_spool *spool, size_t max_batch, cf_audit_send_fn send, void *arg,
                   cf_audit_drain_stats *ret_stats)
{
    cf_audit_drain_stats stats = {0, 0};
    struct batch b;
    int rc = 0;

    CF_ENSURE(spool != NULL && send != NULL, CF_E_INVAL);
    if (max_batch < 1 || max_batch > CF_AUDIT_MAX_BATCH)
        return cf_err_set(CF_E_RANGE, "an audit batch holds 1..%d events", CF_AUDIT_MAX_BATCH);
    memset(&b, 0, sizeof(b));
    b.evs = calloc(max_batch, sizeof(*b.evs));
    CF_ENSURE(b.evs != NULL, CF_E_NOMEM);
    b.max = max_batch;
    for (;;) {
        b.n = 0;
        b.bytes = BATCH_OVERHEAD;
        CF_GUARD_OUT(cf_spool_pending(spool, max_batch, take_event, &b));
        if (b.n == 0)
            break;
        CF_GUARD_OUT(send(arg, b.evs, b.n));
        /* acknowledged by the log: only now may the spool forget the batch */
        CF_GUARD_OUT(cf_spool_ack(spool, b.next));
        stats.batches++;
        stats.events += b.n;
        for (size_t i = 0; i < b.n; i++) {
            cf_audit_event_free(b.evs[i]);
            b.evs[i] = NULL;
        }
    }
    if (ret_stats != NULL)
        *ret_stats = stats;
    rc = 0;
out:
    for (size_t i = 0; i < b.n; i++)
        cf_audit_event_free(b.evs[i]);
    free(b.evs);
    return rc;
}
