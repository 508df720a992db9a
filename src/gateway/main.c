/*
 * `cofferd gateway [--key=value ...]`: the public API gateway as its own
 * process (DESIGN.md §1). Options: `cofferd gateway --help`; behaviour:
 * gateway.h and docs/internals/gateway.md.
 */
#include <stdio.h>

#include "base/err.h"
#include "base/log.h"
#include "cmd/cofferd/services.h"
#include "gateway/gateway.h"

int cf_gateway_main(int argc, char **argv)
{
    cf_svc_def def = {.name = "gateway", .opts = cf_gw_options, .nopts = cf_gw_noptions};
    cf_svc *svc = NULL;
    cf_gw *gw = NULL;
    int rc;

    /* argv[0] is the service name; svc parses what follows. */
    rc = cf_svc_init(&def, argc > 0 ? argc - 1 : 0, argc > 0 ? argv + 1 : argv, &svc);
    if (rc == CF_E_NOT_FOUND)
        return 0; /* --help was printed */
    if (rc < 0) {
        fprintf(stderr, "cofferd gateway: %s\n", cf_err_detail(rc));
        return 1;
    }
    rc = cf_gw_new(svc, &gw);
    if (rc < 0) {
        fprintf(stderr, "cofferd gateway: %s\n", cf_err_detail(rc));
        cf_log(CF_LOG_ERROR, "gateway.start_failed", "reason", cf_err_detail(rc), NULL);
        cf_svc_free(svc);
        return 1;
    }
    rc = cf_svc_run(svc);
    if (rc < 0)
        fprintf(stderr, "cofferd gateway: %s\n", cf_err_detail(rc));
    /* cf_svc_run stopped the server: no handler uses the gateway any more. */
    cf_http_server_stop(cf_svc_http(svc), 0);
    cf_gw_free(gw);
    cf_svc_free(svc);
    return rc < 0 ? 1 : 0;
}
