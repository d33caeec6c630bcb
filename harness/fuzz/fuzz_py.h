/* What the fuzz targets that embed CPython share: starting it from the
 * environment (BRINE_ORACLE_DIR, BRINE_PY_TIMEOUT, BRINE_PY_MEM_MB). */
#ifndef BRINE_FUZZ_PY_H
#define BRINE_FUZZ_PY_H

#include <stddef.h>

/* The environment variable `name` as a number, or dflt when unset or not
   a number. */
double brine_fuzz_env_num(const char *name, double dflt);

/* Starts the embedded CPython with the oracle's stubbed C unpickler, a CPU
   budget of BRINE_PY_TIMEOUT seconds per load (default 2), a memory cap of
   BRINE_PY_MEM_MB (default 256) and max_output bytes of document + trace.
   Returns 0, or 1 after printing why, prefixed by `who`. */
int brine_fuzz_py_init(const char *who, size_t max_output);

#endif
