/*
 * coffer tenant create ID [--name NAME] | list | show ID | disable ID [--reason TEXT]
 *
 * Tenants in IAM (docs/internals/iam.md "Authorisation"): create, list and
 * disable need a platform-admin; a tenant-admin may show its own tenant.
 * Disabling stops new access tokens of the tenant's principals at once; tokens
 * already issued expire within the token TTL.
 */
#include <stdio.h>

#include "api.h"
#include "base/limits.h"
#include "base/parse.h"
#include "cli.h"

static const cli_col tenant_cols[] = {
    {"ID", "id", CLI_COL_STR},
    {"Name", "name", CLI_COL_STR},
    {"Status", "status", CLI_COL_STR},
    {"Created", "created_at", CLI_COL_TIME},
    {"Disabled", "disabled_at", CLI_COL_TIME},
};

static int tenant_create(int argc, char **argv)
{
    static const char *const prog = "coffer tenant create";
    const char *id = NULL, *name = NULL;
    const cli_opt opts[] = {{"name", CLI_ARG_STR, &name}};
    cli_conn conn;
    json_t *body;
    int st;

    if (!cli_parse(prog, "coffer tenant create ID [--name NAME]\n\n"
                         "Creates a tenant (platform-admin). NAME defaults to ID.\n",
                   argc, argv, opts, CF_ARRAY_LEN(opts), &id, 1, &conn, &st))
        return st;
    if (!cli_check_id(prog, "tenant id", id))
        return CLI_EXIT_USAGE;
    body = json_pack("{s:s,s:s}", "id", id, "name", name != NULL ? name : id);
    if (body == NULL)
        return cli_usage_error(prog, "--name must be UTF-8 text");
    return cli_simple(prog, &conn, "POST", "/v1/iam/tenants", body, NULL, tenant_cols,
                      CF_ARRAY_LEN(tenant_cols));
}

static int tenant_list(int argc, char **argv)
{
    static const char *const prog = "coffer tenant list";
    cli_conn conn;
    int st;

    if (!cli_parse(prog, "coffer tenant list\n\nLists every tenant (platform-admin).\n", argc, argv, NULL, 0,
                   NULL, 0, &conn, &st))
        return st;
    return cli_simple_list(prog, &conn, "/v1/iam/tenants", "tenants", CF_IAM_MAX_LIST, tenant_cols,
                           CF_ARRAY_LEN(tenant_cols));
}

static int tenant_show(int argc, char **argv)
{
    static const char *const prog = "coffer tenant show";
    const char *id = NULL;
    char path[CF_CLI_MAX_PATH];
    cli_conn conn;
    int st;

    if (!cli_parse(prog, "coffer tenant show ID\n\nShows one tenant (platform-admin, or its tenant-admin).\n",
                   argc, argv, NULL, 0, &id, 1, &conn, &st))
        return st;
    if (!cli_check_id(prog, "tenant id", id) || cf_fmt(path, sizeof(path), "/v1/iam/tenants/%s", id) != 0)
        return CLI_EXIT_USAGE;
    return cli_simple(prog, &conn, "GET", path, NULL, NULL, tenant_cols, CF_ARRAY_LEN(tenant_cols));
}

static int tenant_disable(int argc, char **argv)
{
    static const char *const prog = "coffer tenant disable";
    static const cli_col cols[] = {{"ID", "id", CLI_COL_STR}, {"Status", "status", CLI_COL_STR}};
    const char *id = NULL, *reason = NULL;
    const cli_opt opts[] = {{"reason", CLI_ARG_STR, &reason}};
    char path[CF_CLI_MAX_PATH];
    cli_conn conn;
    json_t *body;
    int st;

    if (!cli_parse(prog, "coffer tenant disable ID [--reason TEXT]\n\n"
                         "Disables a tenant (platform-admin): its principals get no new access tokens.\n",
                   argc, argv, opts, CF_ARRAY_LEN(opts), &id, 1, &conn, &st))
        return st;
    if (!cli_check_id(prog, "tenant id", id) ||
        cf_fmt(path, sizeof(path), "/v1/iam/tenants/%s/disable", id) != 0)
        return CLI_EXIT_USAGE;
    body = reason != NULL ? json_pack("{s:s}", "reason", reason) : json_object();
    if (body == NULL)
        return cli_usage_error(prog, "--reason must be UTF-8 text");
    return cli_simple(prog, &conn, "POST", path, body, NULL, cols, CF_ARRAY_LEN(cols));
}

int cli_tenant(int argc, char **argv)
{
    static const cli_sub subs[] = {
        {"create", "create ID [--name NAME]", tenant_create},
        {"list", "list", tenant_list},
        {"show", "show ID", tenant_show},
        {"disable", "disable ID [--reason TEXT]", tenant_disable},
    };

    return cli_dispatch("tenant", "usage: coffer tenant <sub-command> [options]\n\nTenants (IAM).", subs,
                        CF_ARRAY_LEN(subs), argc, argv);
}
