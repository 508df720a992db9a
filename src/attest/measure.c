/*
 * Bundle digest and launch measurement. The exact byte definitions are in
 * docs/internals/simulator.md ("Measurement"); keep the two in step: a change
 * here changes every build_hash and measurement that manifests pin.
 */
#include "attest/measure.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "attest/snp.h"
#include "base/buf.h"
#include "base/err.h"
#include "base/limits.h"
#include "base/parse.h"
#include "crypto/hash.h"

static const char bundle_domain[] = "coffer/v1 bundle"; /* followed by 0x00 */
static const char launch_domain[] = "coffer/v1 launch"; /* followed by 0x00 */

#define KIND_FILE 0x66    /* 'f' */
#define KIND_SYMLINK 0x6C /* 'l' */

uint64_t cf_launch_policy(const cf_launch_config *cfg)
{
    uint64_t p = CF_SNP_POLICY_SMT | CF_SNP_POLICY_RESERVED_1;

    if (cfg->debug)
        p |= CF_SNP_POLICY_DEBUG;
    return p;
}

/* Hashes fd from its current offset with md, reading at most max bytes. */
static int hash_fd(const EVP_MD *md, int fd, uint64_t max, uint8_t *out, uint64_t *ret_size)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    uint8_t chunk[64 * 1024];
    uint64_t total = 0;
    int rc = 0;

    CF_ENSURE_OUT(ctx != NULL, CF_E_NOMEM);
    CF_ENSURE_OUT(EVP_DigestInit_ex(ctx, md, NULL) == 1, CF_E_CRYPTO);
    for (;;) {
        ssize_t n = read(fd, chunk, sizeof(chunk));
        if (n < 0 && errno == EINTR)
            continue;
        CF_ENSURE_OUT(n >= 0, cf_err_set(CF_E_IO, "read failed: %s", strerror(errno)));
        if (n == 0)
            break;
        CF_ENSURE_OUT((uint64_t)n <= max - total,
                      cf_err_set(CF_E_TOO_LARGE, "file exceeds %llu bytes",
                                 (unsigned long long)max));
        total += (uint64_t)n;
        CF_ENSURE_OUT(EVP_DigestUpdate(ctx, chunk, (size_t)n) == 1, CF_E_CRYPTO);
    }
    CF_ENSURE_OUT(EVP_DigestFinal_ex(ctx, out, NULL) == 1, CF_E_CRYPTO);
    if (ret_size != NULL)
        *ret_size = total;
out:
    EVP_MD_CTX_free(ctx);
    return rc;
}

int cf_sha384_fd(int fd, uint64_t max_bytes, uint8_t ret[48], uint64_t *ret_size)
{
    uint8_t d[48];
    uint64_t n;

    CF_GUARD(hash_fd(EVP_sha384(), fd, max_bytes, d, &n));
    memcpy(ret, d, sizeof(d));
    if (ret_size != NULL)
        *ret_size = n;
    return 0;
}

int cf_sha384_file(const char *path, uint8_t ret[48])
{
    struct stat st;
    int rc = 0;
    /* O_NONBLOCK: a FIFO put in place of the binary must not hang the caller. */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);

    if (fd < 0)
        return cf_err_set(CF_E_IO, "cannot open '%s': %s", path, strerror(errno));
    CF_ENSURE_OUT(fstat(fd, &st) == 0, cf_err_set(CF_E_IO, "cannot stat '%s'", path));
    CF_ENSURE_OUT(S_ISREG(st.st_mode),
                  cf_err_set(CF_E_INVAL, "'%s' is not a regular file", path));
    CF_GUARD_OUT(cf_sha384_fd(fd, CF_TEE_BINARY_MAX_BYTES, ret, NULL));
out:
    close(fd);
    return rc;
}

/* ---- bundle walk ---- */

typedef struct {
    char *path; /* relative, '/'-separated, NUL-terminated */
    size_t path_len;
    uint8_t kind;
    uint8_t exec;
    uint64_t size;
    uint8_t sha256[32];
    char *target; /* symlinks */
    size_t target_len;
} bundle_entry;

typedef struct {
    bundle_entry *v;
    size_t n, cap;
    size_t entries; /* everything seen, directories included */
    uint64_t bytes;
} bundle_walk;

static void walk_free(bundle_walk *w)
{
    for (size_t i = 0; i < w->n; i++) {
        free(w->v[i].path);
        free(w->v[i].target);
    }
    free(w->v);
    memset(w, 0, sizeof(*w));
}

static int walk_push(bundle_walk *w, const char *rel, size_t rel_len, bundle_entry **ret)
{
    bundle_entry *e;

    if (w->n == w->cap) {
        size_t cap = w->cap ? w->cap * 2 : 32;
        bundle_entry *nv = realloc(w->v, cap * sizeof(*nv));
        if (nv == NULL)
            return CF_E_NOMEM;
        w->v = nv;
        w->cap = cap;
    }
    e = &w->v[w->n];
    memset(e, 0, sizeof(*e));
    e->path = malloc(rel_len + 1);
    if (e->path == NULL)
        return CF_E_NOMEM;
    memcpy(e->path, rel, rel_len + 1);
    e->path_len = rel_len;
    w->n++;
    *ret = e;
    return 0;
}

static bool has_control_char(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] == 0x7f)
            return true;
    return false;
}

/* A symlink may only point downwards inside its own directory tree: relative
 * and without any ".." component. (A lexical check that allowed ".." would be
 * fooled by other symlinks on the way, e.g. "a -> ." then "l -> a/a/../..".) */
static int check_link_target(const char *rel, const char *t, size_t n)
{
    size_t start = 0;

    if (n == 0 || t[0] == '/')
        return cf_err_set(CF_E_UNSUPPORTED, "symlink '%s' is empty or absolute: it could point "
                                             "out of the bundle", rel);
    if (has_control_char(t, n))
        return cf_err_set(CF_E_PARSE, "symlink '%s' has a control character in its target", rel);
    for (size_t i = 0; i <= n; i++) {
        if (i == n || t[i] == '/') {
            if (i - start == 2 && t[start] == '.' && t[start + 1] == '.')
                return cf_err_set(CF_E_UNSUPPORTED, "symlink '%s' has a '..' component: it "
                                                     "could point out of the bundle", rel);
            start = i + 1;
        }
    }
    return 0;
}

static int measure_file(bundle_walk *w, int dirfd, const char *name, const struct stat *lst,
                        bundle_entry *e)
{
    struct stat st;
    uint64_t size;
    int rc = 0;
    int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);

    if (fd < 0)
        return cf_err_set(CF_E_IO, "cannot open '%s': %s", e->path, strerror(errno));
    CF_ENSURE_OUT(fstat(fd, &st) == 0, cf_err_set(CF_E_IO, "cannot stat '%s'", e->path));
    /* The file we opened must be the one we listed (no swap in between). */
    CF_ENSURE_OUT(S_ISREG(st.st_mode) && st.st_ino == lst->st_ino && st.st_dev == lst->st_dev,
                  cf_err_set(CF_E_CONFLICT, "'%s' changed while the bundle was measured",
                             e->path));
    /* Refuse an oversized bundle before reading it; the read is capped too,
     * in case the file grows meanwhile. */
    CF_ENSURE_OUT((uint64_t)st.st_size <= CF_BUNDLE_MAX_BYTES - w->bytes,
                  cf_err_set(CF_E_TOO_LARGE, "bundle exceeds %llu bytes (at '%s')",
                             (unsigned long long)CF_BUNDLE_MAX_BYTES, e->path));
    rc = hash_fd(EVP_sha256(), fd, CF_BUNDLE_MAX_BYTES - w->bytes, e->sha256, &size);
    if (rc == CF_E_TOO_LARGE)
        rc = cf_err_set(CF_E_TOO_LARGE, "bundle exceeds %llu bytes (at '%s')",
                        (unsigned long long)CF_BUNDLE_MAX_BYTES, e->path);
    if (rc < 0)
        goto out;
    CF_ENSURE_OUT(size == (uint64_t)st.st_size,
                  cf_err_set(CF_E_CONFLICT, "'%s' changed size while the bundle was measured",
                             e->path));
    w->bytes += size;
    e->kind = KIND_FILE;
    e->size = size;
    /* Only the owner execute bit is measured: group/other bits and the rest of
     * the mode vary with umask and checkout tools, and mean nothing in a TEE. */
    e->exec = (st.st_mode & S_IXUSR) ? 1 : 0;
out:
    close(fd);
    return rc;
}

static int walk_dir(bundle_walk *w, int dfd, const char *prefix, size_t prefix_len,
                    unsigned depth)
{
    DIR *d = fdopendir(dfd);
    struct dirent *de;
    int rc = 0;

    if (d == NULL) {
        close(dfd);
        return cf_err_set(CF_E_IO, "cannot read directory '%s': %s",
                          prefix_len ? prefix : ".", strerror(errno));
    }
    for (;;) {
        char rel[CF_BUNDLE_MAX_PATH + 1];
        size_t name_len, rel_len;
        struct stat st;
        bundle_entry *e;

        errno = 0;
        de = readdir(d);
        if (de == NULL) {
            CF_ENSURE_OUT(errno == 0, cf_err_set(CF_E_IO, "cannot read directory '%s'",
                                                 prefix_len ? prefix : "."));
            break;
        }
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        name_len = strlen(de->d_name);
        CF_ENSURE_OUT(++w->entries <= CF_BUNDLE_MAX_ENTRIES,
                      cf_err_set(CF_E_TOO_LARGE, "bundle has more than %u entries",
                                 (unsigned)CF_BUNDLE_MAX_ENTRIES));
        rel_len = prefix_len + (prefix_len ? 1 : 0) + name_len;
        CF_ENSURE_OUT(rel_len <= CF_BUNDLE_MAX_PATH,
                      cf_err_set(CF_E_TOO_LARGE, "path longer than %u bytes in bundle",
                                 (unsigned)CF_BUNDLE_MAX_PATH));
        CF_GUARD_OUT(cf_fmt(rel, sizeof(rel), "%s%s%s", prefix, prefix_len ? "/" : "",
                            de->d_name));
        CF_ENSURE_OUT(!has_control_char(de->d_name, name_len),
                      cf_err_set(CF_E_PARSE, "file name with a control character in bundle "
                                             "directory '%s'", prefix_len ? prefix : "."));
        CF_ENSURE_OUT(fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0,
                      cf_err_set(CF_E_IO, "cannot stat '%s': %s", rel, strerror(errno)));
        if (depth == 0 && strcmp(de->d_name, CF_BUNDLE_SIG_FILE) == 0) {
            /* The developer's signature covers the build_hash, so it cannot be
             * inside what it signs: a top-level coffer.sig is not measured. It
             * must be a plain file, so that it cannot hide a directory or a
             * link from the digest. */
            CF_ENSURE_OUT(S_ISREG(st.st_mode),
                          cf_err_set(CF_E_UNSUPPORTED, "'%s' must be a regular file (the "
                                                       "developer signature)", rel));
            continue;
        }
        if (S_ISDIR(st.st_mode)) {
            int sub;
            CF_ENSURE_OUT(depth < CF_BUNDLE_MAX_DEPTH,
                          cf_err_set(CF_E_TOO_LARGE, "bundle nests deeper than %u directories "
                                                     "(at '%s')", (unsigned)CF_BUNDLE_MAX_DEPTH,
                                     rel));
            sub = openat(dirfd(d), de->d_name,
                         O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            CF_ENSURE_OUT(sub >= 0, cf_err_set(CF_E_IO, "cannot open directory '%s': %s", rel,
                                               strerror(errno)));
            CF_GUARD_OUT(walk_dir(w, sub, rel, rel_len, depth + 1));
        } else if (S_ISREG(st.st_mode)) {
            CF_GUARD_OUT(walk_push(w, rel, rel_len, &e));
            CF_GUARD_OUT(measure_file(w, dirfd(d), de->d_name, &st, e));
        } else if (S_ISLNK(st.st_mode)) {
            char target[CF_BUNDLE_MAX_PATH + 1];
            ssize_t n = readlinkat(dirfd(d), de->d_name, target, sizeof(target));
            CF_ENSURE_OUT(n >= 0, cf_err_set(CF_E_IO, "cannot read symlink '%s'", rel));
            CF_ENSURE_OUT((size_t)n <= CF_BUNDLE_MAX_PATH,
                          cf_err_set(CF_E_TOO_LARGE, "symlink '%s' target longer than %u bytes",
                                     rel, (unsigned)CF_BUNDLE_MAX_PATH));
            CF_ENSURE_OUT(memchr(target, '\0', (size_t)n) == NULL,
                          cf_err_set(CF_E_PARSE, "symlink '%s' target has a NUL", rel));
            CF_GUARD_OUT(check_link_target(rel, target, (size_t)n));
            CF_GUARD_OUT(walk_push(w, rel, rel_len, &e));
            e->kind = KIND_SYMLINK;
            e->target = malloc((size_t)n + 1);
            CF_ENSURE_OUT(e->target != NULL, CF_E_NOMEM);
            memcpy(e->target, target, (size_t)n);
            e->target[n] = '\0';
            e->target_len = (size_t)n;
        } else {
            rc = cf_err_set(CF_E_UNSUPPORTED, "'%s' is a special file (FIFO, socket or device); "
                                              "a bundle may hold only files, directories and "
                                              "symlinks", rel);
            goto out;
        }
    }
out:
    closedir(d);
    return rc;
}

static int entry_cmp(const void *a, const void *b)
{
    const bundle_entry *x = a, *y = b;
    size_t n = CF_MIN(x->path_len, y->path_len);
    int c = memcmp(x->path, y->path, n);

    if (c != 0)
        return c;
    return x->path_len < y->path_len ? -1 : x->path_len > y->path_len;
}

static int digest_entries(const bundle_walk *w, uint8_t out[CF_BUNDLE_DIGEST_LEN])
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    cf_buf rec;
    int rc = 0;

    cf_buf_init(&rec, 64 + 2 * CF_BUNDLE_MAX_PATH);
    CF_ENSURE_OUT(ctx != NULL, CF_E_NOMEM);
    CF_ENSURE_OUT(EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1, CF_E_CRYPTO);
    /* Header: domain string with its NUL, then the record count. */
    CF_GUARD_OUT(cf_buf_put(&rec, bundle_domain, sizeof(bundle_domain)));
    CF_GUARD_OUT(cf_buf_put_u32be(&rec, (uint32_t)w->n));
    CF_ENSURE_OUT(EVP_DigestUpdate(ctx, rec.data, rec.len) == 1, CF_E_CRYPTO);
    for (size_t i = 0; i < w->n; i++) {
        const bundle_entry *e = &w->v[i];
        cf_buf_reset(&rec);
        CF_GUARD_OUT(cf_buf_put_u8(&rec, e->kind));
        CF_GUARD_OUT(cf_buf_put_u32be(&rec, (uint32_t)e->path_len));
        CF_GUARD_OUT(cf_buf_put(&rec, e->path, e->path_len));
        if (e->kind == KIND_FILE) {
            CF_GUARD_OUT(cf_buf_put_u8(&rec, e->exec));
            CF_GUARD_OUT(cf_buf_put_u64be(&rec, e->size));
            CF_GUARD_OUT(cf_buf_put(&rec, e->sha256, sizeof(e->sha256)));
        } else {
            CF_GUARD_OUT(cf_buf_put_u32be(&rec, (uint32_t)e->target_len));
            CF_GUARD_OUT(cf_buf_put(&rec, e->target, e->target_len));
        }
        CF_ENSURE_OUT(EVP_DigestUpdate(ctx, rec.data, rec.len) == 1, CF_E_CRYPTO);
    }
    CF_ENSURE_OUT(EVP_DigestFinal_ex(ctx, out, NULL) == 1, CF_E_CRYPTO);
out:
    cf_buf_free(&rec);
    EVP_MD_CTX_free(ctx);
    return rc;
}

int cf_bundle_digest(const char *dir, uint8_t ret[CF_BUNDLE_DIGEST_LEN])
{
    bundle_walk w;
    uint8_t d[CF_BUNDLE_DIGEST_LEN];
    int rc = 0;
    int fd;

    memset(&w, 0, sizeof(w));
    fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return cf_err_set(CF_E_IO, "cannot open bundle directory '%s': %s", dir,
                          strerror(errno));
    CF_GUARD_OUT(walk_dir(&w, fd, "", 0, 0));
    if (w.n > 1)
        qsort(w.v, w.n, sizeof(*w.v), entry_cmp);
    CF_GUARD_OUT(digest_entries(&w, d));
    memcpy(ret, d, sizeof(d));
out:
    walk_free(&w);
    return rc;
}

void cf_build_hash_format(const uint8_t digest[CF_BUNDLE_DIGEST_LEN],
                          char out[CF_BUILD_HASH_STR_LEN + 1])
{
    memcpy(out, CF_BUILD_HASH_PREFIX, 7);
    cf_hex_encode(digest, CF_BUNDLE_DIGEST_LEN, out + 7);
}

int cf_build_hash_parse(const char *s, uint8_t ret[CF_BUNDLE_DIGEST_LEN])
{
    uint8_t d[CF_BUNDLE_DIGEST_LEN];

    if (strncmp(s, CF_BUILD_HASH_PREFIX, 7) != 0 || strlen(s) != CF_BUILD_HASH_STR_LEN)
        return cf_err_set(CF_E_PARSE, "build hash must be \"sha256:\" and 64 hex digits");
    if (cf_hex_decode(s + 7, d, sizeof(d)) < 0)
        return cf_err_set(CF_E_PARSE, "build hash must be \"sha256:\" and 64 hex digits");
    memcpy(ret, d, sizeof(d));
    return 0;
}

int cf_launch_block(const uint8_t runtime_sha384[48],
                    const uint8_t bundle_digest[CF_BUNDLE_DIGEST_LEN],
                    const cf_launch_config *cfg, uint8_t ret[CF_LAUNCH_BLOCK_LEN])
{
    cf_buf b;
    int rc = 0;

    if (cfg->vmpl > 3)
        return cf_err_set(CF_E_RANGE, "VMPL must be 0..3");
    cf_buf_init(&b, CF_LAUNCH_BLOCK_LEN);
    CF_GUARD_OUT(cf_buf_put(&b, launch_domain, sizeof(launch_domain)));
    CF_GUARD_OUT(cf_buf_put_u8(&b, CF_LAUNCH_FORMAT_V1));
    CF_GUARD_OUT(cf_buf_put(&b, runtime_sha384, 48));
    CF_GUARD_OUT(cf_buf_put(&b, bundle_digest, CF_BUNDLE_DIGEST_LEN));
    CF_GUARD_OUT(cf_buf_put_u64be(&b, cf_launch_policy(cfg)));
    CF_GUARD_OUT(cf_buf_put_u32be(&b, cfg->vmpl));
    CF_GUARD_OUT(cf_buf_put_u8(&b, cfg->debug ? 1 : 0));
    CF_ENSURE_OUT(b.len == CF_LAUNCH_BLOCK_LEN, CF_E_INTERNAL);
    memcpy(ret, b.data, CF_LAUNCH_BLOCK_LEN);
out:
    cf_buf_free(&b);
    return rc;
}

int cf_launch_measurement(const uint8_t runtime_sha384[48],
                          const uint8_t bundle_digest[CF_BUNDLE_DIGEST_LEN],
                          const cf_launch_config *cfg, uint8_t ret[CF_MEASUREMENT_LEN])
{
    uint8_t block[CF_LAUNCH_BLOCK_LEN];

    CF_GUARD(cf_launch_block(runtime_sha384, bundle_digest, cfg, block));
    return cf_sha384(block, sizeof(block), ret);
}

int cf_measure(const char *program, const char *bundle_dir, const cf_launch_config *cfg,
               cf_measure_result *ret)
{
    cf_measure_result r;

    memset(&r, 0, sizeof(r));
    CF_GUARD(cf_sha384_file(program, r.runtime_sha384));
    CF_GUARD(cf_bundle_digest(bundle_dir, r.bundle_digest));
    r.policy = cf_launch_policy(cfg);
    CF_GUARD(cf_launch_measurement(r.runtime_sha384, r.bundle_digest, cfg, r.measurement));
    *ret = r;
    return 0;
}
