/* SPDX-License-Identifier: MIT (see LICENSE) */
/* test_engine_hazards.c: the engine's thread and unwinding hazards, each reproduced
 * through the public API: a policy load failing at every allocation (a Lua memory error
 * while the loader's result is read into C must not escape), large files read on the
 * thread pool while a condition stops and starts their source, a policy reload that
 * retires a source while the shared inotify descriptor dispatches an event another
 * source still needs, and stopping an engine whose allocator refuses everything. */
#include "failalloc.h"
#include "harness.h"

#include <pthread.h>

/* ---- a policy load failing at each allocation ---- */

static const char *OOM_POLICY =
  "local rc = require 'reactcfg'\n"
  "return rc.policy { on_change = function() end, components = {\n"
  "  settings = { source = rc.file { path = 'settings.json', limits = { max_depth = 32 } },\n"
  "               default = { server = { port = 8080, hosts = { 'a', 'b' } } } },\n"
  "  mode = { source = rc.env 'RC_HAZARD_MODE', default = 'production' },\n"
  "  api = { source = rc.http { url = 'http://127.0.0.1:9/x.json', headers = { A = 'b' } },\n"
  "          depends_on = { 'mode' }, update = function(v, ctx) return v end,\n"
  "          validate = function(v) return true end, secret = { 'token' } },\n"
  "} }\n";

/* Loads OOM_POLICY with allocation `n` of the load failing (-1: none). Returns the
 * load's code; *failed says whether the failure was hit. */
static int load_failing_at(const char *path, long n, bool *failed) {
  rc_error err = {0};
  rc_engine_t *eng = rc_engine_new(&err);
  CHECK(eng != NULL);
  if (!eng) return RC_ENOMEM;
  long failures = fa_failures;
  fa_countdown = n;
  fa_sticky = 1; /* out of memory stays out of memory: Lua's retry after a GC fails too */
  int rc = rc_engine_load_policy(eng, path, &err);
  fa_countdown = -1;
  fa_sticky = 0;
  atomic_store(&fa_fail_all, 0);
  *failed = fa_failures != failures;
  rc_engine_free(eng);
  return rc;
}

static void test_policy_load_oom(void) {
  harness h = {0};
  h_tmpdir(&h, "hazard-oom");
  h_write(&h, "policy.lua", OOM_POLICY);
  char path[1024];
  h_path(&h, "policy.lua", path, sizeof path);
  fa_install(-1);
  long base = fa_live;
  long before = fa_allocs;
  bool failed;
  CHECK_EQ_INT(load_failing_at(path, -1, &failed), 0);
  long total = fa_allocs - before;
  CHECK(total > 100);
  /* Every allocation of the load (creating the engine's state is not the load). Odd
   * steps above the first thousand keep the run short while still crossing every phase
   * (loader, component reading, conversion). */
  long tried = 0, clean = 0;
  long first = getenv("RC_OOM_FROM") ? atol(getenv("RC_OOM_FROM")) : 0;
  for (long n = first; n < total; n += n < 1000 ? 1 : 7) {
    int rc = load_failing_at(path, n, &failed);
    tried++;
    if (rc == 0 || rc == RC_ENOMEM || rc == RC_EPOLICY) clean++;
    else fprintf(stderr, "allocation %ld failing: load returned %s\n", n, rc_err_name(rc));
    if (fa_live != base) {
      fprintf(stderr, "allocation %ld failing leaks %ld blocks\n", n, fa_live - base);
      CHECK_EQ_INT(fa_live, base);
      break;
    }
  }
  CHECK_EQ_INT(clean, tried);
  fa_uninstall();
  CHECK(h_finish_dir(&h));
}

/* ---- large files read on the thread pool while a condition toggles their source ---- */

static void write_big(const harness *h, int round) {
  char p[1024];
  h_path(h, "big.json", p, sizeof p);
  char tmp[1100];
  snprintf(tmp, sizeof tmp, "%s.tmp", p);
  FILE *f = fopen(tmp, "wb");
  if (!f) exit(2);
  /* About 2 MiB: above the 1 MiB at which reads go to the thread pool. */
  fprintf(f, "{\"round\":%d,\"pad\":[", round);
  for (int i = 0; i < 100000; i++) fprintf(f, "%s\"xxxxxxxxxxxxxx\"", i ? "," : "");
  fputs("]}", f);
  fclose(f);
  rename(tmp, p);
}

/* The policy of the pool test, version `v`: the same components, so a reload keeps the
 * running source (and its read in flight) but frees the component it was made for. */
static void write_pool_policy(const harness *h, int v) {
  char text[1024];
  snprintf(text, sizeof text,
    "local rc = require 'reactcfg'\n"
    "-- version %d\n"
    "return rc.policy { components = {\n"
    "  on = { source = rc.env { name = 'RC_HAZARD_ON', interval = '5ms' } },\n"
    "  big = { source = rc.file 'big.json',\n"
    "          condition = function(c) return c.on == 'on' end },\n"
    "} }\n", v);
  h_save(h, "policy.lua", text);
}

static void test_pool_reads_during_toggles(void) {
  harness h = {0};
  h_tmpdir(&h, "hazard-pool");
  write_big(&h, 0);
  setenv("RC_HAZARD_ON", "on", 1);
  write_pool_policy(&h, 0);
  char path[1024];
  h_path(&h, "policy.lua", path, sizeof path);
  uv_loop_init(&h.loop);
  rc_error err = {0};
  h.eng = rc_engine_new(&err);
  rc_engine_on_event(h.eng, h_on_event, &h);
  rc_subscribe(h.eng, "**", h_on_commit, &h, NULL);
  int rc = rc_engine_load_policy(h.eng, path, &err);
  if (rc == 0) rc = rc_engine_attach(h.eng, &h.loop, &err);
  CHECK_EQ_INT(rc, 0);
  if (rc) return;
  /* Each round starts a pool read (a new big file) and, while it runs, replaces the
   * policy (the component the read was started for is freed) and turns the condition
   * off and on (the source is retired). */
  for (int round = 1; round <= 30; round++) {
    write_big(&h, round);
    write_pool_policy(&h, round);
    h_run_for(&h, 2);
    rc_engine_setenv(h.eng, "RC_HAZARD_ON", "off");
    h_run_for(&h, 2);
    rc_engine_setenv(h.eng, "RC_HAZARD_ON", "on");
    h_run_for(&h, 2);
  }
  /* Settled: the component holds the last round. */
  int64_t got = -1;
  for (int i = 0; i < 200 && got != 30; i++) {
    h_run_for(&h, 20);
    rc_snapshot_t *s = rc_snapshot_acquire(h.eng);
    if (rc_snapshot_get_int(s, "big.round", &got) != 0) got = -1;
    rc_snapshot_release(s);
  }
  CHECK_EQ_INT(got, 30);
  CHECK(h_finish(&h));
}

/* ---- a reload that retires a source while inotify dispatches an event ---- */

static const char *DISPATCH_POLICY =
  "local rc = require 'reactcfg'\n"
  "return rc.policy { components = {\n"
  "  %s"
  "  flag = { source = rc.env { name = 'RC_HAZARD_FLAG', interval = '5ms' } },\n"
  "  text = { source = rc.file { path = 'policy.lua', format = 'text' },\n"
  "           condition = function(c) return c.flag == 'on' end },\n"
  "} }\n";

static void write_policy(const harness *h, bool with_a) {
  char text[2048], p[1024], tmp[1100];
  snprintf(text, sizeof text, DISPATCH_POLICY,
           with_a ? "a = { source = rc.file 'a.json' },\n" : "");
  h_path(h, "policy.lua", p, sizeof p);
  snprintf(tmp, sizeof tmp, "%s.tmp", p);
  FILE *f = fopen(tmp, "wb");
  if (!f) exit(2);
  fputs(text, f);
  fclose(f);
  rename(tmp, p); /* one IN_MOVED_TO for the policy watch and `text` alike */
}

static void test_reload_during_dispatch(void) {
  harness h = {0};
  h_tmpdir(&h, "hazard-dispatch");
  h_write(&h, "a.json", "{\"x\":1}");
  setenv("RC_HAZARD_FLAG", "off", 1);
  char text[2048];
  snprintf(text, sizeof text, DISPATCH_POLICY, "a = { source = rc.file 'a.json' },\n");
  int rc = h_start(&h, text);
  CHECK_EQ_INT(rc, 0);
  if (rc) return;
  /* `text` starts now, after the policy's own watch: it listens after it. */
  rc_engine_setenv(h.eng, "RC_HAZARD_FLAG", "on");
  h_run(&h, 1, -1, 2000, 50);
  CHECK(h_find_change(&h, "added text ") >= 0);
  /* The new policy drops `a`: the reload, run from the policy watch's part of the
   * dispatch, retires a's source; `text` must still see the same event. */
  int before = h.nchanges;
  write_policy(&h, false);
  h_run(&h, h.commits + 1, -1, 3000, 100);
  bool seen = false;
  for (int i = before; i < h.nchanges; i++)
    seen = seen || strncmp(h.changes[i], "modified text ", 14) == 0;
  CHECK(seen);
  CHECK(h_find_change(&h, "removed a ") >= 0);
  CHECK(h_finish(&h));
}

/* ---- stopping an engine whose allocator refuses everything ---- */

static void test_stop_without_memory(void) {
  harness h = {0};
  h_tmpdir(&h, "hazard-stop");
  h_write(&h, "policy.lua", "local rc = require 'reactcfg'\n"
                            "return rc.policy { components = {\n"
                            "  mode = { source = rc.env 'RC_HAZARD_MODE' } } }\n");
  char path[1024];
  h_path(&h, "policy.lua", path, sizeof path);
  fa_install(-1);
  rc_error err = {0};
  rc_engine_t *eng = rc_engine_new(&err);
  CHECK(eng != NULL);
  CHECK_EQ_INT(rc_engine_load_policy(eng, path, &err), 0);
  CHECK_EQ_INT(rc_engine_start(eng, &err), 0);
  atomic_store(&fa_fail_all, 1);
  /* Returns: stopping needs no memory (it waited forever when a request could not be
   * allocated). */
  CHECK_EQ_INT(rc_engine_stop(eng), 0);
  atomic_store(&fa_fail_all, 0);
  rc_engine_free(eng);
  fa_uninstall();
  CHECK(h_finish_dir(&h));
}

int main(int argc, char **argv) {
  /* One test by name (oom, pool, dispatch, stop), or all. */
  const char *only = argc > 1 ? argv[1] : NULL;
  if (!only || !strcmp(only, "oom")) test_policy_load_oom();
  if (!only || !strcmp(only, "pool")) test_pool_reads_during_toggles();
  if (!only || !strcmp(only, "dispatch")) test_reload_during_dispatch();
  if (!only || !strcmp(only, "stop")) test_stop_without_memory();
  return check_report("engine hazards");
}
