/* Canonical text v1 reader (canon_read.h).
 *
 * One pass over the lines with an explicit stack of open lines (frames).
 * Every child a line receives goes on one pointer stack (the pool); a frame
 * consumes its segment of the pool when it closes, which is when its value
 * is complete enough to build: lists, tuples and the stub slots are filled
 * then. Dicts and sets only get their entry arrays at close: their tables
 * are built once the whole graph exists (canon_maps.h), because an element
 * may refer, through a ref, to an ancestor that is still open and whose
 * hash is not known yet. Finally the graph is printed again and compared
 * with the input, which rejects every remaining non-canonical detail (set
 * order, labels nothing refers to) with one rule.
 */
#include "canon_read.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "canon_maps.h"
#include "value.h"

#define HEADER_PREFIX "brine-canonical "
#define MAX_SPACE_DEPTH 32

/* What an open line is, for the rules on its children. */
enum fk {
    FK_ROOT,   /* the document: exactly one child */
    FK_LEAF,   /* scalars, bytearray, buffer, ref: no children */
    FK_LIST,
    FK_TUPLE,
    FK_MAP,    /* dict, set, frozenset */
    FK_STUB,   /* global, call, new, persid */
    FK_MVIEW,  /* memoryview: exactly one child */
    FK_ARGS,   /* .args: at least one child */
    FK_KWARGS, /* .kwargs: key, value ... */
    FK_MUT     /* .build/.append/.add: one child; .setitem: two */
};

/* Where a stub is in its child sequence: target, .args, .kwargs, mutations. */
enum { ST_TARGET, ST_AFTER_TARGET, ST_AFTER_ARGS, ST_AFTER_KWARGS, ST_MUTS };

typedef struct frame {
    pkl_val *node;  /* the node; for slots, the stub they belong to; NULL for an
                       unlabelled tuple, which is built when it closes */
    size_t depth1;  /* depth + 1; the document frame has 0 */
    size_t start;   /* first pool entry of this frame's children */
    size_t slot;    /* pool entry holding this node in its parent's segment */
    size_t line;    /* byte offset of the line */
    uint8_t fk;
    uint8_t sub;    /* FK_STUB: stage; FK_MUT: pkl_mutkind */
    uint8_t labelled;
} frame;

/* Line of each map/tuple node, by creation index (ascending), so errors
   found after the parse can still name a line. */
typedef struct nodeline {
    uint32_t idx;
    size_t line;
} nodeline;

typedef struct rd {
    pkl_doc *doc;
    const char *t;
    size_t len;
    size_t line; /* offset of the line being read */
    frame *fr;
    size_t nfr, capfr;
    pkl_val **pool;
    size_t npool, cappool;
    pkl_val **labels;
    size_t nlabels, caplabels;
    char *sb; /* decoded payloads */
    size_t sbcap;
    nodeline *nl;
    size_t nnl, capnl;
    pkl_err err;
} rd;

/* ------------------------------------------------------------------------ */

static bool bad_at(rd *r, size_t pos, const char *msg) {
    if (r->err.code == PKL_OK) {
        r->err.code = PKL_ERR_BAD_ARGUMENT;
        r->err.msg = msg;
        r->err.pos = pos;
    }
    return false;
}

static bool bad(rd *r, const char *msg) { return bad_at(r, r->line, msg); }

static bool oom(rd *r) {
    if (r->err.code == PKL_OK) {
        r->err.code = PKL_ERR_RESOURCE_LIMIT;
        r->err.msg = "the document needs more nodes or memory than max_nodes/max_alloc allow";
        r->err.pos = r->line;
    }
    return false;
}

/* Room for `need` elements of `size` bytes in *p (capacity *cap), charged to
   the document so max_alloc bounds the reader's scratch too. */
static bool grow(rd *r, void **p, size_t *cap, size_t need, size_t size) {
    if (need <= *cap)
        return true;
    size_t ncap = *cap ? *cap : 32;
    while (ncap < need) {
        if (ncap > SIZE_MAX / 2 / size)
            return oom(r);
        ncap *= 2;
    }
    void *np = pkl_mem_realloc(r->doc, *p, *cap * size, ncap * size);
    if (!np)
        return oom(r);
    *p = np;
    *cap = ncap;
    return true;
}

static bool pool_push(rd *r, pkl_val *v) {
    if (!grow(r, (void **)&r->pool, &r->cappool, r->npool + 1, sizeof *r->pool))
        return false;
    r->pool[r->npool++] = v;
    return true;
}

static bool frame_push(rd *r, const frame *f) {
    if (!grow(r, (void **)&r->fr, &r->capfr, r->nfr + 1, sizeof *r->fr))
        return false;
    r->fr[r->nfr++] = *f;
    return true;
}

static bool note_line(rd *r, const pkl_val *v, size_t line) {
    if (!grow(r, (void **)&r->nl, &r->capnl, r->nnl + 1, sizeof *r->nl))
        return false;
    r->nl[r->nnl].idx = v->idx;
    r->nl[r->nnl].line = line;
    r->nnl++;
    return true;
}

static size_t line_of(const rd *r, const pkl_val *v) {
    size_t lo = 0, hi = r->nnl;
    while (v && lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (r->nl[mid].idx == v->idx)
            return r->nl[mid].line;
        if (r->nl[mid].idx < v->idx)
            lo = mid + 1;
        else
            hi = mid;
    }
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Payload tokens. `p` points into the line, `end` at its '\n'. */

static int hexval(char c) {
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1; /* uppercase is not canonical */
}

static bool hexn(const char *p, const char *end, int n, uint32_t *out) {
    if (end - p < n)
        return false;
    uint32_t v = 0;
    for (int i = 0; i < n; i++) {
        int h = hexval(p[i]);
        if (h < 0)
            return false;
        v = v << 4 | (uint32_t)h;
    }
    *out = v;
    return true;
}

static size_t put_utf8(char *o, uint32_t cp) {
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xc0 | cp >> 6);
        o[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) { /* surrogates too: libpkl stores str like "surrogatepass" */
        o[0] = (char)(0xe0 | cp >> 12);
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        o[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    o[0] = (char)(0xf0 | cp >> 18);
    o[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
    o[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

/* Decodes a quoted payload at *pp into r->sb + off; str mode yields libpkl's
   UTF-8 (code points), bytes mode raw bytes. Only the canonical spelling of
   each character is accepted. Sets *pp past the closing quote and *n to the
   decoded length. */
static bool parse_quoted(rd *r, const char **pp, const char *end, bool str, size_t off,
                         size_t *n) {
    const char *p = *pp;
    if (p >= end || *p != '"')
        return bad(r, "expected a quoted payload");
    p++;
    /* the decoded form is never longer than the quoted one */
    if (!grow(r, (void **)&r->sb, &r->sbcap, off + (size_t)(end - p) + 1, 1))
        return false;
    char *o = r->sb + off;
    for (;;) {
        if (p >= end)
            return bad(r, "unterminated quoted payload");
        char c = *p++;
        if (c == '"')
            break;
        if (c != '\\') {
            *o++ = c; /* the line check admitted only 0x20..0x7e */
            continue;
        }
        if (p >= end)
            return bad(r, "unterminated escape");
        char e = *p++;
        uint32_t cp;
        if (e == '"' || e == '\\') {
            *o++ = e;
        } else if (e == 'x') {
            if (!hexn(p, end, 2, &cp))
                return bad(r, "\\x needs two lowercase hex digits");
            p += 2;
            if (cp >= 0x20 && cp < 0x7f)
                return bad(r, "printable ASCII must not be escaped");
            if (str)
                o += put_utf8(o, cp);
            else
                *o++ = (char)cp;
        } else if (e == 'u' && str) {
            if (!hexn(p, end, 4, &cp))
                return bad(r, "\\u needs four lowercase hex digits");
            p += 4;
            if (cp < 0x100)
                return bad(r, "code points below 0x100 are written \\xNN");
            o += put_utf8(o, cp);
        } else if (e == 'U' && str) {
            if (!hexn(p, end, 8, &cp))
                return bad(r, "\\U needs eight lowercase hex digits");
            p += 8;
            if (cp < 0x10000 || cp > 0x10ffff)
                return bad(r, "\\U is for code points 0x10000..0x10ffff only");
            o += put_utf8(o, cp);
        } else {
            return bad(r, str ? "unknown escape in a str payload" : "unknown escape in a bytes payload");
        }
    }
    *n = (size_t)(o - (r->sb + off));
    *pp = p;
    return true;
}

/* The token up to the next space or the end of the line. */
static const char *token_end(const char *p, const char *end) {
    while (p < end && *p != ' ')
        p++;
    return p;
}

/* Decimal without sign or leading zeros; false on overflow or bad digits. */
static bool parse_udec(const char *p, const char *e, uint64_t limit, uint64_t *out) {
    if (p == e || (e - p > 1 && *p == '0'))
        return false;
    uint64_t v = 0;
    for (; p < e; p++) {
        if (*p < '0' || *p > '9')
            return false;
        unsigned d = (unsigned)(*p - '0');
        if (v > (limit - d) / 10)
            return false;
        v = v * 10 + d;
    }
    *out = v;
    return true;
}

static bool parse_int(rd *r, const char **pp, const char *end, pkl_val **out) {
    const char *p = *pp, *e = token_end(p, end);
    bool neg = p < e && *p == '-';
    const char *d = p + neg;
    if (e - d > 2 && d[0] == '0' && d[1] == 'x') {
        const char *h = d + 2;
        size_t nib = (size_t)(e - h);
        if (hexval(*h) <= 0)
            return bad(r, "hex int: lowercase digits without leading zeros");
        size_t nb = (nib + 1) / 2;
        if (!grow(r, (void **)&r->sb, &r->sbcap, nb, 1))
            return false;
        uint8_t *be = (uint8_t *)r->sb;
        memset(be, 0, nb);
        for (size_t i = 0; i < nib; i++) {
            int v = hexval(h[nib - 1 - i]);
            if (v < 0)
                return bad(r, "hex int: lowercase digits without leading zeros");
            be[nb - 1 - i / 2] |= (uint8_t)(i % 2 ? v << 4 : v);
        }
        /* hex is only for values outside int64 */
        if (nb <= 8) {
            uint64_t m = 0;
            for (size_t i = 0; i < nb; i++)
                m = m << 8 | be[i];
            if (m < ((uint64_t)1 << 63) + (uint64_t)neg)
                return bad(r, "ints in the int64 range are written in decimal");
        }
        *out = pkl_make_int_mag(r->doc, be, nb, neg);
    } else {
        uint64_t m;
        if (!parse_udec(d, e, neg ? (uint64_t)1 << 63 : (uint64_t)INT64_MAX, &m) || (neg && m == 0))
            return bad(r, "int: decimal without leading zeros or -0, within int64, else 0x hex");
        int64_t v = neg ? (m == (uint64_t)1 << 63 ? INT64_MIN : -(int64_t)m) : (int64_t)m;
        *out = pkl_make_int(r->doc, v);
    }
    if (!*out)
        return oom(r);
    *pp = e;
    return true;
}

/* ------------------------------------------------------------------------ */
/* Children rules. */

static size_t child_count(const rd *r, const frame *f) { return r->npool - f->start; }

/* May the open line `pi` take one more node child? Advances a stub's stage. */
static bool accept_node(rd *r, size_t pi) {
    frame *p = &r->fr[pi];
    size_t n = child_count(r, p);
    switch (p->fk) {
    case FK_ROOT:
        return n == 0 || bad(r, "a second line at depth 0: a document has one root");
    case FK_LEAF:
        return bad(r, "the line above takes no children");
    case FK_MVIEW:
        return n == 0 || bad(r, "memoryview has exactly one child");
    case FK_MUT:
        return n < (p->sub == PKL_MUT_SETITEM ? 2u : 1u) ||
               bad(r, ".setitem has two children, .build/.append/.add one");
    case FK_STUB:
        if (p->sub != ST_TARGET)
            return bad(r, p->node->kind == PKL_GLOBAL
                              ? "global takes only mutation slots"
                              : "after its first child a stub takes only slots");
        p->sub = ST_AFTER_TARGET;
        return true;
    default:
        return true;
    }
}

static const struct {
    const char *name;
    uint8_t fk, sub;
} slot_names[] = {
    {".args", FK_ARGS, 0},
    {".kwargs", FK_KWARGS, 0},
    {".build", FK_MUT, PKL_MUT_BUILD},
    {".append", FK_MUT, PKL_MUT_APPEND},
    {".setitem", FK_MUT, PKL_MUT_SETITEM},
    {".add", FK_MUT, PKL_MUT_ADD},
};

static bool read_slot(rd *r, size_t pi, const char *p, const char *end, size_t depth) {
    size_t n = (size_t)(end - p), k;
    for (k = 0; k < sizeof slot_names / sizeof slot_names[0]; k++)
        if (strlen(slot_names[k].name) == n && memcmp(slot_names[k].name, p, n) == 0)
            break;
    if (k == sizeof slot_names / sizeof slot_names[0])
        return bad(r, "unknown slot");
    frame *par = &r->fr[pi];
    if (par->fk != FK_STUB)
        return bad(r, "slots belong to global, call, new and persid lines only");
    pkl_kind kind = (pkl_kind)par->node->kind;
    uint8_t fk = slot_names[k].fk;
    if (fk == FK_ARGS) {
        if ((kind != PKL_CALL && kind != PKL_NEW) || par->sub != ST_AFTER_TARGET)
            return bad(r, ".args belongs right after the target of a call or new");
        par->sub = ST_AFTER_ARGS;
    } else if (fk == FK_KWARGS) {
        if (kind != PKL_NEW || (par->sub != ST_AFTER_TARGET && par->sub != ST_AFTER_ARGS))
            return bad(r, ".kwargs belongs to new, after its class and .args");
        par->sub = ST_AFTER_KWARGS;
    } else {
        if (par->sub == ST_TARGET)
            return bad(r, "a stub's first child is its target, not a slot");
        par->sub = ST_MUTS;
    }
    frame f = {par->node, depth + 1, r->npool, SIZE_MAX, r->line, fk, slot_names[k].sub, 0};
    return frame_push(r, &f);
}

static bool read_ref(rd *r, size_t pi, const char *p, const char *end, size_t depth) {
    uint64_t l;
    if (!parse_udec(p, end, UINT32_MAX, &l) || l == 0 || l > r->nlabels)
        return bad(r, "ref to a label not defined above");
    if (!accept_node(r, pi) || !pool_push(r, r->labels[l - 1]))
        return false;
    frame f = {NULL, depth + 1, r->npool, r->npool - 1, r->line, FK_LEAF, 0, 0};
    return frame_push(r, &f);
}

#define KW(s) {s, sizeof s - 1}
static const struct {
    const char *w;
    size_t n;
} kind_words[PKL_KIND_COUNT] = {
    KW("none"),   KW("bool"),      KW("int"),    KW("float"), KW("str"),  KW("bytes"),
    KW("bytearray"), KW("list"),   KW("tuple"),  KW("dict"),  KW("set"),  KW("frozenset"),
    KW("global"), KW("call"),      KW("new"),    KW("persid"), KW("memoryview"), KW("buffer"),
};
#undef KW

static bool read_node(rd *r, size_t pi, const char *p, const char *end, size_t depth) {
    const char *w = token_end(p, end);
    int kind = -1;
    for (int k = 0; k < PKL_KIND_COUNT && kind < 0; k++)
        if (kind_words[k].n == (size_t)(w - p) && memcmp(kind_words[k].w, p, kind_words[k].n) == 0)
            kind = k;
    if (kind < 0)
        return bad(r, "unknown kind");
    p = w;
    pkl_doc *doc = r->doc;
    pkl_val *v = NULL;
    bool lazy_tuple = false;
    /* payload */
    switch ((pkl_kind)kind) {
    case PKL_BOOL: {
        const char *e = token_end(p + 1, end);
        if (p < end && *p == ' ' && e - p == 5 && memcmp(p + 1, "true", 4) == 0)
            v = pkl_bool(doc, true);
        else if (p < end && *p == ' ' && e - p == 6 && memcmp(p + 1, "false", 5) == 0)
            v = pkl_bool(doc, false);
        else
            return bad(r, "bool is `true` or `false`");
        p = e;
        break;
    }
    case PKL_INT:
        if (p >= end || *p != ' ')
            return bad(r, "int needs a value");
        p++;
        if (!parse_int(r, &p, end, &v))
            return false;
        break;
    case PKL_FLOAT: {
        uint32_t hi, lo;
        if (p >= end || *p != ' ' || token_end(p + 1, end) - (p + 1) != 16 ||
            !hexn(p + 1, end, 8, &hi) || !hexn(p + 9, end, 8, &lo))
            return bad(r, "float is 16 lowercase hex digits (the IEEE-754 bits)");
        v = pkl_make_float(doc, (uint64_t)hi << 32 | lo);
        p += 17;
        break;
    }
    case PKL_STR:
    case PKL_BYTES:
    case PKL_BYTEARRAY: {
        size_t n;
        if (p >= end || *p != ' ')
            return bad(r, "expected a quoted payload");
        p++;
        if (!parse_quoted(r, &p, end, kind == PKL_STR, 0, &n))
            return false;
        v = pkl_make_bytes(doc, (pkl_kind)kind, r->sb, n);
        break;
    }
    case PKL_GLOBAL: {
        size_t mn, nn;
        if (p >= end || *p != ' ')
            return bad(r, "global needs \"module\" \"name\"");
        p++;
        if (!parse_quoted(r, &p, end, true, 0, &mn))
            return false;
        if (p >= end || *p != ' ')
            return bad(r, "global needs \"module\" \"name\"");
        p++;
        if (!parse_quoted(r, &p, end, true, mn, &nn))
            return false;
        size_t before = doc->nnodes;
        v = pkl_global_intern(doc, r->sb, mn, r->sb + mn, nn);
        if (v && doc->nnodes == before)
            return bad(r, "the same global printed twice: the second time must be a ref");
        break;
    }
    case PKL_BUFFER: {
        const char *e = p < end ? token_end(p + 1, end) : end;
        uint64_t ix;
        if (p >= end || *p != ' ' || !parse_udec(p + 1, e, SIZE_MAX, &ix))
            return bad(r, "buffer needs its index in decimal");
        v = pkl_make_stub(doc, PKL_BUFFER);
        if (v)
            v->u.stub->buffer_index = (size_t)ix;
        p = e;
        break;
    }
    case PKL_TUPLE:
        lazy_tuple = true; /* decided below: a labelled tuple must exist now */
        break;
    case PKL_LIST:
    case PKL_DICT:
    case PKL_SET:
    case PKL_FROZENSET:
        v = pkl_node_new(doc, (pkl_kind)kind);
        break;
    case PKL_CALL:
    case PKL_NEW:
    case PKL_PERSID:
    case PKL_MEMORYVIEW:
        v = pkl_make_stub(doc, (pkl_kind)kind);
        break;
    case PKL_NONE:
        v = pkl_none(doc);
        break;
    default:
        return bad(r, "unknown kind");
    }
    if (!v && !lazy_tuple)
        return r->err.code ? false : oom(r);
    /* label */
    bool labelled = false;
    if (p < end) {
        uint64_t l;
        if (end - p < 3 || p[0] != ' ' || p[1] != '#')
            return bad(r, "unexpected text after the payload");
        if (!parse_udec(p + 2, end, UINT32_MAX - 1, &l))
            return bad(r, "a label is # and a decimal number");
        if (pkl_kind_is_scalar((pkl_kind)kind))
            return bad(r, "scalars are never labelled");
        if (l != r->nlabels + 1)
            return bad(r, "labels are numbered 1, 2, ... in order of first appearance");
        if (lazy_tuple && !(v = pkl_node_new(doc, PKL_TUPLE)))
            return oom(r);
        if (!grow(r, (void **)&r->labels, &r->caplabels, r->nlabels + 1, sizeof *r->labels))
            return false;
        r->labels[r->nlabels++] = v;
        labelled = true;
    }
    if (!accept_node(r, pi) || !pool_push(r, v))
        return false;
    uint8_t fk = FK_LEAF, sub = 0;
    switch ((pkl_kind)kind) {
    case PKL_LIST:
        fk = FK_LIST;
        break;
    case PKL_TUPLE:
        fk = FK_TUPLE;
        break;
    case PKL_DICT:
    case PKL_SET:
    case PKL_FROZENSET:
        fk = FK_MAP;
        break;
    case PKL_GLOBAL:
        fk = FK_STUB;
        sub = ST_MUTS;
        break;
    case PKL_CALL:
    case PKL_NEW:
    case PKL_PERSID:
        fk = FK_STUB;
        sub = ST_TARGET;
        break;
    case PKL_MEMORYVIEW:
        fk = FK_MVIEW;
        break;
    default:
        break;
    }
    if ((fk == FK_MAP || (fk == FK_TUPLE && v)) && !note_line(r, v, r->line))
        return false;
    frame f = {v, depth + 1, r->npool, r->npool - 1, r->line, fk, sub, labelled};
    return frame_push(r, &f);
}

/* ------------------------------------------------------------------------ */
/* Closing a line: its value is complete. */

static bool close_frame_at(rd *r, frame f);

/* Closing errors name the closed line; the line being read stays current. */
static bool close_frame(rd *r) {
    size_t line = r->line;
    frame f = r->fr[--r->nfr];
    r->line = f.line;
    if (!close_frame_at(r, f))
        return false;
    r->line = line;
    return true;
}

static bool close_frame_at(rd *r, frame f) {
    pkl_doc *doc = r->doc;
    size_t n = r->npool - f.start;
    pkl_val **it = r->pool + f.start;
    switch (f.fk) {
    case FK_LIST:
        if (n && pkl_seq_reserve(doc, f.node, n))
            return oom(r);
        for (size_t i = 0; i < n; i++)
            if (pkl_seq_push(doc, f.node, it[i]))
                return oom(r);
        break;
    case FK_TUPLE:
        if (f.labelled) {
            if (n == 0)
                return bad(r, "an empty tuple is never labelled");
            pkl_val **arr = pkl_arena_alloc(doc, n * sizeof *arr);
            if (!arr)
                return oom(r);
            memcpy(arr, it, n * sizeof *arr);
            f.node->u.seq.items = arr;
            f.node->u.seq.len = n;
        } else {
            pkl_val *t = pkl_make_tuple(doc, it, n);
            if (!t || (n && !note_line(r, t, f.line)))
                return oom(r);
            r->pool[f.slot] = t;
        }
        break;
    case FK_MAP: {
        pkl_val *m = f.node;
        size_t entries = n;
        if (m->kind == PKL_DICT) {
            if (n % 2)
                return bad(r, "a dict has key, value pairs: an even number of children");
            entries = n / 2;
        }
        if (m->kind == PKL_FROZENSET && f.labelled && n == 0)
            return bad(r, "an empty frozenset is never labelled");
        if (entries) {
            if (pkl_map_reserve(doc, m, entries))
                return oom(r);
            memcpy(m->u.map.kv, it, n * sizeof *it);
            m->u.map.len = (uint32_t)entries;
        }
        break;
    }
    case FK_STUB: {
        pkl_stub *s = f.node->u.stub;
        if (f.node->kind != PKL_GLOBAL) {
            if (n != 1)
                return bad(r, "call, new and persid start with a child: callable, class or pid");
            s->target = it[0];
            if ((f.node->kind == PKL_CALL || f.node->kind == PKL_NEW) && !s->args &&
                !(s->args = pkl_make_tuple(doc, NULL, 0)))
                return oom(r);
        }
        break;
    }
    case FK_MVIEW:
        if (n != 1)
            return bad(r, "memoryview has exactly one child");
        f.node->u.stub->target = it[0];
        break;
    case FK_ARGS: {
        if (n == 0)
            return bad(r, ".args is printed only with at least one argument");
        pkl_val *t = pkl_make_tuple(doc, it, n);
        if (!t)
            return oom(r);
        f.node->u.stub->args = t;
        break;
    }
    case FK_KWARGS: {
        if (n == 0 || n % 2)
            return bad(r, ".kwargs holds key, value pairs and is printed only when non-empty");
        pkl_val *d = pkl_node_new(doc, PKL_DICT);
        if (!d || !note_line(r, d, f.line) || pkl_map_reserve(doc, d, n / 2))
            return oom(r);
        memcpy(d->u.map.kv, it, n * sizeof *it);
        d->u.map.len = (uint32_t)(n / 2);
        f.node->u.stub->kwargs = d;
        break;
    }
    case FK_MUT: {
        size_t want = f.sub == PKL_MUT_SETITEM ? 2 : 1;
        if (n != want)
            return bad(r, ".setitem has two children, .build/.append/.add one");
        if (pkl_stub_mutate(doc, f.node, (pkl_mutkind)f.sub, it[0], want == 2 ? it[1] : NULL))
            return oom(r);
        break;
    }
    default:
        break;
    }
    r->npool = f.start;
    return true;
}

/* ------------------------------------------------------------------------ */

static bool read_line(rd *r, const char *p, const char *end) {
    size_t depth = 0, spaces = 0;
    while (p + spaces < end && p[spaces] == ' ')
        spaces++;
    if (spaces) {
        if (spaces % 2)
            return bad(r, "indentation is two spaces per level");
        depth = spaces / 2;
        if (depth > MAX_SPACE_DEPTH)
            return bad(r, "lines deeper than 32 levels are written @<depth>");
        p += spaces;
    } else if (p < end && *p == '@') {
        const char *e = token_end(p + 1, end);
        uint64_t d;
        if (!parse_udec(p + 1, e, SIZE_MAX / 2, &d) || e == end)
            return bad(r, "@<depth> needs a decimal depth and a space");
        if (d <= MAX_SPACE_DEPTH)
            return bad(r, "depths up to 32 are written with spaces");
        depth = (size_t)d;
        p = e + 1;
    }
    if (p == end || *p == ' ' || *p == '@')
        return bad(r, "a line holds one node, ref or slot");
    while (r->fr[r->nfr - 1].depth1 > depth)
        if (!close_frame(r))
            return false;
    if (r->fr[r->nfr - 1].depth1 < depth)
        return bad(r, "a line is at most one level deeper than the line above");
    size_t pi = r->nfr - 1;
    if (*p == '.')
        return read_slot(r, pi, p, end, depth);
    if (end - p > 5 && memcmp(p, "ref #", 5) == 0)
        return read_ref(r, pi, p + 5, end, depth);
    return read_node(r, pi, p, end, depth);
}

/* Prints the graph again and compares it with the body of the input. */
static bool check_reprint(rd *r, const pkl_limits *lim, size_t body) {
    size_t n;
    pkl_err e = {PKL_OK, NULL, 0};
    char *txt = pkl_canon(r->doc, NULL, lim->max_output, &n, &e);
    if (!txt) {
        r->err.code = e.code ? e.code : PKL_ERR_RESOURCE_LIMIT;
        r->err.msg = "printing the graph again went past max_output or out of memory";
        r->err.pos = 0;
        return false;
    }
    const char *nl = memchr(txt, '\n', n);
    size_t ebody = nl ? (size_t)(nl - txt) + 1 : n;
    size_t a = r->len - body, b = n - ebody, i = 0;
    while (i < a && i < b && r->t[body + i] == txt[ebody + i])
        i++;
    free(txt);
    if (i == a && i == b)
        return true;
    size_t pos = body + i;
    while (pos > body && r->t[pos - 1] != '\n')
        pos--;
    return bad_at(r, pos,
                  "not canonical: printing this graph gives another text from this line on "
                  "(set element order, or a label nothing refers to)");
}

static bool read_body(rd *r, const pkl_limits *lim, size_t body) {
    frame root = {NULL, 0, 0, SIZE_MAX, body, FK_ROOT, 0, 0};
    if (!frame_push(r, &root))
        return false;
    size_t pos = body;
    while (pos < r->len) {
        const char *p = r->t + pos;
        const char *nl = memchr(p, '\n', r->len - pos);
        r->line = pos;
        if (!nl)
            return bad(r, "the last line has no final newline");
        for (const char *q = p; q < nl; q++)
            if ((unsigned char)*q < 0x20 || (unsigned char)*q > 0x7e)
                return bad(r, "a byte outside printable ASCII (the text is pure ASCII)");
        if (!read_line(r, p, nl))
            return false;
        pos = (size_t)(nl - r->t) + 1;
    }
    while (r->nfr > 1)
        if (!close_frame(r))
            return false;
    if (r->npool != 1)
        return bad_at(r, body, "the document has no body");
    r->doc->root = r->pool[0];
    const pkl_val *badv = NULL;
    const char *why = NULL;
    pkl_code rc = brine_maps_rebuild(r->doc, BRINE_MAPS_STRICT, &badv, &why);
    if (rc == PKL_ERR_RESOURCE_LIMIT)
        return oom(r);
    if (rc)
        return bad_at(r, line_of(r, badv), why);
    return check_reprint(r, lim, body);
}

/* "error <class>\n" and nothing else. */
static bool read_error_doc(rd *r, size_t body, pkl_code *code) {
    const char *p = r->t + body + 6, *end = r->t + r->len;
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    r->line = body;
    if (!nl)
        return bad(r, "the last line has no final newline");
    pkl_code c = pkl_code_from_name(p, (size_t)(nl - p));
    if (c == PKL_CODE_COUNT || c == PKL_OK)
        return bad(r, "unknown error class");
    if (nl + 1 != end)
        return bad_at(r, (size_t)(nl + 1 - r->t), "nothing follows an error line");
    *code = c;
    return true;
}

static void rd_free(rd *r) {
    if (!r->doc)
        return;
    pkl_mem_free(r->doc, r->fr, r->capfr * sizeof *r->fr);
    pkl_mem_free(r->doc, r->pool, r->cappool * sizeof *r->pool);
    pkl_mem_free(r->doc, r->labels, r->caplabels * sizeof *r->labels);
    pkl_mem_free(r->doc, r->sb, r->sbcap);
    pkl_mem_free(r->doc, r->nl, r->capnl * sizeof *r->nl);
}

bool brine_canon_read(const char *text, size_t len, const pkl_limits *lim, brine_canon *out,
                      pkl_err *err) {
    pkl_limits l = lim ? *lim : pkl_limits_default();
    rd r;
    memset(&r, 0, sizeof r);
    memset(out, 0, sizeof *out);
    r.t = text;
    r.len = len;
    if (len > l.max_input) {
        r.err = (pkl_err){PKL_ERR_RESOURCE_LIMIT, "the document is larger than max_input", 0};
        goto fail;
    }
    size_t pre = sizeof HEADER_PREFIX - 1, body;
    if (len < pre || memcmp(text, HEADER_PREFIX, pre) != 0) {
        bad_at(&r, 0, "no `brine-canonical 1 raw|value` header");
        goto fail;
    }
    if (len - pre >= 6 && memcmp(text + pre, "1 raw\n", 6) == 0) {
        out->level = 0;
        body = pre + 6;
    } else if (len - pre >= 8 && memcmp(text + pre, "1 value\n", 8) == 0) {
        out->level = 1;
        body = pre + 8;
    } else {
        bad_at(&r, 0, "header: only version 1, level raw or value, is read");
        goto fail;
    }
    if (len - body >= 6 && memcmp(text + body, "error ", 6) == 0) {
        if (!read_error_doc(&r, body, &out->error))
            goto fail;
        if (err)
            *err = (pkl_err){PKL_OK, NULL, 0};
        return true;
    }
    r.doc = pkl_doc_new(NULL, &l);
    if (!r.doc) {
        r.err = (pkl_err){PKL_ERR_RESOURCE_LIMIT, "max_alloc is too small for a document", 0};
        goto fail;
    }
    if (!read_body(&r, &l, body))
        goto fail;
    rd_free(&r);
    out->doc = r.doc;
    out->error = PKL_OK;
    if (err)
        *err = (pkl_err){PKL_OK, NULL, 0};
    return true;
fail:
    rd_free(&r);
    pkl_doc_free(r.doc);
    memset(out, 0, sizeof *out);
    if (err)
        *err = r.err;
    return false;
}

void brine_canon_release(brine_canon *c) {
    if (!c)
        return;
    pkl_doc_free(c->doc);
    memset(c, 0, sizeof *c);
}
