/*
 * coffer deployment create BUNDLE --key DEVELOPER_KEY_FILE [--runtime PATH] [--tenant T]
 *                                 [--name NAME] [--json]
 * coffer deployment list [--tenant T] [connection options]
 *
 * create (offline, DESIGN.md §7): signs the bundle with the developer's
 * Ed25519 private key (writes BUNDLE/coffer.sig, tee/bundle.h), measures the
 * launch of the TEE runtime with it (attest/measure.h, as `deployment
 * measure`), and prints the manifest deployment entry — name, tenant, jobs,
 * developer_key, allowed measurement — to paste into the manifest
 * (docs/MANIFEST.md "deployments[]"). The private key is read into locked
 * memory and never written anywhere.
 *
 * list: the deployments of the manifest the attestation service runs with
 * (GET /v1/attestation/manifest through the gateway) and its hash.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api.h"
#include "attest/measure.h"
#include "base/buf.h"
#include "base/err.h"
#include "base/file.h"
#include "base/limits.h"
#include "base/parse.h"
#include "cli.h"
#include "crypto/keys.h"
#include "tee/bundle.h"

/* ---- create ------------------------------------------------------------------------------- */

static void create_usage(FILE *f)
{
    fprintf(f,
            "usage: coffer deployment create BUNDLE --key DEVELOPER_KEY_FILE [--runtime PATH]\n"
            "                                [--tenant T] [--name NAME] [--json]\n"
            "\n"
            "Signs the deployment bundle BUNDLE with the developer's Ed25519 private key\n"
            "(PKCS#8 PEM file; writes BUNDLE/coffer.sig), measures the launch of the TEE\n"
            "runtime with it, and prints the deployment entry to add to the manifest's\n"
            "\"deployments\". Works offline.\n"
            "\n"
            "  --key FILE      the developer's Ed25519 private key (PKCS#8 PEM)\n"
            "  --runtime PATH  TEE runtime to measure (default: coffer-tee next to this program)\n"
            "  --tenant T      tenant of the deployment (default $COFFER_TENANT_ID)\n"
            "  --name NAME     deployment name (default: the bundle's coffer.json name)\n"
            "  --json          {\"build_hash\",\"measurement\",\"signature\",\"deployment\":{...}}\n"
            "\n"
            "Exit status: 0 signed, 2 usage, 3 the key, bundle or runtime cannot be read or used.\n");
}

/* coffer-tee next to this program (as `deployment measure`). */
static int default_runtime(char *out, size_t size)
{
    ssize_t n = readlink("/proc/self/exe", out, size - 1);
    char *slash;

    if (n <= 0)
        return CF_E_IO;
    out[n] = '\0';
    slash = strrchr(out, '/');
    if (slash == NULL)
        return CF_E_IO;
    return cf_fmt(slash + 1, size - (size_t)(slash + 1 - out), "coffer-tee");
}

static int load_developer_key(const char *path, cf_key **ret)
{
    cf_buf pem;
    cf_key *k = NULL;
    int rc;

    cf_buf_init_secret(&pem, CF_KEY_MAX_PEM_BYTES);
    CF_GUARD_OUT(cf_file_read(path, CF_KEY_MAX_PEM_BYTES, &pem));
    rc = cf_key_from_private_pem((const char *)pem.data, pem.len, &k);
    if (rc < 0) {
        rc = cf_err_set(rc, "%s is not a PKCS#8 PEM private key: %s", path, cf_err_detail(rc));
        goto out;
    }
    if (cf_key_get_type(k) != CF_KEY_ED25519) {
        rc = cf_err_set(CF_E_UNSUPPORTED, "%s holds a %s key; bundles are signed with Ed25519 (RFC 8032)", path,
                        cf_key_type_name(cf_key_get_type(k)));
        goto out;
    }
    *ret = k;
    k = NULL;
out:
    cf_key_free(k);
    cf_buf_free(&pem);
    return rc;
}

static int read_bundle_manifest(const char *dir, cf_bundle_manifest **ret)
{
    char path[4096];
    cf_buf b;
    int rc;

    CF_GUARD(cf_fmt(path, sizeof(path), "%s/%s", dir, CF_BUNDLE_MANIFEST_FILE));
    cf_buf_init(&b, CF_TEE_MANIFEST_MAX_BYTES);
    rc = cf_file_read(path, CF_TEE_MANIFEST_MAX_BYTES, &b);
    if (rc == 0) {
        rc = cf_bundle_manifest_parse(b.data, b.len, ret);
        if (rc < 0)
            rc = cf_err_set(rc, "%s: %s", path, cf_err_detail(rc));
    }
    cf_buf_free(&b);
    return rc;
}

/* The docs/MANIFEST.md deployment entry, members in the documented order. */
static json_t *deployment_entry(const char *name, const char *tenant, const cf_bundle_manifest *m,
                                const char *devkey, const char *measurement)
{
    json_t *jobs = json_array(), *e;

    if (jobs == NULL)
        return NULL;
    for (size_t i = 0; i < m->n_jobs; i++)
        if (json_array_append_new(jobs, json_string(m->jobs[i].name)) != 0) {
            json_decref(jobs);
            return NULL;
        }
    e = json_pack("{s:s}", "name", name);
    if (e == NULL || (tenant != NULL && json_object_set_new(e, "tenant", json_string(tenant)) != 0) ||
        json_object_set_new(e, "jobs", jobs) != 0) {
        json_decref(e);
        return NULL;
    }
    if (json_object_set_new(e, "developer_key", json_string(devkey)) != 0 ||
        json_object_set_new(e, "platforms",
                            json_pack("{s:{s:[s]}}", "sev-snp", "measurements", measurement)) != 0) {
        json_decref(e);
        return NULL;
    }
    return e;
}

static int deployment_create(int argc, char **argv)
{
    static const char *const prog = "coffer deployment create";
    static const struct option opts[] = {{"key", required_argument, NULL, 'k'},
                                         {"runtime", required_argument, NULL, 'r'},
                                         {"tenant", required_argument, NULL, 't'},
                                         {"name", required_argument, NULL, 'n'},
                                         {"json", no_argument, NULL, 'j'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *key_path = NULL, *runtime = NULL, *tenant = NULL, *name = NULL, *bundle;
    char defrt[4096], bh[CF_BUILD_HASH_STR_LEN + 1], bh2[CF_BUILD_HASH_STR_LEN + 1];
    char mhex[2 * CF_MEASUREMENT_LEN + 1], devkey[64], sigpath[4096];
    uint8_t pub[CF_ED25519_LEN], rt_digest[48];
    cf_launch_config cfg = {.debug = false, .vmpl = 0};
    cf_bundle_manifest *m = NULL;
    cf_measure_result res;
    cf_key *key = NULL;
    json_t *entry = NULL, *all = NULL;
    char *text = NULL;
    size_t n = 0;
    bool json = false;
    int c, rc, st = CLI_EXIT_INPUT;

    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'k': key_path = optarg; break;
        case 'r': runtime = optarg; break;
        case 't': tenant = optarg; break;
        case 'n': name = optarg; break;
        case 'j': json = true; break;
        case 'h': create_usage(stdout); return CLI_EXIT_OK;
        default: create_usage(stderr); return CLI_EXIT_USAGE;
        }
    }
    if (optind + 1 != argc || key_path == NULL) {
        fprintf(stderr, "%s: %s\n", prog, optind + 1 != argc ? "give exactly one BUNDLE directory" : "--key is required");
        create_usage(stderr);
        return CLI_EXIT_USAGE;
    }
    bundle = argv[optind];
    if (tenant == NULL && (tenant = getenv("COFFER_TENANT_ID")) != NULL && tenant[0] == '\0')
        tenant = NULL;
    if (tenant != NULL && !cli_check_id(prog, "tenant", tenant))
        return CLI_EXIT_USAGE;
    if (name != NULL && !cf_bundle_name_valid(name)) {
        fprintf(stderr, "%s: --name must be 1-%d characters of A-Z a-z 0-9 . _ -\n", prog, CF_NAME_MAX_LEN);
        return CLI_EXIT_USAGE;
    }
    if (runtime == NULL) {
        if (default_runtime(defrt, sizeof(defrt)) != 0) {
            fprintf(stderr, "%s: cannot find coffer-tee next to this program; give --runtime\n", prog);
            return CLI_EXIT_INPUT;
        }
        runtime = defrt;
    }
    /* Everything is checked before the bundle is touched: a signature is
     * written only for a bundle whose coffer.json the runtime will accept. */
    rc = load_developer_key(key_path, &key);
    if (rc == 0)
        rc = read_bundle_manifest(bundle, &m);
    if (rc == 0)
        rc = cf_sha384_file(runtime, rt_digest); /* readable, a regular file */
    if (rc == 0)
        rc = cf_key_export_public(key, pub, sizeof(pub), &n);
    if (rc < 0) {
        fprintf(stderr, "%s: %s\n", prog, cf_err_detail(rc));
        goto out;
    }
    rc = cf_bundle_sign_dir(key, bundle, bh);
    if (rc == 0)
        rc = cf_measure(runtime, bundle, &cfg, &res);
    if (rc < 0) {
        fprintf(stderr, "%s: %s\n", prog, cf_err_detail(rc));
        goto out;
    }
    /* The measurement is of the bundle that was signed: a file that changed in
     * between would make the signature useless for the measured launch. */
    cf_build_hash_format(res.bundle_digest, bh2);
    if (strcmp(bh, bh2) != 0) {
        fprintf(stderr, "%s: the bundle changed while it was signed (%s, then %s); run again\n", prog, bh, bh2);
        goto out;
    }
    cf_hex_encode(res.measurement, sizeof(res.measurement), mhex);
    cf_b64url_encode(pub, n, devkey);
    if (cf_fmt(sigpath, sizeof(sigpath), "%s/%s", bundle, CF_BUNDLE_SIG_FILE) != 0) {
        st = CLI_EXIT_USAGE;
        goto out;
    }
    entry = deployment_entry(name != NULL ? name : m->name, tenant, m, devkey, mhex);
    if (entry == NULL) {
        st = cli_oom(prog);
        goto out;
    }
    if (json) {
        all = json_pack("{s:s,s:s,s:s,s:O}", "build_hash", bh, "measurement", mhex, "signature", sigpath,
                        "deployment", entry);
        if (all == NULL || cli_print_json(all) != 0) {
            st = cli_oom(prog);
            goto out;
        }
    } else {
        text = json_dumps(entry, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        if (text == NULL) {
            st = cli_oom(prog);
            goto out;
        }
        printf("Signed:        %s\nBuild Hash:    %s\nMeasurement:   %s\nRuntime:       %s\n"
               "Developer key: %s\n\nManifest deployment entry (add it to \"deployments\"):\n%s\n",
               sigpath, bh, mhex, runtime, devkey, text);
    }
    if (tenant == NULL)
        fprintf(stderr, "%s: no tenant given (--tenant or COFFER_TENANT_ID): add \"tenant\" to the entry\n", prog);
    st = CLI_EXIT_OK;
out:
    free(text);
    json_decref(all);
    json_decref(entry);
    cf_bundle_manifest_free(m);
    cf_key_free(key);
    return st;
}

/* ---- list ----------------------------------------------------------------------------------- */

static int deployment_list(int argc, char **argv)
{
    static const char *const prog = "coffer deployment list";
    static const cli_col cols[] = {
        {"Name", "name", CLI_COL_STR},
        {"Tenant", "tenant", CLI_COL_STR},
        {"Jobs", "jobs", CLI_COL_LIST},
        {"Measurements (sev-snp)", "platforms.sev-snp.measurements", CLI_COL_LIST},
    };
    const char *tenant = NULL;
    const cli_opt opts[] = {{"tenant", CLI_ARG_STR, &tenant}};
    cli_api *a = NULL;
    json_t *o = NULL, *deps, *rows = NULL, *d;
    const char *hash;
    size_t i;
    cli_conn conn;
    int st;

    if (!cli_parse(prog, "coffer deployment list [--tenant T]\n\n"
                         "Lists the deployments of the manifest the attestation service runs with\n"
                         "(tenant, jobs, allowed measurements) and the manifest hash.\n",
                   argc, argv, opts, CF_ARRAY_LEN(opts), NULL, 0, &conn, &st))
        return st;
    if (tenant != NULL && !cli_check_id(prog, "tenant id", tenant))
        return CLI_EXIT_USAGE;
    st = CLI_EXIT_SERVICE;
    if (cli_api_new(prog, &conn, &a, &st) < 0)
        goto out;
    if (cli_api_call(a, "GET", "/v1/attestation/manifest", NULL, false, &o) < 0) {
        st = cli_api_exit(a);
        goto out;
    }
    deps = json_object_get(json_object_get(o, "manifest"), "deployments");
    hash = json_string_value(json_object_get(o, "hash"));
    if (!json_is_array(deps) || hash == NULL) {
        fprintf(stderr, "%s: the answer holds no manifest deployments and hash\n", prog);
        goto out;
    }
    rows = json_array();
    if (rows == NULL) {
        st = cli_oom(prog);
        goto out;
    }
    json_array_foreach(deps, i, d) {
        const char *t = json_string_value(json_object_get(d, "tenant"));
        if ((tenant == NULL || (t != NULL && strcmp(t, tenant) == 0)) && json_array_append(rows, d) != 0) {
            st = cli_oom(prog);
            goto out;
        }
    }
    if (conn.json) {
        json_t *v = json_pack("{s:s,s:O}", "hash", hash, "deployments", rows);
        st = v != NULL && cli_print_json(v) == 0 ? CLI_EXIT_OK : cli_oom(prog);
        json_decref(v);
        goto out;
    }
    printf("Manifest hash: %s\n\n", hash);
    cli_print_table(rows, cols, CF_ARRAY_LEN(cols));
    st = CLI_EXIT_OK;
out:
    json_decref(rows);
    json_decref(o);
    cli_api_free(a);
    return st;
}

int cli_deployment_admin(int argc, char **argv)
{
    if (argc >= 1 && strcmp(argv[0], "create") == 0)
        return deployment_create(argc, argv);
    if (argc >= 1 && strcmp(argv[0], "list") == 0)
        return deployment_list(argc, argv);
    fprintf(stderr, "coffer deployment: unknown sub-command\n");
    return CLI_EXIT_USAGE;
}
