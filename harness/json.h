/* A small JSON reader (RFC 8259) and string writer for brine's own files:
 * corpus manifests, `brine impls --json`, the runner's result files.
 *
 * The reader builds a read-only tree in one arena. It is iterative (nesting
 * depth costs heap, not C stack), rejects what RFC 8259 rejects (trailing
 * commas, comments, control characters in strings, lone surrogates in \u
 * escapes are kept as WTF-8 like Python's json module does), and keeps object
 * members in document order.
 */
#ifndef BRINE_JSON_H
#define BRINE_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

typedef enum brine_json_type {
    BRINE_JSON_NULL,
    BRINE_JSON_FALSE,
    BRINE_JSON_TRUE,
    BRINE_JSON_NUMBER,
    BRINE_JSON_STRING,
    BRINE_JSON_ARRAY,
    BRINE_JSON_OBJECT
} brine_json_type;

typedef struct brine_json brine_json;
struct brine_json {
    brine_json_type type;
    double num;           /* NUMBER */
    const char *str;      /* STRING: UTF-8, NUL-terminated (may hold \u0000 as a NUL byte) */
    size_t len;           /* STRING: bytes; ARRAY/OBJECT: items */
    brine_json **items;   /* ARRAY: elements; OBJECT: values */
    const char **keys;    /* OBJECT: member names (NUL-terminated) */
};

typedef struct brine_json_doc brine_json_doc;

/* Parses text[0..len). Returns a new document owned by the caller (release
   with brine_json_free), or NULL with a message naming the byte offset in
   err (errlen bytes, may be 0). */
brine_json_doc *brine_json_parse(const char *text, size_t len, char *err, size_t errlen);

/* Reads and parses a whole file; same ownership and errors as above. */
brine_json_doc *brine_json_parse_file(const char *path, char *err, size_t errlen);

/* The root value; owned by the document. */
const brine_json *brine_json_root(const brine_json_doc *doc);

/* Frees the document and every value in it. NULL is a no-op. */
void brine_json_free(brine_json_doc *doc);

/* Member `key` of an object (first match), or NULL when v is not an object
   or has no such member. */
const brine_json *brine_json_get(const brine_json *v, const char *key);

/* Member `key` as a string, or `dflt` when absent or not a string. */
const char *brine_json_get_str(const brine_json *v, const char *key, const char *dflt);

/* Writes s[0..len) as a JSON string literal (quotes included), ASCII only:
   everything outside printable ASCII is a \u escape (UTF-8 decoded; bytes
   that are not UTF-8 are written as U+FFFD so the output is always JSON). */
void brine_json_write_str(FILE *f, const char *s, size_t len);

#endif
