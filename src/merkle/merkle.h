/*
 * RFC 6962 §2.1 Merkle Tree Hash over SHA-256, with inclusion and consistency
 * proofs (generation per RFC 6962 §2.1.1 / §2.1.2, verification per RFC 9162
 * §2.1.3.2 / §2.1.4.2).
 *
 *   leaf hash  = SHA-256(0x00 || entry)
 *   node hash  = SHA-256(0x01 || left || right)
 *   MTH({})    = SHA-256("")
 *   MTH(D[n])  = node(MTH(D[0:k]), MTH(D[k:n])), k the largest power of two < n
 *
 * STORAGE MODEL. The tree is never held in memory. Every hash the generators
 * need is either a COMPLETE subtree — 2^level leaves starting at index << level,
 * identified by (level, index) — or the right edge [a, n) of the tree of size
 * n, which is a fold of the complete subtrees of n's binary decomposition (its
 * "frontier", at most 64 of them). A caller supplies complete-subtree hashes
 * through a cf_merkle_node_fn (a store persists them as leaves are appended,
 * see cf_merkle_frontier_append), so a proof costs O(log n) reads:
 * popcount(n) frontier nodes plus one node per proof element.
 *
 * All functions are pure (no global state) and thread-safe. Proofs are plain
 * values (cf_merkle_proof), nothing is allocated.
 */
#ifndef COFFER_MERKLE_MERKLE_H
#define COFFER_MERKLE_MERKLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/compiler.h"
#include "base/limits.h"

#define CF_MERKLE_HASH_LEN 32

/* An inclusion or consistency proof: len hashes, in RFC 6962 order (the
 * element nearest the leaf / the smaller tree first). */
typedef struct {
    size_t len;
    uint8_t h[CF_MERKLE_MAX_PROOF][CF_MERKLE_HASH_LEN];
} cf_merkle_proof;

/* Leaves [start, end) covered by one proof element (for diagnostics). */
typedef struct {
    uint64_t start, end;
} cf_merkle_range;

/* Hash of the complete subtree of 2^level leaves starting at leaf index << level
 * (level 0: the leaf hash of leaf `index`). Returns 0 or a negative cf_err (e.g.
 * CF_E_NOT_FOUND); the error is passed on unchanged. */
typedef int (*cf_merkle_node_fn)(void *ctx, unsigned level, uint64_t index,
                                 uint8_t out[CF_MERKLE_HASH_LEN]);

/* ---- hashing (RFC 6962 §2.1) ---- */
int cf_merkle_leaf_hash(const void *entry, size_t len, uint8_t out[CF_MERKLE_HASH_LEN]) CF_WUR;
int cf_merkle_node_hash(const uint8_t left[CF_MERKLE_HASH_LEN],
                        const uint8_t right[CF_MERKLE_HASH_LEN],
                        uint8_t out[CF_MERKLE_HASH_LEN]) CF_WUR;
/* MTH of the empty tree: SHA-256 of the empty string. */
void cf_merkle_empty_root(uint8_t out[CF_MERKLE_HASH_LEN]);

/* ---- generation over a node source ---- */
/* MTH of the first `size` leaves (size <= CF_MERKLE_MAX_SIZE). */
int cf_merkle_root(uint64_t size, cf_merkle_node_fn fn, void *ctx,
                   uint8_t out[CF_MERKLE_HASH_LEN]) CF_WUR;
/* RFC 6962 §2.1.1 PATH(index, D[size]); index < size. */
int cf_merkle_inclusion_proof(uint64_t index, uint64_t size, cf_merkle_node_fn fn, void *ctx,
                              cf_merkle_proof *ret) CF_WUR;
/* RFC 6962 §2.1.2 PROOF(m, D[n]); 0 < m <= n (m == n gives an empty proof). */
int cf_merkle_consistency_proof(uint64_t m, uint64_t n, cf_merkle_node_fn fn, void *ctx,
                                cf_merkle_proof *ret) CF_WUR;
/* Which leaves each element of the proof above covers (same order, same length). */
int cf_merkle_inclusion_ranges(uint64_t index, uint64_t size,
                               cf_merkle_range ret[CF_MERKLE_MAX_PROOF], size_t *ret_len) CF_WUR;
int cf_merkle_consistency_ranges(uint64_t m, uint64_t n, cf_merkle_range ret[CF_MERKLE_MAX_PROOF],
                                 size_t *ret_len) CF_WUR;

/* ---- verification (RFC 9162 §2.1.3.2, §2.1.4.2) ----
 * Return 0 if the proof is valid, CF_E_VERIFY if it is not (including sizes
 * out of range or a proof of the wrong length). Hashes are compared in
 * constant time. */
int cf_merkle_verify_inclusion(const uint8_t leaf[CF_MERKLE_HASH_LEN], uint64_t index,
                               uint64_t size, const cf_merkle_proof *proof,
                               const uint8_t root[CF_MERKLE_HASH_LEN]) CF_WUR;
/* m == 0: valid iff the proof is empty (the empty tree is a prefix of every
 * tree). m == n: valid iff the proof is empty and the roots are equal. */
int cf_merkle_verify_consistency(uint64_t m, uint64_t n, const uint8_t root_m[CF_MERKLE_HASH_LEN],
                                 const uint8_t root_n[CF_MERKLE_HASH_LEN],
                                 const cf_merkle_proof *proof) CF_WUR;

/* Proof from concatenated 32-byte hashes (CF_E_PARSE if len is not a multiple
 * of 32, CF_E_TOO_LARGE beyond CF_MERKLE_MAX_PROOF hashes). */
int cf_merkle_proof_from_bytes(const uint8_t *data, size_t len, cf_merkle_proof *ret) CF_WUR;

/* ---- appending: the frontier (compact range [0, size)) ----
 * h[L] is the complete subtree of 2^L leaves in the binary decomposition of
 * size (valid iff bit L of size is set). This is all a writer needs to append
 * and to compute the root: O(log n) memory. */
typedef struct {
    uint64_t size;
    uint8_t h[64][CF_MERKLE_HASH_LEN];
} cf_merkle_frontier;

/* Called for every complete subtree an append completes, level >= 1 (level 0
 * is the appended leaf itself). */
typedef int (*cf_merkle_emit_fn)(void *ctx, unsigned level, uint64_t index,
                                 const uint8_t hash[CF_MERKLE_HASH_LEN]);

void cf_merkle_frontier_init(cf_merkle_frontier *f);
/* Loads the frontier of a tree of `size` leaves: popcount(size) reads. */
int cf_merkle_frontier_load(cf_merkle_frontier *f, uint64_t size, cf_merkle_node_fn fn,
                            void *ctx) CF_WUR;
/* Appends one leaf hash; emit (may be NULL) receives each newly complete
 * subtree. On an emit error f is left unchanged. */
int cf_merkle_frontier_append(cf_merkle_frontier *f, const uint8_t leaf[CF_MERKLE_HASH_LEN],
                              cf_merkle_emit_fn emit, void *ctx) CF_WUR;
/* MTH of the leaves appended so far. */
int cf_merkle_frontier_root(const cf_merkle_frontier *f, uint8_t out[CF_MERKLE_HASH_LEN]) CF_WUR;

/* ---- in-memory node source over an array of leaf hashes ----
 * For verifiers and tests. The node callback recomputes a subtree from its
 * leaves (O(2^level)); cf_merkle_mem_build precomputes every complete subtree
 * (2n hashes of memory) so that each lookup is O(1). */
typedef struct {
    const uint8_t (*leaves)[CF_MERKLE_HASH_LEN];
    uint64_t n;
    uint8_t (*levels[64])[CF_MERKLE_HASH_LEN]; /* filled by cf_merkle_mem_build, else NULL */
} cf_merkle_mem;

/* Borrows leaves (n hashes) for the lifetime of m. */
void cf_merkle_mem_init(cf_merkle_mem *m, const uint8_t (*leaves)[CF_MERKLE_HASH_LEN], uint64_t n);
/* Precomputes all complete subtrees; undone by cf_merkle_mem_free. */
int cf_merkle_mem_build(cf_merkle_mem *m) CF_WUR;
void cf_merkle_mem_free(cf_merkle_mem *m);
/* cf_merkle_node_fn over a cf_merkle_mem (ctx). CF_E_RANGE outside the leaves. */
int cf_merkle_mem_node(void *ctx, unsigned level, uint64_t index,
                       uint8_t out[CF_MERKLE_HASH_LEN]) CF_WUR;

#endif
