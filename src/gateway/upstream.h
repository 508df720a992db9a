/*
 * Outgoing calls of the gateway: a pool of cf_http_client handles keyed by
 * (base URL, expected service identity, timeout, response cap), so that
 * concurrent requests each get their own handle (a cf_http_client serialises
 * its calls) and keep-alive connections are reused between requests.
 *
 * Every client presents the gateway's certificate (mTLS, DESIGN.md §2 rule 5)
 * and trusts only the configured CA; over https the peer must hold the SPIFFE
 * id spiffe://coffer/<expect> when expect is given.
 *
 * Thread-safety: all functions may be called from any thread.
 */
#ifndef COFFER_GATEWAY_UPSTREAM_H
#define COFFER_GATEWAY_UPSTREAM_H

#include <stddef.h>

#include "base/compiler.h"
#include "http/client.h"

typedef struct cf_gw_clients cf_gw_clients;

typedef struct {
    const char *ca_file;   /* internal CA (NULL: system store) */
    const char *cert_file; /* the gateway's client certificate (optional) */
    const char *key_file;
    unsigned connect_timeout_ms;
} cf_gw_clients_opts;

/* Copies the options. */
int cf_gw_clients_new(const cf_gw_clients_opts *o, cf_gw_clients **ret) CF_WUR;
/* Frees idle clients. No call may be in progress. NULL is accepted. */
void cf_gw_clients_free(cf_gw_clients *c);

/* Performs rq against base_url (see cf_http_client_do for the result and errors).
 * expect: service name for the SPIFFE check (https only), or NULL. */
int cf_gw_call(cf_gw_clients *c, const char *base_url, const char *expect, unsigned timeout_ms,
               size_t max_response, const cf_http_request *rq, cf_http_response *ret) CF_WUR;

/* Idle clients held (for tests). */
size_t cf_gw_clients_idle(cf_gw_clients *c);

#endif
