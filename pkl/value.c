/* libpkl value model: documents, nodes, containers with Python's hash and
 * equality semantics, and the public pkl_val_* accessors.
 *
 * Storage (see value.h for who owns what):
 *   - nodes come from PKL_CHUNK-sized chunks, handed out in creation order;
 *   - immutable payloads (str/bytes data, tuple item arrays, stub records,
 *     global names, big-int magnitudes) come from a bump arena;
 *   - growable arrays (list items, map entries and indexes, stub mutation
 *     records, grown bytearrays) are individual heap blocks.
 * Every byte goes through pkl_mem_* so max_alloc is enforced and a failing
 * allocator is reported, never crashed on.
 *
 * Nothing here recurses: hashing and equality walk nested tuples and
 * frozensets with explicit stacks, freeing walks the node chunks linearly.
 */
#include <math.h>
#include <string.h>

#include "value.h"

/*==============================================================================
 * Limits
 *============================================================================*/

pkl_limits pkl_limits_default(void) {
    pkl_limits l;
    l.max_input = (size_t)1 << 30;
#if SIZE_MAX > 0xffffffffu
    l.max_alloc = (size_t)4 << 30;
#else
    l.max_alloc = SIZE_MAX;
#endif
    l.max_nodes = (size_t)64 << 20;
    l.max_stack = (size_t)16 << 20;
    l.max_marks = (size_t)1 << 20;
    l.max_memo = (size_t)16 << 20;
    l.max_digits = 4300;
    l.max_output = (size_t)1 << 30;
    return l;
}

/*==============================================================================
 * Arena
 *============================================================================*/

struct pkl_arena_blk {
    struct pkl_arena_blk *prev;
    size_t size; /* bytes of the whole block, header included */
};

#define ARENA_HDR ((sizeof(struct pkl_arena_blk) + 15u) & ~(size_t)15u)
#define ARENA_FIRST 4096u
#define ARENA_MAX ((size_t)1 << 20)

static char empty_payload[1]; /* target of every zero-length payload */

static inline size_t align8(size_t n) { return (n + 7u) & ~(size_t)7u; }

/* Returns `size` bytes from the arena; owned by doc, freed by pkl_doc_free. */
void *pkl_arena_alloc(pkl_doc *doc, size_t size) {
    if (size > SIZE_MAX / 2)
        return NULL;
    size_t need = align8(size ? size : 1);
    if (need <= doc->arena_left) {
        char *p = doc->arena_ptr;
        doc->arena_ptr += need;
        doc->arena_left -= need;
        return p;
    }
    if (need > doc->arena_next / 4) {
        /* big payload: a block of its own; the bump block stays current */
        struct pkl_arena_blk *b = pkl_mem_alloc(doc, ARENA_HDR + need);
        if (!b)
            return NULL;
        b->size = ARENA_HDR + need;
        b->prev = doc->arena;
        doc->arena = b;
        return (char *)b + ARENA_HDR;
    }
    size_t bsize = doc->arena_next;
    struct pkl_arena_blk *b = pkl_mem_alloc(doc, bsize);
    if (!b)
        return NULL;
    b->size = bsize;
    b->prev = doc->arena;
    doc->arena = b;
    if (doc->arena_next < ARENA_MAX)
        doc->arena_next *= 2;
    doc->arena_ptr = (char *)b + ARENA_HDR + need;
    doc->arena_left = bsize - ARENA_HDR - need;
    return (char *)b + ARENA_HDR;
}

/*==============================================================================
 * Documents and nodes
 *============================================================================*/

/* A document is one allocation holding the header, a small chunk table,
   the first node chunk and the first arena block, so a small pickle costs
   a single malloc/free pair. */
#define DOC_CHUNKS_INLINE 8u
#define DOC_ARENA0 4096u
typedef struct doc_block {
    pkl_doc doc; /* first: a pkl_doc * is a doc_block * */
    pkl_val *chunk_tab[DOC_CHUNKS_INLINE];
    pkl_val chunk0[PKL_CHUNK];
    uint64_t arena0[DOC_ARENA0 / 8];
} doc_block;

/* Returns a new empty document owned by the caller (pkl_doc_free), or NULL
   when the allocator fails or max_alloc cannot hold the document block. */
pkl_doc *pkl_doc_new(const pkl_alc *alc, const pkl_limits *limits) {
    if (!alc)
        alc = pkl_alc_libc();
    pkl_limits lim = limits ? *limits : pkl_limits_default();
    if (lim.max_alloc < sizeof(doc_block))
        return NULL;
    doc_block *b = alc->malloc(alc->ctx, sizeof *b);
    if (!b)
        return NULL;
    pkl_doc *d = &b->doc;
    memset(d, 0, sizeof *d);
    d->alc = *alc;
    d->held = sizeof *b;
    d->max_alloc = lim.max_alloc;
    d->max_nodes = lim.max_nodes < UINT32_MAX ? lim.max_nodes : UINT32_MAX;
    d->chunks = b->chunk_tab;
    d->chunks_cap = DOC_CHUNKS_INLINE;
    d->chunks[0] = b->chunk0;
    d->nchunks = 1;
    d->node_avail = d->max_nodes < PKL_CHUNK ? d->max_nodes : PKL_CHUNK;
    d->arena_ptr = (char *)b->arena0;
    d->arena_left = sizeof b->arena0;
    d->arena_next = 2 * DOC_ARENA0;
    return d;
}

/* Returns a fresh zeroed node of `kind`, owned by doc; NULL past max_nodes
   or when the allocator fails. */
pkl_val *pkl_node_new(pkl_doc *doc, pkl_kind kind) {
    size_t i = doc->nnodes;
    if (i >= doc->max_nodes)
        return NULL;
    size_t c = i / PKL_CHUNK;
    if (c >= doc->nchunks) {
        if (doc->nchunks == doc->chunks_cap) {
            size_t ncap = doc->chunks_cap * 2;
            pkl_val **nc;
            if (doc->chunks == ((doc_block *)doc)->chunk_tab) {
                nc = pkl_mem_alloc(doc, ncap * sizeof *nc);
                if (nc)
                    memcpy(nc, doc->chunks, doc->nchunks * sizeof *nc);
            } else {
                nc = pkl_mem_realloc(doc, doc->chunks, doc->chunks_cap * sizeof *nc,
                                     ncap * sizeof *nc);
            }
            if (!nc)
                return NULL;
            doc->chunks = nc;
            doc->chunks_cap = ncap;
        }
        pkl_val *chunk = pkl_mem_alloc(doc, (size_t)PKL_CHUNK * sizeof(pkl_val));
        if (!chunk)
            return NULL;
        doc->chunks[doc->nchunks++] = chunk;
        size_t avail = doc->nchunks * (size_t)PKL_CHUNK;
        doc->node_avail = avail < doc->max_nodes ? avail : doc->max_nodes;
    }
    pkl_val *v = &doc->chunks[c][i % PKL_CHUNK];
    memset(v, 0, sizeof *v);
    v->kind = (uint8_t)kind;
    v->idx = (uint32_t)i;
    doc->nnodes = i + 1;
    return v;
}

/* Records that v is about to own a heap block, so pkl_doc_free finds it.
   Called before the block is allocated: a node on the list that owns
   nothing is harmless. False when the list cannot grow. */
static bool own(pkl_doc *doc, pkl_val *v) {
    if (doc->nowners == doc->owners_cap) {
        size_t ncap = doc->owners_cap ? doc->owners_cap * 2 : 16;
        pkl_val **no = pkl_mem_realloc(doc, doc->owners, doc->owners_cap * sizeof *no,
                                       ncap * sizeof *no);
        if (!no)
            return false;
        doc->owners = no;
        doc->owners_cap = ncap;
    }
    doc->owners[doc->nowners++] = v;
    return true;
}

/* Frees the heap blocks of one node and forgets them (idempotent). */
static void free_payload(pkl_doc *doc, pkl_val *v) {
    switch ((pkl_kind)v->kind) {
    case PKL_BYTEARRAY:
        if (v->u.bytes.cap) {
            pkl_mem_free(doc, v->u.bytes.data, v->u.bytes.cap);
            v->u.bytes.cap = 0;
            v->u.bytes.len = 0;
        }
        break;
    case PKL_LIST:
        if (v->u.seq.cap && !(v->flags & PKL_F_ARENA)) {
            pkl_mem_free(doc, v->u.seq.items, v->u.seq.cap * sizeof(pkl_val *));
            v->u.seq.cap = 0;
            v->u.seq.len = 0;
        }
        break;
    case PKL_DICT:
    case PKL_SET:
    case PKL_FROZENSET:
        if (v->u.map.cap && !(v->flags & PKL_F_ARENA)) {
            pkl_mem_free(doc, v->u.map.kv, v->u.map.cap * sizeof(pkl_val *));
            v->u.map.cap = 0;
            v->u.map.len = 0;
        }
        if (v->u.map.index) {
            pkl_mem_free(doc, v->u.map.index, v->u.map.index_cap * sizeof(uint32_t));
            v->u.map.index = NULL;
        }
        break;
    case PKL_GLOBAL:
    case PKL_CALL:
    case PKL_NEW:
    case PKL_PERSID:
    case PKL_MEMORYVIEW:
    case PKL_BUFFER:
        if (v->u.stub && v->u.stub->muts_cap) {
            pkl_mem_free(doc, v->u.stub->muts, v->u.stub->muts_cap * sizeof(pkl_mut));
            v->u.stub->muts_cap = 0;
            v->u.stub->nmuts = 0;
        }
        break;
    default:
        break;
    }
}

/* Frees every payload, the arena, the node chunks and the document itself.
   Iterative: the list of heap-owning nodes, then the blocks. */
void pkl_doc_free(pkl_doc *doc) {
    if (!doc)
        return;
    for (size_t i = 0; i < doc->nowners; i++)
        free_payload(doc, doc->owners[i]);
    if (doc->owners)
        pkl_mem_free(doc, doc->owners, doc->owners_cap * sizeof(pkl_val *));
    doc_block *blk = (doc_block *)doc;
    for (size_t c = 1; c < doc->nchunks; c++)
        pkl_mem_free(doc, doc->chunks[c], (size_t)PKL_CHUNK * sizeof(pkl_val));
    if (doc->chunks != blk->chunk_tab)
        pkl_mem_free(doc, doc->chunks, doc->chunks_cap * sizeof(pkl_val *));
    if (doc->globals_index) {
        pkl_mem_free(doc, doc->globals_index, doc->globals_cap * sizeof(uint32_t));
        pkl_mem_free(doc, doc->globals, (doc->globals_cap / 2) * sizeof(pkl_val *));
    }
    struct pkl_arena_blk *b = doc->arena;
    while (b) {
        struct pkl_arena_blk *prev = b->prev;
        pkl_mem_free(doc, b, b->size);
        b = prev;
    }
    pkl_alc alc = doc->alc;
    alc.free(alc.ctx, doc);
}

const pkl_val *pkl_doc_root(const pkl_doc *doc) { return doc ? doc->root : NULL; }
int pkl_doc_protocol(const pkl_doc *doc) { return doc ? doc->proto : 0; }
size_t pkl_doc_node_count(const pkl_doc *doc) { return doc ? doc->nnodes : 0; }

/*==============================================================================
 * Scalars
 *============================================================================*/

/* Shared None: owned by doc, created on first use; NULL on failure. */
pkl_val *pkl_none(pkl_doc *doc) {
    if (!doc->none_node)
        doc->none_node = pkl_node_new(doc, PKL_NONE);
    return doc->none_node;
}

/* Shared True/False: owned by doc, created on first use; NULL on failure. */
pkl_val *pkl_bool(pkl_doc *doc, bool b) {
    pkl_val **slot = b ? &doc->true_node : &doc->false_node;
    if (!*slot) {
        *slot = pkl_node_new(doc, PKL_BOOL);
        if (*slot)
            (*slot)->u.b = b;
    }
    return *slot;
}

#define SMALL_INT_MIN (-5)
#define SMALL_INT_MAX 256

/* Returns an INT node owned by doc; NULL on failure. Like CPython, small
   values share one node per document (only once the document outgrew its
   first chunk, so tiny pickles skip the table): int identity is not
   observable in canonical text. */
pkl_val *pkl_make_int(pkl_doc *doc, int64_t v) {
    if (v >= SMALL_INT_MIN && v <= SMALL_INT_MAX && doc->nnodes >= PKL_CHUNK) {
        if (!doc->small_ints) {
            size_t n = SMALL_INT_MAX - SMALL_INT_MIN + 1;
            doc->small_ints = pkl_arena_alloc(doc, n * sizeof(pkl_val *));
            if (!doc->small_ints)
                return NULL;
            memset(doc->small_ints, 0, n * sizeof(pkl_val *));
        }
        pkl_val **slot = &doc->small_ints[v - SMALL_INT_MIN];
        if (!*slot) {
            *slot = pkl_node_fast(doc, PKL_INT);
            if (*slot)
                (*slot)->u.i = v;
        }
        return *slot;
    }
    pkl_val *n = pkl_node_fast(doc, PKL_INT);
    if (n)
        n->u.i = v;
    return n;
}

/* Returns a new FLOAT node owned by doc; NULL on failure. */
pkl_val *pkl_make_float(pkl_doc *doc, uint64_t bits) {
    pkl_val *n = pkl_node_fast(doc, PKL_FLOAT);
    if (n)
        n->u.fbits = bits;
    return n;
}

/* Returns a new INT node (small when it fits int64, else a big magnitude
   copied into the arena) owned by doc; NULL on failure. */
pkl_val *pkl_make_int_mag(pkl_doc *doc, const uint8_t *be, size_t n, bool neg) {
    while (n && be[0] == 0) {
        be++;
        n--;
    }
    if (n <= 8) {
        uint64_t m = 0;
        for (size_t i = 0; i < n; i++)
            m = (m << 8) | be[i];
        if (!neg && m <= (uint64_t)INT64_MAX)
            return pkl_make_int(doc, (int64_t)m);
        if (neg && m <= (uint64_t)INT64_MAX + 1u)
            return pkl_make_int(doc, m == (uint64_t)INT64_MAX + 1u ? INT64_MIN : -(int64_t)m);
    }
    pkl_val *v = pkl_node_fast(doc, PKL_INT);
    if (!v)
        return NULL;
    char *data = pkl_arena_alloc(doc, n);
    if (!data)
        return NULL;
    memcpy(data, be, n);
    v->flags = PKL_F_BIG | (neg ? PKL_F_BIGNEG : 0);
    v->u.bytes.data = data;
    v->u.bytes.len = n;
    return v;
}

/* Returns a new INT node from two's-complement little-endian bytes, owned by
   doc; NULL on failure. */
pkl_val *pkl_make_int_le(pkl_doc *doc, const uint8_t *le, size_t n) {
    if (n == 0)
        return pkl_make_int(doc, 0);
    if (n <= 8) {
        uint64_t u = 0;
        for (size_t i = n; i-- > 0;)
            u = (u << 8) | le[i];
        if (n < 8 && (le[n - 1] & 0x80))
            u |= ~(uint64_t)0 << (8 * n);
        int64_t s;
        memcpy(&s, &u, sizeof s); /* two's complement reinterpretation */
        return pkl_make_int(doc, s);
    }
    bool neg = (le[n - 1] & 0x80) != 0;
    /* strip sign-extension bytes from the top */
    size_t top = n;
    uint8_t ext = neg ? 0xff : 0x00;
    while (top > 1 && le[top - 1] == ext)
        top--;
    /* magnitude, big-endian, at most `top` bytes (+1 for -2^(8k-1) cases) */
    uint8_t *be = pkl_arena_alloc(doc, top + 1);
    if (!be)
        return NULL;
    unsigned carry = 1;
    for (size_t i = 0; i <= top; i++) {
        uint8_t b = i < top ? le[i] : ext;
        if (neg) {
            unsigned t = (uint8_t)~b + carry;
            b = (uint8_t)t;
            carry = t >> 8;
        }
        be[top - i] = b;
    }
    size_t skip = 0;
    while (skip < top && be[skip] == 0)
        skip++;
    size_t mlen = top + 1 - skip;
    if (mlen <= 8) /* e.g. a zero-padded encoding of a small value */
        return pkl_make_int_mag(doc, be + skip, mlen, neg);
    pkl_val *v = pkl_node_fast(doc, PKL_INT);
    if (!v)
        return NULL;
    v->flags = PKL_F_BIG | (neg ? PKL_F_BIGNEG : 0);
    v->u.bytes.data = (char *)be + skip;
    v->u.bytes.len = mlen;
    return v;
}

/* Returns a new STR/BYTES/BYTEARRAY node with `len` bytes for the caller to
   fill; node and bytes owned by doc. NULL on failure. */
pkl_val *pkl_make_bytes_uninit(pkl_doc *doc, pkl_kind kind, size_t len) {
    pkl_val *v = pkl_node_fast(doc, kind);
    if (!v)
        return NULL;
    if (len == 0) {
        v->u.bytes.data = empty_payload;
        return v;
    }
    char *data = pkl_arena_fast(doc, len);
    if (!data)
        return NULL;
    v->u.bytes.data = data;
    v->u.bytes.len = len;
    return v;
}

/* Returns a new STR/BYTES/BYTEARRAY node holding a copy of data, owned by
   doc; NULL on failure. */
pkl_val *pkl_make_bytes(pkl_doc *doc, pkl_kind kind, const void *data, size_t len) {
    pkl_val *v = pkl_make_bytes_uninit(doc, kind, len);
    if (v && len)
        memcpy(v->u.bytes.data, data, len);
    return v;
}

void pkl_bytes_truncate(pkl_doc *doc, pkl_val *v, size_t len) {
    size_t old = v->u.bytes.len;
    if (len >= old)
        return;
    char *d = v->u.bytes.data;
    if (v->u.bytes.cap == 0 && d + align8(old) == doc->arena_ptr) {
        size_t back = align8(old) - align8(len ? len : 1);
        doc->arena_ptr -= back;
        doc->arena_left += back;
    }
    v->u.bytes.len = len;
    if (len == 0 && v->u.bytes.cap == 0)
        v->u.bytes.data = empty_payload;
}

/* Appends to a BYTEARRAY; its data moves to a heap block owned by the node
   (freed by pkl_doc_free through the owners list). */
pkl_code pkl_bytes_append(pkl_doc *doc, pkl_val *ba, const uint8_t *data, size_t n) {
    size_t len = ba->u.bytes.len;
    if (n == 0)
        return PKL_OK;
    if (n > SIZE_MAX / 4 - len)
        return PKL_ERR_RESOURCE_LIMIT;
    size_t need = len + n;
    if (need > ba->u.bytes.cap) {
        size_t ncap = ba->u.bytes.cap ? ba->u.bytes.cap : 16;
        while (ncap < need)
            ncap *= 2;
        char *nd;
        if (!ba->u.bytes.cap && !own(doc, ba))
            return PKL_ERR_RESOURCE_LIMIT;
        if (ba->u.bytes.cap) {
            nd = pkl_mem_realloc(doc, ba->u.bytes.data, ba->u.bytes.cap, ncap);
        } else {
            nd = pkl_mem_alloc(doc, ncap);
            if (nd && len)
                memcpy(nd, ba->u.bytes.data, len);
        }
        if (!nd)
            return PKL_ERR_RESOURCE_LIMIT;
        ba->u.bytes.data = nd;
        ba->u.bytes.cap = ncap;
    }
    memcpy(ba->u.bytes.data + len, data, n);
    ba->u.bytes.len = need;
    return PKL_OK;
}

/* Returns a TUPLE of the n items (array in the arena); n == 0 returns the
   shared empty tuple. Owned by doc; NULL on failure. */
pkl_val *pkl_make_tuple(pkl_doc *doc, pkl_val *const *items, size_t n) {
    if (n == 0) {
        if (!doc->empty_tuple)
            doc->empty_tuple = pkl_node_new(doc, PKL_TUPLE);
        return doc->empty_tuple;
    }
    if (n > SIZE_MAX / sizeof(pkl_val *))
        return NULL;
    pkl_val *v = pkl_node_new(doc, PKL_TUPLE);
    if (!v)
        return NULL;
    pkl_val **arr = pkl_arena_fast(doc, n * sizeof *arr);
    if (!arr)
        return NULL;
    memcpy(arr, items, n * sizeof *arr);
    v->u.seq.items = arr;
    v->u.seq.len = n;
    return v;
}

/* Returns a node of a stub-bearing kind with a zeroed pkl_stub in the arena;
   both owned by doc. NULL on failure. */
pkl_val *pkl_make_stub(pkl_doc *doc, pkl_kind kind) {
    pkl_val *v = pkl_node_new(doc, kind);
    if (!v)
        return NULL;
    pkl_stub *s = pkl_arena_fast(doc, sizeof *s);
    if (!s)
        return NULL;
    memset(s, 0, sizeof *s);
    v->u.stub = s;
    return v;
}

/*==============================================================================
 * Hashing
 *============================================================================*/

#define HMUL 0x9e3779b97f4a7c15ull
#define PYHASH_BITS 61
#define PYHASH_MOD (((uint64_t)1 << PYHASH_BITS) - 1)

static inline uint64_t mix64(uint64_t x) {
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    x ^= x >> 33;
    return x;
}

static uint64_t hash_bytes(const uint8_t *p, size_t n, uint64_t seed) {
    uint64_t h = seed ^ ((uint64_t)n * HMUL);
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        h = (h ^ mix64(w)) * HMUL;
        h ^= h >> 29;
        p += 8;
        n -= 8;
    }
    if (n) {
        uint64_t w = 0;
        memcpy(&w, p, n);
        h = (h ^ mix64(w ^ ((uint64_t)n << 56))) * HMUL;
    }
    return mix64(h);
}

/* Numeric hashes follow Python's scheme (value mod 2^61-1, sign applied) so
   that equal ints, floats and bools hash alike. */
static inline uint64_t reduce61(uint64_t x) {
    x = (x & PYHASH_MOD) + (x >> PYHASH_BITS);
    if (x >= PYHASH_MOD)
        x -= PYHASH_MOD;
    return x;
}

static inline uint64_t signed_hash(uint64_t r, bool neg) {
    return neg ? (uint64_t)0 - r : r;
}

static uint64_t hash_i64(int64_t v) {
    bool neg = v < 0;
    uint64_t m = neg ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    return signed_hash(reduce61(m), neg);
}

static uint64_t hash_mag(const uint8_t *be, size_t n, bool neg) {
    uint64_t r = 0;
    for (size_t i = 0; i < n; i++) {
        /* r * 256 mod P: bits above 2^61 wrap to the bottom */
        uint64_t t = ((r & (((uint64_t)1 << 53) - 1)) << 8) + (r >> 53) + be[i];
        r = reduce61(t);
    }
    return signed_hash(r, neg);
}

static inline uint64_t rot61(uint64_t r, unsigned k) {
    if (k == 0)
        return r;
    return ((r << k) & PYHASH_MOD) | (r >> (PYHASH_BITS - k));
}

/* Decompose a finite double: |x| = m * 2^e with m the significand (hidden
   bit included for normal numbers). */
static void dbl_parts(uint64_t bits, uint64_t *m, int *e) {
    int be = (int)((bits >> 52) & 0x7ff);
    uint64_t frac = bits & (((uint64_t)1 << 52) - 1);
    if (be == 0) {
        *m = frac;
        *e = -1074;
    } else {
        *m = frac | ((uint64_t)1 << 52);
        *e = be - 1075;
    }
}

static double bits_dbl(uint64_t b) {
    double d;
    memcpy(&d, &b, sizeof d);
    return d;
}

static bool is_nan_bits(uint64_t b) {
    return ((b >> 52) & 0x7ff) == 0x7ff && (b & (((uint64_t)1 << 52) - 1)) != 0;
}

static uint64_t identity_hash(const pkl_val *v) {
    return mix64(((uint64_t)v->idx << 8) ^ 0x5bd1e995u);
}

static uint64_t hash_float(const pkl_val *v) {
    uint64_t b = v->u.fbits;
    int be = (int)((b >> 52) & 0x7ff);
    bool neg = (b >> 63) != 0;
    if (be == 0x7ff) {
        if (is_nan_bits(b))
            return identity_hash(v); /* NaN: equal only to itself */
        return neg ? (uint64_t)0 - 314159u : 314159u;
    }
    if ((b << 1) == 0)
        return 0; /* +-0.0 == 0 */
    uint64_t m;
    int e;
    dbl_parts(b, &m, &e);
    if (e >= 0)
        return signed_hash(rot61(m, (unsigned)(e % PYHASH_BITS)), neg);
    if (e > -64 && (m & ((((uint64_t)1) << -e) - 1)) == 0)
        return signed_hash(reduce61(m >> -e), neg); /* integral */
    return mix64(b ^ 0x2545f4914f6cdd1dull);       /* not an integer: any hash */
}

/* Hash of a value that needs no traversal: scalars, stubs, buffers, and
   tuples/frozensets whose hash is already cached. */
static uint64_t quick_hash(const pkl_val *v) {
    if (v->flags & PKL_F_HASHED)
        return v->hash;
    switch ((pkl_kind)v->kind) {
    case PKL_NONE:
        return 0x4e6f6e65u;
    case PKL_BOOL:
        return v->u.b ? 1u : 0u;
    case PKL_INT:
        if (v->flags & PKL_F_BIG)
            return hash_mag((const uint8_t *)v->u.bytes.data, v->u.bytes.len,
                            (v->flags & PKL_F_BIGNEG) != 0);
        return hash_i64(v->u.i);
    case PKL_FLOAT:
        return hash_float(v);
    case PKL_STR:
        return hash_bytes((const uint8_t *)v->u.bytes.data, v->u.bytes.len, 0x737472u);
    case PKL_BYTES:
        return hash_bytes((const uint8_t *)v->u.bytes.data, v->u.bytes.len, 0x627974u);
    default:
        return identity_hash(v);
    }
}

static inline bool kind_unhashable(pkl_kind k) {
    return k == PKL_LIST || k == PKL_DICT || k == PKL_SET || k == PKL_BYTEARRAY ||
           k == PKL_MEMORYVIEW;
}

static inline bool kind_compound_hash(pkl_kind k) {
    return k == PKL_TUPLE || k == PKL_FROZENSET;
}

typedef struct {
    pkl_val *v;
    size_t i;
} hframe;

static void *scratch_grow(pkl_doc *doc, void *p, size_t old_bytes, size_t new_bytes) {
    return pkl_mem_realloc(doc, p, old_bytes, new_bytes);
}

/* Hashes v (caching on compound nodes). Its explicit stack is scratch
   charged to doc and freed before returning. */
pkl_code pkl_hash(pkl_doc *doc, pkl_val *v, uint64_t *out) {
    pkl_kind k = (pkl_kind)v->kind;
    if (v->flags & PKL_F_HASHED) {
        *out = v->hash;
        return PKL_OK;
    }
    if (kind_unhashable(k))
        return PKL_ERR_TYPE_ERROR;
    if (!kind_compound_hash(k)) {
        v->hash = quick_hash(v);
        if (k == PKL_STR || k == PKL_BYTES || (k == PKL_INT && (v->flags & PKL_F_BIG)))
            v->flags |= PKL_F_HASHED;
        *out = v->hash;
        return PKL_OK;
    }
    hframe local[32];
    hframe *st = local;
    size_t n = 0, cap = 32;
    pkl_code rc = PKL_OK;
    st[n++] = (hframe){v, 0};
    while (n) {
        hframe *f = &st[n - 1];
        pkl_val *node = f->v;
        pkl_val **ch = node->kind == PKL_TUPLE ? node->u.seq.items : node->u.map.kv;
        size_t len = node->kind == PKL_TUPLE ? node->u.seq.len : node->u.map.len;
        pkl_val *push = NULL;
        while (f->i < len) {
            pkl_val *c = ch[f->i];
            pkl_kind ck = (pkl_kind)c->kind;
            if (c->flags & PKL_F_HASHED) {
                f->i++;
                continue;
            }
            if (kind_unhashable(ck)) {
                rc = PKL_ERR_TYPE_ERROR;
                goto done;
            }
            if (kind_compound_hash(ck)) {
                push = c;
                break;
            }
            c->hash = quick_hash(c);
            c->flags |= PKL_F_HASHED;
            f->i++;
        }
        if (push) {
            if (n == cap) {
                size_t ncap = cap * 2;
                hframe *ns;
                if (st == local) {
                    ns = pkl_mem_alloc(doc, ncap * sizeof *ns);
                    if (ns)
                        memcpy(ns, local, sizeof local);
                } else {
                    ns = scratch_grow(doc, st, cap * sizeof *st, ncap * sizeof *ns);
                }
                if (!ns) {
                    rc = PKL_ERR_RESOURCE_LIMIT;
                    goto done;
                }
                st = ns;
                cap = ncap;
            }
            st[n++] = (hframe){push, 0};
            continue;
        }
        uint64_t h;
        if (node->kind == PKL_TUPLE) {
            h = 0x7475706cu ^ ((uint64_t)len * HMUL);
            for (size_t i = 0; i < len; i++) {
                h = (h ^ ch[i]->hash) * 0x100000001b3ull;
                h = (h << 23) | (h >> 41);
            }
            h = mix64(h);
        } else {
            h = 0x66726f7au + (uint64_t)len;
            for (size_t i = 0; i < len; i++)
                h += mix64(ch[i]->hash ^ 0x6a09e667f3bcc909ull);
            h = mix64(h);
        }
        node->hash = h;
        node->flags |= PKL_F_HASHED;
        n--;
    }
    *out = v->hash;
done:
    if (st != local)
        pkl_mem_free(doc, st, cap * sizeof *st);
    return rc;
}

/*==============================================================================
 * Equality
 *============================================================================*/

static inline bool is_numeric(pkl_kind k) {
    return k == PKL_BOOL || k == PKL_INT || k == PKL_FLOAT;
}

/* int-like value (bool or int) == double d, exactly. */
static bool intlike_eq_float(const pkl_val *a, uint64_t fb) {
    double d = bits_dbl(fb);
    if (!isfinite(d) || d != floor(d))
        return false;
    bool big = a->kind == PKL_INT && (a->flags & PKL_F_BIG);
    if (d >= -9223372036854775808.0 && d < 9223372036854775808.0) {
        if (big)
            return false;
        int64_t iv = a->kind == PKL_BOOL ? (int64_t)a->u.b : a->u.i;
        return iv == (int64_t)d;
    }
    if (!big)
        return false;
    bool fneg = (fb >> 63) != 0;
    if (fneg != ((a->flags & PKL_F_BIGNEG) != 0))
        return false;
    /* |d| = m * 2^e with e >= 11 here; build its big-endian magnitude */
    uint64_t m;
    int e;
    dbl_parts(fb, &m, &e);
    size_t nbits = 53 + (size_t)e;
    size_t nbytes = (nbits + 7) / 8;
    if (nbytes != a->u.bytes.len)
        return false;
    const uint8_t *mag = (const uint8_t *)a->u.bytes.data;
    /* compare byte by byte: byte at BE position j covers bits [8*(n-1-j), +8) */
    for (size_t j = 0; j < nbytes; j++) {
        size_t lo = 8 * (nbytes - 1 - j);
        unsigned byte = 0;
        for (unsigned b = 0; b < 8; b++) {
            size_t bit = lo + b;
            if (bit >= (size_t)e && bit < (size_t)e + 53 && ((m >> (bit - (size_t)e)) & 1))
                byte |= 1u << b;
        }
        if (byte != mag[j])
            return false;
    }
    return true;
}

static bool num_eq(const pkl_val *a, const pkl_val *b) {
    pkl_kind ka = (pkl_kind)a->kind, kb = (pkl_kind)b->kind;
    if (ka == PKL_FLOAT && kb == PKL_FLOAT)
        return bits_dbl(a->u.fbits) == bits_dbl(b->u.fbits);
    if (ka == PKL_FLOAT)
        return intlike_eq_float(b, a->u.fbits);
    if (kb == PKL_FLOAT)
        return intlike_eq_float(a, b->u.fbits);
    bool abig = ka == PKL_INT && (a->flags & PKL_F_BIG);
    bool bbig = kb == PKL_INT && (b->flags & PKL_F_BIG);
    if (abig || bbig) {
        if (!(abig && bbig))
            return false;
        return (a->flags & PKL_F_BIGNEG) == (b->flags & PKL_F_BIGNEG) &&
               a->u.bytes.len == b->u.bytes.len &&
               memcmp(a->u.bytes.data, b->u.bytes.data, a->u.bytes.len) == 0;
    }
    int64_t x = ka == PKL_BOOL ? (int64_t)a->u.b : a->u.i;
    int64_t y = kb == PKL_BOOL ? (int64_t)b->u.b : b->u.i;
    return x == y;
}

typedef enum { EQ_NO, EQ_YES, EQ_DEEP } eqres;

/* Decides a == b without looking below the first level when it can. */
static eqres shallow_eq(const pkl_val *a, const pkl_val *b) {
    if (a == b)
        return EQ_YES;
    pkl_kind ka = (pkl_kind)a->kind, kb = (pkl_kind)b->kind;
    if (is_numeric(ka) && is_numeric(kb))
        return num_eq(a, b) ? EQ_YES : EQ_NO;
    if (ka != kb)
        return EQ_NO;
    switch (ka) {
    case PKL_NONE:
        return EQ_YES;
    case PKL_STR:
    case PKL_BYTES:
        return a->u.bytes.len == b->u.bytes.len &&
                       memcmp(a->u.bytes.data, b->u.bytes.data, a->u.bytes.len) == 0
                   ? EQ_YES
                   : EQ_NO;
    case PKL_TUPLE:
    case PKL_FROZENSET: {
        size_t la = ka == PKL_TUPLE ? a->u.seq.len : a->u.map.len;
        size_t lb = ka == PKL_TUPLE ? b->u.seq.len : b->u.map.len;
        if (la != lb)
            return EQ_NO;
        if ((a->flags & b->flags & PKL_F_HASHED) && a->hash != b->hash)
            return EQ_NO;
        return la == 0 ? EQ_YES : EQ_DEEP;
    }
    default:
        return EQ_NO; /* stubs, buffers: identity only */
    }
}

typedef struct {
    const pkl_val *a, *b;
    size_t i, j;
} eqframe;

/* Next element of frozenset `s` whose hash is h, from cursor *cur. */
static bool next_candidate(const pkl_val *s, uint64_t h, size_t *cur, const pkl_val **out) {
    if (s->u.map.index) {
        size_t mask = s->u.map.index_cap - 1;
        size_t start = (size_t)mix64(h) & mask;
        while (*cur <= mask) {
            uint32_t e = s->u.map.index[(start + *cur) & mask];
            (*cur)++;
            if (e == 0) {
                *cur = mask + 1;
                return false;
            }
            const pkl_val *y = s->u.map.kv[e - 1];
            if (quick_hash(y) == h) {
                *out = y;
                return true;
            }
        }
        return false;
    }
    while (*cur < s->u.map.len) {
        const pkl_val *y = s->u.map.kv[(*cur)++];
        if (quick_hash(y) == h) {
            *out = y;
            return true;
        }
    }
    return false;
}

/* Pairs of compound nodes already proven equal during one comparison, so a
   DAG with shared subtrees (t = (t', t') many levels deep) is compared in
   time linear in its node count, not in its path count. */
typedef struct {
    uint64_t *keys; /* ((a->idx + 1) << 32 | b->idx), 0 = empty */
    size_t cap, len;
} pairset;

static inline uint64_t pair_key(const pkl_val *a, const pkl_val *b) {
    return ((uint64_t)a->idx + 1) << 32 | b->idx;
}

static bool pair_has(const pairset *ps, const pkl_val *a, const pkl_val *b) {
    if (!ps->len)
        return false;
    uint64_t k = pair_key(a, b);
    size_t mask = ps->cap - 1, i = (size_t)mix64(k) & mask;
    while (ps->keys[i]) {
        if (ps->keys[i] == k)
            return true;
        i = (i + 1) & mask;
    }
    return false;
}

static void *eq_alloc(pkl_doc *doc, size_t n) {
    const pkl_alc *libc = pkl_alc_libc();
    return doc ? pkl_mem_alloc(doc, n) : libc->malloc(libc->ctx, n);
}

static void eq_free(pkl_doc *doc, void *p, size_t n) {
    const pkl_alc *libc = pkl_alc_libc();
    if (doc)
        pkl_mem_free(doc, p, n);
    else
        libc->free(libc->ctx, p);
}

static bool pair_add(pkl_doc *doc, pairset *ps, const pkl_val *a, const pkl_val *b) {
    if ((ps->len + 1) * 2 > ps->cap) {
        size_t ncap = ps->cap ? ps->cap * 2 : 64;
        uint64_t *nk = eq_alloc(doc, ncap * sizeof *nk);
        if (!nk)
            return false;
        memset(nk, 0, ncap * sizeof *nk);
        for (size_t i = 0; i < ps->cap; i++) {
            if (!ps->keys[i])
                continue;
            size_t j = (size_t)mix64(ps->keys[i]) & (ncap - 1);
            while (nk[j])
                j = (j + 1) & (ncap - 1);
            nk[j] = ps->keys[i];
        }
        if (ps->keys)
            eq_free(doc, ps->keys, ps->cap * sizeof *ps->keys);
        ps->keys = nk;
        ps->cap = ncap;
    }
    uint64_t k = pair_key(a, b);
    size_t mask = ps->cap - 1, i = (size_t)mix64(k) & mask;
    while (ps->keys[i]) {
        if (ps->keys[i] == k)
            return true;
        i = (i + 1) & mask;
    }
    ps->keys[i] = k;
    ps->len++;
    return true;
}

/* The explicit-stack equality machine. doc == NULL: scratch from libc. */
static pkl_code eq_machine(pkl_doc *doc, const pkl_val *a0, const pkl_val *b0, bool *out) {
    eqres s0 = shallow_eq(a0, b0);
    if (s0 != EQ_DEEP) {
        *out = s0 == EQ_YES;
        return PKL_OK;
    }
    eqframe local[32];
    eqframe *st = local;
    size_t n = 0, cap = 32;
    const pkl_alc *libc = pkl_alc_libc();
    pkl_code rc = PKL_OK;
    bool r = false, have_r = false;
    pairset known = {NULL, 0, 0};
    size_t decided_true = 0;
    st[n++] = (eqframe){a0, b0, 0, 0};
    while (n) {
        eqframe *f = &st[n - 1];
        const pkl_val *x = NULL, *y = NULL;
        bool decided = false, verdict = false;
        if (f->a->kind == PKL_TUPLE) {
            if (have_r) {
                have_r = false;
                if (!r) {
                    decided = true;
                    verdict = false;
                }
            }
            while (!decided && !x) {
                if (f->i == f->a->u.seq.len) {
                    decided = true;
                    verdict = true;
                    break;
                }
                const pkl_val *p = f->a->u.seq.items[f->i], *q = f->b->u.seq.items[f->i];
                f->i++;
                eqres s = shallow_eq(p, q);
                if (s == EQ_NO) {
                    decided = true;
                    verdict = false;
                } else if (s == EQ_DEEP && !pair_has(&known, p, q)) {
                    x = p;
                    y = q;
                }
            }
        } else { /* FROZENSET: every element of a has an equal element in b */
            if (have_r) {
                have_r = false;
                if (r) {
                    f->i++;
                    f->j = 0;
                }
            }
            while (!decided && !x) {
                if (f->i == f->a->u.map.len) {
                    decided = true;
                    verdict = true;
                    break;
                }
                const pkl_val *p = f->a->u.map.kv[f->i];
                uint64_t h = quick_hash(p);
                const pkl_val *q;
                bool found = false;
                while (next_candidate(f->b, h, &f->j, &q)) {
                    eqres s = shallow_eq(p, q);
                    if (s == EQ_YES || (s == EQ_DEEP && pair_has(&known, p, q))) {
                        found = true;
                        break;
                    }
                    if (s == EQ_DEEP) {
                        x = p;
                        y = q;
                        break;
                    }
                }
                if (x)
                    break;
                if (!found) {
                    decided = true;
                    verdict = false;
                } else {
                    f->i++;
                    f->j = 0;
                }
            }
        }
        if (decided) {
            if (verdict && ++decided_true > 64 && !pair_add(doc, &known, f->a, f->b) && doc) {
                rc = PKL_ERR_RESOURCE_LIMIT; /* a document's allocator said no: fail */
                goto done;
            }
            n--;
            r = verdict;
            have_r = true;
            continue;
        }
        if (n == cap) {
            size_t ncap = cap * 2;
            eqframe *ns;
            if (doc) {
                ns = st == local ? pkl_mem_alloc(doc, ncap * sizeof *ns)
                                 : pkl_mem_realloc(doc, st, cap * sizeof *st, ncap * sizeof *ns);
            } else {
                ns = st == local ? libc->malloc(libc->ctx, ncap * sizeof *ns)
                                 : libc->realloc(libc->ctx, st, cap * sizeof *st, ncap * sizeof *ns);
            }
            if (!ns) {
                rc = PKL_ERR_RESOURCE_LIMIT;
                goto done;
            }
            if (st == local)
                memcpy(ns, local, sizeof local);
            st = ns;
            cap = ncap;
        }
        st[n++] = (eqframe){x, y, 0, 0};
    }
    *out = r;
done:
    if (st != local)
        eq_free(doc, st, cap * sizeof *st);
    if (known.keys)
        eq_free(doc, known.keys, known.cap * sizeof *known.keys);
    return rc;
}

pkl_code pkl_equal_doc(pkl_doc *doc, const pkl_val *a, const pkl_val *b, bool *out) {
    return eq_machine(doc, a, b, out);
}

/* Scratch for deep comparisons comes from libc here; if even that fails the
   answer is `false`. Decoding uses pkl_equal_doc instead. */
bool pkl_equal(const pkl_val *a, const pkl_val *b) {
    bool r = false;
    if (eq_machine(NULL, a, b, &r) != PKL_OK)
        return false;
    return r;
}

/*==============================================================================
 * Containers
 *============================================================================*/

/* Grows an item array (LIST items, map entries) to hold `need` pointers.
   A first allocation is sized exactly and taken from the arena; growth
   moves it to a doubling heap block. */
static pkl_code grow_ptrs(pkl_doc *doc, pkl_val *v, pkl_val ***arr, size_t *cap, size_t used,
                          size_t need, size_t first_min) {
    if (need <= *cap)
        return PKL_OK;
    if (need > SIZE_MAX / sizeof(pkl_val *) / 4)
        return PKL_ERR_RESOURCE_LIMIT;
    if (*cap == 0) {
        size_t n = need < first_min ? first_min : need;
        pkl_val **a = pkl_arena_fast(doc, n * sizeof *a);
        if (!a)
            return PKL_ERR_RESOURCE_LIMIT;
        *arr = a;
        *cap = n;
        v->flags |= PKL_F_ARENA;
        return PKL_OK;
    }
    size_t ncap = *cap * 2;
    if (ncap < need)
        ncap = need;
    pkl_val **a;
    if ((v->flags & PKL_F_ARENA) && ncap <= 128) {
        /* small arrays keep growing in the arena (the abandoned copies add
           at most as much again): no malloc for small containers */
        a = pkl_arena_fast(doc, ncap * sizeof *a);
        if (!a)
            return PKL_ERR_RESOURCE_LIMIT;
        if (used)
            memcpy(a, *arr, used * sizeof *a);
        *arr = a;
        *cap = ncap;
        return PKL_OK;
    }
    if (v->flags & PKL_F_ARENA) {
        if (!own(doc, v))
            return PKL_ERR_RESOURCE_LIMIT;
        a = pkl_mem_alloc(doc, ncap * sizeof *a);
        if (a && used)
            memcpy(a, *arr, used * sizeof *a);
    } else {
        a = pkl_mem_realloc(doc, *arr, *cap * sizeof *a, ncap * sizeof *a);
    }
    if (!a)
        return PKL_ERR_RESOURCE_LIMIT;
    v->flags &= (uint8_t)~PKL_F_ARENA;
    *arr = a;
    *cap = ncap;
    return PKL_OK;
}

/* The item array stays owned by the LIST node (arena or heap, see value.h). */
pkl_code pkl_seq_reserve(pkl_doc *doc, pkl_val *seq, size_t extra) {
    size_t len = seq->u.seq.len;
    if (extra > SIZE_MAX / sizeof(pkl_val *) / 4 - len)
        return PKL_ERR_RESOURCE_LIMIT;
    return grow_ptrs(doc, seq, &seq->u.seq.items, &seq->u.seq.cap, len, len + extra, 4);
}

/* Appends to a LIST (its item array is a heap block owned by doc). */
pkl_code pkl_seq_push(pkl_doc *doc, pkl_val *seq, pkl_val *item) {
    if (seq->u.seq.len == seq->u.seq.cap) {
        pkl_code rc = pkl_seq_reserve(doc, seq, 1);
        if (rc)
            return rc;
    }
    seq->u.seq.items[seq->u.seq.len++] = item;
    return PKL_OK;
}

static inline size_t map_stride(const pkl_val *m) { return m->kind == PKL_DICT ? 2 : 1; }

/* Grows the entry array of a map to hold `need` entries. */
static pkl_code map_grow_kv(pkl_doc *doc, pkl_val *m, size_t need) {
    size_t stride = map_stride(m);
    if (need > (UINT32_MAX - 2) / 2)
        return PKL_ERR_RESOURCE_LIMIT; /* cap (pointers) must fit 32 bits */
    size_t cap = m->u.map.cap;
    pkl_code rc = grow_ptrs(doc, m, &m->u.map.kv, &cap, m->u.map.len * stride, need * stride,
                            4 * stride);
    if (cap > UINT32_MAX)
        cap = UINT32_MAX; /* unreachable: need * stride < 2^32, ncap = max(2 cap, need) */
    m->u.map.cap = (uint32_t)cap;
    return rc;
}

/* Rebuilds the open-addressing index with room for `entries` entries.
   All keys must be hashable; their hashes get cached. */
static pkl_code map_build_index(pkl_doc *doc, pkl_val *m, size_t entries) {
    size_t icap = 16;
    while (icap < entries * 2)
        icap *= 2;
    if (icap > UINT32_MAX)
        return PKL_ERR_RESOURCE_LIMIT;
    size_t stride = map_stride(m);
    for (size_t e = 0; e < m->u.map.len; e++) {
        uint64_t h;
        pkl_code rc = pkl_hash(doc, m->u.map.kv[e * stride], &h);
        if (rc)
            return rc;
        m->u.map.kv[e * stride]->hash = h;
        m->u.map.kv[e * stride]->flags |= PKL_F_HASHED;
    }
    if (!m->u.map.index && !own(doc, m))
        return PKL_ERR_RESOURCE_LIMIT;
    uint32_t *idx = pkl_mem_alloc(doc, icap * sizeof *idx);
    if (!idx)
        return PKL_ERR_RESOURCE_LIMIT;
    memset(idx, 0, icap * sizeof *idx);
    size_t mask = icap - 1;
    for (size_t e = 0; e < m->u.map.len; e++) {
        size_t slot = (size_t)mix64(m->u.map.kv[e * stride]->hash) & mask;
        while (idx[slot])
            slot = (slot + 1) & mask;
        idx[slot] = (uint32_t)(e + 1);
    }
    if (m->u.map.index)
        pkl_mem_free(doc, m->u.map.index, m->u.map.index_cap * sizeof(uint32_t));
    m->u.map.index = idx;
    m->u.map.index_cap = (uint32_t)icap;
    return PKL_OK;
}

/* Entry array and index stay owned by the map node (see value.h). */
pkl_code pkl_map_reserve(pkl_doc *doc, pkl_val *m, size_t extra) {
    if (extra > UINT32_MAX - 2 - m->u.map.len)
        return PKL_ERR_RESOURCE_LIMIT;
    size_t need = m->u.map.len + extra;
    pkl_code rc = map_grow_kv(doc, m, need);
    if (rc)
        return rc;
    if (m->u.map.index && need * 2 > m->u.map.index_cap)
        return map_build_index(doc, m, need);
    return PKL_OK;
}

/* Sets *h to key's hash, computing (and validating hashability) if needed. */
static inline pkl_code key_hash(pkl_doc *doc, pkl_val *key, uint64_t *h) {
    if (key->flags & PKL_F_HASHED) {
        *h = key->hash;
        return PKL_OK;
    }
    pkl_code rc = pkl_hash(doc, key, h);
    if (rc)
        return rc;
    key->hash = *h;
    key->flags |= PKL_F_HASHED;
    return PKL_OK;
}

/* Finds key in map m. *pos = entry index or SIZE_MAX. *slot = index slot
   where the key would go (indexed maps). */
static pkl_code map_find(pkl_doc *doc, pkl_val *m, pkl_val *key, size_t *pos, size_t *slot) {
    size_t stride = map_stride(m);
    pkl_val **kv = m->u.map.kv;
    *pos = SIZE_MAX;
    if (!m->u.map.index) {
        pkl_kind kk = (pkl_kind)key->kind;
        for (size_t e = 0; e < m->u.map.len; e++) {
            pkl_val *k = kv[e * stride];
            if (k == key) {
                *pos = e;
                return PKL_OK;
            }
            if (kk == PKL_STR && k->kind == PKL_STR) { /* common case, no hashing */
                if (k->u.bytes.len == key->u.bytes.len &&
                    memcmp(k->u.bytes.data, key->u.bytes.data, key->u.bytes.len) == 0) {
                    *pos = e;
                    return PKL_OK;
                }
                continue;
            }
            eqres s = shallow_eq(k, key);
            if (s == EQ_YES) {
                *pos = e;
                return PKL_OK;
            }
            if (s == EQ_DEEP) {
                bool eq;
                pkl_code rc = pkl_equal_doc(doc, k, key, &eq);
                if (rc)
                    return rc;
                if (eq) {
                    *pos = e;
                    return PKL_OK;
                }
            }
        }
        return PKL_OK;
    }
    uint64_t h;
    pkl_code rc = key_hash(doc, key, &h);
    if (rc)
        return rc;
    size_t mask = m->u.map.index_cap - 1;
    size_t sl = (size_t)mix64(h) & mask;
    for (;;) {
        uint32_t e = m->u.map.index[sl];
        if (!e)
            break;
        pkl_val *k = kv[(size_t)(e - 1) * stride];
        if (k == key) {
            *pos = e - 1;
            return PKL_OK;
        }
        if (k->hash == h) {
            eqres s = shallow_eq(k, key);
            bool eq = s == EQ_YES;
            if (s == EQ_DEEP) {
                rc = pkl_equal_doc(doc, k, key, &eq);
                if (rc)
                    return rc;
            }
            if (eq) {
                *pos = e - 1;
                return PKL_OK;
            }
        }
        sl = (sl + 1) & mask;
    }
    *slot = sl;
    return PKL_OK;
}

/* Inserts or replaces; never partially applied. */
/* The common case: a str key in a small map. A str equals only a str, so
   compare lengths, then the bytes (no hashing: small maps have no index). Returns 1 when done, 0 when the
   general path must take over (growth, index). */
static inline int map_put_str_small(pkl_val *m, size_t stride, pkl_val *key, pkl_val *value) {
    size_t len = m->u.map.len;
    pkl_val **kv = m->u.map.kv;
    size_t klen = key->u.bytes.len;
    const char *kd = key->u.bytes.data;
    for (size_t e = 0; e < len * stride; e += stride) {
        pkl_val *k = kv[e];
        if (k == key || (k->kind == PKL_STR && k->u.bytes.len == klen &&
                         (klen == 0 || (k->u.bytes.data[0] == kd[0] &&
                                        memcmp(k->u.bytes.data, kd, klen) == 0)))) {
            if (stride == 2)
                kv[e + 1] = value;
            return 1;
        }
    }
    if (len < PKL_MAP_LINEAR && (len + 1) * stride <= m->u.map.cap) {
        kv[len * stride] = key;
        if (stride == 2)
            kv[len * stride + 1] = value;
        m->u.map.len = len + 1;
        return 1;
    }
    return 0;
}

static pkl_code map_put_general(pkl_doc *doc, pkl_val *m, pkl_val *key, pkl_val *value);

static inline pkl_code map_put(pkl_doc *doc, pkl_val *m, pkl_val *key, pkl_val *value) {
    if (key->kind == PKL_STR && !m->u.map.index &&
        map_put_str_small(m, m->kind == PKL_DICT ? 2 : 1, key, value))
        return PKL_OK;
    return map_put_general(doc, m, key, value);
}

static pkl_code map_put_general(pkl_doc *doc, pkl_val *m, pkl_val *key, pkl_val *value) {
    pkl_kind kk = (pkl_kind)key->kind;
    if (kind_unhashable(kk))
        return PKL_ERR_TYPE_ERROR;
    if (kind_compound_hash(kk)) { /* validate hashability (and cache) first */
        uint64_t h;
        pkl_code rc = key_hash(doc, key, &h);
        if (rc)
            return rc;
    }
    size_t pos, slot = 0;
    pkl_code rc = map_find(doc, m, key, &pos, &slot);
    if (rc)
        return rc;
    size_t stride = map_stride(m);
    if (pos != SIZE_MAX) {
        if (stride == 2)
            m->u.map.kv[pos * 2 + 1] = value;
        return PKL_OK;
    }
    size_t len = m->u.map.len;
    rc = map_grow_kv(doc, m, len + 1);
    if (rc)
        return rc;
    if (!m->u.map.index) {
        if (len + 1 > PKL_MAP_LINEAR) {
            if (!(key->flags & PKL_F_HASHED)) {
                uint64_t h;
                rc = key_hash(doc, key, &h);
                if (rc)
                    return rc;
            }
            rc = map_build_index(doc, m, len + 1);
            if (rc)
                return rc;
            goto indexed;
        }
    } else if ((len + 1) * 2 > m->u.map.index_cap) {
        rc = map_build_index(doc, m, len + 1);
        if (rc)
            return rc;
        goto indexed;
    } else {
        m->u.map.index[slot] = (uint32_t)(len + 1);
    }
    goto store;
indexed: {
    size_t mask = m->u.map.index_cap - 1;
    size_t sl = (size_t)mix64(key->hash) & mask;
    while (m->u.map.index[sl])
        sl = (sl + 1) & mask;
    m->u.map.index[sl] = (uint32_t)(len + 1);
}
store:
    m->u.map.kv[len * stride] = key;
    if (stride == 2)
        m->u.map.kv[len * stride + 1] = value;
    m->u.map.len = len + 1;
    return PKL_OK;
}

pkl_code pkl_dict_set(pkl_doc *doc, pkl_val *dict, pkl_val *key, pkl_val *value) {
    return map_put(doc, dict, key, value);
}

pkl_code pkl_set_add(pkl_doc *doc, pkl_val *set, pkl_val *item) {
    return map_put(doc, set, item, NULL);
}

/* Returns a new DICT (arrays on the heap, owned by doc) with dict's pairs. */
pkl_val *pkl_dict_copy(pkl_doc *doc, const pkl_val *dict) {
    pkl_val *d = pkl_node_new(doc, PKL_DICT);
    if (!d)
        return NULL;
    size_t len = dict->u.map.len;
    if (len == 0)
        return d;
    if (map_grow_kv(doc, d, len)) /* exact, in the arena */
        return NULL;
    memcpy(d->u.map.kv, dict->u.map.kv, 2 * len * sizeof(pkl_val *));
    if (dict->u.map.index) {
        if (!own(doc, d))
            return NULL;
        uint32_t *idx = pkl_mem_alloc(doc, dict->u.map.index_cap * sizeof *idx);
        if (!idx)
            return NULL;
        memcpy(idx, dict->u.map.index, dict->u.map.index_cap * sizeof *idx);
        d->u.map.index = idx;
        d->u.map.index_cap = dict->u.map.index_cap;
    }
    d->u.map.len = len;
    return d;
}

/* The mutation list is a heap block owned by the stub record (freed by
   pkl_doc_free through the owners list). */
pkl_code pkl_stub_mutate(pkl_doc *doc, pkl_val *stub, pkl_mutkind kind, pkl_val *a, pkl_val *b) {
    pkl_stub *s = stub->u.stub;
    if (s->nmuts == s->muts_cap) {
        size_t ncap = s->muts_cap ? s->muts_cap * 2 : 4;
        if (ncap > SIZE_MAX / sizeof(pkl_mut) / 2)
            return PKL_ERR_RESOURCE_LIMIT;
        if (!s->muts_cap && !own(doc, stub))
            return PKL_ERR_RESOURCE_LIMIT;
        pkl_mut *nm = pkl_mem_realloc(doc, s->muts_cap ? s->muts : NULL,
                                      s->muts_cap * sizeof *nm, ncap * sizeof *nm);
        if (!nm)
            return PKL_ERR_RESOURCE_LIMIT;
        s->muts = nm;
        s->muts_cap = ncap;
    }
    s->muts[s->nmuts++] = (pkl_mut){(uint8_t)kind, a, b};
    return PKL_OK;
}

/*==============================================================================
 * Interned globals
 *============================================================================*/

static uint64_t global_key_hash(const char *m, size_t ml, const char *n, size_t nl) {
    return hash_bytes((const uint8_t *)n, nl, hash_bytes((const uint8_t *)m, ml, 0x676c6fu));
}

static bool global_is(const pkl_val *g, const char *m, size_t ml, const char *n, size_t nl) {
    const pkl_stub *s = g->u.stub;
    return s->mlen == ml && s->nlen == nl && memcmp(s->module, m, ml) == 0 &&
           memcmp(s->name, n, nl) == 0;
}

/* Returns the document's GLOBAL node for (module, name), creating it (strings
   copied into the arena) on first request; owned by doc. NULL on failure. */
pkl_val *pkl_global_intern(pkl_doc *doc, const char *module, size_t mlen, const char *name,
                           size_t nlen) {
    uint64_t h = global_key_hash(module, mlen, name, nlen);
    if (doc->globals_index) {
        size_t mask = doc->globals_cap - 1;
        size_t sl = (size_t)h & mask;
        while (doc->globals_index[sl]) {
            pkl_val *g = doc->globals[doc->globals_index[sl] - 1];
            if (global_is(g, module, mlen, name, nlen))
                return g;
            sl = (sl + 1) & mask;
        }
    }
    if (doc->nglobals >= UINT32_MAX - 1)
        return NULL;
    if ((doc->nglobals + 1) * 2 > doc->globals_cap) {
        size_t ncap = doc->globals_cap ? doc->globals_cap * 2 : 16;
        uint32_t *ni = pkl_mem_alloc(doc, ncap * sizeof *ni);
        if (!ni)
            return NULL;
        pkl_val **ng = pkl_mem_alloc(doc, (ncap / 2) * sizeof *ng);
        if (!ng) {
            pkl_mem_free(doc, ni, ncap * sizeof *ni);
            return NULL;
        }
        memset(ni, 0, ncap * sizeof *ni);
        if (doc->nglobals)
            memcpy(ng, doc->globals, doc->nglobals * sizeof *ng);
        for (size_t i = 0; i < doc->nglobals; i++) {
            const pkl_stub *s = doc->globals[i]->u.stub;
            size_t sl = (size_t)global_key_hash(s->module, s->mlen, s->name, s->nlen) & (ncap - 1);
            while (ni[sl])
                sl = (sl + 1) & (ncap - 1);
            ni[sl] = (uint32_t)(i + 1);
        }
        if (doc->globals_index) {
            pkl_mem_free(doc, doc->globals_index, doc->globals_cap * sizeof(uint32_t));
            pkl_mem_free(doc, doc->globals, (doc->globals_cap / 2) * sizeof(pkl_val *));
        }
        doc->globals_index = ni;
        doc->globals = ng;
        doc->globals_cap = ncap;
    }
    pkl_val *g = pkl_make_stub(doc, PKL_GLOBAL);
    if (!g)
        return NULL;
    char *ms = mlen ? pkl_arena_alloc(doc, mlen) : empty_payload;
    char *ns = nlen ? pkl_arena_alloc(doc, nlen) : empty_payload;
    if (!ms || !ns)
        return NULL;
    if (mlen)
        memcpy(ms, module, mlen);
    if (nlen)
        memcpy(ns, name, nlen);
    g->u.stub->module = ms;
    g->u.stub->mlen = mlen;
    g->u.stub->name = ns;
    g->u.stub->nlen = nlen;
    size_t mask = doc->globals_cap - 1;
    size_t sl = (size_t)h & mask;
    while (doc->globals_index[sl])
        sl = (sl + 1) & mask;
    doc->globals[doc->nglobals] = g;
    doc->globals_index[sl] = (uint32_t)(++doc->nglobals);
    return g;
}

/*==============================================================================
 * Public accessors
 *============================================================================*/

pkl_kind pkl_val_kind(const pkl_val *v) { return v ? (pkl_kind)v->kind : PKL_NONE; }

bool pkl_val_bool(const pkl_val *v) { return v && v->kind == PKL_BOOL && v->u.b; }

bool pkl_val_int_is_big(const pkl_val *v) {
    return v && v->kind == PKL_INT && (v->flags & PKL_F_BIG);
}

int64_t pkl_val_int(const pkl_val *v) {
    if (!v)
        return 0;
    if (v->kind == PKL_BOOL)
        return v->u.b;
    if (v->kind != PKL_INT || (v->flags & PKL_F_BIG))
        return 0;
    return v->u.i;
}

const uint8_t *pkl_val_bigint(const pkl_val *v, size_t *len, bool *neg) {
    if (!pkl_val_int_is_big(v)) {
        if (len)
            *len = 0;
        if (neg)
            *neg = false;
        return NULL;
    }
    if (len)
        *len = v->u.bytes.len;
    if (neg)
        *neg = (v->flags & PKL_F_BIGNEG) != 0;
    return (const uint8_t *)v->u.bytes.data;
}

uint64_t pkl_val_float_bits(const pkl_val *v) {
    return v && v->kind == PKL_FLOAT ? v->u.fbits : 0;
}

const char *pkl_val_data(const pkl_val *v, size_t *len) {
    if (v && (v->kind == PKL_STR || v->kind == PKL_BYTES || v->kind == PKL_BYTEARRAY)) {
        if (len)
            *len = v->u.bytes.len;
        return v->u.bytes.data;
    }
    if (v && v->kind == PKL_GLOBAL) {
        if (len)
            *len = v->u.stub->mlen;
        return v->u.stub->module;
    }
    if (len)
        *len = 0;
    return NULL;
}

const char *pkl_val_name(const pkl_val *v, size_t *len) {
    if (v && v->kind == PKL_GLOBAL) {
        if (len)
            *len = v->u.stub->nlen;
        return v->u.stub->name;
    }
    if (len)
        *len = 0;
    return NULL;
}

size_t pkl_val_len(const pkl_val *v) {
    if (!v)
        return 0;
    switch ((pkl_kind)v->kind) {
    case PKL_LIST:
    case PKL_TUPLE:
        return v->u.seq.len;
    case PKL_DICT:
    case PKL_SET:
    case PKL_FROZENSET:
        return v->u.map.len;
    default:
        return 0;
    }
}

const pkl_val *pkl_val_item(const pkl_val *v, size_t i) {
    if (!v || i >= pkl_val_len(v))
        return NULL;
    switch ((pkl_kind)v->kind) {
    case PKL_LIST:
    case PKL_TUPLE:
        return v->u.seq.items[i];
    case PKL_DICT:
        return v->u.map.kv[2 * i];
    default:
        return v->u.map.kv[i];
    }
}

const pkl_val *pkl_val_value(const pkl_val *v, size_t i) {
    if (!v || v->kind != PKL_DICT || i >= v->u.map.len)
        return NULL;
    return v->u.map.kv[2 * i + 1];
}

static const pkl_stub *stub_of(const pkl_val *v) {
    if (!v)
        return NULL;
    switch ((pkl_kind)v->kind) {
    case PKL_GLOBAL:
    case PKL_CALL:
    case PKL_NEW:
    case PKL_PERSID:
    case PKL_MEMORYVIEW:
    case PKL_BUFFER:
        return v->u.stub;
    default:
        return NULL;
    }
}

const pkl_val *pkl_val_target(const pkl_val *v) {
    const pkl_stub *s = stub_of(v);
    return s && v->kind != PKL_GLOBAL && v->kind != PKL_BUFFER ? s->target : NULL;
}

const pkl_val *pkl_val_args(const pkl_val *v) {
    const pkl_stub *s = stub_of(v);
    return s && (v->kind == PKL_CALL || v->kind == PKL_NEW) ? s->args : NULL;
}

const pkl_val *pkl_val_kwargs(const pkl_val *v) {
    const pkl_stub *s = stub_of(v);
    return s && v->kind == PKL_NEW ? s->kwargs : NULL;
}

size_t pkl_val_buffer_index(const pkl_val *v) {
    const pkl_stub *s = stub_of(v);
    return s && v->kind == PKL_BUFFER ? s->buffer_index : 0;
}

size_t pkl_val_mut_count(const pkl_val *v) {
    const pkl_stub *s = stub_of(v);
    return s && pkl_kind_is_stub((pkl_kind)v->kind) ? s->nmuts : 0;
}

pkl_mutkind pkl_val_mut(const pkl_val *v, size_t i, const pkl_val **a, const pkl_val **b) {
    const pkl_stub *s = stub_of(v);
    if (!s || i >= s->nmuts) {
        if (a)
            *a = NULL;
        if (b)
            *b = NULL;
        return PKL_MUT_BUILD;
    }
    if (a)
        *a = s->muts[i].a;
    if (b)
        *b = s->muts[i].b;
    return (pkl_mutkind)s->muts[i].kind;
}
