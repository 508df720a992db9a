#include <string.h>

#include "base/err.h"
#include "crypto/jose.h"
#include "crypto/keys.h"
#include "proto/authz.h"
#include "test.h"

/*
 * The expected role x permission matrix, written out independently of authz.c.
 * Columns in cf_perm order:
 * tenant.manage principal.manage apikey.manage clientkey.register key.admin datakey.use
 * otk.issue session.create job.submit registry.admin registry.read deployment.manage
 * attestation.read audit.read
 */
static const struct {
    const char *role;
    const char *perms; /* one char per permission: 1 = granted */
} matrix[] = {
    {"platform-admin", "11100000011011"},
    {"operator",       "00000000011010"},
    {"tenant-admin",   "01111000001111"},
    {"developer",      "00000000001110"},
    {"client",         "00010111100010"},
    {"auditor",        "00000000001011"},
};

static void test_role_permission_matrix(void)
{
    T_EQ(CF_ARRAY_LEN(matrix), CF_ROLE_COUNT);
    for (size_t r = 0; r < CF_ARRAY_LEN(matrix); r++) {
        cf_role role;
        T_OK(cf_role_parse(matrix[r].role, &role));
        T_STREQ(cf_role_name(role), matrix[r].role);
        T_EQ(strlen(matrix[r].perms), CF_PERM__COUNT);
        for (int p = 0; p < CF_PERM__COUNT; p++) {
            bool want = matrix[r].perms[p] == '1';
            T_ASSERT_MSG(cf_roles_grant(role, (cf_perm)p) == want, "%s %s %s", matrix[r].role,
                         want ? "should have" : "must not have", cf_perm_name((cf_perm)p));
        }
    }
    /* No role, no permission; unknown permission, never. */
    for (int p = 0; p < CF_PERM__COUNT; p++)
        T_ASSERT(!cf_roles_grant(0, (cf_perm)p));
    T_ASSERT(!cf_roles_grant(0xffffffffu, CF_PERM__COUNT));
    T_STREQ(cf_perm_name(CF_PERM__COUNT), "unknown");
    cf_role r;
    T_ERR(cf_role_parse("root", &r), CF_E_INVAL);
    T_ERR(cf_role_parse("Client", &r), CF_E_INVAL);
}

static cf_principal mkp(const char *tenant, const char *sub, uint32_t roles)
{
    cf_principal p;
    memset(&p, 0, sizeof(p));
    memcpy(p.tenant, tenant, strlen(tenant) + 1);
    memcpy(p.sub, sub, strlen(sub) + 1);
    memcpy(p.kind, "client", 7);
    p.roles = roles;
    return p;
}

static void test_tenant_scope(void)
{
    cf_principal a = mkp("tenant-a", "alice", CF_ROLE_CLIENT);
    cf_principal op = mkp(CF_PLATFORM_TENANT, "ops", CF_ROLE_OPERATOR);
    cf_principal ta = mkp("tenant-a", "admin", CF_ROLE_TENANT_ADMIN);

    T_OK(cf_authz_check(&a, CF_PERM_OTK_ISSUE, "tenant-a"));
    T_ERR(cf_authz_check(&a, CF_PERM_OTK_ISSUE, "tenant-b"), CF_E_FORBIDDEN);
    T_ASSERT(strstr(cf_err_detail(CF_E_FORBIDDEN), "cannot act on tenant 'tenant-b'") != NULL);
    T_ERR(cf_authz_check(&a, CF_PERM_KEY_ADMIN, "tenant-a"), CF_E_FORBIDDEN);
    T_ASSERT(strstr(cf_err_detail(CF_E_FORBIDDEN), "lacks permission key.admin") != NULL);
    /* Platform principals act on every tenant, within their role. */
    T_OK(cf_authz_check(&op, CF_PERM_REGISTRY_ADMIN, "tenant-b"));
    T_ERR(cf_authz_check(&op, CF_PERM_OTK_ISSUE, "tenant-b"), CF_E_FORBIDDEN);
    /* A tenant admin is not platform-level. */
    T_ERR(cf_authz_check(&ta, CF_PERM_KEY_ADMIN, "tenant-b"), CF_E_FORBIDDEN);
    T_OK(cf_authz_check(&ta, CF_PERM_KEY_ADMIN, "tenant-a"));
}

static cf_key *sk, *other;
static cf_jwks *jwks, *wrong_jwks;

static void setup_keys(void)
{
    cf_key *pub = NULL, *opub = NULL;
    T_OK(cf_key_generate(CF_KEY_ED25519, &sk));
    T_OK(cf_key_generate(CF_KEY_ED25519, &other));
    T_OK(cf_key_public_only(sk, &pub));
    T_OK(cf_key_public_only(other, &opub));
    T_OK(cf_jwks_new(&jwks));
    T_OK(cf_jwks_add(jwks, "iam-1", pub));
    T_OK(cf_jwks_new(&wrong_jwks));
    T_OK(cf_jwks_add(wrong_jwks, "iam-1", opub));
    cf_key_free(pub);
    cf_key_free(opub);
}

static void test_token_roundtrip(void)
{
    cf_principal p = mkp("tenant-a", "alice", CF_ROLE_CLIENT | CF_ROLE_DEVELOPER), got;
    char *tok = NULL;
    const int64_t now = 1900000000;

    p.has_client_key = true;
    for (int i = 0; i < 32; i++)
        p.client_key[i] = (uint8_t)(i * 7);
    T_OK(cf_token_mint(sk, "iam-1", &p, now, 300, &tok));
    T_OK(cf_token_verify(tok, strlen(tok), jwks, now + 10, &got));
    T_STREQ(got.tenant, "tenant-a");
    T_STREQ(got.sub, "alice");
    T_STREQ(got.kind, "client");
    T_EQ(got.roles, CF_ROLE_CLIENT | CF_ROLE_DEVELOPER);
    T_ASSERT(got.has_client_key);
    T_MEMEQ(got.client_key, p.client_key, 32);
    T_EQ(got.exp, now + 300);
    T_EQ(strlen(got.jti), 32);

    /* Expiry (30 s leeway), future issue, wrong signer, tampering. */
    T_ERR(cf_token_verify(tok, strlen(tok), jwks, now + 300 + 31, &got), CF_E_EXPIRED);
    T_ERR(cf_token_verify(tok, strlen(tok), jwks, now - 120, &got), CF_E_UNAUTHENTICATED);
    T_ERR(cf_token_verify(tok, strlen(tok), wrong_jwks, now, &got), CF_E_UNAUTHENTICATED);
    tok[strlen(tok) - 3] ^= 1;
    T_ERR(cf_token_verify(tok, strlen(tok), jwks, now, &got), CF_E_UNAUTHENTICATED);
    free(tok);

    /* Unknown kid. */
    T_OK(cf_token_mint(sk, "iam-2", &p, now, 300, &tok));
    T_ERR(cf_token_verify(tok, strlen(tok), jwks, now, &got), CF_E_UNAUTHENTICATED);
    free(tok);
}

static void test_token_claims_strict(void)
{
    const int64_t now = 1900000000;
    cf_principal got;
    char *tok = NULL;
    json_t *c;

    /* Right signer and claims but typ "JWT": explicit typing rejects it. */
    c = json_pack("{s:s,s:s,s:s,s:s,s:s,s:[s],s:I,s:I,s:s}", "iss", CF_TOKEN_ISSUER, "aud",
                  CF_TOKEN_AUDIENCE, "sub", "alice", "tenant", "t", "kind", "user", "roles",
                  "client", "iat", (json_int_t)now, "exp", (json_int_t)now + 60, "jti", "j1");
    T_OK(cf_jwt_sign(sk, c, NULL, "iam-1", &tok));
    T_ERR(cf_token_verify(tok, strlen(tok), jwks, now, &got), CF_E_UNAUTHENTICATED);
    free(tok);
    /* Correct typ: accepted. */
    T_OK(cf_jwt_sign(sk, c, CF_TOKEN_TYP, "iam-1", &tok));
    T_OK(cf_token_verify(tok, strlen(tok), jwks, now, &got));
    free(tok);
    /* An unknown role, a wrong audience, a missing tenant, a bad id, a short cnf key. */
    json_object_set_new(c, "roles", json_pack("[s]", "superuser"));
    T_OK(cf_jwt_sign(sk, c, CF_TOKEN_TYP, "iam-1", &tok));
    T_ERR(cf_token_verify(tok, strlen(tok), jwks, now, &got), CF_E_UNAUTHENTICATED);
    T_ASSERT(strstr(cf_err_detail(CF_E_UNAUTHENTICATED), "unknown role") != NULL);
    free(tok);
    json_object_set_new(c, "roles", json_pack("[s]", "client"));
    json_object_set_new(c, "aud", json_string("someone-else"));
    T_OK(cf_jwt_sign(sk, c, CF_TOKEN_TYP, "iam-1", &tok));
    T_ERR(cf_token_verify(tok, strlen(tok), jwks, now, &got), CF_E_UNAUTHENTICATED);
    free(tok);
    json_object_set_new(c, "aud", json_string(CF_TOKEN_AUDIENCE));
    json_object_del(c, "tenant");
    T_OK(cf_jwt_sign(sk, c, CF_TOKEN_TYP, "iam-1", &tok));
    T_ERR(cf_token_verify(tok, strlen(tok), jwks, now, &got), CF_E_UNAUTHENTICATED);
    free(tok);
    json_object_set_new(c, "tenant", json_string("a/../b"));
    T_OK(cf_jwt_sign(sk, c, CF_TOKEN_TYP, "iam-1", &tok));
    T_ERR(cf_token_verify(tok, strlen(tok), jwks, now, &got), CF_E_UNAUTHENTICATED);
    free(tok);
    json_object_set_new(c, "tenant", json_string("t"));
    json_object_set_new(c, "cnf", json_pack("{s:s}", "x25519", "AAAA"));
    T_OK(cf_jwt_sign(sk, c, CF_TOKEN_TYP, "iam-1", &tok));
    T_ERR(cf_token_verify(tok, strlen(tok), jwks, now, &got), CF_E_UNAUTHENTICATED);
    free(tok);
    json_decref(c);
}

static void test_bearer(void)
{
    const char *t;
    size_t n;

    T_OK(cf_bearer_token("Bearer abc.def.ghi", &t, &n));
    T_EQ(n, 11);
    T_ERR(cf_bearer_token(NULL, &t, &n), CF_E_UNAUTHENTICATED);
    T_ERR(cf_bearer_token("Basic abc", &t, &n), CF_E_UNAUTHENTICATED);
    T_ERR(cf_bearer_token("Bearer ", &t, &n), CF_E_UNAUTHENTICATED);
    T_ERR(cf_bearer_token("bearer abc", &t, &n), CF_E_UNAUTHENTICATED);
}

int main(void)
{
    T_RUN(test_role_permission_matrix);
    T_RUN(test_tenant_scope);
    T_RUN(setup_keys);
    T_RUN(test_token_roundtrip);
    T_RUN(test_token_claims_strict);
    T_RUN(test_bearer);
    cf_key_free(sk);
    cf_key_free(other);
    cf_jwks_free(jwks);
    cf_jwks_free(wrong_jwks);
    return t_done();
}
