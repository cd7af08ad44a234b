/* SPDX-License-Identifier: MIT (see LICENSE) */
/* test_policy_features.c: the policy features that start, stop and swap things at run
 * time, end to end in C so the sanitizer build checks them for leaks and use-after-free:
 * a condition stopping and starting a file source, a Lua source with a luv timer and a
 * stop function, secrets flagged on changes, and policy hot reload (a good version, a
 * broken one, one whose first evaluation fails, and a fixed one). */
#include "harness.h"

static const char V1[] =
  "local rc = require 'reactcfg'\n"
  "return rc.policy { components = {\n"
  "  mode = { source = rc.env { name = 'RCT_PF_MODE', interval = '20ms' },\n"
  "           default = 'production' },\n"
  "  dev = { source = rc.file 'dev.json', default = { on = false },\n"
  "          condition = function(c) return c.mode == 'development' end },\n"
  "  ticks = { source = rc.lua_source(function(emit, uv)\n"
  "    local n, t = 0, uv.new_timer()\n"
  "    emit({ n = 0 })\n"
  "    t:start(10, 10, function() n = n + 1; if n <= 2 then emit({ n = n }) end end)\n"
  "    return function() t:stop(); t:close() end\n"
  "  end) },\n"
  "  db = { source = rc.file 'db.json', secret = { 'password' } },\n"
  "} }\n";

static int policy_events, reloads;
static bool secret_seen;

static void on_event(void *ud, const rc_event_t *ev) {
  h_on_event(ud, ev);
  if (ev->type == RC_EVENT_POLICY_ERROR) policy_events++;
  if (ev->type == RC_EVENT_POLICY_RELOADED) reloads++;
}

static void on_db(void *ud, const rc_snapshot_t *snap, const rc_change_t *ch, size_t n) {
  (void)ud, (void)snap;
  for (size_t i = 0; i < n; i++)
    if (strcmp(ch[i].path, "db.password") == 0 && ch[i].secret) secret_seen = true;
}

static void wait_for(harness *h, int *counter, int want) {
  int expired = 0;
  uv_timer_t t;
  uv_timer_init(&h->loop, &t);
  t.data = &expired;
  uv_timer_start(&t, h_timeout, 5000, 0);
  while (!expired && *counter < want) uv_run(&h->loop, UV_RUN_ONCE);
  uv_close((uv_handle_t *)&t, NULL);
  uv_run(&h->loop, UV_RUN_NOWAIT);
}

static int64_t get_int(harness *h, const char *path) {
  rc_snapshot_t *s = rc_snapshot_acquire(h->eng);
  int64_t v = -1;
  if (rc_snapshot_get_int(s, path, &v) != 0) v = -1;
  rc_snapshot_release(s);
  return v;
}

static bool get_bool(harness *h, const char *path) {
  rc_snapshot_t *s = rc_snapshot_acquire(h->eng);
  bool v = false;
  rc_snapshot_get_bool(s, path, &v);
  rc_snapshot_release(s);
  return v;
}

int main(void) {
  harness h = {0};
  h_tmpdir(&h, "policy_features");
  unsetenv("RCT_PF_MODE");
  h_write(&h, "dev.json", "{\"on\": true}");
  h_write(&h, "db.json", "{\"user\": \"u\", \"password\": \"a\"}");
  h_write(&h, "policy.lua", V1);
  char p[1024];
  h_path(&h, "policy.lua", p, sizeof p);
  uv_loop_init(&h.loop);
  rc_error err = {0};
  h.eng = rc_engine_new(&err);
  rc_engine_on_event(h.eng, on_event, &h);
  rc_subscribe(h.eng, "**", h_on_commit, &h, NULL);
  rc_subscribe(h.eng, "db", on_db, &h, NULL);
  CHECK_EQ_INT(rc_engine_load_policy(h.eng, p, &err), 0);
  CHECK_EQ_INT(rc_engine_attach(h.eng, &h.loop, &err), 0);
  CHECK(!get_bool(&h, "dev.on"));   /* inactive: the default */
  CHECK_EQ_INT(get_int(&h, "ticks.n"), 0);

  /* The Lua source's timer emits twice more. */
  h_run(&h, 3, -1, 5000, 50);
  CHECK_EQ_INT(get_int(&h, "ticks.n"), 2);

  /* Condition true: the file source starts and its value arrives. */
  setenv("RCT_PF_MODE", "development", 1);
  h_run(&h, h.commits + 1, -1, 5000, 50);
  CHECK(get_bool(&h, "dev.on"));
  h_write(&h, "db.json", "{\"user\": \"u\", \"password\": \"b\"}");
  h_run(&h, h.commits + 1, -1, 5000, 50);
  CHECK(secret_seen);
  /* Condition false again: the source stops, the default comes back. */
  unsetenv("RCT_PF_MODE");
  h_run(&h, h.commits + 1, -1, 5000, 50);
  CHECK(!get_bool(&h, "dev.on"));

  /* A broken version: the running policy stays. */
  h_write(&h, "policy.lua", "local rc = require 'reactcfg'\nreturn rc.policy { components = {\n"
                            "  a = { source = rc.file 'x.json', debounce = 'soon' } } }\n");
  wait_for(&h, &policy_events, 1);
  CHECK_EQ_INT(policy_events, 1);
  CHECK_EQ_INT(reloads, 0);
  /* A version whose first evaluation fails: rejected too (two events). */
  h_write(&h, "policy.lua", "local rc = require 'reactcfg'\nreturn rc.policy { components = {\n"
                            "  dev = { source = rc.file 'dev.json',\n"
                            "          update = function(v) return v.no.such end } } }\n");
  wait_for(&h, &policy_events, 3);
  CHECK_EQ_INT(policy_events, 3);
  CHECK_EQ_INT(reloads, 0);
  /* A good version: db kept, ticks and mode removed, dev changed (its source restarts). */
  h_write(&h, "policy.lua", "local rc = require 'reactcfg'\nreturn rc.policy { components = {\n"
                            "  dev = { source = rc.file 'dev.json' },\n"
                            "  db = { source = rc.file 'db.json', secret = { 'password' } },\n"
                            "} }\n");
  wait_for(&h, &reloads, 1);
  CHECK_EQ_INT(reloads, 1);
  h_run(&h, h.commits, -1, 100, 50);
  CHECK(get_bool(&h, "dev.on"));
  CHECK_EQ_INT(get_int(&h, "ticks.n"), -1);
  h_write(&h, "dev.json", "{\"on\": false}");
  h_run(&h, h.commits + 1, -1, 5000, 50);
  CHECK(!get_bool(&h, "dev.on"));

  CHECK(h_finish(&h));
  return check_report("test_policy_features");
}
