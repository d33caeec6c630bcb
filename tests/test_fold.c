/* Value-level folds (harness/fold.h) against tests/data/fold_cases.txt,
 * whose texts all come from CPython: values pickled by every local CPython
 * (2.7, 3.6+) at every protocol and loaded by the oracle, and crafted
 * pickles paired with what CPython's built-ins make of the same request
 * (tests/data/gen_fold_cases.py). Plus idempotence, error documents,
 * depth and memory limits. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "canon_read.h"
#include "fold.h"
#include "test_support.h"
#include "value.h"

#define RAW_HEADER "brine-canonical 1 raw\n"
#define VALUE_HEADER "brine-canonical 1 value\n"

typedef struct ftext {
    char *producers; /* "cpython-3.8-c:0-5 ...", "crafted", "value" */
    char *doc;       /* raw document, header included */
    size_t len, cap;
} ftext;

typedef struct fentry {
    char *name;
    int line;
    bool crafted;
    char *expect; /* crafted: "value" or "unchanged <exception>" */
    char *deviant; /* producers whose pickle loads to another value, or NULL */
    uint8_t *pickle; /* crafted: the pickle bytes */
    size_t plen;
    ftext *t;
    size_t n;
} fentry;

static fentry *g_e;
static size_t g_n;
static char g_err[256];

static char *dupn(const char *s, size_t n) {
    char *p = malloc(n + 1);
    assert_non_null(p);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

static void text_append(ftext *t, const char *s, size_t n) {
    if (t->len + n + 1 > t->cap) {
        t->cap = (t->len + n + 1) * 2;
        t->doc = realloc(t->doc, t->cap);
        assert_non_null(t->doc);
    }
    memcpy(t->doc + t->len, s, n);
    t->len += n;
    t->doc[t->len] = '\0';
}

/* Reads the case file; false with g_err on any line it does not know (a
   skipped case would be a case counted as passed). */
static bool load_cases(void) {
    FILE *fp = fopen(BRINE_TEST_DATA "/fold_cases.txt", "r");
    if (!fp) {
        snprintf(g_err, sizeof g_err, "cannot open fold_cases.txt");
        return false;
    }
    char line[8192];
    int ln = 0;
    fentry *e = NULL;
    ftext *t = NULL;
    while (fgets(line, sizeof line, fp)) {
        ln++;
        size_t n = strlen(line);
        if (n == sizeof line - 1 && line[n - 1] != '\n') {
            snprintf(g_err, sizeof g_err, "line %d too long", ln);
            fclose(fp);
            return false;
        }
        if (n && line[n - 1] == '\n')
            line[--n] = '\0';
        if (n == 0 || line[0] == '#')
            continue;
        if (strncmp(line, "== ", 3) == 0) {
            g_e = realloc(g_e, (g_n + 1) * sizeof *g_e);
            assert_non_null(g_e);
            e = &g_e[g_n++];
            memset(e, 0, sizeof *e);
            e->name = dupn(line + 3, n - 3);
            e->line = ln;
            t = NULL;
        } else if (!e) {
            break;
        } else if (strncmp(line, "-- ", 3) == 0) {
            e->t = realloc(e->t, (e->n + 1) * sizeof *e->t);
            assert_non_null(e->t);
            t = &e->t[e->n++];
            memset(t, 0, sizeof *t);
            t->producers = dupn(line + 3, n - 3);
            text_append(t, RAW_HEADER, strlen(RAW_HEADER));
        } else if (strncmp(line, "| ", 2) == 0 && t) {
            text_append(t, line + 2, n - 2);
            text_append(t, "\n", 1);
        } else if (strcmp(line, "kind value") == 0 || strcmp(line, "kind crafted") == 0) {
            e->crafted = line[5] == 'c';
        } else if (strncmp(line, "expect ", 7) == 0) {
            e->expect = dupn(line + 7, n - 7);
        } else if (strncmp(line, "deviant ", 8) == 0 && strchr(line, ':')) {
            /* producers up to the ": " that starts the reason */
            const char *r = strstr(line, ": ");
            e->deviant = dupn(line + 8, r ? (size_t)(r - line) - 8 : n - 8);
        } else if (strncmp(line, "pickle ", 7) == 0) {
            /* printable bytes as themselves, others as \xNN */
            e->pickle = malloc(n);
            assert_non_null(e->pickle);
            for (size_t k = 7; k < n; k++) {
                unsigned v;
                if (line[k] == '\\' && k + 3 < n && line[k + 1] == 'x' && sscanf(line + k + 2, "%2x", &v) == 1) {
                    e->pickle[e->plen++] = (uint8_t)v;
                    k += 3;
                } else {
                    e->pickle[e->plen++] = (uint8_t)line[k];
                }
            }
        } else if (strncmp(line, "expr ", 5) == 0) {
            continue;
        } else {
            snprintf(g_err, sizeof g_err, "line %d: unknown line", ln);
            fclose(fp);
            return false;
        }
    }
    fclose(fp);
    if (g_n == 0) {
        snprintf(g_err, sizeof g_err, "no entries");
        return false;
    }
    for (size_t i = 0; i < g_n; i++) {
        if (g_e[i].n == 0 || (g_e[i].crafted && (!g_e[i].expect || !g_e[i].pickle))) {
            snprintf(g_err, sizeof g_err, "entry %s is incomplete", g_e[i].name);
            return false;
        }
    }
    return true;
}

static bool g_loaded_ok;

static int setup(void **state) {
    (void)state;
    g_loaded_ok = load_cases();
    return 0;
}

static int teardown(void **state) {
    (void)state;
    for (size_t i = 0; i < g_n; i++) {
        for (size_t j = 0; j < g_e[i].n; j++) {
            free(g_e[i].t[j].producers);
            free(g_e[i].t[j].doc);
        }
        free(g_e[i].t);
        free(g_e[i].name);
        free(g_e[i].expect);
        free(g_e[i].deviant);
        free(g_e[i].pickle);
    }
    free(g_e);
    return 0;
}

static void require_cases(void) {
    if (!g_loaded_ok)
        fail_msg("tests/data/fold_cases.txt: %s", g_err);
}

/* The value-level body (without header) of a raw document; caller frees. */
static char *fold_body(const char *doc, size_t len) {
    size_t n;
    pkl_err e;
    char *v = brine_canon_normalize(doc, len, 1, &n, &e);
    if (!v)
        fail_msg("normalize failed: %s at %zu\n%s", e.msg ? e.msg : "?", e.pos, doc);
    assert_true(strncmp(v, VALUE_HEADER, strlen(VALUE_HEADER)) == 0);
    char *b = dupn(v + strlen(VALUE_HEADER), strlen(v + strlen(VALUE_HEADER)));
    free(v);
    return b;
}

static const char *raw_body(const ftext *t) { return t->doc + strlen(RAW_HEADER); }

/* Does a producer list name protocol 4 ("cpython-3.8-c:0-5", "...:2,4")? */
static bool has_protocol(const char *producers, int proto) {
    const char *p = producers;
    while ((p = strchr(p, ':')) != NULL) {
        p++;
        while (*p && *p != ' ') {
            int a = 0, b;
            while (*p >= '0' && *p <= '9')
                a = a * 10 + (*p++ - '0');
            b = a;
            if (*p == '-') {
                p++;
                b = 0;
                while (*p >= '0' && *p <= '9')
                    b = b * 10 + (*p++ - '0');
            }
            if (proto >= a && proto <= b)
                return true;
            if (*p == ',')
                p++;
        }
    }
    return false;
}

/* Does a producer list ("cpython-3.8-c:0-2,5 cpython-3.8-py:4 ...") name
   protocol `proto` of the producer `head` (e.g. "cpython-3.8-c")? */
static bool names_producer(const char *list, const char *head, size_t hl, int proto) {
    for (const char *p = list; *p;) {
        const char *colon = strchr(p, ':');
        if (!colon)
            return false;
        bool same = (size_t)(colon - p) == hl && memcmp(p, head, hl) == 0;
        p = colon + 1;
        while (*p && *p != ' ') {
            int a = 0, b;
            while (*p >= '0' && *p <= '9')
                a = a * 10 + (*p++ - '0');
            b = a;
            if (*p == '-') {
                p++;
                b = 0;
                while (*p >= '0' && *p <= '9')
                    b = b * 10 + (*p++ - '0');
            }
            if (same && proto >= a && proto <= b)
                return true;
            if (*p == ',')
                p++;
        }
        while (*p == ' ')
            p++;
    }
    return false;
}

/* A block all of whose producers are listed as deviant for its entry. */
static bool is_deviant(const fentry *e, const ftext *t) {
    if (!e->deviant)
        return false;
    for (const char *p = t->producers; *p;) {
        const char *colon = strchr(p, ':');
        if (!colon)
            return false;
        const char *head = p;
        size_t hl = (size_t)(colon - p);
        p = colon + 1;
        while (*p && *p != ' ') {
            int a = 0, b;
            while (*p >= '0' && *p <= '9')
                a = a * 10 + (*p++ - '0');
            b = a;
            if (*p == '-') {
                p++;
                b = 0;
                while (*p >= '0' && *p <= '9')
                    b = b * 10 + (*p++ - '0');
            }
            for (int pr = a; pr <= b; pr++)
                if (!names_producer(e->deviant, head, hl, pr))
                    return false;
            if (*p == ',')
                p++;
        }
        while (*p == ' ')
            p++;
    }
    return true;
}

/* All raw texts of one value fold to one text, and it is the raw text of
   the newest protocol's pickle (5, where bytearray is native; 4 before).
   Texts of producers whose pickle CPython loads to another value (a pickler
   bug, listed as `deviant`) must fold to something else. */
static void test_fold_values_fold_to_one_text(void **state) {
    (void)state;
    require_cases();
    size_t values = 0, texts = 0, deviant = 0, failed = 0;
    for (size_t i = 0; i < g_n; i++) {
        const fentry *e = &g_e[i];
        if (e->crafted)
            continue;
        values++;
        char *ref = NULL;
        const ftext *top = NULL;
        int top_proto = -1;
        for (size_t j = 0; j < e->n; j++) {
            const ftext *t = &e->t[j];
            texts++;
            if (is_deviant(e, t))
                continue;
            int pr = has_protocol(t->producers, 5) ? 5 : has_protocol(t->producers, 4) ? 4 : -1;
            if (pr > top_proto) {
                top_proto = pr;
                top = t;
            }
            char *v = fold_body(t->doc, t->len);
            if (!ref) {
                ref = v;
                continue;
            }
            if (strcmp(v, ref) != 0 && failed++ < 10)
                print_message("%s: [%s] folds to\n%s\nbut [%s] to\n%s\n", e->name, e->t[0].producers,
                              ref, t->producers, v);
            free(v);
        }
        for (size_t j = 0; j < e->n; j++) {
            if (!is_deviant(e, &e->t[j]))
                continue;
            deviant++;
            char *v = fold_body(e->t[j].doc, e->t[j].len);
            if (ref && strcmp(v, ref) == 0 && failed++ < 10)
                print_message("%s: deviant [%s] folds to the value's text\n", e->name, e->t[j].producers);
            free(v);
        }
        if (!top || !ref) {
            failed++;
            print_message("%s: no protocol-4 or -5 text\n", e->name);
        } else if (strcmp(ref, raw_body(top)) != 0 && failed++ < 10) {
            print_message("%s: value text\n%s\nis not the protocol-%d raw text\n%s\n", e->name, ref,
                          top_proto, raw_body(top));
        }
        free(ref);
    }
    print_message("%zu values, %zu distinct raw texts (%zu deviant)\n", values, texts, deviant);
    assert_true(values > 30);
    assert_true(deviant > 0);
    assert_int_equal(failed, 0);
}

static void test_fold_values_stay_distinct(void **state) {
    (void)state;
    require_cases();
    char **v = calloc(g_n, sizeof *v);
    assert_non_null(v);
    size_t failed = 0;
    for (size_t i = 0; i < g_n; i++)
        if (!g_e[i].crafted)
            v[i] = fold_body(g_e[i].t[0].doc, g_e[i].t[0].len);
    for (size_t i = 0; i < g_n; i++)
        for (size_t j = i + 1; j < g_n; j++)
            if (v[i] && v[j] && strcmp(v[i], v[j]) == 0) {
                failed++;
                print_message("%s and %s fold to the same text:\n%s\n", g_e[i].name, g_e[j].name, v[i]);
            }
    for (size_t i = 0; i < g_n; i++)
        free(v[i]);
    free(v);
    assert_int_equal(failed, 0);
}

static const ftext *block(const fentry *e, const char *producers) {
    for (size_t j = 0; j < e->n; j++)
        if (strcmp(e->t[j].producers, producers) == 0)
            return &e->t[j];
    fail_msg("%s: no `-- %s` text", e->name, producers);
    return NULL;
}

static void test_fold_crafted(void **state) {
    (void)state;
    require_cases();
    size_t crafted = 0, unchanged = 0, failed = 0;
    for (size_t i = 0; i < g_n; i++) {
        const fentry *e = &g_e[i];
        if (!e->crafted)
            continue;
        crafted++;
        const ftext *in = block(e, "crafted");
        bool keep = strncmp(e->expect, "unchanged", 9) == 0;
        const char *want = keep ? raw_body(in) : raw_body(block(e, "value"));
        unchanged += keep;
        char *got = fold_body(in->doc, in->len);
        if (strcmp(got, want) != 0) {
            failed++;
            print_message("%s (expect %s): folds to\n%s\nwant\n%s\n", e->name, e->expect, got, want);
        }
        free(got);
    }
    print_message("%zu crafted cases, %zu where CPython refuses\n", crafted, unchanged);
    assert_true(crafted >= 10 && unchanged >= 3);
    assert_int_equal(failed, 0);
}

/* brine_fold on documents straight from libpkl's decoder (its interned
   globals, built hash tables), not from the reader: the crafted pickles,
   whose raw texts (libpkl's = the oracle's) and expectations are recorded. */
static void test_fold_decoded_documents(void **state) {
    (void)state;
    require_cases();
    size_t n = 0;
    for (size_t i = 0; i < g_n; i++) {
        const fentry *e = &g_e[i];
        if (!e->crafted)
            continue;
        pkl_err err;
        pkl_doc *doc = pkl_load(e->pickle, e->plen, NULL, &err);
        if (!doc)
            fail_msg("%s: libpkl rejects the crafted pickle: %s", e->name, err.msg);
        char *raw = pkl_canon(doc, NULL, (size_t)1 << 30, NULL, &err);
        assert_non_null(raw);
        assert_string_equal(raw + strlen(RAW_HEADER), raw_body(block(e, "crafted")));
        free(raw);
        assert_int_equal(brine_fold(doc, &err), PKL_OK);
        char *v = pkl_canon(doc, NULL, (size_t)1 << 30, NULL, &err);
        assert_non_null(v);
        const char *want = strncmp(e->expect, "unchanged", 9) == 0 ? raw_body(block(e, "crafted"))
                                                                 : raw_body(block(e, "value"));
        if (strcmp(v + strlen(RAW_HEADER), want) != 0)
            fail_msg("%s: folds to\n%s\nwant\n%s", e->name, v + strlen(RAW_HEADER), want);
        free(v);
        pkl_doc_free(doc);
        n++;
    }
    assert_true(n >= 10);
}

/* Folding a folded text changes nothing; the raw level is the input. */
static void test_fold_idempotent_and_raw_untouched(void **state) {
    (void)state;
    require_cases();
    for (size_t i = 0; i < g_n; i++) {
        for (size_t j = 0; j < g_e[i].n; j++) {
            const ftext *t = &g_e[i].t[j];
            size_t n0, n1, n2;
            char *raw = brine_canon_normalize(t->doc, t->len, 0, &n0, NULL);
            assert_non_null(raw);
            assert_int_equal(n0, t->len);
            assert_memory_equal(raw, t->doc, n0);
            char *v1 = brine_canon_normalize(t->doc, t->len, 1, &n1, NULL);
            assert_non_null(v1);
            char *v2 = brine_canon_normalize(v1, n1, 1, &n2, NULL);
            assert_non_null(v2);
            if (n1 != n2 || memcmp(v1, v2, n1) != 0)
                fail_msg("%s [%s]: folding again changed\n%s\ninto\n%s", g_e[i].name, t->producers, v1, v2);
            free(raw);
            free(v1);
            free(v2);
        }
    }
}

static void test_fold_error_documents(void **state) {
    (void)state;
    const char *raw = RAW_HEADER "error truncated\n";
    size_t n;
    pkl_err e;
    char *v = brine_canon_normalize(raw, strlen(raw), 1, &n, &e);
    assert_non_null(v);
    assert_string_equal(v, VALUE_HEADER "error truncated\n");
    assert_int_equal(n, strlen(v));
    char *r = brine_canon_normalize(v, n, 0, &n, &e);
    assert_non_null(r);
    assert_string_equal(r, raw);
    free(v);
    free(r);
}

static void test_fold_value_document_has_no_raw_form(void **state) {
    (void)state;
    const char *doc = VALUE_HEADER "set\n  int 1\n";
    pkl_err e;
    assert_null(brine_canon_normalize(doc, strlen(doc), 0, NULL, &e));
    assert_int_equal(e.code, PKL_ERR_BAD_ARGUMENT);
    assert_null(brine_canon_normalize(doc, strlen(doc), 2, NULL, &e));
    assert_int_equal(e.code, PKL_ERR_BAD_ARGUMENT);
    char *v = brine_canon_normalize(doc, strlen(doc), 1, NULL, &e);
    assert_non_null(v);
    assert_string_equal(v, doc);
    free(v);
    /* malformed input: the reader's error comes through */
    assert_null(brine_canon_normalize(RAW_HEADER "set\n", strlen(RAW_HEADER) + 3, 1, NULL, &e));
    assert_int_equal(e.code, PKL_ERR_BAD_ARGUMENT);
}

/* n nested tuples or frozensets: protocol 2 writes tuple(list([...])) /
   frozenset(list([...])) calls (`builtin` is "tuple" or "frozenset"),
   protocol 4 the TUPLE1 / FROZENSET opcodes. Folding the first must give
   the second, without recursion. */
static char *deep_nest(const char *builtin, size_t depth, int proto, size_t *len) {
    size_t cap = 64 + depth * 24, n = 0;
    char *p = malloc(cap);
    assert_non_null(p);
    bool tuple = strcmp(builtin, "tuple") == 0;
    if (proto == 2) {
        /* the global is memoised and popped, then fetched per level */
        n = (size_t)sprintf(p, "\x80\x02" "cbuiltins\n%s\nq", builtin);
        p[n++] = '\0';
        p[n++] = '0';
        for (size_t i = 0; i < depth; i++) {
            memcpy(p + n, "h\x00]", 3);
            n += 3;
        }
        memcpy(p + n, "h\x00)R", 4); /* innermost: tuple() / frozenset() */
        n += 4;
        for (size_t i = 0; i < depth; i++) {
            memcpy(p + n, "a\x85R", 3);
            n += 3;
        }
    } else {
        memcpy(p, "\x80\x04", 2);
        n = 2;
        if (tuple) {
            p[n++] = ')';
            for (size_t i = 0; i < depth; i++)
                p[n++] = '\x85';
        } else {
            for (size_t i = 0; i <= depth; i++)
                p[n++] = '(';
            for (size_t i = 0; i <= depth; i++)
                p[n++] = '\x91';
        }
    }
    p[n++] = '.';
    *len = n;
    return p;
}

static char *canon_of_pickle(const char *data, size_t len) {
    pkl_code code;
    char *t = canon_of(data, len, NULL, &code);
    assert_int_equal(code, PKL_OK);
    return t;
}

static void check_deep(const char *builtin, size_t depth) {
    size_t n2, n4;
    char *p2 = deep_nest(builtin, depth, 2, &n2), *p4 = deep_nest(builtin, depth, 4, &n4);
    char *t2 = canon_of_pickle(p2, n2), *t4 = canon_of_pickle(p4, n4);
    assert_non_null(strstr(t2, "call"));
    char *v = fold_body(t2, strlen(t2));
    assert_string_equal(v, t4 + strlen(RAW_HEADER));
    free(v);
    free(p2);
    free(p4);
    free(t2);
    free(t4);
}

static void test_fold_deep_nesting(void **state) {
    (void)state;
    check_deep("tuple", 200000);
    /* the emitter digests each frozenset's element: keep this one shorter */
    check_deep("frozenset", 5000);
}

/* Every allocation the fold makes can fail: each budget between "nothing
   left" and "enough" gives PKL_OK or PKL_ERR_RESOURCE_LIMIT, never a crash
   or a leak (ASan's leak check runs on this binary). */
static void test_fold_memory_limit(void **state) {
    (void)state;
    require_cases();
    const fentry *e = NULL;
    for (size_t i = 0; i < g_n && !e; i++)
        if (strcmp(g_e[i].name, "set_mixed") == 0)
            e = &g_e[i];
    assert_non_null(e);
    const ftext *t = &e->t[0]; /* protocol 0: calls to fold */
    size_t ok = 0, limited = 0;
    for (size_t extra = 0; extra < 200000 && ok < 3; extra += extra < 4096 ? 64 : 4096) {
        brine_canon c;
        assert_true(brine_canon_read(t->doc, t->len, NULL, &c, NULL));
        c.doc->max_alloc = c.doc->held + extra;
        pkl_err err;
        pkl_code rc = brine_fold(c.doc, &err);
        if (rc == PKL_OK)
            ok++;
        else {
            assert_int_equal(rc, PKL_ERR_RESOURCE_LIMIT);
            assert_non_null(err.msg);
            limited++;
        }
        brine_canon_release(&c);
    }
    assert_true(limited > 0);
    assert_true(ok > 0);
}

/* ---- garbage: mutated fold-heavy documents ---- */

static uint64_t rng_state = 0x2545f4914f6cdd1dull;
static uint64_t rng(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static const char *const fold_seeds[] = {
    RAW_HEADER "call\n  global \"__builtin__\" \"set\"\n  .args\n    list\n      int 1\n"
               "      call\n        global \"builtins\" \"frozenset\"\n        .args\n          tuple\n"
               "            int 2\n  .add\n    int 3\n",
    RAW_HEADER "call #1\n  global \"builtins\" \"tuple\"\n  .args\n    list\n      ref #1\n",
    RAW_HEADER "call\n  global \"copy_reg\" \"_reconstructor\"\n  .args\n    global \"m\" \"C\"\n"
               "    global \"__builtin__\" \"list\"\n    list\n      int 1\n  .build\n    dict\n",
    RAW_HEADER "dict\n  call\n    global \"_codecs\" \"encode\"\n    .args\n      str \"a\"\n"
               "      str \"latin1\"\n  int 1\n  bytes \"a\"\n  int 2\n",
    RAW_HEADER "list\n  call #1\n    global \"builtins\" \"dict\"\n    .args\n      list\n        tuple\n"
               "          int 1\n          ref #1\n  call\n    global \"builtins\" \"bytearray\"\n"
               "    .args\n      str \"\\xff\"\n      str \"latin-1\"\n    .append\n      int 7\n",
    RAW_HEADER "call\n  call\n    global \"functools\" \"partial\"\n    .args\n      call #1\n"
               "        global \"builtins\" \"getattr\"\n        .args\n          global \"m\" \"C\" #2\n"
               "          str \"__new__\"\n    .build\n      tuple\n        ref #1\n        tuple\n"
               "          ref #2\n          int 1\n        dict\n        none\n",
};

static const char *const fold_tokens[] = {
    "call\n", "  global \"builtins\" \"set\"\n", "  global \"builtins\" \"list\"\n",
    "  global \"builtins\" \"tuple\"\n", "  .args\n", "    list\n", "    tuple\n", " #1",
    "ref #1", "  .append\n", "  .build\n", "    none\n", "  ", "int 5\n", "frozenset\n",
};

static void test_fold_garbage_never_crashes(void **state) {
    (void)state;
    char buf[2048];
    size_t folded = 0;
    for (int iter = 0; iter < 20000; iter++) {
        const char *s = fold_seeds[rng() % (sizeof fold_seeds / sizeof fold_seeds[0])];
        size_t n = strlen(s), hl = strlen(RAW_HEADER);
        memcpy(buf, s, n);
        int edits = (int)(rng() % 3);
        for (int k = 0; k < edits; k++) {
            size_t at = hl + (size_t)(rng() % (n - hl + 1));
            if (rng() % 2) {
                const char *t = fold_tokens[rng() % (sizeof fold_tokens / sizeof fold_tokens[0])];
                size_t tl = strlen(t);
                if (n + tl < sizeof buf) {
                    memmove(buf + at + tl, buf + at, n - at);
                    memcpy(buf + at, t, tl);
                    n += tl;
                }
            } else {
                size_t l = (size_t)(rng() % 12);
                if (at + l > n)
                    l = n - at;
                memmove(buf + at, buf + at + l, n - at - l);
                n -= l;
            }
        }
        size_t n1, n2;
        pkl_err e;
        char *v1 = brine_canon_normalize(buf, n, 1, &n1, &e);
        if (!v1) {
            assert_true(e.code == PKL_ERR_BAD_ARGUMENT || e.code == PKL_ERR_RESOURCE_LIMIT);
            continue;
        }
        folded++;
        char *v2 = brine_canon_normalize(v1, n1, 1, &n2, &e);
        if (!v2)
            fail_msg("value text does not read back (%s):\n%s", e.msg, v1);
        if (n1 != n2 || memcmp(v1, v2, n1) != 0)
            fail_msg("not idempotent:\n%.*s\n->\n%s\n->\n%s", (int)n, buf, v1, v2);
        free(v1);
        free(v2);
    }
    print_message("garbage: %zu of 20000 documents read and folded\n", folded);
    assert_true(folded > 1000);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fold_values_fold_to_one_text),
        cmocka_unit_test(test_fold_values_stay_distinct),
        cmocka_unit_test(test_fold_crafted),
        cmocka_unit_test(test_fold_decoded_documents),
        cmocka_unit_test(test_fold_idempotent_and_raw_untouched),
        cmocka_unit_test(test_fold_error_documents),
        cmocka_unit_test(test_fold_value_document_has_no_raw_form),
        cmocka_unit_test(test_fold_deep_nesting),
        cmocka_unit_test(test_fold_memory_limit),
        cmocka_unit_test(test_fold_garbage_never_crashes),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
