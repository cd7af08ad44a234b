/* SPDX-License-Identifier: MIT (see LICENSE) */
/* test_file_hybrid.c: hybrid watching. When inotify cannot be had (here: every inotify
 * instance of this user is taken, as when fs.inotify.max_user_instances runs out), the
 * file source polls instead of failing, keeps trying, and goes back to inotify events as
 * soon as it can. Registered RUN_SERIAL: it briefly takes every inotify instance. */
#include "harness.h"

#include <sys/inotify.h>

static const char POLICY[] =
  "local rc = require 'reactcfg'\n"
  "return rc.policy { components = {\n"
  "  s = { source = rc.file('s.json', { poll = '50ms' }) },\n"
  "} }\n";

static int states;
static char last_state[1024];

static void on_event(void *ud, const rc_event_t *ev) {
  h_on_event(ud, ev);
  if (ev->type == RC_EVENT_COMPONENT_STATE) {
    states++;
    snprintf(last_state, sizeof last_state, "%s", ev->message);
  }
}

int main(void) {
  harness h = {0};
  h_tmpdir(&h, "file_hybrid");
  h_write(&h, "s.json", "{\"v\": 1}");
  /* Take every inotify instance left to this user. */
  int hoard[4096], n = 0;
  while (n < 4096 && (hoard[n] = inotify_init1(IN_CLOEXEC)) >= 0) n++;
  CHECK(n < 4096);
  h_write(&h, "policy.lua", POLICY);
  char p[1024];
  h_path(&h, "policy.lua", p, sizeof p);
  uv_loop_init(&h.loop);
  rc_error err = {0};
  h.eng = rc_engine_new(&err);
  rc_engine_set_policy_reload(h.eng, false); /* its watch would need inotify too */
  rc_engine_on_event(h.eng, on_event, &h);
  rc_subscribe(h.eng, "**", h_on_commit, &h, NULL);
  CHECK_EQ_INT(rc_engine_load_policy(h.eng, p, &err), 0);
  CHECK_EQ_INT(rc_engine_attach(h.eng, &h.loop, &err), 0);
  CHECK_EQ_INT(h.commits, 1);
  CHECK_EQ_INT(states, 1);
  CHECK(strstr(last_state, "polling it every 50 ms") != NULL);

  /* Polling sees a save. */
  h_write(&h, "s.json", "{\"v\": 2}");
  h_run(&h, 2, -1, 5000, 120);
  CHECK_EQ_INT(h.commits, 2);
  CHECK(h_find_change(&h, "modified s.v 1 2") >= 0);

  /* Instances free again: the next tick goes back to inotify, and events work. */
  while (n > 0) close(hoard[--n]);
  int expired = 0;
  uv_timer_t t;
  uv_timer_init(&h.loop, &t);
  t.data = &expired;
  uv_timer_start(&t, h_timeout, 5000, 0);
  while (!expired && states < 2) uv_run(&h.loop, UV_RUN_ONCE);
  uv_close((uv_handle_t *)&t, NULL);
  CHECK_EQ_INT(states, 2);
  CHECK(strstr(last_state, "with inotify again") != NULL);
  h_write(&h, "s.json", "{\"v\": 3}");
  h_run(&h, 3, -1, 5000, 120);
  CHECK_EQ_INT(h.commits, 3);
  CHECK(h_find_change(&h, "modified s.v 2 3") >= 0);

  CHECK(h_finish(&h));
  return check_report("test_file_hybrid");
}
