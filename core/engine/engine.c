/* SPDX-License-Identifier: MIT (see LICENSE) */
/* engine.c: the engine's lifecycle (new, start on its own thread or attach to the
 * application's loop, stop, free) and the queue by which other threads reach the loop.
 * The pipeline lives in deliver.c, schedule.c and wave.c; reloads in txn.c; events in
 * events.c; sources in sources/. */
#include "engine.h"

#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void rc_engine_set_policy_reload(rc_engine_t *eng, bool on) {
  if (eng && (eng->state == RC__ST_NEW || eng->state == RC__ST_LOADED)) eng->watch_policy = on;
}

/* ---- creation ---- */

rc_engine_t *rc_engine_new(rc_error *err) {
  rc_engine_t *eng = rc__calloc(1, sizeof *eng);
  if (!eng) {
    rc__err(err, RC_ENOMEM, NULL, 0, 0, "out of memory");
    return NULL;
  }
  pthread_mutex_init(&eng->ready_mu, NULL);
  pthread_cond_init(&eng->ready_cv, NULL);
  pthread_mutex_init(&eng->req_mu, NULL);
  pthread_cond_init(&eng->req_cv, NULL);
  pthread_mutex_init(&eng->sub_mu, NULL);
  pthread_mutex_init(&eng->handler_mu, NULL);
  pthread_mutex_init(&eng->mod_mu, NULL);
  rc__snapshots_init(&eng->snaps);
  rc__metrics_init(&eng->metrics);
  rc__trace_ring_init(&eng->tring);
  eng->on_change_ref = LUA_NOREF;
  eng->on_error_ref = LUA_NOREF;
  eng->watch_policy = true;
  eng->hist_cap = RC__HISTORY_DEFAULT;
  eng->backoff_min_ms = RC__RELOAD_BACKOFF_MIN_MS;
  eng->backoff_max_ms = RC__RELOAD_BACKOFF_MAX_MS;
  rc__changeset_init(&eng->cs);
  eng->L = rc__lua_new_state(eng);
  if (!eng->L) {
    rc_engine_free(eng);
    rc__err(err, RC_ENOMEM, NULL, 0, 0, "cannot create the Lua state: out of memory");
    return NULL;
  }
  eng->state = RC__ST_NEW;
  return eng;
}

/* ---- handles ---- */

void rc__handle_opened(rc_engine_t *eng) { eng->open_handles++; }
void rc__handle_closed(rc_engine_t *eng) { eng->open_handles--; }

static void on_engine_handle_closed(uv_handle_t *h) { rc__handle_closed(h->data); }

static void close_handle(rc_engine_t *eng, uv_handle_t *h) {
  if (!uv_is_closing(h)) {
    h->data = eng;
    uv_close(h, on_engine_handle_closed);
  }
}

/* ---- requests from other threads ---- */

static void run_request(rc_engine_t *eng, rc__request *r);

static void stop_on_loop(rc_engine_t *eng);

static void wake_cb(uv_async_t *a) {
  rc_engine_t *eng = a->data;
  if (rc__requests_run(eng)) stop_on_loop(eng);
}

bool rc__requests_run(rc_engine_t *eng) {
  pthread_mutex_lock(&eng->req_mu);
  rc__request *list = eng->requests;
  eng->requests = NULL;
  bool stop = eng->stop_requested;
  pthread_mutex_unlock(&eng->req_mu);
  /* The list was pushed at the head: reverse it to run requests in order. */
  rc__request *ordered = NULL;
  while (list) {
    rc__request *next = list->next;
    list->next = ordered;
    ordered = list;
    list = next;
  }
  while (ordered) {
    rc__request *next = ordered->next;
    run_request(eng, ordered);
    ordered = next;
  }
  return stop;
}

/* Frees a heap request, or answers a waiting caller's one (`result`). */
static void request_end(rc_engine_t *eng, rc__request *r, int result) {
  if (r->kind == RC__REQ_CALL) {
    pthread_mutex_lock(&eng->req_mu);
    r->result = result;
    r->done = true;
    pthread_cond_broadcast(&eng->req_cv);
    pthread_mutex_unlock(&eng->req_mu);
    return;
  }
  rc__free(r->name);
  rc__free(r->value);
  rc__free(r);
}

/* Queues `r` for the loop thread and wakes it. RC_ESTATE (r untouched) when the loop
 * takes no requests (not started, or stopping): the caller acts itself. Any thread. */
static int post(rc_engine_t *eng, rc__request *r) {
  pthread_mutex_lock(&eng->req_mu);
  if (!eng->accepting) {
    pthread_mutex_unlock(&eng->req_mu);
    return RC_ESTATE;
  }
  r->next = eng->requests;
  eng->requests = r;
  /* Under the lock: the loop closes `wake` only after it stopped accepting. */
  int rc = uv_async_send(&eng->wake) == 0 ? 0 : RC_ESYS;
  pthread_mutex_unlock(&eng->req_mu);
  return rc;
}

/* Stops taking requests (the loop thread, before `wake` closes). Queued ones are not
 * run: waiting callers are answered RC_ESTATE, the others freed. */
static void stop_accepting(rc_engine_t *eng) {
  pthread_mutex_lock(&eng->req_mu);
  eng->accepting = false;
  rc__request *list = eng->requests;
  eng->requests = NULL;
  pthread_mutex_unlock(&eng->req_mu);
  while (list) {
    rc__request *next = list->next;
    request_end(eng, list, RC_ESTATE);
    list = next;
  }
}

bool rc__on_loop_thread(rc_engine_t *eng) {
  pthread_mutex_lock(&eng->req_mu);
  bool on = eng->loop_thread_known && pthread_equal(pthread_self(), eng->loop_thread);
  pthread_mutex_unlock(&eng->req_mu);
  return on;
}

int rc__call_on_loop(rc_engine_t *eng, int (*fn)(rc_engine_t *eng, void *arg), void *arg) {
  if (rc__on_loop_thread(eng))
    return eng->state == RC__ST_RUNNING || eng->initial ? fn(eng, arg) : RC_ESTATE;
  rc__request r = {.kind = RC__REQ_CALL, .fn = fn, .arg = arg};
  int rc = post(eng, &r);
  if (rc) return rc;
  pthread_mutex_lock(&eng->req_mu);
  while (!r.done) pthread_cond_wait(&eng->req_cv, &eng->req_mu);
  pthread_mutex_unlock(&eng->req_mu);
  return r.result;
}

int rc__post_module_done(rc_engine_t *eng, void *reload) {
  rc__request *r = rc__calloc(1, sizeof *r);
  if (!r) return RC_ENOMEM;
  r->kind = RC__REQ_MODULE_DONE;
  r->arg = reload;
  int rc = post(eng, r);
  if (rc) rc__free(r);
  return rc;
}

/* ---- attach: the part of starting that runs on the loop thread ---- */

/* The policy's admin endpoint (`admin = { listen, token_env }`); its token is read from
 * the environment now. A policy that asks for one and cannot have it fails to start:
 * an operator relies on it. */
static int admin_start(rc_engine_t *eng, rc_error *err) {
  rc_admin_opts o = {0};
  if (eng->admin_token_env) {
    o.token = getenv(eng->admin_token_env);
    if (!o.token || !*o.token)
      return rc__err(err, RC_EPOLICY, eng->policy_path, 0, 0, "admin: the token variable "
                     "%s is not set", eng->admin_token_env);
  }
  rc_error aerr = {0};
  eng->admin = rc_admin_start(eng, eng->admin_listen, &o, &aerr);
  if (!eng->admin)
    return rc__err(err, aerr.code, eng->policy_path, 0, 0, "admin: %s", aerr.message);
  return 0;
}

static int attach_on_loop(rc_engine_t *eng, uv_loop_t *loop, rc_error *err) {
  eng->loop = loop;
  int rc = uv_async_init(loop, &eng->wake, wake_cb);
  if (rc) return rc__err(err, RC_ESYS, NULL, 0, 0, "uv_async_init: %s", uv_strerror(rc));
  eng->wake.data = eng;
  rc__handle_opened(eng);
  pthread_mutex_lock(&eng->req_mu);
  eng->accepting = true;
  eng->loop_thread = pthread_self();
  eng->loop_thread_known = true;
  pthread_mutex_unlock(&eng->req_mu);
  uv_timer_t *timers[] = {&eng->sched_timer, &eng->wave_timer, &eng->retire_timer,
                          &eng->fetch_timer, &eng->txn_timer};
  for (size_t i = 0; i < sizeof timers / sizeof *timers; i++) {
    uv_timer_init(loop, timers[i]);   /* returns 0 whatever happens (libuv 1.x) */
    timers[i]->data = eng;
    rc__handle_opened(eng);
  }
  eng->handles_init = true;

  if (rc__sched_init(&eng->sched, eng->ncomps))
    return rc__err(err, RC_ENOMEM, NULL, 0, 0, "out of memory");
  for (size_t i = 0; i < eng->ncomps; i++)
    rc__sched_config(&eng->sched, i, eng->comps[i]->debounce_ms,
                     eng->comps[i]->debounce_max_ms);
  for (size_t i = 0; i < eng->ncomps; i++)
    rc__sched_throttle_config(&eng->sched, i, eng->comps[i]->throttle_ms,
                              eng->comps[i]->throttle_burst);
  if ((rc = rc__lua_open_luv(eng, err))) return rc;
  eng->epoch_ms = uv_now(loop);

  /* The first read of every source is delivered without debounce and committed as
   * revision 1 before start returns, so a snapshot exists from then on. A component with
   * a condition starts its source when the condition is first evaluated, if it holds. */
  eng->initial = true;
  for (size_t i = 0; i < eng->ncomps; i++) {
    rc__component *c = eng->comps[i];
    if (c->condition_ref != LUA_NOREF) continue;
    if ((rc = rc__source_start(c, err))) {
      eng->initial = false;
      return rc;
    }
  }
  if (eng->seed_fn) eng->seed_fn(eng->seed_ud, eng);
  /* Conditions decide which of the other sources start: evaluating them before startup
   * lets a conditional remote component's `startup` (wait, fail) apply as well. */
  bool conditional = false;
  for (size_t i = 0; i < eng->ncomps && !conditional; i++)
    conditional = eng->comps[i]->condition_ref != LUA_NOREF;
  if (conditional) rc__evaluate(eng);
  rc = rc__startup(eng, err);
  eng->initial = false;
  if (rc) return rc;
  if ((rc = rc__policy_watch_start(eng, err))) return rc;
  eng->state = RC__ST_RUNNING;
  rc__wave(eng);
  if (!rc__snapshot_current(eng)) {
    /* Nothing at all is configured yet: still commit an empty revision 1. */
    rc__object_builder b;
    rc__object_begin(&b);
    rc_value_t *root = rc__object_end(&b);
    if (!root || !rc__publish(eng, root))
      return rc__err(err, RC_ENOMEM, NULL, 0, 0, "out of memory");
    rc__emit_commit(eng, 1, 0, 0);
  }
  rc__emit(eng, RC_EVENT_STARTED, NULL, eng->policy_path, 0, 0, 0, "engine started with %zu %s",
           eng->ncomps, eng->ncomps == 1 ? "component" : "components");
  return eng->admin_listen ? admin_start(eng, err) : 0;
}

/* ---- own thread ---- */

static void *engine_thread(void *arg) {
  rc_engine_t *eng = arg;
  rc_error err = {0};
  int rc = attach_on_loop(eng, eng->loop, &err);
  if (rc) stop_on_loop(eng);
  pthread_mutex_lock(&eng->ready_mu);
  eng->ready_rc = rc;
  eng->ready_err = err;
  pthread_cond_signal(&eng->ready_cv);
  pthread_mutex_unlock(&eng->ready_mu);
  uv_run(eng->loop, UV_RUN_DEFAULT);
  return NULL;
}

int rc_engine_start(rc_engine_t *eng, rc_error *err) {
  if (!eng) return rc__err(err, RC_EINVAL, NULL, 0, 0, "no engine");
  if (eng->state != RC__ST_LOADED)
    return rc__err(err, RC_ESTATE, NULL, 0, 0,
                   eng->state == RC__ST_NEW ? "no policy loaded" : "engine already started");
  /* libuv aborts, rather than fails, when its first loop finds no descriptors. */
  int rc = rc__fds_free(RC__LOOP_FDS) < RC__LOOP_FDS ? UV_EMFILE : uv_loop_init(&eng->own_loop);
  if (rc) return rc__err(err, RC_ESYS, NULL, 0, 0, "uv_loop_init: %s", uv_strerror(rc));
  eng->owns_loop = true;
  eng->loop = &eng->own_loop;
  eng->ready_rc = -1;
  if (pthread_create(&eng->thread, NULL, engine_thread, eng) != 0) {
    uv_loop_close(&eng->own_loop);
    eng->owns_loop = false;
    return rc__err(err, RC_ESYS, NULL, 0, 0, "cannot start the engine thread");
  }
  eng->thread_started = true;
  pthread_mutex_lock(&eng->ready_mu);
  while (eng->ready_rc == -1) pthread_cond_wait(&eng->ready_cv, &eng->ready_mu);
  rc = eng->ready_rc;
  pthread_mutex_unlock(&eng->ready_mu);
  if (rc) {
    if (err) *err = eng->ready_err;
    pthread_join(eng->thread, NULL);
    eng->thread_started = false;
    eng->state = RC__ST_STOPPED;
  }
  return rc;
}

int rc_engine_attach(rc_engine_t *eng, void *uv_loop, rc_error *err) {
  if (!eng || !uv_loop) return rc__err(err, RC_EINVAL, NULL, 0, 0, "engine and loop needed");
  if (eng->state != RC__ST_LOADED)
    return rc__err(err, RC_ESTATE, NULL, 0, 0,
                   eng->state == RC__ST_NEW ? "no policy loaded" : "engine already started");
  int rc = attach_on_loop(eng, uv_loop, err);
  if (rc) stop_on_loop(eng);
  return rc;
}

/* ---- stopping ---- */

static void close_any(uv_handle_t *h, void *arg) {
  RC__UNUSED(arg);
  if (!uv_is_closing(h)) uv_close(h, NULL);
}

void rc__loop_close_all(uv_loop_t *loop) { uv_walk(loop, close_any, NULL); }

static void stop_on_loop(rc_engine_t *eng) {
  if (eng->state == RC__ST_STOPPING || eng->state == RC__ST_STOPPED) return;
  bool was_running = eng->state == RC__ST_RUNNING;
  eng->state = RC__ST_STOPPING;
  stop_accepting(eng);
  /* After stop_accepting: the endpoint's threads waiting on the loop have their answer,
   * so joining them cannot wait on this thread. */
  rc_admin_free(eng->admin);
  eng->admin = NULL;
  rc__txn_abandon(eng); /* a reload waiting for a module ends here, not committed */
  for (size_t i = 0; i < eng->ncomps; i++) rc__source_stop(eng->comps[i]->src);
  rc__policy_watch_stop(eng);
  rc__services_close(eng);
  /* The policy's state: its luv handles close now, the state once they did. */
  rc__lua_retire(eng, eng->L);
  eng->L = NULL;
  if (eng->handles_init) {
    close_handle(eng, (uv_handle_t *)&eng->sched_timer);
    close_handle(eng, (uv_handle_t *)&eng->wave_timer);
    close_handle(eng, (uv_handle_t *)&eng->retire_timer);
    close_handle(eng, (uv_handle_t *)&eng->fetch_timer);
    close_handle(eng, (uv_handle_t *)&eng->txn_timer);
    close_handle(eng, (uv_handle_t *)&eng->wake);
  }
  /* On our own loop, also close anything a policy opened through luv. */
  if (eng->owns_loop) rc__loop_close_all(eng->loop);
  eng->state = RC__ST_STOPPED;
  if (was_running)
    rc__emit(eng, RC_EVENT_STOPPED, NULL, eng->policy_path, 0, 0, 0, "engine stopped");
}

static void run_request(rc_engine_t *eng, rc__request *r) {
  int result = 0;
  switch (r->kind) {
    case RC__REQ_SETENV:
      if (r->value)
        setenv(r->name, r->value, 1);
      else
        unsetenv(r->name);
      if (eng->state == RC__ST_RUNNING) rc__sources_env_changed(eng);
      break;
    case RC__REQ_CALL:
      /* Also while start reads the initial values: a value pushed then is awaited. */
      result = eng->state == RC__ST_RUNNING || eng->initial ? r->fn(eng, r->arg) : RC_ESTATE;
      break;
    case RC__REQ_MODULE_DONE:
      rc__txn_module_done(eng, r->arg);
      break;
  }
  request_end(eng, r, result);
}

int rc_engine_stop(rc_engine_t *eng) {
  if (!eng) return RC_EINVAL;
  if (eng->owns_loop && eng->thread_started) {
    if (pthread_equal(pthread_self(), eng->thread)) return RC_ESTATE;
    /* A flag, not a queued request: stopping must not depend on memory. When the loop
     * no longer accepts (it is stopping already), the join alone waits for it. */
    pthread_mutex_lock(&eng->req_mu);
    eng->stop_requested = true;
    if (eng->accepting) uv_async_send(&eng->wake);
    pthread_mutex_unlock(&eng->req_mu);
    pthread_join(eng->thread, NULL);
    eng->thread_started = false;
    return 0;
  }
  if (eng->state == RC__ST_RUNNING) stop_on_loop(eng);
  return 0;
}

/* Changes the environment here when the loop takes no requests (not started, or
 * stopped: no source reads it then), else on the loop thread, which then rescans. */
static int setenv_here(const char *name, const char *value) {
  int rc = value ? setenv(name, value, 1) : unsetenv(name);
  return rc == 0 ? 0 : RC_ESYS;
}

int rc_engine_setenv(rc_engine_t *eng, const char *name, const char *value) {
  if (!eng || !name || !*name || strchr(name, '=')) return RC_EINVAL;
  pthread_mutex_lock(&eng->req_mu);
  bool accepting = eng->accepting;
  pthread_mutex_unlock(&eng->req_mu);
  if (!accepting) return setenv_here(name, value);
  rc__request *r = rc__calloc(1, sizeof *r);
  if (!r) return RC_ENOMEM;
  r->kind = RC__REQ_SETENV;
  r->name = rc__strdup(name);
  r->value = value ? rc__strdup(value) : NULL;
  if (!r->name || (value && !r->value)) {
    rc__free(r->name);
    rc__free(r->value);
    rc__free(r);
    return RC_ENOMEM;
  }
  int rc = post(eng, r);
  if (rc == RC_ESTATE) { /* stopped meanwhile */
    rc__free(r->name);
    rc__free(r->value);
    rc__free(r);
    return setenv_here(name, value);
  }
  return rc;
}

void rc_engine_free(rc_engine_t *eng) {
  if (!eng) return;
  rc_engine_stop(eng);
  if (eng->loop && eng->handles_init) {
    /* Embedded mode: let the application's loop finish our close callbacks. Own mode:
     * the thread ran the loop until every handle closed; close the loop itself. */
    while (eng->open_handles > 0 && uv_run(eng->loop, UV_RUN_NOWAIT) >= 0)
      if (eng->open_handles > 0 && !uv_loop_alive(eng->loop)) break;
  }
  if (eng->owns_loop) {
    uv_run(&eng->own_loop, UV_RUN_DEFAULT);
    uv_loop_close(&eng->own_loop);
  }
  for (size_t i = 0; i < eng->ncomps; i++) {
    rc__source_free(eng->comps[i]->src);
    eng->comps[i]->src = NULL;
  }
  rc__retired_free_all(eng);
  rc__policy_watch_free(eng);
  rc__components_free(eng);
  rc__modules_free(eng); /* policy modules unref in the state in force, if any */
  /* The Lua states last: sources, components and modules no longer touch them. */
  rc__lua_retired_close_all(eng);
  rc__lua_close(eng->L);
  rc__reaper_free(eng->reaper); /* before the snapshots: reaped states may hold some */
  for (size_t i = 0; i < eng->nallowed; i++) rc__free(eng->allowed[i]);
  rc__free(eng->allowed);
  rc__sched_free(&eng->sched);
  rc__snapshots_drop(eng);
  rc__subs_free(eng);
  rc__handlers_free(eng);
  rc__history_free(eng);
  rc__free(eng->policy_pending);
  rc__changeset_free(&eng->cs);
  while (eng->requests) {
    rc__request *r = eng->requests;
    eng->requests = r->next;
    rc__free(r->name);
    rc__free(r->value);
    rc__free(r);
  }
  rc__free(eng->policy_path);
  rc__free(eng->policy_real);
  rc__free(eng->cache_dir);
  rc__free(eng->admin_listen);
  rc__free(eng->admin_token_env);
  rc__free(eng->policy_dir);
  pthread_mutex_destroy(&eng->ready_mu);
  pthread_cond_destroy(&eng->ready_cv);
  pthread_mutex_destroy(&eng->req_mu);
  pthread_cond_destroy(&eng->req_cv);
  pthread_mutex_destroy(&eng->sub_mu);
  pthread_mutex_destroy(&eng->handler_mu);
  pthread_mutex_destroy(&eng->mod_mu);
  rc__metrics_free(&eng->metrics);
  rc__trace_ring_free(&eng->tring);
  rc__free(eng);
}
