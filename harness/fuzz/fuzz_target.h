/* The contract between a brine fuzz target and the three drivers that run it.
 *
 * A target is one .c file that defines the three functions below and nothing
 * engine-specific. The same object is linked into:
 *   - driver_libfuzzer.c  (clang -fsanitize=fuzzer: LLVMFuzzerInitialize /
 *                          LLVMFuzzerTestOneInput; cleanup runs at exit),
 *   - driver_afl.c        (AFL++ persistent mode, shared-memory test cases),
 *   - driver_replay.c     (plain main: files, directories, --fork, --smoke).
 * so a crash found by any engine replays byte for byte in the others.
 *
 * A target reports a violated invariant through brine_fuzz_fail(), which
 * prints a readable message and aborts: every engine treats abort() as a
 * crash and keeps the input.
 */
#ifndef BRINE_FUZZ_TARGET_H
#define BRINE_FUZZ_TARGET_H

#include <stddef.h>
#include <stdint.h>

#if defined(__GNUC__) || defined(__clang__)
#define BRINE_FUZZ_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define BRINE_FUZZ_PRINTF(a, b)
#endif

/* Called once before any input. May consume target-specific arguments from
   argc and argv (none do yet). Returns 0, or non-zero when the target cannot
   run here (the driver then exits with that status after the message the
   target printed). */
int brine_fuzz_init(int *argc, char ***argv);

/* Runs one input. Returns 0 (libFuzzer reserves other values). Never
   returns on a violated invariant: brine_fuzz_fail aborts. Must not keep
   state between inputs that changes what a later input does. */
int brine_fuzz_one(const uint8_t *data, size_t len);

/* Releases what brine_fuzz_init acquired. */
void brine_fuzz_cleanup(void);

/* Prints "brine fuzz: invariant violated: <message>" and the input's size
   and first bytes (set by the driver through brine_fuzz_set_input) to
   stderr, then aborts. */
_Noreturn void brine_fuzz_fail(const char *fmt, ...) BRINE_FUZZ_PRINTF(1, 2);

/* Tells brine_fuzz_fail which input is running (drivers call this; the
   pointer is only borrowed until the next call). */
void brine_fuzz_set_input(const uint8_t *data, size_t len);

#endif
