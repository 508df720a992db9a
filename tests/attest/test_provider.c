/*
 * Hardware providers (provider*.c): the GHCB certificate table, the launcher
 * wire format and provider (against an in-test fake launcher thread), the
 * configfs-tsm provider against a fake tree driven through the test hook (the
 * real mkdir / write inblob / read outblob, auxblob, generation / rmdir path
 * runs), auto-detection, and the sev-guest provider's failure path on a file
 * that is not the device.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "attest/provider.h"
#include "base/buf.h"
#include "base/err.h"
#include "base/limits.h"
#include "base/parse.h"
#include "test.h"

static char tmp_root[256];
static uint8_t cert_a[2048], cert_b[2048];
static size_t cert_a_len, cert_b_len;

#define PATHF(buf, ...)                                                                  \
    do {                                                                                 \
        if ((size_t)snprintf((buf), sizeof(buf), __VA_ARGS__) >= sizeof(buf))            \
            abort();                                                                     \
    } while (0)

static int rm_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void rm_rf(const char *p) { (void)nftw(p, rm_cb, 16, FTW_DEPTH | FTW_PHYS); }

/* A small self-signed P-384 certificate (DER) standing in for a VCEK/VLEK. */
static size_t make_cert(const char *cn, uint8_t *out, size_t max)
{
    EVP_PKEY *k = EVP_EC_gen("P-384");
    X509 *x = X509_new();
    unsigned char *p = out;
    int n;

    if (k == NULL || x == NULL || X509_set_version(x, X509_VERSION_3) != 1 ||
        ASN1_INTEGER_set(X509_get_serialNumber(x), 1) != 1 ||
        X509_gmtime_adj(X509_getm_notBefore(x), 0) == NULL ||
        X509_gmtime_adj(X509_getm_notAfter(x), 3600) == NULL ||
        X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
                                   (const unsigned char *)cn, -1, -1, 0) != 1 ||
        X509_set_issuer_name(x, X509_get_subject_name(x)) != 1 || X509_set_pubkey(x, k) != 1 ||
        X509_sign(x, k, EVP_sha384()) <= 0)
        abort();
    n = i2d_X509(x, NULL);
    if (n <= 0 || (size_t)n > max || i2d_X509(x, &p) != n)
        abort();
    X509_free(x);
    EVP_PKEY_free(k);
    return (size_t)n;
}

/* A stand-in report: zero except KEY_INFO (0x48) and REPORT_DATA (0x50). */
static void fake_report(uint8_t out[CF_SNP_REPORT_LEN], const uint8_t rd[64], uint32_t signing_key)
{
    uint32_t ki = signing_key << 2;
    memset(out, 0, CF_SNP_REPORT_LEN);
    out[0x48] = (uint8_t)ki;
    memcpy(out + 0x50, rd, 64);
}

static void build_table(const uint8_t (*guids)[16], const uint8_t *const *certs,
                        const size_t *lens, size_t n, cf_buf *out)
{
    if (cf_snp_cert_table_build(guids, certs, lens, n, out) < 0)
        abort();
}

/* ---- certificate table ---- */

static void test_cert_table(void)
{
    uint8_t g[3][16];
    const uint8_t *certs[3] = {cert_a, cert_b, (const uint8_t *)"ARKDATA"};
    size_t lens[3] = {cert_a_len, cert_b_len, 7};
    cf_buf t;
    size_t off, len;

    memcpy(g[0], cf_snp_guid_ask, 16);
    memcpy(g[1], cf_snp_guid_vcek, 16);
    memcpy(g[2], cf_snp_guid_ark, 16);
    cf_buf_init(&t, 65536);
    build_table((const uint8_t(*)[16])g, certs, lens, 3, &t);
    T_EQ(t.len, 4 * 24 + cert_a_len + cert_b_len + 7);
    T_OK(cf_snp_cert_table_find(t.data, t.len, cf_snp_guid_vcek, &off, &len));
    T_EQ(len, cert_b_len);
    T_MEMEQ(t.data + off, cert_b, cert_b_len);
    T_OK(cf_snp_cert_table_find(t.data, t.len, cf_snp_guid_ask, &off, &len));
    T_MEMEQ(t.data + off, cert_a, cert_a_len);
    T_ERR(cf_snp_cert_table_find(t.data, t.len, cf_snp_guid_vlek, &off, &len), CF_E_NOT_FOUND);
    /* Page padding after the certificates is normal. */
    for (int i = 0; i < 100; i++)
        T_OK(cf_buf_put_u8(&t, 0));
    T_OK(cf_snp_cert_table_find(t.data, t.len, cf_snp_guid_vcek, &off, &len));
    /* A certificate cut short by the buffer. */
    T_ERR(cf_snp_cert_table_find(t.data, 4 * 24 + cert_a_len + 10, cf_snp_guid_vcek, &off, &len),
          CF_E_PARSE);
    /* No terminator. */
    T_ERR(cf_snp_cert_table_find(t.data, 3 * 24, cf_snp_guid_vcek, &off, &len), CF_E_TRUNCATED);
    T_ERR(cf_snp_cert_table_find(t.data, 0, cf_snp_guid_vcek, &off, &len), CF_E_TRUNCATED);
    cf_buf_free(&t);

    /* Hand-made broken tables. */
    {
        uint8_t buf[256];
        cf_buf b;
        /* Offset inside the table itself. */
        cf_buf_init(&b, sizeof(buf));
        T_OK(cf_buf_put(&b, cf_snp_guid_vcek, 16));
        T_OK(cf_buf_put_u32le(&b, 24));
        T_OK(cf_buf_put_u32le(&b, 10));
        for (int i = 0; i < 24 + 10; i++)
            T_OK(cf_buf_put_u8(&b, 0));
        T_ERR(cf_snp_cert_table_find(b.data, b.len, cf_snp_guid_vcek, &off, &len), CF_E_PARSE);
        cf_buf_free(&b);
        /* Zero length. */
        cf_buf_init(&b, sizeof(buf));
        T_OK(cf_buf_put(&b, cf_snp_guid_vcek, 16));
        T_OK(cf_buf_put_u32le(&b, 48));
        T_OK(cf_buf_put_u32le(&b, 0));
        for (int i = 0; i < 24 + 8; i++)
            T_OK(cf_buf_put_u8(&b, 0));
        T_ERR(cf_snp_cert_table_find(b.data, b.len, cf_snp_guid_vcek, &off, &len), CF_E_PARSE);
        cf_buf_free(&b);
        /* Zero GUID with a non-zero offset. */
        cf_buf_init(&b, sizeof(buf));
        for (int i = 0; i < 16; i++)
            T_OK(cf_buf_put_u8(&b, 0));
        T_OK(cf_buf_put_u32le(&b, 48));
        T_OK(cf_buf_put_u32le(&b, 1));
        for (int i = 0; i < 24 + 8; i++)
            T_OK(cf_buf_put_u8(&b, 0));
        T_ERR(cf_snp_cert_table_find(b.data, b.len, cf_snp_guid_vcek, &off, &len), CF_E_PARSE);
        cf_buf_free(&b);
        /* Duplicate GUID. */
        cf_buf_init(&b, sizeof(buf));
        for (int k = 0; k < 2; k++) {
            T_OK(cf_buf_put(&b, cf_snp_guid_vcek, 16));
            T_OK(cf_buf_put_u32le(&b, 72));
            T_OK(cf_buf_put_u32le(&b, 4));
        }
        for (int i = 0; i < 24 + 4; i++)
            T_OK(cf_buf_put_u8(&b, 0));
        T_ERR(cf_snp_cert_table_find(b.data, b.len, cf_snp_guid_vcek, &off, &len), CF_E_PARSE);
        cf_buf_free(&b);
        /* An empty table (terminator only) is valid and has nothing. */
        memset(buf, 0, sizeof(buf));
        T_ERR(cf_snp_cert_table_find(buf, sizeof(buf), cf_snp_guid_vcek, &off, &len),
              CF_E_NOT_FOUND);
    }
    /* Too many entries. */
    {
        cf_buf b;
        cf_buf_init(&b, 65536);
        for (int i = 0; i <= CF_SNP_CERT_TABLE_MAX_ENTRIES; i++) {
            uint8_t gg[16];
            memset(gg, i + 1, sizeof(gg));
            T_OK(cf_buf_put(&b, gg, 16));
            T_OK(cf_buf_put_u32le(&b, 4096));
            T_OK(cf_buf_put_u32le(&b, 1));
        }
        for (int i = 0; i < 24 + 4096; i++)
            T_OK(cf_buf_put_u8(&b, 0));
        T_ERR(cf_snp_cert_table_find(b.data, b.len, cf_snp_guid_vcek, &off, &len),
              CF_E_TOO_LARGE);
        cf_buf_free(&b);
    }
    /* The GUID bytes are the text form's (63da758d-e664-4564-adc5-f4b93be8accd). */
    T_EQ(cf_snp_guid_vcek[0], 0x63);
    T_EQ(cf_snp_guid_vcek[4], 0xe6);
    T_EQ(cf_snp_guid_vcek[15], 0xcd);
    T_EQ(cf_snp_guid_vlek[0], 0xa8);
}

/* ---- launcher wire format ---- */

static void test_launcher_request(void)
{
    uint8_t rd[64], req[CF_LAUNCHER_REQUEST_LEN], back[64], bad[CF_LAUNCHER_REQUEST_LEN + 1];
    uint16_t status = 0;

    for (int i = 0; i < 64; i++)
        rd[i] = (uint8_t)(0xA0 ^ i);
    T_OK(cf_launcher_request_encode(rd, req));
    T_MEMEQ(req, "CFLQ\x00\x01\x00\x01\x00\x00\x00\x40", 12);
    T_OK(cf_launcher_request_parse(req, sizeof(req), back, &status));
    T_MEMEQ(back, rd, 64);

    memcpy(bad, req, sizeof(req));
    bad[0] = 'X';
    T_ERR(cf_launcher_request_parse(bad, sizeof(req), back, &status), CF_E_PARSE);
    T_EQ(status, CF_LAUNCHER_STATUS_MALFORMED);
    memcpy(bad, req, sizeof(req));
    bad[5] = 2;
    T_ERR(cf_launcher_request_parse(bad, sizeof(req), back, &status), CF_E_UNSUPPORTED);
    T_EQ(status, CF_LAUNCHER_STATUS_UNSUPPORTED);
    memcpy(bad, req, sizeof(req));
    bad[7] = 2;
    T_ERR(cf_launcher_request_parse(bad, sizeof(req), back, &status), CF_E_UNSUPPORTED);
    memcpy(bad, req, sizeof(req));
    bad[11] = 0x41;
    T_ERR(cf_launcher_request_parse(bad, sizeof(req), back, &status), CF_E_PARSE);
    T_EQ(status, CF_LAUNCHER_STATUS_MALFORMED);
    T_ERR(cf_launcher_request_parse(req, sizeof(req) - 1, back, &status), CF_E_TRUNCATED);
    T_ERR(cf_launcher_request_parse(req, 11, back, &status), CF_E_TRUNCATED);
    T_ERR(cf_launcher_request_parse(req, 0, back, NULL), CF_E_TRUNCATED);
    memcpy(bad, req, sizeof(req));
    bad[sizeof(req)] = 0;
    T_ERR(cf_launcher_request_parse(bad, sizeof(bad), back, &status), CF_E_TOO_LARGE);
    /* Output untouched on failure. */
    memset(back, 0x5a, sizeof(back));
    T_FAILS(cf_launcher_request_parse(bad, sizeof(bad), back, NULL));
    T_EQ(back[0], 0x5a);
}

static void test_launcher_response(void)
{
    uint8_t rd[64], report[CF_SNP_REPORT_LEN];
    cf_provider_evidence ev;
    cf_buf m, e;

    memset(rd, 7, sizeof(rd));
    fake_report(report, rd, 0);
    cf_buf_init(&m, CF_LAUNCHER_MAX_RESPONSE);
    T_OK(cf_launcher_response_encode(report, cert_a, cert_a_len, &m));
    T_EQ(m.len, 12 + 4 + CF_SNP_REPORT_LEN + 4 + cert_a_len);
    T_OK(cf_launcher_response_parse(m.data, m.len, &ev));
    T_MEMEQ(ev.report, report, CF_SNP_REPORT_LEN);
    T_EQ(ev.cert_len, cert_a_len);
    T_MEMEQ(ev.cert_der, cert_a, cert_a_len);
    cf_provider_evidence_free(&ev);

    /* Truncated, trailing, wrong lengths, bad magic/version. */
    T_ERR(cf_launcher_response_parse(m.data, m.len - 1, &ev), CF_E_TRUNCATED);
    T_ERR(cf_launcher_response_parse(m.data, 11, &ev), CF_E_TRUNCATED);
    {
        cf_buf x;
        cf_buf_init(&x, CF_LAUNCHER_MAX_RESPONSE + 1);
        T_OK(cf_buf_put(&x, m.data, m.len));
        T_OK(cf_buf_put_u8(&x, 0));
        T_ERR(cf_launcher_response_parse(x.data, x.len, &ev), CF_E_TRAILING);
        x.data[0] = 'X';
        T_ERR(cf_launcher_response_parse(x.data, m.len, &ev), CF_E_PARSE);
        x.data[0] = 'C';
        x.data[5] = 9;
        T_ERR(cf_launcher_response_parse(x.data, m.len, &ev), CF_E_UNSUPPORTED);
        x.data[5] = 1;
        x.data[15] ^= 1; /* report_len 1185 */
        T_ERR(cf_launcher_response_parse(x.data, m.len, &ev), CF_E_PARSE);
        x.data[15] ^= 1;
        x.data[16 + CF_SNP_REPORT_LEN + 4] ^= 0xff; /* cert is no longer DER */
        T_ERR(cf_launcher_response_parse(x.data, m.len, &ev), CF_E_PARSE);
        cf_buf_free(&x);
    }
    T_ERR(cf_launcher_response_encode(report, cert_a, 0, &m), CF_E_TOO_LARGE);

    /* Error answers: the reason reaches the caller, sanitised. */
    cf_buf_init(&e, 1024);
    T_OK(cf_launcher_error_encode(CF_LAUNCHER_STATUS_MALFORMED, "bad\x01thing", &e));
    T_ERR(cf_launcher_response_parse(e.data, e.len, &ev), CF_E_UNAVAILABLE);
    T_ASSERT(strstr(cf_err_detail(CF_E_UNAVAILABLE), "bad?thing") != NULL);
    T_ERR(cf_launcher_error_encode(CF_LAUNCHER_STATUS_OK, "x", &e), CF_E_INVAL);
    /* A reason with a control byte is refused by the parser. */
    e.data[12 + 3] = 0x01;
    T_ERR(cf_launcher_response_parse(e.data, e.len, &ev), CF_E_PARSE);
    cf_buf_free(&e);
    cf_buf_free(&m);
}

/* ---- launcher provider over a socketpair ---- */

typedef enum { FAKE_OK, FAKE_WRONG_ECHO, FAKE_REFUSE, FAKE_CLOSE, FAKE_GARBAGE } fake_mode;

typedef struct {
    int fd;
    fake_mode mode;
} fake_launcher;

static void *fake_launcher_main(void *arg)
{
    fake_launcher *f = arg;
    uint8_t req[256], rd[64], report[CF_SNP_REPORT_LEN];
    cf_buf m;
    ssize_t n = recv(f->fd, req, sizeof(req), 0);

    cf_buf_init(&m, CF_LAUNCHER_MAX_RESPONSE);
    if (n <= 0 || cf_launcher_request_parse(req, (size_t)n, rd, NULL) < 0)
        goto out;
    if (f->mode == FAKE_WRONG_ECHO)
        rd[0] ^= 1;
    fake_report(report, rd, 0);
    switch (f->mode) {
    case FAKE_OK:
    case FAKE_WRONG_ECHO:
        if (cf_launcher_response_encode(report, cert_a, cert_a_len, &m) < 0)
            goto out;
        break;
    case FAKE_REFUSE:
        if (cf_launcher_error_encode(CF_LAUNCHER_STATUS_INTERNAL, "no key", &m) < 0)
            goto out;
        break;
    case FAKE_GARBAGE:
        if (cf_buf_put(&m, "CFLR", 4) < 0)
            goto out;
        break;
    case FAKE_CLOSE: goto out;
    }
    (void)send(f->fd, m.data, m.len, MSG_NOSIGNAL);
out:
    cf_buf_free(&m);
    if (f->mode == FAKE_CLOSE)
        shutdown(f->fd, SHUT_RDWR);
    return NULL;
}

static int get_via_fake(fake_mode mode, cf_provider_evidence *ev)
{
    int sv[2];
    cf_provider *p = NULL;
    fake_launcher f;
    pthread_t th;
    uint8_t rd[64];
    int rc;

    memset(rd, 0x33, sizeof(rd));
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0)
        abort();
    f.fd = sv[1];
    f.mode = mode;
    if (pthread_create(&th, NULL, fake_launcher_main, &f) != 0)
        abort();
    rc = cf_provider_open_launcher_fd(sv[0], &p);
    if (rc == 0)
        rc = cf_provider_get_report(p, rd, ev);
    else
        close(sv[0]);
    pthread_join(th, NULL);
    cf_provider_free(p);
    close(sv[1]);
    return rc;
}

static void test_launcher_provider(void)
{
    cf_provider_evidence ev;
    int sv[2], pfd[2], flags;
    cf_provider *p = NULL;

    T_OK(get_via_fake(FAKE_OK, &ev));
    T_EQ(ev.report[0x50], 0x33);
    T_EQ(ev.cert_len, cert_a_len);
    T_ASSERT(!ev.cert_is_vlek);
    cf_provider_evidence_free(&ev);
    memset(&ev, 0x77, sizeof(ev));
    T_ERR(get_via_fake(FAKE_WRONG_ECHO, &ev), CF_E_VERIFY);
    T_EQ(ev.report[0], 0x77); /* not written on failure */
    T_ERR(get_via_fake(FAKE_REFUSE, &ev), CF_E_UNAVAILABLE);
    T_ASSERT(strstr(cf_err_detail(CF_E_UNAVAILABLE), "no key") != NULL);
    T_ERR(get_via_fake(FAKE_CLOSE, &ev), CF_E_UNAVAILABLE);
    T_ERR(get_via_fake(FAKE_GARBAGE, &ev), CF_E_TRUNCATED);

    /* Only an AF_UNIX SOCK_SEQPACKET socket is accepted; it becomes close-on-exec. */
    T_OK(pipe(pfd));
    T_ERR(cf_provider_open_launcher_fd(pfd[0], &p), CF_E_CONFIG);
    close(pfd[0]);
    close(pfd[1]);
    T_ERR(cf_provider_open_launcher_fd(pfd[0], &p), CF_E_CONFIG); /* closed */
    T_ERR(cf_provider_open_launcher_fd(-1, &p), CF_E_CONFIG);
    T_OK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
    T_ERR(cf_provider_open_launcher_fd(sv[0], &p), CF_E_CONFIG);
    close(sv[0]);
    close(sv[1]);
    T_OK(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv));
    T_OK(cf_provider_open_launcher_fd(sv[0], &p));
    flags = fcntl(sv[0], F_GETFD);
    T_ASSERT(flags >= 0 && (flags & FD_CLOEXEC));
    T_EQ(cf_provider_get_kind(p), CF_PROVIDER_LAUNCHER);
    T_STREQ(cf_provider_kind_name(cf_provider_get_kind(p)), "launcher");
    cf_provider_free(p); /* closes sv[0] */
    close(sv[1]);
}

/* ---- configfs-tsm against a fake tree ---- */

typedef struct {
    const char *provider;   /* content of "provider" */
    uint32_t signing_key;   /* KEY_INFO signing key in the report */
    size_t outblob_len;     /* CF_SNP_REPORT_LEN unless testing errors */
    bool flip_echo;         /* report carries other report_data */
    const uint8_t *aux;     /* auxblob contents (NULL: no auxblob file) */
    size_t aux_len;
    int interfere;          /* times to bump generation behind the provider's back */
    int fail_at;            /* hook point that returns an error (0: none) */
    int calls[5];
    char entry[512];
} tsm_fake;

static void put_file(const char *dir, const char *name, const void *p, size_t n)
{
    char path[1024];
    FILE *f;

    PATHF(path, "%s/%s", dir, name);
    f = fopen(path, "wb");
    if (f == NULL || (n > 0 && fwrite(p, 1, n, f) != n) || fclose(f) != 0)
        abort();
}

static uint64_t get_gen(const char *dir)
{
    char path[1024];
    size_t n;
    uint8_t *t;
    uint64_t g;

    PATHF(path, "%s/generation", dir);
    t = t_read_file(path, &n);
    if (n == 0 || t[n - 1] != '\n')
        abort();
    t[n - 1] = 0;
    if (cf_parse_u64((char *)t, UINT64_MAX, &g) < 0)
        abort();
    free(t);
    return g;
}

static void set_gen(const char *dir, uint64_t g)
{
    char s[32];
    int n = snprintf(s, sizeof(s), "%llu\n", (unsigned long long)g);
    put_file(dir, "generation", s, (size_t)n);
}

/* Plays the kernel's part. */
static int tsm_hook(cf_tsm_hook_point point, const char *entry, void *arg)
{
    tsm_fake *f = arg;
    static const char *const files[] = {"inblob", "outblob", "auxblob", "provider",
                                        "generation"};

    f->calls[point]++;
    if (f->fail_at == (int)point)
        return cf_err_set(CF_E_IO, "injected failure");
    switch (point) {
    case CF_TSM_HOOK_CREATED:
        snprintf(f->entry, sizeof(f->entry), "%s", entry);
        put_file(entry, "inblob", "", 0);
        put_file(entry, "provider", f->provider, strlen(f->provider));
        set_gen(entry, 0);
        break;
    case CF_TSM_HOOK_INBLOB_WRITTEN: {
        char path[1024];
        size_t n;
        uint8_t *in, report[CF_SNP_REPORT_LEN + 16];
        PATHF(path, "%s/inblob", entry);
        in = t_read_file(path, &n);
        if (n != 64)
            abort();
        if (f->flip_echo)
            in[5] ^= 0x80;
        memset(report, 0, sizeof(report));
        fake_report(report, in, f->signing_key);
        free(in);
        put_file(entry, "outblob", report, f->outblob_len);
        if (f->aux != NULL)
            put_file(entry, "auxblob", f->aux, f->aux_len);
        set_gen(entry, get_gen(entry) + 1); /* the kernel counts the inblob write */
        break;
    }
    case CF_TSM_HOOK_BLOBS_READ:
        if (f->interfere > 0) {
            f->interfere--;
            set_gen(entry, get_gen(entry) + 1);
        }
        break;
    case CF_TSM_HOOK_REMOVING:
        /* configfs removes attributes with the directory; a plain one needs help. */
        for (size_t i = 0; i < CF_ARRAY_LEN(files); i++) {
            char path[1024];
            PATHF(path, "%s/%s", entry, files[i]);
            (void)unlink(path);
        }
        break;
    }
    return 0;
}

static bool dir_empty(const char *d)
{
    DIR *dd = opendir(d);
    struct dirent *e;
    int n = 0;

    if (dd == NULL)
        return false;
    while ((e = readdir(dd)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            n++;
    closedir(dd);
    return n == 0;
}

static int tsm_get(const char *root, tsm_fake *f, cf_provider_evidence *ev)
{
    cf_provider *p = NULL;
    uint8_t rd[64];
    int rc;

    for (int i = 0; i < 64; i++)
        rd[i] = (uint8_t)(i * 3 + 1);
    rc = cf_provider_open_tsm(root, &p);
    if (rc < 0)
        return rc;
    cf_provider_tsm_set_hook(p, tsm_hook, f);
    rc = cf_provider_get_report(p, rd, ev);
    cf_provider_free(p);
    if (rc == 0 && memcmp(ev->report + 0x50, rd, 64) != 0)
        abort();
    return rc;
}

static void tsm_defaults(tsm_fake *f)
{
    memset(f, 0, sizeof(*f));
    f->provider = "sev_guest\n";
    f->outblob_len = CF_SNP_REPORT_LEN;
}

static void test_tsm_provider(void)
{
    char root[512];
    tsm_fake f;
    cf_provider_evidence ev;
    cf_buf table;
    uint8_t g[3][16];
    const uint8_t *certs[3] = {cert_a, cert_b, cert_a};
    size_t lens[3] = {cert_a_len, cert_b_len, cert_a_len};
    struct stat st;

    PATHF(root, "%s/tsm/report", tmp_root);
    PATHF(f.entry, "%s/tsm", tmp_root);
    T_OK(mkdir(f.entry, 0755));
    T_OK(mkdir(root, 0755));
    memcpy(g[0], cf_snp_guid_ask, 16);
    memcpy(g[1], cf_snp_guid_vcek, 16);
    memcpy(g[2], cf_snp_guid_ark, 16);
    cf_buf_init(&table, 65536);
    build_table((const uint8_t(*)[16])g, certs, lens, 3, &table);
    for (int i = 0; i < 200; i++) /* page padding */
        T_OK(cf_buf_put_u8(&table, 0));

    /* Happy path: VCEK picked from the certificate table, entry removed. */
    tsm_defaults(&f);
    f.aux = table.data;
    f.aux_len = table.len;
    T_OK(tsm_get(root, &f, &ev));
    T_EQ(ev.cert_len, cert_b_len);
    T_MEMEQ(ev.cert_der, cert_b, cert_b_len);
    T_ASSERT(!ev.cert_is_vlek);
    cf_provider_evidence_free(&ev);
    T_EQ(f.calls[CF_TSM_HOOK_CREATED], 1);
    T_EQ(f.calls[CF_TSM_HOOK_INBLOB_WRITTEN], 1);
    T_EQ(f.calls[CF_TSM_HOOK_BLOBS_READ], 1);
    T_EQ(f.calls[CF_TSM_HOOK_REMOVING], 1);
    T_ASSERT(strncmp(f.entry, root, strlen(root)) == 0);
    T_ASSERT(stat(f.entry, &st) != 0 && errno == ENOENT);
    T_ASSERT(dir_empty(root));

    /* No auxblob: evidence without a certificate. */
    tsm_defaults(&f);
    T_OK(tsm_get(root, &f, &ev));
    T_ASSERT(ev.cert_der == NULL && ev.cert_len == 0);
    cf_provider_evidence_free(&ev);

    /* Report signed by a VLEK: the VLEK entry is used. */
    {
        cf_buf t2;
        uint8_t g2[2][16];
        const uint8_t *c2[2] = {cert_a, cert_b};
        size_t l2[2] = {cert_a_len, cert_b_len};
        memcpy(g2[0], cf_snp_guid_vcek, 16);
        memcpy(g2[1], cf_snp_guid_vlek, 16);
        cf_buf_init(&t2, 65536);
        build_table((const uint8_t(*)[16])g2, c2, l2, 2, &t2);
        tsm_defaults(&f);
        f.signing_key = 1;
        f.aux = t2.data;
        f.aux_len = t2.len;
        T_OK(tsm_get(root, &f, &ev));
        T_ASSERT(ev.cert_is_vlek);
        T_MEMEQ(ev.cert_der, cert_b, cert_b_len);
        cf_provider_evidence_free(&ev);
        cf_buf_free(&t2);
    }

    /* A concurrent writer once: retried, then consistent. */
    tsm_defaults(&f);
    f.interfere = 1;
    T_OK(tsm_get(root, &f, &ev));
    T_EQ(f.calls[CF_TSM_HOOK_INBLOB_WRITTEN], 2);
    cf_provider_evidence_free(&ev);
    /* ... every time: refused. */
    tsm_defaults(&f);
    f.interfere = 1000;
    T_ERR(tsm_get(root, &f, &ev), CF_E_CONFLICT);
    T_EQ(f.calls[CF_TSM_HOOK_INBLOB_WRITTEN], CF_TSM_MAX_ATTEMPTS);
    T_ASSERT(dir_empty(root));

    /* Short and long outblobs, a crossed answer. */
    tsm_defaults(&f);
    f.outblob_len = 100;
    T_ERR(tsm_get(root, &f, &ev), CF_E_TRUNCATED);
    T_ASSERT(strstr(cf_err_detail(CF_E_TRUNCATED), "100 bytes") != NULL);
    tsm_defaults(&f);
    f.outblob_len = CF_SNP_REPORT_LEN + 1;
    T_ERR(tsm_get(root, &f, &ev), CF_E_TRAILING);
    tsm_defaults(&f);
    f.flip_echo = true;
    T_ERR(tsm_get(root, &f, &ev), CF_E_VERIFY);
    T_ASSERT(dir_empty(root));

    /* Malformed auxblobs. */
    tsm_defaults(&f);
    f.aux = table.data;
    f.aux_len = 30; /* no terminator */
    T_ERR(tsm_get(root, &f, &ev), CF_E_TRUNCATED);
    {
        uint8_t bad[2048];
        memcpy(bad, table.data, 4 * 24);
        /* The VCEK entry's length (u32 LE at 24 + 20) runs past the buffer. */
        bad[24 + 20] = 0xff;
        bad[24 + 21] = 0xff;
        tsm_defaults(&f);
        f.aux = bad;
        f.aux_len = sizeof(bad);
        memset(bad + 4 * 24, 0, sizeof(bad) - 4 * 24);
        T_ERR(tsm_get(root, &f, &ev), CF_E_PARSE);
    }
    {
        /* The VCEK entry holds bytes that are not a DER certificate. */
        uint8_t junk[64];
        uint8_t gj[1][16];
        const uint8_t *cj[1] = {junk};
        size_t lj[1] = {sizeof(junk)};
        cf_buf t3;
        memset(junk, 0x30, sizeof(junk));
        memcpy(gj[0], cf_snp_guid_vcek, 16);
        cf_buf_init(&t3, 4096);
        build_table((const uint8_t(*)[16])gj, cj, lj, 1, &t3);
        tsm_defaults(&f);
        f.aux = t3.data;
        f.aux_len = t3.len;
        T_ERR(tsm_get(root, &f, &ev), CF_E_PARSE);
        cf_buf_free(&t3);
    }

    /* Not an SEV-SNP guest's TSM. */
    tsm_defaults(&f);
    f.provider = "tdx_guest\n";
    T_ERR(tsm_get(root, &f, &ev), CF_E_UNSUPPORTED);
    T_ASSERT(strstr(cf_err_detail(CF_E_UNSUPPORTED), "tdx_guest") != NULL);
    T_EQ(f.calls[CF_TSM_HOOK_INBLOB_WRITTEN], 0);

    /* A failure in the middle still removes the entry. */
    tsm_defaults(&f);
    f.fail_at = CF_TSM_HOOK_INBLOB_WRITTEN;
    T_ERR(tsm_get(root, &f, &ev), CF_E_IO);
    T_EQ(f.calls[CF_TSM_HOOK_REMOVING], 1);
    T_ASSERT(dir_empty(root));

    /* A tree without the kernel's files: opening inblob fails cleanly. */
    {
        cf_provider *p = NULL;
        uint8_t rd[64] = {0};
        T_OK(cf_provider_open_tsm(root, &p));
        T_ERR(cf_provider_get_report(p, rd, &ev), CF_E_UNAVAILABLE);
        cf_provider_free(p);
        T_ASSERT(dir_empty(root));
    }
    {
        char missing[600];
        cf_provider *p = NULL;
        PATHF(missing, "%s/nope", tmp_root);
        T_ERR(cf_provider_open_tsm(missing, &p), CF_E_UNAVAILABLE);
    }
    cf_buf_free(&table);
}

/* ---- auto-detection and sev-guest ---- */

static void test_auto_detect(void)
{
    char tsm[512], dev[512], none[512];
    cf_provider *p = NULL;
    cf_provider_evidence ev;
    uint8_t rd[64] = {0};
    int sv[2];
    char num[16];

    PATHF(tsm, "%s/tsm/report", tmp_root); /* made by test_tsm_provider */
    PATHF(dev, "%s/sev-guest", tmp_root);
    PATHF(none, "%s/none", tmp_root);
    {
        FILE *f = fopen(dev, "w");
        T_ASSERT(f != NULL && fclose(f) == 0);
    }
    T_OK(unsetenv(CF_LAUNCHER_FD_ENV));

    T_OK(cf_provider_open_auto_at(tsm, dev, &p));
    T_EQ(cf_provider_get_kind(p), CF_PROVIDER_TSM);
    cf_provider_free(p);
    T_OK(cf_provider_open_auto_at(none, dev, &p));
    T_EQ(cf_provider_get_kind(p), CF_PROVIDER_SEV_GUEST);
    /* Not the device: the ioctl fails and says so. */
    T_ERR(cf_provider_get_report(p, rd, &ev), CF_E_UNAVAILABLE);
    cf_provider_free(p);
    T_ERR(cf_provider_open_auto_at(none, none, &p), CF_E_UNAVAILABLE);
    T_ASSERT(strstr(cf_err_detail(CF_E_UNAVAILABLE), CF_LAUNCHER_FD_ENV) != NULL);

    /* The launcher variable wins, and a bad value never falls through. */
    T_OK(setenv(CF_LAUNCHER_FD_ENV, "abc", 1));
    T_ERR(cf_provider_open_auto_at(tsm, dev, &p), CF_E_CONFIG);
    T_OK(setenv(CF_LAUNCHER_FD_ENV, "-1", 1));
    T_ERR(cf_provider_open_auto_at(tsm, dev, &p), CF_E_CONFIG);
    T_OK(setenv(CF_LAUNCHER_FD_ENV, "0", 1)); /* stdin: not a seqpacket socket */
    T_ERR(cf_provider_open_auto_at(tsm, dev, &p), CF_E_CONFIG);
    T_OK(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv));
    snprintf(num, sizeof(num), "%d", sv[0]);
    T_OK(setenv(CF_LAUNCHER_FD_ENV, num, 1));
    T_OK(cf_provider_open_auto_at(tsm, dev, &p));
    T_EQ(cf_provider_get_kind(p), CF_PROVIDER_LAUNCHER);
    cf_provider_free(p);
    close(sv[1]);
    T_OK(unsetenv(CF_LAUNCHER_FD_ENV));
    T_ERR(cf_provider_open_launcher_env(&p), CF_E_CONFIG);
}

int main(void)
{
    const char *tmp = getenv("TMPDIR");

    if ((size_t)snprintf(tmp_root, sizeof(tmp_root), "%s/coffer-test-provider-XXXXXX",
                         tmp != NULL && tmp[0] != '\0' ? tmp : "/tmp") >= sizeof(tmp_root) ||
        mkdtemp(tmp_root) == NULL)
        abort();
    cert_a_len = make_cert("cert A", cert_a, sizeof(cert_a));
    cert_b_len = make_cert("cert B", cert_b, sizeof(cert_b));
    T_RUN(test_cert_table);
    T_RUN(test_launcher_request);
    T_RUN(test_launcher_response);
    T_RUN(test_launcher_provider);
    T_RUN(test_tsm_provider);
    T_RUN(test_auto_detect);
    rm_rf(tmp_root);
    return t_done();
}
