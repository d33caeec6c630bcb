/* JSON reader and string writer (json.h).
 *
 * Parsing keeps an explicit stack of the containers still open; each open
 * container collects its members in a growable scratch vector and moves
 * them into the arena when it closes, so the finished tree is a handful of
 * large blocks and freeing it is a walk over the block list.
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fileio.h"
#include "json.h"

/*------------------------------------------------------------------------------
 * Arena
 *----------------------------------------------------------------------------*/

typedef struct block {
    struct block *next;
    size_t used, cap;
    max_align_t data[];
} block;

struct brine_json_doc {
    block *blocks;
    brine_json *root;
};

static void *arena_alloc(brine_json_doc *d, size_t n) {
    n = (n + sizeof(max_align_t) - 1) / sizeof(max_align_t) * sizeof(max_align_t);
    block *b = d->blocks;
    if (!b || b->cap - b->used < n) {
        size_t cap = n > 65536 ? n : 65536;
        b = malloc(sizeof *b + cap);
        if (!b)
            return NULL;
        b->used = 0;
        b->cap = cap;
        b->next = d->blocks;
        d->blocks = b;
    }
    void *p = (char *)b->data + b->used;
    b->used += n;
    return p;
}

void brine_json_free(brine_json_doc *doc) {
    if (!doc)
        return;
    block *b = doc->blocks;
    while (b) {
        block *n = b->next;
        free(b);
        b = n;
    }
    free(doc);
}

const brine_json *brine_json_root(const brine_json_doc *doc) { return doc->root; }

/*------------------------------------------------------------------------------
 * Parser state
 *----------------------------------------------------------------------------*/

typedef struct frame {
    brine_json *v;       /* the container being built */
    brine_json **items;  /* scratch: members so far */
    const char **keys;   /* scratch (objects) */
    size_t n, cap;
    const char *pending; /* object: the key read, waiting for its value */
} frame;

typedef struct parser {
    const char *s, *end, *p;
    brine_json_doc *doc;
    frame *stack;
    size_t depth, stack_cap;
    char *err;
    size_t errlen;
    /* scratch for string decoding */
    char *sbuf;
    size_t scap;
} parser;

static void fail(parser *P, const char *fmt, ...) {
    if (!P->err || !P->errlen || P->err[0])
        return;
    char msg[160];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(P->err, P->errlen, "JSON error at byte %zu: %s", (size_t)(P->p - P->s), msg);
}

static void skip_ws(parser *P) {
    while (P->p < P->end && (*P->p == ' ' || *P->p == '\t' || *P->p == '\n' || *P->p == '\r'))
        P->p++;
}

static brine_json *new_value(parser *P, brine_json_type t) {
    brine_json *v = arena_alloc(P->doc, sizeof *v);
    if (!v) {
        fail(P, "out of memory");
        return NULL;
    }
    memset(v, 0, sizeof *v);
    v->type = t;
    return v;
}

static int scratch_put(parser *P, size_t *len, char c) {
    if (*len == P->scap) {
        size_t ncap = P->scap ? P->scap * 2 : 256;
        char *nb = realloc(P->sbuf, ncap);
        if (!nb) {
            fail(P, "out of memory");
            return -1;
        }
        P->sbuf = nb;
        P->scap = ncap;
    }
    P->sbuf[(*len)++] = c;
    return 0;
}

static int put_utf8(parser *P, size_t *len, uint32_t cp) {
    char b[4];
    int n;
    if (cp < 0x80) {
        b[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        b[0] = (char)(0xc0 | cp >> 6);
        b[1] = (char)(0x80 | (cp & 0x3f));
        n = 2;
    } else if (cp < 0x10000) {
        b[0] = (char)(0xe0 | cp >> 12);
        b[1] = (char)(0x80 | (cp >> 6 & 0x3f));
        b[2] = (char)(0x80 | (cp & 0x3f));
        n = 3;
    } else {
        b[0] = (char)(0xf0 | cp >> 18);
        b[1] = (char)(0x80 | (cp >> 12 & 0x3f));
        b[2] = (char)(0x80 | (cp >> 6 & 0x3f));
        b[3] = (char)(0x80 | (cp & 0x3f));
        n = 4;
    }
    for (int i = 0; i < n; i++)
        if (scratch_put(P, len, b[i]) != 0)
            return -1;
    return 0;
}

static int hex4(parser *P, uint32_t *out) {
    if (P->end - P->p < 4) {
        fail(P, "truncated \\u escape");
        return -1;
    }
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        char c = P->p[i];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= (uint32_t)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v |= (uint32_t)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            v |= (uint32_t)(c - 'A' + 10);
        else {
            fail(P, "bad hex digit in \\u escape");
            return -1;
        }
    }
    P->p += 4;
    *out = v;
    return 0;
}

/* A string literal at P->p (the opening quote); returns it NUL-terminated in
   the arena. */
static const char *parse_string(parser *P, size_t *out_len) {
    P->p++; /* opening quote */
    size_t len = 0;
    for (;;) {
        if (P->p >= P->end) {
            fail(P, "unterminated string");
            return NULL;
        }
        unsigned char c = (unsigned char)*P->p;
        if (c == '"') {
            P->p++;
            break;
        }
        if (c < 0x20) {
            fail(P, "control character in string");
            return NULL;
        }
        if (c != '\\') {
            if (scratch_put(P, &len, (char)c) != 0)
                return NULL;
            P->p++;
            continue;
        }
        if (++P->p >= P->end) {
            fail(P, "unterminated escape");
            return NULL;
        }
        char e = *P->p++;
        const char *simple = strchr("\"\\/bfnrt", e);
        if (e && simple) {
            static const char map[] = "\"\\/\b\f\n\r\t";
            if (scratch_put(P, &len, map[simple - "\"\\/bfnrt"]) != 0)
                return NULL;
            continue;
        }
        if (e != 'u') {
            fail(P, "bad escape \\%c", e);
            return NULL;
        }
        uint32_t cp;
        if (hex4(P, &cp) != 0)
            return NULL;
        if (cp >= 0xd800 && cp < 0xdc00 && P->end - P->p >= 6 && P->p[0] == '\\' &&
            P->p[1] == 'u') {
            const char *save = P->p;
            uint32_t lo;
            P->p += 2;
            if (hex4(P, &lo) != 0)
                return NULL;
            if (lo >= 0xdc00 && lo < 0xe000)
                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
            else
                P->p = save; /* a lone high surrogate, then another escape */
        }
        if (put_utf8(P, &len, cp) != 0)
            return NULL;
    }
    char *s = arena_alloc(P->doc, len + 1);
    if (!s) {
        fail(P, "out of memory");
        return NULL;
    }
    if (len)
        memcpy(s, P->sbuf, len);
    s[len] = '\0';
    *out_len = len;
    return s;
}

static brine_json *parse_number(parser *P) {
    const char *q = P->p;
    if (q < P->end && *q == '-')
        q++;
    if (q >= P->end || *q < '0' || *q > '9') {
        fail(P, "bad number");
        return NULL;
    }
    if (*q == '0')
        q++;
    else
        while (q < P->end && *q >= '0' && *q <= '9')
            q++;
    if (q < P->end && *q == '.') {
        q++;
        if (q >= P->end || *q < '0' || *q > '9') {
            fail(P, "bad fraction");
            return NULL;
        }
        while (q < P->end && *q >= '0' && *q <= '9')
            q++;
    }
    if (q < P->end && (*q == 'e' || *q == 'E')) {
        q++;
        if (q < P->end && (*q == '+' || *q == '-'))
            q++;
        if (q >= P->end || *q < '0' || *q > '9') {
            fail(P, "bad exponent");
            return NULL;
        }
        while (q < P->end && *q >= '0' && *q <= '9')
            q++;
    }
    char tmp[64];
    size_t n = (size_t)(q - P->p);
    if (n >= sizeof tmp) {
        fail(P, "number too long");
        return NULL;
    }
    memcpy(tmp, P->p, n);
    tmp[n] = '\0';
    brine_json *v = new_value(P, BRINE_JSON_NUMBER);
    if (!v)
        return NULL;
    v->num = strtod(tmp, NULL);
    P->p = q;
    return v;
}

static int lit(parser *P, const char *word) {
    size_t n = strlen(word);
    if ((size_t)(P->end - P->p) < n || memcmp(P->p, word, n) != 0) {
        fail(P, "unexpected character");
        return -1;
    }
    P->p += n;
    return 0;
}

static int push_frame(parser *P, brine_json *v) {
    if (P->depth == P->stack_cap) {
        size_t ncap = P->stack_cap ? P->stack_cap * 2 : 32;
        frame *ns = realloc(P->stack, ncap * sizeof *ns);
        if (!ns) {
            fail(P, "out of memory");
            return -1;
        }
        P->stack = ns;
        P->stack_cap = ncap;
    }
    frame *f = &P->stack[P->depth++];
    memset(f, 0, sizeof *f);
    f->v = v;
    return 0;
}

static int frame_add(parser *P, frame *f, brine_json *item) {
    if (f->n == f->cap) {
        size_t ncap = f->cap ? f->cap * 2 : 8;
        brine_json **ni = realloc(f->items, ncap * sizeof *ni);
        if (!ni) {
            fail(P, "out of memory");
            return -1;
        }
        f->items = ni;
        if (f->v->type == BRINE_JSON_OBJECT) {
            const char **nk = realloc(f->keys, ncap * sizeof *nk);
            if (!nk) {
                fail(P, "out of memory");
                return -1;
            }
            f->keys = nk;
        }
        f->cap = ncap;
    }
    if (f->v->type == BRINE_JSON_OBJECT)
        f->keys[f->n] = f->pending;
    f->items[f->n++] = item;
    f->pending = NULL;
    return 0;
}

/* Moves a closed container's members into the arena. */
static int close_frame(parser *P, frame *f) {
    brine_json *v = f->v;
    v->len = f->n;
    if (f->n) {
        v->items = arena_alloc(P->doc, f->n * sizeof *v->items);
        if (!v->items) {
            fail(P, "out of memory");
            return -1;
        }
        memcpy(v->items, f->items, f->n * sizeof *v->items);
        if (v->type == BRINE_JSON_OBJECT) {
            v->keys = arena_alloc(P->doc, f->n * sizeof *v->keys);
            if (!v->keys) {
                fail(P, "out of memory");
                return -1;
            }
            memcpy(v->keys, f->keys, f->n * sizeof *v->keys);
        }
    }
    free(f->items);
    free(f->keys);
    f->items = NULL;
    f->keys = NULL;
    return 0;
}

/* One value at P->p: a scalar is returned; a container is pushed (and
   returned, so the caller can attach it to its parent). */
static brine_json *parse_value(parser *P) {
    skip_ws(P);
    if (P->p >= P->end) {
        fail(P, "unexpected end of input");
        return NULL;
    }
    brine_json *v;
    switch (*P->p) {
    case '{':
    case '[':
        v = new_value(P, *P->p == '{' ? BRINE_JSON_OBJECT : BRINE_JSON_ARRAY);
        if (!v || push_frame(P, v) != 0)
            return NULL;
        P->p++;
        return v;
    case '"': {
        size_t len = 0;
        const char *s = parse_string(P, &len);
        if (!s || !(v = new_value(P, BRINE_JSON_STRING)))
            return NULL;
        v->str = s;
        v->len = len;
        return v;
    }
    case 't':
        return lit(P, "true") == 0 ? new_value(P, BRINE_JSON_TRUE) : NULL;
    case 'f':
        return lit(P, "false") == 0 ? new_value(P, BRINE_JSON_FALSE) : NULL;
    case 'n':
        return lit(P, "null") == 0 ? new_value(P, BRINE_JSON_NULL) : NULL;
    default:
        return parse_number(P);
    }
}

static int run(parser *P) {
    brine_json *root = parse_value(P);
    if (!root)
        return -1;
    P->doc->root = root;
    while (P->depth) {
        frame *f = &P->stack[P->depth - 1];
        bool obj = f->v->type == BRINE_JSON_OBJECT;
        skip_ws(P);
        if (P->p >= P->end) {
            fail(P, "unexpected end of input inside %s", obj ? "an object" : "an array");
            return -1;
        }
        char c = *P->p;
        if (c == (obj ? '}' : ']')) {
            P->p++;
            if (close_frame(P, f) != 0)
                return -1;
            P->depth--;
            continue;
        }
        if (f->n) {
            if (c != ',') {
                fail(P, "expected ',' or '%c'", obj ? '}' : ']');
                return -1;
            }
            P->p++;
            skip_ws(P);
        }
        if (obj) {
            if (P->p >= P->end || *P->p != '"') {
                fail(P, "expected a member name");
                return -1;
            }
            size_t klen;
            f->pending = parse_string(P, &klen);
            if (!f->pending)
                return -1;
            skip_ws(P);
            if (P->p >= P->end || *P->p != ':') {
                fail(P, "expected ':'");
                return -1;
            }
            P->p++;
        }
        brine_json *v = parse_value(P);
        if (!v)
            return -1;
        /* parse_value may have pushed: f may have moved */
        size_t at = (v->type == BRINE_JSON_OBJECT || v->type == BRINE_JSON_ARRAY) &&
                            P->stack[P->depth - 1].v == v
                        ? P->depth - 2
                        : P->depth - 1;
        if (frame_add(P, &P->stack[at], v) != 0)
            return -1;
    }
    skip_ws(P);
    if (P->p != P->end) {
        fail(P, "trailing data after the value");
        return -1;
    }
    return 0;
}

brine_json_doc *brine_json_parse(const char *text, size_t len, char *err, size_t errlen) {
    parser P;
    memset(&P, 0, sizeof P);
    P.s = P.p = text;
    P.end = text + len;
    P.err = err;
    P.errlen = errlen;
    if (err && errlen)
        err[0] = '\0';
    P.doc = calloc(1, sizeof *P.doc);
    if (!P.doc) {
        fail(&P, "out of memory");
        return NULL;
    }
    int rc = run(&P);
    for (size_t i = 0; i < P.depth; i++) {
        free(P.stack[i].items);
        free(P.stack[i].keys);
    }
    free(P.stack);
    free(P.sbuf);
    if (rc != 0) {
        brine_json_free(P.doc);
        return NULL;
    }
    return P.doc;
}

brine_json_doc *brine_json_parse_file(const char *path, char *err, size_t errlen) {
    uint8_t *buf;
    size_t len;
    if (brine_read_file(path, &buf, &len) != 0) {
        if (err && errlen)
            snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return NULL;
    }
    brine_json_doc *d = brine_json_parse((const char *)buf, len, err, errlen);
    free(buf);
    if (!d && err && errlen) {
        char tmp[256];
        snprintf(tmp, sizeof tmp, "%s", err);
        snprintf(err, errlen, "%s: %s", path, tmp);
    }
    return d;
}

const brine_json *brine_json_get(const brine_json *v, const char *key) {
    if (!v || v->type != BRINE_JSON_OBJECT)
        return NULL;
    for (size_t i = 0; i < v->len; i++)
        if (strcmp(v->keys[i], key) == 0)
            return v->items[i];
    return NULL;
}

const char *brine_json_get_str(const brine_json *v, const char *key, const char *dflt) {
    const brine_json *m = brine_json_get(v, key);
    return m && m->type == BRINE_JSON_STRING ? m->str : dflt;
}

/*------------------------------------------------------------------------------
 * Writer
 *----------------------------------------------------------------------------*/

/* Decodes one UTF-8 sequence (surrogates allowed, as WTF-8); returns its
   length, or 0 when s does not start a valid sequence. */
static size_t utf8_decode(const unsigned char *s, size_t n, uint32_t *cp) {
    if (s[0] < 0x80) {
        *cp = s[0];
        return 1;
    }
    size_t need;
    uint32_t v, min;
    if ((s[0] & 0xe0) == 0xc0) {
        need = 2;
        v = s[0] & 0x1fu;
        min = 0x80;
    } else if ((s[0] & 0xf0) == 0xe0) {
        need = 3;
        v = s[0] & 0x0fu;
        min = 0x800;
    } else if ((s[0] & 0xf8) == 0xf0) {
        need = 4;
        v = s[0] & 0x07u;
        min = 0x10000;
    } else {
        return 0;
    }
    if (n < need)
        return 0;
    for (size_t i = 1; i < need; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        v = v << 6 | (s[i] & 0x3fu);
    }
    if (v < min || v > 0x10ffff)
        return 0;
    *cp = v;
    return need;
}

void brine_json_write_str(FILE *f, const char *s, size_t len) {
    const unsigned char *p = (const unsigned char *)s;
    fputc('"', f);
    size_t i = 0;
    while (i < len) {
        unsigned char c = p[i];
        if (c == '"' || c == '\\') {
            fputc('\\', f);
            fputc(c, f);
            i++;
        } else if (c >= 0x20 && c < 0x7f) {
            fputc(c, f);
            i++;
        } else if (c == '\n') {
            fputs("\\n", f);
            i++;
        } else if (c == '\t') {
            fputs("\\t", f);
            i++;
        } else {
            uint32_t cp;
            size_t k = utf8_decode(p + i, len - i, &cp);
            if (!k) {
                cp = 0xfffd;
                k = 1;
            }
            if (cp >= 0x10000) {
                cp -= 0x10000;
                fprintf(f, "\\u%04x\\u%04x", 0xd800u + (cp >> 10), 0xdc00u + (cp & 0x3ffu));
            } else {
                fprintf(f, "\\u%04x", (unsigned)cp);
            }
            i += k;
        }
    }
    fputc('"', f);
}
