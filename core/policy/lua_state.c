/* SPDX-License-Identifier: MIT (see LICENSE) */
/* lua_state.c: the engine's Lua states (one per policy version): an allocator with a
 * cap, protected calls with a message handler and a time budget nothing in the policy
 * can swallow, their creation with our modules preloaded and the unbounded library
 * functions replaced, luv sharing the engine's loop, and retiring a replaced version's
 * state (its luv handles closed, its requests finished) before it is closed. Every call
 * into Lua from C goes through rc__lua_pcall. */
#include "lua_state.h"
#include "lvalue.h"

#include <lauxlib.h>
#include <lualib.h>
#include <luv/luv.h>
#include <string.h>

extern int luaopen_cjson(lua_State *L);

static const char ENGINE_KEY = 'e'; /* registry: light userdata rc_engine_t* */

static void *lua_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  lua_mem *m = ud;
  if (!ptr) osize = 0;
  if (nsize == 0) {
    m->used -= osize;
    rc__free(ptr);
    return NULL;
  }
  if (nsize > osize && m->used + (nsize - osize) > m->limit) return NULL;
  void *p = rc__realloc(ptr, nsize);
  if (p) m->used = m->used - osize + nsize;
  return p;
}

lua_mem *rc__lua_mem(lua_State *L) {
  void *ud;
  lua_getallocf(L, &ud);
  return ud;
}

/* ---- protected calls ---- */

/* Message handler: keeps error tables as they are, adds a traceback to strings. */
static int msgh(lua_State *L) {
  if (lua_type(L, 1) == LUA_TTABLE) return 1;
  const char *msg = lua_tostring(L, 1);
  if (!msg) {
    if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING) return 1;
    msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
  }
  luaL_traceback(L, L, msg, 1);
  return 1;
}

/* Fills the rc_error (light userdata 2, with its code already set) from the error value
 * 1: a table { message, line } from the loader (read raw: a policy's error object may
 * have metamethods), or a string "chunk:line: message\nstack traceback...".
 * [-0, +0, m] */
static int l_error_text(lua_State *L) {
  rc_error *err = lua_touserdata(L, 2);
  if (lua_type(L, 1) == LUA_TTABLE) {
    lua_pushliteral(L, "message");
    lua_rawget(L, 1);
    lua_pushliteral(L, "line");
    lua_rawget(L, 1);
    const char *msg = lua_tostring(L, -2);
    int line = (int)lua_tointeger(L, -1);
    rc__err(err, err->code, NULL, line, 0, "%s", msg ? msg : "error");
    return 0;
  }
  const char *msg = lua_tostring(L, 1);
  rc__err(err, err->code, NULL, 0, 0, "%s", msg ? msg : "error (not a string)");
  return 0;
}

/* Fills `err` from the error value at the top (see l_error_text), protected: reading it
 * may need memory. [-0, +0, -] */
static void error_from_lua(lua_State *L, int status, rc_error *err) {
  rc_error tmp = {0};
  tmp.code = status == LUA_ERRMEM ? RC_ENOMEM : RC_EPOLICY;
  if (lua_checkstack(L, 6)) {
    lua_pushcfunction(L, l_error_text);
    lua_pushvalue(L, -2);
    lua_pushlightuserdata(L, &tmp);
    if (lua_pcall(L, 2, 0, 0) == LUA_OK) {
      if (err) *err = tmp;
      return;
    }
    lua_pop(L, 1);
  }
  rc__err(err, tmp.code, NULL, 0, 0, "%s",
          status == LUA_ERRMEM ? "not enough memory" : "error (its message could not be read)");
}

/* The bookkeeping of `L` when it is an engine state (our allocator), else NULL: the
 * bounded library functions also run in states that are not ours (none today, but the
 * check must not read a stranger's allocator data as ours). */
static lua_mem *engine_mem(lua_State *L) {
  void *ud;
  return lua_getallocf(L, &ud) == lua_alloc ? ud : NULL;
}

/* Raises the budget error at `level` (0: the interrupted function, in a hook; 1: the
 * caller of a C function). Switches this thread to the sticky hook first. [-0, +0, v] */
static int budget_error(lua_State *L, lua_mem *m, int level);

static bool ours(const char *source) { return strncmp(source, "@lua/reactcfg/", 14) == 0; }

/* Whether a Lua function of the policy (not of our modules) is running on L's stack. */
static bool policy_on_stack(lua_State *L) {
  lua_Debug d;
  for (int level = 0; lua_getstack(L, level, &d); level++) {
    if (lua_getinfo(L, "S", &d) && d.what[0] != 'C' && !ours(d.source)) return true;
  }
  return false;
}

/* Count hook: every thousand instructions, compare the clock with the deadline. Once past
 * it, the hook re-arms on every line and instruction of each thread it fires in, so the
 * error is raised again right after any pcall in the policy that caught it (and in any
 * coroutine that resumes): the budget cannot be swallowed. Threads inherit the hook when
 * created, and coroutines can only be created while a budget is armed. */
static void budget_hook(lua_State *L, lua_Debug *ar) {
  lua_mem *m = engine_mem(L);
  if (!m || m->deadline_ns == 0) return;
  uint64_t now = rc__mono_ns();
  if (!m->expired) {
    if (now < m->deadline_ns) return;
    m->expired = true;
  }
  /* Our own modules may finish what no policy code asked for (the loader reporting
   * the error, or normalizing a large policy after it returned: bounded by what the
   * policy built within its budget); when they work for policy code below them on the
   * stack (rc.copy of a table shared a million times), they get a short grace. With no
   * policy code on the stack the hook goes back to every thousand instructions: walking
   * the stack on each one made a large policy's normalizing ten times slower once its
   * load passed the budget. Policy code called again is caught within those thousand. */
  if (!policy_on_stack(L)) {
    if (lua_gethookcount(L) != 1000) lua_sethook(L, budget_hook, LUA_MASKCOUNT, 1000);
    return;
  }
  if (lua_gethookcount(L) != 1) lua_sethook(L, budget_hook, LUA_MASKCOUNT | LUA_MASKLINE, 1);
  if (now < m->deadline_ns + RC_LUA_GRACE_MS * 1000000u && lua_getinfo(L, "S", ar) &&
      ours(ar->source))
    return;
  budget_error(L, m, 0);
}

static int budget_error(lua_State *L, lua_mem *m, int level) {
  m->expired = true;
  if (lua_gethookcount(L) != 1) lua_sethook(L, budget_hook, LUA_MASKCOUNT | LUA_MASKLINE, 1);
  /* Name the policy's line: the nearest policy function on the stack, when our own
   * module or a library function was running for it. */
  lua_Debug d;
  for (int l = level; lua_getstack(L, l, &d); l++) {
    if (lua_getinfo(L, "S", &d) && d.what[0] != 'C' && !ours(d.source)) {
      level = l;
      break;
    }
  }
  luaL_where(L, level);
  lua_pushfstring(L, "stopped: the policy ran longer than its time budget of %d ms",
                  (int)m->budget_ms);
  lua_concat(L, 2);
  return lua_error(L);
}

void rc__lua_budget_check(lua_State *L) {
  lua_mem *m = engine_mem(L);
  if (m && m->deadline_ns && (m->expired || rc__mono_ns() >= m->deadline_ns))
    budget_error(L, m, 1);
}

/* For the value conversions of core/lua (lvalue.c), which must not raise: whether the
 * running call's budget is spent. */
static bool budget_spent(lua_State *L) {
  lua_mem *m = engine_mem(L);
  return m && m->deadline_ns && (m->expired || rc__mono_ns() >= m->deadline_ns);
}

static void unref_value(void *v) { rc__value_unref(v); }

/* For the same conversions: what one stopped by the budget had built goes to the
 * engine's reaper (freed on its thread), not freed on the loop. */
static void dispose_value(lua_State *L, rc_value_t *v) {
  rc_engine_t *eng = rc__lua_engine(L);
  if (eng)
    rc__reap(&eng->reaper, unref_value, v);
  else
    rc__value_unref(v);
}

void rc__lua_budget_arm(lua_State *L, uint64_t budget_ms) {
  lua_mem *m = rc__lua_mem(L);
  if (m->depth++ == 0) {
    m->expired = false;
    m->budget_ms = budget_ms;
    m->deadline_ns = rc__mono_ns() + budget_ms * 1000000u;
    lua_sethook(L, budget_hook, LUA_MASKCOUNT, 1000);
  }
}

void rc__lua_budget_disarm(lua_State *L) {
  lua_mem *m = rc__lua_mem(L);
  if (--m->depth == 0) {
    lua_sethook(L, NULL, 0, 0);
    m->deadline_ns = 0;
    m->expired = false;
  }
}

int rc__lua_pcall_budget(lua_State *L, int nargs, int nres, uint64_t budget_ms,
                         rc_error *err) {
  rc__lua_budget_arm(L, budget_ms);
  int base = lua_gettop(L) - nargs; /* the function's index */
  lua_pushcfunction(L, msgh);
  lua_insert(L, base);
  int status = lua_pcall(L, nargs, nres, base);
  lua_remove(L, base);
  rc__lua_budget_disarm(L);
  if (status != LUA_OK) {
    error_from_lua(L, status, err);
    lua_pop(L, 1);
    return status == LUA_ERRMEM ? RC_ENOMEM : RC_EPOLICY;
  }
  return 0;
}

int rc__lua_pcall(lua_State *L, int nargs, int nres, rc_error *err) {
  return rc__lua_pcall_budget(L, nargs, nres, rc__lua_mem(L)->call_budget_ms, err);
}

/* ---- small helpers for C that calls our Lua modules ---- */

void rc__lua_require_field(lua_State *L, const char *module, const char *field) {
  lua_getglobal(L, "require");
  lua_pushstring(L, module);
  lua_call(L, 1, 1);
  lua_getfield(L, -1, field);
  lua_remove(L, -2);
}

double rc__lua_check_duration(lua_State *L, int idx, const char *what) {
  idx = lua_absindex(L, idx);
  rc__lua_require_field(L, "reactcfg.duration", "parse");
  lua_pushvalue(L, idx);
  lua_call(L, 1, 2);
  if (lua_isnil(L, -2)) {
    if (!what) luaL_argerror(L, idx, lua_tostring(L, -1));
    luaL_error(L, "%s: %s", what, lua_tostring(L, -1));
  }
  double ms = lua_tonumber(L, -2);
  lua_pop(L, 2);
  return ms;
}

/* The global `load` of an engine state: text only, whatever mode is asked for. Our own
 * modules and modules an embedder allows may load text; nothing loads binary chunks,
 * which could break the VM's assumptions. [-?, +?, e] */
static int l_load_text(lua_State *L) {
  int n = lua_gettop(L);
  while (n < 2) {
    lua_pushnil(L);
    n++;
  }
  lua_pushliteral(L, "t");
  if (n >= 3) lua_replace(L, 3);                  /* mode = "t", env kept as given */
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
  return lua_gettop(L);
}

/* What no code in an engine state needs and a policy must never reach by any route:
 * string.dump (also reachable as ("").dump), binary chunks, files run by name. The
 * string metatable is protected, so getmetatable("") gives no way to the real library
 * table. [-0, +0, m] */
static void close_escapes(lua_State *L) {
  lua_getglobal(L, "string");
  lua_pushnil(L);
  lua_setfield(L, -2, "dump");
  lua_pop(L, 1);
  lua_pushnil(L);
  lua_setglobal(L, "loadfile");
  lua_pushnil(L);
  lua_setglobal(L, "dofile");
  lua_getglobal(L, "load");
  lua_pushcclosure(L, l_load_text, 1);
  lua_setglobal(L, "load");
  lua_pushliteral(L, "");
  lua_getmetatable(L, -1);                           /* stack: "", mt */
  lua_pushliteral(L, "string");
  lua_setfield(L, -2, "__metatable");
  lua_pop(L, 2);
}

/* Opens the standard libraries, cjson and our preloads, replaces what could run
 * unbounded or escape, and records the engine (the light userdata argument) in the
 * registry. [-1, +0, e] */
static int l_init_state(lua_State *L) {
  lua_rawsetp(L, LUA_REGISTRYINDEX, &ENGINE_KEY);
  luaL_openlibs(L);
  luaL_requiref(L, "cjson", luaopen_cjson, 0);
  lua_pop(L, 1);
  rc__lua_open_patterns(L);
  rc__lua_open_bounded(L);
  close_escapes(L);
  rc__lua_set_hooks(L, &(rc__lua_hooks){budget_spent, dispose_value});
  rc__lua_preload(L);
  return 0;
}

/* sandbox.allow(name) for the embedder's allowed module `name` (argument 1). [-1, +0, e] */
static int l_allow(lua_State *L) {
  rc__lua_require_field(L, "reactcfg.sandbox", "allow");
  lua_pushvalue(L, 1);
  lua_call(L, 1, 0);
  return 0;
}

int rc__lua_allow(lua_State *L, const char *name, rc_error *err) {
  if (!lua_checkstack(L, 2)) return rc__err(err, RC_ENOMEM, NULL, 0, 0, "out of memory");
  lua_pushcfunction(L, l_allow);
  lua_pushstring(L, name);
  return rc__lua_pcall(L, 1, 0, err);
}

lua_State *rc__lua_new_state(rc_engine_t *eng) {
  lua_mem *m = rc__malloc(sizeof *m);
  if (!m) return NULL;
  memset(m, 0, sizeof *m);
  m->limit = RC_LUA_MEM_LIMIT;
  m->call_budget_ms = RC_LUA_CALL_BUDGET_MS;
  m->load_budget_ms = RC_LUA_LOAD_BUDGET_MS;
  lua_State *L = lua_newstate(lua_alloc, m);
  if (!L) {
    rc__free(m);
    return NULL;
  }
  lua_pushcfunction(L, l_init_state);
  lua_pushlightuserdata(L, eng);
  if (rc__lua_pcall(L, 1, 0, NULL) != 0) {
    rc__lua_close(L);
    return NULL;
  }
  /* The modules the embedder allowed (rc_engine_allow_module), for every version. */
  for (size_t i = 0; eng && i < eng->nallowed; i++) {
    if (rc__lua_allow(L, eng->allowed[i], NULL) != 0) {
      rc__lua_close(L);
      return NULL;
    }
  }
  return L;
}

void rc__lua_close(lua_State *L) {
  if (!L) return;
  void *ud;
  lua_getallocf(L, &ud);
  lua_close(L);
  rc__free(ud);
}

/* ---- luv on the engine's loop ---- */

rc_engine_t *rc__lua_engine(lua_State *L) {
  lua_rawgetp(L, LUA_REGISTRYINDEX, &ENGINE_KEY);
  rc_engine_t *eng = lua_touserdata(L, -1);
  lua_pop(L, 1);
  return eng;
}

/* luv calls this for every Lua callback (timers, handles). luv's default exits the
 * process on an uncaught error; we report it as a policy.error event instead. A retired
 * state's callbacks (requests finishing, handles closing after its policy was replaced)
 * are dropped: that version's code no longer runs. Returns the number of results, or a
 * negative status (as luv_cfpcall does). */
static int luv_callback_pcall(lua_State *L, int nargs, int nresult, int flags) {
  RC__UNUSED(flags);
  int top = lua_gettop(L) - nargs - 1;
  if (rc__lua_mem(L)->retired) {
    lua_settop(L, top);
    if (nresult == LUA_MULTRET || !lua_checkstack(L, nresult)) return 0;
    for (int i = 0; i < nresult; i++) lua_pushnil(L);
    return nresult;
  }
  rc_error err = {0};
  if (rc__lua_pcall(L, nargs, nresult, &err) != 0) {
    rc_engine_t *eng = rc__lua_engine(L);
    if (eng) rc__emit(eng, RC_EVENT_POLICY_ERROR, NULL, eng->policy_path, err.line, 0,
                      RC_EPOLICY, "error in a Lua callback: %s", err.message);
    return -LUA_ERRRUN;
  }
  return nresult == LUA_MULTRET ? lua_gettop(L) - top : nresult;
}

static int l_open_luv(lua_State *L) {
  luaL_requiref(L, "luv", luaopen_luv, 0);
  return 0;
}

int rc__lua_open_luv_on(lua_State *L, uv_loop_t *loop, rc_error *err) {
  luv_set_loop(L, loop);
  luv_set_callback(L, luv_callback_pcall);
  lua_pushcfunction(L, l_open_luv);
  return rc__lua_pcall(L, 0, 0, err);
}

int rc__lua_open_luv(rc_engine_t *eng, rc_error *err) {
  return rc__lua_open_luv_on(eng->L, eng->loop, err);
}

/* ---- retiring a replaced version's state ---- */

/* Counts the luv handles and requests of the state that are still alive (luv keeps each
 * referenced from the registry until its close callback or completion ran); with
 * argument 1 true, first closes every handle not yet closing and cancels every request.
 * luv marks its handle metatables in registry["uv_handle"] and its requests with
 * registry["uv_req"]. Returns the count. [-1, +1, e] */
static int l_luv_live(lua_State *L) {
  bool stop = lua_toboolean(L, 1);
  lua_settop(L, 0);
  lua_Integer live = 0;
  lua_getfield(L, LUA_REGISTRYINDEX, "uv_handle");     /* stack: handles */
  lua_getfield(L, LUA_REGISTRYINDEX, "uv_req");        /* stack: handles, req_mt */
  if (!lua_istable(L, 1)) {                            /* luv was never opened */
    lua_pushinteger(L, 0);
    return 1;
  }
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
  lua_getfield(L, -1, "luv");                          /* stack: handles, req_mt, loaded, luv */
  lua_pushnil(L);
  while (lua_next(L, LUA_REGISTRYINDEX)) {             /* stack: ..., key, value */
    if (lua_type(L, -1) == LUA_TUSERDATA && lua_getmetatable(L, -1)) {
      bool is_req = lua_rawequal(L, -1, 2);
      lua_rawget(L, 1);                                /* stack: ..., key, value, flag */
      bool is_handle = lua_toboolean(L, -1);
      lua_pop(L, 1);
      if (is_handle || is_req) live++;
      if (stop && is_handle) {
        lua_getfield(L, -1, "is_closing");
        lua_pushvalue(L, -2);
        lua_call(L, 1, 1);
        bool closing = lua_toboolean(L, -1);
        lua_pop(L, 1);
        if (!closing) {
          lua_getfield(L, -1, "close");
          lua_pushvalue(L, -2);
          lua_call(L, 1, 0);
        }
      } else if (stop && is_req && lua_istable(L, 4)) {
        lua_getfield(L, 4, "cancel");                  /* too late for most: harmless */
        lua_pushvalue(L, -2);
        lua_pcall(L, 1, 0, 0);
        lua_settop(L, 6);
      }
    }
    lua_pop(L, 1);                                     /* stack: ..., key */
  }
  lua_pushinteger(L, live);
  return 1;
}

/* The live luv handles and requests of L (stopping them when `stop`); -1 when they
 * could not be counted (out of memory: treated as "some"). */
static int luv_live(lua_State *L, bool stop) {
  if (!lua_checkstack(L, 3)) return -1;
  lua_pushcfunction(L, l_luv_live);
  lua_pushboolean(L, stop);
  if (rc__lua_pcall(L, 1, 1, NULL) != 0) return -1;
  int n = (int)lua_tointeger(L, -1);
  lua_pop(L, 1);
  return n;
}

/* A state waiting for its luv handles to close and its requests to finish. */
typedef struct rc__retiring {
  uv_timer_t timer;
  rc_engine_t *eng;
  lua_State *L;
  struct rc__retiring *next;
} rc__retiring;

static void unlink_retiring(rc__retiring *r) {
  for (rc__retiring **p = (rc__retiring **)&r->eng->retiring; *p; p = &(*p)->next) {
    if (*p == r) {
      *p = r->next;
      return;
    }
  }
}

/* rc__reap's callback: a retired state has no luv handle or request left, so closing
 * it touches nothing of the loop's; its own finalizers release snapshots and reload
 * handles, which any thread may do. */
static void close_retired(void *L) { rc__lua_close(L); }

static void retiring_closed(uv_handle_t *h) {
  rc__retiring *r = h->data;
  rc_engine_t *eng = r->eng;
  unlink_retiring(r);
  rc__reap(&eng->reaper, close_retired, r->L);
  rc__free(r);
  rc__handle_closed(eng);
}

static void retiring_tick(uv_timer_t *t) {
  rc__retiring *r = t->data;
  if (luv_live(r->L, false) != 0) return;
  uv_timer_stop(t);
  uv_close((uv_handle_t *)t, retiring_closed);
}

void rc__lua_retire(rc_engine_t *eng, lua_State *L) {
  if (!L) return;
  rc__lua_mem(L)->retired = true;
  int live = luv_live(L, true);
  if (live == 0 && eng) {
    rc__reap(&eng->reaper, close_retired, L);
    return;
  }
  if (!eng || !eng->loop) {
    rc__lua_close(L);
    return;
  }
  /* Its luv handles close and its requests finish on the loop: close the state once
   * none is left (a timer, counted as an engine handle so that free waits for it). */
  rc__retiring *r = rc__calloc(1, sizeof *r);
  if (r && uv_timer_init(eng->loop, &r->timer) == 0) {
    r->eng = eng;
    r->L = L;
    r->timer.data = r;
    r->next = eng->retiring;
    eng->retiring = r;
    rc__handle_opened(eng);
    uv_timer_start(&r->timer, retiring_tick, 1, 1);
    return;
  }
  rc__free(r);
  /* No timer: closing the state now would leave luv's callbacks pointing into freed
   * memory, so it is kept (and leaked) rather than closed. Out of memory only. */
}

void rc__lua_retired_close_all(rc_engine_t *eng) {
  /* The loop is gone or ran dry: no luv callback can come any more. A timer still
   * listed was closed by rc__loop_close_all without our callback. */
  while (eng->retiring) {
    rc__retiring *r = eng->retiring;
    eng->retiring = r->next;
    rc__lua_close(r->L);
    rc__free(r);
  }
}
