/* streamgen: table-driven raw pickle opcode-stream generator. See streamgen.h.
 *
 * Layout of a generated stream: [PROTO p] body, where body is a list of
 * opcodes ending with STOP. The body is generated against an abstract stack
 * of typed objects (and marks) and an abstract memo; faults are applied to
 * the body (inserting a self-contained failing sequence at an opcode
 * boundary) or to the assembled bytes (truncation, PROTO, FRAME); framing
 * (protocol >= 4) is applied last, at opcode boundaries.
 */
#include "streamgen.h"

#include <stdlib.h>
#include <string.h>

#include "pkl.h"

/*------------------------------------------------------------------------------
 * PRNG: splitmix64
 *----------------------------------------------------------------------------*/

typedef struct rng {
    uint64_t s;
} rng;

static uint64_t rng_next(rng *r) {
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}
static uint32_t rnd(rng *r, uint32_t n) { return n ? (uint32_t)(rng_next(r) % n) : 0; }
static int chance(rng *r, unsigned pct) { return rnd(r, 100) < pct; }

/*------------------------------------------------------------------------------
 * Growable byte buffer
 *----------------------------------------------------------------------------*/

typedef struct buf {
    uint8_t *p;
    size_t len, cap;
    int oom;
} buf;

static int grow(void **p, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap)
        return 1;
    size_t nc = *cap ? *cap : 64;
    while (nc < need)
        nc *= 2;
    void *np = realloc(*p, nc * elem);
    if (!np)
        return 0;
    *p = np;
    *cap = nc;
    return 1;
}

static void put(buf *b, const void *d, size_t n) {
    if (b->oom)
        return;
    if (!grow((void **)&b->p, &b->cap, b->len + n, 1)) {
        b->oom = 1;
        return;
    }
    if (n)
        memcpy(b->p + b->len, d, n);
    b->len += n;
}
static void put1(buf *b, uint8_t c) { put(b, &c, 1); }
static void putstr(buf *b, const char *s) { put(b, s, strlen(s)); }
static void put_le(buf *b, uint64_t v, unsigned w) {
    for (unsigned i = 0; i < w; i++)
        put1(b, (uint8_t)(v >> (8 * i)));
}
static void put_dec(buf *b, int64_t v) {
    char tmp[24];
    int n = 0;
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    do {
        tmp[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        put1(b, '-');
    while (n)
        put1(b, (uint8_t)tmp[--n]);
}

/*------------------------------------------------------------------------------
 * Opcode classification, derived from the table's stack strings
 *----------------------------------------------------------------------------*/

enum { T_INT, T_BOOL, T_NONE, T_FLOAT, T_STR, T_BYTES, T_BYTEARRAY, T_LIST, T_TUPLE,
       T_DICT, T_SET, T_FROZENSET, T_GLOBAL, T_STUB, T_MVIEW, T_COUNT };

/* operand requirements */
enum { R_ANY, R_HASH, R_LIST, R_DICT, R_SET, R_STR, R_BUF, R_CALL, R_TYPE, R_TUPLE, R_KWDICT,
       R_STUB, /* only for fault sequences: */ R_UNHASH, R_NOTTUPLE, R_NOTTYPE, R_BUILTIN,
       R_BADSTATE, R_NOTSTR, R_DICTONLY, R_SETONLY };
/* stack-slice requirements */
enum { S_ANY, S_PAIRS, S_HASH };
/* results */
enum { X_NOTHING, X_TYPE, X_SAME, X_DUP, X_MARK, X_POP, X_GET, X_PUT, X_MEMOIZE, X_ROBUF };

typedef struct opclass {
    const pkl_opinfo *info;
    uint8_t known, eligible, structural;
    uint8_t nfix, req[3];
    uint8_t mark, nafter, areq;
    uint8_t slice, res, rtype;
} opclass;

static opclass ocls[256];
static volatile int ocls_ready;

static int tok_eq(const char *s, size_t n, const char *w) { return strlen(w) == n && memcmp(s, w, n) == 0; }

/* next space-separated token of *s; returns its length, 0 at the end */
static size_t next_tok(const char **s, const char **tok) {
    while (**s == ' ')
        (*s)++;
    *tok = *s;
    while (**s && **s != ' ')
        (*s)++;
    return (size_t)(*s - *tok);
}

static int type_of_tok(const char *t, size_t n) {
    static const struct {
        const char *name;
        int type;
    } m[] = {{"int", T_INT},     {"int_or_bool", T_INT}, {"bool", T_BOOL},   {"None", T_NONE},
             {"float", T_FLOAT}, {"str", T_STR},         {"bytes_or_str", T_STR},
             {"bytes", T_BYTES}, {"bytearray", T_BYTEARRAY}, {"list", T_LIST},
             {"tuple", T_TUPLE}, {"dict", T_DICT},        {"set", T_SET},
             {"frozenset", T_FROZENSET}, {"buffer", T_MVIEW}};
    for (size_t i = 0; i < sizeof m / sizeof m[0]; i++)
        if (tok_eq(t, n, m[i].name))
            return m[i].type;
    return -1;
}

static int req_of_tok(const char *t, size_t n) {
    if (tok_eq(t, n, "list"))
        return R_LIST;
    if (tok_eq(t, n, "dict"))
        return R_DICT;
    if (tok_eq(t, n, "set"))
        return R_SET;
    if (tok_eq(t, n, "str"))
        return R_STR;
    if (tok_eq(t, n, "buffer"))
        return R_BUF;
    return R_ANY;
}

static void classify(opclass *c) {
    const pkl_opinfo *in = c->info;
    const char *s = in->stack_before, *t;
    size_t n;
    int after_mark = 0;
    while ((n = next_tok(&s, &t)) != 0) {
        if (tok_eq(t, n, "mark")) {
            c->mark = 1;
            after_mark = 1;
        } else if (tok_eq(t, n, "stackslice")) {
            c->slice = S_ANY;
        } else if (after_mark) {
            c->areq = (uint8_t)req_of_tok(t, n);
            c->nafter++;
        } else if (c->nfix < 3) {
            c->req[c->nfix++] = (uint8_t)req_of_tok(t, n);
        }
    }
    const char *a = in->stack_after;
    const char *t1, *t2;
    size_t n1 = next_tok(&a, &t1), n2 = next_tok(&a, &t2);
    const char *b = in->stack_before, *b1;
    size_t nb1 = next_tok(&b, &b1);
    if (n1 == 0)
        c->res = X_NOTHING;
    else if (tok_eq(t1, n1, "mark"))
        c->res = X_MARK;
    else if (n2 && tok_eq(t1, n1, "any") && tok_eq(t2, n2, "any"))
        c->res = X_DUP;
    else if (nb1 && n1 == nb1 && memcmp(t1, b1, n1) == 0 && !tok_eq(t1, n1, "any"))
        c->res = X_SAME; /* list any -> list, dict mark stackslice -> dict ... */
    else if (type_of_tok(t1, n1) >= 0) {
        c->res = X_TYPE;
        c->rtype = (uint8_t)type_of_tok(t1, n1);
    } else {
        c->res = X_TYPE; /* "any": a stub unless refined below */
        c->rtype = T_STUB;
    }
    c->eligible = 1;
    /* Refinements the pickletools strings cannot express (keyed by the
       table-generated opcode constants). */
    switch ((pkl_opcode)in->code) {
    case PKL_OP_PROTO: case PKL_OP_STOP: case PKL_OP_FRAME:
        c->structural = 1;
        c->eligible = 0;
        break;
    case PKL_OP_NEXT_BUFFER: case PKL_OP_EXT1: case PKL_OP_EXT2: case PKL_OP_EXT4:
        c->eligible = 0; /* fail without buffers / extension registry */
        break;
    case PKL_OP_SETITEM: c->req[1] = R_HASH; break;
    case PKL_OP_DICT: case PKL_OP_SETITEMS: c->slice = S_PAIRS; break;
    case PKL_OP_FROZENSET: case PKL_OP_ADDITEMS: c->slice = S_HASH; break;
    case PKL_OP_REDUCE: c->req[0] = R_CALL; c->req[1] = R_TUPLE; break;
    case PKL_OP_BUILD: c->req[0] = R_STUB; c->res = X_SAME; break;
    case PKL_OP_NEWOBJ: c->req[0] = R_TYPE; c->req[1] = R_TUPLE; break;
    case PKL_OP_NEWOBJ_EX: c->req[0] = R_TYPE; c->req[1] = R_TUPLE; c->req[2] = R_KWDICT; break;
    case PKL_OP_OBJ: c->areq = R_CALL; break;
    case PKL_OP_GLOBAL: case PKL_OP_STACK_GLOBAL: c->rtype = T_GLOBAL; break;
    case PKL_OP_GET: case PKL_OP_BINGET: case PKL_OP_LONG_BINGET: c->res = X_GET; break;
    case PKL_OP_PUT: case PKL_OP_BINPUT: case PKL_OP_LONG_BINPUT:
        c->nfix = 1; /* pickletools lists no operand, but the top item is memoized */
        c->req[0] = R_ANY;
        c->res = X_PUT;
        break;
    case PKL_OP_MEMOIZE: c->res = X_MEMOIZE; break;
    case PKL_OP_POP: c->res = X_POP; break;
    case PKL_OP_READONLY_BUFFER: c->res = X_ROBUF; break;
    default: break;
    }
}

static void ocls_init(void) {
    if (ocls_ready)
        return;
    for (size_t i = 0; i < pkl_opcode_count(); i++) {
        const pkl_opinfo *in = pkl_opcode_at(i);
        opclass *c = &ocls[in->code];
        memset(c, 0, sizeof *c);
        c->info = in;
        c->known = 1;
        classify(c);
    }
    ocls_ready = 1;
}

int pkl_gen_eligible(int protocol, uint8_t op) {
    ocls_init();
    return ocls[op].known && ocls[op].eligible && ocls[op].info->proto <= protocol;
}

/*------------------------------------------------------------------------------
 * Generator state
 *----------------------------------------------------------------------------*/

typedef struct gobj {
    uint8_t type, hashable, strkeys;
} gobj;

typedef struct memo_ent {
    uint32_t idx;
    int32_t obj;
} memo_ent;

typedef struct bound {
    size_t off;     /* offset of the opcode in the body */
    uint8_t op;
    uint32_t above; /* items above the top mark before the opcode */
    uint32_t marks; /* open marks before the opcode */
} bound;

typedef struct gen {
    rng r;
    int proto;
    unsigned max_payload;
    buf body;
    bound *ops;
    size_t nops, capops;
    int32_t *st; /* object ids; -1 is a mark */
    size_t sp, stcap;
    gobj *objs;
    size_t nobj, objcap;
    memo_ent *memo;
    size_t nmemo, memocap;
    size_t nmarks;
    int oom;
} gen;

static void gen_free(gen *g) {
    free(g->body.p);
    free(g->ops);
    free(g->st);
    free(g->objs);
    free(g->memo);
}

static int failed(const gen *g) { return g->oom || g->body.oom; }

static size_t above_fence(const gen *g) {
    size_t n = 0;
    while (n < g->sp && g->st[g->sp - 1 - n] >= 0)
        n++;
    return n;
}

static void spush(gen *g, int32_t id) {
    if (!grow((void **)&g->st, &g->stcap, g->sp + 1, sizeof *g->st)) {
        g->oom = 1;
        return;
    }
    g->st[g->sp++] = id;
    if (id < 0)
        g->nmarks++;
}

static int32_t new_obj(gen *g, int type, int hashable, int strkeys) {
    if (!grow((void **)&g->objs, &g->objcap, g->nobj + 1, sizeof *g->objs)) {
        g->oom = 1;
        return 0;
    }
    g->objs[g->nobj] = (gobj){(uint8_t)type, (uint8_t)hashable, (uint8_t)strkeys};
    return (int32_t)g->nobj++;
}

static int type_hashable(int t) {
    return !(t == T_LIST || t == T_DICT || t == T_SET || t == T_BYTEARRAY || t == T_MVIEW);
}

static int req_ok(const gen *g, int req, int32_t id) {
    if (id < 0)
        return 0;
    const gobj *o = &g->objs[id];
    int t = o->type, stub = t == T_GLOBAL || t == T_STUB;
    switch (req) {
    case R_ANY: return 1;
    case R_HASH: return o->hashable;
    case R_LIST: return t == T_LIST || stub;
    case R_DICT: return t == T_DICT || stub;
    case R_SET: return t == T_SET || stub;
    case R_STR: return t == T_STR;
    case R_BUF: return t == T_BYTES || t == T_BYTEARRAY || t == T_MVIEW;
    case R_CALL: case R_STUB: return stub;
    case R_TYPE: return t == T_GLOBAL;
    case R_TUPLE: return t == T_TUPLE;
    case R_KWDICT: return t == T_DICT && o->strkeys;
    case R_UNHASH: return !o->hashable;
    case R_NOTTUPLE: return t != T_TUPLE;
    case R_NOTTYPE: return t != T_GLOBAL;
    case R_BUILTIN: return !stub;
    case R_BADSTATE: return t == T_INT || t == T_STR || t == T_LIST || t == T_FLOAT || t == T_BYTES;
    case R_NOTSTR: return t != T_STR;
    case R_DICTONLY: return t == T_DICT;
    case R_SETONLY: return t == T_SET;
    default: return 0;
    }
}

/* index of the top mark in st, or -1 */
static long top_mark(const gen *g) {
    for (size_t i = g->sp; i > 0; i--)
        if (g->st[i - 1] < 0)
            return (long)(i - 1);
    return -1;
}

static const memo_ent *memo_pick(gen *g, uint32_t maxidx) {
    size_t n = 0;
    for (size_t i = 0; i < g->nmemo; i++)
        n += g->memo[i].idx <= maxidx;
    if (!n)
        return NULL;
    size_t k = rnd(&g->r, (uint32_t)n);
    for (size_t i = 0; i < g->nmemo; i++)
        if (g->memo[i].idx <= maxidx && k-- == 0)
            return &g->memo[i];
    return NULL;
}

static uint32_t memo_maxidx(const pkl_opinfo *in) {
    return in->layout == PKL_LAYOUT_FIXED && in->width == 1 ? 255u : 0xffffffffu;
}

static int applicable(gen *g, const opclass *c) {
    if (c->res == X_POP)
        return g->sp > 0;
    if (c->res == X_GET)
        return memo_pick(g, memo_maxidx(c->info)) != NULL;
    if (c->res == X_MARK)
        return g->nmarks < 8;
    if (!c->mark) {
        if (above_fence(g) < c->nfix)
            return 0;
        for (unsigned i = 0; i < c->nfix; i++)
            if (!req_ok(g, c->req[i], g->st[g->sp - c->nfix + i]))
                return 0;
        return 1;
    }
    long m = top_mark(g);
    if (m < 0)
        return 0;
    size_t base = (size_t)m + 1, cnt = g->sp - base;
    if (cnt < c->nafter)
        return 0;
    if (c->nafter && !req_ok(g, c->areq, g->st[base]))
        return 0;
    size_t s0 = base + c->nafter, scnt = g->sp - s0;
    if (c->slice == S_PAIRS && (scnt & 1))
        return 0;
    for (size_t i = 0; i < scnt; i++) {
        int32_t id = g->st[s0 + i];
        if (c->slice == S_HASH && !g->objs[id].hashable)
            return 0;
        if (c->slice == S_PAIRS && !(i & 1) && !g->objs[id].hashable)
            return 0;
    }
    if ((size_t)m < c->nfix)
        return 0;
    for (unsigned i = 0; i < c->nfix; i++)
        if (!req_ok(g, c->req[i], g->st[(size_t)m - c->nfix + i]))
            return 0;
    return 1;
}

/*------------------------------------------------------------------------------
 * Arguments
 *----------------------------------------------------------------------------*/

static size_t pick_len(gen *g, unsigned width) {
    size_t maxp = g->max_payload;
    size_t lim = width == 1 ? 255 : maxp;
    if (lim > maxp)
        lim = maxp;
    size_t n;
    switch (rnd(&g->r, 10)) {
    case 0: n = 0; break;
    case 1: n = width == 1 ? 255 : 256; break;
    case 2: n = rnd(&g->r, (uint32_t)lim + 1); break;
    default: n = rnd(&g->r, 9); break;
    }
    return n > lim ? lim : n;
}

static uint32_t pick_cp(gen *g, int ascii_only) {
    if (ascii_only)
        return 0x20 + rnd(&g->r, 0x5f);
    switch (rnd(&g->r, 16)) {
    case 0: return 0xa0 + rnd(&g->r, 0x60);
    case 1: return 0x100 + rnd(&g->r, 0xd700);
    case 2: return 0xd800 + rnd(&g->r, 0x800); /* lone surrogate */
    case 3: return 0x10000 + rnd(&g->r, 0x100000);
    case 4: return rnd(&g->r, 0x20);
    case 5: return '\\';
    default: return 0x20 + rnd(&g->r, 0x5f);
    }
}

static void put_utf8(buf *b, uint32_t c) {
    if (c < 0x80)
        put1(b, (uint8_t)c);
    else if (c < 0x800) {
        put1(b, (uint8_t)(0xc0 | (c >> 6)));
        put1(b, (uint8_t)(0x80 | (c & 0x3f)));
    } else if (c < 0x10000) {
        put1(b, (uint8_t)(0xe0 | (c >> 12)));
        put1(b, (uint8_t)(0x80 | ((c >> 6) & 0x3f)));
        put1(b, (uint8_t)(0x80 | (c & 0x3f)));
    } else {
        put1(b, (uint8_t)(0xf0 | (c >> 18)));
        put1(b, (uint8_t)(0x80 | ((c >> 12) & 0x3f)));
        put1(b, (uint8_t)(0x80 | ((c >> 6) & 0x3f)));
        put1(b, (uint8_t)(0x80 | (c & 0x3f)));
    }
}

static void put_hex(buf *b, uint32_t v, int digits) {
    static const char hx[] = "0123456789abcdef";
    for (int i = digits - 1; i >= 0; i--)
        put1(b, (uint8_t)hx[(v >> (4 * i)) & 15]);
}

static const char *const int_texts[] = {"0", "1", "-1", "00", "01", "255", "256", "65535", "-2147483648",
                                        "2147483647", "2147483648", "-9223372036854775809",
                                        "123456789012345678901234567890", "+7", "0x1f", "010", "1_000"};
static const char *const long_texts[] = {"0L", "1L", "-1", "255", "-2147483649L", "9223372036854775808L",
                                         "123456789012345678901234567890L", "0x10L", "7"};
static const char *const float_texts[] = {"0.0", "-0.0", "1.5", "-2.25", "1e300", "1E-310", "inf", "-inf",
                                          "nan", "3.141592653589793", "7", "2.5e-5"};
static const char *const mod_names[] = {"brinegen", "m", "pkg.sub", "collections", "a_b"};
static const char *const cls_names[] = {"C", "Obj", "OrderedDict", "K1", "x"};

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

static void put_text_line(gen *g, buf *b, const char *const *tab, size_t n) {
    putstr(b, tab[rnd(&g->r, (uint32_t)n)]);
    put1(b, '\n');
}

/* random bytes / str payloads of counted arguments */
static void put_counted(gen *g, buf *b, const pkl_opinfo *in) {
    size_t n = pick_len(g, in->width);
    int kind = in->arg;
    if (kind == PKL_ARG_UNICODESTRING1 || kind == PKL_ARG_UNICODESTRING4 || kind == PKL_ARG_UNICODESTRING8) {
        buf tmp = {0};
        size_t lim = in->width == 1 ? 255 : g->max_payload;
        for (size_t i = 0; i < n; i++) {
            size_t before = tmp.len;
            put_utf8(&tmp, pick_cp(g, 0));
            if (tmp.len > lim) {
                tmp.len = before;
                break;
            }
        }
        put_le(b, tmp.len, in->width);
        put(b, tmp.p, tmp.len);
        if (tmp.oom)
            b->oom = 1;
        free(tmp.p);
        return;
    }
    put_le(b, n, in->width);
    int ascii = kind == PKL_ARG_STRING1 || kind == PKL_ARG_STRING4; /* decoded as ASCII */
    for (size_t i = 0; i < n; i++)
        put1(b, ascii ? (uint8_t)rnd(&g->r, 0x80) : (uint8_t)rng_next(&g->r));
}

static void put_quoted_string(gen *g, buf *b) {
    char q = chance(&g->r, 50) ? '\'' : '"';
    put1(b, (uint8_t)q);
    size_t n = rnd(&g->r, 8);
    for (size_t i = 0; i < n; i++) {
        switch (rnd(&g->r, 8)) {
        case 0: putstr(b, "\\n"); break;
        case 1: putstr(b, "\\\\"); break;
        case 2: putstr(b, "\\x"); put_hex(b, rnd(&g->r, 0x80), 2); break;
        case 3: put1(b, '\\'); put1(b, (uint8_t)q); break;
        case 4: putstr(b, "\\t"); break;
        default: {
            uint8_t c = (uint8_t)(0x20 + rnd(&g->r, 0x5f));
            if (c == '\\')
                c = 'z';
            put1(b, c);
        }
        }
    }
    put1(b, (uint8_t)q);
    put1(b, '\n');
}

static void put_raw_unicode(gen *g, buf *b) {
    size_t n = rnd(&g->r, 8);
    for (size_t i = 0; i < n; i++) {
        uint32_t c = pick_cp(g, 0);
        if (c == '\\' || c == '\n' || c >= 0x100) {
            if (c >= 0x10000) {
                putstr(b, "\\U");
                put_hex(b, c, 8);
            } else {
                putstr(b, "\\u");
                put_hex(b, c, 4);
            }
        } else {
            put1(b, (uint8_t)c);
        }
    }
    put1(b, '\n');
}

static void put_float8(gen *g, buf *b) {
    static const uint64_t special[] = {0, 0x8000000000000000ULL, 0x7ff0000000000000ULL, 0xfff0000000000000ULL,
                                       0x7ff8000000000000ULL, 0x7ff0000000000001ULL, 0x3ff0000000000000ULL,
                                       0x0000000000000001ULL};
    uint64_t v = chance(&g->r, 50) ? special[rnd(&g->r, NELEM(special))] : rng_next(&g->r);
    for (int i = 7; i >= 0; i--)
        put1(b, (uint8_t)(v >> (8 * i))); /* big-endian */
}

static void put_fixed_int(gen *g, buf *b, unsigned w) {
    uint64_t v;
    switch (rnd(&g->r, 6)) {
    case 0: v = 0; break;
    case 1: v = ~0ULL; break;
    case 2: v = 1ULL << (8 * w - 1); break;
    case 3: v = (1ULL << (8 * w - 1)) - 1; break;
    default: v = rng_next(&g->r); break;
    }
    put_le(b, v, w);
}

/* the argument of a producer opcode (memo opcodes are handled apart) */
static void put_arg(gen *g, buf *b, const pkl_opinfo *in) {
    switch (in->arg) {
    case PKL_ARG_NONE: break;
    case PKL_ARG_DECIMALNL_SHORT: put_text_line(g, b, int_texts, NELEM(int_texts)); break;
    case PKL_ARG_DECIMALNL_LONG: put_text_line(g, b, long_texts, NELEM(long_texts)); break;
    case PKL_ARG_FLOATNL: put_text_line(g, b, float_texts, NELEM(float_texts)); break;
    case PKL_ARG_STRINGNL: put_quoted_string(g, b); break;
    case PKL_ARG_STRINGNL_NOESCAPE:
        putstr(b, "pid");
        put_dec(b, rnd(&g->r, 100));
        put1(b, '\n');
        break;
    case PKL_ARG_STRINGNL_NOESCAPE_PAIR:
        put_text_line(g, b, mod_names, NELEM(mod_names));
        put_text_line(g, b, cls_names, NELEM(cls_names));
        break;
    case PKL_ARG_UNICODESTRINGNL: put_raw_unicode(g, b); break;
    case PKL_ARG_FLOAT8: put_float8(g, b); break;
    default:
        if (in->layout == PKL_LAYOUT_FIXED)
            put_fixed_int(g, b, in->width);
        else if (in->layout == PKL_LAYOUT_COUNTED)
            put_counted(g, b, in);
        break;
    }
}

static void put_index(buf *b, const pkl_opinfo *in, uint32_t idx) {
    if (in->layout == PKL_LAYOUT_LINE) {
        put_dec(b, idx);
        put1(b, '\n');
    } else {
        put_le(b, idx, in->width);
    }
}

/*------------------------------------------------------------------------------
 * Emitting opcodes against the abstract state
 *----------------------------------------------------------------------------*/

static void record(gen *g, uint8_t op) {
    if (!grow((void **)&g->ops, &g->capops, g->nops + 1, sizeof *g->ops)) {
        g->oom = 1;
        return;
    }
    g->ops[g->nops++] = (bound){g->body.len, op, (uint32_t)above_fence(g), (uint32_t)g->nmarks};
}

static void memo_set(gen *g, uint32_t idx, int32_t obj) {
    for (size_t i = 0; i < g->nmemo; i++)
        if (g->memo[i].idx == idx) {
            g->memo[i].obj = obj;
            return;
        }
    if (!grow((void **)&g->memo, &g->memocap, g->nmemo + 1, sizeof *g->memo)) {
        g->oom = 1;
        return;
    }
    g->memo[g->nmemo++] = (memo_ent){idx, obj};
}

static uint32_t pick_put_index(gen *g, const pkl_opinfo *in) {
    uint32_t r = rnd(&g->r, 10);
    if (r < 7)
        return rnd(&g->r, 8);
    if (r == 7)
        return 255;
    if (memo_maxidx(in) == 255)
        return rnd(&g->r, 256);
    return r == 8 ? 256 + rnd(&g->r, 8) : 1000;
}

/* Emits opcode `op` (applicable to the current state) and applies its effect. */
static void emit(gen *g, uint8_t op) {
    const opclass *c = &ocls[op];
    const pkl_opinfo *in = c->info;
    record(g, op);
    put1(&g->body, op);
    if (failed(g))
        return;
    switch (c->res) {
    case X_GET: {
        const memo_ent *e = memo_pick(g, memo_maxidx(in));
        put_index(&g->body, in, e->idx);
        spush(g, e->obj);
        return;
    }
    case X_PUT: {
        uint32_t idx = pick_put_index(g, in);
        put_index(&g->body, in, idx);
        memo_set(g, idx, g->st[g->sp - 1]);
        return;
    }
    case X_MEMOIZE:
        memo_set(g, (uint32_t)g->nmemo, g->st[g->sp - 1]);
        return;
    case X_MARK:
        spush(g, -1);
        return;
    case X_POP:
        if (g->st[--g->sp] < 0)
            g->nmarks--;
        return;
    case X_DUP:
        spush(g, g->st[g->sp - 1]);
        return;
    case X_ROBUF: {
        int32_t id = g->st[g->sp - 1];
        if (g->objs[id].type == T_BYTEARRAY)
            g->st[g->sp - 1] = new_obj(g, T_MVIEW, 0, 0);
        return;
    }
    default: break;
    }
    put_arg(g, &g->body, in);
    /* pop the operands, computing what the result needs to know */
    int hashable = 1, strkeys = 1;
    int32_t target = -1;
    size_t first = g->sp;
    if (c->mark) {
        long m = top_mark(g);
        for (size_t i = (size_t)m + 1 + c->nafter; i < g->sp; i++) {
            hashable &= g->objs[g->st[i]].hashable;
            if (((i - (size_t)m - 1 - c->nafter) & 1) == 0 && g->objs[g->st[i]].type != T_STR)
                strkeys = 0;
        }
        first = (size_t)m - c->nfix;
        if (c->nfix)
            target = g->st[first];
        g->nmarks--;
    } else if (c->nfix) {
        first = g->sp - c->nfix;
        target = g->st[first];
        for (size_t i = first; i < g->sp; i++)
            hashable &= g->objs[g->st[i]].hashable;
        if ((pkl_opcode)op == PKL_OP_SETITEM && g->objs[g->st[first + 1]].type != T_STR)
            strkeys = 0;
    }
    g->sp = first;
    switch (c->res) {
    case X_TYPE: {
        int t = c->rtype;
        int h = (t == T_TUPLE) ? hashable : t == T_FROZENSET ? 1 : type_hashable(t);
        spush(g, new_obj(g, t, h, t == T_DICT ? strkeys : 0));
        break;
    }
    case X_SAME:
        if (g->objs[target].type == T_DICT && !strkeys)
            g->objs[target].strkeys = 0;
        spush(g, target);
        break;
    default: break; /* X_NOTHING */
    }
}

/* Candidate opcodes for the current protocol. */
static size_t eligible_ops(int proto, uint8_t *out) {
    size_t n = 0;
    for (size_t i = 0; i < pkl_opcode_count(); i++) {
        const pkl_opinfo *in = pkl_opcode_at(i);
        if (pkl_gen_eligible(proto, in->code))
            out[n++] = in->code;
    }
    return n;
}

/* Producers: opcodes that take no operand and push one typed object; with
   a mark, the empty-slice builders (MARK LIST, MARK TUPLE, MARK DICT ...). */
static int leaf_type(const opclass *c) {
    if (c->res != X_TYPE || c->nfix || c->nafter)
        return -1;
    return c->rtype; /* with a mark: an empty slice satisfies every slice rule */
}

static int leaf_satisfies(int t, int req) {
    gobj o = {(uint8_t)t, (uint8_t)(t == T_TUPLE || t == T_FROZENSET ? 1 : type_hashable(t)),
              (uint8_t)(t == T_DICT)};
    gen tmp;
    memset(&tmp, 0, sizeof tmp);
    tmp.objs = &o;
    return req_ok(&tmp, req, 0);
}

/* Pushes one fresh object satisfying `req` with one producer opcode (or
   MARK + an empty-slice builder). */
static void push_leaf(gen *g, int req, int proto) {
    uint8_t cand[256];
    size_t n = 0;
    for (int pass = 0; pass < 2 && !n; pass++) {
        int pr = pass ? PKL_HIGHEST_PROTOCOL : proto; /* fault sequences may need newer ops */
        for (size_t i = 0; i < pkl_opcode_count(); i++) {
            const pkl_opinfo *in = pkl_opcode_at(i);
            const opclass *c = &ocls[in->code];
            int t;
            if (!pkl_gen_eligible(pr, in->code) || (t = leaf_type(c)) < 0 || !leaf_satisfies(t, req))
                continue;
            cand[n++] = in->code;
        }
    }
    if (!n) {
        g->oom = 1; /* cannot happen with the stock table */
        return;
    }
    uint8_t op = cand[rnd(&g->r, (uint32_t)n)];
    if (ocls[op].mark)
        emit(g, PKL_OP_MARK);
    emit(g, op);
}

/* Pushes one fresh object satisfying `req`: a leaf, sometimes a small
   structure built from leaves, sometimes shared through the memo. */
static void push_value(gen *g, int req, int proto) {
    if (req == R_UNHASH && chance(&g->r, 25)) {
        /* a tuple holding a list: unhashable although a tuple */
        emit(g, PKL_OP_MARK);
        push_leaf(g, R_UNHASH, proto); /* not R_LIST: a stub also satisfies that */
        emit(g, PKL_OP_TUPLE);
        return;
    }
    if (req == R_NOTTYPE && chance(&g->r, 30)) { /* a call stub: callable, not a type */
        push_leaf(g, R_TYPE, proto);
        push_leaf(g, R_TUPLE, proto);
        emit(g, PKL_OP_REDUCE);
        return;
    }
    if (req == R_TYPE && proto >= ocls[PKL_OP_STACK_GLOBAL].info->proto && chance(&g->r, 30)) {
        push_leaf(g, R_STR, proto);
        push_leaf(g, R_STR, proto);
        emit(g, PKL_OP_STACK_GLOBAL);
        return;
    }
    push_leaf(g, req, proto);
    if (failed(g) || g->sp == 0 || g->objs[g->st[g->sp - 1]].type == T_GLOBAL)
        return;
    if ((req == R_HASH || req == R_ANY) && chance(&g->r, 10) && pkl_gen_eligible(proto, PKL_OP_BINPUT))
        emit(g, PKL_OP_BINPUT);
}

/* Makes `c` applicable by pushing fresh operands, then emits it. */
static void setup_and_emit(gen *g, uint8_t op) {
    const opclass *c = &ocls[op];
    if (c->res == X_GET) {
        push_value(g, R_ANY, g->proto);
        uint8_t put = 0;
        for (size_t i = 0; i < pkl_opcode_count(); i++) {
            const pkl_opinfo *in = pkl_opcode_at(i);
            if (ocls[in->code].res == X_PUT && pkl_gen_eligible(g->proto, in->code) &&
                (!put || rnd(&g->r, 2)))
                put = in->code;
        }
        if (!put)
            return;
        uint32_t idx = rnd(&g->r, 4);
        record(g, put);
        put1(&g->body, put);
        put_index(&g->body, ocls[put].info, idx);
        if (g->sp)
            memo_set(g, idx, g->st[g->sp - 1]);
        if (!failed(g))
            emit(g, op);
        return;
    }
    if (c->res == X_POP || c->res == X_MARK) {
        if (c->res == X_POP && g->sp == 0)
            push_value(g, R_ANY, g->proto);
        emit(g, op);
        return;
    }
    for (unsigned i = 0; i < c->nfix; i++)
        push_value(g, c->req[i], g->proto);
    if (c->mark) {
        emit(g, PKL_OP_MARK);
        if (c->nafter)
            push_value(g, c->areq, g->proto);
        unsigned k = rnd(&g->r, 4);
        for (unsigned i = 0; i < k; i++) {
            if (c->slice == S_PAIRS) {
                push_value(g, chance(&g->r, 30) ? R_STR : R_HASH, g->proto);
                push_value(g, R_ANY, g->proto);
            } else {
                push_value(g, c->slice == S_HASH ? R_HASH : R_ANY, g->proto);
            }
        }
    }
    if (!failed(g))
        emit(g, op);
}

static void close_marks(gen *g) {
    uint8_t cand[256];
    while (g->nmarks && !failed(g)) {
        size_t n = 0;
        for (size_t i = 0; i < pkl_opcode_count(); i++) {
            const pkl_opinfo *in = pkl_opcode_at(i);
            const opclass *c = &ocls[in->code];
            if (c->mark && pkl_gen_eligible(g->proto, in->code) && applicable(g, c))
                cand[n++] = in->code;
        }
        emit(g, n ? cand[rnd(&g->r, (uint32_t)n)] : (uint8_t)PKL_OP_LIST);
    }
}

/* Generates the body (ending with STOP) into g. */
static void gen_body(gen *g, const pkl_gen_config *cfg) {
    uint8_t elig[256];
    size_t ne = eligible_ops(g->proto, elig);
    if (chance(&g->r, 40))
        emit(g, PKL_OP_MARK); /* wrap everything in one container at the end */
    for (unsigned step = 0; step < cfg->steps && !failed(g); step++) {
        uint8_t op = 0;
        int ok = 0;
        for (int tries = 0; tries < 4 && !ok; tries++) {
            op = elig[rnd(&g->r, (uint32_t)ne)];
            ok = applicable(g, &ocls[op]);
        }
        if (ok)
            emit(g, op);
        else
            setup_and_emit(g, op);
        if (g->sp > 48) /* keep streams short: close what is open */
            close_marks(g);
    }
    close_marks(g);
    if (g->sp == 0)
        push_value(g, R_ANY, g->proto);
    record(g, PKL_OP_STOP);
    put1(&g->body, PKL_OP_STOP);
}

/*------------------------------------------------------------------------------
 * Assembly: [PROTO] + body, framed at opcode boundaries for protocol >= 4
 *----------------------------------------------------------------------------*/

typedef struct asm_out {
    buf b;
    size_t *opoff;   /* final offset of each body opcode */
    size_t *frames;  /* offsets of FRAME headers */
    size_t nframes;
} asm_out;

static void asm_free(asm_out *a) {
    free(a->b.p);
    free(a->opoff);
    free(a->frames);
}

static int assemble(gen *g, int frames, asm_out *a) {
    memset(a, 0, sizeof *a);
    a->opoff = malloc((g->nops + 1) * sizeof *a->opoff);
    a->frames = malloc((g->nops + 1) * sizeof *a->frames);
    if (!a->opoff || !a->frames)
        return 0;
    if (g->proto >= 2) {
        put1(&a->b, PKL_OP_PROTO);
        put1(&a->b, (uint8_t)g->proto);
    }
    int framed = g->proto >= 4 && (frames > 0 || (frames < 0 && chance(&g->r, 60)));
    int tail_unframed = framed && frames < 0 && chance(&g->r, 20);
    size_t i = 0;
    while (i < g->nops) {
        size_t j = g->nops;
        if (framed) {
            size_t left = g->nops - i;
            j = i + 1 + (chance(&g->r, 50) ? left - 1 : rnd(&g->r, (uint32_t)left));
            if (tail_unframed && j == g->nops && i > 0)
                framed = 0, j = g->nops;
        }
        size_t from = g->ops[i].off, to = j < g->nops ? g->ops[j].off : g->body.len;
        if (framed) {
            a->frames[a->nframes++] = a->b.len;
            put1(&a->b, PKL_OP_FRAME);
            put_le(&a->b, to - from, 8);
        }
        for (size_t k = i; k < j; k++)
            a->opoff[k] = a->b.len + (g->ops[k].off - from);
        put(&a->b, g->body.p + from, to - from);
        i = j;
    }
    return !a->b.oom;
}

/*------------------------------------------------------------------------------
 * Faults
 *----------------------------------------------------------------------------*/

enum { F_TRUNC_ARG, F_TRUNC_STOP, F_UNDERFLOW, F_MISSING_MARK, F_UNSET_MEMO, F_BAD_INT, F_BAD_LONG,
       F_BAD_FLOAT, F_BAD_QUOTES, F_BAD_ESCAPE, F_BAD_UESCAPE, F_BAD_UTF8, F_LEN_BEYOND,
       F_FRAME_BEYOND, F_BAD_PROTO, F_BAD_OPCODE, F_SG_NONSTR, F_UNHASHABLE, F_REDUCE_ARGS,
       F_NEWOBJ_CLS, F_BUILD_STATE, F_EXTRA_MARK, F_ABOVE_PROTO, F_COUNT };

static const char *const fault_names[F_COUNT] = {
    "truncate-at-argument", "truncate-before-stop", "stack-underflow", "missing-mark",
    "unset-memo-get", "bad-int-text", "bad-long-text", "bad-float-text", "bad-string-quotes",
    "bad-string-escape", "bad-unicode-escape", "bad-utf8", "length-beyond-end",
    "frame-beyond-end", "unsupported-protocol", "bad-opcode", "stack-global-non-str",
    "unhashable-key", "reduce-args-not-tuple", "newobj-class-not-type", "build-state-wrong-type",
    "extra-mark", "opcode-above-protocol"};

static const char *const fault_classes[F_COUNT] = {
    "truncated", "truncated", "stack-underflow", "mark-missing", "memo-missing", "bad-argument",
    "bad-argument", "bad-argument", "bad-argument", "bad-argument", "bad-argument", "bad-argument",
    "truncated", "truncated", "unsupported-protocol", "bad-opcode", "type-error", "type-error",
    "type-error", "type-error", "type-error", "ok", "ok"};

const char *const *pkl_gen_faults(size_t *n) {
    if (n)
        *n = F_COUNT;
    return fault_names;
}

static int fault_index(const char *name) {
    for (int i = 0; name && i < F_COUNT; i++)
        if (strcmp(name, fault_names[i]) == 0)
            return i;
    return -1;
}

const char *pkl_gen_fault_class(const char *fault) {
    int f = fault_index(fault);
    return f < 0 ? NULL : fault_classes[f];
}

/* inserts fx's body at g's opcode boundary k */
static void splice(gen *g, size_t k, const gen *fx) {
    if (failed(g) || failed(fx))
        return;
    size_t off = g->ops[k].off, add = fx->body.len;
    buf nb = {0};
    put(&nb, g->body.p, off);
    put(&nb, fx->body.p, add);
    put(&nb, g->body.p + off, g->body.len - off);
    if (nb.oom || !grow((void **)&g->ops, &g->capops, g->nops + fx->nops, sizeof *g->ops)) {
        free(nb.p);
        g->oom = 1;
        return;
    }
    free(g->body.p);
    g->body = nb;
    memmove(g->ops + k + fx->nops, g->ops + k, (g->nops - k) * sizeof *g->ops);
    for (size_t i = 0; i < fx->nops; i++) {
        g->ops[k + i] = fx->ops[i];
        g->ops[k + i].off += off;
    }
    for (size_t i = k + fx->nops; i < g->nops + fx->nops; i++)
        g->ops[i].off += add;
    g->nops += fx->nops;
}

/* raw opcode + argument bytes into fx (no stack effect) */
static void raw_op(gen *fx, uint8_t op, const char *arg, size_t alen) {
    record(fx, op);
    put1(&fx->body, op);
    put(&fx->body, arg, alen);
}

/* a random table opcode satisfying pred, or 0 when none */
typedef int (*op_pred)(const opclass *c, const void *ctx);
static uint8_t pick_op(gen *g, op_pred pred, const void *ctx) {
    uint8_t cand[256];
    size_t n = 0;
    for (size_t i = 0; i < pkl_opcode_count(); i++) {
        const opclass *c = &ocls[pkl_opcode_at(i)->code];
        if (pred(c, ctx))
            cand[n++] = c->info->code;
    }
    return n ? cand[rnd(&g->r, (uint32_t)n)] : 0;
}

static int pred_arg(const opclass *c, const void *ctx) {
    return !c->structural && (int)c->info->arg == *(const int *)ctx && c->res == X_TYPE;
}
static int pred_underflow(const opclass *c, const void *ctx) {
    const bound *b = ctx;
    if (c->structural || c->mark || c->nfix <= b->above)
        return 0;
    return c->res != X_POP || b->marks == 0;
}
static int pred_mark(const opclass *c, const void *ctx) {
    (void)ctx;
    return c->known && !c->structural && c->mark;
}
static int pred_get(const opclass *c, const void *ctx) {
    (void)ctx;
    return c->res == X_GET;
}
static int pred_counted(const opclass *c, const void *ctx) {
    size_t need = *(const size_t *)ctx;
    return c->info->layout == PKL_LAYOUT_COUNTED && (c->info->width > 1 || need <= 255);
}
static int pred_above(const opclass *c, const void *ctx) {
    int proto = *(const int *)ctx;
    return c->known && c->eligible && c->info->proto > proto && leaf_type(c) >= 0 && !c->mark;
}
static int pred_utf8(const opclass *c, const void *ctx) {
    (void)ctx;
    return c->info->arg == PKL_ARG_UNICODESTRING1 || c->info->arg == PKL_ARG_UNICODESTRING4 ||
           c->info->arg == PKL_ARG_UNICODESTRING8;
}

static const char *pick_text(gen *g, const char *const *tab, size_t n) { return tab[rnd(&g->r, (uint32_t)n)]; }

static void bad_line(gen *fx, gen *g, int kind, const char *const *tab, size_t n) {
    uint8_t op = pick_op(g, pred_arg, &kind);
    const char *t = pick_text(g, tab, n);
    record(fx, op);
    put1(&fx->body, op);
    putstr(&fx->body, t);
    put1(&fx->body, '\n');
}

/* Applies a body-level fault: returns 0 when not applicable. k_out gets the
   insertion boundary. */
static int body_fault(gen *g, int f, int *frames) {
    gen fx;
    memset(&fx, 0, sizeof fx);
    fx.r.s = rng_next(&g->r);
    fx.proto = g->proto;
    fx.max_payload = g->max_payload;
    size_t k = rnd(&g->r, (uint32_t)g->nops); /* any boundary up to STOP */
    int ok = 1;
    switch (f) {
    case F_UNDERFLOW: {
        /* a boundary where the stack above the top mark is empty */
        size_t n = 0;
        for (size_t i = 0; i < g->nops; i++)
            n += g->ops[i].above == 0;
        size_t pick = rnd(&g->r, (uint32_t)n);
        for (k = 0; k < g->nops; k++)
            if (g->ops[k].above == 0 && pick-- == 0)
                break;
        uint8_t op = pick_op(g, pred_underflow, &g->ops[k]);
        record(&fx, op);
        put1(&fx.body, op);
        if (ocls[op].res == X_PUT)
            put_index(&fx.body, ocls[op].info, 0);
        else
            put_arg(&fx, &fx.body, ocls[op].info);
        break;
    }
    case F_MISSING_MARK: {
        size_t n = 0;
        for (size_t i = 0; i < g->nops; i++)
            n += g->ops[i].marks == 0;
        size_t pick = rnd(&g->r, (uint32_t)n);
        for (k = 0; k < g->nops; k++)
            if (g->ops[k].marks == 0 && pick-- == 0)
                break;
        uint8_t op = pick_op(g, pred_mark, NULL);
        record(&fx, op);
        put1(&fx.body, op);
        put_arg(&fx, &fx.body, ocls[op].info);
        break;
    }
    case F_UNSET_MEMO: {
        uint8_t op = pick_op(g, pred_get, NULL);
        uint32_t idx = 0;
        for (int tries = 0;; tries++) {
            idx = tries < 50 ? rnd(&g->r, 256) : 100000u + (uint32_t)tries;
            int used = 0;
            for (size_t i = 0; i < g->nmemo; i++)
                used |= g->memo[i].idx == idx;
            if (!used && (idx <= 255 || memo_maxidx(ocls[op].info) > 255))
                break;
            if (tries > 60)
                op = PKL_OP_LONG_BINGET;
        }
        record(&fx, op);
        put1(&fx.body, op);
        put_index(&fx.body, ocls[op].info, idx);
        break;
    }
    case F_BAD_INT: {
        static const char *const t[] = {"12a", "abc", "1.5", "--1", "0x", "1__0", "+-3", "9 9", "0b2"};
        bad_line(&fx, g, PKL_ARG_DECIMALNL_SHORT, t, NELEM(t));
        break;
    }
    case F_BAD_LONG: {
        static const char *const t[] = {"12a", "abc", "1.5L", "LL", "1LL", "0x", "--2L", "010L"};
        bad_line(&fx, g, PKL_ARG_DECIMALNL_LONG, t, NELEM(t));
        break;
    }
    case F_BAD_FLOAT: {
        static const char *const t[] = {"1.5x", "abc", "1..2", "--1", "1e", "0x1p3q", "."};
        bad_line(&fx, g, PKL_ARG_FLOATNL, t, NELEM(t));
        break;
    }
    case F_BAD_QUOTES: {
        static const char *const t[] = {"'abc", "abc", "'abc\"", "'", "\"x'", "abc'"};
        bad_line(&fx, g, PKL_ARG_STRINGNL, t, NELEM(t));
        break;
    }
    case F_BAD_ESCAPE: {
        static const char *const t[] = {"'\\x4'", "'\\xzz'", "'ab\\'", "\"\\x\"", "'\\x1g'"};
        bad_line(&fx, g, PKL_ARG_STRINGNL, t, NELEM(t));
        break;
    }
    case F_BAD_UESCAPE: {
        static const char *const t[] = {"ab\\u12x", "\\U00110000", "\\u", "x\\U0001f60", "\\ud8"};
        bad_line(&fx, g, PKL_ARG_UNICODESTRINGNL, t, NELEM(t));
        break;
    }
    case F_BAD_UTF8: {
        static const char *const t[] = {"\xff", "a\xc3", "\xc0\x80", "\xf8\x88\x80\x80\x80", "\x80",
                                        "\xf4\x90\x80\x80", "ok\xe2\x82"};
        uint8_t op = pick_op(g, pred_utf8, NULL);
        const char *p = pick_text(g, t, NELEM(t));
        record(&fx, op);
        put1(&fx.body, op);
        put_le(&fx.body, strlen(p), ocls[op].info->width);
        putstr(&fx.body, p);
        break;
    }
    case F_LEN_BEYOND: {
        size_t need = (g->body.len - g->ops[k].off) + 18 + 9 * g->nops + 1 + rnd(&g->r, 64);
        uint8_t op = pick_op(g, pred_counted, &need);
        record(&fx, op);
        put1(&fx.body, op);
        put_le(&fx.body, need, ocls[op].info->width);
        break;
    }
    case F_FRAME_BEYOND:
        if (g->proto >= 4) {
            *frames = 1; /* enlarged after assembly */
            return 1;
        } else {
            size_t need = (g->body.len - g->ops[k].off) + 1 + rnd(&g->r, 64);
            record(&fx, PKL_OP_FRAME);
            put1(&fx.body, PKL_OP_FRAME);
            put_le(&fx.body, need, 8);
        }
        break;
    case F_BAD_OPCODE: {
        uint8_t b;
        do
            b = (uint8_t)rnd(&g->r, 256);
        while (pkl_opcode_info(b));
        raw_op(&fx, b, "", 0);
        break;
    }
    case F_SG_NONSTR: {
        int v = (int)rnd(&g->r, 3);
        push_value(&fx, v == 1 ? R_STR : R_NOTSTR, fx.proto);
        push_value(&fx, v == 0 ? R_STR : R_NOTSTR, fx.proto);
        raw_op(&fx, PKL_OP_STACK_GLOBAL, "", 0);
        break;
    }
    case F_UNHASHABLE: {
        int v = (int)rnd(&g->r, 5);
        if (v == 0 || v == 1)
            push_value(&fx, R_DICTONLY, fx.proto);
        if (v == 3)
            push_value(&fx, R_SETONLY, fx.proto);
        if (v != 0)
            emit(&fx, PKL_OP_MARK);
        if ((v == 1 || v == 2) && chance(&g->r, 50)) { /* a good pair first */
            push_value(&fx, R_HASH, fx.proto);
            push_value(&fx, R_ANY, fx.proto);
        }
        push_value(&fx, R_UNHASH, fx.proto);
        if (v <= 2)
            push_value(&fx, R_ANY, fx.proto);
        static const uint8_t ops[5] = {PKL_OP_SETITEM, PKL_OP_SETITEMS, PKL_OP_DICT, PKL_OP_ADDITEMS,
                                       PKL_OP_FROZENSET};
        raw_op(&fx, ops[v], "", 0);
        break;
    }
    case F_REDUCE_ARGS:
        push_value(&fx, R_CALL, fx.proto);
        push_value(&fx, R_NOTTUPLE, fx.proto);
        raw_op(&fx, PKL_OP_REDUCE, "", 0);
        break;
    case F_NEWOBJ_CLS: {
        int ex = chance(&g->r, 40);
        push_value(&fx, R_NOTTYPE, fx.proto);
        push_value(&fx, R_TUPLE, fx.proto);
        if (ex)
            push_value(&fx, R_KWDICT, fx.proto);
        raw_op(&fx, ex ? PKL_OP_NEWOBJ_EX : PKL_OP_NEWOBJ, "", 0);
        break;
    }
    case F_BUILD_STATE:
        push_value(&fx, R_BUILTIN, fx.proto);
        push_value(&fx, R_BADSTATE, fx.proto);
        raw_op(&fx, PKL_OP_BUILD, "", 0);
        break;
    case F_EXTRA_MARK: {
        k = 0; /* only a mark below everything is harmless */
        unsigned n = 1 + rnd(&g->r, 3);
        for (unsigned i = 0; i < n; i++)
            raw_op(&fx, PKL_OP_MARK, "", 0);
        break;
    }
    case F_ABOVE_PROTO: {
        int p = g->proto;
        uint8_t op = pick_op(g, pred_above, &p);
        if (!op) {
            ok = 0;
            break;
        }
        fx.proto = PKL_HIGHEST_PROTOCOL;
        if (ocls[op].mark)
            emit(&fx, PKL_OP_MARK);
        emit(&fx, op);
        emit(&fx, PKL_OP_POP);
        break;
    }
    default:
        gen_free(&fx);
        return 1; /* assembly-level fault */
    }
    if (ok)
        splice(g, k, &fx);
    if (failed(&fx))
        g->oom = 1;
    gen_free(&fx);
    return ok;
}

/* Applies an assembly-level fault to a->b. */
static void asm_fault(gen *g, int f, asm_out *a) {
    switch (f) {
    case F_TRUNC_STOP:
        a->b.len = a->opoff[g->nops - 1];
        break;
    case F_TRUNC_ARG: {
        /* candidate arguments: PROTO's, each FRAME's, each body opcode's */
        size_t starts[3], lens[3], n = 0;
        if (g->proto >= 2)
            starts[n] = 1, lens[n++] = 1;
        if (a->nframes) {
            size_t fi = rnd(&g->r, (uint32_t)a->nframes);
            starts[n] = a->frames[fi] + 1, lens[n++] = 8;
        }
        for (int tries = 0; tries < 64; tries++) {
            size_t i = rnd(&g->r, (uint32_t)g->nops);
            size_t next = i + 1 < g->nops ? g->ops[i + 1].off : g->body.len;
            size_t alen = next - g->ops[i].off - 1;
            if (alen) {
                starts[n] = a->opoff[i] + 1, lens[n++] = alen;
                break;
            }
        }
        if (!n) { /* nothing has an argument (protocol 0/1, no data): cut the STOP */
            a->b.len = a->opoff[g->nops - 1];
            break;
        }
        size_t c = rnd(&g->r, (uint32_t)n);
        a->b.len = starts[c] + rnd(&g->r, (uint32_t)lens[c]);
        break;
    }
    case F_FRAME_BEYOND:
        if (a->nframes) {
            size_t h = a->frames[rnd(&g->r, (uint32_t)a->nframes)];
            size_t claim = (a->b.len - (h + 9)) + 1 + rnd(&g->r, 64);
            for (unsigned i = 0; i < 8; i++)
                a->b.p[h + 1 + i] = (uint8_t)(claim >> (8 * i));
        }
        break;
    case F_BAD_PROTO: {
        uint8_t v = (uint8_t)(6 + rnd(&g->r, 250));
        if (g->proto >= 2) {
            a->b.p[1] = v;
        } else {
            uint8_t hdr[2] = {PKL_OP_PROTO, v};
            buf nb = {0};
            put(&nb, hdr, 2);
            put(&nb, a->b.p, a->b.len);
            if (nb.oom) {
                g->oom = 1;
                free(nb.p);
                break;
            }
            free(a->b.p);
            a->b = nb;
        }
        break;
    }
    default: break;
    }
}

/*------------------------------------------------------------------------------
 * Public entry points
 *----------------------------------------------------------------------------*/

void pkl_gen_config_init(pkl_gen_config *cfg, int protocol) {
    cfg->protocol = protocol;
    cfg->steps = 24;
    cfg->max_payload = 300;
    cfg->frames = -1;
}

static uint64_t mix_seed(uint64_t seed, int proto, int f) {
    rng r = {seed ^ ((uint64_t)(proto + 1) << 56) ^ ((uint64_t)(f + 2) << 48)};
    return rng_next(&r);
}

static size_t generate(uint64_t seed, const pkl_gen_config *cfg, int f, uint8_t *out, size_t cap) {
    if (!cfg || cfg->protocol < 0 || cfg->protocol > PKL_HIGHEST_PROTOCOL)
        return 0;
    ocls_init();
    gen g;
    memset(&g, 0, sizeof g);
    g.r.s = mix_seed(seed, cfg->protocol, f);
    g.proto = cfg->protocol;
    g.max_payload = cfg->max_payload ? cfg->max_payload : 300;
    int frames = cfg->frames;
    gen_body(&g, cfg);
    if (f >= 0 && !failed(&g) && !body_fault(&g, f, &frames)) {
        gen_free(&g);
        return 0;
    }
    asm_out a;
    memset(&a, 0, sizeof a);
    size_t n = 0;
    if (!failed(&g) && assemble(&g, frames, &a)) {
        if (f >= 0)
            asm_fault(&g, f, &a);
        if (!failed(&g)) {
            n = a.b.len;
            if (n <= cap)
                memcpy(out, a.b.p, n);
        }
    }
    asm_free(&a);
    gen_free(&g);
    return n;
}

size_t pkl_gen_valid_cfg(uint64_t seed, const pkl_gen_config *cfg, uint8_t *out, size_t cap) {
    return generate(seed, cfg, -1, out, cap);
}

size_t pkl_gen_valid(uint64_t seed, int protocol, uint8_t *out, size_t cap) {
    pkl_gen_config cfg;
    pkl_gen_config_init(&cfg, protocol);
    return pkl_gen_valid_cfg(seed, &cfg, out, cap);
}

size_t pkl_gen_invalid_cfg(uint64_t seed, const pkl_gen_config *cfg, const char *fault, uint8_t *out,
                           size_t cap, const char **expected) {
    int f = fault_index(fault);
    if (f < 0)
        return 0;
    if (expected)
        *expected = fault_classes[f];
    return generate(seed, cfg, f, out, cap);
}

size_t pkl_gen_invalid(uint64_t seed, int protocol, const char *fault, uint8_t *out, size_t cap,
                       const char **expected) {
    pkl_gen_config cfg;
    pkl_gen_config_init(&cfg, protocol);
    return pkl_gen_invalid_cfg(seed, &cfg, fault, out, cap, expected);
}

/*------------------------------------------------------------------------------
 * Structure-aware mutation
 *----------------------------------------------------------------------------*/

typedef struct pop {
    size_t off, end;  /* opcode byte .. one past its argument (clamped to len) */
    uint8_t complete; /* the argument was entirely present */
} pop;

#define MUT_MAX_OPS 4096

/* Parses up to MUT_MAX_OPS opcodes with the table; stops at STOP, at a
   byte that is not an opcode, or at a truncated argument. */
static size_t parse_ops(const uint8_t *d, size_t len, pop *ops) {
    size_t n = 0, i = 0;
    while (i < len && n < MUT_MAX_OPS) {
        const pkl_opinfo *in = pkl_opcode_info(d[i]);
        if (!in)
            break;
        size_t a = i + 1, end = a;
        int complete = 1;
        switch (in->layout) {
        case PKL_LAYOUT_NONE: break;
        case PKL_LAYOUT_FIXED: end = a + in->width; break;
        case PKL_LAYOUT_COUNTED: {
            if (len - a < in->width) {
                end = len + 1;
                break;
            }
            uint64_t l = 0;
            for (unsigned k = 0; k < in->width; k++)
                l |= (uint64_t)d[a + k] << (8 * k);
            end = l > len ? len + 1 : a + in->width + (size_t)l;
            break;
        }
        case PKL_LAYOUT_LINE:
        case PKL_LAYOUT_LINE2: {
            unsigned lines = in->layout == PKL_LAYOUT_LINE2 ? 2 : 1;
            while (end < len && lines) {
                if (d[end] == '\n')
                    lines--;
                end++;
            }
            if (lines)
                end = len + 1;
            break;
        }
        }
        if (end > len) {
            end = len;
            complete = 0;
        }
        ops[n++] = (pop){i, end, (uint8_t)complete};
        if (!complete || in->code == PKL_OP_STOP)
            break;
        i = end;
    }
    return n;
}

/* Entries parse_ops may fill for `len` bytes: every opcode takes at least
   one byte. Sizing by the input keeps a fuzzer's mutator off the large-
   allocation path (mmap per call under ASan) for the usual short inputs. */
static size_t ops_room(size_t len) { return len < MUT_MAX_OPS ? len + 1 : MUT_MAX_OPS; }

/* The length a complete FRAME at ops entry `op` claims for its data. */
static uint64_t frame_claim(const uint8_t *d, const pop *op) {
    uint64_t l = 0;
    for (unsigned k = 0; k < 8; k++)
        l |= (uint64_t)d[op->off + 1 + k] << (8 * k);
    return l;
}

/* Adjusts the length of the FRAME whose data contains position x by delta. */
static void fix_frames(uint8_t *d, const pop *ops, size_t n, size_t x, long delta) {
    for (size_t i = 0; i < n; i++) {
        if (d[ops[i].off] != PKL_OP_FRAME || !ops[i].complete)
            continue;
        uint64_t l = frame_claim(d, &ops[i]);
        if (x >= ops[i].end && x - ops[i].end <= l) {
            if (delta < 0 && l < (uint64_t)-delta)
                return;
            l += (uint64_t)delta; /* modular: no signed overflow on a claim near 2^63 */
            for (unsigned k = 0; k < 8; k++)
                d[ops[i].off + 1 + k] = (uint8_t)(l >> (8 * k));
            return;
        }
    }
}

/* Replaces d[at, at+del) with ins[0, nins); checks cap. */
static int replace_bytes(uint8_t *d, size_t *len, size_t cap, size_t at, size_t del, const uint8_t *ins,
                         size_t nins) {
    if (*len - del + nins > cap)
        return 0;
    memmove(d + at + nins, d + at + del, *len - at - del);
    if (nins)
        memcpy(d + at, ins, nins);
    *len = *len - del + nins;
    return 1;
}

size_t pkl_gen_mutate(uint64_t seed, uint8_t *data, size_t len, size_t cap) {
    ocls_init();
    if (len > cap)
        len = cap;
    rng r = {seed};
    pop *ops = malloc(ops_room(len) * sizeof *ops);
    if (!ops)
        return len;
    size_t n = parse_ops(data, len, ops);
    int proto = len >= 2 && data[0] == PKL_OP_PROTO && data[1] <= PKL_HIGHEST_PROTOCOL ? data[1] : 5;
    gen fx;
    memset(&fx, 0, sizeof fx);
    fx.r.s = rng_next(&r);
    fx.proto = proto;
    fx.max_payload = 64;
    int done = 0;
    for (int attempt = 0; attempt < 8 && !done; attempt++) {
        unsigned what = n ? rnd(&r, 8) : 7;
        size_t k = n ? rnd(&r, (uint32_t)n) : 0;
        size_t at = n ? ops[k].off : 0, olen = n ? ops[k].end - ops[k].off : 0;
        long delta = 0;
        switch (what) {
        case 0: /* delete one opcode */
            if (n > 1 && replace_bytes(data, &len, cap, at, olen, NULL, 0))
                delta = -(long)olen, done = 1;
            break;
        case 1: { /* duplicate one opcode */
            uint8_t tmp[64];
            if (olen <= sizeof tmp && data[at] != PKL_OP_STOP) {
                memcpy(tmp, data + at, olen);
                if (replace_bytes(data, &len, cap, at, 0, tmp, olen))
                    delta = (long)olen, done = 1;
            }
            break;
        }
        case 2: /* insert a stack-neutral fragment: push a value, POP it */
        case 3: { /* replace a producer with another producer of the same type */
            const opclass *c = &ocls[data[at]];
            int t = what == 3 && c->known ? leaf_type(c) : -1;
            if (what == 3 && (t < 0 || c->mark || !ops[k].complete))
                break;
            fx.body.len = 0;
            fx.nops = fx.sp = fx.nobj = fx.nmarks = 0;
            if (what == 2) {
                push_value(&fx, R_ANY, proto);
                emit(&fx, PKL_OP_POP);
            } else {
                static const int treq[T_COUNT] = {R_HASH, R_HASH, R_HASH, R_HASH, R_STR, R_HASH, R_ANY,
                                                  R_LIST, R_TUPLE, R_DICTONLY, R_SETONLY, R_HASH,
                                                  R_TYPE, R_CALL, R_ANY};
                /* exact type: retry the leaf until it matches */
                for (int tries = 0; tries < 16; tries++) {
                    fx.body.len = 0;
                    fx.nops = fx.sp = fx.nobj = fx.nmarks = 0;
                    push_leaf(&fx, treq[t], proto);
                    if (fx.nops == 1 && fx.sp == 1 && fx.objs[fx.st[0]].type == t)
                        break;
                }
                if (!(fx.nops == 1 && fx.sp == 1))
                    break;
            }
            if (failed(&fx))
                break;
            size_t del = what == 3 ? olen : 0;
            if (replace_bytes(data, &len, cap, at, del, fx.body.p, fx.body.len))
                delta = (long)fx.body.len - (long)del, done = 1;
            break;
        }
        case 4: { /* argument boundary tweak */
            const pkl_opinfo *in = pkl_opcode_info(data[at]);
            if (!in || olen < 2)
                break;
            size_t a = at + 1;
            if (in->layout == PKL_LAYOUT_FIXED || in->layout == PKL_LAYOUT_COUNTED) {
                unsigned w = in->width;
                if (a + w > len)
                    break;
                static const uint64_t vals[] = {0, 1, 0x7f, 0x80, 0xff, 0x100, 0x7fffffff, 0x80000000u,
                                                0xffffffffu, ~0ULL};
                uint64_t v = vals[rnd(&r, NELEM(vals))];
                if (in->layout == PKL_LAYOUT_COUNTED && chance(&r, 50)) {
                    uint64_t l = 0;
                    for (unsigned i = 0; i < w; i++)
                        l |= (uint64_t)data[a + i] << (8 * i);
                    v = chance(&r, 50) ? l + 1 : l - 1;
                }
                for (unsigned i = 0; i < w; i++)
                    data[a + i] = (uint8_t)(v >> (8 * i));
                done = 1;
            } else if (ops[k].end > a + 1) {
                static const char chars[] = "0123456789-+.eLx_'\"\\un \n";
                size_t p = a + rnd(&r, (uint32_t)(ops[k].end - a - 1));
                uint8_t ch = (uint8_t)chars[rnd(&r, sizeof chars - 1)];
                if (chance(&r, 50))
                    data[p] = ch, done = 1;
                else if (chance(&r, 50) && replace_bytes(data, &len, cap, p, 1, NULL, 0))
                    delta = -1, done = 1;
                else if (replace_bytes(data, &len, cap, p, 0, &ch, 1))
                    delta = 1, done = 1;
            }
            break;
        }
        case 5: { /* swap the opcode for another with the same argument shape */
            const pkl_opinfo *in = pkl_opcode_info(data[at]);
            uint8_t cand[256];
            size_t nc = 0;
            for (size_t i = 0; in && i < pkl_opcode_count(); i++) {
                const pkl_opinfo *o = pkl_opcode_at(i);
                if (o->layout == in->layout && o->width == in->width && o->code != in->code)
                    cand[nc++] = o->code;
            }
            if (nc)
                data[at] = cand[rnd(&r, (uint32_t)nc)], done = 1;
            break;
        }
        case 6: /* cut the stream inside or right before an opcode */
            if (n) {
                len = at + rnd(&r, (uint32_t)olen + 1);
                done = 1;
            }
            break;
        default: /* a random byte somewhere */
            if (len && chance(&r, 50)) {
                data[rnd(&r, (uint32_t)len)] = (uint8_t)rng_next(&r);
                done = 1;
            } else {
                uint8_t b = (uint8_t)rng_next(&r);
                size_t p = rnd(&r, (uint32_t)len + 1);
                if (replace_bytes(data, &len, cap, p, 0, &b, 1))
                    done = 1;
            }
            break;
        }
        /* keep FRAME lengths consistent (usually): ops[] still describes
           the bytes before `at`, where every enclosing FRAME header lies */
        if (done && delta && chance(&r, 75))
            fix_frames(data, ops, k, at, delta);
    }
    gen_free(&fx);
    free(ops);
    return len;
}

/* Shortens every FRAME whose claimed length runs past the end of d to what
   is left: after a splice, frames from either parent rarely fit, and an
   overlong frame makes the whole stream `truncated` at its header. */
static void clamp_frames(uint8_t *d, size_t len, pop *ops) {
    size_t n = parse_ops(d, len, ops);
    for (size_t i = 0; i < n; i++) {
        if (d[ops[i].off] != PKL_OP_FRAME || !ops[i].complete)
            continue;
        uint64_t l = frame_claim(d, &ops[i]);
        uint64_t rest = len - ops[i].end;
        if (l > rest)
            for (unsigned k = 0; k < 8; k++)
                d[ops[i].off + 1 + k] = (uint8_t)(rest >> (8 * k));
    }
}

/* offset of opcode boundary i of a parsed stream (i == n: end of the last op) */
static size_t boundary(const pop *ops, size_t n, size_t i) {
    return i < n ? ops[i].off : n ? ops[n - 1].end : 0;
}

static size_t copy_capped(uint8_t *out, size_t at, size_t cap, const uint8_t *src, size_t n) {
    if (at >= cap)
        return at;
    if (n > cap - at)
        n = cap - at;
    if (n)
        memcpy(out + at, src, n);
    return at + n;
}

size_t pkl_gen_crossover(uint64_t seed, const uint8_t *a, size_t alen, const uint8_t *b, size_t blen,
                         uint8_t *out, size_t cap) {
    rng r = {seed};
    /* oa is reused for the result, which is at most alen + blen bytes */
    size_t room_a = ops_room(alen + blen), room_b = ops_room(blen);
    pop *oa = malloc((room_a + room_b) * sizeof *oa);
    if (!oa)
        return copy_capped(out, 0, cap, a, alen);
    pop *ob = oa + room_a;
    size_t na = parse_ops(a, alen, oa), nb = parse_ops(b, blen, ob);
    /* A's cut: any boundary before its STOP (the STOP itself may go) */
    size_t last = na && a[oa[na - 1].off] == PKL_OP_STOP ? na - 1 : na;
    size_t cut = boundary(oa, na, rnd(&r, (uint32_t)last + 1));
    size_t j = rnd(&r, (uint32_t)nb + 1);
    size_t n = copy_capped(out, 0, cap, a, cut);
    if (chance(&r, 50)) { /* A's head, B's tail (B's STOP and trailing bytes included) */
        size_t from = boundary(ob, nb, j);
        n = copy_capped(out, n, cap, b + from, blen - from);
    } else { /* B's opcodes j..k inserted into A at the cut */
        size_t k = j + rnd(&r, (uint32_t)(nb - j) + 1);
        size_t from = boundary(ob, nb, j), to = boundary(ob, nb, k);
        n = copy_capped(out, n, cap, b + from, to - from);
        n = copy_capped(out, n, cap, a + cut, alen - cut);
    }
    clamp_frames(out, n, oa);
    free(oa);
    return n;
}
