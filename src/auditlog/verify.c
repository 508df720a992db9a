/*
 * Audit log verifier (verify.h): signatures, order and consistency of tree
 * heads, entries against the signed roots, and attribution of every failure.
 */
#include "auditlog/verify.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/limits.h"
#include "base/secmem.h"

#define HL CF_MERKLE_HASH_LEN

const char *cf_audit_finding_name(cf_audit_finding_kind kind)
{
    switch (kind) {
    case CF_AUDIT_FIND_SIGNATURE: return "signature";
    case CF_AUDIT_FIND_ORDER: return "order";
    case CF_AUDIT_FIND_INCONSISTENT: return "inconsistent";
    case CF_AUDIT_FIND_NO_PROOF: return "no_proof";
    case CF_AUDIT_FIND_ENTRY_MISSING: return "entry_missing";
    case CF_AUDIT_FIND_ENTRY_EXTRA: return "entry_extra";
    case CF_AUDIT_FIND_ENTRY_MISMATCH: return "entry_mismatch";
    case CF_AUDIT_FIND_ENTRY_UNPROVEN: return "entry_unproven";
    case CF_AUDIT_FIND_STORED_HASH: return "stored_hash";
    case CF_AUDIT_FIND_ROOT_MISMATCH: return "root_mismatch";
    }
    return "?";
}

void cf_audit_report_free(cf_audit_report *r)
{
    if (r == NULL)
        return;
    free(r->findings);
    memset(r, 0, sizeof(*r));
}

struct vstate {
    const cf_audit_verify_input *in;
    const cf_audit_sth *head;
    cf_audit_report rep;
    bool *sig_ok;          /* per tree head */
    signed char *root_ok;  /* per tree head: 1 the entries give its root, 0 not, -1 unknown */
    uint8_t (*leaf)[HL];   /* per item: hash of its bytes */
    bool *valid;           /* per item: in range, in order */
    size_t *vidx;          /* positions of the valid items (ascending seq) */
    size_t nvalid;
    signed char *proof_ok; /* per item: 1 verified, 0 failed, -1 no proof */
    bool complete_ok;      /* every entry [0, head size) is present exactly once */
    uint8_t (*tree)[HL];   /* complete_ok: leaf hashes by seq */
    cf_merkle_mem mem;
    bool mem_ready;
    cf_merkle_range stored[CF_AUDIT_MAX_PROBLEMS]; /* stored-hash ranges already reported */
    size_t nstored;
};

static void add(struct vstate *st, cf_audit_finding_kind kind, uint64_t first, uint64_t last,
                int64_t sth_id, const char *fmt, ...) CF_PRINTF(6, 7);

static void add(struct vstate *st, cf_audit_finding_kind kind, uint64_t first, uint64_t last,
                int64_t sth_id, const char *fmt, ...)
{
    cf_audit_finding *f;
    va_list ap;

    st->rep.total++;
    if (st->rep.n >= CF_AUDIT_MAX_PROBLEMS)
        return;
    f = &st->rep.findings[st->rep.n++];
    f->kind = kind;
    f->first = first;
    f->last = last;
    f->sth_id = sth_id;
    va_start(ap, fmt);
    /* truncation of a diagnostic is acceptable */
    (void)vsnprintf(f->message, sizeof(f->message), fmt, ap);
    va_end(ap);
}

/* "tree head 5 (size 40)" or "the tree head at size 40" */
static const char *sth_name(const cf_audit_sth *s, char *buf, size_t n)
{
    if (s->id > 0)
        (void)snprintf(buf, n, "tree head %lld (size %llu)", (long long)s->id,
                       (unsigned long long)s->size);
    else
        (void)snprintf(buf, n, "the tree head at size %llu", (unsigned long long)s->size);
    return buf;
}

/* "entry 17" or "entries 16..19" for [start, end) */
static const char *range_name(uint64_t start, uint64_t end, char *buf, size_t n)
{
    if (end - start == 1)
        (void)snprintf(buf, n, "entry %llu", (unsigned long long)start);
    else
        (void)snprintf(buf, n, "entries %llu..%llu", (unsigned long long)start,
                       (unsigned long long)(end - 1));
    return buf;
}

static void to_proof(const cf_audit_vitem *it, cf_merkle_proof *p)
{
    p->len = it->proof_len;
    if (it->proof_len > 0)
        memcpy(p->h, it->proof, it->proof_len * HL);
}

/* One finding per damaged stored subtree, however many proofs it breaks. */
static void stored_hash(struct vstate *st, cf_merkle_range r, const char *context)
{
    char rn[64];

    for (size_t i = 0; i < st->nstored; i++)
        if (st->stored[i].start == r.start && st->stored[i].end == r.end)
            return;
    if (st->nstored < CF_ARRAY_LEN(st->stored))
        st->stored[st->nstored++] = r;
    add(st, CF_AUDIT_FIND_STORED_HASH, r.start, r.end - 1, st->head->id,
        "the log's stored hash of %s is wrong: %s", range_name(r.start, r.end, rn, sizeof(rn)),
        context);
}

/* Compares a proof the log served with the one it should have served
 * (authenticated), reporting each element that differs. */
static void diff_proof(struct vstate *st, const uint8_t (*served)[HL], size_t served_len,
                       const cf_merkle_proof *want, const cf_merkle_range *ranges,
                       size_t first_elem, const char *what, const char *context)
{
    bool any = false;

    if (served_len != want->len) {
        add(st, CF_AUDIT_FIND_STORED_HASH, 0, 0, st->head->id,
            "%s is malformed: %zu hashes where %zu belong", what, served_len, want->len);
        return;
    }
    for (size_t k = first_elem; k < want->len; k++) {
        if (!cf_ct_eq(served[k], want->h[k], HL)) {
            stored_hash(st, ranges[k], context);
            any = true;
        }
    }
    if (!any)
        add(st, CF_AUDIT_FIND_STORED_HASH, 0, 0, st->head->id, "%s does not verify: %s", what,
            context);
}

static int ensure_mem(struct vstate *st)
{
    if (!st->mem_ready) {
        cf_merkle_mem_init(&st->mem, (const uint8_t(*)[HL])st->tree, st->head->size);
        CF_GUARD(cf_merkle_mem_build(&st->mem));
        st->mem_ready = true;
    }
    return 0;
}

/* ---- tree heads ----------------------------------------------------------------------- */

static void check_signatures_and_order(struct vstate *st)
{
    const cf_audit_verify_input *in = st->in;
    char a[96], b[96];

    for (size_t i = 0; i < in->nsths; i++) {
        st->sig_ok[i] = cf_audit_sth_verify(&in->sths[i], in->key) == 0;
        st->rep.sths_checked++;
        if (!st->sig_ok[i])
            add(st, CF_AUDIT_FIND_SIGNATURE, 0, 0, in->sths[i].id, "signature on %s is invalid",
                sth_name(&in->sths[i], a, sizeof(a)));
    }
    for (size_t i = 1; i < in->nsths; i++) {
        const cf_audit_sth *p = &in->sths[i - 1], *c = &in->sths[i];
        if (c->size < p->size)
            add(st, CF_AUDIT_FIND_ORDER, 0, 0, c->id,
                "%s is smaller than the earlier %s: the log was rolled back or forked",
                sth_name(c, a, sizeof(a)), sth_name(p, b, sizeof(b)));
        else if (c->timestamp_ms < p->timestamp_ms)
            add(st, CF_AUDIT_FIND_ORDER, 0, 0, c->id,
                "%s is dated before the earlier %s: tree heads are out of order",
                sth_name(c, a, sizeof(a)), sth_name(p, b, sizeof(b)));
    }
}

static int check_consistency(struct vstate *st)
{
    const cf_audit_verify_input *in = st->in;
    char a[96], b[96], ctx[512];

    for (size_t i = 1; i < in->nsths; i++) {
        const cf_audit_sth *p = &in->sths[i - 1], *c = &in->sths[i];
        const cf_merkle_proof *proof = in->consistency != NULL ? in->consistency[i - 1] : NULL;
        bool both_match = st->root_ok[i - 1] == 1 && st->root_ok[i] == 1;

        /* an unsigned head proves nothing (its signature finding says why);
         * a shrinking pair is an ORDER finding already */
        if (!st->sig_ok[i - 1] || !st->sig_ok[i] || c->size < p->size)
            continue;
        if (p->size == c->size) {
            if (!cf_ct_eq(p->root, c->root, HL))
                add(st, CF_AUDIT_FIND_INCONSISTENT, 0, 0, c->id,
                    "%s and %s have the same size but different roots: the log forked",
                    sth_name(c, a, sizeof(a)), sth_name(p, b, sizeof(b)));
            continue;
        }
        if (p->size == 0)
            continue; /* the empty tree is a prefix of every tree */
        if (proof == NULL) {
            if (!both_match) /* recomputing both roots from the entries proves it otherwise */
                add(st, CF_AUDIT_FIND_NO_PROOF, 0, 0, c->id,
                    "no consistency proof between %s and %s: their consistency is unchecked",
                    sth_name(p, a, sizeof(a)), sth_name(c, b, sizeof(b)));
            continue;
        }
        st->rep.proofs_checked++;
        if (cf_merkle_verify_consistency(p->size, c->size, p->root, c->root, proof) == 0)
            continue;
        if (both_match) {
            cf_merkle_proof want;
            cf_merkle_range r[CF_MERKLE_MAX_PROOF];
            size_t rl;
            /* The entries prove both heads: the log's proof carries bad hashes. */
            CF_GUARD(ensure_mem(st));
            CF_GUARD(cf_merkle_consistency_proof(p->size, c->size, cf_merkle_mem_node, &st->mem,
                                                 &want));
            CF_GUARD(cf_merkle_consistency_ranges(p->size, c->size, r, &rl));
            (void)snprintf(ctx, sizeof(ctx),
                           "the consistency proof between %s and %s does not verify, but the "
                           "entries match both",
                           sth_name(p, a, sizeof(a)), sth_name(c, b, sizeof(b)));
            diff_proof(st, (const uint8_t(*)[HL])proof->h, proof->len, &want, r, 0,
                       "the consistency proof", ctx);
        } else {
            add(st, CF_AUDIT_FIND_INCONSISTENT, 0, 0, c->id, "%s is not consistent with %s",
                sth_name(c, a, sizeof(a)), sth_name(p, b, sizeof(b)));
        }
    }
    return 0;
}

/* ---- entries -------------------------------------------------------------------------- */

static void missing(struct vstate *st, uint64_t from, uint64_t to_excl)
{
    char rn[64], a[96];
    bool one = to_excl - from == 1;

    add(st, CF_AUDIT_FIND_ENTRY_MISSING, from, to_excl - 1, st->head->id,
        "%s %s missing: %s covers %s", range_name(from, to_excl, rn, sizeof(rn)),
        one ? "is" : "are", sth_name(st->head, a, sizeof(a)), one ? "it" : "them");
}

static int check_items(struct vstate *st)
{
    const cf_audit_verify_input *in = st->in;
    uint64_t n = st->head->size, expect = 0, count = 0;
    bool have_prev = false, gaps = false;
    uint64_t prev = 0;
    char a[96];

    for (size_t k = 0; k < in->nitems; k++) {
        const cf_audit_vitem *it = &in->items[k];
        st->valid[k] = false;
        st->proof_ok[k] = -1;
        if (it->entry == NULL && it->entry_len > 0)
            return cf_err_set(CF_E_INVAL, "verifier: entry %llu has no bytes",
                              (unsigned long long)it->seq);
        if (it->has_proof && (it->proof_len > CF_MERKLE_MAX_PROOF ||
                              (it->proof == NULL && it->proof_len > 0)))
            return cf_err_set(CF_E_INVAL, "verifier: proof of entry %llu is malformed",
                              (unsigned long long)it->seq);
        if (it->seq >= n) {
            add(st, CF_AUDIT_FIND_ENTRY_EXTRA, it->seq, it->seq, st->head->id,
                "entry %llu lies beyond %s", (unsigned long long)it->seq,
                sth_name(st->head, a, sizeof(a)));
            continue;
        }
        if (have_prev && it->seq <= prev) {
            add(st, CF_AUDIT_FIND_ENTRY_EXTRA, it->seq, it->seq, st->head->id,
                "entry %llu appears twice or out of order", (unsigned long long)it->seq);
            continue;
        }
        if (in->complete && it->seq > expect) {
            missing(st, expect, it->seq);
            gaps = true;
        }
        CF_GUARD(cf_merkle_leaf_hash(it->entry, it->entry_len, st->leaf[k]));
        st->valid[k] = true;
        st->vidx[st->nvalid++] = k;
        st->rep.entries_checked++;
        prev = it->seq;
        have_prev = true;
        expect = it->seq + 1;
        count++;
    }
    if (in->complete && expect < n) {
        missing(st, expect, n);
        gaps = true;
    }
    st->complete_ok = in->complete && !gaps && count == n;
    if (st->complete_ok && n > 0) {
        size_t j = 0;
        st->tree = malloc((size_t)n * HL);
        CF_ENSURE(st->tree != NULL, CF_E_NOMEM);
        for (size_t k = 0; k < in->nitems; k++)
            if (st->valid[k])
                memcpy(st->tree[j++], st->leaf[k], HL);
    }
    return 0;
}

struct size_ref {
    uint64_t size;
    size_t sth;
};

static int cmp_size_ref(const void *a, const void *b)
{
    const struct size_ref *x = a, *y = b;
    if (x->size != y->size)
        return x->size < y->size ? -1 : 1;
    return x->sth < y->sth ? -1 : (x->sth > y->sth ? 1 : 0);
}

/* Complete verification: each signed root against the entries' own tree. */
static int check_roots(struct vstate *st)
{
    const cf_audit_verify_input *in = st->in;
    struct size_ref *refs;
    size_t nrefs = 0, k = 0;
    cf_merkle_frontier f;
    const cf_audit_sth *first_bad = NULL, *last_good_before = NULL;
    size_t bad = 0;
    char a[96], b[128];
    int rc = 0;

    for (size_t i = 0; i < in->nsths; i++)
        st->root_ok[i] = -1;
    if (!st->complete_ok)
        return 0;
    refs = calloc(in->nsths, sizeof(*refs));
    CF_ENSURE(refs != NULL, CF_E_NOMEM);
    for (size_t i = 0; i < in->nsths; i++)
        if (st->sig_ok[i] && in->sths[i].size <= st->head->size) {
            refs[nrefs].size = in->sths[i].size;
            refs[nrefs].sth = i;
            nrefs++;
        }
    qsort(refs, nrefs, sizeof(*refs), cmp_size_ref);
    cf_merkle_frontier_init(&f);
    for (size_t r = 0; r < nrefs; r++) {
        uint8_t root[HL];
        const cf_audit_sth *s = &in->sths[refs[r].sth];
        while (f.size < refs[r].size)
            CF_GUARD_OUT(cf_merkle_frontier_append(&f, st->tree[k++], NULL, NULL));
        CF_GUARD_OUT(cf_merkle_frontier_root(&f, root));
        st->root_ok[refs[r].sth] = cf_ct_eq(root, s->root, HL) ? 1 : 0;
        if (st->root_ok[refs[r].sth] == 1) {
            if (first_bad == NULL)
                last_good_before = s;
        } else {
            if (first_bad == NULL)
                first_bad = s;
            bad++;
        }
    }
    if (first_bad != NULL) {
        uint64_t from = last_good_before != NULL ? last_good_before->size : 0;
        char rn[64];
        if (last_good_before != NULL)
            (void)snprintf(b, sizeof(b), "; they match %s",
                           sth_name(last_good_before, a, sizeof(a)));
        else
            b[0] = '\0';
        add(st, CF_AUDIT_FIND_ROOT_MISMATCH, from, first_bad->size - 1, first_bad->id,
            "the entries do not hash to the signed root of %s (%zu tree head%s in all)%s: the "
            "difference lies in %s",
            sth_name(first_bad, a, sizeof(a)), bad, bad == 1 ? "" : "s", b,
            range_name(from, first_bad->size, rn, sizeof(rn)));
    }
    rc = 0;
out:
    free(refs);
    return rc;
}

/* Position of the valid item with sequence number seq, or -1. */
static ptrdiff_t find_item(const struct vstate *st, uint64_t seq)
{
    size_t lo = 0, hi = st->nvalid;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        uint64_t s = st->in->items[st->vidx[mid]].seq;
        if (s == seq)
            return (ptrdiff_t)st->vidx[mid];
        if (s < seq)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1;
}

static int attribute_failure(struct vstate *st, size_t k)
{
    const cf_audit_vitem *it = &st->in->items[k];
    const cf_audit_sth *head = st->head;
    uint64_t i = it->seq, n = head->size, j = i ^ 1;
    cf_merkle_range r[CF_MERKLE_MAX_PROOF];
    size_t rl;
    char a[96], ctx[512];
    ptrdiff_t sib;

    CF_GUARD(cf_merkle_inclusion_ranges(i, n, r, &rl));
    (void)snprintf(ctx, sizeof(ctx),
                   "it breaks the inclusion proof of entry %llu in %s, while the entries "
                   "themselves match it",
                   (unsigned long long)i, sth_name(head, a, sizeof(a)));
    /* (1) the entries prove the head: the entry is genuine, the log's proof is not */
    if (st->complete_ok && st->root_ok[st->in->nsths - 1] == 1) {
        cf_merkle_proof want;
        CF_GUARD(ensure_mem(st));
        CF_GUARD(cf_merkle_inclusion_proof(i, n, cf_merkle_mem_node, &st->mem, &want));
        diff_proof(st, it->proof, it->proof_len, &want, r, 0, "an inclusion proof", ctx);
        return 0;
    }
    /* (2) the paired leaf's verified proof authenticates this leaf's hash */
    sib = (j < n && rl > 0 && r[0].start == j && r[0].end == j + 1) ? find_item(st, j) : -1;
    if (sib >= 0 && st->proof_ok[sib] == 1 && st->in->items[sib].proof_len == rl) {
        const cf_audit_vitem *s = &st->in->items[sib];
        cf_merkle_proof want;
        if (!cf_ct_eq(s->proof[0], st->leaf[k], HL)) {
            add(st, CF_AUDIT_FIND_ENTRY_MISMATCH, i, i, head->id,
                "entry %llu does not match the signed %s: leaf hash differs", (unsigned long long)i,
                sth_name(head, a, sizeof(a)));
            return 0;
        }
        /* genuine entry: its path is the sibling's above the leaves */
        want.len = rl;
        memcpy(want.h[0], st->leaf[sib], HL);
        for (size_t e = 1; e < rl; e++)
            memcpy(want.h[e], s->proof[e], HL);
        (void)snprintf(ctx, sizeof(ctx),
                       "it breaks the inclusion proof of entry %llu in %s (entry %llu itself is "
                       "authenticated by the proof of entry %llu)",
                       (unsigned long long)i, sth_name(head, a, sizeof(a)), (unsigned long long)i,
                       (unsigned long long)j);
        diff_proof(st, it->proof, it->proof_len, &want, r, 0, "an inclusion proof", ctx);
        return 0;
    }
    /* (3) nothing authenticates either side */
    add(st, CF_AUDIT_FIND_ENTRY_UNPROVEN, i, i, head->id,
        "entry %llu is not proven to be in %s: its inclusion proof does not verify",
        (unsigned long long)i, sth_name(head, a, sizeof(a)));
    return 0;
}

static int check_inclusion(struct vstate *st)
{
    const cf_audit_verify_input *in = st->in;
    const cf_audit_sth *head = st->head;
    bool head_ok = st->sig_ok[in->nsths - 1];

    uint64_t unproven = 0, first_unproven = 0;

    /* first pass: which proofs verify (the second pass uses them as authentication) */
    for (size_t k = 0; k < in->nitems; k++) {
        const cf_audit_vitem *it = &in->items[k];
        cf_merkle_proof p;
        if (!st->valid[k])
            continue;
        if (!it->has_proof) {
            /* a complete verification checks them through the roots instead */
            if (!st->complete_ok && unproven++ == 0)
                first_unproven = it->seq;
            continue;
        }
        to_proof(it, &p);
        st->rep.proofs_checked++;
        st->proof_ok[k] =
            cf_merkle_verify_inclusion(st->leaf[k], it->seq, head->size, &p, head->root) == 0;
    }
    if (unproven > 0) {
        char a[96];
        add(st, CF_AUDIT_FIND_NO_PROOF, first_unproven, first_unproven, head->id,
            "%llu entr%s (the first: entry %llu) came without an inclusion proof in %s: unchecked",
            (unsigned long long)unproven, unproven == 1 ? "y" : "ies",
            (unsigned long long)first_unproven, sth_name(head, a, sizeof(a)));
    }
    /* an unsigned head authenticates nothing: its signature finding says it all */
    if (!head_ok)
        return 0;
    for (size_t k = 0; k < in->nitems; k++)
        if (st->valid[k] && st->proof_ok[k] == 0)
            CF_GUARD(attribute_failure(st, k));
    return 0;
}

int cf_audit_verify(const cf_audit_verify_input *in, cf_audit_report *ret)
{
    struct vstate st;
    size_t ns, ni;
    int rc;

    CF_ENSURE(in != NULL && ret != NULL, CF_E_INVAL);
    if (in->key == NULL || cf_key_get_type(in->key) != CF_KEY_ED25519)
        return cf_err_set(CF_E_INVAL, "verifier: the tree-head key must be an Ed25519 key");
    if (in->sths == NULL || in->nsths == 0)
        return cf_err_set(CF_E_INVAL, "verifier: at least one tree head is needed");
    if (in->items == NULL && in->nitems > 0)
        return cf_err_set(CF_E_INVAL, "verifier: entries missing");
    if (in->nitems > CF_AUDIT_MAX_VERIFY_ENTRIES || in->nsths > CF_AUDIT_MAX_VERIFY_STHS)
        return cf_err_set(CF_E_TOO_LARGE, "verifier: too many entries or tree heads for one run");
    memset(&st, 0, sizeof(st));
    st.in = in;
    st.head = &in->sths[in->nsths - 1];
    ns = in->nsths;
    ni = in->nitems > 0 ? in->nitems : 1;
    st.rep.findings = calloc(CF_AUDIT_MAX_PROBLEMS, sizeof(*st.rep.findings));
    st.sig_ok = calloc(ns, sizeof(*st.sig_ok));
    st.root_ok = calloc(ns, sizeof(*st.root_ok));
    st.leaf = calloc(ni, HL);
    st.valid = calloc(ni, sizeof(*st.valid));
    st.vidx = calloc(ni, sizeof(*st.vidx));
    st.proof_ok = calloc(ni, sizeof(*st.proof_ok));
    CF_ENSURE_OUT(st.rep.findings != NULL && st.sig_ok != NULL && st.root_ok != NULL &&
                      st.leaf != NULL && st.valid != NULL && st.vidx != NULL && st.proof_ok != NULL,
                  CF_E_NOMEM);

    check_signatures_and_order(&st);
    CF_GUARD_OUT(check_items(&st));
    CF_GUARD_OUT(check_roots(&st));
    CF_GUARD_OUT(check_consistency(&st));
    CF_GUARD_OUT(check_inclusion(&st));

    *ret = st.rep;
    rc = st.rep.total == 0 ? 0 : CF_E_VERIFY;
    if (rc != 0)
        (void)cf_err_set(CF_E_VERIFY, "audit log verification found %zu problem%s", st.rep.total,
                         st.rep.total == 1 ? "" : "s");
    memset(&st.rep, 0, sizeof(st.rep));
out:
    cf_audit_report_free(&st.rep);
    if (st.mem_ready)
        cf_merkle_mem_free(&st.mem);
    free(st.tree);
    free(st.sig_ok);
    free(st.root_ok);
    free(st.leaf);
    free(st.valid);
    free(st.vidx);
    free(st.proof_ok);
    return rc;
}

/* ---- over a local log ----------------------------------------------------------------- */

struct gathered {
    cf_audit_sth *sths;
    size_t nsths, cap;
    cf_merkle_proof **cons;
    cf_audit_entry *entries;
    cf_audit_vitem *items;
    void **proofs; /* per item: its inclusion proof's hashes */
    size_t nitems;
};

static void gathered_free(struct gathered *g)
{
    if (g->cons != NULL)
        for (size_t i = 0; i + 1 < g->nsths; i++)
            free(g->cons[i]);
    free(g->cons);
    free(g->sths);
    if (g->entries != NULL)
        for (size_t i = 0; i < g->nitems; i++)
            cf_audit_entry_clear(&g->entries[i]);
    free(g->entries);
    free(g->items);
    if (g->proofs != NULL)
        for (size_t i = 0; i < g->nitems; i++)
            free(g->proofs[i]);
    free(g->proofs);
}

static int push_sth(struct gathered *g, const cf_audit_sth *s)
{
    if (g->nsths == g->cap) {
        size_t cap = g->cap == 0 ? 64 : g->cap * 2;
        cf_audit_sth *n;
        if (cap > CF_AUDIT_MAX_VERIFY_STHS + 1)
            return cf_err_set(CF_E_TOO_LARGE, "more than %d tree heads to verify",
                              CF_AUDIT_MAX_VERIFY_STHS);
        n = realloc(g->sths, cap * sizeof(*n));
        CF_ENSURE(n != NULL, CF_E_NOMEM);
        g->sths = n;
        g->cap = cap;
    }
    g->sths[g->nsths++] = *s;
    return 0;
}

int cf_audit_verify_log(cf_audit_log *log, const cf_key *key, const cf_audit_sth *trusted,
                        cf_audit_report *ret)
{
    struct gathered g;
    cf_audit_verify_input in;
    uint64_t cur, n;
    int64_t after = 0;
    bool more = true;
    size_t k;
    int rc = 0;

    CF_ENSURE(log != NULL && key != NULL && ret != NULL, CF_E_INVAL);
    memset(&g, 0, sizeof(g));
    while (more) {
        cf_audit_sth *page = NULL;
        size_t np = 0;
        CF_GUARD_OUT(cf_audit_sth_list(log, after, CF_AUDIT_MAX_PAGE, &page, &np, &more));
        for (size_t i = 0; i < np && rc == 0; i++) {
            /* the trusted head goes where the log's own heads outgrow it, so
             * that it is checked against its neighbours (a log rolled back
             * below it leaves it last: the head everything must reach) */
            if (trusted != NULL && page[i].size > trusted->size) {
                rc = push_sth(&g, trusted);
                trusted = NULL;
            }
            if (rc == 0)
                rc = push_sth(&g, &page[i]);
        }
        if (np > 0)
            after = page[np - 1].id;
        free(page);
        CF_GUARD_OUT(rc);
    }
    if (trusted != NULL)
        CF_GUARD_OUT(push_sth(&g, trusted));
    if (g.nsths == 0) {
        rc = cf_err_set(CF_E_NOT_FOUND, "the audit log has no signed tree head to verify");
        goto out;
    }
    CF_GUARD_OUT(cf_audit_tree_size(log, &cur));
    n = g.sths[g.nsths - 1].size;
    if (n > CF_AUDIT_MAX_VERIFY_ENTRIES) {
        rc = cf_err_set(CF_E_TOO_LARGE, "a log of %llu entries is too large to verify in memory",
                        (unsigned long long)n);
        goto out;
    }

    /* consistency proofs between consecutive heads; what the log cannot
     * produce stays NULL (the verifier says what that leaves unchecked) */
    g.cons = calloc(g.nsths, sizeof(*g.cons));
    CF_ENSURE_OUT(g.cons != NULL, CF_E_NOMEM);
    for (size_t i = 1; i < g.nsths; i++) {
        uint64_t a = g.sths[i - 1].size, b = g.sths[i].size;
        if (a == 0 || a >= b || b > cur)
            continue;
        g.cons[i - 1] = malloc(sizeof(cf_merkle_proof));
        CF_ENSURE_OUT(g.cons[i - 1] != NULL, CF_E_NOMEM);
        if (cf_audit_consistency_proof(log, a, b, g.cons[i - 1]) < 0) {
            free(g.cons[i - 1]);
            g.cons[i - 1] = NULL;
        }
    }

    /* every entry up to the head, with its inclusion proof in the head */
    g.entries = calloc(n > 0 ? n : 1, sizeof(*g.entries));
    g.items = calloc(n > 0 ? n : 1, sizeof(*g.items));
    g.proofs = calloc(n > 0 ? n : 1, sizeof(*g.proofs));
    CF_ENSURE_OUT(g.entries != NULL && g.items != NULL && g.proofs != NULL, CF_E_NOMEM);
    more = n > 0;
    {
        cf_audit_query q;
        memset(&q, 0, sizeof(q));
        q.limit = CF_AUDIT_MAX_PAGE;
        while (more) {
            cf_audit_page page;
            uint64_t last;
            CF_GUARD_OUT(cf_audit_query_entries(log, &q, &page));
            more = page.more;
            /* the cursor, before the items are moved out (and zeroed) below */
            last = page.n > 0 ? page.items[page.n - 1].seq : 0;
            for (size_t i = 0; i < page.n; i++) {
                if (page.items[i].seq >= n || g.nitems >= n) {
                    more = false;
                    break;
                }
                g.entries[g.nitems++] = page.items[i];
                memset(&page.items[i], 0, sizeof(page.items[i]));
            }
            if (page.n > 0) {
                q.has_after = true;
                q.after = last;
            }
            cf_audit_page_free(&page);
        }
    }
    for (k = 0; k < g.nitems; k++) {
        cf_audit_vitem *it = &g.items[k];
        cf_merkle_proof p;
        it->seq = g.entries[k].seq;
        it->entry = g.entries[k].entry;
        it->entry_len = g.entries[k].entry_len;
        if (n <= cur && cf_audit_inclusion_proof(log, it->seq, n, &p) == 0) {
            g.proofs[k] = malloc(p.len > 0 ? p.len * HL : 1);
            CF_ENSURE_OUT(g.proofs[k] != NULL, CF_E_NOMEM);
            if (p.len > 0)
                memcpy(g.proofs[k], p.h, p.len * HL);
            it->has_proof = true;
            it->proof = (const uint8_t(*)[HL])g.proofs[k];
            it->proof_len = p.len;
        }
    }
    cf_err_clear();

    memset(&in, 0, sizeof(in));
    in.key = key;
    in.sths = g.sths;
    in.nsths = g.nsths;
    in.consistency = (const cf_merkle_proof *const *)g.cons;
    in.items = g.items;
    in.nitems = g.nitems;
    in.complete = true;
    rc = cf_audit_verify(&in, ret);
out:
    gathered_free(&g);
    return rc;
}
