/*
 * Audit events (DESIGN.md §1 audit log, §10; docs/internals/audit-log.md).
 *
 * An event is one JSON object with these top-level fields (what cf_svc_audit
 * and cf_spool_append produce):
 *
 *   event_id    required: 32 lower-case hex digits (128 random bits; cf_spool_append makes it)
 *   ts          required: RFC 3339 UTC "YYYY-MM-DDTHH:MM:SS[.fraction]Z", years 1970-9999
 *   service     required: 1..CF_AUDIT_MAX_SERVICE_LEN of [a-z0-9._-]   ("kms")
 *   actor       required: 1..CF_AUDIT_MAX_ACTOR_LEN, no control characters (principal or SPIFFE id)
 *   action      required: 1..CF_AUDIT_MAX_ACTION_LEN of [a-z0-9._-], starting with a letter
 *               ("kms.otk.release")
 *   outcome     required: "success" | "failure" | "denied"
 *   tenant      optional: 0..CF_ID_MAX_LEN, no control characters; absent or "" = a
 *               platform event of no tenant (visible only to the unscoped: auditors, admins)
 *   resource    optional: 0..CF_AUDIT_MAX_RESOURCE_LEN, no control characters
 *   request_id  optional: 0..CF_ID_MAX_LEN, no control characters (absent: not caused by a request)
 *   details     optional: object, canonical form <= CF_AUDIT_MAX_DETAILS_BYTES, nesting <=
 *               CF_AUDIT_MAX_DETAILS_DEPTH; values are strings, integers, booleans,
 *               null, arrays and objects (no floating point: the canonical form must be
 *               reproducible byte for byte)
 *   tee_id      optional: 1..CF_ID_MAX_LEN, no control characters
 *
 * Unknown fields, JSON null for any field, duplicate keys and events over
 * CF_AUDIT_MAX_EVENT_BYTES are rejected. Events must never carry secrets: as a
 * safety net, a details key (at any depth) named like a secret — "password",
 * "secret", "private_key", "token", "otk", "plaintext", "api_key",
 * "key_material" (any case) — is refused.
 *
 * The CANONICAL form — the exact bytes of the Merkle leaf entry — is the event
 * serialised with sorted keys (bytewise), no whitespace, UTF-8 as is, and
 * JSON escapes only for '"', '\' and control characters (jansson
 * JSON_COMPACT | JSON_SORT_KEYS). Serialising the parsed canonical form again
 * gives the same bytes.
 *
 * Ownership: cf_audit_event values are made by the parse functions and released
 * with cf_audit_event_free; their string pointers borrow the event.
 */
#ifndef COFFER_AUDITLOG_EVENT_H
#define COFFER_AUDITLOG_EVENT_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/compiler.h"
#include "merkle/merkle.h"

#define CF_AUDIT_EVENT_ID_LEN 32

typedef enum {
    CF_AUDIT_OUTCOME_SUCCESS = 1,
    CF_AUDIT_OUTCOME_FAILURE = 2,
    CF_AUDIT_OUTCOME_DENIED = 3,
} cf_audit_outcome;

typedef struct {
    char event_id[CF_AUDIT_EVENT_ID_LEN + 1];
    int64_t ts_ms;           /* "ts" as unix milliseconds (fraction truncated) */
    const char *service;     /* borrowed from the event */
    const char *actor;
    const char *tenant;      /* "" when absent */
    const char *action;
    const char *resource;    /* "" when absent */
    const char *request_id;  /* "" when absent */
    const char *tee_id;      /* NULL when absent */
    cf_audit_outcome outcome;
    uint8_t *entry;          /* canonical serialisation (the leaf entry), not NUL-terminated */
    size_t entry_len;
    uint8_t leaf[CF_MERKLE_HASH_LEN]; /* SHA-256(0x00 || entry) */
    json_t *json;            /* the validated object (owned) */
} cf_audit_event;

/* Validates one event given as JSON text (at most CF_AUDIT_MAX_EVENT_BYTES).
 * Errors: CF_E_PARSE / CF_E_TOO_LARGE / CF_E_RANGE with a precise detail
 * ("field 'outcome' must be one of success, failure, denied"). */
int cf_audit_event_parse(const void *data, size_t len, cf_audit_event **ret) CF_WUR;
/* Same for an already parsed object (the caller keeps its reference). */
int cf_audit_event_from_json(json_t *obj, cf_audit_event **ret) CF_WUR;
void cf_audit_event_free(cf_audit_event *ev);
const char *cf_audit_outcome_name(cf_audit_outcome o);

/* Parses "YYYY-MM-DDTHH:MM:SS[.fraction]Z" into unix milliseconds. */
int cf_audit_parse_time(const char *s, int64_t *ret_ms) CF_WUR;

/* ---- batches: the body of an append request {"events":[event, ...]} ----
 * At most CF_AUDIT_MAX_BATCH events and CF_AUDIT_MAX_BATCH_BYTES bytes; one bad
 * event rejects the whole batch ("event 3: field 'tenant' ..."). *ret is a new
 * array of *ret_n new events, freed with cf_audit_events_free. An empty batch
 * is valid. */
int cf_audit_batch_parse(const void *body, size_t len, cf_audit_event ***ret, size_t *ret_n) CF_WUR;
/* Appends {"events":[<canonical event>,...]} to out. */
int cf_audit_batch_encode(cf_audit_event *const *events, size_t n, cf_buf *out) CF_WUR;
void cf_audit_events_free(cf_audit_event **events, size_t n);

#endif
