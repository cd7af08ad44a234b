/* wave.c: from delivered source values to a committed snapshot. Sources deliver into
 * their component; the scheduler decides when (debounce, then throttle); a wave builds
 * the new root from every component, diffs it against the committed one, and commits
 * and notifies only when something changed. */
#include "engine.h"

#include <lauxlib.h>
#include <string.h>

static void wave_cb(uv_timer_t *t) { rc__wave(t->data); }

/* Runs a wave at the start of the next loop turn, so that everything delivered in this
 * turn (an overflow rescan, several env variables) becomes one commit. */
static void schedule_wave(rc_engine_t *eng) {
  if (!uv_is_active((uv_handle_t *)&eng->wave_timer))
    uv_timer_start(&eng->wave_timer, wave_cb, 0, 0);
}

static void set_value(rc__component *c, rc_value_t *v) {
  rc__value_unref(c->value);
  c->value = v;
  c->dirty = true;
}

/* The throttle stage for a value `v` (owned) that passed debounce at `now`: applies it
 * when a token is available and returns true (the caller runs a wave); otherwise holds
 * it in place of any older held value and returns false. */
static bool throttle(rc__component *c, rc_value_t *v, uint64_t now) {
  rc_engine_t *eng = c->eng;
  bool was_held = eng->sched.slots[c->index].held;
  if (rc__sched_throttle_offer(&eng->sched, (size_t)c->index, now)) {
    if (was_held) { /* superseded by this newer value */
      rc__value_unref(c->held);
      c->held = NULL;
    }
    set_value(c, v);
    return true;
  }
  rc__value_unref(c->held);
  c->held = v;
  return false;
}

void rc__deliver(rc__component *c, rc_value_t *v) {
  rc_engine_t *eng = c->eng;
  if (eng->state != RC__ST_RUNNING && !eng->initial) {
    rc__value_unref(v);
    return;
  }
  if (c->in_error) {
    c->in_error = false;
    rc__emit(eng, RC_EVENT_SOURCE_RECOVERED, c->name, c->src_path, 0, 0, 0,
             "source delivers again");
  }
  if (!v && c->keep_on_missing && c->value) return; /* on_missing = "keep" */
  if (eng->initial) {
    set_value(c, v);
    return;
  }
  if (c->debounce_ms == 0) {
    rc__value_unref(c->pending);
    c->pending = NULL;
    c->has_pending = false;
    rc__sched_cancel(&eng->sched, (size_t)c->index);
    if (throttle(c, v, uv_now(eng->loop)))
      schedule_wave(eng);
    else
      rc__reschedule(eng);
    return;
  }
  rc__value_unref(c->pending);
  c->pending = v;
  c->has_pending = true;
  rc__sched_event(&eng->sched, (size_t)c->index, uv_now(eng->loop));
  rc__reschedule(eng);
}

void rc__deliver_error(rc__component *c, const rc_error *err) {
  c->in_error = true;
  rc__emit_error(c->eng, c, err);
}

static void sched_cb(uv_timer_t *t) {
  rc_engine_t *eng = t->data;
  size_t due[64];
  size_t n;
  bool any = false;
  uint64_t now = uv_now(eng->loop);
  /* Debounce first: a value whose quiet period passed moves on to the throttle, where it
   * is applied or replaces the held one; then held values whose token came are applied. */
  while ((n = rc__sched_take_due(&eng->sched, now, due, 64)) > 0) {
    for (size_t i = 0; i < n; i++) {
      rc__component *c = eng->comps[due[i]];
      if (!c->has_pending) continue;
      rc_value_t *v = c->pending;
      c->pending = NULL;
      c->has_pending = false;
      if (throttle(c, v, now)) any = true;
    }
  }
  while ((n = rc__sched_take_released(&eng->sched, now, due, 64)) > 0) {
    for (size_t i = 0; i < n; i++) {
      rc__component *c = eng->comps[due[i]];
      set_value(c, c->held);
      c->held = NULL;
      any = true;
    }
  }
  if (any) rc__wave(eng);
  rc__reschedule(eng);
}

void rc__reschedule(rc_engine_t *eng) {
  if (eng->state != RC__ST_RUNNING) return;
  uint64_t due;
  if (!rc__sched_next(&eng->sched, &due)) {
    uv_timer_stop(&eng->sched_timer);
    return;
  }
  uint64_t now = uv_now(eng->loop);
  uv_timer_start(&eng->sched_timer, sched_cb, due > now ? due - now : 0, 0);
}

/* Before the first commit the old root is an empty object, so that revision 1 lists one
 * "added" per component rather than one change for the whole root. */
static rc_value_t *empty_object(void) {
  rc__object_builder b;
  rc__object_begin(&b);
  return rc__object_end(&b);
}

/* Whether `a` and `b` differ, using the engine's changeset as scratch (the wave resets
 * it before its own diff). Out of memory counts as "differ". */
static bool differ(rc_engine_t *eng, const rc_value_t *a, const rc_value_t *b) {
  if (a == b) return false;
  rc__changeset_reset(&eng->cs);
  if (rc__diff(a, b, "", &eng->cs)) return true;
  return eng->cs.n > 0;
}

/* Evaluates components in dependency order, each at most once per wave. A component
 * counts as changed on its first wave, when its source value really differs from the one
 * it was last evaluated with (a re-delivery of the same content is not a change), or
 * when a dependency changed earlier in this wave; then a derived component (update,
 * depends_on) is re-evaluated. A failed update keeps the previous result
 * (rc__lua_update reported it) and does not count as a change; the wave goes on. */
/* Whether some component depends on `c` (its changes must then be known exactly). */
static bool has_dependants(const rc_engine_t *eng, const rc__component *c) {
  for (size_t i = 0; i < eng->ncomps; i++)
    for (size_t d = 0; d < eng->comps[i]->ndeps; d++)
      if (eng->comps[i]->deps[d] == c->index) return true;
  return false;
}

static void evaluate(rc_engine_t *eng) {
  for (size_t k = 0; k < eng->ncomps; k++) {
    rc__component *c = eng->comps[eng->order[k]];
    /* A plain component nobody depends on needs no evaluation: the wave's own diff
     * finds its changes (and an extra diff here would double the cost of big files). */
    if (!c->derived && !has_dependants(eng, c)) continue;
    const rc_value_t *src = c->value ? c->value : c->default_value;
    bool changed = !c->evaluated || (c->dirty && differ(eng, c->seen, src));
    c->evaluated = true;
    for (size_t i = 0; !changed && i < c->ndeps; i++)
      if (eng->comps[c->deps[i]]->changed) changed = true;
    c->changed = false;
    if (!changed) continue;
    rc__value_unref(c->seen);
    c->seen = rc__value_ref(src);
    if (c->derived) {
      rc_value_t *v = NULL;
      if (c->update_ref == LUA_NOREF)
        v = rc__value_ref(src);
      else if (rc__lua_update(eng, c, &v) != 0)
        continue;
      rc__value_unref(c->result);
      c->result = v;
    }
    c->changed = true;
  }
}

/* The root object: each present component in declaration order, by reference. */
static rc_value_t *build_root(rc_engine_t *eng) {
  rc__object_builder b;
  rc__object_begin(&b);
  for (size_t i = 0; i < eng->ncomps; i++) {
    rc__component *c = eng->comps[i];
    const rc_value_t *v = rc__component_value(c);
    c->dirty = false;
    if (v) rc__object_put(&b, c->name, strlen(c->name), rc__value_ref(v));
  }
  return rc__object_end(&b);
}

void rc__wave(rc_engine_t *eng) {
  if (eng->state != RC__ST_RUNNING) return;
  evaluate(eng);
  rc_value_t *root = build_root(eng);
  if (!root) {
    rc__emit(eng, RC_EVENT_POLICY_ERROR, NULL, NULL, 0, 0, RC_ENOMEM,
             "out of memory building the new configuration; the last one stays");
    return;
  }
  struct rc_snapshot *cur = atomic_load(&eng->current);
  /* Hold the old root: the diff's old values point into it, and publishing may release
   * the old snapshot before subscribers have seen the changes. */
  rc_value_t *old_root = cur ? rc__value_ref(cur->root) : empty_object();
  rc__changeset *cs = &eng->cs;
  rc__changeset_reset(cs);
  if (rc__diff(old_root, root, "", cs)) {
    rc__value_unref(old_root);
    rc__value_unref(root);
    rc__emit(eng, RC_EVENT_POLICY_ERROR, NULL, NULL, 0, 0, RC_ENOMEM,
             "out of memory computing changes; the last configuration stays");
    return;
  }
  rc__diff_finish(cs);
  if (cs->n == 0 && cur) { /* unchanged input: no commit, no notification */
    rc__value_unref(old_root);
    rc__value_unref(root);
    return;
  }
  struct rc_snapshot *snap = rc__publish(eng, root);
  if (!snap) {
    rc__value_unref(old_root);
    rc__emit(eng, RC_EVENT_POLICY_ERROR, NULL, NULL, 0, 0, RC_ENOMEM,
             "out of memory committing; the last configuration stays");
    return;
  }
  rc_snapshot_retain(snap);
  rc__emit_commit(eng, snap->revision, cs->n);
  rc__notify_subscribers(eng, snap, cs->items, cs->n);
  rc__lua_on_change(eng, snap, cs->items, cs->n);
  rc_snapshot_release(snap);
  rc__value_unref(old_root);
}
