/* Verdicts: what one implementation's answer to one case means, judged
 * against the reference oracle's recorded answers.
 *
 * Both sides are canonical documents at the same level (the runner
 * normalizes them first) plus, where the implementation has the `trace`
 * feature, safety traces (docs/adapter-protocol.md). Trace lines are
 * compared without their informational ` as "m" "n"` clause.
 */
#ifndef BRINE_VERDICT_H
#define BRINE_VERDICT_H

#include <stdbool.h>
#include <stddef.h>

/* Ordered from best to worst: a summary sorts by it. */
typedef enum brine_verdict {
    BRINE_V_PASS,            /* the oracle's answer, exactly */
    BRINE_V_ACCEPTABLE,      /* one of the answers of an implementation-defined case */
    BRINE_V_ORACLE_LIMIT,    /* the oracle only hit a resource limit: no verdict possible */
    BRINE_V_OUT_OF_SCOPE,    /* the case's protocol is above the one the implementation says it
                                supports (hello `highest-protocol`), and it fails it */
    BRINE_V_REFUSED,         /* `error forbidden` (a policy refused a global) where the oracle
                                does not: what a restricted unpickler is for */
    BRINE_V_TRACE_MISMATCH,  /* same document, the trace differs (nothing missed) */
    BRINE_V_MISMATCH,        /* both loaded (or both rejected) but differently */
    BRINE_V_ACCEPT_VS_REJECT,/* one loaded, the other rejected */
    BRINE_V_SAFETY_MISMATCH, /* missed a global or a call the oracle performs: the worst */
    BRINE_V_TIMEOUT,         /* no answer in time */
    BRINE_V_CRASH,           /* died, or answered outside the protocol */
    BRINE_V_COUNT
} brine_verdict;

/* "pass", "acceptable", "oracle-limit", "out-of-scope", "refused",
   "trace-mismatch", "mismatch", "accept-vs-reject", "safety-mismatch",
   "timeout", "crash". */
const char *brine_verdict_name(brine_verdict v);

/* True for the verdicts that are no failure of the implementation (pass,
   acceptable, oracle-limit, out-of-scope). `refused` is a failure unless the
   run judges a policy (the caller decides). */
bool brine_verdict_ok(brine_verdict v);

/* One answer: a canonical document (header line included) and its trace. */
typedef struct brine_text {
    const char *text;
    size_t len;
    const char *trace; /* trace lines, NULL when the side has no trace */
    size_t trace_len;
} brine_text;

typedef struct brine_expectation {
    const brine_text *answers; /* answers[0] is the primary oracle's */
    size_t n;                  /* >= 1 */
    bool acceptable;           /* any answer is right (implementation-defined case) */
    bool limit_ok;             /* `error resource-limit` is right too (the oracle hit a memory limit) */
    bool oracle_limit;         /* the oracle's only answer is a limit artefact: no verdict */
} brine_expectation;

/* Judges `got` (status ok; crash and timeout are the runner's). Writes a
   one-line reason into detail (dlen bytes, may be 0) for every verdict but
   pass, and the index of the answer it compared against into *which (may be
   NULL). */
brine_verdict brine_judge(const brine_expectation *e, const brine_text *got, char *detail,
                          size_t dlen, size_t *which);

/* True when a document is an error document ("error <class>" after the
   header); cls and cls_len (may be NULL) receive the class. */
bool brine_doc_is_error(const char *text, size_t len, const char **cls, size_t *cls_len);

#endif
