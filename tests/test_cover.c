/* Opcode scanning and the opcode x protocol coverage table (harness/cover.h).
 *
 * The streams are byte sequences built from the opcode table's layouts;
 * which opcodes a stream holds is a property of the bytes, not a claim
 * about CPython, so they are written here by hand.
 */
#include "test_support.h"

#include <stdlib.h>
#include <string.h>

#include "cover.h"

typedef struct seen {
    uint8_t ops[64];
    size_t n;
} seen;

static void record(void *ctx, const pkl_opinfo *op, size_t pos, size_t end) {
    (void)pos;
    assert_true(end > pos);
    seen *s = ctx;
    if (s->n < sizeof s->ops)
        s->ops[s->n++] = op->code;
}

#define SCAN(lit, s, proto) brine_scan_ops((const uint8_t *)(lit), sizeof(lit) - 1, record, (s), (proto))

static void test_cover_scan_follows_every_layout(void **state) {
    (void)state;
    seen s = {{0}, 0};
    int proto;
    /* PROTO 4, FRAME (8), SHORT_BINUNICODE (counted 1), BININT2 (fixed 2),
       GLOBAL (two lines), INT (line), BINBYTES8 (counted 8), TUPLE3, STOP, junk */
    static const char stream[] =
        "\x80\x04\x95\x01\x00\x00\x00\x00\x00\x00\x00\x8c\x02hi" "M\x01\x02" "cos\nsystem\n"
        "I12\n" "\x8e\x01\x00\x00\x00\x00\x00\x00\x00z" "\x87." "garbage";
    size_t n = SCAN(stream, &s, &proto);
    assert_int_equal(n, 9);
    assert_int_equal(proto, 4);
    static const uint8_t want[] = {0x80, 0x95, 0x8c, 'M', 'c', 'I', 0x8e, 0x87, '.'};
    assert_memory_equal(s.ops, want, sizeof want);
}

static void test_cover_scan_stops_at_faults(void **state) {
    (void)state;
    seen s = {{0}, 0};
    int proto;
    /* a counted length past the end */
    assert_int_equal(SCAN("K\x01X\x10\x00\x00\x00ab", &s, &proto), 1);
    assert_int_equal(proto, -1);
    /* a byte that is no opcode */
    s.n = 0;
    assert_int_equal(SCAN("N\xff.", &s, NULL), 1);
    /* a line argument without its newline */
    s.n = 0;
    assert_int_equal(SCAN("I12", &s, NULL), 0);
    /* a negative BINSTRING length */
    s.n = 0;
    assert_int_equal(SCAN("T\xff\xff\xff\xff.", &s, NULL), 0);
}

static void test_cover_counts_loading_cases_per_protocol(void **state) {
    (void)state;
    brine_coverage *c = calloc(1, sizeof *c);
    assert_non_null(c);
    brine_cover_add(c, (const uint8_t *)"\x80\x02K\x01K\x02.", 7, -1, NULL);
    brine_cover_add(c, (const uint8_t *)"K\x01.", 3, 1, NULL);
    brine_cover_add(c, (const uint8_t *)"K\x01", 2, 0, "truncated");
    assert_int_equal(c->valid['K'][2], 1); /* once per case, not per occurrence */
    assert_int_equal(c->valid['K'][1], 1);
    assert_int_equal(c->valid['K'][0], 0);
    assert_int_equal(c->fault['K'][0], 1);
    assert_int_equal(c->valid[0x80][2], 1);
    assert_int_equal(c->cases, 3);
    assert_int_equal(c->loaded, 2);
    free(c);
}

static void test_cover_stock_errors_count_only_for_their_opcode(void **state) {
    (void)state;
    brine_coverage *c = calloc(1, sizeof *c);
    assert_non_null(c);
    /* EXT1 then EXT2: only the first can have raised unknown-extension */
    brine_cover_add(c, (const uint8_t *)"\x80\x02\x82\x01\x83\x00\x01.", 8, -1,
                    "unknown-extension");
    assert_int_equal(c->stock[0x82][2], 1);
    assert_int_equal(c->stock[0x83][2], 0);
    assert_int_equal(c->fault[0x83][2], 1);
    /* the wrong error is no stock behaviour */
    brine_cover_add(c, (const uint8_t *)"\x80\x05\x97.", 4, -1, "truncated");
    assert_int_equal(c->stock[0x97][5], 0);
    brine_cover_add(c, (const uint8_t *)"\x80\x05\x97.", 4, -1, "no-buffers");
    assert_int_equal(c->stock[0x97][5], 1);
    /* any other opcode never counts as stock */
    brine_cover_add(c, (const uint8_t *)"K", 1, 1, "unknown-extension");
    assert_int_equal(c->stock['K'][1], 0);
    free(c);
}

static void test_cover_holes_are_the_unexercised_valid_cells(void **state) {
    (void)state;
    brine_coverage *c = calloc(1, sizeof *c);
    assert_non_null(c);
    size_t cells = 0;
    for (size_t i = 0; i < pkl_opcode_count(); i++)
        cells += (size_t)(BRINE_COVER_PROTOCOLS - pkl_opcode_at(i)->proto);
    assert_int_equal(brine_cover_holes(c, NULL), cells);
    /* fill every valid cell but one */
    for (size_t i = 0; i < pkl_opcode_count(); i++) {
        const pkl_opinfo *op = pkl_opcode_at(i);
        for (int p = op->proto; p < BRINE_COVER_PROTOCOLS; p++)
            c->valid[op->code][p] = 1;
    }
    assert_int_equal(brine_cover_holes(c, NULL), 0);
    c->valid[0x97][5] = 0; /* NEXT_BUFFER at protocol 5 */
    c->stock[0x82][3] = 1; /* EXT1 at protocol 3 by its stock error: no hole */
    c->valid[0x82][3] = 0;
    c->valid['I'][0] = 0; /* INT exists since protocol 0 */
    assert_int_equal(brine_cover_holes(c, NULL), 2);
    /* a cell below the opcode's protocol is no hole */
    c->valid[0x97][4] = 0;
    assert_int_equal(brine_cover_holes(c, NULL), 2);
    free(c);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cover_scan_follows_every_layout),
        cmocka_unit_test(test_cover_scan_stops_at_faults),
        cmocka_unit_test(test_cover_counts_loading_cases_per_protocol),
        cmocka_unit_test(test_cover_stock_errors_count_only_for_their_opcode),
        cmocka_unit_test(test_cover_holes_are_the_unexercised_valid_cells),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
