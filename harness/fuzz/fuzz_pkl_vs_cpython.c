/* fuzz_pkl_vs_cpython: libpkl against CPython embedded in-process.
 *
 * Each input is answered by libpkl (brine_pkl_answer_load: exactly what
 * `brine serve` answers) and by the embedded CPython oracle (brine_py_load:
 * exactly what `python -m brine_oracle serve` answers, under a memory cap
 * and a CPU budget), and the two are compared (harness/compare.h):
 *
 *   agree        nothing to say;
 *   no verdict   CPython answered resource-limit or ran into a limit
 *                (this covers libpkl's deliberate differences,
 *                docs/libpkl.md section 6);
 *   known quirk  a divergence matching an entry of QUIRKS below: a
 *                classified CPython behaviour, a known gap of the oracle
 *                or of canonical text v1, each with its note and its
 *                reproducer in corpus/regress/;
 *   divergence   the report (signature, both documents as a diff, both
 *                traces, the disassembly) goes to stderr and the target
 *                aborts, so the engine keeps the input.
 *
 * Environment:
 *   BRINE_ORACLE_DIR      directory holding brine_oracle (default: the
 *                         source tree's oracle/)
 *   BRINE_PY_TIMEOUT      CPU seconds per CPython load (default 2)
 *   BRINE_PY_MEM_MB       CPython's memory cap per load (default 256)
 *   BRINE_DIFF_KEEP_GOING 1: print each divergence's report once per
 *                         signature and carry on (surveys with the replay
 *                         driver); the summary at exit counts them
 *
 * The interpreter's own coverage is not instrumented: the engine steers by
 * libpkl's and the comparator's.
 *
 * Running it under libFuzzer (CC=clang, BRINE_FUZZ_ENGINE=libfuzzer,
 * BRINE_SANITIZE=ON for ASan+UBSan on libpkl and the harness):
 *
 *   ASAN_OPTIONS=detect_leaks=0:allocator_may_return_null=1 \
 *     fuzz_pkl_vs_cpython_structured -dict=corpus/pickle.dict -max_len=4096 \
 *     -rss_limit_mb=4096 -timeout=25 WORK_DIR corpus/cases/<group>... corpus/regress
 *
 * detect_leaks=0: CPython keeps caches and freelists across inputs that
 * LeakSanitizer cannot tell from leaks (libpkl's own leaks are
 * fuzz_pkl_load's job); allocator_may_return_null: a refused huge request
 * becomes MemoryError instead of an ASan report (the cap normally refuses
 * first).
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compare.h"
#include "fuzz_explain.h"
#include "fuzz_py.h"
#include "fuzz_target.h"
#include "pkl.h"
#include "pkl_answer.h"
#include "pyembed.h"


#define MiB ((size_t)1 << 20)

/* libpkl bounds its text and its trace each by max_output; the oracle
   bounds their sum. With the oracle's bound lower, an answer too big for
   libpkl is always too big for CPython first (no verdict). */
#define PKL_MAX_OUTPUT (64 * MiB)
#define PY_MAX_OUTPUT (16 * MiB)

/*------------------------------------------------------------------------------
 * Known quirks: divergences that are not libpkl's (CPython's, the oracle's,
 * canonical text v1's), classified; each has a corpus/regress/ reproducer
 *----------------------------------------------------------------------------*/

typedef struct quirk {
    const char *name;  /* the corpus/regress/ reproducer's name */
    const char *note;
    /* true when this divergence is the quirk */
    bool (*match)(const uint8_t *data, size_t len, const brine_cmp_result *r,
                  const brine_pkl_answer *pkl, const char *py_text);
} quirk;

/* CPython 3.11.2 (Debian 12's; fixed by 3.11.7) replaces the stack-underflow
   error of STACK_GLOBAL's second pop with "STACK_GLOBAL requires str". The
   oracle tells the two apart by re-running with the Python unpickler, which
   cannot help when that one fails earlier (a FRAME inside a frame). libpkl
   follows the newer CPythons: stack-underflow. */
static bool cpython_stack_global_message(const uint8_t *data, size_t len,
                                         const brine_cmp_result *r, const brine_pkl_answer *pkl,
                                         const char *py_text) {
    return r->decision == BRINE_CMP_BOTH_REJECT_DIFFERENT &&
           pkl->err.code == PKL_ERR_STACK_UNDERFLOW && pkl->err.pos < len &&
           data[pkl->err.pos] == PKL_OP_STACK_GLOBAL &&
           !strcmp(py_text, "brine-canonical 1 raw\nerror type-error\n");
}

/* Depth of a canonical line ("  " per level, or "@N "); *kind gets the
   first word after the indentation. */
static size_t line_depth(const char *l, const char *end, const char **kind) {
    size_t d = 0;
    if (l < end && *l == '@') {
        d = (size_t)strtoul(l + 1, NULL, 10);
        while (l < end && *l != ' ')
            l++;
        l++;
    } else {
        while (l + 1 < end && l[0] == ' ' && l[1] == ' ') {
            d++;
            l += 2;
        }
    }
    *kind = l;
    return d;
}

/* The two documents are equal once label numbers are dropped (" #N" after
   a node, the N of "ref #N"); quoted payloads are compared as they are. */
static bool same_but_labels(const char *a, const char *b) {
    for (;;) {
        if (*a == *b && *a != '#' && *a != '"') {
            if (!*a)
                return true;
            a++, b++;
            continue;
        }
        if (*a == '"' && *b == '"') { /* a quoted payload, escapes included */
            do {
                if (*a != *b)
                    return false;
                if (*a == '\\' && a[1]) {
                    a++, b++;
                    if (*a != *b)
                        return false;
                }
                a++, b++;
            } while (*a && *a != '"');
            if (*a != *b)
                return false;
            if (*a)
                a++, b++;
            continue;
        }
        if (*a == '#' && *b == '#') {
            do
                a++;
            while (*a >= '0' && *a <= '9');
            do
                b++;
            while (*b >= '0' && *b <= '9');
            continue;
        }
        return false;
    }
}

/* The lines of a document with label numbers dropped, as malloc'd
   strings; *n receives the count. NULL when out of memory. */
static char **unlabelled_lines(const char *text, size_t *n) {
    size_t cap = 1;
    for (const char *p = text; *p; p++)
        cap += *p == '\n';
    char **v = malloc(cap * sizeof *v);
    if (!v)
        return NULL;
    *n = 0;
    for (const char *p = text; *p;) {
        const char *e = strchr(p, '\n');
        size_t k = e ? (size_t)(e - p) : strlen(p);
        char *l = malloc(k + 1);
        if (!l)
            break;
        memcpy(l, p, k);
        l[k] = 0;
        char *h = strrchr(l, '#'); /* a label or ref is the line's last word */
        if (h && h > l && h[-1] == ' ' && h[1] && strspn(h + 1, "0123456789") == strlen(h + 1))
            h[1] = 0;
        v[(*n)++] = l;
        p += k + (e ? 1 : 0);
    }
    return v;
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The documents hold the same lines, label numbers aside, in some order. */
static bool same_lines_reordered(const char *a_text, const char *b_text) {
    size_t na = 0, nb = 0;
    char **a = unlabelled_lines(a_text, &na), **b = unlabelled_lines(b_text, &nb);
    bool same = a && b && na == nb;
    if (same) {
        qsort(a, na, sizeof *a, cmp_str);
        qsort(b, nb, sizeof *b, cmp_str);
        for (size_t i = 0; i < na && same; i++)
            same = !strcmp(a[i], b[i]);
    }
    for (size_t i = 0; a && i < na; i++)
        free(a[i]);
    for (size_t i = 0; b && i < nb; i++)
        free(b[i]);
    free(a);
    free(b);
    return same;
}

/* Canonical text v1 orders set elements by a digest bounded to 8 levels
   (docs/canonical-form.md section 5) and leaves the order of elements that
   tie unspecified. Elements that tie look alike for 8 levels, so their
   order can only differ inside a set with an element more than 8 levels
   deep; there libpkl keeps insertion order and the oracle CPython's
   iteration order (which for stubs follows their addresses, so it even
   changes from run to run). Elements that are alike all the way down tie
   too, and then their order shows in which of them carries a label or is
   printed first (section 5's note). Recognised as: both load, the first
   difference lies inside a set or frozenset, and either that set has an
   element more than 8 levels deep or the documents hold the same lines,
   label numbers aside, possibly reordered. (The deep case hides real
   differences inside such sets until the canonical form orders ties.) */
static bool canonical_set_order_tie(const uint8_t *data, size_t len, const brine_cmp_result *r,
                                    const brine_pkl_answer *pkl, const char *py_text) {
    (void)data;
    (void)len;
    (void)py_text;
    if (r->decision != BRINE_CMP_BOTH_LOAD || r->in_trace || r->line < 2)
        return false;
    /* the lines of libpkl's document, up to the first difference */
    const char *t = pkl->text, *end = pkl->text + pkl->text_len;
    size_t nlines = 0;
    for (const char *p = t; p < end; p++)
        nlines += *p == '\n';
    const char **start = malloc((nlines + 1) * sizeof *start);
    if (!start)
        return false;
    size_t n = 0;
    for (const char *p = t; p < end && n <= nlines;) {
        start[n++] = p;
        const char *e = memchr(p, '\n', (size_t)(end - p));
        p = e ? e + 1 : end;
    }
    bool in_set = false, deep = false;
    size_t diff = r->line - 1; /* 0-based index of the first differing line */
    if (diff < n) {
        const char *kind;
        size_t want = line_depth(start[diff], end, &kind);
        /* the ancestors of the differing line, nearest first */
        for (size_t i = diff; i-- > 1 && want > 0 && !deep;) {
            size_t d = line_depth(start[i], end, &kind);
            if (d >= want)
                continue;
            want = d;
            if (strncmp(kind, "set", 3) && strncmp(kind, "frozenset", 9))
                continue;
            in_set = true;
            for (size_t j = i + 1; j < n; j++) {
                size_t dj = line_depth(start[j], end, &kind);
                if (dj <= d)
                    break;
                if (dj > d + 8) {
                    deep = true;
                    break;
                }
            }
        }
    }
    free(start);
    return in_set && (deep || same_but_labels(pkl->text, py_text) ||
                      same_lines_reordered(pkl->text, py_text));
}

static const quirk QUIRKS[] = {
    {"canonical_set_order_tie",
     "canonical form v1, not a bug of either side: the order of set elements whose 8-level "
     "digests tie is unspecified (docs/canonical-form.md section 5)",
     canonical_set_order_tie},
    {"cpython311_stack_global_requires_str",
     "CPython before 3.11.7: STACK_GLOBAL's stack underflow reported as \"STACK_GLOBAL requires "
     "str\" (type-error) when the oracle's Python-unpickler rerun fails earlier",
     cpython_stack_global_message},
    {NULL, NULL, NULL},
};

/* Line n (1-based) of text, without its newline, at most 70 bytes. */
static void nth_line(const char *text, size_t len, size_t n, char *out, size_t outlen) {
    const char *p = text, *end = text + len;
    for (size_t k = 1; k < n && p < end; k++) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        p = nl ? nl + 1 : end;
    }
    const char *nl = p < end ? memchr(p, '\n', (size_t)(end - p)) : NULL;
    size_t l = (size_t)((nl ? nl : end) - p);
    snprintf(out, outlen, "%s%.*s%s", p < end ? "`" : "", (int)(l > 70 ? 70 : l), p,
             p >= end ? "(end)" : l > 70 ? "...`" : "`");
}

/* The one-line explanation of a divergence, for brine fuzz's findings. */
static void explain_divergence(const brine_cmp_result *r, const brine_cmp_side *a,
                               const brine_cmp_side *b, char *out, size_t outlen) {
    char pl[96], cl[96];
    const char *at = r->in_trace ? a->trace : a->text, *bt = r->in_trace ? b->trace : b->text;
    size_t al = r->in_trace ? a->trace_len : a->text_len;
    size_t bl = r->in_trace ? b->trace_len : b->text_len;
    nth_line(at ? at : "", at ? al : 0, r->line, pl, sizeof pl);
    nth_line(bt ? bt : "", bt ? bl : 0, r->line, cl, sizeof cl);
    snprintf(out, outlen, "%s: %s line %zu is %s for libpkl, %s for CPython (opcode %s)",
             brine_cmp_decision_name(r->decision), r->in_trace ? "trace" : "document", r->line,
             pl, cl, r->opcode);
}

static const quirk *known_quirk(const uint8_t *data, size_t len, const brine_cmp_result *r,
                                const brine_pkl_answer *pkl, const char *py_text) {
    for (const quirk *q = QUIRKS; q->name; q++)
        if (q->match(data, len, r, pkl, py_text))
            return q;
    return NULL;
}

/*------------------------------------------------------------------------------
 * Counters and the keep-going survey
 *----------------------------------------------------------------------------*/

static pkl_limits g_lim;
static bool g_keep_going;
static unsigned long long g_n, g_agree, g_no_verdict, g_quirks, g_diverged;

#define SEEN_MAX 4096
static uint64_t g_seen[SEEN_MAX];
static size_t g_nseen;

static bool first_time(const char *signature) {
    uint64_t h = brine_cmp_sig_hash(signature);
    for (size_t i = 0; i < g_nseen; i++)
        if (g_seen[i] == h)
            return false;
    if (g_nseen < SEEN_MAX)
        g_seen[g_nseen++] = h;
    return true;
}

int brine_fuzz_init(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    if (brine_fuzz_py_init("fuzz_pkl_vs_cpython", PY_MAX_OUTPUT) != 0)
        return 1;
    g_lim = pkl_limits_default();
    g_lim.max_output = PKL_MAX_OUTPUT;
    g_keep_going = brine_fuzz_env_num("BRINE_DIFF_KEEP_GOING", 0) != 0;
    fprintf(stderr, "fuzz_pkl_vs_cpython: libpkl %s against %s (%s)\n", PKL_VERSION_STRING,
            brine_py_name(), brine_py_version());
    return 0;
}

int brine_fuzz_one(const uint8_t *data, size_t len) {
    brine_pkl_answer pa;
    if (brine_pkl_answer_load(data, len, &g_lim, &pa) != 0)
        brine_fuzz_fail("libpkl could not allocate even an error document");
    const char *text, *trace;
    size_t text_len, trace_len;
    if (brine_py_load(data, len, &text, &text_len, &trace, &trace_len) != 0)
        brine_fuzz_fail("embedded CPython failed: %s", brine_py_error());
    g_n++;
    brine_py_info info = brine_py_last_info();
    brine_cmp_side a = {pa.text, pa.text_len, pa.trace, pa.trace_len, 0};
    brine_cmp_side b = {text, text_len, trace, trace_len,
                        info.mem_refused > 0 || info.timed_out};
    brine_cmp_result r;
    brine_compare(data, len, &a, &pa.err, &b, &r);
    if (brine_explain_enabled()) {
        /* brine fuzz asks what this input is: say it, never abort */
        const quirk *q = r.verdict == BRINE_CMP_DIVERGE ? known_quirk(data, len, &r, &pa, text)
                                                        : NULL;
        char why[512] = "";
        const char *verdict = "agree", *sig = "-";
        if (r.verdict == BRINE_CMP_NO_VERDICT) {
            verdict = "no-verdict";
            snprintf(why, sizeof why, "%s", r.no_verdict_reason ? r.no_verdict_reason : "");
        } else if (q) {
            verdict = "quirk";
            sig = q->name;
            snprintf(why, sizeof why, "%s", q->note);
        } else if (r.verdict == BRINE_CMP_DIVERGE) {
            verdict = "diverge";
            sig = r.signature;
            explain_divergence(&r, &a, &b, why, sizeof why);
        }
        brine_explain_write(data, len, verdict, sig, why, text, text_len, trace, trace_len);
        brine_pkl_answer_free(&pa);
        return 0;
    }
    if (r.verdict == BRINE_CMP_AGREE) {
        g_agree++;
    } else if (r.verdict == BRINE_CMP_NO_VERDICT) {
        g_no_verdict++;
    } else if (known_quirk(data, len, &r, &pa, text)) {
        g_quirks++;
    } else {
        g_diverged++;
        bool show = !g_keep_going || first_time(r.signature);
        if (show) {
            char *rep = brine_cmp_report(data, len, &a, &b, &r, 0);
            fprintf(stderr, "\n==== libpkl and %s diverge\n%s", brine_py_name(),
                    rep ? rep : "(no memory for the report)\n");
            if (pa.err.code != PKL_OK)
                fprintf(stderr, "libpkl: %s at offset %zu: %s\n", pkl_code_name(pa.err.code),
                        pa.err.pos, pa.err.msg ? pa.err.msg : "");
            free(rep);
        }
        if (!g_keep_going) {
            brine_pkl_answer_free(&pa);
            brine_fuzz_fail("divergence %s", r.signature);
        }
    }
    brine_pkl_answer_free(&pa);
    return 0;
}

void brine_fuzz_cleanup(void) {
    if (g_n)
        fprintf(stderr,
                "fuzz_pkl_vs_cpython: %llu inputs: %llu agree, %llu no verdict (CPython "
                "ran into a limit), %llu known quirks (corpus/regress), %llu divergences (%zu signatures)\n",
                g_n, g_agree, g_no_verdict, g_quirks, g_diverged, g_nseen);
    brine_py_finish();
}
