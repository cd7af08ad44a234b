/* SPDX-License-Identifier: MIT (see LICENSE) */
/* test_engine_env.c: the env source end to end: a variable set, changed and unset gives
 * added, modified and removed (or the default); a prefix gathers variables into a table;
 * rc_engine_setenv makes the change visible without waiting for the poll. */
#include "harness.h"

static const char POLICY[] =
  "local rc = require 'reactcfg'\n"
  "return rc.policy {\n"
  "  components = {\n"
  "    mode = { source = rc.env { name = 'RCT_MODE', interval = '20ms' },\n"
  "             default = 'production' },\n"
  "    token = rc.env { name = 'RCT_TOKEN', interval = '20ms' },\n"
  "    app = { source = rc.env { prefix = 'RCT_APP_', interval = '20ms' } },\n"
  "  },\n"
  "}\n";

static void expect(harness *h, const char *what, int commits, const char *change) {
  int before = h->commits, first = h->nchanges;
  h_run(h, before + commits, -1, 5000, 120);
  if (h->commits != before + commits)
    fprintf(stderr, "%s: expected %d commits, got %d\n", what, commits, h->commits - before);
  CHECK_EQ_INT(h->commits, before + commits);
  if (change) {
    CHECK(h->nchanges > first);
    if (h->nchanges > first) CHECK_EQ_STR(h->changes[first], change);
  }
}

int main(void) {
  harness h = {0};
  h_tmpdir(&h, "engine_env");
  unsetenv("RCT_MODE");
  unsetenv("RCT_TOKEN");
  setenv("RCT_APP_PORT", "8080", 1);
  setenv("RCT_APP_HOST", "localhost", 1);
  CHECK_EQ_INT(h_start(&h, POLICY), 0);
  CHECK_EQ_INT(h.commits, 1);
  CHECK(h_find_change(&h, "added mode - \"production\"") >= 0);
  CHECK(h_find_change(&h, "added app - {\"host\":\"localhost\",\"port\":\"8080\"}") >= 0);
  CHECK(h_find_change(&h, "added token") < 0);

  /* set, change, unset: polled (the test owns the loop thread, so setenv is safe) */
  setenv("RCT_TOKEN", "abc", 1);
  expect(&h, "set", 1, "added token - \"abc\"");
  setenv("RCT_TOKEN", "def", 1);
  expect(&h, "change", 1, "modified token \"abc\" \"def\"");
  unsetenv("RCT_TOKEN");
  expect(&h, "unset", 1, "removed token \"def\" -");

  /* unset with a default falls back to it */
  setenv("RCT_MODE", "development", 1);
  expect(&h, "mode set", 1, "modified mode \"production\" \"development\"");
  unsetenv("RCT_MODE");
  expect(&h, "mode unset", 1, "modified mode \"development\" \"production\"");

  /* prefix: one key added, one removed, one changed: one commit, three changes */
  setenv("RCT_APP_DEBUG", "1", 1);
  unsetenv("RCT_APP_HOST");
  setenv("RCT_APP_PORT", "9090", 1);
  int first = h.nchanges;
  expect(&h, "prefix", 1, NULL);
  CHECK_EQ_INT(h.nchanges - first, 3);
  CHECK(h_find_change(&h, "added app.debug - \"1\"") >= first);
  CHECK(h_find_change(&h, "removed app.host \"localhost\" -") >= first);
  CHECK(h_find_change(&h, "modified app.port \"8080\" \"9090\"") >= first);

  /* nothing changed: no commit */
  setenv("RCT_APP_PORT", "9090", 1);
  expect(&h, "same", 0, NULL);

  /* rc_engine_setenv goes through the loop and rescans at once */
  CHECK_EQ_INT(rc_engine_setenv(h.eng, "RCT_TOKEN", "xyz"), 0);
  expect(&h, "rc_engine_setenv", 1, "added token - \"xyz\"");
  CHECK_EQ_INT(rc_engine_setenv(h.eng, "RCT_TOKEN", NULL), 0);
  expect(&h, "rc_engine_setenv unset", 1, "removed token \"xyz\" -");
  CHECK_EQ_INT(rc_engine_setenv(h.eng, "BAD=NAME", "x"), RC_EINVAL);

  /* The typed getters refuse a NULL out-pointer (they wrote through it before). */
  rc_snapshot_t *snap = rc_snapshot_acquire(h.eng);
  CHECK(snap != NULL);
  CHECK_EQ_INT(rc_snapshot_get_int(snap, "app.port", NULL), RC_EINVAL);
  CHECK_EQ_INT(rc_snapshot_get_number(snap, "app.port", NULL), RC_EINVAL);
  CHECK_EQ_INT(rc_snapshot_get_bool(snap, "app.port", NULL), RC_EINVAL);
  CHECK_EQ_INT(rc_snapshot_get_string(snap, "app.port", NULL, NULL), RC_EINVAL);
  CHECK_EQ_INT(rc_snapshot_get_string(snap, "missing", NULL, NULL), RC_EINVAL);
  const char *str = NULL;
  CHECK_EQ_INT(rc_snapshot_get_string(snap, "app.port", &str, NULL), 0);
  CHECK(str && strcmp(str, "9090") == 0);
  const rc_value_t *port = rc_snapshot_get(snap, "app.port");
  CHECK_EQ_INT(rc_value_string(port, NULL, NULL), RC_EINVAL);
  CHECK_EQ_INT(rc_value_int(port, NULL), RC_EINVAL);
  CHECK_EQ_INT(rc_value_number(port, NULL), RC_EINVAL);
  CHECK_EQ_INT(rc_value_bool(port, NULL), RC_EINVAL);
  CHECK_EQ_INT(rc_value_datetime(port, NULL), RC_EINVAL);
  rc_snapshot_release(snap);

  CHECK(h_finish(&h));
  unsetenv("RCT_APP_PORT");
  unsetenv("RCT_APP_DEBUG");
  return check_report("engine_env");
}
