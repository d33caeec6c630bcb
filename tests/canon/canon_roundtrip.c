/* Round trip of canonical documents through the reader (harness/canon_read.h)
 * and the folds (harness/fold.h). Test driver for ctest, not a brine command.
 *
 *   canon_roundtrip FILE...
 *
 * Each FILE holds documents in `brine load --batch` form: a line "== name"
 * before each document. For every document:
 *   1. brine_canon_read accepts it and pkl_canon prints the same bytes
 *      (error documents: the reader returns their class, and the level-0
 *      normalization gives the same bytes);
 *   2. the value level exists (brine_canon_normalize level 1), reads back as
 *      a value-level document, and normalizing it again changes nothing.
 * Prints one line per failure and a summary; exits 1 when anything failed or
 * no document was seen, 2 on a usage or I/O error.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "canon_read.h"
#include "fileio.h"
#include "fold.h"

typedef struct stats {
    size_t docs, errors_docs, value_changed, failed;
} stats;

static void failure(stats *s, const char *file, const char *name, const char *what, const pkl_err *e) {
    s->failed++;
    if (s->failed <= 50)
        printf("FAIL %s: %s: %s%s%s (pos %zu)\n", file, name, what, e && e->msg ? ": " : "",
               e && e->msg ? e->msg : "", e ? e->pos : (size_t)0);
}

static void check_doc(stats *s, const char *file, const char *name, const char *doc, size_t len) {
    s->docs++;
    brine_canon c;
    pkl_err e;
    if (!brine_canon_read(doc, len, NULL, &c, &e)) {
        failure(s, file, name, "rejected by the reader", &e);
        return;
    }
    if (c.error != PKL_OK) {
        s->errors_docs++;
    } else {
        size_t n;
        char *txt = pkl_canon(c.doc, NULL, (size_t)1 << 31, &n, &e);
        const char *nl = memchr(doc, '\n', len);
        size_t body = nl ? (size_t)(nl - doc) + 1 : len;
        const char *tnl = txt ? memchr(txt, '\n', n) : NULL;
        size_t tbody = tnl ? (size_t)(tnl - txt) + 1 : 0;
        if (!txt || n - tbody != len - body || memcmp(txt + tbody, doc + body, len - body) != 0)
            failure(s, file, name, "printing the parsed graph gives other bytes", txt ? NULL : &e);
        free(txt);
    }
    brine_canon_release(&c);
    size_t n0, n1, n2;
    char *raw = brine_canon_normalize(doc, len, 0, &n0, &e);
    if (!raw || n0 != len || memcmp(raw, doc, len) != 0)
        failure(s, file, name, "level-0 normalization changed the text", raw ? NULL : &e);
    free(raw);
    char *v1 = brine_canon_normalize(doc, len, 1, &n1, &e);
    if (!v1) {
        failure(s, file, name, "no value level", &e);
        return;
    }
    if (n1 - strlen("brine-canonical 1 value\n") != len - strlen("brine-canonical 1 raw\n") ||
        memcmp(v1 + strlen("brine-canonical 1 value\n"), doc + strlen("brine-canonical 1 raw\n"),
               n1 - strlen("brine-canonical 1 value\n")) != 0)
        s->value_changed++;
    char *v2 = brine_canon_normalize(v1, n1, 1, &n2, &e);
    if (!v2)
        failure(s, file, name, "the value level does not read back", &e);
    else if (n2 != n1 || memcmp(v1, v2, n1) != 0)
        failure(s, file, name, "folding is not idempotent", NULL);
    free(v1);
    free(v2);
}

int main(int argc, char **argv) {
    stats s = {0, 0, 0, 0};
    if (argc < 2) {
        fprintf(stderr, "usage: canon_roundtrip FILE...\n");
        return 2;
    }
    for (int a = 1; a < argc; a++) {
        size_t len;
        uint8_t *bytes = NULL;
        char *buf = brine_read_file(argv[a], &bytes, &len) == 0 ? (char *)bytes : NULL;
        if (!buf) {
            fprintf(stderr, "canon_roundtrip: cannot read %s\n", argv[a]);
            return 2;
        }
        /* documents start after "== name\n" lines and run to the next one */
        size_t pos = 0;
        while (pos < len) {
            const char *nl = memchr(buf + pos, '\n', len - pos);
            size_t eol = nl ? (size_t)(nl - buf) : len;
            if (eol - pos < 3 || memcmp(buf + pos, "== ", 3) != 0) {
                fprintf(stderr, "canon_roundtrip: %s: expected '== name' at byte %zu\n", argv[a], pos);
                free(buf);
                return 2;
            }
            char name[256];
            size_t nn = eol - pos - 3 < sizeof name - 1 ? eol - pos - 3 : sizeof name - 1;
            memcpy(name, buf + pos + 3, nn);
            name[nn] = '\0';
            size_t start = eol + 1 < len ? eol + 1 : len, end = start;
            while (end < len && !(len - end >= 3 && memcmp(buf + end, "== ", 3) == 0 &&
                                  (end == start || buf[end - 1] == '\n'))) {
                const char *q = memchr(buf + end, '\n', len - end);
                end = q ? (size_t)(q - buf) + 1 : len;
            }
            check_doc(&s, argv[a], name, buf + start, end - start);
            pos = end;
        }
        free(buf);
    }
    printf("%zu documents (%zu error documents): %zu failed; %zu change at the value level\n", s.docs,
           s.errors_docs, s.failed, s.value_changed);
    return s.failed || s.docs == 0 ? 1 : 0;
}
