/* SPDX-License-Identifier: MIT (see LICENSE) */
/* pipeline.c: `reactcfg-bench pipeline`: end-to-end throughput of small updates through
 * the whole engine (source delivery -> debounce/throttle stage -> policy -> diff ->
 * commit -> C callback) on one loop thread. Each update is delivered the way a source
 * delivers one, then the loop turns and the engine runs its wave; the callback counts
 * commits. Two policies: a plain component (no Lua per update) and a merge policy (an
 * update function merging the new value over a base component in Lua). */
#include "bench_engine.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int rc_bench_pipeline_main(int argc, char **argv);

static const char *const POLICIES[][2] = {
  {"trivial",
   "local rc = require 'reactcfg'\n"
   "return rc.policy { components = {\n"
   "  s = { source = rc.lua_source(function() end) },\n"
   "} }\n"},
  {"merge",
   "local rc = require 'reactcfg'\n"
   "return rc.policy { components = {\n"
   "  base = { source = rc.lua_source(function(emit)\n"
   "    emit({ db = { host = 'db1', port = 5432, pool = { min = 1, max = 10 } },\n"
   "           features = { a = true, b = false }, name = 'app', tags = { 'x', 'y' } })\n"
   "  end) },\n"
   "  s = { source = rc.lua_source(function() end), depends_on = { 'base' },\n"
   "        update = function(new, ctx) return rc.merge(ctx.base, new) end },\n"
   "} }\n"},
};

typedef struct run {
  rc_engine_t *eng;
  rc__component *target;
  uv_idle_t idle;
  uint64_t updates, pushed, commits;
} run;

static void on_commit(void *ud, const rc_snapshot_t *snap, const rc_change_t *ch, size_t n) {
  (void)snap, (void)ch, (void)n;
  ((run *)ud)->commits++;
}

/* A small update: { n = i, db = { pool = { max = i % 50 } }, name = "app" }. */
static rc_value_t *update_value(uint64_t i) {
  rc__object_builder pool, db, top;
  rc__object_begin(&pool);
  rc__object_put(&pool, "max", 3, rc__value_int((int64_t)(i % 50) + 1));
  rc__object_begin(&db);
  rc__object_put(&db, "pool", 4, rc__object_end(&pool));
  rc__object_begin(&top);
  rc__object_put(&top, "n", 1, rc__value_int((int64_t)i));
  rc__object_put(&top, "db", 2, rc__object_end(&db));
  rc__object_put(&top, "name", 4, rc__value_string("app", 3));
  return rc__object_end(&top);
}

/* One delivery per loop turn; the engine's wave runs in the next turn. */
static void idle_cb(uv_idle_t *h) {
  run *r = h->data;
  if (r->pushed < r->updates) {
    rc__deliver(r->target, update_value(r->pushed++));
    return;
  }
  if (r->commits >= r->updates + 1) { /* +1: revision 1 at start */
    uv_idle_stop(h);
    rc_engine_stop(r->eng);
    uv_close((uv_handle_t *)h, NULL);
  }
}

const char *bench_pipeline_policy(const char *name) {
  for (size_t i = 0; i < sizeof POLICIES / sizeof *POLICIES; i++)
    if (strcmp(name, POLICIES[i][0]) == 0) return POLICIES[i][1];
  return NULL;
}

int bench_pipeline_measure(const char *text, uint64_t updates, const bench_pipeline_hooks *h,
                           double *secs_out, uint64_t *commits_out) {
  run r = {.updates = updates};
  uv_loop_t loop;
  r.eng = bench_engine("pipeline", text, &loop, "**", on_commit, &r);
  if (!r.eng) return -1;
  for (size_t i = 0; i < r.eng->ncomps; i++)
    if (strcmp(r.eng->comps[i]->name, "s") == 0) r.target = r.eng->comps[i];
  uv_idle_init(&loop, &r.idle);
  r.idle.data = &r;
  if (h && h->started && h->started(h->ud, r.eng) != 0) {
    bench_engine_free(r.eng, &loop);
    return -1;
  }
  uint64_t t0 = rc__mono_ns();
  uv_idle_start(&r.idle, idle_cb);
  uv_run(&loop, UV_RUN_DEFAULT);
  *secs_out = (double)(rc__mono_ns() - t0) / 1e9;
  if (h && h->stopping) h->stopping(h->ud, r.eng);
  uint64_t commits = r.commits - 1;
  bench_engine_free(r.eng, &loop);
  *commits_out = commits;
  return commits == updates ? 0 : -1;
}

static int run_policy(const char *name, const char *text, uint64_t updates) {
  double secs = 0;
  uint64_t commits = 0;
  int bad = bench_pipeline_measure(text, updates, NULL, &secs, &commits);
  if (bad && secs == 0) return 1;
  printf("pipeline policy=%s updates=%llu commits=%llu seconds=%.3f updates_per_s=%.0f "
         "us_per_update=%.2f\n",
         name, (unsigned long long)updates, (unsigned long long)commits, secs,
         (double)updates / secs, secs * 1e6 / (double)updates);
  return bad ? 1 : 0;
}

int rc_bench_pipeline_main(int argc, char **argv) {
  uint64_t updates = 200000;
  const char *only = NULL;
  for (int i = 0; i < argc; i++) {
    if (strcmp(argv[i], "--updates") == 0 && i + 1 < argc)
      updates = strtoull(argv[++i], NULL, 10);
    else if (strcmp(argv[i], "--policy") == 0 && i + 1 < argc)
      only = argv[++i];
    else {
      fprintf(stderr,
              "usage: reactcfg-bench pipeline [--updates N] [--policy trivial|merge]\n"
              "  prints per policy: pipeline policy=<p> updates=<n> commits=<n> "
              "seconds=<s> updates_per_s=<r> us_per_update=<u>\n");
      return 2;
    }
  }
  int rc = 0;
  for (size_t i = 0; i < sizeof POLICIES / sizeof *POLICIES; i++)
    if (!only || strcmp(only, POLICIES[i][0]) == 0)
      rc |= run_policy(POLICIES[i][0], POLICIES[i][1], updates);
  return rc;
}
