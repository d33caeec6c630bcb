/* Value-level folds (fold.h, docs/canonical-form.md section 6).
 *
 * Four passes over the document, all iterative and linear:
 *   1. rename globals with CPython's _compat_pickle tables, merging globals
 *      that end up with one (module, name) into one node;
 *   2. analysis on the graph as it is before any call folds:
 *      - which nodes must stay hashable (dict keys, set elements, and
 *        whatever a hashable container or a would-be set/dict/frozenset/tuple
 *        holds): such a node never folds into a list, dict, set or bytearray;
 *      - which `call tuple/frozenset` nodes lie on a cycle through tuples,
 *        frozensets and such calls: folding those would make a container
 *        that contains itself through hashable containers only, which no
 *        Python object graph has and nothing can hash, so they stay calls;
 *   3. a post-order walk from the root folds each `call` after everything
 *      below it (bottom-up), in place: the node keeps its identity (labels,
 *      sharing), only its kind and payload change; `new` nodes lose no-op
 *      `.build`s;
 *   4. every dict/set table is rebuilt, merging keys that became equal.
 * A call whose arguments or recorded mutations the built-in would not take
 * (CPython would raise) stays a call: a fold never invents a value.
 */
#include "fold.h"

#include <stdlib.h>
#include <string.h>

#include "canon_maps.h"
#include "compat_names.h"
#include "value.h"

/* Per-node analysis bits (nodes that existed before folding). */
#define S_HASHREQ 0x01 /* must stay hashable */
#define S_NOFOLD 0x02  /* tuple/frozenset call on a cycle of hashable containers */
#define S_HOK 0x04     /* known hashable */
#define S_HBAD 0x08    /* known unhashable */
#define S_SEEN 0x10    /* post-order walk: entered */
#define S_ONSTK 0x20   /* Tarjan stack / hashability walk in progress */
#define S_FOLDED 0x40  /* was a call, folded into a built-in */

enum cand {
    C_NONE, C_SET, C_FROZENSET, C_LIST, C_TUPLE, C_DICT, C_BYTEARRAY, C_BYTES, C_ENCODE,
    C_RECON,  /* copyreg._reconstructor(cls, base, state) */
    C_PARTIAL /* functools.partial(...)(): the protocol 2-3 spelling of NEWOBJ_EX */
};

typedef struct frame {
    pkl_val *v;
    size_t i;
} frame;

typedef struct fd {
    pkl_doc *doc;
    size_t n0;        /* nodes before folding; the analysis arrays cover these */
    uint8_t *st;      /* S_* per node */
    frame *stk;       /* explicit stack shared by the walks */
    size_t stkcap;
    pkl_val **tmp;    /* items of the value being built */
    size_t tmpn, tmpcap;
    uint8_t *bytes;   /* bytes of the bytes/bytearray being built */
    size_t bcap;
    pkl_err err;
} fd;

static char empty_payload[1]; /* zero-length bytes point here; never written */

static pkl_code oom(fd *f) {
    if (f->err.code == PKL_OK)
        f->err = (pkl_err){PKL_ERR_RESOURCE_LIMIT,
                           "folding needs more memory or nodes than the limits allow", 0};
    return PKL_ERR_RESOURCE_LIMIT;
}

static bool grow(fd *f, void **p, size_t *cap, size_t need, size_t size) {
    if (need <= *cap)
        return true;
    size_t ncap = *cap ? *cap : 64;
    while (ncap < need) {
        if (ncap > SIZE_MAX / 4 / size)
            return false;
        ncap *= 2;
    }
    void *np = pkl_mem_realloc(f->doc, *p, *cap * size, ncap * size);
    if (!np)
        return false;
    *p = np;
    *cap = ncap;
    return true;
}

static bool push(fd *f, size_t *n, pkl_val *v) {
    if (!grow(f, (void **)&f->stk, &f->stkcap, *n + 1, sizeof *f->stk))
        return false;
    f->stk[(*n)++] = (frame){v, 0};
    return true;
}

static bool tmp_add(fd *f, pkl_val *v) {
    if (!grow(f, (void **)&f->tmp, &f->tmpcap, f->tmpn + 1, sizeof *f->tmp))
        return false;
    f->tmp[f->tmpn++] = v;
    return true;
}

static inline uint8_t stv(const fd *f, const pkl_val *v) { return v->idx < f->n0 ? f->st[v->idx] : 0; }
static inline void stset(fd *f, const pkl_val *v, uint8_t bits) {
    if (v->idx < f->n0)
        f->st[v->idx] |= bits;
}

/* ------------------------------------------------------------------------ */
/* Names */

/* Bytewise order of (p, n) against a NUL-terminated ASCII string. */
static int cmp_name(const char *p, size_t n, const char *s) {
    size_t sl = strlen(s), k = n < sl ? n : sl;
    int c = memcmp(p, s, k);
    if (c)
        return c;
    return n < sl ? -1 : n > sl ? 1 : 0;
}

static bool is_name(const pkl_val *g, const char *m, const char *n) {
    const pkl_stub *s = g->u.stub;
    return g->kind == PKL_GLOBAL && cmp_name(s->module, s->mlen, m) == 0 &&
           cmp_name(s->name, s->nlen, n) == 0;
}

/* CPython's find_class renaming: NAME_MAPPING first, else IMPORT_MAPPING.
   Sets *nm (and *nn, NULL to keep the name); false when neither applies. */
static bool compat_lookup(const pkl_stub *s, const char **nm, const char **nn) {
    size_t lo = 0, hi = sizeof brine_compat_names / sizeof brine_compat_names[0];
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const brine_compat_name *e = &brine_compat_names[mid];
        int c = cmp_name(s->module, s->mlen, e->module);
        if (c == 0)
            c = cmp_name(s->name, s->nlen, e->name);
        if (c == 0) {
            *nm = e->new_module;
            *nn = e->new_name;
            return true;
        }
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    lo = 0;
    hi = sizeof brine_compat_modules / sizeof brine_compat_modules[0];
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = cmp_name(s->module, s->mlen, brine_compat_modules[mid].module);
        if (c == 0) {
            *nm = brine_compat_modules[mid].new_module;
            *nn = NULL;
            return true;
        }
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return false;
}

/* Table of final (module, name) -> the one node that carries it. */
typedef struct gslot {
    pkl_val *g; /* NULL: empty */
} gslot;

static uint64_t name_hash(const char *m, size_t ml, const char *n, size_t nl) {
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < ml; i++)
        h = (h ^ (uint8_t)m[i]) * 1099511628211ull;
    h = (h ^ 0xff) * 1099511628211ull; /* separator: not a byte of UTF-8 */
    for (size_t i = 0; i < nl; i++)
        h = (h ^ (uint8_t)n[i]) * 1099511628211ull;
    return h;
}

static char *arena_str(fd *f, const char *s, size_t n) {
    char *p = pkl_arena_alloc(f->doc, n ? n : 1);
    if (p && n)
        memcpy(p, s, n);
    return p;
}

static pkl_val *redirect(pkl_val **repl, size_t n0, pkl_val *p) {
    return p && p->idx < n0 && repl[p->idx] ? repl[p->idx] : p;
}

/* Points every edge at the surviving node of a merged group. */
static void rewrite_edges(fd *f, pkl_val **repl) {
    pkl_doc *doc = f->doc;
    size_t n0 = f->n0;
    for (size_t k = 0; k < doc->nnodes; k++) {
        pkl_val *v = pkl_doc_node(doc, k);
        switch ((pkl_kind)v->kind) {
        case PKL_LIST:
        case PKL_TUPLE:
            for (size_t i = 0; i < v->u.seq.len; i++)
                v->u.seq.items[i] = redirect(repl, n0, v->u.seq.items[i]);
            break;
        case PKL_DICT:
        case PKL_SET:
        case PKL_FROZENSET: {
            size_t n = (size_t)v->u.map.len * (v->kind == PKL_DICT ? 2 : 1);
            for (size_t i = 0; i < n; i++)
                v->u.map.kv[i] = redirect(repl, n0, v->u.map.kv[i]);
            break;
        }
        case PKL_GLOBAL:
        case PKL_CALL:
        case PKL_NEW:
        case PKL_PERSID:
        case PKL_MEMORYVIEW: {
            pkl_stub *s = v->u.stub;
            s->target = redirect(repl, n0, s->target);
            for (size_t i = 0; i < s->nmuts; i++) {
                s->muts[i].a = redirect(repl, n0, s->muts[i].a);
                s->muts[i].b = redirect(repl, n0, s->muts[i].b);
            }
            break;
        }
        default:
            break;
        }
    }
    doc->root = redirect(repl, n0, doc->root);
}

/* Pass 1. Globals are visited in creation order, so the first node of a
   merged group survives and the mutations of the group keep that order. */
static pkl_code rename_globals(fd *f) {
    pkl_doc *doc = f->doc;
    size_t n0 = f->n0, ng = 0;
    for (size_t k = 0; k < n0; k++)
        ng += pkl_doc_node(doc, k)->kind == PKL_GLOBAL;
    if (ng == 0)
        return PKL_OK;
    size_t cap = 16;
    while (cap < 2 * ng)
        cap *= 2;
    gslot *tab = pkl_mem_alloc(doc, cap * sizeof *tab);
    if (!tab)
        return oom(f);
    memset(tab, 0, cap * sizeof *tab);
    pkl_val **repl = NULL;
    pkl_code rc = PKL_OK;
    for (size_t k = 0; k < n0 && rc == PKL_OK; k++) {
        pkl_val *g = pkl_doc_node(doc, k);
        if (g->kind != PKL_GLOBAL)
            continue;
        pkl_stub *s = g->u.stub;
        const char *m = s->module, *n = s->name, *nm = NULL, *nn = NULL;
        size_t ml = s->mlen, nl = s->nlen;
        bool renamed = compat_lookup(s, &nm, &nn);
        if (renamed) {
            m = nm;
            ml = strlen(nm);
            if (nn) {
                n = nn;
                nl = strlen(nn);
            }
        }
        size_t i = (size_t)name_hash(m, ml, n, nl) & (cap - 1);
        while (tab[i].g) {
            const pkl_stub *o = tab[i].g->u.stub;
            if (o->mlen == ml && o->nlen == nl && memcmp(o->module, m, ml) == 0 &&
                memcmp(o->name, n, nl) == 0)
                break;
            i = (i + 1) & (cap - 1);
        }
        if (!tab[i].g) {
            if (renamed) {
                char *cm = arena_str(f, m, ml), *cn = n == s->name ? s->name : arena_str(f, n, nl);
                if (!cm || !cn) {
                    rc = oom(f);
                    break;
                }
                s->module = cm;
                s->mlen = ml;
                s->name = cn;
                s->nlen = nl;
            }
            tab[i].g = g;
            continue;
        }
        /* a second node with this final name: fold it into the first */
        pkl_val *keep = tab[i].g;
        if (!repl) {
            repl = pkl_mem_alloc(doc, n0 * sizeof *repl);
            if (!repl) {
                rc = oom(f);
                break;
            }
            memset(repl, 0, n0 * sizeof *repl);
        }
        repl[g->idx] = keep;
        for (size_t j = 0; j < s->nmuts && rc == PKL_OK; j++)
            if (pkl_stub_mutate(doc, keep, (pkl_mutkind)s->muts[j].kind, s->muts[j].a, s->muts[j].b))
                rc = oom(f);
    }
    if (rc == PKL_OK && repl) {
        rewrite_edges(f, repl);
        /* keys that were two globals may now be one: merge them before the
           analysis looks at any table */
        const char *why = NULL;
        rc = brine_maps_rebuild(doc, BRINE_MAPS_MERGE, NULL, &why);
        if (rc) {
            if (rc == PKL_ERR_RESOURCE_LIMIT)
                oom(f);
            else
                f->err = (pkl_err){rc, why, 0};
        }
    }
    if (repl)
        pkl_mem_free(doc, repl, n0 * sizeof *repl);
    pkl_mem_free(doc, tab, cap * sizeof *tab);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* Candidates */

static enum cand cand_of(const pkl_val *x) {
    if (x->kind != PKL_CALL || !x->u.stub->target)
        return C_NONE;
    const pkl_val *t = x->u.stub->target;
    if (t->kind == PKL_CALL && t->u.stub->target && is_name(t->u.stub->target, "functools", "partial"))
        return C_PARTIAL;
    if (t->kind != PKL_GLOBAL)
        return C_NONE;
    static const struct {
        const char *name;
        enum cand c;
    } builtins[] = {
        {"set", C_SET},   {"frozenset", C_FROZENSET}, {"list", C_LIST},       {"tuple", C_TUPLE},
        {"dict", C_DICT}, {"bytearray", C_BYTEARRAY}, {"bytes", C_BYTES},
    };
    for (size_t i = 0; i < sizeof builtins / sizeof builtins[0]; i++)
        if (is_name(t, "builtins", builtins[i].name))
            return builtins[i].c;
    if (is_name(t, "_codecs", "encode"))
        return C_ENCODE;
    if (is_name(t, "copyreg", "_reconstructor"))
        return C_RECON;
    return C_NONE;
}

static size_t nargs(const pkl_val *x) {
    const pkl_val *a = x->u.stub->args;
    return a ? a->u.seq.len : 0;
}

static pkl_val *arg(const pkl_val *x, size_t i) { return x->u.stub->args->u.seq.items[i]; }

/* The one list/tuple argument as it was before any fold (a call folded
   into a list is not taken: the analysis did not see it as one). */
static bool seq_arg(const fd *f, const pkl_val *x, pkl_val ***items, size_t *n) {
    if (nargs(x) == 0) {
        *items = NULL;
        *n = 0;
        return true;
    }
    if (nargs(x) != 1)
        return false;
    pkl_val *a = arg(x, 0);
    if ((a->kind != PKL_LIST && a->kind != PKL_TUPLE) || (stv(f, a) & S_FOLDED))
        return false;
    *items = a->u.seq.items;
    *n = a->u.seq.len;
    return true;
}

static bool is_noop_build(const pkl_mut *m) {
    return m->kind == PKL_MUT_BUILD &&
           (m->a->kind == PKL_NONE || (m->a->kind == PKL_DICT && m->a->u.map.len == 0));
}

/* ------------------------------------------------------------------------ */
/* Pass 2: analysis */

/* The i-th successor of v along would-be hash edges: tuple items, frozenset
   elements, and the items a `call tuple/frozenset` would hold. */
static bool hsucc(const fd *f, const pkl_val *v, size_t i, pkl_val **out) {
    pkl_val **items;
    size_t n;
    if (v->kind == PKL_TUPLE) {
        items = v->u.seq.items;
        n = v->u.seq.len;
    } else if (v->kind == PKL_FROZENSET) {
        items = v->u.map.kv;
        n = v->u.map.len;
    } else {
        enum cand c = cand_of(v);
        if ((c != C_TUPLE && c != C_FROZENSET) || !seq_arg(f, v, &items, &n))
            return false;
    }
    if (i >= n)
        return false;
    *out = items[i];
    return true;
}

static bool hnode(const pkl_val *v) {
    enum cand c;
    return v->kind == PKL_TUPLE || v->kind == PKL_FROZENSET ||
           (c = cand_of(v)) == C_TUPLE || c == C_FROZENSET;
}

static bool mark_req(fd *f, size_t *n, pkl_val *v) {
    if (v->idx >= f->n0 || (f->st[v->idx] & S_HASHREQ))
        return true;
    f->st[v->idx] |= S_HASHREQ;
    return push(f, n, v);
}

/* Seeds: dict keys, set elements, and what a set/frozenset/dict call would
   hash; then the closure along hash edges. */
static pkl_code mark_hash_required(fd *f) {
    pkl_doc *doc = f->doc;
    size_t n = 0;
    for (size_t k = 0; k < f->n0; k++) {
        pkl_val *v = pkl_doc_node(doc, k);
        bool ok = true;
        if (v->kind == PKL_DICT) {
            for (size_t i = 0; i < v->u.map.len && ok; i++)
                ok = mark_req(f, &n, v->u.map.kv[2 * i]);
        } else if (v->kind == PKL_SET || v->kind == PKL_FROZENSET) {
            for (size_t i = 0; i < v->u.map.len && ok; i++)
                ok = mark_req(f, &n, v->u.map.kv[i]);
        } else if (v->kind == PKL_CALL) {
            enum cand c = cand_of(v);
            pkl_val **items;
            size_t len;
            const pkl_stub *s = v->u.stub;
            if ((c == C_SET || c == C_FROZENSET || c == C_DICT) && seq_arg(f, v, &items, &len)) {
                for (size_t i = 0; i < len && ok; i++) {
                    pkl_val *it = items[i];
                    if (c != C_DICT)
                        ok = mark_req(f, &n, it);
                    else if ((it->kind == PKL_TUPLE || it->kind == PKL_LIST) && it->u.seq.len == 2)
                        ok = mark_req(f, &n, it->u.seq.items[0]);
                }
            }
            for (size_t i = 0; i < s->nmuts && ok; i++) {
                if ((c == C_SET && s->muts[i].kind == PKL_MUT_ADD) ||
                    (c == C_DICT && s->muts[i].kind == PKL_MUT_SETITEM))
                    ok = mark_req(f, &n, s->muts[i].a);
            }
        }
        if (!ok)
            return oom(f);
    }
    while (n) {
        pkl_val *v = f->stk[--n].v, *w;
        for (size_t i = 0; hsucc(f, v, i, &w); i++)
            if (!mark_req(f, &n, w))
                return oom(f);
    }
    return PKL_OK;
}

/* Tarjan's strongly connected components over the hash-edge graph, with
   explicit stacks; every tuple/frozenset call in a component of two or more
   nodes, or with an edge to itself, gets S_NOFOLD. */
static pkl_code mark_hash_cycles(fd *f) {
    pkl_doc *doc = f->doc;
    size_t n0 = f->n0;
    uint32_t *index = pkl_mem_alloc(doc, n0 * sizeof *index);
    uint32_t *low = pkl_mem_alloc(doc, n0 * sizeof *low);
    pkl_val **scc = NULL;
    size_t nscc = 0, sccap = 0, n = 0;
    pkl_code rc = PKL_OK;
    if (!index || !low) {
        rc = oom(f);
        goto out;
    }
    memset(index, 0, n0 * sizeof *index);
    uint32_t counter = 0;
    for (size_t k = 0; k < n0 && rc == PKL_OK; k++) {
        pkl_val *root = pkl_doc_node(doc, k);
        if (index[k] || !hnode(root))
            continue;
        index[k] = low[k] = ++counter;
        if (!grow(f, (void **)&scc, &sccap, nscc + 1, sizeof *scc) || !push(f, &n, root)) {
            rc = oom(f);
            break;
        }
        scc[nscc++] = root;
        f->st[k] |= S_ONSTK;
        while (n) {
            frame *fr = &f->stk[n - 1];
            pkl_val *v = fr->v, *w;
            if (hsucc(f, v, fr->i, &w)) {
                fr->i++;
                if (w->idx >= n0 || !hnode(w))
                    continue;
                if (w == v)
                    f->st[v->idx] |= S_NOFOLD;
                if (!index[w->idx]) {
                    index[w->idx] = low[w->idx] = ++counter;
                    if (!grow(f, (void **)&scc, &sccap, nscc + 1, sizeof *scc) || !push(f, &n, w)) {
                        rc = oom(f);
                        break;
                    }
                    scc[nscc++] = w;
                    f->st[w->idx] |= S_ONSTK;
                } else if (f->st[w->idx] & S_ONSTK) {
                    if (index[w->idx] < low[v->idx])
                        low[v->idx] = index[w->idx];
                }
                continue;
            }
            if (low[v->idx] == index[v->idx]) {
                size_t top = nscc;
                while (scc[nscc - 1] != v)
                    nscc--;
                nscc--;
                bool cyclic = top - nscc > 1;
                for (size_t j = nscc; j < top; j++) {
                    f->st[scc[j]->idx] &= (uint8_t)~S_ONSTK;
                    if (cyclic)
                        f->st[scc[j]->idx] |= S_NOFOLD;
                }
            }
            n--;
            if (n) {
                pkl_val *p = f->stk[n - 1].v;
                if (low[v->idx] < low[p->idx])
                    low[p->idx] = low[v->idx];
            }
        }
    }
out:
    if (index)
        pkl_mem_free(doc, index, n0 * sizeof *index);
    if (low)
        pkl_mem_free(doc, low, n0 * sizeof *low);
    if (scc)
        pkl_mem_free(doc, scc, sccap * sizeof *scc);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* Pass 3: folding */

static bool kind_unhashable(pkl_kind k) {
    return k == PKL_LIST || k == PKL_DICT || k == PKL_SET || k == PKL_BYTEARRAY ||
           k == PKL_MEMORYVIEW;
}

/* Unhashable for folding: libpkl's unhashable kinds, and a call of a
   built-in that has not folded. Such a call either failed (CPython would
   raise while loading) or would build a value that may not be hashable, or
   is still to be visited (a cycle): a set, dict or hashed tuple around it
   must not fold into something CPython would have refused. */
static bool leaf_unhashable(const pkl_val *v) {
    if (kind_unhashable((pkl_kind)v->kind))
        return true;
    enum cand c = v->kind == PKL_CALL ? cand_of(v) : C_NONE;
    return c != C_NONE && c != C_RECON && c != C_PARTIAL;
}

/* Whether v hashes (leaf_unhashable's rule), memoised: every node asked
   about must stay hashable (S_HASHREQ) and the walk is post-order, so a
   verdict does not change later (a call still to be visited, on a cycle,
   counts as unhashable, which only keeps more calls unfolded).
   Returns 1, 0, or -1 when out of memory. The stack frames live above
   `base` in f->stk, so this can run inside the post-order walk. */
static int hashable(fd *f, pkl_val *v, size_t base) {
    if (leaf_unhashable(v))
        return 0;
    if (v->kind != PKL_TUPLE && v->kind != PKL_FROZENSET)
        return 1;
    if (v->idx >= f->n0)
        return 0; /* not reached: nodes made by folding are never items */
    uint8_t s = stv(f, v);
    if (s & (S_HOK | S_HBAD))
        return (s & S_HOK) != 0;
    size_t n = base;
    if (!push(f, &n, v))
        return -1;
    stset(f, v, S_ONSTK);
    int verdict = 1;
    while (n > base) {
        frame *fr = &f->stk[n - 1];
        pkl_val *w;
        if (!hsucc(f, fr->v, fr->i, &w)) {
            f->st[fr->v->idx] = (uint8_t)((f->st[fr->v->idx] & ~S_ONSTK) | S_HOK);
            n--;
            continue;
        }
        fr->i++;
        uint8_t ws = stv(f, w);
        if (leaf_unhashable(w) || (ws & (S_HBAD | S_ONSTK))) {
            verdict = 0; /* the node on the stack contains it: so do its ancestors */
            break;
        }
        if ((w->kind != PKL_TUPLE && w->kind != PKL_FROZENSET) || (ws & S_HOK))
            continue;
        if (w->idx >= f->n0) {
            verdict = 0; /* not reached: nodes made by folding are never items */
            break;
        }
        if (!push(f, &n, w))
            return -1;
        f->st[w->idx] |= S_ONSTK;
    }
    for (size_t j = base; j < n; j++)
        f->st[f->stk[j].v->idx] = (uint8_t)((f->st[f->stk[j].v->idx] & ~S_ONSTK) | S_HBAD);
    return verdict;
}

/* Every item in tmp[from..) hashes. -1: out of memory. */
static int all_hashable(fd *f, size_t from, size_t step, size_t base) {
    for (size_t i = from; i < f->tmpn; i += step) {
        int h = hashable(f, f->tmp[i], base);
        if (h <= 0)
            return h;
    }
    return 1;
}

/* A byte value: an int 0..255 or a bool (bytearray([True]) is b'\x01'). */
static bool byte_of(const pkl_val *v, uint8_t *b) {
    if (v->kind == PKL_BOOL) {
        *b = v->u.b;
        return true;
    }
    if (v->kind == PKL_INT && !(v->flags & PKL_F_BIG) && v->u.i >= 0 && v->u.i <= 255) {
        *b = (uint8_t)v->u.i;
        return true;
    }
    return false;
}

static bool is_latin1_name(const pkl_val *v) {
    return v->kind == PKL_STR &&
           ((v->u.bytes.len == 7 && memcmp(v->u.bytes.data, "latin-1", 7) == 0) ||
            (v->u.bytes.len == 6 && memcmp(v->u.bytes.data, "latin1", 6) == 0));
}

static bool bytes_room(fd *f, size_t need) {
    return grow(f, (void **)&f->bytes, &f->bcap, need ? need : 1, 1);
}

/* str.encode("latin-1") of a STR node into f->bytes; false (*n untouched)
   when a code point is 256 or above (CPython raises UnicodeEncodeError). */
static int latin1(fd *f, const pkl_val *s, size_t *n) {
    const uint8_t *p = (const uint8_t *)s->u.bytes.data;
    size_t len = s->u.bytes.len, k = 0;
    if (!bytes_room(f, len))
        return -1;
    for (size_t i = 0; i < len;) {
        uint8_t c = p[i];
        if (c < 0x80) {
            f->bytes[k++] = c;
            i++;
        } else if ((c & 0xe0) == 0xc0 && i + 1 < len) {
            uint32_t cp = (uint32_t)(c & 0x1f) << 6 | (p[i + 1] & 0x3f);
            if (cp > 0xff)
                return 0;
            f->bytes[k++] = (uint8_t)cp;
            i += 2;
        } else {
            return 0; /* three or four bytes: a code point above 0xff */
        }
    }
    *n = k;
    return 1;
}

/* The bytes a bytes()/bytearray() call builds from its arguments. */
static int bytes_source(fd *f, const pkl_val *x, size_t *n) {
    size_t na = nargs(x);
    if (na == 0) {
        *n = 0;
        return 1;
    }
    pkl_val *a = arg(x, 0);
    if (na == 1 && a->kind == PKL_BYTES) {
        if (!bytes_room(f, a->u.bytes.len))
            return -1;
        memcpy(f->bytes, a->u.bytes.data, a->u.bytes.len);
        *n = a->u.bytes.len;
        return 1;
    }
    if (na == 1 && (a->kind == PKL_LIST || a->kind == PKL_TUPLE) && !(stv(f, a) & S_FOLDED)) {
        if (!bytes_room(f, a->u.seq.len))
            return -1;
        for (size_t i = 0; i < a->u.seq.len; i++)
            if (!byte_of(a->u.seq.items[i], &f->bytes[i]))
                return 0;
        *n = a->u.seq.len;
        return 1;
    }
    if (na == 2 && a->kind == PKL_STR && is_latin1_name(arg(x, 1)))
        return latin1(f, a, n);
    return 0;
}

/* Turns the stub x into an empty node of `kind`: its mutation list is
   released (its heap block is x's own), its stub record stays in the arena. */
static void become(fd *f, pkl_val *x, pkl_kind kind) {
    pkl_stub *s = x->u.stub;
    if (s->muts_cap)
        pkl_mem_free(f->doc, s->muts, s->muts_cap * sizeof *s->muts);
    s->muts = NULL;
    s->nmuts = s->muts_cap = 0;
    memset(&x->u, 0, sizeof x->u);
    x->kind = (uint8_t)kind;
    x->flags = 0;
    x->hash = 0;
    stset(f, x, S_FOLDED);
}

static pkl_code become_bytes(fd *f, pkl_val *x, pkl_kind kind, size_t n) {
    char *d = empty_payload;
    if (n) {
        d = pkl_arena_alloc(f->doc, n);
        if (!d)
            return oom(f);
        memcpy(d, f->bytes, n);
    }
    become(f, x, kind);
    x->u.bytes.data = d;
    x->u.bytes.len = n;
    return PKL_OK;
}

/* builtins.set / frozenset / list / tuple / dict. */
static pkl_code fold_container(fd *f, pkl_val *x, enum cand c, size_t base) {
    pkl_doc *doc = f->doc;
    const pkl_stub *s = x->u.stub;
    uint8_t sx = stv(f, x);
    bool req = (sx & S_HASHREQ) != 0;
    if ((req && (c == C_SET || c == C_LIST || c == C_DICT)) ||
        ((sx & S_NOFOLD) && (c == C_TUPLE || c == C_FROZENSET)))
        return PKL_OK;
    pkl_val **items;
    size_t n;
    if (!seq_arg(f, x, &items, &n))
        return PKL_OK;
    f->tmpn = 0;
    for (size_t i = 0; i < n; i++) {
        if (c == C_DICT) { /* dict(pairs): each pair a 2-tuple or 2-list */
            pkl_val *p = items[i];
            if ((p->kind != PKL_TUPLE && p->kind != PKL_LIST) || p->u.seq.len != 2 ||
                (stv(f, p) & S_FOLDED))
                return PKL_OK;
            if (!tmp_add(f, p->u.seq.items[0]) || !tmp_add(f, p->u.seq.items[1]))
                return oom(f);
        } else if (!tmp_add(f, items[i])) {
            return oom(f);
        }
    }
    for (size_t i = 0; i < s->nmuts; i++) {
        const pkl_mut *m = &s->muts[i];
        bool ok;
        if (is_noop_build(m))
            continue;
        if (c == C_LIST && m->kind == PKL_MUT_APPEND)
            ok = tmp_add(f, m->a);
        else if (c == C_SET && m->kind == PKL_MUT_ADD)
            ok = tmp_add(f, m->a);
        else if (c == C_DICT && m->kind == PKL_MUT_SETITEM)
            ok = tmp_add(f, m->a) && tmp_add(f, m->b);
        else
            return PKL_OK; /* the built-in has no such method: CPython would raise */
        if (!ok)
            return oom(f);
    }
    int h = 1;
    if (c == C_SET || c == C_FROZENSET || (c == C_TUPLE && req))
        h = all_hashable(f, 0, 1, base);
    else if (c == C_DICT)
        h = all_hashable(f, 0, 2, base);
    if (h < 0)
        return oom(f);
    if (h == 0)
        return PKL_OK;
    pkl_kind k = c == C_SET ? PKL_SET : c == C_FROZENSET ? PKL_FROZENSET : c == C_LIST ? PKL_LIST
                 : c == C_TUPLE ? PKL_TUPLE : PKL_DICT;
    become(f, x, k);
    size_t cnt = f->tmpn;
    if (k == PKL_TUPLE) {
        if (cnt) {
            pkl_val **arr = pkl_arena_alloc(doc, cnt * sizeof *arr);
            if (!arr)
                return oom(f);
            memcpy(arr, f->tmp, cnt * sizeof *arr);
            x->u.seq.items = arr;
            x->u.seq.len = cnt;
        }
        return PKL_OK;
    }
    if (k == PKL_LIST) {
        if (cnt && pkl_seq_reserve(doc, x, cnt))
            return oom(f);
        for (size_t i = 0; i < cnt; i++)
            if (pkl_seq_push(doc, x, f->tmp[i]))
                return oom(f);
        return PKL_OK;
    }
    for (size_t i = 0; i < cnt; i += (k == PKL_DICT ? 2 : 1)) {
        pkl_code rc = k == PKL_DICT ? pkl_dict_set(doc, x, f->tmp[i], f->tmp[i + 1])
                                    : pkl_set_add(doc, x, f->tmp[i]);
        if (rc == PKL_ERR_RESOURCE_LIMIT)
            return oom(f);
        if (rc) {
            f->err = (pkl_err){PKL_ERR_INTERNAL, "fold: a key checked hashable did not hash", 0};
            return PKL_ERR_INTERNAL;
        }
    }
    return PKL_OK;
}

/* builtins.bytearray / bytes, _codecs.encode. */
static pkl_code fold_bytes(fd *f, pkl_val *x, enum cand c) {
    const pkl_stub *s = x->u.stub;
    if (c == C_BYTEARRAY && (stv(f, x) & S_HASHREQ))
        return PKL_OK;
    size_t n;
    int r;
    if (c == C_ENCODE)
        r = nargs(x) == 2 && arg(x, 0)->kind == PKL_STR && is_latin1_name(arg(x, 1))
                ? latin1(f, arg(x, 0), &n)
                : 0;
    else
        r = bytes_source(f, x, &n);
    if (r <= 0)
        return r < 0 ? oom(f) : PKL_OK;
    for (size_t i = 0; i < s->nmuts; i++) {
        const pkl_mut *m = &s->muts[i];
        uint8_t b;
        if (is_noop_build(m))
            continue;
        if (c != C_BYTEARRAY || m->kind != PKL_MUT_APPEND || !byte_of(m->a, &b))
            return PKL_OK;
        if (!bytes_room(f, n + 1))
            return oom(f);
        f->bytes[n++] = b;
    }
    return become_bytes(f, x, c == C_BYTEARRAY ? PKL_BYTEARRAY : PKL_BYTES, n);
}

/* copyreg._reconstructor(cls, base, state): what copyreg's protocol 0/1
   reduce writes, turned into what protocol 2 writes for the same object
   (docs/canonical-form.md section 6 explains each base). */
static pkl_code fold_reconstructor(fd *f, pkl_val *x) {
    pkl_doc *doc = f->doc;
    pkl_stub *s = x->u.stub;
    if (nargs(x) != 3 || arg(x, 1)->kind != PKL_GLOBAL)
        return PKL_OK;
    pkl_val *cls = arg(x, 0), *base = arg(x, 1), *state = arg(x, 2);
    pkl_val *args = NULL;
    f->tmpn = 0; /* mutations to put first, as (kind, a, b) triples */
    static const struct {
        const char *name;
        pkl_kind kind;
    } single[] = {{"int", PKL_INT}, {"float", PKL_FLOAT}, {"str", PKL_STR}, {"bytes", PKL_BYTES},
                  {"tuple", PKL_TUPLE}};
    bool ok = false;
    if (is_name(base, "builtins", "object")) {
        ok = state->kind == PKL_NONE;
    } else if (is_name(base, "builtins", "list")) {
        ok = state->kind == PKL_LIST;
        for (size_t i = 0; ok && i < state->u.seq.len; i++)
            if (!tmp_add(f, NULL) || !tmp_add(f, state->u.seq.items[i]) || !tmp_add(f, NULL))
                return oom(f);
    } else if (is_name(base, "builtins", "dict")) {
        ok = state->kind == PKL_DICT;
        for (size_t i = 0; ok && i < state->u.map.len; i++)
            if (!tmp_add(f, state) || !tmp_add(f, state->u.map.kv[2 * i]) ||
                !tmp_add(f, state->u.map.kv[2 * i + 1]))
                return oom(f);
    } else if (is_name(base, "builtins", "complex")) {
        /* state is complex(real, imag) pickled by copyreg's pickle_complex;
           protocol 2 passes (real, imag) as NEWOBJ arguments */
        if (state->kind == PKL_CALL && state->u.stub->target &&
            is_name(state->u.stub->target, "builtins", "complex") && state->u.stub->nmuts == 0 &&
            state->u.stub->args) {
            args = state->u.stub->args;
            ok = true;
        }
    } else {
        for (size_t i = 0; i < sizeof single / sizeof single[0]; i++) {
            if (is_name(base, "builtins", single[i].name) && state->kind == single[i].kind) {
                if (!(args = pkl_make_tuple(doc, &state, 1)))
                    return oom(f);
                ok = true;
            }
        }
    }
    if (!ok)
        return PKL_OK;
    if (!args && !(args = pkl_make_tuple(doc, NULL, 0)))
        return oom(f);
    pkl_mut *old = s->muts;
    size_t nold = s->nmuts, oldcap = s->muts_cap;
    s->muts = NULL;
    s->nmuts = s->muts_cap = 0;
    pkl_code rc = PKL_OK;
    for (size_t i = 0; i + 3 <= f->tmpn && rc == PKL_OK; i += 3) {
        bool is_set = f->tmp[i] != NULL; /* dict base: setitem; list base: append */
        rc = pkl_stub_mutate(doc, x, is_set ? PKL_MUT_SETITEM : PKL_MUT_APPEND, f->tmp[i + 1],
                             is_set ? f->tmp[i + 2] : NULL);
    }
    for (size_t i = 0; i < nold && rc == PKL_OK; i++)
        rc = pkl_stub_mutate(doc, x, (pkl_mutkind)old[i].kind, old[i].a, old[i].b);
    if (old)
        pkl_mem_free(doc, old, oldcap * sizeof *old);
    if (rc)
        return oom(f);
    x->kind = PKL_NEW;
    s->target = cls;
    s->args = args;
    s->kwargs = NULL;
    stset(f, x, S_FOLDED);
    return PKL_OK;
}

/* x = functools.partial(F, cls, *args, **kwargs)() with F = getattr(Owner,
   "__new__"): what pickle writes at protocols 2 and 3 for an object whose
   class has __getnewargs_ex__ (protocol 4 writes NEWOBJ_EX). Calling it is
   cls.__new__(cls, *args, **kwargs), so it becomes `new cls` with those
   arguments; the partial's state must be exactly what partial.__reduce__
   gives: (F, (cls, *args), kwargs or None, None or {}). */
static pkl_code fold_partial(fd *f, pkl_val *x) {
    pkl_doc *doc = f->doc;
    pkl_stub *s = x->u.stub;
    const pkl_val *p = s->target;
    const pkl_stub *ps = p->u.stub;
    if (nargs(x) != 0 || nargs(p) != 1 || ps->nmuts != 1 || ps->muts[0].kind != PKL_MUT_BUILD)
        return PKL_OK;
    const pkl_val *fn = arg(p, 0), *st = ps->muts[0].a;
    if (fn->kind != PKL_CALL || !fn->u.stub->target || !is_name(fn->u.stub->target, "builtins", "getattr") ||
        fn->u.stub->nmuts != 0 || nargs(fn) != 2 || arg(fn, 1)->kind != PKL_STR ||
        arg(fn, 1)->u.bytes.len != 7 || memcmp(arg(fn, 1)->u.bytes.data, "__new__", 7) != 0)
        return PKL_OK;
    if (st->kind != PKL_TUPLE || st->u.seq.len != 4 || st->u.seq.items[0] != fn)
        return PKL_OK;
    const pkl_val *pargs = st->u.seq.items[1], *kw = st->u.seq.items[2], *ns = st->u.seq.items[3];
    if (pargs->kind != PKL_TUPLE || pargs->u.seq.len < 1 ||
        (kw->kind != PKL_NONE && kw->kind != PKL_DICT) ||
        !(ns->kind == PKL_NONE || (ns->kind == PKL_DICT && ns->u.map.len == 0)))
        return PKL_OK;
    pkl_val *args = pkl_make_tuple(doc, pargs->u.seq.items + 1, pargs->u.seq.len - 1);
    /* **kwargs is a copy, as Python's calling convention makes */
    pkl_val *kwargs = kw->kind == PKL_DICT && kw->u.map.len ? pkl_dict_copy(doc, kw) : NULL;
    if (!args || (kw->kind == PKL_DICT && kw->u.map.len && !kwargs))
        return oom(f);
    x->kind = PKL_NEW;
    s->target = pargs->u.seq.items[0];
    s->args = args;
    s->kwargs = kwargs;
    stset(f, x, S_FOLDED);
    return PKL_OK;
}

/* An instance (`new`) drops `.build` of None or of an empty dict: CPython's
   load_build does nothing with such a state unless the class defines
   __setstate__, and Python 2.7's protocol-2 pickler writes BUILD {} for
   every instance with an empty __dict__ where Python 3 writes nothing. */
static void drop_noop_builds(pkl_val *x) {
    pkl_stub *s = x->u.stub;
    size_t k = 0;
    for (size_t i = 0; i < s->nmuts; i++)
        if (!is_noop_build(&s->muts[i]))
            s->muts[k++] = s->muts[i];
    s->nmuts = k;
}

static pkl_code try_fold(fd *f, pkl_val *x, size_t base) {
    enum cand c = cand_of(x);
    switch (c) {
    case C_SET:
    case C_FROZENSET:
    case C_LIST:
    case C_TUPLE:
    case C_DICT:
        return fold_container(f, x, c, base);
    case C_BYTEARRAY:
    case C_BYTES:
    case C_ENCODE:
        return fold_bytes(f, x, c);
    case C_RECON:
        return fold_reconstructor(f, x);
    case C_PARTIAL:
        return fold_partial(f, x);
    default:
        return PKL_OK;
    }
}

/* The i-th edge out of v (may be NULL: skip it); false past the last. */
static bool child_at(const pkl_val *v, size_t i, pkl_val **out) {
    switch ((pkl_kind)v->kind) {
    case PKL_LIST:
    case PKL_TUPLE:
        if (i >= v->u.seq.len)
            return false;
        *out = v->u.seq.items[i];
        return true;
    case PKL_DICT:
    case PKL_SET:
    case PKL_FROZENSET:
        if (i >= (size_t)v->u.map.len * (v->kind == PKL_DICT ? 2 : 1))
            return false;
        *out = v->u.map.kv[i];
        return true;
    case PKL_GLOBAL:
    case PKL_CALL:
    case PKL_NEW:
    case PKL_PERSID:
    case PKL_MEMORYVIEW: {
        const pkl_stub *s = v->u.stub;
        if (i < 3) {
            *out = i == 0 ? s->target : i == 1 ? s->args : s->kwargs;
            return true;
        }
        i -= 3;
        if (i >= 2 * s->nmuts)
            return false;
        *out = i % 2 ? s->muts[i / 2].b : s->muts[i / 2].a;
        return true;
    }
    default:
        return false;
    }
}

static pkl_code fold_walk(fd *f) {
    pkl_val *root = f->doc->root;
    size_t n = 0;
    if (!root || root->idx >= f->n0)
        return PKL_OK;
    if (!push(f, &n, root))
        return oom(f);
    f->st[root->idx] |= S_SEEN;
    while (n) {
        frame *fr = &f->stk[n - 1];
        pkl_val *w;
        if (child_at(fr->v, fr->i, &w)) {
            fr->i++;
            if (!w || w->idx >= f->n0 || (f->st[w->idx] & S_SEEN))
                continue;
            f->st[w->idx] |= S_SEEN;
            if (!push(f, &n, w))
                return oom(f);
            continue;
        }
        pkl_val *v = fr->v;
        n--;
        if (v->kind == PKL_CALL) {
            pkl_code rc = try_fold(f, v, n);
            if (rc)
                return rc;
        }
        if (v->kind == PKL_NEW) /* also a call that just became one */
            drop_noop_builds(v);
    }
    return PKL_OK;
}

/* ------------------------------------------------------------------------ */

static void fd_free(fd *f) {
    pkl_doc *doc = f->doc;
    if (f->st)
        pkl_mem_free(doc, f->st, f->n0 ? f->n0 : 1);
    if (f->stk)
        pkl_mem_free(doc, f->stk, f->stkcap * sizeof *f->stk);
    if (f->tmp)
        pkl_mem_free(doc, f->tmp, f->tmpcap * sizeof *f->tmp);
    if (f->bytes)
        pkl_mem_free(doc, f->bytes, f->bcap);
}

pkl_code brine_fold(pkl_doc *doc, pkl_err *err) {
    fd f;
    memset(&f, 0, sizeof f);
    f.doc = doc;
    f.n0 = doc->nnodes;
    pkl_code rc = rename_globals(&f);
    if (rc == PKL_OK) {
        f.st = pkl_mem_alloc(doc, f.n0 ? f.n0 : 1);
        if (!f.st)
            rc = oom(&f);
        else
            memset(f.st, 0, f.n0);
    }
    if (rc == PKL_OK)
        rc = mark_hash_required(&f);
    if (rc == PKL_OK)
        rc = mark_hash_cycles(&f);
    if (rc == PKL_OK)
        rc = fold_walk(&f);
    fd_free(&f);
    if (rc == PKL_OK) {
        const char *why = NULL;
        rc = brine_maps_rebuild(doc, BRINE_MAPS_MERGE, NULL, &why);
        if (rc == PKL_ERR_RESOURCE_LIMIT)
            oom(&f);
        else if (rc)
            f.err = (pkl_err){rc, why, 0};
    }
    if (err)
        *err = rc ? f.err : (pkl_err){PKL_OK, NULL, 0};
    return rc;
}
