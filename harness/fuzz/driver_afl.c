/* AFL++ driver: persistent mode with shared-memory test cases.
 *
 * Built with afl-clang-fast / afl-clang-lto, which define the __AFL_* macros.
 * Outside afl-fuzz the same binary reads one input from stdin, so a saved
 * crash replays with `./fuzz_x_afl < crash`.
 *
 * The test-case buffer is copied before the target sees it: AFL++ hands the
 * same shared buffer to every iteration, and a copy of the exact length lets
 * ASan see reads past the end of the input.
 */
#define _POSIX_C_SOURCE 200809L /* read(), which __AFL_FUZZ_TESTCASE_LEN uses outside afl-fuzz */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz_target.h"

/* AFL++'s macros use GNU statement expressions and leave a stray ';' */
#pragma clang diagnostic ignored "-Wpedantic"

#ifndef __AFL_FUZZ_TESTCASE_LEN
#error "driver_afl.c must be built with afl-clang-fast or afl-clang-lto"
#endif

__AFL_FUZZ_INIT();

/* Iterations before AFL++ restarts the process: bounds the cost of any
   state a target might leak between inputs. */
#define PERSIST_ITERATIONS 10000

int main(int argc, char **argv) {
    int rc = brine_fuzz_init(&argc, &argv);
    if (rc != 0)
        return rc;
#ifdef __AFL_HAVE_MANUAL_CONTROL
    __AFL_INIT();
#endif
    unsigned char *shared = __AFL_FUZZ_TESTCASE_BUF;
    while (__AFL_LOOP(PERSIST_ITERATIONS)) {
        size_t len = (size_t)__AFL_FUZZ_TESTCASE_LEN;
        uint8_t *copy = malloc(len ? len : 1);
        if (!copy)
            abort();
        memcpy(copy, shared, len);
        brine_fuzz_set_input(copy, len);
        brine_fuzz_one(copy, len);
        free(copy);
    }
    brine_fuzz_cleanup();
    return 0;
}
