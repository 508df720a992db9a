/*
 * Requests per second of a trivial route through the Coffer server wrapper
 * (routing, request id, JSON response, access log line) next to a bare
 * libmicrohttpd handler answering the same bytes, in the same run, with the
 * same threading mode and thread count. Plain HTTP on loopback; the load comes
 * from CLIENTS threads, each looping GET over one keep-alive libcurl handle per
 * server. The two servers are measured in alternating slices so that load
 * changes on a shared machine affect both alike.
 *
 * Two modes (poll thread pool, epoll thread pool), BENCH_SECONDS per server per
 * mode: about 4 * BENCH_SECONDS seconds in total. Besides throughput it prints
 * the process CPU time per request (clients included, the same for both sides),
 * which a busy machine disturbs less than wall-clock rates.
 * BENCH_NOLOG=1 turns the access log off, to show its share of the cost.
 */
#include <arpa/inet.h>
#include <curl/curl.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>

#include "base/err.h"
#include "base/log.h"
#include "base/parse.h"
#include "http/server.h"

#define BENCH_SECONDS 2.0
#define SLICES 20
#define CLIENTS 2
#define SERVER_THREADS 2

static const char body[] = "{\"ok\":true}";

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* CPU seconds used by the whole process (servers and clients). */
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
    fprintf(stderr, "bench_http: %s failed\n", what);
    exit(1);
}

/* ---- the two servers ------------------------------------------------------------- */

static int h_ping(void *cls, const cf_http_req *req, cf_http_resp *resp)
{
    (void)cls;
    (void)req;
    return cf_http_resp_set(resp, 200, "application/json", body, sizeof(body) - 1);
}

static enum MHD_Result bare_handler(void *cls, struct MHD_Connection *conn, const char *url,
                                    const char *method, const char *version,
                                    const char *upload_data, size_t *upload_data_size,
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
    r = MHD_create_response_from_buffer(sizeof(body) - 1, (void *)(uintptr_t)body,
                                        MHD_RESPMEM_PERSISTENT);
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

static struct MHD_Daemon *start_bare(bool epoll, uint16_t *ret_port)
{
    struct sockaddr_in a;
    struct MHD_Daemon *d;
    const union MHD_DaemonInfo *di;

    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    d = MHD_start_daemon((epoll ? MHD_USE_EPOLL_INTERNAL_THREAD : MHD_USE_POLL_INTERNAL_THREAD) |
                             MHD_USE_ITC,
                         0, NULL, NULL, &bare_handler, NULL, MHD_OPTION_SOCK_ADDR,
                         (struct sockaddr *)&a, MHD_OPTION_THREAD_POOL_SIZE,
                         (unsigned int)SERVER_THREADS, MHD_OPTION_END);
    if (d == NULL || (di = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT)) == NULL)
        die("bare MHD start");
    *ret_port = di->port;
    return d;
}

/* ---- load ------------------------------------------------------------------------------ */

struct loader {
    CURL *h;
    double until;
    long done;
};

static size_t sink(char *p, size_t size, size_t n, void *ud)
{
    (void)p;
    (void)ud;
    return size * n;
}

static CURL *new_handle(uint16_t port)
{
    char url[64];
    CURL *h = curl_easy_init();

    if (h == NULL || cf_fmt(url, sizeof(url), "http://127.0.0.1:%u/v1/ping", (unsigned)port) < 0)
        die("curl handle");
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, sink);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TCP_NODELAY, 1L);
    return h;
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

/* Alternating slices against two ports; returns requests per second of each and
 * the process CPU time per request (client + server: the client part is the same
 * for both, and CPU time is less disturbed by other load on the machine than
 * wall-clock throughput). */
static void measure_pair(uint16_t pa, uint16_t pb, double *ret_a, double *ret_b,
                         double *ret_cpu_a, double *ret_cpu_b)
{
    struct loader l[2][CLIENTS];
    double t[2] = {0, 0}, cpu[2] = {0, 0};
    long n[2] = {0, 0};

    for (int c = 0; c < CLIENTS; c++) {
        l[0][c].h = new_handle(pa);
        l[1][c].h = new_handle(pb);
    }
    /* Warm-up: open the keep-alive connections. */
    for (int side = 0; side < 2; side++)
        for (int c = 0; c < CLIENTS; c++)
            if (curl_easy_perform(l[side][c].h) != CURLE_OK)
                die("warm-up request");
    for (int s = 0; s < SLICES; s++) {
        for (int side = 0; side < 2; side++) {
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
    for (int c = 0; c < CLIENTS; c++) {
        curl_easy_cleanup(l[0][c].h);
        curl_easy_cleanup(l[1][c].h);
    }
    *ret_a = (double)n[0] / t[0];
    *ret_b = (double)n[1] / t[1];
    *ret_cpu_a = cpu[0] / (double)n[0] * 1e6;
    *ret_cpu_b = cpu[1] / (double)n[1] * 1e6;
}

static void run_mode(bool epoll)
{
    cf_http_server_opts o = {.name = "bench",
                             .threading = epoll ? CF_HTTP_THREADS_EPOLL : CF_HTTP_THREADS_POOL,
                             .threads = SERVER_THREADS};
    cf_http_server *s = NULL;
    struct MHD_Daemon *bare;
    uint16_t bare_port = 0;
    double wrap_rps = 0, bare_rps = 0, wrap_cpu = 0, bare_cpu = 0;

    if (cf_http_server_new(&o, &s) != 0 ||
        cf_http_server_route(s, "GET", "/v1/ping", h_ping, NULL, 0) != 0 ||
        cf_http_server_start(s) != 0)
        die("wrapper start");
    bare = start_bare(epoll, &bare_port);
    measure_pair(cf_http_server_port(s), bare_port, &wrap_rps, &bare_rps, &wrap_cpu,
                 &bare_cpu);
    cf_http_server_free(s);
    MHD_stop_daemon(bare);

    printf("mode: %s thread pool, %d server threads, %d keep-alive client threads, %.1f s each\n",
           epoll ? "epoll" : "poll", SERVER_THREADS, CLIENTS, BENCH_SECONDS);
    printf("  cf_http_server (routing, request id, access log line): %9.0f req/s  %6.1f us CPU/req\n",
           wrap_rps, wrap_cpu);
    printf("  bare libmicrohttpd handler (limit):                     %9.0f req/s  %6.1f us CPU/req\n",
           bare_rps, bare_cpu);
    printf("  ratio wrapper/bare: throughput %.2f, CPU per request %.2f\n", wrap_rps / bare_rps,
           wrap_cpu / bare_cpu);
}

int main(void)
{
    FILE *devnull = fopen("/dev/null", "w");

    if (devnull == NULL || curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        die("init");
    /* The access log line is formatted and written for every request, as in
     * production, but to /dev/null so that the terminal is not the bottleneck. */
    cf_log_set_stream(devnull);
    if (getenv("BENCH_NOLOG") != NULL) /* to see the access log's share */
        cf_log_set_level(CF_LOG_WARN);
    run_mode(false);
    run_mode(true);
    cf_log_set_stream(NULL);
    fclose(devnull);
    curl_global_cleanup();
    return 0;
}
