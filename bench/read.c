/* SPDX-License-Identifier: MIT (see LICENSE) */
/* read.c: `reactcfg-bench read`: nanoseconds per configuration read on 1 and 2 threads
 * while the engine (on its own thread) commits about 1,000 revisions per second, for
 * (a) rc_snapshot_acquire + rc_snapshot_get_int("a.server.port") + rc_snapshot_release
 * and (b) a reader with a compiled path (rc_reader_snapshot + rc_snapshot_get_int_path),
 * and, with --peer, (c) Viper's GetInt run by bench/peers/viper_read while the same
 * engine keeps committing. Each row is measured --reps times; one line per measurement:
 *   read mode=<m> threads=<n> rep=<i> reads=<n> seconds=<s> ns_per_read=<CPU ns>
 *        wall_ns_per_read=<x> mreads_per_s=<total> revisions_per_s=<commits meanwhile> */
#include "internal.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int rc_bench_read_main(int argc, char **argv);

/* The component read: a small service configuration, like a feature flag or a port on
 * a request path. Viper's file is the same object under "a". */
static const char CONFIG[] =
  "{\"server\": {\"host\": \"0.0.0.0\", \"port\": 8080, \"timeout_ms\": 2500,"
  " \"tls\": {\"enabled\": true, \"cert\": \"/etc/app/cert.pem\"}},"
  " \"db\": {\"url\": \"postgres://db/app\", \"pool\": {\"min\": 2, \"max\": 20}},"
  " \"features\": {\"search\": true, \"beta\": false, \"rate_limit\": 100},"
  " \"log\": {\"level\": \"info\", \"format\": \"json\"}}";

static const char POLICY[] =
  "local rc = require 'reactcfg'\n"
  "return rc.policy { components = {\n"
  "  a = rc.file 'a.json',\n"
  "  tick = { source = rc.env { name = 'RC_BENCH_TICK', interval = '1h' } },\n"
  "} }\n";

#define PATH_TEXT "a.server.port"
#define WANT 8080

static int64_t clock_ns(clockid_t id) {
  struct timespec ts;
  clock_gettime(id, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}
static int64_t mono_ns(void) { return clock_ns(CLOCK_MONOTONIC); }

/* ==== the writer: one rc_engine_setenv per millisecond, each a commit ==== */

typedef struct writer {
  rc_engine_t *eng;
  int rate;                 /* changes per second */
  atomic_int stop;
} writer;

static void *writer_main(void *arg) {
  writer *w = arg;
  struct timespec next;
  clock_gettime(CLOCK_MONOTONIC, &next);
  long period = 1000000000L / w->rate;
  char buf[32];
  for (unsigned long i = 1; !atomic_load(&w->stop); i++) {
    snprintf(buf, sizeof buf, "%lu", i);
    rc_engine_setenv(w->eng, "RC_BENCH_TICK", buf);
    next.tv_nsec += period;
    while (next.tv_nsec >= 1000000000L) {
      next.tv_nsec -= 1000000000L;
      next.tv_sec++;
    }
    clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL);
  }
  return NULL;
}

/* ==== the readers ==== */

enum { MODE_ACQUIRE, MODE_READER };
static const char *const MODE_NAMES[] = {"acquire_string", "reader_compiled"};

typedef struct shared {
  rc_engine_t *eng;
  const rc_path_t *path;
  int mode;
  atomic_int go, stop, ready;
} shared;

/* Each reader thread's count, on a cache line of its own. */
typedef struct slot {
  shared *sh;
  uint64_t reads;
  int64_t cpu_ns;           /* the thread's CPU time while reading */
  int bad;
  pthread_t t;
  char gap[64];
} slot;

static void *reader_main(void *arg) {
  slot *sl = arg;
  shared *sh = sl->sh;
  rc_reader_t *r = rc_reader_new(sh->eng);
  int64_t sum = 0, v = 0;
  uint64_t n = 0;
  int bad = 0;
  atomic_fetch_add(&sh->ready, 1);
  while (!atomic_load(&sh->go)) {}
  int64_t cpu0 = clock_ns(CLOCK_THREAD_CPUTIME_ID);
  if (sh->mode == MODE_ACQUIRE) {
    while (!atomic_load_explicit(&sh->stop, memory_order_relaxed)) {
      for (int i = 0; i < 256; i++) {
        rc_snapshot_t *s = rc_snapshot_acquire(sh->eng);
        bad += rc_snapshot_get_int(s, PATH_TEXT, &v) != 0;
        rc_snapshot_release(s);
        sum += v;
      }
      n += 256;
    }
  } else {
    while (!atomic_load_explicit(&sh->stop, memory_order_relaxed)) {
      for (int i = 0; i < 256; i++) {
        bad += rc_snapshot_get_int_path(rc_reader_snapshot(r), sh->path, &v) != 0;
        sum += v;
      }
      n += 256;
    }
  }
  sl->cpu_ns = clock_ns(CLOCK_THREAD_CPUTIME_ID) - cpu0;
  rc_reader_free(r);
  sl->reads = n;
  sl->bad = bad + (sum != (int64_t)n * WANT);
  return NULL;
}

/* Runs `threads` readers in `mode` for `seconds`; prints one line. */
static int measure(rc_engine_t *eng, const rc_path_t *path, int mode, int threads,
                   double seconds, int rep) {
  shared sh = {.eng = eng, .path = path, .mode = mode};
  slot sl[8];
  for (int i = 0; i < threads; i++) {
    sl[i].sh = &sh;
    sl[i].reads = 0;
    pthread_create(&sl[i].t, NULL, reader_main, &sl[i]);
  }
  while (atomic_load(&sh.ready) < threads) sched_yield();
  uint64_t rev0 = rc_engine_revision(eng);
  int64_t t0 = mono_ns();
  atomic_store(&sh.go, 1);
  struct timespec ts = {(time_t)seconds, (long)((seconds - (double)(time_t)seconds) * 1e9)};
  nanosleep(&ts, NULL);
  atomic_store(&sh.stop, 1);
  int64_t t1 = mono_ns();
  uint64_t rev1 = rc_engine_revision(eng);
  uint64_t total = 0;
  int64_t cpu = 0;
  int bad = 0;
  for (int i = 0; i < threads; i++) {
    pthread_join(sl[i].t, NULL);
    total += sl[i].reads;
    cpu += sl[i].cpu_ns;
    bad += sl[i].bad;
  }
  double secs = (double)(t1 - t0) / 1e9;
  /* ns_per_read: the readers' CPU time per read, what one read costs whatever else the
   * machine runs; wall_ns_per_read: wall time x threads per read (the same on an idle
   * machine); mreads_per_s: all threads' reads per wall-clock second. */
  printf("read mode=%s threads=%d rep=%d reads=%llu seconds=%.3f ns_per_read=%.2f"
         " wall_ns_per_read=%.2f mreads_per_s=%.2f revisions_per_s=%.0f%s\n",
         MODE_NAMES[mode], threads, rep, (unsigned long long)total, secs,
         (double)cpu / (double)total, secs * 1e9 * threads / (double)total,
         (double)total / secs / 1e6, (double)(rev1 - rev0) / secs, bad ? " bad=1" : "");
  fflush(stdout);
  return bad ? 1 : 0;
}

/* Runs the Viper peer once for `threads` goroutines and passes its line on, with the
 * engine's commit rate during it. */
static int run_peer(rc_engine_t *eng, const char *peer, const char *file, int threads,
                    double seconds, int rep) {
  char cmd[2048];
  snprintf(cmd, sizeof cmd, "'%s' '%s' %.3f %d '%s'", peer, file, seconds, threads,
           PATH_TEXT);
  uint64_t rev0 = rc_engine_revision(eng);
  int64_t t0 = mono_ns();
  FILE *p = popen(cmd, "r");
  if (!p) return 1;
  char line[512] = "";
  char got[512] = "";
  while (fgets(line, sizeof line, p))
    if (strncmp(line, "viper-read ", 11) == 0) snprintf(got, sizeof got, "%s", line);
  int st = pclose(p);
  double secs = (double)(mono_ns() - t0) / 1e9;
  uint64_t rev1 = rc_engine_revision(eng);
  if (st != 0 || !*got) {
    fprintf(stderr, "reactcfg-bench read: %s failed\n", cmd);
    return 1;
  }
  got[strcspn(got, "\n")] = '\0';
  /* "viper-read threads=.. reads=.. seconds=.. ns_per_read=.. mreads_per_s=.." */
  printf("read mode=viper_getint rep=%d %s revisions_per_s=%.0f\n", rep, got + 11,
         (double)(rev1 - rev0) / secs);
  fflush(stdout);
  return 0;
}

static int usage(void) {
  fprintf(stderr,
          "usage: reactcfg-bench read [--seconds S] [--reps N] [--rate R]\n"
          "                           [--peer VIPER_READ]\n"
          "  S seconds per measurement (default 1), N measurements per row (default 5),\n"
          "  R engine commits per second meanwhile (default 1000); VIPER_READ is the\n"
          "  bench/peers/viper_read program, run for 1 and 2 goroutines.\n");
  return 2;
}

int rc_bench_read_main(int argc, char **argv) {
  double seconds = 1;
  int reps = 5, rate = 1000;
  const char *peer = NULL;
  for (int i = 0; i < argc; i++) {
    if (!strcmp(argv[i], "--seconds") && i + 1 < argc) seconds = atof(argv[++i]);
    else if (!strcmp(argv[i], "--reps") && i + 1 < argc) reps = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--rate") && i + 1 < argc) rate = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--peer") && i + 1 < argc) peer = argv[++i];
    else return usage();
  }
  if (seconds <= 0 || reps < 1 || rate < 1) return usage();
  char dir[] = "/tmp/rc-bench-read.XXXXXX";
  if (!mkdtemp(dir)) {
    perror("mkdtemp");
    return 1;
  }
  char a_path[256], v_path[256], policy_path[256];
  snprintf(a_path, sizeof a_path, "%s/a.json", dir);
  snprintf(v_path, sizeof v_path, "%s/viper.json", dir);
  snprintf(policy_path, sizeof policy_path, "%s/policy.lua", dir);
  FILE *f = fopen(a_path, "w");
  fputs(CONFIG, f);
  fclose(f);
  f = fopen(v_path, "w");
  fprintf(f, "{\"a\": %s}\n", CONFIG);
  fclose(f);
  f = fopen(policy_path, "w");
  fputs(POLICY, f);
  fclose(f);
  setenv("RC_BENCH_TICK", "0", 1);

  rc_error err;
  rc_engine_t *eng = rc_engine_new(&err);
  if (!eng) return 1;
  rc_engine_set_policy_reload(eng, false);
  if (rc_engine_load_policy(eng, policy_path, &err) || rc_engine_start(eng, &err)) {
    fprintf(stderr, "reactcfg-bench read: %s\n", err.message);
    return 1;
  }
  rc_path_t *path = rc_path_compile(PATH_TEXT, &err);
  writer w = {.eng = eng, .rate = rate};
  pthread_t wt;
  pthread_create(&wt, NULL, writer_main, &w);
  int bad = 0;
  /* Rows interleaved, so that a burst of load from elsewhere on the machine spreads
   * over all of them rather than spoiling one. */
  for (int rep = 1; rep <= reps; rep++) {
    for (int threads = 1; threads <= 2; threads++) {
      bad |= measure(eng, path, MODE_ACQUIRE, threads, seconds, rep);
      bad |= measure(eng, path, MODE_READER, threads, seconds, rep);
      if (peer) bad |= run_peer(eng, peer, v_path, threads, seconds, rep);
    }
  }
  atomic_store(&w.stop, 1);
  pthread_join(wt, NULL);
  rc_path_free(path);
  rc_engine_stop(eng);
  rc_engine_free(eng);
  unlink(a_path);
  unlink(v_path);
  unlink(policy_path);
  rmdir(dir);
  return bad;
}
