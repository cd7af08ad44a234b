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
    if (c->throttle_ms) rc__trace(eng, c, "throttle: token available, applied");
    set_value(c, v);
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

/* The debounce of one delivery: the component's fixed one, or what its debounce
 * function returns for this value (a failure falls back to no debounce). */
static void debounce_for(rc__component *c, const rc_value_t *v) {
  if (c->debounce_ref == LUA_NOREF) return;
  rc__call call = {.c = c, .ref = c->debounce_ref, .what = "debounce", .arg = v,
                   .kind = RC__CALL_DURATION};
  uint64_t ms = rc__lua_call(c->eng, &call) == 0 ? call.ms : 0;
  c->debounce_ms = ms;
  rc__sched_config(&c->eng->sched, (size_t)c->index, ms, ms * 4);
}

/* Delivery without the source-state bookkeeping (also used for on_error fallbacks). */
static void deliver_value(rc__component *c, rc_value_t *v) {
  rc_engine_t *eng = c->eng;
  if (eng->initial || c->starting) {
    set_value(c, v);
    return;
  }
  debounce_for(c, v);
  if (c->debounce_ms == 0) {
    rc__value_unref(c->pending);
    c->pending = NULL;
    c->has_pending = false;
    rc__sched_cancel(&eng->sched, (size_t)c->index);
    if (throttle(c, v, rc__now(eng)))
      schedule_wave(eng);
    else
      rc__reschedule(eng);
    return;
  }
  rc__value_unref(c->pending);
  c->pending = v;
  c->has_pending = true;
  rc__sched_event(&eng->sched, (size_t)c->index, rc__now(eng));
  rc__trace(eng, c, "debounce: waiting %llu ms of quiet (at most %llu ms)",
            (unsigned long long)c->debounce_ms, (unsigned long long)c->debounce_max_ms);
  rc__reschedule(eng);
}

void rc__deliver(rc__component *c, rc_value_t *v) {
  if (!c) { /* a retired source finishing a read */
    rc__value_unref(v);
    return;
  }
  if (c->deliver_hook) {
    c->deliver_hook(c, v);
    return;
  }
  rc_engine_t *eng = c->eng;
  if (eng->state != RC__ST_RUNNING && !eng->initial && !c->starting) {
    rc__value_unref(v);
    return;
  }
  c->delivered = true;
  if (c->stale) {
    c->stale = false;
    rc__emit(eng, RC_EVENT_COMPONENT_STATE, c->name, c->src_path, 0, 0, 0,
             "component '%s': the source answered; the cached value is replaced", c->name);
  }
  if (c->in_error) {
    c->in_error = false;
    rc__emit(eng, RC_EVENT_SOURCE_RECOVERED, c->name, c->src_path, 0, 0, 0,
             "source delivers again");
  }
  if (eng->record_fn) eng->record_fn(eng->record_ud, c, v, NULL);
  rc__trace_value(eng, c, "source delivered", v);
  rc__fetch_once_answered(c);
  if (!v && c->keep_on_missing && c->value) return; /* on_missing = "keep" */
  deliver_value(c, v);
}

rc__component *rc__find_component(const rc_engine_t *eng, const char *name) {
  for (size_t i = 0; i < eng->ncomps; i++)
    if (strcmp(eng->comps[i]->name, name) == 0) return eng->comps[i];
  return NULL;
}

int rc__push(rc_engine_t *eng, const char *component, rc_value_t *v, const rc_error *err) {
  rc__component *c = rc__find_component(eng, component);
  if (!c || eng->state != RC__ST_RUNNING) {
    rc__value_unref(v);
    return c ? RC_ESTATE : RC_ENOTFOUND;
  }
  if (err)
    rc__deliver_error(c, err);
  else
    rc__deliver(c, v);
  return 0;
}

void rc__deliver_error(rc__component *c, const rc_error *err) {
  if (!c) return;
  rc_engine_t *eng = c->eng;
  c->in_error = true;
  c->delivered = true;
  if (eng->record_fn) eng->record_fn(eng->record_ud, c, NULL, err);
  rc__trace(eng, c, "source error: %s", err->message);
  rc__emit_error(eng, c, err);
  if (c->deliver_hook || (eng->state != RC__ST_RUNNING && !eng->initial && !c->starting))
    return;
  /* on_error: the component's own handler or action, else the policy's. */
  int ref = c->on_error_ref;
  rc__on_error action = c->on_error;
  if (ref == LUA_NOREF && action == RC__ONERR_UNSET) {
    ref = eng->on_error_ref;
    action = eng->on_error;
  }
  rc_value_t *fallback = NULL;
  if (ref != LUA_NOREF) {
    int rc = rc__lua_on_error(eng, c, ref, err, &action, &fallback);
    if (rc == 1) {
      deliver_value(c, fallback);
      return;
    }
  }
  if (action == RC__ONERR_DEFAULT && c->value) deliver_value(c, NULL);
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
  uint64_t target = eng->vnow + ms, due;
  /* Step to each deadline in order, so that what one step releases (a throttled value
   * held for its token) is seen at its own time. */
  while (rc__sched_next(&eng->sched, &due) && due <= target) {
    if (due > eng->vnow) eng->vnow = due;
    run_due(eng, eng->vnow);
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
  if (!on) rc__reschedule(eng);
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

/* Before the first commit the old root is an empty object, so that revision 1 lists one
 * "added" per component rather than one change for the whole root. */
static rc_value_t *empty_object(void) {
  rc__object_builder b;
  rc__object_begin(&b);
  return rc__object_end(&b);
}

/* The root object: each present component in declaration order, by reference. */
static rc_value_t *build_root(rc_engine_t *eng) {
  rc__object_builder b;
  rc__object_begin(&b);
  for (size_t i = 0; i < eng->ncomps; i++) {
    rc__component *c = eng->comps[i];
    const rc_value_t *v = rc__component_value(c);
    if (v) rc__object_put(&b, c->name, strlen(c->name), rc__value_ref(v));
  }
  return rc__object_end(&b);
}

/* force: a component that delivered an unchanged value is reported as "touched" unless
 * the diff already has changes of it. Returns false on OOM. */
static bool add_touched(rc_engine_t *eng, rc__changeset *cs, const rc_value_t *root) {
  for (size_t i = 0; i < eng->ncomps; i++) {
    rc__component *c = eng->comps[i];
    if (!c->touched) continue;
    c->touched = false;
    size_t nlen = strlen(c->name);
    bool listed = false;
    for (size_t k = 0; k < cs->n && !listed; k++) {
      const char *p = cs->items[k].path;
      listed = strncmp(p, c->name, nlen) == 0 && (p[nlen] == '\0' || p[nlen] == '.' ||
                                                  p[nlen] == '[');
    }
    if (listed) continue;
    const rc_value_t *v = rc_value_get(root, c->name);
    if (!v) continue;
    if (cs->n == cs->cap) {
      size_t cap = cs->cap ? cs->cap * 2 : 16;
      rc_change_t *items = rc__realloc(cs->items, cap * sizeof *items);
      if (!items) return false;
      cs->items = items;
      cs->cap = cap;
    }
    /* The path points at the component's own name, which outlives the wave. */
    cs->items[cs->n++] = (rc_change_t){.path = c->name, .kind = RC_CHANGE_TOUCHED,
                                       .old_value = v, .new_value = v};
  }
  return true;
}

static void mark_secrets(rc_engine_t *eng, rc__changeset *cs) {
  for (size_t i = 0; i < cs->n; i++)
    cs->items[i].secret = rc__path_is_secret(eng, cs->items[i].path);
}

void rc__wave(rc_engine_t *eng) {
  if (eng->state != RC__ST_RUNNING) return;
  rc__evaluate(eng);
  rc_value_t *root = build_root(eng);
  if (!root) {
    rc__emit(eng, RC_EVENT_POLICY_ERROR, NULL, NULL, 0, 0, RC_ENOMEM,
             "out of memory building the new configuration; the last one stays");
    return;
  }
  struct rc_snapshot *cur = rc__snapshot_current(eng);
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
  if (!add_touched(eng, cs, root)) cs->n = 0;
  mark_secrets(eng, cs);
  if (cs->n == 0 && cur) { /* unchanged input: no commit, no notification */
    rc__trace(eng, NULL, "diff: nothing changed; no commit");
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
  for (size_t i = 0; i < eng->ncomps; i++) eng->comps[i]->committed = true;
  if (eng->cache_dir) rc__cache_store_all(eng);
  rc__trace(eng, NULL, "commit: revision %llu with %zu %s",
            (unsigned long long)snap->revision, cs->n, cs->n == 1 ? "change" : "changes");
  rc_snapshot_retain(snap);
  rc__emit_commit(eng, snap->revision, cs->n);
  rc__notify_subscribers(eng, snap, cs->items, cs->n);
  rc__lua_on_change(eng, snap, cs->items, cs->n);
  rc_snapshot_release(snap);
  rc__value_unref(old_root);
}
