/*
 * Forwarder: ships a service's spooled audit events to the audit log
 * (DESIGN.md §10: a crash of any process loses no acknowledged audit event).
 *
 * Every service appends its events durably to its local cf_spool first. The
 * forwarder reads the events after the spool's ack mark in batches, hands each
 * batch to `send` (later: an mTLS POST to the audit service; in tests and in
 * the audit service itself: cf_audit_send_local) and moves the ack mark past
 * the batch only after `send` reported success. A crash at any point re-sends
 * the unacknowledged events after restart; the audit log de-duplicates them by
 * event_id, so nothing is lost and nothing is logged twice.
 *
 * An event in the spool that is not a valid audit event (a bug in the service
 * that wrote it) stops the forwarder with CF_E_PARSE naming it: it is neither
 * dropped nor skipped (fail closed, DESIGN.md §2 rule 6).
 */
#ifndef COFFER_AUDITLOG_FORWARD_H
#define COFFER_AUDITLOG_FORWARD_H

#include <stddef.h>

#include "auditlog/event.h"
#include "base/compiler.h"
#include "spool/spool.h"

/* Delivers one batch; returns 0 only if the audit log acknowledged all of it
 * (stored or already present), a negative cf_err otherwise. events (and each
 * event) are borrowed for the duration of the call. */
typedef int (*cf_audit_send_fn)(void *arg, cf_audit_event *const *events, size_t n);

typedef struct {
    size_t batches; /* batches acknowledged */
    size_t events;  /* events acknowledged (and removed from the pending set) */
} cf_audit_drain_stats;

/* Sends pending events in batches of at most max_batch events (1..CF_AUDIT_MAX_BATCH)
 * and CF_AUDIT_MAX_BATCH_BYTES bytes, until none is pending or send fails. On a
 * failure returns that error; the batches acknowledged before it stay
 * acknowledged (ret_stats, if not NULL, is written in every case). */
int cf_audit_drain(cf_spool *spool, size_t max_batch, cf_audit_send_fn send, void *arg,
                   cf_audit_drain_stats *ret_stats) CF_WUR;

#endif
