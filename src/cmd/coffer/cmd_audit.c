/*
 * coffer audit verify [options]   check the audit log: signed tree heads, inclusion, consistency
 * coffer audit tail [options]     list the newest entries (--follow: keep listing)
 *
 * verify (docs/internals/audit-service.md "coffer audit verify") trusts only
 * the tree-head public key — given with --public-key, pinned in the state
 * file, or, the first time, the key the service presents (trust on first use,
 * with a warning) — and the tree head it saw last time (the state file,
 * default ~/.config/coffer/audit-sth.json). It fetches a fresh signed tree head,
 * every entry the caller may see with its inclusion proof in that head, and
 * the consistency proof from the saved head, and runs the library verifier
 * (src/auditlog/verify.h) over them: with an auditor's or platform admin's
 * token the view is complete (every entry, so each signed root is recomputed
 * from the entries); with a tenant's token, each of the tenant's entries is
 * proven to be in the signed tree. Every problem is named ("entry 17 does not
 * match the signed tree head ..."). Only a clean result updates the state.
 *
 * Exit status: 0 verified; 1 tampering found, or the platform refused the
 * credentials; 2 usage; 3 unreadable input (key, state file, credentials);
 * 4 the service could not be reached or answered nonsense.
 */
#include <errno.h>
#include <getopt.h>
#include <libgen.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "auditlog/sth.h"
#include "auditlog/verify.h"
#include "base/buf.h"
#include "base/err.h"
#include "base/file.h"
#include "base/json.h"
#include "base/limits.h"
#include "base/parse.h"
#include "base/secmem.h"
#include "cli.h"
#include "crypto/jose.h"
#include "crypto/keys.h"
#include "token.h"

#define PAGE 1000
#define TIMEOUT_MS 60000
#define STATE_VERSION 1

/* ---- connection ---------------------------------------------------------------------- */

typedef struct {
    const char *url;
    const char *ca;
    const char *api_key_file;
    cf_http_client *c;
    char *token; /* secret memory */
} conn;

static const char *env_or(const char *v, const char *name)
{
    const char *e;

    if (v != NULL)
        return v;
    e = getenv(name);
    return e != NULL && e[0] != '\0' ? e : NULL;
}

static void conn_close(conn *k)
{
    cf_secure_free(k->token);
    cf_http_client_free(k->c);
    k->token = NULL;
    k->c = NULL;
}

static int conn_open(conn *k)
{
    cf_http_client_opts o;

    memset(&o, 0, sizeof(o));
    o.base_url = k->url;
    o.ca_file = k->ca;
    o.timeout_ms = TIMEOUT_MS;
    o.max_response = CF_AUDIT_CLI_MAX_RESPONSE;
    CF_GUARD(cf_http_client_new(&o, &k->c));
    return cli_token(k->c, k->api_key_file, NULL, &k->token);
}

/* Exit status for a failure talking to the platform. */
static int service_exit(int rc)
{
    switch (rc) {
    case CF_E_UNAUTHENTICATED:
    case CF_E_FORBIDDEN:
    case CF_E_EXPIRED:
        return CLI_EXIT_FAILED;
    case CF_E_NOT_FOUND: /* no credentials configured */
    case CF_E_CONFIG:
        return CLI_EXIT_INPUT;
    default:
        return CLI_EXIT_SERVICE;
    }
}

/* GET path -> the JSON object of a 200 answer. A 401 with a renewable
 * credential fetches a new token once (tokens are short-lived: --follow). */
static int api_get(conn *k, const char *path, json_t **ret)
{
    cf_http_response resp;
    int rc;

    for (int attempt = 0;; attempt++) {
        cf_http_request rq = {.method = "GET", .path = path, .bearer = k->token};
        memset(&resp, 0, sizeof(resp));
        CF_GUARD(cf_http_client_do(k->c, &rq, &resp));
        if (resp.status == 401 && attempt == 0 && cli_token_renewable(k->api_key_file)) {
            cf_http_response_free(&resp);
            cf_secure_free(k->token);
            k->token = NULL;
            CF_GUARD(cli_token(k->c, k->api_key_file, NULL, &k->token));
            continue;
        }
        break;
    }
    if (resp.status != 200) {
        json_t *e = NULL;
        const char *msg = NULL;
        if (cf_json_parse_object(resp.body.data, resp.body.len, CF_HTTP_MAX_BODY, &e) == 0)
            msg = json_string_value(json_object_get(json_object_get(e, "error"), "message"));
        rc = cf_err_set(resp.status == 401   ? CF_E_UNAUTHENTICATED
                        : resp.status == 403 ? CF_E_FORBIDDEN
                                             : CF_E_UNAVAILABLE,
                        "GET %.200s: HTTP %ld: %.300s", path, resp.status, msg != NULL ? msg : "(no message)");
        json_decref(e);
        cf_http_response_free(&resp);
        return rc;
    }
    rc = cf_json_parse_object(resp.body.data, resp.body.len, CF_AUDIT_CLI_MAX_RESPONSE, ret);
    cf_http_response_free(&resp);
    if (rc != 0)
        return cf_err_set(CF_E_UNAVAILABLE, "GET %.200s: the answer is not valid JSON: %s", path, cf_err_detail(rc));
    return 0;
}

/* Appends &name=value with value percent-encoded (RFC 3986 §2.1: all but unreserved). */
static int add_param(cf_buf *q, const char *name, const char *value)
{
    static const char hex[] = "0123456789ABCDEF";

    CF_GUARD(cf_buf_printf(q, "%s%s=", q->len > 0 ? "&" : "", name));
    for (const unsigned char *p = (const unsigned char *)value; *p; p++) {
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '-' ||
            *p == '.' || *p == '_' || *p == '~')
            CF_GUARD(cf_buf_put_u8(q, *p));
        else
            CF_GUARD(cf_buf_printf(q, "%%%c%c", hex[*p >> 4], hex[*p & 15]));
    }
    return 0;
}

/* ---- keys ------------------------------------------------------------------------------- */

/* A tree-head public key: a JWK, the service's public-key answer, PEM, or base64url. */
static int key_from_text(const char *text, size_t len, cf_key **ret)
{
    cf_key *k = NULL;
    json_t *j = NULL;
    cf_buf b;
    int rc;

    while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == '\r' || text[len - 1] == ' '))
        len--;
    while (len > 0 && (text[0] == ' ' || text[0] == '\n')) {
        text++;
        len--;
    }
    cf_buf_init(&b, 64);
    if (len > 0 && text[0] == '{') {
        CF_GUARD_OUT(cf_json_parse_object(text, len, CF_AUDIT_CLI_MAX_KEY_TEXT, &j));
        if (json_object_get(j, "kty") != NULL) {
            char *kid = NULL;
            rc = cf_jwk_from_json(j, &k, &kid);
            free(kid);
            CF_GUARD_OUT(rc);
        } else if (json_object_get(j, "jwk") != NULL) {
            char *kid = NULL;
            rc = cf_jwk_from_json(json_object_get(j, "jwk"), &k, &kid);
            free(kid);
            CF_GUARD_OUT(rc);
        } else {
            CF_GUARD_OUT(cf_json_get_b64url(j, "public_key", true, CF_ED25519_LEN, &b));
            CF_GUARD_OUT(cf_key_from_public(CF_KEY_ED25519, b.data, b.len, &k));
        }
    } else if (len > 10 && strncmp(text, "-----BEGIN", 10) == 0) {
        CF_GUARD_OUT(cf_key_from_public_pem(text, len, &k));
    } else {
        rc = cf_b64url_decode(text, len, &b);
        if (rc != 0 || b.len != CF_ED25519_LEN) {
            rc = cf_err_set(CF_E_PARSE, "not a JWK, a PEM public key or a base64url Ed25519 key");
            goto out;
        }
        CF_GUARD_OUT(cf_key_from_public(CF_KEY_ED25519, b.data, b.len, &k));
    }
    if (cf_key_get_type(k) != CF_KEY_ED25519) {
        rc = cf_err_set(CF_E_UNSUPPORTED, "the tree-head key must be an Ed25519 key");
        goto out;
    }
    *ret = k;
    k = NULL;
    rc = 0;
out:
    cf_key_free(k);
    json_decref(j);
    cf_buf_free(&b);
    return rc;
}

/* --public-key: a file holding a key, or the key itself. */
static int key_from_arg(const char *arg, cf_key **ret)
{
    struct stat st;
    cf_buf b;
    int rc;

    if (stat(arg, &st) != 0)
        return key_from_text(arg, strlen(arg), ret);
    cf_buf_init(&b, CF_AUDIT_CLI_MAX_KEY_TEXT);
    rc = cf_file_read(arg, CF_AUDIT_CLI_MAX_KEY_TEXT, &b);
    if (rc == 0)
        rc = key_from_text((const char *)b.data, b.len, ret);
    cf_buf_free(&b);
    return rc;
}

static int key_b64(const cf_key *k, char out[64])
{
    uint8_t pub[CF_ED25519_LEN];
    size_t n = 0;

    CF_GUARD(cf_key_export_public(k, pub, sizeof(pub), &n));
    CF_ENSURE(n == sizeof(pub), CF_E_INTERNAL);
    cf_b64url_encode(pub, n, out);
    return 0;
}

/* ---- state: the pinned key and the last verified tree head ---------------------------------- */

/* The log is identified by its key, not by where it was reached (a gateway, the
 * service itself, another port): "url" is kept for the reader's information. */
typedef struct {
    bool have;
    char url[CF_HTTP_MAX_URL + 1];
    cf_key *key;
    bool have_sth;
    cf_audit_sth sth;
} state;

static int default_state_path(char *out, size_t size)
{
    const char *xdg = getenv("XDG_CONFIG_HOME"), *home = getenv("HOME");
    struct passwd *pw;

    /* XDG Base Directory Specification: a relative XDG_CONFIG_HOME is ignored. */
    if (xdg != NULL && xdg[0] == '/')
        return cf_fmt(out, size, "%s/coffer/audit-sth.json", xdg);
    if (home == NULL || home[0] != '/') {
        pw = getpwuid(getuid());
        home = pw != NULL ? pw->pw_dir : NULL;
    }
    CF_ENSURE(home != NULL && home[0] == '/', cf_err_set(CF_E_CONFIG, "no home directory: give --state FILE"));
    return cf_fmt(out, size, "%s/.config/coffer/audit-sth.json", home);
}

static int state_load(const char *path, state *ret)
{
    static const char *const keys[] = {"version", "url", "public_key", "sth", NULL};
    state s;
    cf_buf b, kb;
    json_t *j = NULL, *sth = NULL;
    const char *url = NULL;
    uint64_t version = 0;
    int rc;

    memset(&s, 0, sizeof(s));
    cf_buf_init(&b, CF_AUDIT_CLI_MAX_STATE);
    cf_buf_init(&kb, 64);
    rc = cf_file_read(path, CF_AUDIT_CLI_MAX_STATE, &b);
    if (rc == CF_E_NOT_FOUND) {
        *ret = s;
        rc = 0;
        goto out;
    }
    CF_GUARD_OUT(rc);
    CF_GUARD_OUT(cf_json_parse_object(b.data, b.len, CF_AUDIT_CLI_MAX_STATE, &j));
    CF_GUARD_OUT(cf_json_only_keys(j, keys));
    CF_GUARD_OUT(cf_json_get_u64(j, "version", true, 1000, &version));
    CF_ENSURE_OUT(version == STATE_VERSION, cf_err_set(CF_E_UNSUPPORTED, "state version %llu is not supported",
                                                      (unsigned long long)version));
    CF_GUARD_OUT(cf_json_get_str(j, "url", true, CF_HTTP_MAX_URL, &url));
    CF_GUARD_OUT(cf_fmt(s.url, sizeof(s.url), "%s", url));
    CF_GUARD_OUT(cf_json_get_b64url(j, "public_key", true, CF_ED25519_LEN, &kb));
    CF_GUARD_OUT(cf_key_from_public(CF_KEY_ED25519, kb.data, kb.len, &s.key));
    CF_GUARD_OUT(cf_json_get_obj(j, "sth", false, &sth));
    if (sth != NULL) {
        CF_GUARD_OUT(cf_audit_sth_from_json(sth, &s.sth));
        s.have_sth = true;
    }
    s.have = true;
    *ret = s;
    s.key = NULL;
    rc = 0;
out:
    cf_key_free(s.key);
    json_decref(j);
    cf_buf_free(&b);
    cf_buf_free(&kb);
    return rc;
}

static int state_save(const char *path, const char *url, const cf_key *key, const cf_audit_sth *sth)
{
    char b64[64], dir[4096];
    json_t *o = NULL, *js = NULL;
    char *text = NULL;
    int rc;

    CF_GUARD(key_b64(key, b64));
    CF_GUARD(cf_audit_sth_to_json(sth, &js));
    o = json_pack("{s:i,s:s,s:s,s:o}", "version", STATE_VERSION, "url", url, "public_key", b64, "sth", js);
    CF_ENSURE(o != NULL, CF_E_NOMEM);
    text = json_dumps(o, JSON_INDENT(2) | JSON_SORT_KEYS);
    CF_ENSURE_OUT(text != NULL, CF_E_NOMEM);
    CF_GUARD_OUT(cf_fmt(dir, sizeof(dir), "%s", path));
    CF_GUARD_OUT(cf_mkdirs(dirname(dir), 0700));
    CF_GUARD_OUT(cf_file_write_atomic(path, text, strlen(text), 0600));
out:
    free(text);
    json_decref(o);
    return rc;
}

/* ---- entries fetched for verification ------------------------------------------------------------ */

typedef struct {
    cf_audit_vitem *items;
    uint8_t **bufs; /* entry bytes and proofs, owned */
    size_t n, cap, nbufs;
    char scope[16];
    char tenant[CF_ID_MAX_LEN + 1];
} fetched;

static void fetched_free(fetched *f)
{
    for (size_t i = 0; i < f->nbufs; i++)
        free(f->bufs[i]);
    free(f->bufs);
    free(f->items);
    memset(f, 0, sizeof(*f));
}

static int fetched_grow(fetched *f)
{
    size_t cap = f->cap ? f->cap * 2 : 1024;
    cf_audit_vitem *it;
    uint8_t **b;

    CF_ENSURE(f->n < CF_AUDIT_MAX_VERIFY_ENTRIES,
              cf_err_set(CF_E_TOO_LARGE, "more than %u entries: too many to verify in memory",
                         (unsigned)CF_AUDIT_MAX_VERIFY_ENTRIES));
    it = realloc(f->items, cap * sizeof(*it));
    CF_ENSURE(it != NULL, CF_E_NOMEM);
    f->items = it;
    b = realloc(f->bufs, 2 * cap * sizeof(*b));
    CF_ENSURE(b != NULL, CF_E_NOMEM);
    f->bufs = b;
    f->cap = cap;
    return 0;
}

static uint8_t *keep(fetched *f, const void *p, size_t n)
{
    uint8_t *c = malloc(n > 0 ? n : 1);

    if (c == NULL)
        return NULL;
    if (n > 0)
        memcpy(c, p, n);
    f->bufs[f->nbufs++] = c;
    return c;
}

/* One entry of a page: its exact bytes ("entry" text or "entry_b64") and proof. */
static int add_entry(fetched *f, const json_t *o)
{
    const json_t *s = json_object_get(o, "entry"), *pr = json_object_get(o, "proof");
    cf_audit_vitem it;
    uint64_t seq = 0;
    cf_buf b;
    int rc;

    memset(&it, 0, sizeof(it));
    cf_buf_init(&b, CF_AUDIT_MAX_STORED_ENTRY);
    if (f->n == f->cap)
        CF_GUARD_OUT(fetched_grow(f));
    CF_GUARD_OUT(cf_json_get_u64(o, "seq", true, CF_MERKLE_MAX_SIZE, &seq));
    it.seq = seq;
    if (json_is_string(s)) {
        it.entry = keep(f, json_string_value(s), json_string_length(s));
        it.entry_len = json_string_length(s);
    } else {
        CF_GUARD_OUT(cf_json_get_b64url(o, "entry_b64", true, CF_AUDIT_MAX_STORED_ENTRY, &b));
        it.entry = keep(f, b.data, b.len);
        it.entry_len = b.len;
    }
    CF_ENSURE_OUT(it.entry != NULL, CF_E_NOMEM);
    if (pr != NULL) {
        cf_merkle_proof p;
        CF_GUARD_OUT(cf_audit_proof_from_json(pr, &p));
        it.proof = (const uint8_t(*)[CF_MERKLE_HASH_LEN])keep(f, p.h, p.len * CF_MERKLE_HASH_LEN);
        CF_ENSURE_OUT(it.proof != NULL, CF_E_NOMEM);
        it.proof_len = p.len;
        it.has_proof = true;
    }
    f->items[f->n++] = it;
    rc = 0;
out:
    cf_buf_free(&b);
    return rc;
}

/* Every entry visible to the caller below the head, with inclusion proofs in it. */
static int fetch_entries(conn *k, uint64_t size, bool progress, fetched *f)
{
    bool more = true, have_after = false;
    uint64_t after = 0;
    char path[160];

    while (more) {
        json_t *j = NULL, *arr;
        const char *scope = NULL, *tenant = NULL;
        bool stop = false;
        int rc;
        if (have_after)
            CF_GUARD(cf_fmt(path, sizeof(path), "/v1/audit/entries?limit=%d&tree_size=%llu&after=%llu", PAGE,
                            (unsigned long long)size, (unsigned long long)after));
        else if (size > 0)
            CF_GUARD(cf_fmt(path, sizeof(path), "/v1/audit/entries?limit=%d&tree_size=%llu", PAGE,
                            (unsigned long long)size));
        else
            CF_GUARD(cf_fmt(path, sizeof(path), "/v1/audit/entries?limit=1"));
        CF_GUARD(api_get(k, path, &j));
        rc = cf_json_get_str(j, "scope", true, 8, &scope);
        if (rc == 0)
            rc = cf_json_get_str(j, "tenant", false, CF_ID_MAX_LEN, &tenant);
        if (rc == 0)
            rc = cf_fmt(f->scope, sizeof(f->scope), "%s", scope);
        if (rc == 0)
            rc = cf_fmt(f->tenant, sizeof(f->tenant), "%s", tenant != NULL ? tenant : "");
        arr = json_object_get(j, "entries");
        if (rc == 0 && !json_is_array(arr))
            rc = cf_err_set(CF_E_PARSE, "no entries array");
        for (size_t i = 0; rc == 0 && i < json_array_size(arr) && size > 0; i++) {
            const json_t *e = json_array_get(arr, i);
            if (json_integer_value(json_object_get(e, "seq")) >= (json_int_t)size) {
                stop = true; /* appended after the head: not covered by it */
                break;
            }
            rc = add_entry(f, e);
        }
        more = rc == 0 && size > 0 && !stop && json_is_true(json_object_get(j, "more"));
        if (more) {
            uint64_t next = 0;
            rc = cf_json_get_u64(j, "next", true, CF_MERKLE_MAX_SIZE, &next);
            /* a log that pages backwards or in place would keep us here forever */
            if (rc == 0 && have_after && next <= after)
                rc = cf_err_set(CF_E_PARSE, "the entries' paging does not advance");
            after = next;
            have_after = true;
        }
        json_decref(j);
        if (rc != 0)
            return cf_err_set(CF_E_UNAVAILABLE, "GET %s: unexpected answer: %s", path, cf_err_detail(rc));
        if (progress)
            fprintf(stderr, "\rfetching entries: %zu (tree size %llu)", f->n, (unsigned long long)size);
    }
    if (progress)
        fprintf(stderr, "\r\033[K");
    return 0;
}

/* ---- verify ---------------------------------------------------------------------------------------- */

static void verify_usage(FILE *f)
{
    fprintf(f,
            "usage: coffer audit verify [--url URL] [--ca FILE] [--public-key FILE|B64] [--state FILE] [--json]\n"
            "\n"
            "Checks the audit log: the signed tree head's signature, every entry you may see\n"
            "against it (inclusion proofs; with an auditor's or platform admin's token every\n"
            "entry, so each signed root is recomputed), and its consistency with the tree head\n"
            "saved by the last verification.\n"
            "\n"
            "  --url URL            gateway or audit service (default: $COFFER_GATEWAY_URL)\n"
            "  --ca FILE            CA certificate (PEM) to trust for the URL (default: $COFFER_CA)\n"
            "  --public-key KEY     the log's tree-head key: a file (JWK, PEM, or the service's\n"
            "                       /v1/audit/public-key answer) or base64url; default: the key\n"
            "                       pinned in the state file, else trust on first use\n"
            "  --state FILE         last verified tree head and pinned key\n"
            "                       (default: ~/.config/coffer/audit-sth.json)\n"
            "  --api-key-file FILE  API key (default: $COFFER_API_KEY; or $COFFER_ACCESS_TOKEN)\n"
            "  --json               machine-readable result\n"
            "\n"
            "Exit status: 0 verified, 1 tampering found or credentials refused, 2 usage,\n"
            "3 unreadable input, 4 service unreachable or failing.\n");
}

static void hex32(const uint8_t *h, char out[65]) { cf_hex_encode(h, 32, out); }

static int print_json_result(const cf_audit_report *rep, bool ok, const fetched *f, const cf_audit_sth *head,
                             const state *st)
{
    json_t *o, *arr = json_array();
    char root[65];
    char *text;

    hex32(head->root, root);
    if (arr == NULL)
        return CF_E_NOMEM;
    for (size_t i = 0; rep != NULL && i < rep->n; i++) {
        const cf_audit_finding *x = &rep->findings[i];
        json_t *e = json_pack("{s:s,s:s,s:I,s:I,s:I}", "kind", cf_audit_finding_name(x->kind), "message", x->message,
                              "first", (json_int_t)x->first, "last", (json_int_t)x->last, "sth_id",
                              (json_int_t)x->sth_id);
        if (e == NULL || json_array_append_new(arr, e) != 0) {
            json_decref(arr);
            return CF_E_NOMEM;
        }
    }
    o = json_pack("{s:b,s:I,s:I,s:s,s:s,s:o,s:I}", "ok", ok, "entries", (json_int_t)f->n, "tree_size",
                  (json_int_t)head->size, "root", root, "scope", f->scope, "findings", arr, "findings_total",
                  (json_int_t)(rep != NULL ? rep->total : 0));
    if (o == NULL)
        return CF_E_NOMEM;
    if (st->have_sth && json_object_set_new(o, "previous_size", json_integer((json_int_t)st->sth.size)) != 0) {
        json_decref(o);
        return CF_E_NOMEM;
    }
    if (f->tenant[0] != '\0' && json_object_set_new(o, "tenant", json_string(f->tenant)) != 0) {
        json_decref(o);
        return CF_E_NOMEM;
    }
    text = json_dumps(o, JSON_INDENT(2) | JSON_SORT_KEYS);
    json_decref(o);
    if (text == NULL)
        return CF_E_NOMEM;
    printf("%s\n", text);
    free(text);
    return 0;
}

static int cmd_verify(int argc, char **argv)
{
    enum { O_URL = 256, O_CA, O_KEY, O_STATE, O_JSON, O_APIKEY, O_HELP };
    static const struct option opts[] = {{"url", required_argument, NULL, O_URL},
                                         {"ca", required_argument, NULL, O_CA},
                                         {"public-key", required_argument, NULL, O_KEY},
                                         {"state", required_argument, NULL, O_STATE},
                                         {"json", no_argument, NULL, O_JSON},
                                         {"api-key-file", required_argument, NULL, O_APIKEY},
                                         {"help", no_argument, NULL, O_HELP},
                                         {NULL, 0, NULL, 0}};
    conn k;
    state st;
    fetched f;
    cf_key *key = NULL, *given = NULL;
    cf_audit_sth head, sths[2];
    cf_merkle_proof cons;
    const cf_merkle_proof *cons_list[1] = {NULL};
    cf_audit_verify_input in;
    cf_audit_report rep;
    const char *key_arg = NULL, *state_arg = NULL;
    char state_path[4096], path[160], root[65], b64a[64], b64b[64];
    bool json = false, tofu = false, rep_set = false, progress;
    json_t *j = NULL;
    int c, rc, status = CLI_EXIT_USAGE;

    memset(&k, 0, sizeof(k));
    memset(&st, 0, sizeof(st));
    memset(&f, 0, sizeof(f));
    memset(&rep, 0, sizeof(rep));
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case O_URL: k.url = optarg; break;
        case O_CA: k.ca = optarg; break;
        case O_KEY: key_arg = optarg; break;
        case O_STATE: state_arg = optarg; break;
        case O_JSON: json = true; break;
        case O_APIKEY: k.api_key_file = optarg; break;
        case 'h':
        case O_HELP: verify_usage(stdout); return CLI_EXIT_OK;
        default: verify_usage(stderr); return CLI_EXIT_USAGE;
        }
    }
    k.url = env_or(k.url, "COFFER_GATEWAY_URL");
    k.ca = env_or(k.ca, "COFFER_CA");
    if (optind != argc || k.url == NULL) {
        fprintf(stderr, "coffer audit verify: %s\n", k.url == NULL ? "--url (or COFFER_GATEWAY_URL) is required"
                                                                   : "unexpected argument");
        verify_usage(stderr);
        return CLI_EXIT_USAGE;
    }
    progress = !json && isatty(STDERR_FILENO);
    status = CLI_EXIT_INPUT;
    rc = state_arg != NULL ? cf_fmt(state_path, sizeof(state_path), "%s", state_arg)
                           : default_state_path(state_path, sizeof(state_path));
    if (rc == 0)
        rc = state_load(state_path, &st);
    if (rc != 0) {
        fprintf(stderr, "coffer audit verify: state file %s: %s\n", state_path, cf_err_detail(rc));
        goto out;
    }
    if (key_arg != NULL) {
        rc = key_from_arg(key_arg, &given);
        if (rc != 0) {
            fprintf(stderr, "coffer audit verify: --public-key: %s\n", cf_err_detail(rc));
            goto out;
        }
        if (st.have && !cf_key_public_eq(given, st.key)) {
            fprintf(stderr, "coffer audit verify: --public-key differs from the key pinned in %s; the saved tree "
                            "head was checked with that key (use another --state to start over)\n", state_path);
            goto out;
        }
        key = given;
    } else if (st.have) {
        key = st.key;
    }

    status = CLI_EXIT_SERVICE;
    rc = conn_open(&k);
    if (rc != 0) {
        fprintf(stderr, "coffer audit verify: %s\n", cf_err_detail(rc));
        status = service_exit(rc);
        goto out;
    }
    if (key == NULL) {
        /* Trust on first use: the key the service presents now, pinned from here on. */
        rc = api_get(&k, "/v1/audit/public-key", &j);
        if (rc == 0) {
            char *t = cf_json_dump(j);
            rc = t != NULL ? key_from_text(t, strlen(t), &given) : CF_E_NOMEM;
            free(t);
        }
        json_decref(j);
        j = NULL;
        if (rc != 0) {
            fprintf(stderr, "coffer audit verify: the service's public key: %s\n", cf_err_detail(rc));
            status = service_exit(rc);
            goto out;
        }
        key = given;
        tofu = true;
        if (key_b64(key, b64a) == 0)
            fprintf(stderr,
                    "warning: no tree-head key is pinned: trusting the key the service presents now (%s)\n"
                    "         and pinning it in %s. Compare it with the key published by the platform operator.\n",
                    b64a, state_path);
    }

    /* the head, the entries, the consistency proof from the saved head */
    rc = api_get(&k, "/v1/audit/sth?fresh=1", &j);
    if (rc == 0)
        rc = cf_audit_sth_from_json(j, &head);
    json_decref(j);
    j = NULL;
    if (rc != 0) {
        fprintf(stderr, "coffer audit verify: tree head: %s\n", cf_err_detail(rc));
        status = service_exit(rc);
        goto out;
    }
    rc = fetch_entries(&k, head.size, progress, &f);
    if (rc != 0) {
        fprintf(stderr, "coffer audit verify: entries: %s\n", cf_err_detail(rc));
        status = service_exit(rc);
        goto out;
    }
    memset(&in, 0, sizeof(in));
    if (st.have_sth) {
        sths[0] = st.sth;
        sths[1] = head;
        if (st.sth.size > 0 && st.sth.size < head.size) {
            rc = cf_fmt(path, sizeof(path), "/v1/audit/proof/consistency?first=%llu&second=%llu",
                        (unsigned long long)st.sth.size, (unsigned long long)head.size);
            if (rc == 0)
                rc = api_get(&k, path, &j);
            if (rc == 0)
                rc = cf_audit_proof_from_json(json_object_get(j, "proof"), &cons);
            json_decref(j);
            j = NULL;
            if (rc != 0) {
                fprintf(stderr, "coffer audit verify: consistency proof: %s\n", cf_err_detail(rc));
                status = service_exit(rc);
                goto out;
            }
            cons_list[0] = &cons;
        }
        in.sths = sths;
        in.nsths = 2;
        in.consistency = cons_list;
    } else {
        in.sths = &head;
        in.nsths = 1;
    }
    in.key = key;
    in.items = f.items;
    in.nitems = f.n;
    in.complete = strcmp(f.scope, "all") == 0;
    rc = cf_audit_verify(&in, &rep);
    if (rc != 0 && rc != CF_E_VERIFY) {
        fprintf(stderr, "coffer audit verify: cannot verify: %s\n", cf_err_detail(rc));
        status = CLI_EXIT_SERVICE;
        goto out;
    }
    rep_set = true;
    hex32(head.root, root);
    if (json) {
        if (print_json_result(&rep, rc == 0, &f, &head, &st) != 0) {
            status = CLI_EXIT_SERVICE;
            goto out;
        }
    } else if (rc == 0) {
        if (st.have_sth)
            printf("✓ %zu entries, tree size %llu, root %s: consistent with the tree head seen at size %llu\n", f.n,
                   (unsigned long long)head.size, root, (unsigned long long)st.sth.size);
        else
            printf("✓ %zu entries, tree size %llu, root %s: first verification, tree head saved\n", f.n,
                   (unsigned long long)head.size, root);
        if (!in.complete)
            printf("  scope: tenant %s — each of its entries is proven to be in the signed tree; other tenants' "
                   "entries are not visible to this token\n",
                   f.tenant);
    } else {
        printf("✗ the audit log FAILED verification: %zu problem%s (tree size %llu, root %s)\n", rep.total,
               rep.total == 1 ? "" : "s", (unsigned long long)head.size, root);
        for (size_t i = 0; i < rep.n; i++)
            printf("  %s: %s\n", cf_audit_finding_name(rep.findings[i].kind), rep.findings[i].message);
        if (rep.total > rep.n)
            printf("  ... and %zu more\n", rep.total - rep.n);
    }
    if (rc != 0) {
        status = CLI_EXIT_FAILED;
        goto out;
    }
    /* only a clean result moves the saved head forward */
    rc = state_save(state_path, k.url, key, &head);
    if (rc != 0) {
        fprintf(stderr, "coffer audit verify: verified, but the state file %s could not be written: %s\n",
                state_path, cf_err_detail(rc));
        status = CLI_EXIT_INPUT;
        goto out;
    }
    if (tofu && !json && key_b64(key, b64b) == 0)
        fprintf(stderr, "pinned tree-head key %s in %s\n", b64b, state_path);
    status = CLI_EXIT_OK;
out:
    if (rep_set)
        cf_audit_report_free(&rep);
    fetched_free(&f);
    conn_close(&k);
    cf_key_free(given);
    cf_key_free(st.key);
    return status;
}

/* ---- tail ----------------------------------------------------------------------------------------------- */

static void tail_usage(FILE *f)
{
    fprintf(f,
            "usage: coffer audit tail [-n N] [--follow] [--tenant T] [--action A] [--tee ID] [--since TIME] [--json]\n"
            "\n"
            "Lists the newest audit entries you may see (a tenant's token: its own only).\n"
            "\n"
            "  -n, --lines N        how many (default %d); with --since: all since then\n"
            "  -f, --follow         keep listing new entries (every %d ms) until interrupted\n"
            "  --tenant T           only this tenant's entries\n"
            "  --action A           only this action (e.g. kms.otk.release)\n"
            "  --tee ID             only entries about this TEE\n"
            "  --since TIME         from this time (RFC 3339 or unix milliseconds)\n"
            "  --url URL            gateway or audit service (default: $COFFER_GATEWAY_URL)\n"
            "  --ca FILE            CA certificate (PEM) to trust for the URL (default: $COFFER_CA)\n"
            "  --api-key-file FILE  API key (default: $COFFER_API_KEY; or $COFFER_ACCESS_TOKEN)\n"
            "  --json               one JSON object per line: {\"seq\":N,\"event\":{...}}\n",
            CF_AUDIT_CLI_TAIL_DEFAULT, CF_AUDIT_CLI_FOLLOW_MS);
}

static const char *fstr(const json_t *ev, const char *key, const char *dflt)
{
    const char *s = json_string_value(json_object_get(ev, key));
    return s != NULL && s[0] != '\0' ? s : dflt;
}

/* Prints one entry of a page. */
static void print_entry(const json_t *e, bool json)
{
    const json_t *s = json_object_get(e, "entry");
    long long seq = (long long)json_integer_value(json_object_get(e, "seq"));
    json_t *ev = NULL;

    if (!json_is_string(s) ||
        cf_json_parse_object(json_string_value(s), json_string_length(s), CF_AUDIT_MAX_STORED_ENTRY, &ev) != 0) {
        if (json)
            printf("{\"seq\":%lld,\"event\":null}\n", seq);
        else
            printf("%lld  (damaged entry: not a JSON event)\n", seq);
        return;
    }
    if (json) {
        printf("{\"seq\":%lld,\"event\":%.*s}\n", seq, (int)json_string_length(s), json_string_value(s));
    } else {
        const char *res = fstr(ev, "resource", NULL);
        printf("%lld  %s  %s  %s  %s  tenant=%s  actor=%s%s%s\n", seq, fstr(ev, "ts", "?"), fstr(ev, "service", "?"),
               fstr(ev, "action", "?"), fstr(ev, "outcome", "?"), fstr(ev, "tenant", "-"), fstr(ev, "actor", "?"),
               res != NULL ? "  resource=" : "", res != NULL ? res : "");
    }
    json_decref(ev);
}

typedef struct {
    json_t **ring; /* the last n entries seen */
    size_t n, max, start;
    uint64_t last;
    bool have_last;
} tail_buf;

static void ring_push(tail_buf *t, json_t *e)
{
    json_incref(e);
    if (t->n < t->max) {
        t->ring[(t->start + t->n++) % t->max] = e;
    } else {
        json_decref(t->ring[t->start]);
        t->ring[t->start] = e;
        t->start = (t->start + 1) % t->max;
    }
}

/* Pages through the entries after `after` (if has_after) matching filters;
 * each one is printed (print) or kept in the ring. */
static int list_from(conn *k, const cf_buf *filters, bool has_after, uint64_t after, tail_buf *t, bool print,
                     bool json)
{
    bool more = true;
    char path[CF_HTTP_MAX_URL];

    while (more) {
        json_t *j = NULL, *arr;
        int rc;
        if (has_after)
            rc = cf_fmt(path, sizeof(path), "/v1/audit/entries?limit=%d&after=%llu%s%.*s", PAGE,
                        (unsigned long long)after, filters->len ? "&" : "", (int)filters->len,
                        (const char *)filters->data);
        else
            rc = cf_fmt(path, sizeof(path), "/v1/audit/entries?limit=%d%s%.*s", PAGE, filters->len ? "&" : "",
                        (int)filters->len, (const char *)filters->data);
        CF_GUARD(rc);
        CF_GUARD(api_get(k, path, &j));
        arr = json_object_get(j, "entries");
        for (size_t i = 0; i < json_array_size(arr); i++) {
            json_t *e = json_array_get(arr, i);
            if (print)
                print_entry(e, json);
            else
                ring_push(t, e);
            t->last = (uint64_t)json_integer_value(json_object_get(e, "seq"));
            t->have_last = true;
        }
        more = json_is_true(json_object_get(j, "more"));
        if (more) {
            uint64_t next = (uint64_t)json_integer_value(json_object_get(j, "next"));
            if (has_after && next <= after) {
                json_decref(j);
                return cf_err_set(CF_E_UNAVAILABLE, "the entries' paging does not advance");
            }
            after = next;
            has_after = true;
        }
        json_decref(j);
    }
    fflush(stdout);
    return 0;
}

static int cmd_tail(int argc, char **argv)
{
    enum { O_TENANT = 256, O_ACTION, O_TEE, O_SINCE, O_JSON, O_URL, O_CA, O_APIKEY, O_HELP };
    static const struct option opts[] = {{"lines", required_argument, NULL, 'n'},
                                         {"follow", no_argument, NULL, 'f'},
                                         {"tenant", required_argument, NULL, O_TENANT},
                                         {"action", required_argument, NULL, O_ACTION},
                                         {"tee", required_argument, NULL, O_TEE},
                                         {"since", required_argument, NULL, O_SINCE},
                                         {"json", no_argument, NULL, O_JSON},
                                         {"url", required_argument, NULL, O_URL},
                                         {"ca", required_argument, NULL, O_CA},
                                         {"api-key-file", required_argument, NULL, O_APIKEY},
                                         {"help", no_argument, NULL, O_HELP},
                                         {NULL, 0, NULL, 0}};
    conn k;
    tail_buf t;
    cf_buf filters;
    uint64_t lines = CF_AUDIT_CLI_TAIL_DEFAULT, size = 0, window;
    const char *since = NULL;
    bool follow = false, json = false;
    json_t *j = NULL;
    int c, rc = 0, status = CLI_EXIT_USAGE;

    memset(&k, 0, sizeof(k));
    memset(&t, 0, sizeof(t));
    cf_buf_init(&filters, CF_HTTP_MAX_URL / 2);
    optind = 1;
    while ((c = getopt_long(argc, argv, "n:fh", opts, NULL)) != -1) {
        switch (c) {
        case 'n':
            if (cf_parse_u64(optarg, 100000, &lines) != 0 || lines == 0) {
                fprintf(stderr, "coffer audit tail: -n must be 1..100000\n");
                goto out;
            }
            break;
        case 'f': follow = true; break;
        case O_TENANT: rc = add_param(&filters, "tenant", optarg); break;
        case O_ACTION: rc = add_param(&filters, "action", optarg); break;
        case O_TEE: rc = add_param(&filters, "tee_id", optarg); break;
        case O_SINCE:
            since = optarg;
            rc = add_param(&filters, "since", optarg);
            break;
        case O_JSON: json = true; break;
        case O_URL: k.url = optarg; break;
        case O_CA: k.ca = optarg; break;
        case O_APIKEY: k.api_key_file = optarg; break;
        case 'h':
        case O_HELP:
            tail_usage(stdout);
            status = CLI_EXIT_OK;
            goto out;
        default: tail_usage(stderr); goto out;
        }
        if (rc != 0) {
            fprintf(stderr, "coffer audit tail: filter too long\n");
            goto out;
        }
    }
    k.url = env_or(k.url, "COFFER_GATEWAY_URL");
    k.ca = env_or(k.ca, "COFFER_CA");
    if (optind != argc || k.url == NULL) {
        fprintf(stderr, "coffer audit tail: %s\n",
                k.url == NULL ? "--url (or COFFER_GATEWAY_URL) is required" : "unexpected argument");
        tail_usage(stderr);
        goto out;
    }
    rc = conn_open(&k);
    if (rc != 0)
        goto fail;
    if (since != NULL) {
        rc = list_from(&k, &filters, false, 0, &t, true, json);
    } else {
        /* The newest `lines` matching entries: read from a window before the
         * end of the tree, widened until it holds enough (filters thin it). */
        rc = api_get(&k, "/v1/audit/sth", &j);
        if (rc == 0)
            rc = cf_json_get_u64(j, "size", true, CF_MERKLE_MAX_SIZE, &size);
        json_decref(j);
        if (rc != 0)
            goto fail;
        t.max = (size_t)lines;
        t.ring = calloc(t.max, sizeof(*t.ring));
        if (t.ring == NULL) {
            rc = CF_E_NOMEM;
            goto fail;
        }
        window = filters.len > 0 ? lines * 16 : lines;
        for (;;) {
            bool whole = window >= size;
            for (size_t i = 0; i < t.n; i++)
                json_decref(t.ring[(t.start + i) % t.max]);
            t.n = t.start = 0;
            rc = list_from(&k, &filters, !whole, whole ? 0 : size - window - 1, &t, false, json);
            if (rc != 0 || whole || t.n >= t.max)
                break;
            window *= 4;
        }
        if (rc != 0)
            goto fail;
        for (size_t i = 0; i < t.n; i++)
            print_entry(t.ring[(t.start + i) % t.max], json);
        fflush(stdout);
    }
    if (rc != 0)
        goto fail;
    while (follow) {
        struct timespec ts = {CF_AUDIT_CLI_FOLLOW_MS / 1000, (long)(CF_AUDIT_CLI_FOLLOW_MS % 1000) * 1000000L};
        nanosleep(&ts, NULL);
        rc = list_from(&k, &filters, t.have_last, t.last, &t, true, json);
        if (rc != 0)
            goto fail;
    }
    status = CLI_EXIT_OK;
    goto out;
fail:
    fprintf(stderr, "coffer audit tail: %s\n", cf_err_detail(rc));
    status = service_exit(rc);
out:
    for (size_t i = 0; i < t.n; i++)
        json_decref(t.ring[(t.start + i) % t.max]);
    free(t.ring);
    cf_buf_free(&filters);
    conn_close(&k);
    return status;
}

/* ---- dispatch --------------------------------------------------------------------------------------------- */

static void usage(FILE *f)
{
    fprintf(f, "usage: coffer audit <verify|tail> [options]\n"
               "\n"
               "  verify   check the audit log's signatures, inclusion and consistency proofs\n"
               "  tail     list the newest audit entries (--follow to keep listing)\n"
               "\n"
               "Run 'coffer audit <command> --help' for its options.\n");
}

int cli_audit(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return CLI_EXIT_USAGE;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return CLI_EXIT_OK;
    }
    if (strcmp(argv[1], "verify") == 0)
        return cmd_verify(argc - 1, argv + 1);
    if (strcmp(argv[1], "tail") == 0)
        return cmd_tail(argc - 1, argv + 1);
    fprintf(stderr, "coffer audit: unknown command '%s'\n\n", argv[1]);
    usage(stderr);
    return CLI_EXIT_USAGE;
}
