/* SPDX-License-Identifier: MIT (see LICENSE) */
/* lmodule.h: the Lua module's engine object, shared by lmodule.c (the engine as a Lua
 * value: start, run, get, commits, events) and lmodule_sim.c (simulation: push, virtual
 * time, explain, history). Both are compiled into reactcfg.so and reactcfg-lua only. */
#ifndef RC_LMODULE_H
#define RC_LMODULE_H

#include "engine.h"

#include <lauxlib.h>
#include <lua.h>

#define ENGINE_MT "reactcfg.engine"

/* The userdata's uservalue slots: commits (drained by e:commits), events (drained by
 * e:events), the decisions since the last commit, the history of every commit of the
 * session (with its decisions). */
enum { SLOT_COMMITS = 1, SLOT_EVENTS, SLOT_TRACE, SLOT_HISTORY, NSLOTS = SLOT_HISTORY };

/* The userdata behind an engine object. */
#define RC__LMODULE_KEEP_DEFAULT 1000  /* opts.keep */

typedef struct lengine {
  rc_engine_t *eng;
  uv_loop_t loop;
  bool loop_init;
  lua_State *L;       /* the caller's state while it runs the loop, else NULL */
  int sub;
  bool virtual_clock; /* started on the virtual clock */
  int seed_ref;       /* registry ref of opts.initial ({ component = value }), or 0 */
  rc_snapshot_t **revs; /* the last `keep` committed snapshots (retained), oldest first */
  size_t nrevs, caprevs;
  size_t keep;        /* opts.keep: revisions (and undrained commits and events) kept */
  size_t lost;        /* records (commits, events, decisions) lost to a memory error */
  int running;        /* run_loop depth: e:close() from its predicate is deferred */
  bool close_pending;
} lengine;

/* Runs fn(b, arg) protected on the caller's state b->L (nothing when it is NULL). The
 * engine's callbacks run inside uv_run: a Lua error there must not unwind through
 * libuv, so a memory error is counted in b->lost instead. */
void lengine_guard(lengine *b, void (*fn)(lengine *b, void *arg), void *arg);

/* Appends the value at the top to uservalue list `slot` (when b->L is set). [-1, +0, m] */
void append(lengine *b, int slot);
lengine *check_engine(lua_State *L);
/* Pushes the engine object of `b` (b->L must be set). [-0, +1, -] */
void push_box(lengine *b);
/* A duration argument: "200ms" text or seconds as a number, in ms. */
double duration_arg(lua_State *L, int idx);
/* Runs the loop for `ms` or until the function at `pred` (0: none) returns true. */
bool run_loop(lua_State *L, lengine *b, double ms, int pred);

/* Runs what is due on the loop now: the waves that deliveries or requests scheduled. */
void lengine_settle(lua_State *L, lengine *b);
/* The engine object at argument 1, which must have been started (else a Lua error). */
lengine *lengine_running(lua_State *L);

/* lmodule_sim.c */
extern const luaL_Reg lengine_sim_methods[];
/* rc.parse, rc.diff: module functions of the Lua module (not of the policy sandbox). */
extern const luaL_Reg lengine_module_funcs[];
/* lmodule_reload.c: reload, rollback, unpin, pinned, revisions. */
extern const luaL_Reg lengine_reload_methods[];
/* lmodule_ops.c: metrics, status. */
extern const luaL_Reg lengine_ops_methods[];
/* The engine's trace hook: records one decision (when b->L is set). */
void lengine_trace(void *ud, const char *component, const char *msg);
/* Records an event among the decisions. */
void lengine_trace_event(lengine *b, const rc_event_t *ev);
/* Pushes the decisions since the last commit and starts a new list. [-0, +1, m] */
void lengine_take_trace(lengine *b);
/* The engine's seed hook: delivers opts.initial's values as the initial reads. */
void lengine_seed(void *ud, rc_engine_t *eng);
/* The session's snapshot of revision `rev` (a new reference), or NULL. */
rc_snapshot_t *lengine_snapshot(lengine *b, uint64_t rev);

#endif
