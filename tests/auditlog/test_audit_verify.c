/*
 * The verifier: tamper detection against a real SQLite store edited behind the
 * log's back with the sqlite3 C API (as an attacker with file access would:
 * dropping the append-only triggers first), and the verifier's rules on
 * synthetic input (order, forks, consistency, attribution, limits).
 */
#include "audit_testutil.h"

#include <sqlite3.h>

#include "auditlog/log.h"
#include "auditlog/verify.h"
#include "base/limits.h"
#include "merkle/merkle.h"
#include "test.h"

static cf_key *g_key, *g_pub, *g_other;

static void print_report(const cf_audit_report *r)
{
    for (size_t i = 0; i < r->n; i++)
        fprintf(stderr, "    [%s %llu..%llu] %s\n", cf_audit_finding_name(r->findings[i].kind),
                (unsigned long long)r->findings[i].first, (unsigned long long)r->findings[i].last,
                r->findings[i].message);
}

/* Number of findings of `kind` over [first, last] whose message contains text. */
static size_t count_findings(const cf_audit_report *r, cf_audit_finding_kind kind, uint64_t first,
                             uint64_t last, const char *text)
{
    size_t n = 0;
    for (size_t i = 0; i < r->n; i++) {
        const cf_audit_finding *f = &r->findings[i];
        if (f->kind == kind && f->first == first && f->last == last &&
            (text == NULL || strstr(f->message, text) != NULL))
            n++;
    }
    return n;
}

/* ---- a real log, tampered with ---------------------------------------------------- */

static char g_db[PATH_MAX];
static cf_audit_sth g_head[4]; /* the heads as published (a client may have saved them) */

/* 40 entries; tree heads 1..4 at sizes 10, 20, 32, 40. */
static int build_log(void)
{
    static const size_t batches[] = {10, 10, 12, 8};
    char dsn[PATH_MAX + 16];
    cf_store *s = NULL;
    cf_audit_log *l = NULL;
    unsigned next = 0;
    int rc = 0;

    tu_path(g_db, sizeof(g_db), "tamper.db");
    tu_fmt(dsn, sizeof(dsn), "sqlite:%s", g_db);
    if (cf_store_open(dsn, &s) != 0 || cf_audit_log_open(s, &l) != 0)
        return -1;
    for (size_t b = 0; b < 4 && rc == 0; b++) {
        cf_audit_event **evs = tu_events(40, next, batches[b]);
        rc = cf_audit_append(l, evs, batches[b], NULL);
        cf_audit_events_free(evs, batches[b]);
        next += (unsigned)batches[b];
        if (rc == 0)
            rc = cf_audit_sth_create(l, g_key, &g_head[b]);
    }
    cf_audit_log_close(l);
    cf_store_close(s);
    return rc;
}

/* The attacker: plain SQL on the database file. */
static int tamper(const char *sql)
{
    sqlite3 *db = NULL;
    char *err = NULL;
    int rc;

    rc = sqlite3_open_v2(g_db, &db, SQLITE_OPEN_READWRITE, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(db, sql, NULL, NULL, &err);
    if (rc != SQLITE_OK)
        fprintf(stderr, "tamper: %s\n", err != NULL ? err : sqlite3_errmsg(db));
    sqlite3_free(err);
    sqlite3_close(db);
    return rc == SQLITE_OK ? 0 : -1;
}

/* Verifies the log in g_db; returns the verifier's code, report in ret. */
static int verify_db(const cf_audit_sth *trusted, cf_audit_report *ret)
{
    char dsn[PATH_MAX + 16];
    cf_store *s = NULL;
    cf_audit_log *l = NULL;
    int rc;

    tu_fmt(dsn, sizeof(dsn), "sqlite:%s", g_db);
    if (cf_store_open(dsn, &s) != 0 || cf_audit_log_open(s, &l) != 0)
        abort();
    rc = cf_audit_verify_log(l, g_pub, trusted, ret);
    cf_audit_log_close(l);
    cf_store_close(s);
    return rc;
}

static void test_untouched(void)
{
    cf_audit_report r;

    T_OK(build_log());
    T_OK(verify_db(NULL, &r));
    T_EQ(r.total, 0);
    T_EQ(r.sths_checked, 4);
    T_EQ(r.entries_checked, 40);
    T_EQ(r.proofs_checked, 40 + 3);
    cf_audit_report_free(&r);
    /* with a head the client saved earlier, or the newest one */
    T_OK(verify_db(&g_head[1], &r));
    T_EQ(r.sths_checked, 5);
    cf_audit_report_free(&r);
    T_OK(verify_db(&g_head[3], &r));
    cf_audit_report_free(&r);
    /* the triggers hold against plain SQL */
    T_ASSERT(tamper("UPDATE audit_entries SET entry = X'00' WHERE seq = 3") != 0);
    T_ASSERT(tamper("DELETE FROM audit_sth WHERE id = 4") != 0);
    T_OK(verify_db(NULL, &r));
    cf_audit_report_free(&r);
}

/* (a) the bytes of one entry changed */
static void test_entry_changed(void)
{
    cf_audit_report r;

    T_OK(build_log());
    T_OK(tamper("DROP TRIGGER audit_entries_no_update;"
                "UPDATE audit_entries SET entry = CAST(replace(CAST(entry AS TEXT), "
                "'\"tenant\":\"acme\"', '\"tenant\":\"evil\"') AS BLOB) WHERE seq = 17"));
    T_ERR(verify_db(NULL, &r), CF_E_VERIFY);
    print_report(&r);
    T_EQ(count_findings(&r, CF_AUDIT_FIND_ENTRY_MISMATCH, 17, 17,
                        "entry 17 does not match the signed tree head 4 (size 40): leaf hash "
                        "differs"),
         1);
    T_EQ(count_findings(&r, CF_AUDIT_FIND_ROOT_MISMATCH, 10, 19,
                        "tree head 2 (size 20) (3 tree heads in all); they match tree head 1 "
                        "(size 10): the difference lies in entries 10..19"),
         1);
    T_EQ(r.total, 2);
    cf_audit_report_free(&r);
}

/* (b) a row deleted (triggers dropped first) */
static void test_entry_deleted(void)
{
    cf_audit_report r;

    T_OK(build_log());
    T_OK(tamper("DROP TRIGGER audit_entries_no_delete; DELETE FROM audit_entries WHERE seq = 17"));
    T_ERR(verify_db(NULL, &r), CF_E_VERIFY);
    print_report(&r);
    T_EQ(count_findings(&r, CF_AUDIT_FIND_ENTRY_MISSING, 17, 17,
                        "entry 17 is missing: tree head 4 (size 40) covers it"),
         1);
    /* the one proof that needed the deleted leaf could not be made: said, not hidden */
    T_EQ(count_findings(&r, CF_AUDIT_FIND_NO_PROOF, 16, 16, "1 entry (the first: entry 16)"), 1);
    T_EQ(r.total, 2);
    cf_audit_report_free(&r);

    /* the last entry */
    T_OK(build_log());
    T_OK(tamper("DROP TRIGGER audit_entries_no_delete; DELETE FROM audit_entries WHERE seq = 39"));
    T_ERR(verify_db(NULL, &r), CF_E_VERIFY);
    print_report(&r);
    T_EQ(count_findings(&r, CF_AUDIT_FIND_ENTRY_MISSING, 39, 39, "entry 39 is missing"), 1);
    cf_audit_report_free(&r);
}

/* (c) a stored hash changed: a leaf hash, an interior subtree hash, a tree head */
static void test_stored_hash_changed(void)
{
    cf_audit_report r;

    T_OK(build_log());
    T_OK(tamper("DROP TRIGGER audit_entries_no_update;"
                "UPDATE audit_entries SET leaf_hash = randomblob(32) WHERE seq = 17"));
    T_ERR(verify_db(NULL, &r), CF_E_VERIFY);
    print_report(&r);
    T_EQ(count_findings(&r, CF_AUDIT_FIND_STORED_HASH, 17, 17,
                        "the log's stored hash of entry 17 is wrong: it breaks the inclusion proof "
                        "of entry 16 in tree head 4 (size 40), while the entries themselves match"),
         1);
    T_EQ(r.total, 1);
    cf_audit_report_free(&r);

    /* the subtree of entries 4..7 (level 2, index 1): it breaks four proofs, one finding */
    T_OK(build_log());
    T_OK(tamper("DROP TRIGGER audit_nodes_no_update;"
                "UPDATE audit_nodes SET hash = randomblob(32) WHERE lvl = 2 AND idx = 1"));
    T_ERR(verify_db(NULL, &r), CF_E_VERIFY);
    print_report(&r);
    T_EQ(count_findings(&r, CF_AUDIT_FIND_STORED_HASH, 4, 7,
                        "stored hash of entries 4..7 is wrong"),
         1);
    T_EQ(r.total, 1);
    cf_audit_report_free(&r);

    /* a tree head's root */
    T_OK(build_log());
    T_OK(tamper("DROP TRIGGER audit_sth_no_update;"
                "UPDATE audit_sth SET root = randomblob(32) WHERE id = 3"));
    T_ERR(verify_db(NULL, &r), CF_E_VERIFY);
    print_report(&r);
    T_EQ(count_findings(&r, CF_AUDIT_FIND_SIGNATURE, 0, 0,
                        "signature on tree head 3 (size 32) is invalid"),
         1);
    T_EQ(r.total, 1);
    cf_audit_report_free(&r);

    /* the newest head's size (claims more than it signed) */
    T_OK(build_log());
    T_OK(tamper("DROP TRIGGER audit_sth_no_update;"
                "UPDATE audit_sth SET tree_size = 39 WHERE id = 4"));
    T_ERR(verify_db(NULL, &r), CF_E_VERIFY);
    print_report(&r);
    T_EQ(count_findings(&r, CF_AUDIT_FIND_SIGNATURE, 0, 0, "tree head 4 (size 39) is invalid"), 1);
    cf_audit_report_free(&r);
}

/* An entry changed together with its stored leaf hash: no proof attributes it,
 * the signed roots still bound where it is. */
static void test_entry_and_hash_changed(void)
{
    cf_audit_report r;

    T_OK(build_log());
    T_OK(tamper("DROP TRIGGER audit_entries_no_update;"
                "UPDATE audit_entries SET entry = X'7b7d' WHERE seq = 17;"
                /* the real leaf hash of the new bytes {} */
                "UPDATE audit_entries SET leaf_hash = "
                "X'28a3a18f6cd6406b086e9ffda1f9b8a13dbcf44b0f3f32cb9031a11fd053acf9' WHERE seq = 17"));
    T_ERR(verify_db(NULL, &r), CF_E_VERIFY);
    print_report(&r);
    T_EQ(count_findings(&r, CF_AUDIT_FIND_ENTRY_UNPROVEN, 16, 16, "entry 16 is not proven"), 1);
    T_EQ(count_findings(&r, CF_AUDIT_FIND_ENTRY_UNPROVEN, 17, 17, "entry 17 is not proven"), 1);
    T_EQ(count_findings(&r, CF_AUDIT_FIND_ROOT_MISMATCH, 10, 19, "entries 10..19"), 1);
    T_EQ(r.total, 3);
    cf_audit_report_free(&r);
}

/* The log rolled back to an earlier state: only a head saved by the client shows it. */
static void test_rollback(void)
{
    cf_audit_report r;

    T_OK(build_log());
    T_OK(tamper("DROP TRIGGER audit_entries_no_delete; DROP TRIGGER audit_nodes_no_delete;"
                "DROP TRIGGER audit_sth_no_delete;"
                "DELETE FROM audit_entries WHERE seq >= 32;"
                "DELETE FROM audit_nodes WHERE (idx + 1) * (1 << lvl) > 32;"
                "DELETE FROM audit_sth WHERE id = 4"));
    /* consistent in itself: without a saved head nothing can tell */
    T_OK(verify_db(NULL, &r));
    cf_audit_report_free(&r);
    T_ERR(verify_db(&g_head[3], &r), CF_E_VERIFY);
    print_report(&r);
    T_EQ(count_findings(&r, CF_AUDIT_FIND_ENTRY_MISSING, 32, 39,
                        "entries 32..39 are missing: tree head 4 (size 40) covers them"),
         1);
    cf_audit_report_free(&r);
    /* ... and history rewritten after the rollback: the saved head does not fit */
    {
        char dsn[PATH_MAX + 16];
        cf_store *s = NULL;
        cf_audit_log *l = NULL;
        cf_audit_event **evs = tu_events(41, 0, 10);
        cf_audit_sth h;
        tu_fmt(dsn, sizeof(dsn), "sqlite:%s", g_db);
        T_OK(cf_store_open(dsn, &s));
        T_OK(cf_audit_log_open(s, &l));
        T_OK(cf_audit_append(l, evs, 10, NULL));
        T_OK(cf_audit_sth_create(l, g_key, &h));
        T_EQ(h.size, 42);
        cf_audit_events_free(evs, 10);
        cf_audit_log_close(l);
        cf_store_close(s);
    }
    T_ERR(verify_db(&g_head[3], &r), CF_E_VERIFY);
    print_report(&r);
    T_EQ(count_findings(&r, CF_AUDIT_FIND_INCONSISTENT, 0, 0,
                        "(size 42) is not consistent with tree head 4 (size 40)"),
         1);
    T_EQ(count_findings(&r, CF_AUDIT_FIND_ROOT_MISMATCH, 32, 39, "tree head 4 (size 40)"), 1);
    cf_audit_report_free(&r);
}

/* ---- the verifier on synthetic input -------------------------------------------- */

#define SN 20

struct synth {
    cf_audit_event **evs;
    uint8_t leaves[SN][32];
    cf_merkle_mem mem;
    cf_audit_sth sth[3]; /* sizes 5, 12, 20 */
    cf_merkle_proof cons[2], incl[SN];
    cf_audit_vitem items[SN];
};

static void synth_init(struct synth *y)
{
    static const uint64_t sizes[3] = {5, 12, 20};
    memset(y, 0, sizeof(*y));
    y->evs = tu_events(50, 0, SN);
    for (int i = 0; i < SN; i++)
        memcpy(y->leaves[i], y->evs[i]->leaf, 32);
    cf_merkle_mem_init(&y->mem, (const uint8_t(*)[32])y->leaves, SN);
    for (int k = 0; k < 3; k++) {
        y->sth[k].id = k + 1;
        y->sth[k].size = sizes[k];
        y->sth[k].timestamp_ms = 1714564800000ull + (uint64_t)k;
        if (cf_merkle_root(sizes[k], cf_merkle_mem_node, &y->mem, y->sth[k].root) != 0 ||
            cf_audit_sth_sign(&y->sth[k], g_key) != 0)
            abort();
    }
    for (int k = 0; k < 2; k++)
        if (cf_merkle_consistency_proof(sizes[k], sizes[k + 1], cf_merkle_mem_node, &y->mem,
                                        &y->cons[k]) != 0)
            abort();
    for (int i = 0; i < SN; i++) {
        if (cf_merkle_inclusion_proof((uint64_t)i, SN, cf_merkle_mem_node, &y->mem,
                                      &y->incl[i]) != 0)
            abort();
        y->items[i].seq = (uint64_t)i;
        y->items[i].entry = y->evs[i]->entry;
        y->items[i].entry_len = y->evs[i]->entry_len;
        y->items[i].has_proof = true;
        y->items[i].proof = (const uint8_t(*)[32])y->incl[i].h;
        y->items[i].proof_len = y->incl[i].len;
    }
}

static void synth_free(struct synth *y) { cf_audit_events_free(y->evs, SN); }

static cf_audit_verify_input synth_input(struct synth *y, const cf_merkle_proof **cons)
{
    cf_audit_verify_input in;
    memset(&in, 0, sizeof(in));
    cons[0] = &y->cons[0];
    cons[1] = &y->cons[1];
    in.key = g_pub;
    in.sths = y->sth;
    in.nsths = 3;
    in.consistency = cons;
    in.items = y->items;
    in.nitems = SN;
    in.complete = true;
    return in;
}

static void test_synthetic_good(void)
{
    struct synth y;
    const cf_merkle_proof *cons[2];
    cf_audit_verify_input in;
    cf_audit_vitem some[3];
    cf_audit_report r;
    cf_audit_sth empty;

    synth_init(&y);
    in = synth_input(&y, cons);
    T_OK(cf_audit_verify(&in, &r));
    T_EQ(r.proofs_checked, SN + 2);
    cf_audit_report_free(&r);
    /* complete: proofs are optional, the roots decide */
    in.consistency = NULL;
    for (int i = 0; i < SN; i++)
        y.items[i].has_proof = false;
    T_OK(cf_audit_verify(&in, &r));
    cf_audit_report_free(&r);
    /* a subset with proofs (a tenant checking its own entries) */
    synth_free(&y);
    synth_init(&y);
    in = synth_input(&y, cons);
    some[0] = y.items[3];
    some[1] = y.items[4];
    some[2] = y.items[11];
    in.items = some;
    in.nitems = 3;
    in.complete = false;
    T_OK(cf_audit_verify(&in, &r));
    T_EQ(r.entries_checked, 3);
    cf_audit_report_free(&r);
    /* one head of an empty log */
    memset(&empty, 0, sizeof(empty));
    cf_merkle_empty_root(empty.root);
    T_OK(cf_audit_sth_sign(&empty, g_key));
    in.sths = &empty;
    in.nsths = 1;
    in.nitems = 0;
    in.complete = true;
    T_OK(cf_audit_verify(&in, &r));
    cf_audit_report_free(&r);
    synth_free(&y);
}

static void test_synthetic_findings(void)
{
    struct synth y;
    const cf_merkle_proof *cons[2];
    cf_audit_verify_input in;
    cf_audit_vitem some[4];
    cf_audit_report r;
    cf_audit_sth heads[3];
    uint8_t other[256];

    synth_init(&y);
    in = synth_input(&y, cons);

    /* wrong key: every signature */
    in.key = g_other;
    T_ERR(cf_audit_verify(&in, &r), CF_E_VERIFY);
    T_EQ(r.total, 3);
    T_EQ(count_findings(&r, CF_AUDIT_FIND_SIGNATURE, 0, 0, "tree head 2 (size 12)"), 1);
    cf_audit_report_free(&r);
    in.key = g_pub;

    /* a subset: a changed entry whose paired leaf is present is attributed to it */
    memcpy(other, y.evs[4]->entry, y.evs[4]->entry_len);
    other[2] ^= 1;
    some[0] = y.items[3];
    some[1] = y.items[4];
    some[1].entry = other;
    some[2] = y.items[5];
    some[3] = y.items[11];
    in.items = some;
    in.nitems = 4;
    in.complete = false;
    T_ERR(cf_audit_verify(&in, &r), CF_E_VERIFY);
    print_report(&r);
    T_EQ(count_findings(&r, CF_AUDIT_FIND_ENTRY_MISMATCH, 4, 4, "leaf hash differs"), 1);
    T_EQ(r.total, 1);
    cf_audit_report_free(&r);
    /* without its pair it is merely unproven */
    some[0] = some[1];
    some[1] = y.items[11];
    in.nitems = 2;
    T_ERR(cf_audit_verify(&in, &r), CF_E_VERIFY);
    T_EQ(count_findings(&r, CF_AUDIT_FIND_ENTRY_UNPROVEN, 4, 4, NULL), 1);
    T_EQ(r.total, 1);
    cf_audit_report_free(&r);
    /* entries without proof, beyond the head, repeated */
    some[0] = y.items[2];
    some[0].has_proof = false;
    some[1] = y.items[7];
    some[2] = y.items[7];
    some[3] = y.items[9];
    some[3].seq = 20;
    in.nitems = 4;
    T_ERR(cf_audit_verify(&in, &r), CF_E_VERIFY);
    print_report(&r);
    T_EQ(count_findings(&r, CF_AUDIT_FIND_NO_PROOF, 2, 2, "1 entry (the first: entry 2)"), 1);
    T_EQ(count_findings(&r, CF_AUDIT_FIND_ENTRY_EXTRA, 7, 7, "twice or out of order"), 1);
    T_EQ(count_findings(&r, CF_AUDIT_FIND_ENTRY_EXTRA, 20, 20, "beyond tree head 3 (size 20)"), 1);
    T_EQ(r.total, 3);
    cf_audit_report_free(&r);

    /* consistency: absent (not complete), wrong, forked, rolled back, time travel */
    in.nitems = 0;
    in.consistency = NULL;
    T_ERR(cf_audit_verify(&in, &r), CF_E_VERIFY);
    T_EQ(count_findings(&r, CF_AUDIT_FIND_NO_PROOF, 0, 0, "no consistency proof between"), 2);
    cf_audit_report_free(&r);
    cons[0] = &y.cons[0];
    cons[1] = &y.cons[0]; /* the 5 -> 12 proof offered for 12 -> 20 */
    in.consistency = cons;
    T_ERR(cf_audit_verify(&in, &r), CF_E_VERIFY);
    T_EQ(count_findings(&r, CF_AUDIT_FIND_INCONSISTENT, 0, 0,
                        "tree head 3 (size 20) is not consistent with tree head 2 (size 12)"),
         1);
    T_EQ(r.total, 1);
    cf_audit_report_free(&r);
    cons[1] = &y.cons[1];
    heads[0] = y.sth[0];
    heads[1] = y.sth[1];
    heads[2] = y.sth[1];
    heads[2].id = 7;
    heads[2].root[0] ^= 1;
    T_OK(cf_audit_sth_sign(&heads[2], g_key)); /* a validly signed second root for size 12 */
    in.sths = heads;
    in.items = y.items;
    in.nitems = 12;
    T_ERR(cf_audit_verify(&in, &r), CF_E_VERIFY);
    print_report(&r);
    T_EQ(count_findings(&r, CF_AUDIT_FIND_INCONSISTENT, 0, 0,
                        "same size but different roots: the log forked"),
         1);
    cf_audit_report_free(&r);
    heads[0] = y.sth[2];
    heads[1] = y.sth[1];
    heads[2] = y.sth[2];
    in.nitems = 0;
    in.consistency = NULL;
    T_ERR(cf_audit_verify(&in, &r), CF_E_VERIFY);
    T_EQ(count_findings(&r, CF_AUDIT_FIND_ORDER, 0, 0,
                        "tree head 2 (size 12) is smaller than the earlier tree head 3 (size 20)"),
         1);
    cf_audit_report_free(&r);
    heads[0] = y.sth[0];
    heads[1] = y.sth[0];
    heads[1].id = 9;
    heads[1].timestamp_ms -= 1;
    T_OK(cf_audit_sth_sign(&heads[1], g_key));
    in.nsths = 2;
    T_ERR(cf_audit_verify(&in, &r), CF_E_VERIFY);
    T_EQ(count_findings(&r, CF_AUDIT_FIND_ORDER, 0, 0, "dated before"), 1);
    cf_audit_report_free(&r);
    synth_free(&y);
}

static void test_synthetic_limits(void)
{
    struct synth y;
    const cf_merkle_proof *cons[2];
    cf_audit_verify_input in;
    cf_audit_vitem *many;
    cf_audit_report r;
    cf_key *x = NULL;

    synth_init(&y);
    in = synth_input(&y, cons);
    /* more findings than are kept: counted, not kept */
    many = calloc(100, sizeof(*many));
    for (int i = 0; i < 100; i++) {
        many[i] = y.items[0];
        many[i].seq = 1000 + (uint64_t)i;
    }
    in.items = many;
    in.nitems = 100;
    in.complete = false;
    T_ERR(cf_audit_verify(&in, &r), CF_E_VERIFY);
    T_EQ(r.n, CF_AUDIT_MAX_PROBLEMS);
    T_EQ(r.total, 100);
    cf_audit_report_free(&r);
    free(many);
    /* bad input leaves the report alone */
    memset(&r, 0x5a, sizeof(r));
    in = synth_input(&y, cons);
    in.key = NULL;
    T_ERR(cf_audit_verify(&in, &r), CF_E_INVAL);
    T_OK(cf_key_generate(CF_KEY_X25519, &x));
    in.key = x;
    T_ERR(cf_audit_verify(&in, &r), CF_E_INVAL);
    cf_key_free(x);
    in.key = g_pub;
    in.nsths = 0;
    T_ERR(cf_audit_verify(&in, &r), CF_E_INVAL);
    in.nsths = 3;
    y.items[1].proof_len = CF_MERKLE_MAX_PROOF + 1;
    T_ERR(cf_audit_verify(&in, &r), CF_E_INVAL);
    T_EQ(r.n, 0x5a5a5a5a5a5a5a5aull);
    synth_free(&y);
}

int main(void)
{
    if (tu_init("auditverify") != 0 || cf_key_generate(CF_KEY_ED25519, &g_key) != 0 ||
        cf_key_public_only(g_key, &g_pub) != 0 || cf_key_generate(CF_KEY_ED25519, &g_other) != 0)
        return 1;
    T_RUN(test_untouched);
    T_RUN(test_entry_changed);
    T_RUN(test_entry_deleted);
    T_RUN(test_stored_hash_changed);
    T_RUN(test_entry_and_hash_changed);
    T_RUN(test_rollback);
    T_RUN(test_synthetic_good);
    T_RUN(test_synthetic_findings);
    T_RUN(test_synthetic_limits);
    tu_rm_tree(tu_tmp);
    cf_key_free(g_key);
    cf_key_free(g_pub);
    cf_key_free(g_other);
    return t_done();
}
