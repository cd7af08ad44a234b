/* SPDX-License-Identifier: MIT (see LICENSE) */
/* backoff.h: exponential backoff with jitter and a ceiling, and the random numbers for
 * jitter and splay. Pure arithmetic, no handles. */
#ifndef RC_BACKOFF_H
#define RC_BACKOFF_H

#include <stdint.h>

/* Exponential backoff with jitter and a ceiling, reset on success. */
typedef struct rc__backoff {
  uint64_t min_ms, max_ms;  /* first delay, ceiling */
  uint64_t cur_ms;          /* next base delay; 0 = reset */
} rc__backoff;

/* The next delay, with "equal jitter" in [d/2, d]; the base doubles up to the ceiling. */
uint64_t rc__backoff_next(rc__backoff *b, uint64_t *rng);
/* xorshift64: the next number of the sequence in *state (never 0). */
uint64_t rc__rand(uint64_t *state);
/* A seed for rc__rand, different per call site and time. */
uint64_t rc__rand_seed(const void *salt);

#endif
