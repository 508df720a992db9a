/*
 * Attestation history (DESIGN.md §3 "Continuous attestation": every result is
 * recorded) and the service's schema, in its own store (scope "attest").
 *
 * Table attest_history: one row per attestation the service made (a public
 * /verify or a scheduled re-attestation), newest first by id. Ids are 32
 * lowercase hex digits: 16 of the microsecond timestamp, then 16 random ones,
 * so ordering by id is ordering by time and a page cursor is just the last id
 * seen ("after"). Rows hold the verdict and what it was about, never evidence
 * bytes or keys; failed checks are kept as a small JSON array
 * [{"name","message"}] (at most CF_ATTESTSVC_MAX_FAILURES_JSON bytes).
 *
 * Table attest_signing_key: the EAR signing keys, wrapped by the HSM
 * (attestsvc/signer.h).
 *
 * Thread-safety: a cf_store handle is single-threaded; pass each thread's own.
 */
#ifndef COFFER_ATTESTSVC_HISTORY_H
#define COFFER_ATTESTSVC_HISTORY_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "attest/manifest.h"
#include "attest/measure.h"
#include "base/compiler.h"
#include "base/limits.h"
#include "store/store.h"

#define CF_ATTEST_STORE_SCOPE "attest"

/* Applies the service's migrations (history and signing-key tables). */
int cf_attest_store_migrate(cf_store *s) CF_WUR;

/* A new time-ordered id for now_us (microseconds since the epoch). */
int cf_attest_history_new_id(int64_t now_us, char ret[CF_ATTESTSVC_ID_LEN + 1]) CF_WUR;
/* Whether s has the id syntax (used to validate a client's cursor). */
bool cf_attest_history_id_valid(const char *s);

typedef struct {
    char id[CF_ATTESTSVC_ID_LEN + 1];
    int64_t at;                           /* unix seconds */
    char kind[16];                        /* "verify" (public API) or "reattest" (scheduler) */
    char tee_id[CF_ID_MAX_LEN + 1];
    char deployment[CF_NAME_MAX_LEN + 1];
    char tenant[CF_ID_MAX_LEN + 1];       /* "" if unknown */
    char status[16];                      /* "verified", "failed", "unreachable" */
    char ear_status[24];                  /* "affirming", ... ; "" when no token was issued */
    char measurement[2 * CF_MEASUREMENT_LEN + 1]; /* "" if unknown */
    char build_hash[CF_BUILD_HASH_STR_LEN + 1];   /* as the TEE reported it; "" if unknown */
    char manifest_hash[CF_MANIFEST_HASH_STR_LEN + 1];
    char reason[CF_ATTESTSVC_MAX_REASON + 1];     /* first failure, "" when verified */
    char kms[CF_ATTESTSVC_MAX_REASON + 1];        /* KMS outcome of a re-attestation report, "" if none */
    const char *failures_json; /* input only: JSON array of failed checks (NULL = "[]") */
} cf_attest_record;

/* Inserts r (its id must be new). */
int cf_attest_history_add(cf_store *s, const cf_attest_record *r) CF_WUR;

typedef struct {
    const char *deployment; /* filters (NULL = any) */
    const char *tee_id;
    const char *tenant;     /* scope of a tenant principal; NULL = all tenants */
    const char *after;      /* cursor: only ids older than this one */
    size_t limit;           /* 1..CF_ATTESTSVC_HISTORY_MAX_PAGE */
} cf_attest_history_query;

/* Newest first. *ret_items: a new JSON array of objects {"id","at","kind","tee_id",
 * "deployment","tenant","status","ear_status","measurement","build_hash",
 * "manifest_hash","reason","kms","failures"}; ret_next: the cursor for the next
 * page ("" when this page is the last). */
int cf_attest_history_list(cf_store *s, const cf_attest_history_query *q, json_t **ret_items,
                           char ret_next[CF_ATTESTSVC_ID_LEN + 1]) CF_WUR;

/* Deletes at most CF_ATTESTSVC_PRUNE_BATCH records older than `before`. */
int cf_attest_history_prune(cf_store *s, int64_t before, int64_t *ret_deleted) CF_WUR;

#endif
