/*
 * Deployment bundles (src/tee/bundle.c): the coffer.json parser, developer
 * signatures, and verified loading — a valid bundle loads, one changed byte in
 * any file, an added file, a missing or altered signature or another developer
 * key is refused. The demo bundle assembled in the build tree verifies with the
 * committed demo/developer.pub.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "attest/measure.h"
#include "base/err.h"
#include "base/limits.h"
#include "base/parse.h"
#include "crypto/keys.h"
#include "tee/bundle.h"
#include "test.h"

static char tmp_root[256];
static int dir_seq;

#define PATHF(buf, ...)                                                                  \
    do {                                                                                 \
        if ((size_t)snprintf((buf), sizeof(buf), __VA_ARGS__) >= sizeof(buf))            \
            abort();                                                                     \
    } while (0)

static int rm_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void put_bytes(const char *path, const void *p, size_t n, mode_t mode)
{
    FILE *f = fopen(path, "wb");
    if (f == NULL || fwrite(p, 1, n, f) != n || fclose(f) != 0 || chmod(path, mode) != 0)
        abort();
}

static void put(const char *dir, const char *rel, const char *text, mode_t mode)
{
    char p[1024];
    PATHF(p, "%s/%s", dir, rel);
    put_bytes(p, text, strlen(text), mode);
}

static void copy(const char *from, const char *to, mode_t mode)
{
    size_t n;
    unsigned char *d = t_read_file(from, &n);
    put_bytes(to, d, n, mode);
    free(d);
}

/* Flips one byte of a file in place. */
static void flip(const char *dir, const char *rel, size_t off)
{
    char p[1024];
    unsigned char c;
    int fd;

    PATHF(p, "%s/%s", dir, rel);
    fd = open(p, O_RDWR);
    if (fd < 0 || pread(fd, &c, 1, (off_t)off) != 1)
        abort();
    c ^= 0x01;
    if (pwrite(fd, &c, 1, (off_t)off) != 1 || close(fd) != 0)
        abort();
}

/* A signable copy of the demo bundle: coffer.json and the executables, no signature. */
static void make_bundle(char *out, size_t n)
{
    static const char *const jobs[] = {"echo", "sha256", "wordcount", "redact"};
    char p[1024], q[1024];

    if ((size_t)snprintf(out, n, "%s/b%d", tmp_root, dir_seq++) >= n || mkdir(out, 0755) != 0)
        abort();
    PATHF(p, "%s/bin", out);
    if (mkdir(p, 0755) != 0)
        abort();
    PATHF(p, "%s/coffer.json", TEE_DEMO_BUNDLE);
    PATHF(q, "%s/coffer.json", out);
    copy(p, q, 0644);
    for (size_t i = 0; i < CF_ARRAY_LEN(jobs); i++) {
        PATHF(p, "%s/bin/%s", TEE_DEMO_BUNDLE, jobs[i]);
        PATHF(q, "%s/bin/%s", out, jobs[i]);
        copy(p, q, 0755);
    }
}

/* ---- manifest ---- */

static int parse(const char *json, cf_bundle_manifest **ret)
{
    return cf_bundle_manifest_parse((const uint8_t *)json, strlen(json), ret);
}

static void test_manifest_demo(void)
{
    char p[1024];
    size_t n;
    unsigned char *d;
    cf_bundle_manifest *m = NULL;
    const cf_bundle_job *j;

    PATHF(p, "%s/demo/coffer.json", COFFER_SOURCE_DIR);
    d = t_read_file(p, &n);
    T_OK(cf_bundle_manifest_parse(d, n, &m));
    free(d);
    T_STREQ(m->name, "demo");
    T_STREQ(m->version, "1.0.0");
    T_EQ(m->n_jobs, 4);
    T_STREQ(m->jobs[0].name, "echo"); /* sorted */
    T_STREQ(m->jobs[3].name, "wordcount");
    j = cf_bundle_manifest_job(m, "redact");
    T_ASSERT(j != NULL);
    T_STREQ(j->command, "bin/redact");
    T_EQ(j->limits.cpu_s, 10);
    T_EQ(j->limits.memory_mb, 256);
    T_EQ(j->limits.output_kb, 8191);
    T_EQ(j->limits.timeout_ms, 20000);
    T_EQ(j->n_args, 0);
    T_ASSERT(cf_bundle_manifest_job(m, "nope") == NULL);
    cf_bundle_manifest_free(m);
}

#define LIM "\"limits\":{\"cpu_s\":1,\"memory_mb\":2,\"output_kb\":3,\"timeout_ms\":4}"

static void test_manifest_args(void)
{
    cf_bundle_manifest *m = NULL;
    T_OK(parse("{\"name\":\"d-1.x_y\",\"version\":\"2.0-rc1+git\",\"jobs\":{\"j\":{\"command\":"
               "\"a/b/c\",\"args\":[\"--x\",\"y z\",\"\"]," LIM "}}}",
               &m));
    T_EQ(m->jobs[0].n_args, 3);
    T_STREQ(m->jobs[0].args[0], "--x");
    T_STREQ(m->jobs[0].args[1], "y z");
    T_STREQ(m->jobs[0].args[2], "");
    T_EQ(m->jobs[0].limits.timeout_ms, 4);
    cf_bundle_manifest_free(m);
}

static void test_manifest_rejects(void)
{
    static const struct {
        const char *json;
        int err;
    } bad[] = {
        {"{\"name\":\"d\",\"version\":\"1\",\"jobs\":{\"j\":{\"command\":\"x\"," LIM "}},\"x\":1}",
         CF_E_PARSE},                                                   /* unknown key */
        {"{\"version\":\"1\",\"jobs\":{\"j\":{\"command\":\"x\"," LIM "}}}", CF_E_PARSE},
        {"{\"name\":\"d/e\",\"version\":\"1\",\"jobs\":{\"j\":{\"command\":\"x\"," LIM "}}}",
         CF_E_PARSE},                                                   /* name charset */
        {"{\"name\":\"d\",\"version\":\"\",\"jobs\":{\"j\":{\"command\":\"x\"," LIM "}}}",
         CF_E_PARSE},
        {"{\"name\":\"d\",\"version\":\"1 2\",\"jobs\":{\"j\":{\"command\":\"x\"," LIM "}}}",
         CF_E_PARSE},
        {"{\"name\":\"d\",\"version\":\"1\",\"jobs\":{}}", CF_E_RANGE},
        {"{\"name\":\"d\",\"version\":\"1\",\"jobs\":[]}", CF_E_PARSE},
        {"{\"name\":\"d\",\"version\":\"1\",\"jobs\":{\"a b\":{\"command\":\"x\"," LIM "}}}",
         CF_E_PARSE},                                                   /* job name */
        {"{\"name\":\"d\",\"version\":\"1\",\"jobs\":{\"j\":{\"command\":\"x\"}}}", CF_E_PARSE},
        {"{\"name\":\"d\",\"version\":\"1\",\"jobs\":{\"j\":{\"command\":\"x\",\"env\":{}," LIM
         "}}}",
         CF_E_PARSE},
        {"{\"name\":\"d\",\"version\":\"1\",\"jobs\":{\"j\":{\"command\":\"/bin/x\"," LIM "}}}",
         CF_E_PARSE},                                                   /* absolute */
        {"{\"name\":\"d\",\"version\":\"1\",\"jobs\":{\"j\":{\"command\":\"bin/../x\"," LIM
         "}}}",
         CF_E_PARSE},
        {"{\"name\":\"d\",\"version\":\"1\",\"jobs\":{\"j\":{\"command\":\"bin//x\"," LIM "}}}",
         CF_E_PARSE},
        {"{\"name\":\"d\",\"version\":\"1\",\"jobs\":{\"j\":{\"command\":\"./x\"," LIM "}}}",
         CF_E_PARSE},
        {"{\"name\":\"d\",\"version\":\"1\",\"jobs\":{\"j\":{\"command\":\"bin/\"," LIM "}}}",
         CF_E_PARSE},
        {"{\"name\":\"d\",\"version\":\"1\",\"jobs\":{\"j\":{\"command\":\"coffer.sig\"," LIM
         "}}}",
         CF_E_PARSE},                                                   /* not measured */
        {"{\"name\":\"d\",\"version\":\"1\",\"jobs\":{\"j\":{\"command\":\"x\\ty\"," LIM "}}}",
         CF_E_PARSE},
        {"{\"name\":\"d\",\"version\":\"1\",\"jobs\":{\"j\":{\"command\":\"x\",\"args\":[1]," LIM
         "}}}",
         CF_E_PARSE},
        {"{\"name\":\"d\",\"version\":\"1\",\"jobs\":{\"j\":{\"command\":\"x\",\"args\":[\"a\\n\"],"
         LIM "}}}",
         CF_E_PARSE},
        {"{\"name\":\"d\",\"version\":\"1\",\"jobs\":{\"j\":{\"command\":\"x\",\"limits\":{"
         "\"cpu_s\":0,\"memory_mb\":2,\"output_kb\":3,\"timeout_ms\":4}}}}",
         CF_E_RANGE},
        {"{\"name\":\"d\",\"version\":\"1\",\"jobs\":{\"j\":{\"command\":\"x\",\"limits\":{"
         "\"cpu_s\":1,\"memory_mb\":2,\"output_kb\":8192,\"timeout_ms\":4}}}}",
         CF_E_RANGE},                                                   /* > CF_TEE_MAX_OUTPUT_KB */
        {"{\"name\":\"d\",\"version\":\"1\",\"jobs\":{\"j\":{\"command\":\"x\",\"limits\":{"
         "\"cpu_s\":1,\"memory_mb\":2,\"output_kb\":3}}}}",
         CF_E_PARSE},                                                   /* missing timeout_ms */
        {"{\"name\":\"d\",\"version\":\"1\",\"jobs\":{\"j\":{\"command\":\"x\",\"limits\":{"
         "\"cpu_s\":1,\"memory_mb\":2,\"output_kb\":3,\"timeout_ms\":-4}}}}",
         CF_E_RANGE},
        {"{\"name\":\"d\",\"version\":\"1\",\"jobs\":{\"j\":{\"command\":\"x\"," LIM "},"
         "\"j\":{\"command\":\"y\"," LIM "}}}",
         CF_E_PARSE},                                                   /* duplicate job */
        {"{\"name\":\"d\",\"version\":\"1\",\"jobs\":{\"j\":{\"command\":\"x\"," LIM "}}} x",
         CF_E_PARSE},                                                   /* trailing data */
        {"[1]", CF_E_PARSE},
        {"", CF_E_PARSE},
    };
    cf_bundle_manifest *m = NULL;
    cf_buf big;

    for (size_t i = 0; i < CF_ARRAY_LEN(bad); i++) {
        int rc = parse(bad[i].json, &m);
        T_ASSERT_MSG(rc == bad[i].err, "case %zu: got %d (%s), want %d", i, rc,
                     cf_err_detail(rc), bad[i].err);
        T_ASSERT(m == NULL);
    }
    /* More than CF_TEE_MAX_ARGS arguments. */
    cf_buf_init(&big, CF_TEE_MANIFEST_MAX_BYTES * 2);
    T_OK(cf_buf_put_str(&big, "{\"name\":\"d\",\"version\":\"1\",\"jobs\":{\"j\":{\"command\":"
                              "\"x\"," LIM ",\"args\":["));
    for (int i = 0; i <= CF_TEE_MAX_ARGS; i++)
        T_OK(cf_buf_put_str(&big, i ? ",\"a\"" : "\"a\""));
    T_OK(cf_buf_put_str(&big, "]}}}"));
    T_FAILS(cf_bundle_manifest_parse(big.data, big.len, &m));
    /* More than CF_TEE_MAX_JOBS jobs. */
    cf_buf_reset(&big);
    T_OK(cf_buf_put_str(&big, "{\"name\":\"d\",\"version\":\"1\",\"jobs\":{"));
    for (int i = 0; i <= CF_TEE_MAX_JOBS; i++)
        T_OK(cf_buf_printf(&big, "%s\"j%d\":{\"command\":\"x\"," LIM "}", i ? "," : "", i));
    T_OK(cf_buf_put_str(&big, "}}"));
    T_ERR(cf_bundle_manifest_parse(big.data, big.len, &m), CF_E_RANGE);
    /* Larger than CF_TEE_MANIFEST_MAX_BYTES. */
    cf_buf_reset(&big);
    while (big.len <= CF_TEE_MANIFEST_MAX_BYTES)
        T_OK(cf_buf_put_str(&big, "                                                      "));
    T_ERR(cf_bundle_manifest_parse(big.data, big.len, &m), CF_E_TOO_LARGE);
    /* An embedded NUL. */
    T_ERR(cf_bundle_manifest_parse((const uint8_t *)"{\"name\":\"d\0\"}", 13, &m), CF_E_PARSE);
    cf_buf_free(&big);
}

/* ---- keys and signatures ---- */

static void test_developer_keys(void)
{
    char p[1024], text[64];
    size_t n;
    unsigned char *committed;
    uint8_t pub[32];
    cf_key *k = NULL, *demo = NULL, *x = NULL;
    cf_buf pem;

    /* The committed demo/developer.pub is the demo key's public half. */
    PATHF(p, "%s/demo/developer.pub", COFFER_SOURCE_DIR);
    committed = t_read_file(p, &n);
    T_OK(cf_bundle_demo_key(&demo));
    T_OK(cf_key_export_public(demo, pub, sizeof(pub), &n));
    cf_b64url_encode(pub, 32, text);
    T_ASSERT(strncmp((const char *)committed, text, 43) == 0 && committed[43] == '\n');
    free(committed);

    T_OK(cf_developer_key_parse(text, &k));
    T_ASSERT(cf_key_public_eq(k, demo));
    T_ASSERT(!cf_key_has_private(k));
    cf_key_free(k);
    k = NULL;
    cf_buf_init(&pem, 4096);
    T_OK(cf_key_export_public_pem(demo, &pem));
    T_OK(cf_developer_key_parse((const char *)pem.data, &k));
    T_ASSERT(cf_key_public_eq(k, demo));
    cf_key_free(k);
    k = NULL;

    /* Not Ed25519, wrong length, junk. */
    cf_buf_reset(&pem);
    T_OK(cf_key_generate(CF_KEY_P256, &x));
    T_OK(cf_key_export_public_pem(x, &pem));
    T_ERR(cf_developer_key_parse((const char *)pem.data, &k), CF_E_PARSE);
    text[42] = '\0';
    T_ERR(cf_developer_key_parse(text, &k), CF_E_PARSE);
    T_ERR(cf_developer_key_parse("not a key", &k), CF_E_PARSE);
    T_ERR(cf_developer_key_parse("", &k), CF_E_PARSE);
    T_ASSERT(k == NULL);
    cf_buf_free(&pem);
    cf_key_free(x);
    cf_key_free(demo);
}

static const char bh1[] = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
static const char bh2[] = "sha256:1111111111111111111111111111111111111111111111111111111111111112";

static void test_sign_verify(void)
{
    cf_key *k = NULL, *other = NULL, *pub = NULL;
    cf_buf sig;

    cf_buf_init(&sig, 256);
    T_OK(cf_key_generate(CF_KEY_ED25519, &k));
    T_OK(cf_key_generate(CF_KEY_ED25519, &other));
    T_OK(cf_key_public_only(k, &pub));
    T_OK(cf_bundle_sign(k, bh1, &sig));
    T_EQ(sig.len, CF_BUNDLE_SIG_TEXT_LEN + 1);
    T_EQ(sig.data[sig.len - 1], '\n');
    T_OK(cf_bundle_verify(pub, bh1, sig.data, sig.len));
    T_OK(cf_bundle_verify(pub, bh1, sig.data, sig.len - 1)); /* newline optional */
    T_ERR(cf_bundle_verify(pub, bh2, sig.data, sig.len), CF_E_SIGNATURE);
    T_ERR(cf_bundle_verify(other, bh1, sig.data, sig.len), CF_E_SIGNATURE);
    /* Ed25519 signatures are deterministic (RFC 8032 §5.1.6). */
    {
        cf_buf again;
        cf_buf_init(&again, 256);
        T_OK(cf_bundle_sign(k, bh1, &again));
        T_ASSERT(again.len == sig.len && memcmp(again.data, sig.data, sig.len) == 0);
        cf_buf_free(&again);
    }
    /* Every character position matters. */
    for (size_t i = 0; i < CF_BUNDLE_SIG_TEXT_LEN; i += 5) {
        uint8_t c = sig.data[i];
        sig.data[i] = c == 'A' ? 'B' : 'A';
        T_FAILS(cf_bundle_verify(pub, bh1, sig.data, sig.len));
        sig.data[i] = c;
    }
    T_ERR(cf_bundle_verify(pub, bh1, sig.data, sig.len - 2), CF_E_PARSE);
    T_OK(cf_buf_put_u8(&sig, '\n'));
    T_ERR(cf_bundle_verify(pub, bh1, sig.data, sig.len), CF_E_PARSE); /* two newlines */
    T_ERR(cf_bundle_verify(pub, "sha256:12", sig.data, CF_BUNDLE_SIG_TEXT_LEN), CF_E_PARSE);
    /* Signing needs the private key. */
    cf_buf_reset(&sig);
    T_FAILS(cf_bundle_sign(pub, bh1, &sig));
    T_EQ(sig.len, 0);
    cf_buf_free(&sig);
    cf_key_free(k);
    cf_key_free(other);
    cf_key_free(pub);
}

/* ---- loading ---- */

static void test_demo_bundle_verifies(void)
{
    char p[1024];
    size_t n;
    unsigned char *text;
    cf_key *dev = NULL;
    cf_bundle *b = NULL;
    uint8_t dig[32];
    char bh[CF_BUILD_HASH_STR_LEN + 1];
    int fd = -1;
    const cf_bundle_job *j = NULL;

    PATHF(p, "%s/demo/developer.pub", COFFER_SOURCE_DIR);
    text = t_read_file(p, &n);
    text[43] = '\0';
    T_OK(cf_developer_key_parse((const char *)text, &dev));
    free(text);
    T_OK(cf_bundle_load(TEE_DEMO_BUNDLE, dev, &b));
    T_OK(cf_bundle_digest(TEE_DEMO_BUNDLE, dig));
    cf_build_hash_format(dig, bh);
    T_STREQ(cf_bundle_build_hash(b), bh);
    T_OK(cf_bundle_job_get(b, "sha256", &j, &fd));
    T_ASSERT(fd >= 0 && j != NULL);
    T_STREQ(j->command, "bin/sha256");
    T_ERR(cf_bundle_job_get(b, "nope", &j, &fd), CF_E_NOT_FOUND);
    cf_bundle_free(b);
    cf_key_free(dev);
}

static void test_load_refuses_changes(void)
{
    char d[512], p[1024], q[1024];
    cf_key *k = NULL, *other = NULL, *pub = NULL;
    cf_bundle *b = NULL;

    T_OK(cf_key_generate(CF_KEY_ED25519, &k));
    T_OK(cf_key_generate(CF_KEY_ED25519, &other));
    T_OK(cf_key_public_only(k, &pub));
    make_bundle(d, sizeof(d));

    /* Unsigned. */
    T_ERR(cf_bundle_load(d, pub, &b), CF_E_SIGNATURE);
    T_OK(cf_bundle_sign_dir(k, d, NULL));
    T_OK(cf_bundle_load(d, pub, &b));
    cf_bundle_free(b);
    b = NULL;

    /* Another developer's key. */
    T_ERR(cf_bundle_load(d, other, &b), CF_E_SIGNATURE);

    /* One changed byte in any file: an executable, the manifest. */
    flip(d, "bin/echo", 5000);
    T_ERR(cf_bundle_load(d, pub, &b), CF_E_SIGNATURE);
    flip(d, "bin/echo", 5000);
    T_OK(cf_bundle_load(d, pub, &b));
    cf_bundle_free(b);
    b = NULL;
    flip(d, "coffer.json", 10);
    T_ERR(cf_bundle_load(d, pub, &b), CF_E_SIGNATURE);
    flip(d, "coffer.json", 10);

    /* An added file, a removed execute bit. */
    put(d, "extra.txt", "x", 0644);
    T_ERR(cf_bundle_load(d, pub, &b), CF_E_SIGNATURE);
    PATHF(p, "%s/extra.txt", d);
    T_OK(unlink(p));
    PATHF(p, "%s/bin/wordcount", d);
    T_OK(chmod(p, 0644));
    T_ERR(cf_bundle_load(d, pub, &b), CF_E_SIGNATURE);
    T_OK(chmod(p, 0755));

    /* The signature itself altered, or replaced by garbage. */
    flip(d, "coffer.sig", 20);
    T_FAILS(cf_bundle_load(d, pub, &b));
    flip(d, "coffer.sig", 20);
    T_OK(cf_bundle_load(d, pub, &b));
    cf_bundle_free(b);
    b = NULL;
    PATHF(p, "%s/coffer.sig", d);
    PATHF(q, "%s/coffer.sig.good", d);
    T_OK(rename(p, q));
    put(d, "coffer.sig", "garbage\n", 0644);
    T_ERR(cf_bundle_load(d, pub, &b), CF_E_PARSE);
    T_OK(rename(q, p));
    T_OK(cf_bundle_load(d, pub, &b));
    cf_bundle_free(b);
    b = NULL;
    /* A signature that is not a regular file is refused by the digest itself. */
    T_OK(unlink(p));
    T_OK(symlink("coffer.json", p));
    T_FAILS(cf_bundle_load(d, pub, &b));
    T_ASSERT(b == NULL);

    cf_key_free(k);
    cf_key_free(other);
    cf_key_free(pub);
}

/* Signed bundles whose jobs cannot run are refused at load, with the job named. */
static void test_load_refuses_bad_jobs(void)
{
    char d[512], p[1024];
    cf_key *k = NULL;
    cf_bundle *b = NULL;
    int fd = -1;
    int rc;

    T_OK(cf_key_generate(CF_KEY_ED25519, &k));
    make_bundle(d, sizeof(d));
    put(d, "coffer.json",
        "{\"name\":\"t\",\"version\":\"1\",\"jobs\":{\"s\":{\"command\":\"bin/script\"," LIM "}}}",
        0644);
    put(d, "bin/script", "#!/bin/sh\necho hi\n", 0755);
    T_OK(cf_bundle_sign_dir(k, d, NULL));
    rc = cf_bundle_load(d, k, &b);
    T_ERR(rc, CF_E_INVAL);
    T_ASSERT(strstr(cf_err_detail(rc), "job 's'") != NULL);

    put(d, "coffer.json",
        "{\"name\":\"t\",\"version\":\"1\",\"jobs\":{\"m\":{\"command\":\"bin/missing\"," LIM "}}}",
        0644);
    T_OK(cf_bundle_sign_dir(k, d, NULL));
    T_ERR(cf_bundle_load(d, k, &b), CF_E_NOT_FOUND);

    put(d, "coffer.json",
        "{\"name\":\"t\",\"version\":\"1\",\"jobs\":{\"n\":{\"command\":\"bin/data\"," LIM "}}}",
        0644);
    put(d, "bin/data", "\x7f" "ELF but not executable", 0644);
    T_OK(cf_bundle_sign_dir(k, d, NULL));
    T_ERR(cf_bundle_load(d, k, &b), CF_E_INVAL);

    /* A symlink inside the bundle is fine (it is measured and stays inside). */
    PATHF(p, "%s/bin/alias", d);
    T_OK(symlink("echo", p));
    put(d, "coffer.json",
        "{\"name\":\"t\",\"version\":\"1\",\"jobs\":{\"a\":{\"command\":\"bin/alias\"," LIM "}}}",
        0644);
    T_OK(cf_bundle_sign_dir(k, d, NULL));
    T_OK(cf_bundle_load(d, k, &b));
    T_OK(cf_bundle_job_get(b, "a", NULL, &fd));
    T_ASSERT(fd >= 0);
    cf_bundle_free(b);
    b = NULL;

    /* A manifest that does not parse, though signed. */
    put(d, "coffer.json", "{\"name\":\"t\"}", 0644);
    T_OK(cf_bundle_sign_dir(k, d, NULL));
    T_ERR(cf_bundle_load(d, k, &b), CF_E_PARSE);
    T_ASSERT(b == NULL);
    cf_key_free(k);
}

static void test_copy_executable(void)
{
    char d[512], p[1024];
    int fd = -1;

    make_bundle(d, sizeof(d));
    PATHF(p, "%s/bin/echo", d);
    T_OK(cf_bundle_copy_executable(AT_FDCWD, p, "echo", &fd));
    /* Sealed: the copy cannot be changed. */
    T_ASSERT(write(fd, "x", 1) < 0);
    T_ASSERT((fcntl(fd, F_GETFD) & FD_CLOEXEC) != 0);
    close(fd);
    put(d, "empty", "", 0755);
    PATHF(p, "%s/empty", d);
    T_ERR(cf_bundle_copy_executable(AT_FDCWD, p, "e", &fd), CF_E_INVAL);
    PATHF(p, "%s/nothing", d);
    T_ERR(cf_bundle_copy_executable(AT_FDCWD, p, "n", &fd), CF_E_NOT_FOUND);
}

int main(void)
{
    PATHF(tmp_root, "/tmp/coffer-test-bundle-%d", (int)getpid());
    if (mkdir(tmp_root, 0700) != 0)
        return 1;
    T_RUN(test_manifest_demo);
    T_RUN(test_manifest_args);
    T_RUN(test_manifest_rejects);
    T_RUN(test_developer_keys);
    T_RUN(test_sign_verify);
    T_RUN(test_demo_bundle_verifies);
    T_RUN(test_load_refuses_changes);
    T_RUN(test_load_refuses_bad_jobs);
    T_RUN(test_copy_executable);
    (void)nftw(tmp_root, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
    return t_done();
}
