/* SPDX-License-Identifier: MIT (see LICENSE) */
/* bench_engine.h: what the engine benchmarks share: an engine on a policy text, attached
 * to the benchmark's own loop with one subscription (and no policy-file watch), its
 * teardown, and latency percentiles. */
#ifndef RC_BENCH_ENGINE_H
#define RC_BENCH_ENGINE_H

#include "engine.h"

/* Writes `policy` to a temporary file, loads it and attaches the engine to `loop`
 * (initialised here) with `fn` subscribed to `pattern`. Returns the engine, or NULL
 * after printing "reactcfg-bench <what>: message". */
rc_engine_t *bench_engine(const char *what, const char *policy, uv_loop_t *loop,
                          const char *pattern, rc_change_fn fn, void *ud);
/* Runs `loop` (the engine's) until another thread sets *done, looking every 50 ms: the
 * benchmark's writer thread says so after its last write. */
void bench_run_until(uv_loop_t *loop, const _Atomic bool *done);
/* Frees the engine and closes the loop. */
void bench_engine_free(rc_engine_t *eng, uv_loop_t *loop);
/* Prints "<prefix> seen=<n> p50_us=.. p90_us=.. p99_us=.. max_us=.." from the pairs
 * (start_ns[i], seen_ns[i]) for i in 1..n where both are set. Returns how many were. */
int bench_latency_line(const char *prefix, const _Atomic int64_t *start_ns,
                       const _Atomic int64_t *seen_ns, int n);

/* Prints "<prefix> both=<n> diff_p50_us=<median of a_ns[i] - b_ns[i]>" over the i in
 * 1..n where both are set: the difference between two watchers of the same writes,
 * paired write by write, so that a delay both suffered (the server's, the writer's)
 * cancels out. Returns how many pairs there were. */
int bench_paired_line(const char *prefix, const _Atomic int64_t *a_ns,
                      const _Atomic int64_t *b_ns, int n);
/* bench/pipeline.c, for benchmarks that measure the pipeline beside something else:
 * `started` runs once the engine is attached (a non-zero return aborts), `stopping`
 * after the last update committed, before the engine is freed. */
typedef struct bench_pipeline_hooks {
  int (*started)(void *ud, rc_engine_t *eng);
  void (*stopping)(void *ud, rc_engine_t *eng);
  void *ud;
} bench_pipeline_hooks;
/* The text of pipeline policy `name` ("trivial", "merge"), or NULL. */
const char *bench_pipeline_policy(const char *name);
/* Pushes `updates` small updates through an engine on `text` on this thread's loop;
 * *secs the time they took, *commits how many committed. 0 when every update
 * committed, else -1. */
int bench_pipeline_measure(const char *text, uint64_t updates, const bench_pipeline_hooks *h,
                           double *secs, uint64_t *commits);

#endif
