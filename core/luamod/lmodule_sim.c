/* SPDX-License-Identifier: MIT (see LICENSE) */
/* lmodule_sim.c: the engine object's simulation methods, for the REPL, scenario tests
 * and replay: push values into components as if their sources had, move a virtual
 * clock, read the session's history, diff revisions, and explain what the engine decided
 * and why. */
#include "lmodule.h"
#include "lvalue.h"

#include <lauxlib.h>
#include <string.h>

/* ---- the decision log ---- */

typedef struct trace_rec {
  const char *component, *kind, *msg;
} trace_rec;

/* Appends { at_ms, component, kind, message } to the decisions since the last commit.
 * [-0, +0, m] */
static void record_trace(lengine *b, void *arg) {
  const trace_rec *r = arg;
  lua_State *L = b->L;
  lua_createtable(L, 0, 4);
  lua_pushinteger(L, (lua_Integer)(rc__now(b->eng) - b->eng->epoch_ms));
  lua_setfield(L, -2, "at_ms");
  lua_pushstring(L, r->component);
  lua_setfield(L, -2, "component");
  lua_pushstring(L, r->kind);
  lua_setfield(L, -2, "kind");
  lua_pushstring(L, r->msg);
  lua_setfield(L, -2, "message");
  append(b, SLOT_TRACE);
}

void lengine_trace(void *ud, const char *component, const char *msg) {
  trace_rec r = {component, "decision", msg};
  lengine_guard(ud, record_trace, &r);
}

void lengine_trace_event(lengine *b, const rc_event_t *ev) {
  /* A reload's start and end frame the commit it explains, and its modules' decisions
   * are traced as they happen: only a failure is news to the explanation. */
  switch (ev->type) {
    case RC_EVENT_STARTED: case RC_EVENT_STOPPED: case RC_EVENT_RELOAD_STARTED:
    case RC_EVENT_RELOAD_COMPLETED: case RC_EVENT_MODULE_STARTED:
    case RC_EVENT_MODULE_COMPLETED: case RC_EVENT_MODULE_FAILED:
      return;
    default:
      break;
  }
  if (!b->eng->trace_fn) return;
  trace_rec r = {ev->component, ev->name, ev->message};
  lengine_guard(b, record_trace, &r);
}

void lengine_take_trace(lengine *b) {
  lua_State *L = b->L;
  push_box(b);                          /* stack: box */
  lua_getiuservalue(L, -1, SLOT_TRACE); /* stack: box, trace */
  lua_newtable(L);
  lua_setiuservalue(L, -3, SLOT_TRACE);
  lua_remove(L, -2);                    /* stack: trace */
}

/* [-0, +0, m] */
static void seed(lengine *b, void *arg) {
  RC__UNUSED(arg);
  lua_State *L = b->L;
  rc_engine_t *eng = b->eng;
  lua_rawgeti(L, LUA_REGISTRYINDEX, b->seed_ref);
  for (lua_pushnil(L); lua_next(L, -2); lua_pop(L, 1)) {
    rc__component *c = lua_type(L, -2) == LUA_TSTRING
                         ? rc__find_component(eng, lua_tostring(L, -2)) : NULL;
    char msg[256];
    rc_value_t *v = c ? rc__lua_to_value(L, -1, RC__LUA_MAX_DEPTH, msg, sizeof msg) : NULL;
    if (v) rc__deliver(c, v);
  }
  lua_pop(L, 1);
}

void lengine_seed(void *ud, rc_engine_t *eng) {
  lengine *b = ud;
  RC__UNUSED(eng);
  if (b->seed_ref) lengine_guard(b, seed, NULL);
}

rc_snapshot_t *lengine_snapshot(lengine *b, uint64_t rev) {
  for (size_t i = 0; i < b->nrevs; i++)
    if (rc_snapshot_revision(b->revs[i]) == rev) return rc_snapshot_retain(b->revs[i]);
  return NULL;
}

/* ---- pushing ---- */

void lengine_settle(lua_State *L, lengine *b) {
  b->L = L;
  do {
    uv_run(&b->loop, UV_RUN_NOWAIT);
  } while (uv_is_active((uv_handle_t *)&b->eng->wave_timer));
  b->L = NULL;
}

lengine *lengine_running(lua_State *L) {
  lengine *b = check_engine(L);
  if (!b->loop_init || b->eng->state != RC__ST_RUNNING)
    luaL_error(L, "engine not started (call e:start())");
  return b;
}

static int push_result(lua_State *L, int rc, const char *name) {
  if (rc == RC_ENOTFOUND) return luaL_error(L, "no component named '%s'", name);
  if (rc) return luaL_error(L, "push: %s", rc_strerror(rc));
  lua_pushboolean(L, 1);
  return 1;
}

/* e:push(component, value): `value` arrives as if the component's source had delivered
 * it (nil: the source has no value); debounce, throttle and the policy apply. */
static int l_push(lua_State *L) {
  lengine *b = lengine_running(L);
  const char *name = luaL_checkstring(L, 2);
  rc_value_t *v = NULL;
  if (!lua_isnoneornil(L, 3)) {
    char msg[256];
    v = rc__lua_to_value(L, 3, RC__LUA_MAX_DEPTH, msg, sizeof msg);
    if (!v) return luaL_error(L, "push: not a config value: %s", msg);
  }
  b->L = L;
  int rc = rc__push(b->eng, name, v, NULL);
  lengine_settle(L, b);
  return push_result(L, rc, name);
}

/* e:push_text(component, text, format) -> true | nil, "format:line:col: message": text
 * parsed as the source would; malformed text arrives as the source's error. */
static int l_push_text(lua_State *L) {
  lengine *b = lengine_running(L);
  const char *name = luaL_checkstring(L, 2);
  size_t len;
  const char *text = luaL_checklstring(L, 3, &len);
  const char *fname = luaL_optstring(L, 4, "json");
  rc_value_t *v = NULL;
  rc_error err = {0};
  int prc = rc__parse_named(fname, text, len, "(pushed text)", &v, &err);
  if (prc == RC_EINVAL) return luaL_error(L, "push_text: %s", err.message);
  b->L = L;
  int rc = rc__push(b->eng, name, prc ? NULL : v, prc ? &err : NULL);
  lengine_settle(L, b);
  if (prc && rc == 0) {
    luaL_pushfail(L);
    lua_pushfstring(L, "%s:%d:%d: %s", fname, err.line, err.column, err.message);
    return 2;
  }
  return push_result(L, rc, name);
}

/* e:fail(component, message): the component's source reports an error. */
static int l_fail(lua_State *L) {
  lengine *b = lengine_running(L);
  const char *name = luaL_checkstring(L, 2);
  rc_error err = {0};
  rc__err(&err, RC_EIO, NULL, 0, 0, "%s", luaL_checkstring(L, 3));
  b->L = L;
  int rc = rc__push(b->eng, name, NULL, &err);
  lengine_settle(L, b);
  return push_result(L, rc, name);
}

/* ---- time ---- */

/* e:advance(duration): moves the virtual clock, running every debounce and throttle
 * deadline on the way at its own time. */
static int l_advance(lua_State *L) {
  lengine *b = lengine_running(L);
  if (!b->eng->virtual_clock)
    return luaL_error(L, "advance needs the virtual clock (rc.engine(p, { virtual = true }))");
  double ms = duration_arg(L, 2);
  if (ms < 0) return luaL_argerror(L, 2, "a duration cannot be negative");
  b->L = L;
  rc__advance(b->eng, (uint64_t)(ms + 0.5));
  lengine_settle(L, b);
  return 0;
}

/* e:now() -> ms since the engine started, on the scheduler's clock (virtual or real). */
static int l_now(lua_State *L) {
  lengine *b = lengine_running(L);
  lua_pushinteger(L, (lua_Integer)(rc__now(b->eng) - b->eng->epoch_ms));
  return 1;
}

/* e:live(duration): real sources and real time for that long, then virtual again. */
static int l_live(lua_State *L) {
  lengine *b = lengine_running(L);
  double ms = duration_arg(L, 2);
  bool was = b->eng->virtual_clock;
  rc__set_virtual_clock(b->eng, false);
  run_loop(L, b, ms, 0);
  if (was) rc__set_virtual_clock(b->eng, true);
  return 0;
}

/* ---- looking around ---- */

static const char *state_of(const rc_engine_t *eng, const rc__component *c) {
  if (!c->active) return "inactive";
  if (c->in_error) return "error";
  if (eng->sched.slots && eng->sched.slots[c->index].held) return "throttled";
  if (c->has_pending) return "debouncing";
  return "active";
}

/* e:components() -> array of { name, source, state, processed, present } in
 * declaration order. */
static int l_components(lua_State *L) {
  lengine *b = lengine_running(L);
  rc_engine_t *eng = b->eng;
  lua_createtable(L, (int)eng->ncomps, 0);
  for (size_t i = 0; i < eng->ncomps; i++) {
    const rc__component *c = eng->comps[i];
    lua_createtable(L, 0, 6);
    lua_pushstring(L, c->name);
    lua_setfield(L, -2, "name");
    lua_pushfstring(L, "%s(%s)", c->kind->name, c->target ? c->target : "");
    lua_setfield(L, -2, "source");
    lua_pushstring(L, state_of(eng, c));
    lua_setfield(L, -2, "state");
    lua_pushboolean(L, c->processed);
    lua_setfield(L, -2, "processed");
    lua_pushboolean(L, rc__component_value(c) != NULL);
    lua_setfield(L, -2, "present");
    lua_pushboolean(L, c->secret_all || c->nsecret);
    lua_setfield(L, -2, "secret");
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
  return 1;
}

/* e:history() -> array of { revision, at_ms, time_ns, changes, trace } of the session. */
static int l_history(lua_State *L) {
  check_engine(L);
  lua_getiuservalue(L, 1, SLOT_HISTORY);
  size_t n = lua_rawlen(L, -1);
  lua_createtable(L, (int)n, 0);
  for (size_t i = 1; i <= n; i++) {
    lua_rawgeti(L, -2, (lua_Integer)i);
    lua_rawseti(L, -2, (lua_Integer)i);
  }
  return 1;
}

/* e:pending_trace() -> the decisions since the last commit. */
static int l_pending_trace(lua_State *L) {
  check_engine(L);
  lua_getiuservalue(L, 1, SLOT_TRACE);
  return 1;
}

/* e:diff(rev_a, rev_b) -> array of { path, kind, old, new } between two revisions of
 * this session (secrets redacted). */
static int l_diff(lua_State *L) {
  lengine *b = check_engine(L);
  lua_Integer ra = luaL_checkinteger(L, 2), rb = luaL_checkinteger(L, 3);
  rc_snapshot_t *a = lengine_snapshot(b, (uint64_t)ra);
  rc_snapshot_t *s = lengine_snapshot(b, (uint64_t)rb);
  if (!a || !s) {
    rc_snapshot_release(a);
    rc_snapshot_release(s);
    return luaL_error(L, "revision %d is not kept (this session keeps the last %d)",
                      (int)(a ? rb : ra), (int)b->keep);
  }
  rc__changeset cs;
  rc__changeset_init(&cs);
  int rc = rc__diff(a->root, s->root, "", &cs);
  if (!rc) rc__diff_finish(&cs);
  for (size_t i = 0; !rc && i < cs.n; i++)
    cs.items[i].secret = rc__path_is_secret(b->eng, cs.items[i].path);
  if (!rc) rc__lua_push_changes(L, cs.items, cs.n, b->eng);
  rc__changeset_free(&cs);
  rc_snapshot_release(a);
  rc_snapshot_release(s);
  if (rc) return luaL_error(L, "not enough memory");
  return 1;
}

const luaL_Reg lengine_sim_methods[] = {
  {"push", l_push}, {"push_text", l_push_text}, {"fail", l_fail}, {"advance", l_advance},
  {"now", l_now}, {"live", l_live}, {"components", l_components}, {"history", l_history},
  {"pending_trace", l_pending_trace}, {"diff", l_diff}, {NULL, NULL},
};

/* ---- module functions for the REPL and scenarios ---- */

/* rc.diff(a, b) -> array of { path, kind, old, new }: what changed from a to b. */
static int l_diff_values(lua_State *L) {
  char msg[256];
  rc_value_t *a = lua_isnoneornil(L, 1) ? NULL : rc__lua_to_value(L, 1, RC__LUA_MAX_DEPTH, msg, sizeof msg);
  if (!lua_isnoneornil(L, 1) && !a) return luaL_error(L, "diff: first value: %s", msg);
  rc_value_t *b = lua_isnoneornil(L, 2) ? NULL : rc__lua_to_value(L, 2, RC__LUA_MAX_DEPTH, msg, sizeof msg);
  if (!lua_isnoneornil(L, 2) && !b) {
    rc__value_unref(a);
    return luaL_error(L, "diff: second value: %s", msg);
  }
  rc__changeset cs;
  rc__changeset_init(&cs);
  int rc = rc__diff(a, b, "", &cs);
  if (!rc) {
    rc__diff_finish(&cs);
    rc__lua_push_changes(L, cs.items, cs.n, NULL);
  }
  rc__changeset_free(&cs);
  rc__value_unref(a);
  rc__value_unref(b);
  if (rc) return luaL_error(L, "not enough memory");
  return 1;
}

const luaL_Reg lengine_module_funcs[] = {
  {"parse", rc__lua_parse}, {"diff", l_diff_values}, {NULL, NULL},
};
