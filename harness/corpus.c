/* Cases of a run (corpus.h). */
#define _POSIX_C_SOURCE 200809L

#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "corpus.h"
#include "fileio.h"
#include "json.h"

static void set_err(char *err, size_t errlen, const char *fmt, ...) {
    if (!err || !errlen)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static char *dup_n(const char *s, size_t n) {
    char *d = malloc(n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = '\0';
    }
    return d;
}

static char *dup_s(const char *s) { return dup_n(s, strlen(s)); }

static char *join(const char *a, const char *b) {
    size_t na = strlen(a), nb = strlen(b);
    char *d = malloc(na + nb + 2);
    if (d) {
        memcpy(d, a, na);
        d[na] = '/';
        memcpy(d + na + 1, b, nb + 1);
    }
    return d;
}

/*------------------------------------------------------------------------------
 * Growable case list
 *----------------------------------------------------------------------------*/

static brine_case_rec *new_case(brine_corpus *c, size_t *cap) {
    if (c->n == *cap) {
        size_t ncap = *cap ? *cap * 2 : 256;
        brine_case_rec *nv = realloc(c->cases, ncap * sizeof *nv);
        if (!nv)
            return NULL;
        c->cases = nv;
        *cap = ncap;
    }
    brine_case_rec *r = &c->cases[c->n++];
    memset(r, 0, sizeof *r);
    r->protocol = -1;
    return r;
}

static void free_answers(brine_case_rec *r) {
    for (size_t i = 0; i < r->nanswers; i++) {
        free((char *)r->answers[i].text);
        free((char *)r->answers[i].trace);
    }
    free(r->answers);
    r->answers = NULL;
    r->nanswers = 0;
}

void brine_corpus_free(brine_corpus *c) {
    if (!c)
        return;
    for (size_t i = 0; i < c->n; i++) {
        brine_case_rec *r = &c->cases[i];
        free(r->group);
        free(r->id);
        free(r->path);
        free(r->description);
        free(r->result);
        free(r->data);
        free_answers(r);
    }
    free(c->cases);
    free(c->primary);
    memset(c, 0, sizeof *c);
}

static char *dup_or_null(const char *s, size_t n) { return s ? dup_n(s, n) : NULL; }

int brine_case_set_answers(brine_case_rec *c, const brine_text *answers, size_t n) {
    free_answers(c);
    c->answers = calloc(n ? n : 1, sizeof *c->answers);
    if (!c->answers)
        return -1;
    for (size_t i = 0; i < n; i++) {
        brine_text *t = &c->answers[i];
        t->text = dup_n(answers[i].text, answers[i].len);
        t->len = answers[i].len;
        t->trace = dup_or_null(answers[i].trace, answers[i].trace_len);
        t->trace_len = answers[i].trace ? answers[i].trace_len : 0;
        c->nanswers++;
        if (!t->text || (answers[i].trace && !t->trace))
            return -1;
    }
    return 0;
}

/*------------------------------------------------------------------------------
 * Manifests
 *----------------------------------------------------------------------------*/

/* header + "\n" + body: the manifests store documents without their first line. */
static int add_answer(brine_case_rec *r, const char *header, const brine_json *ans) {
    const char *body = brine_json_get_str(ans, "text", NULL);
    const brine_json *tr = brine_json_get(ans, "trace");
    if (!body)
        return -1;
    const brine_json *bj = brine_json_get(ans, "text");
    size_t hl = strlen(header);
    char *text = malloc(hl + 1 + bj->len + 1);
    if (!text)
        return -1;
    memcpy(text, header, hl);
    text[hl] = '\n';
    memcpy(text + hl + 1, body, bj->len);
    text[hl + 1 + bj->len] = '\0';
    brine_text t = {text, hl + 1 + bj->len, NULL, 0};
    if (tr && tr->type == BRINE_JSON_STRING) {
        t.trace = tr->str;
        t.trace_len = tr->len;
    }
    brine_text *nv = realloc(r->answers, (r->nanswers + 1) * sizeof *nv);
    if (!nv) {
        free(text);
        return -1;
    }
    r->answers = nv;
    t.trace = t.trace ? dup_n(t.trace, t.trace_len) : NULL;
    r->answers[r->nanswers++] = t;
    return 0;
}

static bool same_answer(const brine_text *a, const brine_text *b) {
    return a->len == b->len && memcmp(a->text, b->text, a->len) == 0 &&
           (a->trace == NULL) == (b->trace == NULL) &&
           (!a->trace || (a->trace_len == b->trace_len &&
                          memcmp(a->trace, b->trace, a->trace_len) == 0));
}

static bool has_flag(const brine_json *c, const char *flag) {
    const brine_json *f = brine_json_get(c, "flags");
    if (!f || f->type != BRINE_JSON_ARRAY)
        return false;
    for (size_t i = 0; i < f->len; i++)
        if (f->items[i]->type == BRINE_JSON_STRING && strcmp(f->items[i]->str, flag) == 0)
            return true;
    return false;
}

static int load_manifest(const char *dir, const char *path, brine_corpus *out, size_t *cap,
                         char *err, size_t errlen) {
    brine_json_doc *doc = brine_json_parse_file(path, err, errlen);
    if (!doc)
        return -1;
    const brine_json *root = brine_json_root(doc);
    const brine_json *fmt = brine_json_get(root, "format");
    const brine_json *cases = brine_json_get(root, "cases");
    const char *group = brine_json_get_str(root, "group", NULL);
    const char *header = brine_json_get_str(root, "canonical", NULL);
    int rc = -1;
    if (!fmt || fmt->type != BRINE_JSON_NUMBER || fmt->num != 1) {
        set_err(err, errlen, "%s: not a format 1 manifest", path);
        goto done;
    }
    if (!cases || cases->type != BRINE_JSON_ARRAY || !group || !header) {
        set_err(err, errlen, "%s: missing group, canonical or cases", path);
        goto done;
    }
    if (!out->primary && !(out->primary = dup_s(brine_json_get_str(root, "primary", ""))))
        goto oom;
    for (size_t i = 0; i < cases->len; i++) {
        const brine_json *c = cases->items[i];
        const char *id = brine_json_get_str(c, "id", NULL);
        const char *file = brine_json_get_str(c, "file", NULL);
        const char *result = brine_json_get_str(c, "result", NULL);
        const brine_json *expected = brine_json_get(c, "expected");
        if (!id || !file || !result || !expected) {
            set_err(err, errlen, "%s: case %zu lacks id, file, result or expected", path, i);
            goto done;
        }
        brine_case_rec *r = new_case(out, cap);
        if (!r)
            goto oom;
        const brine_json *proto = brine_json_get(c, "protocol");
        r->protocol = proto && proto->type == BRINE_JSON_NUMBER ? (int)proto->num : -1;
        char *cases_dir = join(dir, "cases");
        r->path = cases_dir ? join(cases_dir, file) : NULL;
        free(cases_dir);
        r->group = dup_s(group);
        r->id = dup_s(id);
        r->description = dup_s(brine_json_get_str(c, "description", ""));
        r->result = dup_s(result);
        if (!r->path || !r->group || !r->id || !r->description || !r->result)
            goto oom;
        if (brine_read_file(r->path, &r->data, &r->len) != 0) {
            set_err(err, errlen, "%s: %s", r->path, strerror(errno));
            goto done;
        }
        if (add_answer(r, header, expected) != 0)
            goto oom;
        r->acceptable = strcmp(result, "acceptable") == 0;
        r->limit_ok = has_flag(c, "oracle-memory-limit");
        const brine_json *answers = brine_json_get(c, "answers");
        if (answers && answers->type == BRINE_JSON_ARRAY && r->acceptable) {
            for (size_t k = 0; k < answers->len; k++) {
                const brine_json *a = answers->items[k];
                /* a memory-limit artefact is no answer (docs/corpus-format.md section 4) */
                if (brine_json_get(a, "cause"))
                    continue;
                size_t before = r->nanswers;
                if (add_answer(r, header, a) != 0)
                    goto oom;
                for (size_t j = 0; j < before; j++) {
                    if (same_answer(&r->answers[j], &r->answers[before])) {
                        free((char *)r->answers[before].text);
                        free((char *)r->answers[before].trace);
                        r->nanswers--;
                        break;
                    }
                }
            }
        }
    }
    rc = 0;
    goto done;
oom:
    set_err(err, errlen, "%s: out of memory", path);
done:
    brine_json_free(doc);
    return rc;
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The sorted names in a directory, without "." and ".."; NULL on error. */
static char **list_dir(const char *dir, size_t *n) {
    DIR *d = opendir(dir);
    if (!d)
        return NULL;
    char **v = NULL;
    size_t cap = 0;
    *n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        if (*n == cap) {
            size_t ncap = cap ? cap * 2 : 64;
            char **nv = realloc(v, ncap * sizeof *nv);
            if (!nv)
                goto fail;
            v = nv;
            cap = ncap;
        }
        if (!(v[*n] = dup_s(e->d_name)))
            goto fail;
        (*n)++;
    }
    closedir(d);
    if (*n)
        qsort(v, *n, sizeof *v, cmp_str);
    if (!v)
        v = calloc(1, sizeof *v);
    return v;
fail:
    closedir(d);
    for (size_t i = 0; i < *n; i++)
        free(v[i]);
    free(v);
    return NULL;
}

static void free_list(char **v, size_t n) {
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

/*------------------------------------------------------------------------------
 * Plain folders (iterative walk: a deep tree costs heap, not stack)
 *----------------------------------------------------------------------------*/

/* Hidden files and Markdown notes beside the pickles are not cases. */
static bool skipped_name(const char *name) {
    size_t n = strlen(name);
    return name[0] == '.' || (n > 3 && strcmp(name + n - 3, ".md") == 0);
}

static int walk_folder(const char *root, brine_corpus *out, size_t *cap, char *err,
                       size_t errlen) {
    /* a stack of relative directory paths still to visit; "" is the root */
    char **todo = malloc(sizeof *todo);
    size_t ntodo = 0, todo_cap = 1;
    if (!todo || !(todo[ntodo++] = dup_s("")))
        goto oom;
    while (ntodo) {
        char *rel = todo[--ntodo];
        char *abs = *rel ? join(root, rel) : dup_s(root);
        size_t n = 0;
        char **names = abs ? list_dir(abs, &n) : NULL;
        if (!names) {
            set_err(err, errlen, "%s: %s", abs ? abs : root, strerror(errno));
            free(abs);
            free(rel);
            goto fail;
        }
        /* visit subdirectories in order: push them reversed */
        size_t first_dir = ntodo;
        for (size_t i = 0; i < n; i++) {
            char *child_rel = *rel ? join(rel, names[i]) : dup_s(names[i]);
            char *child_abs = child_rel ? join(root, child_rel) : NULL;
            struct stat st;
            if (!child_abs || stat(child_abs, &st) != 0) {
                free(child_rel);
                free(child_abs);
                continue; /* a dangling link: not a case */
            }
            if (S_ISDIR(st.st_mode)) {
                if (ntodo == todo_cap) {
                    char **nt = realloc(todo, 2 * todo_cap * sizeof *nt);
                    if (!nt) {
                        free(child_rel);
                        free(child_abs);
                        free_list(names, n);
                        free(abs);
                        free(rel);
                        goto oom;
                    }
                    todo = nt;
                    todo_cap *= 2;
                }
                todo[ntodo++] = child_rel;
                free(child_abs);
            } else if (S_ISREG(st.st_mode) && !skipped_name(names[i])) {
                brine_case_rec *r = new_case(out, cap);
                if (!r || !(r->group = dup_s("")) || !(r->description = dup_s("")) ||
                    !(r->result = dup_s(""))) {
                    free(child_rel);
                    free(child_abs);
                    free_list(names, n);
                    free(abs);
                    free(rel);
                    goto oom;
                }
                r->id = child_rel;
                r->path = child_abs;
                if (brine_read_file(r->path, &r->data, &r->len) != 0) {
                    set_err(err, errlen, "%s: %s", r->path, strerror(errno));
                    free_list(names, n);
                    free(abs);
                    free(rel);
                    goto fail;
                }
            } else {
                free(child_rel);
                free(child_abs);
            }
        }
        for (size_t a = first_dir, b = ntodo; a + 1 < b; a++, b--) {
            char *t = todo[a];
            todo[a] = todo[b - 1];
            todo[b - 1] = t;
        }
        free_list(names, n);
        free(abs);
        free(rel);
    }
    free(todo);
    return 0;
oom:
    set_err(err, errlen, "%s: out of memory", root);
fail:
    free_list(todo, ntodo);
    return -1;
}

int brine_corpus_open(const char *dir, const char *const *groups, size_t ngroups,
                      brine_corpus *out, char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    size_t cap = 0;
    char *mdir = join(dir, "manifest");
    if (!mdir) {
        set_err(err, errlen, "out of memory");
        return -1;
    }
    size_t n = 0;
    char **names = list_dir(mdir, &n);
    size_t json = 0;
    for (size_t i = 0; names && i < n; i++) {
        size_t l = strlen(names[i]);
        json += l > 5 && strcmp(names[i] + l - 5, ".json") == 0;
    }
    int rc = 0;
    if (!json) {
        if (ngroups) {
            set_err(err, errlen, "%s is no corpus (no manifest/*.json): --group needs one", dir);
            rc = -1;
        } else {
            rc = walk_folder(dir, out, &cap, err, errlen);
            if (rc == 0 && !(out->primary = dup_s("")))
                rc = -1;
        }
    } else {
        out->manifest = true;
        for (size_t g = 0; g < ngroups; g++) {
            bool found = false;
            for (size_t i = 0; i < n && !found; i++) {
                size_t l = strlen(names[i]);
                found = l == strlen(groups[g]) + 5 && strncmp(names[i], groups[g], l - 5) == 0 &&
                        strcmp(names[i] + l - 5, ".json") == 0;
            }
            if (!found) {
                set_err(err, errlen, "%s: no group %s", mdir, groups[g]);
                rc = -1;
            }
        }
        for (size_t i = 0; rc == 0 && i < n; i++) {
            size_t l = strlen(names[i]);
            if (l <= 5 || strcmp(names[i] + l - 5, ".json") != 0)
                continue;
            bool wanted = ngroups == 0;
            for (size_t g = 0; g < ngroups && !wanted; g++)
                wanted = l == strlen(groups[g]) + 5 && strncmp(names[i], groups[g], l - 5) == 0;
            if (!wanted)
                continue;
            char *path = join(mdir, names[i]);
            rc = path ? load_manifest(dir, path, out, &cap, err, errlen) : -1;
            free(path);
        }
    }
    if (names)
        free_list(names, n);
    free(mdir);
    if (rc != 0)
        brine_corpus_free(out);
    return rc;
}
