/* Tests for crypto/pki: internal CA, SPIFFE leaves, chain verification, files. */
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/err.h"
#include "base/limits.h"
#include "base/parse.h"
#include "crypto/pki.h"
#include "test.h"

#define DAY 86400u

static char tmpdir[64];

static const char *tpath(const char *name)
{
    static char buf[4][256];
    static int k;
    char *p = buf[k++ % 4];
    if (cf_fmt(p, 256, "%s/%s", tmpdir, name) < 0)
        abort();
    return p;
}

static int last_verify_error;

/* X509_verify_cert against a store holding only `ca`, for an SSL purpose, at time t (0 = now). */
static int verify_chain(const cf_pki_cred *ca, X509 *leaf, X509 *inter, int purpose, time_t t)
{
    X509_STORE *store = X509_STORE_new();
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    STACK_OF(X509) *untrusted = sk_X509_new_null();
    int ok = 0;

    if (store == NULL || ctx == NULL || untrusted == NULL ||
        X509_STORE_add_cert(store, cf_pki_cert(ca)) != 1 ||
        (inter != NULL && sk_X509_push(untrusted, inter) <= 0) ||
        X509_STORE_CTX_init(ctx, store, leaf, untrusted) != 1)
        abort();
    if (purpose != 0)
        X509_STORE_CTX_set_purpose(ctx, purpose);
    if (t != 0)
        X509_VERIFY_PARAM_set_time(X509_STORE_CTX_get0_param(ctx), t);
    ok = X509_verify_cert(ctx) == 1;
    last_verify_error = X509_STORE_CTX_get_error(ctx);
    sk_X509_free(untrusted);
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(store);
    ERR_clear_error();
    return ok;
}

static int verify(const cf_pki_cred *ca, X509 *leaf, int purpose, time_t t)
{
    return verify_chain(ca, leaf, NULL, purpose, t);
}

/* Counts SAN entries of a type and returns the first URI. */
static int san_count(X509 *x, int type, char *first_uri, size_t n)
{
    GENERAL_NAMES *gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
    int count = 0;
    if (gens == NULL)
        return 0;
    for (int i = 0; i < sk_GENERAL_NAME_num(gens); i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
        if (g->type != type)
            continue;
        if (count == 0 && type == GEN_URI && first_uri != NULL) {
            const ASN1_IA5STRING *s = g->d.uniformResourceIdentifier;
            size_t l = (size_t)ASN1_STRING_length(s);
            if (l >= n)
                l = n - 1;
            memcpy(first_uri, ASN1_STRING_get0_data(s), l);
            first_uri[l] = 0;
        }
        count++;
    }
    GENERAL_NAMES_free(gens);
    return count;
}

static void test_ca(void)
{
    cf_pki_cred *ca = NULL;
    X509 *x;
    BASIC_CONSTRAINTS *bc;
    int crit = -1;

    T_OK(cf_pki_ca_create("Coffer internal CA", 365 * DAY, &ca));
    x = cf_pki_cert(ca);
    T_ASSERT(x != NULL && cf_pki_key(ca) != NULL);
    T_EQ(X509_check_ca(x), 1);
    bc = X509_get_ext_d2i(x, NID_basic_constraints, &crit, NULL);
    T_ASSERT(bc != NULL);
    T_ASSERT(bc->ca);
    T_EQ(crit, 1);
    BASIC_CONSTRAINTS_free(bc);
    T_ASSERT((X509_get_key_usage(x) & (KU_KEY_CERT_SIGN | KU_CRL_SIGN)) ==
             (KU_KEY_CERT_SIGN | KU_CRL_SIGN));
    T_ASSERT((X509_get_key_usage(x) & KU_DIGITAL_SIGNATURE) == 0);
    T_EQ(X509_get_extension_flags(x) & EXFLAG_SS, EXFLAG_SS); /* self-signed */
    T_EQ(X509_verify(x, cf_pki_key(ca)), 1);
    T_EQ(EVP_PKEY_get_base_id(cf_pki_key(ca)), EVP_PKEY_EC);
    T_EQ(EVP_PKEY_get_bits(cf_pki_key(ca)), 256);
    /* The CA verifies as its own trust anchor. */
    T_ASSERT(verify(ca, x, 0, 0));
    cf_pki_free(ca);

    T_ERR(cf_pki_ca_create("x", 0, &ca), CF_E_INVAL);
    T_ERR(cf_pki_ca_create("", DAY, &ca), CF_E_INVAL);
}

static void test_issue_and_verify(void)
{
    const char *dns[] = {"localhost", "kms.coffer.internal", NULL};
    const char *ips[] = {"127.0.0.1", "::1", NULL};
    cf_pki_leaf_opts o = {"spiffe://coffer/kms", dns, ips, CF_PKI_SERVER | CF_PKI_CLIENT, 30 * DAY,
                          NULL};
    cf_pki_cred *ca = NULL, *ca2 = NULL, *leaf = NULL, *srv = NULL, *foreign = NULL;
    char uri[256];
    X509 *x;

    T_OK(cf_pki_ca_create("Coffer CA", 365 * DAY, &ca));
    T_OK(cf_pki_ca_create("Other CA", 365 * DAY, &ca2));
    T_OK(cf_pki_issue(ca, &o, &leaf));
    x = cf_pki_cert(leaf);

    /* SANs: exactly one URI, the SPIFFE ID; the DNS and IP names. */
    T_EQ(san_count(x, GEN_URI, uri, sizeof(uri)), 1);
    T_STREQ(uri, "spiffe://coffer/kms");
    T_EQ(san_count(x, GEN_DNS, NULL, 0), 2);
    T_EQ(san_count(x, GEN_IPADD, NULL, 0), 2);
    T_EQ(X509_check_host(x, "kms.coffer.internal", 0, 0, NULL), 1);
    T_EQ(X509_check_ip_asc(x, "127.0.0.1", 0), 1);
    T_EQ(X509_check_ip_asc(x, "::1", 0), 1);
    T_EQ(X509_check_ip_asc(x, "127.0.0.2", 0), 0);
    T_EQ(X509_check_ca(x), 0);
    T_ASSERT((X509_get_key_usage(x) & KU_DIGITAL_SIGNATURE) != 0);
    T_ASSERT((X509_get_key_usage(x) & KU_KEY_CERT_SIGN) == 0);

    /* Chain: valid for both purposes under its CA, not under another CA. */
    T_ASSERT(verify(ca, x, X509_PURPOSE_SSL_SERVER, 0));
    T_ASSERT(verify(ca, x, X509_PURPOSE_SSL_CLIENT, 0));
    T_ASSERT(!verify(ca2, x, X509_PURPOSE_SSL_SERVER, 0));
    /* Validity: not after ~30 days, not before (backdating is minutes, not days). */
    T_ASSERT(!verify(ca, x, 0, time(NULL) + 31 * (time_t)DAY));
    T_ASSERT(!verify(ca, x, 0, time(NULL) - (time_t)DAY));

    /* extendedKeyUsage: a server-only certificate is not a client certificate. */
    o.usage = CF_PKI_SERVER;
    o.spiffe_id = "spiffe://coffer/gateway";
    o.common_name = "gateway";
    T_OK(cf_pki_issue(ca, &o, &srv));
    T_ASSERT(verify(ca, cf_pki_cert(srv), X509_PURPOSE_SSL_SERVER, 0));
    T_ASSERT(!verify(ca, cf_pki_cert(srv), X509_PURPOSE_SSL_CLIENT, 0));

    /* A leaf cannot sign certificates (CA:FALSE): a cert it "issues" does not verify. */
    o.usage = CF_PKI_CLIENT;
    T_OK(cf_pki_issue(srv, &o, &foreign));
    T_ASSERT(!verify_chain(ca, cf_pki_cert(foreign), cf_pki_cert(srv), 0, 0));
    T_EQ(last_verify_error, X509_V_ERR_INVALID_CA);

    /* The leaf never outlives its CA. */
    {
        cf_pki_cred *short_ca = NULL, *l2 = NULL;
        T_OK(cf_pki_ca_create("short", DAY, &short_ca));
        o.valid_seconds = 365 * DAY;
        T_OK(cf_pki_issue(short_ca, &o, &l2));
        T_EQ(ASN1_TIME_compare(X509_get0_notAfter(cf_pki_cert(l2)),
                               X509_get0_notAfter(cf_pki_cert(short_ca))),
             0);
        cf_pki_free(l2);
        cf_pki_free(short_ca);
    }
    cf_pki_free(foreign);
    cf_pki_free(srv);
    cf_pki_free(leaf);
    cf_pki_free(ca2);
    cf_pki_free(ca);
}

static void test_issue_rejects(void)
{
    const char *bad_dns[] = {"bad name", NULL};
    const char *inj_dns[] = {"a.example,URI:spiffe://coffer/admin", NULL};
    const char *bad_ip[] = {"300.1.1.1", NULL};
    cf_pki_leaf_opts o = {"spiffe://coffer/kms", NULL, NULL, CF_PKI_SERVER, DAY, NULL};
    cf_pki_cred *ca = NULL, *leaf = NULL;

    T_OK(cf_pki_ca_create("CA", DAY, &ca));
    o.spiffe_id = "https://coffer/kms";
    T_ERR(cf_pki_issue(ca, &o, &leaf), CF_E_INVAL);
    o.spiffe_id = "spiffe://coffer";
    T_ERR(cf_pki_issue(ca, &o, &leaf), CF_E_INVAL);
    o.spiffe_id = "spiffe://coffer/kms/";
    T_ERR(cf_pki_issue(ca, &o, &leaf), CF_E_INVAL);
    o.spiffe_id = NULL;
    T_ERR(cf_pki_issue(ca, &o, &leaf), CF_E_INVAL);
    o.spiffe_id = "spiffe://coffer/kms";
    o.usage = 0;
    T_ERR(cf_pki_issue(ca, &o, &leaf), CF_E_INVAL);
    o.usage = CF_PKI_SERVER;
    o.valid_seconds = 0;
    T_ERR(cf_pki_issue(ca, &o, &leaf), CF_E_INVAL);
    o.valid_seconds = DAY;
    o.dns = bad_dns;
    T_ERR(cf_pki_issue(ca, &o, &leaf), CF_E_INVAL);
    o.dns = inj_dns;
    T_ERR(cf_pki_issue(ca, &o, &leaf), CF_E_INVAL);
    o.dns = NULL;
    o.ips = bad_ip;
    T_ERR(cf_pki_issue(ca, &o, &leaf), CF_E_INVAL);
    T_ASSERT(leaf == NULL);
    cf_pki_free(ca);
}

static void test_spiffe_syntax(void)
{
    char longid[CF_SPIFFE_ID_MAX_LEN + 8];

    T_ASSERT(cf_pki_spiffe_id_valid("spiffe://coffer/kms"));
    T_ASSERT(cf_pki_spiffe_id_valid("spiffe://prod.coffer-1/ns/kms_v2/Replica.3"));
    T_ASSERT(!cf_pki_spiffe_id_valid("SPIFFE://coffer/kms"));
    T_ASSERT(!cf_pki_spiffe_id_valid("spiffe://Coffer/kms")); /* trust domain is lower case */
    T_ASSERT(!cf_pki_spiffe_id_valid("spiffe:///kms"));
    T_ASSERT(!cf_pki_spiffe_id_valid("spiffe://coffer:443/kms"));
    T_ASSERT(!cf_pki_spiffe_id_valid("spiffe://user@coffer/kms"));
    T_ASSERT(!cf_pki_spiffe_id_valid("spiffe://coffer//kms"));
    T_ASSERT(!cf_pki_spiffe_id_valid("spiffe://coffer/./kms"));
    T_ASSERT(!cf_pki_spiffe_id_valid("spiffe://coffer/a/.."));
    T_ASSERT(!cf_pki_spiffe_id_valid("spiffe://coffer/kms?x=1"));
    T_ASSERT(!cf_pki_spiffe_id_valid("spiffe://coffer/kms#f"));
    T_ASSERT(!cf_pki_spiffe_id_valid("spiffe://coffer/k%20s"));
    memcpy(longid, "spiffe://coffer/", 16);
    memset(longid + 16, 'a', sizeof(longid) - 17);
    longid[sizeof(longid) - 1] = 0;
    T_ASSERT(!cf_pki_spiffe_id_valid(longid));
    longid[CF_SPIFFE_ID_MAX_LEN] = 0;
    T_ASSERT(cf_pki_spiffe_id_valid(longid));
}

static void test_files(void)
{
    const char *ips[] = {"127.0.0.1", NULL};
    cf_pki_leaf_opts o = {"spiffe://coffer/attest", NULL, ips, CF_PKI_SERVER, DAY, NULL};
    cf_pki_cred *ca = NULL, *leaf = NULL, *back = NULL, *other = NULL;
    struct stat st;
    char cert[256], key[256];

    /* Own copies: tpath() recycles its buffers. */
    T_OK(cf_fmt(cert, sizeof(cert), "%s", tpath("attest.crt")));
    T_OK(cf_fmt(key, sizeof(key), "%s", tpath("attest.key")));

    T_OK(cf_pki_ca_create("CA", DAY, &ca));
    T_OK(cf_pki_issue(ca, &o, &leaf));
    T_OK(cf_pki_write(leaf, cert, key));
    T_OK(stat(key, &st));
    T_EQ(st.st_mode & 0777, 0600);
    T_OK(stat(cert, &st));
    T_EQ(st.st_mode & 0777, 0644);

    /* Round trip: same certificate, matching key, still verifies. */
    T_OK(cf_pki_load(cert, key, &back));
    T_EQ(X509_cmp(cf_pki_cert(back), cf_pki_cert(leaf)), 0);
    T_EQ(EVP_PKEY_eq(cf_pki_key(back), cf_pki_key(leaf)), 1);
    T_ASSERT(verify(ca, cf_pki_cert(back), X509_PURPOSE_SSL_SERVER, 0));
    cf_pki_free(back);
    back = NULL;

    /* No overwrite; nothing left behind on failure (the key is not half-written). */
    T_ERR(cf_pki_write(leaf, cert, key), CF_E_EXISTS);
    T_ERR(cf_pki_write(leaf, tpath("new.crt"), key), CF_E_EXISTS);
    T_ASSERT(access(tpath("new.crt"), F_OK) != 0);
    T_ERR(cf_pki_write(leaf, cert, tpath("new.key")), CF_E_EXISTS);
    T_ASSERT(access(tpath("new.key"), F_OK) != 0); /* removed again after the cert failed */

    /* A CA written and loaded back can keep issuing (coffer init, then later runs). */
    T_OK(cf_pki_write(ca, tpath("ca.crt"), tpath("ca.key")));
    T_OK(cf_pki_load(tpath("ca.crt"), tpath("ca.key"), &back));
    o.spiffe_id = "spiffe://coffer/iam";
    T_OK(cf_pki_issue(back, &o, &other));
    T_ASSERT(verify(ca, cf_pki_cert(other), X509_PURPOSE_SSL_SERVER, 0));

    /* Mismatched key, missing files, garbage. */
    T_ERR(cf_pki_load(cert, tpath("ca.key"), &back), CF_E_INVAL);
    T_ERR(cf_pki_load(tpath("missing.crt"), key, &back), CF_E_NOT_FOUND);
    T_ERR(cf_pki_load(key, key, &back), CF_E_PARSE); /* a key is not a certificate */
    T_ERR(cf_pki_load(cert, cert, &back), CF_E_PARSE);

    cf_pki_free(other);
    cf_pki_free(back);
    cf_pki_free(leaf);
    cf_pki_free(ca);
}

int main(void)
{
    char cmd[128];

    if (cf_fmt(tmpdir, sizeof(tmpdir), "/tmp/coffer-pki-XXXXXX") < 0 || mkdtemp(tmpdir) == NULL)
        abort();
    T_RUN(test_ca);
    T_RUN(test_issue_and_verify);
    T_RUN(test_issue_rejects);
    T_RUN(test_spiffe_syntax);
    T_RUN(test_files);
    if (cf_fmt(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir) == 0 && system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", tmpdir);
    return t_done();
}
