/* brine: the command line of the brine pickle conformance suite.
 *
 * Each subcommand is one row of `commands` below and one cmd_* function;
 * usage text is generated from the table, so adding a subcommand is adding
 * a row. Exit codes are shared by all subcommands: 0 success, 1 the input
 * was rejected (a load failed, a disassembly found a fault), 2 usage or I/O
 * error.
 */
#define _POSIX_C_SOURCE 200809L /* mmap, fstat, opendir under -std=c11 */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pkl.h"
#include "serve.h"

/* brine and libpkl are versioned and released together. */
#define BRINE_VERSION PKL_VERSION_STRING

enum { EXIT_REJECTED = 1, EXIT_USAGE = 2 };

static void usage(FILE *out);

/*------------------------------------------------------------------------------
 * Output
 *----------------------------------------------------------------------------*/

static void out_write(void *ctx, const char *text, size_t len) {
    fwrite(text, 1, len, ctx);
}

/* Every command's last act: a failed write (full disk, closed pipe with
   SIGPIPE ignored) must not pass for success. */
static int finish(int rc) {
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "brine: error writing output: %s\n", strerror(errno));
        return EXIT_USAGE;
    }
    return rc;
}

/*------------------------------------------------------------------------------
 * Input: a whole file (mapped when it is a regular file, so a 1 GB pickle
 * costs no copy) or all of stdin.
 *----------------------------------------------------------------------------*/

typedef struct input {
    const unsigned char *data;
    size_t len;
    void *heap;    /* owned buffer, or NULL */
    void *map;     /* mapping, or NULL */
    size_t maplen;
} input;

static const unsigned char empty_input[1];

static int read_stream(int fd, input *in) {
    size_t cap = 0, len = 0;
    unsigned char *buf = NULL;
    for (;;) {
        if (len == cap) {
            size_t ncap = cap ? cap * 2 : 65536;
            unsigned char *nb = ncap > cap ? realloc(buf, ncap) : NULL;
            if (!nb) {
                free(buf);
                errno = ENOMEM;
                return -1;
            }
            buf = nb;
            cap = ncap;
        }
        ssize_t k = read(fd, buf + len, cap - len);
        if (k < 0) {
            if (errno == EINTR)
                continue;
            int e = errno;
            free(buf);
            errno = e;
            return -1;
        }
        if (k == 0)
            break;
        len += (size_t)k;
    }
    in->heap = buf;
    in->data = len ? buf : empty_input;
    in->len = len;
    return 0;
}

/* Opens `path` ("-" is stdin). On failure prints why and returns -1. */
static int input_open(const char *path, input *in) {
    memset(in, 0, sizeof *in);
    if (strcmp(path, "-") == 0) {
        if (read_stream(STDIN_FILENO, in) == 0)
            return 0;
        fprintf(stderr, "brine: cannot read standard input: %s\n", strerror(errno));
        return -1;
    }
    int fd = open(path, O_RDONLY);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        fprintf(stderr, "brine: cannot open %s: %s\n", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    if (S_ISDIR(st.st_mode)) {
        fprintf(stderr, "brine: %s is a directory\n", path);
        close(fd);
        return -1;
    }
    int rc = 0;
    if (S_ISREG(st.st_mode) && st.st_size > 0 && (unsigned long long)st.st_size <= SIZE_MAX) {
        void *m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (m != MAP_FAILED) {
            in->map = m;
            in->maplen = (size_t)st.st_size;
            in->data = m;
            in->len = (size_t)st.st_size;
            close(fd);
            return 0;
        }
    }
    /* pipes, devices, empty files, and filesystems that cannot map */
    if (read_stream(fd, in) != 0) {
        fprintf(stderr, "brine: cannot read %s: %s\n", path, strerror(errno));
        rc = -1;
    }
    close(fd);
    return rc;
}

static void input_close(input *in) {
    if (in->map)
        munmap(in->map, in->maplen);
    free(in->heap);
    memset(in, 0, sizeof *in);
}

/*------------------------------------------------------------------------------
 * brine load
 *----------------------------------------------------------------------------*/

/* Loads one input and prints its canonical text. Returns 0 loaded,
   EXIT_REJECTED rejected, EXIT_USAGE when nothing could be printed. */
static int load_one(const input *in, const char *name, int quiet) {
    size_t out_len = 0;
    pkl_err err = {PKL_OK, NULL, 0};
    char *text = pkl_canon_load(in->data, in->len, NULL, &out_len, &err);
    if (!text) {
        fprintf(stderr, "brine: %s: out of memory rendering the result\n", name);
        return EXIT_USAGE;
    }
    fwrite(text, 1, out_len, stdout);
    free(text); /* allocated with the libc allocator: opts were NULL */
    if (err.code == PKL_OK)
        return 0;
    if (!quiet)
        fprintf(stderr, "brine: %s%s%s at offset %zu: %s\n", name ? name : "", name ? ": " : "",
                pkl_code_name(err.code), err.pos, err.msg ? err.msg : "");
    return EXIT_REJECTED;
}

static const char *base_name(const char *path) {
    const char *s = strrchr(path, '/');
    return s && s[1] ? s + 1 : path;
}

static int batch_file(const char *path, const char *name, int quiet) {
    input in;
    if (input_open(path, &in) != 0)
        return EXIT_USAGE;
    printf("== %s\n", name);
    int rc = load_one(&in, name, quiet);
    input_close(&in);
    fflush(stdout); /* a consumer reading documents as they come sees whole ones */
    return rc == EXIT_USAGE ? EXIT_USAGE : 0;
}

static int cmp_names(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every regular file of a directory, sorted by name as the oracle does. */
static int batch_dir(const char *dir, int quiet) {
    DIR *d = opendir(dir);
    if (!d) {
        fprintf(stderr, "brine: cannot open directory %s: %s\n", dir, strerror(errno));
        return EXIT_USAGE;
    }
    char **names = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.' && (!e->d_name[1] || (e->d_name[1] == '.' && !e->d_name[2])))
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            char **nn = realloc(names, cap * sizeof *nn);
            if (!nn) {
                rc = EXIT_USAGE;
                break;
            }
            names = nn;
        }
        if (!(names[n] = strdup(e->d_name))) {
            rc = EXIT_USAGE;
            break;
        }
        n++;
    }
    closedir(d);
    if (rc != 0)
        fprintf(stderr, "brine: out of memory listing %s\n", dir);
    if (n)
        qsort(names, n, sizeof *names, cmp_names);
    for (size_t i = 0; i < n && rc == 0; i++) {
        size_t plen = strlen(dir) + strlen(names[i]) + 2;
        char *path = malloc(plen);
        struct stat st;
        if (!path) {
            rc = EXIT_USAGE;
            break;
        }
        snprintf(path, plen, "%s/%s", dir, names[i]);
        if (stat(path, &st) == 0 && S_ISREG(st.st_mode) && batch_file(path, names[i], quiet) != 0)
            rc = EXIT_USAGE;
        free(path);
    }
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    return rc;
}

static int cmd_load(int argc, char **argv) {
    int batch = 0, quiet = 0, npaths = 0;
    char **paths = argv + 1;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--batch") == 0)
            batch = 1;
        else if (strcmp(argv[i], "--quiet") == 0)
            quiet = 1;
        else if (argv[i][0] == '-' && argv[i][1]) {
            fprintf(stderr, "brine load: unknown option %s\n", argv[i]);
            return EXIT_USAGE;
        } else
            paths[npaths++] = argv[i];
    }
    if (!batch) {
        if (npaths != 1) {
            fprintf(stderr, "brine load: give one FILE or -, or --batch FILE...|DIR\n");
            return EXIT_USAGE;
        }
        input in;
        if (input_open(paths[0], &in) != 0)
            return EXIT_USAGE;
        int rc = load_one(&in, NULL, quiet);
        input_close(&in);
        return finish(rc);
    }
    if (npaths == 0) {
        fprintf(stderr, "brine load --batch: give files or a directory\n");
        return EXIT_USAGE;
    }
    int rc = 0;
    for (int i = 0; i < npaths; i++) {
        struct stat st;
        int r;
        if (stat(paths[i], &st) == 0 && S_ISDIR(st.st_mode))
            r = batch_dir(paths[i], quiet);
        else
            r = batch_file(paths[i], base_name(paths[i]), quiet);
        if (r != 0)
            rc = EXIT_USAGE; /* go on: one unreadable file should not hide the rest */
    }
    return finish(rc);
}

/*------------------------------------------------------------------------------
 * brine dis
 *----------------------------------------------------------------------------*/

static int cmd_dis(int argc, char **argv) {
    if (argc != 2 || (argv[1][0] == '-' && argv[1][1])) {
        fprintf(stderr, "brine dis: give one FILE or -\n");
        return EXIT_USAGE;
    }
    input in;
    if (input_open(argv[1], &in) != 0)
        return EXIT_USAGE;
    pkl_err err;
    bool ok = pkl_dis(in.data, in.len, out_write, stdout, &err);
    input_close(&in);
    return finish(ok ? 0 : EXIT_REJECTED);
}

/*------------------------------------------------------------------------------
 * brine opcodes: the table in four shapes. Everything here iterates the
 * table; nothing names an opcode except PROTO and FRAME for the dictionary's
 * header tokens, through the constants the table generates.
 *----------------------------------------------------------------------------*/

/* Calls fn once per space-separated stack name. */
static void each_token(const char *s, void (*fn)(const char *tok, size_t len, int first)) {
    int first = 1;
    while (*s) {
        while (*s == ' ')
            s++;
        const char *t = s;
        while (*s && *s != ' ')
            s++;
        if (s > t) {
            fn(t, (size_t)(s - t), first);
            first = 0;
        }
    }
}

static void json_str(const char *s, size_t len) {
    putchar('"');
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\')
            printf("\\%c", c);
        else if (c < 0x20 || c >= 0x7f)
            printf("\\u%04x", c);
        else
            putchar(c);
    }
    putchar('"');
}

static void json_tok(const char *tok, size_t len, int first) {
    if (!first)
        fputs(", ", stdout);
    json_str(tok, len);
}

static void opcodes_json(void) {
    size_t n = pkl_opcode_count();
    puts("[");
    for (size_t i = 0; i < n; i++) {
        const pkl_opinfo *op = pkl_opcode_at(i);
        fputs("  {\"name\": ", stdout);
        json_str(op->name, strlen(op->name));
        printf(", \"code\": %u, \"arg\": ", (unsigned)op->code);
        if (op->layout == PKL_LAYOUT_NONE)
            fputs("null", stdout);
        else
            json_str(op->arg_name, strlen(op->arg_name));
        printf(", \"proto\": %u, \"stack_before\": [", (unsigned)op->proto);
        each_token(op->stack_before, json_tok);
        fputs("], \"stack_after\": [", stdout);
        each_token(op->stack_after, json_tok);
        fputs("], \"summary\": ", stdout);
        json_str(op->summary, strlen(op->summary));
        puts(i + 1 < n ? "}," : "}");
    }
    puts("]");
}

/* One dictionary entry: printable bytes as themselves, the rest (and the
   quote and backslash, which the format reserves) as \xNN. */
static void dict_entry(const char *name, const unsigned char *v, size_t len) {
    printf("%s=\"", name);
    for (size_t i = 0; i < len; i++) {
        if (v[i] >= 0x20 && v[i] < 0x7f && v[i] != '"' && v[i] != '\\')
            putchar(v[i]);
        else
            printf("\\x%02x", v[i]);
    }
    puts("\"");
}

static void opcodes_dict(void) {
    char name[64];
    unsigned char tok[16];
    puts("# AFL++ / libFuzzer dictionary for pickle streams.");
    puts("# Generated by `brine opcodes --dict` from spec/opcodes.def: do not edit.");
    puts("# Regenerate: build/brine opcodes --dict > corpus/pickle.dict");
    puts("");
    puts("# every opcode byte");
    for (size_t i = 0; i < pkl_opcode_count(); i++) {
        const pkl_opinfo *op = pkl_opcode_at(i);
        snprintf(name, sizeof name, "op_%s", op->name);
        dict_entry(name, &op->code, 1);
    }
    puts("");
    puts("# opcodes with an all-zero fixed argument or an empty counted one");
    for (size_t i = 0; i < pkl_opcode_count(); i++) {
        const pkl_opinfo *op = pkl_opcode_at(i);
        if (op->layout != PKL_LAYOUT_FIXED && op->layout != PKL_LAYOUT_COUNTED)
            continue;
        memset(tok, 0, sizeof tok);
        tok[0] = op->code;
        snprintf(name, sizeof name, "arg0_%s", op->name);
        dict_entry(name, tok, 1 + (size_t)op->width);
    }
    puts("");
    puts("# protocol headers, and the framed header that protocols 4+ start with");
    const pkl_opinfo *proto = pkl_opcode_info(PKL_OP_PROTO);
    const pkl_opinfo *frame = pkl_opcode_info(PKL_OP_FRAME);
    for (int v = proto->proto; v <= PKL_HIGHEST_PROTOCOL; v++) {
        tok[0] = proto->code;
        tok[1] = (unsigned char)v;
        snprintf(name, sizeof name, "proto_%d", v);
        dict_entry(name, tok, 2);
        if (v >= frame->proto) {
            tok[2] = frame->code;
            snprintf(name, sizeof name, "proto_%d_frame", v);
            dict_entry(name, tok, 3);
        }
    }
    puts("");
    puts("# the terminator of text arguments");
    dict_entry("newline", (const unsigned char *)"\n", 1);
}

/* Markdown-safe text: characters that would start emphasis, code, links or
   table cells are escaped. */
static void md_text(const char *s, size_t len) {
    for (size_t i = 0; i < len; i++) {
        if (strchr("\\`*_[]<>|#", s[i]))
            putchar('\\');
        putchar(s[i]);
    }
}

static void md_tok(const char *tok, size_t len, int first) {
    if (!first)
        putchar(' ');
    md_text(tok, len);
}

static void md_stack(const char *s) {
    if (!*s)
        fputs("–", stdout);
    else
        each_token(s, md_tok);
}

static void opcodes_markdown(void) {
    size_t n = pkl_opcode_count();
    puts("<!-- Generated by `brine opcodes --markdown` from spec/opcodes.def: do not edit.");
    puts("     Regenerate: build/brine opcodes --markdown > docs/opcodes.md -->");
    puts("# Pickle opcodes");
    puts("");
    printf("All %zu opcodes of pickle protocols 0–%d, grouped by the protocol that\n", n,
           PKL_HIGHEST_PROTOCOL);
    puts("introduced them. Stack names are pickletools' (`mark` is the mark object,");
    puts("`stackslice` the items above it); `arg` is the pickletools argument kind.");
    for (int v = 0; v <= PKL_HIGHEST_PROTOCOL; v++) {
        size_t count = 0;
        for (size_t i = 0; i < n; i++)
            count += pkl_opcode_at(i)->proto == v;
        if (!count)
            continue;
        printf("\n## Protocol %d (%zu opcodes)\n\n", v, count);
        puts("| byte | name | arg | stack before → after | summary |");
        puts("|---|---|---|---|---|");
        for (size_t i = 0; i < n; i++) {
            const pkl_opinfo *op = pkl_opcode_at(i);
            if (op->proto != v)
                continue;
            printf("| `0x%02x`", op->code);
            if (op->code >= 0x21 && op->code < 0x7f && op->code != '`' && op->code != '|')
                printf(" `%c`", op->code);
            fputs(" | ", stdout);
            md_text(op->name, strlen(op->name));
            fputs(" | ", stdout);
            if (op->layout == PKL_LAYOUT_NONE)
                fputs("–", stdout);
            else
                md_text(op->arg_name, strlen(op->arg_name));
            fputs(" | ", stdout);
            md_stack(op->stack_before);
            fputs(" → ", stdout);
            md_stack(op->stack_after);
            fputs(" | ", stdout);
            md_text(op->summary, strlen(op->summary));
            puts(" |");
        }
    }
    printf("\n%zu opcodes in all.\n", n);
}

static void opcodes_text(void) {
    for (size_t i = 0; i < pkl_opcode_count(); i++) {
        const pkl_opinfo *op = pkl_opcode_at(i);
        char c = op->code >= 0x21 && op->code < 0x7f ? (char)op->code : ' ';
        printf("0x%02x %c  %-16s %-22s p%u  [%s] -> [%s]  %s\n", op->code, c, op->name,
               op->layout == PKL_LAYOUT_NONE ? "-" : op->arg_name, (unsigned)op->proto,
               op->stack_before, op->stack_after, op->summary);
    }
}

static int cmd_opcodes(int argc, char **argv) {
    void (*print)(void) = opcodes_text;
    if (argc > 2) {
        fprintf(stderr, "brine opcodes: give at most one of --json, --dict, --markdown\n");
        return EXIT_USAGE;
    }
    if (argc == 2) {
        if (strcmp(argv[1], "--json") == 0)
            print = opcodes_json;
        else if (strcmp(argv[1], "--dict") == 0)
            print = opcodes_dict;
        else if (strcmp(argv[1], "--markdown") == 0)
            print = opcodes_markdown;
        else {
            fprintf(stderr, "brine opcodes: unknown option %s\n", argv[1]);
            return EXIT_USAGE;
        }
    }
    print();
    return finish(0);
}

/*------------------------------------------------------------------------------
 * brine version / help, and the command table
 *----------------------------------------------------------------------------*/

static int cmd_version(int argc, char **argv) {
    (void)argv;
    if (argc != 1) {
        fprintf(stderr, "brine version: takes no arguments\n");
        return EXIT_USAGE;
    }
    printf("brine %s (libpkl %s, canonical text %d)\n", BRINE_VERSION, PKL_VERSION_STRING,
           PKL_CANON_VERSION);
    return finish(0);
}

static int cmd_help(int argc, char **argv) {
    (void)argc, (void)argv;
    usage(stdout);
    return finish(0);
}

typedef struct command {
    const char *name;
    int (*run)(int argc, char **argv); /* argv[0] is the command name */
    const char *args;
    const char *summary;
} command;

int cmd_gen(int argc, char **argv); /* cli/gen.c */

static const command commands[] = {
    {"load", cmd_load, "FILE|-  |  --batch [--quiet] FILE...|DIR",
     "load with libpkl and print canonical text (exit 1: rejected)"},
    {"dis", cmd_dis, "FILE|-", "disassemble like pickletools.dis (exit 1: malformed)"},
    {"opcodes", cmd_opcodes, "[--json|--dict|--markdown]", "print the opcode table"},
    {"serve", cmd_serve, "[--one-shot]",
     "libpkl as a brine adapter: framed requests on stdin (docs/adapter-protocol.md)"},
    {"impls", cmd_impls, "[--json]",
     "list the pickle implementations available here and how to start each adapter"},
    {"gen", cmd_gen, "--seed S --count N [--protocol P] [--mode valid|invalid] [--fault NAME] --out DIR  |  --list-faults",
     "write generated raw pickle streams (valid, or with one named fault)"},
    {"run", cmd_run,
     "[--impl NAME]... [--adapter NAME=CMD]... [--corpus DIR] [--group G]... [--json FILE] [--coverage] ...",
     "run cases through implementations and judge them against the oracle (docs/runner.md)"},
    {"fuzz", cmd_fuzz,
     "[--target pkl_vs_cpython|pkl_load] [--engine libfuzzer|afl] --time S|--runs N [--jobs J] ...",
     "fuzz libpkl against CPython; findings deduplicated and minimized (docs/fuzzing.md)"},
    {"version", cmd_version, "", "print the versions of brine, libpkl and the canonical text"},
    {"help", cmd_help, "", "print this help"},
};

#define NCOMMANDS (sizeof commands / sizeof commands[0])

static void usage(FILE *out) {
    fprintf(out, "usage: brine COMMAND [ARGS]\n\ncommands:\n");
    for (size_t i = 0; i < NCOMMANDS; i++)
        fprintf(out, "  brine %s%s%s\n      %s\n", commands[i].name, *commands[i].args ? " " : "",
                commands[i].args, commands[i].summary);
    fprintf(out, "\nFILE - reads standard input. Exit status: 0 ok, 1 input rejected, "
                 "2 usage or I/O error.\n");
}

int main(int argc, char **argv) {
    static char outbuf[1 << 16]; /* dis writes one line per opcode */
    setvbuf(stdout, outbuf, _IOFBF, sizeof outbuf);
    if (argc < 2) {
        usage(stderr);
        return EXIT_USAGE;
    }
    const char *name = argv[1];
    if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0)
        name = "help";
    for (size_t i = 0; i < NCOMMANDS; i++)
        if (strcmp(name, commands[i].name) == 0)
            return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "brine: unknown command '%s'\n\n", argv[1]);
    usage(stderr);
    return EXIT_USAGE;
}
