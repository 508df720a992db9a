/*
 * Provider object, auto-detection, the shared evidence checks and the SNP
 * certificate table (GHCB specification v2, "SNP Extended Guest Request":
 * the certificate table the host returns with an extended report).
 */
#include <errno.h>
#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/x509.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "attest/provider.h"
#include "attest/provider_impl.h"
#include "base/err.h"
#include "base/limits.h"

/* GUIDs in the byte order of their text form (AMD's sev-guest tools use
 * uuid_parse(), which yields exactly these bytes). */
const uint8_t cf_snp_guid_vcek[16] = {0x63, 0xda, 0x75, 0x8d, 0xe6, 0x64, 0x45, 0x64,
                                      0xad, 0xc5, 0xf4, 0xb9, 0x3b, 0xe8, 0xac, 0xcd};
const uint8_t cf_snp_guid_vlek[16] = {0xa8, 0x07, 0x4b, 0xc2, 0xa2, 0x5a, 0x48, 0x3e,
                                      0xaa, 0xe6, 0x39, 0xc0, 0x45, 0xa0, 0xb8, 0xa1};
const uint8_t cf_snp_guid_ask[16] = {0x4a, 0xb7, 0xb3, 0x79, 0xbb, 0xac, 0x4f, 0xe4,
                                     0xa0, 0x2f, 0x05, 0xae, 0xf3, 0x27, 0xc7, 0x82};
const uint8_t cf_snp_guid_ark[16] = {0xc0, 0xb4, 0x06, 0xa4, 0xa8, 0x03, 0x49, 0x52,
                                     0x97, 0x43, 0x3f, 0xb6, 0x01, 0x4c, 0xd0, 0xae};

/* ATTESTATION_REPORT offsets (AMD SEV-SNP ABI, ATTESTATION_REPORT table). */
#define OFF_KEY_INFO 0x048
#define OFF_REPORT_DATA 0x050

void cf_provider_evidence_free(cf_provider_evidence *e)
{
    if (e == NULL)
        return;
    free(e->cert_der);
    memset(e, 0, sizeof(*e));
}

int cf_provider_evidence_set_cert(cf_provider_evidence *e, const uint8_t *der, size_t len,
                                  bool vlek)
{
    const unsigned char *p = der;
    X509 *x;
    uint8_t *copy;
    bool exact;

    if (len == 0 || len > CF_CERT_MAX_BYTES)
        return cf_err_set(CF_E_TOO_LARGE, "certificate is %zu bytes (1..%u allowed)", len,
                          (unsigned)CF_CERT_MAX_BYTES);
    x = d2i_X509(NULL, &p, (long)len);
    exact = x != NULL && p == der + len;
    X509_free(x);
    ERR_clear_error();
    if (!exact)
        return cf_err_set(CF_E_PARSE, "certificate is not exactly one DER X.509 certificate");
    copy = malloc(len);
    if (copy == NULL)
        return CF_E_NOMEM;
    memcpy(copy, der, len);
    free(e->cert_der);
    e->cert_der = copy;
    e->cert_len = len;
    e->cert_is_vlek = vlek;
    return 0;
}

const char *cf_provider_kind_name(cf_provider_kind kind)
{
    switch (kind) {
    case CF_PROVIDER_LAUNCHER: return "launcher";
    case CF_PROVIDER_TSM: return "configfs-tsm";
    case CF_PROVIDER_SEV_GUEST: return "sev-guest";
    }
    return "unknown";
}

int cf_provider__new(cf_provider_kind kind, int fd, cf_provider **ret)
{
    cf_provider *p = calloc(1, sizeof(*p));

    if (p == NULL)
        return CF_E_NOMEM;
    if (pthread_mutex_init(&p->lock, NULL) != 0) {
        free(p);
        return CF_E_INTERNAL;
    }
    p->kind = kind;
    p->fd = fd;
    *ret = p;
    return 0;
}

void cf_provider_free(cf_provider *p)
{
    if (p == NULL)
        return;
    if (p->fd >= 0)
        close(p->fd);
    free(p->tsm_root);
    pthread_mutex_destroy(&p->lock);
    free(p);
}

cf_provider_kind cf_provider_get_kind(const cf_provider *p) { return p->kind; }

void cf_provider_tsm_set_hook(cf_provider *p, cf_tsm_hook hook, void *arg)
{
    p->hook = hook;
    p->hook_arg = arg;
}

int cf_provider_open_auto_at(const char *tsm_root, const char *sev_guest_path,
                             cf_provider **ret)
{
    struct stat st;

    /* The launcher wins when its variable is set: a process started by
     * coffer-launch must never silently talk to other hardware instead. */
    if (getenv(CF_LAUNCHER_FD_ENV) != NULL)
        return cf_provider_open_launcher_env(ret);
    if (stat(tsm_root, &st) == 0 && S_ISDIR(st.st_mode))
        return cf_provider_open_tsm(tsm_root, ret);
    if (stat(sev_guest_path, &st) == 0)
        return cf_provider_open_sev_guest(sev_guest_path, ret);
    return cf_err_set(CF_E_UNAVAILABLE,
                      "no attestation provider: %s is not set, %s and %s do not exist (run under "
                      "coffer-launch or on an SEV-SNP guest)",
                      CF_LAUNCHER_FD_ENV, tsm_root, sev_guest_path);
}

int cf_provider_open_auto(cf_provider **ret)
{
    return cf_provider_open_auto_at(CF_TSM_REPORT_ROOT, CF_SEV_GUEST_DEVICE, ret);
}

int cf_provider_get_report(cf_provider *p, const uint8_t report_data[64],
                           cf_provider_evidence *ret)
{
    int rc;

    CF_ENSURE(p != NULL && report_data != NULL && ret != NULL, CF_E_INVAL);
    if (pthread_mutex_lock(&p->lock) != 0)
        return CF_E_INTERNAL;
    switch (p->kind) {
    case CF_PROVIDER_LAUNCHER: rc = cf_provider__launcher_get(p, report_data, ret); break;
    case CF_PROVIDER_TSM: rc = cf_provider__tsm_get(p, report_data, ret); break;
    case CF_PROVIDER_SEV_GUEST: rc = cf_provider__sev_guest_get(p, report_data, ret); break;
    default: rc = CF_E_INTERNAL; break;
    }
    pthread_mutex_unlock(&p->lock);
    return rc;
}

int cf_provider__check_echo(const uint8_t *report, const uint8_t report_data[64])
{
    cf_buf b;
    const uint8_t *rd;

    cf_buf_view(&b, report, CF_SNP_REPORT_LEN);
    CF_GUARD(cf_buf_skip(&b, OFF_REPORT_DATA));
    CF_GUARD(cf_buf_get_ptr(&b, 64, &rd));
    if (memcmp(rd, report_data, 64) != 0)
        return cf_err_set(CF_E_VERIFY, "the report carries other report_data than requested "
                                       "(stale or crossed response)");
    return 0;
}

int cf_provider__finish(const uint8_t report_data[64], const uint8_t *report, size_t report_len,
                        const uint8_t *cert_table, size_t table_len, cf_provider_evidence *ret)
{
    cf_provider_evidence e;
    cf_buf b;
    uint32_t key_info, signing_key;
    size_t off, len;
    int rc = 0;

    memset(&e, 0, sizeof(e));
    if (report_len < CF_SNP_REPORT_LEN)
        return cf_err_set(CF_E_TRUNCATED, "report is %zu bytes, expected %d", report_len,
                          CF_SNP_REPORT_LEN);
    if (report_len > CF_SNP_REPORT_LEN)
        return cf_err_set(CF_E_TRAILING, "report is %zu bytes, expected %d", report_len,
                          CF_SNP_REPORT_LEN);
    CF_GUARD(cf_provider__check_echo(report, report_data));
    memcpy(e.report, report, CF_SNP_REPORT_LEN);
    if (cert_table != NULL && table_len > 0) {
        /* KEY_INFO bits 4:2 say which key signed: pick that certificate. */
        cf_buf_view(&b, report, report_len);
        CF_GUARD(cf_buf_skip(&b, OFF_KEY_INFO));
        CF_GUARD(cf_buf_get_u32le(&b, &key_info));
        signing_key = (key_info >> 2) & 7;
        if (signing_key == CF_SNP_KEY_VCEK || signing_key == CF_SNP_KEY_VLEK) {
            bool vlek = signing_key == CF_SNP_KEY_VLEK;
            rc = cf_snp_cert_table_find(cert_table, table_len,
                                        vlek ? cf_snp_guid_vlek : cf_snp_guid_vcek, &off, &len);
            if (rc == 0)
                rc = cf_provider_evidence_set_cert(&e, cert_table + off, len, vlek);
            else if (rc == CF_E_NOT_FOUND)
                rc = 0; /* valid table without our certificate: the verifier fetches it */
            if (rc < 0)
                goto out;
        }
    }
    *ret = e;
    memset(&e, 0, sizeof(e));
out:
    cf_provider_evidence_free(&e);
    return rc;
}

/* ---- certificate table ---- */

static bool all_zero(const uint8_t *p, size_t n)
{
    uint8_t acc = 0;
    for (size_t i = 0; i < n; i++)
        acc |= p[i];
    return acc == 0;
}

int cf_snp_cert_table_find(const uint8_t *table, size_t len, const uint8_t guid[16],
                           size_t *ret_off, size_t *ret_len)
{
    uint8_t guids[CF_SNP_CERT_TABLE_MAX_ENTRIES][16];
    uint32_t offs[CF_SNP_CERT_TABLE_MAX_ENTRIES], lens[CF_SNP_CERT_TABLE_MAX_ENTRIES];
    size_t n = 0, table_end;
    cf_buf b;

    CF_ENSURE(table != NULL || len == 0, CF_E_INVAL);
    cf_buf_view(&b, table, len);
    for (;;) {
        uint8_t g[16];
        uint32_t off, l;

        if (cf_buf_get(&b, g, sizeof(g)) < 0 || cf_buf_get_u32le(&b, &off) < 0 ||
            cf_buf_get_u32le(&b, &l) < 0)
            return cf_err_set(CF_E_TRUNCATED, "certificate table has no terminating entry");
        if (all_zero(g, sizeof(g)) && off == 0 && l == 0)
            break;
        if (n == CF_SNP_CERT_TABLE_MAX_ENTRIES)
            return cf_err_set(CF_E_TOO_LARGE, "certificate table has more than %d entries",
                              CF_SNP_CERT_TABLE_MAX_ENTRIES);
        if (all_zero(g, sizeof(g)))
            return cf_err_set(CF_E_PARSE, "certificate table entry %zu has a zero GUID", n);
        memcpy(guids[n], g, sizeof(g));
        offs[n] = off;
        lens[n] = l;
        n++;
    }
    table_end = (n + 1) * CF_SNP_CERT_ENTRY_LEN;
    for (size_t i = 0; i < n; i++) {
        if (offs[i] < table_end || lens[i] == 0 || lens[i] > CF_CERT_MAX_BYTES ||
            offs[i] > len || lens[i] > len - offs[i])
            return cf_err_set(CF_E_PARSE, "certificate table entry %zu (offset %u, length %u) "
                                          "lies outside the %zu-byte buffer or overlaps the table",
                              i, offs[i], lens[i], len);
        for (size_t j = 0; j < i; j++)
            if (memcmp(guids[i], guids[j], 16) == 0)
                return cf_err_set(CF_E_PARSE, "certificate table lists a GUID twice");
    }
    for (size_t i = 0; i < n; i++) {
        if (memcmp(guids[i], guid, 16) == 0) {
            *ret_off = offs[i];
            *ret_len = lens[i];
            return 0;
        }
    }
    return CF_E_NOT_FOUND;
}

int cf_snp_cert_table_build(const uint8_t (*guids)[16], const uint8_t *const *certs,
                            const size_t *cert_lens, size_t n, cf_buf *out)
{
    uint64_t off = (uint64_t)(n + 1) * CF_SNP_CERT_ENTRY_LEN;
    static const uint8_t zero[CF_SNP_CERT_ENTRY_LEN];

    CF_ENSURE(n <= CF_SNP_CERT_TABLE_MAX_ENTRIES, CF_E_TOO_LARGE);
    for (size_t i = 0; i < n; i++) {
        CF_ENSURE(cert_lens[i] <= CF_CERT_MAX_BYTES, CF_E_TOO_LARGE);
        CF_GUARD(cf_buf_put(out, guids[i], 16));
        CF_GUARD(cf_buf_put_u32le(out, (uint32_t)off));
        CF_GUARD(cf_buf_put_u32le(out, (uint32_t)cert_lens[i]));
        off += cert_lens[i];
    }
    CF_GUARD(cf_buf_put(out, zero, sizeof(zero)));
    for (size_t i = 0; i < n; i++)
        CF_GUARD(cf_buf_put(out, certs[i], cert_lens[i]));
    return 0;
}
