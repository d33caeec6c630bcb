/* libpkl's canonical document + safety trace for one case (pkl_answer.h).
 *
 * Trace numbering. Event N names the object it produced (pkl_event.result):
 * the interned global node of a GLOBAL event (a global resolved again keeps
 * the number of its first event, as brine_oracle.trace does), the stub of a
 * CALL/NEW/PERSID event. Later events name their target by that number.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pkl_answer.h"

/*------------------------------------------------------------------------------
 * A growable text buffer with a hard cap
 *----------------------------------------------------------------------------*/

typedef struct tbuf {
    char *p;
    size_t len, cap, max;
    bool failed; /* over max or out of memory: the content is incomplete */
} tbuf;

static void tb_put(tbuf *b, const char *s, size_t n) {
    if (b->failed)
        return;
    if (n > b->max - b->len) {
        b->failed = true;
        return;
    }
    if (n > b->cap - b->len) {
        size_t ncap = b->cap ? b->cap : 256;
        while (ncap - b->len < n)
            ncap = ncap > SIZE_MAX / 2 ? SIZE_MAX : ncap * 2;
        char *np = realloc(b->p, ncap);
        if (!np) {
            b->failed = true;
            return;
        }
        b->p = np;
        b->cap = ncap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
}

static void tb_putc(tbuf *b, char c) { tb_put(b, &c, 1); }

static void tb_num(tbuf *b, size_t v) {
    char tmp[24];
    int n = snprintf(tmp, sizeof tmp, "%zu", v);
    tb_put(b, tmp, (size_t)n);
}

/* A global's name, quoted exactly as the canonical text quotes it. */
static void tb_quoted_utf8(tbuf *b, const char *s, size_t n) {
    char *q = n <= (SIZE_MAX - 2) / 4 ? malloc(PKL_QUOTE_MAX(n)) : NULL;
    if (!q) {
        b->failed = true;
        return;
    }
    tb_put(b, q, pkl_quote_str(s, n, q));
    free(q);
}

/*------------------------------------------------------------------------------
 * Pointer -> event number, open addressing (value 0 = no event)
 *----------------------------------------------------------------------------*/

typedef struct ptrmap {
    const void **keys;
    size_t *vals;
    size_t cap, len; /* cap is 0 or a power of two */
} ptrmap;

static size_t ptr_hash(const void *p, size_t mask) {
    uint64_t h = (uint64_t)(uintptr_t)p;
    h ^= h >> 33;
    h *= UINT64_C(0xff51afd7ed558ccd);
    h ^= h >> 33;
    return (size_t)h & mask;
}

static size_t *pm_slot(const ptrmap *m, const void *key) {
    if (!m->cap)
        return NULL;
    size_t mask = m->cap - 1;
    for (size_t i = ptr_hash(key, mask);; i = (i + 1) & mask) {
        if (m->keys[i] == key)
            return &m->vals[i];
        if (!m->keys[i])
            return NULL;
    }
}

static size_t pm_get(const ptrmap *m, const void *key) {
    size_t *v = pm_slot(m, key);
    return v ? *v : 0;
}

static bool pm_grow(ptrmap *m) {
    size_t ncap = m->cap ? m->cap * 2 : 64;
    if (ncap < m->cap || ncap > SIZE_MAX / sizeof(size_t))
        return false;
    const void **nk = calloc(ncap, sizeof *nk);
    size_t *nv = calloc(ncap, sizeof *nv);
    if (!nk || !nv) {
        free(nk);
        free(nv);
        return false;
    }
    size_t mask = ncap - 1;
    for (size_t i = 0; i < m->cap; i++) {
        if (!m->keys[i])
            continue;
        size_t j = ptr_hash(m->keys[i], mask);
        while (nk[j])
            j = (j + 1) & mask;
        nk[j] = m->keys[i];
        nv[j] = m->vals[i];
    }
    free(m->keys);
    free(m->vals);
    m->keys = nk;
    m->vals = nv;
    m->cap = ncap;
    return true;
}

static bool pm_set(ptrmap *m, const void *key, size_t val) {
    size_t *v = pm_slot(m, key);
    if (v) {
        *v = val;
        return true;
    }
    if ((m->len + 1) * 4 > m->cap * 3 && !pm_grow(m))
        return false;
    size_t mask = m->cap - 1;
    size_t i = ptr_hash(key, mask);
    while (m->keys[i])
        i = (i + 1) & mask;
    m->keys[i] = key;
    m->vals[i] = val;
    m->len++;
    return true;
}

static void pm_free(ptrmap *m) {
    free(m->keys);
    free(m->vals);
    memset(m, 0, sizeof *m);
}

/*------------------------------------------------------------------------------
 * The tracer: on_event -> trace lines
 *----------------------------------------------------------------------------*/

typedef struct tracer {
    tbuf out;                  /* the trace lines */
    size_t n;                  /* events so far */
    ptrmap made;               /* node -> number of the event that produced it */
    bool failed;               /* out of memory: the trace is incomplete */
} tracer;

static void tracer_init(tracer *t, size_t max_bytes) {
    memset(t, 0, sizeof *t);
    t->out.max = max_bytes;
}

static void tracer_free(tracer *t) {
    free(t->out.p);
    pm_free(&t->made);
    memset(t, 0, sizeof *t);
}

/* The number of the event that produced `v` (0: none known, a bug). */
static size_t resolve(tracer *t, const pkl_val *v) { return pm_get(&t->made, v); }

static const char *mut_name(pkl_mutkind k) {
    switch (k) {
    case PKL_MUT_BUILD:
        return "build";
    case PKL_MUT_APPEND:
        return "append";
    case PKL_MUT_SETITEM:
        return "setitem";
    case PKL_MUT_ADD:
        return "add";
    }
    return "build";
}

static void line_ref(tracer *t, size_t num, const char *kind, size_t target) {
    tb_num(&t->out, num);
    tb_putc(&t->out, ' ');
    tb_put(&t->out, kind, strlen(kind));
    tb_putc(&t->out, ' ');
    tb_num(&t->out, target);
    tb_putc(&t->out, '\n');
}

static void on_event(void *ctx, const pkl_event *ev) {
    tracer *t = ctx;
    if (t->failed || t->out.failed)
        return;
    size_t num = ++t->n;
    switch (ev->kind) {
    case PKL_EV_GLOBAL:
        tb_num(&t->out, num);
        tb_put(&t->out, " global ", 8);
        tb_quoted_utf8(&t->out, ev->module, ev->mlen);
        tb_putc(&t->out, ' ');
        tb_quoted_utf8(&t->out, ev->name, ev->nlen);
        tb_putc(&t->out, '\n');
        /* one node per distinct global: named by the first event that resolved it */
        if (!pm_get(&t->made, ev->target) && !pm_set(&t->made, ev->target, num))
            t->failed = true;
        return;
    case PKL_EV_CALL:
    case PKL_EV_NEW:
        line_ref(t, num, ev->kind == PKL_EV_CALL ? "call" : "new", resolve(t, ev->target));
        if (!pm_set(&t->made, ev->result, num))
            t->failed = true;
        return;
    case PKL_EV_PERSID:
        tb_num(&t->out, num);
        tb_put(&t->out, " persid\n", 8);
        if (!pm_set(&t->made, ev->result, num))
            t->failed = true;
        return;
    case PKL_EV_MUTATE: {
        size_t nm = pkl_val_mut_count(ev->target);
        pkl_mutkind mk = nm ? pkl_val_mut(ev->target, nm - 1, NULL, NULL) : PKL_MUT_BUILD;
        line_ref(t, num, mut_name(mk), resolve(t, ev->target));
        return;
    }
    }
}

/*------------------------------------------------------------------------------
 * One answer
 *----------------------------------------------------------------------------*/

/* Both parts of an answer must fit one u32 frame of the adapter protocol. */
#define ANSWER_MAX ((size_t)UINT32_MAX / 2)

int brine_pkl_answer_error(pkl_code code, brine_pkl_answer *out) {
    memset(out, 0, sizeof *out);
    out->text = pkl_canon_error(code, NULL, &out->text_len);
    out->trace = calloc(1, 1);
    if (!out->text || !out->trace) {
        brine_pkl_answer_free(out);
        return -1;
    }
    out->err.code = code;
    out->err.msg = "refused before loading";
    return 0;
}

int brine_pkl_answer_load(const void *data, size_t len, const pkl_limits *lim,
                          brine_pkl_answer *out) {
    pkl_limits dflt = pkl_limits_default();
    if (!lim)
        lim = &dflt;
    memset(out, 0, sizeof *out);
    tracer t;
    tracer_init(&t, lim->max_output < ANSWER_MAX ? lim->max_output : ANSWER_MAX);
    pkl_load_opts opts;
    memset(&opts, 0, sizeof opts);
    opts.limits = lim;
    opts.on_event = on_event;
    opts.ctx = &t;
    pkl_err err = {PKL_OK, NULL, 0};
    size_t text_len = 0;
    char *text = pkl_canon_load(data, len, &opts, &text_len, &err);
    if (!text || t.failed || t.out.failed || text_len > ANSWER_MAX) {
        free(text);
        tracer_free(&t);
        int rc = brine_pkl_answer_error(PKL_ERR_RESOURCE_LIMIT, out);
        if (rc == 0) {
            out->err.msg = err.code == PKL_ERR_RESOURCE_LIMIT && err.msg
                               ? err.msg
                               : "the canonical text or the trace exceeds max_output";
            out->err.pos = err.pos;
        }
        return rc;
    }
    tb_putc(&t.out, '\0'); /* NUL-terminate; not counted */
    if (t.out.failed) {
        free(text);
        tracer_free(&t);
        return brine_pkl_answer_error(PKL_ERR_RESOURCE_LIMIT, out);
    }
    out->text = text;
    out->text_len = text_len;
    out->trace_len = t.out.len - 1;
    out->trace = t.out.p;
    t.out.p = NULL;
    out->err = err;
    tracer_free(&t);
    return 0;
}

void brine_pkl_answer_free(brine_pkl_answer *a) {
    if (!a)
        return;
    free(a->text);
    free(a->trace);
    memset(a, 0, sizeof *a);
}
