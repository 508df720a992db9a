/*
 * Demo job "wordcount": writes "LINES WORDS BYTES\n" for its input, like
 * `wc` in the C locale: LINES counts newline bytes, WORDS counts maximal runs
 * of bytes other than space, \t, \n, \v, \f and \r, BYTES counts every byte.
 * Streaming: the input is never held whole.
 */
#include "job_io.h"

static int is_space(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

int main(void)
{
    unsigned char buf[64 * 1024];
    unsigned long long lines = 0, words = 0, bytes = 0;
    int in_word = 0;
    char num[21];

    for (;;) {
        ssize_t r = read(0, buf, sizeof(buf));
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            job_fail("cannot read input");
        if (r == 0)
            break;
        bytes += (unsigned long long)r;
        for (ssize_t i = 0; i < r; i++) {
            if (buf[i] == '\n')
                lines++;
            if (is_space(buf[i])) {
                in_word = 0;
            } else if (!in_word) {
                in_word = 1;
                words++;
            }
        }
    }
    job_u64_text(lines, num);
    if (job_puts(1, num) != 0 || job_puts(1, " ") != 0)
        job_fail("cannot write output");
    job_u64_text(words, num);
    if (job_puts(1, num) != 0 || job_puts(1, " ") != 0)
        job_fail("cannot write output");
    job_u64_text(bytes, num);
    if (job_puts(1, num) != 0 || job_puts(1, "\n") != 0)
        job_fail("cannot write output");
    return 0;
}
