/*
 * Gateway building blocks in-process: token-bucket limiter, registry listing
 * parser and cached view (TTL, on-demand refresh, fail closed, least-loaded
 * selection, unhealthy marks), metrics exposition, and the parsers of the
 * session request and of the TEE / attestation-service answers.
 */
#include <string.h>
#include <time.h>

#include "base/err.h"
#include "base/limits.h"
#include "base/parse.h"
#include "gateway/gw_int.h"
#include "gateway/metrics.h"
#include "gateway/ratelimit.h"
#include "gateway/registry.h"
#include "test.h"

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* ---- limiter --------------------------------------------------------------------------- */

static void test_bucket(void)
{
    cf_gw_limiter *l = NULL;
    cf_gw_limit lim = {.rps = 2, .burst = 3, .concurrency = 0};
    uint32_t ra = 0;

    T_OK(cf_gw_limiter_new(16, &l));
    /* A new key starts with a full bucket. */
    for (int i = 0; i < 3; i++)
        T_OK(cf_gw_limiter_acquire(l, "t:a", &lim, 1000, &ra));
    T_ERR(cf_gw_limiter_acquire(l, "t:a", &lim, 1000, &ra), CF_E_RATE_LIMITED);
    T_EQ(ra, 1); /* 2 tokens/s: one in 0.5 s, announced as a whole second */
    T_ASSERT(strstr(cf_err_detail(CF_E_RATE_LIMITED), "rate limit exceeded") != NULL);
    /* Other keys are independent. */
    T_OK(cf_gw_limiter_acquire(l, "t:b", &lim, 1000, &ra));
    /* 499 ms later there is still no whole token, at 500 ms there is one. */
    T_ERR(cf_gw_limiter_acquire(l, "t:a", &lim, 1499, &ra), CF_E_RATE_LIMITED);
    T_OK(cf_gw_limiter_acquire(l, "t:a", &lim, 1500, &ra));
    T_ERR(cf_gw_limiter_acquire(l, "t:a", &lim, 1500, &ra), CF_E_RATE_LIMITED);
    /* Refill stops at the burst size. */
    for (int i = 0; i < 3; i++)
        T_OK(cf_gw_limiter_acquire(l, "t:a", &lim, 100000, &ra));
    T_ERR(cf_gw_limiter_acquire(l, "t:a", &lim, 100000, &ra), CF_E_RATE_LIMITED);
    /* A slow rate announces a longer wait: 1 token per second empty -> 1 s; */
    {
        cf_gw_limit slow = {.rps = 1, .burst = 1};
        T_OK(cf_gw_limiter_acquire(l, "t:s", &slow, 0, &ra));
        T_ERR(cf_gw_limiter_acquire(l, "t:s", &slow, 0, &ra), CF_E_RATE_LIMITED);
        T_EQ(ra, 1);
    }
    /* Bad arguments. */
    T_ERR(cf_gw_limiter_acquire(l, "", &lim, 0, &ra), CF_E_INVAL);
    lim.rps = 0;
    T_ERR(cf_gw_limiter_acquire(l, "t:a", &lim, 0, &ra), CF_E_INVAL);
    T_ERR(cf_gw_limiter_new(0, &l), CF_E_INVAL);
    T_ERR(cf_gw_limiter_new(CF_GW_MAX_BUCKETS + 1, &l), CF_E_INVAL);
    cf_gw_limiter_free(l);
}

static void test_concurrency(void)
{
    cf_gw_limiter *l = NULL;
    cf_gw_limit lim = {.rps = 1000, .burst = 1000, .concurrency = 2};
    uint32_t ra = 0;

    T_OK(cf_gw_limiter_new(4, &l));
    T_OK(cf_gw_limiter_acquire(l, "t:a", &lim, 0, &ra));
    T_OK(cf_gw_limiter_acquire(l, "t:a", &lim, 0, &ra));
    T_EQ(cf_gw_limiter_inflight(l, "t:a"), 2);
    T_ERR(cf_gw_limiter_acquire(l, "t:a", &lim, 0, &ra), CF_E_RATE_LIMITED);
    T_EQ(ra, 1);
    T_ASSERT(strstr(cf_err_detail(CF_E_RATE_LIMITED), "concurrent") != NULL);
    cf_gw_limiter_release(l, "t:a");
    T_EQ(cf_gw_limiter_inflight(l, "t:a"), 1);
    T_OK(cf_gw_limiter_acquire(l, "t:a", &lim, 0, &ra));
    /* Releasing more than was taken, or an unknown key, changes nothing. */
    cf_gw_limiter_release(l, "t:a");
    cf_gw_limiter_release(l, "t:a");
    cf_gw_limiter_release(l, "t:a");
    cf_gw_limiter_release(l, "t:zzz");
    T_EQ(cf_gw_limiter_inflight(l, "t:a"), 0);
    cf_gw_limiter_free(l);
}

/* Memory stays bounded: idle keys are evicted (least recently used first), busy
 * ones are not, and if only busy ones are left a new key is refused. */
static void test_eviction(void)
{
    cf_gw_limiter *l = NULL;
    cf_gw_limit lim = {.rps = 1, .burst = 1, .concurrency = 1};
    cf_gw_limit free_lim = {.rps = 1, .burst = 1, .concurrency = 0};
    char key[32];
    uint32_t ra = 0;

    T_OK(cf_gw_limiter_new(4, &l));
    for (int i = 0; i < 100; i++) {
        T_OK(cf_fmt(key, sizeof(key), "ip:10.0.0.%d", i));
        T_OK(cf_gw_limiter_acquire(l, key, &free_lim, 0, &ra));
    }
    T_EQ(cf_gw_limiter_count(l), 4);
    /* The most recent keys survived: the last one is empty (its one token used). */
    T_ERR(cf_gw_limiter_acquire(l, "ip:10.0.0.99", &free_lim, 0, &ra), CF_E_RATE_LIMITED);
    /* Four busy keys fill the table; a fifth cannot evict any of them. */
    for (int i = 0; i < 4; i++) {
        T_OK(cf_fmt(key, sizeof(key), "t:busy%d", i));
        T_OK(cf_gw_limiter_acquire(l, key, &lim, 0, &ra));
    }
    T_EQ(cf_gw_limiter_count(l), 4);
    T_ERR(cf_gw_limiter_acquire(l, "t:new", &lim, 0, &ra), CF_E_RATE_LIMITED);
    T_ASSERT(strstr(cf_err_detail(CF_E_RATE_LIMITED), "too many clients") != NULL);
    /* Once one is done it can be evicted. */
    cf_gw_limiter_release(l, "t:busy2");
    T_OK(cf_gw_limiter_acquire(l, "t:new", &lim, 0, &ra));
    T_EQ(cf_gw_limiter_inflight(l, "t:busy2"), 0);
    T_EQ(cf_gw_limiter_inflight(l, "t:busy1"), 1);
    cf_gw_limiter_free(l);
}

/* ---- registry listing -------------------------------------------------------------------- */

static int parse_str(const char *s, cf_gw_tee_list *l, char *next)
{
    return cf_gw_registry_parse_page(s, strlen(s), l, next, CF_GW_MAX_CURSOR + 1);
}

static void test_registry_parse(void)
{
    cf_gw_tee_list l = {0};
    char next[CF_GW_MAX_CURSOR + 1];

    T_OK(parse_str("{\"tees\":[{\"id\":\"tee-b\",\"tenant\":\"t1\",\"deployment\":\"d1\",\"status\":\"active\","
                   "\"endpoint\":\"http://127.0.0.1:1234\",\"platform\":\"sev-snp\",\"public_key\":\"AAAA\","
                   "\"measurement\":\"00\",\"last_attested_at\":17,\"future_field\":{\"x\":[1]}},"
                   "{\"id\":\"tee-a\",\"deployment\":\"d2\",\"status\":\"quarantined\",\"endpoint\":null}],"
                   "\"next\":\"tee-b\"}",
                   &l, next));
    T_EQ(l.n, 2);
    T_STREQ(next, "tee-b");
    T_STREQ(l.v[0].endpoint, "http://127.0.0.1:1234");
    T_STREQ(l.v[1].tenant, ""); /* absent: routable for nobody */
    T_STREQ(l.v[1].endpoint, "");
    T_OK(parse_str("[{\"id\":\"tee-c\",\"tenant\":\"t2\",\"deployment\":\"d1\",\"status\":\"active\"}]", &l, next));
    T_EQ(l.n, 3);
    T_STREQ(next, "");
    T_OK(cf_gw_tee_list_finish(&l));
    T_STREQ(l.v[0].id, "tee-a");
    T_STREQ(l.v[2].id, "tee-c");

    /* Errors name the entry and leave the list as it was. */
    T_ERR(parse_str("{\"tees\":[{\"id\":\"x\",\"deployment\":\"d\",\"status\":\"active\"},{\"id\":\"y\"}]}", &l,
                    next),
          CF_E_PARSE);
    T_ASSERT(strstr(cf_err_detail(CF_E_PARSE), "tees[1]") != NULL);
    T_EQ(l.n, 3);
    T_ERR(parse_str("{\"tees\":[{\"id\":\"x\",\"deployment\":\"d\",\"status\":\"active\","
                    "\"endpoint\":\"ftp://h\"}]}",
                    &l, next),
          CF_E_PARSE);
    T_ASSERT(strstr(cf_err_detail(CF_E_PARSE), "endpoint") != NULL);
    T_ERR(parse_str("{\"tees\":[{\"id\":\"x\",\"deployment\":\"d\",\"status\":\"active\","
                    "\"endpoint\":\"http://h/a b\"}]}",
                    &l, next),
          CF_E_PARSE);
    T_ERR(parse_str("{\"tees\":[{\"id\":\"../x\",\"deployment\":\"d\",\"status\":\"active\"}]}", &l, next),
          CF_E_PARSE);
    T_ERR(parse_str("{\"tees\":[{\"id\":\"x\",\"deployment\":\"d\",\"status\":\"Active!\"}]}", &l, next),
          CF_E_PARSE);
    T_ERR(parse_str("{\"tees\":[{\"id\":\"x\",\"deployment\":\"d\",\"status\":7}]}", &l, next), CF_E_PARSE);
    T_ERR(parse_str("{\"tees\":[1]}", &l, next), CF_E_PARSE);
    T_ERR(parse_str("{\"teez\":[]}", &l, next), CF_E_PARSE);
    T_ERR(parse_str("\"tees\"", &l, next), CF_E_PARSE);
    T_ERR(parse_str("{\"tees\":[],\"next\":\"a b\"}", &l, next), CF_E_PARSE);
    T_ERR(parse_str("{\"tees\":[]} x", &l, next), CF_E_PARSE);
    T_EQ(l.n, 3);
    cf_gw_tee_list_free(&l);

    /* Duplicate ids are refused when the listing is finished. */
    T_OK(parse_str("[{\"id\":\"x\",\"deployment\":\"d\",\"status\":\"active\"}]", &l, next));
    T_OK(parse_str("[{\"id\":\"x\",\"deployment\":\"e\",\"status\":\"active\"}]", &l, next));
    T_ERR(cf_gw_tee_list_finish(&l), CF_E_PARSE);
    cf_gw_tee_list_free(&l);
}

static void test_registry_limit(void)
{
    cf_gw_tee_list l = {0};
    char next[CF_GW_MAX_CURSOR + 1];
    cf_buf b;

    cf_buf_init(&b, CF_GW_MAX_REGISTRY_RESPONSE);
    T_OK(cf_buf_put_str(&b, "["));
    for (int i = 0; i <= CF_GW_MAX_TEES; i++)
        T_OK(cf_buf_printf(&b, "%s{\"id\":\"t%d\",\"deployment\":\"d\",\"status\":\"active\"}", i ? "," : "", i));
    T_OK(cf_buf_put_str(&b, "]"));
    T_ERR(cf_gw_registry_parse_page(b.data, b.len, &l, next, sizeof(next)), CF_E_TOO_LARGE);
    T_EQ(l.n, 0);
    cf_gw_tee_list_free(&l);
    cf_buf_free(&b);
}

/* ---- registry view ------------------------------------------------------------------------ */

static struct {
    int calls;
    int fail;
    const char *doc;
} fk;

static int fake_fetch(void *cls, cf_gw_tee_list *ret)
{
    char next[CF_GW_MAX_CURSOR + 1];
    (void)cls;
    fk.calls++;
    if (fk.fail)
        return cf_err_set(CF_E_UNAVAILABLE, "KMS down (test)");
    CF_GUARD(cf_gw_registry_parse_page(fk.doc, strlen(fk.doc), ret, next, sizeof(next)));
    return cf_gw_tee_list_finish(ret);
}

static const char reg1[] =
    "[{\"id\":\"a\",\"tenant\":\"t1\",\"deployment\":\"d1\",\"status\":\"active\",\"endpoint\":\"http://h:1\"},"
    "{\"id\":\"b\",\"tenant\":\"t1\",\"deployment\":\"d1\",\"status\":\"active\",\"endpoint\":\"http://h:2\"},"
    "{\"id\":\"c\",\"tenant\":\"t1\",\"deployment\":\"d1\",\"status\":\"quarantined\",\"endpoint\":\"http://h:3\"},"
    "{\"id\":\"d\",\"tenant\":\"t2\",\"deployment\":\"d1\",\"status\":\"active\",\"endpoint\":\"http://h:4\"},"
    "{\"id\":\"e\",\"tenant\":\"t1\",\"deployment\":\"d9\",\"status\":\"active\",\"endpoint\":\"http://h:5\"},"
    "{\"id\":\"f\",\"tenant\":\"t1\",\"deployment\":\"d1\",\"status\":\"active\"}]";

static bool serves_d1(void *cls, const char *dep)
{
    (void)cls;
    return strcmp(dep, "d1") == 0;
}

static void test_registry_view(void)
{
    cf_gw_registry *r = NULL;
    cf_gw_tee t, out[4];
    size_t n = 0;
    bool unhealthy = false;

    memset(&fk, 0, sizeof(fk));
    fk.doc = reg1;
    T_OK(cf_gw_registry_new(fake_fetch, NULL, 60000, 1000, &r));
    /* Fetched once, then served from the cache within the TTL. */
    T_OK(cf_gw_registry_get(r, "a", &t));
    T_STREQ(t.endpoint, "http://h:1");
    T_ERR(cf_gw_registry_get(r, "zz", &t), CF_E_NOT_FOUND);
    T_EQ(fk.calls, 1);
    /* A forced refresh right after a fetch is throttled... */
    T_OK(cf_gw_registry_sync(r, true));
    T_EQ(fk.calls, 1);
    /* ...and happens once the throttle interval has passed. */
    sleep_ms(CF_GW_REGISTRY_MIN_REFRESH_MS + 20);
    T_OK(cf_gw_registry_sync(r, true));
    T_EQ(fk.calls, 2);

    /* Candidates: t1's active TEEs with an endpoint in a deployment that serves. */
    T_OK(cf_gw_registry_pick(r, "t1", serves_d1, NULL, out, 4, &n, &unhealthy));
    T_EQ(n, 2);
    T_ASSERT((strcmp(out[0].id, "a") == 0 && strcmp(out[1].id, "b") == 0) ||
             (strcmp(out[0].id, "b") == 0 && strcmp(out[1].id, "a") == 0));
    T_ASSERT(!unhealthy);
    /* Least outstanding first. */
    cf_gw_registry_begin(r, "a");
    for (int i = 0; i < 4; i++) {
        T_OK(cf_gw_registry_pick(r, "t1", serves_d1, NULL, out, 1, &n, NULL));
        T_EQ(n, 1);
        T_STREQ(out[0].id, "b");
    }
    T_EQ(cf_gw_registry_outstanding(r, "a"), 1);
    cf_gw_registry_end(r, "a");
    cf_gw_registry_end(r, "a"); /* never below zero */
    T_EQ(cf_gw_registry_outstanding(r, "a"), 0);
    /* Equal load: the first choice rotates. */
    {
        int seen_a = 0, seen_b = 0;
        for (int i = 0; i < 4; i++) {
            T_OK(cf_gw_registry_pick(r, "t1", serves_d1, NULL, out, 1, &n, NULL));
            seen_a += strcmp(out[0].id, "a") == 0;
            seen_b += strcmp(out[0].id, "b") == 0;
        }
        T_EQ(seen_a, 2);
        T_EQ(seen_b, 2);
    }
    /* Unhealthy TEEs leave rotation for a while, then come back. */
    cf_gw_registry_mark_unhealthy(r, "a");
    T_ASSERT(cf_gw_registry_is_unhealthy(r, "a"));
    T_OK(cf_gw_registry_pick(r, "t1", serves_d1, NULL, out, 4, &n, &unhealthy));
    T_EQ(n, 1);
    T_STREQ(out[0].id, "b");
    cf_gw_registry_mark_unhealthy(r, "b");
    T_OK(cf_gw_registry_pick(r, "t1", serves_d1, NULL, out, 4, &n, &unhealthy));
    T_EQ(n, 0);
    T_ASSERT(unhealthy);
    /* The marks survive a refresh of the view. */
    sleep_ms(CF_GW_REGISTRY_MIN_REFRESH_MS + 20);
    T_OK(cf_gw_registry_sync(r, true));
    T_ASSERT(cf_gw_registry_is_unhealthy(r, "b"));
    sleep_ms(800);
    T_ASSERT(!cf_gw_registry_is_unhealthy(r, "a"));
    T_OK(cf_gw_registry_pick(r, "t2", serves_d1, NULL, out, 4, &n, &unhealthy));
    T_EQ(n, 1);
    T_STREQ(out[0].id, "d");
    T_OK(cf_gw_registry_pick(r, "t3", serves_d1, NULL, out, 4, &n, &unhealthy));
    T_EQ(n, 0);
    T_ASSERT(!unhealthy);
    cf_gw_registry_free(r);
}

/* Fail closed: once the TTL has passed, a registry that cannot be read refuses
 * every lookup rather than routing on the stale view. */
static void test_registry_fail_closed(void)
{
    cf_gw_registry *r = NULL;
    cf_gw_tee t;

    memset(&fk, 0, sizeof(fk));
    fk.doc = reg1;
    fk.fail = 1;
    T_OK(cf_gw_registry_new(fake_fetch, NULL, 1000, 1000, &r));
    T_ERR(cf_gw_registry_get(r, "a", &t), CF_E_UNAVAILABLE);
    T_ASSERT(strstr(cf_err_detail(CF_E_UNAVAILABLE), "KMS down") != NULL);
    /* Right after a failed attempt no new fetch is made (throttle) but the answer stays no. */
    T_ERR(cf_gw_registry_sync(r, false), CF_E_UNAVAILABLE);
    T_EQ(fk.calls, 1);
    fk.fail = 0;
    sleep_ms(CF_GW_REGISTRY_MIN_REFRESH_MS + 20);
    T_OK(cf_gw_registry_get(r, "a", &t));
    T_EQ(fk.calls, 2);
    fk.fail = 1;
    /* Within the TTL the view is used without asking the KMS. */
    T_OK(cf_gw_registry_get(r, "b", &t));
    T_EQ(fk.calls, 2);
    sleep_ms(1100);
    T_ERR(cf_gw_registry_get(r, "a", &t), CF_E_UNAVAILABLE);
    cf_gw_registry_free(r);
}

/* ---- metrics ------------------------------------------------------------------------------ */

static void test_metrics(void)
{
    static const char *const routes[] = {"/a", "/b/{x}"};
    static const char *const ups[] = {"kms", "tee"};
    cf_gw_metrics *m = NULL;
    cf_buf b;

    T_OK(cf_gw_metrics_new(routes, 2, ups, 2, &m));
    cf_gw_metrics_observe(m, "/a", 200, 0.001);
    cf_gw_metrics_observe(m, "/a", 200, 0.2);
    cf_gw_metrics_observe(m, "/a", 404, 20.0);
    cf_gw_metrics_observe(m, "/nope", 500, 0.01);
    cf_gw_metrics_observe(m, "/a", 0, 0.01); /* no response: not counted */
    cf_gw_metrics_upstream_error(m, "tee");
    cf_gw_metrics_upstream_error(m, "tee");
    cf_gw_metrics_upstream_error(m, "weird");
    cf_gw_metrics_rate_limited(m);
    for (int i = 0; i < 30; i++)
        cf_gw_metrics_observe(m, "/b/{x}", 200 + i, 0.0);
    T_EQ(cf_gw_metrics_requests(m, "/a", 200), 2);
    T_EQ(cf_gw_metrics_requests(m, "/nope", 500), 1); /* counted as "other" */
    cf_buf_init(&b, 1 << 20);
    T_OK(cf_gw_metrics_render(m, &b));
    T_OK(cf_buf_nul_terminate(&b));
    const char *t = (const char *)b.data;
    T_ASSERT(strstr(t, "# TYPE coffer_gateway_requests_total counter\n") != NULL);
    T_ASSERT(strstr(t, "\ncoffer_gateway_requests_total{route=\"/a\",code=\"200\"} 2\n") != NULL);
    T_ASSERT(strstr(t, "\ncoffer_gateway_requests_total{route=\"/a\",code=\"404\"} 1\n") != NULL);
    T_ASSERT(strstr(t, "\ncoffer_gateway_requests_total{route=\"other\",code=\"500\"} 1\n") != NULL);
    /* Histogram buckets are cumulative and end in +Inf = count. */
    T_ASSERT(strstr(t, "\ncoffer_gateway_request_duration_seconds_bucket{route=\"/a\",le=\"0.005\"} 1\n") != NULL);
    T_ASSERT(strstr(t, "\ncoffer_gateway_request_duration_seconds_bucket{route=\"/a\",le=\"0.25\"} 2\n") != NULL);
    T_ASSERT(strstr(t, "\ncoffer_gateway_request_duration_seconds_bucket{route=\"/a\",le=\"10\"} 2\n") != NULL);
    T_ASSERT(strstr(t, "\ncoffer_gateway_request_duration_seconds_bucket{route=\"/a\",le=\"+Inf\"} 3\n") != NULL);
    T_ASSERT(strstr(t, "\ncoffer_gateway_request_duration_seconds_count{route=\"/a\"} 3\n") != NULL);
    T_ASSERT(strstr(t, "\ncoffer_gateway_request_duration_seconds_sum{route=\"/a\"} 20.201000\n") != NULL);
    T_ASSERT(strstr(t, "\ncoffer_gateway_upstream_errors_total{upstream=\"tee\"} 2\n") != NULL);
    T_ASSERT(strstr(t, "\ncoffer_gateway_upstream_errors_total{upstream=\"kms\"} 0\n") != NULL);
    T_ASSERT(strstr(t, "\ncoffer_gateway_upstream_errors_total{upstream=\"other\"} 1\n") != NULL);
    T_ASSERT(strstr(t, "\ncoffer_gateway_rate_limited_total 1\n") != NULL);
    /* Status codes per route are bounded: the rest is "other". */
    T_ASSERT(strstr(t, "{route=\"/b/{x}\",code=\"other\"} 6\n") != NULL);
    T_ASSERT(t[b.len - 1] == '\n');
    cf_buf_free(&b);
    cf_gw_metrics_free(m);
}

/* ---- parsers ------------------------------------------------------------------------------- */

static int sreq(const char *s, char *job, uint8_t nonce[32])
{
    return gw_session_request_parse(s, strlen(s), job, nonce);
}

static void test_session_request(void)
{
    char job[CF_NAME_MAX_LEN + 1];
    uint8_t nonce[32];
    const char *n64 = "00112233445566778899aabbccddeeff00112233445566778899AABBCCDDEEFF";
    char doc[256];

    T_OK(cf_fmt(doc, sizeof(doc), "{\"job\":\"word-count.v2\",\"nonce\":\"%s\"}", n64));
    T_OK(sreq(doc, job, nonce));
    T_STREQ(job, "word-count.v2");
    T_EQ(nonce[0], 0x00);
    T_EQ(nonce[31], 0xff);
    T_OK(cf_fmt(doc, sizeof(doc), "{\"job\":\"echo\",\"nonce\":\"%s\",\"extra\":1}", n64));
    T_ERR(sreq(doc, job, nonce), CF_E_PARSE);
    T_OK(cf_fmt(doc, sizeof(doc), "{\"job\":\"echo\",\"job\":\"x\",\"nonce\":\"%s\"}", n64));
    T_FAILS(sreq(doc, job, nonce));
    T_OK(cf_fmt(doc, sizeof(doc), "{\"job\":\"-echo\",\"nonce\":\"%s\"}", n64));
    T_ERR(sreq(doc, job, nonce), CF_E_PARSE);
    T_OK(cf_fmt(doc, sizeof(doc), "{\"job\":\"a/b\",\"nonce\":\"%s\"}", n64));
    T_ERR(sreq(doc, job, nonce), CF_E_PARSE);
    T_OK(cf_fmt(doc, sizeof(doc), "{\"job\":7,\"nonce\":\"%s\"}", n64));
    T_ERR(sreq(doc, job, nonce), CF_E_PARSE);
    T_FAILS(sreq("{\"job\":\"echo\",\"nonce\":\"0011\"}", job, nonce));
    T_FAILS(sreq("{\"job\":\"echo\",\"nonce\":\"zz112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\"}",
                 job, nonce));
    T_FAILS(sreq("{\"job\":\"echo\"}", job, nonce));
    T_FAILS(sreq("[]", job, nonce));
    T_FAILS(sreq("", job, nonce));
}

static void test_evidence_answer(void)
{
    gw_evidence e;
    const char *ok = "{\"tee_id\":\"tee-a\",\"public_key\":\"pk\",\"deployment\":\"d1\",\"build_hash\":\"sha256:00\","
                     "\"evidence\":{\"platform\":\"sev-snp\",\"report\":\"r\",\"cert\":\"c\"},\"later\":true}";

    T_OK(gw_evidence_parse(ok, strlen(ok), "tee-a", "d1", &e));
    T_STREQ(e.public_key, "pk");
    T_STREQ(e.build_hash, "sha256:00");
    T_ASSERT(json_is_object(e.evidence));
    json_decref(e.doc);
    T_OK(gw_evidence_parse(ok, strlen(ok), NULL, NULL, &e));
    json_decref(e.doc);
    /* Another TEE, or another deployment, answering at this endpoint. */
    T_ERR(gw_evidence_parse(ok, strlen(ok), "tee-b", "d1", &e), CF_E_VERIFY);
    T_ERR(gw_evidence_parse(ok, strlen(ok), "tee-a", "d2", &e), CF_E_VERIFY);
    {
        const char *bad[] = {
            "{\"tee_id\":\"tee-a\",\"public_key\":\"pk\",\"deployment\":\"d1\",\"build_hash\":\"h\",\"evidence\":[]}",
            "{\"tee_id\":\"tee-a\",\"public_key\":\"p k\",\"deployment\":\"d1\",\"build_hash\":\"h\",\"evidence\":{}}",
            "{\"tee_id\":\"tee-a\",\"public_key\":\"\",\"deployment\":\"d1\",\"build_hash\":\"h\",\"evidence\":{}}",
            "{\"tee_id\":\"tee/a\",\"public_key\":\"pk\",\"deployment\":\"d1\",\"build_hash\":\"h\",\"evidence\":{}}",
            "{\"public_key\":\"pk\",\"deployment\":\"d1\",\"build_hash\":\"h\",\"evidence\":{}}",
            "{\"tee_id\":\"tee-a\",\"public_key\":\"pk\",\"deployment\":\"d1\",\"evidence\":{}}",
            "not json",
        };
        for (size_t i = 0; i < CF_ARRAY_LEN(bad); i++)
            T_FAILS(gw_evidence_parse(bad[i], strlen(bad[i]), NULL, NULL, &e));
    }
}

static void test_attest_answer(void)
{
    bool v = false;
    char *tok = NULL;
    const char *yes = "{\"verified\":true,\"result\":{\"a\":1},\"token\":\"aGVhZA.Ym9keQ.c2ln\"}";
    const char *no = "{\"verified\":false,\"result\":{}}";

    T_OK(gw_attest_parse(yes, strlen(yes), &v, &tok));
    T_ASSERT(v);
    T_STREQ(tok, "aGVhZA.Ym9keQ.c2ln");
    free(tok);
    tok = NULL;
    T_OK(gw_attest_parse(no, strlen(no), &v, &tok));
    T_ASSERT(!v && tok == NULL);
    T_FAILS(gw_attest_parse("{\"verified\":true}", 17, &v, &tok));
    T_FAILS(gw_attest_parse("{\"verified\":\"yes\"}", 18, &v, &tok));
    T_FAILS(gw_attest_parse("{\"verified\":true,\"token\":\"a b\"}", 31, &v, &tok));
    T_FAILS(gw_attest_parse("{\"verified\":true,\"token\":\"\"}", 28, &v, &tok));
    T_ASSERT(tok == NULL);
}

int main(void)
{
    T_RUN(test_bucket);
    T_RUN(test_concurrency);
    T_RUN(test_eviction);
    T_RUN(test_registry_parse);
    T_RUN(test_registry_limit);
    T_RUN(test_registry_view);
    T_RUN(test_registry_fail_closed);
    T_RUN(test_metrics);
    T_RUN(test_session_request);
    T_RUN(test_evidence_answer);
    T_RUN(test_attest_answer);
    return t_done();
}
