/* Explain mode of the fuzz targets: what an input is, in a file that
 * `brine fuzz` reads (instead of a crash it would have to interpret).
 *
 * When the environment variable BRINE_EXPLAIN names a file, a target
 * appends one record per input it runs, and the differential target does
 * not abort on a divergence. A record:
 *
 *     == <hash> <verdict> <signature>
 *     explanation <one line>
 *     -- text
 *     <canonical document of the oracle side, when there is one>
 *     -- trace
 *     <its trace lines>
 *     -- end
 *
 * <hash> is brine_explain_hash() of the input (16 lowercase hex digits);
 * <verdict> is agree | no-verdict | quirk | diverge | fail; <signature>
 * names the finding ([A-Za-z0-9_.-]+; harness/compare.h for divergences,
 * `fail.<words>` for a violated invariant). A record is written with one
 * write(2) in append mode, so a crash after it leaves it whole.
 */
#ifndef BRINE_FUZZ_EXPLAIN_H
#define BRINE_FUZZ_EXPLAIN_H

#include <stddef.h>
#include <stdint.h>

#define BRINE_EXPLAIN_ENV "BRINE_EXPLAIN"

/* FNV-1a 64 of the input bytes. */
uint64_t brine_explain_hash(const uint8_t *data, size_t len);

/* True when explain mode is on (BRINE_EXPLAIN is set and not empty). */
int brine_explain_enabled(void);

/* Appends a record for one input (see above); text/trace may be NULL.
   Signature characters outside [A-Za-z0-9_.-] are written as '-', and
   explanation newlines as spaces. Does nothing unless explain mode is on. */
void brine_explain_write(const uint8_t *data, size_t len, const char *verdict,
                         const char *signature, const char *explanation, const char *text,
                         size_t text_len, const char *trace, size_t trace_len);

/* What one input is, as read back. Every string is malloc'd and owned by
   the struct (release with brine_explain_free); NULL when absent. */
typedef struct brine_explained {
    char *verdict;     /* agree | no-verdict | quirk | diverge | fail | crash */
    char *signature;
    char *explanation;
    char *text, *trace;
} brine_explained;

/* Reads the records of `report` for files[0..n) (matched by the hash of
   each file's bytes), and, for a file without a record, its `FAIL <file>:
   <why>` line in the replay driver's `log` (verdict crash, signature
   `crash.<why>`); a file with neither is `agree`. Fills out[i] for each
   file. Returns 0, or -1 when a file cannot be read (out is then freed). */
int brine_explain_read(const char *report, const char *log, char *const *files, size_t n,
                       brine_explained *out);

void brine_explain_free(brine_explained *e);

#endif
