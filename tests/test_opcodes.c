/* The opcode table and the name tables: internal consistency.
 *
 * That the table says what pickletools says is checked against every
 * CPython found by tests/spec/check_opcodes.py; here: 68 rows, unique bytes
 * and names, lookups that round-trip, argument layouts that agree with the
 * argument kinds, and the error/kind name tables.
 */
#include "test_support.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

static void test_opcodes_count_is_68(void **state) {
    (void)state;
    assert_int_equal(pkl_opcode_count(), 68);
    for (size_t i = 0; i < pkl_opcode_count(); i++)
        assert_non_null(pkl_opcode_at(i));
    assert_null(pkl_opcode_at(pkl_opcode_count()));
    assert_null(pkl_opcode_at((size_t)-1));
}

static void test_opcodes_bytes_and_names_unique(void **state) {
    (void)state;
    size_t n = pkl_opcode_count();
    for (size_t i = 0; i < n; i++) {
        const pkl_opinfo *a = pkl_opcode_at(i);
        assert_non_null(a->name);
        assert_true(strlen(a->name) > 0);
        for (const char *s = a->name; *s; s++)
            if (!(isupper((unsigned char)*s) || isdigit((unsigned char)*s) || *s == '_'))
                fail_msg("opcode name %s: not a pickletools-style name", a->name);
        for (size_t j = i + 1; j < n; j++) {
            const pkl_opinfo *b = pkl_opcode_at(j);
            if (a->code == b->code)
                fail_msg("byte 0x%02x is both %s and %s", a->code, a->name, b->name);
            if (strcmp(a->name, b->name) == 0)
                fail_msg("name %s used twice", a->name);
        }
    }
}

static void test_opcodes_info_round_trips(void **state) {
    (void)state;
    for (size_t i = 0; i < pkl_opcode_count(); i++) {
        const pkl_opinfo *op = pkl_opcode_at(i);
        const pkl_opinfo *back = pkl_opcode_info(op->code);
        if (back != op)
            fail_msg("pkl_opcode_info(0x%02x) is not row %zu (%s)", op->code, i, op->name);
    }
}

static void test_opcodes_other_bytes_are_not_opcodes(void **state) {
    (void)state;
    size_t found = 0;
    for (int b = 0; b < 256; b++) {
        const pkl_opinfo *op = pkl_opcode_info((uint8_t)b);
        bool in_table = false;
        for (size_t i = 0; i < pkl_opcode_count(); i++)
            if (pkl_opcode_at(i)->code == b)
                in_table = true;
        if (in_table != (op != NULL))
            fail_msg("byte 0x%02x: in table %d, pkl_opcode_info %s", b, in_table,
                     op ? op->name : "NULL");
        if (op) {
            found++;
            assert_int_equal(op->code, b);
        }
    }
    assert_int_equal(found, 68);
}

/* The digit that ends a pickletools argument name is its width: uint1,
   int4, uint8, float8, long1/long4, string1/string4, bytes1/4/8,
   bytearray8, unicodestring1/4/8. Line arguments end in "nl" (or "_pair"
   for the two-line ones). */
static void test_opcodes_arg_layouts_consistent(void **state) {
    (void)state;
    for (size_t i = 0; i < pkl_opcode_count(); i++) {
        const pkl_opinfo *op = pkl_opcode_at(i);
        assert_non_null(op->arg_name);
        size_t n = strlen(op->arg_name);
        const char *nm = op->name;
        switch (op->layout) {
        case PKL_LAYOUT_NONE:
            if (op->arg != PKL_ARG_NONE || n != 0 || op->width != 0)
                fail_msg("%s: no argument but arg %d '%s' width %u", nm, op->arg, op->arg_name,
                         op->width);
            break;
        case PKL_LAYOUT_FIXED:
        case PKL_LAYOUT_COUNTED: {
            if (n == 0 || !isdigit((unsigned char)op->arg_name[n - 1]))
                fail_msg("%s: argument '%s' has no width digit", nm, op->arg_name);
            unsigned w = (unsigned)(op->arg_name[n - 1] - '0');
            if (w != op->width)
                fail_msg("%s: argument '%s' but width %u", nm, op->arg_name, op->width);
            if (op->layout == PKL_LAYOUT_FIXED && w != 1 && w != 2 && w != 4 && w != 8)
                fail_msg("%s: fixed width %u", nm, w);
            if (op->layout == PKL_LAYOUT_COUNTED && w != 1 && w != 4 && w != 8)
                fail_msg("%s: length prefix of %u bytes", nm, w);
            bool counted_name = strncmp(op->arg_name, "long", 4) == 0 ||
                                strncmp(op->arg_name, "string", 6) == 0 ||
                                strncmp(op->arg_name, "bytes", 5) == 0 ||
                                strncmp(op->arg_name, "bytearray", 9) == 0 ||
                                strncmp(op->arg_name, "unicodestring", 13) == 0;
            if (counted_name != (op->layout == PKL_LAYOUT_COUNTED))
                fail_msg("%s: argument '%s' with layout %d", nm, op->arg_name, op->layout);
            break;
        }
        case PKL_LAYOUT_LINE:
            if (op->width != 0 || n < 3 || !strstr(op->arg_name, "nl") ||
                strstr(op->arg_name, "_pair"))
                fail_msg("%s: line argument '%s' width %u", nm, op->arg_name, op->width);
            break;
        case PKL_LAYOUT_LINE2:
            if (op->width != 0 || strcmp(op->arg_name + (n > 5 ? n - 5 : 0), "_pair") != 0)
                fail_msg("%s: two-line argument '%s'", nm, op->arg_name);
            break;
        default:
            fail_msg("%s: layout %d out of range", nm, op->layout);
        }
    }
}

static void test_opcodes_protocols_and_texts(void **state) {
    (void)state;
    int per_proto[PKL_HIGHEST_PROTOCOL + 1] = {0};
    for (size_t i = 0; i < pkl_opcode_count(); i++) {
        const pkl_opinfo *op = pkl_opcode_at(i);
        if (op->proto > PKL_HIGHEST_PROTOCOL)
            fail_msg("%s: protocol %u", op->name, op->proto);
        per_proto[op->proto]++;
        assert_non_null(op->stack_before);
        assert_non_null(op->stack_after);
        assert_non_null(op->summary);
        if (!*op->summary)
            fail_msg("%s: empty summary", op->name);
    }
    /* every protocol 0..5 introduced at least one opcode */
    for (int p = 0; p <= PKL_HIGHEST_PROTOCOL; p++)
        if (!per_proto[p])
            fail_msg("no opcode introduced at protocol %d", p);
}

/* The enum and the lookup agree with a few bytes of pickle.py. */
static void test_opcodes_enum_matches_table(void **state) {
    (void)state;
    static const struct {
        const char *name;
        int code, byte;
    } some[] = {
        {"STOP", PKL_OP_STOP, '.'},         {"PROTO", PKL_OP_PROTO, 0x80},
        {"FRAME", PKL_OP_FRAME, 0x95},      {"MARK", PKL_OP_MARK, '('},
        {"INT", PKL_OP_INT, 'I'},           {"BYTEARRAY8", PKL_OP_BYTEARRAY8, 0x96},
        {"EXT4", PKL_OP_EXT4, 0x84},        {"MEMOIZE", PKL_OP_MEMOIZE, 0x94},
        {"POP_MARK", PKL_OP_POP_MARK, '1'}, {"BINPERSID", PKL_OP_BINPERSID, 'Q'},
    };
    for (size_t i = 0; i < sizeof some / sizeof some[0]; i++) {
        assert_int_equal(some[i].code, some[i].byte);
        const pkl_opinfo *op = pkl_opcode_info((uint8_t)some[i].byte);
        assert_non_null(op);
        assert_string_equal(op->name, some[i].name);
    }
}

static void test_opcodes_code_names_round_trip(void **state) {
    (void)state;
    for (int c = 0; c < PKL_CODE_COUNT; c++) {
        const char *n = pkl_code_name((pkl_code)c);
        assert_non_null(n);
        assert_true(strlen(n) > 0);
        for (const char *s = n; *s; s++)
            if (!(islower((unsigned char)*s) || *s == '-'))
                fail_msg("code name '%s' is not a lowercase taxonomy name", n);
        assert_int_equal(pkl_code_from_name(n, strlen(n)), c);
        for (int d = c + 1; d < PKL_CODE_COUNT; d++)
            if (strcmp(n, pkl_code_name((pkl_code)d)) == 0)
                fail_msg("codes %d and %d share the name %s", c, d, n);
        /* a prefix, or the name plus a character, is no name */
        if (strlen(n) > 1)
            assert_int_equal(pkl_code_from_name(n, strlen(n) - 1), PKL_CODE_COUNT);
        char longer[64];
        snprintf(longer, sizeof longer, "%sx", n);
        assert_int_equal(pkl_code_from_name(longer, strlen(longer)), PKL_CODE_COUNT);
    }
    assert_string_equal(pkl_code_name(PKL_OK), "ok");
    assert_int_equal(pkl_code_from_name("", 0), PKL_CODE_COUNT);
    assert_int_equal(pkl_code_from_name("bogus", 5), PKL_CODE_COUNT);
    /* not NUL-terminated: only len bytes count */
    assert_int_equal(pkl_code_from_name("truncatedXYZ", 9), PKL_ERR_TRUNCATED);
    /* never NULL, even out of range */
    assert_non_null(pkl_code_name(PKL_CODE_COUNT));
    assert_non_null(pkl_code_name((pkl_code)1000));
}

static void test_opcodes_code_names_are_canonical_classes(void **state) {
    (void)state;
    /* docs/canonical-form.md section 1 lists the classes in this order */
    static const char *const classes[] = {
        "truncated", "bad-opcode", "stack-underflow", "mark-missing", "memo-missing",
        "bad-argument", "unsupported-protocol", "type-error", "unknown-extension",
        "no-buffers", "resource-limit", "forbidden", "internal",
    };
    assert_int_equal(sizeof classes / sizeof classes[0], PKL_CODE_COUNT - 1);
    for (size_t i = 0; i < sizeof classes / sizeof classes[0]; i++)
        assert_string_equal(pkl_code_name((pkl_code)(i + 1)), classes[i]);
}

static void test_opcodes_kind_names_unique(void **state) {
    (void)state;
    /* the node kinds of docs/canonical-form.md section 2, in enum order */
    static const char *const kinds[] = {
        "none", "bool", "int", "float", "str", "bytes", "bytearray", "list", "tuple",
        "dict", "set", "frozenset", "global", "call", "new", "persid", "memoryview", "buffer",
    };
    assert_int_equal(sizeof kinds / sizeof kinds[0], PKL_KIND_COUNT);
    for (int k = 0; k < PKL_KIND_COUNT; k++)
        assert_string_equal(pkl_kind_name((pkl_kind)k), kinds[k]);
    for (int k = 0; k < PKL_KIND_COUNT; k++) {
        const char *n = pkl_kind_name((pkl_kind)k);
        assert_non_null(n);
        assert_true(strlen(n) > 0);
        for (int j = k + 1; j < PKL_KIND_COUNT; j++)
            if (strcmp(n, pkl_kind_name((pkl_kind)j)) == 0)
                fail_msg("kinds %d and %d share the name %s", k, j, n);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_opcodes_count_is_68),
        cmocka_unit_test(test_opcodes_bytes_and_names_unique),
        cmocka_unit_test(test_opcodes_info_round_trips),
        cmocka_unit_test(test_opcodes_other_bytes_are_not_opcodes),
        cmocka_unit_test(test_opcodes_arg_layouts_consistent),
        cmocka_unit_test(test_opcodes_protocols_and_texts),
        cmocka_unit_test(test_opcodes_enum_matches_table),
        cmocka_unit_test(test_opcodes_code_names_round_trip),
        cmocka_unit_test(test_opcodes_code_names_are_canonical_classes),
        cmocka_unit_test(test_opcodes_kind_names_unique),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
