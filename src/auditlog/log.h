/*
 * The audit log over cf_store (DESIGN.md §1 audit log, §8, §10;
 * docs/internals/audit-log.md). The HTTP service wraps this library.
 *
 * TABLES (migration scope "audit"; the same schema on SQLite and PostgreSQL):
 *   audit_entries  seq (leaf index, from 0), event_id UNIQUE, ts_ms, tenant,
 *                  action, tee_id, entry (canonical event bytes), leaf_hash
 *   audit_nodes    (lvl, idx) -> hash of every complete subtree of 2^lvl
 *                  leaves (lvl >= 1): what makes proofs O(log n) reads
 *   audit_sth      signed tree heads: id, tree_size, ts_ms, root, signature, key_id
 * All three are append-only: this code has no UPDATE or DELETE, and triggers
 * refuse them (and TRUNCATE on PostgreSQL). Someone with access to the
 * database file can drop the triggers; the Merkle tree and the signed tree
 * heads are what expose such changes (see verify.h).
 *
 * The tree size is max(seq) + 1; writers (appends, new tree heads) run one at a
 * time — SQLite: BEGIN IMMEDIATE; PostgreSQL: SERIALIZABLE plus a self-conflicting
 * table lock taken before the snapshot — so several processes (service
 * replicas) may append to one store. Readers are never blocked.
 *
 * SCOPING. Queries take the tenant the caller may see (NULL = every tenant:
 * auditors and admins). The HTTP layer maps the authenticated principal's
 * roles to it; this library only enforces what it is given.
 *
 * Thread-safety: a cf_audit_log uses its cf_store handle, so it is for one
 * thread at a time (open one per thread, each on its own handle).
 */
#ifndef COFFER_AUDITLOG_LOG_H
#define COFFER_AUDITLOG_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auditlog/event.h"
#include "auditlog/sth.h"
#include "base/compiler.h"
#include "crypto/keys.h"
#include "merkle/merkle.h"
#include "store/store.h"

typedef struct cf_audit_log cf_audit_log;

/* Brings the "audit" schema up to date and returns a log over store, which it
 * borrows: close the log before the store. */
int cf_audit_log_open(cf_store *store, cf_audit_log **ret) CF_WUR;
void cf_audit_log_close(cf_audit_log *log);

/* ---- append ---- */
typedef struct {
    size_t added;       /* events that are new in the log */
    size_t duplicates;  /* events whose event_id was already logged (acknowledged, not added) */
    uint64_t tree_size; /* log size after the append */
} cf_audit_append_result;

/* Appends a batch in ONE transaction: every event is acknowledged (added, or
 * already present with identical bytes) or none is. The same event_id with
 * different content is refused (CF_E_CONFLICT) and fails the batch. Events
 * get consecutive sequence numbers in batch order. After 0 is returned the
 * batch is durable (the store commits with fsync). */
int cf_audit_append(cf_audit_log *log, cf_audit_event *const *events, size_t n,
                    cf_audit_append_result *ret) CF_WUR;

int cf_audit_tree_size(cf_audit_log *log, uint64_t *ret) CF_WUR;
/* MTH of the first `size` entries (size <= tree size), from the stored hashes. */
int cf_audit_root(cf_audit_log *log, uint64_t size, uint8_t out[CF_MERKLE_HASH_LEN]) CF_WUR;

/* ---- signed tree heads ---- */
/* Signs the current tree (size, root, now in ms — never earlier than the
 * previous head's timestamp) with the Ed25519 private key, stores and returns it. */
int cf_audit_sth_create(cf_audit_log *log, const cf_key *key, cf_audit_sth *ret) CF_WUR;
/* CF_E_NOT_FOUND if none was made yet. */
int cf_audit_sth_latest(cf_audit_log *log, cf_audit_sth *ret) CF_WUR;
int cf_audit_sth_get(cf_audit_log *log, int64_t id, cf_audit_sth *ret) CF_WUR;
/* Tree heads with id > after_id in id order, at most limit (1..CF_AUDIT_MAX_PAGE):
 * a new array (free()) of *ret_n heads; *ret_more tells whether more follow. */
int cf_audit_sth_list(cf_audit_log *log, int64_t after_id, size_t limit, cf_audit_sth **ret,
                      size_t *ret_n, bool *ret_more) CF_WUR;

/* ---- proofs (from the stored subtree hashes) ---- */
/* Inclusion of entry seq in the tree of tree_size entries (seq < tree_size <= size). */
int cf_audit_inclusion_proof(cf_audit_log *log, uint64_t seq, uint64_t tree_size,
                             cf_merkle_proof *ret) CF_WUR;
/* Consistency of the tree of m entries with that of n (0 < m <= n <= size). */
int cf_audit_consistency_proof(cf_audit_log *log, uint64_t m, uint64_t n,
                               cf_merkle_proof *ret) CF_WUR;

/* ---- queries ---- */
typedef struct {
    uint64_t seq;
    char event_id[CF_AUDIT_EVENT_ID_LEN + 1];
    int64_t ts_ms;
    char *tenant;    /* malloc'd */
    char *action;    /* malloc'd */
    char *tee_id;    /* malloc'd, NULL when the event has none */
    uint8_t *entry;  /* malloc'd: the stored canonical event bytes (not re-validated) */
    size_t entry_len;
    uint8_t leaf[CF_MERKLE_HASH_LEN]; /* the stored leaf hash */
} cf_audit_entry;

typedef struct {
    const char *scope_tenant; /* what the caller may see: NULL = all tenants, else only this one */
    const char *tenant;       /* filters; NULL = any */
    const char *action;
    const char *tee_id;
    bool has_from, has_to;    /* time range [from_ms, to_ms) on the event's ts */
    int64_t from_ms, to_ms;
    bool has_after;           /* cursor: only entries with seq > after */
    uint64_t after;
    size_t limit;             /* 1..CF_AUDIT_MAX_PAGE */
} cf_audit_query;

typedef struct {
    cf_audit_entry *items; /* malloc'd array */
    size_t n;
    bool more;             /* another page follows: query again with after = items[n-1].seq */
} cf_audit_page;

/* Entries matching q in seq order. A filter tenant other than scope_tenant is
 * CF_E_FORBIDDEN; an empty scope_tenant is CF_E_INVAL. */
int cf_audit_query_entries(cf_audit_log *log, const cf_audit_query *q, cf_audit_page *ret) CF_WUR;
void cf_audit_page_free(cf_audit_page *p);
/* One entry by sequence number or by event id (CF_E_NOT_FOUND). */
int cf_audit_get_entry(cf_audit_log *log, uint64_t seq, cf_audit_entry *ret) CF_WUR;
int cf_audit_find_event(cf_audit_log *log, const char *event_id, cf_audit_entry *ret) CF_WUR;
void cf_audit_entry_clear(cf_audit_entry *e);

/* A cf_audit_send_fn (forward.h) that appends into a local log (arg is the
 * cf_audit_log): for the audit service's own events, and for tests. */
int cf_audit_send_local(void *arg, cf_audit_event *const *events, size_t n) CF_WUR;

#endif
