/* SPDX-License-Identifier: MIT (see LICENSE) */
/* test_snapshot_threads.c: four threads acquire and read snapshots while the loop
 * thread commits thousands of revisions; no reader ever sees a mixed state (every leaf of
 * a snapshot carries that snapshot's revision), and revisions only move forward. */
#include "check.h"
#include "engine.h"

#include <pthread.h>

#define COMMITS 20000
#define READERS 4

static atomic_int done;
static atomic_int mixed, backwards, reads;

static void *reader(void *arg) {
  rc_engine_t *eng = arg;
  uint64_t last = 0;
  while (!atomic_load(&done)) {
    rc_snapshot_t *s = rc_snapshot_acquire(eng);
    if (!s) continue;
    uint64_t rev = rc_snapshot_revision(s);
    int64_t a = -1, b = -2, d = -3;
    rc_snapshot_get_int(s, "a", &a);
    rc_snapshot_get_int(s, "b", &b);
    rc_snapshot_get_int(s, "c.d[1]", &d);
    if (a != (int64_t)rev || b != (int64_t)rev || d != (int64_t)rev) atomic_fetch_add(&mixed, 1);
    if (rev < last) atomic_fetch_add(&backwards, 1);
    last = rev;
    atomic_fetch_add(&reads, 1);
    rc_snapshot_release(s);
  }
  return NULL;
}

static rc_value_t *root_for(int64_t rev) {
  rc__object_builder o, c;
  rc__array_builder arr;
  rc__array_begin(&arr);
  rc__array_push(&arr, rc__value_int(0));
  rc__array_push(&arr, rc__value_int(rev));
  rc__object_begin(&c);
  rc__object_put(&c, "d", 1, rc__array_end(&arr));
  rc__object_begin(&o);
  rc__object_put(&o, "a", 1, rc__value_int(rev));
  rc__object_put(&o, "b", 1, rc__value_int(rev));
  rc__object_put(&o, "c", 1, rc__object_end(&c));
  return rc__object_end(&o);
}

int main(void) {
  rc_engine_t *eng = rc_engine_new(NULL);
  CHECK(eng != NULL);
  CHECK(rc__publish(eng, root_for(1)) != NULL);
  pthread_t t[READERS];
  for (int i = 0; i < READERS; i++) pthread_create(&t[i], NULL, reader, eng);
  for (int64_t rev = 2; rev <= COMMITS; rev++) {
    struct rc_snapshot *s = rc__publish(eng, root_for(rev));
    CHECK(s != NULL && (int64_t)s->revision == rev);
  }
  atomic_store(&done, 1);
  for (int i = 0; i < READERS; i++) pthread_join(t[i], NULL);
  CHECK_EQ_INT(atomic_load(&mixed), 0);
  CHECK_EQ_INT(atomic_load(&backwards), 0);
  CHECK(atomic_load(&reads) > 0);
  CHECK_EQ_INT((int)rc_engine_revision(eng), COMMITS);
  rc_engine_free(eng);
  return check_report("snapshot_threads");
}
