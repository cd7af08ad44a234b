/* snapshot.c: committed revisions and lock-free reads of them from any thread.
 * The engine swaps `current` atomically; a reader announces itself in `acquiring`
 * between loading the pointer and taking its reference, and the engine releases a
 * replaced snapshot only once it has seen `acquiring` at zero after the swap. */
#include "engine.h"

#include <sched.h>

/* ---- publishing (loop thread) ---- */

static void snapshot_free(struct rc_snapshot *s) {
  rc__value_unref(s->root);
  rc__free(s);
}

struct rc_snapshot *rc__publish(rc_engine_t *eng, rc_value_t *root) {
  struct rc_snapshot *s = rc__malloc(sizeof *s);
  if (!s) {
    rc__value_unref(root);
    return NULL;
  }
  atomic_init(&s->refs, 1); /* the engine's reference */
  s->revision = atomic_load(&eng->revision) + 1;
  s->time_ns = rc__real_ns();
  s->root = root;
  s->next_retired = NULL;
  struct rc_snapshot *old = atomic_exchange(&eng->current, s);
  atomic_store(&eng->revision, s->revision);
  if (old) {
    old->next_retired = eng->retired;
    eng->retired = old;
    rc__retire_sweep(eng);
  }
  return s;
}

static void retire_cb(uv_timer_t *t) { rc__retire_sweep(t->data); }

/* A reader that loaded the old pointer before the swap has already incremented
 * `acquiring`; seeing zero after the swap means every such reader holds its own
 * reference, so the engine's can go. Readers arriving later load the new pointer. */
int rc__retire_sweep(rc_engine_t *eng) {
  if (!eng->retired) return 0;
  for (int spin = 0; spin < 64; spin++) {
    if (atomic_load(&eng->acquiring) == 0) {
      struct rc_snapshot *s = eng->retired;
      eng->retired = NULL;
      while (s) {
        struct rc_snapshot *next = s->next_retired;
        rc_snapshot_release(s);
        s = next;
      }
      return 0;
    }
    sched_yield();
  }
  /* Readers kept arriving: try again shortly instead of spinning on the loop. */
  if (eng->handles_init && !uv_is_active((uv_handle_t *)&eng->retire_timer))
    uv_timer_start(&eng->retire_timer, retire_cb, 1, 0);
  return 1;
}

void rc__snapshots_drop(rc_engine_t *eng) {
  while (atomic_load(&eng->acquiring) != 0) sched_yield();
  struct rc_snapshot *cur = atomic_exchange(&eng->current, NULL);
  rc_snapshot_release(cur);
  struct rc_snapshot *s = eng->retired;
  eng->retired = NULL;
  while (s) {
    struct rc_snapshot *next = s->next_retired;
    rc_snapshot_release(s);
    s = next;
  }
}

/* ---- reading (any thread) ---- */

rc_snapshot_t *rc_snapshot_acquire(rc_engine_t *eng) {
  if (!eng) return NULL;
  atomic_fetch_add(&eng->acquiring, 1);
  struct rc_snapshot *s = atomic_load(&eng->current);
  if (s) atomic_fetch_add(&s->refs, 1);
  atomic_fetch_sub(&eng->acquiring, 1);
  return s;
}

rc_snapshot_t *rc_snapshot_retain(rc_snapshot_t *snap) {
  if (snap) atomic_fetch_add(&snap->refs, 1);
  return snap;
}

void rc_snapshot_release(rc_snapshot_t *snap) {
  if (snap && atomic_fetch_sub(&snap->refs, 1) == 1) snapshot_free(snap);
}

uint64_t rc_snapshot_revision(const rc_snapshot_t *snap) { return snap ? snap->revision : 0; }

int64_t rc_snapshot_time_ns(const rc_snapshot_t *snap) { return snap ? snap->time_ns : 0; }

const rc_value_t *rc_snapshot_root(const rc_snapshot_t *snap) {
  return snap ? snap->root : NULL;
}

const rc_value_t *rc_snapshot_get(const rc_snapshot_t *snap, const char *path) {
  if (!snap || !path) return NULL;
  return rc_value_find(snap->root, path);
}

int rc_snapshot_get_string(const rc_snapshot_t *snap, const char *path, const char **out,
                           size_t *len) {
  if (!out) return RC_EINVAL;
  const rc_value_t *v = rc_snapshot_get(snap, path);
  return v ? rc_value_string(v, out, len) : RC_ENOTFOUND;
}

int rc_snapshot_get_int(const rc_snapshot_t *snap, const char *path, int64_t *out) {
  if (!out) return RC_EINVAL;
  const rc_value_t *v = rc_snapshot_get(snap, path);
  return v ? rc_value_int(v, out) : RC_ENOTFOUND;
}

int rc_snapshot_get_number(const rc_snapshot_t *snap, const char *path, double *out) {
  if (!out) return RC_EINVAL;
  const rc_value_t *v = rc_snapshot_get(snap, path);
  return v ? rc_value_number(v, out) : RC_ENOTFOUND;
}

int rc_snapshot_get_bool(const rc_snapshot_t *snap, const char *path, bool *out) {
  if (!out) return RC_EINVAL;
  const rc_value_t *v = rc_snapshot_get(snap, path);
  return v ? rc_value_bool(v, out) : RC_ENOTFOUND;
}

uint64_t rc_engine_revision(rc_engine_t *eng) {
  return eng ? atomic_load(&eng->revision) : 0;
}
