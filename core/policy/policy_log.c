/* SPDX-License-Identifier: MIT (see LICENSE) */
/* policy_log.c: a policy's print. The text becomes a policy.log event, so that the
 * embedding application routes it with its other logs (the CLI prints it); where the
 * policy called print, and in whose function, go with it. Nobody listening (an
 * application without event handlers), it goes to stderr as it always did. */
#include "engine.h"

#include <lauxlib.h>
#include <stdio.h>
#include <string.h>

int rc__lua_policy_log(lua_State *L) {
  size_t len;
  const char *text = luaL_optlstring(L, 1, "", &len);
  rc_engine_t *eng = rc__lua_engine(L);
  /* A second reading of the policy (the CLI's outputs, in a state of its own) repeats
   * what the engine's reading already said. */
  if (lua_getfield(L, LUA_REGISTRYINDEX, RC__LUA_QUIET_KEY) != LUA_TNIL) return 0;
  lua_pop(L, 1);
  if (!eng || !rc__events_wanted(eng)) {
    fprintf(stderr, "[policy] %.*s\n", (int)len, text);
    return 0;
  }
  /* Level 0 is this function, 1 the sandbox's print, 2 the policy's line. */
  lua_Debug ar;
  const char *file = NULL;
  int line = 0;
  if (lua_getstack(L, 2, &ar) && lua_getinfo(L, "Sl", &ar)) {
    line = ar.currentline > 0 ? ar.currentline : 0;
    if (ar.source && ar.source[0] == '@') file = ar.source + 1;
  }
  rc__emit(eng, RC_EVENT_POLICY_LOG, eng->calling ? eng->calling->name : NULL,
           file ? file : eng->policy_path, line, 0, 0, "%.*s", (int)len, text);
  return 0;
}
