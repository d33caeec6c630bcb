/* brine gen: writes generated raw pickle streams (generators/streamgen.h).
 *
 *   brine gen --seed S --count N [--protocol P] [--mode valid|invalid]
 *             [--fault NAME] --out DIR
 *   brine gen --list-faults
 *
 * File i (0 <= i < N) uses seed S+i; without --protocol it uses protocol
 * i % 6, and in invalid mode without --fault the fault i % (number of
 * faults). Each file is DIR/<mode>-p<P>-<fault|valid>-<seed>.pkl; the same
 * arguments always write the same bytes. Faults that do not apply (e.g.
 * opcode-above-protocol at protocol 5) are skipped and counted.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "streamgen.h"

int cmd_gen(int argc, char **argv);

static int parse_u64(const char *s, uint64_t *v) {
    char *end;
    errno = 0;
    unsigned long long x = strtoull(s, &end, 0);
    if (errno || end == s || *end || *s == '-')
        return 0;
    *v = x;
    return 1;
}

static int gen_usage(void) {
    fprintf(stderr, "usage: brine gen --seed S --count N [--protocol P] [--mode valid|invalid] "
                    "[--fault NAME] --out DIR\n       brine gen --list-faults\n");
    return 2;
}

int cmd_gen(int argc, char **argv) {
    uint64_t seed = 0, count = 1, proto = 0;
    int have_proto = 0, invalid = 0, have_seed = 0;
    const char *fault = NULL, *dir = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--list-faults") == 0) {
            size_t n;
            const char *const *f = pkl_gen_faults(&n);
            for (size_t k = 0; k < n; k++)
                printf("%-24s %s\n", f[k], pkl_gen_fault_class(f[k]));
            return fflush(stdout) == 0 ? 0 : 2;
        } else if (strcmp(a, "--seed") == 0 && v && parse_u64(v, &seed)) {
            have_seed = 1, i++;
        } else if (strcmp(a, "--count") == 0 && v && parse_u64(v, &count)) {
            i++;
        } else if (strcmp(a, "--protocol") == 0 && v && parse_u64(v, &proto) && proto <= 5) {
            have_proto = 1, i++;
        } else if (strcmp(a, "--mode") == 0 && v && (!strcmp(v, "valid") || !strcmp(v, "invalid"))) {
            invalid = strcmp(v, "invalid") == 0, i++;
        } else if (strcmp(a, "--fault") == 0 && v) {
            if (!pkl_gen_fault_class(v)) {
                fprintf(stderr, "brine gen: unknown fault '%s' (see --list-faults)\n", v);
                return 2;
            }
            fault = v, invalid = 1, i++;
        } else if (strcmp(a, "--out") == 0 && v) {
            dir = v, i++;
        } else {
            fprintf(stderr, "brine gen: bad or incomplete option '%s'\n", a);
            return gen_usage();
        }
    }
    if (!dir || !have_seed)
        return gen_usage();
    if (mkdir(dir, 0777) != 0 && errno != EEXIST) {
        fprintf(stderr, "brine gen: cannot create %s: %s\n", dir, strerror(errno));
        return 2;
    }
    size_t nfaults;
    const char *const *faults = pkl_gen_faults(&nfaults);
    size_t cap = 1 << 16, total = 0, written = 0, skipped = 0;
    uint8_t *buf = malloc(cap);
    char *path = malloc(strlen(dir) + 128);
    if (!buf || !path) {
        free(buf);
        free(path);
        fprintf(stderr, "brine gen: out of memory\n");
        return 2;
    }
    int rc = 0;
    for (uint64_t i = 0; i < count && rc == 0; i++) {
        uint64_t s = seed + i;
        int p = have_proto ? (int)proto : (int)(i % 6);
        const char *f = invalid ? (fault ? fault : faults[i % nfaults]) : NULL;
        size_t n;
        for (;;) {
            n = invalid ? pkl_gen_invalid(s, p, f, buf, cap, NULL) : pkl_gen_valid(s, p, buf, cap);
            if (n <= cap)
                break;
            uint8_t *nb = realloc(buf, n);
            if (!nb) {
                n = 0;
                break;
            }
            buf = nb, cap = n;
        }
        if (n == 0) {
            skipped++;
            continue;
        }
        sprintf(path, "%s/%s-p%d-%s-%llu.pkl", dir, invalid ? "invalid" : "valid", p, f ? f : "valid",
                (unsigned long long)s);
        FILE *out = fopen(path, "wb");
        if (!out || fwrite(buf, 1, n, out) != n || fclose(out) != 0) {
            fprintf(stderr, "brine gen: cannot write %s: %s\n", path, strerror(errno));
            rc = 2;
            break;
        }
        written++;
        total += n;
    }
    free(buf);
    free(path);
    if (rc == 0)
        printf("brine gen: wrote %zu %s stream(s), %zu bytes, to %s; skipped %zu (fault not applicable)\n",
               written, invalid ? "invalid" : "valid", total, dir, skipped);
    return fflush(stdout) == 0 ? rc : 2;
}
