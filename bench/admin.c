/* SPDX-License-Identifier: MIT (see LICENSE) */
/* admin.c: `reactcfg-bench admin`: what the admin endpoint costs. (1) The pipeline
 * benchmark's trivial policy, alternately without and with a scraper thread that GETs
 * /metrics every 100 ms (libcurl, one kept-alive connection), several rounds, so both
 * throughputs come from the same run; (2) /metrics latency with 1,000 components, beside
 * /healthz (the smallest answer through the same server and an engine call) as the peer. */
#include "bench_engine.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int rc_bench_admin_main(int argc, char **argv);

static size_t count_bytes(char *p, size_t size, size_t n, void *ud) {
  RC__UNUSED(p);
  *(size_t *)ud += size * n;
  return size * n;
}

/* GET `path` on handle `h` (kept alive between calls); the answer's size, or -1. */
static long get(CURL *h, const char *addr, const char *path) {
  char url[512];
  snprintf(url, sizeof url, "http://%s%s", addr, path);
  size_t bytes = 0;
  curl_easy_setopt(h, CURLOPT_URL, url);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, count_bytes);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &bytes);
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  long status = 0;
  if (curl_easy_perform(h) != CURLE_OK) return -1;
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
  return status == 200 ? (long)bytes : -1;
}

/* ---- (1) the pipeline while /metrics is scraped ---- */

typedef struct scraper {
  rc_admin_t *admin;
  pthread_t thread;
  atomic_bool stop;
  int scrapes, failures;
} scraper;

static void *scrape(void *arg) {
  scraper *s = arg;
  CURL *h = curl_easy_init();
  while (!atomic_load(&s->stop)) {
    if (get(h, rc_admin_address(s->admin), "/metrics") < 0) s->failures++;
    else s->scrapes++;
    usleep(100 * 1000);
  }
  curl_easy_cleanup(h);
  return NULL;
}

static int scraper_start(void *ud, rc_engine_t *eng) {
  scraper *s = ud;
  rc_error err = {0};
  s->admin = rc_admin_start(eng, "127.0.0.1:0", NULL, &err);
  if (!s->admin) {
    fprintf(stderr, "reactcfg-bench admin: %s\n", err.message);
    return -1;
  }
  atomic_store(&s->stop, false);
  return pthread_create(&s->thread, NULL, scrape, s) == 0 ? 0 : -1;
}

static void scraper_stop(void *ud, rc_engine_t *eng) {
  RC__UNUSED(eng);
  scraper *s = ud;
  atomic_store(&s->stop, true);
  pthread_join(s->thread, NULL);
  rc_admin_free(s->admin);
  s->admin = NULL;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static int pipeline_rounds(uint64_t updates, int rounds) {
  const char *text = bench_pipeline_policy("trivial");
  double plain[16], scraped[16];
  int scrapes = 0, failures = 0;
  if (rounds > 16) rounds = 16;
  for (int i = 0; i < rounds; i++) {
    double secs = 0;
    uint64_t commits = 0;
    if (bench_pipeline_measure(text, updates, NULL, &secs, &commits)) return 1;
    plain[i] = (double)updates / secs;
    scraper s = {0};
    bench_pipeline_hooks h = {scraper_start, scraper_stop, &s};
    if (bench_pipeline_measure(text, updates, &h, &secs, &commits)) return 1;
    scraped[i] = (double)updates / secs;
    scrapes += s.scrapes;
    failures += s.failures;
  }
  qsort(plain, (size_t)rounds, sizeof *plain, cmp_double);
  qsort(scraped, (size_t)rounds, sizeof *scraped, cmp_double);
  double p = plain[rounds / 2], q = scraped[rounds / 2];
  printf("admin pipeline updates=%llu rounds=%d plain_updates_per_s=%.0f "
         "scraped_updates_per_s=%.0f scraped_over_plain=%.4f cost_pct=%.2f scrapes=%d "
         "failed_scrapes=%d\n",
         (unsigned long long)updates, rounds, p, q, q / p, (1 - q / p) * 100, scrapes,
         failures);
  return failures ? 1 : 0;
}

/* ---- (2) /metrics latency with many components ---- */

static int latency(int components, int requests) {
  char dir[] = "/tmp/reactcfg-bench-admin.XXXXXX";
  if (!mkdtemp(dir)) return 1;
  char path[128];
  snprintf(path, sizeof path, "%s/policy.lua", dir);
  FILE *f = fopen(path, "w");
  if (!f) return 1;
  fprintf(f, "local rc = require 'reactcfg'\nlocal c = {}\nfor i = 1, %d do\n"
             "  c['c' .. i] = { source = rc.lua_source(function(emit) emit({ n = i }) end) }\n"
             "end\nreturn rc.policy { components = c }\n", components);
  fclose(f);
  rc_error err = {0};
  rc_engine_t *eng = rc_engine_new(&err);
  int rc = eng ? rc_engine_load_policy(eng, path, &err) : RC_ENOMEM;
  if (!rc) rc = rc_engine_start(eng, &err);
  rc_admin_t *a = rc ? NULL : rc_admin_start(eng, "127.0.0.1:0", NULL, &err);
  if (!a) {
    fprintf(stderr, "reactcfg-bench admin: %s\n", err.message);
    rc_engine_free(eng);
    return 1;
  }
  const char *paths[] = {"/metrics", "/healthz"};
  double *us = calloc((size_t)requests, sizeof *us);
  CURL *h = curl_easy_init();
  int bad = 0;
  for (int p = 0; p < 2; p++) {
    long bytes = 0;
    for (int i = 0; i < requests; i++) {
      uint64_t t0 = rc__mono_ns();
      bytes = get(h, rc_admin_address(a), paths[p]);
      us[i] = (double)(rc__mono_ns() - t0) / 1e3;
      if (bytes < 0) bad++;
    }
    qsort(us, (size_t)requests, sizeof *us, cmp_double);
    printf("admin latency path=%s components=%d requests=%d bytes=%ld p50_us=%.0f "
           "p90_us=%.0f p99_us=%.0f max_us=%.0f\n", paths[p], components, requests, bytes,
           us[requests / 2], us[requests * 9 / 10], us[requests * 99 / 100],
           us[requests - 1]);
  }
  curl_easy_cleanup(h);
  free(us);
  rc_admin_free(a);
  rc_engine_free(eng);
  unlink(path);
  rmdir(dir);
  return bad ? 1 : 0;
}

int rc_bench_admin_main(int argc, char **argv) {
  uint64_t updates = 200000;
  int rounds = 3, components = 1000, requests = 1000;
  for (int i = 0; i < argc; i++) {
    if (!strcmp(argv[i], "--updates") && i + 1 < argc) updates = strtoull(argv[++i], NULL, 10);
    else if (!strcmp(argv[i], "--rounds") && i + 1 < argc) rounds = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--components") && i + 1 < argc) components = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--requests") && i + 1 < argc) requests = atoi(argv[++i]);
    else {
      fprintf(stderr,
              "usage: reactcfg-bench admin [--updates N] [--rounds R] [--components C] "
              "[--requests Q]\n"
              "  prints: admin pipeline ... plain_updates_per_s=<r> scraped_updates_per_s=<r>"
              " scraped_over_plain=<x> cost_pct=<p>\n"
              "          admin latency path=<p> components=<c> ... p50_us= p90_us= p99_us=\n");
      return 2;
    }
  }
  if (rounds < 1 || components < 1 || requests < 1) return 2;
  curl_global_init(CURL_GLOBAL_ALL);
  int rc = pipeline_rounds(updates, rounds) | latency(components, requests);
  curl_global_cleanup();
  return rc;
}
