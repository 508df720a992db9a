/*
 * Registry view: parsing of the KMS listing, the cached view and the per-TEE
 * routing state (registry.h).
 */
#include "gateway/registry.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/json.h"
#include "base/parse.h"
#include "gateway/ratelimit.h"

/* ---- validation -------------------------------------------------------------------- */

static bool id_char(unsigned char c, bool first)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return true;
    return !first && (c == '.' || c == '_' || c == '-');
}

static bool ident_valid(const char *s, size_t max)
{
    size_t n;

    if (s == NULL)
        return false;
    n = strnlen(s, max + 1);
    if (n == 0 || n > max)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!id_char((unsigned char)s[i], i == 0))
            return false;
    return true;
}

bool cf_gw_id_valid(const char *s) { return ident_valid(s, CF_ID_MAX_LEN); }
bool cf_gw_name_valid(const char *s) { return ident_valid(s, CF_NAME_MAX_LEN); }

static bool status_valid(const char *s)
{
    size_t n = strnlen(s, CF_GW_MAX_STATUS_LEN + 1);

    if (n == 0 || n > CF_GW_MAX_STATUS_LEN)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || s[i] == '_' || s[i] == '-'))
            return false;
    return true;
}

/* An http:// or https:// URL with a non-empty authority, printable ASCII without
 * spaces, quotes or backslashes (it becomes a libcurl URL and a log value). */
static bool endpoint_valid(const char *s)
{
    size_t n = strnlen(s, CF_GW_MAX_ENDPOINT + 1), skip;

    if (n > CF_GW_MAX_ENDPOINT)
        return false;
    if (strncmp(s, "http://", 7) == 0)
        skip = 7;
    else if (strncmp(s, "https://", 8) == 0)
        skip = 8;
    else
        return false;
    if (n == skip || s[skip] == '/')
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= 0x20 || c >= 0x7f || c == '"' || c == '\\')
            return false;
    }
    return true;
}

/* ---- listing ------------------------------------------------------------------------ */

void cf_gw_tee_list_free(cf_gw_tee_list *l)
{
    if (l == NULL)
        return;
    free(l->v);
    memset(l, 0, sizeof(*l));
}

static int copy_str(char *dst, size_t cap, const char *s)
{
    size_t n = strlen(s);
    CF_ENSURE(n < cap, CF_E_TOO_LARGE);
    memcpy(dst, s, n + 1);
    return 0;
}

static int parse_entry(const json_t *o, cf_gw_tee *ret)
{
    const char *id = NULL, *tenant = NULL, *dep = NULL, *status = NULL, *ep = NULL;
    cf_gw_tee t;

    CF_ENSURE(json_is_object(o), cf_err_set(CF_E_PARSE, "must be an object"));
    memset(&t, 0, sizeof(t));
    CF_GUARD(cf_json_get_str(o, "id", true, CF_ID_MAX_LEN, &id));
    CF_ENSURE(cf_gw_id_valid(id), cf_err_set(CF_E_PARSE, "field 'id' is not a valid id"));
    CF_GUARD(cf_json_get_str(o, "tenant", false, CF_ID_MAX_LEN, &tenant));
    CF_ENSURE(tenant == NULL || cf_gw_id_valid(tenant),
              cf_err_set(CF_E_PARSE, "field 'tenant' is not a valid id"));
    CF_GUARD(cf_json_get_str(o, "deployment", true, CF_NAME_MAX_LEN, &dep));
    CF_ENSURE(cf_gw_name_valid(dep),
              cf_err_set(CF_E_PARSE, "field 'deployment' is not a valid name"));
    CF_GUARD(cf_json_get_str(o, "status", true, CF_GW_MAX_STATUS_LEN, &status));
    CF_ENSURE(status_valid(status),
              cf_err_set(CF_E_PARSE, "field 'status' must be lower-case letters, '_' or '-'"));
    CF_GUARD(cf_json_get_str(o, "endpoint", false, CF_GW_MAX_ENDPOINT, &ep));
    CF_ENSURE(ep == NULL || ep[0] == 0 || endpoint_valid(ep),
              cf_err_set(CF_E_PARSE, "field 'endpoint' must be an http(s) URL"));
    CF_GUARD(copy_str(t.id, sizeof(t.id), id));
    CF_GUARD(copy_str(t.tenant, sizeof(t.tenant), tenant ? tenant : ""));
    CF_GUARD(copy_str(t.deployment, sizeof(t.deployment), dep));
    CF_GUARD(copy_str(t.status, sizeof(t.status), status));
    CF_GUARD(copy_str(t.endpoint, sizeof(t.endpoint), ep ? ep : ""));
    *ret = t;
    return 0;
}

int cf_gw_registry_parse_page(const void *data, size_t len, cf_gw_tee_list *l, char *ret_next,
                              size_t next_size)
{
    json_t *doc = NULL, *arr = NULL;
    const char *next = NULL;
    size_t start, count;
    int rc = 0;

    CF_ENSURE(l != NULL && ret_next != NULL && next_size >= CF_GW_MAX_CURSOR + 1, CF_E_INVAL);
    start = l->n;
    CF_GUARD(cf_json_parse(data, len, CF_GW_MAX_REGISTRY_RESPONSE, &doc));
    if (json_is_array(doc)) {
        arr = doc;
    } else if (json_is_object(doc)) {
        CF_GUARD_OUT(cf_json_get_array(doc, "tees", true, CF_GW_MAX_TEES, &arr));
        CF_GUARD_OUT(cf_json_get_str(doc, "next", false, CF_GW_MAX_CURSOR, &next));
        if (next != NULL)
            for (const char *p = next; *p; p++)
                CF_ENSURE_OUT(*p > 0x20 && *p < 0x7f,
                              cf_err_set(CF_E_PARSE, "field 'next' must be printable ASCII"));
    } else {
        CF_ENSURE_OUT(false, cf_err_set(CF_E_PARSE, "registry listing must be an object"));
    }
    count = json_array_size(arr);
    CF_ENSURE_OUT(count <= CF_GW_MAX_TEES && start + count <= CF_GW_MAX_TEES,
                  cf_err_set(CF_E_TOO_LARGE, "registry lists more than %d TEEs", CF_GW_MAX_TEES));
    if (l->n + count > l->cap) {
        size_t cap = l->cap ? l->cap : 16;
        cf_gw_tee *nv;
        while (cap < l->n + count)
            cap *= 2;
        if (cap > CF_GW_MAX_TEES)
            cap = CF_GW_MAX_TEES;
        nv = realloc(l->v, cap * sizeof(*nv));
        CF_ENSURE_OUT(nv != NULL, CF_E_NOMEM);
        l->v = nv;
        l->cap = cap;
    }
    for (size_t i = 0; i < count; i++) {
        rc = parse_entry(json_array_get(arr, i), &l->v[l->n]);
        if (rc < 0) {
            rc = cf_err_set(rc, "tees[%zu]: %s", i, cf_err_detail(rc));
            l->n = start;
            goto out;
        }
        l->n++;
    }
    CF_GUARD_OUT(cf_fmt(ret_next, next_size, "%s", next ? next : ""));
out:
    if (rc < 0)
        l->n = start;
    json_decref(doc);
    return rc;
}

static int cmp_tee(const void *a, const void *b)
{
    return strcmp(((const cf_gw_tee *)a)->id, ((const cf_gw_tee *)b)->id);
}

int cf_gw_tee_list_finish(cf_gw_tee_list *l)
{
    CF_ENSURE(l != NULL, CF_E_INVAL);
    if (l->n > 1)
        qsort(l->v, l->n, sizeof(*l->v), cmp_tee);
    for (size_t i = 1; i < l->n; i++)
        CF_ENSURE(strcmp(l->v[i - 1].id, l->v[i].id) != 0,
                  cf_err_set(CF_E_PARSE, "duplicate TEE id %s in the registry listing", l->v[i].id));
    return 0;
}

/* ---- the view ------------------------------------------------------------------------ */

struct tee_state {
    uint32_t outstanding;
    uint64_t unhealthy_until; /* cf_gw_now_ms() time; 0 = healthy */
};

struct cf_gw_registry {
    pthread_mutex_t mu;       /* view and state */
    pthread_mutex_t fetch_mu; /* one fetch at a time */
    cf_gw_registry_fetch fetch;
    void *cls;
    uint64_t ttl_ms, unhealthy_ms;
    cf_gw_tee *tees; /* sorted by id */
    struct tee_state *st;
    size_t n;
    bool have;            /* a fetch has succeeded */
    uint64_t fetched_ms;  /* start of the last successful fetch */
    uint64_t attempt_ms;  /* start of the last fetch; 0 = never */
    bool attempt_ok;
    char error[256];      /* reason of the last failed fetch */
    uint64_t rr;          /* rotation among equally loaded TEEs */
};

int cf_gw_registry_new(cf_gw_registry_fetch fetch, void *cls, uint64_t ttl_ms,
                       uint64_t unhealthy_ms, cf_gw_registry **ret)
{
    cf_gw_registry *r;

    CF_ENSURE(fetch != NULL && ret != NULL, CF_E_INVAL);
    r = calloc(1, sizeof(*r));
    CF_ENSURE(r != NULL, CF_E_NOMEM);
    if (pthread_mutex_init(&r->mu, NULL) != 0) {
        free(r);
        return CF_E_NOMEM;
    }
    if (pthread_mutex_init(&r->fetch_mu, NULL) != 0) {
        pthread_mutex_destroy(&r->mu);
        free(r);
        return CF_E_NOMEM;
    }
    r->fetch = fetch;
    r->cls = cls;
    r->ttl_ms = ttl_ms;
    r->unhealthy_ms = unhealthy_ms;
    *ret = r;
    return 0;
}

void cf_gw_registry_free(cf_gw_registry *r)
{
    if (r == NULL)
        return;
    pthread_mutex_destroy(&r->mu);
    pthread_mutex_destroy(&r->fetch_mu);
    free(r->tees);
    free(r->st);
    free(r);
}

/* Index of id in the sorted view, or -1. Caller holds mu. */
static long find_locked(const cf_gw_tee *v, size_t n, const char *id)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(v[mid].id, id);
        if (c == 0)
            return (long)mid;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1;
}

enum decision { USE_VIEW, MUST_FETCH, REFUSE };

/* Caller holds mu. */
static enum decision decide_locked(const cf_gw_registry *r, bool force, uint64_t now)
{
    bool fresh = r->have && now - r->fetched_ms < r->ttl_ms;
    bool recent = r->attempt_ms != 0 && now - r->attempt_ms < CF_GW_REGISTRY_MIN_REFRESH_MS;

    if (fresh && !force)
        return USE_VIEW;
    if (recent) /* throttle: a flood of unknown ids or a dead KMS must not become a fetch flood */
        return r->attempt_ok ? USE_VIEW : REFUSE;
    return MUST_FETCH;
}

static int refuse_locked(const cf_gw_registry *r)
{
    return cf_err_set(CF_E_UNAVAILABLE, "TEE registry unavailable: %s",
                      r->error[0] ? r->error : "not fetched yet");
}

static int do_fetch(cf_gw_registry *r, uint64_t start)
{
    cf_gw_tee_list l = {0};
    struct tee_state *st = NULL;
    int rc;

    pthread_mutex_lock(&r->mu);
    r->attempt_ms = start ? start : 1;
    pthread_mutex_unlock(&r->mu);
    rc = r->fetch(r->cls, &l);
    if (rc == 0 && l.n > 0) {
        st = calloc(l.n, sizeof(*st));
        if (st == NULL)
            rc = CF_E_NOMEM;
    }
    pthread_mutex_lock(&r->mu);
    if (rc != 0) {
        r->attempt_ok = false;
        if (cf_fmt(r->error, sizeof(r->error), "%s", cf_err_detail(rc)) < 0)
            memcpy(r->error, "fetch failed", sizeof("fetch failed"));
        rc = refuse_locked(r);
        pthread_mutex_unlock(&r->mu);
        cf_gw_tee_list_free(&l);
        return rc;
    }
    /* Carry the routing state of TEEs that are still listed. */
    for (size_t i = 0; i < l.n; i++) {
        long j = find_locked(r->tees, r->n, l.v[i].id);
        if (j >= 0)
            st[i] = r->st[j];
    }
    free(r->tees);
    free(r->st);
    r->tees = l.v;
    r->n = l.n;
    r->st = st;
    r->have = true;
    r->fetched_ms = start;
    r->attempt_ok = true;
    r->error[0] = 0;
    pthread_mutex_unlock(&r->mu);
    return 0;
}

int cf_gw_registry_sync(cf_gw_registry *r, bool force)
{
    enum decision d;
    uint64_t now = cf_gw_now_ms();
    int rc = 0;

    CF_ENSURE(r != NULL, CF_E_INVAL);
    pthread_mutex_lock(&r->mu);
    d = decide_locked(r, force, now);
    if (d == REFUSE)
        rc = refuse_locked(r);
    pthread_mutex_unlock(&r->mu);
    if (d != MUST_FETCH)
        return rc;

    /* Single flight: whoever waited here re-decides with the result of the fetch
     * that was running meanwhile. */
    pthread_mutex_lock(&r->fetch_mu);
    now = cf_gw_now_ms();
    pthread_mutex_lock(&r->mu);
    d = decide_locked(r, force, now);
    if (d == REFUSE)
        rc = refuse_locked(r);
    pthread_mutex_unlock(&r->mu);
    if (d == MUST_FETCH)
        rc = do_fetch(r, now);
    pthread_mutex_unlock(&r->fetch_mu);
    return rc;
}

int cf_gw_registry_get(cf_gw_registry *r, const char *id, cf_gw_tee *ret)
{
    long i;

    CF_ENSURE(r != NULL && id != NULL && ret != NULL, CF_E_INVAL);
    CF_GUARD(cf_gw_registry_sync(r, false));
    pthread_mutex_lock(&r->mu);
    i = find_locked(r->tees, r->n, id);
    if (i >= 0)
        *ret = r->tees[i];
    pthread_mutex_unlock(&r->mu);
    return i >= 0 ? 0 : CF_E_NOT_FOUND;
}

int cf_gw_registry_pick(cf_gw_registry *r, const char *tenant, cf_gw_serves_fn serves,
                        void *cls, cf_gw_tee *out, size_t max, size_t *ret_n,
                        bool *ret_any_unhealthy)
{
    uint32_t *cand = NULL;
    size_t nc = 0, got = 0, rot;
    bool unhealthy_skipped = false;
    uint64_t now = cf_gw_now_ms();
    int rc = 0;

    CF_ENSURE(r != NULL && tenant != NULL && serves != NULL && ret_n != NULL, CF_E_INVAL);
    CF_ENSURE(out != NULL || max == 0, CF_E_INVAL);
    CF_GUARD(cf_gw_registry_sync(r, false));
    pthread_mutex_lock(&r->mu);
    if (r->n > 0) {
        cand = malloc(r->n * sizeof(*cand));
        CF_ENSURE_OUT(cand != NULL, CF_E_NOMEM);
    }
    for (size_t i = 0; i < r->n; i++) {
        const cf_gw_tee *t = &r->tees[i];
        if (t->tenant[0] == 0 || strcmp(t->tenant, tenant) != 0 ||
            strcmp(t->status, CF_GW_TEE_ACTIVE) != 0 || t->endpoint[0] == 0 ||
            !serves(cls, t->deployment))
            continue;
        if (r->st[i].unhealthy_until > now) {
            unhealthy_skipped = true;
            continue;
        }
        cand[nc++] = (uint32_t)i;
    }
    /* Least outstanding first; among equals, start from a rotating position so
     * that idle TEEs share the load. */
    rot = nc ? (size_t)(r->rr++ % nc) : 0;
    while (got < max && got < nc) {
        size_t best = SIZE_MAX;
        for (size_t k = 0; k < nc; k++) {
            size_t j = (rot + k) % nc;
            if (cand[j] == UINT32_MAX)
                continue;
            if (best == SIZE_MAX || r->st[cand[j]].outstanding < r->st[cand[best]].outstanding)
                best = j;
        }
        out[got++] = r->tees[cand[best]];
        cand[best] = UINT32_MAX;
    }
    *ret_n = got;
    if (ret_any_unhealthy != NULL)
        *ret_any_unhealthy = unhealthy_skipped && nc == 0;
out:
    pthread_mutex_unlock(&r->mu);
    free(cand);
    return rc;
}

void cf_gw_registry_begin(cf_gw_registry *r, const char *id)
{
    long i;
    pthread_mutex_lock(&r->mu);
    i = find_locked(r->tees, r->n, id);
    if (i >= 0)
        r->st[i].outstanding++;
    pthread_mutex_unlock(&r->mu);
}

void cf_gw_registry_end(cf_gw_registry *r, const char *id)
{
    long i;
    pthread_mutex_lock(&r->mu);
    i = find_locked(r->tees, r->n, id);
    if (i >= 0 && r->st[i].outstanding > 0)
        r->st[i].outstanding--;
    pthread_mutex_unlock(&r->mu);
}

void cf_gw_registry_mark_unhealthy(cf_gw_registry *r, const char *id)
{
    long i;
    uint64_t until = cf_gw_now_ms() + r->unhealthy_ms;
    pthread_mutex_lock(&r->mu);
    i = find_locked(r->tees, r->n, id);
    if (i >= 0)
        r->st[i].unhealthy_until = until;
    pthread_mutex_unlock(&r->mu);
}

bool cf_gw_registry_is_unhealthy(cf_gw_registry *r, const char *id)
{
    long i;
    bool v = false;
    uint64_t now = cf_gw_now_ms();
    pthread_mutex_lock(&r->mu);
    i = find_locked(r->tees, r->n, id);
    if (i >= 0)
        v = r->st[i].unhealthy_until > now;
    pthread_mutex_unlock(&r->mu);
    return v;
}

uint32_t cf_gw_registry_outstanding(cf_gw_registry *r, const char *id)
{
    long i;
    uint32_t v = 0;
    pthread_mutex_lock(&r->mu);
    i = find_locked(r->tees, r->n, id);
    if (i >= 0)
        v = r->st[i].outstanding;
    pthread_mutex_unlock(&r->mu);
    return v;
}
