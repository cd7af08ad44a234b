/* SPDX-License-Identifier: MIT (see LICENSE) */
/* hash.c: content digests, through xxHash's XXH3 (Debian libxxhash-dev, compiled in from
 * its header). The 128-bit digest tells whether re-read content changed: two different
 * contents collide with odds of about 2^-128, so an unchanged-looking save is unchanged.
 * The 64-bit hash is for tables and for texts whose change is double-checked. Neither is
 * cryptographic: they guard against accidents, not against an adversary who writes the
 * watched file (who could write any content anyway). */
#include "internal.h"

#define XXH_INLINE_ALL
#include <xxhash.h>

#include <string.h>

uint64_t rc__hash64(const void *data, size_t n) { return XXH3_64bits(data, n); }

void rc__digest128(const void *data, size_t n, uint8_t out[16]) {
  XXH128_canonical_t c;
  XXH128_canonicalFromHash(&c, XXH3_128bits(data, n));
  memcpy(out, c.digest, 16);
}
