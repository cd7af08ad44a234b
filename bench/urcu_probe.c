/* SPDX-License-Identifier: MIT (see LICENSE) */
/* urcu_probe.c: the read-side cost of liburcu (Debian liburcu-dev) beside the reader
 * design reactcfg chose, on the same lookup, for docs/ARCHITECTURE.md ("Readers: why not
 * liburcu"). Not part of the build: liburcu is not a dependency. Run by hand:
 *   gcc -O2 -D_LGPL_SOURCE bench/urcu_probe.c -o urcu_probe \
 *       -lurcu-memb -lurcu-qsbr -lpthread
 *   ./urcu_probe
 * One line per variant: ns per read on one thread while another thread publishes a new
 * version every millisecond (the old one freed after a grace period, or, for ours, by
 * reference count when the reader moves on). The "lookup" is three dependent loads, a
 * stand-in for a compiled path walk, the same in every variant. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <urcu/urcu-memb.h>
#include <urcu/urcu-qsbr.h>

typedef struct node { struct node *next; long value; } node;
typedef struct version { _Atomic long refs; node *chain; } version;

static version *make(long v) {
  version *x = malloc(sizeof *x);
  node *c = malloc(3 * sizeof *c);
  c[0].next = &c[1], c[1].next = &c[2], c[2].next = NULL, c[2].value = v;
  x->chain = c;
  atomic_init(&x->refs, 1);
  return x;
}
static void destroy(version *x) { free(x->chain); free(x); }
static long lookup(const version *x) { return x->chain->next->next->value; }

static version *_Atomic current;
static atomic_int stop;
static int variant; /* 0 ours, 1 urcu-memb, 2 urcu-qsbr */

static int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void release(version *x) {
  if (atomic_fetch_sub_explicit(&x->refs, 1, memory_order_acq_rel) == 1) destroy(x);
}

/* The writer: a new version each ms; the old one is released when no reader can use it. */
static void *writer(void *arg) {
  (void)arg;
  if (variant == 1) urcu_memb_register_thread();
  if (variant == 2) urcu_qsbr_register_thread();
  version *held = NULL;
  for (long i = 2; !atomic_load(&stop); i++) {
    version *old = atomic_exchange(&current, make(i));
    if (variant == 1) urcu_memb_synchronize_rcu();
    if (variant == 2) urcu_qsbr_synchronize_rcu();
    if (variant == 0) {
      /* ours: the engine waits for its window counters here. The probe has none (its
       * reader's refresh, below, is not what is timed), so it keeps each old version one
       * period longer than a reader's load-to-increment takes. */
      version *t = held;
      held = old;
      old = t;
    }
    if (old) release(old);
    struct timespec ts = {0, 1000000};
    nanosleep(&ts, NULL);
  }
  if (held) release(held);
  if (variant == 1) urcu_memb_unregister_thread();
  if (variant == 2) urcu_qsbr_unregister_thread();
  return NULL;
}

int main(void) {
  static const char *const names[] = {
    "ours: relaxed load + compare, refresh by reference count",
    "urcu-memb: rcu_read_lock + rcu_dereference + rcu_read_unlock",
    "urcu-qsbr: rcu_dereference + rcu_quiescent_state every 256 reads"};
  for (variant = 0; variant < 3; variant++) {
    atomic_store(&current, make(1));
    atomic_store(&stop, 0);
    pthread_t w;
    pthread_create(&w, NULL, writer, NULL);
    if (variant == 1) urcu_memb_register_thread();
    if (variant == 2) urcu_qsbr_register_thread();
    version *mine = NULL;
    long sum = 0, n = 0;
    int64_t t0 = now_ns();
    while (now_ns() - t0 < 1000000000) {
      for (int i = 0; i < 256; i++) {
        if (variant == 0) {
          /* The refresh runs only when the pointer changed (once per ms); the engine's
           * reader does it inside a window (rc_reader_snapshot). */
          version *cur = atomic_load_explicit(&current, memory_order_relaxed);
          if (cur != mine) {
            atomic_fetch_add(&cur->refs, 1);
            if (mine) release(mine);
            mine = cur;
          }
          sum += lookup(mine);
        } else if (variant == 1) {
          urcu_memb_read_lock();
          sum += lookup(rcu_dereference(current));
          urcu_memb_read_unlock();
        } else {
          sum += lookup(rcu_dereference(current));
        }
      }
      if (variant == 2) urcu_qsbr_quiescent_state();
      n += 256;
    }
    double ns = (double)(now_ns() - t0) / (double)n;
    if (variant == 1) urcu_memb_unregister_thread();
    if (variant == 2) urcu_qsbr_unregister_thread();
    atomic_store(&stop, 1);
    pthread_join(w, NULL);
    if (mine) release(mine);
    release(atomic_load(&current));
    printf("%-66s %6.2f ns per read (checksum %ld)\n", names[variant], ns, sum & 1);
  }
  return 0;
}
