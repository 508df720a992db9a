/* Entry points of the services `cofferd` runs (one module each). */
#ifndef COFFER_CMD_COFFERD_SERVICES_H
#define COFFER_CMD_COFFERD_SERVICES_H

/* Each returns a process exit status; argv[0] is the service name. */
int cf_kms_main(int argc, char **argv);
int cf_iam_main(int argc, char **argv);
int cf_audit_main(int argc, char **argv);
int cf_attest_main(int argc, char **argv);
int cf_gateway_main(int argc, char **argv);

#endif
