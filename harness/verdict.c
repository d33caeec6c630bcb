/* Verdicts (verdict.h). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "verdict.h"

static const char *const NAMES[BRINE_V_COUNT] = {
    "pass",           "acceptable", "oracle-limit",     "out-of-scope",    "refused",
    "trace-mismatch", "mismatch",   "accept-vs-reject", "safety-mismatch", "timeout",
    "crash",
};

const char *brine_verdict_name(brine_verdict v) {
    return (unsigned)v < BRINE_V_COUNT ? NAMES[v] : "?";
}

bool brine_verdict_ok(brine_verdict v) {
    return v == BRINE_V_PASS || v == BRINE_V_ACCEPTABLE || v == BRINE_V_ORACLE_LIMIT ||
           v == BRINE_V_OUT_OF_SCOPE;
}

/*------------------------------------------------------------------------------
 * Lines
 *----------------------------------------------------------------------------*/

typedef struct span {
    const char *p;
    size_t n;
} span;

/* The next line of [*p, end) without its newline; false at the end. */
static bool next_line(const char **p, const char *end, span *line) {
    if (*p >= end)
        return false;
    const char *nl = memchr(*p, '\n', (size_t)(end - *p));
    const char *stop = nl ? nl : end;
    line->p = *p;
    line->n = (size_t)(stop - *p);
    *p = nl ? nl + 1 : end;
    return true;
}

static bool starts(span s, const char *word) {
    size_t n = strlen(word);
    return s.n >= n && memcmp(s.p, word, n) == 0;
}

/* The line without its indentation ("  " * d or "@<d> "). */
static span unindent(span s) {
    size_t i = 0;
    if (s.n && s.p[0] == '@') {
        while (i < s.n && s.p[i] != ' ')
            i++;
        if (i < s.n)
            i++;
    } else {
        while (i < s.n && s.p[i] == ' ')
            i++;
    }
    return (span){s.p + i, s.n - i};
}

/* Length of the quoted string at s.p[0] == '"', closing quote included; 0
   when it is not closed. */
static size_t quoted_len(span s) {
    if (!s.n || s.p[0] != '"')
        return 0;
    for (size_t i = 1; i < s.n; i++) {
        if (s.p[i] == '\\')
            i++;
        else if (s.p[i] == '"')
            return i + 1;
    }
    return 0;
}

/* In s (starting at a quoted module), the `"module" "name"` pair; false when
   s does not start with one. */
static bool global_pair(span s, span *pair) {
    size_t a = quoted_len(s);
    if (!a || a + 1 >= s.n || s.p[a] != ' ')
        return false;
    size_t b = quoted_len((span){s.p + a + 1, s.n - a - 1});
    if (!b)
        return false;
    *pair = (span){s.p, a + 1 + b};
    return true;
}

bool brine_doc_is_error(const char *text, size_t len, const char **cls, size_t *cls_len) {
    const char *p = text, *end = text + len;
    span line;
    if (!next_line(&p, end, &line) || !next_line(&p, end, &line) || !starts(line, "error "))
        return false;
    if (cls)
        *cls = line.p + 6;
    if (cls_len)
        *cls_len = line.n - 6;
    return true;
}

/*------------------------------------------------------------------------------
 * Sets of globals, and trace normalization
 *----------------------------------------------------------------------------*/

typedef struct spans {
    span *v;
    size_t n, cap;
    bool oom;
} spans;

static void spans_add(spans *s, span x) {
    if (s->oom)
        return;
    if (s->n == s->cap) {
        size_t ncap = s->cap ? s->cap * 2 : 16;
        span *nv = realloc(s->v, ncap * sizeof *nv);
        if (!nv) {
            s->oom = true;
            return;
        }
        s->v = nv;
        s->cap = ncap;
    }
    s->v[s->n++] = x;
}

static int span_cmp(const void *a, const void *b) {
    const span *x = a, *y = b;
    size_t n = x->n < y->n ? x->n : y->n;
    int c = memcmp(x->p, y->p, n);
    return c ? c : (x->n > y->n) - (x->n < y->n);
}

/* The `"m" "n"` of every `global` node of a document. */
static void doc_globals(const char *text, size_t len, spans *out) {
    const char *p = text, *end = text + len;
    span line, pair;
    next_line(&p, end, &line); /* header */
    while (next_line(&p, end, &line)) {
        span s = unindent(line);
        if (starts(s, "global ") && global_pair((span){s.p + 7, s.n - 7}, &pair))
            spans_add(out, pair);
    }
}

/* Trace facts: globals resolved, and how many calls (call/new) were made. */
typedef struct trace_facts {
    spans globals;
    size_t calls;
} trace_facts;

/* The event part of a trace line (after "N "). */
static span event_of(span line) {
    size_t i = 0;
    while (i < line.n && line.p[i] != ' ')
        i++;
    return i < line.n ? (span){line.p + i + 1, line.n - i - 1} : (span){line.p + line.n, 0};
}

static void trace_scan(const char *trace, size_t len, trace_facts *f) {
    const char *p = trace, *end = trace + len;
    span line, pair;
    while (next_line(&p, end, &line)) {
        span ev = event_of(line);
        if (starts(ev, "global ") && global_pair((span){ev.p + 7, ev.n - 7}, &pair))
            spans_add(&f->globals, pair);
        else if (starts(ev, "call ") || starts(ev, "new "))
            f->calls++;
    }
}

/* Trace lines equal once the ` as ...` clause of global lines is dropped. */
static bool traces_equal(const char *a, size_t alen, const char *b, size_t blen) {
    const char *p = a, *pe = a + alen, *q = b, *qe = b + blen;
    span la, lb;
    for (;;) {
        bool ha = next_line(&p, pe, &la), hb = next_line(&q, qe, &lb);
        if (!ha || !hb)
            return ha == hb;
        span ea = event_of(la), eb = event_of(lb), pa, pb;
        if (starts(ea, "global ") && global_pair((span){ea.p + 7, ea.n - 7}, &pa))
            la.n = (size_t)(pa.p + pa.n - la.p);
        if (starts(eb, "global ") && global_pair((span){eb.p + 7, eb.n - 7}, &pb))
            lb.n = (size_t)(pb.p + pb.n - lb.p);
        if (la.n != lb.n || memcmp(la.p, lb.p, la.n) != 0)
            return false;
    }
}

/* The first element of want that is not in have (both sorted), or NULL. */
static const span *first_missing(spans *want, spans *have) {
    if (want->n > 1)
        qsort(want->v, want->n, sizeof *want->v, span_cmp);
    if (have->n > 1)
        qsort(have->v, have->n, sizeof *have->v, span_cmp);
    size_t j = 0;
    for (size_t i = 0; i < want->n; i++) {
        while (j < have->n && span_cmp(&have->v[j], &want->v[i]) < 0)
            j++;
        if (j == have->n || span_cmp(&have->v[j], &want->v[i]) != 0)
            return &want->v[i];
    }
    return NULL;
}

/* SAFETY when `got` misses a global or a call that `want` performs. Traces
   are used where got has one; otherwise the globals of the two documents.
   A rejection is judged only when it is the oracle's own rejection (same
   class): then the implementation went through the same pickle to the same
   fault and should have seen the same imports on the way (what a scanner
   must report). A rejection of its own (another class, or where the oracle
   loads) stopped somewhere else and constructed nothing: an ordinary
   accept-vs-reject or mismatch, not a miss. So a refusal by policy (`error
   forbidden`) is never a miss: it is the point of a restricted unpickler. */
static bool safety_miss(const brine_text *want, const brine_text *got, char *detail,
                        size_t dlen) {
    const char *cls, *wcls;
    size_t cls_len, wcls_len;
    if (brine_doc_is_error(got->text, got->len, &cls, &cls_len)) {
        if (!brine_doc_is_error(want->text, want->len, &wcls, &wcls_len) ||
            cls_len != wcls_len || memcmp(cls, wcls, cls_len) != 0)
            return false;
        if (cls_len == 9 && memcmp(cls, "forbidden", 9) == 0)
            return false;
    }
    trace_facts w, g;
    memset(&w, 0, sizeof w);
    memset(&g, 0, sizeof g);
    if (got->trace && want->trace) {
        trace_scan(want->trace, want->trace_len, &w);
        trace_scan(got->trace, got->trace_len, &g);
    } else {
        if (brine_doc_is_error(got->text, got->len, NULL, NULL))
            return false; /* a rejection without a trace says nothing about imports */
        doc_globals(want->text, want->len, &w.globals);
        doc_globals(got->text, got->len, &g.globals);
    }
    bool miss = false;
    const span *m = first_missing(&w.globals, &g.globals);
    if (m) {
        miss = true;
        snprintf(detail, dlen, "missed global %.*s that the oracle resolves", (int)m->n, m->p);
    } else if (got->trace && want->trace && g.calls < w.calls) {
        miss = true;
        snprintf(detail, dlen, "made %zu calls where the oracle makes %zu", g.calls, w.calls);
    }
    if (w.globals.oom || g.globals.oom) {
        miss = true;
        snprintf(detail, dlen, "out of memory comparing globals");
    }
    free(w.globals.v);
    free(g.globals.v);
    return miss;
}

/*------------------------------------------------------------------------------
 * Judging
 *----------------------------------------------------------------------------*/

static bool same_doc(const brine_text *a, const brine_text *b) {
    return a->len == b->len && memcmp(a->text, b->text, a->len) == 0;
}

static bool same_trace(const brine_text *want, const brine_text *got) {
    if (!got->trace || !want->trace)
        return true; /* nothing to compare */
    return traces_equal(want->trace, want->trace_len, got->trace, got->trace_len);
}

/* "line 4: expected `int 1`, got `int 2`". */
static void first_difference(const brine_text *want, const brine_text *got, char *detail,
                             size_t dlen) {
    const char *p = want->text, *pe = p + want->len, *q = got->text, *qe = q + got->len;
    span a, b;
    for (size_t no = 1;; no++) {
        bool ha = next_line(&p, pe, &a), hb = next_line(&q, qe, &b);
        if (!ha && !hb) {
            snprintf(detail, dlen, "documents differ only in their final newline");
            return;
        }
        if (ha && hb && a.n == b.n && memcmp(a.p, b.p, a.n) == 0)
            continue;
        snprintf(detail, dlen, "line %zu: expected `%.*s`%s, got `%.*s`%s", no,
                 ha ? (int)(a.n > 60 ? 60 : a.n) : 5, ha ? a.p : "(end)", ha && a.n > 60 ? "..." : "",
                 hb ? (int)(b.n > 60 ? 60 : b.n) : 5, hb ? b.p : "(end)", hb && b.n > 60 ? "..." : "");
        return;
    }
}

brine_verdict brine_judge(const brine_expectation *e, const brine_text *got, char *detail,
                          size_t dlen, size_t *which) {
    char scratch[1];
    if (!detail || !dlen) {
        detail = scratch;
        dlen = sizeof scratch;
    }
    detail[0] = '\0';
    if (which)
        *which = 0;
    /* an answer with the same document, preferring one whose trace agrees too */
    size_t text_match = e->n;
    for (size_t k = 0; k < e->n; k++) {
        if (!same_doc(&e->answers[k], got))
            continue;
        if (same_trace(&e->answers[k], got)) {
            if (which)
                *which = k;
            if (e->oracle_limit) {
                /* agreeing with an oracle that gave up proves nothing */
                snprintf(detail, dlen, "the oracle hit a resource limit; the answers agree");
                return BRINE_V_ORACLE_LIMIT;
            }
            if (e->acceptable) {
                snprintf(detail, dlen, "answer %zu of %zu of an implementation-defined case",
                         k + 1, e->n);
                return BRINE_V_ACCEPTABLE;
            }
            return BRINE_V_PASS;
        }
        if (text_match == e->n)
            text_match = k;
    }
    if (text_match < e->n) {
        if (which)
            *which = text_match;
        if (safety_miss(&e->answers[text_match], got, detail, dlen))
            return BRINE_V_SAFETY_MISMATCH;
        snprintf(detail, dlen, "same document, different safety trace");
        return BRINE_V_TRACE_MISMATCH;
    }
    const char *cls;
    size_t cls_len;
    bool got_err = brine_doc_is_error(got->text, got->len, &cls, &cls_len);
    if (e->oracle_limit) {
        snprintf(detail, dlen, "the oracle hit a resource limit on this case");
        return BRINE_V_ORACLE_LIMIT;
    }
    if (e->limit_ok && got_err && cls_len == 14 && memcmp(cls, "resource-limit", 14) == 0) {
        snprintf(detail, dlen, "resource-limit, as the oracle under a memory limit");
        return BRINE_V_ACCEPTABLE;
    }
    const brine_text *want = &e->answers[0];
    if (safety_miss(want, got, detail, dlen))
        return BRINE_V_SAFETY_MISMATCH;
    const char *wcls;
    size_t wcls_len;
    bool want_err = brine_doc_is_error(want->text, want->len, &wcls, &wcls_len);
    if (got_err && cls_len == 9 && memcmp(cls, "forbidden", 9) == 0 &&
        !(want_err && wcls_len == 9 && memcmp(wcls, "forbidden", 9) == 0)) {
        snprintf(detail, dlen, "refused by policy where the oracle %s",
                 want_err ? "rejects for another reason" : "loads");
        return BRINE_V_REFUSED;
    }
    if (want_err != got_err) {
        if (got_err)
            snprintf(detail, dlen, "rejected (error %.*s) what the oracle loads", (int)cls_len,
                     cls);
        else
            snprintf(detail, dlen, "loaded what the oracle rejects (error %.*s)",
                     (int)wcls_len, wcls);
        return BRINE_V_ACCEPT_VS_REJECT;
    }
    if (got_err)
        snprintf(detail, dlen, "error %.*s where the oracle says error %.*s", (int)cls_len, cls,
                 (int)wcls_len, wcls);
    else
        first_difference(want, got, detail, dlen);
    return BRINE_V_MISMATCH;
}
