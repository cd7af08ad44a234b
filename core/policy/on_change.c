/* SPDX-License-Identifier: MIT (see LICENSE) */
/* on_change.c: the policy's on_change handler, called after each commit with the change
 * list and a read-only view of the new snapshot. */
#include "engine.h"
#include "lvalue.h"

#include <lauxlib.h>
#include <stdio.h>
#include <string.h>

/* ---- on_change ---- */

typedef struct snap_box {
  rc_snapshot_t *snap;
} snap_box;

static int l_snap_gc(lua_State *L) {
  snap_box *b = lua_touserdata(L, 1);
  rc_snapshot_release(b->snap);
  b->snap = NULL;
  return 0;
}

/* snapshot[name] -> the component's value as a plain Lua value (cached). [-0, +1, m] */
static int l_snap_index(lua_State *L) {
  snap_box *b = lua_touserdata(L, lua_upvalueindex(1));
  if (lua_type(L, 2) != LUA_TSTRING || !b->snap) return 0;
  const char *k = lua_tostring(L, 2);
  if (strcmp(k, "revision") == 0) {
    lua_pushinteger(L, (lua_Integer)b->snap->revision);
    return 1;
  }
  const rc_value_t *v = rc_value_get(b->snap->root, k);
  if (!v) return 0;
  rc__lua_push_value(L, v);
  lua_pushvalue(L, 2);
  lua_pushvalue(L, -2);
  lua_rawset(L, 1);
  return 1;
}

/* Pushes a table that converts components of `snap` on first access. [-0, +1, m] */
static void push_snapshot(lua_State *L, const struct rc_snapshot *snap) {
  lua_newtable(L);                                        /* stack: proxy */
  lua_createtable(L, 0, 2);                               /* stack: proxy, mt */
  snap_box *b = lua_newuserdatauv(L, sizeof *b, 0);       /* stack: proxy, mt, box */
  b->snap = NULL;
  lua_createtable(L, 0, 1);
  lua_pushcfunction(L, l_snap_gc);
  lua_setfield(L, -2, "__gc");
  lua_setmetatable(L, -2);
  /* Retained only once the box's __gc will release it: nothing above may raise with
   * a reference belonging to nobody. */
  b->snap = rc_snapshot_retain((rc_snapshot_t *)snap);
  lua_pushcclosure(L, l_snap_index, 1);                   /* stack: proxy, mt, index */
  lua_setfield(L, -2, "__index");
  lua_setmetatable(L, -2);                                /* stack: proxy */
}

/* Pushes `v` (the value at `path`), redacted when `eng` is given. [-0, +1, m] */
static void push_maybe_redacted(lua_State *L, const rc_engine_t *eng, const char *path,
                                const rc_value_t *v) {
  if (!eng) {
    rc__lua_push_value(L, v);
    return;
  }
  rc_value_t *r = rc__redact(eng, path, v);
  if (!r) luaL_error(L, "not enough memory");
  rc__lua_push_value_owned(L, r);
}

void rc__lua_push_changes(lua_State *L, const rc_change_t *changes, size_t n,
                          const rc_engine_t *redact) {
  luaL_checkstack(L, 4, NULL);
  lua_createtable(L, (int)n, 0);
  for (size_t i = 0; i < n; i++) {
    const rc_change_t *ch = &changes[i];
    const rc_engine_t *r = ch->secret ? redact : NULL;
    lua_createtable(L, 0, 5);
    lua_pushstring(L, ch->path);
    lua_setfield(L, -2, "path");
    lua_pushstring(L, rc_change_kind_name(ch->kind));
    lua_setfield(L, -2, "kind");
    if (ch->old_value) {
      push_maybe_redacted(L, r, ch->path, ch->old_value);
      lua_setfield(L, -2, "old");
    }
    if (ch->new_value) {
      push_maybe_redacted(L, r, ch->path, ch->new_value);
      lua_setfield(L, -2, "new");
    }
    if (ch->secret) {
      lua_pushboolean(L, 1);
      lua_setfield(L, -2, "secret");
    }
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
}

typedef struct on_change_args {
  const struct rc_snapshot *snap;
  const rc_change_t *changes;
  size_t n;
  int ref;
} on_change_args;

/* [-0, +0, e] */
static int l_on_change(lua_State *L) {
  on_change_args *a = lua_touserdata(L, 1);
  lua_rawgeti(L, LUA_REGISTRYINDEX, a->ref);
  rc__lua_push_changes(L, a->changes, a->n, NULL);
  push_snapshot(L, a->snap);
  lua_call(L, 2, 0);
  return 0;
}

void rc__lua_on_change(rc_engine_t *eng, const struct rc_snapshot *snap,
                       const rc_change_t *changes, size_t n) {
  if (eng->on_change_ref == LUA_NOREF) return;
  on_change_args a = {snap, changes, n, eng->on_change_ref};
  lua_pushcfunction(eng->L, l_on_change);
  lua_pushlightuserdata(eng->L, &a);
  rc_error err = {0};
  if (rc__lua_pcall(eng->L, 1, 0, &err) != 0) {
    char *nl = strchr(err.message, '\n');
    if (nl) *nl = '\0';
    rc__emit(eng, RC_EVENT_POLICY_ERROR, NULL, eng->policy_path, err.line, 0, err.code,
             "on_change: %s", err.message);
  }
}


/* ---- the policy's reload modules ---- */

/* What the done function of a pending Lua module holds: the reload handle (the module's
 * reference) until it answers. */
typedef struct done_box {
  rc_reload_t *r;
} done_box;

static const char DONE_MT = 'd'; /* registry: the box's metatable */

static int l_done_gc(lua_State *L) {
  done_box *b = lua_touserdata(L, 1);
  if (b->r) rc__reload_release(b->r); /* never answered: the module's timeout ends it */
  b->r = NULL;
  return 0;
}

/* reload.done(ok [, message]): the answer of a module that returned rc.PENDING. Returns
 * true, or false when it came too late (the timeout passed) or twice. [-0, +1, v] */
static int l_done(lua_State *L) {
  done_box *b = lua_touserdata(L, lua_upvalueindex(1));
  rc_reload_t *r = b->r;
  b->r = NULL;
  if (!r) {
    lua_pushboolean(L, 0);
    return 1;
  }
  bool ok = lua_toboolean(L, 1);
  const char *msg = luaL_optstring(L, 2, ok ? NULL : "refused");
  lua_pushboolean(L, rc_reload_done(r, ok ? RC_OK : RC_EREFUSED, msg) == 0);
  return 1;
}

typedef struct module_args {
  rc__module *m;
  rc_reload_t *r;
  const struct rc_snapshot *snap;
  const rc_change_t *changes;
  size_t n;
  int rc;
  done_box *box;
} module_args;

/* apply(changes, snapshot, reload) -> nil | true (applied), false [, why] (refused), or
 * rc.PENDING (reload.done(ok, why) answers later). [-1, +1, e] */
static int l_module(lua_State *L) {
  module_args *a = lua_touserdata(L, 1);
  lua_rawgeti(L, LUA_REGISTRYINDEX, a->m->lua_ref);          /* stack: a, fn */
  rc__lua_push_changes(L, a->changes, a->n, NULL);
  push_snapshot(L, a->snap);
  lua_createtable(L, 0, 3);                                  /* stack: a, fn, ch, s, rl */
  lua_pushinteger(L, (lua_Integer)rc_reload_id(a->r));
  lua_setfield(L, -2, "id");
  lua_pushboolean(L, rc_reload_is_rollback(a->r));
  lua_setfield(L, -2, "rollback");
  a->box = lua_newuserdatauv(L, sizeof *a->box, 0);
  a->box->r = NULL;
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &DONE_MT) != LUA_TTABLE) {
    lua_pop(L, 1);
    lua_createtable(L, 0, 1);
    lua_pushcfunction(L, l_done_gc);
    lua_setfield(L, -2, "__gc");
    lua_pushvalue(L, -1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &DONE_MT);
  }
  lua_setmetatable(L, -2);
  lua_pushcclosure(L, l_done, 1);
  lua_setfield(L, -2, "done");
  lua_call(L, 3, 2);                                         /* stack: a, r1, r2 */
  rc__lua_require_field(L, "reactcfg", "PENDING");
  if (lua_rawequal(L, -3, -1)) {
    a->rc = RC_EPENDING;
    a->box->r = a->r; /* the module's reference goes to its done function */
  } else if (lua_isboolean(L, -3) && !lua_toboolean(L, -3)) {
    a->rc = RC_EREFUSED;
  } else {
    a->rc = RC_OK;
  }
  lua_pop(L, 1);
  return 1; /* the second result: the reason of a refusal */
}

int rc__lua_module_apply(rc_engine_t *eng, rc__module *m, rc_reload_t *r,
                         const struct rc_snapshot *snap, const rc_change_t *changes,
                         size_t n, char *msg, size_t msgsz) {
  module_args a = {m, r, snap, changes, n, RC_EREFUSED, NULL};
  lua_State *L = eng->L;
  if (!lua_checkstack(L, 4)) {
    snprintf(msg, msgsz, "out of Lua stack");
    return RC_EREFUSED;
  }
  lua_pushcfunction(L, l_module);
  lua_pushlightuserdata(L, &a);
  rc_error err = {0};
  if (rc__lua_pcall(L, 1, 1, &err) != 0) {
    char *nl = strchr(err.message, '\n');
    if (nl) *nl = '\0';
    snprintf(msg, msgsz, "%s", err.message);
    return RC_EREFUSED;
  }
  if (a.rc == RC_EREFUSED) {
    const char *why = lua_tostring(L, -1);
    snprintf(msg, msgsz, "%s", why ? why : "apply returned false");
  }
  lua_pop(L, 1);
  return a.rc;
}
