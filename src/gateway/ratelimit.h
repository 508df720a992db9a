/*
 * Gateway rate limiting: one token bucket per key ("t:<tenant>" for
 * authenticated callers, "ip:<address>" for anonymous ones) plus an optional
 * cap on the key's requests in flight. Answers are 429 with Retry-After
 * (RFC 6585 §4, RFC 9110 §10.2.3, delta-seconds).
 *
 * Token bucket: a key starts with `burst` tokens; tokens are added at `rps` per
 * second up to `burst`; a request takes one token or is refused, and the
 * refusal says how many whole seconds until a token will be there.
 *
 * Memory is bounded: at most max_buckets keys. A new key beyond that evicts the
 * least recently used key that has nothing in flight (an idle bucket); if the
 * few least recently used keys are all busy the request is refused (fail
 * closed rather than grow).
 *
 * Thread-safety: every function may be called from any thread (one mutex;
 * each call is O(1) expected).
 */
#ifndef COFFER_GATEWAY_RATELIMIT_H
#define COFFER_GATEWAY_RATELIMIT_H

#include <stddef.h>
#include <stdint.h>

#include "base/compiler.h"

typedef struct cf_gw_limiter cf_gw_limiter;

typedef struct {
    uint32_t rps;         /* tokens per second, >= 1 */
    uint32_t burst;       /* bucket size, >= 1 */
    uint32_t concurrency; /* requests in flight per key; 0 = no cap */
} cf_gw_limit;

/* max_buckets: 1..CF_GW_MAX_BUCKETS. */
int cf_gw_limiter_new(size_t max_buckets, cf_gw_limiter **ret) CF_WUR;
/* NULL is accepted. */
void cf_gw_limiter_free(cf_gw_limiter *l);

/*
 * Admits one request for key (1..CF_GW_BUCKET_KEY_MAX bytes) at now_ms (a
 * monotonic clock in milliseconds). 0: admitted, and if lim->concurrency > 0
 * the caller holds a slot that it gives back with cf_gw_limiter_release.
 * CF_E_RATE_LIMITED (detail: "rate limit exceeded" / "too many concurrent
 * requests" / "too many clients") with *ret_retry_after in whole seconds
 * (1..CF_GW_MAX_RETRY_AFTER); nothing is held then.
 */
int cf_gw_limiter_acquire(cf_gw_limiter *l, const char *key, const cf_gw_limit *lim,
                          uint64_t now_ms, uint32_t *ret_retry_after) CF_WUR;
/* Gives back the slot of an admitted request whose limit had a concurrency cap. */
void cf_gw_limiter_release(cf_gw_limiter *l, const char *key);
/* Number of keys held (for tests). */
size_t cf_gw_limiter_count(cf_gw_limiter *l);
/* Requests in flight for key (for tests). */
uint32_t cf_gw_limiter_inflight(cf_gw_limiter *l, const char *key);

/* Monotonic clock in milliseconds. */
uint64_t cf_gw_now_ms(void);

#endif
