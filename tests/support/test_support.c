#include "test_support.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Each block carries its size in a header so `live` stays exact even when
   the library passes a different old_size than we expect. */
typedef struct hdr {
    size_t size;
    size_t pad; /* keep 16-byte alignment */
} hdr;

static bool should_fail(failing_alc *f) {
    f->calls++;
    return f->fail_at && f->calls >= f->fail_at;
}

static void *f_malloc(void *ctx, size_t size) {
    failing_alc *f = ctx;
    if (should_fail(f))
        return NULL;
    hdr *h = malloc(sizeof(hdr) + size);
    if (!h)
        return NULL;
    h->size = size;
    f->live += (long long)size;
    f->live_blocks++;
    return h + 1;
}

static void *f_realloc(void *ctx, void *ptr, size_t old_size, size_t size) {
    failing_alc *f = ctx;
    (void)old_size;
    if (should_fail(f))
        return NULL;
    hdr *h = ptr ? (hdr *)ptr - 1 : NULL;
    size_t before = h ? h->size : 0;
    hdr *n = realloc(h, sizeof(hdr) + size);
    if (!n)
        return NULL;
    if (!h)
        f->live_blocks++;
    n->size = size;
    f->live += (long long)size - (long long)before;
    return n + 1;
}

static void f_free(void *ctx, void *ptr) {
    failing_alc *f = ctx;
    if (!ptr)
        return;
    hdr *h = (hdr *)ptr - 1;
    f->live -= (long long)h->size;
    f->live_blocks--;
    free(h);
}

void failing_alc_init(failing_alc *f, size_t fail_at) {
    memset(f, 0, sizeof *f);
    f->alc.malloc = f_malloc;
    f->alc.realloc = f_realloc;
    f->alc.free = f_free;
    f->alc.ctx = f;
    f->fail_at = fail_at;
}

char *canon_of(const void *data, size_t len, const pkl_load_opts *opts, pkl_code *code) {
    pkl_load_opts o;
    if (opts)
        o = *opts;
    else
        memset(&o, 0, sizeof o);
    o.alc = NULL; /* text is freed with free() by callers */
    pkl_err err = {PKL_OK, NULL, 0};
    size_t n = 0;
    char *text = pkl_canon_load(data, len, &o, &n, &err);
    if (code)
        *code = err.code;
    return text;
}

static const char *body(const char *text) {
    const char *nl = strchr(text, '\n');
    return nl ? nl + 1 : text;
}

void assert_canon_impl(const char *data, size_t len, const char *expected, const char *file,
                       int line) {
    pkl_code code;
    char *text = canon_of(data, len, NULL, &code);
    if (!text)
        fail_msg("%s:%d: no canonical text at all", file, line);
    if (code != PKL_OK || strcmp(body(text), expected) != 0) {
        print_error("%s:%d: canonical text differs\n--- expected\n%s--- got\n%s", file, line,
                    expected, text);
        free(text);
        fail();
    }
    free(text);
}

void assert_load_error_impl(const char *data, size_t len, pkl_code code, const char *file,
                            int line) {
    pkl_err err = {PKL_OK, NULL, 0};
    pkl_doc *doc = pkl_load(data, len, NULL, &err);
    if (doc) {
        pkl_doc_free(doc);
        fail_msg("%s:%d: loaded, expected error %s", file, line, pkl_code_name(code));
    }
    if (err.code != code)
        fail_msg("%s:%d: error %s (%s at %zu), expected %s", file, line,
                 pkl_code_name(err.code), err.msg ? err.msg : "?", err.pos, pkl_code_name(code));
    if (!err.msg || !*err.msg)
        fail_msg("%s:%d: error %s without a message", file, line, pkl_code_name(code));
}
