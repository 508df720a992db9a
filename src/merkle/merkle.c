/*
 * RFC 6962 Merkle tree: hashing, proof generation over a node source, RFC 9162
 * verification, and the append frontier. See merkle.h for the storage model.
 */
#include "merkle/merkle.h"

#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/secmem.h"
#include "crypto/hash.h"

#define HL CF_MERKLE_HASH_LEN

/* RFC 6962 §2.1: domain-separation prefixes of leaf and interior node hashes. */
static const uint8_t LEAF_PREFIX = 0x00;
static const uint8_t NODE_PREFIX = 0x01;

/* SHA-256("") (FIPS 180-4), the MTH of the empty list (RFC 6962 §2.1). */
static const uint8_t EMPTY_ROOT[HL] = {
    0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4, 0xc8, 0x99, 0x6f, 0xb9, 0x24,
    0x27, 0xae, 0x41, 0xe4, 0x64, 0x9b, 0x93, 0x4c, 0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52, 0xb8, 0x55};

static bool is_pow2(uint64_t x) { return x != 0 && (x & (x - 1)) == 0; }

/* Number of significant bits; x > 0. */
static unsigned bit_len(uint64_t x) { return 64u - (unsigned)__builtin_clzll(x); }

/* RFC 6962 §2.1: "k is the largest power of two smaller than n"; n >= 2. */
static uint64_t split_point(uint64_t n) { return 1ull << (bit_len(n - 1) - 1); }

int cf_merkle_leaf_hash(const void *entry, size_t len, uint8_t out[HL])
{
    cf_iov parts[2] = {{&LEAF_PREFIX, 1}, {entry, len}};

    CF_ENSURE(entry != NULL || len == 0, CF_E_INVAL);
    return cf_hash(CF_SHA256, parts, 2, out);
}

int cf_merkle_node_hash(const uint8_t left[HL], const uint8_t right[HL], uint8_t out[HL])
{
    uint8_t buf[1 + 2 * HL];

    /* One contiguous input: left or right may alias out. */
    buf[0] = NODE_PREFIX;
    memcpy(buf + 1, left, HL);
    memcpy(buf + 1 + HL, right, HL);
    return cf_sha256(buf, sizeof(buf), out);
}

void cf_merkle_empty_root(uint8_t out[HL]) { memcpy(out, EMPTY_ROOT, HL); }

/* ---- generation --------------------------------------------------------------------- */

/* A generator for one tree size n: complete subtrees come from the node source,
 * right-edge subtrees [a, n) are folded from n's frontier, each frontier node
 * fetched at most once. */
struct gen {
    cf_merkle_node_fn fn;
    void *ctx;
    uint64_t n;
    uint64_t have; /* bit L set: fr[L] loaded */
    uint8_t fr[64][HL];
};

static int frontier_node(struct gen *g, unsigned level, uint8_t out[HL])
{
    if (!((g->have >> level) & 1)) {
        /* The frontier node of bit L covers the 2^L leaves just before the
         * bits of n below L: index (n >> L) - 1 (bit L of n is set). */
        CF_GUARD(g->fn(g->ctx, level, (g->n >> level) - 1, g->fr[level]));
        g->have |= 1ull << level;
    }
    memcpy(out, g->fr[level], HL);
    return 0;
}

/* MTH(D[a:b]) for a subtree that occurs in the RFC 6962 recursion over D[0:n]:
 * either complete and aligned, or the right edge [a, n). */
static int subtree_hash(struct gen *g, uint64_t a, uint64_t b, uint8_t out[HL])
{
    uint64_t size = b - a;
    uint8_t acc[HL], node[HL];
    bool have_acc = false;
    unsigned t;

    CF_ENSURE(a < b && b <= g->n, CF_E_INTERNAL);
    if (is_pow2(size) && (a & (size - 1)) == 0) {
        unsigned level = (unsigned)__builtin_ctzll(size);
        return g->fn(g->ctx, level, a >> level, out);
    }
    /* Right edge: [a, n) is made of the frontier nodes of the bits of n below
     * t, where a == n with those bits cleared. */
    t = bit_len(size);
    CF_ENSURE(b == g->n && (g->n & ((1ull << t) - 1)) == size, CF_E_INTERNAL);
    for (unsigned level = 0; level < t; level++) {
        if (!((g->n >> level) & 1))
            continue;
        CF_GUARD(frontier_node(g, level, node));
        if (!have_acc) {
            memcpy(acc, node, HL);
            have_acc = true;
        } else {
            CF_GUARD(cf_merkle_node_hash(node, acc, acc));
        }
    }
    memcpy(out, acc, HL);
    return 0;
}

static void gen_init(struct gen *g, uint64_t n, cf_merkle_node_fn fn, void *ctx)
{
    g->fn = fn;
    g->ctx = ctx;
    g->n = n;
    g->have = 0;
}

int cf_merkle_root(uint64_t size, cf_merkle_node_fn fn, void *ctx, uint8_t out[HL])
{
    struct gen g;
    uint8_t r[HL];

    CF_ENSURE(fn != NULL && size <= CF_MERKLE_MAX_SIZE, CF_E_INVAL);
    if (size == 0) {
        cf_merkle_empty_root(out);
        return 0;
    }
    gen_init(&g, size, fn, ctx);
    CF_GUARD(subtree_hash(&g, 0, size, r));
    memcpy(out, r, HL);
    return 0;
}

int cf_merkle_inclusion_ranges(uint64_t index, uint64_t size,
                               cf_merkle_range ret[CF_MERKLE_MAX_PROOF], size_t *ret_len)
{
    cf_merkle_range down[CF_MERKLE_MAX_PROOF];
    uint64_t a = 0, b = size;
    size_t n = 0;

    CF_ENSURE(size <= CF_MERKLE_MAX_SIZE, CF_E_INVAL);
    if (index >= size)
        return cf_err_set(CF_E_RANGE, "leaf %llu is not in a tree of size %llu",
                          (unsigned long long)index, (unsigned long long)size);
    /* RFC 6962 §2.1.1: PATH(m, D[n]) = PATH(m, D[0:k]) : MTH(D[k:n]) if m < k,
     * else PATH(m - k, D[k:n]) : MTH(D[0:k]). Walk down collecting the
     * siblings; the proof lists them from the leaf up. */
    while (b - a > 1) {
        uint64_t k = split_point(b - a);
        CF_ENSURE(n < CF_MERKLE_MAX_PROOF, CF_E_INTERNAL);
        if (index < a + k) {
            down[n].start = a + k;
            down[n].end = b;
            b = a + k;
        } else {
            down[n].start = a;
            down[n].end = a + k;
            a += k;
        }
        n++;
    }
    for (size_t i = 0; i < n; i++)
        ret[i] = down[n - 1 - i];
    *ret_len = n;
    return 0;
}

int cf_merkle_consistency_ranges(uint64_t m, uint64_t n, cf_merkle_range ret[CF_MERKLE_MAX_PROOF],
                                 size_t *ret_len)
{
    cf_merkle_range down[CF_MERKLE_MAX_PROOF];
    uint64_t a = 0, b = n, mm = m;
    bool complete_old = true; /* the "b" flag of SUBPROOF */
    bool terminal = false;
    size_t k = 0, len = 0;

    CF_ENSURE(n <= CF_MERKLE_MAX_SIZE, CF_E_INVAL);
    if (m == 0 || m > n)
        return cf_err_set(CF_E_RANGE, "no consistency proof from size %llu to size %llu",
                          (unsigned long long)m, (unsigned long long)n);
    /* RFC 6962 §2.1.2:
     *   SUBPROOF(m, D[m], true)  = {}
     *   SUBPROOF(m, D[m], false) = {MTH(D[m])}
     *   m <= k: SUBPROOF(m, D[0:k], b) : MTH(D[k:n])
     *   m > k:  SUBPROOF(m - k, D[k:n], false) : MTH(D[0:k])
     * The inner elements come first; the outer siblings follow, inner to outer. */
    for (;;) {
        uint64_t size = b - a, split;
        if (mm == size) {
            terminal = !complete_old;
            break;
        }
        split = split_point(size);
        CF_ENSURE(k < CF_MERKLE_MAX_PROOF, CF_E_INTERNAL);
        if (mm <= split) {
            down[k].start = a + split;
            down[k].end = b;
            b = a + split;
        } else {
            down[k].start = a;
            down[k].end = a + split;
            a += split;
            mm -= split;
            complete_old = false;
        }
        k++;
    }
    CF_ENSURE(k + (terminal ? 1 : 0) <= CF_MERKLE_MAX_PROOF, CF_E_INTERNAL);
    if (terminal) {
        ret[len].start = a;
        ret[len].end = b;
        len++;
    }
    for (size_t i = 0; i < k; i++)
        ret[len++] = down[k - 1 - i];
    *ret_len = len;
    return 0;
}

static int fill_proof(uint64_t size, const cf_merkle_range *ranges, size_t len,
                      cf_merkle_node_fn fn, void *ctx, cf_merkle_proof *ret)
{
    struct gen g;
    cf_merkle_proof p; /* built aside: ret is only written on success */

    gen_init(&g, size, fn, ctx);
    p.len = len;
    for (size_t i = 0; i < len; i++)
        CF_GUARD(subtree_hash(&g, ranges[i].start, ranges[i].end, p.h[i]));
    memcpy(ret, &p, sizeof(p));
    return 0;
}

int cf_merkle_inclusion_proof(uint64_t index, uint64_t size, cf_merkle_node_fn fn, void *ctx,
                              cf_merkle_proof *ret)
{
    cf_merkle_range r[CF_MERKLE_MAX_PROOF];
    size_t len;

    CF_ENSURE(fn != NULL, CF_E_INVAL);
    CF_GUARD(cf_merkle_inclusion_ranges(index, size, r, &len));
    return fill_proof(size, r, len, fn, ctx, ret);
}

int cf_merkle_consistency_proof(uint64_t m, uint64_t n, cf_merkle_node_fn fn, void *ctx,
                                cf_merkle_proof *ret)
{
    cf_merkle_range r[CF_MERKLE_MAX_PROOF];
    size_t len;

    CF_ENSURE(fn != NULL, CF_E_INVAL);
    CF_GUARD(cf_merkle_consistency_ranges(m, n, r, &len));
    return fill_proof(n, r, len, fn, ctx, ret);
}

/* ---- verification ------------------------------------------------------------------- */

/* Right-shifts fn and sn together until fn's lowest bit is set or fn is 0. */
static void shift_to_set_bit(uint64_t *fn, uint64_t *sn)
{
    while ((*fn & 1) == 0 && *fn != 0) {
        *fn >>= 1;
        *sn >>= 1;
    }
}

int cf_merkle_verify_inclusion(const uint8_t leaf[HL], uint64_t index, uint64_t size,
                               const cf_merkle_proof *proof, const uint8_t root[HL])
{
    uint8_t r[HL];
    uint64_t fn, sn;

    /* RFC 9162 §2.1.3.2 step 1: the leaf must lie in the tree. */
    if (proof == NULL || proof->len > CF_MERKLE_MAX_PROOF || index >= size)
        return CF_E_VERIFY;
    /* Steps 2-3. */
    fn = index;
    sn = size - 1;
    memcpy(r, leaf, HL);
    /* Step 4. */
    for (size_t i = 0; i < proof->len; i++) {
        const uint8_t *p = proof->h[i];
        if (sn == 0)
            return CF_E_VERIFY; /* 4a: proof longer than the path */
        if ((fn & 1) || fn == sn) {
            /* 4b: p is a left sibling; a right-edge node with no sibling at
             * this level is skipped by shifting up to the next set bit. */
            CF_GUARD(cf_merkle_node_hash(p, r, r));
            if ((fn & 1) == 0)
                shift_to_set_bit(&fn, &sn);
        } else {
            CF_GUARD(cf_merkle_node_hash(r, p, r));
        }
        fn >>= 1;
        sn >>= 1;
    }
    /* Step 5: the whole path was used and it ends at the root. */
    return sn == 0 && cf_ct_eq(r, root, HL) ? 0 : CF_E_VERIFY;
}

int cf_merkle_verify_consistency(uint64_t m, uint64_t n, const uint8_t root_m[HL],
                                 const uint8_t root_n[HL], const cf_merkle_proof *proof)
{
    uint8_t fr[HL], sr[HL];
    const uint8_t *first;
    uint64_t fn, sn;
    size_t next;

    if (proof == NULL || proof->len > CF_MERKLE_MAX_PROOF || m > n)
        return CF_E_VERIFY;
    if (m == n) /* the same tree: nothing to prove, the roots must agree */
        return proof->len == 0 && cf_ct_eq(root_m, root_n, HL) ? 0 : CF_E_VERIFY;
    if (m == 0) /* the empty tree is a prefix of every tree */
        return proof->len == 0 ? 0 : CF_E_VERIFY;
    /* RFC 9162 §2.1.4.2 step 1. */
    if (proof->len == 0)
        return CF_E_VERIFY;
    /* Step 2: if m is a power of two the proof omits MTH(D[0:m]) (it is the old
     * root itself): the path starts with root_m. */
    if (is_pow2(m)) {
        first = root_m;
        next = 0;
    } else {
        first = proof->h[0];
        next = 1;
    }
    /* Steps 3-4. */
    fn = m - 1;
    sn = n - 1;
    while (fn & 1) {
        fn >>= 1;
        sn >>= 1;
    }
    /* Step 5. */
    memcpy(fr, first, HL);
    memcpy(sr, first, HL);
    /* Step 6. */
    for (; next < proof->len; next++) {
        const uint8_t *c = proof->h[next];
        if (sn == 0)
            return CF_E_VERIFY;
        if ((fn & 1) || fn == sn) {
            CF_GUARD(cf_merkle_node_hash(c, fr, fr));
            CF_GUARD(cf_merkle_node_hash(c, sr, sr));
            if ((fn & 1) == 0)
                shift_to_set_bit(&fn, &sn);
        } else {
            CF_GUARD(cf_merkle_node_hash(sr, c, sr));
        }
        fn >>= 1;
        sn >>= 1;
    }
    /* Step 7 (both comparisons always made: no early exit on the first). */
    {
        int ok_m = cf_ct_eq(fr, root_m, HL), ok_n = cf_ct_eq(sr, root_n, HL);
        return ok_m && ok_n && sn == 0 ? 0 : CF_E_VERIFY;
    }
}

int cf_merkle_proof_from_bytes(const uint8_t *data, size_t len, cf_merkle_proof *ret)
{
    CF_ENSURE(data != NULL || len == 0, CF_E_INVAL);
    if (len % HL != 0)
        return cf_err_set(CF_E_PARSE, "proof of %zu bytes is not a sequence of %d-byte hashes",
                          len, HL);
    if (len / HL > CF_MERKLE_MAX_PROOF)
        return cf_err_set(CF_E_TOO_LARGE, "proof of %zu hashes exceeds the limit of %d", len / HL,
                          CF_MERKLE_MAX_PROOF);
    ret->len = len / HL;
    if (len > 0)
        memcpy(ret->h, data, len);
    return 0;
}

/* ---- frontier ----------------------------------------------------------------------- */

void cf_merkle_frontier_init(cf_merkle_frontier *f) { memset(f, 0, sizeof(*f)); }

int cf_merkle_frontier_load(cf_merkle_frontier *f, uint64_t size, cf_merkle_node_fn fn, void *ctx)
{
    cf_merkle_frontier t; /* built aside: f is only written on success */

    CF_ENSURE(fn != NULL && size <= CF_MERKLE_MAX_SIZE, CF_E_INVAL);
    memset(&t, 0, sizeof(t));
    t.size = size;
    for (unsigned level = 0; level < 64; level++)
        if ((size >> level) & 1)
            CF_GUARD(fn(ctx, level, (size >> level) - 1, t.h[level]));
    memcpy(f, &t, sizeof(t));
    return 0;
}

int cf_merkle_frontier_append(cf_merkle_frontier *f, const uint8_t leaf[HL], cf_merkle_emit_fn emit,
                              void *ctx)
{
    uint8_t carry[HL];
    uint64_t s = f->size;
    unsigned level = 0;

    if (s >= CF_MERKLE_MAX_SIZE)
        return cf_err_set(CF_E_RANGE, "Merkle tree is full (%llu leaves)", (unsigned long long)s);
    memcpy(carry, leaf, HL);
    /* Each set low bit of the old size is a complete subtree that the new leaf
     * pairs up with (binary increment). Emit everything before touching f. */
    while ((s >> level) & 1) {
        CF_GUARD(cf_merkle_node_hash(f->h[level], carry, carry));
        level++;
        if (emit != NULL)
            CF_GUARD(emit(ctx, level, ((s + 1) >> level) - 1, carry));
    }
    memcpy(f->h[level], carry, HL);
    f->size = s + 1;
    return 0;
}

int cf_merkle_frontier_root(const cf_merkle_frontier *f, uint8_t out[HL])
{
    uint8_t acc[HL];
    bool have = false;

    if (f->size == 0) {
        cf_merkle_empty_root(out);
        return 0;
    }
    /* The smallest subtree is the deepest right edge; fold upwards (RFC 6962
     * §2.1 splits at the largest power of two, i.e. the highest set bit). */
    for (unsigned level = 0; level < 64; level++) {
        if (!((f->size >> level) & 1))
            continue;
        if (!have) {
            memcpy(acc, f->h[level], HL);
            have = true;
        } else {
            CF_GUARD(cf_merkle_node_hash(f->h[level], acc, acc));
        }
    }
    memcpy(out, acc, HL);
    return 0;
}

/* ---- in-memory node source ---------------------------------------------------------- */

void cf_merkle_mem_init(cf_merkle_mem *m, const uint8_t (*leaves)[HL], uint64_t n)
{
    memset(m, 0, sizeof(*m));
    m->leaves = leaves;
    m->n = n;
}

void cf_merkle_mem_free(cf_merkle_mem *m)
{
    for (unsigned level = 0; level < 64; level++) {
        free(m->levels[level]);
        m->levels[level] = NULL;
    }
}

int cf_merkle_mem_build(cf_merkle_mem *m)
{
    int rc = 0;

    for (unsigned level = 1; level < 64 && (m->n >> level) > 0; level++) {
        uint64_t count = m->n >> level;
        const uint8_t(*below)[HL] =
            level == 1 ? m->leaves : (const uint8_t(*)[HL])m->levels[level - 1];
        if (m->levels[level] != NULL)
            continue;
        m->levels[level] = malloc((size_t)count * HL);
        CF_ENSURE_OUT(m->levels[level] != NULL, CF_E_NOMEM);
        for (uint64_t i = 0; i < count; i++)
            CF_GUARD_OUT(cf_merkle_node_hash(below[2 * i], below[2 * i + 1], m->levels[level][i]));
    }
out:
    if (rc < 0)
        cf_merkle_mem_free(m);
    return rc;
}

static int mem_node_rec(const cf_merkle_mem *m, unsigned level, uint64_t index, uint8_t out[HL])
{
    uint8_t l[HL], r[HL];

    if (level == 0) {
        memcpy(out, m->leaves[index], HL);
        return 0;
    }
    if (m->levels[level] != NULL) {
        memcpy(out, m->levels[level][index], HL);
        return 0;
    }
    CF_GUARD(mem_node_rec(m, level - 1, 2 * index, l));
    CF_GUARD(mem_node_rec(m, level - 1, 2 * index + 1, r));
    return cf_merkle_node_hash(l, r, out);
}

int cf_merkle_mem_node(void *ctx, unsigned level, uint64_t index, uint8_t out[HL])
{
    const cf_merkle_mem *m = ctx;

    if (level >= 63 || index >= (m->n >> level))
        return cf_err_set(CF_E_RANGE, "no complete subtree at level %u index %llu in %llu leaves",
                          level, (unsigned long long)index, (unsigned long long)m->n);
    return mem_node_rec(m, level, index, out);
}
