/*
 * RFC 6962 Merkle tree: published reference vectors (the Certificate
 * Transparency 8-leaf tree, as in transparency-dev/merkle testonly/constants.go
 * and proof/verify_test.go), and property tests against an independent,
 * deliberately naive recursive implementation written here (different code:
 * plain recursion over the RFC 6962 definitions, proofs consumed from the end
 * instead of RFC 9162's bit arithmetic).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/parse.h"
#include "crypto/hash.h"
#include "merkle/merkle.h"
#include "test.h"

#define HL CF_MERKLE_HASH_LEN

static void unhex(const char *s, uint8_t out[HL])
{
    if (cf_hex_decode(s, out, HL) != 0)
        abort();
}

/* ---- the reference tree (RFC 6962 §2.1 test data) --------------------------------------- */

static const char *const ct_inputs[8] = {
    "", "00", "10", "2021", "3031", "40414243", "5051525354555657",
    "606162636465666768696a6b6c6d6e6f"};

/* Root of the tree of the first n inputs, n = 0..8. */
static const char *const ct_roots[9] = {
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"};

/* Complete subtrees of the 8-leaf tree: [level][index]. */
static const char *const ct_nodes[4][8] = {
    {"6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
     "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
     "0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7",
     "07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7",
     "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
     "4271a26be0d8a84f0bd54c8c302e7cb3a3b5d1fa6780a40bcce2873477dab658",
     "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
     "46f6ffadd3d06a09ff3c5860d2755c8b9819db7df44251788c7d8e3180de8eb1"},
    {"fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
     "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
     "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
     "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"},
    {"d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
     "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"},
    {"5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"}};

struct vec {
    uint64_t a, b; /* inclusion: index, size; consistency: m, n */
    size_t len;
    const char *h[3];
};

static const struct vec ct_inclusion[] = {
    {0, 1, 0, {NULL}},
    {0, 8, 3,
     {"96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
      "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
      "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"}},
    {5, 8, 3,
     {"bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
      "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
      "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"}},
    {2, 3, 1, {"fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"}},
    {1, 5, 3,
     {"6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
      "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
      "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"}},
};

static const struct vec ct_consistency[] = {
    {1, 1, 0, {NULL}},
    {1, 8, 3,
     {"96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
      "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
      "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"}},
    {6, 8, 3,
     {"0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
      "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
      "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"}},
    {2, 5, 2,
     {"5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
      "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"}},
    {6, 7, 3,
     {"0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
      "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
      "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"}},
};

static uint8_t ct_leaf[8][HL];

static void ct_setup(void)
{
    for (int i = 0; i < 8; i++) {
        uint8_t in[16];
        size_t n = strlen(ct_inputs[i]) / 2;
        if (cf_hex_decode(ct_inputs[i], in, n) != 0 || cf_merkle_leaf_hash(in, n, ct_leaf[i]) != 0)
            abort();
    }
}

static void vec_proof(const struct vec *v, cf_merkle_proof *p)
{
    memset(p, 0, sizeof(*p));
    p->len = v->len;
    for (size_t i = 0; i < v->len; i++)
        unhex(v->h[i], p->h[i]);
}

static void test_hashing_vectors(void)
{
    uint8_t h[HL], want[HL];

    cf_merkle_empty_root(h);
    unhex(ct_roots[0], want);
    T_MEMEQ(h, want, HL);
    T_OK(cf_sha256("", 0, want)); /* it is SHA-256 of "" */
    T_MEMEQ(h, want, HL);
    /* leaf hash of "" is the one-leaf root; the prefix 0x00 matters */
    T_OK(cf_merkle_leaf_hash("", 0, h));
    unhex(ct_roots[1], want);
    T_MEMEQ(h, want, HL);
    T_OK(cf_sha256("", 0, want));
    T_ASSERT(memcmp(h, want, HL) != 0);
    /* interior node of leaves 0 and 1 */
    T_OK(cf_merkle_node_hash(ct_leaf[0], ct_leaf[1], h));
    unhex(ct_roots[2], want);
    T_MEMEQ(h, want, HL);
    T_OK(cf_merkle_node_hash(ct_leaf[1], ct_leaf[0], h)); /* order matters */
    T_ASSERT(memcmp(h, want, HL) != 0);
    T_ERR(cf_merkle_leaf_hash(NULL, 1, h), CF_E_INVAL);
}

static void test_roots_and_nodes_vectors(void)
{
    cf_merkle_mem m;
    cf_merkle_frontier f;
    uint8_t h[HL], want[HL];

    for (uint64_t n = 0; n <= 8; n++) {
        cf_merkle_mem_init(&m, (const uint8_t(*)[HL])ct_leaf, n);
        T_OK(cf_merkle_root(n, cf_merkle_mem_node, &m, h));
        unhex(ct_roots[n], want);
        T_MEMEQ(h, want, HL);
    }
    /* every complete subtree, from the node source and as emitted by appends */
    cf_merkle_mem_init(&m, (const uint8_t(*)[HL])ct_leaf, 8);
    for (unsigned level = 0; level < 4; level++)
        for (uint64_t i = 0; i < (8u >> level); i++) {
            T_OK(cf_merkle_mem_node(&m, level, i, h));
            unhex(ct_nodes[level][i], want);
            T_MEMEQ(h, want, HL);
        }
    T_ERR(cf_merkle_mem_node(&m, 0, 8, h), CF_E_RANGE);
    T_ERR(cf_merkle_mem_node(&m, 3, 1, h), CF_E_RANGE);
    T_ERR(cf_merkle_mem_node(&m, 4, 0, h), CF_E_RANGE);
    /* frontier roots at every size */
    cf_merkle_frontier_init(&f);
    T_OK(cf_merkle_frontier_root(&f, h));
    unhex(ct_roots[0], want);
    T_MEMEQ(h, want, HL);
    for (int i = 0; i < 8; i++) {
        T_OK(cf_merkle_frontier_append(&f, ct_leaf[i], NULL, NULL));
        T_OK(cf_merkle_frontier_root(&f, h));
        unhex(ct_roots[i + 1], want);
        T_MEMEQ(h, want, HL);
    }
}

static void test_proof_vectors(void)
{
    cf_merkle_mem m;
    cf_merkle_proof p, want;
    uint8_t root[HL], root2[HL];

    cf_merkle_mem_init(&m, (const uint8_t(*)[HL])ct_leaf, 8);
    for (size_t i = 0; i < CF_ARRAY_LEN(ct_inclusion); i++) {
        const struct vec *v = &ct_inclusion[i];
        vec_proof(v, &want);
        T_OK(cf_merkle_inclusion_proof(v->a, v->b, cf_merkle_mem_node, &m, &p));
        T_EQ(p.len, want.len);
        T_MEMEQ(p.h, want.h, p.len * HL);
        unhex(ct_roots[v->b], root);
        T_OK(cf_merkle_verify_inclusion(ct_leaf[v->a], v->a, v->b, &want, root));
        T_ERR(cf_merkle_verify_inclusion(ct_leaf[(v->a + 1) % 8], v->a, v->b, &want, root),
              CF_E_VERIFY);
    }
    for (size_t i = 0; i < CF_ARRAY_LEN(ct_consistency); i++) {
        const struct vec *v = &ct_consistency[i];
        vec_proof(v, &want);
        T_OK(cf_merkle_consistency_proof(v->a, v->b, cf_merkle_mem_node, &m, &p));
        T_EQ(p.len, want.len);
        T_MEMEQ(p.h, want.h, p.len * HL);
        unhex(ct_roots[v->a], root);
        unhex(ct_roots[v->b], root2);
        T_OK(cf_merkle_verify_consistency(v->a, v->b, root, root2, &want));
        if (v->a != v->b)
            T_ERR(cf_merkle_verify_consistency(v->a, v->b, root2, root, &want), CF_E_VERIFY);
    }
}

/* Edge cases of the verifiers (transparency-dev/merkle proof/verify_test.go). */
static void test_verify_edges(void)
{
    cf_merkle_proof empty = {0}, one = {0};
    uint8_t e[HL], r1[HL], r2[HL], leaf[HL];

    cf_merkle_empty_root(e);
    unhex(ct_roots[1], r1);
    unhex(ct_roots[2], r2);
    memcpy(leaf, ct_leaf[0], HL);
    one.len = 1;
    memcpy(one.h[0], e, HL);
    /* inclusion: no leaf is in an empty tree; index must be < size */
    T_ERR(cf_merkle_verify_inclusion(leaf, 0, 0, &empty, e), CF_E_VERIFY);
    T_ERR(cf_merkle_verify_inclusion(leaf, 1, 1, &empty, r1), CF_E_VERIFY);
    T_ERR(cf_merkle_verify_inclusion(leaf, 2, 1, &empty, r1), CF_E_VERIFY);
    T_OK(cf_merkle_verify_inclusion(leaf, 0, 1, &empty, r1)); /* one leaf: root = leaf */
    T_ERR(cf_merkle_verify_inclusion(leaf, 0, 1, &one, r1), CF_E_VERIFY);
    T_ERR(cf_merkle_verify_inclusion(leaf, 0, 1, NULL, r1), CF_E_VERIFY);
    /* consistency */
    T_OK(cf_merkle_verify_consistency(0, 0, e, e, &empty));
    T_ERR(cf_merkle_verify_consistency(0, 0, e, r1, &empty), CF_E_VERIFY);
    T_OK(cf_merkle_verify_consistency(0, 1, e, r1, &empty));
    T_ERR(cf_merkle_verify_consistency(0, 1, e, r1, &one), CF_E_VERIFY);
    T_OK(cf_merkle_verify_consistency(1, 1, r1, r1, &empty));
    T_ERR(cf_merkle_verify_consistency(1, 1, r1, r2, &empty), CF_E_VERIFY);
    T_ERR(cf_merkle_verify_consistency(1, 1, r1, r1, &one), CF_E_VERIFY);
    T_ERR(cf_merkle_verify_consistency(1, 0, r1, e, &empty), CF_E_VERIFY); /* time travel */
    T_ERR(cf_merkle_verify_consistency(2, 1, r2, r1, &empty), CF_E_VERIFY);
    T_ERR(cf_merkle_verify_consistency(1, 2, r1, r2, &empty), CF_E_VERIFY); /* empty proof */
    one.len = CF_MERKLE_MAX_PROOF + 1;
    T_ERR(cf_merkle_verify_consistency(1, 2, r1, r2, &one), CF_E_VERIFY);
    T_ERR(cf_merkle_verify_inclusion(leaf, 0, 2, &one, r2), CF_E_VERIFY);
}

/* ---- independent reference implementation ------------------------------------------------ */

static uint64_t ref_split(uint64_t n)
{
    uint64_t k = 1;
    while (k * 2 < n)
        k *= 2;
    return k;
}

static void ref_node(const uint8_t l[HL], const uint8_t r[HL], uint8_t out[HL])
{
    uint8_t buf[1 + 2 * HL];
    buf[0] = 1;
    memcpy(buf + 1, l, HL);
    memcpy(buf + 1 + HL, r, HL);
    if (cf_sha256(buf, sizeof(buf), out) != 0)
        abort();
}

/* MTH(D[a:b]), b > a */
static void ref_mth(const uint8_t (*d)[HL], uint64_t a, uint64_t b, uint8_t out[HL])
{
    uint8_t l[HL], r[HL];
    uint64_t k;

    if (b - a == 1) {
        memcpy(out, d[a], HL);
        return;
    }
    k = ref_split(b - a);
    ref_mth(d, a, a + k, l);
    ref_mth(d, a + k, b, r);
    ref_node(l, r, out);
}

/* RFC 6962 §2.1.1 PATH(m, D[a:b]) appended to p */
static void ref_path(const uint8_t (*d)[HL], uint64_t m, uint64_t a, uint64_t b, cf_merkle_proof *p)
{
    uint64_t k;

    if (b - a <= 1)
        return;
    k = ref_split(b - a);
    if (m < k) {
        ref_path(d, m, a, a + k, p);
        ref_mth(d, a + k, b, p->h[p->len++]);
    } else {
        ref_path(d, m - k, a + k, b, p);
        ref_mth(d, a, a + k, p->h[p->len++]);
    }
}

/* RFC 6962 §2.1.2 SUBPROOF(m, D[a:b], flag) appended to p */
static void ref_subproof(const uint8_t (*d)[HL], uint64_t m, uint64_t a, uint64_t b, int flag,
                         cf_merkle_proof *p)
{
    uint64_t k;

    if (m == b - a) {
        if (!flag)
            ref_mth(d, a, b, p->h[p->len++]);
        return;
    }
    k = ref_split(b - a);
    if (m <= k) {
        ref_subproof(d, m, a, a + k, flag, p);
        ref_mth(d, a + k, b, p->h[p->len++]);
    } else {
        ref_subproof(d, m - k, a + k, b, 0, p);
        ref_mth(d, a, a + k, p->h[p->len++]);
    }
}

/* Root implied by an inclusion proof, by the same recursion (proof consumed from
 * the end: the outermost sibling is last). 0 and the root, or -1 if the proof
 * does not have the shape of PATH(m, D[n]). */
static int ref_incl_rec(uint64_t m, uint64_t n, const uint8_t leaf[HL], const cf_merkle_proof *p,
                        size_t *end, uint8_t out[HL])
{
    uint8_t inner[HL], sib[HL];
    uint64_t k;

    if (n == 1) {
        memcpy(out, leaf, HL);
        return 0;
    }
    if (*end == 0)
        return -1;
    memcpy(sib, p->h[--*end], HL);
    k = ref_split(n);
    if (m < k) {
        if (ref_incl_rec(m, k, leaf, p, end, inner) != 0)
            return -1;
        ref_node(inner, sib, out);
    } else {
        if (ref_incl_rec(m - k, n - k, leaf, p, end, inner) != 0)
            return -1;
        ref_node(sib, inner, out);
    }
    return 0;
}

static int ref_verify_inclusion(const uint8_t leaf[HL], uint64_t m, uint64_t n,
                                const cf_merkle_proof *p, const uint8_t root[HL])
{
    uint8_t r[HL];
    size_t end = p->len;

    if (m >= n || n > (1ull << 62))
        return -1;
    if (ref_incl_rec(m, n, leaf, p, &end, r) != 0 || end != 0)
        return -1;
    return memcmp(r, root, HL) == 0 ? 0 : -1;
}

static int ref_cons_rec(uint64_t m, uint64_t n, int flag, const uint8_t root_m[HL],
                        const cf_merkle_proof *p, size_t *end, uint8_t old[HL], uint8_t new_[HL])
{
    uint8_t o[HL], nw[HL], sib[HL];
    uint64_t k;

    if (m == n) {
        if (flag) {
            memcpy(old, root_m, HL);
            memcpy(new_, root_m, HL);
            return 0;
        }
        if (*end == 0)
            return -1;
        memcpy(old, p->h[--*end], HL);
        memcpy(new_, old, HL);
        return 0;
    }
    if (*end == 0)
        return -1;
    memcpy(sib, p->h[--*end], HL);
    k = ref_split(n);
    if (m <= k) {
        if (ref_cons_rec(m, k, flag, root_m, p, end, o, nw) != 0)
            return -1;
        memcpy(old, o, HL);
        ref_node(nw, sib, new_);
    } else {
        if (ref_cons_rec(m - k, n - k, 0, root_m, p, end, o, nw) != 0)
            return -1;
        ref_node(sib, o, old);
        ref_node(sib, nw, new_);
    }
    return 0;
}

static int ref_verify_consistency(uint64_t m, uint64_t n, const uint8_t rm[HL],
                                  const uint8_t rn[HL], const cf_merkle_proof *p)
{
    uint8_t o[HL], nw[HL];
    size_t end = p->len;

    if (m > n || n > (1ull << 62))
        return -1;
    if (m == 0)
        return p->len == 0 ? 0 : -1;
    if (ref_cons_rec(m, n, 1, rm, p, &end, o, nw) != 0 || end != 0)
        return -1;
    return memcmp(o, rm, HL) == 0 && memcmp(nw, rn, HL) == 0 ? 0 : -1;
}

/* ---- property tests ----------------------------------------------------------------------- */

#define PMAX 70

static uint8_t pleaf[PMAX][HL];
static uint8_t proot[PMAX + 1][HL];

static void prop_setup(void)
{
    for (int i = 0; i < PMAX; i++) {
        uint8_t in[3] = {(uint8_t)i, (uint8_t)(i * 7), 0xa5};
        if (cf_merkle_leaf_hash(in, (size_t)(i % 3) + 1, pleaf[i]) != 0)
            abort();
    }
    cf_merkle_empty_root(proot[0]);
    for (uint64_t n = 1; n <= PMAX; n++)
        ref_mth((const uint8_t(*)[HL])pleaf, 0, n, proot[n]);
}

/* Bits flipped in one 32-byte hash: all 256 for trees of up to 8 leaves (every
 * proof shape of up to 3 levels), else 6 spread over the hash and over bit
 * positions (a flipped bit changes the hashed value wherever it is: what varies
 * between trees is which element and which side, and every element is flipped). */
static int flip_bits(uint64_t n, int k) { return n <= 8 ? k : k * 42 + (k % 8); }
static int flip_count(uint64_t n) { return n <= 8 ? 256 : 6; }

/* Bits flipped in an index or size: every bit a size <= 70 uses, and high ones. */
static const int num_bits[] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 13, 31, 32, 40, 61, 62, 63};

static void test_prop_roots_and_frontier(void)
{
    cf_merkle_frontier f, g;
    cf_merkle_mem m, mb;
    uint8_t h[HL], h2[HL];

    cf_merkle_frontier_init(&f);
    cf_merkle_mem_init(&mb, (const uint8_t(*)[HL])pleaf, PMAX);
    T_OK(cf_merkle_mem_build(&mb));
    for (uint64_t n = 0; n <= PMAX; n++) {
        cf_merkle_mem_init(&m, (const uint8_t(*)[HL])pleaf, n);
        T_OK(cf_merkle_root(n, cf_merkle_mem_node, &m, h));
        T_MEMEQ(h, proot[n], HL);
        T_OK(cf_merkle_frontier_root(&f, h));
        T_MEMEQ(h, proot[n], HL);
        /* a frontier loaded from stored nodes equals the appended one */
        T_OK(cf_merkle_frontier_load(&g, n, cf_merkle_mem_node, &mb));
        T_EQ(g.size, n);
        T_OK(cf_merkle_frontier_root(&g, h2));
        T_MEMEQ(h2, proot[n], HL);
        if (n < PMAX)
            T_OK(cf_merkle_frontier_append(&f, pleaf[n], NULL, NULL));
    }
    cf_merkle_mem_free(&mb);
}

struct emitted {
    int count;
    int bad;
};

static int check_emit(void *ctx, unsigned level, uint64_t index, const uint8_t hash[HL])
{
    struct emitted *e = ctx;
    uint8_t want[HL];

    ref_mth((const uint8_t(*)[HL])pleaf, index << level, (index + 1) << level, want);
    e->count++;
    if (level == 0 || memcmp(want, hash, HL) != 0)
        e->bad++;
    return 0;
}

static int fail_emit(void *ctx, unsigned level, uint64_t index, const uint8_t hash[HL])
{
    (void)ctx;
    (void)level;
    (void)index;
    (void)hash;
    return CF_E_STORE;
}

static void test_frontier_emits(void)
{
    cf_merkle_frontier f, before;
    struct emitted e = {0, 0};

    cf_merkle_frontier_init(&f);
    for (int i = 0; i < PMAX; i++)
        T_OK(cf_merkle_frontier_append(&f, pleaf[i], check_emit, &e));
    /* every complete subtree above the leaves, exactly once: sum of n >> L */
    T_EQ(e.count, 35 + 17 + 8 + 4 + 2 + 1);
    T_EQ(e.bad, 0);
    /* a failing emit leaves the frontier as it was (at size 71 = 0b1000111 the
     * next leaf completes three subtrees) */
    T_OK(cf_merkle_frontier_append(&f, pleaf[0], NULL, NULL));
    memcpy(&before, &f, sizeof(f));
    T_ERR(cf_merkle_frontier_append(&f, pleaf[0], fail_emit, NULL), CF_E_STORE);
    T_MEMEQ(&f, &before, sizeof(f));
    f.size = CF_MERKLE_MAX_SIZE;
    T_ERR(cf_merkle_frontier_append(&f, pleaf[0], NULL, NULL), CF_E_RANGE);
}

static void test_prop_inclusion(void)
{
    cf_merkle_mem m;
    long checked = 0, size_index_accepts = 0;

    cf_merkle_mem_init(&m, (const uint8_t(*)[HL])pleaf, PMAX);
    T_OK(cf_merkle_mem_build(&m));
    for (uint64_t n = 1; n <= PMAX; n++) {
        for (uint64_t i = 0; i < n; i++) {
            cf_merkle_proof p, want = {0}, bad;
            uint8_t root[HL];
            cf_merkle_range r[CF_MERKLE_MAX_PROOF];
            size_t rl;

            T_OK(cf_merkle_inclusion_proof(i, n, cf_merkle_mem_node, &m, &p));
            ref_path((const uint8_t(*)[HL])pleaf, i, 0, n, &want);
            T_ASSERT_MSG(p.len == want.len && memcmp(p.h, want.h, p.len * HL) == 0,
                         "PATH(%llu, D[%llu]) differs from the reference", (unsigned long long)i,
                         (unsigned long long)n);
            /* the ranges name exactly the subtrees whose hashes the proof holds */
            T_OK(cf_merkle_inclusion_ranges(i, n, r, &rl));
            T_EQ(rl, p.len);
            for (size_t k = 0; k < rl; k++) {
                uint8_t h[HL];
                ref_mth((const uint8_t(*)[HL])pleaf, r[k].start, r[k].end, h);
                T_MEMEQ(h, p.h[k], HL);
            }
            T_OK(cf_merkle_verify_inclusion(pleaf[i], i, n, &p, proot[n]));
            T_OK(ref_verify_inclusion(pleaf[i], i, n, &p, proot[n]));
            /* every flipped bit of a proof element or of the root fails */
            for (size_t k = 0; k < p.len; k++)
                for (int b = 0; b < flip_count(n); b++) {
                    int bit = flip_bits(n, b);
                    bad = p;
                    bad.h[k][bit / 8] ^= (uint8_t)(1u << (bit % 8));
                    T_ERR(cf_merkle_verify_inclusion(pleaf[i], i, n, &bad, proot[n]), CF_E_VERIFY);
                    checked++;
                }
            for (int b = 0; b < flip_count(n); b++) {
                int bit = flip_bits(n, b);
                memcpy(root, proot[n], HL);
                root[bit / 8] ^= (uint8_t)(1u << (bit % 8));
                T_ERR(cf_merkle_verify_inclusion(pleaf[i], i, n, &p, root), CF_E_VERIFY);
                T_ERR(cf_merkle_verify_inclusion(root, i, n, &p, proot[n]), CF_E_VERIFY);
                checked += 2;
            }
            /* a changed index or size: the verdict is exactly the reference's (it can
             * only accept when the proof has the same shape AND yields this root,
             * which for the index never happens; for the size, the signed tree head
             * binds the size in the audit log) */
            for (size_t nb = 0; nb < CF_ARRAY_LEN(num_bits); nb++) {
                int b = num_bits[nb];
                uint64_t i2 = i ^ (1ull << b), n2 = n ^ (1ull << b);
                int lib = cf_merkle_verify_inclusion(pleaf[i], i2, n, &p, proot[n]);
                T_ERR(lib, CF_E_VERIFY);
                T_ASSERT(ref_verify_inclusion(pleaf[i], i2, n, &p, proot[n]) != 0);
                lib = cf_merkle_verify_inclusion(pleaf[i], i, n2, &p, proot[n]);
                T_EQ(lib == 0, ref_verify_inclusion(pleaf[i], i, n2, &p, proot[n]) == 0);
                size_index_accepts += lib == 0;
                checked += 2;
            }
            /* a missing, extra or reordered element fails */
            if (p.len > 0) {
                bad = p;
                bad.len--;
                T_ERR(cf_merkle_verify_inclusion(pleaf[i], i, n, &bad, proot[n]), CF_E_VERIFY);
            }
            bad = p;
            memcpy(bad.h[bad.len], proot[n], HL);
            bad.len++;
            T_ERR(cf_merkle_verify_inclusion(pleaf[i], i, n, &bad, proot[n]), CF_E_VERIFY);
            if (p.len > 1 && memcmp(p.h[0], p.h[1], HL) != 0) {
                bad = p;
                memcpy(bad.h[0], p.h[1], HL);
                memcpy(bad.h[1], p.h[0], HL);
                T_ERR(cf_merkle_verify_inclusion(pleaf[i], i, n, &bad, proot[n]), CF_E_VERIFY);
            }
        }
    }
    cf_merkle_mem_free(&m);
    fprintf(stderr, "  # inclusion: %ld altered proofs rejected; %ld size flips with an "
                    "equal-shape path accepted, as by the reference\n",
            checked, size_index_accepts);
}

static void test_prop_consistency(void)
{
    cf_merkle_mem m;
    long checked = 0, size_accepts = 0;

    cf_merkle_mem_init(&m, (const uint8_t(*)[HL])pleaf, PMAX);
    T_OK(cf_merkle_mem_build(&m));
    for (uint64_t n = 1; n <= PMAX; n++) {
        for (uint64_t k = 1; k <= n; k++) {
            cf_merkle_proof p, want = {0}, bad;
            cf_merkle_range r[CF_MERKLE_MAX_PROOF];
            uint8_t root[HL];
            size_t rl;

            T_OK(cf_merkle_consistency_proof(k, n, cf_merkle_mem_node, &m, &p));
            ref_subproof((const uint8_t(*)[HL])pleaf, k, 0, n, 1, &want);
            T_ASSERT_MSG(p.len == want.len && memcmp(p.h, want.h, p.len * HL) == 0,
                         "PROOF(%llu, D[%llu]) differs from the reference", (unsigned long long)k,
                         (unsigned long long)n);
            T_OK(cf_merkle_consistency_ranges(k, n, r, &rl));
            T_EQ(rl, p.len);
            for (size_t j = 0; j < rl; j++) {
                uint8_t h[HL];
                ref_mth((const uint8_t(*)[HL])pleaf, r[j].start, r[j].end, h);
                T_MEMEQ(h, p.h[j], HL);
            }
            T_OK(cf_merkle_verify_consistency(k, n, proot[k], proot[n], &p));
            T_OK(ref_verify_consistency(k, n, proot[k], proot[n], &p));
            if (k == n)
                continue; /* empty proof: only the roots, checked below via sizes */
            for (size_t j = 0; j < p.len; j++)
                for (int b = 0; b < flip_count(n); b++) {
                    int bit = flip_bits(n, b);
                    bad = p;
                    bad.h[j][bit / 8] ^= (uint8_t)(1u << (bit % 8));
                    T_ERR(cf_merkle_verify_consistency(k, n, proot[k], proot[n], &bad),
                          CF_E_VERIFY);
                    checked++;
                }
            for (int b = 0; b < flip_count(n); b++) {
                int bit = flip_bits(n, b);
                memcpy(root, proot[k], HL);
                root[bit / 8] ^= (uint8_t)(1u << (bit % 8));
                T_ERR(cf_merkle_verify_consistency(k, n, root, proot[n], &p), CF_E_VERIFY);
                memcpy(root, proot[n], HL);
                root[bit / 8] ^= (uint8_t)(1u << (bit % 8));
                T_ERR(cf_merkle_verify_consistency(k, n, proot[k], root, &p), CF_E_VERIFY);
                checked += 2;
            }
            for (size_t nb = 0; nb < CF_ARRAY_LEN(num_bits); nb++) {
                int b = num_bits[nb];
                uint64_t k2 = k ^ (1ull << b), n2 = n ^ (1ull << b);
                int lib = cf_merkle_verify_consistency(k2, n, proot[k], proot[n], &p);
                T_EQ(lib == 0, ref_verify_consistency(k2, n, proot[k], proot[n], &p) == 0);
                size_accepts += lib == 0;
                lib = cf_merkle_verify_consistency(k, n2, proot[k], proot[n], &p);
                T_EQ(lib == 0, ref_verify_consistency(k, n2, proot[k], proot[n], &p) == 0);
                size_accepts += lib == 0;
                checked += 2;
            }
            bad = p;
            bad.len--;
            T_ERR(cf_merkle_verify_consistency(k, n, proot[k], proot[n], &bad), CF_E_VERIFY);
            bad = p;
            memcpy(bad.h[bad.len], proot[n], HL);
            bad.len++;
            T_ERR(cf_merkle_verify_consistency(k, n, proot[k], proot[n], &bad), CF_E_VERIFY);
            /* swapped roots */
            T_ERR(cf_merkle_verify_consistency(k, n, proot[n], proot[k], &p), CF_E_VERIFY);
        }
    }
    cf_merkle_mem_free(&m);
    fprintf(stderr, "  # consistency: %ld altered proofs rejected; %ld size flips with an "
                    "equal-shape proof accepted, as by the reference\n",
            checked, size_accepts);
}

/* ---- a big tree through a counting node source: O(log n) reads ----------------------------- */

struct counting {
    long reads;
    int fail_level; /* -1: never */
};

static int synth_node(void *ctx, unsigned level, uint64_t index, uint8_t out[HL])
{
    struct counting *c = ctx;
    uint8_t in[9];

    c->reads++;
    if ((int)level == c->fail_level)
        return CF_E_NOT_FOUND;
    in[0] = (uint8_t)level;
    for (int i = 0; i < 8; i++)
        in[1 + i] = (uint8_t)(index >> (8 * i));
    return cf_sha256(in, sizeof(in), out);
}

static void test_big_tree_reads(void)
{
    const uint64_t sizes[] = {(1ull << 40) + 12345, (1ull << 62), 1000003, 3, 1ull << 20};
    struct counting c = {0, -1};
    cf_merkle_proof p;
    uint8_t root[HL];

    for (size_t s = 0; s < CF_ARRAY_LEN(sizes); s++) {
        uint64_t n = sizes[s];
        int pop = __builtin_popcountll(n);
        uint64_t idx[] = {0, n / 3, n - 1};
        for (size_t j = 0; j < CF_ARRAY_LEN(idx); j++) {
            c.reads = 0;
            T_OK(cf_merkle_inclusion_proof(idx[j], n, synth_node, &c, &p));
            T_ASSERT(p.len <= 63);
            T_ASSERT_MSG(c.reads <= (long)p.len + pop, "%ld reads for a proof of %zu in size %llu",
                         c.reads, p.len, (unsigned long long)n);
            if (idx[j] + 1 < n) {
                c.reads = 0;
                T_OK(cf_merkle_consistency_proof(idx[j] + 1, n, synth_node, &c, &p));
                T_ASSERT(c.reads <= (long)p.len + pop);
            }
        }
        c.reads = 0;
        T_OK(cf_merkle_root(n, synth_node, &c, root));
        T_EQ(c.reads, pop);
    }
    /* sizes beyond the limit, bad indexes */
    T_ERR(cf_merkle_root(CF_MERKLE_MAX_SIZE + 1, synth_node, &c, root), CF_E_INVAL);
    T_ERR(cf_merkle_inclusion_proof(5, 5, synth_node, &c, &p), CF_E_RANGE);
    T_ERR(cf_merkle_inclusion_proof(0, 0, synth_node, &c, &p), CF_E_RANGE);
    T_ERR(cf_merkle_consistency_proof(0, 5, synth_node, &c, &p), CF_E_RANGE);
    T_ERR(cf_merkle_consistency_proof(6, 5, synth_node, &c, &p), CF_E_RANGE);
    T_ERR(cf_merkle_inclusion_proof(0, 5, NULL, &c, &p), CF_E_INVAL);
}

/* A failing node source fails the operation and leaves the output untouched. */
static void test_node_errors(void)
{
    struct counting c = {0, 0};
    cf_merkle_proof p, before;
    cf_merkle_frontier f, fb;
    uint8_t root[HL], rb[HL];

    memset(&p, 0x5a, sizeof(p));
    before = p;
    T_ERR(cf_merkle_inclusion_proof(3, 8, synth_node, &c, &p), CF_E_NOT_FOUND);
    T_MEMEQ(&p, &before, sizeof(p));
    c.fail_level = 1;
    T_ERR(cf_merkle_consistency_proof(3, 7, synth_node, &c, &p), CF_E_NOT_FOUND);
    T_MEMEQ(&p, &before, sizeof(p));
    memset(root, 7, HL);
    memcpy(rb, root, HL);
    T_ERR(cf_merkle_root(6, synth_node, &c, root), CF_E_NOT_FOUND);
    T_MEMEQ(root, rb, HL);
    memset(&f, 3, sizeof(f));
    fb = f;
    T_ERR(cf_merkle_frontier_load(&f, 6, synth_node, &c), CF_E_NOT_FOUND);
    T_MEMEQ(&f, &fb, sizeof(f));
}

static void test_proof_from_bytes(void)
{
    uint8_t buf[(CF_MERKLE_MAX_PROOF + 1) * HL];
    cf_merkle_proof p;

    memset(buf, 0xab, sizeof(buf));
    T_OK(cf_merkle_proof_from_bytes(buf, 0, &p));
    T_EQ(p.len, 0);
    T_OK(cf_merkle_proof_from_bytes(buf, 3 * HL, &p));
    T_EQ(p.len, 3);
    T_EQ(p.h[2][31], 0xab);
    T_OK(cf_merkle_proof_from_bytes(buf, CF_MERKLE_MAX_PROOF * HL, &p));
    T_EQ(p.len, CF_MERKLE_MAX_PROOF);
    T_ERR(cf_merkle_proof_from_bytes(buf, 33, &p), CF_E_PARSE);
    T_ERR(cf_merkle_proof_from_bytes(buf, 31, &p), CF_E_PARSE);
    T_ERR(cf_merkle_proof_from_bytes(buf, sizeof(buf), &p), CF_E_TOO_LARGE);
    T_ERR(cf_merkle_proof_from_bytes(NULL, 32, &p), CF_E_INVAL);
}

/* The valid seeds of fuzz_proof_verify were computed with a separate Python
 * implementation of RFC 6962 over leaves {i, 0x5a}, i < 37: they must verify
 * here, and be what the generator makes. */
static void test_independent_seeds(void)
{
    static const char *const names[] = {"incl-valid-0-37",  "incl-valid-17-37", "incl-valid-36-37",
                                        "incl-valid-5-8",   "incl-valid-0-1",   "cons-valid-1-37",
                                        "cons-valid-8-37",  "cons-valid-13-37", "cons-valid-36-37",
                                        "cons-valid-6-8"};
    uint8_t leaves[37][HL];
    cf_merkle_mem m;

    for (int i = 0; i < 37; i++) {
        uint8_t in[2] = {(uint8_t)i, 0x5a};
        T_OK(cf_merkle_leaf_hash(in, 2, leaves[i]));
    }
    cf_merkle_mem_init(&m, (const uint8_t(*)[HL])leaves, 37);
    for (size_t k = 0; k < CF_ARRAY_LEN(names); k++) {
        char path[512];
        unsigned char *d;
        size_t len;
        uint64_t a = 0, b = 0;
        cf_merkle_proof p, want;
        uint8_t ra[HL], rb[HL];

        (void)snprintf(path, sizeof(path), "%s/fuzz/corpus/fuzz_proof_verify/%s", COFFER_SOURCE_DIR,
                       names[k]);
        d = t_read_file(path, &len);
        T_ASSERT(len >= 17);
        for (int i = 7; i >= 0; i--) {
            a = (a << 8) | d[1 + i];
            b = (b << 8) | d[9 + i];
        }
        T_OK(cf_merkle_proof_from_bytes(d + 17, len - 17, &p));
        T_OK(cf_merkle_root(b, cf_merkle_mem_node, &m, rb));
        if (d[0] == 0) {
            T_OK(cf_merkle_verify_inclusion(leaves[a], a, b, &p, rb));
            T_OK(cf_merkle_inclusion_proof(a, b, cf_merkle_mem_node, &m, &want));
        } else {
            T_OK(cf_merkle_root(a, cf_merkle_mem_node, &m, ra));
            T_OK(cf_merkle_verify_consistency(a, b, ra, rb, &p));
            T_OK(cf_merkle_consistency_proof(a, b, cf_merkle_mem_node, &m, &want));
        }
        T_EQ(want.len, p.len);
        T_MEMEQ(want.h, p.h, p.len * HL);
        free(d);
    }
}

int main(void)
{
    ct_setup();
    prop_setup();
    T_RUN(test_hashing_vectors);
    T_RUN(test_roots_and_nodes_vectors);
    T_RUN(test_proof_vectors);
    T_RUN(test_verify_edges);
    T_RUN(test_prop_roots_and_frontier);
    T_RUN(test_frontier_emits);
    T_RUN(test_prop_inclusion);
    T_RUN(test_prop_consistency);
    T_RUN(test_big_tree_reads);
    T_RUN(test_node_errors);
    T_RUN(test_proof_from_bytes);
    T_RUN(test_independent_seeds);
    return t_done();
}
