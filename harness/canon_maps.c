/* Rebuild of every dict/set/frozenset table of a document (canon_maps.h). */
#include "canon_maps.h"

#include <string.h>

/* Colours of the tuple/frozenset walk. */
enum { WHITE = 0, GREY = 1, BLACK = 2 };

typedef struct walk {
    pkl_val *node;
    size_t i;
} walk;

typedef struct rb {
    pkl_doc *doc;
    brine_maps_mode mode;
    pkl_val **tmp; /* copy of the entries being re-inserted */
    size_t tmp_cap;
    const pkl_val *bad;
    const char *why;
} rb;

static bool hash_edge_kind(const pkl_val *v) {
    return v->kind == PKL_TUPLE || v->kind == PKL_FROZENSET;
}

static pkl_code fail(rb *r, pkl_code code, const pkl_val *bad, const char *why) {
    r->bad = bad;
    r->why = why;
    return code;
}

/* Re-inserts m's entries into an emptied table. */
static pkl_code rebuild_one(rb *r, pkl_val *m) {
    size_t stride = m->kind == PKL_DICT ? 2 : 1;
    size_t n = m->u.map.len, np = n * stride;
    if (n == 0)
        return PKL_OK;
    if (np > r->tmp_cap) {
        size_t cap = r->tmp_cap ? r->tmp_cap : 64;
        while (cap < np)
            cap *= 2;
        pkl_val **t = pkl_mem_realloc(r->doc, r->tmp, r->tmp_cap * sizeof *t, cap * sizeof *t);
        if (!t)
            return fail(r, PKL_ERR_RESOURCE_LIMIT, m, "out of memory rebuilding a map");
        r->tmp = t;
        r->tmp_cap = cap;
    }
    memcpy(r->tmp, m->u.map.kv, np * sizeof *r->tmp);
    if (m->u.map.index) {
        pkl_mem_free(r->doc, m->u.map.index, m->u.map.index_cap * sizeof(uint32_t));
        m->u.map.index = NULL;
        m->u.map.index_cap = 0;
    }
    m->u.map.len = 0;
    for (size_t e = 0; e < n; e++) {
        size_t before = m->u.map.len;
        pkl_code rc = stride == 2 ? pkl_dict_set(r->doc, m, r->tmp[2 * e], r->tmp[2 * e + 1])
                                  : pkl_set_add(r->doc, m, r->tmp[e]);
        if (rc == PKL_ERR_TYPE_ERROR)
            return fail(r, rc, m, stride == 2 ? "unhashable dict key" : "unhashable set element");
        if (rc)
            return fail(r, rc, m, "out of memory rebuilding a map");
        if (m->u.map.len == before && r->mode == BRINE_MAPS_STRICT)
            return fail(r, PKL_ERR_BAD_ARGUMENT, m,
                        stride == 2 ? "two equal keys in one dict" : "two equal elements in one set");
    }
    return PKL_OK;
}

/* Children-first walk over tuple/frozenset edges from every such node,
   rebuilding each frozenset when its walk finishes: whatever hashes a
   frozenset later sees its final table. A grey node met again closes a
   cycle of hashable containers only, which nothing can hash. */
static pkl_code rebuild_frozensets(rb *r, uint8_t *colour) {
    pkl_doc *doc = r->doc;
    walk *st = NULL;
    size_t n = 0, cap = 0;
    pkl_code rc = PKL_OK;
    for (size_t k = 0; k < doc->nnodes && rc == PKL_OK; k++) {
        pkl_val *v = pkl_doc_node(doc, k);
        if (!hash_edge_kind(v) || colour[k] != WHITE)
            continue;
        colour[k] = GREY;
        n = 0;
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 64;
            walk *ns = pkl_mem_realloc(doc, st, cap * sizeof *st, ncap * sizeof *ns);
            if (!ns) {
                rc = fail(r, PKL_ERR_RESOURCE_LIMIT, v, "out of memory walking tuples");
                break;
            }
            st = ns;
            cap = ncap;
        }
        st[n++] = (walk){v, 0};
        while (n && rc == PKL_OK) {
            walk *f = &st[n - 1];
            pkl_val *node = f->node;
            size_t len = node->kind == PKL_TUPLE ? node->u.seq.len : node->u.map.len;
            pkl_val **ch = node->kind == PKL_TUPLE ? node->u.seq.items : node->u.map.kv;
            pkl_val *next = NULL;
            while (f->i < len) {
                pkl_val *c = ch[f->i++];
                if (!hash_edge_kind(c))
                    continue;
                if (colour[c->idx] == GREY) {
                    rc = fail(r, PKL_ERR_BAD_ARGUMENT, c,
                              "a cycle made only of tuples and frozensets (no load builds one)");
                    break;
                }
                if (colour[c->idx] == WHITE) {
                    next = c;
                    break;
                }
            }
            if (rc)
                break;
            if (next) {
                colour[next->idx] = GREY;
                if (n == cap) {
                    size_t ncap = cap * 2;
                    walk *ns = pkl_mem_realloc(doc, st, cap * sizeof *st, ncap * sizeof *ns);
                    if (!ns) {
                        rc = fail(r, PKL_ERR_RESOURCE_LIMIT, next, "out of memory walking tuples");
                        break;
                    }
                    st = ns;
                    cap = ncap;
                }
                st[n++] = (walk){next, 0};
                continue;
            }
            colour[node->idx] = BLACK;
            n--;
            if (node->kind == PKL_FROZENSET)
                rc = rebuild_one(r, node);
        }
    }
    if (st)
        pkl_mem_free(doc, st, cap * sizeof *st);
    return rc;
}

pkl_code brine_maps_rebuild(pkl_doc *doc, brine_maps_mode mode, const pkl_val **bad,
                            const char **why) {
    rb r = {doc, mode, NULL, 0, NULL, NULL};
    size_t nn = doc->nnodes;
    for (size_t k = 0; k < nn; k++)
        pkl_doc_node(doc, k)->flags &= (uint8_t)~PKL_F_HASHED;
    uint8_t *colour = pkl_mem_alloc(doc, nn ? nn : 1);
    pkl_code rc;
    if (!colour) {
        rc = fail(&r, PKL_ERR_RESOURCE_LIMIT, NULL, "out of memory rebuilding maps");
    } else {
        memset(colour, 0, nn);
        rc = rebuild_frozensets(&r, colour);
        pkl_mem_free(doc, colour, nn ? nn : 1);
    }
    for (size_t k = 0; k < nn && rc == PKL_OK; k++) {
        pkl_val *v = pkl_doc_node(doc, k);
        if (v->kind == PKL_DICT || v->kind == PKL_SET)
            rc = rebuild_one(&r, v);
    }
    if (r.tmp)
        pkl_mem_free(doc, r.tmp, r.tmp_cap * sizeof *r.tmp);
    if (bad)
        *bad = r.bad;
    if (why)
        *why = rc ? r.why : NULL;
    return rc;
}
