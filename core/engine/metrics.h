/* SPDX-License-Identifier: MIT (see LICENSE) */
/* metrics.h: the engine's metrics registry and the per-component health records that
 * /metrics and /status read. The loop thread is the only writer of every number here,
 * so an update is a relaxed load and store of an atomic (no lock, no read-modify-write
 * on the hot path); other threads read the same atomics. Records are only ever added
 * (under `mu`, rarely: a new component or module name), never removed before the engine
 * is freed, so a reader walking the lists under `mu` sees memory that stays valid. */
#ifndef RC_METRICS_H
#define RC_METRICS_H

#include "internal.h"

#include <pthread.h>
#include <stdatomic.h>

/* Seconds histograms share these upper bounds (50 µs to 10 s), plus +Inf. */
#define RC__HIST_BOUNDS 17
typedef struct rc__histogram {
  _Atomic uint64_t bucket[RC__HIST_BOUNDS + 1]; /* per bucket (not cumulative); last: +Inf */
  _Atomic uint64_t sum_ns;
} rc__histogram;

/* What started a reload, as the label `trigger` (the kind of eng->trigger). */
typedef enum {
  RC__TRIG_SOURCE, RC__TRIG_REQUEST, RC__TRIG_SIGNAL, RC__TRIG_PUSH, RC__TRIG_POLICY,
  RC__TRIG_ROLLBACK, RC__TRIG_UNPIN, RC__TRIG_OTHER, RC__TRIG_N
} rc__trigger_kind;

/* Why a reload failed, as the label `reason`. */
typedef enum { RC__FAIL_REFUSED, RC__FAIL_TIMEOUT, RC__FAIL_ERROR, RC__FAIL_N } rc__fail_kind;

/* Health flags of a component (rc__health.flags), mirrored from its fields by
 * rc__health_sync on the loop thread. */
enum {
  RC__H_ACTIVE = 1u << 0,    /* its condition holds (or it has none) */
  RC__H_ANSWERED = 1u << 1,  /* its source delivered (a value, absent, or an error) */
  RC__H_FAILING = 1u << 2,   /* its last delivery was an error */
  RC__H_STALE = 1u << 3,     /* its value came from the cache; the source has not answered */
  RC__H_VALUE = 1u << 4,     /* it holds a value (its own, a default, a cached one) */
  RC__H_WAITS = 1u << 5,     /* startup = "wait": readiness waits for its first value */
  RC__H_SOURCE = 1u << 6,    /* it has a running source (not a simulation) */
};

/* One component name's health and counters. The record outlives its component: a
 * policy reload gives the component of the same name the same record, so counters go
 * on; a component that is gone is only marked absent. */
typedef struct rc__health {
  struct rc__health *next;
  char *name;                      /* immutable */
  _Atomic bool present;            /* a component of the running policy */
  _Atomic unsigned flags;          /* RC__H_* */
  _Atomic unsigned src_flags;      /* rc__src_cond bits (source.h) */
  _Atomic uint64_t errors;         /* source errors */
  _Atomic uint64_t rejected;       /* values refused by validate or a reload module */
  /* Loop-clock milliseconds (CLOCK_MONOTONIC, as uv_now), 0: never. */
  _Atomic uint64_t last_success_ms, last_error_ms, value_ms, next_retry_ms;
  /* Under the registry's mu: */
  const char *kind;                /* the source kind's name (static), or NULL */
  char *target;                    /* what it watches, without credentials; owned */
  char err_msg[512], err_file[256];
  int err_line, err_col, err_code;
} rc__health;

/* One reload module name's series. */
typedef struct rc__module_metrics {
  struct rc__module_metrics *next;
  char *name;
  rc__histogram apply;
  _Atomic uint64_t failures;
} rc__module_metrics;

#define RC__METRIC_KINDS 32        /* fetch histograms, by index in the kind registry */

typedef struct rc__metrics {
  _Atomic uint64_t reload_attempts[RC__TRIG_N];
  _Atomic uint64_t reload_failures[RC__FAIL_N];
  rc__histogram reload_duration;
  _Atomic uint64_t backoff_ms;       /* the wait before the next reload after failures */
  _Atomic uint64_t commits;
  _Atomic uint64_t changes[4];       /* by rc_change_kind_t - 1 */
  rc__histogram policy_eval;
  _Atomic uint64_t policy_errors;
  rc__histogram fetch[RC__METRIC_KINDS];
  pthread_mutex_t mu;                /* guards the lists and the health strings */
  rc__health *health, **health_tail;
  rc__health **health_index;         /* the records by name: open addressing, a power of
                                        two slots, at most half full (rc__health_for) */
  size_t health_slots, health_count;
  rc__module_metrics *modules, **modules_tail;
  rc__health spare;                  /* stands in when a record cannot be allocated */
  rc__module_metrics spare_module;
} rc__metrics;

/* Adds `n` to a counter only the loop thread writes. */
static inline void rc__count(_Atomic uint64_t *c, uint64_t n) {
  atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n,
                        memory_order_relaxed);
}
static inline void rc__gauge_set(_Atomic uint64_t *g, uint64_t v) {
  atomic_store_explicit(g, v, memory_order_relaxed);
}
/* Records one duration (loop thread). */
void rc__observe(rc__histogram *h, uint64_t ns);

void rc__metrics_init(rc__metrics *m);
void rc__metrics_free(rc__metrics *m);
/* The record of component `name`, created on first use; the spare one out of memory.
 * Any thread (takes mu). */
rc__health *rc__health_for(rc__metrics *m, const char *name);
/* The series of module `name`, created on first use (the spare one out of memory). */
rc__module_metrics *rc__module_metrics_for(rc__metrics *m, const char *name);
/* The label value of a trigger ("source:a,b" -> RC__TRIG_SOURCE). */
rc__trigger_kind rc__trigger_kind_of(const char *trigger);

#endif
