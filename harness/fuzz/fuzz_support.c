/* brine_fuzz_fail and the input it reports (fuzz_target.h). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "fuzz_explain.h"
#include "fuzz_target.h"

#define SHOW_BYTES 96 /* enough to read most minimised reproducers in full */

static const uint8_t *g_data;
static size_t g_len;

void brine_fuzz_set_input(const uint8_t *data, size_t len) {
    g_data = data;
    g_len = len;
}

/* "fail." and the message's first words, letters only (numbers and bytes
   in a message vary between inputs that fail the same way). */
static void fail_signature(const char *msg, char *sig, size_t cap) {
    size_t k = (size_t)snprintf(sig, cap, "fail.");
    for (const char *s = msg; *s && k + 1 < cap && k < 48; s++) {
        char c = *s;
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
            sig[k++] = c;
        else if (c == ' ' && sig[k - 1] != '-' && sig[k - 1] != '.')
            sig[k++] = '-';
        else if (c == ':')
            break;
    }
    while (k > 5 && sig[k - 1] == '-')
        k--;
    sig[k] = '\0';
}

_Noreturn void brine_fuzz_fail(const char *fmt, ...) {
    va_list ap;
    char msg[512];
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "brine fuzz: invariant violated: %s\n", msg);
    if (g_data && brine_explain_enabled()) {
        /* brine fuzz asks what the input is: a failed invariant, named */
        char sig[64];
        fail_signature(msg, sig, sizeof sig);
        brine_explain_write(g_data, g_len, "fail", sig, msg, NULL, 0, NULL, 0);
    }
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
