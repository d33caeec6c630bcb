/* harness/compare: verdicts, signatures and the report on hand-made answer
 * pairs. The inputs are texts given to the comparator, not claims about
 * what CPython answers, so writing them by hand is the point. */
#include "test_support.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compare.h"

#define H "brine-canonical 1 raw\n"

static brine_cmp_side side(const char *text, const char *trace) {
    brine_cmp_side s = {text, strlen(text), trace, trace ? strlen(trace) : 0, 0};
    return s;
}

/* Compares with the input given as a string literal. */
static brine_cmp_result cmp(const char *data, size_t len, const char *pkl_text,
                            const char *pkl_trace, pkl_code code, size_t pos,
                            const char *py_text, const char *py_trace) {
    brine_cmp_side a = side(pkl_text, pkl_trace), b = side(py_text, py_trace);
    pkl_err e = {code, code == PKL_OK ? NULL : "test", pos};
    brine_cmp_result r;
    brine_compare((const uint8_t *)data, len, &a, &e, &b, &r);
    return r;
}
#define LIT(s) (s), (sizeof(s) - 1)

static void test_compare_identical_agree(void **state) {
    (void)state;
    brine_cmp_result r = cmp(LIT("]K\x01" "a."), H "list\n  int 1\n", "", PKL_OK, 0,
                             H "list\n  int 1\n", "");
    assert_int_equal(r.verdict, BRINE_CMP_AGREE);
    assert_string_equal(r.signature, "");
    r = cmp(LIT("cos\nsystem\n)R."), H "call\n  global \"os\" \"system\"\n",
            "1 global \"os\" \"system\"\n2 call 1\n", PKL_OK, 0,
            H "call\n  global \"os\" \"system\"\n", "1 global \"os\" \"system\"\n2 call 1\n");
    assert_int_equal(r.verdict, BRINE_CMP_AGREE);
}

static void test_compare_as_clause_ignored(void **state) {
    (void)state;
    const char *t = H "global \"copy_reg\" \"_reconstructor\"\n";
    brine_cmp_result r =
        cmp(LIT("ccopy_reg\n_reconstructor\n."), t, "1 global \"copy_reg\" \"_reconstructor\"\n",
            PKL_OK, 0, t,
            "1 global \"copy_reg\" \"_reconstructor\" as \"copyreg\" \"_reconstructor\"\n");
    assert_int_equal(r.verdict, BRINE_CMP_AGREE);
}

static void test_compare_as_inside_a_name_is_not_a_clause(void **state) {
    (void)state;
    /* the name `a as ` quotes to "a as ": the text ` as "` inside the
       quotes must not be taken for the clause */
    const char *t = H "none\n";
    brine_cmp_result r = cmp(LIT("N."), t, "1 global \"m\" \"a\"\n", PKL_OK, 0, t,
                             "1 global \"m\" \"a as \"\n");
    assert_int_equal(r.verdict, BRINE_CMP_DIVERGE);
    assert_int_equal(r.decision, BRINE_CMP_TRACE_ONLY);
    r = cmp(LIT("N."), t, "1 global \"m\" \"a as \"\n", PKL_OK, 0, t,
            "1 global \"m\" \"a as \" as \"x\" \"y\"\n");
    assert_int_equal(r.verdict, BRINE_CMP_AGREE);
    /* an escaped quote inside the module name */
    r = cmp(LIT("N."), t, "1 global \"m\\\" as \\\"q\" \"n\"\n", PKL_OK, 0, t,
            "1 global \"m\\\" as \\\"q\" \"n\" as \"x\" \"y\"\n");
    assert_int_equal(r.verdict, BRINE_CMP_AGREE);
}

static void test_compare_cpython_resource_limit_is_no_verdict(void **state) {
    (void)state;
    brine_cmp_result r = cmp(LIT("Nr\x00\x00\x00\x02."), H "none\n", "", PKL_OK, 0,
                             H "error resource-limit\n", "");
    assert_int_equal(r.verdict, BRINE_CMP_NO_VERDICT);
    assert_non_null(r.no_verdict_reason);
    assert_string_equal(r.signature, "");
    /* a CPython load that ran into a limit gives no verdict whatever its
       text says */
    {
        brine_cmp_side a = side(H "none\n", ""), b = side(H "error truncated\n", "");
        b.limited = 1;
        brine_compare((const uint8_t *)"N.", 2, &a, NULL, &b, &r);
        assert_int_equal(r.verdict, BRINE_CMP_NO_VERDICT);
        b.limited = 0;
        brine_compare((const uint8_t *)"N.", 2, &a, NULL, &b, &r);
        assert_int_equal(r.verdict, BRINE_CMP_DIVERGE);
    }
    /* answers that agree are agreement, limit or not */
    r = cmp(LIT("N."), H "error resource-limit\n", "", PKL_ERR_RESOURCE_LIMIT, 0,
            H "error resource-limit\n", "");
    assert_int_equal(r.verdict, BRINE_CMP_AGREE);
    {
        brine_cmp_side a = side(H "error truncated\n", ""), b = side(H "error truncated\n", "");
        b.limited = 1;
        brine_compare((const uint8_t *)"\x8e", 1, &a, NULL, &b, &r);
        assert_int_equal(r.verdict, BRINE_CMP_AGREE);
    }
}

static void test_compare_pkl_resource_limit_is_a_divergence(void **state) {
    (void)state;
    brine_cmp_result r = cmp(LIT("]K\x01" "a."), H "error resource-limit\n", "",
                             PKL_ERR_RESOURCE_LIMIT, 1, H "list\n  int 1\n", "");
    assert_int_equal(r.verdict, BRINE_CMP_DIVERGE);
    assert_string_equal(r.signature, "pkl-rejects.error-resource-limit.list.BININT1");
}

static void test_compare_pkl_rejects_names_failing_opcode(void **state) {
    (void)state;
    brine_cmp_result r = cmp(LIT("]K\x01" "a."), H "error truncated\n", "", PKL_ERR_TRUNCATED, 1,
                             H "list\n  int 1\n", "");
    assert_int_equal(r.verdict, BRINE_CMP_DIVERGE);
    assert_int_equal(r.decision, BRINE_CMP_PKL_REJECTS);
    assert_int_equal(r.line, 2);
    assert_string_equal(r.pkl_kind, "error-truncated");
    assert_string_equal(r.py_kind, "list");
    assert_string_equal(r.opcode, "BININT1");
    assert_int_equal(r.op_pos, 1);
    assert_string_equal(r.signature, "pkl-rejects.error-truncated.list.BININT1");
}

static void test_compare_truncation_at_end_names_last_started_opcode(void **state) {
    (void)state;
    /* BINUNICODE claims 9 bytes, 2 remain: libpkl reports the input end */
    brine_cmp_result r = cmp(LIT("\x80\x02X\x09\x00\x00\x00" "ab"), H "error truncated\n", "",
                             PKL_ERR_TRUNCATED, 9, H "error bad-argument\n", "");
    assert_int_equal(r.decision, BRINE_CMP_BOTH_REJECT_DIFFERENT);
    assert_string_equal(r.signature,
                        "both-reject-different-class.error-truncated.error-bad-argument.BINUNICODE");
    assert_int_equal(r.op_pos, 2);
}

static void test_compare_cpython_rejects_names_last_opcode_before_stop(void **state) {
    (void)state;
    brine_cmp_result r = cmp(LIT("]K\x01" "a."), H "list\n  int 1\n", "", PKL_OK, 0,
                             H "error type-error\n", "");
    assert_int_equal(r.decision, BRINE_CMP_CPYTHON_REJECTS);
    assert_string_equal(r.signature, "cpython-rejects.list.error-type-error.APPEND");
    assert_int_equal(r.op_pos, 3);
}

static void test_compare_both_load_first_differing_kind(void **state) {
    (void)state;
    brine_cmp_result r =
        cmp(LIT("(K\x01G@\x00\x00\x00\x00\x00\x00\x00l."), H "list\n  int 1\n  int 2\n", "",
            PKL_OK, 0, H "list\n  int 1\n  float 4000000000000000\n", "");
    assert_int_equal(r.decision, BRINE_CMP_BOTH_LOAD);
    assert_int_equal(r.line, 4);
    assert_int_equal(r.in_trace, 0);
    assert_string_equal(r.signature, "both-load.int.float.LIST");
}

static void test_compare_slots_refs_and_deep_lines(void **state) {
    (void)state;
    brine_cmp_result r = cmp(LIT("N."), H "list #1\n@40 .args\n", "", PKL_OK, 0,
                             H "list #1\n@40 ref #1\n", "");
    assert_string_equal(r.pkl_kind, "slot-args");
    assert_string_equal(r.py_kind, "ref");
    r = cmp(LIT("N."), H "list\n", "", PKL_OK, 0, H "list\n  none\n", "");
    assert_string_equal(r.pkl_kind, "end");
    assert_string_equal(r.py_kind, "none");
    assert_string_equal(r.signature, "both-load.end.none.NONE");
}

static void test_compare_trace_only(void **state) {
    (void)state;
    const char *t = H "global \"m\" \"n\"\n";
    brine_cmp_result r =
        cmp(LIT("\x8c\x01m\x8c\x01n\x93."), t, "1 global \"m\" \"n\"\n", PKL_OK, 0, t, "");
    assert_int_equal(r.verdict, BRINE_CMP_DIVERGE);
    assert_int_equal(r.decision, BRINE_CMP_TRACE_ONLY);
    assert_int_equal(r.in_trace, 1);
    assert_int_equal(r.line, 1);
    assert_string_equal(r.signature, "trace-only.global.end.STACK_GLOBAL");
}

static void test_compare_opcode_context_edges(void **state) {
    (void)state;
    brine_cmp_result r = cmp("", 0, H "error truncated\n", "", PKL_ERR_TRUNCATED, 0,
                             H "error stack-underflow\n", "");
    assert_string_equal(r.opcode, "none");
    assert_int_equal(r.op_pos, SIZE_MAX);
    r = cmp(LIT("\xff"), H "error bad-opcode\n", "", PKL_ERR_BAD_OPCODE, 0,
            H "error truncated\n", "");
    assert_string_equal(r.signature, "both-reject-different-class.error-bad-opcode.error-truncated.byte-ff");
    /* STOP first: the context is STOP itself */
    r = cmp(LIT("."), H "none\n", "", PKL_OK, 0, H "error stack-underflow\n", "");
    assert_string_equal(r.opcode, "STOP");
}

static void test_compare_signature_is_filename_safe(void **state) {
    (void)state;
    brine_cmp_result r = cmp(LIT("N."), H "in/t\x01 5\n", "", PKL_OK, 0, H "fl:o*a\"t 5\n", "");
    assert_int_equal(r.verdict, BRINE_CMP_DIVERGE);
    for (const char *p = r.signature; *p; p++) {
        char c = *p;
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '_' || c == '-' || c == '.';
        if (!ok)
            fail_msg("signature %s holds 0x%02x", r.signature, (unsigned)(unsigned char)c);
    }
    assert_string_equal(r.signature, "both-load.in-t-.fl-o-a-t.NONE");
    assert_true(brine_cmp_sig_hash(r.signature) != brine_cmp_sig_hash("both-load.int.float.NONE"));
}

static void test_compare_report_is_readable_and_bounded(void **state) {
    (void)state;
    const char *data = "(K\x01G@\x00\x00\x00\x00\x00\x00\x00l.";
    size_t len = 14;
    brine_cmp_side a = side(H "list\n  int 1\n  int 2\n", "");
    brine_cmp_side b = side(H "list\n  int 1\n  float 4000000000000000\n", "");
    brine_cmp_result r;
    brine_compare((const uint8_t *)data, len, &a, NULL, &b, &r);
    char *rep = brine_cmp_report((const uint8_t *)data, len, &a, &b, &r, 0);
    assert_non_null(rep);
    assert_non_null(strstr(rep, "brine-divergence-signature: both-load.int.float.LIST\n"));
    assert_non_null(strstr(rep, "\n-  int 2\n+  float 4000000000000000\n"));
    assert_non_null(strstr(rep, "\n   int 1\n")); /* context line */
    assert_non_null(strstr(rep, "BINFLOAT"));    /* the disassembly */
    free(rep);

    /* a huge document is cut, and the report stays under its bound */
    size_t n = 100000;
    char *big = malloc(sizeof H + 5 + n * 8);
    assert_non_null(big);
    strcpy(big, H "list\n");
    size_t off = strlen(big);
    for (size_t i = 0; i < n; i++, off += 8)
        memcpy(big + off, "  int 7\n", 8);
    big[off] = 0;
    brine_cmp_side c = side(big, "");
    brine_cmp_side d = side(H "list\n", "");
    brine_compare((const uint8_t *)data, len, &c, NULL, &d, &r);
    rep = brine_cmp_report((const uint8_t *)data, len, &c, &d, &r, 4096);
    assert_non_null(rep);
    assert_true(strlen(rep) < 4096);
    assert_non_null(strstr(rep, "... (more lines)"));
    free(rep);
    free(big);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_compare_identical_agree),
        cmocka_unit_test(test_compare_as_clause_ignored),
        cmocka_unit_test(test_compare_as_inside_a_name_is_not_a_clause),
        cmocka_unit_test(test_compare_cpython_resource_limit_is_no_verdict),
        cmocka_unit_test(test_compare_pkl_resource_limit_is_a_divergence),
        cmocka_unit_test(test_compare_pkl_rejects_names_failing_opcode),
        cmocka_unit_test(test_compare_truncation_at_end_names_last_started_opcode),
        cmocka_unit_test(test_compare_cpython_rejects_names_last_opcode_before_stop),
        cmocka_unit_test(test_compare_both_load_first_differing_kind),
        cmocka_unit_test(test_compare_slots_refs_and_deep_lines),
        cmocka_unit_test(test_compare_trace_only),
        cmocka_unit_test(test_compare_opcode_context_edges),
        cmocka_unit_test(test_compare_signature_is_filename_safe),
        cmocka_unit_test(test_compare_report_is_readable_and_bounded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
