/*
 * Simulated secure processor: the chain (sim_ca.c), reports signed in process,
 * and coffer-launch end to end with the sim_helper program asking for reports
 * through the launcher provider. One chain is created per run (RSA-4096 key
 * generation takes seconds) and reused by every case.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdint.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "attest/measure.h"
#include "attest/provider.h"
#include "attest/sim.h"
#include "attest/snp.h"
#include "base/buf.h"
#include "base/err.h"
#include "base/json.h"
#include "base/parse.h"
#include "test.h"

/* argv strings: execv takes char *const[], the literals are const. */
#define MUT(s) ((char *)(uintptr_t)(s))

static char tmp_root[256];
static char state_dir[512];
static char bundle_dir[512];
static cf_sim *g_sim;
static int out_seq;

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

static void write_file(const char *path, const char *text, mode_t mode)
{
    FILE *f = fopen(path, "wb");
    if (f == NULL || fputs(text, f) < 0 || fclose(f) != 0 || chmod(path, mode) != 0)
        abort();
}

/* Whole file or NULL if it does not exist. */
static uint8_t *read_opt(const char *path, size_t *len)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return NULL;
    return t_read_file(path, len);
}

static uint8_t *read_step(const char *outdir, int step, const char *ext, size_t *len)
{
    char p[1024];
    PATHF(p, "%s/%d.%s", outdir, step, ext);
    return read_opt(p, len);
}

static void new_outdir(char *out, size_t n)
{
    if ((size_t)snprintf(out, n, "%s/out-%d", tmp_root, out_seq++) >= n || mkdir(out, 0700) != 0)
        abort();
}

static int decode_status(int st)
{
    if (WIFEXITED(st))
        return WEXITSTATUS(st);
    if (WIFSIGNALED(st))
        return 128 + WTERMSIG(st);
    return -1;
}

/* Starts argv with stdout to stdout_path (or inherited); returns the pid. */
static pid_t spawn(char *const argv[], const char *stdout_path)
{
    pid_t pid = fork();
    if (pid < 0)
        abort();
    if (pid == 0) {
        if (stdout_path != NULL) {
            int fd = open(stdout_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
            if (fd < 0 || dup2(fd, 1) < 0)
                _exit(120);
        }
        execv(argv[0], argv);
        _exit(121);
    }
    return pid;
}

static int run(char *const argv[], const char *stdout_path)
{
    int st;
    pid_t pid = spawn(argv, stdout_path);
    if (waitpid(pid, &st, 0) != pid)
        abort();
    return decode_status(st);
}

/* coffer-launch with the test state and bundle, extra flags, then sim_helper
 * OUTDIR steps... Returns the launcher's exit status. */
static int launch(const char *const *flags, const char *outdir, const char *const *steps)
{
    char *argv[64];
    int n = 0;

    argv[n++] = MUT(COFFER_LAUNCH_BIN);
    argv[n++] = MUT("--log-level");
    argv[n++] = MUT("warn");
    argv[n++] = MUT("--state");
    argv[n++] = state_dir;
    argv[n++] = MUT("--bundle");
    argv[n++] = bundle_dir;
    for (; flags != NULL && *flags != NULL; flags++)
        argv[n++] = MUT(*flags);
    argv[n++] = MUT("--");
    argv[n++] = MUT(SIM_HELPER_BIN);
    argv[n++] = MUT(outdir);
    for (; steps != NULL && *steps != NULL; steps++)
        argv[n++] = MUT(*steps);
    argv[n] = NULL;
    return run(argv, NULL);
}

static void rd_pattern(uint8_t rd[64], uint8_t seed)
{
    for (int i = 0; i < 64; i++)
        rd[i] = (uint8_t)(seed + i * 7);
}

static char *report_step(const uint8_t rd[64])
{
    static char bufs[4][7 + 129];
    static int k;
    char *s = bufs[k++ % 4];
    memcpy(s, "report:", 7);
    cf_hex_encode(rd, 64, s + 7);
    return s;
}

static X509 *der_to_x509(const uint8_t *der, size_t len)
{
    const unsigned char *p = der;
    return d2i_X509(NULL, &p, (long)len);
}

/* ---------------------------------------------------------------------- */

static void test_chain_create_and_reload(void)
{
    cf_sim_tcb tcb;
    cf_sim *again = NULL;
    char p[1024];
    struct stat st;
    cf_buf pem;
    cf_snp_roots *roots = NULL;
    time_t t0 = time(NULL);

    cf_sim_tcb_default(&tcb);
    T_OK(cf_sim_open(state_dir, &tcb, &g_sim));
    fprintf(stderr, "  chain created in %ld s (2 x RSA-%d)\n", (long)(time(NULL) - t0),
            CF_SIM_RSA_BITS);
    T_ASSERT(cf_sim_created_chain(g_sim));
    T_ASSERT(cf_sim_issued_vcek(g_sim));

    PATHF(p, "%s/sim", state_dir);
    T_OK(stat(p, &st));
    T_EQ(st.st_mode & 0777, 0700);
    PATHF(p, "%s/sim/ask.key", state_dir);
    T_OK(stat(p, &st));
    T_EQ(st.st_mode & 0777, 0600);
    PATHF(p, "%s/sim/vcek-%016llx/vcek.key", state_dir,
          (unsigned long long)cf_sim_tcb_raw(&tcb));
    T_OK(stat(p, &st));
    T_EQ(st.st_mode & 0777, 0600);
    PATHF(p, "%s/sim/ark.key", state_dir);
    T_ASSERT(stat(p, &st) != 0); /* the ARK private key is not kept */

    /* Names the verifier relies on; ARK self-signed. */
    T_ASSERT(X509_check_issued(cf_sim_ark(g_sim), cf_sim_ark(g_sim)) == X509_V_OK);
    {
        char cn[64];
        T_ASSERT(X509_NAME_get_text_by_NID(X509_get_subject_name(cf_sim_ark(g_sim)),
                                           NID_commonName, cn, sizeof(cn)) > 0);
        T_STREQ(cn, "Coffer Simulated ARK");
        T_ASSERT(X509_NAME_get_text_by_NID(X509_get_subject_name(cf_sim_ask(g_sim)),
                                           NID_commonName, cn, sizeof(cn)) > 0);
        T_STREQ(cn, "Coffer Simulated ASK");
    }
    T_EQ(EVP_PKEY_get_bits(X509_get0_pubkey(cf_sim_ark(g_sim))), 4096);

    /* Reload: same chain, nothing regenerated. */
    T_OK(cf_sim_open(state_dir, &tcb, &again));
    T_ASSERT(!cf_sim_created_chain(again));
    T_ASSERT(!cf_sim_issued_vcek(again));
    T_EQ(X509_cmp(cf_sim_ark(g_sim), cf_sim_ark(again)), 0);
    T_EQ(X509_cmp(cf_sim_vcek(g_sim), cf_sim_vcek(again)), 0);
    T_MEMEQ(cf_sim_chip_id(g_sim), cf_sim_chip_id(again), CF_SIM_CHIP_ID_LEN);
    cf_sim_free(again);

    /* The PEM a manifest pins is accepted as a Milan VCEK root (PSS checks included). */
    cf_buf_init(&pem, 65536);
    T_OK(cf_sim_chain_pem(g_sim, &pem));
    T_OK(cf_snp_roots_new(&roots));
    T_OK(cf_snp_roots_add_pem(roots, CF_SNP_PRODUCT_MILAN, false, (const char *)pem.data,
                              pem.len));
    cf_snp_roots_free(roots);
    cf_buf_free(&pem);
}

/* Damage the state one way at a time: each is refused, never regenerated. */
static void test_state_damage_refused(void)
{
    cf_sim_tcb tcb;
    cf_sim *s = NULL;
    char sim[1024], key[1024], chip[1024], moved[1024];
    size_t n;
    uint8_t *orig;

    T_ASSERT(g_sim != NULL);
    cf_sim_tcb_default(&tcb);
    PATHF(sim, "%s/sim", state_dir);
    PATHF(key, "%s/sim/vcek-%016llx/vcek.key", state_dir,
          (unsigned long long)cf_sim_tcb_raw(&tcb));
    PATHF(chip, "%s/sim/chip_id", state_dir);
    PATHF(moved, "%s/sim/chip_id.moved", state_dir);

    T_OK(chmod(key, 0644));
    T_ERR(cf_sim_open(state_dir, &tcb, &s), CF_E_CONFIG);
    T_ASSERT(strstr(cf_err_detail(CF_E_CONFIG), "0600") != NULL);
    T_OK(chmod(key, 0600));

    PATHF(key, "%s/sim/ask.key", state_dir);
    T_OK(chmod(key, 0640));
    T_ERR(cf_sim_open(state_dir, &tcb, &s), CF_E_CONFIG);
    T_OK(chmod(key, 0600));

    T_OK(chmod(sim, 0755));
    T_ERR(cf_sim_open(state_dir, &tcb, &s), CF_E_CONFIG);
    T_OK(chmod(sim, 0700));

    T_OK(rename(chip, moved));
    T_ERR(cf_sim_open(state_dir, &tcb, &s), CF_E_CONFIG);
    T_ASSERT(strstr(cf_err_detail(CF_E_CONFIG), "never regenerated") != NULL);
    T_OK(rename(moved, chip));

    /* Another chip id: the VCEK's hwID no longer matches. */
    orig = t_read_file(chip, &n);
    write_file(chip, "00000000000000000000000000000000000000000000000000000000000000000000000000"
                     "000000000000000000000000000000000000000000000000000000\n",
               0644);
    T_ERR(cf_sim_open(state_dir, &tcb, &s), CF_E_CONFIG);
    {
        FILE *f = fopen(chip, "wb");
        T_ASSERT(f != NULL && fwrite(orig, 1, n, f) == n && fclose(f) == 0);
    }
    free(orig);

    /* Intact again: loads, and it is still the same chain. */
    T_OK(cf_sim_open(state_dir, &tcb, &s));
    T_EQ(X509_cmp(cf_sim_ark(s), cf_sim_ark(g_sim)), 0);
    cf_sim_free(s);
}

static void test_tcb_parse(void)
{
    cf_sim_tcb t;

    cf_sim_tcb_default(&t);
    T_EQ(t.bootloader, 4);
    T_EQ(t.tee, 0);
    T_EQ(t.snp, 22);
    T_EQ(t.microcode, 213);
    /* Milan TCB_VERSION: byte 0 bl, 1 tee, 6 snp, 7 ucode (little-endian u64). */
    T_ASSERT(cf_sim_tcb_raw(&t) == 0xd516000000000004ull);
    T_OK(cf_sim_tcb_parse("snp=8,bl=3", &t));
    T_EQ(t.snp, 8);
    T_EQ(t.bootloader, 3);
    T_EQ(t.microcode, 213);
    T_OK(cf_sim_tcb_parse("bl=255,tee=1,snp=0,ucode=0", &t));
    T_EQ(t.bootloader, 255);
    T_FAILS(cf_sim_tcb_parse("bl=256", &t));
    T_EQ(t.bootloader, 255); /* unchanged on failure */
    T_FAILS(cf_sim_tcb_parse("bl=1,bl=2", &t));
    T_FAILS(cf_sim_tcb_parse("fmc=1", &t));
    T_FAILS(cf_sim_tcb_parse("bl", &t));
    T_FAILS(cf_sim_tcb_parse("", &t));
    T_FAILS(cf_sim_tcb_parse("bl=1,", &t));
    T_FAILS(cf_sim_tcb_parse("bl=-1", &t));
    T_FAILS(cf_sim_tcb_parse("bl=01", &t));
}

/* Checks a report + VCEK the way a verifier would; returns the parsed report. */
static void check_evidence(const uint8_t *raw, size_t raw_len, const uint8_t *der, size_t der_len,
                           const uint8_t rd[64], cf_snp_report *ret)
{
    cf_snp_report r;
    cf_snp_cert_ext ext;
    cf_snp_tcb rep_tcb;
    cf_snp_roots *sim_roots = NULL, *amd = NULL;
    X509 *vcek = NULL;
    cf_buf pem;
    uint8_t fpr[48], ark_fpr[48];
    unsigned int fl = 0;
    int rc;

    T_EQ(raw_len, CF_SNP_REPORT_LEN);
    T_OK(cf_snp_report_parse(raw, raw_len, &r));
    vcek = der_to_x509(der, der_len);
    T_ASSERT(vcek != NULL);
    T_OK(cf_snp_report_verify_signature(raw, vcek));

    /* Chains to the simulated root ... */
    cf_buf_init(&pem, 65536);
    T_OK(cf_sim_chain_pem(g_sim, &pem));
    T_OK(cf_snp_roots_new(&sim_roots));
    T_OK(cf_snp_roots_add_pem(sim_roots, CF_SNP_PRODUCT_MILAN, false, (const char *)pem.data,
                              pem.len));
    cf_buf_free(&pem);
    T_OK(cf_snp_chain_verify(sim_roots, vcek, CF_SNP_PRODUCT_MILAN, false, time(NULL), NULL,
                             fpr));
    T_ASSERT(X509_digest(cf_sim_ark(g_sim), EVP_sha384(), ark_fpr, &fl) == 1 && fl == 48);
    T_MEMEQ(fpr, ark_fpr, 48);
    cf_snp_roots_free(sim_roots);
    /* ... and not to AMD's. */
    T_OK(cf_snp_roots_amd(&amd));
    rc = cf_snp_chain_verify(amd, vcek, CF_SNP_PRODUCT_MILAN, false, time(NULL), NULL, NULL);
    T_ASSERT_MSG(rc < 0, "simulated VCEK chained to the AMD roots");
    cf_snp_roots_free(amd);

    /* VCEK extensions match what the report claims. */
    T_OK(cf_snp_cert_parse_ext(vcek, &ext));
    T_EQ(ext.product, CF_SNP_PRODUCT_MILAN);
    T_STREQ(ext.product_name, "Milan-B0");
    T_ASSERT(!ext.is_vlek);
    T_EQ(ext.hwid_len, 64);
    T_MEMEQ(ext.hwid, r.chip_id, 64);
    T_MEMEQ(ext.hwid, cf_sim_chip_id(g_sim), 64);
    cf_snp_tcb_decode(r.reported_tcb_raw, CF_SNP_PRODUCT_MILAN, &rep_tcb);
    T_ASSERT(cf_snp_tcb_eq(&ext.tcb, &rep_tcb, CF_SNP_PRODUCT_MILAN));
    X509_free(vcek);

    /* Fixed fields of a simulated Milan v3 report. */
    T_EQ(r.version, 3);
    T_EQ(r.signature_algo, CF_SNP_SIG_ALGO_ECDSA_P384_SHA384);
    T_EQ(cf_snp_report_signing_key(&r), CF_SNP_KEY_VCEK);
    T_EQ(cf_snp_report_product(&r), CF_SNP_PRODUCT_MILAN);
    T_ASSERT(r.policy & CF_SNP_POLICY_RESERVED_1);
    T_ASSERT(r.policy & CF_SNP_POLICY_SMT);
    T_ASSERT(r.current_tcb_raw == r.reported_tcb_raw && r.launch_tcb_raw == r.reported_tcb_raw &&
             r.committed_tcb_raw == r.reported_tcb_raw);
    for (int i = 0; i < 32; i++)
        T_EQ(r.report_id_ma[i], 0xff);
    T_MEMEQ(r.report_data, rd, 64);
    *ret = r;
}

static void test_report_in_process(void)
{
    cf_sim_launch l;
    uint8_t rd[64], raw[CF_SNP_REPORT_LEN];
    cf_snp_report r;
    cf_buf der;

    T_ASSERT(g_sim != NULL);
    memset(&l, 0, sizeof(l));
    l.policy = CF_SNP_POLICY_SMT | CF_SNP_POLICY_RESERVED_1;
    l.vmpl = 1;
    memset(l.measurement, 0xab, sizeof(l.measurement));
    memset(l.report_id, 0x11, sizeof(l.report_id));
    rd_pattern(rd, 3);
    T_OK(cf_sim_report(g_sim, &l, rd, raw));
    cf_buf_init(&der, 16384);
    T_OK(cf_sim_vcek_der(g_sim, &der));
    check_evidence(raw, sizeof(raw), der.data, der.len, rd, &r);
    cf_buf_free(&der);
    if (t_cur_failed)
        return;
    T_EQ(r.vmpl, 1);
    T_MEMEQ(r.measurement, l.measurement, 48);
    T_MEMEQ(r.report_id, l.report_id, 32);
    T_ASSERT((r.policy & CF_SNP_POLICY_DEBUG) == 0);

    /* A flipped bit in the signed area breaks the signature. */
    raw[0x90] ^= 1;
    {
        const unsigned char *p;
        X509 *v;
        cf_buf_init(&der, 16384);
        T_OK(cf_sim_vcek_der(g_sim, &der));
        p = der.data;
        v = d2i_X509(NULL, &p, (long)der.len);
        T_ASSERT(v != NULL);
        T_FAILS(cf_snp_report_verify_signature(raw, v));
        X509_free(v);
        cf_buf_free(&der);
    }
    l.vmpl = 4;
    T_ERR(cf_sim_report(g_sim, &l, rd, raw), CF_E_RANGE);
}

static void test_other_tcb_issues_vcek(void)
{
    cf_sim_tcb tcb;
    cf_sim *s = NULL, *s2 = NULL;
    cf_snp_cert_ext ext;

    T_ASSERT(g_sim != NULL);
    cf_sim_tcb_default(&tcb);
    tcb.snp = 8;
    tcb.microcode = 115;
    T_OK(cf_sim_open(state_dir, &tcb, &s));
    T_ASSERT(!cf_sim_created_chain(s));
    T_ASSERT(cf_sim_issued_vcek(s));
    T_EQ(X509_cmp(cf_sim_ark(s), cf_sim_ark(g_sim)), 0);
    T_ASSERT(X509_cmp(cf_sim_vcek(s), cf_sim_vcek(g_sim)) != 0);
    T_OK(cf_snp_cert_parse_ext(cf_sim_vcek(s), &ext));
    T_EQ(ext.tcb.snp, 8);
    T_EQ(ext.tcb.microcode, 115);
    T_EQ(ext.tcb.bootloader, 4);
    T_OK(cf_sim_open(state_dir, &tcb, &s2));
    T_ASSERT(!cf_sim_issued_vcek(s2));
    T_EQ(X509_cmp(cf_sim_vcek(s), cf_sim_vcek(s2)), 0);
    cf_sim_free(s);
    cf_sim_free(s2);
}

/* Several processes opening a new TCB at once: all succeed with one VCEK. */
static void test_concurrent_vcek_issue(void)
{
    enum { N = 4 };
    cf_sim_tcb tcb;
    int go[2];
    pid_t pids[N];
    char path[N][700];
    uint8_t *der[N];
    size_t len[N];

    T_ASSERT(g_sim != NULL);
    cf_sim_tcb_default(&tcb);
    tcb.snp = 30;
    T_OK(pipe(go));
    for (int i = 0; i < N; i++) {
        PATHF(path[i], "%s/vcek-race-%d.der", tmp_root, i);
        pids[i] = fork();
        T_ASSERT(pids[i] >= 0);
        if (pids[i] == 0) {
            cf_sim *s = NULL;
            cf_buf d;
            char c;
            FILE *f;
            close(go[1]);
            if (read(go[0], &c, 1) != 0) /* wait until the parent closes the pipe */
                _exit(3);
            cf_buf_init(&d, 16384);
            if (cf_sim_open(state_dir, &tcb, &s) != 0 || cf_sim_vcek_der(s, &d) != 0)
                _exit(1);
            f = fopen(path[i], "wb");
            if (f == NULL || fwrite(d.data, 1, d.len, f) != d.len || fclose(f) != 0)
                _exit(2);
            _exit(0);
        }
    }
    close(go[0]);
    close(go[1]); /* release them together */
    for (int i = 0; i < N; i++) {
        int st;
        T_ASSERT(waitpid(pids[i], &st, 0) == pids[i]);
        T_EQ(decode_status(st), 0);
    }
    for (int i = 0; i < N; i++) {
        der[i] = t_read_file(path[i], &len[i]);
        if (i > 0) {
            T_EQ(len[i], len[0]);
            T_MEMEQ(der[i], der[0], len[0]);
        }
    }
    for (int i = 0; i < N; i++)
        free(der[i]);
    /* No temporary directory left behind by the losers. */
    {
        char p[700];
        DIR *d;
        struct dirent *e;
        PATHF(p, "%s/sim", state_dir);
        d = opendir(p);
        T_ASSERT(d != NULL);
        while ((e = readdir(d)) != NULL)
            T_ASSERT_MSG(strstr(e->d_name, "tmp") == NULL, "left behind: %s", e->d_name);
        closedir(d);
    }
}

/* Expected measurement of sim_helper + the test bundle. */
static void expected(bool debug, uint32_t vmpl, cf_measure_result *m)
{
    cf_launch_config cfg = {.debug = debug, .vmpl = vmpl};
    if (cf_measure(SIM_HELPER_BIN, bundle_dir, &cfg, m) != 0)
        abort();
}

static void test_launch_reports(void)
{
    char out[600], rd_hex[2][7 + 129];
    uint8_t rd1[64], rd2[64];
    uint8_t *rep1, *rep2, *cert1, *cert2, *fds, *pid_s;
    size_t rl1, rl2, cl1, cl2, fl, pl;
    cf_snp_report r1, r2;
    cf_measure_result m;
    cf_buf der;
    uint64_t pid;
    const char *steps[6];

    T_ASSERT(g_sim != NULL);
    new_outdir(out, sizeof(out));
    rd_pattern(rd1, 1);
    rd_pattern(rd2, 2);
    memcpy(rd_hex[0], report_step(rd1), sizeof(rd_hex[0]));
    memcpy(rd_hex[1], report_step(rd2), sizeof(rd_hex[1]));
    steps[0] = rd_hex[0];
    steps[1] = rd_hex[1];
    steps[2] = "fds";
    steps[3] = "pid";
    steps[4] = NULL;
    T_EQ(launch(NULL, out, steps), 0);

    rep1 = read_step(out, 0, "report", &rl1);
    cert1 = read_step(out, 0, "cert", &cl1);
    rep2 = read_step(out, 1, "report", &rl2);
    cert2 = read_step(out, 1, "cert", &cl2);
    T_ASSERT_MSG(rep1 != NULL && cert1 != NULL && rep2 != NULL && cert2 != NULL,
                 "helper got no report");
    check_evidence(rep1, rl1, cert1, cl1, rd1, &r1);
    check_evidence(rep2, rl2, cert2, cl2, rd2, &r2);
    if (t_cur_failed)
        return;

    /* The VCEK the launcher hands out is the state's VCEK. */
    cf_buf_init(&der, 16384);
    T_OK(cf_sim_vcek_der(g_sim, &der));
    T_EQ(cl1, der.len);
    T_MEMEQ(cert1, der.data, der.len);
    cf_buf_free(&der);

    /* The measurement is what measure.c computes for the program + bundle. */
    expected(false, 0, &m);
    T_MEMEQ(r1.measurement, m.measurement, 48);
    T_ASSERT((r1.policy & CF_SNP_POLICY_DEBUG) == 0);
    T_ASSERT(r1.policy == m.policy);
    T_EQ(r1.vmpl, 0);
    /* REPORT_ID names the guest: same across one launch's reports. */
    T_MEMEQ(r1.report_id, r2.report_id, 32);

    /* Nothing but stdio and the launcher socket was inherited. */
    fds = read_step(out, 2, "fds", &fl);
    T_ASSERT(fds != NULL);
    {
        char *env = strstr(MUT(fds), "env=");
        uint64_t lfd;
        int count = 0;
        bool saw_l = false;
        T_ASSERT(env != NULL);
        env[strcspn(env, "\n")] = '\0';
        T_OK(cf_parse_u64(env + 4, 1 << 20, &lfd));
        *env = '\0';
        /* One descriptor number per line. */
        for (char *p = MUT(fds); *p != '\0';) {
            char *nl = strchr(p, '\n');
            uint64_t fd;
            if (nl == NULL)
                break;
            *nl = '\0';
            T_OK(cf_parse_u64(p, 1 << 20, &fd));
            T_ASSERT_MSG(fd <= 2 || fd == lfd, "unexpected inherited fd %llu",
                         (unsigned long long)fd);
            saw_l |= fd == lfd;
            count++;
            p = nl + 1;
        }
        T_ASSERT(saw_l);
        T_ASSERT(count >= 1 && count <= 4);
    }
    free(fds);

    /* The launcher reaped its child. */
    pid_s = read_step(out, 3, "pid", &pl);
    T_ASSERT(pid_s != NULL);
    T_OK(cf_parse_u64(MUT(pid_s), 1u << 30, &pid));
    T_ASSERT(kill((pid_t)pid, 0) != 0 && errno == ESRCH);
    free(pid_s);
    free(rep1);
    free(rep2);
    free(cert1);
    free(cert2);
}

static void test_launch_debug_vmpl(void)
{
    static const char *const flags[] = {"--debug", "--vmpl", "2", NULL};
    char out[600], step[7 + 129];
    uint8_t rd[64];
    uint8_t *rep, *cert;
    size_t rl, cl;
    cf_snp_report r;
    cf_measure_result m, plain;
    const char *steps[2];

    T_ASSERT(g_sim != NULL);
    new_outdir(out, sizeof(out));
    rd_pattern(rd, 9);
    memcpy(step, report_step(rd), sizeof(step));
    steps[0] = step;
    steps[1] = NULL;
    T_EQ(launch(flags, out, steps), 0);
    rep = read_step(out, 0, "report", &rl);
    cert = read_step(out, 0, "cert", &cl);
    T_ASSERT(rep != NULL && cert != NULL);
    check_evidence(rep, rl, cert, cl, rd, &r);
    free(rep);
    free(cert);
    if (t_cur_failed)
        return;
    T_ASSERT(r.policy & CF_SNP_POLICY_DEBUG);
    T_EQ(r.vmpl, 2);
    expected(true, 2, &m);
    expected(false, 0, &plain);
    T_MEMEQ(r.measurement, m.measurement, 48);
    T_ASSERT(memcmp(m.measurement, plain.measurement, 48) != 0);
}

static void test_bundle_change_changes_measurement(void)
{
    char out[600], step[7 + 129], f[1024];
    uint8_t rd[64];
    uint8_t *rep;
    size_t rl;
    cf_measure_result before, after;
    const char *steps[2];

    T_ASSERT(g_sim != NULL);
    expected(false, 0, &before);
    PATHF(f, "%s/data/input.txt", bundle_dir);
    write_file(f, "hello world\n", 0644);
    write_file(f, "hello worle\n", 0644); /* one byte changed */
    new_outdir(out, sizeof(out));
    rd_pattern(rd, 5);
    memcpy(step, report_step(rd), sizeof(step));
    steps[0] = step;
    steps[1] = NULL;
    T_EQ(launch(NULL, out, steps), 0);
    rep = read_step(out, 0, "report", &rl);
    write_file(f, "hello world\n", 0644);
    T_ASSERT(rep != NULL && rl == CF_SNP_REPORT_LEN);
    expected(false, 0, &after);
    T_ASSERT(memcmp(before.measurement, after.measurement, 48) == 0); /* restored */
    {
        cf_snp_report r;
        cf_launch_config cfg = {0};
        uint8_t bd[32], meas[48];
        T_OK(cf_snp_report_parse(rep, rl, &r));
        T_ASSERT(memcmp(r.measurement, before.measurement, 48) != 0);
        /* ... and equals the measurement of the changed bundle. */
        write_file(f, "hello worle\n", 0644);
        T_OK(cf_bundle_digest(bundle_dir, bd));
        write_file(f, "hello world\n", 0644);
        T_OK(cf_launch_measurement(before.runtime_sha384, bd, &cfg, meas));
        T_MEMEQ(r.measurement, meas, 48);
    }
    free(rep);
}

/* Malformed messages get an error answer, the launcher keeps serving. */
static void test_malformed_requests(void)
{
    char out[600], valid[16 + 2 * CF_LAUNCHER_REQUEST_LEN], step[7 + 129];
    char big[5 + 2 * 200 + 1];
    uint8_t req[CF_LAUNCHER_REQUEST_LEN], rd[64];
    const char *steps[12];
    int n = 0;
    struct {
        const char *hex;
        int status;
    } bad[8];
    int nbad = 0;

    T_ASSERT(g_sim != NULL);
    rd_pattern(rd, 7);
    T_OK(cf_launcher_request_encode(rd, req));
    memcpy(valid, "raw:", 4);
    cf_hex_encode(req, sizeof(req), valid + 4);
    memcpy(big, "raw:", 4);
    for (int i = 0; i < 400; i++)
        big[4 + i] = 'a';
    big[404] = '\0';

    bad[nbad].hex = "raw:";
    bad[nbad++].status = CF_LAUNCHER_STATUS_MALFORMED; /* empty message */
    bad[nbad].hex = "raw:00";
    bad[nbad++].status = CF_LAUNCHER_STATUS_MALFORMED;
    /* wrong magic */
    bad[nbad].hex = "raw:58464c510001000100000040";
    bad[nbad++].status = CF_LAUNCHER_STATUS_MALFORMED;
    /* version 2 */
    bad[nbad].hex = "raw:43464c510002000100000040";
    bad[nbad++].status = CF_LAUNCHER_STATUS_UNSUPPORTED;
    /* type 9 */
    bad[nbad].hex = "raw:43464c510001000900000040";
    bad[nbad++].status = CF_LAUNCHER_STATUS_UNSUPPORTED;
    /* body length 63 */
    bad[nbad].hex = "raw:43464c51000100010000003f";
    bad[nbad++].status = CF_LAUNCHER_STATUS_MALFORMED;
    /* header only, body missing */
    bad[nbad].hex = "raw:43464c510001000100000040";
    bad[nbad++].status = CF_LAUNCHER_STATUS_MALFORMED;
    bad[nbad].hex = big; /* 200 bytes: too large */
    bad[nbad++].status = CF_LAUNCHER_STATUS_MALFORMED;
    for (int i = 0; i < nbad; i++)
        steps[n++] = bad[i].hex;
    steps[n++] = valid;
    memcpy(step, report_step(rd), sizeof(step));
    steps[n++] = step;
    steps[n] = NULL;

    new_outdir(out, sizeof(out));
    T_EQ(launch(NULL, out, steps), 0);
    for (int i = 0; i < nbad; i++) {
        size_t rl;
        uint8_t *resp = read_step(out, i, "resp", &rl);
        cf_provider_evidence ev;
        T_ASSERT_MSG(resp != NULL && rl >= 12, "no answer to bad request %d", i);
        T_MEMEQ(resp, "CFLR", 4);
        T_EQ((resp[6] << 8) | resp[7], bad[i].status);
        T_ERR(cf_launcher_response_parse(resp, rl, &ev), CF_E_UNAVAILABLE);
        free(resp);
    }
    {
        size_t rl;
        uint8_t *resp = read_step(out, nbad, "resp", &rl);
        cf_provider_evidence ev;
        T_ASSERT(resp != NULL);
        T_OK(cf_launcher_response_parse(resp, rl, &ev));
        T_MEMEQ(ev.report + 0x50, rd, 64);
        cf_provider_evidence_free(&ev);
        free(resp);
        resp = read_step(out, nbad + 1, "report", &rl);
        T_ASSERT_MSG(resp != NULL, "launcher stopped serving after bad requests");
        free(resp);
    }
}

static void test_signal_forwarded(void)
{
    char out[600], ready[700];
    char *argv[16];
    int n = 0, st;
    pid_t pid;
    struct stat sb;
    size_t sl;
    uint8_t *sig;

    new_outdir(out, sizeof(out));
    PATHF(ready, "%s/ready", out);
    argv[n++] = MUT(COFFER_LAUNCH_BIN);
    argv[n++] = MUT("--log-level");
    argv[n++] = MUT("warn");
    argv[n++] = MUT("--state");
    argv[n++] = state_dir;
    argv[n++] = MUT("--bundle");
    argv[n++] = bundle_dir;
    argv[n++] = MUT("--");
    argv[n++] = MUT(SIM_HELPER_BIN);
    argv[n++] = out;
    argv[n++] = MUT("wait");
    argv[n] = NULL;
    pid = spawn(argv, NULL);
    for (int i = 0; i < 1000 && stat(ready, &sb) != 0; i++)
        usleep(10000);
    T_ASSERT_MSG(stat(ready, &sb) == 0, "helper did not start");
    T_OK(kill(pid, SIGTERM));
    T_ASSERT(waitpid(pid, &st, 0) == pid);
    T_EQ(decode_status(st), 42); /* the child's own exit status */
    sig = read_step(out, 0, "sig", &sl);
    T_ASSERT(sig != NULL);
    T_STREQ(MUT(sig), "15");
    free(sig);
}

static void test_exit_codes_and_usage(void)
{
    char out[600], notexec[1024], m_out[1024], p_out[1024];
    const char *steps[] = {"exit:7", NULL};
    char *argv[16];
    uint8_t *text;
    size_t tl;

    T_ASSERT(g_sim != NULL);
    new_outdir(out, sizeof(out));
    T_EQ(launch(NULL, out, steps), 7);

    /* Usage errors: 2. */
    {
        char *a[] = {MUT(COFFER_LAUNCH_BIN), MUT("--state"), state_dir, MUT("--bundle"),
                     bundle_dir, MUT("--"), MUT("sim_helper"), NULL};
        T_EQ(run(a, NULL), 2); /* PROGRAM without a slash */
    }
    {
        char *a[] = {MUT(COFFER_LAUNCH_BIN), MUT("--bundle"), bundle_dir, MUT("--"),
                     MUT(SIM_HELPER_BIN), NULL};
        T_EQ(run(a, NULL), 2); /* launching needs --state */
    }
    {
        char *a[] = {MUT(COFFER_LAUNCH_BIN), MUT("--vmpl"), MUT("4"), NULL};
        T_EQ(run(a, NULL), 2);
    }
    {
        char *a[] = {MUT(COFFER_LAUNCH_BIN), MUT("--state"), state_dir, MUT("--tcb"),
                     MUT("snp=999"), MUT("--print-chain"), NULL};
        T_EQ(run(a, NULL), 2);
    }
    /* A program that is not executable is refused before anything runs: 125. */
    PATHF(notexec, "%s/notexec", tmp_root);
    write_file(notexec, "#!/bin/sh\nexit 0\n", 0644);
    {
        char *a[] = {MUT(COFFER_LAUNCH_BIN), MUT("--log-level"), MUT("off"),
                     MUT("--state"), state_dir, MUT("--bundle"), bundle_dir, MUT("--"),
                     notexec, NULL};
        T_EQ(run(a, NULL), 125);
    }
    /* A script cannot run from the sealed copy: 126, with a reason. */
    PATHF(notexec, "%s/script", tmp_root);
    write_file(notexec, "#!/bin/sh\nexit 0\n", 0755);
    {
        char *a[] = {MUT(COFFER_LAUNCH_BIN), MUT("--log-level"), MUT("off"),
                     MUT("--state"), state_dir, MUT("--bundle"), bundle_dir, MUT("--"),
                     notexec, NULL};
        T_EQ(run(a, NULL), 126);
    }
    /* A bundle with a FIFO cannot be measured: 125, nothing runs. */
    {
        char fb[1024], fifo[1100];
        char *a[] = {MUT(COFFER_LAUNCH_BIN), MUT("--log-level"), MUT("off"),
                     MUT("--state"), state_dir, MUT("--bundle"), fb, MUT("--"),
                     MUT(SIM_HELPER_BIN), out, MUT("pid"), NULL};
        size_t pl;
        PATHF(fb, "%s/fifo-bundle", tmp_root);
        PATHF(fifo, "%s/pipe", fb);
        T_OK(mkdir(fb, 0700));
        T_OK(mkfifo(fifo, 0600));
        T_EQ(run(a, NULL), 125);
        T_ASSERT(read_step(out, 0, "pid", &pl) == NULL); /* the helper never ran */
    }

    /* --measure-only prints what measure.c computes. */
    PATHF(m_out, "%s/measure.json", tmp_root);
    argv[0] = MUT(COFFER_LAUNCH_BIN);
    argv[1] = MUT("--bundle");
    argv[2] = bundle_dir;
    argv[3] = MUT("--debug");
    argv[4] = MUT("--measure-only");
    argv[5] = MUT("--");
    argv[6] = MUT(SIM_HELPER_BIN);
    argv[7] = NULL;
    T_EQ(run(argv, m_out), 0);
    text = t_read_file(m_out, &tl);
    {
        json_t *j = NULL;
        const char *meas = NULL, *bh = NULL;
        cf_measure_result m;
        char want[97], want_bh[CF_BUILD_HASH_STR_LEN + 1];
        expected(true, 0, &m);
        cf_hex_encode(m.measurement, 48, want);
        cf_build_hash_format(m.bundle_digest, want_bh);
        T_OK(cf_json_parse_object(text, tl - 1, 4096, &j));
        T_OK(cf_json_get_str(j, "measurement", true, 200, &meas));
        T_OK(cf_json_get_str(j, "build_hash", true, 200, &bh));
        T_STREQ(meas, want);
        T_STREQ(bh, want_bh);
        json_decref(j);
    }
    free(text);

    /* --print-chain prints the ASK then ARK that the state holds. */
    PATHF(p_out, "%s/chain.pem", tmp_root);
    {
        char *a[] = {MUT(COFFER_LAUNCH_BIN), MUT("--state"), state_dir,
                     MUT("--print-chain"), NULL};
        cf_buf pem;
        T_EQ(run(a, p_out), 0);
        text = t_read_file(p_out, &tl);
        cf_buf_init(&pem, 65536);
        T_OK(cf_sim_chain_pem(g_sim, &pem));
        T_EQ(tl, pem.len);
        T_MEMEQ(text, pem.data, tl);
        cf_buf_free(&pem);
        free(text);
    }
}

static void make_bundle(void)
{
    char p[1024];

    PATHF(bundle_dir, "%s/bundle", tmp_root);
    if (mkdir(bundle_dir, 0755) != 0)
        abort();
    PATHF(p, "%s/coffer.json", bundle_dir);
    write_file(p, "{\"name\":\"demo\",\"version\":\"1\",\"jobs\":{}}\n", 0644);
    PATHF(p, "%s/bin", bundle_dir);
    if (mkdir(p, 0755) != 0)
        abort();
    PATHF(p, "%s/bin/job", bundle_dir);
    write_file(p, "#!/bin/sh\necho job\n", 0755);
    PATHF(p, "%s/data", bundle_dir);
    if (mkdir(p, 0755) != 0)
        abort();
    PATHF(p, "%s/data/input.txt", bundle_dir);
    write_file(p, "hello world\n", 0644);
    PATHF(p, "%s/input", bundle_dir);
    if (symlink("data/input.txt", p) != 0)
        abort();
}

int main(void)
{
    const char *tmp = getenv("TMPDIR");
    int st;

    /* Orphans would be re-parented to us: lets the end check that none exist. */
    (void)prctl(PR_SET_CHILD_SUBREAPER, 1);
    if ((size_t)snprintf(tmp_root, sizeof(tmp_root), "%s/coffer-test-sim-XXXXXX",
                         tmp != NULL && tmp[0] != '\0' ? tmp : "/tmp") >= sizeof(tmp_root) ||
        mkdtemp(tmp_root) == NULL)
        abort();
    PATHF(state_dir, "%s/state", tmp_root);
    make_bundle();

    T_RUN(test_tcb_parse);
    T_RUN(test_chain_create_and_reload);
    T_RUN(test_state_damage_refused);
    T_RUN(test_report_in_process);
    T_RUN(test_other_tcb_issues_vcek);
    T_RUN(test_concurrent_vcek_issue);
    T_RUN(test_launch_reports);
    T_RUN(test_launch_debug_vmpl);
    T_RUN(test_bundle_change_changes_measurement);
    T_RUN(test_malformed_requests);
    T_RUN(test_signal_forwarded);
    T_RUN(test_exit_codes_and_usage);

    /* No process left behind: as subreaper we would have inherited any orphan. */
    if (waitpid(-1, &st, WNOHANG) != -1 || errno != ECHILD) {
        fprintf(stderr, "not ok - a child process was left behind\n");
        t_failed++;
    }
    cf_sim_free(g_sim);
    rm_rf(tmp_root);
    return t_done();
}
