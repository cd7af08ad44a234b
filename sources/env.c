/* SPDX-License-Identifier: MIT (see LICENSE) */
/* env.c: the environment source. A process's environment has no change notification,
 * so each source polls it on a uv timer (default every second) and delivers only when the
 * variable (or the set of variables with a prefix) differs from the last look.
 * rc_engine_setenv changes the environment on the loop thread and rescans at once. */
#include "source.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

extern char **environ;

typedef struct env_source {
  rc__source base;
  rc__source_ctx *ctx;
  char *name;          /* one variable, or NULL */
  char *prefix;        /* every variable starting with it, or NULL */
  bool lower;          /* prefix form: lower-case the keys */
  uint64_t interval_ms;
  rc_value_t *last;    /* last delivered value (NULL = absent) */
  bool delivered;
  uv_timer_t timer;
  bool timer_open;
  void (*stop_done)(rc__source *);
} env_source;

/* The current value: a string, an object of strings (prefix form), or NULL (absent). */
static rc_value_t *read_env(const env_source *s) {
  if (s->name) {
    const char *v = getenv(s->name);
    return v ? rc__value_string(v, strlen(v)) : NULL;
  }
  size_t plen = strlen(s->prefix);
  rc__object_builder b;
  rc__object_begin(&b);
  rc__buf key;
  rc__buf_init(&key);
  for (char **e = environ; e && *e; e++) {
    const char *eq = strchr(*e, '=');
    if (!eq || strncmp(*e, s->prefix, plen) != 0 || (size_t)(eq - *e) == plen) continue;
    rc__buf_reset(&key);
    rc__buf_add(&key, *e + plen, (size_t)(eq - *e) - plen);
    if (s->lower && key.p)
      for (size_t i = 0; i < key.n; i++) key.p[i] = (char)tolower((unsigned char)key.p[i]);
    if (key.oom) break;
    rc__object_put(&b, key.p, key.n, rc__value_string(eq + 1, strlen(eq + 1)));
  }
  bool oom = key.oom;
  rc__buf_free(&key);
  if (oom) {
    rc__object_abort(&b);
    return NULL;
  }
  /* Keys in name order: environ's order is an accident of history. */
  rc_value_t *obj = rc__object_end(&b);
  if (!obj || obj->len < 2) return obj;
  rc__object_builder sorted;
  rc__object_begin(&sorted);
  for (uint32_t i = 0; i < obj->len; i++) {
    const rc__member *m = &obj->u.members[rc__sorted(obj)[i]];
    rc__object_put(&sorted, m->key, m->klen, rc__value_ref(m->val));
  }
  rc__value_unref(obj);
  return rc__object_end(&sorted);
}

static void look(env_source *s) {
  rc_value_t *v = read_env(s);
  if (!v && s->prefix) {
    rc_error e = {0};
    rc__err(&e, RC_ENOMEM, NULL, 0, 0, "out of memory reading the environment");
    rc__src_error(s->ctx, &e);
    return;
  }
  if (s->delivered && ((v == NULL && s->last == NULL) || (v && s->last && rc_value_equal(v, s->last)))) {
    rc__value_unref(v);
    rc__src_answered(s->ctx);
    return;
  }
  rc__value_unref(s->last);
  s->last = rc__value_ref(v);
  s->delivered = true;
  rc__src_deliver(s->ctx, v);
}

static void tick(uv_timer_t *t) { look(t->data); }

static int env_start(rc__source *base, rc_error *err) {
  env_source *s = (env_source *)base;
  int rc = uv_timer_init(rc__src_loop(s->ctx), &s->timer);
  if (rc) return rc__err(err, RC_ESYS, NULL, 0, 0, "uv_timer_init: %s", uv_strerror(rc));
  s->timer.data = s;
  s->timer_open = true;
  rc__host_handle_opened(rc__src_host(s->ctx));
  look(s);
  uv_timer_start(&s->timer, tick, s->interval_ms, s->interval_ms);
  return 0;
}

static void timer_closed(uv_handle_t *h) {
  env_source *s = h->data;
  rc__host_handle_closed(rc__src_host(s->ctx));
  if (s->stop_done) s->stop_done(&s->base);
}

static void env_stop(rc__source *base, void (*done)(rc__source *)) {
  env_source *s = (env_source *)base;
  if (s->timer_open && !uv_is_closing((uv_handle_t *)&s->timer)) {
    s->stop_done = done;
    uv_close((uv_handle_t *)&s->timer, timer_closed);
  } else if (!s->timer_open) {
    done(base);
  }
}

static void env_rescan(rc__source *base) { look((env_source *)base); }

static void env_free(rc__source *base) {
  env_source *s = (env_source *)base;
  rc__value_unref(s->last);
  rc__free(s->name);
  rc__free(s->prefix);
  rc__free(s);
}

static rc__source *env_create(rc__source_ctx *ctx, rc_error *err) {
  env_source *s = rc__src_alloc(sizeof *s, err);
  if (!s) return NULL;
  s->ctx = ctx;
  s->lower = rc__opt_bool(ctx, "lower", true);
  s->interval_ms = (uint64_t)rc__opt_number(ctx, "interval_ms");
  if (s->interval_ms < 1) s->interval_ms = 1;
  const char *name = rc__opt_string(ctx, "name"), *prefix = rc__opt_string(ctx, "prefix");
  if (name) s->name = rc__strdup(name);
  if (prefix) s->prefix = rc__strdup(prefix);
  if ((name && !s->name) || (prefix && !s->prefix)) {
    rc__err(err, RC_ENOMEM, NULL, 0, 0, "out of memory");
    env_free(&s->base);
    return NULL;
  }
  if (!s->name && !s->prefix) {
    rc__src_policy_error(ctx, err, "env source needs a name or a prefix");
    env_free(&s->base);
    return NULL;
  }
  return &s->base;
}

static const rc__opt_default env_defaults[] = {{"interval_ms", 1000}, {NULL, 0}};

const rc__source_kind rc__env_kind = {
  .name = "env", .defaults = env_defaults, RC__SOURCE_FUNCS(env), .env_changed = env_rescan,
};
