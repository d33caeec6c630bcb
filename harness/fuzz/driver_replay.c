/* Plain replay driver: runs a fuzz target (fuzz_target.h) over files and
 * directories, or over generated inputs, with any compiler and no fuzzing
 * engine. This is what ctest runs, so every target stays alive in every
 * normal build, and what a developer uses to replay a crash.
 *
 *   fuzz_<t>_replay [options] PATH...     files; directories recursively
 *   fuzz_<t>_replay --smoke N --seed S    N inputs from the stream generator
 *
 * Output: "FAIL <input>: <why>" per failing input, "<PATH>: N inputs" per
 * argument, then "N inputs, M failed". Exit 0 only when at least one input
 * ran and none failed; an empty directory says "0 inputs" and does not count
 * as a pass on its own.
 *
 * Without --fork, the first crash ends the run (the signal or sanitizer
 * handler names the input first). With --fork each input runs in a child
 * with a wall-clock timeout and a memory limit, so a run continues past
 * crashes and names every input that died.
 *
 * Files whose names start with '.' or end in ".md" are skipped: corpus
 * folders keep their notes next to the inputs.
 */
#define _POSIX_C_SOURCE 200809L

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fileio.h"
#include "fuzz_target.h"
#include "streamgen.h"

#if defined(__SANITIZE_ADDRESS__)
#define BRINE_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define BRINE_ASAN 1
#endif
#endif

/* Present when a sanitizer runtime is linked; called just before it exits. */
extern void __sanitizer_set_death_callback(void (*callback)(void)) __attribute__((weak));

/*------------------------------------------------------------------------------
 * Options and counters
 *----------------------------------------------------------------------------*/

typedef struct opts {
    bool fork;
    unsigned timeout;      /* seconds per input */
    size_t memory_mb;      /* per input (fork) or for the process */
    unsigned long smoke;   /* generated inputs */
    uint64_t seed;
    const char *artifacts; /* prefix for generated inputs that fail */
    bool verbose;
} opts;

static opts g_opt = {false, 10, 2048, 0, 0, "./", false};
static size_t g_inputs, g_failed;

/* The input running now, for the crash handlers (set before each input). */
static char g_name[4096];
static const uint8_t *g_cur;
static size_t g_cur_len;
static char g_artifact[4096]; /* "" for files: they are on disk already */

/*------------------------------------------------------------------------------
 * Crash handling without --fork: name the input, write the summary, exit
 *----------------------------------------------------------------------------*/

static void put_s(const char *s) {
    size_t n = strlen(s);
    while (n) {
        ssize_t w = write(2, s, n);
        if (w <= 0)
            return;
        s += w;
        n -= (size_t)w;
    }
}

static void put_u(size_t v) {
    char tmp[24];
    size_t i = sizeof tmp;
    tmp[--i] = '\0';
    do
        tmp[--i] = (char)('0' + v % 10);
    while ((v /= 10) && i);
    put_s(tmp + i);
}

/* Async-signal-safe: write(), open(), _exit() only. */
static void die_naming_input(const char *why) {
    static volatile sig_atomic_t once;
    if (once)
        _exit(1);
    once = 1;
    put_s("FAIL ");
    put_s(g_name);
    put_s(": ");
    put_s(why);
    put_s("\n");
    if (g_artifact[0] && g_cur) {
        int fd = open(g_artifact, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd >= 0) {
            size_t off = 0;
            while (off < g_cur_len) {
                ssize_t w = write(fd, g_cur + off, g_cur_len - off);
                if (w <= 0)
                    break;
                off += (size_t)w;
            }
            close(fd);
            put_s("  input written to ");
            put_s(g_artifact);
            put_s("\n");
        }
    }
    put_u(g_inputs);
    put_s(" inputs, ");
    put_u(g_failed + 1);
    put_s(" failed (stopped at the first crash; --fork runs past crashes)\n");
    _exit(1);
}

static void on_signal(int sig) {
    switch (sig) {
    case SIGALRM:
        die_naming_input("timeout");
        break;
    case SIGABRT:
        die_naming_input("aborted (SIGABRT)");
        break;
    case SIGSEGV:
        die_naming_input("segmentation fault (SIGSEGV)");
        break;
    case SIGBUS:
        die_naming_input("bus error (SIGBUS)");
        break;
    case SIGFPE:
        die_naming_input("arithmetic exception (SIGFPE)");
        break;
    default:
        die_naming_input("illegal instruction (SIGILL)");
        break;
    }
}

static void on_sanitizer_death(void) { die_naming_input("sanitizer report (above)"); }

static void install_handlers(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGABRT, &sa, NULL);
    sigaction(SIGALRM, &sa, NULL);
#ifndef BRINE_ASAN
    /* under ASan its own SEGV handler reports (and then calls the death callback) */
    sigaction(SIGSEGV, &sa, NULL);
    sigaction(SIGBUS, &sa, NULL);
    sigaction(SIGFPE, &sa, NULL);
    sigaction(SIGILL, &sa, NULL);
#endif
    if (__sanitizer_set_death_callback)
        __sanitizer_set_death_callback(on_sanitizer_death);
}

/* The address-space limit protects the machine from a runaway input; ASan
   reserves terabytes of address space for its shadow, so there it is left
   to ASAN_OPTIONS (e.g. hard_rss_limit_mb, allocator_may_return_null). */
static void limit_memory(size_t mb) {
#ifndef BRINE_ASAN
    struct rlimit rl;
    rl.rlim_cur = rl.rlim_max = (rlim_t)mb << 20;
    setrlimit(RLIMIT_AS, &rl);
#else
    (void)mb;
#endif
}

/*------------------------------------------------------------------------------
 * Running one input
 *----------------------------------------------------------------------------*/

static void set_current(const char *name, const uint8_t *data, size_t len, const char *artifact) {
    snprintf(g_name, sizeof g_name, "%s", name);
    snprintf(g_artifact, sizeof g_artifact, "%s", artifact ? artifact : "");
    g_cur = data;
    g_cur_len = len;
}

static void report_fail(const char *why) {
    printf("FAIL %s: %s\n", g_name, why);
    if (g_artifact[0]) {
        FILE *f = fopen(g_artifact, "wb");
        if (f && fwrite(g_cur, 1, g_cur_len, f) == g_cur_len)
            printf("  input written to %s\n", g_artifact);
        if (f)
            fclose(f);
    }
    fflush(stdout);
    g_failed++;
}

/* Resident set of a child in MiB, from /proc (0 when unknown). */
static size_t rss_mb(pid_t pid) {
    char path[64];
    snprintf(path, sizeof path, "/proc/%ld/statm", (long)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    unsigned long size = 0, resident = 0;
    int n = fscanf(f, "%lu %lu", &size, &resident);
    fclose(f);
    if (n != 2)
        return 0;
    long page = sysconf(_SC_PAGESIZE);
    return (size_t)(resident * (unsigned long)(page > 0 ? page : 4096) >> 20);
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* How often a running child's memory is looked at. */
#define WATCH_NS 20000000L

static void run_forked(const uint8_t *data, size_t len) {
    fflush(stdout);
    fflush(stderr);
    /* SIGCHLD stays blocked in the parent (main blocks it), so sigtimedwait
       wakes the moment the child ends instead of polling */
    pid_t pid = fork();
    if (pid < 0) {
        report_fail("fork failed");
        return;
    }
    if (pid == 0) {
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        struct rlimit core = {0, 0};
        setrlimit(RLIMIT_CORE, &core);
        limit_memory(g_opt.memory_mb);
        brine_fuzz_set_input(data, len);
        brine_fuzz_one(data, len);
        _exit(0);
    }
    sigset_t chld;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    double start = now_s();
    char why[160];
    for (;;) {
        int st = 0;
        pid_t w = waitpid(pid, &st, WNOHANG);
        if (w == pid) {
            if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
                return;
            if (WIFSIGNALED(st))
                snprintf(why, sizeof why, "killed by signal %d (%s)", WTERMSIG(st),
                         strsignal(WTERMSIG(st)));
            else
                snprintf(why, sizeof why, "exited with status %d (a sanitizer report is above)",
                         WEXITSTATUS(st));
            report_fail(why);
            return;
        }
        if (w < 0 && errno != EINTR) {
            report_fail("lost the child");
            return;
        }
        double el = now_s() - start;
        size_t rss = rss_mb(pid);
        const char *kill_why = NULL;
        if (el > g_opt.timeout) {
            snprintf(why, sizeof why, "timeout (over %u s)", g_opt.timeout);
            kill_why = why;
        } else if (rss > g_opt.memory_mb) {
            snprintf(why, sizeof why, "memory limit (%zu MiB resident, limit %zu MiB)", rss,
                     g_opt.memory_mb);
            kill_why = why;
        }
        if (kill_why) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            report_fail(kill_why);
            return;
        }
        struct timespec ts = {0, WATCH_NS};
        sigtimedwait(&chld, NULL, &ts);
    }
}

static void run_one(const char *name, const uint8_t *data, size_t len, const char *artifact) {
    set_current(name, data, len, artifact);
    g_inputs++;
    if (g_opt.verbose)
        fprintf(stderr, "running %s (%zu bytes)\n", name, len);
    if (g_opt.fork) {
        run_forked(data, len);
        return;
    }
    brine_fuzz_set_input(data, len);
    alarm(g_opt.timeout);
    brine_fuzz_one(data, len);
    alarm(0);
}

/*------------------------------------------------------------------------------
 * Files and directories (an explicit work list: no recursion on the tree)
 *----------------------------------------------------------------------------*/

static bool skip_name(const char *base) {
    size_t n = strlen(base);
    return base[0] == '.' || (n >= 3 && strcmp(base + n - 3, ".md") == 0);
}

typedef struct strlist {
    char **v;
    size_t n, cap;
} strlist;

static void sl_push(strlist *l, char *s) {
    if (l->n == l->cap) {
        size_t nc = l->cap ? l->cap * 2 : 64;
        char **nv = realloc(l->v, nc * sizeof *nv);
        if (!nv) {
            fprintf(stderr, "out of memory\n");
            exit(2);
        }
        l->v = nv;
        l->cap = nc;
    }
    l->v[l->n++] = s;
}

static char *join(const char *dir, const char *base) {
    size_t a = strlen(dir), b = strlen(base);
    char *p = malloc(a + b + 2);
    if (!p) {
        fprintf(stderr, "out of memory\n");
        exit(2);
    }
    memcpy(p, dir, a);
    size_t k = a;
    if (!a || dir[a - 1] != '/')
        p[k++] = '/';
    memcpy(p + k, base, b + 1);
    return p;
}

static int cmp_desc(const void *x, const void *y) {
    return strcmp(*(char *const *)y, *(char *const *)x);
}

/* Runs every file under `root` in sorted depth-first order. Returns the
   number of inputs it ran, or -1 when something could not be read. */
static long run_path(const char *root) {
    size_t before = g_inputs;
    int rc = 0;
    strlist todo = {NULL, 0, 0};
    char *first = malloc(strlen(root) + 1);
    if (!first)
        return -1;
    strcpy(first, root);
    sl_push(&todo, first);
    while (todo.n) {
        char *path = todo.v[--todo.n];
        struct stat st;
        if (stat(path, &st) != 0) {
            fprintf(stderr, "cannot read %s: %s\n", path, strerror(errno));
            rc = -1;
        } else if (S_ISDIR(st.st_mode)) {
            DIR *d = opendir(path);
            if (!d) {
                fprintf(stderr, "cannot open %s: %s\n", path, strerror(errno));
                rc = -1;
            } else {
                strlist kids = {NULL, 0, 0};
                struct dirent *e;
                while ((e = readdir(d)) != NULL)
                    if (!skip_name(e->d_name))
                        sl_push(&kids, join(path, e->d_name));
                closedir(d);
                /* pushed in reverse order, so they pop in sorted order */
                if (kids.n)
                    qsort(kids.v, kids.n, sizeof *kids.v, cmp_desc);
                for (size_t i = 0; i < kids.n; i++)
                    sl_push(&todo, kids.v[i]);
                free(kids.v);
            }
        } else if (S_ISREG(st.st_mode)) {
            uint8_t *data = NULL;
            size_t len = 0;
            if (brine_read_file(path, &data, &len) != 0) {
                fprintf(stderr, "cannot read %s: %s\n", path, strerror(errno));
                rc = -1;
            } else {
                run_one(path, data, len, NULL);
                free(data);
            }
        }
        free(path);
    }
    free(todo.v);
    return rc ? -1 : (long)(g_inputs - before);
}

/*------------------------------------------------------------------------------
 * --smoke: inputs from the stream generator, reproducible from (seed, index)
 *----------------------------------------------------------------------------*/

static uint64_t splitmix(uint64_t *s) {
    uint64_t z = (*s += UINT64_C(0x9e3779b97f4a7c15));
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

#define SMOKE_CAP ((size_t)1 << 16)

/* Generates smoke input i into buf; returns its length and describes it. */
static size_t smoke_input(uint64_t seed, unsigned long i, uint8_t *buf, char *desc, size_t dcap) {
    uint64_t s = seed ^ (UINT64_C(0xd1b54a32d192ed03) * (i + 1));
    uint64_t r = splitmix(&s);
    int proto = (int)(r % 6);
    uint64_t gseed = splitmix(&s);
    size_t n = 0;
    switch (i % 4) {
    case 0:
        n = pkl_gen_valid(gseed, proto, buf, SMOKE_CAP);
        snprintf(desc, dcap, "valid p%d", proto);
        break;
    case 1: {
        size_t nf = 0;
        const char *const *faults = pkl_gen_faults(&nf);
        const char *f = nf ? faults[splitmix(&s) % nf] : "";
        n = pkl_gen_invalid(gseed, proto, f, buf, SMOKE_CAP, NULL);
        snprintf(desc, dcap, "invalid p%d %s", proto, f);
        if (n)
            break;
        n = pkl_gen_valid(gseed, proto, buf, SMOKE_CAP); /* fault not applicable here */
        snprintf(desc, dcap, "valid p%d", proto);
        break;
    }
    default: {
        n = pkl_gen_valid(gseed, proto, buf, SMOKE_CAP);
        unsigned rounds = 1 + (unsigned)(splitmix(&s) % 8);
        if (n > SMOKE_CAP)
            n = 0;
        for (unsigned k = 0; k < rounds; k++)
            n = pkl_gen_mutate(splitmix(&s), buf, n, SMOKE_CAP);
        snprintf(desc, dcap, "valid p%d + %u mutations", proto, rounds);
        return n;
    }
    }
    return n > SMOKE_CAP ? 0 : n; /* too long for the buffer: an empty input instead */
}

static void run_smoke(void) {
    uint8_t *buf = malloc(SMOKE_CAP);
    if (!buf) {
        fprintf(stderr, "out of memory\n");
        exit(2);
    }
    for (unsigned long i = 0; i < g_opt.smoke; i++) {
        char desc[128], name[256], artifact[4096];
        size_t n = smoke_input(g_opt.seed, i, buf, desc, sizeof desc);
        snprintf(name, sizeof name, "smoke %lu of seed %llu (%s)", i,
                 (unsigned long long)g_opt.seed, desc);
        snprintf(artifact, sizeof artifact, "%ssmoke-%llu-%lu.pkl", g_opt.artifacts,
                 (unsigned long long)g_opt.seed, i);
        run_one(name, buf, n, artifact);
    }
    free(buf);
}

/*------------------------------------------------------------------------------
 * main
 *----------------------------------------------------------------------------*/

static void usage(FILE *f, const char *argv0) {
    fprintf(f,
            "usage: %s [options] PATH...\n"
            "  runs the fuzz target over every file under each PATH (directories\n"
            "  recursively, sorted; names starting with '.' or ending in .md skipped)\n"
            "  --fork               each input in a child process: a crash, timeout or\n"
            "                       memory overrun fails that input and the run goes on\n"
            "  --timeout SEC        per input (default 10)\n"
            "  --memory-limit MB    per input with --fork, else for the process (default\n"
            "                       2048; address space, or RSS under ASan with --fork)\n"
            "  --smoke N            also run N inputs generated from --seed (valid,\n"
            "                       one-fault and mutated opcode streams)\n"
            "  --seed S             seed of --smoke (default 0)\n"
            "  --artifacts PREFIX   where a failing generated input is written (default ./)\n"
            "  --verbose            name each input on stderr before running it\n"
            "exit: 0 when at least one input ran and none failed; 1 on a failure or\n"
            "when there was nothing to run; 2 on a usage or read error\n",
            argv0);
}

static bool parse_num(const char *s, unsigned long long *out) {
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *end || s[0] == '-')
        return false;
    *out = v;
    return true;
}

int main(int argc, char **argv) {
    const char *argv0 = argv[0];
    strlist paths = {NULL, 0, 0};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        unsigned long long v = 0;
        bool has_val = i + 1 < argc;
        if (strcmp(a, "--fork") == 0) {
            g_opt.fork = true;
        } else if (strcmp(a, "--verbose") == 0) {
            g_opt.verbose = true;
        } else if (strcmp(a, "--timeout") == 0 && has_val && parse_num(argv[i + 1], &v) && v > 0 &&
                   v < 1000000) {
            g_opt.timeout = (unsigned)v, i++;
        } else if (strcmp(a, "--memory-limit") == 0 && has_val && parse_num(argv[i + 1], &v) &&
                   v >= 64 && v < (1ull << 30)) {
            g_opt.memory_mb = (size_t)v, i++;
        } else if (strcmp(a, "--smoke") == 0 && has_val && parse_num(argv[i + 1], &v)) {
            g_opt.smoke = (unsigned long)v, i++;
        } else if (strcmp(a, "--seed") == 0 && has_val && parse_num(argv[i + 1], &v)) {
            g_opt.seed = v, i++;
        } else if (strcmp(a, "--artifacts") == 0 && has_val) {
            g_opt.artifacts = argv[++i];
        } else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout, argv0);
            return 0;
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "%s: bad option or value: %s\n", argv0, a);
            usage(stderr, argv0);
            return 2;
        } else {
            sl_push(&paths, argv[i]);
        }
    }
    if (!paths.n && !g_opt.smoke) {
        usage(stderr, argv0);
        return 2;
    }
    int rc = brine_fuzz_init(&argc, &argv);
    if (rc != 0)
        return rc;
    if (!g_opt.fork) {
        install_handlers();
        limit_memory(g_opt.memory_mb);
    } else {
        sigset_t chld;
        sigemptyset(&chld);
        sigaddset(&chld, SIGCHLD);
        sigprocmask(SIG_BLOCK, &chld, NULL);
    }
    bool read_error = false;
    for (size_t i = 0; i < paths.n; i++) {
        long n = run_path(paths.v[i]);
        if (n < 0)
            read_error = true;
        else
            printf("%s: %ld inputs\n", paths.v[i], n);
    }
    if (g_opt.smoke) {
        size_t before = g_inputs;
        run_smoke();
        printf("smoke (seed %llu): %zu inputs\n", (unsigned long long)g_opt.seed, g_inputs - before);
    }
    brine_fuzz_cleanup();
    printf("%zu inputs, %zu failed\n", g_inputs, g_failed);
    free(paths.v);
    if (read_error)
        return 2;
    if (!g_inputs) {
        printf("nothing was run: no inputs is not a pass\n");
        return 1;
    }
    return g_failed ? 1 : 0;
}
