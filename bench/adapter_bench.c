/* Adapter client throughput (harness/adapter.h): cases per second through
 * adapter protocol v1, for any adapter. A benchmark, not a test: nothing
 * here asserts anything timed.
 *
 *   adapter_bench [--cases DIR] [--count N] [--window W]... [--min-time S]
 *                 [--rounds R] [--env KEY=VALUE]... [--one-shot NAME]
 *                 [--exclude SUBSTRING]... -- PROGRAM [ARG...]
 *
 * Inputs: every *.pkl under DIR (default corpus/cases), sorted by path,
 * minus the paths containing an --exclude substring (e.g. the CPython quirk
 * memo-huge-long-binput, seconds per load in CPython, which would otherwise
 * be what an oracle benchmark measures), repeated in that order until
 * there are N (default 5000); the same
 * selection as bench/adapter_bench_py.py, which measures the Python client
 * (oracle/brine_oracle/client.py) on the same cases.
 *
 * Per window (default 1 and 32): a fresh adapter, one untimed pass, then R
 * rounds (default 3) of full
 * passes lasting at least S seconds (default 1.0) each; the best round's
 * cases/s is printed, with "fails": timeouts + crashes over all passes (0
 * expected; a nonzero count makes the number meaningless).
 *
 * Examples (from the source tree, after a build in build-a):
 *   build-a/harness/adapter_bench -- build-a/brine serve
 *   build-a/harness/adapter_bench --env PYTHONPATH=oracle -- \
 *       /usr/bin/python3 -m brine_oracle serve
 */
#define _POSIX_C_SOURCE 200809L

#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "adapter.h"
#include "adapter_proc.h"

typedef struct strvec {
    char **v;
    size_t n, cap;
} strvec;

static void push(strvec *s, char *x) {
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 64;
        s->v = realloc(s->v, s->cap * sizeof *s->v);
        if (!s->v) {
            fprintf(stderr, "adapter_bench: out of memory\n");
            exit(2);
        }
    }
    s->v[s->n++] = x;
}

static bool excluded(const char *path, const strvec *ex) {
    for (size_t i = 0; i < ex->n; i++)
        if (strstr(path, ex->v[i]))
            return true;
    return false;
}

/* Collects *.pkl paths under dir; an explicit stack, not recursion. */
static void walk(const char *root, const strvec *ex, strvec *out) {
    strvec todo = {0};
    push(&todo, strdup(root));
    while (todo.n) {
        char *dir = todo.v[--todo.n];
        DIR *d = opendir(dir);
        if (!d) {
            fprintf(stderr, "adapter_bench: %s: %s\n", dir, strerror(errno));
            exit(2);
        }
        struct dirent *e;
        while ((e = readdir(d))) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            size_t len = strlen(dir) + strlen(e->d_name) + 2;
            char *p = malloc(len);
            if (!p)
                exit(2);
            snprintf(p, len, "%s/%s", dir, e->d_name);
            struct stat st;
            size_t l = strlen(e->d_name);
            if (stat(p, &st) == 0 && S_ISDIR(st.st_mode))
                push(&todo, p);
            else if (l > 4 && strcmp(e->d_name + l - 4, ".pkl") == 0 && S_ISREG(st.st_mode) &&
                     !excluded(p, ex))
                push(out, p);
            else
                free(p);
        }
        closedir(d);
        free(dir);
    }
    free(todo.v);
}

static int cmp_path(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static unsigned char *slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 4096, n = 0;
    unsigned char *buf = malloc(cap);
    size_t k;
    while (buf && (k = fread(buf + n, 1, cap - n, f)) > 0) {
        n += k;
        if (n == cap) {
            unsigned char *nb = realloc(buf, cap * 2);
            if (!nb)
                free(buf);
            buf = nb;
            cap *= 2;
        }
    }
    fclose(f);
    *len = n;
    return buf;
}

typedef struct tally {
    size_t fails;
} tally;

static void count_fails(void *ctx, size_t i, const brine_response *r) {
    (void)i;
    if (r->status != BRINE_OK)
        ((tally *)ctx)->fails++;
}

static void ignore(void *ctx, size_t i, const brine_response *r) {
    (void)ctx;
    (void)i;
    (void)r;
}

static void usage(void) {
    fprintf(stderr, "usage: adapter_bench [--cases DIR] [--count N] [--window W]... "
                    "[--min-time S] [--rounds R] [--env KEY=VALUE]... [--one-shot NAME] "
                    "[--exclude SUBSTRING]... -- PROGRAM [ARG...]\n");
    exit(2);
}

int main(int argc, char **argv) {
    const char *cases_dir = "corpus/cases";
    size_t count = 5000;
    size_t windows[16];
    size_t nwin = 0;
    double min_time = 1.0;
    int rounds = 3;
    const char *env[64];
    size_t nenv = 0;
    const char *one_shot = NULL;
    strvec exclude = {0};
    int i = 1;
    for (; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--") == 0) {
            i++;
            break;
        }
        if (i + 1 >= argc)
            usage();
        if (strcmp(a, "--cases") == 0)
            cases_dir = argv[++i];
        else if (strcmp(a, "--count") == 0)
            count = strtoul(argv[++i], NULL, 10);
        else if (strcmp(a, "--window") == 0 && nwin < 16)
            windows[nwin++] = strtoul(argv[++i], NULL, 10);
        else if (strcmp(a, "--min-time") == 0)
            min_time = strtod(argv[++i], NULL);
        else if (strcmp(a, "--rounds") == 0)
            rounds = atoi(argv[++i]);
        else if (strcmp(a, "--env") == 0 && nenv < 63)
            env[nenv++] = argv[++i];
        else if (strcmp(a, "--one-shot") == 0)
            one_shot = argv[++i];
        else if (strcmp(a, "--exclude") == 0)
            push(&exclude, argv[++i]);
        else
            usage();
    }
    if (i >= argc || count == 0 || rounds < 1)
        usage();
    env[nenv] = NULL;
    if (!nwin) {
        windows[nwin++] = 1;
        windows[nwin++] = 32;
    }

    strvec paths = {0};
    walk(cases_dir, &exclude, &paths);
    if (!paths.n) {
        fprintf(stderr, "adapter_bench: no *.pkl under %s\n", cases_dir);
        return 2;
    }
    qsort(paths.v, paths.n, sizeof *paths.v, cmp_path);
    brine_case *files = calloc(paths.n, sizeof *files);
    brine_case *cases = calloc(count, sizeof *cases);
    size_t bytes = 0;
    if (!files || !cases)
        return 2;
    for (size_t k = 0; k < paths.n; k++) {
        size_t len = 0;
        unsigned char *d = slurp(paths.v[k], &len);
        if (!d) {
            fprintf(stderr, "adapter_bench: cannot read %s\n", paths.v[k]);
            return 2;
        }
        files[k].data = d;
        files[k].len = len;
    }
    for (size_t k = 0; k < count; k++) {
        cases[k] = files[k % paths.n];
        bytes += cases[k].len;
    }

    printf("adapter client throughput, cases/s (best of %d x >= %.1f s); %zu cases "
           "(%zu distinct *.pkl under %s, mean %.0f bytes)\n",
           rounds, min_time, count, paths.n, cases_dir, (double)bytes / (double)count);
    printf("%-24s %-10s %7s %10s %6s\n", "adapter", "mode", "window", "cases/s", "fails");
    int status = 0;
    for (size_t w = 0; w < nwin; w++) {
        brine_adapter_opts o;
        memset(&o, 0, sizeof o);
        o.argv = (const char *const *)(argv + i);
        o.env = env;
        o.window = windows[w];
        o.timeout = 60;
        o.one_shot = one_shot != NULL;
        o.name = one_shot;
        char err[256];
        brine_adapter *a = brine_adapter_start(&o, err, sizeof err);
        if (!a) {
            fprintf(stderr, "adapter_bench: %s\n", err);
            return 2;
        }
        tally t = {0};
        if (brine_adapter_run(a, cases, count, count_fails, &t) != 0)
            status = 1;
        double best = 0;
        for (int r = 0; r < rounds; r++) {
            size_t done = 0;
            double t0 = brine_proc_now(), dt;
            do {
                brine_adapter_run(a, cases, count, ignore, NULL);
                done += count;
                dt = brine_proc_now() - t0;
            } while (dt < min_time);
            if (done / dt > best)
                best = (double)done / dt;
        }
        brine_adapter_stats st;
        brine_adapter_get_stats(a, &st);
        printf("%-24s %-10s %7zu %10.0f %6zu\n", brine_adapter_name(a),
               one_shot ? "one-shot" : "persistent", windows[w], best,
               t.fails > st.crashes + st.timeouts ? t.fails : st.crashes + st.timeouts);
        fflush(stdout);
        brine_adapter_close(a);
    }
    for (size_t k = 0; k < paths.n; k++) {
        free(paths.v[k]);
        free((void *)files[k].data);
    }
    free(paths.v);
    free(exclude.v);
    free(files);
    free(cases);
    return status;
}
