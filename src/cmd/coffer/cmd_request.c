/*
 * coffer request --job JOB (--data TEXT | --file PATH) [options]
 *
 * Sends data to a job in a verified TEE through the client SDK (include/coffer.h)
 * — the same code path as any application — and writes the job's output to
 * stdout (or --output). Options come from the environment (COFFER_*, as
 * coffer_client_options_from_env) and flags, flags winning. The API key is
 * taken from COFFER_API_KEY or --api-key-file only: a key on the command line
 * would be visible to every user through ps.
 *
 * Exit status (docs/SDK.md "coffer request"):
 *   0 the job ran and succeeded; its output is written
 *   1 refused: attestation failed, authentication or authorisation failed,
 *     client key problem, TEE revoked, key expired, integrity failure, unknown job
 *   2 usage error
 *   3 input or configuration could not be read or is invalid
 *   4 the platform could not be reached or failed (network, timeout, 429, 5xx,
 *     protocol violation)
 *   5 the job ran and reported a failure; whatever it wrote is still output
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/err.h"
#include "base/file.h"
#include "base/limits.h"
#include "base/parse.h"
#include "base/secmem.h"
#include "cli.h"
#include "coffer.h"

#define EXIT_JOB_FAILED 5

static void usage(FILE *f)
{
    fprintf(f,
            "usage: coffer request --job JOB (--data TEXT | --file PATH) [options]\n"
            "\n"
            "Runs JOB on the data in a TEE that this client verifies itself, and writes\n"
            "the job's output to stdout.\n"
            "\n"
            "  --job NAME                   job to run (e.g. sha256)\n"
            "  --data TEXT                  the data, given on the command line\n"
            "  --file PATH                  the data, read from a file ('-' = stdin)\n"
            "  --output PATH                write the output there instead of stdout\n"
            "  --gateway URL                gateway (COFFER_GATEWAY_URL)\n"
            "  --tenant ID                  tenant (COFFER_TENANT_ID)\n"
            "  --api-key-file PATH          file holding the API key (else COFFER_API_KEY)\n"
            "  --manifest PATH              the client's manifest (COFFER_MANIFEST)\n"
            "  --ca PATH                    CA for the gateway's TLS certificate (COFFER_CA)\n"
            "  --attestation-jwks PATH      pinned attestation-service JWKS\n"
            "                               (COFFER_ATTESTATION_JWKS)\n"
            "  --kms-release-key B64URL     pinned KMS release key (COFFER_KMS_RELEASE_KEY)\n"
            "  --kms-release-key-file PATH  the same from a file (COFFER_KMS_RELEASE_KEY_FILE)\n"
            "  --client-key PATH            client key file (COFFER_CLIENT_KEY; default\n"
            "                               ~/.config/coffer/client-<tenant>-<principal>.key)\n"
            "  --timeout-ms N               per HTTP call (COFFER_TIMEOUT_MS; default 30000)\n"
            "  --verbose                    print the TEE and request ids to stderr\n"
            "\n"
            "Exit status: 0 ok, 1 refused (attestation, auth, keys, revoked TEE), 2 usage,\n"
            "3 unreadable input or configuration, 4 platform unreachable or failing,\n"
            "5 the job failed (its output is still written).\n");
}

static int exit_for(int err)
{
    switch (err) {
    case COFFER_OK:
        return CLI_EXIT_OK;
    case COFFER_E_JOB_FAILED:
        return EXIT_JOB_FAILED;
    case COFFER_E_INVALID:
    case COFFER_E_CONFIG:
        return CLI_EXIT_INPUT;
    case COFFER_E_AUTH:
    case COFFER_E_FORBIDDEN:
    case COFFER_E_CLIENT_KEY:
    case COFFER_E_ATTESTATION:
    case COFFER_E_TEE_REVOKED:
    case COFFER_E_KEY_EXPIRED:
    case COFFER_E_INTEGRITY:
    case COFFER_E_NOT_FOUND:
    case COFFER_E_TOO_LARGE:
        return CLI_EXIT_FAILED;
    default:
        return CLI_EXIT_SERVICE;
    }
}

/* Reads all of stdin (at most max bytes) into a secret buffer. */
static int read_stdin(size_t max, cf_buf *out)
{
    uint8_t chunk[65536];

    for (;;) {
        ssize_t n = read(STDIN_FILENO, chunk, sizeof(chunk));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            cf_wipe(chunk, sizeof(chunk));
            return cf_err_set(CF_E_IO, "cannot read stdin: %s", strerror(errno));
        }
        if (n == 0)
            break;
        if (out->len + (size_t)n > max) {
            cf_wipe(chunk, sizeof(chunk));
            return cf_err_set(CF_E_TOO_LARGE, "stdin holds more than %zu bytes", max);
        }
        if (cf_buf_put(out, chunk, (size_t)n) < 0) {
            cf_wipe(chunk, sizeof(chunk));
            return CF_E_NOMEM;
        }
    }
    cf_wipe(chunk, sizeof(chunk));
    return 0;
}

static int write_all(FILE *f, const uint8_t *p, size_t n)
{
    if (n > 0 && fwrite(p, 1, n, f) != n)
        return CF_E_IO;
    return fflush(f) == 0 ? 0 : CF_E_IO;
}

int cli_request(int argc, char **argv)
{
    enum {
        O_JOB = 256, O_DATA, O_FILE, O_OUTPUT, O_GATEWAY, O_TENANT, O_APIKEY_FILE, O_MANIFEST,
        O_CA, O_JWKS, O_RELEASE, O_RELEASE_FILE, O_CLIENT_KEY, O_TIMEOUT, O_VERBOSE, O_HELP
    };
    static const struct option opts[] = {
        {"job", required_argument, NULL, O_JOB},
        {"data", required_argument, NULL, O_DATA},
        {"file", required_argument, NULL, O_FILE},
        {"output", required_argument, NULL, O_OUTPUT},
        {"gateway", required_argument, NULL, O_GATEWAY},
        {"tenant", required_argument, NULL, O_TENANT},
        {"api-key-file", required_argument, NULL, O_APIKEY_FILE},
        {"manifest", required_argument, NULL, O_MANIFEST},
        {"ca", required_argument, NULL, O_CA},
        {"attestation-jwks", required_argument, NULL, O_JWKS},
        {"kms-release-key", required_argument, NULL, O_RELEASE},
        {"kms-release-key-file", required_argument, NULL, O_RELEASE_FILE},
        {"client-key", required_argument, NULL, O_CLIENT_KEY},
        {"timeout-ms", required_argument, NULL, O_TIMEOUT},
        {"verbose", no_argument, NULL, O_VERBOSE},
        {"help", no_argument, NULL, O_HELP},
        {NULL, 0, NULL, 0}};
    coffer_client_options o;
    const char *job = NULL, *data_arg = NULL, *file = NULL, *output = NULL, *apikey_file = NULL;
    const char *release = NULL, *release_file = NULL;
    coffer_client *client = NULL;
    coffer_result *res = NULL;
    cf_buf data, key;
    FILE *out = NULL;
    uint64_t timeout = 0;
    bool verbose = false, have_timeout = false;
    int c, err, rc, status = CLI_EXIT_USAGE;

    memset(&o, 0, sizeof(o));
    cf_buf_init_secret(&data, CF_ENV_MAX_PAYLOAD);
    cf_buf_init_secret(&key, CF_SDK_MAX_API_KEY + 2);
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case O_JOB: job = optarg; break;
        case O_DATA: data_arg = optarg; break;
        case O_FILE: file = optarg; break;
        case O_OUTPUT: output = optarg; break;
        case O_GATEWAY: o.gateway_url = optarg; break;
        case O_TENANT: o.tenant_id = optarg; break;
        case O_APIKEY_FILE: apikey_file = optarg; break;
        case O_MANIFEST: o.manifest_path = optarg; break;
        case O_CA: o.ca_path = optarg; break;
        case O_JWKS: o.attestation_jwks_path = optarg; break;
        case O_RELEASE: release = optarg; break;
        case O_RELEASE_FILE: release_file = optarg; break;
        case O_CLIENT_KEY: o.client_key_path = optarg; break;
        case O_TIMEOUT:
            if (cf_parse_u64(optarg, CF_SDK_MAX_TIMEOUT_MS, &timeout) != 0) {
                fprintf(stderr, "coffer request: --timeout-ms must be 0..%u\n",
                        (unsigned)CF_SDK_MAX_TIMEOUT_MS);
                goto out;
            }
            have_timeout = true;
            break;
        case O_VERBOSE: verbose = true; break;
        case 'h':
        case O_HELP: usage(stdout); status = CLI_EXIT_OK; goto out;
        default: usage(stderr); goto out;
        }
    }
    if (job == NULL || (data_arg == NULL) == (file == NULL) || optind != argc ||
        (release != NULL && release_file != NULL)) {
        fprintf(stderr, "coffer request: %s\n",
                optind != argc                     ? "unexpected argument"
                : job == NULL                      ? "--job is required"
                : release != NULL && release_file  ? "--kms-release-key and --kms-release-key-file exclude each other"
                                                   : "exactly one of --data and --file is required");
        usage(stderr);
        goto out;
    }

    /* Environment first, then the flags given override it. */
    {
        coffer_client_options env;
        memset(&env, 0, sizeof(env));
        if (coffer_client_options_from_env(&env) != 0) {
            fprintf(stderr, "coffer request: %s\n", coffer_client_last_error(NULL));
            status = CLI_EXIT_INPUT;
            goto out;
        }
#define CLI_PICK(field) o.field = o.field ? o.field : env.field
        CLI_PICK(gateway_url);
        CLI_PICK(tenant_id);
        CLI_PICK(manifest_path);
        CLI_PICK(ca_path);
        CLI_PICK(attestation_jwks_path);
        CLI_PICK(client_key_path);
#undef CLI_PICK
        o.api_key = env.api_key;
        o.timeout_ms = have_timeout ? (unsigned)timeout : env.timeout_ms;
        o.max_retries = env.max_retries;
        if (release != NULL || release_file != NULL) {
            o.kms_release_key = release;
            o.kms_release_key_path = release_file;
        } else {
            o.kms_release_key = env.kms_release_key;
            o.kms_release_key_path = env.kms_release_key_path;
        }
    }
    status = CLI_EXIT_INPUT;
    if (apikey_file != NULL) {
        rc = cf_file_read(apikey_file, CF_SDK_MAX_API_KEY + 1, &key);
        if (rc == 0)
            while (key.len > 0 && (key.data[key.len - 1] == '\n' || key.data[key.len - 1] == '\r'))
                key.len--;
        if (rc == 0)
            rc = cf_buf_nul_terminate(&key);
        if (rc != 0) {
            fprintf(stderr, "coffer request: API key: %s\n", cf_err_detail(rc));
            goto out;
        }
        o.api_key = (const char *)key.data;
    }
    if (file != NULL) {
        rc = strcmp(file, "-") == 0 ? read_stdin(CF_ENV_MAX_PAYLOAD, &data)
                                    : cf_file_read(file, CF_ENV_MAX_PAYLOAD, &data);
        if (rc != 0) {
            fprintf(stderr, "coffer request: %s\n", cf_err_detail(rc));
            goto out;
        }
    } else if (cf_buf_put_str(&data, data_arg) != 0) {
        fprintf(stderr, "coffer request: --data is too large\n");
        goto out;
    }
    if (output != NULL && (out = fopen(output, "wb")) == NULL) {
        fprintf(stderr, "coffer request: cannot create %s: %s\n", output, strerror(errno));
        goto out;
    }

    err = coffer_client_new(&o, &client);
    if (err != COFFER_OK) {
        fprintf(stderr, "coffer request: %s\n", coffer_client_last_error(NULL));
        status = exit_for(err);
        goto out;
    }
    err = coffer_request(client, job, data.data, data.len, &res);
    if (err != COFFER_OK && err != COFFER_E_JOB_FAILED) {
        fprintf(stderr, "coffer request: %s\n", coffer_client_last_error(client));
        status = exit_for(err);
        goto out;
    }
    if (verbose)
        fprintf(stderr, "coffer request: job '%s' ran on TEE %s (request %s, status %d)\n", job,
                coffer_result_tee_id(res), coffer_result_request_id(res),
                coffer_result_status(res));
    if (write_all(out != NULL ? out : stdout, coffer_result_data(res), coffer_result_size(res)) !=
        0) {
        fprintf(stderr, "coffer request: cannot write the output\n");
        status = CLI_EXIT_INPUT;
        goto out;
    }
    if (err == COFFER_E_JOB_FAILED)
        fprintf(stderr, "coffer request: %s\n", coffer_client_last_error(client));
    status = exit_for(err);
out:
    if (out != NULL && fclose(out) != 0 && status == CLI_EXIT_OK) {
        fprintf(stderr, "coffer request: cannot write %s\n", output);
        status = CLI_EXIT_INPUT;
    }
    coffer_result_free(res);
    coffer_client_free(client);
    cf_buf_free(&data);
    cf_buf_free(&key);
    return status;
}
