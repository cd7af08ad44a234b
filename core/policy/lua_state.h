/* lua_state.h: the engine's Lua state's bookkeeping, shared by the files of core/policy
 * (private): memory in use and its cap, the time budgets, and their defaults. */
#ifndef RC_LUA_STATE_H
#define RC_LUA_STATE_H

#include "engine.h"

/* Memory cap of the engine's Lua state; growth past it fails like any allocation. */
#define RC_LUA_MEM_LIMIT ((size_t)512 << 20)
/* Default time budgets: loading a policy, and each later call into it (on_change,
 * callbacks). A policy's `limits` replaces them and the memory cap. */
#define RC_LUA_LOAD_BUDGET_MS 2000
#define RC_LUA_CALL_BUDGET_MS 1000

/* Per-state bookkeeping, reached from the allocator and the hook through the allocator's
 * user data: memory in use and its cap, and the running call's time budget. */
typedef struct lua_mem {
  size_t used, limit;
  uint64_t call_budget_ms, load_budget_ms;  /* the policy's limits (or the defaults) */
  uint64_t deadline_ns;   /* 0: no budget armed */
  uint64_t budget_ms;
  int depth;              /* nested protected calls: only the outermost arms the budget */
  bool expired;
} lua_mem;

/* The bookkeeping of the engine's state `L`. */
lua_mem *rc__lua_mem(lua_State *L);

#endif
