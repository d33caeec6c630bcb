/* brine serve: libpkl as a brine adapter (docs/adapter-protocol.md, v1).
 *
 * Persistent mode: a hello frame, then one response frame per request frame
 * (u32 little-endian length + bytes, both ways) until stdin is closed. Each
 * response is the canonical text of the case (pkl_canon_load, default
 * pkl_limits) followed by "--- trace" and the safety trace built from
 * libpkl's on_event callback. One-shot mode (--one-shot): the pickle on stdin,
 * its canonical text on stdout, exit 0 loaded / 1 rejected.
 *
 * Memory per case is bounded: a request above max_input is skipped without
 * being stored and answered `error resource-limit`; the load itself is
 * bounded by pkl_limits; the trace by max_output. Nothing here recurses.
 *
 * Trace numbering. Event N names the object it produced (pkl_event.result):
 * the interned global node of a GLOBAL event (a global resolved again keeps
 * the number of its first event, as brine_oracle.trace does), the stub of a
 * CALL/NEW/PERSID event. Later events name their target by that number.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pkl.h"
#include "serve.h"

enum { SERVE_EXIT_REJECTED = 1, SERVE_EXIT_USAGE = 2 };

static const char TRACE_MARK[] = "--- trace\n";
#define TRACE_MARK_LEN (sizeof TRACE_MARK - 1)
#define FRAME_MAX ((size_t)UINT32_MAX)

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
 * I/O: exact reads through a buffer, whole writes
 *----------------------------------------------------------------------------*/

typedef struct reader {
    int fd;
    size_t pos, len;
    unsigned char buf[1 << 16];
} reader;

/* 1: got n bytes; 0: EOF before the first byte; -1: EOF inside, or an error. */
static int rd_exact(reader *r, void *dst, size_t n, bool discard) {
    unsigned char *d = dst;
    size_t got = 0;
    while (got < n) {
        if (r->pos == r->len) {
            ssize_t k;
            if (!discard && n - got >= sizeof r->buf) {
                /* large payloads go straight to their destination */
                k = read(r->fd, d + got, n - got > (size_t)SSIZE_MAX ? (size_t)SSIZE_MAX : n - got);
                if (k > 0) {
                    got += (size_t)k;
                    continue;
                }
            } else {
                k = read(r->fd, r->buf, sizeof r->buf);
                if (k > 0) {
                    r->pos = 0;
                    r->len = (size_t)k;
                    continue;
                }
            }
            if (k < 0 && errno == EINTR)
                continue;
            if (k < 0)
                fprintf(stderr, "brine serve: read error: %s\n", strerror(errno));
            return got == 0 && k == 0 ? 0 : -1;
        }
        size_t take = r->len - r->pos;
        if (take > n - got)
            take = n - got;
        if (!discard)
            memcpy(d + got, r->buf + r->pos, take);
        r->pos += take;
        got += take;
    }
    return 1;
}

static int write_all(int fd, const void *p, size_t n) {
    const char *s = p;
    while (n) {
        ssize_t k = write(fd, s, n > (size_t)SSIZE_MAX ? (size_t)SSIZE_MAX : n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return -1;
        s += k;
        n -= (size_t)k;
    }
    return 0;
}

/* One frame made of up to three pieces. */
static int write_frame(const char *a, size_t alen, const char *b, size_t blen, const char *c,
                       size_t clen) {
    static char small[1 << 16];
    size_t total = alen + blen + clen;
    if (total > FRAME_MAX || total < alen)
        return -1;
    unsigned char h[4] = {(unsigned char)total, (unsigned char)(total >> 8),
                          (unsigned char)(total >> 16), (unsigned char)(total >> 24)};
    if (total + 4 <= sizeof small) {
        memcpy(small, h, 4);
        if (alen)
            memcpy(small + 4, a, alen);
        if (blen)
            memcpy(small + 4 + alen, b, blen);
        if (clen)
            memcpy(small + 4 + alen + blen, c, clen);
        return write_all(STDOUT_FILENO, small, total + 4);
    }
    if (write_all(STDOUT_FILENO, h, 4) || (alen && write_all(STDOUT_FILENO, a, alen)) ||
        (blen && write_all(STDOUT_FILENO, b, blen)) || (clen && write_all(STDOUT_FILENO, c, clen)))
        return -1;
    return 0;
}

/*------------------------------------------------------------------------------
 * One case
 *----------------------------------------------------------------------------*/

static int respond_error(pkl_code code) {
    size_t len = 0;
    char *text = pkl_canon_error(code, NULL, &len);
    if (!text)
        return -1;
    int rc = write_frame(text, len, TRACE_MARK, TRACE_MARK_LEN, NULL, 0);
    free(text);
    return rc;
}

static int serve_case(const unsigned char *data, size_t len, const pkl_limits *lim) {
    tracer t;
    /* canonical text (<= max_output) + trace must fit one u32 frame */
    size_t trace_max = lim->max_output;
    if (trace_max > FRAME_MAX / 2)
        trace_max = FRAME_MAX / 2;
    tracer_init(&t, trace_max);
    pkl_load_opts opts;
    memset(&opts, 0, sizeof opts);
    opts.limits = lim;
    opts.on_event = on_event;
    opts.ctx = &t;
    size_t out_len = 0;
    pkl_err err = {PKL_OK, NULL, 0};
    char *text = pkl_canon_load(data, len, &opts, &out_len, &err);
    int rc;
    if (!text || t.failed || t.out.failed || out_len > FRAME_MAX / 2) {
        /* the trace (or the text) could not be completed within the bounds */
        rc = respond_error(PKL_ERR_RESOURCE_LIMIT);
    } else {
        rc = write_frame(text, out_len, TRACE_MARK, TRACE_MARK_LEN, t.out.p, t.out.len);
    }
    free(text);
    tracer_free(&t);
    return rc;
}

static int hello(void) {
    char h[256];
    int n = snprintf(h, sizeof h,
                     "brine-adapter 1\nname pkl\nversion %s\nlevel raw\nfeatures trace\n",
                     PKL_VERSION_STRING);
    return write_frame(h, (size_t)n, NULL, 0, NULL, 0);
}

static int serve_persistent(void) {
    static reader rd;
    rd.fd = STDIN_FILENO;
    rd.pos = rd.len = 0;
    pkl_limits lim = pkl_limits_default();
    unsigned char *buf = NULL;
    size_t cap = 0;
    int rc = 0;
    if (hello() != 0) {
        fprintf(stderr, "brine serve: cannot write the hello frame: %s\n", strerror(errno));
        return SERVE_EXIT_USAGE;
    }
    for (;;) {
        unsigned char h[4];
        int r = rd_exact(&rd, h, 4, false);
        if (r == 0)
            break; /* stdin closed between frames: done */
        if (r < 0) {
            fprintf(stderr, "brine serve: input ended inside a frame header\n");
            rc = SERVE_EXIT_USAGE;
            break;
        }
        size_t len = (size_t)h[0] | (size_t)h[1] << 8 | (size_t)h[2] << 16 | (size_t)h[3] << 24;
        int w;
        if (len > lim.max_input) {
            /* never stored: skipped, answered as libpkl would answer it */
            if (rd_exact(&rd, NULL, len, true) != 1) {
                fprintf(stderr, "brine serve: input ended inside a request\n");
                rc = SERVE_EXIT_USAGE;
                break;
            }
            w = respond_error(PKL_ERR_RESOURCE_LIMIT);
        } else {
            if (len > cap || !buf) {
                free(buf);
                cap = len > 4096 ? len : 4096;
                buf = malloc(cap);
            }
            if (!buf) {
                cap = 0;
                if (rd_exact(&rd, NULL, len, true) != 1) {
                    fprintf(stderr, "brine serve: input ended inside a request\n");
                    rc = SERVE_EXIT_USAGE;
                    break;
                }
                w = respond_error(PKL_ERR_RESOURCE_LIMIT);
            } else {
                if (rd_exact(&rd, buf, len, false) != 1) {
                    fprintf(stderr, "brine serve: input ended inside a request\n");
                    rc = SERVE_EXIT_USAGE;
                    break;
                }
                w = serve_case(buf, len, &lim);
                if (cap > ((size_t)1 << 24)) { /* do not keep a huge buffer between cases */
                    free(buf);
                    buf = NULL;
                    cap = 0;
                }
            }
        }
        if (w != 0) {
            fprintf(stderr, "brine serve: cannot write a response: %s\n", strerror(errno));
            rc = SERVE_EXIT_USAGE;
            break;
        }
    }
    free(buf);
    return rc;
}

/* One-shot: the pickle on stdin (at most max_input bytes are kept). */
static int serve_one_shot(void) {
    pkl_limits lim = pkl_limits_default();
    size_t len = 0, cap = 0;
    unsigned char *buf = NULL;
    bool over = false;
    for (;;) {
        if (len == cap) {
            size_t ncap = cap ? cap * 2 : 65536;
            if (ncap > lim.max_input + 1)
                ncap = lim.max_input + 1;
            if (ncap <= cap) { /* more than max_input: drain the rest */
                over = true;
                char sink[65536];
                ssize_t k;
                while ((k = read(STDIN_FILENO, sink, sizeof sink)) != 0)
                    if (k < 0 && errno != EINTR)
                        break;
                break;
            }
            unsigned char *nb = realloc(buf, ncap);
            if (!nb) {
                over = true;
                break;
            }
            buf = nb;
            cap = ncap;
        }
        ssize_t k = read(STDIN_FILENO, buf + len, cap - len);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0) {
            fprintf(stderr, "brine serve: cannot read standard input: %s\n", strerror(errno));
            free(buf);
            return SERVE_EXIT_USAGE;
        }
        if (k == 0)
            break;
        len += (size_t)k;
    }
    size_t out_len = 0;
    pkl_err err = {PKL_OK, NULL, 0};
    char *text;
    if (over) {
        err.code = PKL_ERR_RESOURCE_LIMIT;
        text = pkl_canon_error(PKL_ERR_RESOURCE_LIMIT, NULL, &out_len);
    } else {
        static const unsigned char none[1];
        pkl_load_opts opts;
        memset(&opts, 0, sizeof opts);
        opts.limits = &lim;
        text = pkl_canon_load(buf ? buf : none, len, &opts, &out_len, &err);
    }
    free(buf);
    if (!text) {
        fprintf(stderr, "brine serve: out of memory rendering the result\n");
        return SERVE_EXIT_USAGE;
    }
    int w = write_all(STDOUT_FILENO, text, out_len);
    free(text);
    if (w != 0) {
        fprintf(stderr, "brine serve: cannot write the result: %s\n", strerror(errno));
        return SERVE_EXIT_USAGE;
    }
    return err.code == PKL_OK ? 0 : SERVE_EXIT_REJECTED;
}

int cmd_serve(int argc, char **argv) {
    bool one_shot = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--one-shot") == 0) {
            one_shot = true;
        } else {
            fprintf(stderr, "brine serve: unknown argument %s\n", argv[i]);
            return SERVE_EXIT_USAGE;
        }
    }
    /* a runner that goes away must give a write error, not a signal */
    signal(SIGPIPE, SIG_IGN);
    return one_shot ? serve_one_shot() : serve_persistent();
}
