#include "attestsvc/report.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "attest/snp.h"
#include "base/buf.h"
#include "base/err.h"
#include "base/json.h"
#include "base/parse.h"
#include "base/secmem.h"
#include "crypto/keys.h"

void cf_attest_time_rfc3339(int64_t t, char out[21])
{
    struct tm tm;
    time_t tt = (time_t)t;

    if (gmtime_r(&tt, &tm) == NULL || strftime(out, 21, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        memcpy(out, "1970-01-01T00:00:00Z", 21);
}

/* Appends text to a fixed message buffer; a diagnostic may be cut short. */
static void msg_add(char *msg, size_t cap, const char *sep, const char *text)
{
    size_t n = strlen(msg);
    int w;

    if (n + 1 >= cap)
        return;
    w = snprintf(msg + n, cap - n, "%s%s", n > 0 ? sep : "", text);
    (void)w;
}

void cf_attest_registry_check(const cf_attest_tee_entry *entry, const cf_attest_tee_evidence *tev,
                              const cf_verify_result *r, cf_attest_regcheck *ret)
{
    char meas[2 * CF_MEASUREMENT_LEN + 1], part[200];
    bool bad = false;

    memset(ret, 0, sizeof(*ret));
    if (entry == NULL || tev == NULL) {
        ret->status = CF_CHECK_SKIPPED;
        msg_add(ret->message, sizeof(ret->message), "", "no registry entry to compare with");
        return;
    }
    if (strcmp(entry->id, tev->tee_id) != 0) {
        bad = true;
        snprintf(part, sizeof(part), "TEE answered as '%.40s' but the registry entry is '%.40s'", tev->tee_id,
                 entry->id);
        msg_add(ret->message, sizeof(ret->message), "; ", part);
    }
    if (strcmp(entry->deployment, tev->deployment) != 0) {
        bad = true;
        snprintf(part, sizeof(part), "TEE runs deployment '%.40s' but is registered for '%.40s'",
                 tev->deployment, entry->deployment);
        msg_add(ret->message, sizeof(ret->message), "; ", part);
    }
    if (entry->has_public_key && !cf_ct_eq(entry->public_key, tev->public_key, CF_ATTEST_X25519_LEN)) {
        bad = true;
        msg_add(ret->message, sizeof(ret->message), "; ", "TEE public key differs from the registered key");
    }
    if (entry->has_measurement && r->facts.report_parsed) {
        cf_hex_encode(entry->measurement, CF_MEASUREMENT_LEN, meas);
        if (strcmp(meas, r->facts.measurement) != 0) {
            /* DESIGN.md §2 rule 4: a TEE whose measurement changes is quarantined. */
            bad = true;
            snprintf(part, sizeof(part), "measurement changed since registration (registered %.16s..., now %.16s...)",
                     meas, r->facts.measurement);
            msg_add(ret->message, sizeof(ret->message), "; ", part);
        }
    }
    if (bad) {
        ret->status = CF_CHECK_FAILED;
    } else {
        ret->status = CF_CHECK_PASSED;
        msg_add(ret->message, sizeof(ret->message), "",
                entry->has_measurement ? "TEE id, deployment, key and measurement match the registry"
                                       : "TEE id, deployment and key match the registry");
    }
}

bool cf_attest_view_verified(const cf_attest_view *v)
{
    return v->result->verified && (v->registry == NULL || v->registry->status != CF_CHECK_FAILED);
}

static bool check_passed(const cf_verify_result *r, cf_check_id id)
{
    return r->checks[id].status == CF_CHECK_PASSED;
}

json_t *cf_attest_signature_json(const cf_attest_view *v)
{
    const cf_manifest_deployment *d = v->deployment;
    char dev[CF_ED25519_LEN * 2];
    char kid[CF_KEY_THUMBPRINT_LEN + 1] = "";
    cf_key *k = NULL;
    bool valid;

    dev[0] = '\0';
    if (d != NULL) {
        cf_b64url_encode(d->developer_key, CF_ED25519_LEN, dev);
        if (cf_key_from_public(CF_KEY_ED25519, d->developer_key, CF_ED25519_LEN, &k) != 0 ||
            cf_key_thumbprint(k, kid) != 0)
            kid[0] = '\0';
        cf_key_free(k);
    }
    /* What this vouches for (docs/internals/attestation-service.md "Developer
     * signature"): the TEE runs a measurement the manifest allows for this
     * deployment, and the measured runtime starts a bundle only if its Ed25519
     * signature verifies with the deployment's developer key. The bundle
     * signature itself is not re-checked here (the bundle is not sent). */
    valid = d != NULL && kid[0] != '\0' && check_passed(v->result, CF_CHECK_MEASUREMENT) &&
            check_passed(v->result, CF_CHECK_DEPLOYMENT) && check_passed(v->result, CF_CHECK_SIGNATURE) &&
            check_passed(v->result, CF_CHECK_CHAIN) &&
            (v->registry == NULL || v->registry->status != CF_CHECK_FAILED);
    return json_pack("{s:s,s:b,s:s}", "developer_id", dev, "signature_valid", valid, "key_id", kid);
}

static json_t *tcb_json(const cf_verify_result *r)
{
    const cf_snp_tcb *t = &r->facts.reported_tcb;
    json_t *o = json_pack("{s:i,s:i,s:i,s:i}", "bootloader", t->bootloader, "tee", t->tee, "snp", t->snp,
                          "microcode", t->microcode);

    if (o != NULL && r->facts.product == CF_SNP_PRODUCT_TURIN &&
        json_object_set_new(o, "fmc", json_integer(t->fmc)) != 0) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static json_t *regcheck_json(const cf_attest_regcheck *reg)
{
    return json_pack("{s:s,s:s,s:s}", "name", CF_ATTEST_CHECK_REGISTRY, "status",
                     cf_check_status_name(reg->status), "message", reg->message);
}

static json_t *checks_json(const cf_attest_view *v)
{
    json_t *full = cf_verify_result_to_json(v->result), *checks = NULL;

    if (full != NULL) {
        checks = json_object_get(full, "checks");
        if (checks != NULL)
            json_incref(checks);
        json_decref(full);
    }
    if (checks != NULL && v->registry != NULL && json_array_append_new(checks, regcheck_json(v->registry)) != 0) {
        json_decref(checks);
        checks = NULL;
    }
    return checks;
}

json_t *cf_attest_view_to_json(const cf_attest_view *v)
{
    const cf_verify_result *r = v->result;
    char ts[21], nonce[2 * CF_BINDING_NONCE_LEN + 1];
    json_t *o = NULL, *ev = NULL, *meas, *sig, *plat;
    char *pk = NULL;
    bool up_to_date = check_passed(r, CF_CHECK_MIN_TCB) && check_passed(r, CF_CHECK_TCB_MATCH);

    cf_attest_time_rfc3339(v->at, ts);
    cf_hex_encode(v->nonce, CF_BINDING_NONCE_LEN, nonce);
    meas = json_pack("{s:s,s:s,s:s,s:s}", "MEASUREMENT", r->facts.measurement, "HOST_DATA", r->facts.host_data,
                     "REPORT_DATA", r->facts.report_data, "CHIP_ID", r->facts.chip_id);
    sig = cf_attest_signature_json(v);
    plat = json_pack("{s:s,s:b,s:s,s:o,s:o}", "tcb_status", up_to_date ? "Up to date" : "Out of date", "debug",
                     r->facts.debug, "product", cf_snp_product_name(r->facts.product), "tcb", tcb_json(r),
                     "checks", checks_json(v));
    ev = cf_attest_evidence_to_json(&v->tee->evidence);
    pk = cf_b64url_encode_alloc(v->tee->public_key, CF_ATTEST_X25519_LEN);
    if (ev != NULL && pk != NULL &&
        (json_object_set_new(ev, "nonce", json_string(nonce)) != 0 ||
         json_object_set_new(ev, "public_key", json_string(pk)) != 0 ||
         json_object_set_new(ev, "tee_id", json_string(v->tee->tee_id)) != 0)) {
        json_decref(ev);
        ev = NULL;
    }
    if (meas != NULL && sig != NULL && plat != NULL && ev != NULL)
        o = json_pack("{s:s,s:{s:s,s:s,s:s,s:s,s:O,s:O,s:O},s:s?,s:O}", "status",
                      cf_attest_view_verified(v) ? "verified" : "failed", "attestation", "id", v->id, "timestamp",
                      ts, "deployment_id", v->deployment_id, "build_hash", v->tee->build_hash, "measurements", meas,
                      "signature_verification", sig, "platform_verification", plat, "token", v->token, "evidence",
                      ev);
    free(pk);
    json_decref(meas);
    json_decref(sig);
    json_decref(plat);
    json_decref(ev);
    return o;
}

static int failure_add(json_t *arr, const char *name, const char *message, size_t *used)
{
    json_t *o = json_pack("{s:s,s:s}", "name", name, "message", message);
    char *s = o ? cf_json_dump(o) : NULL;
    size_t n = s ? strlen(s) + 1 : 0;
    int rc = CF_E_NOMEM;

    if (s != NULL) {
        /* Leave room for the closing entry that counts the rest. */
        if (*used + n + 64 > CF_ATTESTSVC_MAX_FAILURES_JSON) {
            rc = CF_E_TOO_LARGE;
        } else if (json_array_append(arr, o) == 0) {
            *used += n;
            rc = 0;
        }
    }
    free(s);
    json_decref(o);
    return rc;
}

char *cf_attest_failures_json(const cf_verify_result *r, const cf_attest_regcheck *reg)
{
    json_t *arr = json_array();
    size_t used = 2, dropped = 0;
    char *out = NULL;
    int rc;

    if (arr == NULL)
        return NULL;
    for (int i = 0; i <= CF_CHECK__COUNT; i++) {
        const char *name, *msg;
        if (i < CF_CHECK__COUNT) {
            if (r->checks[i].status != CF_CHECK_FAILED)
                continue;
            name = r->checks[i].name;
            msg = r->checks[i].message;
        } else {
            if (reg == NULL || reg->status != CF_CHECK_FAILED)
                continue;
            name = CF_ATTEST_CHECK_REGISTRY;
            msg = reg->message;
        }
        if (dropped > 0) {
            dropped++;
            continue;
        }
        rc = failure_add(arr, name, msg, &used);
        if (rc == CF_E_TOO_LARGE)
            dropped++;
        else if (rc != 0)
            goto out;
    }
    if (dropped > 0) {
        char more[32];
        snprintf(more, sizeof(more), "%zu more", dropped);
        if (json_array_append_new(arr, json_pack("{s:s,s:s}", "name", "...", "message", more)) != 0)
            goto out;
    }
    out = cf_json_dump(arr);
out:
    json_decref(arr);
    return out;
}

void cf_attest_first_failure(const cf_verify_result *r, const cf_attest_regcheck *reg, char *out,
                             size_t out_size)
{
    const cf_check *c = cf_verify_first_failure(r);

    out[0] = '\0';
    if (c != NULL)
        snprintf(out, out_size, "%s: %s", c->name, c->message);
    else if (reg != NULL && reg->status == CF_CHECK_FAILED)
        snprintf(out, out_size, "%s: %s", CF_ATTEST_CHECK_REGISTRY, reg->message);
}
