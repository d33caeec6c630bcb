/* CPython embedded in-process as brine's oracle (the fuzzers' reference).
 *
 * The embedded interpreter runs the oracle package itself
 * (oracle/brine_oracle): every load goes through brine_oracle.worker's
 * `respond`, the function `python -m brine_oracle serve` answers with, so
 * the text and trace are those of the worker by construction (stub globals,
 * the classifier, the canonical emitter and the trace renderer are the
 * oracle's own). What differs from the worker process is only how limits
 * are enforced:
 *
 *  - memory: no RLIMIT_AS (it would bound the host process too, and ASan
 *    reserves terabytes of address space). Accounting allocators wrap
 *    CPython's RAW/MEM/OBJ domains (pymem_cap.h) and refuse an allocation
 *    once CPython holds more than `mem_cap` bytes above what it held when
 *    the load started; CPython raises MemoryError and the oracle answers
 *    `error resource-limit` (or `error truncated` when the refused
 *    allocation was a counted argument longer than the input: the oracle's
 *    classifier says so for the worker too). The cap is lower than the
 *    worker's 2 GiB address-space limit, so a pickle needing between the two
 *    is `resource-limit` here and loads in the worker;
 *  - time: the oracle's CaseTimer (a CPU-time itimer, SIGPROF) per load,
 *    as in the worker.
 *
 * Safety: nothing read from a pickle is imported or called (the oracle's
 * stubs guarantee it); a C audit hook, armed only while a case loads,
 * refuses what brine_oracle.adapt's guard denies (imports, exec/compile,
 * process creation, file writes, sockets, ctypes, the real
 * pickle.find_class ...). A refusal makes brine_py_load return -1: a
 * guard hit is a bug to look at, never an answer.
 *
 * One interpreter per process, used from the thread that initialised it.
 * Needs CPython 3.8+ (PyConfig, audit hooks).
 */
#ifndef BRINE_PYEMBED_H
#define BRINE_PYEMBED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BRINE_PY_DEFAULT_MEM_CAP ((size_t)256 << 20)
#define BRINE_PY_DEFAULT_TIMEOUT 10.0

typedef struct brine_py_opts {
    const char *unpickler; /* "c" (NULL: "c") or "py" */
    size_t mem_cap;        /* bytes CPython may newly hold during one load; 0: 256 MiB;
                              SIZE_MAX: no cap */
    double timeout;        /* per-load CPU seconds; 0: 10 s (the worker's default); < 0: none */
    size_t max_output;     /* bound on document + trace; 0: the oracle's default (1 GiB) */
    const char *program;   /* the interpreter whose prefix (stdlib) is used; NULL: the one
                              found at configure time (BRINE_PYEMBED_PROGRAM) */
} brine_py_opts;

/* Starts the interpreter (once per process; a second call with the
   interpreter up returns 0 and ignores its arguments), imports the oracle
   from oracle_dir (NULL: the source tree's oracle/, BRINE_ORACLE_DIR at
   compile time) and warms it up, unguarded, on benign pickles so that lazy
   imports happen now and not under the guard. opts may be NULL (defaults).
   Returns 0, or -1 with a message in err (errlen may be 0). After
   brine_py_finish, the interpreter cannot be started again: -1. */
int brine_py_init(const char *oracle_dir, const brine_py_opts *opts, char *err, size_t errlen);

/* Loads one pickle like `python -m brine_oracle serve` answers it: *text
   receives the canonical document ("brine-canonical 1 raw\n..."), *trace the
   trace lines after the "--- trace" marker ("" when empty). Both are
   NUL-terminated, ASCII, and point into buffers owned by the embedding,
   valid until the next brine_py_load or brine_py_finish. Returns 0, or -1
   on an embedding failure (interpreter not started, an exception escaping
   the oracle, a guard refusal, a malformed response): not a pickle error,
   those are texts. brine_py_error() says why. */
int brine_py_load(const uint8_t *data, size_t len, const char **text, size_t *text_len,
                  const char **trace, size_t *trace_len);

/* Changes the per-load limits of a running embedding (same meaning as in
   brine_py_opts; 0 picks the default). Returns 0, or -1 (brine_py_error). */
int brine_py_set_limits(size_t mem_cap, double timeout);

/* Diagnostics and tests of the guard: compiles `src` (unguarded: compile
   is itself a denied event), then runs it with the guard armed, in a fresh
   namespace. Returns 1 when the guard refused something (*why, if whylen,
   names it), 0 when the code ran without a refusal, -1 when it failed
   otherwise (brine_py_error). Never give it text from a pickle. */
int brine_py_run_guarded(const char *src, char *why, size_t whylen);

/* What the last brine_py_load ran into. */
typedef struct brine_py_info {
    uint64_t mem_refused; /* allocations refused by the memory cap */
    int64_t mem_peak;     /* most bytes CPython held above its level at the load's start */
    bool timed_out;       /* the CPU-time limit fired */
    bool guard_refused;   /* the audit hook refused something (then the load returned -1) */
} brine_py_info;

brine_py_info brine_py_last_info(void);

/* The message of the last -1 from brine_py_init or brine_py_load ("" when
   none). Owned by the embedding. */
const char *brine_py_error(void);

/* Finalizes the interpreter and frees the embedding's buffers. Idempotent.
   The interpreter cannot be started again in this process. */
void brine_py_finish(void);

/* The interpreter's version as the worker's hello gives it ("3.11.2"), and
   its adapter name ("cpython-3.11-c"); NULL before brine_py_init. Owned by
   the embedding. */
const char *brine_py_version(void);
const char *brine_py_name(void);

/* Bytes CPython holds now, through every allocator domain (for leak
   checks). */
int64_t brine_py_held_bytes(void);

#endif
