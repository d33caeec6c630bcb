/* A memory cap for an embedded CPython that needs no RLIMIT_AS.
 *
 * An address-space limit would also bound the host process, and a fuzzer
 * built with ASan reserves terabytes of address space. Instead, accounting
 * allocators wrap CPython's RAW, MEM and OBJ domains (PyMem_SetAllocator):
 * every block carries a 16-byte header holding its size, a running total
 * of the bytes CPython holds is kept, and while a window is open an
 * allocation that would take the bytes held above (total at window start +
 * cap) is refused, so CPython raises MemoryError instead of growing.
 *
 * The wrappers change the pointers they hand out, so they must be installed
 * before CPython allocates anything through the domains: after
 * Py_PreInitialize and before Py_InitializeFromConfig (CPython's documented
 * window for a custom allocator). Blocks from a nested domain (pymalloc
 * hands large requests to the RAW domain) are counted once, at the
 * outermost call.
 */
#ifndef BRINE_PYMEM_CAP_H
#define BRINE_PYMEM_CAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Installs the wrappers around the current RAW, MEM and OBJ allocators.
   Once per process (later calls do nothing and return 0); never removed
   (blocks already handed out carry our header). Allocates nothing.
   Returns 0. */
int brine_pymem_cap_install(void);

/* Opens the window: from now on, an allocation that would make the bytes
   held exceed (held now + cap) fails. cap 0 means no limit. */
void brine_pymem_cap_begin(size_t cap);

/* Closes the window; later allocations are never refused. */
void brine_pymem_cap_end(void);

/* What happened in the current or last window. */
typedef struct brine_pymem_stats {
    int64_t held;       /* bytes CPython holds now (all domains, headers excluded) */
    int64_t peak;       /* highest (held - held at window start) during the window */
    uint64_t refused;   /* allocations refused during the window */
} brine_pymem_stats;

brine_pymem_stats brine_pymem_cap_stats(void);

#endif
