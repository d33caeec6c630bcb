/* Shared helpers for the cmocka unit tests. */
#ifndef BRINE_TEST_SUPPORT_H
#define BRINE_TEST_SUPPORT_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
/* cmocka needs the four headers above first */
#include <cmocka.h>

#include "pkl.h"

/* An allocator that counts calls and fails every call from `fail_at` on
   (0 = never fail), and tracks live bytes so tests can assert no leak. */
typedef struct failing_alc {
    pkl_alc alc;
    size_t calls;      /* malloc + realloc calls so far */
    size_t fail_at;    /* 1-based call number that starts failing; 0 = never */
    long long live;    /* bytes allocated and not freed */
    size_t live_blocks;
} failing_alc;

void failing_alc_init(failing_alc *f, size_t fail_at);

/* Loads `len` bytes with default options (or `opts`) and returns the
   canonical text, caller frees with free(). *code gets the load's error
   code (PKL_OK when it loaded). */
char *canon_of(const void *data, size_t len, const pkl_load_opts *opts, pkl_code *code);

/* Canonical body (text after the header line) of a pickle given as a C
   string literal with \x escapes; asserts it equals `expected`. */
#define assert_canon(lit, expected)                                                  \
    assert_canon_impl((lit), sizeof(lit) - 1, (expected), __FILE__, __LINE__)
void assert_canon_impl(const char *data, size_t len, const char *expected, const char *file,
                       int line);

/* Asserts that loading the pickle fails with `code`. */
#define assert_load_error(lit, code)                                                 \
    assert_load_error_impl((lit), sizeof(lit) - 1, (code), __FILE__, __LINE__)
void assert_load_error_impl(const char *data, size_t len, pkl_code code, const char *file,
                            int line);

#endif
