/* SPDX-License-Identifier: MIT (see LICENSE) */
/* bench_engine.c: see bench_engine.h. */
#include "bench_engine.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

rc_engine_t *bench_engine(const char *what, const char *policy, uv_loop_t *loop,
                          const char *pattern, rc_change_fn fn, void *ud) {
  char dir[] = "/tmp/rc-bench.XXXXXX", path[64];
  if (!mkdtemp(dir)) return NULL;
  snprintf(path, sizeof path, "%s/policy.lua", dir);
  FILE *f = fopen(path, "w");
  if (!f) return NULL;
  fputs(policy, f);
  fclose(f);
  rc_error err = {0};
  uv_loop_init(loop);
  rc_engine_t *eng = rc_engine_new(&err);
  int rc = eng ? 0 : RC_ENOMEM;
  if (!rc) rc_engine_set_policy_reload(eng, false);
  if (!rc) rc = rc_engine_load_policy(eng, path, &err);
  if (!rc) rc = rc_subscribe(eng, pattern, fn, ud, &err) > 0 ? 0 : RC_ENOMEM;
  if (!rc) rc = rc_engine_attach(eng, loop, &err);
  unlink(path);
  rmdir(dir);
  if (rc) {
    fprintf(stderr, "reactcfg-bench %s: %s\n", what, err.message);
    bench_engine_free(eng, loop);
    return NULL;
  }
  return eng;
}

void bench_engine_free(rc_engine_t *eng, uv_loop_t *loop) {
  rc_engine_free(eng);
  rc__loop_close_all(loop);
  while (uv_loop_close(loop) == UV_EBUSY) uv_run(loop, UV_RUN_NOWAIT);
}

static int cmp_ll(const void *a, const void *b) {
  long long x = *(const long long *)a, y = *(const long long *)b;
  return x < y ? -1 : x > y;
}

static void check_done(uv_timer_t *t) {
  if (atomic_load((const _Atomic bool *)t->data)) uv_stop(t->loop);
}

void bench_run_until(uv_loop_t *loop, const _Atomic bool *done) {
  uv_timer_t t;
  uv_timer_init(loop, &t);
  t.data = (void *)done;
  uv_timer_start(&t, check_done, 50, 50);
  uv_run(loop, UV_RUN_DEFAULT);
  uv_close((uv_handle_t *)&t, NULL);
  uv_run(loop, UV_RUN_NOWAIT); /* the close completes while `t` is still in scope */
}

int bench_latency_line(const char *prefix, const _Atomic int64_t *start_ns,
                       const _Atomic int64_t *seen_ns, int n) {
  long long *lat = malloc(((size_t)n + 1) * sizeof *lat);
  int seen = 0;
  for (int i = 1; lat && i <= n; i++) {
    int64_t p = atomic_load(&start_ns[i]), s = atomic_load(&seen_ns[i]);
    if (p && s) lat[seen++] = (long long)(s - p) / 1000;
  }
  if (!seen) {
    printf("%s seen=0\n", prefix);
    free(lat);
    return 0;
  }
  qsort(lat, (size_t)seen, sizeof *lat, cmp_ll);
  printf("%s seen=%d p50_us=%lld p90_us=%lld p99_us=%lld max_us=%lld\n", prefix, seen,
         lat[seen / 2], lat[seen * 9 / 10], lat[seen * 99 / 100], lat[seen - 1]);
  free(lat);
  return seen;
}

int bench_paired_line(const char *prefix, const _Atomic int64_t *a_ns,
                      const _Atomic int64_t *b_ns, int n) {
  long long *d = malloc(((size_t)n + 1) * sizeof *d);
  int both = 0;
  for (int i = 1; d && i <= n; i++) {
    int64_t a = atomic_load(&a_ns[i]), b = atomic_load(&b_ns[i]);
    if (a && b) d[both++] = (long long)(a - b) / 1000;
  }
  if (both) {
    qsort(d, (size_t)both, sizeof *d, cmp_ll);
    printf("%s both=%d diff_p50_us=%lld\n", prefix, both, d[both / 2]);
  } else {
    printf("%s both=0\n", prefix);
  }
  free(d);
  return both;
}
