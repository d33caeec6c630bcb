/* libFuzzer custom mutator and crossover built on the opcode-stream
 * generator (generators/streamgen.h), linked into the *_structured fuzzers.
 *
 * Why a mix: the structure-aware mutations keep inputs parseable deep into a
 * pickle (where byte flips mostly make bad-opcode), while libFuzzer's own
 * mutations (LLVMFuzzerMutate: bit flips, dictionary words, CMP-guided
 * values) find the byte-level edge cases the generator's tables do not know.
 *
 * BRINE_FUZZ_MUTATOR selects the mix at run time, so one binary serves every
 * arm of a comparison:
 *   mixed (default)  streamgen (one to three mutations, or now and then a
 *                    fresh generated stream) on BRINE_FUZZ_STRUCTURED_PCT
 *                    percent of the calls (default 80), LLVMFuzzerMutate on
 *                    the rest; crossover likewise
 *   structured       streamgen only (mutations and fresh streams)
 *   default          LLVMFuzzerMutate only, byte-level crossover: behaves
 *                    like the binary without this file
 */
#include <stdlib.h>
#include <string.h>

#ifndef PKL_STREAMGEN_H /* tests/test_fuzz.c includes this file after the generator */
#include "streamgen.h"
#endif

size_t LLVMFuzzerMutate(uint8_t *data, size_t size, size_t max_size);
size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned int seed);
size_t LLVMFuzzerCustomCrossOver(const uint8_t *data1, size_t size1, const uint8_t *data2,
                                 size_t size2, uint8_t *out, size_t max_out_size,
                                 unsigned int seed);

enum { MIX_UNSET, MIX_MIXED, MIX_STRUCTURED, MIX_DEFAULT };
static int g_mix = MIX_UNSET;
/* mixed: percent of calls that use streamgen. 80 measured best at 100,000
   runs (fuzz_pkl_load: 50 -> 2,428 edges, 80 -> 2,518, 95 -> 2,524, median
   of 3 seeds); a fifth of libFuzzer's own mutations keeps its CMP-guided
   byte edits and dictionary in play for what the generator's tables miss. */
static unsigned g_pct = 80;

static int mix(void) {
    if (g_mix == MIX_UNSET) {
        const char *e = getenv("BRINE_FUZZ_MUTATOR");
        g_mix = !e || !*e || strcmp(e, "mixed") == 0 ? MIX_MIXED
                : strcmp(e, "structured") == 0       ? MIX_STRUCTURED
                : strcmp(e, "default") == 0          ? MIX_DEFAULT
                                                     : MIX_MIXED;
        const char *p = getenv("BRINE_FUZZ_STRUCTURED_PCT");
        if (p && *p) {
            long v = strtol(p, NULL, 10);
            g_pct = v < 0 ? 0 : v > 100 ? 100 : (unsigned)v;
        }
    }
    return g_mix;
}

static uint64_t next(uint64_t *s) {
    uint64_t z = (*s += UINT64_C(0x9e3779b97f4a7c15));
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

/* A fresh stream replaces the input; when it does not fit, the input stays. */
static size_t fresh(uint64_t *s, uint8_t *data, size_t size, size_t max_size) {
    uint8_t *tmp = malloc(max_size ? max_size : 1);
    if (!tmp)
        return size;
    int proto = (int)(next(s) % 6);
    size_t n;
    if (next(s) % 2) {
        n = pkl_gen_valid(next(s), proto, tmp, max_size);
    } else {
        size_t nf = 0;
        const char *const *faults = pkl_gen_faults(&nf);
        n = pkl_gen_invalid(next(s), proto, faults[next(s) % nf], tmp, max_size, NULL);
    }
    if (n && n <= max_size) {
        memcpy(data, tmp, n);
        size = n;
    }
    free(tmp);
    return size;
}

size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned int seed) {
    uint64_t s = seed;
    unsigned roll = (unsigned)(next(&s) % 100);
    switch (mix()) {
    case MIX_DEFAULT:
        return LLVMFuzzerMutate(data, size, max_size);
    case MIX_MIXED:
        if (roll >= g_pct)
            return LLVMFuzzerMutate(data, size, max_size);
        roll = (unsigned)(next(&s) % 100); /* fresh roll for the streamgen branch */
        break;
    default:
        break;
    }
    if (roll < 10 || size == 0)
        return fresh(&s, data, size, max_size);
    /* one to three structural steps: single steps rarely leave a basin */
    unsigned steps = 1 + (unsigned)(next(&s) % 3);
    for (unsigned i = 0; i < steps; i++)
        size = pkl_gen_mutate(next(&s), data, size, max_size);
    return size;
}

/* libFuzzer's own crossover is not callable from here; this is its shape:
   alternate runs of the two parents, cut anywhere. */
static size_t byte_crossover(uint64_t *s, const uint8_t *a, size_t na, const uint8_t *b, size_t nb,
                             uint8_t *out, size_t cap) {
    size_t n = 0, ia = 0, ib = 0;
    int from_a = 1;
    while (n < cap && (ia < na || ib < nb)) {
        const uint8_t *src = from_a ? a : b;
        size_t *ix = from_a ? &ia : &ib, lim = from_a ? na : nb;
        if (*ix < lim) {
            size_t run = 1 + (size_t)(next(s) % (lim - *ix));
            if (run > cap - n)
                run = cap - n;
            memcpy(out + n, src + *ix, run);
            n += run;
            *ix += run;
        }
        from_a = !from_a;
    }
    return n;
}

size_t LLVMFuzzerCustomCrossOver(const uint8_t *data1, size_t size1, const uint8_t *data2,
                                 size_t size2, uint8_t *out, size_t max_out_size,
                                 unsigned int seed) {
    uint64_t s = seed;
    if (mix() == MIX_DEFAULT || (mix() == MIX_MIXED && next(&s) % 100 >= g_pct))
        return byte_crossover(&s, data1, size1, data2, size2, out, max_out_size);
    return pkl_gen_crossover(next(&s), data1, size1, data2, size2, out, max_out_size);
}
