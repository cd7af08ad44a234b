/* scheduler.c: debounce decisions on an injected clock (see scheduler.h). No handles, no
 * allocation after init: the engine owns the one uv timer that follows rc__sched_next. */
#include "scheduler.h"
#include "internal.h"

int rc__sched_init(rc__sched *s, size_t n) {
  s->slots = rc__calloc(n ? n : 1, sizeof *s->slots);
  s->n = s->slots ? n : 0;
  return s->slots ? 0 : RC_ENOMEM;
}

void rc__sched_free(rc__sched *s) {
  rc__free(s->slots);
  s->slots = NULL;
  s->n = 0;
}

void rc__sched_config(rc__sched *s, size_t slot, uint64_t quiet, uint64_t max) {
  if (slot >= s->n) return;
  s->slots[slot].quiet = quiet;
  s->slots[slot].max = max < quiet ? quiet : max;
}

void rc__sched_event(rc__sched *s, size_t slot, uint64_t now) {
  if (slot >= s->n) return;
  rc__sched_slot *sl = &s->slots[slot];
  if (!sl->armed) {
    sl->armed = true;
    sl->deadline = now + sl->max;
    sl->due = now + sl->quiet;
  } else {
    uint64_t due = now + sl->quiet;
    sl->due = due < sl->deadline ? due : sl->deadline;
  }
}

bool rc__sched_next(const rc__sched *s, uint64_t *due) {
  bool any = false;
  for (size_t i = 0; i < s->n; i++) {
    if (s->slots[i].armed && (!any || s->slots[i].due < *due)) {
      *due = s->slots[i].due;
      any = true;
    }
  }
  return any;
}

size_t rc__sched_take_due(rc__sched *s, uint64_t now, size_t *out, size_t cap) {
  size_t k = 0;
  for (size_t i = 0; i < s->n && k < cap; i++) {
    if (s->slots[i].armed && s->slots[i].due <= now) {
      s->slots[i].armed = false;
      out[k++] = i;
    }
  }
  return k;
}

void rc__sched_cancel(rc__sched *s, size_t slot) {
  if (slot < s->n) s->slots[slot].armed = false;
}
