/* SPDX-License-Identifier: MIT (see LICENSE) */
/* request.c: reloads the application asks for. rc_engine_reload re-reads the named
 * components' sources now, past debounce, cache_for holds and poll intervals, and the
 * reload that follows waits until each of them answered (a value, an error, or "nothing
 * changed"), at most RC__REQUEST_WAIT_MS; rc_engine_push hands a component whose source
 * is rc.push() a value the application fetched itself. Both run on the loop thread
 * through rc__call_on_loop. */
#include "engine.h"

#include <stdio.h>
#include <string.h>

/* The reload that answers a request runs now: every re-read answered, or time is up. */
static void request_ready(rc_engine_t *eng) {
  eng->request_waits = 0;
  eng->request_deadline = 0;
  for (size_t i = 0; i < eng->ncomps; i++)
    eng->comps[i]->reread_wait = eng->comps[i]->reread = false;
  rc__schedule_wave(eng);
}

void rc__answered(rc__component *c) {
  if (!c || !c->reread_wait) return;
  rc_engine_t *eng = c->eng;
  c->reread_wait = false;
  /* While the request is still asking (-1) the count is made when it is done. */
  if (eng->request_waits > 0 && --eng->request_waits == 0) request_ready(eng);
}

void rc__request_timeout(rc_engine_t *eng, uint64_t now) {
  if (eng->request_waits && eng->request_deadline && now >= eng->request_deadline) {
    rc__trace(eng, NULL, "reload request: %d source(s) did not answer in time; the "
              "reload goes on without them", eng->request_waits);
    request_ready(eng);
  }
}

typedef struct reload_args {
  const char *const *names;
  size_t n;
  const char *trigger;
} reload_args;

/* Re-reads c's source now. Returns whether an answer is awaited. */
static bool reread(rc_engine_t *eng, rc__component *c) {
  /* Past debounce and throttle: a value waiting for its quiet period or for a token is
   * applied now; a fresh read (below) that differs replaces it (deliver.c). */
  if (c->has_pending || (eng->sched.slots && eng->sched.slots[c->index].held)) {
    rc_value_t *v = c->has_pending ? c->pending : c->held;
    if (c->has_pending) rc__value_unref(c->held);
    else rc__value_unref(c->pending);
    c->pending = c->held = NULL;
    c->has_pending = false;
    rc__sched_cancel(&eng->sched, (size_t)c->index);
    eng->sched.slots[c->index].held = false;
    rc__trace(eng, c, "reload request: the value waiting for debounce or throttle is applied");
    rc__set_value(c, v);
  }
  if (!c->active || c->deliver_hook) return false;
  if (!c->src && !c->refetch_at) return false; /* simulation: no source */
  if (c->src && !c->src->kind->rescan) return false;
  c->reread = true;
  /* Set before asking: a source that answers at once (a small file, the environment)
   * clears it from inside the call. */
  c->reread_wait = true;
  if (!c->src) /* a cache_for hold: fetch now */
    rc__fetch_once_now(c);
  else
    c->src->kind->rescan(c->src);
  return c->reread_wait;
}

static int do_reload(rc_engine_t *eng, void *arg) {
  reload_args *a = arg;
  for (size_t i = 0; a->names && i < a->n; i++)
    if (!a->names[i] || !rc__find_component(eng, a->names[i])) return RC_ENOTFOUND;
  /* A request is a new attempt: the backoff after failed reloads starts over. */
  eng->fail_streak = 0;
  eng->retry_at = 0;
  eng->trigger[0] = '\0';
  rc__trigger(eng, a->trigger, NULL);
  eng->requested = true;
  eng->request_waits = -1; /* counted below, once every re-read was asked for */
  for (size_t i = 0; i < eng->ncomps; i++) {
    rc__component *c = eng->comps[i];
    bool named = !a->names;
    for (size_t k = 0; !named && k < a->n; k++) named = strcmp(a->names[k], c->name) == 0;
    if (named) reread(eng, c);
  }
  eng->request_waits = 0;
  for (size_t i = 0; i < eng->ncomps; i++) eng->request_waits += eng->comps[i]->reread_wait;
  if (eng->request_waits == 0) {
    request_ready(eng);
  } else {
    eng->request_deadline = rc__now(eng) + RC__REQUEST_WAIT_MS;
    rc__txn_arm(eng);
  }
  return 0;
}

int rc__reload_request(rc_engine_t *eng, const char *const *names, size_t n,
                       const char *trigger) {
  if (!eng) return RC_EINVAL;
  reload_args a = {names, n, trigger};
  return rc__call_on_loop(eng, do_reload, &a);
}

int rc_engine_reload(rc_engine_t *eng, const char *const *components, size_t n) {
  return rc__reload_request(eng, components, n, "request");
}

/* ---- pushed values ---- */

typedef struct push_args {
  const char *component, *text, *format;
  size_t len;
  rc_error *err;
} push_args;

static int do_push(rc_engine_t *eng, void *arg) {
  push_args *a = arg;
  rc__component *c = rc__find_component(eng, a->component);
  if (!c)
    return rc__err(a->err, RC_ENOTFOUND, NULL, 0, 0, "no component '%s'", a->component);
  if (!(c->kind->flags & RC__SRC_PUSHED))
    return rc__err(a->err, RC_EINVAL, NULL, 0, 0, "component '%s' has a %s source, not "
                   "rc.push(): its values come from it", c->name, c->kind->name);
  bool known = true;
  rc__format fmt = rc__format_from_name(a->format ? a->format : "json", &known);
  if (!known || fmt == RC__FMT_AUTO)
    return rc__err(a->err, RC_EINVAL, NULL, 0, 0, "unknown format '%s' (json, yaml, toml, "
                   "dotenv, text)", a->format);
  char name[300];
  snprintf(name, sizeof name, "push:%s", c->name);
  rc_value_t *v = NULL;
  rc__parse_limits lim;
  rc__source_limits(c, &lim);
  int rc = rc__parse(fmt, a->text, a->len, a->len, name, &lim, &v, a->err);
  if (rc) return rc;
  eng->trigger[0] = '\0';
  rc__trigger(eng, "push", NULL);
  rc__deliver(c, v);
  return 0;
}

int rc_engine_push(rc_engine_t *eng, const char *component, const char *text, size_t len,
                   const char *format, rc_error *err) {
  if (!eng || !component || (!text && len))
    return rc__err(err, RC_EINVAL, NULL, 0, 0, "rc_engine_push: engine, component and text "
                   "needed");
  push_args a = {component, text ? text : "", format, len, err};
  int rc = rc__call_on_loop(eng, do_push, &a);
  if (rc == RC_ESTATE && !(err && err->code))
    rc__err(err, RC_ESTATE, NULL, 0, 0, "the engine is not running");
  return rc;
}
