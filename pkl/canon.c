/* Canonical text v1 emitter (docs/canonical-form.md).
 *
 * Two iterative passes over the reachable graph:
 *   1. count incoming edges (saturating at 2) to find shared nodes, and fix
 *      the order of every set's elements;
 *   2. print depth-first, pre-order, labelling shared nodes at first sight.
 * Both passes walk the same edge enumeration (node_entry/slot_entry), so
 * "shared" means exactly "printed more than once".
 *
 * The only recursion is in the set-ordering digest, whose depth is bounded by
 * DIGEST_DEPTH (8) by definition of the format.
 */
#include <inttypes.h>
#include <string.h>

#include "sha256.h"
#include "value.h"

#define HEADER "brine-canonical 1 raw\n"
#define DIGEST_DEPTH 8

/* ------------------------------------------------------------------------ */
/* Growable output with a hard size bound. */

typedef struct buf {
    char *p;
    size_t len, cap, max;
    const pkl_alc *alc;
    pkl_code fail; /* first failure, PKL_OK while healthy */
} buf;

/* Capacity for `extra` more bytes, without charging them to `max`: worst-case
   reservations (quoting) must not fail a text that fits. */
static bool buf_room(buf *b, size_t extra) {
    if (b->fail)
        return false;
    if (extra > SIZE_MAX / 2 - b->len) {
        b->fail = PKL_ERR_RESOURCE_LIMIT;
        return false;
    }
    size_t need = b->len + extra + 1; /* room for the final NUL */
    if (need <= b->cap)
        return true;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    char *p = b->p ? b->alc->realloc(b->alc->ctx, b->p, b->cap, cap) : b->alc->malloc(b->alc->ctx, cap);
    if (!p) {
        b->fail = PKL_ERR_RESOURCE_LIMIT;
        return false;
    }
    b->p = p;
    b->cap = cap;
    return true;
}

/* Capacity for `extra` more bytes that will all be written: charged to `max`. */
static bool buf_reserve(buf *b, size_t extra) {
    if (!b->fail && extra > b->max - b->len) {
        b->fail = PKL_ERR_RESOURCE_LIMIT;
        return false;
    }
    return buf_room(b, extra);
}

/* After writing an unknown amount into reserved room: enforce `max`. */
static void buf_check(buf *b) {
    if (b->len > b->max && !b->fail)
        b->fail = PKL_ERR_RESOURCE_LIMIT;
}

static void put(buf *b, const char *s, size_t n) {
    if (buf_reserve(b, n)) {
        memcpy(b->p + b->len, s, n);
        b->len += n;
    }
}

static void puts_(buf *b, const char *s) { put(b, s, strlen(s)); }

static void putc_(buf *b, char c) {
    if (buf_reserve(b, 1))
        b->p[b->len++] = c;
}

static void put_u64(buf *b, uint64_t v) {
    char tmp[24];
    size_t n = 0;
    do {
        tmp[sizeof tmp - 1 - n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    put(b, tmp + sizeof tmp - n, n);
}

static const char hexd[] = "0123456789abcdef";

static void put_hexbytes(buf *b, const uint8_t *p, size_t n) {
    if (!buf_reserve(b, 2 * n))
        return;
    for (size_t i = 0; i < n; i++) {
        b->p[b->len++] = hexd[p[i] >> 4];
        b->p[b->len++] = hexd[p[i] & 15];
    }
}

/* ------------------------------------------------------------------------ */
/* Scalar payloads (section 3 quoting). */

/* Writes one escaped code point or byte; returns the bytes written (<= 10). */
static size_t escape_cp(char *o, uint32_t cp) {
    if (cp >= 0x20 && cp < 0x7f && cp != '"' && cp != '\\') {
        o[0] = (char)cp;
        return 1;
    }
    if (cp == '"' || cp == '\\') {
        o[0] = '\\';
        o[1] = (char)cp;
        return 2;
    }
    int digits = cp < 0x100 ? 2 : cp < 0x10000 ? 4 : 8;
    o[0] = '\\';
    o[1] = digits == 2 ? 'x' : digits == 4 ? 'u' : 'U';
    for (int i = 0; i < digits; i++)
        o[2 + i] = hexd[(cp >> (4 * (digits - 1 - i))) & 15];
    return (size_t)(2 + digits);
}

static void put_quoted_bytes(buf *b, const uint8_t *p, size_t n) {
    if (n > (SIZE_MAX - 2) / 4 || !buf_room(b, 4 * n + 2))
        return;
    char *o = b->p + b->len;
    size_t k = 0;
    o[k++] = '"';
    for (size_t i = 0; i < n; i++)
        k += escape_cp(o + k, p[i]);
    o[k++] = '"';
    b->len += k;
    buf_check(b);
}

/* The worst case is 4 output bytes per input byte: a 1-byte code point
 * becomes \xNN; longer sequences expand less (\uNNNN for 3 bytes, \UNNNNNNNN
 * for 4). The decoder validated the UTF-8; a malformed byte is still rendered
 * (as its own value) rather than trusted blindly. */
size_t pkl_quote_str(const char *s, size_t n, char *out) {
    const uint8_t *p = (const uint8_t *)s;
    size_t k = 0, i = 0;
    out[k++] = '"';
    while (i < n) {
        uint8_t c = p[i];
        uint32_t cp;
        size_t len;
        if (c < 0x80) {
            cp = c;
            len = 1;
        } else if ((c & 0xe0) == 0xc0) {
            cp = c & 0x1f;
            len = 2;
        } else if ((c & 0xf0) == 0xe0) {
            cp = c & 0x0f;
            len = 3;
        } else {
            cp = c & 0x07;
            len = 4;
        }
        if (len > n - i) {
            cp = c;
            len = 1;
        } else {
            for (size_t j = 1; j < len; j++)
                cp = cp << 6 | (p[i + j] & 0x3f);
        }
        k += escape_cp(out + k, cp);
        i += len;
    }
    out[k++] = '"';
    return k;
}

static void put_quoted_utf8(buf *b, const uint8_t *p, size_t n) {
    if (n > (SIZE_MAX - 2) / 4 || !buf_room(b, PKL_QUOTE_MAX(n)))
        return;
    b->len += pkl_quote_str((const char *)p, n, b->p + b->len);
    buf_check(b);
}

/* ------------------------------------------------------------------------ */
/* Edge enumeration: what is printed below a node, and below a slot. */

enum { SLOT_NONE, SLOT_ARGS, SLOT_KWARGS, SLOT_MUT };

typedef struct entry {
    const pkl_val *node; /* the node, or the owner of the slot */
    uint8_t slot;        /* SLOT_NONE for a node */
    size_t mut;          /* SLOT_MUT: index into node->u.stub->muts */
} entry;

typedef struct canon canon;

static const uint32_t *set_order(canon *c, const pkl_val *set);

static bool args_nonempty(const pkl_stub *s) {
    return s->args && s->args->u.seq.len > 0;
}
static bool kwargs_nonempty(const pkl_stub *s) {
    return s->kwargs && s->kwargs->u.map.len > 0;
}

/* The i-th entry printed under node n. Returns false past the last. */
static bool node_entry(canon *c, const pkl_val *n, size_t i, entry *e) {
    e->slot = SLOT_NONE;
    e->mut = 0;
    switch ((pkl_kind)n->kind) {
    case PKL_LIST:
    case PKL_TUPLE:
        if (i >= n->u.seq.len)
            return false;
        e->node = n->u.seq.items[i];
        return true;
    case PKL_DICT:
        if (i >= 2 * n->u.map.len)
            return false;
        e->node = n->u.map.kv[i];
        return true;
    case PKL_SET:
    case PKL_FROZENSET: {
        if (i >= n->u.map.len)
            return false;
        const uint32_t *order = set_order(c, n);
        if (!order)
            return false; /* failure recorded in c */
        e->node = n->u.map.kv[order[i]];
        return true;
    }
    case PKL_MEMORYVIEW:
        if (i > 0)
            return false;
        e->node = n->u.stub->target;
        return true;
    case PKL_GLOBAL:
    case PKL_CALL:
    case PKL_NEW:
    case PKL_PERSID: {
        const pkl_stub *s = n->u.stub;
        if (n->kind != PKL_GLOBAL) {
            if (i == 0) {
                e->node = s->target;
                return true;
            }
            i--;
            if (n->kind != PKL_PERSID && args_nonempty(s)) {
                if (i == 0) {
                    e->node = n;
                    e->slot = SLOT_ARGS;
                    return true;
                }
                i--;
            }
            if (n->kind == PKL_NEW && kwargs_nonempty(s)) {
                if (i == 0) {
                    e->node = n;
                    e->slot = SLOT_KWARGS;
                    return true;
                }
                i--;
            }
        }
        if (i >= s->nmuts)
            return false;
        e->node = n;
        e->slot = SLOT_MUT;
        e->mut = i;
        return true;
    }
    default:
        return false;
    }
}

/* The i-th node printed under a slot entry. */
static bool slot_entry(const entry *slot, size_t i, const pkl_val **out) {
    const pkl_stub *s = slot->node->u.stub;
    switch (slot->slot) {
    case SLOT_ARGS:
        if (i >= s->args->u.seq.len)
            return false;
        *out = s->args->u.seq.items[i];
        return true;
    case SLOT_KWARGS:
        if (i >= 2 * s->kwargs->u.map.len)
            return false;
        *out = s->kwargs->u.map.kv[i];
        return true;
    default: {
        const pkl_mut *m = &s->muts[slot->mut];
        if (i == 0) {
            *out = m->a;
            return true;
        }
        if (i == 1 && m->kind == PKL_MUT_SETITEM) {
            *out = m->b;
            return true;
        }
        return false;
    }
    }
}

static bool entry_child(canon *c, const entry *parent, size_t i, entry *child) {
    if (parent->slot == SLOT_NONE)
        return node_entry(c, parent->node, i, child);
    child->slot = SLOT_NONE;
    child->mut = 0;
    return slot_entry(parent, i, &child->node);
}

/* Nodes that never carry a label and are printed in full every time. */
static bool unlabelled(const pkl_val *n) {
    if (pkl_kind_is_scalar((pkl_kind)n->kind))
        return true;
    if (n->kind == PKL_TUPLE)
        return n->u.seq.len == 0;
    if (n->kind == PKL_FROZENSET)
        return n->u.map.len == 0;
    return false;
}

/* The line of an entry without indentation and label: H() of section 5. */
static void put_head(buf *b, const entry *e) {
    if (e->slot == SLOT_ARGS) {
        puts_(b, ".args");
        return;
    }
    if (e->slot == SLOT_KWARGS) {
        puts_(b, ".kwargs");
        return;
    }
    if (e->slot == SLOT_MUT) {
        static const char *const names[] = {".build", ".append", ".setitem", ".add"};
        uint8_t k = e->node->u.stub->muts[e->mut].kind;
        puts_(b, k < 4 ? names[k] : ".?");
        return;
    }
    const pkl_val *n = e->node;
    puts_(b, pkl_kind_name((pkl_kind)n->kind));
    switch ((pkl_kind)n->kind) {
    case PKL_BOOL:
        puts_(b, n->u.b ? " true" : " false");
        break;
    case PKL_INT:
        putc_(b, ' ');
        if (n->flags & PKL_F_BIG) {
            const uint8_t *m = (const uint8_t *)n->u.bytes.data;
            size_t len = n->u.bytes.len;
            puts_(b, (n->flags & PKL_F_BIGNEG) ? "-0x" : "0x");
            if (len && m[0] < 16) {
                putc_(b, hexd[m[0]]);
                m++;
                len--;
            }
            put_hexbytes(b, m, len);
        } else if (n->u.i < 0) {
            putc_(b, '-');
            put_u64(b, (uint64_t)0 - (uint64_t)n->u.i);
        } else {
            put_u64(b, (uint64_t)n->u.i);
        }
        break;
    case PKL_FLOAT: {
        uint8_t be[8];
        for (int i = 0; i < 8; i++)
            be[i] = (uint8_t)(n->u.fbits >> (56 - 8 * i));
        putc_(b, ' ');
        put_hexbytes(b, be, 8);
        break;
    }
    case PKL_STR:
        putc_(b, ' ');
        put_quoted_utf8(b, (const uint8_t *)n->u.bytes.data, n->u.bytes.len);
        break;
    case PKL_BYTES:
    case PKL_BYTEARRAY:
        putc_(b, ' ');
        put_quoted_bytes(b, (const uint8_t *)n->u.bytes.data, n->u.bytes.len);
        break;
    case PKL_GLOBAL:
        putc_(b, ' ');
        put_quoted_utf8(b, (const uint8_t *)n->u.stub->module, n->u.stub->mlen);
        putc_(b, ' ');
        put_quoted_utf8(b, (const uint8_t *)n->u.stub->name, n->u.stub->nlen);
        break;
    case PKL_BUFFER:
        putc_(b, ' ');
        put_u64(b, n->u.stub->buffer_index);
        break;
    default:
        break;
    }
}

/* ------------------------------------------------------------------------ */
/* Emitter state. */

typedef struct digest_slot {
    uint32_t key; /* node idx * DIGEST_DEPTH + (d - 1), plus 1; 0 = empty */
    uint8_t dig[32];
} digest_slot;

struct canon {
    const pkl_doc *doc;
    const pkl_alc *alc;
    size_t nnodes;
    uint8_t *indeg;     /* per node: 0 unseen, 1 once, 2 shared */
    uint32_t *label;    /* per node: 0 or its label */
    uint32_t *setix;    /* per node: 1 + index into orders for sets already ordered */
    uint32_t **orders;  /* per ordered set: element positions in canonical order */
    size_t norders, orders_cap;
    digest_slot *dmemo; /* open addressing */
    size_t dmemo_cap, dmemo_len;
    buf scratch;        /* key texts while ordering sets */
    pkl_code fail;
};

static void *zalloc(canon *c, size_t n, size_t size) {
    if (size && n > SIZE_MAX / size) {
        c->fail = PKL_ERR_RESOURCE_LIMIT;
        return NULL;
    }
    void *p = c->alc->malloc(c->alc->ctx, n * size > 0 ? n * size : 1);
    if (!p) {
        c->fail = PKL_ERR_RESOURCE_LIMIT;
        return NULL;
    }
    memset(p, 0, n * size);
    return p;
}

static void zfree(canon *c, void *p) {
    if (p)
        c->alc->free(c->alc->ctx, p);
}

/* ---- digest memo */

static uint8_t *dmemo_find(canon *c, uint32_t key) {
    if (!c->dmemo_cap)
        return NULL;
    size_t mask = c->dmemo_cap - 1;
    for (size_t i = (key * 2654435761u) & mask;; i = (i + 1) & mask) {
        if (c->dmemo[i].key == key)
            return c->dmemo[i].dig;
        if (!c->dmemo[i].key)
            return NULL;
    }
}

static void dmemo_put(canon *c, uint32_t key, const uint8_t dig[32]) {
    if ((c->dmemo_len + 1) * 2 > c->dmemo_cap) {
        size_t cap = c->dmemo_cap ? c->dmemo_cap * 2 : 64;
        digest_slot *t = zalloc(c, cap, sizeof *t);
        if (!t)
            return; /* memo is only a cache: fail soft, c->fail set */
        for (size_t i = 0; i < c->dmemo_cap; i++) {
            if (!c->dmemo[i].key)
                continue;
            size_t j = (c->dmemo[i].key * 2654435761u) & (cap - 1);
            while (t[j].key)
                j = (j + 1) & (cap - 1);
            t[j] = c->dmemo[i];
        }
        zfree(c, c->dmemo);
        c->dmemo = t;
        c->dmemo_cap = cap;
    }
    size_t mask = c->dmemo_cap - 1;
    size_t i = (key * 2654435761u) & mask;
    while (c->dmemo[i].key)
        i = (i + 1) & mask;
    c->dmemo[i].key = key;
    memcpy(c->dmemo[i].dig, dig, 32);
    c->dmemo_len++;
}

/* ---- set ordering (section 5) */

typedef struct sortkey {
    uint32_t pos;      /* element position in insertion order */
    uint8_t composite; /* 0 scalar (text key), 1 other (digest key) */
    size_t off, len;   /* scalar: key text in c->scratch */
    uint8_t dig[32];
} sortkey;

static int key_cmp(const canon *c, const sortkey *a, const sortkey *b) {
    if (a->composite != b->composite)
        return a->composite < b->composite ? -1 : 1;
    if (a->composite)
        return memcmp(a->dig, b->dig, 32);
    size_t n = a->len < b->len ? a->len : b->len;
    int r = memcmp(c->scratch.p + a->off, c->scratch.p + b->off, n);
    if (r)
        return r;
    return a->len < b->len ? -1 : a->len > b->len ? 1 : 0;
}

/* Stable bottom-up merge sort (C11 qsort takes no context). */
static bool sort_keys(canon *c, sortkey *k, size_t n) {
    sortkey *tmp = zalloc(c, n, sizeof *tmp);
    if (!tmp)
        return false;
    for (size_t width = 1; width < n; width *= 2) {
        for (size_t lo = 0; lo < n; lo += 2 * width) {
            size_t mid = lo + width < n ? lo + width : n;
            size_t hi = lo + 2 * width < n ? lo + 2 * width : n;
            size_t i = lo, j = mid, o = lo;
            while (i < mid && j < hi)
                tmp[o++] = key_cmp(c, &k[j], &k[i]) < 0 ? k[j++] : k[i++];
            while (i < mid)
                tmp[o++] = k[i++];
            while (j < hi)
                tmp[o++] = k[j++];
        }
        memcpy(k, tmp, n * sizeof *k);
    }
    zfree(c, tmp);
    return true;
}

static bool entry_digest(canon *c, const entry *e, int d, uint8_t out[32]);

/* Orders a set's elements with composite keys D(element, level). Returns a
   fresh array of positions (caller frees with zfree), NULL on failure. */
static uint32_t *order_elements(canon *c, const pkl_val *set, int level) {
    size_t n = set->u.map.len;
    sortkey *keys = zalloc(c, n, sizeof *keys);
    uint32_t *order = zalloc(c, n, sizeof *order);
    if (!keys || !order) {
        zfree(c, keys);
        zfree(c, order);
        return NULL;
    }
    size_t mark = c->scratch.len;
    for (size_t i = 0; i < n; i++) {
        const pkl_val *el = set->u.map.kv[i];
        keys[i].pos = (uint32_t)i;
        if (pkl_kind_is_scalar((pkl_kind)el->kind)) {
            entry e = {el, SLOT_NONE, 0};
            keys[i].off = c->scratch.len;
            put_head(&c->scratch, &e);
            keys[i].len = c->scratch.len - keys[i].off;
        } else {
            entry e = {el, SLOT_NONE, 0};
            keys[i].composite = 1;
            if (!entry_digest(c, &e, level, keys[i].dig))
                break;
        }
    }
    if (c->scratch.fail && !c->fail)
        c->fail = c->scratch.fail;
    if (!c->fail && sort_keys(c, keys, n))
        for (size_t i = 0; i < n; i++)
            order[i] = keys[i].pos;
    c->scratch.len = mark;
    zfree(c, keys);
    if (c->fail) {
        zfree(c, order);
        return NULL;
    }
    return order;
}

/* The emission order of a set (digest level 1), computed once per set. */
static const uint32_t *set_order(canon *c, const pkl_val *set) {
    if (c->setix[set->idx])
        return c->orders[c->setix[set->idx] - 1];
    if (c->fail)
        return NULL;
    if (c->norders == c->orders_cap) {
        size_t cap = c->orders_cap ? c->orders_cap * 2 : 16;
        uint32_t **o = zalloc(c, cap, sizeof *o);
        if (!o)
            return NULL;
        if (c->norders)
            memcpy(o, c->orders, c->norders * sizeof *o);
        zfree(c, c->orders);
        c->orders = o;
        c->orders_cap = cap;
    }
    uint32_t *order = order_elements(c, set, 1);
    if (!order)
        return NULL;
    c->orders[c->norders++] = order;
    c->setix[set->idx] = (uint32_t)c->norders;
    return order;
}

static void sha_head(canon *c, pkl_sha256 *s, const entry *e) {
    size_t mark = c->scratch.len;
    put_head(&c->scratch, e);
    if (c->scratch.fail) {
        c->fail = c->scratch.fail;
        return;
    }
    pkl_sha256_update(s, c->scratch.p + mark, c->scratch.len - mark);
    c->scratch.len = mark;
}

/* D(e, d) of section 5. Recursion depth is at most DIGEST_DEPTH. */
static bool entry_digest(canon *c, const entry *e, int d, uint8_t out[32]) {
    uint32_t key = 0;
    if (e->slot == SLOT_NONE && e->node->idx < (UINT32_MAX - DIGEST_DEPTH) / DIGEST_DEPTH) {
        key = e->node->idx * DIGEST_DEPTH + (uint32_t)(d - 1) + 1;
        const uint8_t *hit = dmemo_find(c, key);
        if (hit) {
            memcpy(out, hit, 32);
            return true;
        }
    }
    pkl_sha256 s;
    pkl_sha256_init(&s);
    sha_head(c, &s, e);
    entry first;
    bool is_set = e->slot == SLOT_NONE &&
                  (e->node->kind == PKL_SET || e->node->kind == PKL_FROZENSET);
    if (d < DIGEST_DEPTH && !c->fail && (is_set ? e->node->u.map.len > 0 : entry_child(c, e, 0, &first))) {
        uint32_t *order = NULL;
        if (is_set && !(order = order_elements(c, e->node, d + 1)))
            return false;
        pkl_sha256_update(&s, "(", 1);
        entry ch;
        for (size_t i = 0;; i++) {
            if (is_set) {
                if (i >= e->node->u.map.len)
                    break;
                ch.node = e->node->u.map.kv[order[i]];
                ch.slot = SLOT_NONE;
                ch.mut = 0;
            } else if (!entry_child(c, e, i, &ch)) {
                break;
            }
            if (i)
                pkl_sha256_update(&s, ",", 1);
            if (ch.slot == SLOT_NONE && pkl_kind_is_scalar((pkl_kind)ch.node->kind)) {
                sha_head(c, &s, &ch);
            } else {
                uint8_t sub[32];
                char hex[64];
                if (!entry_digest(c, &ch, d + 1, sub))
                    break;
                for (int k = 0; k < 32; k++) {
                    hex[2 * k] = hexd[sub[k] >> 4];
                    hex[2 * k + 1] = hexd[sub[k] & 15];
                }
                pkl_sha256_update(&s, hex, 64);
            }
            if (c->fail)
                break;
        }
        zfree(c, order);
        pkl_sha256_update(&s, ")", 1);
    }
    if (c->fail)
        return false;
    pkl_sha256_final(&s, out);
    if (key)
        dmemo_put(c, key, out);
    return !c->fail;
}

/* ------------------------------------------------------------------------ */
/* Pass 1: count edges. */

typedef struct frame {
    entry e;
    size_t i;
    size_t depth;
} frame;

typedef struct fstack {
    frame *f;
    size_t len, cap;
} fstack;

static bool fpush(canon *c, fstack *s, const entry *e, size_t depth) {
    if (s->len == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 64;
        frame *f = zalloc(c, cap, sizeof *f);
        if (!f)
            return false;
        if (s->len)
            memcpy(f, s->f, s->len * sizeof *f);
        zfree(c, s->f);
        s->f = f;
        s->cap = cap;
    }
    s->f[s->len].e = *e;
    s->f[s->len].i = 0;
    s->f[s->len].depth = depth;
    s->len++;
    return true;
}

/* Counts one more edge into e; returns true when e must be walked now. */
static bool count_edge(canon *c, const entry *e) {
    if (e->slot != SLOT_NONE)
        return true;
    const pkl_val *n = e->node;
    if (unlabelled(n))
        return false;
    if (c->indeg[n->idx] >= 2)
        return false;
    return c->indeg[n->idx]++ == 0;
}

static bool count_pass(canon *c, fstack *st) {
    entry root = {c->doc->root, SLOT_NONE, 0};
    if (!count_edge(c, &root))
        return true;
    if (!fpush(c, st, &root, 0))
        return false;
    while (st->len && !c->fail) {
        frame *f = &st->f[st->len - 1];
        entry ch;
        if (!entry_child(c, &f->e, f->i, &ch)) {
            st->len--;
            continue;
        }
        f->i++;
        if (count_edge(c, &ch) && !fpush(c, st, &ch, 0))
            return false;
    }
    return !c->fail;
}

/* ------------------------------------------------------------------------ */
/* Pass 2: print. */

/* Spaces up to MAX_SPACE_DEPTH, then "@<depth> ": keeps deep output linear. */
#define MAX_SPACE_DEPTH 32

static void indent(buf *b, size_t depth) {
    if (depth > MAX_SPACE_DEPTH) {
        putc_(b, '@');
        put_u64(b, depth);
        putc_(b, ' ');
        return;
    }
    if (!buf_reserve(b, 2 * depth))
        return;
    memset(b->p + b->len, ' ', 2 * depth);
    b->len += 2 * depth;
}

/* Prints the line of e; returns true when its children must follow. */
static bool print_entry(canon *c, buf *out, const entry *e, size_t depth, uint32_t *next_label) {
    indent(out, depth);
    if (e->slot == SLOT_NONE && !unlabelled(e->node)) {
        uint32_t l = c->label[e->node->idx];
        if (l) {
            puts_(out, "ref #");
            put_u64(out, l);
            putc_(out, '\n');
            return false;
        }
    }
    put_head(out, e);
    if (e->slot == SLOT_NONE && !unlabelled(e->node) && c->indeg[e->node->idx] >= 2) {
        uint32_t l = ++*next_label;
        c->label[e->node->idx] = l;
        puts_(out, " #");
        put_u64(out, l);
    }
    putc_(out, '\n');
    return e->slot != SLOT_NONE || !pkl_kind_is_scalar((pkl_kind)e->node->kind);
}

static bool print_pass(canon *c, fstack *st, buf *out) {
    uint32_t next_label = 0;
    entry root = {c->doc->root, SLOT_NONE, 0};
    st->len = 0;
    if (print_entry(c, out, &root, 0, &next_label) && !fpush(c, st, &root, 0))
        return false;
    while (st->len && !c->fail && !out->fail) {
        frame *f = &st->f[st->len - 1];
        entry ch;
        if (!entry_child(c, &f->e, f->i, &ch)) {
            st->len--;
            continue;
        }
        f->i++;
        size_t depth = f->depth + 1;
        if (print_entry(c, out, &ch, depth, &next_label) && !fpush(c, st, &ch, depth))
            return false;
    }
    return !c->fail && !out->fail;
}

/* ------------------------------------------------------------------------ */

static void canon_free(canon *c) {
    zfree(c, c->indeg);
    zfree(c, c->label);
    zfree(c, c->setix);
    for (size_t i = 0; i < c->norders; i++)
        zfree(c, c->orders[i]);
    zfree(c, c->orders);
    zfree(c, c->dmemo);
    zfree(c, c->scratch.p);
}

char *pkl_canon(const pkl_doc *doc, const pkl_alc *alc, size_t max_output, size_t *len,
                pkl_err *err) {
    if (!alc)
        alc = pkl_alc_libc();
    canon c;
    memset(&c, 0, sizeof c);
    c.doc = doc;
    c.alc = alc;
    c.nnodes = doc->nnodes;
    c.scratch.alc = alc;
    c.scratch.max = SIZE_MAX / 2;
    buf out = {NULL, 0, 0, max_output, alc, PKL_OK};
    fstack st = {NULL, 0, 0};

    c.indeg = zalloc(&c, c.nnodes, 1);
    c.label = zalloc(&c, c.nnodes, sizeof *c.label);
    c.setix = zalloc(&c, c.nnodes, sizeof *c.setix);
    bool ok = !c.fail && doc->root && count_pass(&c, &st);
    if (ok) {
        puts_(&out, HEADER);
        ok = print_pass(&c, &st, &out);
    }
    pkl_code code = c.fail ? c.fail : out.fail ? out.fail : ok ? PKL_OK : PKL_ERR_INTERNAL;
    zfree(&c, st.f);
    canon_free(&c);
    if (code != PKL_OK) {
        if (out.p)
            alc->free(alc->ctx, out.p);
        if (err) {
            err->code = code;
            err->msg = code == PKL_ERR_RESOURCE_LIMIT
                           ? "canonical text exceeds max_output or memory ran out"
                           : "document has no root";
            err->pos = 0;
        }
        return NULL;
    }
    out.p[out.len] = '\0';
    if (len)
        *len = out.len;
    return out.p;
}

char *pkl_canon_error(pkl_code code, const pkl_alc *alc, size_t *len) {
    if (!alc)
        alc = pkl_alc_libc();
    buf out = {NULL, 0, 0, SIZE_MAX / 2, alc, PKL_OK};
    puts_(&out, HEADER "error ");
    puts_(&out, pkl_code_name(code));
    putc_(&out, '\n');
    if (out.fail) {
        if (out.p)
            alc->free(alc->ctx, out.p);
        return NULL;
    }
    out.p[out.len] = '\0';
    if (len)
        *len = out.len;
    return out.p;
}

char *pkl_canon_load(const void *data, size_t len, const pkl_load_opts *opts, size_t *out_len,
                     pkl_err *load_err) {
    pkl_err e = {PKL_OK, NULL, 0};
    const pkl_alc *alc = opts && opts->alc ? opts->alc : pkl_alc_libc();
    pkl_limits lim = opts && opts->limits ? *opts->limits : pkl_limits_default();
    pkl_doc *doc = pkl_load(data, len, opts, &e);
    char *text = NULL;
    if (doc) {
        text = pkl_canon(doc, alc, lim.max_output, out_len, &e);
        pkl_doc_free(doc);
    }
    if (!text)
        text = pkl_canon_error(e.code ? e.code : PKL_ERR_INTERNAL, alc, out_len);
    if (load_err)
        *load_err = e;
    return text;
}
