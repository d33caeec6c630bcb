/* pkl_dis: the disassembler's lines, its fault classes and offsets, and its
 * bounds (never reading past the input, bounded lines and memory).
 *
 * Every input is copied into a heap block of exactly its length before
 * disassembly, so under ASan (BRINE_SANITIZE=ON) any read past the end is a
 * test failure. The well-formed pickles are CPython 3.13's own output. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_support.h"

/*------------------------------------------------------------------------------
 * Harness
 *----------------------------------------------------------------------------*/

typedef struct capture {
    char *buf;       /* the kept lines, NUL-terminated */
    size_t len, cap;
    size_t lines;    /* write calls: one per line */
    size_t max_line; /* longest line written */
    int malformed;   /* a write that was not exactly one '\n'-terminated line */
    int summary_only; /* keep only lines that are not opcode lines */
} capture;

static void cap_write(void *ctx, const char *text, size_t len) {
    capture *c = ctx;
    c->lines++;
    if (len == 0 || text[len - 1] != '\n' || memchr(text, '\n', len) != text + len - 1)
        c->malformed = 1;
    if (len > c->max_line)
        c->max_line = len;
    /* opcode lines start with the right-aligned offset: a space or a digit */
    if (c->summary_only && (text[0] == ' ' || (text[0] >= '0' && text[0] <= '9')))
        return;
    if (c->len + len + 1 > c->cap) {
        size_t ncap = (c->len + len + 1) * 2;
        char *nb = realloc(c->buf, ncap);
        assert_non_null(nb);
        c->buf = nb;
        c->cap = ncap;
    }
    memcpy(c->buf + c->len, text, len);
    c->len += len;
    c->buf[c->len] = '\0';
}

static bool run_dis(const void *data, size_t len, capture *c, pkl_err *err) {
    /* exact-size heap copy: ASan flags any read past the end */
    unsigned char *copy = malloc(len ? len : 1);
    assert_non_null(copy);
    if (len)
        memcpy(copy, data, len);
    err->code = PKL_CODE_COUNT;
    err->msg = NULL;
    err->pos = (size_t)-1;
    bool ok = pkl_dis(copy, len, cap_write, c, err);
    free(copy);
    assert_false(c->malformed);
    return ok;
}

static void cap_free(capture *c) {
    free(c->buf);
    memset(c, 0, sizeof *c);
}

/* Asserts that `line` (without its newline) is one of the output lines. */
static void assert_line_impl(const capture *c, const char *line, const char *file, int lineno) {
    size_t n = strlen(line);
    const char *p = c->buf ? c->buf : "";
    while ((p = strstr(p, line)) != NULL) {
        if ((p == c->buf || p[-1] == '\n') && p[n] == '\n')
            return;
        p++;
    }
    print_error("%s:%d: line not found:\n%s\n--- output:\n%s", file, lineno, line,
                c->buf ? c->buf : "");
    _fail(file, lineno);
}
#define assert_line(c, line) assert_line_impl((c), (line), __FILE__, __LINE__)

static void assert_fault_impl(const void *data, size_t len, pkl_code code, size_t pos,
                              const char *fault_line, const char *file, int lineno) {
    capture c = {0};
    pkl_err err;
    bool ok = run_dis(data, len, &c, &err);
    if (ok || err.code != code || err.pos != pos) {
        print_error("%s:%d: expected %s at %zu, got ok=%d %s at %zu\n--- output:\n%s", file,
                    lineno, pkl_code_name(code), pos, ok, pkl_code_name(err.code), err.pos,
                    c.buf ? c.buf : "");
        _fail(file, lineno);
    }
    assert_non_null(err.msg);
    /* the fault line is the last line, and names the class and offset */
    char head[64];
    snprintf(head, sizeof head, "fault at %zu: %s: ", pos, pkl_code_name(code));
    const char *last = strstr(c.buf, "fault at ");
    assert_non_null(last);
    assert_memory_equal(last, head, strlen(head));
    assert_ptr_equal(strchr(last, '\n') + 1, c.buf + c.len);
    if (fault_line)
        assert_line_impl(&c, fault_line, file, lineno);
    cap_free(&c);
}
/* The pickle is a string literal; fault_line (or NULL) is the full last line. */
#define assert_fault(lit, code, pos, fault_line) \
    assert_fault_impl((lit), sizeof(lit) - 1, (code), (pos), (fault_line), __FILE__, __LINE__)

static capture dis_ok_impl(const void *data, size_t len, const char *file, int lineno) {
    capture c = {0};
    pkl_err err;
    if (!run_dis(data, len, &c, &err) || err.code != PKL_OK) {
        print_error("%s:%d: expected a well-formed pickle, got %s at %zu\n--- output:\n%s", file,
                    lineno, pkl_code_name(err.code), err.pos, c.buf ? c.buf : "");
        _fail(file, lineno);
    }
    return c;
}
#define dis_ok(lit) dis_ok_impl((lit), sizeof(lit) - 1, __FILE__, __LINE__)

/*------------------------------------------------------------------------------
 * Well-formed pickles of every protocol
 *----------------------------------------------------------------------------*/

/* pickletools.optimize(pickle.dumps([1, "a", (2,)], 0)) */
static void test_dis_protocol0_text_opcodes(void **state) {
    (void)state;
    capture c = dis_ok("(lI1\naVa\na(I2\nta.");
    assert_line(&c, "    0: (    MARK                                          ; stack 0");
    assert_line(&c, "    1: l        LIST       (MARK at 0)                    ; stack 1");
    assert_line(&c, "    2: I    INT        1                                  ; stack 2");
    assert_line(&c, "    6: V    UNICODE    'a'                                ; stack 2");
    assert_line(&c, "   14: t        TUPLE      (MARK at 10)                   ; stack 2");
    assert_line(&c, "   16: .    STOP                                          ; stack 0");
    assert_line(&c, "highest protocol among opcodes = 0");
    assert_int_equal(c.lines, 12);
    cap_free(&c);
}

/* pickletools.optimize(pickle.dumps([1, "a", (2,)], 1)) */
static void test_dis_protocol1_binary_opcodes(void **state) {
    (void)state;
    capture c = dis_ok("](K\x01X\x01\x00\x00\x00" "a(K\x02te.");
    assert_line(&c, "    4: X        BINUNICODE 'a' (1 byte)                   ; stack 3");
    assert_line(&c, "   11: K            BININT1    2                          ; stack 4");
    assert_line(&c, "   14: e        APPENDS    (MARK at 1)                    ; stack 1");
    assert_line(&c, "highest protocol among opcodes = 1");
    cap_free(&c);
}

/* pickle.dumps([1, "a", (2,), True], 2) */
static void test_dis_protocol2_header_and_binput(void **state) {
    (void)state;
    capture c = dis_ok("\x80\x02]q\x00(K\x01X\x01\x00\x00\x00" "aq\x01K\x02\x85q\x02\x88"
                       "e.");
    assert_line(&c, "    0: \\x80 PROTO      2                                  ; stack 0");
    assert_line(&c, "    3: q    BINPUT     0                                  ; stack 1");
    assert_line(&c, "   18: \\x85     TUPLE1                                    ; stack 4");
    assert_line(&c, "   21: \\x88     NEWTRUE                                   ; stack 5");
    assert_line(&c, "highest protocol among opcodes = 2");
    cap_free(&c);
}

/* pickle.dumps([b"xy", "a"], 3) */
static void test_dis_protocol3_bytes(void **state) {
    (void)state;
    capture c = dis_ok("\x80\x03]q\x00(C\x02xyq\x01X\x01\x00\x00\x00" "aq\x02" "e.");
    assert_line(&c, "    6: C        SHORT_BINBYTES b'xy' (2 bytes)            ; stack 2");
    assert_line(&c, "highest protocol among opcodes = 3");
    cap_free(&c);
}

/* pickle.dumps([1, "a", {2}], 4) */
static void test_dis_protocol4_frame_and_memoize(void **state) {
    (void)state;
    capture c = dis_ok("\x80\x04\x95\x11\x00\x00\x00\x00\x00\x00\x00]\x94(K\x01\x8c\x01"
                       "a\x94\x8f\x94(K\x02\x90" "e.");
    assert_line(&c, "    2: \\x95 FRAME      17                                 ; stack 0");
    assert_line(&c, "   12: \\x94 MEMOIZE    (as 0)                             ; stack 1");
    assert_line(&c, "   21: \\x94     MEMOIZE    (as 2)                         ; stack 4");
    assert_line(&c, "   25: \\x90         ADDITEMS   (MARK at 22)               ; stack 4");
    assert_line(&c, "highest protocol among opcodes = 4");
    cap_free(&c);
}

/* pickle.dumps([bytearray(b"z"), "a"], 5) */
static void test_dis_protocol5_bytearray(void **state) {
    (void)state;
    capture c = dis_ok("\x80\x05\x95\x14\x00\x00\x00\x00\x00\x00\x00]\x94(\x96\x01\x00\x00"
                       "\x00\x00\x00\x00\x00z\x94\x8c\x01" "a\x94" "e.");
    assert_line(&c, "   14: \\x96     BYTEARRAY8 bytearray(b'z') (1 byte)       ; stack 2");
    assert_line(&c, "highest protocol among opcodes = 5");
    cap_free(&c);
}

/*------------------------------------------------------------------------------
 * Argument rendering
 *----------------------------------------------------------------------------*/

static void test_dis_ints_floats_and_strings(void **state) {
    (void)state;
    /* BININT -2, BININT2 65535, LONG1 2**70, LONG1 -1, BINFLOAT 0.1, 1e16,
       -0.0, SHORT_BINUNICODE "é'" and a GLOBAL */
    capture c = dis_ok("\x80\x04J\xfe\xff\xff\xffM\xff\xff\x8a\x09\x00\x00\x00\x00\x00\x00"
                       "\x00\x00@\x8a\x01\xffG?\xb9\x99\x99\x99\x99\x99\x9aGCA\xc3\x79\x37"
                       "\xe0\x80\x00G\x80\x00\x00\x00\x00\x00\x00\x00\x8c\x03\xc3\xa9'"
                       "cos\nsystem\n.");
    assert_line(&c, "    2: J    BININT     -2                                 ; stack 1");
    assert_line(&c, "    7: M    BININT2    65535                              ; stack 2");
    assert_line(&c, "   10: \\x8a LONG1      1180591620717411303424 (9 bytes)   ; stack 3");
    assert_line(&c, "   21: \\x8a LONG1      -1 (1 byte)                        ; stack 4");
    assert_line(&c, "   24: G    BINFLOAT   0.1                                ; stack 5");
    assert_line(&c, "   33: G    BINFLOAT   1e+16                              ; stack 6");
    assert_line(&c, "   42: G    BINFLOAT   -0.0                               ; stack 7");
    assert_line(&c, "   51: \\x8c SHORT_BINUNICODE \"\\xe9'\" (3 bytes)            ; stack 8");
    assert_line(&c, "   56: c    GLOBAL     'os system'                        ; stack 9");
    cap_free(&c);
}

static void test_dis_long_argument_abbreviated(void **state) {
    (void)state;
    enum { N = 100000 };
    unsigned char *p = malloc(N + 6);
    assert_non_null(p);
    p[0] = 'X';
    p[1] = (unsigned char)(N & 0xff), p[2] = (unsigned char)(N >> 8 & 0xff);
    p[3] = (unsigned char)(N >> 16), p[4] = 0;
    memset(p + 5, 'a', N);
    p[N + 5] = '.';
    capture c = {0};
    pkl_err err;
    assert_true(run_dis(p, N + 6, &c, &err));
    free(p);
    /* 60 characters of the string, then "..." and the full length */
    char want[200];
    snprintf(want, sizeof want, "    0: X    BINUNICODE '%.60s'... (100000 bytes)  ; stack 1",
             "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
    assert_line(&c, want);
    assert_true(c.max_line < 200);
    cap_free(&c);
}

static void test_dis_long_int_abbreviated(void **state) {
    (void)state;
    /* LONG1 of 200 bytes: too long for decimal, shown as leading hex */
    unsigned char p[2 + 200 + 1];
    p[0] = 0x8a;
    p[1] = 200;
    memset(p + 2, 0, 200);
    p[201] = 0x7f;
    p[202] = '.';
    capture c = {0};
    pkl_err err;
    assert_true(run_dis(p, sizeof p, &c, &err));
    assert_non_null(strstr(c.buf, "LONG1      0x7f0000000000000000000000... (200 bytes)"));
    cap_free(&c);
}

/*------------------------------------------------------------------------------
 * Faults: class, offset, and the last line
 *----------------------------------------------------------------------------*/

static void test_dis_truncated_fixed_argument(void **state) {
    (void)state;
    assert_fault("K", PKL_ERR_TRUNCATED, 1,
                 "fault at 1: truncated: argument runs past the end of the input "
                 "(BININT1 at 0 needs a 1-byte argument, 0 bytes left)");
    assert_fault("K\x01J\x01\x02", PKL_ERR_TRUNCATED, 5, NULL);
}

static void test_dis_truncated_counted_argument(void **state) {
    (void)state;
    assert_fault("X\x05\x00\x00\x00" "ab", PKL_ERR_TRUNCATED, 7,
                 "fault at 7: truncated: counted argument runs past the end of the input "
                 "(BINUNICODE at 0 announces 5 bytes, 2 left)");
    /* the length prefix itself cut short */
    assert_fault("X\x05\x00", PKL_ERR_TRUNCATED, 3, NULL);
    /* an 8-byte length beyond any input; past 2^63-1 CPython overflows */
    assert_fault("\x8e\xff\xff\xff\xff\xff\xff\xff\x7f" "ab.", PKL_ERR_TRUNCATED, 12, NULL);
    assert_fault("\x8e\xff\xff\xff\xff\xff\xff\xff\xff" "ab.", PKL_ERR_RESOURCE_LIMIT, 0,
                 "fault at 0: resource-limit: length exceeds the maximum size (2^63-1) "
                 "(BINBYTES8 at 0: length 18446744073709551615)");
}

static void test_dis_truncated_missing_newline(void **state) {
    (void)state;
    assert_fault("Vab", PKL_ERR_TRUNCATED, 3,
                 "fault at 3: truncated: text argument has no newline "
                 "(UNICODE at 0: no newline before the end)");
    /* GLOBAL needs two lines */
    assert_fault("cos\nsystem", PKL_ERR_TRUNCATED, 10, NULL);
}

static void test_dis_truncated_empty_line(void **state) {
    (void)state;
    /* CPython's C unpickler: bad_readline on an empty numeric line */
    assert_fault("I\n.", PKL_ERR_TRUNCATED, 0, "fault at 0: truncated: empty text argument (INT at 0)");
    /* but an empty UNICODE line is the empty string */
    capture c = dis_ok("V\n.");
    cap_free(&c);
}

static void test_dis_no_stop(void **state) {
    (void)state;
    assert_fault("", PKL_ERR_TRUNCATED, 0, "fault at 0: truncated: input ended before STOP");
    assert_fault("\x80\x02K\x01", PKL_ERR_TRUNCATED, 4,
                 "fault at 4: truncated: input ended before STOP");
}

static void test_dis_bad_opcode(void **state) {
    (void)state;
    assert_fault("K\x01\xff.", PKL_ERR_BAD_OPCODE, 2,
                 "fault at 2: bad-opcode: not an opcode (byte 0xff)");
    assert_fault("\x00", PKL_ERR_BAD_OPCODE, 0, NULL);
}

static void test_dis_stack_underflow(void **state) {
    (void)state;
    assert_fault("Na.", PKL_ERR_STACK_UNDERFLOW, 1,
                 "fault at 1: stack-underflow: too few items on the stack (APPEND at 1)");
    /* items below the top mark do not count */
    assert_fault("K\x01(s.", PKL_ERR_STACK_UNDERFLOW, 3, NULL);
    assert_fault("K\x01(.", PKL_ERR_STACK_UNDERFLOW, 3, NULL);
    /* APPENDS needs its list below the mark, OBJ a class after it */
    assert_fault("(e.", PKL_ERR_STACK_UNDERFLOW, 1, NULL);
    assert_fault("]((e.", PKL_ERR_STACK_UNDERFLOW, 3, NULL);
    assert_fault("(o.", PKL_ERR_STACK_UNDERFLOW, 1, NULL);
    /* PUT stores the top item, and a mark is not one */
    assert_fault("K\x01(q\x00.", PKL_ERR_STACK_UNDERFLOW, 3, NULL);
    assert_fault(".", PKL_ERR_STACK_UNDERFLOW, 0, NULL);
    /* DICT and SETITEMS take key/value pairs */
    assert_fault("(K\x01" "d.", PKL_ERR_STACK_UNDERFLOW, 3, NULL);
    assert_fault("}(K\x01K\x02K\x03u.", PKL_ERR_STACK_UNDERFLOW, 8, NULL);
}

static void test_dis_mark_missing(void **state) {
    (void)state;
    assert_fault("K\x01t.", PKL_ERR_MARK_MISSING, 2,
                 "fault at 2: mark-missing: no MARK is open (TUPLE at 2)");
    assert_fault("]K\x01" "e.", PKL_ERR_MARK_MISSING, 3, NULL);
    /* INST looks for its mark before reading its lines */
    assert_fault("im\n", PKL_ERR_MARK_MISSING, 0,
                 "fault at 0: mark-missing: no MARK is open (INST at 0)");
}

static void test_dis_memo_missing(void **state) {
    (void)state;
    assert_fault("K\x01h\x00.", PKL_ERR_MEMO_MISSING, 2,
                 "fault at 2: memo-missing: memo index was never PUT (BINGET at 2)");
    assert_fault("K\x01p0\ng1\n.", PKL_ERR_MEMO_MISSING, 5, NULL);
    assert_fault("g-1\n.", PKL_ERR_MEMO_MISSING, 0, NULL);
    assert_fault("j\xff\xff\xff\xff.", PKL_ERR_MEMO_MISSING, 0, NULL);
    /* MEMOIZE numbers entries by count: after it, index 0 exists */
    capture c = dis_ok("K\x01\x94h\x00.");
    cap_free(&c);
}

static void test_dis_unsupported_protocol(void **state) {
    (void)state;
    assert_fault("\x80\x06.", PKL_ERR_UNSUPPORTED_PROTOCOL, 0,
                 "fault at 0: unsupported-protocol: protocol above 5 (PROTO at 0)");
    capture c = dis_ok("\x80\x05N.");
    cap_free(&c);
}

static void test_dis_bad_arguments(void **state) {
    (void)state;
    /* the C unpickler reads BINSTRING's length unsigned: truncated, not negative */
    assert_fault("T\xff\xff\xff\xff" "ab.", PKL_ERR_TRUNCATED, 8, NULL);
    /* GET/PUT lines reach the C unpickler as C strings: they end at a NUL
       (CPython loads this pickle as 1) */
    capture nul = dis_ok("I1\np6\x00x\ng6\x00\n.");
    cap_free(&nul);
    assert_fault("\x8b\xfe\xff\xff\xff.", PKL_ERR_BAD_ARGUMENT, 0, NULL);
    assert_fault("X\x02\x00\x00\x00\xc3\x28.", PKL_ERR_BAD_ARGUMENT, 0, NULL);
    assert_fault("S'ab\n.", PKL_ERR_BAD_ARGUMENT, 0, NULL);
    assert_fault("S'a\\x4'\n.", PKL_ERR_BAD_ARGUMENT, 0, NULL);
    assert_fault("V\\u12\n.", PKL_ERR_BAD_ARGUMENT, 0, NULL);
    assert_fault("K\x01px\n.", PKL_ERR_BAD_ARGUMENT, 2, NULL);
    assert_fault("K\x01p-1\n.", PKL_ERR_BAD_ARGUMENT, 2, NULL);
    assert_fault("c\xff\nx\n.", PKL_ERR_BAD_ARGUMENT, 0, NULL);
    /* the module line is decoded before the name line is looked for */
    assert_fault("c\xff\nx", PKL_ERR_BAD_ARGUMENT, 0, NULL);
    /* surrogates pass in BINUNICODE, as CPython decodes with surrogatepass */
    capture c = dis_ok("X\x03\x00\x00\x00\xed\xa0\x80.");
    cap_free(&c);
}

static void test_dis_frame_past_end(void **state) {
    (void)state;
    assert_fault("\x95\x05\x00\x00\x00\x00\x00\x00\x00K\x01.", PKL_ERR_TRUNCATED, 12,
                 "fault at 12: truncated: frame runs past the end of the input "
                 "(frame of 5 bytes, 3 left)");
    assert_fault("\x95\x00\x00\x00\x00\x00\x00\x00\x80N.", PKL_ERR_RESOURCE_LIMIT, 0, NULL);
}

/* The line of the faulting opcode is printed, without a stack count. */
static void test_dis_fault_line_follows_its_opcode(void **state) {
    (void)state;
    capture c = {0};
    pkl_err err;
    assert_false(run_dis("K\x01t.", 4, &c, &err));
    assert_string_equal(c.buf, "    0: K    BININT1    1                                  ; stack 1\n"
                               "    2: t    TUPLE      (no MARK)\n"
                               "fault at 2: mark-missing: no MARK is open (TUPLE at 2)\n");
    cap_free(&c);
}

/*------------------------------------------------------------------------------
 * Stack, mark and memo modelling
 *----------------------------------------------------------------------------*/

static void test_dis_pop_takes_a_mark(void **state) {
    (void)state;
    capture c = dis_ok("(0K\x01.");
    assert_line(&c, "    1: 0        POP        (MARK at 0)                    ; stack 0");
    cap_free(&c);
}

static void test_dis_put_redefined_is_not_a_fault(void **state) {
    (void)state;
    capture c = dis_ok("K\x01p0\np0\n.");
    assert_line(&c, "    5: p    PUT        0 (redefined)                      ; stack 1");
    cap_free(&c);
}

static void test_dis_memo_past_cap_is_noted(void **state) {
    (void)state;
    /* an index beyond the tracked range switches memo checks off */
    capture c = dis_ok("K\x01r\xff\xff\xff\x7fj\x05\x00\x00\x00.");
    assert_line(&c, "note at 2: memo not tracked past index 67108863; memo checks are off "
                    "from here");
    cap_free(&c);
    /* while nothing was put beyond it, a GET beyond it is known missing */
    assert_fault("K\x01q\x00j\xff\xff\xff\x7f.", PKL_ERR_MEMO_MISSING, 4, NULL);
    assert_fault("K\x01p0\ng99999999999999999999999\n.", PKL_ERR_MEMO_MISSING, 5, NULL);
}

static void test_dis_marks_past_cap_are_noted(void **state) {
    (void)state;
    enum { N = (1 << 20) + 10 };
    unsigned char *p = malloc(N + 3);
    assert_non_null(p);
    memset(p, '(', N);
    memcpy(p + N, "N.", 2);
    p[N + 2] = 0;
    capture c = {.summary_only = 1};
    pkl_err err;
    assert_true(run_dis(p, N + 2, &c, &err));
    free(p);
    assert_line(&c, "note at 1048576: marks not tracked past 1048576; stack checks are off "
                    "from here");
    assert_true(c.max_line < 256); /* indentation stops growing */
    cap_free(&c);
}

static void test_dis_summary_trailing_bytes_and_leftovers(void **state) {
    (void)state;
    capture c = dis_ok("K\x01K\x02.xyz");
    assert_line(&c, "highest protocol among opcodes = 1");
    assert_line(&c, "trailing bytes after STOP: 3");
    assert_line(&c, "note: stack not empty after STOP: 1 items, 0 marks");
    cap_free(&c);
}

static void test_dis_null_writer_gives_verdict(void **state) {
    (void)state;
    pkl_err err;
    assert_true(pkl_dis("N.", 2, NULL, NULL, &err));
    assert_int_equal(err.code, PKL_OK);
    assert_false(pkl_dis("K", 1, NULL, NULL, &err));
    assert_int_equal(err.code, PKL_ERR_TRUNCATED);
    assert_false(pkl_dis(NULL, 0, NULL, NULL, NULL));
}

/*------------------------------------------------------------------------------
 * Bounds: every prefix, many mutations
 *----------------------------------------------------------------------------*/

/* A pickle using every argument layout: PROTO, FRAME, counted 1/4/8-byte
   lengths, fixed ints and floats, text lines and line pairs. */
static const char rich[] =
    "\x80\x05\x95\x79\x00\x00\x00\x00\x00\x00\x00" /* PROTO 5, FRAME 121 */
    "(I12\nL34L\nF0.5\nS'x'\nVy\nc m\nn\nK\x01J\x01\x00\x00\x00M\x01\x00"
    "\x8a\x01\x05\x8b\x01\x00\x00\x00\x05G?\xe0\x00\x00\x00\x00\x00\x00"
    "U\x01zT\x01\x00\x00\x00zC\x01z\x8c\x01zX\x01\x00\x00\x00z"
    "\x8e\x01\x00\x00\x00\x00\x00\x00\x00z\x96\x01\x00\x00\x00\x00\x00\x00\x00z"
    "p0\nq\x01r\x02\x00\x00\x00\x94g0\nh\x01j\x02\x00\x00\x00t.";

static void test_dis_every_prefix_is_truncated(void **state) {
    (void)state;
    size_t n = sizeof rich - 1;
    capture c = dis_ok(rich);
    cap_free(&c);
    for (size_t k = 0; k < n; k++) {
        capture p = {.summary_only = 1};
        pkl_err err;
        if (run_dis(rich, k, &p, &err) || err.code != PKL_ERR_TRUNCATED) {
            print_error("prefix of %zu bytes: %s\n%s", k, pkl_code_name(err.code), p.buf);
            fail();
        }
        assert_true(err.pos <= k);
        cap_free(&p);
    }
}

static uint64_t rng_next(uint64_t *s) {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static void test_dis_mutations_stay_in_bounds(void **state) {
    (void)state;
    size_t n = sizeof rich - 1;
    unsigned char buf[sizeof rich + 8];
    uint64_t seed = 0x9e3779b97f4a7c15u;
    for (int round = 0; round < 20000; round++) {
        size_t len = n;
        memcpy(buf, rich, n);
        int edits = 1 + (int)(rng_next(&seed) % 3);
        for (int e = 0; e < edits; e++) {
            size_t at = (size_t)(rng_next(&seed) % len);
            switch (rng_next(&seed) % 3) {
            case 0: buf[at] = (unsigned char)rng_next(&seed); break;
            case 1: len = at; break;
            default: buf[at] ^= (unsigned char)(1u << (rng_next(&seed) % 8)); break;
            }
            if (len == 0)
                break;
        }
        capture c = {.summary_only = 1};
        pkl_err err;
        bool ok = run_dis(buf, len, &c, &err);
        assert_true(err.code < PKL_CODE_COUNT);
        assert_true(ok == (err.code == PKL_OK));
        assert_true(err.pos <= len);
        assert_true(c.max_line <= 640);
        cap_free(&c);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dis_protocol0_text_opcodes),
        cmocka_unit_test(test_dis_protocol1_binary_opcodes),
        cmocka_unit_test(test_dis_protocol2_header_and_binput),
        cmocka_unit_test(test_dis_protocol3_bytes),
        cmocka_unit_test(test_dis_protocol4_frame_and_memoize),
        cmocka_unit_test(test_dis_protocol5_bytearray),
        cmocka_unit_test(test_dis_ints_floats_and_strings),
        cmocka_unit_test(test_dis_long_argument_abbreviated),
        cmocka_unit_test(test_dis_long_int_abbreviated),
        cmocka_unit_test(test_dis_truncated_fixed_argument),
        cmocka_unit_test(test_dis_truncated_counted_argument),
        cmocka_unit_test(test_dis_truncated_missing_newline),
        cmocka_unit_test(test_dis_truncated_empty_line),
        cmocka_unit_test(test_dis_no_stop),
        cmocka_unit_test(test_dis_bad_opcode),
        cmocka_unit_test(test_dis_stack_underflow),
        cmocka_unit_test(test_dis_mark_missing),
        cmocka_unit_test(test_dis_memo_missing),
        cmocka_unit_test(test_dis_unsupported_protocol),
        cmocka_unit_test(test_dis_bad_arguments),
        cmocka_unit_test(test_dis_frame_past_end),
        cmocka_unit_test(test_dis_fault_line_follows_its_opcode),
        cmocka_unit_test(test_dis_pop_takes_a_mark),
        cmocka_unit_test(test_dis_put_redefined_is_not_a_fault),
        cmocka_unit_test(test_dis_memo_past_cap_is_noted),
        cmocka_unit_test(test_dis_marks_past_cap_are_noted),
        cmocka_unit_test(test_dis_summary_trailing_bytes_and_leftovers),
        cmocka_unit_test(test_dis_null_writer_gives_verdict),
        cmocka_unit_test(test_dis_every_prefix_is_truncated),
        cmocka_unit_test(test_dis_mutations_stay_in_bounds),
    };
    return cmocka_run_group_tests_name("dis", tests, NULL, NULL);
}
