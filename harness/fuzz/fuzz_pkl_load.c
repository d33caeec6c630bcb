/* fuzz_pkl_load: libpkl alone, under explicit small limits, with invariants
 * that turn wrong answers (not only crashes) into findings.
 *
 * One input is loaded several ways; each way must agree with the others:
 *
 *   R   pkl_load + pkl_canon under FUZZ limits, through a counting allocator
 *       (peak bytes <= max_alloc, realloc sizes exact, nothing left behind);
 *   C   pkl_canon_load, libc allocator: text identical to R (the one-call API
 *       and the two-call API agree; loading twice is deterministic);
 *   A   brine_pkl_answer_load (the safety trace): same text as R, trace
 *       numbered consistently (every event names an earlier event);
 *   HI  RAISED limits: same answer as R unless R said resource-limit;
 *   LO  TINY limits: R's answer or resource-limit, never something else;
 *   F   allocation k of R's load (k from the input's hash) fails, once or
 *       from then on: resource-limit, nothing leaked; the same for pkl_canon;
 *   D   pkl_dis: agrees with R where both must (section "dis" below).
 *
 * R's text itself is checked against canonical text v1 (header, error line
 * with a taxonomy class, indentation, labels and refs).
 *
 * `internal` from libpkl is always a finding: it means libpkl knows it has
 * a bug.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_target.h"
#include "pkl.h"
#include "pkl_answer.h"

/*------------------------------------------------------------------------------
 * Limits: small enough that no input costs the fuzzer more than ~100 MB
 *----------------------------------------------------------------------------*/

#define KiB ((size_t)1 << 10)
#define MiB ((size_t)1 << 20)

static pkl_limits limits_fuzz(void) {
    pkl_limits l = pkl_limits_default();
    l.max_input = 4 * MiB;
    l.max_alloc = 64 * MiB;
    l.max_nodes = 1 * MiB;
    l.max_stack = 1 * MiB;
    l.max_marks = 64 * KiB;
    l.max_memo = 1 * MiB;
    l.max_digits = 4300; /* semantic (CPython's int_max_str_digits): never raised */
    l.max_output = 16 * MiB;
    return l;
}

static pkl_limits limits_raised(void) {
    pkl_limits l = limits_fuzz();
    l.max_input = 16 * MiB;
    l.max_alloc = 256 * MiB;
    l.max_nodes = 4 * MiB;
    l.max_stack = 4 * MiB;
    l.max_marks = 1 * MiB;
    l.max_memo = 4 * MiB;
    l.max_output = 64 * MiB;
    return l;
}

/* Small enough that fuzz inputs of a few hundred bytes reach every bound. */
static pkl_limits limits_tiny(void) {
    pkl_limits l = limits_fuzz();
    l.max_alloc = 48 * KiB; /* a document needs ~29 KiB to exist */
    l.max_nodes = 48;
    l.max_stack = 12;
    l.max_marks = 3;
    l.max_memo = 6;
    l.max_digits = 20;
    l.max_output = 1 * KiB;
    return l;
}

/*------------------------------------------------------------------------------
 * A counting allocator: live/peak bytes, exact sizes, failure injection
 *----------------------------------------------------------------------------*/

#define HDR 16 /* keeps max_align_t alignment; holds the block's size */

typedef struct counting {
    pkl_alc alc;
    size_t calls;     /* malloc + realloc calls */
    size_t fail_at;   /* 1-based call that fails; 0 = none */
    bool fail_after;  /* also fail every later call */
    bool failed;      /* a failure was injected */
    size_t live, peak, blocks;
    const char *bad;  /* first misuse seen (wrong old_size), NULL if none */
} counting;

static bool cnt_should_fail(counting *c) {
    c->calls++;
    if (c->fail_at && (c->calls == c->fail_at || (c->fail_after && c->calls > c->fail_at))) {
        c->failed = true;
        return true;
    }
    return false;
}

static void cnt_charge(counting *c, size_t add, size_t sub) {
    c->live = c->live - sub + add;
    if (c->live > c->peak)
        c->peak = c->live;
}

static void *cnt_malloc(void *ctx, size_t size) {
    counting *c = ctx;
    if (cnt_should_fail(c) || size > SIZE_MAX - HDR)
        return NULL;
    unsigned char *p = malloc(HDR + size);
    if (!p)
        return NULL;
    memcpy(p, &size, sizeof size);
    cnt_charge(c, size, 0);
    c->blocks++;
    return p + HDR;
}

static void *cnt_realloc(void *ctx, void *ptr, size_t old_size, size_t size) {
    counting *c = ctx;
    if (!ptr)
        return cnt_malloc(ctx, size);
    unsigned char *h = (unsigned char *)ptr - HDR;
    size_t had;
    memcpy(&had, h, sizeof had);
    if (had != old_size && !c->bad)
        c->bad = "realloc was told the wrong old size";
    if (cnt_should_fail(c) || size > SIZE_MAX - HDR)
        return NULL;
    unsigned char *p = realloc(h, HDR + size);
    if (!p)
        return NULL;
    memcpy(p, &size, sizeof size);
    cnt_charge(c, size, had);
    return p + HDR;
}

static void cnt_free(void *ctx, void *ptr) {
    counting *c = ctx;
    if (!ptr)
        return;
    unsigned char *h = (unsigned char *)ptr - HDR;
    size_t had;
    memcpy(&had, h, sizeof had);
    cnt_charge(c, 0, had);
    c->blocks--;
    free(h);
}

static void cnt_init(counting *c, size_t fail_at, bool fail_after) {
    memset(c, 0, sizeof *c);
    c->alc.malloc = cnt_malloc;
    c->alc.realloc = cnt_realloc;
    c->alc.free = cnt_free;
    c->alc.ctx = c;
    c->fail_at = fail_at;
    c->fail_after = fail_after;
}

static void cnt_expect_clean(const counting *c, const char *what) {
    if (c->bad)
        brine_fuzz_fail("%s: %s", what, c->bad);
    if (c->blocks || c->live)
        brine_fuzz_fail("%s: %zu blocks (%zu bytes) still allocated afterwards", what, c->blocks,
                        c->live);
}

/*------------------------------------------------------------------------------
 * Canonical text v1 well-formedness (docs/canonical-form.md)
 *----------------------------------------------------------------------------*/

static const char HEADER[] = "brine-canonical 1 raw\n";
#define HEADER_LEN (sizeof HEADER - 1)
#define MAX_SPACE_DEPTH 32

static bool is_error_text(const char *t, size_t n) {
    return n > HEADER_LEN + 6 && memcmp(t + HEADER_LEN, "error ", 6) == 0;
}

static bool starts(const char *s, size_t n, const char *w) {
    size_t k = strlen(w);
    return n >= k && memcmp(s, w, k) == 0;
}

/* Node kinds that never have children (a line after them is not deeper). */
static bool is_leaf_kind(const char *s, size_t n) {
    static const char *const leaves[] = {"none", "bool", "int", "float", "str",
                                         "bytes", "bytearray", "buffer"};
    for (size_t i = 0; i < sizeof leaves / sizeof *leaves; i++) {
        size_t k = strlen(leaves[i]);
        if (n >= k && memcmp(s, leaves[i], k) == 0 && (n == k || s[k] == ' '))
            return true;
    }
    return false;
}

static bool is_kind(const char *s, size_t n) {
    static const char *const kinds[] = {"none", "bool", "int", "float", "str", "bytes",
                                        "bytearray", "list", "tuple", "dict", "set",
                                        "frozenset", "global", "call", "new", "persid",
                                        "memoryview", "buffer"};
    for (size_t i = 0; i < sizeof kinds / sizeof *kinds; i++) {
        size_t k = strlen(kinds[i]);
        if (n >= k && memcmp(s, kinds[i], k) == 0 && (n == k || s[k] == ' '))
            return true;
    }
    return false;
}

static size_t parse_dec(const char *s, size_t n, size_t *used) {
    size_t v = 0, i = 0;
    while (i < n && s[i] >= '0' && s[i] <= '9' && v < SIZE_MAX / 16)
        v = v * 10 + (size_t)(s[i++] - '0');
    *used = i;
    return v;
}

/* Checks the text a load produced for `code` (PKL_OK: a value). */
static void check_text(const char *t, size_t n, pkl_code code, const char *who) {
    if (!t)
        brine_fuzz_fail("%s: no text at all", who);
    if (n < HEADER_LEN || memcmp(t, HEADER, HEADER_LEN) != 0)
        brine_fuzz_fail("%s: the text does not start with the header", who);
    if (t[n] != '\0' || strlen(t) != n)
        brine_fuzz_fail("%s: the text length is wrong or it holds a NUL", who);
    if (code != PKL_OK) {
        if (code >= PKL_CODE_COUNT)
            brine_fuzz_fail("%s: error code %d is outside the taxonomy", who, (int)code);
        char want[64];
        snprintf(want, sizeof want, "%serror %s\n", HEADER, pkl_code_name(code));
        if (strcmp(t, want) != 0)
            brine_fuzz_fail("%s: a failed load (%s) printed another text", who, pkl_code_name(code));
        return;
    }
    if (is_error_text(t, n))
        brine_fuzz_fail("%s: the load succeeded but the text is an error document", who);
    if (n == HEADER_LEN || t[n - 1] != '\n')
        brine_fuzz_fail("%s: the body is empty or does not end with a newline", who);
    size_t labels = 0, prev_depth = 0, lineno = 0;
    bool prev_leaf = false;
    for (size_t i = HEADER_LEN; i < n;) {
        const char *nl = memchr(t + i, '\n', n - i);
        const char *s = t + i;
        size_t len = (size_t)(nl - s);
        i += len + 1;
        lineno++;
        for (size_t k = 0; k < len; k++)
            if ((unsigned char)s[k] < 0x20 || (unsigned char)s[k] > 0x7e)
                brine_fuzz_fail("%s: line %zu holds a byte that is not printable ASCII", who, lineno);
        size_t depth = 0;
        if (len && s[0] == '@') {
            size_t used;
            depth = parse_dec(s + 1, len - 1, &used);
            if (!used || 1 + used >= len || s[1 + used] != ' ' || depth <= MAX_SPACE_DEPTH)
                brine_fuzz_fail("%s: line %zu: bad @depth prefix", who, lineno);
            s += 2 + used;
            len -= 2 + used;
        } else {
            while (len >= 2 && s[0] == ' ' && s[1] == ' ')
                depth++, s += 2, len -= 2;
            if (depth > MAX_SPACE_DEPTH)
                brine_fuzz_fail("%s: line %zu is indented past %d levels with spaces", who, lineno,
                                MAX_SPACE_DEPTH);
        }
        if (!len || s[0] == ' ')
            brine_fuzz_fail("%s: line %zu: odd indentation or empty line", who, lineno);
        if (lineno == 1 ? depth != 0 : (depth == 0 || depth > prev_depth + 1))
            brine_fuzz_fail("%s: line %zu: depth %zu after depth %zu", who, lineno, depth, prev_depth);
        if (lineno > 1 && prev_leaf && depth > prev_depth)
            brine_fuzz_fail("%s: line %zu: a child under a scalar or a ref", who, lineno);
        if (starts(s, len, "ref #")) {
            size_t used, lab = parse_dec(s + 5, len - 5, &used);
            if (used != len - 5 || lab == 0 || lab > labels)
                brine_fuzz_fail("%s: line %zu: ref to a label not yet defined (%zu of %zu)", who,
                                lineno, lab, labels);
            prev_leaf = true;
        } else if (s[0] == '.') {
            prev_leaf = false;
        } else {
            if (!is_kind(s, len))
                brine_fuzz_fail("%s: line %zu: unknown node kind", who, lineno);
            /* a label is the last token " #N"; a quoted payload ends with '"' */
            size_t k = len;
            while (k && s[k - 1] >= '0' && s[k - 1] <= '9')
                k--;
            if (k < len && k >= 2 && s[k - 1] == '#' && s[k - 2] == ' ') {
                size_t used, lab = parse_dec(s + k, len - k, &used);
                if (lab != labels + 1)
                    brine_fuzz_fail("%s: line %zu: label #%zu where #%zu was next", who, lineno, lab,
                                    labels + 1);
                labels = lab;
            }
            prev_leaf = is_leaf_kind(s, len);
        }
        prev_depth = depth;
    }
}

/*------------------------------------------------------------------------------
 * Safety trace: every event that names a target names an earlier event
 *----------------------------------------------------------------------------*/

static void check_trace(const char *tr, size_t n) {
    size_t expect = 1;
    for (size_t i = 0; i < n;) {
        const char *nl = memchr(tr + i, '\n', n - i);
        if (!nl)
            brine_fuzz_fail("trace: last line has no newline");
        const char *s = tr + i;
        size_t len = (size_t)(nl - s), used;
        i += len + 1;
        size_t num = parse_dec(s, len, &used);
        if (num != expect || used >= len || s[used] != ' ')
            brine_fuzz_fail("trace: event %zu is numbered %zu", expect, num);
        expect++;
        const char *rest = s + used + 1;
        size_t rlen = len - used - 1;
        if (starts(rest, rlen, "global ") || (rlen == 6 && memcmp(rest, "persid", 6) == 0))
            continue;
        const char *sp = memchr(rest, ' ', rlen);
        if (!sp)
            brine_fuzz_fail("trace: event %zu has no target", num);
        size_t tlen = rlen - (size_t)(sp + 1 - rest);
        size_t target = parse_dec(sp + 1, tlen, &used);
        if (used != tlen || target == 0 || target >= num)
            brine_fuzz_fail("trace: event %zu names target %zu, not an earlier event", num, target);
    }
}

/*------------------------------------------------------------------------------
 * The document through the public accessors (include/pkl.h)
 *----------------------------------------------------------------------------*/

typedef struct walk {
    const pkl_val **seen; /* open addressing, power-of-two size */
    size_t cap, n;
    const pkl_val **todo;
    size_t ntodo, todo_cap;
} walk;

static bool is_stub(pkl_kind k) {
    return k == PKL_GLOBAL || k == PKL_CALL || k == PKL_NEW || k == PKL_PERSID;
}

/* Queues v unless seen; NULL where a node must be is a finding. */
static void visit(walk *w, const pkl_val *v, const char *what) {
    if (!v)
        brine_fuzz_fail("walk: %s is NULL", what);
    size_t mask = w->cap - 1, i = (size_t)(((uintptr_t)v >> 4) * UINT64_C(0x9e3779b97f4a7c15)) & mask;
    while (w->seen[i]) {
        if (w->seen[i] == v)
            return;
        i = (i + 1) & mask;
    }
    if (w->n + 1 > w->cap / 2)
        brine_fuzz_fail("walk: more nodes reachable than pkl_doc_node_count says");
    w->seen[i] = v;
    w->n++;
    if (w->ntodo == w->todo_cap) {
        w->todo_cap = w->todo_cap ? w->todo_cap * 2 : 64;
        w->todo = realloc(w->todo, w->todo_cap * sizeof *w->todo);
        if (!w->todo)
            brine_fuzz_fail("out of memory in the harness");
    }
    w->todo[w->ntodo++] = v;
}

/* Every node reachable from the root, iteratively: kinds in range, payloads
   present, and the shapes docs/libpkl.md promises (a `new` is made from a
   global, a call from a stub, a memoryview views a bytearray or a buffer,
   call arguments are a tuple, SETITEM records carry a value). */
static void check_walk(const pkl_doc *doc) {
    size_t count = pkl_doc_node_count(doc);
    int proto = pkl_doc_protocol(doc);
    if (proto < 0 || proto > PKL_HIGHEST_PROTOCOL)
        brine_fuzz_fail("walk: protocol %d", proto);
    walk w = {NULL, 0, 0, NULL, 0, 0};
    w.cap = 64;
    while (w.cap / 2 < count + 1)
        w.cap *= 2;
    w.seen = calloc(w.cap, sizeof *w.seen);
    if (!w.seen)
        brine_fuzz_fail("out of memory in the harness");
    visit(&w, pkl_doc_root(doc), "the root");
    while (w.ntodo) {
        const pkl_val *v = w.todo[--w.ntodo];
        pkl_kind k = pkl_val_kind(v);
        if (k >= PKL_KIND_COUNT)
            brine_fuzz_fail("walk: kind %d out of range", (int)k);
        size_t n = 0, blen = 0;
        bool neg = false;
        switch (k) {
        case PKL_INT:
            if (pkl_val_int_is_big(v)) {
                const uint8_t *mag = pkl_val_bigint(v, &blen, &neg);
                /* big means outside int64: at least 8 bytes, no leading zero */
                if (!mag || blen < 8 || mag[0] == 0 ||
                    (blen == 8 && (mag[0] < 0x80 || (neg && mag[0] == 0x80 && !memcmp(mag + 1, "\0\0\0\0\0\0\0", 7)))))
                    brine_fuzz_fail("walk: a big int that fits int64 or has a leading zero");
            } else {
                (void)pkl_val_int(v);
            }
            break;
        case PKL_BOOL:
            (void)pkl_val_bool(v);
            break;
        case PKL_FLOAT:
            (void)pkl_val_float_bits(v);
            break;
        case PKL_STR:
        case PKL_BYTES:
        case PKL_BYTEARRAY:
            if (!pkl_val_data(v, &blen) && blen)
                brine_fuzz_fail("walk: %s of %zu bytes without data", pkl_kind_name(k), blen);
            break;
        case PKL_LIST:
        case PKL_TUPLE:
        case PKL_SET:
        case PKL_FROZENSET:
            n = pkl_val_len(v);
            for (size_t i = 0; i < n; i++)
                visit(&w, pkl_val_item(v, i), "an element");
            break;
        case PKL_DICT:
            n = pkl_val_len(v);
            for (size_t i = 0; i < n; i++) {
                visit(&w, pkl_val_item(v, i), "a key");
                visit(&w, pkl_val_value(v, i), "a value");
            }
            break;
        case PKL_GLOBAL:
            if (!pkl_val_data(v, &blen) || !pkl_val_name(v, &blen))
                brine_fuzz_fail("walk: a global without module or name");
            break;
        case PKL_CALL:
        case PKL_NEW: {
            const pkl_val *t = pkl_val_target(v), *args = pkl_val_args(v), *kw = pkl_val_kwargs(v);
            visit(&w, t, "a callable");
            visit(&w, args, "an argument tuple");
            if (k == PKL_NEW ? pkl_val_kind(t) != PKL_GLOBAL : !is_stub(pkl_val_kind(t)))
                brine_fuzz_fail("walk: a %s made from a %s", pkl_kind_name(k), pkl_kind_name(pkl_val_kind(t)));
            if (pkl_val_kind(args) != PKL_TUPLE)
                brine_fuzz_fail("walk: arguments are a %s", pkl_kind_name(pkl_val_kind(args)));
            if (kw) {
                if (k != PKL_NEW || pkl_val_kind(kw) != PKL_DICT)
                    brine_fuzz_fail("walk: kwargs on a %s, or not a dict", pkl_kind_name(k));
                visit(&w, kw, "kwargs");
            }
            break;
        }
        case PKL_PERSID:
            visit(&w, pkl_val_target(v), "a persistent id");
            break;
        case PKL_MEMORYVIEW: {
            const pkl_val *t = pkl_val_target(v);
            visit(&w, t, "a viewed object");
            if (pkl_val_kind(t) != PKL_BYTEARRAY && pkl_val_kind(t) != PKL_BUFFER)
                brine_fuzz_fail("walk: a memoryview of a %s", pkl_kind_name(pkl_val_kind(t)));
            break;
        }
        case PKL_BUFFER:
            (void)pkl_val_buffer_index(v);
            break;
        default:
            break;
        }
        size_t nm = is_stub(k) ? pkl_val_mut_count(v) : 0;
        for (size_t i = 0; i < nm; i++) {
            const pkl_val *a = NULL, *b = NULL;
            pkl_mutkind mk = pkl_val_mut(v, i, &a, &b);
            visit(&w, a, "a mutation's operand");
            if ((mk == PKL_MUT_SETITEM) != (b != NULL))
                brine_fuzz_fail("walk: mutation %d with%s a second operand", (int)mk, b ? "" : "out");
            if (b)
                visit(&w, b, "a setitem value");
        }
    }
    if (w.n > count)
        brine_fuzz_fail("walk: %zu nodes reachable, the document has %zu", w.n, count);
    free(w.seen);
    free(w.todo);
}

/*------------------------------------------------------------------------------
 * One load, recorded
 *----------------------------------------------------------------------------*/

typedef struct answer {
    char *text; /* libc-owned copy */
    size_t len;
    pkl_err err;
    size_t allocs_load, allocs_canon; /* allocator calls of pkl_load / pkl_canon */
    size_t peak_load;
    size_t nodes;
} answer;

static char *dup_text(const char *s, size_t n) {
    char *p = malloc(n + 1);
    if (!p)
        brine_fuzz_fail("out of memory in the harness");
    memcpy(p, s, n + 1);
    return p;
}

/* pkl_load then pkl_canon, each through its own counting allocator. */
static answer load_counted(const uint8_t *data, size_t len, const pkl_limits *lim, bool walk_doc,
                           const char *who) {
    answer a;
    memset(&a, 0, sizeof a);
    counting cl, cc;
    cnt_init(&cl, 0, false);
    pkl_load_opts o;
    memset(&o, 0, sizeof o);
    o.alc = &cl.alc;
    o.limits = lim;
    pkl_doc *doc = pkl_load(data, len, &o, &a.err);
    if (doc) {
        if (walk_doc)
            check_walk(doc);
        a.nodes = pkl_doc_node_count(doc);
        if (a.nodes > lim->max_nodes)
            brine_fuzz_fail("%s: %zu nodes, max_nodes is %zu", who, a.nodes, lim->max_nodes);
        a.err = (pkl_err){PKL_OK, NULL, 0};
        cnt_init(&cc, 0, false);
        size_t tl = 0;
        char *t = pkl_canon(doc, &cc.alc, lim->max_output, &tl, &a.err);
        a.allocs_canon = cc.calls;
        if (t) {
            if (tl > lim->max_output)
                brine_fuzz_fail("%s: %zu bytes of text, max_output is %zu", who, tl, lim->max_output);
            a.text = dup_text(t, tl);
            a.len = tl;
            cc.alc.free(cc.alc.ctx, t);
        } else if (a.err.code != PKL_ERR_RESOURCE_LIMIT) {
            brine_fuzz_fail("%s: pkl_canon failed with %s", who, pkl_code_name(a.err.code));
        }
        cnt_expect_clean(&cc, "pkl_canon");
        pkl_doc_free(doc);
    } else {
        if (a.err.code == PKL_OK || a.err.code >= PKL_CODE_COUNT)
            brine_fuzz_fail("%s: pkl_load returned NULL with code %d", who, (int)a.err.code);
        if (a.err.pos > len)
            brine_fuzz_fail("%s: error position %zu past the input (%zu bytes)", who, a.err.pos, len);
        if (!a.err.msg)
            brine_fuzz_fail("%s: error without a message", who);
    }
    a.allocs_load = cl.calls;
    a.peak_load = cl.peak;
    if (cl.peak > lim->max_alloc)
        brine_fuzz_fail("%s: the load held %zu bytes at once, max_alloc is %zu", who, cl.peak,
                        lim->max_alloc);
    cnt_expect_clean(&cl, who);
    if (!a.text) {
        size_t tl = 0;
        char *t = pkl_canon_error(a.err.code, NULL, &tl);
        if (!t)
            brine_fuzz_fail("out of memory in the harness");
        a.text = t;
        a.len = tl;
    }
    if (a.err.code == PKL_ERR_INTERNAL)
        brine_fuzz_fail("%s: libpkl reports an internal error: %s at %zu", who,
                        a.err.msg ? a.err.msg : "", a.err.pos);
    check_text(a.text, a.len, a.err.code, who);
    return a;
}

static void answer_free(answer *a) {
    free(a->text);
    memset(a, 0, sizeof *a);
}

static bool is_rl(const answer *a) { return a->err.code == PKL_ERR_RESOURCE_LIMIT; }

static bool same(const answer *a, const answer *b) {
    return a->len == b->len && memcmp(a->text, b->text, a->len) == 0;
}

static const char *body(const answer *a) { return a->text + HEADER_LEN; }

/*------------------------------------------------------------------------------
 * Allocation-failure injection
 *----------------------------------------------------------------------------*/

static uint64_t fnv1a(const uint8_t *d, size_t n) {
    uint64_t h = UINT64_C(0xcbf29ce484222325);
    for (size_t i = 0; i < n; i++)
        h = (h ^ d[i]) * UINT64_C(0x100000001b3);
    return h;
}

static void inject_load(const uint8_t *data, size_t len, const pkl_limits *lim, size_t k, bool after) {
    counting c;
    cnt_init(&c, k, after);
    pkl_load_opts o;
    memset(&o, 0, sizeof o);
    o.alc = &c.alc;
    o.limits = lim;
    pkl_err e = {PKL_OK, NULL, 0};
    pkl_doc *doc = pkl_load(data, len, &o, &e);
    if (!c.failed)
        brine_fuzz_fail("injection: the load made fewer than %zu allocations the second time", k);
    if (doc || e.code != PKL_ERR_RESOURCE_LIMIT)
        brine_fuzz_fail("injection: allocation %zu failed (%s) but the load %s %s", k,
                        after ? "and all later" : "only", doc ? "succeeded" : "said",
                        doc ? "" : pkl_code_name(e.code));
    cnt_expect_clean(&c, "injection into pkl_load");
}

static void inject_canon(const uint8_t *data, size_t len, const pkl_limits *lim, size_t k, bool after) {
    pkl_load_opts o;
    memset(&o, 0, sizeof o);
    o.limits = lim;
    pkl_doc *doc = pkl_load(data, len, &o, NULL);
    if (!doc)
        brine_fuzz_fail("injection: the document did not load the second time");
    counting c;
    cnt_init(&c, k, after);
    pkl_err e = {PKL_OK, NULL, 0};
    char *t = pkl_canon(doc, &c.alc, lim->max_output, NULL, &e);
    if (!c.failed)
        brine_fuzz_fail("injection: pkl_canon made fewer than %zu allocations the second time", k);
    if (t || e.code != PKL_ERR_RESOURCE_LIMIT)
        brine_fuzz_fail("injection: pkl_canon allocation %zu failed but it %s", k,
                        t ? "returned a text" : pkl_code_name(e.code));
    cnt_expect_clean(&c, "injection into pkl_canon");
    pkl_doc_free(doc);
}

/*------------------------------------------------------------------------------
 * The disassembler against the load
 *----------------------------------------------------------------------------*/

typedef struct dis_out {
    size_t lines, longest;
    bool nul;
} dis_out;

static void dis_write(void *ctx, const char *text, size_t len) {
    dis_out *d = ctx;
    d->lines++;
    if (len > d->longest)
        d->longest = len;
    if (memchr(text, '\0', len))
        d->nul = true;
}

/* Where both must agree (docs/libpkl.md, pkl/dis.c): pkl_dis models the
   stream structure the way the C unpickler reads it, without values.
   - a load that succeeds reads a well-formed stream;
   - a well-formed stream never fails to load for truncation or a bad byte;
   - a bad byte at P stops the load at P at the latest, as bad-opcode if it
     got there;
   - a stream the disassembler finds truncated cannot load, and a load that
     ran out of input ran out where the disassembler did. */
static void check_dis(const uint8_t *data, size_t len, const answer *r) {
    dis_out d = {0, 0, false};
    pkl_err e = {PKL_ERR_INTERNAL, NULL, 0};
    bool ok = pkl_dis(data, len, dis_write, &d, &e);
    if (d.nul || d.longest >= 640)
        brine_fuzz_fail("dis: a line holds a NUL or is %zu bytes long", d.longest);
    if (!d.lines)
        brine_fuzz_fail("dis: printed nothing");
    if (ok != (e.code == PKL_OK) || e.code >= PKL_CODE_COUNT || e.code == PKL_ERR_INTERNAL)
        brine_fuzz_fail("dis: returned %s with code %s", ok ? "true" : "false", pkl_code_name(e.code));
    if (!ok && e.pos > len)
        brine_fuzz_fail("dis: fault position %zu past the input", e.pos);
    pkl_code lc = r->err.code;
    if (lc == PKL_ERR_RESOURCE_LIMIT)
        return; /* the load stopped at a bound; the disassembler has none */
    if (lc == PKL_OK && !ok)
        brine_fuzz_fail("dis: the pickle loads, but the disassembler says %s at %zu",
                        pkl_code_name(e.code), e.pos);
    if (ok && (lc == PKL_ERR_TRUNCATED || lc == PKL_ERR_BAD_OPCODE))
        brine_fuzz_fail("dis: well formed, but the load says %s at %zu", pkl_code_name(lc),
                        r->err.pos);
    if (!ok && e.code == PKL_ERR_BAD_OPCODE &&
        (lc == PKL_OK || r->err.pos > e.pos || (r->err.pos == e.pos && lc != PKL_ERR_BAD_OPCODE)))
        brine_fuzz_fail("dis: bad opcode at %zu, but the load says %s at %zu", e.pos,
                        pkl_code_name(lc), r->err.pos);
    if (!ok && e.code == PKL_ERR_TRUNCATED && lc == PKL_OK)
        brine_fuzz_fail("dis: truncated at %zu, but the pickle loads", e.pos);
    if (lc == PKL_ERR_TRUNCATED && !(!ok && e.code == PKL_ERR_TRUNCATED))
        brine_fuzz_fail("dis: the load is truncated at %zu, the disassembler says %s at %zu",
                        r->err.pos, pkl_code_name(e.code), e.pos);
}

/*------------------------------------------------------------------------------
 * The target
 *----------------------------------------------------------------------------*/

static pkl_limits g_fuzz, g_raised, g_tiny;

int brine_fuzz_init(int *argc, char ***argv) {
    (void)argc, (void)argv;
    g_fuzz = limits_fuzz();
    g_raised = limits_raised();
    g_tiny = limits_tiny();
    return 0;
}

void brine_fuzz_cleanup(void) {}

static void compare(const answer *r, const answer *o, const char *who) {
    if (!same(r, o))
        brine_fuzz_fail("%s differs from the first load:\n--- first\n%.2000s--- %s\n%.2000s", who,
                        body(r), who, body(o));
}

int brine_fuzz_one(const uint8_t *data, size_t len) {
    answer r = load_counted(data, len, &g_fuzz, true, "load");

    /* C: the one-call API, libc allocator */
    pkl_load_opts o;
    memset(&o, 0, sizeof o);
    o.limits = &g_fuzz;
    answer c;
    memset(&c, 0, sizeof c);
    c.text = pkl_canon_load(data, len, &o, &c.len, &c.err);
    if (!c.text)
        brine_fuzz_fail("pkl_canon_load returned NULL with the libc allocator");
    compare(&r, &c, "pkl_canon_load");
    if (c.err.code != r.err.code)
        brine_fuzz_fail("pkl_canon_load reports %s, pkl_load %s", pkl_code_name(c.err.code),
                        pkl_code_name(r.err.code));
    free(c.text);

    /* A: the safety trace harness gives the same document */
    brine_pkl_answer ans;
    if (brine_pkl_answer_load(data, len, &g_fuzz, &ans) != 0)
        brine_fuzz_fail("brine_pkl_answer_load could not allocate its error document");
    bool trace_rl = ans.err.code == PKL_ERR_RESOURCE_LIMIT && !is_rl(&r);
    if (!trace_rl && (ans.text_len != r.len || memcmp(ans.text, r.text, r.len) != 0))
        brine_fuzz_fail("the traced load differs:\n--- first\n%.2000s--- traced\n%.2000s", body(&r),
                        ans.text + HEADER_LEN);
    check_trace(ans.trace, ans.trace_len);
    brine_pkl_answer_free(&ans);

    /* HI and LO: limits change nothing but whether resource-limit happens */
    answer hi = load_counted(data, len, &g_raised, false, "raised limits");
    if (!is_rl(&r) && !same(&r, &hi))
        compare(&r, &hi, "raised limits");
    answer lo = load_counted(data, len, &g_tiny, false, "tiny limits");
    if (is_rl(&r) ? !is_rl(&lo) : !is_rl(&lo) && !same(&r, &lo))
        compare(&r, &lo, "tiny limits");
    if (lo.peak_load > g_tiny.max_alloc)
        brine_fuzz_fail("tiny limits: held %zu bytes", lo.peak_load);

    /* F: one injected allocation failure, chosen by the input */
    uint64_t h = fnv1a(data, len);
    bool after = h & 1;
    if (r.allocs_load)
        inject_load(data, len, &g_fuzz, 1 + (size_t)((h >> 1) % r.allocs_load), after);
    if (r.allocs_canon)
        inject_canon(data, len, &g_fuzz, 1 + (size_t)((h >> 33) % r.allocs_canon), after);

    check_dis(data, len, &r);

    answer_free(&r);
    answer_free(&hi);
    answer_free(&lo);
    return 0;
}
