/* brine_fuzz_fail and the input it reports (fuzz_target.h). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "fuzz_target.h"

#define SHOW_BYTES 96 /* enough to read most minimised reproducers in full */

static const uint8_t *g_data;
static size_t g_len;

void brine_fuzz_set_input(const uint8_t *data, size_t len) {
    g_data = data;
    g_len = len;
}

_Noreturn void brine_fuzz_fail(const char *fmt, ...) {
    va_list ap;
    fputs("brine fuzz: invariant violated: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    if (g_data) {
        /* Python bytes-literal escapes, so the line pastes into a REPL or a test */
        fprintf(stderr, "brine fuzz: input (%zu bytes): b'", g_len);
        size_t n = g_len < SHOW_BYTES ? g_len : SHOW_BYTES;
        for (size_t i = 0; i < n; i++) {
            uint8_t c = g_data[i];
            if (c == '\\' || c == '\'')
                fprintf(stderr, "\\%c", c);
            else if (c >= 0x20 && c < 0x7f)
                fputc(c, stderr);
            else if (c == '\n')
                fputs("\\n", stderr);
            else
                fprintf(stderr, "\\x%02x", c);
        }
        fprintf(stderr, "'%s\n", n < g_len ? "..." : "");
    }
    fflush(stderr);
    abort();
}
