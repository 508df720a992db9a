/*
 * Validation and granting rules of the IAM (docs/internals/iam.md
 * "Authorisation"). Pure functions: no store, no clock.
 */
#include <string.h>

#include "base/err.h"
#include "base/limits.h"
#include "iam/iam.h"

bool cf_iam_id_ok(const char *s)
{
    size_t n;

    if (s == NULL)
        return false;
    n = strnlen(s, CF_ID_MAX_LEN + 1);
    if (n == 0 || n > CF_ID_MAX_LEN)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
              c == '_' || c == ':' || c == '-'))
            return false;
    }
    return true;
}

bool cf_iam_name_ok(const char *s)
{
    return cf_iam_text_ok(s, CF_NAME_MAX_LEN);
}

bool cf_iam_text_ok(const char *s, size_t max)
{
    size_t n;
    json_t *j;

    if (s == NULL)
        return false;
    n = strnlen(s, max + 1);
    if (n == 0 || n > max)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return false;
    j = json_stringn(s, n); /* NULL unless valid UTF-8 */
    if (j == NULL)
        return false;
    json_decref(j);
    return true;
}

bool cf_iam_kind_ok(const char *s)
{
    static const char *const kinds[] = {"user", "service", "developer", "client"};

    if (s == NULL)
        return false;
    for (size_t i = 0; i < CF_ARRAY_LEN(kinds); i++)
        if (strcmp(s, kinds[i]) == 0)
            return true;
    return false;
}

static const char *first_role(uint32_t roles)
{
    for (int i = 0; i < CF_ROLE_COUNT; i++)
        if (roles & (1u << i))
            return cf_role_name((cf_role)(1u << i));
    return "unknown";
}

int cf_iam_check_grant(const cf_principal *actor, const char *tenant, uint32_t roles)
{
    bool platform;

    CF_ENSURE(actor != NULL, CF_E_INVAL);
    if (!cf_iam_id_ok(tenant))
        return cf_err_set(CF_E_INVAL, "tenant id must be 1-%d characters of A-Z a-z 0-9 . _ : -",
                          CF_ID_MAX_LEN);
    if (roles == 0)
        return cf_err_set(CF_E_INVAL, "a principal needs at least one role");
    if (roles & ~CF_IAM_ALL_ROLES)
        return cf_err_set(CF_E_INVAL, "unknown role bits");
    CF_GUARD(cf_authz_check(actor, CF_PERM_PRINCIPAL_MANAGE, tenant));
    platform = strcmp(tenant, CF_PLATFORM_TENANT) == 0;
    if (platform) {
        /* Platform principals act on every tenant (cf_authz_check), so only a
         * platform-admin may create them... */
        if (!cf_principal_is_platform(actor) || !(actor->roles & CF_ROLE_PLATFORM_ADMIN))
            return cf_err_set(CF_E_FORBIDDEN, "only a platform-admin may create platform principals");
        /* ...and they never hold tenant roles that would then apply to every
         * tenant (a platform "client" could obtain any tenant's one-time keys). */
        if (roles & ~CF_IAM_PLATFORM_ROLES)
            return cf_err_set(CF_E_FORBIDDEN,
                              "role '%s' is a tenant role: platform principals may hold only "
                              "platform-admin, operator and auditor",
                              first_role(roles & ~CF_IAM_PLATFORM_ROLES));
    } else if (roles & ~CF_IAM_TENANT_ROLES) {
        return cf_err_set(CF_E_FORBIDDEN,
                          "role '%s' is a platform role: only platform principals may hold it, granted "
                          "by a platform-admin",
                          first_role(roles & ~CF_IAM_TENANT_ROLES));
    }
    return 0;
}

int cf_iam_roles_from_json(const json_t *arr, uint32_t *ret)
{
    uint32_t roles = 0;
    size_t i;
    json_t *v;

    if (!json_is_array(arr))
        return cf_err_set(CF_E_PARSE, "field 'roles' must be an array of role names");
    if (json_array_size(arr) > CF_ROLE_COUNT)
        return cf_err_set(CF_E_INVAL, "field 'roles' has more than %d entries", CF_ROLE_COUNT);
    json_array_foreach(arr, i, v) {
        cf_role r;
        const char *name = json_string_value(v);
        if (name == NULL)
            return cf_err_set(CF_E_PARSE, "field 'roles' must be an array of role names");
        if (strnlen(name, 33) > 32 || cf_role_parse(name, &r) != 0)
            return cf_err_set(CF_E_INVAL,
                              "unknown role in 'roles' (known: platform-admin, operator, tenant-admin, "
                              "developer, client, auditor)");
        if (roles & (uint32_t)r)
            return cf_err_set(CF_E_INVAL, "role '%s' appears twice in 'roles'", cf_role_name(r));
        roles |= (uint32_t)r;
    }
    *ret = roles;
    return 0;
}

int cf_iam_roles_to_json(uint32_t roles, json_t **ret)
{
    json_t *a = json_array();

    CF_ENSURE(a != NULL, CF_E_NOMEM);
    for (int i = 0; i < CF_ROLE_COUNT; i++) {
        if (!(roles & (1u << i)))
            continue;
        if (json_array_append_new(a, json_string(cf_role_name((cf_role)(1u << i)))) != 0) {
            json_decref(a);
            return CF_E_NOMEM;
        }
    }
    *ret = a;
    return 0;
}
