/* The error taxonomy: every class is produced by some input, with a message
 * and the position of the failing opcode (pkl_err.pos, libpkl's own
 * contract: the offset of the opcode, or the input end for truncation).
 *
 * The inputs come from tests/data/decode_cases.txt and each test first
 * checks that the oracle's stored verdict for that case is the class under
 * test, so the class is never asserted against the oracle's word. Only
 * `forbidden` (a policy callback) and EXT resolution through `ext_lookup`
 * have no oracle counterpart; the text of a resolved EXT is compared with
 * the oracle's text for the equivalent GLOBAL.
 */
#include "test_support.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cases.h"

#define CASES_PATH BRINE_TEST_DATA "/decode_cases.txt"


static const dcase *get_case(const char *name) {
    if (!g_loaded)
        fail_msg("cannot read %s: %s", CASES_PATH, g_load_error);
    const dcase *c = dcases_find(&g_cases, name);
    if (!c)
        fail_msg("case %s is not in %s", name, CASES_PATH);
    return c;
}

/* Loads `data` with `opts`; asserts it fails with `code`, a non-empty
   message and position `pos`. */
static void expect_failure(const void *data, size_t len, const pkl_load_opts *opts, pkl_code code,
                           size_t pos, const char *what) {
    pkl_err err = {PKL_OK, NULL, 12345};
    pkl_doc *doc = pkl_load(data, len, opts, &err);
    if (doc) {
        pkl_doc_free(doc);
        fail_msg("%s: loaded, expected error %s", what, pkl_code_name(code));
    }
    if (err.code != code)
        fail_msg("%s: error %s (%s), expected %s", what, pkl_code_name(err.code),
                 err.msg ? err.msg : "no message", pkl_code_name(code));
    if (!err.msg || !*err.msg)
        fail_msg("%s: error %s without a message", what, pkl_code_name(code));
    if (err.pos != pos)
        fail_msg("%s: error %s at position %zu, expected %zu (%s)", what, pkl_code_name(code),
                 err.pos, pos, err.msg);
}

/* The case's oracle verdict must be `code`; then libpkl must fail with it at
   `pos`. */
static void check_class(const char *name, pkl_code code, size_t pos) {
    const dcase *c = get_case(name);
    if (dcase_expected_code(c) != code)
        fail_msg("case %s: the oracle's verdict is no longer error %s; pick another input", name,
                 pkl_code_name(code));
    char what[160];
    snprintf(what, sizeof what, "case %s (%s)", name, c->desc);
    expect_failure(c->data, c->len, NULL, code, pos, what);
}

/* ------------------------------------------------------------------------ */
/* One test per class that a default load produces */

static void test_errors_truncated(void **state) {
    (void)state;
    check_class("stop_empty_input", PKL_ERR_TRUNCATED, 0);
    check_class("stop_missing", PKL_ERR_TRUNCATED, 1);               /* N */
    check_class("binint_truncated", PKL_ERR_TRUNCATED, 3);           /* J\x01\x02 */
    check_class("bytes_binbytes_truncated", PKL_ERR_TRUNCATED, 10);  /* claims 1000 */
    check_class("binunicode_huge_claim", PKL_ERR_TRUNCATED, 6);      /* claims 4 GiB */
}

static void test_errors_bad_opcode(void **state) {
    (void)state;
    check_class("opcode_bad_ff", PKL_ERR_BAD_OPCODE, 0);
    check_class("opcode_bad_after_value", PKL_ERR_BAD_OPCODE, 2); /* K\x01 \x99 */
}

static void test_errors_stack_underflow(void **state) {
    (void)state;
    check_class("stop_empty_stack", PKL_ERR_STACK_UNDERFLOW, 0);
    check_class("list_append_underflow", PKL_ERR_STACK_UNDERFLOW, 2); /* K\x01 a */
    check_class("list_append_across_mark", PKL_ERR_STACK_UNDERFLOW, 4); /* ] ( K\x01 a */
}

static void test_errors_mark_missing(void **state) {
    (void)state;
    check_class("tuple_no_mark", PKL_ERR_MARK_MISSING, 2); /* K\x01 t */
    check_class("stack_pop_mark_no_mark", PKL_ERR_MARK_MISSING, 1); /* N 1 */
}

static void test_errors_memo_missing(void **state) {
    (void)state;
    check_class("memo_binget_missing", PKL_ERR_MEMO_MISSING, 0);
    check_class("memo_get_negative", PKL_ERR_MEMO_MISSING, 5); /* K\x01 p0\n g-1\n */
}

static void test_errors_bad_argument(void **state) {
    (void)state;
    check_class("int_letters", PKL_ERR_BAD_ARGUMENT, 0);
    check_class("binunicode_overlong_nul", PKL_ERR_BAD_ARGUMENT, 0);
    check_class("long4_negative_length", PKL_ERR_BAD_ARGUMENT, 2); /* after PROTO 2 */
}

static void test_errors_unsupported_protocol(void **state) {
    (void)state;
    check_class("proto_6_unsupported", PKL_ERR_UNSUPPORTED_PROTOCOL, 0);
}

static void test_errors_type_error(void **state) {
    (void)state;
    check_class("key_unhashable_list", PKL_ERR_TYPE_ERROR, 4); /* } ] K\x01 s */
    check_class("call_reduce_not_callable", PKL_ERR_TYPE_ERROR, 3); /* K\x01 ) R */
}

static void test_errors_unknown_extension(void **state) {
    (void)state;
    check_class("ext_ext2_unregistered", PKL_ERR_UNKNOWN_EXTENSION, 2);
    check_class("ext_ext1_unregistered_p4", PKL_ERR_UNKNOWN_EXTENSION, 2);
}

static void test_errors_no_buffers(void **state) {
    (void)state;
    check_class("buffer_next_no_buffers", PKL_ERR_NO_BUFFERS, 2);
    /* buffers announced but too few of them */
    const dcase *c = get_case("buffer_next_no_buffers");
    pkl_load_opts o;
    memset(&o, 0, sizeof o);
    o.have_buffers = true;
    o.nbuffers = 0;
    expect_failure(c->data, c->len, &o, PKL_ERR_NO_BUFFERS, 2, "NEXT_BUFFER with 0 buffers");
    static const char two[] = "\x80\x05\x97\x97\x86.";
    o.nbuffers = 1;
    expect_failure(two, sizeof two - 1, &o, PKL_ERR_NO_BUFFERS, 3, "second NEXT_BUFFER, 1 buffer");
}

static void test_errors_resource_limit(void **state) {
    (void)state;
    /* CPython's int_max_str_digits (4300) is libpkl's default max_digits */
    check_class("int_4301_digits", PKL_ERR_RESOURCE_LIMIT, 0);
}

/* pkl_load with a NULL err pointer must not crash, and a success clears a
   stale err. */
static void test_errors_err_pointer_handling(void **state) {
    (void)state;
    const dcase *bad = get_case("tuple_no_mark");
    assert_null(pkl_load(bad->data, bad->len, NULL, NULL));
    pkl_err err = {PKL_ERR_TYPE_ERROR, "stale", 99};
    pkl_doc *doc = pkl_load("N.", 2, NULL, &err);
    assert_non_null(doc);
    assert_int_equal(err.code, PKL_OK);
    pkl_doc_free(doc);
}

/* The text of a failed load is the error document of section 1. */
static void test_errors_canon_error_documents(void **state) {
    (void)state;
    for (int c = PKL_ERR_TRUNCATED; c < PKL_CODE_COUNT; c++) {
        size_t len = 0;
        char *t = pkl_canon_error((pkl_code)c, NULL, &len);
        assert_non_null(t);
        char want[128];
        snprintf(want, sizeof want, "brine-canonical 1 raw\nerror %s\n", pkl_code_name((pkl_code)c));
        assert_string_equal(t, want);
        assert_int_equal(len, strlen(want));
        free(t);
    }
}

/* ------------------------------------------------------------------------ */
/* forbidden: the policy callbacks */

typedef struct policy {
    const char *refuse_module; /* NULL: refuse every global */
    bool refuse_persid;
    int global_calls, persid_calls, ext_calls;
    char module[64], name[64];
    bool persid_null; /* the last on_persid call had module == NULL */
    char persid[64];
    /* ext registry: one code */
    int64_t ext_code;
    const char *ext_module, *ext_name;
    int64_t last_ext_code;
} policy;

static void copy_text(char *dst, size_t cap, const char *s, size_t n) {
    if (n >= cap)
        n = cap - 1;
    memcpy(dst, s, n);
    dst[n] = '\0';
}

static bool on_global(void *ctx, const char *module, size_t mlen, const char *name, size_t nlen) {
    policy *p = ctx;
    p->global_calls++;
    copy_text(p->module, sizeof p->module, module, mlen);
    copy_text(p->name, sizeof p->name, name, nlen);
    if (!p->refuse_module)
        return false;
    return strcmp(p->module, p->refuse_module) != 0;
}

static bool allow_global(void *ctx, const char *module, size_t mlen, const char *name,
                         size_t nlen) {
    policy *p = ctx;
    p->global_calls++;
    copy_text(p->module, sizeof p->module, module, mlen);
    copy_text(p->name, sizeof p->name, name, nlen);
    return true;
}

static bool on_persid(void *ctx, const char *module, size_t mlen, const char *name, size_t nlen) {
    policy *p = ctx;
    (void)name;
    (void)nlen;
    p->persid_calls++;
    p->persid_null = module == NULL;
    if (module)
        copy_text(p->persid, sizeof p->persid, module, mlen);
    return !p->refuse_persid;
}

static bool ext_lookup(void *ctx, int64_t code, const char **module, size_t *mlen,
                       const char **name, size_t *nlen) {
    policy *p = ctx;
    p->ext_calls++;
    p->last_ext_code = code;
    if (code != p->ext_code)
        return false;
    *module = p->ext_module;
    *mlen = strlen(p->ext_module);
    *name = p->ext_name;
    *nlen = strlen(p->ext_name);
    return true;
}

static void test_errors_forbidden_global(void **state) {
    (void)state;
    policy p;
    memset(&p, 0, sizeof p);
    pkl_load_opts o;
    memset(&o, 0, sizeof o);
    o.on_global = on_global;
    o.ctx = &p;
    const dcase *c = get_case("global_basic"); /* cos\nsystem\n. */
    expect_failure(c->data, c->len, &o, PKL_ERR_FORBIDDEN, 0, "GLOBAL refused");
    assert_int_equal(p.global_calls, 1);
    assert_string_equal(p.module, "os");
    assert_string_equal(p.name, "system");

    /* a policy that allows one module and refuses another: the first global
       loads, the second is refused at its own offset */
    memset(&p, 0, sizeof p);
    p.refuse_module = "os";
    static const char two[] = "(cmod\nf\ncos\nsystem\nt.";
    expect_failure(two, sizeof two - 1, &o, PKL_ERR_FORBIDDEN, 8, "second GLOBAL refused");
    assert_int_equal(p.global_calls, 2);
    assert_string_equal(p.module, "os");
}

static void test_errors_forbidden_stack_global_and_inst(void **state) {
    (void)state;
    policy p;
    memset(&p, 0, sizeof p);
    pkl_load_opts o;
    memset(&o, 0, sizeof o);
    o.on_global = on_global;
    o.ctx = &p;
    const dcase *c = get_case("global_stack_basic"); /* PROTO 4, two SHORT_BINUNICODE, STACK_GLOBAL */
    expect_failure(c->data, c->len, &o, PKL_ERR_FORBIDDEN, 14, "STACK_GLOBAL refused");
    assert_string_equal(p.module, "os");
    assert_string_equal(p.name, "system");
    memset(&p, 0, sizeof p);
    c = get_case("call_inst_args"); /* ( K\x01 K\x02 imod\ncls\n . */
    expect_failure(c->data, c->len, &o, PKL_ERR_FORBIDDEN, 5, "INST refused");
    assert_string_equal(p.module, "mod");
    assert_string_equal(p.name, "cls");
}

static void test_errors_forbidden_persid(void **state) {
    (void)state;
    policy p;
    memset(&p, 0, sizeof p);
    p.refuse_persid = true;
    pkl_load_opts o;
    memset(&o, 0, sizeof o);
    o.on_persid = on_persid;
    o.ctx = &p;
    const dcase *c = get_case("persid_text"); /* Pabc\n. */
    expect_failure(c->data, c->len, &o, PKL_ERR_FORBIDDEN, 0, "PERSID refused");
    assert_int_equal(p.persid_calls, 1);
    assert_false(p.persid_null);
    assert_string_equal(p.persid, "abc");
    c = get_case("binpersid_int"); /* K\x01 Q . */
    expect_failure(c->data, c->len, &o, PKL_ERR_FORBIDDEN, 2, "BINPERSID refused");
    assert_int_equal(p.persid_calls, 2);
    assert_true(p.persid_null);
}

/* A policy that allows everything changes nothing: same text as the oracle. */
static void test_errors_allowing_policy_matches_oracle(void **state) {
    (void)state;
    static const char *const names[] = {"global_basic", "allops_protocol_5", "persid_text",
                                        "binpersid_shared_pid", "call_inst_args"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        const dcase *c = get_case(names[i]);
        policy p;
        memset(&p, 0, sizeof p);
        pkl_load_opts o;
        memset(&o, 0, sizeof o);
        o.on_global = allow_global;
        o.on_persid = on_persid;
        o.ctx = &p;
        pkl_code code;
        char *t = canon_of(c->data, c->len, &o, &code);
        assert_non_null(t);
        if (strcmp(canon_body(t), c->expect) != 0) {
            print_error("case %s\n--- expected\n%s--- got\n%s", c->name, c->expect, canon_body(t));
            free(t);
            fail();
        }
        free(t);
    }
}

/* ------------------------------------------------------------------------ */
/* EXT through a registry */

static char *load_text(const char *data, size_t len, pkl_load_opts *o) {
    pkl_code code;
    char *t = canon_of(data, len, o, &code);
    assert_non_null(t);
    return t;
}

static void assert_body(const char *text, const char *case_name) {
    const dcase *c = get_case(case_name);
    if (strcmp(canon_body(text), c->expect) != 0)
        fail_msg("expected the oracle's text of %s:\n%s--- got\n%s", case_name, c->expect,
                 canon_body(text));
}

static void test_errors_ext_lookup_resolves_to_global(void **state) {
    (void)state;
    policy p;
    memset(&p, 0, sizeof p);
    p.ext_code = 1;
    p.ext_module = "os";
    p.ext_name = "system";
    pkl_load_opts o;
    memset(&o, 0, sizeof o);
    o.ext_lookup = ext_lookup;
    o.on_global = allow_global;
    o.ctx = &p;
    /* EXT1 1 -> os.system: what GLOBAL os system loads to */
    static const char ext1[] = "\x80\x02\x82\x01.";
    char *t = load_text(ext1, sizeof ext1 - 1, &o);
    assert_body(t, "global_basic");
    free(t);
    assert_int_equal(p.ext_calls, 1);
    assert_int_equal(p.global_calls, 1); /* the policy sees EXT globals too */
    assert_string_equal(p.module, "os");

    /* EXT2 0x1234 -> mod.name is the same node as GLOBAL mod name */
    memset(&p, 0, sizeof p);
    p.ext_code = 0x1234;
    p.ext_module = "mod";
    p.ext_name = "name";
    static const char ext2[] = "\x80\x02\x83\x34\x12\x63mod\nname\n\x86.";
    t = load_text(ext2, sizeof ext2 - 1, &o);
    assert_body(t, "global_twice_same_node");
    free(t);

    /* the same code twice: one lookup, one find_class (CPython's extension
       cache), one node */
    memset(&p, 0, sizeof p);
    p.ext_code = 0x12345678;
    p.ext_module = "mod";
    p.ext_name = "name";
    static const char ext4[] = "\x80\x02\x84\x78\x56\x34\x12\x84\x78\x56\x34\x12\x86.";
    t = load_text(ext4, sizeof ext4 - 1, &o);
    assert_body(t, "global_twice_same_node");
    free(t);
    assert_int_equal(p.ext_calls, 1);
    assert_int_equal(p.global_calls, 1);
    assert_int_equal(p.last_ext_code, 0x12345678);
}

static void test_errors_ext_lookup_failures(void **state) {
    (void)state;
    policy p;
    memset(&p, 0, sizeof p);
    p.ext_code = 7;
    p.ext_module = "os";
    p.ext_name = "system";
    pkl_load_opts o;
    memset(&o, 0, sizeof o);
    o.ext_lookup = ext_lookup;
    o.ctx = &p;
    /* a code the registry does not have */
    const dcase *c = get_case("ext_ext2_unregistered");
    expect_failure(c->data, c->len, &o, PKL_ERR_UNKNOWN_EXTENSION, 2, "EXT2 not registered");
    assert_int_equal(p.ext_calls, 1);
    assert_int_equal(p.last_ext_code, 0x1234);
    /* a code <= 0 is rejected before any lookup (oracle: bad-argument) */
    c = get_case("ext_ext4_code_negative");
    assert_int_equal(dcase_expected_code(c), PKL_ERR_BAD_ARGUMENT);
    expect_failure(c->data, c->len, &o, PKL_ERR_BAD_ARGUMENT, 2, "EXT4 -1");
    assert_int_equal(p.ext_calls, 1);
    /* a registered global the policy refuses */
    memset(&p, 0, sizeof p);
    p.ext_code = 1;
    p.ext_module = "os";
    p.ext_name = "system";
    o.on_global = on_global; /* refuses everything */
    c = get_case("ext_ext1_unregistered_p5");
    expect_failure(c->data, c->len, &o, PKL_ERR_FORBIDDEN, 2, "EXT1 refused by on_global");
    assert_string_equal(p.name, "system");
}

/* ------------------------------------------------------------------------ */


int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_errors_truncated),
        cmocka_unit_test(test_errors_bad_opcode),
        cmocka_unit_test(test_errors_stack_underflow),
        cmocka_unit_test(test_errors_mark_missing),
        cmocka_unit_test(test_errors_memo_missing),
        cmocka_unit_test(test_errors_bad_argument),
        cmocka_unit_test(test_errors_unsupported_protocol),
        cmocka_unit_test(test_errors_type_error),
        cmocka_unit_test(test_errors_unknown_extension),
        cmocka_unit_test(test_errors_no_buffers),
        cmocka_unit_test(test_errors_resource_limit),
        cmocka_unit_test(test_errors_err_pointer_handling),
        cmocka_unit_test(test_errors_canon_error_documents),
        cmocka_unit_test(test_errors_forbidden_global),
        cmocka_unit_test(test_errors_forbidden_stack_global_and_inst),
        cmocka_unit_test(test_errors_forbidden_persid),
        cmocka_unit_test(test_errors_allowing_policy_matches_oracle),
        cmocka_unit_test(test_errors_ext_lookup_resolves_to_global),
        cmocka_unit_test(test_errors_ext_lookup_failures),
    };
    return cmocka_run_group_tests(tests, cases_group_setup, cases_group_teardown);
}
