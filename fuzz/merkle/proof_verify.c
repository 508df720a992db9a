/*
 * Fuzz RFC 9162 proof verification: arbitrary proof bytes, index and sizes
 * against the roots of a fixed 37-leaf tree. Input layout:
 *   u8 mode (even: inclusion, odd: consistency) || u64 a (LE) || u64 b (LE) || proof bytes
 * Inclusion: leaf a of the tree of size b; consistency: sizes a -> b. Within
 * the tree the proof is checked against the real roots, so an accepted proof
 * must be exactly the generated one (a second valid proof would be a forgery).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "merkle/merkle.h"

#define NLEAVES 37

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint8_t leaves[NLEAVES][CF_MERKLE_HASH_LEN];
static uint8_t roots[NLEAVES + 1][CF_MERKLE_HASH_LEN];
static cf_merkle_mem mem;
static int ready;

static void setup(void)
{
    for (int i = 0; i < NLEAVES; i++) {
        uint8_t in[2] = {(uint8_t)i, 0x5a};
        if (cf_merkle_leaf_hash(in, sizeof(in), leaves[i]) != 0)
            abort();
    }
    cf_merkle_mem_init(&mem, (const uint8_t(*)[CF_MERKLE_HASH_LEN])leaves, NLEAVES);
    for (uint64_t n = 0; n <= NLEAVES; n++)
        if (cf_merkle_root(n, cf_merkle_mem_node, &mem, roots[n]) != 0)
            abort();
    ready = 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cf_merkle_proof p, want;
    const uint8_t *proof_bytes;
    uint64_t a, b;
    uint8_t mode;
    size_t plen;
    cf_buf in;

    if (!ready)
        setup();
    cf_buf_view(&in, data, size);
    if (cf_buf_get_u8(&in, &mode) != 0 || cf_buf_get_u64le(&in, &a) != 0 ||
        cf_buf_get_u64le(&in, &b) != 0)
        return 0;
    plen = cf_buf_remaining(&in);
    if (cf_buf_get_ptr(&in, plen, &proof_bytes) != 0 ||
        cf_merkle_proof_from_bytes(plen > 0 ? proof_bytes : NULL, plen, &p) != 0)
        return 0;
    if ((mode & 1) == 0) {
        const uint8_t *leaf = leaves[a % NLEAVES];
        const uint8_t *root = roots[b <= NLEAVES ? b : NLEAVES];
        if (cf_merkle_verify_inclusion(leaf, a, b, &p, root) == 0 && b <= NLEAVES) {
            if (a >= b || cf_merkle_inclusion_proof(a, b, cf_merkle_mem_node, &mem, &want) != 0 ||
                want.len != p.len || memcmp(want.h, p.h, p.len * CF_MERKLE_HASH_LEN) != 0)
                __builtin_trap();
        }
    } else {
        const uint8_t *ra = roots[a <= NLEAVES ? a : NLEAVES];
        const uint8_t *rb = roots[b <= NLEAVES ? b : NLEAVES];
        if (cf_merkle_verify_consistency(a, b, ra, rb, &p) == 0 && a <= NLEAVES && b <= NLEAVES &&
            a > 0 && a < b) {
            if (cf_merkle_consistency_proof(a, b, cf_merkle_mem_node, &mem, &want) != 0 ||
                want.len != p.len || memcmp(want.h, p.h, p.len * CF_MERKLE_HASH_LEN) != 0)
                __builtin_trap();
        }
    }
    return 0;
}
