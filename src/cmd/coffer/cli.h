/*
 * The `coffer` command-line tool: one file per subcommand, dispatched from the
 * single table in main.c (wireguard-tools style).
 *
 * Exit codes (docs/CLI.md): 0 success; 1 the operation ran and the answer is
 * "no" (verification failed, request refused); 2 usage error; 3 input could not
 * be read or parsed; 4 a service could not be reached or failed.
 */
#ifndef COFFER_CLI_H
#define COFFER_CLI_H

enum {
    CLI_EXIT_OK = 0,
    CLI_EXIT_FAILED = 1,
    CLI_EXIT_USAGE = 2,
    CLI_EXIT_INPUT = 3,
    CLI_EXIT_SERVICE = 4,
};

typedef struct {
    const char *name;
    const char *summary;
    /* argv[0] is the subcommand name. */
    int (*run)(int argc, char **argv);
} cli_cmd;

/* Subcommands (one file each). */
int cli_version(int argc, char **argv);
int cli_evidence(int argc, char **argv);
int cli_attestation(int argc, char **argv);
int cli_deployment(int argc, char **argv);
int cli_up(int argc, char **argv);
int cli_init(int argc, char **argv);
int cli_request(int argc, char **argv);
int cli_audit(int argc, char **argv);
int cli_tenant(int argc, char **argv);
int cli_principal(int argc, char **argv);
int cli_apikey(int argc, char **argv);
int cli_clientkey(int argc, char **argv);
int cli_key(int argc, char **argv);
int cli_tee(int argc, char **argv);
int cli_jointoken(int argc, char **argv);
/* `deployment create` and `deployment list` (argv[0] is "create" or "list"). */
int cli_deployment_admin(int argc, char **argv);

#endif
