#include "base/secmem.h"

#include <openssl/crypto.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include "base/err.h"
#include "base/log.h"

/*
 * Each allocation is a header followed by the user area; the header keeps the
 * requested size (so free wipes exactly what was handed out) and where the
 * block came from.
 *
 * Small secrets (keys, nonces, key-schedule state: the common case) come from a
 * pool of locked, MADV_DONTDUMP slabs split into fixed size classes: one mmap
 * + mlock per 64 KiB slab instead of per allocation. Freed blocks are wiped and
 * kept on a per-class free list (the pool never shrinks; it is bounded by peak
 * use). Larger blocks get their own mapping. In sanitizer builds everything
 * comes from the ordinary heap so that ASan sees overflows.
 */
#define HDR 16u
#define SLAB_BYTES (64u * 1024)
#define SRC_MAP 0xA1u
#define SRC_POOL 0xB2u
#define SRC_HEAP 0xC3u

static const size_t class_size[] = {64, 256, 1024, 4096}; /* including HDR */
#define NCLASS (sizeof(class_size) / sizeof(class_size[0]))

struct free_block {
    struct free_block *next;
};

static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;
static struct free_block *free_list[NCLASS];
static atomic_int warned_mlock;

static int require_mlock(void)
{
    const char *v = getenv("COFFER_REQUIRE_MLOCK");
    return v != NULL && strcmp(v, "1") == 0;
}

static CF_UNUSED size_t map_size(size_t n)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t total = n + HDR;
    return (total + page - 1) / page * page;
}

/* mlock with the documented policy: warn once, or fail if COFFER_REQUIRE_MLOCK=1. */
static int lock_region(void *base, size_t total)
{
    if (mlock(base, total) == 0)
        return 0;
    if (require_mlock())
        return -1;
    if (atomic_exchange(&warned_mlock, 1) == 0)
        cf_log(CF_LOG_WARN, "secmem.mlock_failed", "hint",
               "raise RLIMIT_MEMLOCK or grant CAP_IPC_LOCK; set COFFER_REQUIRE_MLOCK=1 to refuse", NULL);
    return 0;
}

static void set_hdr(uint8_t *base, size_t n, uint8_t src, uint8_t cls)
{
    memcpy(base, &n, sizeof(n));
    base[8] = src;
    base[9] = cls;
}

static CF_UNUSED uint8_t *pool_alloc(unsigned cls)
{
    uint8_t *b = NULL;

    pthread_mutex_lock(&pool_lock);
    if (free_list[cls] == NULL) {
        uint8_t *slab = mmap(NULL, SLAB_BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (slab == MAP_FAILED)
            goto out;
        (void)madvise(slab, SLAB_BYTES, MADV_DONTDUMP);
        if (lock_region(slab, SLAB_BYTES) != 0) {
            munmap(slab, SLAB_BYTES);
            goto out;
        }
        for (size_t off = 0; off + class_size[cls] <= SLAB_BYTES; off += class_size[cls]) {
            struct free_block *fb = (struct free_block *)(void *)(slab + off);
            fb->next = free_list[cls];
            free_list[cls] = fb;
        }
    }
    b = (uint8_t *)free_list[cls];
    free_list[cls] = free_list[cls]->next;
out:
    pthread_mutex_unlock(&pool_lock);
    return b;
}

void *cf_secure_alloc(size_t n)
{
    uint8_t *base;

    if (n == 0 || n > SIZE_MAX / 2)
        return NULL;
#ifdef COFFER_SANITIZE
    base = calloc(1, n + HDR);
    if (base == NULL)
        return NULL;
    (void)lock_region(base, n + HDR);
    set_hdr(base, n, SRC_HEAP, 0);
    return base + HDR;
#else
    for (unsigned c = 0; c < NCLASS; c++) {
        if (n + HDR <= class_size[c]) {
            base = pool_alloc(c);
            if (base == NULL)
                return NULL;
            memset(base, 0, class_size[c]);
            set_hdr(base, n, SRC_POOL, (uint8_t)c);
            return base + HDR;
        }
    }
    size_t total = map_size(n);
    base = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (base == MAP_FAILED)
        return NULL;
    (void)madvise(base, total, MADV_DONTDUMP);
    if (lock_region(base, total) != 0) {
        munmap(base, total);
        return NULL;
    }
    set_hdr(base, n, SRC_MAP, 0);
    return base + HDR;
#endif
}

size_t cf_secure_size(const void *p)
{
    size_t n;

    if (p == NULL)
        return 0;
    memcpy(&n, (const uint8_t *)p - HDR, sizeof(n));
    return n;
}

void cf_secure_free(void *p)
{
    uint8_t *base;
    size_t n;
    uint8_t src, cls;

    if (p == NULL)
        return;
    base = (uint8_t *)p - HDR;
    memcpy(&n, base, sizeof(n));
    src = base[8];
    cls = base[9];
    switch (src) {
    case SRC_HEAP:
        OPENSSL_cleanse(base, n + HDR);
        (void)munlock(base, n + HDR);
        free(base);
        return;
    case SRC_POOL:
        if (cls >= NCLASS)
            abort(); /* corrupted header: never guess with secret memory */
        OPENSSL_cleanse(base, class_size[cls]);
        pthread_mutex_lock(&pool_lock);
        ((struct free_block *)(void *)base)->next = free_list[cls];
        free_list[cls] = (struct free_block *)(void *)base;
        pthread_mutex_unlock(&pool_lock);
        return;
    case SRC_MAP: {
        size_t total = map_size(n);
        OPENSSL_cleanse(base, total);
        (void)munlock(base, total);
        munmap(base, total);
        return;
    }
    default:
        abort(); /* not ours, or a double free */
    }
}

void cf_wipe(void *p, size_t n)
{
    if (p != NULL && n > 0)
        OPENSSL_cleanse(p, n);
}

void cf_freezero(void *p, size_t n)
{
    if (p == NULL)
        return;
    OPENSSL_cleanse(p, n);
    free(p);
}

int cf_ct_eq(const void *a, const void *b, size_t n)
{
    if (n == 0)
        return 1;
    return CRYPTO_memcmp(a, b, n) == 0;
}

void cf_harden_process(void)
{
    struct rlimit rl = {0, 0};

    (void)setrlimit(RLIMIT_CORE, &rl);
    (void)prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
}

int cf_secret_new(cf_secret *s, size_t len)
{
    uint8_t *p = cf_secure_alloc(len);

    if (p == NULL)
        return CF_E_NOMEM;
    s->p = p;
    s->len = len;
    return 0;
}

int cf_secret_from(cf_secret *s, const void *src, size_t len)
{
    CF_GUARD(cf_secret_new(s, len));
    memcpy(s->p, src, len);
    return 0;
}

void cf_secret_free(cf_secret *s)
{
    if (s == NULL)
        return;
    cf_secure_free(s->p);
    s->p = NULL;
    s->len = 0;
}
