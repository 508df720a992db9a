/*
 * Failed-attempt limiter of the token endpoint (docs/internals/iam.md "Online
 * guessing"). Bounded memory: CF_IAM_RL_SLOTS counters for key ids that EXIST
 * (a two-way set-associative table under a random hash seed, so chosen ids
 * cannot target one set), plus one shared counter for attempts whose key id is
 * unknown or whose key is malformed. Flooding with made-up ids therefore only
 * exhausts the shared counter, which legitimate keys never use, and cannot
 * evict the counter of a real key.
 *
 * A key id with CF_IAM_RL_MAX_FAILS failures within CF_IAM_RL_WINDOW_S is
 * refused (whatever the secret) until its window ends; a success resets it.
 * Thread-safe.
 */
#ifndef COFFER_IAM_RATELIMIT_H
#define COFFER_IAM_RATELIMIT_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "base/compiler.h"
#include "iam/iam.h"

typedef struct {
    char key_id[CF_IAM_KEY_ID_LEN + 1]; /* "" = free */
    int64_t window_start;
    uint32_t fails;
    bool refusal_seen; /* a refusal was already reported in this window */
} cf_iam_rl_slot;

typedef struct {
    pthread_mutex_t mu;
    cf_iam_rl_slot *slots; /* CF_IAM_RL_SLOTS */
    uint64_t seed;
    cf_iam_rl_slot unknown; /* shared counter for unknown / malformed key ids */
    uint32_t max_fails, unknown_max, window;
} cf_iam_rl;

int cf_iam_rl_init(cf_iam_rl *rl) CF_WUR;
void cf_iam_rl_destroy(cf_iam_rl *rl);
/* 0 if an attempt for key_id (NULL = the unknown bucket) may proceed at now;
 * CF_E_RATE_LIMITED otherwise, with *ret_retry_after (seconds until the window
 * ends) and *ret_first (true for the first refusal in this window: report it
 * once instead of for every attempt of a flood). Outputs may be NULL. */
int cf_iam_rl_check(cf_iam_rl *rl, const char *key_id, int64_t now, uint32_t *ret_retry_after,
                    bool *ret_first) CF_WUR;
/* Counts one failure for key_id (NULL = unknown bucket). */
void cf_iam_rl_fail(cf_iam_rl *rl, const char *key_id, int64_t now);
/* A successful exchange: forgets the key id's failures. */
void cf_iam_rl_success(cf_iam_rl *rl, const char *key_id);

#endif
