/*
 * Minimal test harness: one program per module, each test a static function.
 *
 *   static void test_x(void) { T_ASSERT(1 + 1 == 2); T_OK(f()); T_ERR(g(), CF_E_PARSE); }
 *   int main(void) { T_RUN(test_x); return t_done(); }
 *
 * A failed assertion prints file:line and ends the current test function.
 * t_done() prints "N passed, M failed" and returns the exit status.
 */
#ifndef COFFER_TEST_H
#define COFFER_TEST_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int t_passed __attribute__((unused)), t_failed __attribute__((unused)),
    t_cur_failed __attribute__((unused));

#define T_FAIL_(...)                                                                     \
    do {                                                                                 \
        fprintf(stderr, "  FAIL %s:%d: ", __FILE__, __LINE__);                           \
        fprintf(stderr, __VA_ARGS__);                                                    \
        fputc('\n', stderr);                                                             \
        t_cur_failed = 1;                                                                \
        return;                                                                          \
    } while (0)

#define T_ASSERT(cond)                                                                   \
    do {                                                                                 \
        if (!(cond))                                                                     \
            T_FAIL_("%s", #cond);                                                        \
    } while (0)

#define T_ASSERT_MSG(cond, ...)                                                          \
    do {                                                                                 \
        if (!(cond))                                                                     \
            T_FAIL_(__VA_ARGS__);                                                        \
    } while (0)

#define T_EQ(a, b)                                                                       \
    do {                                                                                 \
        long long t_a_ = (long long)(a), t_b_ = (long long)(b);                          \
        if (t_a_ != t_b_)                                                                \
            T_FAIL_("%s == %s (%lld != %lld)", #a, #b, t_a_, t_b_);                      \
    } while (0)

#define T_OK(expr)                                                                       \
    do {                                                                                 \
        int t_rc_ = (expr);                                                              \
        if (t_rc_ != 0)                                                                  \
            T_FAIL_("%s returned %d", #expr, t_rc_);                                     \
    } while (0)

#define T_ERR(expr, code)                                                                \
    do {                                                                                 \
        int t_rc_ = (expr);                                                              \
        if (t_rc_ != (code))                                                             \
            T_FAIL_("%s returned %d, expected %s (%d)", #expr, t_rc_, #code, (int)(code)); \
    } while (0)

/* Any failure (negative return). */
#define T_FAILS(expr)                                                                    \
    do {                                                                                 \
        int t_rc_ = (expr);                                                              \
        if (t_rc_ >= 0)                                                                  \
            T_FAIL_("%s unexpectedly succeeded", #expr);                                 \
    } while (0)

#define T_MEMEQ(a, b, n)                                                                 \
    do {                                                                                 \
        if (memcmp((a), (b), (n)) != 0)                                                  \
            T_FAIL_("%s and %s differ", #a, #b);                                         \
    } while (0)

#define T_STREQ(a, b)                                                                    \
    do {                                                                                 \
        const char *t_sa_ = (a), *t_sb_ = (b);                                           \
        if (t_sa_ == NULL || t_sb_ == NULL || strcmp(t_sa_, t_sb_) != 0)                 \
            T_FAIL_("%s == %s (\"%s\" != \"%s\")", #a, #b, t_sa_ ? t_sa_ : "(null)",     \
                    t_sb_ ? t_sb_ : "(null)");                                           \
    } while (0)

#define T_RUN(fn)                                                                        \
    do {                                                                                 \
        t_cur_failed = 0;                                                                \
        fn();                                                                            \
        if (t_cur_failed) {                                                              \
            t_failed++;                                                                  \
            fprintf(stderr, "not ok - %s\n", #fn);                                       \
        } else {                                                                         \
            t_passed++;                                                                  \
            fprintf(stderr, "ok - %s\n", #fn);                                           \
        }                                                                                \
    } while (0)

static inline int t_done(void)
{
    printf("%d passed, %d failed\n", t_passed, t_failed);
    return t_failed == 0 && t_passed > 0 ? 0 : 1;
}

/* Path of a file under the shared test vectors (COFFER_TESTDATA). Static buffer. */
static inline const char *t_testdata(const char *rel)
{
    static char path[4096];
    const char *root = getenv("COFFER_TESTDATA");
    if (root == NULL || root[0] == '\0')
        root = COFFER_TESTDATA_DEFAULT;
    if ((size_t)snprintf(path, sizeof(path), "%s/%s", root, rel) >= sizeof(path))
        abort();
    return path;
}

/* Reads a whole file (<= 64 MiB) into a malloc'd buffer; aborts on failure. */
static inline unsigned char *t_read_file(const char *path, size_t *ret_len)
{
    FILE *f = fopen(path, "rb");
    unsigned char *d;
    long n;
    if (f == NULL) {
        fprintf(stderr, "cannot open %s\n", path);
        abort();
    }
    if (fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || n > (64L << 20) ||
        fseek(f, 0, SEEK_SET) != 0)
        abort();
    d = malloc((size_t)n + 1);
    if (d == NULL || fread(d, 1, (size_t)n, f) != (size_t)n)
        abort();
    d[n] = 0;
    fclose(f);
    *ret_len = (size_t)n;
    return d;
}

#endif
