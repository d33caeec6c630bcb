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
 * The answer itself (text + trace) comes from harness/pkl_answer.c, shared
 * with `brine run` and the fuzz targets.
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
#include "pkl_answer.h"
#include "serve.h"

enum { SERVE_EXIT_REJECTED = 1, SERVE_EXIT_USAGE = 2 };

static const char TRACE_MARK[] = "--- trace\n";
#define TRACE_MARK_LEN (sizeof TRACE_MARK - 1)
#define FRAME_MAX ((size_t)UINT32_MAX)

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
    brine_pkl_answer ans;
    if (brine_pkl_answer_load(data, len, lim, &ans) != 0)
        return -1;
    int rc = write_frame(ans.text, ans.text_len, TRACE_MARK, TRACE_MARK_LEN, ans.trace,
                         ans.trace_len);
    brine_pkl_answer_free(&ans);
    return rc;
}

static int hello(void) {
    char h[256];
    int n = snprintf(h, sizeof h,
                     "brine-adapter 1\nname pkl\nversion %s\nlevel raw\nfeatures trace\n"
                     "highest-protocol %d\n",
                     PKL_VERSION_STRING, PKL_HIGHEST_PROTOCOL);
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
