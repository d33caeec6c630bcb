/* brine run: cases through implementations, judged against the oracle.
 *
 *   brine run [--impl NAME]... [--adapter NAME=CMD]... [--one-shot NAME=CMD]...
 *             [--corpus DIR] [--group G]... [--oracle NAME]... [--level raw|value]
 *             [--timeout S] [--window N] [--isolate] [--json FILE] [--junit FILE]
 *             [--coverage [--markdown]] [--check-coverage] [--policy]
 *             [--max-report N] [--no-diff] [--quiet]
 *
 * Cases come from a corpus (manifests with the oracles' recorded answers,
 * docs/corpus-format.md) or from a plain folder of pickles, whose
 * expectations the live oracle computes first: the newest CPython found,
 * C unpickler (primary) and Python unpickler; a case where the two differ is
 * implementation-defined (either answer is acceptable).
 *
 * Implementations: `pkl` runs libpkl in this process (fast; a crash of libpkl
 * then ends the run, naming the case: --isolate runs it through `brine serve`
 * instead, where a crash costs one case); any name `brine impls` lists runs
 * through its adapter; --adapter NAME=CMD and --one-shot NAME=CMD run any
 * program (a shell command line) speaking docs/adapter-protocol.md.
 *
 * Verdicts (harness/verdict.h): pass, acceptable, oracle-limit, refused,
 * trace-mismatch, mismatch, accept-vs-reject, safety-mismatch, timeout,
 * crash. Exit 0 when every verdict is pass, acceptable or oracle-limit
 * (with --policy, refused too; with --check-coverage, no coverage hole
 * either); 1 otherwise; 2 usage or setup error.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "adapter.h"
#include "fold.h"
#include "corpus.h"
#include "cover.h"
#include "json.h"
#include "pkl.h"
#include "pkl_answer.h"
#include "serve.h"
#include "verdict.h"

enum { RUN_FAIL = 1, RUN_USAGE = 2 };

/* What a failure keeps of the implementation's answer, for diffs and JSON. */
#define KEEP_MAX ((size_t)64 << 10)

/*------------------------------------------------------------------------------
 * Small helpers
 *----------------------------------------------------------------------------*/

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static char *dup_n(const char *s, size_t n) {
    char *d = malloc(n + 1);
    if (!d) {
        fprintf(stderr, "brine run: out of memory\n");
        exit(RUN_USAGE);
    }
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

static char *dup_s(const char *s) { return dup_n(s, strlen(s)); }

static void *xcalloc(size_t n, size_t size) {
    void *p = calloc(n ? n : 1, size);
    if (!p) {
        fprintf(stderr, "brine run: out of memory\n");
        exit(RUN_USAGE);
    }
    return p;
}

/* The path of this executable, to run `brine impls --json` and `brine serve`. */
static const char *self_exe(void) {
    static char path[PATH_MAX];
    if (!path[0]) {
        ssize_t n = readlink("/proc/self/exe", path, sizeof path - 1);
        if (n <= 0)
            snprintf(path, sizeof path, "brine");
        else
            path[n] = '\0';
    }
    return path;
}

/*------------------------------------------------------------------------------
 * Implementations
 *----------------------------------------------------------------------------*/

typedef struct impl {
    char *name;           /* as asked for */
    bool in_process;      /* libpkl here */
    bool one_shot;
    char **argv, **env;   /* NULL-terminated (adapters) */
    /* after the run */
    char *label;          /* name, version, level, features as the hello said */
    int level;            /* 0 raw, 1 value */
    bool has_trace;
    int highest_protocol; /* from the hello; -1 unknown */
    size_t counts[BRINE_V_COUNT];
    double seconds;
    bool started;
    char start_error[256];
} impl;

/* --policy: the implementation is a restricted unpickler, and its refusals
   (`refused`) are its job, not failures. Safety misses still are. */
static bool g_policy;

static bool ok_verdict(brine_verdict v) {
    return brine_verdict_ok(v) || (g_policy && v == BRINE_V_REFUSED);
}

typedef struct outcome {
    brine_verdict v;
    char detail[200];
    size_t which;       /* the answer compared against */
    char *got;          /* failures only: the answer's document (bounded) */
    char *got_trace;
    double seconds;
} outcome;

static char **argv_sh(const char *cmd) {
    char **v = xcalloc(4, sizeof *v);
    v[0] = dup_s("/bin/sh");
    v[1] = dup_s("-c");
    v[2] = dup_s(cmd);
    return v;
}

static void free_strv(char **v) {
    if (!v)
        return;
    for (size_t i = 0; v[i]; i++)
        free(v[i]);
    free(v);
}

/* `brine impls --json`, parsed; NULL (with a message) when it cannot run. */
static brine_json_doc *discover(void) {
    static brine_json_doc *cached;
    static bool tried;
    if (tried)
        return cached;
    tried = true;
    char cmd[PATH_MAX + 32];
    snprintf(cmd, sizeof cmd, "'%s' impls --json", self_exe());
    FILE *p = popen(cmd, "r");
    if (!p) {
        fprintf(stderr, "brine run: cannot run %s: %s\n", cmd, strerror(errno));
        return NULL;
    }
    char *buf = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (len == cap) {
            cap = cap ? cap * 2 : 65536;
            char *nb = realloc(buf, cap);
            if (!nb) {
                free(buf);
                pclose(p);
                return NULL;
            }
            buf = nb;
        }
        size_t k = fread(buf + len, 1, cap - len, p);
        len += k;
        if (!k)
            break;
    }
    int st = pclose(p);
    char err[256];
    cached = st == 0 ? brine_json_parse(buf, len, err, sizeof err) : NULL;
    if (!cached)
        fprintf(stderr, "brine run: implementation discovery failed (%s)\n",
                st == 0 ? err : "brine impls --json exited with an error");
    free(buf);
    return cached;
}

static char **json_strv(const brine_json *arr, bool env) {
    size_t n = arr && (arr->type == BRINE_JSON_ARRAY || arr->type == BRINE_JSON_OBJECT)
                   ? arr->len
                   : 0;
    char **v = xcalloc(n + 1, sizeof *v);
    for (size_t i = 0; i < n; i++) {
        const brine_json *x = arr->items[i];
        if (x->type != BRINE_JSON_STRING)
            continue;
        if (env) {
            size_t kl = strlen(arr->keys[i]);
            v[i] = xcalloc(kl + x->len + 2, 1);
            memcpy(v[i], arr->keys[i], kl);
            v[i][kl] = '=';
            memcpy(v[i] + kl + 1, x->str, x->len);
        } else {
            v[i] = dup_n(x->str, x->len);
        }
    }
    return v;
}

/* Fills argv/env of a discovered implementation; false (with a message)
   when it is unknown or not servable. */
static bool resolve_impl(impl *im) {
    brine_json_doc *d = discover();
    if (!d)
        return false;
    const brine_json *list = brine_json_root(d);
    for (size_t i = 0; list->type == BRINE_JSON_ARRAY && i < list->len; i++) {
        const brine_json *e = list->items[i];
        if (strcmp(brine_json_get_str(e, "name", ""), im->name) != 0)
            continue;
        const brine_json *serv = brine_json_get(e, "servable");
        if (!serv || serv->type != BRINE_JSON_TRUE) {
            fprintf(stderr, "brine run: %s is not servable here: %s\n", im->name,
                    brine_json_get_str(e, "note", ""));
            return false;
        }
        im->argv = json_strv(brine_json_get(e, "argv"), false);
        im->env = json_strv(brine_json_get(e, "env"), true);
        return true;
    }
    fprintf(stderr, "brine run: no implementation named %s here (see `brine impls`)\n",
            im->name);
    return false;
}

/* The newest servable CPython's C and Python unpicklers: the live oracle. */
static bool default_oracles(char **c_name, char **py_name) {
    brine_json_doc *d = discover();
    if (!d)
        return false;
    const brine_json *list = brine_json_root(d);
    int best_major = -1, best_minor = -1;
    const char *best = NULL;
    for (size_t i = 0; list->type == BRINE_JSON_ARRAY && i < list->len; i++) {
        const brine_json *e = list->items[i];
        const brine_json *serv = brine_json_get(e, "servable");
        const char *name = brine_json_get_str(e, "name", "");
        int ma, mi;
        if (!serv || serv->type != BRINE_JSON_TRUE ||
            strcmp(brine_json_get_str(e, "implementation", ""), "cpython") != 0 ||
            strcmp(brine_json_get_str(e, "unpickler", ""), "c") != 0 ||
            sscanf(name, "cpython-%d.%d-c", &ma, &mi) != 2 || ma < 3)
            continue;
        if (ma > best_major || (ma == best_major && mi > best_minor)) {
            best_major = ma;
            best_minor = mi;
            best = name;
        }
    }
    if (!best) {
        fprintf(stderr, "brine run: no CPython 3.6+ found to act as the oracle\n");
        return false;
    }
    *c_name = dup_s(best);
    *py_name = dup_s(best);
    (*py_name)[strlen(best) - 1] = '\0';
    char *t = xcalloc(strlen(*py_name) + 3, 1);
    sprintf(t, "%spy", *py_name);
    free(*py_name);
    *py_name = t;
    return true;
}

/*------------------------------------------------------------------------------
 * Running one implementation over all cases
 *----------------------------------------------------------------------------*/

typedef void (*answer_fn)(void *ctx, size_t i, const brine_response *r);

/* In-process libpkl: a fatal signal or a hang names the case before dying. */
static volatile sig_atomic_t g_case = -1;
static const brine_corpus *g_corpus;

static void write_str(const char *s) {
    ssize_t r = write(STDERR_FILENO, s, strlen(s));
    (void)r;
}

static void on_fatal(int sig) {
    write_str("\nbrine run: libpkl died in process (signal ");
    char num[16];
    int n = sig, k = 0;
    char tmp[16];
    do {
        tmp[k++] = (char)('0' + n % 10);
        n /= 10;
    } while (n && k < 15);
    for (int i = 0; i < k; i++)
        num[i] = tmp[k - 1 - i];
    num[k] = '\0';
    write_str(sig == SIGALRM ? "SIGALRM: timeout" : num);
    write_str(") on case ");
    if (g_case >= 0 && g_corpus) {
        const brine_case_rec *c = &g_corpus->cases[g_case];
        if (c->group[0]) {
            write_str(c->group);
            write_str("/");
        }
        write_str(c->id);
        write_str(" (");
        write_str(c->path);
        write_str(")");
    }
    write_str("; rerun with --isolate to record it as one crash and go on\n");
    signal(sig, SIG_DFL);
    raise(sig == SIGALRM ? SIGABRT : sig);
}

static void run_in_process(const brine_corpus *corpus, double timeout, answer_fn fn,
                           void *ctx) {
    static const int sigs[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT, SIGALRM};
    struct sigaction sa, old[6];
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_fatal;
    sigemptyset(&sa.sa_mask);
    for (size_t k = 0; k < 6; k++)
        sigaction(sigs[k], &sa, &old[k]);
    g_corpus = corpus;
    for (size_t i = 0; i < corpus->n; i++) {
        const brine_case_rec *c = &corpus->cases[i];
        g_case = (sig_atomic_t)i;
        struct itimerval it;
        memset(&it, 0, sizeof it);
        if (timeout > 0) {
            it.it_value.tv_sec = (time_t)timeout;
            it.it_value.tv_usec = (suseconds_t)((timeout - (double)(time_t)timeout) * 1e6);
            setitimer(ITIMER_REAL, &it, NULL);
        }
        double t0 = now();
        brine_pkl_answer ans;
        brine_response r;
        memset(&r, 0, sizeof r);
        if (brine_pkl_answer_load(c->data, c->len, NULL, &ans) != 0) {
            r.status = BRINE_CRASH;
            snprintf(r.detail, sizeof r.detail, "libpkl could not allocate its answer");
        } else {
            r.status = BRINE_OK;
            r.text = ans.text;
            r.text_len = ans.text_len;
            r.trace = ans.trace;
            r.trace_len = ans.trace_len;
        }
        r.seconds = now() - t0;
        memset(&it, 0, sizeof it);
        setitimer(ITIMER_REAL, &it, NULL);
        fn(ctx, i, &r);
        brine_pkl_answer_free(&ans);
    }
    g_case = -1;
    for (size_t k = 0; k < 6; k++)
        sigaction(sigs[k], &old[k], NULL);
}

typedef struct run_opts {
    double timeout;
    size_t window;
    bool quiet_adapters;
} run_opts;

/* Starts an adapter for im; NULL with im->start_error on failure. */
static brine_adapter *start_adapter(impl *im, const run_opts *ro) {
    brine_adapter_opts ao;
    memset(&ao, 0, sizeof ao);
    ao.argv = (const char *const *)im->argv;
    ao.env = (const char *const *)im->env;
    ao.one_shot = im->one_shot;
    ao.name = im->name;
    ao.timeout = ro->timeout;
    ao.window = ro->window;
    ao.quiet = ro->quiet_adapters;
    return brine_adapter_start(&ao, im->start_error, sizeof im->start_error);
}

static bool run_impl_cases(impl *im, const brine_corpus *corpus, const run_opts *ro,
                           answer_fn fn, void *ctx) {
    double t0 = now();
    if (im->in_process) {
        im->label = dup_s("pkl (libpkl " PKL_VERSION_STRING ", in process, level raw, trace)");
        im->level = 0;
        im->has_trace = true;
        im->highest_protocol = PKL_HIGHEST_PROTOCOL;
        im->started = true;
        run_in_process(corpus, ro->timeout, fn, ctx);
        im->seconds = now() - t0;
        return true;
    }
    brine_adapter *a = start_adapter(im, ro);
    if (!a)
        return false;
    im->started = true;
    im->level = strcmp(brine_adapter_level(a), "value") == 0;
    im->has_trace = brine_adapter_has_feature(a, "trace");
    im->highest_protocol = brine_adapter_highest_protocol(a);
    char label[512];
    snprintf(label, sizeof label, "%s (%s %s, level %s%s%s)", im->name, brine_adapter_name(a),
             brine_adapter_version(a), brine_adapter_level(a),
             *brine_adapter_features(a) ? ", " : "", brine_adapter_features(a));
    im->label = dup_s(label);
    brine_case *cases = xcalloc(corpus->n, sizeof *cases);
    for (size_t i = 0; i < corpus->n; i++) {
        cases[i].data = corpus->cases[i].data;
        cases[i].len = corpus->cases[i].len;
    }
    brine_adapter_run(a, cases, corpus->n, fn, ctx);
    free(cases);
    brine_adapter_close(a);
    im->seconds = now() - t0;
    return true;
}

/*------------------------------------------------------------------------------
 * The live oracle (plain folders)
 *----------------------------------------------------------------------------*/

typedef struct oracle_run {
    brine_text *ans; /* per case */
    bool *failed;    /* the oracle crashed or timed out on the case */
} oracle_run;

static void keep_oracle_answer(void *ctx, size_t i, const brine_response *r) {
    oracle_run *o = ctx;
    if (r->status != BRINE_OK) {
        o->failed[i] = true;
        return;
    }
    o->ans[i].text = dup_n(r->text, r->text_len);
    o->ans[i].len = r->text_len;
    o->ans[i].trace = r->trace ? dup_n(r->trace, r->trace_len) : NULL;
    o->ans[i].trace_len = r->trace ? r->trace_len : 0;
}

static bool is_limit(const brine_text *t) {
    const char *cls;
    size_t n;
    return brine_doc_is_error(t->text, t->len, &cls, &n) && n == 14 &&
           memcmp(cls, "resource-limit", 14) == 0;
}

static bool same_text(const brine_text *a, const brine_text *b) {
    return a->len == b->len && memcmp(a->text, b->text, a->len) == 0 &&
           (a->trace == NULL) == (b->trace == NULL) &&
           (!a->trace || (a->trace_len == b->trace_len &&
                          memcmp(a->trace, b->trace, a->trace_len) == 0));
}

/* Asks the oracles (primary first) about every case of a plain folder. */
static bool live_expectations(brine_corpus *corpus, char **oracles, size_t noracles,
                              const run_opts *ro, bool quiet) {
    oracle_run *runs = xcalloc(noracles, sizeof *runs);
    bool ok = true;
    for (size_t k = 0; k < noracles && ok; k++) {
        impl o;
        memset(&o, 0, sizeof o);
        o.name = oracles[k];
        if (!resolve_impl(&o)) {
            ok = false;
            break;
        }
        runs[k].ans = xcalloc(corpus->n, sizeof *runs[k].ans);
        runs[k].failed = xcalloc(corpus->n, sizeof *runs[k].failed);
        if (!quiet)
            fprintf(stderr, "brine run: computing expectations with oracle %s ...\n", o.name);
        if (!run_impl_cases(&o, corpus, ro, keep_oracle_answer, &runs[k])) {
            fprintf(stderr, "brine run: oracle %s: %s\n", o.name, o.start_error);
            ok = false;
        }
        free_strv(o.argv);
        free_strv(o.env);
        free(o.label);
    }
    size_t limits = 0, differ = 0, failed = 0;
    for (size_t i = 0; ok && i < corpus->n; i++) {
        brine_case_rec *c = &corpus->cases[i];
        brine_text got[8];
        size_t n = 0;
        bool primary_failed = runs[0].failed[i];
        for (size_t k = 0; k < noracles && n < 8; k++) {
            if (runs[k].failed[i])
                continue;
            bool dup = false;
            for (size_t j = 0; j < n && !dup; j++)
                dup = same_text(&got[j], &runs[k].ans[i]);
            if (!dup)
                got[n++] = runs[k].ans[i];
        }
        if (n == 0) {
            /* no oracle answered: nothing can be judged */
            static const char none[] = "brine-canonical 1 raw\nerror resource-limit\n";
            got[n++] = (brine_text){none, sizeof none - 1, NULL, 0};
            c->oracle_limit = true;
            failed++;
        } else if (primary_failed || is_limit(&got[0])) {
            c->oracle_limit = true;
            limits++;
        }
        c->acceptable = n > 1;
        differ += n > 1;
        free(c->result);
        c->result = dup_s(c->oracle_limit ? "unknown"
                          : c->acceptable  ? "acceptable"
                          : brine_doc_is_error(got[0].text, got[0].len, NULL, NULL)
                              ? "invalid"
                              : "valid");
        if (brine_case_set_answers(c, got, n) != 0) {
            fprintf(stderr, "brine run: out of memory\n");
            ok = false;
        }
    }
    if (ok && !quiet)
        fprintf(stderr,
                "brine run: live oracle: %zu cases, %zu where the oracles differ "
                "(acceptable), %zu where the primary hit a limit, %zu unanswered\n",
                corpus->n, differ, limits, failed);
    for (size_t k = 0; k < noracles; k++) {
        for (size_t i = 0; runs[k].ans && i < corpus->n; i++) {
            free((char *)runs[k].ans[i].text);
            free((char *)runs[k].ans[i].trace);
        }
        free(runs[k].ans);
        free(runs[k].failed);
    }
    free(runs);
    return ok;
}

/*------------------------------------------------------------------------------
 * Judging (with value-level normalization where asked)
 *----------------------------------------------------------------------------*/

typedef struct judge_ctx {
    brine_corpus *corpus;
    impl *im;
    int level;             /* level of the comparison */
    outcome *out;          /* per case */
    brine_text **norm;     /* value level: normalized answers per case (lazy) */
} judge_ctx;

static void keep_failure(outcome *o, const brine_response *r) {
    if (r->text) {
        size_t n = r->text_len < KEEP_MAX ? r->text_len : KEEP_MAX;
        o->got = dup_n(r->text, n);
    }
    if (r->trace) {
        size_t n = r->trace_len < KEEP_MAX ? r->trace_len : KEEP_MAX;
        o->got_trace = dup_n(r->trace, n);
    }
}

/* The answers of case i at the comparison level. */
static int level_of(const judge_ctx *J) { return J->level || J->im->level; }

static const brine_text *answers_at(judge_ctx *J, size_t i) {
    brine_case_rec *c = &J->corpus->cases[i];
    if (level_of(J) == 0)
        return c->answers;
    if (!J->norm[i]) {
        brine_text *v = xcalloc(c->nanswers, sizeof *v);
        for (size_t k = 0; k < c->nanswers; k++) {
            pkl_err err;
            size_t len = 0;
            char *t = brine_canon_normalize(c->answers[k].text, c->answers[k].len, 1, &len, &err);
            if (!t) {
                fprintf(stderr, "brine run: the oracle's answer to %s/%s does not parse: %s\n",
                        c->group, c->id, err.msg ? err.msg : "?");
                exit(RUN_USAGE);
            }
            v[k] = c->answers[k];
            v[k].text = t;
            v[k].len = len;
        }
        J->norm[i] = v;
    }
    return J->norm[i];
}

static void judge_one(void *ctx, size_t i, const brine_response *r) {
    judge_ctx *J = ctx;
    brine_case_rec *c = &J->corpus->cases[i];
    outcome *o = &J->out[i];
    o->seconds = r->seconds;
    if (r->status != BRINE_OK) {
        o->v = r->status == BRINE_TIMEOUT ? BRINE_V_TIMEOUT : BRINE_V_CRASH;
        snprintf(o->detail, sizeof o->detail, "%s", r->detail);
        J->im->counts[o->v]++;
        return;
    }
    brine_expectation e = {answers_at(J, i), c->nanswers, c->acceptable, c->limit_ok,
                           c->oracle_limit};
    brine_text got = {r->text, r->text_len, J->im->has_trace ? r->trace : NULL,
                      J->im->has_trace && r->trace ? r->trace_len : 0};
    char *norm = NULL;
    if (level_of(J) == 1) {
        pkl_err err;
        size_t len = 0;
        norm = brine_canon_normalize(r->text, r->text_len, 1, &len, &err);
        if (!norm) {
            o->v = BRINE_V_MISMATCH;
            snprintf(o->detail, sizeof o->detail, "malformed canonical text (byte %zu): %s",
                     err.pos, err.msg ? err.msg : "?");
            keep_failure(o, r);
            J->im->counts[o->v]++;
            return;
        }
        got.text = norm;
        got.len = len;
    }
    o->v = brine_judge(&e, &got, o->detail, sizeof o->detail, &o->which);
    if (!brine_verdict_ok(o->v) && J->im->highest_protocol >= 0 &&
        c->protocol > J->im->highest_protocol) {
        snprintf(o->detail, sizeof o->detail,
                 "protocol %d is above the implementation's highest, %d", c->protocol,
                 J->im->highest_protocol);
        o->v = BRINE_V_OUT_OF_SCOPE;
    }
    if (!ok_verdict(o->v)) {
        brine_response kept = *r;
        if (norm) {
            kept.text = norm;
            kept.text_len = got.len;
        }
        keep_failure(o, &kept);
    }
    free(norm);
    J->im->counts[o->v]++;
}

/*------------------------------------------------------------------------------
 * Reports
 *----------------------------------------------------------------------------*/

/* Both documents around their first difference. */
static void print_diff(const char *want, const char *got) {
    const char *a = want, *b = got;
    size_t line = 0;
    while (*a && *b) {
        const char *ea = strchr(a, '\n'), *eb = strchr(b, '\n');
        size_t la = ea ? (size_t)(ea - a) : strlen(a), lb = eb ? (size_t)(eb - b) : strlen(b);
        if (la != lb || memcmp(a, b, la) != 0)
            break;
        a += la + (ea != NULL);
        b += lb + (eb != NULL);
        line++;
    }
    for (int side = 0; side < 2; side++) {
        const char *p = side ? b : a;
        printf("    %s (from line %zu):\n", side ? "got" : "expected", line + 1);
        for (int k = 0; k < 8 && *p; k++) {
            const char *e = strchr(p, '\n');
            size_t n = e ? (size_t)(e - p) : strlen(p);
            printf("      %c %.*s%s\n", side ? '+' : '-', (int)(n > 120 ? 120 : n), p,
                   n > 120 ? "..." : "");
            p += n + (e != NULL);
        }
        if (!*p && side == 0 && !*a)
            printf("      - (end of document)\n");
    }
}

static void print_failures(const impl *im, const brine_corpus *corpus, const outcome *out,
                           brine_text *const *norm, size_t max_report, bool diff) {
    size_t shown = 0, failed = 0;
    for (size_t i = 0; i < corpus->n; i++) {
        if (ok_verdict(out[i].v))
            continue;
        failed++;
        if (shown >= max_report)
            continue;
        shown++;
        const brine_case_rec *c = &corpus->cases[i];
        printf("  %s %s%s%s [%s, protocol %d]: %s\n", brine_verdict_name(out[i].v), c->group,
               c->group[0] ? "/" : "", c->id, c->result[0] ? c->result : "?", c->protocol,
               out[i].detail);
        if (c->description[0])
            printf("    case: %s\n", c->description);
        if (diff && out[i].got && c->nanswers) {
            const brine_text *w = norm[i] ? norm[i] : c->answers;
            w += out[i].which < c->nanswers ? out[i].which : 0;
            print_diff(w->text, out[i].got);
        }
    }
    if (failed > shown)
        printf("  ... and %zu more failures of %s (all of them: --json FILE, or --max-report)\n",
               failed - shown, im->name);
}

static void print_summary(const impl *im, size_t ncases, int level) {
    printf("%s%s: %zu cases in %.2f s (%.0f cases/s):", im->label,
           level && !im->level ? " [compared at value level]" : "", ncases, im->seconds,
           im->seconds > 0 ? (double)ncases / im->seconds : 0.0);
    const char *sep = " ";
    for (int v = 0; v < BRINE_V_COUNT; v++) {
        if (!im->counts[v] && v > BRINE_V_ACCEPTABLE)
            continue;
        printf("%s%zu %s", sep, im->counts[v], brine_verdict_name((brine_verdict)v));
        sep = ", ";
    }
    printf("\n");
}

static void json_kv_str(FILE *f, const char *key, const char *s, bool comma) {
    brine_json_write_str(f, key, strlen(key));
    fputc(':', f);
    brine_json_write_str(f, s, strlen(s));
    if (comma)
        fputc(',', f);
}

static void write_coverage_json(FILE *f, const brine_coverage *cov);

static bool write_json(const char *path, const char *corpus_dir, int level, impl *impls,
                       size_t nimpls, const brine_corpus *corpus, outcome **outs,
                       const brine_coverage *cov) {
    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "brine run: %s: %s\n", path, strerror(errno));
        return false;
    }
    fprintf(f, "{\"format\":1,");
    json_kv_str(f, "brine_version", PKL_VERSION_STRING, true);
    fprintf(f, "\"policy\":%s,", g_policy ? "true" : "false");
    json_kv_str(f, "corpus", corpus_dir, true);
    json_kv_str(f, "level", level ? "value" : "raw", true);
    fprintf(f, "\"cases\":%zu,\"implementations\":[", corpus->n);
    for (size_t k = 0; k < nimpls; k++) {
        const impl *im = &impls[k];
        fprintf(f, "%s\n{", k ? "," : "");
        json_kv_str(f, "name", im->name, true);
        json_kv_str(f, "label", im->label ? im->label : "", true);
        json_kv_str(f, "start_error", im->start_error, true);
        fprintf(f, "\"seconds\":%.3f,\"summary\":{", im->seconds);
        for (int v = 0; v < BRINE_V_COUNT; v++)
            fprintf(f, "%s\"%s\":%zu", v ? "," : "", brine_verdict_name((brine_verdict)v),
                    im->counts[v]);
        fprintf(f, "}}");
    }
    fprintf(f, "],\n\"results\":[");
    bool first = true;
    for (size_t k = 0; k < nimpls; k++) {
        if (!outs[k] || !impls[k].started)
            continue; /* never ran: no verdicts (its start_error says why) */
        for (size_t i = 0; i < corpus->n; i++) {
            const brine_case_rec *c = &corpus->cases[i];
            const outcome *o = &outs[k][i];
            fprintf(f, "%s\n{", first ? "" : ",");
            first = false;
            json_kv_str(f, "impl", impls[k].name, true);
            json_kv_str(f, "group", c->group, true);
            json_kv_str(f, "id", c->id, true);
            json_kv_str(f, "path", c->path, true);
            json_kv_str(f, "result", c->result, true);
            json_kv_str(f, "description", c->description, true);
            json_kv_str(f, "verdict", brine_verdict_name(o->v), true);
            json_kv_str(f, "detail", o->detail, true);
            fprintf(f, "\"protocol\":%d,\"seconds\":%.6f", c->protocol, o->seconds);
            if (o->got) {
                /* the answer it was compared with (raw level), bounded like `got` */
                size_t ans = o->which < c->nanswers ? o->which : 0;
                const brine_text *w = c->nanswers ? &c->answers[ans] : NULL;
                if (w) {
                    fputc(',', f);
                    brine_json_write_str(f, "expected", 8);
                    fputc(':', f);
                    brine_json_write_str(f, w->text, w->len < KEEP_MAX ? w->len : KEEP_MAX);
                    if (w->trace) {
                        fputc(',', f);
                        brine_json_write_str(f, "expected_trace", 14);
                        fputc(':', f);
                        brine_json_write_str(f, w->trace,
                                             w->trace_len < KEEP_MAX ? w->trace_len : KEEP_MAX);
                    }
                }
                fputc(',', f);
                json_kv_str(f, "got", o->got, o->got_trace != NULL);
                if (o->got_trace)
                    json_kv_str(f, "got_trace", o->got_trace, false);
            }
            fputc('}', f);
        }
    }
    fprintf(f, "\n]");
    if (cov)
        write_coverage_json(f, cov);
    fprintf(f, "}\n");
    bool ok = fflush(f) == 0 && !ferror(f);
    ok = (fclose(f) == 0) && ok;
    if (!ok)
        fprintf(stderr, "brine run: error writing %s\n", path);
    return ok;
}

/* XML character data: the five specials escaped, control characters (not
   allowed in XML 1.0) shown as \xNN. */
static void xml_text(FILE *f, const char *s) {
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '<')
            fputs("&lt;", f);
        else if (c == '>')
            fputs("&gt;", f);
        else if (c == '&')
            fputs("&amp;", f);
        else if (c == '"')
            fputs("&quot;", f);
        else if (c == '\'')
            fputs("&apos;", f);
        else if (c < 0x20 && c != '\n' && c != '\t')
            fprintf(f, "\\x%02x", c);
        else
            fputc(c, f);
    }
}

/* JUnit XML for CI services: one testsuite per implementation, one
   testcase per case; failures carry the verdict and the reason, and
   oracle-limit / out-of-scope cases are `skipped` (never counted as passed). */
static bool write_junit(const char *path, impl *impls, size_t nimpls,
                        const brine_corpus *corpus, outcome **outs) {
    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "brine run: %s: %s\n", path, strerror(errno));
        return false;
    }
    fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"brine run\">\n");
    for (size_t k = 0; k < nimpls; k++) {
        const impl *im = &impls[k];
        if (!outs[k] || !im->started)
            continue;
        size_t failures = 0, skipped = 0;
        for (size_t i = 0; i < corpus->n; i++) {
            brine_verdict v = outs[k][i].v;
            failures += !ok_verdict(v);
            skipped += v == BRINE_V_ORACLE_LIMIT || v == BRINE_V_OUT_OF_SCOPE;
        }
        fprintf(f, "<testsuite name=\"");
        xml_text(f, im->name);
        fprintf(f, "\" tests=\"%zu\" failures=\"%zu\" skipped=\"%zu\" time=\"%.3f\">\n",
                corpus->n, failures, skipped, im->seconds);
        for (size_t i = 0; i < corpus->n; i++) {
            const brine_case_rec *c = &corpus->cases[i];
            const outcome *o = &outs[k][i];
            fprintf(f, "<testcase classname=\"");
            xml_text(f, c->group[0] ? c->group : "cases");
            fprintf(f, "\" name=\"");
            xml_text(f, c->id);
            fprintf(f, "\" time=\"%.6f\">", o->seconds);
            if (!ok_verdict(o->v)) {
                fprintf(f, "<failure type=\"%s\" message=\"", brine_verdict_name(o->v));
                xml_text(f, o->detail);
                fprintf(f, "\">");
                if (o->got)
                    xml_text(f, o->got);
                fprintf(f, "</failure>");
            } else if (o->v == BRINE_V_ORACLE_LIMIT || o->v == BRINE_V_OUT_OF_SCOPE) {
                fprintf(f, "<skipped message=\"");
                xml_text(f, o->detail);
                fprintf(f, "\"/>");
            }
            fprintf(f, "</testcase>\n");
        }
        fprintf(f, "</testsuite>\n");
    }
    fprintf(f, "</testsuites>\n");
    bool ok = fflush(f) == 0 && !ferror(f);
    ok = (fclose(f) == 0) && ok;
    if (!ok)
        fprintf(stderr, "brine run: error writing %s\n", path);
    return ok;
}

/*------------------------------------------------------------------------------
 * Coverage
 *----------------------------------------------------------------------------*/

/* The coverage of the cases (owned by the caller, free()). */
static brine_coverage *compute_coverage(const brine_corpus *corpus) {
    brine_coverage *cov = xcalloc(1, sizeof *cov);
    for (size_t i = 0; i < corpus->n; i++) {
        const brine_case_rec *c = &corpus->cases[i];
        /* what the primary oracle said: loaded, or which error */
        const char *cls = NULL;
        size_t cls_len = 0;
        char error[32] = "unanswered";
        if (c->nanswers && !c->oracle_limit &&
            brine_doc_is_error(c->answers[0].text, c->answers[0].len, &cls, &cls_len))
            snprintf(error, sizeof error, "%.*s", (int)cls_len, cls);
        bool loaded = c->nanswers && !c->oracle_limit && !cls;
        brine_cover_add(cov, c->data, c->len, c->protocol, loaded ? NULL : error);
    }
    return cov;
}

static void write_coverage_json(FILE *f, const brine_coverage *cov) {
    fprintf(f, ",\n\"coverage\":{\"holes\":%zu,\"cases\":%zu,\"loaded\":%zu,\"cells\":[",
            brine_cover_holes(cov, NULL), cov->cases, cov->loaded);
    bool first = true;
    for (size_t i = 0; i < pkl_opcode_count(); i++) {
        const pkl_opinfo *op = pkl_opcode_at(i);
        for (int p = op->proto; p < BRINE_COVER_PROTOCOLS; p++) {
            fprintf(f, "%s\n{\"opcode\":\"%s\",\"code\":%u,\"protocol\":%d,\"loaded\":%u,"
                       "\"stock\":%u,\"fault\":%u}",
                    first ? "" : ",", op->name, op->code, p, cov->valid[op->code][p],
                    cov->stock[op->code][p], cov->fault[op->code][p]);
            first = false;
        }
    }
    fprintf(f, "]}");
}

/*------------------------------------------------------------------------------
 * Command line
 *----------------------------------------------------------------------------*/

static int usage_error(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "brine run: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\nusage: brine run [--impl NAME]... [--adapter NAME=CMD]... "
                    "[--one-shot NAME=CMD]... [--corpus DIR] [--group G]... [--oracle NAME]... "
                    "[--level raw|value] [--timeout S] [--window N] [--isolate] [--json FILE] [--junit FILE] "
                    "[--coverage [--markdown]] [--check-coverage] [--policy] [--max-report N] "
                    "[--no-diff] [--quiet]\n");
    va_end(ap);
    return RUN_USAGE;
}

int cmd_run(int argc, char **argv) {
    impl *impls = xcalloc((size_t)argc, sizeof *impls);
    size_t nimpls = 0;
    const char **groups = xcalloc((size_t)argc, sizeof *groups);
    size_t ngroups = 0;
    char **oracles = xcalloc((size_t)argc + 2, sizeof *oracles);
    size_t noracles = 0;
    const char *corpus_dir = BRINE_SOURCE_DIR "/corpus";
    const char *json_path = NULL, *junit_path = NULL;
    int level = 0;
    bool isolate = false, coverage = false, markdown = false, check_cov = false;
    bool diff = true, quiet = false;
    size_t max_report = 20;
    run_opts ro = {BRINE_ADAPTER_DEFAULT_TIMEOUT, 0, false};
    int rc = 0;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *val = i + 1 < argc ? argv[i + 1] : NULL;
        bool takes = true;
        if (strcmp(a, "--impl") == 0 && val) {
            impls[nimpls++].name = dup_s(val);
        } else if ((strcmp(a, "--adapter") == 0 || strcmp(a, "--one-shot") == 0) && val) {
            const char *eq = strchr(val, '=');
            if (!eq || !brine_adapter_valid_name(val, (size_t)(eq - val)))
                return usage_error("%s wants NAME=COMMAND with NAME in [a-z0-9._-]+", a);
            impl *im = &impls[nimpls++];
            im->name = dup_n(val, (size_t)(eq - val));
            im->argv = argv_sh(eq + 1);
            im->one_shot = strcmp(a, "--one-shot") == 0;
        } else if (strcmp(a, "--corpus") == 0 && val) {
            corpus_dir = val;
        } else if (strcmp(a, "--group") == 0 && val) {
            groups[ngroups++] = val;
        } else if (strcmp(a, "--oracle") == 0 && val) {
            oracles[noracles++] = dup_s(val);
        } else if (strcmp(a, "--level") == 0 && val) {
            if (strcmp(val, "raw") != 0 && strcmp(val, "value") != 0)
                return usage_error("--level is raw or value");
            level = strcmp(val, "value") == 0;
        } else if (strcmp(a, "--timeout") == 0 && val) {
            ro.timeout = strtod(val, NULL);
            if (!(ro.timeout > 0))
                return usage_error("--timeout wants a positive number of seconds");
        } else if (strcmp(a, "--window") == 0 && val) {
            ro.window = (size_t)strtoul(val, NULL, 10);
            if (!ro.window)
                return usage_error("--window wants a positive number");
        } else if (strcmp(a, "--json") == 0 && val) {
            json_path = val;
        } else if (strcmp(a, "--junit") == 0 && val) {
            junit_path = val;
        } else if (strcmp(a, "--max-report") == 0 && val) {
            max_report = (size_t)strtoul(val, NULL, 10);
        } else {
            takes = false;
            if (strcmp(a, "--isolate") == 0)
                isolate = true;
            else if (strcmp(a, "--coverage") == 0)
                coverage = true;
            else if (strcmp(a, "--markdown") == 0)
                markdown = true;
            else if (strcmp(a, "--check-coverage") == 0)
                check_cov = true;
            else if (strcmp(a, "--policy") == 0)
                g_policy = true;
            else if (strcmp(a, "--no-diff") == 0)
                diff = false;
            else if (strcmp(a, "--quiet") == 0)
                quiet = ro.quiet_adapters = true;
            else
                return usage_error("unknown or incomplete argument %s", a);
        }
        if (takes)
            i++;
    }
    if (!nimpls && !coverage && !check_cov)
        impls[nimpls++].name = dup_s("pkl");
    for (size_t k = 0; k < nimpls; k++) {
        impl *im = &impls[k];
        if (im->argv)
            continue;
        if (strcmp(im->name, "pkl") == 0) {
            if (!isolate) {
                im->in_process = true;
                continue;
            }
            char **v = xcalloc(3, sizeof *v);
            v[0] = dup_s(self_exe());
            v[1] = dup_s("serve");
            im->argv = v;
            continue;
        }
        if (!resolve_impl(im))
            return RUN_USAGE;
    }

    brine_corpus corpus;
    char err[512];
    if (brine_corpus_open(corpus_dir, groups, ngroups, &corpus, err, sizeof err) != 0) {
        fprintf(stderr, "brine run: %s\n", err);
        return RUN_USAGE;
    }
    if (!corpus.n) {
        fprintf(stderr, "brine run: %s holds no cases\n", corpus_dir);
        brine_corpus_free(&corpus);
        return RUN_USAGE;
    }
    if (!quiet)
        fprintf(stderr, "brine run: %zu cases from %s%s\n", corpus.n, corpus_dir,
                corpus.manifest ? " (manifests: the oracles' recorded answers)"
                                : " (plain folder: the live oracle decides)");
    if (!corpus.manifest) {
        if (!noracles) {
            if (!default_oracles(&oracles[0], &oracles[1])) {
                brine_corpus_free(&corpus);
                return RUN_USAGE;
            }
            noracles = 2;
        }
        if (!live_expectations(&corpus, oracles, noracles, &ro, quiet)) {
            brine_corpus_free(&corpus);
            return RUN_USAGE;
        }
    } else if (noracles) {
        fprintf(stderr, "brine run: --oracle is for plain folders; a corpus carries its "
                        "oracles' answers\n");
        brine_corpus_free(&corpus);
        return RUN_USAGE;
    }

    outcome **outs = xcalloc(nimpls, sizeof *outs);
    for (size_t k = 0; k < nimpls; k++) {
        impl *im = &impls[k];
        outs[k] = xcalloc(corpus.n, sizeof **outs);
        judge_ctx J = {&corpus, im, level, outs[k], xcalloc(corpus.n, sizeof(brine_text *))};
        /* an adapter that speaks the value level is compared at that level */
        if (!run_impl_cases(im, &corpus, &ro, judge_one, &J)) {
            fprintf(stderr, "brine run: %s: %s\n", im->name, im->start_error);
            rc = RUN_FAIL;
        }
        if (im->started) {
            print_summary(im, corpus.n, level);
            print_failures(im, &corpus, outs[k], J.norm, max_report, diff);
        }
        for (size_t i = 0; i < corpus.n; i++) {
            if (!J.norm[i])
                continue;
            for (size_t a = 0; a < corpus.cases[i].nanswers; a++)
                free((char *)J.norm[i][a].text);
            free(J.norm[i]);
        }
        free(J.norm);
        for (int v = 0; v < BRINE_V_COUNT; v++)
            if (im->counts[v] && !ok_verdict((brine_verdict)v))
                rc = RUN_FAIL;
    }
    brine_coverage *cov = NULL;
    if (coverage || check_cov) {
        cov = compute_coverage(&corpus);
        if (coverage)
            brine_cover_print(cov, stdout, markdown);
        size_t holes = brine_cover_holes(cov, stdout);
        if (check_cov && holes) {
            printf("coverage check: %zu opcode x protocol cells have no loading case\n", holes);
            rc = RUN_FAIL;
        } else if (check_cov) {
            printf("coverage check: every opcode exercised in every protocol where it is valid\n");
        }
    }
    if (json_path &&
        !write_json(json_path, corpus_dir, level, impls, nimpls, &corpus, outs, cov))
        rc = RUN_USAGE;
    free(cov);
    if (junit_path && !write_junit(junit_path, impls, nimpls, &corpus, outs))
        rc = RUN_USAGE;

    for (size_t k = 0; k < nimpls; k++) {
        for (size_t i = 0; outs[k] && i < corpus.n; i++) {
            free(outs[k][i].got);
            free(outs[k][i].got_trace);
        }
        free(outs[k]);
        free(impls[k].name);
        free(impls[k].label);
        free_strv(impls[k].argv);
        free_strv(impls[k].env);
    }
    free(outs);
    free(impls);
    free(groups);
    for (size_t k = 0; k < noracles; k++)
        free(oracles[k]);
    free(oracles);
    brine_corpus_free(&corpus);
    return rc;
}
