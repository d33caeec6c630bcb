/* Verdicts (harness/verdict.h) on pairs of canonical documents.
 *
 * The inputs are texts in the canonical grammar, not claims about what
 * CPython does, so they are written here by hand: each test builds the
 * oracle side and the implementation side and checks the verdict.
 */
#include "test_support.h"

#include <string.h>

#include "verdict.h"

#define H "brine-canonical 1 raw\n"

static brine_text doc(const char *text, const char *trace) {
    brine_text t = {text, strlen(text), trace, trace ? strlen(trace) : 0};
    return t;
}

static brine_verdict judge1(const char *want, const char *want_trace, const char *got,
                            const char *got_trace, char *detail) {
    brine_text w = doc(want, want_trace), g = doc(got, got_trace);
    brine_expectation e = {&w, 1, false, false, false};
    return brine_judge(&e, &g, detail, 200, NULL);
}

static void test_verdict_identical_answers_pass(void **state) {
    (void)state;
    char d[200];
    assert_int_equal(judge1(H "int 1\n", "", H "int 1\n", "", d), BRINE_V_PASS);
    assert_int_equal(judge1(H "error truncated\n", "", H "error truncated\n", NULL, d),
                     BRINE_V_PASS);
}

static void test_verdict_value_difference_is_mismatch_with_line(void **state) {
    (void)state;
    char d[200];
    assert_int_equal(judge1(H "list\n  int 1\n", "", H "list\n  int 2\n", "", d),
                     BRINE_V_MISMATCH);
    assert_non_null(strstr(d, "line 3"));
    assert_non_null(strstr(d, "int 1"));
    assert_non_null(strstr(d, "int 2"));
}

static void test_verdict_error_class_difference_is_mismatch(void **state) {
    (void)state;
    char d[200];
    assert_int_equal(judge1(H "error truncated\n", "", H "error bad-opcode\n", "", d),
                     BRINE_V_MISMATCH);
    assert_non_null(strstr(d, "bad-opcode"));
}

static void test_verdict_load_versus_reject(void **state) {
    (void)state;
    char d[200];
    assert_int_equal(judge1(H "int 1\n", "", H "error truncated\n", "", d),
                     BRINE_V_ACCEPT_VS_REJECT);
    assert_int_equal(judge1(H "error truncated\n", "", H "int 1\n", "", d),
                     BRINE_V_ACCEPT_VS_REJECT);
}

static const char CALL_DOC[] = H "call\n  global \"posix\" \"system\"\n  .args\n    str \"id\"\n";
static const char CALL_TRACE[] = "1 global \"posix\" \"system\"\n2 call 1\n";

static void test_verdict_missed_global_in_trace_is_safety_mismatch(void **state) {
    (void)state;
    char d[200];
    /* the implementation loads the same document but its trace omits the global */
    assert_int_equal(judge1(CALL_DOC, CALL_TRACE, CALL_DOC, "2 call 1\n", d),
                     BRINE_V_SAFETY_MISMATCH);
    assert_non_null(strstr(d, "\"posix\" \"system\""));
    /* a different document that never names the global: still the worst verdict */
    assert_int_equal(judge1(CALL_DOC, CALL_TRACE, H "none\n", "", d), BRINE_V_SAFETY_MISMATCH);
    /* rejecting it (stopping before the global) constructed nothing: no miss */
    assert_int_equal(judge1(CALL_DOC, CALL_TRACE, H "error unsupported-protocol\n", "", d),
                     BRINE_V_ACCEPT_VS_REJECT);
}

static void test_verdict_missed_call_is_safety_mismatch(void **state) {
    (void)state;
    char d[200];
    assert_int_equal(
        judge1(CALL_DOC, CALL_TRACE, CALL_DOC, "1 global \"posix\" \"system\"\n", d),
        BRINE_V_SAFETY_MISMATCH);
    assert_non_null(strstr(d, "calls"));
}

static void test_verdict_global_before_error_is_checked(void **state) {
    (void)state;
    char d[200];
    /* CPython resolved (imported) the global before failing */
    const char *want = H "error truncated\n";
    const char *trace = "1 global \"os\" \"system\"\n";
    assert_int_equal(judge1(want, trace, want, "", d), BRINE_V_SAFETY_MISMATCH);
    assert_int_equal(judge1(want, trace, want, trace, d), BRINE_V_PASS);
    /* stopping at another fault (earlier) is an ordinary mismatch */
    assert_int_equal(judge1(want, trace, H "error bad-opcode\n", "", d), BRINE_V_MISMATCH);
}

static void test_verdict_forbidden_is_never_a_safety_miss(void **state) {
    (void)state;
    char d[200];
    assert_int_equal(judge1(CALL_DOC, CALL_TRACE, H "error forbidden\n", "", d),
                     BRINE_V_REFUSED);
    assert_int_equal(judge1(H "error truncated\n", "1 global \"os\" \"system\"\n",
                            H "error forbidden\n", "", d),
                     BRINE_V_REFUSED);
    assert_false(brine_verdict_ok(BRINE_V_REFUSED));
}

static void test_verdict_as_clause_is_ignored(void **state) {
    (void)state;
    char d[200];
    const char *doc2 = H "global \"copy_reg\" \"_reconstructor\"\n";
    assert_int_equal(judge1(doc2,
                            "1 global \"copy_reg\" \"_reconstructor\" as \"copyreg\" "
                            "\"_reconstructor\"\n",
                            doc2, "1 global \"copy_reg\" \"_reconstructor\"\n", d),
                     BRINE_V_PASS);
}

static void test_verdict_other_trace_difference_is_trace_mismatch(void **state) {
    (void)state;
    char d[200];
    const char *doc2 = H "new\n  global \"m\" \"C\"\n  .build\n    none\n";
    const char *want = "1 global \"m\" \"C\"\n2 new 1\n3 build 2\n";
    assert_int_equal(judge1(doc2, want, doc2, "1 global \"m\" \"C\"\n2 new 1\n", d),
                     BRINE_V_TRACE_MISMATCH);
}

static void test_verdict_without_trace_uses_document_globals(void **state) {
    (void)state;
    char d[200];
    /* no trace from the implementation: the globals of its document count */
    assert_int_equal(judge1(CALL_DOC, CALL_TRACE, H "call\n  global \"os\" \"popen\"\n  .args\n    str \"id\"\n", NULL, d),
                     BRINE_V_SAFETY_MISMATCH);
    assert_int_equal(judge1(CALL_DOC, CALL_TRACE, CALL_DOC, NULL, d), BRINE_V_PASS);
}

static void test_verdict_acceptable_case_takes_any_answer(void **state) {
    (void)state;
    char d[200];
    brine_text ans[2] = {doc(H "error type-error\n", ""), doc(H "tuple\n  int 1\n", "")};
    brine_expectation e = {ans, 2, true, false, false};
    size_t which = 9;
    brine_text g = doc(H "tuple\n  int 1\n", "");
    assert_int_equal(brine_judge(&e, &g, d, sizeof d, &which), BRINE_V_ACCEPTABLE);
    assert_int_equal(which, 1);
    g = doc(H "tuple\n  int 2\n", "");
    assert_int_equal(brine_judge(&e, &g, d, sizeof d, &which), BRINE_V_ACCEPT_VS_REJECT);
    assert_int_equal(which, 0);
}

static void test_verdict_memory_limit_cases_accept_resource_limit(void **state) {
    (void)state;
    char d[200];
    brine_text w = doc(H "none\n", "");
    brine_expectation e = {&w, 1, false, true, false};
    brine_text g = doc(H "error resource-limit\n", "");
    assert_int_equal(brine_judge(&e, &g, d, sizeof d, NULL), BRINE_V_ACCEPTABLE);
    e.limit_ok = false;
    assert_int_equal(brine_judge(&e, &g, d, sizeof d, NULL), BRINE_V_ACCEPT_VS_REJECT);
    /* an oracle that only hit its limit gives no verdict, even when both agree */
    brine_text lim = doc(H "error resource-limit\n", "");
    brine_expectation o = {&lim, 1, false, false, true};
    g = doc(H "none\n", "");
    assert_int_equal(brine_judge(&o, &g, d, sizeof d, NULL), BRINE_V_ORACLE_LIMIT);
    g = doc(H "error resource-limit\n", "");
    assert_int_equal(brine_judge(&o, &g, d, sizeof d, NULL), BRINE_V_ORACLE_LIMIT);
    assert_true(brine_verdict_ok(BRINE_V_ORACLE_LIMIT));
}

static void test_verdict_names_are_distinct(void **state) {
    (void)state;
    for (int a = 0; a < BRINE_V_COUNT; a++)
        for (int b = a + 1; b < BRINE_V_COUNT; b++)
            assert_string_not_equal(brine_verdict_name((brine_verdict)a),
                                    brine_verdict_name((brine_verdict)b));
    assert_false(brine_verdict_ok(BRINE_V_MISMATCH));
    assert_false(brine_verdict_ok(BRINE_V_CRASH));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_verdict_identical_answers_pass),
        cmocka_unit_test(test_verdict_value_difference_is_mismatch_with_line),
        cmocka_unit_test(test_verdict_error_class_difference_is_mismatch),
        cmocka_unit_test(test_verdict_load_versus_reject),
        cmocka_unit_test(test_verdict_missed_global_in_trace_is_safety_mismatch),
        cmocka_unit_test(test_verdict_missed_call_is_safety_mismatch),
        cmocka_unit_test(test_verdict_global_before_error_is_checked),
        cmocka_unit_test(test_verdict_forbidden_is_never_a_safety_miss),
        cmocka_unit_test(test_verdict_as_clause_is_ignored),
        cmocka_unit_test(test_verdict_other_trace_difference_is_trace_mismatch),
        cmocka_unit_test(test_verdict_without_trace_uses_document_globals),
        cmocka_unit_test(test_verdict_acceptable_case_takes_any_answer),
        cmocka_unit_test(test_verdict_memory_limit_cases_accept_resource_limit),
        cmocka_unit_test(test_verdict_names_are_distinct),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
