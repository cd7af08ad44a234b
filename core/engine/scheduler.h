/* SPDX-License-Identifier: MIT (see LICENSE) */
/* scheduler.h: the scheduler's timing decisions, as pure functions of a clock value the
 * caller passes in (milliseconds). The engine drives it from uv_now(); tests and the
 * REPL drive it with a virtual clock. Two stages per slot: debounce (quiet period + max
 * wait), then throttle (token bucket: `burst` tokens, one more every `every`). */
#ifndef RC_SCHEDULER_H
#define RC_SCHEDULER_H

/* A debounce given as one duration (or by a debounce function) waits at most this many
 * times its quiet period before a value goes through anyway. The Lua loader reads it
 * (reactcfg.constants). */
#define RC__DEBOUNCE_MAX_FACTOR 4

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct rc__sched_slot {
  uint64_t quiet, max;   /* debounce: fire after `quiet` without events, at most `max`
                            after the first event of a burst */
  uint64_t due;          /* when the armed slot fires */
  uint64_t deadline;     /* first event + max: `due` never moves past it */
  bool armed;
  /* throttle (every == 0: none): `tokens` of `burst` left; while not full, the next
   * token arrives at `refill + every`. `held`: a value waits for that token. */
  uint64_t every, refill;
  uint32_t burst, tokens;
  bool held;
} rc__sched_slot;

typedef struct rc__sched {
  rc__sched_slot *slots;
  size_t n;
} rc__sched;

/* Allocates `n` unarmed slots with no debounce. Returns 0 or RC_ENOMEM. */
int rc__sched_init(rc__sched *s, size_t n);
void rc__sched_free(rc__sched *s);
void rc__sched_config(rc__sched *s, size_t slot, uint64_t quiet, uint64_t max);
/* An event for `slot` at time `now`: arms the slot (due = now + quiet) or, within a
 * burst, pushes `due` back to now + quiet but never past the burst's deadline. */
void rc__sched_event(rc__sched *s, size_t slot, uint64_t now);
/* Earliest due time among armed slots and release time among held slots; false when
 * nothing is armed or held. */
bool rc__sched_next(const rc__sched *s, uint64_t *due);
/* Disarms every slot due at `now` and writes their indices (ascending) into `out`
 * (capacity `cap`, which should be s->n). Returns how many. */
size_t rc__sched_take_due(rc__sched *s, uint64_t now, size_t *out, size_t cap);
/* Disarms a slot's debounce (component removed or stopped, or debounce bypassed). The
 * throttle stage (tokens, held flag) is left as it is. */
void rc__sched_cancel(rc__sched *s, size_t slot);

/* Throttle of `slot`: a full bucket of `burst` tokens (at least 1), one token back every
 * `every` ms up to `burst`. every == 0 turns the throttle off. */
void rc__sched_throttle_config(rc__sched *s, size_t slot, uint64_t every, uint32_t burst);
/* A value passed debounce at `now`. Returns true when it may be applied at once (a token
 * was taken; any held value is superseded, so the slot is no longer held), false when it
 * must be held until the next token (the slot is marked held; the caller keeps only the
 * newest such value). Always true without a throttle. */
bool rc__sched_throttle_offer(rc__sched *s, size_t slot, uint64_t now);
/* When the next token of `slot` is available: `now` if one is, else its refill time. */
uint64_t rc__sched_throttle_next_token(const rc__sched *s, size_t slot, uint64_t now);
/* Releases every held slot whose token has arrived at `now` (taking that token) and
 * writes their indices (ascending) into `out` (capacity `cap`). Returns how many. */
size_t rc__sched_take_released(rc__sched *s, uint64_t now, size_t *out, size_t cap);

#endif
