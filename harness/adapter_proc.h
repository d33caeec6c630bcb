/* Process plumbing for the adapter client (harness/adapter.c): spawning a
 * program in its own process group with its stdin/stdout on pipes, waiting
 * with a deadline, killing the group, and writing without SIGPIPE.
 * Internal to brine_adapter; POSIX only.
 */
#ifndef BRINE_ADAPTER_PROC_H
#define BRINE_ADAPTER_PROC_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* Exit code of a reaped process: >= 0 its exit status, < 0 minus the signal
   that killed it, BRINE_PROC_UNKNOWN when it could not be reaped (SIGCHLD
   ignored by the runner, or already reaped elsewhere). */
#define BRINE_PROC_UNKNOWN (-100000)

typedef struct brine_proc {
    pid_t pid;  /* > 0 while running (or not yet reaped) */
    int in_fd;  /* our end of its stdin (non-blocking, close-on-exec), or -1 */
    int out_fd; /* our end of its stdout (non-blocking, close-on-exec), or -1 */
} brine_proc;

/* A full environment: the runner's with each KEY=VALUE of `extra` (NULL-ok)
   replacing or adding to it. Returns a NULL-terminated array owned by the
   caller (release with brine_proc_free_strv), or NULL when out of memory. */
char **brine_proc_build_env(const char *const *extra);

/* A deep copy of a NULL-terminated string vector, owned by the caller
   (release with brine_proc_free_strv), or NULL when out of memory. */
char **brine_proc_copy_strv(const char *const *v);

void brine_proc_free_strv(char **v);

/* Starts argv (PATH search like execvp) with environment envp, in a new
   process group, with the signal mask emptied and SIGPIPE at its default
   action; stdin and stdout on pipes, stderr inherited or /dev/null (quiet).
   Returns 0 and fills *p, or -1 with a message in err (nothing left open). */
int brine_proc_spawn(char *const *argv, char *const *envp, bool quiet, brine_proc *p, char *err,
                     size_t errlen);

/* Waits up to `grace` seconds for the process to exit on its own, without
   reaping it. True when it has exited (or cannot be waited for). */
bool brine_proc_exited(const brine_proc *p, double grace);

/* Closes both pipe ends, kills the process group and the process (SIGKILL),
   reaps it and returns its exit code (see BRINE_PROC_UNKNOWN). No-op
   returning BRINE_PROC_UNKNOWN when nothing runs. */
int brine_proc_finish(brine_proc *p);

/* "exit status 3", "signal 11 (Segmentation fault)", "exit status unknown". */
void brine_proc_describe(int code, char *buf, size_t len);

/* SIGPIPE suppression around writes in the calling thread, without touching
   the process-wide disposition: begin blocks SIGPIPE (unless one is already
   pending, which is then left alone), end consumes a SIGPIPE raised by our
   writes when `got_epipe` and restores the mask. */
typedef struct brine_sigpipe_guard {
    sigset_t old;
    bool active;
} brine_sigpipe_guard;

void brine_sigpipe_begin(brine_sigpipe_guard *g);
void brine_sigpipe_end(brine_sigpipe_guard *g, bool got_epipe);

/* Monotonic clock, seconds. */
double brine_proc_now(void);

#endif
