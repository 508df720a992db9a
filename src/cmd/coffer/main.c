#include <stdio.h>
#include <string.h>

#include "base/compiler.h"
#include "base/secmem.h"
#include "cli.h"

static const cli_cmd commands[] = {
    {"apikey", "API keys of principals: create (shown once), list, revoke", cli_apikey},
    {"attestation", "attest a deployment: fresh evidence verified against your manifest", cli_attestation},
    {"audit", "verify the tamper-evident audit log; list its entries", cli_audit},
    {"clientkey", "register a principal's X25519 client key (or generate one)", cli_clientkey},
    {"deployment", "deployment bundles: compute the launch measurement offline", cli_deployment},
    {"evidence", "verify or decode hardware evidence (SEV-SNP reports)", cli_evidence},
    {"init", "initialise a state directory for coffer up (prints the first admin's API key once)", cli_init},
    {"join-token", "join tokens with which TEEs register in the KMS", cli_jointoken},
    {"key", "tenant keys in the KMS: create, rotate, policy, revoke, destroy, rewrap", cli_key},
    {"principal", "principals (users, services, developers, clients) and their roles", cli_principal},
    {"request", "run a job on data in a verified TEE (client SDK)", cli_request},
    {"tee", "the TEE registry: list, show, quarantine, revoke", cli_tee},
    {"tenant", "tenants: create, list, show, disable", cli_tenant},
    {"up", "run the whole platform on this machine (simulated TEEs)", cli_up},
    {"version", "print the version", cli_version},
};

static void usage(FILE *f)
{
    fprintf(f, "usage: coffer <command> [options]\n\ncommands:\n");
    for (size_t i = 0; i < CF_ARRAY_LEN(commands); i++)
        fprintf(f, "  %-14s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\nRun 'coffer <command> --help' for a command's options.\n");
}

int main(int argc, char **argv)
{
    cf_harden_process();
    if (argc < 2) {
        usage(stderr);
        return CLI_EXIT_USAGE;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return CLI_EXIT_OK;
    }
    for (size_t i = 0; i < CF_ARRAY_LEN(commands); i++)
        if (strcmp(argv[1], commands[i].name) == 0)
            return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "coffer: unknown command '%s'\n\n", argv[1]);
    usage(stderr);
    return CLI_EXIT_USAGE;
}
