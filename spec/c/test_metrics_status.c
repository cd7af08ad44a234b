/* SPDX-License-Identifier: MIT (see LICENSE) */
/* test_metrics_status.c: rc_engine_metrics_text and rc_engine_status_json through the
 * public API. Metrics after commits, reloads by trigger, a refused module, a refused and
 * a failed validate, source errors; each component state that a local source can
 * produce (ok, failing, waiting, inactive, circuit-open; polling and stale against the
 * fake Consul server); the text accepted by `promtool check metrics`; and another thread
 * reading both while the engine commits (run under ThreadSanitizer too). */
#include "harness.h"
#include "metrics.h"
#include "server_fixture.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>

/* ---- reading the outputs ---- */

/* The value of series `series` (name with its labels, exactly as written), or -1. */
static double metric(const char *text, const char *series) {
  size_t n = strlen(series);
  for (const char *line = text; line && *line; line = strchr(line, '\n'), line += !!line) {
    if (strncmp(line, series, n) == 0 && line[n] == ' ') return strtod(line + n + 1, NULL);
  }
  return -1;
}

static double metric_of(rc_engine_t *eng, const char *series) {
  char *text = rc_engine_metrics_text(eng);
  double v = text ? metric(text, series) : -2;
  rc_free(text);
  return v;
}

/* Field `field` of component `name` in a status text, as written (a string's content
 * without quotes, or the bare number, true, null); "" when not found. */
static void comp_field(const char *json, const char *name, const char *field, char *out,
                       size_t n) {
  out[0] = '\0';
  char key[128];
  snprintf(key, sizeof key, "{\"name\":\"%s\"", name);
  const char *c = strstr(json, key);
  if (!c) return;
  const char *end = strstr(c + 1, "{\"name\":");
  snprintf(key, sizeof key, "\"%s\":", field);
  const char *f = strstr(c, key);
  if (!f || (end && f > end)) return;
  f += strlen(key);
  size_t k = 0;
  if (*f == '"') {
    for (f++; *f && *f != '"' && k + 1 < n; f++) out[k++] = *f;
  } else {
    for (; *f && *f != ',' && *f != '}' && k + 1 < n; f++) out[k++] = *f;
  }
  out[k] = '\0';
}

static void state_of(rc_engine_t *eng, const char *name, char *out, size_t n) {
  char *json = rc_engine_status_json(eng);
  if (json) comp_field(json, name, "state", out, n);
  else snprintf(out, n, "(no status)");
  rc_free(json);
}

#define CHECK_STATE(eng, name, want)                                                 \
  do {                                                                               \
    char got_[64];                                                                   \
    state_of(eng, name, got_, sizeof got_);                                          \
    CHECK_EQ_STR(got_, want);                                                        \
  } while (0)

#define CHECK_METRIC(eng, series, want)                                               \
  do {                                                                               \
    double got_ = metric_of(eng, series), want_ = (double)(want);                    \
    if (got_ == want_) {                                                             \
      check_passed++;                                                                \
    } else {                                                                         \
      check_fail_(__FILE__, __LINE__);                                               \
      fprintf(stderr, "%s: got %g, want %g\n", series, got_, want_);                  \
    }                                                                                \
  } while (0)

/* Whether `promtool check metrics` accepts `text` (skipped, with a note, without it). */
static void check_promtool(const char *text) {
  if (system("command -v promtool >/dev/null 2>&1") != 0) {
    fprintf(stderr, "note: promtool not installed (scripts/setup --test): not checked\n");
    return;
  }
  FILE *p = popen("promtool check metrics >/dev/null 2>promtool.err || "
                  "{ cat promtool.err >&2; exit 1; }", "w");
  CHECK(p != NULL);
  if (!p) return;
  fputs(text, p);
  int st = pclose(p);
  remove("promtool.err");
  CHECK_EQ_INT(st, 0);
}

/* ---- events the tests wait for ---- */

static int ev_failed, ev_rejected, ev_completed, ev_policy_errors, ev_polling, ev_states;

static void on_event(void *ud, const rc_event_t *ev) {
  h_on_event(ud, ev);
  if (ev->type == RC_EVENT_RELOAD_FAILED) ev_failed++;
  if (ev->type == RC_EVENT_REJECTED) ev_rejected++;
  if (ev->type == RC_EVENT_RELOAD_COMPLETED) ev_completed++;
  if (ev->type == RC_EVENT_POLICY_ERROR) ev_policy_errors++;
  if (ev->type == RC_EVENT_COMPONENT_STATE) {
    ev_states++;
    if (strstr(ev->message, "polling every")) ev_polling++;
  }
}

/* Starts an engine on `text` in h->dir (made by the caller) with our event handler. */
static int start(harness *h, const char *text, int (*before)(harness *h)) {
  h_write(h, "policy.lua", text);
  char p[1024];
  h_path(h, "policy.lua", p, sizeof p);
  uv_loop_init(&h->loop);
  rc_error err = {0};
  h->eng = rc_engine_new(&err);
  if (!h->eng) return err.code;
  rc_engine_on_event(h->eng, on_event, h);
  rc_subscribe(h->eng, "**", h_on_commit, h, NULL);
  int rc = rc_engine_load_policy(h->eng, p, &err);
  if (rc == 0 && before) rc = before(h);
  if (rc == 0) rc = rc_engine_attach(h->eng, &h->loop, &err);
  if (rc) fprintf(stderr, "start: %s:%d: %s\n", err.file, err.line, err.message);
  return rc;
}

/* Changes of kind `kind` the subscriber saw. */
static int changes_seen(const harness *h, const char *kind) {
  int n = 0;
  for (int i = 0; i < h->nchanges; i++)
    n += strncmp(h->changes[i], kind, strlen(kind)) == 0 && h->changes[i][strlen(kind)] == ' ';
  return n;
}

/* ===================================================================================
 * Reloads, commits, changes, modules, validate
 * =================================================================================== */

static int gate_refuses;

static int gate(void *ud, rc_reload_t *r, const rc_snapshot_t *snap, const rc_change_t *ch,
                size_t n) {
  (void)ud, (void)snap, (void)ch, (void)n;
  if (gate_refuses && !rc_reload_is_rollback(r)) {
    rc_reload_set_reason(r, "closed");
    return RC_EREFUSED;
  }
  return RC_OK;
}

static int add_gate(harness *h) {
  return rc_module_register(h->eng, "gate", "db", gate, 0, NULL, NULL) > 0 ? 0 : RC_EINVAL;
}

static const char RELOAD_POLICY[] =
  "local rc = require 'reactcfg'\n"
  "return rc.policy { reload_backoff = { min = '10ms', max = '10ms' }, components = {\n"
  "  db = { source = rc.file 'db.json' },\n"
  "  web = { source = rc.file 'web.json',\n"
  "          validate = function(v)\n"
  "            if v.port == 0 then error('port zero') end\n"
  "            return v.port > 0, 'port must be positive'\n"
  "          end },\n"
  "} }\n";

static void test_reloads(void) {
  harness h = {0};
  h_tmpdir(&h, "metrics-reloads");
  h_write(&h, "db.json", "{\"pool\": 4, \"name\": \"a\"}");
  h_write(&h, "web.json", "{\"port\": 80}");
  CHECK_EQ_INT(start(&h, RELOAD_POLICY, add_gate), 0);
  rc_engine_t *eng = h.eng;

  /* Revision 1 is a commit without a reload. */
  CHECK_METRIC(eng, "reactcfg_revision", 1);
  CHECK_METRIC(eng, "reactcfg_commits_total", 1);
  CHECK_METRIC(eng, "reactcfg_changes_total{kind=\"added\"}", changes_seen(&h, "added"));
  CHECK(changes_seen(&h, "added") > 0);
  CHECK_METRIC(eng, "reactcfg_reload_attempts_total{trigger=\"source\"}", 0);
  CHECK_METRIC(eng, "reactcfg_reload_duration_seconds_count", 0);
  CHECK_METRIC(eng, "reactcfg_pinned", 0);
  CHECK_METRIC(eng, "reactcfg_source_up{component=\"db\",kind=\"file\"}", 1);
  CHECK_METRIC(eng, "reactcfg_policy_eval_duration_seconds_count", 1); /* web's validate */

  /* A source change: one reload through the module, committed. */
  h_save(&h, "db.json", "{\"pool\": 5, \"name\": \"a\"}");
  h_run_until(&h, &h.commits, 2, 5000);
  CHECK_METRIC(eng, "reactcfg_revision", 2);
  CHECK_METRIC(eng, "reactcfg_commits_total", 2);
  CHECK_METRIC(eng, "reactcfg_reload_attempts_total{trigger=\"source\"}", 1);
  CHECK_METRIC(eng, "reactcfg_changes_total{kind=\"modified\"}", changes_seen(&h, "modified"));
  CHECK_METRIC(eng, "reactcfg_changes_total{kind=\"modified\"}", 1);
  CHECK_METRIC(eng, "reactcfg_reload_duration_seconds_count", 1);
  CHECK_METRIC(eng, "reactcfg_reload_duration_seconds_bucket{le=\"+Inf\"}", 1);
  CHECK_METRIC(eng, "reactcfg_module_apply_duration_seconds_count{module=\"gate\"}", 1);
  CHECK_METRIC(eng, "reactcfg_module_failures_total{module=\"gate\"}", 0);

  /* The module refuses: a failed reload, a rejected change of db, a backoff. */
  gate_refuses = 1;
  h_save(&h, "db.json", "{\"pool\": 6, \"name\": \"a\"}");
  h_run_until(&h, &ev_failed, 1, 5000);
  CHECK_EQ_INT(ev_failed, 1);
  CHECK_METRIC(eng, "reactcfg_revision", 2);
  CHECK_METRIC(eng, "reactcfg_commits_total", 2);
  CHECK_METRIC(eng, "reactcfg_reload_attempts_total{trigger=\"source\"}", 2);
  CHECK_METRIC(eng, "reactcfg_reload_failures_total{reason=\"refused\"}", 1);
  CHECK_METRIC(eng, "reactcfg_reload_failures_total{reason=\"timeout\"}", 0);
  CHECK_METRIC(eng, "reactcfg_module_failures_total{module=\"gate\"}", 1);
  CHECK_METRIC(eng, "reactcfg_module_apply_duration_seconds_count{module=\"gate\"}", 2);
  CHECK_METRIC(eng, "reactcfg_changes_rejected_total{component=\"db\"}", 1);
  CHECK_METRIC(eng, "reactcfg_reload_backoff_seconds", 0.01);
  CHECK_METRIC(eng, "reactcfg_reload_duration_seconds_count", 2);
  gate_refuses = 0;

  /* validate refuses a value, then raises: a rejected change, a policy error. */
  h_save(&h, "web.json", "{\"port\": -1}");
  h_run_until(&h, &ev_rejected, 1, 5000);
  CHECK_METRIC(eng, "reactcfg_changes_rejected_total{component=\"web\"}", 1);
  CHECK_METRIC(eng, "reactcfg_policy_errors_total", 0);
  h_save(&h, "web.json", "{\"port\": 0}");
  h_run_until(&h, &ev_policy_errors, 1, 5000);
  CHECK_METRIC(eng, "reactcfg_policy_errors_total", 1);
  CHECK_METRIC(eng, "reactcfg_policy_eval_duration_seconds_count", 3);

  /* A requested reload that finds nothing to change is an attempt too. */
  int done = ev_completed;
  CHECK_EQ_INT(rc_engine_reload(eng, NULL, 0), 0);
  h_run_until(&h, &ev_completed, done + 1, 5000);
  CHECK_METRIC(eng, "reactcfg_reload_attempts_total{trigger=\"request\"}", 1);

  /* A rollback pins. */
  int commits = h.commits;
  CHECK_EQ_INT(rc_engine_rollback(eng, 1, NULL), 0);
  h_run_until(&h, &h.commits, commits + 1, 5000);
  CHECK_METRIC(eng, "reactcfg_reload_attempts_total{trigger=\"rollback\"}", 1);
  CHECK_METRIC(eng, "reactcfg_pinned", 1);
  CHECK_METRIC(eng, "reactcfg_reload_backoff_seconds", 0);
  char *json = rc_engine_status_json(eng);
  CHECK(json && strstr(json, "\"pinned\":true") != NULL);
  CHECK(json && strncmp(json, "{\"revision\":", 12) == 0);
  rc_free(json);
  done = ev_completed;
  CHECK_EQ_INT(rc_engine_unpin(eng), 0);
  h_run_until(&h, &ev_completed, done + 1, 5000);
  CHECK_METRIC(eng, "reactcfg_pinned", 0);
  CHECK_METRIC(eng, "reactcfg_reload_attempts_total{trigger=\"unpin\"}", 1);

  /* Every count the subscriber saw, kind by kind. */
  CHECK_METRIC(eng, "reactcfg_commits_total", h.commits);
  const char *kinds[] = {"added", "removed", "modified", "touched"};
  for (int i = 0; i < 4; i++) {
    char series[96];
    snprintf(series, sizeof series, "reactcfg_changes_total{kind=\"%s\"}", kinds[i]);
    CHECK_METRIC(eng, series, changes_seen(&h, kinds[i]));
  }
  char *text = rc_engine_metrics_text(eng);
  CHECK(text != NULL);
  if (text) check_promtool(text);
  rc_free(text);
  CHECK(h_finish(&h));
  CHECK(rc_engine_metrics_text(NULL) == NULL);
  CHECK(rc_engine_status_json(NULL) == NULL);
}

/* ===================================================================================
 * Component states with local sources
 * =================================================================================== */

/* A TCP port on 127.0.0.1 where nothing listens (bound, then closed). */
static int closed_port(void) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  int port = -1;
  if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
      getsockname(fd, (struct sockaddr *)&a, &len) == 0)
    port = ntohs(a.sin_port);
  if (fd >= 0) close(fd);
  return port;
}

static const char STATES_POLICY[] =
  "local rc = require 'reactcfg'\n"
  "return rc.policy { components = {\n"
  "  good = { source = rc.file 'good.json' },\n"
  "  bad = { source = rc.file 'bad.json' },\n"
  "  pushed = { source = rc.push(), startup = 'default' },\n"
  "  off = { source = rc.file 'good.json', condition = function() return false end },\n"
  "  down = { source = rc.http { url = 'http://user:hunter2@127.0.0.1:%d/cfg',\n"
  "             circuit = { failures = 1, cooldown = '1h' } },\n"
  "           startup = 'default' },\n"
  "} }\n";

static void test_states(void) {
  harness h = {0};
  h_tmpdir(&h, "metrics-states");
  h_write(&h, "good.json", "{\"v\": 1}");
  h_write(&h, "bad.json", "{\"v\": \n  oops}");
  char text[2048];
  snprintf(text, sizeof text, STATES_POLICY, closed_port());
  CHECK_EQ_INT(start(&h, text, NULL), 0);
  rc_engine_t *eng = h.eng;
  /* bad fails at once; down fails when its connection is refused. */
  h_run_until(&h, &h.errors, 2, 5000);
  CHECK_EQ_INT(h.errors, 2);
  CHECK_STATE(eng, "good", "ok");
  CHECK_STATE(eng, "bad", "failing");
  CHECK_STATE(eng, "pushed", "waiting");
  CHECK_STATE(eng, "off", "inactive");
  CHECK_STATE(eng, "down", "circuit-open");

  char *json = rc_engine_status_json(eng);
  CHECK(json != NULL);
  if (json) {
    char v[512];
    comp_field(json, "good", "kind", v, sizeof v);
    CHECK_EQ_STR(v, "file");
    comp_field(json, "good", "last_error", v, sizeof v);
    CHECK_EQ_STR(v, "null");
    comp_field(json, "good", "last_success", v, sizeof v);
    CHECK(strtod(v, NULL) > 1e9); /* Unix seconds */
    comp_field(json, "good", "value_age_seconds", v, sizeof v);
    CHECK(strtod(v, NULL) >= 0 && strcmp(v, "null") != 0);
    /* The failure with its position in the file. */
    comp_field(json, "bad", "line", v, sizeof v);
    CHECK_EQ_STR(v, "2");
    comp_field(json, "bad", "code", v, sizeof v);
    CHECK_EQ_STR(v, "EPARSE");
    comp_field(json, "bad", "errors", v, sizeof v);
    CHECK_EQ_STR(v, "1");
    comp_field(json, "bad", "next_retry", v, sizeof v);
    CHECK_EQ_STR(v, "null"); /* a file is watched, not retried */
    /* The URL is shown without its credentials; the retry is due after the cool-down. */
    comp_field(json, "down", "target", v, sizeof v);
    CHECK(strstr(v, "127.0.0.1") && !strstr(v, "hunter2"));
    CHECK(strstr(json, "hunter2") == NULL);
    comp_field(json, "down", "next_retry", v, sizeof v);
    CHECK(strtod(v, NULL) > 1e9);
    comp_field(json, "pushed", "value_age_seconds", v, sizeof v);
    CHECK_EQ_STR(v, "null");
    comp_field(json, "pushed", "target", v, sizeof v);
    CHECK_EQ_STR(v, "rc_engine_push");
  }
  rc_free(json);

  CHECK_METRIC(eng, "reactcfg_source_up{component=\"good\",kind=\"file\"}", 1);
  CHECK_METRIC(eng, "reactcfg_source_up{component=\"bad\",kind=\"file\"}", 0);
  CHECK_METRIC(eng, "reactcfg_source_up{component=\"down\",kind=\"http\"}", 0);
  CHECK_METRIC(eng, "reactcfg_source_up{component=\"off\",kind=\"file\"}", -1);
  CHECK_METRIC(eng, "reactcfg_source_errors_total{component=\"bad\",kind=\"file\"}", 1);
  CHECK_METRIC(eng, "reactcfg_source_errors_total{component=\"down\",kind=\"http\"}", 1);
  CHECK(metric_of(eng, "reactcfg_source_last_success_timestamp_seconds{component=\"good\"}") >
        1e9);
  CHECK_METRIC(eng, "reactcfg_source_last_success_timestamp_seconds{component=\"bad\"}", -1);
  CHECK(metric_of(eng, "reactcfg_source_fetch_duration_seconds_count{kind=\"http\"}") >= 1);

  /* Recovery and a push: ok again. */
  int recovered = h.recovered;
  h_save(&h, "bad.json", "{\"v\": 2}");
  h_run_until(&h, &h.recovered, recovered + 1, 5000);
  CHECK_STATE(eng, "bad", "ok");
  CHECK_METRIC(eng, "reactcfg_source_up{component=\"bad\",kind=\"file\"}", 1);
  int commits = h.commits;
  CHECK_EQ_INT(rc_engine_push(eng, "pushed", "{\"n\": 1}", 8, "json", NULL), 0);
  h_run_until(&h, &h.commits, commits + 1, 5000);
  CHECK_STATE(eng, "pushed", "ok");
  CHECK_METRIC(eng, "reactcfg_reload_attempts_total{trigger=\"push\"}", 1);
  char *m = rc_engine_metrics_text(eng);
  CHECK(m && !strstr(m, "hunter2"));
  if (m) check_promtool(m);
  rc_free(m);
  CHECK(h_finish(&h));
}

/* ===================================================================================
 * polling and stale, against consul_server.py
 * =================================================================================== */

static int consul_put(const server_fixture *s, const char *key, const char *value) {
  char target[512];
  snprintf(target, sizeof target, "/v1/kv/%s", key);
  return server_http(s, "PUT", target, "", value, NULL, 0);
}

static const char CONSUL_POLICY[] =
  "local rc = require 'reactcfg'\n"
  "return rc.policy { cache = 'cache', components = {\n"
  "  flags = { source = rc.consul { addr = '%s', key = 'app/flags', wait = '10s',\n"
  "            poll = '100ms', backoff = { min = '50ms', max = '100ms' } },\n"
  "            startup = 'cached' },\n"
  "} }\n";

/* Requests the server saw starting with `prefix` reach `want` (the loop runs meanwhile). */
static bool wait_requests(harness *h, const server_fixture *s, const char *prefix, int want) {
  for (int i = 0; i < 100; i++) {
    if (server_requests(s, prefix) >= want) return true;
    h_run_for(h, 50);
  }
  return false;
}

/* Runs the loop until component `name` is in state `want` (bounded). */
static void wait_state(harness *h, const char *name, const char *want) {
  char got[64];
  for (int i = 0; i < 100; i++) {
    state_of(h->eng, name, got, sizeof got);
    if (strcmp(got, want) == 0) return;
    h_run_for(h, 50);
  }
}

static void finish_keep_dir(harness *h) {
  rc_engine_free(h->eng);
  h->eng = NULL;
  CHECK_EQ_INT(uv_loop_close(&h->loop), 0);
}

static void test_polling_and_stale(void) {
  if (!server_python_available()) {
    fprintf(stderr, "note: python3 missing: polling and stale not checked\n");
    return;
  }
  server_fixture srv;
  if (server_start(&srv, "consul_server.py", NULL) != 0) {
    CHECK(!"consul_server.py started");
    return;
  }
  consul_put(&srv, "app/flags", "{\"n\": 1}");
  harness h = {0};
  h_tmpdir(&h, "metrics-consul");
  char text[2048];
  snprintf(text, sizeof text, CONSUL_POLICY, srv.addr);
  CHECK_EQ_INT(start(&h, text, NULL), 0);
  /* No cache yet: it waits for the first answer. */
  wait_state(&h, "flags", "ok");
  CHECK_STATE(h.eng, "flags", "ok");
  CHECK(metric_of(h.eng, "reactcfg_source_fetch_duration_seconds_count{kind=\"consul\"}") >= 1);
  /* Blocking queries break where plain reads work: the source polls. */
  CHECK(wait_requests(&h, &srv, "GET /v1/kv/app/flags?index=", 1));
  char out[256];
  CHECK_EQ_INT(server_http(&srv, "POST", "/_test/blocking", "",
                           "{\"mode\": \"fail\", \"status\": 502}", out, sizeof out), 200);
  consul_put(&srv, "app/flags", "{\"n\": 2}");
  h_run_until(&h, &ev_polling, 1, 10000);
  CHECK_EQ_INT(ev_polling, 1);
  CHECK_STATE(h.eng, "flags", "polling");
  finish_keep_dir(&h);

  /* A new engine whose source does not answer yet starts from the cache: stale. */
  CHECK_EQ_INT(server_http(&srv, "POST", "/_test/delay", "", "{\"ms\": 60000}", out,
                           sizeof out), 200);
  memset(&h.loop, 0, sizeof h.loop);
  h.commits = h.errors = 0;
  CHECK_EQ_INT(start(&h, text, NULL), 0);
  CHECK_STATE(h.eng, "flags", "stale");
  char *json = rc_engine_status_json(h.eng);
  if (json) {
    char v[64];
    comp_field(json, "flags", "value_age_seconds", v, sizeof v);
    CHECK(strcmp(v, "null") != 0 && strtod(v, NULL) >= 0);
  }
  rc_free(json);
  CHECK(h_finish(&h));
  server_stop(&srv);
}

/* ===================================================================================
 * The decision ring: rc_engine_trace, rc_engine_explain_json
 * =================================================================================== */

static int keep_two(harness *h) { return rc_engine_trace(h->eng, 2); }

static bool has(const char *json, const char *needle) {
  bool found = json && strstr(json, needle) != NULL;
  if (!found) fprintf(stderr, "not found: %s\n  in: %s\n", needle, json ? json : "(null)");
  return found;
}

/* Health records by name: one per name, found again, listed in the order first asked
 * (the exposition's order), through an index that grows (a list walk per lookup made
 * loading 10,000 components quadratic: 1.3 s for --check, now 0.5). */
static _Atomic int refuse_memory;
static void *refusing_alloc(void *ud, void *ptr, size_t size) {
  (void)ud;
  if (size == 0) {
    free(ptr);
    return NULL;
  }
  return atomic_load(&refuse_memory) ? NULL : realloc(ptr, size);
}

static void test_health_index(void) {
  rc_set_allocator(refusing_alloc, NULL);
  rc__metrics m;
  memset(&m, 0, sizeof m);
  rc__metrics_init(&m);
  enum { N = 3000 };
  static rc__health *first[N];
  char name[32];
  for (int i = 0; i < N; i++) {
    snprintf(name, sizeof name, "c%d", i);
    first[i] = rc__health_for(&m, name);
  }
  int same = 0, distinct = 0, ordered = 0;
  for (int i = 0; i < N; i++) {
    snprintf(name, sizeof name, "c%d", i);
    same += rc__health_for(&m, name) == first[i];
    distinct += first[i] != &m.spare && (i == 0 || first[i] != first[i - 1]);
  }
  int i = 0;
  for (rc__health *h = m.health; h; h = h->next, i++) ordered += i < N && h == first[i];
  CHECK_EQ_INT(same, N);
  CHECK_EQ_INT(distinct, N);
  CHECK_EQ_INT(ordered, N);
  CHECK_EQ_INT(i, N);
  rc__metrics_free(&m);
  /* An index that must grow but cannot (no memory): known names are still found. */
  memset(&m, 0, sizeof m);
  rc__metrics_init(&m);
  rc__health *h[32];
  for (int k = 0; k < 32; k++) { /* 64 slots, half full: the next call wants to grow */
    snprintf(name, sizeof name, "n%d", k);
    h[k] = rc__health_for(&m, name);
  }
  atomic_store(&refuse_memory, 1);
  CHECK(rc__health_for(&m, "n5") == h[5]);
  CHECK(rc__health_for(&m, "new") == &m.spare); /* a new one: the stand-in */
  atomic_store(&refuse_memory, 0);
  CHECK(rc__health_for(&m, "n31") == h[31]);
  rc__metrics_free(&m);
  rc_set_allocator(NULL, NULL);
}

static void test_trace_ring(void) {
  harness h = {0};
  h_tmpdir(&h, "metrics-trace");
  h_write(&h, "db.json", "{\"pool\": 1}");
  h_write(&h, "key.json", "{\"k\": \"hunter2\"}");
  CHECK_EQ_INT(start(&h,
                     "local rc = require 'reactcfg'\n"
                     "return rc.policy { components = {\n"
                     "  db = { source = rc.file 'db.json',\n"
                     "         validate = function(v) return v.pool < 100, 'too big' end },\n"
                     "  key = { source = rc.file 'key.json', secret = true },\n"
                     "} }\n",
                     keep_two),
               0);
  rc_engine_t *eng = h.eng;
  char *j = rc_engine_explain_json(eng, 1);
  CHECK(has(j, "{\"revision\":1,"));
  CHECK(has(j, "\"component\":\"db\",\"kind\":\"decision\",\"message\":\"source delivered"));
  CHECK(has(j, "\"message\":\"commit: revision 1 with"));
  CHECK(j && !strstr(j, "hunter2")); /* secret values are redacted in decisions */
  rc_free(j);
  /* A refused value, then three commits: the ring keeps the last two. */
  h_save(&h, "db.json", "{\"pool\": 500}");
  h_run_until(&h, &ev_rejected, ev_rejected + 1, 5000);
  for (int i = 2; i <= 4; i++) {
    char body[64];
    snprintf(body, sizeof body, "{\"pool\": %d}", i);
    h_save(&h, "db.json", body);
    h_run_until(&h, &h.commits, i, 5000);
  }
  CHECK_EQ_INT(rc_engine_revision(eng), 4);
  CHECK(rc_engine_explain_json(eng, 1) == NULL);
  CHECK(rc_engine_explain_json(eng, 2) == NULL);
  j = rc_engine_explain_json(eng, 3);
  CHECK(has(j, "{\"revision\":3,"));
  CHECK(has(j, "\"changes\":[{\"path\":\"db.pool\",\"kind\":\"modified\"}]"));
  CHECK(has(j, "\"dropped\":0}"));
  rc_free(j);
  j = rc_engine_explain_json(eng, 4);
  CHECK(has(j, "source delivered: {\\\"pool\\\":4}"));
  CHECK(j && !strstr(j, "\"pool\\\":3}")); /* only what happened since revision 3 */
  rc_free(j);
  /* Off again: nothing kept. */
  CHECK_EQ_INT(rc_engine_trace(eng, 0), 0);
  CHECK(rc_engine_explain_json(eng, 4) == NULL);
  CHECK_EQ_INT(rc_engine_trace(eng, 5000), RC_EINVAL);
  CHECK(h_finish(&h));
}

/* ===================================================================================
 * Reading from another thread while the engine commits
 * =================================================================================== */

typedef struct reader_arg {
  rc_engine_t *eng;
  atomic_bool stop;
  int reads, bad;
  double last_commits;
} reader_arg;

static void *reader(void *p) {
  reader_arg *a = p;
  while (!atomic_load(&a->stop)) {
    char *m = rc_engine_metrics_text(a->eng);
    char *s = rc_engine_status_json(a->eng);
    rc_free(rc_engine_explain_json(a->eng, rc_engine_revision(a->eng)));
    double commits = m ? metric(m, "reactcfg_commits_total") : -1;
    /* Counters never go back; both texts are whole. */
    if (!m || !s || commits < a->last_commits || strncmp(s, "{\"revision\":", 12) != 0 ||
        s[strlen(s) - 1] != '}')
      a->bad++;
    a->last_commits = commits;
    a->reads++;
    rc_free(m);
    rc_free(s);
  }
  return NULL;
}

static void test_threads(void) {
  harness h = {0};
  h_tmpdir(&h, "metrics-threads");
  h_write(&h, "db.json", "{\"pool\": 0}");
  CHECK_EQ_INT(start(&h,
                     "local rc = require 'reactcfg'\n"
                     "return rc.policy { components = {\n"
                     "  db = { source = rc.file 'db.json',\n"
                     "         update = function(v) return { pool = v.pool * 2 } end },\n"
                     "} }\n",
                     keep_two),
               0);
  reader_arg a = {.eng = h.eng};
  pthread_t t;
  CHECK_EQ_INT(pthread_create(&t, NULL, reader, &a), 0);
  for (int i = 1; i <= 20; i++) {
    char body[64];
    snprintf(body, sizeof body, "{\"pool\": %d}", i);
    h_save(&h, "db.json", body);
    h_run_until(&h, &h.commits, i + 1, 5000);
  }
  atomic_store(&a.stop, true);
  pthread_join(t, NULL);
  CHECK_EQ_INT(h.commits, 21);
  CHECK(a.reads > 0);
  CHECK_EQ_INT(a.bad, 0);
  CHECK_METRIC(h.eng, "reactcfg_commits_total", 21);
  CHECK_METRIC(h.eng, "reactcfg_policy_eval_duration_seconds_count", 21);
  CHECK(h_finish(&h));
}

int main(void) {
  (void)server_restart; /* the fixture's, unused here */
  test_reloads();
  test_states();
  test_polling_and_stale();
  test_trace_ring();
  test_health_index();
  test_threads();
  return check_report("test_metrics_status");
}
