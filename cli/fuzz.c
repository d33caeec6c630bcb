/* brine fuzz: differential fuzzing of libpkl, with findings kept, deduplicated
 * and minimized.
 *
 *   brine fuzz [--target NAME] [--engine libfuzzer|afl] [--time S | --runs N]
 *              [--jobs J] [--work DIR] [--fuzz-build DIR] [--seed S]
 *              [--no-minimize] [--quiet]
 *
 * Builds nothing: the engine builds come from scripts/build_fuzzers.sh, and
 * brine fuzz says so when one is missing. It runs the chosen target under
 * its engine for a time or execution budget, with the structure-aware
 * mutator, the opcode dictionary and the corpus as seeds; shows a progress
 * line (exec/s, coverage, corpus size, distinct divergences); and, for
 * every input the engine saves (a divergence makes the target abort; a
 * sanitizer finding or a timeout likewise), asks the target's replay build
 * in explain mode what it is, keeps one finding per signature, minimizes it
 * at opcode granularity keeping that signature (harness/minimize.h), and
 * writes it to WORK/findings/<id>/ (docs/fuzzing.md). A second run resumes
 * from WORK/corpus.
 *
 * Exit: 0 when no finding is left unexplained (known CPython quirks are
 * filtered by the target itself), 1 when there are findings, 2 for usage or
 * set-up errors.
 */
#define _POSIX_C_SOURCE 200809L

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fileio.h"
#include "fuzz_explain.h"
#include "json.h"
#include "minimize.h"
#include "pkl.h"
#include "pkl_answer.h"
#include "serve.h"

extern char **environ;

enum { FUZZ_FINDINGS = 1, FUZZ_USAGE = 2 };

/*------------------------------------------------------------------------------
 * Small helpers
 *----------------------------------------------------------------------------*/

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void *xmalloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (!p) {
        fprintf(stderr, "brine fuzz: out of memory\n");
        exit(FUZZ_USAGE);
    }
    return p;
}

static char *xstrdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = xmalloc(n);
    memcpy(d, s, n);
    return d;
}

static char *path_join(const char *a, const char *b) {
    char *d = xmalloc(strlen(a) + strlen(b) + 2);
    sprintf(d, "%s/%s", a, b);
    return d;
}

static bool is_file(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

static bool is_dir(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

/* mkdir -p */
static int make_dirs(const char *path) {
    char *p = xstrdup(path);
    for (char *s = p + 1; *s; s++) {
        if (*s != '/')
            continue;
        *s = '\0';
        if (mkdir(p, 0777) != 0 && errno != EEXIST) {
            free(p);
            return -1;
        }
        *s = '/';
    }
    int rc = mkdir(p, 0777) != 0 && errno != EEXIST ? -1 : 0;
    free(p);
    return rc;
}

/* The path of this executable's directory (for the replay build beside it). */
static char *self_dir(void) {
    char path[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", path, sizeof path - 1);
    if (n <= 0)
        return xstrdup(".");
    path[n] = '\0';
    char *slash = strrchr(path, '/');
    if (slash)
        *slash = '\0';
    return xstrdup(path);
}

/*------------------------------------------------------------------------------
 * Child processes: argv, output to a log file, own process group
 *----------------------------------------------------------------------------*/

/* Starts argv with stdout and stderr appended to `log` (NULL: inherited) and
   `extra` (KEY=VALUE, NULL-terminated, may be NULL) added to the environment.
   Returns the pid, or -1. */
static pid_t spawn_logged(char *const *argv, const char *log, char *const *extra) {
    size_t ne = 0, nx = 0;
    while (environ[ne])
        ne++;
    while (extra && extra[nx])
        nx++;
    char **env = xmalloc((ne + nx + 1) * sizeof *env);
    size_t k = 0;
    for (size_t i = 0; i < nx; i++)
        env[k++] = extra[i];
    for (size_t i = 0; i < ne; i++) {
        bool overridden = false;
        for (size_t j = 0; j < nx && !overridden; j++) {
            const char *eq = strchr(extra[j], '=');
            size_t kl = eq ? (size_t)(eq - extra[j]) + 1 : strlen(extra[j]);
            overridden = strncmp(environ[i], extra[j], kl) == 0;
        }
        if (!overridden)
            env[k++] = environ[i];
    }
    env[k] = NULL;
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    posix_spawn_file_actions_init(&fa);
    posix_spawnattr_init(&at);
    if (log) {
        posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, log, O_WRONLY | O_CREAT | O_APPEND,
                                         0666);
        posix_spawn_file_actions_adddup2(&fa, STDOUT_FILENO, STDERR_FILENO);
    }
    posix_spawnattr_setpgroup(&at, 0);
    /* brine fuzz forwards SIGINT and SIGTERM to the engine; a shell starts
       background jobs with SIGINT ignored, which the engine would inherit
       (libFuzzer then keeps its handler off and a forwarded Ctrl-C does
       nothing), so the engine starts with both at their defaults */
    sigset_t defaults;
    sigemptyset(&defaults);
    sigaddset(&defaults, SIGINT);
    sigaddset(&defaults, SIGTERM);
    posix_spawnattr_setsigdefault(&at, &defaults);
    posix_spawnattr_setflags(&at, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGDEF);
    pid_t pid;
    int rc = posix_spawnp(&pid, argv[0], &fa, &at, argv, env); /* afl-fuzz: from PATH */
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&at);
    free(env);
    if (rc != 0) {
        fprintf(stderr, "brine fuzz: cannot start %s: %s\n", argv[0], strerror(rc));
        return -1;
    }
    return pid;
}

static int wait_exit(pid_t pid) {
    int st;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR)
            return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/*------------------------------------------------------------------------------
 * Asking the replay build what inputs are (explain mode, fuzz_explain.h)
 *----------------------------------------------------------------------------*/

typedef struct explainer {
    const char *replay;   /* the target's replay binary */
    const char *tmpdir;   /* scratch folder for candidate files */
    size_t calls;
} explainer;

/* Runs the replay build over files in explain mode; fills out[i] (owned by
   the caller, brine_explain_free) for each. 0, or -1 when the run failed. */
static int explain_files(explainer *E, char **files, size_t n, brine_explained *out) {
    char *report = path_join(E->tmpdir, "explain.txt");
    char *log = path_join(E->tmpdir, "explain.log");
    unlink(report);
    unlink(log);
    char **argv = xmalloc((n + 3) * sizeof *argv);
    argv[0] = (char *)E->replay;
    argv[1] = "--fork"; /* a crash costs one file, not the batch */
    for (size_t i = 0; i < n; i++)
        argv[i + 2] = files[i];
    argv[n + 2] = NULL;
    char env0[PATH_MAX + 32];
    snprintf(env0, sizeof env0, "%s=%s", BRINE_EXPLAIN_ENV, report);
    char *extra[] = {env0, "ASAN_OPTIONS=detect_leaks=0:allocator_may_return_null=1", NULL};
    pid_t pid = spawn_logged(argv, log, extra);
    free(argv);
    int rc = pid < 0 ? -1 : 0;
    if (pid >= 0)
        wait_exit(pid); /* the replay exits non-zero when an input crashed: expected */
    E->calls++;
    if (rc == 0)
        rc = brine_explain_read(report, log, files, n, out);
    free(report);
    free(log);
    return rc;
}

/* The signature without its last field (the opcode context). */
static size_t sig_core_len(const char *sig) {
    const char *dot = strrchr(sig, '.');
    return dot ? (size_t)(dot - sig) : strlen(sig);
}

/* Minimization keeps the decision and the differing node kinds; the opcode
   context may move (it names where the input ended, which is what shrinks). */
typedef struct judge_ctx {
    explainer *E;
    const char *signature;
} judge_ctx;

static int judge_candidates(void *ctx, const brine_candidate *c, size_t n, bool *keep) {
    judge_ctx *J = ctx;
    char **files = xmalloc(n * sizeof *files);
    for (size_t i = 0; i < n; i++) {
        char name[32];
        snprintf(name, sizeof name, "cand-%04zu.pkl", i);
        files[i] = path_join(J->E->tmpdir, name);
        if (brine_write_file(files[i], c[i].data, c[i].len) != 0) {
            for (size_t k = 0; k <= i; k++)
                free(files[k]);
            free(files);
            return -1;
        }
    }
    brine_explained *ex = calloc(n, sizeof *ex);
    int rc = ex ? explain_files(J->E, files, n, ex) : -1;
    for (size_t i = 0; i < n; i++) {
        size_t core = sig_core_len(J->signature);
        bool same = false;
        if (rc == 0 && ex[i].signature && ex[i].verdict) {
            if (strcmp(ex[i].verdict, "diverge") == 0)
                same = sig_core_len(ex[i].signature) == core &&
                       strncmp(ex[i].signature, J->signature, core) == 0;
            else /* a failed invariant or a crash: the whole signature */
                same = strcmp(ex[i].signature, J->signature) == 0;
        }
        keep[i] = same;
        if (ex)
            brine_explain_free(&ex[i]);
        unlink(files[i]);
        free(files[i]);
    }
    free(ex);
    free(files);
    return rc;
}

/*------------------------------------------------------------------------------
 * Findings (docs/fuzzing.md: WORK/findings/<id>/)
 *----------------------------------------------------------------------------*/

/* One distinct finding: the signature of its minimized input, and the raw
   signatures of the inputs that minimized to it (their opcode context is
   often just where the engine's input happened to end). */
typedef struct finding {
    char *signature;
    char *id;
    size_t count;
    char **aliases;
    size_t naliases;
} finding;

typedef struct findings {
    finding *v;
    size_t n, cap;
    char *dir;
} findings;

static uint64_t fnv1a(const void *data, size_t len) {
    const uint8_t *p = data;
    uint64_t h = UINT64_C(0xcbf29ce484222325);
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= UINT64_C(0x100000001b3);
    }
    return h;
}

/* A new zeroed entry at the end of F. */
static finding *new_finding(findings *F) {
    if (F->n == F->cap) {
        size_t ncap = F->cap ? F->cap * 2 : 16;
        finding *nv = realloc(F->v, ncap * sizeof *nv);
        if (!nv) {
            fprintf(stderr, "brine fuzz: out of memory\n");
            exit(FUZZ_USAGE);
        }
        F->v = nv;
        F->cap = ncap;
    }
    finding *fd = &F->v[F->n++];
    memset(fd, 0, sizeof *fd);
    return fd;
}

static finding *find_sig(findings *F, const char *sig) {
    for (size_t i = 0; i < F->n; i++) {
        if (strcmp(F->v[i].signature, sig) == 0)
            return &F->v[i];
        for (size_t k = 0; k < F->v[i].naliases; k++)
            if (strcmp(F->v[i].aliases[k], sig) == 0)
                return &F->v[i];
    }
    return NULL;
}

/* Remembers that raw signature `sig` leads to finding fd (also on disk, in
   its aliases.txt, for the next run). */
static void add_alias(findings *F, finding *fd, const char *sig) {
    if (strcmp(fd->signature, sig) == 0)
        return;
    for (size_t k = 0; k < fd->naliases; k++)
        if (strcmp(fd->aliases[k], sig) == 0)
            return;
    char **na = realloc(fd->aliases, (fd->naliases + 1) * sizeof *na);
    if (!na)
        return;
    fd->aliases = na;
    fd->aliases[fd->naliases++] = xstrdup(sig);
    char *dir = path_join(F->dir, fd->id);
    char *p = path_join(dir, "aliases.txt");
    FILE *f = fopen(p, "a");
    if (f) {
        fprintf(f, "%s\n", sig);
        fclose(f);
    }
    free(p);
    free(dir);
}


/* meta.json of a finding (docs/fuzzing.md). */
typedef struct meta {
    const char *id, *signature, *explanation, *classification, *first_seen, *target;
    size_t count;
} meta;

static void write_meta(const char *dir, const meta *m) {
    char *p = path_join(dir, "meta.json");
    FILE *f = fopen(p, "w");
    if (f) {
        const char *keys[] = {"id", "signature", "explanation", "classification", "first_seen",
                              "target"};
        const char *vals[] = {m->id, m->signature, m->explanation, m->classification,
                              m->first_seen, m->target};
        fputc('{', f);
        for (size_t k = 0; k < 6; k++) {
            fprintf(f, "\"%s\": ", keys[k]);
            brine_json_write_str(f, vals[k] ? vals[k] : "", vals[k] ? strlen(vals[k]) : 0);
            fputs(", ", f);
        }
        fprintf(f, "\"count\": %zu}\n", m->count);
        fclose(f);
    }
    free(p);
}

/* Reads a finding's meta.json; NULL when it is missing or not a meta. The
   strings of *m point into the returned document (brine_json_free). */
static brine_json_doc *read_meta(const char *dir, meta *m) {
    char *p = path_join(dir, "meta.json");
    char err[256];
    brine_json_doc *d = brine_json_parse_file(p, err, sizeof err);
    free(p);
    if (!d)
        return NULL;
    const brine_json *r = brine_json_root(d);
    const brine_json *count = brine_json_get(r, "count");
    memset(m, 0, sizeof *m);
    m->id = brine_json_get_str(r, "id", NULL);
    m->signature = brine_json_get_str(r, "signature", NULL);
    m->explanation = brine_json_get_str(r, "explanation", "");
    m->classification = brine_json_get_str(r, "classification", "unexplained");
    m->first_seen = brine_json_get_str(r, "first_seen", "");
    m->target = brine_json_get_str(r, "target", "");
    m->count = count && count->type == BRINE_JSON_NUMBER ? (size_t)count->num : 1;
    if (!m->signature) {
        brine_json_free(d);
        return NULL;
    }
    return d;
}

static void write_text(const char *dir, const char *name, const char *a, size_t alen,
                       const char *b, size_t blen) {
    char *p = path_join(dir, name);
    FILE *f = fopen(p, "wb");
    if (f) {
        fwrite(a, 1, alen, f);
        if (b) {
            fputs("--- trace\n", f);
            fwrite(b, 1, blen, f);
        }
        fclose(f);
    }
    free(p);
}

static void write_dis(void *ctx, const char *text, size_t len) { fwrite(text, 1, len, ctx); }

/* Writes a new finding: input, minimized input, both answers, disassembly. */
static void record_new(findings *F, finding *fd, const char *target, const uint8_t *input,
                       size_t len, const uint8_t *min, size_t min_len,
                       const brine_explained *ex_min) {
    char *dir = path_join(F->dir, fd->id);
    make_dirs(dir);
    char *p = path_join(dir, "input.pkl");
    brine_write_file(p, input, len);
    free(p);
    p = path_join(dir, "min.pkl");
    brine_write_file(p, min, min_len);
    free(p);
    brine_pkl_answer ans;
    if (brine_pkl_answer_load(min, min_len, NULL, &ans) == 0) {
        write_text(dir, "pkl.txt", ans.text, ans.text_len, ans.trace, ans.trace_len);
        brine_pkl_answer_free(&ans);
    }
    if (ex_min && ex_min->text)
        write_text(dir, "cpython.txt", ex_min->text, strlen(ex_min->text), ex_min->trace,
                   ex_min->trace ? strlen(ex_min->trace) : 0);
    p = path_join(dir, "dis.txt");
    FILE *f = fopen(p, "w");
    if (f) {
        pkl_err err;
        pkl_dis(min, min_len, write_dis, f, &err);
        fclose(f);
    }
    free(p);
    char when[32];
    time_t t = time(NULL);
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", gmtime(&t));
    meta m = {fd->id, fd->signature, ex_min && ex_min->explanation ? ex_min->explanation : "",
              "unexplained", when, target, fd->count};
    write_meta(dir, &m);
    free(dir);
}

/* Writes the new count of a known finding into its meta.json. */
static void bump_count(findings *F, finding *fd) {
    char *dir = path_join(F->dir, fd->id);
    meta m;
    brine_json_doc *d = read_meta(dir, &m);
    if (d) {
        m.count = fd->count;
        write_meta(dir, &m);
        brine_json_free(d);
    }
    free(dir);
}

static void load_aliases(findings *F, finding *fd, const char *dir) {
    (void)F;
    char *p = path_join(dir, "aliases.txt");
    FILE *f = fopen(p, "r");
    free(p);
    if (!f)
        return;
    char line[256];
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = '\0';
        if (!*line)
            continue;
        char **na = realloc(fd->aliases, (fd->naliases + 1) * sizeof *na);
        if (!na)
            break;
        fd->aliases = na;
        fd->aliases[fd->naliases++] = xstrdup(line);
    }
    fclose(f);
}

/* Loads the findings a previous run left (their signatures and counts). */
static void load_findings(findings *F) {
    DIR *d = opendir(F->dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char *dir = path_join(F->dir, e->d_name);
        meta m;
        brine_json_doc *doc = read_meta(dir, &m);
        if (doc) {
            finding *fd = new_finding(F);
            fd->signature = xstrdup(m.signature);
            fd->id = xstrdup(e->d_name);
            fd->count = m.count;
            load_aliases(F, fd, dir);
            brine_json_free(doc);
        }
        free(dir);
    }
    closedir(d);
}

/*------------------------------------------------------------------------------
 * Handling what the engine saved
 *----------------------------------------------------------------------------*/

typedef struct session {
    const char *target;
    explainer E;
    findings F;
    bool minimize;
    bool quiet;
    size_t new_findings, repeats, handled, unreproduced;
    char **seen; /* artifact paths already handled */
    size_t nseen, seen_cap;
} session;

static bool already_seen(session *S, const char *path) {
    for (size_t i = 0; i < S->nseen; i++)
        if (strcmp(S->seen[i], path) == 0)
            return true;
    if (S->nseen == S->seen_cap) {
        S->seen_cap = S->seen_cap ? S->seen_cap * 2 : 64;
        S->seen = realloc(S->seen, S->seen_cap * sizeof *S->seen);
        if (!S->seen)
            exit(FUZZ_USAGE);
    }
    S->seen[S->nseen++] = xstrdup(path);
    return false;
}

static void handle_artifact(session *S, const char *path) {
    if (already_seen(S, path))
        return;
    uint8_t *data;
    size_t len;
    if (brine_read_file(path, &data, &len) != 0)
        return;
    S->handled++;
    char *files[1] = {(char *)path};
    brine_explained ex;
    memset(&ex, 0, sizeof ex);
    if (explain_files(&S->E, files, 1, &ex) != 0 || !ex.verdict) {
        brine_explain_free(&ex);
        free(data);
        return;
    }
    if (strcmp(ex.verdict, "agree") == 0 || strcmp(ex.verdict, "no-verdict") == 0 ||
        strcmp(ex.verdict, "quirk") == 0 || !ex.signature) {
        /* the engine saved it, the replay build does not fail on it: a timeout or
           out-of-memory of the engine's own process, a flaky input, or a quirk
           classified since it was saved. Counted, not kept. */
        if (strcmp(ex.verdict, "quirk") != 0)
            S->unreproduced++;
        brine_explain_free(&ex);
        free(data);
        return;
    }
    finding *fd = find_sig(&S->F, ex.signature);
    if (fd) {
        fd->count++;
        S->repeats++;
        bump_count(&S->F, fd);
        brine_explain_free(&ex);
        free(data);
        return;
    }
    uint8_t *min = NULL;
    size_t min_len = len;
    brine_min_stats st = {0, 0, 0};
    if (S->minimize) {
        judge_ctx J = {&S->E, ex.signature};
        brine_min_opts mo = {60, 48};
        min = brine_minimize(data, len, judge_candidates, &J, &mo, &min_len, &st);
    }
    if (!min) {
        min = xmalloc(len ? len : 1);
        memcpy(min, data, len);
        min_len = len;
    }
    /* the minimized input's own answer names the finding */
    brine_explained exm;
    memset(&exm, 0, sizeof exm);
    char *mpath = path_join(S->E.tmpdir, "min.pkl");
    char *mfiles[1] = {mpath};
    bool have = brine_write_file(mpath, min, min_len) == 0 &&
                explain_files(&S->E, mfiles, 1, &exm) == 0 && exm.signature &&
                strcmp(exm.verdict, ex.verdict) == 0;
    const brine_explained *best = have ? &exm : &ex;
    fd = find_sig(&S->F, best->signature);
    if (fd) {
        /* another way into a known finding */
        add_alias(&S->F, fd, ex.signature);
        fd->count++;
        S->repeats++;
        bump_count(&S->F, fd);
    } else {
        fd = new_finding(&S->F);
        fd->signature = xstrdup(best->signature);
        char id[24];
        snprintf(id, sizeof id, "%016llx",
                 (unsigned long long)fnv1a(fd->signature, strlen(fd->signature)));
        fd->id = xstrdup(id);
        fd->count = 1;
        S->new_findings++;
        record_new(&S->F, fd, S->target, data, len, min, min_len, best);
        add_alias(&S->F, fd, ex.signature);
        if (!S->quiet)
            fprintf(stderr, "\nbrine fuzz: new finding %s: %s (%zu -> %zu bytes, %zu batches)\n",
                    fd->id, fd->signature, len, min_len, st.batches);
    }
    unlink(mpath);
    free(mpath);
    brine_explain_free(&exm);
    free(min);
    brine_explain_free(&ex);
    free(data);
}

static void scan_artifacts(session *S, const char *dir) {
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    char **names = NULL;
    size_t n = 0, cap = 0;
    while ((e = readdir(d))) {
        const char *s = e->d_name;
        bool art = strncmp(s, "crash-", 6) == 0 || strncmp(s, "leak-", 5) == 0 ||
                   strncmp(s, "timeout-", 8) == 0 || strncmp(s, "oom-", 4) == 0 ||
                   strncmp(s, "slow-unit-", 10) == 0 || strncmp(s, "id:", 3) == 0;
        if (!art)
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            names = realloc(names, cap * sizeof *names);
            if (!names)
                exit(FUZZ_USAGE);
        }
        names[n++] = path_join(dir, s);
    }
    closedir(d);
    char *handled = n ? path_join(dir, "handled") : NULL;
    if (handled)
        make_dirs(handled);
    for (size_t i = 0; i < n; i++) {
        handle_artifact(S, names[i]);
        /* examined once: a later run (resuming) must not count it again */
        const char *base = strrchr(names[i], '/');
        char *to = path_join(handled, base ? base + 1 : names[i]);
        if (rename(names[i], to) != 0 && !S->quiet)
            fprintf(stderr, "brine fuzz: cannot move %s aside: %s\n", names[i], strerror(errno));
        free(to);
        free(names[i]);
    }
    free(handled);
    free(names);
}

/*------------------------------------------------------------------------------
 * Progress: libFuzzer status lines, AFL++ fuzzer_stats
 *----------------------------------------------------------------------------*/

typedef struct progress {
    unsigned long long execs, exec_s, cov, ft, corpus;
    bool seen;
} progress;

/* Parses the libFuzzer status lines appended to the log since last time. */
static void read_libfuzzer_log(FILE *f, progress *pg) {
    char line[1024];
    while (fgets(line, sizeof line, f)) {
        if (line[0] != '#')
            continue;
        unsigned long long v;
        if (sscanf(line + 1, "%llu", &v) == 1)
            pg->execs = v;
        const char *p;
        if ((p = strstr(line, "cov: ")))
            pg->cov = strtoull(p + 5, NULL, 10);
        if ((p = strstr(line, "ft: ")))
            pg->ft = strtoull(p + 4, NULL, 10);
        if ((p = strstr(line, "corp: ")))
            pg->corpus = strtoull(p + 6, NULL, 10);
        /* "exec/s: N" in a single process, "exec/s N" in fork mode */
        if ((p = strstr(line, "exec/s")))
            pg->exec_s = strtoull(p + 6 + strspn(p + 6, ": "), NULL, 10);
        pg->seen = true;
    }
    clearerr(f);
}

/* Edges and features of the saved corpus, from one pass of the engine over
   it (-runs=0: every input once, nothing mutated). libFuzzer's fork mode
   prints merged counters of its own, which are not edge counts (they can
   exceed the number of instrumented edges), so a --time run's summary
   takes its coverage from here. False when the pass reported nothing. */
static bool corpus_coverage(const char *engine_bin, const char *corpus, const char *tmp,
                            unsigned long long *edges, unsigned long long *features) {
    char *log = path_join(tmp, "coverage.log");
    unlink(log);
    char *argv[] = {(char *)engine_bin, "-runs=0",         "-timeout=25",
                    "-rss_limit_mb=4096", (char *)corpus, NULL};
    char *extra[] = {"ASAN_OPTIONS=detect_leaks=0:allocator_may_return_null=1", NULL};
    bool found = false;
    pid_t pid = spawn_logged(argv, log, extra);
    if (pid >= 0) {
        wait_exit(pid);
        FILE *f = fopen(log, "r");
        char line[1024];
        const char *p, *q;
        while (f && fgets(line, sizeof line, f)) {
            if (strstr(line, "INITED") && (p = strstr(line, "cov: ")) && (q = strstr(line, "ft: "))) {
                *edges = strtoull(p + 5, NULL, 10);
                *features = strtoull(q + 4, NULL, 10);
                found = true;
            }
        }
        if (f)
            fclose(f);
    }
    free(log);
    return found;
}

static void read_afl_stats(const char *path, progress *pg) {
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    char line[256];
    while (fgets(line, sizeof line, f)) {
        char key[64];
        double val;
        if (sscanf(line, "%63s : %lf", key, &val) != 2)
            continue;
        if (strcmp(key, "execs_done") == 0)
            pg->execs = (unsigned long long)val;
        else if (strcmp(key, "execs_per_sec") == 0)
            pg->exec_s = (unsigned long long)val;
        else if (strcmp(key, "corpus_count") == 0)
            pg->corpus = (unsigned long long)val;
        else if (strcmp(key, "edges_found") == 0)
            pg->cov = (unsigned long long)val;
    }
    pg->seen = true;
    fclose(f);
}

static void show_progress(const session *S, const progress *pg, double elapsed, double budget,
                          bool tty) {
    if (S->quiet)
        return;
    char t[64];
    if (budget > 0)
        snprintf(t, sizeof t, "%02d:%02d/%02d:%02d", (int)elapsed / 60, (int)elapsed % 60,
                 (int)budget / 60, (int)budget % 60);
    else
        snprintf(t, sizeof t, "%02d:%02d", (int)elapsed / 60, (int)elapsed % 60);
    fprintf(stderr, "%s[brine fuzz %s] %s  execs %llu  exec/s %llu  cov %llu  ft %llu  "
                    "corpus %llu  divergences %zu (%zu signatures)%s",
            tty ? "\r" : "", S->target, t, pg->execs, pg->exec_s, pg->cov, pg->ft, pg->corpus,
            S->new_findings + S->repeats, S->F.n, tty ? "   " : "\n");
    fflush(stderr);
}

/*------------------------------------------------------------------------------
 * Command line
 *----------------------------------------------------------------------------*/

static int usage_error(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "brine fuzz: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\nusage: brine fuzz [--target pkl_vs_cpython|pkl_load] "
                    "[--engine libfuzzer|afl] [--time S | --runs N] [--jobs J] [--work DIR] "
                    "[--fuzz-build DIR] [--seed S] [--no-minimize] [--quiet]\n");
    va_end(ap);
    return FUZZ_USAGE;
}

static volatile sig_atomic_t g_interrupted;

static void on_interrupt(int sig) {
    (void)sig;
    g_interrupted = 1;
}

int cmd_fuzz(int argc, char **argv) {
    const char *target = "pkl_vs_cpython", *engine = "libfuzzer";
    const char *work = NULL, *fuzz_build = NULL;
    double budget = 0;
    unsigned long long runs = 0, seed = 0;
    int jobs = 1;
    bool minimize = true, quiet = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--target") == 0 && val)
            target = argv[++i];
        else if (strcmp(a, "--engine") == 0 && val)
            engine = argv[++i];
        else if (strcmp(a, "--time") == 0 && val)
            budget = strtod(argv[++i], NULL);
        else if (strcmp(a, "--runs") == 0 && val)
            runs = strtoull(argv[++i], NULL, 10);
        else if (strcmp(a, "--jobs") == 0 && val)
            jobs = atoi(argv[++i]);
        else if (strcmp(a, "--work") == 0 && val)
            work = argv[++i];
        else if (strcmp(a, "--fuzz-build") == 0 && val)
            fuzz_build = argv[++i];
        else if (strcmp(a, "--seed") == 0 && val)
            seed = strtoull(argv[++i], NULL, 10);
        else if (strcmp(a, "--no-minimize") == 0)
            minimize = false;
        else if (strcmp(a, "--quiet") == 0)
            quiet = true;
        else
            return usage_error("unknown or incomplete argument %s", a);
    }
    if (strcmp(engine, "libfuzzer") != 0 && strcmp(engine, "afl") != 0)
        return usage_error("--engine is libfuzzer or afl");
    if (strcmp(target, "pkl_vs_cpython") != 0 && strcmp(target, "pkl_load") != 0)
        return usage_error("--target is pkl_vs_cpython or pkl_load");
    if ((budget > 0) == (runs > 0))
        return usage_error("give exactly one budget: --time SECONDS or --runs N");
    if (jobs < 1)
        return usage_error("--jobs wants a positive number");
    bool afl = strcmp(engine, "afl") == 0;
    if (afl && runs)
        return usage_error("--runs is for libFuzzer; AFL++ takes --time");

    /* the builds: nothing is built here */
    const char *src = BRINE_SOURCE_DIR;
    char *here = self_dir();
    char engine_bin[PATH_MAX], replay_bin[PATH_MAX], mutator_so[PATH_MAX];
    const char *fb = fuzz_build ? fuzz_build
                                : afl ? BRINE_SOURCE_DIR "/build-fuzz-afl"
                                      : BRINE_SOURCE_DIR "/build-fuzz-libfuzzer";
    snprintf(engine_bin, sizeof engine_bin, "%s/harness/fuzz/fuzz_%s%s", fb, target,
             afl ? "_afl" : "_structured");
    snprintf(mutator_so, sizeof mutator_so, "%s/harness/fuzz/libbrine_afl_mutator.so", fb);
    snprintf(replay_bin, sizeof replay_bin, "%s/harness/fuzz/fuzz_%s_replay", here, target);
    free(here);
    if (!is_file(engine_bin)) {
        fprintf(stderr,
                "brine fuzz: no %s build of fuzz_%s at %s\n"
                "build it first (brine fuzz builds nothing by surprise):\n"
                "    bash scripts/build_fuzzers.sh %s\n",
                engine, target, engine_bin, afl ? "afl" : "libfuzzer");
        return FUZZ_USAGE;
    }
    if (!is_file(replay_bin)) {
        fprintf(stderr, "brine fuzz: no replay build %s (it is part of every build of brine; "
                        "was fuzz_%s skipped at configure time?)\n",
                replay_bin, target);
        return FUZZ_USAGE;
    }

    /* the work folder: corpus (resumed), artifacts, findings, log */
    char *workdir = work ? xstrdup(work) : NULL;
    if (!workdir) {
        workdir = xmalloc(strlen(src) + strlen(target) + 32);
        sprintf(workdir, "%s/fuzz-work/%s", src, target);
    }
    char *corpus = path_join(workdir, "corpus"), *arts = path_join(workdir, "artifacts");
    char *fdir = path_join(workdir, "findings"), *tmp = path_join(workdir, "tmp");
    char *log = path_join(workdir, afl ? "afl.log" : "libfuzzer.log");
    if (make_dirs(corpus) || make_dirs(arts) || make_dirs(fdir) || make_dirs(tmp)) {
        fprintf(stderr, "brine fuzz: cannot create %s: %s\n", workdir, strerror(errno));
        return FUZZ_USAGE;
    }
    session S;
    memset(&S, 0, sizeof S);
    S.target = target;
    S.E.replay = replay_bin;
    S.E.tmpdir = tmp;
    S.F.dir = fdir;
    S.minimize = minimize;
    S.quiet = quiet;
    load_findings(&S.F);
    size_t resumed = S.F.n;

    /* the engine's command line */
    char a_dict[PATH_MAX + 8], a_art[PATH_MAX + 24], a_budget[64], a_jobs[32], a_seed[48];
    snprintf(a_dict, sizeof a_dict, "-dict=%s/corpus/pickle.dict", src);
    snprintf(a_art, sizeof a_art, "-artifact_prefix=%s/", arts);
    char *args[64];
    size_t na = 0;
    char *afl_out = path_join(workdir, "afl");
    char *seeds = path_join(workdir, "afl-seeds");
    if (!afl) {
        args[na++] = engine_bin;
        args[na++] = a_dict;
        args[na++] = a_art;
        args[na++] = "-max_len=4096";
        args[na++] = "-timeout=25";
        args[na++] = "-rss_limit_mb=4096";
        args[na++] = "-print_final_stats=1";
        if (budget > 0) {
            snprintf(a_budget, sizeof a_budget, "-max_total_time=%.0f", budget);
            args[na++] = a_budget;
            /* fork mode keeps going after a divergence: the run spends its whole budget */
            snprintf(a_jobs, sizeof a_jobs, "-fork=%d", jobs);
            args[na++] = a_jobs;
            args[na++] = "-ignore_crashes=1";
            args[na++] = "-ignore_timeouts=1";
            args[na++] = "-ignore_ooms=1";
        } else {
            snprintf(a_budget, sizeof a_budget, "-runs=%llu", runs);
            args[na++] = a_budget;
        }
        if (seed) {
            snprintf(a_seed, sizeof a_seed, "-seed=%llu", seed);
            args[na++] = a_seed;
        }
        args[na++] = corpus;
        static const char *const groups[] = {"cases", "regress"};
        static char seeddirs[2][PATH_MAX];
        for (size_t g = 0; g < 2; g++) {
            snprintf(seeddirs[g], sizeof seeddirs[g], "%s/corpus/%s", src, groups[g]);
            if (is_dir(seeddirs[g]))
                args[na++] = seeddirs[g];
        }
    } else {
        /* afl-fuzz wants one flat seed folder: the saved corpus, else brine's corpus */
        make_dirs(seeds);
        char cmd[3 * PATH_MAX];
        snprintf(cmd, sizeof cmd,
                 "find '%s/corpus/cases' '%s/corpus/regress' -type f -name '*.pkl' "
                 "-size -4k -exec cp -n {} '%s/' \\; 2>/dev/null",
                 src, src, seeds);
        if (system(cmd) != 0)
            fprintf(stderr, "brine fuzz: could not copy every seed into %s\n", seeds);
        snprintf(a_budget, sizeof a_budget, "%.0f", budget);
        args[na++] = "afl-fuzz";
        args[na++] = "-i";
        args[na++] = is_dir(afl_out) ? "-" : seeds; /* "-": resume */
        args[na++] = "-o";
        args[na++] = afl_out;
        args[na++] = "-x";
        snprintf(a_dict, sizeof a_dict, "%s/corpus/pickle.dict", src);
        args[na++] = a_dict;
        args[na++] = "-V";
        args[na++] = a_budget;
        args[na++] = "-t";
        args[na++] = "25000";
        args[na++] = "--";
        args[na++] = engine_bin;
    }
    args[na] = NULL;

    char env_mut[PATH_MAX + 64];
    snprintf(env_mut, sizeof env_mut, "AFL_CUSTOM_MUTATOR_LIBRARY=%s", mutator_so);
    /* afl-fuzz insists on symbolize=0 (it symbolizes nothing itself) */
    char *extra[] = {afl ? "ASAN_OPTIONS=detect_leaks=0:allocator_may_return_null=1:"
                           "abort_on_error=1:symbolize=0"
                         : "ASAN_OPTIONS=detect_leaks=0:allocator_may_return_null=1:"
                           "abort_on_error=1",
                     "AFL_SKIP_CPUFREQ=1", "AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1",
                     "AFL_NO_UI=1", env_mut, NULL};
    if (!quiet) {
        fprintf(stderr, "brine fuzz: fuzz_%s under %s; work folder %s%s\n", target, engine,
                workdir, resumed ? " (resuming: findings and corpus of earlier runs)" : "");
        if (budget > 0)
            fprintf(stderr, "brine fuzz: budget %.0f s, %d job(s)\n", budget, jobs);
        else
            fprintf(stderr, "brine fuzz: budget %llu executions\n", runs);
    }
    FILE *logf = fopen(log, "a+");
    if (logf)
        fseek(logf, 0, SEEK_END);
    struct sigaction sa, old_int, old_term;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_interrupt;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);

    double t0 = now();
    pid_t pid = spawn_logged(args, log, extra);
    if (pid < 0)
        return FUZZ_USAGE;
    bool tty = isatty(STDERR_FILENO);
    progress pg;
    memset(&pg, 0, sizeof pg);
    char *afl_stats = path_join(afl_out, "default/fuzzer_stats");
    char *afl_crashes = path_join(afl_out, "default/crashes");
    int status = -1;
    double last_show = 0;
    for (;;) {
        int st;
        pid_t w = waitpid(pid, &st, WNOHANG);
        if (w == pid) {
            status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
            break;
        }
        if (g_interrupted) {
            kill(-pid, SIGINT);
            g_interrupted = 0;
        }
        if (budget > 0 && now() - t0 > budget + 120) {
            /* the engine overran its own budget by far: stop it */
            kill(-pid, SIGKILL);
        }
        if (logf && !afl)
            read_libfuzzer_log(logf, &pg);
        if (afl)
            read_afl_stats(afl_stats, &pg);
        scan_artifacts(&S, afl ? afl_crashes : arts);
        double t = now();
        if (t - last_show >= (tty ? 1.0 : 10.0)) {
            show_progress(&S, &pg, t - t0, budget, tty);
            last_show = t;
        }
        struct timespec nap = {0, 250 * 1000 * 1000};
        nanosleep(&nap, NULL);
    }
    if (logf) {
        read_libfuzzer_log(logf, &pg);
        fclose(logf);
    }
    if (afl)
        read_afl_stats(afl_stats, &pg);
    scan_artifacts(&S, afl ? afl_crashes : arts);
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    double elapsed = now() - t0;
    show_progress(&S, &pg, elapsed, budget, false);

    /* summary */
    unsigned long long edges = pg.cov, features = pg.ft;
    bool measured = false;
    if (!afl && budget > 0 && pg.seen) {
        if (!quiet)
            fprintf(stderr, "brine fuzz: measuring the coverage of the saved corpus\n");
        measured = corpus_coverage(engine_bin, corpus, tmp, &edges, &features);
    }
    printf("brine fuzz: fuzz_%s under %s: %.0f s, %llu executions (%.0f exec/s), "
           "coverage %llu edges / %llu features%s, corpus %llu inputs\n",
           target, engine, elapsed, pg.execs, elapsed > 0 ? (double)pg.execs / elapsed : 0.0,
           edges, features, measured ? " (one pass over the saved corpus)" : "", pg.corpus);
    printf("brine fuzz: engine exit status %d; %zu saved inputs examined: %zu new findings, "
           "%zu repeats of known ones, %zu the replay build does not reproduce; "
           "%zu distinct findings in %s\n",
           status, S.handled, S.new_findings, S.repeats, S.unreproduced, S.F.n, fdir);
    for (size_t i = 0; i < S.F.n; i++)
        printf("  %s  x%zu  %s\n", S.F.v[i].id, S.F.v[i].count, S.F.v[i].signature);
    if (!pg.seen)
        printf("brine fuzz: the engine reported no progress (exit status %d); its output is in %s\n",
               status, log);
    int rc = S.F.n ? FUZZ_FINDINGS : 0;
    if (!pg.seen && status != 0)
        rc = FUZZ_USAGE;
    for (size_t i = 0; i < S.F.n; i++) {
        free(S.F.v[i].signature);
        free(S.F.v[i].id);
        for (size_t k = 0; k < S.F.v[i].naliases; k++)
            free(S.F.v[i].aliases[k]);
        free(S.F.v[i].aliases);
    }
    free(S.F.v);
    for (size_t i = 0; i < S.nseen; i++)
        free(S.seen[i]);
    free(S.seen);
    free(afl_stats);
    free(afl_crashes);
    free(afl_out);
    free(seeds);
    free(corpus);
    free(arts);
    free(fdir);
    free(tmp);
    free(log);
    free(workdir);
    return rc;
}
