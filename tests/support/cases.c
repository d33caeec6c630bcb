#include "cases.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------ */
/* Small owned strings */

static char *dupn(const char *s, size_t n) {
    char *r = malloc(n + 1);
    if (!r)
        abort();
    memcpy(r, s, n);
    r[n] = '\0';
    return r;
}

typedef struct sbuf {
    char *p;
    size_t len, cap;
} sbuf;

static void sb_put(sbuf *b, const char *s, size_t n) {
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->len + n + 1)
            cap *= 2;
        b->p = realloc(b->p, cap);
        if (!b->p)
            abort();
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static bool errf(char *errbuf, size_t errlen, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(errbuf, errlen, fmt, ap);
    va_end(ap);
    return false;
}

/* ------------------------------------------------------------------------ */
/* Unescaping the pickle line */

static int hexval(char c) {
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static bool unescape(const char *s, size_t n, uint8_t **out, size_t *outlen, const char **why) {
    uint8_t *r = malloc(n + 1);
    size_t k = 0;
    if (!r)
        abort();
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\\') {
            if (i + 1 >= n) {
                *why = "lone backslash at the end";
                goto bad;
            }
            char e = s[i + 1];
            switch (e) {
            case '\\': r[k++] = '\\'; i += 2; break;
            case '\'': r[k++] = '\''; i += 2; break;
            case '"': r[k++] = '"'; i += 2; break;
            case 'n': r[k++] = '\n'; i += 2; break;
            case 'r': r[k++] = '\r'; i += 2; break;
            case 't': r[k++] = '\t'; i += 2; break;
            case 'x': {
                int h = i + 3 < n ? hexval(s[i + 2]) : -1;
                int l = i + 3 < n ? hexval(s[i + 3]) : -1;
                if (h < 0 || l < 0) {
                    *why = "bad \\x escape";
                    goto bad;
                }
                r[k++] = (uint8_t)(h * 16 + l);
                i += 4;
                break;
            }
            default:
                *why = "unknown escape";
                goto bad;
            }
        } else if (c >= 0x20 && c < 0x7f) {
            r[k++] = c;
            i++;
        } else {
            *why = "unescaped control or non-ASCII character";
            goto bad;
        }
    }
    *out = r;
    *outlen = k;
    return true;
bad:
    free(r);
    return false;
}

/* ------------------------------------------------------------------------ */
/* The case file */

typedef struct lines {
    char **v;   /* pointers into one buffer, '\n' replaced by '\0' */
    size_t *len;
    size_t n;
    char *buf;
} lines;

static bool read_lines(const char *path, lines *L, char *errbuf, size_t errlen) {
    memset(L, 0, sizeof *L);
    FILE *f = fopen(path, "rb");
    if (!f)
        return errf(errbuf, errlen, "cannot open %s", path);
    sbuf b = {0};
    char tmp[65536];
    size_t got;
    while ((got = fread(tmp, 1, sizeof tmp, f)) > 0)
        sb_put(&b, tmp, got);
    fclose(f);
    if (!b.p)
        return errf(errbuf, errlen, "%s is empty", path);
    size_t cap = 0;
    char *p = b.p, *end = b.p + b.len;
    while (p < end) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        char *e = nl ? nl : end;
        if (L->n == cap) {
            cap = cap ? cap * 2 : 1024;
            L->v = realloc(L->v, cap * sizeof *L->v);
            L->len = realloc(L->len, cap * sizeof *L->len);
            if (!L->v || !L->len)
                abort();
        }
        *e = '\0';
        L->v[L->n] = p;
        L->len[L->n] = (size_t)(e - p);
        L->n++;
        p = e + 1;
    }
    L->buf = b.p;
    return true;
}

static void free_lines(lines *L) {
    free(L->v);
    free(L->len);
    free(L->buf);
}

static bool starts(const char *s, const char *prefix) {
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* Parses an expectation starting at line i whose text after the key is
   `rest`. On return *i is the first line after it. */
static bool read_block(const lines *L, size_t *i, const char *rest, char **out, char *errbuf,
                       size_t errlen) {
    size_t lineno = *i;
    while (*rest == ' ')
        rest++;
    if (*rest) {
        const char *sp = strchr(rest, ' ');
        if (!starts(rest, "error ") || !sp || strchr(sp + 1, ' '))
            return errf(errbuf, errlen, "line %zu: expected 'error <class>' or a block",
                        lineno);
        sbuf b = {0};
        sb_put(&b, rest, strlen(rest));
        sb_put(&b, "\n", 1);
        *out = b.p;
        return true;
    }
    sbuf b = {0};
    while (*i < L->n && starts(L->v[*i], "  ")) {
        sb_put(&b, L->v[*i] + 2, L->len[*i] - 2);
        sb_put(&b, "\n", 1);
        (*i)++;
    }
    if (!b.p)
        return errf(errbuf, errlen, "line %zu: empty expectation block", lineno);
    *out = b.p;
    return true;
}

bool dcases_load(const char *path, dcases *out, char *errbuf, size_t errlen) {
    memset(out, 0, sizeof *out);
    lines L;
    if (!read_lines(path, &L, errbuf, errlen))
        return false;
    size_t cap = 0;
    size_t i = 0;
    bool ok = true;
    while (i < L.n && !starts(L.v[i], "== ")) {
        if (L.len[i] && L.v[i][0] != '#') {
            ok = errf(errbuf, errlen, "line %zu: text before the first case", i + 1);
            goto done;
        }
        i++;
    }
    dcase *cur = NULL;
    while (i < L.n) {
        const char *s = L.v[i];
        size_t n = L.len[i];
        size_t lineno = i + 1;
        i++;
        if (starts(s, "== ")) {
            if (out->n == cap) {
                cap = cap ? cap * 2 : 256;
                out->v = realloc(out->v, cap * sizeof *out->v);
                if (!out->v)
                    abort();
            }
            cur = &out->v[out->n++];
            memset(cur, 0, sizeof *cur);
            cur->name = dupn(s + 3, n - 3);
            cur->line = (int)lineno;
            const char *us = strchr(cur->name, '_');
            cur->area = dupn(cur->name, us ? (size_t)(us - cur->name) : strlen(cur->name));
            if (!*cur->name || dcases_find(&(dcases){out->v, out->n - 1}, cur->name)) {
                ok = errf(errbuf, errlen, "line %zu: empty or repeated case name", lineno);
                goto done;
            }
        } else if (n == 0) {
            continue;
        } else if (!cur) {
            ok = errf(errbuf, errlen, "line %zu: outside a case", lineno);
            goto done;
        } else if (starts(s, "# ")) {
            if (cur->desc || cur->pickle_text) {
                ok = errf(errbuf, errlen, "line %zu: misplaced description", lineno);
                goto done;
            }
            cur->desc = dupn(s + 2, n - 2);
        } else if (starts(s, "pickle:")) {
            if (cur->pickle_text) {
                ok = errf(errbuf, errlen, "line %zu: second pickle line", lineno);
                goto done;
            }
            const char *t = s + 7;
            while (*t == ' ')
                t++;
            cur->pickle_text = dupn(t, strlen(t));
            const char *why = NULL;
            if (!unescape(t, strlen(t), &cur->data, &cur->len, &why)) {
                ok = errf(errbuf, errlen, "line %zu: %s", lineno, why);
                goto done;
            }
        } else if (starts(s, "expect:")) {
            if (cur->expect) {
                ok = errf(errbuf, errlen, "line %zu: second expect", lineno);
                goto done;
            }
            if (!(ok = read_block(&L, &i, s + 7, &cur->expect, errbuf, errlen)))
                goto done;
        } else if (strcmp(s, "c-py-differ: yes") == 0) {
            cur->differ = true;
        } else if (starts(s, "expect-py:")) {
            if (!(ok = read_block(&L, &i, s + 10, &cur->expect_py, errbuf, errlen)))
                goto done;
        } else {
            ok = errf(errbuf, errlen, "line %zu: unexpected line '%.60s'", lineno, s);
            goto done;
        }
    }
    for (size_t k = 0; k < out->n; k++) {
        dcase *c = &out->v[k];
        if (!c->desc || !c->pickle_text) {
            ok = errf(errbuf, errlen, "case %s (line %d): needs a description and a pickle",
                      c->name, c->line);
            goto done;
        }
        if (c->differ != (c->expect_py != NULL)) {
            ok = errf(errbuf, errlen, "case %s: c-py-differ and expect-py go together", c->name);
            goto done;
        }
    }
done:
    free_lines(&L);
    if (!ok)
        dcases_free(out);
    return ok;
}

void dcases_free(dcases *set) {
    for (size_t i = 0; i < set->n; i++) {
        dcase *c = &set->v[i];
        free(c->name);
        free(c->area);
        free(c->desc);
        free(c->pickle_text);
        free(c->data);
        free(c->expect);
        free(c->expect_py);
    }
    free(set->v);
    set->v = NULL;
    set->n = 0;
}

const dcase *dcases_find(const dcases *set, const char *name) {
    for (size_t i = 0; i < set->n; i++)
        if (strcmp(set->v[i].name, name) == 0)
            return &set->v[i];
    return NULL;
}

pkl_code dcase_expected_code(const dcase *c) {
    if (!c->expect)
        return PKL_CODE_COUNT;
    if (!starts(c->expect, "error "))
        return PKL_OK;
    const char *cls = c->expect + 6;
    size_t n = strcspn(cls, "\n");
    pkl_code code = pkl_code_from_name(cls, n);
    return code == PKL_OK ? PKL_CODE_COUNT : code;
}

/* ------------------------------------------------------------------------ */

char *escape_bytes(const uint8_t *p, size_t n, size_t max_chars) {
    sbuf b = {0};
    sb_put(&b, "", 0);
    for (size_t i = 0; i < n; i++) {
        char tmp[8];
        uint8_t c = p[i];
        if (c == '\\')
            sb_put(&b, "\\\\", 2);
        else if (c == '\n')
            sb_put(&b, "\\n", 2);
        else if (c >= 0x20 && c < 0x7f) {
            tmp[0] = (char)c;
            sb_put(&b, tmp, 1);
        } else {
            snprintf(tmp, sizeof tmp, "\\x%02x", c);
            sb_put(&b, tmp, 4);
        }
        if (max_chars && b.len > max_chars && i + 1 < n) {
            char more[48];
            snprintf(more, sizeof more, "... (%zu bytes)", n);
            sb_put(&b, more, strlen(more));
            break;
        }
    }
    return b.p;
}

size_t walk_opcodes(const uint8_t *p, size_t n, bool seen[256]) {
    size_t i = 0, count = 0;
    while (i < n) {
        const pkl_opinfo *op = pkl_opcode_info(p[i]);
        if (!op)
            break;
        seen[p[i]] = true;
        count++;
        i++;
        if (op->code == PKL_OP_STOP)
            break;
        switch (op->layout) {
        case PKL_LAYOUT_NONE:
            break;
        case PKL_LAYOUT_FIXED:
            i += op->width;
            break;
        case PKL_LAYOUT_LINE:
        case PKL_LAYOUT_LINE2:
            for (int k = op->layout == PKL_LAYOUT_LINE2 ? 2 : 1; k > 0 && i < n; k--) {
                const uint8_t *nl = memchr(p + i, '\n', n - i);
                i = nl ? (size_t)(nl - p) + 1 : n;
            }
            break;
        case PKL_LAYOUT_COUNTED: {
            if (i + op->width > n)
                return count;
            uint64_t len = 0;
            for (unsigned k = 0; k < op->width; k++)
                len |= (uint64_t)p[i + k] << (8 * k);
            i += op->width;
            if (len > n - i)
                return count;
            i += (size_t)len;
            break;
        }
        default:
            return count;
        }
    }
    return count;
}

/* ------------------------------------------------------------------------ */
/* The peak allocator: a size header per block keeps `live` exact. */

typedef struct phdr {
    size_t size;
    size_t pad;
} phdr;

/* Counts the call; true when this one must fail. */
static bool note(peak_alc *a, size_t size) {
    a->calls++;
    if (size > a->largest)
        a->largest = size;
    return a->fail_only && a->calls == a->fail_only;
}

static void *p_malloc(void *ctx, size_t size) {
    peak_alc *a = ctx;
    if (note(a, size) || size > SIZE_MAX - sizeof(phdr))
        return NULL;
    phdr *h = malloc(sizeof(phdr) + size);
    if (!h)
        return NULL;
    h->size = size;
    a->live += size;
    a->live_blocks++;
    if (a->live > a->peak)
        a->peak = a->live;
    return h + 1;
}

static void *p_realloc(void *ctx, void *ptr, size_t old_size, size_t size) {
    peak_alc *a = ctx;
    (void)old_size;
    if (note(a, size) || size > SIZE_MAX - sizeof(phdr))
        return NULL;
    phdr *h = ptr ? (phdr *)ptr - 1 : NULL;
    size_t before = h ? h->size : 0;
    phdr *nh = realloc(h, sizeof(phdr) + size);
    if (!nh)
        return NULL;
    if (!h)
        a->live_blocks++;
    nh->size = size;
    a->live = a->live - before + size;
    if (a->live > a->peak)
        a->peak = a->live;
    return nh + 1;
}

static void p_free(void *ctx, void *ptr) {
    peak_alc *a = ctx;
    if (!ptr)
        return;
    phdr *h = (phdr *)ptr - 1;
    a->live -= h->size;
    a->live_blocks--;
    free(h);
}

void peak_alc_init(peak_alc *a) {
    memset(a, 0, sizeof *a);
    a->alc.malloc = p_malloc;
    a->alc.realloc = p_realloc;
    a->alc.free = p_free;
    a->alc.ctx = a;
}

const char *canon_body(const char *text) {
    const char *nl = strchr(text, '\n');
    return nl ? nl + 1 : text;
}

size_t first_diff_line(const char *a, const char *b) {
    size_t line = 1;
    for (;; a++, b++) {
        if (*a != *b)
            return line;
        if (!*a)
            return 0;
        if (*a == '\n')
            line++;
    }
}

/* ---- the shared case-file fixture */

#ifndef BRINE_TEST_DATA
#error "tests/CMakeLists.txt defines BRINE_TEST_DATA"
#endif

dcases g_cases;
bool g_loaded;
char g_load_error[512];

int cases_group_setup(void **state) {
    (void)state;
    g_loaded = dcases_load(BRINE_TEST_DATA "/decode_cases.txt", &g_cases, g_load_error,
                           sizeof g_load_error);
    return 0;
}

int cases_group_teardown(void **state) {
    (void)state;
    dcases_free(&g_cases);
    return 0;
}
