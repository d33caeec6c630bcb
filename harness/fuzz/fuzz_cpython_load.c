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

#include "fuzz_target.h"
#include "pyembed.h"

#ifndef BRINE_ORACLE_DIR
#define BRINE_ORACLE_DIR "oracle"
#endif

#define MiB ((size_t)1 << 20)
#define PY_MAX_OUTPUT (16 * MiB) /* as in fuzz_pkl_vs_cpython */

static double env_num(const char *name, double dflt) {
    const char *s = getenv(name);
    if (!s || !*s)
        return dflt;
    char *end;
    double v = strtod(s, &end);
    return *end ? dflt : v;
}

int brine_fuzz_init(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    const char *dir = getenv("BRINE_ORACLE_DIR");
    brine_py_opts o = {0};
    o.unpickler = "c";
    o.timeout = env_num("BRINE_PY_TIMEOUT", 2.0);
    o.mem_cap = (size_t)(env_num("BRINE_PY_MEM_MB", 256) * (double)MiB);
    o.max_output = PY_MAX_OUTPUT;
    char err[1024];
    if (brine_py_init(dir && *dir ? dir : BRINE_ORACLE_DIR, &o, err, sizeof err) != 0) {
        fprintf(stderr, "fuzz_cpython_load: cannot start the embedded CPython: %s\n", err);
        return 1;
    }
    return 0;
}

int brine_fuzz_one(const uint8_t *data, size_t len) {
    const char *text, *trace;
    size_t text_len, trace_len;
    if (brine_py_load(data, len, &text, &text_len, &trace, &trace_len) != 0)
        brine_fuzz_fail("embedded CPython failed: %s", brine_py_error());
    return 0;
}

void brine_fuzz_cleanup(void) { brine_py_finish(); }
