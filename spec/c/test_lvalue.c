/* SPDX-License-Identifier: MIT (see LICENSE) */
/* test_lvalue.c: values to Lua and back: every type each way, arrays tagged with the
 * array metatable (so empty arrays survive), null as the light userdata NULL, round
 * trips, key order, every rejected Lua value with the path in its message (functions,
 * userdata, coroutines, odd keys, holes, cycles, depth), a balanced stack, and C
 * allocation failure at every step of a conversion. */
#include "check.h"
#include "failalloc.h"
#include "lvalue.h"
#include "parse.h"

#include <lauxlib.h>
#include <lualib.h>
#include <stdlib.h>

static lua_State *L;

static rc_value_t *J(const char *json) {
  rc_value_t *v = NULL;
  rc_error err;
  if (rc__parse_json(json, strlen(json), 0, NULL, NULL, &v, &err)) {
    fprintf(stderr, "bad test JSON %s: %s\n", json, err.message);
    exit(2);
  }
  return v;
}

/* Runs `chunk` (which returns one value) and converts its result. On error *msg gets the
 * message. Checks that the stack is left as found. */
static rc_value_t *from_lua(const char *chunk, int max_depth, char *msg, size_t msgsz) {
  int top = lua_gettop(L);
  if (luaL_dostring(L, chunk) != LUA_OK) {
    fprintf(stderr, "lua error: %s\n", lua_tostring(L, -1));
    exit(2);
  }
  rc_value_t *v = rc__lua_to_value(L, -1, max_depth, msg, msgsz);
  CHECK_EQ_INT(lua_gettop(L), top + 1); /* the conversion pushes and pops nothing */
  lua_settop(L, top);
  return v;
}

/* The JSON of the Lua value returned by `chunk`, or "ERR <message>" (caller frees). */
static char *lua_json(const char *chunk) {
  char msg[512] = "untouched";
  rc_value_t *v = from_lua(chunk, 64, msg, sizeof msg);
  rc__buf b;
  rc__buf_init(&b);
  if (v) {
    char *j = rc_value_to_json(v, false);
    rc__buf_adds(&b, j);
    rc_free(j);
    rc__value_unref(v);
  } else {
    rc__buf_printf(&b, "ERR %s", msg);
  }
  return rc__buf_take(&b);
}

#define LUA(chunk, want)              \
  do {                                \
    char *got_ = lua_json(chunk);     \
    CHECK_EQ_STR(got_, want);         \
    rc_free(got_);                    \
  } while (0)

static void test_push(void) {
  int top = lua_gettop(L);
  rc_value_t *v = J("{\"s\":\"a\\u0000b\",\"i\":-7,\"f\":1.5,\"t\":true,\"n\":null,"
                    "\"arr\":[1,[],{}],\"o\":{\"k\":\"v\"}}");
  rc__lua_push_value(L, v);
  CHECK_EQ_INT(lua_gettop(L), top + 1);
  lua_setglobal(L, "V");
  rc__lua_push_array_mt(L);
  lua_setglobal(L, "ARRAY_MT");
  rc__lua_push_null(L);
  lua_setglobal(L, "NULL");
  const char *check =
    "assert(V.s == 'a\\0b')\n"
    "assert(math.type(V.i) == 'integer' and V.i == -7)\n"
    "assert(math.type(V.f) == 'float' and V.f == 1.5)\n"
    "assert(V.t == true and V.n == NULL and type(V.n) == 'userdata')\n"
    "assert(getmetatable(V.arr) == ARRAY_MT and #V.arr == 3 and V.arr[1] == 1)\n"
    "assert(getmetatable(V.arr[2]) == ARRAY_MT and next(V.arr[2]) == nil)\n"
    "assert(getmetatable(V.arr[3]) == nil and next(V.arr[3]) == nil)\n"
    "assert(getmetatable(V.o) == nil and V.o.k == 'v')\n"
    "assert(ARRAY_MT.__name == 'reactcfg.array')\n"
    "return true";
  if (luaL_dostring(L, check) != LUA_OK) {
    fprintf(stderr, "  %s\n", lua_tostring(L, -1));
    CHECK(!"pushed values look right in Lua");
  }
  lua_settop(L, top);
  rc__value_unref(v);

  /* NULL pushes nil; scalars push without the metatable dance */
  rc__lua_push_value(L, NULL);
  CHECK(lua_isnil(L, -1));
  rc__lua_push_value(L, rc__value_bool(false));
  CHECK(lua_isboolean(L, -1) && !lua_toboolean(L, -1));
  rc__lua_push_null(L);
  CHECK(lua_islightuserdata(L, -1) && lua_touserdata(L, -1) == NULL);
  rc__lua_push_array_mt(L);
  rc__lua_push_array_mt(L);
  CHECK(lua_rawequal(L, -1, -2)); /* one metatable per state */
  lua_settop(L, top);
}

static void test_to_value(void) {
  LUA("return 1", "1");
  LUA("return 1.0", "1.0");
  LUA("return 2^53", "9007199254740992.0");
  LUA("return math.mininteger", "-9223372036854775808");
  LUA("return 'x\\0y'", "\"x\\u0000y\"");
  LUA("return true", "true");
  LUA("return nil", "null");
  LUA("return NULL", "null");
  LUA("return {}", "{}");
  LUA("return setmetatable({}, ARRAY_MT)", "[]");
  LUA("return {1, 'two', 3.5, false, NULL}", "[1,\"two\",3.5,false,null]");
  LUA("return setmetatable({1, 2}, ARRAY_MT)", "[1,2]");
  /* objects come out in key order, whatever the table's internal order */
  LUA("return {zeta = 1, alpha = {b = 2, a = 1}, mid = {}}",
      "{\"alpha\":{\"a\":1,\"b\":2},\"mid\":{},\"zeta\":1}");
  LUA("return {['1'] = 'string key', ['a.b'] = true}", "{\"1\":\"string key\",\"a.b\":true}");
  LUA("return {list = {{x = 1}, {x = 2}}}", "{\"list\":[{\"x\":1},{\"x\":2}]}");
}

static void test_round_trip(void) {
  const char *docs[] = {
    "{\"a\":[],\"b\":{},\"c\":[null,[null],{\"d\":null}],\"e\":\"é\\n\",\"f\":-0.5,"
    "\"g\":9007199254740993,\"h\":[[[]]]}",
    "[]", "[{}]", "\"\"", "0", "[true,false]",
  };
  for (size_t i = 0; i < sizeof docs / sizeof docs[0]; i++) {
    rc_value_t *v = J(docs[i]);
    int top = lua_gettop(L);
    rc__lua_push_value(L, v);
    char msg[256];
    rc_value_t *back = rc__lua_to_value(L, -1, 64, msg, sizeof msg);
    lua_settop(L, top);
    CHECK(back != NULL);
    CHECK(rc_value_equal(v, back));
    rc__value_unref(v);
    rc__value_unref(back);
  }
}

static void test_errors(void) {
  LUA("return print", "ERR functions cannot be config values");
  LUA("return {settings = {list = {1, 2, print}}}",
      "ERR settings.list[2]: functions cannot be config values");
  LUA("return {['a b'] = {f = print}}", "ERR [\"a b\"].f: functions cannot be config values");
  LUA("return {co = coroutine.create(print)}", "ERR co: coroutines cannot be config values");
  LUA("return {out = io.stdout}", "ERR out: userdata cannot be config values");
  LUA("return {[true] = 1}", "ERR table keys must be strings, not boolean");
  LUA("return {x = {[1.5] = 1}}",
      "ERR x: table keys must be strings (or 1..n for an array), not numbers");
  LUA("return {[0] = 'a'}", "ERR table keys must be strings (or 1..n for an array), not numbers");
  LUA("return {1, 2, x = 3}", "ERR table mixes array items and string keys");
  LUA("return {[1] = 'a', [3] = 'c'}",
      "ERR array has holes (2 items, highest index 3); use reactcfg.null for a missing item");
  LUA("return setmetatable({1, x = 2}, ARRAY_MT)",
      "ERR an array (reactcfg.array_mt) can only have keys 1..n");
  /* a cycle runs into the depth limit */
  char msg[512] = "";
  rc_value_t *v = from_lua("local t = {}; t.self = t; return t", 4, msg, sizeof msg);
  CHECK(v == NULL);
  CHECK_EQ_STR(msg, "self.self.self.self: nested deeper than 4 levels (is there a cycle?)");
  /* the depth limit counts tables: 3 levels pass with max_depth 3 */
  v = from_lua("return {a = {b = {}}}", 3, msg, sizeof msg);
  CHECK(v != NULL);
  rc__value_unref(v);
  v = from_lua("return {a = {b = {c = {}}}}", 3, msg, sizeof msg);
  CHECK(v == NULL);
  CHECK_EQ_STR(msg, "a.b.c: nested deeper than 3 levels (is there a cycle?)");
  /* a short buffer truncates; a NULL buffer is allowed */
  char tiny[8];
  v = from_lua("return print", 4, tiny, sizeof tiny);
  CHECK(v == NULL);
  CHECK_EQ_STR(tiny, "functio");
  v = from_lua("return print", 4, NULL, 0);
  CHECK(v == NULL);
}

/* Converting under a C allocator that fails the Nth allocation, for every N a clean
 * conversion uses: NULL with a message (or success, when only the path buffer used for
 * messages failed), and nothing leaked. (Lua's own allocator is separate.) */
static void test_alloc_failure(void) {
  const char *chunk = "return {name = 'svc', ports = {80, 443}, tags = setmetatable({}, ARRAY_MT),"
                      " nested = {a = {b = {c = 'deep'}}, z = 1.5, y = true}, n = NULL}";
  char msg[256];
  fa_install(-1);
  long before = fa_allocs;
  rc_value_t *want = from_lua(chunk, 64, msg, sizeof msg);
  long total = fa_allocs - before;
  CHECK(want != NULL);
  CHECK(total > 10);
  long base = fa_live; /* the blocks of `want` */
  int failed = 0;
  for (long n = 0; n < total; n++) {
    msg[0] = '\0';
    fa_install(n);
    rc_value_t *v = from_lua(chunk, 64, msg, sizeof msg);
    fa_install(-1);
    if (v) {
      CHECK(rc_value_equal(v, want));
    } else {
      failed++;
      CHECK(strstr(msg, "out of memory") != NULL);
    }
    rc__value_unref(v);
    CHECK_EQ_INT(fa_live, base);
  }
  CHECK(failed > 5);
  rc__value_unref(want);
  fa_uninstall();
}

int main(void) {
  L = luaL_newstate();
  luaL_openlibs(L);
  rc__lua_push_array_mt(L);
  lua_setglobal(L, "ARRAY_MT");
  rc__lua_push_null(L);
  lua_setglobal(L, "NULL");
  test_push();
  test_to_value();
  test_round_trip();
  test_errors();
  test_alloc_failure();
  lua_close(L);
  return check_report("lvalue");
}
