/*
 * The gateway's view of the TEE registry (the KMS is authoritative: DESIGN.md
 * §1, §2 rule 6). Used for routing only: which TEEs are active, whose they are,
 * which deployment they run and where they listen.
 *
 * Wire format (GET {kms}/v1/registry/tees, one page):
 *   {"tees":[{"id","tenant","deployment","platform","public_key","measurement",
 *             "status","last_attested_at","endpoint"}, ...], "next"?: cursor}
 * The gateway reads id, tenant, deployment, status and endpoint, which must have
 * the right types and sizes when present (id, deployment and status are
 * required); the other members, and members it does not know, are ignored: the
 * KMS evolves on its own schedule and the gateway trusts nothing beyond the
 * routing facts (the client verifies the TEE's evidence itself, and the KMS
 * re-checks the registry before releasing any key).
 *
 * The view is cached for `ttl_ms` and refreshed on demand (an unknown TEE id,
 * a failed forward), at most every CF_GW_REGISTRY_MIN_REFRESH_MS. If it cannot
 * be refreshed once its TTL has passed, every lookup fails with
 * CF_E_UNAVAILABLE: the gateway does not route on stale facts (fail closed).
 *
 * Per-TEE routing state lives beside the view and survives refreshes: the
 * number of requests in flight to the TEE (least-outstanding selection) and
 * an "unhealthy until" time set when a call to the TEE failed, which keeps it
 * out of rotation for `unhealthy_ms`.
 *
 * Thread-safety: all functions may be called from any thread. Lookups return
 * copies, never pointers into the view.
 */
#ifndef COFFER_GATEWAY_REGISTRY_H
#define COFFER_GATEWAY_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/compiler.h"
#include "base/limits.h"

#define CF_GW_TEE_ACTIVE "active"

typedef struct {
    char id[CF_ID_MAX_LEN + 1];
    char tenant[CF_ID_MAX_LEN + 1]; /* "" if the listing has none: routable for nobody */
    char deployment[CF_NAME_MAX_LEN + 1];
    char status[CF_GW_MAX_STATUS_LEN + 1];
    char endpoint[CF_GW_MAX_ENDPOINT + 1]; /* "" if unknown: not routable */
} cf_gw_tee;

typedef struct {
    cf_gw_tee *v;
    size_t n, cap;
} cf_gw_tee_list;

void cf_gw_tee_list_free(cf_gw_tee_list *l);

/* An id of the platform (TEE id, tenant): 1..CF_ID_MAX_LEN of [A-Za-z0-9._-],
 * starting with a letter or digit. Deployment names: the same within CF_NAME_MAX_LEN. */
bool cf_gw_id_valid(const char *s);
bool cf_gw_name_valid(const char *s);

/*
 * Appends the entries of one listing page (at most CF_GW_MAX_REGISTRY_RESPONSE
 * bytes) to l, at most CF_GW_MAX_TEES in total (CF_E_TOO_LARGE beyond).
 * ret_next (next_size >= CF_GW_MAX_CURSOR + 1) receives the page's "next"
 * cursor, "" if none. CF_E_PARSE with the offending entry named, e.g.
 * "tees[2]: field 'endpoint' must be an http(s) URL". On failure l keeps the
 * entries it had before.
 */
int cf_gw_registry_parse_page(const void *data, size_t len, cf_gw_tee_list *l, char *ret_next,
                              size_t next_size) CF_WUR;
/* Sorts l by id; CF_E_PARSE ("duplicate TEE id ...") if an id occurs twice. */
int cf_gw_tee_list_finish(cf_gw_tee_list *l) CF_WUR;

/* Fetches the whole registry into *ret (empty on entry; the callee fills it and
 * calls cf_gw_tee_list_finish, or leaves it empty on failure). */
typedef int (*cf_gw_registry_fetch)(void *cls, cf_gw_tee_list *ret);

typedef struct cf_gw_registry cf_gw_registry;

int cf_gw_registry_new(cf_gw_registry_fetch fetch, void *cls, uint64_t ttl_ms,
                       uint64_t unhealthy_ms, cf_gw_registry **ret) CF_WUR;
/* NULL is accepted. */
void cf_gw_registry_free(cf_gw_registry *r);

/* Makes sure the view is fresh: no older than the TTL, or (force) fetched now
 * unless a fetch started within CF_GW_REGISTRY_MIN_REFRESH_MS. CF_E_UNAVAILABLE
 * with the reason if the registry cannot be read. */
int cf_gw_registry_sync(cf_gw_registry *r, bool force) CF_WUR;

/* Copy of the TEE with this id from the current view. CF_E_NOT_FOUND if absent;
 * CF_E_UNAVAILABLE if the view is stale and cannot be refreshed. */
int cf_gw_registry_get(cf_gw_registry *r, const char *id, cf_gw_tee *ret) CF_WUR;

/* Decides whether a TEE's deployment serves the request (e.g. "this deployment
 * of this tenant has the job" from the manifest). */
typedef bool (*cf_gw_serves_fn)(void *cls, const char *deployment);

/*
 * Routing candidates for tenant: active TEEs of that tenant with an endpoint,
 * whose deployment `serves`, not marked unhealthy; ordered by requests in
 * flight (fewest first; ties rotate between calls). Copies up to max of them
 * into out; *ret_n is their number, *ret_any_unhealthy (may be NULL) tells
 * whether candidates were skipped only because they are marked unhealthy.
 */
int cf_gw_registry_pick(cf_gw_registry *r, const char *tenant, cf_gw_serves_fn serves,
                        void *cls, cf_gw_tee *out, size_t max, size_t *ret_n,
                        bool *ret_any_unhealthy) CF_WUR;

/* A request to the TEE starts / ends (requests in flight). Unknown ids are ignored. */
void cf_gw_registry_begin(cf_gw_registry *r, const char *id);
void cf_gw_registry_end(cf_gw_registry *r, const char *id);
/* Takes the TEE out of rotation for unhealthy_ms (a call to it failed). */
void cf_gw_registry_mark_unhealthy(cf_gw_registry *r, const char *id);
/* Whether the TEE is currently marked unhealthy. */
bool cf_gw_registry_is_unhealthy(cf_gw_registry *r, const char *id);
/* Requests in flight to the TEE (for tests). */
uint32_t cf_gw_registry_outstanding(cf_gw_registry *r, const char *id);

#endif
