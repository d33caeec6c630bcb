/* Comparing libpkl's answer with CPython's for the differential fuzz target.
 *
 * An answer is what an adapter with the `trace` feature responds: the
 * canonical document and the safety-trace lines (docs/adapter-protocol.md).
 *
 * Verdicts, in this order:
 *
 *  0. AGREE when the documents are byte-identical and the traces are
 *     identical line by line once every ` as "m" "n"` clause (CPython's
 *     py2->py3 import name, which libpkl does not model) is dropped.
 *  1. NO_VERDICT when they differ and CPython answered `error
 *     resource-limit`, or ran into
 *     a limit during the load (`limited`: its memory cap refused an
 *     allocation, its CPU budget ran out) whatever it answered: the oracle
 *     classifies a MemoryError as `truncated` when the input also holds a
 *     claimed length longer than itself, even when the refused allocation
 *     was another one (the memo array), so the text alone does not say that
 *     a limit decided the answer. Running out says nothing about the
 *     pickle. This is where every difference libpkl
 *     makes on purpose lands (docs/libpkl.md section 6: the sparse memo, so
 *     `Nr\x00\x00\x00\x02.` loads in libpkl and exhausts CPython; deep
 *     structures CPython hashes recursively; shared tuple DAGs CPython
 *     re-hashes exponentially; the oracle already maps MemoryError on
 *     over-long claimed lengths to `truncated`, as libpkl answers). libpkl
 *     saying resource-limit is *not* excused: its limits are explicit and a
 *     small input never reaches them, so that is a divergence.
 *  2. DIVERGE otherwise, with a signature.
 *
 * Signature: four fields joined by '.', filename-safe (only [A-Za-z0-9_-]
 * inside fields), at most BRINE_CMP_SIG_MAX - 1 bytes:
 *
 *     <decision>.<pkl-kind>.<cpython-kind>.<opcode>
 *
 *  decision      both-load | pkl-rejects | cpython-rejects |
 *                both-reject-different-class | trace-only
 *  pkl-kind,     the first line where the two differ, reduced to its kind:
 *  cpython-kind  a node kind (`int`, `list`, `global` ...), `ref`,
 *                `slot-args` for `.args` (every slot likewise),
 *                `error-<class>` for an error document, `end` when that
 *                side has no more lines; for trace-only, the event kind of
 *                the first differing trace line (`global`, `call` ...)
 *  opcode        pickletools name of the opcode context: libpkl's failing
 *                opcode (the opcode at pkl_err.pos, or the last one that
 *                started before the input ended) when libpkl rejected,
 *                else the last opcode before STOP; `none` for an empty
 *                input, `byte-XX` when the walk met a byte that is not an
 *                opcode.
 *
 * e.g. `pkl-rejects.error-truncated.none.FRAME`,
 *      `both-load.int.float.BINFLOAT`, `trace-only.global.end.STACK_GLOBAL`.
 * brine_cmp_sig_hash() gives a 64-bit FNV-1a of it for shorter names.
 */
#ifndef BRINE_COMPARE_H
#define BRINE_COMPARE_H

#include <stddef.h>
#include <stdint.h>

#include "pkl.h"

#define BRINE_CMP_SIG_MAX 160
#define BRINE_CMP_KIND_MAX 40

/* One side's answer. text: the canonical document; trace: the trace lines
   after the marker ("" or NULL with length 0 when empty). Not owned. */
typedef struct brine_cmp_side {
    const char *text;
    size_t text_len;
    const char *trace;
    size_t trace_len;
    int limited; /* the load ran into a resource limit (a refused allocation, the CPU
                    budget), whatever its document says: see rule 1 */
} brine_cmp_side;

typedef enum brine_cmp_verdict {
    BRINE_CMP_AGREE,
    BRINE_CMP_NO_VERDICT,
    BRINE_CMP_DIVERGE
} brine_cmp_verdict;

typedef enum brine_cmp_decision {
    BRINE_CMP_SAME,                  /* no divergence */
    BRINE_CMP_BOTH_LOAD,             /* both load, the documents differ */
    BRINE_CMP_PKL_REJECTS,           /* libpkl rejects, CPython loads */
    BRINE_CMP_CPYTHON_REJECTS,       /* CPython rejects, libpkl loads */
    BRINE_CMP_BOTH_REJECT_DIFFERENT, /* both reject, with different classes */
    BRINE_CMP_TRACE_ONLY             /* same document, the traces differ */
} brine_cmp_decision;

typedef struct brine_cmp_result {
    brine_cmp_verdict verdict;
    brine_cmp_decision decision;
    const char *no_verdict_reason; /* NO_VERDICT: static text; else NULL */
    int in_trace;                  /* the first difference is in the trace */
    size_t line;                   /* 1-based line of the first difference (document or trace) */
    char pkl_kind[BRINE_CMP_KIND_MAX];
    char py_kind[BRINE_CMP_KIND_MAX];
    char opcode[BRINE_CMP_KIND_MAX];
    size_t op_pos;                 /* offset of the opcode context (SIZE_MAX: none) */
    char signature[BRINE_CMP_SIG_MAX]; /* DIVERGE only; "" otherwise */
} brine_cmp_result;

/* Compares libpkl's answer (with the load's error: code PKL_OK when it
   loaded; NULL is taken as "loaded") with CPython's for the input
   data[0..len). Allocates nothing; fills *out. */
void brine_compare(const uint8_t *data, size_t len, const brine_cmp_side *pkl,
                   const pkl_err *pkl_error, const brine_cmp_side *py, brine_cmp_result *out);

/* The decision's name as the signature spells it ("same" for none). */
const char *brine_cmp_decision_name(brine_cmp_decision d);

/* 64-bit FNV-1a of the signature. */
uint64_t brine_cmp_sig_hash(const char *signature);

/* A readable account of a divergence: the signature and its hash, both
   documents as one unified diff (libpkl '-', CPython '+', 3 lines of
   context, each side's differing part cut after 40 lines), the same for
   the traces, and the disassembly of the input (pkl_dis, cut after 200
   lines). The whole text is cut at max_len bytes (0: 64 KiB) with a note.
   Returns a NUL-terminated string allocated with malloc, owned by the
   caller (free()); NULL when out of memory. */
char *brine_cmp_report(const uint8_t *data, size_t len, const brine_cmp_side *pkl,
                       const brine_cmp_side *py, const brine_cmp_result *r, size_t max_len);

#endif
