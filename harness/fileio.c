/* Whole-file reads and writes (fileio.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "fileio.h"

int brine_read_file(const char *path, uint8_t **data, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    size_t cap = 4096, n = 0;
    uint8_t *buf = malloc(cap);
    while (buf) {
        n += fread(buf + n, 1, cap - n, f);
        if (n < cap)
            break;
        uint8_t *nb = cap <= SIZE_MAX / 2 ? realloc(buf, cap * 2) : NULL;
        if (!nb) {
            free(buf);
            buf = NULL;
            break;
        }
        buf = nb;
        cap *= 2;
    }
    int bad = ferror(f);
    fclose(f);
    if (!buf || bad) {
        int e = buf ? EIO : ENOMEM;
        free(buf);
        errno = e;
        return -1;
    }
    buf[n] = 0; /* n < cap: room for the NUL */
    *data = buf;
    *len = n;
    return 0;
}

int brine_write_file(const char *path, const void *data, size_t len) {
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    int ok = fwrite(data, 1, len, f) == len;
    ok = (fclose(f) == 0) && ok;
    if (!ok && !errno)
        errno = EIO;
    return ok ? 0 : -1;
}
