#include "base/file.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/err.h"
#include "base/parse.h"

int cf_file_read(const char *path, size_t max, cf_buf *out)
{
    struct stat st;
    size_t before = out->len, got = 0;
    uint8_t *dst;
    int fd, rc;

    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return cf_err_set(errno == ENOENT ? CF_E_NOT_FOUND : CF_E_IO, "cannot open %s: %s", path,
                          strerror(errno));
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return cf_err_set(CF_E_IO, "%s is not a regular file", path);
    }
    if ((uint64_t)st.st_size > max) {
        close(fd);
        return cf_err_set(CF_E_TOO_LARGE, "%s is larger than %zu bytes", path, max);
    }
    rc = cf_buf_put_space(out, (size_t)st.st_size, &dst);
    if (rc < 0) {
        close(fd);
        return rc;
    }
    while (got < (size_t)st.st_size) {
        ssize_t r = read(fd, dst + got, (size_t)st.st_size - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            close(fd);
            out->len = before;
            return cf_err_set(CF_E_IO, "cannot read %s", path);
        }
        got += (size_t)r;
    }
    close(fd);
    return 0;
}

int cf_file_write_atomic(const char *path, const void *data, size_t len, mode_t mode)
{
    char tmp[4096], dir[4096];
    const uint8_t *p = data;
    size_t left = len;
    int fd, dfd;

    CF_GUARD(cf_fmt(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid()));
    CF_GUARD(cf_fmt(dir, sizeof(dir), "%s", path));
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode);
    if (fd < 0)
        return cf_err_set(CF_E_IO, "cannot create %s: %s", tmp, strerror(errno));
    while (left > 0) {
        ssize_t w = write(fd, p, left);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            close(fd);
            unlink(tmp);
            return cf_err_set(CF_E_IO, "cannot write %s", tmp);
        }
        p += w;
        left -= (size_t)w;
    }
    if (fchmod(fd, mode) != 0 || fsync(fd) != 0 || close(fd) != 0) {
        unlink(tmp);
        return cf_err_set(CF_E_IO, "cannot sync %s", tmp);
    }
    if (rename(tmp, path) != 0) {
        unlink(tmp);
        return cf_err_set(CF_E_IO, "cannot rename %s to %s: %s", tmp, path, strerror(errno));
    }
    dfd = open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        (void)fsync(dfd);
        close(dfd);
    }
    return 0;
}

int cf_mkdirs(const char *path, mode_t mode)
{
    char buf[4096];
    size_t n;

    CF_GUARD(cf_fmt(buf, sizeof(buf), "%s", path));
    n = strlen(buf);
    for (size_t i = 1; i <= n; i++) {
        if (buf[i] == '/' || buf[i] == '\0') {
            char c = buf[i];
            buf[i] = '\0';
            if (mkdir(buf, mode) != 0 && errno != EEXIST)
                return cf_err_set(CF_E_IO, "cannot create directory %s: %s", buf, strerror(errno));
            buf[i] = c;
        }
    }
    return 0;
}
