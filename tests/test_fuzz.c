/* The fuzzers' structure-aware mutators: pkl_gen_crossover
 * (generators/streamgen.c), the libFuzzer custom mutator/crossover
 * (harness/fuzz/mutator.c) and the AFL++ custom mutator
 * (harness/fuzz/afl_mutator.c). Contracts: never write past the size they
 * are given (ASan checks exact-size buffers), deterministic for a seed,
 * FRAME lengths repaired after a splice, each mode of the libFuzzer
 * mutator uses the mutations it claims to.
 *
 * The mutators are compiled into this test directly, like test_gen.c does
 * with the generator: the unit-test build links only libpkl + support.
 */
#include "test_support.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../generators/streamgen.c"
#include "../harness/fuzz/afl_mutator.c"

/* mutator.c calls libFuzzer's default mutator; this stand-in counts calls
   and changes one byte so a caller can see it ran. */
static unsigned g_default_calls;
size_t LLVMFuzzerMutate(uint8_t *data, size_t size, size_t max_size);
size_t LLVMFuzzerMutate(uint8_t *data, size_t size, size_t max_size) {
    g_default_calls++;
    if (size && size <= max_size)
        data[size / 2] ^= 0x5a;
    return size <= max_size ? size : max_size;
}

/* mutator.c also defines a `next`; keep the two apart */
#define next lf_next
#include "../harness/fuzz/mutator.c"
#undef next

#define BIG (1u << 16)

/* a valid stream of protocol p into a fresh exact-size buffer */
static uint8_t *valid(uint64_t seed, int p, size_t *n) {
    uint8_t *tmp = malloc(BIG);
    *n = pkl_gen_valid(seed, p, tmp, BIG);
    assert_true(*n > 0 && *n <= BIG);
    uint8_t *out = malloc(*n);
    memcpy(out, tmp, *n);
    free(tmp);
    return out;
}

/* every complete FRAME claims no more than the bytes after it */
static void assert_frames_fit(const uint8_t *d, size_t len) {
    pop *ops = malloc(MUT_MAX_OPS * sizeof *ops);
    size_t n = parse_ops(d, len, ops);
    for (size_t i = 0; i < n; i++) {
        if (d[ops[i].off] != PKL_OP_FRAME || !ops[i].complete)
            continue;
        uint64_t l = frame_claim(d, &ops[i]);
        if (l > len - ops[i].end)
            fail_msg("FRAME at %zu claims %llu bytes, %zu follow", ops[i].off,
                     (unsigned long long)l, len - ops[i].end);
    }
    free(ops);
}

static void test_fuzz_crossover_within_cap_and_frames_fit(void **state) {
    (void)state;
    unsigned loaded = 0, total = 0;
    for (uint64_t s = 0; s < 400; s++) {
        size_t na, nb;
        uint8_t *a = valid(s, (int)(s % 6), &na), *b = valid(s + 1000, (int)((s / 6) % 6), &nb);
        size_t cap = (s % 3 == 0) ? (na + nb) / 3 + 1 : na + nb; /* often too small */
        uint8_t *out = malloc(cap);
        size_t n = pkl_gen_crossover(s, a, na, b, nb, out, cap);
        assert_true(n <= cap);
        assert_frames_fit(out, n);
        pkl_err err;
        pkl_doc *doc = pkl_load(out, n, NULL, &err);
        loaded += doc != NULL;
        total++;
        pkl_doc_free(doc);
        free(out);
        free(a);
        free(b);
    }
    print_message("%u of %u crossovers of valid streams load\n", loaded, total);
    /* structure-aware: a real share stays loadable (byte-level splicing of
       these streams almost never does); a loose bound, not a contract */
    assert_true(loaded > total / 10);
}

static void test_fuzz_crossover_deterministic_and_degenerate(void **state) {
    (void)state;
    size_t na, nb;
    uint8_t *a = valid(7, 4, &na), *b = valid(8, 2, &nb);
    uint8_t *o1 = malloc(na + nb), *o2 = malloc(na + nb);
    for (uint64_t s = 0; s < 50; s++) {
        size_t n1 = pkl_gen_crossover(s, a, na, b, nb, o1, na + nb);
        size_t n2 = pkl_gen_crossover(s, a, na, b, nb, o2, na + nb);
        assert_int_equal(n1, n2);
        assert_memory_equal(o1, o2, n1);
    }
    /* empty parents, garbage parents, zero capacity */
    uint8_t junk[7] = {0xff, 0xfe, 'K', 0x95, 1, 2, 3};
    for (uint64_t s = 0; s < 50; s++) {
        assert_true(pkl_gen_crossover(s, NULL, 0, NULL, 0, o1, 8) == 0);
        assert_true(pkl_gen_crossover(s, junk, sizeof junk, b, nb, o1, 16) <= 16);
        assert_true(pkl_gen_crossover(s, a, na, junk, sizeof junk, o1, na + nb) <= na + nb);
        assert_int_equal(pkl_gen_crossover(s, a, na, b, nb, o1, 0), 0);
    }
    free(o1);
    free(o2);
    free(a);
    free(b);
}

/* Found by fuzz_pkl_load_structured under UBSan: growing a FRAME whose
   claim is near 2^63 overflowed a signed addition in the length fix-up. */
static void test_fuzz_mutate_huge_frame_claim(void **state) {
    (void)state;
    static const uint8_t huge[] = {0x80, 0x04, 0x95, 0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f,
                                   'K', 0x01, 'K', 0x02, 0x86, 0x94, '.'};
    uint8_t d[256];
    for (uint64_t s = 0; s < 2000; s++) {
        memcpy(d, huge, sizeof huge);
        size_t n = sizeof huge;
        for (int i = 0; i < 4; i++)
            assert_true((n = pkl_gen_mutate(s * 8 + (uint64_t)i, d, n, sizeof d)) <= sizeof d);
    }
}

static void test_fuzz_libfuzzer_mutator_modes(void **state) {
    (void)state;
    static const struct {
        int mode;
        const char *name;
    } modes[] = {{MIX_DEFAULT, "default"}, {MIX_STRUCTURED, "structured"}, {MIX_MIXED, "mixed"}};
    for (size_t m = 0; m < 3; m++) {
        g_mix = modes[m].mode;
        g_default_calls = 0;
        unsigned changed = 0;
        for (unsigned s = 0; s < 300; s++) {
            size_t n;
            uint8_t *src = valid(s, (int)(s % 6), &n);
            size_t cap = n + (s % 4) * 20;
            uint8_t *d = malloc(cap);
            memcpy(d, src, n);
            size_t k = LLVMFuzzerCustomMutator(d, n, cap, s);
            assert_true(k <= cap);
            changed += k != n || memcmp(d, src, n) != 0;
            uint8_t *x = malloc(cap);
            assert_true(LLVMFuzzerCustomCrossOver(src, n, d, k, x, cap, s) <= cap);
            free(x);
            free(d);
            free(src);
        }
        print_message("%s: %u default-mutator calls, %u of 300 inputs changed\n", modes[m].name,
                      g_default_calls, changed);
        if (modes[m].mode == MIX_DEFAULT)
            assert_int_equal(g_default_calls, 300);
        else if (modes[m].mode == MIX_STRUCTURED)
            assert_int_equal(g_default_calls, 0);
        else
            assert_true(g_default_calls > 30 && g_default_calls < 100); /* 20% of 300 */
        assert_true(changed > 250);
    }
    g_mix = MIX_UNSET;
}

static void test_fuzz_afl_mutator_respects_max_size(void **state) {
    (void)state;
    void *m = afl_custom_init(NULL, 1234);
    assert_non_null(m);
    for (unsigned s = 0; s < 400; s++) {
        size_t na, nb;
        uint8_t *a = valid(s, (int)(s % 6), &na), *b = valid(s + 7, (int)(s % 5), &nb);
        size_t max = (s % 2) ? na + 64 : na / 2 + 1;
        uint8_t *out = NULL;
        size_t n = afl_custom_fuzz(m, a, na, &out, (s % 3) ? b : NULL, (s % 3) ? nb : 0, max);
        assert_non_null(out);
        assert_true(n <= max);
        pkl_err err;
        pkl_doc_free(pkl_load(out, n, NULL, &err)); /* whatever it made, libpkl survives it */
        free(a);
        free(b);
    }
    assert_string_equal(afl_custom_describe(m, 64), "brine-gen");
    afl_custom_deinit(m);
    afl_custom_deinit(NULL);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fuzz_crossover_within_cap_and_frames_fit),
        cmocka_unit_test(test_fuzz_crossover_deterministic_and_degenerate),
        cmocka_unit_test(test_fuzz_mutate_huge_frame_claim),
        cmocka_unit_test(test_fuzz_libfuzzer_mutator_modes),
        cmocka_unit_test(test_fuzz_afl_mutator_respects_max_size),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
