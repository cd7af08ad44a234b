/* SPDX-License-Identifier: MIT (see LICENSE) */
/* schedule.c: when delivered values are applied: the throttle stage (a token bucket per
 * component), the one uv timer at the scheduler's next deadline, the 0 ms timer that
 * runs one wave per loop turn, and the clock (the loop's, or the simulation's virtual
 * one). The decisions themselves are scheduler.c's pure functions. */
#include "engine.h"

static void wave_cb(uv_timer_t *t) { rc__wave(t->data); }

/* Runs a wave at the start of the next loop turn, so that everything delivered in this
 * turn (an overflow rescan, several env variables) becomes one commit. */
void rc__schedule_wave(rc_engine_t *eng) {
  if (!uv_is_active((uv_handle_t *)&eng->wave_timer))
    uv_timer_start(&eng->wave_timer, wave_cb, 0, 0);
}

void rc__set_value(rc__component *c, rc_value_t *v) {
  rc__value_unref(c->value);
  c->value = v;
  c->dirty = true;
}

/* The throttle stage for a value `v` (owned) that passed debounce at `now`: applies it
 * when a token is available and returns true (the caller runs a wave); otherwise holds
 * it in place of any older held value and returns false. */
bool rc__throttle(rc__component *c, rc_value_t *v, uint64_t now) {
  rc_engine_t *eng = c->eng;
  bool was_held = eng->sched.slots[c->index].held;
  if (rc__sched_throttle_offer(&eng->sched, (size_t)c->index, now)) {
    if (was_held) { /* superseded by this newer value */
      rc__value_unref(c->held);
      c->held = NULL;
    }
    if (c->throttle_ms) rc__trace(eng, c, "throttle: token available, applied");
    rc__set_value(c, v);
    return true;
  }
  rc__trace(eng, c, "throttle: no token, held until +%llu ms%s",
            (unsigned long long)(rc__sched_throttle_next_token(&eng->sched,
                                                               (size_t)c->index, now) -
                                 eng->epoch_ms),
            was_held ? " (replaces the value held before)" : "");
  rc__value_unref(c->held);
  c->held = v;
  return false;
}

/* Runs what the scheduler has due at `now`: debounced values move on to the throttle,
 * held values whose token came are applied; then one wave. */
static void run_due(rc_engine_t *eng, uint64_t now) {
  size_t due[64];
  size_t n;
  bool any = false;
  /* Debounce first: a value whose quiet period passed moves on to the throttle, where it
   * is applied or replaces the held one; then held values whose token came are applied. */
  while ((n = rc__sched_take_due(&eng->sched, now, due, 64)) > 0) {
    for (size_t i = 0; i < n; i++) {
      rc__component *c = eng->comps[due[i]];
      if (!c->has_pending) continue;
      rc_value_t *v = c->pending;
      c->pending = NULL;
      c->has_pending = false;
      if (rc__throttle(c, v, now)) any = true;
    }
  }
  while ((n = rc__sched_take_released(&eng->sched, now, due, 64)) > 0) {
    for (size_t i = 0; i < n; i++) {
      rc__component *c = eng->comps[due[i]];
      rc__set_value(c, c->held);
      c->held = NULL;
      any = true;
    }
  }
  if (any) rc__wave(eng);
}

static void sched_cb(uv_timer_t *t) {
  rc_engine_t *eng = t->data;
  run_due(eng, rc__now(eng));
  rc__reschedule(eng);
}

uint64_t rc__now(const rc_engine_t *eng) {
  return eng->virtual_clock ? eng->vnow : uv_now(eng->loop) + eng->clock_offset;
}

void rc__advance(rc_engine_t *eng, uint64_t ms) {
  if (!eng->virtual_clock || eng->state != RC__ST_RUNNING) return;
  uint64_t target = eng->vnow + ms;
  /* Step to each deadline in order (the scheduler's and the reload machinery's: a
   * module's timeout, a backoff's end), so that what one step releases (a throttled
   * value held for its token) is seen at its own time. */
  for (;;) {
    uint64_t a = 0, b = 0;
    bool sa = rc__sched_next(&eng->sched, &a) && a <= target;
    bool sb = rc__txn_next_deadline(eng, &b) && b <= target;
    if (!sa && !sb) break;
    uint64_t due = sa && (!sb || a <= b) ? a : b;
    if (due > eng->vnow) eng->vnow = due;
    if (sa && a == due) run_due(eng, eng->vnow);
    else rc__txn_run_due(eng, eng->vnow);
  }
  eng->vnow = target;
}

void rc__set_virtual_clock(rc_engine_t *eng, bool on) {
  if (on == eng->virtual_clock || !eng->loop) return;
  uint64_t real = uv_now(eng->loop);
  if (on) {
    eng->vnow = real + eng->clock_offset;
    uv_timer_stop(&eng->sched_timer);
  } else {
    eng->clock_offset = eng->vnow - real; /* time goes on from where it stood */
  }
  eng->virtual_clock = on;
  if (!on) {
    rc__reschedule(eng);
    rc__txn_arm(eng);
  } else {
    uv_timer_stop(&eng->txn_timer);
  }
}

void rc__reschedule(rc_engine_t *eng) {
  if (eng->state != RC__ST_RUNNING || eng->virtual_clock) return;
  uint64_t due;
  if (!rc__sched_next(&eng->sched, &due)) {
    uv_timer_stop(&eng->sched_timer);
    return;
  }
  uint64_t now = rc__now(eng);
  uv_timer_start(&eng->sched_timer, sched_cb, due > now ? due - now : 0, 0);
}

