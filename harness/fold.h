/* Value-level folds of canonical text (docs/canonical-form.md section 6):
 * what turns a stubbing implementation's graph (`call` of
 * `__builtin__.set` ...) into the graph an implementation that builds real
 * built-ins prints (`set`), so the two compare equal. The comparator applies
 * them to both sides of a comparison; they are idempotent.
 */
#ifndef BRINE_FOLD_H
#define BRINE_FOLD_H

#include <stddef.h>

#include "pkl.h"

/* Applies the folds to `doc` in place: py2->py3 global names (merging
   globals that end up with one name), then bottom-up the built-in calls,
   `_codecs.encode(str, "latin1")`, `copyreg._reconstructor(...)` and the
   protocol 2-3 `functools.partial(cls.__new__, ...)()` (both become `new`),
   and no-op `.build`s on `new`; then rebuilds every dict/set table (folding
   may make keys equal, which merge as Python merges them). Folded nodes keep
   their identity.
   Returns PKL_OK, or fills *err (may be NULL) and returns:
     PKL_ERR_RESOURCE_LIMIT  the document's max_alloc/max_nodes or allocator said no;
     PKL_ERR_BAD_ARGUMENT    the graph has a cycle made only of tuples and
                             frozensets (no load builds one).
   On failure the document is freeable but its content is unspecified.
   After folding, the document's table of interned globals no longer
   describes its globals: print or inspect the document, do not build on it
   with pkl_global_intern. */
pkl_code brine_fold(pkl_doc *doc, pkl_err *err);

/* Text of `text` at `level` (0 raw: parsed and re-emitted unchanged; 1 value:
   folded). Returns a NUL-terminated string allocated with libc malloc, owned
   by the caller (free()), with its length in *out_len (may be NULL); or
   NULL with *err (may be NULL): what brine_canon_read reports for a
   malformed text, PKL_ERR_BAD_ARGUMENT for level 0 asked of a value-level
   document (a fold cannot be undone) or a level other than 0 and 1, or what
   brine_fold reports. An `error <class>` document is returned with only the
   header changed. Limits: pkl_limits_default(). */
char *brine_canon_normalize(const char *text, size_t len, int level, size_t *out_len,
                            pkl_err *err);

/* Same as brine_canon_normalize under explicit limits (NULL: defaults). */
char *brine_canon_normalize_lim(const char *text, size_t len, int level, const pkl_limits *lim,
                                size_t *out_len, pkl_err *err);

#endif
