#include "attestsvc/leader.h"

#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/log.h"
#include "store/store.h"

struct cf_attest_leader {
    cf_store *pg; /* NULL for SQLite: single node */
    bool held;
};

int cf_attest_leader_new(const char *dsn, cf_attest_leader **ret)
{
    cf_attest_leader *l = calloc(1, sizeof(*l));
    cf_store *s = NULL;
    int rc;

    CF_ENSURE(l != NULL, CF_E_NOMEM);
    CF_GUARD_OUT(cf_store_open(dsn, &s));
    if (cf_store_backend(s) == CF_STORE_POSTGRES) {
        l->pg = s;
        s = NULL;
    }
    *ret = l;
    l = NULL;
    rc = 0;
out:
    cf_store_close(s);
    free(l);
    return rc;
}

void cf_attest_leader_free(cf_attest_leader *l)
{
    if (l == NULL)
        return;
    /* Closing the session releases its advisory locks. */
    cf_store_close(l->pg);
    free(l);
}

bool cf_attest_leader_single_node(const cf_attest_leader *l) { return l->pg == NULL; }

static int query_bool(cf_store *s, const char *sql, bool *ret)
{
    cf_store_rows *r = NULL;
    int64_t v = 0;
    int rc;

    CF_GUARD(cf_store_query_row(s, sql, CF_STORE_ARGS(cf_sv_int(CF_ATTEST_LEADER_LOCK_KEY)), &r));
    rc = cf_store_col_i64(r, 0, &v);
    cf_store_rows_close(r);
    CF_GUARD(rc);
    *ret = v != 0;
    return 0;
}

int cf_attest_leader_check(cf_attest_leader *l, bool *ret_leader)
{
    bool now = false;
    int rc;

    if (l->pg == NULL) {
        *ret_leader = true;
        return 0;
    }
    if (l->held) {
        /* A bigint advisory key appears in pg_locks as classid = high 32 bits,
         * objid = low 32 bits, objsubid = 1 (PostgreSQL docs, "pg_locks"). */
        rc = query_bool(l->pg,
                        "SELECT CAST(count(*) AS BIGINT) FROM pg_locks WHERE locktype = 'advisory'"
                        " AND pid = pg_backend_pid() AND granted AND objsubid = 1"
                        " AND CAST(classid AS BIGINT) * 4294967296 + CAST(objid AS BIGINT) = ?",
                        &now);
    } else {
        rc = query_bool(l->pg, "SELECT pg_try_advisory_lock(?)", &now);
    }
    if (rc != 0) {
        /* Leadership that cannot be confirmed is given up (fail closed). */
        if (l->held)
            cf_log(CF_LOG_WARN, "leader.lost", "reason", cf_err_detail(rc), NULL);
        l->held = false;
        return rc;
    }
    if (now != l->held)
        cf_log(now ? CF_LOG_INFO : CF_LOG_WARN, now ? "leader.acquired" : "leader.lost", NULL);
    l->held = now;
    *ret_leader = now;
    return 0;
}
