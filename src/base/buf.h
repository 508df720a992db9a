/*
 * cf_buf: one bounded byte buffer with a write side (growable up to a hard cap)
 * and a read cursor (reads fail with CF_E_TRUNCATED when data runs out).
 * Modelled on s2n_stuffer / openssh sshbuf / curl dynbuf.
 *
 * Ownership: a buffer made with cf_buf_init / cf_buf_init_secret owns its
 * memory and must be released with cf_buf_free. A view (cf_buf_view) borrows
 * caller memory, is read-only, and cf_buf_free on it only resets it.
 * Pointers returned by cf_buf_get_ptr borrow the buffer's memory and are valid
 * until the buffer is written to or freed.
 */
#ifndef COFFER_BASE_BUF_H
#define COFFER_BASE_BUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/compiler.h"

typedef struct {
    uint8_t *data;
    size_t len;  /* bytes written */
    size_t cap;  /* bytes allocated */
    size_t max;  /* hard cap on len */
    size_t rpos; /* read cursor, <= len */
    bool secret; /* memory from cf_secure_alloc; wiped on free/grow */
    bool view;   /* borrowed, read-only */
} cf_buf;

void cf_buf_init(cf_buf *b, size_t max);
void cf_buf_init_secret(cf_buf *b, size_t max);
void cf_buf_view(cf_buf *b, const uint8_t *p, size_t n);
void cf_buf_free(cf_buf *b);
/* Drops contents (wiping secret buffers) but keeps the allocation. */
void cf_buf_reset(cf_buf *b);

/* ---- write side ---- */
int cf_buf_reserve(cf_buf *b, size_t n) CF_WUR;
int cf_buf_put(cf_buf *b, const void *p, size_t n) CF_WUR;
int cf_buf_put_u8(cf_buf *b, uint8_t v) CF_WUR;
int cf_buf_put_u16be(cf_buf *b, uint16_t v) CF_WUR;
int cf_buf_put_u32be(cf_buf *b, uint32_t v) CF_WUR;
int cf_buf_put_u64be(cf_buf *b, uint64_t v) CF_WUR;
int cf_buf_put_u32le(cf_buf *b, uint32_t v) CF_WUR;
int cf_buf_put_u64le(cf_buf *b, uint64_t v) CF_WUR;
/* Appends the bytes of a NUL-terminated string (without the NUL). */
int cf_buf_put_str(cf_buf *b, const char *s) CF_WUR;
int cf_buf_printf(cf_buf *b, const char *fmt, ...) CF_PRINTF(2, 3) CF_WUR;
/* Ensures data[len] == 0 without counting it, so data can be used as a C string. */
int cf_buf_nul_terminate(cf_buf *b) CF_WUR;
/* Appends n bytes and returns a pointer to them for the caller to fill. */
int cf_buf_put_space(cf_buf *b, size_t n, uint8_t **ret) CF_WUR;

/* ---- read side ---- */
size_t cf_buf_remaining(const cf_buf *b);
int cf_buf_get(cf_buf *b, void *out, size_t n) CF_WUR;
int cf_buf_get_ptr(cf_buf *b, size_t n, const uint8_t **ret) CF_WUR;
int cf_buf_skip(cf_buf *b, size_t n) CF_WUR;
int cf_buf_get_u8(cf_buf *b, uint8_t *ret) CF_WUR;
int cf_buf_get_u16be(cf_buf *b, uint16_t *ret) CF_WUR;
int cf_buf_get_u32be(cf_buf *b, uint32_t *ret) CF_WUR;
int cf_buf_get_u64be(cf_buf *b, uint64_t *ret) CF_WUR;
int cf_buf_get_u16le(cf_buf *b, uint16_t *ret) CF_WUR;
int cf_buf_get_u32le(cf_buf *b, uint32_t *ret) CF_WUR;
int cf_buf_get_u64le(cf_buf *b, uint64_t *ret) CF_WUR;
/* CF_E_TRAILING if unread bytes remain. */
int cf_buf_expect_end(const cf_buf *b) CF_WUR;

/* Hands the data to the caller (who frees it with free(), or cf_secure_free for
 * secret buffers) and resets b. Returns NULL for an empty buffer. */
uint8_t *cf_buf_detach(cf_buf *b, size_t *ret_len);

#endif
