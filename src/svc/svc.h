/*
 * Service runtime shared by every daemon (`cofferd kms|iam|audit|attest|gateway`):
 * configuration (common keys + the service's own), logging, process hardening,
 * the HTTP(S) server with mTLS, authentication of callers with IAM's access
 * tokens (verified locally against IAM's JWKS: DESIGN.md §2 rule 2), audit
 * events through the durable local spool (fail closed: §2 rule 6), and the
 * lifecycle (run until SIGTERM/SIGINT, then stop gracefully).
 *
 * Common configuration keys (flags --key=value, env COFFER_KEY, or JSON file):
 *   state_dir        directory for this service's files (default "var")
 *   listen.host      bind address (default 127.0.0.1)
 *   listen.port      port, 0 = ephemeral (default 0)
 *   port_file        write the bound port here once listening (optional)
 *   tls.cert/.key    this service's certificate and key (PEM); unset = plain HTTP
 *   tls.ca           internal CA: trusted for peers, and the client CA for mTLS
 *   tls.client_auth  off | optional | require (default optional)
 *   iam.jwks         IAM's JWKS: a file path or an https:// URL (optional)
 *   audit.spool      spool directory (default STATE_DIR/<service>/spool)
 *   audit.url        the audit service (https://host:port): when set, cf_svc_run
 *                    forwards the spool there (see "Audit forwarding" below)
 *   http.threads     server threads (default 2)
 *   log.level        debug | info | warn | error (default info)
 */
#ifndef COFFER_SVC_SVC_H
#define COFFER_SVC_SVC_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "auditlog/forward.h"
#include "base/compiler.h"
#include "base/config.h"
#include "http/client.h"
#include "http/server.h"
#include "proto/authz.h"
#include "spool/spool.h"

typedef struct cf_svc cf_svc;

typedef struct {
    const char *name;            /* "kms": log service name, SPIFFE id suffix, state subdir */
    const cf_config_opt *opts;   /* the service's own options (may be NULL); an option with
                                  * the key of a common one replaces it (the gateway's
                                  * audit.url, which it also proxies to) */
    size_t nopts;
} cf_svc_def;

/* Parses configuration from argv (after the service name) and the environment,
 * sets up logging and hardening, creates the state directory, opens the audit
 * spool and creates (but does not start) the HTTP server. On --help prints the
 * options and returns CF_E_NOT_FOUND with nothing created (exit 0). */
int cf_svc_init(const cf_svc_def *def, int argc, char **argv, cf_svc **ret) CF_WUR;
void cf_svc_free(cf_svc *s);

const char *cf_svc_name(const cf_svc *s);
const cf_config *cf_svc_config(const cf_svc *s);
cf_http_server *cf_svc_http(cf_svc *s);
cf_spool *cf_svc_spool(cf_svc *s);
/* STATE_DIR/<name>: the service's own directory (created, mode 0700). */
const char *cf_svc_dir(const cf_svc *s);

/* Starts the server, writes port_file, logs "service.listening", starts the
 * audit forwarder (below), then blocks until SIGTERM/SIGINT (or
 * cf_svc_request_stop), stops the server gracefully and then the forwarder.
 * Call with SIGTERM/SIGINT blocked in every thread (cf_svc_init blocks them in
 * the calling thread, so start threads after it). */
int cf_svc_run(cf_svc *s) CF_WUR;
/* Makes cf_svc_run return (from another thread or a test). */
void cf_svc_request_stop(cf_svc *s);

/* Authenticates the caller from "Authorization: Bearer <access token>" against
 * IAM's JWKS (refreshed at most every few seconds when a token names an unknown
 * kid). CF_E_UNAUTHENTICATED / CF_E_EXPIRED with a detail; CF_E_UNAVAILABLE if
 * no JWKS is configured or it cannot be loaded (fail closed). */
int cf_svc_authenticate(cf_svc *s, const cf_http_req *req, cf_principal *ret) CF_WUR;
/* 0 if IAM's JWKS is loaded (access tokens can be verified); otherwise tries
 * to load it (at most every few seconds) and returns CF_E_UNAVAILABLE if that
 * fails. For readiness probes. */
int cf_svc_jwks_ready(cf_svc *s) CF_WUR;
/* authenticate + cf_authz_check(perm, tenant). */
int cf_svc_authorize(cf_svc *s, const cf_http_req *req, cf_perm perm, const char *tenant,
                     cf_principal *ret) CF_WUR;
/* The caller's verified mTLS identity must be spiffe://coffer/<service> for one of
 * the NULL-terminated names. CF_E_UNAUTHENTICATED / CF_E_FORBIDDEN otherwise. */
int cf_svc_require_peer(const cf_http_req *req, const char *const *services) CF_WUR;

/* Appends an audit event durably (service, actor, tenant, action, resource,
 * outcome, request id, details). details is consumed (json_decref'd); may be
 * NULL. Never put secrets in details. Returns an error if the event could not
 * be made durable: the caller must then refuse the operation. */
int cf_svc_audit(cf_svc *s, const cf_http_req *req, const cf_principal *actor, const char *action,
                 const char *tenant, const char *resource, const char *outcome,
                 json_t *details) CF_WUR;

/*
 * Audit forwarding (DESIGN.md §10: a crash loses no acknowledged audit event).
 * With audit.url set to https://... and tls.cert/tls.key configured (the audit
 * service takes events from mTLS-authenticated services only; otherwise a
 * warning "audit.forward_disabled" is logged and events stay in the spool),
 * cf_svc_run runs a background thread that ships
 * the spool with cf_audit_drain: batches of events POSTed to
 * {audit.url}/v1/audit/events with this service's certificate, the peer pinned
 * to spiffe://coffer/audit. The spool's ack mark moves only after the audit
 * service answered 200 with every event of the batch accepted; failures are
 * retried with exponential back-off (CF_AUDIT_FWD_BACKOFF_*), so events wait
 * in the durable spool while the audit service is down and go out, once each
 * (it de-duplicates by event id), when it is back. cf_svc_audit wakes the
 * thread. When cf_svc_run stops, the forwarder makes a last attempt after the
 * server has stopped, then ends; what is still pending goes out on the next
 * start.
 *
 * cf_svc_set_audit_sink replaces the POST by another sender, e.g.
 * cf_audit_send_local for the audit service's own events (arg is then used
 * only by the forwarder thread). Call it before cf_svc_run.
 */
int cf_svc_set_audit_sink(cf_svc *s, cf_audit_send_fn send, void *arg) CF_WUR;

/* An HTTP client for calling another service at url with this service's
 * certificate (mTLS) and the internal CA; expect_service pins the peer's SPIFFE
 * id (spiffe://coffer/<expect_service>) when non-NULL. */
int cf_svc_client(cf_svc *s, const char *url, const char *expect_service, cf_http_client **ret) CF_WUR;

/* Current unix time in seconds. */
int64_t cf_svc_now(void);

#endif
