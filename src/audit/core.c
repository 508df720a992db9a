/*
 * The audit service core: store handle pool, tree-head key, signed tree heads
 * (on demand and periodically), the in-process sink of its own events
 * (auditsvc.h).
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "audit/auditsvc.h"
#include "base/err.h"
#include "base/log.h"
#include "base/parse.h"
#include "base/secmem.h"

struct cf_auditsvc {
    char dsn[CF_STORE_MAX_DSN + 1];
    cf_svc *svc;
    cf_key *key; /* Ed25519 private: signs tree heads */
    cf_key *pub;
    char key_id[CF_KEY_THUMBPRINT_LEN + 1];
    /* idle handles */
    pthread_mutex_t pool_mu;
    cf_auditsvc_handle idle[CF_AUDITSVC_STORE_POOL];
    size_t nidle;
    /* one signer at a time in this process (replicas are serialised by the store) */
    pthread_mutex_t sign_mu;
    /* the periodic signer */
    uint64_t interval_s;
    pthread_mutex_t th_mu;
    pthread_cond_t th_cv;
    pthread_t th;
    bool th_running, th_stop;
    /* the handle the svc forwarder appends our own events with (its thread only) */
    cf_auditsvc_handle sink;
};

/* ---- handles ------------------------------------------------------------------------- */

static void handle_close(cf_auditsvc_handle *h)
{
    cf_audit_log_close(h->log);
    cf_store_close(h->store);
    h->log = NULL;
    h->store = NULL;
}

static int handle_open(const char *dsn, cf_auditsvc_handle *ret)
{
    cf_auditsvc_handle h = {NULL, NULL};
    int rc;

    CF_GUARD(cf_store_open(dsn, &h.store));
    rc = cf_audit_log_open(h.store, &h.log);
    if (rc != 0) {
        cf_store_close(h.store);
        return rc;
    }
    *ret = h;
    return 0;
}

int cf_auditsvc_get(cf_auditsvc *a, cf_auditsvc_handle *ret)
{
    pthread_mutex_lock(&a->pool_mu);
    if (a->nidle > 0) {
        *ret = a->idle[--a->nidle];
        pthread_mutex_unlock(&a->pool_mu);
        return 0;
    }
    pthread_mutex_unlock(&a->pool_mu);
    return handle_open(a->dsn, ret);
}

void cf_auditsvc_put(cf_auditsvc *a, cf_auditsvc_handle *h, int last_rc)
{
    if (h->log == NULL)
        return;
    /* A connection that failed (or a transaction left open) is not reused. */
    if (last_rc == CF_E_STORE || last_rc == CF_E_UNAVAILABLE || last_rc == CF_E_INTERNAL ||
        cf_store_in_tx(h->store)) {
        handle_close(h);
        return;
    }
    pthread_mutex_lock(&a->pool_mu);
    if (a->nidle < CF_AUDITSVC_STORE_POOL) {
        a->idle[a->nidle++] = *h;
        h->log = NULL;
        h->store = NULL;
    }
    pthread_mutex_unlock(&a->pool_mu);
    handle_close(h); /* no-op if pooled */
}

/* ---- tree heads ------------------------------------------------------------------------- */

int cf_auditsvc_sth_refresh(cf_auditsvc *a, cf_audit_log *log, cf_audit_sth *ret, bool *ret_signed)
{
    cf_audit_sth cur, made;
    uint8_t root[CF_MERKLE_HASH_LEN];
    uint64_t size = 0;
    bool have = false, sign = false;
    int rc;

    memset(&cur, 0, sizeof(cur));
    pthread_mutex_lock(&a->sign_mu);
    rc = cf_audit_sth_latest(log, &cur);
    if (rc != 0 && rc != CF_E_NOT_FOUND)
        goto out;
    have = rc == 0;
    CF_GUARD_OUT(cf_audit_tree_size(log, &size));
    if (!have) {
        sign = true;
    } else if (size < cur.size) {
        char a1[24], a2[24];
        if (cf_fmt(a1, sizeof(a1), "%llu", (unsigned long long)size) != 0 ||
            cf_fmt(a2, sizeof(a2), "%llu", (unsigned long long)cur.size) != 0)
            a1[0] = a2[0] = '\0';
        /* Signing now would sign a rollback: leave the evidence as it is. */
        cf_log(CF_LOG_ERROR, "audit.sth_refused", "reason", "the log is smaller than its latest signed tree head",
               "tree_size", a1, "sth_size", a2, NULL);
    } else if (size > cur.size) {
        /* Self-check before extending the signed history: the stored hashes must
         * still give the latest head's root (RFC 6962 §2.1: MTH of its prefix). */
        CF_GUARD_OUT(cf_audit_root(log, cur.size, root));
        if (cf_ct_eq(root, cur.root, sizeof(root)))
            sign = true;
        else
            cf_log(CF_LOG_ERROR, "audit.sth_refused",
                   "reason", "the stored tree no longer gives the root of the latest signed tree head", NULL);
    }
    if (sign) {
        CF_GUARD_OUT(cf_audit_sth_create(log, a->key, &made));
        cur = made;
    }
    *ret = cur;
    *ret_signed = sign;
    rc = 0;
out:
    pthread_mutex_unlock(&a->sign_mu);
    return rc;
}

static void sign_once(cf_auditsvc *a)
{
    cf_auditsvc_handle h = {NULL, NULL};
    cf_audit_sth sth;
    bool made = false;
    int rc = cf_auditsvc_get(a, &h);

    if (rc == 0)
        rc = cf_auditsvc_sth_refresh(a, h.log, &sth, &made);
    cf_auditsvc_put(a, &h, rc);
    if (rc != 0) {
        cf_log(CF_LOG_ERROR, "audit.sth_failed", "reason", cf_err_detail(rc), NULL);
    } else if (made) {
        char size[24], id[24];
        if (cf_fmt(size, sizeof(size), "%llu", (unsigned long long)sth.size) != 0 ||
            cf_fmt(id, sizeof(id), "%lld", (long long)sth.id) != 0)
            return;
        cf_log(CF_LOG_DEBUG, "audit.sth_signed", "id", id, "size", size, NULL);
    }
}

static void *sth_main(void *arg)
{
    cf_auditsvc *a = arg;

    pthread_mutex_lock(&a->th_mu);
    while (!a->th_stop) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += (time_t)a->interval_s;
        while (!a->th_stop && pthread_cond_timedwait(&a->th_cv, &a->th_mu, &until) != ETIMEDOUT)
            ;
        if (a->th_stop)
            break;
        pthread_mutex_unlock(&a->th_mu);
        sign_once(a);
        pthread_mutex_lock(&a->th_mu);
    }
    pthread_mutex_unlock(&a->th_mu);
    return NULL;
}

int cf_auditsvc_start(cf_auditsvc *a)
{
    if (a->interval_s == 0 || a->th_running)
        return 0;
    a->th_stop = false;
    CF_ENSURE(pthread_create(&a->th, NULL, sth_main, a) == 0, CF_E_NOMEM);
    a->th_running = true;
    return 0;
}

void cf_auditsvc_stop(cf_auditsvc *a)
{
    if (!a->th_running)
        return;
    pthread_mutex_lock(&a->th_mu);
    a->th_stop = true;
    pthread_cond_broadcast(&a->th_cv);
    pthread_mutex_unlock(&a->th_mu);
    pthread_join(a->th, NULL);
    a->th_running = false;
}

/* ---- own events ---------------------------------------------------------------------------- */

int cf_auditsvc_own_events(cf_auditsvc *a)
{
    CF_ENSURE(a->svc != NULL, CF_E_INVAL);
    if (a->sink.log == NULL)
        CF_GUARD(handle_open(a->dsn, &a->sink));
    return cf_svc_set_audit_sink(a->svc, cf_audit_send_local, a->sink.log);
}

/* ---- life cycle ------------------------------------------------------------------------------ */

const cf_key *cf_auditsvc_public_key(const cf_auditsvc *a) { return a->pub; }
const char *cf_auditsvc_key_id(const cf_auditsvc *a) { return a->key_id; }
cf_svc *cf_auditsvc_svc(const cf_auditsvc *a) { return a->svc; }

int cf_auditsvc_open(const cf_auditsvc_opts *o, cf_auditsvc **ret)
{
    cf_auditsvc *a;
    cf_auditsvc_handle h = {NULL, NULL};
    int rc;

    CF_ENSURE(o != NULL && o->store_dsn != NULL && o->hsm != NULL, CF_E_INVAL);
    a = calloc(1, sizeof(*a));
    CF_ENSURE(a != NULL, CF_E_NOMEM);
    pthread_mutex_init(&a->pool_mu, NULL);
    pthread_mutex_init(&a->sign_mu, NULL);
    pthread_mutex_init(&a->th_mu, NULL);
    pthread_cond_init(&a->th_cv, NULL);
    a->svc = o->svc;
    a->interval_s = o->sth_interval_s;
    CF_GUARD_OUT(cf_fmt(a->dsn, sizeof(a->dsn), "%s", o->store_dsn));
    CF_GUARD_OUT(handle_open(a->dsn, &h));
    CF_GUARD_OUT(cf_auditsvc_key_load(h.store, o->hsm, &a->key));
    CF_GUARD_OUT(cf_key_public_only(a->key, &a->pub));
    CF_GUARD_OUT(cf_key_thumbprint(a->key, a->key_id));
    {
        cf_audit_sth sth;
        bool made = false;
        CF_GUARD_OUT(cf_auditsvc_sth_refresh(a, h.log, &sth, &made));
    }
    cf_auditsvc_put(a, &h, 0);
    *ret = a;
    a = NULL;
    rc = 0;
out:
    if (a != NULL) {
        handle_close(&h);
        cf_auditsvc_close(a);
    }
    return rc;
}

void cf_auditsvc_close(cf_auditsvc *a)
{
    if (a == NULL)
        return;
    cf_auditsvc_stop(a);
    for (size_t i = 0; i < a->nidle; i++)
        handle_close(&a->idle[i]);
    handle_close(&a->sink);
    cf_key_free(a->key);
    cf_key_free(a->pub);
    pthread_mutex_destroy(&a->pool_mu);
    pthread_mutex_destroy(&a->sign_mu);
    pthread_mutex_destroy(&a->th_mu);
    pthread_cond_destroy(&a->th_cv);
    free(a);
}
