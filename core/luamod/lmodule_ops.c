/* SPDX-License-Identifier: MIT (see LICENSE) */
/* lmodule_ops.c: the engine object's operations methods, the Lua face of what an admin
 * endpoint serves: e:metrics() (the Prometheus text), e:status() (the status as a
 * table), e:trace(n) and e:decisions(revision) (the engine's own decision ring). Specs
 * and REPL sessions read the engine's health through them. */
#include "lmodule.h"
#include "lvalue.h"

#include <lauxlib.h>
#include <string.h>

/* Frees a C string that a Lua error must not leak (the box's __gc, lauxlib's way). */
static int l_box_gc(lua_State *L) {
  char **p = lua_touserdata(L, 1);
  rc_free(*p);
  *p = NULL;
  return 0;
}

/* An empty box on the stack that will own a C string (set *box) until the caller pops
 * it. Made before the string, so that running out of memory here leaks nothing.
 * [-0, +1, m] */
static char **box_string(lua_State *L) {
  char **p = lua_newuserdatauv(L, sizeof *p, 0);
  *p = NULL;
  if (luaL_newmetatable(L, "reactcfg.cstring")) {
    lua_pushcfunction(L, l_box_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_setmetatable(L, -2);
  return p;
}

/* e:metrics() -> string: rc_engine_metrics_text. [-0, +1, v] */
static int l_metrics(lua_State *L) {
  lengine *b = check_engine(L);
  char **box = box_string(L);
  *box = rc_engine_metrics_text(b->eng);
  if (!*box) return luaL_error(L, "not enough memory");
  lua_pushstring(L, *box);
  return 1;
}

/* e:status() -> table: rc_engine_status_json as a table (JSON null is rc.null), through
 * the same parser as rc.parse. [-0, +1, v] */
static int l_status(lua_State *L) {
  lengine *b = check_engine(L);
  char **box = box_string(L);
  *box = rc_engine_status_json(b->eng);
  if (!*box) return luaL_error(L, "not enough memory");
  lua_pushcfunction(L, rc__lua_parse);
  lua_pushstring(L, *box);
  lua_call(L, 1, 2);
  if (lua_isnil(L, -2)) return luaL_error(L, "status: %s", lua_tostring(L, -1));
  lua_pop(L, 1);
  return 1;
}

/* e:trace(n): rc_engine_trace, keeping the decisions of the last n revisions. */
static int l_trace(lua_State *L) {
  lengine *b = check_engine(L);
  lua_Integer n = luaL_checkinteger(L, 2);
  luaL_argcheck(L, n >= 0 && n <= 4096, 2, "0 to 4096 revisions expected");
  int rc = rc_engine_trace(b->eng, (size_t)n);
  if (rc) return luaL_error(L, "trace: %s", rc_strerror(rc));
  return 0;
}

/* e:decisions(revision) -> table | nil: rc_engine_explain_json as a table, nil when the
 * revision is not kept. [-0, +1, v] */
static int l_decisions(lua_State *L) {
  lengine *b = check_engine(L);
  lua_Integer rev = luaL_checkinteger(L, 2);
  char **box = box_string(L);
  *box = rev > 0 ? rc_engine_explain_json(b->eng, (uint64_t)rev) : NULL;
  if (!*box) {
    lua_pushnil(L);
    return 1;
  }
  lua_pushcfunction(L, rc__lua_parse);
  lua_pushstring(L, *box);
  lua_call(L, 1, 2);
  if (lua_isnil(L, -2)) return luaL_error(L, "decisions: %s", lua_tostring(L, -1));
  lua_pop(L, 1);
  return 1;
}

const luaL_Reg lengine_ops_methods[] = {
  {"metrics", l_metrics}, {"status", l_status}, {"trace", l_trace},
  {"decisions", l_decisions}, {NULL, NULL},
};
