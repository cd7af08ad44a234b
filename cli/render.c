/* SPDX-License-Identifier: MIT (see LICENSE) */
/* render.c: the policy's outputs and their templates. A Lua state of its own (not the
 * engine's) reads the `outputs` section through the same loader the engine uses, and
 * renders each template with reactcfg.template on a snapshot's values, under the same
 * time budget and memory cap as policy code. Loop thread only. */
#include "sidecar.h"
#include "engine.h"
#include "lvalue.h"

#include <errno.h>
#include <lauxlib.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct render {
  rc_engine_t *eng;
  lua_State *L;
  char *policy;                 /* the policy file, as given */
  render_output *outs;
  size_t nouts;
};

/* ---- the outputs list ---- */

static void outputs_free(render_output *outs, size_t n) {
  for (size_t i = 0; i < n; i++) {
    render_output *o = &outs[i];
    rc__free(o->name);
    rc__free(o->path);
    rc__free(o->template_path);
    rc__free(o->text);
    for (char **a = o->argv; a && *a; a++) rc__free(*a);
    rc__free(o->argv);
  }
  rc__free(outs);
}

/* The signal an output names for the --exec child ("HUP", "restart") as a number. */
int render_signal_number(const char *name) {
  static const struct { const char *name; int sig; } SIGS[] = {
    {"HUP", SIGHUP}, {"INT", SIGINT}, {"QUIT", SIGQUIT}, {"TERM", SIGTERM},
    {"USR1", SIGUSR1}, {"USR2", SIGUSR2}, {"WINCH", SIGWINCH}, {"ALRM", SIGALRM},
    {"restart", RENDER_RESTART}};
  if (name && strncmp(name, "SIG", 3) == 0) name += 3;
  for (size_t i = 0; name && i < sizeof SIGS / sizeof *SIGS; i++)
    if (strcmp(SIGS[i].name, name) == 0) return SIGS[i].sig;
  return 0;
}

/* Copies field `k` (a string) of the table at `t`, or NULL. [-0, +0, m] */
static char *string_field(lua_State *L, int t, const char *k, size_t *len, bool *oom) {
  lua_getfield(L, t, k);
  char *s = NULL;
  size_t n = 0;
  if (lua_type(L, -1) == LUA_TSTRING) {
    const char *v = lua_tolstring(L, -1, &n);
    s = rc__malloc(n + 1);
    if (s) {
      memcpy(s, v, n);
      s[n] = '\0';
    } else {
      *oom = true;
    }
  }
  if (len) *len = n;
  lua_pop(L, 1);
  return s;
}

typedef struct load_args {
  const char *text;
  size_t len;
  const char *path, *dir;
  render_output *outs;
  size_t nouts;
  bool oom;
} load_args;

/* Runs the loader on the policy text and copies its `outputs` into C. Runs policy code
 * (the whole policy is evaluated again, as the engine did). [-0, +0, e] */
static int l_load_outputs(lua_State *L) {
  load_args *a = lua_touserdata(L, 1);
  /* This state reads the policy again for its outputs: its prints were the engine's. */
  lua_pushboolean(L, 1);
  lua_setfield(L, LUA_REGISTRYINDEX, RC__LUA_QUIET_KEY);
  rc__lua_require_field(L, "reactcfg.loader", "load");
  lua_pushlstring(L, a->text, a->len);
  lua_pushstring(L, a->path);
  lua_pushstring(L, a->dir);
  lua_call(L, 3, 1);                                  /* stack: args, policy */
  if (lua_getfield(L, -1, "outputs") != LUA_TTABLE) return 0;
  int list = lua_gettop(L);                           /* stack: args, policy, outputs */
  size_t n = (size_t)lua_rawlen(L, list);
  a->outs = rc__calloc(n ? n : 1, sizeof *a->outs);
  if (!a->outs) return luaL_error(L, "not enough memory");
  for (size_t i = 0; i < n; i++) {
    lua_rawgeti(L, list, (lua_Integer)i + 1);        /* stack: ..., output */
    int t = lua_gettop(L);
    render_output *o = &a->outs[a->nouts++];
    o->name = string_field(L, t, "name", NULL, &a->oom);
    o->path = string_field(L, t, "path", NULL, &a->oom);
    o->template_path = string_field(L, t, "template", NULL, &a->oom);
    o->text = string_field(L, t, "text", &o->text_len, &a->oom);
    lua_getfield(L, t, "line");
    o->line = (int)lua_tointeger(L, -1);
    lua_getfield(L, t, "mode");
    o->mode = lua_isinteger(L, -1) ? (int)lua_tointeger(L, -1) : -1;
    lua_getfield(L, t, "signal");
    if (lua_type(L, -1) == LUA_TBOOLEAN)
      o->signal = RENDER_NO_SIGNAL;
    else if (lua_type(L, -1) == LUA_TSTRING)
      o->signal = render_signal_number(lua_tostring(L, -1));
    lua_pop(L, 3);
    if (lua_getfield(L, t, "command") == LUA_TTABLE) {
      size_t argc = (size_t)lua_rawlen(L, -1);
      o->argv = rc__calloc(argc + 1, sizeof *o->argv);
      if (!o->argv) a->oom = true;
      for (size_t k = 0; o->argv && k < argc; k++) {
        lua_rawgeti(L, -1, (lua_Integer)k + 1);
        o->argv[k] = rc__strdup(lua_tostring(L, -1));
        if (!o->argv[k]) a->oom = true;
        lua_pop(L, 1);
      }
    }
    lua_settop(L, list);
    if (a->oom) return luaL_error(L, "not enough memory");
  }
  return 0;
}

int render_load(render *r, rc_error *err) {
  size_t len;
  char *text = rc__read_policy(r->policy, &len, err);
  if (!text) return err ? err->code : RC_EIO;
  char dir[4096];
  snprintf(dir, sizeof dir, "%s", r->eng->policy_dir ? r->eng->policy_dir : ".");
  load_args a = {.text = text, .len = len, .path = r->policy, .dir = dir};
  lua_pushcfunction(r->L, l_load_outputs);
  lua_pushlightuserdata(r->L, &a);
  /* The engine loaded the same text under the policy's load budget (2 s unless its
   * `limits` say more, which this state does not know yet): a generous one here. */
  rc_error lerr = {0};
  int rc = rc__lua_pcall_budget(r->L, 1, 0, 10000, &lerr);
  rc__free(text);
  if (rc != 0) {
    outputs_free(a.outs, a.nouts);
    if (err) {
      *err = lerr;
      snprintf(err->file, sizeof err->file, "%s", r->policy);
      char *nl = strchr(err->message, '\n');
      if (nl) *nl = '\0';
    }
    return rc;
  }
  outputs_free(r->outs, r->nouts);
  r->outs = a.outs;
  r->nouts = a.nouts;
  return 0;
}

render *render_new(rc_engine_t *eng, const char *policy, rc_error *err) {
  render *r = rc__calloc(1, sizeof *r);
  if (!r) {
    rc__err(err, RC_ENOMEM, policy, 0, 0, "out of memory");
    return NULL;
  }
  r->eng = eng;
  r->policy = rc__strdup(policy);
  r->L = rc__lua_new_state(eng);
  if (!r->policy || !r->L) {
    rc__err(err, RC_ENOMEM, policy, 0, 0, "out of memory");
    render_free(r);
    return NULL;
  }

  if (render_load(r, err) != 0) {
    render_free(r);
    return NULL;
  }
  return r;
}

void render_free(render *r) {
  if (!r) return;
  outputs_free(r->outs, r->nouts);
  rc__lua_close(r->L);
  rc__free(r->policy);
  rc__free(r);
}

size_t render_count(const render *r) { return r ? r->nouts : 0; }

const render_output *render_get(const render *r, size_t i) {
  return r && i < r->nouts ? &r->outs[i] : NULL;
}

/* ---- rendering ---- */

typedef struct render_args {
  const char *text, *name;
  size_t len;
  const rc_value_t *root;
  char *out;
  size_t out_len;
} render_args;

/* template.render(text, name, config) with the configuration as plain Lua tables; the
 * result is copied out. [-0, +0, e] */
static int l_render(lua_State *L) {
  render_args *a = lua_touserdata(L, 1);
  rc__lua_require_field(L, "reactcfg.template", "render");
  lua_pushlstring(L, a->text, a->len);
  lua_pushstring(L, a->name);
  rc__lua_push_value(L, a->root);
  lua_call(L, 3, 2);                                  /* stack: args, text | nil, err */
  if (lua_isnil(L, -2)) return lua_error(L);
  size_t n;
  const char *s = lua_tolstring(L, -2, &n);
  a->out = rc__malloc(n + 1);
  if (!a->out) return luaL_error(L, "not enough memory");
  memcpy(a->out, s, n);
  a->out[n] = '\0';
  a->out_len = n;
  return 0;
}

/* Reads a template file whole (templates are small: at most 16 MiB). */
static char *read_template(const char *path, size_t *len, rc_error *err) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    rc__err(err, RC_EIO, path, 0, 0, "cannot open template: %s", strerror(errno));
    return NULL;
  }
  rc__buf b;
  rc__buf_init(&b);
  char chunk[8192];
  size_t n;
  while ((n = fread(chunk, 1, sizeof chunk, f)) > 0 && b.n < ((size_t)16 << 20))
    rc__buf_add(&b, chunk, n);
  bool bad = ferror(f) || b.n >= ((size_t)16 << 20);
  fclose(f);
  if (bad || b.oom) {
    rc__buf_free(&b);
    rc__err(err, b.oom ? RC_ENOMEM : RC_EIO, path, 0, 0, "cannot read template%s",
            bad ? " (larger than 16 MiB?)" : "");
    return NULL;
  }
  *len = b.n;
  return b.n ? rc__buf_take(&b) : rc__strdup("");
}

int render_run(render *r, size_t i, const rc_value_t *root, char **out, size_t *len,
               rc_error *err) {
  const render_output *o = render_get(r, i);
  if (!o) return rc__err(err, RC_EINVAL, NULL, 0, 0, "no output %zu", i);
  char *file_text = NULL;
  size_t text_len = o->text_len;
  if (o->template_path) {
    file_text = read_template(o->template_path, &text_len, err);
    if (!file_text) return err ? err->code : RC_EIO;
  }
  char name[300];
  if (o->template_path)
    snprintf(name, sizeof name, "%s", o->template_path);
  else
    snprintf(name, sizeof name, "%s (output '%s')", r->policy, o->name);
  render_args a = {.text = file_text ? file_text : o->text, .len = text_len, .name = name,
                   .root = root};
  lua_pushcfunction(r->L, l_render);
  lua_pushlightuserdata(r->L, &a);
  rc_error lerr = {0};
  int rc = rc__lua_pcall(r->L, 1, 0, &lerr);
  rc__free(file_text);
  if (rc != 0) {
    rc__free(a.out);
    if (err) {
      *err = lerr;
      char *nl = strchr(err->message, '\n');
      if (nl) *nl = '\0';
    }
    return rc;
  }
  *out = a.out;
  *len = a.out_len;
  return 0;
}

/* ---- --dry-run: what a template sees when its text is printed ---- */

/* `v` (at `path`) with every scalar at a secret path replaced by "<redacted>" and the
 * shape kept, so that a template that walks a secret table still renders. NULL on OOM. */
static rc_value_t *redact_leaves(const rc_engine_t *eng, rc__buf *path, const rc_value_t *v) {
  rc_type_t t = rc_value_type(v);
  size_t mark = path->n;
  if (t == RC_TYPE_OBJECT) {
    rc__object_builder b;
    rc__object_begin(&b);
    for (size_t i = 0; i < v->len; i++) {
      const rc__member *m = &v->u.members[i];
      rc__path_add_key(path, m->key, m->klen);
      rc_value_t *child = path->oom ? NULL : redact_leaves(eng, path, m->val);
      path->n = mark;
      if (path->p) path->p[mark] = '\0';
      rc__object_put(&b, m->key, m->klen, child);
    }
    return rc__object_end(&b);
  }
  if (t == RC_TYPE_ARRAY) {
    rc__array_builder b;
    rc__array_begin(&b);
    for (size_t i = 0; i < v->len; i++) {
      rc__path_add_index(path, i);
      rc_value_t *child = path->oom ? NULL : redact_leaves(eng, path, v->u.items[i]);
      path->n = mark;
      if (path->p) path->p[mark] = '\0';
      rc__array_push(&b, child);
    }
    return rc__array_end(&b);
  }
  return rc__redact(eng, path->p ? path->p : "", v);
}

rc_value_t *render_redacted(const rc_engine_t *eng, const rc_value_t *root) {
  if (!rc__path_is_secret(eng, "")) return rc__value_ref(root);
  rc__buf path;
  rc__buf_init(&path);
  rc_value_t *v = redact_leaves(eng, &path, root);
  bool oom = path.oom;
  rc__buf_free(&path);
  if (oom) {
    rc__value_unref(v);
    return NULL;
  }
  return v;
}
