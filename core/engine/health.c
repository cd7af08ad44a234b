/* SPDX-License-Identifier: MIT (see LICENSE) */
/* health.c: the loop thread's side of each component's health record (metrics.h): its
 * state flags, when its source last answered or failed and how, when it retries, and its
 * counters. Called where the engine does the work (delivery, errors, conditions,
 * startup, commits), never through events, so metrics and status do not depend on any
 * event handler; each call is a few relaxed stores, and an error takes the registry's
 * lock once to copy its message. */
#include "engine.h"

#include <stdio.h>
#include <string.h>

/* The loop's clock in ms (0 before attach: nothing is timed then). */
static uint64_t loop_ms(const rc_engine_t *eng) {
  uint64_t t = eng->loop ? uv_now(eng->loop) : 0;
  return t ? t : 1;
}

static void store(_Atomic uint64_t *a, uint64_t v) {
  atomic_store_explicit(a, v, memory_order_relaxed);
}

void rc__health_link(rc__component *c) {
  c->health = c->name ? rc__health_for(&c->eng->metrics, c->name) : NULL;
}

void rc__health_sync(rc__component *c) {
  rc__health *h = c->health;
  if (!h) return;
  unsigned f = 0;
  if (c->active) f |= RC__H_ACTIVE;
  if (c->delivered) f |= RC__H_ANSWERED;
  if (c->in_error) f |= RC__H_FAILING;
  if (c->stale) f |= RC__H_STALE;
  if (c->value || c->has_pending || c->held || c->result || c->default_value) f |= RC__H_VALUE;
  if (c->startup == RC__START_WAIT) f |= RC__H_WAITS;
  if (c->src || c->refetch_at) f |= RC__H_SOURCE;
  if (atomic_load_explicit(&h->flags, memory_order_relaxed) != f)
    atomic_store_explicit(&h->flags, f, memory_order_relaxed);
}

void rc__health_success(rc__component *c) {
  rc__health *h = c->health;
  if (!h) return;
  uint64_t now = loop_ms(c->eng);
  store(&h->last_success_ms, now);
  store(&h->value_ms, now);
  if (atomic_load_explicit(&h->next_retry_ms, memory_order_relaxed)) store(&h->next_retry_ms, 0);
}

void rc__health_value_time(rc__component *c, int64_t wall_ns) {
  rc__health *h = c->health;
  if (!h || wall_ns <= 0) return;
  int64_t age_ms = (rc__real_ns() - wall_ns) / 1000000;
  uint64_t now = loop_ms(c->eng);
  store(&h->value_ms, age_ms > 0 && (uint64_t)age_ms < now ? now - (uint64_t)age_ms : now);
}

void rc__health_error(rc__component *c, const rc_error *err, const char *message) {
  rc__health *h = c->health;
  if (!h) return;
  rc__count(&h->errors, 1);
  store(&h->last_error_ms, loop_ms(c->eng));
  pthread_mutex_lock(&c->eng->metrics.mu);
  rc__strcpy_cut(h->err_msg, sizeof h->err_msg, message);
  rc__strcpy_cut(h->err_file, sizeof h->err_file, err->file);
  h->err_line = err->line;
  h->err_col = err->column;
  h->err_code = err->code;
  pthread_mutex_unlock(&c->eng->metrics.mu);
}

void rc__health_rejected(rc__component *c) {
  if (c->health) rc__count(&c->health->rejected, 1);
}

void rc__health_retry(rc__component *c, uint64_t delay_ms) {
  if (c->health) store(&c->health->next_retry_ms, delay_ms ? loop_ms(c->eng) + delay_ms : 0);
}

void rc__health_source_flag(rc__component *c, unsigned flag, bool on) {
  rc__health *h = c->health;
  if (!h) return;
  unsigned f = atomic_load_explicit(&h->src_flags, memory_order_relaxed);
  atomic_store_explicit(&h->src_flags, on ? f | flag : f & ~flag, memory_order_relaxed);
}

void rc__health_install(rc_engine_t *eng) {
  rc__metrics *m = &eng->metrics;
  pthread_mutex_lock(&m->mu);
  for (rc__health *h = m->health; h; h = h->next) atomic_store(&h->present, false);
  for (size_t i = 0; i < eng->ncomps; i++) {
    rc__component *c = eng->comps[i];
    rc__health *h = c->health;
    if (!h || h == &m->spare) continue;
    h->kind = c->kind ? c->kind->name : NULL;
    if (!h->target || !c->target || strcmp(h->target, c->target) != 0) {
      char *t = c->target ? rc__strdup(c->target) : NULL;
      rc__free(h->target);
      h->target = t;
    }
    atomic_store(&h->present, true);
  }
  pthread_mutex_unlock(&m->mu);
  for (size_t i = 0; i < eng->ncomps; i++) rc__health_sync(eng->comps[i]);
}
