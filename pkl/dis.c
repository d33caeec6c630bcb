/* pkl_dis: a disassembler in the style of pickletools.dis.
 *
 * It walks the opcode stream once, printing one line per opcode, and models
 * the unpickler abstractly: item counts per mark level (never values), the
 * set of memo indices put so far, and the open marks. That is enough to name
 * the first structural fault the way CPython's C unpickler would classify it
 * (truncated, bad-opcode, stack-underflow, mark-missing, memo-missing,
 * bad-argument, unsupported-protocol) without building anything.
 *
 * What it deliberately does not check: the text of INT/LONG/FLOAT lines
 * (CPython parses them with strtol/PyLong base 0 rules that belong to the
 * decoder), operand types, and odd key/value counts; a pickle that passes
 * here can still fail to load.
 *
 * Everything it knows about opcodes comes from the table (pkl_opcode_info):
 * argument layout and width, stack_before/stack_after. The few opcodes whose
 * effect the table cannot express (memo access, PROTO, FRAME, POP of a mark,
 * STOP) are named through the PKL_OP_* constants generated from that table.
 *
 * Output, one line per opcode, pickletools' layout plus a stack count:
 *
 *     13: (    MARK                                          ; stack 1
 *     14: K        BININT1    1                              ; stack 2
 *     25: \x8c     SHORT_BINUNICODE 'ab' (2 bytes)           ; stack 4
 *     29: e    APPENDS    (MARK at 13)                       ; stack 1
 *
 * offset, opcode byte, one indent per open mark, name, argument (counted ones
 * with their length, anything past DIS_SHOW characters cut with "..."),
 * "(MARK at N)" / "(as N)" / "(redefined)", and the items on the stack after
 * the opcode. Then either a summary ("highest protocol among opcodes = N",
 * trailing bytes, leftovers) or a last line "fault at POS: CLASS: MESSAGE",
 * where POS is the opcode's offset, or the input's length when the input
 * ended too soon.
 *
 * Memory: two growable arrays, both capped (marks, memo bitmap). Past a cap
 * the corresponding checks are switched off with a note line, never a fault,
 * so any input length can be disassembled in bounded memory. Output goes
 * line by line to the callback; no line exceeds LINE_CAP bytes.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pkl.h"

/* Caps: 1 Mi marks is libpkl's default max_marks; 64 Mi memo indices is an
   8 MiB bitmap, four times libpkl's default max_memo. */
#define DIS_MARK_CAP ((size_t)1 << 20)
#define DIS_MEMO_CAP ((uint64_t)1 << 26)
#define DIS_INDENT_CAP 32 /* mark levels shown as indentation; deeper stays flat */
#define DIS_SHOW 60       /* characters of an argument shown before "..." */
#define DIS_LONG_DEC 64   /* LONG1/LONG4 up to this many bytes print in decimal */
#define DIS_NOTE_COL 56   /* column where the "; stack N" annotation starts */
#define LINE_CAP 640

/*------------------------------------------------------------------------------
 * Line buffer: appends silently stop at LINE_CAP - 1, so no path overflows.
 *----------------------------------------------------------------------------*/

typedef struct line {
    char buf[LINE_CAP];
    size_t len;
} line;

static void ln_putc(line *l, char c) {
    if (l->len < LINE_CAP - 1)
        l->buf[l->len++] = c;
}

static void ln_puts(line *l, const char *s) {
    while (*s)
        ln_putc(l, *s++);
}

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static void ln_printf(line *l, const char *fmt, ...) {
    char tmp[LINE_CAP];
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (k > 0)
        ln_puts(l, tmp);
}

/* Decimal, right-aligned in `width` columns: the hot path of every line,
   kept off vsnprintf because a 1 GB pickle can have 500M lines. */
static void ln_uint(line *l, uint64_t v, size_t width) {
    char tmp[24];
    size_t n = 0;
    do
        tmp[n++] = (char)('0' + v % 10);
    while ((v /= 10) != 0);
    for (size_t i = n; i < width; i++)
        ln_putc(l, ' ');
    while (n > 0)
        ln_putc(l, tmp[--n]);
}

static void ln_pad(line *l, size_t col) {
    while (l->len < col)
        ln_putc(l, ' ');
}

/*------------------------------------------------------------------------------
 * Per-opcode stack effect, parsed once per call from the table's strings.
 *----------------------------------------------------------------------------*/

typedef struct effect {
    const pkl_opinfo *info;
    uint8_t uses_mark;  /* stack_before holds "mark": pops the top mark */
    uint8_t below;      /* items taken from below that mark (APPENDS' list) */
    uint8_t slice_min;  /* items the slice must hold (OBJ's class) */
    uint8_t npop;       /* without a mark: items taken above the top mark */
    uint8_t npush;      /* items pushed */
    uint8_t push_mark;  /* stack_after holds "mark" */
} effect;

static int tok_is(const char *s, size_t n, const char *word) {
    return strlen(word) == n && memcmp(s, word, n) == 0;
}

/* Walks a space-separated list of pickletools stack names and reports the
   count and the index of "mark" and "stackslice" (-1 when absent). */
static void scan_tokens(const char *s, int *count, int *mark_at, int *slice_at) {
    *count = 0;
    *mark_at = *slice_at = -1;
    while (*s) {
        while (*s == ' ')
            s++;
        if (!*s)
            break;
        const char *t = s;
        while (*s && *s != ' ')
            s++;
        size_t n = (size_t)(s - t);
        if (tok_is(t, n, "mark"))
            *mark_at = *count;
        else if (tok_is(t, n, "stackslice"))
            *slice_at = *count;
        (*count)++;
    }
}

static void build_effects(effect fx[256]) {
    memset(fx, 0, 256 * sizeof fx[0]);
    for (size_t i = 0; i < pkl_opcode_count(); i++) {
        const pkl_opinfo *op = pkl_opcode_at(i);
        effect *e = &fx[op->code];
        int n, m, sl;
        e->info = op;
        scan_tokens(op->stack_before, &n, &m, &sl);
        if (m >= 0) {
            e->uses_mark = 1;
            e->below = (uint8_t)m;
            e->slice_min = (uint8_t)((sl > m ? sl : n) - m - 1);
        } else {
            e->npop = (uint8_t)n;
        }
        scan_tokens(op->stack_after, &n, &m, &sl);
        e->push_mark = m >= 0;
        e->npush = (uint8_t)(n - (m >= 0));
    }
}

/*------------------------------------------------------------------------------
 * Disassembler state
 *----------------------------------------------------------------------------*/

typedef struct mark {
    size_t pos;   /* offset of the MARK opcode */
    size_t count; /* items above this mark and below the next one */
} mark;

typedef struct dis {
    const uint8_t *p;
    size_t n;
    pkl_write_fn write;
    void *ctx;
    pkl_err *err;
    /* stack model: counts only */
    size_t base;  /* items below the first mark */
    mark *marks;
    size_t nmarks, marks_cap;
    size_t total; /* items on the stack, all levels */
    int stack_off;
    /* memo model: which indices hold a value */
    uint8_t *memo;
    uint64_t memo_bits; /* indices covered by `memo` */
    uint64_t memo_len;  /* distinct indices put: what MEMOIZE uses */
    int memo_off;
    int maxproto;
    char pending[256]; /* a note to print after the current opcode's line */
} dis;

static void emit(dis *d, line *l) {
    ln_putc(l, '\n');
    if (l->buf[l->len - 1] != '\n') /* truncated by the cap: still end the line */
        l->buf[l->len - 1] = '\n';
    d->write(d->ctx, l->buf, l->len);
}

static size_t *top_count(dis *d) {
    return d->nmarks ? &d->marks[d->nmarks - 1].count : &d->base;
}

/* Records the fault in *err and prints the closing fault line. `detail` adds
   what the static message cannot (offsets, counts); it may be empty. */
static bool fault(dis *d, pkl_code code, size_t pos, const char *msg, const char *detail) {
    line l = {.len = 0};
    ln_printf(&l, "fault at %zu: %s: %s", pos, pkl_code_name(code), msg);
    if (detail && *detail)
        ln_printf(&l, " (%s)", detail);
    emit(d, &l);
    if (d->err) {
        d->err->code = code;
        d->err->msg = msg;
        d->err->pos = pos;
    }
    return false;
}

/* Notes explain a change in what is checked; they are printed after the
   line of the opcode that caused them. */
static void note(dis *d, size_t pos, const char *text) {
    snprintf(d->pending, sizeof d->pending, "note at %zu: %s", pos, text);
}

static void flush_note(dis *d) {
    if (!d->pending[0])
        return;
    line l = {.len = 0};
    ln_puts(&l, d->pending);
    emit(d, &l);
    d->pending[0] = '\0';
}

/*------------------------------------------------------------------------------
 * Memo bitmap
 *----------------------------------------------------------------------------*/

static int memo_has(const dis *d, uint64_t idx) {
    return idx < d->memo_bits && (d->memo[idx >> 3] >> (idx & 7)) & 1;
}

/* Marks idx as put. Returns 1 if it was already put, 0 if new, -1 when it
   cannot be tracked (beyond the cap or out of memory). */
static int memo_put(dis *d, uint64_t idx) {
    if (idx >= d->memo_bits) {
        if (idx >= DIS_MEMO_CAP)
            return -1;
        uint64_t want = d->memo_bits ? d->memo_bits : 4096;
        while (want <= idx)
            want *= 2;
        if (want > DIS_MEMO_CAP)
            want = DIS_MEMO_CAP;
        uint8_t *m = realloc(d->memo, (size_t)(want / 8));
        if (!m)
            return -1;
        memset(m + d->memo_bits / 8, 0, (size_t)((want - d->memo_bits) / 8));
        d->memo = m;
        d->memo_bits = want;
    }
    if (memo_has(d, idx))
        return 1;
    d->memo[idx >> 3] |= (uint8_t)(1u << (idx & 7));
    d->memo_len++;
    return 0;
}

/*------------------------------------------------------------------------------
 * Argument decoding helpers
 *----------------------------------------------------------------------------*/

static uint64_t le_uint(const uint8_t *s, unsigned w) {
    uint64_t v = 0;
    for (unsigned i = w; i-- > 0;)
        v = v << 8 | s[i];
    return v;
}

/* One UTF-8 sequence at s (s < end). Returns its length and sets *cp, or 0
   when invalid. `surrogates`: accept encoded U+D800..U+DFFF, as CPython's
   "surrogatepass" does for BINUNICODE. */
static size_t utf8_next(const uint8_t *s, const uint8_t *end, uint32_t *cp, int surrogates) {
    uint8_t c = s[0];
    size_t n;
    uint32_t v, min;
    if (c < 0x80) {
        *cp = c;
        return 1;
    } else if (c >= 0xc2 && c <= 0xdf) {
        n = 2, v = c & 0x1f, min = 0x80;
    } else if (c >= 0xe0 && c <= 0xef) {
        n = 3, v = c & 0x0f, min = 0x800;
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4, v = c & 0x07, min = 0x10000;
    } else {
        return 0;
    }
    if ((size_t)(end - s) < n)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        v = v << 6 | (s[i] & 0x3f);
    }
    if (v < min || v > 0x10ffff || (!surrogates && v >= 0xd800 && v <= 0xdfff))
        return 0;
    *cp = v;
    return n;
}

static int utf8_valid(const uint8_t *s, size_t len, int surrogates) {
    const uint8_t *end = s + len;
    uint32_t cp;
    while (s < end) {
        if (*s < 0x80) {
            s++;
            continue;
        }
        size_t k = utf8_next(s, end, &cp, surrogates);
        if (!k)
            return 0;
        s += k;
    }
    return 1;
}

static int hexval(uint8_t c) {
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* One code point of raw-unicode-escape text (CPython's decoder: only \u and
   \U are escapes; a backslash before anything else stands for itself and
   takes that byte along). Returns bytes consumed, 0 on a bad escape.
   `*pending` carries the second code point of a "\x" pair. */
static size_t rue_next(const uint8_t *s, const uint8_t *end, uint32_t *cp, int32_t *pending) {
    if (s[0] != '\\' || end - s < 2) {
        *cp = s[0];
        return 1;
    }
    unsigned count = s[1] == 'u' ? 4 : s[1] == 'U' ? 8 : 0;
    if (!count) {
        *cp = '\\';
        *pending = s[1];
        return 2;
    }
    if ((size_t)(end - s) < 2 + count)
        return 0;
    uint32_t v = 0;
    for (unsigned i = 0; i < count; i++) {
        int h = hexval(s[2 + i]);
        if (h < 0)
            return 0;
        v = v << 4 | (uint32_t)h;
    }
    if (v > 0x10ffff)
        return 0;
    *cp = v;
    return 2 + count;
}

static int rue_valid(const uint8_t *s, size_t len) {
    const uint8_t *end = s + len;
    while (s < end) {
        const uint8_t *b = memchr(s, '\\', (size_t)(end - s));
        if (!b)
            return 1;
        uint32_t cp;
        int32_t pending = -1;
        size_t k = rue_next(b, end, &cp, &pending);
        if (!k)
            return 0;
        s = b + k;
    }
    return 1;
}

/* The STRING argument (quotes stripped) through Python's escape_decode:
   the only failures are a trailing backslash and \x without two hex digits. */
static int pyescape_valid(const uint8_t *s, size_t len) {
    const uint8_t *end = s + len;
    while (s < end) {
        const uint8_t *b = memchr(s, '\\', (size_t)(end - s));
        if (!b)
            return 1;
        if (end - b < 2)
            return 0;
        if (b[1] == 'x') {
            if (end - b < 4 || hexval(b[2]) < 0 || hexval(b[3]) < 0)
                return 0;
            s = b + 4;
        } else {
            s = b + 2;
        }
    }
    return 1;
}

static int is_space(uint8_t c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

/* A memo index line as int(text, 10) reads it: surrounding whitespace, a
   sign, digits with single underscores between them. Returns 0 when the text
   is not an integer; *big is set when it does not fit in 64 bits. */
static int parse_decimal(const uint8_t *s, size_t len, int *neg, uint64_t *v, int *big) {
    const uint8_t *end = s + len;
    while (s < end && is_space(*s))
        s++;
    while (end > s && is_space(end[-1]))
        end--;
    *neg = 0, *v = 0, *big = 0;
    if (s < end && (*s == '+' || *s == '-'))
        *neg = *s++ == '-';
    if (s == end)
        return 0;
    int prev_digit = 0;
    for (; s < end; s++) {
        if (*s == '_') {
            if (!prev_digit || s + 1 == end)
                return 0;
            prev_digit = 0;
            continue;
        }
        if (*s < '0' || *s > '9')
            return 0;
        prev_digit = 1;
        uint64_t dgt = (uint64_t)(*s - '0');
        if (*v > (UINT64_MAX - dgt) / 10)
            *big = 1;
        else
            *v = *v * 10 + dgt;
    }
    return 1;
}

/*------------------------------------------------------------------------------
 * Argument rendering (Python repr-like, ASCII only, abbreviated)
 *----------------------------------------------------------------------------*/

/* Which quote Python's repr would pick for these bytes. Only a prefix is
   looked at: past DIS_QUOTE_SCAN bytes the text has more than DIS_SHOW code
   points in every encoding used here (at most 10 bytes each, for \UXXXXXXXX)
   and is abbreviated anyway, and a 1 GB argument must not cost a scan. */
#define DIS_QUOTE_SCAN (16 * DIS_SHOW)
static char pick_quote(const uint8_t *s, size_t len, const uint8_t *s2, size_t len2) {
    if (len > DIS_QUOTE_SCAN)
        len = DIS_QUOTE_SCAN;
    if (len2 > DIS_QUOTE_SCAN)
        len2 = DIS_QUOTE_SCAN;
    int sq = memchr(s, '\'', len) || (s2 && memchr(s2, '\'', len2));
    int dq = memchr(s, '"', len) || (s2 && memchr(s2, '"', len2));
    return sq && !dq ? '"' : '\'';
}

static void put_cp(line *l, uint32_t cp, char quote) {
    if (cp == '\\' || cp == (uint32_t)(unsigned char)quote) {
        ln_putc(l, '\\');
        ln_putc(l, (char)cp);
    } else if (cp == '\n') {
        ln_puts(l, "\\n");
    } else if (cp == '\r') {
        ln_puts(l, "\\r");
    } else if (cp == '\t') {
        ln_puts(l, "\\t");
    } else if (cp >= 0x20 && cp < 0x7f) {
        ln_putc(l, (char)cp);
    } else if (cp < 0x100) {
        ln_printf(l, "\\x%02x", (unsigned)cp);
    } else if (cp < 0x10000) {
        ln_printf(l, "\\u%04x", (unsigned)cp);
    } else {
        ln_printf(l, "\\U%08x", (unsigned)cp);
    }
}

enum text_enc { ENC_BYTES, ENC_UTF8, ENC_RUE };

/* Renders bytes as the inside of a quoted literal, decoding per `enc`, up to
   `budget` output characters. Returns the number of input bytes consumed. */
static size_t put_text(line *l, const uint8_t *s, size_t len, enum text_enc enc, char quote,
                       size_t budget) {
    const uint8_t *p = s, *end = s + len;
    size_t stop = l->len + budget;
    while (p < end && l->len < stop) {
        uint32_t cp;
        size_t k = 1;
        int32_t pending = -1;
        if (enc == ENC_UTF8 && *p >= 0x80) {
            k = utf8_next(p, end, &cp, 1);
            if (!k) /* show an invalid byte as itself; the fault line follows */
                cp = *p, k = 1;
        } else if (enc == ENC_RUE) {
            k = rue_next(p, end, &cp, &pending);
            if (!k)
                cp = *p, k = 1;
        } else {
            cp = *p;
        }
        put_cp(l, cp, quote);
        if (pending >= 0)
            put_cp(l, (uint32_t)pending, quote);
        p += k;
    }
    return (size_t)(p - s);
}

/* A quoted argument: prefix'...'suffix, then "..." and the total length
   when it did not fit. `counted` always appends the length. */
static void put_quoted(line *l, const char *prefix, const char *suffix, const uint8_t *s,
                       size_t len, enum text_enc enc, int counted) {
    char q = pick_quote(s, len, NULL, 0);
    ln_puts(l, prefix);
    ln_putc(l, q);
    size_t used = put_text(l, s, len, enc, q, DIS_SHOW);
    ln_putc(l, q);
    ln_puts(l, suffix);
    if (used < len)
        ln_puts(l, "...");
    if (counted || used < len)
        ln_printf(l, " (%zu byte%s)", len, len == 1 ? "" : "s");
}

/* Text lines of numbers print bare when they are plain ASCII tokens. */
static void put_plain_or_quoted(line *l, const uint8_t *s, size_t len) {
    int plain = len > 0;
    for (size_t i = 0; i < len && plain; i++)
        plain = s[i] > 0x20 && s[i] < 0x7f && s[i] != '\'' && s[i] != '"' && s[i] != '\\';
    if (!plain) {
        put_quoted(l, "", "", s, len, ENC_BYTES, 0);
        return;
    }
    size_t show = len > DIS_SHOW ? DIS_SHOW : len;
    for (size_t i = 0; i < show; i++)
        ln_putc(l, (char)s[i]);
    if (show < len)
        ln_printf(l, "... (%zu bytes)", len);
}

/* Python's repr of a float: shortest round-trip digits, fixed notation for
   1e-4 <= |x| < 1e16, otherwise d.ddde+XX. */
static void put_float(line *l, double x) {
    if (isnan(x)) {
        ln_puts(l, "nan");
        return;
    }
    if (isinf(x)) {
        ln_puts(l, x < 0 ? "-inf" : "inf");
        return;
    }
    char buf[40];
    for (int prec = 0; prec < 17; prec++) {
        snprintf(buf, sizeof buf, "%.*e", prec, x);
        if (strtod(buf, NULL) == x)
            break;
    }
    /* buf: [-]d[.ddd]e[+-]XX */
    char digits[24];
    size_t nd = 0;
    const char *c = buf;
    int neg = *c == '-';
    if (neg)
        c++;
    for (; *c && *c != 'e'; c++) /* skips the decimal point, whatever the locale's */
        if (*c >= '0' && *c <= '9')
            digits[nd++] = *c;
    int exp = atoi(c + 1);
    while (nd > 1 && digits[nd - 1] == '0')
        nd--;
    digits[nd] = '\0';
    if (neg)
        ln_putc(l, '-');
    if (exp >= 16 || exp < -4) {
        ln_putc(l, digits[0]);
        if (nd > 1)
            ln_printf(l, ".%s", digits + 1);
        ln_printf(l, "e%c%02d", exp < 0 ? '-' : '+', exp < 0 ? -exp : exp);
    } else if (exp < 0) {
        ln_puts(l, "0.");
        for (int i = -1; i > exp; i--)
            ln_putc(l, '0');
        ln_puts(l, digits);
    } else {
        for (int i = 0; i <= exp; i++)
            ln_putc(l, (size_t)i < nd ? digits[i] : '0');
        ln_putc(l, '.');
        if ((size_t)exp + 1 < nd)
            ln_puts(l, digits + exp + 1);
        else
            ln_putc(l, '0');
    }
}

/* A two's-complement little-endian integer (LONG1/LONG4 payload): decimal
   when it is at most DIS_LONG_DEC bytes, else the leading hex digits of
   its magnitude, so the cost stays linear in what is shown. */
static void put_long(line *l, const uint8_t *s, size_t len) {
    if (len == 0) {
        ln_putc(l, '0');
        return;
    }
    int neg = s[len - 1] & 0x80;
    if (len > DIS_LONG_DEC) {
        /* the top bytes as stored; a negative value would need a full
           negation to show its magnitude, so say it is two's complement */
        ln_puts(l, "0x");
        for (size_t i = 0; i < 12; i++)
            ln_printf(l, "%02x", s[len - 1 - i]);
        ln_puts(l, neg ? "... (negative, two's complement)" : "...");
        return;
    }
    uint8_t mag[DIS_LONG_DEC];
    int carry = 1;
    for (size_t i = 0; i < len; i++) { /* little-endian; negate when negative */
        unsigned b = neg ? (unsigned)(uint8_t)~s[i] + (unsigned)carry : s[i];
        if (neg)
            carry = b > 0xff;
        mag[i] = (uint8_t)b;
    }
    char dec[DIS_LONG_DEC * 3 + 2];
    size_t nd = 0, n = len;
    while (n > 0 && mag[n - 1] == 0)
        n--;
    do { /* repeated division by 10 over the byte array */
        unsigned rem = 0;
        for (size_t i = n; i-- > 0;) {
            unsigned cur = rem << 8 | mag[i];
            mag[i] = (uint8_t)(cur / 10);
            rem = cur % 10;
        }
        dec[nd++] = (char)('0' + rem);
        while (n > 0 && mag[n - 1] == 0)
            n--;
    } while (n > 0);
    if (neg)
        ln_putc(l, '-');
    size_t shown = 0;
    while (nd > 0 && shown < DIS_SHOW)
        ln_putc(l, dec[--nd]), shown++;
    if (nd > 0)
        ln_printf(l, "... (%zu digits)", shown + nd);
}

/*------------------------------------------------------------------------------
 * One opcode
 *----------------------------------------------------------------------------*/

/* Where an opcode's argument lies, once its structure is known. */
typedef struct arg {
    const uint8_t *s;   /* payload: counted bytes, or line without '\n' */
    size_t len;
    const uint8_t *s2;  /* LINE2: second line */
    size_t len2;
    uint64_t num;       /* FIXED: the value (raw bits for FLOAT8) */
    size_t end;         /* offset just past the argument */
} arg;

/* Bytes of a text line's payload, or SIZE_MAX when there is no newline. */
static size_t line_len(const uint8_t *s, size_t avail) {
    const uint8_t *nl = memchr(s, '\n', avail);
    return nl ? (size_t)(nl - s) : SIZE_MAX;
}

/* Argument kinds whose empty line CPython's C unpickler reports as
   truncation (bad_readline on len < 2). */
static int empty_line_truncates(pkl_argkind k) {
    return k == PKL_ARG_DECIMALNL_SHORT || k == PKL_ARG_DECIMALNL_LONG || k == PKL_ARG_FLOATNL ||
           k == PKL_ARG_STRINGNL_NOESCAPE_PAIR;
}

/* Length prefixes the C unpickler reads as signed: LONG4 only ("negative
   byte count"). It reads BINSTRING's length unsigned and then runs out of
   input (truncated), although pickletools and the Python unpickler call it
   negative. */
static int signed_length(pkl_argkind k) { return k == PKL_ARG_LONG4; }

/* Locates the argument of the opcode at `pos`. Faults on truncation and
   negative lengths: nothing of the opcode is printed then, as pickletools
   does not print an opcode it cannot read. */
static bool read_arg(dis *d, size_t pos, const pkl_opinfo *op, arg *a) {
    const uint8_t *s = d->p + pos + 1;
    size_t avail = d->n - pos - 1;
    char detail[160];
    memset(a, 0, sizeof *a);
    switch (op->layout) {
    case PKL_LAYOUT_NONE:
        a->end = pos + 1;
        return true;
    case PKL_LAYOUT_FIXED:
        if (avail < op->width) {
            snprintf(detail, sizeof detail, "%s at %zu needs a %u-byte argument, %zu bytes left",
                     op->name, pos, (unsigned)op->width, avail);
            return fault(d, PKL_ERR_TRUNCATED, d->n, "argument runs past the end of the input",
                         detail);
        }
        a->num = le_uint(s, op->width);
        a->end = pos + 1 + op->width;
        return true;
    case PKL_LAYOUT_COUNTED: {
        if (avail < op->width) {
            snprintf(detail, sizeof detail, "%s at %zu needs a %u-byte length, %zu bytes left",
                     op->name, pos, (unsigned)op->width, avail);
            return fault(d, PKL_ERR_TRUNCATED, d->n, "length runs past the end of the input",
                         detail);
        }
        uint64_t n = le_uint(s, op->width);
        if (signed_length(op->arg) && op->width == 4 && (n & 0x80000000u)) {
            snprintf(detail, sizeof detail, "%s at %zu: length %lld", op->name, pos,
                     (long long)(int32_t)(uint32_t)n);
            return fault(d, PKL_ERR_BAD_ARGUMENT, pos, "negative length", detail);
        }
        if (n > (uint64_t)INT64_MAX) { /* CPython: OverflowError past Py_ssize_t */
            snprintf(detail, sizeof detail, "%s at %zu: length %llu", op->name, pos,
                     (unsigned long long)n);
            return fault(d, PKL_ERR_RESOURCE_LIMIT, pos, "length exceeds the maximum size (2^63-1)",
                         detail);
        }
        if (n > avail - op->width) {
            snprintf(detail, sizeof detail, "%s at %zu announces %llu bytes, %zu left", op->name,
                     pos, (unsigned long long)n, avail - op->width);
            return fault(d, PKL_ERR_TRUNCATED, d->n,
                         "counted argument runs past the end of the input", detail);
        }
        a->s = s + op->width;
        a->len = (size_t)n;
        a->end = pos + 1 + op->width + (size_t)n;
        return true;
    }
    case PKL_LAYOUT_LINE:
    case PKL_LAYOUT_LINE2: {
        size_t k = line_len(s, avail);
        size_t k2 = 0;
        if (k != SIZE_MAX && op->layout == PKL_LAYOUT_LINE2)
            k2 = line_len(s + k + 1, avail - k - 1);
        /* CPython decodes the module line before it reads the name line */
        if (k != SIZE_MAX && k2 == SIZE_MAX && op->arg == PKL_ARG_STRINGNL_NOESCAPE_PAIR &&
            k > 0 && !utf8_valid(s, k, 0)) {
            snprintf(detail, sizeof detail, "%s at %zu", op->name, pos);
            return fault(d, PKL_ERR_BAD_ARGUMENT, pos, "invalid UTF-8 in global name", detail);
        }
        if (k == SIZE_MAX || k2 == SIZE_MAX) {
            snprintf(detail, sizeof detail, "%s at %zu: no newline before the end", op->name,
                     pos);
            return fault(d, PKL_ERR_TRUNCATED, d->n, "text argument has no newline", detail);
        }
        if (empty_line_truncates(op->arg) &&
            (k == 0 || (op->layout == PKL_LAYOUT_LINE2 && k2 == 0))) {
            snprintf(detail, sizeof detail, "%s at %zu", op->name, pos);
            return fault(d, PKL_ERR_TRUNCATED, pos, "empty text argument", detail);
        }
        a->s = s;
        a->len = k;
        if (op->layout == PKL_LAYOUT_LINE2) {
            a->s2 = s + k + 1;
            a->len2 = k2;
            a->end = pos + 1 + k + 1 + k2 + 1;
        } else {
            a->end = pos + 1 + k + 1;
        }
        return true;
    }
    }
    return fault(d, PKL_ERR_INTERNAL, pos, "unknown argument layout", op->name);
}

static void put_arg(line *l, const pkl_opinfo *op, const arg *a) {
    switch (op->arg) {
    case PKL_ARG_NONE:
        break;
    case PKL_ARG_INT4:
        ln_printf(l, "%ld", (long)(int32_t)(uint32_t)a->num);
        break;
    case PKL_ARG_UINT1:
    case PKL_ARG_UINT2:
    case PKL_ARG_UINT4:
    case PKL_ARG_UINT8:
        ln_uint(l, a->num, 0);
        break;
    case PKL_ARG_FLOAT8: {
        /* FLOAT8 is big-endian: le_uint read it byte-reversed */
        uint64_t be = 0, v = a->num;
        for (int i = 0; i < 8; i++, v >>= 8)
            be = be << 8 | (v & 0xff);
        double x;
        memcpy(&x, &be, sizeof x);
        put_float(l, x);
        break;
    }
    case PKL_ARG_LONG1:
    case PKL_ARG_LONG4:
        put_long(l, a->s, a->len);
        ln_printf(l, " (%zu byte%s)", a->len, a->len == 1 ? "" : "s");
        break;
    case PKL_ARG_STRING1:
    case PKL_ARG_STRING4:
        put_quoted(l, "", "", a->s, a->len, ENC_BYTES, 1);
        break;
    case PKL_ARG_BYTES1:
    case PKL_ARG_BYTES4:
    case PKL_ARG_BYTES8:
        put_quoted(l, "b", "", a->s, a->len, ENC_BYTES, 1);
        break;
    case PKL_ARG_BYTEARRAY8:
        put_quoted(l, "bytearray(b", ")", a->s, a->len, ENC_BYTES, 1);
        break;
    case PKL_ARG_UNICODESTRING1:
    case PKL_ARG_UNICODESTRING4:
    case PKL_ARG_UNICODESTRING8:
        put_quoted(l, "", "", a->s, a->len, ENC_UTF8, 1);
        break;
    case PKL_ARG_DECIMALNL_SHORT:
    case PKL_ARG_DECIMALNL_LONG:
    case PKL_ARG_FLOATNL:
        put_plain_or_quoted(l, a->s, a->len);
        break;
    case PKL_ARG_STRINGNL: {
        /* already a quoted literal when well formed: show it as written */
        int plain = 1;
        for (size_t i = 0; i < a->len && plain; i++)
            plain = a->s[i] >= 0x20 && a->s[i] < 0x7f;
        if (plain && a->len <= DIS_SHOW)
            for (size_t i = 0; i < a->len; i++)
                ln_putc(l, (char)a->s[i]);
        else
            put_quoted(l, "", "", a->s, a->len, ENC_BYTES, 0);
        break;
    }
    case PKL_ARG_STRINGNL_NOESCAPE:
        put_quoted(l, "", "", a->s, a->len, ENC_UTF8, 0);
        break;
    case PKL_ARG_UNICODESTRINGNL:
        put_quoted(l, "", "", a->s, a->len, ENC_RUE, 0);
        break;
    case PKL_ARG_STRINGNL_NOESCAPE_PAIR: {
        /* 'module name', as pickletools joins them */
        char q = pick_quote(a->s, a->len, a->s2, a->len2);
        ln_putc(l, q);
        size_t u1 = put_text(l, a->s, a->len, ENC_UTF8, q, DIS_SHOW);
        size_t u2 = 0;
        if (u1 == a->len) {
            ln_putc(l, ' ');
            u2 = put_text(l, a->s2, a->len2, ENC_UTF8, q, DIS_SHOW);
        }
        ln_putc(l, q);
        if (u1 < a->len || u2 < a->len2)
            ln_printf(l, "... (%zu + %zu bytes)", a->len, a->len2);
        break;
    }
    case PKL_ARG_COUNT:
        break;
    }
}

/* Content checks that only the bytes decide (after the line is printed). */
static const char *arg_content_fault(const pkl_opinfo *op, const arg *a) {
    switch (op->arg) {
    case PKL_ARG_UNICODESTRING1:
    case PKL_ARG_UNICODESTRING4:
    case PKL_ARG_UNICODESTRING8:
        return utf8_valid(a->s, a->len, 1) ? NULL : "invalid UTF-8 in string argument";
    case PKL_ARG_UNICODESTRINGNL:
        return rue_valid(a->s, a->len) ? NULL : "bad \\u or \\U escape in UNICODE argument";
    case PKL_ARG_STRINGNL:
        if (a->len < 2 || a->s[0] != a->s[a->len - 1] || (a->s[0] != '\'' && a->s[0] != '"'))
            return "STRING argument is not quoted";
        return pyescape_valid(a->s + 1, a->len - 2) ? NULL : "bad escape in STRING argument";
    case PKL_ARG_STRINGNL_NOESCAPE_PAIR:
        return utf8_valid(a->s, a->len, 0) && utf8_valid(a->s2, a->len2, 0)
                   ? NULL
                   : "invalid UTF-8 in global name";
    case PKL_ARG_STRINGNL_NOESCAPE:
        for (size_t i = 0; i < a->len; i++)
            if (a->s[i] >= 0x80)
                return "persistent id is not ASCII";
        return NULL;
    default:
        return NULL;
    }
}

static void put_prefix(line *l, size_t pos, const pkl_opinfo *op, size_t marks_open) {
    static const char hex[] = "0123456789abcdef";
    uint8_t c = op->code;
    size_t start;
    ln_uint(l, pos, 5);
    ln_puts(l, ": ");
    start = l->len;
    if (c == '\\' || c == '\'') {
        ln_putc(l, '\\');
        ln_putc(l, (char)c);
    } else if (c >= 0x20 && c < 0x7f) {
        ln_putc(l, (char)c);
    } else {
        ln_puts(l, "\\x");
        ln_putc(l, hex[c >> 4]);
        ln_putc(l, hex[c & 15]);
    }
    ln_pad(l, start + 5);
    size_t levels = marks_open < DIS_INDENT_CAP ? marks_open : DIS_INDENT_CAP;
    for (size_t i = 0; i < levels; i++)
        ln_puts(l, "    ");
    ln_puts(l, op->name);
}

/* Checks the stack effect and applies it. Returns the fault message (and
   sets *code) or NULL; fills `markmsg` for opcodes that close a mark. */
static const char *apply_stack(dis *d, const effect *e, size_t pos, pkl_code *code,
                               char *markmsg, size_t mcap) {
    const pkl_opinfo *op = e->info;
    size_t *top = top_count(d);
    *code = PKL_ERR_STACK_UNDERFLOW;
    if (op->code == PKL_OP_POP && *top == 0 && d->nmarks > 0) {
        /* POP of a mark, like the C unpickler's load_pop */
        snprintf(markmsg, mcap, "(MARK at %zu)", d->marks[--d->nmarks].pos);
        return NULL;
    }
    if (e->uses_mark) {
        if (d->nmarks == 0) {
            *code = PKL_ERR_MARK_MISSING;
            snprintf(markmsg, mcap, "(no MARK)");
            return "no MARK is open";
        }
        mark m = d->marks[d->nmarks - 1];
        snprintf(markmsg, mcap, "(MARK at %zu)", m.pos);
        if (m.count < e->slice_min)
            return "too few items after the MARK";
        size_t below = d->nmarks > 1 ? d->marks[d->nmarks - 2].count : d->base;
        if (below < e->below)
            return "too few items below the MARK";
        /* key/value slices: CPython refuses an odd count (the decoder and the
           oracle class it as underflow: a value is missing) */
        if ((op->code == PKL_OP_DICT || op->code == PKL_OP_SETITEMS) && m.count % 2)
            return "odd number of items for a key/value slice";
        d->nmarks--;
        d->total -= m.count + e->below;
        *top_count(d) -= e->below;
    } else {
        size_t need = e->npop;
        /* PUT-family store the top item: the table lists no stack effect */
        if (op->code == PKL_OP_PUT || op->code == PKL_OP_BINPUT || op->code == PKL_OP_LONG_BINPUT)
            need = 1;
        if (*top < need)
            return d->nmarks ? "too few items above the top MARK" : "too few items on the stack";
        *top -= e->npop;
        d->total -= e->npop;
    }
    if (e->push_mark) {
        if (d->nmarks == d->marks_cap) {
            size_t cap = d->marks_cap ? d->marks_cap * 2 : 64;
            mark *m = cap <= DIS_MARK_CAP ? realloc(d->marks, cap * sizeof *m) : NULL;
            if (!m) {
                char text[96];
                snprintf(text, sizeof text,
                         "marks not tracked past %zu; stack checks are off from here",
                         d->marks_cap);
                note(d, pos, text);
                d->stack_off = 1;
                return NULL;
            }
            d->marks = m;
            d->marks_cap = cap;
        }
        d->marks[d->nmarks].pos = pos;
        d->marks[d->nmarks].count = 0;
        d->nmarks++;
    }
    *top_count(d) += e->npush;
    d->total += e->npush;
    return NULL;
}

/* Memo effect: GET-family must find the index, PUT-family records it.
   Writes the "(as N)" / "(redefined)" remark. */
static const char *apply_memo(dis *d, const pkl_opinfo *op, const arg *a, size_t pos,
                              pkl_code *code, char *remark, size_t rcap) {
    uint8_t c = op->code;
    int get = c == PKL_OP_GET || c == PKL_OP_BINGET || c == PKL_OP_LONG_BINGET;
    int put = c == PKL_OP_PUT || c == PKL_OP_BINPUT || c == PKL_OP_LONG_BINPUT;
    if (!get && !put && c != PKL_OP_MEMOIZE)
        return NULL;
    uint64_t idx = a->num;
    int neg = 0, big = 0;
    *code = PKL_ERR_BAD_ARGUMENT;
    if (c == PKL_OP_MEMOIZE) {
        idx = d->memo_len;
        if (d->memo_off)
            snprintf(remark, rcap, "(as ?)");
        else
            snprintf(remark, rcap, "(as %llu)", (unsigned long long)idx);
    } else if (op->arg == PKL_ARG_DECIMALNL_SHORT) {
        /* the C unpickler parses the line as a C string: it ends at a NUL */
        const uint8_t *nul = memchr(a->s, 0, a->len);
        size_t n = nul ? (size_t)(nul - a->s) : a->len;
        if (!parse_decimal(a->s, n, &neg, &idx, &big))
            return "memo index is not a decimal integer";
    }
    if (get) {
        if (d->memo_off)
            return NULL;
        /* negative or huge: never put, since PUT refuses negatives and every
           index put so far fit the bitmap */
        if ((neg && idx != 0) || big || !memo_has(d, idx)) {
            *code = PKL_ERR_MEMO_MISSING;
            return "memo index was never PUT";
        }
        return NULL;
    }
    if (neg && (idx != 0 || big))
        return "negative PUT index";
    if (d->memo_off)
        return NULL;
    int r = big ? -1 : memo_put(d, idx);
    if (r < 0) {
        char text[112];
        snprintf(text, sizeof text,
                 "memo not tracked past index %llu; memo checks are off from here",
                 (unsigned long long)(big || idx >= DIS_MEMO_CAP ? DIS_MEMO_CAP - 1 : idx));
        note(d, pos, text);
        d->memo_off = 1;
    } else if (r == 1 && c != PKL_OP_MEMOIZE) {
        snprintf(remark, rcap, "(redefined)");
    }
    return NULL;
}

/* Disassembles the opcode at *pos. Returns 1 to go on, 0 at STOP, -1 on a
   fault (already reported). */
static int step(dis *d, const effect fx[256], size_t *pos) {
    size_t at = *pos;
    const effect *e = &fx[d->p[at]];
    char detail[160];
    if (!e->info) {
        snprintf(detail, sizeof detail, "byte 0x%02x", d->p[at]);
        fault(d, PKL_ERR_BAD_OPCODE, at, "not an opcode", detail);
        return -1;
    }
    const pkl_opinfo *op = e->info;
    if (e->uses_mark && !d->stack_off && d->nmarks == 0 && op->layout != PKL_LAYOUT_NONE) {
        /* INST: CPython looks for the mark before it reads the argument */
        snprintf(detail, sizeof detail, "%s at %zu", op->name, at);
        fault(d, PKL_ERR_MARK_MISSING, at, "no MARK is open", detail);
        return -1;
    }
    arg a;
    if (!read_arg(d, at, op, &a))
        return -1;
    if (op->proto > d->maxproto)
        d->maxproto = op->proto;

    /* Checks in the C unpickler's order: stack, argument text, memo, PROTO;
       the line is printed first so the fault line follows its opcode. */
    char markmsg[48] = "", remark[48] = "";
    size_t marks_open = d->nmarks; /* indentation is the depth before the opcode */
    pkl_code code = PKL_OK;
    const char *msg = NULL;
    if (!d->stack_off)
        msg = apply_stack(d, e, at, &code, markmsg, sizeof markmsg);
    if (!msg && (msg = arg_content_fault(op, &a)) != NULL)
        code = PKL_ERR_BAD_ARGUMENT;
    if (!msg)
        msg = apply_memo(d, op, &a, at, &code, remark, sizeof remark);
    if (!msg && op->code == PKL_OP_PROTO && a.num > PKL_HIGHEST_PROTOCOL) {
        code = PKL_ERR_UNSUPPORTED_PROTOCOL;
        msg = "protocol above 5";
    }
    if (!msg && op->code == PKL_OP_FRAME && a.num > (uint64_t)INT64_MAX) {
        code = PKL_ERR_RESOURCE_LIMIT; /* as for counted lengths */
        msg = "FRAME length exceeds the maximum size (2^63-1)";
    } else if (!msg && op->code == PKL_OP_FRAME && a.num > d->n - a.end) {
        snprintf(detail, sizeof detail, "frame of %llu bytes, %zu left",
                 (unsigned long long)a.num, d->n - a.end);
        code = PKL_ERR_TRUNCATED;
        msg = "frame runs past the end of the input";
    }

    line l = {.len = 0};
    put_prefix(&l, at, op, marks_open);
    if (op->layout != PKL_LAYOUT_NONE || markmsg[0] || remark[0]) {
        size_t nlen = strlen(op->name);
        for (size_t i = nlen; i < 10; i++) /* pickletools' mild alignment */
            ln_putc(&l, ' ');
        if (op->layout != PKL_LAYOUT_NONE) {
            ln_putc(&l, ' ');
            put_arg(&l, op, &a);
        }
        if (markmsg[0])
            ln_printf(&l, " %s", markmsg);
        if (remark[0])
            ln_printf(&l, " %s", remark);
    }
    if (!msg) { /* a faulting opcode has no "after" */
        ln_pad(&l, DIS_NOTE_COL);
        ln_puts(&l, "  ; stack ");
        if (d->stack_off)
            ln_putc(&l, '?');
        else
            ln_uint(&l, d->total, 0);
    }
    emit(d, &l);
    flush_note(d);

    if (msg) {
        if (code != PKL_ERR_TRUNCATED)
            snprintf(detail, sizeof detail, "%s at %zu", op->name, at);
        fault(d, code, code == PKL_ERR_TRUNCATED ? d->n : at, msg, detail);
        return -1;
    }
    *pos = a.end;
    return op->code == PKL_OP_STOP ? 0 : 1;
}

static void summary(dis *d, size_t end) {
    line l = {.len = 0};
    ln_printf(&l, "highest protocol among opcodes = %d", d->maxproto);
    emit(d, &l);
    if (end < d->n) {
        l.len = 0;
        ln_printf(&l, "trailing bytes after STOP: %zu", d->n - end);
        emit(d, &l);
    }
    if (!d->stack_off && (d->total || d->nmarks)) {
        /* pickle.loads ignores this; pickletools complains */
        l.len = 0;
        ln_printf(&l, "note: stack not empty after STOP: %zu items, %zu marks", d->total,
                  d->nmarks);
        emit(d, &l);
    }
}

static void discard(void *ctx, const char *text, size_t len) {
    (void)ctx, (void)text, (void)len;
}

bool pkl_dis(const void *data, size_t len, pkl_write_fn write, void *ctx, pkl_err *err) {
    effect fx[256];
    build_effects(fx);
    dis d;
    memset(&d, 0, sizeof d);
    d.p = data;
    d.n = data ? len : 0;
    d.write = write ? write : discard; /* NULL: only the verdict is wanted */
    d.ctx = ctx;
    d.err = err;
    d.maxproto = -1;

    size_t pos = 0;
    int r = 1;
    while (r > 0) {
        if (pos >= d.n) {
            fault(&d, PKL_ERR_TRUNCATED, d.n, "input ended before STOP", "");
            r = -1;
            break;
        }
        r = step(&d, fx, &pos);
    }
    if (r == 0) {
        summary(&d, pos);
        if (err) {
            err->code = PKL_OK;
            err->msg = "well formed";
            err->pos = pos;
        }
    }
    free(d.marks);
    free(d.memo);
    return r == 0;
}
