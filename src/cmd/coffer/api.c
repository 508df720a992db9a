/*
 * Gateway client of the operator / user commands (api.h).
 */
#include "api.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/err.h"
#include "base/file.h"
#include "base/json.h"
#include "base/limits.h"
#include "base/parse.h"
#include "base/secmem.h"
#include "cli.h"
#include "http/client.h"

#define TOKEN_PATH "/v1/iam/token"
/* Longest service error message quoted (the rest is cut): a service's message
 * is one sentence; this keeps a hostile answer from flooding the terminal. */
#define MAX_QUOTED_MESSAGE 512

const char cli_conn_help[] =
    "connection (every command):\n"
    "  --url URL            gateway (default $COFFER_GATEWAY_URL); https://, or http://\n"
    "                       to a loopback address only\n"
    "  --ca FILE            CA certificate (PEM) for the gateway's TLS certificate\n"
    "                       (default $COFFER_CA, else the system trust store)\n"
    "  --api-key-file FILE  file holding the API key (default: $COFFER_API_KEY)\n"
    "  --auth-tenant ID     tenant the API key must belong to (default $COFFER_TENANT_ID)\n"
    "  --timeout-ms N       per HTTP call (default 30000)\n"
    "  --json               print the service's JSON answer instead of a table\n"
    "  --help               this text\n"
    "\n"
    "Exit status: 0 ok, 1 refused or not allowed (the service said no), 2 usage,\n"
    "3 unreadable input, 4 gateway unreachable or failing (also 429 and 5xx).\n";

struct cli_api {
    const char *prog;
    cf_http_client *http;
    cf_buf key;   /* API key (secret), NUL-terminated */
    cf_buf token; /* access token (secret), NUL-terminated; empty until fetched */
    const char *auth_tenant;
    char url[CF_HTTP_MAX_URL + 1];
    char tenant[CF_ID_MAX_LEN + 1]; /* the token's tenant */
    int exit;
};

/* ---- small helpers ----------------------------------------------------------------------- */

static void errf(const char *prog, const char *fmt, ...) CF_PRINTF(2, 3);

static void errf(const char *prog, const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "%s: ", prog);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

int cli_usage_error(const char *prog, const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "%s: ", prog);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, " (see '%s --help')\n", prog);
    return CLI_EXIT_USAGE;
}

static const char *env_or(const char *v, const char *name)
{
    const char *e;

    if (v != NULL)
        return v;
    e = getenv(name);
    return e != NULL && e[0] != '\0' ? e : NULL;
}

/* Writes s with control characters replaced: text from a service must not be
 * able to drive the terminal (escape sequences). At most max bytes. */
static void put_safe(FILE *f, const char *s, size_t max)
{
    size_t i;

    for (i = 0; s[i] != '\0' && i < max; i++) {
        unsigned char ch = (unsigned char)s[i];
        fputc(ch < 0x20 || ch == 0x7f ? '?' : ch, f);
    }
    if (s[i] != '\0')
        fputs("...", f);
}

/* Display width of UTF-8 text: code points (continuation bytes do not count). */
static size_t text_width(const char *s)
{
    size_t w = 0;

    for (; *s != '\0'; s++)
        if (((unsigned char)*s & 0xc0) != 0x80)
            w++;
    return w;
}

bool cli_id_ok(const char *s)
{
    size_t n;

    if (s == NULL)
        return false;
    n = strnlen(s, CF_ID_MAX_LEN + 1);
    if (n == 0 || n > CF_ID_MAX_LEN || strcmp(s, ".") == 0 || strcmp(s, "..") == 0)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
              c == '_' || c == ':' || c == '-'))
            return false;
    }
    return true;
}

bool cli_check_id(const char *prog, const char *what, const char *s)
{
    if (cli_id_ok(s))
        return true;
    fprintf(stderr, "%s: %s '", prog, what);
    put_safe(stderr, s != NULL ? s : "", 64);
    fprintf(stderr, "' is not valid: 1-%d characters of A-Z a-z 0-9 . _ : -\n", CF_ID_MAX_LEN);
    return false;
}

/* ---- options ------------------------------------------------------------------------------ */

int cli_conn_opt(const char *prog, cli_conn *c, int opt, const char *arg)
{
    uint64_t v = 0;

    switch (opt) {
    case CLI_O_URL: c->url = arg; return 1;
    case CLI_O_CA: c->ca = arg; return 1;
    case CLI_O_APIKEY_FILE: c->api_key_file = arg; return 1;
    case CLI_O_AUTH_TENANT: c->auth_tenant = arg; return 1;
    case CLI_O_JSON: c->json = true; return 1;
    case CLI_O_HELP:
    case 'h': c->help = true; return 1;
    case CLI_O_TIMEOUT:
        if (cf_parse_u64(arg, CF_CLI_MAX_TIMEOUT_MS, &v) != 0 || v == 0) {
            errf(prog, "--timeout-ms must be 1..%u", (unsigned)CF_CLI_MAX_TIMEOUT_MS);
            return CF_E_INVAL;
        }
        c->timeout_ms = (unsigned)v;
        return 1;
    default: return 0;
    }
}

/* ---- the session --------------------------------------------------------------------------- */

/* Only an IPv4 literal 127.x.y.z, "localhost" or [::1]: a name such as
 * "127.example.com" is resolved by DNS and may be anywhere. */
static bool loopback_host(const char *h, size_t n)
{
    unsigned parts = 0, digits = 0;

    if ((n == 9 && strncasecmp(h, "localhost", 9) == 0) || (n == 5 && strncmp(h, "[::1]", 5) == 0))
        return true;
    if (n < 7 || strncmp(h, "127.", 4) != 0)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (h[i] == '.') {
            if (digits == 0)
                return false;
            parts++;
            digits = 0;
        } else if (h[i] >= '0' && h[i] <= '9' && digits < 3) {
            digits++;
        } else {
            return false;
        }
    }
    return parts == 3 && digits > 0;
}

/* https://HOST[:PORT][/prefix], or http:// with a loopback HOST (DESIGN.md §2: the
 * API key and tokens must not cross a network in clear). */
static int check_url(const char *prog, const char *url)
{
    const char *h;
    size_t n;

    if (strnlen(url, CF_HTTP_MAX_URL + 1) > CF_HTTP_MAX_URL) {
        errf(prog, "the gateway URL is longer than %d bytes", CF_HTTP_MAX_URL);
        return CF_E_INVAL;
    }
    if (strncmp(url, "https://", 8) == 0 && url[8] != '\0' && url[8] != '/')
        return 0;
    if (strncmp(url, "http://", 7) == 0) {
        h = url + 7;
        n = h[0] == '[' ? strcspn(h, "]") + 1 : strcspn(h, ":/");
        if (loopback_host(h, n))
            return 0;
    }
    fprintf(stderr, "%s: gateway URL '", prog);
    put_safe(stderr, url, 256);
    fprintf(stderr, "' must be https:// (plain http:// only to a loopback address)\n");
    return CF_E_INVAL;
}

/* The API key alphabet (cfk_<hex>_<base64url>): nothing in it needs JSON
 * escaping, so the exchange body can be built in locked memory without a
 * JSON library. */
static bool key_chars_ok(const uint8_t *p, size_t n)
{
    if (n == 0 || n > CF_SDK_MAX_API_KEY)
        return false;
    for (size_t i = 0; i < n; i++) {
        uint8_t c = p[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
              c == '-'))
            return false;
    }
    return true;
}

static int load_key(cli_api *a, const char *file)
{
    const char *env;
    int rc;

    if (file != NULL) {
        rc = cf_file_read(file, CF_SDK_MAX_API_KEY + 2, &a->key);
        if (rc < 0) {
            errf(a->prog, "API key file: %s", cf_err_detail(rc));
            a->exit = CLI_EXIT_INPUT;
            return rc;
        }
        while (a->key.len > 0 && (a->key.data[a->key.len - 1] == '\n' || a->key.data[a->key.len - 1] == '\r'))
            a->key.len--;
    } else {
        env = getenv("COFFER_API_KEY");
        if (env == NULL || env[0] == '\0') {
            errf(a->prog, "no API key: set COFFER_API_KEY or give --api-key-file");
            a->exit = CLI_EXIT_USAGE;
            return CF_E_INVAL;
        }
        if (cf_buf_put(&a->key, env, strnlen(env, CF_SDK_MAX_API_KEY + 1)) < 0)
            return CF_E_NOMEM;
    }
    if (!key_chars_ok(a->key.data, a->key.len)) {
        errf(a->prog, "the API key %s is not an API key (cfk_...)", file != NULL ? "in the file" : "in COFFER_API_KEY");
        a->exit = CLI_EXIT_INPUT;
        return CF_E_PARSE;
    }
    return cf_buf_nul_terminate(&a->key);
}

int cli_api_new(const char *prog, const cli_conn *c, cli_api **ret, int *ret_exit)
{
    cf_http_client_opts o;
    cli_api *a;
    const char *url = env_or(c->url, "COFFER_GATEWAY_URL");
    int rc;

    a = calloc(1, sizeof(*a));
    if (a == NULL) {
        errf(prog, "out of memory");
        if (ret_exit != NULL)
            *ret_exit = CLI_EXIT_SERVICE;
        return CF_E_NOMEM;
    }
    a->prog = prog;
    a->exit = CLI_EXIT_USAGE;
    cf_buf_init_secret(&a->key, CF_SDK_MAX_API_KEY + 3);
    cf_buf_init_secret(&a->token, CF_JWT_MAX_BYTES + 1);
    a->auth_tenant = env_or(c->auth_tenant, "COFFER_TENANT_ID");
    if (url == NULL) {
        errf(prog, "no gateway URL: give --url or set COFFER_GATEWAY_URL");
        rc = CF_E_INVAL;
        goto out;
    }
    CF_GUARD_OUT(check_url(prog, url));
    memcpy(a->url, url, strlen(url) + 1);
    if (a->auth_tenant != NULL && !cli_check_id(prog, "--auth-tenant / COFFER_TENANT_ID", a->auth_tenant)) {
        rc = CF_E_INVAL;
        goto out;
    }
    CF_GUARD_OUT(load_key(a, c->api_key_file));
    memset(&o, 0, sizeof(o));
    o.base_url = a->url;
    o.ca_file = env_or(c->ca, "COFFER_CA");
    o.timeout_ms = c->timeout_ms;
    o.max_response = CF_CLI_MAX_RESPONSE;
    rc = cf_http_client_new(&o, &a->http);
    if (rc < 0) {
        errf(prog, "%s", cf_err_detail(rc));
        a->exit = CLI_EXIT_INPUT;
        goto out;
    }
    *ret = a;
    a = NULL;
out:
    if (a != NULL && ret_exit != NULL)
        *ret_exit = a->exit;
    cli_api_free(a);
    return rc;
}

void cli_api_free(cli_api *a)
{
    if (a == NULL)
        return;
    cf_http_client_free(a->http);
    cf_buf_free(&a->key);
    cf_buf_free(&a->token);
    free(a);
}

int cli_api_exit(const cli_api *a)
{
    return a != NULL && a->exit != 0 ? a->exit : CLI_EXIT_SERVICE;
}

const char *cli_api_tenant(const cli_api *a)
{
    return a->tenant[0] != '\0' ? a->tenant : NULL;
}

/* ---- errors -------------------------------------------------------------------------------- */

/* RFC 9110 §15 reason phrases of the statuses the services use. */
static const char *status_text(long st)
{
    switch (st) {
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 413: return "Content Too Large";
    case 415: return "Unsupported Media Type";
    case 429: return "Too Many Requests";
    case 500: return "Internal Server Error";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default: return "";
    }
}

/* Exit status and the leading words of the message for an HTTP error status. */
static int status_exit(long st, const char **ret_what)
{
    if (st == 401 || st == 403) {
        *ret_what = "not allowed";
        return CLI_EXIT_FAILED;
    }
    if (st == 429) {
        *ret_what = "rate limited, try again later";
        return CLI_EXIT_SERVICE;
    }
    if (st >= 500 || st < 400) {
        *ret_what = "the platform failed";
        return CLI_EXIT_SERVICE;
    }
    *ret_what = "refused";
    return CLI_EXIT_FAILED;
}

/* Prints the service's {"error":{"code","message"}} with the HTTP status, and
 * sets the exit status. */
static int http_failure(cli_api *a, const char *what_call, const cf_http_response *r)
{
    const char *what = NULL, *msg = NULL, *code = NULL;
    json_t *o = NULL, *e;

    a->exit = status_exit(r->status, &what);
    if (r->body.len > 0 && cf_json_parse_object(r->body.data, r->body.len, CF_CLI_MAX_RESPONSE, &o) == 0) {
        e = json_object_get(o, "error");
        msg = json_string_value(json_object_get(e, "message"));
        code = json_string_value(json_object_get(e, "code"));
    }
    fprintf(stderr, "%s: %s%s%s (HTTP %ld%s%s", a->prog, what_call != NULL ? what_call : "",
            what_call != NULL ? ": " : "", what, r->status, status_text(r->status)[0] ? " " : "",
            status_text(r->status));
    if (code != NULL) {
        fputs(", ", stderr);
        put_safe(stderr, code, 64);
    }
    fputs(")", stderr);
    if (msg != NULL) {
        fputs(": ", stderr);
        put_safe(stderr, msg, MAX_QUOTED_MESSAGE);
    }
    if (r->retry_after[0] != '\0' && r->status == 429) {
        fputs("; retry after ", stderr);
        put_safe(stderr, r->retry_after, 32);
        fputs(" s", stderr);
    }
    fputc('\n', stderr);
    json_decref(o);
    if (r->status == 401)
        return CF_E_UNAUTHENTICATED;
    return r->status == 403 ? CF_E_FORBIDDEN : r->status >= 500 || r->status == 429 ? CF_E_UNAVAILABLE : CF_E_HTTP;
}

static int transport_failure(cli_api *a, int rc)
{
    a->exit = CLI_EXIT_SERVICE;
    fprintf(stderr, "%s: cannot reach the gateway at ", a->prog);
    put_safe(stderr, a->url, 256);
    fprintf(stderr, ": %s%s\n", cf_err_detail(rc),
            rc == CF_E_VERIFY ? " (is --ca / COFFER_CA the CA that issued the gateway's certificate?)" : "");
    return rc;
}

/* ---- token exchange (POST /v1/iam/token, docs/internals/iam.md "Access tokens") --------- */

static int fetch_token(cli_api *a)
{
    cf_http_request q;
    cf_http_response r;
    cf_buf body;
    json_t *o = NULL;
    const char *tok = NULL, *tenant = NULL;
    int rc;

    memset(&r, 0, sizeof(r));
    cf_buf_reset(&a->token);
    /* Built in locked memory: the API key never goes through an ordinary heap
     * string (load_key checked that it needs no escaping; the tenant is an id). */
    cf_buf_init_secret(&body, CF_SDK_MAX_API_KEY + CF_ID_MAX_LEN + 64);
    CF_GUARD_OUT(cf_buf_put_str(&body, "{\"api_key\":\""));
    CF_GUARD_OUT(cf_buf_put(&body, a->key.data, a->key.len));
    if (a->auth_tenant != NULL)
        CF_GUARD_OUT(cf_buf_printf(&body, "\",\"tenant\":\"%s", a->auth_tenant));
    CF_GUARD_OUT(cf_buf_put_str(&body, "\"}"));
    q = (cf_http_request){.method = "POST", .path = TOKEN_PATH, .body = body.data, .body_len = body.len,
                          .content_type = "application/json"};
    rc = cf_http_client_do(a->http, &q, &r);
    if (rc < 0) {
        rc = transport_failure(a, rc);
        goto out;
    }
    if (r.status != 200) {
        rc = http_failure(a, "the API key was not accepted", &r);
        /* IAM names the mismatch (docs/internals/iam.md "Access tokens"); the
         * usual cause is a COFFER_TENANT_ID left from another identity. */
        if (r.status == 403 && a->auth_tenant != NULL && r.body.len > 0 &&
            memmem(r.body.data, r.body.len, "does not belong to tenant", 25) != NULL)
            fprintf(stderr, "%s: the exchange named tenant '%s' (--auth-tenant or COFFER_TENANT_ID): give the "
                            "key's own tenant, or unset COFFER_TENANT_ID\n", a->prog, a->auth_tenant);
        goto out;
    }
    rc = cf_json_parse_object(r.body.data, r.body.len, CF_CLI_MAX_RESPONSE, &o);
    if (rc == 0)
        rc = cf_json_get_str(o, "access_token", true, CF_JWT_MAX_BYTES, &tok);
    if (rc == 0)
        rc = cf_json_get_str(o, "tenant", true, CF_ID_MAX_LEN, &tenant);
    if (rc == 0 && (tok[0] == '\0' || !cli_id_ok(tenant)))
        rc = cf_err_set(CF_E_PARSE, "empty token or invalid tenant");
    if (rc < 0) {
        errf(a->prog, "the gateway's token answer is malformed: %s", cf_err_detail(rc));
        a->exit = CLI_EXIT_SERVICE;
        goto out;
    }
    CF_GUARD_OUT(cf_buf_put_str(&a->token, tok));
    CF_GUARD_OUT(cf_buf_nul_terminate(&a->token));
    memcpy(a->tenant, tenant, strlen(tenant) + 1);
out:
    cli_json_wipe_str(o, "access_token");
    json_decref(o);
    if (r.body.data != NULL)
        cf_wipe(r.body.data, r.body.len);
    cf_http_response_free(&r);
    cf_buf_free(&body);
    if (rc < 0)
        cf_buf_reset(&a->token);
    return rc;
}

int cli_api_login(cli_api *a)
{
    if (a->token.len > 0)
        return 0;
    return fetch_token(a);
}

/* ---- calls --------------------------------------------------------------------------------- */

int cli_api_call(cli_api *a, const char *method, const char *path, const json_t *body, bool secret,
                 json_t **ret_json)
{
    cf_http_request q;
    cf_http_response r;
    char *text = NULL;
    json_t *o = NULL;
    bool fresh = false;
    int rc;

    memset(&r, 0, sizeof(r));
    a->exit = CLI_EXIT_SERVICE;
    if (body != NULL && (text = cf_json_dump(body)) == NULL)
        return CF_E_NOMEM;
    if (a->token.len == 0) {
        CF_GUARD_OUT(fetch_token(a));
        fresh = true;
    }
    for (;;) {
        q = (cf_http_request){.method = method, .path = path, .bearer = (const char *)a->token.data,
                              .body = text, .body_len = text != NULL ? strlen(text) : 0,
                              .content_type = text != NULL ? "application/json" : NULL};
        rc = cf_http_client_do(a->http, &q, &r);
        if (rc < 0) {
            rc = transport_failure(a, rc);
            goto out;
        }
        /* A token that expired during a long command: one new token, one retry. */
        if (r.status != 401 || fresh)
            break;
        cf_http_response_free(&r);
        memset(&r, 0, sizeof(r));
        CF_GUARD_OUT(fetch_token(a));
        fresh = true;
    }
    if (r.status < 200 || r.status > 299) {
        rc = http_failure(a, NULL, &r);
        goto out;
    }
    rc = cf_json_parse_object(r.body.data, r.body.len, CF_CLI_MAX_RESPONSE, &o);
    if (rc < 0) {
        errf(a->prog, "the answer (HTTP %ld) is not a JSON object: %s", r.status, cf_err_detail(rc));
        goto out;
    }
    *ret_json = o;
    o = NULL;
    a->exit = 0;
out:
    if (secret && r.body.data != NULL)
        cf_wipe(r.body.data, r.body.len);
    cf_http_response_free(&r);
    json_decref(o);
    free(text);
    return rc;
}

int cli_api_list(cli_api *a, const char *path, const char *key, unsigned page, json_t **ret_json)
{
    char next[CF_ID_MAX_LEN + 1] = "", p[CF_CLI_MAX_PATH];
    const char *sep = strchr(path, '?') != NULL ? "&" : "?";
    json_t *all = json_array(), *o = NULL, *items, *res = NULL;
    const char *nx;
    int rc = 0;

    CF_ENSURE(all != NULL, CF_E_NOMEM);
    for (unsigned i = 0;; i++) {
        if (i == CF_CLI_MAX_PAGES) {
            errf(a->prog, "the listing has more than %u pages; narrow it with a filter", CF_CLI_MAX_PAGES);
            a->exit = CLI_EXIT_FAILED;
            rc = CF_E_TOO_LARGE;
            goto out;
        }
        if (next[0] != '\0')
            rc = cf_fmt(p, sizeof(p), "%s%slimit=%u&after=%s", path, sep, page, next);
        else
            rc = cf_fmt(p, sizeof(p), "%s%slimit=%u", path, sep, page);
        if (rc < 0) {
            errf(a->prog, "request path too long");
            a->exit = CLI_EXIT_USAGE;
            goto out;
        }
        CF_GUARD_OUT(cli_api_call(a, "GET", p, NULL, false, &o));
        items = json_object_get(o, key);
        if (!json_is_array(items)) {
            errf(a->prog, "the answer has no '%s' list", key);
            a->exit = CLI_EXIT_SERVICE;
            rc = CF_E_PARSE;
            goto out;
        }
        CF_ENSURE_OUT(json_array_extend(all, items) == 0, CF_E_NOMEM);
        nx = json_string_value(json_object_get(o, "next"));
        if (nx == NULL || json_array_size(items) == 0)
            break;
        /* The cursor goes back into the query unescaped: only an id is accepted. */
        if (!cli_id_ok(nx) || strcmp(nx, next) == 0) {
            errf(a->prog, "the answer's 'next' cursor is not a valid id");
            a->exit = CLI_EXIT_SERVICE;
            rc = CF_E_PARSE;
            goto out;
        }
        memcpy(next, nx, strlen(nx) + 1);
        json_decref(o);
        o = NULL;
    }
    res = json_object();
    CF_ENSURE_OUT(res != NULL && json_object_set(res, key, all) == 0, CF_E_NOMEM);
    *ret_json = res;
    res = NULL;
    a->exit = 0;
out:
    json_decref(res);
    json_decref(o);
    json_decref(all);
    return rc;
}

/* ---- output -------------------------------------------------------------------------------- */

void cli_json_wipe_str(json_t *obj, const char *key)
{
    json_t *v = obj != NULL ? json_object_get(obj, key) : NULL;
    const char *s = json_string_value(v);

    /* jansson owns the string; wiping its bytes in place is the only way to
     * clear a secret it holds before it is freed. */
    if (s != NULL)
        cf_wipe((void *)(uintptr_t)s, json_string_length(v));
}

static const json_t *lookup(const json_t *obj, const char *key)
{
    char part[64];
    const char *dot;

    while ((dot = strchr(key, '.')) != NULL) {
        size_t n = (size_t)(dot - key);
        if (n >= sizeof(part))
            return NULL;
        memcpy(part, key, n);
        part[n] = '\0';
        obj = json_object_get(obj, part);
        key = dot + 1;
    }
    return json_object_get(obj, key);
}

static void fmt_time(json_int_t t, char *out, size_t size)
{
    struct tm tm;
    time_t tt = (time_t)t;

    if (t <= 0 || gmtime_r(&tt, &tm) == NULL || strftime(out, size, "%Y-%m-%d %H:%M:%S UTC", &tm) == 0) {
        out[0] = '-';
        out[1] = '\0';
    }
}

/* The text of one cell into out (a NUL-terminated string). */
static int cell(const json_t *row, const cli_col *c, cf_buf *out)
{
    const json_t *v = lookup(row, c->key);
    char tmp[64];

    cf_buf_reset(out);
    if (v == NULL || json_is_null(v)) {
        CF_GUARD(cf_buf_put_str(out, "-"));
    } else if (c->kind == CLI_COL_TIME && json_is_integer(v)) {
        fmt_time(json_integer_value(v), tmp, sizeof(tmp));
        CF_GUARD(cf_buf_put_str(out, tmp));
    } else if (c->kind == CLI_COL_DURATION && json_is_integer(v) && json_integer_value(v) >= 0) {
        json_int_t s = json_integer_value(v);
        if (s == 0)
            CF_GUARD(cf_buf_put_str(out, "manual"));
        else if (s % 86400 == 0)
            CF_GUARD(cf_buf_printf(out, "%lldd", (long long)(s / 86400)));
        else if (s % 3600 == 0)
            CF_GUARD(cf_buf_printf(out, "%lldh", (long long)(s / 3600)));
        else if (s % 60 == 0)
            CF_GUARD(cf_buf_printf(out, "%lldm", (long long)(s / 60)));
        else
            CF_GUARD(cf_buf_printf(out, "%llds", (long long)s));
    } else if (json_is_string(v)) {
        CF_GUARD(cf_buf_put(out, json_string_value(v), strnlen(json_string_value(v), json_string_length(v))));
    } else if (json_is_integer(v)) {
        CF_GUARD(cf_buf_printf(out, "%lld", (long long)json_integer_value(v)));
    } else if (json_is_boolean(v)) {
        CF_GUARD(cf_buf_put_str(out, json_is_true(v) ? "yes" : "no"));
    } else if (json_is_array(v)) {
        size_t i;
        const json_t *e;
        json_array_foreach(v, i, e) {
            const char *s = json_string_value(e);
            CF_GUARD(cf_buf_printf(out, "%s%s", i ? "," : "", s != NULL ? s : "?"));
        }
        if (json_array_size(v) == 0)
            CF_GUARD(cf_buf_put_str(out, "-"));
    } else {
        char *s = cf_json_dump(v);
        int rc = s != NULL ? cf_buf_put_str(out, s) : CF_E_NOMEM;
        free(s);
        CF_GUARD(rc);
    }
    return cf_buf_nul_terminate(out);
}

void cli_print_table(const json_t *rows, const cli_col *cols, size_t ncols)
{
    size_t nrows = json_array_size(rows), width[16] = {0};
    char **cells = NULL;
    cf_buf b;

    if (ncols > CF_ARRAY_LEN(width))
        ncols = CF_ARRAY_LEN(width);
    if (nrows == 0) {
        printf("(none)\n");
        return;
    }
    cells = calloc(nrows * ncols, sizeof(*cells));
    if (cells == NULL)
        return;
    cf_buf_init(&b, CF_JSON_MAX_STRING + 1);
    for (size_t c = 0; c < ncols; c++)
        width[c] = text_width(cols[c].label);
    for (size_t r = 0; r < nrows; r++) {
        for (size_t c = 0; c < ncols; c++) {
            if (cell(json_array_get(rows, r), &cols[c], &b) != 0)
                continue;
            cells[r * ncols + c] = cf_strndup_max((const char *)b.data, CF_JSON_MAX_STRING);
            if (cells[r * ncols + c] != NULL)
                width[c] = CF_MAX(width[c], text_width(cells[r * ncols + c]));
        }
    }
    for (size_t c = 0; c < ncols; c++)
        printf("%s%-*s", c ? "  " : "", c + 1 < ncols ? (int)width[c] : 0, cols[c].label);
    putchar('\n');
    for (size_t r = 0; r < nrows; r++) {
        for (size_t c = 0; c < ncols; c++) {
            const char *s = cells[r * ncols + c] != NULL ? cells[r * ncols + c] : "?";
            if (c)
                fputs("  ", stdout);
            put_safe(stdout, s, CF_JSON_MAX_STRING);
            if (c + 1 < ncols)
                for (size_t w = text_width(s); w < width[c]; w++)
                    putchar(' ');
        }
        putchar('\n');
    }
    for (size_t i = 0; i < nrows * ncols; i++)
        free(cells[i]);
    free(cells);
    cf_buf_free(&b);
}

void cli_print_object(const json_t *obj, const cli_col *cols, size_t ncols)
{
    size_t w = 0;
    cf_buf b;

    for (size_t c = 0; c < ncols; c++)
        if (lookup(obj, cols[c].key) != NULL)
            w = CF_MAX(w, text_width(cols[c].label) + 1);
    cf_buf_init(&b, CF_JSON_MAX_STRING + 1);
    for (size_t c = 0; c < ncols; c++) {
        if (lookup(obj, cols[c].key) == NULL || cell(obj, &cols[c], &b) != 0)
            continue;
        printf("%s:%*s ", cols[c].label, (int)(w - text_width(cols[c].label) - 1), "");
        put_safe(stdout, (const char *)b.data, CF_JSON_MAX_STRING);
        putchar('\n');
    }
    cf_buf_free(&b);
}

int cli_print_json(const json_t *v)
{
    char *s = cf_json_dump(v);

    CF_ENSURE(s != NULL, CF_E_NOMEM);
    printf("%s\n", s);
    free(s);
    return 0;
}

/* ---- sub-command tables -------------------------------------------------------------------- */

int cli_dispatch(const char *cmd, const char *summary, const cli_sub *subs, size_t n, int argc, char **argv)
{
    bool help = argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
                              strcmp(argv[1], "help") == 0);
    FILE *f = help ? stdout : stderr;

    if (argc >= 2 && !help)
        for (size_t i = 0; i < n; i++)
            if (strcmp(argv[1], subs[i].name) == 0)
                return subs[i].run(argc - 1, argv + 1);
    if (argc >= 2 && !help) {
        fprintf(stderr, "coffer %s: unknown sub-command '", cmd);
        put_safe(stderr, argv[1], 64);
        fprintf(stderr, "'\n\n");
    }
    fprintf(f, "%s\n\n", summary);
    for (size_t i = 0; i < n; i++)
        fprintf(f, "  coffer %s %s\n", cmd, subs[i].synopsis);
    fprintf(f, "\nRun 'coffer %s <sub-command> --help' for its options.\n", cmd);
    return help ? CLI_EXIT_OK : CLI_EXIT_USAGE;
}

/* ---- argument parsing ---------------------------------------------------------------------- */

#define MAX_OWN_OPTS 24
#define OWN_OPT_BASE 0x100

bool cli_parse(const char *prog, const char *usage, int argc, char **argv, const cli_opt *opts, size_t nopts,
               const char **pos, size_t npos, cli_conn *conn, int *ret_exit)
{
    static const struct option common[] = {CLI_CONN_OPTIONS};
    struct option lo[MAX_OWN_OPTS + CF_ARRAY_LEN(common) + 1];
    size_t n = 0;
    int c, rc;

    memset(conn, 0, sizeof(*conn));
    *ret_exit = CLI_EXIT_USAGE;
    if (nopts > MAX_OWN_OPTS)
        return false;
    for (size_t i = 0; i < nopts; i++)
        lo[n++] = (struct option){opts[i].name, opts[i].kind == CLI_ARG_FLAG ? no_argument : required_argument,
                                  NULL, OWN_OPT_BASE + (int)i};
    for (size_t i = 0; i < CF_ARRAY_LEN(common); i++)
        lo[n++] = common[i];
    lo[n] = (struct option){NULL, 0, NULL, 0};
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        if (c >= OWN_OPT_BASE && c < OWN_OPT_BASE + (int)nopts) {
            const cli_opt *o = &opts[c - OWN_OPT_BASE];
            if (o->kind == CLI_ARG_STR) {
                *(const char **)o->dst = optarg;
            } else if (o->kind == CLI_ARG_FLAG) {
                *(bool *)o->dst = true;
            } else {
                cli_list *l = o->dst;
                if (l->n >= l->max) {
                    cli_usage_error(prog, "--%s may be given at most %zu times", o->name, l->max);
                    return false;
                }
                l->items[l->n++] = optarg;
            }
            continue;
        }
        rc = cli_conn_opt(prog, conn, c, optarg);
        if (rc < 0)
            return false;
        if (rc == 0) { /* getopt_long has named the unknown option */
            fprintf(stderr, "(see '%s --help')\n", prog);
            return false;
        }
    }
    if (conn->help) {
        printf("usage: %s\n\n%s", usage, cli_conn_help);
        *ret_exit = CLI_EXIT_OK;
        return false;
    }
    if ((size_t)(argc - optind) != npos) {
        if ((size_t)(argc - optind) > npos)
            cli_usage_error(prog, "unexpected argument '%s'", argv[optind + (int)npos]);
        else
            cli_usage_error(prog, "missing argument: usage: %s", usage);
        return false;
    }
    for (size_t i = 0; i < npos; i++)
        pos[i] = argv[optind + (int)i];
    return true;
}

/* ---- one-call commands --------------------------------------------------------------------- */

int cli_oom(const char *prog)
{
    errf(prog, "out of memory");
    return CLI_EXIT_SERVICE;
}

static int print_answer(const char *prog, const cli_conn *conn, const json_t *o, const char *list_key,
                        const cli_col *cols, size_t ncols)
{
    if (conn->json)
        return cli_print_json(o) == 0 ? CLI_EXIT_OK : cli_oom(prog);
    if (list_key != NULL)
        cli_print_table(json_object_get(o, list_key), cols, ncols);
    else
        cli_print_object(o, cols, ncols);
    return CLI_EXIT_OK;
}

int cli_simple(const char *prog, const cli_conn *conn, const char *method, const char *path, json_t *body,
               const char *list_key, const cli_col *cols, size_t ncols)
{
    cli_api *a = NULL;
    json_t *o = NULL;
    int st = CLI_EXIT_SERVICE;

    if (cli_api_new(prog, conn, &a, &st) < 0)
        goto out;
    if (cli_api_call(a, method, path, body, false, &o) < 0) {
        st = cli_api_exit(a);
        goto out;
    }
    st = print_answer(prog, conn, o, list_key, cols, ncols);
out:
    json_decref(o);
    json_decref(body);
    cli_api_free(a);
    return st;
}

int cli_simple_list(const char *prog, const cli_conn *conn, const char *path, const char *key, unsigned page,
                    const cli_col *cols, size_t ncols)
{
    cli_api *a = NULL;
    json_t *o = NULL;
    int st = CLI_EXIT_SERVICE;

    if (cli_api_new(prog, conn, &a, &st) < 0)
        goto out;
    if (cli_api_list(a, path, key, page, &o) < 0) {
        st = cli_api_exit(a);
        goto out;
    }
    st = print_answer(prog, conn, o, key, cols, ncols);
out:
    json_decref(o);
    cli_api_free(a);
    return st;
}

/* ---- files --------------------------------------------------------------------------------- */

int cli_write_new_file(const char *prog, const char *path, const void *data, size_t len, unsigned mode)
{
    char tmp[4096];
    const char *slash = strrchr(path, '/');
    size_t dirlen = slash != NULL ? (size_t)(slash - path) + 1 : 0;
    const uint8_t *p = data;
    int fd = -1, rc = 0;

    if (cf_fmt(tmp, sizeof(tmp), "%.*s.coffer-tmp-XXXXXX", (int)dirlen, path) != 0) {
        errf(prog, "path too long: %s", path);
        return CF_E_INVAL;
    }
    fd = mkstemp(tmp);
    if (fd < 0) {
        errf(prog, "cannot create a file next to %s: %s", path, strerror(errno));
        return CF_E_IO;
    }
    if (fchmod(fd, (mode_t)mode) != 0)
        rc = CF_E_IO;
    while (rc == 0 && len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            rc = CF_E_IO;
            break;
        }
        p += n;
        len -= (size_t)n;
    }
    if (rc == 0 && fsync(fd) != 0)
        rc = CF_E_IO;
    if (close(fd) != 0 && rc == 0)
        rc = CF_E_IO;
    if (rc != 0) {
        errf(prog, "cannot write %s: %s", tmp, strerror(errno));
    } else if (link(tmp, path) != 0) {
        rc = errno == EEXIST ? CF_E_EXISTS : CF_E_IO;
        errf(prog, "cannot create %s: %s", path, errno == EEXIST ? "the file exists (not replaced)" : strerror(errno));
    }
    (void)unlink(tmp);
    return rc;
}
