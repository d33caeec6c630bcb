/* Allocation-failure injection.
 *
 * For every pickle of tests/data/decode_cases.txt (all node kinds, every
 * opcode, success and failure paths) plus a few that need options (buffers,
 * an extension registry) or many nodes: make allocation number k fail, for
 * k = 1, 2, 3 ... until the run no longer reaches k allocations. Every run
 * that met a failure must return NULL with PKL_ERR_RESOURCE_LIMIT and leave
 * nothing allocated; the first run that met none must give exactly the
 * unconstrained result. The same for pkl_canon on a loaded document and for
 * pkl_canon_load. Two failure modes: every call from k on fails
 * (failing_alc), and only call k fails (peak_alc.fail_only), which catches
 * code that ignores one NULL and carries on.
 */
#include "test_support.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cases.h"

#define CASES_PATH BRINE_TEST_DATA "/decode_cases.txt"
#define ERROR_RESOURCE "brine-canonical 1 raw\nerror resource-limit\n"


static void need_cases(void) {
    if (!g_loaded)
        fail_msg("cannot read %s: %s", CASES_PATH, g_load_error);
}

/* The allocator under test, in one of the two modes. */
typedef struct inj {
    bool oneshot;
    failing_alc fa;
    peak_alc pa;
} inj;

static void inj_init(inj *j, bool oneshot, size_t k) {
    memset(j, 0, sizeof *j);
    j->oneshot = oneshot;
    if (oneshot) {
        peak_alc_init(&j->pa);
        j->pa.fail_only = k;
    } else {
        failing_alc_init(&j->fa, k);
    }
}

static const pkl_alc *inj_alc(inj *j) { return j->oneshot ? &j->pa.alc : &j->fa.alc; }
static size_t inj_calls(const inj *j) { return j->oneshot ? j->pa.calls : j->fa.calls; }
static bool inj_clean(const inj *j) {
    return j->oneshot ? j->pa.live == 0 && j->pa.live_blocks == 0
                      : j->fa.live == 0 && j->fa.live_blocks == 0;
}

/* Counts of what the sweeps did, so a test that injected nothing fails. */
typedef struct tally {
    size_t failing_runs, problems;
} tally;

static void problem(tally *t, const char *who, const char *what, size_t k, const char *detail) {
    t->problems++;
    if (t->problems <= 40)
        print_error("[%s] allocation %zu failed: %s%s%s\n", who, k, what, detail ? ": " : "",
                    detail ? detail : "");
}

/* Reference text of a load with the libc allocator: the canonical text, or
   the error document. */
static char *reference(const void *data, size_t len, const pkl_load_opts *base, pkl_code *code) {
    pkl_load_opts o = base ? *base : (pkl_load_opts){0};
    o.alc = NULL;
    pkl_err err = {PKL_OK, NULL, 0};
    pkl_doc *doc = pkl_load(data, len, &o, &err);
    char *t;
    if (doc) {
        t = pkl_canon(doc, NULL, SIZE_MAX, NULL, NULL);
        pkl_doc_free(doc);
        *code = PKL_OK;
    } else {
        t = pkl_canon_error(err.code, NULL, NULL);
        *code = err.code;
    }
    assert_non_null(t);
    return t;
}

/* pkl_load under failure injection. */
static void sweep_load(const char *who, const void *data, size_t len, const pkl_load_opts *base,
                       bool oneshot, tally *t) {
    pkl_code ref_code;
    char *ref = reference(data, len, base, &ref_code);
    for (size_t k = 1;; k++) {
        if (k > 100000) {
            problem(t, who, "the load never stops allocating", k, NULL);
            break;
        }
        inj j;
        inj_init(&j, oneshot, k);
        pkl_load_opts o = base ? *base : (pkl_load_opts){0};
        o.alc = inj_alc(&j);
        pkl_err err = {PKL_OK, NULL, 0};
        pkl_doc *doc = pkl_load(data, len, &o, &err);
        bool injected = inj_calls(&j) >= k;
        if (!injected) {
            /* the run made fewer than k allocations: the unconstrained result */
            if (doc) {
                char *txt = pkl_canon(doc, NULL, SIZE_MAX, NULL, NULL);
                if (ref_code != PKL_OK || !txt || strcmp(txt, ref) != 0)
                    problem(t, who, "no failure was injected, yet the result differs", k, NULL);
                free(txt);
                pkl_doc_free(doc);
            } else if (err.code != ref_code) {
                problem(t, who, "no failure was injected, yet the error differs", k,
                        pkl_code_name(err.code));
            }
            if (!inj_clean(&j))
                problem(t, who, "leak after pkl_doc_free", k, NULL);
            break;
        }
        t->failing_runs++;
        if (doc) {
            pkl_doc_free(doc);
            problem(t, who, "the load succeeded anyway", k, NULL);
        } else if (err.code != PKL_ERR_RESOURCE_LIMIT) {
            problem(t, who, "wrong error", k, pkl_code_name(err.code));
        } else if (!err.msg || !*err.msg) {
            problem(t, who, "resource-limit without a message", k, NULL);
        }
        if (!inj_clean(&j))
            problem(t, who, "leak: memory still allocated after the failed load", k, NULL);
    }
    free(ref);
}

/* pkl_canon of a loaded document under failure injection. */
static void sweep_canon(const char *who, const void *data, size_t len, const pkl_load_opts *base,
                        bool oneshot, tally *t) {
    pkl_load_opts o = base ? *base : (pkl_load_opts){0};
    o.alc = NULL;
    pkl_doc *doc = pkl_load(data, len, &o, NULL);
    if (!doc)
        return;
    size_t ref_len = 0;
    char *ref = pkl_canon(doc, NULL, SIZE_MAX, &ref_len, NULL);
    assert_non_null(ref);
    for (size_t k = 1;; k++) {
        if (k > 100000) {
            problem(t, who, "pkl_canon never stops allocating", k, NULL);
            break;
        }
        inj j;
        inj_init(&j, oneshot, k);
        const pkl_alc *a = inj_alc(&j);
        pkl_err err = {PKL_OK, NULL, 0};
        size_t n = 0;
        char *txt = pkl_canon(doc, a, SIZE_MAX, &n, &err);
        bool injected = inj_calls(&j) >= k;
        if (!injected) {
            if (!txt || n != ref_len || strcmp(txt, ref) != 0)
                problem(t, who, "pkl_canon: no failure injected, yet the text differs", k, NULL);
            if (txt)
                a->free(a->ctx, txt);
            if (!inj_clean(&j))
                problem(t, who, "pkl_canon leaks", k, NULL);
            break;
        }
        t->failing_runs++;
        if (txt) {
            a->free(a->ctx, txt);
            problem(t, who, "pkl_canon succeeded anyway", k, NULL);
        } else if (err.code != PKL_ERR_RESOURCE_LIMIT) {
            problem(t, who, "pkl_canon: wrong error", k, pkl_code_name(err.code));
        }
        if (!inj_clean(&j))
            problem(t, who, "pkl_canon leaks after failing", k, NULL);
    }
    free(ref);
    pkl_doc_free(doc);
}

/* pkl_canon_load under failure injection: the text of the value, or
   "error resource-limit" when an allocation failed (NULL only when even that
   text could not be allocated). */
static void sweep_canon_load(const char *who, const void *data, size_t len,
                             const pkl_load_opts *base, bool oneshot, tally *t) {
    pkl_code ref_code;
    char *ref = reference(data, len, base, &ref_code);
    for (size_t k = 1;; k++) {
        if (k > 100000) {
            problem(t, who, "pkl_canon_load never stops allocating", k, NULL);
            break;
        }
        inj j;
        inj_init(&j, oneshot, k);
        pkl_load_opts o = base ? *base : (pkl_load_opts){0};
        o.alc = inj_alc(&j);
        pkl_err err = {PKL_OK, NULL, 0};
        size_t n = 0;
        char *txt = pkl_canon_load(data, len, &o, &n, &err);
        bool injected = inj_calls(&j) >= k;
        if (!injected) {
            if (!txt || strcmp(txt, ref) != 0 || n != strlen(ref) || err.code != ref_code)
                problem(t, who, "pkl_canon_load: no failure injected, yet the result differs",
                        k, NULL);
        } else {
            /* a failure inside the load or the emitter gives the text
               "error resource-limit" (or NULL when, as with failing_alc,
               allocating that text fails as well); a failure of the very
               allocation of a failed load's error text gives NULL with the
               load's own error */
            t->failing_runs++;
            if (txt) {
                if (strcmp(txt, ERROR_RESOURCE) != 0)
                    problem(t, who, "pkl_canon_load: text is not error resource-limit", k, txt);
                else if (err.code != PKL_ERR_RESOURCE_LIMIT)
                    problem(t, who, "pkl_canon_load: load_err is not resource-limit", k,
                            pkl_code_name(err.code));
                if (!oneshot)
                    problem(t, who, "pkl_canon_load: a text from an allocator that fails "
                            "every call", k, NULL);
            } else if (oneshot ? ref_code == PKL_OK || err.code != ref_code
                               : err.code != PKL_ERR_RESOURCE_LIMIT && err.code != ref_code) {
                problem(t, who, "pkl_canon_load: NULL with an unexpected load_err", k,
                        pkl_code_name(err.code));
            }
        }
        if (txt)
            o.alc->free(o.alc->ctx, txt);
        if (!inj_clean(&j))
            problem(t, who, "pkl_canon_load leaks", k, NULL);
        if (!injected)
            break;
    }
    free(ref);
}

typedef void (*sweep_fn)(const char *, const void *, size_t, const pkl_load_opts *, bool,
                         tally *);

static void sweep_all_cases(sweep_fn fn, bool oneshot) {
    need_cases();
    tally t = {0, 0};
    for (size_t i = 0; i < g_cases.n; i++)
        fn(g_cases.v[i].name, g_cases.v[i].data, g_cases.v[i].len, NULL, oneshot, &t);
    print_message("%zu cases, %zu runs with a failed allocation\n", g_cases.n, t.failing_runs);
    if (t.failing_runs < g_cases.n)
        fail_msg("only %zu runs met an injected failure: the sweep did not test anything",
                 t.failing_runs);
    if (t.problems)
        fail_msg("%zu problems (the first are listed above)", t.problems);
}

static void test_alloc_load_every_case_fail_from_k(void **state) {
    (void)state;
    sweep_all_cases(sweep_load, false);
}

static void test_alloc_load_every_case_fail_only_k(void **state) {
    (void)state;
    sweep_all_cases(sweep_load, true);
}

static void test_alloc_canon_every_case_fail_from_k(void **state) {
    (void)state;
    sweep_all_cases(sweep_canon, false);
}

static void test_alloc_canon_every_case_fail_only_k(void **state) {
    (void)state;
    sweep_all_cases(sweep_canon, true);
}

static void test_alloc_canon_load_every_case_fail_from_k(void **state) {
    (void)state;
    sweep_all_cases(sweep_canon_load, false);
}

static void test_alloc_canon_load_every_case_fail_only_k(void **state) {
    (void)state;
    sweep_all_cases(sweep_canon_load, true);
}

/* ------------------------------------------------------------------------ */
/* Pickles the case file cannot hold: options, and sizes past the first
   node chunk / stack / memo allocations */

static bool ext_lookup(void *ctx, int64_t code, const char **module, size_t *mlen,
                       const char **name, size_t *nlen) {
    (void)ctx;
    if (code != 1)
        return false;
    *module = "mod";
    *mlen = 3;
    *name = "name";
    *nlen = 4;
    return true;
}

typedef struct bytes {
    uint8_t *p;
    size_t len, cap;
} bytes;

static void put(bytes *b, const void *s, size_t n) {
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n)
            cap *= 2;
        b->p = realloc(b->p, cap);
        assert_non_null(b->p);
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
}

static void run_all_sweeps(const char *who, const void *data, size_t len, const pkl_load_opts *o,
                           tally *t) {
    for (int oneshot = 0; oneshot < 2; oneshot++) {
        sweep_load(who, data, len, o, oneshot, t);
        sweep_canon(who, data, len, o, oneshot, t);
        sweep_canon_load(who, data, len, o, oneshot, t);
    }
}

static void test_alloc_buffers_and_extensions(void **state) {
    (void)state;
    tally t = {0, 0};
    pkl_load_opts o;
    memset(&o, 0, sizeof o);
    o.have_buffers = true;
    o.nbuffers = 2;
    o.ext_lookup = ext_lookup;
    /* two out-of-band buffers, a read-only view of one, an EXT global twice */
    static const char pk[] = "\x80\x05(\x97\x97\x98\x82\x01\x82\x01t.";
    pkl_code code;
    char *ref = reference(pk, sizeof pk - 1, &o, &code);
    if (code != PKL_OK)
        fail_msg("the buffer/EXT pickle does not load: %s", ref);
    free(ref);
    run_all_sweeps("buffers+ext", pk, sizeof pk - 1, &o, &t);
    if (!t.failing_runs)
        fail_msg("no failure was injected");
    if (t.problems)
        fail_msg("%zu problems (listed above)", t.problems);
}

static void test_alloc_large_documents(void **state) {
    (void)state;
    tally t = {0, 0};
    /* 6000 distinct ints, strs and tuples in a list (more than one node
       chunk), 300 memo entries, a 2000-deep nested list, a 1000-entry dict
       and set */
    bytes b = {0};
    put(&b, "\x80\x04(", 3);
    for (int i = 0; i < 6000; i++) {
        uint8_t op[3] = {'M', (uint8_t)(i & 0xff), (uint8_t)(i >> 8)};
        put(&b, op, 3);
        if (i % 20 == 0) {
            char s[16];
            int n = snprintf(s, sizeof s, "%d", i);
            uint8_t h[2] = {0x8c, (uint8_t)n};
            put(&b, h, 2);
            put(&b, s, (size_t)n);
            put(&b, "\x86", 1);
        }
        if (i < 300)
            put(&b, "\x94", 1);
    }
    for (int i = 0; i < 2000; i++)
        put(&b, "]", 1);
    for (int i = 0; i < 1999; i++)
        put(&b, "a", 1);
    put(&b, "}(", 2);
    for (int i = 0; i < 1000; i++) {
        uint8_t op[6] = {'M', (uint8_t)(i & 0xff), (uint8_t)(i >> 8), 'h', (uint8_t)(i % 200), 0};
        put(&b, op, 5);
    }
    put(&b, "u\x8f(", 3);
    for (int i = 0; i < 1000; i++) {
        uint8_t op[3] = {'M', (uint8_t)(i & 0xff), (uint8_t)(i >> 8)};
        put(&b, op, 3);
    }
    put(&b, "\x90l.", 3);
    pkl_code code;
    char *ref = reference(b.p, b.len, NULL, &code);
    if (code != PKL_OK)
        fail_msg("the large pickle does not load: %s", ref);
    free(ref);
    sweep_load("large", b.p, b.len, NULL, false, &t);
    sweep_load("large", b.p, b.len, NULL, true, &t);
    sweep_canon("large", b.p, b.len, NULL, false, &t);
    sweep_canon_load("large", b.p, b.len, NULL, true, &t);
    free(b.p);
    if (t.failing_runs < 10)
        fail_msg("only %zu failing runs", t.failing_runs);
    if (t.problems)
        fail_msg("%zu problems (listed above)", t.problems);
}

/* pkl_canon_error with an allocator that refuses: NULL, nothing held. */
static void test_alloc_canon_error_text(void **state) {
    (void)state;
    failing_alc f;
    failing_alc_init(&f, 1);
    assert_null(pkl_canon_error(PKL_ERR_TRUNCATED, &f.alc, NULL));
    assert_int_equal(f.live, 0);
    failing_alc_init(&f, 0);
    size_t n = 0;
    char *t = pkl_canon_error(PKL_ERR_TRUNCATED, &f.alc, &n);
    assert_non_null(t);
    assert_string_equal(t, "brine-canonical 1 raw\nerror truncated\n");
    assert_int_equal(n, strlen(t));
    f.alc.free(f.alc.ctx, t);
    assert_int_equal(f.live, 0);
}

/* ------------------------------------------------------------------------ */


int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_alloc_load_every_case_fail_from_k),
        cmocka_unit_test(test_alloc_load_every_case_fail_only_k),
        cmocka_unit_test(test_alloc_canon_every_case_fail_from_k),
        cmocka_unit_test(test_alloc_canon_every_case_fail_only_k),
        cmocka_unit_test(test_alloc_canon_load_every_case_fail_from_k),
        cmocka_unit_test(test_alloc_canon_load_every_case_fail_only_k),
        cmocka_unit_test(test_alloc_buffers_and_extensions),
        cmocka_unit_test(test_alloc_large_documents),
        cmocka_unit_test(test_alloc_canon_error_text),
    };
    return cmocka_run_group_tests(tests, cases_group_setup, cases_group_teardown);
}
