/* SPDX-License-Identifier: MIT (see LICENSE) */
/* sources_idle.c: `reactcfg-bench sources-idle`: how often an idle engine wakes up. The
 * engine has the sources asked for (rc.redis on a key, rc.postgres LISTENing on a
 * settings query, rc.file, rc.env), each given a value first; once every component holds
 * its value and a settling time has passed, nothing is written for `seconds`, and the
 * program counts over that window. Two ways of running the engine:
 *  - attached (default): on this program's loop (rc_engine_attach). loop_wakeups =
 *    returns from the loop's poll (a uv_check callback runs once after each), minus the
 *    one that ends the window (the program's own timer); loop_csw = context switches of
 *    the loop thread (getrusage RUSAGE_THREAD: each blocking wait is one, so about one
 *    per wakeup, plus the end timer's); process_csw = every thread's (RUSAGE_SELF);
 *  - --own-thread: rc_engine_start, as an application embeds it (its own thread and loop,
 *    the policy file watched). The main thread only sleeps through the window;
 *    loop_csw = voluntary + involuntary context switches of every thread but the main
 *    one, from /proc/self/task/<tid>/status (a thread that blocks and wakes switches
 *    once); process_csw adds the main thread's (its one wakeup, the window's end);
 *    loop_wakeups is not observable from outside the loop and prints as "-".
 * commits = revisions committed in the window (0 expected: nothing changed). One line:
 * sources-idle sources=<list> mode=<attached|thread> seconds=<s> ready=<n>/<n>
 * loop_wakeups=<n|-> loop_csw=<n> process_csw=<n> commits=<n> threads=<n> */
#include "bench_engine.h"

#include <dirent.h>
#include <hiredis/hiredis.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

int rc_bench_sources_idle_main(int argc, char **argv);

#define MAX_COMPONENTS 4

typedef struct idle {
  rc_engine_t *eng;
  const char *names[MAX_COMPONENTS];
  int ncomp;
  uint64_t settle_ms, window_ms, waited_ms;
  bool counting;
  long wakeups;
  struct rusage thread0, self0;
  uint64_t rev0;
  uv_timer_t timer;
  uv_check_t check;
  char line[256];
} idle;

static long csw(const struct rusage *ru) { return ru->ru_nvcsw + ru->ru_nivcsw; }

static int threads(void) {
  FILE *f = fopen("/proc/self/status", "r");
  char l[256];
  int n = -1;
  while (f && fgets(l, sizeof l, f))
    if (sscanf(l, "Threads: %d", &n) == 1) break;
  if (f) fclose(f);
  return n;
}

/* Context switches (voluntary + involuntary) of this process's threads from
 * /proc/self/task, without the main thread when `skip_main`. */
static long task_csw(bool skip_main) {
  DIR *d = opendir("/proc/self/task");
  struct dirent *e;
  long total = 0;
  char path[300], l[256];
  while (d && (e = readdir(d))) {
    if (e->d_name[0] == '.' || (skip_main && atol(e->d_name) == (long)getpid())) continue;
    snprintf(path, sizeof path, "/proc/self/task/%s/status", e->d_name);
    FILE *f = fopen(path, "r");
    long v;
    while (f && fgets(l, sizeof l, f))
      if (sscanf(l, "voluntary_ctxt_switches: %ld", &v) == 1 ||
          sscanf(l, "nonvoluntary_ctxt_switches: %ld", &v) == 1)
        total += v;
    if (f) fclose(f);
  }
  if (d) closedir(d);
  return total;
}

static int ready_components(idle *w) {
  rc_snapshot_t *s = rc_snapshot_acquire(w->eng);
  int n = 0;
  for (int i = 0; i < w->ncomp; i++) n += s && rc_snapshot_get(s, w->names[i]) != NULL;
  rc_snapshot_release(s);
  return n;
}

/* ---- attached mode: the engine on this program's loop ---- */

static void on_check(uv_check_t *h) {
  idle *w = h->data;
  if (w->counting) w->wakeups++;
}

static void window_end(uv_timer_t *t) {
  idle *w = t->data;
  struct rusage th, self;
  getrusage(RUSAGE_THREAD, &th);
  getrusage(RUSAGE_SELF, &self);
  w->counting = false;
  snprintf(w->line, sizeof w->line,
           "mode=attached seconds=%.1f ready=%d/%d loop_wakeups=%ld loop_csw=%ld "
           "process_csw=%ld commits=%llu threads=%d", (double)w->window_ms / 1000,
           ready_components(w), w->ncomp, w->wakeups - 1, csw(&th) - csw(&w->thread0),
           csw(&self) - csw(&w->self0),
           (unsigned long long)(rc_engine_revision(w->eng) - w->rev0), threads());
  uv_stop(t->loop);
}

static void settled(uv_timer_t *t) { uv_stop(t->loop); }

/* Every 100 ms until every component holds its value (at most 30 s), then the settling
 * time, then the window: from here on the loop should sleep. */
static void wait_ready(uv_timer_t *t) {
  idle *w = t->data;
  w->waited_ms += 100;
  if (ready_components(w) < w->ncomp && w->waited_ms < 30000) return;
  uv_timer_stop(t);
  uv_timer_start(t, settled, w->settle_ms, 0);
}

static void start_window(idle *w) {
  uv_timer_start(&w->timer, window_end, w->window_ms, 0);
  getrusage(RUSAGE_THREAD, &w->thread0);
  getrusage(RUSAGE_SELF, &w->self0);
  w->rev0 = rc_engine_revision(w->eng);
  w->wakeups = 0;
  w->counting = true;
}

static void on_change(void *ud, const rc_snapshot_t *s, const rc_change_t *ch, size_t n) {
  (void)ud, (void)s, (void)ch, (void)n;
}

/* ---- the sources' first values, written before the engine starts ---- */

static bool redis_value(int port) {
  redisContext *c = redisConnect("127.0.0.1", port);
  redisReply *rep = c && !c->err ? redisCommand(c, "SET bench:idle {\"i\":0}") : NULL;
  bool ok = rep && rep->type == REDIS_REPLY_STATUS;
  if (!ok) fprintf(stderr, "reactcfg-bench sources-idle: cannot SET bench:idle\n");
  freeReplyObject(rep);
  if (c) redisFree(c);
  return ok;
}

static bool pg_value(const char *conninfo) {
  PGconn *c = PQconnectdb(conninfo);
  PGresult *r = PQexec(c, "INSERT INTO settings VALUES ('idle', 'k', '{\"i\": 0}') "
                          "ON CONFLICT (app, key) DO NOTHING");
  bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
  if (!ok) fprintf(stderr, "reactcfg-bench sources-idle: %s", PQerrorMessage(c));
  PQclear(r);
  PQfinish(c);
  return ok;
}

/* ---- own-thread mode ---- */

static void sleep_ms(uint64_t ms) {
  struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0) {}
}

/* Runs the engine on its own thread from the policy file at `policy_path` and fills
 * w->line as window_end does. Returns 0, or 1 after printing why. */
static int run_own_thread(idle *w, const char *policy_path) {
  rc_error err = {0};
  w->eng = rc_engine_new(&err);
  int rc = w->eng ? 0 : RC_ENOMEM;
  if (!rc) rc = rc_engine_load_policy(w->eng, policy_path, &err);
  if (!rc) rc = rc_subscribe(w->eng, "**", on_change, w, &err) > 0 ? 0 : RC_ENOMEM;
  if (!rc) rc = rc_engine_start(w->eng, &err);
  if (rc) {
    fprintf(stderr, "reactcfg-bench sources-idle: %s\n", err.message);
    rc_engine_free(w->eng);
    return 1;
  }
  for (int t = 0; t < 300 && ready_components(w) < w->ncomp; t++) sleep_ms(100);
  sleep_ms(w->settle_ms);
  long engine0 = task_csw(true), all0 = task_csw(false);
  w->rev0 = rc_engine_revision(w->eng);
  sleep_ms(w->window_ms);
  long engine1 = task_csw(true), all1 = task_csw(false);
  snprintf(w->line, sizeof w->line,
           "mode=thread seconds=%.1f ready=%d/%d loop_wakeups=- loop_csw=%ld "
           "process_csw=%ld commits=%llu threads=%d", (double)w->window_ms / 1000,
           ready_components(w), w->ncomp, engine1 - engine0, all1 - all0,
           (unsigned long long)(rc_engine_revision(w->eng) - w->rev0), threads());
  rc_engine_stop(w->eng);
  rc_engine_free(w->eng);
  return 0;
}

static int usage(void) {
  fprintf(stderr,
          "usage: reactcfg-bench sources-idle [--redis-port P] [--pg CONNINFO] [--file] "
          "[--env] [--own-thread] [--seconds S] [--settle-ms MS]\n"
          "  --pg needs examples/policies/postgres-settings/schema.sql in the database\n");
  return 2;
}

int rc_bench_sources_idle_main(int argc, char **argv) {
  static idle w;
  int redis_port = 0;
  const char *pg = NULL;
  bool file = false, env = false, own_thread = false;
  double seconds = 5;
  w.settle_ms = 1000;
  for (int i = 0; i < argc; i++) {
    if (!strcmp(argv[i], "--redis-port") && i + 1 < argc) redis_port = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--pg") && i + 1 < argc) pg = argv[++i];
    else if (!strcmp(argv[i], "--file")) file = true;
    else if (!strcmp(argv[i], "--env")) env = true;
    else if (!strcmp(argv[i], "--own-thread")) own_thread = true;
    else if (!strcmp(argv[i], "--seconds") && i + 1 < argc) seconds = atof(argv[++i]);
    else if (!strcmp(argv[i], "--settle-ms") && i + 1 < argc)
      w.settle_ms = (uint64_t)atol(argv[++i]);
    else return usage();
  }
  if ((!redis_port && !pg && !file && !env) || seconds <= 0 || (pg && strstr(pg, "]==]")))
    return usage();
  w.window_ms = (uint64_t)(seconds * 1000);

  /* The policy file (own-thread mode: watched while the engine runs) and rc.file's. */
  char dir[] = "/tmp/rc-bench-idle.XXXXXX", path[64] = "", policy_path[64];
  char policy[2048], list[64] = "";
  if (!mkdtemp(dir)) return 1;
  snprintf(policy_path, sizeof policy_path, "%s/policy.lua", dir);
  int n = snprintf(policy, sizeof policy,
                   "local rc = require 'reactcfg'\nreturn rc.policy { components = {\n");
  if (redis_port) {
    if (!redis_value(redis_port)) return rmdir(dir), 1;
    n += snprintf(policy + n, sizeof policy - (size_t)n,
                  "  redis = { source = rc.redis { addr = 'redis://127.0.0.1:%d/0', "
                  "key = 'bench:idle' } },\n", redis_port);
    w.names[w.ncomp++] = "redis";
  }
  if (pg) {
    if (!pg_value(pg)) return rmdir(dir), 1;
    /* The example's interval (30 s): its fallback poll falls outside the window. */
    n += snprintf(policy + n, sizeof policy - (size_t)n,
                  "  postgres = { source = rc.postgres { conninfo = [==[%s]==],\n"
                  "    query = 'SELECT key, value FROM settings WHERE app = $1',\n"
                  "    params = { 'idle' }, listen = 'config_changed',\n"
                  "    interval = '30s' } },\n",
                  pg);
    w.names[w.ncomp++] = "postgres";
  }
  if (file) {
    snprintf(path, sizeof path, "%s/idle.json", dir);
    FILE *f = fopen(path, "w");
    if (!f) {
      rmdir(dir);
      return 1;
    }
    fputs("{\"i\": 0}\n", f);
    fclose(f);
    n += snprintf(policy + n, sizeof policy - (size_t)n,
                  "  file = { source = rc.file '%s' },\n", path);
    w.names[w.ncomp++] = "file";
  }
  if (env) {
    setenv("RC_BENCH_IDLE", "0", 1);
    n += snprintf(policy + n, sizeof policy - (size_t)n,
                  "  env = { source = rc.env 'RC_BENCH_IDLE' },\n");
    w.names[w.ncomp++] = "env";
  }
  snprintf(policy + n, sizeof policy - (size_t)n, "} }\n");
  for (int i = 0; i < w.ncomp; i++)
    snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", i ? "," : "",
             w.names[i]);

  int rc = 1;
  if (own_thread) {
    FILE *f = fopen(policy_path, "w");
    if (f) {
      fputs(policy, f);
      fclose(f);
      rc = run_own_thread(&w, policy_path);
      unlink(policy_path);
    }
  } else {
    uv_loop_t loop;
    w.eng = bench_engine("sources-idle", policy, &loop, "**", on_change, &w);
    if (w.eng) {
      uv_timer_init(&loop, &w.timer);
      uv_check_init(&loop, &w.check);
      w.timer.data = w.check.data = &w;
      uv_check_start(&w.check, on_check);
      uv_timer_start(&w.timer, wait_ready, 100, 100);
      uv_run(&loop, UV_RUN_DEFAULT);  /* until ready and settled */
      start_window(&w);
      uv_run(&loop, UV_RUN_DEFAULT);  /* the window */
      uv_close((uv_handle_t *)&w.timer, NULL);
      uv_close((uv_handle_t *)&w.check, NULL);
      rc = 0;
      bench_engine_free(w.eng, &loop);
    }
  }
  if (rc == 0) printf("sources-idle sources=%s %s\n", list, w.line);
  if (*path) unlink(path);
  rmdir(dir);
  return rc;
}
