/*
 * Demo job "redact": copies its input to its output with e-mail addresses
 * replaced by "[EMAIL]" and payment card numbers by "[CARD]".
 *
 * E-mail address: LOCAL@DOMAIN where LOCAL is a run of A-Z a-z 0-9 . _ % + -
 * (leading dots are left as punctuation) and DOMAIN is at least two dot-separated
 * labels of A-Z a-z 0-9 and '-' (1..63 characters, not starting or ending with
 * '-'), the last one at least two letters; a trailing '.' or '-' (end of a
 * sentence) is not part of it.
 *
 * Card number: 13 to 19 digits that pass the Luhn check (ISO/IEC 7812-1
 * Annex B), written together or in groups separated by single spaces or
 * dashes. Within a longer run of such groups, the longest valid window of whole
 * groups starting at each group is taken, so "ref 12 4111 1111 1111 1111" still
 * loses the card. Digit sequences that fail the check are left alone.
 *
 * Redaction errs on the side of removing: an overlap of two matches becomes one
 * replacement.
 */
#include "job_io.h"

enum { NONE = 0, EMAIL = 1, CARD = 2 };

#define CARD_MIN_DIGITS 13
#define CARD_MAX_DIGITS 19
#define DNS_LABEL_MAX 63

static int is_digit(unsigned char c) { return c >= '0' && c <= '9'; }
static int is_alpha(unsigned char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
static int is_alnum(unsigned char c) { return is_digit(c) || is_alpha(c); }
static int is_local(unsigned char c)
{
    return is_alnum(c) || c == '.' || c == '_' || c == '%' || c == '+' || c == '-';
}
static int is_domain(unsigned char c) { return is_alnum(c) || c == '.' || c == '-'; }
static int is_sep(unsigned char c) { return c == ' ' || c == '-'; }

/* DOMAIN in d[0..n): see the header comment. */
static int valid_domain(const unsigned char *d, size_t n)
{
    size_t labels = 0, start = 0;

    for (size_t i = 0; i <= n; i++) {
        if (i < n && d[i] != '.')
            continue;
        size_t len = i - start;
        if (len == 0 || len > DNS_LABEL_MAX || d[start] == '-' || d[i - 1] == '-')
            return 0;
        labels++;
        if (i == n) { /* the last label: at least two letters */
            if (len < 2)
                return 0;
            for (size_t k = start; k < n; k++)
                if (!is_alpha(d[k]))
                    return 0;
        }
        start = i + 1;
    }
    return labels >= 2;
}

static void mark(unsigned char *label, size_t from, size_t to, unsigned char what)
{
    for (size_t i = from; i < to; i++)
        if (label[i] == NONE || what == EMAIL) /* an address wins over digits inside it */
            label[i] = what;
}

static void find_emails(const unsigned char *in, size_t n, unsigned char *label)
{
    for (size_t at = 0; at < n; at++) {
        size_t l = at, r = at + 1;
        if (in[at] != '@')
            continue;
        while (l > 0 && is_local(in[l - 1]))
            l--;
        while (l < at && in[l] == '.')
            l++;
        if (l == at)
            continue;
        while (r < n && is_domain(in[r]))
            r++;
        while (r > at + 1 && (in[r - 1] == '.' || in[r - 1] == '-'))
            r--;
        if (valid_domain(in + at + 1, r - at - 1))
            mark(label, l, r, EMAIL);
    }
}

/* Luhn check over the digits of in[from..to), separators skipped: from the
 * rightmost digit, every second digit is doubled (minus 9 if above 9) and the
 * sum must be a multiple of 10. */
static int luhn_ok(const unsigned char *in, size_t from, size_t to)
{
    unsigned sum = 0, pos = 0;

    for (size_t i = to; i > from; i--) {
        unsigned d;
        if (!is_digit(in[i - 1]))
            continue;
        d = (unsigned)(in[i - 1] - '0');
        if (pos++ % 2 == 1) {
            d *= 2;
            if (d > 9)
                d -= 9;
        }
        sum += d;
    }
    return sum % 10 == 0;
}

/* End (exclusive) of the digit group starting at p. */
static size_t group_end(const unsigned char *in, size_t n, size_t p)
{
    while (p < n && is_digit(in[p]))
        p++;
    return p;
}

/* A run of digit groups joined by single separators: [start, end). Each window
 * of whole groups starting at a group is tried, the longest valid one wins. */
static void cards_in_run(const unsigned char *in, size_t start, size_t end, unsigned char *label)
{
    size_t pos = start;

    while (pos < end) {
        size_t digits = 0, best = 0, g = pos, first_end = group_end(in, end, pos);

        while (g < end) {
            size_t ge = group_end(in, end, g);
            digits += ge - g;
            if (digits > CARD_MAX_DIGITS)
                break;
            if (digits >= CARD_MIN_DIGITS && luhn_ok(in, pos, ge))
                best = ge;
            g = ge + 1; /* skip the separator */
        }
        if (best != 0) {
            mark(label, pos, best, CARD);
            pos = best + 1;
        } else {
            pos = first_end + 1;
        }
    }
}

static void find_cards(const unsigned char *in, size_t n, unsigned char *label)
{
    size_t i = 0;

    while (i < n) {
        size_t j;
        if (!is_digit(in[i])) {
            i++;
            continue;
        }
        /* Maximal run: digits, and single separators between two digits. */
        j = group_end(in, n, i);
        while (j + 1 < n && is_sep(in[j]) && is_digit(in[j + 1]))
            j = group_end(in, n, j + 1);
        cards_in_run(in, i, j, label);
        i = j;
    }
}

typedef struct {
    unsigned char buf[64 * 1024];
    size_t used;
} out_buf;

static void out_flush(out_buf *o)
{
    if (job_write_all(1, o->buf, o->used) != 0)
        job_fail("cannot write output");
    o->used = 0;
}

static void out_put(out_buf *o, const void *p, size_t n)
{
    const unsigned char *c = p;
    while (n > 0) {
        size_t take = sizeof(o->buf) - o->used;
        if (take > n)
            take = n;
        memcpy(o->buf + o->used, c, take);
        o->used += take;
        c += take;
        n -= take;
        if (o->used == sizeof(o->buf))
            out_flush(o);
    }
}

int main(void)
{
    static out_buf out;
    size_t n, i = 0;
    unsigned char *in = job_read_all(&n);
    unsigned char *label = calloc(n + 1, 1);

    if (label == NULL)
        job_fail("out of memory");
    find_cards(in, n, label);
    find_emails(in, n, label);
    while (i < n) {
        unsigned char what = label[i];
        if (what == NONE) {
            out_put(&out, in + i, 1);
            i++;
            continue;
        }
        while (i < n && label[i] != NONE)
            i++;
        if (what == EMAIL)
            out_put(&out, "[EMAIL]", 7);
        else
            out_put(&out, "[CARD]", 6);
    }
    out_flush(&out);
    free(label);
    free(in);
    return 0;
}
