/* Canonical text reader (harness/canon_read.h): what it accepts (texts
 * libpkl prints for pickles, which the conformance tests hold equal to the
 * oracle's), what it refuses (one case per rule, with the offending line),
 * limits, depth, and a fixed-seed garbage loop that must never crash. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "canon_read.h"
#include "test_support.h"

#define H "brine-canonical 1 raw\n"

/* Reads text; on success prints it again and asserts the same bytes. */
static void assert_round_trip(const char *text, size_t len) {
    brine_canon c;
    pkl_err e;
    if (!brine_canon_read(text, len, NULL, &c, &e))
        fail_msg("rejected (%s at %zu):\n%.*s", e.msg, e.pos, (int)(len < 2000 ? len : 2000), text);
    assert_int_equal(c.error, PKL_OK);
    size_t n;
    char *out = pkl_canon(c.doc, NULL, (size_t)1 << 31, &n, &e);
    assert_non_null(out);
    assert_int_equal(n, len);
    assert_memory_equal(out, text, len);
    free(out);
    brine_canon_release(&c);
    assert_null(c.doc);
}

/* Loads a pickle with libpkl, prints it, reads the text back. */
static void assert_pickle_round_trip(const char *data, size_t len) {
    pkl_code code;
    char *t = canon_of(data, len, NULL, &code);
    assert_non_null(t);
    assert_int_equal(code, PKL_OK);
    assert_round_trip(t, strlen(t));
    free(t);
}
#define PICKLE_RT(lit) assert_pickle_round_trip((lit), sizeof(lit) - 1)

/* docs/canonical-form.md section 7 (the spec's examples, which
   tests/test_canon.c holds libpkl's emitter to). */
static void test_canon_read_spec_examples(void **state) {
    (void)state;
    static const char *const docs[] = {
        H "list\n  int 1\n  float 4004000000000000\n  str \"\\xe9\"\n  bytes \"\\x00\"\n",
        H "list #1\n  ref #1\n",
        H "list\n  tuple #1\n    int 0x10000000000000000\n    int -9223372036854775808\n  ref #1\n",
        H "dict\n  frozenset\n    int 1\n    int 3\n  none\n",
        H "new\n  global \"__main__\" \"C\"\n  .build\n    dict\n      str \"x\"\n      int 1\n",
        H "call\n  global \"posix\" \"system\"\n  .args\n    str \"echo hi\"\n",
        H "call\n  global \"__builtin__\" \"set\"\n  .args\n    list\n      int 1\n",
        H "error truncated\n",
    };
    for (size_t i = 0; i < sizeof docs / sizeof docs[0]; i++) {
        if (strstr(docs[i], "error ")) {
            brine_canon c;
            assert_true(brine_canon_read(docs[i], strlen(docs[i]), NULL, &c, NULL));
            assert_int_equal(c.error, PKL_ERR_TRUNCATED);
            assert_null(c.doc);
            continue;
        }
        assert_round_trip(docs[i], strlen(docs[i]));
    }
}

/* Graphs that exercise every kind and slot, as libpkl prints them. */
static void test_canon_read_pickled_graphs(void **state) {
    (void)state;
    /* every scalar, nested containers, shared and cyclic parts */
    PICKLE_RT("\x80\x04]\x94(N\x88\x89K\x05\x8a\x09\x00\x00\x00\x00\x00\x00\x00\x00\x01"
              "G\x7f\xf8\x00\x00\x00\x00\x00\x01\x8c\x02\xc3\xa9\x94"
              "C\x01\xff\x96\x01\x00\x00\x00\x00\x00\x00\x00\x80h\x00]\x94h\x02"
              "a)\x8f\x94(K\x01K\x02\x90(K\x03\x91\x94"
              "e.");
    /* a set holding tuples, a frozenset and a stub; a dict with mixed keys */
    PICKLE_RT("\x80\x04\x8f\x94(K\x01K\x02\x86\x94(\x91\x94\x8c\x01m\x8c\x01n\x93\x94\x90"
              "}\x94(h\x01Nh\x02K\x01h\x03Nu\x86.");
    /* a call with args and every mutation; new with kwargs; persistent ids */
    PICKLE_RT("\x80\x04\x8c\x01m\x94\x8c\x01" "f\x94\x93\x94K\x01\x85\x94R\x94(K\x02K\x03"
              "e(K\x04K\x05u(K\x06\x90N}\x94\x86\x94" "b.");
    PICKLE_RT("\x80\x04\x8c\x01m\x8c\x01" "C\x93\x94)}\x94\x8c\x01k\x94K\x01s\x92\x94.");
    PICKLE_RT("\x80\x04\x8c\x03pid\x94Q.");
    PICKLE_RT("Pabc\n.");
    /* a tuple that reaches itself through a stub's state: the tuple is still
       open when the frozenset inside it closes, so the frozenset's table can
       only be built once the whole graph exists */
    PICKLE_RT("\x80\x04\x8c\x01m\x8c\x01" "C\x93)\x81\x94\x85\x94h\x00(h\x01\x85\x91" "b0.");
    /* a global with mutations, a global shared as dict key and value */
    PICKLE_RT("\x80\x04\x8c\x01m\x8c\x01" "G\x93\x94]\x94K\x01" "ab}\x94h\x00h\x00s.");
}

/* A document 40 levels deep switches to @<depth> after 32. */
static void test_canon_read_depth_forms(void **state) {
    (void)state;
    char doc[4096];
    size_t n = 0;
    n += (size_t)sprintf(doc + n, H);
    for (int d = 0; d < 40; d++) {
        if (d <= 32)
            n += (size_t)sprintf(doc + n, "%*slist\n", 2 * d, "");
        else
            n += (size_t)sprintf(doc + n, "@%d list\n", d);
    }
    assert_round_trip(doc, n);
    /* the same depth written with spaces past 32 is not canonical */
    n = (size_t)sprintf(doc, H);
    for (int d = 0; d < 34; d++)
        n += (size_t)sprintf(doc + n, "%*slist\n", 2 * d, "");
    pkl_err e;
    brine_canon c;
    assert_false(brine_canon_read(doc, n, NULL, &c, &e));
    assert_int_equal(e.code, PKL_ERR_BAD_ARGUMENT);
}

/* A 200,000-deep document (the ctest round trip does 1,000,000). */
static void test_canon_read_deep(void **state) {
    (void)state;
    size_t depth = 200000, n;
    char *p = malloc(depth * 2 + 8);
    assert_non_null(p);
    memcpy(p, "\x80\x02", 2);
    memset(p + 2, ']', depth);
    memset(p + 2 + depth, 'a', depth - 1);
    p[depth * 2 + 1] = '.';
    pkl_code code;
    char *t = canon_of(p, depth * 2 + 2, NULL, &code);
    assert_int_equal(code, PKL_OK);
    n = strlen(t);
    assert_round_trip(t, n);
    free(t);
    free(p);
}

typedef struct bad_case {
    const char *doc; /* body after H unless it starts with "brine" */
    int line;        /* 1-based line of the document the error must name */
    const char *why;
} bad_case;

static const bad_case bad_cases[] = {
    {"", 0, "no header"},
    {"brine-canonical 2 raw\nnone\n", 1, "other version"},
    {"brine-canonical 1 rawish\nnone\n", 1, "bad level"},
    {"", 2, "no body"},
    {"none", 2, "no final newline"},
    {"list\n  none", 3, "no final newline inside"},
    {"str \"\xc3\xa9\"\n", 2, "non-ASCII"},
    {"list\n\tnone\n", 3, "tab"},
    {"none\r\n", 2, "CR"},
    {"\n", 2, "empty line"},
    {"list\n   none\n", 3, "odd indentation"},
    {"list\n    none\n", 3, "depth jump"},
    {"list\n@1 none\n", 3, "@ below 33"},
    {"list\n  @33 none\n", 3, "spaces then @"},
    {"list\n  \n", 3, "indentation only"},
    {"lists\n", 2, "unknown kind"},
    {"None\n", 2, "kind case"},
    {"none\nnone\n", 3, "two roots"},
    {"none x\n", 2, "trailing text"},
    {"none  \n", 2, "trailing spaces"},
    {"bool True\n", 2, "bool spelling"},
    {"int 007\n", 2, "leading zeros"},
    {"int -0\n", 2, "minus zero"},
    {"int +1\n", 2, "plus sign"},
    {"int 0x10\n", 2, "hex in int64 range"},
    {"int -0x8000000000000000\n", 2, "hex for -2**63"},
    {"int 9223372036854775808\n", 2, "decimal past int64"},
    {"int 0x010000000000000000\n", 2, "hex leading zero"},
    {"int 0X10000000000000000\n", 2, "hex prefix case"},
    {"int 0x1000000000000000A\n", 2, "hex digit case"},
    {"int\n", 2, "int without value"},
    {"float 3ff000000000000\n", 2, "float 15 digits"},
    {"float 3FF0000000000000\n", 2, "float uppercase"},
    {"float 3ff00000000000000\n", 2, "float 17 digits"},
    {"str abc\n", 2, "unquoted"},
    {"str \"abc\n", 2, "unterminated"},
    {"str \"a\"b\"\n", 2, "stray quote"},
    {"str \"\\x41\"\n", 2, "escaped printable"},
    {"str \"\\xAB\"\n", 2, "uppercase escape"},
    {"str \"\\x0\"\n", 2, "short escape"},
    {"str \"\\u00e9\"\n", 2, "\\u below 0x100"},
    {"str \"\\U0000ffff\"\n", 2, "\\U below 0x10000"},
    {"str \"\\U00110000\"\n", 2, "past U+10FFFF"},
    {"str \"\\n\"\n", 2, "C escape"},
    {"bytes \"\\u0100\"\n", 2, "\\u in bytes"},
    {"str \"a\" #1\n", 2, "label on a scalar"},
    {"global \"a\"\n", 2, "global needs two names"},
    {"global \"a\" \"b\" \"c\"\n", 2, "global with three names"},
    {"buffer 01\n", 2, "buffer leading zero"},
    {"ref #1\n", 2, "ref to nothing"},
    {"list #1\n  ref #2\n", 3, "ref to an undefined label"},
    {"list #1\n  ref #0\n", 3, "ref #0"},
    {"list #2\n  ref #2\n", 2, "label out of order"},
    {"list #01\n  ref #1\n", 2, "label leading zero"},
    {"list #1\n", 2, "label nothing refers to"},
    {"list\n  tuple #1\n  ref #1\n", 3, "labelled empty tuple"},
    {"list\n  frozenset #1\n  ref #1\n", 3, "labelled empty frozenset"},
    {"tuple #1\n  ref #1\n", 2, "tuple containing itself"},
    {"dict\n  int 1\n", 2, "odd dict"},
    {"dict\n  int 1\n  none\n  bool true\n  none\n", 2, "equal keys 1 and True"},
    {"dict\n  list\n  none\n", 2, "unhashable key"},
    {"set\n  int 1\n  float 3ff0000000000000\n", 2, "equal set elements"},
    {"set\n  list\n", 2, "unhashable element"},
    {"frozenset\n  set\n", 2, "unhashable frozenset element"},
    {"set\n  int 2\n  int 1\n", 3, "set out of order"},
    {"list\n  ref #1\n", 3, "ref in list to nothing"},
    {"list\n  global \"a\" \"b\"\n  global \"a\" \"b\"\n", 4, "same global twice"},
    {"list\n  .args\n", 3, "slot under a list"},
    {".args\n", 2, "slot at the root"},
    {"call\n", 2, "call without target"},
    {"call\n  .args\n    int 1\n", 3, "slot before target"},
    {"call\n  global \"a\" \"b\"\n  .args\n", 4, "empty args"},
    {"call\n  global \"a\" \"b\"\n  int 1\n", 4, "node after target"},
    {"call\n  global \"a\" \"b\"\n  .kwargs\n    str \"k\"\n    none\n", 4, "kwargs on call"},
    {"new\n  global \"a\" \"b\"\n  .build\n    none\n  .args\n    int 1\n", 6, "args after a mutation"},
    {"new\n  global \"a\" \"b\"\n  .kwargs\n    str \"k\"\n", 4, "odd kwargs"},
    {"new\n  global \"a\" \"b\"\n  .kwargs\n    str \"k\"\n    none\n    str \"k\"\n    none\n", 4,
     "equal kwargs keys"},
    {"global \"a\" \"b\"\n  int 1\n", 3, "node under a global"},
    {"global \"a\" \"b\"\n  .args\n    int 1\n", 3, "args on a global"},
    {"persid\n  str \"p\"\n  .args\n    int 1\n", 4, "args on persid"},
    {"call\n  global \"a\" \"b\"\n  .build\n", 4, "empty build"},
    {"call\n  global \"a\" \"b\"\n  .build\n    none\n    none\n", 6, "build with two"},
    {"call\n  global \"a\" \"b\"\n  .setitem\n    none\n", 4, "setitem with one"},
    {"call\n  global \"a\" \"b\"\n  .args #1\n    int 1\n", 4, "labelled slot"},
    {"call\n  global \"a\" \"b\"\n  .update\n    none\n", 4, "unknown slot"},
    {"memoryview\n", 2, "memoryview without child"},
    {"memoryview\n  buffer 0\n  buffer 1\n", 4, "memoryview with two"},
    {"int 1\n  int 2\n", 3, "child of a scalar"},
    {"list #1\n  ref #1\n    int 1\n", 4, "child of a ref"},
    {"error\n", 2, "error without class"},
    {"error bogus\n", 2, "unknown error class"},
    {"error ok\n", 2, "error ok"},
    {"error truncated\nnone\n", 3, "line after an error"},
    {"error truncated", 2, "error without newline"},
    {"list\n  error truncated\n", 3, "error inside a tree"},
};

static void test_canon_read_rejects_malformed(void **state) {
    (void)state;
    char doc[512];
    size_t failed = 0;
    for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++) {
        const bad_case *b = &bad_cases[i];
        size_t n;
        if (strncmp(b->doc, "brine", 5) == 0 || b->line == 0)
            n = (size_t)snprintf(doc, sizeof doc, "%s", b->doc);
        else
            n = (size_t)snprintf(doc, sizeof doc, H "%s", b->doc);
        size_t want = 0;
        for (int l = 1, k = 0; l < b->line; k++)
            if (doc[k] == '\n' && ++l == b->line)
                want = (size_t)k + 1;
        brine_canon c;
        pkl_err e = {PKL_OK, NULL, 0};
        bool ok = brine_canon_read(doc, n, NULL, &c, &e);
        if (ok) {
            brine_canon_release(&c);
            print_message("accepted: %s\n", b->why);
            failed++;
        } else if (e.code != PKL_ERR_BAD_ARGUMENT || !e.msg || (b->line && e.pos != want)) {
            print_message("%s: code %d pos %zu (want %zu): %s\n", b->why, e.code, e.pos, want,
                          e.msg ? e.msg : "(no message)");
            failed++;
        } else {
            assert_null(c.doc);
        }
    }
    assert_int_equal(failed, 0);
}

static void test_canon_read_value_level(void **state) {
    (void)state;
    const char *doc = "brine-canonical 1 value\nset\n  int 1\n";
    brine_canon c;
    assert_true(brine_canon_read(doc, strlen(doc), NULL, &c, NULL));
    assert_int_equal(c.level, 1);
    assert_int_equal(c.error, PKL_OK);
    assert_non_null(c.doc);
    assert_int_equal(pkl_val_kind(pkl_doc_root(c.doc)), PKL_SET);
    brine_canon_release(&c);
    const char *err = "brine-canonical 1 value\nerror resource-limit\n";
    assert_true(brine_canon_read(err, strlen(err), NULL, &c, NULL));
    assert_int_equal(c.level, 1);
    assert_int_equal(c.error, PKL_ERR_RESOURCE_LIMIT);
}

/* The graph is libpkl's: shared nodes are one node, cycles are cycles. */
static void test_canon_read_identity(void **state) {
    (void)state;
    const char *doc = H "list #1\n  tuple #2\n    ref #1\n  ref #2\n  global \"m\" \"n\" #3\n  ref #3\n";
    brine_canon c;
    assert_true(brine_canon_read(doc, strlen(doc), NULL, &c, NULL));
    const pkl_val *root = pkl_doc_root(c.doc);
    assert_int_equal(pkl_val_len(root), 4);
    const pkl_val *t = pkl_val_item(root, 0);
    assert_ptr_equal(pkl_val_item(t, 0), root);
    assert_ptr_equal(pkl_val_item(root, 1), t);
    assert_ptr_equal(pkl_val_item(root, 2), pkl_val_item(root, 3));
    brine_canon_release(&c);
}

static void test_canon_read_limits(void **state) {
    (void)state;
    const char *doc = H "list\n  int 1\n  int 2\n  int 3\n  int 4\n";
    size_t len = strlen(doc);
    pkl_limits lim = pkl_limits_default();
    brine_canon c;
    pkl_err e;
    lim.max_input = len - 1;
    assert_false(brine_canon_read(doc, len, &lim, &c, &e));
    assert_int_equal(e.code, PKL_ERR_RESOURCE_LIMIT);
    lim = pkl_limits_default();
    lim.max_nodes = 4;
    assert_false(brine_canon_read(doc, len, &lim, &c, &e));
    assert_int_equal(e.code, PKL_ERR_RESOURCE_LIMIT);
    lim.max_nodes = 5;
    assert_true(brine_canon_read(doc, len, &lim, &c, &e));
    brine_canon_release(&c);
    lim = pkl_limits_default();
    lim.max_output = len - 5; /* the check print does not fit */
    assert_false(brine_canon_read(doc, len, &lim, &c, &e));
    assert_int_equal(e.code, PKL_ERR_RESOURCE_LIMIT);
    /* every memory budget fails cleanly or succeeds (no leak under ASan) */
    char *big = malloc(64 * 1024);
    assert_non_null(big);
    size_t n = (size_t)sprintf(big, H "dict\n");
    for (int i = 0; i < 300; i++) /* < 40 bytes each */
        n += (size_t)sprintf(big + n, "  int %d\n  list\n    str \"v%d\"\n", i, i);
    size_t ok = 0, limited = 0;
    for (size_t budget = 16 * 1024; budget < 512 * 1024 && ok < 2; budget += 512) {
        lim = pkl_limits_default();
        lim.max_alloc = budget;
        if (brine_canon_read(big, n, &lim, &c, &e)) {
            ok++;
            brine_canon_release(&c);
        } else {
            assert_int_equal(e.code, PKL_ERR_RESOURCE_LIMIT);
            limited++;
        }
    }
    free(big);
    assert_true(ok > 0 && limited > 0);
}

/* ---- garbage: mutated documents never crash the reader ---- */

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t rng(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static const char *const seeds[] = {
    H "list\n  int 1\n  float 4004000000000000\n  str \"\\xe9\"\n  bytes \"\\x00\"\n",
    H "list #1\n  tuple #2\n    ref #1\n    int 0x10000000000000000\n  ref #2\n",
    H "dict\n  frozenset\n    int 1\n    int 3\n  set\n    str \"a\"\n    tuple\n      none\n",
    H "new\n  global \"__main__\" \"C\" #1\n  .args\n    int 5\n  .kwargs\n    str \"k\"\n    ref #1\n"
      "  .build\n    dict\n      str \"x\"\n      int 1\n  .append\n    none\n  .setitem\n    int 1\n"
      "    int 2\n  .add\n    bool false\n",
    H "call #1\n  global \"posix\" \"system\"\n  .args\n    list\n      ref #1\n"
      "      memoryview\n        buffer 3\n",
    H "persid\n  str \"p\"\n",
    H "error truncated\n",
    "brine-canonical 1 value\nbytearray \"\\u0100\\U0001f600\"\n",
};

static const char *const tokens[] = {
    "\n", " ", "  ", "@", "@33 ", "#", " #1", " #2", "ref #1", "\"", "\\", "\\x", "\\u0100", ".args",
    ".kwargs", ".build", ".setitem", "tuple", "frozenset", "dict", "set", "list", "int ", "0x",
    "-", "9", "global \"a\" \"b\"", "error ", "call", "new", "\xff", "\t",
};

static void test_canon_read_garbage_never_crashes(void **state) {
    (void)state;
    char buf[4096];
    size_t accepted = 0, rejected = 0;
    for (int iter = 0; iter < 30000; iter++) {
        const char *s = seeds[rng() % (sizeof seeds / sizeof seeds[0])];
        size_t n = strlen(s);
        memcpy(buf, s, n);
        int edits = 1 + (int)(rng() % 4);
        for (int k = 0; k < edits; k++) {
            size_t at = n ? (size_t)(rng() % n) : 0;
            switch (rng() % 5) {
            case 0: /* flip a byte */
                if (n)
                    buf[at] = (char)(buf[at] ^ (1u << (rng() % 8)));
                break;
            case 1: { /* insert a token */
                const char *t = tokens[rng() % (sizeof tokens / sizeof tokens[0])];
                size_t tl = strlen(t);
                if (n + tl < sizeof buf) {
                    memmove(buf + at + tl, buf + at, n - at);
                    memcpy(buf + at, t, tl);
                    n += tl;
                }
                break;
            }
            case 2: { /* delete a span */
                size_t l = (size_t)(rng() % 8);
                if (at + l > n)
                    l = n - at;
                memmove(buf + at, buf + at + l, n - at - l);
                n -= l;
                break;
            }
            case 3: /* duplicate a span */
                if (n && n * 2 < sizeof buf) {
                    size_t l = 1 + (size_t)(rng() % (n - at));
                    memmove(buf + at + l, buf + at, n - at);
                    n += l;
                }
                break;
            default: /* truncate */
                n = at;
                break;
            }
        }
        brine_canon c;
        pkl_err e = {PKL_OK, NULL, 0};
        if (brine_canon_read(buf, n, NULL, &c, &e)) {
            accepted++;
            /* accepted means canonical: printing gives the input back */
            if (c.doc) {
                size_t m;
                char *out = pkl_canon(c.doc, NULL, (size_t)1 << 20, &m, NULL);
                assert_non_null(out);
                size_t hb = (size_t)(memchr(buf, '\n', n) ? (char *)memchr(buf, '\n', n) - buf + 1 : 0);
                size_t ob = (size_t)((char *)memchr(out, '\n', m) - out + 1);
                assert_int_equal(m - ob, n - hb);
                assert_memory_equal(out + ob, buf + hb, n - hb);
                free(out);
            }
            brine_canon_release(&c);
        } else {
            rejected++;
            assert_true(e.code == PKL_ERR_BAD_ARGUMENT || e.code == PKL_ERR_RESOURCE_LIMIT);
            assert_non_null(e.msg);
            assert_true(e.pos <= n);
        }
    }
    print_message("garbage: %zu accepted (still canonical), %zu rejected\n", accepted, rejected);
    assert_true(rejected > 20000);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_canon_read_spec_examples),
        cmocka_unit_test(test_canon_read_pickled_graphs),
        cmocka_unit_test(test_canon_read_depth_forms),
        cmocka_unit_test(test_canon_read_deep),
        cmocka_unit_test(test_canon_read_rejects_malformed),
        cmocka_unit_test(test_canon_read_value_level),
        cmocka_unit_test(test_canon_read_identity),
        cmocka_unit_test(test_canon_read_limits),
        cmocka_unit_test(test_canon_read_garbage_never_crashes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
