/* SPDX-License-Identifier: MIT (see LICENSE) */
/* trace_ring.c: the decisions behind the last revisions, kept by the engine itself when
 * rc_engine_trace turns it on (off by default: nothing is formatted then), so that an
 * operator can ask why revision N holds what it holds (rc_engine_explain_json) without
 * the REPL. The shape is the test bench's (lua/reactcfg/sim.lua): each revision with
 * its time, its changed paths and its trace lines { at_ms, component, kind, message },
 * the decisions since the revision before it. The loop thread writes under the ring's
 * lock (only while tracing is on); any thread reads. */
#include "engine.h"
#include "value.h"

#include <string.h>

/* Trace text kept for one revision at most; later lines are counted, not kept. */
#define RC__TRACE_MAX_BYTES (64 * 1024)

/* ms since attach on the scheduler's clock (as the test bench shows); 0 before. */
static uint64_t since_start(const rc_engine_t *eng) {
  if (!eng->loop) return 0;
  uint64_t now = rc__now(eng);
  return now > eng->epoch_ms ? now - eng->epoch_ms : 0;
}

void rc__trace_ring_init(rc__trace_ring *r) {
  pthread_mutex_init(&r->mu, NULL);
  rc__buf_init(&r->pending);
}

/* Drops every kept revision and the pending lines (under mu). */
static void clear(rc__trace_ring *r) {
  for (size_t i = 0; i < r->cap; i++) {
    rc__free(r->slots[i].json);
    r->slots[i].json = NULL;
  }
  r->n = r->head = 0;
  rc__buf_reset(&r->pending);
  r->pending_items = r->dropped = 0;
}

void rc__trace_ring_free(rc__trace_ring *r) {
  clear(r);
  rc__free(r->slots);
  rc__buf_free(&r->pending);
  pthread_mutex_destroy(&r->mu);
}

int rc_engine_trace(rc_engine_t *eng, size_t revisions) {
  if (!eng) return RC_EINVAL;
  if (revisions > 4096) return RC_EINVAL;
  rc__trace_ring *r = &eng->tring;
  void *slots = revisions ? rc__calloc(revisions, sizeof *r->slots) : NULL;
  if (revisions && !slots) return RC_ENOMEM;
  pthread_mutex_lock(&r->mu);
  clear(r);
  rc__free(r->slots);
  r->slots = slots;
  r->cap = revisions;
  atomic_store_explicit(&r->on, revisions > 0, memory_order_relaxed);
  pthread_mutex_unlock(&r->mu);
  return 0;
}

void rc__trace_ring_add(rc_engine_t *eng, const char *component, const char *kind,
                        const char *message) {
  rc__trace_ring *r = &eng->tring;
  uint64_t at = since_start(eng);
  pthread_mutex_lock(&r->mu);
  if (!r->cap) {
    pthread_mutex_unlock(&r->mu);
    return;
  }
  rc__buf *b = &r->pending;
  if (b->n > RC__TRACE_MAX_BYTES) {
    r->dropped++;
  } else {
    size_t before = b->n;
    rc__buf_printf(b, "%s{\"at_ms\":%llu,\"component\":", r->pending_items ? "," : "",
                   (unsigned long long)at);
    rc__json_write_string(b, component ? component : "", component ? strlen(component) : 0);
    rc__buf_adds(b, ",\"kind\":");
    rc__json_write_string(b, kind, strlen(kind));
    rc__buf_adds(b, ",\"message\":");
    rc__json_write_string(b, message, strlen(message));
    rc__buf_addc(b, '}');
    if (b->oom) { /* the line is lost, the ones before stay */
      b->oom = 0;
      b->n = before;
      r->dropped++;
    } else {
      r->pending_items++;
    }
  }
  pthread_mutex_unlock(&r->mu);
}

void rc__trace_ring_commit(rc_engine_t *eng, uint64_t revision, const rc__changeset *cs) {
  rc__trace_ring *r = &eng->tring;
  uint64_t at = since_start(eng);
  rc__buf b;
  rc__buf_init(&b);
  rc__buf_printf(&b, "{\"revision\":%llu,\"at_ms\":%llu,\"changes\":[",
                 (unsigned long long)revision, (unsigned long long)at);
  for (size_t i = 0; i < cs->n; i++) {
    /* Paths and kinds only: values may be secret. */
    rc__buf_adds(&b, i ? ",{\"path\":" : "{\"path\":");
    rc__json_write_string(&b, cs->items[i].path, strlen(cs->items[i].path));
    rc__buf_printf(&b, ",\"kind\":\"%s\"}", rc_change_kind_name(cs->items[i].kind));
  }
  rc__buf_adds(&b, "],\"trace\":[");
  pthread_mutex_lock(&r->mu);
  if (!r->cap) {
    pthread_mutex_unlock(&r->mu);
    rc__buf_free(&b);
    return;
  }
  if (r->pending.n) rc__buf_add(&b, r->pending.p, r->pending.n);
  rc__buf_printf(&b, "],\"dropped\":%zu}", r->dropped);
  rc__buf_reset(&r->pending);
  r->pending_items = r->dropped = 0;
  char *json = b.oom ? NULL : rc__buf_take(&b);
  if (json) {
    size_t slot = (r->head + r->n) % r->cap;
    if (r->n == r->cap) { /* full: the oldest goes */
      slot = r->head;
      r->head = (r->head + 1) % r->cap;
    } else {
      r->n++;
    }
    rc__free(r->slots[slot].json);
    r->slots[slot].revision = revision;
    r->slots[slot].json = json;
  }
  pthread_mutex_unlock(&r->mu);
  rc__buf_free(&b);
}

char *rc_engine_explain_json(rc_engine_t *eng, uint64_t revision) {
  if (!eng) return NULL;
  rc__trace_ring *r = &eng->tring;
  char *out = NULL;
  pthread_mutex_lock(&r->mu);
  for (size_t i = 0; i < r->n && !out; i++) {
    size_t slot = (r->head + i) % r->cap;
    if (r->slots[slot].revision == revision) out = rc__strdup(r->slots[slot].json);
  }
  pthread_mutex_unlock(&r->mu);
  return out;
}
