/*
 * coffer deployment measure BUNDLE [--runtime PATH] [--debug] [--vmpl N] [--json]
 *
 * Computes, offline, the launch measurement a TEE running the Coffer runtime
 * with this deployment bundle will report, so that a customer can reproduce the
 * value the manifest allows (DESIGN.md §3 "Measurement";
 * docs/internals/simulator.md gives the exact definition).
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "attest/measure.h"
#include "base/err.h"
#include "base/parse.h"
#include "cli.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: coffer deployment measure BUNDLE [--runtime PATH] [--debug] [--vmpl N] [--json]\n"
               "\n"
               "Prints the build hash of a deployment bundle and the launch measurement of the\n"
               "TEE runtime (default: coffer-tee next to this program) running it.\n");
}

static int cmd_measure(int argc, char **argv)
{
    static const struct option opts[] = {{"runtime", required_argument, NULL, 'r'},
                                         {"debug", no_argument, NULL, 'd'},
                                         {"vmpl", required_argument, NULL, 'v'},
                                         {"json", no_argument, NULL, 'j'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *runtime = NULL;
    char defrt[4096], mhex[2 * CF_MEASUREMENT_LEN + 1], rhex[97], build[128];
    cf_launch_config cfg = {.debug = false, .vmpl = 0};
    cf_measure_result res;
    int json = 0, c, rc;
    uint64_t v;

    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'r': runtime = optarg; break;
        case 'd': cfg.debug = true; break;
        case 'j': json = 1; break;
        case 'v':
            if (cf_parse_u64(optarg, 3, &v) != 0) {
                fprintf(stderr, "coffer deployment measure: --vmpl must be 0..3\n");
                return CLI_EXIT_USAGE;
            }
            cfg.vmpl = (uint32_t)v;
            break;
        case 'h': usage(stdout); return CLI_EXIT_OK;
        default: usage(stderr); return CLI_EXIT_USAGE;
        }
    }
    if (optind + 1 != argc) {
        usage(stderr);
        return CLI_EXIT_USAGE;
    }
    if (runtime == NULL) {
        ssize_t n = readlink("/proc/self/exe", defrt, sizeof(defrt) - 1);
        char *slash;
        if (n <= 0)
            return CLI_EXIT_INPUT;
        defrt[n] = 0;
        slash = strrchr(defrt, '/');
        if (slash == NULL || cf_fmt(slash + 1, sizeof(defrt) - (size_t)(slash + 1 - defrt), "coffer-tee") != 0)
            return CLI_EXIT_INPUT;
        runtime = defrt;
    }
    rc = cf_measure(runtime, argv[optind], &cfg, &res);
    if (rc != 0) {
        fprintf(stderr, "coffer deployment measure: %s\n", cf_err_detail(rc));
        return CLI_EXIT_INPUT;
    }
    cf_hex_encode(res.measurement, sizeof(res.measurement), mhex);
    cf_hex_encode(res.runtime_sha384, sizeof(res.runtime_sha384), rhex);
    cf_build_hash_format(res.bundle_digest, build);
    if (json)
        printf("{\"build_hash\":\"%s\",\"measurement\":\"%s\",\"runtime_sha384\":\"%s\",\"policy\":\"0x%llx\","
               "\"debug\":%s,\"vmpl\":%u}\n",
               build, mhex, rhex, (unsigned long long)res.policy, cfg.debug ? "true" : "false", cfg.vmpl);
    else
        printf("Build Hash:   %s\nMeasurement:  %s\nRuntime:      %s (sha384 %s)\nPolicy:       0x%llx%s\n",
               build, mhex, runtime, rhex, (unsigned long long)res.policy, cfg.debug ? " (DEBUG)" : "");
    return CLI_EXIT_OK;
}

int cli_deployment(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "measure") == 0)
        return cmd_measure(argc - 1, argv + 1);
    if (argc >= 2 && (strcmp(argv[1], "create") == 0 || strcmp(argv[1], "list") == 0))
        return cli_deployment_admin(argc - 1, argv + 1); /* cmd_deployment_admin.c */
    if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        printf("usage: coffer deployment measure BUNDLE [...]\n\n"
               "  measure   compute a bundle's build hash and launch measurement offline\n");
        return CLI_EXIT_OK;
    }
    fprintf(stderr, "usage: coffer deployment measure BUNDLE [...] (see 'coffer deployment --help')\n");
    return CLI_EXIT_USAGE;
}
