#include <string.h>

#include "base/err.h"
#include "base/parse.h"
#include "crypto/hash.h"
#include "test.h"

static void hexeq(const uint8_t *got, size_t n, const char *want_hex, int *ok)
{
    char h[2 * 64 + 1];
    cf_hex_encode(got, n, h);
    *ok = strcmp(h, want_hex) == 0;
    if (!*ok)
        fprintf(stderr, "  got  %s\n  want %s\n", h, want_hex);
}

static void test_sha(void)
{
    uint8_t out[64];
    int ok;
    cf_iov parts[2] = {{"a", 1}, {"bc", 2}};

    T_OK(cf_sha256("abc", 3, out));
    hexeq(out, 32, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", &ok);
    T_ASSERT(ok);
    T_OK(cf_hash(CF_SHA256, parts, 2, out));
    hexeq(out, 32, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", &ok);
    T_ASSERT(ok);
    T_OK(cf_sha384("abc", 3, out));
    hexeq(out, 48,
          "cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed8086072ba1e7cc2358baeca134c825a7",
          &ok);
    T_ASSERT(ok);
    T_OK(cf_sha512("abc", 3, out));
    hexeq(out, 64,
          "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f",
          &ok);
    T_ASSERT(ok);
}

/* RFC 5869 Appendix A.1 and A.3. */
static void test_hkdf_rfc5869(void)
{
    uint8_t ikm[22], salt[13], info[10], prk[32], okm[42];
    int ok;

    memset(ikm, 0x0b, sizeof(ikm));
    for (int i = 0; i < 13; i++)
        salt[i] = (uint8_t)i;
    for (int i = 0; i < 10; i++)
        info[i] = (uint8_t)(0xf0 + i);
    T_OK(cf_hkdf_extract(CF_SHA256, salt, sizeof(salt), ikm, sizeof(ikm), prk));
    hexeq(prk, 32, "077709362c2e32df0ddc3f0dc47bba6390b6c73bb50f9c3122ec844ad7c2b3e5", &ok);
    T_ASSERT(ok);
    T_OK(cf_hkdf_expand(CF_SHA256, prk, 32, info, sizeof(info), okm, sizeof(okm)));
    hexeq(okm, 42,
          "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865", &ok);
    T_ASSERT(ok);
    /* A.3: no salt, no info. */
    T_OK(cf_hkdf(CF_SHA256, NULL, 0, ikm, sizeof(ikm), NULL, 0, okm, sizeof(okm)));
    hexeq(okm, 42,
          "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8", &ok);
    T_ASSERT(ok);
    T_ERR(cf_hkdf_expand(CF_SHA256, prk, 32, NULL, 0, okm, 255 * 32 + 1), CF_E_RANGE);
    T_ERR(cf_hkdf_expand(CF_SHA256, prk, 32, NULL, 0, okm, 0), CF_E_RANGE);
}

/* RFC 4231 test case 2. */
static void test_hmac(void)
{
    uint8_t out[32];
    int ok;

    T_OK(cf_hmac(CF_SHA256, (const uint8_t *)"Jefe", 4,
                 (const uint8_t *)"what do ya want for nothing?", 28, out));
    hexeq(out, 32, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843", &ok);
    T_ASSERT(ok);
}

static void test_random(void)
{
    uint8_t a[32], b[32];

    T_OK(cf_random(a, sizeof(a)));
    T_OK(cf_random_secret(b, sizeof(b)));
    T_ASSERT(memcmp(a, b, sizeof(a)) != 0);
}

int main(void)
{
    T_RUN(test_sha);
    T_RUN(test_hkdf_rfc5869);
    T_RUN(test_hmac);
    T_RUN(test_random);
    return t_done();
}
