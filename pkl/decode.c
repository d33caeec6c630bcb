/* libpkl decoder: pickle bytes -> value graph, with the semantics of
 * CPython 3.13's C unpickler (Modules/_pickle.c) and every global stubbed.
 *
 * The dispatch is a switch over the PKL_OP_* enumerators, which come from
 * spec/opcodes.def; a byte with no case is not an opcode (pkl_opcode_info
 * confirms it). Argument widths follow the table's argument kinds.
 *
 * Machine state mirrors CPython's: a value stack, a separate mark stack
 * whose top is the "fence" no opcode may pop across, and a memo. The memo
 * is a dense array for small indices plus a hash map for sparse large
 * ones, so `LONG_BINPUT 0x7fffffff` costs one entry, not gigabytes.
 *
 * Ownership: pkl_load returns a document owned by the caller; every
 * per-load scratch buffer (stack, marks, memo, caches, temporaries) is
 * charged to that document's allocator and freed before pkl_load returns,
 * on success and on failure alike. Nothing recurses.
 */
#include <errno.h>
#include <float.h>
#include <locale.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "value.h"

#if defined(__GNUC__)
#define HOT_INLINE static inline __attribute__((always_inline))
#else
#define HOT_INLINE static inline
#endif

/*==============================================================================
 * u64 -> pointer map (sparse memo, EXT cache)
 *============================================================================*/

typedef struct umap {
    uint64_t *keys; /* key + 1; 0 = empty slot */
    void **vals;
    size_t cap, len;
} umap;

static inline size_t umap_slot(uint64_t k, size_t mask) {
    k ^= k >> 31;
    k *= 0x7fb5d329728ea185ull;
    k ^= k >> 27;
    return (size_t)k & mask;
}

static void *umap_get(const umap *m, uint64_t key) {
    if (!m->cap)
        return NULL;
    size_t mask = m->cap - 1, s = umap_slot(key, mask);
    while (m->keys[s]) {
        if (m->keys[s] == key + 1)
            return m->vals[s];
        s = (s + 1) & mask;
    }
    return NULL;
}

static void umap_free(pkl_doc *doc, umap *m) {
    if (m->cap) {
        pkl_mem_free(doc, m->keys, m->cap * sizeof *m->keys);
        pkl_mem_free(doc, m->vals, m->cap * sizeof *m->vals);
    }
    memset(m, 0, sizeof *m);
}

/* Sets key -> val; *added tells whether the key was new. Keys < 2^64-1.
   The tables are owned by the map (charged to doc, freed by umap_free).
   Returns false when the allocator fails (the map is then unchanged). */
static bool umap_put(pkl_doc *doc, umap *m, uint64_t key, void *val, bool *added) {
    if (m->cap) {
        size_t mask = m->cap - 1, s = umap_slot(key, mask);
        while (m->keys[s]) {
            if (m->keys[s] == key + 1) {
                m->vals[s] = val;
                *added = false;
                return true;
            }
            s = (s + 1) & mask;
        }
    }
    if ((m->len + 1) * 2 > m->cap) {
        size_t ncap = m->cap ? m->cap * 2 : 16;
        uint64_t *nk = pkl_mem_alloc(doc, ncap * sizeof *nk);
        void **nv = nk ? pkl_mem_alloc(doc, ncap * sizeof *nv) : NULL;
        if (!nv) {
            if (nk)
                pkl_mem_free(doc, nk, ncap * sizeof *nk);
            return false;
        }
        memset(nk, 0, ncap * sizeof *nk);
        for (size_t i = 0; i < m->cap; i++) {
            if (!m->keys[i])
                continue;
            size_t s = umap_slot(m->keys[i] - 1, ncap - 1);
            while (nk[s])
                s = (s + 1) & (ncap - 1);
            nk[s] = m->keys[i];
            nv[s] = m->vals[i];
        }
        size_t len = m->len;
        umap_free(doc, m);
        m->keys = nk;
        m->vals = nv;
        m->cap = ncap;
        m->len = len;
    }
    size_t mask = m->cap - 1, s = umap_slot(key, mask);
    while (m->keys[s])
        s = (s + 1) & mask;
    m->keys[s] = key + 1;
    m->vals[s] = val;
    m->len++;
    *added = true;
    return true;
}

/*==============================================================================
 * Loader state and errors
 *============================================================================*/

typedef struct ld {
    pkl_doc *doc;
    const uint8_t *base, *p, *end;
    const pkl_load_opts *o;
    pkl_limits lim;
    pkl_err e;
    size_t op; /* offset of the opcode being executed */

    pkl_val **st; /* value stack */
    size_t sp, scap;
    size_t *marks; /* mark stack; fence = top mark or 0 */
    size_t nmarks, mcap, fence;

    pkl_val **memo; /* dense part: indices < dcap (initialised slots) */
    size_t dcap;
    size_t dlim;    /* slots in the memo array; [dcap, dlim) not yet initialised */
    umap smemo;      /* sparse part: indices >= dcap */
    size_t memo_len; /* distinct entries, as CPython's memo_len */

    umap ext;       /* EXT code -> global node, as copyreg._extension_cache */
    size_t nbufs;   /* out-of-band buffers consumed */

    /* initial scratch, so small pickles need no scratch allocation at all */
    pkl_val *st_local[128];
    size_t marks_local[32];
    pkl_val *memo_local[64];
} ld;

#define LOCAL_LEN(a) (sizeof(a) / sizeof((a)[0]))

static int fail(ld *L, pkl_code code, const char *msg) {
    L->e.code = code;
    L->e.msg = msg;
    L->e.pos = L->op;
    return -1;
}

/* The input ended inside an opcode or before STOP. */
static int truncated(ld *L) {
    fail(L, PKL_ERR_TRUNCATED, "pickle data was truncated");
    L->e.pos = (size_t)(L->end - L->base);
    return -1;
}

static int nomem(ld *L) {
    if (L->doc->nnodes >= L->doc->max_nodes)
        return fail(L, PKL_ERR_RESOURCE_LIMIT, "node limit (max_nodes) reached");
    return fail(L, PKL_ERR_RESOURCE_LIMIT, "out of memory (allocator or max_alloc)");
}

static int underflow(ld *L) {
    return fail(L, PKL_ERR_STACK_UNDERFLOW,
                L->nmarks ? "unexpected MARK found: the opcode needs items above the top mark"
                          : "unpickling stack underflow");
}

static void event(ld *L, pkl_event_kind k, const pkl_val *target, const pkl_val *result,
                  const char *m, size_t ml, const char *n, size_t nl) {
    if (!L->o->on_event)
        return;
    pkl_event ev;
    ev.kind = k;
    ev.pos = L->op;
    ev.module = m;
    ev.mlen = ml;
    ev.name = n;
    ev.nlen = nl;
    ev.target = target;
    ev.result = result;
    L->o->on_event(L->o->ctx, &ev);
}

/*==============================================================================
 * Stack, marks, memo
 *============================================================================*/

/* The value stack moves to (or grows) a block charged to the document and
   freed by free_scratch. */
static int grow_stack(ld *L) {
    if (L->sp >= L->lim.max_stack)
        return fail(L, PKL_ERR_RESOURCE_LIMIT, "value stack limit (max_stack) reached");
    size_t ncap = L->scap ? L->scap * 2 : 64;
    if (ncap > L->lim.max_stack)
        ncap = L->lim.max_stack;
    if (ncap > SIZE_MAX / sizeof(pkl_val *))
        return nomem(L);
    pkl_val **ns;
    if (L->st == L->st_local) {
        ns = pkl_mem_alloc(L->doc, ncap * sizeof *ns);
        if (ns)
            memcpy(ns, L->st, L->sp * sizeof *ns);
    } else {
        ns = pkl_mem_realloc(L->doc, L->st, L->scap * sizeof *ns, ncap * sizeof *ns);
    }
    if (!ns)
        return nomem(L);
    L->st = ns;
    L->scap = ncap;
    return 0;
}

/* Pushes v; a NULL v is a failed allocation reported here. */
HOT_INLINE int push(ld *L, pkl_val *v) {
    if (!v)
        return nomem(L);
    if (L->sp == L->scap && grow_stack(L))
        return -1;
    L->st[L->sp++] = v;
    return 0;
}

static inline pkl_val *pop(ld *L) {
    if (L->sp <= L->fence) {
        underflow(L);
        return NULL;
    }
    return L->st[--L->sp];
}

/* Pops the top mark; *out = the stack height it recorded. */
static int marker(ld *L, size_t *out) {
    if (L->nmarks == 0)
        return fail(L, PKL_ERR_MARK_MISSING, "could not find MARK");
    *out = L->marks[--L->nmarks];
    L->fence = L->nmarks ? L->marks[L->nmarks - 1] : 0;
    return 0;
}

HOT_INLINE pkl_val *memo_get(ld *L, uint64_t idx) {
    if (idx < L->dcap)
        return L->memo[idx];
    return L->smemo.len ? umap_get(&L->smemo, idx) : NULL;
}

/* memo[idx] = v, CPython's _Unpickler_MemoPut with a sparse tail. The
   memo's blocks are scratch charged to the document, freed by free_scratch. */
static int memo_put(ld *L, uint64_t idx, pkl_val *v) {
    if (idx >= L->dcap && idx < L->dlim) {
        /* the start-up array is initialised lazily (sparse keys are never
           below its length) */
        memset(L->memo + L->dcap, 0, (size_t)(idx + 1 - L->dcap) * sizeof *L->memo);
        L->dcap = (size_t)idx + 1;
    } else if (idx >= L->dcap && idx <= 2 * (uint64_t)L->memo_len + 1024 && idx < SIZE_MAX / 16) {
        /* grow the dense part to cover idx and copy in the sparse entries it
           now covers; those stay in the map too, but lookups below dcap never
           consult the map again */
        size_t ncap = L->dlim ? L->dlim : 64;
        while (ncap <= idx)
            ncap *= 2;
        pkl_val **nm;
        if (L->memo == L->memo_local) {
            nm = pkl_mem_alloc(L->doc, ncap * sizeof *nm);
            if (nm)
                memcpy(nm, L->memo, L->dcap * sizeof *nm);
        } else {
            nm = pkl_mem_realloc(L->doc, L->memo, L->dlim * sizeof *nm, ncap * sizeof *nm);
        }
        if (!nm)
            return nomem(L);
        memset(nm + L->dcap, 0, (ncap - L->dcap) * sizeof *nm);
        for (size_t i = 0; L->smemo.len && i < L->smemo.cap; i++) {
            uint64_t k = L->smemo.keys[i];
            if (k && k - 1 < ncap)
                nm[k - 1] = L->smemo.vals[i];
        }
        L->memo = nm;
        L->dcap = L->dlim = ncap;
    }
    if (idx < L->dcap) {
        if (!L->memo[idx]) {
            if (L->memo_len >= L->lim.max_memo)
                return fail(L, PKL_ERR_RESOURCE_LIMIT, "memo limit (max_memo) reached");
            L->memo_len++;
        }
        L->memo[idx] = v;
        return 0;
    }
    if (L->memo_len >= L->lim.max_memo && !umap_get(&L->smemo, idx))
        return fail(L, PKL_ERR_RESOURCE_LIMIT, "memo limit (max_memo) reached");
    bool added;
    if (!umap_put(L->doc, &L->smemo, idx, v, &added))
        return nomem(L);
    if (added)
        L->memo_len++;
    return 0;
}

/* memo[idx] = v when idx is in the dense part (the common case). */
HOT_INLINE int memo_put_fast(ld *L, uint64_t idx, pkl_val *v) {
    if (idx < L->dcap) {
        if (L->memo[idx]) {
            L->memo[idx] = v;
            return 0;
        }
        if (L->memo_len < L->lim.max_memo) {
            L->memo_len++;
            L->memo[idx] = v;
            return 0;
        }
    } else if (idx == L->dcap && idx < L->dlim && L->memo_len < L->lim.max_memo) {
        L->memo[L->dcap++] = v; /* the next uninitialised slot: a new entry */
        L->memo_len++;
        return 0;
    }
    return memo_put(L, idx, v);
}

/*==============================================================================
 * Reading arguments
 *============================================================================*/

HOT_INLINE int need(ld *L, size_t n) {
    if ((size_t)(L->end - L->p) < n)
        return truncated(L);
    return 0;
}

/* One '\n'-terminated line; *len includes the '\n'. */
HOT_INLINE int readline(ld *L, const uint8_t **s, size_t *len) {
    const uint8_t *p = L->p, *nl = NULL;
    size_t avail = (size_t)(L->end - p), i = 0;
    for (size_t lim = avail < 24 ? avail : 24; i < lim; i++) /* most lines are short */
        if (p[i] == '\n') {
            nl = p + i;
            break;
        }
    if (!nl && i < avail)
        nl = memchr(p + i, '\n', avail - i);
    if (!nl)
        return truncated(L);
    *s = L->p;
    *len = (size_t)(nl - L->p) + 1;
    L->p = nl + 1;
    return 0;
}

/* CPython hands lines to C parsers NUL-terminated: they stop at the first NUL. */
static inline size_t cstr_len(const uint8_t *s, size_t len) {
    const uint8_t *z = memchr(s, 0, len);
    return z ? (size_t)(z - s) : len;
}

HOT_INLINE uint64_t rd_le(const uint8_t *p, unsigned n) {
    uint64_t v = 0;
    for (unsigned i = n; i-- > 0;)
        v = (v << 8) | p[i];
    return v;
}

/* A counted length of `width` bytes (calc_binsize): lengths that do not fit
   Py_ssize_t are CPython's OverflowError; longer than the input: truncated. */
HOT_INLINE int read_count(ld *L, unsigned width, size_t *out) {
    if (need(L, width))
        return -1;
    uint64_t n = rd_le(L->p, width);
    L->p += width;
    if (n > (uint64_t)INT64_MAX) /* CPython: OverflowError, beyond any Py_ssize_t size */
        return fail(L, PKL_ERR_RESOURCE_LIMIT, "length exceeds the maximum size (2^63-1)");
    if (n > (uint64_t)(L->end - L->p))
        return truncated(L);
    *out = (size_t)n;
    return 0;
}

static inline bool is_space(uint8_t c) { return c == ' ' || (c >= '\t' && c <= '\r'); }

static inline unsigned digit_value(uint8_t c) { /* _PyLong_DigitValue */
    if (c >= '0' && c <= '9')
        return c - '0';
    c |= 0x20;
    if (c >= 'a' && c <= 'z')
        return (unsigned)(c - 'a') + 10;
    return 37;
}

/* A STR/BYTES/BYTEARRAY node holding a copy of d[0..n): node and payload
   straight from the document's chunk and arena fast paths. */
HOT_INLINE pkl_val *new_bytes(ld *L, pkl_kind kind, const uint8_t *d, size_t n) {
    pkl_val *v = pkl_node_fast(L->doc, kind);
    if (!v)
        return NULL;
    if (n == 0) {
        static char empty[1];
        v->u.bytes.data = empty;
        return v;
    }
    char *data = pkl_arena_fast(L->doc, n);
    if (!data)
        return NULL;
    memcpy(data, d, n);
    v->u.bytes.data = data;
    v->u.bytes.len = n;
    return v;
}

/* True when d[0..n) is ASCII. May read up to 7 bytes past d + n while they
   are still inside the input (avail = bytes readable from d). */
HOT_INLINE bool ascii_fast(const uint8_t *d, size_t n, size_t avail) {
    static const uint8_t tail_mask[8][8] = {
        {0}, {0x80}, {0x80, 0x80}, {0x80, 0x80, 0x80}, {0x80, 0x80, 0x80, 0x80},
        {0x80, 0x80, 0x80, 0x80, 0x80}, {0x80, 0x80, 0x80, 0x80, 0x80, 0x80},
        {0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80}};
    size_t i = 0;
    uint64_t acc = 0, w;
    for (; i + 8 <= n; i += 8) {
        memcpy(&w, d + i, 8);
        acc |= w;
    }
    size_t r = n - i;
    if (r) {
        if (i + 8 <= avail) {
            uint64_t m;
            memcpy(&w, d + i, 8);
            memcpy(&m, tail_mask[r], 8);
            acc |= w & m;
        } else {
            for (; i < n; i++)
                acc |= d[i] & 0x80u;
        }
    }
    return (acc & 0x8080808080808080ull) == 0;
}

/*==============================================================================
 * Integer text: strtol(s, &end, 0) and PyLong_FromString(s, NULL, base)
 *============================================================================*/

/* glibc strtol(s, &end, 0) on the C string s[0..e): returns the end offset
   (0 when nothing was converted), *ovf on ERANGE. */
static size_t c_strtol0(const uint8_t *s, size_t e, int64_t *out, bool *ovf) {
    size_t i = 0;
    *ovf = false;
    *out = 0;
    while (i < e && is_space(s[i]))
        i++;
    bool neg = false;
    if (i < e && (s[i] == '+' || s[i] == '-')) {
        neg = s[i] == '-';
        i++;
    }
    unsigned base = 10;
    if (i < e && s[i] == '0') {
        if (i + 2 < e && (s[i + 1] | 0x20) == 'x' && digit_value(s[i + 2]) < 16) {
            base = 16;
            i += 2;
        } else {
            base = 8;
        }
    }
    size_t start = i;
    uint64_t limit = neg ? (uint64_t)INT64_MAX + 1u : (uint64_t)INT64_MAX, acc = 0;
    for (; i < e; i++) {
        unsigned d = digit_value(s[i]);
        if (d >= base)
            break;
        if (acc > (limit - d) / base)
            *ovf = true;
        else
            acc = acc * base + d;
    }
    if (i == start)
        return 0;
    if (neg)
        *out = acc == (uint64_t)INT64_MAX + 1u ? INT64_MIN : -(int64_t)acc;
    else
        *out = (int64_t)acc;
    return i;
}

enum { PL_OK, PL_SYNTAX, PL_LIMIT, PL_NOMEM };

typedef struct bigtmp {
    bool neg;
    uint8_t *mag; /* big-endian magnitude (may have leading zeros) */
    size_t n;
    size_t heap; /* bytes of a heap block at mag, 0 when mag == buf */
    uint8_t buf[32];
} bigtmp;

static void bigtmp_free(ld *L, bigtmp *b) {
    if (b->heap)
        pkl_mem_free(L->doc, b->mag, b->heap);
    b->heap = 0;
}

/* A magnitude buffer: inline, or a block owned by b (bigtmp_free). */
static uint8_t *bigtmp_alloc(ld *L, bigtmp *b, size_t n) {
    if (n <= sizeof b->buf) {
        b->mag = b->buf;
        b->heap = 0;
    } else {
        b->mag = pkl_mem_alloc(L->doc, n);
        if (!b->mag)
            return NULL;
        b->heap = n;
    }
    memset(b->mag, 0, n);
    b->n = n;
    return b->mag;
}

/* PyLong_FromString(s, NULL, base) on the C string s[0..e) (base 0 or 10).
   Fills *out on PL_OK (free with bigtmp_free). */
static int py_long(ld *L, const uint8_t *s, size_t e, int base, bigtmp *out) {
    size_t i = 0;
    bool error_if_nonzero = false;
    out->heap = 0;
    out->neg = false;
    while (i < e && is_space(s[i]))
        i++;
    if (i < e && (s[i] == '+' || s[i] == '-')) {
        out->neg = s[i] == '-';
        i++;
    }
    if (base == 0) {
        if (i >= e || s[i] != '0')
            base = 10;
        else if (i + 1 < e && (s[i + 1] | 0x20) == 'x')
            base = 16;
        else if (i + 1 < e && (s[i + 1] | 0x20) == 'o')
            base = 8;
        else if (i + 1 < e && (s[i + 1] | 0x20) == 'b')
            base = 2;
        else {
            error_if_nonzero = true;
            base = 10;
        }
        if (base != 10) {
            i += 2;
            if (i < e && s[i] == '_')
                i++;
        }
    }
    size_t start = i, digits = 0;
    if (i < e && s[i] == '_')
        return PL_SYNTAX;
    uint8_t prev = 0;
    while (i < e && (digit_value(s[i]) < (unsigned)base || s[i] == '_')) {
        if (s[i] == '_') {
            if (prev == '_')
                return PL_SYNTAX;
        } else {
            digits++;
        }
        prev = s[i++];
    }
    if (prev == '_')
        return PL_SYNTAX;
    size_t stop = i;
    if (start == stop)
        return PL_SYNTAX;
    while (i < e && is_space(s[i]))
        i++;
    if (i != e)
        return PL_SYNTAX;
    if (base == 10 && L->lim.max_digits && digits > L->lim.max_digits)
        return PL_LIMIT;
    if (base == 10 && digits <= 19) { /* fits u64: no limb arithmetic */
        uint64_t acc = 0;
        for (size_t j = start; j < stop; j++)
            if (s[j] != '_')
                acc = acc * 10 + (uint64_t)(s[j] - '0');
        bigtmp_alloc(L, out, 8); /* the inline buffer: cannot fail */
        for (unsigned b = 0; b < 8; b++)
            out->mag[7 - b] = (uint8_t)(acc >> (8 * b));
    } else if (base == 10) {
        /* limbs of 32 bits, little-endian; each step: x = x * 10^k + chunk */
        size_t nl = digits / 9 + 2;
        if (nl > SIZE_MAX / 8)
            return PL_NOMEM;
        uint32_t *limb = pkl_mem_alloc(L->doc, nl * sizeof *limb);
        if (!limb)
            return PL_NOMEM;
        size_t used = 0;
        uint32_t chunk = 0, mul = 1;
        for (size_t j = start; j <= stop; j++) {
            if (j < stop) {
                if (s[j] == '_')
                    continue;
                chunk = chunk * 10 + (s[j] - '0');
                mul *= 10;
                if (mul != 1000000000u)
                    continue;
            } else if (mul == 1) {
                break;
            }
            uint64_t carry = chunk;
            for (size_t k = 0; k < used; k++) {
                uint64_t t = (uint64_t)limb[k] * mul + carry;
                limb[k] = (uint32_t)t;
                carry = t >> 32;
            }
            if (carry)
                limb[used++] = (uint32_t)carry;
            chunk = 0;
            mul = 1;
        }
        if (!bigtmp_alloc(L, out, used * 4 + 1)) {
            pkl_mem_free(L->doc, limb, nl * sizeof *limb);
            return PL_NOMEM;
        }
        for (size_t k = 0; k < used; k++)
            for (unsigned b = 0; b < 4; b++)
                out->mag[out->n - 1 - (4 * k + b)] = (uint8_t)(limb[k] >> (8 * b));
        pkl_mem_free(L->doc, limb, nl * sizeof *limb);
    } else {
        unsigned bits = base == 16 ? 4 : base == 8 ? 3 : 1;
        if (digits > SIZE_MAX / 8)
            return PL_NOMEM;
        size_t nbytes = (digits * bits + 7) / 8 + 1;
        if (!bigtmp_alloc(L, out, nbytes))
            return PL_NOMEM;
        size_t bitpos = 0; /* from the least significant end */
        for (size_t j = stop; j-- > start;) {
            if (s[j] == '_')
                continue;
            unsigned d = digit_value(s[j]);
            for (unsigned b = 0; b < bits; b++, bitpos++)
                if ((d >> b) & 1)
                    out->mag[nbytes - 1 - bitpos / 8] |= (uint8_t)(1u << (bitpos % 8));
        }
    }
    if (error_if_nonzero) {
        for (size_t k = 0; k < out->n; k++)
            if (out->mag[k]) {
                bigtmp_free(L, out);
                return PL_SYNTAX;
            }
    }
    return PL_OK;
}

/* Value of a parsed integer as int64 (false when it does not fit). */
static bool bigtmp_i64(const bigtmp *b, int64_t *out) {
    uint64_t m = 0;
    for (size_t k = 0; k < b->n; k++) {
        if (m >> 56)
            return false;
        m = (m << 8) | b->mag[k];
    }
    if (!b->neg) {
        if (m > (uint64_t)INT64_MAX)
            return false;
        *out = (int64_t)m;
    } else {
        if (m > (uint64_t)INT64_MAX + 1u)
            return false;
        *out = m == (uint64_t)INT64_MAX + 1u ? INT64_MIN : -(int64_t)m;
    }
    return true;
}

/* Text argument of GET/PUT: PyLong_FromString(s, NULL, 10) + AsSsize_t.
   *fits is false when the value is outside Py_ssize_t (OverflowError). */
static int parse_index(ld *L, const uint8_t *s, size_t len, int64_t *idx, bool *fits) {
    if (len >= 2 && len <= 19) { /* fast path: the line is just digits */
        uint64_t v = 0;
        size_t i = 0;
        for (; i < len - 1 && s[i] >= '0' && s[i] <= '9'; i++)
            v = v * 10 + (uint64_t)(s[i] - '0');
        if (i == len - 1) {
            *idx = (int64_t)v;
            *fits = true;
            return 0;
        }
    }
    bigtmp b;
    int r = py_long(L, s, cstr_len(s, len), 10, &b);
    if (r == PL_NOMEM)
        return nomem(L);
    if (r == PL_LIMIT)
        return fail(L, PKL_ERR_RESOURCE_LIMIT,
                    "memo index has more decimal digits than max_digits");
    if (r != PL_OK)
        return fail(L, PKL_ERR_BAD_ARGUMENT, "memo index is not a base-10 integer");
    *fits = bigtmp_i64(&b, idx);
    bigtmp_free(L, &b);
    return 0;
}

static pkl_val *make_int_from(ld *L, bigtmp *b) {
    pkl_val *v = pkl_make_int_mag(L->doc, b->mag, b->n, b->neg);
    bigtmp_free(L, b);
    return v;
}

/*==============================================================================
 * Text decoders
 *============================================================================*/

/* UTF-8 validity; surrogates (ED A0..BF xx) are allowed when `sp`
   (Python's "surrogatepass"). ASCII runs are skipped a word at a time;
   other characters are checked without data-dependent branches (mixed
   scripts would defeat branch prediction): the lead byte gives the length
   and the allowed range of the second byte. */
static const uint8_t utf8_len[256] = {
#define R16(c) c, c, c, c, c, c, c, c, c, c, c, c, c, c, c, c
    R16(1), R16(1), R16(1), R16(1), R16(1), R16(1), R16(1), R16(1), /* 00-7F */
    R16(0), R16(0), R16(0), R16(0),                                 /* 80-BF */
    0, 0, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,                 /* C0-CF */
    R16(2), R16(3),                                                 /* D0-EF */
    4, 4, 4, 4, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0                  /* F0-FF */
#undef R16
};

static bool utf8_valid(const uint8_t *s, size_t n, bool sp) {
    const unsigned ed_hi = sp ? 0xbf : 0x9f;
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        if (c < 0x80) {
            i++;
            while (i + 8 <= n) {
                uint64_t w;
                memcpy(&w, s + i, 8);
                if (w & 0x8080808080808080ull)
                    break;
                i += 8;
            }
            continue;
        }
        unsigned len = utf8_len[c];
        unsigned lo = c == 0xe0 ? 0xa0 : c == 0xf0 ? 0x90 : 0x80;
        unsigned hi = c == 0xf4 ? 0x8f : c == 0xed ? ed_hi : 0xbf;
        if (n - i >= 4) {
            unsigned b1 = s[i + 1], b2 = s[i + 2], b3 = s[i + 3];
            unsigned ok = (len != 0) & (b1 >= lo) & (b1 <= hi) &
                          ((len < 3) | ((b2 ^ 0x80u) < 0x40u)) &
                          ((len < 4) | ((b3 ^ 0x80u) < 0x40u));
            if (!ok)
                return false;
            i += len;
            continue;
        }
        /* the last bytes: check with bounds */
        if (len == 0 || len > n - i || s[i + 1] < lo || s[i + 1] > hi)
            return false;
        for (unsigned k = 2; k < len; k++)
            if ((s[i + k] ^ 0x80u) >= 0x40u)
                return false;
        i += len;
    }
    return true;
}

static bool is_ascii(const uint8_t *s, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, s + i, 8);
        if (w & 0x8080808080808080ull)
            return false;
    }
    for (; i < n; i++)
        if (s[i] & 0x80)
            return false;
    return true;
}

static inline size_t utf8_put(uint8_t *o, uint32_t cp) {
    if (cp < 0x80) {
        o[0] = (uint8_t)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (uint8_t)(0xc0 | (cp >> 6));
        o[1] = (uint8_t)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (uint8_t)(0xe0 | (cp >> 12));
        o[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f));
        o[2] = (uint8_t)(0x80 | (cp & 0x3f));
        return 3;
    }
    o[0] = (uint8_t)(0xf0 | (cp >> 18));
    o[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3f));
    o[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f));
    o[3] = (uint8_t)(0x80 | (cp & 0x3f));
    return 4;
}

/* raw-unicode-escape: one pass to validate and size, one to write. */
static int decode_raw_unicode_escape(ld *L, const uint8_t *s, size_t n, pkl_val **out) {
    if (!memchr(s, '\\', n) && is_ascii(s, n)) { /* nothing to decode */
        *out = new_bytes(L, PKL_STR, s, n);
        return *out ? 0 : nomem(L);
    }
    /* every input byte yields at most two output bytes: short lines are
       decoded in one pass into a buffer of that bound, long ones are sized
       by a first pass */
    size_t outlen = 2 * n;
    int first = n <= 65536 ? 1 : 0;
    for (int pass = first; pass < 2; pass++) {
        uint8_t *o = NULL;
        if (pass == 1) {
            *out = pkl_make_bytes_uninit(L->doc, PKL_STR, outlen);
            if (!*out)
                return nomem(L);
            o = (uint8_t *)(*out)->u.bytes.data;
        }
        size_t w = 0;
        for (size_t i = 0; i < n;) {
            uint8_t c = s[i++];
            uint32_t cp;
            if (c != '\\' || i >= n) {
                cp = c;
            } else {
                uint8_t d = s[i++];
                unsigned count = d == 'u' ? 4 : d == 'U' ? 8 : 0;
                if (!count) { /* not an escape: both characters stay */
                    if (o) {
                        o[w] = '\\';
                        w += utf8_put(o + w + 1, d) + 1;
                    } else {
                        w += 1 + (d < 0x80 ? 1 : 2);
                    }
                    continue;
                }
                cp = 0;
                for (unsigned k = 0; k < count; k++, i++) {
                    if (i >= n)
                        return fail(L, PKL_ERR_BAD_ARGUMENT,
                                    "truncated \\uXXXX or \\UXXXXXXXX escape in UNICODE");
                    unsigned v = digit_value(s[i]);
                    if (v >= 16)
                        return fail(L, PKL_ERR_BAD_ARGUMENT,
                                    "truncated \\uXXXX or \\UXXXXXXXX escape in UNICODE");
                    cp = (cp << 4) | v;
                }
                if (cp > 0x10ffff)
                    return fail(L, PKL_ERR_BAD_ARGUMENT, "\\Uxxxxxxxx out of range in UNICODE");
            }
            if (o)
                w += utf8_put(o + w, cp);
            else
                w += cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
        }
        outlen = w;
    }
    pkl_bytes_truncate(L->doc, *out, outlen);
    return 0;
}

/* PyBytes_DecodeEscape (strict) followed by ASCII decoding: py2 str. */
static int decode_string_escape(ld *L, const uint8_t *s, size_t n, pkl_val **out) {
    pkl_val *v = pkl_make_bytes_uninit(L->doc, PKL_STR, n);
    if (!v)
        return nomem(L);
    uint8_t *o = (uint8_t *)v->u.bytes.data;
    size_t w = 0;
    for (size_t i = 0; i < n;) {
        uint8_t c = s[i++];
        if (c != '\\') {
            o[w++] = c;
            continue;
        }
        if (i >= n)
            return fail(L, PKL_ERR_BAD_ARGUMENT, "trailing \\ in STRING argument");
        c = s[i++];
        switch (c) {
        case '\n':
            break;
        case '\\':
        case '\'':
        case '"':
            o[w++] = c;
            break;
        case 'b':
            o[w++] = '\b';
            break;
        case 'f':
            o[w++] = '\f';
            break;
        case 't':
            o[w++] = '\t';
            break;
        case 'n':
            o[w++] = '\n';
            break;
        case 'r':
            o[w++] = '\r';
            break;
        case 'v':
            o[w++] = '\v';
            break;
        case 'a':
            o[w++] = '\a';
            break;
        case '0': case '1': case '2': case '3': case '4': case '5': case '6': case '7': {
            unsigned x = c - '0';
            if (i < n && s[i] >= '0' && s[i] <= '7') {
                x = x * 8 + (s[i++] - '0');
                if (i < n && s[i] >= '0' && s[i] <= '7')
                    x = x * 8 + (s[i++] - '0');
            }
            o[w++] = (uint8_t)x; /* values above 0o377 wrap, as CPython stores a char */
            break;
        }
        case 'x':
            if (i + 1 < n && digit_value(s[i]) < 16 && digit_value(s[i + 1]) < 16) {
                o[w++] = (uint8_t)(digit_value(s[i]) * 16 + digit_value(s[i + 1]));
                i += 2;
                break;
            }
            return fail(L, PKL_ERR_BAD_ARGUMENT, "invalid \\x escape in STRING argument");
        default: /* unknown escape: the backslash stays, the char is reread */
            o[w++] = '\\';
            i--;
            break;
        }
    }
    pkl_bytes_truncate(L->doc, v, w);
    if (!is_ascii(o, w))
        return fail(L, PKL_ERR_BAD_ARGUMENT,
                    "py2 string is not ASCII (the default encoding='ASCII' refuses it)");
    *out = v;
    return 0;
}

/*==============================================================================
 * Float text: PyOS_string_to_double syntax, correctly rounded value
 *============================================================================*/

static bool ci_match(const uint8_t *s, size_t e, size_t i, const char *w) {
    for (; *w; w++, i++)
        if (i >= e || (s[i] | 0x20) != (uint8_t)*w)
            return false;
    return true;
}

static int op_float(ld *L) {
    const uint8_t *s;
    size_t len;
    if (readline(L, &s, &len))
        return -1;
    if (len < 2)
        return fail(L, PKL_ERR_TRUNCATED, "FLOAT argument is an empty line");
    size_t e = cstr_len(s, len);
    size_t i = 0;
    bool neg = false;
    if (i < e && (s[i] == '+' || s[i] == '-')) {
        neg = s[i] == '-';
        i++;
    }
    size_t d0 = i, nd = 0;
    while (i < e && s[i] >= '0' && s[i] <= '9')
        i++, nd++;
    if (i < e && s[i] == '.') {
        i++;
        while (i < e && s[i] >= '0' && s[i] <= '9')
            i++, nd++;
    }
    uint64_t bits;
    size_t k;
    if (nd == 0) { /* not a number: maybe inf / infinity / nan */
        i = d0;
        if (ci_match(s, e, i, "inf")) {
            k = i + 3;
            if (ci_match(s, e, k, "inity"))
                k += 5;
            bits = 0x7ff0000000000000ull;
        } else if (ci_match(s, e, i, "nan")) {
            k = i + 3;
            bits = 0x7ff8000000000000ull;
        } else {
            return fail(L, PKL_ERR_BAD_ARGUMENT, "could not convert FLOAT argument to float");
        }
        if (neg)
            bits |= (uint64_t)1 << 63;
        if (!(k == e || s[k] == '\n'))
            return fail(L, PKL_ERR_BAD_ARGUMENT, "could not convert FLOAT argument to float");
        return push(L, pkl_make_float(L->doc, bits));
    }
    k = i;
    if (i < e && (s[i] | 0x20) == 'e') {
        size_t j = i + 1;
        if (j < e && (s[j] == '+' || s[j] == '-'))
            j++;
        if (j < e && s[j] >= '0' && s[j] <= '9') {
            while (j < e && s[j] >= '0' && s[j] <= '9')
                j++;
            k = j;
        }
    }
    if (!(k == e || s[k] == '\n'))
        return fail(L, PKL_ERR_BAD_ARGUMENT, "could not convert FLOAT argument to float");
#if FLT_EVAL_METHOD == 0
    { /* exact fast path: at most 15 significant digits and a small power of
         ten are both exact doubles, and one IEEE operation rounds correctly */
        static const double p10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                     1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                     1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
        uint64_t mant = 0;
        int sig = 0, frac = 0;
        bool dot = false, ok = true;
        long ex = 0;
        size_t j = d0;
        for (; j < k; j++) {
            uint8_t c = s[j];
            if (c == '.') {
                dot = true;
                continue;
            }
            if (c < '0' || c > '9')
                break;
            if (mant == 0 && c == '0') { /* leading zeros are not significant */
                if (dot)
                    frac++;
                continue;
            }
            if (++sig > 15) {
                ok = false;
                break;
            }
            mant = mant * 10 + (uint64_t)(c - '0');
            if (dot)
                frac++;
        }
        if (ok && j < k) { /* exponent */
            j++;
            bool eneg = false;
            if (s[j] == '+' || s[j] == '-')
                eneg = s[j++] == '-';
            for (; j < k && ok; j++) {
                ex = ex * 10 + (s[j] - '0');
                if (ex > 1000)
                    ok = false;
            }
            if (eneg)
                ex = -ex;
        }
        ex -= frac;
        if (ok && ex >= -22 && ex <= 22) {
            double d = (double)mant;
            d = ex < 0 ? d / p10[-ex] : d * p10[ex];
            if (neg)
                d = -d;
            memcpy(&bits, &d, sizeof bits);
            return push(L, pkl_make_float(L->doc, bits));
        }
    }
#endif
    /* s[0..k) is a valid decimal literal: strtod rounds it correctly. It
       reads the decimal point of the current locale: when that is not '.'
       (a program that called setlocale), substitute the locale's. */
    int saved_errno = errno;
    char *probe_end;
    const char *probe = "0.5";
    bool swap = !(strtod(probe, &probe_end) == 0.5 && probe_end == probe + 3);
    const char *dp = swap ? localeconv()->decimal_point : ".";
    if (!dp || !dp[0])
        dp = ".";
    size_t dpl = strlen(dp);
    size_t bufn = k + dpl + 1;
    char small[128];
    char *buf = bufn <= sizeof small ? small : pkl_mem_alloc(L->doc, bufn);
    if (!buf)
        return nomem(L);
    size_t w = 0;
    for (size_t j = 0; j < k; j++) {
        if (s[j] == '.' && swap) {
            memcpy(buf + w, dp, dpl);
            w += dpl;
        } else {
            buf[w++] = (char)s[j];
        }
    }
    buf[w] = 0;
    double d = strtod(buf, NULL);
    errno = saved_errno;
    if (buf != small)
        pkl_mem_free(L->doc, buf, bufn);
    if (isinf(d))
        return fail(L, PKL_ERR_BAD_ARGUMENT, "FLOAT argument too large to convert to float");
    memcpy(&bits, &d, sizeof bits);
    return push(L, pkl_make_float(L->doc, bits));
}

/*==============================================================================
 * Numbers
 *============================================================================*/

static int op_int(ld *L) {
    const uint8_t *s;
    size_t len;
    if (readline(L, &s, &len))
        return -1;
    if (len < 2)
        return fail(L, PKL_ERR_TRUNCATED, "INT argument is an empty line");
    size_t e = cstr_len(s, len);
    int64_t x;
    bool ovf;
    size_t end = c_strtol0(s, e, &x, &ovf);
    if (!ovf && (end == e || s[end] == '\n')) {
        if (len == 3 && (x == 0 || x == 1))
            return push(L, pkl_bool(L->doc, x == 1));
        return push(L, pkl_make_int(L->doc, x));
    }
    bigtmp b;
    int r = py_long(L, s, e, 0, &b);
    if (r == PL_NOMEM)
        return nomem(L);
    if (r == PL_LIMIT) /* CPython says "could not convert": the cause is int_max_str_digits */
        return fail(L, PKL_ERR_RESOURCE_LIMIT, "INT argument has more decimal digits than max_digits");
    if (r != PL_OK)
        return fail(L, PKL_ERR_BAD_ARGUMENT, "could not convert INT argument to int");
    return push(L, make_int_from(L, &b));
}

static int op_long(ld *L) {
    const uint8_t *s;
    size_t len;
    if (readline(L, &s, &len))
        return -1;
    if (len < 2)
        return fail(L, PKL_ERR_TRUNCATED, "LONG argument is an empty line");
    size_t e = cstr_len(s, len);
    if (s[len - 2] == 'L' && e > len - 2)
        e = len - 2; /* the trailing L is overwritten with a NUL */
    bigtmp b;
    int r = py_long(L, s, e, 0, &b);
    if (r == PL_NOMEM)
        return nomem(L);
    if (r == PL_LIMIT)
        return fail(L, PKL_ERR_RESOURCE_LIMIT, "LONG argument has more decimal digits than max_digits");
    if (r != PL_OK)
        return fail(L, PKL_ERR_BAD_ARGUMENT, "invalid literal for int() in LONG argument");
    return push(L, make_int_from(L, &b));
}

static int op_counted_long(ld *L, unsigned width) {
    if (need(L, width))
        return -1;
    uint64_t u = rd_le(L->p, width);
    L->p += width;
    if (width == 4 && (u & 0x80000000u))
        return fail(L, PKL_ERR_BAD_ARGUMENT, "LONG pickle has negative byte count");
    size_t n = (size_t)u;
    if (n == 0)
        return push(L, pkl_make_int(L->doc, 0));
    if (need(L, n))
        return -1;
    const uint8_t *d = L->p;
    L->p += n;
    return push(L, pkl_make_int_le(L->doc, d, n));
}

/*==============================================================================
 * Strings and bytes
 *============================================================================*/

HOT_INLINE int op_counted_bytes(ld *L, unsigned width, pkl_kind kind) {
    size_t n = 0;
    if (read_count(L, width, &n))
        return -1;
    const uint8_t *d = L->p;
    L->p += n;
    return push(L, new_bytes(L, kind, d, n));
}

static int op_binstring(ld *L, unsigned width) {
    size_t n = 0;
    if (read_count(L, width, &n))
        return -1;
    const uint8_t *d = L->p;
    L->p += n;
    if (!is_ascii(d, n))
        return fail(L, PKL_ERR_BAD_ARGUMENT,
                    "py2 string is not ASCII (the default encoding='ASCII' refuses it)");
    return push(L, new_bytes(L, PKL_STR, d, n));
}

HOT_INLINE int op_binunicode(ld *L, unsigned width) {
    size_t n = 0;
    if (read_count(L, width, &n))
        return -1;
    const uint8_t *d = L->p;
    L->p += n;
    if (!ascii_fast(d, n, (size_t)(L->end - d)) && !utf8_valid(d, n, true))
        return fail(L, PKL_ERR_BAD_ARGUMENT, "invalid UTF-8 in unicode string argument");
    return push(L, new_bytes(L, PKL_STR, d, n));
}

static int op_string(ld *L) {
    const uint8_t *s;
    size_t len;
    if (readline(L, &s, &len))
        return -1;
    len--; /* the newline */
    if (!(len >= 2 && s[0] == s[len - 1] && (s[0] == '\'' || s[0] == '"')))
        return fail(L, PKL_ERR_BAD_ARGUMENT, "the STRING opcode argument must be quoted");
    pkl_val *v = NULL;
    if (decode_string_escape(L, s + 1, len - 2, &v))
        return -1;
    return push(L, v);
}

static int op_unicode(ld *L) {
    const uint8_t *s;
    size_t len;
    if (readline(L, &s, &len))
        return -1;
    pkl_val *v = NULL;
    if (decode_raw_unicode_escape(L, s, len - 1, &v))
        return -1;
    return push(L, v);
}

/*==============================================================================
 * Containers
 *============================================================================*/

HOT_INLINE int op_counted_tuple(ld *L, size_t n) {
    if (L->sp < n || L->sp - n < L->fence)
        return underflow(L);
    size_t start = L->sp - n;
    pkl_val *t = pkl_make_tuple(L->doc, L->st + start, n);
    L->sp = start;
    return push(L, t);
}

static int op_tuple(ld *L) {
    size_t i = 0;
    if (marker(L, &i))
        return -1;
    return op_counted_tuple(L, L->sp - i);
}

static int op_list(ld *L) {
    size_t i = 0;
    if (marker(L, &i))
        return -1;
    size_t n = L->sp - i;
    pkl_val *v = pkl_node_fast(L->doc, PKL_LIST);
    if (!v)
        return nomem(L);
    if (n) {
        if (pkl_seq_reserve(L->doc, v, n))
            return nomem(L);
        memcpy(v->u.seq.items, L->st + i, n * sizeof(pkl_val *));
        v->u.seq.len = n;
    }
    L->sp = i;
    return push(L, v);
}

static int map_error(ld *L, pkl_code rc) {
    if (rc == PKL_ERR_TYPE_ERROR)
        return fail(L, PKL_ERR_TYPE_ERROR, "unhashable type used as a dict key or set element");
    return nomem(L);
}

static int op_dict(ld *L) {
    size_t i = 0;
    if (marker(L, &i))
        return -1;
    size_t j = L->sp;
    if ((j - i) % 2)
        return fail(L, PKL_ERR_STACK_UNDERFLOW, "odd number of items for DICT");
    pkl_val *d = pkl_node_fast(L->doc, PKL_DICT);
    if (!d)
        return nomem(L);
    if (j > i) {
        pkl_code rc = pkl_map_reserve(L->doc, d, (j - i) / 2);
        if (rc)
            return map_error(L, rc);
        for (size_t k = i; k < j; k += 2) {
            rc = pkl_dict_set(L->doc, d, L->st[k], L->st[k + 1]);
            if (rc)
                return map_error(L, rc);
        }
    }
    L->sp = i;
    return push(L, d);
}

static int op_frozenset(ld *L) {
    size_t i = 0;
    if (marker(L, &i))
        return -1;
    pkl_val *f = pkl_node_new(L->doc, PKL_FROZENSET);
    if (!f)
        return nomem(L);
    if (L->sp > i) {
        pkl_code rc = pkl_map_reserve(L->doc, f, L->sp - i);
        if (rc)
            return map_error(L, rc);
        for (size_t k = i; k < L->sp; k++) {
            rc = pkl_set_add(L->doc, f, L->st[k]);
            if (rc)
                return map_error(L, rc);
        }
    }
    L->sp = i;
    return push(L, f);
}

static inline bool is_intlike(const pkl_val *v) {
    return v->kind == PKL_INT || v->kind == PKL_BOOL;
}

/* int-like value as int64; false for big ints (they do not fit ssize_t). */
static inline bool intlike_value(const pkl_val *v, int64_t *out) {
    if (v->kind == PKL_BOOL) {
        *out = v->u.b;
        return true;
    }
    if (v->flags & PKL_F_BIG)
        return false;
    *out = v->u.i;
    return true;
}

static int mutate(ld *L, pkl_val *stub, pkl_mutkind k, pkl_val *a, pkl_val *b) {
    if (pkl_stub_mutate(L->doc, stub, k, a, b))
        return nomem(L);
    event(L, PKL_EV_MUTATE, stub, NULL, NULL, 0, NULL, 0);
    return 0;
}

/* A byte value for bytearray: int 0..255 (bool ok). */
static int byte_value(ld *L, const pkl_val *v, uint8_t *out) {
    if (!is_intlike(v))
        return fail(L, PKL_ERR_TYPE_ERROR, "bytearray item is not an integer");
    int64_t x;
    if (!intlike_value(v, &x) || x < 0 || x > 255)
        return fail(L, PKL_ERR_BAD_ARGUMENT, "byte must be in range(0, 256)");
    *out = (uint8_t)x;
    return 0;
}

/* APPEND/APPENDS: list.extend, else obj.extend / obj.append. */
static int do_append(ld *L, size_t x) {
    size_t len = L->sp;
    if (x > len || x <= L->fence)
        return underflow(L);
    if (len == x)
        return 0;
    pkl_val *t = L->st[x - 1];
    size_t n = len - x;
    switch ((pkl_kind)t->kind) {
    case PKL_LIST:
        if (pkl_seq_reserve(L->doc, t, n))
            return nomem(L);
        memcpy(t->u.seq.items + t->u.seq.len, L->st + x, n * sizeof(pkl_val *));
        t->u.seq.len += n;
        break;
    case PKL_BYTEARRAY: {
        uint8_t small[64];
        uint8_t *buf = n <= sizeof small ? small : pkl_mem_alloc(L->doc, n);
        if (!buf)
            return nomem(L);
        int r = 0;
        for (size_t k = 0; k < n && !r; k++)
            r = byte_value(L, L->st[x + k], &buf[k]);
        if (!r && pkl_bytes_append(L->doc, t, buf, n))
            r = nomem(L);
        if (buf != small)
            pkl_mem_free(L->doc, buf, n);
        if (r)
            return -1;
        break;
    }
    case PKL_GLOBAL:
    case PKL_CALL:
    case PKL_NEW:
    case PKL_PERSID:
        for (size_t k = x; k < len; k++)
            if (mutate(L, t, PKL_MUT_APPEND, L->st[k], NULL))
                return -1;
        break;
    default:
        return fail(L, PKL_ERR_TYPE_ERROR, "object has no 'extend' or 'append' method");
    }
    L->sp = x;
    return 0;
}

/* target[key] = value, PyObject_SetItem on the built-ins a pickle can make. */
static int set_item(ld *L, pkl_val *t, pkl_val *key, pkl_val *value) {
    switch ((pkl_kind)t->kind) {
    case PKL_DICT: {
        pkl_code rc = pkl_dict_set(L->doc, t, key, value);
        return rc ? map_error(L, rc) : 0;
    }
    case PKL_GLOBAL:
    case PKL_CALL:
    case PKL_NEW:
    case PKL_PERSID:
        return mutate(L, t, PKL_MUT_SETITEM, key, value);
    case PKL_LIST:
    case PKL_BYTEARRAY: {
        bool list = t->kind == PKL_LIST;
        if (!is_intlike(key))
            return fail(L, PKL_ERR_TYPE_ERROR,
                        list ? "list indices must be integers or slices"
                             : "bytearray indices must be integers or slices");
        int64_t i;
        if (!intlike_value(key, &i))
            return fail(L, PKL_ERR_BAD_ARGUMENT, "cannot fit 'int' into an index-sized integer");
        uint8_t byte = 0;
        if (!list && byte_value(L, value, &byte))
            return -1;
        size_t n = list ? t->u.seq.len : t->u.bytes.len;
        if (i < 0)
            i += (int64_t)n;
        if (i < 0 || (uint64_t)i >= n)
            return fail(L, PKL_ERR_BAD_ARGUMENT,
                        list ? "list assignment index out of range"
                             : "bytearray index out of range");
        if (list)
            t->u.seq.items[i] = value;
        else
            t->u.bytes.data[i] = (char)byte;
        return 0;
    }
    case PKL_STR:
    case PKL_BYTES:
    case PKL_TUPLE:
    case PKL_SET:
    case PKL_FROZENSET:
        /* Sequence types without item assignment: PyObject_SetItem converts
           an int key to ssize_t (IndexError when it does not fit) before it
           finds there is no sq_ass_item. */
        if (key->kind == PKL_INT && (key->flags & PKL_F_BIG))
            return fail(L, PKL_ERR_BAD_ARGUMENT, "cannot fit 'int' into an index-sized integer");
        return fail(L, PKL_ERR_TYPE_ERROR, "object does not support item assignment");
    default:
        return fail(L, PKL_ERR_TYPE_ERROR, "object does not support item assignment");
    }
}

static int do_setitems(ld *L, size_t x) {
    size_t len = L->sp;
    if (x > len || x <= L->fence)
        return underflow(L);
    if (len == x)
        return 0;
    if ((len - x) % 2)
        return fail(L, PKL_ERR_STACK_UNDERFLOW, "odd number of items for SETITEMS");
    pkl_val *t = L->st[x - 1];
    if (t->kind == PKL_DICT) {
        pkl_code rc = pkl_map_reserve(L->doc, t, (len - x) / 2);
        if (rc)
            return map_error(L, rc);
        for (size_t k = x; k < len; k += 2)
            if ((rc = pkl_dict_set(L->doc, t, L->st[k], L->st[k + 1])) != PKL_OK)
                return map_error(L, rc);
        L->sp = x;
        return 0;
    }
    for (size_t k = x; k < len; k += 2)
        if (set_item(L, t, L->st[k], L->st[k + 1]))
            return -1;
    L->sp = x;
    return 0;
}

static int op_additems(ld *L) {
    size_t mark = 0;
    if (marker(L, &mark))
        return -1;
    size_t len = L->sp;
    if (mark > len || mark <= L->fence)
        return underflow(L);
    if (len == mark)
        return 0;
    pkl_val *t = L->st[mark - 1];
    if (t->kind == PKL_SET) {
        pkl_code rc = pkl_map_reserve(L->doc, t, len - mark);
        if (rc)
            return map_error(L, rc);
        for (size_t k = mark; k < len; k++) {
            rc = pkl_set_add(L->doc, t, L->st[k]);
            if (rc)
                return map_error(L, rc);
        }
    } else if (pkl_kind_is_stub((pkl_kind)t->kind)) {
        for (size_t k = mark; k < len; k++)
            if (mutate(L, t, PKL_MUT_ADD, L->st[k], NULL))
                return -1;
    } else {
        return fail(L, PKL_ERR_TYPE_ERROR, "object has no 'add' method");
    }
    L->sp = mark;
    return 0;
}

/*==============================================================================
 * Globals, calls, BUILD, persistent ids, buffers
 *============================================================================*/

/* find_class(module, name): the policy callback, the interned stub, the event. */
static int resolve_global(ld *L, const char *m, size_t ml, const char *n, size_t nl,
                          pkl_val **out) {
    if (L->o->on_global && !L->o->on_global(L->o->ctx, m, ml, n, nl))
        return fail(L, PKL_ERR_FORBIDDEN, "global refused by the on_global policy");
    pkl_val *g = pkl_global_intern(L->doc, m, ml, n, nl);
    if (!g)
        return nomem(L);
    event(L, PKL_EV_GLOBAL, g, g, g->u.stub->module, ml, g->u.stub->name, nl);
    *out = g;
    return 0;
}

/* Reads the two lines of GLOBAL/INST, decoded as UTF-8 (GLOBAL) or ASCII (INST). */
static int global_lines(ld *L, bool ascii, pkl_val **out) {
    const uint8_t *m, *n;
    size_t ml, nl;
    if (readline(L, &m, &ml))
        return -1;
    if (ml < 2)
        return fail(L, PKL_ERR_TRUNCATED, "module name is an empty line");
    if (ascii ? !is_ascii(m, ml - 1) : !utf8_valid(m, ml - 1, false))
        return fail(L, PKL_ERR_BAD_ARGUMENT,
                    ascii ? "INST module name is not ASCII" : "GLOBAL module name is not UTF-8");
    if (readline(L, &n, &nl))
        return -1;
    if (nl < 2)
        return fail(L, PKL_ERR_TRUNCATED, "global name is an empty line");
    if (ascii ? !is_ascii(n, nl - 1) : !utf8_valid(n, nl - 1, false))
        return fail(L, PKL_ERR_BAD_ARGUMENT,
                    ascii ? "INST class name is not ASCII" : "GLOBAL name is not UTF-8");
    return resolve_global(L, (const char *)m, ml - 1, (const char *)n, nl - 1, out);
}

static int op_stack_global(ld *L) {
    pkl_val *name = pop(L);
    if (!name)
        return -1;
    pkl_val *mod = pop(L);
    if (!mod)
        return -1;
    if (mod->kind != PKL_STR || name->kind != PKL_STR)
        return fail(L, PKL_ERR_TYPE_ERROR, "STACK_GLOBAL requires str");
    pkl_val *g;
    if (resolve_global(L, mod->u.bytes.data, mod->u.bytes.len, name->u.bytes.data,
                       name->u.bytes.len, &g))
        return -1;
    return push(L, g);
}

static int op_ext(ld *L, unsigned width) {
    if (need(L, width))
        return -1;
    uint64_t u = rd_le(L->p, width);
    L->p += width;
    int64_t code = (int64_t)u;
    if (width == 4 && (u & 0x80000000u))
        code = (int64_t)u - ((int64_t)1 << 32);
    if (code <= 0)
        return fail(L, PKL_ERR_BAD_ARGUMENT, "EXT specifies code <= 0");
    pkl_val *g = umap_get(&L->ext, (uint64_t)code);
    if (g) /* CPython's extension cache: no second find_class */
        return push(L, g);
    const char *m, *n;
    size_t ml, nl;
    if (!L->o->ext_lookup || !L->o->ext_lookup(L->o->ctx, code, &m, &ml, &n, &nl))
        return fail(L, PKL_ERR_UNKNOWN_EXTENSION, "unregistered extension code");
    if (resolve_global(L, m, ml, n, nl, &g))
        return -1;
    bool added;
    if (!umap_put(L->doc, &L->ext, (uint64_t)code, g, &added))
        return nomem(L);
    return push(L, g);
}

static int make_call(ld *L, pkl_val *callable, pkl_val *args) {
    if (!pkl_kind_is_stub((pkl_kind)callable->kind))
        return fail(L, PKL_ERR_TYPE_ERROR, "object is not callable");
    pkl_val *c = pkl_make_stub(L->doc, PKL_CALL);
    if (!c)
        return nomem(L);
    c->u.stub->target = callable;
    c->u.stub->args = args;
    event(L, PKL_EV_CALL, callable, c, NULL, 0, NULL, 0);
    return push(L, c);
}

static int make_new(ld *L, pkl_val *cls, pkl_val *args, pkl_val *kwargs) {
    pkl_val *v = pkl_make_stub(L->doc, PKL_NEW);
    if (!v)
        return nomem(L);
    v->u.stub->target = cls;
    v->u.stub->args = args;
    if (kwargs) { /* **kwargs copies the dict at call time */
        v->u.stub->kwargs = pkl_dict_copy(L->doc, kwargs);
        if (!v->u.stub->kwargs)
            return nomem(L);
    }
    event(L, PKL_EV_NEW, cls, v, NULL, 0, NULL, 0);
    return push(L, v);
}

/* CPython's instantiate(): cls.__new__(cls) for a type with no args, else cls(*args). */
static int instantiate(ld *L, pkl_val *cls, pkl_val *args) {
    if (args->u.seq.len == 0 && cls->kind == PKL_GLOBAL)
        return make_new(L, cls, args, NULL);
    return make_call(L, cls, args);
}

static int op_reduce(ld *L) {
    pkl_val *args = pop(L);
    if (!args)
        return -1;
    pkl_val *callable = pop(L);
    if (!callable)
        return -1;
    if (args->kind != PKL_TUPLE)
        return fail(L, PKL_ERR_TYPE_ERROR, "REDUCE argument list must be a tuple");
    return make_call(L, callable, args);
}

static int op_obj(ld *L) {
    size_t i = 0;
    if (marker(L, &i))
        return -1;
    if (L->sp - i < 1)
        return underflow(L);
    pkl_val *args = pkl_make_tuple(L->doc, L->st + i + 1, L->sp - i - 1);
    if (!args)
        return nomem(L);
    L->sp = i + 1;
    pkl_val *cls = pop(L);
    if (!cls)
        return -1;
    return instantiate(L, cls, args);
}

static int op_inst(ld *L) {
    size_t i = 0;
    if (marker(L, &i))
        return -1;
    pkl_val *cls;
    if (global_lines(L, true, &cls))
        return -1;
    pkl_val *args = pkl_make_tuple(L->doc, L->st + i, L->sp - i);
    if (!args)
        return nomem(L);
    L->sp = i;
    return instantiate(L, cls, args);
}

static int op_newobj(ld *L, bool ex) {
    pkl_val *kwargs = NULL;
    if (ex && !(kwargs = pop(L)))
        return -1;
    pkl_val *args = pop(L);
    if (!args)
        return -1;
    pkl_val *cls = pop(L);
    if (!cls)
        return -1;
    if (cls->kind != PKL_GLOBAL)
        return fail(L, PKL_ERR_TYPE_ERROR,
                    ex ? "NEWOBJ_EX class argument must be a type"
                       : "NEWOBJ class argument must be a type");
    if (args->kind != PKL_TUPLE)
        return fail(L, PKL_ERR_TYPE_ERROR,
                    ex ? "NEWOBJ_EX args argument must be a tuple"
                       : "NEWOBJ args argument must be a tuple");
    if (ex) {
        if (kwargs->kind != PKL_DICT)
            return fail(L, PKL_ERR_TYPE_ERROR, "NEWOBJ_EX kwargs argument must be a dict");
        for (size_t k = 0; k < kwargs->u.map.len; k++)
            if (kwargs->u.map.kv[2 * k]->kind != PKL_STR)
                return fail(L, PKL_ERR_TYPE_ERROR, "NEWOBJ_EX keywords must be strings");
    }
    return make_new(L, cls, args, kwargs);
}

/* BUILD: stubs record __setstate__(state); built-ins have neither
   __setstate__ nor __dict__, so only load_build's no-op shapes pass. */
static int op_build(ld *L) {
    if (L->sp < L->fence + 2)
        return underflow(L);
    pkl_val *state = L->st[--L->sp];
    pkl_val *inst = L->st[L->sp - 1];
    if (pkl_kind_is_stub((pkl_kind)inst->kind))
        return mutate(L, inst, PKL_MUT_BUILD, state, NULL);
    pkl_val *slot = NULL;
    if (state->kind == PKL_TUPLE && state->u.seq.len == 2) {
        slot = state->u.seq.items[1];
        state = state->u.seq.items[0];
    }
    if (state->kind != PKL_NONE) {
        if (state->kind != PKL_DICT)
            return fail(L, PKL_ERR_TYPE_ERROR, "BUILD state is not a dictionary");
        return fail(L, PKL_ERR_TYPE_ERROR, "BUILD target has no __dict__ to update");
    }
    if (slot) {
        if (slot->kind != PKL_DICT)
            return fail(L, PKL_ERR_TYPE_ERROR, "BUILD slot state is not a dictionary");
        if (slot->u.map.len)
            return fail(L, PKL_ERR_TYPE_ERROR, "BUILD cannot set attributes on a built-in value");
    }
    return 0;
}

static int op_persid(ld *L) {
    const uint8_t *s;
    size_t len;
    if (readline(L, &s, &len))
        return -1;
    if (!is_ascii(s, len - 1))
        return fail(L, PKL_ERR_BAD_ARGUMENT, "persistent IDs in protocol 0 must be ASCII strings");
    if (L->o->on_persid && !L->o->on_persid(L->o->ctx, (const char *)s, len - 1, NULL, 0))
        return fail(L, PKL_ERR_FORBIDDEN, "persistent id refused by the on_persid policy");
    pkl_val *pid = pkl_make_bytes(L->doc, PKL_STR, s, len - 1);
    pkl_val *v = pid ? pkl_make_stub(L->doc, PKL_PERSID) : NULL;
    if (!v)
        return nomem(L);
    v->u.stub->target = pid;
    event(L, PKL_EV_PERSID, pid, v, (const char *)pid->u.bytes.data, len - 1, NULL, 0);
    return push(L, v);
}

static int op_binpersid(ld *L) {
    pkl_val *pid = pop(L);
    if (!pid)
        return -1;
    if (L->o->on_persid && !L->o->on_persid(L->o->ctx, NULL, 0, NULL, 0))
        return fail(L, PKL_ERR_FORBIDDEN, "persistent id refused by the on_persid policy");
    pkl_val *v = pkl_make_stub(L->doc, PKL_PERSID);
    if (!v)
        return nomem(L);
    v->u.stub->target = pid;
    event(L, PKL_EV_PERSID, pid, v, NULL, 0, NULL, 0);
    return push(L, v);
}

static int op_next_buffer(ld *L) {
    if (!L->o->have_buffers)
        return fail(L, PKL_ERR_NO_BUFFERS,
                    "pickle stream refers to out-of-band data but no buffers were given");
    if (L->nbufs >= L->o->nbuffers)
        return fail(L, PKL_ERR_NO_BUFFERS, "not enough out-of-band buffers");
    pkl_val *b = pkl_make_stub(L->doc, PKL_BUFFER);
    if (!b)
        return nomem(L);
    b->u.stub->buffer_index = L->nbufs++;
    return push(L, b);
}

static int op_readonly_buffer(ld *L) {
    if (L->sp <= L->fence)
        return underflow(L);
    pkl_val *obj = L->st[L->sp - 1];
    switch ((pkl_kind)obj->kind) {
    case PKL_BYTES:
    case PKL_MEMORYVIEW: /* already read-only: left as is */
        return 0;
    case PKL_BYTEARRAY:
    case PKL_BUFFER: {
        pkl_val *mv = pkl_make_stub(L->doc, PKL_MEMORYVIEW);
        if (!mv)
            return nomem(L);
        mv->u.stub->target = obj;
        L->st[L->sp - 1] = mv;
        return 0;
    }
    default:
        return fail(L, PKL_ERR_TYPE_ERROR, "memoryview: a bytes-like object is required");
    }
}

/*==============================================================================
 * The dispatch loop
 *============================================================================*/

static int op_pop(ld *L) {
    if (L->nmarks && L->marks[L->nmarks - 1] == L->sp) {
        L->nmarks--;
        L->fence = L->nmarks ? L->marks[L->nmarks - 1] : 0;
        return 0;
    }
    if (L->sp <= L->fence)
        return underflow(L);
    L->sp--;
    return 0;
}

/* The mark stack moves to (or grows) a block charged to the document and
   freed by free_scratch. */
static int grow_marks(ld *L) {
    if (L->nmarks >= L->lim.max_marks)
        return fail(L, PKL_ERR_RESOURCE_LIMIT, "mark limit (max_marks) reached");
    size_t ncap = L->mcap ? L->mcap * 2 : 32;
    if (ncap > L->lim.max_marks)
        ncap = L->lim.max_marks;
    if (ncap > SIZE_MAX / sizeof(size_t))
        return nomem(L);
    size_t *nm;
    if (L->marks == L->marks_local) {
        nm = pkl_mem_alloc(L->doc, ncap * sizeof *nm);
        if (nm)
            memcpy(nm, L->marks, L->nmarks * sizeof *nm);
    } else {
        nm = pkl_mem_realloc(L->doc, L->marks, L->mcap * sizeof *nm, ncap * sizeof *nm);
    }
    if (!nm)
        return nomem(L);
    L->marks = nm;
    L->mcap = ncap;
    return 0;
}

HOT_INLINE int op_mark(ld *L) {
    if (L->nmarks == L->mcap && grow_marks(L))
        return -1;
    L->marks[L->nmarks++] = L->fence = L->sp;
    return 0;
}

static int op_get_text(ld *L) {
    const uint8_t *s;
    size_t len;
    if (readline(L, &s, &len))
        return -1;
    if (len < 2)
        return fail(L, PKL_ERR_TRUNCATED, "GET argument is an empty line");
    int64_t idx = -1;
    bool fits;
    if (parse_index(L, s, len, &idx, &fits))
        return -1;
    pkl_val *v = !fits || idx < 0 ? NULL : memo_get(L, (uint64_t)idx);
    if (!v)
        return fail(L, PKL_ERR_MEMO_MISSING, "memo value not found at index");
    return push(L, v);
}

HOT_INLINE int op_get_bin(ld *L, unsigned width) {
    if (need(L, width))
        return -1;
    uint64_t idx = rd_le(L->p, width);
    L->p += width;
    pkl_val *v = memo_get(L, idx);
    if (!v)
        return fail(L, PKL_ERR_MEMO_MISSING, "memo value not found at index");
    return push(L, v);
}

static int op_put_text(ld *L) {
    const uint8_t *s;
    size_t len;
    if (readline(L, &s, &len))
        return -1;
    if (len < 2)
        return fail(L, PKL_ERR_TRUNCATED, "PUT argument is an empty line");
    if (L->sp <= L->fence)
        return underflow(L);
    int64_t idx = -1;
    bool fits;
    if (parse_index(L, s, len, &idx, &fits))
        return -1;
    if (!fits)
        return fail(L, PKL_ERR_RESOURCE_LIMIT, "PUT index does not fit Py_ssize_t");
    if (idx < 0)
        return fail(L, PKL_ERR_BAD_ARGUMENT, "negative PUT argument");
    return memo_put_fast(L, (uint64_t)idx, L->st[L->sp - 1]);
}

HOT_INLINE int op_put_bin(ld *L, unsigned width) {
    if (need(L, width))
        return -1;
    uint64_t idx = rd_le(L->p, width);
    L->p += width;
    if (L->sp <= L->fence)
        return underflow(L);
    return memo_put_fast(L, idx, L->st[L->sp - 1]);
}

static int op_frame(ld *L) {
    if (need(L, 8))
        return -1;
    uint64_t n = rd_le(L->p, 8);
    L->p += 8;
    if (n > (uint64_t)INT64_MAX)
        return fail(L, PKL_ERR_RESOURCE_LIMIT, "FRAME length exceeds the maximum size (2^63-1)");
    if (n > (uint64_t)(L->end - L->p))
        return truncated(L); /* the frame must be present; its bounds are not enforced */
    return 0;
}

static int run(ld *L) {
    pkl_doc *doc = L->doc;
    for (;;) {
        if (L->p >= L->end) {
            fail(L, PKL_ERR_TRUNCATED, "ran out of input before STOP");
            L->e.pos = (size_t)(L->end - L->base);
            return -1;
        }
        L->op = (size_t)(L->p - L->base);
        uint8_t op = *L->p++;
        int r;
        switch ((pkl_opcode)op) {
        case PKL_OP_INT: r = op_int(L); break;
        case PKL_OP_BININT:
            if ((r = need(L, 4)) == 0) {
                uint32_t u = (uint32_t)rd_le(L->p, 4);
                L->p += 4;
                r = push(L, pkl_make_int(doc, (int64_t)(int32_t)u));
            }
            break;
        case PKL_OP_BININT1:
            if ((r = need(L, 1)) == 0)
                r = push(L, pkl_make_int(doc, *L->p++));
            break;
        case PKL_OP_BININT2:
            if ((r = need(L, 2)) == 0) {
                r = push(L, pkl_make_int(doc, (int64_t)rd_le(L->p, 2)));
                L->p += 2;
            }
            break;
        case PKL_OP_LONG: r = op_long(L); break;
        case PKL_OP_LONG1: r = op_counted_long(L, 1); break;
        case PKL_OP_LONG4: r = op_counted_long(L, 4); break;
        case PKL_OP_STRING: r = op_string(L); break;
        case PKL_OP_BINSTRING: r = op_binstring(L, 4); break;
        case PKL_OP_SHORT_BINSTRING: r = op_binstring(L, 1); break;
        case PKL_OP_BINBYTES: r = op_counted_bytes(L, 4, PKL_BYTES); break;
        case PKL_OP_SHORT_BINBYTES: r = op_counted_bytes(L, 1, PKL_BYTES); break;
        case PKL_OP_BINBYTES8: r = op_counted_bytes(L, 8, PKL_BYTES); break;
        case PKL_OP_BYTEARRAY8: r = op_counted_bytes(L, 8, PKL_BYTEARRAY); break;
        case PKL_OP_NEXT_BUFFER: r = op_next_buffer(L); break;
        case PKL_OP_READONLY_BUFFER: r = op_readonly_buffer(L); break;
        case PKL_OP_NONE: r = push(L, pkl_none(doc)); break;
        case PKL_OP_NEWTRUE: r = push(L, pkl_bool(doc, true)); break;
        case PKL_OP_NEWFALSE: r = push(L, pkl_bool(doc, false)); break;
        case PKL_OP_UNICODE: r = op_unicode(L); break;
        case PKL_OP_SHORT_BINUNICODE: r = op_binunicode(L, 1); break;
        case PKL_OP_BINUNICODE: r = op_binunicode(L, 4); break;
        case PKL_OP_BINUNICODE8: r = op_binunicode(L, 8); break;
        case PKL_OP_FLOAT: r = op_float(L); break;
        case PKL_OP_BINFLOAT:
            if ((r = need(L, 8)) == 0) {
                uint64_t bits = 0;
                for (int k = 0; k < 8; k++)
                    bits = (bits << 8) | L->p[k];
                L->p += 8;
                r = push(L, pkl_make_float(doc, bits));
            }
            break;
        case PKL_OP_EMPTY_LIST: r = push(L, pkl_node_fast(doc, PKL_LIST)); break;
        case PKL_OP_APPEND: r = L->sp < L->fence + 2 ? underflow(L) : do_append(L, L->sp - 1); break;
        case PKL_OP_APPENDS: {
            size_t i = 0;
            r = marker(L, &i);
            if (!r)
                r = do_append(L, i);
            break;
        }
        case PKL_OP_LIST: r = op_list(L); break;
        case PKL_OP_EMPTY_TUPLE: r = push(L, pkl_make_tuple(doc, NULL, 0)); break;
        case PKL_OP_TUPLE: r = op_tuple(L); break;
        case PKL_OP_TUPLE1: r = op_counted_tuple(L, 1); break;
        case PKL_OP_TUPLE2: r = op_counted_tuple(L, 2); break;
        case PKL_OP_TUPLE3: r = op_counted_tuple(L, 3); break;
        case PKL_OP_EMPTY_DICT: r = push(L, pkl_node_fast(doc, PKL_DICT)); break;
        case PKL_OP_DICT: r = op_dict(L); break;
        case PKL_OP_SETITEM: r = L->sp < 2 ? underflow(L) : do_setitems(L, L->sp - 2); break;
        case PKL_OP_SETITEMS: {
            size_t i = 0;
            r = marker(L, &i);
            if (!r)
                r = do_setitems(L, i);
            break;
        }
        case PKL_OP_EMPTY_SET: r = push(L, pkl_node_fast(doc, PKL_SET)); break;
        case PKL_OP_ADDITEMS: r = op_additems(L); break;
        case PKL_OP_FROZENSET: r = op_frozenset(L); break;
        case PKL_OP_POP: r = op_pop(L); break;
        case PKL_OP_DUP:
            r = L->sp <= L->fence ? underflow(L) : push(L, L->st[L->sp - 1]);
            break;
        case PKL_OP_MARK: r = op_mark(L); break;
        case PKL_OP_POP_MARK: {
            size_t i = 0;
            r = marker(L, &i);
            if (!r && i < L->sp)
                L->sp = i;
            break;
        }
        case PKL_OP_GET: r = op_get_text(L); break;
        case PKL_OP_BINGET: r = op_get_bin(L, 1); break;
        case PKL_OP_LONG_BINGET: r = op_get_bin(L, 4); break;
        case PKL_OP_PUT: r = op_put_text(L); break;
        case PKL_OP_BINPUT: r = op_put_bin(L, 1); break;
        case PKL_OP_LONG_BINPUT: r = op_put_bin(L, 4); break;
        case PKL_OP_MEMOIZE:
            r = L->sp <= L->fence ? underflow(L) : memo_put_fast(L, L->memo_len, L->st[L->sp - 1]);
            break;
        case PKL_OP_EXT1: r = op_ext(L, 1); break;
        case PKL_OP_EXT2: r = op_ext(L, 2); break;
        case PKL_OP_EXT4: r = op_ext(L, 4); break;
        case PKL_OP_GLOBAL: {
            pkl_val *g;
            r = global_lines(L, false, &g);
            if (!r)
                r = push(L, g);
            break;
        }
        case PKL_OP_STACK_GLOBAL: r = op_stack_global(L); break;
        case PKL_OP_REDUCE: r = op_reduce(L); break;
        case PKL_OP_BUILD: r = op_build(L); break;
        case PKL_OP_INST: r = op_inst(L); break;
        case PKL_OP_OBJ: r = op_obj(L); break;
        case PKL_OP_NEWOBJ: r = op_newobj(L, false); break;
        case PKL_OP_NEWOBJ_EX: r = op_newobj(L, true); break;
        case PKL_OP_PROTO:
            if ((r = need(L, 1)) == 0) {
                unsigned v = *L->p++;
                if (v > PKL_HIGHEST_PROTOCOL)
                    r = fail(L, PKL_ERR_UNSUPPORTED_PROTOCOL, "unsupported pickle protocol");
                else
                    doc->proto = (int)v;
            }
            break;
        case PKL_OP_STOP:
            if (L->sp <= L->fence)
                return underflow(L);
            doc->root = L->st[L->sp - 1];
            return 0;
        case PKL_OP_FRAME: r = op_frame(L); break;
        case PKL_OP_PERSID: r = op_persid(L); break;
        case PKL_OP_BINPERSID: r = op_binpersid(L); break;
        default:
            /* every opcode of spec/opcodes.def has a case above */
            if (pkl_opcode_info(op))
                return fail(L, PKL_ERR_INTERNAL, "opcode in the table without a handler");
            return fail(L, PKL_ERR_BAD_OPCODE, "invalid load key (not an opcode)");
        }
        if (r)
            return -1;
    }
}

/*==============================================================================
 * Entry point
 *============================================================================*/

static void free_scratch(ld *L) {
    pkl_doc *doc = L->doc;
    if (L->st != L->st_local)
        pkl_mem_free(doc, L->st, L->scap * sizeof *L->st);
    if (L->marks != L->marks_local)
        pkl_mem_free(doc, L->marks, L->mcap * sizeof *L->marks);
    if (L->memo != L->memo_local)
        pkl_mem_free(doc, L->memo, L->dlim * sizeof *L->memo);
    umap_free(doc, &L->smemo);
    umap_free(doc, &L->ext);
}

/* Decodes one pickle. Returns a new document owned by the caller (free with
   pkl_doc_free); on failure NULL, with everything already freed. */
pkl_doc *pkl_load(const void *data, size_t len, const pkl_load_opts *opts, pkl_err *err) {
    static const pkl_load_opts defaults;
    if (!opts)
        opts = &defaults;
    ld L;
    memset(&L, 0, offsetof(ld, st_local));
    L.o = opts;
    L.lim = opts->limits ? *opts->limits : pkl_limits_default();
    L.st = L.st_local;
    L.scap = L.lim.max_stack < LOCAL_LEN(L.st_local) ? L.lim.max_stack : LOCAL_LEN(L.st_local);
    L.marks = L.marks_local;
    L.mcap = L.lim.max_marks < LOCAL_LEN(L.marks_local) ? L.lim.max_marks : LOCAL_LEN(L.marks_local);
    L.memo = L.memo_local;
    L.dcap = 0;
    L.dlim = LOCAL_LEN(L.memo_local);
    if (err) {
        err->code = PKL_OK;
        err->msg = NULL;
        err->pos = 0;
    }
    if (!data && len) {
        if (err) {
            err->code = PKL_ERR_INTERNAL;
            err->msg = "NULL data with a nonzero length";
        }
        return NULL;
    }
    if (len > L.lim.max_input) {
        if (err) {
            err->code = PKL_ERR_RESOURCE_LIMIT;
            err->msg = "input longer than max_input";
        }
        return NULL;
    }
    L.doc = pkl_doc_new(opts->alc, &L.lim);
    if (!L.doc) {
        if (err) {
            err->code = PKL_ERR_RESOURCE_LIMIT;
            err->msg = "out of memory (allocator or max_alloc)";
        }
        return NULL;
    }
    L.base = L.p = data ? (const uint8_t *)data : (const uint8_t *)"";
    L.end = L.base + len;
    int r = run(&L);
    free_scratch(&L);
    if (r) {
        pkl_doc_free(L.doc);
        if (err)
            *err = L.e;
        return NULL;
    }
    return L.doc;
}
