/*
 * Fuzz target: the JSON config file parser (cf_config_load_json) against a
 * schema with every option type, nested and dotted keys. No secret option:
 * "@file" values would make the target read files named by the input.
 */
#include <stddef.h>
#include <stdint.h>

#include "base/compiler.h"
#include "base/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const cf_config_opt schema[] = {
    {"svc.listen", CF_CFG_STRING, "127.0.0.1", "address", 0, 0, 0},
    {"svc.port", CF_CFG_INT, "8443", "port", 0, 0, 65535},
    {"svc.tls", CF_CFG_BOOL, "true", "tls", 0, 0, 0},
    {"svc.interval", CF_CFG_DURATION, "60s", "interval", 0, 0, 86400},
    {"svc.store.path", CF_CFG_PATH, NULL, "store", CF_CFG_REQUIRED, 0, 0},
    {"level", CF_CFG_INT, NULL, "level", 0, -5, 5},
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cf_config *c = NULL;
    const char *s = NULL;
    int64_t i = 0;

    if (cf_config_new(schema, CF_ARRAY_LEN(schema), &c) != 0)
        return 0;
    if (cf_config_load_json(c, data, size, "fuzz") == 0) {
        /* Whatever was accepted must be readable with its declared type. */
        if (cf_config_get_str(c, "svc.store.path", &s) == 0 && s[0] == '\0')
            __builtin_trap();
        if (cf_config_get_int(c, "svc.port", &i) != 0 || i < 0 || i > 65535)
            __builtin_trap();
        /* The check passes exactly when the required key is set. */
        if ((cf_config_check(c) == 0) != (cf_config_get_str(c, "svc.store.path", &s) == 0))
            __builtin_trap();
    }
    cf_config_free(c);
    return 0;
}
