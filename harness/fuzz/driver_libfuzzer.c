/* libFuzzer driver: links a fuzz target (fuzz_target.h) into a binary built
 * with clang -fsanitize=fuzzer. libFuzzer has no cleanup hook, so the
 * target's cleanup runs at exit. */
#include <stdlib.h>

#include "fuzz_target.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void cleanup(void) { brine_fuzz_cleanup(); }

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    int rc = brine_fuzz_init(argc, argv);
    if (rc != 0)
        exit(rc);
    atexit(cleanup);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    brine_fuzz_set_input(data, size);
    return brine_fuzz_one(data, size);
}
