/* Re-inserting every dict key and set element of a libpkl document, after
 * something outside the decoder built or changed the graph: the canonical
 * text reader (which fills maps only once every node exists) and the
 * value-level folds (which change what some keys are).
 *
 * Uses libpkl's private value model (pkl/value.h).
 */
#ifndef BRINE_CANON_MAPS_H
#define BRINE_CANON_MAPS_H

#include <stdbool.h>

#include "value.h"

typedef enum brine_maps_mode {
    BRINE_MAPS_STRICT, /* two equal keys/elements in one map are an error */
    BRINE_MAPS_MERGE   /* equal keys merge as Python does: the first key keeps its
                          place and takes the last value; a set keeps its first element */
} brine_maps_mode;

/* Rebuilds every DICT, SET and FROZENSET of `doc` by inserting its current
   entries again, in order, into an empty table (cached hashes are dropped
   first, so keys whose content changed hash anew). Frozensets are rebuilt
   before anything that hashes them: children first along tuple/frozenset
   edges.
   Returns PKL_OK, or:
     PKL_ERR_TYPE_ERROR      an unhashable key or element (*bad = the map);
     PKL_ERR_BAD_ARGUMENT    STRICT and two equal entries (*bad = the map), or
                             a cycle made of tuples and frozensets only, which
                             no load builds and nothing can hash (*bad = a node on it);
     PKL_ERR_RESOURCE_LIMIT  the document's max_alloc or allocator said no.
   *why (may be NULL) gets a static explanation. Scratch memory is charged to
   the document and released before returning; on failure the maps may be
   half rebuilt (the document stays freeable, nothing more). */
pkl_code brine_maps_rebuild(pkl_doc *doc, brine_maps_mode mode, const pkl_val **bad,
                            const char **why);

#endif
