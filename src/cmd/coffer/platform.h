/*
 * The one-machine platform behind `coffer init` / `coffer up` (DESIGN.md §9):
 * the state directory layout, its first-run initialisation, and a supervisor
 * that runs every service as its own child process.
 *
 * State directory (default ./var, mode 0700):
 *   ca/ca.pem, ca/ca.key              internal CA (key 0600)
 *   certs/<svc>.pem, .key             service certificates (spiffe://coffer/<svc>)
 *   secrets/<name>                    PINs, API keys, join tokens (0600)
 *   ports.json                        the loopback ports chosen on first run
 *   manifest.json                     the platform manifest (AMD roots + simulated root)
 *   services/<svc>/                   each service's own state (store, SoftHSM2 token, spool)
 *   sim/                              the simulated secure processor's key chain
 *   logs/<child>.log                  each child's output
 *   client.env                        COFFER_* settings for the CLI and the SDK
 */
#ifndef COFFER_CLI_PLATFORM_H
#define COFFER_CLI_PLATFORM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "base/buf.h"
#include "base/compiler.h"
#include <jansson.h>

#include "http/client.h"

#define PLAT_MAX_CHILDREN 16
#define PLAT_MAX_ARGS 48

typedef struct {
    char name[32];               /* "kms", "tee1", ... (log file name) */
    char *argv[PLAT_MAX_ARGS];   /* owned strings, NULL-terminated */
    pid_t pid;                   /* 0 when not running */
    unsigned restarts;
    int64_t next_start;          /* earliest restart time (unix s) after a crash */
    char health_url[256];        /* GET target that answers 200 when ready ("" = none) */
    int (*before_start)(void *platform, void *child); /* e.g. fresh join token for a TEE */
} plat_child;

typedef struct {
    char state[4096];            /* absolute state directory */
    char bindir[4096];           /* where cofferd, coffer-tee, coffer-launch live */
    plat_child children[PLAT_MAX_CHILDREN];
    size_t nchildren;
} plat;

/* Resolves the state directory (creating it 0700) and the binaries' directory
 * (the directory of the running `coffer`). */
int plat_init(plat *p, const char *state_dir) CF_WUR;
void plat_free(plat *p);
/* state-relative path into out. */
int plat_path(const plat *p, char *out, size_t size, const char *rel) CF_WUR;
int plat_bin(const plat *p, char *out, size_t size, const char *prog) CF_WUR;

/* A free TCP port on 127.0.0.1 (bound once, then released). */
int plat_free_port(uint16_t *ret) CF_WUR;
/* Writes 32 random bytes base64url to secrets/<name> (0600) unless present; returns its path. */
int plat_secret(const plat *p, const char *name, char *path, size_t size) CF_WUR;
int plat_read_secret(const plat *p, const char *name, char *out, size_t size) CF_WUR;
int plat_write_secret(const plat *p, const char *name, const char *value) CF_WUR;

/* Creates the internal CA (once) and a certificate for spiffe://coffer/<svc>. */
int plat_pki(const plat *p, const char *const *services) CF_WUR;

/* Adds a child; argv is copied. Returns its index. */
int plat_add(plat *p, const char *name, const char *const *argv, const char *health_url) CF_WUR;
/* Starts child i (fork/exec; stdout+stderr appended to logs/<name>.log; the child
 * gets SIGTERM if `coffer up` dies). */
int plat_start(plat *p, size_t i) CF_WUR;
/* Waits until child i's health URL answers 200 (HTTPS with the internal CA), or
 * the child exits, or timeout_ms passes. */
int plat_wait_healthy(plat *p, size_t i, unsigned timeout_ms) CF_WUR;
/* Supervises until SIGINT/SIGTERM: reaps children and restarts crashed ones
 * with back-off (1 s doubling to 30 s). Then stops all children. */
int plat_supervise(plat *p) CF_WUR;
/* SIGTERM to every running child (by pid), waits up to grace_ms, then SIGKILL. */
void plat_stop_all(plat *p, unsigned grace_ms);

/* JSON call to a service: method, url (full), bearer (optional), body (optional
 * JSON, borrowed) → *ret_status and *ret_json (may be NULL on a non-JSON body). */
int plat_call(const plat *p, const char *method, const char *url, const char *bearer,
              const json_t *body, long *ret_status, json_t **ret_json) CF_WUR;

#endif
