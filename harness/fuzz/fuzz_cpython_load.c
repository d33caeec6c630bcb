/* fuzz_cpython_load: CPython alone, embedded, with the oracle's stubbing,
 * classifier, emitter and trace (brine_py_load), and nothing else.
 *
 * The reference point of fuzz_pkl_vs_cpython's benchmark: run both over the
 * same inputs, and the ratio of their speeds says what libpkl and the
 * comparison add (issue 5 asks for the differential target at >= 50% of
 * this one). Also finds inputs on which the embedding itself fails (an
 * exception escaping the oracle, a guard refusal): those abort.
 *
 * Environment: BRINE_ORACLE_DIR, BRINE_PY_TIMEOUT, BRINE_PY_MEM_MB as for
 * fuzz_pkl_vs_cpython, with the same defaults.
 */
#include <stdio.h>
#include <stdlib.h>

#include "fuzz_py.h"
#include "fuzz_target.h"
#include "pyembed.h"

#define PY_MAX_OUTPUT ((size_t)16 << 20) /* as in fuzz_pkl_vs_cpython */

int brine_fuzz_init(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    return brine_fuzz_py_init("fuzz_cpython_load", PY_MAX_OUTPUT);
}

int brine_fuzz_one(const uint8_t *data, size_t len) {
    const char *text, *trace;
    size_t text_len, trace_len;
    if (brine_py_load(data, len, &text, &text_len, &trace, &trace_len) != 0)
        brine_fuzz_fail("embedded CPython failed: %s", brine_py_error());
    return 0;
}

void brine_fuzz_cleanup(void) { brine_py_finish(); }
