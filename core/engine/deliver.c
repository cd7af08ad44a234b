/* SPDX-License-Identifier: MIT (see LICENSE) */
/* deliver.c: what the engine does with what a source delivers: a value or an error
 * goes into its component (on_error decides what an error does to it), through the
 * policy's debounce function, into the scheduler (schedule.c) or, at start, straight
 * into the component. Also pushes from the simulation (rc__push). */
#include "engine.h"

#include <lauxlib.h>
#include <string.h>

/* The debounce of one delivery: the component's fixed one, or what its debounce
 * function returns for this value (a failure falls back to no debounce). */
static void debounce_for(rc__component *c, const rc_value_t *v) {
  if (c->debounce_ref == LUA_NOREF) return;
  rc__call call = {.c = c, .ref = c->debounce_ref, .what = "debounce", .arg = v,
                   .kind = RC__CALL_DURATION};
  uint64_t ms = rc__lua_call(c->eng, &call) == 0 ? call.ms : 0;
  c->debounce_ms = ms;
  rc__sched_config(&c->eng->sched, (size_t)c->index, ms, ms * RC__DEBOUNCE_MAX_FACTOR);
}

/* Delivery without the source-state bookkeeping (also used for on_error fallbacks). */
static void deliver_value(rc__component *c, rc_value_t *v) {
  rc_engine_t *eng = c->eng;
  if (eng->initial || c->starting) {
    rc__set_value(c, v);
    return;
  }
  if (c->reread) { /* a reload request's fresh read: past debounce and throttle */
    c->reread = false;
    rc__value_unref(c->pending);
    c->pending = NULL;
    c->has_pending = false;
    rc__sched_cancel(&eng->sched, (size_t)c->index);
    rc__trace(eng, c, "reload request: applied at once");
    rc__set_value(c, v);
    /* The request's reload runs once every re-read answered (request.c). */
    if (eng->request_waits == 0) rc__schedule_wave(eng);
    return;
  }
  rc__trigger(eng, "source", c->name);
  debounce_for(c, v);
  if (c->debounce_ms == 0) {
    rc__value_unref(c->pending);
    c->pending = NULL;
    c->has_pending = false;
    rc__sched_cancel(&eng->sched, (size_t)c->index);
    if (rc__throttle(c, v, rc__now(eng)))
      rc__schedule_wave(eng);
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
    rc__emit(eng, RC_EVENT_COMPONENT_STATE, c->name, c->target, 0, 0, 0,
             "component '%s': the source answered; the cached value is replaced", c->name);
  }
  if (c->in_error) {
    c->in_error = false;
    rc__emit(eng, RC_EVENT_SOURCE_RECOVERED, c->name, c->target, 0, 0, 0,
             "source delivers again");
  }
  rc__health_success(c);
  if (eng->record_fn) eng->record_fn(eng->record_ud, c, v, NULL);
  rc__trace_value(eng, c, "source delivered", v);
  rc__fetch_once_answered(c);
  if (!v && c->keep_on_missing && c->value) { /* on_missing = "keep" */
    rc__health_sync(c);
    rc__answered(c);
    return;
  }
  deliver_value(c, v);
  rc__health_sync(c);
  rc__answered(c);
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
  rc__health_sync(c);
  if (c->deliver_hook || (eng->state != RC__ST_RUNNING && !eng->initial && !c->starting))
    return;
  rc__answered(c); /* a reload request waiting for this read goes on without it */
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
  rc__health_sync(c);
}

