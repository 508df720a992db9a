/*
 * The audit service `cofferd audit` (DESIGN.md §1, §6, §10;
 * docs/internals/audit-service.md): an HTTP layer over the audit log library
 * (src/auditlog) with its tree-head signing key, periodic signed tree heads and
 * tenant-scoped queries. (The library owns the cf_audit_* names; the service's
 * are cf_auditsvc_*.)
 *
 * Threads: HTTP handlers run concurrently; each takes a store handle and a log
 * over it from a small pool (a cf_audit_log is for one thread at a time). A
 * background thread signs a tree head every audit.sth_interval when the tree
 * grew. The service's own events (reads of the log, refusals) go through its
 * svc spool like every service's, and are appended in-process by the svc
 * forwarder with cf_audit_send_local over a log handle of their own.
 */
#ifndef COFFER_AUDIT_AUDITSVC_H
#define COFFER_AUDIT_AUDITSVC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auditlog/log.h"
#include "auditlog/sth.h"
#include "base/compiler.h"
#include "crypto/keys.h"
#include "hsm/hsm.h"
#include "http/server.h"
#include "store/store.h"
#include "svc/svc.h"

typedef struct cf_auditsvc cf_auditsvc;

typedef struct {
    const char *store_dsn;   /* the log's store */
    cf_hsm *hsm;             /* wraps the tree-head key (borrowed; outlives the service) */
    cf_svc *svc;             /* authentication, own audit events (borrowed) */
    uint64_t sth_interval_s; /* periodic tree heads; 0 = none (on demand only) */
} cf_auditsvc_opts;

/* Opens the store (schema "audit" of the library and "audit_service" for the
 * key), loads the tree-head key — creating it, wrapped by the HSM master key,
 * on first start — and signs a first tree head if the log has none or grew
 * since its last one. */
int cf_auditsvc_open(const cf_auditsvc_opts *o, cf_auditsvc **ret) CF_WUR;
/* Stops the background thread if running and frees. NULL is accepted. */
void cf_auditsvc_close(cf_auditsvc *a);

/* Adds the routes of the API (docs/internals/audit-service.md) to http. */
int cf_auditsvc_routes(cf_auditsvc *a, cf_http_server *http) CF_WUR;
/* Makes the svc forwarder append this service's own spooled events to the log
 * in-process (cf_svc_set_audit_sink with cf_audit_send_local). */
int cf_auditsvc_own_events(cf_auditsvc *a) CF_WUR;
/* Starts / stops the periodic tree-head thread. */
int cf_auditsvc_start(cf_auditsvc *a) CF_WUR;
void cf_auditsvc_stop(cf_auditsvc *a);

/* The tree-head public key (borrowed, valid until close) and its RFC 7638 thumbprint. */
const cf_key *cf_auditsvc_public_key(const cf_auditsvc *a);
const char *cf_auditsvc_key_id(const cf_auditsvc *a);

/* ---- used by the HTTP layer (api.c) ---- */

/* The svc given at open (borrowed; may be NULL in tests without HTTP). */
cf_svc *cf_auditsvc_svc(const cf_auditsvc *a);

typedef struct {
    cf_store *store;
    cf_audit_log *log;
} cf_auditsvc_handle;

/* A store handle + log for this thread; give it back with cf_auditsvc_put,
 * passing the last result so that a handle whose connection failed is dropped. */
int cf_auditsvc_get(cf_auditsvc *a, cf_auditsvc_handle *ret) CF_WUR;
void cf_auditsvc_put(cf_auditsvc *a, cf_auditsvc_handle *h, int last_rc);
/*
 * The latest tree head, after signing a new one if the tree grew since it (or
 * there is none). Never signs a head that would contradict the latest one: if
 * the log is now smaller, or its stored hashes no longer give the latest head's
 * root, the store was changed behind the service's back — it logs an error
 * (event "audit.sth_refused") and returns the latest head unchanged, so that
 * verifiers see the damage against it. *ret_signed tells whether a head was made.
 */
int cf_auditsvc_sth_refresh(cf_auditsvc *a, cf_audit_log *log, cf_audit_sth *ret, bool *ret_signed) CF_WUR;

/* ---- tree-head key (key.c) ---- */

/* Loads the Ed25519 tree-head key from the store, unwrapping it with the HSM;
 * creates, wraps and stores it first if there is none (several replicas
 * starting at once agree on one). *ret owns the private key. */
int cf_auditsvc_key_load(cf_store *s, cf_hsm *hsm, cf_key **ret) CF_WUR;

#endif
