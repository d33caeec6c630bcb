/* Reader of canonical text v1 (docs/canonical-form.md): turns a document
 * that some implementation printed back into a libpkl value graph, so the
 * comparator can normalize both sides of a comparison (fold.h) and print
 * them again with libpkl's emitter.
 *
 * Strict on purpose: a document is accepted only when it is exactly what
 * libpkl's emitter prints for the graph it describes (checked at the end by
 * printing the graph again), so two accepted texts are equal exactly when
 * their graphs print alike. Anything else is malformed: bad indentation or
 * depth jumps, unknown kinds, non-canonical payloads (quoting, ints, floats),
 * labels that are out of order, unused, on scalars or on empty
 * tuples/frozensets, refs to unknown labels, dicts with an odd child count or
 * equal keys, sets with equal elements, unhashable keys, slots in the wrong
 * place, lines after the root, a missing final newline, non-ASCII bytes.
 *
 * Iterative throughout (a 1,000,000-deep document parses), bounded by
 * pkl_limits: max_input (text size), max_nodes and max_alloc (the graph and
 * all scratch memory), max_output (the check print).
 */
#ifndef BRINE_CANON_READ_H
#define BRINE_CANON_READ_H

#include <stdbool.h>
#include <stddef.h>

#include "pkl.h"

typedef struct brine_canon {
    int level;      /* 0 raw, 1 value (from the header) */
    pkl_code error; /* PKL_OK when the document is a node tree, else its `error <class>` */
    pkl_doc *doc;   /* the graph (NULL for an error document); owned by this struct */
} brine_canon;

/* Parses text[0..len). On success fills *out (release with
   brine_canon_release) and returns true. On failure returns false, *out is
   zeroed, and *err (may be NULL) says why:
     PKL_ERR_BAD_ARGUMENT    malformed or non-canonical document; err->pos is
                             the byte offset of the offending line;
     PKL_ERR_RESOURCE_LIMIT  len > lim->max_input, or the graph or scratch
                             memory went past max_nodes / max_alloc, or the
                             check print past max_output (err->pos 0).
   err->msg is a static explanation. lim NULL means pkl_limits_default(). */
bool brine_canon_read(const char *text, size_t len, const pkl_limits *lim, brine_canon *out,
                      pkl_err *err);

/* Frees the document held by *c (NULL-safe) and zeroes it. */
void brine_canon_release(brine_canon *c);

#endif
