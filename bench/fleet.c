/* SPDX-License-Identifier: MIT (see LICENSE) */
/* fleet.c: `reactcfg-bench http-fleet`: one engine with N HTTP sources polling a local
 * server every second (scripts/bench serves N small files from a real nginx, so after
 * the first round nearly every answer is 304). After a warm-up it measures, over a
 * window, the process's CPU time (user + system, as % of one core, and per poll due in
 * the window), and its resident memory. One line: http-fleet sources=<n> interval_s=<i>
 * present_at_start=<k> seconds=<s> cpu_pct=<p> user_pct=<u> sys_pct=<y> us_per_poll=<q>
 * rss_mb=<m> commits=<c>. */
#include "bench_engine.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

int rc_bench_fleet_main(int argc, char **argv);

/* The process's CPU time in seconds: in user space and in the kernel (for a fleet on
 * loopback the kernel's share includes the server's side of TCP delivery, which runs in
 * the sender's system calls). */
static void cpu_seconds(double *user, double *sys) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  *user = (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6;
  *sys = (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

/* Current resident set in MB (from /proc/self/statm). */
static double rss_mb(void) {
  FILE *f = fopen("/proc/self/statm", "r");
  long pages = 0, rss = 0;
  if (f) {
    if (fscanf(f, "%ld %ld", &pages, &rss) != 2) rss = 0;
    fclose(f);
  }
  return (double)rss * (double)sysconf(_SC_PAGESIZE) / 1048576.0;
}

static void count_commit(void *ud, const rc_snapshot_t *s, const rc_change_t *c, size_t n) {
  (void)s, (void)c, (void)n;
  (*(uint64_t *)ud)++;
}

static void stop_cb(uv_timer_t *t) { *(bool *)t->data = true; }

static void run_for(uv_loop_t *loop, double seconds) {
  bool done = false;
  uv_timer_t t;
  uv_timer_init(loop, &t);
  t.data = &done;
  uv_timer_start(&t, stop_cb, (uint64_t)(seconds * 1000), 0);
  while (!done) uv_run(loop, UV_RUN_ONCE);
  uv_close((uv_handle_t *)&t, NULL);
  uv_run(loop, UV_RUN_NOWAIT);
}

int rc_bench_fleet_main(int argc, char **argv) {
  const char *base = NULL, *ca = NULL, *version = NULL;
  int n = 1000;
  double seconds = 20, warmup = 5, interval = 1;
  for (int i = 0; i < argc; i++) {
    if (!strcmp(argv[i], "--base") && i + 1 < argc) base = argv[++i];
    else if (!strcmp(argv[i], "--sources") && i + 1 < argc) n = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--seconds") && i + 1 < argc) seconds = atof(argv[++i]);
    else if (!strcmp(argv[i], "--warmup") && i + 1 < argc) warmup = atof(argv[++i]);
    else if (!strcmp(argv[i], "--ca") && i + 1 < argc) ca = argv[++i];
    else if (!strcmp(argv[i], "--interval") && i + 1 < argc) interval = atof(argv[++i]);
    else if (!strcmp(argv[i], "--http-version") && i + 1 < argc) version = argv[++i];
    else base = NULL, i = argc;
  }
  if (!base || n < 1) {
    fprintf(stderr, "usage: reactcfg-bench http-fleet --base http://127.0.0.1:PORT/ "
                    "[--sources N] [--seconds S] [--warmup S] [--interval S] [--ca FILE]\n"
                    "       [--http-version 1.1|2]\n"
                    "  polls BASE/f<i>.json for i in 1..N every --interval seconds (1);\n"
                    "  --ca: the CA file for an https BASE; --http-version: rc.http's\n"
                    "  http_version (default 1.1)\n");
    return 2;
  }
  rc__buf pol;
  rc__buf_init(&pol);
  rc__buf_printf(&pol, "local rc = require 'reactcfg'\nlocal c = {}\nfor i = 1, %d do\n"
                 "  c['f' .. i] = { source = rc.http { url = '%sf' .. i .. '.json', "
                 "interval = '%gms'", n, base, interval * 1000);
  if (ca) rc__buf_printf(&pol, ", ca_file = '%s'", ca);
  if (version) rc__buf_printf(&pol, ", http_version = '%s'", version);
  rc__buf_adds(&pol, " } }\nend\nreturn rc.policy { components = c }\n");
  uint64_t commits = 0;
  uv_loop_t loop;
  rc_engine_t *eng = pol.oom ? NULL : bench_engine("http-fleet", pol.p, &loop, "**",
                                                   count_commit, &commits);
  rc__buf_free(&pol);
  if (!eng) return 1;
  size_t present = 0;
  rc_snapshot_t *s = rc_snapshot_acquire(eng);
  present = rc_value_len(rc_snapshot_root(s));
  rc_snapshot_release(s);
  run_for(&loop, warmup);
  uint64_t commits0 = commits;
  double u0, s0, u1, s1;
  cpu_seconds(&u0, &s0);
  uint64_t t0 = rc__mono_ns();
  run_for(&loop, seconds);
  double wall = (double)(rc__mono_ns() - t0) / 1e9;
  cpu_seconds(&u1, &s1);
  double user = u1 - u0, sys = s1 - s0;
  double polls = n * wall / interval; /* what the fleet is due to make in the window */
  printf("http-fleet sources=%d interval_s=%g present_at_start=%zu seconds=%.1f "
         "cpu_pct=%.2f user_pct=%.2f sys_pct=%.2f us_per_poll=%.1f rss_mb=%.1f "
         "commits=%llu\n",
         n, interval, present, wall, 100.0 * (user + sys) / wall, 100.0 * user / wall,
         100.0 * sys / wall, 1e6 * (user + sys) / polls, rss_mb(),
         (unsigned long long)(commits - commits0));
  fflush(stdout);
  bench_engine_free(eng, &loop);
  return present == (size_t)n ? 0 : 1;
}
