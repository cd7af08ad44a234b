/* SPDX-License-Identifier: MIT (see LICENSE) */
/* load.c: `reactcfg-bench load`: how policy size costs. A policy of N file components
 * (spread over N/100 directories; every 10th depends on the one before and has an
 * update function, every 50th a debounce) is written with its files to a temporary
 * directory, then timed: loading it (what --check does), starting the engine on it
 * until revision 1, a hot reload of it (one component changed; from the write to the
 * policy.reloaded event: compile in a fresh Lua state, trial evaluation, install), and
 * the engine's free. Also a fresh Lua state alone (made and closed, the part of every
 * reload that one state per policy version adds). One line of key=value words. */
#include "lua_state.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int rc_bench_load_main(int argc, char **argv);

static double now_ms(void) { return (double)rc__mono_ns() / 1e6; }

/* Writes the policy for `n` components (the reload variant changes component 0). */
static int write_policy(const char *dir, int n, bool variant) {
  char path[512];
  snprintf(path, sizeof path, "%s/policy.lua", dir);
  char tmp[520];
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  FILE *f = fopen(tmp, "w");
  if (!f) return -1;
  fprintf(f, "local rc = require 'reactcfg'\nreturn rc.policy { components = {\n");
  for (int i = 0; i < n; i++) {
    fprintf(f, "  c%d = { source = rc.file \"d%d/c%d.json\"", i, i / 100, i);
    if (i % 10 == 9)
      fprintf(f, ", depends_on = { \"c%d\" },\n    update = function(v, ctx) "
                 "return { own = v, before = ctx.c%d } end", i - 1, i - 1);
    if (i % 50 == 49) fprintf(f, ", debounce = \"10ms\"");
    if (i == 0 && variant) fprintf(f, ", default = { reloaded = true }");
    fprintf(f, " },\n");
  }
  fprintf(f, "} }\n");
  if (fclose(f) != 0) return -1;
  return rename(tmp, path);
}

static int write_files(const char *dir, int n) {
  char path[600];
  for (int d = 0; d <= (n - 1) / 100; d++) {
    snprintf(path, sizeof path, "%s/d%d", dir, d);
    if (mkdir(path, 0755) != 0 && errno != EEXIST) return -1;
  }
  for (int i = 0; i < n; i++) {
    snprintf(path, sizeof path, "%s/d%d/c%d.json", dir, i / 100, i);
    FILE *f = fopen(path, "w");
    if (!f) return -1;
    fprintf(f, "{\"id\": %d, \"name\": \"c%d\", \"limit\": %d}\n", i, i, i % 97);
    fclose(f);
  }
  return 0;
}

typedef struct load_run {
  bool reloaded;
  int errors;
} load_run;

static void on_event(void *ud, const rc_event_t *ev) {
  load_run *r = ud;
  if (ev->type == RC_EVENT_POLICY_RELOADED) r->reloaded = true;
  if (ev->type == RC_EVENT_POLICY_ERROR || ev->type == RC_EVENT_SOURCE_ERROR) {
    if (r->errors++ < 3) fprintf(stderr, "reactcfg-bench load: %s\n", ev->message);
  }
}

static void on_timeout(uv_timer_t *t) { *(bool *)t->data = true; }

/* A fresh engine state made and closed, median of 51, in ms. */
static double state_ms(void) {
  double v[51];
  rc_engine_t *eng = rc_engine_new(NULL);
  if (!eng) return -1;
  for (int i = 0; i < 51; i++) {
    double t0 = now_ms();
    lua_State *L = rc__lua_new_state(eng);
    rc__lua_close(L);
    v[i] = now_ms() - t0;
  }
  rc_engine_free(eng);
  for (int i = 1; i < 51; i++)
    for (int k = i; k > 0 && v[k - 1] > v[k]; k--) {
      double x = v[k];
      v[k] = v[k - 1];
      v[k - 1] = x;
    }
  return v[25];
}

int rc_bench_load_main(int argc, char **argv) {
  int n = 10000;
  for (int i = 0; i < argc; i++) {
    if (strcmp(argv[i], "--components") == 0 && i + 1 < argc) {
      n = atoi(argv[++i]);
    } else {
      fprintf(stderr, "usage: reactcfg-bench load [--components N]\n");
      return 2;
    }
  }
  if (n < 1) n = 1;
  const char *base = getenv("BENCH_TMPDIR");
  char dir[512];
  snprintf(dir, sizeof dir, "%s/rc-bench-load.XXXXXX", base && *base ? base : "/tmp");
  if (!mkdtemp(dir) || write_files(dir, n) || write_policy(dir, n, false)) {
    fprintf(stderr, "reactcfg-bench load: cannot write the policy in %s\n", dir);
    return 1;
  }
  char policy[600];
  snprintf(policy, sizeof policy, "%s/policy.lua", dir);

  /* Loading alone, as --check does (new, load, free). */
  double t0 = now_ms();
  rc_error err = {0};
  rc_engine_t *eng = rc_engine_new(&err);
  int rc = eng ? rc_engine_load_policy(eng, policy, &err) : RC_ENOMEM;
  double check_ms = now_ms() - t0;
  rc_engine_free(eng);
  check_ms = now_ms() - t0;
  if (rc) {
    fprintf(stderr, "reactcfg-bench load: %s\n", err.message);
    return 1;
  }

  /* Load and start on a loop of ours, then a reload through the policy file's watch. */
  load_run run = {0};
  uv_loop_t loop;
  uv_loop_init(&loop);
  t0 = now_ms();
  eng = rc_engine_new(&err);
  rc = eng ? rc_engine_load_policy(eng, policy, &err) : RC_ENOMEM;
  double load_ms = now_ms() - t0;
  if (!rc) rc_engine_on_event(eng, on_event, &run);
  double t1 = now_ms();
  if (!rc) rc = rc_engine_attach(eng, &loop, &err);
  double start_ms = now_ms() - t1;
  if (rc) {
    fprintf(stderr, "reactcfg-bench load: %s\n", err.message);
    return 1;
  }
  uint64_t rev = rc_engine_revision(eng);
  double reload_ms = -1;
  if (write_policy(dir, n, true) == 0) {
    bool expired = false;
    uv_timer_t limit;
    uv_timer_init(&loop, &limit);
    limit.data = &expired;
    uv_timer_start(&limit, on_timeout, 60000, 0);
    double t2 = now_ms();
    while (!run.reloaded && !expired) uv_run(&loop, UV_RUN_ONCE);
    if (run.reloaded) reload_ms = now_ms() - t2;
    uv_close((uv_handle_t *)&limit, NULL);
  }
  double t3 = now_ms();
  rc_engine_free(eng);
  double free_ms = now_ms() - t3;
  rc__loop_close_all(&loop);
  while (uv_loop_close(&loop) == UV_EBUSY) uv_run(&loop, UV_RUN_NOWAIT);
  printf("load components=%d check_ms=%.1f load_ms=%.1f start_ms=%.1f total_ms=%.1f "
         "revision=%llu reload_ms=%.1f free_ms=%.1f state_ms=%.3f errors=%d\n",
         n, check_ms, load_ms, start_ms, load_ms + start_ms, (unsigned long long)rev,
         reload_ms, free_ms, state_ms(), run.errors);
  char cmd[600];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (system(cmd) != 0) fprintf(stderr, "reactcfg-bench load: could not remove %s\n", dir);
  return 0;
}
