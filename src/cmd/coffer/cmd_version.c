#include <stdio.h>

#include "cli.h"

int cli_version(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    printf("coffer %s\n", COFFER_VERSION);
    return CLI_EXIT_OK;
}
