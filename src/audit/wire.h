/*
 * Wire formats of the audit service's HTTP API (docs/internals/audit-service.md):
 * the query parameters of its GET endpoints and the JSON form of an entry.
 *
 * The query parsers see raw client input (after cf_http_query_parse) and are
 * strict: an unknown or repeated parameter, a malformed number, a value out of
 * range or a bad time is CF_E_PARSE / CF_E_RANGE with a detail naming the
 * parameter. Strings in the results are borrowed from the cf_http_query.
 *
 * ENTRY JSON. An entry travels with its exact stored bytes, so that a verifier
 * can hash them itself (RFC 6962 §2.1 leaf hash):
 *   {"seq":17,"event_id":"<32 hex>","leaf_hash":"<64 hex>","entry":"<canonical event text>",
 *    "proof":["<64 hex>",...]}
 * "entry" holds the bytes as a JSON string when they are UTF-8 without NUL (every
 * valid event); otherwise — only a damaged store has such bytes — "entry_b64"
 * (base64url) holds them instead. "leaf_hash" is the hash the log stored (not
 * recomputed). "proof" (the inclusion proof in a tree of the requested size) is
 * present only when asked for.
 */
#ifndef COFFER_AUDIT_WIRE_H
#define COFFER_AUDIT_WIRE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auditlog/log.h"
#include "base/compiler.h"
#include "http/route.h"
#include "merkle/merkle.h"

/* GET /v1/audit/entries?tenant=&action=&tee_id=&since=&until=&after=&limit=&tree_size= */
typedef struct {
    const char *tenant;  /* filters; NULL = any */
    const char *action;
    const char *tee_id;
    bool has_since, has_until; /* [since, until) on the event time, unix ms */
    int64_t since_ms, until_ms;
    bool has_after;      /* cursor: entries with seq > after */
    uint64_t after;
    size_t limit;        /* 1..CF_AUDIT_MAX_PAGE, default CF_AUDITSVC_PAGE_DEFAULT */
    bool has_tree_size;  /* add each entry's inclusion proof in the tree of this size */
    uint64_t tree_size;
} cf_auditsvc_entries_q;

int cf_auditsvc_q_entries(const cf_http_query *q, cf_auditsvc_entries_q *ret) CF_WUR;
/* GET /v1/audit/entries/{seq}?tree_size= (has_tree_size false when absent). */
int cf_auditsvc_q_entry(const cf_http_query *q, bool *ret_has_tree_size, uint64_t *ret_tree_size) CF_WUR;
/* GET /v1/audit/sths?after=&limit=: after is a tree-head id (default 0). */
int cf_auditsvc_q_sths(const cf_http_query *q, int64_t *ret_after, size_t *ret_limit) CF_WUR;
/* GET /v1/audit/sth?fresh=1 (fresh: "1"/"true" or "0"/"false"; default false). */
int cf_auditsvc_q_sth(const cf_http_query *q, bool *ret_fresh) CF_WUR;
/* GET /v1/audit/proof/inclusion?seq=&tree_size= (both required, seq < tree_size). */
int cf_auditsvc_q_inclusion(const cf_http_query *q, uint64_t *ret_seq, uint64_t *ret_tree_size) CF_WUR;
/* GET /v1/audit/proof/consistency?first=&second= (both required, 0 < first <= second). */
int cf_auditsvc_q_consistency(const cf_http_query *q, uint64_t *ret_first, uint64_t *ret_second) CF_WUR;

/* A time parameter: RFC 3339 UTC ("2024-05-01T12:00:00Z") or unix milliseconds
 * (digits only), at most CF_AUDITSVC_MAX_QUERY_TIME characters. */
int cf_auditsvc_parse_time(const char *s, int64_t *ret_ms) CF_WUR;

/* The entry JSON above; proof may be NULL. *ret is the caller's (json_decref). */
int cf_auditsvc_entry_to_json(const cf_audit_entry *e, const cf_merkle_proof *proof, json_t **ret) CF_WUR;
/* An upper bound of the serialised size of that JSON (for page budgets). */
size_t cf_auditsvc_entry_json_bound(const cf_audit_entry *e, size_t proof_len);

#endif
