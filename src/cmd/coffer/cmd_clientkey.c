/*
 * coffer clientkey register --principal P (--key B64URL | --generate --out FILE)
 *
 * Registers the X25519 client key of a principal (docs/internals/iam.md
 * "Client keys"; DESIGN.md §5 step 3: the KMS seals one-time keys to it).
 * Registering replaces the principal's previous key. The caller is that
 * principal, or a tenant-admin of its tenant.
 *
 * --generate makes the key pair here: the private key is written to a new file
 * of mode 0600 as PKCS#8 PEM — the format the SDK reads (docs/SDK.md "The client
 * key", client_key_path / COFFER_CLIENT_KEY) — before anything is sent, and only
 * the public key leaves this process. If the registration is refused the file
 * is removed again (it would hold a key nobody registered).
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "api.h"
#include "base/buf.h"
#include "base/limits.h"
#include "base/parse.h"
#include "cli.h"
#include "crypto/keys.h"

static int clientkey_register(int argc, char **argv)
{
    static const char *const prog = "coffer clientkey register";
    static const cli_col cols[] = {
        {"Principal", "principal", CLI_COL_STR},
        {"X25519", "x25519", CLI_COL_STR},
        {"Status", "status", CLI_COL_STR},
        {"Private key", "private_key_file", CLI_COL_STR}, /* added locally with --generate */
    };
    const char *principal = NULL, *key_text = NULL, *out = NULL;
    bool generate = false, written = false;
    const cli_opt opts[] = {{"principal", CLI_ARG_STR, &principal},
                            {"key", CLI_ARG_STR, &key_text},
                            {"generate", CLI_ARG_FLAG, &generate},
                            {"out", CLI_ARG_STR, &out}};
    char path[CF_CLI_MAX_PATH], b64[64];
    uint8_t pub[CF_X25519_LEN];
    size_t n = 0;
    cf_key *k = NULL;
    cf_buf raw, pem;
    cli_api *a = NULL;
    json_t *body = NULL, *o = NULL;
    cli_conn conn;
    int st;

    if (!cli_parse(prog,
                   "coffer clientkey register --principal P (--key B64URL | --generate --out FILE)\n\n"
                   "Registers the X25519 public key of principal P (replacing its previous key).\n"
                   "  --key B64URL   the 32-byte public key, unpadded base64url\n"
                   "  --generate     make a new key pair; the private key (PKCS#8 PEM, the SDK's\n"
                   "                 client key format) goes to --out FILE, a new file of mode 0600\n",
                   argc, argv, opts, CF_ARRAY_LEN(opts), NULL, 0, &conn, &st))
        return st;
    if (principal == NULL)
        return cli_usage_error(prog, "--principal is required");
    if ((key_text != NULL) == generate)
        return cli_usage_error(prog, "give exactly one of --key and --generate");
    if (generate != (out != NULL))
        return cli_usage_error(prog, "--generate needs --out FILE, and --out goes with --generate");
    if (!cli_check_id(prog, "principal id", principal) ||
        cf_fmt(path, sizeof(path), "/v1/iam/principals/%s/client-key", principal) != 0)
        return CLI_EXIT_USAGE;

    cf_buf_init(&raw, 64);
    cf_buf_init_secret(&pem, CF_KEY_MAX_PEM_BYTES);
    st = CLI_EXIT_INPUT;
    if (key_text != NULL) {
        /* Checked here for a clear message; IAM checks it again (canonical,
         * not of small order: RFC 7748 §6.1). */
        if (cf_b64url_decode(key_text, strlen(key_text), &raw) != 0 || raw.len != CF_X25519_LEN) {
            fprintf(stderr, "%s: --key must be 32 bytes of unpadded base64url (43 characters)\n", prog);
            goto out;
        }
        memcpy(pub, raw.data, sizeof(pub));
    } else {
        if (cf_key_generate(CF_KEY_X25519, &k) != 0 || cf_key_export_private_pem(k, &pem) != 0 ||
            cf_key_export_public(k, pub, sizeof(pub), &n) != 0 || n != sizeof(pub)) {
            fprintf(stderr, "%s: cannot make an X25519 key pair\n", prog);
            st = CLI_EXIT_SERVICE;
            goto out;
        }
        /* pem is NUL-terminated beyond len: write exactly the PEM text. */
        if (cli_write_new_file(prog, out, pem.data, pem.len, 0600) != 0)
            goto out;
        written = true;
    }
    cf_b64url_encode(pub, sizeof(pub), b64);
    body = json_pack("{s:s}", "x25519", b64);
    if (body == NULL) {
        st = cli_oom(prog);
        goto out;
    }
    st = CLI_EXIT_SERVICE;
    if (cli_api_new(prog, &conn, &a, &st) < 0)
        goto out;
    if (cli_api_call(a, "PUT", path, body, false, &o) < 0) {
        st = cli_api_exit(a);
        goto out;
    }
    written = false; /* registered: the file stays */
    if (conn.json)
        st = cli_print_json(o) == 0 ? CLI_EXIT_OK : cli_oom(prog);
    else {
        if (out != NULL && json_object_set_new(o, "private_key_file", json_string(out)) != 0)
            fprintf(stderr, "%s: the private key is in %s\n", prog, out);
        cli_print_object(o, cols, CF_ARRAY_LEN(cols));
        st = CLI_EXIT_OK;
    }
out:
    if (written && unlink(out) == 0)
        fprintf(stderr, "%s: removed %s: its key was not registered\n", prog, out);
    json_decref(o);
    json_decref(body);
    cli_api_free(a);
    cf_key_free(k);
    cf_buf_free(&pem);
    cf_buf_free(&raw);
    return st;
}

int cli_clientkey(int argc, char **argv)
{
    static const cli_sub subs[] = {
        {"register", "register --principal P (--key B64URL | --generate --out FILE)", clientkey_register},
    };

    return cli_dispatch("clientkey",
                        "usage: coffer clientkey <sub-command> [options]\n\nX25519 client keys of principals "
                        "(IAM): the key one-time keys are sealed to.",
                        subs, CF_ARRAY_LEN(subs), argc, argv);
}
