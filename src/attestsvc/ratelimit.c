#include "attestsvc/ratelimit.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/limits.h"
#include "crypto/hash.h"

/* Tokens are kept in milli-tokens so that refill is exact in integers. */
typedef struct {
    bool used;
    char key[CF_ATTESTSVC_RATE_KEY_MAX + 1];
    uint64_t milli; /* current tokens * 1000 */
    uint64_t last_ms;
} bucket;

struct cf_ratelimit {
    pthread_mutex_t mu;
    uint64_t rate, burst;
    uint8_t hkey[32];
    bucket slots[CF_ATTESTSVC_RATE_SLOTS];
};

int cf_ratelimit_new(uint32_t rate, uint32_t burst, cf_ratelimit **ret)
{
    cf_ratelimit *rl;

    CF_ENSURE(rate > 0 && burst > 0, cf_err_set(CF_E_INVAL, "rate and burst must be positive"));
    rl = calloc(1, sizeof(*rl));
    CF_ENSURE(rl != NULL, CF_E_NOMEM);
    if (cf_random(rl->hkey, sizeof(rl->hkey)) != 0) {
        free(rl);
        return CF_E_CRYPTO;
    }
    pthread_mutex_init(&rl->mu, NULL);
    rl->rate = rate;
    rl->burst = burst;
    *ret = rl;
    return 0;
}

void cf_ratelimit_free(cf_ratelimit *rl)
{
    if (rl == NULL)
        return;
    pthread_mutex_destroy(&rl->mu);
    free(rl);
}

static size_t slot_of(const cf_ratelimit *rl, const char *key)
{
    uint8_t mac[CF_SHA256_LEN];
    uint64_t h = 0;

    /* Keyed, so that the slot of an address cannot be predicted from outside. */
    if (cf_hmac(CF_SHA256, rl->hkey, sizeof(rl->hkey), (const uint8_t *)key, strlen(key), mac) != 0)
        return 0;
    for (int i = 0; i < 8; i++)
        h = (h << 8) | mac[i];
    return (size_t)(h % CF_ATTESTSVC_RATE_SLOTS);
}

static void refill(const cf_ratelimit *rl, bucket *b, uint64_t now_ms)
{
    uint64_t cap = rl->burst * 1000;

    if (now_ms > b->last_ms) {
        uint64_t add = (now_ms - b->last_ms) * rl->rate; /* milli-tokens */
        b->milli = add >= cap - b->milli ? cap : b->milli + add;
        b->last_ms = now_ms;
    }
}

bool cf_ratelimit_take(cf_ratelimit *rl, const char *source, uint64_t now_ms, uint32_t *ret_retry_s)
{
    char key[CF_ATTESTSVC_RATE_KEY_MAX + 1];
    size_t start, victim = SIZE_MAX;
    bucket *b = NULL;
    bool ok;
    size_t n = source ? strnlen(source, CF_ATTESTSVC_RATE_KEY_MAX) : 0;

    /* Longer keys are truncated: a source key is an address literal. */
    if (n > 0)
        memcpy(key, source, n);
    key[n] = '\0';
    start = slot_of(rl, key);
    pthread_mutex_lock(&rl->mu);
    for (size_t i = 0; i < CF_ATTESTSVC_RATE_PROBE; i++) {
        size_t j = (start + i) % CF_ATTESTSVC_RATE_SLOTS;
        bucket *c = &rl->slots[j];
        if (c->used && strcmp(c->key, key) == 0) {
            b = c;
            break;
        }
        if (!c->used) {
            if (victim == SIZE_MAX || rl->slots[victim].used)
                victim = j;
        } else if (victim == SIZE_MAX || (rl->slots[victim].used && c->last_ms < rl->slots[victim].last_ms)) {
            victim = j;
        }
    }
    if (b == NULL) {
        b = &rl->slots[victim];
        b->used = true;
        memcpy(b->key, key, sizeof(key));
        b->milli = rl->burst * 1000;
        b->last_ms = now_ms;
    }
    refill(rl, b, now_ms);
    ok = b->milli >= 1000;
    if (ok) {
        b->milli -= 1000;
    } else if (ret_retry_s != NULL) {
        uint64_t need_ms = ((1000 - b->milli) + rl->rate - 1) / rl->rate;
        *ret_retry_s = (uint32_t)(need_ms / 1000 + 1);
    }
    pthread_mutex_unlock(&rl->mu);
    return ok;
}
