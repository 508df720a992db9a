/*
 * Step 1 of the request flow (DESIGN.md §5): the access token, and the
 * client's X25519 key that the KMS seals one-time keys to.
 *
 *   POST /v1/iam/token {"api_key","tenant"} -> {"access_token","token_type",
 *        "expires_in","tenant","principal","roles"}
 *   PUT  /v1/iam/principals/{principal}/client-key {"x25519": b64url}
 *
 * The token is a JWT (docs/PROTOCOL.md §4). The SDK does not verify it (the
 * services do); it reads its own token's exp and cnf.x25519, the client key
 * IAM registered for the principal, which must be the key on file.
 *
 * The client key is generated on first use, stored as PKCS#8 PEM in a file of
 * mode 0600 (created exclusively, so two processes never end up with two keys
 * for one file), registered, and then a new token is fetched so that it
 * carries cnf.x25519. A registered key that differs from the one on file is
 * an error that says what to do; it is never silently replaced.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/err.h"
#include "base/file.h"
#include "base/json.h"
#include "base/parse.h"
#include "base/secmem.h"
#include "crypto/keys.h"
#include "sdk/sdk.h"

#define STEP_TOKEN "access token"
#define STEP_REGISTER "client key registration"

/* A fetched token and the claims the SDK uses. */
typedef struct {
    char *token; /* cf_secure_alloc */
    int64_t exp;
    char principal[CF_ID_MAX_LEN + 1];
    bool has_cnf;
    uint8_t cnf[CF_SDK_X25519_LEN];
} tok_info;

static void tok_free(tok_info *t)
{
    cf_secure_free(t->token);
    t->token = NULL;
}

/* Short, non-secret label of a public key for messages: the first characters
 * of its base64url form. */
static void key_label(const uint8_t pub[CF_SDK_X25519_LEN], char out[12])
{
    char b64[48];

    cf_b64url_encode(pub, CF_SDK_X25519_LEN, b64);
    memcpy(out, b64, 8);
    memcpy(out + 8, "...", 4);
}

int cf_sdk_jwt_payload(const char *token, json_t **ret)
{
    const char *dot1, *dot2;
    cf_buf b;
    int rc;

    dot1 = strchr(token, '.');
    dot2 = dot1 ? strchr(dot1 + 1, '.') : NULL;
    CF_ENSURE(dot1 != NULL && dot2 != NULL && strchr(dot2 + 1, '.') == NULL,
              cf_err_set(CF_E_PARSE, "not a compact JWS (three parts)"));
    cf_buf_init(&b, CF_JWT_MAX_BYTES);
    rc = cf_b64url_decode(dot1 + 1, (size_t)(dot2 - dot1 - 1), &b);
    if (rc == 0)
        rc = cf_json_parse_object(b.data, b.len, CF_JWT_MAX_BYTES, ret);
    cf_buf_free(&b);
    return rc;
}

/* exp and cnf.x25519 of our own token (docs/PROTOCOL.md §4). */
static int token_claims(const char *token, tok_info *t)
{
    json_t *claims = NULL, *cnf = NULL;
    uint64_t exp = 0;
    cf_buf b;
    int rc;

    cf_buf_init(&b, CF_SDK_X25519_LEN);
    CF_GUARD_OUT(cf_sdk_jwt_payload(token, &claims));
    CF_GUARD_OUT(cf_json_get_u64(claims, "exp", false, (uint64_t)CF_JWT_MAX_TIME, &exp));
    if (exp > 0 && (int64_t)exp < t->exp)
        t->exp = (int64_t)exp;
    CF_GUARD_OUT(cf_json_get_obj(claims, "cnf", false, &cnf));
    if (cnf != NULL && json_object_get(cnf, "x25519") != NULL) {
        CF_GUARD_OUT(cf_json_get_b64url(cnf, "x25519", true, CF_SDK_X25519_LEN, &b));
        CF_ENSURE_OUT(b.len == CF_SDK_X25519_LEN,
                      cf_err_set(CF_E_PARSE, "cnf.x25519 is not a 32-byte key"));
        memcpy(t->cnf, b.data, CF_SDK_X25519_LEN);
        t->has_cnf = true;
    }
out:
    json_decref(claims);
    cf_buf_free(&b);
    return rc;
}

int cf_sdk_token_parse(const json_t *ans, cf_sdk_token_answer *ret)
{
    static const char jws_chars[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.";
    cf_sdk_token_answer ta;
    const char *type = NULL;

    memset(&ta, 0, sizeof(ta));
    CF_GUARD(cf_json_get_str(ans, "access_token", true, CF_JWT_MAX_BYTES, &ta.access_token));
    CF_GUARD(cf_json_get_str(ans, "token_type", true, 32, &type));
    CF_GUARD(cf_json_get_u64(ans, "expires_in", true, (uint64_t)CF_JWT_MAX_TIME, &ta.expires_in));
    CF_GUARD(cf_json_get_str(ans, "tenant", true, CF_ID_MAX_LEN, &ta.tenant));
    CF_GUARD(cf_json_get_str(ans, "principal", true, CF_ID_MAX_LEN, &ta.principal));
    CF_ENSURE(strcasecmp(type, "Bearer") == 0,
              cf_err_set(CF_E_PARSE, "token_type is '%.32s', not Bearer", type));
    CF_ENSURE(ta.access_token[0] != 0 &&
                  strspn(ta.access_token, jws_chars) == strlen(ta.access_token),
              cf_err_set(CF_E_PARSE, "access_token is not a compact JWS"));
    CF_ENSURE(cf_sdk_id_ok(ta.principal, CF_ID_MAX_LEN) && cf_sdk_id_ok(ta.tenant, CF_ID_MAX_LEN),
              cf_err_set(CF_E_PARSE, "principal or tenant is not a valid id"));
    *ret = ta;
    return 0;
}

static int fetch_token(coffer_client *c, tok_info *ret)
{
    cf_buf body;
    cf_http_request req;
    cf_http_response resp;
    json_t *ans = NULL;
    cf_sdk_token_answer ta;
    tok_info t;
    size_t tl;
    int64_t now = cf_sdk_now();
    int rc;

    memset(&t, 0, sizeof(t));
    memset(&resp, 0, sizeof(resp));
    /* The body carries the API key: secret memory, wiped on free. Both values
     * were checked to need no JSON escaping (client.c). */
    cf_buf_init_secret(&body, CF_SDK_MAX_API_KEY + CF_ID_MAX_LEN + 64);
    CF_GUARD_OUT(cf_buf_printf(&body, "{\"api_key\":\"%s\",\"tenant\":\"%s\"}", c->api_key,
                               c->tenant));
    req = (cf_http_request){.method = "POST",
                            .path = "/v1/iam/token",
                            .content_type = "application/json",
                            .body = body.data,
                            .body_len = body.len};
    CF_GUARD_OUT(cf_sdk_http(c, &req, &resp, STEP_TOKEN));
    if (resp.status == 401) {
        (void)cf_sdk_http_error(&resp, STEP_TOKEN);
        rc = cf_sdk_fail(CF_E_UNAUTHENTICATED, COFFER_E_AUTH,
                         "the API key was rejected for tenant '%s' (%s)", c->tenant,
                         cf_err_detail(CF_E_UNAUTHENTICATED));
        goto out;
    }
    CF_GUARD_OUT(cf_sdk_json_answer(&resp, 200, STEP_TOKEN, &ans));
    rc = cf_sdk_token_parse(ans, &ta);
    if (rc < 0) {
        rc = cf_sdk_fail(rc, COFFER_E_PROTOCOL, "%s: %s", STEP_TOKEN, cf_err_detail(rc));
        goto out;
    }
    CF_ENSURE_OUT(strcmp(ta.tenant, c->tenant) == 0,
                  cf_sdk_fail(CF_E_UNAUTHENTICATED, COFFER_E_AUTH,
                              "the API key belongs to tenant '%s', not '%s'", ta.tenant,
                              c->tenant));
    t.exp = now + (int64_t)ta.expires_in;
    rc = token_claims(ta.access_token, &t);
    if (rc < 0) {
        rc = cf_sdk_fail(rc, COFFER_E_PROTOCOL, "%s: %s", STEP_TOKEN, cf_err_detail(rc));
        goto out;
    }
    tl = strlen(ta.access_token);
    t.token = cf_secure_alloc(tl + 1);
    CF_ENSURE_OUT(t.token != NULL, CF_E_NOMEM);
    memcpy(t.token, ta.access_token, tl);
    memcpy(t.principal, ta.principal, strlen(ta.principal) + 1);
    *ret = t;
    memset(&t, 0, sizeof(t));
out:
    json_decref(ans);
    /* The answer held the token. */
    if (resp.body.data != NULL)
        cf_wipe(resp.body.data, resp.body.len);
    cf_http_response_free(&resp);
    cf_buf_free(&body);
    tok_free(&t);
    return rc;
}

/* ---- the key file ---- */

int cf_sdk_default_key_path(const char *tenant, const char *principal, char *out, size_t out_size)
{
    char et[CF_SDK_MAX_ID_ENCODED + 1], ep[CF_SDK_MAX_ID_ENCODED + 1];
    const char *xdg = getenv("XDG_CONFIG_HOME"), *home = getenv("HOME");
    struct passwd *pw;

    CF_GUARD(cf_sdk_pct_encode(tenant, et, sizeof(et)));
    CF_GUARD(cf_sdk_pct_encode(principal, ep, sizeof(ep)));
    /* XDG Base Directory Specification: a relative XDG_CONFIG_HOME is invalid and
     * ignored. */
    if (xdg != NULL && xdg[0] == '/')
        return cf_fmt(out, out_size, "%s/coffer/client-%s-%s.key", xdg, et, ep);
    if (home == NULL || home[0] != '/') {
        pw = getpwuid(getuid());
        home = pw != NULL ? pw->pw_dir : NULL;
    }
    CF_ENSURE(home != NULL && home[0] == '/',
              cf_err_set(CF_E_CONFIG, "no home directory for the client key; set client_key_path "
                                      "(COFFER_CLIENT_KEY)"));
    return cf_fmt(out, out_size, "%s/.config/coffer/client-%s-%s.key", home, et, ep);
}

/* X25519 private key from PKCS#8 PEM into an HPKE key (both in secret memory). */
static int key_from_pem(const cf_buf *pem, cf_hpke_key **ret)
{
    cf_key *k = NULL;
    cf_secret raw = {0};
    int rc;

    CF_GUARD_OUT(cf_key_from_private_pem((const char *)pem->data, pem->len, &k));
    CF_ENSURE_OUT(cf_key_get_type(k) == CF_KEY_X25519,
                  cf_err_set(CF_E_UNSUPPORTED, "not an X25519 key"));
    CF_GUARD_OUT(cf_key_export_private(k, &raw));
    CF_GUARD_OUT(cf_hpke_key_from_private(CF_HPKE_KEM_X25519_SHA256, raw.p, raw.len, ret));
out:
    cf_secret_free(&raw);
    cf_key_free(k);
    return rc;
}

/* Appends the whole of fd (a regular file of `size` bytes) to out. */
static int read_fd(int fd, size_t size, cf_buf *out)
{
    uint8_t *dst;
    size_t got = 0;

    CF_GUARD(cf_buf_put_space(out, size, &dst));
    while (got < size) {
        ssize_t r = read(fd, dst + got, size - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return CF_E_IO;
        got += (size_t)r;
    }
    return 0;
}

int cf_sdk_key_load(const char *path, cf_hpke_key **ret)
{
    struct stat st;
    cf_buf pem;
    int fd, rc = 0;

    cf_buf_init_secret(&pem, CF_KEY_MAX_PEM_BYTES);
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        if (errno == ENOENT)
            return cf_err_set(CF_E_NOT_FOUND, "no client key file %s", path);
        return cf_sdk_fail(CF_E_IO, COFFER_E_CLIENT_KEY, "cannot open client key file %s: %s",
                           path, strerror(errno));
    }
    /* Like ssh with its private keys: a key others can read is not used. The
     * checks and the read use the same descriptor, so they are about the same
     * file. */
    CF_ENSURE_OUT(fstat(fd, &st) == 0 && S_ISREG(st.st_mode),
                  cf_sdk_fail(CF_E_IO, COFFER_E_CLIENT_KEY, "client key %s is not a regular file",
                              path));
    CF_ENSURE_OUT(st.st_uid == geteuid(),
                  cf_sdk_fail(CF_E_FORBIDDEN, COFFER_E_CLIENT_KEY,
                              "client key file %s is owned by another user", path));
    CF_ENSURE_OUT((st.st_mode & 077) == 0,
                  cf_sdk_fail(CF_E_FORBIDDEN, COFFER_E_CLIENT_KEY,
                              "client key file %s is accessible by group or others (mode %04o); "
                              "run: chmod 600 %s",
                              path, (unsigned)(st.st_mode & 07777), path));
    CF_ENSURE_OUT(st.st_size > 0 && (uint64_t)st.st_size <= CF_KEY_MAX_PEM_BYTES,
                  cf_sdk_fail(CF_E_TOO_LARGE, COFFER_E_CLIENT_KEY,
                              "client key file %s is empty or too large", path));
    rc = read_fd(fd, (size_t)st.st_size, &pem);
    if (rc == 0)
        rc = key_from_pem(&pem, ret);
    if (rc < 0)
        rc = cf_sdk_fail(rc, COFFER_E_CLIENT_KEY, "client key file %s: %s", path,
                         rc == CF_E_IO ? "cannot read it" : cf_err_detail(rc));
out:
    close(fd);
    cf_buf_free(&pem);
    return rc;
}

static int write_all(int fd, const uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return CF_E_IO;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

int cf_sdk_key_create(const char *path, cf_hpke_key **ret)
{
    char dir[CF_SDK_MAX_PATH + 1], tmp[CF_SDK_MAX_PATH + 16];
    cf_key *k = NULL;
    cf_buf pem;
    int fd = -1, dfd, rc = 0;
    bool tmp_made = false;

    cf_buf_init_secret(&pem, CF_KEY_MAX_PEM_BYTES);
    CF_GUARD_OUT(cf_fmt(dir, sizeof(dir), "%s", path));
    CF_GUARD_OUT(cf_fmt(tmp, sizeof(tmp), "%s.XXXXXX", path));
    /* Directories we create are private (0700); an existing one is left as is. */
    rc = cf_mkdirs(dirname(dir), 0700);
    if (rc < 0) {
        rc = cf_sdk_fail(rc, COFFER_E_CLIENT_KEY, "client key: %s", cf_err_detail(rc));
        goto out;
    }
    CF_GUARD_OUT(cf_key_generate(CF_KEY_X25519, &k));
    CF_GUARD_OUT(cf_key_export_private_pem(k, &pem));

    /* mkstemp creates the file 0600 and O_EXCL; the complete file is then
     * linked into place, which fails if the name exists: no reader ever sees a
     * partial key, and a concurrent creator's key is never overwritten. */
    fd = mkstemp(tmp);
    CF_ENSURE_OUT(fd >= 0, cf_sdk_fail(CF_E_IO, COFFER_E_CLIENT_KEY,
                                       "cannot create client key file next to %s: %s", path,
                                       strerror(errno)));
    tmp_made = true;
    CF_ENSURE_OUT(fchmod(fd, 0600) == 0 && write_all(fd, pem.data, pem.len) == 0 &&
                      fsync(fd) == 0,
                  cf_sdk_fail(CF_E_IO, COFFER_E_CLIENT_KEY, "cannot write client key file %s: %s",
                              tmp, strerror(errno)));
    CF_ENSURE_OUT(close(fd) == 0, cf_sdk_fail(CF_E_IO, COFFER_E_CLIENT_KEY,
                                              "cannot write client key file %s", tmp));
    fd = -1;
    if (link(tmp, path) != 0) {
        CF_ENSURE_OUT(errno == EEXIST,
                      cf_sdk_fail(CF_E_IO, COFFER_E_CLIENT_KEY, "cannot create client key file %s: %s",
                                  path, strerror(errno)));
        /* Another process was first: use its key. */
        rc = cf_sdk_key_load(path, ret);
        goto out;
    }
    CF_GUARD_OUT(cf_fmt(dir, sizeof(dir), "%s", path));
    dfd = open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        (void)fsync(dfd);
        close(dfd);
    }
    rc = key_from_pem(&pem, ret);
out:
    if (fd >= 0)
        close(fd);
    if (tmp_made)
        unlink(tmp);
    cf_key_free(k);
    cf_buf_free(&pem);
    return rc;
}

/* ---- registration ---- */

static int register_key(coffer_client *c, const char *token, const char *principal,
                        const uint8_t pub[CF_SDK_X25519_LEN])
{
    char ep[CF_SDK_MAX_ID_ENCODED + 1], path[CF_SDK_MAX_ID_ENCODED + 64], lbl[12];
    char b64[48], body[96];
    cf_http_request req;
    cf_http_response resp;
    int rc;

    memset(&resp, 0, sizeof(resp));
    CF_GUARD(cf_sdk_pct_encode(principal, ep, sizeof(ep)));
    CF_GUARD(cf_fmt(path, sizeof(path), "/v1/iam/principals/%s/client-key", ep));
    cf_b64url_encode(pub, CF_SDK_X25519_LEN, b64);
    CF_GUARD(cf_fmt(body, sizeof(body), "{\"x25519\":\"%s\"}", b64));
    req = (cf_http_request){.method = "PUT",
                            .path = path,
                            .bearer = token,
                            .content_type = "application/json",
                            .body = body,
                            .body_len = strlen(body)};
    CF_GUARD(cf_sdk_http(c, &req, &resp, STEP_REGISTER));
    if (resp.status == 200 || resp.status == 201 || resp.status == 204)
        rc = 0;
    else if (resp.status == 409) {
        key_label(pub, lbl);
        rc = cf_sdk_fail(CF_E_CONFLICT, COFFER_E_CLIENT_KEY,
                         "cannot register client key %s for principal '%s': another key is "
                         "registered for it; restore the key file that was registered, or have a "
                         "tenant administrator remove the registered key",
                         lbl, principal);
    } else
        rc = cf_sdk_http_error(&resp, STEP_REGISTER);
    cf_http_response_free(&resp);
    return rc;
}

/* Decides the key file once the principal is known, and loads or creates the
 * key. A principal that already has a registered key but no key file here must
 * not get a second key. */
static int setup_key(coffer_client *c, const tok_info *t)
{
    char path[CF_SDK_MAX_PATH + 1], lbl[12];
    cf_hpke_key *k = NULL;
    int rc;

    if (c->client_key_path != NULL)
        CF_GUARD(cf_fmt(path, sizeof(path), "%s", c->client_key_path));
    else {
        rc = cf_sdk_default_key_path(c->tenant, t->principal, path, sizeof(path));
        if (rc < 0)
            return cf_sdk_fail(rc, COFFER_E_CLIENT_KEY, "client key: %s", cf_err_detail(rc));
    }
    rc = cf_sdk_key_load(path, &k);
    if (rc == CF_E_NOT_FOUND) {
        if (t->has_cnf) {
            key_label(t->cnf, lbl);
            return cf_sdk_fail(CF_E_CONFLICT, COFFER_E_CLIENT_KEY,
                               "no client key file at %s, but principal '%s' already has a "
                               "registered client key (%s); restore that key file (option "
                               "client_key_path / COFFER_CLIENT_KEY), or have a tenant "
                               "administrator remove the registered key",
                               path, t->principal, lbl);
        }
        rc = cf_sdk_key_create(path, &k);
    }
    CF_GUARD(rc);
    c->client_key = k;
    memcpy(c->key_path, path, strlen(path) + 1);
    memcpy(c->principal, t->principal, strlen(t->principal) + 1);
    return 0;
}

static int cnf_mismatch(const coffer_client *c, const uint8_t registered[CF_SDK_X25519_LEN],
                        const uint8_t ours[CF_SDK_X25519_LEN])
{
    char a[12], b[12];

    key_label(registered, a);
    key_label(ours, b);
    return cf_sdk_fail(CF_E_CONFLICT, COFFER_E_CLIENT_KEY,
                       "client key on file does not match the key registered for this principal "
                       "('%s': registered %s, file %s has %s); restore the key file that was "
                       "registered, or have a tenant administrator remove the registered key so "
                       "that this one can be registered",
                       c->principal, a, c->key_path, b);
}

/* With auth_mu held: a new token whose cnf is our client key. */
static int refresh_locked(coffer_client *c, int64_t now)
{
    tok_info t, t2;
    const uint8_t *pub;
    size_t pl = 0;
    int64_t life, margin;
    int rc;

    memset(&t, 0, sizeof(t));
    memset(&t2, 0, sizeof(t2));
    CF_GUARD_OUT(fetch_token(c, &t));
    if (c->client_key == NULL)
        CF_GUARD_OUT(setup_key(c, &t));
    else
        CF_ENSURE_OUT(strcmp(c->principal, t.principal) == 0,
                      cf_sdk_fail(CF_E_CONFLICT, COFFER_E_CLIENT_KEY,
                                  "the API key now names principal '%s', the client key belongs "
                                  "to '%s'",
                                  t.principal, c->principal));
    pub = cf_hpke_key_pub(c->client_key, &pl);
    CF_ENSURE_OUT(pub != NULL && pl == CF_SDK_X25519_LEN, CF_E_INTERNAL);
    if (t.has_cnf) {
        /* Public keys, but compared like every other key material. */
        CF_ENSURE_OUT(cf_ct_eq(t.cnf, pub, CF_SDK_X25519_LEN), cnf_mismatch(c, t.cnf, pub));
    } else {
        CF_GUARD_OUT(register_key(c, t.token, t.principal, pub));
        /* The KMS seals OTKs to the key in the token: get one that carries it. */
        CF_GUARD_OUT(fetch_token(c, &t2));
        CF_ENSURE_OUT(t2.has_cnf, cf_sdk_fail(CF_E_CONFLICT, COFFER_E_CLIENT_KEY,
                                              "registered the client key for '%s', but the new "
                                              "access token does not carry it",
                                              c->principal));
        CF_ENSURE_OUT(cf_ct_eq(t2.cnf, pub, CF_SDK_X25519_LEN), cnf_mismatch(c, t2.cnf, pub));
        tok_free(&t);
        t = t2;
        memset(&t2, 0, sizeof(t2));
    }
    cf_secure_free(c->token);
    c->token = t.token;
    t.token = NULL;
    c->token_exp = t.exp;
    life = t.exp - now;
    margin = CF_MIN((int64_t)CF_SDK_TOKEN_REFRESH_MARGIN_S, life / 4);
    c->token_refresh_at = t.exp - (margin > 0 ? margin : 0);
    c->token_generation++;
out:
    tok_free(&t);
    tok_free(&t2);
    return rc;
}

int cf_sdk_auth_get(coffer_client *c, cf_sdk_auth *ret)
{
    cf_sdk_auth a;
    size_t tl;
    int rc = 0;

    memset(&a, 0, sizeof(a));
    CF_ENSURE(pthread_mutex_lock(&c->auth_mu) == 0, CF_E_INTERNAL);
    if (c->token == NULL || c->client_key == NULL || cf_sdk_now() >= c->token_refresh_at)
        CF_GUARD_OUT(refresh_locked(c, cf_sdk_now()));
    tl = strlen(c->token);
    a.token = cf_secure_alloc(tl + 1);
    CF_ENSURE_OUT(a.token != NULL, CF_E_NOMEM);
    memcpy(a.token, c->token, tl);
    a.token_exp = c->token_exp;
    a.generation = c->token_generation;
    a.client_key = c->client_key;
    *ret = a;
out:
    pthread_mutex_unlock(&c->auth_mu);
    return rc;
}

void cf_sdk_auth_release(cf_sdk_auth *a)
{
    cf_secure_free(a->token);
    memset(a, 0, sizeof(*a));
}

void cf_sdk_auth_invalidate(coffer_client *c, uint64_t generation)
{
    if (pthread_mutex_lock(&c->auth_mu) != 0)
        return;
    if (c->token_generation == generation) {
        cf_secure_free(c->token);
        c->token = NULL;
    }
    pthread_mutex_unlock(&c->auth_mu);
}
