/* SPDX-License-Identifier: MIT (see LICENSE) */
/* hybrid.h: hybrid watching. A realtime watch (Consul blocking queries, an etcd watch
 * stream) that fails in a way plain reads do not falls back to polling every `poll_ms`,
 * keeps retrying the realtime way on its own backoff schedule, and stops polling once
 * that works again. Each switch is a component.state event. The source keeps its own
 * request logic; this holds the mode, the retry timer and the sentences. */
#ifndef RC_HYBRID_H
#define RC_HYBRID_H

#include "remote.h"

struct rc__hybrid_timer;  /* the retry timer, allocated apart: it may outlive the source */

typedef struct rc__hybrid {
  rc__remote *r;            /* the source this belongs to; borrowed */
  uint64_t poll_ms;         /* the fallback's poll interval; 0 = no fallback */
  bool polling;             /* falling back: polling while retrying the realtime way */
  bool probe_due;           /* the retry timer fired; the source retries when it can */
  rc__backoff backoff;      /* delays between realtime retries (the source's min/max) */
  const char *what;         /* "consul blocking query": "<what> failed (...); ..." */
  const char *again;        /* "blocking queries work again": "<again>; polling stopped" */
  void (*fire)(rc__remote *r);  /* runs when the retry timer expires */
  struct rc__hybrid_timer *timer;  /* NULL when the fallback is off or stopped */
} rc__hybrid;

/* Fills `h` for source `r` (after rc__remote_init): poll_ms from the description
 * (default 1 s; 0 turns the fallback off), the retry backoff from r's. `what` and
 * `again` are static strings for the events. */
void rc__hybrid_init(rc__hybrid *h, rc__remote *r, const char *what, const char *again);
/* Opens the retry timer (nothing when the fallback is off); `fire` runs on each expiry
 * unless the source is stopping. 0 or an RC_E* code with `err` filled. */
int rc__hybrid_start(rc__hybrid *h, void (*fire)(rc__remote *), rc_error *err);
/* Stops and closes the retry timer. Call it from the source's stop, before
 * rc__remote_stop; the timer's memory is freed by its close callback, so the source
 * may be freed before that runs. */
void rc__hybrid_stop(rc__hybrid *h);
/* Whether the fallback is configured (and not stopped). */
bool rc__hybrid_enabled(const rc__hybrid *h);
/* Enters polling: the event "<what> failed (<why>); polling every <poll> while retrying
 * it" (`file`: where, e.g. the URL) and the first realtime retry on the backoff. */
void rc__hybrid_enter(rc__hybrid *h, const char *file, const char *why);
/* Leaves polling: the event "<again>; polling stopped"; the retry timer stops. */
void rc__hybrid_leave(rc__hybrid *h, const char *file);
/* A realtime retry failed: the next one after the next backoff delay. */
void rc__hybrid_retry_later(rc__hybrid *h);
/* Runs `fire` after `ms` (replacing any pending expiry). */
void rc__hybrid_arm(rc__hybrid *h, uint64_t ms);
/* The delay until the next poll: poll_ms less up to 10% at random. */
uint64_t rc__hybrid_poll_delay(rc__hybrid *h);

#endif
