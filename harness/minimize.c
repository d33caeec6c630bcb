/* Opcode-granularity minimizer (minimize.h). */
#include <stdlib.h>
#include <string.h>

#include "cover.h"
#include "minimize.h"

/* One opcode of the current input (or the unparsed tail after the last). */
typedef struct span {
    size_t pos, end;
    const pkl_opinfo *op; /* NULL for the tail */
} span;

typedef struct spans {
    span *v;
    size_t n, cap;
    bool oom;
} spans;

static void on_op(void *ctx, const pkl_opinfo *op, size_t pos, size_t end) {
    spans *s = ctx;
    if (s->oom)
        return;
    if (s->n == s->cap) {
        size_t ncap = s->cap ? s->cap * 2 : 64;
        span *nv = realloc(s->v, ncap * sizeof *nv);
        if (!nv) {
            s->oom = true;
            return;
        }
        s->v = nv;
        s->cap = ncap;
    }
    s->v[s->n++] = (span){pos, end, op};
}

/* The opcodes of data, plus a tail span for what follows the last one. */
static bool tokenize(const uint8_t *data, size_t len, spans *s) {
    s->n = 0;
    brine_scan_ops(data, len, on_op, s, NULL);
    size_t end = s->n ? s->v[s->n - 1].end : 0;
    if (end < len)
        on_op(s, NULL, end, len);
    return !s->oom;
}

typedef struct state {
    uint8_t *best;
    size_t best_len;
    brine_judge_fn judge;
    void *ctx;
    size_t max_batches, batch;
    brine_min_stats st;
    bool stop;
    /* the batch being built */
    uint8_t **bufs;
    brine_candidate *cands;
    bool *keep;
    size_t n;
} state;

/* Adds a candidate made of data[0..a) + mid[0..mlen) + data[b..len). */
static bool add_cand(state *S, size_t a, const uint8_t *mid, size_t mlen, size_t b) {
    size_t len = a + mlen + (S->best_len - b);
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf)
        return false;
    memcpy(buf, S->best, a);
    if (mlen)
        memcpy(buf + a, mid, mlen);
    memcpy(buf + a + mlen, S->best + b, S->best_len - b);
    S->bufs[S->n] = buf;
    S->cands[S->n] = (brine_candidate){buf, len};
    S->n++;
    return true;
}

static void drop_batch(state *S) {
    for (size_t i = 0; i < S->n; i++)
        free(S->bufs[i]);
    S->n = 0;
}

/* Judges the batch; on the first accepted candidate makes it the best input
   and returns true. */
static bool judge_batch(state *S) {
    if (!S->n || S->stop)
        return false;
    if (S->st.batches >= S->max_batches) {
        S->stop = true;
        drop_batch(S);
        return false;
    }
    memset(S->keep, 0, S->n * sizeof *S->keep);
    S->st.batches++;
    S->st.candidates += S->n;
    if (S->judge(S->ctx, S->cands, S->n, S->keep) != 0) {
        S->stop = true;
        drop_batch(S);
        return false;
    }
    for (size_t i = 0; i < S->n; i++) {
        if (!S->keep[i] || S->cands[i].len >= S->best_len)
            continue;
        free(S->best);
        S->best = S->bufs[i];
        S->best_len = S->cands[i].len;
        S->bufs[i] = NULL;
        S->st.accepted++;
        drop_batch(S);
        return true;
    }
    drop_batch(S);
    return false;
}

/* Phase 1: delete runs of `chunk` opcodes; true when something was deleted. */
static bool delete_runs(state *S, spans *sp) {
    bool progress = false;
    if (!tokenize(S->best, S->best_len, sp))
        return false;
    size_t chunk = sp->n > 1 ? sp->n / 2 : 1;
    while (chunk >= 1 && !S->stop) {
        bool found = false;
        for (size_t i = 0; i < sp->n && !found && !S->stop; i += chunk) {
            size_t j = i + chunk < sp->n ? i + chunk : sp->n;
            if (!add_cand(S, sp->v[i].pos, NULL, 0, sp->v[j - 1].end)) {
                S->stop = true;
                break;
            }
            if (S->n == S->batch || j == sp->n)
                found = judge_batch(S);
        }
        if (!found)
            found = judge_batch(S); /* a partial batch left over */
        if (found) {
            progress = true;
            if (!tokenize(S->best, S->best_len, sp))
                return progress;
            if (chunk > sp->n)
                chunk = sp->n > 1 ? sp->n / 2 : 1;
            if (!sp->n)
                break;
        } else {
            chunk /= 2;
        }
    }
    return progress;
}

static void put_le(uint8_t *p, uint64_t v, unsigned width) {
    for (unsigned i = 0; i < width; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/* Phase 2: halve counted and line arguments; true when one was shortened. */
static bool shrink_args(state *S, spans *sp) {
    if (!tokenize(S->best, S->best_len, sp))
        return false;
    uint8_t head[16];
    for (size_t i = 0; i < sp->n && !S->stop; i++) {
        const span *s = &sp->v[i];
        if (!s->op) {
            /* the unparsed tail (an opcode cut short: a counted argument
               running past the end) loses its second half: it usually
               stays cut short at the same opcode */
            size_t tail = s->end - s->pos;
            if (tail > 1 && !add_cand(S, s->pos + tail - tail / 2, NULL, 0, s->end)) {
                S->stop = true;
                break;
            }
            if (S->n == S->batch && judge_batch(S))
                return true;
            continue;
        }
        const uint8_t *arg = S->best + s->pos + 1;
        size_t arg_len = s->end - s->pos - 1;
        if (s->op->layout == PKL_LAYOUT_COUNTED && arg_len > s->op->width) {
            size_t payload = arg_len - s->op->width, keep = payload / 2;
            head[0] = s->op->code;
            put_le(head + 1, keep, s->op->width);
            /* opcode + new length, then the first half of the payload */
            size_t hl = 1 + s->op->width;
            uint8_t *mid = malloc(hl + keep + 1);
            if (!mid) {
                S->stop = true;
                break;
            }
            memcpy(mid, head, hl);
            memcpy(mid + hl, arg + s->op->width, keep);
            bool ok = add_cand(S, s->pos, mid, hl + keep, s->end);
            free(mid);
            if (!ok) {
                S->stop = true;
                break;
            }
        } else if (s->op->layout == PKL_LAYOUT_LINE && arg_len > 2) {
            /* the line without its newline, halved */
            size_t text = arg_len - 1, keep = text / 2;
            uint8_t *mid = malloc(keep + 3);
            if (!mid) {
                S->stop = true;
                break;
            }
            mid[0] = s->op->code;
            memcpy(mid + 1, arg, keep);
            mid[1 + keep] = '\n';
            bool ok = add_cand(S, s->pos, mid, keep + 2, s->end);
            free(mid);
            if (!ok) {
                S->stop = true;
                break;
            }
        }
        if (S->n == S->batch && judge_batch(S))
            return true;
    }
    return judge_batch(S);
}

uint8_t *brine_minimize(const uint8_t *data, size_t len, brine_judge_fn judge, void *ctx,
                        const brine_min_opts *opts, size_t *out_len, brine_min_stats *stats) {
    state S;
    memset(&S, 0, sizeof S);
    S.judge = judge;
    S.ctx = ctx;
    S.max_batches = opts && opts->max_batches ? opts->max_batches : 200;
    S.batch = opts && opts->batch ? opts->batch : 64;
    S.best = malloc(len ? len : 1);
    S.bufs = calloc(S.batch, sizeof *S.bufs);
    S.cands = calloc(S.batch, sizeof *S.cands);
    S.keep = calloc(S.batch, sizeof *S.keep);
    spans sp = {NULL, 0, 0, false};
    if (!S.best || !S.bufs || !S.cands || !S.keep) {
        free(S.best);
        free(S.bufs);
        free(S.cands);
        free(S.keep);
        return NULL;
    }
    memcpy(S.best, data, len);
    S.best_len = len;
    while (!S.stop) {
        bool a = delete_runs(&S, &sp);
        bool b = !S.stop && shrink_args(&S, &sp);
        if (!a && !b)
            break;
    }
    drop_batch(&S);
    free(sp.v);
    free(S.bufs);
    free(S.cands);
    free(S.keep);
    if (stats)
        *stats = S.st;
    *out_len = S.best_len;
    return S.best;
}
