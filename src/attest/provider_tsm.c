/*
 * configfs-tsm provider (Linux Documentation/ABI/testing/configfs-tsm-report):
 *   mkdir  $root/$name                  a private report entry per request
 *   cat    $name/provider               must be "sev_guest"
 *   read   $name/generation  (g0)
 *   write  $name/inblob                 the 64 bytes of report_data
 *   read   $name/outblob                the report (for SEV-SNP: the 1184-byte
 *                                       ATTESTATION_REPORT, no MSG_REPORT_RSP header)
 *   read   $name/auxblob                the SNP certificate table, if the host gives one
 *   read   $name/generation  (g1)       must be g0 + 1 (our one write), else a
 *                                       concurrent writer interfered: retry
 *   rmdir  $root/$name
 * The ABI says userspace detects conflicts by checking that the number of
 * writes matches generation; a per-request entry makes conflicts unlikely, the
 * check makes them harmless.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "attest/provider.h"
#include "attest/provider_impl.h"
#include "base/err.h"
#include "base/limits.h"
#include "base/log.h"
#include "base/parse.h"
#include "crypto/hash.h"

#define TSM_PROVIDER_SNP "sev_guest"

int cf_provider_open_tsm(const char *root, cf_provider **ret)
{
    struct stat st;
    cf_provider *p = NULL;
    char *copy;

    CF_ENSURE(ret != NULL, CF_E_INVAL);
    if (root == NULL)
        root = CF_TSM_REPORT_ROOT;
    if (stat(root, &st) != 0 || !S_ISDIR(st.st_mode))
        return cf_err_set(CF_E_UNAVAILABLE, "configfs-tsm report directory %s does not exist",
                          root);
    copy = cf_strndup_max(root, PATH_MAX);
    if (copy == NULL)
        return CF_E_NOMEM;
    if (cf_provider__new(CF_PROVIDER_TSM, -1, &p) < 0) {
        free(copy);
        return CF_E_NOMEM;
    }
    p->tsm_root = copy;
    *ret = p;
    return 0;
}

/* Reads a whole attribute (at most max bytes) into out. *ret_present (if
 * non-NULL) makes a missing attribute acceptable. */
static int read_attr(int efd, const char *entry, const char *name, size_t max, cf_buf *out,
                     bool *ret_present)
{
    uint8_t chunk[4096];
    int rc = 0;
    int fd = openat(efd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);

    if (fd < 0 && errno == ENOENT && ret_present != NULL) {
        *ret_present = false;
        return 0;
    }
    if (fd < 0)
        return cf_err_set(CF_E_UNAVAILABLE, "cannot open %s/%s: %s", entry, name,
                          strerror(errno));
    for (;;) {
        ssize_t n = read(fd, chunk, sizeof(chunk));
        if (n < 0 && errno == EINTR)
            continue;
        /* The kernel generates the report when outblob is read: its errors
         * (no firmware, busy host) surface here. */
        CF_ENSURE_OUT(n >= 0, cf_err_set(CF_E_UNAVAILABLE, "reading %s/%s failed: %s", entry,
                                         name, strerror(errno)));
        if (n == 0)
            break;
        CF_ENSURE_OUT((size_t)n <= max - out->len,
                      cf_err_set(CF_E_TOO_LARGE, "%s/%s exceeds %zu bytes", entry, name, max));
        CF_GUARD_OUT(cf_buf_put(out, chunk, (size_t)n));
    }
    if (ret_present != NULL)
        *ret_present = true;
out:
    close(fd);
    return rc;
}

/* A small text attribute without its single trailing newline, NUL-terminated. */
static int read_text_attr(int efd, const char *entry, const char *name, cf_buf *out)
{
    CF_GUARD(read_attr(efd, entry, name, CF_TSM_MAX_ATTR, out, NULL));
    if (out->len > 0 && out->data[out->len - 1] == '\n')
        out->len--;
    if (memchr(out->data, '\0', out->len) != NULL)
        return cf_err_set(CF_E_PARSE, "%s/%s contains a NUL byte", entry, name);
    return cf_buf_nul_terminate(out);
}

static int read_generation(int efd, const char *entry, uint64_t *ret)
{
    cf_buf b;
    int rc;

    cf_buf_init(&b, CF_TSM_MAX_ATTR);
    rc = read_text_attr(efd, entry, "generation", &b);
    if (rc == 0 && cf_parse_u64((const char *)b.data, UINT64_MAX, ret) < 0)
        rc = cf_err_set(CF_E_PARSE, "%s/generation is not a decimal number", entry);
    cf_buf_free(&b);
    return rc;
}

static int write_inblob(int efd, const char *entry, const uint8_t report_data[64])
{
    ssize_t n;
    int fd = openat(efd, "inblob", O_WRONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);

    if (fd < 0)
        return cf_err_set(CF_E_UNAVAILABLE, "cannot open %s/inblob: %s", entry,
                          strerror(errno));
    /* One write of all 64 bytes: configfs takes a binary attribute in one go. */
    do {
        n = write(fd, report_data, 64);
    } while (n < 0 && errno == EINTR);
    close(fd);
    if (n != 64)
        return cf_err_set(CF_E_UNAVAILABLE, "writing %s/inblob failed: %s", entry,
                          n < 0 ? strerror(errno) : "short write");
    return 0;
}

static int call_hook(cf_provider *p, cf_tsm_hook_point point, const char *entry)
{
    if (p->hook == NULL)
        return 0;
    return p->hook(point, entry, p->hook_arg);
}

int cf_provider__tsm_get(cf_provider *p, const uint8_t report_data[64],
                         cf_provider_evidence *ret)
{
    char name[64], entry[PATH_MAX], hex[17];
    uint8_t rnd[8];
    cf_buf prov, out, aux;
    bool created = false, consistent = false, have_aux = false;
    int rootfd = -1, efd = -1;
    int rc = 0;

    cf_buf_init(&prov, CF_TSM_MAX_ATTR);
    cf_buf_init(&out, CF_TSM_MAX_OUTBLOB);
    cf_buf_init(&aux, CF_TSM_MAX_AUXBLOB);
    rootfd = open(p->tsm_root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    CF_ENSURE_OUT(rootfd >= 0, cf_err_set(CF_E_UNAVAILABLE, "cannot open %s: %s", p->tsm_root,
                                          strerror(errno)));
    CF_GUARD_OUT(cf_random(rnd, sizeof(rnd)));
    cf_hex_encode(rnd, sizeof(rnd), hex);
    CF_GUARD_OUT(cf_fmt(name, sizeof(name), "coffer-%ld-%s", (long)getpid(), hex));
    CF_GUARD_OUT(cf_fmt(entry, sizeof(entry), "%s/%s", p->tsm_root, name));
    CF_ENSURE_OUT(mkdirat(rootfd, name, 0700) == 0,
                  cf_err_set(CF_E_UNAVAILABLE, "cannot create configfs-tsm report entry %s: %s",
                             entry, strerror(errno)));
    created = true;
    efd = openat(rootfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
    CF_ENSURE_OUT(efd >= 0, cf_err_set(CF_E_UNAVAILABLE, "cannot open %s", entry));
    CF_GUARD_OUT(call_hook(p, CF_TSM_HOOK_CREATED, entry));

    CF_GUARD_OUT(read_text_attr(efd, entry, "provider", &prov));
    CF_ENSURE_OUT(strcmp((const char *)prov.data, TSM_PROVIDER_SNP) == 0,
                  cf_err_set(CF_E_UNSUPPORTED, "configfs-tsm provider is '%s'; only %s "
                                               "(AMD SEV-SNP) is supported",
                             (const char *)prov.data, TSM_PROVIDER_SNP));

    for (int attempt = 0; attempt < CF_TSM_MAX_ATTEMPTS && !consistent; attempt++) {
        uint64_t g0, g1;

        cf_buf_reset(&out);
        cf_buf_reset(&aux);
        CF_GUARD_OUT(read_generation(efd, entry, &g0));
        CF_GUARD_OUT(write_inblob(efd, entry, report_data));
        CF_GUARD_OUT(call_hook(p, CF_TSM_HOOK_INBLOB_WRITTEN, entry));
        CF_GUARD_OUT(read_attr(efd, entry, "outblob", CF_TSM_MAX_OUTBLOB, &out, NULL));
        CF_GUARD_OUT(read_attr(efd, entry, "auxblob", CF_TSM_MAX_AUXBLOB, &aux, &have_aux));
        CF_GUARD_OUT(call_hook(p, CF_TSM_HOOK_BLOBS_READ, entry));
        CF_GUARD_OUT(read_generation(efd, entry, &g1));
        consistent = g0 != UINT64_MAX && g1 == g0 + 1;
    }
    CF_ENSURE_OUT(consistent, cf_err_set(CF_E_CONFLICT, "configfs-tsm entry %s was written by "
                                                        "someone else during %d attempts",
                                         entry, CF_TSM_MAX_ATTEMPTS));
    CF_GUARD_OUT(cf_provider__finish(report_data, out.data, out.len,
                                     have_aux ? aux.data : NULL, have_aux ? aux.len : 0, ret));
out:
    if (efd >= 0)
        close(efd);
    if (created) {
        int hrc = call_hook(p, CF_TSM_HOOK_REMOVING, entry);
        /* Every entry holds kernel memory: never leave one behind silently. */
        if (unlinkat(rootfd, name, AT_REMOVEDIR) != 0 || hrc < 0)
            cf_log(CF_LOG_WARN, "tsm.entry_not_removed", "entry", entry, NULL);
    }
    if (rootfd >= 0)
        close(rootfd);
    cf_buf_free(&prov);
    cf_buf_free(&out);
    cf_buf_free(&aux);
    return rc;
}
