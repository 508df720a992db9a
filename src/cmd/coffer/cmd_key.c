/*
 * coffer key create|rotate|show --tenant T
 *            policy --tenant T [--rotate-every DURATION] [--min-decryption-version N]
 *            revoke --tenant T [--version N] [--reason TEXT]
 *            destroy --tenant T --version N [--reason TEXT]
 *            rewrap --tenant T --value B64URL [--context B64URL]
 *
 * Tenant keys in the KMS (DESIGN.md §4; docs/internals/kms-keys.md, kms.md
 * "HTTP API"): key.admin for the tenant (a tenant-admin, in its own tenant)
 * for everything but rewrap, which needs datakey.use and works on the values
 * of the caller's own tenant. The key material never leaves the KMS; these
 * commands see versions, states and policy only.
 */
#include <stdio.h>
#include <string.h>

#include "api.h"
#include "base/buf.h"
#include "base/limits.h"
#include "base/parse.h"
#include "cli.h"

static const cli_col info_cols[] = {
    {"Tenant", "tenant", CLI_COL_STR},
    {"State", "state", CLI_COL_STR},
    {"Current version", "current_version", CLI_COL_STR},
    {"Min decryption version", "min_decryption_version", CLI_COL_STR},
    {"Rotate every", "rotate_every", CLI_COL_DURATION},
    {"Next rotation", "next_rotation_at", CLI_COL_TIME},
    {"Created", "created_at", CLI_COL_TIME},
};

/* Answers of rotate and of the revoke / destroy operations. */
static const cli_col op_cols[] = {
    {"Tenant", "tenant", CLI_COL_STR},
    {"Version", "version", CLI_COL_STR},
    {"State", "state", CLI_COL_STR},
    {"Current version", "current_version", CLI_COL_STR},
};

static bool tenant_path(const char *prog, const char *tenant, const char *suffix, char *path, size_t size)
{
    if (tenant == NULL) {
        cli_usage_error(prog, "--tenant is required");
        return false;
    }
    return cli_check_id(prog, "tenant id", tenant) &&
           cf_fmt(path, size, "/v1/kms/keys/%s%s", tenant, suffix) == 0;
}

static bool parse_version(const char *prog, const char *s, uint64_t *ret)
{
    if (cf_parse_u64(s, CF_KMS_MAX_KEY_VERSION, ret) == 0 && *ret > 0)
        return true;
    cli_usage_error(prog, "--version must be 1..%u", (unsigned)CF_KMS_MAX_KEY_VERSION);
    return false;
}

static int key_create(int argc, char **argv)
{
    static const char *const prog = "coffer key create";
    const char *tenant = NULL, *every = NULL;
    const cli_opt opts[] = {{"tenant", CLI_ARG_STR, &tenant}, {"rotate-every", CLI_ARG_STR, &every}};
    char path[CF_CLI_MAX_PATH];
    uint64_t secs = 0;
    json_t *body;
    cli_conn conn;
    int st;

    if (!cli_parse(prog, "coffer key create --tenant T [--rotate-every DURATION]\n\n"
                         "Creates the tenant key of T (version 1); DURATION (e.g. 30d, 0 = manual)\n"
                         "sets automatic rotation.\n",
                   argc, argv, opts, CF_ARRAY_LEN(opts), NULL, 0, &conn, &st))
        return st;
    if (!tenant_path(prog, tenant, "", path, sizeof(path)))
        return CLI_EXIT_USAGE;
    if (every != NULL && cf_parse_duration(every, CF_KMS_ROTATE_MAX_S, &secs) != 0)
        return cli_usage_error(prog, "--rotate-every must be 0 or a duration such as 30d");
    body = every != NULL ? json_pack("{s:I}", "rotate_every", (json_int_t)secs) : json_object();
    if (body == NULL)
        return cli_oom(prog);
    return cli_simple(prog, &conn, "POST", path, body, NULL, info_cols, CF_ARRAY_LEN(info_cols));
}

static int key_rotate(int argc, char **argv)
{
    static const char *const prog = "coffer key rotate";
    const char *tenant = NULL;
    const cli_opt opts[] = {{"tenant", CLI_ARG_STR, &tenant}};
    char path[CF_CLI_MAX_PATH];
    cli_conn conn;
    int st;

    if (!cli_parse(prog, "coffer key rotate --tenant T\n\nMakes a new current version of T's tenant key; older "
                         "versions stay usable for\ndecryption down to the min decryption version.\n",
                   argc, argv, opts, CF_ARRAY_LEN(opts), NULL, 0, &conn, &st))
        return st;
    if (!tenant_path(prog, tenant, "/rotate", path, sizeof(path)))
        return CLI_EXIT_USAGE;
    return cli_simple(prog, &conn, "POST", path, NULL, NULL, op_cols, CF_ARRAY_LEN(op_cols));
}

static int key_show(int argc, char **argv)
{
    static const char *const prog = "coffer key show";
    static const cli_col version_cols[] = {
        {"Version", "version", CLI_COL_STR},      {"State", "state", CLI_COL_STR},
        {"Created", "created_at", CLI_COL_TIME},  {"Revoked", "revoked_at", CLI_COL_TIME},
        {"Destroyed", "destroyed_at", CLI_COL_TIME}, {"Reason", "reason", CLI_COL_STR},
    };
    const char *tenant = NULL;
    const cli_opt opts[] = {{"tenant", CLI_ARG_STR, &tenant}};
    char path[CF_CLI_MAX_PATH];
    cli_api *a = NULL;
    json_t *o = NULL;
    cli_conn conn;
    int st;

    if (!cli_parse(prog, "coffer key show --tenant T\n\nShows T's tenant key: policy, current version and every "
                         "version's state.\n",
                   argc, argv, opts, CF_ARRAY_LEN(opts), NULL, 0, &conn, &st))
        return st;
    if (!tenant_path(prog, tenant, "", path, sizeof(path)))
        return CLI_EXIT_USAGE;
    st = CLI_EXIT_SERVICE;
    if (cli_api_new(prog, &conn, &a, &st) < 0)
        goto out;
    if (cli_api_call(a, "GET", path, NULL, false, &o) < 0) {
        st = cli_api_exit(a);
        goto out;
    }
    if (conn.json) {
        st = cli_print_json(o) == 0 ? CLI_EXIT_OK : cli_oom(prog);
        goto out;
    }
    cli_print_object(o, info_cols, CF_ARRAY_LEN(info_cols));
    printf("\n");
    cli_print_table(json_object_get(o, "versions"), version_cols, CF_ARRAY_LEN(version_cols));
    st = CLI_EXIT_OK;
out:
    json_decref(o);
    cli_api_free(a);
    return st;
}

static int key_policy(int argc, char **argv)
{
    static const char *const prog = "coffer key policy";
    const char *tenant = NULL, *every = NULL, *minv = NULL;
    const cli_opt opts[] = {{"tenant", CLI_ARG_STR, &tenant},
                            {"rotate-every", CLI_ARG_STR, &every},
                            {"min-decryption-version", CLI_ARG_STR, &minv}};
    char path[CF_CLI_MAX_PATH];
    uint64_t secs = 0, v = 0;
    json_t *body;
    cli_conn conn;
    int st;

    if (!cli_parse(prog,
                   "coffer key policy --tenant T [--rotate-every DURATION] [--min-decryption-version N]\n\n"
                   "Sets T's key policy: automatic rotation (DURATION, 0 = manual) and the oldest\n"
                   "version still used for decryption (it only rises; data under older versions\n"
                   "can no longer be decrypted: rewrap it first).\n",
                   argc, argv, opts, CF_ARRAY_LEN(opts), NULL, 0, &conn, &st))
        return st;
    if (!tenant_path(prog, tenant, "/policy", path, sizeof(path)))
        return CLI_EXIT_USAGE;
    if (every == NULL && minv == NULL)
        return cli_usage_error(prog, "give --rotate-every and/or --min-decryption-version");
    if (every != NULL && cf_parse_duration(every, CF_KMS_ROTATE_MAX_S, &secs) != 0)
        return cli_usage_error(prog, "--rotate-every must be 0 or a duration such as 30d");
    if (minv != NULL && (cf_parse_u64(minv, CF_KMS_MAX_KEY_VERSION, &v) != 0 || v == 0))
        return cli_usage_error(prog, "--min-decryption-version must be 1..%u", (unsigned)CF_KMS_MAX_KEY_VERSION);
    body = json_object();
    if (body == NULL || (every != NULL && json_object_set_new(body, "rotate_every", json_integer((json_int_t)secs)) != 0) ||
        (minv != NULL && json_object_set_new(body, "min_decryption_version", json_integer((json_int_t)v)) != 0)) {
        json_decref(body);
        return cli_oom(prog);
    }
    return cli_simple(prog, &conn, "POST", path, body, NULL, info_cols, CF_ARRAY_LEN(info_cols));
}

/* revoke (one version or the whole tenant key) and destroy (one version). */
static int key_reason_op(int argc, char **argv, bool destroy)
{
    const char *prog = destroy ? "coffer key destroy" : "coffer key revoke";
    const char *tenant = NULL, *version = NULL, *reason = NULL;
    const cli_opt opts[] = {{"tenant", CLI_ARG_STR, &tenant},
                            {"version", CLI_ARG_STR, &version},
                            {"reason", CLI_ARG_STR, &reason}};
    char path[CF_CLI_MAX_PATH], suffix[64];
    uint64_t v = 0;
    json_t *body;
    cli_conn conn;
    int st;

    if (!cli_parse(prog,
                   destroy ? "coffer key destroy --tenant T --version N [--reason TEXT]\n\n"
                             "Destroys version N of T's tenant key: its key material is deleted and what\n"
                             "it protects can never be decrypted again. Irreversible.\n"
                           : "coffer key revoke --tenant T [--version N] [--reason TEXT]\n\n"
                             "Revokes version N of T's tenant key, or without --version every version of\n"
                             "it (nothing of the tenant can be encrypted or decrypted until a rotation).\n",
                   argc, argv, opts, CF_ARRAY_LEN(opts), NULL, 0, &conn, &st))
        return st;
    if (destroy && version == NULL)
        return cli_usage_error(prog, "--version is required");
    if (version != NULL && !parse_version(prog, version, &v))
        return CLI_EXIT_USAGE;
    if (version != NULL)
        st = cf_fmt(suffix, sizeof(suffix), "/versions/%llu/%s", (unsigned long long)v, destroy ? "destroy" : "revoke");
    else
        st = cf_fmt(suffix, sizeof(suffix), "/revoke");
    if (st != 0 || !tenant_path(prog, tenant, suffix, path, sizeof(path)))
        return CLI_EXIT_USAGE;
    body = json_pack("{s:s}", "reason", reason != NULL ? reason : destroy ? "coffer key destroy" : "coffer key revoke");
    if (body == NULL)
        return cli_usage_error(prog, "--reason must be UTF-8 text");
    return cli_simple(prog, &conn, "POST", path, body, NULL, op_cols, CF_ARRAY_LEN(op_cols));
}

static int key_revoke(int argc, char **argv)
{
    return key_reason_op(argc, argv, false);
}

static int key_destroy(int argc, char **argv)
{
    return key_reason_op(argc, argv, true);
}

static int key_rewrap(int argc, char **argv)
{
    static const char *const prog = "coffer key rewrap";
    static const cli_col cols[] = {{"Ciphertext", "ciphertext", CLI_COL_STR}};
    const char *tenant = NULL, *value = NULL, *context = NULL;
    const cli_opt opts[] = {{"tenant", CLI_ARG_STR, &tenant},
                            {"value", CLI_ARG_STR, &value},
                            {"context", CLI_ARG_STR, &context}};
    cli_api *a = NULL;
    json_t *body = NULL, *o = NULL;
    cf_buf chk;
    cli_conn conn;
    int st;

    if (!cli_parse(prog,
                   "coffer key rewrap --tenant T --value B64URL [--context B64URL]\n\n"
                   "Re-encrypts a wrapped value of tenant T under the current key version and\n"
                   "prints the new value. The API key must be of tenant T (datakey.use, e.g. a\n"
                   "client); --context is the context the value was bound to, if any.\n",
                   argc, argv, opts, CF_ARRAY_LEN(opts), NULL, 0, &conn, &st))
        return st;
    if (tenant == NULL || value == NULL)
        return cli_usage_error(prog, "--tenant and --value are required");
    if (!cli_check_id(prog, "tenant id", tenant))
        return CLI_EXIT_USAGE;
    cf_buf_init(&chk, CF_KMS_MAX_WRAPPED);
    st = CLI_EXIT_INPUT;
    if (cf_b64url_decode(value, strlen(value), &chk) != 0 || chk.len == 0) {
        fprintf(stderr, "%s: --value must be unpadded base64url (at most %u bytes decoded)\n", prog,
                (unsigned)CF_KMS_MAX_WRAPPED);
        goto out;
    }
    cf_buf_free(&chk);
    cf_buf_init(&chk, CF_KMS_MAX_CONTEXT);
    if (context != NULL && cf_b64url_decode(context, strlen(context), &chk) != 0) {
        fprintf(stderr, "%s: --context must be unpadded base64url (at most %u bytes decoded)\n", prog,
                (unsigned)CF_KMS_MAX_CONTEXT);
        goto out;
    }
    body = json_pack("{s:s,s:s*}", "ciphertext", value, "context", context);
    if (body == NULL) {
        st = cli_oom(prog);
        goto out;
    }
    st = CLI_EXIT_SERVICE;
    if (cli_api_new(prog, &conn, &a, &st) < 0)
        goto out;
    if (cli_api_login(a) < 0) {
        st = cli_api_exit(a);
        goto out;
    }
    /* The KMS rewraps under the token's tenant (kms.md: the binding's tenant is
     * the caller's): say so rather than let a value of T fail to open. */
    if (strcmp(cli_api_tenant(a), tenant) != 0) {
        fprintf(stderr, "%s: the API key is of tenant '%s', not '%s': rewrap works on the values of the "
                        "caller's own tenant\n", prog, cli_api_tenant(a), tenant);
        st = CLI_EXIT_FAILED;
        goto out;
    }
    if (cli_api_call(a, "POST", "/v1/kms/rewrap", body, false, &o) < 0) {
        st = cli_api_exit(a);
        goto out;
    }
    if (conn.json)
        st = cli_print_json(o) == 0 ? CLI_EXIT_OK : cli_oom(prog);
    else {
        cli_print_object(o, cols, CF_ARRAY_LEN(cols));
        st = CLI_EXIT_OK;
    }
out:
    json_decref(o);
    json_decref(body);
    cli_api_free(a);
    cf_buf_free(&chk);
    return st;
}

int cli_key(int argc, char **argv)
{
    static const cli_sub subs[] = {
        {"create", "create --tenant T [--rotate-every DURATION]", key_create},
        {"rotate", "rotate --tenant T", key_rotate},
        {"show", "show --tenant T", key_show},
        {"policy", "policy --tenant T [--rotate-every DURATION] [--min-decryption-version N]", key_policy},
        {"revoke", "revoke --tenant T [--version N] [--reason TEXT]", key_revoke},
        {"destroy", "destroy --tenant T --version N [--reason TEXT]", key_destroy},
        {"rewrap", "rewrap --tenant T --value B64URL [--context B64URL]", key_rewrap},
    };

    return cli_dispatch("key", "usage: coffer key <sub-command> [options]\n\nTenant keys in the KMS: versions, "
                               "rotation policy, revocation, rewrap.",
                        subs, CF_ARRAY_LEN(subs), argc, argv);
}
