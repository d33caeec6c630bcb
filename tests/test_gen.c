/* The raw opcode-stream generator (generators/streamgen.c): determinism,
 * valid streams load in libpkl, every eligible opcode of every protocol is
 * reachable, every fault is rejected by libpkl with the class the generator
 * intends (libpkl agrees with the CPython oracle on all of them: see
 * tests/conformance/gen_vs_oracle.sh), and mutation never writes past cap.
 *
 * The generator is compiled into this test directly (the unit-test build
 * links only libpkl + support), which also gives access to its parser.
 */
#include "test_support.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* White-box: the tests drive the generator's internal opcode parser and PRNG,
   so they compile its source here instead of linking the pkl_gen library. */
#include "../generators/streamgen.c"

#define CAP (1u << 16)
#define NSEEDS 300

static void test_gen_same_seed_same_bytes(void **state) {
    (void)state;
    uint8_t *a = malloc(CAP), *b = malloc(CAP);
    size_t nf;
    const char *const *faults = pkl_gen_faults(&nf);
    for (int p = 0; p <= 5; p++)
        for (uint64_t s = 0; s < 40; s++) {
            size_t na = pkl_gen_valid(s, p, a, CAP), nb = pkl_gen_valid(s, p, b, CAP);
            assert_true(na > 0 && na <= CAP);
            assert_int_equal(na, nb);
            assert_memory_equal(a, b, na);
            for (size_t f = 0; f < nf; f++) {
                na = pkl_gen_invalid(s, p, faults[f], a, CAP, NULL);
                nb = pkl_gen_invalid(s, p, faults[f], b, CAP, NULL);
                assert_int_equal(na, nb);
                if (na)
                    assert_memory_equal(a, b, na);
            }
        }
    /* different seeds give different streams (almost always) */
    size_t na = pkl_gen_valid(1, 3, a, CAP), nb = pkl_gen_valid(2, 3, b, CAP);
    assert_false(na == nb && memcmp(a, b, na) == 0);
    free(a);
    free(b);
}

static void test_gen_valid_streams_load_in_libpkl(void **state) {
    (void)state;
    uint8_t *out = malloc(CAP);
    for (int p = 0; p <= 5; p++)
        for (uint64_t s = 0; s < NSEEDS; s++) {
            size_t n = pkl_gen_valid(s, p, out, CAP);
            assert_true(n > 0 && n <= CAP);
            pkl_err err = {PKL_OK, NULL, 0};
            pkl_doc *doc = pkl_load(out, n, NULL, &err);
            if (!doc)
                fail_msg("protocol %d seed %llu: libpkl rejects a generated-valid stream: %s at %zu: %s", p,
                         (unsigned long long)s, pkl_code_name(err.code), err.pos, err.msg ? err.msg : "");
            assert_int_equal(pkl_doc_protocol(doc), p >= 2 ? p : 0);
            pkl_doc_free(doc);
        }
    free(out);
}

static void test_gen_every_eligible_opcode_reachable(void **state) {
    (void)state;
    uint8_t *out = malloc(CAP);
    pop *ops = malloc(MUT_MAX_OPS * sizeof *ops);
    for (int p = 0; p <= 5; p++) {
        unsigned seen[256] = {0};
        for (uint64_t s = 0; s < NSEEDS; s++) {
            size_t n = pkl_gen_valid(s, p, out, CAP);
            size_t k = parse_ops(out, n, ops);
            assert_true(k > 0);
            assert_int_equal(out[ops[k - 1].off], PKL_OP_STOP);
            assert_int_equal(ops[k - 1].end, n); /* nothing after STOP */
            for (size_t i = 0; i < k; i++)
                seen[out[ops[i].off]]++;
        }
        for (size_t i = 0; i < pkl_opcode_count(); i++) {
            const pkl_opinfo *in = pkl_opcode_at(i);
            if (pkl_gen_eligible(p, in->code) && !seen[in->code])
                fail_msg("protocol %d: %s never generated in %d seeds", p, in->name, NSEEDS);
            if (in->proto > p && seen[in->code])
                fail_msg("protocol %d: %s (protocol %d) generated in valid mode", p, in->name, in->proto);
        }
        assert_true(p >= 2 ? seen[PKL_OP_PROTO] == NSEEDS : seen[PKL_OP_PROTO] == 0);
        if (p >= 4)
            assert_true(seen[PKL_OP_FRAME] > 0);
        assert_int_equal(seen[PKL_OP_NEXT_BUFFER] + seen[PKL_OP_EXT1] + seen[PKL_OP_EXT2] + seen[PKL_OP_EXT4], 0);
    }
    free(ops);
    free(out);
}

static void test_gen_faults_rejected_with_intended_class(void **state) {
    (void)state;
    uint8_t *out = malloc(CAP);
    size_t nf;
    const char *const *faults = pkl_gen_faults(&nf);
    assert_int_equal(nf, 23);
    for (size_t f = 0; f < nf; f++) {
        const char *want = pkl_gen_fault_class(faults[f]);
        assert_non_null(want);
        for (int p = 0; p <= 5; p++)
            for (uint64_t s = 0; s < 60; s++) {
                const char *exp = NULL;
                size_t n = pkl_gen_invalid(s, p, faults[f], out, CAP, &exp);
                if (n == 0) { /* only: nothing newer than protocol 5 */
                    assert_string_equal(faults[f], "opcode-above-protocol");
                    assert_int_equal(p, 5);
                    continue;
                }
                assert_true(n <= CAP);
                assert_string_equal(exp, want);
                pkl_err err = {PKL_OK, NULL, 0};
                pkl_doc *doc = pkl_load(out, n, NULL, &err);
                const char *got = doc ? "ok" : pkl_code_name(err.code);
                pkl_doc_free(doc);
                if (strcmp(got, want) != 0)
                    fail_msg("fault %s protocol %d seed %llu: libpkl says %s, generator intends %s (%s)",
                             faults[f], p, (unsigned long long)s, got, want, err.msg ? err.msg : "");
            }
    }
    free(out);
}

static void test_gen_bad_requests_return_zero(void **state) {
    (void)state;
    uint8_t out[16];
    assert_int_equal(pkl_gen_valid(1, 6, out, sizeof out), 0);
    assert_int_equal(pkl_gen_valid(1, -1, out, sizeof out), 0);
    assert_int_equal(pkl_gen_invalid(1, 3, "no-such-fault", out, sizeof out, NULL), 0);
    assert_null(pkl_gen_fault_class("no-such-fault"));
    assert_string_equal(pkl_gen_fault_class("extra-mark"), "ok");
}

/* A buffer too small: the full length is returned and nothing is written
   past cap (ASan checks the exact-size allocation). */
static void test_gen_small_cap_reports_length(void **state) {
    (void)state;
    uint8_t *full = malloc(CAP);
    for (uint64_t s = 0; s < 50; s++) {
        size_t n = pkl_gen_valid(s, 4, full, CAP);
        uint8_t *small = malloc(n / 2 + 1);
        assert_int_equal(pkl_gen_valid(s, 4, small, n / 2), n);
        free(small);
    }
    free(full);
}

static void test_gen_mutate_never_writes_past_cap(void **state) {
    (void)state;
    uint8_t *src = malloc(CAP);
    rng r = {42};
    for (uint64_t s = 0; s < 400; s++) {
        size_t n = pkl_gen_valid(s, (int)(s % 6), src, CAP);
        size_t cap = n + rnd(&r, 3) * rnd(&r, 40); /* often exactly n */
        uint8_t *d = malloc(cap ? cap : 1);
        memcpy(d, src, n);
        size_t len = n;
        for (int i = 0; i < 40; i++) {
            len = pkl_gen_mutate(s * 1000 + (uint64_t)i, d, len, cap);
            assert_true(len <= cap);
            /* whatever the mutation did, libpkl must not crash on it */
            pkl_err err;
            pkl_doc_free(pkl_load(d, len, NULL, &err));
        }
        free(d);
    }
    /* garbage and empty input */
    for (uint64_t s = 0; s < 200; s++) {
        uint8_t *d = malloc(32);
        for (int i = 0; i < 32; i++)
            d[i] = (uint8_t)rng_next(&r);
        size_t len = rnd(&r, 33);
        for (int i = 0; i < 20; i++)
            assert_true((len = pkl_gen_mutate(s + (uint64_t)i, d, len, 32)) <= 32);
        free(d);
    }
    free(src);
}

/* Most mutations of a valid stream keep it loadable (the mutator is
   structure-aware): a loose sanity bound, not a contract. */
static void test_gen_mutate_often_keeps_streams_valid(void **state) {
    (void)state;
    uint8_t *d = malloc(CAP);
    unsigned ok = 0, total = 0;
    for (uint64_t s = 0; s < 300; s++) {
        size_t n = pkl_gen_valid(s, (int)(s % 6), d, CAP);
        n = pkl_gen_mutate(s, d, n, CAP);
        pkl_err err;
        pkl_doc *doc = pkl_load(d, n, NULL, &err);
        ok += doc != NULL;
        total++;
        pkl_doc_free(doc);
    }
    assert_true(ok > total / 5);
    assert_true(ok < total); /* and some are not */
    free(d);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gen_same_seed_same_bytes),
        cmocka_unit_test(test_gen_valid_streams_load_in_libpkl),
        cmocka_unit_test(test_gen_every_eligible_opcode_reachable),
        cmocka_unit_test(test_gen_faults_rejected_with_intended_class),
        cmocka_unit_test(test_gen_bad_requests_return_zero),
        cmocka_unit_test(test_gen_small_cap_reports_length),
        cmocka_unit_test(test_gen_mutate_never_writes_past_cap),
        cmocka_unit_test(test_gen_mutate_often_keeps_streams_valid),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
