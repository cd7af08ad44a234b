/* SPDX-License-Identifier: MIT (see LICENSE) */
/* policy_call.c: calls from the pipeline into a component's policy functions (update,
 * transform, validate, filter, condition, debounce, on_error). Each call is protected
 * and budgeted; a failure becomes a policy.error event naming the component and counts
 * in eng->eval_errors (a reloaded policy whose first wave has any is rejected). */
#include "engine.h"
#include "lvalue.h"

#include <lauxlib.h>
#include <stdio.h>
#include <string.h>

/* ctx[key] on first access: `previous`, `name`, a dependency's value, or a field of the
 * metadata the component's source attached to its latest read (rc__src_set_meta, e.g. a
 * key's `ttl`), in that order; converted then and kept in the table. Lazy because
 * most functions read one or two of them and a conversion costs as much as the call.
 * [-0, +1, m] */
static int l_ctx_index(lua_State *L) {
  const rc__component *c = lua_touserdata(L, lua_upvalueindex(1));
  const char *k = lua_tostring(L, 2);
  if (!k) return 0;
  if (strcmp(k, "previous") == 0) {
    rc__lua_push_value(L, rc__component_value(c));
  } else if (strcmp(k, "name") == 0) {
    lua_pushstring(L, c->name);
  } else {
    const rc__component *d = NULL;
    for (size_t i = 0; i < c->ndeps && !d; i++)
      if (strcmp(c->eng->comps[c->deps[i]]->name, k) == 0) d = c->eng->comps[c->deps[i]];
    if (d) {
      rc__lua_push_value(L, rc__component_value(d));
    } else {
      const rc_value_t *meta = rc__source_meta(c);
      const rc_value_t *m = rc__object_get(meta, k);
      if (!m) return 0;
      rc__lua_push_value(L, m);
    }
  }
  lua_pushvalue(L, 2);
  lua_pushvalue(L, -2);
  lua_rawset(L, 1);
  return 1;
}

/* Pushes ctx for component c: { name, previous, <dependency> = value, ..., <source
 * metadata> }, filled on access. Valid during the call only (it points at c).
 * [-0, +1, m] */
static void push_ctx(lua_State *L, rc_engine_t *eng, const rc__component *c) {
  RC__UNUSED(eng);
  lua_createtable(L, 0, 2);
  lua_createtable(L, 0, 1);
  lua_pushlightuserdata(L, (void *)c);
  lua_pushcclosure(L, l_ctx_index, 1);
  lua_setfield(L, -2, "__index");
  lua_setmetatable(L, -2);
}

/* A ctx kept by the policy past the call (in a closure, say) must not reach the
 * component later: what was not read by then stays unread. [-0, +0, -] */
static void end_ctx(lua_State *L, int idx) {
  lua_pushnil(L);
  lua_setmetatable(L, idx);
}

/* A duration result: milliseconds as a number, or text for reactcfg.duration.
 * [-0, +0, e] */
static uint64_t to_ms(lua_State *L, int idx, const char *what) {
  if (lua_isnil(L, idx)) return 0;
  if (lua_type(L, idx) == LUA_TNUMBER) {
    lua_Number n = lua_tonumber(L, idx);
    if (!(n >= 0 && n <= 86400000.0))
      luaL_error(L, "%s must return a duration between 0 and 24h, got %f", what, n);
    return (uint64_t)(n + 0.5);
  }
  char why[64];
  snprintf(why, sizeof why, "%s must return a duration", what);
  return (uint64_t)(rc__lua_check_duration(L, idx, why) + 0.5);
}

/* Calls fn(arg, ctx) and interprets the results by call->kind. Nothing C-owned exists
 * before the conversion of the result, and nothing raises after it. [-0, +0, e] */
static int l_call(lua_State *L) {
  rc__call *call = lua_touserdata(L, 1);
  rc_engine_t *eng = call->c->eng;
  luaL_checkstack(L, 8, NULL);
  push_ctx(L, eng, call->c);                           /* stack: call, ctx */
  lua_rawgeti(L, LUA_REGISTRYINDEX, call->ref);
  rc__lua_push_value(L, call->arg);
  lua_pushvalue(L, 2);
  lua_call(L, 2, 2);                                   /* stack: call, ctx, r1, r2 */
  end_ctx(L, 2);
  lua_remove(L, 2);                                    /* stack: call, r1, r2 */
  switch (call->kind) {
    case RC__CALL_VALUE: {
      if (lua_isnil(L, 2)) return 0;
      char msg[256];
      rc_value_t *v = rc__lua_to_value(L, 2, RC__LUA_MAX_DEPTH, msg, sizeof msg);
      if (!v) return luaL_error(L, "the result cannot be a config value: %s", msg);
      call->value = v;
      return 0;
    }
    case RC__CALL_VERDICT:
      call->ok = lua_toboolean(L, 2);
      if (!call->ok) {
        const char *why = luaL_tolstring(L, 3, NULL);
        snprintf(call->reason, sizeof call->reason, "%s",
                 lua_isnil(L, 3) ? "rejected by validate" : why);
      }
      return 0;
    case RC__CALL_BOOL:
      call->ok = lua_toboolean(L, 2);
      return 0;
    case RC__CALL_DURATION:
      call->ms = to_ms(L, 2, call->what);
      return 0;
  }
  return 0;
}

/* Reports a failed call: one line, naming component and function. */
static int report(rc_engine_t *eng, rc__component *c, const char *what, rc_error *err) {
  char *nl = strchr(err->message, '\n');
  if (nl) *nl = '\0';
  eng->eval_errors++;
  rc__emit(eng, RC_EVENT_POLICY_ERROR, c->name, eng->policy_path, err->line, 0, err->code,
           "component '%s': %s: %s", c->name, what, err->message);
  return err->code ? err->code : RC_EPOLICY;
}

/* Calls the function and argument on top of the stack, protected, for component `c`
 * (what a print in it names), and records how long it took
 * (policy_eval_duration_seconds). [-2, +0, -] */
static int pcall_timed(rc_engine_t *eng, rc__component *c, rc_error *err) {
  uint64_t t0 = rc__mono_ns();
  rc__component *outer = eng->calling;
  eng->calling = c;
  int rc = rc__lua_pcall(eng->L, 1, 0, err);
  eng->calling = outer;
  rc__observe(&eng->metrics.policy_eval, rc__mono_ns() - t0);
  return rc;
}

int rc__lua_call(rc_engine_t *eng, rc__call *call) {
  call->value = NULL;
  call->ok = true;
  call->reason[0] = '\0';
  call->ms = 0;
  lua_pushcfunction(eng->L, l_call);
  lua_pushlightuserdata(eng->L, call);
  rc_error err = {0};
  if (pcall_timed(eng, call->c, &err) != 0) {
    rc__value_unref(call->value);
    call->value = NULL;
    return report(eng, call->c, call->what, &err);
  }
  return 0;
}

/* ---- conditions ---- */

typedef struct cond_args {
  rc_engine_t *eng;
  rc__component *c;
  bool active;
} cond_args;

/* Remembers that the running condition read component `idx`. */
static void note_read(rc__component *c, int idx) {
  for (size_t i = 0; i < c->nreads; i++)
    if (c->reads[i] == idx) return;
  /* A missed read only costs a later re-evaluation. */
  if (RC__GROW(c->reads, c->reads_cap, c->nreads + 1, 4)) return;
  c->reads[c->nreads++] = idx;
}

/* view[name]: the current value of component `name`, recording the read. */
static int l_view_index(lua_State *L) {
  cond_args *a = lua_touserdata(L, lua_upvalueindex(1));
  size_t len;
  const char *name = lua_type(L, 2) == LUA_TSTRING ? lua_tolstring(L, 2, &len) : NULL;
  if (!name) return 0;
  rc__component *o = rc__component_named(a->eng, name, len);
  if (!o) return luaL_error(L, "condition reads unknown component '%s'", name);
  note_read(a->c, o->index);
  o->read_by_condition = true;
  rc__lua_push_value(L, rc__component_value(o));
  return 1;
}

/* [-0, +0, e] */
static int l_condition(lua_State *L) {
  cond_args *a = lua_touserdata(L, 1);
  lua_newtable(L);                         /* the view: every read goes through __index */
  lua_createtable(L, 0, 1);
  lua_pushlightuserdata(L, a);
  lua_pushcclosure(L, l_view_index, 1);
  lua_setfield(L, -2, "__index");
  lua_setmetatable(L, -2);                 /* stack: a, view */
  lua_rawgeti(L, LUA_REGISTRYINDEX, a->c->condition_ref);
  lua_pushvalue(L, 2);
  lua_call(L, 1, 1);
  end_ctx(L, 2);                           /* `a` lives on the C stack of this call */
  a->active = lua_toboolean(L, -1);
  return 0;
}

int rc__lua_condition(rc_engine_t *eng, rc__component *c, bool *active) {
  cond_args a = {eng, c, false};
  c->nreads = 0;
  lua_pushcfunction(eng->L, l_condition);
  lua_pushlightuserdata(eng->L, &a);
  rc_error err = {0};
  if (pcall_timed(eng, c, &err) != 0) return report(eng, c, "condition", &err);
  *active = a.active;
  return 0;
}

/* ---- on_error ---- */

typedef struct onerr_args {
  rc__component *c;
  int ref;
  const rc_error *err;
  rc__on_error action;
  rc_value_t *value;     /* a fallback value returned by the handler (owned) */
  bool use_value;
} onerr_args;

/* [-0, +0, e] */
static int l_on_error(lua_State *L) {
  onerr_args *a = lua_touserdata(L, 1);
  lua_rawgeti(L, LUA_REGISTRYINDEX, a->ref);
  lua_createtable(L, 0, 6);
  lua_pushstring(L, a->c->name);
  lua_setfield(L, -2, "component");
  lua_pushstring(L, a->err->message);
  lua_setfield(L, -2, "message");
  lua_pushstring(L, a->err->file);
  lua_setfield(L, -2, "file");
  lua_pushinteger(L, a->err->line);
  lua_setfield(L, -2, "line");
  lua_pushstring(L, rc_err_name(a->err->code));
  lua_setfield(L, -2, "code");
  push_ctx(L, a->c->eng, a->c);
  rc__lua_push_value(L, a->c->default_value);
  lua_setfield(L, -2, "default");
  int ctx = lua_gettop(L);
  lua_pushvalue(L, ctx);
  lua_insert(L, ctx - 2);                       /* stack: a, ctx, fn, err, ctx */
  lua_call(L, 2, 1);
  end_ctx(L, 2);
  a->action = RC__ONERR_KEEP;
  if (lua_isnil(L, -1)) return 0;
  if (lua_type(L, -1) == LUA_TSTRING) {
    const char *s = lua_tostring(L, -1);
    if (strcmp(s, "keep") == 0) return 0;
    if (strcmp(s, "default") == 0) {
      a->action = RC__ONERR_DEFAULT;
      return 0;
    }
  }
  char msg[256];
  rc_value_t *v = rc__lua_to_value(L, -1, RC__LUA_MAX_DEPTH, msg, sizeof msg);
  if (!v) return luaL_error(L, "on_error's result cannot be a config value: %s", msg);
  a->value = v;
  a->use_value = true;
  return 0;
}

int rc__lua_on_error(rc_engine_t *eng, rc__component *c, int ref, const rc_error *err,
                     rc__on_error *action, rc_value_t **value) {
  onerr_args a = {.c = c, .ref = ref, .err = err};
  lua_pushcfunction(eng->L, l_on_error);
  lua_pushlightuserdata(eng->L, &a);
  rc_error lerr = {0};
  *value = NULL;
  if (pcall_timed(eng, c, &lerr) != 0) {
    rc__value_unref(a.value);
    *action = RC__ONERR_KEEP;
    return report(eng, c, "on_error", &lerr);
  }
  *action = a.action;
  *value = a.use_value ? a.value : NULL;
  return a.use_value ? 1 : 0;
}
