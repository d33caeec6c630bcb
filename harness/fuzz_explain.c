/* Explain mode of the fuzz targets (fuzz_explain.h). */
#define _POSIX_C_SOURCE 200809L

#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fileio.h"
#include "fuzz_explain.h"

uint64_t brine_explain_hash(const uint8_t *data, size_t len) {
    uint64_t h = UINT64_C(0xcbf29ce484222325);
    for (size_t i = 0; i < len; i++) {
        h ^= data[i];
        h *= UINT64_C(0x100000001b3);
    }
    return h;
}

int brine_explain_enabled(void) {
    const char *p = getenv(BRINE_EXPLAIN_ENV);
    return p && *p;
}

/*------------------------------------------------------------------------------
 * Writing
 *----------------------------------------------------------------------------*/

typedef struct buf {
    char *p;
    size_t len, cap;
    bool oom;
} buf;

static void put(buf *b, const char *s, size_t n) {
    if (b->oom)
        return;
    if (n > b->cap - b->len) {
        size_t ncap = b->cap ? b->cap : 1024;
        while (ncap - b->len < n)
            ncap *= 2;
        char *np = realloc(b->p, ncap);
        if (!np) {
            b->oom = true;
            return;
        }
        b->p = np;
        b->cap = ncap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
}

static void puts_(buf *b, const char *s) { put(b, s, strlen(s)); }

/* Makes s safe as one token: [A-Za-z0-9_.-], anything else '-'. */
static void put_token(buf *b, const char *s) {
    if (!s || !*s) {
        puts_(b, "-");
        return;
    }
    for (; *s; s++) {
        char c = *s;
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '_' || c == '.' || c == '-';
        put(b, ok ? &c : "-", 1);
    }
}

/* A block of text lines, each guaranteed to end in '\n'. */
static void put_block(buf *b, const char *s, size_t n) {
    put(b, s, n);
    if (n && s[n - 1] != '\n')
        put(b, "\n", 1);
}

void brine_explain_write(const uint8_t *data, size_t len, const char *verdict,
                         const char *signature, const char *explanation, const char *text,
                         size_t text_len, const char *trace, size_t trace_len) {
    const char *path = getenv(BRINE_EXPLAIN_ENV);
    if (!path || !*path)
        return;
    buf b = {NULL, 0, 0, false};
    char head[40];
    snprintf(head, sizeof head, "== %016llx ", (unsigned long long)brine_explain_hash(data, len));
    puts_(&b, head);
    put_token(&b, verdict);
    puts_(&b, " ");
    put_token(&b, signature);
    puts_(&b, "\nexplanation ");
    for (const char *s = explanation ? explanation : ""; *s; s++)
        put(&b, *s == '\n' || *s == '\r' ? " " : s, 1);
    puts_(&b, "\n-- text\n");
    if (text)
        put_block(&b, text, text_len);
    puts_(&b, "-- trace\n");
    if (trace)
        put_block(&b, trace, trace_len);
    puts_(&b, "-- end\n");
    if (!b.oom) {
        int fd = open(path, O_WRONLY | O_CREAT | O_APPEND, 0666);
        if (fd >= 0) {
            ssize_t w = write(fd, b.p, b.len);
            (void)w;
            close(fd);
        }
    }
    free(b.p);
}

/*------------------------------------------------------------------------------
 * Reading
 *----------------------------------------------------------------------------*/

static char *slurp(const char *path, size_t *len) {
    uint8_t *data;
    return brine_read_file(path, &data, len) == 0 ? (char *)data : NULL;
}

static char *dup_range(const char *a, const char *b) {
    char *d = malloc((size_t)(b - a) + 1);
    if (d) {
        memcpy(d, a, (size_t)(b - a));
        d[b - a] = '\0';
    }
    return d;
}

static char *dup_str(const char *s) { return dup_range(s, s + strlen(s)); }

void brine_explain_free(brine_explained *e) {
    if (!e)
        return;
    free(e->verdict);
    free(e->signature);
    free(e->explanation);
    free(e->text);
    free(e->trace);
    memset(e, 0, sizeof *e);
}

/* The record for `hash` in the report (the last one, when an input was run
   twice); false when there is none. */
static bool find_record(const char *rep, uint64_t hash, brine_explained *e) {
    char key[24];
    snprintf(key, sizeof key, "== %016llx ", (unsigned long long)hash);
    const char *found = NULL;
    for (const char *p = rep; (p = strstr(p, key)); p++)
        if (p == rep || p[-1] == '\n')
            found = p;
    if (!found)
        return false;
    const char *p = found + strlen(key);
    const char *sp = strchr(p, ' '), *nl = strchr(p, '\n');
    if (!sp || !nl || sp > nl)
        return false;
    e->verdict = dup_range(p, sp);
    e->signature = dup_range(sp + 1, nl);
    p = nl + 1;
    if (strncmp(p, "explanation ", 12) == 0) {
        nl = strchr(p, '\n');
        if (!nl)
            return true;
        e->explanation = dup_range(p + 12, nl);
        p = nl + 1;
    }
    if (strncmp(p, "-- text\n", 8) == 0) {
        const char *t = p + 8, *tend = strstr(t, "-- trace\n");
        if (!tend)
            return true;
        if (tend > t)
            e->text = dup_range(t, tend);
        const char *r = tend + 9, *rend = strstr(r, "-- end\n");
        if (rend)
            e->trace = dup_range(r, rend);
    }
    return true;
}

/* `FAIL <file>: <why>` in the replay log, as a crash signature. */
static bool find_failure(const char *log, const char *file, brine_explained *e) {
    size_t fl = strlen(file);
    for (const char *p = log; p && *p;) {
        const char *nl = strchr(p, '\n');
        if (strncmp(p, "FAIL ", 5) == 0 && strncmp(p + 5, file, fl) == 0 && p[5 + fl] == ':') {
            const char *why = p + 5 + fl + 1;
            while (*why == ' ')
                why++;
            const char *end = nl ? nl : why + strlen(why);
            e->verdict = dup_str("crash");
            e->explanation = dup_range(why, end);
            /* the signature: the reason's first words, up to a digit-free 40 characters */
            char sig[64] = "crash.";
            size_t k = 6;
            for (const char *s = why; s < end && k < 46; s++) {
                char c = *s;
                if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
                    sig[k++] = c;
                else if ((c == ' ' || c == '-' || c == '_') && sig[k - 1] != '-' &&
                         sig[k - 1] != '.')
                    sig[k++] = '-';
                else if (c == ':' || c == '(')
                    break;
            }
            while (k > 6 && sig[k - 1] == '-')
                k--;
            sig[k] = '\0';
            e->signature = dup_range(sig, sig + k);
            return true;
        }
        p = nl ? nl + 1 : NULL;
    }
    return false;
}

int brine_explain_read(const char *report, const char *log, char *const *files, size_t n,
                       brine_explained *out) {
    size_t rlen = 0, llen = 0;
    char *rep = slurp(report, &rlen);
    char *lg = log ? slurp(log, &llen) : NULL;
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        memset(&out[i], 0, sizeof out[i]);
        size_t len;
        char *data = slurp(files[i], &len);
        if (!data) {
            rc = -1;
            break;
        }
        uint64_t h = brine_explain_hash((const uint8_t *)data, len);
        free(data);
        if (rep && find_record(rep, h, &out[i]))
            continue;
        if (lg && find_failure(lg, files[i], &out[i]))
            continue;
        out[i].verdict = dup_str("agree");
    }
    if (rc != 0)
        for (size_t i = 0; i < n; i++)
            brine_explain_free(&out[i]);
    free(rep);
    free(lg);
    return rc;
}
