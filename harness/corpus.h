/* The cases a run goes through: a brine corpus (docs/corpus-format.md:
 * manifests with the oracles' recorded answers) or a plain folder of
 * pickle files (no expectations: the runner asks the live oracle).
 */
#ifndef BRINE_CORPUS_H
#define BRINE_CORPUS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "verdict.h"

typedef struct brine_case_rec {
    char *group;        /* manifest group, or "" for a plain folder */
    char *id;           /* case id (plain folder: path relative to the folder) */
    char *path;         /* the file */
    char *description;  /* "" when none */
    char *result;       /* "valid", "invalid", "acceptable"; "" until known */
    int protocol;       /* the manifest's protocol, -1 when unknown */
    uint8_t *data;      /* the bytes */
    size_t len;
    /* expectation (answers[0] = the primary oracle's); n == 0: not known yet */
    brine_text *answers;
    size_t nanswers;
    bool acceptable, limit_ok, oracle_limit;
} brine_case_rec;

typedef struct brine_corpus {
    brine_case_rec *cases;
    size_t n;
    bool manifest;      /* true: a corpus with manifests */
    char *primary;      /* the manifests' primary oracle ("" for a plain folder) */
} brine_corpus;

/* Opens dir: a corpus (dir/manifest/ holds JSON manifests) with the given groups
   (ngroups == 0: every group), or else every regular file below dir
   (recursively, sorted by path) except hidden files and *.md notes.
   Fills *out, which owns everything it points to (release with
   brine_corpus_free). Returns 0, or -1 with a message in
   err (errlen bytes). */
int brine_corpus_open(const char *dir, const char *const *groups, size_t ngroups,
                      brine_corpus *out, char *err, size_t errlen);

/* Sets a case's expectation from oracle answers (copied: the case owns the
   copies); for plain folders. Returns 0 or -1 when out of memory. */
int brine_case_set_answers(brine_case_rec *c, const brine_text *answers, size_t n);

void brine_corpus_free(brine_corpus *c);

#endif
