/*
 * Leader election for the re-attestation scheduler (DESIGN.md §8: several
 * attestation replicas may run in front of one PostgreSQL database, and exactly
 * one of them re-attests the TEEs).
 *
 *   SQLite      one node by construction (the store is a local file owned by
 *               one service process): always the leader, no handle is opened.
 *   PostgreSQL  a session-level advisory lock, pg_try_advisory_lock(key), held
 *               on a dedicated connection for as long as this replica leads.
 *               Each cf_attest_leader_check either tries to take the lock or,
 *               when we hold it, confirms in pg_locks that this backend still
 *               does: if the connection was lost (and silently re-opened by the
 *               store), the server has released the lock, leadership is lost,
 *               and the next check competes again. Closing the handle (or the
 *               process dying) releases the lock, so another replica takes over
 *               within one check interval.
 *
 * The lock key is CF_ATTEST_LEADER_LOCK_KEY ("Coffer" + 0002; the store's
 * migration lock is "Coffer" + 0001).
 *
 * Thread-safety: one cf_attest_leader is used by one thread (the scheduler).
 */
#ifndef COFFER_ATTESTSVC_LEADER_H
#define COFFER_ATTESTSVC_LEADER_H

#include <stdbool.h>
#include <stdint.h>

#include "base/compiler.h"

#define CF_ATTEST_LEADER_LOCK_KEY INT64_C(0x436f666665720002)

typedef struct cf_attest_leader cf_attest_leader;

/* dsn as for cf_store_open ("sqlite:..." or "postgres://..."). For PostgreSQL a
 * dedicated connection is opened now. */
int cf_attest_leader_new(const char *dsn, cf_attest_leader **ret) CF_WUR;
/* Releases leadership (closes the dedicated connection). NULL is accepted. */
void cf_attest_leader_free(cf_attest_leader *l);

/* Sets *ret_leader. An error (database unreachable) is returned as such,
 * *ret_leader is not written, and leadership is given up: the caller must not
 * act as the leader (fail closed: at worst nobody re-attests for a while, and
 * the KMS quarantines stale TEEs, DESIGN.md §2 rule 4). */
int cf_attest_leader_check(cf_attest_leader *l, bool *ret_leader) CF_WUR;

/* Whether this elector is the single-node (SQLite) kind. */
bool cf_attest_leader_single_node(const cf_attest_leader *l);

#endif
