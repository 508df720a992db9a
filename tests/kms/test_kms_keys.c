/*
 * KMS tenant keys, data keys and wrapped values (src/kms/keys.h, aead.h)
 * against a real SoftHSM2 token and a SQLite store in a temporary directory.
 *
 * PKCS#11 state is per process and only one cf_hsm may be open at a time, so
 * the multi-process cases (two rotation runners, kill -9) close everything in
 * the parent before they fork; each child opens its own HSM session, store
 * handles and audit spool (one spool per directory), and the parent reopens
 * afterwards.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/err.h"
#include "base/json.h"
#include "base/limits.h"
#include "base/parse.h"
#include "base/secmem.h"
#include "hsm/hsm.h"
#include "kms/aead.h"
#include "kms/keys.h"
#include "spool/spool.h"
#include "store/store.h"
#include "test.h"

/* ---- environment ---------------------------------------------------------- */

static char g_dir[64];                 /* root temp dir; the SoftHSM2 token lives in g_dir/hsm */
static char g_sub[96];                 /* per-backend dir: spools (and the SQLite file) */
static char g_hsmdir[128], g_spooldir[160], g_db[160], g_dsn[1024];
static bool g_sqlite;                  /* the suite runs on SQLite (file checks possible) */
static int64_t g_now = 1700000000;
static cf_hsm *g_hsm;
static cf_spool *g_spool;
static cf_kms_keys *g_keys;
static const cf_kms_caller g_who = {.principal = "user:alice", .request_id = "req-1"};

static int64_t test_clock(void *arg)
{
    (void)arg;
    return g_now;
}

static int rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(p);
}

static cf_hsm_opts hsm_opts(void)
{
    cf_hsm_opts o = {.pin = "user-pin-1234", .so_pin = "so-secret-1234", .softhsm_dir = g_hsmdir,
                     .token_label = "coffer-kms-test", .create_master = true};
    return o;
}

static int open_keys(const char *spooldir, size_t cache, cf_hsm **hsm, cf_spool **sp,
                     cf_kms_keys **keys)
{
    cf_hsm_opts ho = hsm_opts();
    cf_kms_keys_opts ko = {.cache_capacity = cache, .clock = test_clock};

    if (*hsm == NULL)
        CF_GUARD(cf_hsm_open(&ho, hsm));
    CF_GUARD(cf_spool_open(spooldir, sp));
    return cf_kms_keys_open(*hsm, g_dsn, *sp, &ko, keys);
}

static int open_all(void)
{
    return open_keys(g_spooldir, 0, &g_hsm, &g_spool, &g_keys);
}

static void close_all(void)
{
    cf_kms_keys_close(g_keys);
    cf_spool_close(g_spool);
    cf_hsm_close(g_hsm);
    g_keys = NULL;
    g_spool = NULL;
    g_hsm = NULL;
}

static cf_kms_binding bind(const char *tenant, const char *tee, const char *ctx)
{
    cf_kms_binding b = {.tenant = tenant, .tee_id = tee, .context = (const uint8_t *)ctx,
                        .context_len = ctx != NULL ? strlen(ctx) : 0};
    return b;
}

static uint32_t wrapped_version(const cf_buf *w)
{
    return w->len < 8 ? 0
                      : ((uint32_t)w->data[4] << 24) | ((uint32_t)w->data[5] << 16) |
                            ((uint32_t)w->data[6] << 8) | w->data[7];
}

static const char *detail(int rc)
{
    return cf_err_detail(rc);
}

/* ---- audit events ---------------------------------------------------------- */

typedef struct {
    const char *action, *tenant, *outcome, *needle;
    size_t count;
    char last_id[CF_SPOOL_EVENT_ID_LEN + 1]; /* event_id of the last match */
} ev_query;

static int ev_cb(void *arg, const char *json, size_t len, uint64_t next)
{
    ev_query *q = arg;
    json_t *o = NULL;
    const char *a = NULL, *t = NULL, *out = NULL;

    (void)next;
    if (cf_json_parse_object(json, len, CF_SPOOL_MAX_RECORD, &o) != 0)
        return CF_E_PARSE;
    if (cf_json_get_str(o, "action", true, 64, &a) != 0 ||
        cf_json_get_str(o, "outcome", true, 16, &out) != 0 ||
        cf_json_get_str(o, "tenant", false, CF_ID_MAX_LEN, &t) != 0) {
        json_decref(o);
        return CF_E_PARSE;
    }
    if (strcmp(a, q->action) == 0 && (q->outcome == NULL || strcmp(out, q->outcome) == 0) &&
        (q->tenant == NULL || (t != NULL && strcmp(t, q->tenant) == 0)) &&
        (q->needle == NULL || memmem(json, len, q->needle, strlen(q->needle)) != NULL)) {
        const char *id = NULL;
        q->count++;
        if (cf_json_get_str(o, "event_id", true, CF_SPOOL_EVENT_ID_LEN, &id) == 0)
            memcpy(q->last_id, id, strlen(id) + 1);
    }
    json_decref(o);
    return 0;
}

/* Events in the open spool matching action/tenant/outcome (NULL = any) whose
 * JSON text contains needle (NULL = any). */
static size_t events_id(cf_spool *sp, const char *action, const char *tenant, const char *outcome,
                        const char *needle, char *ret_last_id)
{
    ev_query q = {action, tenant, outcome, needle, 0, ""};

    if (cf_spool_pending(sp, SIZE_MAX, ev_cb, &q) != 0)
        return (size_t)-1;
    if (ret_last_id != NULL)
        memcpy(ret_last_id, q.last_id, sizeof(q.last_id));
    return q.count;
}

static size_t events(cf_spool *sp, const char *action, const char *tenant, const char *outcome,
                     const char *needle)
{
    return events_id(sp, action, tenant, outcome, needle, NULL);
}

/* ---- raw store access (to look at and tamper with what the KMS stored) ---- */

static int raw_wrapped(const char *tenant, uint32_t version, uint8_t *out, size_t *ret_len)
{
    cf_store *s = NULL;
    cf_store_rows *r = NULL;
    int rc;

    CF_GUARD(cf_store_open(g_dsn, &s));
    rc = cf_store_query_row(s, "SELECT wrapped FROM kms_key_version WHERE tenant = ? AND version = ?",
                            CF_STORE_ARGS(cf_sv_text(tenant), cf_sv_int(version)), &r);
    if (rc == 0)
        rc = cf_store_col_blob(r, 0, out, 64, ret_len);
    cf_store_rows_close(r);
    cf_store_close(s);
    return rc;
}

static int raw_exec(const char *sql, const cf_store_val *p, size_t n)
{
    cf_store *s = NULL;
    int rc;

    CF_GUARD(cf_store_open(g_dsn, &s));
    rc = cf_store_exec(s, sql, p, n, NULL);
    cf_store_close(s);
    return rc;
}

/* Unwraps a tenant-key version in the HSM the way the KMS does (the test knows
 * the AAD layout from docs/internals/kms-keys.md), to search for its bytes. */
static int raw_tenant_key(const char *tenant, uint32_t version, cf_buf *out)
{
    uint8_t w[64];
    size_t wn = 0;
    cf_buf aad;
    int rc;

    CF_GUARD(raw_wrapped(tenant, version, w, &wn));
    cf_buf_init(&aad, 256);
    rc = cf_buf_put(&aad, "coffer/v1 tenant-key", 21);
    if (rc == 0)
        rc = cf_buf_put_u16be(&aad, (uint16_t)strlen(tenant));
    if (rc == 0)
        rc = cf_buf_put_str(&aad, tenant);
    if (rc == 0)
        rc = cf_buf_put_u32be(&aad, version);
    if (rc == 0)
        rc = cf_hsm_unwrap(g_hsm, aad.data, aad.len, w, wn, out);
    cf_buf_free(&aad);
    return rc;
}

static uint8_t *read_all(const char *path, size_t *ret_len)
{
    struct stat st;

    if (stat(path, &st) != 0) {
        *ret_len = 0;
        return calloc(1, 1);
    }
    return t_read_file(path, ret_len);
}

/* True if the bytes, or their hex / base64 / base64url text, occur in buf. */
static bool leaks(const uint8_t *buf, size_t n, const uint8_t *secret, size_t sn)
{
    char hex[2 * 64 + 1], b64[128], b64u[128];

    if (sn > 64)
        return true;
    cf_hex_encode(secret, sn, hex);
    cf_b64_encode(secret, sn, b64);
    cf_b64url_encode(secret, sn, b64u);
    /* base64 of the first 30 bytes too: an encoder that wraps or pads differently */
    return memmem(buf, n, secret, sn) != NULL || memmem(buf, n, hex, strlen(hex)) != NULL ||
           memmem(buf, n, b64, 40) != NULL || memmem(buf, n, b64u, 40) != NULL;
}

/* ---- AEAD and the CFW1 format ------------------------------------------------ */

/* AES-256-GCM known answers: the RFC 9180 Appendix A encryptions of the
 * suites with aead_id 2 (key, nonce, aad, plaintext, ciphertext||tag). */
static void test_aead_vectors(void)
{
    size_t len, checked = 0;
    unsigned char *txt = t_read_file(t_testdata("hpke/rfc9180-appendix-a.json"), &len);
    json_t *all = NULL;

    T_OK(cf_json_parse(txt, len, 1u << 20, &all));
    T_ASSERT(json_is_array(all));
    for (size_t i = 0; i < json_array_size(all); i++) {
        json_t *v = json_array_get(all, i), *encs = NULL;
        uint64_t aead = 0;
        uint8_t key[32];

        T_OK(cf_json_get_u64(v, "aead_id", true, 0xffff, &aead));
        if (aead != 2)
            continue;
        T_OK(cf_json_get_hex(v, "key", true, key, sizeof(key)));
        T_OK(cf_json_get_array(v, "encryptions", true, 1024, &encs));
        for (size_t j = 0; j < json_array_size(encs); j++) {
            json_t *e = json_array_get(encs, j);
            const char *nonce_h, *aad_h, *pt_h, *ct_h;
            cf_buf in, aad, pt, out;

            T_OK(cf_json_get_str(e, "nonce", true, 64, &nonce_h));
            T_OK(cf_json_get_str(e, "aad", true, 4096, &aad_h));
            T_OK(cf_json_get_str(e, "plaintext", true, 4096, &pt_h));
            T_OK(cf_json_get_str(e, "ciphertext", true, 4096, &ct_h));
            cf_buf_init(&in, 4096);
            cf_buf_init(&aad, 4096);
            cf_buf_init(&pt, 4096);
            cf_buf_init_secret(&out, 4096);
            T_OK(cf_hex_decode_buf(nonce_h, 12, &in));
            T_OK(cf_hex_decode_buf(ct_h, 2048, &in));
            T_OK(cf_hex_decode_buf(aad_h, 2048, &aad));
            T_OK(cf_hex_decode_buf(pt_h, 2048, &pt));
            T_OK(cf_aead_open(key, aad.data, aad.len, in.data, in.len, &out));
            T_EQ(out.len, pt.len);
            T_MEMEQ(out.data, pt.data, pt.len);
            /* one flipped bit of the tag: nothing is released */
            in.data[in.len - 1] ^= 0x80;
            cf_buf_reset(&out);
            T_ERR(cf_aead_open(key, aad.data, aad.len, in.data, in.len, &out), CF_E_DECRYPT);
            T_EQ(out.len, 0);
            checked++;
            cf_buf_free(&in);
            cf_buf_free(&aad);
            cf_buf_free(&pt);
            cf_buf_free(&out);
        }
    }
    T_ASSERT(checked >= 4);
    json_decref(all);
    free(txt);
}

static void test_aead_seal_open(void)
{
    uint8_t key[32], key2[32], pt[100];
    cf_buf a, b, out;

    for (size_t i = 0; i < sizeof(key); i++) {
        key[i] = (uint8_t)(i * 7);
        key2[i] = (uint8_t)(i * 7 + 1);
    }
    memset(pt, 'p', sizeof(pt));
    cf_buf_init(&a, 1024);
    cf_buf_init(&b, 1024);
    cf_buf_init_secret(&out, 1024);
    T_OK(cf_aead_seal(key, (const uint8_t *)"ad", 2, pt, sizeof(pt), &a));
    T_OK(cf_aead_seal(key, (const uint8_t *)"ad", 2, pt, sizeof(pt), &b));
    T_EQ(a.len, sizeof(pt) + CF_AEAD_OVERHEAD);
    T_ASSERT(memcmp(a.data, b.data, CF_AEAD_NONCE_LEN) != 0); /* fresh nonces */
    T_ASSERT(memmem(a.data, a.len, pt, 16) == NULL);
    T_OK(cf_aead_open(key, (const uint8_t *)"ad", 2, a.data, a.len, &out));
    T_EQ(out.len, sizeof(pt));
    T_MEMEQ(out.data, pt, sizeof(pt));
    cf_buf_reset(&out);
    /* every byte matters; wrong key, AAD or length fail; out stays empty */
    for (size_t i = 0; i < a.len; i++) {
        a.data[i] ^= 0x01;
        T_ERR(cf_aead_open(key, (const uint8_t *)"ad", 2, a.data, a.len, &out), CF_E_DECRYPT);
        a.data[i] ^= 0x01;
    }
    T_ERR(cf_aead_open(key2, (const uint8_t *)"ad", 2, a.data, a.len, &out), CF_E_DECRYPT);
    T_ERR(cf_aead_open(key, (const uint8_t *)"aD", 2, a.data, a.len, &out), CF_E_DECRYPT);
    T_ERR(cf_aead_open(key, NULL, 0, a.data, a.len, &out), CF_E_DECRYPT);
    T_ERR(cf_aead_open(key, (const uint8_t *)"ad", 2, a.data, a.len - 1, &out), CF_E_DECRYPT);
    T_ERR(cf_aead_open(key, (const uint8_t *)"ad", 2, a.data, CF_AEAD_OVERHEAD - 1, &out),
          CF_E_DECRYPT);
    T_EQ(out.len, 0);
    /* empty plaintext is a valid message */
    cf_buf_reset(&b);
    T_OK(cf_aead_seal(key, NULL, 0, NULL, 0, &b));
    T_EQ(b.len, CF_AEAD_OVERHEAD);
    T_OK(cf_aead_open(key, NULL, 0, b.data, b.len, &out));
    T_EQ(out.len, 0);
    /* a full output buffer: seal fails and leaves it as it was */
    cf_buf_free(&b);
    cf_buf_init(&b, 20);
    T_FAILS(cf_aead_seal(key, NULL, 0, pt, sizeof(pt), &b));
    T_EQ(b.len, 0);
    cf_buf_free(&a);
    cf_buf_free(&b);
    cf_buf_free(&out);
}

static void test_wrapped_format(void)
{
    uint8_t v[64];
    cf_wrapped w;
    cf_buf b;

    memset(v, 0xab, sizeof(v));
    memcpy(v, "CFW1\x00\x00\x00\x07", 8);
    T_OK(cf_wrapped_parse(v, 8 + CF_AEAD_OVERHEAD, &w));
    T_EQ(w.version, 7);
    T_ASSERT(w.header == v && w.body == v + 8);
    T_EQ(w.body_len, CF_AEAD_OVERHEAD);
    T_OK(cf_wrapped_parse(v, sizeof(v), &w));
    T_EQ(w.body_len, sizeof(v) - 8);

    T_ERR(cf_wrapped_parse(v, 8 + CF_AEAD_OVERHEAD - 1, &w), CF_E_TRUNCATED);
    T_ERR(cf_wrapped_parse(v, 7, &w), CF_E_TRUNCATED);
    T_ERR(cf_wrapped_parse(v, 3, &w), CF_E_TRUNCATED);
    T_ERR(cf_wrapped_parse(v, 0, &w), CF_E_TRUNCATED);
    v[3] = '2';
    T_ERR(cf_wrapped_parse(v, sizeof(v), &w), CF_E_PARSE);
    v[3] = '1';
    memcpy(v + 4, "\x00\x00\x00\x00", 4);
    T_ERR(cf_wrapped_parse(v, sizeof(v), &w), CF_E_RANGE);
    memcpy(v + 4, "\x80\x00\x00\x00", 4);
    T_ERR(cf_wrapped_parse(v, sizeof(v), &w), CF_E_RANGE);
    uint8_t *big = calloc(1, CF_KMS_MAX_WRAPPED + 1);
    T_ASSERT(big != NULL);
    memcpy(big, "CFW1\x00\x00\x00\x01", 8);
    T_OK(cf_wrapped_parse(big, CF_KMS_MAX_WRAPPED, &w));
    T_ERR(cf_wrapped_parse(big, CF_KMS_MAX_WRAPPED + 1, &w), CF_E_TOO_LARGE);
    free(big);

    cf_buf_init(&b, 64);
    T_OK(cf_wrapped_put_header(&b, 0x01020304));
    T_EQ(b.len, 8);
    T_MEMEQ(b.data, "CFW1\x01\x02\x03\x04", 8);
    T_ERR(cf_wrapped_put_header(&b, 0), CF_E_RANGE);
    T_ERR(cf_wrapped_put_header(&b, CF_KMS_MAX_KEY_VERSION + 1u), CF_E_RANGE);
    T_EQ(b.len, 8);
    cf_buf_free(&b);
}

/* ---- tenant keys ---------------------------------------------------------- */

/* Values kept across tests (and across the restart). */
static uint8_t g_v1_val[256];
static size_t g_v1_len;

static void test_open_refusals(void)
{
    cf_kms_keys *k = NULL;
    cf_kms_keys_opts o = {.cache_capacity = CF_KMS_CACHE_MAX + 1};

    T_ERR(cf_kms_keys_open(g_hsm, "sqlite::memory:", g_spool, NULL, &k), CF_E_CONFIG);
    T_ERR(cf_kms_keys_open(g_hsm, g_dsn, g_spool, &o, &k), CF_E_CONFIG);
    T_ERR(cf_kms_keys_open(g_hsm, NULL, g_spool, NULL, &k), CF_E_INVAL);
    T_ASSERT(k == NULL);
}

static void test_create_describe(void)
{
    cf_kms_tenant_info info;
    cf_kms_policy bad = {.set_min_decryption_version = true, .min_decryption_version = 2};
    cf_kms_policy badrot = {.set_rotate_every = true, .rotate_every = 5};
    size_t before = events(g_spool, "key.create", "t1", "success", NULL);

    T_OK(cf_kms_keys_create(g_keys, &g_who, "t1", NULL, &info));
    T_STREQ(info.tenant, "t1");
    T_EQ(info.current_version, 1);
    T_EQ(info.min_decryption_version, 1);
    T_EQ(info.rotate_every, 0);
    T_EQ(info.created_at, g_now);
    T_EQ(events(g_spool, "key.create", "t1", "success", "\"resource\":\"tenant-key/t1/v1\""),
         before + 1);
    T_EQ(events(g_spool, "key.create", "t1", "success", "\"actor\":\"user:alice\""), before + 1);

    memset(&info, 0, sizeof(info));
    T_OK(cf_kms_keys_describe(g_keys, &g_who, "t1", &info));
    T_EQ(info.current_version, 1);
    T_ASSERT(!info.revoked);
    T_EQ(events(g_spool, "key.describe", "t1", "success", NULL), 1);

    T_ERR(cf_kms_keys_create(g_keys, &g_who, "t1", NULL, NULL), CF_E_EXISTS);
    T_STREQ(detail(CF_E_EXISTS), "tenant t1 already has keys");
    T_EQ(events(g_spool, "key.create", "t1", "failure", "already has keys"), 1);

    T_ERR(cf_kms_keys_describe(g_keys, &g_who, "nobody", &info), CF_E_NOT_FOUND);
    T_STREQ(detail(CF_E_NOT_FOUND), "unknown tenant nobody");
    T_EQ(events(g_spool, "key.describe", "nobody", "failure", "unknown tenant nobody"), 1);
    T_ERR(cf_kms_keys_rotate(g_keys, &g_who, "nobody", NULL), CF_E_NOT_FOUND);
    T_EQ(events(g_spool, "key.rotate", "nobody", "failure", "\"error\":\"not_found\""), 1);

    /* malformed ids and policies: refused, audited, without echoing the bad id */
    T_ERR(cf_kms_keys_create(g_keys, &g_who, "a/b", NULL, NULL), CF_E_INVAL);
    T_ERR(cf_kms_keys_create(g_keys, &g_who, "", NULL, NULL), CF_E_INVAL);
    T_ERR(cf_kms_keys_create(g_keys, &g_who, NULL, NULL, NULL), CF_E_INVAL);
    T_ERR(cf_kms_keys_create(g_keys, &g_who, "t\n", NULL, NULL), CF_E_INVAL);
    T_EQ(events(g_spool, "key.create", NULL, "failure", "a/b"), 0);
    /* 4 id refusals: no tenant recorded, the resource is the generic one */
    T_EQ(events(g_spool, "key.create", NULL, "failure", "\"resource\":\"tenant-key\""), 4);
    T_ERR(cf_kms_keys_create(g_keys, &g_who, "t9", &bad, NULL), CF_E_RANGE);
    T_ERR(cf_kms_keys_create(g_keys, &g_who, "t9", &badrot, NULL), CF_E_RANGE);
    T_ERR(cf_kms_keys_describe(g_keys, &g_who, "t9", &info), CF_E_NOT_FOUND); /* nothing created */
    cf_kms_caller badwho = {.principal = "x\x01y"};
    T_ERR(cf_kms_keys_create(g_keys, &badwho, "t9", NULL, NULL), CF_E_INVAL);
}

static void test_encrypt_decrypt(void)
{
    cf_kms_binding b = bind("t1", NULL, "object-42");
    cf_kms_binding other_ctx = bind("t1", NULL, "object-43");
    cf_kms_binding no_ctx = bind("t1", NULL, NULL);
    cf_buf w, p, plainbuf;
    const char *msg = "the quick brown fox";

    T_OK(cf_kms_keys_create(g_keys, &g_who, "t2", NULL, NULL));
    cf_buf_init(&w, CF_KMS_MAX_WRAPPED);
    cf_buf_init_secret(&p, CF_KMS_MAX_PLAINTEXT);
    T_OK(cf_kms_keys_encrypt(g_keys, &g_who, &b, (const uint8_t *)msg, strlen(msg), &w));
    T_EQ(w.len, strlen(msg) + CF_KMS_WRAPPED_OVERHEAD);
    T_MEMEQ(w.data, "CFW1", 4);
    T_EQ(wrapped_version(&w), 1);
    T_ASSERT(memmem(w.data, w.len, msg, strlen(msg)) == NULL);
    memcpy(g_v1_val, w.data, w.len);
    g_v1_len = w.len;

    T_OK(cf_kms_keys_decrypt(g_keys, &g_who, &b, w.data, w.len, &p));
    T_EQ(p.len, strlen(msg));
    T_MEMEQ(p.data, msg, p.len);
    T_EQ(events(g_spool, "data.encrypt", "t1", "success", "\"resource\":\"tenant-key/t1/v1\""), 1);
    T_EQ(events(g_spool, "data.decrypt", "t1", "success", NULL), 1);

    /* the binding is part of the value: other context, none, other tenant */
    cf_buf_reset(&p);
    T_ERR(cf_kms_keys_decrypt(g_keys, &g_who, &other_ctx, w.data, w.len, &p), CF_E_DECRYPT);
    T_ERR(cf_kms_keys_decrypt(g_keys, &g_who, &no_ctx, w.data, w.len, &p), CF_E_DECRYPT);
    cf_kms_binding t2 = bind("t2", NULL, "object-42");
    T_ERR(cf_kms_keys_decrypt(g_keys, &g_who, &t2, w.data, w.len, &p), CF_E_DECRYPT);
    T_EQ(p.len, 0);
    T_ASSERT(events(g_spool, "data.decrypt", "t1", "failure", "failed authentication") >= 2);

    /* tampering: any byte of the value */
    for (size_t i = 0; i < w.len; i++) {
        int rc;
        w.data[i] ^= 0x40;
        rc = cf_kms_keys_decrypt(g_keys, &g_who, &b, w.data, w.len, &p);
        w.data[i] ^= 0x40;
        T_ASSERT_MSG(rc < 0, "tampered byte %zu accepted", i);
        T_EQ(p.len, 0);
    }
    T_ERR(cf_kms_keys_decrypt(g_keys, &g_who, &b, w.data, w.len - 1, &p), CF_E_DECRYPT);
    T_ERR(cf_kms_keys_decrypt(g_keys, &g_who, &b, w.data, 20, &p), CF_E_TRUNCATED);
    /* a version that does not exist */
    w.data[7] = 9;
    T_ERR(cf_kms_keys_decrypt(g_keys, &g_who, &b, w.data, w.len, &p), CF_E_NOT_FOUND);
    T_STREQ(detail(CF_E_NOT_FOUND), "key version 9 of tenant t1 does not exist");
    w.data[7] = 1;
    /* unknown tenant */
    cf_kms_binding nob = bind("nobody", NULL, NULL);
    T_ERR(cf_kms_keys_encrypt(g_keys, &g_who, &nob, (const uint8_t *)"x", 1, &w), CF_E_NOT_FOUND);
    T_STREQ(detail(CF_E_NOT_FOUND), "unknown tenant nobody");
    T_EQ(w.len, strlen(msg) + CF_KMS_WRAPPED_OVERHEAD); /* output untouched */

    /* plaintext only into secret memory; size limits */
    cf_buf_init(&plainbuf, 1024);
    T_ERR(cf_kms_keys_decrypt(g_keys, &g_who, &b, w.data, w.len, &plainbuf), CF_E_INVAL);
    T_EQ(plainbuf.len, 0);
    cf_buf_free(&plainbuf);
    uint8_t *big = calloc(1, CF_KMS_MAX_PLAINTEXT + 1);
    T_ASSERT(big != NULL);
    cf_buf_reset(&w);
    T_OK(cf_kms_keys_encrypt(g_keys, &g_who, &b, big, CF_KMS_MAX_PLAINTEXT, &w));
    T_OK(cf_kms_keys_decrypt(g_keys, &g_who, &b, w.data, w.len, &p));
    T_EQ(p.len, CF_KMS_MAX_PLAINTEXT);
    cf_buf_reset(&w);
    T_ERR(cf_kms_keys_encrypt(g_keys, &g_who, &b, big, CF_KMS_MAX_PLAINTEXT + 1, &w), CF_E_TOO_LARGE);
    T_EQ(w.len, 0);
    free(big);
    uint8_t ctx[CF_KMS_MAX_CONTEXT + 1];
    memset(ctx, 'c', sizeof(ctx));
    cf_kms_binding bigctx = {.tenant = "t1", .context = ctx, .context_len = sizeof(ctx)};
    T_ERR(cf_kms_keys_encrypt(g_keys, &g_who, &bigctx, (const uint8_t *)"x", 1, &w), CF_E_TOO_LARGE);
    bigctx.context_len = CF_KMS_MAX_CONTEXT;
    T_OK(cf_kms_keys_encrypt(g_keys, &g_who, &bigctx, (const uint8_t *)"x", 1, &w));
    /* empty value */
    cf_buf_reset(&w);
    cf_buf_reset(&p);
    T_OK(cf_kms_keys_encrypt(g_keys, &g_who, &b, NULL, 0, &w));
    T_OK(cf_kms_keys_decrypt(g_keys, &g_who, &b, w.data, w.len, &p));
    T_EQ(p.len, 0);
    cf_buf_free(&w);
    cf_buf_free(&p);
}

static void test_rotate_rewrap(void)
{
    cf_kms_binding b = bind("t1", NULL, "object-42");
    cf_kms_version_info vs[8];
    cf_kms_tenant_info info;
    uint32_t v = 0;
    size_t n = 0;
    cf_buf w, w2, p;

    g_now += 100;
    T_OK(cf_kms_keys_rotate(g_keys, &g_who, "t1", &v));
    T_EQ(v, 2);
    T_EQ(events(g_spool, "key.rotate", "t1", "success",
                "\"resource\":\"tenant-key/t1/v2\""), 1);
    T_EQ(events(g_spool, "key.rotate", "t1", "success", "\"trigger\":\"manual\""), 1);
    cf_buf_init(&w, 1024);
    cf_buf_init(&w2, 1024);
    cf_buf_init_secret(&p, 1024);
    T_OK(cf_kms_keys_encrypt(g_keys, &g_who, &b, (const uint8_t *)"new", 3, &w));
    T_EQ(wrapped_version(&w), 2);
    /* the version-1 value still decrypts */
    T_OK(cf_kms_keys_decrypt(g_keys, &g_who, &b, g_v1_val, g_v1_len, &p));
    T_MEMEQ(p.data, "the quick brown fox", 19);
    cf_buf_reset(&p);
    /* rewrap moves it to the newest version; same plaintext */
    T_OK(cf_kms_keys_rewrap(g_keys, &g_who, &b, g_v1_val, g_v1_len, &w2));
    T_EQ(wrapped_version(&w2), 2);
    T_OK(cf_kms_keys_decrypt(g_keys, &g_who, &b, w2.data, w2.len, &p));
    T_EQ(p.len, 19);
    T_MEMEQ(p.data, "the quick brown fox", 19);
    T_EQ(events(g_spool, "data.rewrap", "t1", "success", "\"from_version\":1"), 1);
    /* rewrap keeps the binding: a wrong context fails and writes nothing */
    cf_kms_binding wrong = bind("t1", NULL, "object-x");
    size_t l = w2.len;
    T_ERR(cf_kms_keys_rewrap(g_keys, &g_who, &wrong, g_v1_val, g_v1_len, &w2), CF_E_DECRYPT);
    T_EQ(w2.len, l);

    T_OK(cf_kms_keys_list_versions(g_keys, &g_who, "t1", 0, vs, 8, &n));
    T_EQ(n, 2);
    T_EQ(vs[0].version, 1);
    T_EQ(vs[1].version, 2);
    T_EQ(vs[0].state, CF_KMS_KEY_ACTIVE);
    T_EQ(vs[1].created_at, g_now);
    T_OK(cf_kms_keys_list_versions(g_keys, &g_who, "t1", 1, vs, 8, &n));
    T_EQ(n, 1);
    T_EQ(vs[0].version, 2);
    T_ERR(cf_kms_keys_list_versions(g_keys, &g_who, "t1", 0, vs, 0, &n), CF_E_RANGE);
    T_ERR(cf_kms_keys_list_versions(g_keys, &g_who, "nobody", 0, vs, 8, &n), CF_E_NOT_FOUND);
    T_OK(cf_kms_keys_describe(g_keys, &g_who, "t1", &info));
    T_EQ(info.current_version, 2);
    cf_buf_free(&w);
    cf_buf_free(&w2);
    cf_buf_free(&p);
}

static void test_min_decryption_version(void)
{
    cf_kms_binding b = bind("t2", NULL, NULL);
    cf_kms_policy pol = {.set_min_decryption_version = true, .min_decryption_version = 2};
    cf_kms_tenant_info info;
    cf_buf w1, w2, p, out;

    cf_buf_init(&w1, 1024);
    cf_buf_init(&w2, 1024);
    cf_buf_init(&out, 1024);
    cf_buf_init_secret(&p, 1024);
    T_OK(cf_kms_keys_encrypt(g_keys, &g_who, &b, (const uint8_t *)"old", 3, &w1));
    /* cannot exceed the current version */
    T_ERR(cf_kms_keys_set_policy(g_keys, &g_who, "t2", &pol, NULL), CF_E_RANGE);
    T_OK(cf_kms_keys_rotate(g_keys, &g_who, "t2", NULL));
    T_OK(cf_kms_keys_encrypt(g_keys, &g_who, &b, (const uint8_t *)"new", 3, &w2));
    T_OK(cf_kms_keys_decrypt(g_keys, &g_who, &b, w1.data, w1.len, &p)); /* still fine */
    cf_buf_reset(&p);
    T_OK(cf_kms_keys_set_policy(g_keys, &g_who, "t2", &pol, &info));
    T_EQ(info.min_decryption_version, 2);
    T_EQ(events(g_spool, "key.policy", "t2", "success", "\"min_decryption_version\":2"), 1);
    T_ERR(cf_kms_keys_decrypt(g_keys, &g_who, &b, w1.data, w1.len, &p), CF_E_FORBIDDEN);
    T_STREQ(detail(CF_E_FORBIDDEN), "key version 1 of tenant t2 is below min_decryption_version 2");
    T_EQ(p.len, 0);
    T_ERR(cf_kms_keys_rewrap(g_keys, &g_who, &b, w1.data, w1.len, &out), CF_E_FORBIDDEN);
    T_EQ(out.len, 0);
    T_EQ(events(g_spool, "data.decrypt", "t2", "failure", "below min_decryption_version"), 1);
    T_OK(cf_kms_keys_decrypt(g_keys, &g_who, &b, w2.data, w2.len, &p));
    /* it never goes down; no-op updates are refused */
    pol.min_decryption_version = 1;
    T_ERR(cf_kms_keys_set_policy(g_keys, &g_who, "t2", &pol, NULL), CF_E_CONFLICT);
    T_STREQ(detail(CF_E_CONFLICT), "min_decryption_version of tenant t2 cannot decrease (is 2)");
    pol.min_decryption_version = 0;
    T_ERR(cf_kms_keys_set_policy(g_keys, &g_who, "t2", &pol, NULL), CF_E_RANGE);
    cf_kms_policy none = {0};
    T_ERR(cf_kms_keys_set_policy(g_keys, &g_who, "t2", &none, NULL), CF_E_INVAL);
    T_ERR(cf_kms_keys_set_policy(g_keys, &g_who, "t2", NULL, NULL), CF_E_INVAL);
    pol.min_decryption_version = 2;
    T_ERR(cf_kms_keys_set_policy(g_keys, &g_who, "nobody", &pol, NULL), CF_E_NOT_FOUND);
    T_OK(cf_kms_keys_describe(g_keys, &g_who, "t2", &info));
    T_EQ(info.min_decryption_version, 2);
    cf_buf_free(&w1);
    cf_buf_free(&w2);
    cf_buf_free(&p);
    cf_buf_free(&out);
}

static void test_revoke_version(void)
{
    cf_kms_binding b = bind("t3", NULL, NULL);
    cf_kms_tenant_info info;
    cf_kms_version_info vs[8];
    uint32_t cur = 0;
    size_t n;
    cf_buf w1, w2, w3, p;

    cf_buf_init(&w1, 1024);
    cf_buf_init(&w2, 1024);
    cf_buf_init(&w3, 1024);
    cf_buf_init_secret(&p, 1024);
    T_OK(cf_kms_keys_create(g_keys, &g_who, "t3", NULL, NULL));
    T_OK(cf_kms_keys_encrypt(g_keys, &g_who, &b, (const uint8_t *)"one", 3, &w1));
    T_OK(cf_kms_keys_rotate(g_keys, &g_who, "t3", NULL));
    T_OK(cf_kms_keys_encrypt(g_keys, &g_who, &b, (const uint8_t *)"two", 3, &w2));

    /* a non-current version: revoked at once, current stays */
    T_OK(cf_kms_keys_revoke_version(g_keys, &g_who, "t3", 1, "leaked in incident 7", &cur));
    T_EQ(cur, 2);
    T_ERR(cf_kms_keys_decrypt(g_keys, &g_who, &b, w1.data, w1.len, &p), CF_E_REVOKED);
    T_STREQ(detail(CF_E_REVOKED), "key version 1 of tenant t3 is revoked");
    T_EQ(events(g_spool, "key.revoke", "t3", "success", "leaked in incident 7"), 1);
    T_EQ(events(g_spool, "data.decrypt", "t3", "failure", "key version 1 of tenant t3 is revoked"), 1);
    T_OK(cf_kms_keys_decrypt(g_keys, &g_who, &b, w2.data, w2.len, &p));
    cf_buf_reset(&p);
    /* no way back, no double revoke */
    T_ERR(cf_kms_keys_revoke_version(g_keys, &g_who, "t3", 1, "again", NULL), CF_E_CONFLICT);
    T_STREQ(detail(CF_E_CONFLICT), "key version 1 of tenant t3 is already revoked");
    T_ERR(cf_kms_keys_revoke_version(g_keys, &g_who, "t3", 7, "x", NULL), CF_E_NOT_FOUND);
    T_STREQ(detail(CF_E_NOT_FOUND), "key version 7 of tenant t3 does not exist");
    T_ERR(cf_kms_keys_revoke_version(g_keys, &g_who, "t3", 0, "x", NULL), CF_E_RANGE);
    T_ERR(cf_kms_keys_revoke_version(g_keys, &g_who, "t3", 2, NULL, NULL), CF_E_INVAL);
    T_ERR(cf_kms_keys_revoke_version(g_keys, &g_who, "t3", 2, "", NULL), CF_E_INVAL);
    T_ERR(cf_kms_keys_revoke_version(g_keys, &g_who, "t3", 2, "bad\ttab", NULL), CF_E_INVAL);
    T_ERR(cf_kms_keys_revoke_version(g_keys, &g_who, "nobody", 1, "x", NULL), CF_E_NOT_FOUND);
    /* the current version: a new version is made current first, in the same transaction */
    T_OK(cf_kms_keys_revoke_version(g_keys, &g_who, "t3", 2, "rotate out", &cur));
    T_EQ(cur, 3);
    T_EQ(events(g_spool, "key.revoke", "t3", "success", "\"rotated_to\":3"), 1);
    T_ERR(cf_kms_keys_decrypt(g_keys, &g_who, &b, w2.data, w2.len, &p), CF_E_REVOKED);
    T_OK(cf_kms_keys_encrypt(g_keys, &g_who, &b, (const uint8_t *)"three", 5, &w3));
    T_EQ(wrapped_version(&w3), 3);
    T_OK(cf_kms_keys_describe(g_keys, &g_who, "t3", &info));
    T_EQ(info.current_version, 3);
    T_ASSERT(!info.revoked);
    T_OK(cf_kms_keys_list_versions(g_keys, &g_who, "t3", 0, vs, 8, &n));
    T_EQ(n, 3);
    T_EQ(vs[0].state, CF_KMS_KEY_REVOKED);
    T_STREQ(vs[0].reason, "leaked in incident 7");
    T_ASSERT(vs[0].revoked_at > 0);
    T_EQ(vs[1].state, CF_KMS_KEY_REVOKED);
    T_EQ(vs[2].state, CF_KMS_KEY_ACTIVE);
    cf_buf_free(&w1);
    cf_buf_free(&w2);
    cf_buf_free(&w3);
    cf_buf_free(&p);
}

static void test_revoke_tenant(void)
{
    cf_kms_binding b = bind("t4", NULL, NULL);
    cf_kms_policy pol = {.set_rotate_every = true, .rotate_every = 60};
    cf_kms_tenant_info info;
    cf_kms_version_info vs[8];
    uint32_t v = 0;
    size_t n = 0, rotated = 0;
    cf_buf w1, w2, p;

    cf_buf_init(&w1, 1024);
    cf_buf_init(&w2, 1024);
    cf_buf_init_secret(&p, 1024);
    T_OK(cf_kms_keys_create(g_keys, &g_who, "t4", &pol, NULL));
    T_OK(cf_kms_keys_encrypt(g_keys, &g_who, &b, (const uint8_t *)"one", 3, &w1));
    T_OK(cf_kms_keys_rotate(g_keys, &g_who, "t4", NULL));
    T_OK(cf_kms_keys_revoke_tenant(g_keys, &g_who, "t4", "tenant offboarded"));
    T_EQ(events(g_spool, "key.revoke_tenant", "t4", "success", "\"versions_revoked\":2"), 1);
    T_ERR(cf_kms_keys_encrypt(g_keys, &g_who, &b, (const uint8_t *)"x", 1, &w2), CF_E_REVOKED);
    T_STREQ(detail(CF_E_REVOKED), "keys of tenant t4 are revoked");
    T_EQ(w2.len, 0);
    T_ERR(cf_kms_keys_decrypt(g_keys, &g_who, &b, w1.data, w1.len, &p), CF_E_REVOKED);
    T_ERR(cf_kms_keys_generate_data_key(g_keys, &g_who, &b, NULL, &w2), CF_E_REVOKED);
    T_ERR(cf_kms_keys_revoke_tenant(g_keys, &g_who, "t4", "again"), CF_E_CONFLICT);
    T_ERR(cf_kms_keys_revoke_tenant(g_keys, &g_who, "nobody", "x"), CF_E_NOT_FOUND);
    T_OK(cf_kms_keys_describe(g_keys, &g_who, "t4", &info));
    T_ASSERT(info.revoked);
    T_EQ(info.next_rotation_at, 0);
    /* the rotation task leaves a revoked tenant alone */
    T_OK(cf_kms_keys_rotate_due(g_keys, g_now + 100000, &rotated));
    T_OK(cf_kms_keys_describe(g_keys, &g_who, "t4", &info));
    T_EQ(info.current_version, 2);
    /* an explicit rotate re-keys it: new version active, old ones stay revoked */
    T_OK(cf_kms_keys_rotate(g_keys, &g_who, "t4", &v));
    T_EQ(v, 3);
    T_OK(cf_kms_keys_describe(g_keys, &g_who, "t4", &info));
    T_ASSERT(!info.revoked);
    T_EQ(info.next_rotation_at, g_now + 60);
    T_OK(cf_kms_keys_encrypt(g_keys, &g_who, &b, (const uint8_t *)"x", 1, &w2));
    T_EQ(wrapped_version(&w2), 3);
    T_ERR(cf_kms_keys_decrypt(g_keys, &g_who, &b, w1.data, w1.len, &p), CF_E_REVOKED);
    T_OK(cf_kms_keys_list_versions(g_keys, &g_who, "t4", 0, vs, 8, &n));
    T_EQ(n, 3);
    T_EQ(vs[0].state, CF_KMS_KEY_REVOKED);
    T_STREQ(vs[0].reason, "tenant offboarded");
    T_EQ(vs[1].state, CF_KMS_KEY_REVOKED);
    T_EQ(vs[2].state, CF_KMS_KEY_ACTIVE);
    /* policy off again (keeps the later rotation-task counts exact) */
    pol.rotate_every = 0;
    T_OK(cf_kms_keys_set_policy(g_keys, &g_who, "t4", &pol, &info));
    T_EQ(info.next_rotation_at, 0);
    cf_buf_free(&w1);
    cf_buf_free(&w2);
    cf_buf_free(&p);
}

static void test_destroy(void)
{
    cf_kms_binding b = bind("t5", NULL, NULL);
    cf_kms_version_info vs[8];
    uint8_t blob[64];
    size_t blen = 0, n = 0, dbn, waln;
    uint32_t cur = 0;
    char wal[160];
    uint8_t *db, *walb;
    cf_buf w1, p, tk;

    T_OK(cf_fmt(wal, sizeof(wal), "%s-wal", g_db));
    cf_buf_init(&w1, 1024);
    cf_buf_init_secret(&p, 1024);
    cf_buf_init_secret(&tk, 64);
    T_OK(cf_kms_keys_create(g_keys, &g_who, "t5", NULL, NULL));
    T_OK(cf_kms_keys_encrypt(g_keys, &g_who, &b, (const uint8_t *)"doomed", 6, &w1));
    T_OK(raw_wrapped("t5", 1, blob, &blen));
    T_EQ(blen, 32 + CF_HSM_WRAP_OVERHEAD);
    /* positive control: the wrapped key is in the database files right now */
    db = read_all(g_db, &dbn);
    walb = read_all(wal, &waln);
    T_ASSERT(!g_sqlite || memmem(db, dbn, blob, blen) != NULL ||
             memmem(walb, waln, blob, blen) != NULL);
    free(db);
    free(walb);

    /* destroying the current version rotates first */
    T_OK(cf_kms_keys_destroy_version(g_keys, &g_who, "t5", 1, "crypto-shred", &cur));
    T_EQ(cur, 2);
    T_EQ(events(g_spool, "key.destroy", "t5", "success", "\"rotated_to\":2"), 1);
    T_ERR(raw_wrapped("t5", 1, blob + 0, &n), CF_E_INVAL); /* column is NULL now */
    db = read_all(g_db, &dbn);
    walb = read_all(wal, &waln);
    /* (PostgreSQL keeps dead row versions until VACUUM: kms-keys.md) */
    T_ASSERT_MSG(!g_sqlite || memmem(db, dbn, blob, blen) == NULL,
                 "wrapped key still in the database file");
    T_ASSERT_MSG(!g_sqlite || memmem(walb, waln, blob, blen) == NULL, "wrapped key still in the WAL");
    free(db);
    free(walb);

    T_ERR(cf_kms_keys_decrypt(g_keys, &g_who, &b, w1.data, w1.len, &p), CF_E_REVOKED);
    T_STREQ(detail(CF_E_REVOKED), "key version 1 of tenant t5 is destroyed");
    T_ERR(cf_kms_keys_destroy_version(g_keys, &g_who, "t5", 1, "again", NULL), CF_E_CONFLICT);
    T_ERR(cf_kms_keys_revoke_version(g_keys, &g_who, "t5", 1, "late", NULL), CF_E_CONFLICT);
    /* a revoked version can still be destroyed */
    T_OK(cf_kms_keys_rotate(g_keys, &g_who, "t5", NULL));
    T_OK(cf_kms_keys_revoke_version(g_keys, &g_who, "t5", 2, "old", NULL));
    T_OK(cf_kms_keys_destroy_version(g_keys, &g_who, "t5", 2, "shred old", &cur));
    T_EQ(cur, 3);
    T_OK(cf_kms_keys_list_versions(g_keys, &g_who, "t5", 0, vs, 8, &n));
    T_EQ(n, 3);
    T_EQ(vs[0].state, CF_KMS_KEY_DESTROYED);
    T_ASSERT(vs[0].destroyed_at > 0);
    T_EQ(vs[1].state, CF_KMS_KEY_DESTROYED);
    T_STREQ(vs[1].reason, "shred old");
    T_EQ(vs[2].state, CF_KMS_KEY_ACTIVE);
    T_ERR(cf_kms_keys_destroy_version(g_keys, &g_who, "t5", 9, "x", NULL), CF_E_NOT_FOUND);
    cf_buf_free(&w1);
    cf_buf_free(&p);
    cf_buf_free(&tk);
}

static void test_data_keys(void)
{
    cf_kms_binding b = bind("t1", "tee-a", "bucket/obj");
    cf_buf plain, wrapped, again, small, notsecret;

    cf_buf_init_secret(&plain, 64);
    cf_buf_init_secret(&again, 64);
    cf_buf_init(&wrapped, 1024);
    T_OK(cf_kms_keys_generate_data_key(g_keys, &g_who, &b, &plain, &wrapped));
    T_EQ(plain.len, 32);
    T_EQ(wrapped.len, 32 + CF_KMS_WRAPPED_OVERHEAD);
    T_EQ(wrapped_version(&wrapped), 2);
    T_ASSERT(memmem(wrapped.data, wrapped.len, plain.data, 32) == NULL);
    T_OK(cf_kms_keys_decrypt_data_key(g_keys, &g_who, &b, wrapped.data, wrapped.len, &again));
    T_EQ(again.len, 32);
    T_MEMEQ(again.data, plain.data, 32);
    T_EQ(events(g_spool, "datakey.generate", "t1", "success", "\"tee_id\":\"tee-a\""), 1);
    T_EQ(events(g_spool, "datakey.decrypt", "t1", "success", NULL), 1);

    /* wrapped only: no plaintext anywhere in the result */
    cf_buf_reset(&wrapped);
    T_OK(cf_kms_keys_generate_data_key(g_keys, &g_who, &b, NULL, &wrapped));
    T_EQ(wrapped.len, 32 + CF_KMS_WRAPPED_OVERHEAD);
    T_EQ(events(g_spool, "datakey.generate_wrapped", "t1", "success", NULL), 1);
    cf_buf_reset(&again);
    T_OK(cf_kms_keys_decrypt_data_key(g_keys, &g_who, &b, wrapped.data, wrapped.len, &again));
    T_EQ(again.len, 32);
    T_ASSERT(memcmp(again.data, plain.data, 32) != 0);
    cf_buf_reset(&again);
    wrapped.data[20] ^= 1;
    T_ERR(cf_kms_keys_decrypt_data_key(g_keys, &g_who, &b, wrapped.data, wrapped.len, &again),
          CF_E_DECRYPT);
    T_EQ(again.len, 0);
    /* a wrapped value of another size is not a data key */
    cf_buf_reset(&wrapped);
    T_OK(cf_kms_keys_encrypt(g_keys, &g_who, &b, (const uint8_t *)"short", 5, &wrapped));
    T_ERR(cf_kms_keys_decrypt_data_key(g_keys, &g_who, &b, wrapped.data, wrapped.len, &again),
          CF_E_PARSE);
    /* the plaintext output must be secret and big enough; on refusal nothing is written */
    cf_buf_init(&notsecret, 64);
    cf_buf_init_secret(&small, 16);
    cf_buf_reset(&wrapped);
    T_ERR(cf_kms_keys_generate_data_key(g_keys, &g_who, &b, &notsecret, &wrapped), CF_E_INVAL);
    T_ERR(cf_kms_keys_generate_data_key(g_keys, &g_who, &b, &small, &wrapped), CF_E_INVAL);
    T_EQ(wrapped.len, 0);
    T_EQ(notsecret.len, 0);
    cf_buf_free(&notsecret);
    cf_buf_free(&small);
    cf_buf_free(&plain);
    cf_buf_free(&again);
    cf_buf_free(&wrapped);
}

static void test_tee_revocation(void)
{
    cf_kms_binding a = bind("t1", "tee-a", NULL), bb = bind("t1", "tee-b", NULL);
    cf_kms_binding none = bind("t1", NULL, NULL);
    cf_store *s = NULL;
    cf_buf w, p;

    cf_buf_init(&w, 1024);
    cf_buf_init_secret(&p, 1024);
    T_OK(cf_kms_keys_encrypt(g_keys, &g_who, &a, (const uint8_t *)"for a", 5, &w));
    /* the TEE is part of the binding */
    T_ERR(cf_kms_keys_decrypt(g_keys, &g_who, &bb, w.data, w.len, &p), CF_E_DECRYPT);
    T_ERR(cf_kms_keys_decrypt(g_keys, &g_who, &none, w.data, w.len, &p), CF_E_DECRYPT);
    T_OK(cf_kms_keys_decrypt(g_keys, &g_who, &a, w.data, w.len, &p));
    cf_buf_reset(&p);
    T_OK(cf_kms_keys_check_tee(g_keys, "tee-a"));

    T_OK(cf_kms_keys_revoke_tee(g_keys, &g_who, "tee-a", "quarantined: measurement changed"));
    T_EQ(events(g_spool, "tee.revoke", NULL, "success", "\"resource\":\"tee/tee-a\""), 1);
    T_EQ(events(g_spool, "tee.revoke", NULL, "success", "\"already_revoked\":false"), 1);
    T_ERR(cf_kms_keys_decrypt(g_keys, &g_who, &a, w.data, w.len, &p), CF_E_REVOKED);
    T_STREQ(detail(CF_E_REVOKED), "TEE tee-a is revoked");
    T_EQ(p.len, 0);
    T_ERR(cf_kms_keys_encrypt(g_keys, &g_who, &a, (const uint8_t *)"x", 1, &w), CF_E_REVOKED);
    T_ERR(cf_kms_keys_generate_data_key(g_keys, &g_who, &a, NULL, &w), CF_E_REVOKED);
    T_ERR(cf_kms_keys_check_tee(g_keys, "tee-a"), CF_E_REVOKED);
    T_OK(cf_kms_keys_check_tee(g_keys, "tee-b"));
    T_ERR(cf_kms_keys_check_tee(g_keys, "bad/id"), CF_E_INVAL);
    /* the same check inside a caller's own transaction (one-time-key release) */
    T_OK(cf_store_open(g_dsn, &s));
    T_OK(cf_store_begin(s));
    T_ERR(cf_kms_tee_check_tx(s, "tee-a"), CF_E_REVOKED);
    T_OK(cf_kms_tee_check_tx(s, "tee-b"));
    T_OK(cf_store_commit(s));
    cf_store_close(s);
    /* other TEEs and unbound values are unaffected */
    T_OK(cf_kms_keys_encrypt(g_keys, &g_who, &bb, (const uint8_t *)"x", 1, &w));
    /* idempotent */
    T_OK(cf_kms_keys_revoke_tee(g_keys, &g_who, "tee-a", "again"));
    T_EQ(events(g_spool, "tee.revoke", NULL, "success", "\"already_revoked\":true"), 1);
    T_ERR(cf_kms_keys_revoke_tee(g_keys, &g_who, "tee-c", NULL), CF_E_INVAL);
    T_ERR(cf_kms_keys_revoke_tee(g_keys, &g_who, NULL, "x"), CF_E_INVAL);
    cf_buf_free(&w);
    cf_buf_free(&p);
}

static void test_seal_internal(void)
{
    cf_kms_binding b = bind("t1", "tee-b", "otk:1");
    size_t evs = cf_spool_pending_count(g_spool);
    cf_buf s, p;

    cf_buf_init(&s, 1024);
    cf_buf_init_secret(&p, 1024);
    T_OK(cf_kms_keys_seal(g_keys, &b, (const uint8_t *)"otk-bytes", 9, &s));
    T_OK(cf_kms_keys_unseal(g_keys, &b, s.data, s.len, &p));
    T_EQ(p.len, 9);
    T_MEMEQ(p.data, "otk-bytes", 9);
    T_EQ(cf_spool_pending_count(g_spool), evs); /* no audit events of their own */
    /* a sealed value does not open as a public wrapped value, nor the reverse */
    cf_buf_reset(&p);
    T_ERR(cf_kms_keys_decrypt(g_keys, &g_who, &b, s.data, s.len, &p), CF_E_DECRYPT);
    cf_buf_reset(&s);
    T_OK(cf_kms_keys_encrypt(g_keys, &g_who, &b, (const uint8_t *)"value", 5, &s));
    T_ERR(cf_kms_keys_unseal(g_keys, &b, s.data, s.len, &p), CF_E_DECRYPT);
    T_EQ(p.len, 0);
    cf_buf_free(&s);
    cf_buf_free(&p);
}

/* A wrapped key moved to another row (version or tenant) does not unwrap: the
 * HSM AAD binds it to its place. */
static void test_store_tamper(void)
{
    cf_kms_keys *k2 = NULL;
    cf_kms_keys_opts ko = {.clock = test_clock};
    cf_kms_binding b = bind("t3", NULL, NULL);
    uint8_t blob3[64];
    size_t n3 = 0;
    cf_buf w, p;

    cf_buf_init(&w, 1024);
    cf_buf_init_secret(&p, 1024);
    T_OK(cf_kms_keys_encrypt(g_keys, &g_who, &b, (const uint8_t *)"x", 1, &w)); /* t3 v3 */
    T_EQ(wrapped_version(&w), 3);
    /* copy t1's v2 wrapped key over t3's v3; a fresh object has an empty cache */
    T_OK(raw_wrapped("t1", 2, blob3, &n3));
    T_OK(raw_exec("UPDATE kms_key_version SET wrapped = ? WHERE tenant = 't3' AND version = 3",
                  CF_STORE_ARGS(cf_sv_blob(blob3, n3))));
    T_OK(cf_kms_keys_open(g_hsm, g_dsn, g_spool, &ko, &k2));
    T_ERR(cf_kms_keys_decrypt(k2, &g_who, &b, w.data, w.len, &p), CF_E_STORE);
    T_STREQ(detail(CF_E_STORE), "stored key version 3 of tenant t3 does not unwrap under the HSM "
                                "master key (store modified, or another HSM)");
    T_EQ(p.len, 0);
    cf_kms_keys_close(k2);
    cf_buf_free(&w);
    cf_buf_free(&p);
}

static void test_cache_bound(void)
{
    cf_kms_keys *k2 = NULL;
    cf_kms_keys_opts ko = {.cache_capacity = 2, .clock = test_clock};
    cf_kms_keys_stats st;
    const char *ts[] = {"c1", "c2", "c3", "c4"};
    cf_buf w[4], p;

    T_OK(cf_kms_keys_open(g_hsm, g_dsn, g_spool, &ko, &k2));
    cf_kms_keys_get_stats(k2, &st);
    T_EQ(st.capacity, 2);
    T_EQ(st.cached, 0);
    cf_buf_init_secret(&p, 1024);
    for (int i = 0; i < 4; i++) {
        cf_kms_binding b = bind(ts[i], NULL, NULL);
        cf_buf_init(&w[i], 1024);
        T_OK(cf_kms_keys_create(k2, &g_who, ts[i], NULL, NULL)); /* caches the new key */
        T_OK(cf_kms_keys_encrypt(k2, &g_who, &b, (const uint8_t *)"v", 1, &w[i]));
    }
    cf_kms_keys_get_stats(k2, &st);
    T_EQ(st.cached, 2);
    T_EQ(st.evictions, 2);
    T_EQ(st.hits, 4);   /* each encrypt found its just-created key */
    T_EQ(st.unwraps, 0);
    /* c1 was evicted: decrypting it unwraps in the HSM and evicts another */
    for (int i = 0; i < 4; i++) {
        cf_kms_binding b = bind(ts[i], NULL, NULL);
        cf_buf_reset(&p);
        T_OK(cf_kms_keys_decrypt(k2, &g_who, &b, w[i].data, w[i].len, &p));
        T_EQ(p.len, 1);
    }
    cf_kms_keys_get_stats(k2, &st);
    T_EQ(st.cached, 2);
    T_EQ(st.unwraps, 4); /* LRU of 2 cycling over 4: every access misses */
    T_EQ(st.misses, 4);
    T_EQ(st.evictions, 6);
    /* hits when the working set fits */
    cf_buf_reset(&p);
    cf_kms_binding b4 = bind("c4", NULL, NULL);
    T_OK(cf_kms_keys_decrypt(k2, &g_who, &b4, w[3].data, w[3].len, &p));
    cf_kms_keys_get_stats(k2, &st);
    T_EQ(st.hits, 5);
    /* revoking a version wipes its cache slot */
    T_OK(cf_kms_keys_rotate(k2, &g_who, "c4", NULL)); /* caches c4 v2, evicts c3 */
    T_OK(cf_kms_keys_revoke_version(k2, &g_who, "c4", 1, "test", NULL));
    cf_kms_keys_get_stats(k2, &st);
    T_EQ(st.cached, 1);
    T_OK(cf_kms_keys_revoke_tenant(k2, &g_who, "c4", "test"));
    cf_kms_keys_get_stats(k2, &st);
    T_EQ(st.cached, 0);
    for (int i = 0; i < 4; i++)
        cf_buf_free(&w[i]);
    cf_buf_free(&p);
    cf_kms_keys_close(k2);
}

static void test_policy_rotation(void)
{
    cf_kms_policy pol = {.set_rotate_every = true, .rotate_every = 3600};
    cf_kms_tenant_info info;
    size_t n = 0;
    int64_t t0 = g_now;

    T_OK(cf_kms_keys_create(g_keys, &g_who, "p1", &pol, &info));
    T_EQ(info.next_rotation_at, t0 + 3600);
    T_OK(cf_kms_keys_rotate_due(g_keys, t0 + 3599, &n));
    T_EQ(n, 0);
    T_OK(cf_kms_keys_describe(g_keys, &g_who, "p1", &info));
    T_EQ(info.current_version, 1);
    T_OK(cf_kms_keys_rotate_due(g_keys, t0 + 3600, &n));
    T_EQ(n, 1);
    T_OK(cf_kms_keys_describe(g_keys, &g_who, "p1", &info));
    T_EQ(info.current_version, 2);
    T_EQ(info.next_rotation_at, t0 + 7200);
    T_EQ(events(g_spool, "key.rotate", "p1", "success", "\"trigger\":\"policy\""), 1);
    T_EQ(events(g_spool, "key.rotate", "p1", "success", "\"actor\":\"kms\""), 1);
    /* called again for the same instant: nothing more to do */
    T_OK(cf_kms_keys_rotate_due(g_keys, t0 + 3600, &n));
    T_EQ(n, 0);
    T_OK(cf_kms_keys_describe(g_keys, &g_who, "p1", &info));
    T_EQ(info.current_version, 2);
    T_ERR(cf_kms_keys_rotate_due(g_keys, 0, &n), CF_E_INVAL);

    /* a policy set on an old key makes it due at once (counted from its creation) */
    T_OK(cf_kms_keys_create(g_keys, &g_who, "p2", NULL, &info));
    T_EQ(info.next_rotation_at, 0);
    g_now += 10000;
    T_OK(cf_kms_keys_set_policy(g_keys, &g_who, "p2", &pol, &info));
    T_EQ(info.next_rotation_at, g_now - 10000 + 3600);
    /* turning it off: never due */
    cf_kms_policy off = {.set_rotate_every = true, .rotate_every = 0};
    T_OK(cf_kms_keys_create(g_keys, &g_who, "p3", &pol, NULL));
    T_OK(cf_kms_keys_set_policy(g_keys, &g_who, "p3", &off, &info));
    T_EQ(info.next_rotation_at, 0);
    T_OK(cf_kms_keys_rotate_due(g_keys, g_now, &n));
    T_EQ(n, 2); /* p1 (due at t0+7200) and p2 */
    T_OK(cf_kms_keys_describe(g_keys, &g_who, "p2", &info));
    T_EQ(info.current_version, 2);
    T_EQ(info.next_rotation_at, g_now + 3600);
    T_OK(cf_kms_keys_describe(g_keys, &g_who, "p3", &info));
    T_EQ(info.current_version, 1);
    pol.rotate_every = CF_KMS_ROTATE_MIN_S - 1;
    T_ERR(cf_kms_keys_set_policy(g_keys, &g_who, "p3", &pol, NULL), CF_E_RANGE);
    pol.rotate_every = CF_KMS_ROTATE_MAX_S + 1;
    T_ERR(cf_kms_keys_set_policy(g_keys, &g_who, "p3", &pol, NULL), CF_E_RANGE);
}

/* Several threads share one cf_kms_keys (store pool, cache, HSM session). */
typedef struct {
    int id;
    int failures;
} thr_arg;

static void *thr_main(void *arg)
{
    thr_arg *a = arg;
    cf_kms_binding b = bind("t1", NULL, "threads");
    cf_buf w, p;

    cf_buf_init(&w, 1024);
    cf_buf_init_secret(&p, 1024);
    for (int i = 0; i < 15; i++) {
        uint8_t msg[8] = {(uint8_t)a->id, (uint8_t)i, 1, 2, 3, 4, 5, 6};
        cf_buf_reset(&w);
        cf_buf_reset(&p);
        if (a->id == 0 && i % 5 == 0) {
            if (cf_kms_keys_rotate(g_keys, NULL, "t1", NULL) != 0)
                a->failures++;
        }
        if (cf_kms_keys_encrypt(g_keys, NULL, &b, msg, sizeof(msg), &w) != 0 ||
            cf_kms_keys_decrypt(g_keys, NULL, &b, w.data, w.len, &p) != 0 || p.len != sizeof(msg) ||
            memcmp(p.data, msg, sizeof(msg)) != 0)
            a->failures++;
    }
    cf_buf_free(&w);
    cf_buf_free(&p);
    return NULL;
}

static void test_threads(void)
{
    pthread_t t[4];
    thr_arg a[4];

    for (int i = 0; i < 4; i++) {
        a[i] = (thr_arg){.id = i};
        T_ASSERT(pthread_create(&t[i], NULL, thr_main, &a[i]) == 0);
    }
    for (int i = 0; i < 4; i++)
        T_ASSERT(pthread_join(t[i], NULL) == 0);
    for (int i = 0; i < 4; i++)
        T_EQ(a[i].failures, 0);
}

/* The audit spool holds events for successes and failures, and none of the key
 * material: tenant keys (unwrapped here through the HSM), data keys, plaintext. */
static void test_audit_no_key_material(void)
{
    cf_kms_binding b = bind("t1", NULL, NULL);
    char path[192];
    size_t n, dbn;
    uint8_t *log, *db;
    cf_buf tk, dk, w;

    T_ASSERT(events(g_spool, "key.create", NULL, "success", NULL) >= 5);
    T_ASSERT(events(g_spool, "key.create", NULL, "failure", NULL) >= 3);
    T_ASSERT(events(g_spool, "key.rotate", NULL, "success", NULL) >= 5);
    T_ASSERT(events(g_spool, "key.revoke", NULL, "success", NULL) >= 2);
    T_ASSERT(events(g_spool, "key.destroy", NULL, "success", NULL) >= 2);
    T_ASSERT(events(g_spool, "data.decrypt", NULL, "failure", NULL) >= 5);

    cf_buf_init_secret(&dk, 64);
    cf_buf_init(&w, 1024);
    T_OK(cf_kms_keys_generate_data_key(g_keys, &g_who, &b, &dk, &w));
    T_OK(cf_fmt(path, sizeof(path), "%s/events.log", g_spooldir));
    log = t_read_file(path, &n);
    db = read_all(g_db, &dbn);
    T_ASSERT(!leaks(log, n, dk.data, dk.len));
    T_ASSERT(memmem(log, n, "the quick brown fox", 19) == NULL);
    for (uint32_t v = 1; v <= 2; v++) {
        cf_buf_init_secret(&tk, 64);
        T_OK(raw_tenant_key("t1", v, &tk));
        T_EQ(tk.len, 32);
        T_ASSERT_MSG(!leaks(log, n, tk.data, tk.len), "tenant key v%u in the audit spool", v);
        T_ASSERT_MSG(!g_sqlite || !leaks(db, dbn, tk.data, tk.len),
                     "tenant key v%u in clear in the store", v);
        /* control: the scanner does find a key that is there */
        T_ASSERT(leaks(tk.data, tk.len, tk.data, tk.len));
        cf_buf_free(&tk);
    }
    free(log);
    free(db);
    cf_buf_free(&dk);
    cf_buf_free(&w);
}

/* Fail closed: with the audit spool unable to grow, mutations are refused and
 * not committed, and no plaintext or wrapped output is handed out. */
static void test_audit_fail_closed(void)
{
    char dir2[160], path[192];
    cf_spool *sp2 = NULL;
    cf_kms_keys *k2 = NULL;
    cf_kms_keys_opts ko = {.clock = test_clock};
    cf_kms_binding b = bind("t1", NULL, NULL);
    cf_kms_tenant_info before, after;
    struct rlimit old, lim;
    struct stat st, dbst;
    cf_buf w, w2, p;
    char *filler;
    json_t *ev;
    uint32_t v = 0;

    T_OK(cf_fmt(dir2, sizeof(dir2), "%s/spool2", g_sub));
    T_OK(cf_spool_open(dir2, &sp2));
    T_OK(cf_kms_keys_open(g_hsm, g_dsn, sp2, &ko, &k2));
    cf_buf_init(&w, 1024);
    cf_buf_init(&w2, 1024);
    cf_buf_init_secret(&p, 1024);
    T_OK(cf_kms_keys_encrypt(k2, &g_who, &b, (const uint8_t *)"value", 5, &w));
    /* Make the second spool the largest file this process writes, then cap
     * the file size at its current length: its next append fails (EFBIG),
     * while the store (smaller files) keeps working. */
    filler = malloc(60000);
    T_ASSERT(filler != NULL);
    memset(filler, 'f', 59999);
    filler[59999] = '\0';
    if (!g_sqlite || stat(g_db, &dbst) != 0)
        dbst.st_size = 0;
    T_OK(cf_fmt(path, sizeof(path), "%s/events.log", dir2));
    for (;;) {
        T_ASSERT(stat(path, &st) == 0);
        if (st.st_size > dbst.st_size + (4 << 20))
            break;
        ev = json_pack("{s:s,s:s}", "action", "filler", "pad", filler);
        T_ASSERT(ev != NULL);
        T_OK(cf_spool_append(sp2, ev, NULL));
        json_decref(ev);
    }
    free(filler);
    T_OK(cf_kms_keys_describe(g_keys, &g_who, "t1", &before));
    T_ASSERT(getrlimit(RLIMIT_FSIZE, &old) == 0);
    signal(SIGXFSZ, SIG_IGN);
    lim = old;
    lim.rlim_cur = (rlim_t)st.st_size;
    T_ASSERT(setrlimit(RLIMIT_FSIZE, &lim) == 0);

    int rc_rot = cf_kms_keys_rotate(k2, &g_who, "t1", &v);
    int rc_create = cf_kms_keys_create(k2, &g_who, "never", NULL, NULL);
    int rc_enc = cf_kms_keys_encrypt(k2, &g_who, &b, (const uint8_t *)"x", 1, &w2);
    int rc_dec = cf_kms_keys_decrypt(k2, &g_who, &b, w.data, w.len, &p);
    int rc_rev = cf_kms_keys_revoke_tee(k2, &g_who, "tee-never", "x");

    bool said = strstr(detail(CF_E_IO), "audit spool not writable") != NULL;

    T_ASSERT(setrlimit(RLIMIT_FSIZE, &old) == 0);
    signal(SIGXFSZ, SIG_DFL);
    T_ASSERT(said);
    T_ERR(rc_rot, CF_E_IO);
    T_ERR(rc_create, CF_E_IO);
    T_ERR(rc_enc, CF_E_IO);
    T_ERR(rc_dec, CF_E_IO);
    T_ERR(rc_rev, CF_E_IO);
    T_EQ(v, 0);
    T_EQ(w2.len, 0);
    T_EQ(p.len, 0);
    /* nothing was committed */
    T_OK(cf_kms_keys_describe(g_keys, &g_who, "t1", &after));
    T_EQ(after.current_version, before.current_version);
    T_ERR(cf_kms_keys_describe(g_keys, &g_who, "never", &after), CF_E_NOT_FOUND);
    T_OK(cf_kms_keys_check_tee(g_keys, "tee-never"));
    cf_kms_keys_close(k2);
    cf_spool_close(sp2);
    cf_buf_free(&w);
    cf_buf_free(&w2);
    cf_buf_free(&p);
}

/* Audit ordering: the success event is appended before the commit; when the
 * commit itself fails, a failure event naming it ("corrects") follows, and
 * nothing is committed. A deferred foreign key that a test trigger violates
 * makes SQLite refuse exactly the COMMIT. */
static void test_commit_failure_corrected(void)
{
    cf_kms_tenant_info info;
    char id[CF_SPOOL_EVENT_ID_LEN + 1], needle[64];

    T_OK(cf_kms_keys_create(g_keys, &g_who, "cf1", NULL, NULL));
    T_OK(raw_exec("CREATE TABLE test_parent (id TEXT PRIMARY KEY)", NULL, 0));
    T_OK(raw_exec("CREATE TABLE test_child (pid TEXT REFERENCES test_parent (id)"
                  " DEFERRABLE INITIALLY DEFERRED)", NULL, 0));
    T_OK(raw_exec("CREATE TRIGGER test_fail_commit AFTER UPDATE ON kms_tenant"
                  " WHEN NEW.tenant = 'cf1' BEGIN INSERT INTO test_child VALUES ('missing'); END",
                  NULL, 0));
    T_ERR(cf_kms_keys_rotate(g_keys, &g_who, "cf1", NULL), CF_E_CONFLICT);
    T_OK(cf_kms_keys_describe(g_keys, &g_who, "cf1", &info));
    T_EQ(info.current_version, 1);
    T_EQ(events_id(g_spool, "key.rotate", "cf1", "success", NULL, id), 1);
    T_EQ(strlen(id), CF_SPOOL_EVENT_ID_LEN);
    T_OK(cf_fmt(needle, sizeof(needle), "\"corrects\":\"%s\"", id));
    T_EQ(events(g_spool, "key.rotate", "cf1", "failure", needle), 1);
    T_OK(raw_exec("DROP TRIGGER test_fail_commit", NULL, 0));
    T_OK(cf_kms_keys_rotate(g_keys, &g_who, "cf1", NULL));
    T_OK(cf_kms_keys_describe(g_keys, &g_who, "cf1", &info));
    T_EQ(info.current_version, 2);
}

/* ---- processes ------------------------------------------------------------- */

/* No atexit handlers or stdio flushes of the parent's buffers in a child. */
static void child_exit(int code)
{
    _exit(code);
}

/* Two KMS processes run the rotation task for the same instant at the same
 * time: every due tenant gets exactly one new version. */
static void test_rotate_due_two_processes(void)
{
    enum { NT = 12 };
    cf_kms_policy pol = {.set_rotate_every = true, .rotate_every = 600};
    cf_kms_version_info vs[8];
    int ready[2][2], go[2][2], res[2][2];
    pid_t pid[2];
    size_t total = 0, n = 0;
    char name[32];
    int64_t when;

    for (int i = 0; i < NT; i++) {
        T_OK(cf_fmt(name, sizeof(name), "r%02d", i));
        T_OK(cf_kms_keys_create(g_keys, &g_who, name, &pol, NULL));
    }
    when = g_now + 600;
    close_all();
    for (int c = 0; c < 2; c++) {
        T_ASSERT(pipe(ready[c]) == 0 && pipe(go[c]) == 0 && pipe(res[c]) == 0);
        pid[c] = fork();
        T_ASSERT(pid[c] >= 0);
        if (pid[c] == 0) {
            cf_hsm *h = NULL;
            cf_spool *sp = NULL;
            cf_kms_keys *k = NULL;
            char dir[160], byte = 0;
            size_t rot = 0;
            uint32_t out;
            if (cf_fmt(dir, sizeof(dir), "%s/spool-rot%d", g_sub, c) != 0 ||
                open_keys(dir, 0, &h, &sp, &k) != 0)
                child_exit(2);
            if (write(ready[c][1], "r", 1) != 1 || read(go[c][0], &byte, 1) != 1)
                child_exit(3);
            if (cf_kms_keys_rotate_due(k, when, &rot) != 0)
                child_exit(4);
            out = (uint32_t)rot;
            if (write(res[c][1], &out, sizeof(out)) != (ssize_t)sizeof(out))
                child_exit(5);
            cf_kms_keys_close(k);
            cf_spool_close(sp);
            cf_hsm_close(h);
            child_exit(0);
        }
        /* open the children one after the other (each writes its SoftHSM2 config) */
        char byte;
        T_ASSERT(read(ready[c][0], &byte, 1) == 1);
    }
    T_ASSERT(write(go[0][1], "g", 1) == 1 && write(go[1][1], "g", 1) == 1);
    for (int c = 0; c < 2; c++) {
        uint32_t got = 0;
        int status = 0;
        T_ASSERT(read(res[c][0], &got, sizeof(got)) == (ssize_t)sizeof(got));
        T_ASSERT(waitpid(pid[c], &status, 0) == pid[c]);
        T_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        total += got;
        for (int j = 0; j < 2; j++) {
            close(ready[c][j]);
            close(go[c][j]);
            close(res[c][j]);
        }
    }
    T_OK(open_all());
    T_EQ(total, NT);
    for (int i = 0; i < NT; i++) {
        T_OK(cf_fmt(name, sizeof(name), "r%02d", i));
        T_OK(cf_kms_keys_list_versions(g_keys, &g_who, name, 0, vs, 8, &n));
        T_EQ(n, 2);
    }
}

/* kill -9 while a KMS process creates and rotates keys: every operation it
 * acknowledged is there after a restart, and its key works. */
static void test_kill9_keeps_committed_keys(void)
{
    typedef struct {
        char tenant[16];
        uint32_t version;
    } ack;
    ack acks[4096];
    size_t nacks = 0;
    int fds[2], status = 0;
    pid_t pid;
    ssize_t r;

    close_all();
    T_ASSERT(pipe(fds) == 0);
    pid = fork();
    T_ASSERT(pid >= 0);
    if (pid == 0) {
        cf_hsm *h = NULL;
        cf_spool *sp = NULL;
        cf_kms_keys *k = NULL;
        char dir[160];
        close(fds[0]);
        if (cf_fmt(dir, sizeof(dir), "%s/spool-k9", g_sub) != 0 || open_keys(dir, 0, &h, &sp, &k) != 0)
            child_exit(2);
        for (int i = 0; i < 4000; i++) {
            ack a;
            memset(&a, 0, sizeof(a));
            if (cf_fmt(a.tenant, sizeof(a.tenant), "k9-%d", i / 3) != 0)
                child_exit(3);
            if (i % 3 == 0) {
                if (cf_kms_keys_create(k, NULL, a.tenant, NULL, NULL) != 0)
                    child_exit(4);
                a.version = 1;
            } else if (cf_kms_keys_rotate(k, NULL, a.tenant, &a.version) != 0) {
                child_exit(5);
            }
            if (write(fds[1], &a, sizeof(a)) != (ssize_t)sizeof(a))
                child_exit(6);
        }
        child_exit(0);
    }
    close(fds[1]);
    /* let it acknowledge some operations, then kill it mid-flight */
    while (nacks < 12 && (r = read(fds[0], &acks[nacks], sizeof(ack))) == (ssize_t)sizeof(ack))
        nacks++;
    T_ASSERT(kill(pid, SIGKILL) == 0);
    T_ASSERT(waitpid(pid, &status, 0) == pid);
    T_ASSERT(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    while (nacks < 4096 && (r = read(fds[0], &acks[nacks], sizeof(ack))) == (ssize_t)sizeof(ack))
        nacks++;
    close(fds[0]);
    T_ASSERT(nacks >= 12);

    /* every acknowledged operation has its event in the killed process's spool */
    {
        cf_spool *sp = NULL;
        char dir[160];
        T_OK(cf_fmt(dir, sizeof(dir), "%s/spool-k9", g_sub));
        T_OK(cf_spool_open(dir, &sp));
        size_t got = events(sp, "key.create", NULL, "success", "\"tenant\":\"k9-") +
                     events(sp, "key.rotate", NULL, "success", "\"tenant\":\"k9-");
        cf_spool_close(sp);
        T_ASSERT_MSG(got >= nacks, "%zu events for %zu acknowledged operations", got, nacks);
    }
    T_OK(open_all());
    for (size_t i = 0; i < nacks; i++) {
        cf_kms_tenant_info info;
        cf_kms_version_info vs[1];
        cf_kms_binding b = bind(acks[i].tenant, NULL, NULL);
        cf_buf w, p;
        size_t n = 0;

        T_OK(cf_kms_keys_describe(g_keys, &g_who, acks[i].tenant, &info));
        T_ASSERT(info.current_version >= acks[i].version);
        T_OK(cf_kms_keys_list_versions(g_keys, &g_who, acks[i].tenant, acks[i].version - 1, vs, 1, &n));
        T_EQ(n, 1);
        T_EQ(vs[0].version, acks[i].version);
        T_EQ(vs[0].state, CF_KMS_KEY_ACTIVE);
        cf_buf_init(&w, 256);
        cf_buf_init_secret(&p, 256);
        T_OK(cf_kms_keys_encrypt(g_keys, &g_who, &b, (const uint8_t *)"alive", 5, &w));
        T_OK(cf_kms_keys_decrypt(g_keys, &g_who, &b, w.data, w.len, &p));
        T_EQ(p.len, 5);
        cf_buf_free(&w);
        cf_buf_free(&p);
    }
}

/* Close everything, reopen HSM + spool + store: old values still decrypt. */
static void test_restart(void)
{
    cf_kms_binding b = bind("t1", NULL, "object-42");
    cf_kms_keys_stats st;
    cf_buf p;

    close_all();
    T_OK(open_all());
    cf_kms_keys_get_stats(g_keys, &st);
    T_EQ(st.cached, 0);
    cf_buf_init_secret(&p, 256);
    T_OK(cf_kms_keys_decrypt(g_keys, &g_who, &b, g_v1_val, g_v1_len, &p));
    T_EQ(p.len, 19);
    T_MEMEQ(p.data, "the quick brown fox", 19);
    cf_kms_keys_get_stats(g_keys, &st);
    T_EQ(st.unwraps, 1);
    cf_buf_free(&p);
}

/* PostgreSQL: the suite runs in a schema of its own inside the database that
 * COFFER_KMS_TEST_PG_DSN names (a libpq URI; e.g. a throwaway server as in
 * tests/store). */
static char g_pg_schema[64];

static int pg_prepare(const char *base)
{
    cf_store *s = NULL;
    char sql[128];
    int rc;

    CF_GUARD(cf_fmt(g_pg_schema, sizeof(g_pg_schema), "kms_test_%ld", (long)getpid()));
    CF_GUARD(cf_fmt(sql, sizeof(sql), "CREATE SCHEMA %s", g_pg_schema));
    CF_GUARD(cf_store_open(base, &s));
    rc = cf_store_exec(s, sql, NULL, 0, NULL);
    cf_store_close(s);
    CF_GUARD(rc);
    return cf_fmt(g_dsn, sizeof(g_dsn), "%s%soptions=-csearch_path%%3D%s", base,
                  strchr(base, '?') != NULL ? "&" : "?", g_pg_schema);
}

static void pg_cleanup(const char *base)
{
    cf_store *s = NULL;
    char sql[128];

    if (cf_fmt(sql, sizeof(sql), "DROP SCHEMA %s CASCADE", g_pg_schema) == 0 &&
        cf_store_open(base, &s) == 0) {
        if (cf_store_exec(s, sql, NULL, 0, NULL) != 0)
            fprintf(stderr, "cannot drop schema %s\n", g_pg_schema);
        cf_store_close(s);
    }
}

static void run_suite(const char *name)
{
    fprintf(stderr, "# backend: %s\n", name);
    if (open_all() != 0) {
        fprintf(stderr, "cannot open HSM/spool/store: %s\n", cf_err_detail(CF_E_HSM));
        t_failed++;
        return;
    }
    T_RUN(test_open_refusals);
    T_RUN(test_create_describe);
    T_RUN(test_encrypt_decrypt);
    T_RUN(test_rotate_rewrap);
    T_RUN(test_min_decryption_version);
    T_RUN(test_revoke_version);
    T_RUN(test_revoke_tenant);
    T_RUN(test_destroy);
    T_RUN(test_data_keys);
    T_RUN(test_tee_revocation);
    T_RUN(test_seal_internal);
    T_RUN(test_cache_bound);
    T_RUN(test_policy_rotation);
    T_RUN(test_threads);
    T_RUN(test_audit_no_key_material);
    T_RUN(test_audit_fail_closed);
    T_RUN(test_store_tamper);
    if (g_sqlite)
        T_RUN(test_commit_failure_corrected); /* SQLite trigger syntax */
    T_RUN(test_restart);
    T_RUN(test_rotate_due_two_processes);
    T_RUN(test_kill9_keeps_committed_keys);
    close_all();
}

static int set_sub(const char *name)
{
    CF_GUARD(cf_fmt(g_sub, sizeof(g_sub), "%s/%s", g_dir, name));
    if (mkdir(g_sub, 0700) != 0)
        return CF_E_IO;
    CF_GUARD(cf_fmt(g_spooldir, sizeof(g_spooldir), "%s/spool", g_sub));
    return cf_fmt(g_db, sizeof(g_db), "%s/kms.db", g_sub);
}

int main(void)
{
    const char *pg = getenv("COFFER_KMS_TEST_PG_DSN");

    if (cf_fmt(g_dir, sizeof(g_dir), "/tmp/coffer-kms-XXXXXX") != 0 || mkdtemp(g_dir) == NULL ||
        cf_fmt(g_hsmdir, sizeof(g_hsmdir), "%s/hsm", g_dir) != 0)
        return 1;
    T_RUN(test_aead_vectors);
    T_RUN(test_aead_seal_open);
    T_RUN(test_wrapped_format);

    if (set_sub("sqlite") != 0 || cf_fmt(g_dsn, sizeof(g_dsn), "sqlite:%s", g_db) != 0)
        return 1;
    g_sqlite = true;
    run_suite("sqlite");

    if (pg != NULL && pg[0] != '\0') {
        g_sqlite = false;
        if (set_sub("pg") != 0 || pg_prepare(pg) != 0) {
            fprintf(stderr, "cannot prepare PostgreSQL schema: %s\n", cf_err_detail(CF_E_STORE));
            t_failed++;
        } else {
            run_suite("postgres");
            pg_cleanup(pg);
        }
    } else {
        fprintf(stderr, "SKIP: PostgreSQL half (set COFFER_KMS_TEST_PG_DSN to a libpq URI)\n");
    }
    nftw(g_dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
    return t_done();
}
