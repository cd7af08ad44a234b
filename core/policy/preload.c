/* SPDX-License-Identifier: MIT (see LICENSE) */
/* preload.c: what `require` finds in the engine's Lua state and in the Lua module: the
 * embedded modules of lua/reactcfg (text, compiled in), the source kinds and constants C
 * defines for the Lua side, and the modules an embedding application allows policies to
 * require. */
#include "engine.h"
#include "lvalue.h"
#include "registry.h"

#include <lauxlib.h>
#include <string.h>

struct rc__embedded {
  const char *name, *chunk, *text;
  size_t len;
};
extern const struct rc__embedded rc__embedded_lua[];

/* ---- embedded modules ---- */

/* package.preload entry: runs the embedded text of module `upvalue 1` (index).
 * [-0, +1, e] */
static int l_embedded_loader(lua_State *L) {
  const struct rc__embedded *m = &rc__embedded_lua[lua_tointeger(L, lua_upvalueindex(1))];
  if (luaL_loadbufferx(L, m->text, m->len, m->chunk, "t") != LUA_OK) return lua_error(L);
  lua_call(L, 0, 1);
  if (strcmp(m->name, "reactcfg") == 0 && lua_istable(L, -1)) {
    rc__lua_push_null(L);
    lua_setfield(L, -2, "null");
    rc__lua_push_array_mt(L);
    lua_setfield(L, -2, "array_mt");
  }
  return 1;
}

/* package.preload["reactcfg.kinds"]: the source kinds of the registry, in order, as
 * { name, flags = { cacheable, waits, retry, file }, defaults = { key = number } }, so
 * the Lua side reads what C defines once. [-0, +1, m] */
static int l_kinds(lua_State *L) {
  lua_newtable(L);                                       /* stack: kinds */
  for (int i = 0; rc__source_kinds[i]; i++) {
    const rc__source_kind *k = rc__source_kinds[i];
    lua_createtable(L, 0, 3);                            /* stack: kinds, kind */
    lua_pushstring(L, k->name);
    lua_setfield(L, -2, "name");
    lua_createtable(L, 0, 5);                            /* stack: kinds, kind, flags */
    static const struct { unsigned bit; const char *name; } flags[] = {
      {RC__SRC_CACHEABLE, "cacheable"}, {RC__SRC_WAITS, "waits"},
      {RC__SRC_RETRY, "retry"}, {RC__SRC_FILE, "file"}, {RC__SRC_PUSHED, "pushed"},
    };
    for (size_t f = 0; f < sizeof flags / sizeof *flags; f++) {
      lua_pushboolean(L, (k->flags & flags[f].bit) != 0);
      lua_setfield(L, -2, flags[f].name);
    }
    lua_setfield(L, -2, "flags");
    lua_newtable(L);                                     /* stack: kinds, kind, defaults */
    for (const rc__opt_default *d = k->defaults; d && d->key; d++) {
      if (lua_getfield(L, -1, d->key) == LUA_TNIL) {     /* the first entry wins */
        lua_pushnumber(L, d->value);
        lua_Integer n;
        if (lua_numbertointeger(d->value, &n)) {
          lua_pop(L, 1);
          lua_pushinteger(L, n);
        }
        lua_setfield(L, -3, d->key);
      }
      lua_pop(L, 1);
    }
    lua_setfield(L, -2, "defaults");
    lua_rawseti(L, -2, i + 1);
  }
  return 1;
}

/* package.preload["reactcfg.constants"]: the rules the Lua side checks against and C
 * defines, so each is written once. [-0, +1, m] */
static int l_constants(lua_State *L) {
  lua_createtable(L, 0, 3);
  lua_pushinteger(L, RC__DEBOUNCE_MAX_FACTOR);
  lua_setfield(L, -2, "debounce_max_factor");
  lua_pushinteger(L, RC__PARSE_MAX_DEPTH_CAP);
  lua_setfield(L, -2, "max_parse_depth");
  lua_pushinteger(L, RC__LUA_MAX_DEPTH);
  lua_setfield(L, -2, "max_value_depth");
  return 1;
}

/* package.preload["reactcfg.policy_log"]: the function behind a policy's print.
 * [-0, +1, -] */
static int l_policy_log_module(lua_State *L) {
  lua_pushcfunction(L, rc__lua_policy_log);
  return 1;
}

void rc__lua_preload(lua_State *L) {
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE); /* stack: preload */
  for (lua_Integer i = 0; rc__embedded_lua[i].name; i++) {
    lua_pushinteger(L, i);
    lua_pushcclosure(L, l_embedded_loader, 1);
    lua_setfield(L, -2, rc__embedded_lua[i].name);
  }
  lua_pushcfunction(L, l_kinds);
  lua_setfield(L, -2, "reactcfg.kinds");
  lua_pushcfunction(L, l_constants);
  lua_setfield(L, -2, "reactcfg.constants");
  lua_pushcfunction(L, l_policy_log_module);
  lua_setfield(L, -2, "reactcfg.policy_log");
  lua_pop(L, 1);
}

/* ---- modules the embedder allows ---- */

/* Kept by the engine (each policy version's state gets them) and given to the state in
 * place now. */
int rc_engine_allow_module(rc_engine_t *eng, const char *name) {
  if (!eng || !name || !*name || strchr(name, '/')) return RC_EINVAL;
  if (eng->state != RC__ST_NEW && eng->state != RC__ST_LOADED) return RC_ESTATE;
  char **list = rc__realloc(eng->allowed, (eng->nallowed + 1) * sizeof *list);
  if (!list) return RC_ENOMEM;
  eng->allowed = list;
  if (!(list[eng->nallowed] = rc__strdup(name))) return RC_ENOMEM;
  eng->nallowed++;
  return eng->L ? rc__lua_allow(eng->L, name, NULL) : 0;
}
