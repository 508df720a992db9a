/*
 * Token buckets with bounded memory (ratelimit.h).
 *
 * Layout: a fixed pool of entries allocated once, a chained hash table over it
 * (bucket heads and chain links are pool indices), and a doubly-linked LRU
 * list (head = most recently used) that picks eviction victims. The hash is
 * FNV-1a over a per-process random seed, so that nobody can choose keys (source
 * addresses) that all land in one chain.
 */
#include "gateway/ratelimit.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/err.h"
#include "base/limits.h"
#include "crypto/hash.h"

#define NIL UINT32_MAX
/* LRU entries looked at for an idle victim before refusing a new key. */
#define EVICT_PROBE 8

struct entry {
    char key[CF_GW_BUCKET_KEY_MAX + 1];
    double tokens;
    uint64_t last_ms;
    uint32_t inflight;
    uint32_t hnext;      /* hash chain, or free list */
    uint32_t prev, next; /* LRU list */
    bool used;
};

struct cf_gw_limiter {
    pthread_mutex_t mu;
    struct entry *e;
    uint32_t max, count;
    uint32_t *heads;
    uint32_t mask;
    uint32_t free_head;
    uint32_t lru_head, lru_tail;
    uint64_t seed;
};

uint64_t cf_gw_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static uint32_t hash_key(const cf_gw_limiter *l, const char *k, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull ^ l->seed;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)k[i];
        h *= 0x100000001b3ull;
    }
    h ^= h >> 29;
    return (uint32_t)h & l->mask;
}

int cf_gw_limiter_new(size_t max_buckets, cf_gw_limiter **ret)
{
    cf_gw_limiter *l;
    size_t tsize = 1;
    int rc = 0;

    CF_ENSURE(ret != NULL && max_buckets >= 1 && max_buckets <= CF_GW_MAX_BUCKETS, CF_E_INVAL);
    while (tsize < 2 * max_buckets)
        tsize <<= 1;
    l = calloc(1, sizeof(*l));
    CF_ENSURE(l != NULL, CF_E_NOMEM);
    CF_ENSURE_OUT(pthread_mutex_init(&l->mu, NULL) == 0, CF_E_NOMEM);
    l->e = calloc(max_buckets, sizeof(*l->e));
    l->heads = malloc(tsize * sizeof(*l->heads));
    CF_ENSURE_OUT(l->e != NULL && l->heads != NULL, CF_E_NOMEM);
    CF_GUARD_OUT(cf_random(&l->seed, sizeof(l->seed)));
    for (size_t i = 0; i < tsize; i++)
        l->heads[i] = NIL;
    for (size_t i = 0; i < max_buckets; i++)
        l->e[i].hnext = i + 1 < max_buckets ? (uint32_t)(i + 1) : NIL;
    l->free_head = 0;
    l->max = (uint32_t)max_buckets;
    l->mask = (uint32_t)(tsize - 1);
    l->lru_head = l->lru_tail = NIL;
    *ret = l;
    l = NULL;
out:
    if (l != NULL) {
        free(l->e);
        free(l->heads);
        free(l);
    }
    return rc;
}

void cf_gw_limiter_free(cf_gw_limiter *l)
{
    if (l == NULL)
        return;
    pthread_mutex_destroy(&l->mu);
    free(l->e);
    free(l->heads);
    free(l);
}

static void lru_unlink(cf_gw_limiter *l, uint32_t i)
{
    struct entry *x = &l->e[i];
    if (x->prev != NIL)
        l->e[x->prev].next = x->next;
    else
        l->lru_head = x->next;
    if (x->next != NIL)
        l->e[x->next].prev = x->prev;
    else
        l->lru_tail = x->prev;
    x->prev = x->next = NIL;
}

static void lru_push_head(cf_gw_limiter *l, uint32_t i)
{
    struct entry *x = &l->e[i];
    x->prev = NIL;
    x->next = l->lru_head;
    if (l->lru_head != NIL)
        l->e[l->lru_head].prev = i;
    l->lru_head = i;
    if (l->lru_tail == NIL)
        l->lru_tail = i;
}

static uint32_t find(const cf_gw_limiter *l, const char *key, size_t n, uint32_t h)
{
    for (uint32_t i = l->heads[h]; i != NIL; i = l->e[i].hnext)
        if (strncmp(l->e[i].key, key, n + 1) == 0)
            return i;
    return NIL;
}

static void remove_entry(cf_gw_limiter *l, uint32_t i)
{
    struct entry *x = &l->e[i];
    uint32_t h = hash_key(l, x->key, strlen(x->key));
    uint32_t *pp = &l->heads[h];

    while (*pp != NIL && *pp != i)
        pp = &l->e[*pp].hnext;
    if (*pp == i)
        *pp = x->hnext;
    lru_unlink(l, i);
    memset(x, 0, sizeof(*x));
    x->hnext = l->free_head;
    l->free_head = i;
    l->count--;
}

/* A fresh entry for key (full bucket), evicting an idle one if the pool is full. */
static uint32_t insert(cf_gw_limiter *l, const char *key, size_t n, uint32_t h,
                       const cf_gw_limit *lim, uint64_t now_ms)
{
    uint32_t i;
    struct entry *x;

    if (l->free_head == NIL) {
        uint32_t v = l->lru_tail;
        for (int k = 0; k < EVICT_PROBE && v != NIL && l->e[v].inflight > 0; k++)
            v = l->e[v].prev;
        if (v == NIL || l->e[v].inflight > 0)
            return NIL;
        remove_entry(l, v);
        h = hash_key(l, key, n); /* unchanged, but keep the invariant obvious */
    }
    i = l->free_head;
    x = &l->e[i];
    l->free_head = x->hnext;
    memcpy(x->key, key, n + 1);
    x->tokens = (double)lim->burst;
    x->last_ms = now_ms;
    x->inflight = 0;
    x->used = true;
    x->hnext = l->heads[h];
    l->heads[h] = i;
    x->prev = x->next = NIL;
    lru_push_head(l, i);
    l->count++;
    return i;
}

static uint32_t seconds_until_token(double tokens, uint32_t rps)
{
    double need = (1.0 - tokens) / (double)rps;
    uint32_t s;

    if (!(need > 0.0))
        return 1;
    if (need >= (double)CF_GW_MAX_RETRY_AFTER)
        return CF_GW_MAX_RETRY_AFTER;
    s = (uint32_t)need; /* rounded up: Retry-After must not promise a token too early */
    if ((double)s < need)
        s++;
    return s < 1 ? 1 : s;
}

int cf_gw_limiter_acquire(cf_gw_limiter *l, const char *key, const cf_gw_limit *lim,
                          uint64_t now_ms, uint32_t *ret_retry_after)
{
    size_t n;
    uint32_t h, i, retry = 0;
    struct entry *x;
    int rc = 0;

    CF_ENSURE(l != NULL && key != NULL && lim != NULL && ret_retry_after != NULL, CF_E_INVAL);
    CF_ENSURE(lim->rps >= 1 && lim->burst >= 1, CF_E_INVAL);
    n = strnlen(key, CF_GW_BUCKET_KEY_MAX + 1);
    CF_ENSURE(n >= 1 && n <= CF_GW_BUCKET_KEY_MAX, CF_E_INVAL);

    pthread_mutex_lock(&l->mu);
    h = hash_key(l, key, n);
    i = find(l, key, n, h);
    if (i == NIL) {
        i = insert(l, key, n, h, lim, now_ms);
        if (i == NIL) {
            retry = 1;
            rc = cf_err_set(CF_E_RATE_LIMITED, "too many clients: try again shortly");
            goto out;
        }
    } else {
        lru_unlink(l, i);
        lru_push_head(l, i);
    }
    x = &l->e[i];
    if (now_ms > x->last_ms) {
        x->tokens += (double)(now_ms - x->last_ms) * (double)lim->rps / 1000.0;
        x->last_ms = now_ms;
    }
    if (x->tokens > (double)lim->burst)
        x->tokens = (double)lim->burst;
    if (lim->concurrency > 0 && x->inflight >= lim->concurrency) {
        retry = 1;
        rc = cf_err_set(CF_E_RATE_LIMITED, "too many concurrent requests (at most %u)",
                        lim->concurrency);
        goto out;
    }
    if (x->tokens < 1.0) {
        retry = seconds_until_token(x->tokens, lim->rps);
        rc = cf_err_set(CF_E_RATE_LIMITED, "rate limit exceeded (%u requests per second)",
                        lim->rps);
        goto out;
    }
    x->tokens -= 1.0;
    if (lim->concurrency > 0)
        x->inflight++;
out:
    pthread_mutex_unlock(&l->mu);
    if (rc != 0)
        *ret_retry_after = retry;
    return rc;
}

void cf_gw_limiter_release(cf_gw_limiter *l, const char *key)
{
    size_t n;
    uint32_t i;

    if (l == NULL || key == NULL)
        return;
    n = strnlen(key, CF_GW_BUCKET_KEY_MAX + 1);
    if (n == 0 || n > CF_GW_BUCKET_KEY_MAX)
        return;
    pthread_mutex_lock(&l->mu);
    i = find(l, key, n, hash_key(l, key, n));
    if (i != NIL && l->e[i].inflight > 0)
        l->e[i].inflight--;
    pthread_mutex_unlock(&l->mu);
}

size_t cf_gw_limiter_count(cf_gw_limiter *l)
{
    size_t n;
    pthread_mutex_lock(&l->mu);
    n = l->count;
    pthread_mutex_unlock(&l->mu);
    return n;
}

uint32_t cf_gw_limiter_inflight(cf_gw_limiter *l, const char *key)
{
    size_t n = strnlen(key, CF_GW_BUCKET_KEY_MAX + 1);
    uint32_t i, v = 0;

    if (n == 0 || n > CF_GW_BUCKET_KEY_MAX)
        return 0;
    pthread_mutex_lock(&l->mu);
    i = find(l, key, n, hash_key(l, key, n));
    if (i != NIL)
        v = l->e[i].inflight;
    pthread_mutex_unlock(&l->mu);
    return v;
}
