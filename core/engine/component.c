/* SPDX-License-Identifier: MIT (see LICENSE) */
/* component.c: one component of a policy: reading its normalized description (the table
 * reactcfg.loader returns) into C, and freeing it. Its source is source_ctx.c's. Runs on
 * the thread that loads the policy, then on the loop thread. */
#include "engine.h"
#include "lvalue.h"
#include "registry.h"

#include <lauxlib.h>
#include <string.h>

/* String field `k` of the table at `idx`, copied; NULL if absent. [-0, +0, m] */
static char *dup_field(lua_State *L, int idx, const char *k) {
  lua_getfield(L, idx, k);
  char *s = lua_type(L, -1) == LUA_TSTRING ? rc__strdup(lua_tostring(L, -1)) : NULL;
  lua_pop(L, 1);
  return s;
}

/* Numeric field `k` of the table at `idx`, rounded; `dflt` if absent. [-0, +0, -] */
static uint64_t ms_field(lua_State *L, int idx, const char *k, uint64_t dflt) {
  lua_getfield(L, idx, k);
  uint64_t v = lua_isnumber(L, -1) ? (uint64_t)(lua_tonumber(L, -1) + 0.5) : dflt;
  lua_pop(L, 1);
  return v;
}

static bool bool_field(lua_State *L, int idx, const char *k) {
  lua_getfield(L, idx, k);
  bool b = lua_toboolean(L, -1);
  lua_pop(L, 1);
  return b;
}

/* A registry reference to function field `k`, or LUA_NOREF. [-0, +0, m] */
static int fn_ref(lua_State *L, int idx, const char *k) {
  lua_getfield(L, idx, k);
  if (lua_isfunction(L, -1)) return luaL_ref(L, LUA_REGISTRYINDEX);
  lua_pop(L, 1);
  return LUA_NOREF;
}

/* The list of path strings in field `k`, each prefixed with the component's name, into
 * *out / *n. Returns false on OOM. [-0, +0, m] */
static bool paths_field(lua_State *L, int idx, const char *k, const char *name, char ***out,
                        size_t *n) {
  *out = NULL;
  *n = 0;
  lua_getfield(L, idx, k);
  size_t len = lua_istable(L, -1) ? lua_rawlen(L, -1) : 0;
  bool ok = true;
  if (len) {
    *out = rc__calloc(len, sizeof **out);
    ok = *out != NULL;
    for (size_t i = 0; ok && i < len; i++) {
      lua_rawgeti(L, -1, (lua_Integer)i + 1);
      const char *p = lua_tostring(L, -1);
      rc__buf b;
      rc__buf_init(&b);
      rc__buf_add(&b, name, strlen(name));
      /* "[3]" and '["a.b"]' segments follow the name directly, keys after a dot. */
      if (p && p[0] != '[') rc__buf_add(&b, ".", 1);
      if (p) rc__buf_add(&b, p, strlen(p));
      rc__buf_add(&b, "", 1);
      (*out)[i] = b.oom ? NULL : rc__buf_take(&b);
      if (b.oom) rc__buf_free(&b);
      ok = (*out)[i] != NULL;
      if (ok) (*n)++;
      lua_pop(L, 1);
    }
  }
  lua_pop(L, 1);
  return ok;
}

static void free_paths(char **p, size_t n) {
  for (size_t i = 0; i < n; i++) rc__free(p[i]);
  rc__free(p);
}

/* Its references into its version's Lua state (functions, the source description) are
 * not released one by one: a component is freed only together with its version, whose
 * state is closed (retired) right after. */
void rc__component_free(rc__component *c) {
  if (!c) return;
  rc__free(c->name);
  rc__value_unref(c->default_value);
  rc__value_unref(c->value);
  rc__value_unref(c->pending);
  rc__value_unref(c->held);
  rc__value_unref(c->result);
  rc__value_unref(c->seen);
  rc__value_unref(c->cache_written);
  rc__free(c->deps);
  rc__free(c->reads);
  free_paths(c->only, c->nonly);
  free_paths(c->ignore, c->nignore);
  free_paths(c->static_paths, c->nstatic);
  free_paths(c->secret_paths, c->nsecret);
  rc__free(c->src_key);
  rc__free(c->target);
  rc__value_unref(c->src_opts);
  rc__free(c);
}

/* ---- components by name ---- */

static size_t name_hash(const char *name, size_t len) { return (size_t)rc__hash64(name, len); }

int rc__name_index_build(rc__name_index *ix, rc__component **comps, size_t n) {
  size_t cap = 16;
  while (cap < n * 2) cap *= 2;
  ix->slots = rc__calloc(cap, sizeof *ix->slots);
  if (!ix->slots) return RC_ENOMEM;
  ix->comps = comps;
  ix->n = n;
  ix->mask = cap - 1;
  for (size_t i = 0; i < n; i++) {
    size_t h = name_hash(comps[i]->name, strlen(comps[i]->name)) & ix->mask;
    while (ix->slots[h]) h = (h + 1) & ix->mask;
    ix->slots[h] = comps[i];
  }
  return 0;
}

rc__component *rc__name_index_find(const rc__name_index *ix, const char *name, size_t len) {
  for (size_t h = name_hash(name, len) & ix->mask; ix->slots[h]; h = (h + 1) & ix->mask) {
    const char *cn = ix->slots[h]->name;
    if (strncmp(cn, name, len) == 0 && cn[len] == '\0') return ix->slots[h];
  }
  return NULL;
}

void rc__name_index_free(rc__name_index *ix) {
  if (ix) rc__free(ix->slots);
}

void rc__component_names_forget(rc_engine_t *eng) {
  rc__name_index_free(eng->names);
  rc__free(eng->names);
  eng->names = NULL;
}

rc__component *rc__component_named(rc_engine_t *eng, const char *name, size_t len) {
  rc__name_index *ix = eng->names;
  if (!ix || ix->comps != eng->comps || ix->n != eng->ncomps) {
    rc__component_names_forget(eng);
    ix = rc__calloc(1, sizeof *ix);
    if (ix && rc__name_index_build(ix, eng->comps, eng->ncomps) == 0) {
      eng->names = ix;
    } else {
      rc__free(ix);
      for (size_t i = 0; i < eng->ncomps; i++) { /* no memory for the index: walk */
        const char *cn = eng->comps[i]->name;
        if (strncmp(cn, name, len) == 0 && cn[len] == '\0') return eng->comps[i];
      }
      return NULL;
    }
  }
  return rc__name_index_find(ix, name, len);
}

void rc__components_free(rc_engine_t *eng) {
  rc__component_names_forget(eng);
  for (size_t i = 0; i < eng->ncomps; i++) rc__component_free(eng->comps[i]);
  rc__free(eng->comps);
  rc__free(eng->order);
  eng->comps = NULL;
  eng->order = NULL;
  eng->ncomps = 0;
}

/* Reads the source description (the normalized table at `s`): its kind, identity and
 * target, a reference to the table, and its options as a value (functions left out: a
 * kind that needs them reads the table). Returns 0, RC_ENOMEM, or RC_EPOLICY with `err`
 * filled. [-0, +0, m] */
static int source_from_lua(lua_State *L, int s, rc__component *c, rc_error *err) {
  rc_engine_t *eng = c->eng;
  char *kind = dup_field(L, s, "kind");
  c->kind = rc__kind_find(kind);
  if (kind && !c->kind) {
    rc__err(err, RC_EPOLICY, eng->policy_path, c->line, 0,
            "component '%s': unknown source kind '%s'", c->name, kind);
    rc__free(kind);
    return RC_EPOLICY;
  }
  rc__free(kind);
  c->src_key = dup_field(L, s, "key");
  c->target = dup_field(L, s, "target");
  if (!c->kind || !c->src_key) return RC_ENOMEM;
  lua_pushvalue(L, s);
  c->src_desc_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  /* The options without their functions, as an immutable value a source may keep. */
  lua_createtable(L, 0, 16);                                  /* stack: opts */
  for (lua_pushnil(L); lua_next(L, s); lua_pop(L, 1)) {
    if (lua_isfunction(L, -1)) continue;
    lua_pushvalue(L, -2);
    lua_pushvalue(L, -2);
    lua_rawset(L, -5);
  }
  char msg[256];
  c->src_opts = rc__lua_to_value(L, -1, RC__LUA_MAX_DEPTH, msg, sizeof msg);
  lua_pop(L, 1);
  if (!c->src_opts)
    return rc__err(err, RC_EPOLICY, eng->policy_path, c->line, 0,
                   "component '%s': source options: %s", c->name, msg);
  return 0;
}

/* startup mode: the policy's, else "wait" for kinds whose first value may come later
 * (over the network) and "default" for the rest. [-0, +0, -] */
static rc__startup_mode startup_from_lua(lua_State *L, int idx, const rc__source_kind *k) {
  lua_getfield(L, idx, "startup");
  const char *m = lua_tostring(L, -1);
  rc__startup_mode s = RC__START_DEFAULT;
  if (m && strcmp(m, "wait") == 0) s = RC__START_WAIT;
  else if (m && strcmp(m, "cached") == 0) s = RC__START_CACHED;
  else if (m && strcmp(m, "fail") == 0) s = RC__START_FAIL;
  else if (!m && k && (k->flags & RC__SRC_WAITS)) s = RC__START_WAIT;
  lua_pop(L, 1);
  return s;
}

/* on_error = "keep" | "default" | function: the function is referenced, the strings
 * become the action. [-0, +0, m] */
void rc__on_error_from_lua(lua_State *L, int idx, int *ref, rc__on_error *action) {
  lua_getfield(L, idx, "on_error");
  *action = RC__ONERR_UNSET;
  *ref = LUA_NOREF;
  if (lua_isfunction(L, -1)) {
    *ref = luaL_ref(L, LUA_REGISTRYINDEX);
    return;
  }
  if (lua_type(L, -1) == LUA_TSTRING)
    *action = strcmp(lua_tostring(L, -1), "default") == 0 ? RC__ONERR_DEFAULT : RC__ONERR_KEEP;
  lua_pop(L, 1);
}

int rc__component_from_lua(rc_engine_t *eng, lua_State *L, int index, rc__component **slot,
                           rc_error *err) {
  int t = lua_gettop(L);
  rc__component *c = rc__calloc(1, sizeof *c);
  if (!c) return RC_ENOMEM;
  c->eng = eng;
  c->index = index;
  c->update_ref = c->condition_ref = c->validate_ref = c->transform_ref = LUA_NOREF;
  c->filter_ref = c->debounce_ref = c->on_error_ref = c->src_desc_ref = LUA_NOREF;
  /* From here on anything may raise a memory error: the slot owns c, so the caller
   * frees it whatever happens. */
  *slot = c;
  c->name = dup_field(L, t, "name");
  c->line = (int)ms_field(L, t, "line", 0);
  c->debounce_ms = ms_field(L, t, "debounce_ms", 0);
  c->debounce_max_ms = ms_field(L, t, "debounce_max_ms", 0);
  c->throttle_ms = ms_field(L, t, "throttle_ms", 0);
  uint64_t burst = ms_field(L, t, "throttle_burst", 1);
  c->throttle_burst = burst < 1 ? 1 : burst > UINT32_MAX ? UINT32_MAX : (uint32_t)burst;
  lua_getfield(L, t, "on_missing");
  c->keep_on_missing = lua_type(L, -1) == LUA_TSTRING && strcmp(lua_tostring(L, -1), "keep") == 0;
  lua_pop(L, 1);
  if (!c->name) goto oom;
  rc__health_link(c);
  lua_getfield(L, t, "default");
  if (!lua_isnil(L, -1)) {
    char msg[256];
    c->default_value = rc__lua_to_value(L, -1, RC__LUA_MAX_DEPTH, msg, sizeof msg);
    if (!c->default_value) {
      lua_settop(L, t);
      return rc__err(err, RC_EPOLICY, eng->policy_path, c->line, 0,
                     "component '%s': default: %s", c->name, msg);
    }
  }
  lua_pop(L, 1);
  lua_getfield(L, t, "source");
  int src_rc = source_from_lua(L, lua_gettop(L), c, err);
  lua_settop(L, t);
  if (src_rc == RC_EPOLICY) return src_rc;
  if (src_rc) goto oom;
  /* Dependencies as 1-based indices (the loader checked them). */
  lua_getfield(L, t, "deps");
  size_t nd = lua_istable(L, -1) ? lua_rawlen(L, -1) : 0;
  if (nd) {
    c->deps = rc__calloc(nd, sizeof *c->deps);
    for (size_t i = 0; c->deps && i < nd; i++) {
      lua_rawgeti(L, -1, (lua_Integer)i + 1);
      c->deps[i] = (int)lua_tointeger(L, -1) - 1;
      lua_pop(L, 1);
    }
    c->ndeps = c->deps ? nd : 0;
  }
  lua_pop(L, 1);
  if (nd && !c->deps) goto oom;
  c->update_ref = fn_ref(L, t, "update");
  c->condition_ref = fn_ref(L, t, "condition");
  c->validate_ref = fn_ref(L, t, "validate");
  c->transform_ref = fn_ref(L, t, "transform");
  c->filter_ref = fn_ref(L, t, "filter");
  c->debounce_ref = fn_ref(L, t, "debounce_fn");
  rc__on_error_from_lua(L, t, &c->on_error_ref, &c->on_error);
  c->force = bool_field(L, t, "force");
  c->startup = startup_from_lua(L, t, c->kind);
  c->startup_timeout_ms = ms_field(L, t, "startup_timeout_ms", 5000);
  c->cache_for_ms = ms_field(L, t, "cache_for_ms", 0);
  c->static_all = bool_field(L, t, "static_all");
  c->secret_all = bool_field(L, t, "secret_all");
  if (!paths_field(L, t, "only", c->name, &c->only, &c->nonly) ||
      !paths_field(L, t, "ignore", c->name, &c->ignore, &c->nignore) ||
      !paths_field(L, t, "static_paths", c->name, &c->static_paths, &c->nstatic) ||
      !paths_field(L, t, "secret_paths", c->name, &c->secret_paths, &c->nsecret))
    goto oom;
  lua_settop(L, t);
  c->processed = c->ndeps > 0 || c->update_ref != LUA_NOREF ||
                 c->condition_ref != LUA_NOREF || c->validate_ref != LUA_NOREF ||
                 c->transform_ref != LUA_NOREF || c->filter_ref != LUA_NOREF ||
                 c->nonly || c->nignore || c->static_all || c->nstatic || c->force;
  c->active = c->condition_ref == LUA_NOREF;
  return 0;
oom:
  lua_settop(L, t);
  return RC_ENOMEM;
}

/* ---- the value a component contributes ---- */

const rc_value_t *rc__component_value(const rc__component *c) {
  if (c->processed) return c->result;
  return c->value ? c->value : c->default_value;
}
