/* SPDX-License-Identifier: MIT (see LICENSE) */
/* reactcfg_bench.c: `reactcfg-bench`, timing the data layer on real files. Subcommands
 * are looked up in one table; `diff` parses two JSON files and diffs the trees, printing
 * one line (changes=, parse_ms=, diff_ms=) that scripts can parse. Medians of N runs,
 * each timed with CLOCK_MONOTONIC. */
#include "parse.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *prog = "reactcfg-bench";

static int usage(void) {
  fprintf(stderr,
          "usage: %s diff OLD.json NEW.json [--iterations N]\n"
          "       %s parse FILE [--format json|yaml|toml|dotenv] [--iterations N]\n"
          "       %s latency --help\n"
          "       %s pipeline [--updates N] [--policy trivial|merge]\n"
          "       %s http-fleet --base URL [--sources N] [--seconds S]\n"
          "       %s consul-rtt --addr URL [--writes N] [--gap-ms MS]\n"
          "       %s etcd-latency --endpoint URL [--puts N] [--gap-ms MS]\n"
          "       %s read [--seconds S] [--reps N] [--rate R] [--peer VIPER_READ]\n"
          "       %s reload [--reloads N]\n"
          "       %s redis-latency --port PORT [--host H] [--writes N] [--gap-ms MS]\n"
          "       %s pg-latency --conninfo STR [--updates N] [--gap-ms MS]\n"
          "                  [--psql-poll-ms MS]\n"
          "       %s sources-idle [--redis-port P] [--pg CONNINFO] [--file] [--env]\n"
          "                  [--own-thread] [--seconds S] [--settle-ms MS]\n"
          "       %s load [--components N]\n"
          "       %s admin [--updates N] [--rounds R] [--components C] [--requests Q]\n"
          "       %s stall POLICY\n"
          "  diff     parse both files and diff the trees; prints\n"
          "           changes=<n> parse_ms=<median ms to parse both> diff_ms=<median ms>\n"
          "  parse    parse one file N times; prints\n"
          "           format=<f> bytes=<n> parse_ms=<median ms> mb_per_s=<throughput>\n"
          "  latency  save-to-callback latency of a watched file (see --help)\n"
          "  pipeline small updates per second through the whole engine; prints\n"
          "           pipeline policy=<p> updates=<n> commits=<n> seconds=<s>\n"
          "           updates_per_s=<r> us_per_update=<u>\n"
          "  http-fleet N HTTP sources polling BASE/f<i>.json every second; prints\n"
          "           http-fleet sources=<n> ... cpu_pct=<%% of one core> rss_mb=<m>\n"
          "  consul-rtt KV write -> C callback through a blocking query; prints\n"
          "           consul-rtt writes=<n> seen=<n> p50_us=.. p90_us=.. p99_us=.. max_us=..\n"
          "  etcd-latency put -> C callback through the etcd watch, beside etcdctl watch\n"
          "  read     ns per read on 1 and 2 threads while the engine commits; prints\n"
          "           read mode=<m> threads=<n> rep=<i> ... ns_per_read=<x>\n"
          "  reload   requested reload -> reload.completed through 0-100 modules, and a\n"
          "           refused one; prints reload modules=<n> outcome=<o> ... p50_us=..\n"
          "  redis-latency SET -> C callback through rc.redis, beside redis-cli SUBSCRIBE;\n"
          "           prints redis-latency peer=<p> writes=<n> seen=<n> p50_us=.. and\n"
          "           redis-latency paired peer=<p> both=<n> diff_p50_us=..\n"
          "  pg-latency UPDATE + NOTIFY -> C callback through rc.postgres, beside a libpq\n"
          "           LISTEN client and psql; prints lines like redis-latency's\n"
          "  sources-idle loop wakeups and context switches of an idle engine over S s;\n"
          "           prints sources-idle sources=<list> ... loop_wakeups=<n> ...\n"
          "  load     a policy of N file components: load (as --check), start, reload,\n"
          "           free; prints load components=<n> check_ms= load_ms= start_ms= ...\n"
          "  admin    the pipeline with /metrics scraped every 100 ms beside without, and\n"
          "           /metrics latency with C components; prints admin pipeline ...\n"
          "           scraped_over_plain=<x> and admin latency path=<p> ... p99_us=..\n"
          "  stall    the longest the running engine's loop is held when POLICY replaces\n"
          "           its policy file; prints stall policy=<f> outcome=<o> budget_ms=..\n"
          "           reload_ms=.. max_gap_ms=.. past_budget_ms=..\n",
          prog, prog, prog, prog, prog, prog, prog, prog, prog, prog, prog, prog, prog, prog,
          prog);
  return 1;
}

static double now_ms(void) { return (double)rc__mono_ns() / 1e6; }

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static double median(double *v, size_t n) {
  qsort(v, n, sizeof *v, cmp_double);
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* A whole file, with the padding the parsers may read past the end. */
typedef struct file_buf {
  char *data;
  size_t len, cap;
} file_buf;

static int read_file(const char *path, file_buf *fb) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    fprintf(stderr, "%s: %s: %s\n", prog, path, strerror(errno));
    return -1;
  }
  size_t cap = 1 << 16, len = 0;
  char *data = malloc(cap);
  for (;;) {
    if (!data) {
      fclose(f);
      fprintf(stderr, "%s: %s: out of memory\n", prog, path);
      return -1;
    }
    len += fread(data + len, 1, cap - len - RC__PARSE_PADDING, f);
    if (len < cap - RC__PARSE_PADDING) break;
    char *bigger = realloc(data, cap * 2);
    if (!bigger) free(data);
    data = bigger;
    cap *= 2;
  }
  int bad = ferror(f);
  fclose(f);
  if (bad) {
    fprintf(stderr, "%s: %s: read error\n", prog, path);
    free(data);
    return -1;
  }
  memset(data + len, 0, RC__PARSE_PADDING);
  fb->data = data;
  fb->len = len;
  fb->cap = cap;
  return 0;
}

static rc_value_t *parse(const char *path, const file_buf *fb) {
  rc_value_t *v = NULL;
  rc_error err;
  if (rc__parse_json(fb->data, fb->len, fb->cap, path, NULL, &v, &err)) {
    fprintf(stderr, "%s: %s:%d:%d: %s\n", prog, path, err.line, err.column, err.message);
    return NULL;
  }
  return v;
}

static int cmd_diff(int argc, char **argv) {
  const char *paths[2] = {NULL, NULL};
  long iterations = 0;
  int np = 0;
  for (int i = 0; i < argc; i++) {
    if (strcmp(argv[i], "--iterations") == 0 && i + 1 < argc) {
      char *end;
      iterations = strtol(argv[++i], &end, 10);
      if (*end || iterations < 1) return usage();
    } else if (argv[i][0] == '-' || np == 2) {
      return usage();
    } else {
      paths[np++] = argv[i];
    }
  }
  if (np != 2) return usage();
  file_buf fb[2];
  if (read_file(paths[0], &fb[0])) return 1;
  if (read_file(paths[1], &fb[1])) {
    free(fb[0].data);
    return 1;
  }
  int rc = 1;
  rc__changeset cs;
  rc__changeset_init(&cs);
  double *parse_ms = NULL, *diff_ms = NULL;

  /* warm-up (page faults, the parser's buffers), then one timed round to size N */
  rc_value_t *a = parse(paths[0], &fb[0]), *b = a ? parse(paths[1], &fb[1]) : NULL;
  if (!a || !b) goto out;
  if (rc__diff(a, b, "", &cs)) goto oom;
  rc__value_unref(a);
  rc__value_unref(b);
  double t0 = now_ms();
  a = parse(paths[0], &fb[0]);
  b = a ? parse(paths[1], &fb[1]) : NULL;
  if (!a || !b) goto out;
  rc__changeset_reset(&cs);
  if (rc__diff(a, b, "", &cs)) goto oom;
  double round_ms = now_ms() - t0;
  if (!iterations) {
    iterations = (long)(2000.0 / (round_ms > 0.001 ? round_ms : 0.001)) + 1;
    if (iterations < 5) iterations = 5;
    if (iterations > 1000) iterations = 1000;
  }
  parse_ms = malloc(sizeof(double) * (size_t)iterations);
  diff_ms = malloc(sizeof(double) * (size_t)iterations);
  if (!parse_ms || !diff_ms) goto oom;

  for (long i = 0; i < iterations; i++) {
    rc__value_unref(a);
    rc__value_unref(b);
    double s = now_ms();
    a = parse(paths[0], &fb[0]);
    b = a ? parse(paths[1], &fb[1]) : NULL;
    parse_ms[i] = now_ms() - s;
    if (!a || !b) goto out;
  }
  for (long i = 0; i < iterations; i++) {
    rc__changeset_reset(&cs);
    double s = now_ms();
    int r = rc__diff(a, b, "", &cs);
    rc__diff_finish(&cs);
    diff_ms[i] = now_ms() - s;
    if (r) goto oom;
  }
  printf("changes=%zu parse_ms=%.3f diff_ms=%.3f\n", cs.n,
         median(parse_ms, (size_t)iterations), median(diff_ms, (size_t)iterations));
  rc = 0;
  goto out;
oom:
  fprintf(stderr, "%s: out of memory\n", prog);
out:
  rc__value_unref(a);
  rc__value_unref(b);
  rc__changeset_free(&cs);
  free(parse_ms);
  free(diff_ms);
  free(fb[0].data);
  free(fb[1].data);
  return rc;
}

int rc_bench_latency_main(int argc, char **argv); /* bench/latency.c */
int rc_bench_parse_main(int argc, char **argv);   /* bench/parse_bench.c */
int rc_bench_pipeline_main(int argc, char **argv); /* bench/pipeline.c */
int rc_bench_fleet_main(int argc, char **argv);    /* bench/fleet.c */
int rc_bench_consul_rtt_main(int argc, char **argv); /* bench/consul_rtt.c */
int rc_bench_etcd_latency_main(int argc, char **argv); /* bench/etcd_latency.c */
int rc_bench_read_main(int argc, char **argv);     /* bench/read.c */
int rc_bench_reload_main(int argc, char **argv);   /* bench/reload.c */
int rc_bench_redis_latency_main(int argc, char **argv); /* bench/redis_latency.c */
int rc_bench_pg_latency_main(int argc, char **argv);    /* bench/pg_latency.c */
int rc_bench_sources_idle_main(int argc, char **argv);  /* bench/sources_idle.c */
int rc_bench_load_main(int argc, char **argv);     /* bench/load.c */
int rc_bench_stall_main(int argc, char **argv);    /* bench/stall.c */
int rc_bench_admin_main(int argc, char **argv);    /* bench/admin.c */

/* Subcommands. Each gets the arguments after its name. */
static const struct {
  const char *name;
  int (*run)(int argc, char **argv);
} commands[] = {
  {"diff", cmd_diff},
  {"latency", rc_bench_latency_main},
  {"load", rc_bench_load_main},
  {"parse", rc_bench_parse_main},
  {"pipeline", rc_bench_pipeline_main},
  {"http-fleet", rc_bench_fleet_main},
  {"consul-rtt", rc_bench_consul_rtt_main},
  {"etcd-latency", rc_bench_etcd_latency_main},
  {"read", rc_bench_read_main},
  {"reload", rc_bench_reload_main},
  {"stall", rc_bench_stall_main},
  {"redis-latency", rc_bench_redis_latency_main},
  {"pg-latency", rc_bench_pg_latency_main},
  {"sources-idle", rc_bench_sources_idle_main},
  {"admin", rc_bench_admin_main},
};

int main(int argc, char **argv) {
  if (argc < 2) return usage();
  for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
    if (strcmp(argv[1], commands[i].name) == 0) return commands[i].run(argc - 2, argv + 2);
  fprintf(stderr, "%s: unknown command '%s'\n", prog, argv[1]);
  return usage();
}
