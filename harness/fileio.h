/* Whole-file reads and writes for the harness and the brine command. */
#ifndef BRINE_FILEIO_H
#define BRINE_FILEIO_H

#include <stddef.h>
#include <stdint.h>

/* Reads the whole file. On success *data holds its bytes plus one NUL byte
   after them (not counted in *len), allocated with malloc and owned by the
   caller (free()); returns 0. Returns -1 with errno set on failure (*data
   untouched). */
int brine_read_file(const char *path, uint8_t **data, size_t *len);

/* Writes data[0..len) to path, replacing it. 0, or -1 with errno set. */
int brine_write_file(const char *path, const void *data, size_t len);

#endif
