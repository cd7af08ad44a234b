/* SPDX-License-Identifier: MIT (see LICENSE) */
/* hybrid.c: hybrid watching (see hybrid.h). */
#include "hybrid.h"

#include <stdio.h>

/* The retry timer lives in its own allocation: a source is freed as soon as its stop is
 * done, while this timer's close callback may still be pending. */
typedef struct rc__hybrid_timer {
  uv_timer_t t;
  rc__host *host;
  rc__hybrid *h;            /* NULL once stopped: the source may be gone */
} rc__hybrid_timer;

void rc__hybrid_init(rc__hybrid *h, rc__remote *r, const char *what, const char *again) {
  h->r = r;
  h->what = what;
  h->again = again;
  h->poll_ms = (uint64_t)rc__opt_number(r->ctx, "poll_ms");
  h->backoff.min_ms = r->backoff.min_ms;
  h->backoff.max_ms = r->backoff.max_ms;
  h->backoff.cur_ms = 0;
}

static void hybrid_timer_cb(uv_timer_t *t) {
  rc__hybrid_timer *ht = t->data;
  rc__hybrid *h = ht->h;
  if (h && !h->r->stopping && h->fire) h->fire(h->r);
}

static void hybrid_timer_closed(uv_handle_t *hd) {
  rc__hybrid_timer *ht = hd->data;
  rc__host_handle_closed(ht->host);
  rc__free(ht);
}

int rc__hybrid_start(rc__hybrid *h, void (*fire)(rc__remote *), rc_error *err) {
  h->fire = fire;
  if (!h->poll_ms) return 0;
  rc__host *host = rc__src_host(h->r->ctx);
  rc__hybrid_timer *ht = rc__calloc(1, sizeof *ht);
  if (!ht) return rc__err(err, RC_ENOMEM, NULL, 0, 0, "out of memory");
  int rc = uv_timer_init(rc__host_loop(host), &ht->t);
  if (rc) {
    rc__free(ht);
    return rc__err(err, RC_ESYS, NULL, 0, 0, "uv_timer_init: %s", uv_strerror(rc));
  }
  ht->t.data = ht;
  ht->host = host;
  ht->h = h;
  rc__host_handle_opened(host);
  h->timer = ht;
  return 0;
}

void rc__hybrid_stop(rc__hybrid *h) {
  rc__hybrid_timer *ht = h->timer;
  h->timer = NULL;
  h->polling = h->probe_due = false;
  if (!ht) return;
  ht->h = NULL;
  uv_timer_stop(&ht->t);
  uv_close((uv_handle_t *)&ht->t, hybrid_timer_closed);
}

bool rc__hybrid_enabled(const rc__hybrid *h) { return h->poll_ms && h->timer; }

/* "1s", "1500ms": the poll interval as a policy would write it. */
static void duration_text(char *buf, size_t n, uint64_t ms) {
  if (ms % 1000 == 0) snprintf(buf, n, "%llus", (unsigned long long)(ms / 1000));
  else snprintf(buf, n, "%llums", (unsigned long long)ms);
}

void rc__hybrid_arm(rc__hybrid *h, uint64_t ms) {
  if (h->timer && !h->r->stopping) uv_timer_start(&h->timer->t, hybrid_timer_cb, ms, 0);
}

void rc__hybrid_retry_later(rc__hybrid *h) {
  rc__hybrid_arm(h, rc__backoff_next(&h->backoff, &h->r->rng));
}

void rc__hybrid_enter(rc__hybrid *h, const char *file, const char *why) {
  h->polling = true;
  rc__src_condition(h->r->ctx, RC__SRC_POLLING, true);
  h->probe_due = false;
  h->backoff.cur_ms = 0;
  char every[32];
  duration_text(every, sizeof every, h->poll_ms);
  rc__src_state(h->r->ctx, file, 0, "%s failed (%s); polling every %s while retrying it",
                h->what, why && *why ? why : "no reason given", every);
  rc__hybrid_retry_later(h);
}

void rc__hybrid_leave(rc__hybrid *h, const char *file) {
  h->polling = false;
  rc__src_condition(h->r->ctx, RC__SRC_POLLING, false);
  h->probe_due = false;
  h->backoff.cur_ms = 0;
  if (h->timer) uv_timer_stop(&h->timer->t);
  rc__src_state(h->r->ctx, file, 0, "%s; polling stopped", h->again);
}

uint64_t rc__hybrid_poll_delay(rc__hybrid *h) {
  return rc__remote_splay(h->r, h->poll_ms);
}
