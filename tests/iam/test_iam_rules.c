/* IAM pure logic: API key format and verifier, client-key validation, roles and
 * granting rules, request body parsers, the failed-attempt limiter. */
#include <string.h>

#include "base/err.h"
#include "base/parse.h"
#include "base/secmem.h"
#include "crypto/hash.h"
#include "crypto/keys.h"
#include "iam/api.h"
#include "iam/iam.h"
#include "iam/ratelimit.h"
#include "test.h"

/* ---- API keys ---- */

static void test_apikey_roundtrip(void)
{
    char id[CF_IAM_KEY_ID_LEN + 1], id2[CF_IAM_KEY_ID_LEN + 1], pid[CF_IAM_KEY_ID_LEN + 1];
    uint8_t hash[32], hash2[32], h3[32], secret[32];
    cf_secret k = {0}, k2 = {0};
    const char *s;

    T_OK(cf_iam_apikey_generate(id, &k, hash));
    T_OK(cf_iam_apikey_generate(id2, &k2, hash2));
    s = (const char *)k.p;
    T_EQ(strlen(s), CF_IAM_APIKEY_LEN);
    T_EQ(CF_IAM_APIKEY_LEN, 64);
    T_ASSERT(strncmp(s, "cfk_", 4) == 0);
    T_ASSERT(strncmp(s + 4, id, 16) == 0);
    T_ASSERT(s[20] == '_');
    T_ASSERT(strcmp(id, id2) != 0);
    T_ASSERT(memcmp(hash, hash2, 32) != 0);
    T_OK(cf_iam_apikey_parse(s, strlen(s), pid, secret));
    T_STREQ(pid, id);
    T_OK(cf_iam_apikey_hash(pid, secret, h3));
    T_MEMEQ(h3, hash, 32);

    /* Known answer: SHA-256("coffer/v1 api-key" 0x00 id 0x00 secret). */
    uint8_t msg[17 + 1 + 16 + 1 + 32], want[32];
    memcpy(msg, "coffer/v1 api-key", 17);
    msg[17] = 0;
    memcpy(msg + 18, id, 16);
    msg[34] = 0;
    memcpy(msg + 35, secret, 32);
    T_OK(cf_sha256(msg, sizeof(msg), want));
    T_MEMEQ(want, hash, 32);
    /* The id is bound into the verifier. */
    T_OK(cf_iam_apikey_hash(id2, secret, h3));
    T_ASSERT(memcmp(h3, hash, 32) != 0);
    T_ERR(cf_iam_apikey_hash("abc", secret, h3), CF_E_INVAL);
    cf_secret_free(&k);
    cf_secret_free(&k2);
}

static void test_apikey_parse_rejects(void)
{
    char good[CF_IAM_APIKEY_LEN + 1], bad[CF_IAM_APIKEY_LEN + 8];
    char id[CF_IAM_KEY_ID_LEN + 1] = "untouched";
    uint8_t secret[32], hash[32];
    cf_secret k = {0};

    T_OK(cf_iam_apikey_generate(id, &k, hash));
    memcpy(good, k.p, sizeof(good));
    cf_secret_free(&k);
    memcpy(id, "untouched", 10);

#define REJECT(str, n)                                                                             \
    do {                                                                                           \
        T_ERR(cf_iam_apikey_parse((str), (n), id, secret), CF_E_UNAUTHENTICATED);                  \
        T_STREQ(id, "untouched");                                                                  \
        T_ASSERT(strstr(cf_err_detail(CF_E_UNAUTHENTICATED), "malformed API key") != NULL);        \
    } while (0)

    REJECT(good, 63);
    REJECT("", 0);
    memcpy(bad, good, 64);
    bad[64] = 'A';
    REJECT(bad, 65);
    memcpy(bad, good, 65);
    bad[2] = 'x'; /* "cfx_" */
    REJECT(bad, 64);
    memcpy(bad, good, 65);
    bad[5] = 'A'; /* upper-case hex */
    REJECT(bad, 64);
    memcpy(bad, good, 65);
    bad[6] = 'g';
    REJECT(bad, 64);
    memcpy(bad, good, 65);
    bad[20] = '-'; /* separator */
    REJECT(bad, 64);
    memcpy(bad, good, 65);
    bad[30] = '+'; /* not base64url */
    REJECT(bad, 64);
    memcpy(bad, good, 65);
    bad[30] = '\0'; /* embedded NUL */
    REJECT(bad, 64);
    memcpy(bad, good, 65);
    bad[63] = '='; /* padding */
    REJECT(bad, 64);
    /* Non-canonical trailing bits: the last char carries 2 unused bits. */
    memcpy(bad, good, 65);
    {
        static const char alpha[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        const char *p = strchr(alpha, bad[63]);
        T_ASSERT(p != NULL);
        bad[63] = alpha[((p - alpha) | 1) & 63];
        if (bad[63] == good[63])
            bad[63] = alpha[((p - alpha) | 2) & 63];
        REJECT(bad, 64);
    }
    T_ERR(cf_iam_apikey_parse(NULL, 64, id, secret), CF_E_UNAUTHENTICATED);
#undef REJECT
}

/* ---- client keys ---- */

static void le_from_hex(const char *be_hex, uint8_t out[32])
{
    uint8_t be[32];
    if (cf_hex_decode(be_hex, be, 32) != 0)
        abort();
    for (int i = 0; i < 32; i++)
        out[i] = be[31 - i];
}

static void test_clientkey_check(void)
{
    cf_key *k = NULL;
    uint8_t pub[32], u[32];
    size_t n = 0;

    T_OK(cf_key_generate(CF_KEY_X25519, &k));
    T_OK(cf_key_export_public(k, pub, sizeof(pub), &n));
    cf_key_free(k);
    T_OK(cf_iam_clientkey_check(pub, 32));
    T_ERR(cf_iam_clientkey_check(pub, 31), CF_E_INVAL);
    T_ERR(cf_iam_clientkey_check(pub, 33), CF_E_INVAL);
    T_ERR(cf_iam_clientkey_check(NULL, 32), CF_E_INVAL);

    /* Small-order u-coordinates (RFC 7748 §6.1: all-zero shared secret). */
    memset(u, 0, 32); /* u = 0 */
    T_ERR(cf_iam_clientkey_check(u, 32), CF_E_INVAL);
    T_ASSERT(strstr(cf_err_detail(CF_E_INVAL), "small order") != NULL);
    u[0] = 1; /* u = 1 */
    T_ERR(cf_iam_clientkey_check(u, 32), CF_E_INVAL);
    /* u = p - 1 (order 2) */
    le_from_hex("7fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffec", u);
    T_ERR(cf_iam_clientkey_check(u, 32), CF_E_INVAL);
    /* A point of order 8 (well-known value from the Curve25519 literature). */
    le_from_hex("00b8495f16056286fdb1329ceb8d09da6ac49ff1fae35616aeb8413b7c7aebe0", u);
    T_ERR(cf_iam_clientkey_check(u, 32), CF_E_INVAL);
    /* Non-canonical encodings: u = p, and bit 255 set on a valid key. */
    le_from_hex("7fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffed", u);
    T_ERR(cf_iam_clientkey_check(u, 32), CF_E_INVAL);
    T_ASSERT(strstr(cf_err_detail(CF_E_INVAL), "canonical") != NULL);
    memcpy(u, pub, 32);
    u[31] |= 0x80;
    T_ERR(cf_iam_clientkey_check(u, 32), CF_E_INVAL);
}

/* ---- roles, ids, granting ---- */

static cf_principal mk(const char *tenant, const char *sub, uint32_t roles)
{
    cf_principal p;
    memset(&p, 0, sizeof(p));
    memcpy(p.tenant, tenant, strlen(tenant) + 1);
    memcpy(p.sub, sub, strlen(sub) + 1);
    memcpy(p.kind, "user", 5);
    p.roles = roles;
    return p;
}

static void test_roles_json(void)
{
    json_t *a = NULL;
    uint32_t r = 0;

    a = json_pack("[s,s]", "client", "auditor");
    T_OK(cf_iam_roles_from_json(a, &r));
    T_EQ(r, CF_ROLE_CLIENT | CF_ROLE_AUDITOR);
    json_decref(a);
    a = json_pack("[s,s]", "client", "client");
    T_ERR(cf_iam_roles_from_json(a, &r), CF_E_INVAL);
    json_decref(a);
    a = json_pack("[s]", "root");
    T_ERR(cf_iam_roles_from_json(a, &r), CF_E_INVAL);
    json_decref(a);
    a = json_pack("[i]", 1);
    T_ERR(cf_iam_roles_from_json(a, &r), CF_E_PARSE);
    json_decref(a);
    a = json_pack("[s,s,s,s,s,s,s]", "client", "auditor", "developer", "tenant-admin", "operator",
                  "platform-admin", "client");
    T_ERR(cf_iam_roles_from_json(a, &r), CF_E_INVAL);
    json_decref(a);
    a = json_string("client");
    T_ERR(cf_iam_roles_from_json(a, &r), CF_E_PARSE);
    json_decref(a);
    T_EQ(r, CF_ROLE_CLIENT | CF_ROLE_AUDITOR); /* untouched by failures */
    T_OK(cf_iam_roles_to_json(CF_IAM_ALL_ROLES, &a));
    T_EQ(json_array_size(a), CF_ROLE_COUNT);
    T_OK(cf_iam_roles_from_json(a, &r));
    T_EQ(r, CF_IAM_ALL_ROLES);
    json_decref(a);
}

static void test_ids(void)
{
    char big[CF_ID_MAX_LEN + 2];

    T_ASSERT(cf_iam_id_ok("acme"));
    T_ASSERT(cf_iam_id_ok("t-01.a_b:c"));
    T_ASSERT(!cf_iam_id_ok(""));
    T_ASSERT(!cf_iam_id_ok("a/b"));
    T_ASSERT(!cf_iam_id_ok("a b"));
    T_ASSERT(!cf_iam_id_ok("a\"b"));
    T_ASSERT(!cf_iam_id_ok(NULL));
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = 0;
    T_ASSERT(!cf_iam_id_ok(big));
    big[CF_ID_MAX_LEN] = 0;
    T_ASSERT(cf_iam_id_ok(big));
    T_ASSERT(cf_iam_name_ok("Acme Corp ü"));
    T_ASSERT(!cf_iam_name_ok("tab\there"));
    T_ASSERT(!cf_iam_name_ok("\xff\xfe"));
    T_ASSERT(!cf_iam_name_ok(""));
    T_ASSERT(cf_iam_kind_ok("client") && cf_iam_kind_ok("user") && cf_iam_kind_ok("service") &&
             cf_iam_kind_ok("developer"));
    T_ASSERT(!cf_iam_kind_ok("admin") && !cf_iam_kind_ok("Client") && !cf_iam_kind_ok(NULL));
}

static void test_grant_rules(void)
{
    cf_principal pa = mk("platform", "pa", CF_ROLE_PLATFORM_ADMIN);
    cf_principal op = mk("platform", "op", CF_ROLE_OPERATOR);
    cf_principal ta = mk("acme", "ta", CF_ROLE_TENANT_ADMIN);
    cf_principal cl = mk("acme", "cl", CF_ROLE_CLIENT);
    /* A forged-looking tenant principal holding platform-admin is still not platform-level. */
    cf_principal fake = mk("acme", "fk", CF_ROLE_PLATFORM_ADMIN);

    /* platform-admin: any tenant role in any tenant; platform roles in platform */
    T_OK(cf_iam_check_grant(&pa, "acme", CF_ROLE_TENANT_ADMIN));
    T_OK(cf_iam_check_grant(&pa, "acme", CF_ROLE_CLIENT | CF_ROLE_DEVELOPER | CF_ROLE_AUDITOR));
    T_OK(cf_iam_check_grant(&pa, "platform", CF_ROLE_OPERATOR));
    T_OK(cf_iam_check_grant(&pa, "platform", CF_ROLE_PLATFORM_ADMIN | CF_ROLE_AUDITOR));
    /* platform roles never in a tenant; tenant roles never on the platform */
    T_ERR(cf_iam_check_grant(&pa, "acme", CF_ROLE_OPERATOR), CF_E_FORBIDDEN);
    T_ASSERT(strstr(cf_err_detail(CF_E_FORBIDDEN), "'operator' is a platform role") != NULL);
    T_ERR(cf_iam_check_grant(&pa, "acme", CF_ROLE_PLATFORM_ADMIN | CF_ROLE_CLIENT), CF_E_FORBIDDEN);
    T_ERR(cf_iam_check_grant(&pa, "platform", CF_ROLE_CLIENT), CF_E_FORBIDDEN);
    T_ERR(cf_iam_check_grant(&pa, "platform", CF_ROLE_TENANT_ADMIN), CF_E_FORBIDDEN);
    /* tenant-admin: tenant roles, own tenant only */
    T_OK(cf_iam_check_grant(&ta, "acme", CF_ROLE_TENANT_ADMIN));
    T_OK(cf_iam_check_grant(&ta, "acme", CF_ROLE_CLIENT | CF_ROLE_AUDITOR));
    T_ERR(cf_iam_check_grant(&ta, "other", CF_ROLE_CLIENT), CF_E_FORBIDDEN);
    T_ERR(cf_iam_check_grant(&ta, "acme", CF_ROLE_PLATFORM_ADMIN), CF_E_FORBIDDEN);
    T_ERR(cf_iam_check_grant(&ta, "acme", CF_ROLE_OPERATOR), CF_E_FORBIDDEN);
    T_ERR(cf_iam_check_grant(&ta, "platform", CF_ROLE_AUDITOR), CF_E_FORBIDDEN);
    /* no principal.manage */
    T_ERR(cf_iam_check_grant(&op, "acme", CF_ROLE_CLIENT), CF_E_FORBIDDEN);
    T_ERR(cf_iam_check_grant(&op, "platform", CF_ROLE_OPERATOR), CF_E_FORBIDDEN);
    T_ERR(cf_iam_check_grant(&cl, "acme", CF_ROLE_CLIENT), CF_E_FORBIDDEN);
    T_ASSERT(strstr(cf_err_detail(CF_E_FORBIDDEN), "lacks permission principal.manage") != NULL);
    T_ERR(cf_iam_check_grant(&fake, "platform", CF_ROLE_OPERATOR), CF_E_FORBIDDEN);
    /* shape */
    T_ERR(cf_iam_check_grant(&pa, "acme", 0), CF_E_INVAL);
    T_ERR(cf_iam_check_grant(&pa, "acme", 1u << 10), CF_E_INVAL);
    T_ERR(cf_iam_check_grant(&pa, "a/b", CF_ROLE_CLIENT), CF_E_INVAL);
}

/* ---- request parsers ---- */

#define B(s) (s), strlen(s)

static void test_req_token(void)
{
    cf_secret k = {0};
    char tenant[CF_ID_MAX_LEN + 1] = "x";
    char big[CF_IAM_MAX_BODY + 64];

    T_OK(cf_iam_req_token(B("{\"api_key\":\"cfk_abc\"}"), &k, tenant));
    T_STREQ((const char *)k.p, "cfk_abc");
    T_STREQ(tenant, "");
    cf_secret_free(&k);
    T_OK(cf_iam_req_token(B("{\"api_key\":\"cfk_abc\",\"tenant\":\"acme\"}"), &k, tenant));
    T_STREQ(tenant, "acme");
    cf_secret_free(&k);
    T_ERR(cf_iam_req_token(B("{}"), &k, tenant), CF_E_PARSE);
    T_ASSERT(strstr(cf_err_detail(CF_E_PARSE), "api_key") != NULL);
    T_ERR(cf_iam_req_token(B("{\"api_key\":\"x\",\"extra\":1}"), &k, tenant), CF_E_PARSE);
    T_ASSERT(strstr(cf_err_detail(CF_E_PARSE), "extra") != NULL);
    T_FAILS(cf_iam_req_token(B("{\"api_key\":5}"), &k, tenant));
    T_FAILS(cf_iam_req_token(B("{\"api_key\":\"x\",\"tenant\":\"a/b\"}"), &k, tenant));
    T_FAILS(cf_iam_req_token(B("{\"api_key\":\"\"}"), &k, tenant));
    T_FAILS(cf_iam_req_token(B("{\"api_key\":\"x\",\"api_key\":\"y\"}"), &k, tenant));
    T_FAILS(cf_iam_req_token(B("{\"api_key\":\"x\"} x"), &k, tenant));
    T_FAILS(cf_iam_req_token(B("[\"api_key\"]"), &k, tenant));
    T_FAILS(cf_iam_req_token(B(""), &k, tenant));
    memset(big, ' ', sizeof(big));
    big[0] = '{';
    big[sizeof(big) - 1] = '}';
    T_ERR(cf_iam_req_token(big, sizeof(big), &k, tenant), CF_E_TOO_LARGE);
    T_STREQ(tenant, "acme"); /* untouched */
    T_ASSERT(k.p == NULL);
}

static void test_req_others(void)
{
    char id[CF_ID_MAX_LEN + 1], name[CF_NAME_MAX_LEN + 1], kind[16], reason[CF_IAM_MAX_REASON + 1];
    uint32_t roles = 0;
    uint64_t ttl = 7;
    uint8_t pub[32];
    cf_key *k = NULL;
    char b64[64], body[256];
    size_t n = 0;

    T_OK(cf_iam_req_tenant(B("{\"name\":\"Acme\"}"), id, name));
    T_STREQ(id, "");
    T_STREQ(name, "Acme");
    T_OK(cf_iam_req_tenant(B("{\"id\":\"acme\",\"name\":\"Acme\"}"), id, name));
    T_STREQ(id, "acme");
    T_FAILS(cf_iam_req_tenant(B("{\"id\":\"ac me\",\"name\":\"Acme\"}"), id, name));
    T_FAILS(cf_iam_req_tenant(B("{\"id\":\"acme\"}"), id, name));
    T_FAILS(cf_iam_req_tenant(B("{\"name\":\"\"}"), id, name));
    T_FAILS(cf_iam_req_tenant(B("{\"name\":\"a\",\"status\":\"active\"}"), id, name));

    T_OK(cf_iam_req_principal(B("{\"kind\":\"client\",\"name\":\"c1\",\"roles\":[\"client\"]}"), kind, name, &roles));
    T_STREQ(kind, "client");
    T_STREQ(name, "c1");
    T_EQ(roles, CF_ROLE_CLIENT);
    T_FAILS(cf_iam_req_principal(B("{\"kind\":\"robot\",\"name\":\"c1\",\"roles\":[\"client\"]}"), kind, name, &roles));
    T_FAILS(cf_iam_req_principal(B("{\"kind\":\"client\",\"name\":\"c1\",\"roles\":[]}"), kind, name, &roles));
    T_FAILS(cf_iam_req_principal(B("{\"kind\":\"client\",\"name\":\"c1\",\"roles\":[\"god\"]}"), kind, name, &roles));
    T_FAILS(cf_iam_req_principal(B("{\"kind\":\"client\",\"name\":\"c1\",\"roles\":\"client\"}"), kind, name, &roles));
    T_FAILS(cf_iam_req_principal(B("{\"kind\":\"client\",\"roles\":[\"client\"]}"), kind, name, &roles));
    T_FAILS(cf_iam_req_principal(B("{\"kind\":\"client\",\"name\":\"c1\",\"roles\":[\"client\"],\"id\":\"x\"}"), kind,
                                 name, &roles));

    T_OK(cf_iam_req_apikey(NULL, 0, &ttl));
    T_EQ(ttl, 0);
    T_OK(cf_iam_req_apikey(B("{}"), &ttl));
    T_EQ(ttl, 0);
    T_OK(cf_iam_req_apikey(B("{\"ttl\":3600}"), &ttl));
    T_EQ(ttl, 3600);
    T_FAILS(cf_iam_req_apikey(B("{\"ttl\":0}"), &ttl));
    T_FAILS(cf_iam_req_apikey(B("{\"ttl\":-5}"), &ttl));
    T_FAILS(cf_iam_req_apikey(B("{\"ttl\":\"1h\"}"), &ttl));
    T_FAILS(cf_iam_req_apikey(B("{\"ttl\":99999999999}"), &ttl));
    T_FAILS(cf_iam_req_apikey(B("{\"secret\":\"x\"}"), &ttl));
    T_EQ(ttl, 3600);

    T_OK(cf_key_generate(CF_KEY_X25519, &k));
    T_OK(cf_key_export_public(k, pub, sizeof(pub), &n));
    cf_key_free(k);
    cf_b64url_encode(pub, 32, b64);
    T_OK(cf_fmt(body, sizeof(body), "{\"x25519\":\"%s\"}", b64));
    uint8_t got[32];
    T_OK(cf_iam_req_clientkey(B(body), got));
    T_MEMEQ(got, pub, 32);
    cf_b64url_encode(pub, 31, b64);
    T_OK(cf_fmt(body, sizeof(body), "{\"x25519\":\"%s\"}", b64));
    T_ERR(cf_iam_req_clientkey(B(body), got), CF_E_INVAL);
    T_ASSERT(strstr(cf_err_detail(CF_E_INVAL), "32-byte") != NULL);
    T_FAILS(cf_iam_req_clientkey(B("{\"x25519\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\"}"), got)); /* zero */
    T_FAILS(cf_iam_req_clientkey(B("{\"x25519\":\"not base64!\"}"), got));
    T_FAILS(cf_iam_req_clientkey(B("{}"), got));

    T_OK(cf_iam_req_reason(NULL, 0, reason));
    T_STREQ(reason, "");
    T_OK(cf_iam_req_reason(B("{\"reason\":\"left the company\"}"), reason));
    T_STREQ(reason, "left the company");
    T_FAILS(cf_iam_req_reason(B("{\"reason\":\"a\\u0001b\"}"), reason));
    T_FAILS(cf_iam_req_reason(B("{\"why\":\"x\"}"), reason));
}

/* ---- failed-attempt limiter ---- */

static void test_ratelimit(void)
{
    cf_iam_rl rl;
    uint32_t retry = 0;
    bool first = false;
    int64_t t = 1000;
    char id[17];

    T_OK(cf_iam_rl_init(&rl));
    for (int i = 0; i < CF_IAM_RL_MAX_FAILS; i++) {
        T_OK(cf_iam_rl_check(&rl, "00000000000000aa", t, &retry, &first));
        cf_iam_rl_fail(&rl, "00000000000000aa", t);
    }
    T_ERR(cf_iam_rl_check(&rl, "00000000000000aa", t + 5, &retry, &first), CF_E_RATE_LIMITED);
    T_EQ(retry, CF_IAM_RL_WINDOW_S - 5);
    T_ASSERT(first);
    T_ERR(cf_iam_rl_check(&rl, "00000000000000aa", t + 6, &retry, &first), CF_E_RATE_LIMITED);
    T_ASSERT(!first); /* reported once per window */
    /* Other ids and the unknown bucket are unaffected. */
    T_OK(cf_iam_rl_check(&rl, "00000000000000bb", t, NULL, NULL));
    T_OK(cf_iam_rl_check(&rl, NULL, t, NULL, NULL));
    /* The window ends. */
    T_OK(cf_iam_rl_check(&rl, "00000000000000aa", t + CF_IAM_RL_WINDOW_S, NULL, NULL));
    /* A success forgets the failures. */
    for (int i = 0; i < CF_IAM_RL_MAX_FAILS - 1; i++)
        cf_iam_rl_fail(&rl, "00000000000000cc", t);
    cf_iam_rl_success(&rl, "00000000000000cc");
    cf_iam_rl_fail(&rl, "00000000000000cc", t);
    T_OK(cf_iam_rl_check(&rl, "00000000000000cc", t, NULL, NULL));
    /* Unknown bucket. */
    for (int i = 0; i < CF_IAM_RL_UNKNOWN_MAX; i++)
        cf_iam_rl_fail(&rl, NULL, t);
    T_ERR(cf_iam_rl_check(&rl, NULL, t, &retry, &first), CF_E_RATE_LIMITED);
    T_OK(cf_iam_rl_check(&rl, "00000000000000bb", t, NULL, NULL));
    /* Bounded memory: many ids cycle through the table without failing; a
     * locked id stays locked unless both slots of its set are taken by ids
     * with newer windows. */
    for (int i = 0; i < CF_IAM_RL_SLOTS * 4; i++) {
        T_OK(cf_fmt(id, sizeof(id), "%016x", (unsigned)i + 0x100000u));
        cf_iam_rl_fail(&rl, id, t);
    }
    cf_iam_rl_destroy(&rl);
    cf_iam_rl_destroy(&rl); /* idempotent */
}

int main(void)
{
    T_RUN(test_apikey_roundtrip);
    T_RUN(test_apikey_parse_rejects);
    T_RUN(test_clientkey_check);
    T_RUN(test_roles_json);
    T_RUN(test_ids);
    T_RUN(test_grant_rules);
    T_RUN(test_req_token);
    T_RUN(test_req_others);
    T_RUN(test_ratelimit);
    return t_done();
}
