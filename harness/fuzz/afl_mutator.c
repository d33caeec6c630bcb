/* AFL++ custom mutator library built on the opcode-stream generator
 * (generators/streamgen.h). Load it with
 *   AFL_CUSTOM_MUTATOR_LIBRARY=/path/libbrine_afl_mutator.so afl-fuzz ...
 * AFL++ then runs these structure-aware mutations next to its own havoc
 * stage (AFL_CUSTOM_MUTATOR_ONLY=1: only these).
 *
 * Each call: with a second parent (AFL++'s splice input) sometimes an
 * opcode-boundary crossover, otherwise one to four streamgen mutations;
 * now and then a fresh generated stream (valid or one-fault).
 */
#include <stdlib.h>
#include <string.h>

#ifndef PKL_STREAMGEN_H /* tests/test_fuzz.c includes this file after the generator */
#include "streamgen.h"
#endif

typedef struct brine_afl {
    uint64_t rng;
    uint8_t *buf;
    size_t cap;
} brine_afl;

void *afl_custom_init(void *afl, unsigned int seed);
size_t afl_custom_fuzz(void *data, uint8_t *in, size_t in_size, uint8_t **out_buf,
                       uint8_t *add_buf, size_t add_buf_size, size_t max_size);
const char *afl_custom_describe(void *data, size_t max_description_len);
void afl_custom_deinit(void *data);

static uint64_t next(uint64_t *s) {
    uint64_t z = (*s += UINT64_C(0x9e3779b97f4a7c15));
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

/* Returns a new state owned by AFL++, released by afl_custom_deinit. */
void *afl_custom_init(void *afl, unsigned int seed) {
    (void)afl;
    brine_afl *m = calloc(1, sizeof *m);
    if (m)
        m->rng = seed;
    return m;
}

static int reserve(brine_afl *m, size_t n) {
    if (n <= m->cap)
        return 1;
    uint8_t *nb = realloc(m->buf, n);
    if (!nb)
        return 0;
    m->buf = nb;
    m->cap = n;
    return 1;
}

size_t afl_custom_fuzz(void *data, uint8_t *in, size_t in_size, uint8_t **out_buf,
                       uint8_t *add_buf, size_t add_buf_size, size_t max_size) {
    brine_afl *m = data;
    if (!max_size || !reserve(m, max_size)) {
        *out_buf = in;
        return in_size;
    }
    unsigned roll = (unsigned)(next(&m->rng) % 100);
    size_t n;
    if (roll < 5) {
        int proto = (int)(next(&m->rng) % 6);
        size_t nf = 0;
        const char *const *faults = pkl_gen_faults(&nf);
        n = next(&m->rng) % 2
                ? pkl_gen_valid(next(&m->rng), proto, m->buf, max_size)
                : pkl_gen_invalid(next(&m->rng), proto, faults[next(&m->rng) % nf], m->buf,
                                  max_size, NULL);
        if (n && n <= max_size) {
            *out_buf = m->buf;
            return n;
        }
    }
    if (add_buf && add_buf_size && roll < 30) {
        n = pkl_gen_crossover(next(&m->rng), in, in_size, add_buf, add_buf_size, m->buf,
                              max_size);
    } else {
        n = in_size < max_size ? in_size : max_size;
        memcpy(m->buf, in, n);
        unsigned steps = 1 + (unsigned)(next(&m->rng) % 4);
        for (unsigned i = 0; i < steps; i++)
            n = pkl_gen_mutate(next(&m->rng), m->buf, n, max_size);
    }
    *out_buf = m->buf;
    return n;
}

const char *afl_custom_describe(void *data, size_t max_description_len) {
    (void)data;
    return max_description_len >= 10 ? "brine-gen" : "";
}

void afl_custom_deinit(void *data) {
    brine_afl *m = data;
    if (!m)
        return;
    free(m->buf);
    free(m);
}
