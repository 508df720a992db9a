/*
 * Fuzz target: the parsing front of POST /v1/jobs/{job} in the TEE runtime
 * (cf_tee_request_check): the CFE1 envelope, then the header's TEE id and job
 * against the URL and the bundle. The first input byte picks the URL's job, the
 * rest is the body. The TEE id is "tee-fuzz-1"; the bundle has jobs "echo" and
 * "sha256". Deterministic, no output, leak-free; bad input only returns.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tee/bundle.h"
#include "tee/runtime.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char manifest_json[] =
    "{\"name\":\"fuzz\",\"version\":\"1\",\"jobs\":{"
    "\"echo\":{\"command\":\"bin/echo\",\"limits\":{\"cpu_s\":1,\"memory_mb\":1,\"output_kb\":1,"
    "\"timeout_ms\":1}},"
    "\"sha256\":{\"command\":\"bin/sha256\",\"limits\":{\"cpu_s\":1,\"memory_mb\":1,"
    "\"output_kb\":1,\"timeout_ms\":1}}}}";

static cf_bundle_manifest *manifest; /* kept for the whole run */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const url_jobs[] = {"echo", "sha256", "nope", ""};
    cf_env env;

    if (manifest == NULL &&
        cf_bundle_manifest_parse((const uint8_t *)manifest_json, strlen(manifest_json),
                                 &manifest) != 0)
        abort();
    if (size < 1)
        return 0;
    if (cf_tee_request_check(data + 1, size - 1, url_jobs[data[0] % 4], "tee-fuzz-1", manifest,
                             &env) != 0)
        return 0;
    /* Accepted: it names this TEE and a job the bundle has, as the URL does. */
    if (strcmp(env.hdr.tee_id, "tee-fuzz-1") != 0 ||
        cf_bundle_manifest_job(manifest, env.hdr.job) == NULL ||
        strcmp(env.hdr.job, url_jobs[data[0] % 4]) != 0)
        __builtin_trap();
    return 0;
}
