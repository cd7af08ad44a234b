/* SPDX-License-Identifier: MIT (see LICENSE) */
/* backoff.c: backoff delays with jitter (see backoff.h). */
#include "backoff.h"

#include <uv.h>

uint64_t rc__rand(uint64_t *s) {
  uint64_t x = *s;
  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  return *s = x;
}

uint64_t rc__rand_seed(const void *salt) { return (uv_hrtime() ^ (uint64_t)(uintptr_t)salt) | 1; }

uint64_t rc__backoff_next(rc__backoff *b, uint64_t *rng) {
  uint64_t d = b->cur_ms ? b->cur_ms : b->min_ms;
  b->cur_ms = d >= b->max_ms / 2 ? b->max_ms : d * 2;
  /* "Equal jitter": at least half the delay, so retries still spread out but never
   * collapse to zero. */
  uint64_t half = d / 2;
  return half + (half ? rc__rand(rng) % (half + 1) : 0) + (d & 1);
}
