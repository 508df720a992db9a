/*
 * Per-source rate limiting of the public attestation endpoints, in bounded
 * memory: a fixed table of CF_ATTESTSVC_RATE_SLOTS token buckets (rate r per
 * second, capacity b), allocated once. A source (its IP address literal) is
 * hashed with HMAC-SHA256 under a per-process random key (so a client
 * cannot aim at chosen slots) to a start slot;
 * CF_ATTESTSVC_RATE_PROBE slots are probed for its bucket, and a new source
 * takes a free slot or evicts the probed bucket that was used least recently.
 * Memory never grows; the price is that an attacker with very many addresses
 * can evict other sources' buckets, which gives each evicted source a fresh
 * (full) bucket — never a refusal it did not earn.
 *
 * Thread-safety: all functions may be called from several threads (one mutex).
 */
#ifndef COFFER_ATTESTSVC_RATELIMIT_H
#define COFFER_ATTESTSVC_RATELIMIT_H

#include <stdbool.h>
#include <stdint.h>

#include "base/compiler.h"

typedef struct cf_ratelimit cf_ratelimit;

/* rate: tokens per second (> 0); burst: bucket capacity (>= 1). */
int cf_ratelimit_new(uint32_t rate, uint32_t burst, cf_ratelimit **ret) CF_WUR;
void cf_ratelimit_free(cf_ratelimit *rl);

/* Takes one token for source at now_ms (a monotonic clock in milliseconds).
 * Returns true if allowed; otherwise false and *ret_retry_s (may be NULL) gets
 * the seconds until a token is available (>= 1). */
bool cf_ratelimit_take(cf_ratelimit *rl, const char *source, uint64_t now_ms, uint32_t *ret_retry_s);

#endif
