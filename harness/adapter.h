/* The runner's side of adapter protocol v1 (docs/adapter-protocol.md): starts
 * an implementation's adapter, feeds it cases and collects one response per
 * case, whatever the adapter does (hangs, dies, floods, greets wrongly).
 *
 * Same behaviour as oracle/brine_oracle/client.py, in C for `brine run`:
 *
 * - Persistent mode: one process answers many cases, with up to `window`
 *   requests outstanding. A timeout or crash while several requests were
 *   outstanding is not pinned on the oldest one at once (an adapter may hold
 *   answers back and write them in batches): the oldest case is re-run alone
 *   on a fresh process, and that solo run's outcome is its verdict.
 * - A timeout kills the adapter's whole process group (it runs in its own
 *   group); a crash (EOF, short frame, exit, signal, a frame above max_frame,
 *   a response that is not a canonical document) is recorded for the case in
 *   flight. Either way a new process is started and the cases behind it are
 *   sent again: no case is lost, none answered twice.
 * - One-shot mode (protocol section 2): one process per case.
 *
 * SIGPIPE: the runner's disposition is never changed. Writes to an adapter
 * run with SIGPIPE blocked in the calling thread; a SIGPIPE they raise is
 * consumed before it is unblocked, so a dead adapter shows up as EPIPE. The
 * adapter itself starts with SIGPIPE at its default action and an empty
 * signal mask, whatever the runner uses.
 *
 * Not thread-safe per adapter; several adapters may be driven from one
 * thread (each has its own pipes, all close-on-exec). Children are reaped
 * with waitpid on their pid only, so the caller's SIGCHLD handling is left
 * alone (with SIGCHLD ignored, exit statuses read as unknown).
 */
#ifndef BRINE_ADAPTER_H
#define BRINE_ADAPTER_H

#include <stdbool.h>
#include <stddef.h>

/* Canonical text is bounded to 1 GiB by both reference emitters; the trace
   rides along. */
#define BRINE_ADAPTER_DEFAULT_MAX_FRAME (((size_t)1 << 30) + ((size_t)1 << 28))
#define BRINE_ADAPTER_DEFAULT_TIMEOUT 10.0
#define BRINE_ADAPTER_DEFAULT_START_TIMEOUT 60.0
#define BRINE_ADAPTER_DEFAULT_WINDOW 32
#define BRINE_ADAPTER_DEFAULT_START_FAILURES 3
/* A hello frame above this is a bad hello. */
#define BRINE_ADAPTER_MAX_HELLO ((size_t)1 << 16)

typedef enum brine_status { BRINE_OK, BRINE_TIMEOUT, BRINE_CRASH } brine_status;

typedef struct brine_response {
    brine_status status;
    char *text;       /* canonical document, NUL-terminated; NULL unless OK */
    size_t text_len;
    char *trace;      /* the lines after "--- trace\n", NUL-terminated ("" when
                         the section is empty); NULL when absent or not OK */
    size_t trace_len;
    char detail[200]; /* why, for TIMEOUT and CRASH; "" for OK */
    double seconds;   /* wall time from when the adapter could start on the case
                         (the previous answer arrived) to its answer or verdict */
} brine_response;

/* Every field may be left zero for its default. */
typedef struct brine_adapter_opts {
    const char *const *argv; /* program + args, NULL-terminated; the program is
                                searched in PATH like execvp */
    const char *const *env;  /* KEY=VALUE entries set in the adapter's environment
                                on top of the runner's, NULL-terminated; or NULL */
    bool one_shot;           /* one process per case (protocol section 2) */
    const char *name;        /* one-shot: the implementation name ([a-z0-9._-]+) */
    const char *level;       /* one-shot: "raw" (default) or "value" */
    double timeout;          /* seconds per case, wall clock; 0: 10 s; < 0: none */
    double start_timeout;    /* seconds to wait for the hello; 0: 60 s; < 0: none */
    size_t max_frame;        /* bound on a response (frame or one-shot output);
                                0: BRINE_ADAPTER_DEFAULT_MAX_FRAME */
    size_t window;           /* max requests outstanding; 0: 32; 1: synchronous */
    int max_start_failures;  /* consecutive failed (re)starts before giving up; 0: 3 */
    bool quiet;              /* adapter's stderr to /dev/null instead of the
                                runner's stderr */
} brine_adapter_opts;

typedef struct brine_adapter brine_adapter;

/* True when s[0..n) is a valid implementation name: [a-z0-9._-]+. */
bool brine_adapter_valid_name(const char *s, size_t n);

/* Starts the adapter and reads its hello (one-shot: checks opts->name and
   starts nothing). The hello must begin with the line "brine-adapter 1" and
   carry a `name` ([a-z0-9._-]+) and a `level` (raw|value); unknown keys are
   ignored. opts and everything it points to are copied.
   Returns a new adapter owned by the caller (release with
   brine_adapter_close), or NULL with a message in err (when errlen > 0). */
brine_adapter *brine_adapter_start(const brine_adapter_opts *opts, char *err, size_t errlen);

/* Hello fields, owned by the adapter, valid until brine_adapter_close. A
   restarted adapter must greet with the same name and level (else the
   restart counts as failed). */
const char *brine_adapter_name(const brine_adapter *a);
const char *brine_adapter_version(const brine_adapter *a); /* "" when absent */
const char *brine_adapter_level(const brine_adapter *a);   /* "raw" or "value" */
const char *brine_adapter_features(const brine_adapter *a); /* space-separated */
bool brine_adapter_has_feature(const brine_adapter *a, const char *feature);
/* The hello's optional `highest-protocol` (0..9): the newest pickle protocol
   the implementation supports; -1 when the hello does not say (one-shot:
   always -1). */
int brine_adapter_highest_protocol(const brine_adapter *a);

typedef struct brine_case {
    const unsigned char *data;
    size_t len;
} brine_case;

typedef void (*brine_done_fn)(void *ctx, size_t i, const brine_response *r);

/* Runs n cases in order; calls done(ctx, i, &resp) exactly once per case, in
   order i = 0..n-1. The cases are borrowed for the duration of the call. The
   response and its buffers are owned by the adapter and valid only during the
   callback. The callback must not call back into this adapter.
   A case longer than a frame can carry (4 GiB - 1) is answered CRASH without
   being sent (persistent mode).
   Returns 0, or -1 when the adapter could not be (re)started
   max_start_failures times in a row (every remaining case has then been
   answered CRASH with that detail first). */
int brine_adapter_run(brine_adapter *a, const brine_case *cases, size_t n, brine_done_fn done,
                      void *ctx);

/* Counters since start. */
typedef struct brine_adapter_stats {
    size_t starts;        /* processes started (one-shot: one per case) */
    size_t restarts;      /* persistent: processes started after a failure */
    size_t timeouts;      /* cases answered TIMEOUT */
    size_t crashes;       /* cases answered CRASH */
    size_t confirmations; /* failures re-run alone before being pinned on a case */
    size_t peak_buffer;   /* largest response buffer held, bytes (bounded memory) */
} brine_adapter_stats;

void brine_adapter_get_stats(const brine_adapter *a, brine_adapter_stats *out);

/* Closes the adapter's stdin (and stdout), waits up to 2 s for it to exit,
   kills its process group (stragglers included), reaps it and frees
   everything. NULL-safe. Returns the adapter's exit status (>= 0), 128 +
   signal number when killed by a signal, or -1 when no process was running
   or the status is unknown. */
int brine_adapter_close(brine_adapter *a);

#endif
