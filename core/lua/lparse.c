/* SPDX-License-Identifier: MIT (see LICENSE) */
/* lparse.c: the parsers as a Lua function, parse(text [, format]), for a Lua source's
 * ctx.parse and the Lua module's rc.parse. */
#include "lvalue.h"
#include "parse.h"

#include <lauxlib.h>

int rc__lua_parse(lua_State *L) {
  size_t len;
  const char *text = luaL_checklstring(L, 1, &len);
  const char *fname = luaL_optstring(L, 2, "json");
  rc_value_t *v = NULL;
  rc_error err = {0};
  int rc = rc__parse_named(fname, text, len, fname, &v, &err);
  if (rc == RC_EINVAL) return luaL_error(L, "parse: %s", err.message);
  if (rc) {
    luaL_pushfail(L);
    lua_pushfstring(L, "%s:%d:%d: %s", fname, err.line, err.column, err.message);
    return 2;
  }
  rc__lua_push_value_owned(L, v);
  return 1;
}
