/* SPDX-License-Identifier: MIT (see LICENSE) */
/* snapshot.c: committed revisions and lock-free reads of them from any thread.
 * The engine swaps `current` atomically; a reader announces itself in one of two window
 * counters between loading the pointer and taking its reference, and the engine releases
 * a replaced snapshot only once it has seen each window empty after the swap. Two windows,
 * so that readers keep arriving in one while the engine waits for the other to drain. */
#include "engine.h"

#include <sched.h>

/* ==== the protocol, and why each memory order is what it is ====
 *
 * A reader (any thread; rc__snapshot_take, rc_engine_revision):
 *   R1  w = window_idx                        relaxed
 *   R2  window[w].n += 1                      seq_cst
 *   R3  s = current                           seq_cst
 *   R4  s->refs += 1                          relaxed
 *   R5  window[w].n -= 1                      release
 * The engine (the loop thread; rc__publish, then look() in the sweep):
 *   W1  old = exchange(current, new)          seq_cst
 *   W2  window[k].n == 0 ?                    seq_cst   (k = the window readers leave)
 *   W3  window_idx = k                        relaxed   (after W2 saw zero: the flip)
 *   W4  old->refs -= 1  (the engine's own)    acq_rel   (once both windows were empty)
 *
 * Safety. The engine drops its reference to `old`, replaced at W1, only after W2 has read
 * zero from *each* window, both times after W1 in its program order. Take a reader whose
 * R3 loaded `old`. Then R3 comes before W1 in the single total order S of seq_cst
 * operations (had W1 come first, the seq_cst load would read W1's value or a later one),
 * so R2 < R3 < W1 < W2 in S, for the W2 that looked at the reader's window. A seq_cst load
 * placed after R2 in S cannot read a count older than R2 (coherence agrees with S), and
 * it read zero: every increment in the count's history up to that point is matched by its
 * own thread's later decrement, so R5 is in it. All changes to a window count are
 * read-modify-writes, so the value W2 read is in R5's release sequence; W2 is at least an
 * acquire, so R5 synchronizes with W2, R4 happens before W4, and the snapshot's count
 * never reaches zero under the reader. This is the store-buffering (Dekker) shape: each
 * side stores to one variable and then loads the other's. Only seq_cst orders a store
 * before a later load of another variable; with acquire/release on R2, R3, W1 and W2,
 * the reader could load `old` and the engine read a count without the reader in it.
 *
 * Why the weaker orders suffice:
 *  R1 relaxed: which window a reader enters does not matter for safety (the engine waits
 *     for both); it matters for progress only, where a stale index is harmless (below).
 *  R3 acquires too (seq_cst loads are acquires): W1 releases the new snapshot's fields and
 *     the whole tree below its root to every reader that loads the pointer.
 *  R4 relaxed: the reader adds to a count that the engine's reference keeps above zero;
 *     R5's release orders the increment before W4 (above), as in any reference count.
 *  R5 release, not seq_cst: the engine needs only to read a count that includes R5 and
 *     to synchronize with it; the reader's exit is not ordered against anything else.
 *  W3 relaxed: the index only steers new readers (progress); W2 already did the looking.
 *  W4, and every release of a snapshot: acq_rel, the usual reference count: release so
 *     this owner's reads happen before the free, acquire so that the last owner frees
 *     after everyone's reads. A read-modify-write with acq_rel rather than release plus an
 *     acquire fence on the last one, because ThreadSanitizer does not model fences.
 *  The loop thread loads `current` relaxed where it only reads back its own stores
 *  (rc__snapshot_current, rc__publish): coherence gives it its last store.
 *
 * Progress: a stream of readers cannot starve reclamation. New readers enter
 * window[window_idx]; the engine looks only at the other window, which nobody enters any
 * more except a reader that read the index just before the last flip (one entry per such
 * reader, as short as R2..R5). Once it is empty the engine flips the index and looks at the
 * window it has just emptied of newcomers in the same way. A snapshot replaced at swap q
 * is released when both windows were seen empty after swap q, usually two looks later
 * in the same sweep. Only a reader thread descheduled inside its few-instruction window
 * delays that, and the list is bounded anyway (RC__RETIRED_MAX, in rc__publish). */

/* ==== windows (any thread) ==== */

static inline unsigned window_enter(rc__snapdomain *d) {
  unsigned w = atomic_load_explicit(&d->window_idx, memory_order_relaxed);   /* R1 */
  atomic_fetch_add_explicit(&d->window[w].n, 1, memory_order_seq_cst);      /* R2 */
  return w;
}

static inline void window_leave(rc__snapdomain *d, unsigned w) {
  atomic_fetch_sub_explicit(&d->window[w].n, 1, memory_order_release);      /* R5 */
}

unsigned rc__window_enter(rc__snapdomain *d) { return window_enter(d); }
void rc__window_leave(rc__snapdomain *d, unsigned w) { window_leave(d, w); }

struct rc_snapshot *rc__snapshot_take(rc__snapdomain *d) {
  unsigned w = window_enter(d);
  struct rc_snapshot *s = atomic_load_explicit(&d->current, memory_order_seq_cst); /* R3 */
  if (s) atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed);            /* R4 */
  window_leave(d, w);
  return s;
}

/* ==== publishing and reclaiming (loop thread) ==== */

void rc__snapshots_init(rc__snapdomain *d) {
  atomic_init(&d->current, NULL);
  atomic_init(&d->window_idx, 0);
  atomic_init(&d->window[0].n, 0);
  atomic_init(&d->window[1].n, 0);
  d->retired = NULL;
  d->nretired = d->max_retired = 0;
  d->swaps = 0;
  d->empty_at[0] = d->empty_at[1] = 0;
}

static void snapshot_free(struct rc_snapshot *s) {
  rc__value_unref(s->root);
  rc__free(s);
}

/* Looks once at the window new readers are not entering. When it is empty, notes that
 * every swap so far is behind it and flips new readers into it, so that the other window
 * drains next. Returns whether it was empty. */
static bool look(rc__snapdomain *d) {
  unsigned k = atomic_load_explicit(&d->window_idx, memory_order_relaxed) ^ 1u;
  if (atomic_load_explicit(&d->window[k].n, memory_order_seq_cst) != 0) /* W2 */
    return false;
  d->empty_at[k] = d->swaps;
  atomic_store_explicit(&d->window_idx, k, memory_order_relaxed);       /* W3 */
  return true;
}

/* Releases the engine's reference to every retired snapshot that both windows were seen
 * empty after. The list is newest first, so those are a tail of it. */
static void release_ready(rc__snapdomain *d) {
  uint64_t seen = d->empty_at[0] < d->empty_at[1] ? d->empty_at[0] : d->empty_at[1];
  struct rc_snapshot **pp = &d->retired;
  while (*pp && (*pp)->retired_seq > seen) pp = &(*pp)->next_retired;
  struct rc_snapshot *s = *pp;
  *pp = NULL;
  while (s) {
    struct rc_snapshot *next = s->next_retired;
    d->nretired--;
    rc_snapshot_release(s);                                                        /* W4 */
    s = next;
  }
}

static void retire_cb(uv_timer_t *t) { rc__retire_sweep(t->data); }

size_t rc__retire_sweep(rc_engine_t *eng) {
  rc__snapdomain *d = &eng->snaps;
  /* A failed look means a reader is inside its window right now, a matter of
   * nanoseconds unless it was descheduled there: yield a few times, then retry on a
   * 1 ms timer rather than hold the loop. Each successful look flips the windows, and two
   * in a row release everything retired before them, so this loop ends. */
  for (int misses = 0; d->retired && misses < 8;) {
    if (look(d)) {
      release_ready(d);
    } else {
      misses++;
      sched_yield();
    }
  }
  if (d->retired && eng->handles_init && !uv_is_active((uv_handle_t *)&eng->retire_timer))
    uv_timer_start(&eng->retire_timer, retire_cb, 1, 0);
  return d->nretired;
}

struct rc_snapshot *rc__snapshot_make(rc_engine_t *eng, rc_value_t *root) {
  struct rc_snapshot *s = rc__malloc(sizeof *s);
  if (!s) {
    rc__value_unref(root);
    return NULL;
  }
  struct rc_snapshot *prev = atomic_load_explicit(&eng->snaps.current, memory_order_relaxed);
  atomic_init(&s->refs, 1); /* the caller's, which becomes the engine's when published */
  s->revision = prev ? prev->revision + 1 : 1;
  s->time_ns = rc__real_ns();
  s->root = root;
  s->retired_seq = 0;
  s->next_retired = NULL;
  return s;
}

void rc__snapshot_publish(rc_engine_t *eng, struct rc_snapshot *s) {
  rc__snapdomain *d = &eng->snaps;
  s->time_ns = rc__real_ns(); /* when it became current, not when it was made */
  struct rc_snapshot *old = atomic_exchange_explicit(&d->current, s, memory_order_seq_cst);
  d->swaps++;                                                                      /* W1 */
  if (old) {
    old->retired_seq = d->swaps;
    old->next_retired = d->retired;
    d->retired = old;
    d->nretired++;
  }
  /* The hard bound: past RC__RETIRED_MAX the loop waits for the readers it is waiting
   * for (each inside a window of a few instructions, so only one descheduled there can
   * make this last) rather than let memory grow with the commit rate. */
  if (rc__retire_sweep(eng) > RC__RETIRED_MAX) {
    while (d->nretired > RC__RETIRED_MAX) {
      if (look(d)) release_ready(d);
      else sched_yield();
    }
  }
  if (d->nretired > d->max_retired) d->max_retired = d->nretired;
}

struct rc_snapshot *rc__publish(rc_engine_t *eng, rc_value_t *root) {
  struct rc_snapshot *s = rc__snapshot_make(eng, root);
  if (s) rc__snapshot_publish(eng, s);
  return s;
}

struct rc_snapshot *rc__snapshot_current(rc_engine_t *eng) {
  return atomic_load_explicit(&eng->snaps.current, memory_order_relaxed);
}

void rc__snapshots_drop(rc_engine_t *eng) {
  rc__snapdomain *d = &eng->snaps;
  struct rc_snapshot *cur =
    atomic_exchange_explicit(&d->current, NULL, memory_order_seq_cst);
  d->swaps++;
  if (cur) {
    cur->retired_seq = d->swaps;
    cur->next_retired = d->retired;
    d->retired = cur;
    d->nretired++;
  }
  while (d->retired) {
    if (look(d)) release_ready(d);
    else sched_yield();
  }
}

/* ==== reading (any thread) ==== */

rc_snapshot_t *rc_snapshot_acquire(rc_engine_t *eng) {
  return eng ? rc__snapshot_take(&eng->snaps) : NULL;
}

rc_snapshot_t *rc_snapshot_retain(rc_snapshot_t *snap) {
  /* Relaxed: the caller's own reference keeps the count above zero. */
  if (snap) atomic_fetch_add_explicit(&snap->refs, 1, memory_order_relaxed);
  return snap;
}

void rc_snapshot_release(rc_snapshot_t *snap) {
  if (snap && atomic_fetch_sub_explicit(&snap->refs, 1, memory_order_acq_rel) == 1)
    snapshot_free(snap);
}

uint64_t rc_snapshot_revision(const rc_snapshot_t *snap) {
  return snap ? snap->revision : 0;
}

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

/* The revision of the snapshot rc_snapshot_acquire would return at this instant: read
 * through a window from `current` itself, so the two never disagree (a separate revision
 * counter stored after the swap could lag the snapshot readers already see). */
uint64_t rc_engine_revision(rc_engine_t *eng) {
  if (!eng) return 0;
  rc__snapdomain *d = &eng->snaps;
  unsigned w = window_enter(d);
  struct rc_snapshot *s = atomic_load_explicit(&d->current, memory_order_seq_cst); /* R3 */
  uint64_t rev = s ? s->revision : 0;
  window_leave(d, w);
  return rev;
}
