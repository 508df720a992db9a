/*
 * Deployment bundles (DESIGN.md §7; docs/internals/tee.md "Bundles").
 *
 * A bundle is a directory: coffer.json (the manifest below), the job
 * executables and any other files, and coffer.sig, the developer's signature.
 * Its digest is the build_hash (attest/measure.h; coffer.sig is excluded).
 *
 * coffer.json, one strict JSON object (unknown keys, duplicates, NULs refused):
 *
 *   {"name": NAME, "version": TEXT,
 *    "jobs": {JOB: {"command": PATH, "args": [TEXT, ...],
 *                   "limits": {"cpu_s": N, "memory_mb": N, "output_kb": N,
 *                              "timeout_ms": N}}, ...}}
 *
 *   NAME, JOB  1..CF_NAME_MAX_LEN characters of A-Z a-z 0-9 . _ - (as in the
 *              policy manifest, docs/MANIFEST.md)
 *   version    1..CF_TEE_VERSION_MAX_LEN visible ASCII characters
 *   jobs       1..CF_TEE_MAX_JOBS entries
 *   command    path of the executable inside the bundle: relative, '/'-separated,
 *              no empty, "." or ".." component, no control characters, not the
 *              unmeasured signature file
 *   args       optional, at most CF_TEE_MAX_ARGS strings of at most
 *              CF_TEE_MAX_ARG_LEN bytes without control characters
 *   limits     all four required, each from 1 to its CF_TEE_MAX_* bound
 *
 * Signature (coffer.sig): base64url (unpadded) of the 64-byte Ed25519
 * signature (RFC 8032, pure) over
 *
 *   "coffer/v1 bundle" || 0x00 || build_hash        (build_hash as text, "sha256:<hex>")
 *
 * optionally followed by one newline. The developer signs with their own key
 * (`coffer-tee sign-bundle --key`, and later `coffer deployment create`, call
 * cf_bundle_sign_dir); the TEE runtime refuses to start unless the signature
 * verifies with the developer key it was configured with.
 */
#ifndef COFFER_TEE_BUNDLE_H
#define COFFER_TEE_BUNDLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "attest/measure.h"
#include "base/buf.h"
#include "base/compiler.h"
#include "base/limits.h"
#include "crypto/keys.h"

#define CF_BUNDLE_MANIFEST_FILE "coffer.json"
#define CF_BUNDLE_SIG_DOMAIN "coffer/v1 bundle" /* followed by 0x00 in the signed message */
#define CF_BUNDLE_SIG_TEXT_LEN 86                /* base64url of 64 bytes */

/* Resource limits of one job (coffer.json "limits"). */
typedef struct {
    uint32_t cpu_s;      /* CPU seconds (RLIMIT_CPU) */
    uint32_t memory_mb;  /* address space in MiB (RLIMIT_AS) */
    uint32_t output_kb;  /* stdout cap in KiB */
    uint32_t timeout_ms; /* wall clock */
} cf_job_limits;

typedef struct {
    char name[CF_NAME_MAX_LEN + 1];
    char *command;       /* relative path in the bundle */
    char **args;         /* n_args strings (argv[1..]) */
    size_t n_args;
    cf_job_limits limits;
} cf_bundle_job;

typedef struct {
    char name[CF_NAME_MAX_LEN + 1];
    char version[CF_TEE_VERSION_MAX_LEN + 1];
    cf_bundle_job *jobs; /* n_jobs entries, sorted by name */
    size_t n_jobs;
} cf_bundle_manifest;

/* Parses coffer.json (at most CF_TEE_MANIFEST_MAX_BYTES). Errors are CF_E_PARSE,
 * CF_E_RANGE or CF_E_TOO_LARGE with a detail naming the field ("jobs.echo.limits:
 * field 'cpu_s' ..."). *ret (free with cf_bundle_manifest_free) only on success. */
int cf_bundle_manifest_parse(const uint8_t *data, size_t len, cf_bundle_manifest **ret) CF_WUR;
void cf_bundle_manifest_free(cf_bundle_manifest *m);
/* The job called name, or NULL. Borrowed from m. */
const cf_bundle_job *cf_bundle_manifest_job(const cf_bundle_manifest *m, const char *name);
/* 1 if s is a valid bundle/job name (1..CF_NAME_MAX_LEN of A-Z a-z 0-9 . _ -). */
bool cf_bundle_name_valid(const char *s);

/* ---- developer keys and signatures ---- */

/* An Ed25519 public key as written in configuration and in the policy manifest:
 * 43 characters of unpadded base64url (the raw 32 bytes) or a PEM PUBLIC KEY
 * (RFC 8410). Other key types are CF_E_PARSE. New key in *ret (cf_key_free). */
int cf_developer_key_parse(const char *text, cf_key **ret) CF_WUR;
/* The published demo developer key pair (docs/internals/tee.md "Demo bundle"):
 * its private key is derived from a public string, so anyone can sign with it.
 * It signs the demo bundle and must never be trusted for anything else. */
int cf_bundle_demo_key(cf_key **ret) CF_WUR;

/* Appends the signature text (86 base64url characters and "\n") for build_hash
 * ("sha256:<hex>") to out. key must be an Ed25519 private key. */
int cf_bundle_sign(const cf_key *key, const char *build_hash, cf_buf *out) CF_WUR;
/* 0 if sig_text (coffer.sig contents) is a valid signature of build_hash by key;
 * CF_E_SIGNATURE otherwise (wrong key, any changed byte), CF_E_PARSE for text
 * that is not one base64url signature (and an optional newline). */
int cf_bundle_verify(const cf_key *key, const char *build_hash, const uint8_t *sig_text,
                     size_t len) CF_WUR;
/* Computes the bundle's build_hash and writes DIR/coffer.sig atomically (0644).
 * ret_build_hash (may be NULL) receives it. */
int cf_bundle_sign_dir(const cf_key *key, const char *dir,
                       char ret_build_hash[CF_BUILD_HASH_STR_LEN + 1]) CF_WUR;

/* ---- a loaded, verified bundle ---- */

typedef struct cf_bundle cf_bundle;

/*
 * Loads a bundle for the TEE runtime: computes the build_hash, verifies
 * coffer.sig with developer_key (before anything else is parsed), parses
 * coffer.json, and copies every job's executable into a sealed memfd (an ELF
 * file with the owner execute bit, opened without leaving the bundle:
 * RESOLVE_BENEATH), then measures the bundle again and requires the same
 * build_hash, so that what runs is what was signed. Jobs later run from those
 * copies: changes to the directory after loading have no effect.
 * Errors: CF_E_SIGNATURE (no or bad signature), CF_E_PARSE / CF_E_RANGE /
 * CF_E_TOO_LARGE (manifest), CF_E_NOT_FOUND / CF_E_INVAL (a job's command),
 * CF_E_CONFLICT (the bundle changed while loading), or a cf_bundle_digest
 * error; all with a detail. *ret (free with cf_bundle_free) only on success.
 */
int cf_bundle_load(const char *dir, const cf_key *developer_key, cf_bundle **ret) CF_WUR;
void cf_bundle_free(cf_bundle *b);
/* Borrowed from b. */
const cf_bundle_manifest *cf_bundle_get_manifest(const cf_bundle *b);
const char *cf_bundle_build_hash(const cf_bundle *b);
/* The job and its sealed executable (a close-on-exec fd owned by b), or
 * CF_E_NOT_FOUND. */
int cf_bundle_job_get(const cf_bundle *b, const char *name, const cf_bundle_job **ret_job,
                      int *ret_exe_fd) CF_WUR;

/* Copies the executable at path (an ELF file, at most CF_TEE_MAX_JOB_BINARY
 * bytes) into a new sealed close-on-exec memfd (*ret_fd, caller closes). Used
 * by cf_bundle_load (relative to the bundle) and by tests. */
int cf_bundle_copy_executable(int dirfd, const char *path, const char *label, int *ret_fd) CF_WUR;

#endif
