/* SPDX-License-Identifier: MIT (see LICENSE) */
/* reload.c: `reactcfg-bench reload`: the time from a requested reload (rc_engine_reload)
 * to its "reload.completed" event, through 0, 1, 10 or 100 C reload modules that accept
 * at once, and of a refused reload: the last of N modules refuses, the ones before it get
 * the reverse changes, and the time runs to "reload.rolledback". Each reload carries one
 * small change, held by a debounce of an hour until the request applies it, so what is
 * measured is the request, the policy's wave, the modules and the commit (or rollback),
 * on the benchmark's loop thread. */
#include "bench_engine.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int rc_bench_reload_main(int argc, char **argv);

static const char *POLICY =
  "local rc = require 'reactcfg'\n"
  "return rc.policy { components = {\n"
  "  s = { source = rc.lua_source(function() end), debounce = '1h' },\n"
  "} }\n";

typedef struct run {
  rc_engine_t *eng;
  rc__component *target;
  uv_idle_t idle;
  int n, done, refuse_last, nmods;
  int calls;
  bool waiting, failed;
  _Atomic int64_t *start_ns, *seen_ns;
} run;

typedef struct module {
  run *r;
  bool refuses;
} module;

static int apply(void *ud, rc_reload_t *rl, const rc_snapshot_t *snap,
                 const rc_change_t *ch, size_t n) {
  module *m = ud;
  (void)snap, (void)ch, (void)n;
  m->r->calls++;
  return m->refuses && !rc_reload_is_rollback(rl) ? RC_EREFUSED : RC_OK;
}

static void on_event(void *ud, const rc_event_t *ev) {
  run *r = ud;
  bool end = r->refuse_last ? ev->type == RC_EVENT_RELOAD_ROLLEDBACK
                            : ev->type == RC_EVENT_RELOAD_COMPLETED;
  if (!r->waiting) return;
  if (ev->type == (r->refuse_last ? RC_EVENT_RELOAD_COMPLETED : RC_EVENT_RELOAD_FAILED))
    r->failed = true; /* not what this row measures */
  if (!end) return;
  atomic_store(&r->seen_ns[r->done + 1], (int64_t)rc__mono_ns());
  r->done++;
  r->waiting = false;
}

static void on_commit(void *ud, const rc_snapshot_t *snap, const rc_change_t *ch, size_t n) {
  (void)ud, (void)snap, (void)ch, (void)n;
}

/* { n = i, db = { pool = { max = i } } }: one change per reload. */
static rc_value_t *update_value(int i) {
  rc__object_builder pool, db, top;
  rc__object_begin(&pool);
  rc__object_put(&pool, "max", 3, rc__value_int(i));
  rc__object_begin(&db);
  rc__object_put(&db, "pool", 4, rc__object_end(&pool));
  rc__object_begin(&top);
  rc__object_put(&top, "db", 2, rc__object_end(&db));
  return rc__object_end(&top);
}

/* One reload at a time: a new value (held by the debounce), then the request. */
static void idle_cb(uv_idle_t *h) {
  run *r = h->data;
  if (r->waiting) return;
  if (r->done >= r->n || r->failed) {
    uv_idle_stop(h);
    rc_engine_stop(r->eng);
    uv_close((uv_handle_t *)h, NULL);
    return;
  }
  /* Refused values are never committed: each reload's value differs from the running
   * one either way. */
  rc__deliver(r->target, update_value(r->done + 2));
  r->waiting = true;
  atomic_store(&r->start_ns[r->done + 1], (int64_t)rc__mono_ns());
  if (rc_engine_reload(r->eng, NULL, 0) != 0) r->failed = true;
}

static int run_case(int nmods, bool refuse, int reloads) {
  run r = {.n = reloads, .refuse_last = refuse, .nmods = nmods};
  r.start_ns = calloc((size_t)reloads + 1, sizeof *r.start_ns);
  r.seen_ns = calloc((size_t)reloads + 1, sizeof *r.seen_ns);
  module *mods = calloc((size_t)(nmods ? nmods : 1), sizeof *mods);
  if (!r.start_ns || !r.seen_ns || !mods) return 1;
  uv_loop_t loop;
  r.eng = bench_engine("reload", POLICY, &loop, "**", on_commit, &r);
  if (!r.eng) return 1;
  rc_engine_on_event(r.eng, on_event, &r);
  for (int i = 0; i < nmods; i++) {
    char name[32];
    snprintf(name, sizeof name, "m%d", i);
    mods[i] = (module){&r, refuse && i == nmods - 1};
    if (rc_module_register(r.eng, name, "**", apply, 0, &mods[i], NULL) <= 0) return 1;
  }
  for (size_t i = 0; i < r.eng->ncomps; i++)
    if (strcmp(r.eng->comps[i]->name, "s") == 0) r.target = r.eng->comps[i];
  uv_idle_init(&loop, &r.idle);
  r.idle.data = &r;
  uv_idle_start(&r.idle, idle_cb);
  uv_run(&loop, UV_RUN_DEFAULT);
  bench_engine_free(r.eng, &loop);
  char prefix[96];
  snprintf(prefix, sizeof prefix, "reload modules=%d outcome=%s reloads=%d calls=%d",
           nmods, refuse ? "refused" : "applied", reloads, r.calls);
  int seen = bench_latency_line(prefix, r.start_ns, r.seen_ns, reloads);
  free(r.start_ns);
  free(r.seen_ns);
  free(mods);
  return seen == reloads && !r.failed ? 0 : 1;
}

int rc_bench_reload_main(int argc, char **argv) {
  int reloads = 20000;
  for (int i = 0; i < argc; i++) {
    if (strcmp(argv[i], "--reloads") == 0 && i + 1 < argc) {
      reloads = atoi(argv[++i]);
    } else {
      fprintf(stderr,
              "usage: reactcfg-bench reload [--reloads N]\n"
              "  prints per case: reload modules=<n> outcome=applied|refused reloads=<n> "
              "calls=<module calls> seen=<n> p50_us=.. p90_us=.. p99_us=.. max_us=..\n");
      return 2;
    }
  }
  if (reloads < 1) reloads = 1;
  int rc = 0;
  static const int counts[] = {0, 1, 10, 100};
  for (size_t i = 0; i < sizeof counts / sizeof *counts; i++)
    rc |= run_case(counts[i], false, reloads);
  rc |= run_case(10, true, reloads);
  rc |= run_case(100, true, reloads);
  return rc;
}
