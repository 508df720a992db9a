/*
 * Structured logging: one JSON object per line on stderr (or a file), with a
 * timestamp, level, service name, event name, the thread's request id and
 * string key/value pairs.
 *
 * Never pass a secret, key, token or payload as a value: log their ids.
 */
#ifndef COFFER_BASE_LOG_H
#define COFFER_BASE_LOG_H

#include <stdio.h>

#include "base/compiler.h"

typedef enum { CF_LOG_DEBUG = 0, CF_LOG_INFO, CF_LOG_WARN, CF_LOG_ERROR, CF_LOG_OFF } cf_log_level;

void cf_log_set_service(const char *service);
void cf_log_set_level(cf_log_level level);
/* Parses "debug", "info", "warn", "error", "off". */
int cf_log_level_parse(const char *s, cf_log_level *ret) CF_WUR;
/* Redirects output (NULL = stderr). The stream is not closed by the logger. */
void cf_log_set_stream(FILE *f);
/* Request id attached to every line logged by this thread (NULL clears). */
void cf_log_set_request_id(const char *rid);

/* cf_log(level, "event.name", "key1", "value1", "key2", "value2", ..., NULL) */
void cf_log(cf_log_level level, const char *event, ...) __attribute__((sentinel));
/* Free-text message under event "message". */
void cf_logf(cf_log_level level, const char *fmt, ...) CF_PRINTF(2, 3);

#endif
