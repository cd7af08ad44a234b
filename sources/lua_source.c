/* SPDX-License-Identifier: MIT (see LICENSE) */
/* lua_source.c: a source written in Lua (rc.lua_source). Its function runs on the
 * engine's loop when the source starts, with `emit` to deliver values, luv on the same
 * loop for timers, processes and sockets, and a ctx; it may return a stop function. The
 * emit closure outlives the source when the policy keeps it (in a timer callback, say):
 * it then finds the source gone and does nothing. */
#include "lvalue.h"
#include "source_lua.h"

#include <lauxlib.h>
#include <string.h>

typedef struct lua_source {
  rc__source base;
  rc__source_ctx *ctx;
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
  if (!s) {
    lua_pushboolean(L, 0);
    return 1;
  }
  if (lua_isnoneornil(L, 1) && !lua_isnoneornil(L, 2)) {
    rc_error err = {0};
    rc__err(&err, RC_EIO, NULL, 0, 0, "%s", luaL_tolstring(L, 2, NULL));
    rc__src_error(s->ctx, &err);
    lua_pushboolean(L, 1);
    return 1;
  }
  rc_value_t *v = NULL;
  if (!lua_isnoneornil(L, 1)) {
    char msg[256];
    v = rc__lua_to_value(L, 1, RC__LUA_MAX_DEPTH, msg, sizeof msg);
    if (!v) return luaL_error(L, "emit: the value cannot be a config value: %s", msg);
  }
  rc__src_deliver(s->ctx, v);
  lua_pushboolean(L, 1);
  return 1;
}

/* Makes the box the emit closure holds and runs fn(emit, uv, ctx); the stop function it
 * returns is kept. Everything that can raise (the box, luaL_ref, the closure, the ctx
 * table) is here, under ls_start's protected call: an out-of-memory error (the policy's
 * `limits.memory`) is then a source error, not a longjmp through the engine and libuv.
 * The box belongs to the source only once its reference is taken. [-1, +0, e] */
static int l_start(lua_State *L) {
  lua_source *s = lua_touserdata(L, 1);
  lsrc_box *box = lua_newuserdatauv(L, sizeof *box, 0);       /* stack: s, box */
  box->src = NULL;
  lua_pushvalue(L, -1);
  int ref = luaL_ref(L, LUA_REGISTRYINDEX);                   /* stack: s, box */
  box->src = s;
  s->box = box;
  s->box_ref = ref;
  rc__src_lua_push_option(s->ctx, "fn");                      /* stack: s, box, fn */
  lua_pushvalue(L, -2);
  lua_pushcclosure(L, l_emit, 1);                             /* stack: s, box, fn, emit */
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
  lua_getfield(L, -1, "luv");
  lua_remove(L, -2);                                          /* stack: ..., emit, luv */
  lua_createtable(L, 0, 3);
  lua_pushstring(L, rc__src_name(s->ctx));
  lua_setfield(L, -2, "name");
  lua_pushstring(L, rc__src_policy_dir(s->ctx));
  lua_setfield(L, -2, "dir");
  lua_pushcfunction(L, rc__lua_parse);
  lua_setfield(L, -2, "parse");                               /* stack: ..., luv, ctx */
  lua_call(L, 3, 1);                                          /* stack: s, box, result */
  if (lua_isfunction(L, -1)) s->stop_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  return 0;
}

/* A failing function is a source error of the component, not a failed engine start;
 * so is running out of the policy's memory before it runs. Nothing here touches Lua
 * outside the protected call. */
static int ls_start(rc__source *base, rc_error *err) {
  RC__UNUSED(err);
  lua_source *s = (lua_source *)base;
  lua_State *L = rc__src_lua(s->ctx);
  if (!lua_checkstack(L, 3)) {
    rc_error e = {0};
    rc__err(&e, RC_ENOMEM, rc__src_policy_path(s->ctx), 0, 0, "lua_source: out of memory");
    rc__src_error(s->ctx, &e);
    return 0;
  }
  lua_pushcfunction(L, l_start);
  lua_pushlightuserdata(L, s);
  rc_error lerr = {0};
  if (rc__src_lua_pcall(s->ctx, 1, 0, &lerr) != 0) {
    char *nl = strchr(lerr.message, '\n');
    if (nl) *nl = '\0';
    rc_error e = {0};
    rc__err(&e, lerr.code, rc__src_policy_path(s->ctx), lerr.line, 0, "lua_source: %s",
            lerr.message);
    rc__src_error(s->ctx, &e);
  }
  return 0;
}

/* Runs the stop function and lets go of the state: a stopped source's state may be
 * closed before the source is freed (a replaced policy version's), so everything that
 * touches Lua happens here. */
static void ls_stop(rc__source *base, void (*done)(rc__source *)) {
  lua_source *s = (lua_source *)base;
  lua_State *L = rc__src_lua(s->ctx);
  if (s->box) s->box->src = NULL;
  s->box = NULL;
  if (s->stop_ref != LUA_NOREF && lua_checkstack(L, 2)) {
    lua_rawgeti(L, LUA_REGISTRYINDEX, s->stop_ref);
    rc_error err = {0};
    if (rc__src_lua_pcall(s->ctx, 0, 0, &err) != 0) {
      char *nl = strchr(err.message, '\n');
      if (nl) *nl = '\0';
      rc__src_event(s->ctx, RC_EVENT_POLICY_ERROR, rc__src_policy_path(s->ctx), err.line,
                    err.code, "lua_source stop function: %s", err.message);
    }
  }
  luaL_unref(L, LUA_REGISTRYINDEX, s->stop_ref);
  luaL_unref(L, LUA_REGISTRYINDEX, s->box_ref);
  s->stop_ref = s->box_ref = LUA_NOREF;
  done(base);
}

/* Everything that touched Lua happened in ls_stop: the state may be closed by now. */
static void ls_free(rc__source *base) { rc__free(base); }

static rc__source *ls_create(rc__source_ctx *ctx, rc_error *err) {
  lua_source *s = rc__src_alloc(sizeof *s, err);
  if (!s) return NULL;
  s->ctx = ctx;
  s->stop_ref = s->box_ref = LUA_NOREF;
  return &s->base;
}

/* No rescan: a Lua source emits when it decides to; a reload request has nothing to ask
 * it (an empty rescan made every request wait RC__REQUEST_WAIT_MS for an answer). */
const rc__source_kind rc__lua_kind = {
  .name = "lua", .create = ls_create, .start = ls_start, .stop = ls_stop, .free = ls_free,
};
