/* SPDX-License-Identifier: MIT (see LICENSE) */
/* test_subscribe.c: subscription patterns and delivery: each subscriber receives only the
 * changes its pattern matches (subtrees, wildcards, ancestors that replaced a container),
 * and may unsubscribe itself from inside its callback. */
#include "engine.h"
#include "harness.h"

typedef struct seen {
  int calls;
  int changes;
  char first[256];
  int order;            /* when it was last called, among all subscribers */
  int unsubscribe_id;   /* when > 0, unsubscribe this id from inside the callback */
  rc_engine_t *eng;
} seen;

static int calls_so_far;

static void on_change(void *ud, const rc_snapshot_t *snap, const rc_change_t *ch, size_t n) {
  seen *s = ud;
  (void)snap;
  s->order = ++calls_so_far;
  s->calls++;
  s->changes += (int)n;
  if (n) snprintf(s->first, sizeof s->first, "%s", ch[0].path);
  if (s->unsubscribe_id > 0) CHECK_EQ_INT(rc_unsubscribe(s->eng, s->unsubscribe_id), 0);
}

int main(void) {
  /* the matching rule itself */
  CHECK(rc__pattern_match("**", "a.b.c"));
  CHECK(rc__pattern_match("db", "db.pool.max"));          /* below the pattern */
  CHECK(rc__pattern_match("db.*", "db.host"));
  CHECK(rc__pattern_match("db.*.max", "db.pool.max"));
  CHECK(!rc__pattern_match("db.*.max", "db.pool.min"));
  CHECK(rc__pattern_match("**.max", "db.pool.max"));
  CHECK(!rc__pattern_match("**.max", "db.pool.min"));
  CHECK(rc__pattern_match("rules[2].host", "rules[2].host"));
  CHECK(!rc__pattern_match("rules[2].host", "rules[1].host"));
  CHECK(rc__pattern_match("rules.*.host", "rules[7].host"));  /* * matches an index */
  CHECK(rc__pattern_match("flags[\"a.b\"]", "flags[\"a.b\"]"));
  CHECK(!rc__pattern_match("flags.a", "flags[\"a.b\"]"));
  CHECK(!rc__pattern_match("other", "db.host"));
  /* a scalar change at an ancestor does not reach a deeper pattern */
  CHECK(!rc__pattern_match("db.host.port", "db.host"));

  harness h = {0};
  h_tmpdir(&h, "subscribe");
  h_write(&h, "a.json", "{\"db\": {\"host\": \"x\", \"pool\": {\"max\": 1}}, \"other\": 1}");
  CHECK_EQ_INT(h_start(&h, "local rc = require 'reactcfg'\n"
                           "return rc.policy { components = { a = rc.file 'a.json' } }\n"), 0);
  seen pool = {0}, host = {0}, all = {0}, none = {0}, once = {0};
  CHECK(rc_subscribe(h.eng, "a.db.pool", on_change, &pool, NULL) > 0);
  CHECK(rc_subscribe(h.eng, "a.db.host", on_change, &host, NULL) > 0);
  CHECK(rc_subscribe(h.eng, "**", on_change, &all, NULL) > 0);
  CHECK(rc_subscribe(h.eng, "b", on_change, &none, NULL) > 0);
  int once_id = rc_subscribe(h.eng, "a", on_change, &once, NULL);
  CHECK(once_id > 0);
  once.unsubscribe_id = once_id;
  once.eng = h.eng;
  CHECK_EQ_INT(rc_subscribe(h.eng, "a[", on_change, &none, NULL), RC_EINVAL);

  h_write(&h, "a.json", "{\"db\": {\"host\": \"y\", \"pool\": {\"max\": 2}}, \"other\": 2}");
  h_run(&h, 2, -1, 5000, 200);
  CHECK_EQ_INT(pool.calls, 1);
  CHECK_EQ_INT(pool.changes, 1);
  CHECK_EQ_STR(pool.first, "a.db.pool.max");
  CHECK_EQ_INT(host.changes, 1);
  CHECK_EQ_STR(host.first, "a.db.host");
  CHECK_EQ_INT(all.changes, 3);
  CHECK_EQ_INT(none.calls, 0);
  CHECK_EQ_INT(once.calls, 1);
  /* called in the order they subscribed */
  CHECK(pool.order < host.order && host.order < all.order && all.order < once.order);

  /* a whole subtree replaced by a scalar reaches subscribers below it */
  h_write(&h, "a.json", "{\"db\": 5, \"other\": 2}");
  h_run(&h, 3, -1, 5000, 200);
  CHECK_EQ_INT(pool.calls, 2);
  CHECK_EQ_STR(pool.first, "a.db");
  CHECK_EQ_INT(host.calls, 2);
  CHECK_EQ_INT(once.calls, 1); /* unsubscribed itself */
  CHECK_EQ_INT(rc_unsubscribe(h.eng, once_id), RC_ENOTFOUND);
  CHECK(h_finish(&h));
  return check_report("subscribe");
}
