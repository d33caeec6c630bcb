/* SHA-256 (FIPS 180-4), used by the canonical emitter to order set elements
 * (docs/canonical-form.md section 5). Small and dependency-free on purpose:
 * every brine emitter must agree on the digest, and Python has hashlib. */
#ifndef PKL_SHA256_H
#define PKL_SHA256_H

#include <stddef.h>
#include <stdint.h>

typedef struct pkl_sha256 {
    uint32_t h[8];
    uint64_t total;     /* bytes hashed so far */
    uint8_t block[64];
    size_t used;        /* bytes waiting in block */
} pkl_sha256;

void pkl_sha256_init(pkl_sha256 *s);
void pkl_sha256_update(pkl_sha256 *s, const void *data, size_t len);
void pkl_sha256_final(pkl_sha256 *s, uint8_t out[32]);

#endif
