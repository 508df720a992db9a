#include "base/secmem.h"

#include <openssl/crypto.h>
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
 * Each allocation is a header followed by the user area. The header keeps the
 * requested size so that free can wipe exactly what was handed out. In sanitizer
 * builds we use the ordinary heap so that ASan sees overflows; otherwise each
 * allocation is its own anonymous mapping so that mlock/MADV_DONTDUMP apply to
 * it alone and nothing else shares its pages.
 */
#define HDR 16u

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

void *cf_secure_alloc(size_t n)
{
    uint8_t *base;
    size_t total;

    if (n == 0 || n > SIZE_MAX / 2)
        return NULL;
#ifdef COFFER_SANITIZE
    total = n + HDR;
    base = calloc(1, total);
    if (base == NULL)
        return NULL;
#else
    total = map_size(n);
    base = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (base == MAP_FAILED)
        return NULL;
    (void)madvise(base, total, MADV_DONTDUMP);
#endif
    if (mlock(base, total) != 0) {
        if (require_mlock()) {
#ifdef COFFER_SANITIZE
            free(base);
#else
            munmap(base, total);
#endif
            return NULL;
        }
        if (atomic_exchange(&warned_mlock, 1) == 0)
            cf_log(CF_LOG_WARN, "secmem.mlock_failed", "hint",
                   "raise RLIMIT_MEMLOCK or grant CAP_IPC_LOCK; set COFFER_REQUIRE_MLOCK=1 to refuse",
                   NULL);
    }
    memcpy(base, &n, sizeof(n));
    return base + HDR;
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
    size_t n, total;

    if (p == NULL)
        return;
    base = (uint8_t *)p - HDR;
    memcpy(&n, base, sizeof(n));
#ifdef COFFER_SANITIZE
    total = n + HDR;
    OPENSSL_cleanse(base, total);
    (void)munlock(base, total);
    free(base);
#else
    total = map_size(n);
    OPENSSL_cleanse(base, total);
    (void)munlock(base, total);
    munmap(base, total);
#endif
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
