/*
 * coffer evidence verify --report R --cert C [--manifest M] [--deployment D]
 *                        [--nonce HEX --key KEY] [--at TIME] [--crl FILE]... [--json]
 * coffer evidence show REPORT [--json]
 *
 * Verifies SEV-SNP evidence locally with the same verifier the KMS, the
 * attestation service and the SDK use. Exit status 0 only when verified.
 */
#include <getopt.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "attest/manifest.h"
#include "attest/snp.h"
#include "attest/verify.h"
#include "base/buf.h"
#include "base/err.h"
#include "base/file.h"
#include "base/json.h"
#include "base/limits.h"
#include "base/parse.h"
#include "cli.h"

#define MAX_CRLS 8

static void verify_usage(FILE *f)
{
    fprintf(f,
            "usage: coffer evidence verify --report FILE --cert FILE [options]\n"
            "\n"
            "Verifies an AMD SEV-SNP attestation report and its VCEK/VLEK certificate.\n"
            "\n"
            "  --report FILE      raw ATTESTATION_REPORT (1184 bytes)\n"
            "  --cert FILE        VCEK or VLEK certificate (DER or PEM)\n"
            "  --manifest FILE    policy to apply (default: AMD roots, no debug, VMPL 0, any TCB;\n"
            "                     the measurement is then shown but not checked)\n"
            "  --deployment NAME  deployment the TEE claims to run (with --manifest)\n"
            "  --nonce HEX        32-byte nonce the report_data must bind (with --key)\n"
            "  --key KEY          TEE public key (hex or base64url) the report_data must bind\n"
            "  --at TIME          verification time: RFC 3339 UTC (2025-09-01T00:00:00Z) or\n"
            "                     unix seconds (default: now)\n"
            "  --crl FILE         AMD KDS CRL (DER or PEM); may be repeated\n"
            "  --json             machine-readable result\n"
            "\n"
            "Exit status: 0 verified, 1 not verified, 2 usage error, 3 unreadable input.\n");
}

/* RFC 3339 "YYYY-MM-DDTHH:MM:SSZ" or decimal unix seconds. */
static int parse_time(const char *s, time_t *ret)
{
    struct tm tm;
    const char *end;
    uint64_t secs;

    if (cf_parse_u64(s, (uint64_t)INT64_MAX, &secs) == 0) {
        *ret = (time_t)secs;
        return 0;
    }
    memset(&tm, 0, sizeof(tm));
    end = strptime(s, "%Y-%m-%dT%H:%M:%SZ", &tm);
    if (end == NULL || *end != '\0')
        return cf_err_set(CF_E_PARSE, "--at: '%s' is not RFC 3339 UTC (YYYY-MM-DDTHH:MM:SSZ) or unix seconds", s);
    *ret = timegm(&tm);
    return 0;
}

/* hex or base64url into out. */
static int parse_bytes(const char *s, size_t max, cf_buf *out)
{
    if (cf_hex_decode_buf(s, max, out) == 0 && out->len > 0)
        return 0;
    cf_buf_reset(out);
    if (cf_b64url_decode(s, strlen(s), out) == 0 && out->len > 0 && out->len <= max)
        return 0;
    cf_buf_reset(out);
    return CF_E_PARSE;
}

static int load_crls(char **paths, int n, STACK_OF(X509_CRL) **ret)
{
    STACK_OF(X509_CRL) *sk = sk_X509_CRL_new_null();

    if (sk == NULL)
        return CF_E_NOMEM;
    for (int i = 0; i < n; i++) {
        cf_buf b;
        X509_CRL *crl = NULL;
        cf_buf_init(&b, CF_CERT_MAX_BYTES * 16);
        if (cf_file_read(paths[i], CF_CERT_MAX_BYTES * 16, &b) == 0 && b.len > 0) {
            const unsigned char *p = b.data;
            crl = d2i_X509_CRL(NULL, &p, (long)b.len);
            if (crl == NULL) {
                BIO *bio = BIO_new_mem_buf(b.data, (int)b.len);
                if (bio != NULL)
                    crl = PEM_read_bio_X509_CRL(bio, NULL, NULL, NULL);
                BIO_free(bio);
            }
        }
        cf_buf_free(&b);
        if (crl == NULL || sk_X509_CRL_push(sk, crl) <= 0) {
            X509_CRL_free(crl);
            sk_X509_CRL_pop_free(sk, X509_CRL_free);
            return cf_err_set(CF_E_PARSE, "cannot read CRL %s", paths[i]);
        }
    }
    *ret = sk;
    return 0;
}

/* Without --manifest: platform policy only; the report's own measurement is the
 * one allowed, so the verdict is about authenticity and platform state. */
static int default_manifest(const uint8_t *report, size_t len, cf_manifest **ret)
{
    cf_snp_report r;
    char meas[2 * 48 + 1];
    json_t *m;
    char *js;
    int rc;

    memset(meas, '0', 96);
    meas[96] = 0;
    if (cf_snp_report_parse(report, len, &r) == 0)
        cf_hex_encode(r.measurement, sizeof(r.measurement), meas);
    m = json_pack("{s:i,s:s,s:{s:{s:[s,s,s],s:{s:{s:i,s:i,s:i,s:i},s:{s:i,s:i,s:i,s:i},"
                  "s:{s:i,s:i,s:i,s:i,s:i}},s:b}},s:[{s:s,s:s,s:[s],s:s,s:{s:{s:[s]}}}]}",
                  "version", 1, "name", "coffer-cli-default", "platforms", "sev-snp", "roots",
                  "amd:milan", "amd:genoa", "amd:turin", "min_tcb", "milan", "bootloader", 0, "tee", 0,
                  "snp", 0, "microcode", 0, "genoa", "bootloader", 0, "tee", 0, "snp", 0, "microcode", 0,
                  "turin", "fmc", 0, "bootloader", 0, "tee", 0, "snp", 0, "microcode", 0, "allow_debug",
                  0, "deployments", "name", "unchecked", "tenant", "unchecked", "jobs", "none",
                  /* Placeholder: no bundle signature is checked by evidence verify. */
                  "developer_key", "F4L2-KeulD8PjwNzy78QLHGrVxORTCycQOMoWyensAk", "platforms", "sev-snp",
                  "measurements", meas);
    if (m == NULL)
        return CF_E_NOMEM;
    js = cf_json_dump(m);
    json_decref(m);
    if (js == NULL)
        return CF_E_NOMEM;
    rc = cf_manifest_parse(js, strlen(js), ret);
    free(js);
    return rc;
}

static int cmd_verify(int argc, char **argv)
{
    static const struct option opts[] = {
        {"report", required_argument, NULL, 'r'}, {"cert", required_argument, NULL, 'c'},
        {"manifest", required_argument, NULL, 'm'}, {"deployment", required_argument, NULL, 'd'},
        {"nonce", required_argument, NULL, 'n'}, {"key", required_argument, NULL, 'k'},
        {"at", required_argument, NULL, 'a'}, {"crl", required_argument, NULL, 'l'},
        {"json", no_argument, NULL, 'j'}, {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
    const char *report_path = NULL, *cert_path = NULL, *manifest_path = NULL, *deployment = NULL;
    const char *nonce_s = NULL, *key_s = NULL;
    char *crl_paths[MAX_CRLS];
    int ncrl = 0, json = 0, c, rc, status = CLI_EXIT_INPUT;
    time_t at = time(NULL);
    cf_buf report, cert, nonce, key, text;
    cf_manifest *m = NULL;
    cf_verify_result *res = NULL;
    STACK_OF(X509_CRL) *crls = NULL;
    cf_verify_input in;

    cf_buf_init(&report, CF_SNP_REPORT_LEN + 1);
    cf_buf_init(&cert, CF_CERT_MAX_BYTES);
    cf_buf_init(&nonce, 32);
    cf_buf_init(&key, CF_TEE_KEY_MAX_LEN);
    cf_buf_init(&text, 1 << 16);
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'r': report_path = optarg; break;
        case 'c': cert_path = optarg; break;
        case 'm': manifest_path = optarg; break;
        case 'd': deployment = optarg; break;
        case 'n': nonce_s = optarg; break;
        case 'k': key_s = optarg; break;
        case 'j': json = 1; break;
        case 'a':
            if (parse_time(optarg, &at) != 0) {
                fprintf(stderr, "coffer evidence verify: %s\n", cf_err_detail(CF_E_PARSE));
                status = CLI_EXIT_USAGE;
                goto out;
            }
            break;
        case 'l':
            if (ncrl == MAX_CRLS) {
                fprintf(stderr, "coffer evidence verify: at most %d --crl\n", MAX_CRLS);
                status = CLI_EXIT_USAGE;
                goto out;
            }
            crl_paths[ncrl++] = optarg;
            break;
        case 'h': verify_usage(stdout); status = CLI_EXIT_OK; goto out;
        default: verify_usage(stderr); status = CLI_EXIT_USAGE; goto out;
        }
    }
    if (report_path == NULL || cert_path == NULL || optind != argc || (nonce_s == NULL) != (key_s == NULL) ||
        (deployment != NULL && manifest_path == NULL)) {
        fprintf(stderr, "coffer evidence verify: %s\n",
                optind != argc ? "unexpected argument"
                : (nonce_s == NULL) != (key_s == NULL) ? "--nonce and --key go together"
                : deployment != NULL && manifest_path == NULL ? "--deployment needs --manifest"
                : "--report and --cert are required");
        verify_usage(stderr);
        status = CLI_EXIT_USAGE;
        goto out;
    }
    if ((rc = cf_file_read(report_path, CF_SNP_REPORT_LEN + 1, &report)) != 0 ||
        (rc = cf_file_read(cert_path, CF_CERT_MAX_BYTES, &cert)) != 0) {
        fprintf(stderr, "coffer evidence verify: %s\n", cf_err_detail(rc));
        goto out;
    }
    if (nonce_s != NULL && (cf_hex_decode_buf(nonce_s, 32, &nonce) != 0 || nonce.len != 32)) {
        fprintf(stderr, "coffer evidence verify: --nonce must be 64 hex digits\n");
        status = CLI_EXIT_USAGE;
        goto out;
    }
    if (key_s != NULL && parse_bytes(key_s, CF_TEE_KEY_MAX_LEN, &key) != 0) {
        fprintf(stderr, "coffer evidence verify: --key must be hex or base64url\n");
        status = CLI_EXIT_USAGE;
        goto out;
    }
    if (ncrl > 0 && (rc = load_crls(crl_paths, ncrl, &crls)) != 0) {
        fprintf(stderr, "coffer evidence verify: %s\n", cf_err_detail(rc));
        goto out;
    }
    rc = manifest_path ? cf_manifest_load(manifest_path, &m) : default_manifest(report.data, report.len, &m);
    if (rc != 0) {
        fprintf(stderr, "coffer evidence verify: manifest: %s\n", cf_err_detail(rc));
        goto out;
    }
    memset(&in, 0, sizeof(in));
    in.report = report.data;
    in.report_len = report.len;
    in.cert = cert.data;
    in.cert_len = cert.len;
    in.deployment = deployment;
    in.tee_public_key = key_s ? key.data : NULL;
    in.tee_public_key_len = key_s ? key.len : 0;
    in.nonce = nonce_s ? nonce.data : NULL;
    in.at = at;
    in.crls = crls;
    rc = cf_verify_evidence(m, &in, &res);
    if (rc != 0) {
        fprintf(stderr, "coffer evidence verify: %s\n", cf_err_detail(rc));
        status = CLI_EXIT_USAGE;
        goto out;
    }
    if (json) {
        json_t *j = cf_verify_result_to_json(res);
        char *s = j ? json_dumps(j, JSON_INDENT(2) | JSON_SORT_KEYS) : NULL;
        if (s == NULL) {
            json_decref(j);
            status = CLI_EXIT_INPUT;
            goto out;
        }
        printf("%s\n", s);
        free(s);
        json_decref(j);
    } else {
        if (cf_verify_result_to_text(res, &text) != 0 || cf_buf_nul_terminate(&text) != 0)
            goto out;
        fputs((const char *)text.data, stdout);
        if (manifest_path == NULL)
            printf("note: no --manifest given: platform policy only (AMD roots, no debug, VMPL 0, any TCB);\n"
                   "      the measurement %s was not checked against any deployment\n",
                   res->facts.measurement);
    }
    status = res->verified ? CLI_EXIT_OK : CLI_EXIT_FAILED;
out:
    cf_verify_result_free(res);
    cf_manifest_free(m);
    if (crls != NULL)
        sk_X509_CRL_pop_free(crls, X509_CRL_free);
    cf_buf_free(&report);
    cf_buf_free(&cert);
    cf_buf_free(&nonce);
    cf_buf_free(&key);
    cf_buf_free(&text);
    return status;
}

static void hexline(const char *label, const uint8_t *p, size_t n)
{
    char h[2 * 64 + 1];
    cf_hex_encode(p, n, h);
    printf("  %-20s %s\n", label, h);
}

static void tcbline(const char *label, uint64_t raw, cf_snp_product prod)
{
    cf_snp_tcb t;
    cf_snp_tcb_decode(raw, prod, &t);
    if (prod == CF_SNP_PRODUCT_TURIN)
        printf("  %-20s fmc=%u bootloader=%u tee=%u snp=%u microcode=%u (0x%016llx)\n", label, t.fmc,
               t.bootloader, t.tee, t.snp, t.microcode, (unsigned long long)raw);
    else
        printf("  %-20s bootloader=%u tee=%u snp=%u microcode=%u (0x%016llx)\n", label, t.bootloader,
               t.tee, t.snp, t.microcode, (unsigned long long)raw);
}

static int cmd_show(int argc, char **argv)
{
    cf_buf b;
    cf_snp_report r;
    const char *path = NULL;
    int json = 0, rc;
    cf_snp_product prod;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0)
            json = 1;
        else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            printf("usage: coffer evidence show REPORT [--json]\n\nDecodes an AMD SEV-SNP attestation report "
                   "(no verification).\n");
            return CLI_EXIT_OK;
        } else if (path == NULL && argv[i][0] != '-')
            path = argv[i];
        else {
            fprintf(stderr, "usage: coffer evidence show REPORT [--json]\n");
            return CLI_EXIT_USAGE;
        }
    }
    if (path == NULL) {
        fprintf(stderr, "usage: coffer evidence show REPORT [--json]\n");
        return CLI_EXIT_USAGE;
    }
    cf_buf_init(&b, CF_SNP_REPORT_LEN + 1);
    rc = cf_file_read(path, CF_SNP_REPORT_LEN + 1, &b);
    if (rc == 0)
        rc = cf_snp_report_parse(b.data, b.len, &r);
    cf_buf_free(&b);
    if (rc != 0) {
        fprintf(stderr, "coffer evidence show: %s\n", cf_err_detail(rc));
        return CLI_EXIT_INPUT;
    }
    prod = cf_snp_report_product(&r);
    if (json) {
        char m[97], rd[129], hd[65], chip[129], idk[97], auk[97], rid[65];
        json_t *j;
        char *s;
        cf_hex_encode(r.measurement, 48, m);
        cf_hex_encode(r.report_data, 64, rd);
        cf_hex_encode(r.host_data, 32, hd);
        cf_hex_encode(r.chip_id, 64, chip);
        cf_hex_encode(r.id_key_digest, 48, idk);
        cf_hex_encode(r.author_key_digest, 48, auk);
        cf_hex_encode(r.report_id, 32, rid);
        j = json_pack("{s:I,s:I,s:I,s:b,s:I,s:I,s:s,s:I,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:I,s:I,s:I,s:I,"
                      "s:i,s:i,s:i,s:I,s:I}",
                      "version", (json_int_t)r.version, "guest_svn", (json_int_t)r.guest_svn, "policy",
                      (json_int_t)r.policy, "debug", (r.policy & CF_SNP_POLICY_DEBUG) != 0, "vmpl",
                      (json_int_t)r.vmpl, "signing_key", (json_int_t)cf_snp_report_signing_key(&r),
                      "product", cf_snp_product_name(prod), "platform_info", (json_int_t)r.platform_info,
                      "measurement", m, "report_data", rd, "host_data", hd, "chip_id", chip,
                      "id_key_digest", idk, "author_key_digest", auk, "report_id", rid,
                      "current_tcb", (json_int_t)r.current_tcb_raw, "reported_tcb",
                      (json_int_t)r.reported_tcb_raw, "committed_tcb", (json_int_t)r.committed_tcb_raw,
                      "launch_tcb", (json_int_t)r.launch_tcb_raw, "cpuid_family", r.cpuid_fam_id,
                      "cpuid_model", r.cpuid_mod_id, "cpuid_stepping", r.cpuid_step,
                      "launch_mit_vector", (json_int_t)r.launch_mit_vector, "current_mit_vector",
                      (json_int_t)r.current_mit_vector);
        s = j ? json_dumps(j, JSON_INDENT(2)) : NULL;
        json_decref(j);
        if (s == NULL)
            return CLI_EXIT_INPUT;
        printf("%s\n", s);
        free(s);
        return CLI_EXIT_OK;
    }
    printf("SEV-SNP attestation report (%s), not verified\n", path);
    printf("  %-20s %u\n", "version", r.version);
    printf("  %-20s %s\n", "product", cf_snp_product_name(prod));
    printf("  %-20s %u\n", "guest_svn", r.guest_svn);
    printf("  %-20s 0x%016llx (debug %s, smt %s, migrate_ma %s)\n", "policy", (unsigned long long)r.policy,
           r.policy & CF_SNP_POLICY_DEBUG ? "ON" : "off", r.policy & CF_SNP_POLICY_SMT ? "allowed" : "off",
           r.policy & CF_SNP_POLICY_MIGRATE_MA ? "on" : "off");
    printf("  %-20s %u\n", "vmpl", r.vmpl);
    printf("  %-20s %s\n", "signing_key",
           cf_snp_report_signing_key(&r) == CF_SNP_KEY_VCEK   ? "VCEK"
           : cf_snp_report_signing_key(&r) == CF_SNP_KEY_VLEK ? "VLEK"
                                                              : "none/other");
    printf("  %-20s 0x%016llx\n", "platform_info", (unsigned long long)r.platform_info);
    hexline("measurement", r.measurement, 48);
    hexline("host_data", r.host_data, 32);
    hexline("report_data", r.report_data, 64);
    hexline("id_key_digest", r.id_key_digest, 48);
    hexline("author_key_digest", r.author_key_digest, 48);
    hexline("report_id", r.report_id, 32);
    hexline("chip_id", r.chip_id, 64);
    tcbline("current_tcb", r.current_tcb_raw, prod);
    tcbline("reported_tcb", r.reported_tcb_raw, prod);
    tcbline("committed_tcb", r.committed_tcb_raw, prod);
    tcbline("launch_tcb", r.launch_tcb_raw, prod);
    if (r.version >= 3)
        printf("  %-20s family 0x%02x model 0x%02x stepping 0x%02x\n", "cpuid", r.cpuid_fam_id, r.cpuid_mod_id,
               r.cpuid_step);
    if (r.version >= 5)
        printf("  %-20s launch 0x%016llx current 0x%016llx\n", "mitigation_vectors",
               (unsigned long long)r.launch_mit_vector, (unsigned long long)r.current_mit_vector);
    return CLI_EXIT_OK;
}

int cli_evidence(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "verify") == 0)
        return cmd_verify(argc - 1, argv + 1);
    if (argc >= 2 && strcmp(argv[1], "show") == 0)
        return cmd_show(argc - 1, argv + 1);
    if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        printf("usage: coffer evidence verify|show ...\n\n"
               "  verify   verify a SEV-SNP report and certificate against a manifest\n"
               "  show     decode a SEV-SNP report\n");
        return CLI_EXIT_OK;
    }
    fprintf(stderr, "usage: coffer evidence verify|show ... (see 'coffer evidence --help')\n");
    return CLI_EXIT_USAGE;
}
