/*
 * coffer-example: runs a job on a file (or stdin) in a TEE that this program
 * verifies itself, and writes the job's output to stdout.
 *
 *   export COFFER_GATEWAY_URL=https://127.0.0.1:8443 COFFER_TENANT_ID=demo-tenant \
 *          COFFER_API_KEY=... COFFER_MANIFEST=manifest.json COFFER_CA=ca.pem \
 *          COFFER_ATTESTATION_JWKS=attestation-jwks.json COFFER_KMS_RELEASE_KEY=...
 *   ./coffer-example sha256 report.pdf | xxd
 *   echo 'to be or not to be' | ./coffer-example -x echo
 *
 * Build: make (uses `pkg-config --cflags --libs coffer`). See docs/SDK.md.
 */
#include <coffer.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_INPUT (8u << 20) /* the platform's limit for one request */

static void usage(void)
{
    fprintf(stderr, "usage: coffer-example [-x] JOB [FILE]\n"
                    "  -x    print the output as hex\n"
                    "  FILE  input (default: stdin)\n"
                    "Options come from COFFER_* environment variables (docs/SDK.md).\n");
}

/* Reads all of f into a new buffer (at most MAX_INPUT bytes). */
static unsigned char *read_all(FILE *f, size_t *ret_len)
{
    size_t cap = 65536, len = 0;
    unsigned char *buf = malloc(cap), *bigger;

    while (buf != NULL) {
        size_t n = fread(buf + len, 1, cap - len, f);
        len += n;
        if (n == 0) {
            if (ferror(f))
                break;
            *ret_len = len;
            return buf;
        }
        if (len == cap) {
            if (cap >= MAX_INPUT + 1)
                break; /* too large */
            cap *= 2;
            bigger = realloc(buf, cap);
            if (bigger == NULL)
                break;
            buf = bigger;
        }
    }
    free(buf);
    return NULL;
}

int main(int argc, char **argv)
{
    coffer_client_options opts = {0};
    coffer_client *client = NULL;
    coffer_result *result = NULL;
    unsigned char *data = NULL;
    size_t len = 0;
    const char *job;
    FILE *in = stdin;
    int hex = 0, arg = 1, err, status = 1;

    if (arg < argc && strcmp(argv[arg], "-x") == 0) {
        hex = 1;
        arg++;
    }
    if (argc - arg < 1 || argc - arg > 2) {
        usage();
        return 2;
    }
    job = argv[arg];
    if (argc - arg == 2 && (in = fopen(argv[arg + 1], "rb")) == NULL) {
        perror(argv[arg + 1]);
        return 2;
    }
    data = read_all(in, &len);
    if (in != stdin)
        fclose(in);
    if (data == NULL || len > MAX_INPUT) {
        fprintf(stderr, "coffer-example: cannot read the input (at most %u bytes)\n", MAX_INPUT);
        goto out;
    }

    /* 1. Options: everything from the environment here; set fields directly to
     *    take them from elsewhere. */
    if (coffer_client_options_from_env(&opts) != COFFER_OK) {
        fprintf(stderr, "coffer-example: %s\n", coffer_client_last_error(NULL));
        goto out;
    }

    /* 2. The client: loads and checks the manifest, the pinned attestation JWKS
     *    and the pinned KMS release key. Create one and share it (thread-safe). */
    err = coffer_client_new(&opts, &client);
    if (err != COFFER_OK) {
        fprintf(stderr, "coffer-example: %s (%s)\n", coffer_client_last_error(NULL),
                coffer_error_name(err));
        goto out;
    }

    /* 3. The request: token, client key, verified session, one-time key, double
     *    envelope, send, decrypt, verify. */
    err = coffer_request(client, job, data, len, &result);
    if (err != COFFER_OK && err != COFFER_E_JOB_FAILED) {
        fprintf(stderr, "coffer-example: %s (%s)\n", coffer_client_last_error(client),
                coffer_error_name(err));
        if (err == COFFER_E_ATTESTATION)
            fprintf(stderr, "coffer-example: failed check: %s\n",
                    coffer_client_last_failed_check(client));
        if (err == COFFER_E_RATE_LIMITED && coffer_client_last_retry_after(client) >= 0)
            fprintf(stderr, "coffer-example: try again in %ld s\n",
                    coffer_client_last_retry_after(client));
        goto out;
    }

    /* 4. The answer, authenticated: it came from the TEE the data was sealed to. */
    fprintf(stderr, "coffer-example: job '%s' ran on TEE %s (request %s), status %d\n", job,
            coffer_result_tee_id(result), coffer_result_request_id(result),
            coffer_result_status(result));
    if (hex) {
        const unsigned char *p = coffer_result_data(result);
        for (size_t i = 0; i < coffer_result_size(result); i++)
            printf("%02x", p[i]);
        printf("\n");
    } else {
        fwrite(coffer_result_data(result), 1, coffer_result_size(result), stdout);
    }
    if (fflush(stdout) != 0)
        goto out;
    if (err == COFFER_E_JOB_FAILED) {
        fprintf(stderr, "coffer-example: %s\n", coffer_client_last_error(client));
        status = 3;
        goto out;
    }
    status = 0;
out:
    coffer_result_free(result); /* wipes the output */
    coffer_client_free(client); /* wipes keys and tokens */
    free(data);
    return status;
}
