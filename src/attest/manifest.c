/*
 * Manifest parser, validator and canonical hash. The schema is documented in
 * docs/MANIFEST.md; every rule here has a sentence there.
 *
 * Error messages carry the path of the value at fault ("deployments[2].jobs[0]:
 * ..."), so that an operator can fix a manifest from the message alone.
 */
#include "attest/manifest.h"

#include <errno.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/err.h"
#include "base/json.h"
#include "base/limits.h"
#include "base/parse.h"
#include "base/secmem.h"
#include "crypto/hash.h"

#define PATH_MAX_LEN 192
#define ERR_COPY_LEN 256

struct cf_manifest {
    char *name;
    uint8_t hash[CF_MANIFEST_HASH_LEN];
    char hash_str[CF_MANIFEST_HASH_STR_LEN + 1];
    char *canonical;
    size_t canonical_len;
    bool has_snp;
    cf_manifest_snp snp;
    cf_manifest_deployment *deps;
    size_t n_deps;
};

/* ---- products and policy bits ---- */

static const char *const product_names[CF_SNP_PRODUCT_COUNT] = {
    [CF_SNP_PRODUCT_UNKNOWN] = "unknown",
    [CF_SNP_PRODUCT_MILAN] = "milan",
    [CF_SNP_PRODUCT_GENOA] = "genoa",
    [CF_SNP_PRODUCT_TURIN] = "turin",
};

const char *cf_manifest_product_name(cf_snp_product p)
{
    if ((unsigned)p >= CF_SNP_PRODUCT_COUNT)
        return "unknown";
    return product_names[p];
}

static int product_from_name(const char *s, cf_snp_product *ret)
{
    for (unsigned i = CF_SNP_PRODUCT_MILAN; i < CF_SNP_PRODUCT_COUNT; i++) {
        if (strcmp(s, product_names[i]) == 0) {
            *ret = (cf_snp_product)i;
            return 0;
        }
    }
    return CF_E_NOT_FOUND;
}

/* AMD SEV-SNP ABI, "Guest Policy Structure": the bits a manifest may require or
 * forbid. DEBUG (19) is governed by allow_debug alone, and bit 17 is reserved
 * (must be one), so neither can be named here. */
static const struct {
    const char *name;
    unsigned bit;
} policy_bits[] = {
    {"smt", 16},
    {"migrate_ma", 18},
    {"single_socket", 20},
    {"cxl_allow", 21},
    {"mem_aes_256_xts", 22},
    {"rapl_dis", 23},
    {"ciphertext_hiding", 24},
    {"page_swap_disable", 25},
};

const char *cf_manifest_policy_bit_name(unsigned bit)
{
    for (size_t i = 0; i < CF_ARRAY_LEN(policy_bits); i++)
        if (policy_bits[i].bit == bit)
            return policy_bits[i].name;
    return NULL;
}

/* ---- error helpers ---- */

/* Prefixes the current error detail with the JSON path of the value at fault. */
static int at(const char *path, int rc)
{
    char detail[ERR_COPY_LEN];

    if (rc >= 0)
        return rc;
    /* cf_err_detail points into the buffer cf_err_set writes: copy it first. */
    (void)snprintf(detail, sizeof(detail), "%s", cf_err_detail(rc));
    return cf_err_set(rc, "%s: %s", path, detail);
}

static int sub_path(char out[PATH_MAX_LEN], const char *parent, const char *child)
{
    int rc = cf_fmt(out, PATH_MAX_LEN, "%s.%s", parent, child);
    if (rc < 0)
        return cf_err_set(CF_E_TOO_LARGE, "%s: path too long", parent);
    return 0;
}

static int idx_path(char out[PATH_MAX_LEN], const char *parent, const char *child, size_t i)
{
    int rc = child != NULL ? cf_fmt(out, PATH_MAX_LEN, "%s.%s[%zu]", parent, child, i)
                           : cf_fmt(out, PATH_MAX_LEN, "%s[%zu]", parent, i);
    if (rc < 0)
        return cf_err_set(CF_E_TOO_LARGE, "%s: path too long", parent);
    return 0;
}

/* Strictness shared by every object in the document: only the listed keys, and
 * no JSON null (an explicit null would give two spellings of "absent" and so
 * two manifest hashes for one policy). */
static int check_object(const json_t *obj, const char *path, const char *const *allowed)
{
    const char *key;
    json_t *val;

    if (!json_is_object(obj))
        return cf_err_set(CF_E_PARSE, "%s: must be an object", path);
    CF_GUARD(at(path, cf_json_only_keys(obj, allowed)));
    json_object_foreach ((json_t *)(uintptr_t)obj, key, val) {
        if (json_is_null(val))
            return cf_err_set(CF_E_PARSE, "%s: field '%.64s' must not be null", path, key);
    }
    return 0;
}

/* Identifier syntax for deployment, tenant, job and root names. */
static bool valid_name(const char *s, size_t max)
{
    size_t n = strlen(s);

    if (n == 0 || n > max)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
        if (!alnum && (i == 0 || (c != '-' && c != '_' && c != '.')))
            return false;
    }
    return true;
}

static int get_name(const json_t *obj, const char *key, const char *path, size_t max, char **ret)
{
    const char *s = NULL;
    char *copy;

    CF_GUARD(at(path, cf_json_get_str(obj, key, true, max, &s)));
    if (!valid_name(s, max))
        return cf_err_set(CF_E_PARSE,
                          "%s: field '%s' must be 1 to %zu characters of A-Z a-z 0-9 . _ - "
                          "starting with a letter or digit",
                          path, key, max);
    copy = strdup(s);
    CF_ENSURE(copy != NULL, CF_E_NOMEM);
    *ret = copy;
    return 0;
}

/* Lowercase hex only: one spelling per value, so the hash follows the meaning. */
static bool is_lower_hex(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return false;
    }
    return true;
}

/* A JSON string of exactly 2*n lowercase hex digits into out[n]. */
static int hex_value(const json_t *v, const char *path, const char *what, uint8_t *out, size_t n)
{
    const char *s;

    if (!json_is_string(v))
        return cf_err_set(CF_E_PARSE, "%s: must be a string of %zu lowercase hex digits (%s)", path,
                          2 * n, what);
    s = json_string_value(v);
    if (json_string_length(v) != 2 * n || !is_lower_hex(s, 2 * n))
        return cf_err_set(CF_E_PARSE, "%s: must be %zu lowercase hex digits (%s)", path, 2 * n,
                          what);
    if (cf_hex_decode(s, out, n) != 0)
        return cf_err_set(CF_E_PARSE, "%s: invalid hex", path);
    return 0;
}

static int get_array(const json_t *obj, const char *key, const char *path, bool required,
                     size_t min_items, size_t max_items, json_t **ret)
{
    json_t *a = NULL;

    CF_GUARD(at(path, cf_json_get_array(obj, key, required, max_items, &a)));
    if (a == NULL)
        return 0;
    if (json_array_size(a) < min_items)
        return cf_err_set(CF_E_PARSE, "%s: field '%s' must have at least %zu item%s", path, key,
                          min_items, min_items == 1 ? "" : "s");
    *ret = a;
    return 0;
}

/* ---- canonical serialisation (docs/MANIFEST.md "Manifest hash") ----
 * Sorted keys (byte order), no whitespace, integers in shortest decimal,
 * strings escaped as RFC 8785 §3.2.2.2 prescribes. For the documents this
 * parser accepts (integers only, ASCII keys) the output equals RFC 8785 JCS. */

static int canon_string(cf_buf *b, const char *s, size_t n)
{
    static const char hexd[] = "0123456789abcdef";

    CF_GUARD(cf_buf_put_u8(b, '"'));
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        const char *esc = NULL;
        switch (c) {
        case '"': esc = "\\\""; break;
        case '\\': esc = "\\\\"; break;
        case '\b': esc = "\\b"; break;
        case '\f': esc = "\\f"; break;
        case '\n': esc = "\\n"; break;
        case '\r': esc = "\\r"; break;
        case '\t': esc = "\\t"; break;
        default: break;
        }
        if (esc != NULL) {
            CF_GUARD(cf_buf_put_str(b, esc));
        } else if (c < 0x20) {
            char u[7] = {'\\', 'u', '0', '0', hexd[c >> 4], hexd[c & 15], 0};
            CF_GUARD(cf_buf_put_str(b, u));
        } else {
            CF_GUARD(cf_buf_put_u8(b, c)); /* UTF-8 passes through (jansson validated it) */
        }
    }
    return cf_buf_put_u8(b, '"');
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int canon_value(cf_buf *b, const json_t *v, unsigned depth)
{
    int rc = 0;
    const char **keys = NULL;

    CF_ENSURE(depth <= CF_JSON_MAX_DEPTH, CF_E_PARSE);
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        size_t n = json_object_size(v), i = 0;
        const char *key;
        json_t *val;
        if (n > 0) {
            keys = calloc(n, sizeof(*keys));
            CF_ENSURE_OUT(keys != NULL, CF_E_NOMEM);
        }
        json_object_foreach ((json_t *)(uintptr_t)v, key, val) {
            (void)val;
            if (i < n)
                keys[i++] = key;
        }
        if (n > 0)
            qsort(keys, i, sizeof(*keys), cmp_str);
        CF_GUARD_OUT(cf_buf_put_u8(b, '{'));
        for (size_t k = 0; k < i; k++) {
            if (k > 0)
                CF_GUARD_OUT(cf_buf_put_u8(b, ','));
            CF_GUARD_OUT(canon_string(b, keys[k], strlen(keys[k])));
            CF_GUARD_OUT(cf_buf_put_u8(b, ':'));
            CF_GUARD_OUT(canon_value(b, json_object_get(v, keys[k]), depth + 1));
        }
        CF_GUARD_OUT(cf_buf_put_u8(b, '}'));
        break;
    }
    case JSON_ARRAY:
        CF_GUARD_OUT(cf_buf_put_u8(b, '['));
        for (size_t k = 0; k < json_array_size(v); k++) {
            if (k > 0)
                CF_GUARD_OUT(cf_buf_put_u8(b, ','));
            CF_GUARD_OUT(canon_value(b, json_array_get(v, k), depth + 1));
        }
        CF_GUARD_OUT(cf_buf_put_u8(b, ']'));
        break;
    case JSON_STRING:
        CF_GUARD_OUT(canon_string(b, json_string_value(v), json_string_length(v)));
        break;
    case JSON_INTEGER:
        CF_GUARD_OUT(cf_buf_printf(b, "%" JSON_INTEGER_FORMAT, json_integer_value(v)));
        break;
    case JSON_TRUE: CF_GUARD_OUT(cf_buf_put_str(b, "true")); break;
    case JSON_FALSE: CF_GUARD_OUT(cf_buf_put_str(b, "false")); break;
    case JSON_NULL: CF_GUARD_OUT(cf_buf_put_str(b, "null")); break;
    case JSON_REAL:
    default:
        /* Validation rejects non-integer numbers before we get here. */
        rc = cf_err_set(CF_E_PARSE, "manifest: non-integer numbers are not allowed");
        goto out;
    }
out:
    free(keys);
    return rc;
}

/* ---- platform "sev-snp" ---- */

static int parse_tcb(const json_t *obj, const char *path, cf_snp_product product,
                     cf_manifest_tcb *ret)
{
    static const char *const keys[] = {"bootloader", "tee", "snp", "microcode", NULL};
    static const char *const keys_turin[] = {"bootloader", "tee", "snp", "microcode", "fmc", NULL};
    cf_manifest_tcb t = {.present = true};
    uint64_t v[5] = {0};
    bool turin = product == CF_SNP_PRODUCT_TURIN;

    if (!turin && json_is_object(obj) && json_object_get(obj, "fmc") != NULL)
        return cf_err_set(CF_E_PARSE,
                          "%s: unknown field 'fmc' (the FMC component exists only on turin)", path);
    CF_GUARD(check_object(obj, path, turin ? keys_turin : keys));
    /* SPLs are single bytes of TCB_VERSION (AMD SEV-SNP ABI "TCB_VERSION Structure"). */
    for (size_t i = 0; i < (turin ? 5u : 4u); i++)
        CF_GUARD(at(path, cf_json_get_u64(obj, keys_turin[i], true, UINT8_MAX, &v[i])));
    t.bootloader = (uint8_t)v[0];
    t.tee = (uint8_t)v[1];
    t.snp = (uint8_t)v[2];
    t.microcode = (uint8_t)v[3];
    t.fmc = (uint8_t)v[4];
    *ret = t;
    return 0;
}

static int parse_min_tcb(const json_t *obj, const char *path, cf_manifest_snp *p)
{
    static const char *const keys[] = {"milan", "genoa", "turin", NULL};
    char sub[PATH_MAX_LEN];

    CF_GUARD(check_object(obj, path, keys));
    if (json_object_size(obj) == 0)
        return cf_err_set(CF_E_PARSE, "%s: must give a minimum for at least one product", path);
    for (unsigned i = CF_SNP_PRODUCT_MILAN; i < CF_SNP_PRODUCT_COUNT; i++) {
        json_t *t = json_object_get(obj, product_names[i]);
        if (t == NULL)
            continue;
        CF_GUARD(sub_path(sub, path, product_names[i]));
        CF_GUARD(parse_tcb(t, sub, (cf_snp_product)i, &p->min_tcb[i]));
    }
    return 0;
}

/* Name of the first certificate's subject CN, or "" (bounded copy). */
static void cert_cn(X509 *c, char *out, size_t n)
{
    out[0] = '\0';
    if (X509_NAME_get_text_by_NID(X509_get_subject_name(c), NID_commonName, out, (int)n) < 0)
        out[0] = '\0';
}

static bool only_space(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '\n')
            return false;
    return true;
}

#define PEM_BEGIN_CERT "-----BEGIN CERTIFICATE-----"
#define PEM_END_CERT "-----END CERTIFICATE-----"

/* Splits PEM text into certificate blocks: only whitespace may surround them
 * (OpenSSL's PEM reader would silently skip other text). Stores up to 3
 * [start, end) offsets and returns the number of blocks, or -1 on stray text. */
static int pem_blocks(const char *pem, size_t len, size_t starts[3], size_t ends[3])
{
    size_t pos = 0;
    int n = 0;

    while (pos < len) {
        const char *b = strstr(pem + pos, PEM_BEGIN_CERT), *e;
        size_t bpos = b != NULL ? (size_t)(b - pem) : len;
        if (!only_space(pem + pos, bpos - pos))
            return -1;
        if (b == NULL)
            break;
        e = strstr(b, PEM_END_CERT);
        if (e == NULL)
            return -1;
        if (n < 3) {
            starts[n] = bpos;
            ends[n] = (size_t)(e - pem) + strlen(PEM_END_CERT);
        }
        n++;
        pos = (size_t)(e - pem) + strlen(PEM_END_CERT);
    }
    return n;
}

/* An inline chain must be exactly two PEM certificates: the ASK (or ASVK),
 * then the self-issued ARK that issued it (the order snp.h expects). Signatures
 * are checked by the chain verifier; here we catch shape errors early, at the
 * path where they are. */
static int check_chain_pem(const char *pem, size_t len, const char *path, bool *ret_simulated)
{
    X509 *certs[2] = {NULL, NULL};
    size_t starts[3], ends[3];
    int n, rc = 0;
    char cn[128];

    if (strlen(pem) != len)
        return cf_err_set(CF_E_PARSE, "%s: chain contains a NUL character", path);
    n = pem_blocks(pem, len, starts, ends);
    if (n < 0)
        return cf_err_set(CF_E_PARSE, "%s: chain has data that is not a PEM certificate", path);
    if (n != 2)
        return cf_err_set(CF_E_PARSE,
                          "%s: chain must hold exactly 2 PEM certificates (ASK or ASVK, then ARK), "
                          "found %s%d",
                          path, n >= 3 ? "at least " : "", n >= 3 ? 3 : n);
    for (int i = 0; i < 2; i++) {
        BIO *bio = BIO_new_mem_buf(pem + starts[i], (int)(ends[i] - starts[i]));
        CF_ENSURE_OUT(bio != NULL, CF_E_NOMEM);
        certs[i] = PEM_read_bio_X509(bio, NULL, NULL, NULL);
        BIO_free(bio);
        if (certs[i] == NULL) {
            rc = cf_err_set(CF_E_PARSE, "%s: certificate %d of the chain does not parse", path,
                            i + 1);
            goto out;
        }
    }
    if (X509_NAME_cmp(X509_get_subject_name(certs[1]), X509_get_issuer_name(certs[1])) != 0) {
        rc = cf_err_set(CF_E_PARSE, "%s: second certificate (ARK) is not self-issued", path);
        goto out;
    }
    if (X509_NAME_cmp(X509_get_issuer_name(certs[0]), X509_get_subject_name(certs[1])) != 0) {
        rc = cf_err_set(CF_E_PARSE, "%s: first certificate (ASK/ASVK) is not issued by the ARK",
                        path);
        goto out;
    }
    cert_cn(certs[1], cn, sizeof(cn));
    *ret_simulated = strcmp(cn, CF_SIMULATED_ARK_CN) == 0;
out:
    ERR_clear_error();
    X509_free(certs[0]);
    X509_free(certs[1]);
    return rc;
}

/* The chain verifier's own acceptance test for a pinned chain (ARK self-signed,
 * ASK a CA signed by it, RSASSA-PSS SHA-384 / salt 48: snp.h), run at parse
 * time so that a manifest that parses can also be used. */
static int check_chain_signatures(const char *pem, size_t len, cf_snp_product product, bool vlek,
                                  const char *path)
{
    cf_snp_roots *roots = NULL;
    int rc;

    CF_GUARD(cf_snp_roots_new(&roots));
    rc = cf_snp_roots_add_pem(roots, product, vlek, pem, len);
    cf_snp_roots_free(roots);
    if (rc == CF_E_NOMEM || rc >= 0)
        return rc;
    {
        /* An unusable chain is a defect of the document: report it as one. */
        char detail[ERR_COPY_LEN];
        (void)snprintf(detail, sizeof(detail), "%s", cf_err_detail(rc));
        return cf_err_set(CF_E_PARSE, "%s: %s", path, detail);
    }
}

static int parse_custom_root(const json_t *obj, const char *path, cf_manifest_snp_root *r)
{
    static const char *const keys[] = {"name",  "product",   "signing_key",
                                       "chain", "simulated", NULL};
    const char *product = NULL, *kind = "vcek", *chain = NULL;
    bool simulated = false, ark_simulated = false;

    CF_GUARD(check_object(obj, path, keys));
    CF_GUARD(get_name(obj, "name", path, CF_NAME_MAX_LEN, &r->name));
    if (strncmp(r->name, "amd", 3) == 0)
        return cf_err_set(CF_E_PARSE, "%s: custom root names must not start with 'amd'", path);
    CF_GUARD(at(path, cf_json_get_str(obj, "product", true, 16, &product)));
    if (product_from_name(product, &r->product) != 0)
        return cf_err_set(CF_E_PARSE,
                          "%s: unknown product '%.16s' (expected milan, genoa or turin)", path,
                          product);
    CF_GUARD(at(path, cf_json_get_str(obj, "signing_key", false, 8, &kind)));
    if (strcmp(kind, "vcek") == 0)
        r->vlek = false;
    else if (strcmp(kind, "vlek") == 0)
        r->vlek = true;
    else
        return cf_err_set(CF_E_PARSE, "%s: field 'signing_key' must be \"vcek\" or \"vlek\"", path);
    CF_GUARD(at(path, cf_json_get_bool(obj, "simulated", false, &simulated)));
    CF_GUARD(at(path, cf_json_get_str(obj, "chain", true, CF_MANIFEST_MAX_ROOT_CHAIN, &chain)));
    r->chain_pem_len = strlen(chain);
    CF_GUARD(check_chain_pem(chain, r->chain_pem_len, path, &ark_simulated));
    CF_GUARD(check_chain_signatures(chain, r->chain_pem_len, r->product, r->vlek, path));
    r->chain_pem = strdup(chain);
    CF_ENSURE(r->chain_pem != NULL, CF_E_NOMEM);
    r->simulated = simulated || ark_simulated;
    return 0;
}

static int parse_roots(const json_t *arr, const char *path, cf_manifest_snp *p)
{
    char sub[PATH_MAX_LEN];
    size_t n = json_array_size(arr);

    p->roots = calloc(n, sizeof(*p->roots));
    CF_ENSURE(p->roots != NULL, CF_E_NOMEM);
    for (size_t i = 0; i < n; i++) {
        json_t *v = json_array_get(arr, i);
        CF_GUARD(idx_path(sub, path, NULL, i));
        if (json_is_string(v)) {
            const char *s = json_string_value(v);
            cf_snp_product prod = CF_SNP_PRODUCT_UNKNOWN;
            if (strncmp(s, "amd:", 4) != 0 || product_from_name(s + 4, &prod) != 0)
                return cf_err_set(CF_E_PARSE,
                                  "%s: unknown built-in root '%.32s' (expected amd:milan, "
                                  "amd:genoa or amd:turin)",
                                  sub, s);
            if (p->amd[prod])
                return cf_err_set(CF_E_PARSE, "%s: root '%s' is listed twice", sub, s);
            p->amd[prod] = true;
        } else if (json_is_object(v)) {
            cf_manifest_snp_root *r = &p->roots[p->n_roots];
            /* Count it before parsing so that a half-filled entry is freed. */
            p->n_roots++;
            CF_GUARD(parse_custom_root(v, sub, r));
            for (size_t k = 0; k + 1 < p->n_roots; k++)
                if (strcmp(p->roots[k].name, r->name) == 0)
                    return cf_err_set(CF_E_PARSE, "%s: duplicate root name '%s'", sub, r->name);
        } else {
            return cf_err_set(CF_E_PARSE,
                              "%s: must be a built-in root reference (\"amd:milan\") or an object",
                              sub);
        }
    }
    return 0;
}

static int parse_string_set(const json_t *arr, const char *path, const char *key,
                            const char *const *names, uint64_t *ret_mask)
{
    char sub[PATH_MAX_LEN];
    uint64_t mask = 0;

    for (size_t i = 0; i < json_array_size(arr); i++) {
        json_t *v = json_array_get(arr, i);
        size_t k;
        CF_GUARD(idx_path(sub, path, key, i));
        if (!json_is_string(v))
            return cf_err_set(CF_E_PARSE, "%s: must be a string", sub);
        for (k = 0; names[k] != NULL; k++)
            if (strcmp(json_string_value(v), names[k]) == 0)
                break;
        if (names[k] == NULL)
            return cf_err_set(CF_E_PARSE, "%s: unknown value '%.32s'", sub, json_string_value(v));
        if (mask & (1ull << k))
            return cf_err_set(CF_E_PARSE, "%s: '%s' is listed twice", sub, names[k]);
        mask |= 1ull << k;
    }
    *ret_mask = mask;
    return 0;
}

static int parse_guest_policy(const json_t *obj, const char *path, cf_manifest_snp *p)
{
    static const char *const keys[] = {"require", "forbid", NULL};
    const char *names[CF_ARRAY_LEN(policy_bits) + 1];
    uint64_t masks[2] = {0, 0};
    char sub[PATH_MAX_LEN];

    for (size_t i = 0; i < CF_ARRAY_LEN(policy_bits); i++)
        names[i] = policy_bits[i].name;
    names[CF_ARRAY_LEN(policy_bits)] = NULL;
    CF_GUARD(check_object(obj, path, keys));
    for (size_t w = 0; w < 2; w++) {
        const char *key = keys[w];
        json_t *arr = NULL;
        CF_GUARD(get_array(obj, key, path, false, 0, CF_ARRAY_LEN(policy_bits), &arr));
        if (arr == NULL)
            continue;
        for (size_t i = 0; i < json_array_size(arr); i++) {
            json_t *v = json_array_get(arr, i);
            if (json_is_string(v) && strcmp(json_string_value(v), "debug") == 0) {
                CF_GUARD(idx_path(sub, path, key, i));
                return cf_err_set(CF_E_PARSE,
                                  "%s: the debug bit is set by platforms.sev-snp.allow_debug", sub);
            }
        }
        CF_GUARD(parse_string_set(arr, path, key, names, &masks[w]));
    }
    for (size_t i = 0; i < CF_ARRAY_LEN(policy_bits); i++) {
        uint64_t bit = 1ull << policy_bits[i].bit;
        if (masks[0] & (1ull << i))
            p->policy_require |= bit;
        if (masks[1] & (1ull << i))
            p->policy_forbid |= bit;
        if ((masks[0] & masks[1]) & (1ull << i))
            return cf_err_set(CF_E_PARSE, "%s: '%s' is both required and forbidden", path,
                              policy_bits[i].name);
    }
    return 0;
}

static int parse_chip_ids(const json_t *arr, const char *path, cf_manifest_snp *p)
{
    static const uint8_t zero[CF_SNP_CHIP_ID_LEN] = {0};
    char sub[PATH_MAX_LEN];
    size_t n = json_array_size(arr);

    p->chip_ids = calloc(n, sizeof(*p->chip_ids));
    CF_ENSURE(p->chip_ids != NULL, CF_E_NOMEM);
    for (size_t i = 0; i < n; i++) {
        json_t *v = json_array_get(arr, i);
        uint8_t *id = p->chip_ids[i];
        CF_GUARD(idx_path(sub, path, "chip_ids", i));
        /* 64-byte CHIP_ID (Milan, Genoa), or the 8 bytes Turin fills in with
         * the rest zero (AMD SEV-SNP ABI, ATTESTATION_REPORT CHIP_ID). */
        if (json_is_string(v) && json_string_length(v) == 16)
            CF_GUARD(hex_value(v, sub, "an 8-byte Turin chip id", id, 8));
        else
            CF_GUARD(
                hex_value(v, sub, "a 64-byte chip id, or 16 for Turin", id, CF_SNP_CHIP_ID_LEN));
        /* An all-zero id is what MASK_CHIP_ID produces: it identifies no chip. */
        if (memcmp(id, zero, CF_SNP_CHIP_ID_LEN) == 0)
            return cf_err_set(CF_E_PARSE,
                              "%s: an all-zero chip id matches masked reports, not a chip", sub);
        for (size_t k = 0; k < i; k++)
            if (memcmp(p->chip_ids[k], id, CF_SNP_CHIP_ID_LEN) == 0)
                return cf_err_set(CF_E_PARSE, "%s: duplicate chip id", sub);
        p->n_chip_ids = i + 1;
    }
    return 0;
}

static int parse_snp_policy(const json_t *obj, const char *path, cf_manifest_snp *p)
{
    static const char *const keys[] = {"roots",         "min_tcb",      "allow_debug",
                                       "vmpls",         "signing_keys", "chip_ids",
                                       "min_guest_svn", "guest_policy", NULL};
    static const char *const key_kinds[] = {"vcek", "vlek", NULL};
    char sub[PATH_MAX_LEN];
    json_t *a = NULL, *o = NULL;
    uint64_t u = 0;

    CF_GUARD(check_object(obj, path, keys));

    CF_GUARD(get_array(obj, "roots", path, true, 1, CF_MANIFEST_MAX_ROOTS, &a));
    CF_GUARD(sub_path(sub, path, "roots"));
    CF_GUARD(parse_roots(a, sub, p));

    CF_GUARD(at(path, cf_json_get_obj(obj, "min_tcb", true, &o)));
    CF_GUARD(sub_path(sub, path, "min_tcb"));
    CF_GUARD(parse_min_tcb(o, sub, p));
    /* Fail closed: a product we accept evidence from must have a minimum TCB. */
    for (unsigned i = CF_SNP_PRODUCT_MILAN; i < CF_SNP_PRODUCT_COUNT; i++) {
        bool pinned = p->amd[i];
        for (size_t k = 0; k < p->n_roots; k++)
            pinned = pinned || p->roots[k].product == (cf_snp_product)i;
        if (pinned && !p->min_tcb[i].present)
            return cf_err_set(CF_E_PARSE,
                              "%s: missing minimum for product '%s' (its roots are pinned)", sub,
                              product_names[i]);
    }

    p->allow_debug = false;
    CF_GUARD(at(path, cf_json_get_bool(obj, "allow_debug", false, &p->allow_debug)));

    p->vmpl_mask = 1u << 0;
    a = NULL;
    CF_GUARD(get_array(obj, "vmpls", path, false, 1, 4, &a));
    if (a != NULL) {
        p->vmpl_mask = 0;
        for (size_t i = 0; i < json_array_size(a); i++) {
            json_t *v = json_array_get(a, i);
            CF_GUARD(idx_path(sub, path, "vmpls", i));
            /* VMPL 0-3 (AMD SEV-SNP ABI, ATTESTATION_REPORT VMPL). */
            if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > 3)
                return cf_err_set(CF_E_PARSE, "%s: must be an integer from 0 to 3", sub);
            if (p->vmpl_mask & (1u << json_integer_value(v)))
                return cf_err_set(CF_E_PARSE, "%s: VMPL %d is listed twice", sub,
                                  (int)json_integer_value(v));
            p->vmpl_mask |= (uint8_t)(1u << json_integer_value(v));
        }
    }

    p->allow_vcek = p->allow_vlek = true;
    a = NULL;
    CF_GUARD(get_array(obj, "signing_keys", path, false, 1, 2, &a));
    if (a != NULL) {
        uint64_t mask = 0;
        CF_GUARD(parse_string_set(a, path, "signing_keys", key_kinds, &mask));
        p->allow_vcek = (mask & 1u) != 0;
        p->allow_vlek = (mask & 2u) != 0;
    }

    a = NULL;
    CF_GUARD(get_array(obj, "chip_ids", path, false, 1, CF_MANIFEST_MAX_CHIP_IDS, &a));
    if (a != NULL)
        CF_GUARD(parse_chip_ids(a, path, p));

    CF_GUARD(at(path, cf_json_get_u64(obj, "min_guest_svn", false, UINT32_MAX, &u)));
    if (json_object_get(obj, "min_guest_svn") != NULL) {
        p->has_min_guest_svn = true;
        p->min_guest_svn = (uint32_t)u;
    }

    o = NULL;
    CF_GUARD(at(path, cf_json_get_obj(obj, "guest_policy", false, &o)));
    if (o != NULL) {
        CF_GUARD(sub_path(sub, path, "guest_policy"));
        CF_GUARD(parse_guest_policy(o, sub, p));
    }
    return 0;
}

static int parse_platforms(const json_t *obj, cf_manifest *m)
{
    static const char *const keys[] = {CF_PLATFORM_SEV_SNP, CF_PLATFORM_TDX, NULL};
    const char *path = "platforms";
    json_t *snp;

    CF_GUARD(check_object(obj, path, keys));
    if (json_object_get(obj, CF_PLATFORM_TDX) != NULL)
        return cf_err_set(CF_E_UNSUPPORTED, "%s: platform 'tdx' is not supported yet", path);
    snp = json_object_get(obj, CF_PLATFORM_SEV_SNP);
    if (snp == NULL)
        return cf_err_set(CF_E_PARSE, "%s: must define at least one platform (\"sev-snp\")", path);
    m->has_snp = true;
    return parse_snp_policy(snp, "platforms.sev-snp", &m->snp);
}

/* ---- deployments ---- */

/* Ed25519 public key: 43 characters of unpadded base64url (32 bytes), or a PEM
 * SubjectPublicKeyInfo (RFC 8410 §4). */
static int parse_developer_key(const char *s, const char *path, uint8_t out[CF_ED25519_KEY_LEN])
{
    int rc = 0;
    cf_buf b;
    BIO *bio = NULL;
    EVP_PKEY *pk = NULL;
    size_t len = CF_ED25519_KEY_LEN;
    char rest[64];
    int got;

    cf_buf_init(&b, CF_ED25519_KEY_LEN);
    if (strncmp(s, "-----BEGIN", 10) != 0) {
        if (cf_b64url_decode(s, strlen(s), &b) != 0 || b.len != CF_ED25519_KEY_LEN) {
            rc = cf_err_set(CF_E_PARSE,
                            "%s: field 'developer_key' must be an Ed25519 public key: 43 "
                            "base64url characters (32 bytes) or a PEM public key",
                            path);
            goto out;
        }
        memcpy(out, b.data, CF_ED25519_KEY_LEN);
        goto out;
    }
    bio = BIO_new_mem_buf(s, (int)strlen(s));
    CF_ENSURE_OUT(bio != NULL, CF_E_NOMEM);
    pk = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
    if (pk == NULL) {
        rc =
            cf_err_set(CF_E_PARSE, "%s: field 'developer_key' is not a valid PEM public key", path);
        goto out;
    }
    while ((got = BIO_read(bio, rest, sizeof(rest))) > 0) {
        if (!only_space(rest, (size_t)got)) {
            rc = cf_err_set(CF_E_PARSE, "%s: field 'developer_key' has data after the PEM key",
                            path);
            goto out;
        }
    }
    if (EVP_PKEY_get_id(pk) != EVP_PKEY_ED25519) {
        rc = cf_err_set(CF_E_PARSE, "%s: field 'developer_key' must be an Ed25519 key, not %s",
                        path, OBJ_nid2sn(EVP_PKEY_get_id(pk)));
        goto out;
    }
    if (EVP_PKEY_get_raw_public_key(pk, out, &len) != 1 || len != CF_ED25519_KEY_LEN) {
        rc = cf_err_set(CF_E_CRYPTO, "%s: cannot read the Ed25519 key", path);
        goto out;
    }
out:
    ERR_clear_error();
    EVP_PKEY_free(pk);
    BIO_free(bio);
    cf_buf_free(&b);
    return rc;
}

static int parse_dep_snp(const json_t *obj, const char *path, cf_manifest_deployment *d)
{
    static const char *const keys[] = {"measurements", "host_data", NULL};
    char sub[PATH_MAX_LEN];
    json_t *a = NULL, *h;
    size_t n;

    CF_GUARD(check_object(obj, path, keys));
    CF_GUARD(get_array(obj, "measurements", path, true, 1, CF_MANIFEST_MAX_MEASUREMENTS, &a));
    n = json_array_size(a);
    d->snp_measurements = calloc(n, sizeof(*d->snp_measurements));
    CF_ENSURE(d->snp_measurements != NULL, CF_E_NOMEM);
    for (size_t i = 0; i < n; i++) {
        uint8_t *meas = d->snp_measurements[i];
        CF_GUARD(idx_path(sub, path, "measurements", i));
        CF_GUARD(hex_value(json_array_get(a, i), sub, "a SHA-384 measurement", meas,
                           CF_SNP_MEASUREMENT_LEN));
        for (size_t k = 0; k < i; k++)
            if (memcmp(d->snp_measurements[k], meas, CF_SNP_MEASUREMENT_LEN) == 0)
                return cf_err_set(CF_E_PARSE, "%s: duplicate measurement", sub);
        d->n_snp_measurements = i + 1;
    }
    h = json_object_get(obj, "host_data");
    if (h != NULL) {
        CF_GUARD(sub_path(sub, path, "host_data"));
        CF_GUARD(hex_value(h, sub, "32-byte HOST_DATA", d->host_data, CF_SNP_HOST_DATA_LEN));
        d->has_host_data = true;
    }
    d->has_snp = true;
    return 0;
}

static int parse_deployment(const json_t *obj, const char *path, const cf_manifest *m,
                            cf_manifest_deployment *d)
{
    static const char *const keys[] = {"name",          "tenant",    "jobs",
                                       "developer_key", "platforms", NULL};
    static const char *const plat_keys[] = {CF_PLATFORM_SEV_SNP, CF_PLATFORM_TDX, NULL};
    char sub[PATH_MAX_LEN], snp_path[PATH_MAX_LEN];
    json_t *a = NULL, *plats = NULL, *snp;
    const char *key = NULL;

    CF_GUARD(check_object(obj, path, keys));
    CF_GUARD(get_name(obj, "name", path, CF_NAME_MAX_LEN, &d->name));
    CF_GUARD(get_name(obj, "tenant", path, CF_ID_MAX_LEN, &d->tenant));

    CF_GUARD(get_array(obj, "jobs", path, true, 1, CF_MANIFEST_MAX_JOBS, &a));
    d->jobs = calloc(json_array_size(a), sizeof(*d->jobs));
    CF_ENSURE(d->jobs != NULL, CF_E_NOMEM);
    for (size_t i = 0; i < json_array_size(a); i++) {
        json_t *v = json_array_get(a, i);
        CF_GUARD(idx_path(sub, path, "jobs", i));
        if (!json_is_string(v) || !valid_name(json_string_value(v), CF_NAME_MAX_LEN))
            return cf_err_set(CF_E_PARSE,
                              "%s: must be a job name (1 to %u characters of A-Z a-z 0-9 . _ -)",
                              sub, (unsigned)CF_NAME_MAX_LEN);
        if (cf_manifest_deployment_has_job(d, json_string_value(v)))
            return cf_err_set(CF_E_PARSE, "%s: job '%s' is listed twice", sub,
                              json_string_value(v));
        d->jobs[i] = strdup(json_string_value(v));
        CF_ENSURE(d->jobs[i] != NULL, CF_E_NOMEM);
        d->n_jobs = i + 1;
    }

    CF_GUARD(at(path, cf_json_get_str(obj, "developer_key", true, CF_MANIFEST_MAX_KEY_TEXT, &key)));
    CF_GUARD(parse_developer_key(key, path, d->developer_key));

    CF_GUARD(at(path, cf_json_get_obj(obj, "platforms", true, &plats)));
    CF_GUARD(sub_path(sub, path, "platforms"));
    CF_GUARD(check_object(plats, sub, plat_keys));
    if (json_object_get(plats, CF_PLATFORM_TDX) != NULL)
        return cf_err_set(CF_E_UNSUPPORTED, "%s: platform 'tdx' is not supported yet", sub);
    snp = json_object_get(plats, CF_PLATFORM_SEV_SNP);
    if (snp == NULL)
        return cf_err_set(CF_E_PARSE,
                          "%s: must list the deployment's measurements for at least one platform",
                          sub);
    if (!m->has_snp)
        return cf_err_set(CF_E_PARSE,
                          "%s: platform 'sev-snp' has no policy in the top-level platforms", sub);
    CF_GUARD(sub_path(snp_path, sub, CF_PLATFORM_SEV_SNP));
    return parse_dep_snp(snp, snp_path, d);
}

static int parse_deployments(const json_t *arr, cf_manifest *m)
{
    char sub[PATH_MAX_LEN];
    size_t n = json_array_size(arr);

    m->deps = calloc(n, sizeof(*m->deps));
    CF_ENSURE(m->deps != NULL, CF_E_NOMEM);
    for (size_t i = 0; i < n; i++) {
        cf_manifest_deployment *d = &m->deps[i];
        CF_GUARD(idx_path(sub, "deployments", NULL, i));
        m->n_deps = i + 1;
        CF_GUARD(parse_deployment(json_array_get(arr, i), sub, m, d));
        for (size_t k = 0; k < i; k++)
            if (strcmp(m->deps[k].name, d->name) == 0)
                return cf_err_set(CF_E_PARSE, "%s: duplicate deployment name '%s'", sub, d->name);
    }
    return 0;
}

/* ---- document ---- */

static int parse_document(const json_t *doc, cf_manifest *m)
{
    static const char *const keys[] = {"version", "name", "platforms", "deployments", NULL};
    const char *path = "manifest";
    uint64_t version = 0;
    const char *name = NULL;
    json_t *o = NULL, *a = NULL;

    CF_GUARD(check_object(doc, path, keys));
    CF_GUARD(at(path, cf_json_get_u64(doc, "version", true, UINT32_MAX, &version)));
    if (version != CF_MANIFEST_VERSION)
        return cf_err_set(CF_E_UNSUPPORTED,
                          "%s: unsupported version %llu (this build reads version %d)", path,
                          (unsigned long long)version, CF_MANIFEST_VERSION);
    CF_GUARD(at(path, cf_json_get_str(doc, "name", false, CF_NAME_MAX_LEN, &name)));
    if (name != NULL) {
        if (name[0] == '\0')
            return cf_err_set(CF_E_PARSE, "%s: field 'name' must not be empty", path);
        m->name = strdup(name);
        CF_ENSURE(m->name != NULL, CF_E_NOMEM);
    }
    CF_GUARD(at(path, cf_json_get_obj(doc, "platforms", true, &o)));
    CF_GUARD(parse_platforms(o, m));
    CF_GUARD(get_array(doc, "deployments", path, true, 1, CF_MANIFEST_MAX_DEPLOYMENTS, &a));
    return parse_deployments(a, m);
}

static int compute_hash(const json_t *doc, cf_manifest *m)
{
    cf_buf b;
    int rc = 0;

    cf_buf_init(&b, CF_MANIFEST_MAX_BYTES);
    CF_GUARD_OUT(canon_value(&b, doc, 0));
    CF_GUARD_OUT(cf_sha256(b.data, b.len, m->hash));
    memcpy(m->hash_str, CF_MANIFEST_HASH_PREFIX, 7);
    cf_hex_encode(m->hash, CF_MANIFEST_HASH_LEN, m->hash_str + 7);
    CF_GUARD_OUT(cf_buf_nul_terminate(&b));
    m->canonical = (char *)cf_buf_detach(&b, &m->canonical_len);
    CF_ENSURE_OUT(m->canonical != NULL, CF_E_INTERNAL);
out:
    cf_buf_free(&b);
    return rc;
}

int cf_manifest_parse(const void *data, size_t len, cf_manifest **ret)
{
    json_t *doc = NULL;
    cf_manifest *m = NULL;
    int rc = 0;

    CF_ENSURE(ret != NULL && (data != NULL || len == 0), CF_E_INVAL);
    if (len > CF_MANIFEST_MAX_BYTES)
        return cf_err_set(CF_E_TOO_LARGE, "manifest of %zu bytes exceeds the limit of %u", len,
                          (unsigned)CF_MANIFEST_MAX_BYTES);
    rc = cf_json_parse(data, len, CF_MANIFEST_MAX_BYTES, &doc);
    if (rc < 0) {
        rc = at("manifest", rc);
        goto out;
    }
    m = calloc(1, sizeof(*m));
    CF_ENSURE_OUT(m != NULL, CF_E_NOMEM);
    CF_GUARD_OUT(parse_document(doc, m));
    CF_GUARD_OUT(compute_hash(doc, m));
    *ret = m;
    m = NULL;
out:
    cf_manifest_free(m);
    json_decref(doc);
    return rc;
}

int cf_manifest_load(const char *path, cf_manifest **ret)
{
    FILE *f = NULL;
    cf_buf b;
    uint8_t *space = NULL;
    size_t got;
    int rc = 0;

    CF_ENSURE(path != NULL && ret != NULL, CF_E_INVAL);
    cf_buf_init(&b, CF_MANIFEST_MAX_BYTES + 1);
    f = fopen(path, "rb");
    if (f == NULL) {
        rc = cf_err_set(CF_E_IO, "cannot open manifest %.128s: %s", path, strerror(errno));
        goto out;
    }
    /* Read one byte past the limit so that an oversized file is detected. */
    CF_GUARD_OUT(cf_buf_put_space(&b, CF_MANIFEST_MAX_BYTES + 1, &space));
    got = fread(space, 1, CF_MANIFEST_MAX_BYTES + 1, f);
    if (ferror(f)) {
        rc = cf_err_set(CF_E_IO, "cannot read manifest %.128s", path);
        goto out;
    }
    if (got > CF_MANIFEST_MAX_BYTES) {
        rc = cf_err_set(CF_E_TOO_LARGE, "manifest %.128s exceeds the limit of %u bytes", path,
                        (unsigned)CF_MANIFEST_MAX_BYTES);
        goto out;
    }
    rc = cf_manifest_parse(b.data, got, ret);
out:
    if (f != NULL)
        fclose(f);
    cf_buf_free(&b);
    return rc;
}

void cf_manifest_free(cf_manifest *m)
{
    if (m == NULL)
        return;
    free(m->name);
    free(m->canonical);
    for (size_t i = 0; i < m->snp.n_roots; i++) {
        free(m->snp.roots[i].name);
        free(m->snp.roots[i].chain_pem);
    }
    free(m->snp.roots);
    free(m->snp.chip_ids);
    for (size_t i = 0; i < m->n_deps; i++) {
        cf_manifest_deployment *d = &m->deps[i];
        free(d->name);
        free(d->tenant);
        for (size_t k = 0; k < d->n_jobs; k++)
            free(d->jobs[k]);
        free(d->jobs);
        free(d->snp_measurements);
    }
    free(m->deps);
    free(m);
}

/* ---- accessors ---- */

const uint8_t *cf_manifest_hash(const cf_manifest *m) { return m->hash; }
const char *cf_manifest_hash_str(const cf_manifest *m) { return m->hash_str; }
const char *cf_manifest_name(const cf_manifest *m) { return m->name; }

const char *cf_manifest_canonical(const cf_manifest *m, size_t *ret_len)
{
    if (ret_len != NULL)
        *ret_len = m->canonical_len;
    return m->canonical;
}

int cf_manifest_check_hash(const cf_manifest *m, const char *expected)
{
    uint8_t want[CF_MANIFEST_HASH_LEN];

    CF_ENSURE(m != NULL && expected != NULL, CF_E_INVAL);
    if (strlen(expected) != CF_MANIFEST_HASH_STR_LEN ||
        strncmp(expected, CF_MANIFEST_HASH_PREFIX, 7) != 0 ||
        cf_hex_decode(expected + 7, want, sizeof(want)) != 0)
        return cf_err_set(CF_E_PARSE, "manifest hash must be \"sha256:\" and 64 hex digits");
    if (!cf_ct_eq(want, m->hash, sizeof(want)))
        return cf_err_set(CF_E_VERIFY, "manifest hash mismatch: expected %.71s, manifest is %s",
                          expected, m->hash_str);
    return 0;
}

int cf_manifest_hash_document(const void *data, size_t len, uint8_t ret[CF_MANIFEST_HASH_LEN])
{
    cf_manifest *m = NULL;

    CF_ENSURE(ret != NULL, CF_E_INVAL);
    CF_GUARD(cf_manifest_parse(data, len, &m));
    memcpy(ret, m->hash, CF_MANIFEST_HASH_LEN);
    cf_manifest_free(m);
    return 0;
}

const cf_manifest_snp *cf_manifest_snp_policy(const cf_manifest *m)
{
    return m->has_snp ? &m->snp : NULL;
}

size_t cf_manifest_deployment_count(const cf_manifest *m) { return m->n_deps; }

const cf_manifest_deployment *cf_manifest_deployment_at(const cf_manifest *m, size_t i)
{
    return i < m->n_deps ? &m->deps[i] : NULL;
}

const cf_manifest_deployment *cf_manifest_find_deployment(const cf_manifest *m, const char *name)
{
    if (name == NULL)
        return NULL;
    for (size_t i = 0; i < m->n_deps; i++)
        if (strcmp(m->deps[i].name, name) == 0)
            return &m->deps[i];
    return NULL;
}

bool cf_manifest_deployment_allows_snp_measurement(const cf_manifest_deployment *d,
                                                   const uint8_t meas[CF_SNP_MEASUREMENT_LEN])
{
    for (size_t i = 0; i < d->n_snp_measurements; i++)
        if (memcmp(d->snp_measurements[i], meas, CF_SNP_MEASUREMENT_LEN) == 0)
            return true;
    return false;
}

bool cf_manifest_deployment_has_job(const cf_manifest_deployment *d, const char *job)
{
    for (size_t i = 0; i < d->n_jobs; i++)
        if (d->jobs[i] != NULL && strcmp(d->jobs[i], job) == 0)
            return true;
    return false;
}

bool cf_manifest_snp_chip_allowed(const cf_manifest_snp *p,
                                  const uint8_t chip_id[CF_SNP_CHIP_ID_LEN])
{
    for (size_t i = 0; i < p->n_chip_ids; i++)
        if (memcmp(p->chip_ids[i], chip_id, CF_SNP_CHIP_ID_LEN) == 0)
            return true;
    return false;
}
