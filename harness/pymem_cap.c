/* Accounting allocators for an embedded CPython (pymem_cap.h). */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#include "pymem_cap.h"

/* The header keeps the 16-byte alignment CPython's allocators guarantee.
   Its tag says whether the block was counted: pymalloc passes requests over
   512 bytes to the RAW domain, so the same bytes go through two wrappers
   and only the outer one may count them. The tag also catches a block that
   did not come from us (abort, loudly) instead of corrupting the count. */
#define TAG_COUNTED 0x6272696e65434e54ull /* "brineCNT" */
#define TAG_NESTED  0x6272696e654e5354ull /* "brineNST" */
#define TAG_FREED   0x6272696e65465245ull /* "brineFRE" */

typedef struct hdr {
    size_t size;
    uint64_t tag;
} hdr;
_Static_assert(sizeof(hdr) == 16, "the header must keep 16-byte alignment");

typedef struct domain {
    PyMemAllocatorEx prev;
    const char *name;
} domain;

static domain g_raw = {.name = "raw"}, g_mem = {.name = "mem"}, g_obj = {.name = "obj"};
static bool g_installed;

/* Calls into a wrapped allocator made from inside another wrapper. */
static _Thread_local int t_depth;

static atomic_llong g_held;
static atomic_llong g_peak;
static atomic_ullong g_refused;
static atomic_bool g_window;
static long long g_base, g_cap;

static void note_peak(long long held) {
    if (!atomic_load_explicit(&g_window, memory_order_relaxed))
        return;
    long long cur = held - g_base;
    long long old = atomic_load_explicit(&g_peak, memory_order_relaxed);
    while (cur > old &&
           !atomic_compare_exchange_weak_explicit(&g_peak, &old, cur, memory_order_relaxed,
                                                  memory_order_relaxed)) {
    }
}

/* May `more` further bytes be held? Counts the refusal when not. */
static bool admit(size_t more) {
    if (!atomic_load_explicit(&g_window, memory_order_relaxed) || g_cap <= 0)
        return true;
    long long held = atomic_load_explicit(&g_held, memory_order_relaxed);
    if (more > (size_t)LLONG_MAX || held - g_base > g_cap - (long long)more) {
        atomic_fetch_add_explicit(&g_refused, 1, memory_order_relaxed);
        return false;
    }
    return true;
}

static void count(long long delta) {
    long long held = atomic_fetch_add_explicit(&g_held, delta, memory_order_relaxed) + delta;
    if (delta > 0)
        note_peak(held);
}

static hdr *header_of(void *p, const domain *d) {
    hdr *h = (hdr *)p - 1;
    if (h->tag != TAG_COUNTED && h->tag != TAG_NESTED) {
        fprintf(stderr, "brine pymem_cap: %s-domain block %p was not allocated through the "
                        "accounting allocator (tag %016llx%s)\n",
                d->name, p, (unsigned long long)h->tag,
                h->tag == TAG_FREED ? ": freed twice" : "");
        abort();
    }
    return h;
}

static void *start(hdr *h, size_t size, bool counted) {
    h->size = size;
    h->tag = counted ? TAG_COUNTED : TAG_NESTED;
    if (counted)
        count((long long)size);
    return h + 1;
}

static void *cap_malloc(void *ctx, size_t size) {
    domain *d = ctx;
    bool counted = t_depth == 0;
    if (size > SIZE_MAX - sizeof(hdr) || (counted && !admit(size)))
        return NULL;
    t_depth++;
    hdr *h = d->prev.malloc(d->prev.ctx, size + sizeof(hdr));
    t_depth--;
    return h ? start(h, size, counted) : NULL;
}

static void *cap_calloc(void *ctx, size_t nelem, size_t elsize) {
    domain *d = ctx;
    bool counted = t_depth == 0;
    if (elsize && nelem > (SIZE_MAX - sizeof(hdr)) / elsize)
        return NULL;
    size_t size = nelem * elsize;
    if (counted && !admit(size))
        return NULL;
    t_depth++;
    hdr *h = d->prev.calloc(d->prev.ctx, 1, size + sizeof(hdr));
    t_depth--;
    return h ? start(h, size, counted) : NULL;
}

static void *cap_realloc(void *ctx, void *p, size_t size) {
    domain *d = ctx;
    if (!p)
        return cap_malloc(ctx, size);
    hdr *h = header_of(p, d);
    size_t old = h->size;
    bool counted = h->tag == TAG_COUNTED;
    if (size > SIZE_MAX - sizeof(hdr))
        return NULL;
    if (counted && t_depth == 0 && size > old && !admit(size - old))
        return NULL;
    t_depth++;
    hdr *nh = d->prev.realloc(d->prev.ctx, h, size + sizeof(hdr));
    t_depth--;
    if (!nh)
        return NULL;
    nh->size = size;
    if (counted)
        count((long long)size - (long long)old);
    return nh + 1;
}

static void cap_free(void *ctx, void *p) {
    domain *d = ctx;
    if (!p)
        return;
    hdr *h = header_of(p, d);
    if (h->tag == TAG_COUNTED)
        count(-(long long)h->size);
    h->tag = TAG_FREED;
    t_depth++;
    d->prev.free(d->prev.ctx, h);
    t_depth--;
}

static void wrap(PyMemAllocatorDomain which, domain *d) {
    PyMem_GetAllocator(which, &d->prev);
    PyMemAllocatorEx mine = {d, cap_malloc, cap_calloc, cap_realloc, cap_free};
    PyMem_SetAllocator(which, &mine);
}

int brine_pymem_cap_install(void) {
    if (g_installed)
        return 0;
    wrap(PYMEM_DOMAIN_RAW, &g_raw);
    wrap(PYMEM_DOMAIN_MEM, &g_mem);
    wrap(PYMEM_DOMAIN_OBJ, &g_obj);
    g_installed = true;
    return 0;
}

void brine_pymem_cap_begin(size_t cap) {
    g_base = atomic_load_explicit(&g_held, memory_order_relaxed);
    g_cap = cap > (size_t)LLONG_MAX ? LLONG_MAX : (long long)cap;
    atomic_store_explicit(&g_peak, 0, memory_order_relaxed);
    atomic_store_explicit(&g_refused, 0, memory_order_relaxed);
    atomic_store_explicit(&g_window, true, memory_order_relaxed);
}

void brine_pymem_cap_end(void) { atomic_store_explicit(&g_window, false, memory_order_relaxed); }

brine_pymem_stats brine_pymem_cap_stats(void) {
    brine_pymem_stats s;
    s.held = atomic_load_explicit(&g_held, memory_order_relaxed);
    s.peak = atomic_load_explicit(&g_peak, memory_order_relaxed);
    s.refused = atomic_load_explicit(&g_refused, memory_order_relaxed);
    return s;
}
