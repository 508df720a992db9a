/*
 * Signed tree heads (STH) of the audit log (docs/internals/audit-log.md).
 *
 * The signature is pure Ed25519 (RFC 8032 §5.1.6) by the log's tree-head key
 * over this fixed 62-byte encoding (all integers big-endian):
 *
 *   "coffer/v1 sth"   13 ASCII bytes, domain separation
 *   0x00              1 byte
 *   size              u64, number of leaves
 *   timestamp         u64, unix time in milliseconds
 *   root              32 bytes, RFC 6962 MTH of the first `size` entries
 *
 * JSON form (what the audit service publishes):
 *   {"id":5,"size":40,"timestamp":1714564800000,"root":"<64 hex>",
 *    "signature":"<base64url, 64 bytes>","key_id":"<RFC 7638 thumbprint>"}
 * id (position in the log's list of tree heads, from 1) and key_id are not
 * signed: they are locators only. id 0 means "not from a log".
 */
#ifndef COFFER_AUDITLOG_STH_H
#define COFFER_AUDITLOG_STH_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "base/compiler.h"
#include "crypto/keys.h"
#include "merkle/merkle.h"

#define CF_AUDIT_STH_LABEL "coffer/v1 sth"
#define CF_AUDIT_STH_TBS_LEN (13 + 1 + 8 + 8 + CF_MERKLE_HASH_LEN)

typedef struct {
    int64_t id;
    uint64_t size;
    uint64_t timestamp_ms;
    uint8_t root[CF_MERKLE_HASH_LEN];
    uint8_t signature[CF_ED25519_SIG_LEN];
    char key_id[CF_KEY_THUMBPRINT_LEN + 1]; /* "" if unknown */
} cf_audit_sth;

/* The signed bytes. */
void cf_audit_sth_tbs(const cf_audit_sth *sth, uint8_t out[CF_AUDIT_STH_TBS_LEN]);
/* Signs size, timestamp and root with an Ed25519 private key: fills signature
 * and key_id. */
int cf_audit_sth_sign(cf_audit_sth *sth, const cf_key *key) CF_WUR;
/* 0 if the signature verifies under the Ed25519 key, CF_E_SIGNATURE if not,
 * CF_E_INVAL for a key of another type. */
int cf_audit_sth_verify(const cf_audit_sth *sth, const cf_key *key) CF_WUR;

/* JSON codec (strict: unknown fields, wrong types, bad hex/base64url refused). */
int cf_audit_sth_to_json(const cf_audit_sth *sth, json_t **ret) CF_WUR;
int cf_audit_sth_from_json(const json_t *obj, cf_audit_sth *ret) CF_WUR;
/* From JSON text of at most CF_AUDIT_MAX_STH_JSON bytes. */
int cf_audit_sth_parse(const void *data, size_t len, cf_audit_sth *ret) CF_WUR;

/* A proof as a JSON array of hex hashes, and back (at most CF_MERKLE_MAX_PROOF). */
int cf_audit_proof_to_json(const cf_merkle_proof *p, json_t **ret) CF_WUR;
int cf_audit_proof_from_json(const json_t *arr, cf_merkle_proof *ret) CF_WUR;

#endif
