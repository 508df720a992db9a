/*
 * Durable local event spool (DESIGN.md §2 rule 6, §10; issue "audit log").
 *
 * Every service writes each audit event here FIRST; cf_spool_append returns only
 * after the record is on stable storage (fdatasync), so an acknowledged event
 * survives kill -9 and power loss. A forwarder later ships pending events to the
 * audit service and records how far it got with cf_spool_ack; after a restart
 * the events past the ack mark are sent again (the audit service de-duplicates
 * by event_id). If the spool cannot be written, append fails and the caller must
 * refuse the operation (fail closed).
 *
 * Files in the spool directory (one process per directory, enforced by flock):
 *   events.log  records: "CFS1" magic once, then per record
 *               u32 length (BE) || 8-byte SHA-256 prefix of the payload || payload (JSON)
 *   ack         u64 (BE) offset in events.log up to which events are acknowledged,
 *               replaced atomically (write temp, fsync, rename, fsync dir)
 * A torn record at the tail (crash during append) is detected by its length or
 * checksum and truncated away on open.
 *
 * Thread-safety: all functions may be called from several threads.
 */
#ifndef COFFER_SPOOL_SPOOL_H
#define COFFER_SPOOL_SPOOL_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "base/compiler.h"

#define CF_SPOOL_MAX_RECORD (64u * 1024)  /* one serialized event */
#define CF_SPOOL_EVENT_ID_LEN 32          /* hex chars of a 128-bit id */

typedef struct cf_spool cf_spool;

/* Opens (creating if needed) the spool in dir, recovering a torn tail. */
int cf_spool_open(const char *dir, cf_spool **ret) CF_WUR;
void cf_spool_close(cf_spool *s);

/* Appends an event object durably. Adds "event_id" (random, 32 hex chars) and
 * "ts" (RFC 3339 UTC) when absent. If ret_id is non-NULL it receives the id
 * (CF_SPOOL_EVENT_ID_LEN + 1 bytes). The caller keeps ownership of ev. */
int cf_spool_append(cf_spool *s, json_t *ev, char ret_id[CF_SPOOL_EVENT_ID_LEN + 1]) CF_WUR;

/* Calls fn for each event after the ack mark, in order, up to max events.
 * `next` is the offset just past that event (pass it to cf_spool_ack). fn returns
 * 0 to continue, 1 to stop early, <0 to abort with that error. */
typedef int (*cf_spool_fn)(void *arg, const char *json, size_t len, uint64_t next);
int cf_spool_pending(cf_spool *s, size_t max, cf_spool_fn fn, void *arg) CF_WUR;
/* Records that every event before offset is acknowledged (monotonic). */
int cf_spool_ack(cf_spool *s, uint64_t offset) CF_WUR;
/* Number of events after the ack mark. */
size_t cf_spool_pending_count(cf_spool *s);

/* Scans a spool image (for recovery and fuzzing): returns the length of the valid
 * prefix (whole records with good checksums) and the number of records in it. */
int cf_spool_scan(const uint8_t *data, size_t len, size_t *ret_valid, size_t *ret_records) CF_WUR;

#endif
