/*
 * Requests per second of a trivial authenticated route through the gateway's
 * stack, next to a bare libmicrohttpd handler answering the same bytes, in the
 * same run (issue 5).
 *
 * The gateway side is the real thing in-process: cf_svc + cf_gw_new (its full
 * route table of ~160 routes, thread per connection, the metrics observer, the
 * access log line) plus one extra route whose handler runs the gateway's
 * admission — bearer token verification against the JWKS, the per-tenant token
 * bucket and concurrency slot — and a permission check, then answers
 * {"ok":true}. It is measured twice: with the verified-token cache (the
 * default, auth.cache_ttl=30s: a client reusing its token pays one signature
 * check) and with auth.cache_ttl=0 (every request verifies an EdDSA
 * signature). The bare handler uses the same threading mode (thread per
 * connection) and ignores the Authorization header the clients send to all
 * three.
 *
 * Load: CLIENTS threads, each looping GET over one keep-alive libcurl handle per
 * server; the servers are measured in alternating slices so that load changes
 * on a shared machine affect all alike. About 3 * BENCH_SECONDS seconds.
 */
#include <arpa/inet.h>
#include <curl/curl.h>
#include <ftw.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "base/err.h"
#include "base/file.h"
#include "base/log.h"
#include "base/parse.h"
#include "crypto/jose.h"
#include "crypto/keys.h"
#include "gateway/gateway.h"
#include "http/server.h"
#include "proto/authz.h"
#include "svc/svc.h"

#define BENCH_SECONDS 3.0
#define SLICES 15
#define CLIENTS 2
#define NSIDES 3

static const char body[] = "{\"ok\":true}";
static char tmp[64], auth_header[2048];

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double cpu_s(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0)
        return 0;
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static void die(const char *what)
{
    fprintf(stderr, "bench_gateway: %s failed: %s\n", what, cf_err_detail(CF_E_INTERNAL));
    exit(1);
}

/* ---- the gateway side ------------------------------------------------------------------- */

static int h_ping(void *cls, const cf_http_req *req, cf_http_resp *resp)
{
    cf_gw *gw = cls;
    cf_gw_caller c;
    int rc;

    CF_GUARD(cf_gw_admit(gw, req, resp, CF_GW_ADMIT_TOKEN, &c));
    rc = cf_authz_check(&c.p, CF_PERM_SESSION_CREATE, c.p.tenant);
    if (rc == 0)
        rc = cf_http_resp_set(resp, 200, "application/json", body, sizeof(body) - 1);
    cf_gw_release(gw, &c);
    return rc;
}

struct gw_side {
    cf_svc *svc;
    cf_gw *gw;
};

static void start_gateway(struct gw_side *g, const char *name, const char *cache_ttl, const char *jwks,
                          const char *manifest)
{
    char a[8][256];
    char *argv[8];
    int n = 0;

#define ARG(...)                                                                                   \
    do {                                                                                           \
        if (cf_fmt(a[n], sizeof(a[n]), __VA_ARGS__) != 0)                                          \
            die("argument");                                                                       \
        argv[n] = a[n];                                                                            \
        n++;                                                                                       \
    } while (0)
    ARG("--state_dir=%s/%s", tmp, name);
    ARG("--iam.jwks=%s", jwks);
    ARG("--manifest=%s", manifest);
    ARG("--insecure_http=true");
    ARG("--auth.cache_ttl=%s", cache_ttl);
    ARG("--ratelimit.rps=%d", CF_GW_MAX_RATE);
    ARG("--ratelimit.burst=%d", CF_GW_MAX_RATE);
#undef ARG
    if (cf_svc_init(&(cf_svc_def){.name = "gateway", .opts = cf_gw_options, .nopts = cf_gw_noptions}, n, argv,
                    &g->svc) != 0)
        die("cf_svc_init");
    if (cf_gw_new(g->svc, &g->gw) != 0)
        die("cf_gw_new");
    /* Last in the table: the router walks every gateway route before it. */
    if (cf_http_server_route(cf_svc_http(g->svc), "GET", "/v1/ping", h_ping, g->gw, 0) != 0 ||
        cf_http_server_start(cf_svc_http(g->svc)) != 0)
        die("gateway start");
}

static void stop_gateway(struct gw_side *g)
{
    cf_http_server_stop(cf_svc_http(g->svc), 1000);
    cf_gw_free(g->gw);
    cf_svc_free(g->svc);
}

/* ---- the bare side ------------------------------------------------------------------------ */

static enum MHD_Result bare_handler(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                                    const char *version, const char *upload_data, size_t *upload_data_size,
                                    void **con_cls)
{
    static int first;
    struct MHD_Response *r;
    enum MHD_Result ret;

    (void)cls;
    (void)url;
    (void)method;
    (void)version;
    (void)upload_data;
    if (*con_cls == NULL) { /* headers: wait for the (empty) body as the wrapper does */
        *con_cls = &first;
        return MHD_YES;
    }
    *upload_data_size = 0;
    r = MHD_create_response_from_buffer(sizeof(body) - 1, (void *)(uintptr_t)body, MHD_RESPMEM_PERSISTENT);
    if (r == NULL)
        return MHD_NO;
    if (MHD_add_response_header(r, "Content-Type", "application/json") != MHD_YES) {
        MHD_destroy_response(r);
        return MHD_NO;
    }
    ret = MHD_queue_response(conn, 200, r);
    MHD_destroy_response(r);
    return ret;
}

static struct MHD_Daemon *start_bare(uint16_t *ret_port)
{
    struct sockaddr_in a;
    struct MHD_Daemon *d;
    const union MHD_DaemonInfo *di;

    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    d = MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION | MHD_USE_POLL_INTERNAL_THREAD | MHD_USE_ITC, 0, NULL,
                         NULL, &bare_handler, NULL, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&a, MHD_OPTION_END);
    if (d == NULL || (di = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT)) == NULL)
        die("bare MHD start");
    *ret_port = di->port;
    return d;
}

/* ---- load ------------------------------------------------------------------------------------ */

struct loader {
    CURL *h;
    struct curl_slist *hdrs;
    double until;
    long done;
};

static size_t sink(char *p, size_t size, size_t n, void *ud)
{
    (void)p;
    (void)ud;
    return size * n;
}

static void new_handle(struct loader *l, uint16_t port)
{
    char url[64];

    l->h = curl_easy_init();
    l->hdrs = curl_slist_append(NULL, auth_header);
    if (l->h == NULL || l->hdrs == NULL ||
        cf_fmt(url, sizeof(url), "http://127.0.0.1:%u/v1/ping", (unsigned)port) < 0)
        die("curl handle");
    curl_easy_setopt(l->h, CURLOPT_URL, url);
    curl_easy_setopt(l->h, CURLOPT_HTTPHEADER, l->hdrs);
    curl_easy_setopt(l->h, CURLOPT_WRITEFUNCTION, sink);
    curl_easy_setopt(l->h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(l->h, CURLOPT_TCP_NODELAY, 1L);
}

static void *load_main(void *arg)
{
    struct loader *l = arg;
    long code = 0;

    while (now_s() < l->until) {
        if (curl_easy_perform(l->h) != CURLE_OK ||
            curl_easy_getinfo(l->h, CURLINFO_RESPONSE_CODE, &code) != CURLE_OK || code != 200)
            die("request");
        l->done++;
    }
    return NULL;
}

/* Alternating slices against the ports; requests per second and process CPU
 * microseconds per request (clients included, the same for every side). */
static void measure(const uint16_t *ports, double *ret_rps, double *ret_cpu)
{
    struct loader l[NSIDES][CLIENTS];
    double t[NSIDES] = {0}, cpu[NSIDES] = {0};
    long n[NSIDES] = {0};

    for (int side = 0; side < NSIDES; side++)
        for (int c = 0; c < CLIENTS; c++) {
            new_handle(&l[side][c], ports[side]);
            if (curl_easy_perform(l[side][c].h) != CURLE_OK) /* warm-up: connection, token cache */
                die("warm-up request");
        }
    for (int s = 0; s < SLICES; s++) {
        for (int side = 0; side < NSIDES; side++) {
            pthread_t th[CLIENTS];
            double start = now_s(), c0 = cpu_s();
            for (int c = 0; c < CLIENTS; c++) {
                l[side][c].until = start + BENCH_SECONDS / SLICES;
                l[side][c].done = 0;
                if (pthread_create(&th[c], NULL, load_main, &l[side][c]) != 0)
                    die("pthread_create");
            }
            for (int c = 0; c < CLIENTS; c++) {
                pthread_join(th[c], NULL);
                n[side] += l[side][c].done;
            }
            t[side] += now_s() - start;
            cpu[side] += cpu_s() - c0;
        }
    }
    for (int side = 0; side < NSIDES; side++) {
        for (int c = 0; c < CLIENTS; c++) {
            curl_easy_cleanup(l[side][c].h);
            curl_slist_free_all(l[side][c].hdrs);
        }
        ret_rps[side] = (double)n[side] / t[side];
        ret_cpu[side] = cpu[side] / (double)n[side] * 1e6;
    }
}

/* ---- set-up ------------------------------------------------------------------------------------ */

static int rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(p);
}

static void write_inputs(char *jwks, size_t jcap, char *manifest, size_t mcap)
{
    static const char mdoc[] =
        "{\"version\":1,\"platforms\":{\"sev-snp\":{\"roots\":[\"amd:milan\"],\"min_tcb\":{\"milan\":"
        "{\"bootloader\":1,\"tee\":0,\"snp\":1,\"microcode\":1}}}},\"deployments\":[{\"name\":\"d1\","
        "\"tenant\":\"t1\",\"jobs\":[\"echo\"],\"developer_key\":\"F4L2-KeulD8PjwNzy78QLHGrVxORTCycQOMoWyensAk\","
        "\"platforms\":{\"sev-snp\":{\"measurements\":[\"195b01b74976a1faba13bd85eaf787958f0a46e6dddd45c5bdbf"
        "8673522777842b8057ae5d866b75416efb62012deaa3\"]}}}]}";
    cf_key *k = NULL, *pub = NULL;
    cf_jwks *set = NULL;
    cf_principal p;
    char *js = NULL, *tok = NULL;

    if (cf_fmt(jwks, jcap, "%s/jwks.json", tmp) != 0 || cf_fmt(manifest, mcap, "%s/manifest.json", tmp) != 0 ||
        cf_file_write_atomic(manifest, mdoc, sizeof(mdoc) - 1, 0644) != 0)
        die("manifest");
    if (cf_key_generate(CF_KEY_ED25519, &k) != 0 || cf_key_public_only(k, &pub) != 0 || cf_jwks_new(&set) != 0 ||
        cf_jwks_add(set, "k1", pub) != 0 || cf_jwks_serialise(set, &js) != 0 ||
        cf_file_write_atomic(jwks, js, strlen(js), 0644) != 0)
        die("JWKS");
    memset(&p, 0, sizeof(p));
    memcpy(p.tenant, "t1", 3);
    memcpy(p.sub, "bench", 6);
    memcpy(p.kind, "client", 7);
    p.roles = CF_ROLE_CLIENT;
    if (cf_token_mint(k, "k1", &p, (int64_t)time(NULL), 3600, &tok) != 0 ||
        cf_fmt(auth_header, sizeof(auth_header), "Authorization: Bearer %s", tok) != 0)
        die("token");
    free(tok);
    free(js);
    cf_jwks_free(set);
    cf_key_free(pub);
    cf_key_free(k);
}

int main(void)
{
    FILE *devnull = fopen("/dev/null", "w");
    char jwks[128], manifest[128];
    struct gw_side cached, uncached;
    struct MHD_Daemon *bare;
    uint16_t ports[NSIDES];
    double rps[NSIDES], cpu[NSIDES];

    snprintf(tmp, sizeof(tmp), "/tmp/cf-gwbench-XXXXXX");
    if (devnull == NULL || mkdtemp(tmp) == NULL || curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        die("init");
    write_inputs(jwks, sizeof(jwks), manifest, sizeof(manifest));
    /* Log lines (config, access) are formatted and written as in production, but
     * to /dev/null so that the terminal is not the bottleneck. */
    cf_log_set_stream(devnull);
    start_gateway(&cached, "gw-cached", "30s", jwks, manifest);
    start_gateway(&uncached, "gw-verify", "0", jwks, manifest);
    bare = start_bare(&ports[2]);
    ports[0] = cf_http_server_port(cf_svc_http(cached.svc));
    ports[1] = cf_http_server_port(cf_svc_http(uncached.svc));
    measure(ports, rps, cpu);
    stop_gateway(&cached);
    stop_gateway(&uncached);
    MHD_stop_daemon(bare);
    cf_log_set_stream(NULL);

    printf("gateway: trivial authenticated route, plain HTTP on loopback, thread per connection,\n"
           "  %d keep-alive client threads, %.1f s per server in %d alternating slices\n",
           CLIENTS, BENCH_SECONDS, SLICES);
    printf("  gateway stack, token cache (auth.cache_ttl=30s): %9.0f req/s  %6.1f us CPU/req\n", rps[0], cpu[0]);
    printf("  gateway stack, EdDSA verify on every request:    %9.0f req/s  %6.1f us CPU/req\n", rps[1], cpu[1]);
    printf("  bare libmicrohttpd handler (limit):              %9.0f req/s  %6.1f us CPU/req\n", rps[2], cpu[2]);
    printf("  ratio gateway/bare, token cache: throughput %.2f, CPU per request %.2f\n", rps[0] / rps[2],
           cpu[0] / cpu[2]);
    printf("  ratio gateway/bare, verify each: throughput %.2f, CPU per request %.2f\n", rps[1] / rps[2],
           cpu[1] / cpu[2]);
    fclose(devnull);
    curl_global_cleanup();
    nftw(tmp, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
    return 0;
}
