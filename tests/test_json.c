#define _POSIX_C_SOURCE 200809L /* open_memstream */
/* The JSON reader and string writer of the harness (harness/json.h): RFC 8259
 * acceptance and rejection, member order, escapes, deep nesting without
 * recursion, and that what the writer writes the reader reads back.
 */
#include "test_support.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"

static brine_json_doc *parse(const char *s) {
    char err[200];
    return brine_json_parse(s, strlen(s), err, sizeof err);
}

static void test_json_parses_nested_values_in_order(void **state) {
    (void)state;
    brine_json_doc *d = parse(" {\"b\": [1, -2.5e1, true, false, null], \"a\": {\"x\": \"y\"}} ");
    assert_non_null(d);
    const brine_json *r = brine_json_root(d);
    assert_int_equal(r->type, BRINE_JSON_OBJECT);
    assert_int_equal(r->len, 2);
    assert_string_equal(r->keys[0], "b");
    assert_string_equal(r->keys[1], "a");
    const brine_json *b = brine_json_get(r, "b");
    assert_int_equal(b->len, 5);
    assert_true(b->items[0]->num == 1.0);
    assert_true(b->items[1]->num == -25.0);
    assert_int_equal(b->items[2]->type, BRINE_JSON_TRUE);
    assert_int_equal(b->items[3]->type, BRINE_JSON_FALSE);
    assert_int_equal(b->items[4]->type, BRINE_JSON_NULL);
    assert_string_equal(brine_json_get_str(brine_json_get(r, "a"), "x", NULL), "y");
    assert_null(brine_json_get(r, "missing"));
    assert_string_equal(brine_json_get_str(r, "missing", "dflt"), "dflt");
    brine_json_free(d);
}

static void test_json_decodes_escapes_and_surrogate_pairs(void **state) {
    (void)state;
    brine_json_doc *d = parse("\"a\\n\\\"\\\\\\/\\u00e9\\ud83d\\ude00\\u0000z\"");
    assert_non_null(d);
    const brine_json *r = brine_json_root(d);
    static const char want[] = "a\n\"\\/\xc3\xa9\xf0\x9f\x98\x80\0z";
    assert_int_equal(r->len, sizeof want - 1);
    assert_memory_equal(r->str, want, sizeof want - 1);
    brine_json_free(d);
}

static void test_json_rejects_what_rfc8259_rejects(void **state) {
    (void)state;
    static const char *const bad[] = {
        "",          "[1,]",       "{\"a\":1,}", "[1 2]",   "{\"a\" 1}", "{a:1}",
        "\"\x01\"",  "\"abc",      "[",          "01",      "1.",       "1e",
        "tru",       "[1] x",      "\"\\x41\"",  "\"\\u12\"", "-",      "{\"a\":}",
        "// c\n1",   "[1,,2]",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char err[200] = "";
        brine_json_doc *d = brine_json_parse(bad[i], strlen(bad[i]), err, sizeof err);
        if (d)
            fail_msg("accepted invalid JSON %s", bad[i]);
        assert_true(strstr(err, "JSON error at byte") != NULL);
    }
}

static void test_json_deep_nesting_costs_no_stack(void **state) {
    (void)state;
    size_t depth = 1000000;
    char *s = malloc(2 * depth + 1);
    assert_non_null(s);
    memset(s, '[', depth);
    memset(s + depth, ']', depth);
    s[2 * depth] = '\0';
    char err[200];
    brine_json_doc *d = brine_json_parse(s, 2 * depth, err, sizeof err);
    assert_non_null(d);
    const brine_json *v = brine_json_root(d);
    size_t seen = 1;
    while (v->len) {
        v = v->items[0];
        seen++;
    }
    assert_int_equal(seen, depth);
    brine_json_free(d);
    free(s);
}

static void test_json_writer_output_reads_back(void **state) {
    (void)state;
    static const char src[] = "q\"b\\s/\n\t\x01\xc3\xa9\xf0\x9f\x98\x80\xff.";
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_non_null(f);
    brine_json_write_str(f, src, sizeof src - 1);
    fclose(f);
    for (size_t i = 0; i < len; i++)
        assert_true((unsigned char)buf[i] >= 0x20 && (unsigned char)buf[i] < 0x7f);
    char err[200];
    brine_json_doc *d = brine_json_parse(buf, len, err, sizeof err);
    assert_non_null(d);
    const brine_json *r = brine_json_root(d);
    /* the invalid byte 0xff becomes U+FFFD; everything else is kept */
    static const char want[] = "q\"b\\s/\n\t\x01\xc3\xa9\xf0\x9f\x98\x80\xef\xbf\xbd.";
    assert_int_equal(r->len, sizeof want - 1);
    assert_memory_equal(r->str, want, sizeof want - 1);
    brine_json_free(d);
    free(buf);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_parses_nested_values_in_order),
        cmocka_unit_test(test_json_decodes_escapes_and_surrogate_pairs),
        cmocka_unit_test(test_json_rejects_what_rfc8259_rejects),
        cmocka_unit_test(test_json_deep_nesting_costs_no_stack),
        cmocka_unit_test(test_json_writer_output_reads_back),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
