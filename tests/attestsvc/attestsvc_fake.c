/*
 * attestsvc_fake DIR: runs the fake KMS and fake TEEs of fake_platform.h until
 * SIGTERM/SIGINT (for tests/cli/test_attestation_cli.sh). Not a test itself.
 * Writes DIR/ready once everything listens.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "base/err.h"
#include "base/file.h"
#include "fake_platform.h"

int main(int argc, char **argv)
{
    fake_platform *p = NULL;
    char ready[4096];
    sigset_t set;
    int sig = 0, rc;

    if (argc != 2)
        return 2;
    /* Block the signals before any server thread starts, so that sigwait gets them. */
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    rc = fake_platform_start(argv[1], &p);
    if (rc != 0) {
        fprintf(stderr, "attestsvc_fake: %s\n", cf_err_detail(rc));
        return 1;
    }
    if ((size_t)snprintf(ready, sizeof(ready), "%s/ready", argv[1]) >= sizeof(ready) ||
        cf_file_write_atomic(ready, "1", 1, 0644) != 0) {
        fake_platform_stop(p);
        return 1;
    }
    sigwait(&set, &sig);
    fake_platform_stop(p);
    return 0;
}
