/*==============================================================================
 * libpkl: a C11 implementation of Python's pickle format (protocols 0-5),
 * the implementation under test that ships with brine.
 *
 * libpkl never imports or calls anything a pickle names. Globals become
 * stub nodes (or are refused by a callback), calls on them become `call`/`new`
 * nodes, and every mutation a pickle applies to a stub is recorded on it.
 * The result is a value graph that keeps identity (shared and cyclic
 * references), printable as brine canonical text v1 (docs/canonical-form.md).
 *
 * Behaviour target: the C unpickler (`pickle.loads`) of the newest CPython;
 * docs/libpkl.md lists where CPython's C and Python unpicklers disagree and
 * which one libpkl follows.
 *
 * Nothing in libpkl recurses: decoding, emitting and freeing are iterative,
 * and every resource is bounded by pkl_limits.
 *============================================================================*/
#ifndef PKL_H
#define PKL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define PKL_VERSION_STRING "0.1.0"
#define PKL_HIGHEST_PROTOCOL 5
#define PKL_CANON_VERSION 1

/*==============================================================================
 * Allocator
 *============================================================================*/

/** A pluggable allocator. `realloc` receives the old size so arena or
    accounting allocators need no headers. Any function may return NULL;
    libpkl then fails with PKL_ERR_RESOURCE_LIMIT and frees what it holds. */
typedef struct pkl_alc {
    void *(*malloc)(void *ctx, size_t size);
    void *(*realloc)(void *ctx, void *ptr, size_t old_size, size_t size);
    void (*free)(void *ctx, void *ptr);
    void *ctx;
} pkl_alc;

/** The allocator used when NULL is passed: the C library's malloc. */
const pkl_alc *pkl_alc_libc(void);

/*==============================================================================
 * Errors: a closed taxonomy, shared with every brine adapter
 *============================================================================*/

typedef enum pkl_code {
    PKL_OK = 0,
    PKL_ERR_TRUNCATED,            /* input ended inside an opcode, or before STOP */
    PKL_ERR_BAD_OPCODE,           /* byte is not an opcode */
    PKL_ERR_STACK_UNDERFLOW,      /* an opcode needed more items than the stack (above the top mark) holds */
    PKL_ERR_MARK_MISSING,         /* an opcode needed a mark and there is none */
    PKL_ERR_MEMO_MISSING,         /* GET of a memo index never PUT */
    PKL_ERR_BAD_ARGUMENT,         /* malformed argument: digits, quotes, escapes, UTF-8, negative length */
    PKL_ERR_UNSUPPORTED_PROTOCOL, /* PROTO above 5 */
    PKL_ERR_TYPE_ERROR,           /* an operand has the wrong type (unhashable key, args not a tuple...) */
    PKL_ERR_UNKNOWN_EXTENSION,    /* EXT code not in the extension registry */
    PKL_ERR_NO_BUFFERS,           /* NEXT_BUFFER without (enough) out-of-band buffers */
    PKL_ERR_RESOURCE_LIMIT,       /* a pkl_limits bound or the allocator said no */
    PKL_ERR_FORBIDDEN,            /* a callback refused a global or persistent id */
    PKL_ERR_INTERNAL,             /* a libpkl bug: please report */
    PKL_CODE_COUNT
} pkl_code;

/** What went wrong and where. `msg` is a static string (never freed);
    `pos` is the byte offset of the opcode that failed (or of the input end
    for truncation). */
typedef struct pkl_err {
    pkl_code code;
    const char *msg;
    size_t pos;
} pkl_err;

/** The taxonomy name of a code as printed in canonical text, e.g.
    "truncated", "stack-underflow"; "ok" for PKL_OK. Never NULL. */
const char *pkl_code_name(pkl_code code);

/** Inverse of pkl_code_name; returns PKL_CODE_COUNT for an unknown name. */
pkl_code pkl_code_from_name(const char *name, size_t len);

/*==============================================================================
 * The opcode table (generated from spec/opcodes.def)
 *============================================================================*/

typedef enum pkl_argkind {
#define PKL_ARGKIND(NAME, pyname, layout, width) PKL_ARG_##NAME,
#include "../spec/argkinds.def"
#undef PKL_ARGKIND
    PKL_ARG_COUNT
} pkl_argkind;

typedef enum pkl_arglayout {
    PKL_LAYOUT_NONE, PKL_LAYOUT_FIXED, PKL_LAYOUT_LINE, PKL_LAYOUT_LINE2, PKL_LAYOUT_COUNTED
} pkl_arglayout;

typedef enum pkl_opcode {
#define PKL_OPCODE(NAME, byte, arg, proto, before, after, doc) PKL_OP_##NAME = byte,
#include "../spec/opcodes.def"
#undef PKL_OPCODE
} pkl_opcode;

typedef struct pkl_opinfo {
    const char *name;         /* pickletools name, e.g. "BININT1" */
    uint8_t code;             /* the opcode byte */
    pkl_argkind arg;
    const char *arg_name;     /* pickletools ArgumentDescriptor name, "" for none */
    pkl_arglayout layout;
    uint8_t width;            /* FIXED: argument bytes; COUNTED: length-prefix bytes */
    uint8_t proto;            /* protocol that introduced the opcode */
    const char *stack_before; /* pickletools stack-object names, space separated */
    const char *stack_after;
    const char *summary;
} pkl_opinfo;

/** Number of opcodes in the table (68). */
size_t pkl_opcode_count(void);
/** The i-th opcode in table order, or NULL past the end. */
const pkl_opinfo *pkl_opcode_at(size_t i);
/** The opcode for a byte, or NULL when the byte is not an opcode. */
const pkl_opinfo *pkl_opcode_info(uint8_t byte);

/*==============================================================================
 * Limits
 *============================================================================*/

/** Every resource libpkl uses for one load is bounded here. A load that
    would exceed a bound fails with PKL_ERR_RESOURCE_LIMIT. */
typedef struct pkl_limits {
    size_t max_input;   /* bytes of input accepted at all                  (default 1 GiB) */
    size_t max_alloc;   /* bytes held at once by one load and its document (default 4 GiB) */
    size_t max_nodes;   /* value nodes in one document                     (default 64 Mi) */
    size_t max_stack;   /* items on the value stack at once                (default 16 Mi) */
    size_t max_marks;   /* marks open at once: the nesting bound           (default 1 Mi) */
    size_t max_memo;    /* distinct memo entries                           (default 16 Mi) */
    size_t max_digits;  /* decimal digits of one INT/LONG text argument: CPython's
                           int_max_str_digits, 0 = unbounded               (default 4300) */
    size_t max_output;  /* bytes of canonical text                         (default 1 GiB) */
} pkl_limits;

/** The default limits described above. */
pkl_limits pkl_limits_default(void);

/*==============================================================================
 * Values
 *============================================================================*/

typedef enum pkl_kind {
    PKL_NONE, PKL_BOOL, PKL_INT, PKL_FLOAT, PKL_STR, PKL_BYTES,   /* scalars */
    PKL_BYTEARRAY, PKL_LIST, PKL_TUPLE, PKL_DICT, PKL_SET, PKL_FROZENSET,
    PKL_GLOBAL,     /* stub for a global (module, name); one node per distinct pair */
    PKL_CALL,       /* stub returned by callable(*args): REDUCE, INST, OBJ */
    PKL_NEW,        /* stub returned by cls.__new__(cls, *args[, **kwargs]): NEWOBJ, NEWOBJ_EX, INST/OBJ with no args */
    PKL_PERSID,     /* stub returned by persistent_load(pid) */
    PKL_MEMORYVIEW, /* READONLY_BUFFER applied to a writable buffer */
    PKL_BUFFER,     /* the n-th out-of-band buffer */
    PKL_KIND_COUNT
} pkl_kind;

/** A mutation recorded on a stub (global, call, new, persid). */
typedef enum pkl_mutkind {
    PKL_MUT_BUILD,   /* BUILD: a = state */
    PKL_MUT_APPEND,  /* APPEND/APPENDS: a = item (one record per item) */
    PKL_MUT_SETITEM, /* SETITEM/SETITEMS: a = key, b = value */
    PKL_MUT_ADD      /* ADDITEMS: a = item */
} pkl_mutkind;

typedef struct pkl_val pkl_val;
typedef struct pkl_doc pkl_doc;

pkl_kind pkl_val_kind(const pkl_val *v);
/** Name of a kind as printed in canonical text ("none", "list", ...). */
const char *pkl_kind_name(pkl_kind kind);
bool pkl_val_bool(const pkl_val *v);
/** True when an int does not fit in int64 (then use pkl_val_bigint). */
bool pkl_val_int_is_big(const pkl_val *v);
int64_t pkl_val_int(const pkl_val *v);
/** Magnitude of a big int, big-endian without leading zero bytes; *neg set
    to its sign. The bytes belong to the document. */
const uint8_t *pkl_val_bigint(const pkl_val *v, size_t *len, bool *neg);
uint64_t pkl_val_float_bits(const pkl_val *v);
/** STR: UTF-8 that may hold surrogate code points (encoded like any other
    code point, as with Python's "surrogatepass"); BYTES, BYTEARRAY: the raw
    bytes; GLOBAL: the module name. Owned by the document. */
const char *pkl_val_data(const pkl_val *v, size_t *len);
/** GLOBAL: the qualified name. Owned by the document. */
const char *pkl_val_name(const pkl_val *v, size_t *len);
/** LIST, TUPLE, SET, FROZENSET: element count; DICT: pair count. */
size_t pkl_val_len(const pkl_val *v);
/** LIST, TUPLE, SET, FROZENSET: element i (sets in insertion order); DICT: key i. */
const pkl_val *pkl_val_item(const pkl_val *v, size_t i);
/** DICT: value i. */
const pkl_val *pkl_val_value(const pkl_val *v, size_t i);
/** CALL: the callable; NEW: the class; PERSID: the pid; MEMORYVIEW: the viewed object. */
const pkl_val *pkl_val_target(const pkl_val *v);
/** CALL, NEW: the argument tuple. */
const pkl_val *pkl_val_args(const pkl_val *v);
/** NEW from NEWOBJ_EX: the kwargs dict; otherwise NULL. */
const pkl_val *pkl_val_kwargs(const pkl_val *v);
/** BUFFER: its index among the out-of-band buffers. */
size_t pkl_val_buffer_index(const pkl_val *v);
/** Stubs: number of recorded mutations, and mutation i (b is NULL unless SETITEM). */
size_t pkl_val_mut_count(const pkl_val *v);
pkl_mutkind pkl_val_mut(const pkl_val *v, size_t i, const pkl_val **a, const pkl_val **b);

/*==============================================================================
 * Loading
 *============================================================================*/

/** Decides whether a global may be used. Return true to allow it (a stub is
    made), false to refuse it (the load fails with PKL_ERR_FORBIDDEN).
    module/name are UTF-8 and not NUL-terminated. */
typedef bool (*pkl_global_fn)(void *ctx, const char *module, size_t mlen,
                              const char *name, size_t nlen);

/** Looks up an extension code (EXT1/2/4) in the caller's copyreg-like
    registry. Return true and set the four outputs when it is registered;
    the strings must outlive the load. */
typedef bool (*pkl_ext_fn)(void *ctx, int64_t code, const char **module,
                           size_t *mlen, const char **name, size_t *nlen);

/** Safety trace events, reported in the order the load performs them,
    including those before a later error. */
typedef enum pkl_event_kind {
    PKL_EV_GLOBAL,   /* a global was resolved: module, name */
    PKL_EV_CALL,     /* a stub was called (REDUCE/INST/OBJ): target = callable */
    PKL_EV_NEW,      /* cls.__new__ (NEWOBJ/NEWOBJ_EX/INST/OBJ): target = class */
    PKL_EV_PERSID,   /* persistent_load was called */
    PKL_EV_MUTATE    /* a mutation was recorded on a stub: target = the stub */
} pkl_event_kind;

typedef struct pkl_event {
    pkl_event_kind kind;
    size_t pos;             /* offset of the opcode */
    const char *module, *name;
    size_t mlen, nlen;      /* GLOBAL only */
    const pkl_val *target;  /* CALL/NEW/MUTATE: the stub acted on; PERSID: the pid */
    const pkl_val *result;  /* GLOBAL/CALL/NEW/PERSID: the node the event produced, so a
                               trace can name it when it is used later; NULL for MUTATE */
} pkl_event;

typedef void (*pkl_event_fn)(void *ctx, const pkl_event *ev);

/** Options for one load. Zero-initialise, then set what you need; a NULL
    options pointer means all defaults. */
typedef struct pkl_load_opts {
    const pkl_alc *alc;          /* NULL: pkl_alc_libc() */
    const pkl_limits *limits;    /* NULL: pkl_limits_default() */
    pkl_global_fn on_global;     /* NULL: allow every global */
    pkl_global_fn on_persid;     /* NULL: allow; called with module=pid text (PERSID) or NULL (BINPERSID) */
    pkl_ext_fn ext_lookup;       /* NULL: empty registry (like stock CPython) */
    pkl_event_fn on_event;       /* NULL: no trace */
    void *ctx;                   /* passed to every callback */
    size_t nbuffers;             /* out-of-band buffers available to NEXT_BUFFER */
    bool have_buffers;           /* false: NEXT_BUFFER fails like pickle.loads(data) without buffers= */
} pkl_load_opts;

/** Decodes one pickle. Returns a new document owned by the caller, to be
    released with pkl_doc_free(); on failure returns NULL and fills *err
    (which may be NULL). Bytes after STOP are ignored, as pickle.loads does. */
pkl_doc *pkl_load(const void *data, size_t len, const pkl_load_opts *opts,
                  pkl_err *err);

/** The loaded value; owned by the document. */
const pkl_val *pkl_doc_root(const pkl_doc *doc);
/** Protocol declared by PROTO, or 0 when the pickle has none. */
int pkl_doc_protocol(const pkl_doc *doc);
/** Number of nodes in the document. */
size_t pkl_doc_node_count(const pkl_doc *doc);
/** Frees a document and every node in it (iteratively). NULL is a no-op. */
void pkl_doc_free(pkl_doc *doc);

/*==============================================================================
 * Canonical text v1 (docs/canonical-form.md)
 *============================================================================*/

/** Renders a document as canonical text v1, raw level, header line
    included. Returns a NUL-terminated string allocated with `alc` (NULL:
    libc), owned by the caller and released with that allocator's free;
    *len (may be NULL) receives its length. NULL on failure, with *err set
    (PKL_ERR_RESOURCE_LIMIT past max_output or on allocation failure). */
char *pkl_canon(const pkl_doc *doc, const pkl_alc *alc, size_t max_output,
                size_t *len, pkl_err *err);

/** Writes the canonical quoting (docs/canonical-form.md section 3) of a
    string in libpkl's STR storage (UTF-8 in which surrogates are encoded like
    any other code point, e.g. a GLOBAL's module or name) to `out`, which must
    hold PKL_QUOTE_MAX(n) bytes. Returns the bytes written; no NUL, no
    allocation. */
#define PKL_QUOTE_MAX(n) (4 * (n) + 2)
size_t pkl_quote_str(const char *s, size_t n, char *out);

/** Renders the canonical document of a failed load ("error <class>").
    Same ownership as pkl_canon. */
char *pkl_canon_error(pkl_code code, const pkl_alc *alc, size_t *len);

/** Loads and renders in one call: the canonical text of the value, or of
    the error when the load fails (then *load_err says why). Same ownership
    as pkl_canon. Returns NULL only when even the error text cannot be
    allocated. */
char *pkl_canon_load(const void *data, size_t len, const pkl_load_opts *opts,
                     size_t *out_len, pkl_err *load_err);

/*==============================================================================
 * Disassembly (like pickletools.dis)
 *============================================================================*/

/** Writes a disassembly of `data` to the callback, line by line. Stops at
    STOP or at the first fault, which it reports as a final line and in
    *err. Returns true when the stream was well formed up to STOP. */
typedef void (*pkl_write_fn)(void *ctx, const char *text, size_t len);
bool pkl_dis(const void *data, size_t len, pkl_write_fn write, void *ctx,
             pkl_err *err);

#ifdef __cplusplus
}
#endif
#endif /* PKL_H */
