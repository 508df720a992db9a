/*
 * Secret memory: locked (mlock), excluded from core dumps (MADV_DONTDUMP),
 * wiped on free. Use it for keys, OTKs and plaintext payloads.
 *
 * If the kernel refuses to lock memory (RLIMIT_MEMLOCK), allocation still
 * succeeds and a single warning is logged, unless COFFER_REQUIRE_MLOCK=1 is set
 * in the environment, in which case allocation fails (fail closed).
 */
#ifndef COFFER_BASE_SECMEM_H
#define COFFER_BASE_SECMEM_H

#include <stddef.h>
#include <stdint.h>

#include "base/compiler.h"

/* Returns zeroed secret memory of n bytes (n > 0), or NULL. Caller frees with cf_secure_free. */
void *cf_secure_alloc(size_t n) CF_WUR;
/* Wipes and releases memory from cf_secure_alloc. NULL is accepted. */
void cf_secure_free(void *p);
/* Size given to cf_secure_alloc for p. */
size_t cf_secure_size(const void *p);

/* Wipe n bytes in a way the compiler cannot elide. */
void cf_wipe(void *p, size_t n);
/* Wipe then free() ordinary heap memory of n bytes (openssh freezero). NULL is accepted. */
void cf_freezero(void *p, size_t n);
/* Constant-time equality of two n-byte buffers: 1 if equal, 0 otherwise. */
int cf_ct_eq(const void *a, const void *b, size_t n);

/* Process hardening at start-up: no core dumps, not ptrace-attachable by peers. */
void cf_harden_process(void);

/* A fixed-size secret value owned by the holder. */
typedef struct {
    uint8_t *p;
    size_t len;
} cf_secret;

int cf_secret_new(cf_secret *s, size_t len) CF_WUR;
int cf_secret_from(cf_secret *s, const void *src, size_t len) CF_WUR;
void cf_secret_free(cf_secret *s);

#endif
