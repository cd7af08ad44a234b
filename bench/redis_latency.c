/* SPDX-License-Identifier: MIT (see LICENSE) */
/* redis_latency.c: `reactcfg-bench redis-latency`: the time from a Redis SET of the
 * watched key (sent) to the engine's C callback holding the new value, through rc.redis
 * (a keyspace notification, then the source's read of the key), beside `redis-cli
 * SUBSCRIBE` on the key's keyspace channel in the same run, on the same writes (the time
 * its "message" line is read here: redis-cli is told of the write but reads no value).
 * Writes come from a second thread through hiredis's blocking API, one every `gap`; every
 * timestamp is CLOCK_REALTIME. The server must have keyspace notifications on for
 * strings (`notify-keyspace-events K$` at least), since redis-cli needs them whatever the
 * engine does. One line per watcher:
 * redis-latency peer=<reactcfg|redis-cli> writes=<n> seen=<n> p50_us=.. p90_us=..
 * p99_us=.. max_us=.. */
#include "bench_engine.h"

#include <hiredis/hiredis.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

int rc_bench_redis_latency_main(int argc, char **argv);

#define MAX_WRITES 2000
#define KEY "bench:latency"

typedef struct bench {
  const char *host;
  int port, n, gap_ms;
  _Atomic int64_t set_ns[MAX_WRITES + 1];
  _Atomic int64_t ours_ns[MAX_WRITES + 1];
  _Atomic int64_t cli_ns[MAX_WRITES + 1];
  _Atomic bool engine_ready, cli_ready, done;
  FILE *cli;               /* redis-cli SUBSCRIBE's stdout */
} bench;

/* Sends SET KEY {"i": i}; returns the time it was sent, or 0 when it failed. */
static int64_t set_value(redisContext *c, int i) {
  char val[32];
  snprintf(val, sizeof val, "{\"i\": %d}", i);
  int64_t sent = rc__real_ns();
  redisReply *rep = redisCommand(c, "SET %s %s", KEY, val);
  bool ok = rep && rep->type == REDIS_REPLY_STATUS;
  freeReplyObject(rep);
  return ok ? sent : 0;
}

/* Waits (up to 10 s) until both watchers hold the first value, then writes 1..n. */
static void *writer(void *arg) {
  bench *b = arg;
  redisContext *c = redisConnect(b->host, b->port);
  for (int t = 0;
       t < 1000 && !(atomic_load(&b->engine_ready) && atomic_load(&b->cli_ready)); t++)
    usleep(10000);
  usleep(300000); /* both watchers settle */
  for (int i = 1; c && !c->err && i <= b->n; i++) {
    usleep((useconds_t)b->gap_ms * 1000);
    atomic_store(&b->set_ns[i], set_value(c, i));
  }
  usleep(500000);
  atomic_store(&b->done, true);
  if (c) redisFree(c);
  return NULL;
}

/* redis-cli prints each pub/sub message as three lines (kind, channel, payload) and
 * flushes it. The k-th "set" message is the k-th SET, since nothing else writes the key
 * while it runs: stamped when its first line is read. */
static void *cli_reader(void *arg) {
  bench *b = arg;
  char line[512];
  int64_t stamp = 0;
  int lines_left = 0, sets = 0;
  bool subscribing = false;
  while (fgets(line, sizeof line, b->cli)) {
    int64_t now = rc__real_ns();
    line[strcspn(line, "\r\n")] = '\0';
    if (lines_left == 0) {
      subscribing = strcmp(line, "subscribe") == 0;
      if (subscribing || strcmp(line, "message") == 0) lines_left = 2, stamp = now;
      continue;
    }
    if (--lines_left > 0) continue; /* the channel */
    if (subscribing) atomic_store(&b->cli_ready, true);
    else if (strcmp(line, "set") == 0 && ++sets <= b->n)
      atomic_store(&b->cli_ns[sets], stamp);
  }
  return NULL;
}

static void on_change(void *ud, const rc_snapshot_t *s, const rc_change_t *ch, size_t n) {
  (void)ch, (void)n;
  bench *b = ud;
  int64_t i = -1;
  if (rc_snapshot_get_int(s, "r.i", &i) != 0) return;
  if (i == 0) atomic_store(&b->engine_ready, true);
  if (i > 0 && i <= b->n && atomic_load(&b->ours_ns[i]) == 0)
    atomic_store(&b->ours_ns[i], rc__real_ns());
}

static void report(const char *peer, bench *b, const _Atomic int64_t *seen_ns) {
  char prefix[64];
  snprintf(prefix, sizeof prefix, "redis-latency peer=%s writes=%d", peer, b->n);
  bench_latency_line(prefix, b->set_ns, seen_ns, b->n);
  if (seen_ns != b->ours_ns) {
    snprintf(prefix, sizeof prefix, "redis-latency paired peer=%s", peer);
    bench_paired_line(prefix, b->ours_ns, seen_ns, b->n);
  }
}

/* redis-cli SUBSCRIBE on the key's keyspace channel, its stdout a pipe read by `b->cli`. */
static pid_t start_cli(bench *b) {
  int fds[2];
  if (pipe(fds) != 0) return -1;
  char port[16];
  snprintf(port, sizeof port, "%d", b->port);
  pid_t pid = fork();
  if (pid == 0) {
    dup2(fds[1], 1);
    close(fds[0]);
    close(fds[1]);
    execlp("redis-cli", "redis-cli", "-h", b->host, "-p", port, "SUBSCRIBE",
           "__keyspace@0__:" KEY, (char *)NULL);
    _exit(127);
  }
  close(fds[1]);
  if (pid < 0) {
    close(fds[0]);
    return -1;
  }
  b->cli = fdopen(fds[0], "r");
  return pid;
}

int rc_bench_redis_latency_main(int argc, char **argv) {
  static bench b;
  b.host = "127.0.0.1";
  b.n = 200;
  b.gap_ms = 20;
  for (int i = 0; i < argc; i++) {
    if (!strcmp(argv[i], "--host") && i + 1 < argc) b.host = argv[++i];
    else if (!strcmp(argv[i], "--port") && i + 1 < argc) b.port = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--writes") && i + 1 < argc) b.n = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--gap-ms") && i + 1 < argc) b.gap_ms = atoi(argv[++i]);
    else b.port = 0, i = argc;
  }
  if (b.port <= 0 || b.n < 1 || b.n > MAX_WRITES || b.gap_ms < 0) {
    fprintf(stderr, "usage: reactcfg-bench redis-latency --port PORT [--host H] "
                    "[--writes N (<= %d)] [--gap-ms MS]\n", MAX_WRITES);
    return 2;
  }
  /* The first value, before either watcher starts: both begin from it. */
  redisContext *c = redisConnect(b.host, b.port);
  if (!c || c->err || !set_value(c, 0)) {
    fprintf(stderr, "reactcfg-bench redis-latency: cannot SET %s at %s:%d: %s\n", KEY,
            b.host, b.port, c && c->err ? c->errstr : "no answer");
    if (c) redisFree(c);
    return 1;
  }
  redisFree(c);
  /* The peer is not instrumented: a sanitizer run's preloaded runtime (the specs') must
   * not reach it (psql hung at exit with ASan preloaded). Only our children read it. */
  unsetenv("LD_PRELOAD");
  pid_t cli = start_cli(&b);
  if (cli < 0 || !b.cli) return 1;
  pthread_t rd, wr;
  pthread_create(&rd, NULL, cli_reader, &b);

  char policy[512];
  snprintf(policy, sizeof policy,
           "local rc = require 'reactcfg'\nreturn rc.policy { components = {\n"
           "  r = { source = rc.redis { addr = 'redis://%s:%d/0', key = '" KEY "' },\n"
           "        startup = 'default' },\n} }\n", b.host, b.port);
  uv_loop_t loop;
  rc_engine_t *eng = bench_engine("redis-latency", policy, &loop, "r", on_change, &b);
  if (!eng) {
    kill(cli, SIGTERM);
    waitpid(cli, NULL, 0);
    pthread_join(rd, NULL);
    return 1;
  }
  pthread_create(&wr, NULL, writer, &b);
  bench_run_until(&loop, &b.done);
  pthread_join(wr, NULL);
  kill(cli, SIGTERM);
  waitpid(cli, NULL, 0);
  pthread_join(rd, NULL);
  fclose(b.cli);
  report("reactcfg", &b, b.ours_ns);
  report("redis-cli", &b, b.cli_ns);
  bench_engine_free(eng, &loop);
  return 0;
}
