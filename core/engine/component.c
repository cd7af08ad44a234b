/* component.c: one component of a policy: reading its normalized description (the table
 * reactcfg.loader returns) into C, freeing it, and starting, stopping and retiring its
 * source. Runs on the thread that loads the policy, then on the loop thread. */
#include "engine.h"
#include "lvalue.h"

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

void rc__component_free(rc__component *c) {
  if (!c) return;
  lua_State *L = c->eng ? c->eng->L : NULL;
  int *refs[] = {&c->update_ref, &c->condition_ref, &c->validate_ref, &c->transform_ref,
                 &c->filter_ref, &c->debounce_ref, &c->on_error_ref, &c->lua_source_ref,
                 &c->src_desc_ref};
  for (size_t i = 0; L && i < sizeof refs / sizeof *refs; i++)
    luaL_unref(L, LUA_REGISTRYINDEX, *refs[i]);
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
  rc__free(c->src_kind);
  rc__free(c->src_path);
  rc__free(c->src_name);
  rc__free(c->src_prefix);
  rc__free(c->src_format);
  rc__free(c);
}

void rc__components_free(rc_engine_t *eng) {
  for (size_t i = 0; i < eng->ncomps; i++) rc__component_free(eng->comps[i]);
  rc__free(eng->comps);
  rc__free(eng->order);
  eng->comps = NULL;
  eng->order = NULL;
  eng->ncomps = 0;
}

/* Reads the source description (table at `s`). Returns false on OOM. [-0, +0, m] */
static bool source_from_lua(lua_State *L, int s, rc__component *c) {
  c->src_kind = dup_field(L, s, "kind");
  c->src_key = dup_field(L, s, "key");
  c->src_path = dup_field(L, s, "path");
  c->src_name = dup_field(L, s, "name");
  c->src_prefix = dup_field(L, s, "prefix");
  c->src_format = dup_field(L, s, "format");
  c->src_lower = bool_field(L, s, "lower");
  c->src_interval_ms = ms_field(L, s, "interval_ms", 1000);
  c->src_settle_ms = ms_field(L, s, "settle_ms", 25);
  c->src_missing_grace_ms = ms_field(L, s, "missing_grace_ms", 100);
  c->lua_source_ref = fn_ref(L, s, "fn");
  lua_pushvalue(L, s);
  c->src_desc_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  rc__parse_limits_default(&c->limits);
  if (lua_getfield(L, s, "limits") == LUA_TTABLE) {
    int l = lua_gettop(L);
    c->limits.max_bytes = (size_t)ms_field(L, l, "max_bytes", c->limits.max_bytes);
    c->limits.max_string = (size_t)ms_field(L, l, "max_string", c->limits.max_string);
    c->limits.max_depth = (uint32_t)ms_field(L, l, "max_depth", c->limits.max_depth);
    c->limits.max_nodes = (size_t)ms_field(L, l, "max_nodes", c->limits.max_nodes);
  }
  lua_pop(L, 1);
  return c->src_kind && c->src_key;
}

/* startup mode: the policy's, else "wait" for remote sources (their first value comes
 * over the network) and "default" for the rest. [-0, +0, -] */
static rc__startup_mode startup_from_lua(lua_State *L, int idx, const char *kind) {
  lua_getfield(L, idx, "startup");
  const char *m = lua_tostring(L, -1);
  rc__startup_mode s = RC__START_DEFAULT;
  if (m && strcmp(m, "wait") == 0) s = RC__START_WAIT;
  else if (m && strcmp(m, "cached") == 0) s = RC__START_CACHED;
  else if (m && strcmp(m, "fail") == 0) s = RC__START_FAIL;
  else if (!m && kind && (strcmp(kind, "http") == 0 || strcmp(kind, "consul") == 0 ||
                          strcmp(kind, "vault") == 0 || strcmp(kind, "etcd") == 0))
    s = RC__START_WAIT;
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

rc__component *rc__component_from_lua(rc_engine_t *eng, lua_State *L, int index,
                                      rc_error *err) {
  int t = lua_gettop(L);
  rc__component *c = rc__calloc(1, sizeof *c);
  if (!c) return NULL;
  c->eng = eng;
  c->index = index;
  c->update_ref = c->condition_ref = c->validate_ref = c->transform_ref = LUA_NOREF;
  c->filter_ref = c->debounce_ref = c->on_error_ref = c->lua_source_ref = LUA_NOREF;
  c->src_desc_ref = LUA_NOREF;
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
  lua_getfield(L, t, "default");
  if (!lua_isnil(L, -1)) {
    char msg[256];
    c->default_value = rc__lua_to_value(L, -1, 64, msg, sizeof msg);
    if (!c->default_value) {
      lua_pop(L, 1);
      rc__err(err, RC_EPOLICY, eng->policy_path, c->line, 0, "component '%s': default: %s",
              c->name, msg);
      rc__component_free(c);
      return NULL;
    }
  }
  lua_pop(L, 1);
  lua_getfield(L, t, "source");
  bool src_ok = source_from_lua(L, lua_gettop(L), c);
  lua_settop(L, t);
  if (!src_ok) goto oom;
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
  c->startup = startup_from_lua(L, t, c->src_kind);
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
  return c;
oom:
  lua_settop(L, t);
  rc__component_free(c);
  return NULL;
}

/* ---- a source's own options ---- */

/* Pushes field `key` of c's source description. [-0, +1, -] */
static lua_State *push_desc(const rc__component *c, const char *key) {
  lua_State *L = c->eng->L;
  if (c->src_desc_ref == LUA_NOREF || lua_rawgeti(L, LUA_REGISTRYINDEX, c->src_desc_ref) !=
                                         LUA_TTABLE) {
    lua_pushnil(L);
    return L;
  }
  lua_getfield(L, -1, key);
  lua_remove(L, -2);
  return L;
}

char *rc__desc_string(const rc__component *c, const char *key) {
  lua_State *L = push_desc(c, key);
  char *s = lua_type(L, -1) == LUA_TSTRING ? rc__strdup(lua_tostring(L, -1)) : NULL;
  lua_pop(L, 1);
  return s;
}

double rc__desc_number(const rc__component *c, const char *key, double dflt) {
  lua_State *L = push_desc(c, key);
  double n = lua_type(L, -1) == LUA_TNUMBER ? lua_tonumber(L, -1) : dflt;
  lua_pop(L, 1);
  return n;
}

bool rc__desc_bool(const rc__component *c, const char *key, bool dflt) {
  lua_State *L = push_desc(c, key);
  bool b = lua_type(L, -1) == LUA_TBOOLEAN ? lua_toboolean(L, -1) : dflt;
  lua_pop(L, 1);
  return b;
}

void rc__desc_free_list(char **list) {
  for (size_t i = 0; list && list[i]; i++) rc__free(list[i]);
  rc__free(list);
}

/* Appends a copy of the string at the top (popped) to out[*n]; false on OOM. */
static bool take_string(lua_State *L, char **out, size_t *n) {
  out[*n] = rc__strdup(lua_tostring(L, -1));
  lua_pop(L, 1);
  return out[(*n)++] != NULL;
}

char **rc__desc_list(const rc__component *c, const char *key) {
  lua_State *L = push_desc(c, key);
  if (!lua_istable(L, -1)) {
    lua_pop(L, 1);
    return NULL;
  }
  int t = lua_gettop(L);
  size_t len = lua_rawlen(L, t), pairs = 0;
  for (lua_pushnil(L); len == 0 && lua_next(L, t); lua_pop(L, 1)) pairs++;
  char **out = rc__calloc(len + 2 * pairs + 1, sizeof *out);
  size_t n = 0;
  bool ok = out != NULL;
  /* A sequence gives its items in order; a table of strings gives key, value pairs. */
  for (size_t i = 1; ok && i <= len; i++) {
    lua_rawgeti(L, t, (lua_Integer)i);
    if (lua_type(L, -1) == LUA_TSTRING)
      ok = take_string(L, out, &n);
    else
      lua_pop(L, 1);
  }
  for (lua_pushnil(L); ok && len == 0 && lua_next(L, t);) {
    if (lua_type(L, -2) == LUA_TSTRING && lua_type(L, -1) == LUA_TSTRING) {
      lua_pushvalue(L, -2);
      ok = take_string(L, out, &n) && take_string(L, out, &n);
    } else {
      lua_pop(L, 1);
    }
  }
  lua_settop(L, t - 1);
  if (!ok) {
    rc__desc_free_list(out);
    return NULL;
  }
  return out;
}

/* ---- the value a component contributes ---- */

const rc_value_t *rc__component_value(const rc__component *c) {
  if (c->processed) return c->result;
  return c->value ? c->value : c->default_value;
}

/* ---- sources ---- */

int rc__source_create(rc__component *c, rc_error *err) {
  rc_engine_t *eng = c->eng;
  if (strcmp(c->src_kind, "file") == 0)
    c->src = rc__file_source_new(c, err);
  else if (strcmp(c->src_kind, "env") == 0)
    c->src = rc__env_source_new(c, err);
  else if (strcmp(c->src_kind, "lua") == 0)
    c->src = rc__lua_source_new(c, err);
  else if (strcmp(c->src_kind, "http") == 0)
    c->src = rc__http_source_new(c, err);
  else if (strcmp(c->src_kind, "consul") == 0)
    c->src = rc__consul_source_new(c, err);
  else if (strcmp(c->src_kind, "vault") == 0)
    c->src = rc__vault_source_new(c, err);
  else if (strcmp(c->src_kind, "etcd") == 0)
    c->src = rc__etcd_source_new(c, err);
  else
    return rc__err(err, RC_EPOLICY, eng->policy_path, c->line, 0,
                   "component '%s': unknown source kind '%s'", c->name, c->src_kind);
  return c->src ? 0 : err && err->code ? err->code : RC_ENOMEM;
}

int rc__source_start(rc__component *c, rc_error *err) {
  if (c->eng->no_sources) return 0; /* simulation: values come from pushes */
  if (rc__fetch_once_cached(c)) return 0;  /* cache_for: still fresh on disk */
  if (!c->src) {
    int rc = rc__source_create(c, err);
    if (rc) return rc;
  }
  c->starting = true;
  int rc = c->src->ops->start(c->src, err);
  c->starting = false;
  c->dirty = true;
  return rc;
}

static void retired_done(rc__source *s) {
  rc_engine_t *eng = s->eng;
  for (rc__source **p = &eng->retired_srcs; *p; p = &(*p)->next_retired) {
    if (*p == s) {
      *p = s->next_retired;
      break;
    }
  }
  s->ops->free(s);
}

void rc__source_retire(rc_engine_t *eng, rc__source *s) {
  if (!s) return;
  s->comp = NULL;
  s->next_retired = eng->retired_srcs;
  eng->retired_srcs = s;
  s->ops->stop(s, retired_done);
}

void rc__retired_free_all(rc_engine_t *eng) {
  while (eng->retired_srcs) {
    rc__source *s = eng->retired_srcs;
    eng->retired_srcs = s->next_retired;
    s->ops->free(s);
  }
}
