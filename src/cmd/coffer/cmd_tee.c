/*
 * coffer tee list [--tenant T] [--deployment D] [--status S] | show ID
 *            quarantine ID --reason TEXT | revoke ID --reason TEXT
 *
 * The KMS's TEE registry (docs/internals/kms.md "Registry"): reads need
 * registry.read (limited to the caller's tenant unless platform), quarantine
 * and revoke need registry.admin. Both take the TEE out of service and revoke
 * its keys at once; they are terminal (a fixed TEE registers again with a new
 * key and id).
 */
#include <stdio.h>
#include <string.h>

#include "api.h"
#include "base/buf.h"
#include "base/limits.h"
#include "base/parse.h"
#include "cli.h"

static const cli_col tee_cols[] = {
    {"ID", "id", CLI_COL_STR},
    {"Tenant", "tenant", CLI_COL_STR},
    {"Deployment", "deployment", CLI_COL_STR},
    {"Platform", "platform", CLI_COL_STR},
    {"Status", "status", CLI_COL_STR},
    {"Reason", "reason", CLI_COL_STR},
    {"Endpoint", "endpoint", CLI_COL_STR},
    {"Measurement", "measurement", CLI_COL_STR},
    {"Chip ID", "chip_id", CLI_COL_STR},
    {"Public key", "public_key", CLI_COL_STR},
    {"Evidence digest", "evidence_digest", CLI_COL_STR},
    {"Registered", "registered_at", CLI_COL_TIME},
    {"Last attested", "last_attested_at", CLI_COL_TIME},
    {"Attestations", "attestation_count", CLI_COL_STR},
};

static int tee_list(int argc, char **argv)
{
    static const char *const prog = "coffer tee list";
    static const cli_col cols[] = {
        {"ID", "id", CLI_COL_STR},
        {"Tenant", "tenant", CLI_COL_STR},
        {"Deployment", "deployment", CLI_COL_STR},
        {"Status", "status", CLI_COL_STR},
        {"Endpoint", "endpoint", CLI_COL_STR},
        {"Last attested", "last_attested_at", CLI_COL_TIME},
    };
    const char *tenant = NULL, *deployment = NULL, *status = NULL;
    const cli_opt opts[] = {{"tenant", CLI_ARG_STR, &tenant},
                            {"deployment", CLI_ARG_STR, &deployment},
                            {"status", CLI_ARG_STR, &status}};
    char path[CF_CLI_MAX_PATH];
    unsigned sep = 0;
    cf_buf b;
    cli_conn conn;
    int st;

    if (!cli_parse(prog, "coffer tee list [--tenant T] [--deployment D] [--status active|quarantined|revoked]\n\n"
                         "Lists the registered TEEs (every page).\n",
                   argc, argv, opts, CF_ARRAY_LEN(opts), NULL, 0, &conn, &st))
        return st;
    if ((tenant != NULL && !cli_check_id(prog, "tenant id", tenant)) ||
        (deployment != NULL && !cli_check_id(prog, "deployment", deployment)))
        return CLI_EXIT_USAGE;
    if (status != NULL && strcmp(status, "active") != 0 && strcmp(status, "quarantined") != 0 &&
        strcmp(status, "revoked") != 0)
        return cli_usage_error(prog, "--status must be active, quarantined or revoked");
    /* Every value is an id (checked above): nothing needs percent-encoding. */
    const struct {
        const char *name, *value;
    } filters[] = {{"tenant", tenant}, {"deployment", deployment}, {"status", status}};
    cf_buf_init(&b, sizeof(path) - 1);
    st = cf_buf_put_str(&b, "/v1/registry/tees");
    for (size_t i = 0; st == 0 && i < CF_ARRAY_LEN(filters); i++)
        if (filters[i].value != NULL)
            st = cf_buf_printf(&b, "%c%s=%s", sep++ == 0 ? '?' : '&', filters[i].name, filters[i].value);
    if (st == 0)
        st = cf_fmt(path, sizeof(path), "%.*s", (int)b.len, (const char *)b.data);
    cf_buf_free(&b);
    if (st != 0)
        return cli_usage_error(prog, "filters too long");
    return cli_simple_list(prog, &conn, path, "tees", CF_KMS_LIST_MAX, cols, CF_ARRAY_LEN(cols));
}

static int tee_show(int argc, char **argv)
{
    static const char *const prog = "coffer tee show";
    const char *id = NULL;
    char path[CF_CLI_MAX_PATH];
    cli_conn conn;
    int st;

    if (!cli_parse(prog, "coffer tee show ID\n\nShows one registered TEE: status, measurement, chip id, key, "
                         "attestation times.\n",
                   argc, argv, NULL, 0, &id, 1, &conn, &st))
        return st;
    if (!cli_check_id(prog, "TEE id", id) || cf_fmt(path, sizeof(path), "/v1/registry/tees/%s", id) != 0)
        return CLI_EXIT_USAGE;
    return cli_simple(prog, &conn, "GET", path, NULL, NULL, tee_cols, CF_ARRAY_LEN(tee_cols));
}

static int tee_state(int argc, char **argv, bool revoke)
{
    const char *prog = revoke ? "coffer tee revoke" : "coffer tee quarantine";
    const char *id = NULL, *reason = NULL;
    const cli_opt opts[] = {{"reason", CLI_ARG_STR, &reason}};
    char path[CF_CLI_MAX_PATH];
    json_t *body;
    cli_conn conn;
    int st;

    if (!cli_parse(prog,
                   revoke ? "coffer tee revoke ID --reason TEXT\n\n"
                            "Revokes a TEE (active or quarantined): no key is ever released to it again\n"
                            "and its keys are revoked.\n"
                          : "coffer tee quarantine ID --reason TEXT\n\n"
                            "Quarantines an active TEE: the next key release to it is refused and its\n"
                            "keys are revoked.\n",
                   argc, argv, opts, CF_ARRAY_LEN(opts), &id, 1, &conn, &st))
        return st;
    if (reason == NULL || reason[0] == '\0')
        return cli_usage_error(prog, "--reason is required (it is recorded in the registry and the audit log)");
    if (strnlen(reason, CF_KMS_MAX_REASON + 1) > CF_KMS_MAX_REASON)
        return cli_usage_error(prog, "--reason is longer than %d bytes", CF_KMS_MAX_REASON);
    if (!cli_check_id(prog, "TEE id", id) ||
        cf_fmt(path, sizeof(path), "/v1/registry/tees/%s/%s", id, revoke ? "revoke" : "quarantine") != 0)
        return CLI_EXIT_USAGE;
    body = json_pack("{s:s}", "reason", reason);
    if (body == NULL)
        return cli_usage_error(prog, "--reason must be UTF-8 text");
    return cli_simple(prog, &conn, "POST", path, body, NULL, tee_cols, CF_ARRAY_LEN(tee_cols));
}

static int tee_quarantine(int argc, char **argv)
{
    return tee_state(argc, argv, false);
}

static int tee_revoke(int argc, char **argv)
{
    return tee_state(argc, argv, true);
}

int cli_tee(int argc, char **argv)
{
    static const cli_sub subs[] = {
        {"list", "list [--tenant T] [--deployment D] [--status S]", tee_list},
        {"show", "show ID", tee_show},
        {"quarantine", "quarantine ID --reason TEXT", tee_quarantine},
        {"revoke", "revoke ID --reason TEXT", tee_revoke},
    };

    return cli_dispatch("tee", "usage: coffer tee <sub-command> [options]\n\nThe TEE registry (KMS): registered "
                               "TEEs, quarantine, revocation.",
                        subs, CF_ARRAY_LEN(subs), argc, argv);
}
