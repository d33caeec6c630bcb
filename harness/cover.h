/* Opcode x protocol coverage of a set of pickles, from the one opcode table.
 *
 * A cell (opcode, protocol) counts the cases about that protocol that
 * execute the opcode on their way to STOP. Cases the reference oracle loads
 * exercise every opcode they hold ("valid" counts); the others are counted
 * apart ("fault" counts), so that an opcode reached only by broken pickles
 * shows as a hole.
 *
 * Four opcodes can never load under the stock configuration every oracle
 * and adapter runs with (pickle.loads(data): an empty extension registry,
 * no out-of-band buffers): EXT1, EXT2, EXT4 and NEXT_BUFFER. Their stock
 * behaviour is the error only they raise (unknown-extension, no-buffers);
 * a case whose oracle answer is that error exercised the first such opcode
 * of its stream ("stock" counts), and that fills their cell. Loading them
 * needs a registry or buffers passed with the case, which adapter protocol
 * v1 cannot carry.
 */
#ifndef BRINE_COVER_H
#define BRINE_COVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "pkl.h"

#define BRINE_COVER_PROTOCOLS (PKL_HIGHEST_PROTOCOL + 1)

typedef struct brine_coverage {
    uint32_t valid[256][BRINE_COVER_PROTOCOLS];
    uint32_t stock[256][BRINE_COVER_PROTOCOLS];
    uint32_t fault[256][BRINE_COVER_PROTOCOLS];
    size_t cases, loaded;
} brine_coverage;

/* Calls fn for each opcode of data[0..len) in stream order, up to and
   including STOP, stopping early at a byte that is no opcode or an argument
   that runs past the end (arguments are skipped by their layout in the
   table, not validated). The opcode occupies data[pos..end). *proto (may be
   NULL) receives the argument of the first PROTO, or -1. Returns the number
   of opcodes seen. */
typedef void (*brine_op_fn)(void *ctx, const pkl_opinfo *op, size_t pos, size_t end);
size_t brine_scan_ops(const uint8_t *data, size_t len, brine_op_fn fn, void *ctx, int *proto);

/* Adds one case. protocol < 0: the first PROTO's argument, else 0 (a
   protocol above 5 is not counted). error: NULL when the reference oracle
   loads the case, else the class of its error document ("truncated" ...). */
void brine_cover_add(brine_coverage *c, const uint8_t *data, size_t len, int protocol,
                     const char *error);

/* Cells (opcode, p) with p at or above the opcode's protocol and neither a
   loading case nor (the four opcodes above) a stock-error case. Writes one
   line per hole to out (may be NULL); returns the count. */
size_t brine_cover_holes(const brine_coverage *c, FILE *out);

/* The table: one row per opcode in table order, one column per protocol;
   a cell is the number of loading cases, "Ns" for N stock-error cases of
   the four opcodes above, "-" where the opcode does not exist yet, "0!" for
   a hole. markdown: a Markdown table instead of text. */
void brine_cover_print(const brine_coverage *c, FILE *out, bool markdown);

#endif
