/* SPDX-License-Identifier: MIT (see LICENSE) */
/* push.c: rc.push(), a source only the application feeds: its values come from
 * rc_engine_push (parsed by the engine in the format the application names, within this
 * source's limits). It watches nothing; its first value may come after start, so the
 * component's startup policy applies (a pushed component can be awaited). */
#include "source.h"

typedef struct push_source {
  rc__source base;
} push_source;

static rc__source *push_create(rc__source_ctx *ctx, rc_error *err) {
  RC__UNUSED(ctx);
  push_source *s = rc__src_alloc(sizeof *s, err);
  return s ? &s->base : NULL;
}

static int push_start(rc__source *s, rc_error *err) {
  RC__UNUSED(s);
  RC__UNUSED(err);
  return 0;
}

static void push_stop(rc__source *s, void (*done)(rc__source *)) { done(s); }

static void push_free(rc__source *s) { rc__free(s); }

const rc__source_kind rc__push_kind = {
  .name = "push", .flags = RC__SRC_PUSHED | RC__SRC_WAITS,
  .create = push_create, .start = push_start, .stop = push_stop, .free = push_free,
};
