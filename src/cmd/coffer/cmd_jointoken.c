/*
 * coffer join-token create --tenant T --deployment D [--ttl DURATION] [--uses N] [--out FILE]
 *
 * A join token lets a TEE of deployment D register with the KMS
 * (docs/internals/kms.md "Join tokens"; registry.admin for tenant T). The KMS
 * keeps only its hash: the token is shown once. It admits a TEE to the
 * registration step only; the KMS still verifies the TEE's evidence itself.
 */
#include <stdio.h>
#include <string.h>

#include "api.h"
#include "base/buf.h"
#include "base/limits.h"
#include "base/parse.h"
#include "base/secmem.h"
#include "cli.h"

#define MAX_JOIN_TOKEN 128 /* "cjt_" + base64url of 32 bytes is 47 characters */

static int jointoken_create(int argc, char **argv)
{
    static const char *const prog = "coffer join-token create";
    static const cli_col cols[] = {
        {"ID", "id", CLI_COL_STR},           {"Tenant", "tenant", CLI_COL_STR},
        {"Deployment", "deployment", CLI_COL_STR}, {"Uses", "uses", CLI_COL_STR},
        {"Expires", "expires_at", CLI_COL_TIME},
    };
    const char *tenant = NULL, *deployment = NULL, *ttl_s = NULL, *uses_s = NULL, *out = NULL, *tok;
    const cli_opt opts[] = {{"tenant", CLI_ARG_STR, &tenant},
                            {"deployment", CLI_ARG_STR, &deployment},
                            {"ttl", CLI_ARG_STR, &ttl_s},
                            {"uses", CLI_ARG_STR, &uses_s},
                            {"out", CLI_ARG_STR, &out}};
    uint64_t ttl = 0, uses = 0;
    cli_api *a = NULL;
    json_t *body = NULL, *o = NULL;
    cf_buf line;
    cli_conn conn;
    int st;

    if (!cli_parse(prog,
                   "coffer join-token create --tenant T --deployment D [--ttl DURATION] [--uses N] [--out FILE]\n\n"
                   "Creates a token with which TEEs of deployment D (of tenant T, in the KMS's\n"
                   "manifest) register. DURATION default 1h, at most 30d; N registrations, default 1.\n"
                   "The token is shown ONCE; --out writes it to a new file of mode 0600 instead.\n",
                   argc, argv, opts, CF_ARRAY_LEN(opts), NULL, 0, &conn, &st))
        return st;
    if (tenant == NULL || deployment == NULL)
        return cli_usage_error(prog, "--tenant and --deployment are required");
    if (!cli_check_id(prog, "tenant id", tenant) || !cli_check_id(prog, "deployment", deployment))
        return CLI_EXIT_USAGE;
    if (ttl_s != NULL && (cf_parse_duration(ttl_s, CF_KMS_JOIN_TTL_MAX, &ttl) != 0 || ttl == 0))
        return cli_usage_error(prog, "--ttl must be a duration of 1 s to 30 days (e.g. 1h)");
    if (uses_s != NULL && (cf_parse_u64(uses_s, CF_KMS_JOIN_MAX_USES, &uses) != 0 || uses == 0))
        return cli_usage_error(prog, "--uses must be 1..%u", (unsigned)CF_KMS_JOIN_MAX_USES);
    body = json_pack("{s:s,s:s}", "tenant", tenant, "deployment", deployment);
    if (body == NULL || (ttl_s != NULL && json_object_set_new(body, "ttl", json_integer((json_int_t)ttl)) != 0) ||
        (uses_s != NULL && json_object_set_new(body, "uses", json_integer((json_int_t)uses)) != 0)) {
        json_decref(body);
        return cli_oom(prog);
    }
    st = CLI_EXIT_SERVICE;
    if (cli_api_new(prog, &conn, &a, &st) < 0)
        goto out;
    if (cli_api_call(a, "POST", "/v1/registry/join-tokens", body, true, &o) < 0) {
        st = cli_api_exit(a);
        goto out;
    }
    tok = json_string_value(json_object_get(o, "token"));
    if (tok == NULL || strnlen(tok, MAX_JOIN_TOKEN + 1) > MAX_JOIN_TOKEN) {
        fprintf(stderr, "%s: the answer holds no join token\n", prog);
        goto out;
    }
    if (out != NULL) {
        cf_buf_init_secret(&line, MAX_JOIN_TOKEN + 2);
        st = cf_buf_put_str(&line, tok) == 0 && cf_buf_put_u8(&line, '\n') == 0 &&
                     cli_write_new_file(prog, out, line.data, line.len, 0600) == 0
                 ? CLI_EXIT_OK
                 : CLI_EXIT_INPUT;
        cf_buf_free(&line);
        if (st != CLI_EXIT_OK) {
            fprintf(stderr, "%s: the token was created but could not be stored; let it expire and create "
                            "another\n", prog);
            goto out;
        }
        cli_json_wipe_str(o, "token");
        (void)json_object_del(o, "token");
    }
    if (conn.json) {
        st = cli_print_json(o) == 0 ? CLI_EXIT_OK : cli_oom(prog);
    } else {
        if (out != NULL)
            printf("Token:      written to %s (mode 0600)\n", out);
        else
            printf("Token:      %s\n", tok);
        cli_print_object(o, cols, CF_ARRAY_LEN(cols));
        st = CLI_EXIT_OK;
    }
    fflush(stdout);
    if (out == NULL)
        fprintf(stderr, "%s: store this join token now: it is shown only once (the KMS keeps only its hash)\n",
                prog);
out:
    cli_json_wipe_str(o, "token");
    json_decref(o);
    json_decref(body);
    cli_api_free(a);
    return st;
}

int cli_jointoken(int argc, char **argv)
{
    static const cli_sub subs[] = {
        {"create", "create --tenant T --deployment D [--ttl DURATION] [--uses N] [--out FILE]", jointoken_create},
    };

    return cli_dispatch("join-token",
                        "usage: coffer join-token <sub-command> [options]\n\nJoin tokens with which TEEs register "
                        "in the KMS's registry.",
                        subs, CF_ARRAY_LEN(subs), argc, argv);
}
