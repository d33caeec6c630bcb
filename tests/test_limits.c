/* pkl_limits: every bound, just under (loads) and just over (fails with
 * resource-limit); the defaults; claimed lengths that are never allocated;
 * million-deep nesting; the event trace.
 *
 * The limits are libpkl's own contract (include/pkl.h), so the thresholds
 * here are measured from libpkl itself (node counts, text lengths, a binary
 * search on max_alloc) rather than written down.
 */
#include "test_support.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cases.h"

#define CASES_PATH BRINE_TEST_DATA "/decode_cases.txt"
#define KiB ((size_t)1024)
#define MiB (KiB * 1024)
#define GiB (MiB * 1024)


static const dcase *get_case(const char *name) {
    if (!g_loaded)
        fail_msg("cannot read %s: %s", CASES_PATH, g_load_error);
    const dcase *c = dcases_find(&g_cases, name);
    if (!c)
        fail_msg("case %s is not in %s", name, CASES_PATH);
    return c;
}

/* Loads with `lim`; returns the error code (PKL_OK when it loaded). */
static pkl_code load_with(const void *data, size_t len, const pkl_limits *lim) {
    pkl_load_opts o;
    memset(&o, 0, sizeof o);
    o.limits = lim;
    pkl_err err = {PKL_OK, NULL, 0};
    pkl_doc *doc = pkl_load(data, len, &o, &err);
    if (doc) {
        pkl_doc_free(doc);
        return PKL_OK;
    }
    if (err.code == PKL_OK)
        fail_msg("pkl_load returned NULL with err.code ok");
    if (!err.msg || !*err.msg)
        fail_msg("error %s without a message", pkl_code_name(err.code));
    return err.code;
}

/* The _lit forms take a string literal (hex escapes: split the literal
   before a following hex digit, "\x01" "C"). */
#define assert_loads_lit(lit, lim)                                                         \
    assert_code_impl((lit), sizeof(lit) - 1, (lim), PKL_OK, #lim, __LINE__)
#define assert_limited_lit(lit, lim)                                                       \
    assert_code_impl((lit), sizeof(lit) - 1, (lim), PKL_ERR_RESOURCE_LIMIT, #lim, __LINE__)

#define assert_loads(data, len, lim)                                                       \
    assert_code_impl((data), (len), (lim), PKL_OK, #lim, __LINE__)
#define assert_limited(data, len, lim)                                                     \
    assert_code_impl((data), (len), (lim), PKL_ERR_RESOURCE_LIMIT, #lim, __LINE__)

static void assert_code_impl(const void *data, size_t len, const pkl_limits *lim, pkl_code want,
                             const char *what, int line) {
    pkl_code got = load_with(data, len, lim);
    if (got != want)
        fail_msg("line %d (%s): %s, expected %s", line, what, pkl_code_name(got),
                 pkl_code_name(want));
}

/* A growable byte buffer for building pickles. */
typedef struct bytes {
    uint8_t *p;
    size_t len, cap;
} bytes;

static void put(bytes *b, const void *s, size_t n) {
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n)
            cap *= 2;
        b->p = realloc(b->p, cap);
        assert_non_null(b->p);
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
}

static void puts_(bytes *b, const char *s) { put(b, s, strlen(s)); }

static void putn(bytes *b, char c, size_t n) {
    for (size_t i = 0; i < n; i++)
        put(b, &c, 1);
}

/* ------------------------------------------------------------------------ */

static void test_limits_defaults_are_documented_values(void **state) {
    (void)state;
    pkl_limits d = pkl_limits_default();
    assert_int_equal(d.max_input, 1 * GiB);
    assert_int_equal(d.max_alloc, 4 * GiB);
    assert_int_equal(d.max_nodes, 64 * MiB);
    assert_int_equal(d.max_stack, 16 * MiB);
    assert_int_equal(d.max_marks, 1 * MiB);
    assert_int_equal(d.max_memo, 16 * MiB);
    assert_int_equal(d.max_digits, 4300);
    assert_int_equal(d.max_output, 1 * GiB);
    /* NULL limits means these defaults: the oracle's 4300-digit boundary */
    const dcase *ok = get_case("long_4300_digits");
    assert_int_equal(dcase_expected_code(ok), PKL_OK);
    assert_int_equal(load_with(ok->data, ok->len, NULL), PKL_OK);
    assert_int_equal(load_with(ok->data, ok->len, &d), PKL_OK);
}

static void test_limits_max_input(void **state) {
    (void)state;
    pkl_limits lim = pkl_limits_default();
    lim.max_input = 2;
    assert_loads_lit("N.", &lim);
    lim.max_input = 1;
    assert_limited_lit("N.", &lim);
    /* bytes after STOP count: the whole input is refused */
    assert_limited_lit("N.xyz", &lim);
    lim.max_input = 0;
    assert_limited_lit("N.", &lim);
}

/* The smallest max_alloc that loads `data`, by binary search. */
static size_t alloc_threshold(const void *data, size_t len) {
    pkl_limits lim = pkl_limits_default();
    size_t lo = 0, hi = 64 * MiB; /* lo fails, hi loads */
    lim.max_alloc = hi;
    if (load_with(data, len, &lim) != PKL_OK)
        fail_msg("does not load with max_alloc = %zu", hi);
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        lim.max_alloc = mid;
        pkl_code c = load_with(data, len, &lim);
        if (c == PKL_OK)
            hi = mid;
        else if (c == PKL_ERR_RESOURCE_LIMIT)
            lo = mid;
        else
            fail_msg("max_alloc %zu: %s, expected ok or resource-limit", mid, pkl_code_name(c));
    }
    return hi;
}

static void test_limits_max_alloc(void **state) {
    (void)state;
    static const char *const names[] = {"allops_protocol_5", "long_4300_digits",
                                        "identity_recursive_tuple", "memo_sparse_big_index"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        const dcase *c = get_case(names[i]);
        size_t t = alloc_threshold(c->data, c->len);
        pkl_limits lim = pkl_limits_default();
        lim.max_alloc = t;
        assert_loads(c->data, c->len, &lim);
        lim.max_alloc = t - 1;
        assert_limited(c->data, c->len, &lim);
        /* max_alloc bounds the bytes held at once: exactly the peak an
           accounting allocator sees */
        peak_alc pa;
        peak_alc_init(&pa);
        pkl_load_opts o;
        memset(&o, 0, sizeof o);
        o.alc = &pa.alc;
        pkl_doc *doc = pkl_load(c->data, c->len, &o, NULL);
        assert_non_null(doc);
        pkl_doc_free(doc);
        assert_int_equal(pa.live, 0);
        if (t != pa.peak)
            fail_msg("%s: threshold max_alloc %zu but the allocator's peak was %zu bytes",
                     names[i], t, pa.peak);
    }
    /* a 1 MiB byte string does not fit in 512 KiB */
    bytes b = {0};
    puts_(&b, "\x80\x04\x8e");
    uint8_t len8[8] = {0, 0, 0x10, 0, 0, 0, 0, 0}; /* 1 MiB */
    put(&b, len8, 8);
    putn(&b, 'x', 1 * MiB);
    puts_(&b, ".");
    pkl_limits lim = pkl_limits_default();
    assert_loads(b.p, b.len, &lim);
    lim.max_alloc = 512 * KiB;
    assert_limited(b.p, b.len, &lim);
    free(b.p);
}

static void test_limits_max_nodes(void **state) {
    (void)state;
    static const char *const names[] = {"allops_protocol_5", "list_mark_items", "tuple3",
                                        "identity_list_self"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        const dcase *c = get_case(names[i]);
        pkl_doc *doc = pkl_load(c->data, c->len, NULL, NULL);
        assert_non_null(doc);
        size_t n = pkl_doc_node_count(doc);
        pkl_doc_free(doc);
        assert_true(n >= 1);
        pkl_limits lim = pkl_limits_default();
        lim.max_nodes = n;
        assert_loads(c->data, c->len, &lim);
        lim.max_nodes = n - 1;
        assert_limited(c->data, c->len, &lim);
    }
    /* 1000 distinct ints in a list: at least 1001 nodes */
    bytes b = {0};
    puts_(&b, "(");
    for (int i = 0; i < 1000; i++) {
        uint8_t op[3] = {'M', (uint8_t)(i & 0xff), (uint8_t)(i >> 8)};
        put(&b, op, 3);
    }
    puts_(&b, "l.");
    pkl_limits lim = pkl_limits_default();
    lim.max_nodes = 1000;
    assert_limited(b.p, b.len, &lim);
    free(b.p);
}

static void test_limits_max_stack(void **state) {
    (void)state;
    pkl_limits lim = pkl_limits_default();
    /* 100 items above a mark at once (more than any first allocation) */
    bytes b = {0};
    puts_(&b, "(");
    putn(&b, 'N', 100);
    puts_(&b, "t.");
    lim.max_stack = 100;
    assert_loads(b.p, b.len, &lim);
    lim.max_stack = 99;
    assert_limited(b.p, b.len, &lim);
    free(b.p);
    lim.max_stack = 1;
    assert_loads_lit("N.", &lim);
    lim.max_stack = 0;
    assert_limited_lit("N.", &lim);
}

static void test_limits_max_marks(void **state) {
    (void)state;
    pkl_limits lim = pkl_limits_default();
    bytes b = {0};
    putn(&b, '(', 50);
    puts_(&b, "N.");
    lim.max_marks = 50;
    assert_loads(b.p, b.len, &lim);
    lim.max_marks = 49;
    assert_limited(b.p, b.len, &lim);
    free(b.p);
    /* marks closed again do not add up */
    lim.max_marks = 1;
    assert_loads_lit("(t(t(t\x87.", &lim);
    lim.max_marks = 0;
    assert_limited_lit("(t.", &lim);
}

static void test_limits_max_memo(void **state) {
    (void)state;
    pkl_limits lim = pkl_limits_default();
    bytes b = {0};
    puts_(&b, "N");
    for (int i = 0; i < 10; i++) {
        uint8_t op[2] = {'q', (uint8_t)(i * 37)};
        put(&b, op, 2);
    }
    puts_(&b, ".");
    lim.max_memo = 10;
    assert_loads(b.p, b.len, &lim);
    lim.max_memo = 9;
    assert_limited(b.p, b.len, &lim);
    free(b.p);
    /* one index written three times is one entry */
    lim.max_memo = 1;
    assert_loads_lit("Nq\x05q\x05r\x05\x00\x00\x00.", &lim);
    /* MEMOIZE adds one; sparse big indices count one each */
    assert_loads_lit("\x80\x04N\x94.", &lim);
    lim.max_memo = 2;
    assert_loads_lit("Nr\x40\x42\x0f\x00r\x00\x00\x00\x01.", &lim);
    lim.max_memo = 1;
    assert_limited_lit("Nr\x40\x42\x0f\x00r\x00\x00\x00\x01.", &lim);
}

static void test_limits_max_digits(void **state) {
    (void)state;
    pkl_limits lim = pkl_limits_default();
    lim.max_digits = 10;
    /* INT goes through strtol first, as CPython does: a value that fits in
       a C long never meets the digit limit */
    assert_loads_lit("I1234567890\n.", &lim);
    assert_loads_lit("I12345678901\n.", &lim);
    lim.max_digits = 20;
    assert_loads_lit("I99999999999999999999\n.", &lim);   /* 20 digits, > 2**63 */
    assert_limited_lit("I999999999999999999999\n.", &lim); /* 21 digits */
    lim.max_digits = 10;
    assert_loads_lit("L1234567890L\n.", &lim);
    assert_limited_lit("L12345678901L\n.", &lim);
    /* the sign and CPython's underscores are not digits */
    assert_loads_lit("L-1_234_567_890L\n.", &lim);
    assert_limited_lit("L-1_234_567_890_1L\n.", &lim);
    /* 0 = unbounded: 5000 digits load */
    bytes b = {0};
    puts_(&b, "L");
    putn(&b, '9', 5000);
    puts_(&b, "L\n.");
    lim.max_digits = 0;
    assert_loads(b.p, b.len, &lim);
    lim.max_digits = 5000;
    assert_loads(b.p, b.len, &lim);
    lim.max_digits = 4999;
    assert_limited(b.p, b.len, &lim);
    free(b.p);
}

static void test_limits_max_output(void **state) {
    (void)state;
    static const char *const names[] = {"allops_protocol_5", "identity_list_self",
                                        "tuple3", "set_of_tuples"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        const dcase *c = get_case(names[i]);
        pkl_doc *doc = pkl_load(c->data, c->len, NULL, NULL);
        assert_non_null(doc);
        size_t full = 0;
        char *t = pkl_canon(doc, NULL, SIZE_MAX, &full, NULL);
        assert_non_null(t);
        assert_int_equal(full, strlen(t));
        free(t);
        size_t n = 0;
        t = pkl_canon(doc, NULL, full, &n, NULL);
        if (!t)
            fail_msg("%s: pkl_canon with max_output = its length %zu failed", names[i], full);
        assert_int_equal(n, full);
        free(t);
        pkl_err err = {PKL_OK, NULL, 0};
        t = pkl_canon(doc, NULL, full - 1, &n, &err);
        if (t)
            fail_msg("%s: pkl_canon with max_output %zu < %zu succeeded", names[i], full - 1,
                     full);
        assert_int_equal(err.code, PKL_ERR_RESOURCE_LIMIT);
        pkl_doc_free(doc);

        /* pkl_canon_load takes the bound from the limits */
        pkl_limits lim = pkl_limits_default();
        lim.max_output = full;
        pkl_load_opts o;
        memset(&o, 0, sizeof o);
        o.limits = &lim;
        pkl_code code;
        t = canon_of(c->data, c->len, &o, &code);
        assert_non_null(t);
        assert_int_equal(code, PKL_OK);
        assert_string_equal(canon_body(t), c->expect);
        free(t);
        lim.max_output = full - 1;
        t = canon_of(c->data, c->len, &o, &code);
        assert_non_null(t);
        assert_int_equal(code, PKL_ERR_RESOURCE_LIMIT);
        assert_string_equal(t, "brine-canonical 1 raw\nerror resource-limit\n");
        free(t);
    }
}

/* ------------------------------------------------------------------------ */
/* Claimed lengths beyond the input are never allocated */

#define CLAIM(what, lit) {what, lit, sizeof(lit) - 1}

static void test_limits_claimed_length_not_allocated(void **state) {
    (void)state;
    static const struct {
        const char *what;
        const char *data;
        size_t len;
    } claims[] = {
        CLAIM("BINBYTES 4 GiB in 10 bytes", "B\xff\xff\xff\xff" "12345"),
        CLAIM("BINBYTES8 2^40", "\x80\x04\x8e\x00\x00\x00\x00\x00\x01\x00\x00xy"),
        CLAIM("BYTEARRAY8 2^40", "\x80\x05\x96\x00\x00\x00\x00\x00\x01\x00\x00xy"),
        CLAIM("BINUNICODE 4 GiB", "X\xff\xff\xff\xff" "abcde"),
        CLAIM("BINUNICODE8 2^40", "\x80\x04\x8d\x00\x00\x00\x00\x00\x01\x00\x00xy"),
        CLAIM("BINSTRING 2 GiB", "T\xff\xff\xff\x7f" "abcde"),
        CLAIM("LONG4 2 GiB", "\x8b\xff\xff\xff\x7f" "abcde"),
        CLAIM("FRAME 2^40", "\x80\x04\x95\x00\x00\x00\x00\x00\x01\x00\x00N."),
    };
    for (size_t i = 0; i < sizeof claims / sizeof claims[0]; i++) {
        peak_alc pa;
        peak_alc_init(&pa);
        pkl_load_opts o;
        memset(&o, 0, sizeof o);
        o.alc = &pa.alc;
        pkl_err err = {PKL_OK, NULL, 0};
        pkl_doc *doc = pkl_load(claims[i].data, claims[i].len, &o, &err);
        if (doc) {
            pkl_doc_free(doc);
            fail_msg("%s: loaded", claims[i].what);
        }
        /* CPython reports these as truncated data (or MemoryError first,
           for the opcodes it allocates eagerly); libpkl never allocates the
           claim, so it is always truncation at the end of the input */
        if (err.code != PKL_ERR_TRUNCATED)
            fail_msg("%s: %s (%s), expected truncated", claims[i].what, pkl_code_name(err.code),
                     err.msg ? err.msg : "");
        assert_int_equal(err.pos, claims[i].len);
        if (pa.peak > 64 * KiB || pa.largest > 64 * KiB)
            fail_msg("%s: allocated %zu bytes at peak (largest block %zu)", claims[i].what,
                     pa.peak, pa.largest);
        assert_int_equal(pa.live, 0);
    }
}

/* ------------------------------------------------------------------------ */
/* A million levels */

#define DEEP 1000000

static size_t list_depth(const pkl_val *v) {
    size_t d = 0;
    while (v && pkl_val_kind(v) == PKL_LIST) {
        d++;
        v = pkl_val_len(v) ? pkl_val_item(v, 0) : NULL;
    }
    return d;
}

static void check_deep_canon_fails_cleanly(pkl_doc *doc) {
    peak_alc pa;
    peak_alc_init(&pa);
    pkl_err err = {PKL_OK, NULL, 0};
    char *t = pkl_canon(doc, &pa.alc, 1 * MiB, NULL, &err);
    assert_null(t); /* the indentation alone is ~10^12 bytes */
    assert_int_equal(err.code, PKL_ERR_RESOURCE_LIMIT);
    assert_int_equal(pa.live, 0);
}

static void test_limits_deep_list_by_append(void **state) {
    (void)state;
    bytes b = {0};
    putn(&b, ']', DEEP);
    putn(&b, 'a', DEEP - 1);
    puts_(&b, ".");
    pkl_err err = {PKL_OK, NULL, 0};
    pkl_doc *doc = pkl_load(b.p, b.len, NULL, &err);
    free(b.p);
    if (!doc)
        fail_msg("%s: %s", pkl_code_name(err.code), err.msg);
    assert_int_equal(list_depth(pkl_doc_root(doc)), DEEP);
    check_deep_canon_fails_cleanly(doc);
    pkl_doc_free(doc);
}

static void test_limits_deep_list_by_marks(void **state) {
    (void)state;
    bytes b = {0};
    putn(&b, '(', DEEP);
    putn(&b, 'l', DEEP);
    puts_(&b, ".");
    pkl_err err = {PKL_OK, NULL, 0};
    pkl_doc *doc = pkl_load(b.p, b.len, NULL, &err);
    if (!doc) {
        free(b.p);
        fail_msg("%s: %s", pkl_code_name(err.code), err.msg);
    }
    assert_int_equal(list_depth(pkl_doc_root(doc)), DEEP);
    pkl_doc_free(doc);
    /* one more level than max_marks allows */
    pkl_limits lim = pkl_limits_default();
    lim.max_marks = DEEP - 1;
    assert_limited(b.p, b.len, &lim);
    free(b.p);
}

static void test_limits_deep_tuple_dict_key(void **state) {
    (void)state;
    /* {t: 1} then the equal t' set to 2: hash and compare 10^6 levels */
    bytes b = {0};
    puts_(&b, "}");
    for (int k = 1; k <= 2; k++) {
        puts_(&b, ")");
        putn(&b, '\x85', DEEP);
        uint8_t v[2] = {'K', (uint8_t)k};
        put(&b, v, 2);
        puts_(&b, "s");
    }
    puts_(&b, ".");
    pkl_err err = {PKL_OK, NULL, 0};
    pkl_doc *doc = pkl_load(b.p, b.len, NULL, &err);
    free(b.p);
    if (!doc)
        fail_msg("%s: %s", pkl_code_name(err.code), err.msg);
    const pkl_val *d = pkl_doc_root(doc);
    assert_int_equal(pkl_val_kind(d), PKL_DICT);
    assert_int_equal(pkl_val_len(d), 1);
    assert_int_equal(pkl_val_int(pkl_val_value(d, 0)), 2);
    size_t depth = 0;
    for (const pkl_val *t = pkl_val_item(d, 0); pkl_val_kind(t) == PKL_TUPLE && pkl_val_len(t);
         t = pkl_val_item(t, 0))
        depth++;
    assert_int_equal(depth, DEEP);
    check_deep_canon_fails_cleanly(doc);
    pkl_doc_free(doc);

    /* the deep tuple holding a list at the bottom is unhashable */
    b = (bytes){0};
    puts_(&b, "}]");
    putn(&b, '\x85', DEEP);
    puts_(&b, "K\x01s.");
    err.code = PKL_OK;
    doc = pkl_load(b.p, b.len, NULL, &err);
    free(b.p);
    if (doc) {
        pkl_doc_free(doc);
        fail_msg("a deep tuple holding a list was used as a key");
    }
    assert_int_equal(err.code, PKL_ERR_TYPE_ERROR);
}

static void test_limits_deep_tuples_in_a_set(void **state) {
    (void)state;
    /* two different deep tuples in a frozenset: the canonical order needs
       their digests, bounded to 8 levels */
    bytes b = {0};
    puts_(&b, "(");
    for (int k = 1; k <= 2; k++) {
        uint8_t v[2] = {'K', (uint8_t)k};
        put(&b, v, 2);
        putn(&b, '\x85', DEEP / 2);
    }
    puts_(&b, "\x91.");
    pkl_doc *doc = pkl_load(b.p, b.len, NULL, NULL);
    free(b.p);
    assert_non_null(doc);
    assert_int_equal(pkl_val_len(pkl_doc_root(doc)), 2);
    check_deep_canon_fails_cleanly(doc);
    pkl_doc_free(doc);
}

/* ------------------------------------------------------------------------ */
/* The event trace */

typedef struct rec {
    pkl_event_kind kind;
    size_t pos;
    char module[32], name[32];
    pkl_kind target_kind;
    char target_name[32]; /* the target's name when it is a global */
} rec;

typedef struct trace {
    rec r[32];
    size_t n;
} trace;

static void copy_text(char *dst, size_t cap, const char *s, size_t n) {
    if (!s)
        n = 0;
    if (n >= cap)
        n = cap - 1;
    if (n)
        memcpy(dst, s, n);
    dst[n] = '\0';
}

static void on_event(void *ctx, const pkl_event *ev) {
    trace *t = ctx;
    if (t->n == sizeof t->r / sizeof t->r[0])
        return;
    rec *r = &t->r[t->n++];
    memset(r, 0, sizeof *r);
    r->kind = ev->kind;
    r->pos = ev->pos;
    if (ev->kind == PKL_EV_GLOBAL) {
        copy_text(r->module, sizeof r->module, ev->module, ev->mlen);
        copy_text(r->name, sizeof r->name, ev->name, ev->nlen);
    }
    r->target_kind = PKL_KIND_COUNT;
    if (ev->kind != PKL_EV_GLOBAL && ev->kind != PKL_EV_PERSID && ev->target) {
        r->target_kind = pkl_val_kind(ev->target);
        if (r->target_kind == PKL_GLOBAL) {
            size_t n = 0;
            const char *s = pkl_val_name(ev->target, &n);
            copy_text(r->target_name, sizeof r->target_name, s, n);
        }
    }
}

typedef struct want {
    pkl_event_kind kind;
    size_t pos;
    const char *module, *name; /* GLOBAL */
    pkl_kind target_kind;      /* CALL/NEW/MUTATE */
    const char *target_name;   /* when the target is a global */
} want;

static const char *const ev_names[] = {"global", "call", "new", "persid", "mutate"};

/* The first difference between the recorded and the wanted events, or
   NULL when they agree. */
static const char *trace_diff(const trace *t, const want *w, size_t nw, size_t *at) {
    if (t->n != nw) {
        *at = t->n < nw ? t->n : nw;
        return "number of events";
    }
    for (size_t i = 0; i < nw; i++) {
        const rec *r = &t->r[i];
        *at = i;
        if (r->kind != w[i].kind || r->pos != w[i].pos)
            return "kind or position";
        if (w[i].module && (strcmp(r->module, w[i].module) || strcmp(r->name, w[i].name)))
            return "module or name";
        if ((w[i].kind == PKL_EV_CALL || w[i].kind == PKL_EV_NEW || w[i].kind == PKL_EV_MUTATE) &&
            (r->target_kind != w[i].target_kind ||
             (w[i].target_name && strcmp(r->target_name, w[i].target_name))))
            return "target";
    }
    return NULL;
}

static void check_trace(const trace *t, const want *w, size_t nw) {
    size_t at = 0;
    const char *what = trace_diff(t, w, nw, &at);
    if (!what)
        return;
    for (size_t i = 0; i < t->n; i++)
        print_error("got    %zu: %s at %zu '%s' '%s' target %s '%s'\n", i, ev_names[t->r[i].kind],
                    t->r[i].pos, t->r[i].module, t->r[i].name,
                    t->r[i].target_kind < PKL_KIND_COUNT ? pkl_kind_name(t->r[i].target_kind) : "-",
                    t->r[i].target_name);
    for (size_t i = 0; i < nw; i++)
        print_error("wanted %zu: %s at %zu '%s' '%s' target %s '%s'\n", i, ev_names[w[i].kind],
                    w[i].pos, w[i].module ? w[i].module : "", w[i].name ? w[i].name : "",
                    w[i].target_kind < PKL_KIND_COUNT ? pkl_kind_name(w[i].target_kind) : "-",
                    w[i].target_name ? w[i].target_name : "");
    fail_msg("event trace differs at event %zu (%s)", at, what);
}

/* Offsets are computed from the pieces the pickle is made of. */
static void test_limits_events_in_order_before_an_error(void **state) {
    (void)state;
    bytes b = {0};
    puts_(&b, "\x80\x02");
    size_t g1 = b.len;
    puts_(&b, "cmod\nf\n)");
    size_t call = b.len;
    puts_(&b, "R");
    puts_(&b, "K\x01");
    size_t app = b.len;
    puts_(&b, "a");
    size_t g2 = b.len;
    puts_(&b, "cos\nsystem\n)");
    size_t nw = b.len;
    puts_(&b, "\x81");
    size_t pid = b.len;
    puts_(&b, "Pid\n");
    size_t bad = b.len;
    puts_(&b, "\xff.");
    trace t = {0};
    pkl_load_opts o;
    memset(&o, 0, sizeof o);
    o.on_event = on_event;
    o.ctx = &t;
    pkl_err err = {PKL_OK, NULL, 0};
    pkl_doc *doc = pkl_load(b.p, b.len, &o, &err);
    free(b.p);
    assert_null(doc);
    assert_int_equal(err.code, PKL_ERR_BAD_OPCODE);
    assert_int_equal(err.pos, bad);
    const want w[] = {
        {PKL_EV_GLOBAL, g1, "mod", "f", PKL_KIND_COUNT, NULL},
        {PKL_EV_CALL, call, NULL, NULL, PKL_GLOBAL, "f"},
        {PKL_EV_MUTATE, app, NULL, NULL, PKL_CALL, NULL},
        {PKL_EV_GLOBAL, g2, "os", "system", PKL_KIND_COUNT, NULL},
        {PKL_EV_NEW, nw, NULL, NULL, PKL_GLOBAL, "system"},
        {PKL_EV_PERSID, pid, NULL, NULL, PKL_KIND_COUNT, NULL},
    };
    check_trace(&t, w, sizeof w / sizeof w[0]);
}

static void test_limits_events_inst_obj_stack_global(void **state) {
    (void)state;
    bytes b = {0};
    puts_(&b, "\x80\x04(");
    size_t i1 = b.len; /* INST without args: GLOBAL then NEW */
    puts_(&b, "(imod\nA\n");
    size_t i2 = b.len; /* INST with args: GLOBAL then CALL */
    puts_(&b, "(K\x01imod\nB\n");
    size_t i2op = i2 + 3;
    puts_(&b, "\x8c\x01m\x8c\x01" "C");
    size_t sg = b.len; /* STACK_GLOBAL */
    puts_(&b, "\x93");
    puts_(&b, "N");
    size_t bld = b.len; /* BUILD on the global */
    puts_(&b, "b");
    puts_(&b, "(\x8c\x01m\x8c\x01" "D");
    size_t sg2 = b.len;
    puts_(&b, "\x93");
    size_t ob = b.len; /* OBJ without args: NEW */
    puts_(&b, "ot.");
    trace t = {0};
    pkl_load_opts o;
    memset(&o, 0, sizeof o);
    o.on_event = on_event;
    o.ctx = &t;
    pkl_err err = {PKL_OK, NULL, 0};
    pkl_doc *doc = pkl_load(b.p, b.len, &o, &err);
    free(b.p);
    if (!doc)
        fail_msg("%s at %zu: %s", pkl_code_name(err.code), err.pos, err.msg);
    pkl_doc_free(doc);
    const want w[] = {
        {PKL_EV_GLOBAL, i1 + 1, "mod", "A", PKL_KIND_COUNT, NULL},
        {PKL_EV_NEW, i1 + 1, NULL, NULL, PKL_GLOBAL, "A"},
        {PKL_EV_GLOBAL, i2op, "mod", "B", PKL_KIND_COUNT, NULL},
        {PKL_EV_CALL, i2op, NULL, NULL, PKL_GLOBAL, "B"},
        {PKL_EV_GLOBAL, sg, "m", "C", PKL_KIND_COUNT, NULL},
        {PKL_EV_MUTATE, bld, NULL, NULL, PKL_GLOBAL, "C"},
        {PKL_EV_GLOBAL, sg2, "m", "D", PKL_KIND_COUNT, NULL},
        {PKL_EV_NEW, ob, NULL, NULL, PKL_GLOBAL, "D"},
    };
    check_trace(&t, w, sizeof w / sizeof w[0]);
}

/* ------------------------------------------------------------------------ */


int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_limits_defaults_are_documented_values),
        cmocka_unit_test(test_limits_max_input),
        cmocka_unit_test(test_limits_max_alloc),
        cmocka_unit_test(test_limits_max_nodes),
        cmocka_unit_test(test_limits_max_stack),
        cmocka_unit_test(test_limits_max_marks),
        cmocka_unit_test(test_limits_max_memo),
        cmocka_unit_test(test_limits_max_digits),
        cmocka_unit_test(test_limits_max_output),
        cmocka_unit_test(test_limits_claimed_length_not_allocated),
        cmocka_unit_test(test_limits_deep_list_by_append),
        cmocka_unit_test(test_limits_deep_list_by_marks),
        cmocka_unit_test(test_limits_deep_tuple_dict_key),
        cmocka_unit_test(test_limits_deep_tuples_in_a_set),
        cmocka_unit_test(test_limits_events_in_order_before_an_error),
        cmocka_unit_test(test_limits_events_inst_obj_stack_global),
    };
    return cmocka_run_group_tests(tests, cases_group_setup, cases_group_teardown);
}
