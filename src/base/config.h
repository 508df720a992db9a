/*
 * Program configuration from a declared schema.
 *
 * Each program declares its options as a static array of cf_config_opt. Values
 * come from four sources; a later source overrides an earlier one, whatever the
 * order of the load calls:
 *
 *   1. the schema default
 *   2. a JSON config file: an object whose members are either dotted keys
 *      ({"kms.listen": "..."}) or nested objects ({"kms": {"listen": "..."}})
 *   3. environment variables COFFER_<KEY>: key upper-cased, '.' -> '_'
 *      (kms.listen -> COFFER_KMS_LISTEN); unrelated COFFER_* variables are ignored
 *   4. command-line flags --key=value or --key value (bool: --key alone is true)
 *
 * Unknown keys in the file and unknown flags are errors. Every error names the
 * key, e.g. "config 'kms.listen': ...", through cf_err_set (CF_E_CONFIG).
 *
 * Secrets: an option with CF_CFG_SECRET may be given as "@/path/to/file",
 * meaning "read the value from that file" (one trailing newline dropped; the
 * file must not be accessible by others). Secret values live in cf_secure_alloc
 * memory, are never printed in errors, help or cf_config_log, and are wiped by
 * cf_config_free.
 *
 * Thread-safety: load from one thread; after loading, the getters may be called
 * from any thread (they do not modify the object).
 */
#ifndef COFFER_BASE_CONFIG_H
#define COFFER_BASE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/compiler.h"

typedef enum {
    CF_CFG_STRING = 0,
    CF_CFG_INT,      /* signed 64-bit, bounded by [min, max] of the option */
    CF_CFG_BOOL,     /* true/false, 1/0, yes/no, on/off */
    CF_CFG_DURATION, /* "90", "90s", "15m", "2h", "7d" -> seconds (cf_parse_duration) */
    CF_CFG_PATH,     /* non-empty file system path */
} cf_cfg_type;

enum {
    CF_CFG_SECRET = 1u << 0,   /* never printed; accepts @/path/to/file */
    CF_CFG_REQUIRED = 1u << 1, /* cf_config_check fails if no source sets it */
};

typedef struct {
    const char *key;  /* [a-z0-9_] segments joined by '.', e.g. "kms.listen" */
    cf_cfg_type type;
    const char *def;  /* default in flag syntax ("8443", "true", "15m"); NULL = unset */
    const char *help; /* one line */
    unsigned flags;   /* CF_CFG_SECRET | CF_CFG_REQUIRED */
    int64_t min, max; /* CF_CFG_INT bounds; both 0 = any int64. CF_CFG_DURATION: max
                         seconds (0 = 100 years) */
} cf_config_opt;

/* Where the current value of an option came from (higher wins). */
typedef enum {
    CF_CFG_SRC_UNSET = 0,
    CF_CFG_SRC_DEFAULT,
    CF_CFG_SRC_FILE,
    CF_CFG_SRC_ENV,
    CF_CFG_SRC_FLAG,
} cf_cfg_source;

typedef struct cf_config cf_config;

/*
 * Validates the schema (key syntax, duplicate keys, keys that collide in the
 * environment, defaults that parse) and applies the defaults. The schema array
 * is borrowed and must outlive the config object. Free with cf_config_free.
 */
int cf_config_new(const cf_config_opt *schema, size_t n, cf_config **ret) CF_WUR;
/* Wipes secret values and frees. NULL is accepted. */
void cf_config_free(cf_config *c);

/* Parses a JSON config document (at most CF_CONFIG_MAX_BYTES). origin names it in
 * error messages (e.g. the file name). On failure no value is changed. */
int cf_config_load_json(cf_config *c, const void *data, size_t len, const char *origin) CF_WUR;
/* Reads and parses a JSON config file. */
int cf_config_load_file(cf_config *c, const char *path) CF_WUR;
/* Applies COFFER_<KEY> variables from envp (NULL-terminated "NAME=value"), or from
 * the process environment when envp is NULL. */
int cf_config_load_env(cf_config *c, char *const *envp) CF_WUR;
/*
 * Parses flags in argv[0..argc) (pass the arguments after the program and
 * sub-command names). "--" ends the flags. If ret_next is NULL, any non-flag
 * argument is an error; otherwise parsing stops at the first non-flag argument
 * and *ret_next receives its index (argc if none).
 * "--config" is not accepted here: see cf_config_load_all.
 */
int cf_config_load_args(cf_config *c, int argc, char *const *argv, int *ret_next) CF_WUR;
/*
 * Fails (CF_E_CONFIG) if a CF_CFG_REQUIRED option has no value.
 */
int cf_config_check(const cf_config *c) CF_WUR;
/*
 * The usual sequence: the config file named by --config=PATH / --config PATH in
 * argv, else by COFFER_CONFIG in the environment (none: no file), then the
 * environment, then the other flags, then cf_config_check. envp as in
 * cf_config_load_env; ret_next as in cf_config_load_args. Flags are parsed
 * first, so a bad flag changes nothing; a later failure (file, environment,
 * required check) may leave the sources before it applied: exit on failure.
 */
int cf_config_load_all(cf_config *c, int argc, char *const *argv, char *const *envp,
                       int *ret_next) CF_WUR;

/*
 * Typed getters. CF_E_NOT_FOUND if the option has no value (no default and no
 * source set it); CF_E_INVAL if the key is not in the schema or has another type
 * (a programming error). Strings are borrowed from the config object and valid
 * until cf_config_free. cf_config_get_str serves STRING and PATH options.
 */
int cf_config_get_str(const cf_config *c, const char *key, const char **ret) CF_WUR;
int cf_config_get_int(const cf_config *c, const char *key, int64_t *ret) CF_WUR;
int cf_config_get_bool(const cf_config *c, const char *key, bool *ret) CF_WUR;
/* Duration in seconds. */
int cf_config_get_duration(const cf_config *c, const char *key, uint64_t *ret) CF_WUR;
/* Source of the current value (CF_CFG_SRC_UNSET for unknown keys too). */
cf_cfg_source cf_config_source(const cf_config *c, const char *key);

/* Appends a help text, one option per line ("  --key=TYPE  help (default: ..., env
 * COFFER_KEY)"); secret defaults are not shown. */
int cf_config_help(const cf_config *c, cf_buf *out) CF_WUR;
/* Logs the effective configuration (event "config") with secrets replaced by "<secret>". */
void cf_config_log(const cf_config *c);

#endif
