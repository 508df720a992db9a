/*
 * Simulated AMD key chain and report signing (attest/sim.h).
 *
 * Certificate structure follows AMD's own certificates (VCEK Certificate and
 * KDS Interface Specification, and the ARK/ASK/VCEK that AMD's KDS issues):
 *   ARK  serial 0x10000, self-signed, keyUsage critical {keyCertSign, cRLSign},
 *        subjectKeyIdentifier, basicConstraints critical CA:TRUE
 *   ASK  serial 0x10001, issued by the ARK, subjectKeyIdentifier,
 *        authorityKeyIdentifier, basicConstraints critical CA:TRUE pathlen:0,
 *        keyUsage critical keyCertSign
 *   VCEK serial 0, issued by the ASK, ECDSA P-384, no keyUsage, and the AMD
 *        extensions (extnValue bytes exactly as AMD writes them):
 *          1.3.6.1.4.1.3704.1.1    structVersion  INTEGER 0
 *          1.3.6.1.4.1.3704.1.2    productName1   IA5String "Milan-B0"
 *          1.3.6.1.4.1.3704.1.3.1  blSPL          INTEGER
 *          1.3.6.1.4.1.3704.1.3.2  teeSPL         INTEGER
 *          1.3.6.1.4.1.3704.1.3.4-.7 spl_4..spl_7 INTEGER 0
 *          1.3.6.1.4.1.3704.1.3.3  snpSPL         INTEGER
 *          1.3.6.1.4.1.3704.1.3.8  ucodeSPL       INTEGER
 *          1.3.6.1.4.1.3704.1.4    hwID           the 64 chip-id bytes, unwrapped
 *        in the order AMD's Milan VCEKs list them.
 * Every signature is RSASSA-PSS, SHA-384, MGF1-SHA-384, salt 48.
 *
 * The names say "Coffer", never "Advanced Micro Devices": a simulated chain
 * must not impersonate AMD, and the verifier uses the ARK's CN to explain that
 * a report was signed by the simulated root.
 */
#include "attest/sim.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/err.h"
#include "base/limits.h"
#include "base/parse.h"
#include "base/secmem.h"
#include "crypto/hash.h"

#define SIM_DIR "sim"
#define F_ARK "ark.pem"
#define F_ASK "ask.pem"
#define F_ASK_KEY "ask.key"
#define F_CHIP_ID "chip_id"
#define F_VCEK "vcek.pem"
#define F_VCEK_KEY "vcek.key"

#define ARK_SERIAL 0x10000
#define ASK_SERIAL 0x10001
#define VCEK_SERIAL 0
#define CA_VALID_DAYS (25 * 365)
#define VCEK_VALID_DAYS (7 * 365)
#define BACKDATE_SECONDS (24L * 3600) /* tolerate verifier clocks a day behind */
#define PSS_SALT_LEN 48
#define PATH_BUF 4096

/* PLATFORM_INFO bit 0: SMT enabled (ABI "PLATFORM_INFO" field). */
#define SIM_PLATFORM_INFO 0x1ull

struct cf_sim {
    X509 *ark, *ask, *vcek;
    EVP_PKEY *vcek_key;
    uint8_t chip_id[CF_SIM_CHIP_ID_LEN];
    cf_sim_tcb tcb;
    bool created_chain, issued_vcek;
};

/* ---- TCB ---- */

void cf_sim_tcb_default(cf_sim_tcb *ret)
{
    ret->bootloader = 4;
    ret->tee = 0;
    ret->snp = 22;
    ret->microcode = 213;
}

int cf_sim_tcb_parse(const char *spec, cf_sim_tcb *ret)
{
    static const char *const keys[] = {"bl", "tee", "snp", "ucode"};
    cf_sim_tcb t = *ret;
    unsigned seen = 0;
    size_t len = strnlen(spec, CF_SIM_TCB_SPEC_MAX + 1);
    const char *p = spec;

    if (len == 0 || len > CF_SIM_TCB_SPEC_MAX)
        return cf_err_set(CF_E_PARSE, "TCB must look like bl=4,tee=0,snp=22,ucode=213");
    for (;;) {
        char item[CF_SIM_TCB_SPEC_MAX + 1];
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        char *eq;
        uint64_t v;
        size_t k;

        memcpy(item, p, n);
        item[n] = '\0';
        eq = strchr(item, '=');
        if (eq == NULL)
            return cf_err_set(CF_E_PARSE, "TCB item '%s' is not key=value", item);
        *eq = '\0';
        for (k = 0; k < CF_ARRAY_LEN(keys); k++)
            if (strcmp(item, keys[k]) == 0)
                break;
        if (k == CF_ARRAY_LEN(keys))
            return cf_err_set(CF_E_PARSE, "unknown TCB component '%s' (bl, tee, snp, ucode)",
                              item);
        if (seen & (1u << k))
            return cf_err_set(CF_E_PARSE, "TCB component '%s' given twice", item);
        seen |= 1u << k;
        if (cf_parse_u64(eq + 1, 255, &v) < 0)
            return cf_err_set(CF_E_RANGE, "TCB component '%s' must be 0..255", item);
        switch (k) {
        case 0: t.bootloader = (uint8_t)v; break;
        case 1: t.tee = (uint8_t)v; break;
        case 2: t.snp = (uint8_t)v; break;
        default: t.microcode = (uint8_t)v; break;
        }
        if (comma == NULL)
            break;
        p = comma + 1;
    }
    *ret = t;
    return 0;
}

uint64_t cf_sim_tcb_raw(const cf_sim_tcb *tcb)
{
    /* Milan TCB_VERSION (ABI "TCB_VERSION Structure"): byte 0 BOOT_LOADER,
     * byte 1 TEE, bytes 2-5 reserved, byte 6 SNP, byte 7 MICROCODE. */
    return (uint64_t)tcb->bootloader | (uint64_t)tcb->tee << 8 | (uint64_t)tcb->snp << 48 |
           (uint64_t)tcb->microcode << 56;
}

/* ---- files ---- */

static int write_all(int fd, const void *p, size_t n)
{
    const uint8_t *c = p;
    size_t done = 0;

    while (done < n) {
        ssize_t w = write(fd, c + done, n - done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return CF_E_IO;
        done += (size_t)w;
    }
    return 0;
}

static int write_state_file(int dfd, const char *name, const void *data, size_t len, mode_t mode)
{
    int rc = 0;
    int fd = openat(dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);

    if (fd < 0)
        return cf_err_set(CF_E_IO, "cannot create simulator file %s: %s", name, strerror(errno));
    CF_ENSURE_OUT(write_all(fd, data, len) == 0 && fsync(fd) == 0,
                  cf_err_set(CF_E_IO, "cannot write simulator file %s", name));
out:
    close(fd);
    return rc;
}

static int state_incomplete(const char *where, const char *name)
{
    return cf_err_set(CF_E_CONFIG,
                      "simulator state '%s' is incomplete or damaged (%s). It is never "
                      "regenerated silently: remove the directory to create a new chain, then "
                      "update every manifest that pins the old simulated root",
                      where, name);
}

/* Reads a whole state file (regular, ours, at most max bytes) into out,
 * NUL-terminated. Private keys must not be readable by group or others. */
static int read_state_file(int dfd, const char *where, const char *name, size_t max, bool secret,
                           cf_buf *out)
{
    struct stat st;
    uint8_t *p;
    uint8_t probe;
    size_t done = 0;
    int rc = 0;
    int fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);

    if (fd < 0 && errno == ENOENT)
        return state_incomplete(where, name);
    if (fd < 0)
        return cf_err_set(CF_E_IO, "cannot open %s/%s: %s", where, name, strerror(errno));
    CF_ENSURE_OUT(fstat(fd, &st) == 0 && S_ISREG(st.st_mode), state_incomplete(where, name));
    CF_ENSURE_OUT(st.st_uid == geteuid(),
                  cf_err_set(CF_E_CONFIG, "%s/%s is not owned by the current user", where, name));
    CF_ENSURE_OUT(!secret || (st.st_mode & 077) == 0,
                  cf_err_set(CF_E_CONFIG, "%s/%s is accessible by group or others (mode %03o); "
                                          "private keys must be mode 0600",
                             where, name, (unsigned)(st.st_mode & 0777)));
    CF_ENSURE_OUT(st.st_size > 0 && (uint64_t)st.st_size <= max, state_incomplete(where, name));
    CF_GUARD_OUT(cf_buf_put_space(out, (size_t)st.st_size, &p));
    while (done < (size_t)st.st_size) {
        ssize_t n = read(fd, p + done, (size_t)st.st_size - done);
        if (n < 0 && errno == EINTR)
            continue;
        CF_ENSURE_OUT(n > 0, cf_err_set(CF_E_IO, "cannot read %s/%s", where, name));
        done += (size_t)n;
    }
    CF_ENSURE_OUT(read(fd, &probe, 1) == 0,
                  cf_err_set(CF_E_CONFLICT, "%s/%s changed while it was read", where, name));
    CF_GUARD_OUT(cf_buf_nul_terminate(out));
out:
    close(fd);
    return rc;
}

static int check_private_dir(int dfd, const char *where)
{
    struct stat st;

    if (fstat(dfd, &st) != 0 || !S_ISDIR(st.st_mode))
        return cf_err_set(CF_E_IO, "cannot stat '%s'", where);
    if (st.st_uid != geteuid())
        return cf_err_set(CF_E_CONFIG, "'%s' is not owned by the current user", where);
    if ((st.st_mode & 077) != 0)
        return cf_err_set(CF_E_CONFIG, "'%s' is accessible by group or others (mode %03o); it "
                                       "must be mode 0700", where, (unsigned)(st.st_mode & 0777));
    return 0;
}

/* Removes a temporary directory we created with the files we put in it. */
static void remove_tmp_dir(int parent, const char *tmp, const char *const *names, size_t n)
{
    int fd = openat(parent, tmp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

    if (fd >= 0) {
        for (size_t i = 0; i < n; i++)
            (void)unlinkat(fd, names[i], 0);
        close(fd);
    }
    (void)unlinkat(parent, tmp, AT_REMOVEDIR);
}

static int random_tmp_name(const char *prefix, char *out, size_t size)
{
    uint8_t r[8];
    char hex[2 * sizeof(r) + 1];

    CF_GUARD(cf_random(r, sizeof(r)));
    cf_hex_encode(r, sizeof(r), hex);
    return cf_fmt(out, size, ".%s-tmp-%s", prefix, hex);
}

/* Moves a fully written temporary directory into place without ever replacing
 * an existing entry. *ret_lost is set if another process got there first. */
static int publish_dir(int parent, const char *tmp, const char *name, bool *ret_lost)
{
    int r = renameat2(parent, tmp, parent, name, RENAME_NOREPLACE);

    if (r != 0 && errno == EINVAL) {
        /* File system without RENAME_NOREPLACE: rename(2) still refuses to
         * replace a non-empty directory, which is what we need. */
        r = renameat(parent, tmp, parent, name);
    }
    if (r == 0) {
        *ret_lost = false;
        (void)fsync(parent);
        return 0;
    }
    if (errno == EEXIST || errno == ENOTEMPTY) {
        *ret_lost = true;
        return 0;
    }
    return cf_err_set(CF_E_IO, "cannot move simulator state into place: %s", strerror(errno));
}

/* ---- OpenSSL helpers ---- */

static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)u;
    return -1; /* our keys are never encrypted: never prompt */
}

static int cert_from_pem(const cf_buf *pem, const char *where, const char *name, X509 **ret)
{
    BIO *b = BIO_new_mem_buf(pem->data, (int)pem->len);
    X509 *x = NULL, *extra = NULL;
    int rc = 0;

    CF_ENSURE_OUT(b != NULL, CF_E_NOMEM);
    x = PEM_read_bio_X509(b, NULL, no_passphrase, NULL);
    CF_ENSURE_OUT(x != NULL, state_incomplete(where, name));
    extra = PEM_read_bio_X509(b, NULL, no_passphrase, NULL);
    CF_ENSURE_OUT(extra == NULL, state_incomplete(where, name));
    *ret = x;
    x = NULL;
out:
    ERR_clear_error();
    X509_free(extra);
    X509_free(x);
    BIO_free(b);
    return rc;
}

static int load_key(int dfd, const char *where, const char *name, EVP_PKEY **ret)
{
    cf_buf pem;
    BIO *b = NULL;
    EVP_PKEY *k = NULL;
    int rc = 0;

    cf_buf_init_secret(&pem, CF_SIM_KEY_MAX_BYTES + 1);
    CF_GUARD_OUT(read_state_file(dfd, where, name, CF_SIM_KEY_MAX_BYTES, true, &pem));
    b = BIO_new_mem_buf(pem.data, (int)pem.len);
    CF_ENSURE_OUT(b != NULL, CF_E_NOMEM);
    k = PEM_read_bio_PrivateKey(b, NULL, no_passphrase, NULL);
    CF_ENSURE_OUT(k != NULL, state_incomplete(where, name));
    *ret = k;
out:
    ERR_clear_error();
    BIO_free(b);
    cf_buf_free(&pem);
    return rc;
}

static int load_cert(int dfd, const char *where, const char *name, X509 **ret)
{
    cf_buf pem;
    int rc;

    cf_buf_init(&pem, CF_CERT_MAX_BYTES + 1);
    rc = read_state_file(dfd, where, name, CF_CERT_MAX_BYTES, false, &pem);
    if (rc == 0)
        rc = cert_from_pem(&pem, where, name, ret);
    cf_buf_free(&pem);
    return rc;
}

static int key_pem(EVP_PKEY *k, cf_buf *out)
{
    /* Secure-heap memory BIO: cleansed when freed. */
    BIO *b = BIO_new(BIO_s_secmem());
    char *p = NULL;
    long n;
    int rc = 0;

    CF_ENSURE_OUT(b != NULL, CF_E_NOMEM);
    CF_ENSURE_OUT(PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL) == 1, CF_E_CRYPTO);
    n = BIO_get_mem_data(b, &p);
    CF_ENSURE_OUT(n > 0 && p != NULL, CF_E_CRYPTO);
    CF_GUARD_OUT(cf_buf_put(out, p, (size_t)n));
out:
    BIO_free(b);
    return rc;
}

static int cert_pem(X509 *x, cf_buf *out)
{
    BIO *b = BIO_new(BIO_s_mem());
    char *p = NULL;
    long n;
    int rc = 0;

    CF_ENSURE_OUT(b != NULL, CF_E_NOMEM);
    CF_ENSURE_OUT(PEM_write_bio_X509(b, x) == 1, CF_E_CRYPTO);
    n = BIO_get_mem_data(b, &p);
    CF_ENSURE_OUT(n > 0 && p != NULL, CF_E_CRYPTO);
    CF_GUARD_OUT(cf_buf_put(out, p, (size_t)n));
out:
    BIO_free(b);
    return rc;
}

static int write_key_file(int dfd, const char *name, EVP_PKEY *k)
{
    cf_buf pem;
    int rc;

    cf_buf_init_secret(&pem, CF_SIM_KEY_MAX_BYTES);
    rc = key_pem(k, &pem);
    if (rc == 0)
        rc = write_state_file(dfd, name, pem.data, pem.len, 0600);
    cf_buf_free(&pem);
    return rc;
}

static int write_cert_file(int dfd, const char *name, X509 *x)
{
    cf_buf pem;
    int rc;

    cf_buf_init(&pem, CF_CERT_MAX_BYTES);
    rc = cert_pem(x, &pem);
    if (rc == 0)
        rc = write_state_file(dfd, name, pem.data, pem.len, 0644);
    cf_buf_free(&pem);
    return rc;
}

static int set_name(X509_NAME *n, const char *cn)
{
    static const unsigned char ou[] = "Simulated Secure Processor";
    static const unsigned char o[] = "Coffer";

    if (X509_NAME_add_entry_by_txt(n, "OU", MBSTRING_UTF8, ou, -1, -1, 0) != 1 ||
        X509_NAME_add_entry_by_txt(n, "O", MBSTRING_UTF8, o, -1, -1, 0) != 1 ||
        X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1, -1,
                                   0) != 1)
        return CF_E_CRYPTO;
    return 0;
}

/* A v3 certificate body; issuer NULL means self-issued. */
static int new_cert(long serial, EVP_PKEY *pub, const char *cn, X509 *issuer, long days,
                    X509 **ret)
{
    X509 *x = X509_new();
    int rc = 0;

    CF_ENSURE_OUT(x != NULL, CF_E_NOMEM);
    CF_ENSURE_OUT(X509_set_version(x, X509_VERSION_3) == 1 &&
                      ASN1_INTEGER_set(X509_get_serialNumber(x), serial) == 1 &&
                      X509_gmtime_adj(X509_getm_notBefore(x), -BACKDATE_SECONDS) != NULL &&
                      X509_time_adj_ex(X509_getm_notAfter(x), (int)days, 0, NULL) != NULL,
                  CF_E_CRYPTO);
    CF_GUARD_OUT(set_name(X509_get_subject_name(x), cn));
    CF_ENSURE_OUT(X509_set_issuer_name(x, issuer != NULL ? X509_get_subject_name(issuer)
                                                         : X509_get_subject_name(x)) == 1 &&
                      X509_set_pubkey(x, pub) == 1,
                  CF_E_CRYPTO);
    *ret = x;
    x = NULL;
out:
    X509_free(x);
    return rc;
}

static int add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509_EXTENSION *e;
    int ok;

    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer != NULL ? issuer : x, x, NULL, NULL, 0);
    e = X509V3_EXT_nconf_nid(NULL, &ctx, nid, value);
    if (e == NULL)
        return CF_E_CRYPTO;
    ok = X509_add_ext(x, e, -1);
    X509_EXTENSION_free(e);
    return ok == 1 ? 0 : CF_E_CRYPTO;
}

/* RSASSA-PSS, SHA-384, MGF1-SHA-384, salt 48: AMD's only certificate signature scheme. */
static int sign_pss(X509 *x, EVP_PKEY *key)
{
    EVP_MD_CTX *m = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    int rc = 0;

    CF_ENSURE_OUT(m != NULL, CF_E_NOMEM);
    CF_ENSURE_OUT(EVP_DigestSignInit(m, &pctx, EVP_sha384(), NULL, key) == 1 &&
                      EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) > 0 &&
                      EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, PSS_SALT_LEN) > 0 &&
                      EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, EVP_sha384()) > 0 &&
                      X509_sign_ctx(x, m) > 0,
                  CF_E_CRYPTO);
out:
    EVP_MD_CTX_free(m);
    return rc;
}

/* ---- the AMD VCEK extensions ---- */

static const char *const amd_ext_oids[] = {
    "1.3.6.1.4.1.3704.1.1",   /* structVersion */
    "1.3.6.1.4.1.3704.1.2",   /* productName1 */
    "1.3.6.1.4.1.3704.1.3.1", /* blSPL */
    "1.3.6.1.4.1.3704.1.3.2", /* teeSPL */
    "1.3.6.1.4.1.3704.1.3.4", /* spl_4 */
    "1.3.6.1.4.1.3704.1.3.5", /* spl_5 */
    "1.3.6.1.4.1.3704.1.3.6", /* spl_6 */
    "1.3.6.1.4.1.3704.1.3.7", /* spl_7 */
    "1.3.6.1.4.1.3704.1.3.3", /* snpSPL */
    "1.3.6.1.4.1.3704.1.3.8", /* ucodeSPL */
    "1.3.6.1.4.1.3704.1.4",   /* hwID */
};
#define N_AMD_EXT CF_ARRAY_LEN(amd_ext_oids)

/* DER INTEGER for 0..255 (a leading zero byte keeps values >= 0x80 positive). */
static int der_u8_integer(uint8_t v, cf_buf *out)
{
    CF_GUARD(cf_buf_put_u8(out, 0x02));
    if (v < 0x80) {
        CF_GUARD(cf_buf_put_u8(out, 1));
    } else {
        CF_GUARD(cf_buf_put_u8(out, 2));
        CF_GUARD(cf_buf_put_u8(out, 0));
    }
    return cf_buf_put_u8(out, v);
}

/* The extnValue contents of AMD extension i for tcb and chip id. */
static int amd_ext_value(size_t i, const cf_sim_tcb *tcb, const uint8_t chip_id[64], cf_buf *out)
{
    static const char product[] = CF_SIM_PRODUCT_NAME;

    switch (i) {
    case 0: return der_u8_integer(0, out);
    case 1:
        CF_GUARD(cf_buf_put_u8(out, 0x16)); /* IA5String */
        CF_GUARD(cf_buf_put_u8(out, (uint8_t)(sizeof(product) - 1)));
        return cf_buf_put(out, product, sizeof(product) - 1);
    case 2: return der_u8_integer(tcb->bootloader, out);
    case 3: return der_u8_integer(tcb->tee, out);
    case 4:
    case 5:
    case 6:
    case 7: return der_u8_integer(0, out);
    case 8: return der_u8_integer(tcb->snp, out);
    case 9: return der_u8_integer(tcb->microcode, out);
    case 10: return cf_buf_put(out, chip_id, CF_SIM_CHIP_ID_LEN);
    default: return CF_E_INTERNAL;
    }
}

static int add_amd_exts(X509 *x, const cf_sim_tcb *tcb, const uint8_t chip_id[64])
{
    cf_buf v;
    int rc = 0;

    cf_buf_init(&v, 128);
    for (size_t i = 0; i < N_AMD_EXT; i++) {
        ASN1_OBJECT *obj = OBJ_txt2obj(amd_ext_oids[i], 1);
        ASN1_OCTET_STRING *os = ASN1_OCTET_STRING_new();
        X509_EXTENSION *e = NULL;
        int ok;

        cf_buf_reset(&v);
        rc = amd_ext_value(i, tcb, chip_id, &v);
        ok = rc == 0 && obj != NULL && os != NULL && ASN1_OCTET_STRING_set(os, v.data, (int)v.len) == 1 &&
             (e = X509_EXTENSION_create_by_OBJ(NULL, obj, 0, os)) != NULL &&
             X509_add_ext(x, e, -1) == 1;
        X509_EXTENSION_free(e);
        ASN1_OCTET_STRING_free(os);
        ASN1_OBJECT_free(obj);
        CF_ENSURE_OUT(ok, rc < 0 ? rc : CF_E_CRYPTO);
    }
out:
    cf_buf_free(&v);
    return rc;
}

/* The VCEK must carry exactly the AMD extensions for tcb and chip id, once each. */
static int check_amd_exts(X509 *x, const cf_sim_tcb *tcb, const uint8_t chip_id[64])
{
    cf_buf v;
    int rc = 0;

    cf_buf_init(&v, 128);
    CF_ENSURE_OUT(X509_get_ext_count(x) == (int)N_AMD_EXT, CF_E_VERIFY);
    for (size_t i = 0; i < N_AMD_EXT; i++) {
        ASN1_OBJECT *obj = OBJ_txt2obj(amd_ext_oids[i], 1);
        int idx = obj != NULL ? X509_get_ext_by_OBJ(x, obj, -1) : -1;
        int dup = idx >= 0 ? X509_get_ext_by_OBJ(x, obj, idx) : -1;
        const ASN1_OCTET_STRING *data =
            idx >= 0 ? X509_EXTENSION_get_data(X509_get_ext(x, idx)) : NULL;

        ASN1_OBJECT_free(obj);
        cf_buf_reset(&v);
        CF_GUARD_OUT(amd_ext_value(i, tcb, chip_id, &v));
        CF_ENSURE_OUT(data != NULL && dup < 0 && (size_t)ASN1_STRING_length(data) == v.len &&
                          memcmp(ASN1_STRING_get0_data(data), v.data, v.len) == 0,
                      CF_E_VERIFY);
    }
out:
    ERR_clear_error();
    cf_buf_free(&v);
    return rc;
}

/* ---- chain creation ---- */

static int make_ark(EVP_PKEY *key, X509 **ret)
{
    X509 *x = NULL;
    int rc = 0;

    CF_GUARD_OUT(new_cert(ARK_SERIAL, key, CF_SIM_ARK_CN, NULL, CA_VALID_DAYS, &x));
    CF_GUARD_OUT(add_ext(x, NULL, NID_key_usage, "critical,keyCertSign,cRLSign"));
    CF_GUARD_OUT(add_ext(x, NULL, NID_subject_key_identifier, "hash"));
    CF_GUARD_OUT(add_ext(x, NULL, NID_basic_constraints, "critical,CA:TRUE"));
    CF_GUARD_OUT(sign_pss(x, key));
    *ret = x;
    x = NULL;
out:
    X509_free(x);
    return rc;
}

static int make_ask(EVP_PKEY *key, X509 *ark, EVP_PKEY *ark_key, X509 **ret)
{
    X509 *x = NULL;
    int rc = 0;

    CF_GUARD_OUT(new_cert(ASK_SERIAL, key, CF_SIM_ASK_CN, ark, CA_VALID_DAYS, &x));
    CF_GUARD_OUT(add_ext(x, ark, NID_subject_key_identifier, "hash"));
    CF_GUARD_OUT(add_ext(x, ark, NID_authority_key_identifier, "keyid:always"));
    CF_GUARD_OUT(add_ext(x, ark, NID_basic_constraints, "critical,CA:TRUE,pathlen:0"));
    CF_GUARD_OUT(add_ext(x, ark, NID_key_usage, "critical,keyCertSign"));
    CF_GUARD_OUT(sign_pss(x, ark_key));
    *ret = x;
    x = NULL;
out:
    X509_free(x);
    return rc;
}

static const char *const chain_files[] = {F_ARK, F_ASK, F_ASK_KEY, F_CHIP_ID};

/* Creates STATE/sim: new ARK and ASK (the ARK key is used once and dropped),
 * a random chip id, then an atomic rename into place. */
static int create_chain(int sfd, bool *ret_created)
{
    char tmp[64];
    EVP_PKEY *ark_key = NULL, *ask_key = NULL;
    X509 *ark = NULL, *ask = NULL;
    uint8_t chip[CF_SIM_CHIP_ID_LEN];
    char chip_hex[2 * CF_SIM_CHIP_ID_LEN + 2];
    bool made_tmp = false, lost = false;
    int tfd = -1;
    int rc = 0;

    CF_GUARD_OUT(random_tmp_name(SIM_DIR, tmp, sizeof(tmp)));
    CF_ENSURE_OUT(mkdirat(sfd, tmp, 0700) == 0,
                  cf_err_set(CF_E_IO, "cannot create simulator state: %s", strerror(errno)));
    made_tmp = true;
    tfd = openat(sfd, tmp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    CF_ENSURE_OUT(tfd >= 0, CF_E_IO);

    ark_key = EVP_RSA_gen(CF_SIM_RSA_BITS);
    ask_key = EVP_RSA_gen(CF_SIM_RSA_BITS);
    CF_ENSURE_OUT(ark_key != NULL && ask_key != NULL,
                  cf_err_set(CF_E_CRYPTO, "RSA-%d key generation failed", CF_SIM_RSA_BITS));
    CF_GUARD_OUT(make_ark(ark_key, &ark));
    CF_GUARD_OUT(make_ask(ask_key, ark, ark_key, &ask));
    CF_GUARD_OUT(cf_random(chip, sizeof(chip)));
    cf_hex_encode(chip, sizeof(chip), chip_hex);
    chip_hex[2 * CF_SIM_CHIP_ID_LEN] = '\n';
    chip_hex[2 * CF_SIM_CHIP_ID_LEN + 1] = '\0';

    CF_GUARD_OUT(write_cert_file(tfd, F_ARK, ark));
    CF_GUARD_OUT(write_cert_file(tfd, F_ASK, ask));
    CF_GUARD_OUT(write_key_file(tfd, F_ASK_KEY, ask_key));
    CF_GUARD_OUT(write_state_file(tfd, F_CHIP_ID, chip_hex, 2 * CF_SIM_CHIP_ID_LEN + 1, 0644));
    CF_ENSURE_OUT(fsync(tfd) == 0, CF_E_IO);
    CF_GUARD_OUT(publish_dir(sfd, tmp, SIM_DIR, &lost));
    made_tmp = lost;
    *ret_created = !lost;
out:
    if (tfd >= 0)
        close(tfd);
    if (made_tmp)
        remove_tmp_dir(sfd, tmp, chain_files, CF_ARRAY_LEN(chain_files));
    ERR_clear_error();
    X509_free(ark);
    X509_free(ask);
    EVP_PKEY_free(ark_key);
    EVP_PKEY_free(ask_key);
    return rc;
}

static int load_chip_id(int dfd, const char *where, uint8_t out[CF_SIM_CHIP_ID_LEN])
{
    cf_buf b;
    int rc = 0;

    cf_buf_init(&b, 2 * CF_SIM_CHIP_ID_LEN + 2);
    CF_GUARD_OUT(read_state_file(dfd, where, F_CHIP_ID, 2 * CF_SIM_CHIP_ID_LEN + 1, false, &b));
    /* Exactly 128 hex digits and a newline. */
    CF_ENSURE_OUT(b.len == 2 * CF_SIM_CHIP_ID_LEN + 1 && b.data[b.len - 1] == '\n',
                  state_incomplete(where, F_CHIP_ID));
    b.data[b.len - 1] = '\0';
    CF_ENSURE_OUT(cf_hex_decode((const char *)b.data, out, CF_SIM_CHIP_ID_LEN) == 0,
                  state_incomplete(where, F_CHIP_ID));
out:
    cf_buf_free(&b);
    return rc;
}

static bool has_cn(X509 *x, const char *cn)
{
    char buf[128];
    int n = X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, buf,
                                      (int)sizeof(buf));
    return n > 0 && strcmp(buf, cn) == 0;
}

/* ask.key is read only to issue VCEKs; its protection is checked every time. */
static int check_key_file(int dfd, const char *where, const char *name)
{
    struct stat st;

    if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode))
        return state_incomplete(where, name);
    if (st.st_uid != geteuid() || (st.st_mode & 077) != 0)
        return cf_err_set(CF_E_CONFIG, "%s/%s must be owned by the current user and mode 0600 "
                                       "(it is %03o)", where, name, (unsigned)(st.st_mode & 0777));
    return 0;
}

static int load_chain(int dfd, const char *where, cf_sim *s)
{
    CF_GUARD(check_key_file(dfd, where, F_ASK_KEY));
    CF_GUARD(load_cert(dfd, where, F_ARK, &s->ark));
    CF_GUARD(load_cert(dfd, where, F_ASK, &s->ask));
    CF_GUARD(load_chip_id(dfd, where, s->chip_id));
    if (!has_cn(s->ark, CF_SIM_ARK_CN) || !has_cn(s->ask, CF_SIM_ASK_CN) ||
        X509_check_issued(s->ark, s->ark) != X509_V_OK ||
        X509_verify(s->ark, X509_get0_pubkey(s->ark)) != 1 ||
        X509_check_issued(s->ark, s->ask) != X509_V_OK ||
        X509_verify(s->ask, X509_get0_pubkey(s->ark)) != 1) {
        ERR_clear_error();
        return state_incomplete(where, "ARK/ASK do not form a simulated chain");
    }
    return 0;
}

/* ---- VCEKs, one per TCB ---- */

static const char *const vcek_files[] = {F_VCEK, F_VCEK_KEY};

static int issue_vcek(int dfd, const char *where, cf_sim *s, const cf_sim_tcb *tcb,
                      const char *name, bool *ret_issued)
{
    char tmp[64];
    EVP_PKEY *ask_key = NULL, *key = NULL;
    X509 *x = NULL;
    bool made_tmp = false, lost = false;
    int tfd = -1;
    int rc = 0;

    CF_GUARD_OUT(load_key(dfd, where, F_ASK_KEY, &ask_key));
    CF_ENSURE_OUT(EVP_PKEY_eq(X509_get0_pubkey(s->ask), ask_key) == 1,
                  state_incomplete(where, "ask.key does not match ask.pem"));
    key = EVP_EC_gen("P-384");
    CF_ENSURE_OUT(key != NULL, cf_err_set(CF_E_CRYPTO, "P-384 key generation failed"));
    CF_GUARD_OUT(new_cert(VCEK_SERIAL, key, CF_SIM_VCEK_CN, s->ask, VCEK_VALID_DAYS, &x));
    CF_GUARD_OUT(add_amd_exts(x, tcb, s->chip_id));
    CF_GUARD_OUT(sign_pss(x, ask_key));

    CF_GUARD_OUT(random_tmp_name("vcek", tmp, sizeof(tmp)));
    CF_ENSURE_OUT(mkdirat(dfd, tmp, 0700) == 0,
                  cf_err_set(CF_E_IO, "cannot create VCEK directory: %s", strerror(errno)));
    made_tmp = true;
    tfd = openat(dfd, tmp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    CF_ENSURE_OUT(tfd >= 0, CF_E_IO);
    CF_GUARD_OUT(write_cert_file(tfd, F_VCEK, x));
    CF_GUARD_OUT(write_key_file(tfd, F_VCEK_KEY, key));
    CF_ENSURE_OUT(fsync(tfd) == 0, CF_E_IO);
    CF_GUARD_OUT(publish_dir(dfd, tmp, name, &lost));
    made_tmp = lost;
    *ret_issued = !lost;
out:
    if (tfd >= 0)
        close(tfd);
    if (made_tmp)
        remove_tmp_dir(dfd, tmp, vcek_files, CF_ARRAY_LEN(vcek_files));
    ERR_clear_error();
    X509_free(x);
    EVP_PKEY_free(key);
    EVP_PKEY_free(ask_key);
    return rc;
}

static int open_vcek(int dfd, const char *where, cf_sim *s, const cf_sim_tcb *tcb)
{
    char name[32], vwhere[PATH_BUF];
    struct stat st;
    int vfd = -1;
    int rc = 0;

    CF_GUARD(cf_fmt(name, sizeof(name), "vcek-%016llx",
                    (unsigned long long)cf_sim_tcb_raw(tcb)));
    CF_GUARD(cf_fmt(vwhere, sizeof(vwhere), "%s/%s", where, name));
    if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
        if (errno != ENOENT)
            return cf_err_set(CF_E_IO, "cannot stat '%s': %s", vwhere, strerror(errno));
        CF_GUARD(issue_vcek(dfd, where, s, tcb, name, &s->issued_vcek));
    }
    vfd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    CF_ENSURE_OUT(vfd >= 0, state_incomplete(vwhere, "not a directory"));
    CF_GUARD_OUT(check_private_dir(vfd, vwhere));
    CF_GUARD_OUT(load_cert(vfd, vwhere, F_VCEK, &s->vcek));
    CF_GUARD_OUT(load_key(vfd, vwhere, F_VCEK_KEY, &s->vcek_key));
    CF_ENSURE_OUT(has_cn(s->vcek, CF_SIM_VCEK_CN) &&
                      X509_check_issued(s->ask, s->vcek) == X509_V_OK &&
                      X509_verify(s->vcek, X509_get0_pubkey(s->ask)) == 1 &&
                      EVP_PKEY_is_a(s->vcek_key, "EC") && EVP_PKEY_get_bits(s->vcek_key) == 384 &&
                      EVP_PKEY_eq(X509_get0_pubkey(s->vcek), s->vcek_key) == 1,
                  state_incomplete(vwhere, "VCEK is not issued by the ASK or does not match "
                                           "vcek.key"));
    CF_ENSURE_OUT(check_amd_exts(s->vcek, tcb, s->chip_id) == 0,
                  state_incomplete(vwhere, "VCEK extensions do not match its TCB and chip id"));
    CF_ENSURE_OUT(X509_cmp_current_time(X509_get0_notAfter(s->vcek)) > 0,
                  cf_err_set(CF_E_EXPIRED, "simulated VCEK in '%s' has expired; remove that "
                                           "directory to issue a new one", vwhere));
    s->tcb = *tcb;
out:
    ERR_clear_error();
    if (vfd >= 0)
        close(vfd);
    return rc;
}

int cf_sim_open(const char *state_dir, const cf_sim_tcb *tcb, cf_sim **ret)
{
    char where[PATH_BUF];
    struct stat st;
    cf_sim *s = NULL;
    int sfd = -1, dfd = -1;
    int rc = 0;

    CF_ENSURE(state_dir != NULL && tcb != NULL && ret != NULL, CF_E_INVAL);
    CF_GUARD(cf_fmt(where, sizeof(where), "%s/%s", state_dir, SIM_DIR));
    s = calloc(1, sizeof(*s));
    CF_ENSURE_OUT(s != NULL, CF_E_NOMEM);
    if (mkdir(state_dir, 0700) != 0 && errno != EEXIST) {
        rc = cf_err_set(CF_E_IO, "cannot create state directory '%s': %s", state_dir,
                        strerror(errno));
        goto out;
    }
    sfd = open(state_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    CF_ENSURE_OUT(sfd >= 0, cf_err_set(CF_E_IO, "cannot open state directory '%s': %s",
                                       state_dir, strerror(errno)));
    if (fstatat(sfd, SIM_DIR, &st, AT_SYMLINK_NOFOLLOW) != 0) {
        CF_ENSURE_OUT(errno == ENOENT, cf_err_set(CF_E_IO, "cannot stat '%s': %s", where,
                                                  strerror(errno)));
        CF_GUARD_OUT(create_chain(sfd, &s->created_chain));
    }
    dfd = openat(sfd, SIM_DIR, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    CF_ENSURE_OUT(dfd >= 0, state_incomplete(where, "not a directory"));
    CF_GUARD_OUT(check_private_dir(dfd, where));
    CF_GUARD_OUT(load_chain(dfd, where, s));
    CF_GUARD_OUT(open_vcek(dfd, where, s, tcb));
    *ret = s;
    s = NULL;
out:
    if (dfd >= 0)
        close(dfd);
    if (sfd >= 0)
        close(sfd);
    cf_sim_free(s);
    return rc;
}

void cf_sim_free(cf_sim *sim)
{
    if (sim == NULL)
        return;
    X509_free(sim->ark);
    X509_free(sim->ask);
    X509_free(sim->vcek);
    EVP_PKEY_free(sim->vcek_key);
    cf_wipe(sim, sizeof(*sim));
    free(sim);
}

bool cf_sim_created_chain(const cf_sim *sim) { return sim->created_chain; }
bool cf_sim_issued_vcek(const cf_sim *sim) { return sim->issued_vcek; }
X509 *cf_sim_ark(const cf_sim *sim) { return sim->ark; }
X509 *cf_sim_ask(const cf_sim *sim) { return sim->ask; }
X509 *cf_sim_vcek(const cf_sim *sim) { return sim->vcek; }
const uint8_t *cf_sim_chip_id(const cf_sim *sim) { return sim->chip_id; }
const cf_sim_tcb *cf_sim_get_tcb(const cf_sim *sim) { return &sim->tcb; }

int cf_sim_vcek_der(const cf_sim *sim, cf_buf *out)
{
    int n = i2d_X509(sim->vcek, NULL);
    uint8_t *p;

    if (n <= 0)
        return CF_E_CRYPTO;
    CF_GUARD(cf_buf_put_space(out, (size_t)n, &p));
    return i2d_X509(sim->vcek, &p) == n ? 0 : CF_E_CRYPTO;
}

int cf_sim_chain_pem(const cf_sim *sim, cf_buf *out)
{
    CF_GUARD(cert_pem(sim->ask, out));
    CF_GUARD(cert_pem(sim->ark, out));
    return cf_buf_nul_terminate(out);
}

int cf_sim_report(const cf_sim *sim, const cf_sim_launch *launch, const uint8_t report_data[64],
                  uint8_t ret[CF_SNP_REPORT_LEN])
{
    cf_snp_report r;
    uint8_t raw[CF_SNP_REPORT_LEN];
    uint64_t tcb = cf_sim_tcb_raw(&sim->tcb);
    int rc = 0;

    CF_ENSURE(launch->vmpl <= 3, CF_E_RANGE);
    /* Field by field as the ABI's ATTESTATION_REPORT table lists them. */
    memset(&r, 0, sizeof(r));
    r.version = 3;
    r.guest_svn = 0;
    r.policy = launch->policy;
    r.vmpl = launch->vmpl;
    r.signature_algo = CF_SNP_SIG_ALGO_ECDSA_P384_SHA384;
    r.current_tcb_raw = tcb;
    r.platform_info = SIM_PLATFORM_INFO;
    r.key_info = (uint32_t)CF_SNP_KEY_VCEK << 2; /* SIGNING_KEY = VCEK, no author key */
    memcpy(r.report_data, report_data, sizeof(r.report_data));
    memcpy(r.measurement, launch->measurement, sizeof(r.measurement));
    memcpy(r.host_data, launch->host_data, sizeof(r.host_data));
    memcpy(r.report_id, launch->report_id, sizeof(r.report_id));
    memset(r.report_id_ma, 0xff, sizeof(r.report_id_ma)); /* no migration agent */
    r.reported_tcb_raw = tcb;
    r.cpuid_fam_id = CF_SIM_CPUID_FAMILY;
    r.cpuid_mod_id = CF_SIM_CPUID_MODEL;
    r.cpuid_step = CF_SIM_CPUID_STEPPING;
    memcpy(r.chip_id, sim->chip_id, sizeof(r.chip_id));
    r.committed_tcb_raw = tcb;
    r.current_major = r.committed_major = CF_SIM_FW_MAJOR;
    r.current_minor = r.committed_minor = CF_SIM_FW_MINOR;
    r.current_build = r.committed_build = CF_SIM_FW_BUILD;
    r.launch_tcb_raw = tcb;
    CF_GUARD_OUT(cf_snp_report_encode(&r, raw));
    CF_GUARD_OUT(cf_snp_report_sign(raw, sim->vcek_key));
    memcpy(ret, raw, sizeof(raw));
out:
    return rc;
}
