/*
 * cofferd SERVICE [--key=value ...]: runs one Coffer service as its own process
 * (DESIGN.md §1: every service is a separate process, also on one machine).
 * Services are compiled in when their module exists (see program.cmake).
 */
#include <stdio.h>
#include <string.h>

#include "base/compiler.h"
#include "services.h"

struct service {
    const char *name;
    const char *summary;
    int (*main)(int argc, char **argv);
};

static const struct service services[] = {
#ifdef COFFER_HAVE_KMS
    {"kms", "key management on the HSM, one-time keys, TEE registry", cf_kms_main},
#endif
#ifdef COFFER_HAVE_IAM
    {"iam", "tenants, principals, API keys, access tokens", cf_iam_main},
#endif
#ifdef COFFER_HAVE_AUDIT
    {"audit", "tamper-evident audit log", cf_audit_main},
#endif
#ifdef COFFER_HAVE_ATTESTSVC
    {"attest", "attestation service: verification, EAR tokens, re-attestation", cf_attest_main},
#endif
#ifdef COFFER_HAVE_GATEWAY
    {"gateway", "public API gateway", cf_gateway_main},
#endif
    {NULL, NULL, NULL},
};

static void usage(FILE *f)
{
    fprintf(f, "usage: cofferd SERVICE [--key=value ...]   (cofferd SERVICE --help for options)\n\nservices:\n");
    for (size_t i = 0; services[i].name != NULL; i++)
        fprintf(f, "  %-10s %s\n", services[i].name, services[i].summary);
}

int main(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    for (size_t i = 0; services[i].name != NULL; i++)
        if (strcmp(argv[1], services[i].name) == 0)
            return services[i].main(argc - 1, argv + 1);
    fprintf(stderr, "cofferd: unknown service '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
