/* SPDX-License-Identifier: MIT (see LICENSE) */
/* lmodule.c: `require "reactcfg"` from a plain lua5.4. Returns the policy vocabulary plus
 * `reactcfg.engine(policy)`, a real engine run in-process on a private libuv loop that
 * the caller drives with e:run(...), so busted specs can test the whole pipeline with
 * exact counts of commits and events. The engine keeps its own Lua state, as always. */
#include "lmodule.h"
#include "lvalue.h"

#include <lauxlib.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

/* Engines by box address, weak, so C callbacks find the box without keeping it alive. */
static const char BOXES_KEY = 'b';

/* Pushes the weak table of boxes. [-0, +1, m] */
static void push_boxes(lua_State *L) {
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &BOXES_KEY) != LUA_TTABLE) {
    lua_pop(L, 1);
    lua_newtable(L);
    lua_createtable(L, 0, 1);
    lua_pushliteral(L, "v");
    lua_setfield(L, -2, "__mode");
    lua_setmetatable(L, -2);
    lua_pushvalue(L, -1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &BOXES_KEY);
  }
}

/* ---- recording commits and events into the engine's uservalue tables ---- */

typedef struct guarded {
  lengine *b;
  void (*fn)(lengine *b, void *arg);
  void *arg;
} guarded;

/* [-1, +0, m] */
static int l_guarded(lua_State *L) {
  guarded *g = lua_touserdata(L, 1);
  lua_pop(L, 1);
  g->fn(g->b, g->arg);
  return 0;
}

void lengine_guard(lengine *b, void (*fn)(lengine *b, void *arg), void *arg) {
  lua_State *L = b->L;
  if (!L) return;
  if (!lua_checkstack(L, 8)) {
    b->lost++;
    return;
  }
  guarded g = {b, fn, arg};
  lua_pushcfunction(L, l_guarded);
  lua_pushlightuserdata(L, &g);
  if (lua_pcall(L, 1, 0, 0) != LUA_OK) {
    lua_pop(L, 1);
    b->lost++;
  }
}

/* Appends the value at the top to uservalue table `slot` of the box at `box`, when the
 * caller's state is known (inside start/run). [-1, +0, m] */
void push_box(lengine *b) {
  push_boxes(b->L);
  lua_rawgetp(b->L, -1, b);
  lua_remove(b->L, -2);
}

void append(lengine *b, int slot) {
  lua_State *L = b->L;
  push_boxes(L);                               /* stack: item, boxes */
  lua_rawgetp(L, -1, b);                       /* stack: item, boxes, box */
  lua_getiuservalue(L, -1, slot);              /* stack: item, boxes, box, list */
  lua_pushvalue(L, -4);
  lua_Integer n = (lua_Integer)lua_rawlen(L, -2) + 1;
  lua_rawseti(L, -2, n);
  /* History and the undrained queues hold the last `keep`: a host that runs for months
   * must not grow with every commit. The pending trace is drained at each commit. */
  if (slot != SLOT_TRACE && (size_t)n > b->keep) {
    for (lua_Integer i = 1; i < n; i++) {
      lua_rawgeti(L, -1, i + 1);
      lua_rawseti(L, -2, i);
    }
    lua_pushnil(L);
    lua_rawseti(L, -2, n);
  }
  lua_pop(L, 4);
}

/* Keeps the last `keep` committed snapshots of this session for e:get(path,
 * { revision = n }) and e:diff. */
static void keep_snapshot(lengine *b, const rc_snapshot_t *snap) {
  if (b->nrevs && b->nrevs >= b->keep) {
    rc_snapshot_release(b->revs[0]);
    memmove(b->revs, b->revs + 1, (b->nrevs - 1) * sizeof *b->revs);
    b->nrevs--;
  }
  if (RC__GROW(b->revs, b->caprevs, b->nrevs + 1, 64)) return;
  b->revs[b->nrevs++] = rc_snapshot_retain((rc_snapshot_t *)snap);
}

typedef struct commit_rec {
  const rc_snapshot_t *snap;
  const rc_change_t *changes;
  size_t n;
} commit_rec;

/* [-0, +0, m] */
static void record_commit(lengine *b, void *arg) {
  const commit_rec *r = arg;
  const rc_snapshot_t *snap = r->snap;
  lua_State *L = b->L;
  lua_createtable(L, 0, 5);
  lua_pushinteger(L, (lua_Integer)rc_snapshot_revision(snap));
  lua_setfield(L, -2, "revision");
  lua_pushinteger(L, (lua_Integer)rc_snapshot_time_ns(snap));
  lua_setfield(L, -2, "time_ns");
  lua_pushinteger(L, (lua_Integer)(rc__now(b->eng) - b->eng->epoch_ms));
  lua_setfield(L, -2, "at_ms");
  rc__lua_push_changes(L, r->changes, r->n, b->eng);
  lua_setfield(L, -2, "changes");
  /* The decisions since the previous commit become this revision's explanation. */
  lengine_take_trace(b);
  lua_setfield(L, -2, "trace");
  lua_pushvalue(L, -1);
  append(b, SLOT_HISTORY);
  append(b, SLOT_COMMITS);
}

static void on_commit(void *ud, const rc_snapshot_t *snap, const rc_change_t *changes,
                      size_t n) {
  lengine *b = ud;
  keep_snapshot(b, snap);
  commit_rec r = {snap, changes, n};
  lengine_guard(b, record_commit, &r);
}

/* [-0, +0, m] */
static void record_event(lengine *b, void *arg) {
  const rc_event_t *ev = arg;
  lua_State *L = b->L;
  lua_createtable(L, 0, 8);
  lua_pushstring(L, ev->name);
  lua_setfield(L, -2, "event");
  lua_pushstring(L, ev->component);
  lua_setfield(L, -2, "component");
  lua_pushstring(L, ev->message);
  lua_setfield(L, -2, "message");
  lua_pushstring(L, ev->file);
  lua_setfield(L, -2, "file");
  lua_pushinteger(L, ev->line);
  lua_setfield(L, -2, "line");
  lua_pushinteger(L, ev->column);
  lua_setfield(L, -2, "column");
  if (ev->code) {
    lua_pushstring(L, rc_err_name(ev->code));
    lua_setfield(L, -2, "code");
  }
  if (ev->revision) {
    lua_pushinteger(L, (lua_Integer)ev->revision);
    lua_setfield(L, -2, "revision");
  }
  if (ev->reload_id) { /* reload.*, module.*: which reload, why, and how long */
    lua_pushinteger(L, (lua_Integer)ev->reload_id);
    lua_setfield(L, -2, "reload_id");
    lua_pushinteger(L, (lua_Integer)ev->changes);
    lua_setfield(L, -2, "changes");
    lua_pushinteger(L, (lua_Integer)ev->duration_us);
    lua_setfield(L, -2, "duration_us");
  }
  if (ev->trigger[0]) {
    lua_pushstring(L, ev->trigger);
    lua_setfield(L, -2, "trigger");
  }
  if (ev->module[0]) {
    lua_pushstring(L, ev->module);
    lua_setfield(L, -2, "module");
  }
  append(b, SLOT_EVENTS);
}

static void on_event(void *ud, const rc_event_t *ev) {
  lengine *b = ud;
  /* A policy's print still shows in the REPL and the test bench, as it did before it
   * became an event (which e:events() has too). */
  if (ev->type == RC_EVENT_POLICY_LOG) fprintf(stderr, "[policy] %s\n", ev->message);
  if (ev->type != RC_EVENT_COMMIT) lengine_trace_event(b, ev);
  lengine_guard(b, record_event, (void *)ev);
}

/* ---- methods ---- */

lengine *check_engine(lua_State *L) {
  lengine *b = luaL_checkudata(L, 1, ENGINE_MT);
  if (!b->eng) luaL_error(L, "engine is closed");
  return b;
}

static void close_engine(lengine *b) {
  b->close_pending = false;
  for (size_t i = 0; i < b->nrevs; i++) rc_snapshot_release(b->revs[i]);
  rc__free(b->revs);
  b->revs = NULL;
  b->nrevs = b->caprevs = 0;
  if (b->eng) {
    rc_engine_free(b->eng); /* stops, finishes close callbacks on our loop */
    b->eng = NULL;
  }
  if (b->loop_init) {
    /* The loop is ours: close whatever is still open (a policy's luv handles) so that
     * closing the loop cannot wait forever. */
    rc__loop_close_all(&b->loop);
    while (uv_loop_close(&b->loop) == UV_EBUSY) uv_run(&b->loop, UV_RUN_NOWAIT);
    b->loop_init = false;
  }
}

static bool opt_bool(lua_State *L, int idx, const char *k, bool dflt) {
  if (!lua_istable(L, idx)) return dflt;
  lua_getfield(L, idx, k);
  bool v = lua_isnil(L, -1) ? dflt : lua_toboolean(L, -1);
  lua_pop(L, 1);
  return v;
}

/* reactcfg.engine(policy_path [, opts]) -> engine | nil, "policy:line: message", code
 * opts: simulate = true (no source runs: values come from e:push), virtual = true (the
 * scheduler runs on a virtual clock moved by e:advance), reload = false (do not watch
 * the policy file; the default is to watch it unless simulating), trace = true (record
 * decisions for e:explain), initial = { component = value } (simulation: the values
 * revision 1 starts from, as if the sources had read them), allow = { "module", ... }
 * (modules policies may require, rc_engine_allow_module), keep = N (the revisions
 * e:history, e:get(path, { revision }) and e:diff can reach, and the most commits and
 * events e:commits() and e:events() hold undrained: the last N of each; 1000). */
static int l_engine_new(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  bool simulate = opt_bool(L, 2, "simulate", false);
  bool reload = opt_bool(L, 2, "reload", !simulate);
  lengine *b = lua_newuserdatauv(L, sizeof *b, NSLOTS);
  memset(b, 0, sizeof *b);
  b->virtual_clock = opt_bool(L, 2, "virtual", false);
  b->keep = RC__LMODULE_KEEP_DEFAULT;
  if (lua_istable(L, 2)) {
    int t = lua_getfield(L, 2, "keep");
    if (t != LUA_TNIL) {
      if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 1)
        return luaL_argerror(L, 2, "keep must be a whole number of revisions, at least 1");
      b->keep = (size_t)lua_tointeger(L, -1);
    }
    lua_pop(L, 1);
  }
  bool trace = opt_bool(L, 2, "trace", b->virtual_clock || simulate);
  luaL_setmetatable(L, ENGINE_MT);
  for (int slot = 1; slot <= NSLOTS; slot++) {
    lua_newtable(L);
    lua_setiuservalue(L, -2, slot);
  }
  rc_error err = {0};
  b->eng = rc_engine_new(&err);
  if (lua_istable(L, 2)) {
    lua_getfield(L, 2, "initial");
    if (lua_istable(L, -1))
      b->seed_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    else
      lua_pop(L, 1);
  }
  if (b->eng) {
    b->eng->no_sources = simulate;
    if (b->seed_ref) {
      b->eng->seed_fn = lengine_seed;
      b->eng->seed_ud = b;
    }
    rc_engine_set_policy_reload(b->eng, reload);
    if (trace) {
      b->eng->trace_fn = lengine_trace;
      b->eng->trace_ud = b;
    }
  }
  if (!b->eng) {
    luaL_pushfail(L);
    lua_pushstring(L, err.message);
    lua_pushstring(L, rc_err_name(err.code));
    return 3;
  }
  if (lua_istable(L, 2)) {
    int top = lua_gettop(L);
    if (lua_getfield(L, 2, "allow") == LUA_TTABLE)
      for (lua_Integer i = 1; lua_rawgeti(L, top + 1, i) == LUA_TSTRING; i++)
        rc_engine_allow_module(b->eng, lua_tostring(L, -1));
    lua_settop(L, top);
  }
  rc_engine_on_event(b->eng, on_event, b);
  b->sub = rc_subscribe(b->eng, "**", on_commit, b, NULL);
  if (rc_engine_load_policy(b->eng, path, &err) != 0) {
    close_engine(b);
    luaL_pushfail(L);
    if (err.line > 0)
      lua_pushfstring(L, "%s:%d: %s", err.file, err.line, err.message);
    else if (err.file[0] && strncmp(err.message, err.file, strlen(err.file)) != 0)
      lua_pushfstring(L, "%s: %s", err.file, err.message);
    else
      lua_pushstring(L, err.message);
    lua_pushstring(L, rc_err_name(err.code));
    return 3;
  }
  push_boxes(L);
  lua_pushvalue(L, -2);
  lua_rawsetp(L, -2, b); /* so callbacks find the box */
  lua_pop(L, 1);
  return 1;
}

/* e:start() -> true | nil, message, code: attaches to a private loop; commits rev 1. */
static int l_start(lua_State *L) {
  lengine *b = check_engine(L);
  if (!b->loop_init) {
    /* libuv aborts, rather than fails, when its first loop finds no descriptors. */
    int uvrc = rc__fds_free(RC__LOOP_FDS) < RC__LOOP_FDS ? UV_EMFILE : uv_loop_init(&b->loop);
    if (uvrc != 0) return luaL_error(L, "cannot create a libuv loop: %s", uv_strerror(uvrc));
    b->loop_init = true;
  }
  rc_error err = {0};
  b->L = L;
  int rc = rc_engine_attach(b->eng, &b->loop, &err);
  if (!rc && b->virtual_clock) rc__set_virtual_clock(b->eng, true);
  b->L = NULL;
  if (rc) {
    luaL_pushfail(L);
    lua_pushstring(L, err.message);
    lua_pushstring(L, rc_err_name(rc));
    return 3;
  }
  lua_pushboolean(L, 1);
  return 1;
}

/* A duration argument: text ("200ms") or seconds, in ms. Negative, NaN, infinite or
 * absurdly long (over a year) durations are argument errors. [-0, +0, v] */
double duration_arg(lua_State *L, int idx) {
  double ms = lua_type(L, idx) == LUA_TSTRING ? rc__lua_check_duration(L, idx, NULL)
                                              : luaL_checknumber(L, idx) * 1000.0;
  luaL_argcheck(L, isfinite(ms) && ms >= 0 && ms <= 366.0 * 86400e3, idx,
                "a duration from 0 to a year expected");
  return ms;
}

static void timeout_cb(uv_timer_t *t) { *(bool *)t->data = true; }

/* Runs the loop until `stop` is true (or, with a predicate at `pred`, until it returns
 * true). Returns whether the predicate was met. [-0, +0, e] */
bool run_loop(lua_State *L, lengine *b, double ms, int pred) {
  bool expired = false, met = false;
  /* The deadline is kept apart from libuv's clock: uv_now is the time of the last loop
   * turn, which may be long ago (the caller did other things), and a timer armed on it
   * would end at once. */
  uint64_t deadline = uv_hrtime() + (uint64_t)(ms * 1e6);
  uv_timer_t timer;
  uv_timer_init(&b->loop, &timer);
  timer.data = &expired;
  /* The loop's clock stands still between runs: without this, the time a spec spent
   * outside the loop (starting a server, a PUT through curl) would count against the
   * timeout, and a slow moment of the machine would make a run end before it began. */
  uv_update_time(&b->loop);
  uv_timer_start(&timer, timeout_cb, (uint64_t)ceil(ms), 0);
  b->L = L;
  b->running++;
  for (;;) {
    if (pred) {
      lua_pushvalue(L, pred);
      int prc = lua_pcall(L, 0, 1, 0);
      if (prc != LUA_OK) {
        /* Nothing of ours may stay linked in the loop when the error unwinds. */
        uv_close((uv_handle_t *)&timer, NULL);
        uv_run(&b->loop, UV_RUN_NOWAIT);
        b->L = NULL;
        if (--b->running == 0 && b->close_pending) close_engine(b);
        lua_error(L);
      }
      met = lua_toboolean(L, -1);
      lua_pop(L, 1);
      if (met || b->close_pending) break;
    }
    if (expired) {
      uint64_t now = uv_hrtime();
      if (now >= deadline) break;
      expired = false; /* libuv's millisecond clock ran ahead of ours: wait the rest */
      uv_update_time(&b->loop);
      uv_timer_start(&timer, timeout_cb, (deadline - now + 999999) / 1000000, 0);
    }
    uv_run(&b->loop, UV_RUN_ONCE);
  }
  uv_close((uv_handle_t *)&timer, NULL);
  uv_run(&b->loop, UV_RUN_NOWAIT); /* finish the timer's close (may deliver events too) */
  b->L = NULL;
  if (--b->running == 0 && b->close_pending) close_engine(b);
  return met;
}

/* e:run(duration): runs the engine's loop for that long ("200ms", or seconds). */
static int l_run(lua_State *L) {
  lengine *b = check_engine(L);
  if (!b->loop_init) return luaL_error(L, "engine not started (call e:start())");
  run_loop(L, b, duration_arg(L, 2), 0);
  return 0;
}

/* e:run_until(fn, timeout) -> boolean: runs until fn() is true or the timeout passes. */
static int l_run_until(lua_State *L) {
  lengine *b = check_engine(L);
  luaL_checktype(L, 2, LUA_TFUNCTION);
  if (!b->loop_init) return luaL_error(L, "engine not started (call e:start())");
  double ms = lua_isnoneornil(L, 3) ? 5000.0 : duration_arg(L, 3);
  lua_pushboolean(L, run_loop(L, b, ms, 2));
  return 1;
}

/* e:get([path [, { reveal = true, revision = n }]]) -> value | nil: reads the committed
 * snapshot (or revision n of this session), with
 * secret values redacted unless `reveal` is asked for. */
static int l_get(lua_State *L) {
  lengine *b = check_engine(L);
  const char *path = luaL_optstring(L, 2, "");
  bool reveal = false;
  lua_Integer rev = 0;
  if (lua_istable(L, 3)) {
    lua_getfield(L, 3, "reveal");
    reveal = lua_toboolean(L, -1);
    lua_getfield(L, 3, "revision");
    rev = lua_tointeger(L, -1);
    lua_pop(L, 2);
  }
  rc_snapshot_t *s = rev ? lengine_snapshot(b, (uint64_t)rev) : rc_snapshot_acquire(b->eng);
  if (!s)
    return rev ? luaL_error(L, "revision %d is not kept (this session keeps the last %d)",
                            (int)rev, (int)b->keep)
               : 0;
  const rc_value_t *v = *path ? rc_snapshot_get(s, path) : rc_snapshot_root(s);
  rc_value_t *shown = v && !reveal ? rc__redact(b->eng, path, v) : rc__value_ref(v);
  rc_snapshot_release(s);
  if (v && !shown) return luaL_error(L, "not enough memory");
  rc__lua_push_value_owned(L, shown);  /* released even when out of memory raises */
  return 1;
}

static int l_revision(lua_State *L) {
  lengine *b = check_engine(L);
  lua_pushinteger(L, (lua_Integer)rc_engine_revision(b->eng));
  return 1;
}

/* Returns uservalue list `slot` and replaces it with a fresh one. */
static int drain(lua_State *L, int slot) {
  check_engine(L);
  lua_getiuservalue(L, 1, slot);
  lua_newtable(L);
  lua_setiuservalue(L, 1, slot);
  return 1;
}
static int l_commits(lua_State *L) { return drain(L, SLOT_COMMITS); }
static int l_events(lua_State *L) { return drain(L, SLOT_EVENTS); }

/* e:setenv(name, value|nil) */
static int l_setenv(lua_State *L) {
  lengine *b = check_engine(L);
  const char *name = luaL_checkstring(L, 2);
  const char *value = luaL_optstring(L, 3, NULL);
  int rc = rc_engine_setenv(b->eng, name, value);
  if (rc) return luaL_error(L, "setenv(%s): %s", name, rc_strerror(rc));
  return 0;
}

static int l_stop(lua_State *L) {
  lengine *b = check_engine(L);
  rc_engine_stop(b->eng);
  return 0;
}

/* e:close(): stops and frees the engine. From inside e:run_until's predicate it happens
 * when the run returns (the loop is in use). */
static int l_close(lua_State *L) {
  lengine *b = luaL_checkudata(L, 1, ENGINE_MT);
  if (b->running) {
    b->close_pending = true;
    return 0;
  }
  close_engine(b);
  if (b->seed_ref) luaL_unref(L, LUA_REGISTRYINDEX, b->seed_ref);
  b->seed_ref = 0;
  return 0;
}

static const luaL_Reg methods[] = {
  {"start", l_start}, {"run", l_run}, {"run_until", l_run_until}, {"get", l_get},
  {"revision", l_revision}, {"commits", l_commits}, {"events", l_events},
  {"setenv", l_setenv}, {"stop", l_stop}, {"close", l_close}, {NULL, NULL},
};

/* The simulation methods (lmodule_sim.c) join the same metatable. */
static void add_sim_methods(lua_State *L) {
  luaL_setfuncs(L, lengine_sim_methods, 0);
  luaL_setfuncs(L, lengine_reload_methods, 0);
  luaL_setfuncs(L, lengine_ops_methods, 0);
}

__attribute__((visibility("default"))) int luaopen_reactcfg(lua_State *L);

/* [-0, +1, e] */
int luaopen_reactcfg(lua_State *L) {
  rc__lua_preload(L);
  /* Run the vocabulary through its preloader so that `null` and `array_mt` are set. */
  lua_getfield(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
  lua_getfield(L, -1, "reactcfg");
  lua_pushliteral(L, "reactcfg");
  lua_call(L, 1, 1);                        /* stack: preload, M */
  /* A later require "reactcfg" (busted restores package.loaded between files) must come
   * back here, not to the bare vocabulary. */
  lua_pushcfunction(L, luaopen_reactcfg);
  lua_setfield(L, -3, "reactcfg");
  lua_remove(L, -2);
  if (luaL_newmetatable(L, ENGINE_MT)) {
    luaL_newlib(L, methods);
    add_sim_methods(L);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, l_close);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, l_close);
    lua_setfield(L, -2, "__close");
  }
  lua_pop(L, 1);
  lua_pushcfunction(L, l_engine_new);
  lua_setfield(L, -2, "engine");
  luaL_setfuncs(L, lengine_module_funcs, 0);
  return 1;
}
