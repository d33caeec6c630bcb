/* Internal value model of libpkl: node layout, document arena, container
 * operations with CPython's hash/equality semantics.
 *
 * Shared by the decoder (decode.c), the emitter (canon.c) and the public
 * accessors (value.c). Not installed; the public view is include/pkl.h.
 *
 * Ownership: every node and every buffer hanging off a node is allocated
 * through its document's accounting allocator and freed by pkl_doc_free().
 */
#ifndef PKL_VALUE_H
#define PKL_VALUE_H

#include <string.h>

#include "pkl.h"

/* Node flags. */
#define PKL_F_BIGNEG  0x01u /* INT with a big magnitude: negative */
#define PKL_F_BIG     0x02u /* INT stored as a big magnitude in u.bytes */
#define PKL_F_HASHED  0x04u /* `hash` holds the cached hash */
#define PKL_F_ARENA   0x08u /* LIST/DICT/SET/FROZENSET: the item array is in the arena (value.c) */

typedef struct pkl_mut {
    uint8_t kind; /* pkl_mutkind */
    pkl_val *a, *b;
} pkl_mut;

/* Side record of a stub node (GLOBAL, CALL, NEW, PERSID) and of MEMORYVIEW
 * and BUFFER nodes. Kept out of line because stubs are rare next to ints and
 * strings, and it keeps pkl_val small. */
typedef struct pkl_stub {
    pkl_val *target;    /* CALL: callable; NEW: class; PERSID: pid; MEMORYVIEW: viewed object */
    pkl_val *args;      /* CALL, NEW: argument tuple */
    pkl_val *kwargs;    /* NEW from NEWOBJ_EX: kwargs dict */
    char *module;       /* GLOBAL: module name (UTF-8) */
    char *name;         /* GLOBAL: qualified name (UTF-8) */
    size_t mlen, nlen;
    size_t buffer_index;/* BUFFER */
    pkl_mut *muts;      /* recorded mutations, in order */
    size_t nmuts, muts_cap;
} pkl_stub;

struct pkl_val {
    uint8_t kind;   /* pkl_kind */
    uint8_t flags;  /* PKL_F_* */
    uint32_t idx;   /* creation order within the document: 0, 1, 2 ...; emitter side tables use it */
    uint64_t hash;  /* valid when PKL_F_HASHED */
    union {
        bool b;                                        /* BOOL */
        int64_t i;                                     /* INT (small) */
        uint64_t fbits;                                /* FLOAT: IEEE-754 bits */
        struct { char *data; size_t len, cap; } bytes; /* STR (UTF-8 + surrogates), BYTES, BYTEARRAY,
                                                          INT|PKL_F_BIG (magnitude, big-endian, no leading 0) */
        struct { pkl_val **items; size_t len, cap; } seq;           /* LIST, TUPLE */
        struct {                                                    /* DICT: kv[2i] key, kv[2i+1] value;   */
            pkl_val **kv; size_t len;                               /* SET/FROZENSET use kv[i] as elements */
            uint32_t *index;                                        /* open-addressing table of entry+1, 0 = empty */
            uint32_t cap, index_cap;                                /* pointers in kv, slots in index */
        } map;
        pkl_stub *stub;                                /* GLOBAL, CALL, NEW, PERSID, MEMORYVIEW, BUFFER */
    } u;
};

/* The document: an arena of nodes plus the accounting allocator. */
struct pkl_doc {
    pkl_alc alc;          /* the caller's allocator */
    size_t held;          /* bytes currently held through pkl_mem_* */
    size_t max_alloc;     /* bound on `held` */
    size_t max_nodes;
    pkl_val **chunks;     /* node storage: chunk i holds PKL_CHUNK nodes */
    size_t nchunks, chunks_cap;
    size_t nnodes;        /* nodes handed out */
    pkl_val *root;
    int proto;
    /* interned GLOBAL stubs: one node per (module, name) */
    uint32_t *globals_index; size_t globals_cap, nglobals;
    pkl_val **globals;
    pkl_val *none_node, *true_node, *false_node; /* shared scalar singletons */
    /* Added by the decoder engine (value.c): */
    pkl_val *empty_tuple;        /* shared () (identity of () is not observable) */
    struct pkl_arena_blk *arena; /* bump arena for immutable payloads, newest block first */
    char *arena_ptr;             /* next free byte of the current block */
    size_t arena_left;           /* bytes left in the current block */
    size_t arena_next;           /* size of the next block to allocate */
    size_t node_avail;           /* node slots in allocated chunks (<= max_nodes) */
    pkl_val **owners;            /* nodes that own heap blocks, for pkl_doc_free (may repeat) */
    size_t nowners, owners_cap;
    pkl_val **small_ints;        /* shared INT nodes -5..256 once the document is big (arena) */
};

#define PKL_CHUNK 512u /* nodes per chunk (24 KiB); the first chunk is part of the document block */

/* Payload ownership (how pkl_doc_free releases a node's storage):
 *  - STR, BYTES, big INT payloads, TUPLE item arrays, pkl_stub records and
 *    GLOBAL module/name strings live in the document's arena (freed with it).
 *  - BYTEARRAY: u.bytes.cap == 0 means the data lives in the arena; cap > 0
 *    means a heap block of `cap` bytes (after the bytearray grew).
 *  - LIST: u.seq.items holds u.seq.cap pointers: in the arena when the
 *    node has PKL_F_ARENA (sized exactly when first filled), else a heap block.
 *  - DICT, SET, FROZENSET: u.map.kv holds u.map.cap pointers (a dict uses
 *    two per entry), in the arena under PKL_F_ARENA, else a heap block;
 *    u.map.index is a heap block of index_cap uint32_t (NULL while the map
 *    has at most PKL_MAP_LINEAR entries).
 *  - stub muts: heap block of muts_cap records.
 * An empty payload may point at a static empty string; never write to it. */
#define PKL_MAP_LINEAR 16u

/* ---- accounting allocation (all fail cleanly: NULL, err = resource-limit) */
void *pkl_mem_alloc(pkl_doc *doc, size_t size);
void *pkl_mem_realloc(pkl_doc *doc, void *ptr, size_t old_size, size_t size);
void pkl_mem_free(pkl_doc *doc, void *ptr, size_t size);

/* ---- documents and nodes */
/* Returns a new empty document owned by the caller (free with pkl_doc_free),
   or NULL when the allocator fails or max_alloc is below the document block
   (header, chunk table, first node chunk and first arena block: ~29 KiB). */
pkl_doc *pkl_doc_new(const pkl_alc *alc, const pkl_limits *limits);
/* Returns a fresh zeroed node of `kind`, owned by doc; NULL past max_nodes
   or on allocation failure. */
pkl_val *pkl_node_new(pkl_doc *doc, pkl_kind kind);
/* Inline fast path of pkl_node_new (same contract). */
static inline pkl_val *pkl_node_fast(pkl_doc *doc, pkl_kind kind) {
    size_t i = doc->nnodes;
    if (i < doc->node_avail) {
        pkl_val *v = &doc->chunks[i / PKL_CHUNK][i % PKL_CHUNK];
        memset(v, 0, sizeof *v);
        v->kind = (uint8_t)kind;
        v->idx = (uint32_t)i;
        doc->nnodes = i + 1;
        return v;
    }
    return pkl_node_new(doc, kind);
}
/* Iterate over all nodes in creation order without recursion. */
static inline pkl_val *pkl_doc_node(const pkl_doc *doc, size_t i) {
    return &((pkl_val *)doc->chunks[i / PKL_CHUNK])[i % PKL_CHUNK];
}

/* ---- scalars (returned nodes are owned by doc) */
pkl_val *pkl_make_int(pkl_doc *doc, int64_t v);
/* From a two's-complement little-endian byte string (LONG1/LONG4). */
pkl_val *pkl_make_int_le(pkl_doc *doc, const uint8_t *le, size_t n);
/* From a big-endian magnitude and sign; normalises to a small int when it fits. */
pkl_val *pkl_make_int_mag(pkl_doc *doc, const uint8_t *be, size_t n, bool neg);
pkl_val *pkl_make_float(pkl_doc *doc, uint64_t bits);
/* STR from UTF-8 already validated by the caller (surrogates allowed); BYTES/BYTEARRAY raw. Copies. */
pkl_val *pkl_make_bytes(pkl_doc *doc, pkl_kind kind, const void *data, size_t len);

/* ---- containers. Each returns PKL_OK or an error code (type-error for an
   unhashable key, resource-limit on allocation), never partially applied. */
pkl_code pkl_seq_push(pkl_doc *doc, pkl_val *seq, pkl_val *item);
/* dict[key] = value with CPython semantics: equal keys (1 == 1.0 == True)
   keep the first key object and its position, replace the value. */
pkl_code pkl_dict_set(pkl_doc *doc, pkl_val *dict, pkl_val *key, pkl_val *value);
/* set.add(item): no-op when an equal element is present. */
pkl_code pkl_set_add(pkl_doc *doc, pkl_val *set, pkl_val *item);
/* Record a mutation on a stub node. */
pkl_code pkl_stub_mutate(pkl_doc *doc, pkl_val *stub, pkl_mutkind kind, pkl_val *a, pkl_val *b);

/* ---- Python hash/equality semantics, iterative (safe on deep tuples).
   pkl_hash fails with PKL_ERR_TYPE_ERROR for unhashable values (list, dict,
   set, bytearray, and tuples/frozensets containing them). */
pkl_code pkl_hash(pkl_doc *doc, pkl_val *v, uint64_t *out);
/* a == b for two hashable values, as Python compares them (identity first).
   Deep comparisons take scratch from libc (false if even that fails);
   inside a load use pkl_equal_doc. */
bool pkl_equal(const pkl_val *a, const pkl_val *b);

/* ---- additions used by the decoder (decode.c) ---------------------------- */

/* Returns `size` bytes (8-byte aligned) from the document arena, owned by
   the document and freed with it; NULL on allocation failure or max_alloc. */
void *pkl_arena_alloc(pkl_doc *doc, size_t size);
/* Inline fast path of pkl_arena_alloc (same contract). */
static inline void *pkl_arena_fast(pkl_doc *doc, size_t size) {
    size_t need = (size + 7u) & ~(size_t)7u;
    if (size - 1u < doc->arena_left && need <= doc->arena_left) {
        char *p = doc->arena_ptr;
        doc->arena_ptr += need;
        doc->arena_left -= need;
        return p;
    }
    return pkl_arena_alloc(doc, size);
}
/* Shared singletons (created on first use, owned by doc); NULL on failure. */
pkl_val *pkl_none(pkl_doc *doc);
pkl_val *pkl_bool(pkl_doc *doc, bool b);
/* A STR/BYTES/BYTEARRAY node with `len` uninitialised bytes for the caller
   to fill (in the arena, owned by doc); NULL on failure. */
pkl_val *pkl_make_bytes_uninit(pkl_doc *doc, pkl_kind kind, size_t len);
/* Shrink such a payload to `len` <= its length (returns arena space when
   it is the newest allocation). */
void pkl_bytes_truncate(pkl_doc *doc, pkl_val *v, size_t len);
/* Append raw bytes to a BYTEARRAY (moves arena data to the heap first). */
pkl_code pkl_bytes_append(pkl_doc *doc, pkl_val *ba, const uint8_t *data, size_t n);
/* A TUPLE of n items (copied pointers; array in the arena; n == 0 gives the
   shared empty tuple). Owned by doc; NULL on failure. */
pkl_val *pkl_make_tuple(pkl_doc *doc, pkl_val *const *items, size_t n);
/* A stub-bearing node (GLOBAL, CALL, NEW, PERSID, MEMORYVIEW, BUFFER) with
   a zeroed pkl_stub record; both owned by doc. NULL on failure. */
pkl_val *pkl_make_stub(pkl_doc *doc, pkl_kind kind);
/* The one GLOBAL node of (module, name) in this document, created (strings
   copied into the arena) on first request. NULL on failure. */
pkl_val *pkl_global_intern(pkl_doc *doc, const char *module, size_t mlen,
                           const char *name, size_t nlen);
/* Make room for `extra` more items in a LIST / entries in a DICT, SET or
   FROZENSET, so the following pushes/sets do not reallocate. */
pkl_code pkl_seq_reserve(pkl_doc *doc, pkl_val *seq, size_t extra);
pkl_code pkl_map_reserve(pkl_doc *doc, pkl_val *map, size_t extra);
/* A new DICT with the same (key, value) pairs as `dict` (a shallow copy, as
   Python's **kwargs makes). Owned by doc; NULL on failure. */
pkl_val *pkl_dict_copy(pkl_doc *doc, const pkl_val *dict);
/* pkl_equal with its explicit stack charged to doc: *out = (a == b).
   Fails only with PKL_ERR_RESOURCE_LIMIT. Both values must be hashable
   (already accepted by pkl_hash). */
pkl_code pkl_equal_doc(pkl_doc *doc, const pkl_val *a, const pkl_val *b, bool *out);

/* ---- kinds */
static inline bool pkl_kind_is_scalar(pkl_kind k) {
    return k <= PKL_BYTES;
}
static inline bool pkl_kind_is_stub(pkl_kind k) {
    return k == PKL_GLOBAL || k == PKL_CALL || k == PKL_NEW || k == PKL_PERSID;
}

#endif /* PKL_VALUE_H */
