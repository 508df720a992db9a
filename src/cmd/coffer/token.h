/*
 * Access tokens for the CLI's calls to the platform (DESIGN.md §5 step 1):
 * the credential comes from the environment or a file, never from the
 * command line (visible to every user through ps).
 *
 *   COFFER_ACCESS_TOKEN   an access token obtained elsewhere: used as is
 *   COFFER_API_KEY        an API key (or --api-key-file): exchanged at
 *                         POST {url}/v1/iam/token {"api_key","tenant"} (the gateway)
 *   COFFER_TENANT_ID      the tenant to name in the exchange (optional)
 */
#ifndef COFFER_CLI_TOKEN_H
#define COFFER_CLI_TOKEN_H

#include <stdbool.h>

#include "base/compiler.h"
#include "http/client.h"

/* The token into *ret (NUL-terminated secret memory: release with
 * cf_secure_free). api_key_file / tenant override the environment when not
 * NULL. CF_E_NOT_FOUND if no credential is configured; CF_E_UNAUTHENTICATED
 * if the key is refused; transport errors as cf_http_client_do. */
int cli_token(cf_http_client *c, const char *api_key_file, const char *tenant, char **ret) CF_WUR;
/* Whether cli_token exchanges an API key (so a new token can be fetched when
 * one expires), rather than using COFFER_ACCESS_TOKEN. */
bool cli_token_renewable(const char *api_key_file);

#endif
