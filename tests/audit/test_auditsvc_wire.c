/*
 * The audit service's wire formats (src/audit/wire.h): query parameters of
 * every GET endpoint (accepted forms, defaults, and each refusal: unknown or
 * repeated parameters, bad numbers, ranges, times, control characters), and
 * the entry JSON (exact bytes as text, base64url for bytes that are not UTF-8
 * text, proofs).
 */
#include <string.h>

#include "audit/wire.h"
#include "auditlog/sth.h"
#include "base/err.h"
#include "base/json.h"
#include "base/limits.h"
#include "base/parse.h"
#include "test.h"

static cf_http_query g_q;

static const cf_http_query *q(const char *s)
{
    if (cf_http_query_parse(s, strlen(s), &g_q) != 0)
        abort();
    return &g_q;
}

static void test_entries_query(void)
{
    cf_auditsvc_entries_q e;

    T_OK(cf_auditsvc_q_entries(q(""), &e));
    T_ASSERT(e.tenant == NULL && e.action == NULL && e.tee_id == NULL);
    T_ASSERT(!e.has_since && !e.has_until && !e.has_after && !e.has_tree_size);
    T_EQ(e.limit, CF_AUDITSVC_PAGE_DEFAULT);

    T_OK(cf_auditsvc_q_entries(q("tenant=acme&action=kms.otk.release&tee_id=tee%2F1&since=2024-05-01T12:00:00Z"
                                 "&until=1714564801000&after=17&limit=1000&tree_size=40"),
                               &e));
    T_STREQ(e.tenant, "acme");
    T_STREQ(e.action, "kms.otk.release");
    T_STREQ(e.tee_id, "tee/1");
    T_ASSERT(e.has_since && e.has_until);
    T_EQ(e.since_ms, 1714564800000LL);
    T_EQ(e.until_ms, 1714564801000LL);
    T_ASSERT(e.has_after);
    T_EQ(e.after, 17);
    T_EQ(e.limit, 1000);
    T_ASSERT(e.has_tree_size);
    T_EQ(e.tree_size, 40);
    T_OK(cf_auditsvc_q_entries(q("after=0&limit=1"), &e));
    T_ASSERT(e.has_after);
    T_EQ(e.after, 0);

    /* refusals */
    T_ERR(cf_auditsvc_q_entries(q("bogus=1"), &e), CF_E_PARSE);
    T_STREQ(cf_err_detail(CF_E_PARSE), "unknown query parameter 'bogus'");
    T_ERR(cf_auditsvc_q_entries(q("tenant=a&tenant=b"), &e), CF_E_PARSE);
    T_ASSERT(strstr(cf_err_detail(CF_E_PARSE), "more than once") != NULL);
    T_ERR(cf_auditsvc_q_entries(q("tenant="), &e), CF_E_PARSE);
    T_ERR(cf_auditsvc_q_entries(q("tenant=a%01b"), &e), CF_E_PARSE);
    T_ASSERT(strstr(cf_err_detail(CF_E_PARSE), "control character") != NULL);
    T_ERR(cf_auditsvc_q_entries(q("action=a%7Fb"), &e), CF_E_PARSE);
    {
        char big[300];
        memset(big, 'a', sizeof(big));
        memcpy(big, "tenant=", 7);
        big[7 + CF_ID_MAX_LEN + 1] = 0;
        T_ERR(cf_auditsvc_q_entries(q(big), &e), CF_E_PARSE);
        big[7 + CF_ID_MAX_LEN] = 0;
        T_OK(cf_auditsvc_q_entries(q(big), &e));
    }
    T_ERR(cf_auditsvc_q_entries(q("limit=0"), &e), CF_E_PARSE);
    T_ERR(cf_auditsvc_q_entries(q("limit=1001"), &e), CF_E_PARSE);
    T_ERR(cf_auditsvc_q_entries(q("limit=01"), &e), CF_E_PARSE);
    T_ERR(cf_auditsvc_q_entries(q("limit=-1"), &e), CF_E_PARSE);
    T_ERR(cf_auditsvc_q_entries(q("after=x"), &e), CF_E_PARSE);
    T_ERR(cf_auditsvc_q_entries(q("after=99999999999999999999"), &e), CF_E_PARSE);
    T_ERR(cf_auditsvc_q_entries(q("tree_size=0"), &e), CF_E_PARSE);
    T_ERR(cf_auditsvc_q_entries(q("since=yesterday"), &e), CF_E_PARSE);
    T_ASSERT(strstr(cf_err_detail(CF_E_PARSE), "'since'") != NULL);
    T_ERR(cf_auditsvc_q_entries(q("until=2024-13-01T00:00:00Z"), &e), CF_E_PARSE);
    T_ERR(cf_auditsvc_q_entries(q("since=2000&until=1000"), &e), CF_E_RANGE);
    T_ERR(cf_auditsvc_q_entries(q("since=1000&until=1000"), &e), CF_E_RANGE);
    T_ERR(cf_auditsvc_q_entries(q("since=253402300800000"), &e), CF_E_RANGE);
}

static void test_other_queries(void)
{
    uint64_t a = 0, b = 0;
    int64_t after = -1;
    size_t limit = 0;
    bool f = true, has = true;

    T_OK(cf_auditsvc_q_sth(q(""), &f));
    T_ASSERT(!f);
    T_OK(cf_auditsvc_q_sth(q("fresh=1"), &f));
    T_ASSERT(f);
    T_OK(cf_auditsvc_q_sth(q("fresh=false"), &f));
    T_ASSERT(!f);
    T_ERR(cf_auditsvc_q_sth(q("fresh=yes"), &f), CF_E_PARSE);
    T_ERR(cf_auditsvc_q_sth(q("fresh=1&fresh=1"), &f), CF_E_PARSE);

    T_OK(cf_auditsvc_q_sths(q(""), &after, &limit));
    T_EQ(after, 0);
    T_EQ(limit, CF_AUDITSVC_PAGE_DEFAULT);
    T_OK(cf_auditsvc_q_sths(q("after=5&limit=2"), &after, &limit));
    T_EQ(after, 5);
    T_EQ(limit, 2);
    T_ERR(cf_auditsvc_q_sths(q("after=-5"), &after, &limit), CF_E_PARSE);
    T_ERR(cf_auditsvc_q_sths(q("seq=1"), &after, &limit), CF_E_PARSE);

    T_OK(cf_auditsvc_q_inclusion(q("seq=3&tree_size=4"), &a, &b));
    T_EQ(a, 3);
    T_EQ(b, 4);
    T_ERR(cf_auditsvc_q_inclusion(q("seq=4&tree_size=4"), &a, &b), CF_E_RANGE);
    T_ERR(cf_auditsvc_q_inclusion(q("seq=1"), &a, &b), CF_E_PARSE);
    T_ERR(cf_auditsvc_q_inclusion(q("tree_size=1"), &a, &b), CF_E_PARSE);
    T_ERR(cf_auditsvc_q_inclusion(q("seq=0&tree_size=0"), &a, &b), CF_E_PARSE);
    T_ERR(cf_auditsvc_q_inclusion(q("seq=0&tree_size=4611686018427387905"), &a, &b), CF_E_PARSE);

    T_OK(cf_auditsvc_q_consistency(q("first=2&second=2"), &a, &b));
    T_OK(cf_auditsvc_q_consistency(q("first=1&second=7"), &a, &b));
    T_EQ(a, 1);
    T_EQ(b, 7);
    T_ERR(cf_auditsvc_q_consistency(q("first=0&second=7"), &a, &b), CF_E_PARSE);
    T_ERR(cf_auditsvc_q_consistency(q("first=8&second=7"), &a, &b), CF_E_RANGE);
    T_ERR(cf_auditsvc_q_consistency(q("first=1"), &a, &b), CF_E_PARSE);

    T_OK(cf_auditsvc_q_entry(q(""), &has, &a));
    T_ASSERT(!has);
    T_OK(cf_auditsvc_q_entry(q("tree_size=9"), &has, &a));
    T_ASSERT(has);
    T_EQ(a, 9);
    T_ERR(cf_auditsvc_q_entry(q("tree_size=9&limit=1"), &has, &a), CF_E_PARSE);
}

static void test_time(void)
{
    int64_t ms = 0;

    T_OK(cf_auditsvc_parse_time("0", &ms));
    T_EQ(ms, 0);
    T_OK(cf_auditsvc_parse_time("2024-05-01T12:00:00.250Z", &ms));
    T_EQ(ms, 1714564800250LL);
    T_OK(cf_auditsvc_parse_time("253402300799999", &ms));
    T_ERR(cf_auditsvc_parse_time("", &ms), CF_E_PARSE);
    T_ERR(cf_auditsvc_parse_time("2024-05-01", &ms), CF_E_PARSE);
    T_ERR(cf_auditsvc_parse_time("2024-05-01T12:00:00+01:00", &ms), CF_E_PARSE);
    T_ERR(cf_auditsvc_parse_time("12345678901234567890123456789012345678901", &ms), CF_E_PARSE);
}

static void test_entry_json(void)
{
    static const char text[] = "{\"action\":\"x\",\"note\":\"caf\xc3\xa9 \\\"q\\\"\"}";
    static const uint8_t bad[] = {'{', 0xff, 0x00, '}'};
    cf_audit_entry e;
    cf_merkle_proof pr, back;
    json_t *j = NULL;
    char *s = NULL, hex[65];
    json_t *parsed = NULL;
    cf_buf b;

    memset(&e, 0, sizeof(e));
    e.seq = 17;
    memcpy(e.event_id, "0123456789abcdef0123456789abcdef", 33);
    e.entry = (uint8_t *)(uintptr_t)text;
    e.entry_len = strlen(text);
    for (int i = 0; i < 32; i++)
        e.leaf[i] = (uint8_t)i;
    pr.len = 2;
    memset(pr.h[0], 0xaa, 32);
    memset(pr.h[1], 0xbb, 32);
    T_OK(cf_auditsvc_entry_to_json(&e, &pr, &j));
    /* through the wire and back: the exact bytes */
    s = cf_json_dump(j);
    json_decref(j);
    T_ASSERT(s != NULL);
    T_ASSERT(strlen(s) <= cf_auditsvc_entry_json_bound(&e, pr.len));
    T_OK(cf_json_parse_object(s, strlen(s), 1 << 20, &parsed));
    free(s);
    T_EQ(json_integer_value(json_object_get(parsed, "seq")), 17);
    T_STREQ(json_string_value(json_object_get(parsed, "event_id")), e.event_id);
    T_EQ(json_string_length(json_object_get(parsed, "entry")), strlen(text));
    T_MEMEQ(json_string_value(json_object_get(parsed, "entry")), text, strlen(text));
    T_ASSERT(json_object_get(parsed, "entry_b64") == NULL);
    cf_hex_encode(e.leaf, 32, hex);
    T_STREQ(json_string_value(json_object_get(parsed, "leaf_hash")), hex);
    T_OK(cf_audit_proof_from_json(json_object_get(parsed, "proof"), &back));
    T_EQ(back.len, 2);
    T_MEMEQ(back.h, pr.h, 64);
    json_decref(parsed);

    /* bytes that are not UTF-8 text (only a damaged store has them): base64url, exact */
    e.entry = (uint8_t *)(uintptr_t)bad;
    e.entry_len = sizeof(bad);
    T_OK(cf_auditsvc_entry_to_json(&e, NULL, &j));
    T_ASSERT(json_object_get(j, "entry") == NULL);
    T_ASSERT(json_object_get(j, "proof") == NULL);
    cf_buf_init(&b, 64);
    T_OK(cf_json_get_b64url(j, "entry_b64", true, 64, &b));
    T_EQ(b.len, sizeof(bad));
    T_MEMEQ(b.data, bad, sizeof(bad));
    cf_buf_free(&b);
    json_decref(j);
    /* an empty entry */
    e.entry = NULL;
    e.entry_len = 0;
    T_OK(cf_auditsvc_entry_to_json(&e, NULL, &j));
    T_STREQ(json_string_value(json_object_get(j, "entry")), "");
    json_decref(j);
}

int main(void)
{
    T_RUN(test_entries_query);
    T_RUN(test_other_queries);
    T_RUN(test_time);
    T_RUN(test_entry_json);
    return t_done();
}
