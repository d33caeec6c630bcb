/* libpkl against the oracle: every case of tests/data/decode_cases.txt.
 *
 * The expectations in that file were written by tests/data/regen_cases.py
 * from brine's oracle (CPython's C unpickler with every global stubbed);
 * ctest's oracle.unit_cases_up_to_date proves they still are. Nothing here
 * states what a pickle loads to: this file only compares.
 *
 * One test per area (the case name up to its first '_'); each runs all the
 * cases of its areas and reports every failing case (name, line, pickle,
 * expected and got canonical text) before failing. Besides the canonical
 * text, each case checks: pkl_load and pkl_canon_load agree, a failure
 * carries a message and a position inside the input, and nothing leaks
 * (an accounting allocator is back to zero after pkl_doc_free).
 */
#include "test_support.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cases.h"

#define CASES_PATH BRINE_TEST_DATA "/decode_cases.txt"
#define HEADER "brine-canonical 1 raw\n"

/* The areas and the test that runs them. Every area in the case file must
   be listed here (test_decode_case_file_is_complete checks it). */
#define DECODE_AREAS(X)                                                                    \
    X(test_decode_proto_matches_oracle, "proto")                                           \
    X(test_decode_stop_and_opcodes_match_oracle, "stop", "opcode")                         \
    X(test_decode_constants_match_oracle, "const")                                         \
    X(test_decode_int_match_oracle, "int", "binint", "binint1", "binint2")                 \
    X(test_decode_long_match_oracle, "long", "long1", "long4")                             \
    X(test_decode_float_match_oracle, "float", "binfloat")                                 \
    X(test_decode_string_match_oracle, "string", "binstring")                              \
    X(test_decode_bytes_match_oracle, "bytes", "bytearray")                                \
    X(test_decode_unicode_match_oracle, "unicode", "binunicode", "binunicode8")            \
    X(test_decode_list_tuple_match_oracle, "list", "tuple", "tuple1", "tuple2", "tuple3")  \
    X(test_decode_dict_match_oracle, "dict")                                               \
    X(test_decode_dict_keys_match_oracle, "key")                                           \
    X(test_decode_set_match_oracle, "set", "frozenset")                                    \
    X(test_decode_memo_match_oracle, "memo")                                               \
    X(test_decode_stack_match_oracle, "stack")                                             \
    X(test_decode_identity_match_oracle, "identity")                                       \
    X(test_decode_global_match_oracle, "global")                                           \
    X(test_decode_calls_match_oracle, "call", "newobj")                                    \
    X(test_decode_build_match_oracle, "build")                                             \
    X(test_decode_mutations_match_oracle, "mutate")                                        \
    X(test_decode_persid_match_oracle, "persid", "binpersid")                              \
    X(test_decode_ext_match_oracle, "ext")                                                 \
    X(test_decode_frame_match_oracle, "frame")                                             \
    X(test_decode_buffer_match_oracle, "buffer")                                           \
    X(test_decode_all_opcodes_per_protocol_match_oracle, "allops")


static void need_cases(void) {
    if (!g_loaded)
        fail_msg("cannot read %s: %s", CASES_PATH, g_load_error);
}

/* ------------------------------------------------------------------------ */
/* Growable message text */

typedef struct msg {
    char *p;
    size_t len, cap;
} msg;

static void msg_add(msg *m, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) {
        va_end(ap2);
        return;
    }
    if (m->len + (size_t)n + 1 > m->cap) {
        size_t cap = m->cap ? m->cap : 256;
        while (cap < m->len + (size_t)n + 1)
            cap *= 2;
        m->p = realloc(m->p, cap);
        assert_non_null(m->p);
        m->cap = cap;
    }
    vsnprintf(m->p + m->len, (size_t)n + 1, fmt, ap2);
    va_end(ap2);
    m->len += (size_t)n;
}

/* Appends `text` with every line indented, for the failure report. */
static void msg_block(msg *m, const char *text) {
    const char *p = text;
    if (!*p) {
        msg_add(m, "    (empty)\n");
        return;
    }
    while (*p) {
        const char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p) : strlen(p);
        if (n > 400)
            msg_add(m, "    %.400s... (%zu chars)\n", p, n);
        else
            msg_add(m, "    %.*s\n", (int)n, p);
        p += n + (nl ? 1 : 0);
    }
}

/* ------------------------------------------------------------------------ */
/* One case */

static bool check_case(const dcase *c) {
    msg problems = {0};
    char *got = NULL;
    pkl_code want = dcase_expected_code(c);

    if (!c->expect) {
        msg_add(&problems, "  no expectation in the case file (run tests/data/regen_cases.py)\n");
        goto report;
    }
    if (want == PKL_CODE_COUNT) {
        msg_add(&problems, "  the expectation names an unknown error class\n");
        goto report;
    }

    failing_alc fa;
    failing_alc_init(&fa, 0);
    pkl_load_opts o;
    memset(&o, 0, sizeof o);
    o.alc = &fa.alc;
    pkl_err err = {PKL_OK, NULL, 0};
    pkl_doc *doc = pkl_load(c->data, c->len, &o, &err);
    pkl_code code = doc ? PKL_OK : err.code;
    if (doc) {
        pkl_err ce = {PKL_OK, NULL, 0};
        size_t n = 0;
        got = pkl_canon(doc, NULL, SIZE_MAX, &n, &ce);
        if (!got)
            msg_add(&problems, "  pkl_canon failed on the loaded document: %s (%s)\n",
                    pkl_code_name(ce.code), ce.msg ? ce.msg : "no message");
        else if (strlen(got) != n)
            msg_add(&problems, "  pkl_canon: *len %zu but strlen %zu\n", n, strlen(got));
        if (err.code != PKL_OK)
            msg_add(&problems, "  pkl_load returned a document but set err to %s\n",
                    pkl_code_name(err.code));
        pkl_doc_free(doc);
    } else {
        got = pkl_canon_error(err.code, NULL, NULL);
        if (err.code == PKL_OK)
            msg_add(&problems, "  pkl_load returned NULL with err.code ok\n");
        if (!err.msg || !*err.msg)
            msg_add(&problems, "  error %s without a message\n", pkl_code_name(err.code));
        if (err.pos > c->len)
            msg_add(&problems, "  error position %zu is past the input (%zu bytes)\n", err.pos,
                    c->len);
    }
    if (fa.live != 0 || fa.live_blocks != 0)
        msg_add(&problems, "  leak: %lld bytes in %zu blocks still allocated after the load\n",
                fa.live, fa.live_blocks);

    if (got) {
        if (strncmp(got, HEADER, strlen(HEADER)) != 0)
            msg_add(&problems, "  the canonical text does not start with the v1 raw header\n");
        else if (strcmp(canon_body(got), c->expect) != 0) {
            if (code != want)
                msg_add(&problems, "  outcome differs: oracle %s, libpkl %s%s%s\n",
                        pkl_code_name(want), pkl_code_name(code), err.msg ? ": " : "",
                        !doc && err.msg ? err.msg : "");
            msg_add(&problems, "  canonical text differs from the oracle at body line %zu\n",
                    first_diff_line(canon_body(got), c->expect));
        }
        /* the one-call API must say the same */
        pkl_err le = {PKL_OK, NULL, 0};
        size_t n2 = 0;
        char *t2 = pkl_canon_load(c->data, c->len, NULL, &n2, &le);
        if (!t2)
            msg_add(&problems, "  pkl_canon_load returned NULL\n");
        else {
            if (strcmp(t2, got) != 0)
                msg_add(&problems, "  pkl_canon_load differs from pkl_load + pkl_canon\n");
            if (n2 != strlen(t2))
                msg_add(&problems, "  pkl_canon_load: *out_len %zu but strlen %zu\n", n2,
                        strlen(t2));
            if (le.code != code)
                msg_add(&problems, "  pkl_canon_load: load_err %s, pkl_load %s\n",
                        pkl_code_name(le.code), pkl_code_name(code));
            free(t2);
        }
    }

report:
    if (!problems.len) {
        free(got);
        return true;
    }
    char *esc = escape_bytes(c->data, c->len, 600);
    msg out = {0};
    msg_add(&out, "[%s] decode_cases.txt:%d: %s\n  pickle: %s\n%s", c->name, c->line, c->desc,
            esc, problems.p);
    msg_add(&out, "  --- expected (oracle: CPython C unpickler)%s\n",
            c->differ ? " [the Python unpickler differs]" : "");
    msg_block(&out, c->expect ? c->expect : "(none)");
    msg_add(&out, "  --- got (libpkl)\n");
    msg_block(&out, got ? canon_body(got) : "(no text)");
    print_error("%s\n", out.p);
    free(out.p);
    free(esc);
    free(problems.p);
    free(got);
    return false;
}

static bool in_list(const char *area, const char *const *areas) {
    for (; *areas; areas++)
        if (strcmp(area, *areas) == 0)
            return true;
    return false;
}

static void check_areas(const char *test, const char *const *areas) {
    need_cases();
    size_t ran = 0, failed = 0;
    for (size_t i = 0; i < g_cases.n; i++) {
        const dcase *c = &g_cases.v[i];
        if (!in_list(c->area, areas))
            continue;
        ran++;
        if (!check_case(c))
            failed++;
    }
    if (ran == 0)
        fail_msg("%s: no case in its areas (starting with %s_): nothing was tested", test,
                 areas[0]);
    if (failed)
        fail_msg("%s: %zu of %zu cases differ from the oracle (listed above)", test, failed,
                 ran);
}

#define DEFINE_AREA_TEST(fn, ...)                                                          \
    static void fn(void **state) {                                                         \
        (void)state;                                                                       \
        static const char *const areas[] = {__VA_ARGS__, NULL};                            \
        check_areas(#fn, areas);                                                           \
    }
DECODE_AREAS(DEFINE_AREA_TEST)

/* ------------------------------------------------------------------------ */
/* The case file itself */

static bool area_known(const char *area) {
#define AREA_NAMES(fn, ...) {__VA_ARGS__, NULL},
    static const char *const lists[][8] = {DECODE_AREAS(AREA_NAMES)};
#undef AREA_NAMES
    for (size_t i = 0; i < sizeof lists / sizeof lists[0]; i++)
        if (in_list(area, lists[i]))
            return true;
    return false;
}

static void test_decode_case_file_is_complete(void **state) {
    (void)state;
    need_cases();
    size_t bad = 0;
    if (g_cases.n < 200)
        fail_msg("only %zu cases in %s (the suite promises at least 200)", g_cases.n,
                 CASES_PATH);
    for (size_t i = 0; i < g_cases.n; i++) {
        const dcase *c = &g_cases.v[i];
        if (!area_known(c->area)) {
            print_error("[%s] area '%s' is run by no test: add it to DECODE_AREAS\n", c->name,
                        c->area);
            bad++;
        }
        if (!c->expect || dcase_expected_code(c) == PKL_CODE_COUNT) {
            print_error("[%s] no usable expectation (run tests/data/regen_cases.py)\n",
                        c->name);
            bad++;
        }
    }
    if (bad)
        fail_msg("%zu problems in the case file", bad);
}

static void test_decode_cases_cover_every_opcode(void **state) {
    (void)state;
    need_cases();
    bool any[256] = {false}, loaded[256] = {false};
    /* by_proto[p][op]: reached in a loading case declared at protocol p
       (index 0 also collects pickles without PROTO) */
    static bool by_proto[PKL_HIGHEST_PROTOCOL + 1][256];
    memset(by_proto, 0, sizeof by_proto);
    for (size_t i = 0; i < g_cases.n; i++) {
        const dcase *c = &g_cases.v[i];
        bool seen[256] = {false};
        walk_opcodes(c->data, c->len, seen);
        int proto = c->len >= 2 && c->data[0] == PKL_OP_PROTO ? c->data[1] : 0;
        bool loads = dcase_expected_code(c) == PKL_OK;
        for (int b = 0; b < 256; b++) {
            if (!seen[b])
                continue;
            any[b] = true;
            if (loads) {
                loaded[b] = true;
                if (proto <= PKL_HIGHEST_PROTOCOL)
                    by_proto[proto][b] = true;
            }
        }
    }
    size_t missing = 0;
    for (size_t i = 0; i < pkl_opcode_count(); i++) {
        const pkl_opinfo *op = pkl_opcode_at(i);
        bool needs_setup = op->code == PKL_OP_EXT1 || op->code == PKL_OP_EXT2 ||
                           op->code == PKL_OP_EXT4 || op->code == PKL_OP_NEXT_BUFFER;
        if (!any[op->code]) {
            print_error("opcode %s (0x%02x) appears in no case\n", op->name, op->code);
            missing++;
        } else if (!needs_setup && !loaded[op->code]) {
            print_error("opcode %s (0x%02x) appears in no case that loads\n", op->name,
                        op->code);
            missing++;
        }
        /* the opcodes a protocol allows, under that protocol's header
           (protocol 1 pickles have no header: they count with 0) */
        for (int p = op->proto < 2 ? 0 : op->proto; p <= PKL_HIGHEST_PROTOCOL && !needs_setup;
             p++) {
            if (p == 1)
                continue;
            if (!by_proto[p][op->code]) {
                print_error("opcode %s (protocol %d) is in no loading case of protocol %d\n",
                            op->name, op->proto, p);
                missing++;
            }
        }
    }
    if (missing)
        fail_msg("%zu opcode coverage gaps in the case file", missing);
}

static void test_decode_cases_cover_every_error_class(void **state) {
    (void)state;
    need_cases();
    /* every class a default load can produce; forbidden needs a callback
       (test_errors.c) and internal is a libpkl bug by definition */
    static const pkl_code classes[] = {
        PKL_ERR_TRUNCATED,     PKL_ERR_BAD_OPCODE,           PKL_ERR_STACK_UNDERFLOW,
        PKL_ERR_MARK_MISSING,  PKL_ERR_MEMO_MISSING,         PKL_ERR_BAD_ARGUMENT,
        PKL_ERR_UNSUPPORTED_PROTOCOL, PKL_ERR_TYPE_ERROR,    PKL_ERR_UNKNOWN_EXTENSION,
        PKL_ERR_NO_BUFFERS,    PKL_ERR_RESOURCE_LIMIT,
    };
    size_t missing = 0;
    for (size_t k = 0; k < sizeof classes / sizeof classes[0]; k++) {
        size_t n = 0;
        for (size_t i = 0; i < g_cases.n; i++)
            if (dcase_expected_code(&g_cases.v[i]) == classes[k])
                n++;
        if (!n) {
            print_error("no case expects error %s\n", pkl_code_name(classes[k]));
            missing++;
        }
    }
    if (missing)
        fail_msg("%zu error classes without a case", missing);
}

/* ------------------------------------------------------------------------ */


int main(void) {
#define AREA_ENTRY(fn, ...) cmocka_unit_test(fn),
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decode_case_file_is_complete),
        cmocka_unit_test(test_decode_cases_cover_every_opcode),
        cmocka_unit_test(test_decode_cases_cover_every_error_class),
        DECODE_AREAS(AREA_ENTRY)
    };
#undef AREA_ENTRY
    return cmocka_run_group_tests(tests, cases_group_setup, cases_group_teardown);
}
