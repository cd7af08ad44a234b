/* SPDX-License-Identifier: MIT (see LICENSE) */
/* test_luv_loop.c: luv inside the engine's Lua state runs on the engine's own loop, and
 * an error raised in a Lua callback becomes a policy.error event instead of ending the
 * process (luv's default callback runner would exit). */
#include "engine.h"
#include "harness.h"

#include <lauxlib.h>

static int policy_errors;
static char last[1024];

static void on_event(void *ud, const rc_event_t *ev) {
  (void)ud;
  if (ev->type == RC_EVENT_POLICY_ERROR) {
    policy_errors++;
    snprintf(last, sizeof last, "%s", ev->message);
  }
}

int main(void) {
  harness h = {0};
  h_tmpdir(&h, "luv_loop");
  CHECK_EQ_INT(h_start(&h, "local rc = require 'reactcfg'\n"
                           "return rc.policy { components = {} }\n"), 0);
  rc_engine_on_event(h.eng, on_event, NULL);
  /* Two timers on luv: one sets a flag, one raises. Both must fire on our loop. */
  const char *code =
    "local uv = require 'luv'\n"
    "fired = 0\n"
    "local a, b = uv.new_timer(), uv.new_timer()\n"
    "a:start(5, 0, function() fired = fired + 1; a:close() end)\n"
    "b:start(10, 0, function() b:close(); error('boom from a luv callback') end)\n";
  lua_State *L = h.eng->L;
  CHECK_EQ_INT(luaL_loadstring(L, code), LUA_OK);
  CHECK_EQ_INT(rc__lua_pcall(L, 0, 0, NULL), 0);
  h_run(&h, 0, -1, 0, 100);
  lua_getglobal(L, "fired");
  CHECK_EQ_INT((int)lua_tointeger(L, -1), 1);
  lua_pop(L, 1);
  CHECK_EQ_INT(policy_errors, 1);
  CHECK(strstr(last, "boom from a luv callback") != NULL);
  CHECK(h_finish(&h));
  return check_report("luv_loop");
}
