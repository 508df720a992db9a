/*
 * coffer principal create --tenant T --kind KIND --name NAME --role ROLE [--role ROLE ...]
 *                  list --tenant T | show ID | disable ID [--reason TEXT]
 *
 * Principals in IAM (docs/internals/iam.md). Roles are granted by IAM's
 * granting rule: platform principals (tenant "platform") may hold only
 * platform-admin, operator and auditor, and only a platform-admin creates
 * them; tenant principals hold tenant-admin, developer, client and auditor.
 * The CLI checks only the spelling; IAM decides (and says why it refuses).
 */
#include <stdio.h>
#include <string.h>

#include "api.h"
#include "base/limits.h"
#include "base/parse.h"
#include "cli.h"

static const cli_col principal_cols[] = {
    {"ID", "id", CLI_COL_STR},
    {"Tenant", "tenant", CLI_COL_STR},
    {"Kind", "kind", CLI_COL_STR},
    {"Name", "name", CLI_COL_STR},
    {"Roles", "roles", CLI_COL_LIST},
    {"Status", "status", CLI_COL_STR},
    {"Created", "created_at", CLI_COL_TIME},
    {"Disabled", "disabled_at", CLI_COL_TIME},
    {"Client key", "client_key.x25519", CLI_COL_STR},
};

static bool kind_ok(const char *k)
{
    static const char *const kinds[] = {"user", "service", "developer", "client"};

    for (size_t i = 0; i < CF_ARRAY_LEN(kinds); i++)
        if (strcmp(k, kinds[i]) == 0)
            return true;
    return false;
}

static bool role_ok(const char *r)
{
    static const char *const roles[] = {"platform-admin", "operator", "tenant-admin", "developer", "client",
                                        "auditor"};

    for (size_t i = 0; i < CF_ARRAY_LEN(roles); i++)
        if (strcmp(r, roles[i]) == 0)
            return true;
    return false;
}

/* --role values (each may also be a comma-separated list) → JSON array. */
static int roles_json(const char *prog, const cli_list *l, json_t **ret)
{
    json_t *arr = json_array();
    char one[64];

    if (arr == NULL)
        return cli_oom(prog);
    for (size_t i = 0; i < l->n; i++) {
        const char *s = l->items[i];
        while (*s != '\0') {
            size_t n = strcspn(s, ",");
            if (n == 0 || n >= sizeof(one)) {
                json_decref(arr);
                return cli_usage_error(prog, "--role '%s' is not a role", l->items[i]);
            }
            memcpy(one, s, n);
            one[n] = '\0';
            if (!role_ok(one)) {
                json_decref(arr);
                return cli_usage_error(prog, "unknown role '%s' (known: platform-admin, operator, tenant-admin, "
                                             "developer, client, auditor)", one);
            }
            if (json_array_append_new(arr, json_string(one)) != 0) {
                json_decref(arr);
                return cli_oom(prog);
            }
            s += n + (s[n] == ',');
        }
    }
    *ret = arr;
    return CLI_EXIT_OK;
}

static int principal_create(int argc, char **argv)
{
    static const char *const prog = "coffer principal create";
    const char *tenant = NULL, *kind = NULL, *name = NULL, *role_items[CF_CLI_MAX_ROLES];
    cli_list roles = {.items = role_items, .n = 0, .max = CF_CLI_MAX_ROLES};
    const cli_opt opts[] = {{"tenant", CLI_ARG_STR, &tenant},
                            {"kind", CLI_ARG_STR, &kind},
                            {"name", CLI_ARG_STR, &name},
                            {"role", CLI_ARG_LIST, &roles}};
    char path[CF_CLI_MAX_PATH];
    json_t *arr = NULL, *body;
    cli_conn conn;
    int st;

    if (!cli_parse(prog,
                   "coffer principal create --tenant T --kind KIND --name NAME --role ROLE [--role ROLE ...]\n\n"
                   "Creates a principal in tenant T. KIND: user, service, developer or client.\n"
                   "ROLE: platform-admin, operator, auditor (tenant 'platform' only, by a platform-admin);\n"
                   "tenant-admin, developer, client, auditor (other tenants). --role may repeat or\n"
                   "list roles separated by commas.\n",
                   argc, argv, opts, CF_ARRAY_LEN(opts), NULL, 0, &conn, &st))
        return st;
    if (tenant == NULL || kind == NULL || name == NULL || roles.n == 0)
        return cli_usage_error(prog, "--tenant, --kind, --name and at least one --role are required");
    if (!cli_check_id(prog, "tenant id", tenant))
        return CLI_EXIT_USAGE;
    if (!kind_ok(kind))
        return cli_usage_error(prog, "--kind must be user, service, developer or client");
    st = roles_json(prog, &roles, &arr);
    if (st != CLI_EXIT_OK)
        return st;
    body = json_pack("{s:s,s:s,s:o}", "kind", kind, "name", name, "roles", arr);
    if (body == NULL)
        return cli_usage_error(prog, "--name must be UTF-8 text");
    if (cf_fmt(path, sizeof(path), "/v1/iam/tenants/%s/principals", tenant) != 0) {
        json_decref(body);
        return CLI_EXIT_USAGE;
    }
    return cli_simple(prog, &conn, "POST", path, body, NULL, principal_cols, CF_ARRAY_LEN(principal_cols));
}

static int principal_list(int argc, char **argv)
{
    static const char *const prog = "coffer principal list";
    static const cli_col cols[] = {
        {"ID", "id", CLI_COL_STR},       {"Kind", "kind", CLI_COL_STR},         {"Name", "name", CLI_COL_STR},
        {"Roles", "roles", CLI_COL_LIST}, {"Status", "status", CLI_COL_STR},     {"Created", "created_at", CLI_COL_TIME},
    };
    const char *tenant = NULL;
    const cli_opt opts[] = {{"tenant", CLI_ARG_STR, &tenant}};
    char path[CF_CLI_MAX_PATH];
    cli_conn conn;
    int st;

    if (!cli_parse(prog, "coffer principal list --tenant T\n\nLists the principals of tenant T.\n", argc, argv,
                   opts, CF_ARRAY_LEN(opts), NULL, 0, &conn, &st))
        return st;
    if (tenant == NULL)
        return cli_usage_error(prog, "--tenant is required");
    if (!cli_check_id(prog, "tenant id", tenant) ||
        cf_fmt(path, sizeof(path), "/v1/iam/tenants/%s/principals", tenant) != 0)
        return CLI_EXIT_USAGE;
    return cli_simple_list(prog, &conn, path, "principals", CF_IAM_MAX_LIST, cols, CF_ARRAY_LEN(cols));
}

static int principal_show(int argc, char **argv)
{
    static const char *const prog = "coffer principal show";
    const char *id = NULL;
    char path[CF_CLI_MAX_PATH];
    cli_conn conn;
    int st;

    if (!cli_parse(prog, "coffer principal show ID\n\nShows one principal (roles, status, client key).\n", argc,
                   argv, NULL, 0, &id, 1, &conn, &st))
        return st;
    if (!cli_check_id(prog, "principal id", id) || cf_fmt(path, sizeof(path), "/v1/iam/principals/%s", id) != 0)
        return CLI_EXIT_USAGE;
    return cli_simple(prog, &conn, "GET", path, NULL, NULL, principal_cols, CF_ARRAY_LEN(principal_cols));
}

static int principal_disable(int argc, char **argv)
{
    static const char *const prog = "coffer principal disable";
    static const cli_col cols[] = {{"ID", "id", CLI_COL_STR}, {"Status", "status", CLI_COL_STR}};
    const char *id = NULL, *reason = NULL;
    const cli_opt opts[] = {{"reason", CLI_ARG_STR, &reason}};
    char path[CF_CLI_MAX_PATH];
    cli_conn conn;
    json_t *body;
    int st;

    if (!cli_parse(prog, "coffer principal disable ID [--reason TEXT]\n\n"
                         "Disables a principal: no new access tokens; a disabled administrator is\n"
                         "refused by IAM at once. You cannot disable yourself.\n",
                   argc, argv, opts, CF_ARRAY_LEN(opts), &id, 1, &conn, &st))
        return st;
    if (!cli_check_id(prog, "principal id", id) ||
        cf_fmt(path, sizeof(path), "/v1/iam/principals/%s/disable", id) != 0)
        return CLI_EXIT_USAGE;
    body = reason != NULL ? json_pack("{s:s}", "reason", reason) : json_object();
    if (body == NULL)
        return cli_usage_error(prog, "--reason must be UTF-8 text");
    return cli_simple(prog, &conn, "POST", path, body, NULL, cols, CF_ARRAY_LEN(cols));
}

int cli_principal(int argc, char **argv)
{
    static const cli_sub subs[] = {
        {"create", "create --tenant T --kind KIND --name NAME --role ROLE [--role ROLE ...]", principal_create},
        {"list", "list --tenant T", principal_list},
        {"show", "show ID", principal_show},
        {"disable", "disable ID [--reason TEXT]", principal_disable},
    };

    return cli_dispatch("principal", "usage: coffer principal <sub-command> [options]\n\nPrincipals (IAM): users, "
                                     "services, developers, clients and their roles.",
                        subs, CF_ARRAY_LEN(subs), argc, argv);
}
