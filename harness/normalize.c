/* brine_canon_normalize (fold.h): canonical text in, canonical text at the
 * asked level out, through the reader (canon_read.h), the folds and libpkl's
 * emitter. */
#include <stdlib.h>
#include <string.h>

#include "canon_read.h"
#include "fold.h"

static char *with_header(const char *body, size_t blen, int level, size_t *out_len, pkl_err *err) {
    const char *h = level ? "brine-canonical 1 value\n" : "brine-canonical 1 raw\n";
    size_t hl = strlen(h);
    char *out = malloc(hl + blen + 1);
    if (!out) {
        if (err)
            *err = (pkl_err){PKL_ERR_RESOURCE_LIMIT, "out of memory", 0};
        return NULL;
    }
    memcpy(out, h, hl);
    memcpy(out + hl, body, blen);
    out[hl + blen] = '\0';
    if (out_len)
        *out_len = hl + blen;
    return out;
}

static size_t body_offset(const char *text, size_t len) {
    const char *nl = memchr(text, '\n', len);
    return nl ? (size_t)(nl - text) + 1 : len;
}

char *brine_canon_normalize_lim(const char *text, size_t len, int level, const pkl_limits *lim,
                                size_t *out_len, pkl_err *err) {
    pkl_limits l = lim ? *lim : pkl_limits_default();
    if (level != 0 && level != 1) {
        if (err)
            *err = (pkl_err){PKL_ERR_BAD_ARGUMENT, "level is 0 (raw) or 1 (value)", 0};
        return NULL;
    }
    brine_canon c;
    if (!brine_canon_read(text, len, &l, &c, err))
        return NULL;
    if (c.error == PKL_OK && level == 0 && c.level == 1) {
        brine_canon_release(&c);
        if (err)
            *err = (pkl_err){PKL_ERR_BAD_ARGUMENT, "a value-level document has no raw form", 0};
        return NULL;
    }
    if (c.error != PKL_OK || level == 0) {
        /* the reader proved the body is exactly what printing gives; a
           value-level input is folded again below (folding is idempotent,
           and an adapter may have left something unfolded) */
        size_t b = body_offset(text, len);
        brine_canon_release(&c);
        return with_header(text + b, len - b, level, out_len, err);
    }
    char *out = NULL;
    pkl_err e = {PKL_OK, NULL, 0};
    if (brine_fold(c.doc, &e) == PKL_OK) {
        size_t n;
        char *txt = pkl_canon(c.doc, NULL, l.max_output, &n, &e);
        if (txt) {
            size_t b = body_offset(txt, n);
            out = with_header(txt + b, n - b, 1, out_len, &e);
            free(txt);
        }
    }
    brine_canon_release(&c);
    if (!out && err)
        *err = e;
    if (out && err)
        *err = (pkl_err){PKL_OK, NULL, 0};
    return out;
}

char *brine_canon_normalize(const char *text, size_t len, int level, size_t *out_len,
                            pkl_err *err) {
    return brine_canon_normalize_lim(text, len, level, NULL, out_len, err);
}
