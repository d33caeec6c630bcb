/* Opcode x protocol coverage (cover.h). */
#include <string.h>

#include "cover.h"

size_t brine_scan_ops(const uint8_t *data, size_t len, brine_op_fn fn, void *ctx, int *proto) {
    size_t pos = 0, n = 0;
    if (proto)
        *proto = -1;
    while (pos < len) {
        const pkl_opinfo *op = pkl_opcode_info(data[pos]);
        if (!op)
            break;
        size_t at = pos++;
        size_t need = 0;
        switch (op->layout) {
        case PKL_LAYOUT_NONE:
            break;
        case PKL_LAYOUT_FIXED:
            need = op->width;
            break;
        case PKL_LAYOUT_LINE:
        case PKL_LAYOUT_LINE2: {
            int lines = op->layout == PKL_LAYOUT_LINE2 ? 2 : 1;
            size_t q = pos;
            for (int i = 0; i < lines; i++) {
                const uint8_t *nl = q < len ? memchr(data + q, '\n', len - q) : NULL;
                if (!nl)
                    return n;
                q = (size_t)(nl - data) + 1;
            }
            need = q - pos;
            break;
        }
        case PKL_LAYOUT_COUNTED: {
            if (len - pos < op->width)
                return n;
            uint64_t count = 0;
            for (unsigned i = 0; i < op->width; i++)
                count |= (uint64_t)data[pos + i] << (8 * i);
            /* STRING4 (BINSTRING) and LONG4 lengths are signed */
            if (op->width == 4 && (op->arg == PKL_ARG_STRING4 || op->arg == PKL_ARG_LONG4) &&
                (count & 0x80000000u))
                return n;
            if (count > len - pos - op->width)
                return n;
            need = op->width + (size_t)count;
            break;
        }
        default:
            return n;
        }
        if (need > len - pos)
            return n;
        if (proto && *proto < 0 && op->code == PKL_OP_PROTO)
            *proto = data[pos];
        pos += need;
        n++;
        if (fn)
            fn(ctx, op, at, pos);
        if (op->code == PKL_OP_STOP)
            break;
    }
    return n;
}

/* The error an opcode raises under the stock configuration, when it can
   never load there (cover.h); NULL for every other opcode. */
static const char *stock_error(uint8_t code) {
    switch (code) {
    case PKL_OP_EXT1:
    case PKL_OP_EXT2:
    case PKL_OP_EXT4:
        return "unknown-extension";
    case PKL_OP_NEXT_BUFFER:
        return "no-buffers";
    default:
        return NULL;
    }
}

typedef struct add_ctx {
    brine_coverage *c;
    int p;
    const char *error;
    bool stock_done;
    bool seen[256];
} add_ctx;

static void add_op(void *ctx, const pkl_opinfo *op, size_t pos, size_t end) {
    (void)pos;
    (void)end;
    add_ctx *a = ctx;
    const char *stock = stock_error(op->code);
    if (a->error && stock && !a->stock_done) {
        /* only the first such opcode can have raised the case's error */
        a->stock_done = true;
        if (strcmp(stock, a->error) == 0) {
            a->c->stock[op->code][a->p]++;
            a->seen[op->code] = true;
            return;
        }
    }
    if (a->seen[op->code])
        return; /* one case counts once per opcode */
    a->seen[op->code] = true;
    if (!a->error)
        a->c->valid[op->code][a->p]++;
    else
        a->c->fault[op->code][a->p]++;
}

void brine_cover_add(brine_coverage *c, const uint8_t *data, size_t len, int protocol,
                     const char *error) {
    int declared;
    brine_scan_ops(data, len, NULL, NULL, &declared);
    int p = protocol >= 0 ? protocol : declared >= 0 ? declared : 0;
    c->cases++;
    if (!error)
        c->loaded++;
    if (p >= BRINE_COVER_PROTOCOLS)
        return;
    add_ctx a;
    memset(&a, 0, sizeof a);
    a.c = c;
    a.p = p;
    a.error = error;
    brine_scan_ops(data, len, add_op, &a, NULL);
}

size_t brine_cover_holes(const brine_coverage *c, FILE *out) {
    size_t holes = 0;
    for (size_t i = 0; i < pkl_opcode_count(); i++) {
        const pkl_opinfo *op = pkl_opcode_at(i);
        for (int p = op->proto; p < BRINE_COVER_PROTOCOLS; p++) {
            if (c->valid[op->code][p] || c->stock[op->code][p])
                continue;
            holes++;
            if (out)
                fprintf(out, "hole: %s (0x%02x) at protocol %d: no loading case (%u faulty)\n",
                        op->name, op->code, p, c->fault[op->code][p]);
        }
    }
    return holes;
}

void brine_cover_print(const brine_coverage *c, FILE *out, bool markdown) {
    size_t cells = 0, hit = 0;
    if (markdown) {
        fprintf(out, "| opcode | byte |");
        for (int p = 0; p < BRINE_COVER_PROTOCOLS; p++)
            fprintf(out, " p%d |", p);
        fprintf(out, "\n|---|---|");
        for (int p = 0; p < BRINE_COVER_PROTOCOLS; p++)
            fprintf(out, "---:|");
        fputc('\n', out);
    } else {
        fprintf(out, "%-18s %-4s", "opcode", "byte");
        for (int p = 0; p < BRINE_COVER_PROTOCOLS; p++)
            fprintf(out, "     p%d", p);
        fputc('\n', out);
    }
    for (size_t i = 0; i < pkl_opcode_count(); i++) {
        const pkl_opinfo *op = pkl_opcode_at(i);
        if (markdown)
            fprintf(out, "| %s | 0x%02x |", op->name, op->code);
        else
            fprintf(out, "%-18s 0x%02x", op->name, op->code);
        for (int p = 0; p < BRINE_COVER_PROTOCOLS; p++) {
            char cell[16];
            if (p < op->proto) {
                snprintf(cell, sizeof cell, "-");
            } else {
                cells++;
                uint32_t v = c->valid[op->code][p], st = c->stock[op->code][p];
                hit += v || st;
                if (v)
                    snprintf(cell, sizeof cell, "%u", v);
                else if (st)
                    snprintf(cell, sizeof cell, "%us", st);
                else
                    snprintf(cell, sizeof cell, "0!");
            }
            if (markdown)
                fprintf(out, " %s |", cell);
            else
                fprintf(out, " %6s", cell);
        }
        fputc('\n', out);
    }
    fprintf(out, "%s%zu of %zu opcode x protocol cells exercised (%zu cases, %zu loaded by "
                 "the oracle; \"Ns\": N cases where the opcode raised its stock-configuration "
                 "error, see harness/cover.h)\n",
            markdown ? "\n" : "", hit, cells, c->cases, c->loaded);
}
