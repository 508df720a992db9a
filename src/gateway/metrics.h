/*
 * Gateway metrics in the Prometheus text exposition format 0.0.4
 * (https://prometheus.io/docs/instrumenting/exposition_formats/):
 *
 *   coffer_gateway_requests_total{route,code}          counter
 *   coffer_gateway_request_duration_seconds{route}     histogram
 *   coffer_gateway_upstream_errors_total{upstream}     counter
 *   coffer_gateway_rate_limited_total                  counter
 *
 * Route and upstream label values are fixed at creation (route patterns such
 * as "/v1/jobs/{job}", or a proxied prefix ending in a "*" segment; never
 * request paths), so that the series
 * stay bounded and carry no ids); an unknown one is counted under "other".
 * Status codes per route are bounded by CF_GW_METRIC_MAX_CODES (then "other").
 *
 * Thread-safety: all functions may be called from any thread.
 */
#ifndef COFFER_GATEWAY_METRICS_H
#define COFFER_GATEWAY_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/compiler.h"

#define CF_GW_METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

typedef struct cf_gw_metrics cf_gw_metrics;

/* routes / upstreams: label values (borrowed: must outlive the object), made of
 * characters that need no escaping in a label value (no '"', '\\', newline). */
int cf_gw_metrics_new(const char *const *routes, size_t nroutes, const char *const *upstreams,
                      size_t nupstreams, cf_gw_metrics **ret) CF_WUR;
void cf_gw_metrics_free(cf_gw_metrics *m);

void cf_gw_metrics_observe(cf_gw_metrics *m, const char *route, int status, double seconds);
void cf_gw_metrics_upstream_error(cf_gw_metrics *m, const char *upstream);
void cf_gw_metrics_rate_limited(cf_gw_metrics *m);

/* Appends the exposition text. */
int cf_gw_metrics_render(cf_gw_metrics *m, cf_buf *out) CF_WUR;

/* Current value of a request counter (for tests). */
uint64_t cf_gw_metrics_requests(cf_gw_metrics *m, const char *route, int status);

#endif
