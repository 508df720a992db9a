/*
 * coffer attestation verify --deployment NAME [--json] [--url URL] [--ca FILE]
 *                           [--manifest FILE] [--jwks FILE]
 *
 * Asks the attestation service (through the gateway, which proxies
 * /v1/attestation/...) for fresh evidence of the deployment, bound to a nonce
 * chosen here, and then VERIFIES THE RETURNED EVIDENCE LOCALLY against the
 * client's own manifest with the same verifier the KMS and the service use
 * (DESIGN.md §2 rule 1: the service's verdict is a third, independent opinion,
 * never the basis). The service's EAR token is checked too: its signature
 * against the service's JWKS, and that it names this deployment, this
 * measurement, this nonce, this TEE key and the manifest the client pins.
 * Success needs every one of these; any disagreement is a failure.
 *
 * Exit status: 0 verified, 1 not verified (or refused), 2 usage, 3 unreadable
 * input (manifest, JWKS file), 4 service unreachable or failing.
 */
#include <getopt.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "attest/binding.h"
#include "attest/manifest.h"
#include "attest/verify.h"
#include "base/buf.h"
#include "base/err.h"
#include "base/file.h"
#include "base/json.h"
#include "base/limits.h"
#include "base/parse.h"
#include "base/secmem.h"
#include "cli.h"
#include "crypto/hash.h"
#include "crypto/jose.h"
#include "crypto/keys.h"
#include "http/client.h"

#define MAX_CLI_CHECKS 16
#define EAR_PROFILE "tag:github.com,2023:veraison/ear"
#define RESPONSE_MAX (256u * 1024)

typedef struct {
    const char *name;
    bool ok;
    char message[400];
} cli_check;

typedef struct {
    cli_check c[MAX_CLI_CHECKS];
    size_t n;
} cli_checks;

static void add_check(cli_checks *cs, const char *name, bool ok, const char *fmt, ...) CF_PRINTF(4, 5);

static void add_check(cli_checks *cs, const char *name, bool ok, const char *fmt, ...)
{
    va_list ap;
    cli_check *c;

    if (cs->n == MAX_CLI_CHECKS)
        return;
    c = &cs->c[cs->n++];
    c->name = name;
    c->ok = ok;
    va_start(ap, fmt);
    (void)vsnprintf(c->message, sizeof(c->message), fmt, ap);
    va_end(ap);
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: coffer attestation verify --deployment NAME [options]\n"
            "\n"
            "Gets fresh evidence of a deployment's TEE from the attestation service and verifies it\n"
            "locally against your own manifest; checks the service's signed result (EAR) as well.\n"
            "\n"
            "  --deployment NAME  deployment to attest\n"
            "  --url URL          gateway or attestation service (default: $COFFER_GATEWAY_URL)\n"
            "  --ca FILE          CA certificate (PEM) to trust for the URL (default: $COFFER_CA,\n"
            "                     else the system store)\n"
            "  --manifest FILE    your manifest, the policy evidence must satisfy (default: $COFFER_MANIFEST)\n"
            "  --jwks FILE        pinned JWKS of the attestation service (default: fetched from the URL)\n"
            "  --json             machine-readable result\n"
            "\n"
            "Exit status: 0 verified, 1 not verified, 2 usage error, 3 unreadable input,\n"
            "4 service unreachable.\n");
}

static const char *env_or(const char *v, const char *env)
{
    const char *e;
    if (v != NULL)
        return v;
    e = getenv(env);
    return e != NULL && e[0] != '\0' ? e : NULL;
}

static json_t *jget(json_t *o, const char *path)
{
    json_t *v = o;
    const char *p = path;
    char key[64];

    while (v != NULL && *p != '\0') {
        const char *slash = strchr(p, '/');
        size_t n = slash ? (size_t)(slash - p) : strlen(p);
        if (n >= sizeof(key))
            return NULL;
        memcpy(key, p, n);
        key[n] = '\0';
        v = json_object_get(v, key);
        p += n + (slash ? 1 : 0);
    }
    return v;
}

static const char *jstr(json_t *o, const char *path)
{
    json_t *v = jget(o, path);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

static bool streq(const char *a, const char *b) { return a != NULL && b != NULL && strcmp(a, b) == 0; }

/* The evidence the service returned, decoded. */
typedef struct {
    cf_buf report, cert, key;
    uint8_t nonce[CF_BINDING_NONCE_LEN];
    const char *tee_id;
} returned_evidence;

static int decode_evidence(json_t *ev, returned_evidence *r)
{
    const char *platform = NULL;

    CF_ENSURE(json_is_object(ev), cf_err_set(CF_E_PARSE, "the response has no evidence object"));
    CF_GUARD(cf_json_get_str(ev, "platform", true, 16, &platform));
    CF_ENSURE(strcmp(platform, CF_PLATFORM_SEV_SNP) == 0,
              cf_err_set(CF_E_UNSUPPORTED, "evidence platform '%s' is not supported", platform));
    CF_GUARD(cf_json_get_b64url(ev, "report", true, 4096, &r->report));
    CF_GUARD(cf_json_get_b64url(ev, "cert", true, CF_CERT_MAX_BYTES, &r->cert));
    CF_GUARD(cf_json_get_b64url(ev, "public_key", true, CF_TEE_KEY_MAX_LEN, &r->key));
    CF_ENSURE(r->key.len == 32, cf_err_set(CF_E_PARSE, "evidence public_key is not a 32-byte X25519 key"));
    CF_GUARD(cf_json_get_hex(ev, "nonce", true, r->nonce, sizeof(r->nonce)));
    CF_GUARD(cf_json_get_str(ev, "tee_id", false, CF_ID_MAX_LEN, &r->tee_id));
    return 0;
}

/* With COFFER_API_KEY (and COFFER_TENANT_ID) set, an access token from the
 * gateway's IAM route: the gateway only proxies authenticated calls. Without
 * them the call goes out unauthenticated (fine against the attestation service
 * itself, whose verification API is public). */
static char g_token[CF_JWT_MAX_BYTES + 1];

static int get_token(cf_http_client *c)
{
    const char *key = getenv("COFFER_API_KEY"), *tenant = getenv("COFFER_TENANT_ID"), *t = NULL;
    cf_http_request rq = {.method = "POST", .path = "/v1/iam/token", .content_type = "application/json"};
    cf_http_response resp;
    json_t *body, *ans = NULL;
    char *text;
    int rc;

    if (key == NULL || key[0] == '\0')
        return 0;
    body = tenant ? json_pack("{s:s,s:s}", "api_key", key, "tenant", tenant) : json_pack("{s:s}", "api_key", key);
    text = body ? cf_json_dump(body) : NULL;
    json_decref(body);
    if (text == NULL)
        return CF_E_NOMEM;
    rq.body = text;
    rq.body_len = strlen(text);
    memset(&resp, 0, sizeof(resp));
    rc = cf_http_client_do(c, &rq, &resp);
    cf_freezero(text, strlen(text));
    if (rc == 0 && resp.status != 200)
        rc = cf_err_set(CF_E_UNAUTHENTICATED, "the API key in COFFER_API_KEY was refused (HTTP %ld)", resp.status);
    if (rc == 0)
        rc = cf_http_response_json(&resp, &ans);
    if (rc == 0)
        rc = cf_json_get_str(ans, "access_token", true, CF_JWT_MAX_BYTES, &t);
    if (rc == 0)
        rc = cf_fmt(g_token, sizeof(g_token), "%s", t);
    json_decref(ans);
    cf_http_response_free(&resp);
    return rc;
}

static int load_jwks(cf_http_client *c, const char *file, cf_jwks **ret)
{
    cf_http_request rq = {.method = "GET", .path = "/v1/attestation/jwks", .bearer = g_token[0] ? g_token : NULL};
    cf_http_response resp;
    cf_buf b;
    int rc;

    if (file != NULL) {
        cf_buf_init(&b, CF_JWKS_MAX_BYTES);
        rc = cf_file_read(file, CF_JWKS_MAX_BYTES, &b);
        if (rc == 0)
            rc = cf_jwks_parse(b.data, b.len, ret);
        cf_buf_free(&b);
        return rc;
    }
    memset(&resp, 0, sizeof(resp));
    rc = cf_http_client_do(c, &rq, &resp);
    if (rc == 0 && resp.status != 200)
        rc = cf_err_set(CF_E_UNAVAILABLE, "JWKS request answered HTTP %ld", resp.status);
    if (rc == 0)
        rc = cf_jwks_parse(resp.body.data, resp.body.len, ret);
    cf_http_response_free(&resp);
    return rc;
}

/* The EAR token: signature by the service's key, then what it claims. */
static void check_token(const char *token, const cf_jwks *jwks, const char *deployment, const cf_manifest *m,
                        const cf_verify_result *local, const returned_evidence *ev, cli_checks *cs)
{
    cf_jwt_verify_opts o = {.typ = "JWT", .leeway = 30};
    json_t *claims = NULL, *sub;
    const char *st, *x;
    char *nonce_b64 = NULL, *key_b64 = NULL;
    int rc;

    if (token == NULL) {
        add_check(cs, "token", false, "the service returned no EAR token");
        return;
    }
    if (jwks == NULL) {
        add_check(cs, "token", false, "the service's JWKS is not available: the token cannot be checked");
        return;
    }
    rc = cf_jwt_verify(token, strlen(token), NULL, jwks, &o, &claims);
    if (rc != 0) {
        add_check(cs, "token", false, "EAR token does not verify: %s", cf_err_detail(rc));
        return;
    }
    add_check(cs, "token", streq(jstr(claims, "eat_profile"), EAR_PROFILE),
              streq(jstr(claims, "eat_profile"), EAR_PROFILE) ? "EAR token signature verifies with the service's JWKS"
                                                              : "EAR token has another eat_profile");
    sub = json_object_get(json_object_get(claims, "submods"), deployment);
    st = jstr(sub, "ear.status");
    add_check(cs, "token_status", streq(st, "affirming") || streq(st, "warning"), "ear.status for %s: %s", deployment,
              st ? st : "(missing)");
    nonce_b64 = cf_b64url_encode_alloc(ev->nonce, sizeof(ev->nonce));
    key_b64 = cf_b64url_encode_alloc(ev->key.data, ev->key.len);
    x = jstr(claims, "cnf/jwk/x");
    if (!streq(jstr(claims, "coffer.deployment"), deployment))
        add_check(cs, "token_claims", false, "token names deployment '%.64s'", jstr(claims, "coffer.deployment"));
    else if (!local->facts.report_parsed || !streq(jstr(claims, "coffer.measurement"), local->facts.measurement))
        add_check(cs, "token_claims", false, "token names another measurement than the evidence");
    else if (!streq(jstr(claims, "eat_nonce"), nonce_b64))
        add_check(cs, "token_claims", false, "token is not bound to this request's nonce");
    else if (!streq(x, key_b64) || !streq(jstr(claims, "cnf/jwk/crv"), "X25519"))
        add_check(cs, "token_claims", false, "token's cnf key is not the TEE key of the evidence");
    else if (ev->tee_id != NULL && !streq(jstr(claims, "coffer.tee_id"), ev->tee_id))
        add_check(cs, "token_claims", false, "token names another TEE");
    else
        add_check(cs, "token_claims", true, "token names this deployment, measurement, nonce and TEE key");
    /* DESIGN.md §3: the service reports the manifest hash it runs with; a
     * mismatch with the one the client pins fails. */
    add_check(cs, "manifest_hash", streq(jstr(claims, "coffer.manifest_hash"), cf_manifest_hash_str(m)),
              "service runs manifest %.71s, this client pins %s",
              jstr(claims, "coffer.manifest_hash") ? jstr(claims, "coffer.manifest_hash") : "(none)",
              cf_manifest_hash_str(m));
    free(nonce_b64);
    free(key_b64);
    json_decref(claims);
}

static void check_developer(json_t *resp, const cf_manifest_deployment *dep, cli_checks *cs)
{
    cf_key *k = NULL;
    char kid[CF_KEY_THUMBPRINT_LEN + 1] = "";
    json_t *sig = jget(resp, "attestation/signature_verification");

    if (dep != NULL && (cf_key_from_public(CF_KEY_ED25519, dep->developer_key, CF_ED25519_LEN, &k) != 0 ||
                        cf_key_thumbprint(k, kid) != 0))
        kid[0] = '\0';
    cf_key_free(k);
    if (dep == NULL)
        add_check(cs, "developer", false, "deployment is not in this client's manifest");
    else if (!json_is_true(json_object_get(sig, "signature_valid")))
        add_check(cs, "developer", false, "service reports the developer signature as not valid");
    else if (!streq(jstr(sig, "key_id"), kid))
        add_check(cs, "developer", false, "service checked developer key %.64s, this manifest names %s",
                  jstr(sig, "key_id") ? jstr(sig, "key_id") : "(none)", kid);
    else
        add_check(cs, "developer", true, "developer key %s", kid);
}

static bool platform_secure(const cf_verify_result *r)
{
    static const cf_check_id ids[] = {CF_CHECK_PARSE,     CF_CHECK_PRODUCT, CF_CHECK_SIGNATURE, CF_CHECK_CHAIN,
                                      CF_CHECK_LEAF_KEY,  CF_CHECK_TCB_MATCH, CF_CHECK_MIN_TCB, CF_CHECK_DEBUG,
                                      CF_CHECK_VMPL};
    for (size_t i = 0; i < CF_ARRAY_LEN(ids); i++)
        if (r->checks[ids[i]].status != CF_CHECK_PASSED)
            return false;
    return r->checks[CF_CHECK_REVOCATION].status != CF_CHECK_FAILED &&
           r->checks[CF_CHECK_GUEST_POLICY].status != CF_CHECK_FAILED;
}

static void print_time(time_t t, char out[32])
{
    struct tm tm;
    if (gmtime_r(&t, &tm) == NULL || strftime(out, 32, "%Y-%m-%d %H:%M:%S UTC", &tm) == 0)
        snprintf(out, 32, "%lld", (long long)t);
}

static int print_json(const char *deployment, bool ok, const char *when, json_t *resp, const cf_verify_result *local,
                      const cli_checks *cs)
{
    json_t *o, *arr = json_array(), *lj = local ? cf_verify_result_to_json(local) : json_null();
    char *s;

    for (size_t i = 0; arr != NULL && i < cs->n; i++)
        json_array_append_new(arr, json_pack("{s:s,s:s,s:s}", "name", cs->c[i].name, "status",
                                             cs->c[i].ok ? "passed" : "failed", "message", cs->c[i].message));
    o = json_pack("{s:b,s:s,s:s,s:s?,s:s?,s:o,s:o?}", "verified", ok, "deployment", deployment, "verification_time",
                  when, "build_hash", jstr(resp, "attestation/build_hash"), "service_status", jstr(resp, "status"),
                  "checks", arr, "local", lj);
    s = o ? json_dumps(o, JSON_INDENT(2) | JSON_SORT_KEYS) : NULL;
    json_decref(o);
    if (s == NULL)
        return CLI_EXIT_SERVICE;
    printf("%s\n", s);
    free(s);
    return ok ? CLI_EXIT_OK : CLI_EXIT_FAILED;
}

static int cmd_verify(int argc, char **argv)
{
    static const struct option opts[] = {
        {"deployment", required_argument, NULL, 'd'}, {"url", required_argument, NULL, 'u'},
        {"ca", required_argument, NULL, 'c'},         {"manifest", required_argument, NULL, 'm'},
        {"jwks", required_argument, NULL, 'k'},       {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},             {NULL, 0, NULL, 0}};
    const char *deployment = NULL, *url = NULL, *ca = NULL, *manifest_path = NULL, *jwks_file = NULL;
    int json = 0, c, rc, status = CLI_EXIT_INPUT;
    cf_manifest *m = NULL;
    cf_jwks *jwks = NULL;
    cf_http_client *client = NULL;
    cf_http_client_opts co;
    cf_http_request rq = {.method = "POST", .path = "/v1/attestation/verify"};
    cf_http_response resp;
    json_t *body = NULL, *r = NULL;
    char *reqtext = NULL, nonce_hex[2 * CF_BINDING_NONCE_LEN + 1], when[32];
    uint8_t nonce[CF_BINDING_NONCE_LEN];
    returned_evidence ev;
    cf_verify_result *local = NULL;
    cf_verify_input in;
    cli_checks cs;
    const cf_manifest_deployment *dep;
    time_t now = time(NULL);
    bool ok;

    memset(&resp, 0, sizeof(resp));
    memset(&cs, 0, sizeof(cs));
    memset(&ev, 0, sizeof(ev));
    cf_buf_init(&ev.report, 4096);
    cf_buf_init(&ev.cert, CF_CERT_MAX_BYTES);
    cf_buf_init(&ev.key, CF_TEE_KEY_MAX_LEN);
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'd': deployment = optarg; break;
        case 'u': url = optarg; break;
        case 'c': ca = optarg; break;
        case 'm': manifest_path = optarg; break;
        case 'k': jwks_file = optarg; break;
        case 'j': json = 1; break;
        case 'h': usage(stdout); status = CLI_EXIT_OK; goto out;
        default: usage(stderr); status = CLI_EXIT_USAGE; goto out;
        }
    }
    url = env_or(url, "COFFER_GATEWAY_URL");
    ca = env_or(ca, "COFFER_CA");
    manifest_path = env_or(manifest_path, "COFFER_MANIFEST");
    jwks_file = env_or(jwks_file, "COFFER_ATTESTATION_JWKS");
    if (deployment == NULL || url == NULL || manifest_path == NULL || optind != argc) {
        fprintf(stderr, "coffer attestation verify: %s\n",
                optind != argc       ? "unexpected argument"
                : deployment == NULL ? "--deployment is required"
                : url == NULL        ? "no service URL: give --url or set COFFER_GATEWAY_URL"
                                     : "no manifest: give --manifest or set COFFER_MANIFEST (the evidence is "
                                       "verified against YOUR manifest, never on the service's word)");
        usage(stderr);
        status = CLI_EXIT_USAGE;
        goto out;
    }
    rc = cf_manifest_load(manifest_path, &m);
    if (rc != 0) {
        fprintf(stderr, "coffer attestation verify: manifest: %s\n", cf_err_detail(rc));
        goto out;
    }
    dep = cf_manifest_find_deployment(m, deployment);

    /* Our own nonce: the evidence must be fresh for this request. */
    if (cf_random(nonce, sizeof(nonce)) != 0)
        goto out;
    cf_hex_encode(nonce, sizeof(nonce), nonce_hex);
    body = json_pack("{s:s,s:s}", "deployment_id", deployment, "nonce", nonce_hex);
    reqtext = body ? cf_json_dump(body) : NULL;
    memset(&co, 0, sizeof(co));
    co.base_url = url;
    co.ca_file = ca;
    co.timeout_ms = 60000;
    co.max_response = RESPONSE_MAX;
    status = CLI_EXIT_SERVICE;
    if (reqtext == NULL || (rc = cf_http_client_new(&co, &client)) != 0) {
        fprintf(stderr, "coffer attestation verify: %s\n", reqtext ? cf_err_detail(rc) : "out of memory");
        status = reqtext ? CLI_EXIT_USAGE : CLI_EXIT_SERVICE;
        goto out;
    }
    if ((rc = get_token(client)) != 0) {
        fprintf(stderr, "coffer attestation verify: %s\n", cf_err_detail(rc));
        status = CLI_EXIT_FAILED;
        goto out;
    }
    rq.bearer = g_token[0] ? g_token : NULL;
    rq.body = reqtext;
    rq.body_len = strlen(reqtext);
    rc = cf_http_client_do(client, &rq, &resp);
    if (rc != 0) {
        fprintf(stderr, "coffer attestation verify: cannot reach the attestation service at %s: %s\n", url,
                cf_err_detail(rc));
        goto out;
    }
    print_time(now, when);
    if (resp.status >= 500) {
        json_t *e = NULL;
        if (cf_http_response_json(&resp, &e) != 0)
            e = NULL;
        fprintf(stderr, "coffer attestation verify: the attestation service failed (HTTP %ld): %s\n", resp.status,
                e && jstr(e, "error/message") ? jstr(e, "error/message") : "no detail");
        json_decref(e);
        goto out;
    }
    if (cf_http_response_json(&resp, &r) != 0)
        r = NULL;
    if (resp.status != 200 || r == NULL) {
        add_check(&cs, "service", false, "the service refused (HTTP %ld): %s", resp.status,
                  r && jstr(r, "error/message") ? jstr(r, "error/message") : "malformed answer");
        goto report;
    }
    rc = decode_evidence(json_object_get(r, "evidence"), &ev);
    if (rc != 0) {
        add_check(&cs, "evidence", false, "returned evidence is malformed: %s", cf_err_detail(rc));
        goto report;
    }
    if (memcmp(ev.nonce, nonce, sizeof(nonce)) != 0)
        add_check(&cs, "nonce", false, "the service answered with evidence for another nonce");

    /* The evidence, against OUR manifest, with OUR nonce. */
    memset(&in, 0, sizeof(in));
    in.report = ev.report.data;
    in.report_len = ev.report.len;
    in.cert = ev.cert.data;
    in.cert_len = ev.cert.len;
    in.deployment = deployment;
    in.tee_public_key = ev.key.data;
    in.tee_public_key_len = ev.key.len;
    in.nonce = nonce;
    in.at = now;
    rc = cf_verify_evidence(m, &in, &local);
    if (rc != 0) {
        add_check(&cs, "evidence", false, "cannot verify the evidence: %s", cf_err_detail(rc));
        goto report;
    }
    add_check(&cs, "service_status", streq(jstr(r, "status"), "verified"), "service verdict: %s",
              jstr(r, "status") ? jstr(r, "status") : "(missing)");
    check_developer(r, dep, &cs);
    rc = load_jwks(client, jwks_file, &jwks);
    if (rc != 0)
        add_check(&cs, "jwks", false, "cannot load the service's JWKS: %s", cf_err_detail(rc));
    check_token(jstr(r, "token"), jwks, deployment, m, local, &ev, &cs);

report:
    ok = local != NULL && local->verified;
    for (size_t i = 0; i < cs.n; i++)
        ok = ok && cs.c[i].ok;
    if (json) {
        status = print_json(deployment, ok, when, r, local, &cs);
        goto out;
    }
    if (ok) {
        printf("✅ Attestation verification complete for deployment: %s\n", deployment);
        printf("Deployment ID: %s\n", deployment);
        printf("Build Hash: %s\n", jstr(r, "attestation/build_hash") ? jstr(r, "attestation/build_hash") : "(none)");
        printf("Verification Time: %s\n", when);
        printf("TEE Measurements:\n");
        printf("  MEASUREMENT: %s\n", local->facts.measurement);
        printf("  HOST_DATA: %s\n", local->facts.host_data);
        printf("Developer Signature: VALID ✓\n");
        printf("Platform Verification: %s\n", platform_secure(local) ? "SECURE ✓" : "NOT SECURE ✗");
        printf("  TCB Status: %s\n",
               local->checks[CF_CHECK_MIN_TCB].status == CF_CHECK_PASSED ? "Up to date" : "Out of date");
        printf("  Debug: %s\n", local->facts.debug ? "Enabled" : "Disabled");
        status = CLI_EXIT_OK;
    } else {
        printf("❌ Attestation verification FAILED for deployment: %s\n", deployment);
        printf("Deployment ID: %s\n", deployment);
        printf("Verification Time: %s\n", when);
        printf("Failed checks:\n");
        if (local != NULL)
            for (int i = 0; i < CF_CHECK__COUNT; i++)
                if (local->checks[i].status == CF_CHECK_FAILED)
                    printf("  ✗ %s: %s\n", local->checks[i].name, local->checks[i].message);
        for (size_t i = 0; i < cs.n; i++)
            if (!cs.c[i].ok)
                printf("  ✗ %s: %s\n", cs.c[i].name, cs.c[i].message);
        if (r != NULL && jstr(r, "status") != NULL)
            printf("Service verdict: %s (not trusted on its own)\n", jstr(r, "status"));
        status = CLI_EXIT_FAILED;
    }
out:
    cf_verify_result_free(local);
    json_decref(r);
    json_decref(body);
    free(reqtext);
    cf_http_response_free(&resp);
    cf_http_client_free(client);
    cf_jwks_free(jwks);
    cf_manifest_free(m);
    cf_buf_free(&ev.report);
    cf_buf_free(&ev.cert);
    cf_buf_free(&ev.key);
    return status;
}

int cli_attestation(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "verify") == 0)
        return cmd_verify(argc - 1, argv + 1);
    if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        printf("usage: coffer attestation verify --deployment NAME [options]\n\n"
               "  verify   attest a deployment: fresh evidence, verified locally against your manifest\n");
        return CLI_EXIT_OK;
    }
    fprintf(stderr, "usage: coffer attestation verify ... (see 'coffer attestation --help')\n");
    return CLI_EXIT_USAGE;
}
