/* SPDX-License-Identifier: MIT (see LICENSE) */
/* test_cache_for.c: `cache_for` on a file source through the public API (leaks checked
 * in the sanitizer build): the source is stopped after its answer, so a save within
 * cache_for is not seen until the time is up; the answer goes to the policy's cache and
 * a restart within cache_for starts from it without reading the file, date-times
 * (TOML) included as date-times. */
#include "harness.h"

static const char POLICY[] =
  "local rc = require 'reactcfg'\n"
  "return rc.policy { cache = 'cache', components = {\n"
  "  limits = { source = rc.file 'limits.json', cache_for = '1s' },\n"
  "  stamp = { source = rc.file 'stamp.toml', cache_for = '1s' },\n"
  "} }\n";

static int held, refetched, from_cache;

static void on_event(void *ud, const rc_event_t *ev) {
  h_on_event(ud, ev);
  if (ev->type != RC_EVENT_COMPONENT_STATE || !ev->message) return;
  if (strstr(ev->message, "holding the value for 1000 ms")) held++;
  if (strstr(ev->message, "fetching again")) refetched++;
  if (strstr(ev->message, "using the value fetched")) from_cache++;
}

static int64_t rps(harness *h) {
  rc_snapshot_t *s = rc_snapshot_acquire(h->eng);
  int64_t n = -1;
  if (rc_snapshot_get_int(s, "limits.rps", &n) != 0) n = -1;
  rc_snapshot_release(s);
  return n;
}

static int stamp_type(harness *h) {
  rc_snapshot_t *s = rc_snapshot_acquire(h->eng);
  const rc_value_t *v = rc_snapshot_get(s, "stamp.since");
  int t = v ? (int)rc_value_type(v) : -1;
  rc_snapshot_release(s);
  return t;
}

static void start(harness *h) {
  char p[1024];
  h_path(h, "policy.lua", p, sizeof p);
  uv_loop_init(&h->loop);
  rc_error err = {0};
  h->eng = rc_engine_new(&err);
  rc_engine_on_event(h->eng, on_event, h);
  rc_subscribe(h->eng, "**", h_on_commit, h, NULL);
  CHECK_EQ_INT(rc_engine_load_policy(h->eng, p, &err), 0);
  CHECK_EQ_INT(rc_engine_attach(h->eng, &h->loop, &err), 0);
}

/* Stops the engine and closes the loop, keeping the directory (and its cache). */
static void stop(harness *h) {
  rc_engine_free(h->eng);
  h->eng = NULL;
  CHECK_EQ_INT(uv_loop_close(&h->loop), 0);
}

int main(void) {
  harness h = {0};
  h_tmpdir(&h, "cache_for");
  h_write(&h, "limits.json", "{\"rps\": 1}");
  h_write(&h, "stamp.toml", "since = 1979-05-27T07:32:00Z\n");
  h_write(&h, "policy.lua", POLICY);
  start(&h);
  CHECK_EQ_INT(rps(&h), 1);
  h_run(&h, 0, -1, 100, 0);
  CHECK_EQ_INT(held, 2);

  /* Saved while held: not read until the second is over. */
  h_write(&h, "limits.json", "{\"rps\": 2}");
  h_run(&h, 0, -1, 200, 0);
  CHECK_EQ_INT(rps(&h), 1);
  CHECK_EQ_INT(refetched, 0);
  h_run(&h, h.commits + 1, -1, 5000, 50);
  CHECK_EQ_INT(rps(&h), 2);
  CHECK_EQ_INT(refetched, 2);
  CHECK_EQ_INT(held, 4);   /* stopped again after the second answer */
  stop(&h);

  /* A restart within the second starts from the cache, not from the file. */
  char cached[1024];
  h_path(&h, "cache/limits.json", cached, sizeof cached);
  CHECK(access(cached, R_OK) == 0);
  h_write(&h, "limits.json", "{\"rps\": 3}");
  h.commits = 0;
  start(&h);
  CHECK_EQ_INT(from_cache, 2);
  CHECK_EQ_INT(rps(&h), 2);
  CHECK_EQ_INT(stamp_type(&h), RC_TYPE_DATETIME);  /* not the string it is written as */
  h.nchanges = 0;
  h_run(&h, h.commits + 1, -1, 5000, 300);
  CHECK_EQ_INT(rps(&h), 3);
  CHECK_EQ_INT(refetched, 4);
  /* The file's same date-time read again is no change. */
  CHECK_EQ_INT(h_find_change(&h, "modified stamp"), -1);

  CHECK(h_finish(&h));
  return check_report("test_cache_for");
}
