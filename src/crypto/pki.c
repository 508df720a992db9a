/*
 * Internal CA and SPIFFE leaf certificates over OpenSSL 3 (see pki.h).
 *
 * Extensions are built as ASN.1 structures, never from OpenSSL's textual
 * config syntax, so that no caller-supplied name can inject extra fields
 * (a DNS name containing ",URI:..." stays one DNS name, and is rejected anyway
 * by the syntax checks below).
 */
#include "crypto/pki.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/err.h"
#include "base/limits.h"
#include "base/parse.h"
#include "base/secmem.h"

/* notBefore is set this far in the past so that peers whose clocks lag a
 * little accept a certificate issued a moment ago. */
#define PKI_BACKDATE_SECONDS 300
/* RFC 5280 §4.1.2.2: serials are positive and at most 20 octets; 16 random
 * octets (top bit clear) give unpredictable serials. */
#define PKI_SERIAL_BYTES 16
/* RFC 1035 §2.3.4: a DNS name is at most 253 characters in text form. */
#define PKI_DNS_MAX_LEN 253
#define PKI_CN_MAX_LEN 64 /* RFC 5280 Appendix A: ub-common-name */

struct cf_pki_cred {
    X509 *cert;
    EVP_PKEY *key;
};

void cf_pki_free(cf_pki_cred *c)
{
    if (c == NULL)
        return;
    X509_free(c->cert);
    EVP_PKEY_free(c->key);
    free(c);
}

X509 *cf_pki_cert(const cf_pki_cred *c) { return c ? c->cert : NULL; }
EVP_PKEY *cf_pki_key(const cf_pki_cred *c) { return c ? c->key : NULL; }

static int ossl_fail(const char *what)
{
    unsigned long e = ERR_peek_last_error();
    char buf[160];

    ERR_error_string_n(e, buf, sizeof(buf));
    ERR_clear_error();
    return cf_err_set(CF_E_CRYPTO, "%s failed: %s", what, buf);
}

/* ---- name syntax ------------------------------------------------------------ */

bool cf_pki_spiffe_id_valid(const char *id)
{
    return id != NULL && cf_spiffe_id_valid(id, strnlen(id, CF_SPIFFE_ID_MAX_LEN + 1));
}

/* Preferred name syntax (RFC 1035 §2.3.1, as relaxed by RFC 1123 §2.1): labels of
 * letters, digits and '-', not starting or ending with '-', 1..63 bytes. */
static bool dns_name_valid(const char *s)
{
    size_t n = strnlen(s, PKI_DNS_MAX_LEN + 1), label = 0;

    if (n == 0 || n > PKI_DNS_MAX_LEN)
        return false;
    for (size_t i = 0; i <= n; i++) {
        char ch = i < n ? s[i] : '.';
        if (ch == '.') {
            if (label == 0 || label > 63 || s[i - 1] == '-')
                return false;
            label = 0;
            continue;
        }
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '-'))
            return false;
        if (label == 0 && ch == '-')
            return false;
        label++;
    }
    return true;
}

/* ---- building blocks -------------------------------------------------------- */

static int new_p256_key(EVP_PKEY **ret)
{
    EVP_PKEY *k = EVP_EC_gen("P-256");

    if (k == NULL)
        return ossl_fail("P-256 key generation");
    *ret = k;
    return 0;
}

static int set_serial(X509 *x)
{
    uint8_t raw[PKI_SERIAL_BYTES];
    BIGNUM *bn = NULL;
    int rc = 0;

    if (RAND_bytes(raw, sizeof(raw)) != 1)
        return ossl_fail("RAND_bytes");
    raw[0] &= 0x7f; /* positive */
    raw[0] |= 0x40; /* and never zero or short */
    bn = BN_bin2bn(raw, sizeof(raw), NULL);
    CF_ENSURE_OUT(bn != NULL, CF_E_NOMEM);
    if (BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) == NULL)
        rc = ossl_fail("serial number");
out:
    BN_free(bn);
    return rc;
}

static int set_name_cn(X509_NAME *name, const char *cn)
{
    size_t n = strlen(cn);

    if (n == 0 || n > PKI_CN_MAX_LEN)
        return cf_err_set(CF_E_INVAL, "certificate common name must be 1..%d bytes",
                          PKI_CN_MAX_LEN);
    if (X509_NAME_add_entry_by_NID(name, NID_commonName, MBSTRING_UTF8,
                                   (const unsigned char *)cn, (int)n, -1, 0) != 1)
        return ossl_fail("subject name");
    return 0;
}

/* notBefore = now - backdate, notAfter = min(now + valid, cap) (cap 0 = none). */
static int set_validity(X509 *x, uint64_t valid_seconds, const ASN1_TIME *cap)
{
    time_t now = time(NULL);

    if (valid_seconds == 0 || valid_seconds > (uint64_t)100 * 366 * 86400)
        return cf_err_set(CF_E_INVAL, "certificate validity must be 1 second .. 100 years");
    if (X509_time_adj_ex(X509_getm_notBefore(x), 0, -PKI_BACKDATE_SECONDS, &now) == NULL ||
        X509_time_adj_ex(X509_getm_notAfter(x), (int)(valid_seconds / 86400),
                         (long)(valid_seconds % 86400), &now) == NULL)
        return ossl_fail("validity");
    if (cap != NULL && ASN1_TIME_compare(X509_get0_notAfter(x), cap) > 0 &&
        X509_set1_notAfter(x, cap) != 1)
        return ossl_fail("validity cap");
    return 0;
}

static int add_basic_constraints(X509 *x, bool ca)
{
    BASIC_CONSTRAINTS *bc = BASIC_CONSTRAINTS_new();
    int rc = 0;

    CF_ENSURE(bc != NULL, CF_E_NOMEM);
    bc->ca = ca ? 0xff : 0;
    if (ca) {
        /* pathlen:0 — this CA issues leaves only (RFC 5280 §4.2.1.9). */
        bc->pathlen = ASN1_INTEGER_new();
        CF_ENSURE_OUT(bc->pathlen != NULL && ASN1_INTEGER_set(bc->pathlen, 0) == 1, CF_E_NOMEM);
    }
    if (X509_add1_ext_i2d(x, NID_basic_constraints, bc, 1, X509V3_ADD_REPLACE) != 1)
        rc = ossl_fail("basicConstraints");
out:
    BASIC_CONSTRAINTS_free(bc);
    return rc;
}

/* RFC 5280 §4.2.1.3 bit numbers. */
#define KU_BIT_DIGITAL_SIGNATURE 0
#define KU_BIT_KEY_CERT_SIGN 5
#define KU_BIT_CRL_SIGN 6

static int add_key_usage(X509 *x, const int *bits, size_t nbits)
{
    ASN1_BIT_STRING *ku = ASN1_BIT_STRING_new();
    int rc = 0;

    CF_ENSURE(ku != NULL, CF_E_NOMEM);
    for (size_t i = 0; i < nbits; i++)
        CF_ENSURE_OUT(ASN1_BIT_STRING_set_bit(ku, bits[i], 1) == 1, CF_E_NOMEM);
    if (X509_add1_ext_i2d(x, NID_key_usage, ku, 1, X509V3_ADD_REPLACE) != 1)
        rc = ossl_fail("keyUsage");
out:
    ASN1_BIT_STRING_free(ku);
    return rc;
}

static int add_eku(X509 *x, unsigned usage)
{
    EXTENDED_KEY_USAGE *eku = sk_ASN1_OBJECT_new_null();
    int rc = 0;

    CF_ENSURE(eku != NULL, CF_E_NOMEM);
    if (usage & CF_PKI_SERVER)
        CF_ENSURE_OUT(sk_ASN1_OBJECT_push(eku, OBJ_nid2obj(NID_server_auth)) > 0, CF_E_NOMEM);
    if (usage & CF_PKI_CLIENT)
        CF_ENSURE_OUT(sk_ASN1_OBJECT_push(eku, OBJ_nid2obj(NID_client_auth)) > 0, CF_E_NOMEM);
    /* Not critical: RFC 5280 §4.2.1.12 leaves it to the issuer; verifiers check it either way. */
    if (X509_add1_ext_i2d(x, NID_ext_key_usage, eku, 0, X509V3_ADD_REPLACE) != 1)
        rc = ossl_fail("extendedKeyUsage");
out:
    /* OBJ_nid2obj returns static objects; the stack alone is freed. */
    sk_ASN1_OBJECT_free(eku);
    return rc;
}

static int push_gen(GENERAL_NAMES *gens, int type, const char *value)
{
    GENERAL_NAME *g = GENERAL_NAME_new();
    ASN1_IA5STRING *s = ASN1_IA5STRING_new();

    if (g == NULL || s == NULL || ASN1_STRING_set(s, value, (int)strlen(value)) != 1) {
        GENERAL_NAME_free(g);
        ASN1_IA5STRING_free(s);
        return CF_E_NOMEM;
    }
    GENERAL_NAME_set0_value(g, type, s);
    if (sk_GENERAL_NAME_push(gens, g) <= 0) {
        GENERAL_NAME_free(g);
        return CF_E_NOMEM;
    }
    return 0;
}

static int push_ip(GENERAL_NAMES *gens, const char *ip)
{
    GENERAL_NAME *g;
    ASN1_OCTET_STRING *os = a2i_IPADDRESS(ip);

    if (os == NULL) {
        ERR_clear_error();
        return cf_err_set(CF_E_INVAL, "'%.64s' is not an IPv4 or IPv6 address", ip);
    }
    g = GENERAL_NAME_new();
    if (g == NULL) {
        ASN1_OCTET_STRING_free(os);
        return CF_E_NOMEM;
    }
    GENERAL_NAME_set0_value(g, GEN_IPADD, os);
    if (sk_GENERAL_NAME_push(gens, g) <= 0) {
        GENERAL_NAME_free(g);
        return CF_E_NOMEM;
    }
    return 0;
}

static int add_san(X509 *x, const cf_pki_leaf_opts *o)
{
    GENERAL_NAMES *gens = sk_GENERAL_NAME_new_null();
    size_t count = 0;
    int rc = 0;

    CF_ENSURE(gens != NULL, CF_E_NOMEM);
    /* X509-SVID §2: exactly one URI SAN, the SPIFFE ID. */
    CF_GUARD_OUT(push_gen(gens, GEN_URI, o->spiffe_id));
    for (size_t i = 0; o->dns != NULL && o->dns[i] != NULL; i++, count++) {
        if (count >= CF_PKI_MAX_SANS || !dns_name_valid(o->dns[i])) {
            rc = cf_err_set(CF_E_INVAL, "invalid or too many DNS names ('%.64s')", o->dns[i]);
            goto out;
        }
        CF_GUARD_OUT(push_gen(gens, GEN_DNS, o->dns[i]));
    }
    for (size_t i = 0; o->ips != NULL && o->ips[i] != NULL; i++, count++) {
        if (count >= CF_PKI_MAX_SANS) {
            rc = cf_err_set(CF_E_INVAL, "more than %d subject alternative names", CF_PKI_MAX_SANS);
            goto out;
        }
        CF_GUARD_OUT(push_ip(gens, o->ips[i]));
    }
    /* RFC 5280 §4.2.1.6: critical only when the subject is empty; ours has a CN. */
    if (X509_add1_ext_i2d(x, NID_subject_alt_name, gens, 0, X509V3_ADD_REPLACE) != 1)
        rc = ossl_fail("subjectAltName");
out:
    GENERAL_NAMES_free(gens);
    return rc;
}

/* Subject key identifier = SHA-1 of the public key bits (RFC 5280 §4.2.1.2 (1)). */
static int add_ski(X509 *x, ASN1_OCTET_STRING **ret_copy)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    ASN1_OCTET_STRING *ski = ASN1_OCTET_STRING_new();
    int rc = 0;

    CF_ENSURE(ski != NULL, CF_E_NOMEM);
    if (X509_pubkey_digest(x, EVP_sha1(), md, &mdlen) != 1) {
        rc = ossl_fail("key identifier");
        goto out;
    }
    CF_ENSURE_OUT(ASN1_OCTET_STRING_set(ski, md, (int)mdlen) == 1, CF_E_NOMEM);
    if (X509_add1_ext_i2d(x, NID_subject_key_identifier, ski, 0, X509V3_ADD_REPLACE) != 1) {
        rc = ossl_fail("subjectKeyIdentifier");
        goto out;
    }
    if (ret_copy != NULL) {
        *ret_copy = ski;
        ski = NULL;
    }
out:
    ASN1_OCTET_STRING_free(ski);
    return rc;
}

/* Authority key identifier = the issuer's SKI (RFC 5280 §4.2.1.1). */
static int add_aki(X509 *x, const ASN1_OCTET_STRING *issuer_ski)
{
    AUTHORITY_KEYID *akid = NULL;
    int rc = 0;

    if (issuer_ski == NULL)
        return cf_err_set(CF_E_INVAL, "issuer certificate has no subject key identifier");
    akid = AUTHORITY_KEYID_new();
    CF_ENSURE(akid != NULL, CF_E_NOMEM);
    akid->keyid = ASN1_OCTET_STRING_dup(issuer_ski);
    CF_ENSURE_OUT(akid->keyid != NULL, CF_E_NOMEM);
    if (X509_add1_ext_i2d(x, NID_authority_key_identifier, akid, 0, X509V3_ADD_REPLACE) != 1)
        rc = ossl_fail("authorityKeyIdentifier");
out:
    AUTHORITY_KEYID_free(akid);
    return rc;
}

/* ---- CA and leaf -------------------------------------------------------------- */

int cf_pki_ca_create(const char *common_name, uint64_t valid_seconds, cf_pki_cred **ret)
{
    static const int ca_bits[] = {KU_BIT_KEY_CERT_SIGN, KU_BIT_CRL_SIGN};
    ASN1_OCTET_STRING *ski = NULL;
    cf_pki_cred *c = NULL;
    int rc = 0;

    CF_ENSURE(common_name != NULL && ret != NULL, CF_E_INVAL);
    c = calloc(1, sizeof(*c));
    CF_ENSURE(c != NULL, CF_E_NOMEM);
    CF_GUARD_OUT(new_p256_key(&c->key));
    c->cert = X509_new();
    CF_ENSURE_OUT(c->cert != NULL, CF_E_NOMEM);
    CF_ENSURE_OUT(X509_set_version(c->cert, X509_VERSION_3) == 1, CF_E_CRYPTO);
    CF_GUARD_OUT(set_serial(c->cert));
    CF_GUARD_OUT(set_name_cn(X509_get_subject_name(c->cert), common_name));
    CF_ENSURE_OUT(X509_set_issuer_name(c->cert, X509_get_subject_name(c->cert)) == 1, CF_E_CRYPTO);
    CF_GUARD_OUT(set_validity(c->cert, valid_seconds, NULL));
    CF_ENSURE_OUT(X509_set_pubkey(c->cert, c->key) == 1, CF_E_CRYPTO);
    CF_GUARD_OUT(add_basic_constraints(c->cert, true));
    CF_GUARD_OUT(add_key_usage(c->cert, ca_bits, CF_ARRAY_LEN(ca_bits)));
    CF_GUARD_OUT(add_ski(c->cert, &ski));
    /* Self-signed: the AKI names the certificate's own key. */
    CF_GUARD_OUT(add_aki(c->cert, ski));
    if (X509_sign(c->cert, c->key, EVP_sha256()) <= 0) {
        rc = ossl_fail("CA signature");
        goto out;
    }
    *ret = c;
    c = NULL;
out:
    ASN1_OCTET_STRING_free(ski);
    cf_pki_free(c);
    return rc;
}

int cf_pki_issue(const cf_pki_cred *ca, const cf_pki_leaf_opts *o, cf_pki_cred **ret)
{
    static const int leaf_bits[] = {KU_BIT_DIGITAL_SIGNATURE};
    cf_pki_cred *c = NULL;
    int rc = 0;

    CF_ENSURE(ca != NULL && ca->cert != NULL && ca->key != NULL && o != NULL && ret != NULL,
              CF_E_INVAL);
    if (!cf_pki_spiffe_id_valid(o->spiffe_id))
        return cf_err_set(CF_E_INVAL, "'%.128s' is not a valid SPIFFE ID",
                          o->spiffe_id ? o->spiffe_id : "(null)");
    if ((o->usage & (CF_PKI_SERVER | CF_PKI_CLIENT)) == 0 ||
        (o->usage & ~(unsigned)(CF_PKI_SERVER | CF_PKI_CLIENT)) != 0)
        return cf_err_set(CF_E_INVAL, "certificate usage must be server and/or client");
    if (X509_check_private_key(ca->cert, ca->key) != 1) {
        ERR_clear_error();
        return cf_err_set(CF_E_INVAL, "CA key does not match the CA certificate");
    }
    c = calloc(1, sizeof(*c));
    CF_ENSURE(c != NULL, CF_E_NOMEM);
    CF_GUARD_OUT(new_p256_key(&c->key));
    c->cert = X509_new();
    CF_ENSURE_OUT(c->cert != NULL, CF_E_NOMEM);
    CF_ENSURE_OUT(X509_set_version(c->cert, X509_VERSION_3) == 1, CF_E_CRYPTO);
    CF_GUARD_OUT(set_serial(c->cert));
    if (o->common_name != NULL) {
        CF_GUARD_OUT(set_name_cn(X509_get_subject_name(c->cert), o->common_name));
    } else {
        /* Default CN: the SPIFFE ID when it fits ub-common-name, else its last segment. */
        const char *cn = o->spiffe_id;
        if (strlen(cn) > PKI_CN_MAX_LEN)
            cn = strrchr(cn, '/') + 1;
        if (strlen(cn) > PKI_CN_MAX_LEN)
            cn = "coffer workload";
        CF_GUARD_OUT(set_name_cn(X509_get_subject_name(c->cert), cn));
    }
    CF_ENSURE_OUT(X509_set_issuer_name(c->cert, X509_get_subject_name(ca->cert)) == 1,
                  CF_E_CRYPTO);
    CF_GUARD_OUT(set_validity(c->cert, o->valid_seconds, X509_get0_notAfter(ca->cert)));
    CF_ENSURE_OUT(X509_set_pubkey(c->cert, c->key) == 1, CF_E_CRYPTO);
    CF_GUARD_OUT(add_basic_constraints(c->cert, false));
    CF_GUARD_OUT(add_key_usage(c->cert, leaf_bits, CF_ARRAY_LEN(leaf_bits)));
    CF_GUARD_OUT(add_eku(c->cert, o->usage));
    CF_GUARD_OUT(add_san(c->cert, o));
    CF_GUARD_OUT(add_ski(c->cert, NULL));
    /* The CA certificate is complete, so its cached extensions are final. */
    CF_GUARD_OUT(add_aki(c->cert, X509_get0_subject_key_id(ca->cert)));
    if (X509_sign(c->cert, ca->key, EVP_sha256()) <= 0) {
        rc = ossl_fail("certificate signature");
        goto out;
    }
    *ret = c;
    c = NULL;
out:
    cf_pki_free(c);
    return rc;
}

/* ---- files ----------------------------------------------------------------------- */

int cf_pki_cert_pem(const cf_pki_cred *c, cf_buf *out)
{
    BIO *bio = NULL;
    BUF_MEM *mem = NULL;
    int rc = 0;

    CF_ENSURE(c != NULL && c->cert != NULL && out != NULL, CF_E_INVAL);
    bio = BIO_new(BIO_s_mem());
    CF_ENSURE(bio != NULL, CF_E_NOMEM);
    if (PEM_write_bio_X509(bio, c->cert) != 1 || BIO_get_mem_ptr(bio, &mem) != 1) {
        rc = ossl_fail("PEM encoding");
        goto out;
    }
    CF_GUARD_OUT(cf_buf_put(out, mem->data, mem->length));
out:
    BIO_free(bio);
    return rc;
}

/*
 * Writes data to a fresh temporary file next to path, fsyncs it and links it
 * to path (link(2) fails with EEXIST instead of replacing), then removes the
 * temporary name. The mode is set with fchmod so the umask cannot widen it.
 */
static int write_new_file(const char *path, const void *data, size_t len, mode_t mode)
{
    char tmp[PATH_MAX];
    size_t off = 0;
    int fd = -1, rc = 0;
    bool created = false;

    if (cf_fmt(tmp, sizeof(tmp), "%s.tmp.XXXXXX", path) < 0)
        return cf_err_set(CF_E_INVAL, "path too long: %.128s", path);
    fd = mkstemp(tmp); /* O_EXCL, mode 0600 */
    if (fd < 0)
        return cf_err_set(CF_E_IO, "cannot create a file next to %.256s: %s", path,
                          strerror(errno));
    created = true;
    if (fchmod(fd, mode) != 0) {
        rc = cf_err_set(CF_E_IO, "chmod %.256s: %s", tmp, strerror(errno));
        goto out;
    }
    while (off < len) {
        ssize_t w = write(fd, (const uint8_t *)data + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            rc = cf_err_set(CF_E_IO, "write %.256s: %s", tmp, strerror(errno));
            goto out;
        }
        off += (size_t)w;
    }
    if (fsync(fd) != 0) {
        rc = cf_err_set(CF_E_IO, "fsync %.256s: %s", tmp, strerror(errno));
        goto out;
    }
    if (link(tmp, path) != 0) {
        rc = errno == EEXIST ? cf_err_set(CF_E_EXISTS, "%.256s already exists", path)
                             : cf_err_set(CF_E_IO, "link %.256s: %s", path, strerror(errno));
        goto out;
    }
out:
    if (fd >= 0)
        close(fd);
    if (created)
        (void)unlink(tmp);
    return rc;
}

int cf_pki_write(const cf_pki_cred *c, const char *cert_path, const char *key_path)
{
    cf_buf cert;
    BIO *kb = NULL;
    BUF_MEM *mem = NULL;
    bool key_written = false;
    int rc = 0;

    CF_ENSURE(c != NULL && c->cert != NULL && cert_path != NULL, CF_E_INVAL);
    CF_ENSURE(key_path == NULL || c->key != NULL, CF_E_INVAL);
    cf_buf_init(&cert, CF_CERT_MAX_BYTES);
    CF_GUARD_OUT(cf_pki_cert_pem(c, &cert));
    if (key_path != NULL) {
        /* The PEM text of the key lives only in OpenSSL's secure heap BIO. */
        kb = BIO_new(BIO_s_secmem());
        CF_ENSURE_OUT(kb != NULL, CF_E_NOMEM);
        if (PEM_write_bio_PrivateKey(kb, c->key, NULL, NULL, 0, NULL, NULL) != 1 ||
            BIO_get_mem_ptr(kb, &mem) != 1) {
            rc = ossl_fail("private key encoding");
            goto out;
        }
        CF_GUARD_OUT(write_new_file(key_path, mem->data, mem->length, 0600));
        key_written = true;
    }
    CF_GUARD_OUT(write_new_file(cert_path, cert.data, cert.len, 0644));
out:
    if (rc < 0 && key_written)
        (void)unlink(key_path);
    BIO_free(kb); /* secmem BIO: cleansed on free */
    cf_buf_free(&cert);
    return rc;
}

/* Reads a whole file of at most max bytes into b (a secret buffer for keys). */
static int read_bounded(const char *path, size_t max, cf_buf *b)
{
    uint8_t chunk[1024];
    int fd = open(path, O_RDONLY | O_CLOEXEC), rc = 0;

    if (fd < 0)
        return cf_err_set(errno == ENOENT ? CF_E_NOT_FOUND : CF_E_IO, "cannot open %.256s: %s",
                          path, strerror(errno));
    for (;;) {
        ssize_t got = read(fd, chunk, sizeof(chunk));
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            rc = cf_err_set(CF_E_IO, "read %.256s: %s", path, strerror(errno));
            break;
        }
        if (got == 0)
            break;
        if (cf_buf_put(b, chunk, (size_t)got) < 0) {
            rc = cf_err_set(CF_E_TOO_LARGE, "%.256s is larger than %zu bytes", path, max);
            break;
        }
    }
    cf_wipe(chunk, sizeof(chunk));
    close(fd);
    return rc;
}

int cf_pki_load(const char *cert_path, const char *key_path, cf_pki_cred **ret)
{
    cf_buf cb, kbuf;
    BIO *bio = NULL;
    cf_pki_cred *c = NULL;
    int rc = 0;

    CF_ENSURE(cert_path != NULL && key_path != NULL && ret != NULL, CF_E_INVAL);
    cf_buf_init(&cb, CF_CERT_MAX_BYTES);
    cf_buf_init_secret(&kbuf, CF_KEY_MAX_PEM_BYTES);
    c = calloc(1, sizeof(*c));
    CF_ENSURE_OUT(c != NULL, CF_E_NOMEM);
    CF_GUARD_OUT(read_bounded(cert_path, CF_CERT_MAX_BYTES, &cb));
    CF_GUARD_OUT(read_bounded(key_path, CF_KEY_MAX_PEM_BYTES, &kbuf));
    CF_ENSURE_OUT(cb.len > 0 && kbuf.len > 0,
                  cf_err_set(CF_E_PARSE, "empty certificate or key file"));
    bio = BIO_new_mem_buf(cb.data, (int)cb.len);
    CF_ENSURE_OUT(bio != NULL, CF_E_NOMEM);
    c->cert = PEM_read_bio_X509(bio, NULL, NULL, NULL);
    BIO_free(bio);
    bio = NULL;
    if (c->cert == NULL) {
        ERR_clear_error();
        rc = cf_err_set(CF_E_PARSE, "%.256s: no PEM certificate", cert_path);
        goto out;
    }
    bio = BIO_new_mem_buf(kbuf.data, (int)kbuf.len);
    CF_ENSURE_OUT(bio != NULL, CF_E_NOMEM);
    /* No passphrase callback: an encrypted key fails instead of prompting. */
    c->key = PEM_read_bio_PrivateKey(bio, NULL, NULL, (void *)(uintptr_t)"");
    if (c->key == NULL) {
        ERR_clear_error();
        rc = cf_err_set(CF_E_PARSE, "%.256s: no unencrypted PEM private key", key_path);
        goto out;
    }
    if (X509_check_private_key(c->cert, c->key) != 1) {
        ERR_clear_error();
        rc = cf_err_set(CF_E_INVAL, "%.256s does not match the certificate %.256s", key_path,
                        cert_path);
        goto out;
    }
    *ret = c;
    c = NULL;
out:
    BIO_free(bio);
    cf_buf_free(&kbuf);
    cf_buf_free(&cb);
    cf_pki_free(c);
    return rc;
}
