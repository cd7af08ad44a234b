/* SPDX-License-Identifier: MIT (see LICENSE) */
/* etcd_latency.c: `reactcfg-bench etcd-latency`: the time from an etcd put (sent) to
 * the engine's C callback holding the new value, through rc.etcd's watch stream, beside
 * `etcdctl watch` on the same key in the same run (the reference client: the time its
 * output line is read here). Puts go through the JSON gateway with libcurl from a second
 * thread; every timestamp is CLOCK_REALTIME. One line per watcher:
 * etcd-latency peer=<reactcfg|etcdctl> puts=<n> seen=<n> p50_us=.. p90_us=.. p99_us=..
 * max_us=.. */
#include "bench_engine.h"

#include <curl/curl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

int rc_bench_etcd_latency_main(int argc, char **argv);

#define MAX_PUTS 2000

typedef struct bench {
  const char *endpoint;
  int n, gap_ms;
  _Atomic int64_t put_ns[MAX_PUTS + 1];
  _Atomic int64_t ours_ns[MAX_PUTS + 1];
  _Atomic int64_t ctl_ns[MAX_PUTS + 1];
  _Atomic bool done;
  FILE *ctl;               /* etcdctl watch's stdout */
} bench;

static size_t sink(char *p, size_t s, size_t n, void *ud) {
  (void)p, (void)ud;
  return s * n;
}

/* Base64 of short ASCII text (the gateway wants keys and values encoded). */
static void b64(const char *in, char *out) {
  static const char t[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  size_t n = strlen(in), o = 0;
  for (size_t i = 0; i < n; i += 3) {
    unsigned v = (unsigned char)in[i] << 16;
    if (i + 1 < n) v |= (unsigned char)in[i + 1] << 8;
    if (i + 2 < n) v |= (unsigned char)in[i + 2];
    out[o++] = t[(v >> 18) & 63];
    out[o++] = t[(v >> 12) & 63];
    out[o++] = i + 1 < n ? t[(v >> 6) & 63] : '=';
    out[o++] = i + 2 < n ? t[v & 63] : '=';
  }
  out[o] = '\0';
}

static void *writer(void *arg) {
  bench *b = arg;
  CURL *h = curl_easy_init();
  char url[512], body[256], k[64], v[64], val[32];
  snprintf(url, sizeof url, "%s/v3/kv/put", b->endpoint);
  curl_easy_setopt(h, CURLOPT_URL, url);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, sink);
  b64("bench/latency", k);
  usleep(500000); /* both watchers settle */
  for (int i = 1; i <= b->n; i++) {
    usleep((useconds_t)b->gap_ms * 1000);
    snprintf(val, sizeof val, "{\"i\":%d}", i);
    b64(val, v);
    snprintf(body, sizeof body, "{\"key\":\"%s\",\"value\":\"%s\"}", k, v);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    /* From the put being sent: etcd tells watchers before it answers the put. */
    int64_t sent = rc__real_ns();
    if (curl_easy_perform(h) == CURLE_OK) atomic_store(&b->put_ns[i], sent);
  }
  usleep(500000);
  atomic_store(&b->done, true);
  curl_easy_cleanup(h);
  return NULL;
}

/* etcdctl watch prints "PUT", the key, the value: stamp each value line. */
static void *ctl_reader(void *arg) {
  bench *b = arg;
  char line[512];
  while (fgets(line, sizeof line, b->ctl)) {
    int64_t now = rc__real_ns();
    int i = 0;
    if (sscanf(line, "{\"i\":%d}", &i) == 1 && i > 0 && i <= b->n &&
        atomic_load(&b->ctl_ns[i]) == 0)
      atomic_store(&b->ctl_ns[i], now);
  }
  return NULL;
}

static void on_change(void *ud, const rc_snapshot_t *s, const rc_change_t *ch, size_t n) {
  (void)ch, (void)n;
  bench *b = ud;
  int64_t i = 0;
  if (rc_snapshot_get_int(s, "k.i", &i) == 0 && i > 0 && i <= b->n &&
      atomic_load(&b->ours_ns[i]) == 0)
    atomic_store(&b->ours_ns[i], rc__real_ns());
}

static void report(const char *peer, bench *b, const _Atomic int64_t *seen_ns) {
  char prefix[64];
  snprintf(prefix, sizeof prefix, "etcd-latency peer=%s puts=%d", peer, b->n);
  bench_latency_line(prefix, b->put_ns, seen_ns, b->n);
}

int rc_bench_etcd_latency_main(int argc, char **argv) {
  static bench b;
  b.n = 200;
  b.gap_ms = 20;
  for (int i = 0; i < argc; i++) {
    if (!strcmp(argv[i], "--endpoint") && i + 1 < argc) b.endpoint = argv[++i];
    else if (!strcmp(argv[i], "--puts") && i + 1 < argc) b.n = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--gap-ms") && i + 1 < argc) b.gap_ms = atoi(argv[++i]);
    else b.endpoint = NULL, i = argc;
  }
  if (!b.endpoint || b.n < 1 || b.n > MAX_PUTS) {
    fprintf(stderr, "usage: reactcfg-bench etcd-latency --endpoint http://127.0.0.1:PORT "
                    "[--puts N (<= %d)] [--gap-ms MS]\n", MAX_PUTS);
    return 2;
  }
  /* The reference watcher: etcdctl watch, its output read by a thread. */
  int fds[2];
  if (pipe(fds) != 0) return 1;
  pid_t ctl = fork();
  if (ctl == 0) {
    dup2(fds[1], 1);
    close(fds[0]);
    close(fds[1]);
    setenv("ETCDCTL_API", "3", 1);
    execlp("etcdctl", "etcdctl", "--endpoints", b.endpoint, "watch", "bench/latency",
           (char *)NULL);
    _exit(127);
  }
  close(fds[1]);
  b.ctl = fdopen(fds[0], "r");
  pthread_t rd, wr;
  pthread_create(&rd, NULL, ctl_reader, &b);

  char policy[512];
  snprintf(policy, sizeof policy,
           "local rc = require 'reactcfg'\nreturn rc.policy { components = {\n"
           "  k = { source = rc.etcd { endpoints = { '%s' }, key = 'bench/latency' },\n"
           "        startup = 'default' },\n} }\n", b.endpoint);
  uv_loop_t loop;
  rc_engine_t *eng = bench_engine("etcd-latency", policy, &loop, "k", on_change, &b);
  if (!eng) {
    kill(ctl, SIGTERM);
    return 1;
  }
  pthread_create(&wr, NULL, writer, &b);
  bench_run_until(&loop, &b.done);
  pthread_join(wr, NULL);
  kill(ctl, SIGTERM);
  waitpid(ctl, NULL, 0);
  pthread_join(rd, NULL);
  fclose(b.ctl);
  report("reactcfg", &b, b.ours_ns);
  report("etcdctl", &b, b.ctl_ns);
  bench_engine_free(eng, &loop);
  return 0;
}
