/* SPDX-License-Identifier: MIT (see LICENSE) */
/* lpattern.c: string.find, string.match, string.gmatch and string.gsub for the engine's
 * Lua states, with Lua 5.4's pattern language (the reference manual, section 6.4.1) on a
 * backtracking matcher of our own that counts its steps. Lua's own matcher backtracks in
 * C, where the count hook never runs, so a pattern like ("a*"):rep(40) .. "b" held the
 * engine thread for ever; this one checks the policy's time budget every few thousand
 * steps and stops with the budget error. Results, errors and corner cases follow the
 * manual and Lua 5.4's behaviour (spec/c/test_patterns.c compares the two). */
#include "lua_state.h"

#include <ctype.h>
#include <lauxlib.h>
#include <string.h>

#define ESC '%'
#define SPECIALS "^$*+?.([%-"
#define MAX_CAPTURES 32
/* How deep the matcher may recurse (one level per pattern item that may backtrack):
 * beyond it, "pattern too complex", as in Lua. It bounds the C stack, not the time. */
#define MAX_DEPTH 200
/* Steps between two looks at the clock: about 10 µs of matching. */
#define STEPS_PER_CHECK 4096

#define CAP_UNFINISHED (-1)
#define CAP_POSITION (-2)

typedef struct matcher {
  lua_State *L;
  const char *src, *src_end;  /* the subject */
  const char *pat_end;
  int depth_left;             /* recursion still allowed */
  int steps_left;             /* steps until the next budget check */
  int level;                  /* captures open or closed so far */
  struct {
    const char *start;
    ptrdiff_t len;            /* CAP_UNFINISHED, CAP_POSITION, or the length */
  } cap[MAX_CAPTURES];
} matcher;

/* One unit of work: every so often, the budget decides whether matching goes on. */
static inline void step(matcher *m) {
  if (--m->steps_left <= 0) {
    m->steps_left = STEPS_PER_CHECK;
    rc__lua_budget_check(m->L);
  }
}

/* Ready for a new match attempt at another position (captures forgotten). */
static void restart(matcher *m) {
  m->level = 0;
  m->depth_left = MAX_DEPTH;
}

/* ==== single items ==== */

/* Whether byte `c` is in class `cl` (the letter after '%'); an upper-case class letter
 * is the complement; any other character stands for itself. */
static bool in_class(int c, int cl) {
  bool r;
  switch (tolower(cl)) {
    case 'a': r = isalpha(c); break;
    case 'c': r = iscntrl(c); break;
    case 'd': r = isdigit(c); break;
    case 'g': r = isgraph(c); break;
    case 'l': r = islower(c); break;
    case 'p': r = ispunct(c); break;
    case 's': r = isspace(c); break;
    case 'u': r = isupper(c); break;
    case 'w': r = isalnum(c); break;
    case 'x': r = isxdigit(c); break;
    case 'z': r = c == 0; break;               /* deprecated, still understood */
    default: return cl == c;
  }
  return isupper(cl) ? !r : r;
}

/* The end of the single item (a character, %x, or a [set]) starting at `p`. */
static const char *item_end(matcher *m, const char *p) {
  char c = *p++;
  if (c == ESC) {
    if (p >= m->pat_end) luaL_error(m->L, "malformed pattern (ends with '%%')");
    return p + 1;
  }
  if (c == '[') {
    if (p < m->pat_end && *p == '^') p++;
    /* The first character of a set is literal, even ']'. */
    do {
      if (p >= m->pat_end) luaL_error(m->L, "malformed pattern (missing ']')");
      char d = *p++;
      if (d == ESC && p < m->pat_end) p++;
    } while (p >= m->pat_end || *p != ']');
    return p + 1;
  }
  return p;
}

/* Whether byte `c` is in the set [p .. last], where *p == '[' and *last == ']'. */
static bool in_set(int c, const char *p, const char *last) {
  bool yes = true;
  if (p[1] == '^') {
    yes = false;
    p++;
  }
  while (++p < last) {
    if (*p == ESC) {
      p++;
      if (in_class(c, (unsigned char)*p)) return yes;
    } else if (p[1] == '-' && p + 2 < last) {
      p += 2;
      if ((unsigned char)p[-2] <= c && c <= (unsigned char)*p) return yes;
    } else if ((unsigned char)*p == c) {
      return yes;
    }
  }
  return !yes;
}

/* Whether the subject byte at `s` matches the single item [p, ep). */
static bool item_matches(matcher *m, const char *s, const char *p, const char *ep) {
  if (s >= m->src_end) return false;
  int c = (unsigned char)*s;
  switch (*p) {
    case '.': return true;
    case ESC: return in_class(c, (unsigned char)p[1]);
    case '[': return in_set(c, p, ep - 1);
    default: return (unsigned char)*p == c;
  }
}

/* ==== the matcher ==== */

static const char *do_match(matcher *m, const char *s, const char *p);

/* %bxy: a balanced run from x to its matching y. */
static const char *match_balance(matcher *m, const char *s, const char *p) {
  if (p + 1 >= m->pat_end)
    luaL_error(m->L, "malformed pattern (missing arguments to '%%b')");
  if (s >= m->src_end || *s != *p) return NULL;
  char open = p[0], close = p[1];
  int depth = 1;
  while (++s < m->src_end) {
    step(m);
    if (*s == close) {
      if (--depth == 0) return s + 1;
    } else if (*s == open) {
      depth++;
    }
  }
  return NULL;
}

/* The longest run of the item first, then shorter ones (x*, x+). */
static const char *expand_max(matcher *m, const char *s, const char *p, const char *ep) {
  ptrdiff_t n = 0;
  while (item_matches(m, s + n, p, ep)) {
    step(m);
    n++;
  }
  for (; n >= 0; n--) {
    step(m);
    const char *r = do_match(m, s + n, ep + 1);
    if (r) return r;
  }
  return NULL;
}

/* The shortest run of the item first, then longer ones (x-). */
static const char *expand_min(matcher *m, const char *s, const char *p, const char *ep) {
  for (;;) {
    step(m);
    const char *r = do_match(m, s, ep + 1);
    if (r) return r;
    if (!item_matches(m, s, p, ep)) return NULL;
    s++;
  }
}

static const char *open_capture(matcher *m, const char *s, const char *p, ptrdiff_t what) {
  if (m->level >= MAX_CAPTURES) luaL_error(m->L, "too many captures");
  m->cap[m->level].start = s;
  m->cap[m->level].len = what;
  m->level++;
  const char *r = do_match(m, s, p);
  if (!r) m->level--;
  return r;
}

static const char *close_capture(matcher *m, const char *s, const char *p) {
  int l = m->level - 1;
  while (l >= 0 && m->cap[l].len != CAP_UNFINISHED) l--;
  if (l < 0) luaL_error(m->L, "invalid pattern capture");
  m->cap[l].len = s - m->cap[l].start;
  const char *r = do_match(m, s, p);
  if (!r) m->cap[l].len = CAP_UNFINISHED;
  return r;
}

/* %1 .. %9: the text of an earlier, closed capture again. */
static const char *back_reference(matcher *m, const char *s, int digit) {
  int l = digit - '1';
  if (l < 0 || l >= m->level || m->cap[l].len == CAP_UNFINISHED)
    luaL_error(m->L, "invalid capture index %%%d", l + 1);
  ptrdiff_t len = m->cap[l].len;
  if (len >= 0 && m->src_end - s >= len && memcmp(m->cap[l].start, s, (size_t)len) == 0)
    return s + len;
  return NULL;
}

/* Matches pattern [p, pat_end) at `s`: the end of the match, or NULL. */
static const char *do_match(matcher *m, const char *s, const char *p) {
  if (m->depth_left-- == 0) luaL_error(m->L, "pattern too complex");
  while (p < m->pat_end) {
    step(m);
    switch (*p) {
      case '(':
        s = p + 1 < m->pat_end && p[1] == ')' ? open_capture(m, s, p + 2, CAP_POSITION)
                                              : open_capture(m, s, p + 1, CAP_UNFINISHED);
        goto done;
      case ')':
        s = close_capture(m, s, p + 1);
        goto done;
      case '$':
        if (p + 1 == m->pat_end) {
          s = s == m->src_end ? s : NULL;
          goto done;
        }
        break;                                   /* a '$' elsewhere is a character */
      case ESC:
        if (p + 1 < m->pat_end && p[1] == 'b') {
          s = match_balance(m, s, p + 2);
          if (!s) goto done;
          p += 4;
          continue;
        }
        if (p + 1 < m->pat_end && p[1] == 'f') {
          p += 2;
          if (p >= m->pat_end || *p != '[')
            luaL_error(m->L, "missing '[' after '%%f' in pattern");
          const char *ep = item_end(m, p);
          int before = s == m->src ? '\0' : (unsigned char)s[-1];
          int here = s < m->src_end ? (unsigned char)*s : '\0';
          if (!in_set(before, p, ep - 1) && in_set(here, p, ep - 1)) {
            p = ep;
            continue;
          }
          s = NULL;
          goto done;
        }
        if (p + 1 < m->pat_end && isdigit((unsigned char)p[1])) {
          s = back_reference(m, s, (unsigned char)p[1]);
          if (!s) goto done;
          p += 2;
          continue;
        }
        break;
      default:
        break;
    }
    /* A single item, maybe with a quantifier. */
    const char *ep = item_end(m, p);
    char q = ep < m->pat_end ? *ep : '\0';
    if (!item_matches(m, s, p, ep)) {
      if (q == '*' || q == '?' || q == '-') {    /* zero repetitions are fine */
        p = ep + 1;
        continue;
      }
      s = NULL;
      goto done;
    }
    switch (q) {
      case '?': {
        const char *r = do_match(m, s + 1, ep + 1);
        if (r) {
          s = r;
          goto done;
        }
        p = ep + 1;
        continue;
      }
      case '+': s = expand_max(m, s + 1, p, ep); goto done;
      case '*': s = expand_max(m, s, p, ep); goto done;
      case '-': s = expand_min(m, s, p, ep); goto done;
      default:
        s++;
        p = ep;
        continue;
    }
  }
done:
  m->depth_left++;
  return s;
}

/* ==== captures to Lua ==== */

/* Pushes capture `i` (or the whole match [s, e) when the pattern has no capture and
 * i == 0). [-0, +1, v] */
static void push_capture(matcher *m, int i, const char *s, const char *e) {
  if (i >= m->level) {
    if (i != 0) luaL_error(m->L, "invalid capture index %%%d", i + 1);
    lua_pushlstring(m->L, s, (size_t)(e - s));
    return;
  }
  ptrdiff_t len = m->cap[i].len;
  if (len == CAP_UNFINISHED) luaL_error(m->L, "unfinished capture");
  if (len == CAP_POSITION)
    lua_pushinteger(m->L, (m->cap[i].start - m->src) + 1);
  else
    lua_pushlstring(m->L, m->cap[i].start, (size_t)len);
}

/* Pushes every capture (or the whole match when there is none and `s` is given).
 * Returns how many. [-0, +n, v] */
static int push_captures(matcher *m, const char *s, const char *e) {
  int n = m->level == 0 && s ? 1 : m->level;
  luaL_checkstack(m->L, n, "too many captures");
  for (int i = 0; i < n; i++) push_capture(m, i, s, e);
  return n;
}

/* ==== the library functions ==== */

/* A position argument (1-based, negative from the end) as an offset into a subject of
 * `len` bytes, as Lua's string functions read it: 0 .. len, or len + 1 past the end. */
static size_t start_offset(lua_Integer pos, size_t len) {
  if (pos > 0) return (size_t)pos - 1;
  if (pos == 0) return 0;
  if (pos < -(lua_Integer)len) return 0;
  return (size_t)((lua_Integer)len + pos);
}

static bool has_specials(const char *p, size_t len) {
  for (size_t i = 0; i < len; i++)
    if (strchr(SPECIALS, p[i]) && p[i]) return true;
  return false;
}

static void matcher_init(matcher *m, lua_State *L, const char *s, size_t ls, const char *p,
                         size_t lp) {
  m->L = L;
  m->src = s;
  m->src_end = s + ls;
  m->pat_end = p + lp;
  m->steps_left = STEPS_PER_CHECK;
  restart(m);
}

/* find and match share their search. [-0, +n, v] */
static int find_or_match(lua_State *L, bool find) {
  size_t ls, lp;
  const char *s = luaL_checklstring(L, 1, &ls);
  const char *p = luaL_checklstring(L, 2, &lp);
  size_t init = start_offset(luaL_optinteger(L, 3, 1), ls);
  if (init > ls) {
    luaL_pushfail(L);
    return 1;
  }
  if (find && (lua_toboolean(L, 4) || !has_specials(p, lp))) {
    /* Plain search: glibc's memmem is linear in the subject (two-way), unlike a naive
     * scan, which a long near-miss needle makes quadratic. */
    const char *hit = lp == 0 ? s + init : memmem(s + init, ls - init, p, lp);
    if (!hit) {
      luaL_pushfail(L);
      return 1;
    }
    lua_pushinteger(L, (hit - s) + 1);
    lua_pushinteger(L, (hit - s) + (lua_Integer)lp);
    return 2;
  }
  matcher m;
  bool anchor = lp > 0 && *p == '^';
  if (anchor) {
    p++;
    lp--;
  }
  matcher_init(&m, L, s, ls, p, lp);
  const char *at = s + init;
  do {
    restart(&m);
    step(&m);
    const char *e = do_match(&m, at, p);
    if (e) {
      if (find) {
        lua_pushinteger(L, (at - s) + 1);
        lua_pushinteger(L, e - s);
        return push_captures(&m, NULL, NULL) + 2;
      }
      return push_captures(&m, at, e);
    }
  } while (at++ < m.src_end && !anchor);
  luaL_pushfail(L);
  return 1;
}

static int l_find(lua_State *L) { return find_or_match(L, true); }
static int l_match(lua_State *L) { return find_or_match(L, false); }

/* The state of one gmatch iteration (a userdata upvalue; the subject and the pattern are
 * upvalues too, so the pointers stay valid). */
typedef struct gmatch_state {
  const char *at;         /* where the next search starts */
  const char *last;       /* end of the last match, so an empty match is not repeated */
  matcher m;
} gmatch_state;

/* [-0, +n, v] */
static int gmatch_next(lua_State *L) {
  gmatch_state *g = lua_touserdata(L, lua_upvalueindex(3));
  const char *p = lua_tostring(L, lua_upvalueindex(2));
  g->m.L = L;
  for (const char *at = g->at; at <= g->m.src_end; at++) {
    restart(&g->m);
    step(&g->m);
    const char *e = do_match(&g->m, at, p);
    if (e && e != g->last) {
      g->at = g->last = e;
      return push_captures(&g->m, at, e);
    }
  }
  return 0;
}

/* gmatch(s, pattern [, init]): '^' is not an anchor here, as in Lua. [-0, +1, v] */
static int l_gmatch(lua_State *L) {
  size_t ls, lp;
  const char *s = luaL_checklstring(L, 1, &ls);
  const char *p = luaL_checklstring(L, 2, &lp);
  size_t init = start_offset(luaL_optinteger(L, 3, 1), ls);
  if (init > ls) init = ls + 1;                 /* starts after the end: no match */
  lua_settop(L, 2);
  gmatch_state *g = lua_newuserdatauv(L, sizeof *g, 0);
  matcher_init(&g->m, L, s, ls, p, lp);
  g->at = s + init;
  g->last = NULL;
  lua_pushcclosure(L, gmatch_next, 3);
  return 1;
}

/* The replacement text `repl` (a string) for a match [s, e): %0 .. %9 and %%. */
static void add_text(matcher *m, luaL_Buffer *b, const char *s, const char *e) {
  size_t l;
  const char *r = lua_tolstring(m->L, 3, &l);
  const char *end = r + l;
  while (r < end) {
    const char *pc = memchr(r, ESC, (size_t)(end - r));
    if (!pc) {
      luaL_addlstring(b, r, (size_t)(end - r));
      return;
    }
    luaL_addlstring(b, r, (size_t)(pc - r));
    char d = pc + 1 < end ? pc[1] : '\0';
    if (d == ESC) {
      luaL_addchar(b, ESC);
    } else if (d == '0') {
      luaL_addlstring(b, s, (size_t)(e - s));
    } else if (isdigit((unsigned char)d)) {
      push_capture(m, d - '1', s, e);
      luaL_tolstring(m->L, -1, NULL);           /* a position capture is a number */
      lua_remove(m->L, -2);
      luaL_addvalue(b);
    } else {
      luaL_error(m->L, "invalid use of '%c' in replacement string", ESC);
    }
    r = pc + 2;
  }
}

/* Adds the replacement for the match [s, e): text, a table lookup or a function call;
 * nil or false keep the match. Returns whether anything changed. [-0, +0, e] */
static bool add_replacement(matcher *m, luaL_Buffer *b, const char *s, const char *e,
                            int type) {
  lua_State *L = m->L;
  if (type == LUA_TFUNCTION) {
    lua_pushvalue(L, 3);
    int n = push_captures(m, s, e);
    lua_call(L, n, 1);
  } else if (type == LUA_TTABLE) {
    push_capture(m, 0, s, e);
    lua_gettable(L, 3);
  } else {
    add_text(m, b, s, e);
    return true;
  }
  if (!lua_toboolean(L, -1)) {
    lua_pop(L, 1);
    luaL_addlstring(b, s, (size_t)(e - s));
    return false;
  }
  if (!lua_isstring(L, -1))
    return luaL_error(L, "invalid replacement value (a %s)", luaL_typename(L, -1));
  luaL_addvalue(b);
  return true;
}

/* gsub(s, pattern, repl [, n]) -> string, count. [-0, +2, e] */
static int l_gsub(lua_State *L) {
  size_t ls, lp;
  const char *src = luaL_checklstring(L, 1, &ls);
  const char *p = luaL_checklstring(L, 2, &lp);
  int type = lua_type(L, 3);
  lua_Integer max = luaL_optinteger(L, 4, (lua_Integer)ls + 1);
  luaL_argexpected(L, type == LUA_TNUMBER || type == LUA_TSTRING ||
                   type == LUA_TFUNCTION || type == LUA_TTABLE, 3, "string/function/table");
  bool anchor = lp > 0 && *p == '^';
  if (anchor) {
    p++;
    lp--;
  }
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  matcher m;
  matcher_init(&m, L, src, ls, p, lp);
  const char *s = src, *last = NULL;
  lua_Integer n = 0;
  bool changed = false;
  while (n < max) {
    restart(&m);
    step(&m);
    const char *e = do_match(&m, s, p);
    if (e && e != last) {
      n++;
      changed = add_replacement(&m, &b, s, e, type) || changed;
      s = last = e;
    } else if (s < m.src_end) {
      luaL_addchar(&b, *s++);
    } else {
      break;
    }
    if (anchor) break;
  }
  if (!changed) {
    lua_pushvalue(L, 1);
  } else {
    luaL_addlstring(&b, s, (size_t)(m.src_end - s));
    luaL_pushresult(&b);
  }
  lua_pushinteger(L, n);
  return 2;
}

void rc__lua_open_patterns(lua_State *L) {
  static const luaL_Reg fns[] = {
    {"find", l_find}, {"match", l_match}, {"gmatch", l_gmatch}, {"gsub", l_gsub},
    {NULL, NULL},
  };
  lua_getglobal(L, "string");
  luaL_setfuncs(L, fns, 0);
  lua_pop(L, 1);
}
