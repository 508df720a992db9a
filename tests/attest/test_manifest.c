/*
 * Manifest parser, validator and hash (docs/MANIFEST.md).
 */
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "attest/manifest.h"
#include "base/err.h"
#include "base/limits.h"
#include "base/parse.h"
#include "crypto/hash.h"
#include "test.h"

#define MEAS_A                                                                                     \
    "195b01b74976a1faba13bd85eaf787958f0a46e6dddd45c5bdbf8673522777842b8057ae5d866b75416efb62012d" \
    "eaa3"
#define MEAS_B                                                                                     \
    "b0f5d097b5c7addd4ee06a6f5fd04a745c5415d77363ca74857b44226a1bd7da50329549def0897c234695e37b8c" \
    "2793"
#define DEV_KEY_B64 "F4L2-KeulD8PjwNzy78QLHGrVxORTCycQOMoWyensAk"
#define DEV_KEY_PEM                                                                                \
    "-----BEGIN PUBLIC KEY-----\\nMCowBQYDK2VwAyEAF4L2+KeulD8PjwNzy78QLHGrVxORTCycQOMoWyensAk=\\n" \
    "-----END PUBLIC KEY-----\\n"
#define P256_PEM                                                                                   \
    "-----BEGIN PUBLIC "                                                                           \
    "KEY-----\\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAExokAgZRCoMsg5LInX1OtoCRaXLmb\\n"               \
    "iDNLi8Pl2JNlfdS3zlk3O+4PqcVyrK3JtvfpytlxT2lx/4Gb6oDYPn5b0Q==\\n-----END PUBLIC KEY-----\\n"

/* SHA-256 of the docs example's canonical form, computed independently with
 * Python: json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False). */
#define EXAMPLE_HASH "sha256:6488596a1ee5f86e8c14514941b72aea727dff6dc5c12a678d91e8873312b778"

static const char mini[] =
    "{\"version\":1,"
    "\"platforms\":{\"sev-snp\":{\"roots\":[\"amd:milan\"],"
    "\"min_tcb\":{\"milan\":{\"bootloader\":1,\"tee\":0,\"snp\":1,\"microcode\":1}}}},"
    "\"deployments\":[{\"name\":\"d1\",\"tenant\":\"t1\",\"jobs\":[\"echo\"],"
    "\"developer_key\":\"" DEV_KEY_B64 "\","
    "\"platforms\":{\"sev-snp\":{\"measurements\":[\"" MEAS_A "\"]}}}]}";

static int parse_str(const char *s, cf_manifest **ret)
{
    return cf_manifest_parse(s, strlen(s), ret);
}

/* Applies one change to `mini` at a dotted path ("deployments.0.jobs"; numbers
 * index arrays) and parses the result. value is JSON text, or NULL to delete. */
static int parse_with(const char *path, const char *value, cf_manifest **ret)
{
    json_error_t jerr;
    json_t *doc = json_loads(mini, 0, &jerr), *cur = doc, *v = NULL;
    char buf[256], *tok, *next;
    char *text;
    int rc;

    if (doc == NULL || strlen(path) >= sizeof(buf))
        abort();
    memcpy(buf, path, strlen(path) + 1);
    tok = buf;
    while ((next = strchr(tok, '.')) != NULL) {
        *next = '\0';
        cur = json_is_array(cur) ? json_array_get(cur, (size_t)(tok[0] - '0'))
                                 : json_object_get(cur, tok);
        if (cur == NULL)
            abort();
        tok = next + 1;
    }
    if (value != NULL) {
        v = json_loads(value, JSON_DECODE_ANY, &jerr);
        if (v == NULL)
            abort();
    }
    if (json_is_array(cur)) {
        if (v != NULL && (size_t)(tok[0] - '0') == json_array_size(cur))
            json_array_append_new(cur, v);
        else if (v != NULL)
            json_array_set_new(cur, (size_t)(tok[0] - '0'), v);
        else
            json_array_remove(cur, (size_t)(tok[0] - '0'));
    } else if (v != NULL) {
        json_object_set_new(cur, tok, v);
    } else {
        json_object_del(cur, tok);
    }
    text = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    if (text == NULL)
        abort();
    rc = parse_str(text, ret);
    free(text);
    return rc;
}

/* Expects parse_with to fail with `code` and a detail containing `msg`. */
#define T_REJECT(path, value, code, msg)                                                           \
    do {                                                                                           \
        cf_manifest *m_ = NULL;                                                                    \
        T_ERR(parse_with((path), (value), &m_), (code));                                           \
        T_ASSERT(m_ == NULL);                                                                      \
        T_ASSERT_MSG(strstr(cf_err_detail(code), (msg)) != NULL, "detail \"%s\" lacks \"%s\"",     \
                     cf_err_detail(code), (msg));                                                  \
    } while (0)

#define T_ACCEPT(path, value, ret)                                                                 \
    do {                                                                                           \
        int rc_ = parse_with((path), (value), (ret));                                              \
        T_ASSERT_MSG(rc_ == 0, "parse failed: %d %s", rc_, cf_err_detail(rc_));                    \
    } while (0)

/* The JSON block that follows the marker in docs/MANIFEST.md. */
static char *example_from_docs(void)
{
    size_t n;
    char *doc = (char *)t_read_file(COFFER_SOURCE_DIR "/docs/MANIFEST.md", &n);
    char *start = strstr(doc, "<!-- example-manifest -->\n```json\n"), *end, *out;

    if (start == NULL)
        abort();
    start += strlen("<!-- example-manifest -->\n```json\n");
    end = strstr(start, "```");
    if (end == NULL)
        abort();
    out = strndup(start, (size_t)(end - start));
    free(doc);
    return out;
}

static void test_docs_example(void)
{
    char *text = example_from_docs();
    cf_manifest *m = NULL;
    const cf_manifest_snp *p;
    const cf_manifest_deployment *d, *d2;
    uint8_t meas[48];

    T_OK(parse_str(text, &m));
    free(text);
    T_STREQ(cf_manifest_name(m), "coffer-production");
    T_STREQ(cf_manifest_hash_str(m), EXAMPLE_HASH);
    p = cf_manifest_snp_policy(m);
    T_ASSERT(p != NULL);
    T_ASSERT(p->amd[CF_SNP_PRODUCT_MILAN] && p->amd[CF_SNP_PRODUCT_GENOA] &&
             p->amd[CF_SNP_PRODUCT_TURIN]);
    T_EQ(p->n_roots, 0);
    T_ASSERT(p->min_tcb[CF_SNP_PRODUCT_MILAN].present);
    T_EQ(p->min_tcb[CF_SNP_PRODUCT_MILAN].snp, 8);
    T_EQ(p->min_tcb[CF_SNP_PRODUCT_MILAN].microcode, 115);
    T_EQ(p->min_tcb[CF_SNP_PRODUCT_GENOA].bootloader, 9);
    T_EQ(p->min_tcb[CF_SNP_PRODUCT_TURIN].snp, 2);
    T_EQ(p->min_tcb[CF_SNP_PRODUCT_TURIN].microcode, 71);
    T_ASSERT(!p->min_tcb[CF_SNP_PRODUCT_UNKNOWN].present);
    T_ASSERT(!p->allow_debug);
    T_EQ(p->vmpl_mask, 1);
    T_ASSERT(p->allow_vcek && p->allow_vlek);
    T_ASSERT(p->has_min_guest_svn);
    T_EQ(p->min_guest_svn, 0);
    T_EQ(p->policy_require, 0);
    T_EQ(p->policy_forbid, CF_SNP_POLICY_MIGRATE_MA);
    T_EQ(p->n_chip_ids, 0);

    T_EQ(cf_manifest_deployment_count(m), 2);
    T_ASSERT(cf_manifest_deployment_at(m, 2) == NULL);
    d = cf_manifest_find_deployment(m, "demo");
    T_ASSERT(d != NULL && d == cf_manifest_deployment_at(m, 0));
    T_STREQ(d->tenant, "demo-tenant");
    T_EQ(d->n_jobs, 3);
    T_ASSERT(cf_manifest_deployment_has_job(d, "sha256"));
    T_ASSERT(!cf_manifest_deployment_has_job(d, "sha2"));
    T_ASSERT(d->has_snp && !d->has_host_data);
    T_OK(cf_hex_decode(MEAS_A, meas, sizeof(meas)));
    T_ASSERT(cf_manifest_deployment_allows_snp_measurement(d, meas));
    T_OK(cf_hex_decode(MEAS_B, meas, sizeof(meas)));
    T_ASSERT(!cf_manifest_deployment_allows_snp_measurement(d, meas));
    d2 = cf_manifest_find_deployment(m, "payroll");
    T_ASSERT(d2 != NULL);
    T_ASSERT(cf_manifest_deployment_allows_snp_measurement(d2, meas));
    T_EQ(d2->n_snp_measurements, 2);
    T_ASSERT(d2->has_host_data);
    /* The same key in base64url (demo) and PEM (payroll) form. */
    T_MEMEQ(d->developer_key, d2->developer_key, 32);
    T_EQ(d->developer_key[0], 0x17);
    T_EQ(d->developer_key[31], 0x09);
    T_ASSERT(cf_manifest_find_deployment(m, "nope") == NULL);
    T_ASSERT(cf_manifest_find_deployment(m, NULL) == NULL);
    cf_manifest_free(m);
}

static void test_mini_defaults(void)
{
    cf_manifest *m = NULL;
    const cf_manifest_snp *p;

    T_OK(parse_str(mini, &m));
    T_ASSERT(cf_manifest_name(m) == NULL);
    p = cf_manifest_snp_policy(m);
    T_ASSERT(!p->allow_debug);
    T_EQ(p->vmpl_mask, 1); /* default [0] */
    T_ASSERT(p->allow_vcek && p->allow_vlek);
    T_ASSERT(!p->has_min_guest_svn);
    T_EQ(p->policy_require | p->policy_forbid, 0);
    T_ASSERT(p->amd[CF_SNP_PRODUCT_MILAN] && !p->amd[CF_SNP_PRODUCT_GENOA]);
    cf_manifest_free(m);

    T_ACCEPT("platforms.sev-snp.vmpls", "[1,0,3]", &m);
    T_EQ(cf_manifest_snp_policy(m)->vmpl_mask, 0xb);
    cf_manifest_free(m);
    T_ACCEPT("platforms.sev-snp.signing_keys", "[\"vcek\"]", &m);
    T_ASSERT(cf_manifest_snp_policy(m)->allow_vcek && !cf_manifest_snp_policy(m)->allow_vlek);
    cf_manifest_free(m);
    T_ACCEPT("platforms.sev-snp.allow_debug", "true", &m);
    T_ASSERT(cf_manifest_snp_policy(m)->allow_debug);
    cf_manifest_free(m);
    T_ACCEPT("platforms.sev-snp.min_guest_svn", "4294967295", &m);
    T_EQ(cf_manifest_snp_policy(m)->min_guest_svn, 4294967295u);
    cf_manifest_free(m);
    T_ACCEPT("platforms.sev-snp.guest_policy",
             "{\"require\":[\"single_socket\"],\"forbid\":[\"smt\",\"migrate_ma\"]}", &m);
    T_EQ(cf_manifest_snp_policy(m)->policy_require, CF_SNP_POLICY_SINGLE_SOCKET);
    T_EQ(cf_manifest_snp_policy(m)->policy_forbid, CF_SNP_POLICY_SMT | CF_SNP_POLICY_MIGRATE_MA);
    cf_manifest_free(m);
    T_STREQ(cf_manifest_policy_bit_name(18), "migrate_ma");
    T_ASSERT(cf_manifest_policy_bit_name(19) == NULL);
    T_STREQ(cf_manifest_product_name(CF_SNP_PRODUCT_TURIN), "turin");
    T_STREQ(cf_manifest_product_name((cf_snp_product)9), "unknown");
}

static void test_unknown_fields(void)
{
    T_REJECT("extra", "1", CF_E_PARSE, "manifest: unknown field 'extra'");
    T_REJECT("platforms.sev-snp.allow_debugging", "true", CF_E_PARSE,
             "platforms.sev-snp: unknown field 'allow_debugging'");
    T_REJECT("platforms.sev-snp.min_tcb.milan.snp_svn", "1", CF_E_PARSE,
             "platforms.sev-snp.min_tcb.milan: unknown field 'snp_svn'");
    T_REJECT("platforms.sev-snp.min_tcb.rome", "{}", CF_E_PARSE,
             "platforms.sev-snp.min_tcb: unknown field 'rome'");
    T_REJECT("platforms.sev-snp.guest_policy", "{\"allow\":[]}", CF_E_PARSE,
             "platforms.sev-snp.guest_policy: unknown field 'allow'");
    T_REJECT("deployments.0.owner", "\"x\"", CF_E_PARSE, "deployments[0]: unknown field 'owner'");
    T_REJECT("deployments.0.platforms.sev-snp.measurement", "\"" MEAS_A "\"", CF_E_PARSE,
             "deployments[0].platforms.sev-snp: unknown field 'measurement'");
    T_REJECT("deployments.0.platforms.sgx", "{}", CF_E_PARSE,
             "deployments[0].platforms: unknown field 'sgx'");
    T_REJECT("platforms.sev-snp.roots",
             "[{\"name\":\"x\",\"product\":\"milan\",\"chain\":\"\",\"label\":1}]", CF_E_PARSE,
             "platforms.sev-snp.roots[0]: unknown field 'label'");
    /* fmc exists only on Turin. */
    T_REJECT("platforms.sev-snp.min_tcb.milan.fmc", "0", CF_E_PARSE,
             "platforms.sev-snp.min_tcb.milan: unknown field 'fmc'");
}

static void test_types(void)
{
    T_REJECT("version", "\"1\"", CF_E_PARSE, "manifest: field 'version' must be an integer");
    T_REJECT("version", "1.0", CF_E_PARSE, "manifest: field 'version' must be an integer");
    T_REJECT("version", "2", CF_E_UNSUPPORTED, "unsupported version 2");
    T_REJECT("version", NULL, CF_E_PARSE, "manifest: missing required field 'version'");
    T_REJECT("platforms.sev-snp.allow_debug", "\"no\"", CF_E_PARSE,
             "platforms.sev-snp: field 'allow_debug' must be true or false");
    T_REJECT("platforms.sev-snp.allow_debug", "null", CF_E_PARSE,
             "platforms.sev-snp: field 'allow_debug' must not be null");
    T_REJECT("platforms.sev-snp.min_tcb.milan.snp", "1.5", CF_E_PARSE,
             "platforms.sev-snp.min_tcb.milan: field 'snp' must be an integer");
    T_REJECT("platforms.sev-snp.min_tcb.milan.snp", "\"8\"", CF_E_PARSE,
             "platforms.sev-snp.min_tcb.milan: field 'snp' must be an integer");
    T_REJECT("platforms.sev-snp.min_tcb.milan", "[]", CF_E_PARSE,
             "platforms.sev-snp.min_tcb.milan: must be an object");
    T_REJECT("platforms.sev-snp.roots", "\"amd:milan\"", CF_E_PARSE,
             "platforms.sev-snp: field 'roots' must be an array");
    T_REJECT("platforms.sev-snp.roots", "[5]", CF_E_PARSE,
             "platforms.sev-snp.roots[0]: must be a built-in root reference");
    T_REJECT("platforms.sev-snp.vmpls", "[\"0\"]", CF_E_PARSE,
             "platforms.sev-snp.vmpls[0]: must be an integer from 0 to 3");
    T_REJECT("deployments.0.jobs", "\"echo\"", CF_E_PARSE,
             "deployments[0]: field 'jobs' must be an array");
    T_REJECT("deployments.0.jobs", "[1]", CF_E_PARSE, "deployments[0].jobs[0]: must be a job name");
    T_REJECT("deployments.0.tenant", "7", CF_E_PARSE,
             "deployments[0]: field 'tenant' must be a string");
    T_REJECT("deployments.0.platforms.sev-snp.measurements", "[48]", CF_E_PARSE,
             "deployments[0].platforms.sev-snp.measurements[0]: must be a string of 96 lowercase "
             "hex digits");
    T_REJECT("deployments", "{}", CF_E_PARSE, "manifest: field 'deployments' must be an array");
    T_REJECT("deployments.0", "\"d1\"", CF_E_PARSE, "deployments[0]: must be an object");
    T_REJECT("platforms", "[]", CF_E_PARSE, "manifest: field 'platforms' must be an object");
}

static void test_ranges(void)
{
    cf_manifest *m = NULL;

    T_REJECT("platforms.sev-snp.min_tcb.milan.snp", "256", CF_E_RANGE,
             "platforms.sev-snp.min_tcb.milan: field 'snp' must be between 0 and 255");
    T_REJECT("platforms.sev-snp.min_tcb.milan.microcode", "-1", CF_E_RANGE,
             "platforms.sev-snp.min_tcb.milan: field 'microcode' must be between 0 and 255");
    T_ACCEPT("platforms.sev-snp.min_tcb.milan.microcode", "255", &m);
    T_EQ(cf_manifest_snp_policy(m)->min_tcb[CF_SNP_PRODUCT_MILAN].microcode, 255);
    cf_manifest_free(m);
    T_REJECT("platforms.sev-snp.min_guest_svn", "4294967296", CF_E_RANGE,
             "platforms.sev-snp: field 'min_guest_svn' must be between 0 and 4294967295");
    T_REJECT("platforms.sev-snp.vmpls", "[4]", CF_E_PARSE,
             "platforms.sev-snp.vmpls[0]: must be an integer from 0 to 3");
    T_REJECT("platforms.sev-snp.vmpls", "[]", CF_E_PARSE,
             "platforms.sev-snp: field 'vmpls' must have at least 1 item");
    T_REJECT("platforms.sev-snp.vmpls", "[0,1,0]", CF_E_PARSE,
             "platforms.sev-snp.vmpls[2]: VMPL 0 is listed twice");
    T_REJECT("platforms.sev-snp.vmpls", "[0,1,2,3,0]", CF_E_TOO_LARGE,
             "platforms.sev-snp: field 'vmpls' has more than 4 items");
    T_REJECT("platforms.sev-snp.signing_keys", "[\"vcek\",\"vcek\"]", CF_E_PARSE,
             "platforms.sev-snp.signing_keys[1]: 'vcek' is listed twice");
    T_REJECT("platforms.sev-snp.signing_keys", "[\"ask\"]", CF_E_PARSE,
             "platforms.sev-snp.signing_keys[0]: unknown value 'ask'");
    T_REJECT("deployments", "[]", CF_E_PARSE,
             "manifest: field 'deployments' must have at least 1 item");
    T_REJECT("deployments.0.jobs", "[]", CF_E_PARSE,
             "deployments[0]: field 'jobs' must have at least 1 item");
    T_REJECT("deployments.0.jobs", "[\"a\",\"b\",\"a\"]", CF_E_PARSE,
             "deployments[0].jobs[2]: job 'a' is listed twice");
    T_REJECT("deployments.0.name", "\"bad name\"", CF_E_PARSE,
             "deployments[0]: field 'name' must be 1 to 128 characters");
    T_REJECT("deployments.0.name", "\"-lead\"", CF_E_PARSE,
             "deployments[0]: field 'name' must be 1 to 128");
    T_REJECT("deployments.0.name", "\"\"", CF_E_PARSE,
             "deployments[0]: field 'name' must be 1 to 128");
    T_REJECT("deployments.0.tenant", NULL, CF_E_PARSE,
             "deployments[0]: missing required field 'tenant'");
    T_REJECT("name", "\"\"", CF_E_PARSE, "manifest: field 'name' must not be empty");
}

static void test_hex(void)
{
    cf_manifest *m = NULL;
    const char *upper = "\"195B01B74976A1FABA13BD85EAF787958F0A46E6DDDD45C5BDBF8673522777842B8057AE"
                        "5D866B75416EFB62012DEAA3\"";
    const char *path = "deployments.0.platforms.sev-snp.measurements.0";
    const char *msg = "deployments[0].platforms.sev-snp.measurements[0]: must be 96 lowercase hex "
                      "digits (a SHA-384 measurement)";

    T_REJECT(path, "\"195b01\"", CF_E_PARSE, msg);
    T_REJECT(path, upper, CF_E_PARSE, msg);
    T_REJECT(path, "\"" MEAS_A "00\"", CF_E_PARSE, msg);
    T_REJECT(path,
             "\"zz5b01b74976a1faba13bd85eaf787958f0a46e6dddd45c5bdbf8673522777842b8057ae5d866b75416"
             "efb62012deaa3\"",
             CF_E_PARSE, msg);
    T_REJECT("deployments.0.platforms.sev-snp.measurements", "[]", CF_E_PARSE,
             "deployments[0].platforms.sev-snp: field 'measurements' must have at least 1 item");
    T_REJECT("deployments.0.platforms.sev-snp.measurements", "[\"" MEAS_A "\",\"" MEAS_A "\"]",
             CF_E_PARSE, "deployments[0].platforms.sev-snp.measurements[1]: duplicate measurement");
    T_REJECT("deployments.0.platforms.sev-snp.host_data", "\"00\"", CF_E_PARSE,
             "deployments[0].platforms.sev-snp.host_data: must be 64 lowercase hex digits");
    T_ACCEPT("deployments.0.platforms.sev-snp.host_data",
             "\"00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\"", &m);
    T_ASSERT(cf_manifest_deployment_at(m, 0)->has_host_data);
    T_EQ(cf_manifest_deployment_at(m, 0)->host_data[31], 0xff);
    cf_manifest_free(m);
}

static void test_chip_ids(void)
{
    cf_manifest *m = NULL;
    uint8_t id[64] = {0};
    const cf_manifest_snp *p;

    T_ACCEPT(
        "platforms.sev-snp.chip_ids",
        "[\"3b42092f69c656d3\",\"d49554ec717f4e5b0fe6b143bcf0405bd7ae304727edf46603f2a76aef6a3abc"
        "15d7af38db757039029f0efacfd08e244324884738c72b082e2f87a44d541eb6\"]",
        &m);
    p = cf_manifest_snp_policy(m);
    T_EQ(p->n_chip_ids, 2);
    /* The Turin form matches an 8-byte id followed by zeros. */
    T_OK(cf_hex_decode("3b42092f69c656d3", id, 8));
    T_ASSERT(cf_manifest_snp_chip_allowed(p, id));
    id[8] = 1;
    T_ASSERT(!cf_manifest_snp_chip_allowed(p, id));
    T_OK(cf_hex_decode("d49554ec717f4e5b0fe6b143bcf0405bd7ae304727edf46603f2a76aef6a3abc"
                       "15d7af38db757039029f0efacfd08e244324884738c72b082e2f87a44d541eb6",
                       id, 64));
    T_ASSERT(cf_manifest_snp_chip_allowed(p, id));
    id[63] ^= 1;
    T_ASSERT(!cf_manifest_snp_chip_allowed(p, id));
    cf_manifest_free(m);

    T_REJECT("platforms.sev-snp.chip_ids", "[\"0000000000000000\"]", CF_E_PARSE,
             "platforms.sev-snp.chip_ids[0]: an all-zero chip id");
    T_REJECT("platforms.sev-snp.chip_ids", "[\"3b42\"]", CF_E_PARSE,
             "platforms.sev-snp.chip_ids[0]: must be 128 lowercase hex digits");
    T_REJECT("platforms.sev-snp.chip_ids", "[\"3B42092F69C656D3\"]", CF_E_PARSE,
             "platforms.sev-snp.chip_ids[0]: must be 16 lowercase hex digits");
    T_REJECT("platforms.sev-snp.chip_ids", "[\"3b42092f69c656d3\",\"3b42092f69c656d3\"]",
             CF_E_PARSE, "platforms.sev-snp.chip_ids[1]: duplicate chip id");
    T_REJECT("platforms.sev-snp.chip_ids", "[]", CF_E_PARSE,
             "field 'chip_ids' must have at least 1 item");
}

static void test_roots_and_tcb(void)
{
    cf_manifest *m = NULL;

    T_REJECT("platforms.sev-snp.roots", "[\"amd:rome\"]", CF_E_PARSE,
             "platforms.sev-snp.roots[0]: unknown built-in root 'amd:rome'");
    T_REJECT("platforms.sev-snp.roots", "[\"milan\"]", CF_E_PARSE,
             "platforms.sev-snp.roots[0]: unknown built-in root 'milan'");
    T_REJECT("platforms.sev-snp.roots", "[\"amd:milan\",\"amd:milan\"]", CF_E_PARSE,
             "platforms.sev-snp.roots[1]: root 'amd:milan' is listed twice");
    T_REJECT("platforms.sev-snp.roots", "[]", CF_E_PARSE,
             "platforms.sev-snp: field 'roots' must have at least 1 item");
    T_REJECT("platforms.sev-snp.roots", NULL, CF_E_PARSE,
             "platforms.sev-snp: missing required field 'roots'");
    /* Fail closed: a pinned product needs a minimum TCB. */
    T_REJECT(
        "platforms.sev-snp.roots", "[\"amd:milan\",\"amd:genoa\"]", CF_E_PARSE,
        "platforms.sev-snp.min_tcb: missing minimum for product 'genoa' (its roots are pinned)");
    T_REJECT("platforms.sev-snp.min_tcb", "{}", CF_E_PARSE,
             "platforms.sev-snp.min_tcb: must give a minimum");
    T_REJECT("platforms.sev-snp.min_tcb.milan.snp", NULL, CF_E_PARSE,
             "platforms.sev-snp.min_tcb.milan: missing required field 'snp'");
    T_REJECT("platforms.sev-snp.min_tcb.turin",
             "{\"bootloader\":1,\"tee\":0,\"snp\":2,\"microcode\":71}", CF_E_PARSE,
             "platforms.sev-snp.min_tcb.turin: missing required field 'fmc'");
    T_ACCEPT("platforms.sev-snp.min_tcb.turin",
             "{\"fmc\":3,\"bootloader\":1,\"tee\":0,\"snp\":2,\"microcode\":71}", &m);
    T_EQ(cf_manifest_snp_policy(m)->min_tcb[CF_SNP_PRODUCT_TURIN].fmc, 3);
    T_ASSERT(!cf_manifest_snp_policy(m)->amd[CF_SNP_PRODUCT_TURIN]);
    cf_manifest_free(m);
}

/* A roots array with one inline chain built from PEM text (JSON-escaped by jansson). */
static char *roots_with_chain(const char *extra_root, const char *pem)
{
    json_t *arr = json_array(), *o = json_object();
    char *out;

    if (extra_root != NULL)
        json_array_append_new(arr, json_string(extra_root));
    json_object_set_new(o, "name", json_string("x"));
    json_object_set_new(o, "product", json_string("milan"));
    json_object_set_new(o, "chain", json_string(pem));
    json_array_append_new(arr, o);
    out = json_dumps(arr, 0);
    json_decref(arr);
    return out;
}

static void test_custom_roots(void)
{
    cf_manifest *m = NULL;
    size_t n, n2;
    char *pem = (char *)t_read_file(t_testdata("sev-snp/roots/ask_ark_milan.pem"), &n);
    char *vlek_pem = (char *)t_read_file(t_testdata("sev-snp/roots/ask_ark_genoa_vlek.pem"), &n2);
    char *ark = strstr(pem + 1, "-----BEGIN CERTIFICATE-----"), *ask, *text;
    const cf_manifest_snp *p;
    json_error_t jerr;
    json_t *doc, *snp, *roots, *o;

    T_ASSERT(ark != NULL);
    ask = strndup(pem, (size_t)(ark - pem));

    /* Two inline chains next to a built-in reference; the Genoa one makes Genoa
     * a trusted product, which then needs a minimum TCB. */
    doc = json_loads(mini, 0, &jerr);
    snp = json_object_get(json_object_get(doc, "platforms"), "sev-snp");
    roots = json_object_get(snp, "roots");
    o = json_pack("{s:s,s:s,s:s}", "name", "pinned-milan", "product", "milan", "chain", pem);
    json_array_append_new(roots, o);
    o = json_pack("{s:s,s:s,s:s,s:b,s:s}", "name", "genoa-vlek", "product", "genoa", "signing_key",
                  "vlek", "simulated", 1, "chain", vlek_pem);
    json_array_append_new(roots, o);
    text = json_dumps(doc, 0);
    T_ERR(parse_str(text, &m), CF_E_PARSE);
    T_ASSERT(strstr(cf_err_detail(CF_E_PARSE), "missing minimum for product 'genoa'") != NULL);
    free(text);
    json_object_set_new(
        json_object_get(snp, "min_tcb"), "genoa",
        json_pack("{s:i,s:i,s:i,s:i}", "bootloader", 9, "tee", 0, "snp", 23, "microcode", 72));
    text = json_dumps(doc, 0);
    json_decref(doc);
    T_OK(parse_str(text, &m));
    free(text);
    p = cf_manifest_snp_policy(m);
    T_EQ(p->n_roots, 2);
    T_STREQ(p->roots[0].name, "pinned-milan");
    T_EQ(p->roots[0].product, CF_SNP_PRODUCT_MILAN);
    T_ASSERT(!p->roots[0].vlek && !p->roots[0].simulated);
    T_STREQ(p->roots[0].chain_pem, pem);
    T_EQ(p->roots[0].chain_pem_len, n);
    T_ASSERT(p->roots[1].vlek && p->roots[1].simulated);
    T_EQ(p->roots[1].product, CF_SNP_PRODUCT_GENOA);
    cf_manifest_free(m);

    /* Shape errors of the inline chain are reported at its path. */
    text = roots_with_chain("amd:milan", "garbage");
    T_REJECT("platforms.sev-snp.roots", text, CF_E_PARSE,
             "platforms.sev-snp.roots[1]: chain has data that is not a PEM certificate");
    free(text);
    text = roots_with_chain(NULL, "");
    T_REJECT("platforms.sev-snp.roots", text, CF_E_PARSE,
             "platforms.sev-snp.roots[0]: chain must hold exactly 2 PEM certificates (ASK or ASVK, "
             "then ARK), found 0");
    free(text);
    text = roots_with_chain(NULL, ask);
    T_REJECT("platforms.sev-snp.roots", text, CF_E_PARSE,
             "platforms.sev-snp.roots[0]: chain must hold exactly 2 PEM certificates (ASK or ASVK, "
             "then ARK), found 1");
    free(text);
    {
        /* ARK first, then ASK: the wrong order. */
        char *swapped = malloc(n + 1);
        T_ASSERT(swapped != NULL);
        memcpy(swapped, ark, strlen(ark));
        memcpy(swapped + strlen(ark), ask, strlen(ask) + 1);
        text = roots_with_chain(NULL, swapped);
        free(swapped);
        T_REJECT("platforms.sev-snp.roots", text, CF_E_PARSE,
                 "platforms.sev-snp.roots[0]: second certificate (ARK) is not self-issued");
        free(text);
    }
    {
        /* Three certificates. */
        char *three = malloc(n + strlen(ask) + 1);
        T_ASSERT(three != NULL);
        memcpy(three, pem, n);
        memcpy(three + n, ask, strlen(ask) + 1);
        text = roots_with_chain(NULL, three);
        free(three);
        T_REJECT("platforms.sev-snp.roots", text, CF_E_PARSE, "found at least 3");
        free(text);
    }
    {
        /* A block that is not a certificate. */
        char *bad = malloc(strlen(ark) + 64);
        T_ASSERT(bad != NULL);
        static const char junk[] = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        memcpy(bad, junk, sizeof(junk) - 1);
        memcpy(bad + sizeof(junk) - 1, ark, strlen(ark) + 1);
        text = roots_with_chain(NULL, bad);
        free(bad);
        T_REJECT("platforms.sev-snp.roots", text, CF_E_PARSE,
                 "platforms.sev-snp.roots[0]: certificate 1 of the chain does not parse");
        free(text);
    }
    {
        /* One base64 character of the ASK's signature changed: the shape is
         * right, the chain verifier's signature check (snp.h) rejects it. */
        char *tampered = strdup(pem);
        char *end = strstr(tampered, "-----END CERTIFICATE-----");
        char *c = end - 8;
        T_ASSERT(tampered != NULL && end != NULL);
        while (*c == '=' || *c == '\n')
            c--;
        *c = *c == 'A' ? 'B' : 'A';
        text = roots_with_chain(NULL, tampered);
        free(tampered);
        T_REJECT("platforms.sev-snp.roots", text, CF_E_PARSE,
                 "platforms.sev-snp.roots[0]: first certificate (ASK) is not signed by the ARK");
        free(text);
    }
    {
        /* Text around the certificates is not allowed either. */
        char *wrapped = malloc(n + 16);
        T_ASSERT(wrapped != NULL);
        memcpy(wrapped, pem, n);
        memcpy(wrapped + n, "comment\n", 9);
        text = roots_with_chain(NULL, wrapped);
        free(wrapped);
        T_REJECT("platforms.sev-snp.roots", text, CF_E_PARSE,
                 "platforms.sev-snp.roots[0]: chain has data that is not a PEM certificate");
        free(text);
    }
    T_REJECT("platforms.sev-snp.roots",
             "[{\"name\":\"amd-own\",\"product\":\"milan\",\"chain\":\"\"}]", CF_E_PARSE,
             "platforms.sev-snp.roots[0]: custom root names must not start with 'amd'");
    T_REJECT("platforms.sev-snp.roots", "[{\"name\":\"x\",\"product\":\"rome\",\"chain\":\"\"}]",
             CF_E_PARSE, "platforms.sev-snp.roots[0]: unknown product 'rome'");
    T_REJECT("platforms.sev-snp.roots",
             "[{\"name\":\"x\",\"product\":\"milan\",\"signing_key\":\"ask\",\"chain\":\"\"}]",
             CF_E_PARSE,
             "platforms.sev-snp.roots[0]: field 'signing_key' must be \"vcek\" or \"vlek\"");
    T_REJECT("platforms.sev-snp.roots", "[{\"product\":\"milan\",\"chain\":\"\"}]", CF_E_PARSE,
             "platforms.sev-snp.roots[0]: missing required field 'name'");
    T_REJECT("platforms.sev-snp.roots", "[{\"name\":\"x\",\"product\":\"milan\"}]", CF_E_PARSE,
             "platforms.sev-snp.roots[0]: missing required field 'chain'");
    free(ask);
    free(pem);
    free(vlek_pem);
}

static void test_developer_key(void)
{
    cf_manifest *m = NULL, *m2 = NULL;

    T_ACCEPT("deployments.0.developer_key", "\"" DEV_KEY_PEM "\"", &m);
    T_OK(parse_str(mini, &m2));
    T_MEMEQ(cf_manifest_deployment_at(m, 0)->developer_key,
            cf_manifest_deployment_at(m2, 0)->developer_key, 32);
    cf_manifest_free(m);
    cf_manifest_free(m2);
    T_REJECT("deployments.0.developer_key", "\"" P256_PEM "\"", CF_E_PARSE,
             "deployments[0]: field 'developer_key' must be an Ed25519 key, not id-ecPublicKey");
    T_REJECT("deployments.0.developer_key", "\"F4L2-KeulD8PjwNzy78QLHGrVxORTCycQOMoWyens\"",
             CF_E_PARSE, "deployments[0]: field 'developer_key' must be an Ed25519 public key");
    T_REJECT("deployments.0.developer_key", "\"F4L2+KeulD8PjwNzy78QLHGrVxORTCycQOMoWyensAk\"",
             CF_E_PARSE, "deployments[0]: field 'developer_key' must be an Ed25519 public key");
    T_REJECT("deployments.0.developer_key",
             "\"-----BEGIN PUBLIC KEY-----\\nAAAA\\n-----END PUBLIC KEY-----\\n\"", CF_E_PARSE,
             "deployments[0]: field 'developer_key' is not a valid PEM public key");
    T_REJECT("deployments.0.developer_key", "\"" DEV_KEY_PEM "trailing\"", CF_E_PARSE,
             "deployments[0]: field 'developer_key' has data after the PEM key");
    T_REJECT("deployments.0.developer_key", NULL, CF_E_PARSE,
             "deployments[0]: missing required field 'developer_key'");
}

static void test_deployments(void)
{
    const char *second =
        "{\"name\":\"d1\",\"tenant\":\"t2\",\"jobs\":[\"x\"],\"developer_key\":\"" DEV_KEY_B64
        "\",\"platforms\":{\"sev-snp\":{\"measurements\":[\"" MEAS_B "\"]}}}";
    char buf[1024];

    T_ASSERT(cf_fmt(buf, sizeof(buf), "%s", second) == 0);
    T_REJECT("deployments.1", buf, CF_E_PARSE, "deployments[1]: duplicate deployment name 'd1'");
    T_REJECT("deployments.0.platforms", "{}", CF_E_PARSE,
             "deployments[0].platforms: must list the deployment's measurements for at least one "
             "platform");
    T_REJECT("deployments.0.platforms.tdx", "{}", CF_E_UNSUPPORTED,
             "deployments[0].platforms: platform 'tdx' is not supported yet");
    T_REJECT("platforms.tdx", "{}", CF_E_UNSUPPORTED,
             "platforms: platform 'tdx' is not supported yet");
    T_REJECT("platforms.sev-snp", NULL, CF_E_PARSE, "platforms: must define at least one platform");
    T_REJECT("platforms.sgx", "{}", CF_E_PARSE, "platforms: unknown field 'sgx'");
}

static void test_guest_policy(void)
{
    T_REJECT("platforms.sev-snp.guest_policy", "{\"forbid\":[\"debug\"]}", CF_E_PARSE,
             "platforms.sev-snp.guest_policy.forbid[0]: the debug bit is set by "
             "platforms.sev-snp.allow_debug");
    T_REJECT("platforms.sev-snp.guest_policy", "{\"require\":[\"smt\"],\"forbid\":[\"smt\"]}",
             CF_E_PARSE, "platforms.sev-snp.guest_policy: 'smt' is both required and forbidden");
    T_REJECT("platforms.sev-snp.guest_policy", "{\"require\":[\"turbo\"]}", CF_E_PARSE,
             "platforms.sev-snp.guest_policy.require[0]: unknown value 'turbo'");
    T_REJECT("platforms.sev-snp.guest_policy", "{\"require\":[\"smt\",\"smt\"]}", CF_E_PARSE,
             "platforms.sev-snp.guest_policy.require[1]: 'smt' is listed twice");
    T_REJECT("platforms.sev-snp.guest_policy", "{\"require\":\"smt\"}", CF_E_PARSE,
             "platforms.sev-snp.guest_policy: field 'require' must be an array");
}

static void test_syntax_and_size(void)
{
    cf_manifest *m = NULL;
    char *big;

    T_ERR(parse_str("", &m), CF_E_PARSE);
    T_ERR(parse_str("[]", &m), CF_E_PARSE);
    T_ASSERT(strstr(cf_err_detail(CF_E_PARSE), "manifest: must be an object") != NULL);
    T_ERR(parse_str("{\"version\":1,\"version\":1}", &m), CF_E_PARSE); /* duplicate key */
    T_ERR(parse_str("{\"version\":1", &m), CF_E_PARSE);
    T_ASSERT(strncmp(cf_err_detail(CF_E_PARSE), "manifest: invalid JSON", 22) == 0);
    T_ERR(cf_manifest_parse(mini, sizeof(mini), &m), CF_E_PARSE); /* trailing NUL */
    big = malloc(CF_MANIFEST_MAX_BYTES + 2);
    T_ASSERT(big != NULL);
    memset(big, ' ', CF_MANIFEST_MAX_BYTES + 1);
    memcpy(big, mini, strlen(mini));
    T_ERR(cf_manifest_parse(big, CF_MANIFEST_MAX_BYTES + 1, &m), CF_E_TOO_LARGE);
    /* At the limit, trailing whitespace is fine. */
    T_OK(cf_manifest_parse(big, CF_MANIFEST_MAX_BYTES, &m));
    cf_manifest_free(m);
    free(big);
    T_ASSERT(m != NULL);
}

static void hash_of(const char *text, char out[CF_MANIFEST_HASH_STR_LEN + 1])
{
    cf_manifest *m = NULL;
    int rc = parse_str(text, &m);

    out[0] = '\0';
    if (rc != 0) {
        fprintf(stderr, "  parse failed: %s\n", cf_err_detail(rc));
        return;
    }
    memcpy(out, cf_manifest_hash_str(m), CF_MANIFEST_HASH_STR_LEN + 1);
    cf_manifest_free(m);
}

static void test_hash(void)
{
    char h0[80], h1[80], h2[80], h3[80], h4[80], h5[80];
    char *example = example_from_docs(), *compact;
    json_error_t jerr;
    json_t *doc;
    cf_manifest *m = NULL;
    size_t clen;
    const char *canon;
    uint8_t raw[32];
    /* The same manifest: keys reordered, re-indented, a string escaped differently. */
    const char *reordered =
        "{ \"deployments\" : [ { \"platforms\":{\"sev-snp\":{\"measurements\":[\"" MEAS_A "\"]}},\n"
        "   \"jobs\":[\"\\u0065cho\"], \"developer_key\":\"" DEV_KEY_B64
        "\", \"tenant\":\"t1\", \"name\":\"d1\"}],\n"
        "  \"platforms\": {\"sev-snp\": {\"min_tcb\": {\"milan\": {\"microcode\":1, \"snp\":1, "
        "\"tee\":0,"
        " \"bootloader\":1}}, \"roots\": [\"amd:milan\"]}},\n\t\"version\": 1 }\n";

    hash_of(mini, h0);
    hash_of(reordered, h1);
    T_ASSERT(h0[0] != '\0');
    T_STREQ(h0, h1);
    T_ASSERT(strncmp(h0, "sha256:", 7) == 0 && strlen(h0) == 71);
    /* Pretty-printed and compact forms of the docs example hash alike, and equal
     * the value computed with Python's sorted compact dump. */
    doc = json_loads(example, 0, &jerr);
    compact = json_dumps(doc, JSON_COMPACT);
    hash_of(compact, h2);
    free(compact);
    compact =
        json_dumps(doc, JSON_INDENT(7) | JSON_SORT_KEYS | JSON_ESCAPE_SLASH | JSON_ENSURE_ASCII);
    hash_of(compact, h3);
    free(compact);
    json_decref(doc);
    T_STREQ(h2, EXAMPLE_HASH);
    T_STREQ(h3, EXAMPLE_HASH);

    /* Any value change changes the hash. */
    {
        cf_manifest *mm = NULL;
        T_ACCEPT("platforms.sev-snp.min_tcb.milan.snp", "2", &mm);
        T_ASSERT(strcmp(cf_manifest_hash_str(mm), h0) != 0);
        memcpy(h4, cf_manifest_hash_str(mm), 72);
        cf_manifest_free(mm);
        T_ACCEPT("deployments.0.tenant", "\"t2\"", &mm);
        T_ASSERT(strcmp(cf_manifest_hash_str(mm), h0) != 0 &&
                 strcmp(cf_manifest_hash_str(mm), h4) != 0);
        memcpy(h5, cf_manifest_hash_str(mm), 72);
        cf_manifest_free(mm);
        /* An explicit default is a different document (docs/MANIFEST.md). */
        T_ACCEPT("platforms.sev-snp.allow_debug", "false", &mm);
        T_ASSERT(strcmp(cf_manifest_hash_str(mm), h0) != 0);
        cf_manifest_free(mm);
    }

    /* The canonical bytes are what was hashed; check them literally. */
    T_OK(parse_str(reordered, &m));
    canon = cf_manifest_canonical(m, &clen);
    T_STREQ(canon,
            "{\"deployments\":[{\"developer_key\":\"" DEV_KEY_B64
            "\",\"jobs\":[\"echo\"],\"name\":\"d1\","
            "\"platforms\":{\"sev-snp\":{\"measurements\":[\"" MEAS_A "\"]}},\"tenant\":\"t1\"}],"
            "\"platforms\":{\"sev-snp\":{\"min_tcb\":{\"milan\":{\"bootloader\":1,\"microcode\":1,"
            "\"snp\":1,"
            "\"tee\":0}},\"roots\":[\"amd:milan\"]}},\"version\":1}");
    T_EQ(clen, strlen(canon));
    T_OK(cf_sha256(canon, clen, raw));
    T_MEMEQ(raw, cf_manifest_hash(m), 32);

    /* Hash pinning. */
    T_OK(cf_manifest_check_hash(m, h0));
    T_ERR(cf_manifest_check_hash(m, h4), CF_E_VERIFY);
    T_ASSERT(strstr(cf_err_detail(CF_E_VERIFY), "manifest hash mismatch: expected sha256:") !=
             NULL);
    T_ERR(cf_manifest_check_hash(m, h0 + 7), CF_E_PARSE);
    T_ERR(cf_manifest_check_hash(m, "sha256:xyz"), CF_E_PARSE);
    T_OK(cf_manifest_hash_document(reordered, strlen(reordered), raw));
    T_MEMEQ(raw, cf_manifest_hash(m), 32);
    T_FAILS(cf_manifest_hash_document("{}", 2, raw));
    cf_manifest_free(m);
    (void)h5;
    free(example);
}

static void test_canonical_escapes(void)
{
    /* Control characters, quotes, backslashes and non-ASCII in a string value
     * (the manifest name) follow RFC 8785 escaping. */
    cf_manifest *m = NULL;
    const char *canon;

    T_ACCEPT("name", "\"a\\\"b\\\\c\\/d\\u00e9\\u0001\\n\\u007f\"", &m);
    canon = cf_manifest_canonical(m, NULL);
    T_ASSERT_MSG(strstr(canon, "\"name\":\"a\\\"b\\\\c/d\xc3\xa9\\u0001\\n\x7f\"") != NULL, "%s",
                 canon);
    cf_manifest_free(m);
}

static void test_load_file(void)
{
    char path[] = "/tmp/coffer-test-manifest-XXXXXX";
    int fd = mkstemp(path);
    cf_manifest *m = NULL;

    T_ASSERT(fd >= 0);
    T_ASSERT(write(fd, mini, strlen(mini)) == (ssize_t)strlen(mini));
    close(fd);
    T_OK(cf_manifest_load(path, &m));
    T_ASSERT(m != NULL && cf_manifest_deployment_count(m) == 1);
    cf_manifest_free(m);
    unlink(path);
    m = NULL;
    T_ERR(cf_manifest_load(path, &m), CF_E_IO);
    T_ASSERT(strstr(cf_err_detail(CF_E_IO), "cannot open manifest") != NULL);
    T_ASSERT(m == NULL);
}

int main(void)
{
    T_RUN(test_docs_example);
    T_RUN(test_mini_defaults);
    T_RUN(test_unknown_fields);
    T_RUN(test_types);
    T_RUN(test_ranges);
    T_RUN(test_hex);
    T_RUN(test_chip_ids);
    T_RUN(test_roots_and_tcb);
    T_RUN(test_custom_roots);
    T_RUN(test_developer_key);
    T_RUN(test_deployments);
    T_RUN(test_guest_policy);
    T_RUN(test_syntax_and_size);
    T_RUN(test_hash);
    T_RUN(test_canonical_escapes);
    T_RUN(test_load_file);
    return t_done();
}
