/* Fuzz the spool recovery scanner: any file content must be scanned safely. */
#include <stddef.h>
#include <stdint.h>

#include "spool/spool.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t valid = 0, records = 0;

    if (cf_spool_scan(data, size, &valid, &records) == 0 && valid > size)
        __builtin_trap();
    return 0;
}
