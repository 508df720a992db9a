/*
 * The attestation service's store: history records (add, newest-first paging
 * with a cursor, filters, tenant scope, pruning, bounds) and the EAR signing
 * key wrapped by a real SoftHSM2 token (created once, loaded after, refused
 * when the stored key was altered or the HSM is another one).
 */
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "attestsvc/ear.h"
#include "attestsvc/history.h"
#include "attestsvc/signer.h"
#include "base/err.h"
#include "base/json.h"
#include "hsm/hsm.h"
#include "store/store.h"
#include "test.h"

static char g_tmp[] = "/tmp/coffer-attestsvc-store-XXXXXX";
static int g_n;

static void dsn_new(char *out, size_t n)
{
    snprintf(out, n, "sqlite:%s/db%d.sqlite", g_tmp, g_n++);
}

static cf_store *open_migrated(void)
{
    char dsn[600];
    cf_store *s = NULL;

    dsn_new(dsn, sizeof(dsn));
    if (cf_store_open(dsn, &s) != 0 || cf_attest_store_migrate(s) != 0)
        abort();
    return s;
}

static void rec(cf_attest_record *r, int64_t us, const char *tee, const char *dep, const char *tenant,
                const char *status)
{
    memset(r, 0, sizeof(*r));
    if (cf_attest_history_new_id(us, r->id) != 0)
        abort();
    r->at = us / 1000000;
    snprintf(r->kind, sizeof(r->kind), "reattest");
    snprintf(r->tee_id, sizeof(r->tee_id), "%s", tee);
    snprintf(r->deployment, sizeof(r->deployment), "%s", dep);
    snprintf(r->tenant, sizeof(r->tenant), "%s", tenant);
    snprintf(r->status, sizeof(r->status), "%s", status);
    snprintf(r->ear_status, sizeof(r->ear_status), "%s", strcmp(status, "verified") == 0 ? "warning" : "contraindicated");
    snprintf(r->manifest_hash, sizeof(r->manifest_hash), "sha256:%064d", 0);
}

static void test_ids(void)
{
    char a[CF_ATTESTSVC_ID_LEN + 1], b[CF_ATTESTSVC_ID_LEN + 1];

    T_OK(cf_attest_history_new_id(1000, a));
    T_OK(cf_attest_history_new_id(1001, b));
    T_ASSERT(strcmp(a, b) < 0); /* time-ordered */
    T_ASSERT(cf_attest_history_id_valid(a));
    T_ASSERT(!cf_attest_history_id_valid("0123"));
    T_ASSERT(!cf_attest_history_id_valid("0123456789ABCDEF0123456789abcdef"));
    T_ASSERT(!cf_attest_history_id_valid("0123456789abcdef0123456789abcdef0"));
    T_ASSERT(!cf_attest_history_id_valid(NULL));
    T_ERR(cf_attest_history_new_id(-1, a), CF_E_INVAL);
}

static void test_history_paging_and_filters(void)
{
    cf_store *s = open_migrated();
    cf_attest_record r;
    cf_attest_history_query q;
    json_t *items = NULL, *first;
    char next[CF_ATTESTSVC_ID_LEN + 1], seen[CF_ATTESTSVC_ID_LEN + 1] = "", cursor[CF_ATTESTSVC_ID_LEN + 1];
    int64_t base = (int64_t)1700000000 * 1000000;
    size_t total = 0;

    for (int i = 0; i < 7; i++) {
        rec(&r, base + i, i % 2 ? "tee_b" : "tee_a", i % 2 ? "demo2" : "demo", i % 2 ? "acme" : "t1",
            i == 6 ? "failed" : "verified");
        if (i == 6)
            r.failures_json = "[{\"message\":\"measurement not in manifest\",\"name\":\"measurement\"}]";
        T_OK(cf_attest_history_add(s, &r));
    }
    T_ERR(cf_attest_history_add(s, &r), CF_E_EXISTS); /* same id */
    memset(&q, 0, sizeof(q));
    q.limit = 3;
    T_OK(cf_attest_history_list(s, &q, &items, next));
    T_EQ(json_array_size(items), 3);
    first = json_array_get(items, 0);
    /* newest first: the failed one, with its failures parsed back */
    T_STREQ(json_string_value(json_object_get(first, "status")), "failed");
    T_STREQ(json_string_value(json_object_get(json_array_get(json_object_get(first, "failures"), 0), "name")),
            "measurement");
    T_ASSERT(json_object_size(first) == 14);
    json_decref(items);
    /* walk all pages */
    q.after = NULL;
    for (int page = 0; page < 10; page++) {
        T_OK(cf_attest_history_list(s, &q, &items, next));
        for (size_t i = 0; i < json_array_size(items); i++) {
            const char *id = json_string_value(json_object_get(json_array_get(items, i), "id"));
            T_ASSERT(seen[0] == 0 || strcmp(id, seen) < 0);
            snprintf(seen, sizeof(seen), "%s", id);
            total++;
        }
        json_decref(items);
        if (next[0] == 0)
            break;
        memcpy(cursor, next, sizeof(cursor));
        q.after = cursor;
    }
    T_EQ(total, 7);
    /* filters */
    memset(&q, 0, sizeof(q));
    q.limit = 100;
    q.tee_id = "tee_b";
    T_OK(cf_attest_history_list(s, &q, &items, next));
    T_EQ(json_array_size(items), 3);
    T_STREQ(next, "");
    json_decref(items);
    q.tee_id = NULL;
    q.deployment = "demo";
    q.tenant = "acme"; /* demo belongs to t1: nothing visible to acme */
    T_OK(cf_attest_history_list(s, &q, &items, next));
    T_EQ(json_array_size(items), 0);
    json_decref(items);
    q.tenant = "t1";
    T_OK(cf_attest_history_list(s, &q, &items, next));
    T_EQ(json_array_size(items), 4);
    json_decref(items);
    /* bounds */
    q.limit = 0;
    T_ERR(cf_attest_history_list(s, &q, &items, next), CF_E_RANGE);
    q.limit = CF_ATTESTSVC_HISTORY_MAX_PAGE + 1;
    T_ERR(cf_attest_history_list(s, &q, &items, next), CF_E_RANGE);
    q.limit = 1;
    q.after = "not-an-id";
    T_ERR(cf_attest_history_list(s, &q, &items, next), CF_E_PARSE);
    cf_store_close(s);
}

static void test_history_bounds_and_prune(void)
{
    cf_store *s = open_migrated();
    cf_attest_record r;
    cf_attest_history_query q;
    json_t *items = NULL;
    char next[CF_ATTESTSVC_ID_LEN + 1], *big;
    int64_t gone = -1;

    rec(&r, (int64_t)1000 * 1000000, "tee_a", "demo", "t1", "verified");
    big = malloc(CF_ATTESTSVC_MAX_FAILURES_JSON + 2);
    T_ASSERT(big != NULL);
    memset(big, ' ', CF_ATTESTSVC_MAX_FAILURES_JSON + 1);
    big[CF_ATTESTSVC_MAX_FAILURES_JSON + 1] = 0;
    r.failures_json = big;
    T_ERR(cf_attest_history_add(s, &r), CF_E_TOO_LARGE);
    free(big);
    r.failures_json = NULL;
    snprintf(r.status, sizeof(r.status), "bogus");
    T_FAILS(cf_attest_history_add(s, &r)); /* CHECK constraint */
    snprintf(r.status, sizeof(r.status), "unreachable");
    T_OK(cf_attest_history_add(s, &r));
    rec(&r, (int64_t)5000 * 1000000, "tee_a", "demo", "t1", "verified");
    T_OK(cf_attest_history_add(s, &r));
    T_OK(cf_attest_history_prune(s, 2000, &gone));
    T_EQ(gone, 1);
    memset(&q, 0, sizeof(q));
    q.limit = 10;
    T_OK(cf_attest_history_list(s, &q, &items, next));
    T_EQ(json_array_size(items), 1);
    T_EQ(json_integer_value(json_object_get(json_array_get(items, 0), "at")), 5000);
    json_decref(items);
    T_OK(cf_attest_history_prune(s, 2000, &gone));
    T_EQ(gone, 0);
    cf_store_close(s);
}

static cf_hsm_opts hsm_opts(const char *dir)
{
    cf_hsm_opts o = {.pin = "attest-test-pin", .so_pin = "attest-test-so", .softhsm_dir = dir,
                     .token_label = "coffer-attest", .create_master = true};
    return o;
}

static void test_signer(void)
{
    char dir1[600], dir2[600], kid1[CF_KEY_THUMBPRINT_LEN + 1];
    cf_store *s = open_migrated();
    cf_hsm *hsm = NULL;
    cf_hsm_opts o;
    cf_attest_signer *sg = NULL;
    bool created = false;
    cf_store_rows *rows = NULL;
    int64_t n = 0;

    snprintf(dir1, sizeof(dir1), "%s/hsm1", g_tmp);
    snprintf(dir2, sizeof(dir2), "%s/hsm2", g_tmp);
    o = hsm_opts(dir1);
    T_OK(cf_hsm_open(&o, &hsm));
    T_OK(cf_attest_signer_open(hsm, s, 1000, &sg, &created));
    T_ASSERT(created);
    T_EQ(cf_key_get_type(cf_attest_signer_key(sg)), CF_KEY_P256);
    T_ASSERT(cf_key_has_private(cf_attest_signer_key(sg)));
    snprintf(kid1, sizeof(kid1), "%s", cf_attest_signer_kid(sg));
    T_ASSERT(strstr(cf_attest_signer_jwks_text(sg), kid1) != NULL);
    T_ASSERT(strstr(cf_attest_signer_jwks_text(sg), "\"d\"") == NULL); /* public only */
    T_EQ(cf_jwks_count(cf_attest_signer_jwks(sg)), 1);
    cf_attest_signer_free(sg);
    sg = NULL;
    /* The row holds the key wrapped, never the scalar in the clear. */
    T_OK(cf_store_query_row(s, "SELECT length(wrapped) FROM attest_signing_key", NULL, 0, &rows));
    T_OK(cf_store_col_i64(rows, 0, &n));
    cf_store_rows_close(rows);
    T_EQ(n, 32 + CF_HSM_WRAP_OVERHEAD);
    /* Second open: the same key, loaded. */
    T_OK(cf_attest_signer_open(hsm, s, 2000, &sg, &created));
    T_ASSERT(!created);
    T_STREQ(cf_attest_signer_kid(sg), kid1);
    cf_attest_signer_free(sg);
    sg = NULL;
    cf_hsm_close(hsm);
    hsm = NULL;
    /* Another HSM (another master key) cannot unwrap it: refused, not replaced. */
    o = hsm_opts(dir2);
    T_OK(cf_hsm_open(&o, &hsm));
    T_ERR(cf_attest_signer_open(hsm, s, 3000, &sg, &created), CF_E_STORE);
    T_ASSERT(sg == NULL);
    cf_hsm_close(hsm);
    hsm = NULL;
    /* An altered row (the kid does not match the wrapped key's AAD) is refused. */
    o = hsm_opts(dir1);
    T_OK(cf_hsm_open(&o, &hsm));
    T_OK(cf_store_exec(s, "UPDATE attest_signing_key SET kid = 'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA'", NULL, 0,
                       NULL));
    T_ERR(cf_attest_signer_open(hsm, s, 3000, &sg, &created), CF_E_STORE);
    cf_hsm_close(hsm);
    cf_store_close(s);
}

static int rm_cb(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    (void)remove(path);
    return 0;
}

int main(void)
{
    int rc;

    if (mkdtemp(g_tmp) == NULL)
        return 1;
    T_RUN(test_ids);
    T_RUN(test_history_paging_and_filters);
    T_RUN(test_history_bounds_and_prune);
    T_RUN(test_signer);
    rc = t_done();
    (void)nftw(g_tmp, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
    return rc;
}
