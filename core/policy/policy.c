/* policy.c: the engine's Lua state. Creates it with our embedded modules preloaded,
 * loads a policy file through reactcfg.loader into components, shares the engine's loop
 * with luv, and calls the policy's on_change handler. Every call into Lua is protected. */
#include "engine.h"
#include "registry.h"
#include "lvalue.h"

#include <errno.h>
#include <lauxlib.h>
#include <limits.h>
#include <lualib.h>
#include <luv/luv.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct rc__embedded {
  const char *name, *chunk, *text;
  size_t len;
};
extern const struct rc__embedded rc__embedded_lua[];
extern int luaopen_cjson(lua_State *L);

static const char ENGINE_KEY = 'e'; /* registry: light userdata rc_engine_t* */

/* Memory cap of the engine's Lua state; growth past it fails like any allocation. */
#define RC_LUA_MEM_LIMIT ((size_t)512 << 20)
/* Default time budgets: loading a policy, and each later call into it (on_change,
 * callbacks). A policy's `limits` replaces them and the memory cap. */
#define RC_LUA_LOAD_BUDGET_MS 2000
#define RC_LUA_CALL_BUDGET_MS 1000

/* Per-state bookkeeping, reached from the allocator and the hook through the allocator's
 * user data: memory in use and its cap, and the running call's time budget. */
typedef struct lua_mem {
  size_t used, limit;
  uint64_t call_budget_ms, load_budget_ms;  /* the policy's limits (or the defaults) */
  uint64_t deadline_ns;   /* 0: no budget armed */
  uint64_t budget_ms;
  int depth;              /* nested protected calls: only the outermost arms the budget */
  bool expired;
} lua_mem;

static void *lua_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  lua_mem *m = ud;
  if (!ptr) osize = 0;
  if (nsize == 0) {
    m->used -= osize;
    rc__free(ptr);
    return NULL;
  }
  if (nsize > osize && m->used + (nsize - osize) > m->limit) return NULL;
  void *p = rc__realloc(ptr, nsize);
  if (p) m->used = m->used - osize + nsize;
  return p;
}

static lua_mem *lua_budgets(lua_State *L) {
  void *ud;
  lua_getallocf(L, &ud);
  return ud;
}

/* ---- protected calls ---- */

/* Message handler: keeps error tables as they are, adds a traceback to strings. */
static int msgh(lua_State *L) {
  if (lua_type(L, 1) == LUA_TTABLE) return 1;
  const char *msg = lua_tostring(L, 1);
  if (!msg) {
    if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING) return 1;
    msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
  }
  luaL_traceback(L, L, msg, 1);
  return 1;
}

/* Fills the rc_error (light userdata 2, with its code already set) from the error value
 * 1: a table { message, line } from the loader (read raw: a policy's error object may
 * have metamethods), or a string "chunk:line: message\nstack traceback...".
 * [-0, +0, m] */
static int l_error_text(lua_State *L) {
  rc_error *err = lua_touserdata(L, 2);
  if (lua_type(L, 1) == LUA_TTABLE) {
    lua_pushliteral(L, "message");
    lua_rawget(L, 1);
    lua_pushliteral(L, "line");
    lua_rawget(L, 1);
    const char *msg = lua_tostring(L, -2);
    int line = (int)lua_tointeger(L, -1);
    rc__err(err, err->code, NULL, line, 0, "%s", msg ? msg : "error");
    return 0;
  }
  const char *msg = lua_tostring(L, 1);
  rc__err(err, err->code, NULL, 0, 0, "%s", msg ? msg : "error (not a string)");
  return 0;
}

/* Fills `err` from the error value at the top (see l_error_text), protected: reading it
 * may need memory. [-0, +0, -] */
static void error_from_lua(lua_State *L, int status, rc_error *err) {
  rc_error tmp = {0};
  tmp.code = status == LUA_ERRMEM ? RC_ENOMEM : RC_EPOLICY;
  if (lua_checkstack(L, 6)) {
    lua_pushcfunction(L, l_error_text);
    lua_pushvalue(L, -2);
    lua_pushlightuserdata(L, &tmp);
    if (lua_pcall(L, 2, 0, 0) == LUA_OK) {
      if (err) *err = tmp;
      return;
    }
    lua_pop(L, 1);
  }
  rc__err(err, tmp.code, NULL, 0, 0, "%s",
          status == LUA_ERRMEM ? "not enough memory" : "error (its message could not be read)");
}

/* Count hook: every few thousand instructions, compare the clock with the deadline. Once
 * past it, the hook re-arms on every line and count so the error is raised again right
 * after any pcall in the policy that caught it: the budget cannot be swallowed. */
static void budget_hook(lua_State *L, lua_Debug *ar) {
  void *ud;
  lua_getallocf(L, &ud);
  lua_mem *m = ud;
  if (!m->expired) {
    if (m->deadline_ns == 0 || rc__mono_ns() < m->deadline_ns) return;
    m->expired = true;
    lua_sethook(L, budget_hook, LUA_MASKCOUNT | LUA_MASKLINE, 1);
  }
  /* Our own modules (the loader reporting the error) may finish; policy code may not. */
  if (lua_getinfo(L, "S", ar) && strncmp(ar->source, "@lua/reactcfg/", 14) == 0) return;
  /* Level 0 in a hook is the interrupted function itself: name its line. */
  luaL_where(L, 0);
  lua_pushfstring(L, "stopped: the policy ran longer than its time budget of %d ms",
                  (int)m->budget_ms);
  lua_concat(L, 2);
  lua_error(L);
}

int rc__lua_pcall_budget(lua_State *L, int nargs, int nres, uint64_t budget_ms,
                         rc_error *err) {
  void *ud;
  lua_getallocf(L, &ud);
  lua_mem *m = ud;
  if (m->depth++ == 0) {
    m->expired = false;
    m->budget_ms = budget_ms;
    m->deadline_ns = rc__mono_ns() + budget_ms * 1000000u;
    lua_sethook(L, budget_hook, LUA_MASKCOUNT, 1000);
  }
  int base = lua_gettop(L) - nargs; /* the function's index */
  lua_pushcfunction(L, msgh);
  lua_insert(L, base);
  int status = lua_pcall(L, nargs, nres, base);
  lua_remove(L, base);
  if (--m->depth == 0) {
    lua_sethook(L, NULL, 0, 0);
    m->deadline_ns = 0;
    m->expired = false;
  }
  if (status != LUA_OK) {
    error_from_lua(L, status, err);
    lua_pop(L, 1);
    return status == LUA_ERRMEM ? RC_ENOMEM : RC_EPOLICY;
  }
  return 0;
}

int rc__lua_pcall(lua_State *L, int nargs, int nres, rc_error *err) {
  return rc__lua_pcall_budget(L, nargs, nres, lua_budgets(L)->call_budget_ms, err);
}

/* ---- small helpers for C that calls our Lua modules ---- */

void rc__lua_require_field(lua_State *L, const char *module, const char *field) {
  lua_getglobal(L, "require");
  lua_pushstring(L, module);
  lua_call(L, 1, 1);
  lua_getfield(L, -1, field);
  lua_remove(L, -2);
}

double rc__lua_check_duration(lua_State *L, int idx, const char *what) {
  idx = lua_absindex(L, idx);
  rc__lua_require_field(L, "reactcfg.duration", "parse");
  lua_pushvalue(L, idx);
  lua_call(L, 1, 2);
  if (lua_isnil(L, -2)) {
    if (!what) luaL_argerror(L, idx, lua_tostring(L, -1));
    luaL_error(L, "%s: %s", what, lua_tostring(L, -1));
  }
  double ms = lua_tonumber(L, -2);
  lua_pop(L, 2);
  return ms;
}

/* ---- embedded modules ---- */

/* package.preload entry: runs the embedded text of module `upvalue 1` (index).
 * [-0, +1, e] */
static int l_embedded_loader(lua_State *L) {
  const struct rc__embedded *m = &rc__embedded_lua[lua_tointeger(L, lua_upvalueindex(1))];
  if (luaL_loadbufferx(L, m->text, m->len, m->chunk, "t") != LUA_OK) return lua_error(L);
  lua_call(L, 0, 1);
  if (strcmp(m->name, "reactcfg") == 0 && lua_istable(L, -1)) {
    rc__lua_push_null(L);
    lua_setfield(L, -2, "null");
    rc__lua_push_array_mt(L);
    lua_setfield(L, -2, "array_mt");
  }
  return 1;
}

/* package.preload["reactcfg.kinds"]: the source kinds of the registry, in order, as
 * { name, flags = { cacheable, waits, retry, file }, defaults = { key = number } }, so
 * the Lua side reads what C defines once. [-0, +1, m] */
static int l_kinds(lua_State *L) {
  lua_newtable(L);                                       /* stack: kinds */
  for (int i = 0; rc__source_kinds[i]; i++) {
    const rc__source_kind *k = rc__source_kinds[i];
    lua_createtable(L, 0, 3);                            /* stack: kinds, kind */
    lua_pushstring(L, k->name);
    lua_setfield(L, -2, "name");
    lua_createtable(L, 0, 4);                            /* stack: kinds, kind, flags */
    static const struct { unsigned bit; const char *name; } flags[] = {
      {RC__SRC_CACHEABLE, "cacheable"}, {RC__SRC_WAITS, "waits"},
      {RC__SRC_RETRY, "retry"}, {RC__SRC_FILE, "file"},
    };
    for (size_t f = 0; f < sizeof flags / sizeof *flags; f++) {
      lua_pushboolean(L, (k->flags & flags[f].bit) != 0);
      lua_setfield(L, -2, flags[f].name);
    }
    lua_setfield(L, -2, "flags");
    lua_newtable(L);                                     /* stack: kinds, kind, defaults */
    for (const rc__opt_default *d = k->defaults; d && d->key; d++) {
      if (lua_getfield(L, -1, d->key) == LUA_TNIL) {     /* the first entry wins */
        lua_pushnumber(L, d->value);
        lua_Integer n;
        if (lua_numbertointeger(d->value, &n)) {
          lua_pop(L, 1);
          lua_pushinteger(L, n);
        }
        lua_setfield(L, -3, d->key);
      }
      lua_pop(L, 1);
    }
    lua_setfield(L, -2, "defaults");
    lua_rawseti(L, -2, i + 1);
  }
  return 1;
}

/* package.preload["reactcfg.constants"]: the rules the Lua side checks against and C
 * defines, so each is written once. [-0, +1, m] */
static int l_constants(lua_State *L) {
  lua_createtable(L, 0, 3);
  lua_pushinteger(L, RC__DEBOUNCE_MAX_FACTOR);
  lua_setfield(L, -2, "debounce_max_factor");
  lua_pushinteger(L, RC__PARSE_MAX_DEPTH_CAP);
  lua_setfield(L, -2, "max_parse_depth");
  lua_pushinteger(L, RC__LUA_MAX_DEPTH);
  lua_setfield(L, -2, "max_value_depth");
  return 1;
}

void rc__lua_preload(lua_State *L) {
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE); /* stack: preload */
  for (lua_Integer i = 0; rc__embedded_lua[i].name; i++) {
    lua_pushinteger(L, i);
    lua_pushcclosure(L, l_embedded_loader, 1);
    lua_setfield(L, -2, rc__embedded_lua[i].name);
  }
  lua_pushcfunction(L, l_kinds);
  lua_setfield(L, -2, "reactcfg.kinds");
  lua_pushcfunction(L, l_constants);
  lua_setfield(L, -2, "reactcfg.constants");
  lua_pop(L, 1);
}

/* Opens the standard libraries, cjson and our preloads, and records the engine (the
 * light userdata argument) in the registry. [-1, +0, e] */
static int l_init_state(lua_State *L) {
  lua_rawsetp(L, LUA_REGISTRYINDEX, &ENGINE_KEY);
  luaL_openlibs(L);
  luaL_requiref(L, "cjson", luaopen_cjson, 0);
  lua_pop(L, 1);
  rc__lua_preload(L);
  return 0;
}

lua_State *rc__lua_new_state(rc_engine_t *eng) {
  lua_mem *m = rc__malloc(sizeof *m);
  if (!m) return NULL;
  memset(m, 0, sizeof *m);
  m->limit = RC_LUA_MEM_LIMIT;
  m->call_budget_ms = RC_LUA_CALL_BUDGET_MS;
  m->load_budget_ms = RC_LUA_LOAD_BUDGET_MS;
  lua_State *L = lua_newstate(lua_alloc, m);
  if (!L) {
    rc__free(m);
    return NULL;
  }
  lua_pushcfunction(L, l_init_state);
  lua_pushlightuserdata(L, eng);
  if (rc__lua_pcall(L, 1, 0, NULL) != 0) {
    lua_close(L);
    rc__free(m);
    return NULL;
  }
  return L;
}

void rc__lua_close(lua_State *L) {
  if (!L) return;
  void *ud;
  lua_getallocf(L, &ud);
  lua_close(L);
  rc__free(ud);
}

/* ---- luv on the engine's loop ---- */

static rc_engine_t *engine_of(lua_State *L) {
  lua_rawgetp(L, LUA_REGISTRYINDEX, &ENGINE_KEY);
  rc_engine_t *eng = lua_touserdata(L, -1);
  lua_pop(L, 1);
  return eng;
}

/* luv calls this for every Lua callback (timers, handles). luv's default exits the
 * process on an uncaught error; we report it as a policy.error event instead.
 * Returns the number of results, or a negative status (as luv_cfpcall does). */
static int luv_callback_pcall(lua_State *L, int nargs, int nresult, int flags) {
  RC__UNUSED(flags);
  int top = lua_gettop(L) - nargs - 1;
  rc_error err = {0};
  if (rc__lua_pcall(L, nargs, nresult, &err) != 0) {
    rc_engine_t *eng = engine_of(L);
    if (eng) rc__emit(eng, RC_EVENT_POLICY_ERROR, NULL, eng->policy_path, err.line, 0,
                      RC_EPOLICY, "error in a Lua callback: %s", err.message);
    return -LUA_ERRRUN;
  }
  return nresult == LUA_MULTRET ? lua_gettop(L) - top : nresult;
}

static int l_open_luv(lua_State *L) {
  luaL_requiref(L, "luv", luaopen_luv, 0);
  return 0;
}

int rc__lua_open_luv(rc_engine_t *eng, rc_error *err) {
  luv_set_loop(eng->L, eng->loop);
  luv_set_callback(eng->L, luv_callback_pcall);
  lua_pushcfunction(eng->L, l_open_luv);
  return rc__lua_pcall(eng->L, 0, 0, err);
}

/* ---- loading a policy ---- */

char *rc__read_policy(const char *path, size_t *len, rc_error *err) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    rc__err(err, RC_EIO, path, 0, 0, "cannot open policy: %s", strerror(errno));
    return NULL;
  }
  rc__buf b;
  rc__buf_init(&b);
  char chunk[8192];
  size_t n;
  while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) rc__buf_add(&b, chunk, n);
  int bad = ferror(f);
  fclose(f);
  if (bad || b.oom) {
    rc__buf_free(&b);
    rc__err(err, bad ? RC_EIO : RC_ENOMEM, path, 0, 0, "cannot read policy");
    return NULL;
  }
  *len = b.n;
  return rc__buf_take(&b);
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
  for (size_t i = 0; i < p->ncomps; i++) rc__component_free(p->comps[i]);
  rc__free(p->comps);
  rc__free(p->order);
  luaL_unref(eng->L, LUA_REGISTRYINDEX, p->on_change_ref);
  luaL_unref(eng->L, LUA_REGISTRYINDEX, p->on_error_ref);
  rc__free(p->cache_dir);
  memset(p, 0, sizeof *p);
  p->on_change_ref = p->on_error_ref = LUA_NOREF;
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

int rc__policy_compile(rc_engine_t *eng, const char *text, size_t len, rc__policy *p,
                       rc_error *err) {
  memset(p, 0, sizeof *p);
  p->on_change_ref = p->on_error_ref = LUA_NOREF;
  lua_State *L = eng->L;
  int top = lua_gettop(L);
  /* Only pushes that cannot allocate happen out here (a light C function, a light
   * userdata, a copy of a stack slot, with room checked): everything else may raise a
   * memory error and runs protected. */
  if (!lua_checkstack(L, 8)) return rc__err(err, RC_ENOMEM, NULL, 0, 0, "out of memory");
  compile_job j = {eng, text, len, p, err, 0};
  lua_pushcfunction(L, l_run_loader);
  lua_pushlightuserdata(L, &j);
  rc_error lerr = {0};
  int rc = rc__lua_pcall_budget(L, 1, 1, lua_budgets(L)->load_budget_ms, &lerr);
  if (rc != 0) {
    lua_settop(L, top);
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
  lua_settop(L, top);
  if (j.rc) rc__policy_discard(eng, p);
  return j.rc;
}

void rc__policy_install(rc_engine_t *eng, rc__policy *p) {
  rc__components_free(eng);
  luaL_unref(eng->L, LUA_REGISTRYINDEX, eng->on_change_ref);
  luaL_unref(eng->L, LUA_REGISTRYINDEX, eng->on_error_ref);
  eng->comps = p->comps;
  eng->ncomps = p->ncomps;
  eng->order = p->order;
  eng->on_change_ref = p->on_change_ref;
  eng->on_error_ref = p->on_error_ref;
  eng->on_error = p->on_error;
  rc__free(eng->cache_dir);
  eng->cache_dir = p->cache_dir;
  eng->cache_secrets = p->cache_secrets;
  lua_mem *m = lua_budgets(eng->L);
  m->call_budget_ms = p->call_budget_ms ? p->call_budget_ms : RC_LUA_CALL_BUDGET_MS;
  m->load_budget_ms = p->load_budget_ms ? p->load_budget_ms : RC_LUA_LOAD_BUDGET_MS;
  m->limit = p->memory ? p->memory : RC_LUA_MEM_LIMIT;
  memset(p, 0, sizeof *p);
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
  rc__free(text);
  if (rc) return rc;
  rc__policy_install(eng, &p);
  eng->state = RC__ST_LOADED;
  return 0;
}

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
  b->snap = rc_snapshot_retain((rc_snapshot_t *)snap);
  lua_createtable(L, 0, 1);
  lua_pushcfunction(L, l_snap_gc);
  lua_setfield(L, -2, "__gc");
  lua_setmetatable(L, -2);
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
  rc__lua_push_value(L, r);
  rc__value_unref(r);
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

/* ---- modules the embedder allows ---- */

/* [-0, +0, e] */
static int l_allow(lua_State *L) {
  rc__lua_require_field(L, "reactcfg.sandbox", "allow");
  lua_pushvalue(L, 1);
  lua_call(L, 1, 0);
  return 0;
}

int rc_engine_allow_module(rc_engine_t *eng, const char *name) {
  if (!eng || !name || !*name || strchr(name, '/')) return RC_EINVAL;
  if (eng->state != RC__ST_NEW && eng->state != RC__ST_LOADED) return RC_ESTATE;
  lua_pushcfunction(eng->L, l_allow);
  lua_pushstring(eng->L, name);
  return rc__lua_pcall(eng->L, 1, 0, NULL);
}
