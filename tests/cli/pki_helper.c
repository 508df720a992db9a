/*
 * Test helper for tests/cli/test_admin_cli.sh: makes the key material the
 * script needs and the `coffer` CLI deliberately cannot make.
 *
 *   pki_helper ca DIR NAME...   DIR/ca.pem + ca.key (a fresh internal CA) and, per
 *                               NAME, DIR/NAME.pem + NAME.key: a leaf for
 *                               spiffe://coffer/NAME with SANs localhost and
 *                               127.0.0.1 (server and client usage), valid 1 h
 *   pki_helper ed25519 FILE     a fresh Ed25519 private key, PKCS#8 PEM, mode 0600
 *                               (a developer signing key); prints its public key
 *                               as base64url
 *
 * Files are never overwritten (cf_pki_write refuses). Exit 0 on success, 1 otherwise.
 */
#include <stdio.h>
#include <string.h>

#include "base/buf.h"
#include "base/err.h"
#include "base/file.h"
#include "base/limits.h"
#include "base/parse.h"
#include "crypto/keys.h"
#include "crypto/pki.h"

#define VALIDITY_S 3600

static int make_ca(const char *dir, int n, char **names)
{
    static const char *const dns[] = {"localhost", NULL};
    static const char *const ips[] = {"127.0.0.1", NULL};
    char cert[1024], key[1024], spiffe[256];
    cf_pki_cred *ca = NULL, *leaf = NULL;
    int rc;

    CF_GUARD(cf_fmt(cert, sizeof(cert), "%s/ca.pem", dir));
    CF_GUARD(cf_fmt(key, sizeof(key), "%s/ca.key", dir));
    CF_GUARD(cf_pki_ca_create("Coffer CLI test CA", VALIDITY_S, &ca));
    CF_GUARD_OUT(cf_pki_write(ca, cert, key));
    for (int i = 0; i < n; i++) {
        cf_pki_leaf_opts o = {.dns = dns, .ips = ips, .usage = CF_PKI_SERVER | CF_PKI_CLIENT,
                              .valid_seconds = VALIDITY_S};
        CF_GUARD_OUT(cf_fmt(spiffe, sizeof(spiffe), "spiffe://coffer/%s", names[i]));
        CF_GUARD_OUT(cf_fmt(cert, sizeof(cert), "%s/%s.pem", dir, names[i]));
        CF_GUARD_OUT(cf_fmt(key, sizeof(key), "%s/%s.key", dir, names[i]));
        o.spiffe_id = spiffe;
        CF_GUARD_OUT(cf_pki_issue(ca, &o, &leaf));
        CF_GUARD_OUT(cf_pki_write(leaf, cert, key));
        cf_pki_free(leaf);
        leaf = NULL;
    }
out:
    cf_pki_free(leaf);
    cf_pki_free(ca);
    return rc;
}

static int make_ed25519(const char *path)
{
    uint8_t pub[CF_ED25519_LEN];
    char text[64];
    size_t n = 0;
    cf_key *k = NULL;
    cf_buf pem;
    int rc;

    cf_buf_init_secret(&pem, CF_KEY_MAX_PEM_BYTES);
    CF_GUARD_OUT(cf_key_generate(CF_KEY_ED25519, &k));
    CF_GUARD_OUT(cf_key_export_private_pem(k, &pem));
    CF_GUARD_OUT(cf_key_export_public(k, pub, sizeof(pub), &n));
    CF_GUARD_OUT(cf_file_write_atomic(path, pem.data, pem.len, 0600));
    cf_b64url_encode(pub, n, text);
    printf("%s\n", text);
out:
    cf_buf_free(&pem);
    cf_key_free(k);
    return rc;
}

int main(int argc, char **argv)
{
    int rc;

    if (argc >= 3 && strcmp(argv[1], "ca") == 0)
        rc = make_ca(argv[2], argc - 3, argv + 3);
    else if (argc == 3 && strcmp(argv[1], "ed25519") == 0)
        rc = make_ed25519(argv[2]);
    else {
        fprintf(stderr, "usage: pki_helper ca DIR NAME... | pki_helper ed25519 FILE\n");
        return 2;
    }
    if (rc < 0) {
        fprintf(stderr, "pki_helper: %s\n", cf_err_detail(rc));
        return 1;
    }
    return 0;
}
