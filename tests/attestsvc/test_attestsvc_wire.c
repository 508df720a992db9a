/*
 * Wire formats of the attestation service (attestsvc/wire.h) — TEE evidence
 * answers, KMS registry listings and nonces, public API requests — and the
 * per-source rate limiter (attestsvc/ratelimit.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attestsvc/ratelimit.h"
#include "attestsvc/wire.h"
#include "base/buf.h"
#include "base/err.h"
#include "base/json.h"
#include "base/parse.h"
#include "test.h"

#define KEY_B64 "CQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQk" /* 32 x 0x09 */
#define KEY_HEX "0909090909090909090909090909090909090909090909090909090909090909"
#define BH "sha256:2222222222222222222222222222222222222222222222222222222222222222"
#define MEAS "aa00000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000bb"
#define NONCE "0101010101010101010101010101010101010101010101010101010101010101"
/* A string literal and its length. */
#define LIT(s) s, strlen(s)
#define EV "{\"platform\":\"sev-snp\",\"report\":\"AQID\",\"cert\":\"BAUG\"}"

static int parse_tee(const char *s, cf_attest_tee_evidence **ret)
{
    cf_attest_tee_evidence *t = calloc(1, sizeof(*t));
    int rc;
    if (t == NULL)
        abort();
    rc = cf_attest_tee_evidence_parse(s, strlen(s), t);
    *ret = t;
    return rc;
}

static void test_names_and_endpoints(void)
{
    T_ASSERT(cf_attest_id_valid("tee_0123abcd"));
    T_ASSERT(cf_attest_id_valid("a.b-c_d"));
    T_ASSERT(!cf_attest_id_valid(""));
    T_ASSERT(!cf_attest_id_valid("-x"));
    T_ASSERT(!cf_attest_id_valid("a/b"));
    T_ASSERT(!cf_attest_id_valid("a b"));
    T_ASSERT(!cf_attest_id_valid("a%2f"));
    T_ASSERT(cf_attest_endpoint_valid("http://127.0.0.1:8080"));
    T_ASSERT(cf_attest_endpoint_valid("https://tee-1.internal/base"));
    T_ASSERT(!cf_attest_endpoint_valid("ftp://x"));
    T_ASSERT(!cf_attest_endpoint_valid("http://"));
    T_ASSERT(!cf_attest_endpoint_valid("http://x/"));
    T_ASSERT(!cf_attest_endpoint_valid("http://x y"));
    T_ASSERT(!cf_attest_endpoint_valid("http://x\"y"));
}

static void test_evidence_object(void)
{
    cf_attest_evidence *e = calloc(1, sizeof(*e));
    json_t *o = NULL, *back;

    T_ASSERT(e != NULL);
    T_OK(cf_json_parse_object(EV, strlen(EV), 4096, &o));
    T_OK(cf_attest_evidence_from_json(o, e));
    T_EQ(e->report_len, 3);
    T_EQ(e->cert_len, 3);
    T_EQ(e->report[2], 3);
    back = cf_attest_evidence_to_json(e);
    T_STREQ(json_string_value(json_object_get(back, "cert")), "BAUG");
    json_decref(back);
    json_decref(o);
    {
        static const char *const bad[] = {
            "{\"platform\":\"sev-snp\",\"report\":\"AQID\"}",                            /* no cert */
            "{\"platform\":\"sev-snp\",\"report\":\"AQID\",\"cert\":\"BAUG\",\"x\":1}",  /* unknown field */
            "{\"platform\":\"sev-snp\",\"report\":\"AQ+D\",\"cert\":\"BAUG\"}",          /* not base64url */
            "{\"platform\":\"sev-snp\",\"report\":\"AQID=\",\"cert\":\"BAUG\"}",         /* padding */
            "{\"platform\":\"sev-snp\",\"report\":\"\",\"cert\":\"BAUG\"}",              /* empty */
            "{\"platform\":1,\"report\":\"AQID\",\"cert\":\"BAUG\"}",                    /* type */
        };
        for (size_t i = 0; i < CF_ARRAY_LEN(bad); i++) {
            T_OK(cf_json_parse_object(bad[i], strlen(bad[i]), 4096, &o));
            T_ASSERT_MSG(cf_attest_evidence_from_json(o, e) < 0, "accepted %s", bad[i]);
            json_decref(o);
        }
    }
    {
        const char *tdx = "{\"platform\":\"tdx\",\"report\":\"AQID\",\"cert\":\"BAUG\"}";
        T_OK(cf_json_parse_object(tdx, strlen(tdx), 4096, &o));
    }
    T_ERR(cf_attest_evidence_from_json(o, e), CF_E_UNSUPPORTED);
    json_decref(o);
    /* A certificate beyond CF_CERT_MAX_BYTES. */
    {
        cf_buf big;
        char *b64;
        uint8_t *raw = calloc(1, CF_CERT_MAX_BYTES + 1);
        T_ASSERT(raw != NULL);
        b64 = cf_b64url_encode_alloc(raw, CF_CERT_MAX_BYTES + 1);
        cf_buf_init(&big, 64 * 1024);
        T_OK(cf_buf_printf(&big, "{\"platform\":\"sev-snp\",\"report\":\"AQID\",\"cert\":\"%s\"}", b64));
        T_OK(cf_json_parse_object(big.data, big.len, 64 * 1024, &o));
        T_FAILS(cf_attest_evidence_from_json(o, e));
        json_decref(o);
        cf_buf_free(&big);
        free(b64);
        free(raw);
    }
    free(e);
}

static void test_tee_answer(void)
{
    cf_attest_tee_evidence *t = NULL;
    char doc[1024];

    snprintf(doc, sizeof(doc),
             "{\"tee_id\":\"tee_1\",\"public_key\":\"" KEY_B64 "\",\"deployment\":\"demo\",\"build_hash\":\"%s\","
             "\"evidence\":" EV ",\"runtime_version\":\"1.2\"}",
             "sha256:2222222222222222222222222222222222222222222222222222222222222222");
    T_OK(parse_tee(doc, &t)); /* an extra member of the TEE's answer is ignored */
    T_STREQ(t->tee_id, "tee_1");
    T_STREQ(t->deployment, "demo");
    T_STREQ(t->build_hash, BH);
    T_EQ(t->public_key[31], 9);
    T_EQ(t->evidence.report_len, 3);
    free(t);
    /* upper-case hex in the build hash is normalised */
    T_OK(parse_tee("{\"tee_id\":\"tee_1\",\"public_key\":\"" KEY_B64 "\",\"deployment\":\"demo\",\"build_hash\":"
                   "\"sha256:ABABABABABABABABABABABABABABABABABABABABABABABABABABABABABABABAB\",\"evidence\":" EV "}",
                   &t));
    T_STREQ(t->build_hash, "sha256:abababababababababababababababababababababababababababababababab");
    free(t);
    {
        static const char *const bad[] = {
            "{\"public_key\":\"" KEY_B64 "\",\"deployment\":\"demo\",\"build_hash\":\"" BH "\",\"evidence\":" EV "}",
            "{\"tee_id\":\"tee_1\",\"public_key\":\"CQkJ\",\"deployment\":\"demo\",\"build_hash\":\"" BH
            "\",\"evidence\":" EV "}",
            "{\"tee_id\":\"tee_1\",\"public_key\":\"" KEY_HEX "\",\"deployment\":\"demo\",\"build_hash\":\"" BH
            "\",\"evidence\":" EV "}",
            "{\"tee_id\":\"tee_1\",\"public_key\":\"" KEY_B64 "\",\"deployment\":\"demo\",\"build_hash\":\"sha1:00\","
            "\"evidence\":" EV "}",
            "{\"tee_id\":\"../x\",\"public_key\":\"" KEY_B64 "\",\"deployment\":\"demo\",\"build_hash\":\"" BH
            "\",\"evidence\":" EV "}",
            "{\"tee_id\":\"tee_1\",\"public_key\":\"" KEY_B64 "\",\"deployment\":\"demo\",\"build_hash\":\"" BH
            "\",\"evidence\":{\"platform\":\"sev-snp\",\"report\":\"AQID\",\"cert\":\"BAUG\",\"more\":1}}",
            "{\"tee_id\":\"tee_1\",\"tee_id\":\"tee_2\",\"public_key\":\"" KEY_B64 "\",\"deployment\":\"demo\","
            "\"build_hash\":\"" BH "\",\"evidence\":" EV "}",
            "[]",
            "{\"tee_id\":\"tee_1\"} trailing",
        };
        for (size_t i = 0; i < CF_ARRAY_LEN(bad); i++) {
            T_ASSERT_MSG(parse_tee(bad[i], &t) < 0, "accepted #%zu", i);
            free(t);
        }
    }
}

static void test_registry_listing(void)
{
    cf_attest_tee_list l = {0};
    char next[CF_ATTESTSVC_MAX_CURSOR + 1];
    const char *page1 =
        "{\"tees\":[{\"id\":\"tee_a\",\"tenant\":\"t1\",\"deployment\":\"demo\",\"platform\":\"sev-snp\","
        "\"public_key\":\"" KEY_B64 "\",\"measurement\":\"" MEAS "\",\"status\":\"active\","
        "\"last_attested_at\":1700000000,\"endpoint\":\"http://127.0.0.1:9000\",\"registered_at\":5},"
        "{\"id\":\"tee_b\",\"deployment\":\"demo\",\"public_key\":\"" KEY_HEX "\",\"status\":\"quarantined\","
        "\"last_attested_at\":\"2026-01-01T00:00:00.250Z\",\"measurement\":null}],\"next\":\"c 1\"}";
    const char *page2 = "[{\"id\":\"tee_c\",\"deployment\":\"other\",\"status\":\"active\"}]";

    {
        int rc = cf_attest_registry_parse_page(page1, strlen(page1), &l, next, sizeof(next));
        T_ASSERT_MSG(rc == 0, "page1: %s", cf_err_detail(rc));
    }
    T_EQ(l.n, 2);
    T_STREQ(next, "c 1");
    T_STREQ(l.v[0].endpoint, "http://127.0.0.1:9000");
    T_ASSERT(l.v[0].has_public_key && l.v[0].has_measurement);
    T_EQ(l.v[0].measurement[47], 0xbb);
    T_EQ(l.v[0].last_attested_at, 1700000000);
    T_ASSERT(l.v[1].has_public_key && l.v[1].public_key[0] == 9); /* hex accepted from the registry */
    T_ASSERT(!l.v[1].has_measurement);
    T_EQ(l.v[1].last_attested_at, 1767225600);
    T_STREQ(l.v[1].tenant, "");
    T_OK(cf_attest_registry_parse_page(page2, strlen(page2), &l, next, sizeof(next)));
    T_EQ(l.n, 3);
    T_STREQ(next, "");
    /* A duplicate across pages fails and leaves the list as it was. */
    T_FAILS(cf_attest_registry_parse_page(page2, strlen(page2), &l, next, sizeof(next)));
    T_EQ(l.n, 3);
    {
        static const char *const bad[] = {
            "{\"tees\":[{\"deployment\":\"demo\",\"status\":\"active\"}]}",                     /* no id */
            "{\"tees\":[{\"id\":\"x\",\"deployment\":\"demo\",\"status\":\"active\",\"measurement\":\"00\"}]}",
            "{\"tees\":[{\"id\":\"x\",\"deployment\":\"demo\",\"status\":\"active\",\"endpoint\":\"file:///x\"}]}",
            "{\"tees\":[{\"id\":\"x\",\"deployment\":\"demo\",\"status\":\"active\",\"last_attested_at\":-5}]}",
            "{\"tees\":[{\"id\":\"x\",\"deployment\":\"demo\",\"status\":\"active\",\"last_attested_at\":\"soon\"}]}",
            "{\"tees\":[{\"id\":\"x y\",\"deployment\":\"demo\",\"status\":\"active\"}]}",
            "{\"tees\":{}}",
            "{\"tees\":[],\"next\":\"a\\nb\"}",
            "\"tees\"",
        };
        cf_attest_tee_list e = {0};
        for (size_t i = 0; i < CF_ARRAY_LEN(bad); i++) {
            T_ASSERT_MSG(cf_attest_registry_parse_page(bad[i], strlen(bad[i]), &e, next, sizeof(next)) < 0,
                         "accepted #%zu", i);
            T_EQ(e.n, 0);
        }
        cf_attest_tee_list_free(&e);
        T_ERR(cf_attest_registry_parse_page(LIT("[]"), &e, next, 8), CF_E_INVAL);
    }
    cf_attest_tee_list_free(&l);
}

static void test_registry_bound(void)
{
    cf_attest_tee_list l = {0};
    char next[CF_ATTESTSVC_MAX_CURSOR + 1];
    cf_buf b;

    cf_buf_init(&b, 1u << 20);
    T_OK(cf_buf_put_str(&b, "["));
    for (unsigned i = 0; i <= CF_ATTESTSVC_MAX_TEES; i++)
        T_OK(cf_buf_printf(&b, "%s{\"id\":\"t%u\",\"deployment\":\"d\",\"status\":\"active\"}", i ? "," : "", i));
    T_OK(cf_buf_put_str(&b, "]"));
    T_ERR(cf_attest_registry_parse_page(b.data, b.len, &l, next, sizeof(next)), CF_E_TOO_LARGE);
    T_EQ(l.n, 0);
    cf_buf_free(&b);
    cf_attest_tee_list_free(&l);
}

static void test_kms_nonce_and_report(void)
{
    uint8_t n[32];
    cf_buf out;
    json_t *o = NULL;
    cf_attest_evidence *e = calloc(1, sizeof(*e));

    T_ASSERT(e != NULL);
    {
        const char *d = "{\"nonce\":\"" NONCE "\",\"expires_at\":1700000060}";
        T_OK(cf_attest_kms_nonce_parse(d, strlen(d), n));
    }
    T_EQ(n[0], 1);
    T_OK(cf_attest_kms_nonce_parse("{\"nonce\":\"" NONCE "\",\"expires_at\":\"2026-01-01T00:00:00Z\",\"x\":1}",
                                   strlen("{\"nonce\":\"" NONCE "\",\"expires_at\":\"2026-01-01T00:00:00Z\",\"x\":1}"),
                                   n));
    T_FAILS(cf_attest_kms_nonce_parse(LIT("{\"nonce\":\"0101\"}"), n));
    T_FAILS(cf_attest_kms_nonce_parse(LIT("{}"), n));
    memcpy(e->platform, "sev-snp", 8);
    e->report_len = 3;
    e->cert_len = 1;
    e->report[0] = 0xfb;
    cf_buf_init(&out, 4096);
    T_OK(cf_attest_kms_report_build(n, e, &out));
    T_OK(cf_json_parse_object(out.data, out.len, 4096, &o));
    T_STREQ(json_string_value(json_object_get(o, "nonce")), NONCE);
    T_EQ(json_object_size(o), 2);
    T_OK(cf_attest_evidence_from_json(json_object_get(o, "evidence"), e));
    T_EQ(e->report[0], 0xfb);
    json_decref(o);
    cf_buf_reset(&out);
    T_OK(cf_attest_tee_request_build(n, &out));
    T_STREQ((const char *)out.data, "{\"nonce\":\"" NONCE "\"}");
    cf_buf_free(&out);
    free(e);
}

static void test_api_requests(void)
{
    cf_attest_verify_request v;
    cf_attest_evidence_request *r = calloc(1, sizeof(*r));
    const char *ok1 = "{\"evidence\":" EV ",\"deployment\":\"demo\",\"nonce\":\"" NONCE "\",\"public_key\":\"" KEY_B64
                      "\"}";

    T_ASSERT(r != NULL);
    T_OK(cf_attest_verify_request_parse(LIT("{\"deployment_id\":\"demo\"}"), &v));
    T_STREQ(v.deployment, "demo");
    T_ASSERT(!v.has_nonce);
    T_OK(cf_attest_verify_request_parse(LIT("{\"deployment_id\":\"demo\",\"nonce\":\"" NONCE "\"}"), &v));
    T_ASSERT(v.has_nonce && v.nonce[31] == 1);
    T_FAILS(cf_attest_verify_request_parse(LIT("{\"deployment_id\":\"demo\",\"x\":1}"), &v));
    T_FAILS(cf_attest_verify_request_parse(LIT("{\"deployment_id\":\"de mo\"}"), &v));
    T_FAILS(cf_attest_verify_request_parse(LIT("{\"deployment_id\":\"demo\",\"nonce\":null}"), &v));
    T_FAILS(cf_attest_verify_request_parse(LIT("{}"), &v));
    T_OK(cf_attest_evidence_request_parse(ok1, strlen(ok1), r));
    T_STREQ(r->deployment, "demo");
    T_EQ(r->public_key_len, 32);
    T_ASSERT(r->has_nonce);
    T_OK(cf_attest_evidence_request_parse("{\"evidence\":" EV "}", strlen("{\"evidence\":" EV "}"), r));
    T_ASSERT(!r->has_nonce && r->public_key_len == 0 && r->deployment[0] == 0);
    {
        const char *nokey = "{\"evidence\":" EV ",\"nonce\":\"" NONCE "\"}";
        const char *nononce = "{\"evidence\":" EV ",\"public_key\":\"" KEY_B64 "\"}";
        const char *extra = "{\"evidence\":" EV ",\"verbose\":true}";
        T_ERR(cf_attest_evidence_request_parse(nokey, strlen(nokey), r), CF_E_PARSE);
        T_ERR(cf_attest_evidence_request_parse(nononce, strlen(nononce), r), CF_E_PARSE);
        T_ERR(cf_attest_evidence_request_parse(extra, strlen(extra), r), CF_E_PARSE);
    }
    free(r);
}

static void test_ratelimit(void)
{
    cf_ratelimit *rl = NULL;
    uint32_t retry = 0;
    int allowed = 0;
    char src[32];

    T_ERR(cf_ratelimit_new(0, 5, &rl), CF_E_INVAL);
    T_OK(cf_ratelimit_new(2, 5, &rl));
    for (int i = 0; i < 10; i++)
        allowed += cf_ratelimit_take(rl, "192.0.2.1", 1000, &retry);
    T_EQ(allowed, 5); /* the burst */
    T_ASSERT(retry >= 1);
    /* another source has its own bucket */
    T_ASSERT(cf_ratelimit_take(rl, "192.0.2.2", 1000, NULL));
    /* 2 per second: after 1 s, two more */
    allowed = 0;
    for (int i = 0; i < 5; i++)
        allowed += cf_ratelimit_take(rl, "192.0.2.1", 2000, NULL);
    T_EQ(allowed, 2);
    /* the bucket never holds more than the burst, however long the pause */
    allowed = 0;
    for (int i = 0; i < 10; i++)
        allowed += cf_ratelimit_take(rl, "192.0.2.1", 1000000, NULL);
    T_EQ(allowed, 5);
    /* Many sources: memory is fixed, sources keep working, a new source gets its burst. */
    for (int i = 0; i < 50000; i++) {
        snprintf(src, sizeof(src), "10.%d.%d.%d", (i >> 16) & 255, (i >> 8) & 255, i & 255);
        (void)cf_ratelimit_take(rl, src, 2000000 + (uint64_t)i, NULL);
    }
    allowed = 0;
    for (int i = 0; i < 10; i++)
        allowed += cf_ratelimit_take(rl, "198.51.100.7", 3000000, NULL);
    T_EQ(allowed, 5);
    cf_ratelimit_free(rl);
}

int main(void)
{
    T_RUN(test_names_and_endpoints);
    T_RUN(test_evidence_object);
    T_RUN(test_tee_answer);
    T_RUN(test_registry_listing);
    T_RUN(test_registry_bound);
    T_RUN(test_kms_nonce_and_report);
    T_RUN(test_api_requests);
    T_RUN(test_ratelimit);
    return t_done();
}
