/* lua_source.c: a source written in Lua (rc.lua_source). Its function runs on the
 * engine's loop when the source starts, with `emit` to deliver values, luv on the same
 * loop for timers, processes and sockets, and a ctx; it may return a stop function. The
 * emit closure outlives the source when the policy keeps it (in a timer callback, say):
 * it then finds the source gone and does nothing. */
#include "engine.h"
#include "lvalue.h"

#include <lauxlib.h>
#include <string.h>

typedef struct lua_source {
  rc__source base;
  int stop_ref;                 /* the function `fn` returned, or LUA_NOREF */
  int box_ref;                  /* registry ref of the box the closures hold */
  struct lsrc_box *box;
} lua_source;

/* Userdata shared with the emit closure; `src` is NULL once the source stopped. */
typedef struct lsrc_box {
  lua_source *src;
} lsrc_box;

/* emit(value) delivers (nil = absent); emit(nil, "message") reports an error. Returns
 * true when delivered, false when the source has stopped. [-0, +1, e] */
static int l_emit(lua_State *L) {
  lsrc_box *box = lua_touserdata(L, lua_upvalueindex(1));
  lua_source *s = box->src;
  if (!s || !s->base.comp) {
    lua_pushboolean(L, 0);
    return 1;
  }
  rc__component *c = s->base.comp;
  if (lua_isnoneornil(L, 1) && !lua_isnoneornil(L, 2)) {
    rc_error err = {0};
    rc__err(&err, RC_EIO, NULL, 0, 0, "%s", luaL_tolstring(L, 2, NULL));
    rc__deliver_error(c, &err);
    lua_pushboolean(L, 1);
    return 1;
  }
  rc_value_t *v = NULL;
  if (!lua_isnoneornil(L, 1)) {
    char msg[256];
    v = rc__lua_to_value(L, 1, 64, msg, sizeof msg);
    if (!v) return luaL_error(L, "emit: the value cannot be a config value: %s", msg);
  }
  rc__deliver(c, v);
  lua_pushboolean(L, 1);
  return 1;
}

/* parse(text [, format]) -> value | nil, "format:line:col: message": the engine's
 * parsers from Lua (ctx.parse of a Lua source, rc.parse of the Lua module).
 * [-0, +1|2, e] */
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
  rc__lua_push_value(L, v);
  rc__value_unref(v);
  return 1;
}

/* Runs fn(emit, uv, ctx); the stop function it returns is kept. [-0, +0, e] */
static int l_start(lua_State *L) {
  lua_source *s = lua_touserdata(L, 1);
  rc__component *c = s->base.comp;
  lua_rawgeti(L, LUA_REGISTRYINDEX, c->lua_source_ref);
  lua_rawgeti(L, LUA_REGISTRYINDEX, s->box_ref);
  lua_pushcclosure(L, l_emit, 1);
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
  lua_getfield(L, -1, "luv");
  lua_remove(L, -2);
  lua_createtable(L, 0, 3);
  lua_pushstring(L, c->name);
  lua_setfield(L, -2, "name");
  lua_pushstring(L, c->eng->policy_dir);
  lua_setfield(L, -2, "dir");
  lua_pushcfunction(L, rc__lua_parse);
  lua_setfield(L, -2, "parse");
  lua_call(L, 3, 1);
  if (lua_isfunction(L, -1)) s->stop_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  return 0;
}

/* A failing function is a source error of the component, not a failed engine start. */
static int ls_start(rc__source *base, rc_error *err) {
  RC__UNUSED(err);
  lua_source *s = (lua_source *)base;
  lua_State *L = base->eng->L;
  lsrc_box *box = lua_newuserdatauv(L, sizeof *box, 0);
  box->src = s;
  s->box = box;
  s->box_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_pushcfunction(L, l_start);
  lua_pushlightuserdata(L, s);
  rc_error lerr = {0};
  if (rc__lua_pcall(L, 1, 0, &lerr) != 0) {
    char *nl = strchr(lerr.message, '\n');
    if (nl) *nl = '\0';
    rc_error e = {0};
    rc__err(&e, lerr.code, base->eng->policy_path, lerr.line, 0, "lua_source: %s",
            lerr.message);
    rc__deliver_error(base->comp, &e);
  }
  return 0;
}

static void ls_stop(rc__source *base, void (*done)(rc__source *)) {
  lua_source *s = (lua_source *)base;
  lua_State *L = base->eng->L;
  if (s->box) s->box->src = NULL;
  if (s->stop_ref != LUA_NOREF) {
    lua_rawgeti(L, LUA_REGISTRYINDEX, s->stop_ref);
    rc_error err = {0};
    if (rc__lua_pcall(L, 0, 0, &err) != 0) {
      char *nl = strchr(err.message, '\n');
      if (nl) *nl = '\0';
      rc__emit(base->eng, RC_EVENT_POLICY_ERROR, NULL, base->eng->policy_path, err.line,
               0, err.code, "lua_source stop function: %s", err.message);
    }
  }
  done(base);
}

static void ls_rescan(rc__source *base) { RC__UNUSED(base); }

static void ls_free(rc__source *base) {
  lua_source *s = (lua_source *)base;
  lua_State *L = base->eng->L;
  if (s->box) s->box->src = NULL;
  if (L) {
    luaL_unref(L, LUA_REGISTRYINDEX, s->stop_ref);
    luaL_unref(L, LUA_REGISTRYINDEX, s->box_ref);
  }
  rc__free(s);
}

static const rc__source_ops lua_ops = {"lua", ls_start, ls_stop, ls_rescan, ls_free};

rc__source *rc__lua_source_new(rc__component *c, rc_error *err) {
  lua_source *s = rc__calloc(1, sizeof *s);
  if (!s) {
    rc__err(err, RC_ENOMEM, NULL, 0, 0, "out of memory");
    return NULL;
  }
  s->base.ops = &lua_ops;
  s->base.eng = c->eng;
  s->base.comp = c;
  s->stop_ref = s->box_ref = LUA_NOREF;
  return &s->base;
}
