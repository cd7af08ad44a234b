/* SPDX-License-Identifier: MIT (see LICENSE) */
/* lbounded.c: library functions of the engine's Lua states that a policy could make loop
 * for a long time inside C, where the count hook never runs, rewritten to check the
 * time budget as they go (the pattern functions are in lpattern.c). Each keeps the
 * behaviour of Lua 5.4's own (results, errors, metamethods); what changed is that long
 * loops stop with "stopped: the policy ran longer than its time budget", and that
 * string.rep of an empty string returns at once (Lua's loops over the count). A few
 * inputs are refused instead of being bounded: string.format, pack, packsize and unpack
 * with a format longer than 1 MiB, string.format with a %q argument longer than 16 MiB,
 * os.date with a format longer than 4 KiB. */
#include "lua_state.h"

#include <ctype.h>
#include <lauxlib.h>
#include <string.h>

/* Bytes (or elements) between two budget checks: about a millisecond of work or less. */
#define CHUNK ((size_t)1 << 20)
#define ITEMS_PER_CHECK 4096

#define FORMAT_MAX ((size_t)1 << 20)
#define QUOTED_MAX ((size_t)16 << 20)
#define DATE_FORMAT_MAX 4096

/* Runs the library's own function (upvalue 1) in this call's frame, on the arguments
 * as they are now: called directly rather than through lua_call, its argument errors
 * still name the function the policy called ("bad argument #2 to 'format'"). */
static int original(lua_State *L) {
  return lua_tocfunction(L, lua_upvalueindex(1))(L);
}

/* ==== string ==== */

/* string.rep(s, n [, sep]) [-0, +1, v] */
static int l_rep(lua_State *L) {
  size_t l, lsep;
  const char *s = luaL_checklstring(L, 1, &l);
  lua_Integer n = luaL_checkinteger(L, 2);
  const char *sep = luaL_optlstring(L, 3, "", &lsep);
  if (n <= 0 || l + lsep == 0) {                 /* Lua loops n times over nothing */
    lua_pushliteral(L, "");
    return 1;
  }
  if (l + lsep < l || l + lsep > (size_t)LUA_MAXINTEGER / (size_t)n)
    return luaL_error(L, "resulting string too large");
  size_t total = (size_t)n * l + (size_t)(n - 1) * lsep;
  luaL_Buffer b;
  char *p = luaL_buffinitsize(L, &b, total);
  size_t done = 0;
  for (lua_Integer i = 0; i < n; i++) {
    memcpy(p, s, l);
    p += l;
    if (lsep && i + 1 < n) {
      memcpy(p, sep, lsep);
      p += lsep;
    }
    if ((done += l + lsep) >= CHUNK) {
      done = 0;
      rc__lua_budget_check(L);
    }
  }
  luaL_pushresultsize(&b, total);
  return 1;
}

/* upper, lower and reverse: one byte at a time, a budget check per chunk. */
enum { UPPER, LOWER, REVERSE };

static int map_bytes(lua_State *L, int what) {
  size_t l;
  const char *s = luaL_checklstring(L, 1, &l);
  luaL_Buffer b;
  char *p = luaL_buffinitsize(L, &b, l);
  for (size_t i = 0; i < l; i++) {
    unsigned char c = (unsigned char)s[i];
    switch (what) {
      case UPPER: p[i] = (char)toupper(c); break;
      case LOWER: p[i] = (char)tolower(c); break;
      default: p[i] = s[l - 1 - i]; break;
    }
    if ((i & (CHUNK - 1)) == CHUNK - 1) rc__lua_budget_check(L);
  }
  luaL_pushresultsize(&b, l);
  return 1;
}

static int l_upper(lua_State *L) { return map_bytes(L, UPPER); }
static int l_lower(lua_State *L) { return map_bytes(L, LOWER); }
static int l_reverse(lua_State *L) { return map_bytes(L, REVERSE); }

/* string.format: Lua's own (upvalue 1), after checking the two inputs whose handling is
 * a byte-by-byte loop in C: the format itself and the strings quoted with %q. */
static int l_format(lua_State *L) {
  size_t lf;
  const char *f = luaL_checklstring(L, 1, &lf);
  if (lf > FORMAT_MAX)
    return luaL_error(L, "format longer than %d bytes (the engine's limit)",
                      (int)FORMAT_MAX);
  int arg = 1;
  for (size_t i = 0; i < lf; i++) {
    if (f[i] != '%') continue;
    if (++i < lf && f[i] == '%') continue;
    while (i < lf && strchr("-+ #0123456789.", f[i])) i++;
    arg++;
    if (i < lf && f[i] == 'q' && lua_type(L, arg) == LUA_TSTRING &&
        lua_rawlen(L, arg) > QUOTED_MAX)
      return luaL_error(L, "%%q of a string longer than %d bytes (the engine's limit)",
                        (int)QUOTED_MAX);
  }
  return original(L);
}

/* string.pack, packsize and unpack: Lua's (upvalue 1), which loops once per item of the
 * format, some of which (padding) take no argument. */
static int l_pack_format(lua_State *L) {
  size_t lf;
  luaL_checklstring(L, 1, &lf);
  if (lf > FORMAT_MAX)
    return luaL_error(L, "format longer than %d bytes (the engine's limit)",
                      (int)FORMAT_MAX);
  return original(L);
}

/* ==== table ==== */

/* Lua's check that argument `arg` is a table or behaves like one (metamethods `need`). */
static void check_table(lua_State *L, int arg, const char *const *need) {
  if (lua_type(L, arg) == LUA_TTABLE) return;
  int n = 1;
  bool ok = lua_getmetatable(L, arg);
  for (; ok && *need; need++, n++) {
    lua_pushstring(L, *need);
    ok = lua_rawget(L, -n - 1) != LUA_TNIL;
  }
  if (!ok) luaL_checktype(L, arg, LUA_TTABLE);
  lua_pop(L, n);
}

static const char *const TAB_R[] = {"__index", NULL};
static const char *const TAB_W[] = {"__newindex", NULL};
static const char *const TAB_RL[] = {"__index", "__len", NULL};
static const char *const TAB_RWL[] = {"__index", "__newindex", "__len", NULL};

/* Counts one element moved or read; every ITEMS_PER_CHECK, the budget decides. */
static inline void tick(lua_State *L, lua_Integer *count) {
  if ((++*count & (ITEMS_PER_CHECK - 1)) == 0) rc__lua_budget_check(L);
}

/* table.concat(t [, sep [, i [, j]]]) [-0, +1, e] */
static int l_concat(lua_State *L) {
  check_table(L, 1, TAB_RL);
  lua_Integer last = luaL_len(L, 1);
  size_t lsep;
  const char *sep = luaL_optlstring(L, 2, "", &lsep);
  lua_Integer i = luaL_optinteger(L, 3, 1);
  last = luaL_optinteger(L, 4, last);
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  lua_Integer count = 0;
  for (; i <= last; i++) {
    lua_geti(L, 1, i);
    if (!lua_isstring(L, -1))
      return luaL_error(L, "invalid value (%s) at index %I in table for 'concat'",
                        luaL_typename(L, -1), (LUAI_UACINT)i);
    luaL_addvalue(&b);
    if (i < last) luaL_addlstring(&b, sep, lsep);
    tick(L, &count);
    if (i == LUA_MAXINTEGER) break;
  }
  luaL_pushresult(&b);
  return 1;
}

/* table.insert(t, [pos,] v) [-0, +0, e] */
static int l_insert(lua_State *L) {
  check_table(L, 1, TAB_RWL);
  lua_Integer e = luaL_len(L, 1);
  e = (lua_Integer)((lua_Unsigned)e + 1u);       /* the first empty slot */
  lua_Integer pos, count = 0;
  switch (lua_gettop(L)) {
    case 2:
      pos = e;
      break;
    case 3:
      pos = luaL_checkinteger(L, 2);
      luaL_argcheck(L, (lua_Unsigned)pos - 1u < (lua_Unsigned)e, 2,
                    "position out of bounds");
      for (lua_Integer i = e; i > pos; i--) {
        lua_geti(L, 1, i - 1);
        lua_seti(L, 1, i);
        tick(L, &count);
      }
      break;
    default:
      return luaL_error(L, "wrong number of arguments to 'insert'");
  }
  lua_seti(L, 1, pos);
  return 0;
}

/* table.remove(t [, pos]) [-0, +1, e] */
static int l_remove(lua_State *L) {
  check_table(L, 1, TAB_RWL);
  lua_Integer size = luaL_len(L, 1);
  lua_Integer pos = luaL_optinteger(L, 2, size), count = 0;
  if (pos != size)  /* Lua 5.4.4 names argument 1 here */
    luaL_argcheck(L, (lua_Unsigned)pos - 1u <= (lua_Unsigned)size, 1,
                  "position out of bounds");
  lua_geti(L, 1, pos);
  for (; pos < size; pos++) {
    lua_geti(L, 1, pos + 1);
    lua_seti(L, 1, pos);
    tick(L, &count);
  }
  lua_pushnil(L);
  lua_seti(L, 1, pos);
  return 1;
}

/* table.move(a1, f, e, t [, a2]) [-0, +1, e] */
static int l_move(lua_State *L) {
  lua_Integer f = luaL_checkinteger(L, 2);
  lua_Integer e = luaL_checkinteger(L, 3);
  lua_Integer t = luaL_checkinteger(L, 4);
  int tt = !lua_isnoneornil(L, 5) ? 5 : 1;
  check_table(L, 1, TAB_R);
  check_table(L, tt, TAB_W);
  if (e >= f) {
    luaL_argcheck(L, f > 0 || e < LUA_MAXINTEGER + f, 3, "too many elements to move");
    lua_Integer n = e - f + 1, count = 0;
    luaL_argcheck(L, t <= LUA_MAXINTEGER - n + 1, 4, "destination wrap around");
    if (t > e || t <= f || (tt != 1 && !lua_compare(L, 1, tt, LUA_OPEQ))) {
      for (lua_Integer i = 0; i < n; i++) {
        lua_geti(L, 1, f + i);
        lua_seti(L, tt, t + i);
        tick(L, &count);
      }
    } else {
      for (lua_Integer i = n - 1; i >= 0; i--) {
        lua_geti(L, 1, f + i);
        lua_seti(L, tt, t + i);
        tick(L, &count);
      }
    }
  }
  lua_pushvalue(L, tt);
  return 1;
}

/* The comparison table.sort runs: the policy's function (upvalue 1) or `<`, counted so
 * that a sort of millions of items with a C comparison still meets the budget.
 * [-2, +1, e] */
static int l_sort_less(lua_State *L) {
  lua_Integer *count = lua_touserdata(L, lua_upvalueindex(2));
  tick(L, count);
  if (lua_isnil(L, lua_upvalueindex(1))) {
    lua_pushboolean(L, lua_compare(L, 1, 2, LUA_OPLT));
    return 1;
  }
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_call(L, 2, 1);
  return 1;
}

/* table.sort(t [, comp]): Lua's sort (upvalue 1) with the comparison counted. */
static int l_sort(lua_State *L) {
  if (!lua_isnoneornil(L, 2)) luaL_checktype(L, 2, LUA_TFUNCTION);
  lua_settop(L, 2);
  lua_Integer *count = lua_newuserdatauv(L, sizeof *count, 0);
  *count = 0;
  lua_pushcclosure(L, l_sort_less, 2);           /* stack: t, less */
  return original(L);
}

/* ==== utf8 ==== */

static bool continuation(unsigned char c) { return (c & 0xC0) == 0x80; }

/* The length in bytes of the UTF-8 sequence at s[0] (the string continues to `end`, and
 * a NUL follows it), as utf8.len reads one: a lead byte and its continuation bytes (at
 * most five), the shortest form of a value at most 0x7FFFFFFF, and in strict mode a
 * Unicode scalar value (at most 0x10FFFF, no surrogate). 0 when invalid. */
static size_t seq_len(const unsigned char *s, const unsigned char *end, bool strict) {
  unsigned c = s[0];
  if (c < 0x80) return 1;
  size_t n = 0;                                  /* continuation bytes */
  while (c & (0x40u >> n)) {
    n++;
    if (n > 5) return 0;
  }
  if (n == 0) return 0;                          /* a continuation byte as a lead */
  uint32_t v = c & (0x3Fu >> n);
  for (size_t k = 1; k <= n; k++) {
    if (s + k >= end || !continuation(s[k])) return 0;
    v = (v << 6) | (s[k] & 0x3Fu);
  }
  static const uint32_t min[] = {0, 0x80, 0x800, 0x10000, 0x200000, 0x4000000};
  if (v < min[n] || v > 0x7FFFFFFFu) return 0;
  if (strict && (v > 0x10FFFFu || (v >= 0xD800u && v <= 0xDFFFu))) return 0;
  return n + 1;
}

/* A position argument of the utf8 functions (negative: from the end). */
static lua_Integer rel_pos(lua_Integer pos, size_t len) {
  if (pos >= 0) return pos;
  if (0u - (size_t)pos > len) return 0;
  return (lua_Integer)len + pos + 1;
}

/* utf8.len(s [, i [, j [, lax]]]) [-0, +1|2, v] */
static int l_utf8_len(lua_State *L) {
  size_t len;
  const unsigned char *s = (const unsigned char *)luaL_checklstring(L, 1, &len);
  lua_Integer i = rel_pos(luaL_optinteger(L, 2, 1), len);
  lua_Integer j = rel_pos(luaL_optinteger(L, 3, -1), len);
  bool strict = !lua_toboolean(L, 4);
  luaL_argcheck(L, 1 <= i && --i <= (lua_Integer)len, 2, "initial position out of bounds");
  luaL_argcheck(L, --j < (lua_Integer)len, 3, "final position out of bounds");
  lua_Integer n = 0, count = 0;
  while (i <= j) {
    size_t k = seq_len(s + i, s + len, strict);
    if (k == 0) {
      luaL_pushfail(L);
      lua_pushinteger(L, i + 1);
      return 2;
    }
    i += (lua_Integer)k;
    n++;
    tick(L, &count);
  }
  lua_pushinteger(L, n);
  return 1;
}

/* utf8.offset(s, n [, i]) [-0, +1, v] */
static int l_utf8_offset(lua_State *L) {
  size_t len;
  const unsigned char *s = (const unsigned char *)luaL_checklstring(L, 1, &len);
  lua_Integer n = luaL_checkinteger(L, 2);
  lua_Integer i = rel_pos(luaL_optinteger(L, 3, n >= 0 ? 1 : (lua_Integer)len + 1), len);
  luaL_argcheck(L, 1 <= i && --i <= (lua_Integer)len, 3, "position out of bounds");
  lua_Integer count = 0;
  if (n == 0) {
    while (i > 0 && continuation(s[i])) {
      i--;
      tick(L, &count);
    }
  } else {
    if (continuation(s[i])) return luaL_error(L, "initial position is a continuation byte");
    for (; n < 0 && i > 0; n++) {
      do {
        i--;
        tick(L, &count);
      } while (i > 0 && continuation(s[i]));
    }
    for (n = n > 0 ? n - 1 : n; n > 0 && i < (lua_Integer)len; n--) {
      do {
        i++;
        tick(L, &count);
      } while (continuation(s[i]));              /* s[len] is the terminating NUL */
    }
  }
  if (n == 0)
    lua_pushinteger(L, i + 1);
  else
    luaL_pushfail(L);
  return 1;
}

/* ==== os ==== */

/* os.date: Lua's (upvalue 1), which runs strftime once per conversion of the format. */
static int l_date(lua_State *L) {
  size_t lf = 0;
  if (lua_type(L, 1) == LUA_TSTRING) lua_tolstring(L, 1, &lf);
  if (lf > DATE_FORMAT_MAX)
    return luaL_error(L, "date format longer than %d bytes (the engine's limit)",
                      DATE_FORMAT_MAX);
  return original(L);
}

/* ==== installing ==== */

/* lib[name] = fn, with lib[name]'s old value as upvalue 1 when `wrap`. [-0, +0, m] */
static void replace(lua_State *L, const char *lib, const char *name, lua_CFunction fn,
                    bool wrap) {
  lua_getglobal(L, lib);
  if (wrap) {
    lua_getfield(L, -1, name);
    lua_pushcclosure(L, fn, 1);
  } else {
    lua_pushcfunction(L, fn);
  }
  lua_setfield(L, -2, name);
  lua_pop(L, 1);
}

void rc__lua_open_bounded(lua_State *L) {
  replace(L, "string", "rep", l_rep, false);
  replace(L, "string", "upper", l_upper, false);
  replace(L, "string", "lower", l_lower, false);
  replace(L, "string", "reverse", l_reverse, false);
  replace(L, "string", "format", l_format, true);
  replace(L, "string", "pack", l_pack_format, true);
  replace(L, "string", "packsize", l_pack_format, true);
  replace(L, "string", "unpack", l_pack_format, true);
  replace(L, "table", "concat", l_concat, false);
  replace(L, "table", "insert", l_insert, false);
  replace(L, "table", "remove", l_remove, false);
  replace(L, "table", "move", l_move, false);
  replace(L, "table", "sort", l_sort, true);
  replace(L, "utf8", "len", l_utf8_len, false);
  replace(L, "utf8", "offset", l_utf8_offset, false);
  replace(L, "os", "date", l_date, true);
}
