/*
 * Talking to the platform from the operator / user commands (tenant,
 * principal, apikey, clientkey, key, tee, join-token, deployment list):
 * connection options, the API-key → access-token exchange, authenticated JSON
 * calls through the gateway, and the two output forms (aligned tables or
 * key: value blocks for people, the service's JSON with --json).
 *
 * Every call goes to the gateway (DESIGN.md §6), which proxies /v1/iam,
 * /v1/kms, /v1/registry and /v1/attestation with the caller's bearer token:
 * each service checks the token and the permission itself, so the CLI holds
 * no authority of its own.
 *
 * Credentials: the API key comes from COFFER_API_KEY or --api-key-file (never a
 * command-line value: argv is readable by every user through ps). It and the
 * access token live in locked memory (cf_buf_init_secret) and are wiped on
 * cli_api_free. COFFER_TENANT_ID / --auth-tenant, when set, is sent with the
 * exchange so that IAM refuses a key of another tenant.
 *
 * Errors: functions return 0 or a negative cf_err code and print one line
 * "PROG: message" on stderr on failure; cli_api_exit() then gives the exit
 * status for it (cli.h): 1 when the service answered no (401 / 403 → "not
 * allowed", 400, 404, 409, 410, 413, 415), 2 for unusable options, 3 for an
 * unreadable API key file, 4 when the gateway is unreachable, times out,
 * answers 429 / 5xx, or breaks the protocol.
 */
#ifndef COFFER_CLI_API_H
#define COFFER_CLI_API_H

#include <getopt.h>
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "base/compiler.h"

/* ---- connection options (the same on every command) ---- */

/* getopt_long values of the shared options (above any short option). */
enum {
    CLI_O_URL = 0x400,
    CLI_O_CA,
    CLI_O_APIKEY_FILE,
    CLI_O_AUTH_TENANT,
    CLI_O_TIMEOUT,
    CLI_O_JSON,
    CLI_O_HELP,
};

#define CLI_CONN_OPTIONS                                                                 \
    {"url", required_argument, NULL, CLI_O_URL},                                         \
    {"ca", required_argument, NULL, CLI_O_CA},                                           \
    {"api-key-file", required_argument, NULL, CLI_O_APIKEY_FILE},                        \
    {"auth-tenant", required_argument, NULL, CLI_O_AUTH_TENANT},                         \
    {"timeout-ms", required_argument, NULL, CLI_O_TIMEOUT},                              \
    {"json", no_argument, NULL, CLI_O_JSON},                                             \
    {"help", no_argument, NULL, CLI_O_HELP}

/* Help text of the shared options, for the usage of every command. */
extern const char cli_conn_help[];

typedef struct {
    const char *url;          /* --url, else COFFER_GATEWAY_URL */
    const char *ca;           /* --ca, else COFFER_CA; NULL = system trust store */
    const char *api_key_file; /* --api-key-file, else COFFER_API_KEY */
    const char *auth_tenant;  /* --auth-tenant, else COFFER_TENANT_ID (optional) */
    unsigned timeout_ms;      /* --timeout-ms; 0 = CF_HTTP_CLIENT_TIMEOUT_MS */
    bool json;                /* --json */
    bool help;                /* --help was given */
} cli_conn;

/* Handles one shared option. Returns 1 if opt was one (stored in c), 0 if not,
 * or a negative cf_err after printing "PROG: message" for a bad value. */
int cli_conn_opt(const char *prog, cli_conn *c, int opt, const char *arg) CF_WUR;

/* ---- the session ---- */

typedef struct cli_api cli_api;

/* Resolves the options against the environment, checks the URL (https://, or
 * http:// only to a loopback address), reads the API key and prepares the
 * HTTP client. No network traffic yet. prog ("coffer tenant create") prefixes
 * every message; it is borrowed and must outlive *ret. On failure a message is
 * printed and *ret_exit holds the exit status (ret_exit may be NULL). */
int cli_api_new(const char *prog, const cli_conn *c, cli_api **ret, int *ret_exit) CF_WUR;
/* Wipes the API key and token. NULL is accepted. */
void cli_api_free(cli_api *a);

/* Exit status (CLI_EXIT_*) for the last failure of a call on a. */
int cli_api_exit(const cli_api *a);
/* Fetches the access token now (cli_api_call does so on first use). */
int cli_api_login(cli_api *a) CF_WUR;
/* Tenant of the access token (after the first successful call), or NULL. Borrowed. */
const char *cli_api_tenant(const cli_api *a);

/*
 * One authenticated JSON call: the access token is fetched on first use.
 * body (borrowed, may be NULL) is sent as application/json. On a 2xx answer
 * *ret_json receives the parsed object (caller json_decref's it). When
 * `secret` is set the answer holds a secret shown once (an API key, a join
 * token): the raw response bytes are wiped after parsing; the caller wipes the
 * string it prints with cli_json_wipe_str before releasing the object.
 */
int cli_api_call(cli_api *a, const char *method, const char *path, const json_t *body, bool secret,
                 json_t **ret_json) CF_WUR;

/* GET a listing, following "next" (…&after=NEXT) for at most CF_CLI_MAX_PAGES
 * pages of `page` items. path may carry a query. *ret_json is {"<key>": [all
 * items]}. */
int cli_api_list(cli_api *a, const char *path, const char *key, unsigned page, json_t **ret_json) CF_WUR;

/* ---- paths ---- */

/* 1 if s may be used as a path segment or query value: 1..CF_ID_MAX_LEN
 * characters of A-Z a-z 0-9 . _ : - (the id alphabet of IAM and the KMS),
 * and not "." or "..". Nothing needs escaping then. */
bool cli_id_ok(const char *s);
/* Like cli_id_ok, else prints "PROG: WHAT 'S' is not a valid id" and returns false. */
bool cli_check_id(const char *prog, const char *what, const char *s);

/* ---- output ---- */

typedef enum {
    CLI_COL_STR,   /* string (numbers and booleans printed as they are) */
    CLI_COL_TIME,  /* unix seconds → "2026-01-31 12:00:00 UTC"; 0 or absent → "-" */
    CLI_COL_LIST,  /* array of strings joined with "," */
    CLI_COL_DURATION, /* seconds → "90d", "12h", "15m", "45s"; 0 → "manual" */
} cli_col_kind;

typedef struct {
    const char *label; /* column header / label of a key: value line */
    const char *key;   /* member name; "a.b" reaches into a nested object */
    cli_col_kind kind;
} cli_col;

/* Aligned table of the objects in rows (a JSON array); "(none)" when empty. */
void cli_print_table(const json_t *rows, const cli_col *cols, size_t ncols);
/* "Label:   value" lines for obj; absent members are left out. */
void cli_print_object(const json_t *obj, const cli_col *cols, size_t ncols);
/* Compact JSON with sorted keys and a newline (the --json form). */
int cli_print_json(const json_t *v) CF_WUR;

/* Wipes the characters of obj[key] (a string) in place: for a secret that was
 * shown once, before json_decref. */
void cli_json_wipe_str(json_t *obj, const char *key);

/* ---- argument parsing ---- */

typedef enum {
    CLI_ARG_STR,  /* --name VALUE            dst: const char ** (last one wins) */
    CLI_ARG_FLAG, /* --name                  dst: bool * */
    CLI_ARG_LIST, /* --name VALUE, repeated  dst: cli_list * */
} cli_arg_kind;

typedef struct {
    const char **items; /* borrowed from argv */
    size_t n, max;
} cli_list;

typedef struct {
    const char *name; /* long option name, without "--" */
    cli_arg_kind kind;
    void *dst;
} cli_opt;

/*
 * Parses argv (argv[0] = the sub-command): the shared options into *conn, the
 * command's own options into their dst, and exactly npos positional arguments
 * into pos[0..npos-1]. Returns true to go on; false when the command is done:
 * --help printed usage and cli_conn_help on stdout (*ret_exit = 0), or a usage
 * error was reported (*ret_exit = CLI_EXIT_USAGE).
 */
bool cli_parse(const char *prog, const char *usage, int argc, char **argv, const cli_opt *opts,
               size_t nopts, const char **pos, size_t npos, cli_conn *conn, int *ret_exit) CF_WUR;

/* ---- one-call commands ---- */

/*
 * Opens a session, makes one call and prints the answer: with --json the
 * object itself; otherwise the array list_key of it as a table (list_key
 * non-NULL) or the object as key: value lines. body (may be NULL) is consumed.
 * Returns the exit status.
 */
int cli_simple(const char *prog, const cli_conn *conn, const char *method, const char *path, json_t *body,
               const char *list_key, const cli_col *cols, size_t ncols);
/* The same for a paged listing (cli_api_list). */
int cli_simple_list(const char *prog, const cli_conn *conn, const char *path, const char *key, unsigned page,
                    const cli_col *cols, size_t ncols);
/* "PROG: out of memory", CLI_EXIT_SERVICE. */
int cli_oom(const char *prog);

/* ---- files ---- */

/* Writes data to a NEW file at path with mode (0600 for secrets): written to a
 * temporary file in the same directory, synced, then link()ed into place, so
 * that no reader sees a partial file and an existing file is never replaced
 * (CF_E_EXISTS). Prints "PROG: ..." on failure. */
int cli_write_new_file(const char *prog, const char *path, const void *data, size_t len,
                       unsigned mode) CF_WUR;

/* ---- sub-command tables (one per command file) ---- */

typedef struct {
    const char *name;
    const char *synopsis; /* one line, after "coffer <cmd> " */
    int (*run)(int argc, char **argv); /* argv[0] is the sub-command */
} cli_sub;

/* Runs the sub-command named by argv[1]; prints the group's usage for --help
 * (exit 0) and for a missing or unknown sub-command (exit 2). */
int cli_dispatch(const char *cmd, const char *summary, const cli_sub *subs, size_t n, int argc,
                 char **argv);

/* Prints "PROG: message" and the usage hint; returns CLI_EXIT_USAGE. */
int cli_usage_error(const char *prog, const char *fmt, ...) CF_PRINTF(2, 3);

#endif
