/*
 * coffer apikey create --principal P [--ttl DURATION] [--out FILE]
 *               list --principal P | revoke KEY_ID [--reason TEXT]
 *
 * API keys of a principal (docs/internals/iam.md "API keys"). IAM stores only
 * a hash: the key is shown once, in the answer to create. The CLI prints it
 * (or writes it to a new 0600 file with --out) with a warning to store it, and
 * wipes its own copies. Revoking stops new access tokens at once; tokens
 * already issued expire within the token TTL.
 */
#include <stdio.h>
#include <string.h>

#include "api.h"
#include "base/buf.h"
#include "base/limits.h"
#include "base/parse.h"
#include "base/secmem.h"
#include "cli.h"

static const cli_col key_cols[] = {
    {"Key ID", "key_id", CLI_COL_STR},
    {"Principal", "principal", CLI_COL_STR},
    {"Tenant", "tenant", CLI_COL_STR},
    {"Status", "status", CLI_COL_STR},
    {"Created", "created_at", CLI_COL_TIME},
    {"Expires", "expires_at", CLI_COL_TIME},
    {"Last used", "last_used_at", CLI_COL_TIME},
    {"Revoked", "revoked_at", CLI_COL_TIME},
};

/* Prints (or stores) the key of a 201 answer. */
static int show_new_key(const char *prog, const cli_conn *conn, const char *out, json_t *o)
{
    static const cli_col cols[] = {
        {"Key ID", "key_id", CLI_COL_STR},    {"Principal", "principal", CLI_COL_STR},
        {"Tenant", "tenant", CLI_COL_STR},    {"Created", "created_at", CLI_COL_TIME},
        {"Expires", "expires_at", CLI_COL_TIME},
    };
    const char *key = json_string_value(json_object_get(o, "api_key"));
    cf_buf line;
    int st = CLI_EXIT_OK;

    if (key == NULL) {
        fprintf(stderr, "%s: the answer holds no api_key\n", prog);
        return CLI_EXIT_SERVICE;
    }
    if (out != NULL) {
        cf_buf_init_secret(&line, CF_SDK_MAX_API_KEY + 2);
        if (cf_buf_put_str(&line, key) != 0 || cf_buf_put_u8(&line, '\n') != 0 ||
            cli_write_new_file(prog, out, line.data, line.len, 0600) != 0)
            st = CLI_EXIT_INPUT;
        cf_buf_free(&line);
        if (st != CLI_EXIT_OK) {
            fprintf(stderr, "%s: the key was created but could not be stored; revoke key %s and create "
                            "another\n", prog, json_string_value(json_object_get(o, "key_id")));
            return st;
        }
        /* The file holds the key: --json and the table show everything else. */
        cli_json_wipe_str(o, "api_key");
        (void)json_object_del(o, "api_key");
        if (conn->json)
            return cli_print_json(o) == 0 ? CLI_EXIT_OK : cli_oom(prog);
        printf("API key:   written to %s (mode 0600)\n", out);
        cli_print_object(o, cols, CF_ARRAY_LEN(cols));
        return CLI_EXIT_OK;
    }
    if (conn->json) {
        if (cli_print_json(o) != 0)
            return cli_oom(prog);
    } else {
        printf("API key:   %s\n", key);
        cli_print_object(o, cols, CF_ARRAY_LEN(cols));
    }
    fflush(stdout);
    fprintf(stderr, "%s: store this API key now: it is shown only once and cannot be recovered (IAM keeps "
                    "only its hash)\n", prog);
    return CLI_EXIT_OK;
}

static int apikey_create(int argc, char **argv)
{
    static const char *const prog = "coffer apikey create";
    const char *principal = NULL, *ttl_s = NULL, *out = NULL;
    const cli_opt opts[] = {{"principal", CLI_ARG_STR, &principal},
                            {"ttl", CLI_ARG_STR, &ttl_s},
                            {"out", CLI_ARG_STR, &out}};
    char path[CF_CLI_MAX_PATH];
    uint64_t ttl = 0;
    cli_api *a = NULL;
    json_t *body = NULL, *o = NULL;
    cli_conn conn;
    int st;

    if (!cli_parse(prog,
                   "coffer apikey create --principal P [--ttl DURATION] [--out FILE]\n\n"
                   "Creates an API key for principal P and shows it ONCE. DURATION: 90d, 12h, 3600\n"
                   "(default 90 days, at most 730 days). --out writes the key to a new file of mode\n"
                   "0600 instead of printing it.\n",
                   argc, argv, opts, CF_ARRAY_LEN(opts), NULL, 0, &conn, &st))
        return st;
    if (principal == NULL)
        return cli_usage_error(prog, "--principal is required");
    if (!cli_check_id(prog, "principal id", principal) ||
        cf_fmt(path, sizeof(path), "/v1/iam/principals/%s/api-keys", principal) != 0)
        return CLI_EXIT_USAGE;
    if (ttl_s != NULL && (cf_parse_duration(ttl_s, CF_IAM_APIKEY_TTL_MAX, &ttl) != 0 || ttl == 0))
        return cli_usage_error(prog, "--ttl must be a duration of 1 s to 730 days (e.g. 90d)");
    body = ttl_s != NULL ? json_pack("{s:I}", "ttl", (json_int_t)ttl) : json_object();
    if (body == NULL)
        return cli_oom(prog);
    st = CLI_EXIT_SERVICE;
    if (cli_api_new(prog, &conn, &a, &st) < 0)
        goto out;
    if (cli_api_call(a, "POST", path, body, true, &o) < 0) {
        st = cli_api_exit(a);
        goto out;
    }
    st = show_new_key(prog, &conn, out, o);
out:
    cli_json_wipe_str(o, "api_key");
    json_decref(o);
    json_decref(body);
    cli_api_free(a);
    return st;
}

static int apikey_list(int argc, char **argv)
{
    static const char *const prog = "coffer apikey list";
    const char *principal = NULL;
    const cli_opt opts[] = {{"principal", CLI_ARG_STR, &principal}};
    char path[CF_CLI_MAX_PATH];
    cli_conn conn;
    int st;

    if (!cli_parse(prog, "coffer apikey list --principal P\n\nLists the API keys of P (metadata only).\n", argc,
                   argv, opts, CF_ARRAY_LEN(opts), NULL, 0, &conn, &st))
        return st;
    if (principal == NULL)
        return cli_usage_error(prog, "--principal is required");
    if (!cli_check_id(prog, "principal id", principal) ||
        cf_fmt(path, sizeof(path), "/v1/iam/principals/%s/api-keys", principal) != 0)
        return CLI_EXIT_USAGE;
    return cli_simple(prog, &conn, "GET", path, NULL, "api_keys", key_cols, CF_ARRAY_LEN(key_cols));
}

static int apikey_revoke(int argc, char **argv)
{
    static const char *const prog = "coffer apikey revoke";
    static const cli_col cols[] = {{"Key ID", "key_id", CLI_COL_STR}, {"Status", "status", CLI_COL_STR}};
    const char *id = NULL, *reason = NULL;
    const cli_opt opts[] = {{"reason", CLI_ARG_STR, &reason}};
    char path[CF_CLI_MAX_PATH];
    cli_conn conn;
    json_t *body;
    int st;

    if (!cli_parse(prog, "coffer apikey revoke KEY_ID [--reason TEXT]\n\n"
                         "Revokes an API key (KEY_ID: the 16 hex digits after 'cfk_').\n",
                   argc, argv, opts, CF_ARRAY_LEN(opts), &id, 1, &conn, &st))
        return st;
    if (!cli_check_id(prog, "key id", id) || cf_fmt(path, sizeof(path), "/v1/iam/api-keys/%s/revoke", id) != 0)
        return CLI_EXIT_USAGE;
    body = reason != NULL ? json_pack("{s:s}", "reason", reason) : json_object();
    if (body == NULL)
        return cli_usage_error(prog, "--reason must be UTF-8 text");
    return cli_simple(prog, &conn, "POST", path, body, NULL, cols, CF_ARRAY_LEN(cols));
}

int cli_apikey(int argc, char **argv)
{
    static const cli_sub subs[] = {
        {"create", "create --principal P [--ttl DURATION] [--out FILE]", apikey_create},
        {"list", "list --principal P", apikey_list},
        {"revoke", "revoke KEY_ID [--reason TEXT]", apikey_revoke},
    };

    return cli_dispatch("apikey", "usage: coffer apikey <sub-command> [options]\n\nAPI keys of principals (IAM).",
                        subs, CF_ARRAY_LEN(subs), argc, argv);
}
