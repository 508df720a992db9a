/*
 * Pool of outgoing HTTP clients (upstream.h). Idle handles sit in a small
 * array; a call takes a matching one out (or makes a new one) and puts it back
 * when done, unless the transfer failed (a handle whose connection broke is
 * dropped rather than trusted again) or the pool is full (the oldest idle
 * handle is closed to make room).
 */
#include "gateway/upstream.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/limits.h"
#include "base/parse.h"

struct idle {
    char *url;
    char *expect; /* NULL = none */
    unsigned timeout_ms;
    size_t max_response;
    cf_http_client *client;
};

struct cf_gw_clients {
    pthread_mutex_t mu;
    char *ca, *cert, *key;
    unsigned connect_ms;
    struct idle idle[CF_GW_MAX_IDLE_CLIENTS];
    size_t nidle; /* idle[0] is the oldest */
};

static int dup_opt(const char *s, char **ret)
{
    *ret = NULL;
    if (s == NULL)
        return 0;
    *ret = cf_strndup_max(s, 4096);
    return *ret ? 0 : CF_E_NOMEM;
}

int cf_gw_clients_new(const cf_gw_clients_opts *o, cf_gw_clients **ret)
{
    cf_gw_clients *c;
    int rc = 0;

    CF_ENSURE(o != NULL && ret != NULL, CF_E_INVAL);
    c = calloc(1, sizeof(*c));
    CF_ENSURE(c != NULL, CF_E_NOMEM);
    CF_ENSURE_OUT(pthread_mutex_init(&c->mu, NULL) == 0, CF_E_NOMEM);
    CF_GUARD_OUT(dup_opt(o->ca_file, &c->ca));
    CF_GUARD_OUT(dup_opt(o->cert_file, &c->cert));
    CF_GUARD_OUT(dup_opt(o->key_file, &c->key));
    c->connect_ms = o->connect_timeout_ms;
    *ret = c;
    c = NULL;
out:
    if (c != NULL) {
        free(c->ca);
        free(c->cert);
        free(c->key);
        free(c);
    }
    return rc;
}

static void idle_free(struct idle *x)
{
    cf_http_client_free(x->client);
    free(x->url);
    free(x->expect);
    memset(x, 0, sizeof(*x));
}

void cf_gw_clients_free(cf_gw_clients *c)
{
    if (c == NULL)
        return;
    for (size_t i = 0; i < c->nidle; i++)
        idle_free(&c->idle[i]);
    pthread_mutex_destroy(&c->mu);
    free(c->ca);
    free(c->cert);
    free(c->key);
    free(c);
}

static bool same(const struct idle *x, const char *url, const char *expect, unsigned timeout_ms,
                 size_t max_response)
{
    return strcmp(x->url, url) == 0 && x->timeout_ms == timeout_ms &&
           x->max_response == max_response &&
           ((x->expect == NULL && expect == NULL) ||
            (x->expect != NULL && expect != NULL && strcmp(x->expect, expect) == 0));
}

static int make(cf_gw_clients *c, const char *url, const char *expect, unsigned timeout_ms,
                size_t max_response, struct idle *ret)
{
    cf_http_client_opts o;
    char peer[96];
    struct idle x;
    int rc = 0;

    memset(&x, 0, sizeof(x));
    memset(&o, 0, sizeof(o));
    o.base_url = url;
    o.ca_file = c->ca;
    o.cert_file = c->cert;
    o.key_file = c->key;
    o.connect_timeout_ms = c->connect_ms;
    o.timeout_ms = timeout_ms;
    o.max_response = max_response;
    if (expect != NULL && strncmp(url, "https://", 8) == 0) {
        CF_GUARD(cf_fmt(peer, sizeof(peer), "spiffe://coffer/%s", expect));
        o.expect_peer_id = peer;
    }
    x.url = cf_strndup_max(url, CF_HTTP_MAX_URL);
    CF_ENSURE_OUT(x.url != NULL, CF_E_NOMEM);
    if (expect != NULL) {
        x.expect = cf_strndup_max(expect, 64);
        CF_ENSURE_OUT(x.expect != NULL, CF_E_NOMEM);
    }
    x.timeout_ms = timeout_ms;
    x.max_response = max_response;
    CF_GUARD_OUT(cf_http_client_new(&o, &x.client));
    *ret = x;
    memset(&x, 0, sizeof(x));
out:
    idle_free(&x);
    return rc;
}

int cf_gw_call(cf_gw_clients *c, const char *base_url, const char *expect, unsigned timeout_ms,
               size_t max_response, const cf_http_request *rq, cf_http_response *ret)
{
    struct idle x, evict;
    bool found = false;
    int rc;

    CF_ENSURE(c != NULL && base_url != NULL && rq != NULL && ret != NULL, CF_E_INVAL);
    memset(&x, 0, sizeof(x));
    memset(&evict, 0, sizeof(evict));
    pthread_mutex_lock(&c->mu);
    for (size_t i = c->nidle; i-- > 0;) { /* most recently used first: warm connection */
        if (same(&c->idle[i], base_url, expect, timeout_ms, max_response)) {
            x = c->idle[i];
            memmove(&c->idle[i], &c->idle[i + 1], (c->nidle - i - 1) * sizeof(c->idle[0]));
            c->nidle--;
            found = true;
            break;
        }
    }
    pthread_mutex_unlock(&c->mu);
    if (!found)
        CF_GUARD(make(c, base_url, expect, timeout_ms, max_response, &x));

    rc = cf_http_client_do(x.client, rq, ret);
    if (rc != 0) {
        idle_free(&x);
        return rc;
    }
    pthread_mutex_lock(&c->mu);
    if (c->nidle == CF_GW_MAX_IDLE_CLIENTS) {
        evict = c->idle[0];
        memmove(&c->idle[0], &c->idle[1], (c->nidle - 1) * sizeof(c->idle[0]));
        c->nidle--;
    }
    c->idle[c->nidle++] = x;
    pthread_mutex_unlock(&c->mu);
    idle_free(&evict); /* outside the lock: closing a TLS connection takes a moment */
    return 0;
}

size_t cf_gw_clients_idle(cf_gw_clients *c)
{
    size_t n;
    pthread_mutex_lock(&c->mu);
    n = c->nidle;
    pthread_mutex_unlock(&c->mu);
    return n;
}
