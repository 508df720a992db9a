/*
 * Counters and histograms behind one mutex (metrics.h). Each update is a few
 * additions; the lock is held for nanoseconds, which is cheaper than per-field
 * atomics for the histogram (bucket + sum + count must move together for a
 * consistent scrape).
 */
#include "gateway/metrics.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/limits.h"

/* Upper bounds in seconds (Prometheus client default buckets). */
static const double bounds[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
#define NBOUNDS (sizeof(bounds) / sizeof(bounds[0]))
#define OTHER "other"

struct code_count {
    int code; /* 0 = "other" (more distinct codes than we keep) */
    uint64_t n;
};

struct route_stats {
    const char *label;
    struct code_count codes[CF_GW_METRIC_MAX_CODES + 1];
    size_t ncodes;
    uint64_t buckets[NBOUNDS]; /* non-cumulative; summed when rendered */
    uint64_t count;
    double sum;
};

struct cf_gw_metrics {
    pthread_mutex_t mu;
    struct route_stats *routes; /* nroutes + 1: the last one is "other" */
    size_t nroutes;
    const char *const *upstreams;
    uint64_t *upstream_errors; /* nupstreams + 1 */
    size_t nupstreams;
    uint64_t rate_limited;
};

int cf_gw_metrics_new(const char *const *routes, size_t nroutes, const char *const *upstreams,
                      size_t nupstreams, cf_gw_metrics **ret)
{
    cf_gw_metrics *m;
    int rc = 0;

    CF_ENSURE(ret != NULL && (routes != NULL || nroutes == 0) &&
                  (upstreams != NULL || nupstreams == 0),
              CF_E_INVAL);
    m = calloc(1, sizeof(*m));
    CF_ENSURE(m != NULL, CF_E_NOMEM);
    CF_ENSURE_OUT(pthread_mutex_init(&m->mu, NULL) == 0, CF_E_NOMEM);
    m->routes = calloc(nroutes + 1, sizeof(*m->routes));
    m->upstream_errors = calloc(nupstreams + 1, sizeof(*m->upstream_errors));
    CF_ENSURE_OUT(m->routes != NULL && m->upstream_errors != NULL, CF_E_NOMEM);
    for (size_t i = 0; i < nroutes; i++)
        m->routes[i].label = routes[i];
    m->routes[nroutes].label = OTHER;
    m->nroutes = nroutes;
    m->upstreams = upstreams;
    m->nupstreams = nupstreams;
    *ret = m;
    m = NULL;
out:
    if (m != NULL) {
        free(m->routes);
        free(m->upstream_errors);
        free(m);
    }
    return rc;
}

void cf_gw_metrics_free(cf_gw_metrics *m)
{
    if (m == NULL)
        return;
    pthread_mutex_destroy(&m->mu);
    free(m->routes);
    free(m->upstream_errors);
    free(m);
}

static struct route_stats *route_of(cf_gw_metrics *m, const char *route)
{
    for (size_t i = 0; i < m->nroutes; i++)
        if (strcmp(m->routes[i].label, route) == 0)
            return &m->routes[i];
    return &m->routes[m->nroutes];
}

static uint64_t *code_slot(struct route_stats *r, int status)
{
    for (size_t i = 0; i < r->ncodes; i++)
        if (r->codes[i].code == status)
            return &r->codes[i].n;
    if (r->ncodes < CF_GW_METRIC_MAX_CODES) {
        r->codes[r->ncodes].code = status;
        return &r->codes[r->ncodes++].n;
    }
    return &r->codes[CF_GW_METRIC_MAX_CODES].n; /* "other" */
}

void cf_gw_metrics_observe(cf_gw_metrics *m, const char *route, int status, double seconds)
{
    struct route_stats *r;
    size_t b = 0;

    if (m == NULL || route == NULL || status < 100 || status > 599)
        return; /* no response was sent (connection dropped): not a request outcome */
    if (!(seconds >= 0))
        seconds = 0;
    while (b < NBOUNDS && seconds > bounds[b])
        b++;
    pthread_mutex_lock(&m->mu);
    r = route_of(m, route);
    (*code_slot(r, status))++;
    if (b < NBOUNDS)
        r->buckets[b]++;
    r->count++;
    r->sum += seconds;
    pthread_mutex_unlock(&m->mu);
}

void cf_gw_metrics_upstream_error(cf_gw_metrics *m, const char *upstream)
{
    size_t i;

    if (m == NULL || upstream == NULL)
        return;
    for (i = 0; i < m->nupstreams; i++)
        if (strcmp(m->upstreams[i], upstream) == 0)
            break;
    pthread_mutex_lock(&m->mu);
    m->upstream_errors[i]++;
    pthread_mutex_unlock(&m->mu);
}

void cf_gw_metrics_rate_limited(cf_gw_metrics *m)
{
    if (m == NULL)
        return;
    pthread_mutex_lock(&m->mu);
    m->rate_limited++;
    pthread_mutex_unlock(&m->mu);
}

uint64_t cf_gw_metrics_requests(cf_gw_metrics *m, const char *route, int status)
{
    uint64_t v = 0;
    struct route_stats *r;

    pthread_mutex_lock(&m->mu);
    r = route_of(m, route);
    for (size_t i = 0; i < r->ncodes; i++)
        if (r->codes[i].code == status)
            v = r->codes[i].n;
    pthread_mutex_unlock(&m->mu);
    return v;
}

static int render_locked(const cf_gw_metrics *m, cf_buf *out)
{
    CF_GUARD(cf_buf_put_str(out, "# HELP coffer_gateway_requests_total Requests answered, by route "
                                 "pattern and HTTP status code.\n"
                                 "# TYPE coffer_gateway_requests_total counter\n"));
    for (size_t i = 0; i <= m->nroutes; i++) {
        const struct route_stats *r = &m->routes[i];
        for (size_t k = 0; k < r->ncodes; k++)
            CF_GUARD(cf_buf_printf(out, "coffer_gateway_requests_total{route=\"%s\",code=\"%d\"} %llu\n",
                                   r->label, r->codes[k].code,
                                   (unsigned long long)r->codes[k].n));
        if (r->codes[CF_GW_METRIC_MAX_CODES].n > 0)
            CF_GUARD(cf_buf_printf(out, "coffer_gateway_requests_total{route=\"%s\",code=\"other\"} %llu\n",
                                   r->label,
                                   (unsigned long long)r->codes[CF_GW_METRIC_MAX_CODES].n));
    }
    CF_GUARD(cf_buf_put_str(out, "# HELP coffer_gateway_request_duration_seconds Time from request "
                                 "line to response, by route pattern.\n"
                                 "# TYPE coffer_gateway_request_duration_seconds histogram\n"));
    for (size_t i = 0; i <= m->nroutes; i++) {
        const struct route_stats *r = &m->routes[i];
        uint64_t cum = 0;
        if (r->count == 0)
            continue;
        for (size_t b = 0; b < NBOUNDS; b++) {
            cum += r->buckets[b];
            CF_GUARD(cf_buf_printf(out,
                                   "coffer_gateway_request_duration_seconds_bucket{route=\"%s\",le=\"%g\"} %llu\n",
                                   r->label, bounds[b], (unsigned long long)cum));
        }
        CF_GUARD(cf_buf_printf(out,
                               "coffer_gateway_request_duration_seconds_bucket{route=\"%s\",le=\"+Inf\"} %llu\n"
                               "coffer_gateway_request_duration_seconds_sum{route=\"%s\"} %.6f\n"
                               "coffer_gateway_request_duration_seconds_count{route=\"%s\"} %llu\n",
                               r->label, (unsigned long long)r->count, r->label, r->sum, r->label,
                               (unsigned long long)r->count));
    }
    CF_GUARD(cf_buf_put_str(out, "# HELP coffer_gateway_upstream_errors_total Failed calls to "
                                 "upstream services and TEEs (transport errors and 5xx).\n"
                                 "# TYPE coffer_gateway_upstream_errors_total counter\n"));
    for (size_t i = 0; i < m->nupstreams; i++)
        CF_GUARD(cf_buf_printf(out, "coffer_gateway_upstream_errors_total{upstream=\"%s\"} %llu\n",
                               m->upstreams[i], (unsigned long long)m->upstream_errors[i]));
    if (m->upstream_errors[m->nupstreams] > 0)
        CF_GUARD(cf_buf_printf(out, "coffer_gateway_upstream_errors_total{upstream=\"other\"} %llu\n",
                               (unsigned long long)m->upstream_errors[m->nupstreams]));
    CF_GUARD(cf_buf_printf(out,
                           "# HELP coffer_gateway_rate_limited_total Requests refused with 429 "
                           "(rate or concurrency limit).\n"
                           "# TYPE coffer_gateway_rate_limited_total counter\n"
                           "coffer_gateway_rate_limited_total %llu\n",
                           (unsigned long long)m->rate_limited));
    return 0;
}

int cf_gw_metrics_render(cf_gw_metrics *m, cf_buf *out)
{
    int rc;

    CF_ENSURE(m != NULL && out != NULL, CF_E_INVAL);
    pthread_mutex_lock(&m->mu);
    rc = render_locked(m, out);
    pthread_mutex_unlock(&m->mu);
    return rc;
}
