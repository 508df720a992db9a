/*
 * Roles, permissions and access tokens: the one table every service uses to
 * authorise a request (DESIGN.md §2 rule 2, §6; docs/API.md "Authorisation").
 *
 * Access tokens are JWTs signed by IAM (typ "at+jwt", RFC 9068 style) and
 * verified LOCALLY by each service against IAM's JWKS — no call to IAM on the
 * hot path. Claims:
 *   iss "coffer-iam", aud "coffer", sub (principal id), tenant, kind, roles[],
 *   iat, exp, jti, and optionally cnf.x25519 (base64url of the client's
 *   registered X25519 public key: the KMS seals OTKs to it).
 * A principal of the tenant CF_PLATFORM_TENANT is platform-level: its
 * permissions apply to every tenant. Any other principal acts only on its own
 * tenant.
 */
#ifndef COFFER_PROTO_AUTHZ_H
#define COFFER_PROTO_AUTHZ_H

#include <stdbool.h>
#include <stdint.h>

#include "base/compiler.h"
#include "base/limits.h"
#include "crypto/jose.h"

#define CF_PLATFORM_TENANT "platform"
#define CF_TOKEN_ISSUER "coffer-iam"
#define CF_TOKEN_AUDIENCE "coffer"
#define CF_TOKEN_TYP "at+jwt"

typedef enum {
    CF_ROLE_PLATFORM_ADMIN = 1u << 0,
    CF_ROLE_OPERATOR = 1u << 1,
    CF_ROLE_TENANT_ADMIN = 1u << 2,
    CF_ROLE_DEVELOPER = 1u << 3,
    CF_ROLE_CLIENT = 1u << 4,
    CF_ROLE_AUDITOR = 1u << 5,
} cf_role;
#define CF_ROLE_COUNT 6

typedef enum {
    CF_PERM_TENANT_MANAGE = 0,  /* create/list/disable tenants */
    CF_PERM_PRINCIPAL_MANAGE,   /* principals and their roles */
    CF_PERM_APIKEY_MANAGE,      /* create/revoke API keys of principals */
    CF_PERM_CLIENTKEY_REGISTER, /* register a client X25519 public key */
    CF_PERM_KEY_ADMIN,          /* tenant keys: create, rotate, policy, revoke, rewrap, destroy */
    CF_PERM_DATAKEY_USE,        /* data keys, encrypt/decrypt small values */
    CF_PERM_OTK_ISSUE,          /* POST /v1/kms/otk */
    CF_PERM_SESSION_CREATE,     /* POST /v1/sessions */
    CF_PERM_JOB_SUBMIT,         /* POST /v1/jobs/{job} */
    CF_PERM_REGISTRY_ADMIN,     /* join tokens, quarantine, revoke TEEs */
    CF_PERM_REGISTRY_READ,      /* list/get TEEs */
    CF_PERM_DEPLOYMENT_MANAGE,  /* create/list deployments */
    CF_PERM_ATTESTATION_READ,   /* attestation history, reports */
    CF_PERM_AUDIT_READ,         /* audit entries (scoped by tenant) */
    CF_PERM__COUNT
} cf_perm;

/* Parses a role name ("client", ...) into its bit. */
int cf_role_parse(const char *name, cf_role *ret) CF_WUR;
const char *cf_role_name(cf_role r);
const char *cf_perm_name(cf_perm p);
/* Whether any role in the set grants p (the table in authz.c, documented in docs/API.md). */
bool cf_roles_grant(uint32_t roles, cf_perm p);

/* A verified caller. */
typedef struct {
    char tenant[CF_ID_MAX_LEN + 1];
    char sub[CF_ID_MAX_LEN + 1];
    char kind[16];      /* user, service, developer, client */
    char jti[64];
    uint32_t roles;     /* cf_role bits */
    bool has_client_key;
    uint8_t client_key[32]; /* X25519 public key (cnf.x25519) */
    int64_t iat, exp;
} cf_principal;

bool cf_principal_is_platform(const cf_principal *p);

/* 0 if p may perform perm on resources of `tenant` (NULL: no tenant scope),
 * else CF_E_FORBIDDEN with a detail naming the missing permission or the
 * tenant mismatch. */
int cf_authz_check(const cf_principal *p, cf_perm perm, const char *tenant) CF_WUR;

/* Signs an access token for p valid from now for ttl seconds (p->iat/exp are
 * ignored; jti is generated when empty). *ret is malloc'd. */
int cf_token_mint(const cf_key *signing_key, const char *kid, const cf_principal *p, int64_t now,
                  uint32_t ttl, char **ret) CF_WUR;
/* Verifies an access token against IAM's JWKS at time now (0 = clock):
 * signature (key chosen by kid), typ, iss, aud, exp/nbf/iat, claim shapes,
 * known roles. CF_E_UNAUTHENTICATED / CF_E_EXPIRED with a detail otherwise. */
int cf_token_verify(const char *token, size_t len, const cf_jwks *jwks, int64_t now,
                    cf_principal *ret) CF_WUR;
/* Extracts the token from an "Authorization: Bearer <token>" header value. */
int cf_bearer_token(const char *header_value, const char **ret_token, size_t *ret_len) CF_WUR;

#endif
