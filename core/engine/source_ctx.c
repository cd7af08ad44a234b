/* SPDX-License-Identifier: MIT (see LICENSE) */
/* source_ctx.c: the engine's side of the source interface (sources/source.h): creating,
 * starting, retiring and freeing a component's source, the context a source sees
 * (delivery, options, events, loop), the host that shared services and detached
 * handles see, and the services themselves. A source reaches the engine only through
 * the functions here. Loop thread. */
#include "engine.h"
#include "registry.h"
#include "source_lua.h"

#include <lauxlib.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

struct rc__source_ctx {
  rc_engine_t *eng;
  rc__component *comp;        /* NULL once retired: deliveries and events are dropped */
  rc__source *src;
  const rc__source_kind *kind;
  rc_value_t *opts;           /* a reference to the component's options */
  rc__parse_limits limits;    /* the `limits` option over the defaults */
  rc_value_t *meta;           /* rc__src_set_meta: an object for ctx.<field>, or NULL */
  rc__source_ctx *next_retired;  /* in eng->retired_srcs while stopping */
  lua_State *L;               /* the Lua state of the policy version that made it */
  bool used_lua;              /* the source asked for that state (rc__src_lua) */
};

/* ===================================================================================
 * Lifecycle (the engine's calls)
 * =================================================================================== */

/* The `limits` option over the defaults. */
static void read_limits(const rc_value_t *opts, rc__parse_limits *lim) {
  rc__parse_limits_default(lim);
  const rc_value_t *l = rc__object_get(opts, "limits");
  lim->max_bytes = (size_t)rc__object_number(l, "max_bytes", (double)lim->max_bytes);
  lim->max_string = (size_t)rc__object_number(l, "max_string", (double)lim->max_string);
  lim->max_depth = (uint32_t)rc__object_number(l, "max_depth", lim->max_depth);
  lim->max_nodes = (size_t)rc__object_number(l, "max_nodes", (double)lim->max_nodes);
}

int rc__source_create(rc__component *c, rc_error *err) {
  rc__source_ctx *ctx = rc__calloc(1, sizeof *ctx);
  if (!ctx) return rc__err(err, RC_ENOMEM, NULL, 0, 0, "out of memory");
  ctx->eng = c->eng;
  ctx->comp = c;
  ctx->kind = c->kind;
  ctx->opts = rc__value_ref(c->src_opts);
  ctx->L = c->eng->L;
  read_limits(ctx->opts, &ctx->limits);
  rc__source *s = c->kind->create(ctx, err);
  if (!s) {
    rc__value_unref(ctx->opts);
    rc__free(ctx);
    return err && err->code ? err->code : RC_ENOMEM;
  }
  s->kind = c->kind;
  s->ctx = ctx;
  ctx->src = s;
  c->src = s;
  return 0;
}

int rc__source_start(rc__component *c, rc_error *err) {
  if (c->eng->no_sources) return 0; /* simulation: values come from pushes */
  if (rc__fetch_once_cached(c)) return 0;  /* cache_for: still fresh on disk */
  if (!c->src) {
    int rc = rc__source_create(c, err);
    if (rc) return rc;
  }
  c->starting = true;
  rc__health_source_flag(c, ~0u, false); /* a fresh start: no circuit, not polling */
  int rc = c->src->kind->start(c->src, err);
  c->starting = false;
  c->dirty = true;
  rc__health_sync(c);
  return rc;
}

void rc__source_free(rc__source *s) {
  if (!s) return;
  rc__source_ctx *ctx = s->ctx;
  s->kind->free(s);
  rc__value_unref(ctx->opts);
  rc__value_unref(ctx->meta);
  rc__free(ctx);
}

void rc__source_adopt(rc__source *s, rc__component *c) { s->ctx->comp = c; }

static void retired_done(rc__source *s) {
  rc_engine_t *eng = s->ctx->eng;
  for (rc__source_ctx **p = &eng->retired_srcs; *p; p = &(*p)->next_retired) {
    if (*p == s->ctx) {
      *p = s->ctx->next_retired;
      break;
    }
  }
  rc__source_free(s);
}

void rc__source_retire(rc_engine_t *eng, rc__source *s) {
  if (!s) return;
  s->ctx->comp = NULL;
  s->ctx->next_retired = eng->retired_srcs;
  eng->retired_srcs = s->ctx;
  s->kind->stop(s, retired_done);
}

static void stopped(rc__source *s) { RC__UNUSED(s); }

void rc__source_stop(rc__source *s) {
  if (s) s->kind->stop(s, stopped);
}

void rc__retired_free_all(rc_engine_t *eng) {
  while (eng->retired_srcs) {
    rc__source_ctx *ctx = eng->retired_srcs;
    eng->retired_srcs = ctx->next_retired;
    rc__source_free(ctx->src);
  }
}

void rc__sources_env_changed(rc_engine_t *eng) {
  for (size_t i = 0; i < eng->ncomps; i++) {
    rc__source *s = eng->comps[i]->src;
    if (s && s->kind->env_changed) s->kind->env_changed(s);
  }
}

/* ===================================================================================
 * Services
 * =================================================================================== */

void *rc__src_service(rc__source_ctx *ctx, const rc__service_kind *k, rc_error *err) {
  rc_engine_t *eng = ctx->eng;
  for (size_t i = 0; i < eng->nservices; i++)
    if (eng->services[i].kind == k) return eng->services[i].svc;
  if (eng->nservices == RC__MAX_SERVICES) {
    rc__err(err, RC_ELIMIT, NULL, 0, 0, "too many kinds of shared services");
    return NULL;
  }
  void *svc = k->open((rc__host *)eng, err);
  if (!svc) return NULL;
  eng->services[eng->nservices].kind = k;
  eng->services[eng->nservices].svc = svc;
  eng->nservices++;
  return svc;
}

void rc__services_close(rc_engine_t *eng) {
  size_t n = eng->nservices;
  eng->nservices = 0;
  for (size_t i = 0; i < n; i++)
    eng->services[i].kind->close(eng->services[i].svc, (rc__host *)eng);
}

/* ===================================================================================
 * The context a source sees
 * =================================================================================== */

void *rc__src_alloc(size_t size, rc_error *err) {
  void *s = rc__calloc(1, size);
  if (!s) rc__err(err, RC_ENOMEM, NULL, 0, 0, "out of memory");
  return s;
}

void rc__src_deliver(rc__source_ctx *ctx, rc_value_t *v) { rc__deliver(ctx->comp, v); }

void rc__src_answered(rc__source_ctx *ctx) {
  if (ctx->comp) rc__health_success(ctx->comp);
  rc__answered(ctx->comp);
}

void rc__src_condition(rc__source_ctx *ctx, rc__src_cond cond, bool on) {
  if (ctx->comp) rc__health_source_flag(ctx->comp, cond, on);
}

void rc__src_retry_in(rc__source_ctx *ctx, uint64_t delay_ms) {
  if (ctx->comp) rc__health_retry(ctx->comp, delay_ms);
}

void rc__src_fetch_time(rc__source_ctx *ctx, uint64_t ns) {
  if (!ns) return; /* never started */
  /* The histograms are by kind, in registry order. */
  for (size_t i = 0; i < RC__METRIC_KINDS && rc__source_kinds[i]; i++) {
    if (rc__source_kinds[i] == ctx->kind) {
      rc__observe(&ctx->eng->metrics.fetch[i], ns);
      return;
    }
  }
}

void rc__source_limits(const rc__component *c, rc__parse_limits *out) {
  if (c->src)
    *out = c->src->ctx->limits;
  else
    read_limits(c->src_opts, out);
}

void rc__src_error(rc__source_ctx *ctx, const rc_error *err) {
  rc__deliver_error(ctx->comp, err);
}

void rc__src_set_meta(rc__source_ctx *ctx, rc_value_t *meta) {
  rc__value_unref(ctx->meta);
  ctx->meta = meta && meta->type == RC_TYPE_OBJECT ? meta : NULL;
  if (ctx->meta != meta) rc__value_unref(meta);
}

const rc_value_t *rc__source_meta(const rc__component *c) {
  return c->src ? c->src->ctx->meta : NULL;
}

void rc__src_withdraw(rc__source_ctx *ctx) {
  rc__component *c = ctx->comp;
  if (!c) return;
  /* rc__deliver reports a failing source's recovery, and this is none: the next real
   * answer is. */
  bool failing = c->in_error;
  c->in_error = false;
  rc__deliver(c, NULL);
  c->in_error = failing;
}

bool rc__src_failing(const rc__source_ctx *ctx) { return ctx->comp && ctx->comp->in_error; }

bool rc__src_initial(const rc__source_ctx *ctx) { return ctx->eng->initial; }

bool rc__src_repeats(const rc__source_ctx *ctx) { return ctx->comp && ctx->comp->force; }

static void vevent(rc__source_ctx *ctx, rc_event_type_t type, const char *file, int line,
                   int code, const char *fmt, va_list ap) RC__PRINTF(6, 0);
static void vevent(rc__source_ctx *ctx, rc_event_type_t type, const char *file, int line,
                   int code, const char *fmt, va_list ap) {
  /* A retired source's state is no component's; anything else it says (a Lua source's
   * stop function failing) is still reported. */
  if (!ctx->comp && type == RC_EVENT_COMPONENT_STATE) return;
  char msg[1024];
  vsnprintf(msg, sizeof msg, fmt, ap);
  rc__emit(ctx->eng, type, ctx->comp ? ctx->comp->name : NULL, file, line, 0, code, "%s",
           msg);
}

void rc__src_state(rc__source_ctx *ctx, const char *file, int code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vevent(ctx, RC_EVENT_COMPONENT_STATE, file, 0, code, fmt, ap);
  va_end(ap);
}

void rc__src_event(rc__source_ctx *ctx, rc_event_type_t type, const char *file, int line,
                   int code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vevent(ctx, type, file, line, code, fmt, ap);
  va_end(ap);
}

const char *rc__src_name(const rc__source_ctx *ctx) {
  return ctx->comp ? ctx->comp->name : "";
}

int rc__src_policy_error(const rc__source_ctx *ctx, rc_error *err, const char *fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  return rc__err(err, RC_EPOLICY, ctx->eng->policy_path, ctx->comp ? ctx->comp->line : 0,
                 0, "component '%s': %s", rc__src_name(ctx), msg);
}

/* ---- options ---- */

const rc_value_t *rc__opt(const rc__source_ctx *ctx, const char *key) {
  return rc__object_get(ctx->opts, key);
}

const char *rc__opt_string(const rc__source_ctx *ctx, const char *key) {
  const rc_value_t *v = rc__opt(ctx, key);
  return v && v->type == RC_TYPE_STRING ? v->u.s : NULL;
}

double rc__opt_number(const rc__source_ctx *ctx, const char *key) {
  double n = rc__object_number(ctx->opts, key, NAN);
  if (!isnan(n)) return n;
  for (const rc__opt_default *d = ctx->kind->defaults; d && d->key; d++)
    if (strcmp(d->key, key) == 0) return d->value;
  return 0;
}

bool rc__opt_bool(const rc__source_ctx *ctx, const char *key, bool dflt) {
  const rc_value_t *v = rc__opt(ctx, key);
  return v && v->type == RC_TYPE_BOOL ? v->u.b : dflt;
}

rc__format rc__opt_format(const rc__source_ctx *ctx, rc__format dflt) {
  const char *f = rc__opt_string(ctx, "format");
  bool known = true;
  return f ? rc__format_from_name(f, &known) : dflt;
}

const rc__parse_limits *rc__src_limits(const rc__source_ctx *ctx) { return &ctx->limits; }

void rc__opt_list_free(char **list) {
  for (size_t i = 0; list && list[i]; i++) rc__free(list[i]);
  rc__free(list);
}

char **rc__opt_list(const rc__source_ctx *ctx, const char *key) {
  const rc_value_t *v = rc__opt(ctx, key);
  if (!v || (v->type != RC_TYPE_ARRAY && v->type != RC_TYPE_OBJECT)) return NULL;
  bool pairs = v->type == RC_TYPE_OBJECT;
  char **out = rc__calloc((size_t)v->len * (pairs ? 2 : 1) + 1, sizeof *out);
  if (!out) return NULL;
  size_t n = 0;
  bool ok = true;
  for (uint32_t i = 0; ok && i < v->len; i++) {
    if (pairs) {
      /* key order: the sorted index */
      const rc__member *m = &v->u.members[rc__sorted(v)[i]];
      if (m->val->type != RC_TYPE_STRING) continue;
      ok = (out[n++] = rc__strdup(m->key)) && (out[n++] = rc__strdup(m->val->u.s));
    } else if (v->u.items[i]->type == RC_TYPE_STRING) {
      ok = (out[n++] = rc__strdup(v->u.items[i]->u.s)) != NULL;
    }
  }
  if (!ok) {
    rc__opt_list_free(out);
    return NULL;
  }
  return out;
}

/* ---- the loop and the host ---- */

uv_loop_t *rc__src_loop(const rc__source_ctx *ctx) { return ctx->eng->loop; }
rc__host *rc__src_host(const rc__source_ctx *ctx) { return (rc__host *)ctx->eng; }
uv_loop_t *rc__host_loop(rc__host *host) { return ((rc_engine_t *)host)->loop; }
void rc__host_handle_opened(rc__host *host) { rc__handle_opened((rc_engine_t *)host); }
void rc__host_handle_closed(rc__host *host) { rc__handle_closed((rc_engine_t *)host); }

/* ---- Lua, for kinds whose options hold functions (source_lua.h) ---- */

/* A source keeps the state of the version that created it (a reload's trial runs the
 * new version's state while the old one's sources still run). */
lua_State *rc__src_lua(const rc__source_ctx *ctx) {
  ((rc__source_ctx *)ctx)->used_lua = true;
  return ctx->L;
}

bool rc__source_uses_lua(const rc__source *s) { return s->ctx->used_lua; }

int rc__src_lua_push_option(const rc__source_ctx *ctx, const char *key) {
  lua_State *L = ctx->L;
  if (!ctx->comp || ctx->comp->src_desc_ref == LUA_NOREF ||
      lua_rawgeti(L, LUA_REGISTRYINDEX, ctx->comp->src_desc_ref) != LUA_TTABLE) {
    if (ctx->comp && ctx->comp->src_desc_ref != LUA_NOREF) lua_pop(L, 1);
    lua_pushnil(L);
    return LUA_TNIL;
  }
  int t = lua_getfield(L, -1, key);                     /* stack: desc, value */
  lua_remove(L, -2);
  return t;
}

int rc__src_lua_pcall(const rc__source_ctx *ctx, int nargs, int nres, rc_error *err) {
  return rc__lua_pcall(ctx->L, nargs, nres, err);
}

const char *rc__src_policy_path(const rc__source_ctx *ctx) { return ctx->eng->policy_path; }
const char *rc__src_policy_dir(const rc__source_ctx *ctx) { return ctx->eng->policy_dir; }
