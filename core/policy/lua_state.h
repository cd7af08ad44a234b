/* SPDX-License-Identifier: MIT (see LICENSE) */
/* lua_state.h: the engine's Lua states' bookkeeping, shared by the files of core/policy
 * (private): memory in use and its cap, the time budgets and their defaults, the checks
 * C functions make against the budget, and the library functions replaced by bounded
 * ones (lbounded.c, lpattern.c). */
#ifndef RC_LUA_STATE_H
#define RC_LUA_STATE_H

#include "engine.h"

/* Memory cap of the engine's Lua state; growth past it fails like any allocation. */
#define RC_LUA_MEM_LIMIT ((size_t)512 << 20)
/* Default time budgets: loading a policy, and each later call into it (on_change,
 * callbacks). A policy's `limits` replaces them and the memory cap. */
#define RC_LUA_LOAD_BUDGET_MS 2000
#define RC_LUA_CALL_BUDGET_MS 1000
/* Once a budget is spent, our own modules (lua/reactcfg) working for policy code (a
 * policy's call of rc.merge) may go on this much longer, then they are stopped like
 * policy code; with no policy code on the stack (the loader reporting the error or
 * finishing its normalization), they finish. */
#define RC_LUA_GRACE_MS 5

/* Per-state bookkeeping, reached from the allocator and the hook through the allocator's
 * user data: memory in use and its cap, and the running call's time budget. */
typedef struct lua_mem {
  size_t used, limit;
  uint64_t call_budget_ms, load_budget_ms;  /* the policy's limits (or the defaults) */
  uint64_t deadline_ns;   /* 0: no budget armed */
  uint64_t budget_ms;
  int depth;              /* nested protected calls: only the outermost arms the budget */
  bool expired;
  bool retired;           /* a replaced policy's state: its luv callbacks no longer run */
} lua_mem;

/* The bookkeeping of an engine state `L`. */
lua_mem *rc__lua_mem(lua_State *L);

/* For C functions a policy calls that may loop long (lbounded.c, lpattern.c): raises
 * "stopped: the policy ran longer than its time budget" once the running call's budget
 * is spent; nothing outside a budgeted call or on a state that is not the engine's.
 * [-0, +0, v] */
void rc__lua_budget_check(lua_State *L);

/* Replaces, in the state's own library tables, the functions that could run unbounded
 * in C (the string library's pattern functions and repetitions, table moves and sorts,
 * utf8 scans) by versions that check the budget as they go. [-0, +0, m] (lbounded.c) */
void rc__lua_open_bounded(lua_State *L);
/* string.find, match, gmatch and gsub with Lua's pattern language on a matcher that
 * counts its steps and checks the budget (lpattern.c). [-0, +0, m] */
void rc__lua_open_patterns(lua_State *L);

#endif
