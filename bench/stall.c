/* SPDX-License-Identifier: MIT (see LICENSE) */
/* stall.c: `reactcfg-bench stall POLICY`: how long a hostile policy holds a running
 * engine's loop. An engine runs a small policy on a loop of ours, beside a 1 ms timer
 * that records the longest gap between its ticks; then POLICY's text replaces the policy
 * file and the engine reloads it (compile in a fresh state under the load budget,
 * refused, the state discarded). The longest gap from the write until 500 ms after the
 * reload ended is the stall; it is printed beside the load budget (target: within the
 * budget plus 10 ms). One line of key=value words. */
#include "bench_engine.h"
#include "lua_state.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct stall_run {
  bool ended;          /* policy.reloaded or policy.error seen */
  bool refused;
  uint64_t ended_ns;
  uint64_t last_tick_ns, max_gap_ns;
} stall_run;

static void on_event(void *ud, const rc_event_t *ev) {
  stall_run *r = ud;
  if (ev->type != RC_EVENT_POLICY_RELOADED && ev->type != RC_EVENT_POLICY_ERROR) return;
  if (!r->ended) r->ended_ns = rc__mono_ns();
  r->ended = true;
  r->refused = ev->type == RC_EVENT_POLICY_ERROR;
}

static void on_tick(uv_timer_t *t) {
  stall_run *r = t->data;
  uint64_t now = rc__mono_ns();
  if (r->last_tick_ns && now - r->last_tick_ns > r->max_gap_ns)
    r->max_gap_ns = now - r->last_tick_ns;
  r->last_tick_ns = now;
}

static void on_timeout(uv_timer_t *t) { *(bool *)t->data = true; }

/* Writes `len` bytes of `text` to `path` through a temporary file renamed over it. */
static int write_file(const char *path, const char *text, size_t len) {
  char tmp[640];
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  FILE *f = fopen(tmp, "wb");
  if (!f) return -1;
  size_t w = fwrite(text, 1, len, f);
  if (fclose(f) != 0 || w != len) return -1;
  return rename(tmp, path);
}

/* Runs `loop` until *flag or `ms` passed. */
static void run_for(uv_loop_t *loop, const bool *flag, uint64_t ms) {
  bool expired = false;
  uv_timer_t limit;
  uv_timer_init(loop, &limit);
  limit.data = &expired;
  uv_timer_start(&limit, on_timeout, ms, 0);
  while (!expired && !(flag && *flag)) uv_run(loop, UV_RUN_ONCE);
  uv_close((uv_handle_t *)&limit, NULL);
  uv_run(loop, UV_RUN_NOWAIT);
}

int rc_bench_stall_main(int argc, char **argv) {
  if (argc != 1) {
    fprintf(stderr, "usage: reactcfg-bench stall POLICY\n");
    return 2;
  }
  size_t hlen = 0;
  rc_error err = {0};
  char *hostile = rc__read_policy(argv[0], &hlen, &err); /* as the engine reads policies */
  if (!hostile) {
    fprintf(stderr, "reactcfg-bench stall: %s\n", err.message);
    return 1;
  }
  const char *base = getenv("BENCH_TMPDIR");
  char dir[512], policy[600];
  snprintf(dir, sizeof dir, "%s/rc-bench-stall.XXXXXX", base && *base ? base : "/tmp");
  const char *calm = "local rc = require 'reactcfg'\n"
                     "return rc.policy { components = { a = { source = rc.env 'STALL_UNSET',"
                     " default = { x = 1 } } } }\n";
  if (!mkdtemp(dir)) {
    fprintf(stderr, "reactcfg-bench stall: no temporary directory\n");
    return 1;
  }
  snprintf(policy, sizeof policy, "%s/policy.lua", dir);
  stall_run run = {0};
  uv_loop_t loop;
  uv_loop_init(&loop);
  rc_engine_t *eng = write_file(policy, calm, strlen(calm)) ? NULL : rc_engine_new(&err);
  int rc = eng ? rc_engine_load_policy(eng, policy, &err) : RC_ENOMEM;
  if (!rc) rc_engine_on_event(eng, on_event, &run);
  if (!rc) rc = rc_engine_attach(eng, &loop, &err);
  if (rc) {
    fprintf(stderr, "reactcfg-bench stall: %s\n", err.message);
    return 1;
  }
  uv_timer_t tick;
  uv_timer_init(&loop, &tick);
  tick.data = &run;
  uv_timer_start(&tick, on_tick, 1, 1);
  run_for(&loop, NULL, 300);
  run.max_gap_ns = 0;
  uint64_t t0 = rc__mono_ns();
  if (write_file(policy, hostile, hlen)) {
    fprintf(stderr, "reactcfg-bench stall: cannot write %s\n", policy);
    return 1;
  }
  run_for(&loop, &run.ended, 120000);
  run_for(&loop, NULL, 500);
  uv_close((uv_handle_t *)&tick, NULL);
  double reload_ms = run.ended ? (double)(run.ended_ns - t0) / 1e6 : -1;
  double gap_ms = (double)run.max_gap_ns / 1e6;
  const char *name = strrchr(argv[0], '/');
  printf("stall policy=%s outcome=%s budget_ms=%d reload_ms=%.1f max_gap_ms=%.1f "
         "past_budget_ms=%.1f\n",
         name ? name + 1 : argv[0], !run.ended ? "none" : run.refused ? "refused" : "reloaded",
         RC_LUA_LOAD_BUDGET_MS, reload_ms, gap_ms, gap_ms - RC_LUA_LOAD_BUDGET_MS);
  bench_engine_free(eng, &loop);
  rc__free(hostile);
  char cmd[600];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (system(cmd) != 0) fprintf(stderr, "reactcfg-bench stall: could not remove %s\n", dir);
  return 0;
}
