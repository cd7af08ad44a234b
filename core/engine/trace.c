/* SPDX-License-Identifier: MIT (see LICENSE) */
/* trace.c: the decisions of the pipeline, as one line each, for `explain` in the REPL
 * and scenario runner and for the engine's own ring (trace_ring.c). Nothing is
 * formatted unless a trace hook is set or the ring is on. */
#include "engine.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void rc__trace(rc_engine_t *eng, const rc__component *c, const char *fmt, ...) {
  bool ring = rc__trace_ring_on(eng);
  if (!eng->trace_fn && !ring) return;
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  if (eng->trace_fn) eng->trace_fn(eng->trace_ud, c ? c->name : "", msg);
  if (ring) rc__trace_ring_add(eng, c ? c->name : "", "decision", msg);
}

/* At most this many bytes of a value's JSON in a trace line. */
#define VALUE_SHOWN 120

void rc__trace_value(rc_engine_t *eng, const rc__component *c, const char *what,
                     const rc_value_t *v) {
  if (!eng->trace_fn && !rc__trace_ring_on(eng)) return;
  if (!v) {
    rc__trace(eng, c, "%s: (absent)", what);
    return;
  }
  rc_value_t *shown = c ? rc__redact(eng, c->name, v) : rc__value_ref(v);
  rc__buf b;
  rc__buf_init(&b);
  if (shown) rc__json_write(&b, shown, false, true);
  rc__value_unref(shown);
  if (b.oom || !b.p) {
    rc__buf_free(&b);
    rc__trace(eng, c, "%s: (value)", what);
    return;
  }
  if (b.n > VALUE_SHOWN)
    rc__trace(eng, c, "%s: %.*s... (%zu bytes)", what, VALUE_SHOWN, b.p, b.n);
  else
    rc__trace(eng, c, "%s: %.*s", what, (int)b.n, b.p);
  rc__buf_free(&b);
}
