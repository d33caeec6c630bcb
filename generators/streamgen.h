/* streamgen: table-driven raw pickle opcode-stream generator (brine issue 4).
 *
 * Everything is driven by the one opcode table (spec/opcodes.def through
 * pkl_opcode_at/pkl_opcode_info): which opcodes exist, their protocol, their
 * argument layout and width, and their stack effect (parsed from the
 * pickletools stack_before/stack_after strings). A small refinement keyed by
 * the generated PKL_OP_* constants adds what pickletools' "any" cannot say
 * (REDUCE wants a callable and a tuple, dict keys must be hashable ...).
 *
 * Deterministic: the same (seed, arguments) give the same bytes on every
 * platform (own splitmix64 PRNG, no rand(), no floating point).
 *
 * Output convention of every pkl_gen_* producer: the return value is the
 * length of the complete stream; when it exceeds `cap` nothing has been
 * written past `cap` (retry with a larger buffer, like snprintf). 0 means
 * an error (unknown fault, protocol out of range, fault not applicable at
 * this protocol, out of memory). Nothing here recurses.
 */
#ifndef PKL_STREAMGEN_H
#define PKL_STREAMGEN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct pkl_gen_config {
    int protocol;          /* 0..5 */
    unsigned steps;        /* random-walk steps (opcodes chosen), default 24 */
    unsigned max_payload;  /* longest str/bytes payload, default 300 */
    int frames;            /* protocol >= 4: -1 sometimes (default), 0 never, 1 always */
} pkl_gen_config;

/** Fills the defaults for `protocol`. */
void pkl_gen_config_init(pkl_gen_config *cfg, int protocol);

/** A well-formed pickle for cfg->protocol that CPython's C unpickler loads
    (with stubbed globals and a persistent_load), by construction.
    NEXT_BUFFER and EXT1/2/4 are never produced: without out-of-band buffers
    or an extension registry they can only fail. */
size_t pkl_gen_valid_cfg(uint64_t seed, const pkl_gen_config *cfg, uint8_t *out, size_t cap);
size_t pkl_gen_valid(uint64_t seed, int protocol, uint8_t *out, size_t cap);

/** A valid stream with exactly one fault applied. `fault` is one of
    pkl_gen_faults(); *expected (may be NULL) receives the error class the
    generator intends (canonical class name, "ok" for the accepted variants
    "extra-mark" and "opcode-above-protocol"). The oracle is the truth. */
size_t pkl_gen_invalid_cfg(uint64_t seed, const pkl_gen_config *cfg, const char *fault,
                           uint8_t *out, size_t cap, const char **expected);
size_t pkl_gen_invalid(uint64_t seed, int protocol, const char *fault, uint8_t *out,
                       size_t cap, const char **expected);

/** The fault names (stable ids), in a fixed order. */
const char *const *pkl_gen_faults(size_t *n);
/** The class a fault is meant to produce, NULL for an unknown name. */
const char *pkl_gen_fault_class(const char *fault);

/** True when valid mode may emit opcode `op` at `protocol`. */
int pkl_gen_eligible(int protocol, uint8_t op);

/** Structure-aware mutation in place (libFuzzer/AFL++ custom-mutator shape):
    parses data[0..len) at opcode granularity with the table and applies one
    mutation (stack-neutral insertion, same-type producer replacement,
    opcode delete/duplicate, argument boundary tweak, FRAME length fix-up).
    Never writes at or past `cap`; returns the new length (<= cap). */
size_t pkl_gen_mutate(uint64_t seed, uint8_t *data, size_t len, size_t cap);

/** Structure-aware crossover (libFuzzer CustomCrossOver / AFL++ splice
    shape): cuts both parents at opcode boundaries and either joins a's head
    to b's tail or inserts a run of b's opcodes into a; then shortens any
    FRAME that claims more than the bytes left. Writes at most `cap` bytes to
    `out` (which must not overlap the parents) and returns the length. */
size_t pkl_gen_crossover(uint64_t seed, const uint8_t *a, size_t alen, const uint8_t *b, size_t blen,
                         uint8_t *out, size_t cap);

#ifdef __cplusplus
}
#endif
#endif
