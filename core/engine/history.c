/* SPDX-License-Identifier: MIT (see LICENSE) */
/* history.c: the last `history` committed revisions (a ring of retained snapshots), a
 * rollback to one of them (a reload like any other, through the modules, that pins the
 * configuration once committed), and unpinning (the sources' latest values applied
 * again). The public calls run on the loop thread through rc__call_on_loop. */
#include "engine.h"

#include <stdio.h>
#include <string.h>

void rc__history_push(rc_engine_t *eng, struct rc_snapshot *snap, uint64_t reload_id,
                      const char *trigger, size_t changes) {
  if (eng->hist_cap == 0) return;
  if (!eng->hist) {
    eng->hist = rc__calloc(eng->hist_cap, sizeof *eng->hist);
    if (!eng->hist) return; /* out of memory: no rollback target, nothing else lost */
  }
  size_t slot = (eng->hist_head + eng->hist_n) % eng->hist_cap;
  if (eng->hist_n == eng->hist_cap) { /* full: the oldest goes */
    slot = eng->hist_head;
    rc_snapshot_release(eng->hist[slot].snap);
    eng->hist_head = (eng->hist_head + 1) % eng->hist_cap;
  } else {
    eng->hist_n++;
  }
  rc__revision *r = &eng->hist[slot];
  r->snap = rc_snapshot_retain(snap);
  r->reload_id = reload_id;
  r->changes = changes;
  rc__strcpy_cut(r->trigger, sizeof r->trigger, trigger);
}

void rc__history_resize(rc_engine_t *eng, size_t cap) {
  if (cap == eng->hist_cap) return;
  /* Keep the newest min(n, cap) revisions, in order. */
  rc__revision *v = cap ? rc__calloc(cap, sizeof *v) : NULL;
  if (cap && !v) return; /* out of memory: the old size stays */
  size_t keep = eng->hist_n < cap ? eng->hist_n : cap;
  for (size_t i = 0; i < eng->hist_n; i++) {
    rc__revision *r = &eng->hist[(eng->hist_head + i) % eng->hist_cap];
    if (i >= eng->hist_n - keep) v[i - (eng->hist_n - keep)] = *r;
    else rc_snapshot_release(r->snap);
  }
  rc__free(eng->hist);
  eng->hist = v;
  eng->hist_cap = cap;
  eng->hist_n = keep;
  eng->hist_head = 0;
}

void rc__history_free(rc_engine_t *eng) {
  for (size_t i = 0; i < eng->hist_n; i++)
    rc_snapshot_release(eng->hist[(eng->hist_head + i) % eng->hist_cap].snap);
  rc__free(eng->hist);
  eng->hist = NULL;
  eng->hist_n = eng->hist_head = 0;
}

const rc__revision *rc__history_find(const rc_engine_t *eng, uint64_t revision) {
  for (size_t i = 0; i < eng->hist_n; i++) {
    const rc__revision *r = &eng->hist[(eng->hist_head + i) % eng->hist_cap];
    if (r->snap->revision == revision) return r;
  }
  return NULL;
}

/* ---- rollback and unpin ---- */

typedef struct rollback_args {
  uint64_t revision;
  rc_error *err;
} rollback_args;

void rc__pin(rc_engine_t *eng, uint64_t revision) {
  if (atomic_load(&eng->pinned)) return;
  atomic_store(&eng->pinned, true);
  rc_event_t ev = {.type = RC_EVENT_PINNED, .trigger = "rollback", .revision = revision};
  char msg[160];
  snprintf(msg, sizeof msg, "pinned at revision %llu: source changes are recorded, not "
           "applied, until unpin", (unsigned long long)revision);
  ev.message = msg;
  rc__emit_event(eng, &ev);
}

static int do_rollback(rc_engine_t *eng, void *arg) {
  rollback_args *a = arg;
  if (eng->txn)
    return rc__err(a->err, RC_ESTATE, NULL, 0, 0, "a reload is in progress; try again "
                   "when it ends");
  const rc__revision *r = rc__history_find(eng, a->revision);
  if (!r)
    return rc__err(a->err, RC_ENOTFOUND, NULL, 0, 0, "revision %llu is not in the history "
                   "(the last %zu revisions are kept: policy key `history`)",
                   (unsigned long long)a->revision, eng->hist_cap);
  struct rc_snapshot *cur = rc__snapshot_current(eng);
  rc__changeset *cs = &eng->cs;
  rc__changeset_reset(cs);
  if (rc__diff(cur->root, r->snap->root, "", cs))
    return rc__err(a->err, RC_ENOMEM, NULL, 0, 0, "out of memory");
  rc__diff_finish(cs);
  for (size_t i = 0; i < cs->n; i++)
    cs->items[i].secret = rc__path_is_secret(eng, cs->items[i].path);
  if (cs->n == 0) { /* already the running configuration */
    rc__pin(eng, cur->revision);
    return 0;
  }
  uint64_t id = eng->next_reload_id + 1;
  eng->fail_streak = 0;
  eng->retry_at = 0;
  rc__txn_begin(eng, rc__value_ref(r->snap->root), rc__value_ref(cur->root), "rollback",
                RC__TXN_PIN);
  if (rc__txn_id(eng) == id) return RC_EPENDING; /* a module answers later */
  if (eng->last_txn_id == id && eng->last_txn_code != 0)
    return rc__err(a->err, RC_EREFUSED, NULL, 0, 0, "%s", eng->last_txn_msg);
  return 0;
}

int rc_engine_rollback(rc_engine_t *eng, uint64_t revision, rc_error *err) {
  if (!eng) return rc__err(err, RC_EINVAL, NULL, 0, 0, "no engine");
  rollback_args a = {revision, err};
  int rc = rc__call_on_loop(eng, do_rollback, &a);
  if (rc == RC_ESTATE && !(err && err->code))
    rc__err(err, RC_ESTATE, NULL, 0, 0, "the engine is not running");
  return rc;
}

static int do_unpin(rc_engine_t *eng, void *arg) {
  RC__UNUSED(arg);
  if (!atomic_load(&eng->pinned)) return 0;
  atomic_store(&eng->pinned, false);
  rc_event_t ev = {.type = RC_EVENT_UNPINNED, .trigger = "unpin",
                   .message = "unpinned: the sources' latest values are applied again",
                   .revision = rc_engine_revision(eng)};
  rc__emit_event(eng, &ev);
  eng->trigger[0] = '\0';
  rc__trigger(eng, "unpin", NULL);
  eng->fail_streak = 0;
  eng->retry_at = 0;
  rc__wave(eng);
  return 0;
}

int rc_engine_unpin(rc_engine_t *eng) {
  if (!eng) return RC_EINVAL;
  return rc__call_on_loop(eng, do_unpin, NULL);
}

bool rc_engine_pinned(rc_engine_t *eng) { return eng && atomic_load(&eng->pinned); }
