#include "proto/authz.h"

#include <string.h>
#include <time.h>

#include "base/err.h"
#include "base/json.h"
#include "base/parse.h"
#include "crypto/hash.h"

static const char *const role_names[CF_ROLE_COUNT] = {
    "platform-admin", "operator", "tenant-admin", "developer", "client", "auditor",
};

static const char *const perm_names[CF_PERM__COUNT] = {
    [CF_PERM_TENANT_MANAGE] = "tenant.manage",
    [CF_PERM_PRINCIPAL_MANAGE] = "principal.manage",
    [CF_PERM_APIKEY_MANAGE] = "apikey.manage",
    [CF_PERM_CLIENTKEY_REGISTER] = "clientkey.register",
    [CF_PERM_KEY_ADMIN] = "key.admin",
    [CF_PERM_DATAKEY_USE] = "datakey.use",
    [CF_PERM_OTK_ISSUE] = "otk.issue",
    [CF_PERM_SESSION_CREATE] = "session.create",
    [CF_PERM_JOB_SUBMIT] = "job.submit",
    [CF_PERM_REGISTRY_ADMIN] = "registry.admin",
    [CF_PERM_REGISTRY_READ] = "registry.read",
    [CF_PERM_DEPLOYMENT_MANAGE] = "deployment.manage",
    [CF_PERM_ATTESTATION_READ] = "attestation.read",
    [CF_PERM_AUDIT_READ] = "audit.read",
};

#define P(x) (1u << (x))

/*
 * THE role -> permission table (docs/API.md reproduces it; tests/proto/test_authz.c
 * checks every cell against an independent copy). Least privilege: no role that
 * administers the platform can obtain one-time keys or submit jobs, and the
 * client role can use keys but never administer them.
 */
static const uint32_t role_perms[CF_ROLE_COUNT] = {
    /* platform-admin */
    P(CF_PERM_TENANT_MANAGE) | P(CF_PERM_PRINCIPAL_MANAGE) | P(CF_PERM_APIKEY_MANAGE) |
        P(CF_PERM_REGISTRY_ADMIN) | P(CF_PERM_REGISTRY_READ) | P(CF_PERM_ATTESTATION_READ) |
        P(CF_PERM_AUDIT_READ),
    /* operator */
    P(CF_PERM_REGISTRY_ADMIN) | P(CF_PERM_REGISTRY_READ) | P(CF_PERM_ATTESTATION_READ),
    /* tenant-admin */
    P(CF_PERM_PRINCIPAL_MANAGE) | P(CF_PERM_APIKEY_MANAGE) | P(CF_PERM_CLIENTKEY_REGISTER) |
        P(CF_PERM_KEY_ADMIN) | P(CF_PERM_REGISTRY_READ) | P(CF_PERM_DEPLOYMENT_MANAGE) |
        P(CF_PERM_ATTESTATION_READ) | P(CF_PERM_AUDIT_READ),
    /* developer */
    P(CF_PERM_DEPLOYMENT_MANAGE) | P(CF_PERM_REGISTRY_READ) | P(CF_PERM_ATTESTATION_READ),
    /* client */
    P(CF_PERM_CLIENTKEY_REGISTER) | P(CF_PERM_DATAKEY_USE) | P(CF_PERM_OTK_ISSUE) |
        P(CF_PERM_SESSION_CREATE) | P(CF_PERM_JOB_SUBMIT) | P(CF_PERM_ATTESTATION_READ),
    /* auditor */
    P(CF_PERM_AUDIT_READ) | P(CF_PERM_ATTESTATION_READ) | P(CF_PERM_REGISTRY_READ),
};

int cf_role_parse(const char *name, cf_role *ret)
{
    for (int i = 0; i < CF_ROLE_COUNT; i++) {
        if (strcmp(name, role_names[i]) == 0) {
            *ret = (cf_role)(1u << i);
            return 0;
        }
    }
    return cf_err_set(CF_E_INVAL, "unknown role '%.32s'", name);
}

const char *cf_role_name(cf_role r)
{
    for (int i = 0; i < CF_ROLE_COUNT; i++)
        if ((uint32_t)r == 1u << i)
            return role_names[i];
    return "unknown";
}

const char *cf_perm_name(cf_perm p)
{
    return (unsigned)p < CF_PERM__COUNT ? perm_names[p] : "unknown";
}

bool cf_roles_grant(uint32_t roles, cf_perm p)
{
    if ((unsigned)p >= CF_PERM__COUNT)
        return false;
    for (int i = 0; i < CF_ROLE_COUNT; i++)
        if ((roles & (1u << i)) && (role_perms[i] & P(p)))
            return true;
    return false;
}

bool cf_principal_is_platform(const cf_principal *p)
{
    return strcmp(p->tenant, CF_PLATFORM_TENANT) == 0;
}

int cf_authz_check(const cf_principal *p, cf_perm perm, const char *tenant)
{
    if (!cf_roles_grant(p->roles, perm))
        return cf_err_set(CF_E_FORBIDDEN, "principal '%s' lacks permission %s", p->sub,
                          cf_perm_name(perm));
    if (tenant != NULL && !cf_principal_is_platform(p) && strcmp(p->tenant, tenant) != 0)
        return cf_err_set(CF_E_FORBIDDEN, "principal of tenant '%s' cannot act on tenant '%s'",
                          p->tenant, tenant);
    return 0;
}

/* ids: printable ASCII without spaces, quotes or slashes (they appear in paths and logs). */
static bool id_ok(const char *s, size_t max)
{
    size_t n = strnlen(s, max + 1);

    if (n == 0 || n > max)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '/')
            return false;
    }
    return true;
}

int cf_token_mint(const cf_key *signing_key, const char *kid, const cf_principal *p, int64_t now,
                  uint32_t ttl, char **ret)
{
    json_t *claims = NULL, *roles = NULL;
    char jti[33];
    int rc;

    CF_ENSURE(id_ok(p->tenant, CF_ID_MAX_LEN) && id_ok(p->sub, CF_ID_MAX_LEN), CF_E_INVAL);
    CF_ENSURE(ttl > 0 && ttl <= 24 * 3600, CF_E_INVAL);
    if (p->jti[0] != '\0') {
        CF_ENSURE(id_ok(p->jti, sizeof(p->jti) - 1), CF_E_INVAL);
        memcpy(jti, p->jti, CF_MIN(sizeof(jti), strlen(p->jti) + 1));
        jti[sizeof(jti) - 1] = 0;
    } else {
        uint8_t raw[16];
        CF_GUARD(cf_random(raw, sizeof(raw)));
        cf_hex_encode(raw, sizeof(raw), jti);
    }
    roles = json_array();
    CF_ENSURE_OUT(roles != NULL, CF_E_NOMEM);
    for (int i = 0; i < CF_ROLE_COUNT; i++)
        if (p->roles & (1u << i))
            CF_ENSURE_OUT(json_array_append_new(roles, json_string(role_names[i])) == 0, CF_E_NOMEM);
    claims = json_pack("{s:s,s:s,s:s,s:s,s:s,s:O,s:I,s:I,s:s}", "iss", CF_TOKEN_ISSUER, "aud",
                       CF_TOKEN_AUDIENCE, "sub", p->sub, "tenant", p->tenant, "kind",
                       p->kind[0] ? p->kind : "user", "roles", roles, "iat", (json_int_t)now, "exp",
                       (json_int_t)(now + ttl), "jti", jti);
    CF_ENSURE_OUT(claims != NULL, CF_E_NOMEM);
    if (p->has_client_key) {
        char b64[64];
        cf_b64url_encode(p->client_key, sizeof(p->client_key), b64);
        CF_ENSURE_OUT(json_object_set_new(claims, "cnf", json_pack("{s:s}", "x25519", b64)) == 0,
                      CF_E_NOMEM);
    }
    rc = cf_jwt_sign(signing_key, claims, CF_TOKEN_TYP, kid, ret);
out:
    json_decref(claims);
    json_decref(roles);
    return rc;
}

static int copy_id(const json_t *claims, const char *key, char *out, size_t size)
{
    const char *s = NULL;

    CF_GUARD(cf_json_get_str(claims, key, true, size - 1, &s));
    if (!id_ok(s, size - 1))
        return cf_err_set(CF_E_UNAUTHENTICATED, "access token claim '%s' is malformed", key);
    memcpy(out, s, strlen(s) + 1);
    return 0;
}

static int parse_claims(const json_t *claims, cf_principal *p)
{
    json_t *roles = NULL, *cnf = NULL, *r;
    const char *kind = NULL;
    size_t i;
    uint64_t iat = 0, exp = 0;

    CF_GUARD(copy_id(claims, "tenant", p->tenant, sizeof(p->tenant)));
    CF_GUARD(copy_id(claims, "sub", p->sub, sizeof(p->sub)));
    CF_GUARD(copy_id(claims, "jti", p->jti, sizeof(p->jti)));
    CF_GUARD(cf_json_get_str(claims, "kind", true, sizeof(p->kind) - 1, &kind));
    memcpy(p->kind, kind, strlen(kind) + 1);
    CF_GUARD(cf_json_get_u64(claims, "iat", true, INT64_MAX, &iat));
    CF_GUARD(cf_json_get_u64(claims, "exp", true, INT64_MAX, &exp));
    p->iat = (int64_t)iat;
    p->exp = (int64_t)exp;
    CF_GUARD(cf_json_get_array(claims, "roles", true, CF_ROLE_COUNT, &roles));
    p->roles = 0;
    json_array_foreach(roles, i, r) {
        cf_role role;
        if (!json_is_string(r) || cf_role_parse(json_string_value(r), &role) != 0)
            return cf_err_set(CF_E_UNAUTHENTICATED, "access token names an unknown role");
        p->roles |= (uint32_t)role;
    }
    CF_GUARD(cf_json_get_obj(claims, "cnf", false, &cnf));
    p->has_client_key = false;
    if (cnf != NULL) {
        cf_buf b;
        int rc;
        cf_buf_init(&b, 32);
        rc = cf_json_get_b64url(cnf, "x25519", true, 32, &b);
        if (rc == 0 && b.len != 32)
            rc = cf_err_set(CF_E_UNAUTHENTICATED, "access token cnf.x25519 is not 32 bytes");
        if (rc == 0) {
            memcpy(p->client_key, b.data, 32);
            p->has_client_key = true;
        }
        cf_buf_free(&b);
        CF_GUARD(rc);
    }
    return 0;
}

int cf_token_verify(const char *token, size_t len, const cf_jwks *jwks, int64_t now, cf_principal *ret)
{
    cf_jwt_verify_opts o = {
        .typ = CF_TOKEN_TYP, .now = now, .leeway = 30, .iss = CF_TOKEN_ISSUER, .aud = CF_TOKEN_AUDIENCE};
    json_t *claims = NULL;
    cf_principal p;
    int rc;

    memset(&p, 0, sizeof(p));
    rc = cf_jwt_verify(token, len, NULL, jwks, &o, &claims);
    if (rc < 0) {
        /* Keep the verifier's precise reason (expired, unknown kid, bad signature, ...). */
        const char *why = cf_err_detail(rc);
        return cf_err_set(rc == CF_E_EXPIRED ? CF_E_EXPIRED : CF_E_UNAUTHENTICATED,
                          "access token rejected: %s", why);
    }
    rc = parse_claims(claims, &p);
    json_decref(claims);
    if (rc < 0)
        return cf_err_set(CF_E_UNAUTHENTICATED, "access token rejected: %s", cf_err_detail(rc));
    *ret = p;
    return 0;
}

int cf_bearer_token(const char *v, const char **ret_token, size_t *ret_len)
{
    size_t n;

    if (v == NULL)
        return cf_err_set(CF_E_UNAUTHENTICATED, "missing Authorization header");
    if (strncmp(v, "Bearer ", 7) != 0)
        return cf_err_set(CF_E_UNAUTHENTICATED, "Authorization header is not a Bearer token");
    v += 7;
    n = strnlen(v, CF_JWT_MAX_BYTES + 1);
    if (n == 0 || n > CF_JWT_MAX_BYTES)
        return cf_err_set(CF_E_UNAUTHENTICATED, "bearer token is empty or too long");
    *ret_token = v;
    *ret_len = n;
    return 0;
}
