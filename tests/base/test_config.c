/* Tests for base/config: schema checks, sources and precedence, types, @file secrets. */
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/config.h"
#include "base/err.h"
#include "base/limits.h"
#include "base/log.h"
#include "base/parse.h"
#include "test.h"

static const cf_config_opt schema[] = {
    {"kms.listen", CF_CFG_STRING, "127.0.0.1", "address to listen on", 0, 0, 0},
    {"kms.port", CF_CFG_INT, "8443", "TCP port", 0, 0, 65535},
    {"kms.tls", CF_CFG_BOOL, "true", "serve HTTPS", 0, 0, 0},
    {"kms.rotate_every", CF_CFG_DURATION, "30d", "rotation interval", 0, 0, 0},
    {"kms.store", CF_CFG_PATH, NULL, "SQLite file", 0, 0, 0},
    {"kms.pin", CF_CFG_STRING, "hunter2default", "HSM user PIN", CF_CFG_SECRET, 0, 0},
    {"log_level", CF_CFG_STRING, "info", "log level", 0, 0, 0},
};

static char tmpdir[64];

/* argv/envp arrays are char *const * like main's; the config never writes through them. */
static char *S(const char *s) { return (char *)(uintptr_t)s; }

static cf_config *mk(void)
{
    cf_config *c = NULL;
    if (cf_config_new(schema, CF_ARRAY_LEN(schema), &c) != 0)
        abort();
    return c;
}

static const char *write_file(const char *name, const char *content, mode_t mode)
{
    static char path[4][PATH_MAX];
    static int k;
    char *p = path[k++ % 4];
    int fd;
    if ((size_t)snprintf(p, PATH_MAX, "%s/%s", tmpdir, name) >= PATH_MAX)
        abort();
    unlink(p);
    fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0 || write(fd, content, strlen(content)) != (ssize_t)strlen(content))
        abort();
    if (fchmod(fd, mode) != 0)
        abort();
    close(fd);
    return p;
}

static int load_str(cf_config *c, const char *json) { return cf_config_load_json(c, json, strlen(json), "t.json"); }

static void test_schema_validation(void)
{
    cf_config *c = NULL;
    const cf_config_opt bad_key[] = {{"Kms.Listen", CF_CFG_STRING, NULL, "", 0, 0, 0}};
    const cf_config_opt empty_seg[] = {{"kms..x", CF_CFG_STRING, NULL, "", 0, 0, 0}};
    const cf_config_opt reserved[] = {{"config", CF_CFG_PATH, NULL, "", 0, 0, 0}};
    const cf_config_opt collide[] = {{"a.b", CF_CFG_STRING, NULL, "", 0, 0, 0},
                                     {"a_b", CF_CFG_STRING, NULL, "", 0, 0, 0}};
    const cf_config_opt dup[] = {{"a", CF_CFG_STRING, NULL, "", 0, 0, 0},
                                 {"a", CF_CFG_INT, NULL, "", 0, 0, 0}};
    const cf_config_opt bad_def[] = {{"a", CF_CFG_INT, "12x", "", 0, 0, 0}};
    const cf_config_opt secret_int[] = {{"a", CF_CFG_INT, NULL, "", CF_CFG_SECRET, 0, 0}};
    const cf_config_opt ok[] = {{"a.b_c.d9", CF_CFG_INT, "-5", "", 0, -10, 10}};

    T_ERR(cf_config_new(bad_key, 1, &c), CF_E_INVAL);
    T_ERR(cf_config_new(empty_seg, 1, &c), CF_E_INVAL);
    T_ERR(cf_config_new(reserved, 1, &c), CF_E_INVAL);
    T_ERR(cf_config_new(collide, 2, &c), CF_E_INVAL);
    T_ASSERT(strstr(cf_err_detail(CF_E_INVAL), "COFFER_A_B") != NULL);
    T_ERR(cf_config_new(dup, 2, &c), CF_E_INVAL);
    T_ERR(cf_config_new(bad_def, 1, &c), CF_E_INVAL);
    T_ERR(cf_config_new(secret_int, 1, &c), CF_E_INVAL);
    T_ASSERT(c == NULL);
    T_OK(cf_config_new(ok, 1, &c));
    int64_t v = 0;
    T_OK(cf_config_get_int(c, "a.b_c.d9", &v));
    T_EQ(v, -5);
    cf_config_free(c);
}

static void test_defaults_and_getters(void)
{
    cf_config *c = mk();
    const char *s = NULL;
    int64_t i = 0;
    bool b = false;
    uint64_t d = 0;

    T_OK(cf_config_get_str(c, "kms.listen", &s));
    T_STREQ(s, "127.0.0.1");
    T_OK(cf_config_get_int(c, "kms.port", &i));
    T_EQ(i, 8443);
    T_OK(cf_config_get_bool(c, "kms.tls", &b));
    T_ASSERT(b);
    T_OK(cf_config_get_duration(c, "kms.rotate_every", &d));
    T_EQ(d, 30 * 86400);
    T_EQ(cf_config_source(c, "kms.port"), CF_CFG_SRC_DEFAULT);
    /* No default: not found; unknown key and wrong type: programming errors. */
    T_ERR(cf_config_get_str(c, "kms.store", &s), CF_E_NOT_FOUND);
    T_EQ(cf_config_source(c, "kms.store"), CF_CFG_SRC_UNSET);
    T_ERR(cf_config_get_str(c, "kms.nope", &s), CF_E_INVAL);
    T_ERR(cf_config_get_int(c, "kms.listen", &i), CF_E_INVAL);
    T_ERR(cf_config_get_bool(c, "kms.port", &b), CF_E_INVAL);
    T_EQ(cf_config_source(c, "kms.nope"), CF_CFG_SRC_UNSET);
    cf_config_free(c);
}

static void test_precedence(void)
{
    cf_config *c = mk();
    const char *s = NULL;
    int64_t port = 0;
    char *env[] = {S("COFFER_KMS_LISTEN=10.0.0.2"), S("COFFER_KMS_PORT=9000"), S("PATH=/bin"), NULL};
    char *argv[] = {S("--kms.port=9100"), NULL};

    /* Loaded in reverse order on purpose: the source, not the call order, decides. */
    T_OK(cf_config_load_args(c, 1, argv, NULL));
    T_OK(cf_config_load_env(c, env));
    T_OK(load_str(c, "{\"kms\":{\"listen\":\"10.0.0.1\",\"port\":8000,\"store\":\"/var/kms.db\"}}"));
    T_OK(cf_config_get_int(c, "kms.port", &port));
    T_EQ(port, 9100); /* flag beats env beats file */
    T_EQ(cf_config_source(c, "kms.port"), CF_CFG_SRC_FLAG);
    T_OK(cf_config_get_str(c, "kms.listen", &s));
    T_STREQ(s, "10.0.0.2"); /* env beats file */
    T_EQ(cf_config_source(c, "kms.listen"), CF_CFG_SRC_ENV);
    T_OK(cf_config_get_str(c, "kms.store", &s));
    T_STREQ(s, "/var/kms.db"); /* file beats (absent) default */
    T_EQ(cf_config_source(c, "kms.store"), CF_CFG_SRC_FILE);
    T_OK(cf_config_get_str(c, "log_level", &s));
    T_STREQ(s, "info");
    cf_config_free(c);
}

static void test_file_format(void)
{
    cf_config *c = mk();
    int64_t port = 0;
    uint64_t d = 0;
    bool tls = true;
    const char *s = NULL;

    /* Dotted keys and nested objects may be mixed. */
    T_OK(load_str(c, "{\"kms.port\":1234,\"kms\":{\"tls\":false,\"rotate_every\":\"2h\"},"
                     "\"log_level\":\"debug\"}"));
    T_OK(cf_config_get_int(c, "kms.port", &port));
    T_EQ(port, 1234);
    T_OK(cf_config_get_bool(c, "kms.tls", &tls));
    T_ASSERT(!tls);
    T_OK(cf_config_get_duration(c, "kms.rotate_every", &d));
    T_EQ(d, 7200);
    T_OK(load_str(c, "{\"kms\":{\"rotate_every\":90}}"));
    T_OK(cf_config_get_duration(c, "kms.rotate_every", &d));
    T_EQ(d, 90);

    /* Unknown keys (flat and nested) are errors that name the key. */
    T_ERR(load_str(c, "{\"kms\":{\"lisen\":\"x\"}}"), CF_E_CONFIG);
    T_ASSERT(strstr(cf_err_detail(CF_E_CONFIG), "unknown key 'kms.lisen'") != NULL);
    T_ERR(load_str(c, "{\"gateway.listen\":\"x\"}"), CF_E_CONFIG);
    T_ERR(load_str(c, "{\"kms\":5}"), CF_E_CONFIG);
    /* The same key twice (dotted and nested). */
    T_ERR(load_str(c, "{\"kms.port\":1,\"kms\":{\"port\":2}}"), CF_E_CONFIG);
    T_ASSERT(strstr(cf_err_detail(CF_E_CONFIG), "given twice") != NULL);
    /* Wrong JSON types. */
    T_ERR(load_str(c, "{\"kms.port\":\"8443\"}"), CF_E_CONFIG);
    T_ASSERT(strstr(cf_err_detail(CF_E_CONFIG), "config 'kms.port'") != NULL);
    T_ERR(load_str(c, "{\"kms.port\":1.5}"), CF_E_CONFIG);
    T_ERR(load_str(c, "{\"kms.tls\":\"true\"}"), CF_E_CONFIG);
    T_ERR(load_str(c, "{\"kms.listen\":5}"), CF_E_CONFIG);
    T_ERR(load_str(c, "{\"kms.listen\":null}"), CF_E_CONFIG);
    T_ERR(load_str(c, "{\"kms.store\":\"\"}"), CF_E_CONFIG);
    T_ERR(load_str(c, "{\"kms.rotate_every\":-5}"), CF_E_CONFIG);
    /* Range. */
    T_ERR(load_str(c, "{\"kms.port\":65536}"), CF_E_CONFIG);
    T_ASSERT(strstr(cf_err_detail(CF_E_CONFIG), "out of range") != NULL);
    /* Malformed JSON, not an object, duplicates, trailing data. */
    T_ERR(load_str(c, "{\"kms.port\":"), CF_E_CONFIG);
    T_ERR(load_str(c, "[1]"), CF_E_CONFIG);
    T_ERR(load_str(c, "{\"log_level\":\"a\",\"log_level\":\"b\"}"), CF_E_CONFIG);
    T_ERR(load_str(c, "{} {}"), CF_E_CONFIG);
    T_ERR(load_str(c, ""), CF_E_CONFIG);

    /* A failed load changes nothing, not even the valid members before the bad one. */
    T_ERR(load_str(c, "{\"log_level\":\"warn\",\"kms.port\":\"x\"}"), CF_E_CONFIG);
    T_OK(cf_config_get_str(c, "log_level", &s));
    T_STREQ(s, "debug");
    T_OK(cf_config_get_int(c, "kms.port", &port));
    T_EQ(port, 1234);
    cf_config_free(c);
}

static void test_file_io(void)
{
    cf_config *c = mk();
    const char *p, *s = NULL;
    char big[CF_CONFIG_MAX_BYTES + 64];

    p = write_file("c.json", "{\"log_level\":\"error\"}", 0600);
    T_OK(cf_config_load_file(c, p));
    T_OK(cf_config_get_str(c, "log_level", &s));
    T_STREQ(s, "error");
    T_ERR(cf_config_load_file(c, "/nonexistent/coffer.json"), CF_E_CONFIG);
    T_ASSERT(strstr(cf_err_detail(CF_E_CONFIG), "/nonexistent/coffer.json") != NULL);
    T_ERR(cf_config_load_file(c, tmpdir), CF_E_CONFIG); /* a directory */
    memset(big, ' ', sizeof(big) - 1);
    big[0] = '{';
    big[sizeof(big) - 2] = '}';
    big[sizeof(big) - 1] = 0;
    p = write_file("big.json", big, 0600);
    T_ERR(cf_config_load_file(c, p), CF_E_CONFIG);
    T_ASSERT(strstr(cf_err_detail(CF_E_CONFIG), "larger than") != NULL);
    cf_config_free(c);
}

static void test_env(void)
{
    cf_config *c = mk();
    const char *s = NULL;
    char *env_ok[] = {S("COFFER_LOG_LEVEL=warn"), S("COFFER_UNRELATED=1"), S("COFFER_TESTDATA=/x"),
                      S("COFFER_KMS_TLS=off"), NULL};
    char *env_bad[] = {S("COFFER_KMS_PORT=eighty"), NULL};
    bool b = true;

    T_OK(cf_config_load_env(c, env_ok)); /* unrelated COFFER_ variables are ignored */
    T_OK(cf_config_get_str(c, "log_level", &s));
    T_STREQ(s, "warn");
    T_OK(cf_config_get_bool(c, "kms.tls", &b));
    T_ASSERT(!b);
    T_ERR(cf_config_load_env(c, env_bad), CF_E_CONFIG);
    T_ASSERT(strstr(cf_err_detail(CF_E_CONFIG), "config 'kms.port'") != NULL);
    T_ASSERT(strstr(cf_err_detail(CF_E_CONFIG), "COFFER_KMS_PORT") != NULL);
    T_ASSERT(strstr(cf_err_detail(CF_E_CONFIG), "not an integer") != NULL);
    cf_config_free(c);
}

static void test_flags(void)
{
    cf_config *c = mk();
    const char *s = NULL;
    int64_t port = 0;
    bool tls = false;
    int next = -1;

    {
        char *argv[] = {S("--kms.listen"), S("0.0.0.0"), S("--kms.tls=false"), S("--kms.port=1"), S("--kms.port=2"), NULL};
        T_OK(cf_config_load_args(c, 5, argv, NULL));
        T_OK(cf_config_get_str(c, "kms.listen", &s));
        T_STREQ(s, "0.0.0.0");
        T_OK(cf_config_get_int(c, "kms.port", &port));
        T_EQ(port, 2); /* the last of a repeated flag wins */
        T_OK(cf_config_get_bool(c, "kms.tls", &tls));
        T_ASSERT(!tls);
    }
    {
        /* A bare bool flag is true and does not swallow the next argument. */
        char *argv[] = {S("--kms.tls"), S("run"), S("--kms.port=7"), NULL};
        T_OK(cf_config_load_args(c, 3, argv, &next));
        T_EQ(next, 1);
        T_OK(cf_config_get_bool(c, "kms.tls", &tls));
        T_ASSERT(tls);
        T_OK(cf_config_get_int(c, "kms.port", &port));
        T_EQ(port, 2); /* flags after the first positional argument are not parsed */
    }
    {
        char *argv[] = {S("--kms.port=3"), S("--"), S("--kms.port=4"), NULL};
        T_OK(cf_config_load_args(c, 3, argv, &next));
        T_EQ(next, 2);
        T_OK(cf_config_get_int(c, "kms.port", &port));
        T_EQ(port, 3);
    }
    {
        char *argv[] = {S("--kms.lisen=x"), NULL};
        T_ERR(cf_config_load_args(c, 1, argv, NULL), CF_E_CONFIG);
        T_ASSERT(strstr(cf_err_detail(CF_E_CONFIG), "unknown flag '--kms.lisen'") != NULL);
    }
    {
        char *argv[] = {S("--kms.port"), NULL};
        T_ERR(cf_config_load_args(c, 1, argv, NULL), CF_E_CONFIG);
        T_ASSERT(strstr(cf_err_detail(CF_E_CONFIG), "needs a value") != NULL);
    }
    {
        char *argv[] = {S("stray"), NULL};
        T_ERR(cf_config_load_args(c, 1, argv, NULL), CF_E_CONFIG);
    }
    {
        char *argv[] = {S("--config=x.json"), NULL}; /* only cf_config_load_all knows --config */
        T_ERR(cf_config_load_args(c, 1, argv, NULL), CF_E_CONFIG);
    }
    {
        char *argv[] = {S("--kms.tls=maybe"), NULL};
        T_ERR(cf_config_load_args(c, 1, argv, NULL), CF_E_CONFIG);
        T_ASSERT(strstr(cf_err_detail(CF_E_CONFIG), "'maybe' is not a boolean") != NULL);
    }
    {
        char *argv[] = {S("--kms.rotate_every=5y"), NULL};
        T_ERR(cf_config_load_args(c, 1, argv, NULL), CF_E_CONFIG);
        T_ASSERT(strstr(cf_err_detail(CF_E_CONFIG), "config 'kms.rotate_every'") != NULL);
    }
    {
        char *argv[] = {S("--kms.port=-1"), NULL};
        T_ERR(cf_config_load_args(c, 1, argv, NULL), CF_E_CONFIG);
    }
    {
        /* Atomic: an error in a later flag leaves the earlier ones unapplied. */
        char *argv[] = {S("--log_level=error"), S("--kms.port=x"), NULL};
        T_ERR(cf_config_load_args(c, 2, argv, NULL), CF_E_CONFIG);
        T_OK(cf_config_get_str(c, "log_level", &s));
        T_STREQ(s, "info");
    }
    cf_config_free(c);
}

static void test_secret_file(void)
{
    cf_config *c = mk();
    const char *s = NULL, *p;
    char arg[PATH_MAX + 16];
    char big[CF_CONFIG_MAX_SECRET_FILE + 8];

    p = write_file("pin", "1234-5678\n", 0600);
    T_ASSERT(cf_fmt(arg, sizeof(arg), "--kms.pin=@%s", p) == 0);
    {
        char *argv[] = {arg, NULL};
        T_OK(cf_config_load_args(c, 1, argv, NULL));
    }
    T_OK(cf_config_get_str(c, "kms.pin", &s));
    T_STREQ(s, "1234-5678"); /* trailing newline dropped */

    /* Same through the config file. */
    p = write_file("pin2", "abcd\r\n", 0640);
    T_ASSERT(cf_fmt(arg, sizeof(arg), "{\"kms.pin\":\"@%s\"}", p) == 0);
    T_OK(load_str(c, arg));
    T_OK(cf_config_get_str(c, "kms.pin", &s));
    T_STREQ(s, "1234-5678"); /* the flag still wins */
    {
        cf_config *c2 = mk();
        T_OK(load_str(c2, arg));
        T_OK(cf_config_get_str(c2, "kms.pin", &s));
        T_STREQ(s, "abcd");
        cf_config_free(c2);
    }

    /* Readable by others: refused. */
    p = write_file("pin3", "zzzz", 0644);
    T_ASSERT(cf_fmt(arg, sizeof(arg), "--kms.pin=@%s", p) == 0);
    {
        char *argv[] = {arg, NULL};
        T_ERR(cf_config_load_args(c, 1, argv, NULL), CF_E_CONFIG);
        T_ASSERT(strstr(cf_err_detail(CF_E_CONFIG), "accessible by others") != NULL);
    }
    /* Missing, empty, oversized. */
    {
        char *argv[] = {S("--kms.pin=@/nonexistent/pin"), NULL};
        T_ERR(cf_config_load_args(c, 1, argv, NULL), CF_E_CONFIG);
        char *argv2[] = {S("--kms.pin=@"), NULL};
        T_ERR(cf_config_load_args(c, 1, argv2, NULL), CF_E_CONFIG);
    }
    p = write_file("pin4", "\n", 0600);
    T_ASSERT(cf_fmt(arg, sizeof(arg), "--kms.pin=@%s", p) == 0);
    {
        char *argv[] = {arg, NULL};
        T_ERR(cf_config_load_args(c, 1, argv, NULL), CF_E_CONFIG);
    }
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = 0;
    p = write_file("pin5", big, 0600);
    T_ASSERT(cf_fmt(arg, sizeof(arg), "--kms.pin=@%s", p) == 0);
    {
        char *argv[] = {arg, NULL};
        T_ERR(cf_config_load_args(c, 1, argv, NULL), CF_E_CONFIG);
        T_ASSERT(strstr(cf_err_detail(CF_E_CONFIG), "exceeds") != NULL);
    }
    T_OK(cf_config_get_str(c, "kms.pin", &s));
    T_STREQ(s, "1234-5678");

    /* '@' has no meaning for non-secret options. */
    {
        char *argv[] = {S("--log_level=@literal"), NULL};
        T_OK(cf_config_load_args(c, 1, argv, NULL));
        T_OK(cf_config_get_str(c, "log_level", &s));
        T_STREQ(s, "@literal");
    }
    cf_config_free(c);
}

static void test_secrets_never_printed(void)
{
    cf_config *c = mk();
    cf_buf help;
    char logbuf[8192];
    size_t n;
    FILE *f;
    char *argv[] = {S("--kms.pin=s3cr3t-value"), NULL};

    T_OK(cf_config_load_args(c, 1, argv, NULL));
    /* Help shows keys, types, defaults and env names, but no secret default. */
    cf_buf_init(&help, 1u << 16);
    T_OK(cf_config_help(c, &help));
    T_OK(cf_buf_nul_terminate(&help));
    T_ASSERT(strstr((char *)help.data, "--kms.port=INT") != NULL);
    T_ASSERT(strstr((char *)help.data, "default: 8443") != NULL);
    T_ASSERT(strstr((char *)help.data, "COFFER_KMS_ROTATE_EVERY") != NULL);
    T_ASSERT(strstr((char *)help.data, "--kms.pin=STRING") != NULL);
    T_ASSERT(strstr((char *)help.data, "hunter2default") == NULL);
    cf_buf_free(&help);

    /* The effective-config log replaces secrets. */
    f = tmpfile();
    T_ASSERT(f != NULL);
    cf_log_set_stream(f);
    cf_config_log(c);
    cf_log_set_stream(NULL);
    rewind(f);
    n = fread(logbuf, 1, sizeof(logbuf) - 1, f);
    logbuf[n] = 0;
    fclose(f);
    T_ASSERT(strstr(logbuf, "\"kms.listen\"") != NULL);
    T_ASSERT(strstr(logbuf, "<secret>") != NULL);
    T_ASSERT(strstr(logbuf, "s3cr3t-value") == NULL);

    /* An invalid secret value is not quoted in the error. */
    {
        char longv[CF_CONFIG_MAX_VALUE + 32];
        memset(longv, 'Q', sizeof(longv) - 1);
        memcpy(longv, "--kms.pin=", 10);
        longv[sizeof(longv) - 1] = 0;
        char *argv2[] = {longv, NULL};
        T_ERR(cf_config_load_args(c, 1, argv2, NULL), CF_E_CONFIG);
        T_ASSERT(strstr(cf_err_detail(CF_E_CONFIG), "QQQ") == NULL);
        T_ASSERT(strstr(cf_err_detail(CF_E_CONFIG), "config 'kms.pin'") != NULL);
    }
    cf_config_free(c);
}

static void test_load_all_and_required(void)
{
    const cf_config_opt req[] = {
        {"iam.db", CF_CFG_PATH, NULL, "database", CF_CFG_REQUIRED, 0, 0},
        {"iam.port", CF_CFG_INT, "1", "port", 0, 1, 65535},
    };
    cf_config *c = NULL;
    const char *p, *s = NULL;
    char cfgenv[PATH_MAX + 32];
    int64_t port = 0;
    int next = -1;

    p = write_file("iam.json", "{\"iam\":{\"db\":\"/f/iam.db\",\"port\":10}}", 0600);
    T_OK(cf_config_new(req, 2, &c));
    T_ERR(cf_config_check(c), CF_E_CONFIG);
    T_ASSERT(strstr(cf_err_detail(CF_E_CONFIG), "config 'iam.db': required") != NULL);
    {
        char *env[] = {S("COFFER_IAM_PORT=20"), NULL};
        char *argv[] = {S("--config"), (char *)(uintptr_t)p, S("serve"), NULL};
        T_OK(cf_config_load_all(c, 3, argv, env, &next));
        T_EQ(next, 2);
        T_OK(cf_config_get_str(c, "iam.db", &s));
        T_STREQ(s, "/f/iam.db");
        T_OK(cf_config_get_int(c, "iam.port", &port));
        T_EQ(port, 20);
    }
    cf_config_free(c);
    c = NULL;

    /* COFFER_CONFIG names the file when no flag does; flags still win. */
    T_ASSERT(cf_fmt(cfgenv, sizeof(cfgenv), "COFFER_CONFIG=%s", p) == 0);
    T_OK(cf_config_new(req, 2, &c));
    {
        char *env[] = {cfgenv, NULL};
        char *argv[] = {S("--iam.port=30"), NULL};
        T_OK(cf_config_load_all(c, 1, argv, env, NULL));
        T_OK(cf_config_get_str(c, "iam.db", &s));
        T_STREQ(s, "/f/iam.db");
        T_OK(cf_config_get_int(c, "iam.port", &port));
        T_EQ(port, 30);
    }
    cf_config_free(c);
    c = NULL;

    /* A bad file or flag fails the whole load before env and flags are applied; with no
     * file the required key is missing. */
    T_OK(cf_config_new(req, 2, &c));
    {
        char *env[] = {S("COFFER_IAM_PORT=40"), NULL};
        char *argv2[] = {S("--config=/nonexistent.json"), S("--iam.port=30"), NULL};
        T_ERR(cf_config_load_all(c, 2, argv2, env, NULL), CF_E_CONFIG);
        char *argv3[] = {S("--iam.port=30"), S("--config"), NULL};
        T_ERR(cf_config_load_all(c, 2, argv3, env, NULL), CF_E_CONFIG);
        T_OK(cf_config_get_int(c, "iam.port", &port));
        T_EQ(port, 1);
        char *argv[] = {S("--iam.port=30"), NULL};
        T_ERR(cf_config_load_all(c, 1, argv, env, NULL), CF_E_CONFIG);
        T_ASSERT(strstr(cf_err_detail(CF_E_CONFIG), "'iam.db': required") != NULL);
    }
    cf_config_free(c);
}

int main(void)
{
    char cmd[128];

    cf_log_set_level(CF_LOG_INFO);
    if (cf_fmt(tmpdir, sizeof(tmpdir), "/tmp/coffer-config-XXXXXX") < 0 || mkdtemp(tmpdir) == NULL)
        abort();
    T_RUN(test_schema_validation);
    T_RUN(test_defaults_and_getters);
    T_RUN(test_precedence);
    T_RUN(test_file_format);
    T_RUN(test_file_io);
    T_RUN(test_env);
    T_RUN(test_flags);
    T_RUN(test_secret_file);
    T_RUN(test_secrets_never_printed);
    T_RUN(test_load_all_and_required);
    if (cf_fmt(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir) == 0 && system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", tmpdir);
    return t_done();
}
