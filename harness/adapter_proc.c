/* Process plumbing for the adapter client: see adapter_proc.h.
 *
 * posix_spawnp rather than fork+exec: it reports a failed exec as an error
 * (glibc >= 2.24) and does not copy the runner's page tables, which matters
 * in one-shot mode where every case is a new process.
 */
#define _POSIX_C_SOURCE 200809L

#include "adapter_proc.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

double brine_proc_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/*------------------------------------------------------------------------------
 * String vectors
 *----------------------------------------------------------------------------*/

void brine_proc_free_strv(char **v) {
    if (!v)
        return;
    for (char **p = v; *p; p++)
        free(*p);
    free(v);
}

static char *dup_str(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}

char **brine_proc_copy_strv(const char *const *v) {
    size_t n = 0;
    while (v && v[n])
        n++;
    char **out = calloc(n + 1, sizeof *out);
    if (!out)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        if (!(out[i] = dup_str(v[i]))) {
            brine_proc_free_strv(out);
            return NULL;
        }
    }
    return out;
}

/* True when `entry` (KEY=VALUE) sets a key that one of `extra` sets too. */
static bool overridden(const char *entry, const char *const *extra) {
    const char *eq = strchr(entry, '=');
    size_t klen = eq ? (size_t)(eq - entry) : strlen(entry);
    for (size_t i = 0; extra && extra[i]; i++) {
        const char *xeq = strchr(extra[i], '=');
        size_t xlen = xeq ? (size_t)(xeq - extra[i]) : strlen(extra[i]);
        if (xlen == klen && memcmp(entry, extra[i], klen) == 0)
            return true;
    }
    return false;
}

char **brine_proc_build_env(const char *const *extra) {
    size_t n = 0, m = 0;
    while (environ && environ[n])
        n++;
    while (extra && extra[m])
        m++;
    char **out = calloc(n + m + 1, sizeof *out);
    if (!out)
        return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (overridden(environ[i], extra))
            continue;
        if (!(out[k++] = dup_str(environ[i])))
            goto oom;
    }
    for (size_t i = 0; i < m; i++) {
        /* a later entry for the same key wins */
        if (overridden(extra[i], extra + i + 1))
            continue;
        if (!(out[k++] = dup_str(extra[i])))
            goto oom;
    }
    return out;
oom:
    brine_proc_free_strv(out);
    return NULL;
}

/*------------------------------------------------------------------------------
 * Spawning
 *----------------------------------------------------------------------------*/

/* Moves fd above 2 (so that dup2 onto 0/1/2 in the child never meets an fd
   equal to its target, which would keep close-on-exec set) and marks it
   close-on-exec, so adapters started later never inherit another adapter's
   pipes (an inherited stdin write end would keep that adapter from seeing
   EOF). */
static int fix_fd(int fd) {
    if (fd < 3) {
        int nfd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
        int e = errno;
        close(fd);
        errno = e;
        return nfd;
    }
    if (fcntl(fd, F_SETFD, FD_CLOEXEC) < 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

/* On failure nothing stays open and both fds are -1. */
static int make_pipe(int fds[2]) {
    int raw[2];
    fds[0] = fds[1] = -1;
    if (pipe(raw) < 0)
        return -1;
    int r = fix_fd(raw[0]);
    if (r < 0) {
        close(raw[1]);
        return -1;
    }
    int w = fix_fd(raw[1]);
    if (w < 0) {
        close(r);
        return -1;
    }
    fds[0] = r;
    fds[1] = w;
    return 0;
}

static void close_fd(int *fd) {
    if (*fd >= 0) {
        close(*fd);
        *fd = -1;
    }
}

static int set_nonblock(int fd) {
    int fl = fcntl(fd, F_GETFL);
    return fl < 0 ? -1 : fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

int brine_proc_spawn(char *const *argv, char *const *envp, bool quiet, brine_proc *p, char *err,
                     size_t errlen) {
    int in[2] = {-1, -1}, out[2] = {-1, -1};
    p->pid = -1;
    p->in_fd = p->out_fd = -1;
    if (make_pipe(in) < 0 || make_pipe(out) < 0) {
        snprintf(err, errlen, "cannot create pipes: %s", strerror(errno));
        close_fd(&in[0]);
        close_fd(&in[1]);
        return -1;
    }
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    int rc = posix_spawn_file_actions_init(&fa);
    if (rc == 0) {
        rc = posix_spawnattr_init(&attr);
        if (rc != 0)
            posix_spawn_file_actions_destroy(&fa);
    }
    if (rc != 0) {
        snprintf(err, errlen, "cannot set up posix_spawn: %s", strerror(rc));
        close_fd(&in[0]);
        close_fd(&in[1]);
        close_fd(&out[0]);
        close_fd(&out[1]);
        return -1;
    }
    sigset_t none, dfl;
    sigemptyset(&none);
    sigemptyset(&dfl);
    sigaddset(&dfl, SIGPIPE);
    if (!rc)
        rc = posix_spawn_file_actions_adddup2(&fa, in[0], STDIN_FILENO);
    if (!rc)
        rc = posix_spawn_file_actions_adddup2(&fa, out[1], STDOUT_FILENO);
    if (!rc && quiet)
        rc = posix_spawn_file_actions_addopen(&fa, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
    /* own process group: a timeout kills the adapter and everything it started */
    if (!rc)
        rc = posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK |
                                                 POSIX_SPAWN_SETSIGDEF);
    if (!rc)
        rc = posix_spawnattr_setpgroup(&attr, 0);
    if (!rc)
        rc = posix_spawnattr_setsigmask(&attr, &none);
    if (!rc)
        rc = posix_spawnattr_setsigdefault(&attr, &dfl);
    pid_t pid = -1;
    if (!rc)
        rc = posix_spawnp(&pid, argv[0], &fa, &attr, argv, envp);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    close_fd(&in[0]);
    close_fd(&out[1]);
    if (rc != 0) {
        snprintf(err, errlen, "cannot start %s: %s", argv[0], strerror(rc));
        close_fd(&in[1]);
        close_fd(&out[0]);
        return -1;
    }
    p->pid = pid;
    p->in_fd = in[1];
    p->out_fd = out[0];
    if (set_nonblock(p->in_fd) < 0 || set_nonblock(p->out_fd) < 0) {
        snprintf(err, errlen, "cannot make the pipes non-blocking: %s", strerror(errno));
        brine_proc_finish(p);
        return -1;
    }
    return 0;
}

/*------------------------------------------------------------------------------
 * Waiting and killing
 *----------------------------------------------------------------------------*/

static void sleep_s(double s) {
    struct timespec ts;
    ts.tv_sec = (time_t)s;
    ts.tv_nsec = (long)((s - (double)ts.tv_sec) * 1e9);
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
    }
}

bool brine_proc_exited(const brine_proc *p, double grace) {
    if (p->pid <= 0)
        return true;
    double end = brine_proc_now() + grace;
    double nap = 50e-6; /* exits usually follow EOF closely: start with short naps */
    for (;;) {
        siginfo_t si;
        memset(&si, 0, sizeof si);
        /* WNOWAIT: the zombie keeps the pid (and so the process group id)
           from being reused until the group has been killed */
        int r = waitid(P_PID, (id_t)p->pid, &si, WEXITED | WNOHANG | WNOWAIT);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 || si.si_pid == p->pid)
            return true;
        double left = end - brine_proc_now();
        if (left <= 0)
            return false;
        sleep_s(nap < left ? nap : left);
        if (nap < 10e-3)
            nap *= 2;
    }
}

int brine_proc_finish(brine_proc *p) {
    close_fd(&p->in_fd);
    close_fd(&p->out_fd);
    if (p->pid <= 0)
        return BRINE_PROC_UNKNOWN;
    /* the group first (stragglers the adapter started), then the adapter
       itself in case it moved to another group */
    kill(-p->pid, SIGKILL);
    kill(p->pid, SIGKILL);
    int st = 0;
    pid_t r;
    while ((r = waitpid(p->pid, &st, 0)) < 0 && errno == EINTR) {
    }
    p->pid = -1;
    if (r < 0)
        return BRINE_PROC_UNKNOWN;
    if (WIFEXITED(st))
        return WEXITSTATUS(st);
    if (WIFSIGNALED(st))
        return -WTERMSIG(st);
    return BRINE_PROC_UNKNOWN;
}

void brine_proc_describe(int code, char *buf, size_t len) {
    if (code == BRINE_PROC_UNKNOWN)
        snprintf(buf, len, "exit status unknown");
    else if (code >= 0)
        snprintf(buf, len, "exit status %d", code);
    else
        snprintf(buf, len, "signal %d (%s)", -code, strsignal(-code));
}

/*------------------------------------------------------------------------------
 * SIGPIPE
 *----------------------------------------------------------------------------*/

void brine_sigpipe_begin(brine_sigpipe_guard *g) {
    sigset_t set, pending;
    g->active = false;
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    sigemptyset(&pending);
    /* one already pending (hence already blocked by the caller) is not ours
       to consume; ours would merge with it and stay pending, harmlessly */
    if (sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE))
        return;
    if (pthread_sigmask(SIG_BLOCK, &set, &g->old) == 0)
        g->active = true;
}

void brine_sigpipe_end(brine_sigpipe_guard *g, bool got_epipe) {
    if (!g->active)
        return;
    if (got_epipe) {
        sigset_t set;
        sigemptyset(&set);
        sigaddset(&set, SIGPIPE);
        struct timespec zero = {0, 0};
        while (sigtimedwait(&set, NULL, &zero) < 0 && errno == EINTR) {
        }
    }
    pthread_sigmask(SIG_SETMASK, &g->old, NULL);
    g->active = false;
}
