/* A fuzz target that misbehaves on purpose, so the replay driver's crash,
 * timeout and memory handling can be tested (selftest.sh). Never built for
 * a fuzzing engine. By the input's first bytes:
 *   "abort" -> brine_fuzz_fail     "segv" -> SIGSEGV
 *   "hang"  -> never returns       "oom"  -> allocates and touches 4 GiB
 *   anything else passes.
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_target.h"

int brine_fuzz_init(int *argc, char ***argv) {
    (void)argc, (void)argv;
    return 0;
}

void brine_fuzz_cleanup(void) {}

static int starts(const uint8_t *d, size_t n, const char *w) {
    size_t k = strlen(w);
    return n >= k && memcmp(d, w, k) == 0;
}

int brine_fuzz_one(const uint8_t *data, size_t len) {
    if (starts(data, len, "abort"))
        brine_fuzz_fail("selftest: asked to abort");
    if (starts(data, len, "segv"))
        raise(SIGSEGV);
    if (starts(data, len, "hang"))
        for (volatile unsigned long i = 0;; i++)
            ;
    if (starts(data, len, "oom")) {
        enum { CHUNK = 64 << 20 };
        for (int i = 0; i < 64; i++) {
            char *p = malloc(CHUNK);
            if (!p)
                brine_fuzz_fail("selftest: out of memory, as asked");
            memset(p, 1, CHUNK); /* resident, not just reserved; never freed on purpose */
        }
    }
    return 0;
}
