/* Opcode table accessors, expanded from spec/opcodes.def and spec/argkinds.def. */
#include "pkl.h"

static const struct {
    const char *pyname;
    pkl_arglayout layout;
    uint8_t width;
} argkinds[PKL_ARG_COUNT] = {
#define PKL_ARGKIND(NAME, pyname, layout, width) {pyname, PKL_LAYOUT_##layout, width},
#include "../spec/argkinds.def"
#undef PKL_ARGKIND
};

/* The argument-kind columns are copied in from argkinds[] on first use:
   C11 initializers cannot read another table. */
static pkl_opinfo table[] = {
#define PKL_OPCODE(NAME, byte, arg, proto, before, after, doc) \
    {#NAME, byte, PKL_ARG_##arg, NULL, PKL_LAYOUT_NONE, 0, proto, before, after, doc},
#include "../spec/opcodes.def"
#undef PKL_OPCODE
};

#define NOPS (sizeof table / sizeof table[0])

/* byte -> table index + 1 (0: not an opcode). */
static uint8_t by_byte[256];
static volatile int ready;

/* Idempotent: two threads racing here write identical values. */
static void fill(void) {
    for (size_t i = 0; i < NOPS; i++) {
        table[i].arg_name = argkinds[table[i].arg].pyname;
        table[i].layout = argkinds[table[i].arg].layout;
        table[i].width = argkinds[table[i].arg].width;
        by_byte[table[i].code] = (uint8_t)(i + 1);
    }
    ready = 1;
}

size_t pkl_opcode_count(void) { return NOPS; }

const pkl_opinfo *pkl_opcode_at(size_t i) {
    if (!ready)
        fill();
    return i < NOPS ? &table[i] : NULL;
}

const pkl_opinfo *pkl_opcode_info(uint8_t byte) {
    if (!ready)
        fill();
    return by_byte[byte] ? &table[by_byte[byte] - 1] : NULL;
}

static const char *const code_names[PKL_CODE_COUNT] = {
    "ok", "truncated", "bad-opcode", "stack-underflow", "mark-missing", "memo-missing",
    "bad-argument", "unsupported-protocol", "type-error", "unknown-extension",
    "no-buffers", "resource-limit", "forbidden", "internal",
};

const char *pkl_code_name(pkl_code code) {
    return (unsigned)code < PKL_CODE_COUNT ? code_names[code] : "internal";
}

pkl_code pkl_code_from_name(const char *name, size_t len) {
    for (int c = 0; c < PKL_CODE_COUNT; c++) {
        const char *n = code_names[c];
        size_t i = 0;
        while (i < len && n[i] && n[i] == name[i])
            i++;
        if (i == len && n[i] == '\0')
            return (pkl_code)c;
    }
    return PKL_CODE_COUNT;
}

static const char *const kind_names[PKL_KIND_COUNT] = {
    "none", "bool", "int", "float", "str", "bytes", "bytearray", "list", "tuple",
    "dict", "set", "frozenset", "global", "call", "new", "persid", "memoryview", "buffer",
};

const char *pkl_kind_name(pkl_kind kind) {
    return (unsigned)kind < PKL_KIND_COUNT ? kind_names[kind] : "?";
}
