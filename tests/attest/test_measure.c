/*
 * Bundle digest and launch measurement (measure.c). The known answers were
 * computed with the independent Python reference in
 * docs/internals/simulator.md, so the code and the published definition agree.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "attest/measure.h"
#include "attest/snp.h"
#include "base/err.h"
#include "base/limits.h"
#include "base/parse.h"
#include "crypto/hash.h"
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

/* Appends "/" and name to the path in buf (size bytes). */
static void append(char *buf, size_t size, const char *name)
{
    size_t n = strlen(buf);
    if ((size_t)snprintf(buf + n, size - n, "/%s", name) >= size - n)
        abort();
}

static void rm_rf(const char *p) { (void)nftw(p, rm_cb, 64, FTW_DEPTH | FTW_PHYS); }

static void new_dir(char *out, size_t n)
{
    if ((size_t)snprintf(out, n, "%s/b%d", tmp_root, dir_seq++) >= n || mkdir(out, 0755) != 0)
        abort();
}

static void put(const char *dir, const char *rel, const char *text, mode_t mode)
{
    char p[2048];
    FILE *f;

    PATHF(p, "%s/%s", dir, rel);
    f = fopen(p, "wb");
    if (f == NULL || fputs(text, f) < 0 || fclose(f) != 0 || chmod(p, mode) != 0)
        abort();
}

static void sub(const char *dir, const char *rel)
{
    char p[2048];
    PATHF(p, "%s/%s", dir, rel);
    if (mkdir(p, 0755) != 0)
        abort();
}

static void link_(const char *dir, const char *rel, const char *target)
{
    char p[2048];
    PATHF(p, "%s/%s", dir, rel);
    if (symlink(target, p) != 0)
        abort();
}

/* The bundle of the published known answer. */
static void make_kat(const char *d)
{
    sub(d, "bin");
    sub(d, "data");
    sub(d, "empty");
    put(d, "coffer.json", "{\"name\":\"kat\"}\n", 0644);
    put(d, "bin/run", "#!/bin/sh\necho hi\n", 0755);
    put(d, "data/a.txt", "alpha\n", 0644);
    link_(d, "link", "data/a.txt");
}

static const char kat_build_hash[] =
    "sha256:cbc48059a4add27f5c7af4b45d33242fb06ddd4c68ad679465a195f457dea40b";

static void test_known_answer(void)
{
    char d[512], bh[CF_BUILD_HASH_STR_LEN + 1];
    uint8_t dig[32], rt[48], meas[48], want[48];
    cf_launch_config plain = {.debug = false, .vmpl = 0}, dbg = {.debug = true, .vmpl = 1};

    new_dir(d, sizeof(d));
    make_kat(d);
    T_OK(cf_bundle_digest(d, dig));
    cf_build_hash_format(dig, bh);
    T_STREQ(bh, kat_build_hash);

    T_OK(cf_sha384("runtime", 7, rt));
    T_OK(cf_launch_measurement(rt, dig, &plain, meas));
    T_OK(cf_hex_decode("b3c9c1aa6aa1ebf48404450b32ec4a7721a77b879b5864b320477cf4b1e10ec0f55bb058c"
                       "7bc52e68b283eb00579c9a4",
                       want, 48));
    T_MEMEQ(meas, want, 48);
    T_OK(cf_launch_measurement(rt, dig, &dbg, meas));
    T_OK(cf_hex_decode("a017198cde66dacca2c78b5c34d4c4613a9fc6bd83eeea5447cab5cb39fc22ba2656fe6ec"
                       "18c0280cdc02f59cb76fd0e",
                       want, 48));
    T_MEMEQ(meas, want, 48);
}

static void test_launch_block_layout(void)
{
    uint8_t rt[48], dig[32], block[CF_LAUNCH_BLOCK_LEN], m1[48], m2[48];
    cf_launch_config c = {.debug = true, .vmpl = 3};
    cf_buf b;
    uint8_t u8;
    uint64_t policy;
    uint32_t vmpl;
    const uint8_t *p;

    memset(rt, 0x11, sizeof(rt));
    memset(dig, 0x22, sizeof(dig));
    T_OK(cf_launch_block(rt, dig, &c, block));
    cf_buf_view(&b, block, sizeof(block));
    T_OK(cf_buf_get_ptr(&b, 17, &p));
    T_MEMEQ(p, "coffer/v1 launch\0", 17);
    T_OK(cf_buf_get_u8(&b, &u8));
    T_EQ(u8, 1);
    T_OK(cf_buf_get_ptr(&b, 48, &p));
    T_MEMEQ(p, rt, 48);
    T_OK(cf_buf_get_ptr(&b, 32, &p));
    T_MEMEQ(p, dig, 32);
    T_OK(cf_buf_get_u64be(&b, &policy));
    T_ASSERT(policy == (CF_SNP_POLICY_SMT | CF_SNP_POLICY_RESERVED_1 | CF_SNP_POLICY_DEBUG));
    T_OK(cf_buf_get_u32be(&b, &vmpl));
    T_EQ(vmpl, 3);
    T_OK(cf_buf_get_u8(&b, &u8));
    T_EQ(u8, 1);
    T_OK(cf_buf_expect_end(&b));

    /* Every input changes the measurement. */
    T_OK(cf_launch_measurement(rt, dig, &c, m1));
    c.vmpl = 2;
    T_OK(cf_launch_measurement(rt, dig, &c, m2));
    T_ASSERT(memcmp(m1, m2, 48) != 0);
    c.vmpl = 3;
    c.debug = false;
    T_OK(cf_launch_measurement(rt, dig, &c, m2));
    T_ASSERT(memcmp(m1, m2, 48) != 0);
    c.debug = true;
    rt[47] ^= 1;
    T_OK(cf_launch_measurement(rt, dig, &c, m2));
    T_ASSERT(memcmp(m1, m2, 48) != 0);
    rt[47] ^= 1;
    dig[0] ^= 1;
    T_OK(cf_launch_measurement(rt, dig, &c, m2));
    T_ASSERT(memcmp(m1, m2, 48) != 0);
    dig[0] ^= 1;
    T_OK(cf_launch_measurement(rt, dig, &c, m2));
    T_MEMEQ(m1, m2, 48);

    c.vmpl = 4;
    T_ERR(cf_launch_block(rt, dig, &c, block), CF_E_RANGE);
    T_ERR(cf_launch_measurement(rt, dig, &c, m2), CF_E_RANGE);
    c.debug = false;
    T_ASSERT(cf_launch_policy(&c) == 0x30000);
}

static void test_reproducible_and_order_independent(void)
{
    char a[512], b[512];
    uint8_t da[32], da2[32], db[32];

    /* Same tree built in opposite orders (different directory entry order). */
    new_dir(a, sizeof(a));
    new_dir(b, sizeof(b));
    sub(a, "x");
    put(a, "x/1", "one", 0644);
    put(a, "x/2", "two", 0644);
    put(a, "a.b", "dot", 0644);
    put(a, "z", "zed", 0755);
    put(b, "z", "zed", 0755);
    put(b, "a.b", "dot", 0644);
    sub(b, "x");
    put(b, "x/2", "two", 0644);
    put(b, "x/1", "one", 0644);
    T_OK(cf_bundle_digest(a, da));
    T_OK(cf_bundle_digest(a, da2));
    T_OK(cf_bundle_digest(b, db));
    T_MEMEQ(da, da2, 32);
    T_MEMEQ(da, db, 32);

    /* Group/other bits do not matter; only the owner execute bit does. */
    {
        char p[1024];
        PATHF(p, "%s/x/1", b);
        T_OK(chmod(p, 0600));
        T_OK(cf_bundle_digest(b, db));
        T_MEMEQ(da, db, 32);
        T_OK(chmod(p, 0744));
        T_OK(cf_bundle_digest(b, db));
        T_ASSERT(memcmp(da, db, 32) != 0);
        T_OK(chmod(p, 0644));
    }
    /* Empty directories are not recorded. */
    sub(b, "empty");
    T_OK(cf_bundle_digest(b, db));
    T_MEMEQ(da, db, 32);
}

static void test_changes_change_digest(void)
{
    char a[512], p[1024], q[1024];
    uint8_t base[32], d[32];

    new_dir(a, sizeof(a));
    make_kat(a);
    T_OK(cf_bundle_digest(a, base));

    put(a, "data/a.txt", "alphb\n", 0644); /* one byte */
    T_OK(cf_bundle_digest(a, d));
    T_ASSERT(memcmp(base, d, 32) != 0);
    put(a, "data/a.txt", "alpha\n", 0644);
    T_OK(cf_bundle_digest(a, d));
    T_MEMEQ(base, d, 32);

    put(a, "data/new", "", 0644); /* an added empty file */
    T_OK(cf_bundle_digest(a, d));
    T_ASSERT(memcmp(base, d, 32) != 0);
    PATHF(p, "%s/data/new", a);
    T_OK(unlink(p));

    PATHF(p, "%s/data/a.txt", a); /* a rename */
    PATHF(q, "%s/data/b.txt", a);
    T_OK(rename(p, q));
    T_OK(cf_bundle_digest(a, d));
    T_ASSERT(memcmp(base, d, 32) != 0);
    T_OK(rename(q, p));

    PATHF(p, "%s/link", a); /* another symlink target */
    T_OK(unlink(p));
    link_(a, "link", "data/./a.txt");
    T_OK(cf_bundle_digest(a, d));
    T_ASSERT(memcmp(base, d, 32) != 0);
    T_OK(unlink(p));
    link_(a, "link", "data/a.txt");
    T_OK(cf_bundle_digest(a, d));
    T_MEMEQ(base, d, 32);
}

/* The top-level coffer.sig signs the build_hash, so it is not measured
 * (docs/internals/simulator.md); anywhere else it is an ordinary file. */
static void test_signature_file_excluded(void)
{
    char a[512], p[1024];
    uint8_t base[32], d[32];

    new_dir(a, sizeof(a));
    make_kat(a);
    T_OK(cf_bundle_digest(a, base));
    put(a, "coffer.sig", "c2lnbmF0dXJl\n", 0644);
    T_OK(cf_bundle_digest(a, d));
    T_MEMEQ(base, d, 32);
    put(a, "coffer.sig", "another signature\n", 0755);
    T_OK(cf_bundle_digest(a, d));
    T_MEMEQ(base, d, 32);
    PATHF(p, "%s/coffer.sig", a);
    T_OK(unlink(p));

    /* Below the top level the name has no meaning: measured. */
    put(a, "data/coffer.sig", "x", 0644);
    T_OK(cf_bundle_digest(a, d));
    T_ASSERT(memcmp(base, d, 32) != 0);
    PATHF(p, "%s/data/coffer.sig", a);
    T_OK(unlink(p));

    /* Not a regular file: refused, so the name cannot hide a tree or a link. */
    sub(a, "coffer.sig");
    put(a, "coffer.sig/hidden", "x", 0644);
    T_ERR(cf_bundle_digest(a, d), CF_E_UNSUPPORTED);
    PATHF(p, "%s/coffer.sig/hidden", a);
    T_OK(unlink(p));
    PATHF(p, "%s/coffer.sig", a);
    T_OK(rmdir(p));
    link_(a, "coffer.sig", "data/a.txt");
    T_ERR(cf_bundle_digest(a, d), CF_E_UNSUPPORTED);
    T_OK(unlink(p));
    T_OK(cf_bundle_digest(a, d));
    T_MEMEQ(base, d, 32);
}

static void test_symlink_rules(void)
{
    char a[512];
    uint8_t d[32];

    new_dir(a, sizeof(a));
    put(a, "f", "x", 0644);
    sub(a, "dir");
    link_(a, "ok1", "f");
    link_(a, "ok2", "dir");
    link_(a, "dir/ok3", "sub/dangling");  /* downward and dangling: harmless */
    T_OK(cf_bundle_digest(a, d));

    link_(a, "abs", "/etc/passwd");
    T_ERR(cf_bundle_digest(a, d), CF_E_UNSUPPORTED);
    T_ASSERT(strstr(cf_err_detail(CF_E_UNSUPPORTED), "abs") != NULL);
    {
        char p[1024];
        PATHF(p, "%s/abs", a);
        T_OK(unlink(p));
    }
    link_(a, "dir/up", "../f"); /* stays inside lexically, still refused */
    T_ERR(cf_bundle_digest(a, d), CF_E_UNSUPPORTED);
    {
        char p[1024];
        PATHF(p, "%s/dir/up", a);
        T_OK(unlink(p));
        link_(a, "esc", "dir/../../outside");
        T_ERR(cf_bundle_digest(a, d), CF_E_UNSUPPORTED);
        PATHF(p, "%s/esc", a);
        T_OK(unlink(p));
        link_(a, "dots", "..");
        T_ERR(cf_bundle_digest(a, d), CF_E_UNSUPPORTED);
        PATHF(p, "%s/dots", a);
        T_OK(unlink(p));
        link_(a, "dotdotname", "f..g/..h"); /* ".." only as a whole component */
        T_OK(cf_bundle_digest(a, d));
    }
}

static void test_special_files_refused(void)
{
    char a[512], p[1024];
    uint8_t d[32];
    struct sockaddr_un sa;
    int s;

    new_dir(a, sizeof(a));
    put(a, "f", "x", 0644);
    PATHF(p, "%s/fifo", a);
    T_OK(mkfifo(p, 0600));
    T_ERR(cf_bundle_digest(a, d), CF_E_UNSUPPORTED);
    T_OK(unlink(p));
    T_OK(cf_bundle_digest(a, d));

    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    PATHF(sa.sun_path, "%s/sock", a);
    s = socket(AF_UNIX, SOCK_STREAM, 0);
    T_ASSERT(s >= 0);
    T_OK(bind(s, (struct sockaddr *)&sa, sizeof(sa)));
    T_ERR(cf_bundle_digest(a, d), CF_E_UNSUPPORTED);
    close(s);
    T_OK(unlink(sa.sun_path));

    /* A control character in a name. */
    put(a, "bad\nname", "x", 0644);
    T_ERR(cf_bundle_digest(a, d), CF_E_PARSE);
}

static void test_limits(void)
{
    char a[512], p[2048], name[256];
    uint8_t d[32];
    int fd;

    /* Depth: CF_BUNDLE_MAX_DEPTH directories below the root are fine, one more is not. */
    new_dir(a, sizeof(a));
    PATHF(p, "%s", a);
    for (int i = 0; i < CF_BUNDLE_MAX_DEPTH; i++) {
        append(p, sizeof(p), "d");
        T_OK(mkdir(p, 0755));
    }
    T_OK(cf_bundle_digest(a, d));
    append(p, sizeof(p), "d");
    T_OK(mkdir(p, 0755));
    T_ERR(cf_bundle_digest(a, d), CF_E_TOO_LARGE);

    /* Entries. */
    new_dir(a, sizeof(a));
    for (int i = 0; i < (int)CF_BUNDLE_MAX_ENTRIES; i++) {
        PATHF(p, "%s/%d", a, i);
        fd = open(p, O_WRONLY | O_CREAT | O_EXCL, 0644);
        T_ASSERT(fd >= 0);
        close(fd);
    }
    T_OK(cf_bundle_digest(a, d));
    PATHF(p, "%s/one-more", a);
    fd = open(p, O_WRONLY | O_CREAT | O_EXCL, 0644);
    T_ASSERT(fd >= 0);
    close(fd);
    T_ERR(cf_bundle_digest(a, d), CF_E_TOO_LARGE);

    /* Bytes: a sparse file just over the limit is refused without reading it. */
    new_dir(a, sizeof(a));
    PATHF(p, "%s/huge", a);
    fd = open(p, O_WRONLY | O_CREAT | O_EXCL, 0644);
    T_ASSERT(fd >= 0);
    T_OK(ftruncate(fd, (off_t)CF_BUNDLE_MAX_BYTES + 1));
    close(fd);
    T_ERR(cf_bundle_digest(a, d), CF_E_TOO_LARGE);

    /* Path length: nested 200-byte names beyond CF_BUNDLE_MAX_PATH. */
    new_dir(a, sizeof(a));
    memset(name, 'n', 200);
    name[200] = '\0';
    PATHF(p, "%s", a);
    for (int i = 0; i < 6; i++) {
        append(p, sizeof(p), name);
        T_OK(mkdir(p, 0755));
    }
    append(p, sizeof(p), "f");
    fd = open(p, O_WRONLY | O_CREAT | O_EXCL, 0644);
    T_ASSERT(fd >= 0);
    close(fd);
    T_ERR(cf_bundle_digest(a, d), CF_E_TOO_LARGE);

    /* Not a directory, missing. */
    PATHF(p, "%s/nope", tmp_root);
    T_ERR(cf_bundle_digest(p, d), CF_E_IO);
    new_dir(a, sizeof(a));
    put(a, "f", "x", 0644);
    PATHF(p, "%s/f", a);
    T_ERR(cf_bundle_digest(p, d), CF_E_IO);
}

static void test_build_hash_text(void)
{
    uint8_t d[32], back[32];
    char s[CF_BUILD_HASH_STR_LEN + 1];

    for (int i = 0; i < 32; i++)
        d[i] = (uint8_t)(i * 9);
    cf_build_hash_format(d, s);
    T_EQ(strlen(s), 71);
    T_ASSERT(strncmp(s, "sha256:", 7) == 0);
    T_OK(cf_build_hash_parse(s, back));
    T_MEMEQ(d, back, 32);
    T_OK(cf_build_hash_parse(kat_build_hash, back));
    T_ERR(cf_build_hash_parse("sha384:cbc48059a4add27f5c7af4b45d33242fb06ddd4c68ad679465a195f457"
                              "dea40b",
                              back),
          CF_E_PARSE);
    T_ERR(cf_build_hash_parse("sha256:cbc4", back), CF_E_PARSE);
    T_ERR(cf_build_hash_parse("sha256:zbc48059a4add27f5c7af4b45d33242fb06ddd4c68ad679465a195f457"
                              "dea40b",
                              back),
          CF_E_PARSE);
    T_ERR(cf_build_hash_parse("", back), CF_E_PARSE);
}

static void test_runtime_hash(void)
{
    char a[512], p[1024];
    uint8_t h[48], want[48];
    cf_measure_result m;
    cf_launch_config c = {0};

    new_dir(a, sizeof(a));
    put(a, "prog", "runtime", 0755);
    PATHF(p, "%s/prog", a);
    T_OK(cf_sha384_file(p, h));
    T_OK(cf_sha384("runtime", 7, want));
    T_MEMEQ(h, want, 48);
    T_ERR(cf_sha384_file(a, h), CF_E_INVAL); /* a directory */
    PATHF(p, "%s/fifo", a);
    T_OK(mkfifo(p, 0600));
    T_ERR(cf_sha384_file(p, h), CF_E_INVAL); /* never blocks on a FIFO */
    PATHF(p, "%s/missing", a);
    T_ERR(cf_sha384_file(p, h), CF_E_IO);

    /* cf_measure = the parts. */
    new_dir(a, sizeof(a));
    make_kat(a);
    PATHF(p, "%s/bin/run", a);
    T_OK(cf_measure(p, a, &c, &m));
    {
        uint8_t dig[32], meas[48];
        T_OK(cf_bundle_digest(a, dig));
        T_MEMEQ(m.bundle_digest, dig, 32);
        T_OK(cf_sha384_file(p, h));
        T_MEMEQ(m.runtime_sha384, h, 48);
        T_OK(cf_launch_measurement(h, dig, &c, meas));
        T_MEMEQ(m.measurement, meas, 48);
        T_ASSERT(m.policy == 0x30000);
    }
}

int main(void)
{
    const char *tmp = getenv("TMPDIR");

    if ((size_t)snprintf(tmp_root, sizeof(tmp_root), "%s/coffer-test-measure-XXXXXX",
                         tmp != NULL && tmp[0] != '\0' ? tmp : "/tmp") >= sizeof(tmp_root) ||
        mkdtemp(tmp_root) == NULL)
        abort();
    T_RUN(test_known_answer);
    T_RUN(test_launch_block_layout);
    T_RUN(test_reproducible_and_order_independent);
    T_RUN(test_changes_change_digest);
    T_RUN(test_signature_file_excluded);
    T_RUN(test_symlink_rules);
    T_RUN(test_special_files_refused);
    T_RUN(test_limits);
    T_RUN(test_build_hash_text);
    T_RUN(test_runtime_hash);
    rm_rf(tmp_root);
    return t_done();
}
