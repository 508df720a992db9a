/*
 * Deployment bundles: manifest parser, developer signatures, verified loading.
 * Formats: bundle.h and docs/internals/tee.md.
 */
#include "tee/bundle.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "base/err.h"
#include "base/file.h"
#include "base/json.h"
#include "base/parse.h"
#include "base/secmem.h"
#include "crypto/hash.h"

/* The demo developer key's seed is SHA-256 of this public text: deterministic
 * builds can sign the demo bundle, and nobody can mistake the key for a secret. */
static const char demo_key_label[] =
    "coffer/v1 demo developer key: public and insecure, signs the demo bundle only";

/* ---- names and paths ---- */

bool cf_bundle_name_valid(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n > CF_NAME_MAX_LEN)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return false;
    }
    return true;
}

static bool has_control(const char *s)
{
    for (; *s != '\0'; s++)
        if ((unsigned char)*s < 0x20 || (unsigned char)*s == 0x7f)
            return true;
    return false;
}

/* A command path: relative, no empty / "." / ".." component, and not the
 * signature file, which is outside the measurement (attest/measure.h). */
static int check_command(const char *path, const char *where)
{
    size_t n = strlen(path), start = 0;

    if (n == 0 || n > CF_BUNDLE_MAX_PATH || path[0] == '/' || has_control(path))
        return cf_err_set(CF_E_PARSE, "%s: field 'command' must be a relative path inside the "
                                      "bundle (1..%u bytes, no control characters)",
                          where, (unsigned)CF_BUNDLE_MAX_PATH);
    for (size_t i = 0; i <= n; i++) {
        if (i < n && path[i] != '/')
            continue;
        size_t len = i - start;
        if (len == 0 || (len == 1 && path[start] == '.') ||
            (len == 2 && path[start] == '.' && path[start + 1] == '.'))
            return cf_err_set(CF_E_PARSE, "%s: field 'command' has an empty, '.' or '..' "
                                          "component", where);
        start = i + 1;
    }
    if (strcmp(path, CF_BUNDLE_SIG_FILE) == 0)
        return cf_err_set(CF_E_PARSE, "%s: field 'command' names the signature file, which is "
                                      "not measured", where);
    return 0;
}

/* ---- manifest ---- */

static void job_clear(cf_bundle_job *j)
{
    free(j->command);
    for (size_t i = 0; i < j->n_args; i++)
        free(j->args[i]);
    free(j->args);
    memset(j, 0, sizeof(*j));
}

void cf_bundle_manifest_free(cf_bundle_manifest *m)
{
    if (m == NULL)
        return;
    for (size_t i = 0; i < m->n_jobs; i++)
        job_clear(&m->jobs[i]);
    free(m->jobs);
    free(m);
}

static int get_limit(const json_t *obj, const char *key, uint64_t max, const char *where,
                     uint32_t *ret)
{
    uint64_t v = 0;
    int rc = cf_json_get_u64(obj, key, true, max, &v);

    if (rc < 0)
        return cf_err_set(rc, "%s: %s", where, cf_err_detail(rc));
    if (v == 0)
        return cf_err_set(CF_E_RANGE, "%s: field '%s' must be between 1 and %llu", where, key,
                          (unsigned long long)max);
    *ret = (uint32_t)v;
    return 0;
}

static int parse_limits(const json_t *obj, const char *job, cf_job_limits *ret)
{
    static const char *const keys[] = {"cpu_s", "memory_mb", "output_kb", "timeout_ms", NULL};
    char where[CF_NAME_MAX_LEN + 32];
    cf_job_limits l;
    int rc;

    CF_GUARD(cf_fmt(where, sizeof(where), "jobs.%s.limits", job));
    if (!json_is_object(obj))
        return cf_err_set(CF_E_PARSE, "%s must be an object", where);
    rc = cf_json_only_keys(obj, keys);
    if (rc < 0)
        return cf_err_set(rc, "%s: %s", where, cf_err_detail(rc));
    CF_GUARD(get_limit(obj, "cpu_s", CF_TEE_MAX_CPU_S, where, &l.cpu_s));
    CF_GUARD(get_limit(obj, "memory_mb", CF_TEE_MAX_MEMORY_MB, where, &l.memory_mb));
    CF_GUARD(get_limit(obj, "output_kb", CF_TEE_MAX_OUTPUT_KB, where, &l.output_kb));
    CF_GUARD(get_limit(obj, "timeout_ms", CF_TEE_MAX_TIMEOUT_MS, where, &l.timeout_ms));
    *ret = l;
    return 0;
}

static int parse_job(const char *name, const json_t *obj, cf_bundle_job *j)
{
    static const char *const keys[] = {"command", "args", "limits", NULL};
    char where[CF_NAME_MAX_LEN + 16];
    const char *command = NULL;
    json_t *args = NULL, *limits = NULL;
    int rc;

    CF_GUARD(cf_fmt(where, sizeof(where), "jobs.%s", name));
    if (!json_is_object(obj))
        return cf_err_set(CF_E_PARSE, "%s must be an object", where);
    rc = cf_json_only_keys(obj, keys);
    if (rc == 0)
        rc = cf_json_get_str(obj, "command", true, CF_BUNDLE_MAX_PATH, &command);
    if (rc == 0)
        rc = cf_json_get_array(obj, "args", false, CF_TEE_MAX_ARGS, &args);
    if (rc == 0)
        rc = cf_json_get_obj(obj, "limits", true, &limits);
    if (rc < 0)
        return cf_err_set(rc, "%s: %s", where, cf_err_detail(rc));
    CF_GUARD(check_command(command, where));
    CF_GUARD(parse_limits(limits, name, &j->limits));
    memcpy(j->name, name, strlen(name) + 1);
    j->command = cf_strndup_max(command, CF_BUNDLE_MAX_PATH);
    CF_ENSURE(j->command != NULL, CF_E_NOMEM);
    if (args != NULL && json_array_size(args) > 0) {
        size_t n = json_array_size(args);
        j->args = calloc(n, sizeof(*j->args));
        CF_ENSURE(j->args != NULL, CF_E_NOMEM);
        for (size_t i = 0; i < n; i++) {
            const json_t *a = json_array_get(args, i);
            if (!json_is_string(a) || json_string_length(a) > CF_TEE_MAX_ARG_LEN ||
                has_control(json_string_value(a)))
                return cf_err_set(CF_E_PARSE, "%s: args[%zu] must be a string of at most %u "
                                              "bytes without control characters",
                                  where, i, (unsigned)CF_TEE_MAX_ARG_LEN);
            j->args[i] = cf_strndup_max(json_string_value(a), CF_TEE_MAX_ARG_LEN);
            CF_ENSURE(j->args[i] != NULL, CF_E_NOMEM);
            j->n_args = i + 1;
        }
    }
    return 0;
}

static int job_cmp(const void *a, const void *b)
{
    return strcmp(((const cf_bundle_job *)a)->name, ((const cf_bundle_job *)b)->name);
}

static bool printable_ascii(const char *s)
{
    for (; *s != '\0'; s++)
        if ((unsigned char)*s < 0x21 || (unsigned char)*s > 0x7e)
            return false;
    return true;
}

int cf_bundle_manifest_parse(const uint8_t *data, size_t len, cf_bundle_manifest **ret)
{
    static const char *const keys[] = {"name", "version", "jobs", NULL};
    json_t *root = NULL, *jobs = NULL, *val;
    const char *name = NULL, *version = NULL, *key;
    cf_bundle_manifest *m = NULL;
    size_t n;
    int rc;

    if (len > CF_TEE_MANIFEST_MAX_BYTES)
        return cf_err_set(CF_E_TOO_LARGE, "%s is larger than %u bytes", CF_BUNDLE_MANIFEST_FILE,
                          (unsigned)CF_TEE_MANIFEST_MAX_BYTES);
    rc = cf_json_parse_object(data, len, CF_TEE_MANIFEST_MAX_BYTES, &root);
    if (rc < 0)
        return cf_err_set(rc, "%s: %s", CF_BUNDLE_MANIFEST_FILE, cf_err_detail(rc));
    rc = cf_json_only_keys(root, keys);
    if (rc == 0)
        rc = cf_json_get_str(root, "name", true, CF_NAME_MAX_LEN, &name);
    if (rc == 0)
        rc = cf_json_get_str(root, "version", true, CF_TEE_VERSION_MAX_LEN, &version);
    if (rc == 0)
        rc = cf_json_get_obj(root, "jobs", true, &jobs);
    if (rc < 0) {
        rc = cf_err_set(rc, "%s: %s", CF_BUNDLE_MANIFEST_FILE, cf_err_detail(rc));
        goto out;
    }
    CF_ENSURE_OUT(cf_bundle_name_valid(name),
                  cf_err_set(CF_E_PARSE, "%s: field 'name' must be 1..%u characters of "
                                         "A-Z a-z 0-9 . _ -", CF_BUNDLE_MANIFEST_FILE,
                             (unsigned)CF_NAME_MAX_LEN));
    CF_ENSURE_OUT(version[0] != '\0' && printable_ascii(version),
                  cf_err_set(CF_E_PARSE, "%s: field 'version' must be 1..%u visible ASCII "
                                         "characters", CF_BUNDLE_MANIFEST_FILE,
                             (unsigned)CF_TEE_VERSION_MAX_LEN));
    CF_ENSURE_OUT(json_is_object(jobs),
                  cf_err_set(CF_E_PARSE, "%s: field 'jobs' must be an object of jobs by name",
                             CF_BUNDLE_MANIFEST_FILE));
    n = json_object_size(jobs);
    CF_ENSURE_OUT(n >= 1 && n <= CF_TEE_MAX_JOBS,
                  cf_err_set(CF_E_RANGE, "%s: field 'jobs' must hold 1..%u jobs",
                             CF_BUNDLE_MANIFEST_FILE, (unsigned)CF_TEE_MAX_JOBS));
    m = calloc(1, sizeof(*m));
    CF_ENSURE_OUT(m != NULL, CF_E_NOMEM);
    m->jobs = calloc(n, sizeof(*m->jobs));
    CF_ENSURE_OUT(m->jobs != NULL, CF_E_NOMEM);
    memcpy(m->name, name, strlen(name) + 1);
    memcpy(m->version, version, strlen(version) + 1);
    json_object_foreach(jobs, key, val) {
        CF_ENSURE_OUT(cf_bundle_name_valid(key),
                      cf_err_set(CF_E_PARSE, "%s: job names must be 1..%u characters of A-Z "
                                             "a-z 0-9 . _ -", CF_BUNDLE_MANIFEST_FILE,
                                 (unsigned)CF_NAME_MAX_LEN));
        m->n_jobs++;
        CF_GUARD_OUT(parse_job(key, val, &m->jobs[m->n_jobs - 1]));
    }
    qsort(m->jobs, m->n_jobs, sizeof(*m->jobs), job_cmp);
    *ret = m;
    m = NULL;
out:
    cf_bundle_manifest_free(m);
    json_decref(root);
    return rc;
}

const cf_bundle_job *cf_bundle_manifest_job(const cf_bundle_manifest *m, const char *name)
{
    cf_bundle_job key;

    if (strlen(name) > CF_NAME_MAX_LEN)
        return NULL;
    memcpy(key.name, name, strlen(name) + 1);
    return bsearch(&key, m->jobs, m->n_jobs, sizeof(*m->jobs), job_cmp);
}

/* ---- keys and signatures ---- */

int cf_developer_key_parse(const char *text, cf_key **ret)
{
    cf_key *k = NULL;
    cf_buf raw;
    int rc = 0;

    cf_buf_init(&raw, CF_ED25519_LEN);
    if (strncmp(text, "-----BEGIN", 10) == 0) {
        rc = cf_key_from_public_pem(text, strlen(text), &k);
        if (rc < 0) {
            rc = cf_err_set(CF_E_PARSE, "developer key is not a valid PEM public key");
            goto out;
        }
    } else {
        if (strlen(text) != cf_b64url_encoded_len(CF_ED25519_LEN) ||
            cf_b64url_decode(text, strlen(text), &raw) < 0 || raw.len != CF_ED25519_LEN) {
            rc = cf_err_set(CF_E_PARSE, "developer key must be an Ed25519 public key: 43 "
                                        "base64url characters (32 bytes) or a PEM public key");
            goto out;
        }
        CF_GUARD_OUT(cf_key_from_public(CF_KEY_ED25519, raw.data, raw.len, &k));
    }
    CF_ENSURE_OUT(cf_key_get_type(k) == CF_KEY_ED25519,
                  cf_err_set(CF_E_PARSE, "developer key must be an Ed25519 key, not %s",
                             cf_key_type_name(cf_key_get_type(k))));
    *ret = k;
    k = NULL;
out:
    cf_key_free(k);
    cf_buf_free(&raw);
    return rc;
}

int cf_bundle_demo_key(cf_key **ret)
{
    uint8_t seed[CF_SHA256_LEN];
    int rc = cf_sha256(demo_key_label, strlen(demo_key_label), seed);

    if (rc == 0)
        rc = cf_key_from_private(CF_KEY_ED25519, seed, sizeof(seed), ret);
    cf_wipe(seed, sizeof(seed));
    return rc;
}

/* "coffer/v1 bundle" || 0x00 || build_hash. */
static int sig_message(const char *build_hash, uint8_t out[sizeof(CF_BUNDLE_SIG_DOMAIN) +
                                                           CF_BUILD_HASH_STR_LEN])
{
    uint8_t digest[CF_BUNDLE_DIGEST_LEN];

    /* Only a well-formed build_hash is ever signed or checked. */
    CF_GUARD(cf_build_hash_parse(build_hash, digest));
    memcpy(out, CF_BUNDLE_SIG_DOMAIN, sizeof(CF_BUNDLE_SIG_DOMAIN)); /* with its NUL */
    memcpy(out + sizeof(CF_BUNDLE_SIG_DOMAIN), build_hash, CF_BUILD_HASH_STR_LEN);
    return 0;
}

int cf_bundle_sign(const cf_key *key, const char *build_hash, cf_buf *out)
{
    uint8_t msg[sizeof(CF_BUNDLE_SIG_DOMAIN) + CF_BUILD_HASH_STR_LEN];
    char text[CF_BUNDLE_SIG_TEXT_LEN + 1];
    cf_buf sig;
    size_t before = out->len;
    int rc = 0;

    cf_buf_init(&sig, CF_ED25519_SIG_LEN);
    CF_ENSURE_OUT(cf_key_get_type(key) == CF_KEY_ED25519 && cf_key_has_private(key),
                  cf_err_set(CF_E_INVAL, "bundles are signed with an Ed25519 private key"));
    CF_GUARD_OUT(sig_message(build_hash, msg));
    CF_GUARD_OUT(cf_key_sign(key, CF_SIG_RAW, msg, sizeof(msg), &sig));
    CF_ENSURE_OUT(sig.len == CF_ED25519_SIG_LEN, CF_E_INTERNAL);
    cf_b64url_encode(sig.data, sig.len, text);
    rc = cf_buf_put(out, text, CF_BUNDLE_SIG_TEXT_LEN);
    if (rc == 0)
        rc = cf_buf_put_u8(out, '\n');
    if (rc < 0)
        out->len = before;
out:
    cf_buf_free(&sig);
    return rc;
}

int cf_bundle_verify(const cf_key *key, const char *build_hash, const uint8_t *sig_text,
                     size_t len)
{
    uint8_t msg[sizeof(CF_BUNDLE_SIG_DOMAIN) + CF_BUILD_HASH_STR_LEN];
    char text[CF_BUNDLE_SIG_TEXT_LEN + 1];
    cf_buf sig;
    int rc = 0;

    cf_buf_init(&sig, CF_ED25519_SIG_LEN);
    CF_ENSURE_OUT(cf_key_get_type(key) == CF_KEY_ED25519,
                  cf_err_set(CF_E_INVAL, "developer key must be an Ed25519 key"));
    if (len == CF_BUNDLE_SIG_TEXT_LEN + 1 && sig_text[len - 1] == '\n')
        len--;
    CF_ENSURE_OUT(len == CF_BUNDLE_SIG_TEXT_LEN,
                  cf_err_set(CF_E_PARSE, "%s must hold one base64url Ed25519 signature (%u "
                                         "characters) and at most a newline",
                             CF_BUNDLE_SIG_FILE, (unsigned)CF_BUNDLE_SIG_TEXT_LEN));
    memcpy(text, sig_text, len);
    text[len] = '\0';
    CF_ENSURE_OUT(cf_b64url_decode(text, len, &sig) == 0 && sig.len == CF_ED25519_SIG_LEN,
                  cf_err_set(CF_E_PARSE, "%s is not valid base64url", CF_BUNDLE_SIG_FILE));
    CF_GUARD_OUT(sig_message(build_hash, msg));
    rc = cf_key_verify(key, CF_SIG_RAW, msg, sizeof(msg), sig.data, sig.len);
    if (rc < 0)
        rc = cf_err_set(CF_E_SIGNATURE, "the developer signature of bundle %s does not verify "
                                        "with the configured developer key", build_hash);
out:
    cf_buf_free(&sig);
    return rc;
}

int cf_bundle_sign_dir(const cf_key *key, const char *dir,
                       char ret_build_hash[CF_BUILD_HASH_STR_LEN + 1])
{
    uint8_t digest[CF_BUNDLE_DIGEST_LEN];
    char bh[CF_BUILD_HASH_STR_LEN + 1], path[4096];
    cf_buf text;
    int rc = 0;

    cf_buf_init(&text, CF_TEE_SIG_MAX_BYTES);
    CF_GUARD_OUT(cf_bundle_digest(dir, digest));
    cf_build_hash_format(digest, bh);
    CF_GUARD_OUT(cf_bundle_sign(key, bh, &text));
    CF_GUARD_OUT(cf_fmt(path, sizeof(path), "%s/%s", dir, CF_BUNDLE_SIG_FILE));
    CF_GUARD_OUT(cf_file_write_atomic(path, text.data, text.len, 0644));
    if (ret_build_hash != NULL)
        memcpy(ret_build_hash, bh, sizeof(bh));
out:
    cf_buf_free(&text);
    return rc;
}

/* ---- loading ---- */

struct cf_bundle {
    cf_bundle_manifest *m;
    char build_hash[CF_BUILD_HASH_STR_LEN + 1];
    int *exe_fds; /* per job, in m->jobs order; -1 if not open */
};

void cf_bundle_free(cf_bundle *b)
{
    if (b == NULL)
        return;
    if (b->exe_fds != NULL && b->m != NULL)
        for (size_t i = 0; i < b->m->n_jobs; i++)
            if (b->exe_fds[i] >= 0)
                close(b->exe_fds[i]);
    free(b->exe_fds);
    cf_bundle_manifest_free(b->m);
    free(b);
}

const cf_bundle_manifest *cf_bundle_get_manifest(const cf_bundle *b) { return b->m; }
const char *cf_bundle_build_hash(const cf_bundle *b) { return b->build_hash; }

int cf_bundle_job_get(const cf_bundle *b, const char *name, const cf_bundle_job **ret_job,
                      int *ret_exe_fd)
{
    const cf_bundle_job *j = cf_bundle_manifest_job(b->m, name);

    if (j == NULL)
        return cf_err_set(CF_E_NOT_FOUND, "deployment '%s' has no job '%.128s'", b->m->name,
                          name);
    if (ret_job != NULL)
        *ret_job = j;
    if (ret_exe_fd != NULL)
        *ret_exe_fd = b->exe_fds[j - b->m->jobs];
    return 0;
}

/* Opens a top-level bundle file without following a symlink and reads at most
 * max bytes of it into out. */
static int read_top_file(int dirfd, const char *name, size_t max, cf_buf *out)
{
    struct stat st;
    uint8_t *p;
    size_t got = 0;
    int rc = 0;
    int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);

    if (fd < 0 && errno == ENOENT)
        return cf_err_set(CF_E_NOT_FOUND, "the bundle has no %s", name);
    if (fd < 0)
        return cf_err_set(CF_E_IO, "cannot open %s in the bundle: %s", name, strerror(errno));
    CF_ENSURE_OUT(fstat(fd, &st) == 0 && S_ISREG(st.st_mode),
                  cf_err_set(CF_E_INVAL, "%s in the bundle is not a regular file", name));
    CF_ENSURE_OUT((uint64_t)st.st_size <= max,
                  cf_err_set(CF_E_TOO_LARGE, "%s is larger than %zu bytes", name, max));
    CF_GUARD_OUT(cf_buf_put_space(out, (size_t)st.st_size, &p));
    while (got < (size_t)st.st_size) {
        ssize_t r = read(fd, p + got, (size_t)st.st_size - got);
        if (r < 0 && errno == EINTR)
            continue;
        CF_ENSURE_OUT(r > 0, cf_err_set(CF_E_IO, "cannot read %s in the bundle", name));
        got += (size_t)r;
    }
out:
    close(fd);
    return rc;
}

/* openat2 RESOLVE_BENEATH: the path (symlinks included) must stay inside dirfd. */
static int open_beneath(int dirfd, const char *path)
{
    struct open_how how;

    memset(&how, 0, sizeof(how));
    how.flags = O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK;
    how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
    return (int)syscall(SYS_openat2, dirfd, path, &how, sizeof(how));
}

int cf_bundle_copy_executable(int dirfd, const char *path, const char *label, int *ret_fd)
{
    static const uint8_t elf_magic[4] = {0x7f, 'E', 'L', 'F'};
    uint8_t chunk[64 * 1024];
    char name[CF_NAME_MAX_LEN + 16];
    struct stat st;
    uint64_t total = 0;
    bool first = true;
    int rc = 0, m = -1;
    int src = dirfd == AT_FDCWD ? open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK)
                                : open_beneath(dirfd, path);

    if (src < 0)
        return cf_err_set(errno == ENOENT ? CF_E_NOT_FOUND : CF_E_INVAL,
                          "cannot open executable '%s': %s", path, strerror(errno));
    CF_ENSURE_OUT(fstat(src, &st) == 0 && S_ISREG(st.st_mode),
                  cf_err_set(CF_E_INVAL, "'%s' is not a regular file", path));
    /* The owner execute bit is what the bundle digest records (measure.c). */
    CF_ENSURE_OUT((st.st_mode & S_IXUSR) != 0,
                  cf_err_set(CF_E_INVAL, "'%s' is not executable (owner execute bit)", path));
    CF_ENSURE_OUT((uint64_t)st.st_size <= CF_TEE_MAX_JOB_BINARY,
                  cf_err_set(CF_E_TOO_LARGE, "'%s' is larger than %u bytes", path,
                             (unsigned)CF_TEE_MAX_JOB_BINARY));
    CF_GUARD_OUT(cf_fmt(name, sizeof(name), "coffer-job:%.128s", label));
    m = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
    CF_ENSURE_OUT(m >= 0, cf_err_set(CF_E_IO, "memfd_create: %s", strerror(errno)));
    for (;;) {
        ssize_t r = read(src, chunk, sizeof(chunk)), w;
        if (r < 0 && errno == EINTR)
            continue;
        CF_ENSURE_OUT(r >= 0, cf_err_set(CF_E_IO, "cannot read '%s': %s", path, strerror(errno)));
        if (r == 0)
            break;
        CF_ENSURE_OUT((uint64_t)r <= CF_TEE_MAX_JOB_BINARY - total,
                      cf_err_set(CF_E_TOO_LARGE, "'%s' is larger than %u bytes", path,
                                 (unsigned)CF_TEE_MAX_JOB_BINARY));
        /* Scripts cannot run: the sandbox executes the sealed copy through its
         * descriptor, which a "#!" interpreter could not open. */
        CF_ENSURE_OUT(!first || ((size_t)r >= sizeof(elf_magic) &&
                                 memcmp(chunk, elf_magic, sizeof(elf_magic)) == 0),
                      cf_err_set(CF_E_INVAL, "'%s' is not an ELF executable", path));
        first = false;
        w = write(m, chunk, (size_t)r);
        CF_ENSURE_OUT(w == r, cf_err_set(CF_E_IO, "cannot copy '%s' into memory", path));
        total += (uint64_t)r;
    }
    CF_ENSURE_OUT(!first, cf_err_set(CF_E_INVAL, "'%s' is empty", path));
    CF_ENSURE_OUT(fcntl(m, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) ==
                      0,
                  cf_err_set(CF_E_IO, "cannot seal the copy of '%s': %s", path, strerror(errno)));
    *ret_fd = m;
    m = -1;
out:
    if (m >= 0)
        close(m);
    close(src);
    return rc;
}

int cf_bundle_load(const char *dir, const cf_key *developer_key, cf_bundle **ret)
{
    uint8_t digest[CF_BUNDLE_DIGEST_LEN], again[CF_BUNDLE_DIGEST_LEN];
    cf_bundle *b = NULL;
    cf_buf manifest, sig;
    int rc = 0, dfd = -1;

    cf_buf_init(&manifest, CF_TEE_MANIFEST_MAX_BYTES);
    cf_buf_init(&sig, CF_TEE_SIG_MAX_BYTES);
    b = calloc(1, sizeof(*b));
    CF_ENSURE_OUT(b != NULL, CF_E_NOMEM);
    dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    CF_ENSURE_OUT(dfd >= 0, cf_err_set(CF_E_IO, "cannot open bundle directory '%s': %s", dir,
                                       strerror(errno)));

    /* 1. Authenticate before parsing: digest, then the developer signature. */
    CF_GUARD_OUT(cf_bundle_digest(dir, digest));
    cf_build_hash_format(digest, b->build_hash);
    rc = read_top_file(dfd, CF_BUNDLE_SIG_FILE, CF_TEE_SIG_MAX_BYTES, &sig);
    if (rc == CF_E_NOT_FOUND)
        rc = cf_err_set(CF_E_SIGNATURE, "bundle %s is not signed (no %s)", b->build_hash,
                        CF_BUNDLE_SIG_FILE);
    if (rc < 0)
        goto out;
    CF_GUARD_OUT(cf_bundle_verify(developer_key, b->build_hash, sig.data, sig.len));

    /* 2. The manifest and the jobs' executables, copied into sealed memory. */
    CF_GUARD_OUT(read_top_file(dfd, CF_BUNDLE_MANIFEST_FILE, CF_TEE_MANIFEST_MAX_BYTES,
                               &manifest));
    CF_GUARD_OUT(cf_bundle_manifest_parse(manifest.data, manifest.len, &b->m));
    b->exe_fds = malloc(b->m->n_jobs * sizeof(*b->exe_fds));
    CF_ENSURE_OUT(b->exe_fds != NULL, CF_E_NOMEM);
    for (size_t i = 0; i < b->m->n_jobs; i++)
        b->exe_fds[i] = -1;
    for (size_t i = 0; i < b->m->n_jobs; i++) {
        const cf_bundle_job *j = &b->m->jobs[i];
        rc = cf_bundle_copy_executable(dfd, j->command, j->name, &b->exe_fds[i]);
        if (rc < 0) {
            rc = cf_err_set(rc, "job '%s': %s", j->name, cf_err_detail(rc));
            goto out;
        }
    }

    /* 3. The same bytes as signed: the directory did not change meanwhile. */
    CF_GUARD_OUT(cf_bundle_digest(dir, again));
    CF_ENSURE_OUT(cf_ct_eq(digest, again, sizeof(digest)),
                  cf_err_set(CF_E_CONFLICT, "bundle '%s' changed while it was loaded", dir));
    *ret = b;
    b = NULL;
out:
    if (dfd >= 0)
        close(dfd);
    cf_buf_free(&manifest);
    cf_buf_free(&sig);
    cf_bundle_free(b);
    return rc;
}
