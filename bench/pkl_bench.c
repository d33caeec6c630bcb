/*==============================================================================
 * pkl_bench: libpkl decode throughput (a benchmark, not a test).
 *
 *   pkl_bench [--canon] [--subset all|plain] [--min-time S] [--rounds N]
 *             [--tsv] FILE...
 *
 * Each FILE is either a brine pickle-sequence container (magic
 * "\xffPKLSEQ1", then records of u32 little-endian length + one pickle; see
 * bench/make_corpus.py) or one raw pickle. Every file is read into memory
 * once. A first untimed pass loads every pickle and checks that it decodes
 * (any failure aborts the run: timing failed decodes means nothing) and
 * doubles as the warm-up. Then N rounds (default 3) are timed with
 * clock_gettime(CLOCK_MONOTONIC); a round repeats full passes over the
 * file's pickles until at least S seconds (default 1.0) have elapsed. The
 * BEST round (highest throughput) is reported; the median round is printed
 * too for information. bench/cpython_bench.py uses the same policy.
 * "cpu%" is the process CPU time of the reported round over its wall time:
 * well under 100 means other processes took the CPU and the row is noisy.
 * The TSV output also gives pickles/s by process CPU time (best round by
 * CPU time), which holds up better on a shared machine.
 *
 * What one pickle costs: pkl_load(data, len, NULL, &err) + pkl_doc_free()
 * (default options: libc allocator, default limits, every global allowed as
 * a stub, no trace). With --canon: pkl_load + pkl_canon + freeing the text
 * + pkl_doc_free (for information; CPython has no equivalent).
 *
 * --subset plain keeps only the pickles that contain no GLOBAL,
 * STACK_GLOBAL, INST, EXT1/2/4, PERSID, BINPERSID or NEXT_BUFFER opcode
 * (found by walking the opcodes with the public opcode table; nothing is
 * decoded). cpython_bench.py selects the same subset with pickletools.genops
 * to time plain pickle.loads on exactly the same pickles.
 *
 * MB = 10^6 bytes of pickle data (container framing not counted).
 *============================================================================*/
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pkl.h"

static const char MAGIC[8] = {'\xff', 'P', 'K', 'L', 'S', 'E', 'Q', '1'};

typedef struct item {
    const uint8_t *p;
    size_t n;
} item;

typedef struct corpus {
    const char *path;
    uint8_t *buf;
    size_t buflen;
    item *items;
    size_t count;
    size_t bytes;
} corpus;

typedef struct options {
    bool canon;
    bool plain_only;
    bool tsv;
    double min_time;
    int rounds;
} options;

/* Defeats any temptation to treat a load as dead code. */
static volatile uintptr_t g_sink;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* CPU time of this process: only used to report how much of a round's wall
   time the benchmark actually ran (other processes on a shared machine). */
static double cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void die(const char *fmt, const char *a, const char *b)
{
    fprintf(stderr, "pkl_bench: ");
    fprintf(stderr, fmt, a, b);
    fputc('\n', stderr);
    exit(2);
}

static uint8_t *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        die("%s: %s", path, strerror(errno));
    size_t cap = 1 << 20, n = 0;
    uint8_t *buf = malloc(cap);
    if (!buf)
        die("%s: %s", path, "out of memory");
    for (;;) {
        if (n == cap) {
            cap *= 2;
            uint8_t *nb = realloc(buf, cap);
            if (!nb)
                die("%s: %s", path, "out of memory");
            buf = nb;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0) {
            if (ferror(f))
                die("%s: %s", path, "read error");
            break;
        }
    }
    fclose(f);
    *len = n;
    return buf;
}

static uint32_t rd_u32le(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}

static void add_item(corpus *c, size_t *cap, const uint8_t *p, size_t n)
{
    if (c->count == *cap) {
        *cap = *cap ? *cap * 2 : 1024;
        item *ni = realloc(c->items, *cap * sizeof *ni);
        if (!ni)
            die("%s: %s", c->path, "out of memory");
        c->items = ni;
    }
    c->items[c->count].p = p;
    c->items[c->count].n = n;
    c->count++;
    c->bytes += n;
}

static void load_corpus(corpus *c, const char *path)
{
    memset(c, 0, sizeof *c);
    c->path = path;
    c->buf = read_all(path, &c->buflen);
    size_t cap = 0;
    if (c->buflen >= sizeof MAGIC && memcmp(c->buf, MAGIC, sizeof MAGIC) == 0) {
        size_t off = sizeof MAGIC;
        while (off < c->buflen) {
            if (c->buflen - off < 4)
                die("%s: %s", path, "truncated container record header");
            size_t n = rd_u32le(c->buf + off);
            off += 4;
            if (c->buflen - off < n)
                die("%s: %s", path, "truncated container record");
            add_item(c, &cap, c->buf + off, n);
            off += n;
        }
    } else {
        add_item(c, &cap, c->buf, c->buflen);
    }
    if (c->count == 0)
        die("%s: %s", path, "no pickles");
}

/* True when the pickle reaches STOP without any opcode that names or
   fetches something from outside (globals, extensions, persistent ids,
   out-of-band buffers): such a pickle is safe for plain pickle.loads.
   Malformed input counts as not plain. Opcodes are walked, not decoded. */
static bool is_plain(const uint8_t *p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        const pkl_opinfo *op = pkl_opcode_info(p[i]);
        if (!op)
            return false;
        i++;
        switch (op->code) {
        case PKL_OP_GLOBAL: case PKL_OP_STACK_GLOBAL: case PKL_OP_INST:
        case PKL_OP_EXT1: case PKL_OP_EXT2: case PKL_OP_EXT4:
        case PKL_OP_PERSID: case PKL_OP_BINPERSID: case PKL_OP_NEXT_BUFFER:
            return false;
        case PKL_OP_STOP:
            return true;
        default:
            break;
        }
        switch (op->layout) {
        case PKL_LAYOUT_NONE:
            break;
        case PKL_LAYOUT_FIXED:
            if (n - i < op->width)
                return false;
            i += op->width;
            break;
        case PKL_LAYOUT_LINE:
        case PKL_LAYOUT_LINE2:
            for (int lines = op->layout == PKL_LAYOUT_LINE2 ? 2 : 1; lines > 0; lines--) {
                const uint8_t *nl = memchr(p + i, '\n', n - i);
                if (!nl)
                    return false;
                i = (size_t)(nl - p) + 1;
            }
            break;
        case PKL_LAYOUT_COUNTED: {
            if (op->width > 8 || n - i < op->width)
                return false;
            uint64_t len = 0;
            for (unsigned k = 0; k < op->width; k++)
                len |= (uint64_t)p[i + k] << (8 * k);
            i += op->width;
            if (op->width == 4 && (len & 0x80000000u) &&
                (op->code == PKL_OP_BINSTRING || op->code == PKL_OP_LONG4))
                return false; /* negative signed length */
            if (len > n - i)
                return false;
            i += (size_t)len;
            break;
        }
        default:
            return false;
        }
    }
    return false;
}

static void keep_plain(corpus *c)
{
    size_t k = 0;
    c->bytes = 0;
    for (size_t i = 0; i < c->count; i++) {
        if (is_plain(c->items[i].p, c->items[i].n)) {
            c->items[k++] = c->items[i];
            c->bytes += c->items[i].n;
        }
    }
    c->count = k;
}

/* One untimed pass: every pickle must decode (and render, with --canon).
   Returns the number of value nodes in one pass, for the record. */
static size_t check_pass(const corpus *c, const options *o)
{
    size_t nodes = 0;
    for (size_t i = 0; i < c->count; i++) {
        pkl_err err = {PKL_OK, NULL, 0};
        pkl_doc *doc = pkl_load(c->items[i].p, c->items[i].n, NULL, &err);
        if (!doc) {
            fprintf(stderr,
                    "pkl_bench: %s: pickle #%zu (%zu bytes) does not decode: "
                    "%s (%s) at byte %zu\n",
                    c->path, i, c->items[i].n, pkl_code_name(err.code),
                    err.msg ? err.msg : "", err.pos);
            exit(1);
        }
        nodes += pkl_doc_node_count(doc);
        if (o->canon) {
            size_t tlen = 0;
            char *text = pkl_canon(doc, NULL, pkl_limits_default().max_output,
                                   &tlen, &err);
            if (!text) {
                fprintf(stderr,
                        "pkl_bench: %s: pickle #%zu: pkl_canon failed: %s (%s)\n",
                        c->path, i, pkl_code_name(err.code), err.msg ? err.msg : "");
                exit(1);
            }
            pkl_alc_libc()->free(pkl_alc_libc()->ctx, text);
        }
        pkl_doc_free(doc);
    }
    return nodes;
}

static void pass_load(const corpus *c)
{
    uintptr_t sink = 0;
    for (size_t i = 0; i < c->count; i++) {
        pkl_doc *doc = pkl_load(c->items[i].p, c->items[i].n, NULL, NULL);
        sink ^= (uintptr_t)doc;
        pkl_doc_free(doc);
    }
    g_sink ^= sink;
}

static void pass_canon(const corpus *c, size_t max_output)
{
    const pkl_alc *libc = pkl_alc_libc();
    uintptr_t sink = 0;
    for (size_t i = 0; i < c->count; i++) {
        pkl_doc *doc = pkl_load(c->items[i].p, c->items[i].n, NULL, NULL);
        size_t tlen = 0;
        char *text = pkl_canon(doc, NULL, max_output, &tlen, NULL);
        sink ^= (uintptr_t)text ^ tlen;
        libc->free(libc->ctx, text);
        pkl_doc_free(doc);
    }
    g_sink ^= sink;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static const char *base_name(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

static void bench_file(const char *path, const options *o)
{
    corpus c;
    load_corpus(&c, path);
    size_t total = c.count;
    if (o->plain_only)
        keep_plain(&c);
    if (c.count == 0) {
        fprintf(stderr, "pkl_bench: %s: no plain pickles (of %zu)\n", path, total);
        free(c.buf);
        free(c.items);
        return;
    }
    size_t nodes = check_pass(&c, o);
    size_t max_output = pkl_limits_default().max_output;

    double *sec_per_pass = malloc((size_t)o->rounds * sizeof *sec_per_pass);
    if (!sec_per_pass)
        die("%s: %s", path, "out of memory");
    unsigned long long passes_total = 0;
    double best = 0, best_cpu_share = 0, best_cpu = 0;
    for (int r = 0; r < o->rounds; r++) {
        unsigned long long passes = 0;
        double c0 = cpu_s();
        double t0 = now_s(), el;
        do {
            if (o->canon)
                pass_canon(&c, max_output);
            else
                pass_load(&c);
            passes++;
            el = now_s() - t0;
        } while (el < o->min_time);
        double cpu = cpu_s() - c0;
        sec_per_pass[r] = el / (double)passes;
        passes_total += passes;
        if (r == 0 || cpu / (double)passes < best_cpu)
            best_cpu = cpu / (double)passes;
        if (r == 0 || sec_per_pass[r] < best) {
            best = sec_per_pass[r];
            best_cpu_share = el > 0 ? cpu / el : 1.0;
        }
    }
    qsort(sec_per_pass, (size_t)o->rounds, sizeof *sec_per_pass, cmp_double);
    double median = sec_per_pass[o->rounds / 2];
    double pps = (double)c.count / best, mbs = (double)c.bytes / best / 1e6;
    double med_mbs = (double)c.bytes / median / 1e6;
    const char *variant = o->canon ? (o->plain_only ? "load+canon/plain" : "load+canon")
                                   : (o->plain_only ? "load/plain" : "load");
    if (o->tsv) {
        printf("libpkl\t%s\t%s\t%zu\t%zu\t%.9f\t%.3f\t%.3f\t%.3f\t%d\t%llu\t%zu\t%.3f\t%.3f\n",
               variant, base_name(path), c.count, c.bytes, best, pps, mbs, med_mbs,
               o->rounds, passes_total, nodes, best_cpu_share,
               best_cpu > 0 ? (double)c.count / best_cpu : 0.0);
    } else {
        printf("%-24s %-16s %8zu %11zu %11.6g %13.1f %9.2f %9.2f %10zu %5.0f\n",
               base_name(path), variant, c.count, c.bytes, best, pps, mbs,
               med_mbs, nodes, 100.0 * best_cpu_share);
    }
    fflush(stdout);
    free(sec_per_pass);
    free(c.buf);
    free(c.items);
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: pkl_bench [--canon] [--subset all|plain] [--min-time S]\n"
            "                 [--rounds N] [--tsv] FILE...\n"
            "Times libpkl decode (pkl_load + pkl_doc_free; --canon: + pkl_canon)\n"
            "over every pickle of each FILE (a .pkls container or a raw pickle).\n"
            "A round repeats passes until >= S seconds (default 1.0); the best\n"
            "of N rounds (default 3) is reported, the median for information.\n");
}

int main(int argc, char **argv)
{
    options o = {false, false, false, 1.0, 3};
    int first = argc;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--canon") == 0) {
            o.canon = true;
        } else if (strcmp(a, "--tsv") == 0) {
            o.tsv = true;
        } else if (strcmp(a, "--subset") == 0 && i + 1 < argc) {
            const char *v = argv[++i];
            if (strcmp(v, "plain") == 0)
                o.plain_only = true;
            else if (strcmp(v, "all") == 0)
                o.plain_only = false;
            else
                die("bad --subset %s%s", v, "");
        } else if (strcmp(a, "--min-time") == 0 && i + 1 < argc) {
            o.min_time = strtod(argv[++i], NULL);
            if (!(o.min_time >= 0.0))
                die("bad --min-time %s%s", argv[i], "");
        } else if (strcmp(a, "--rounds") == 0 && i + 1 < argc) {
            o.rounds = atoi(argv[++i]);
            if (o.rounds < 1)
                die("bad --rounds %s%s", argv[i], "");
        } else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(a, "--") == 0) {
            first = i + 1;
            break;
        } else if (a[0] == '-') {
            usage(stderr);
            return 2;
        } else {
            first = i;
            break;
        }
    }
    if (first >= argc) {
        usage(stderr);
        return 2;
    }
    if (!o.tsv) {
        printf("libpkl %s, %s, best of %d rounds, each >= %.2f s of repeated passes\n",
               PKL_VERSION_STRING,
               o.canon ? "pkl_load + pkl_canon + frees" : "pkl_load + pkl_doc_free",
               o.rounds, o.min_time);
        printf("%-24s %-16s %8s %11s %11s %13s %9s %9s %10s %5s\n", "file", "variant",
               "pickles", "bytes", "s/pass", "pickles/s", "MB/s", "med MB/s",
               "nodes", "cpu%");
    }
    for (int i = first; i < argc; i++)
        bench_file(argv[i], &o);
    return 0;
}
