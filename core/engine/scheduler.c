/* SPDX-License-Identifier: MIT (see LICENSE) */
/* scheduler.c: debounce and throttle decisions on an injected clock (see scheduler.h). No
 * handles, no
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
    const rc__sched_slot *sl = &s->slots[i];
    if (sl->armed && (!any || sl->due < *due)) {
      *due = sl->due;
      any = true;
    }
    /* a held slot has no token left: its release is the next refill */
    if (sl->held && (!any || sl->refill + sl->every < *due)) {
      *due = sl->refill + sl->every;
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

void rc__sched_throttle_config(rc__sched *s, size_t slot, uint64_t every, uint32_t burst) {
  if (slot >= s->n) return;
  rc__sched_slot *sl = &s->slots[slot];
  sl->every = every;
  sl->burst = burst ? burst : 1;
  sl->tokens = sl->burst;
  sl->refill = 0;
  sl->held = false;
}

/* Adds the tokens earned by `now`, capped at the burst. */
static void refill(rc__sched_slot *sl, uint64_t now) {
  if (sl->tokens >= sl->burst || now < sl->refill) return;
  uint64_t n = (now - sl->refill) / sl->every;
  if (n >= sl->burst - sl->tokens) {
    sl->tokens = sl->burst;   /* full: `refill` restarts with the next take */
  } else {
    sl->tokens += (uint32_t)n;
    sl->refill += n * sl->every;
  }
}

/* Takes a token at `now` if there is one. */
static bool take_token(rc__sched_slot *sl, uint64_t now) {
  refill(sl, now);
  if (sl->tokens == 0) return false;
  if (sl->tokens == sl->burst) sl->refill = now; /* the clock starts at the first take */
  sl->tokens--;
  return true;
}

bool rc__sched_throttle_offer(rc__sched *s, size_t slot, uint64_t now) {
  if (slot >= s->n || s->slots[slot].every == 0) return true;
  rc__sched_slot *sl = &s->slots[slot];
  if (take_token(sl, now)) {
    sl->held = false;
    return true;
  }
  sl->held = true;
  return false;
}

uint64_t rc__sched_throttle_next_token(const rc__sched *s, size_t slot, uint64_t now) {
  if (slot >= s->n) return now;
  rc__sched_slot sl = s->slots[slot];
  if (sl.every == 0) return now;
  refill(&sl, now);
  if (sl.tokens > 0) return now;
  return sl.refill + sl.every;
}

size_t rc__sched_take_released(rc__sched *s, uint64_t now, size_t *out, size_t cap) {
  size_t k = 0;
  for (size_t i = 0; i < s->n && k < cap; i++) {
    rc__sched_slot *sl = &s->slots[i];
    if (sl->held && take_token(sl, now)) {
      sl->held = false;
      out[k++] = i;
    }
  }
  return k;
}
