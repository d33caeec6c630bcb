/* The runner's side of adapter protocol v1: see adapter.h, and
 * oracle/brine_oracle/client.py for the same behaviour in Python.
 *
 * Persistent mode keeps, for the current process, the cases
 * [head, sent_end) "in flight": sent, being sent or queued, all answered by
 * this process in order. Writing is non-blocking and interleaved with
 * reading (one poll loop), so a large request and a large response at the
 * same time cannot block each other. Responses are read into one buffer
 * that grows with the data actually received (a claimed length is never
 * allocated ahead), bounded by max_frame.
 */
#define _POSIX_C_SOURCE 200809L

#include "adapter.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "adapter_proc.h"

#define FRAME_LIMIT ((size_t)UINT32_MAX)
#define READ_MIN ((size_t)64 << 10)
#define RBUF_KEEP ((size_t)4 << 20) /* a bigger buffer is released once empty */
#define WRITE_BATCH ((size_t)1 << 20)
#define WRITE_IOV 64
#define EXIT_GRACE 0.5  /* after EOF: time for a dying adapter to report its status */
#define CLOSE_GRACE 2.0 /* brine_adapter_close: time to exit after stdin closes */

static const char DOC_HEADER[] = "brine-canonical 1 ";
#define DOC_HEADER_LEN (sizeof DOC_HEADER - 1)
static const char HELLO_LINE[] = "brine-adapter 1";
#define HELLO_LINE_LEN (sizeof HELLO_LINE - 1)
static const char TRACE_LINE[] = "--- trace\n";
#define TRACE_LINE_LEN (sizeof TRACE_LINE - 1)

struct brine_adapter {
    char **argv, **envp;
    bool one_shot, quiet;
    double timeout, start_timeout; /* < 0: none */
    size_t max_frame, window;
    int max_start_failures;

    char *name, *version, *level, *features;
    int highest_protocol; /* hello's highest-protocol, -1 when not said */

    brine_proc proc;
    bool eof;     /* the adapter's stdout reached EOF */
    bool wclosed; /* its stdin is gone (EPIPE): nothing more is written */

    unsigned char *rbuf; /* [rpos, rlen) unparsed; rcap > rlen whenever rbuf
                            holds data, so a frame can be NUL-terminated */
    size_t rcap, rpos, rlen;

    const brine_case *cases; /* of the current run */
    size_t w_next, w_off;    /* writing case w_next, w_off bytes of (header + data) done */
    size_t sent_end;         /* cases [w_next, sent_end) are still to write */

    bool in_run; /* a run was abandoned (callback longjmp'd) when still set at entry */
    int start_failures;
    bool need_restart;
    brine_adapter_stats st;
    brine_response resp;
};

/*------------------------------------------------------------------------------
 * Small helpers
 *----------------------------------------------------------------------------*/

static char *dup_n(const char *p, size_t n) {
    char *d = malloc(n + 1);
    if (d) {
        if (n)
            memcpy(d, p, n);
        d[n] = '\0';
    }
    return d;
}

/* A short printable rendering of untrusted bytes for messages. */
static void quote(const void *data, size_t n, char *out, size_t outlen) {
    const unsigned char *p = data;
    size_t o = 0;
    if (outlen < 8)
        return;
    out[o++] = '"';
    for (size_t i = 0; i < n; i++) {
        if (o + 10 >= outlen) {
            memcpy(out + o, "\"...", 5);
            return;
        }
        unsigned char c = p[i];
        if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\')
            out[o++] = (char)c;
        else if (c == '\n')
            o += (size_t)snprintf(out + o, outlen - o, "\\n");
        else
            o += (size_t)snprintf(out + o, outlen - o, "\\x%02x", c);
    }
    out[o++] = '"';
    out[o] = '\0';
}

bool brine_adapter_valid_name(const char *s, size_t n) {
    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
              c == '-'))
            return false;
    }
    return true;
}

static bool valid_level(const char *s) {
    return strcmp(s, "raw") == 0 || strcmp(s, "value") == 0;
}

static size_t le32(const unsigned char *p) {
    return (size_t)p[0] | (size_t)p[1] << 8 | (size_t)p[2] << 16 | (size_t)p[3] << 24;
}

/*------------------------------------------------------------------------------
 * Reading: a buffer that grows with the data received
 *----------------------------------------------------------------------------*/

static void rbuf_reset(brine_adapter *a) {
    a->rpos = a->rlen = 0;
    if (a->rcap > RBUF_KEEP) {
        free(a->rbuf);
        a->rbuf = NULL;
        a->rcap = 0;
    }
}

/* Makes room for `want` more bytes plus the spare one. Grows at most to twice
   the current capacity, and never beyond rlen + max_more + 1: so memory
   follows the bytes actually received, not what a header claims. */
static bool rbuf_room(brine_adapter *a, size_t want, size_t max_more) {
    if (a->rpos == a->rlen)
        rbuf_reset(a);
    if (a->rcap - a->rlen > want)
        return true;
    if (a->rpos > 0) {
        memmove(a->rbuf, a->rbuf + a->rpos, a->rlen - a->rpos);
        a->rlen -= a->rpos;
        a->rpos = 0;
        if (a->rcap - a->rlen > want)
            return true;
    }
    size_t need = a->rlen + want + 1;
    size_t ncap = a->rcap * 2;
    if (ncap > a->rlen + max_more + 1)
        ncap = a->rlen + max_more + 1;
    if (ncap < need)
        ncap = need;
    unsigned char *nb = realloc(a->rbuf, ncap);
    if (!nb)
        return false;
    a->rbuf = nb;
    a->rcap = ncap;
    if (ncap > a->st.peak_buffer)
        a->st.peak_buffer = ncap;
    return true;
}

/* One read() of up to max_more bytes: 1 data, 0 nothing yet, -1 EOF, -2 error
   (errno set; ENOMEM when the buffer could not grow). */
static int read_some(brine_adapter *a, size_t want, size_t max_more) {
    if (max_more < want)
        max_more = want;
    if (!rbuf_room(a, want, max_more)) {
        errno = ENOMEM;
        return -2;
    }
    size_t room = a->rcap - a->rlen - 1;
    if (room > max_more)
        room = max_more;
    if (room > (size_t)SSIZE_MAX)
        room = (size_t)SSIZE_MAX;
    ssize_t k = read(a->proc.out_fd, a->rbuf + a->rlen, room);
    if (k > 0) {
        a->rlen += (size_t)k;
        return 1;
    }
    if (k == 0)
        return -1;
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
        return 0;
    return -2;
}

/*------------------------------------------------------------------------------
 * Writing requests
 *----------------------------------------------------------------------------*/

static bool write_pending(const brine_adapter *a) {
    return !a->wclosed && a->w_next < a->sent_end;
}

static void advance_written(brine_adapter *a, size_t k) {
    while (k > 0) {
        size_t rem = 4 + a->cases[a->w_next].len - a->w_off;
        if (k >= rem) {
            k -= rem;
            a->w_next++;
            a->w_off = 0;
        } else {
            a->w_off += k;
            k = 0;
        }
    }
}

/* Writes what the pipe takes now; small requests go out together in one
   writev, so a pipelined batch wakes the adapter once. */
static void flush_some(brine_adapter *a) {
    if (!write_pending(a))
        return;
    brine_sigpipe_guard g;
    bool epipe = false;
    brine_sigpipe_begin(&g);
    while (a->w_next < a->sent_end) {
        unsigned char hdr[WRITE_IOV][4];
        struct iovec iov[WRITE_IOV];
        int cnt = 0;
        size_t total = 0;
        size_t i = a->w_next, off = a->w_off;
        while (i < a->sent_end && cnt < WRITE_IOV - 1 && total < WRITE_BATCH) {
            const brine_case *c = &a->cases[i];
            if (off < 4) {
                hdr[cnt][0] = (unsigned char)c->len;
                hdr[cnt][1] = (unsigned char)(c->len >> 8);
                hdr[cnt][2] = (unsigned char)(c->len >> 16);
                hdr[cnt][3] = (unsigned char)(c->len >> 24);
                iov[cnt].iov_base = hdr[cnt] + off;
                iov[cnt].iov_len = 4 - off;
                total += 4 - off;
                cnt++;
                off = 4;
            }
            size_t doff = off - 4;
            if (doff < c->len) {
                size_t take = c->len - doff;
                bool cut = take > WRITE_BATCH;
                if (cut)
                    take = WRITE_BATCH;
                iov[cnt].iov_base = (void *)(c->data + doff);
                iov[cnt].iov_len = take;
                total += take;
                cnt++;
                if (cut)
                    break; /* the next iovec must not skip the rest of this case */
            }
            i++;
            off = 0;
        }
        ssize_t k = writev(a->proc.in_fd, iov, cnt);
        if (k < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                break;
            /* The adapter stopped reading: what it already wrote may still
               be read, then EOF decides. */
            epipe = errno == EPIPE;
            a->wclosed = true;
            break;
        }
        advance_written(a, (size_t)k);
        if ((size_t)k < total)
            break;
    }
    brine_sigpipe_end(&g, epipe);
}

/*------------------------------------------------------------------------------
 * Frames
 *----------------------------------------------------------------------------*/

typedef enum frame_rc { FR_OK, FR_LATE, FR_EOF, FR_BAD } frame_rc;

/* Reads until a whole frame of at most `bound` bytes sits at rbuf + rpos,
   writing pending requests meanwhile. FR_OK sets *len (payload at
   rbuf + rpos + 4); otherwise `why` says what happened (except FR_LATE).
   deadline < 0: none. */
static frame_rc read_frame(brine_adapter *a, double deadline, size_t bound, size_t *len,
                           char *why, size_t whylen) {
    for (;;) {
        size_t avail = a->rlen - a->rpos;
        size_t need = 4;
        if (avail >= 4) {
            size_t n = le32(a->rbuf + a->rpos);
            if (n > bound) {
                snprintf(why, whylen, "frame of %zu bytes above the bound of %zu", n, bound);
                return FR_BAD;
            }
            if (avail - 4 >= n) {
                *len = n;
                return FR_OK;
            }
            need = 4 + n;
        }
        if (a->eof) {
            if (avail == 0)
                snprintf(why, whylen, "adapter closed its stdout");
            else if (avail < 4)
                snprintf(why, whylen, "adapter closed its stdout inside a frame header");
            else
                snprintf(why, whylen,
                         "adapter closed its stdout inside a %zu-byte frame (%zu bytes read)",
                         need - 4, avail - 4);
            return FR_EOF;
        }
        flush_some(a);
        struct pollfd pf[2];
        nfds_t nfds = 1;
        pf[0].fd = a->proc.out_fd;
        pf[0].events = POLLIN;
        pf[0].revents = 0;
        if (write_pending(a)) {
            pf[1].fd = a->proc.in_fd;
            pf[1].events = POLLOUT;
            pf[1].revents = 0;
            nfds = 2;
        }
        int ms = -1;
        if (deadline >= 0) {
            double left = deadline - brine_proc_now();
            if (left <= 0)
                return FR_LATE;
            ms = left * 1000.0 + 1 >= INT_MAX ? INT_MAX : (int)(left * 1000.0) + 1;
        }
        int r = poll(pf, nfds, ms);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            snprintf(why, whylen, "poll: %s", strerror(errno));
            return FR_BAD;
        }
        if (r == 0)
            continue;
        if (pf[0].revents) {
            size_t missing = need - avail;
            size_t max_more = missing > READ_MIN ? missing : READ_MIN;
            size_t want = avail > READ_MIN ? avail : READ_MIN; /* doubles with the data */
            if (want > max_more)
                want = max_more;
            int k = read_some(a, want, max_more);
            if (k == -1) {
                a->eof = true;
            } else if (k == -2) {
                if (errno == ENOMEM)
                    snprintf(why, whylen, "out of memory for a %zu-byte frame", need - 4);
                else
                    snprintf(why, whylen, "reading the adapter's stdout: %s", strerror(errno));
                return FR_BAD;
            }
        }
        if (nfds == 2 && pf[1].revents) {
            /* POLLERR without POLLOUT means the reader is gone: the write
               then fails with EPIPE, which closes the writing side */
            flush_some(a);
            if (write_pending(a) && !(pf[1].revents & POLLOUT))
                a->wclosed = true;
        }
    }
}

static void consume_frame(brine_adapter *a, size_t n) {
    a->rpos += 4 + n;
    if (a->rpos == a->rlen)
        rbuf_reset(a);
}

/*------------------------------------------------------------------------------
 * Responses
 *----------------------------------------------------------------------------*/

static void answer_fail(brine_adapter *a, brine_done_fn done, void *ctx, size_t i,
                        brine_status status, double seconds, const char *fmt, ...)
    __attribute__((format(printf, 7, 8)));

static void answer_fail(brine_adapter *a, brine_done_fn done, void *ctx, size_t i,
                        brine_status status, double seconds, const char *fmt, ...) {
    brine_response *r = &a->resp;
    memset(r, 0, sizeof *r);
    r->status = status;
    r->seconds = seconds;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->detail, sizeof r->detail, fmt, ap);
    va_end(ap);
    if (status == BRINE_TIMEOUT)
        a->st.timeouts++;
    else
        a->st.crashes++;
    done(ctx, i, r);
}

static bool is_document(const char *p, size_t n) {
    return n >= DOC_HEADER_LEN && memcmp(p, DOC_HEADER, DOC_HEADER_LEN) == 0;
}

/* True when the document's body is an error line (p is a document). */
static bool is_error_document(const char *p, size_t n) {
    const char *nl = memchr(p, '\n', n);
    if (!nl)
        return false;
    size_t rest = n - (size_t)(nl + 1 - p);
    return rest >= 6 && memcmp(nl + 1, "error ", 6) == 0;
}

/* Offset of the "--- trace" line in p[0..n), or n. A document cannot hold that
   line (every line of one is a node, a slot or a ref), so the first is it. */
static size_t trace_offset(const char *p, size_t n) {
    size_t i = 0;
    while (i < n) {
        const char *nl = memchr(p + i, '\n', n - i);
        if (!nl)
            break;
        i = (size_t)(nl - p) + 1;
        if (n - i >= TRACE_LINE_LEN && memcmp(p + i, TRACE_LINE, TRACE_LINE_LEN) == 0)
            return i;
    }
    return n;
}

/* Answers OK with payload p[0..n); p[n] must be writable (it is restored). */
static void answer_ok(brine_adapter *a, brine_done_fn done, void *ctx, size_t i, char *p,
                      size_t n, double seconds) {
    brine_response *r = &a->resp;
    memset(r, 0, sizeof *r);
    r->status = BRINE_OK;
    r->seconds = seconds;
    char saved = p[n];
    p[n] = '\0';
    size_t t = trace_offset(p, n);
    r->text = p;
    r->text_len = t;
    if (t < n) {
        r->trace = p + t + TRACE_LINE_LEN;
        r->trace_len = n - t - TRACE_LINE_LEN;
        p[t] = '\0';
    }
    done(ctx, i, r);
    if (t < n)
        p[t] = TRACE_LINE[0];
    p[n] = saved;
}

/*------------------------------------------------------------------------------
 * Hello
 *----------------------------------------------------------------------------*/

typedef struct hello {
    char *name, *version, *level, *features;
    int highest_protocol; /* -1: not said */
} hello;

static void hello_free(hello *h) {
    free(h->name);
    free(h->version);
    free(h->level);
    free(h->features);
    memset(h, 0, sizeof *h);
}

static int parse_hello(const char *p, size_t n, hello *h, char *err, size_t errlen) {
    memset(h, 0, sizeof *h);
    h->highest_protocol = -1;
    char q[64];
    if (memchr(p, '\0', n)) {
        snprintf(err, errlen, "hello contains a NUL byte");
        return -1;
    }
    const char *end = p + n;
    const char *nl = memchr(p, '\n', n);
    size_t l0 = nl ? (size_t)(nl - p) : n;
    if (l0 != HELLO_LINE_LEN || memcmp(p, HELLO_LINE, HELLO_LINE_LEN) != 0) {
        quote(p, l0, q, sizeof q);
        snprintf(err, errlen, "not a protocol v1 hello: first line %s, expected \"%s\"", q,
                 HELLO_LINE);
        return -1;
    }
    const char *s = nl ? nl + 1 : end;
    while (s < end) {
        nl = memchr(s, '\n', (size_t)(end - s));
        const char *le = nl ? nl : end;
        const char *sp = memchr(s, ' ', (size_t)(le - s));
        size_t klen = (size_t)((sp ? sp : le) - s);
        const char *v = sp ? sp + 1 : le;
        char **slot = NULL;
        if (klen == 4 && memcmp(s, "name", 4) == 0)
            slot = &h->name;
        else if (klen == 7 && memcmp(s, "version", 7) == 0)
            slot = &h->version;
        else if (klen == 5 && memcmp(s, "level", 5) == 0)
            slot = &h->level;
        else if (klen == 8 && memcmp(s, "features", 8) == 0)
            slot = &h->features;
        else if (klen == 16 && memcmp(s, "highest-protocol", 16) == 0 && le - v == 1 &&
                 *v >= '0' && *v <= '9')
            h->highest_protocol = *v - '0'; /* anything else: as if absent */
        if (slot) {
            free(*slot);
            if (!(*slot = dup_n(v, (size_t)(le - v))))
                goto oom;
        }
        s = nl ? nl + 1 : end;
    }
    if (!h->name) {
        snprintf(err, errlen, "hello has no name");
        goto bad;
    }
    if (!brine_adapter_valid_name(h->name, strlen(h->name))) {
        quote(h->name, strlen(h->name), q, sizeof q);
        snprintf(err, errlen, "hello name %s is not [a-z0-9._-]+", q);
        goto bad;
    }
    if (!h->level || !valid_level(h->level)) {
        if (h->level)
            quote(h->level, strlen(h->level), q, sizeof q);
        snprintf(err, errlen, "hello level %s is not raw or value", h->level ? q : "(missing)");
        goto bad;
    }
    if ((!h->version && !(h->version = dup_n("", 0))) ||
        (!h->features && !(h->features = dup_n("", 0))))
        goto oom;
    return 0;
oom:
    snprintf(err, errlen, "out of memory reading the hello");
bad:
    hello_free(h);
    return -1;
}

/*------------------------------------------------------------------------------
 * Persistent process
 *----------------------------------------------------------------------------*/

/* Kills the process after a failure, waiting `grace` s for it to exit on its
   own first; describes its end in buf. */
static void end_process(brine_adapter *a, double grace, char *buf, size_t len) {
    bool exited = grace > 0 ? brine_proc_exited(&a->proc, grace) : false;
    int code = brine_proc_finish(&a->proc);
    if (grace > 0 && !exited)
        snprintf(buf, len, "still running after %g s, killed", grace);
    else
        brine_proc_describe(code, buf, len);
    a->need_restart = true;
}

/* Starts a process and reads its hello. 0, or -1 with a message in err
   (nothing left running). */
static int proc_start(brine_adapter *a, char *err, size_t errlen) {
    if (brine_proc_spawn(a->argv, a->envp, a->quiet, &a->proc, err, errlen) < 0)
        return -1;
    a->st.starts++;
    a->eof = a->wclosed = false;
    rbuf_reset(a);
    a->w_next = a->w_off = a->sent_end = 0;
    double deadline = a->start_timeout < 0 ? -1 : brine_proc_now() + a->start_timeout;
    char why[120], status[80];
    size_t n = 0;
    frame_rc rc = read_frame(a, deadline, BRINE_ADAPTER_MAX_HELLO, &n, why, sizeof why);
    if (rc != FR_OK) {
        end_process(a, rc == FR_EOF ? EXIT_GRACE : 0, status, sizeof status);
        if (rc == FR_LATE)
            snprintf(err, errlen, "%s: no hello within %g s", a->argv[0], a->start_timeout);
        else if (rc == FR_EOF)
            snprintf(err, errlen, "%s: no hello: %s (%s)", a->argv[0], why, status);
        else
            snprintf(err, errlen, "%s: bad hello: %s", a->argv[0], why);
        return -1;
    }
    hello h;
    char herr[200];
    int prc = parse_hello((const char *)a->rbuf + a->rpos + 4, n, &h, herr, sizeof herr);
    consume_frame(a, n);
    if (prc < 0) {
        brine_proc_finish(&a->proc);
        snprintf(err, errlen, "%s: bad hello: %s", a->argv[0], herr);
        return -1;
    }
    if (!a->name) {
        a->name = h.name;
        a->version = h.version;
        a->level = h.level;
        a->features = h.features;
        a->highest_protocol = h.highest_protocol;
        return 0;
    }
    /* a restart must not swap the implementation under the runner's feet */
    bool same = strcmp(a->name, h.name) == 0 && strcmp(a->level, h.level) == 0;
    if (!same) {
        brine_proc_finish(&a->proc);
        snprintf(err, errlen, "%s: hello changed on restart: name %.40s level %.8s (was %.40s %.8s)",
                 a->argv[0], h.name, h.level, a->name, a->level);
    }
    hello_free(&h);
    return same ? 0 : -1;
}

static int run_persistent(brine_adapter *a, const brine_case *cases, size_t n, brine_done_fn done,
                          void *ctx) {
    a->cases = cases;
    a->w_next = a->w_off = a->sent_end = 0;
    size_t head = 0;
    double t_ready = -1;
    /* solo: the head case runs alone on a fresh process. A failure while
       several requests were outstanding cannot be pinned on the head (the
       adapter may have answered it and held the answer back while working
       on the next), so it is re-run that way first; the solo run decides. */
    bool solo = false;
    while (head < n) {
        if (cases[head].len > FRAME_LIMIT) {
            answer_fail(a, done, ctx, head, BRINE_CRASH, 0.0,
                        "request of %zu bytes does not fit a frame (not sent)", cases[head].len);
            head++;
            /* the window stopped before it: nothing is in flight */
            a->w_next = a->sent_end = head;
            a->w_off = 0;
            continue;
        }
        if (a->proc.pid <= 0) {
            char err[160];
            if (proc_start(a, err, sizeof err) < 0) {
                a->start_failures++;
                bool give_up = a->start_failures >= a->max_start_failures;
                do {
                    answer_fail(a, done, ctx, head, BRINE_CRASH, 0.0,
                                "adapter could not be (re)started: %s", err);
                    head++;
                } while (give_up && head < n);
                solo = false;
                if (give_up)
                    return -1;
                continue;
            }
            a->start_failures = 0;
            if (a->need_restart) {
                a->st.restarts++;
                a->need_restart = false;
            }
            a->w_next = a->sent_end = head;
            a->w_off = 0;
            t_ready = -1;
        }
        size_t limit = solo ? 1 : a->window;
        while (a->sent_end < n && a->sent_end - head < limit && cases[a->sent_end].len <= FRAME_LIMIT)
            a->sent_end++;
        if (t_ready < 0)
            t_ready = brine_proc_now();
        double deadline = a->timeout < 0 ? -1 : t_ready + a->timeout;
        char why[120];
        size_t len = 0;
        frame_rc rc = read_frame(a, deadline, a->max_frame, &len, why, sizeof why);
        char *payload = rc == FR_OK ? (char *)a->rbuf + a->rpos + 4 : NULL;
        if (payload && !is_document(payload, len)) {
            char q[60];
            quote(payload, len < 40 ? len : 40, q, sizeof q);
            snprintf(why, sizeof why, "malformed response (not a canonical document): %s", q);
            rc = FR_BAD;
        }
        double now = brine_proc_now();
        if (rc != FR_OK) {
            char status[80];
            end_process(a, rc == FR_EOF ? EXIT_GRACE : 0, status, sizeof status);
            if (!solo && a->sent_end - head > 1) {
                solo = true;
                a->st.confirmations++;
                continue;
            }
            solo = false;
            if (rc == FR_LATE)
                answer_fail(a, done, ctx, head, BRINE_TIMEOUT, now - t_ready,
                            "timed out after %g s", a->timeout);
            else if (rc == FR_EOF)
                answer_fail(a, done, ctx, head, BRINE_CRASH, now - t_ready, "%s (%s)", why, status);
            else
                answer_fail(a, done, ctx, head, BRINE_CRASH, now - t_ready, "%s", why);
            head++;
            t_ready = -1;
            continue;
        }
        answer_ok(a, done, ctx, head, payload, len, now - t_ready);
        consume_frame(a, len);
        head++;
        t_ready = now;
        solo = false; /* confirmed: back to pipelining on this same process */
    }
    return 0;
}

/*------------------------------------------------------------------------------
 * One-shot mode
 *----------------------------------------------------------------------------*/

/* The started process is given the case; answers it. */
static void one_shot_case(brine_adapter *a, const brine_case *c, size_t i, double t0,
                          brine_done_fn done, void *ctx) {
    double deadline = a->timeout < 0 ? -1 : t0 + a->timeout;
    size_t woff = 0;
    bool eof = false;
    char status[80];
    rbuf_reset(a);
    if (c->len == 0) {
        close(a->proc.in_fd);
        a->proc.in_fd = -1;
    }
    while (!eof) {
        if (a->proc.in_fd >= 0) {
            brine_sigpipe_guard g;
            brine_sigpipe_begin(&g);
            size_t take = c->len - woff > WRITE_BATCH ? WRITE_BATCH : c->len - woff;
            ssize_t k = write(a->proc.in_fd, c->data + woff, take);
            int e = errno;
            brine_sigpipe_end(&g, k < 0 && e == EPIPE);
            if (k > 0)
                woff += (size_t)k;
            /* all written, or the program stopped reading (its business) */
            if (woff == c->len || (k < 0 && e != EAGAIN && e != EWOULDBLOCK && e != EINTR)) {
                close(a->proc.in_fd);
                a->proc.in_fd = -1;
            }
        }
        struct pollfd pf[2];
        nfds_t nfds = 1;
        pf[0].fd = a->proc.out_fd;
        pf[0].events = POLLIN;
        pf[0].revents = 0;
        if (a->proc.in_fd >= 0) {
            pf[1].fd = a->proc.in_fd;
            pf[1].events = POLLOUT;
            pf[1].revents = 0;
            nfds = 2;
        }
        int ms = -1;
        if (deadline >= 0) {
            double left = deadline - brine_proc_now();
            if (left <= 0) {
                brine_proc_finish(&a->proc);
                answer_fail(a, done, ctx, i, BRINE_TIMEOUT, brine_proc_now() - t0,
                            "timed out after %g s", a->timeout);
                return;
            }
            ms = left * 1000.0 + 1 >= INT_MAX ? INT_MAX : (int)(left * 1000.0) + 1;
        }
        int r = poll(pf, nfds, ms);
        if (r < 0 && errno != EINTR) {
            int e = errno;
            brine_proc_finish(&a->proc);
            answer_fail(a, done, ctx, i, BRINE_CRASH, brine_proc_now() - t0, "poll: %s",
                        strerror(e));
            return;
        }
        if (r <= 0 || !pf[0].revents)
            continue;
        if (a->rlen > a->max_frame) {
            brine_proc_finish(&a->proc);
            answer_fail(a, done, ctx, i, BRINE_CRASH, brine_proc_now() - t0,
                        "output above the bound of %zu bytes", a->max_frame);
            return;
        }
        size_t max_more = a->max_frame + 1 - a->rlen;
        size_t want = a->rlen > READ_MIN ? a->rlen : READ_MIN;
        if (want > max_more)
            want = max_more;
        int k = read_some(a, want, max_more);
        if (k == -1) {
            eof = true;
        } else if (k == -2) {
            int e = errno;
            brine_proc_finish(&a->proc);
            answer_fail(a, done, ctx, i, BRINE_CRASH, brine_proc_now() - t0,
                        "reading the program's stdout: %s", strerror(e));
            return;
        }
    }
    if (a->proc.in_fd >= 0) { /* the document is complete: stop feeding it */
        close(a->proc.in_fd);
        a->proc.in_fd = -1;
    }
    double left = deadline < 0 ? 1e9 : deadline - brine_proc_now();
    bool exited = left > 0 && brine_proc_exited(&a->proc, left);
    int code = brine_proc_finish(&a->proc);
    double secs = brine_proc_now() - t0;
    if (!exited) {
        answer_fail(a, done, ctx, i, BRINE_TIMEOUT, secs,
                    "timed out after %g s (output complete, no exit)", a->timeout);
        return;
    }
    if (a->rlen > a->max_frame) {
        answer_fail(a, done, ctx, i, BRINE_CRASH, secs, "output above the bound of %zu bytes",
                    a->max_frame);
        return;
    }
    brine_proc_describe(code, status, sizeof status);
    if (code != 0 && code != 1) {
        answer_fail(a, done, ctx, i, BRINE_CRASH, secs, "%s", status);
        return;
    }
    char *p = (char *)a->rbuf;
    size_t n = a->rlen;
    if (!p || !is_document(p, n)) {
        char q[60];
        quote(p ? p : "", n < 40 ? n : 40, q, sizeof q);
        answer_fail(a, done, ctx, i, BRINE_CRASH, secs,
                    "%s, output not a canonical document: %s", status, q);
        return;
    }
    /* the exit status and the document must agree (protocol section 2) */
    bool err_doc = is_error_document(p, trace_offset(p, n));
    if (err_doc != (code == 1)) {
        answer_fail(a, done, ctx, i, BRINE_CRASH, secs, "%s but %s document", status,
                    err_doc ? "an error" : "a non-error");
        return;
    }
    answer_ok(a, done, ctx, i, p, n, secs);
    rbuf_reset(a);
}

static int run_one_shot(brine_adapter *a, const brine_case *cases, size_t n, brine_done_fn done,
                        void *ctx) {
    for (size_t i = 0; i < n; i++) {
        char err[160];
        double t0 = brine_proc_now();
        if (brine_proc_spawn(a->argv, a->envp, a->quiet, &a->proc, err, sizeof err) < 0) {
            a->start_failures++;
            bool give_up = a->start_failures >= a->max_start_failures;
            do {
                answer_fail(a, done, ctx, i, BRINE_CRASH, 0.0, "adapter could not be started: %s",
                            err);
            } while (give_up && ++i < n);
            if (give_up)
                return -1;
            continue;
        }
        a->start_failures = 0;
        a->st.starts++;
        one_shot_case(a, &cases[i], i, t0, done, ctx);
    }
    return 0;
}

/*------------------------------------------------------------------------------
 * Public API
 *----------------------------------------------------------------------------*/

brine_adapter *brine_adapter_start(const brine_adapter_opts *o, char *err, size_t errlen) {
    char msg[256];
    brine_adapter *a = NULL;
    msg[0] = '\0';
    if (!o || !o->argv || !o->argv[0]) {
        snprintf(msg, sizeof msg, "no adapter command given");
        goto fail;
    }
    if (!(a = calloc(1, sizeof *a))) {
        snprintf(msg, sizeof msg, "out of memory");
        goto fail;
    }
    a->proc.pid = -1;
    a->proc.in_fd = a->proc.out_fd = -1;
    a->one_shot = o->one_shot;
    a->quiet = o->quiet;
    a->timeout = o->timeout == 0 ? BRINE_ADAPTER_DEFAULT_TIMEOUT : o->timeout;
    a->start_timeout = o->start_timeout == 0 ? BRINE_ADAPTER_DEFAULT_START_TIMEOUT
                                             : o->start_timeout;
    a->max_frame = o->max_frame ? o->max_frame : BRINE_ADAPTER_DEFAULT_MAX_FRAME;
    if (a->max_frame > FRAME_LIMIT)
        a->max_frame = FRAME_LIMIT; /* what a frame header can say anyway */
    a->window = o->window ? o->window : BRINE_ADAPTER_DEFAULT_WINDOW;
    a->max_start_failures =
        o->max_start_failures > 0 ? o->max_start_failures : BRINE_ADAPTER_DEFAULT_START_FAILURES;
    if (!(a->argv = brine_proc_copy_strv(o->argv)) || !(a->envp = brine_proc_build_env(o->env))) {
        snprintf(msg, sizeof msg, "out of memory");
        goto fail;
    }
    a->highest_protocol = -1;
    if (a->one_shot) {
        const char *level = o->level ? o->level : "raw";
        if (!o->name || !brine_adapter_valid_name(o->name, strlen(o->name))) {
            snprintf(msg, sizeof msg, "one-shot adapter needs a name matching [a-z0-9._-]+");
            goto fail;
        }
        if (!valid_level(level)) {
            snprintf(msg, sizeof msg, "one-shot level must be raw or value");
            goto fail;
        }
        if (!(a->name = dup_n(o->name, strlen(o->name))) || !(a->version = dup_n("", 0)) ||
            !(a->level = dup_n(level, strlen(level))) || !(a->features = dup_n("", 0))) {
            snprintf(msg, sizeof msg, "out of memory");
            goto fail;
        }
        return a;
    }
    if (proc_start(a, msg, sizeof msg) < 0)
        goto fail;
    return a;
fail:
    if (err && errlen)
        snprintf(err, errlen, "%s", msg);
    brine_adapter_close(a);
    return NULL;
}

const char *brine_adapter_name(const brine_adapter *a) {
    return a->name;
}

const char *brine_adapter_version(const brine_adapter *a) {
    return a->version;
}

const char *brine_adapter_level(const brine_adapter *a) {
    return a->level;
}

int brine_adapter_highest_protocol(const brine_adapter *a) { return a->highest_protocol; }

const char *brine_adapter_features(const brine_adapter *a) {
    return a->features;
}

bool brine_adapter_has_feature(const brine_adapter *a, const char *feature) {
    size_t fl = strlen(feature);
    const char *s = a->features;
    if (!s || fl == 0)
        return false;
    while (*s) {
        while (*s == ' ')
            s++;
        const char *e = s;
        while (*e && *e != ' ')
            e++;
        if ((size_t)(e - s) == fl && memcmp(s, feature, fl) == 0)
            return true;
        s = e;
    }
    return false;
}

int brine_adapter_run(brine_adapter *a, const brine_case *cases, size_t n, brine_done_fn done,
                      void *ctx) {
    if (a->proc.pid > 0 && (a->in_run || a->eof || brine_proc_exited(&a->proc, 0))) {
        /* Left from a callback with requests outstanding (their answers
           would be taken for this run's cases), or died while idle (the
           first case would be blamed): start afresh. */
        char status[80];
        end_process(a, 0, status, sizeof status);
    }
    if (n == 0)
        return 0;
    a->in_run = true;
    int rc = a->one_shot ? run_one_shot(a, cases, n, done, ctx)
                         : run_persistent(a, cases, n, done, ctx);
    a->in_run = false;
    a->cases = NULL;
    return rc;
}

void brine_adapter_get_stats(const brine_adapter *a, brine_adapter_stats *out) {
    *out = a->st;
}

int brine_adapter_close(brine_adapter *a) {
    if (!a)
        return -1;
    int code = -1;
    if (a->proc.pid > 0) {
        /* EOF on stdin asks it to exit; our end of its stdout goes too, so an
           adapter still writing gets EPIPE instead of blocking */
        close(a->proc.in_fd);
        a->proc.in_fd = -1;
        close(a->proc.out_fd);
        a->proc.out_fd = -1;
        brine_proc_exited(&a->proc, CLOSE_GRACE);
        int c = brine_proc_finish(&a->proc);
        if (c != BRINE_PROC_UNKNOWN)
            code = c >= 0 ? c : 128 - c;
    }
    brine_proc_free_strv(a->argv);
    brine_proc_free_strv(a->envp);
    free(a->name);
    free(a->version);
    free(a->level);
    free(a->features);
    free(a->rbuf);
    free(a);
    return code;
}
