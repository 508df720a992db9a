/*
 * Bounded file I/O. Reads refuse files larger than the caller's limit (and
 * non-regular files); writes are atomic (temp file, fsync, rename, fsync dir).
 */
#ifndef COFFER_BASE_FILE_H
#define COFFER_BASE_FILE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "base/buf.h"
#include "base/compiler.h"

/* Appends the whole file to out (at most max bytes). CF_E_NOT_FOUND if absent,
 * CF_E_TOO_LARGE if larger than max, CF_E_IO otherwise; detail names the path. */
int cf_file_read(const char *path, size_t max, cf_buf *out) CF_WUR;
/* Writes data to path atomically with the given mode (e.g. 0600). */
int cf_file_write_atomic(const char *path, const void *data, size_t len, mode_t mode) CF_WUR;
/* mkdir -p with mode for the directories it creates. */
int cf_mkdirs(const char *path, mode_t mode) CF_WUR;

#endif
