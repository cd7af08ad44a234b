/* SPDX-License-Identifier: MIT (see LICENSE) */
/* test_remote_sources.c: the remote sources (sources/http.c, consul.c, vault.c) end to
 * end through the public C API, so the sanitizer build checks their paths for leaks and
 * memory errors: rc.http against a real nginx (first value, a change, 304s, a 500, a 404,
 * a malformed body, recovery, bodies parsed on the thread pool), rc.consul and rc.vault
 * against the protocol servers of spec/servers (blocking queries, prefixes, deletes, a
 * server killed and restarted, a policy reload and a condition stopping sources whose
 * queries are pending, secrets, a wrong token), and stopping or freeing an engine with
 * requests in flight.
 * Embedded-mode tests run the engine on a loop this test owns, so every callback is
 * counted on this thread and nothing runs while the test changes a server; own-thread
 * tests use rc_engine_start. Waits are bounded polls, never timing assertions. */
#include "harness.h"
#include "nginx_fixture.h"
#include "reactcfg.h"
#include "server_fixture.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <sys/stat.h>
#include <uv.h>

/* ===================================================================================
 * One engine under test
 * =================================================================================== */

#define LOG_MAX 256
#define COMP_MAX 8

/* Per component: the source events it got. */
typedef struct comp_count {
  char name[64];
  int errors, recovered;
  char last_error[1024];  /* "file | message" of the last source.error */
} comp_count;

typedef struct run {
  bool threaded;            /* rc_engine_start (own thread) rather than attach */
  char dir[512];
  uv_loop_t loop;           /* embedded mode only */
  rc_engine_t *eng;
  pthread_mutex_t mu;       /* the callbacks run on the engine thread in own-thread mode */
  int commits, errors, recovered, started, stopped_events, events;
  int reloads, policy_errors;
  comp_count comps[COMP_MAX];
  char changes[LOG_MAX][400];  /* "kind path old new[ secret]" of every change, in order */
  int nchanges;
  int plain_changes_of_secret_comp;  /* changes of `secret_comp` not marked secret */
  int secret_changes;
  const char *secret_comp;  /* component whose every change must be marked secret */
  const char *needles[4];   /* strings no event may contain (secrets, tokens) */
  int leaks;
  char leaked[1024];
  bool stopped;             /* rc_engine_stop returned: any callback now is a bug */
  int late;                 /* callbacks after that */
} run;

static void lock(run *r) { pthread_mutex_lock(&r->mu); }
static void unlock(run *r) { pthread_mutex_unlock(&r->mu); }

static uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static comp_count *comp_of(run *r, const char *name) {
  for (int i = 0; i < COMP_MAX; i++) {
    if (strcmp(r->comps[i].name, name) == 0) return &r->comps[i];
    if (!r->comps[i].name[0]) {
      snprintf(r->comps[i].name, sizeof r->comps[i].name, "%s", name);
      return &r->comps[i];
    }
  }
  return &r->comps[COMP_MAX - 1];
}

static void check_needles(run *r, const char *what, const char *text) {
  for (int i = 0; i < 4 && r->needles[i]; i++)
    if (text && strstr(text, r->needles[i])) {
      r->leaks++;
      snprintf(r->leaked, sizeof r->leaked, "%s: %s", what, text);
    }
}

static void on_event(void *ud, const rc_event_t *ev) {
  run *r = ud;
  lock(r);
  if (r->stopped) r->late++;
  r->events++;
  check_needles(r, "message", ev->message);
  check_needles(r, "file", ev->file);
  check_needles(r, "component", ev->component);
  if (ev->type == RC_EVENT_SOURCE_ERROR) {
    r->errors++;
    comp_count *c = comp_of(r, ev->component);
    c->errors++;
    snprintf(c->last_error, sizeof c->last_error, "%s | %s", ev->file, ev->message);
    if (getenv("RC_TEST_VERBOSE"))
      fprintf(stderr, "source.error %s: %s | %s\n", ev->component, ev->file, ev->message);
  } else if (ev->type == RC_EVENT_SOURCE_RECOVERED) {
    r->recovered++;
    comp_of(r, ev->component)->recovered++;
  } else if (ev->type == RC_EVENT_STARTED) {
    r->started++;
  } else if (ev->type == RC_EVENT_STOPPED) {
    r->stopped_events++;
  } else if (ev->type == RC_EVENT_POLICY_RELOADED) {
    r->reloads++;
  } else if (ev->type == RC_EVENT_POLICY_ERROR) {
    r->policy_errors++;
    fprintf(stderr, "policy.error: %s:%d: %s\n", ev->file, ev->line, ev->message);
  }
  unlock(r);
}

static void on_change(void *ud, const rc_snapshot_t *snap, const rc_change_t *ch,
                      size_t n) {
  run *r = ud;
  (void)snap;
  lock(r);
  if (r->stopped) r->late++;
  r->commits++;
  for (size_t i = 0; i < n; i++) {
    if (r->secret_comp) {
      size_t k = strlen(r->secret_comp);
      bool ours = strncmp(ch[i].path, r->secret_comp, k) == 0 &&
                  (ch[i].path[k] == '\0' || ch[i].path[k] == '.' || ch[i].path[k] == '[');
      if (ours && !ch[i].secret) r->plain_changes_of_secret_comp++;
    }
    if (ch[i].secret) r->secret_changes++;
    if (r->nchanges >= LOG_MAX) continue;
    char o[160], nv[160];
    h_value_str(ch[i].old_value, o, sizeof o);
    h_value_str(ch[i].new_value, nv, sizeof nv);
    snprintf(r->changes[r->nchanges++], sizeof r->changes[0], "%s %s %s %s%s",
             rc_change_kind_name(ch[i].kind), ch[i].path, o, nv,
             ch[i].secret ? " secret" : "");
  }
  unlock(r);
}

/* Index of the first change at or after `from` that starts with `prefix`, or -1. */
static int find_change(run *r, int from, const char *prefix) {
  lock(r);
  int at = -1;
  for (int i = from; i < r->nchanges && at < 0; i++)
    if (strncmp(r->changes[i], prefix, strlen(prefix)) == 0) at = i;
  unlock(r);
  return at;
}

/* Index of the change at or after `from` that is exactly `text`, or -1. */
static int find_exact(run *r, int from, const char *text) {
  lock(r);
  int at = -1;
  for (int i = from; i < r->nchanges && at < 0; i++)
    if (strcmp(r->changes[i], text) == 0) at = i;
  unlock(r);
  return at;
}

static int count_of(run *r, const int *counter) {
  lock(r);
  int v = *counter;
  unlock(r);
  return v;
}

static int comp_errors(run *r, const char *name) {
  lock(r);
  int v = comp_of(r, name)->errors;
  unlock(r);
  return v;
}

static int comp_recovered(run *r, const char *name) {
  lock(r);
  int v = comp_of(r, name)->recovered;
  unlock(r);
  return v;
}

static void comp_last_error(run *r, const char *name, char *out, size_t n) {
  lock(r);
  snprintf(out, n, "%s", comp_of(r, name)->last_error);
  unlock(r);
}

static void dump_changes(run *r, int from) {
  lock(r);
  for (int i = from; i < r->nchanges; i++) fprintf(stderr, "  change: %s\n", r->changes[i]);
  unlock(r);
}

/* JSON of the value at `path` in the committed snapshot ("-" when absent). */
static void snap_json(run *r, const char *path, char *out, size_t n) {
  rc_snapshot_t *s = rc_snapshot_acquire(r->eng);
  h_value_str(s ? rc_snapshot_get(s, path) : NULL, out, n);
  rc_snapshot_release(s);
}

static uint64_t revision(run *r) { return rc_engine_revision(r->eng); }

/* ---- waiting ---- */

typedef struct expect {
  const char *path, *json;  /* a snapshot value */
  int *counter;             /* or a counter of `r` ... */
  const char *comp;         /* ... or a component's errors/recovered */
  bool recovered;
  int want;
  bool (*fn)(run *r, void *ud);  /* or anything */
  void *ud;
} expect;

static bool met(run *r, const expect *e) {
  if (e->fn) return e->fn(r, e->ud);
  if (e->path) {
    char got[1024];
    snap_json(r, e->path, got, sizeof got);
    return strcmp(got, e->json) == 0;
  }
  if (e->comp)
    return (e->recovered ? comp_recovered(r, e->comp) : comp_errors(r, e->comp)) >= e->want;
  if (e->counter) return count_of(r, e->counter) >= e->want;
  return false;  /* run_for */
}

static void on_tick(uv_timer_t *t) { (void)t; }

/* Runs the engine (embedded: runs our loop; own thread: sleeps) until `e` holds or
 * `limit_ms` passed. A safety net, not a timing assertion. */
static bool wait_for(run *r, const expect *e, int limit_ms) {
  uint64_t end = now_ms() + (uint64_t)limit_ms;
  bool ok = met(r, e);
  if (!r->threaded) {
    uv_timer_t tick;
    uv_timer_init(&r->loop, &tick);
    uv_timer_start(&tick, on_tick, 5, 5);  /* so that each uv_run returns soon */
    while (!ok && now_ms() < end) {
      uv_run(&r->loop, UV_RUN_ONCE);
      ok = met(r, e);
    }
    uv_close((uv_handle_t *)&tick, NULL);
    uv_run(&r->loop, UV_RUN_NOWAIT);
  } else {
    while (!ok && now_ms() < end) {
      server_sleep_ms_(10);
      ok = met(r, e);
    }
  }
  return ok;
}

static void run_for(run *r, int ms) {
  expect never = {0};
  wait_for(r, &never, ms);
}

#define WAIT_MS 8000

/* CHECKs that the value at `path` becomes `json` (within WAIT_MS). */
#define CHECK_BECOMES(r, p, j)                                              \
  do {                                                                      \
    expect e_ = {.path = (p), .json = (j)};                                 \
    if (!wait_for((r), &e_, WAIT_MS)) {                                     \
      char got_[1024];                                                      \
      snap_json((r), (p), got_, sizeof got_);                               \
      check_fail_(__FILE__, __LINE__);                                      \
      fprintf(stderr, "%s never became %s (is %s)\n", (p), (j), got_);      \
    } else {                                                                \
      check_passed++;                                                       \
    }                                                                       \
  } while (0)

#define CHECK_VALUE(r, p, j)                   \
  do {                                         \
    char got_[1024];                           \
    snap_json((r), (p), got_, sizeof got_);    \
    CHECK_EQ_STR(got_, (j));                   \
  } while (0)

static bool wait_comp_errors(run *r, const char *comp, int want) {
  expect e = {.comp = comp, .want = want};
  return wait_for(r, &e, WAIT_MS);
}

static bool wait_comp_recovered(run *r, const char *comp, int want) {
  expect e = {.comp = comp, .recovered = true, .want = want};
  return wait_for(r, &e, WAIT_MS);
}

/* ---- lifecycle ---- */

static void write_file(const char *path, const char *text) {
  FILE *f = fopen(path, "wb");
  if (!f) {
    perror(path);
    exit(2);
  }
  fputs(text, f);
  fclose(f);
}

/* A fresh run: set the fields the callbacks check (secret_comp, needles) before
 * run_start. */
static void run_init(run *r, bool threaded) {
  memset(r, 0, sizeof *r);
  pthread_mutex_init(&r->mu, NULL);
  r->threaded = threaded;
}

/* Writes policy.lua (printf-style) into a fresh directory, loads it and starts the
 * engine (own thread or attached to r->loop). Returns the start code. */
__attribute__((format(printf, 3, 4)))
static int run_start(run *r, const char *name, const char *fmt, ...) {
  bool threaded = r->threaded;
  const char *base = getenv("RC_TEST_TMP");
  if (!base || !*base) base = "/tmp";
  mkdir(base, 0755);
  snprintf(r->dir, sizeof r->dir, "%s/remote-%s.XXXXXX", base, name);
  if (!mkdtemp(r->dir)) {
    perror("mkdtemp");
    exit(2);
  }
  char text[8192];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(text, sizeof text, fmt, ap);
  va_end(ap);
  char p[700];
  snprintf(p, sizeof p, "%s/policy.lua", r->dir);
  write_file(p, text);
  rc_error err = {0};
  r->eng = rc_engine_new(&err);
  if (!r->eng) return err.code;
  rc_engine_on_event(r->eng, on_event, r);
  CHECK(rc_subscribe(r->eng, "**", on_change, r, NULL) > 0);
  int rc = rc_engine_load_policy(r->eng, p, &err);
  if (rc == 0 && threaded) {
    rc = rc_engine_start(r->eng, &err);
  } else if (rc == 0) {
    uv_loop_init(&r->loop);
    rc = rc_engine_attach(r->eng, &r->loop, &err);
  }
  if (rc) fprintf(stderr, "%s: start failed: %s:%d: %s\n", name, err.file, err.line,
                  err.message);
  return rc;
}

/* Stops and frees the engine; checks that no callback ran after stop returned and, in
 * embedded mode, that every handle was closed. */
static void run_finish(run *r) {
  if (r->eng) CHECK_EQ_INT(rc_engine_stop(r->eng), 0);
  lock(r);
  r->stopped = true;
  unlock(r);
  rc_engine_free(r->eng);
  r->eng = NULL;
  if (!r->threaded) CHECK_EQ_INT(uv_loop_close(&r->loop), 0);
  CHECK_EQ_INT(r->late, 0);
  if (r->started) CHECK_EQ_INT(r->stopped_events, 1);
  CHECK_EQ_INT(r->leaks, 0);
  if (r->leaks) fprintf(stderr, "an event showed a secret: %s\n", r->leaked);
  char cmd[700];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", r->dir);
  if (!getenv("RC_KEEP_TMP") && system(cmd) != 0)
    fprintf(stderr, "could not remove %s\n", r->dir);
  pthread_mutex_destroy(&r->mu);
}

/* A socket on 127.0.0.1 that never accepts: connections complete in the kernel's
 * backlog and then hear nothing. */
static int hang_listen(int *port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(fd, 16) != 0 ||
      getsockname(fd, (struct sockaddr *)&a, &len) != 0) {
    perror("hang socket");
    exit(2);
  }
  *port = ntohs(a.sin_port);
  return fd;
}

/* ===================================================================================
 * rc.http against nginx
 * =================================================================================== */

static nginx_fixture ngx;
static bool have_nginx;

/* nginx answers 500 for everything under /cfg/ while the file `fail500` exists. */
static const char NGINX_LOCATIONS[] =
  "    location /cfg/ {\n"
  "      if (-f @DIR@/fail500) { return 500; }\n"
  "    }\n";

/* Replaces www/<rel> at once (write aside + rename: nginx never sees half a file) with
 * the given mtime, so that each version has its own ETag even within one second. */
static void ngx_put(const char *rel, const char *text, time_t mtime) {
  char tmp[1200], dst[1200];
  snprintf(tmp, sizeof tmp, "%s/cfg/.next", ngx.www);
  snprintf(dst, sizeof dst, "%s/%s", ngx.www, rel);
  nginx_write(&ngx, "cfg/.next", text, strlen(text));
  struct timespec ts[2] = {{mtime, 0}, {mtime, 0}};
  utimensat(AT_FDCWD, tmp, ts, 0);
  if (rename(tmp, dst) != 0) perror("rename");
}

static void ngx_fail500(bool on) {
  char p[700];
  snprintf(p, sizeof p, "%s/fail500", ngx.dir);
  if (on)
    write_file(p, "");
  else
    unlink(p);
}

/* Lines of nginx's access log that contain `s`. */
static int ngx_access(const char *s) {
  char p[700];
  snprintf(p, sizeof p, "%s/access.log", ngx.dir);
  FILE *f = fopen(p, "r");
  if (!f) return 0;
  char line[2048];
  int n = 0;
  while (fgets(line, sizeof line, f)) n += strstr(line, s) != NULL;
  fclose(f);
  return n;
}

/* nginx answered at least `ud` ("3") conditional GETs with 304. */
static bool seen_304s(run *r, void *ud) {
  (void)r;
  return ngx_access("\"GET /cfg/app.json HTTP/1.1\" 304") >= atoi(ud);
}

static void test_http(void) {
  int failed0 = check_failed;
  time_t t0 = time(NULL) - 1000;
  ngx_put("cfg/app.json", "{\"rps\": 10, \"name\": \"a\"}", t0);
  run r;
  run_init(&r, false);
  char url[256];
  snprintf(url, sizeof url, "http://127.0.0.1:%d/cfg/app.json", ngx.port);
  int rc = run_start(&r, "http",
                     "local rc = require 'reactcfg'\n"
                     "return rc.policy { components = {\n"
                     "  limits = { source = rc.http { url = '%s', interval = '50ms',\n"
                     "    backoff = { min = '20ms', max = '100ms' }, circuit = false } },\n"
                     "} }\n",
                     url);
  CHECK_EQ_INT(rc, 0);
  if (rc) {
    run_finish(&r);
    return;
  }
  /* The first value is in revision 1. */
  rc_snapshot_t *s1 = rc_snapshot_acquire(r.eng);
  CHECK(s1 != NULL);
  CHECK_EQ_INT(rc_snapshot_revision(s1), 1);
  int64_t rps = 0;
  CHECK_EQ_INT(rc_snapshot_get_int(s1, "limits.rps", &rps), 0);
  CHECK_EQ_INT(rps, 10);
  rc_snapshot_release(s1);
  CHECK_EQ_INT(r.errors, 0);
  int commits0 = r.commits, changes0 = r.nchanges;

  /* Polls answered 304 deliver nothing. */
  expect polled = {.fn = seen_304s, .ud = (void *)"3"};
  CHECK(wait_for(&r, &polled, WAIT_MS));
  run_for(&r, 100);
  CHECK_EQ_INT(ngx_access("\"GET /cfg/app.json HTTP/1.1\" 200"), 1);
  CHECK_EQ_INT(r.commits, commits0);
  CHECK_EQ_INT(r.nchanges, changes0);
  CHECK_EQ_INT(r.errors, 0);
  CHECK_EQ_INT(revision(&r), 1);

  /* A change on the server: one commit with exactly the changed path. */
  ngx_put("cfg/app.json", "{\"rps\": 200, \"name\": \"a\"}", t0 + 10);
  CHECK_BECOMES(&r, "limits.rps", "200");
  run_for(&r, 200);
  CHECK_EQ_INT(r.commits, commits0 + 1);
  CHECK_EQ_INT(r.nchanges, changes0 + 1);
  CHECK(find_change(&r, changes0, "modified limits.rps 10 200") == changes0);
  CHECK_EQ_INT(revision(&r), 2);

  /* A 500: an error event, the last value stays; then recovery without a change. */
  ngx_fail500(true);
  CHECK(wait_comp_errors(&r, "limits", 1));
  char last[1024];
  comp_last_error(&r, "limits", last, sizeof last);
  CHECK(strstr(last, "500") != NULL);
  CHECK(strstr(last, "/cfg/app.json") != NULL);
  CHECK_VALUE(&r, "limits.rps", "200");
  CHECK_VALUE(&r, "limits.name", "\"a\"");
  ngx_fail500(false);
  CHECK(wait_comp_recovered(&r, "limits", 1));
  run_for(&r, 200);
  /* Embedded: nothing ran between the first error and the fix, so exactly one. */
  CHECK_EQ_INT(comp_errors(&r, "limits"), 1);
  CHECK_VALUE(&r, "limits.rps", "200");
  CHECK_EQ_INT(r.nchanges, changes0 + 1);
  CHECK_EQ_INT(comp_recovered(&r, "limits"), 1);

  /* A missing file (404): the same; the file coming back with new content recovers and
   * is a change. */
  char p[1200], off[1200];
  snprintf(p, sizeof p, "%s/cfg/app.json", ngx.www);
  snprintf(off, sizeof off, "%s/cfg/app.json.off", ngx.www);
  CHECK_EQ_INT(rename(p, off), 0);
  int errs = comp_errors(&r, "limits");
  CHECK(wait_comp_errors(&r, "limits", errs + 1));
  comp_last_error(&r, "limits", last, sizeof last);
  CHECK(strstr(last, "404") != NULL);
  run_for(&r, 200);
  CHECK_VALUE(&r, "limits.rps", "200");
  CHECK_EQ_INT(r.nchanges, changes0 + 1);
  ngx_put("cfg/app.json", "{\"rps\": 300, \"name\": \"a\"}", t0 + 20);
  CHECK_BECOMES(&r, "limits.rps", "300");
  CHECK(wait_comp_recovered(&r, "limits", 2));
  CHECK(find_change(&r, changes0 + 1, "modified limits.rps 200 300") == changes0 + 1);

  /* A malformed body: an error naming the URL, the value stays; fixed: delivered. */
  errs = comp_errors(&r, "limits");
  ngx_put("cfg/app.json", "{\"rps\": 400, \"name\": ", t0 + 30);
  CHECK(wait_comp_errors(&r, "limits", errs + 1));
  comp_last_error(&r, "limits", last, sizeof last);
  CHECK(strstr(last, "app.json") != NULL);
  CHECK_VALUE(&r, "limits.rps", "300");
  ngx_put("cfg/app.json", "{\"rps\": 500, \"name\": \"b\"}", t0 + 40);
  CHECK_BECOMES(&r, "limits.rps", "500");
  CHECK_VALUE(&r, "limits.name", "\"b\"");
  CHECK(wait_comp_recovered(&r, "limits", 3));
  run_for(&r, 100);
  CHECK_EQ_INT(comp_recovered(&r, "limits"), 3);  /* one per failure episode */
  CHECK_EQ_INT(r.nchanges, changes0 + 4);  /* 200, 300, 500 and name "b" */
  if (check_failed > failed0) dump_changes(&r, 0);
  run_finish(&r);
}

/* A JSON document of about 1.5 MiB (over RC__REMOTE_ASYNC_BYTES, so it is parsed on the
 * thread pool): {"v": version, "items": ["item-000000-xxxx...", ...]}. Caller frees. */
#define BIG_ITEMS 60000
static char *big_json(int version) {
  size_t cap = (size_t)BIG_ITEMS * 32 + 64;
  char *b = malloc(cap);
  size_t n = (size_t)snprintf(b, cap, "{\"v\": %d, \"items\": [", version);
  for (int i = 0; i < BIG_ITEMS; i++)
    n += (size_t)snprintf(b + n, cap - n, "%s\"item-%06d-xxxxxxxxxx\"", i ? "," : "", i);
  snprintf(b + n, cap - n, "]}");
  return b;
}

static size_t items_len(run *r) {
  rc_snapshot_t *s = rc_snapshot_acquire(r->eng);
  size_t n = rc_value_len(rc_snapshot_get(s, "big.items"));
  rc_snapshot_release(s);
  return n;
}

static const char BIG_POLICY[] =
  "local rc = require 'reactcfg'\n"
  "return rc.policy { components = {\n"
  "  big = { source = rc.http { url = 'http://127.0.0.1:%d/cfg/big.json',\n"
  "          interval = '20ms' }, startup = '%s' },\n"
  "} }\n";

/* Bodies parsed on the thread pool: the first value and a change arrive; then engines
 * stopped at different moments of a download or a parse (own thread and embedded), where
 * the sanitizer build catches a job that outlives its source or leaks. */
static void test_http_big(void) {
  time_t t0 = time(NULL) - 2000;
  char *b1 = big_json(1), *b2 = big_json(2);
  ngx_put("cfg/big.json", b1, t0);
  run r;
  run_init(&r, false);
  int rc = run_start(&r, "http-big", BIG_POLICY, ngx.port, "wait");
  CHECK_EQ_INT(rc, 0);
  if (rc == 0) {
    CHECK_VALUE(&r, "big.v", "1");
    CHECK_EQ_INT(items_len(&r), BIG_ITEMS);
    ngx_put("cfg/big.json", b2, t0 + 10);
    CHECK_BECOMES(&r, "big.v", "2");
    CHECK_EQ_INT(items_len(&r), BIG_ITEMS);
    CHECK_VALUE(&r, "big.items[59999]", "\"item-059999-xxxxxxxxxx\"");
    CHECK_EQ_INT(r.errors, 0);
  }
  run_finish(&r);
  for (int i = 0; i < 16; i++) {
    bool threaded = i % 2 == 1;
    run_init(&r, threaded);
    CHECK_EQ_INT(run_start(&r, "http-big-stop", BIG_POLICY, ngx.port, "default"), 0);
    if (threaded)
      server_sleep_ms_(i * 6);
    else
      run_for(&r, i * 6);
    CHECK_EQ_INT(r.errors, 0);
    run_finish(&r);
  }
  free(b1);
  free(b2);
}

/* ===================================================================================
 * rc.consul against consul_server.py
 * =================================================================================== */

static int consul_put(const server_fixture *s, const char *key, const char *value) {
  char target[512], out[256];
  snprintf(target, sizeof target, "/v1/kv/%s", key);
  int st = server_http(s, "PUT", target, "", value, out, sizeof out);
  if (st != 200 || strncmp(out, "true", 4) != 0)
    fprintf(stderr, "consul PUT %s: HTTP %d %s\n", key, st, out);
  return st;
}

static int consul_delete(const server_fixture *s, const char *key) {
  char target[512];
  snprintf(target, sizeof target, "/v1/kv/%s", key);
  return server_http(s, "DELETE", target, "", NULL, NULL, 0);
}

/* The index a blocking query on `what` ("app/flags", "svc/?recurse") waits beyond: the
 * highest ModifyIndex in the answer (no tombstones are involved where it is used). */
static int consul_index(const server_fixture *s, const char *what) {
  static char body[1 << 16];
  char target[512];
  snprintf(target, sizeof target, "/v1/kv/%s", what);
  if (server_http(s, "GET", target, "", NULL, body, sizeof body) != 200) return -1;
  int max = -1;
  for (const char *p = body; (p = strstr(p, "\"ModifyIndex\":")); p++) {
    int v = atoi(p + strlen("\"ModifyIndex\":"));
    if (v > max) max = v;
  }
  return max;
}

typedef struct pending_query {
  const server_fixture *srv;
  const char *prefix;  /* "GET /v1/kv/app/flags?index=" */
  int want;
} pending_query;

/* The server has seen `want` requests starting with `prefix`. */
static bool seen_requests(run *r, void *ud) {
  (void)r;
  pending_query *q = ud;
  return server_requests(q->srv, q->prefix) >= q->want;
}

static const char CONSUL_POLICY[] =
  "local rc = require 'reactcfg'\n"
  "local backoff = { min = '50ms', max = '200ms' }\n"
  "return rc.policy { components = {\n"
  "  flags = { source = rc.consul { addr = '%s', key = 'app/flags', wait = '10s',\n"
  "            backoff = backoff, circuit = false },\n"
  "            default = { beta = 'default' } },\n"
  "  svc = { source = rc.consul { addr = '%s', prefix = 'svc/', wait = '10s',\n"
  "          backoff = backoff, circuit = false } },\n"
  "} }\n";

static void test_consul(void) {
  int failed0 = check_failed;
  server_fixture srv;
  if (server_start(&srv, "consul_server.py", NULL) != 0) {
    CHECK(!"consul_server.py started");
    return;
  }
  consul_put(&srv, "app/flags", "{\"beta\": false, \"n\": 1}");
  consul_put(&srv, "svc/db", "{\"host\": \"h\", \"port\": 5432}");
  consul_put(&srv, "svc/beta", "true");
  consul_put(&srv, "other/x", "1");
  run r;
  run_init(&r, false);
  int rc = run_start(&r, "consul", CONSUL_POLICY, srv.addr, srv.addr);
  CHECK_EQ_INT(rc, 0);
  if (rc) {
    run_finish(&r);
    server_stop(&srv);
    return;
  }
  /* Initial values: a key, and a prefix as a table of relative keys. */
  CHECK_EQ_INT(revision(&r), 1);
  CHECK_VALUE(&r, "flags", "{\"beta\":false,\"n\":1}");
  CHECK_VALUE(&r, "svc", "{\"beta\":true,\"db\":{\"host\":\"h\",\"port\":5432}}");
  CHECK_EQ_INT(r.errors, 0);
  int changes0 = r.nchanges;

  /* Both now wait in a blocking query. */
  pending_query pq = {&srv, "GET /v1/kv/app/flags?index=", 1};
  expect blocked = {.fn = seen_requests, .ud = &pq};
  CHECK(wait_for(&r, &blocked, WAIT_MS));
  pending_query pp = {&srv, "GET /v1/kv/svc/?recurse&index=", 1};
  expect blocked2 = {.fn = seen_requests, .ud = &pp};
  CHECK(wait_for(&r, &blocked2, WAIT_MS));

  /* A PUT wakes the blocking query: one change. */
  consul_put(&srv, "app/flags", "{\"beta\": true, \"n\": 1}");
  CHECK_BECOMES(&r, "flags.beta", "true");
  pq.want = 2;  /* the next blocking query */
  CHECK(wait_for(&r, &blocked, WAIT_MS));
  run_for(&r, 300);
  CHECK_EQ_INT(r.nchanges, changes0 + 1);
  CHECK(find_change(&r, changes0, "modified flags.beta false true") == changes0);
  /* Blocking, not polling: the first read and two blocking queries, not one query per
   * loop turn (a rate-limited poller would have sent a few more by now). */
  int gets = server_requests(&srv, "GET /v1/kv/app/flags");
  CHECK(gets >= 3 && gets <= 5);
  if (gets < 3 || gets > 5) fprintf(stderr, "GETs of app/flags: %d\n", gets);

  /* A new key under the prefix: added to the table. */
  consul_put(&srv, "svc/new", "\"v\"");
  CHECK_BECOMES(&r, "svc.new", "\"v\"");
  CHECK(find_change(&r, changes0 + 1, "added svc.new - \"v\"") >= 0);

  /* DELETE: the key is absent, so the default applies. */
  consul_delete(&srv, "app/flags");
  CHECK_BECOMES(&r, "flags.beta", "\"default\"");
  CHECK_VALUE(&r, "flags.n", "-");
  CHECK(find_change(&r, changes0, "removed flags.n 1 -") >= 0);
  consul_put(&srv, "app/flags", "{\"beta\": true, \"n\": 2}");
  CHECK_BECOMES(&r, "flags.n", "2");
  CHECK_EQ_INT(r.errors, 0);

  /* The server dies mid-watch (both blocking queries at the current index, pending):
   * errors for both components, the values stay. */
  char q1[128], q2[128];
  snprintf(q1, sizeof q1, "GET /v1/kv/app/flags?index=%d&",
           consul_index(&srv, "app/flags"));
  snprintf(q2, sizeof q2, "GET /v1/kv/svc/?recurse&index=%d&",
           consul_index(&srv, "svc/?recurse"));
  pending_query k1 = {&srv, q1, 1}, k2 = {&srv, q2, 1};
  expect pending1 = {.fn = seen_requests, .ud = &k1};
  expect pending2 = {.fn = seen_requests, .ud = &k2};
  CHECK(wait_for(&r, &pending1, WAIT_MS));
  CHECK(wait_for(&r, &pending2, WAIT_MS));
  uint64_t rev = revision(&r);
  int changes1 = r.nchanges;
  server_kill(&srv, SIGKILL);
  CHECK(wait_comp_errors(&r, "flags", 2));
  CHECK(wait_comp_errors(&r, "svc", 2));
  char last[1024];
  comp_last_error(&r, "flags", last, sizeof last);
  CHECK(strstr(last, "/v1/kv/app/flags") != NULL);
  CHECK_VALUE(&r, "flags", "{\"beta\":true,\"n\":2}");
  CHECK_VALUE(&r, "svc.new", "\"v\"");
  CHECK_VALUE(&r, "svc.db.port", "5432");
  CHECK_EQ_INT(revision(&r), rev);
  CHECK_EQ_INT(r.recovered, 0);

  /* Restarted (empty) at the same port. The engine runs only inside our loop runs, so
   * the data is back before it asks again; many writes first put every index above the
   * ones the engine holds, as a real cluster's would be after a restart from a snapshot
   * taken later. Both recover without a change. */
  bool restarted = server_restart(&srv) == 0;
  CHECK(restarted);
  if (restarted) {
    for (int i = 0; i < 40; i++) consul_put(&srv, "noise/x", "1");
    consul_put(&srv, "app/flags", "{\"beta\": true, \"n\": 2}");
    consul_put(&srv, "svc/db", "{\"host\": \"h\", \"port\": 5432}");
    consul_put(&srv, "svc/beta", "true");
    consul_put(&srv, "svc/new", "\"v\"");
    CHECK(wait_comp_recovered(&r, "flags", 1));
    CHECK(wait_comp_recovered(&r, "svc", 1));
    run_for(&r, 200);
    CHECK_EQ_INT(comp_recovered(&r, "flags"), 1);
    CHECK_EQ_INT(comp_recovered(&r, "svc"), 1);
    CHECK_EQ_INT(r.nchanges, changes1);
    CHECK_VALUE(&r, "flags.n", "2");
    /* And the watch goes on. */
    consul_put(&srv, "app/flags", "{\"beta\": true, \"n\": 3}");
    CHECK_BECOMES(&r, "flags.n", "3");
    consul_delete(&srv, "svc/beta");
    CHECK_BECOMES(&r, "svc.beta", "-");
  }
  if (check_failed > failed0) dump_changes(&r, 0);
  run_finish(&r);
  server_stop(&srv);
}

/* Replaces the policy file at once (the engine watches it and reloads). */
static void write_policy(run *r, const char *text) {
  char tmp[700], p[700];
  snprintf(tmp, sizeof tmp, "%s/policy.lua.next", r->dir);
  snprintf(p, sizeof p, "%s/policy.lua", r->dir);
  write_file(tmp, text);
  if (rename(tmp, p) != 0) perror("rename");
}

/* A prefix holding a key that does not parse is an error naming the key; a policy
 * reload that replaces a Consul source stops it while its blocking query is pending. */
static void test_consul_reload(void) {
  int failed0 = check_failed;
  server_fixture srv;
  if (server_start(&srv, "consul_server.py", NULL) != 0) {
    CHECK(!"consul_server.py started");
    return;
  }
  consul_put(&srv, "app/a", "{\"n\": 1}");
  consul_put(&srv, "app/b", "{\"n\": 2}");
  consul_put(&srv, "svc/ok", "1");
  consul_put(&srv, "svc/bad", "{not json");
  static const char V1[] =
    "local rc = require 'reactcfg'\n"
    "return rc.policy { components = {\n"
    "  c = { source = rc.consul { addr = '%s', key = '%s', wait = '10m' } },\n"
    "  p = { source = rc.consul { addr = '%s', prefix = 'svc/', wait = '10m',\n"
    "        backoff = { min = '50ms', max = '100ms' } }, default = { ok = 0 } },\n"
    "} }\n";
  run r;
  run_init(&r, false);
  int rc = run_start(&r, "consul-reload", V1, srv.addr, "app/a", srv.addr);
  CHECK_EQ_INT(rc, 0);
  if (rc) {
    run_finish(&r);
    server_stop(&srv);
    return;
  }
  CHECK_VALUE(&r, "c.n", "1");
  CHECK(wait_comp_errors(&r, "p", 1));
  char last[1024];
  comp_last_error(&r, "p", last, sizeof last);
  CHECK(strstr(last, "svc/bad") != NULL);
  if (!strstr(last, "svc/bad")) fprintf(stderr, "prefix error: %s\n", last);
  CHECK_VALUE(&r, "p", "{\"ok\":0}");
  consul_put(&srv, "svc/bad", "{\"fixed\": true}");
  CHECK_BECOMES(&r, "p", "{\"bad\":{\"fixed\":true},\"ok\":1}");
  CHECK(wait_comp_recovered(&r, "p", 1));

  pending_query pq = {&srv, "GET /v1/kv/app/a?index=", 1};
  expect blocked = {.fn = seen_requests, .ud = &pq};
  CHECK(wait_for(&r, &blocked, WAIT_MS));
  char text[2048];
  snprintf(text, sizeof text, V1, srv.addr, "app/b", srv.addr);
  write_policy(&r, text);
  expect reloaded = {.counter = &r.reloads, .want = 1};
  CHECK(wait_for(&r, &reloaded, WAIT_MS));
  CHECK_BECOMES(&r, "c.n", "2");
  consul_put(&srv, "app/b", "{\"n\": 3}");
  CHECK_BECOMES(&r, "c.n", "3");
  consul_put(&srv, "app/a", "{\"n\": 4}");  /* no longer watched */
  run_for(&r, 200);
  CHECK_VALUE(&r, "c.n", "3");
  CHECK_EQ_INT(r.policy_errors, 0);
  if (check_failed > failed0) dump_changes(&r, 0);
  run_finish(&r);
  server_stop(&srv);
}

/* A condition stopping and starting a Consul source again and again, each stop with
 * its blocking query pending and each start a new read. */
static void test_consul_condition(void) {
  server_fixture srv;
  if (server_start(&srv, "consul_server.py", NULL) != 0) {
    CHECK(!"consul_server.py started");
    return;
  }
  consul_put(&srv, "app/a", "{\"n\": 1}");
  unsetenv("RCT_RS_MODE");
  run r;
  run_init(&r, false);
  int rc = run_start(&r, "consul-condition",
                     "local rc = require 'reactcfg'\n"
                     "return rc.policy { components = {\n"
                     "  mode = { source = rc.env { name = 'RCT_RS_MODE',\n"
                     "                             interval = '20ms' },\n"
                     "           default = 'on' },\n"
                     "  c = { source = rc.consul { addr = '%s', key = 'app/a',\n"
                     "        wait = '10m', rate_limit = '1ms' },\n"
                     "        default = { n = 0 },\n"
                     "        condition = function(c) return c.mode == 'on' end },\n"
                     "} }\n",
                     srv.addr);
  CHECK_EQ_INT(rc, 0);
  if (rc == 0) {
    /* (Whether revision 1 already has it: test_conditional_startup.) */
    CHECK_BECOMES(&r, "c.n", "1");
    for (int i = 1; i <= 6; i++) {
      char q[128];
      snprintf(q, sizeof q, "GET /v1/kv/app/a?index=");
      pending_query pq = {&srv, q, i};
      expect blocked = {.fn = seen_requests, .ud = &pq};
      CHECK(wait_for(&r, &blocked, WAIT_MS));
      CHECK_EQ_INT(rc_engine_setenv(r.eng, "RCT_RS_MODE", "off"), 0);
      CHECK_BECOMES(&r, "c.n", "0");
      char v[32];
      snprintf(v, sizeof v, "{\"n\": %d}", i + 1);
      consul_put(&srv, "app/a", v);  /* while stopped */
      CHECK_EQ_INT(rc_engine_setenv(r.eng, "RCT_RS_MODE", "on"), 0);
      snprintf(v, sizeof v, "%d", i + 1);
      CHECK_BECOMES(&r, "c.n", v);
    }
    CHECK_EQ_INT(r.errors, 0);
  }
  run_finish(&r);
  unsetenv("RCT_RS_MODE");
  server_stop(&srv);
}

/* A remote component with a `condition` that holds at start follows its `startup` like
 * any other: start waits for its first value ("wait") or fails without it ("fail").
 * (Start used to evaluate conditions only after the waiting: revision 1 had the default
 * and "fail" never failed.) */
static void test_conditional_startup(void) {
  server_fixture srv;
  if (server_start(&srv, "consul_server.py", NULL) != 0) {
    CHECK(!"consul_server.py started");
    return;
  }
  consul_put(&srv, "app/a", "{\"n\": 1}");
  run r;
  run_init(&r, false);
  int rc = run_start(&r, "conditional-wait",
                     "local rc = require 'reactcfg'\n"
                     "return rc.policy { components = {\n"
                     "  c = { source = rc.consul { addr = '%s', key = 'app/a' },\n"
                     "        startup = { mode = 'wait', timeout = '5s' },\n"
                     "        default = { n = 0 },\n"
                     "        condition = function(c) return true end },\n"
                     "} }\n",
                     srv.addr);
  CHECK_EQ_INT(rc, 0);
  if (rc == 0) {
    char got[64];
    snap_json(&r, "c.n", got, sizeof got);
    CHECK_EQ_STR(got, "1");
  }
  run_finish(&r);
  server_stop(&srv);

  /* startup = "fail" with a source that cannot answer: start must fail. */
  int dead_port;
  int dead_fd = hang_listen(&dead_port);
  close(dead_fd);  /* nothing listens there now: connection refused */
  run_init(&r, true);
  rc = run_start(&r, "conditional-fail",
                 "local rc = require 'reactcfg'\n"
                 "return rc.policy { components = {\n"
                 "  c = { source = rc.http { url = 'http://127.0.0.1:%d/x.json' },\n"
                 "        startup = { mode = 'fail', timeout = '2s' },\n"
                 "        condition = function(c) return true end },\n"
                 "} }\n",
                 dead_port);
  CHECK_EQ_INT(rc, RC_EIO);
  run_finish(&r);
}

/* ===================================================================================
 * rc.vault against vault_server.py (own-thread engine)
 * =================================================================================== */

#define PW1 "pw-zq81-first"
#define PW2 "pw-zq81-second"
#define PW3 "pw-zq81-third"
#define BAD_TOKEN "wrong-tok-zq77"

static int vault_write(const server_fixture *s, const char *path, const char *json) {
  char target[512], body[1024], out[1024];
  snprintf(target, sizeof target, "/v1/secret/data/%s", path);
  snprintf(body, sizeof body, "{\"data\": %s}", json);
  int st = server_http(s, "POST", target, "X-Vault-Token: root\r\n", body, out, sizeof out);
  if (st != 200) fprintf(stderr, "vault write %s: HTTP %d %s\n", path, st, out);
  return st;
}

static void test_vault(void) {
  int failed0 = check_failed;
  server_fixture srv;
  if (server_start(&srv, "vault_server.py", NULL) != 0) {
    CHECK(!"vault_server.py started");
    return;
  }
  vault_write(&srv, "app/db", "{\"user\": \"app\", \"password\": \"" PW1 "\"}");
  vault_write(&srv, "other/part", "{\"user\": \"u1\", \"password\": \"pw-zq81-part1\"}");
  setenv("RCT_RS_VAULT_TOKEN", "root", 1);  /* before any engine thread runs */
  run r;
  run_init(&r, true);
  r.secret_comp = "db";
  r.needles[0] = "pw-zq81";
  r.needles[1] = BAD_TOKEN;
  int rc = run_start(&r, "vault",
                     "local rc = require 'reactcfg'\n"
                     "return rc.policy { components = {\n"
                     "  db = { source = rc.vault { addr = '%s', path = 'app/db',\n"
                     "         token_env = 'RCT_RS_VAULT_TOKEN', interval = '100ms',\n"
                     "         backoff = { min = '50ms', max = '200ms' },\n"
                     "         circuit = false } },\n"
                     "  part = { source = rc.vault { addr = '%s', path = 'other/part',\n"
                     "           token_env = 'RCT_RS_VAULT_TOKEN', interval = '100ms' },\n"
                     "           secret = { 'password' } },\n"
                     "} }\n",
                     srv.addr, srv.addr);
  CHECK_EQ_INT(rc, 0);
  if (rc) {
    run_finish(&r);
    server_stop(&srv);
    return;
  }
  /* The C getters see the secret; revision 1 has it. */
  rc_snapshot_t *s1 = rc_snapshot_acquire(r.eng);
  CHECK_EQ_INT(rc_snapshot_revision(s1), 1);
  const char *pw = NULL;
  CHECK_EQ_INT(rc_snapshot_get_string(s1, "db.password", &pw, NULL), 0);
  CHECK_EQ_STR(pw, PW1);
  rc_snapshot_release(s1);
  CHECK_VALUE(&r, "db.user", "\"app\"");
  CHECK_EQ_INT(count_of(&r, &r.errors), 0);
  int changes0 = count_of(&r, &r.nchanges);

  /* A new version is a change, marked secret. */
  vault_write(&srv, "app/db", "{\"user\": \"app\", \"password\": \"" PW2 "\"}");
  CHECK_BECOMES(&r, "db.password", "\"" PW2 "\"");
  CHECK(find_change(&r, changes0, "modified db.password \"" PW1 "\" \"" PW2 "\" secret") >=
        0);
  CHECK_EQ_INT(count_of(&r, &r.plain_changes_of_secret_comp), 0);
  CHECK(count_of(&r, &r.secret_changes) >= 1);

  /* A component that names its secrets itself: only those are secret. */
  int changes_p = count_of(&r, &r.nchanges);
  vault_write(&srv, "other/part", "{\"user\": \"u2\", \"password\": \"pw-zq81-part2\"}");
  CHECK_BECOMES(&r, "part.user", "\"u2\"");
  CHECK_VALUE(&r, "part.password", "\"pw-zq81-part2\"");
  CHECK(find_exact(&r, changes_p, "modified part.password \"pw-zq81-part1\" "
                                  "\"pw-zq81-part2\" secret") >= 0);
  CHECK(find_exact(&r, changes_p, "modified part.user \"u1\" \"u2\"") >= 0);

  /* A wrong token: an error event (HTTP 403) that does not show the token; the value
   * stays. The right token again: recovery. */
  int changes1 = count_of(&r, &r.nchanges);
  CHECK_EQ_INT(rc_engine_setenv(r.eng, "RCT_RS_VAULT_TOKEN", BAD_TOKEN), 0);
  CHECK(wait_comp_errors(&r, "db", 1));
  char last[1024];
  comp_last_error(&r, "db", last, sizeof last);
  CHECK(strstr(last, "403") != NULL);
  if (!strstr(last, "403")) fprintf(stderr, "vault error: %s\n", last);
  CHECK_VALUE(&r, "db.password", "\"" PW2 "\"");
  CHECK_EQ_INT(rc_engine_setenv(r.eng, "RCT_RS_VAULT_TOKEN", "root"), 0);
  CHECK(wait_comp_recovered(&r, "db", 1));
  CHECK_EQ_INT(count_of(&r, &r.nchanges), changes1);

  /* A malformed answer (cut in half, the secret in the part that arrived): an error
   * that does not quote it, the value stays, the next read recovers. */
  int errs = comp_errors(&r, "db"), recs = comp_recovered(&r, "db");
  char out[256];
  CHECK_EQ_INT(server_http(&srv, "POST", "/_test/malformed", "",
                           "{\"count\": 1, \"path\": \"/v1/secret/data/app/db\", "
                           "\"method\": \"GET\"}", out, sizeof out), 200);
  CHECK(wait_comp_errors(&r, "db", errs + 1));
  CHECK(wait_comp_recovered(&r, "db", recs + 1));
  server_sleep_ms_(300);
  CHECK_EQ_INT(comp_recovered(&r, "db"), 2);  /* the wrong token, the bad answer */
  CHECK_VALUE(&r, "db.password", "\"" PW2 "\"");
  CHECK_EQ_INT(count_of(&r, &r.nchanges), changes1);

  /* A deleted latest version is absent (the component goes); a new one comes back. */
  CHECK_EQ_INT(server_http(&srv, "DELETE", "/v1/secret/data/app/db",
                           "X-Vault-Token: root\r\n", NULL, out, sizeof out), 204);
  CHECK_BECOMES(&r, "db", "-");
  CHECK(find_change(&r, changes1, "removed db ") >= 0);
  vault_write(&srv, "app/db", "{\"user\": \"app2\", \"password\": \"" PW3 "\"}");
  CHECK_BECOMES(&r, "db.password", "\"" PW3 "\"");
  CHECK_EQ_INT(count_of(&r, &r.plain_changes_of_secret_comp), 0);
  if (check_failed > failed0) dump_changes(&r, 0);
  run_finish(&r);
  unsetenv("RCT_RS_VAULT_TOKEN");
  server_stop(&srv);
}

/* ===================================================================================
 * Stopping with requests in flight
 * =================================================================================== */

typedef struct in_flight {
  pending_query consul, vault;
  int hang_fd;
} in_flight;

/* The Consul blocking query and the Vault read reached their servers, and the HTTP
 * source's connection waits in the hanging socket's backlog. */
static bool all_in_flight(run *r, void *ud) {
  in_flight *f = ud;
  struct pollfd p = {.fd = f->hang_fd, .events = POLLIN};
  return seen_requests(r, &f->consul) && seen_requests(r, &f->vault) && poll(&p, 1, 0) == 1;
}

static const char STOP_POLICY[] =
  "local rc = require 'reactcfg'\n"
  "return rc.policy { components = {\n"
  "  flags = { source = rc.consul { addr = '%s', key = 'app/flags', wait = '10m' } },\n"
  "  db = { source = rc.vault { addr = '%s', path = 'app/db', token_env =\n"
  "         'RCT_RS_VAULT_TOKEN', renew = false, interval = '50ms' },\n"
  "         startup = 'default', default = { user = 'none' } },\n"
  "  slow = { source = rc.http { url = 'http://127.0.0.1:%d/slow.json',\n"
  "                              timeout = '60s' },\n"
  "           startup = 'default', default = { waiting = true } },\n"
  "} }\n";

typedef enum stop_mode {
  STOP_THREAD,        /* own thread: rc_engine_stop, then rc_engine_free */
  FREE_THREAD,        /* own thread: rc_engine_free alone */
  STOP_EMBEDDED_RUN,  /* embedded: rc_engine_stop, the application's loop runs dry */
  FREE_EMBEDDED,      /* embedded: rc_engine_free alone */
} stop_mode;

/* Starts an engine whose three remote sources all have a request in flight that would
 * take minutes, stops it (as `mode` says), and checks that this returns without waiting
 * for them, that nothing runs afterwards, that an embedded engine leaves nothing alive
 * on the application's loop, that a snapshot taken before outlives the engine, and
 * (ASan) that nothing leaks. */
static void stop_in_flight(stop_mode mode) {
  static const char *names[] = {"stop-thread", "free-thread", "stop-embedded",
                                "free-embedded"};
  bool threaded = mode == STOP_THREAD || mode == FREE_THREAD;
  bool stop = mode == STOP_THREAD || mode == STOP_EMBEDDED_RUN;
  server_fixture consul, vault;
  if (server_start(&consul, "consul_server.py", NULL) != 0) {
    CHECK(!"consul_server.py started");
    return;
  }
  if (server_start(&vault, "vault_server.py", NULL) != 0) {
    CHECK(!"vault_server.py started");
    server_stop(&consul);
    return;
  }
  consul_put(&consul, "app/flags", "{\"on\": true}");
  vault_write(&vault, "app/db", "{\"user\": \"app\"}");
  /* From now on every Vault read is held for 60 s by the server. */
  char out[256];
  CHECK_EQ_INT(server_http(&vault, "POST", "/_test/delay", "",
                           "{\"ms\": 60000, \"count\": 0, \"path\": \"/v1/secret/data/\"}",
                           out, sizeof out), 200);
  int hang_port;
  int hang_fd = hang_listen(&hang_port);
  setenv("RCT_RS_VAULT_TOKEN", "root", 1);
  run r;
  run_init(&r, threaded);
  int rc = run_start(&r, names[mode], STOP_POLICY,
                     consul.addr, vault.addr, hang_port);
  CHECK_EQ_INT(rc, 0);
  if (rc == 0) {
    CHECK_VALUE(&r, "flags.on", "true");
    CHECK_VALUE(&r, "db.user", "\"none\"");
    CHECK_VALUE(&r, "slow.waiting", "true");
    in_flight f = {{&consul, "GET /v1/kv/app/flags?index=", 1},
                   {&vault, "GET /v1/secret/data/app/db", 1}, hang_fd};
    expect all = {.fn = all_in_flight, .ud = &f};
    CHECK(wait_for(&r, &all, WAIT_MS));
    rc_snapshot_t *keep = rc_snapshot_acquire(r.eng);
    uint64_t t = now_ms();
    if (stop) {
      CHECK_EQ_INT(rc_engine_stop(r.eng), 0);
    } else {
      rc_engine_free(r.eng);
      r.eng = NULL;
    }
    uint64_t took = now_ms() - t;
    lock(&r);
    r.stopped = true;
    unlock(&r);
    /* Not a performance bound: the requests would take 60 s to 10 min to end. */
    CHECK(took < 30000);
    if (took >= 30000 || getenv("RC_TEST_VERBOSE"))
      fprintf(stderr, "%s took %llu ms\n", names[mode], (unsigned long long)took);
    if (stop) CHECK_EQ_INT(rc_engine_stop(r.eng), 0);  /* idempotent */
    if (mode == STOP_EMBEDDED_RUN) {
      /* The application's loop finishes closing the engine's handles, and then has
       * nothing left to run: no handle or request of the engine stays active. */
      uint64_t end = now_ms() + WAIT_MS;
      while (uv_loop_alive(&r.loop) && now_ms() < end) {
        uv_run(&r.loop, UV_RUN_NOWAIT);
        server_sleep_ms_(1);
      }
      CHECK(!uv_loop_alive(&r.loop));
      if (uv_loop_alive(&r.loop)) uv_print_active_handles(&r.loop, stderr);
    }
    if (threaded) server_sleep_ms_(100);  /* anything late would run now */
    CHECK_EQ_INT(r.errors, 0);
    run_finish(&r);
    /* The snapshot outlives the engine. */
    const char *user = NULL;
    CHECK_EQ_INT(rc_snapshot_get_string(keep, "db.user", &user, NULL), 0);
    CHECK_EQ_STR(user, "none");
    bool on = false;
    CHECK_EQ_INT(rc_snapshot_get_bool(keep, "flags.on", &on), 0);
    CHECK(on);
    rc_snapshot_release(keep);
  } else {
    run_finish(&r);
  }
  close(hang_fd);
  unsetenv("RCT_RS_VAULT_TOKEN");
  server_stop(&vault);
  server_stop(&consul);
}

/* ===================================================================================
 * main
 * =================================================================================== */

int main(void) {
  signal(SIGPIPE, SIG_IGN);
  /* curl honours proxy variables; these tests talk to 127.0.0.1 directly. */
  const char *proxies[] = {"http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY",
                           "all_proxy", "ALL_PROXY"};
  for (size_t i = 0; i < sizeof proxies / sizeof *proxies; i++) unsetenv(proxies[i]);

  /* Like test_net: nginx and python3 are test dependencies (scripts/setup --test), so
   * their absence fails the test with a message rather than passing silently. */
  have_nginx = nginx_start(&ngx, "remote", NGINX_LOCATIONS, false) == 0;
  if (have_nginx) {
    int failed0 = check_failed;
    test_http();
    test_http_big();
    if (check_failed > failed0) nginx_print_log_(&ngx);
    nginx_stop(&ngx);
  } else {
    CHECK(!"nginx started");
  }
  if (server_python_available()) {
    test_consul();
    test_consul_reload();
    test_consul_condition();
    test_conditional_startup();
    test_vault();
    stop_in_flight(STOP_THREAD);
    stop_in_flight(FREE_THREAD);
    stop_in_flight(STOP_EMBEDDED_RUN);
    stop_in_flight(FREE_EMBEDDED);
  } else {
    fprintf(stderr, "python3 not found: the Consul and Vault tests cannot run\n");
    CHECK(!"python3 available");
  }
  return check_report("test_remote_sources");
}
