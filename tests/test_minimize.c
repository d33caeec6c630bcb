/* The opcode-granularity minimizer (harness/minimize.h), driven by stand-in
 * judges: a signature here is a property of the bytes chosen by the test,
 * so the smallest input keeping it is known exactly.
 */
#include "test_support.h"

#include <stdlib.h>
#include <string.h>

#include "minimize.h"

/* Keeps inputs that hold the 2-byte run K\x05 and end with STOP. */
static int judge_k5_stop(void *ctx, const brine_candidate *c, size_t n, bool *keep) {
    size_t *calls = ctx;
    (*calls)++;
    for (size_t i = 0; i < n; i++) {
        bool has = false;
        for (size_t j = 0; j + 1 < c[i].len; j++)
            has |= c[i].data[j] == 'K' && c[i].data[j + 1] == 5;
        keep[i] = has && c[i].len && c[i].data[c[i].len - 1] == '.';
    }
    return 0;
}

static void test_minimize_deletes_irrelevant_opcodes(void **state) {
    (void)state;
    static const uint8_t in[] = "\x80\x04\x95\x20\x00\x00\x00\x00\x00\x00\x00"
                                "]\x94(K\x01K\x02\x8c\x03" "abc\x94K\x05I12\nJ\x01\x02\x03\x04e."
                                "trailing";
    size_t calls = 0, out_len = 0;
    brine_min_stats st;
    uint8_t *out = brine_minimize(in, sizeof in - 1, judge_k5_stop, &calls, NULL, &out_len, &st);
    assert_non_null(out);
    assert_int_equal(out_len, 3);
    assert_memory_equal(out, "K\x05.", 3);
    assert_true(st.accepted > 0);
    assert_int_equal(st.batches, calls);
    free(out);
}

/* Keeps inputs whose SHORT_BINUNICODE payload starts with "ab". */
static int judge_prefix(void *ctx, const brine_candidate *c, size_t n, bool *keep) {
    (void)ctx;
    for (size_t i = 0; i < n; i++)
        keep[i] = c[i].len >= 4 && c[i].data[0] == 0x8c && c[i].data[2] == 'a' &&
                  c[i].data[3] == 'b' && c[i].data[1] + 2u == c[i].len;
    return 0;
}

static void test_minimize_halves_counted_arguments_and_fixes_lengths(void **state) {
    (void)state;
    static const uint8_t in[] = "\x8c\x10" "abcdefghijklmnop";
    size_t out_len = 0;
    uint8_t *out = brine_minimize(in, sizeof in - 1, judge_prefix, NULL, NULL, &out_len, NULL);
    assert_non_null(out);
    /* 16 -> 8 -> 4 -> 2 bytes, each with its length byte rewritten */
    assert_int_equal(out_len, 4);
    assert_memory_equal(out, "\x8c\x02" "ab", 4);
    free(out);
}

/* Keeps inputs whose INT line is at least 3 characters long. */
static int judge_int_line(void *ctx, const brine_candidate *c, size_t n, bool *keep) {
    (void)ctx;
    for (size_t i = 0; i < n; i++) {
        const uint8_t *nl = c[i].len ? memchr(c[i].data, '\n', c[i].len) : NULL;
        keep[i] = c[i].len && c[i].data[0] == 'I' && nl && nl - c[i].data >= 4;
    }
    return 0;
}

static void test_minimize_halves_line_arguments(void **state) {
    (void)state;
    static const uint8_t in[] = "I1234567890123\n.";
    size_t out_len = 0;
    uint8_t *out = brine_minimize(in, sizeof in - 1, judge_int_line, NULL, NULL, &out_len, NULL);
    assert_non_null(out);
    /* STOP goes, the line halves 13 -> 6 -> 3 characters */
    assert_int_equal(out_len, 5);
    assert_memory_equal(out, "I123\n", 5);
    free(out);
}

/* Keeps inputs cut short inside a BINUNICODE8 that starts at offset 1. */
static int judge_cut_binunicode8(void *ctx, const brine_candidate *c, size_t n, bool *keep) {
    (void)ctx;
    for (size_t i = 0; i < n; i++)
        keep[i] = c[i].len >= 2 && c[i].data[0] == 'N' && c[i].data[1] == 0x8d;
    return 0;
}

static void test_minimize_halves_the_unparsed_tail(void **state) {
    (void)state;
    /* a length of 2^60-1 and 64 bytes: the scanner stops at the BINUNICODE8,
       the rest is one tail span that only halving can shorten */
    uint8_t in[1 + 1 + 8 + 64];
    in[0] = 'N';
    in[1] = 0x8d;
    memset(in + 2, 0xff, 7);
    in[9] = 0x0f;
    memset(in + 10, 'x', 64);
    size_t out_len = 0;
    uint8_t *out = brine_minimize(in, sizeof in, judge_cut_binunicode8, NULL, NULL, &out_len, NULL);
    assert_non_null(out);
    assert_int_equal(out_len, 2);
    assert_memory_equal(out, "N\x8d", 2);
    free(out);
}

static int judge_abort(void *ctx, const brine_candidate *c, size_t n, bool *keep) {
    (void)c;
    (void)n;
    (void)keep;
    size_t *calls = ctx;
    (*calls)++;
    return -1;
}

static int judge_never(void *ctx, const brine_candidate *c, size_t n, bool *keep) {
    (void)ctx;
    (void)c;
    memset(keep, 0, n * sizeof *keep);
    return 0;
}

static void test_minimize_keeps_input_when_nothing_else_matches(void **state) {
    (void)state;
    static const uint8_t in[] = "(K\x01K\x02t.";
    size_t out_len = 0, calls = 0;
    uint8_t *out = brine_minimize(in, sizeof in - 1, judge_never, NULL, NULL, &out_len, NULL);
    assert_non_null(out);
    assert_int_equal(out_len, sizeof in - 1);
    assert_memory_equal(out, in, sizeof in - 1);
    free(out);
    /* a judge that gives up stops the minimizer at once, input kept */
    out = brine_minimize(in, sizeof in - 1, judge_abort, &calls, NULL, &out_len, NULL);
    assert_non_null(out);
    assert_int_equal(calls, 1);
    assert_int_equal(out_len, sizeof in - 1);
    free(out);
}

static void test_minimize_respects_the_batch_budget(void **state) {
    (void)state;
    uint8_t in[2001];
    for (size_t i = 0; i < 1000; i++) {
        in[2 * i] = 'K';
        in[2 * i + 1] = (uint8_t)(i % 5 == 0 ? 6 : 1);
    }
    in[2000] = '.';
    size_t calls = 0, out_len = 0;
    brine_min_opts o = {3, 4};
    brine_min_stats st;
    uint8_t *out = brine_minimize(in, sizeof in, judge_k5_stop, &calls, &o, &out_len, &st);
    assert_non_null(out);
    assert_true(calls <= 3);
    assert_true(st.candidates <= 12);
    free(out);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_minimize_deletes_irrelevant_opcodes),
        cmocka_unit_test(test_minimize_halves_counted_arguments_and_fixes_lengths),
        cmocka_unit_test(test_minimize_halves_line_arguments),
        cmocka_unit_test(test_minimize_halves_the_unparsed_tail),
        cmocka_unit_test(test_minimize_keeps_input_when_nothing_else_matches),
        cmocka_unit_test(test_minimize_respects_the_batch_budget),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
