/* libpkl's answer to one case, exactly as `brine serve` frames it: the
 * canonical document and the safety trace (docs/adapter-protocol.md).
 *
 * Shared by `brine serve` (libpkl as an adapter), `brine run` (libpkl in
 * process) and the fuzz targets, so that all three answer byte for byte
 * alike.
 */
#ifndef BRINE_PKL_ANSWER_H
#define BRINE_PKL_ANSWER_H

#include <stddef.h>

#include "pkl.h"

typedef struct brine_pkl_answer {
    char *text;       /* canonical document, NUL-terminated */
    size_t text_len;
    char *trace;      /* trace lines (no "--- trace" marker), NUL-terminated, "" when empty */
    size_t trace_len;
    pkl_err err;      /* the load's error (code PKL_OK when it loaded) */
} brine_pkl_answer;

/* Loads data[0..len) with libpkl under `lim` (NULL: defaults), tracing every
   event. When the text or the trace does not fit max_output (the trace is
   bounded by the same number), or memory runs out, the answer is
   `error resource-limit` with an empty trace, as the protocol asks.
   Fills *out, whose buffers are allocated with libc malloc and owned by the
   caller (release with brine_pkl_answer_free). Returns 0, or -1 when not
   even the error document could be allocated (then *out holds nothing). */
int brine_pkl_answer_load(const void *data, size_t len, const pkl_limits *lim,
                          brine_pkl_answer *out);

/* The answer `error <code>` with an empty trace (for inputs refused before
   loading, e.g. over max_input). Same ownership and return as above. */
int brine_pkl_answer_error(pkl_code code, brine_pkl_answer *out);

/* Frees the buffers of *a (NULL-safe) and zeroes it. */
void brine_pkl_answer_free(brine_pkl_answer *a);

#endif
