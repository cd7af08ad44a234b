/* SPDX-License-Identifier: MIT (see LICENSE) */
/* evaluate.c: one wave's evaluation of the policy. Components are evaluated in
 * dependency order; a component is evaluated again only when its source delivered,
 * a dependency changed, or a component its condition read changed (a logical clock,
 * eng->stamp, orders changes and evaluations). Conditions may read components that come
 * later in the order, so evaluation repeats until nothing is left to do.
 *
 * For one processed component: condition (start or stop the source) -> transform ->
 * update -> validate -> filter -> only/ignore -> dynamic = false -> its new result. A
 * failure or a rejection at any step keeps the previous result. */
#include "engine.h"

#include <lauxlib.h>

#include <stdio.h>
#include <string.h>

/* Whether `a` and `b` differ, using the engine's changeset as scratch (the wave resets
 * it before its own diff). Out of memory counts as "differ". */
static bool differ(rc_engine_t *eng, const rc_value_t *a, const rc_value_t *b) {
  if (a == b) return false;
  rc__changeset_reset(&eng->cs);
  if (rc__diff(a, b, "", &eng->cs)) return true;
  return eng->cs.n > 0;
}

static bool deps_changed(const rc_engine_t *eng, const rc__component *c) {
  for (size_t i = 0; i < c->ndeps; i++)
    if (eng->comps[c->deps[i]]->changed_at > c->evaluated_at) return true;
  return false;
}

static bool reads_changed(const rc_engine_t *eng, const rc__component *c) {
  for (size_t i = 0; i < c->nreads; i++)
    if (eng->comps[c->reads[i]]->changed_at > c->evaluated_at) return true;
  return false;
}

/* ---- conditions: starting and stopping sources ---- */

static void clear_source_values(rc_engine_t *eng, rc__component *c) {
  rc__value_unref(c->value);
  rc__value_unref(c->pending);
  rc__value_unref(c->held);
  c->value = c->pending = c->held = NULL;
  c->has_pending = false;
  if (eng->sched.slots) rc__sched_cancel(&eng->sched, (size_t)c->index);
}

static void set_active(rc_engine_t *eng, rc__component *c, bool active) {
  c->active = active;
  if (active) {
    if (!c->src) {
      rc_error err = {0};
      if (rc__source_start(c, &err)) rc__deliver_error(c, &err);
    }
    rc__health_sync(c);
    rc__emit(eng, RC_EVENT_COMPONENT_STATE, c->name, eng->policy_path, c->line, 0, 0,
             "component '%s' is active: its condition holds; source started", c->name);
    return;
  }
  if (c->src) {
    if (c->src_borrowed) /* a reload on trial: the old policy still owns it */
      c->src_borrowed = false;
    else
      rc__source_retire(eng, c->src);
    c->src = NULL;
  }
  clear_source_values(eng, c);
  rc__health_sync(c);
  rc__emit(eng, RC_EVENT_COMPONENT_STATE, c->name, eng->policy_path, c->line, 0, 0,
           "component '%s' is inactive: its condition is false; source stopped", c->name);
}

/* ---- the steps ---- */

/* Runs one function step on *v (owned, replaced by the result). Returns 0, or non-zero
 * after the failure was reported (then *v is released). */
static int value_step(rc_engine_t *eng, rc__component *c, int ref, const char *what,
                      rc_value_t **v) {
  if (ref == LUA_NOREF) return 0;
  rc__call call = {.c = c, .ref = ref, .what = what, .arg = *v, .kind = RC__CALL_VALUE};
  int rc = rc__lua_call(eng, &call);
  rc__value_unref(*v);
  *v = rc ? NULL : call.value;
  if (rc)
    rc__trace(eng, c, "%s failed (see the policy.error); the previous value stays", what);
  else
    rc__trace_value(eng, c, what, *v);
  return rc;
}

/* transform -> update -> validate -> filter. Returns 0 with *out (owned), or non-zero
 * when the previous result must stay (failure or rejection, already reported). */
static int pipeline(rc_engine_t *eng, rc__component *c, const rc_value_t *src,
                    rc_value_t **out) {
  /* An absent value is only seen by update (which may compute one from dependencies). */
  rc_value_t *v = rc__value_ref(src);
  if (v && value_step(eng, c, c->transform_ref, "transform", &v)) return 1;
  if (value_step(eng, c, c->update_ref, "update", &v)) return 1;
  if (v && c->validate_ref != LUA_NOREF) {
    rc__call call = {.c = c, .ref = c->validate_ref, .what = "validate", .arg = v,
                     .kind = RC__CALL_VERDICT};
    bool failed = rc__lua_call(eng, &call) != 0;
    if (failed || !call.ok) {
      if (!failed) rc__health_rejected(c);
      rc__trace(eng, c, "validate: rejected (%s); the previous value stays",
                call.reason[0] ? call.reason : "failed");
      if (call.reason[0])
        rc__emit(eng, RC_EVENT_REJECTED, c->name, eng->policy_path, c->line, 0, RC_EPOLICY,
                 "component '%s': new value rejected: %s; the previous value stays",
                 c->name, call.reason);
      rc__value_unref(v);
      return 1;
    }
    rc__trace(eng, c, "validate: accepted");
  }
  if (v && c->filter_ref != LUA_NOREF) {
    rc__call call = {.c = c, .ref = c->filter_ref, .what = "filter", .arg = v,
                     .kind = RC__CALL_BOOL};
    if (rc__lua_call(eng, &call) || !call.ok) {
      rc__trace(eng, c, "filter: dropped the change");
      if (!call.ok)
        rc__emit(eng, RC_EVENT_FILTERED, c->name, eng->policy_path, c->line, 0, 0,
                 "component '%s': change dropped by filter", c->name);
      rc__value_unref(v);
      return 1;
    }
  }
  *out = v;
  return 0;
}

static bool counts(const rc__component *c, const char *path) {
  bool in = c->nonly == 0;
  for (size_t i = 0; !in && i < c->nonly; i++) in = rc__pattern_touches(c->only[i], path);
  for (size_t i = 0; in && i < c->nignore; i++) in = !rc__pattern_match(c->ignore[i], path);
  return in;
}

/* only / ignore: whether the change from the previous result to `v` has a path that
 * counts. When none does, the component keeps its previous result. */
static bool change_counts(rc_engine_t *eng, rc__component *c, const rc_value_t *v) {
  if (!c->nonly && !c->nignore) return true;
  rc__changeset_reset(&eng->cs);
  if (rc__diff(c->result, v, c->name, &eng->cs)) return true;
  rc__diff_finish(&eng->cs);
  for (size_t i = 0; i < eng->cs.n; i++)
    if (counts(c, eng->cs.items[i].path)) return true;
  rc__trace(eng, c, "only/ignore: none of %zu changed paths counts; not applied", eng->cs.n);
  if (eng->cs.n)
    rc__emit(eng, RC_EVENT_FILTERED, c->name, eng->policy_path, c->line, 0, 0,
             "component '%s': %zu %s outside 'only' or inside 'ignore'; not applied",
             c->name, eng->cs.n, eng->cs.n == 1 ? "change" : "changes");
  return false;
}

/* dynamic = false: after the first commit, changed static paths keep their running
 * value and a restart.required event names them. Replaces *vp (owned) with the value to
 * use and returns true, or releases it and returns false when nothing may be applied. */
static bool keep_static(rc_engine_t *eng, rc__component *c, rc_value_t **vp) {
  rc_value_t *v = *vp;
  if (!c->committed || (!c->static_all && !c->nstatic)) return true;
  /* The first value of a static component (one that arrives after revision 1: a late
   * remote answer, a file created later) is applied. */
  if (!c->result) return true;
  char list[768];
  size_t used = 0;
  list[0] = '\0';
  if (c->static_all) {
    rc__changeset_reset(&eng->cs);
    if (!rc__diff(c->result, v, c->name, &eng->cs)) rc__diff_finish(&eng->cs);
    for (size_t i = 0; i < eng->cs.n && used < sizeof list - 1; i++)
      used += (size_t)snprintf(list + used, sizeof list - used, "%s%s", i ? ", " : "",
                               eng->cs.items[i].path);
    bool any = eng->cs.n > 0;
    rc__value_unref(v);
    if (any)
      rc__emit(eng, RC_EVENT_RESTART_REQUIRED, c->name, eng->policy_path, c->line, 0, 0,
               "restart required: %s changed (component '%s' has dynamic = false); the "
               "running value stays", list, c->name);
    *vp = NULL;
    return false;
  }
  size_t nlen = strlen(c->name);
  for (size_t i = 0; i < c->nstatic; i++) {
    const char *full = c->static_paths[i];
    const char *rel = full + nlen + (full[nlen] == '.');
    const rc_value_t *was = c->result ? rc_value_find(c->result, rel) : NULL;
    const rc_value_t *now = v ? rc_value_find(v, rel) : NULL;
    if (was == now || (was && now && rc_value_equal(was, now))) continue;
    if (!was) continue; /* a static path's first value is applied */
    int st;
    rc_value_t *kept = rc__value_with_path(v, rel, rc__value_ref(was), &st);
    if (st) { /* out of memory: apply nothing rather than the static path */
      rc__value_unref(v);
      *vp = NULL;
      return false;
    }
    rc__value_unref(v);
    v = kept;
    if (used < sizeof list - 1)
      used += (size_t)snprintf(list + used, sizeof list - used, "%s%s", used ? ", " : "",
                               full);
  }
  if (used)
    rc__emit(eng, RC_EVENT_RESTART_REQUIRED, c->name, eng->policy_path, c->line, 0, 0,
             "restart required: %s changed (dynamic = false); the running value stays and "
             "the rest of the change is applied", list);
  *vp = v;
  return true;
}

/* Sets the new result if it differs, stamping the change. `v` is consumed. */
static void set_result(rc_engine_t *eng, rc__component *c, rc_value_t *v, bool fresh) {
  if (!differ(eng, c->result, v)) {
    rc__value_unref(v);
    rc__trace(eng, c, fresh && c->force ? "result unchanged; force: notify anyway"
                                        : "result unchanged");
    if (fresh && c->force) c->touched = true;
    return;
  }
  rc__trace_value(eng, c, "new result", v);
  rc__value_unref(c->result);
  c->result = v;
  c->changed_at = ++eng->stamp;
}

static void eval_processed(rc_engine_t *eng, rc__component *c) {
  bool first = !c->evaluated;
  bool fresh = c->dirty;
  bool toggled = false;
  c->dirty = false;
  c->evaluated = true;
  bool deps = first || deps_changed(eng, c);
  c->evaluated_at = eng->stamp;
  if (c->condition_ref != LUA_NOREF) {
    bool active = false;
    int crc = rc__lua_condition(eng, c, &active);
    if (crc == 0)
      rc__trace(eng, c, "condition: %s%s", active ? "true" : "false",
                active != c->active || first ? (active ? " -> activate" : " -> deactivate")
                                              : " (unchanged)");
    if (crc == 0 && (active != c->active || first)) {
      toggled = active != c->active || (first && !active);
      set_active(eng, c, active);
      c->dirty = false; /* what the starting source delivered is used right here */
    }
  }
  if (!c->active) {
    if (toggled || first) set_result(eng, c, rc__value_ref(c->default_value), false);
    return;
  }
  const rc_value_t *src = c->value ? c->value : c->default_value;
  bool src_changed = first || toggled || (fresh && differ(eng, c->seen, src));
  if (!src_changed && !deps) {
    rc__trace(eng, c, "source value unchanged%s", fresh && c->force ? "; force: notify" : "");
    if (fresh && c->force) c->touched = true;
    return;
  }
  rc__value_unref(c->seen);
  c->seen = rc__value_ref(src);
  rc_value_t *v = NULL;
  c->refused = pipeline(eng, c, src, &v) != 0;
  if (c->refused) return;
  if (!first && !toggled && !change_counts(eng, c, v)) {
    rc__value_unref(v);
    return;
  }
  /* A component a policy reload carried over is "committed" on its first evaluation. */
  if (((!first && !toggled) || c->committed) && !keep_static(eng, c, &v)) return;
  set_result(eng, c, v, fresh);
}

/* A plain component nobody reads needs nothing: the wave's own diff finds its changes.
 * One that a dependency or condition reads is stamped when its value really changed. */
static void eval_plain(rc_engine_t *eng, rc__component *c) {
  if (!c->dirty) return;
  c->dirty = false;
  if (!c->read_by_condition && !c->depended_on) {
    c->evaluated = true;
    return;
  }
  const rc_value_t *src = c->value ? c->value : c->default_value;
  if (c->evaluated && !differ(eng, c->seen, src)) return;
  c->evaluated = true;
  rc__value_unref(c->seen);
  c->seen = rc__value_ref(src);
  c->changed_at = ++eng->stamp;
}

int rc__evaluate(rc_engine_t *eng) {
  eng->eval_errors = 0;
  for (size_t i = 0; i < eng->ncomps; i++)
    if (!eng->comps[i]->processed) eval_plain(eng, eng->comps[i]);
  /* Each pass evaluates what is due in dependency order; a further pass is needed only
   * when a condition read a component that changed after it. Every pass but the last
   * changes something, so more passes than components means a cycle of conditions. */
  for (size_t pass = 0; pass <= eng->ncomps + 1; pass++) {
    bool any = false;
    for (size_t k = 0; k < eng->ncomps; k++) {
      rc__component *c = eng->comps[eng->order[k]];
      if (!c->processed) continue;
      if (c->evaluated && !c->dirty && !deps_changed(eng, c) && !reads_changed(eng, c))
        continue;
      any = true;
      eval_processed(eng, c);
    }
    if (!any) return eng->eval_errors;
  }
  eng->eval_errors++;
  rc__emit(eng, RC_EVENT_POLICY_ERROR, NULL, eng->policy_path, 0, 0, RC_EPOLICY,
           "conditions do not settle: components keep switching each other on and off");
  return eng->eval_errors;
}
