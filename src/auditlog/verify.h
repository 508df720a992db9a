/*
 * Audit log verifier: what `coffer audit verify` runs over the data the audit
 * service returns, and what tests run against a tampered store
 * (docs/internals/audit-log.md "What tampering is detected").
 *
 * The verifier trusts only the tree-head public key (and, optionally, a tree
 * head the caller saved earlier). Everything else — tree heads, entries,
 * proofs — may come from a compromised log, and every problem is reported
 * precisely, as a list of findings:
 *
 *   SIGNATURE       "signature on tree head 5 (size 40) is invalid"
 *   ORDER           a later tree head is smaller (rolled back or forked) or older
 *   INCONSISTENT    "tree head 4 (size 40) is not consistent with tree head 3 (size 32)"
 *   NO_PROOF        a proof needed for a check was not provided
 *   ENTRY_MISSING   "entry 17 is missing" (complete verification)
 *   ENTRY_EXTRA     an entry beyond the tree head, duplicated or out of order
 *   ENTRY_MISMATCH  "entry 17 does not match the signed tree head 4 (size 40): leaf hash differs"
 *   ENTRY_UNPROVEN  an entry whose inclusion proof fails where the cause cannot be attributed
 *   STORED_HASH     "the log's stored hash of entry 17 is wrong ..." (the entries are
 *                   intact but a proof carries a damaged subtree hash)
 *   ROOT_MISMATCH   the entries do not hash to a signed root, with the range of
 *                   entries the difference lies in (complete verification)
 *
 * Attribution of a failing inclusion proof of entry i: (1) in a complete
 * verification, if the proof recomputed from the entries verifies, the entry is
 * genuine and each element where the log's proof differs is a damaged stored
 * hash; (2) else if the proof of the paired leaf i^1 verified, its first element
 * is the authenticated leaf hash of i: a different hash of entry i's bytes means
 * the entry was changed, an equal one means the log's proof is damaged
 * (located by comparing with the sibling's proof); (3) otherwise the entry is
 * reported unproven.
 */
#ifndef COFFER_AUDITLOG_VERIFY_H
#define COFFER_AUDITLOG_VERIFY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auditlog/log.h"
#include "auditlog/sth.h"
#include "base/compiler.h"
#include "crypto/keys.h"
#include "merkle/merkle.h"

typedef enum {
    CF_AUDIT_FIND_SIGNATURE = 1,
    CF_AUDIT_FIND_ORDER,
    CF_AUDIT_FIND_INCONSISTENT,
    CF_AUDIT_FIND_NO_PROOF,
    CF_AUDIT_FIND_ENTRY_MISSING,
    CF_AUDIT_FIND_ENTRY_EXTRA,
    CF_AUDIT_FIND_ENTRY_MISMATCH,
    CF_AUDIT_FIND_ENTRY_UNPROVEN,
    CF_AUDIT_FIND_STORED_HASH,
    CF_AUDIT_FIND_ROOT_MISMATCH,
} cf_audit_finding_kind;

typedef struct {
    cf_audit_finding_kind kind;
    uint64_t first, last; /* entries concerned (inclusive), if any; else 0, 0 */
    int64_t sth_id;       /* tree head concerned, 0 if none or not from a log */
    char message[512];
} cf_audit_finding;

typedef struct {
    cf_audit_finding *findings; /* the first CF_AUDIT_MAX_PROBLEMS findings (malloc'd) */
    size_t n;
    size_t total;               /* all findings, including those not kept */
    uint64_t sths_checked, entries_checked, proofs_checked;
} cf_audit_report;

/* One entry as returned by the log, with its inclusion proof in the head (the
 * last tree head of the input). */
typedef struct {
    uint64_t seq;
    const uint8_t *entry;
    size_t entry_len;
    bool has_proof;
    const uint8_t (*proof)[CF_MERKLE_HASH_LEN];
    size_t proof_len;
} cf_audit_vitem;

typedef struct {
    const cf_key *key;         /* the log's Ed25519 tree-head public key */
    const cf_audit_sth *sths;  /* >= 1, in the log's order (a trusted earlier head
                                * may come first); the last one is "the head" */
    size_t nsths;
    /* nsths - 1 proofs: [i] proves sths[i] -> sths[i+1]. The array or an element
     * may be NULL (not provided). */
    const cf_merkle_proof *const *consistency;
    const cf_audit_vitem *items; /* ascending seq */
    size_t nitems;
    /* The items are meant to be every entry [0, head size): missing ones are
     * findings, and every tree head's root is recomputed from the entries. */
    bool complete;
} cf_audit_verify_input;

/* Runs every check. Returns 0 when nothing is wrong (ret holds the counters
 * and no findings), CF_E_VERIFY when something is: then ret holds the findings
 * (the one case where an output is written on failure, so that the caller can
 * report them). Other errors (bad input, no memory) leave ret untouched.
 * Release ret with cf_audit_report_free in both cases. */
int cf_audit_verify(const cf_audit_verify_input *in, cf_audit_report *ret) CF_WUR;

/* The same over a local log: every stored tree head, consistency proofs
 * between consecutive heads, every entry up to the last head and its
 * inclusion proof — a complete verification (O(n log n) store reads, n entries
 * in memory, at most CF_AUDIT_MAX_VERIFY_ENTRIES). `trusted` (may be NULL) is a
 * head the caller saved earlier: it is placed before the first stored head
 * that is larger, so a log rolled back below it leaves it last, as the head
 * every entry must reach. Same return convention. */
int cf_audit_verify_log(cf_audit_log *log, const cf_key *key, const cf_audit_sth *trusted,
                        cf_audit_report *ret) CF_WUR;

void cf_audit_report_free(cf_audit_report *r);
const char *cf_audit_finding_name(cf_audit_finding_kind kind);

#endif
