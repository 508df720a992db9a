#include "iam/ratelimit.h"

#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/limits.h"
#include "crypto/hash.h"

_Static_assert(CF_IAM_RL_SLOTS >= 2 && (CF_IAM_RL_SLOTS & (CF_IAM_RL_SLOTS - 1)) == 0,
               "slot count is a power of two");

int cf_iam_rl_init(cf_iam_rl *rl)
{
    memset(rl, 0, sizeof(*rl));
    rl->slots = calloc(CF_IAM_RL_SLOTS, sizeof(*rl->slots));
    CF_ENSURE(rl->slots != NULL, CF_E_NOMEM);
    if (cf_random(&rl->seed, sizeof(rl->seed)) != 0) {
        free(rl->slots);
        rl->slots = NULL;
        return CF_E_CRYPTO;
    }
    rl->max_fails = CF_IAM_RL_MAX_FAILS;
    rl->unknown_max = CF_IAM_RL_UNKNOWN_MAX;
    rl->window = CF_IAM_RL_WINDOW_S;
    pthread_mutex_init(&rl->mu, NULL);
    return 0;
}

void cf_iam_rl_destroy(cf_iam_rl *rl)
{
    if (rl->slots == NULL)
        return;
    free(rl->slots);
    rl->slots = NULL;
    pthread_mutex_destroy(&rl->mu);
}

/* First slot of the two-way set for key_id (FNV-1a under a random seed). */
static size_t set_of(const cf_iam_rl *rl, const char *key_id)
{
    uint64_t h = 0xcbf29ce484222325ull ^ rl->seed;

    for (const char *p = key_id; *p != '\0'; p++) {
        h ^= (uint8_t)*p;
        h *= 0x100000001b3ull;
    }
    h ^= h >> 31;
    return (size_t)(h & (CF_IAM_RL_SLOTS / 2 - 1)) * 2;
}

static cf_iam_rl_slot *find(cf_iam_rl *rl, const char *key_id)
{
    size_t b;

    if (key_id == NULL)
        return &rl->unknown;
    b = set_of(rl, key_id);
    for (size_t i = b; i < b + 2; i++)
        if (strcmp(rl->slots[i].key_id, key_id) == 0)
            return &rl->slots[i];
    return NULL;
}

static bool expired(const cf_iam_rl *rl, const cf_iam_rl_slot *s, int64_t now)
{
    return now - s->window_start >= (int64_t)rl->window || now < s->window_start;
}

int cf_iam_rl_check(cf_iam_rl *rl, const char *key_id, int64_t now, uint32_t *ret_retry_after,
                    bool *ret_first)
{
    cf_iam_rl_slot *s;
    uint32_t limit = key_id == NULL ? rl->unknown_max : rl->max_fails;
    int rc = 0;

    pthread_mutex_lock(&rl->mu);
    s = find(rl, key_id);
    if (s != NULL && !expired(rl, s, now) && s->fails >= limit) {
        if (ret_retry_after != NULL)
            *ret_retry_after = (uint32_t)(s->window_start + rl->window - now);
        if (ret_first != NULL)
            *ret_first = !s->refusal_seen;
        s->refusal_seen = true;
        rc = cf_err_set(CF_E_RATE_LIMITED,
                        key_id != NULL ? "too many failed attempts for API key %s: try again later"
                                       : "too many failed attempts with unknown API keys: try again later%s",
                        key_id != NULL ? key_id : "");
    }
    pthread_mutex_unlock(&rl->mu);
    return rc;
}

void cf_iam_rl_fail(cf_iam_rl *rl, const char *key_id, int64_t now)
{
    cf_iam_rl_slot *s;

    pthread_mutex_lock(&rl->mu);
    s = find(rl, key_id);
    if (s == NULL) {
        /* Take a free or stale slot of the set, else the one with the older window. */
        size_t b = set_of(rl, key_id);
        cf_iam_rl_slot *a = &rl->slots[b], *c = &rl->slots[b + 1];
        if (a->key_id[0] == '\0' || expired(rl, a, now))
            s = a;
        else if (c->key_id[0] == '\0' || expired(rl, c, now))
            s = c;
        else
            s = a->window_start <= c->window_start ? a : c;
        memset(s, 0, sizeof(*s));
        memcpy(s->key_id, key_id, CF_MIN(strlen(key_id), (size_t)CF_IAM_KEY_ID_LEN));
        s->window_start = now;
    } else if (expired(rl, s, now)) {
        s->window_start = now;
        s->fails = 0;
        s->refusal_seen = false;
    }
    if (s->fails < UINT32_MAX)
        s->fails++;
    pthread_mutex_unlock(&rl->mu);
}

void cf_iam_rl_success(cf_iam_rl *rl, const char *key_id)
{
    cf_iam_rl_slot *s;

    pthread_mutex_lock(&rl->mu);
    s = find(rl, key_id);
    if (s != NULL && key_id != NULL)
        memset(s, 0, sizeof(*s));
    pthread_mutex_unlock(&rl->mu);
}
