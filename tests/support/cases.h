/* Helpers for the unit tests that use tests/data/decode_cases.txt (format:
 * see the top of that file), plus a peak-tracking allocator and an opcode
 * walker. Not the lead's test_support.h: that one stays as it is. */
#ifndef BRINE_CASES_H
#define BRINE_CASES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pkl.h"

/* One case of the file. Strings are NUL-terminated and owned by the set. */
typedef struct dcase {
    char *name;
    char *area;        /* the name up to its first '_' */
    char *desc;
    char *pickle_text; /* as written in the file (escaped) */
    uint8_t *data;     /* the pickle bytes */
    size_t len;
    char *expect;      /* oracle (C unpickler): canonical body without the
                          header line, every line ending in '\n'; NULL when
                          the file has no expectation for the case */
    bool differ;       /* CPython's Python unpickler says something else */
    char *expect_py;
    int line;          /* line of "== name" */
} dcase;

typedef struct dcases {
    dcase *v;
    size_t n;
} dcases;

/* Reads a case file. Returns false with a message in errbuf on any format
   error (the tests fail on it: a case the parser skipped would be a case
   silently counted as passed). */
bool dcases_load(const char *path, dcases *out, char *errbuf, size_t errlen);
void dcases_free(dcases *set);

/* The case file every decoder test reads, loaded once per test group by
   cases_group_setup (a cmocka group setup) and freed by cases_group_teardown.
   When loading failed, g_loaded is false and g_load_error says why: tests
   must fail on that, never skip. */
extern dcases g_cases;
extern bool g_loaded;
extern char g_load_error[512];
int cases_group_setup(void **state);
int cases_group_teardown(void **state);
const dcase *dcases_find(const dcases *set, const char *name);

/* The error class the oracle expects (from "error <class>"), PKL_OK when
   the case loads, PKL_CODE_COUNT for an unknown class name or a case
   without an expectation. */
pkl_code dcase_expected_code(const dcase *c);

/* The escaped form of bytes (\xNN for anything but printable ASCII), for
   failure messages. Caller frees with free(). Long inputs are cut with
   "...". */
char *escape_bytes(const uint8_t *p, size_t n, size_t max_chars);

/* Walks the opcodes of a pickle from the start with the table's argument
   layouts, setting seen[opcode byte] for each opcode reached, until STOP,
   an unknown byte or the end of the input. Returns the number of opcodes
   walked. */
size_t walk_opcodes(const uint8_t *p, size_t n, bool seen[256]);

/* An allocator that records the peak of live bytes and the largest single
   request. It can fail exactly one call (fail_only, 1-based; 0 = none),
   where failing_alc fails every call from fail_at on. */
typedef struct peak_alc {
    pkl_alc alc;
    size_t calls;
    size_t fail_only;
    size_t live, peak, largest;
    size_t live_blocks;
} peak_alc;

void peak_alc_init(peak_alc *a);

/* The body of a canonical text: what follows its first line. */
const char *canon_body(const char *text);

/* Line number (1-based) of the first line where a and b differ, 0 when
   equal. */
size_t first_diff_line(const char *a, const char *b);

#endif
