/*
 * Strict JSON over jansson. Parsing enforces a byte limit, a nesting limit
 * (CF_JSON_MAX_DEPTH), rejects duplicate keys, NUL characters in strings and
 * trailing data. Getters give precise errors ("missing required field 'job'",
 * "field 'ttl' must be an integer") through cf_err_set.
 *
 * Returned json_t references are owned by the caller (json_decref); strings
 * returned by getters are borrowed from the object.
 */
#ifndef COFFER_BASE_JSON_H
#define COFFER_BASE_JSON_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/compiler.h"

/* Parses exactly one JSON value of len bytes (no NUL terminator needed). */
int cf_json_parse(const void *data, size_t len, size_t max_bytes, json_t **ret) CF_WUR;
/* Same, and the value must be an object. */
int cf_json_parse_object(const void *data, size_t len, size_t max_bytes, json_t **ret) CF_WUR;

/* Fails with CF_E_PARSE ("unknown field 'x'") if obj has a key not in allowed (NULL-terminated). */
int cf_json_only_keys(const json_t *obj, const char *const *allowed) CF_WUR;

/*
 * Getters. If the key is absent: CF_E_PARSE when required, otherwise 0 with
 * *ret untouched (pre-set your default). A present key of the wrong type or out
 * of bounds is always an error. JSON null counts as absent only for optional keys.
 */
int cf_json_get_str(const json_t *obj, const char *key, bool required, size_t max_len,
                    const char **ret) CF_WUR;
int cf_json_get_u64(const json_t *obj, const char *key, bool required, uint64_t max,
                    uint64_t *ret) CF_WUR;
int cf_json_get_bool(const json_t *obj, const char *key, bool required, bool *ret) CF_WUR;
/* Object or array member (borrowed). */
int cf_json_get_obj(const json_t *obj, const char *key, bool required, json_t **ret) CF_WUR;
int cf_json_get_array(const json_t *obj, const char *key, bool required, size_t max_items,
                      json_t **ret) CF_WUR;
/* base64url (unpadded) string decoded into out (appended); at most max_bytes decoded. */
int cf_json_get_b64url(const json_t *obj, const char *key, bool required, size_t max_bytes,
                       cf_buf *out) CF_WUR;
/* hex string of exactly n bytes decoded into out[n]. */
int cf_json_get_hex(const json_t *obj, const char *key, bool required, uint8_t *out,
                    size_t n) CF_WUR;

/* Compact serialisation with sorted keys (deterministic). malloc'd; NULL on failure. */
char *cf_json_dump(const json_t *v) CF_WUR;

#endif
