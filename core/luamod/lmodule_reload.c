/* SPDX-License-Identifier: MIT (see LICENSE) */
/* lmodule_reload.c: the engine object's reload methods: a requested reload, rollback to a
 * revision of the history, unpin, and the history itself. Each runs the loop's due work
 * before it returns, so on the virtual clock (the test bench) its outcome is visible at
 * once; real sources answer while the caller runs the loop (e:run, e:run_until). */
#include "lmodule.h"

#include <lauxlib.h>
#include <string.h>

/* nil, message, code: the Lua form of a failed call. */
static int fail(lua_State *L, int code, const char *message) {
  luaL_pushfail(L);
  lua_pushstring(L, message);
  lua_pushstring(L, rc_err_name(code));
  return 3;
}

/* e:reload([name, ... | { names }]) -> true | nil, message, code: re-reads the named
 * components' sources (every component without names) past debounce, throttle and
 * cache_for; the reload that follows has the trigger "request". */
static int l_reload(lua_State *L) {
  lengine *b = lengine_running(L);
  int first = 2, n = lua_gettop(L) - 1;
  if (n == 1 && lua_istable(L, 2)) { /* e:reload { "a", "b" } */
    n = (int)luaL_len(L, 2);
    luaL_checkstack(L, n, "too many components");
    for (int i = 1; i <= n; i++) lua_geti(L, 2, i);
    first = 3;
  }
  const char **names = n > 0 ? lua_newuserdatauv(L, (size_t)n * sizeof *names, 0) : NULL;
  for (int i = 0; i < n; i++) {
    if (lua_type(L, first + i) != LUA_TSTRING)
      return luaL_error(L, "reload: component names expected, got %s",
                        luaL_typename(L, first + i));
    names[i] = lua_tostring(L, first + i);
  }
  b->L = L;
  int rc = rc_engine_reload(b->eng, names, (size_t)n);
  b->L = NULL;
  if (rc == RC_ENOTFOUND) {
    for (int i = 0; i < n; i++)
      if (!rc__find_component(b->eng, names[i]))
        return fail(L, rc, lua_pushfstring(L, "no component named '%s'", names[i]));
  }
  if (rc) return fail(L, rc, rc_strerror(rc));
  lengine_settle(L, b);
  lua_pushboolean(L, 1);
  return 1;
}

/* e:rollback(revision) -> true | nil, message, code: makes that revision's configuration
 * current again through the modules, then pins it (RC_EPENDING: a module answers
 * later). */
static int l_rollback(lua_State *L) {
  lengine *b = lengine_running(L);
  lua_Integer rev = luaL_checkinteger(L, 2);
  luaL_argcheck(L, rev > 0, 2, "a revision number expected");
  rc_error err = {0};
  b->L = L;
  int rc = rc_engine_rollback(b->eng, (uint64_t)rev, &err);
  b->L = NULL;
  lengine_settle(L, b);
  if (rc) return fail(L, rc, err.message[0] ? err.message : rc_strerror(rc));
  lua_pushboolean(L, 1);
  return 1;
}

/* e:unpin(): the sources' latest values are applied again after a rollback. */
static int l_unpin(lua_State *L) {
  lengine *b = lengine_running(L);
  b->L = L;
  int rc = rc_engine_unpin(b->eng);
  b->L = NULL;
  lengine_settle(L, b);
  if (rc) return fail(L, rc, rc_strerror(rc));
  lua_pushboolean(L, 1);
  return 1;
}

/* e:pinned() -> boolean */
static int l_pinned(lua_State *L) {
  lengine *b = check_engine(L);
  lua_pushboolean(L, rc_engine_pinned(b->eng));
  return 1;
}

/* e:revisions() -> array of { revision, reload_id, trigger, changes }: the revisions
 * kept for rollback (policy key `history`), oldest first. */
static int l_revisions(lua_State *L) {
  lengine *b = check_engine(L);
  const rc_engine_t *eng = b->eng;
  lua_createtable(L, (int)eng->hist_n, 0);
  for (size_t i = 0; i < eng->hist_n; i++) {
    const rc__revision *r = &eng->hist[(eng->hist_head + i) % eng->hist_cap];
    lua_createtable(L, 0, 4);
    lua_pushinteger(L, (lua_Integer)r->snap->revision);
    lua_setfield(L, -2, "revision");
    lua_pushinteger(L, (lua_Integer)r->reload_id);
    lua_setfield(L, -2, "reload_id");
    lua_pushstring(L, r->trigger);
    lua_setfield(L, -2, "trigger");
    lua_pushinteger(L, (lua_Integer)r->changes);
    lua_setfield(L, -2, "changes");
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
  return 1;
}

const luaL_Reg lengine_reload_methods[] = {
  {"reload", l_reload}, {"rollback", l_rollback}, {"unpin", l_unpin},
  {"pinned", l_pinned}, {"revisions", l_revisions}, {NULL, NULL},
};
