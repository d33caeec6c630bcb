/* libpkl's answer against CPython's (compare.h). */
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compare.h"

static const char HEADER[] = "brine-canonical 1 raw";

/*------------------------------------------------------------------------------
 * Lines
 *----------------------------------------------------------------------------*/

typedef struct span {
    const char *p;
    size_t n;
} span;

/* The next line of s (without its '\n'); false at the end. */
static bool next_line(span *s, span *line) {
    if (!s->n)
        return false;
    const char *nl = memchr(s->p, '\n', s->n);
    size_t k = nl ? (size_t)(nl - s->p) : s->n;
    line->p = s->p;
    line->n = k;
    s->p += nl ? k + 1 : k;
    s->n -= nl ? k + 1 : k;
    return true;
}

static bool span_eq(span a, const char *lit) {
    size_t n = strlen(lit);
    return a.n == n && !memcmp(a.p, lit, n);
}

static bool starts(span a, const char *lit) {
    size_t n = strlen(lit);
    return a.n >= n && !memcmp(a.p, lit, n);
}

/* The class of an error document ("truncated"), or an empty span when the
   document is not one. */
static span error_class(const char *text, size_t n) {
    span s = {text, n}, l, none = {NULL, 0};
    if (!next_line(&s, &l) || !span_eq(l, HEADER) || !next_line(&s, &l) || !starts(l, "error "))
        return none;
    span c = {l.p + 6, l.n - 6};
    return next_line(&s, &l) ? none : c;
}

/* A trace line without its ` as "m" "n"` clause: the clause follows the
   second quoted name of a global event, and quoted names escape '"', so it
   is found by walking the quoting rather than by searching. */
static span strip_as(span l) {
    const char *p = l.p, *end = l.p + l.n;
    while (p < end && *p != ' ')
        p++;
    if ((size_t)(end - p) < 8 || memcmp(p, " global ", 8))
        return l;
    p += 8;
    for (int q = 0; q < 2; q++) {
        if (q && (p >= end || *p++ != ' '))
            return l;
        if (p >= end || *p++ != '"')
            return l;
        while (p < end && *p != '"')
            p += (*p == '\\' && p + 1 < end) ? 2 : 1;
        if (p >= end)
            return l;
        p++;
    }
    if ((size_t)(end - p) >= 5 && !memcmp(p, " as \"", 5))
        l.n = (size_t)(p - l.p);
    return l;
}

/*------------------------------------------------------------------------------
 * Kinds
 *----------------------------------------------------------------------------*/

/* Copies src to out (size BRINE_CMP_KIND_MAX), every character outside
   [A-Za-z0-9_-] made '-'. */
static void put_kind(char *out, const char *prefix, const char *src, size_t n) {
    size_t k = 0, pn = strlen(prefix);
    for (size_t i = 0; i < pn && k + 1 < BRINE_CMP_KIND_MAX; i++)
        out[k++] = prefix[i];
    for (size_t i = 0; i < n && k + 1 < BRINE_CMP_KIND_MAX; i++) {
        char c = src[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '_' || c == '-';
        out[k++] = ok ? c : '-';
    }
    if (k == 0)
        out[k++] = '-';
    out[k] = 0;
}

static void doc_line_kind(const span *line, char *out) {
    if (!line) {
        put_kind(out, "", "end", 3);
        return;
    }
    const char *p = line->p, *end = line->p + line->n;
    if (p < end && *p == '@') { /* "@40 list": depth as a number */
        while (p < end && *p != ' ')
            p++;
        if (p < end)
            p++;
    }
    while (p < end && *p == ' ')
        p++;
    span rest = {p, (size_t)(end - p)};
    if (starts(rest, "error ")) {
        put_kind(out, "error-", p + 6, rest.n - 6);
        return;
    }
    const char *sp = memchr(p, ' ', rest.n);
    size_t w = sp ? (size_t)(sp - p) : rest.n;
    if (w && *p == '.')
        put_kind(out, "slot-", p + 1, w - 1);
    else
        put_kind(out, "", p, w);
}

static void trace_line_kind(const span *line, char *out) {
    if (!line) {
        put_kind(out, "", "end", 3);
        return;
    }
    const char *p = line->p, *end = line->p + line->n;
    while (p < end && *p != ' ')
        p++;
    if (p < end)
        p++;
    const char *w = p;
    while (p < end && *p != ' ')
        p++;
    put_kind(out, "", w, (size_t)(p - w));
}

/*------------------------------------------------------------------------------
 * Opcode context
 *----------------------------------------------------------------------------*/

/* End of the opcode at pos (its argument included), or SIZE_MAX when the
   input ends inside it. */
static size_t op_end(const pkl_opinfo *op, const uint8_t *d, size_t pos, size_t len) {
    size_t a = pos + 1;
    switch (op->layout) {
    case PKL_LAYOUT_NONE:
        return a;
    case PKL_LAYOUT_FIXED:
        return len - a >= op->width ? a + op->width : SIZE_MAX;
    case PKL_LAYOUT_COUNTED: {
        if (len - a < op->width)
            return SIZE_MAX;
        uint64_t n = 0;
        for (unsigned i = op->width; i-- > 0;)
            n = (n << 8) | d[a + i];
        a += op->width;
        return n <= len - a ? a + (size_t)n : SIZE_MAX;
    }
    case PKL_LAYOUT_LINE:
    case PKL_LAYOUT_LINE2:
        for (int k = op->layout == PKL_LAYOUT_LINE2 ? 2 : 1; k > 0; k--) {
            const uint8_t *nl = a < len ? memchr(d + a, '\n', len - a) : NULL;
            if (!nl)
                return SIZE_MAX;
            a = (size_t)(nl - d) + 1;
        }
        return a;
    }
    return SIZE_MAX;
}

/* target SIZE_MAX: the last opcode before STOP (STOP itself when it comes
   first, the last opcode walked when there is no STOP); otherwise the
   opcode that starts at target or the last one started before it. */
static void op_context(const uint8_t *d, size_t len, size_t target, brine_cmp_result *r) {
    const pkl_opinfo *last = NULL;
    size_t last_pos = SIZE_MAX, pos = 0;
    r->op_pos = SIZE_MAX;
    while (pos < len && (target == SIZE_MAX || pos <= target)) {
        const pkl_opinfo *op = pkl_opcode_info(d[pos]);
        if (!op) {
            if (target == SIZE_MAX || pos == target || !last) {
                char b[16];
                snprintf(b, sizeof b, "byte-%02x", d[pos]);
                put_kind(r->opcode, "", b, strlen(b));
                r->op_pos = pos;
                return;
            }
            break;
        }
        if (op->code == PKL_OP_STOP && target == SIZE_MAX) {
            if (!last) {
                last = op;
                last_pos = pos;
            }
            break;
        }
        last = op;
        last_pos = pos;
        size_t end = op_end(op, d, pos, len);
        if (end == SIZE_MAX)
            break;
        pos = end;
    }
    if (!last) {
        put_kind(r->opcode, "", "none", 4);
        return;
    }
    put_kind(r->opcode, "", last->name, strlen(last->name));
    r->op_pos = last_pos;
}

/*------------------------------------------------------------------------------
 * The comparison
 *----------------------------------------------------------------------------*/

const char *brine_cmp_decision_name(brine_cmp_decision d) {
    switch (d) {
    case BRINE_CMP_SAME: return "same";
    case BRINE_CMP_BOTH_LOAD: return "both-load";
    case BRINE_CMP_PKL_REJECTS: return "pkl-rejects";
    case BRINE_CMP_CPYTHON_REJECTS: return "cpython-rejects";
    case BRINE_CMP_BOTH_REJECT_DIFFERENT: return "both-reject-different-class";
    case BRINE_CMP_TRACE_ONLY: return "trace-only";
    }
    return "?";
}

uint64_t brine_cmp_sig_hash(const char *s) {
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 1099511628211ull;
    return h;
}

/* First differing document line: its number and each side's kind. */
static bool doc_diff(const brine_cmp_side *a, const brine_cmp_side *b, brine_cmp_result *r) {
    span sa = {a->text, a->text_len}, sb = {b->text, b->text_len}, la, lb;
    for (size_t i = 1;; i++) {
        bool ha = next_line(&sa, &la), hb = next_line(&sb, &lb);
        if (!ha && !hb)
            return false;
        if (ha && hb && la.n == lb.n && !memcmp(la.p, lb.p, la.n))
            continue;
        r->line = i;
        doc_line_kind(ha ? &la : NULL, r->pkl_kind);
        doc_line_kind(hb ? &lb : NULL, r->py_kind);
        return true;
    }
}

static bool trace_diff(const brine_cmp_side *a, const brine_cmp_side *b, brine_cmp_result *r) {
    span sa = {a->trace ? a->trace : "", a->trace ? a->trace_len : 0};
    span sb = {b->trace ? b->trace : "", b->trace ? b->trace_len : 0}, la, lb;
    for (size_t i = 1;; i++) {
        bool ha = next_line(&sa, &la), hb = next_line(&sb, &lb);
        if (!ha && !hb)
            return false;
        if (ha && hb) {
            span xa = strip_as(la), xb = strip_as(lb);
            if (xa.n == xb.n && !memcmp(xa.p, xb.p, xa.n))
                continue;
        }
        r->line = i;
        r->in_trace = 1;
        trace_line_kind(ha ? &la : NULL, r->pkl_kind);
        trace_line_kind(hb ? &lb : NULL, r->py_kind);
        return true;
    }
}

void brine_compare(const uint8_t *data, size_t len, const brine_cmp_side *pkl,
                   const pkl_err *pkl_error, const brine_cmp_side *py, brine_cmp_result *out) {
    memset(out, 0, sizeof *out);
    out->op_pos = SIZE_MAX;
    span py_err = error_class(py->text, py->text_len);
    span pkl_errc = error_class(pkl->text, pkl->text_len);
    bool text_differs = doc_diff(pkl, py, out);
    if (!text_differs && !trace_diff(pkl, py, out)) {
        out->verdict = BRINE_CMP_AGREE;
        return;
    }
    if (span_eq(py_err, "resource-limit") || py->limited) {
        memset(out, 0, sizeof *out);
        out->op_pos = SIZE_MAX;
        out->verdict = BRINE_CMP_NO_VERDICT;
        out->no_verdict_reason = "CPython hit a resource limit (memory cap, CPU time or "
                                 "recursion): no verdict on the pickle";
        return;
    }
    out->verdict = BRINE_CMP_DIVERGE;
    if (!text_differs)
        out->decision = BRINE_CMP_TRACE_ONLY;
    else if (pkl_errc.p && py_err.p)
        out->decision = BRINE_CMP_BOTH_REJECT_DIFFERENT;
    else if (pkl_errc.p)
        out->decision = BRINE_CMP_PKL_REJECTS;
    else if (py_err.p)
        out->decision = BRINE_CMP_CPYTHON_REJECTS;
    else
        out->decision = BRINE_CMP_BOTH_LOAD;
    bool pkl_failed = pkl_error ? pkl_error->code != PKL_OK : pkl_errc.p != NULL;
    op_context(data, len, pkl_failed && pkl_error ? pkl_error->pos : SIZE_MAX, out);
    snprintf(out->signature, sizeof out->signature, "%s.%s.%s.%s",
             brine_cmp_decision_name(out->decision), out->pkl_kind, out->py_kind, out->opcode);
}

/*------------------------------------------------------------------------------
 * The report
 *----------------------------------------------------------------------------*/

typedef struct sbuf {
    char *p;
    size_t len, cap, max;
    bool cut, oom;
} sbuf;

static void sb_put(sbuf *b, const char *s, size_t n) {
    if (b->cut || b->oom)
        return;
    if (n > b->max - b->len) {
        n = b->max - b->len;
        b->cut = true;
    }
    if (b->len + n + 1 > b->cap) {
        size_t ncap = b->cap ? b->cap : 1024;
        while (ncap < b->len + n + 1)
            ncap *= 2;
        char *np = realloc(b->p, ncap);
        if (!np) {
            b->oom = true;
            return;
        }
        b->p = np;
        b->cap = ncap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = 0;
}

static void sb_str(sbuf *b, const char *s) { sb_put(b, s, strlen(s)); }

static void sb_fmt(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_fmt(sbuf *b, const char *fmt, ...) {
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n > 0)
        sb_put(b, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

#define DIFF_CONTEXT 3
#define DIFF_SIDE_MAX 40
#define DIS_LINES_MAX 200

/* One hunk: the common prefix's last DIFF_CONTEXT lines, then a's rest as
   '-' lines and b's rest as '+' lines, each cut after DIFF_SIDE_MAX. */
static void sb_diff(sbuf *b, const char *a, size_t an, const char *c, size_t cn, const char *la,
                    const char *lc) {
    sb_fmt(b, "--- %s\n+++ %s\n", la, lc);
    span sa = {a ? a : "", a ? an : 0}, sc = {c ? c : "", c ? cn : 0}, x, y;
    span ctx[DIFF_CONTEXT];
    size_t nctx = 0, line = 0;
    for (;;) {
        span ka = sa, kc = sc;
        bool hx = next_line(&sa, &x), hy = next_line(&sc, &y);
        if (hx && hy && x.n == y.n && !memcmp(x.p, y.p, x.n)) {
            line++;
            if (nctx == DIFF_CONTEXT) {
                memmove(ctx, ctx + 1, (DIFF_CONTEXT - 1) * sizeof *ctx);
                nctx--;
            }
            ctx[nctx++] = x;
            continue;
        }
        if (!hx && !hy) {
            sb_str(b, " (identical)\n");
            return;
        }
        sa = ka;
        sc = kc;
        break;
    }
    sb_fmt(b, "@@ first difference at line %zu @@\n", line + 1);
    for (size_t i = 0; i < nctx; i++) {
        sb_put(b, " ", 1);
        sb_put(b, ctx[i].p, ctx[i].n);
        sb_put(b, "\n", 1);
    }
    for (int side = 0; side < 2; side++) {
        span *s = side ? &sc : &sa;
        size_t k = 0;
        while (next_line(s, &x)) {
            if (k++ == DIFF_SIDE_MAX) {
                sb_fmt(b, "%c... (more lines)\n", side ? '+' : '-');
                break;
            }
            sb_put(b, side ? "+" : "-", 1);
            sb_put(b, x.p, x.n);
            sb_put(b, "\n", 1);
        }
    }
}

typedef struct dis_sink {
    sbuf *b;
    size_t lines;
} dis_sink;

static void dis_write(void *ctx, const char *text, size_t len) {
    dis_sink *s = ctx;
    for (size_t i = 0; i < len && s->lines <= DIS_LINES_MAX; i++) {
        if (s->lines == DIS_LINES_MAX) {
            sb_str(s->b, "... (disassembly cut)\n");
            s->lines++;
            return;
        }
        sb_put(s->b, text + i, 1);
        if (text[i] == '\n')
            s->lines++;
    }
}

char *brine_cmp_report(const uint8_t *data, size_t len, const brine_cmp_side *pkl,
                       const brine_cmp_side *py, const brine_cmp_result *r, size_t max_len) {
    sbuf b = {0};
    b.max = (max_len ? max_len : (size_t)64 << 10) - 64; /* room for the cut note */
    if (r->verdict == BRINE_CMP_DIVERGE) {
        sb_fmt(&b, "brine-divergence-signature: %s\n", r->signature);
        sb_fmt(&b, "brine-divergence-hash: %016llx\n",
               (unsigned long long)brine_cmp_sig_hash(r->signature));
        sb_fmt(&b, "decision: %s; first difference in the %s, line %zu: libpkl %s, CPython %s\n",
               brine_cmp_decision_name(r->decision), r->in_trace ? "trace" : "document", r->line,
               r->pkl_kind, r->py_kind);
        if (r->op_pos != SIZE_MAX)
            sb_fmt(&b, "opcode context: %s at offset %zu\n", r->opcode, r->op_pos);
        else
            sb_fmt(&b, "opcode context: %s\n", r->opcode);
    } else {
        sb_fmt(&b, "verdict: %s\n", r->verdict == BRINE_CMP_AGREE ? "agree" : "no verdict");
    }
    sb_str(&b, "\n== canonical documents\n");
    sb_diff(&b, pkl->text, pkl->text_len, py->text, py->text_len, "libpkl", "cpython");
    sb_str(&b, "\n== safety traces (the comparison ignores ` as` clauses)\n");
    sb_diff(&b, pkl->trace, pkl->trace_len, py->trace, py->trace_len, "libpkl", "cpython");
    sb_fmt(&b, "\n== disassembly (%zu bytes)\n", len);
    dis_sink sink = {&b, 0};
    pkl_err err;
    pkl_dis(data, len, dis_write, &sink, &err);
    bool cut = b.cut;
    b.cut = false;
    b.max += 64;
    if (cut)
        sb_str(&b, "\n... (report cut)\n");
    if (b.oom) {
        free(b.p);
        return NULL;
    }
    if (!b.p)
        sb_put(&b, "", 0);
    return b.p;
}
