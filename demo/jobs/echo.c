/*
 * Demo job "echo": copies its input to its output unchanged, streaming (the
 * input is never held whole in memory).
 */
#include "job_io.h"

int main(void)
{
    unsigned char buf[64 * 1024];

    for (;;) {
        ssize_t r = read(0, buf, sizeof(buf));
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            job_fail("cannot read input");
        if (r == 0)
            return 0;
        if (job_write_all(1, buf, (size_t)r) != 0)
            job_fail("cannot write output");
    }
}
