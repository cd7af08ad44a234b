/* SPDX-License-Identifier: MIT (see LICENSE) */
/* reader.c: the hot read path. A reader is one thread's handle that keeps a reference to
 * the snapshot it last returned and compares it with the engine's `current` on every
 * read: equal means nothing was committed since, so a read is one load of a word only the
 * engine writes. Compiled-path getters (rc_path_compile in core/value/path.c) skip
 * parsing. */
#include "engine.h"

/* A reader on a cache line of its own: its owner writes `snap` at every refresh, and
 * another thread's reader allocated next to it must not see that as sharing. */
#define READER_ALIGN 64

rc_reader_t *rc_reader_new(rc_engine_t *eng) {
  if (!eng) return NULL;
  void *block = rc__malloc(sizeof(struct rc_reader) + 2 * READER_ALIGN);
  if (!block) return NULL;
  uintptr_t at = ((uintptr_t)block + READER_ALIGN - 1) & ~(uintptr_t)(READER_ALIGN - 1);
  struct rc_reader *r = (struct rc_reader *)at;
  r->current = &eng->snaps.current;
  r->dom = &eng->snaps;
  r->snap = NULL;
  r->block = block;
  return r;
}

/* Takes the current snapshot through the engine's window protocol and drops the one held
 * before: the slow path, once per commit per reader. */
static const rc_snapshot_t *refresh(rc_reader_t *r) {
  struct rc_snapshot *s = rc__snapshot_take(r->dom);
  struct rc_snapshot *old = r->snap;
  r->snap = s;
  rc_snapshot_release(old);
  return s;
}

/* The fast path. The load may be relaxed: when it equals the held pointer, the reader
 * owns a reference to that very snapshot (a held snapshot cannot be freed, so its address
 * cannot have been reused for another) and already acquired its contents when it took it;
 * when it differs, refresh() loads `current` again under the window protocol. Coherence
 * keeps a relaxed load from returning a value older than one this thread already saw, or
 * than a commit that happens before the call, so revisions never go backwards. */
const rc_snapshot_t *rc_reader_snapshot(rc_reader_t *r) {
  struct rc_snapshot *cur = atomic_load_explicit(r->current, memory_order_relaxed);
  if (__builtin_expect(cur == r->snap, 1)) return cur;
  return refresh(r);
}

void rc_reader_idle(rc_reader_t *r) {
  if (!r) return;
  struct rc_snapshot *old = r->snap;
  r->snap = NULL;
  rc_snapshot_release(old);
}

void rc_reader_free(rc_reader_t *r) {
  if (!r) return;
  rc_snapshot_release(r->snap);
  rc__free(r->block);
}

/* ==== reads by compiled path ==== */

/* The getters below inline the walk and the type check (rather than calling
 * rc_snapshot_get_path and rc_value_*, exported and so not inlined under -fPIC): this is
 * the read a hot path makes, and each call is a sizeable part of it. */
static inline const rc_value_t *find(const rc_snapshot_t *snap, const rc_path_t *path) {
  if (!snap || !path) return NULL;
  return rc__path_find(snap->root, path);
}

const rc_value_t *rc_snapshot_get_path(const rc_snapshot_t *snap, const rc_path_t *path) {
  return find(snap, path);
}

int rc_snapshot_get_string_path(const rc_snapshot_t *snap, const rc_path_t *path,
                                const char **out, size_t *len) {
  const rc_value_t *v = find(snap, path);
  if (!v) return RC_ENOTFOUND;
  if (v->type != RC_TYPE_STRING) return RC_ETYPE;
  *out = v->u.s;
  if (len) *len = v->len;
  return 0;
}

int rc_snapshot_get_int_path(const rc_snapshot_t *snap, const rc_path_t *path,
                             int64_t *out) {
  const rc_value_t *v = find(snap, path);
  if (!v) return RC_ENOTFOUND;
  if (v->type != RC_TYPE_INT) return RC_ETYPE;
  *out = v->u.i;
  return 0;
}

int rc_snapshot_get_number_path(const rc_snapshot_t *snap, const rc_path_t *path,
                                double *out) {
  const rc_value_t *v = find(snap, path);
  if (!v) return RC_ENOTFOUND;
  if (v->type == RC_TYPE_INT) *out = (double)v->u.i;
  else if (v->type == RC_TYPE_FLOAT) *out = v->u.f;
  else return RC_ETYPE;
  return 0;
}

int rc_snapshot_get_bool_path(const rc_snapshot_t *snap, const rc_path_t *path,
                              bool *out) {
  const rc_value_t *v = find(snap, path);
  if (!v) return RC_ENOTFOUND;
  if (v->type != RC_TYPE_BOOL) return RC_ETYPE;
  *out = v->u.b;
  return 0;
}
