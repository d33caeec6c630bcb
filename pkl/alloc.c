/* The default allocator and per-document allocation accounting.
 *
 * Every byte a load holds goes through pkl_mem_*, which charges it against
 * the document's max_alloc bound before asking the caller's allocator. */
#include <stdlib.h>

#include "value.h"

static void *libc_malloc(void *ctx, size_t size) {
    (void)ctx;
    return malloc(size);
}
static void *libc_realloc(void *ctx, void *ptr, size_t old_size, size_t size) {
    (void)ctx;
    (void)old_size;
    return realloc(ptr, size);
}
static void libc_free(void *ctx, void *ptr) {
    (void)ctx;
    free(ptr);
}

static const pkl_alc libc_alc = {libc_malloc, libc_realloc, libc_free, NULL};

const pkl_alc *pkl_alc_libc(void) { return &libc_alc; }

void *pkl_mem_alloc(pkl_doc *doc, size_t size) {
    if (size == 0)
        size = 1;
    if (size > doc->max_alloc - doc->held)
        return NULL;
    void *p = doc->alc.malloc(doc->alc.ctx, size);
    if (p)
        doc->held += size;
    return p;
}

void *pkl_mem_realloc(pkl_doc *doc, void *ptr, size_t old_size, size_t size) {
    if (!ptr)
        return pkl_mem_alloc(doc, size);
    if (size == 0)
        size = 1;
    if (size > old_size && size - old_size > doc->max_alloc - doc->held)
        return NULL;
    void *p = doc->alc.realloc(doc->alc.ctx, ptr, old_size, size);
    if (p)
        doc->held = doc->held - old_size + size;
    return p;
}

void pkl_mem_free(pkl_doc *doc, void *ptr, size_t size) {
    if (!ptr)
        return;
    if (size == 0)
        size = 1;
    doc->held -= size;
    doc->alc.free(doc->alc.ctx, ptr);
}
