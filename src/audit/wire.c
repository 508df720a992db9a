/*
 * Query parameters and entry JSON of the audit service (wire.h).
 */
#include "audit/wire.h"

#include <stdlib.h>
#include <string.h>

#include "auditlog/event.h"
#include "auditlog/sth.h"
#include "base/err.h"
#include "base/limits.h"
#include "base/parse.h"

#define MAX_PARAMS 8

/* ---- parameter collection ---------------------------------------------------------- */

/* A parameter name fit to be quoted back in an error message. */
static bool printable_name(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n > 32)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x21 || (unsigned char)s[i] > 0x7e)
            return false;
    return true;
}

/* Maps every parameter of q to its slot in allowed (NULL-terminated); vals[i]
 * receives the value of allowed[i] or NULL. Unknown and repeated names fail:
 * a repeated filter would be ambiguous. */
static int collect(const cf_http_query *q, const char *const *allowed, const char *vals[MAX_PARAMS])
{
    for (size_t i = 0; i < MAX_PARAMS; i++)
        vals[i] = NULL;
    for (size_t k = 0; k < q->n; k++) {
        size_t i;
        for (i = 0; allowed[i] != NULL; i++)
            if (strcmp(q->kv[k].name, allowed[i]) == 0)
                break;
        if (allowed[i] == NULL) {
            if (printable_name(q->kv[k].name))
                return cf_err_set(CF_E_PARSE, "unknown query parameter '%s'", q->kv[k].name);
            return cf_err_set(CF_E_PARSE, "unknown query parameter");
        }
        if (vals[i] != NULL)
            return cf_err_set(CF_E_PARSE, "query parameter '%s' is given more than once", allowed[i]);
        vals[i] = q->kv[k].value;
    }
    return 0;
}

static int get_u64(const char *name, const char *v, uint64_t min, uint64_t max, uint64_t *ret)
{
    uint64_t x = 0;

    if (cf_parse_u64(v, max, &x) != 0 || x < min)
        return cf_err_set(CF_E_PARSE, "query parameter '%s' must be an integer %llu..%llu", name,
                          (unsigned long long)min, (unsigned long long)max);
    *ret = x;
    return 0;
}

/* A filter value: 1..max bytes, no control characters. */
static int get_text(const char *name, const char *v, size_t max, const char **ret)
{
    size_t n = strlen(v);

    if (n == 0 || n > max)
        return cf_err_set(CF_E_PARSE, "query parameter '%s' must be 1..%zu characters", name, max);
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)v[i] < 0x20 || (unsigned char)v[i] == 0x7f)
            return cf_err_set(CF_E_PARSE, "query parameter '%s' holds a control character", name);
    *ret = v;
    return 0;
}

static int get_limit(const char *v, size_t *ret)
{
    uint64_t x = CF_AUDITSVC_PAGE_DEFAULT;

    if (v != NULL)
        CF_GUARD(get_u64("limit", v, 1, CF_AUDIT_MAX_PAGE, &x));
    *ret = (size_t)x;
    return 0;
}

int cf_auditsvc_parse_time(const char *s, int64_t *ret_ms)
{
    size_t n = strlen(s);
    bool digits = n > 0;
    int64_t ms = 0;

    if (n == 0 || n > CF_AUDITSVC_MAX_QUERY_TIME)
        return cf_err_set(CF_E_PARSE, "a time must be RFC 3339 UTC or unix milliseconds");
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            digits = false;
    if (digits) {
        if (cf_parse_i64(s, 0, CF_AUDIT_MAX_TIME_MS, &ms) != 0)
            return cf_err_set(CF_E_RANGE, "a time in unix milliseconds must be 0..%lld",
                              (long long)CF_AUDIT_MAX_TIME_MS);
    } else if (cf_audit_parse_time(s, &ms) != 0) {
        return cf_err_set(CF_E_PARSE, "a time must be RFC 3339 UTC (2024-05-01T12:00:00Z) or unix milliseconds");
    }
    *ret_ms = ms;
    return 0;
}

/* ---- the endpoints' parameters -------------------------------------------------------- */

int cf_auditsvc_q_entries(const cf_http_query *q, cf_auditsvc_entries_q *ret)
{
    enum { P_TENANT, P_ACTION, P_TEE, P_SINCE, P_UNTIL, P_AFTER, P_LIMIT, P_SIZE };
    static const char *const names[] = {"tenant", "action", "tee_id", "since", "until",
                                        "after",  "limit",  "tree_size", NULL};
    const char *v[MAX_PARAMS];
    cf_auditsvc_entries_q r;
    int rc;

    _Static_assert(sizeof(names) / sizeof(names[0]) <= MAX_PARAMS + 1, "slots");
    memset(&r, 0, sizeof(r));
    CF_GUARD(collect(q, names, v));
    if (v[P_TENANT] != NULL)
        CF_GUARD(get_text("tenant", v[P_TENANT], CF_ID_MAX_LEN, &r.tenant));
    if (v[P_ACTION] != NULL)
        CF_GUARD(get_text("action", v[P_ACTION], CF_AUDIT_MAX_ACTION_LEN, &r.action));
    if (v[P_TEE] != NULL)
        CF_GUARD(get_text("tee_id", v[P_TEE], CF_ID_MAX_LEN, &r.tee_id));
    if (v[P_SINCE] != NULL) {
        rc = cf_auditsvc_parse_time(v[P_SINCE], &r.since_ms);
        if (rc != 0)
            return cf_err_set(rc, "query parameter 'since': %s", cf_err_detail(rc));
        r.has_since = true;
    }
    if (v[P_UNTIL] != NULL) {
        rc = cf_auditsvc_parse_time(v[P_UNTIL], &r.until_ms);
        if (rc != 0)
            return cf_err_set(rc, "query parameter 'until': %s", cf_err_detail(rc));
        r.has_until = true;
    }
    if (r.has_since && r.has_until && r.since_ms >= r.until_ms)
        return cf_err_set(CF_E_RANGE, "query parameter 'since' must be before 'until'");
    if (v[P_AFTER] != NULL) {
        CF_GUARD(get_u64("after", v[P_AFTER], 0, CF_MERKLE_MAX_SIZE, &r.after));
        r.has_after = true;
    }
    CF_GUARD(get_limit(v[P_LIMIT], &r.limit));
    if (v[P_SIZE] != NULL) {
        CF_GUARD(get_u64("tree_size", v[P_SIZE], 1, CF_MERKLE_MAX_SIZE, &r.tree_size));
        r.has_tree_size = true;
    }
    *ret = r;
    return 0;
}

int cf_auditsvc_q_entry(const cf_http_query *q, bool *ret_has_tree_size, uint64_t *ret_tree_size)
{
    static const char *const names[] = {"tree_size", NULL};
    const char *v[MAX_PARAMS];
    uint64_t size = 0;

    CF_GUARD(collect(q, names, v));
    if (v[0] != NULL)
        CF_GUARD(get_u64("tree_size", v[0], 1, CF_MERKLE_MAX_SIZE, &size));
    *ret_has_tree_size = v[0] != NULL;
    *ret_tree_size = size;
    return 0;
}

int cf_auditsvc_q_sths(const cf_http_query *q, int64_t *ret_after, size_t *ret_limit)
{
    static const char *const names[] = {"after", "limit", NULL};
    const char *v[MAX_PARAMS];
    uint64_t after = 0;
    size_t limit = 0;

    CF_GUARD(collect(q, names, v));
    if (v[0] != NULL)
        CF_GUARD(get_u64("after", v[0], 0, INT64_MAX, &after));
    CF_GUARD(get_limit(v[1], &limit));
    *ret_after = (int64_t)after;
    *ret_limit = limit;
    return 0;
}

int cf_auditsvc_q_sth(const cf_http_query *q, bool *ret_fresh)
{
    static const char *const names[] = {"fresh", NULL};
    const char *v[MAX_PARAMS];
    bool fresh = false;

    CF_GUARD(collect(q, names, v));
    if (v[0] != NULL) {
        if (strcmp(v[0], "1") == 0 || strcmp(v[0], "true") == 0)
            fresh = true;
        else if (strcmp(v[0], "0") != 0 && strcmp(v[0], "false") != 0)
            return cf_err_set(CF_E_PARSE, "query parameter 'fresh' must be 1, 0, true or false");
    }
    *ret_fresh = fresh;
    return 0;
}

int cf_auditsvc_q_inclusion(const cf_http_query *q, uint64_t *ret_seq, uint64_t *ret_tree_size)
{
    static const char *const names[] = {"seq", "tree_size", NULL};
    const char *v[MAX_PARAMS];
    uint64_t seq = 0, size = 0;

    CF_GUARD(collect(q, names, v));
    if (v[0] == NULL || v[1] == NULL)
        return cf_err_set(CF_E_PARSE, "query parameters 'seq' and 'tree_size' are required");
    CF_GUARD(get_u64("seq", v[0], 0, CF_MERKLE_MAX_SIZE - 1, &seq));
    CF_GUARD(get_u64("tree_size", v[1], 1, CF_MERKLE_MAX_SIZE, &size));
    if (seq >= size)
        return cf_err_set(CF_E_RANGE, "entry %llu is not in a tree of %llu entries", (unsigned long long)seq,
                          (unsigned long long)size);
    *ret_seq = seq;
    *ret_tree_size = size;
    return 0;
}

int cf_auditsvc_q_consistency(const cf_http_query *q, uint64_t *ret_first, uint64_t *ret_second)
{
    static const char *const names[] = {"first", "second", NULL};
    const char *v[MAX_PARAMS];
    uint64_t m = 0, n = 0;

    CF_GUARD(collect(q, names, v));
    if (v[0] == NULL || v[1] == NULL)
        return cf_err_set(CF_E_PARSE, "query parameters 'first' and 'second' are required");
    CF_GUARD(get_u64("first", v[0], 1, CF_MERKLE_MAX_SIZE, &m));
    CF_GUARD(get_u64("second", v[1], 1, CF_MERKLE_MAX_SIZE, &n));
    if (m > n)
        return cf_err_set(CF_E_RANGE, "query parameter 'first' must not exceed 'second'");
    *ret_first = m;
    *ret_second = n;
    return 0;
}

/* ---- entry JSON ------------------------------------------------------------------------ */

static int set_new(json_t *o, const char *key, json_t *v)
{
    if (v == NULL || json_object_set_new(o, key, v) != 0)
        return CF_E_NOMEM;
    return 0;
}

int cf_auditsvc_entry_to_json(const cf_audit_entry *e, const cf_merkle_proof *proof, json_t **ret)
{
    char hex[2 * CF_MERKLE_HASH_LEN + 1];
    const char *text = e->entry != NULL ? (const char *)e->entry : "";
    json_t *o = json_object(), *s = NULL, *arr = NULL;
    char *b64 = NULL;
    int rc;

    CF_ENSURE(o != NULL, CF_E_NOMEM);
    CF_GUARD_OUT(set_new(o, "seq", json_integer((json_int_t)e->seq)));
    CF_GUARD_OUT(set_new(o, "event_id", json_string(e->event_id)));
    cf_hex_encode(e->leaf, CF_MERKLE_HASH_LEN, hex);
    CF_GUARD_OUT(set_new(o, "leaf_hash", json_string(hex)));
    /* json_stringn refuses invalid UTF-8; a NUL would not survive strict parsing. */
    if (memchr(text, 0, e->entry_len) == NULL)
        s = json_stringn(text, e->entry_len);
    if (s != NULL) {
        CF_GUARD_OUT(set_new(o, "entry", s));
    } else {
        b64 = cf_b64url_encode_alloc((const uint8_t *)text, e->entry_len);
        CF_ENSURE_OUT(b64 != NULL, CF_E_NOMEM);
        CF_GUARD_OUT(set_new(o, "entry_b64", json_string(b64)));
    }
    if (proof != NULL) {
        CF_GUARD_OUT(cf_audit_proof_to_json(proof, &arr));
        CF_GUARD_OUT(set_new(o, "proof", arr));
    }
    *ret = o;
    o = NULL;
    rc = 0;
out:
    free(b64);
    json_decref(o);
    return rc;
}

size_t cf_auditsvc_entry_json_bound(const cf_audit_entry *e, size_t proof_len)
{
    /* Escaping as a JSON string grows a byte to at most 6 ("\u001f"); base64url
     * to 4/3. Each proof element is 64 hex digits, quotes and a comma. */
    return 6 * e->entry_len + 67 * proof_len + 256;
}
