/* SPDX-License-Identifier: MIT (see LICENSE) */
/* lvalue.c: values to Lua and back. Objects become tables, arrays sequences tagged with
 * the `reactcfg.array` metatable, null the light userdata NULL (cjson.null). The way back
 * never raises: a value that cannot be config (a function, a table with holes or odd
 * keys, a cycle) is reported by path, and everything built so far is freed. */
#include "lvalue.h"

#include <assert.h>
#include <lauxlib.h>
#include <stdio.h>
#include <string.h>

/* Registry key of the array metatable: the address of this variable. */
static const char array_mt_key = 0;
/* Registry key of the state's hooks (a userdata holding an rc__lua_hooks). */
static const char hooks_key = 0;

void rc__lua_set_hooks(lua_State *L, const rc__lua_hooks *h) {
  rc__lua_hooks *box = lua_newuserdatauv(L, sizeof *box, 0);
  *box = *h;
  lua_rawsetp(L, LUA_REGISTRYINDEX, &hooks_key);
}

/* L's hooks (all NULL when it has none). [-0, +0, -] */
static rc__lua_hooks lua_hooks(lua_State *L) {
  rc__lua_hooks h = {0};
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &hooks_key) == LUA_TUSERDATA)
    h = *(rc__lua_hooks *)lua_touserdata(L, -1);
  lua_pop(L, 1);
  return h;
}

/* The JSON null: a light userdata NULL, which is also cjson.null. [-0, +1, -] */
void rc__lua_push_null(lua_State *L) { lua_pushlightuserdata(L, NULL); }

/* __newindex of the array metatable's own metatable. [-0, +0, v] */
static int l_array_mt_readonly(lua_State *L) {
  return luaL_error(L, "attempt to modify read-only table 'reactcfg.array_mt' (field '%s')",
                    luaL_tolstring(L, 2, NULL));
}

/* Created on first use; `__name` makes it recognisable when printed. It is read-only
 * (its own metatable refuses new fields; the sandbox's rawset refuses it): a __gc field
 * added to it would make every array the engine pushes run that finalizer, outside any
 * time budget. [-0, +1, m] */
void rc__lua_push_array_mt(lua_State *L) {
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &array_mt_key) != LUA_TNIL) return;
  lua_pop(L, 1);
  lua_createtable(L, 0, 1);
  lua_pushliteral(L, "reactcfg.array");
  lua_setfield(L, -2, "__name");                    /* stack: mt */
  lua_createtable(L, 0, 2);                         /* stack: mt, mtmt */
  lua_pushcfunction(L, l_array_mt_readonly);
  lua_setfield(L, -2, "__newindex");
  lua_pushliteral(L, "reactcfg.array_mt");
  lua_setfield(L, -2, "__metatable");
  lua_setmetatable(L, -2);                          /* stack: mt */
  lua_pushvalue(L, -1);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &array_mt_key); /* stack: mt */
}

/* ==== value -> Lua ==== */

/* Pushes `v`; the array metatable is at absolute index `mt`. Depth is bounded by the
 * parse limits (512 by default), far below what luaL_checkstack can grant, so its
 * "stack overflow" error is not expected in practice. [-0, +1, m] */
static void push(lua_State *L, const rc_value_t *v, int mt) {
  switch (rc_value_type(v)) {
  case RC_TYPE_NULL: lua_pushlightuserdata(L, NULL); return;
  case RC_TYPE_BOOL: lua_pushboolean(L, v->u.b); return;
  case RC_TYPE_INT: lua_pushinteger(L, (lua_Integer)v->u.i); return;
  case RC_TYPE_FLOAT: lua_pushnumber(L, (lua_Number)v->u.f); return;
  case RC_TYPE_STRING: lua_pushlstring(L, v->u.s, v->len); return;
  case RC_TYPE_DATETIME: {
    /* Lua has no date-time type: policies see the RFC 3339 text. */
    char text[48];
    size_t n = rc__datetime_format(v->u.dt, text, sizeof text);
    lua_pushlstring(L, text, n);
    return;
  }
  case RC_TYPE_ARRAY:
    luaL_checkstack(L, 3, "value nested too deeply");
    lua_createtable(L, (int)(v->len > INT32_MAX ? INT32_MAX : v->len), 0);
    lua_pushvalue(L, mt);
    lua_setmetatable(L, -2);                         /* stack: t */
    for (uint32_t i = 0; i < v->len; i++) {
      push(L, v->u.items[i], mt);                    /* stack: t, item */
      lua_rawseti(L, -2, (lua_Integer)i + 1);        /* stack: t */
    }
    return;
  case RC_TYPE_OBJECT:
    luaL_checkstack(L, 3, "value nested too deeply");
    lua_createtable(L, 0, (int)(v->len > INT32_MAX ? INT32_MAX : v->len));
    for (uint32_t i = 0; i < v->len; i++) {
      const rc__member *m = &v->u.members[i];
      lua_pushlstring(L, m->key, m->klen);
      push(L, m->val, mt);                           /* stack: t, key, val */
      lua_rawset(L, -3);                             /* stack: t */
    }
    return;
  }
}

/* [-0, +1, m] */
void rc__lua_push_value(lua_State *L, const rc_value_t *v) {
  if (!v) {
    lua_pushnil(L);
    return;
  }
  if (v->type != RC_TYPE_ARRAY && v->type != RC_TYPE_OBJECT) {
    push(L, v, 0);
    return;
  }
  rc__lua_push_array_mt(L);                          /* stack: mt */
  int mt = lua_gettop(L);
  push(L, v, mt);                                    /* stack: mt, value */
  lua_remove(L, mt);
}

/* rc__lua_push_value of light userdata 1. [-1, +1, m] */
static int l_push_borrowed(lua_State *L) {
  rc__lua_push_value(L, lua_touserdata(L, 1));
  return 1;
}

/* [-0, +1, m] */
void rc__lua_push_value_owned(lua_State *L, rc_value_t *v) {
  if (!v) {
    lua_pushnil(L);
    return;
  }
  if (!lua_checkstack(L, 2)) {
    rc__value_unref(v);
    luaL_error(L, "stack overflow (pushing a value)");
  }
  lua_pushcfunction(L, l_push_borrowed);
  lua_pushlightuserdata(L, v);
  int st = lua_pcall(L, 1, 1, 0);                 /* stack: value, or the error */
  rc__value_unref(v);
  if (st != LUA_OK) lua_error(L);
}

/* ==== Lua -> value ==== */

typedef struct conv {
  lua_State *L;
  int max_depth;
  int mt;        /* absolute index of the array metatable */
  rc__buf path;  /* path of the value being converted, for messages */
  char *err;
  size_t errsz;
  rc__lua_hooks hooks;  /* the state's budget query and disposer, or NULLs */
  size_t tables; /* tables converted so far (a table shared n times counts n times) */
  rc__array_builder junk; /* what a failed conversion built, released in one piece */
} conv;

static rc_value_t *fail(conv *c, const char *fmt, ...) RC__PRINTF(2, 3);
static rc_value_t *fail(conv *c, const char *fmt, ...) {
  char msg[256];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  if (!c->err || !c->errsz) return NULL;
  if (c->path.n && !c->path.oom)
    snprintf(c->err, c->errsz, "%s: %s", c->path.p, msg);
  else
    snprintf(c->err, c->errsz, "%s", msg);
  return NULL;
}

static rc_value_t *oom(conv *c) { return fail(c, "out of memory"); }

static rc_value_t *convert(conv *c, int idx, int depth);

/* Converts the Lua value on top of the stack as child `key`/`index` of the current path,
 * and pops it. [-1, +0, -] */
static rc_value_t *child(conv *c, const char *key, size_t klen, size_t index, int depth) {
  size_t base = c->path.n;
  if (key)
    rc__path_add_key(&c->path, key, klen);
  else
    rc__path_add_index(&c->path, index);
  rc_value_t *v = convert(c, -1, depth);
  if (v) { /* keep the failing path for the message */
    c->path.n = base;
    if (c->path.p) c->path.p[base] = '\0';
  }
  lua_pop(c->L, 1);
  return v;
}

/* A table: a sequence 1..n (or anything tagged with the array metatable) becomes an
 * array, string keys an object. Lua tables have no order, so an object's members are
 * put in key order, which keeps output and change order stable from run to run.
 * [-0, +0, -] */
static rc_value_t *table(conv *c, int idx, int depth) {
  lua_State *L = c->L;
  if (depth >= c->max_depth)
    return fail(c, "nested deeper than %d levels (is there a cycle?)", c->max_depth);
  /* A table referenced twice is converted twice: a few levels of sharing make an
   * exponential amount of work, which must stop with the budget like Lua code does. */
  if ((++c->tables & 4095) == 0 && c->hooks.spent && c->hooks.spent(L))
    return fail(c, "stopped: the time budget ran out converting the value (%zu tables so "
                "far; is one table shared many times?)", c->tables);
  if (!lua_checkstack(L, 4)) return fail(c, "nested too deeply for the Lua stack");
  bool tagged = false;
  if (lua_getmetatable(L, idx)) {
    tagged = lua_rawequal(L, -1, c->mt);
    lua_pop(L, 1);
  }
  size_t count = 0, ints = 0, strs = 0;
  lua_Integer max = 0;
  int bad_key = LUA_TNONE;
  int top = lua_gettop(L); /* debug builds check each loop turn against it */
  (void)top;
  lua_pushnil(L);
  while (lua_next(L, idx)) {                         /* stack: key, value */
    count++;
    if (lua_type(L, -2) == LUA_TSTRING) {
      strs++;
    } else if (lua_isinteger(L, -2) && lua_tointeger(L, -2) >= 1) {
      ints++;
      if (lua_tointeger(L, -2) > max) max = lua_tointeger(L, -2);
    } else if (bad_key == LUA_TNONE) {
      bad_key = lua_type(L, -2);
    }
    lua_pop(L, 1);                                   /* stack: key */
    assert(lua_gettop(L) == top + 1);
  }
  bool array = tagged || (count > 0 && ints == count);
  if (array) {
    if (ints != count)
      return fail(c, "an array (reactcfg.array_mt) can only have keys 1..n");
    if ((lua_Integer)count != max)
      return fail(c, "array has holes (%zu items, highest index %lld); use reactcfg.null "
                  "for a missing item", count, (long long)max);
    rc__array_builder b;
    rc__array_begin(&b);
    for (lua_Integer i = 1; i <= max; i++) {
      lua_rawgeti(L, idx, i);                        /* stack: item */
      rc_value_t *v = child(c, NULL, 0, (size_t)(i - 1), depth + 1);
      if (!v) {
        rc__array_abort_into(&b, &c->junk);
        return NULL;
      }
      rc__array_push(&b, v);
      assert(lua_gettop(L) == top);
    }
    rc_value_t *v = rc__array_end(&b);
    return v ? v : oom(c);
  }
  if (strs != count) {
    if (bad_key != LUA_TNONE && bad_key != LUA_TNUMBER)
      return fail(c, "table keys must be strings, not %s", lua_typename(L, bad_key));
    if (ints && strs) return fail(c, "table mixes array items and string keys");
    return fail(c, "table keys must be strings (or 1..n for an array), not numbers");
  }
  rc__object_builder b;
  rc__object_begin(&b);
  lua_pushnil(L);
  while (lua_next(L, idx)) {                         /* stack: key, value */
    size_t klen;
    const char *key = lua_tolstring(L, -2, &klen);   /* a string: no conversion */
    rc_value_t *v = child(c, key, klen, 0, depth + 1); /* stack: key */
    if (!v) {
      lua_pop(L, 1);
      rc__object_abort_into(&b, &c->junk);
      return NULL;
    }
    rc__object_put(&b, key, klen, v);
    assert(lua_gettop(L) == top + 1);
  }
  rc_value_t *obj = rc__object_end(&b);
  if (!obj) return oom(c);
  bool in_order = true;
  for (uint32_t i = 0; i < obj->len && in_order; i++) in_order = rc__sorted(obj)[i] == i;
  if (in_order) return obj;
  rc__object_begin(&b);
  for (uint32_t i = 0; i < obj->len; i++) {
    const rc__member *m = &obj->u.members[rc__sorted(obj)[i]];
    rc__object_put(&b, m->key, m->klen, rc__value_ref(m->val));
  }
  rc__value_unref(obj);
  obj = rc__object_end(&b);
  return obj ? obj : oom(c);
}

/* [-0, +0, -] */
static rc_value_t *convert(conv *c, int idx, int depth) {
  lua_State *L = c->L;
  idx = lua_absindex(L, idx);
  rc_value_t *v;
  switch (lua_type(L, idx)) {
  case LUA_TNIL: return rc__value_null();
  case LUA_TBOOLEAN: return rc__value_bool(lua_toboolean(L, idx));
  case LUA_TNUMBER:
    if (lua_isinteger(L, idx))
      v = rc__value_int((int64_t)lua_tointeger(L, idx));
    else
      v = rc__value_float((double)lua_tonumber(L, idx));
    return v ? v : oom(c);
  case LUA_TSTRING: {
    size_t len;
    const char *s = lua_tolstring(L, idx, &len);
    v = rc__value_string(s, len);
    return v ? v : oom(c);
  }
  case LUA_TLIGHTUSERDATA:
    if (lua_touserdata(L, idx) == NULL) return rc__value_null();
    return fail(c, "light userdata (other than reactcfg.null) cannot be a config value");
  case LUA_TTABLE: return table(c, idx, depth);
  case LUA_TFUNCTION: return fail(c, "functions cannot be config values");
  case LUA_TUSERDATA: return fail(c, "userdata cannot be config values");
  case LUA_TTHREAD: return fail(c, "coroutines cannot be config values");
  }
  return fail(c, "a %s cannot be a config value", luaL_typename(L, idx));
}

/* [-0, +0, m]: in fact nothing here raises (lua_checkstack, not luaL_checkstack), except
 * creating the array metatable on first use, which happens before any C allocation. */
rc_value_t *rc__lua_to_value(lua_State *L, int idx, int max_depth, char *err, size_t errsz) {
  idx = lua_absindex(L, idx);
  rc__lua_push_array_mt(L);                          /* stack: mt */
  conv c = {L, max_depth, lua_gettop(L), {0}, err, errsz, lua_hooks(L), 0, {0}};
  rc__buf_init(&c.path);
  rc__array_begin(&c.junk);
  if (err && errsz) err[0] = '\0';
  rc_value_t *v = convert(&c, idx, 0);
  rc__buf_free(&c.path);
  if (c.junk.n) {
    rc_value_t *junk = rc__array_end(&c.junk); /* NULL: released here already */
    if (junk && c.hooks.dispose && c.tables >= 4096) /* small: freed here, at once */
      c.hooks.dispose(L, junk);
    else
      rc__value_unref(junk);
  }
  lua_pop(L, 1);
  return v;
}
