/*
 * coffer_request: the whole client side of the request flow (DESIGN.md §5)
 * and its retry policy.
 *
 *   token (auth.c) -> verified TEE (session.c, cached) -> OTK (otk.c)
 *   -> CFE1 envelope (step 4) -> POST /v1/jobs/{job} (step 5)
 *   -> CFR1 response opened with the kept inner HPKE context (step 8)
 *
 * Retries, each at most once per cause and never silently:
 *   - 401 after the token was obtained: the token is replaced once;
 *   - the TEE turned out quarantined or revoked (OTK or job step): it is
 *     dropped from the cache and the request starts again with a new session
 *     that must name another TEE, up to max_retries times.
 * Rate limiting and unavailability are reported, not retried: the caller
 * decides (coffer_client_last_retry_after). A TEE that was unavailable or
 * whose answer failed authentication is dropped from the cache, so that the
 * next request verifies a TEE afresh.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/buf.h"
#include "base/err.h"
#include "base/parse.h"
#include "base/secmem.h"
#include "crypto/hash.h"
#include "proto/envelope.h"
#include "sdk/sdk.h"

#define STEP_JOB "job"

struct coffer_result {
    uint8_t *data; /* cf_secure_alloc memory (wiped on free); NULL when size is 0 */
    size_t size;
    int status;
    char tee_id[CF_ID_MAX_LEN + 1];
    char request_id[2 * CF_SDK_REQUEST_ID_BYTES + 1];
};

static const uint8_t empty_output[1];

static const char *status_text(int st)
{
    switch (st) {
    case COFFER_JOB_FAILED:
        return "the job exited with an error";
    case COFFER_JOB_TIMEOUT:
        return "the job ran out of time";
    case COFFER_JOB_OUTPUT_TOO_LARGE:
        return "the job's output exceeded its limit";
    case COFFER_JOB_RESOURCE_LIMIT:
        return "a resource limit or the sandbox stopped the job";
    default:
        return "the job failed";
    }
}

/* Media type of a Content-Type value without its parameters. */
static bool media_type_is(const char *ct, const char *want)
{
    size_t n = strcspn(ct, "; \t");
    return n == strlen(want) && strncasecmp(ct, want, n) == 0;
}

/* Steps 3-8 on a verified TEE. */
static int send_job(coffer_client *c, const cf_sdk_auth *a, const cf_sdk_tee *tee,
                    const char *job, const void *data, size_t len, coffer_result **ret)
{
    uint8_t rid_raw[CF_SDK_REQUEST_ID_BYTES], *otk = NULL, status = 0;
    char rid[2 * CF_SDK_REQUEST_ID_BYTES + 1], otk_id[CF_ID_MAX_LEN + 1];
    char path[CF_NAME_MAX_LEN + 16];
    cf_hpke_key *tee_key = NULL;
    cf_hpke_ctx *ctx = NULL;
    cf_http_request req;
    cf_http_response resp;
    coffer_result *res = NULL;
    cf_env_ids ids;
    cf_buf env, out;
    int rc;

    memset(&resp, 0, sizeof(resp));
    cf_buf_init(&env, CF_ENV_MAX_BYTES);
    cf_buf_init_secret(&out, CF_ENV_MAX_PAYLOAD);
    otk = cf_secure_alloc(CF_SDK_OTK_LEN);
    CF_ENSURE_OUT(otk != NULL, CF_E_NOMEM);
    CF_GUARD_OUT(cf_random(rid_raw, sizeof(rid_raw)));
    cf_hex_encode(rid_raw, sizeof(rid_raw), rid);
    /* job is a manifest name: safe in a path as is. */
    CF_GUARD_OUT(cf_fmt(path, sizeof(path), "/v1/jobs/%s", job));

    CF_GUARD_OUT(cf_sdk_otk_get(c, a, tee->tee_id, otk_id, otk));

    /* Step 4: inner HPKE layer to the attested TEE key, outer layer under the OTK. */
    ids = (cf_env_ids){rid, c->tenant, tee->tee_id, otk_id, job};
    CF_GUARD_OUT(cf_hpke_key_from_public(CF_HPKE_KEM_X25519_SHA256, tee->public_key,
                                         CF_SDK_X25519_LEN, &tee_key));
    rc = cf_env_seal(&ids, otk, a->client_key, tee_key, data, len, &env, &ctx);
    cf_secure_free(otk);
    otk = NULL;
    if (rc < 0) {
        rc = cf_sdk_fail(rc, rc == CF_E_NOMEM ? COFFER_E_NOMEM : COFFER_E_PROTOCOL,
                         "envelope: %s", cf_err_detail(rc));
        goto out;
    }

    /* Step 5. */
    req = (cf_http_request){.method = "POST",
                            .path = path,
                            .bearer = a->token,
                            .content_type = CF_SDK_CT_ENVELOPE,
                            .body = env.data,
                            .body_len = env.len,
                            .request_id = rid};
    CF_GUARD_OUT(cf_sdk_http(c, &req, &resp, STEP_JOB));
    if (resp.status != 200) {
        rc = cf_sdk_http_error(&resp, STEP_JOB);
        goto out;
    }
    CF_ENSURE_OUT(media_type_is(resp.content_type, CF_SDK_CT_RESPONSE),
                  cf_sdk_fail(CF_E_PARSE, COFFER_E_PROTOCOL,
                              "%s: the answer is '%.64s', not %s", STEP_JOB, resp.content_type,
                              CF_SDK_CT_RESPONSE));

    /* Step 8: only the holder of the inner context (us) derives the key; the
     * AAD binds our request id. Nothing is used before the tag verifies. */
    rc = cf_env_response_open(ctx, rid, resp.body.data, resp.body.len, &status, &out);
    if (rc == CF_E_TOO_LARGE) {
        rc = cf_sdk_fail(rc, COFFER_E_TOO_LARGE, "%s: the answer is too large", STEP_JOB);
        goto out;
    }
    if (rc == CF_E_DECRYPT || rc == CF_E_PARSE || rc == CF_E_TRUNCATED) {
        rc = cf_sdk_fail(rc, COFFER_E_INTEGRITY,
                         "%s: the answer failed authentication (altered on the way, or not from "
                         "TEE %s that the request was sealed to)",
                         STEP_JOB, tee->tee_id);
        goto out;
    }
    CF_GUARD_OUT(rc);

    res = calloc(1, sizeof(*res));
    CF_ENSURE_OUT(res != NULL, CF_E_NOMEM);
    res->data = cf_buf_detach(&out, &res->size);
    res->status = status;
    memcpy(res->tee_id, tee->tee_id, strlen(tee->tee_id) + 1);
    memcpy(res->request_id, rid, sizeof(rid));
    if (status != COFFER_JOB_OK) {
        rc = cf_sdk_fail(CF_E_INTERNAL, COFFER_E_JOB_FAILED,
                         "job '%s' failed on TEE %s: %s (status %u, request %s)", job, tee->tee_id,
                         status_text(status), (unsigned)status, rid);
    }
    /* On COFFER_E_JOB_FAILED too: the caller receives the TEE's verified answer. */
    *ret = res;
    res = NULL;
out:
    coffer_result_free(res);
    cf_secure_free(otk);
    cf_hpke_ctx_free(ctx);
    cf_hpke_key_free(tee_key);
    cf_http_response_free(&resp);
    cf_buf_free(&env);
    cf_buf_free(&out);
    return rc;
}

/* Whether some deployment of the client's tenant serves job (client manifest). */
static bool job_known(const coffer_client *c, const char *job)
{
    for (size_t i = 0; i < cf_manifest_deployment_count(c->manifest); i++) {
        const cf_manifest_deployment *d = cf_manifest_deployment_at(c->manifest, i);
        if (strcmp(d->tenant, c->tenant) == 0 && cf_manifest_deployment_has_job(d, job))
            return true;
    }
    return false;
}

int coffer_request(coffer_client *c, const char *job, const void *data, size_t len,
                   coffer_result **ret)
{
    char avoid_ids[CF_SDK_MAX_RETRIES + 1][CF_ID_MAX_LEN + 1];
    const char *avoid[CF_SDK_MAX_RETRIES + 1];
    size_t n_avoid = 0;
    bool auth_retried = false;
    int tee_retries = 0, rc = 0;

    cf_sdk_begin();
    CF_ENSURE_OUT(c != NULL && ret != NULL && (data != NULL || len == 0),
                  cf_sdk_fail(CF_E_INVAL, COFFER_E_INVALID,
                              "client, result pointer and data (unless len is 0) are required"));
    CF_ENSURE_OUT(cf_sdk_name_ok(job, CF_NAME_MAX_LEN),
                  cf_sdk_fail(CF_E_INVAL, COFFER_E_INVALID,
                              "job must be a name of 1-%d characters [A-Za-z0-9._-]",
                              CF_NAME_MAX_LEN));
    CF_ENSURE_OUT(len <= CF_ENV_MAX_PAYLOAD,
                  cf_sdk_fail(CF_E_TOO_LARGE, COFFER_E_TOO_LARGE,
                              "data of %zu bytes exceeds the limit of %u bytes", len,
                              (unsigned)CF_ENV_MAX_PAYLOAD));
    CF_ENSURE_OUT(job_known(c, job),
                  cf_sdk_fail(CF_E_NOT_FOUND, COFFER_E_NOT_FOUND,
                              "no deployment of tenant '%s' in the client's manifest serves job "
                              "'%s'",
                              c->tenant, job));
    for (;;) {
        cf_sdk_auth a;
        cf_sdk_tee tee;
        bool have_token = false, sent = false;
        uint64_t gen = 0;
        int pub;

        memset(&a, 0, sizeof(a));
        memset(&tee, 0, sizeof(tee));
        rc = cf_sdk_auth_get(c, &a);
        if (rc == 0) {
            have_token = true;
            gen = a.generation;
            rc = cf_sdk_tee_get(c, &a, job, avoid, n_avoid, &tee);
        }
        if (rc == 0) {
            sent = true;
            rc = send_job(c, &a, &tee, job, data, len, ret);
        }
        cf_sdk_auth_release(&a);
        if (rc >= 0)
            break;
        pub = cf_sdk_classify(rc);
        if (pub == COFFER_E_AUTH && have_token && !auth_retried) {
            /* The platform no longer accepts our token (expired early, keys
             * rotated): one new token, then the answer stands. */
            cf_sdk_auth_invalidate(c, gen);
            auth_retried = true;
            continue;
        }
        if (pub == COFFER_E_TEE_REVOKED && sent) {
            cf_sdk_cache_drop_tee(c, tee.tee_id);
            if (tee_retries < c->max_retries) {
                memcpy(avoid_ids[n_avoid], tee.tee_id, strlen(tee.tee_id) + 1);
                avoid[n_avoid] = avoid_ids[n_avoid];
                n_avoid++;
                tee_retries++;
                continue;
            }
            rc = cf_sdk_fail(rc, COFFER_E_TEE_REVOKED, "TEE %s: %s%s", tee.tee_id,
                             cf_err_detail(rc),
                             tee_retries > 0 ? "; no further retry on another TEE" : "");
        } else if ((pub == COFFER_E_UNAVAILABLE || pub == COFFER_E_INTEGRITY) && sent) {
            /* Not retried (the job may have run), but the next request starts
             * with a new session rather than the same TEE. */
            cf_sdk_cache_drop_tee(c, tee.tee_id);
        }
        break;
    }
out:
    return cf_sdk_finish(rc);
}

const uint8_t *coffer_result_data(const coffer_result *r)
{
    return r != NULL && r->data != NULL ? r->data : empty_output;
}

size_t coffer_result_size(const coffer_result *r)
{
    return r != NULL ? r->size : 0;
}

int coffer_result_status(const coffer_result *r)
{
    return r != NULL ? r->status : -1;
}

const char *coffer_result_tee_id(const coffer_result *r)
{
    return r != NULL ? r->tee_id : "";
}

const char *coffer_result_request_id(const coffer_result *r)
{
    return r != NULL ? r->request_id : "";
}

void coffer_result_free(coffer_result *r)
{
    if (r == NULL)
        return;
    cf_secure_free(r->data);
    free(r);
}
