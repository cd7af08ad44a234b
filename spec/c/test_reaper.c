/* SPDX-License-Identifier: MIT (see LICENSE) */
/* test_reaper.c: big things are freed off the engine's loop. The reaper (core/base)
 * runs what it is handed on a thread of its own, in order, and its owner's free waits
 * for all of it. Through an engine: a refused policy's Lua state, and what a conversion
 * stopped by the time budget had built, are freed on that thread, not on the loop's
 * (freeing millions of objects held the loop for 70-250 ms past the budget). The test's
 * allocator counts on which thread each block is freed. */
#include "failalloc.h"
#include "harness.h"
#include "internal.h"

#include <pthread.h>
#include <stdatomic.h>

static pthread_t loop_thread;
static _Atomic long frees_loop, frees_other;

static void *counting_alloc(void *ud, void *ptr, size_t size) {
  (void)ud;
  if (size == 0 && ptr) {
    if (pthread_equal(pthread_self(), loop_thread))
      frees_loop++;
    else
      frees_other++;
  }
  return fa_fn(NULL, ptr, size);
}

/* ---- the reaper alone ---- */

typedef struct job {
  int order;
  pthread_t ran_on;
  _Atomic int *next;   /* the order the next job must have */
  bool in_order;
} job;

static void run_job(void *p) {
  job *j = p;
  j->ran_on = pthread_self();
  j->in_order = atomic_fetch_add(j->next, 1) == j->order;
}

static void test_reaper_alone(void) {
  rc__reaper *r = NULL;
  _Atomic int next = 0;
  job jobs[50];
  for (int i = 0; i < 50; i++) {
    jobs[i] = (job){.order = i, .next = &next};
    rc__reap(&r, run_job, &jobs[i]);
  }
  CHECK(r != NULL); /* made on first use */
  rc__reaper_free(r); /* waits for every job */
  CHECK_EQ_INT(atomic_load(&next), 50);
  int other = 0, ordered = 0;
  for (int i = 0; i < 50; i++) {
    other += !pthread_equal(jobs[i].ran_on, pthread_self());
    ordered += jobs[i].in_order;
  }
  CHECK_EQ_INT(other, 50);   /* on the reaper's thread */
  CHECK_EQ_INT(ordered, 50); /* in the order handed */
  rc__reaper_free(NULL);     /* nothing */
}

/* Without memory for the reaper or its note, the job runs at once, here. */
static void test_reaper_without_memory(void) {
  _Atomic int next = 0;
  job j = {.order = 0, .next = &next};
  rc__reaper *r = NULL;
  atomic_store(&fa_fail_all, 1);
  rc__reap(&r, run_job, &j);
  atomic_store(&fa_fail_all, 0);
  CHECK(r == NULL);
  CHECK_EQ_INT(atomic_load(&next), 1);
  CHECK(pthread_equal(j.ran_on, pthread_self()));
  /* With a reaper but no memory for the note: here too. */
  rc__reap(&r, run_job, &(job){.order = 1, .next = &next});
  rc__reaper_free(r);
  r = NULL;
  rc__reap(&r, run_job, &(job){.order = 2, .next = &next});
  atomic_store(&fa_countdown, 0); /* the note's allocation fails */
  job k = {.order = 3, .next = &next};
  rc__reap(&r, run_job, &k);
  atomic_store(&fa_countdown, -1);
  rc__reaper_free(r);
  CHECK_EQ_INT(atomic_load(&next), 4);
  CHECK(pthread_equal(k.ran_on, pthread_self()));
}

/* ---- through an engine ---- */

static int policy_errors;
static void on_policy_error(void *ud, const rc_event_t *ev) {
  (void)ud;
  if (ev->type == RC_EVENT_POLICY_ERROR) policy_errors++;
}

/* The running policy: a small one whose load budget (100 ms) applies to the next. */
static const char *CALM =
    "local rc = require 'reactcfg'\n"
    "return rc.policy { limits = { load_time = '100ms' },\n"
    "  components = { a = { source = rc.env 'REAPER_UNSET', default = { x = 1 } } } }\n";

/* Replaces the policy with `text`, waits for its refusal, frees the engine (which waits
 * for the reaper) and says how many blocks were freed on each thread meanwhile. */
static void refused_reload(const char *name, const char *text, long *on_loop, long *other) {
  harness h = {0};
  h_tmpdir(&h, name);
  CHECK_EQ_INT(h_start(&h, CALM), 0);
  rc_engine_add_event_handler(h.eng, on_policy_error, NULL);
  h_run(&h, 1, -1, 5000, 50);
  policy_errors = 0;
  frees_loop = frees_other = 0;
  h_save(&h, "policy.lua", text);
  h_run_until(&h, &policy_errors, 1, 30000);
  CHECK_EQ_INT(policy_errors, 1);
  *on_loop = frees_loop; /* up to the refusal, before the engine's own teardown */
  CHECK(h_finish(&h));
  *other = frees_other;
}

/* A policy that built 200,000 tables and then failed: its state is closed by the
 * reaper. Before, lua_close ran on the loop (about 400,000 frees there, none elsewhere). */
static void test_refused_state_freed_off_loop(void) {
  long on_loop = 0, other = 0;
  refused_reload("reaper-state",
                 "local t = {}\n"
                 "for i = 1, 200000 do t[i] = { i } end\n"
                 "error('refused on purpose')\n",
                 &on_loop, &other);
  /* A slow build (sanitizers) may reach the 100 ms budget first: fewer tables, still
   * nearly all freed elsewhere. */
  CHECK(other >= 20000);
  CHECK(on_loop * 10 < other);
  if (other < 20000 || on_loop * 10 >= other)
    fprintf(stderr, "  frees on the loop %ld, elsewhere %ld\n", on_loop, other);
}

/* A default that is one table shared 2^40 times: its conversion stops at the budget
 * with millions of nodes built, which the reaper frees. Before, they were freed on the
 * loop as the conversion unwound. */
static void test_stopped_conversion_freed_off_loop(void) {
  long on_loop = 0, other = 0;
  refused_reload("reaper-convert",
                 "local rc = require 'reactcfg'\n"
                 "local t = {}\n"
                 "for i = 1, 40 do t = { t, t } end\n"
                 "return rc.policy { components = { a = { source = rc.env 'REAPER_UNSET',\n"
                 "  default = t } } }\n",
                 &on_loop, &other);
  /* Each stopped level keeps its finished children: at least 4096 tables were built
   * (the budget is asked every 4096) and each is a node and its item array. */
  CHECK(other > 4096);
  CHECK(on_loop < other);
  if (other <= 4096 || on_loop >= other)
    fprintf(stderr, "  frees on the loop %ld, elsewhere %ld\n", on_loop, other);
}

int main(void) {
  loop_thread = pthread_self();
  rc_set_allocator(counting_alloc, NULL);
  test_reaper_alone();
  test_reaper_without_memory();
  test_refused_state_freed_off_loop();
  test_stopped_conversion_freed_off_loop();
  CHECK_EQ_INT(atomic_load(&fa_live), 0);
  (void)fa_install; /* ours counts threads first, then calls fa_fn */
  fa_uninstall();
  return check_report("test_reaper");
}
