/*
 * Internal PKI for service-to-service mTLS (DESIGN.md §2 rule 5): an internal
 * CA (ECDSA P-256, self-signed) that issues leaf certificates whose identity is
 * a SPIFFE ID in the URI SAN (SPIFFE X509-SVID spec §2), e.g.
 * spiffe://coffer/kms, plus optional DNS / IP SANs for hostname verification.
 * Used by `coffer init` / `coffer up` and by tests.
 *
 * A cf_pki_cred holds one certificate and its private key. It is owned by the
 * caller and released with cf_pki_free; pointers returned by cf_pki_cert /
 * cf_pki_key are borrowed and valid until then.
 */
#ifndef COFFER_CRYPTO_PKI_H
#define COFFER_CRYPTO_PKI_H

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/compiler.h"

typedef struct cf_pki_cred cf_pki_cred;

/* extendedKeyUsage of a leaf (RFC 5280 §4.2.1.12). */
enum {
    CF_PKI_SERVER = 1u << 0, /* id-kp-serverAuth */
    CF_PKI_CLIENT = 1u << 1, /* id-kp-clientAuth */
};

typedef struct {
    const char *spiffe_id;    /* required: spiffe://trust-domain/path */
    const char *const *dns;   /* optional NULL-terminated list of DNS names */
    const char *const *ips;   /* optional NULL-terminated list of IPv4/IPv6 literals */
    unsigned usage;           /* CF_PKI_SERVER and/or CF_PKI_CLIENT */
    uint64_t valid_seconds;   /* lifetime from now (> 0) */
    const char *common_name;  /* optional subject CN; default: the SPIFFE ID */
} cf_pki_leaf_opts;

/*
 * Creates a CA: new P-256 key, self-signed certificate with subject CN
 * common_name, basicConstraints critical CA:TRUE pathlen:0, keyUsage critical
 * keyCertSign|cRLSign, subject key identifier, valid from now (backdated a few
 * minutes for clock skew) for valid_seconds.
 */
int cf_pki_ca_create(const char *common_name, uint64_t valid_seconds, cf_pki_cred **ret) CF_WUR;

/*
 * Issues a leaf signed by ca: new P-256 key, basicConstraints critical CA:FALSE,
 * keyUsage critical digitalSignature, extendedKeyUsage from o->usage,
 * subjectAltName with exactly one URI (the SPIFFE ID) plus the DNS/IP names,
 * subject/authority key identifiers. The leaf never outlives the CA: its
 * notAfter is capped at the CA's.
 */
int cf_pki_issue(const cf_pki_cred *ca, const cf_pki_leaf_opts *o, cf_pki_cred **ret) CF_WUR;

/*
 * Writes the certificate (PEM, mode 0644) and the private key (PKCS#8 PEM,
 * mode 0600) to new files. Each file is written to a temporary name, synced
 * and linked into place, so a reader never sees a partial file. Fails with
 * CF_E_EXISTS rather than overwrite an existing file; on failure neither file
 * is left behind. key_path may be NULL to write only the certificate.
 */
int cf_pki_write(const cf_pki_cred *c, const char *cert_path, const char *key_path) CF_WUR;

/* Loads a certificate and its key (the key must match the certificate). */
int cf_pki_load(const char *cert_path, const char *key_path, cf_pki_cred **ret) CF_WUR;

/* Appends the certificate in PEM form. */
int cf_pki_cert_pem(const cf_pki_cred *c, cf_buf *out) CF_WUR;

/* Borrowed OpenSSL objects (valid until cf_pki_free). */
X509 *cf_pki_cert(const cf_pki_cred *c);
EVP_PKEY *cf_pki_key(const cf_pki_cred *c);

/* NULL is accepted. */
void cf_pki_free(cf_pki_cred *c);

/* SPIFFE ID syntax (SPIFFE-ID spec §2): "spiffe://" trust domain of [a-z0-9.-_],
 * then non-empty path segments of [A-Za-z0-9.-_] other than "." and "..", no
 * query, fragment, port or user info, at most CF_SPIFFE_ID_MAX_LEN bytes. */
bool cf_pki_spiffe_id_valid(const char *id);

#endif
