/* SPDX-License-Identifier: MIT (see LICENSE) */
/* test_patterns.c: the engine's bounded string, table and utf8 functions (lpattern.c,
 * lbounded.c) against Lua 5.4's own: the same results and the same error messages for
 * a list of chosen cases (the manual's examples, every error, corner cases of positions
 * and captures) and for thousands of random patterns and subjects. Each expression runs
 * in two plain states, one with Lua's library and one with ours. */
#include "check.h"
#include "lua_state.h"

#include <lauxlib.h>
#include <lualib.h>
#include <stdlib.h>

static lua_State *stock, *ours;

/* Runs `return <expr>` in L; the results (or the error) as one line of text. */
static void run(lua_State *L, const char *expr, char *out, size_t n) {
  char code[4096];
  snprintf(code, sizeof code, "return %s", expr);
  lua_settop(L, 0);
  if (luaL_loadstring(L, code) != LUA_OK || lua_pcall(L, 0, LUA_MULTRET, 0) != LUA_OK) {
    snprintf(out, n, "error: %s", lua_tostring(L, -1));
    return;
  }
  size_t o = 0;
  out[0] = '\0';
  for (int i = 1; i <= lua_gettop(L) && o < n; i++) {
    const char *t = luaL_typename(L, i);
    if (lua_type(L, i) == LUA_TSTRING) {
      /* %q shows every byte; our format is Lua's for %q. */
      lua_getglobal(stock, "string");
      lua_getfield(stock, -1, "format");
      lua_pushliteral(stock, "%q");
      size_t len;
      const char *s = lua_tolstring(L, i, &len);
      lua_pushlstring(stock, s, len);
      lua_call(stock, 2, 1);
      o += (size_t)snprintf(out + o, n - o, "%s%s", i > 1 ? ", " : "", lua_tostring(stock, -1));
      lua_pop(stock, 2);
    } else if (lua_type(L, i) == LUA_TTABLE) {
      /* tables: their sequence, for table functions' results */
      o += (size_t)snprintf(out + o, n - o, "%s{", i > 1 ? ", " : "");
      lua_Integer len = (lua_Integer)lua_rawlen(L, i);
      for (lua_Integer k = 1; k <= len && o < n; k++) {
        lua_rawgeti(L, i, k);
        o += (size_t)snprintf(out + o, n - o, "%s%s", k > 1 ? "," : "",
                              luaL_tolstring(L, -1, NULL));
        lua_pop(L, 2);
      }
      if (o < n) o += (size_t)snprintf(out + o, n - o, "}");
    } else if (lua_type(L, i) == LUA_TFUNCTION) {
      o += (size_t)snprintf(out + o, n - o, "%sfunction", i > 1 ? ", " : "");
    } else {
      o += (size_t)snprintf(out + o, n - o, "%s%s:%s", i > 1 ? ", " : "", t,
                            luaL_tolstring(L, i, NULL));
      lua_pop(L, 1);
    }
  }
}

static int compared;

static void same(const char *expr) {
  char a[4096], b[4096];
  run(stock, expr, a, sizeof a);
  run(ours, expr, b, sizeof b);
  compared++;
  if (strcmp(a, b) != 0) {
    check_fail_(__FILE__, __LINE__);
    fprintf(stderr, "%s\n  Lua:  %s\n  ours: %s\n", expr, a, b);
  } else {
    check_passed++;
  }
}

static const char *const CASES[] = {
  /* find: plain, positions, anchors, captures */
  "string.find('hello world', 'o w')", "string.find('hello', 'l', 1, true)",
  "string.find('hello', '')", "string.find('hello', '', 10)", "string.find('hello', '', 6)",
  "string.find('hello', 'l', -2)", "string.find('hello', 'l', -100)",
  "string.find('hello', 'xyz', 1, true)", "string.find('a.b', '.', 1, true)",
  "string.find('hello', '^h')", "string.find('hello', '^e')", "string.find('hello', 'o$')",
  "string.find('he$llo', '$l')", "string.find('hello', '(l)(l)')",
  "string.find('hello', '()ll()')", "string.find('aaab', 'a-b')", "string.find('aaab', 'a*')",
  "string.find('', '')", "string.find('', 'a*')", "string.find('abc', 'b', 0)",
  "string.find('a\\0b', '\\0')", "string.find('a\\0b', '%z')", "string.find('a\\0b', '[\\0]')",
  /* match: classes, sets, quantifiers */
  "string.match('key = value', '(%w+)%s*=%s*(%w+)')", "string.match('  x', '^%s*(.-)%s*$')",
  "string.match('2024-01-02', '(%d+)-(%d+)-(%d+)')", "string.match('abc', '[a-b]+')",
  "string.match('abc', '[^a]+')", "string.match('a]b', '[]]')", "string.match('a-b', '[a-]+')",
  "string.match('a-b', '[%-]')", "string.match('x^y', '[%^x]+')", "string.match('^x', '[^^]')",
  "string.match('abc', '.-b')", "string.match('abc', 'a?b?c?d?')",
  "string.match('aaa', 'a+?')", "string.match('hello', '(h)(e)(l)(l)(o)')",
  "string.match('hello hello', '(h%a+) %1')", "string.match('abab', '(ab)%1')",
  "string.match('THE (quick) fox', '%((%a+)%)')", "string.match('f(a(b)c)d', '%b()')",
  "string.match('[[x]]', '%b[]')", "string.match('THE (quick) fox', '%f[%a]%a+')",
  "string.match('hello', '%f[%l]')", "string.match('end', '%f[%z]')",
  "string.match('x', '()')", "string.match('abc', '()b()')",
  "string.match('%', '%%')", "string.match('a.b', '%.')", "string.match('\\t', '%c')",
  "string.match('AbC', '%u%l%u')", "string.match('a1_', '%w%d%p')", "string.match('ff', '%x+')",
  "string.match('a b', '%S+')", "string.match('a b', '%A')", "string.match('abc', '%g+')",
  "string.match('hello', 'l+', 4)", "string.match('hello', 'x')",
  /* gsub: every kind of replacement */
  "string.gsub('hello world', 'o', '0')", "string.gsub('hello world', 'o', '0', 1)",
  "string.gsub('hello', '', '-')", "string.gsub('abc', '%w', '%0%0')",
  "string.gsub('hello world', '(%w+)', '<%1>')", "string.gsub('abc', 'b', '%%')",
  "string.gsub('abc', '()b', '%1')", "string.gsub('$name is $age', '%$(%w+)', {name='Lua', age=30})",
  "string.gsub('abc', '%w', {a=1, b=true})", "string.gsub('abc', '%w', {a=false})",
  "string.gsub('abc', '%w', function(c) return c:upper() end)",
  "string.gsub('abc', '%w', function(c) if c == 'b' then return nil end return c..c end)",
  "string.gsub('abc', '^a', 'x')", "string.gsub('aaa', '^a', 'x')", "string.gsub('abc', 'x*', '-')",
  "string.gsub('abc', '.', 'x', 0)", "string.gsub('abc', '.', 'x', -1)",
  "string.gsub('hello', 'l', 5)", "string.gsub('abc', '(b)', '[%0%1]')",
  /* gmatch */
  "(function() local t = {} for k, v in string.gmatch('a=1, b=2', '(%w+)=(%w+)') do "
  "t[#t+1] = k .. v end return t end)()",
  "(function() local t = {} for w in string.gmatch('one two  three', '%a+') do t[#t+1] = w "
  "end return t end)()",
  "(function() local t = {} for w in string.gmatch('abc', '') do t[#t+1] = 'x' end return t end)()",
  "(function() local t = {} for w in string.gmatch('abc', 'x*') do t[#t+1] = w end return t end)()",
  "(function() local t = {} for w in string.gmatch('^a^b', '^.') do t[#t+1] = w end return t end)()",
  "(function() local t = {} for w in string.gmatch('abcabc', 'b', 4) do t[#t+1] = w end return t end)()",
  "(function() local t = {} for w in string.gmatch('abc', '.', 10) do t[#t+1] = w end return t end)()",
  "(function() local t = {} for a, b in string.gmatch('abc', '()(.)') do t[#t+1] = a .. b end return t end)()",
  /* errors */
  "string.find('a', '%')", "string.find('a', '[a')", "string.find('a', '[')", "string.find('a', '[]')",
  "string.find('a', '(')", "string.find('a', ')')", "string.find('a', '%1')", "string.find('aa', '(a)%2')",
  "string.find('a', '%b')", "string.find('a', '%bx')", "string.find('a', '%f')", "string.find('a', '%fa')",
  "string.find('a', '(()')", "string.match('a', '(.)%1(')",
  "string.find('a', ('(a)'):rep(33))", "string.find(('a'):rep(300), ('a?'):rep(300))",
  "string.gsub('abc', 'b', '%2')", "string.gsub('abc', 'b', '%x')", "string.gsub('abc', 'b', '%')",
  "string.gsub('abc', 'b', {b = {}})", "string.gsub('abc', 'b', function() return {} end)",
  "string.gsub('abc', 'b')", "string.gsub('abc', 'b', true)", "string.gsub('abc', 'b', 'x', 'y')",
  "string.find()", "string.find('a')", "string.find('a', {})", "string.match('a', 'a', 'x')",
  "string.gmatch()", "string.gmatch('a', 1)", "string.find(12345, 3)",
  /* the other bounded functions */
  "string.rep('ab', 3)", "string.rep('ab', 3, ',')", "string.rep('ab', 0)", "string.rep('ab', -1)",
  "string.rep('', 5)", "string.rep('x', 1, 'sep')", "string.rep('x', 2^63)", "string.rep()",
  "string.upper('aBc1ä')", "string.lower('AbC1Ä')", "string.reverse('abc')", "string.reverse('')",
  "string.upper(12)", "string.upper()", "string.format('%q', 'a\\n\\0b\\\"\\r1')",
  "string.format('%5.2f|%d|%s|%x', 3.14159, 42, 'x', 255)", "string.format('%q', 1/3)",
  "string.format('%', 1)", "string.format('%d')", "string.format('%d', 'x')",
  "string.pack('i4', 7):byte(1, -1)", "string.packsize('i4i8')", "string.unpack('i4', string.pack('i4', 9))",
  "table.concat({1, 2, 3}, ', ')", "table.concat({1, 2, 3}, ', ', 2)", "table.concat({1, 2, 3}, ', ', 2, 3)",
  "table.concat({}, 'x')", "table.concat({1, 2}, '', 3, 2)", "table.concat({1, {}, 3})",
  "table.concat({'a', 'b'}, nil)", "table.concat(setmetatable({}, {__index = function(_, i) return 'v' .. i end}), '-', 1, 3)",
  "table.concat('abc')", "table.concat()",
  "(function() local t = {1, 2, 3} table.insert(t, 4) return t end)()",
  "(function() local t = {1, 2, 3} table.insert(t, 1, 0) return t end)()",
  "(function() local t = {1, 2, 3} table.insert(t, 4, 0) return t end)()",
  "(function() local t = {1, 2, 3} table.insert(t, 5, 0) return t end)()",
  "(function() local t = {1, 2, 3} table.insert(t, 0, 0) return t end)()",
  "(function() local t = {1, 2, 3} table.insert(t, 1, 2, 3) return t end)()",
  "(function() local t = {} table.insert(t) return t end)()",
  "(function() local t = {1, 2, 3} return table.remove(t), t end)()",
  "(function() local t = {1, 2, 3} return table.remove(t, 1), t end)()",
  "(function() local t = {1, 2, 3} return table.remove(t, 4), t end)()",
  "(function() local t = {1, 2, 3} return table.remove(t, 5), t end)()",
  "(function() local t = {} return table.remove(t), t end)()",
  "(function() local t = {} return table.remove(t, 0), t end)()",
  "(function() local t = {1, 2, 3, 4, 5} return table.move(t, 2, 4, 1) end)()",
  "(function() local t = {1, 2, 3, 4, 5} return table.move(t, 1, 3, 3) end)()",
  "(function() local t = {1, 2, 3} return table.move(t, 1, 3, 1, {}) end)()",
  "(function() local t = {1, 2, 3} return table.move(t, 3, 1, 1, {}) end)()",
  "table.move({}, -1, math.maxinteger, 1)", "table.move({}, 1, math.maxinteger, 2)",
  "table.move({1}, 1, 1, math.maxinteger)", "table.move(1, 1, 1, 1)",
  "(function() local t = {5, 2, 8, 1} table.sort(t) return t end)()",
  "(function() local t = {5, 2, 8, 1} table.sort(t, function(a, b) return a > b end) return t end)()",
  "(function() local t = {'b', 'a', 'c'} table.sort(t) return t end)()",
  "(function() local t = {3, 'a'} table.sort(t) return t end)()",
  "table.sort({1, 2}, 3)",
  "utf8.len('häll€')", "utf8.len('häll€', 3)", "utf8.len('häll€', 2, 3)", "utf8.len('\\xff')",
  "utf8.len('a\\x80')", "utf8.len('\\xed\\xa0\\x80')", "utf8.len('\\xed\\xa0\\x80', 1, -1, true)",
  "utf8.len('\\xf4\\x90\\x80\\x80')", "utf8.len('\\xf4\\x90\\x80\\x80', 1, -1, true)",
  "utf8.len('\\xc0\\x80')", "utf8.len('\\xfd\\xbf\\xbf\\xbf\\xbf\\xbf', 1, -1, true)",
  "utf8.len('\\xfe\\xbf\\xbf\\xbf\\xbf\\xbf\\xbf', 1, -1, true)", "utf8.len('abc', 5)",
  "utf8.len('abc', 0)", "utf8.len('abc', 1, 4)", "utf8.len('', 1)", "utf8.len('abc', -1)",
  "utf8.offset('häll€', 3)", "utf8.offset('häll€', -1)", "utf8.offset('häll€', 0, 3)",
  "utf8.offset('häll€', 10)", "utf8.offset('häll€', -10)", "utf8.offset('häll€', 1, 3)",
  "utf8.offset('abc', 0)", "utf8.offset('abc', 4)", "utf8.offset('abc', 5)", "utf8.offset('abc', 1, 5)",
  "utf8.offset('', 1)", "utf8.offset('', -1)", "utf8.offset('\\x80\\x80', 0, 2)",
  "os.date('!%Y-%m-%d', 0)", "os.date('!*t', 0).year", "os.date('%Ez', 0)",
};

/* A random pattern of up to `n` items from pieces that exercise every construct. */
static void random_pattern(char *out, size_t cap, int n) {
  static const char *const pieces[] = {
    "a", "b", ".", "%a", "%d", "%s", "%W", "[ab]", "[^a]", "[a-c]", "[%a_]", "*", "+", "-",
    "?", "(", ")", "()", "%1", "%2", "%ba)", "%f[%a]", "%f[^a]", "^", "$", "%%", "%", "[",
    "]", "x", "%b()",
  };
  size_t o = 0;
  int k = 1 + rand() % n;
  for (int i = 0; i < k; i++) {
    const char *p = pieces[rand() % (int)(sizeof pieces / sizeof *pieces)];
    size_t l = strlen(p);
    if (o + l + 1 >= cap) break;
    memcpy(out + o, p, l);
    o += l;
  }
  out[o] = '\0';
}

static void random_subject(char *out, int n) {
  static const char alphabet[] = "aab b()1_x";
  int k = rand() % n;
  for (int i = 0; i < k; i++) out[i] = alphabet[rand() % (int)(sizeof alphabet - 1)];
  out[k] = '\0';
}

static lua_State *new_state(bool bounded) {
  lua_State *L = luaL_newstate();
  luaL_openlibs(L);
  if (bounded) {
    rc__lua_open_patterns(L);
    rc__lua_open_bounded(L);
  }
  return L;
}

int main(void) {
  stock = new_state(false);
  ours = new_state(true);
  for (size_t i = 0; i < sizeof CASES / sizeof *CASES; i++) same(CASES[i]);
  srand(15);
  char pat[64], subj[32], expr[512];
  for (int i = 0; i < 20000; i++) {
    random_pattern(pat, sizeof pat, 8);
    random_subject(subj, 12);
    /* %q-like quoting of the pattern through a long bracket keeps every byte. */
    const char *fn[] = {"string.find(s, p)", "string.match(s, p)", "string.find(s, p, 3)",
                        "string.gsub(s, p, '<%0>')", "string.gsub(s, p, '%1')",
                        "(function() local t = {} for a, b in string.gmatch(s, p) do "
                        "t[#t + 1] = tostring(a) .. tostring(b) end return t end)()"};
    snprintf(expr, sizeof expr, "(function(s, p) return %s end)([==[%s]==], [==[%s]==])",
             fn[i % 6], subj, pat);
    same(expr);
  }
  fprintf(stderr, "%d expressions compared\n", compared);
  lua_close(stock);
  lua_close(ours);
  return check_report("patterns");
}
