/* SPDX-License-Identifier: MIT (see LICENSE) */
/* test_snapshot_reclaim.c: replaced snapshots are released however readers arrive.
 * A stream of readers that always has one of them inside its window (the case that
 * starved the single-counter protocol: its count never read zero) must not keep the
 * engine from releasing; threads hammering rc_snapshot_acquire must not either; a reader
 * stuck inside its window holds the retired list at its bound instead of letting it
 * grow; and rc_engine_revision never disagrees with the snapshot readers get. */
#include "check.h"
#include "engine.h"

#include <pthread.h>
#include <time.h>

static rc_value_t *root_for(int64_t rev) {
  rc__object_builder o;
  rc__object_begin(&o);
  rc__object_put(&o, "rev", 3, rc__value_int(rev));
  return rc__object_end(&o);
}

/* Two readers overlap forever: B enters before A leaves, then A enters before B leaves,
 * so at every instant some reader is inside a window. With one counter the engine never
 * saw it at zero and kept every replaced snapshot; with two windows it releases each one
 * within the next commit's sweep. Deterministic: one thread plays both readers. */
static void test_overlapping_stream(void) {
  rc_engine_t *eng = rc_engine_new(NULL);
  rc__snapdomain *d = &eng->snaps;
  CHECK(rc__publish(eng, root_for(1)) != NULL);
  unsigned a = rc__window_enter(d);
  size_t worst = 0;
  for (int64_t rev = 2; rev <= 1000; rev++) {
    CHECK(rc__publish(eng, root_for(rev)) != NULL);
    unsigned b = rc__window_enter(d);
    rc__window_leave(d, a);
    rc__retire_sweep(eng);
    if (d->nretired > worst) worst = d->nretired;
    a = rc__window_enter(d);
    rc__window_leave(d, b);
    rc__retire_sweep(eng);
    if (d->nretired > worst) worst = d->nretired;
  }
  rc__window_leave(d, a);
  /* Each commit's snapshot is released by the sweep after the next reader hand-over. */
  CHECK(worst <= 2);
  CHECK_EQ_INT(rc__retire_sweep(eng), 0);
  rc_engine_free(eng);
}

#define THREADS 4
#define COMMITS 20000

static atomic_int done;
static atomic_int disagree, backwards;

/* Acquires and releases as fast as it can; checks rc_engine_revision against the
 * snapshot on both sides of the acquire. */
static void *hammer(void *arg) {
  rc_engine_t *eng = arg;
  uint64_t last = 0;
  while (!atomic_load_explicit(&done, memory_order_relaxed)) {
    uint64_t before = rc_engine_revision(eng);
    rc_snapshot_t *s = rc_snapshot_acquire(eng);
    uint64_t rev = rc_snapshot_revision(s);
    uint64_t after = rc_engine_revision(eng);
    if (rev < before || after < rev) atomic_fetch_add(&disagree, 1);
    if (rev < last) atomic_fetch_add(&backwards, 1);
    last = rev;
    rc_snapshot_release(s);
  }
  return NULL;
}

static void test_threads_hammering(void) {
  rc_engine_t *eng = rc_engine_new(NULL);
  rc__snapdomain *d = &eng->snaps;
  CHECK(rc__publish(eng, root_for(1)) != NULL);
  atomic_store(&done, 0);
  pthread_t t[THREADS];
  for (int i = 0; i < THREADS; i++) pthread_create(&t[i], NULL, hammer, eng);
  for (int64_t rev = 2; rev <= COMMITS; rev++)
    CHECK(rc__publish(eng, root_for(rev)) != NULL);
  atomic_store(&done, 1);
  for (int i = 0; i < THREADS; i++) pthread_join(t[i], NULL);
  CHECK(d->max_retired <= RC__RETIRED_MAX);
  CHECK_EQ_INT(rc__retire_sweep(eng), 0);
  CHECK_EQ_INT(atomic_load(&disagree), 0);
  CHECK_EQ_INT(atomic_load(&backwards), 0);
  CHECK_EQ_INT(rc_engine_revision(eng), COMMITS);
  printf("hammering: at most %zu retired at once over %d commits\n", d->max_retired,
         COMMITS);
  rc_engine_free(eng);
}

/* A reader descheduled inside its window (played by a thread that enters, waits and
 * leaves) stops releases behind it: the list fills up to RC__RETIRED_MAX, the publisher
 * waits there (for as long as the reader stays: 50 ms here), and everything goes on once
 * the reader leaves. */
static atomic_int at_bound;

static void *stuck_reader(void *arg) {
  rc_engine_t *eng = arg;
  unsigned w = rc__window_enter(&eng->snaps);
  atomic_store(&done, 1);
  while (!atomic_load(&at_bound)) sched_yield();
  struct timespec ts = {0, 50 * 1000 * 1000};
  nanosleep(&ts, NULL);
  rc__window_leave(&eng->snaps, w);
  return NULL;
}

static void test_stuck_reader(void) {
  rc_engine_t *eng = rc_engine_new(NULL);
  rc__snapdomain *d = &eng->snaps;
  CHECK(rc__publish(eng, root_for(1)) != NULL);
  atomic_store(&done, 0);
  atomic_store(&at_bound, 0);
  pthread_t t;
  pthread_create(&t, NULL, stuck_reader, eng);
  while (!atomic_load(&done)) sched_yield();
  int64_t rev = 2;
  for (; rev <= 1 + RC__RETIRED_MAX; rev++) CHECK(rc__publish(eng, root_for(rev)) != NULL);
  /* Nothing could be released behind the reader: the list is full, not longer. */
  CHECK_EQ_INT(d->nretired, RC__RETIRED_MAX);
  atomic_store(&at_bound, 1);
  for (; rev <= 4 * RC__RETIRED_MAX; rev++) CHECK(rc__publish(eng, root_for(rev)) != NULL);
  pthread_join(t, NULL);
  CHECK_EQ_INT(d->max_retired, RC__RETIRED_MAX);
  CHECK_EQ_INT(rc__retire_sweep(eng), 0);
  CHECK_EQ_INT(rc_engine_revision(eng), 4 * RC__RETIRED_MAX);
  rc_engine_free(eng);
}

int main(void) {
  test_overlapping_stream();
  test_threads_hammering();
  test_stuck_reader();
  return check_report("snapshot_reclaim");
}
