#include "attestsvc/history.h"

#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/err.h"
#include "base/json.h"
#include "base/parse.h"
#include "crypto/hash.h"

static const cf_store_migration migrations[] = {
    {1, "attestation history and EAR signing keys",
     "CREATE TABLE attest_history ("
     " id TEXT PRIMARY KEY,"
     " at BIGINT NOT NULL,"
     " kind TEXT NOT NULL CHECK (kind IN ('verify', 'reattest')),"
     " tee_id TEXT NOT NULL,"
     " deployment TEXT NOT NULL,"
     " tenant TEXT NOT NULL,"
     " status TEXT NOT NULL CHECK (status IN ('verified', 'failed', 'unreachable')),"
     " ear_status TEXT NOT NULL,"
     " measurement TEXT NOT NULL,"
     " build_hash TEXT NOT NULL,"
     " manifest_hash TEXT NOT NULL,"
     " reason TEXT NOT NULL,"
     " kms TEXT NOT NULL,"
     " failures TEXT NOT NULL);"
     "CREATE INDEX attest_history_deployment ON attest_history (deployment, id);"
     "CREATE INDEX attest_history_tee ON attest_history (tee_id, id);"
     "CREATE INDEX attest_history_at ON attest_history (at);"
     "CREATE TABLE attest_signing_key ("
     " kid TEXT PRIMARY KEY,"
     " public_key BLOB NOT NULL,"
     " wrapped BLOB NOT NULL,"
     " created_at BIGINT NOT NULL,"
     " state TEXT NOT NULL CHECK (state IN ('active', 'retired')));"
     /* At most one active key, also with several replicas creating at once. */
     "CREATE UNIQUE INDEX attest_signing_key_active ON attest_signing_key (state)"
     " WHERE state = 'active';",
     NULL},
};

int cf_attest_store_migrate(cf_store *s)
{
    return cf_store_migrate(s, CF_ATTEST_STORE_SCOPE, migrations, CF_ARRAY_LEN(migrations));
}

int cf_attest_history_new_id(int64_t now_us, char ret[CF_ATTESTSVC_ID_LEN + 1])
{
    uint8_t raw[16];

    CF_ENSURE(now_us >= 0, CF_E_INVAL);
    for (int i = 0; i < 8; i++)
        raw[i] = (uint8_t)((uint64_t)now_us >> (56 - 8 * i));
    CF_GUARD(cf_random(raw + 8, 8));
    cf_hex_encode(raw, sizeof(raw), ret);
    return 0;
}

bool cf_attest_history_id_valid(const char *s)
{
    if (s == NULL || strnlen(s, CF_ATTESTSVC_ID_LEN + 1) != CF_ATTESTSVC_ID_LEN)
        return false;
    for (size_t i = 0; i < CF_ATTESTSVC_ID_LEN; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

int cf_attest_history_add(cf_store *s, const cf_attest_record *r)
{
    const char *f = r->failures_json ? r->failures_json : "[]";

    CF_ENSURE(cf_attest_history_id_valid(r->id), cf_err_set(CF_E_INVAL, "bad attestation id"));
    CF_ENSURE(strlen(f) <= CF_ATTESTSVC_MAX_FAILURES_JSON,
              cf_err_set(CF_E_TOO_LARGE, "failed checks of one attestation exceed %u bytes",
                         CF_ATTESTSVC_MAX_FAILURES_JSON));
    return cf_store_exec(
        s,
        "INSERT INTO attest_history (id, at, kind, tee_id, deployment, tenant, status, ear_status,"
        " measurement, build_hash, manifest_hash, reason, kms, failures)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        CF_STORE_ARGS(cf_sv_text(r->id), cf_sv_int(r->at), cf_sv_text(r->kind), cf_sv_text(r->tee_id),
                      cf_sv_text(r->deployment), cf_sv_text(r->tenant), cf_sv_text(r->status),
                      cf_sv_text(r->ear_status), cf_sv_text(r->measurement), cf_sv_text(r->build_hash),
                      cf_sv_text(r->manifest_hash), cf_sv_text(r->reason), cf_sv_text(r->kms),
                      cf_sv_text(f)),
        NULL);
}

#define NCOLS 14
static const char *const col_names[NCOLS] = {"id",          "at",         "kind",          "tee_id",
                                             "deployment",  "tenant",     "status",        "ear_status",
                                             "measurement", "build_hash", "manifest_hash", "reason",
                                             "kms",         "failures"};

static int row_to_json(cf_store_rows *rows, json_t **ret, char id[CF_ATTESTSVC_ID_LEN + 1])
{
    json_t *o = json_object();
    char *txt = NULL;
    int rc = CF_E_NOMEM;

    CF_ENSURE(o != NULL, CF_E_NOMEM);
    for (int c = 0; c < NCOLS; c++) {
        json_t *v;
        if (c == 1) {
            int64_t at;
            CF_GUARD_OUT(cf_store_col_i64(rows, c, &at));
            v = json_integer(at);
        } else {
            CF_GUARD_OUT(cf_store_col_text_dup(rows, c, CF_ATTESTSVC_MAX_FAILURES_JSON, &txt));
            if (c == 0)
                CF_GUARD_OUT(cf_fmt(id, CF_ATTESTSVC_ID_LEN + 1, "%s", txt));
            if (c == NCOLS - 1) {
                /* Written by this service; re-parsed with the same bounds. */
                if (cf_json_parse(txt, strlen(txt), CF_ATTESTSVC_MAX_FAILURES_JSON, &v) != 0)
                    v = json_null();
            } else {
                v = json_string(txt);
            }
            free(txt);
            txt = NULL;
        }
        if (v == NULL || json_object_set_new(o, col_names[c], v) != 0) {
            rc = CF_E_NOMEM;
            goto out;
        }
    }
    *ret = o;
    o = NULL;
    rc = 0;
out:
    free(txt);
    json_decref(o);
    return rc;
}

int cf_attest_history_list(cf_store *s, const cf_attest_history_query *q, json_t **ret_items,
                           char ret_next[CF_ATTESTSVC_ID_LEN + 1])
{
    cf_store_val params[5];
    size_t np = 0;
    cf_buf sql;
    cf_store_rows *rows = NULL;
    json_t *items = NULL;
    char last[CF_ATTESTSVC_ID_LEN + 1] = "";
    size_t n = 0;
    int rc;

    CF_ENSURE(q->limit >= 1 && q->limit <= CF_ATTESTSVC_HISTORY_MAX_PAGE,
              cf_err_set(CF_E_RANGE, "limit must be 1..%u", CF_ATTESTSVC_HISTORY_MAX_PAGE));
    CF_ENSURE(q->after == NULL || cf_attest_history_id_valid(q->after),
              cf_err_set(CF_E_PARSE, "'after' is not an attestation id"));
    cf_buf_init(&sql, 1024);
    items = json_array();
    CF_ENSURE_OUT(items != NULL, CF_E_NOMEM);
    CF_GUARD_OUT(cf_buf_put_str(&sql, "SELECT id, at, kind, tee_id, deployment, tenant, status, ear_status,"
                                      " measurement, build_hash, manifest_hash, reason, kms, failures"
                                      " FROM attest_history WHERE 1 = 1"));
    /* Only fixed text is appended; every value is bound. */
    if (q->deployment != NULL) {
        CF_GUARD_OUT(cf_buf_put_str(&sql, " AND deployment = ?"));
        params[np++] = cf_sv_text(q->deployment);
    }
    if (q->tee_id != NULL) {
        CF_GUARD_OUT(cf_buf_put_str(&sql, " AND tee_id = ?"));
        params[np++] = cf_sv_text(q->tee_id);
    }
    if (q->tenant != NULL) {
        CF_GUARD_OUT(cf_buf_put_str(&sql, " AND tenant = ?"));
        params[np++] = cf_sv_text(q->tenant);
    }
    if (q->after != NULL) {
        CF_GUARD_OUT(cf_buf_put_str(&sql, " AND id < ?"));
        params[np++] = cf_sv_text(q->after);
    }
    /* One more than asked, to know whether another page follows. */
    CF_GUARD_OUT(cf_buf_put_str(&sql, " ORDER BY id DESC LIMIT ?"));
    params[np++] = cf_sv_int((int64_t)q->limit + 1);
    CF_GUARD_OUT(cf_buf_nul_terminate(&sql));
    CF_GUARD_OUT(cf_store_query(s, (const char *)sql.data, params, np, &rows));
    for (;;) {
        json_t *item = NULL;
        char id[CF_ATTESTSVC_ID_LEN + 1];
        rc = cf_store_next(rows);
        if (rc <= 0)
            break;
        if (n == q->limit) {
            n++;
            break;
        }
        CF_GUARD_OUT(row_to_json(rows, &item, id));
        if (json_array_append_new(items, item) != 0) {
            rc = CF_E_NOMEM;
            goto out;
        }
        memcpy(last, id, sizeof(last));
        n++;
    }
    CF_GUARD_OUT(rc);
    if (n > q->limit)
        memcpy(ret_next, last, sizeof(last));
    else
        ret_next[0] = '\0';
    *ret_items = items;
    items = NULL;
    rc = 0;
out:
    cf_store_rows_close(rows);
    json_decref(items);
    cf_buf_free(&sql);
    return rc;
}

int cf_attest_history_prune(cf_store *s, int64_t before, int64_t *ret_deleted)
{
    int64_t n = 0;

    /* Bounded per call, so that one pass never holds the write lock for long. */
    CF_GUARD(cf_store_exec(s,
                           "DELETE FROM attest_history WHERE id IN (SELECT id FROM attest_history"
                           " WHERE at < ? ORDER BY at LIMIT ?)",
                           CF_STORE_ARGS(cf_sv_int(before), cf_sv_int(CF_ATTESTSVC_PRUNE_BATCH)), &n));
    if (ret_deleted != NULL)
        *ret_deleted = n;
    return 0;
}
