/* SPDX-License-Identifier: MIT (see LICENSE) */
/* test_reload_txn.c: reloads as transactions, through the public API: reload modules
 * that accept, refuse, time out, answer from another thread or fail their rollback;
 * readers that never see a revision a module refused; rollback to a revision, pinning
 * and unpinning; reloads of named components during a debounce and a cache_for hold;
 * values pushed by the application (also awaited at start); the backoff after a refusal;
 * static paths across policy reloads and late first values; event handler lists. */
#include "harness.h"

#include <pthread.h>

/* ---- a recording module ---- */

typedef struct mod {
  const char *name;
  int answer;              /* what apply returns (RC_OK, RC_EREFUSED, RC_EPENDING) */
  int rollback_answer;     /* what it returns in a rollback */
  int calls, rollbacks;
  char last[256];          /* "path old new" of its last change */
  uint64_t seen_current;   /* rc_engine_revision while it ran */
  uint64_t seen_candidate; /* the candidate's revision */
  rc_reload_t *pending;    /* kept when it answered RC_EPENDING */
  const char *reason;      /* given with a refusal through rc_reload_set_reason */
  harness *h;
} mod;

static int apply(void *ud, rc_reload_t *r, const rc_snapshot_t *snap, const rc_change_t *ch,
                 size_t n) {
  mod *m = ud;
  if (rc_reload_is_rollback(r)) m->rollbacks++;
  else m->calls++;
  m->seen_current = rc_engine_revision(m->h->eng);
  m->seen_candidate = rc_snapshot_revision(snap);
  char o[64], v[64];
  h_value_str(ch[n - 1].old_value, o, sizeof o);
  h_value_str(ch[n - 1].new_value, v, sizeof v);
  snprintf(m->last, sizeof m->last, "%s %s %s", ch[n - 1].path, o, v);
  int answer = rc_reload_is_rollback(r) ? m->rollback_answer : m->answer;
  if (answer == RC_EPENDING) m->pending = r;
  if (m->reason) rc_reload_set_reason(r, m->reason);
  return answer;
}

/* Event names in order, for checking the lifecycle. */
static char evlog[4096];
static int reload_failed, rolledback, completed, pinned_events;
static char rolledback_msg[1024], failed_msg[1024];

static void log_event(void *ud, const rc_event_t *ev) {
  h_on_event(ud, ev);
  if (strncmp(ev->name, "reload.", 7) == 0 || strncmp(ev->name, "module.", 7) == 0 ||
      strncmp(ev->name, "engine.pin", 10) == 0 || strncmp(ev->name, "engine.unpin", 12) == 0) {
    size_t used = strlen(evlog);
    snprintf(evlog + used, sizeof evlog - used, "%s%s%s%s", used ? " " : "", ev->name,
             ev->module[0] ? ":" : "", ev->module);
  }
  if (ev->type == RC_EVENT_RELOAD_FAILED) {
    reload_failed++;
    snprintf(failed_msg, sizeof failed_msg, "%s", ev->message);
  }
  if (ev->type == RC_EVENT_RELOAD_COMPLETED) completed++;
  if (ev->type == RC_EVENT_PINNED) pinned_events++;
  if (ev->type == RC_EVENT_RELOAD_ROLLEDBACK) {
    rolledback++;
    snprintf(rolledback_msg, sizeof rolledback_msg, "%s", ev->message);
  }
}

static void reset_log(void) {
  evlog[0] = '\0';
  reload_failed = rolledback = completed = pinned_events = 0;
  rolledback_msg[0] = '\0';
}

static int64_t get_int(harness *h, const char *path) {
  rc_snapshot_t *s = rc_snapshot_acquire(h->eng);
  int64_t v = -1;
  if (rc_snapshot_get_int(s, path, &v) != 0) v = -1;
  rc_snapshot_release(s);
  return v;
}

static const char *POLICY =
  "local rc = require 'reactcfg'\n"
  "return rc.policy { reload_backoff = { min = '%s' }, components = {\n"
  "  db = { source = rc.file 'db.json' },\n"
  "  web = { source = rc.file 'web.json' },\n"
  "} }\n";

static int start(harness *h, const char *name, const char *backoff) {
  memset(h, 0, sizeof *h);
  h_tmpdir(h, name);
  h_write(h, "db.json", "{\"pool\": 4}");
  h_write(h, "web.json", "{\"port\": 80}");
  char text[1024];
  snprintf(text, sizeof text, POLICY, backoff);
  h_write(h, "policy.lua", text);
  char p[1024];
  h_path(h, "policy.lua", p, sizeof p);
  uv_loop_init(&h->loop);
  rc_error err = {0};
  h->eng = rc_engine_new(&err);
  rc_engine_on_event(h->eng, log_event, h);
  rc_subscribe(h->eng, "**", h_on_commit, h, NULL);
  int rc = rc_engine_load_policy(h->eng, p, &err);
  if (rc == 0) rc = rc_engine_attach(h->eng, &h->loop, &err);
  if (rc) fprintf(stderr, "start: %s\n", err.message);
  reset_log();
  return rc;
}

/* ---- accept, refuse, roll back ---- */

static void test_accept(void) {
  harness h;
  CHECK_EQ_INT(start(&h, "txn-accept", "1s"), 0);
  mod a = {.name = "a", .answer = RC_OK, .h = &h};
  CHECK(rc_module_register(h.eng, "a", "db.**", apply, 0, &a, NULL) > 0);
  CHECK_EQ_INT(rc_module_register(h.eng, "a", "", apply, 0, &a, NULL), RC_EINVAL);
  int commits = h.commits;
  h_save(&h, "db.json", "{\"pool\": 8}");
  h_run_until(&h, &h.commits, commits + 1, 5000);
  CHECK_EQ_INT(a.calls, 1);
  CHECK_EQ_STR(a.last, "db.pool 4 8");
  /* While the module ran, readers saw the running revision; it got the next one. */
  CHECK_EQ_INT(a.seen_current, 1);
  CHECK_EQ_INT(a.seen_candidate, 2);
  CHECK_EQ_INT(get_int(&h, "db.pool"), 8);
  CHECK_EQ_STR(evlog, "reload.started module.started:a module.completed:a reload.completed");
  /* A change outside its pattern does not call it. */
  reset_log();
  h_save(&h, "web.json", "{\"port\": 81}");
  h_run_until(&h, &h.commits, commits + 2, 5000);
  CHECK_EQ_INT(a.calls, 1);
  CHECK_EQ_STR(evlog, "reload.started reload.completed");
  CHECK(h_finish(&h));
}

static void test_refuse_and_roll_back(void) {
  harness h;
  CHECK_EQ_INT(start(&h, "txn-refuse", "1h"), 0);
  mod a = {.name = "a", .answer = RC_OK, .rollback_answer = RC_OK, .h = &h};
  mod b = {.name = "b", .answer = RC_EREFUSED, .reason = "99 is too many", .h = &h};
  rc_module_register(h.eng, "a", "**", apply, 0, &a, NULL);
  rc_module_register(h.eng, "b", "db", apply, 0, &b, NULL);
  h_save(&h, "db.json", "{\"pool\": 99}");
  h_run_until(&h, &rolledback, 1, 5000);
  CHECK_EQ_INT(a.calls, 1);
  CHECK_EQ_INT(b.calls, 1);
  CHECK_EQ_INT(a.rollbacks, 1);               /* a had applied: it gets the reverse */
  CHECK_EQ_STR(a.last, "db.pool 99 4");
  CHECK_EQ_INT(b.rollbacks, 0);               /* b refused: nothing to undo */
  CHECK_EQ_INT(rc_engine_revision(h.eng), 1); /* readers never saw revision 2 */
  CHECK_EQ_INT(get_int(&h, "db.pool"), 4);
  CHECK_EQ_STR(evlog, "reload.started module.started:a module.completed:a module.started:b "
                      "module.failed:b module.started:a module.completed:a reload.failed:b "
                      "reload.rolledback");
  /* The reason it gave with its code (it was "refused" whatever the module said). */
  CHECK(strstr(failed_msg, "module 'b' refused it: 99 is too many") != NULL);
  /* The refused value is not tried again; the backoff (1 h) holds the next reload... */
  int commits = h.commits;
  b.answer = RC_OK;
  h_save(&h, "web.json", "{\"port\": 81}");
  h_run_for(&h, 300);
  CHECK_EQ_INT(h.commits, commits);
  /* ...until a request, which starts over: only web changes, db stays as it runs. */
  CHECK_EQ_INT(rc_engine_reload(h.eng, (const char *[]){"web"}, 1), 0);
  h_run_until(&h, &h.commits, commits + 1, 5000);
  CHECK_EQ_INT(get_int(&h, "web.port"), 81);
  CHECK_EQ_INT(get_int(&h, "db.pool"), 4);
  /* The next change of db's source is a new attempt. */
  h_save(&h, "db.json", "{\"pool\": 16}");
  h_run_until(&h, &h.commits, commits + 2, 5000);
  CHECK_EQ_INT(get_int(&h, "db.pool"), 16);
  CHECK_EQ_INT(rc_engine_reload(h.eng, (const char *[]){"nope"}, 1), RC_ENOTFOUND);
  CHECK(h_finish(&h));
}

static void test_rollback_fails(void) {
  harness h;
  CHECK_EQ_INT(start(&h, "txn-rbfail", "1s"), 0);
  mod a = {.name = "a", .answer = RC_OK, .rollback_answer = RC_EIO, .h = &h};
  mod b = {.name = "b", .answer = RC_EREFUSED, .h = &h};
  rc_module_register(h.eng, "a", "", apply, 0, &a, NULL);
  rc_module_register(h.eng, "b", "", apply, 0, &b, NULL);
  h_save(&h, "db.json", "{\"pool\": 5}");
  h_run_until(&h, &rolledback, 1, 5000);
  CHECK(strstr(rolledback_msg, "'a' failed their rollback") != NULL);
  CHECK(strstr(rolledback_msg, "cannot vouch") != NULL);
  CHECK_EQ_INT(get_int(&h, "db.pool"), 4);
  CHECK(h_finish(&h));
}

/* ---- answers that come later ---- */

static void test_timeout_and_late_answer(void) {
  harness h;
  CHECK_EQ_INT(start(&h, "txn-timeout", "1s"), 0);
  mod a = {.name = "slow", .answer = RC_EPENDING, .h = &h};
  rc_module_register(h.eng, "slow", "", apply, 100, &a, NULL);
  h_save(&h, "db.json", "{\"pool\": 7}");
  h_run_until(&h, &rolledback, 1, 5000);
  CHECK(strstr(evlog, "module.failed:slow") != NULL);
  CHECK_EQ_INT(get_int(&h, "db.pool"), 4);
  /* The answer after the timeout is ignored. */
  CHECK(a.pending != NULL);
  if (a.pending) CHECK_EQ_INT(rc_reload_done(a.pending, RC_OK, NULL), RC_ESTALE);
  CHECK_EQ_INT(rc_engine_revision(h.eng), 1);
  CHECK(h_finish(&h));
}

typedef struct later {
  rc_reload_t *r;
  int result;
} later;

static void *answer_later(void *arg) {
  later *l = arg;
  usleep(50000);
  l->result = rc_reload_done(l->r, RC_OK, NULL);
  return NULL;
}

static void test_answer_from_another_thread(void) {
  harness h;
  CHECK_EQ_INT(start(&h, "txn-thread", "1s"), 0);
  mod a = {.name = "pool", .answer = RC_EPENDING, .h = &h};
  rc_module_register(h.eng, "pool", "db.**", apply, 5000, &a, NULL);
  int commits = h.commits;
  h_save(&h, "db.json", "{\"pool\": 12}");
  h_run_until(&h, &a.calls, 1, 5000);
  CHECK(a.pending != NULL);
  CHECK_EQ_INT(rc_engine_revision(h.eng), 1); /* not before the answer */
  later l = {a.pending, -99};
  pthread_t t;
  pthread_create(&t, NULL, answer_later, &l);
  h_run_until(&h, &h.commits, commits + 1, 5000);
  pthread_join(t, NULL);
  CHECK_EQ_INT(l.result, 0);
  CHECK_EQ_INT(get_int(&h, "db.pool"), 12);
  CHECK_EQ_INT(rc_engine_revision(h.eng), 2);
  CHECK(h_finish(&h));
}

/* ---- history: rollback, pin, unpin ---- */

static void test_rollback_pin_unpin(void) {
  harness h;
  CHECK_EQ_INT(start(&h, "txn-history", "1s"), 0);
  int commits = h.commits;
  h_save(&h, "db.json", "{\"pool\": 5}");
  h_run_until(&h, &h.commits, commits + 1, 5000);
  h_save(&h, "db.json", "{\"pool\": 6}");
  h_run_until(&h, &h.commits, commits + 2, 5000);
  CHECK_EQ_INT(rc_engine_revision(h.eng), 3);
  rc_error err = {0};
  CHECK_EQ_INT(rc_engine_rollback(h.eng, 99, &err), RC_ENOTFOUND);
  /* Back to revision 1's configuration, as revision 4, pinned. */
  CHECK_EQ_INT(rc_engine_rollback(h.eng, 1, &err), 0);
  CHECK_EQ_INT(rc_engine_revision(h.eng), 4);
  CHECK_EQ_INT(get_int(&h, "db.pool"), 4);
  CHECK(rc_engine_pinned(h.eng));
  CHECK_EQ_INT(pinned_events, 1);
  /* Sources keep watching, but nothing is applied while pinned. */
  h_save(&h, "db.json", "{\"pool\": 7}");
  h_run_for(&h, 300);
  CHECK_EQ_INT(get_int(&h, "db.pool"), 4);
  CHECK_EQ_INT(rc_engine_revision(h.eng), 4);
  /* Unpin: the sources' latest values. */
  CHECK_EQ_INT(rc_engine_unpin(h.eng), 0);
  h_run_for(&h, 50);
  CHECK(!rc_engine_pinned(h.eng));
  CHECK_EQ_INT(get_int(&h, "db.pool"), 7);
  CHECK_EQ_INT(rc_engine_revision(h.eng), 5);
  /* A rollback a module refuses leaves everything as it was, not pinned. */
  mod no = {.name = "no", .answer = RC_EREFUSED, .h = &h};
  rc_module_register(h.eng, "no", "", apply, 0, &no, NULL);
  CHECK_EQ_INT(rc_engine_rollback(h.eng, 1, &err), RC_EREFUSED);
  CHECK(strstr(err.message, "module 'no' refused") != NULL);
  CHECK(!rc_engine_pinned(h.eng));
  CHECK_EQ_INT(get_int(&h, "db.pool"), 7);
  CHECK(h_finish(&h));
}

/* ---- requested reloads past debounce and cache_for ---- */

static void test_reload_past_debounce_and_cache_for(void) {
  harness h = {0};
  h_tmpdir(&h, "txn-request");
  h_write(&h, "slow.json", "{\"v\": 1}");
  h_write(&h, "held.json", "{\"v\": 1}");
  int rc = h_start(&h, "local rc = require 'reactcfg'\n"
                       "return rc.policy { components = {\n"
                       "  slow = { source = rc.file 'slow.json', debounce = '1h' },\n"
                       "  held = { source = rc.file 'held.json', cache_for = '1h' },\n"
                       "} }\n");
  CHECK_EQ_INT(rc, 0);
  h_run_for(&h, 100); /* held's source stops after its answer */
  int commits = h.commits;
  h_save(&h, "slow.json", "{\"v\": 2}");
  h_save(&h, "held.json", "{\"v\": 2}");
  h_run_for(&h, 300);
  CHECK_EQ_INT(h.commits, commits); /* one waits an hour of quiet, the other is held */
  CHECK_EQ_INT(rc_engine_reload(h.eng, NULL, 0), 0);
  h_run_until(&h, &h.commits, commits + 1, 5000);
  CHECK_EQ_INT(get_int(&h, "slow.v"), 2);
  CHECK_EQ_INT(get_int(&h, "held.v"), 2);
  CHECK_EQ_INT(h.commits, commits + 1); /* both in the one reload */
  CHECK(h_finish(&h));
}

/* ---- pushed values ---- */

static void test_push(void) {
  harness h = {0};
  h_tmpdir(&h, "txn-push");
  h_write(&h, "f.json", "{}");
  int rc = h_start(&h, "local rc = require 'reactcfg'\n"
                       "return rc.policy { components = {\n"
                       "  flags = { source = rc.push(), startup = 'default',\n"
                       "            validate = function(v) return v.n ~= 13, 'unlucky' end },\n"
                       "  f = rc.file 'f.json',\n"
                       "} }\n");
  CHECK_EQ_INT(rc, 0);
  int commits = h.commits;
  rc_error err = {0};
  CHECK_EQ_INT(rc_engine_push(h.eng, "flags", "{\"n\": 1}", 8, "json", &err), 0);
  h_run_until(&h, &h.commits, commits + 1, 5000);
  CHECK_EQ_INT(get_int(&h, "flags.n"), 1);
  CHECK_EQ_INT(rc_engine_push(h.eng, "flags", "n = 2\n", 6, "toml", &err), 0);
  h_run_until(&h, &h.commits, commits + 2, 5000);
  CHECK_EQ_INT(get_int(&h, "flags.n"), 2);
  /* Through the whole policy: validate refuses 13. */
  CHECK_EQ_INT(rc_engine_push(h.eng, "flags", "{\"n\": 13}", 9, "json", &err), 0);
  h_run_for(&h, 100);
  CHECK_EQ_INT(get_int(&h, "flags.n"), 2);
  /* Bad text: a parse error with its position. */
  CHECK_EQ_INT(rc_engine_push(h.eng, "flags", "{\"n\": }", 7, "json", &err), RC_EPARSE);
  CHECK_EQ_STR(err.file, "push:flags");
  CHECK(err.line == 1 && err.column > 0);
  CHECK_EQ_INT(rc_engine_push(h.eng, "f", "{}", 2, "json", &err), RC_EINVAL);
  CHECK_EQ_INT(rc_engine_push(h.eng, "nope", "{}", 2, "json", &err), RC_ENOTFOUND);
  CHECK_EQ_INT(rc_engine_push(h.eng, "flags", "{}", 2, "xml", &err), RC_EINVAL);
  CHECK(h_finish(&h));
}

typedef struct pusher {
  rc_engine_t *eng;
  int rc;
} pusher;

static void *push_soon(void *arg) {
  pusher *p = arg;
  usleep(100000);
  p->rc = rc_engine_push(p->eng, "token", "\"abc\"", 5, "json", NULL);
  return NULL;
}

static void test_push_awaited_at_start(void) {
  harness h = {0};
  h_tmpdir(&h, "txn-pushwait");
  h_write(&h, "policy.lua", "local rc = require 'reactcfg'\n"
                            "return rc.policy { components = {\n"
                            "  token = { source = rc.push(),\n"
                            "            startup = { mode = 'wait', timeout = '10s' } },\n"
                            "} }\n");
  char p[1024];
  h_path(&h, "policy.lua", p, sizeof p);
  rc_error err = {0};
  rc_engine_t *eng = rc_engine_new(&err);
  CHECK_EQ_INT(rc_engine_load_policy(eng, p, &err), 0);
  pusher ps = {eng, -99};
  pthread_t t;
  pthread_create(&t, NULL, push_soon, &ps);
  CHECK_EQ_INT(rc_engine_start(eng, &err), 0); /* waits for the push */
  pthread_join(t, NULL);
  CHECK_EQ_INT(ps.rc, 0);
  rc_snapshot_t *s = rc_snapshot_acquire(eng);
  const char *v = NULL;
  size_t n = 0;
  CHECK_EQ_INT(rc_snapshot_get_string(s, "token", &v, &n), 0);
  CHECK(v && strcmp(v, "abc") == 0);
  CHECK_EQ_INT(rc_snapshot_revision(s), 1);
  rc_snapshot_release(s);
  rc_engine_free(eng);
  CHECK(h_finish_dir(&h));
}

/* ---- static paths ---- */

static void test_static_paths(void) {
  harness h = {0};
  h_tmpdir(&h, "txn-static");
  h_write(&h, "srv.json", "{\"port\": 80, \"workers\": 2}");
  const char *v1 = "local rc = require 'reactcfg'\n"
                   "return rc.policy { components = {\n"
                   "  srv = { source = rc.file 'srv.json', dynamic = { port = false } },\n"
                   "  late = { source = rc.file 'late.json', dynamic = false },\n"
                   "} }\n";
  CHECK_EQ_INT(h_start(&h, v1), 0);
  int commits = h.commits;
  /* A component whose first value comes after revision 1 gets it. */
  h_save(&h, "late.json", "{\"a\": 1}");
  h_run_until(&h, &h.commits, commits + 1, 5000);
  CHECK_EQ_INT(get_int(&h, "late.a"), 1);
  /* Later it is held. */
  h_save(&h, "late.json", "{\"a\": 2}");
  h_run_for(&h, 300);
  CHECK_EQ_INT(get_int(&h, "late.a"), 1);
  /* port is held before and after a policy reload (a comment changes the text). */
  h_save(&h, "srv.json", "{\"port\": 81, \"workers\": 3}");
  h_run_until(&h, &h.commits, commits + 2, 5000);
  CHECK_EQ_INT(get_int(&h, "srv.port"), 80);
  CHECK_EQ_INT(get_int(&h, "srv.workers"), 3);
  char v2[1024];
  snprintf(v2, sizeof v2, "-- version 2\n%s", v1);
  h_save(&h, "policy.lua", v2);
  h_run_for(&h, 500);
  CHECK_EQ_INT(get_int(&h, "srv.port"), 80);
  CHECK_EQ_INT(get_int(&h, "late.a"), 1);
  CHECK_EQ_INT(get_int(&h, "srv.workers"), 3);
  CHECK(h_finish(&h));
}

/* ---- event handlers ---- */

static int count_a, count_b;
static void ev_a(void *ud, const rc_event_t *ev) { (void)ud, (void)ev; count_a++; }
static void ev_b(void *ud, const rc_event_t *ev) { (void)ud, (void)ev; count_b++; }

static void test_event_handlers(void) {
  harness h = {0};
  h_tmpdir(&h, "txn-handlers");
  h_write(&h, "x.json", "{\"v\": 1}");
  CHECK_EQ_INT(h_start(&h, "local rc = require 'reactcfg'\n"
                           "return rc.policy { components = { x = rc.file 'x.json' } }\n"), 0);
  int a = rc_engine_add_event_handler(h.eng, ev_a, NULL);
  int b = rc_engine_add_event_handler(h.eng, ev_b, NULL);
  CHECK(a > 0 && b > a);
  int commits = h.commits;
  h_save(&h, "x.json", "{\"v\": 2}");
  h_run_until(&h, &h.commits, commits + 1, 5000);
  CHECK(count_a > 0);
  CHECK_EQ_INT(count_a, count_b);
  CHECK_EQ_INT(rc_engine_remove_event_handler(h.eng, a), 0);
  CHECK_EQ_INT(rc_engine_remove_event_handler(h.eng, a), RC_ENOTFOUND);
  int before_a = count_a, before_b = count_b;
  h_save(&h, "x.json", "{\"v\": 3}");
  h_run_until(&h, &h.commits, commits + 2, 5000);
  CHECK_EQ_INT(count_a, before_a);
  CHECK(count_b > before_b);
  CHECK(h.errors == 0); /* the first handler (rc_engine_on_event) still runs */
  CHECK(h_finish(&h));
}

int main(int argc, char **argv) {
  const char *only = argc > 1 ? argv[1] : NULL;
#define RUN(name) if (!only || !strcmp(only, #name)) test_##name()
  RUN(accept);
  RUN(refuse_and_roll_back);
  RUN(rollback_fails);
  RUN(timeout_and_late_answer);
  RUN(answer_from_another_thread);
  RUN(rollback_pin_unpin);
  RUN(reload_past_debounce_and_cache_for);
  RUN(push);
  RUN(push_awaited_at_start);
  RUN(static_paths);
  RUN(event_handlers);
  return check_report("reload transactions");
}
