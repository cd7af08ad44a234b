/* SPDX-License-Identifier: MIT (see LICENSE) */
/* status.c: rc_engine_status_json, the engine's health as one JSON object for people and
 * probes: the revision, whether it is pinned, and per component its source, its state
 * (one word, see component_state) and when it last worked, failed and retries. Read
 * from any thread: the numbers are the health records' atomics (metrics.h), the strings
 * are read under the registry's lock. */
#include "engine.h"
#include "value.h"

#include <stdio.h>
#include <string.h>

/* The one word a component's state is; the first that applies wins. */
static const char *component_state(unsigned f, unsigned sf, bool has_source) {
  if (!(f & RC__H_ACTIVE)) return "inactive";      /* its condition is false */
  if (sf & RC__SRC_CIRCUIT_OPEN) return "circuit-open";
  if (f & RC__H_FAILING) return "failing";         /* its last read failed */
  if (f & RC__H_STALE) return "stale";             /* a cached value, source not heard */
  if (sf & RC__SRC_POLLING) return "polling";      /* works, but not in real time */
  if (has_source && !(f & RC__H_ANSWERED)) return "waiting";  /* no first answer yet */
  return "ok";
}

static void str_or_null(rc__buf *b, const char *s) {
  if (s && *s)
    rc__json_write_string(b, s, strlen(s));
  else
    rc__buf_adds(b, "null");
}

static void number(rc__buf *b, double v) {
  char num[32];
  rc__double_text(v, num, sizeof num);
  rc__buf_adds(b, num);
}

/* The clocks at the time of the reading: loop-clock ms (monotonic) become Unix time. */
typedef struct clocks {
  uint64_t mono_ms;
  int64_t real_ns;
} clocks;

/* Unix time in seconds of loop-clock time `ms`, or null when 0 (never). */
static void timestamp(rc__buf *b, const clocks *k, uint64_t ms) {
  if (!ms) {
    rc__buf_adds(b, "null");
    return;
  }
  double t = ((double)k->real_ns / 1e6 - ((double)k->mono_ms - (double)ms)) / 1e3;
  number(b, (double)(int64_t)(t * 1000) / 1000); /* ms are all the clock has */
}

static uint64_t load(_Atomic uint64_t *v) { return atomic_load_explicit(v, memory_order_relaxed); }

/* One component's object (under the registry's lock). */
static void component(rc__buf *b, rc__health *h, const clocks *k) {
  unsigned f = atomic_load_explicit(&h->flags, memory_order_relaxed);
  unsigned sf = atomic_load_explicit(&h->src_flags, memory_order_relaxed);
  rc__buf_adds(b, "{\"name\":");
  str_or_null(b, h->name);
  rc__buf_adds(b, ",\"kind\":");
  str_or_null(b, h->kind);
  rc__buf_adds(b, ",\"target\":");
  str_or_null(b, h->target);
  rc__buf_printf(b, ",\"state\":\"%s\",\"errors\":%llu,\"rejected\":%llu",
                 component_state(f, sf, h->kind != NULL),
                 (unsigned long long)load(&h->errors), (unsigned long long)load(&h->rejected));
  rc__buf_adds(b, ",\"last_success\":");
  timestamp(b, k, load(&h->last_success_ms));
  rc__buf_adds(b, ",\"next_retry\":");
  uint64_t retry = load(&h->next_retry_ms);
  timestamp(b, k, (f & RC__H_FAILING) ? retry : 0);
  rc__buf_adds(b, ",\"value_age_seconds\":");
  uint64_t got = load(&h->value_ms);
  if (got && (f & RC__H_VALUE))
    number(b, (double)(k->mono_ms > got ? k->mono_ms - got : 0) / 1e3);
  else
    rc__buf_adds(b, "null");
  rc__buf_adds(b, ",\"last_error\":");
  uint64_t failed = load(&h->last_error_ms);
  if (!failed) {
    rc__buf_adds(b, "null}");
    return;
  }
  rc__buf_adds(b, "{\"message\":");
  str_or_null(b, h->err_msg);
  rc__buf_adds(b, ",\"code\":");
  str_or_null(b, h->err_code ? rc_err_name(h->err_code) : NULL);
  rc__buf_adds(b, ",\"time\":");
  timestamp(b, k, failed);
  rc__buf_adds(b, ",\"file\":");
  str_or_null(b, h->err_file);
  rc__buf_printf(b, ",\"line\":%d,\"column\":%d}}", h->err_line, h->err_col);
}

char *rc_engine_status_json(rc_engine_t *eng) {
  if (!eng) return NULL;
  rc__metrics *m = &eng->metrics;
  clocks k = {rc__mono_ns() / 1000000, rc__real_ns()};
  rc__buf b;
  rc__buf_init(&b);
  rc__buf_printf(&b, "{\"revision\":%llu,\"pinned\":%s,\"time\":",
                 (unsigned long long)rc_engine_revision(eng),
                 rc_engine_pinned(eng) ? "true" : "false");
  number(&b, (double)(k.real_ns / 1000000) / 1e3);
  rc__buf_adds(&b, ",\"reload_backoff_seconds\":");
  number(&b, (double)load(&m->backoff_ms) / 1e3);
  rc__buf_adds(&b, ",\"components\":[");
  pthread_mutex_lock(&m->mu);
  bool first = true;
  for (rc__health *h = m->health; h; h = h->next) {
    if (!atomic_load(&h->present)) continue;
    if (!first) rc__buf_addc(&b, ',');
    first = false;
    component(&b, h, &k);
  }
  pthread_mutex_unlock(&m->mu);
  rc__buf_adds(&b, "]}");
  if (b.oom) {
    rc__buf_free(&b);
    return NULL;
  }
  return rc__buf_take(&b);
}
