/* hash.c: a fast 64-bit content hash (8 bytes per step, multiply and xor-shift mixing)
 * used to notice that a re-read file did not change. Not cryptographic: a collision
 * would hide one change of a file whose size also stayed the same. */
#include "internal.h"

#include <string.h>

static inline uint64_t mix(uint64_t h, uint64_t v) {
  h ^= v * 0x9e3779b97f4a7c15ull;
  h = (h ^ (h >> 29)) * 0xbf58476d1ce4e5b9ull;
  return h ^ (h >> 32);
}

uint64_t rc__hash64(const void *data, size_t n) {
  const unsigned char *p = data;
  uint64_t h = 0x6a09e667f3bcc909ull ^ (uint64_t)n;
  while (n >= 8) {
    uint64_t v;
    memcpy(&v, p, 8);
    h = mix(h, v);
    p += 8;
    n -= 8;
  }
  uint64_t tail = 0;
  memcpy(&tail, p, n);
  return mix(h, tail ^ 0xff);
}
