/* SPDX-License-Identifier: MIT (see LICENSE) */
/* modules.c: reload modules, the parts of an application (or of the policy) that apply
 * configuration and may refuse it: C modules registered with rc_module_register (any
 * thread: the list is guarded by mod_mu and never shrinks), then the policy's own
 * (`modules = { ... }`, replaced by a policy reload). A reload takes a copy of the list
 * when it starts (txn.c). */
#include "engine.h"

#include <lauxlib.h>
#include <string.h>

static void module_free(rc__module *m, lua_State *L) {
  if (!m) return;
  if (L && m->lua_ref != LUA_NOREF) luaL_unref(L, LUA_REGISTRYINDEX, m->lua_ref);
  rc__free(m->name);
  for (size_t i = 0; i < m->npatterns; i++) rc__free(m->patterns[i]);
  rc__free(m->patterns);
  rc__free(m);
}

/* A new module named `name` for the `n` patterns (copied); NULL on OOM. */
static rc__module *module_new(const char *name, const char *const *patterns, size_t n,
                              uint32_t timeout_ms) {
  rc__module *m = rc__calloc(1, sizeof *m);
  if (!m) return NULL;
  m->lua_ref = LUA_NOREF;
  m->timeout_ms = timeout_ms ? timeout_ms : RC__MODULE_TIMEOUT_MS;
  m->name = rc__strdup(name);
  m->patterns = rc__calloc(n ? n : 1, sizeof *m->patterns);
  bool ok = m->name && m->patterns;
  for (size_t i = 0; ok && i < n; i++) {
    ok = (m->patterns[i] = rc__strdup(patterns[i] ? patterns[i] : "")) != NULL;
    if (ok) m->npatterns++;
  }
  if (!ok) {
    module_free(m, NULL);
    return NULL;
  }
  return m;
}

bool rc__module_matches(const rc__module *m, const rc_change_t *ch) {
  if (m->npatterns == 0) return true;
  for (size_t i = 0; i < m->npatterns; i++)
    if (rc__change_matches(m->patterns[i], ch)) return true;
  return false;
}

static bool name_used(rc_engine_t *eng, const char *name) {
  for (size_t i = 0; i < eng->ncmods; i++)
    if (strcmp(eng->cmods[i]->name, name) == 0) return true;
  return false;
}

int rc_module_register(rc_engine_t *eng, const char *name, const char *pattern,
                       rc_module_fn apply, uint32_t timeout_ms, void *ud, rc_error *err) {
  if (!eng || !name || !*name || !apply)
    return rc__err(err, RC_EINVAL, NULL, 0, 0, "rc_module_register: engine, name and apply "
                   "needed");
  if (!pattern) pattern = "";
  if (*pattern && !rc__pattern_valid(pattern))
    return rc__err(err, RC_EINVAL, NULL, 0, 0, "module '%s': malformed pattern '%s'", name,
                   pattern);
  rc__module *m = module_new(name, &pattern, 1, timeout_ms);
  if (!m) return rc__err(err, RC_ENOMEM, NULL, 0, 0, "out of memory");
  m->fn = apply;
  m->ud = ud;
  pthread_mutex_lock(&eng->mod_mu);
  int rc = 0;
  if (name_used(eng, name)) {
    rc = rc__err(err, RC_EINVAL, NULL, 0, 0, "a module named '%s' is registered already",
                 name);
  } else if (RC__GROW(eng->cmods, eng->capcmods, eng->ncmods + 1, 8)) {
    rc = rc__err(err, RC_ENOMEM, NULL, 0, 0, "out of memory");
  }
  if (rc == 0) {
    m->id = ++eng->next_module_id;
    eng->cmods[eng->ncmods++] = m;
    rc = m->id;
  }
  pthread_mutex_unlock(&eng->mod_mu);
  if (rc < 0) module_free(m, NULL);
  return rc;
}

rc__module **rc__modules_snapshot(rc_engine_t *eng, size_t *n, bool *oom) {
  pthread_mutex_lock(&eng->mod_mu);
  size_t total = eng->ncmods + eng->npmods;
  rc__module **list = total ? rc__malloc(total * sizeof *list) : NULL;
  if (list) {
    if (eng->ncmods) memcpy(list, eng->cmods, eng->ncmods * sizeof *list);
    if (eng->npmods) memcpy(list + eng->ncmods, eng->pmods, eng->npmods * sizeof *list);
  }
  pthread_mutex_unlock(&eng->mod_mu);
  *oom = total && !list;
  *n = list ? total : 0;
  return list;
}

void rc__policy_modules_set(rc_engine_t *eng, rc__module **mods, size_t n) {
  pthread_mutex_lock(&eng->mod_mu);
  rc__module **old = eng->pmods;
  size_t nold = eng->npmods;
  eng->pmods = mods;
  eng->npmods = n;
  pthread_mutex_unlock(&eng->mod_mu);
  for (size_t i = 0; i < nold; i++) module_free(old[i], eng->L);
  rc__free(old);
}

void rc__policy_modules_free(lua_State *L, rc__module **mods, size_t n) {
  for (size_t i = 0; i < n; i++) module_free(mods[i], L);
  rc__free(mods);
}

void rc__modules_free(rc_engine_t *eng) {
  for (size_t i = 0; i < eng->ncmods; i++) module_free(eng->cmods[i], NULL);
  rc__free(eng->cmods);
  eng->cmods = NULL;
  eng->ncmods = eng->capcmods = 0;
  rc__policy_modules_set(eng, NULL, 0);
}

rc__module *rc__module_new_lua(const char *name, const char *const *patterns, size_t n,
                               uint32_t timeout_ms) {
  return module_new(name, patterns, n, timeout_ms);
}
