/* SPDX-License-Identifier: MIT (see LICENSE) */
/* fetch_once.c: `cache_for`. A component with `cache_for = "1h"` asks its source once
 * and then holds the answer for that long without watching: after the source answers it
 * is stopped (no connection, no polling), and when the time is up it starts again and
 * is stopped after its next answer. A failed refetch keeps the held value and retries on
 * the source's own backoff. With the policy's `cache`, an answer saved by an earlier run
 * less than cache_for ago is used at start without asking the source at all.
 * Times are the loop's real clock (not the simulation's virtual clock). */
#include "engine.h"

#include <string.h>

/* Runs after the source's callback has returned: a source is never stopped from inside
 * its own delivery. */
static void arm(rc_engine_t *eng, uint64_t delay_ms) {
  if (eng->state == RC__ST_STOPPING || eng->state == RC__ST_STOPPED || !eng->handles_init)
    return;
  uint64_t due = uv_now(eng->loop) + delay_ms;
  if (uv_is_active((uv_handle_t *)&eng->fetch_timer) && eng->fetch_due <= due) return;
  eng->fetch_due = due;
  uv_timer_start(&eng->fetch_timer, rc__fetch_once_run, delay_ms, 0);
}

void rc__fetch_once_answered(rc__component *c) {
  if (!c->cache_for_ms || c->deliver_hook || c->eng->no_sources) return;
  c->fetched_ns = rc__real_ns();
  c->answered = true;
  arm(c->eng, 0);
}

static void pause_source(rc_engine_t *eng, rc__component *c, uint64_t now) {
  c->answered = false;
  c->refetch_at = now + c->cache_for_ms;
  if (!c->src || c->src_borrowed) return; /* a reload on trial: not ours to stop */
  rc__source_retire(eng, c->src);
  c->src = NULL;
  rc__trace(eng, c, "cache_for: answered; source stopped for %llu ms",
            (unsigned long long)c->cache_for_ms);
  rc__emit(eng, RC_EVENT_COMPONENT_STATE, c->name, c->target, 0, 0, 0,
           "component '%s': fetched; holding the value for %llu ms (cache_for), source "
           "stopped", c->name, (unsigned long long)c->cache_for_ms);
}

static void refetch(rc_engine_t *eng, rc__component *c) {
  c->refetch_at = 0;
  if (!c->active || c->src) return; /* inactive: its condition will start it */
  rc__emit(eng, RC_EVENT_COMPONENT_STATE, c->name, c->target, 0, 0, 0,
           "component '%s': cache_for of %llu ms is over; fetching again", c->name,
           (unsigned long long)c->cache_for_ms);
  rc_error err = {0};
  if (rc__source_start(c, &err)) rc__deliver_error(c, &err);
}

void rc__fetch_once_run(uv_timer_t *t) {
  rc_engine_t *eng = t->data;
  /* Also while start waits for first answers (initial): those pause at once. */
  if (eng->state != RC__ST_RUNNING && !eng->initial) return;
  uint64_t now = uv_now(eng->loop), next = 0;
  bool paused = false, restarted = false;
  for (size_t i = 0; i < eng->ncomps; i++) {
    rc__component *c = eng->comps[i];
    if (!c->cache_for_ms) continue;
    if (c->answered) {
      pause_source(eng, c, now);
      paused = true;
    } else if (c->refetch_at && c->refetch_at <= now) {
      refetch(eng, c);
      restarted = true;
    }
    if (c->refetch_at && (!next || c->refetch_at < next)) next = c->refetch_at;
  }
  if (paused && eng->cache_dir) rc__cache_store_all(eng);
  if (restarted) rc__wave(eng); /* a source that answered while starting */
  if (next) arm(eng, next > now ? next - now : 0);
}

bool rc__fetch_once_now(rc__component *c) {
  if (!c->cache_for_ms || c->src || !c->refetch_at) return false;
  refetch(c->eng, c);
  return true;
}

bool rc__fetch_once_cached(rc__component *c) {
  rc_engine_t *eng = c->eng;
  if (!c->cache_for_ms || !eng->cache_dir || c->value) return false;
  int64_t saved_ns = 0;
  rc_value_t *v = rc__cache_load(eng, c, &saved_ns);
  int64_t age_ms = (rc__real_ns() - saved_ns) / 1000000;
  if (!v || age_ms < 0 || (uint64_t)age_ms >= c->cache_for_ms) {
    rc__value_unref(v);
    return false;
  }
  c->value = v;
  rc__value_unref(c->cache_written);
  c->cache_written = rc__value_ref(v); /* already on disk: not written again */
  c->fetched_ns = saved_ns;
  c->dirty = true;
  c->delivered = true;
  rc__health_value_time(c, saved_ns);
  rc__health_sync(c);
  uint64_t left = c->cache_for_ms - (uint64_t)age_ms;
  c->refetch_at = uv_now(eng->loop) + left;
  rc__emit(eng, RC_EVENT_COMPONENT_STATE, c->name, eng->cache_dir, 0, 0, 0,
           "component '%s': using the value fetched %lld s ago (cache_for); next fetch in "
           "%llu ms", c->name, (long long)(age_ms / 1000), (unsigned long long)left);
  arm(eng, left);
  return true;
}
