/* SPDX-License-Identifier: MIT (see LICENSE) */
/* compile.c: loading a policy: reading its file (without blocking, a regular file of
 * bounded size), running reactcfg.loader on it in a Lua state of its own under the load
 * budget, reading the loader's result into components (protected: a memory error cannot
 * escape), and installing the result in the engine, whose previous state is retired.
 * One state per policy version: nothing a version does to the string metatable, the
 * library tables or the vocabulary reaches the next one, or survives a rejected
 * reload. */
#include "lua_state.h"
#include "lvalue.h"

#include <errno.h>
#include <fcntl.h>
#include <lauxlib.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- loading a policy ---- */

/* What a policy file is when it is not a regular file, for the message. */
static const char *file_kind(mode_t m) {
  if (S_ISDIR(m)) return "a directory";
  if (S_ISFIFO(m)) return "a FIFO";
  if (S_ISSOCK(m)) return "a socket";
  if (S_ISCHR(m)) return "a character device";
  if (S_ISBLK(m)) return "a block device";
  return "not a regular file";
}

char *rc__read_policy(const char *path, size_t *len, rc_error *err) {
  /* O_NONBLOCK: opening a FIFO must not wait for a writer. */
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
  if (fd < 0) {
    rc__err(err, errno == EMFILE || errno == ENFILE ? RC_ESYS : RC_EIO, path, 0, 0,
            "cannot open policy: %s", strerror(errno));
    return NULL;
  }
  struct stat st;
  if (fstat(fd, &st) != 0) {
    rc__err(err, RC_EIO, path, 0, 0, "cannot read policy: %s", strerror(errno));
    close(fd);
    return NULL;
  }
  if (!S_ISREG(st.st_mode)) {
    rc__err(err, RC_EIO, path, 0, 0, "the policy is %s, not a regular file",
            file_kind(st.st_mode));
    close(fd);
    return NULL;
  }
  if ((uint64_t)st.st_size > RC__POLICY_MAX_BYTES) {
    rc__err(err, RC_ELIMIT, path, 0, 0, "the policy is larger than the limit of %zu bytes",
            (size_t)RC__POLICY_MAX_BYTES);
    close(fd);
    return NULL;
  }
  rc__buf b;
  rc__buf_init(&b);
  char chunk[8192];
  ssize_t n;
  int bad = 0;
  for (;;) {
    n = read(fd, chunk, sizeof chunk);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      bad = n < 0 ? errno : 0;
      break;
    }
    rc__buf_add(&b, chunk, (size_t)n);
    if (b.n > RC__POLICY_MAX_BYTES) {      /* it grew while we read */
      bad = EFBIG;
      break;
    }
  }
  close(fd);
  if (bad || b.oom) {
    rc__buf_free(&b);
    if (bad == EFBIG)
      rc__err(err, RC_ELIMIT, path, 0, 0, "the policy is larger than the limit of %zu bytes",
              (size_t)RC__POLICY_MAX_BYTES);
    else
      rc__err(err, bad ? RC_EIO : RC_ENOMEM, path, 0, 0, "cannot read policy: %s",
              bad ? strerror(bad) : "out of memory");
    return NULL;
  }
  *len = b.n;
  char *text = rc__buf_take(&b);
  if (!text) text = rc__strdup("");        /* an empty file */
  if (!text) rc__err(err, RC_ENOMEM, path, 0, 0, "cannot read policy: out of memory");
  return text;
}

/* What a policy compile works on (arguments of the protected calls below). */
typedef struct compile_job {
  rc_engine_t *eng;
  const char *text;
  size_t len;
  rc__policy *p;
  rc_error *err;
  int rc;
} compile_job;

/* Runs reactcfg.loader.load(text, path, dir) for the job (light userdata argument) and
 * leaves its result on the stack. Everything it pushes may raise: it runs protected.
 * [-1, +1, e] */
static int l_run_loader(lua_State *L) {
  compile_job *j = lua_touserdata(L, 1);
  lua_pop(L, 1);
  rc__lua_require_field(L, "reactcfg.loader", "load");
  lua_pushlstring(L, j->text, j->len);
  lua_pushstring(L, j->eng->policy_path);
  lua_pushstring(L, j->eng->policy_dir);
  lua_call(L, 3, 1);
  return 1;
}

/* The loader's error, as "file:line: message" without the traceback. */
static int loader_error(const rc_error *lerr, const char *path, int rc, rc_error *err) {
  if (err) {
    *err = *lerr;
    snprintf(err->file, sizeof err->file, "%s", path);
    char *nl = strchr(err->message, '\n');
    if (nl) *nl = '\0';
  }
  return rc;
}

void rc__policy_discard(rc_engine_t *eng, rc__policy *p) {
  if (eng->names && eng->names->comps == p->comps) rc__component_names_forget(eng);
  /* The components' Lua references die with the version's state. */
  for (size_t i = 0; i < p->ncomps; i++) rc__component_free(p->comps[i]);
  rc__free(p->comps);
  rc__free(p->order);
  rc__free(p->cache_dir);
  rc__policy_modules_free(p->L, p->mods, p->nmods);
  rc__lua_retire(eng, p->L);
  rc__free(p->admin_listen);
  rc__free(p->admin_token_env);
  memset(p, 0, sizeof *p);
  p->on_change_ref = p->on_error_ref = LUA_NOREF;
  p->history = -1;
}

/* The loader's `modules` (at the top) into p->mods: each in p at once (raise-safe).
 * Returns 0 or RC_ENOMEM. [-0, +0, m] */
static int modules_from_lua(lua_State *L, rc__policy *p) {
  int t = lua_gettop(L);
  size_t n = lua_istable(L, t) ? lua_rawlen(L, t) : 0;
  if (n == 0) return 0;
  p->mods = rc__calloc(n, sizeof *p->mods);
  if (!p->mods) return RC_ENOMEM;
  for (size_t i = 0; i < n; i++) {
    lua_rawgeti(L, t, (lua_Integer)i + 1);                 /* stack: mods, m */
    int m = lua_gettop(L);
    lua_getfield(L, m, "name");
    lua_getfield(L, m, "timeout_ms");
    lua_getfield(L, m, "paths");                           /* stack: mods, m, n, t, paths */
    const char *pat[64];
    size_t np = lua_rawlen(L, -1);
    if (np > 64) np = 64;
    for (size_t k = 0; k < np; k++) {
      lua_rawgeti(L, -1, (lua_Integer)k + 1);
      pat[k] = lua_tostring(L, -1); /* kept alive by the paths table on the stack */
      lua_pop(L, 1);
    }
    rc__module *mod = rc__module_new_lua(lua_tostring(L, m + 1), pat, np,
                                         (uint32_t)lua_tointeger(L, m + 2));
    if (!mod) return RC_ENOMEM;
    p->mods[p->nmods++] = mod;
    lua_getfield(L, m, "apply");
    mod->lua_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_settop(L, t);
  }
  return 0;
}

/* Reads the loader's result (table at `spec`) into `p`: everything C allocates is in
 * `p` at once, so that a memory error raised on the way leaves nothing but what
 * rc__policy_discard frees. Call it protected (l_policy_from_lua). [-0, +0, m] */
static int policy_from_lua(rc_engine_t *eng, lua_State *L, int spec, rc__policy *p,
                           rc_error *err) {
  const char *path = eng->policy_path;
  lua_getfield(L, spec, "components");
  size_t n = lua_rawlen(L, -1);
  p->comps = rc__calloc(n ? n : 1, sizeof *p->comps);
  p->order = rc__calloc(n ? n : 1, sizeof *p->order);
  if (!p->comps || !p->order) return rc__err(err, RC_ENOMEM, path, 0, 0, "out of memory");
  for (size_t i = 0; i < n; i++) {
    lua_rawgeti(L, -1, (lua_Integer)i + 1);
    rc_error cerr = {0};
    /* Counted first: if reading it raises, discard still finds (and frees) it. */
    rc__component **slot = &p->comps[p->ncomps++];
    int rc = rc__component_from_lua(eng, L, (int)i, slot, &cerr);
    lua_pop(L, 1);
    if (rc == RC_EPOLICY) {
      if (err) *err = cerr;
      return rc;
    }
    if (rc) return rc__err(err, RC_ENOMEM, path, 0, 0, "out of memory");
  }
  lua_pop(L, 1);
  for (size_t i = 0; i < p->ncomps; i++)
    for (size_t d = 0; d < p->comps[i]->ndeps; d++)
      p->comps[p->comps[i]->deps[d]]->depended_on = true;
  lua_getfield(L, spec, "order");
  for (size_t i = 0; i < n; i++) {
    lua_rawgeti(L, -1, (lua_Integer)i + 1);
    p->order[i] = (int)lua_tointeger(L, -1) - 1;
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  lua_getfield(L, spec, "on_change");
  p->on_change_ref = lua_isfunction(L, -1) ? luaL_ref(L, LUA_REGISTRYINDEX) : LUA_NOREF;
  if (p->on_change_ref == LUA_NOREF) lua_pop(L, 1);
  rc__on_error_from_lua(L, spec, &p->on_error_ref, &p->on_error);
  lua_getfield(L, spec, "cache_dir");
  if (lua_type(L, -1) == LUA_TSTRING) {
    p->cache_dir = rc__strdup(lua_tostring(L, -1));
    if (!p->cache_dir) return rc__err(err, RC_ENOMEM, path, 0, 0, "out of memory");
  }
  lua_getfield(L, spec, "cache_secrets");
  p->cache_secrets = lua_toboolean(L, -1);
  lua_pop(L, 2);
  lua_getfield(L, spec, "modules");
  int mrc = modules_from_lua(L, p);
  lua_pop(L, 1);
  if (mrc) return rc__err(err, RC_ENOMEM, path, 0, 0, "out of memory");
  lua_getfield(L, spec, "history");
  p->history = lua_isinteger(L, -1) ? (long)lua_tointeger(L, -1) : -1;
  lua_pop(L, 1);
  if (lua_getfield(L, spec, "reload_backoff") == LUA_TTABLE) {
    lua_getfield(L, -1, "min_ms");
    p->backoff_min_ms = (uint64_t)lua_tonumber(L, -1);
    lua_getfield(L, -2, "max_ms");
    p->backoff_max_ms = (uint64_t)lua_tonumber(L, -1);
    lua_pop(L, 2);
  }
  lua_pop(L, 1);
  if (lua_getfield(L, spec, "admin") == LUA_TTABLE) { /* checked by the loader */
    lua_getfield(L, -1, "listen");
    lua_getfield(L, -2, "token_env");
    p->admin_listen = rc__strdup(lua_tostring(L, -2));
    if (lua_isstring(L, -1)) p->admin_token_env = rc__strdup(lua_tostring(L, -1));
    if (!p->admin_listen || (lua_isstring(L, -1) && !p->admin_token_env))
      return rc__err(err, RC_ENOMEM, path, 0, 0, "out of memory");
    lua_pop(L, 2);
  }
  lua_pop(L, 1);
  if (lua_getfield(L, spec, "limits") == LUA_TTABLE) {
    int l = lua_gettop(L);
    lua_getfield(L, l, "time_ms");
    p->call_budget_ms = (uint64_t)lua_tointeger(L, -1);
    lua_getfield(L, l, "load_time_ms");
    p->load_budget_ms = (uint64_t)lua_tointeger(L, -1);
    lua_getfield(L, l, "memory");
    p->memory = (size_t)lua_tointeger(L, -1);
  }
  lua_settop(L, spec);
  return 0;
}

/* policy_from_lua under lua_pcall: args (job, spec). [-2, +0, m] */
static int l_policy_from_lua(lua_State *L) {
  compile_job *j = lua_touserdata(L, 1);
  j->rc = policy_from_lua(j->eng, L, 2, j->p, j->err);
  return 0;
}

/* The version's limits take effect in its state at once: its first evaluation (a
 * reload's trial) already runs under them. */
static void apply_limits(const rc__policy *p) {
  lua_mem *m = rc__lua_mem(p->L);
  m->call_budget_ms = p->call_budget_ms ? p->call_budget_ms : RC_LUA_CALL_BUDGET_MS;
  m->load_budget_ms = p->load_budget_ms ? p->load_budget_ms : RC_LUA_LOAD_BUDGET_MS;
  m->limit = p->memory ? p->memory : RC_LUA_MEM_LIMIT;
}

int rc__policy_compile(rc_engine_t *eng, const char *text, size_t len, rc__policy *p,
                       rc_error *err) {
  memset(p, 0, sizeof *p);
  p->on_change_ref = p->on_error_ref = LUA_NOREF;
  p->history = -1;
  p->L = rc__lua_new_state(eng);
  if (!p->L)
    return rc__err(err, RC_ENOMEM, eng->policy_path, 0, 0,
                   "cannot create a Lua state for the policy: out of memory");
  lua_State *L = p->L;
  /* The new version loads under the limits of the one in force (its own apply once it
   * loaded). */
  if (eng->L) {
    const lua_mem *cur = rc__lua_mem(eng->L);
    lua_mem *m = rc__lua_mem(L);
    m->load_budget_ms = cur->load_budget_ms;
    m->call_budget_ms = cur->call_budget_ms;
    if (cur->limit > m->used) m->limit = cur->limit;
  }
  /* A version loaded while the engine runs has luv on the loop from the start (a Lua
   * source gets it; an allowed `require "luv"` too). */
  if (eng->loop) {
    int rc = rc__lua_open_luv_on(L, eng->loop, err);
    if (rc) {
      rc__policy_discard(eng, p);
      return rc;
    }
  }
  /* Only pushes that cannot allocate happen out here (a light C function, a light
   * userdata, a copy of a stack slot, with room checked): everything else may raise a
   * memory error and runs protected. */
  if (!lua_checkstack(L, 8)) {
    rc__policy_discard(eng, p);
    return rc__err(err, RC_ENOMEM, NULL, 0, 0, "out of memory");
  }
  compile_job j = {eng, text, len, p, err, 0};
  /* One budget for running the policy and reading what it declared: a value that is
   * costly to convert (a table shared many times) counts against the load as well. */
  rc__lua_budget_arm(L, rc__lua_mem(L)->load_budget_ms);
  lua_pushcfunction(L, l_run_loader);
  lua_pushlightuserdata(L, &j);
  rc_error lerr = {0};
  int rc = rc__lua_pcall(L, 1, 1, &lerr);
  if (rc != 0) {
    rc__lua_budget_disarm(L);
    rc__policy_discard(eng, p);
    return loader_error(&lerr, eng->policy_path, rc, err);
  }
  /* stack: spec. Reading it into C: protected as well. */
  lua_pushcfunction(L, l_policy_from_lua);
  lua_pushlightuserdata(L, &j);
  lua_pushvalue(L, -3);                                   /* stack: spec, fn, job, spec */
  if (lua_pcall(L, 2, 0, 0) != LUA_OK) {
    j.rc = rc__err(err, RC_ENOMEM, eng->policy_path, 0, 0,
                   "out of memory reading the policy");
  }
  rc__lua_budget_disarm(L);
  lua_settop(L, 0);
  if (j.rc) {
    rc__policy_discard(eng, p);
    return j.rc;
  }
  apply_limits(p);
  return 0;
}

void rc__policy_install(rc_engine_t *eng, rc__policy *p) {
  /* The running version's components go first (their sources were stopped or handed
   * over by the caller), then its state: luv handles closed, closed itself once they
   * are. */
  rc__components_free(eng);
  rc__policy_modules_set(eng, p->mods, p->nmods); /* the old ones unref in the old state */
  rc__lua_retire(eng, eng->L);
  eng->L = p->L;
  eng->comps = p->comps;
  eng->ncomps = p->ncomps;
  eng->order = p->order;
  eng->on_change_ref = p->on_change_ref;
  eng->on_error_ref = p->on_error_ref;
  eng->on_error = p->on_error;
  rc__free(eng->cache_dir);
  eng->cache_dir = p->cache_dir;
  eng->cache_secrets = p->cache_secrets;
  rc__history_resize(eng, p->history >= 0 ? (size_t)p->history : RC__HISTORY_DEFAULT);
  eng->backoff_min_ms = p->backoff_min_ms ? p->backoff_min_ms : RC__RELOAD_BACKOFF_MIN_MS;
  eng->backoff_max_ms = p->backoff_max_ms ? p->backoff_max_ms : RC__RELOAD_BACKOFF_MAX_MS;
  if (eng->backoff_max_ms < eng->backoff_min_ms) eng->backoff_max_ms = eng->backoff_min_ms;
  /* Read at start only (a running endpoint stays as it is; see docs/OPERATIONS.md). */
  rc__free(eng->admin_listen);
  rc__free(eng->admin_token_env);
  eng->admin_listen = p->admin_listen;
  eng->admin_token_env = p->admin_token_env;
  memset(p, 0, sizeof *p);
  rc__health_install(eng);
}

int rc_engine_load_policy(rc_engine_t *eng, const char *path, rc_error *err) {
  if (!eng || !path) return rc__err(err, RC_EINVAL, NULL, 0, 0, "engine and path needed");
  if (eng->state != RC__ST_NEW)
    return rc__err(err, RC_ESTATE, path, 0, 0, "a policy is already loaded");
  size_t len;
  char *text = rc__read_policy(path, &len, err);
  if (!text) return err ? err->code : RC_EIO;
  char real[PATH_MAX];
  if (!realpath(path, real)) snprintf(real, sizeof real, "%s", path);
  char *slash = strrchr(real, '/');
  char *dir = slash ? rc__strndup(real, slash == real ? 1 : (size_t)(slash - real))
                    : rc__strdup(".");
  eng->policy_path = rc__strdup(path);
  eng->policy_real = rc__strdup(real);
  eng->policy_dir = dir;
  if (!eng->policy_path || !eng->policy_real || !dir) {
    rc__free(text);
    return rc__err(err, RC_ENOMEM, path, 0, 0, "out of memory");
  }
  rc__policy p;
  int rc = rc__policy_compile(eng, text, len, &p, err);
  eng->policy_hash = rc__hash64(text, len);
  rc__digest128(text, len, eng->policy_digest);
  rc__free(text);
  if (rc) return rc;
  rc__policy_install(eng, &p);
  eng->state = RC__ST_LOADED;
  return 0;
}

