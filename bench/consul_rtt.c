/* SPDX-License-Identifier: MIT (see LICENSE) */
/* consul_rtt.c: `reactcfg-bench consul-rtt`: the time from a Consul KV write (the PUT
 * answered) to the engine's C callback holding the new value, through the rc.consul
 * blocking query, against a server on 127.0.0.1 (scripts/bench starts the
 * protocol-faithful spec/servers/consul_server.py). Writes come from a second thread
 * with libcurl, one every `gap` (longer than the source's rate limit). One line:
 * consul-rtt writes=<n> seen=<n> p50_us=<..> p90_us=<..> p99_us=<..> max_us=<..>. */
#include "bench_engine.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int rc_bench_consul_rtt_main(int argc, char **argv);

typedef struct rtt {
  const char *addr;
  int n, gap_ms;
  _Atomic int64_t put_ns[1024];   /* when write i was acknowledged */
  _Atomic int64_t seen_ns[1024];  /* when the callback saw value i */
  _Atomic bool done;
} rtt;

static size_t sink(char *p, size_t s, size_t n, void *ud) {
  (void)p, (void)ud;
  return s * n;
}

static void *writer(void *arg) {
  rtt *r = arg;
  CURL *h = curl_easy_init();
  char url[512], body[64];
  snprintf(url, sizeof url, "%s/v1/kv/bench/rtt", r->addr);
  curl_easy_setopt(h, CURLOPT_URL, url);
  curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, "PUT");
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, sink);
  for (int i = 1; i <= r->n; i++) {
    usleep((useconds_t)r->gap_ms * 1000);
    snprintf(body, sizeof body, "{\"i\": %d}", i);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    if (curl_easy_perform(h) == CURLE_OK) atomic_store(&r->put_ns[i], rc__real_ns());
  }
  usleep(500000);
  atomic_store(&r->done, true);
  curl_easy_cleanup(h);
  return NULL;
}

static void on_change(void *ud, const rc_snapshot_t *s, const rc_change_t *ch, size_t n) {
  (void)ch, (void)n;
  rtt *r = ud;
  int64_t i = 0;
  if (rc_snapshot_get_int(s, "k.i", &i) == 0 && i > 0 && i <= r->n &&
      atomic_load(&r->seen_ns[i]) == 0)
    atomic_store(&r->seen_ns[i], rc__real_ns());
}

int rc_bench_consul_rtt_main(int argc, char **argv) {
  static rtt r;
  r.n = 50;
  r.gap_ms = 400;
  for (int i = 0; i < argc; i++) {
    if (!strcmp(argv[i], "--addr") && i + 1 < argc) r.addr = argv[++i];
    else if (!strcmp(argv[i], "--writes") && i + 1 < argc) r.n = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--gap-ms") && i + 1 < argc) r.gap_ms = atoi(argv[++i]);
    else r.addr = NULL, i = argc;
  }
  if (!r.addr || r.n < 1 || r.n > 1000) {
    fprintf(stderr, "usage: reactcfg-bench consul-rtt --addr http://127.0.0.1:PORT "
                    "[--writes N (<= 1000)] [--gap-ms MS]\n");
    return 2;
  }
  char policy[512];
  snprintf(policy, sizeof policy,
           "local rc = require 'reactcfg'\nreturn rc.policy { components = {\n"
           "  k = { source = rc.consul { addr = '%s', key = 'bench/rtt' },\n"
           "        startup = 'default' },\n} }\n", r.addr);
  uv_loop_t loop;
  rc_engine_t *eng = bench_engine("consul-rtt", policy, &loop, "k", on_change, &r);
  if (!eng) return 1;
  pthread_t th;
  pthread_create(&th, NULL, writer, &r);
  bench_run_until(&loop, &r.done);
  pthread_join(th, NULL);
  char prefix[64];
  snprintf(prefix, sizeof prefix, "consul-rtt writes=%d", r.n);
  int seen = bench_latency_line(prefix, r.put_ns, r.seen_ns, r.n);
  bench_engine_free(eng, &loop);
  return seen == r.n ? 0 : 1;
}
