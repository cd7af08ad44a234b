/* scheduler.h: the scheduler's timing decisions, as pure functions of a clock value the
 * caller passes in (milliseconds). The engine drives it from uv_now(); tests and the
 * REPL drive it with a virtual clock. This part: debounce (quiet period + max wait). */
#ifndef RC_SCHEDULER_H
#define RC_SCHEDULER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct rc__sched_slot {
  uint64_t quiet, max;   /* debounce: fire after `quiet` without events, at most `max`
                            after the first event of a burst */
  uint64_t due;          /* when the armed slot fires */
  uint64_t deadline;     /* first event + max: `due` never moves past it */
  bool armed;
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
/* Earliest due time among armed slots; false when none is armed. */
bool rc__sched_next(const rc__sched *s, uint64_t *due);
/* Disarms every slot due at `now` and writes their indices (ascending) into `out`
 * (capacity `cap`, which should be s->n). Returns how many. */
size_t rc__sched_take_due(rc__sched *s, uint64_t now, size_t *out, size_t cap);
/* Disarms a slot (component removed or stopped). */
void rc__sched_cancel(rc__sched *s, size_t slot);

#endif
