/*
 * Measurement of a simulated TEE launch (DESIGN.md §3 "Measurement", §7).
 *
 * Two values, both defined byte for byte in docs/internals/simulator.md so that
 * a customer can reproduce them without this code:
 *
 *   bundle digest (build_hash) = SHA-256 over a canonical listing of a
 *     deployment bundle directory: every regular file (relative path, owner
 *     execute bit, size, SHA-256 of its contents) and every symlink (relative
 *     path, target), sorted by path bytes. Written "sha256:<64 lower-case hex>".
 *
 *   launch measurement (48 bytes) = SHA-384 over the launch block
 *     "coffer/v1 launch" 0x00 ‖ format 1 ‖ SHA-384(TEE runtime binary) ‖
 *     bundle digest ‖ u64be guest policy ‖ u32be VMPL ‖ u8 debug.
 *     It is what coffer-launch writes into MEASUREMENT (report offset 0x90).
 *
 * The top-level file "coffer.sig" (the developer's signature over the
 * build_hash) is excluded; it must be a regular file if present.
 *
 * The bundle walk refuses anything it cannot measure unambiguously: special
 * files (FIFOs, sockets, devices), symlinks that are absolute or contain a ".."
 * component (they could point out of the bundle), names with control
 * characters, and bundles beyond the CF_BUNDLE_* limits (base/limits.h).
 */
#ifndef COFFER_ATTEST_MEASURE_H
#define COFFER_ATTEST_MEASURE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/compiler.h"

#define CF_BUNDLE_DIGEST_LEN 32
#define CF_MEASUREMENT_LEN 48
#define CF_BUILD_HASH_PREFIX "sha256:"
#define CF_BUILD_HASH_STR_LEN (7 + 2 * CF_BUNDLE_DIGEST_LEN) /* without the NUL */
#define CF_LAUNCH_BLOCK_LEN 111
#define CF_LAUNCH_FORMAT_V1 1
/* The developer signature of a bundle (DESIGN.md §7): a top-level regular file
 * of this name is not part of the bundle digest, since it signs the digest. */
#define CF_BUNDLE_SIG_FILE "coffer.sig"

/* Launch options that are part of the measurement. */
typedef struct {
    bool debug;    /* guest policy DEBUG bit (19) */
    uint32_t vmpl; /* 0..3 */
} cf_launch_config;

/* The guest policy coffer-launch runs with (AMD SEV-SNP ABI "Guest Policy
 * Structure"): SMT allowed (bit 16), reserved bit 17 = 1, DEBUG (bit 19) only
 * when debug is set; ABI major/minor 0. */
uint64_t cf_launch_policy(const cf_launch_config *cfg);

/* SHA-256 bundle digest of the directory `dir` (followed if it is a symlink
 * itself; nothing below it is followed). Errors: CF_E_IO (cannot read),
 * CF_E_UNSUPPORTED (special file, escaping symlink), CF_E_PARSE (bad name),
 * CF_E_TOO_LARGE (a limit), CF_E_CONFLICT (a file changed while it was read);
 * each with a cf_err_set detail naming the path. */
int cf_bundle_digest(const char *dir, uint8_t ret[CF_BUNDLE_DIGEST_LEN]) CF_WUR;

/* "sha256:<hex>" into out (CF_BUILD_HASH_STR_LEN + 1 bytes, NUL-terminated). */
void cf_build_hash_format(const uint8_t digest[CF_BUNDLE_DIGEST_LEN],
                          char out[CF_BUILD_HASH_STR_LEN + 1]);
/* Strict inverse of cf_build_hash_format (lower- or upper-case hex accepted). */
int cf_build_hash_parse(const char *s, uint8_t ret[CF_BUNDLE_DIGEST_LEN]) CF_WUR;

/* SHA-384 of everything readable from fd (from its current offset) up to
 * max_bytes (more is CF_E_TOO_LARGE). *ret_size (may be NULL) gets the count. */
int cf_sha384_fd(int fd, uint64_t max_bytes, uint8_t ret[48], uint64_t *ret_size) CF_WUR;
/* SHA-384 of a regular file (at most CF_TEE_BINARY_MAX_BYTES). */
int cf_sha384_file(const char *path, uint8_t ret[48]) CF_WUR;

/* The 111-byte launch block and its SHA-384, the launch measurement. */
int cf_launch_block(const uint8_t runtime_sha384[48],
                    const uint8_t bundle_digest[CF_BUNDLE_DIGEST_LEN],
                    const cf_launch_config *cfg, uint8_t ret[CF_LAUNCH_BLOCK_LEN]) CF_WUR;
int cf_launch_measurement(const uint8_t runtime_sha384[48],
                          const uint8_t bundle_digest[CF_BUNDLE_DIGEST_LEN],
                          const cf_launch_config *cfg, uint8_t ret[CF_MEASUREMENT_LEN]) CF_WUR;

/* Everything at once, for `coffer deployment measure` and coffer-launch
 * --measure-only: hashes the runtime binary at `program` and the bundle. */
typedef struct {
    uint8_t runtime_sha384[48];
    uint8_t bundle_digest[CF_BUNDLE_DIGEST_LEN];
    uint64_t policy;
    uint8_t measurement[CF_MEASUREMENT_LEN];
} cf_measure_result;

int cf_measure(const char *program, const char *bundle_dir, const cf_launch_config *cfg,
               cf_measure_result *ret) CF_WUR;

#endif
