/*
 * Signed tree heads: the fixed signed encoding, Ed25519 signature, JSON codec;
 * proofs as JSON.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auditlog/sth.h"
#include "merkle/merkle.h"
#include "base/err.h"
#include "base/json.h"
#include "base/parse.h"
#include "test.h"

static cf_key *key, *key2;

static cf_audit_sth sample(void)
{
    cf_audit_sth s;

    memset(&s, 0, sizeof(s));
    s.id = 5;
    s.size = 0x0102030405060708ull;
    s.timestamp_ms = 1714564800123ull;
    for (int i = 0; i < 32; i++)
        s.root[i] = (uint8_t)(0xa0 + i);
    return s;
}

static void test_tbs_layout(void)
{
    cf_audit_sth s = sample();
    uint8_t tbs[CF_AUDIT_STH_TBS_LEN];
    static const uint8_t want_head[] = {'c', 'o', 'f', 'f', 'e', 'r', '/', 'v', '1', ' ', 's',
                                        't', 'h', 0x00, 1, 2, 3, 4, 5, 6, 7, 8,
                                        0x00, 0x00, 0x01, 0x8f, 0x34, 0x06, 0x9e, 0x7b};

    T_EQ(CF_AUDIT_STH_TBS_LEN, 62);
    cf_audit_sth_tbs(&s, tbs);
    T_MEMEQ(tbs, want_head, sizeof(want_head));
    T_MEMEQ(tbs + 30, s.root, 32);
    /* id, signature and key_id are not signed */
    s.id = 9;
    s.key_id[0] = 'x';
    s.signature[3] = 1;
    {
        uint8_t t2[CF_AUDIT_STH_TBS_LEN];
        cf_audit_sth_tbs(&s, t2);
        T_MEMEQ(t2, tbs, sizeof(tbs));
    }
}

static void test_sign_verify(void)
{
    cf_audit_sth s = sample(), t;
    cf_key *pub = NULL, *x = NULL;
    char kid[CF_KEY_THUMBPRINT_LEN + 1];

    T_OK(cf_audit_sth_sign(&s, key));
    T_OK(cf_key_thumbprint(key, kid));
    T_STREQ(s.key_id, kid);
    T_OK(cf_key_public_only(key, &pub));
    T_OK(cf_audit_sth_verify(&s, pub));
    T_ERR(cf_audit_sth_sign(&s, pub), CF_E_INVAL); /* needs the private key */
    T_ERR(cf_audit_sth_verify(&s, key2), CF_E_SIGNATURE);
    /* every signed field matters, every bit of the signature too */
    t = s;
    t.size ^= 1;
    T_ERR(cf_audit_sth_verify(&t, pub), CF_E_SIGNATURE);
    t = s;
    t.timestamp_ms += 1;
    T_ERR(cf_audit_sth_verify(&t, pub), CF_E_SIGNATURE);
    for (int i = 0; i < 32; i++) {
        t = s;
        t.root[i] ^= 0x10;
        T_ERR(cf_audit_sth_verify(&t, pub), CF_E_SIGNATURE);
    }
    for (int i = 0; i < 64 * 8; i += 7) {
        t = s;
        t.signature[i / 8] ^= (uint8_t)(1u << (i % 8));
        T_ERR(cf_audit_sth_verify(&t, pub), CF_E_SIGNATURE);
    }
    /* only Ed25519 keys */
    T_OK(cf_key_generate(CF_KEY_P256, &x));
    T_ERR(cf_audit_sth_sign(&s, x), CF_E_INVAL);
    T_ERR(cf_audit_sth_verify(&s, x), CF_E_INVAL);
    T_ERR(cf_audit_sth_verify(&s, NULL), CF_E_INVAL);
    cf_key_free(x);
    cf_key_free(pub);
}

static void test_json(void)
{
    cf_audit_sth s = sample(), back;
    json_t *j = NULL;
    char *txt;

    T_OK(cf_audit_sth_sign(&s, key));
    T_OK(cf_audit_sth_to_json(&s, &j));
    txt = cf_json_dump(j);
    T_ASSERT(txt != NULL);
    T_OK(cf_audit_sth_parse(txt, strlen(txt), &back));
    T_MEMEQ(&back, &s, sizeof(s));
    T_OK(cf_audit_sth_verify(&back, key));
    free(txt);
    json_decref(j);

    /* a minimal head: no id, no key_id */
    {
        char buf[512], sig[100], root[65];
        cf_b64url_encode(s.signature, 64, sig);
        cf_hex_encode(s.root, 32, root);
        (void)snprintf(buf, sizeof(buf),
                       "{\"size\":%llu,\"timestamp\":%llu,\"root\":\"%s\",\"signature\":\"%s\"}",
                       (unsigned long long)(s.size & 0xffff), (unsigned long long)s.timestamp_ms,
                       root, sig);
        T_OK(cf_audit_sth_parse(buf, strlen(buf), &back));
        T_EQ(back.id, 0);
        T_STREQ(back.key_id, "");
        T_EQ(back.size, s.size & 0xffff);
    }
}

static void test_json_refused(void)
{
    static const char *const bad[] = {
        "[]",
        "{}",
        "{\"size\":1,\"timestamp\":1,\"root\":\"%R\",\"signature\":\"%S\",\"x\":1}",
        "{\"size\":-1,\"timestamp\":1,\"root\":\"%R\",\"signature\":\"%S\"}",
        "{\"size\":4611686018427387905,\"timestamp\":1,\"root\":\"%R\",\"signature\":\"%S\"}",
        "{\"size\":1.5,\"timestamp\":1,\"root\":\"%R\",\"signature\":\"%S\"}",
        "{\"size\":1,\"timestamp\":253402300800000,\"root\":\"%R\",\"signature\":\"%S\"}",
        "{\"size\":1,\"timestamp\":1,\"root\":\"%R0\",\"signature\":\"%S\"}",
        "{\"size\":1,\"timestamp\":1,\"root\":\"zz\",\"signature\":\"%S\"}",
        "{\"size\":1,\"timestamp\":1,\"root\":\"%R\",\"signature\":\"%SAA\"}",
        "{\"size\":1,\"timestamp\":1,\"root\":\"%R\",\"signature\":\"AAAA\"}",
        "{\"size\":1,\"timestamp\":1,\"root\":\"%R\",\"signature\":\"%S=\"}",
        "{\"size\":1,\"timestamp\":1,\"root\":\"%R\",\"signature\":\"%S\",\"key_id\":\"short\"}",
        "{\"size\":1,\"timestamp\":1,\"root\":\"%R\",\"signature\":\"%S\",\"key_id\":\"%K\"}",
        "{\"size\":1,\"timestamp\":1,\"root\":\"%R\",\"signature\":\"%S\",\"id\":-3}",
        "{\"size\":1,\"size\":2,\"timestamp\":1,\"root\":\"%R\",\"signature\":\"%S\"}",
        "{\"size\":1,\"timestamp\":1,\"root\":\"%R\",\"signature\":\"%S\"} x",
    };
    char root[65], sig[100], kid[50], buf[1024];
    cf_audit_sth s = sample(), back;

    memset(&back, 0x11, sizeof(back));
    T_OK(cf_audit_sth_sign(&s, key));
    cf_hex_encode(s.root, 32, root);
    cf_b64url_encode(s.signature, 64, sig);
    memset(kid, 'A', 43);
    kid[10] = '+'; /* not base64url */
    kid[43] = '\0';
    for (size_t i = 0; i < CF_ARRAY_LEN(bad); i++) {
        /* expand %R, %S, %K */
        size_t o = 0;
        cf_audit_sth before = back;
        for (const char *p = bad[i]; *p != '\0' && o + 100 < sizeof(buf); p++) {
            const char *ins = NULL;
            if (p[0] == '%' && p[1] == 'R')
                ins = root;
            else if (p[0] == '%' && p[1] == 'S')
                ins = sig;
            else if (p[0] == '%' && p[1] == 'K')
                ins = kid;
            if (ins != NULL) {
                size_t l = strlen(ins);
                memcpy(buf + o, ins, l);
                o += l;
                p++;
            } else {
                buf[o++] = *p;
            }
        }
        buf[o] = '\0';
        T_ASSERT_MSG(cf_audit_sth_parse(buf, o, &back) < 0, "accepted %s", buf);
        T_MEMEQ(&back, &before, sizeof(back));
    }
}

static void test_proof_json(void)
{
    cf_merkle_proof p, back;
    json_t *j = NULL, *bad;

    memset(&p, 0, sizeof(p));
    p.len = 3;
    for (int i = 0; i < 3; i++)
        memset(p.h[i], 0x10 * (i + 1), 32);
    T_OK(cf_audit_proof_to_json(&p, &j));
    T_EQ(json_array_size(j), 3);
    T_OK(cf_audit_proof_from_json(j, &back));
    T_EQ(back.len, 3);
    T_MEMEQ(back.h, p.h, 3 * 32);
    json_decref(j);
    p.len = 0;
    T_OK(cf_audit_proof_to_json(&p, &j));
    T_OK(cf_audit_proof_from_json(j, &back));
    T_EQ(back.len, 0);
    json_decref(j);

    bad = json_pack("[s]", "00");
    T_ERR(cf_audit_proof_from_json(bad, &back), CF_E_PARSE);
    json_decref(bad);
    bad = json_pack("[i]", 1);
    T_ERR(cf_audit_proof_from_json(bad, &back), CF_E_PARSE);
    json_decref(bad);
    bad = json_pack("{}");
    T_ERR(cf_audit_proof_from_json(bad, &back), CF_E_PARSE);
    json_decref(bad);
    bad = json_array();
    for (int i = 0; i <= CF_MERKLE_MAX_PROOF; i++)
        json_array_append_new(bad, json_string("00000000000000000000000000000000"
                                               "00000000000000000000000000000000"));
    T_ERR(cf_audit_proof_from_json(bad, &back), CF_E_TOO_LARGE);
    json_decref(bad);
}

/* The seed tree head of fuzz_sth_parse was made with Python's `cryptography`
 * (an independent implementation of the encoding and of Ed25519) with the
 * private key 32 x 0x01, over the 37-leaf tree of fuzz_proof_verify. */
static void test_independent_sth(void)
{
    static const uint8_t seed[32] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
                                     1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1};
    uint8_t leaves[37][32], root[32];
    cf_merkle_mem m;
    cf_audit_sth s, t;
    cf_key *k = NULL;
    char kid[CF_KEY_THUMBPRINT_LEN + 1];
    unsigned char *txt;
    size_t len;

    txt = t_read_file(COFFER_SOURCE_DIR "/fuzz/corpus/fuzz_sth_parse/valid-signed", &len);
    T_OK(cf_audit_sth_parse(txt, len, &s));
    free(txt);
    T_OK(cf_key_from_private(CF_KEY_ED25519, seed, sizeof(seed), &k));
    T_OK(cf_audit_sth_verify(&s, k));
    T_OK(cf_key_thumbprint(k, kid));
    T_STREQ(s.key_id, kid);
    for (int i = 0; i < 37; i++) {
        uint8_t in[2] = {(uint8_t)i, 0x5a};
        T_OK(cf_merkle_leaf_hash(in, 2, leaves[i]));
    }
    cf_merkle_mem_init(&m, (const uint8_t(*)[32])leaves, 37);
    T_OK(cf_merkle_root(37, cf_merkle_mem_node, &m, root));
    T_EQ(s.size, 37);
    T_MEMEQ(s.root, root, 32);
    /* and our signature over the same head is the same (Ed25519 is deterministic) */
    t = s;
    memset(t.signature, 0, sizeof(t.signature));
    T_OK(cf_audit_sth_sign(&t, k));
    T_MEMEQ(t.signature, s.signature, 64);
    cf_key_free(k);
}

int main(void)
{
    if (cf_key_generate(CF_KEY_ED25519, &key) != 0 || cf_key_generate(CF_KEY_ED25519, &key2) != 0)
        return 1;
    T_RUN(test_tbs_layout);
    T_RUN(test_sign_verify);
    T_RUN(test_json);
    T_RUN(test_json_refused);
    T_RUN(test_proof_json);
    T_RUN(test_independent_sth);
    cf_key_free(key);
    cf_key_free(key2);
    return t_done();
}
