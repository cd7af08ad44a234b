/* SPDX-License-Identifier: MIT (see LICENSE) */
/* test_lmodule_oom.c: the Lua module (`require "reactcfg"`) in a host state whose
 * allocator fails from the Nth allocation on: e:get, e:metrics, e:status, e:decisions
 * and a commit recorded for e:commits raise "not enough memory" (or lose the record) for
 * small N and succeed for large N, and at no N does C memory of ours leak (a value, or a
 * text the engine made, that belonged to nobody when the host state raised). C memory
 * is counted by failalloc's allocator. The engine simulates (values come from e:push). */
#include "check.h"
#include "failalloc.h"
#include "harness.h"

#include <lauxlib.h>
#include <lualib.h>
#include <stdlib.h>

int luaopen_reactcfg(lua_State *L);

/* The host state's allocator: once armed, fails allocation number `host_countdown`
 * (0-based) and every one after it (Lua retries a failed allocation after a full
 * collection: one failure alone would not be seen); frees always succeed. */
static long host_countdown = -1;

static void *host_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  (void)ud;
  (void)osize;
  if (nsize == 0) {
    free(ptr);
    return NULL;
  }
  if (host_countdown == 0) return NULL;
  if (host_countdown > 0) host_countdown--;
  return realloc(ptr, nsize);
}

static void run(lua_State *L, const char *chunk) {
  if (luaL_dostring(L, chunk) != LUA_OK) {
    fprintf(stderr, "lua error: %s\n", lua_tostring(L, -1));
    exit(2);
  }
}

/* Calls the method `call` (a chunk taking the engine as `...`) with the Nth host
 * allocation failing, for N = 0, 1, ... until it succeeds; each failure must be a
 * memory error. Returns how many N failed. */
static int fail_each(lua_State *L, const char *call) {
  int failed = 0;
  for (long n = 0; n < 10000; n++) {
    if (luaL_loadstring(L, call) != LUA_OK) {
      fprintf(stderr, "bad chunk: %s\n", lua_tostring(L, -1));
      exit(2);
    }
    lua_getglobal(L, "e");
    host_countdown = n;
    int st = lua_pcall(L, 1, 0, 0);
    host_countdown = -1;
    if (st == LUA_OK) return failed;
    if (st != LUA_ERRMEM) fprintf(stderr, "N=%ld: %s\n", n, lua_tostring(L, -1));
    CHECK_EQ_INT(st, LUA_ERRMEM);
    lua_pop(L, 1);
    failed++;
  }
  CHECK(!"never succeeded");
  return failed;
}

int main(void) {
  harness h = {0};
  h_tmpdir(&h, "lmodule-oom");
  h_write(&h, "policy.lua", "local rc = require \"reactcfg\"\n"
                            "return rc.policy { components = {\n"
                            "  c = { source = rc.file \"c.json\", secret = { \"s0\", \"s1\" } },\n"
                            "} }\n");
  char policy[1024], code[1400];
  h_path(&h, "policy.lua", policy, sizeof policy);

  fa_install(-1); /* counts our C blocks; fails none */
  long live0 = fa_live;
  lua_State *L = lua_newstate(host_alloc, NULL);
  luaL_openlibs(L);
  luaL_requiref(L, "reactcfg", luaopen_reactcfg, 0);
  lua_pop(L, 1);
  snprintf(code, sizeof code,
           "e = assert(require('reactcfg').engine('%s', { simulate = true }))\n"
           "e:trace(4)\n"
           "assert(e:start())\n"
           "e:push('c', { name = 'a value long enough to be a string of its own', "
           "list = { 1, 2, 3 }, nested = { x = true } })\n"
           "assert(e:get('c.list')[3] == 3)\n"
           "e:commits()\n", policy);
  run(L, code);

  /* Each fails for its first few N (building its answer in the host state), then
   * succeeds. */
  CHECK(fail_each(L, "local e = ...; assert(e:get('c').nested.x == true)") > 0);
  CHECK(fail_each(L, "local e = ...; assert(e:metrics():find('reactcfg_'))") > 0);
  CHECK(fail_each(L, "local e = ...; assert(type(e:status()) == 'table')") > 0);
  CHECK(fail_each(L, "local e = ...; assert(type(e:decisions(1)) == 'table')") > 0);
  /* A commit recorded in the host state (e:commits()'s table, with each change's
   * values, redacted where secret: s0 and s1 take turns as a table, so each commit adds
   * one and removes the other, and their redacted copies are new values to push) while it runs out of memory: the record is lost (the guard
   * counts it), its values are not. */
  run(L, "n = 0");
  CHECK(fail_each(L, "local e = ...; e:commits(); n = n + 1; "
                     "e:push('c', { n = n, ['s' .. n % 2] = { k = 'v' } }); "
                     "assert(#e:commits() == 1)") > 0);

  run(L, "e:close()");
  lua_close(L);
  /* Every block the engine and the module made is freed again: nothing leaked at any N. */
  CHECK_EQ_INT(fa_live, live0);
  fa_uninstall();
  char rm[600];
  snprintf(rm, sizeof rm, "rm -rf '%s'", h.dir);
  if (system(rm) != 0) fprintf(stderr, "could not remove %s\n", h.dir);
  return check_report("test_lmodule_oom");
}
