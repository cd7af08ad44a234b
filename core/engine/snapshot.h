/* SPDX-License-Identifier: MIT (see LICENSE) */
/* snapshot.h: committed revisions and how any thread reads them (snapshot.c, reader.c).
 * The loop thread publishes; readers on any thread take references through a short
 * announced window; replaced snapshots wait on a bounded retired list until no reader
 * can still be inside a window that saw them. The memory-order argument is in
 * snapshot.c. */
#ifndef RC_SNAPSHOT_H
#define RC_SNAPSHOT_H

#include "value.h"

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

/* Bytes between fields that different threads write, so that they never share a cache
 * line (64 bytes on x86-64 and most ARM cores; 128 keeps adjacent-line prefetch pairs
 * apart too). Padding, not _Alignas: the engine comes from rc__malloc, whose blocks
 * are only aligned for max_align_t. */
#define RC__LINE_GAP 128

/* One committed revision. Immutable once published except `refs`; `retired_seq` and
 * `next_retired` belong to the loop thread. */
struct rc_snapshot {
  _Atomic uint32_t refs;
  uint64_t revision;
  int64_t time_ns;
  rc_value_t *root;
  uint64_t retired_seq;             /* rc__snapdomain.swaps when it was replaced */
  struct rc_snapshot *next_retired;
};

/* A count of readers inside their window, alone on its cache lines. */
typedef struct rc__window {
  _Atomic long n;
  char gap[RC__LINE_GAP - sizeof(long)];
} rc__window;

/* The engine's snapshot state (struct rc_engine.snaps). `current` and `window_idx` are
 * written only by the loop thread and read by every reader: they share one line, which
 * readers only ever load. The two windows are written by readers and each has lines of
 * its own. Everything after `window` belongs to the loop thread. */
typedef struct rc__snapdomain {
  char gap0[RC__LINE_GAP];
  _Atomic(struct rc_snapshot *) current;
  _Atomic unsigned window_idx;      /* the window new readers enter: 0 or 1 */
  char gap1[RC__LINE_GAP];
  rc__window window[2];
  struct rc_snapshot *retired;      /* replaced, still holding the engine's reference */
  size_t nretired;
  size_t max_retired;               /* most retired after a publish (tests, stats) */
  uint64_t swaps;                   /* stores to `current` so far */
  uint64_t empty_at[2];             /* `swaps` when window k was last seen empty */
} rc__snapdomain;

/* Hard bound on the retired list: a publish that would leave more waits (yielding the
 * CPU) until the oldest retired snapshot is released. Reached only when a reader thread
 * stays descheduled inside its few-instruction window for the time of this many
 * commits. */
#define RC__RETIRED_MAX 64

/* A reader handle (reader.c): the reference it holds and the word it compares. */
struct rc_reader {
  _Atomic(struct rc_snapshot *) *current;   /* &eng->snaps.current */
  rc__snapdomain *dom;                      /* &eng->snaps, for the refresh */
  struct rc_snapshot *snap;                 /* the reader's reference, or NULL */
  void *block;                              /* what rc__malloc returned */
};

/* ---- snapshot.c ---- */
void rc__snapshots_init(rc__snapdomain *d);
/* Publishes a new root (moved in) as revision+1; returns the new snapshot (borrowed; the
 * engine holds it) or NULL on OOM (root released). Loop thread. */
struct rc_snapshot *rc__publish(rc_engine_t *eng, rc_value_t *root);
/* The current snapshot, borrowed (the engine holds it until it publishes another), or
 * NULL. Loop thread only: other threads use rc_snapshot_acquire or a reader. */
struct rc_snapshot *rc__snapshot_current(rc_engine_t *eng);
/* Releases the retired snapshots that no reader can still be taking, and arms the
 * retry timer when some remain; returns how many remain. Loop thread. */
size_t rc__retire_sweep(rc_engine_t *eng);
/* Drops the current snapshot and all retired ones (engine free), waiting for readers
 * inside their window to leave it. */
void rc__snapshots_drop(rc_engine_t *eng);
/* The current snapshot of `d` with one reference taken for the caller, or NULL. Any
 * thread; enters and leaves a window around the load (two read-modify-writes on a
 * shared counter, one on the snapshot's count). */
struct rc_snapshot *rc__snapshot_take(rc__snapdomain *d);
/* A reader's window, for tests that need to stand inside one: enter returns the window
 * entered, which leave takes. Between the two, a snapshot loaded from `current` is not
 * freed. Any thread. */
unsigned rc__window_enter(rc__snapdomain *d);
void rc__window_leave(rc__snapdomain *d, unsigned w);

#endif
