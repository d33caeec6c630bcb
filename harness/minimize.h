/* Opcode-granularity minimizer for fuzz findings.
 *
 * A finding is kept by its signature (what differs, and where); the
 * minimizer looks for a shorter input with the same signature, working on
 * whole opcodes (the opcode table says where each one ends) rather than
 * bytes, so every step stays a plausible pickle:
 *
 *  1. delete runs of opcodes (ddmin: halves, quarters ... single opcodes);
 *  2. shorten counted arguments (a string's payload halved, its length
 *     prefix rewritten), line arguments (a text line halved) and the
 *     unparsed tail after the last whole opcode (halved);
 *  repeated until a whole pass changes nothing or the budget is spent.
 *
 * Candidates are judged in batches through a callback, so a caller whose
 * oracle is expensive to start (an embedded CPython in a separate process)
 * pays that once per batch, not once per candidate.
 */
#ifndef BRINE_MINIMIZE_H
#define BRINE_MINIMIZE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct brine_candidate {
    const uint8_t *data;
    size_t len;
} brine_candidate;

/* Judges n candidates: sets keep[i] when candidate i has the signature the
   minimizer is preserving. Returns 0, or -1 to abort the minimization
   (the best input so far is kept). */
typedef int (*brine_judge_fn)(void *ctx, const brine_candidate *cands, size_t n, bool *keep);

typedef struct brine_min_opts {
    size_t max_batches; /* judge calls at most (0: 200) */
    size_t batch;       /* candidates per call at most (0: 64) */
} brine_min_opts;

typedef struct brine_min_stats {
    size_t batches, candidates, accepted;
} brine_min_stats;

/* Minimizes data[0..len). Returns the smallest input found with the same
   signature (possibly data itself, copied), allocated with malloc and
   owned by the caller (free()), its length in *out_len; NULL only when out
   of memory. stats may be NULL. */
uint8_t *brine_minimize(const uint8_t *data, size_t len, brine_judge_fn judge, void *ctx,
                        const brine_min_opts *opts, size_t *out_len, brine_min_stats *stats);

#endif
