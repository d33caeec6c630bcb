/* Embedded CPython for the fuzz targets (fuzz_py.h). */
#include <stdio.h>
#include <stdlib.h>

#include "fuzz_py.h"
#include "pyembed.h"

#ifndef BRINE_ORACLE_DIR
#define BRINE_ORACLE_DIR "oracle"
#endif

double brine_fuzz_env_num(const char *name, double dflt) {
    const char *s = getenv(name);
    if (!s || !*s)
        return dflt;
    char *end;
    double v = strtod(s, &end);
    return *end ? dflt : v;
}

int brine_fuzz_py_init(const char *who, size_t max_output) {
    const char *dir = getenv("BRINE_ORACLE_DIR");
    brine_py_opts o = {0};
    o.unpickler = "c";
    o.timeout = brine_fuzz_env_num("BRINE_PY_TIMEOUT", 2.0);
    o.mem_cap = (size_t)(brine_fuzz_env_num("BRINE_PY_MEM_MB", 256) * (double)(1u << 20));
    o.max_output = max_output;
    char err[1024];
    if (brine_py_init(dir && *dir ? dir : BRINE_ORACLE_DIR, &o, err, sizeof err) != 0) {
        fprintf(stderr, "%s: cannot start the embedded CPython: %s\n", who, err);
        return 1;
    }
    return 0;
}
