/* Canonical text v1 emitter: the rules of docs/canonical-form.md.
 *
 * The pickles are CPython's own output (pickletools.optimize'd) for the
 * spec's section 7 examples; the expected texts are the spec's, and
 * tests/oracle checks the same examples on the Python emitter, so both
 * emitters are held to one text. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sha256.h"
#include "test_support.h"

/* pickle.dumps([1, 2.5, "é", b"\x00"], 3) */
static void test_canon_spec_scalars(void **state) {
    (void)state;
    assert_canon("\x80\x03](K\x01G@\x04\x00\x00\x00\x00\x00\x00X\x02\x00\x00\x00\xc3\xa9"
                 "C\x01\x00"
                 "e.",
                 "list\n"
                 "  int 1\n"
                 "  float 4004000000000000\n"
                 "  str \"\\xe9\"\n"
                 "  bytes \"\\x00\"\n");
}

/* a = []; a.append(a); pickle.dumps(a, 2) */
static void test_canon_spec_self_reference(void **state) {
    (void)state;
    assert_canon("\x80\x02]q\x00h\x00" "a.", "list #1\n  ref #1\n");
}

/* t = (2**64, -2**63); pickle.dumps([t, t], 2) */
static void test_canon_spec_shared_tuple_big_ints(void **state) {
    (void)state;
    assert_canon("\x80\x02](\x8a\x09\x00\x00\x00\x00\x00\x00\x00\x00\x01\x8a\x08\x00\x00\x00"
                 "\x00\x00\x00\x00\x80\x86q\x00h\x00" "e.",
                 "list\n"
                 "  tuple #1\n"
                 "    int 0x10000000000000000\n"
                 "    int -9223372036854775808\n"
                 "  ref #1\n");
}

/* pickle.dumps({frozenset({3, 1}): None}, 4) */
static void test_canon_spec_frozenset_key(void **state) {
    (void)state;
    assert_canon("\x80\x04\x95\x0a\x00\x00\x00\x00\x00\x00\x00}(K\x01K\x03\x91Ns.",
                 "dict\n  frozenset\n    int 1\n    int 3\n  none\n");
}

/* class C: pass; c = C(); c.x = 1; pickle.dumps(c, 2) */
static void test_canon_spec_instance(void **state) {
    (void)state;
    assert_canon("\x80\x02" "c__main__\x0a" "C\x0a)\x81}X\x01\x00\x00\x00xK\x01sb.",
                 "new\n"
                 "  global \"__main__\" \"C\"\n"
                 "  .build\n"
                 "    dict\n"
                 "      str \"x\"\n"
                 "      int 1\n");
}

/* pickle.dumps({1}, 0): raw level keeps the call */
static void test_canon_spec_protocol0_set(void **state) {
    (void)state;
    assert_canon("c__builtin__\x0aset\x0a((lI1\x0a" "atR.",
                 "call\n"
                 "  global \"__builtin__\" \"set\"\n"
                 "  .args\n"
                 "    list\n"
                 "      int 1\n");
}

/* Quoting and number formats: pickle.dumps(['a"\\\n\x7f\u00e9\ud800\U0001f600',
   b'\x00"\\ab\xff', bytearray(b'q'), -0.0, 0, -1, -2**63, 2**63-1, 2**64, -2**64,
   2**67, True, False, None], 4) */
static void test_canon_quoting_and_numbers(void **state) {
    (void)state;
    assert_canon(
        "\x80\x04\x95\x88\x00\x00\x00\x00\x00\x00\x00]\x94(\x8c\x0e"
        "a\x22\x5c\x0a\x7f\xc3\xa9\xed\xa0\x80\xf0\x9f\x98\x80\x94"
        "C\x06\x00\x22\x5c"
        "ab\xff\x94\x8c\x08"
        "builtins\x94\x8c\x09"
        "bytearray\x94\x93\x94"
        "C\x01q\x94\x85\x94R\x94G\x80\x00\x00\x00\x00\x00\x00\x00K\x00J\xff\xff\xff\xff\x8a\x08"
        "\x00\x00\x00\x00\x00\x00\x00\x80\x8a\x08\xff\xff\xff\xff\xff\xff\xff\x7f\x8a\x09\x00"
        "\x00\x00\x00\x00\x00\x00\x00\x01\x8a\x09\x00\x00\x00\x00\x00\x00\x00\x00\xff\x8a\x09"
        "\x00\x00\x00\x00\x00\x00\x00\x00\x08\x88\x89Ne.",
        "list\n"
        "  str \"a\\\"\\\\\\x0a\\x7f\\xe9\\ud800\\U0001f600\"\n"
        "  bytes \"\\x00\\\"\\\\ab\\xff\"\n"
        "  call\n"
        "    global \"builtins\" \"bytearray\"\n"
        "    .args\n"
        "      bytes \"q\"\n"
        "  float 8000000000000000\n"
        "  int 0\n"
        "  int -1\n"
        "  int -9223372036854775808\n"
        "  int 9223372036854775807\n"
        "  int 0x10000000000000000\n"
        "  int -0x10000000000000000\n"
        "  int 0x80000000000000000\n"
        "  bool true\n"
        "  bool false\n"
        "  none\n");
}

/* pickle.dumps({9, 10, 'a', -1}, 4): scalars sort by their line text. */
static void test_canon_set_scalars_sorted_by_text(void **state) {
    (void)state;
    assert_canon("\x80\x04\x95\x12\x00\x00\x00\x00\x00\x00\x00\x8f\x94(K\x09K\x0a\x8c\x01"
                 "a\x94J\xff\xff\xff\xff\x90.",
                 "set\n  int -1\n  int 10\n  int 9\n  str \"a\"\n");
}

static void hex_digest(const char *text, char out[65]) {
    pkl_sha256 s;
    uint8_t d[32];
    pkl_sha256_init(&s);
    pkl_sha256_update(&s, text, strlen(text));
    pkl_sha256_final(&s, d);
    for (int i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", d[i]);
}

/* Non-scalar elements come after scalars, ordered by D(n, 1) of section 5,
   which the test computes from the spec's formula. */
static void test_canon_set_composites_sorted_by_digest(void **state) {
    (void)state;
    /* frozenset({(1,), (2,), 7}) built by hand: MARK K1 TUPLE1 K2 TUPLE1 K7 FROZENSET */
    static const char pkl[] = "\x80\x04(K\x01\x85K\x02\x85K\x07\x91.";
    char d1[65], d2[65];
    hex_digest("tuple(int 1)", d1);
    hex_digest("tuple(int 2)", d2);
    const char *first = strcmp(d1, d2) < 0 ? "1" : "2";
    const char *second = strcmp(d1, d2) < 0 ? "2" : "1";
    char expected[256];
    snprintf(expected, sizeof expected,
             "frozenset\n  int 7\n  tuple\n    int %s\n  tuple\n    int %s\n", first, second);
    assert_canon_impl(pkl, sizeof pkl - 1, expected, __FILE__, __LINE__);
}

/* Digests nest: a set inside a set contributes the digest of its own
   sorted elements. frozenset({frozenset({1}), frozenset({2, 3})}) */
static void test_canon_set_nested_digest(void **state) {
    (void)state;
    static const char pkl[] = "\x80\x04((K\x01\x91(K\x03K\x02\x91\x91.";
    char a[65], b[65];
    hex_digest("frozenset(int 1)", a);
    hex_digest("frozenset(int 2,int 3)", b);
    char expected[256];
    if (strcmp(a, b) < 0)
        snprintf(expected, sizeof expected,
                 "frozenset\n  frozenset\n    int 1\n  frozenset\n    int 2\n    int 3\n");
    else
        snprintf(expected, sizeof expected,
                 "frozenset\n  frozenset\n    int 2\n    int 3\n  frozenset\n    int 1\n");
    assert_canon_impl(pkl, sizeof pkl - 1, expected, __FILE__, __LINE__);
}

/* Scalars, the empty tuple and the empty frozenset are never labelled,
   even when the same node is reached twice (memo). */
static void test_canon_unlabelled_kinds_repeat(void **state) {
    (void)state;
    /* [s, s, (), (), frozenset(), frozenset()] with s a memoized str */
    assert_canon("\x80\x04](\x8c\x01xq\x00h\x00)q\x01h\x01(\x91q\x02h\x02" "e.",
                 "list\n  str \"x\"\n  str \"x\"\n  tuple\n  tuple\n  frozenset\n  frozenset\n");
}

/* The argument tuple of a call is printed inline; its own identity is not
   part of the text, but its elements' identity is. */
static void test_canon_args_tuple_identity_hidden(void **state) {
    (void)state;
    /* t = ([],); [f(*t), t] where f is a global: the list is shared, the tuple is not */
    assert_canon("\x80\x02](cm\x0a" "f\x0a]\x85q\x00Rh\x00" "e.",
                 "list\n"
                 "  call\n"
                 "    global \"m\" \"f\"\n"
                 "    .args\n"
                 "      list #1\n"
                 "  tuple\n"
                 "    ref #1\n");
}

/* Mutations on stubs print in the order performed. */
static void test_canon_stub_mutations_in_order(void **state) {
    (void)state;
    /* cm\nC\n ) NEWOBJ  K1 APPEND  X'k' K2 SETITEM  }BUILD */
    assert_canon("\x80\x02" "cm\x0a" "C\x0a)\x81K\x01" "aX\x01\x00\x00\x00kK\x02s}b.",
                 "new\n"
                 "  global \"m\" \"C\"\n"
                 "  .append\n"
                 "    int 1\n"
                 "  .setitem\n"
                 "    str \"k\"\n"
                 "    int 2\n"
                 "  .build\n"
                 "    dict\n");
}

/* ---- emitter properties that no oracle can check */

/* A pickle of `depth` nested lists: ] ] ] ... a a a . */
static char *nested_lists(size_t depth, size_t *len) {
    char *p = malloc(2 * depth + 4);
    size_t n = 0;
    p[n++] = '\x80';
    p[n++] = '\x02';
    for (size_t i = 0; i < depth; i++)
        p[n++] = ']';
    for (size_t i = 1; i < depth; i++)
        p[n++] = 'a';
    p[n++] = '.';
    *len = n;
    return p;
}

static void test_canon_deep_nesting_is_linear(void **state) {
    (void)state;
    size_t len, depth = 1000000, out_len = 0;
    char *p = nested_lists(depth, &len);
    pkl_err err = {PKL_OK, NULL, 0};
    pkl_doc *doc = pkl_load(p, len, NULL, &err);
    assert_non_null(doc);
    char *text = pkl_canon(doc, NULL, (size_t)1 << 30, &out_len, &err);
    assert_non_null(text);
    /* 32 indented lines, then "@<depth> list\n": under 16 bytes a line */
    assert_true(out_len < 16 * depth);
    assert_non_null(strstr(text, "\n@33 list\n"));
    assert_non_null(strstr(text, "\n@999999 list\n"));
    assert_null(strstr(text, "\n@1000000 list\n"));
    free(text);
    pkl_doc_free(doc);
    free(p);
}

static void test_canon_max_output_enforced(void **state) {
    (void)state;
    static const char pkl[] = "\x80\x02]q\x00h\x00" "a.";
    pkl_err err = {PKL_OK, NULL, 0};
    pkl_doc *doc = pkl_load(pkl, sizeof pkl - 1, NULL, &err);
    assert_non_null(doc);
    size_t full_len = 0;
    char *full = pkl_canon(doc, NULL, 1 << 20, &full_len, &err);
    assert_non_null(full);
    free(full);
    /* exactly at the limit: fits; one byte under: refused */
    char *fits = pkl_canon(doc, NULL, full_len, NULL, &err);
    assert_non_null(fits);
    free(fits);
    char *over = pkl_canon(doc, NULL, full_len - 1, NULL, &err);
    assert_null(over);
    assert_int_equal(err.code, PKL_ERR_RESOURCE_LIMIT);
    pkl_doc_free(doc);
}

/* Every allocation the emitter makes may fail: it then returns NULL with
   resource-limit and frees everything it took. */
static void test_canon_allocation_failure_is_clean(void **state) {
    (void)state;
    /* a set of tuples (digest path), a shared list, stubs */
    static const char pkl[] = "\x80\x04](\x28K\x01\x85K\x02\x85\x91q\x00h\x00" "cm\x0a"
                              "f\x0a]\x85R}b" "e.";
    pkl_err err = {PKL_OK, NULL, 0};
    pkl_doc *doc = pkl_load(pkl, sizeof pkl - 1, NULL, &err);
    assert_non_null(doc);
    size_t fail_at = 1;
    for (;; fail_at++) {
        failing_alc f;
        failing_alc_init(&f, fail_at);
        char *text = pkl_canon(doc, &f.alc, 1 << 20, NULL, &err);
        if (text) {
            f.alc.free(f.alc.ctx, text);
            assert_int_equal(f.live, 0);
            break;
        }
        assert_int_equal(err.code, PKL_ERR_RESOURCE_LIMIT);
        assert_int_equal(f.live, 0);
        assert_int_equal(f.live_blocks, 0);
        assert_true(fail_at < 10000);
    }
    assert_true(fail_at > 3); /* the loop really exercised failures */
    pkl_doc_free(doc);
}

static void test_canon_error_document(void **state) {
    (void)state;
    for (int c = PKL_ERR_TRUNCATED; c < PKL_CODE_COUNT; c++) {
        size_t len = 0;
        char *t = pkl_canon_error((pkl_code)c, NULL, &len);
        char expected[128];
        snprintf(expected, sizeof expected, "brine-canonical 1 raw\nerror %s\n",
                 pkl_code_name((pkl_code)c));
        assert_string_equal(t, expected);
        assert_int_equal(len, strlen(expected));
        free(t);
    }
}

static void test_canon_sha256_vectors(void **state) {
    (void)state;
    char d[65];
    hex_digest("abc", d);
    assert_string_equal(d, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    hex_digest("", d);
    assert_string_equal(d, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    hex_digest("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", d);
    assert_string_equal(d, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_canon_spec_scalars),
        cmocka_unit_test(test_canon_spec_self_reference),
        cmocka_unit_test(test_canon_spec_shared_tuple_big_ints),
        cmocka_unit_test(test_canon_spec_frozenset_key),
        cmocka_unit_test(test_canon_spec_instance),
        cmocka_unit_test(test_canon_spec_protocol0_set),
        cmocka_unit_test(test_canon_quoting_and_numbers),
        cmocka_unit_test(test_canon_set_scalars_sorted_by_text),
        cmocka_unit_test(test_canon_set_composites_sorted_by_digest),
        cmocka_unit_test(test_canon_set_nested_digest),
        cmocka_unit_test(test_canon_unlabelled_kinds_repeat),
        cmocka_unit_test(test_canon_args_tuple_identity_hidden),
        cmocka_unit_test(test_canon_stub_mutations_in_order),
        cmocka_unit_test(test_canon_deep_nesting_is_linear),
        cmocka_unit_test(test_canon_max_output_enforced),
        cmocka_unit_test(test_canon_allocation_failure_is_clean),
        cmocka_unit_test(test_canon_error_document),
        cmocka_unit_test(test_canon_sha256_vectors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
