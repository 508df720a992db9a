/*
 * Tenant keys, data keys and wrapped values (DESIGN.md §4). See keys.h for the
 * contract and docs/internals/kms-keys.md for the model.
 *
 * Layout of this file: validation, store handle pool, key cache, key
 * material (HSM wrap, derivation), audit events, the mutation runner (one
 * store transaction per operation, audit event before commit), schema, and
 * the operations.
 */
#include "kms/keys.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/err.h"
#include "base/json.h"
#include "base/log.h"
#include "base/parse.h"
#include "base/secmem.h"
#include "crypto/hash.h"
#include "kms/aead.h"

/* Labels: each use of a key gets its own, so that no value made for one
 * purpose is accepted for another. */
#define LABEL_TENANT_KEY "coffer/v1 tenant-key" /* HSM wrap AAD of a tenant-key version */
#define LABEL_DERIVE "coffer/v1 wrap-key"       /* HKDF info: tenant key -> value key */
#define LABEL_WRAP "coffer/v1 wrap"             /* AAD of public wrapped values */
#define LABEL_SEAL "coffer/v1 seal"             /* AAD of KMS-internal sealed values */

#define WRAPPED_KEY_LEN (CF_KMS_KEY_LEN + CF_HSM_WRAP_OVERHEAD)
#define AAD_MAX 2048
#define RESOURCE_MAX (CF_ID_MAX_LEN + 32)
#define DETAIL_MAX 512
#define PRINCIPAL_MAX CF_SPIFFE_ID_MAX_LEN
#define NIL UINT32_MAX

_Static_assert(CF_ID_MAX_LEN <= UINT16_MAX, "ids are length-prefixed with u16 in AADs");
_Static_assert(CF_KMS_MAX_CONTEXT + 2 * CF_ID_MAX_LEN + 64 <= AAD_MAX, "AAD buffer too small");
_Static_assert(CF_KMS_CACHE_MAX < NIL, "cache indices are u32");

/* ---- cache ------------------------------------------------------------------ */

typedef struct {
    char tenant[CF_ID_MAX_LEN + 1];
    uint32_t version;
    uint32_t prev, next; /* LRU list, head = most recently used */
    uint32_t hnext;      /* hash chain, or free list */
    bool used;
} cache_ent;

typedef struct {
    pthread_mutex_t mu;
    cache_ent *ents;
    uint8_t *slab;      /* cap * CF_KMS_KEY_LEN bytes of cf_secure_alloc memory */
    uint32_t *buckets;
    uint32_t cap, count, nbuckets, head, tail, free_head;
    uint64_t seed;
    uint64_t epoch;     /* bumped by every invalidation (see with_key) */
    uint64_t hits, misses, evictions, unwraps;
} key_cache;

struct cf_kms_keys {
    cf_hsm *hsm;
    cf_spool *spool;
    char *dsn;
    cf_kms_clock_fn clock;
    void *clock_arg;
    pthread_mutex_t pool_mu;
    cf_store *idle[CF_KMS_STORE_POOL];
    size_t nidle;
    key_cache cache;
};

/* ---- validation ------------------------------------------------------------- */

/* Tenant and TEE ids: 1..CF_ID_MAX_LEN of [A-Za-z0-9._:-]. No '/', so that
 * audit resources ("tenant-key/t1/v3") stay unambiguous. */
static bool id_ok(const char *s)
{
    size_t n;

    if (s == NULL)
        return false;
    n = strnlen(s, CF_ID_MAX_LEN + 1);
    if (n == 0 || n > CF_ID_MAX_LEN)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == ':' || c == '-'))
            return false;
    }
    return true;
}

static int check_id(const char *what, const char *s)
{
    if (s == NULL)
        return cf_err_set(CF_E_INVAL, "%s is required", what);
    if (!id_ok(s))
        return cf_err_set(CF_E_INVAL, "%s must be 1-%d characters of A-Z a-z 0-9 . _ : -", what,
                          CF_ID_MAX_LEN);
    return 0;
}

/* Free text that goes into audit events: bounded, valid UTF-8, no control characters. */
static bool text_ok(const char *s, size_t max)
{
    size_t n;
    json_t *j;

    n = strnlen(s, max + 1);
    if (n == 0 || n > max)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return false;
    j = json_stringn(s, n); /* NULL if not valid UTF-8 */
    if (j == NULL)
        return false;
    json_decref(j);
    return true;
}

static int check_reason(const char *reason)
{
    if (reason == NULL || !text_ok(reason, CF_KMS_MAX_REASON))
        return cf_err_set(CF_E_INVAL, "reason is required: 1-%d bytes of printable UTF-8",
                          CF_KMS_MAX_REASON);
    return 0;
}

static bool caller_ok(const cf_kms_caller *who)
{
    return who == NULL || ((who->principal == NULL || text_ok(who->principal, PRINCIPAL_MAX)) &&
                           (who->request_id == NULL || text_ok(who->request_id, CF_ID_MAX_LEN)));
}

static int check_caller(const cf_kms_caller *who)
{
    if (caller_ok(who))
        return 0;
    if (who->principal != NULL && !text_ok(who->principal, PRINCIPAL_MAX))
        return cf_err_set(CF_E_INVAL, "caller principal is not printable UTF-8 of at most %d bytes",
                          PRINCIPAL_MAX);
    if (who->request_id != NULL && !text_ok(who->request_id, CF_ID_MAX_LEN))
        return cf_err_set(CF_E_INVAL, "request id is not printable UTF-8 of at most %d bytes",
                          CF_ID_MAX_LEN);
    return 0;
}

static int check_binding(const cf_kms_binding *b)
{
    CF_ENSURE(b != NULL, CF_E_INVAL);
    CF_GUARD(check_id("tenant", b->tenant));
    if (b->tee_id != NULL)
        CF_GUARD(check_id("tee_id", b->tee_id));
    if (b->context == NULL && b->context_len != 0)
        return cf_err_set(CF_E_INVAL, "context is NULL but context_len is %zu", b->context_len);
    if (b->context_len > CF_KMS_MAX_CONTEXT)
        return cf_err_set(CF_E_TOO_LARGE, "context of %zu bytes exceeds %d bytes", b->context_len,
                          CF_KMS_MAX_CONTEXT);
    return 0;
}

static int64_t now_s(const cf_kms_keys *k)
{
    return k->clock != NULL ? k->clock(k->clock_arg) : (int64_t)time(NULL);
}

/* Versions come from the store as BIGINT: anything outside 1..MAX is a corrupt row. */
static int col_version(cf_store_rows *r, int col, uint32_t *ret)
{
    int64_t v;

    CF_GUARD(cf_store_col_i64(r, col, &v));
    if (v < 1 || v > (int64_t)CF_KMS_MAX_KEY_VERSION)
        return cf_err_set(CF_E_STORE, "kms store holds an invalid key version");
    *ret = (uint32_t)v;
    return 0;
}

static int col_i64_or0(cf_store_rows *r, int col, int64_t *ret)
{
    bool null;

    CF_GUARD(cf_store_col_is_null(r, col, &null));
    if (null) {
        *ret = 0;
        return 0;
    }
    return cf_store_col_i64(r, col, ret);
}

/* ---- store handle pool --------------------------------------------------------
 * A cf_store handle is one connection with one transaction state and must not
 * be shared between threads (store.h). Each call takes a handle from the pool
 * (or opens one) and gives it back; at most CF_KMS_STORE_POOL idle handles are
 * kept. */

static int store_get(cf_kms_keys *k, cf_store **ret)
{
    cf_store *s = NULL;

    pthread_mutex_lock(&k->pool_mu);
    if (k->nidle > 0)
        s = k->idle[--k->nidle];
    pthread_mutex_unlock(&k->pool_mu);
    if (s == NULL)
        CF_GUARD(cf_store_open(k->dsn, &s));
    *ret = s;
    return 0;
}

static void store_put(cf_kms_keys *k, cf_store *s)
{
    if (s == NULL)
        return;
    cf_store_rollback(s); /* no-op unless a transaction was left open */
    pthread_mutex_lock(&k->pool_mu);
    if (k->nidle < CF_KMS_STORE_POOL) {
        k->idle[k->nidle++] = s;
        s = NULL;
    }
    pthread_mutex_unlock(&k->pool_mu);
    cf_store_close(s);
}

/* ---- key cache -----------------------------------------------------------------
 * LRU over a fixed array; keys in one locked slab. The hash is seeded with a
 * random value so that chosen tenant ids cannot force long chains. */

static uint32_t cache_hash(const key_cache *c, const char *tenant, uint32_t version)
{
    uint64_t h = 0xcbf29ce484222325ull ^ c->seed; /* FNV-1a, seeded */

    for (const char *p = tenant; *p != '\0'; p++) {
        h ^= (uint8_t)*p;
        h *= 0x100000001b3ull;
    }
    for (int i = 0; i < 4; i++) {
        h ^= (version >> (8 * i)) & 0xff;
        h *= 0x100000001b3ull;
    }
    h ^= h >> 29;
    return (uint32_t)h & (c->nbuckets - 1);
}

static uint8_t *cache_slot(key_cache *c, uint32_t i)
{
    return c->slab + (size_t)i * CF_KMS_KEY_LEN;
}

static void lru_unlink(key_cache *c, uint32_t i)
{
    cache_ent *e = &c->ents[i];

    if (e->prev != NIL)
        c->ents[e->prev].next = e->next;
    else
        c->head = e->next;
    if (e->next != NIL)
        c->ents[e->next].prev = e->prev;
    else
        c->tail = e->prev;
    e->prev = e->next = NIL;
}

static void lru_push_front(key_cache *c, uint32_t i)
{
    cache_ent *e = &c->ents[i];

    e->prev = NIL;
    e->next = c->head;
    if (c->head != NIL)
        c->ents[c->head].prev = i;
    c->head = i;
    if (c->tail == NIL)
        c->tail = i;
}

static uint32_t cache_find(key_cache *c, const char *tenant, uint32_t version)
{
    for (uint32_t i = c->buckets[cache_hash(c, tenant, version)]; i != NIL; i = c->ents[i].hnext)
        if (c->ents[i].version == version && strcmp(c->ents[i].tenant, tenant) == 0)
            return i;
    return NIL;
}

static void cache_remove(key_cache *c, uint32_t i)
{
    cache_ent *e = &c->ents[i];
    uint32_t *pp = &c->buckets[cache_hash(c, e->tenant, e->version)];

    while (*pp != i)
        pp = &c->ents[*pp].hnext;
    *pp = e->hnext;
    lru_unlink(c, i);
    cf_wipe(cache_slot(c, i), CF_KMS_KEY_LEN);
    memset(e, 0, sizeof(*e));
    e->prev = e->next = NIL;
    e->hnext = c->free_head;
    c->free_head = i;
    c->count--;
}

static void cache_insert(key_cache *c, const char *tenant, uint32_t version, const uint8_t *key)
{
    uint32_t i, b;
    cache_ent *e;

    if (cache_find(c, tenant, version) != NIL)
        return;
    if (c->count == c->cap) {
        cache_remove(c, c->tail); /* wipes the slot */
        c->evictions++;
    }
    i = c->free_head;
    e = &c->ents[i];
    c->free_head = e->hnext;
    memcpy(e->tenant, tenant, strlen(tenant) + 1);
    e->version = version;
    e->used = true;
    memcpy(cache_slot(c, i), key, CF_KMS_KEY_LEN);
    b = cache_hash(c, tenant, version);
    e->hnext = c->buckets[b];
    c->buckets[b] = i;
    lru_push_front(c, i);
    c->count++;
}

/* Drops (wipes) cached versions of tenant: exactly `version` if non-zero,
 * otherwise every version below `below` if non-zero, otherwise all of them.
 * Bumps the epoch so that a key unwrapped before the invalidation is not
 * cached after it. */
static void cache_drop(cf_kms_keys *k, const char *tenant, uint32_t version, uint32_t below)
{
    key_cache *c = &k->cache;

    pthread_mutex_lock(&c->mu);
    c->epoch++;
    for (uint32_t i = 0; i < c->cap; i++) {
        cache_ent *e = &c->ents[i];
        if (!e->used || strcmp(e->tenant, tenant) != 0)
            continue;
        if (version != 0 ? e->version == version : (below == 0 || e->version < below))
            cache_remove(c, i);
    }
    pthread_mutex_unlock(&c->mu);
}

static uint64_t cache_epoch(cf_kms_keys *k)
{
    uint64_t e;

    pthread_mutex_lock(&k->cache.mu);
    e = k->cache.epoch;
    pthread_mutex_unlock(&k->cache.mu);
    return e;
}

static int cache_init(key_cache *c, size_t cap)
{
    CF_GUARD(cf_random(&c->seed, sizeof(c->seed)));
    c->cap = (uint32_t)cap;
    c->nbuckets = 16;
    while (c->nbuckets < c->cap)
        c->nbuckets <<= 1;
    c->ents = calloc(cap, sizeof(*c->ents));
    c->buckets = malloc((size_t)c->nbuckets * sizeof(*c->buckets));
    c->slab = cf_secure_alloc(cap * CF_KMS_KEY_LEN);
    if (c->ents == NULL || c->buckets == NULL || c->slab == NULL)
        return CF_E_NOMEM;
    for (uint32_t i = 0; i < c->nbuckets; i++)
        c->buckets[i] = NIL;
    for (uint32_t i = 0; i < c->cap; i++) {
        c->ents[i].prev = c->ents[i].next = NIL;
        c->ents[i].hnext = i + 1 < c->cap ? i + 1 : NIL;
    }
    c->free_head = 0;
    c->head = c->tail = NIL;
    return 0;
}

static void cache_destroy(key_cache *c)
{
    cf_secure_free(c->slab); /* wipes every slot */
    free(c->ents);
    free(c->buckets);
    c->slab = NULL;
    c->ents = NULL;
    c->buckets = NULL;
}

/* ---- key material ------------------------------------------------------------ */

/* AAD of the HSM wrap of a tenant-key version:
 * "coffer/v1 tenant-key" || 0x00 || u16 len || tenant || u32 version. */
static int tenant_key_aad(cf_buf *aad, const char *tenant, uint32_t version)
{
    size_t n = strlen(tenant);

    CF_GUARD(cf_buf_put(aad, LABEL_TENANT_KEY, sizeof(LABEL_TENANT_KEY)));
    CF_GUARD(cf_buf_put_u16be(aad, (uint16_t)n));
    CF_GUARD(cf_buf_put(aad, tenant, n));
    return cf_buf_put_u32be(aad, version);
}

/* 32 fresh bytes: the HSM's generator XOR OpenSSL's private DRBG, so that a
 * weak generator on either side alone does not make a weak key. */
static int new_tenant_key(cf_kms_keys *k, uint8_t *key)
{
    uint8_t mix[CF_KMS_KEY_LEN];
    int rc;

    CF_GUARD(cf_hsm_random(k->hsm, key, CF_KMS_KEY_LEN));
    rc = cf_random_secret(mix, sizeof(mix));
    if (rc == 0)
        for (size_t i = 0; i < CF_KMS_KEY_LEN; i++)
            key[i] ^= mix[i];
    cf_wipe(mix, sizeof(mix));
    return rc;
}

static int wrap_tenant_key(cf_kms_keys *k, const char *tenant, uint32_t version, const uint8_t *key,
                           cf_buf *out)
{
    cf_buf aad;
    int rc;

    cf_buf_init(&aad, 256);
    rc = tenant_key_aad(&aad, tenant, version);
    if (rc == 0)
        rc = cf_hsm_wrap(k->hsm, aad.data, aad.len, key, CF_KMS_KEY_LEN, out);
    cf_buf_free(&aad);
    return rc;
}

/* The key that seals values is not the tenant key itself but
 * HKDF-SHA256(ikm = tenant key, info = "coffer/v1 wrap-key" || 0 || u16 len ||
 * tenant || u32 version) (RFC 5869): it is bound to its tenant and version, and
 * other uses of the tenant key can get other labels. */
static int derive_value_key(const char *tenant, uint32_t version, const uint8_t *tkey, uint8_t *out)
{
    uint8_t info[sizeof(LABEL_DERIVE) + 2 + CF_ID_MAX_LEN + 4];
    size_t n = strlen(tenant), off = 0;

    memcpy(info, LABEL_DERIVE, sizeof(LABEL_DERIVE));
    off += sizeof(LABEL_DERIVE);
    info[off++] = (uint8_t)(n >> 8);
    info[off++] = (uint8_t)n;
    memcpy(info + off, tenant, n);
    off += n;
    for (int i = 3; i >= 0; i--)
        info[off++] = (uint8_t)(version >> (8 * i));
    return cf_hkdf(CF_SHA256, NULL, 0, tkey, CF_KMS_KEY_LEN, info, off, out, CF_KMS_KEY_LEN);
}

typedef int (*key_fn)(void *arg, const uint8_t *key);

/* Runs fn with the value key of (tenant, version). A cache hit runs fn under
 * the cache lock (the key never leaves the slab; fn is a single AES-GCM pass
 * over at most CF_KMS_MAX_PLAINTEXT bytes). A miss unwraps `wrapped` in the
 * HSM, derives the value key into locked memory, caches it — unless an
 * invalidation happened since `epoch0`, which the caller read before it read
 * the key's state from the store — and wipes the temporaries. */
static int with_key(cf_kms_keys *k, const char *tenant, uint32_t version, const uint8_t *wrapped,
                    size_t wrapped_len, uint64_t epoch0, key_fn fn, void *arg)
{
    key_cache *c = &k->cache;
    cf_buf aad, tk;
    uint8_t *vk = NULL;
    uint32_t i;
    int rc;

    pthread_mutex_lock(&c->mu);
    i = cache_find(c, tenant, version);
    if (i != NIL) {
        c->hits++;
        lru_unlink(c, i);
        lru_push_front(c, i);
        rc = fn(arg, cache_slot(c, i));
        pthread_mutex_unlock(&c->mu);
        return rc;
    }
    c->misses++;
    pthread_mutex_unlock(&c->mu);

    cf_buf_init(&aad, 256);
    cf_buf_init_secret(&tk, WRAPPED_KEY_LEN);
    CF_GUARD_OUT(tenant_key_aad(&aad, tenant, version));
    rc = cf_hsm_unwrap(k->hsm, aad.data, aad.len, wrapped, wrapped_len, &tk);
    if (rc == CF_E_DECRYPT) {
        /* Not the caller's input: the store's copy is wrong (an integrity
         * failure of the store, or a different master key). */
        rc = cf_err_set(CF_E_STORE, "stored key version %u of tenant %s does not unwrap under "
                        "the HSM master key (store modified, or another HSM)", version, tenant);
        goto out;
    }
    CF_GUARD_OUT(rc);
    if (tk.len != CF_KMS_KEY_LEN) {
        rc = cf_err_set(CF_E_STORE, "stored key version %u of tenant %s has a bad length",
                        version, tenant);
        goto out;
    }
    vk = cf_secure_alloc(CF_KMS_KEY_LEN);
    CF_ENSURE_OUT(vk != NULL, CF_E_NOMEM);
    CF_GUARD_OUT(derive_value_key(tenant, version, tk.data, vk));
    pthread_mutex_lock(&c->mu);
    c->unwraps++;
    if (c->epoch == epoch0)
        cache_insert(c, tenant, version, vk);
    pthread_mutex_unlock(&c->mu);
    rc = fn(arg, vk);
out:
    cf_secure_free(vk);
    cf_buf_free(&tk);
    cf_buf_free(&aad);
    return rc;
}

/* Caches a key this process just created (saves the first unwrap). */
static void cache_fresh(cf_kms_keys *k, const char *tenant, uint32_t version, const uint8_t *tkey,
                        uint64_t epoch0)
{
    uint8_t *vk = cf_secure_alloc(CF_KMS_KEY_LEN);

    if (vk == NULL)
        return;
    if (derive_value_key(tenant, version, tkey, vk) == 0) {
        pthread_mutex_lock(&k->cache.mu);
        if (k->cache.epoch == epoch0)
            cache_insert(&k->cache, tenant, version, vk);
        pthread_mutex_unlock(&k->cache.mu);
    }
    cf_secure_free(vk);
}

/* ---- audit events -------------------------------------------------------------
 * One JSON object per operation, appended durably to the spool. Values are ids,
 * versions, reasons and error texts; never key material or plaintext. */

typedef struct {
    json_t *o;
    bool bad; /* an allocation failed while building: the append must fail */
} ev_t;

static void ev_str(ev_t *e, const char *key, const char *val)
{
    json_t *s;

    if (val == NULL || e->o == NULL)
        return;
    s = json_string(val);
    if (s == NULL || json_object_set_new(e->o, key, s) != 0)
        e->bad = true;
}

static void ev_int(ev_t *e, const char *key, int64_t val)
{
    json_t *v;

    if (e->o == NULL)
        return;
    v = json_integer(val);
    if (v == NULL || json_object_set_new(e->o, key, v) != 0)
        e->bad = true;
}

static void ev_bool(ev_t *e, const char *key, bool val)
{
    if (e->o != NULL && json_object_set_new(e->o, key, json_boolean(val)) != 0)
        e->bad = true;
}

static void resource_name(char *out, size_t size, const char *tenant, const char *tee_id,
                          uint32_t version)
{
    int rc;

    if (tenant == NULL && tee_id != NULL)
        rc = cf_fmt(out, size, "tee/%s", tee_id);
    else if (tenant == NULL)
        rc = cf_fmt(out, size, "tenant-key");
    else if (version != 0)
        rc = cf_fmt(out, size, "tenant-key/%s/v%u", tenant, version);
    else
        rc = cf_fmt(out, size, "tenant-key/%s", tenant);
    if (rc != 0) /* cannot happen: ids are bounded */
        out[0] = '\0';
}

/* tenant and tee_id are only recorded when they are valid ids (a failure event
 * for a malformed id must not carry the malformed bytes). */
static ev_t ev_begin(const cf_kms_caller *who, const char *action, const char *tenant,
                     const char *tee_id, uint32_t version, bool success)
{
    char res[RESOURCE_MAX];
    ev_t e = {.o = json_object(), .bad = false};

    if (e.o == NULL)
        e.bad = true;
    if (!id_ok(tenant))
        tenant = NULL;
    if (!id_ok(tee_id))
        tee_id = NULL;
    resource_name(res, sizeof(res), tenant, tee_id, version);
    ev_str(&e, "service", "kms");
    ev_str(&e, "action", action);
    ev_str(&e, "tenant", tenant);
    ev_str(&e, "tee_id", tee_id);
    ev_str(&e, "resource", res);
    if (version != 0)
        ev_int(&e, "version", version);
    ev_str(&e, "outcome", success ? "success" : "failure");
    if (who != NULL && caller_ok(who)) {
        ev_str(&e, "actor", who->principal);
        ev_str(&e, "request_id", who->request_id);
    }
    if (who == NULL || who->principal == NULL)
        ev_str(&e, "actor", "kms");
    return e;
}

/* The audit log accepts only its event fields at the top level
 * (docs/internals/audit-log.md); everything else this module records (version,
 * rotate_every, ...) travels in "details". An event the audit service refuses
 * would block this service's spool forwarder (it fails closed). */
static void ev_normalise(ev_t *e)
{
    static const char *const top[] = {"event_id", "ts",         "service", "actor",   "tenant", "action",
                                      "resource", "outcome",    "details", "tee_id",  "request_id", NULL};
    json_t *details, *v;
    const char *key;
    void *tmp;

    if (e->o == NULL || e->bad)
        return;
    details = json_object_get(e->o, "details");
    if (!json_is_object(details)) {
        details = json_object();
        if (details == NULL || json_object_set_new(e->o, "details", details) != 0) {
            e->bad = true;
            return;
        }
    }
    json_object_foreach_safe(e->o, tmp, key, v) {
        bool known = false;
        for (size_t i = 0; top[i] != NULL && !known; i++)
            known = strcmp(key, top[i]) == 0;
        if (known)
            continue;
        if (json_object_set(details, key, v) != 0 || json_object_del(e->o, key) != 0)
            e->bad = true;
    }
    if (json_object_size(details) == 0)
        (void)json_object_del(e->o, "details");
    if (json_object_get(e->o, "actor") == NULL)
        ev_str(e, "actor", "kms");
}

static int ev_append(cf_kms_keys *k, ev_t *e, char ret_id[CF_SPOOL_EVENT_ID_LEN + 1])
{
    int rc;

    ev_normalise(e);
    if (e->o == NULL || e->bad)
        rc = cf_err_set(CF_E_NOMEM, "cannot build the audit event");
    else
        rc = cf_spool_append(k->spool, e->o, ret_id);
    json_decref(e->o);
    e->o = NULL;
    if (rc < 0 && rc != CF_E_NOMEM)
        rc = cf_err_set(rc, "audit spool not writable: operation refused (%s)", cf_err_detail(rc));
    return rc;
}

/* Error text for an event: printable ASCII only, whatever a lower layer wrote. */
static void detail_copy(int rc, char *out, size_t size)
{
    const char *d = cf_err_detail(rc);
    size_t i;

    for (i = 0; i + 1 < size && d[i] != '\0'; i++)
        out[i] = (d[i] >= 0x20 && d[i] < 0x7f) ? d[i] : '?';
    out[i] = '\0';
}

/* Appends the failure event of an operation and returns rc with its detail
 * intact. If even this append fails the operation is failing anyway; the
 * original error is what the caller needs. */
static int audit_failure(cf_kms_keys *k, const cf_kms_caller *who, const char *action,
                         const char *tenant, const char *tee_id, uint32_t version, int rc,
                         const char *corrects)
{
    char detail[DETAIL_MAX];
    ev_t e;

    detail_copy(rc, detail, sizeof(detail));
    e = ev_begin(who, action, tenant, tee_id, version, false);
    ev_str(&e, "error", cf_err_name(rc));
    ev_str(&e, "reason", detail);
    ev_str(&e, "corrects", corrects);
    if (ev_append(k, &e, NULL) < 0)
        cf_log(CF_LOG_ERROR, "kms.audit_failed", "action", action, NULL);
    return cf_err_set(rc, "%s", detail);
}

/* ---- mutation runner ---------------------------------------------------------
 * One store transaction per operation (no partial state). Order inside the
 * transaction: the operation's statements, then the success event is appended
 * to the spool (fdatasync), then commit. So:
 *  - no change is committed without a durable event (a failed append returns
 *    an error from the callback, which rolls the transaction back);
 *  - if the commit fails after the append, a failure event naming the first
 *    one ("corrects") follows — before a retry of the whole transaction
 *    (cf_store_tx retries on busy/serialization failures) or before the error
 *    is returned. A crash between append and commit leaves an event whose
 *    change is not in the store; the store is authoritative, and the audit
 *    trail never misses a change that is. */

typedef struct mut mut;
struct mut {
    cf_kms_keys *k;
    const cf_kms_caller *who;
    const char *action;
    const char *tenant;
    const char *tee_id;
    int64_t now;
    uint32_t version;               /* version named by the event (set by body) */
    int (*body)(cf_store *s, mut *m);
    void (*describe)(const mut *m, ev_t *e); /* extra success fields; may be NULL */
    bool skip;                      /* body found nothing to do: no event */
    bool pending;                   /* event of a not yet committed attempt */
    char pending_id[CF_SPOOL_EVENT_ID_LEN + 1];
};

static int mut_tx(cf_store *s, void *arg)
{
    mut *m = arg;
    ev_t e;

    if (m->pending) {
        /* The previous attempt appended its event, then its commit failed. */
        e = ev_begin(m->who, m->action, m->tenant, m->tee_id, m->version, false);
        ev_str(&e, "error", "unavailable");
        ev_str(&e, "reason", "store commit failed; operation retried");
        ev_str(&e, "corrects", m->pending_id);
        CF_GUARD(ev_append(m->k, &e, NULL));
        m->pending = false;
    }
    m->skip = false;
    m->version = 0;
    CF_GUARD(m->body(s, m));
    if (m->skip)
        return 0;
    e = ev_begin(m->who, m->action, m->tenant, m->tee_id, m->version, true);
    if (m->describe != NULL)
        m->describe(m, &e);
    CF_GUARD(ev_append(m->k, &e, m->pending_id));
    m->pending = true;
    return 0;
}

/* Runs m (after argument checks that produced rc0: a non-zero rc0 is audited
 * as the failure without touching the store). */
static int run_mutation(mut *m, int rc0)
{
    cf_store *s = NULL;
    int rc = rc0;

    if (m->now == 0) /* rotate_due passes its own `now` */
        m->now = now_s(m->k);
    if (rc == 0)
        rc = store_get(m->k, &s);
    if (rc == 0)
        rc = cf_store_tx(s, mut_tx, m);
    store_put(m->k, s);
    if (rc == 0)
        return 0;
    return audit_failure(m->k, m->who, m->action, m->tenant, m->tee_id, m->version, rc,
                         m->pending ? m->pending_id : NULL);
}

/* ---- schema ------------------------------------------------------------------- */

static const cf_store_migration kms_keys_migrations[] = {
    {1, "tenant keys, key versions, TEE revocations",
     "CREATE TABLE kms_tenant ("
     " tenant TEXT PRIMARY KEY,"
     " current_version BIGINT NOT NULL CHECK (current_version >= 1),"
     " min_decryption_version BIGINT NOT NULL"
     "  CHECK (min_decryption_version >= 1 AND min_decryption_version <= current_version),"
     " rotate_every BIGINT NOT NULL CHECK (rotate_every >= 0),"
     " next_rotation_at BIGINT NOT NULL,"
     " state TEXT NOT NULL CHECK (state IN ('active', 'revoked')),"
     " created_at BIGINT NOT NULL,"
     " updated_at BIGINT NOT NULL,"
     " revoked_at BIGINT,"
     " revoke_reason TEXT);"
     "CREATE INDEX kms_tenant_due ON kms_tenant (state, next_rotation_at);"
     "CREATE TABLE kms_key_version ("
     " tenant TEXT NOT NULL REFERENCES kms_tenant (tenant),"
     " version BIGINT NOT NULL CHECK (version >= 1),"
     " wrapped BLOB,"
     " state TEXT NOT NULL CHECK (state IN ('active', 'revoked', 'destroyed')),"
     " created_at BIGINT NOT NULL,"
     " revoked_at BIGINT,"
     " destroyed_at BIGINT,"
     " reason TEXT,"
     " PRIMARY KEY (tenant, version),"
     " CHECK ((state = 'destroyed') = (wrapped IS NULL)));"
     "CREATE TABLE kms_tee_revocation ("
     " tee_id TEXT PRIMARY KEY,"
     " revoked_at BIGINT NOT NULL,"
     " reason TEXT NOT NULL);",
     NULL},
};

/* ---- open / close ------------------------------------------------------------- */

int cf_kms_keys_open(cf_hsm *hsm, const char *store_dsn, cf_spool *audit,
                     const cf_kms_keys_opts *opts, cf_kms_keys **ret)
{
    cf_kms_keys *k = NULL;
    cf_store *s = NULL;
    size_t cap = CF_KMS_CACHE_DEFAULT;
    int rc;

    CF_ENSURE(hsm != NULL && store_dsn != NULL && audit != NULL && ret != NULL, CF_E_INVAL);
    if (strncmp(store_dsn, "sqlite::memory:", 15) == 0)
        return cf_err_set(CF_E_CONFIG, "kms keys need a shared store: \"sqlite::memory:\" gives "
                          "every connection its own database");
    if (opts != NULL && opts->cache_capacity != 0)
        cap = opts->cache_capacity;
    if (cap > CF_KMS_CACHE_MAX)
        return cf_err_set(CF_E_CONFIG, "key cache capacity %zu exceeds %d", cap, CF_KMS_CACHE_MAX);
    k = calloc(1, sizeof(*k));
    CF_ENSURE(k != NULL, CF_E_NOMEM);
    k->hsm = hsm;
    k->spool = audit;
    if (opts != NULL) {
        k->clock = opts->clock;
        k->clock_arg = opts->clock_arg;
    }
    pthread_mutex_init(&k->pool_mu, NULL);
    pthread_mutex_init(&k->cache.mu, NULL);
    k->dsn = cf_strndup_max(store_dsn, CF_STORE_MAX_DSN);
    CF_ENSURE_OUT(k->dsn != NULL, CF_E_NOMEM);
    CF_GUARD_OUT(cache_init(&k->cache, cap));
    CF_GUARD_OUT(cf_store_open(k->dsn, &s));
    CF_GUARD_OUT(cf_store_migrate(s, "kms_keys", kms_keys_migrations,
                                  CF_ARRAY_LEN(kms_keys_migrations)));
    store_put(k, s);
    s = NULL;
    *ret = k;
    k = NULL;
    rc = 0;
out:
    cf_store_close(s);
    cf_kms_keys_close(k);
    return rc;
}

void cf_kms_keys_close(cf_kms_keys *k)
{
    if (k == NULL)
        return;
    for (size_t i = 0; i < k->nidle; i++)
        cf_store_close(k->idle[i]);
    cache_destroy(&k->cache);
    pthread_mutex_destroy(&k->cache.mu);
    pthread_mutex_destroy(&k->pool_mu);
    free(k->dsn);
    free(k);
}

void cf_kms_keys_get_stats(cf_kms_keys *k, cf_kms_keys_stats *ret)
{
    key_cache *c = &k->cache;

    pthread_mutex_lock(&c->mu);
    ret->hits = c->hits;
    ret->misses = c->misses;
    ret->evictions = c->evictions;
    ret->unwraps = c->unwraps;
    ret->cached = c->count;
    ret->capacity = c->cap;
    pthread_mutex_unlock(&c->mu);
}

/* ---- rows ---------------------------------------------------------------------- */

typedef struct {
    uint32_t current, min_dec;
    int64_t rotate_every, next_rotation_at, created_at;
    bool revoked;
} tenant_row;

static int read_tenant(cf_store *s, const char *tenant, tenant_row *ret)
{
    cf_store_rows *r = NULL;
    tenant_row t;
    char state[16];
    int rc;

    rc = cf_store_query_row(s,
                            "SELECT current_version, min_decryption_version, rotate_every,"
                            " next_rotation_at, state, created_at FROM kms_tenant WHERE tenant = ?",
                            CF_STORE_ARGS(cf_sv_text(tenant)), &r);
    if (rc == CF_E_NOT_FOUND)
        return cf_err_set(CF_E_NOT_FOUND, "unknown tenant %s", tenant);
    CF_GUARD(rc);
    CF_GUARD_OUT(col_version(r, 0, &t.current));
    CF_GUARD_OUT(col_version(r, 1, &t.min_dec));
    CF_GUARD_OUT(cf_store_col_i64(r, 2, &t.rotate_every));
    CF_GUARD_OUT(cf_store_col_i64(r, 3, &t.next_rotation_at));
    CF_GUARD_OUT(cf_store_col_text(r, 4, state, sizeof(state), NULL));
    CF_GUARD_OUT(cf_store_col_i64(r, 5, &t.created_at));
    t.revoked = strcmp(state, "revoked") == 0;
    *ret = t;
out:
    cf_store_rows_close(r);
    return rc;
}

static int parse_state(const char *s, cf_kms_key_state *ret)
{
    if (strcmp(s, "active") == 0)
        *ret = CF_KMS_KEY_ACTIVE;
    else if (strcmp(s, "revoked") == 0)
        *ret = CF_KMS_KEY_REVOKED;
    else if (strcmp(s, "destroyed") == 0)
        *ret = CF_KMS_KEY_DESTROYED;
    else
        return cf_err_set(CF_E_STORE, "kms store holds an unknown key state");
    return 0;
}

#define VERSION_COLS "version, state, created_at, revoked_at, destroyed_at, reason"

/* Reads the VERSION_COLS of the current row into *ret. */
static int row_version_info(cf_store_rows *r, cf_kms_version_info *ret)
{
    cf_kms_version_info v;
    char state[16];
    bool null;

    memset(&v, 0, sizeof(v));
    CF_GUARD(col_version(r, 0, &v.version));
    CF_GUARD(cf_store_col_text(r, 1, state, sizeof(state), NULL));
    CF_GUARD(parse_state(state, &v.state));
    CF_GUARD(cf_store_col_i64(r, 2, &v.created_at));
    CF_GUARD(col_i64_or0(r, 3, &v.revoked_at));
    CF_GUARD(col_i64_or0(r, 4, &v.destroyed_at));
    CF_GUARD(cf_store_col_is_null(r, 5, &null));
    if (!null)
        CF_GUARD(cf_store_col_text(r, 5, v.reason, sizeof(v.reason), NULL));
    *ret = v;
    return 0;
}

static int read_version(cf_store *s, const char *tenant, uint32_t version, cf_kms_version_info *ret)
{
    cf_store_rows *r = NULL;
    int rc;

    rc = cf_store_query_row(s,
                            "SELECT " VERSION_COLS " FROM kms_key_version"
                            " WHERE tenant = ? AND version = ?",
                            CF_STORE_ARGS(cf_sv_text(tenant), cf_sv_int(version)), &r);
    if (rc == CF_E_NOT_FOUND)
        return cf_err_set(CF_E_NOT_FOUND, "key version %u of tenant %s does not exist", version,
                          tenant);
    CF_GUARD(rc);
    rc = row_version_info(r, ret);
    cf_store_rows_close(r);
    return rc;
}

/* ---- rotation (shared by rotate, rotate_due, and revoke/destroy of the
 * current version) ------------------------------------------------------------- */

typedef struct {
    uint8_t *key;         /* new tenant key (secret); made once, kept across retries */
    cf_buf wrapped;       /* its HSM wrap for version wrapped_for */
    uint32_t wrapped_for;
    uint32_t old_version, new_version;
    bool rotated;         /* in the current attempt */
} rot_t;

static void rot_init(rot_t *r)
{
    memset(r, 0, sizeof(*r));
    cf_buf_init(&r->wrapped, WRAPPED_KEY_LEN);
}

static void rot_free(rot_t *r)
{
    cf_secure_free(r->key);
    r->key = NULL;
    cf_buf_free(&r->wrapped);
}

/* The key for `version` and its wrap. The AAD binds the version, so a retry
 * that lands on another version wraps again. */
static int rot_prepare(cf_kms_keys *k, rot_t *r, const char *tenant, uint32_t version)
{
    if (r->key == NULL) {
        r->key = cf_secure_alloc(CF_KMS_KEY_LEN);
        CF_ENSURE(r->key != NULL, CF_E_NOMEM);
        CF_GUARD(new_tenant_key(k, r->key));
    }
    if (r->wrapped_for != version) {
        cf_buf_reset(&r->wrapped);
        r->wrapped_for = 0;
        CF_GUARD(wrap_tenant_key(k, tenant, version, r->key, &r->wrapped));
        r->wrapped_for = version;
    }
    return 0;
}

/* Inside a transaction that has read the tenant row (current version cur):
 * adds version cur+1 and makes it current (and the tenant active). The
 * conditional UPDATE makes a concurrent rotation of the same tenant fail
 * instead of both succeeding (PostgreSQL reports it as a serialization
 * failure, which cf_store_tx retries; SQLite writers are serialised anyway). */
static int rotate_in_tx(cf_kms_keys *k, cf_store *s, rot_t *r, const char *tenant, uint32_t cur,
                        int64_t rotate_every, int64_t now)
{
    int64_t changes = 0;
    uint32_t nv;

    if (cur >= CF_KMS_MAX_KEY_VERSION)
        return cf_err_set(CF_E_RANGE, "tenant %s has used every key version", tenant);
    nv = cur + 1;
    CF_GUARD(rot_prepare(k, r, tenant, nv));
    CF_GUARD(cf_store_exec(s,
                           "UPDATE kms_tenant SET current_version = ?, state = 'active',"
                           " revoked_at = NULL, revoke_reason = NULL, next_rotation_at = ?,"
                           " updated_at = ? WHERE tenant = ? AND current_version = ?",
                           CF_STORE_ARGS(cf_sv_int(nv),
                                         cf_sv_int(rotate_every > 0 ? now + rotate_every : 0),
                                         cf_sv_int(now), cf_sv_text(tenant), cf_sv_int(cur)),
                           &changes));
    if (changes != 1)
        return cf_err_set(CF_E_CONFLICT, "tenant %s was rotated concurrently", tenant);
    CF_GUARD(cf_store_exec(s,
                           "INSERT INTO kms_key_version (tenant, version, wrapped, state, created_at)"
                           " VALUES (?, ?, ?, 'active', ?)",
                           CF_STORE_ARGS(cf_sv_text(tenant), cf_sv_int(nv),
                                         cf_sv_blob(r->wrapped.data, r->wrapped.len),
                                         cf_sv_int(now)),
                           NULL));
    r->old_version = cur;
    r->new_version = nv;
    r->rotated = true;
    return 0;
}

/* ---- create ------------------------------------------------------------------- */

typedef struct {
    mut m; /* first: the runner hands back &m */
    rot_t rot;
    int64_t rotate_every;
} create_op;

static int create_body(cf_store *s, mut *m)
{
    create_op *o = (create_op *)m;
    int64_t next = o->rotate_every > 0 ? m->now + o->rotate_every : 0;
    int rc;

    CF_GUARD(rot_prepare(m->k, &o->rot, m->tenant, 1));
    rc = cf_store_exec(s,
                       "INSERT INTO kms_tenant (tenant, current_version, min_decryption_version,"
                       " rotate_every, next_rotation_at, state, created_at, updated_at)"
                       " VALUES (?, 1, 1, ?, ?, 'active', ?, ?)",
                       CF_STORE_ARGS(cf_sv_text(m->tenant), cf_sv_int(o->rotate_every),
                                     cf_sv_int(next), cf_sv_int(m->now), cf_sv_int(m->now)),
                       NULL);
    if (rc == CF_E_EXISTS)
        return cf_err_set(CF_E_EXISTS, "tenant %s already has keys", m->tenant);
    CF_GUARD(rc);
    CF_GUARD(cf_store_exec(s,
                           "INSERT INTO kms_key_version (tenant, version, wrapped, state, created_at)"
                           " VALUES (?, 1, ?, 'active', ?)",
                           CF_STORE_ARGS(cf_sv_text(m->tenant),
                                         cf_sv_blob(o->rot.wrapped.data, o->rot.wrapped.len),
                                         cf_sv_int(m->now)),
                           NULL));
    m->version = 1;
    return 0;
}

static void create_describe(const mut *m, ev_t *e)
{
    ev_int(e, "rotate_every", ((const create_op *)m)->rotate_every);
}

static int check_rotate_every(uint64_t v)
{
    if (v != 0 && (v < CF_KMS_ROTATE_MIN_S || v > CF_KMS_ROTATE_MAX_S))
        return cf_err_set(CF_E_RANGE, "rotate_every must be 0 (manual) or %d..%llu seconds",
                          CF_KMS_ROTATE_MIN_S, (unsigned long long)CF_KMS_ROTATE_MAX_S);
    return 0;
}

int cf_kms_keys_create(cf_kms_keys *k, const cf_kms_caller *who, const char *tenant,
                       const cf_kms_policy *policy, cf_kms_tenant_info *ret_info)
{
    create_op o;
    uint64_t epoch0;
    int rc;

    CF_ENSURE(k != NULL, CF_E_INVAL);
    memset(&o, 0, sizeof(o));
    rot_init(&o.rot);
    o.m = (mut){.k = k, .who = who, .action = "key.create", .tenant = tenant,
                .body = create_body, .describe = create_describe};
    rc = check_caller(who);
    if (rc == 0)
        rc = check_id("tenant", tenant);
    if (rc == 0 && policy != NULL && policy->set_rotate_every) {
        rc = check_rotate_every(policy->rotate_every);
        o.rotate_every = (int64_t)policy->rotate_every;
    }
    if (rc == 0 && policy != NULL && policy->set_min_decryption_version &&
        policy->min_decryption_version != 1)
        rc = cf_err_set(CF_E_RANGE, "min_decryption_version of a new tenant key must be 1");
    epoch0 = cache_epoch(k);
    rc = run_mutation(&o.m, rc);
    if (rc == 0) {
        cache_fresh(k, tenant, 1, o.rot.key, epoch0);
        if (ret_info != NULL) {
            memset(ret_info, 0, sizeof(*ret_info));
            memcpy(ret_info->tenant, tenant, strlen(tenant) + 1);
            ret_info->current_version = 1;
            ret_info->min_decryption_version = 1;
            ret_info->rotate_every = (uint64_t)o.rotate_every;
            ret_info->next_rotation_at = o.rotate_every > 0 ? o.m.now + o.rotate_every : 0;
            ret_info->created_at = o.m.now;
        }
    }
    rot_free(&o.rot);
    return rc;
}

/* ---- rotate / rotate_due ----------------------------------------------------------- */

typedef struct {
    mut m;
    rot_t rot;
    bool policy; /* rotate_due: only if still due */
} rotate_op;

static int rotate_body(cf_store *s, mut *m)
{
    rotate_op *o = (rotate_op *)m;
    tenant_row t;

    o->rot.rotated = false;
    CF_GUARD(read_tenant(s, m->tenant, &t));
    if (o->policy && (t.revoked || t.rotate_every <= 0 || t.next_rotation_at > m->now)) {
        m->skip = true; /* another replica (or thread) rotated it first */
        return 0;
    }
    CF_GUARD(rotate_in_tx(m->k, s, &o->rot, m->tenant, t.current, t.rotate_every, m->now));
    m->version = o->rot.new_version;
    return 0;
}

static void rotate_describe(const mut *m, ev_t *e)
{
    const rotate_op *o = (const rotate_op *)m;

    ev_int(e, "previous_version", o->rot.old_version);
    ev_str(e, "trigger", o->policy ? "policy" : "manual");
}

static int do_rotate(cf_kms_keys *k, const cf_kms_caller *who, const char *tenant, bool policy,
                     int64_t now, int rc0, uint32_t *ret_version, bool *ret_skipped)
{
    rotate_op o;
    uint64_t epoch0;
    int rc;

    memset(&o, 0, sizeof(o));
    rot_init(&o.rot);
    o.policy = policy;
    o.m = (mut){.k = k, .who = who, .action = "key.rotate", .tenant = tenant, .now = now,
                .body = rotate_body, .describe = rotate_describe};
    epoch0 = cache_epoch(k);
    rc = run_mutation(&o.m, rc0);
    if (rc == 0 && !o.m.skip)
        cache_fresh(k, tenant, o.rot.new_version, o.rot.key, epoch0);
    if (rc == 0) {
        if (ret_version != NULL)
            *ret_version = o.rot.new_version;
        if (ret_skipped != NULL)
            *ret_skipped = o.m.skip;
    }
    rot_free(&o.rot);
    return rc;
}

int cf_kms_keys_rotate(cf_kms_keys *k, const cf_kms_caller *who, const char *tenant,
                       uint32_t *ret_version)
{
    int rc;

    CF_ENSURE(k != NULL, CF_E_INVAL);
    rc = check_caller(who);
    if (rc == 0)
        rc = check_id("tenant", tenant);
    return do_rotate(k, who, tenant, false, 0, rc, ret_version, NULL);
}

int cf_kms_keys_rotate_due(cf_kms_keys *k, int64_t now, size_t *ret_rotated)
{
    char (*due)[CF_ID_MAX_LEN + 1] = NULL;
    cf_store *s = NULL;
    cf_store_rows *r = NULL;
    size_t n = 0, rotated = 0;
    int rc, first = 0;

    CF_ENSURE(k != NULL && ret_rotated != NULL, CF_E_INVAL);
    if (now <= 0)
        return cf_err_set(CF_E_INVAL, "rotation time must be positive unix seconds");
    due = calloc(CF_KMS_ROTATE_BATCH, sizeof(*due));
    CF_ENSURE(due != NULL, CF_E_NOMEM);
    CF_GUARD_OUT(store_get(k, &s));
    CF_GUARD_OUT(cf_store_query(s,
                                "SELECT tenant FROM kms_tenant WHERE state = 'active'"
                                " AND rotate_every > 0 AND next_rotation_at <= ?"
                                " ORDER BY next_rotation_at, tenant LIMIT ?",
                                CF_STORE_ARGS(cf_sv_int(now), cf_sv_int(CF_KMS_ROTATE_BATCH)), &r));
    while (n < CF_KMS_ROTATE_BATCH && (rc = cf_store_next(r)) == 1) {
        CF_GUARD_OUT(cf_store_col_text(r, 0, due[n], sizeof(due[n]), NULL));
        if (id_ok(due[n])) /* rows are written only through this file; be strict anyway */
            n++;
    }
    CF_GUARD_OUT(rc);
    cf_store_rows_close(r);
    r = NULL;
    store_put(k, s);
    s = NULL;
    for (size_t i = 0; i < n; i++) {
        bool skipped = false;
        int one = do_rotate(k, NULL, due[i], true, now, 0, NULL, &skipped);
        if (one < 0 && first == 0)
            first = one;
        if (one == 0 && !skipped)
            rotated++;
    }
    if (first < 0) {
        rc = first;
        goto out;
    }
    *ret_rotated = rotated;
    rc = 0;
out:
    cf_store_rows_close(r);
    store_put(k, s);
    free(due);
    return rc;
}

/* ---- policy ---------------------------------------------------------------------- */

typedef struct {
    mut m;
    const cf_kms_policy *p;
    tenant_row after;
} policy_op;

static int policy_body(cf_store *s, mut *m)
{
    policy_op *o = (policy_op *)m;
    tenant_row t;
    cf_kms_version_info cur;

    CF_GUARD(read_tenant(s, m->tenant, &t));
    if (o->p->set_min_decryption_version) {
        uint32_t want = o->p->min_decryption_version;
        if (want < 1 || want > t.current)
            return cf_err_set(CF_E_RANGE,
                              "min_decryption_version %u must be between 1 and the current "
                              "version %u of tenant %s", want, t.current, m->tenant);
        /* Monotonic: lowering it would silently make cut-off data decryptable again. */
        if (want < t.min_dec)
            return cf_err_set(CF_E_CONFLICT,
                              "min_decryption_version of tenant %s cannot decrease (is %u)",
                              m->tenant, t.min_dec);
        t.min_dec = want;
    }
    if (o->p->set_rotate_every)
        t.rotate_every = (int64_t)o->p->rotate_every;
    /* Counted from the creation of the current version: a key already older
     * than the new period is due at the next rotation run. */
    CF_GUARD(read_version(s, m->tenant, t.current, &cur));
    t.next_rotation_at = t.rotate_every > 0 && !t.revoked ? cur.created_at + t.rotate_every : 0;
    CF_GUARD(cf_store_exec(s,
                           "UPDATE kms_tenant SET min_decryption_version = ?, rotate_every = ?,"
                           " next_rotation_at = ?, updated_at = ? WHERE tenant = ?",
                           CF_STORE_ARGS(cf_sv_int(t.min_dec), cf_sv_int(t.rotate_every),
                                         cf_sv_int(t.next_rotation_at), cf_sv_int(m->now),
                                         cf_sv_text(m->tenant)),
                           NULL));
    o->after = t;
    return 0;
}

static void policy_describe(const mut *m, ev_t *e)
{
    const policy_op *o = (const policy_op *)m;

    ev_int(e, "rotate_every", o->after.rotate_every);
    ev_int(e, "min_decryption_version", o->after.min_dec);
    ev_int(e, "current_version", o->after.current);
}

static void fill_info(cf_kms_tenant_info *ret, const char *tenant, const tenant_row *t)
{
    memset(ret, 0, sizeof(*ret));
    memcpy(ret->tenant, tenant, strlen(tenant) + 1);
    ret->current_version = t->current;
    ret->min_decryption_version = t->min_dec;
    ret->rotate_every = (uint64_t)t->rotate_every;
    ret->next_rotation_at = t->next_rotation_at;
    ret->revoked = t->revoked;
    ret->created_at = t->created_at;
}

int cf_kms_keys_set_policy(cf_kms_keys *k, const cf_kms_caller *who, const char *tenant,
                           const cf_kms_policy *policy, cf_kms_tenant_info *ret_info)
{
    policy_op o;
    int rc;

    CF_ENSURE(k != NULL, CF_E_INVAL);
    memset(&o, 0, sizeof(o));
    o.p = policy;
    o.m = (mut){.k = k, .who = who, .action = "key.policy", .tenant = tenant,
                .body = policy_body, .describe = policy_describe};
    rc = check_caller(who);
    if (rc == 0)
        rc = check_id("tenant", tenant);
    if (rc == 0 && policy == NULL)
        rc = cf_err_set(CF_E_INVAL, "policy is required");
    if (rc == 0 && !policy->set_rotate_every && !policy->set_min_decryption_version)
        rc = cf_err_set(CF_E_INVAL, "policy update changes nothing");
    if (rc == 0 && policy->set_rotate_every)
        rc = check_rotate_every(policy->rotate_every);
    rc = run_mutation(&o.m, rc);
    if (rc == 0) {
        cache_drop(k, tenant, 0, o.after.min_dec); /* cut-off versions: wipe */
        if (ret_info != NULL)
            fill_info(ret_info, tenant, &o.after);
    }
    return rc;
}

/* ---- revoke / destroy one version ----------------------------------------------------- */

typedef struct {
    mut m;
    uint32_t version;
    const char *reason;
    bool destroy;
    rot_t rot;
    uint32_t current_after;
} revoke_op;

static int revoke_body(cf_store *s, mut *m)
{
    revoke_op *o = (revoke_op *)m;
    tenant_row t;
    cf_kms_version_info v;
    uint8_t zeros[WRAPPED_KEY_LEN];
    int64_t changes = 0;

    o->rot.rotated = false;
    m->version = o->version;
    CF_GUARD(read_tenant(s, m->tenant, &t));
    CF_GUARD(read_version(s, m->tenant, o->version, &v));
    if (v.state == CF_KMS_KEY_DESTROYED)
        return cf_err_set(CF_E_CONFLICT, "key version %u of tenant %s is already destroyed",
                          o->version, m->tenant);
    if (v.state == CF_KMS_KEY_REVOKED && !o->destroy)
        return cf_err_set(CF_E_CONFLICT, "key version %u of tenant %s is already revoked",
                          o->version, m->tenant);
    o->current_after = t.current;
    /* Invariant: an active tenant always has an active current version. */
    if (o->version == t.current && !t.revoked) {
        CF_GUARD(rotate_in_tx(m->k, s, &o->rot, m->tenant, t.current, t.rotate_every, m->now));
        o->current_after = o->rot.new_version;
    }
    if (!o->destroy) {
        CF_GUARD(cf_store_exec(s,
                               "UPDATE kms_key_version SET state = 'revoked', revoked_at = ?,"
                               " reason = ? WHERE tenant = ? AND version = ? AND state = 'active'",
                               CF_STORE_ARGS(cf_sv_int(m->now), cf_sv_text(o->reason),
                                             cf_sv_text(m->tenant), cf_sv_int(o->version)),
                               &changes));
    } else {
        /* Overwrite the wrapped key in place before dropping it, so that the
         * page SQLite rewrites holds zeros (secure_delete zeroes freed space). */
        memset(zeros, 0, sizeof(zeros));
        CF_GUARD(cf_store_exec(s,
                               "UPDATE kms_key_version SET wrapped = ?"
                               " WHERE tenant = ? AND version = ?",
                               CF_STORE_ARGS(cf_sv_blob(zeros, sizeof(zeros)),
                                             cf_sv_text(m->tenant), cf_sv_int(o->version)),
                               NULL));
        CF_GUARD(cf_store_exec(s,
                               "UPDATE kms_key_version SET wrapped = NULL, state = 'destroyed',"
                               " destroyed_at = ?, revoked_at = COALESCE(revoked_at, ?), reason = ?"
                               " WHERE tenant = ? AND version = ?",
                               CF_STORE_ARGS(cf_sv_int(m->now), cf_sv_int(m->now),
                                             cf_sv_text(o->reason), cf_sv_text(m->tenant),
                                             cf_sv_int(o->version)),
                               &changes));
    }
    if (changes != 1)
        return cf_err_set(CF_E_CONFLICT, "key version %u of tenant %s changed concurrently",
                          o->version, m->tenant);
    return 0;
}

static void revoke_describe(const mut *m, ev_t *e)
{
    const revoke_op *o = (const revoke_op *)m;

    ev_str(e, "reason", o->reason);
    if (o->rot.rotated)
        ev_int(e, "rotated_to", o->rot.new_version);
}

/* SQLite keeps old page images in the WAL until a checkpoint; TRUNCATE copies
 * the new pages into the database file and empties the WAL. Best effort: a
 * reader in another process can make it incomplete; the next automatic
 * checkpoint finishes the job. */
static void checkpoint(cf_kms_keys *k)
{
    cf_store *s = NULL;
    cf_store_rows *r = NULL;

    if (store_get(k, &s) != 0)
        return;
    if (cf_store_backend(s) == CF_STORE_SQLITE &&
        cf_store_query(s, "PRAGMA wal_checkpoint(TRUNCATE)", NULL, 0, &r) == 0) {
        while (cf_store_next(r) == 1) {
        }
        cf_store_rows_close(r);
    }
    store_put(k, s);
}

static int do_revoke(cf_kms_keys *k, const cf_kms_caller *who, const char *tenant,
                     uint32_t version, const char *reason, bool destroy, uint32_t *ret_current)
{
    revoke_op o;
    uint64_t epoch0;
    int rc;

    CF_ENSURE(k != NULL, CF_E_INVAL);
    memset(&o, 0, sizeof(o));
    rot_init(&o.rot);
    o.version = version;
    o.reason = reason;
    o.destroy = destroy;
    o.m = (mut){.k = k, .who = who, .action = destroy ? "key.destroy" : "key.revoke",
                .tenant = tenant, .version = version, .body = revoke_body,
                .describe = revoke_describe};
    rc = check_caller(who);
    if (rc == 0)
        rc = check_id("tenant", tenant);
    if (rc == 0 && (version == 0 || version > CF_KMS_MAX_KEY_VERSION))
        rc = cf_err_set(CF_E_RANGE, "key version %u out of range", version);
    if (rc == 0)
        rc = check_reason(reason);
    epoch0 = cache_epoch(k);
    rc = run_mutation(&o.m, rc);
    if (rc == 0) {
        cache_drop(k, tenant, version, 0);
        /* cache_drop bumped the epoch once; any other invalidation since
         * epoch0 makes cache_fresh skip the insert. */
        if (o.rot.rotated)
            cache_fresh(k, tenant, o.rot.new_version, o.rot.key, epoch0 + 1);
        if (destroy)
            checkpoint(k);
        if (ret_current != NULL)
            *ret_current = o.current_after;
    }
    rot_free(&o.rot);
    return rc;
}

int cf_kms_keys_revoke_version(cf_kms_keys *k, const cf_kms_caller *who, const char *tenant,
                               uint32_t version, const char *reason, uint32_t *ret_new_current)
{
    return do_revoke(k, who, tenant, version, reason, false, ret_new_current);
}

int cf_kms_keys_destroy_version(cf_kms_keys *k, const cf_kms_caller *who, const char *tenant,
                                uint32_t version, const char *reason, uint32_t *ret_new_current)
{
    return do_revoke(k, who, tenant, version, reason, true, ret_new_current);
}

/* ---- revoke a tenant ------------------------------------------------------------------ */

typedef struct {
    mut m;
    const char *reason;
    int64_t count;
} revoke_tenant_op;

static int revoke_tenant_body(cf_store *s, mut *m)
{
    revoke_tenant_op *o = (revoke_tenant_op *)m;
    tenant_row t;

    CF_GUARD(read_tenant(s, m->tenant, &t));
    if (t.revoked)
        return cf_err_set(CF_E_CONFLICT, "keys of tenant %s are already revoked", m->tenant);
    CF_GUARD(cf_store_exec(s,
                           "UPDATE kms_key_version SET state = 'revoked', revoked_at = ?, reason = ?"
                           " WHERE tenant = ? AND state = 'active'",
                           CF_STORE_ARGS(cf_sv_int(m->now), cf_sv_text(o->reason),
                                         cf_sv_text(m->tenant)),
                           &o->count));
    CF_GUARD(cf_store_exec(s,
                           "UPDATE kms_tenant SET state = 'revoked', revoked_at = ?,"
                           " revoke_reason = ?, next_rotation_at = 0, updated_at = ?"
                           " WHERE tenant = ?",
                           CF_STORE_ARGS(cf_sv_int(m->now), cf_sv_text(o->reason),
                                         cf_sv_int(m->now), cf_sv_text(m->tenant)),
                           NULL));
    return 0;
}

static void revoke_tenant_describe(const mut *m, ev_t *e)
{
    const revoke_tenant_op *o = (const revoke_tenant_op *)m;

    ev_str(e, "reason", o->reason);
    ev_int(e, "versions_revoked", o->count);
}

int cf_kms_keys_revoke_tenant(cf_kms_keys *k, const cf_kms_caller *who, const char *tenant,
                              const char *reason)
{
    revoke_tenant_op o;
    int rc;

    CF_ENSURE(k != NULL, CF_E_INVAL);
    memset(&o, 0, sizeof(o));
    o.reason = reason;
    o.m = (mut){.k = k, .who = who, .action = "key.revoke_tenant", .tenant = tenant,
                .body = revoke_tenant_body, .describe = revoke_tenant_describe};
    rc = check_caller(who);
    if (rc == 0)
        rc = check_id("tenant", tenant);
    if (rc == 0)
        rc = check_reason(reason);
    rc = run_mutation(&o.m, rc);
    if (rc == 0)
        cache_drop(k, tenant, 0, 0);
    return rc;
}

/* ---- TEE revocation ----------------------------------------------------------------- */

typedef struct {
    mut m;
    const char *reason;
    bool already;
} tee_op;

static int tee_body(cf_store *s, mut *m)
{
    tee_op *o = (tee_op *)m;
    int64_t changes = 0;

    CF_GUARD(cf_store_exec(s,
                           "INSERT INTO kms_tee_revocation (tee_id, revoked_at, reason)"
                           " VALUES (?, ?, ?) ON CONFLICT (tee_id) DO NOTHING",
                           CF_STORE_ARGS(cf_sv_text(m->tee_id), cf_sv_int(m->now),
                                         cf_sv_text(o->reason)),
                           &changes));
    o->already = changes == 0;
    return 0;
}

static void tee_describe(const mut *m, ev_t *e)
{
    const tee_op *o = (const tee_op *)m;

    ev_str(e, "reason", o->reason);
    ev_bool(e, "already_revoked", o->already);
}

int cf_kms_keys_revoke_tee(cf_kms_keys *k, const cf_kms_caller *who, const char *tee_id,
                           const char *reason)
{
    tee_op o;
    int rc;

    CF_ENSURE(k != NULL, CF_E_INVAL);
    memset(&o, 0, sizeof(o));
    o.reason = reason;
    o.m = (mut){.k = k, .who = who, .action = "tee.revoke", .tee_id = tee_id,
                .body = tee_body, .describe = tee_describe};
    rc = check_caller(who);
    if (rc == 0)
        rc = check_id("tee_id", tee_id);
    if (rc == 0)
        rc = check_reason(reason);
    return run_mutation(&o.m, rc);
}

int cf_kms_tee_check_tx(cf_store *s, const char *tee_id)
{
    cf_store_rows *r = NULL;
    int rc;

    CF_ENSURE(s != NULL, CF_E_INVAL);
    CF_GUARD(check_id("tee_id", tee_id));
    rc = cf_store_query_row(s, "SELECT revoked_at FROM kms_tee_revocation WHERE tee_id = ?",
                            CF_STORE_ARGS(cf_sv_text(tee_id)), &r);
    if (rc == CF_E_NOT_FOUND)
        return 0;
    CF_GUARD(rc);
    cf_store_rows_close(r);
    return cf_err_set(CF_E_REVOKED, "TEE %s is revoked", tee_id);
}

int cf_kms_keys_check_tee(cf_kms_keys *k, const char *tee_id)
{
    cf_store *s = NULL;
    int rc;

    CF_ENSURE(k != NULL, CF_E_INVAL);
    CF_GUARD(store_get(k, &s));
    rc = cf_kms_tee_check_tx(s, tee_id);
    store_put(k, s);
    return rc;
}

/* ---- describe / list ---------------------------------------------------------------- */

int cf_kms_keys_describe(cf_kms_keys *k, const cf_kms_caller *who, const char *tenant,
                         cf_kms_tenant_info *ret_info)
{
    cf_store *s = NULL;
    tenant_row t;
    ev_t e;
    int rc;

    CF_ENSURE(k != NULL && ret_info != NULL, CF_E_INVAL);
    rc = check_caller(who);
    if (rc == 0)
        rc = check_id("tenant", tenant);
    if (rc == 0)
        rc = store_get(k, &s);
    if (rc == 0)
        rc = read_tenant(s, tenant, &t);
    store_put(k, s);
    if (rc < 0)
        return audit_failure(k, who, "key.describe", tenant, NULL, 0, rc, NULL);
    e = ev_begin(who, "key.describe", tenant, NULL, 0, true);
    CF_GUARD(ev_append(k, &e, NULL));
    fill_info(ret_info, tenant, &t);
    return 0;
}

int cf_kms_keys_list_versions(cf_kms_keys *k, const cf_kms_caller *who, const char *tenant,
                              uint32_t after_version, cf_kms_version_info *out, size_t max,
                              size_t *ret_n)
{
    cf_kms_version_info *tmp = NULL;
    cf_store *s = NULL;
    cf_store_rows *r = NULL;
    tenant_row t;
    size_t n = 0;
    ev_t e;
    int rc;

    CF_ENSURE(k != NULL && ret_n != NULL && (out != NULL || max == 0), CF_E_INVAL);
    rc = check_caller(who);
    if (rc == 0)
        rc = check_id("tenant", tenant);
    if (rc == 0 && (max == 0 || max > CF_KMS_MAX_LIST))
        rc = cf_err_set(CF_E_RANGE, "list size must be 1..%d", CF_KMS_MAX_LIST);
    if (rc == 0) {
        tmp = calloc(max, sizeof(*tmp));
        if (tmp == NULL)
            rc = CF_E_NOMEM;
    }
    if (rc == 0)
        rc = store_get(k, &s);
    if (rc == 0)
        rc = read_tenant(s, tenant, &t);
    if (rc == 0)
        rc = cf_store_query(s,
                            "SELECT " VERSION_COLS " FROM kms_key_version WHERE tenant = ?"
                            " AND version > ? ORDER BY version LIMIT ?",
                            CF_STORE_ARGS(cf_sv_text(tenant), cf_sv_int(after_version),
                                          cf_sv_int((int64_t)max)),
                            &r);
    while (rc == 0 && n < max) {
        rc = cf_store_next(r);
        if (rc != 1)
            break;
        rc = row_version_info(r, &tmp[n]);
        if (rc == 0)
            n++;
    }
    if (rc > 0)
        rc = 0;
    cf_store_rows_close(r);
    store_put(k, s);
    if (rc < 0) {
        free(tmp);
        return audit_failure(k, who, "key.list", tenant, NULL, 0, rc, NULL);
    }
    e = ev_begin(who, "key.list", tenant, NULL, 0, true);
    ev_int(&e, "count", (int64_t)n);
    rc = ev_append(k, &e, NULL);
    if (rc == 0) {
        if (n > 0)
            memcpy(out, tmp, n * sizeof(*tmp));
        *ret_n = n;
    }
    free(tmp);
    return rc;
}

/* ---- wrapped values ---------------------------------------------------------------- */

typedef struct {
    uint32_t current, min_dec, version;
    bool tenant_revoked, have_version, tee_revoked;
    cf_kms_key_state vstate;
    uint8_t wrapped[WRAPPED_KEY_LEN];
    size_t wrapped_len;
} lookup_t;

/* One statement, so one consistent snapshot of the tenant, the version
 * (version 0 = the current one) and the TEE's revocation. */
static int lookup(cf_kms_keys *k, const cf_kms_binding *b, uint32_t version, lookup_t *ret)
{
    cf_store *s = NULL;
    cf_store_rows *r = NULL;
    lookup_t l;
    char state[16];
    bool null;
    int64_t tee_hits;
    int rc;

    memset(&l, 0, sizeof(l));
    CF_GUARD(store_get(k, &s));
    rc = cf_store_query_row(
        s,
        "SELECT t.current_version, t.min_decryption_version, t.state, v.version, v.state,"
        " v.wrapped, (SELECT COUNT(*) FROM kms_tee_revocation r WHERE r.tee_id = ?)"
        " FROM kms_tenant t LEFT JOIN kms_key_version v ON v.tenant = t.tenant AND v.version ="
        " CASE WHEN CAST(? AS BIGINT) = 0 THEN t.current_version ELSE CAST(? AS BIGINT) END"
        " WHERE t.tenant = ?",
        CF_STORE_ARGS(cf_sv_text(b->tee_id), cf_sv_int(version), cf_sv_int(version),
                      cf_sv_text(b->tenant)),
        &r);
    if (rc == CF_E_NOT_FOUND) {
        rc = cf_err_set(CF_E_NOT_FOUND, "unknown tenant %s", b->tenant);
        goto out;
    }
    CF_GUARD_OUT(rc);
    CF_GUARD_OUT(col_version(r, 0, &l.current));
    CF_GUARD_OUT(col_version(r, 1, &l.min_dec));
    CF_GUARD_OUT(cf_store_col_text(r, 2, state, sizeof(state), NULL));
    l.tenant_revoked = strcmp(state, "revoked") == 0;
    CF_GUARD_OUT(cf_store_col_is_null(r, 3, &null));
    l.have_version = !null;
    l.version = version != 0 ? version : l.current;
    if (l.have_version) {
        CF_GUARD_OUT(cf_store_col_text(r, 4, state, sizeof(state), NULL));
        CF_GUARD_OUT(parse_state(state, &l.vstate));
        CF_GUARD_OUT(cf_store_col_is_null(r, 5, &null));
        if (!null)
            CF_GUARD_OUT(cf_store_col_blob(r, 5, l.wrapped, sizeof(l.wrapped), &l.wrapped_len));
    }
    CF_GUARD_OUT(cf_store_col_i64(r, 6, &tee_hits));
    l.tee_revoked = tee_hits > 0;
    *ret = l;
out:
    cf_store_rows_close(r);
    store_put(k, s);
    return rc;
}

/* The refusals of keys.h, most specific first. */
static int check_usable(const cf_kms_binding *b, const lookup_t *l, bool for_encrypt)
{
    if (l->tee_revoked)
        return cf_err_set(CF_E_REVOKED, "TEE %s is revoked", b->tee_id);
    if (for_encrypt && l->tenant_revoked)
        return cf_err_set(CF_E_REVOKED, "keys of tenant %s are revoked", b->tenant);
    if (!l->have_version)
        return cf_err_set(CF_E_NOT_FOUND, "key version %u of tenant %s does not exist", l->version,
                          b->tenant);
    if (l->vstate == CF_KMS_KEY_REVOKED)
        return cf_err_set(CF_E_REVOKED, "key version %u of tenant %s is revoked", l->version,
                          b->tenant);
    if (l->vstate == CF_KMS_KEY_DESTROYED || l->wrapped_len == 0)
        return cf_err_set(CF_E_REVOKED, "key version %u of tenant %s is destroyed", l->version,
                          b->tenant);
    if (!for_encrypt && l->version < l->min_dec)
        return cf_err_set(CF_E_FORBIDDEN,
                          "key version %u of tenant %s is below min_decryption_version %u",
                          l->version, b->tenant, l->min_dec);
    return 0;
}

/* AAD of a wrapped value: label || 0x00 || header("CFW1" || version) ||
 * u16 len || tenant || u16 len || tee_id (0 = none) || u32 len || context.
 * Length prefixes keep the fields unambiguous. */
static int value_aad(cf_buf *aad, const char *label, const uint8_t *header,
                     const cf_kms_binding *b)
{
    size_t tn = strlen(b->tenant), en = b->tee_id != NULL ? strlen(b->tee_id) : 0;

    CF_GUARD(cf_buf_put(aad, label, strlen(label) + 1));
    CF_GUARD(cf_buf_put(aad, header, CF_WRAPPED_HEADER_LEN));
    CF_GUARD(cf_buf_put_u16be(aad, (uint16_t)tn));
    CF_GUARD(cf_buf_put(aad, b->tenant, tn));
    CF_GUARD(cf_buf_put_u16be(aad, (uint16_t)en));
    if (en > 0)
        CF_GUARD(cf_buf_put(aad, b->tee_id, en));
    CF_GUARD(cf_buf_put_u32be(aad, (uint32_t)b->context_len));
    if (b->context_len > 0)
        CF_GUARD(cf_buf_put(aad, b->context, b->context_len));
    return 0;
}

typedef struct {
    bool open;
    const cf_buf *aad;
    const uint8_t *in;
    size_t in_len;
    cf_buf *out;
} aead_job;

static int aead_cb(void *arg, const uint8_t *key)
{
    aead_job *j = arg;

    if (j->open)
        return cf_aead_open(key, j->aad->data, j->aad->len, j->in, j->in_len, j->out);
    return cf_aead_seal(key, j->aad->data, j->aad->len, j->in, j->in_len, j->out);
}

/* Wipes (for secret buffers it matters) and drops what an operation appended. */
static void out_restore(cf_buf *b, size_t before)
{
    if (b != NULL && b->len > before) {
        cf_wipe(b->data + before, b->len - before);
        b->len = before;
    }
}

/* Seals pt under the tenant's current version; appends the wrapped value. */
static int wrap_value(cf_kms_keys *k, const char *label, const cf_kms_binding *b,
                      const uint8_t *pt, size_t pt_len, cf_buf *out, uint32_t *ret_version)
{
    uint64_t epoch0 = cache_epoch(k);
    uint8_t header[CF_WRAPPED_HEADER_LEN];
    size_t before = out->len;
    lookup_t l;
    cf_buf aad;
    aead_job j;
    int rc;

    cf_buf_init(&aad, AAD_MAX);
    CF_GUARD_OUT(lookup(k, b, 0, &l));
    CF_GUARD_OUT(check_usable(b, &l, true));
    CF_GUARD_OUT(cf_wrapped_put_header(out, l.version));
    memcpy(header, out->data + before, sizeof(header));
    CF_GUARD_OUT(value_aad(&aad, label, header, b));
    j = (aead_job){.open = false, .aad = &aad, .in = pt, .in_len = pt_len, .out = out};
    CF_GUARD_OUT(with_key(k, b->tenant, l.version, l.wrapped, l.wrapped_len, epoch0, aead_cb, &j));
    *ret_version = l.version;
out:
    if (rc < 0)
        out_restore(out, before);
    cf_buf_free(&aad);
    return rc;
}

/* Opens a wrapped value with the version it names; appends the plaintext to
 * out (secret). *ret_version is the named version, set as soon as it is
 * parsed (for the audit event), also on failure. */
static int unwrap_value(cf_kms_keys *k, const char *label, const cf_kms_binding *b,
                        const uint8_t *in, size_t in_len, cf_buf *out, uint32_t *ret_version)
{
    uint64_t epoch0 = cache_epoch(k);
    cf_wrapped w;
    lookup_t l;
    cf_buf aad;
    aead_job j;
    int rc;

    cf_buf_init(&aad, AAD_MAX);
    CF_GUARD_OUT(cf_wrapped_parse(in, in_len, &w));
    *ret_version = w.version;
    CF_GUARD_OUT(lookup(k, b, w.version, &l));
    CF_GUARD_OUT(check_usable(b, &l, false));
    CF_GUARD_OUT(value_aad(&aad, label, w.header, b));
    j = (aead_job){.open = true, .aad = &aad, .in = w.body, .in_len = w.body_len, .out = out};
    rc = with_key(k, b->tenant, w.version, l.wrapped, l.wrapped_len, epoch0, aead_cb, &j);
    if (rc == CF_E_DECRYPT)
        rc = cf_err_set(CF_E_DECRYPT, "wrapped value failed authentication (tampered, or another "
                        "tenant, TEE or context)");
out:
    cf_buf_free(&aad);
    return rc;
}

static int check_plain_out(cf_buf *out, size_t need)
{
    CF_ENSURE(out != NULL, CF_E_INVAL);
    if (!out->secret)
        return cf_err_set(CF_E_INVAL, "plaintext output must be a secret buffer");
    if (out->view || out->max - out->len < need)
        return cf_err_set(CF_E_INVAL, "plaintext output buffer cannot hold %zu bytes", need);
    return 0;
}

/* Final step of a data operation: audit its outcome, and hand the outputs over
 * only if the event is durable (otherwise they are wiped and dropped). */
static int data_finish(cf_kms_keys *k, const cf_kms_caller *who, const char *action,
                       const cf_kms_binding *b, uint32_t version, uint32_t from_version, int rc,
                       cf_buf *out1, size_t before1, cf_buf *out2, size_t before2)
{
    ev_t e;

    if (rc == 0) {
        e = ev_begin(who, action, b->tenant, b->tee_id, version, true);
        if (from_version != 0)
            ev_int(&e, "from_version", from_version);
        rc = ev_append(k, &e, NULL);
        if (rc == 0)
            return 0;
    }
    out_restore(out1, before1);
    out_restore(out2, before2);
    return audit_failure(k, who, action, b != NULL ? b->tenant : NULL,
                         b != NULL ? b->tee_id : NULL, version, rc, NULL);
}

static int data_args(const cf_kms_caller *who, const cf_kms_binding *b)
{
    CF_GUARD(check_caller(who));
    return check_binding(b);
}

int cf_kms_keys_encrypt(cf_kms_keys *k, const cf_kms_caller *who, const cf_kms_binding *b,
                        const uint8_t *pt, size_t pt_len, cf_buf *ret_wrapped)
{
    uint32_t v = 0;
    size_t before;
    int rc;

    CF_ENSURE(k != NULL && ret_wrapped != NULL, CF_E_INVAL);
    before = ret_wrapped->len;
    rc = data_args(who, b);
    if (rc == 0 && pt == NULL && pt_len != 0)
        rc = cf_err_set(CF_E_INVAL, "plaintext is NULL");
    if (rc == 0 && pt_len > CF_KMS_MAX_PLAINTEXT)
        rc = cf_err_set(CF_E_TOO_LARGE, "value of %zu bytes exceeds the limit of %u bytes", pt_len,
                        (unsigned)CF_KMS_MAX_PLAINTEXT);
    if (rc == 0)
        rc = wrap_value(k, LABEL_WRAP, b, pt, pt_len, ret_wrapped, &v);
    return data_finish(k, who, "data.encrypt", b, v, 0, rc, ret_wrapped, before, NULL, 0);
}

int cf_kms_keys_decrypt(cf_kms_keys *k, const cf_kms_caller *who, const cf_kms_binding *b,
                        const uint8_t *wrapped, size_t wrapped_len, cf_buf *ret_plain)
{
    uint32_t v = 0;
    size_t before = ret_plain != NULL ? ret_plain->len : 0;
    int rc;

    CF_ENSURE(k != NULL, CF_E_INVAL);
    rc = data_args(who, b);
    if (rc == 0)
        rc = check_plain_out(ret_plain, wrapped_len > CF_KMS_WRAPPED_OVERHEAD
                                            ? wrapped_len - CF_KMS_WRAPPED_OVERHEAD : 0);
    if (rc == 0 && wrapped == NULL)
        rc = cf_err_set(CF_E_INVAL, "wrapped value is NULL");
    if (rc == 0)
        rc = unwrap_value(k, LABEL_WRAP, b, wrapped, wrapped_len, ret_plain, &v);
    return data_finish(k, who, "data.decrypt", b, v, 0, rc, ret_plain, before, NULL, 0);
}

int cf_kms_keys_generate_data_key(cf_kms_keys *k, const cf_kms_caller *who,
                                  const cf_kms_binding *b, cf_buf *ret_plain, cf_buf *ret_wrapped)
{
    uint8_t *dk = NULL;
    uint32_t v = 0;
    size_t before_w, before_p = ret_plain != NULL ? ret_plain->len : 0;
    int rc;

    CF_ENSURE(k != NULL && ret_wrapped != NULL, CF_E_INVAL);
    before_w = ret_wrapped->len;
    rc = data_args(who, b);
    if (rc == 0 && ret_plain != NULL)
        rc = check_plain_out(ret_plain, CF_KMS_KEY_LEN);
    if (rc == 0) {
        dk = cf_secure_alloc(CF_KMS_KEY_LEN);
        rc = dk != NULL ? cf_random_secret(dk, CF_KMS_KEY_LEN) : CF_E_NOMEM;
    }
    if (rc == 0)
        rc = wrap_value(k, LABEL_WRAP, b, dk, CF_KMS_KEY_LEN, ret_wrapped, &v);
    if (rc == 0 && ret_plain != NULL)
        rc = cf_buf_put(ret_plain, dk, CF_KMS_KEY_LEN);
    cf_secure_free(dk);
    return data_finish(k, who, ret_plain != NULL ? "datakey.generate" : "datakey.generate_wrapped",
                       b, v, 0, rc, ret_wrapped, before_w, ret_plain, before_p);
}

int cf_kms_keys_decrypt_data_key(cf_kms_keys *k, const cf_kms_caller *who,
                                 const cf_kms_binding *b, const uint8_t *wrapped,
                                 size_t wrapped_len, cf_buf *ret_plain)
{
    uint32_t v = 0;
    size_t before = ret_plain != NULL ? ret_plain->len : 0;
    int rc;

    CF_ENSURE(k != NULL, CF_E_INVAL);
    rc = data_args(who, b);
    if (rc == 0)
        rc = check_plain_out(ret_plain, CF_KMS_KEY_LEN);
    if (rc == 0 && wrapped == NULL)
        rc = cf_err_set(CF_E_INVAL, "wrapped value is NULL");
    if (rc == 0 && wrapped_len != CF_KMS_KEY_LEN + CF_KMS_WRAPPED_OVERHEAD)
        rc = cf_err_set(CF_E_PARSE, "wrapped value of %zu bytes is not a wrapped data key",
                        wrapped_len);
    if (rc == 0)
        rc = unwrap_value(k, LABEL_WRAP, b, wrapped, wrapped_len, ret_plain, &v);
    return data_finish(k, who, "datakey.decrypt", b, v, 0, rc, ret_plain, before, NULL, 0);
}

int cf_kms_keys_rewrap(cf_kms_keys *k, const cf_kms_caller *who, const cf_kms_binding *b,
                       const uint8_t *wrapped, size_t wrapped_len, cf_buf *ret_wrapped)
{
    cf_buf tmp;
    uint32_t from = 0, to = 0;
    size_t before;
    int rc;

    CF_ENSURE(k != NULL && ret_wrapped != NULL, CF_E_INVAL);
    before = ret_wrapped->len;
    cf_buf_init_secret(&tmp, CF_KMS_MAX_PLAINTEXT);
    rc = data_args(who, b);
    if (rc == 0 && wrapped == NULL)
        rc = cf_err_set(CF_E_INVAL, "wrapped value is NULL");
    if (rc == 0)
        rc = unwrap_value(k, LABEL_WRAP, b, wrapped, wrapped_len, &tmp, &from);
    if (rc == 0)
        rc = wrap_value(k, LABEL_WRAP, b, tmp.data, tmp.len, ret_wrapped, &to);
    cf_buf_free(&tmp); /* secret: wiped */
    return data_finish(k, who, "data.rewrap", b, rc == 0 ? to : from, rc == 0 ? from : 0, rc,
                       ret_wrapped, before, NULL, 0);
}

int cf_kms_keys_seal(cf_kms_keys *k, const cf_kms_binding *b, const uint8_t *pt, size_t pt_len,
                     cf_buf *ret_sealed)
{
    uint32_t v;

    CF_ENSURE(k != NULL && ret_sealed != NULL && (pt != NULL || pt_len == 0), CF_E_INVAL);
    CF_GUARD(check_binding(b));
    if (pt_len > CF_KMS_MAX_PLAINTEXT)
        return cf_err_set(CF_E_TOO_LARGE, "value of %zu bytes exceeds the limit of %u bytes",
                          pt_len, (unsigned)CF_KMS_MAX_PLAINTEXT);
    return wrap_value(k, LABEL_SEAL, b, pt, pt_len, ret_sealed, &v);
}

int cf_kms_keys_unseal(cf_kms_keys *k, const cf_kms_binding *b, const uint8_t *sealed,
                       size_t sealed_len, cf_buf *ret_plain)
{
    uint32_t v;

    CF_ENSURE(k != NULL && sealed != NULL, CF_E_INVAL);
    CF_GUARD(check_binding(b));
    CF_GUARD(check_plain_out(ret_plain, 0));
    return unwrap_value(k, LABEL_SEAL, b, sealed, sealed_len, ret_plain, &v);
}
