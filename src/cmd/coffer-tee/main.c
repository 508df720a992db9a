/*
 * coffer-tee: the TEE runtime (DESIGN.md §1, §5–§7; docs/internals/tee.md).
 *
 *   coffer-tee [run] [--key=value ...]          serve (options: coffer-tee --help)
 *   coffer-tee sign-bundle --bundle DIR (--key FILE | --demo-key)
 *                                               write DIR/coffer.sig, print the build_hash
 *   coffer-tee verify-bundle --bundle DIR --developer-key KEY
 *                                               check a bundle as the runtime would
 *   coffer-tee demo-key                         print the demo developer public key
 *
 * Serving: generate the key pair (inside, in locked memory, never written
 * anywhere), verify the bundle and its developer signature (refuse to start
 * otherwise), register with the KMS (nonce, evidence bound to the key, join
 * token; retried with back-off while the KMS is not up), then serve the HTTP
 * API until SIGTERM/SIGINT/SIGHUP. Under coffer-launch the provider is the
 * launcher (COFFER_LAUNCHER_FD), found automatically.
 *
 * Exit codes: 0 stopped cleanly, 1 start-up failure (configuration, bundle,
 * registration, listening), 2 usage.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attest/measure.h"
#include "base/config.h"
#include "base/err.h"
#include "base/file.h"
#include "base/limits.h"
#include "base/log.h"
#include "base/parse.h"
#include "base/secmem.h"
#include "crypto/keys.h"
#include "http/server.h"
#include "tee/bundle.h"
#include "tee/kmswire.h"
#include "tee/runtime.h"

enum { EXIT_START = 1, EXIT_USAGE = 2 };

static const cf_config_opt options[] = {
    {"kms.url", CF_CFG_STRING, NULL, "KMS base URL, e.g. https://127.0.0.1:8443", CF_CFG_REQUIRED, 0, 0},
    {"kms.ca", CF_CFG_PATH, NULL, "CA certificate (PEM) that the KMS's TLS certificate chains to", 0, 0, 0},
    {"kms.peer_id", CF_CFG_STRING, "spiffe://coffer/kms", "SPIFFE id the KMS certificate must carry (https)", 0, 0, 0},
    {"kms.release_key", CF_CFG_STRING, NULL, "pinned KMS release key: base64url X25519 public key", CF_CFG_REQUIRED, 0, 0},
    {"kms.register_timeout", CF_CFG_DURATION, "60s", "keep retrying the registration this long", 0, 0, CF_TEE_REGISTER_WAIT_MAX_S},
    {"join_token", CF_CFG_STRING, NULL, "registry join token (secret; @/path/to/file)", CF_CFG_SECRET | CF_CFG_REQUIRED, 0, 0},
    {"bundle", CF_CFG_PATH, NULL, "deployment bundle directory", CF_CFG_REQUIRED, 0, 0},
    {"deployment.name", CF_CFG_STRING, NULL, "deployment the bundle must be (coffer.json name)", CF_CFG_REQUIRED, 0, 0},
    {"deployment.developer_key", CF_CFG_STRING, NULL, "developer Ed25519 public key (base64url or PEM)", CF_CFG_REQUIRED, 0, 0},
    {"provider", CF_CFG_STRING, "auto", "evidence provider: auto, launcher, configfs-tsm, sev-guest", 0, 0, 0},
    {"listen.host", CF_CFG_STRING, "127.0.0.1", "bind address", 0, 0, 0},
    {"listen.port", CF_CFG_INT, "0", "port (0 = ephemeral)", 0, 0, 65535},
    {"port_file", CF_CFG_PATH, NULL, "write the bound port here once serving", 0, 0, 0},
    {"advertise_url", CF_CFG_STRING, NULL,
     "URL the gateway and attestation service use to reach this TEE (default http://listen.host:listen.port "
     "when the port is fixed)", 0, 0, 0},
    {"tls.cert", CF_CFG_PATH, NULL, "TLS certificate (PEM); unset = plain HTTP", 0, 0, 0},
    {"tls.key", CF_CFG_PATH, NULL, "TLS private key (PEM)", 0, 0, 0},
    {"http.max_connections", CF_CFG_INT, "256", "concurrent HTTP connections (one thread each)", 0, 1, CF_HTTP_MAX_CONNECTIONS},
    {"sandbox.max_jobs", CF_CFG_INT, "4", "jobs running at once", 0, 1, CF_TEE_MAX_CONCURRENT_JOBS},
    {"sandbox.uid", CF_CFG_INT, "65534", "uid jobs run as when coffer-tee is root", 0, 1, 2147483647},
    {"sandbox.gid", CF_CFG_INT, "65534", "gid jobs run as when coffer-tee is root", 0, 1, 2147483647},
    {"log.level", CF_CFG_STRING, "info", "debug, info, warn, error", 0, 0, 0},
};

static void usage(FILE *f)
{
    fprintf(f, "usage: coffer-tee [run] [--key=value ...]\n"
               "       coffer-tee sign-bundle --bundle DIR (--key FILE | --demo-key)\n"
               "       coffer-tee verify-bundle --bundle DIR --developer-key KEY\n"
               "       coffer-tee demo-key\n"
               "\n"
               "  sign-bundle    write DIR/coffer.sig with an Ed25519 developer key (PKCS#8 PEM\n"
               "                 file) or the published, insecure demo key; print the build_hash\n"
               "  verify-bundle  check the signature and manifest as the runtime does\n"
               "  demo-key       print the demo developer public key (base64url)\n"
               "\n"
               "run options (coffer-tee --help lists them with their environment variables):\n");
}

static int fail(int rc, const char *what)
{
    cf_log(CF_LOG_ERROR, "tee.start_failed", "step", what, "error", cf_err_name(rc), "detail",
           cf_err_detail(rc), NULL);
    fprintf(stderr, "coffer-tee: %s: %s\n", what, cf_err_detail(rc));
    return EXIT_START;
}

static const char *opt_str(const cf_config *c, const char *key)
{
    const char *v = NULL;
    return cf_config_get_str(c, key, &v) == 0 ? v : NULL;
}

static int64_t opt_int(const cf_config *c, const char *key)
{
    int64_t v = 0;
    return cf_config_get_int(c, key, &v) == 0 ? v : 0;
}

/* ---- serving ---- */

static int serve(cf_tee *t, const cf_config *c)
{
    cf_http_server_opts ho;
    cf_http_server *s = NULL;
    const char *port_file = opt_str(c, "port_file");
    char port[16];
    sigset_t set;
    int sig = 0, rc = 0;

    memset(&ho, 0, sizeof(ho));
    ho.name = "tee";
    ho.bind_addr = opt_str(c, "listen.host");
    ho.port = (uint16_t)opt_int(c, "listen.port");
    /* A job may run for minutes: in a thread pool it would stall every other
     * connection of its thread (health checks, evidence), so one thread per
     * connection, bounded by http.max_connections. */
    ho.threading = CF_HTTP_THREADS_PER_CONNECTION;
    ho.max_connections = (unsigned)opt_int(c, "http.max_connections");
    ho.tls_cert_file = opt_str(c, "tls.cert");
    ho.tls_key_file = opt_str(c, "tls.key");
    ho.mtls = CF_HTTP_MTLS_OFF;
    if ((ho.tls_cert_file == NULL) != (ho.tls_key_file == NULL))
        return fail(CF_E_CONFIG, "tls.cert and tls.key go together");

    /* Stop signals are taken synchronously below; the server's threads,
     * created after this, inherit the mask. */
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, NULL);

    rc = cf_http_server_new(&ho, &s);
    if (rc == 0)
        rc = cf_tee_add_routes(t, s);
    if (rc == 0)
        rc = cf_http_server_start(s);
    if (rc < 0) {
        cf_http_server_free(s);
        return fail(rc, "http server");
    }
    rc = cf_fmt(port, sizeof(port), "%u", (unsigned)cf_http_server_port(s));
    if (rc == 0 && port_file != NULL)
        rc = cf_file_write_atomic(port_file, port, strlen(port), 0644);
    if (rc < 0) {
        cf_http_server_free(s);
        return fail(rc, "port file");
    }
    cf_log(CF_LOG_INFO, "tee.listening", "port", port, "tls", ho.tls_cert_file ? "on" : "off",
           "tee_id", cf_tee_id(t), NULL);
    while (sigwait(&set, &sig) != 0)
        ;
    cf_log(CF_LOG_INFO, "tee.signal", "signal", sig == SIGTERM ? "SIGTERM" : sig == SIGINT ? "SIGINT" : "SIGHUP", NULL);
    cf_http_server_stop(s, 5000);
    cf_http_server_free(s);
    cf_log(CF_LOG_INFO, "tee.stopped", NULL);
    return 0;
}

static int run(int argc, char **argv)
{
    cf_config *c = NULL;
    cf_tee *t = NULL;
    cf_tee_opts o;
    cf_log_level level;
    uint64_t wait_s = CF_TEE_REGISTER_WAIT_DEFAULT_S;
    int rc, ret;

    cf_log_set_service("tee");
    cf_harden_process();
    cf_tee_json_wipe_on_free();
    rc = cf_config_new(options, CF_ARRAY_LEN(options), &c);
    if (rc < 0)
        return fail(rc, "configuration");
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            cf_buf help;
            usage(stdout);
            cf_buf_init(&help, 1 << 16);
            if (cf_config_help(c, &help) == 0 && cf_buf_nul_terminate(&help) == 0)
                fputs((const char *)help.data, stdout);
            cf_buf_free(&help);
            cf_config_free(c);
            return 0;
        }
    }
    rc = cf_config_load_all(c, argc, argv, NULL, NULL);
    if (rc == 0 && opt_str(c, "log.level") != NULL &&
        cf_log_level_parse(opt_str(c, "log.level"), &level) == 0)
        cf_log_set_level(level);
    if (rc < 0) {
        ret = fail(rc, "configuration");
        goto out;
    }
    cf_config_log(c);
    if (cf_config_get_duration(c, "kms.register_timeout", &wait_s) < 0)
        wait_s = CF_TEE_REGISTER_WAIT_DEFAULT_S;

    memset(&o, 0, sizeof(o));
    o.kms_url = opt_str(c, "kms.url");
    o.kms_ca = opt_str(c, "kms.ca");
    o.kms_peer_id = opt_str(c, "kms.peer_id");
    o.kms_release_key = opt_str(c, "kms.release_key");
    o.bundle_dir = opt_str(c, "bundle");
    o.deployment = opt_str(c, "deployment.name");
    o.developer_key = opt_str(c, "deployment.developer_key");
    o.provider = opt_str(c, "provider");
    char adv[CF_TEE_MAX_ENDPOINT + 1];
    o.endpoint = opt_str(c, "advertise_url");
    if (o.endpoint == NULL && opt_int(c, "listen.port") != 0 &&
        cf_fmt(adv, sizeof(adv), "%s://%s:%lld", opt_str(c, "tls.cert") ? "https" : "http", opt_str(c, "listen.host"),
               (long long)opt_int(c, "listen.port")) == 0)
        o.endpoint = adv;
    o.sandbox.uid = (uid_t)opt_int(c, "sandbox.uid");
    o.sandbox.gid = (gid_t)opt_int(c, "sandbox.gid");
    o.max_jobs = (unsigned)opt_int(c, "sandbox.max_jobs");
    rc = cf_tee_new(&o, &t);
    if (rc < 0) {
        ret = fail(rc, "start");
        goto out;
    }
    rc = cf_tee_register(t, opt_str(c, "join_token"), wait_s);
    if (rc < 0) {
        ret = fail(rc, "registration");
        goto out;
    }
    ret = serve(t, c);
out:
    cf_tee_free(t);
    cf_config_free(c);
    return ret;
}

/* ---- bundle helpers ---- */

typedef struct {
    const char *bundle, *key, *developer_key;
    bool demo_key;
} tool_args;

static int tool_parse(int argc, char **argv, tool_args *a)
{
    memset(a, 0, sizeof(*a));
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i], *eq = strchr(arg, '='), *v;
        size_t nlen = eq ? (size_t)(eq - arg) : strlen(arg);
        const char **dst = NULL;

        if (strcmp(arg, "--demo-key") == 0) {
            a->demo_key = true;
            continue;
        }
        if (nlen == 8 && strncmp(arg, "--bundle", nlen) == 0)
            dst = &a->bundle;
        else if (nlen == 5 && strncmp(arg, "--key", nlen) == 0)
            dst = &a->key;
        else if (nlen == 15 && strncmp(arg, "--developer-key", nlen) == 0)
            dst = &a->developer_key;
        if (dst == NULL) {
            fprintf(stderr, "coffer-tee %s: unknown option %s\n", argv[0], arg);
            return -1;
        }
        v = eq ? eq + 1 : (i + 1 < argc ? argv[++i] : NULL);
        if (v == NULL || v[0] == '\0') {
            fprintf(stderr, "coffer-tee %s: %.*s needs a value\n", argv[0], (int)nlen, arg);
            return -1;
        }
        *dst = v;
    }
    return 0;
}

static int sign_bundle(int argc, char **argv)
{
    char bh[CF_BUILD_HASH_STR_LEN + 1];
    cf_key *key = NULL;
    cf_buf pem;
    tool_args a;
    int rc;

    if (tool_parse(argc, argv, &a) < 0 || a.bundle == NULL || (a.key == NULL) == !a.demo_key) {
        usage(stderr);
        return EXIT_USAGE;
    }
    cf_buf_init_secret(&pem, CF_KEY_MAX_PEM_BYTES);
    if (a.demo_key) {
        rc = cf_bundle_demo_key(&key);
    } else {
        rc = cf_file_read(a.key, CF_KEY_MAX_PEM_BYTES, &pem);
        if (rc == 0)
            rc = cf_key_from_private_pem((const char *)pem.data, pem.len, &key);
    }
    cf_buf_free(&pem);
    if (rc == 0)
        rc = cf_bundle_sign_dir(key, a.bundle, bh);
    cf_key_free(key);
    if (rc < 0) {
        fprintf(stderr, "coffer-tee sign-bundle: %s\n", cf_err_detail(rc));
        return EXIT_START;
    }
    printf("%s\n", bh);
    return fflush(stdout) == 0 ? 0 : EXIT_START;
}

static int verify_bundle(int argc, char **argv)
{
    const cf_bundle_manifest *m;
    cf_bundle *b = NULL;
    cf_key *dev = NULL;
    tool_args a;
    int rc;

    if (tool_parse(argc, argv, &a) < 0 || a.bundle == NULL || a.developer_key == NULL ||
        a.key != NULL || a.demo_key) {
        usage(stderr);
        return EXIT_USAGE;
    }
    rc = cf_developer_key_parse(a.developer_key, &dev);
    if (rc == 0)
        rc = cf_bundle_load(a.bundle, dev, &b);
    cf_key_free(dev);
    if (rc < 0) {
        fprintf(stderr, "coffer-tee verify-bundle: %s\n", cf_err_detail(rc));
        return EXIT_START;
    }
    m = cf_bundle_get_manifest(b);
    printf("deployment %s %s\nbuild_hash %s\n", m->name, m->version, cf_bundle_build_hash(b));
    for (size_t i = 0; i < m->n_jobs; i++)
        printf("job %s %s cpu_s=%u memory_mb=%u output_kb=%u timeout_ms=%u\n", m->jobs[i].name,
               m->jobs[i].command, m->jobs[i].limits.cpu_s, m->jobs[i].limits.memory_mb,
               m->jobs[i].limits.output_kb, m->jobs[i].limits.timeout_ms);
    cf_bundle_free(b);
    return fflush(stdout) == 0 ? 0 : EXIT_START;
}

static int demo_key(void)
{
    uint8_t pub[CF_ED25519_LEN];
    char text[64];
    size_t n = 0;
    cf_key *k = NULL;
    int rc = cf_bundle_demo_key(&k);

    if (rc == 0)
        rc = cf_key_export_public(k, pub, sizeof(pub), &n);
    cf_key_free(k);
    if (rc < 0 || n != sizeof(pub)) {
        fprintf(stderr, "coffer-tee demo-key: %s\n", cf_err_detail(rc));
        return EXIT_START;
    }
    cf_b64url_encode(pub, n, text);
    printf("%s\n", text);
    return fflush(stdout) == 0 ? 0 : EXIT_START;
}

int main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "sign-bundle") == 0)
        return sign_bundle(argc - 1, argv + 1);
    if (argc >= 2 && strcmp(argv[1], "verify-bundle") == 0)
        return verify_bundle(argc - 1, argv + 1);
    if (argc >= 2 && strcmp(argv[1], "demo-key") == 0)
        return argc == 2 ? demo_key() : (usage(stderr), EXIT_USAGE);
    if (argc >= 2 && strcmp(argv[1], "run") == 0)
        return run(argc - 2, argv + 2);
    return run(argc - 1, argv + 1);
}
