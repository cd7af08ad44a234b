/* lua_state.c: the engine's Lua state: an allocator with a cap, protected calls with a
 * message handler and a time budget nothing in the policy can swallow, its creation with
 * our modules preloaded, and luv sharing the engine's loop. Every call into Lua from C
 * goes through rc__lua_pcall. */
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

/* Count hook: every few thousand instructions, compare the clock with the deadline. Once
 * past it, the hook re-arms on every line and count so the error is raised again right
 * after any pcall in the policy that caught it: the budget cannot be swallowed. */
static void budget_hook(lua_State *L, lua_Debug *ar) {
  void *ud;
  lua_getallocf(L, &ud);
  lua_mem *m = ud;
  if (!m->expired) {
    if (m->deadline_ns == 0 || rc__mono_ns() < m->deadline_ns) return;
    m->expired = true;
    lua_sethook(L, budget_hook, LUA_MASKCOUNT | LUA_MASKLINE, 1);
  }
  /* Our own modules (the loader reporting the error) may finish; policy code may not. */
  if (lua_getinfo(L, "S", ar) && strncmp(ar->source, "@lua/reactcfg/", 14) == 0) return;
  /* Level 0 in a hook is the interrupted function itself: name its line. */
  luaL_where(L, 0);
  lua_pushfstring(L, "stopped: the policy ran longer than its time budget of %d ms",
                  (int)m->budget_ms);
  lua_concat(L, 2);
  lua_error(L);
}

int rc__lua_pcall_budget(lua_State *L, int nargs, int nres, uint64_t budget_ms,
                         rc_error *err) {
  void *ud;
  lua_getallocf(L, &ud);
  lua_mem *m = ud;
  if (m->depth++ == 0) {
    m->expired = false;
    m->budget_ms = budget_ms;
    m->deadline_ns = rc__mono_ns() + budget_ms * 1000000u;
    lua_sethook(L, budget_hook, LUA_MASKCOUNT, 1000);
  }
  int base = lua_gettop(L) - nargs; /* the function's index */
  lua_pushcfunction(L, msgh);
  lua_insert(L, base);
  int status = lua_pcall(L, nargs, nres, base);
  lua_remove(L, base);
  if (--m->depth == 0) {
    lua_sethook(L, NULL, 0, 0);
    m->deadline_ns = 0;
    m->expired = false;
  }
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

/* Opens the standard libraries, cjson and our preloads, and records the engine (the
 * light userdata argument) in the registry. [-1, +0, e] */
static int l_init_state(lua_State *L) {
  lua_rawsetp(L, LUA_REGISTRYINDEX, &ENGINE_KEY);
  luaL_openlibs(L);
  luaL_requiref(L, "cjson", luaopen_cjson, 0);
  lua_pop(L, 1);
  rc__lua_preload(L);
  return 0;
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
    lua_close(L);
    rc__free(m);
    return NULL;
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
 * process on an uncaught error; we report it as a policy.error event instead.
 * Returns the number of results, or a negative status (as luv_cfpcall does). */
static int luv_callback_pcall(lua_State *L, int nargs, int nresult, int flags) {
  RC__UNUSED(flags);
  int top = lua_gettop(L) - nargs - 1;
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

int rc__lua_open_luv(rc_engine_t *eng, rc_error *err) {
  luv_set_loop(eng->L, eng->loop);
  luv_set_callback(eng->L, luv_callback_pcall);
  lua_pushcfunction(eng->L, l_open_luv);
  return rc__lua_pcall(eng->L, 0, 0, err);
}

