/* SPDX-License-Identifier: MIT (see LICENSE) */
/* txn.c: a reload as a transaction. The changes one wave found become a candidate
 * snapshot that is not yet current; the reload modules apply them one after another (a
 * module may answer later, within its timeout, from any thread); only when every module
 * accepted is the candidate published, and only then are subscribers told. When one
 * refuses or does not answer in time, the modules that had applied get the reverse
 * changes, the candidate is dropped, the running revision stays, the components go back
 * to what it holds (the refused source values are not tried again until their source
 * changes), and the next reload waits out a backoff. One reload at a time: a wave asked
 * for meanwhile runs when it ends. Loop thread, except rc_reload_done. */
#include "engine.h"

#include <lauxlib.h>
#include <stdio.h>
#include <string.h>

/* A handle's answer: PENDING until the module answers (WRITING while it writes the
 * answer, then GIVEN) or the reload stops waiting (STALE): whichever comes first wins the
 * compare-and-swap, so an answer and a timeout never both count. */
enum { ANSWER_PENDING, ANSWER_WRITING, ANSWER_GIVEN, ANSWER_STALE };

/* One module's part of one reload, given to its apply function. Two references: the
 * reload's, and while the module may still answer, the module's. */
struct rc_reload {
  _Atomic int refs;
  _Atomic int state;
  rc_engine_t *eng;
  uint64_t id;
  bool rollback;
  int code;               /* the answer (ANSWER_GIVEN) */
  char message[256];
};

typedef struct rc__txn {
  uint64_t id;
  char trigger[128];
  int flags;                   /* RC__TXN_* */
  rc_value_t *old_root;        /* the running revision's (a reference) */
  struct rc_snapshot *candidate;  /* not published; ours */
  rc__changeset cs;            /* old -> new */
  rc_change_t *reverse;        /* new -> old, made for a rollback */
  rc__module **mods;           /* a copy of the module list when the reload began */
  size_t nmods;
  bool *applied;
  size_t next;                 /* apply: the next module; rollback: modules left */
  bool rolling_back;
  rc_reload_t *waiting;        /* the module that answers later, or NULL */
  size_t waiting_index;
  uint64_t deadline;           /* rc__now of the waiting module's timeout */
  int64_t start_ns;            /* wall clock: the candidate snapshot's making */
  uint64_t module_ns;          /* monotonic: the running module's call */
  int fail_code;
  char fail_module[64], fail_msg[400];
  char rollback_failed[256];   /* modules whose rollback failed too */
  bool nmods_oom;              /* the module list could not be copied */
} rc__txn;

static void step(rc_engine_t *eng);

/* ---- handles ---- */

static rc_reload_t *handle_new(rc_engine_t *eng, rc__txn *t, bool rollback) {
  rc_reload_t *r = rc__calloc(1, sizeof *r);
  if (!r) return NULL;
  atomic_init(&r->refs, 2);
  atomic_init(&r->state, ANSWER_PENDING);
  r->eng = eng;
  r->id = t->id;
  r->rollback = rollback;
  return r;
}

static void handle_release(rc_reload_t *r) {
  if (r && atomic_fetch_sub(&r->refs, 1) == 1) rc__free(r);
}

void rc__reload_release(rc_reload_t *r) { handle_release(r); }

int rc_reload_done(rc_reload_t *r, int code, const char *message) {
  if (!r) return RC_EINVAL;
  int expected = ANSWER_PENDING;
  if (!atomic_compare_exchange_strong(&r->state, &expected, ANSWER_WRITING)) {
    handle_release(r); /* the module's reference */
    return RC_ESTALE;
  }
  r->code = code;
  snprintf(r->message, sizeof r->message, "%s", message ? message : "");
  /* Release: the loop reads the answer after its request, posted below under a lock. */
  atomic_store_explicit(&r->state, ANSWER_GIVEN, memory_order_release);
  /* The reload's reference keeps r alive until the loop has read the answer. */
  int rc = rc__post_module_done(r->eng, r);
  handle_release(r); /* the module's reference */
  /* Not posted (out of memory, engine stopping): the module's timeout ends it. */
  return rc == RC_ENOMEM ? RC_ENOMEM : 0;
}

void rc_reload_set_reason(rc_reload_t *r, const char *message) {
  /* Only while the apply function runs: the answer is not given yet, nobody else reads. */
  if (r && atomic_load(&r->state) == ANSWER_PENDING)
    snprintf(r->message, sizeof r->message, "%s", message ? message : "");
}

uint64_t rc_reload_id(const rc_reload_t *r) { return r ? r->id : 0; }
bool rc_reload_is_rollback(const rc_reload_t *r) { return r && r->rollback; }

/* ---- events ---- */


static void emit(rc_engine_t *eng, rc__txn *t, rc_event_type_t type, const char *module,
                 int code, uint64_t duration_us, uint64_t revision, const char *fmt, ...)
  RC__PRINTF(8, 9);
static void emit(rc_engine_t *eng, rc__txn *t, rc_event_type_t type, const char *module,
                 int code, uint64_t duration_us, uint64_t revision, const char *fmt, ...) {
  if (!rc__events_wanted(eng)) return;
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  rc_event_t ev = {.type = type, .message = msg, .code = code, .reload_id = t->id,
                   .trigger = t->trigger, .module = module, .duration_us = duration_us,
                   .revision = revision, .changes = t->cs.n};
  rc__emit_event(eng, &ev);
}

/* ---- calling a module ---- */

/* The changes under m's patterns, in `out` (n entries); the reverse ones in a rollback.
 * Returns the count. */
static size_t changes_for(const rc__txn *t, const rc__module *m, rc_change_t *out) {
  const rc_change_t *src = t->rolling_back ? t->reverse : t->cs.items;
  size_t k = 0;
  for (size_t i = 0; i < t->cs.n; i++)
    if (rc__module_matches(m, &t->cs.items[i])) out[k++] = src[i];
  return k;
}

/* Calls module `i` (apply or rollback). Returns RC_OK, RC_EPENDING (t->waiting set) or a
 * refusal code with t->fail_msg filled; -1 when the module has nothing to apply. */
static int call_module(rc_engine_t *eng, rc__txn *t, size_t i) {
  rc__module *m = t->mods[i];
  rc_change_t *subset = rc__malloc((t->cs.n ? t->cs.n : 1) * sizeof *subset);
  if (!subset) {
    snprintf(t->fail_msg, sizeof t->fail_msg, "out of memory calling module '%s'", m->name);
    return RC_ENOMEM;
  }
  size_t n = changes_for(t, m, subset);
  if (n == 0) {
    rc__free(subset);
    return -1;
  }
  const struct rc_snapshot *snap = t->rolling_back ? rc__snapshot_current(eng) : t->candidate;
  rc_reload_t *r = handle_new(eng, t, t->rolling_back);
  if (!r) {
    rc__free(subset);
    snprintf(t->fail_msg, sizeof t->fail_msg, "out of memory calling module '%s'", m->name);
    return RC_ENOMEM;
  }
  t->module_ns = rc__mono_ns();
  emit(eng, t, RC_EVENT_MODULE_STARTED, m->name, 0, 0, 0, "module '%s': %s %zu %s",
       m->name, t->rolling_back ? "rolling back" : "applying", n,
       n == 1 ? "change" : "changes");
  rc__trace(eng, NULL, "module %s: %s %zu %s", m->name,
            t->rolling_back ? "rolling back" : "applying", n, n == 1 ? "change" : "changes");
  char msg[400] = "";
  int rc = m->fn ? m->fn(m->ud, r, snap, subset, n)
                 : rc__lua_module_apply(eng, m, r, snap, subset, n, msg, sizeof msg);
  rc__free(subset);
  if (rc == RC_EPENDING) {
    t->waiting = r;
    t->waiting_index = i;
    t->deadline = rc__now(eng) + m->timeout_ms;
    rc__txn_arm(eng);
    return RC_EPENDING;
  }
  /* A C module that refused at once may have said why (rc_reload_set_reason). */
  if (rc != RC_OK && !msg[0] && atomic_load(&r->state) == ANSWER_PENDING)
    snprintf(msg, sizeof msg, "%s", r->message);
  /* Answered at once: a later rc_reload_done gets RC_ESTALE. A module that answered
   * through rc_reload_done as well has posted a request, which will find the reload not
   * waiting for it and drop the reload's reference then. */
  int expected = ANSWER_PENDING;
  if (atomic_compare_exchange_strong(&r->state, &expected, ANSWER_STALE)) {
    handle_release(r); /* the module's */
    handle_release(r); /* the reload's */
  }
  if (rc != RC_OK)
    snprintf(t->fail_msg, sizeof t->fail_msg, "%s", msg[0] ? msg : rc_strerror(rc));
  return rc;
}

/* The outcome of module `i` (answered now or later). */
static void module_answered(rc_engine_t *eng, rc__txn *t, size_t i, int rc, const char *why) {
  rc__module *m = t->mods[i];
  uint64_t ns = rc__mono_ns() - t->module_ns, us = ns / 1000;
  /* The module's series, found once (the registry's lock) and kept with the module. */
  if (!m->metrics) m->metrics = rc__module_metrics_for(&eng->metrics, m->name);
  rc__observe(&m->metrics->apply, ns);
  if (rc != RC_OK) rc__count(&m->metrics->failures, 1);
  if (rc == RC_OK) {
    emit(eng, t, RC_EVENT_MODULE_COMPLETED, m->name, 0, us, 0, "module '%s': %s", m->name,
         t->rolling_back ? "rolled back" : "applied");
    rc__trace(eng, NULL, "module %s: %s", m->name, t->rolling_back ? "rolled back" : "applied");
    if (!t->rolling_back) t->applied[i] = true;
    return;
  }
  emit(eng, t, RC_EVENT_MODULE_FAILED, m->name, rc, us, 0, "module '%s' %s: %s", m->name,
       t->rolling_back ? "failed its rollback" : "refused the changes", why);
  rc__trace(eng, NULL, "module %s: %s (%s)", m->name,
            t->rolling_back ? "rollback failed" : "refused", why);
  if (t->rolling_back) {
    size_t used = strlen(t->rollback_failed);
    snprintf(t->rollback_failed + used, sizeof t->rollback_failed - used, "%s'%s'",
             used ? ", " : "", m->name);
    return;
  }
  t->fail_code = rc;
  snprintf(t->fail_module, sizeof t->fail_module, "%s", m->name);
  /* `why` is often t->fail_msg itself: copying onto itself would be undefined (glibc
   * emptied it, and the reason was lost from reload.failed and rc_engine_rollback). */
  if (why != t->fail_msg) snprintf(t->fail_msg, sizeof t->fail_msg, "%s", why);
}

/* ---- the end of a reload ---- */

static void txn_free(rc_engine_t *eng, rc__txn *t) {
  rc__value_unref(t->old_root);
  rc_snapshot_release(t->candidate);
  /* The change list's storage goes back to the engine for the next wave (a fresh one
   * for every reload cost a growth of its arrays each time). */
  if (!eng->cs.cap && !eng->cs.paths.cap) {
    rc__changeset_free(&eng->cs);
    eng->cs = t->cs;
    rc__changeset_reset(&eng->cs);
  } else {
    rc__changeset_free(&t->cs);
  }
  rc__free(t->reverse);
  rc__free(t->mods);
  rc__free(t->applied);
  rc__free(t);
}

/* Frees the reload and lets what waited for it run. */
static void txn_end(rc_engine_t *eng) {
  rc__txn *t = eng->txn;
  eng->txn = NULL;
  uv_timer_stop(&eng->txn_timer);
  txn_free(eng, t);
  rc__txn_arm(eng);
  if (eng->policy_pending) rc__policy_reload_pending(eng);
  if (eng->wave_deferred && rc__txn_may_start(eng)) rc__schedule_wave(eng);
}

/* A reload ended at `end_ns` (wall clock): its duration (returned, in µs, for the
 * events too), and how long the next one waits (0 after a commit). The duration is
 * measured between the two wall-clock reads a commit makes anyway (the candidate
 * snapshot's making, its publication): every clock read costs about 1% of a small
 * update's pipeline on a VM's clock. A step of the wall clock during a reload distorts
 * that one observation (clamped at 0); slewing does not matter at this scale. */
static uint64_t reload_ended(rc_engine_t *eng, const rc__txn *t, int64_t end_ns,
                             uint64_t backoff_ms) {
  uint64_t ns = end_ns > t->start_ns ? (uint64_t)(end_ns - t->start_ns) : 0;
  rc__observe(&eng->metrics.reload_duration, ns);
  rc__gauge_set(&eng->metrics.backoff_ms, backoff_ms);
  return ns / 1000;
}

static void commit(rc_engine_t *eng) {
  rc__txn *t = eng->txn;
  struct rc_snapshot *snap = t->candidate;
  t->candidate = NULL;
  rc__snapshot_publish(eng, snap); /* the engine's reference is now `current` */
  uint64_t us = reload_ended(eng, t, snap->time_ns, 0);
  rc__commit_done(eng, snap, &t->cs);
  rc__history_push(eng, snap, t->id, t->trigger, t->cs.n);
  eng->fail_streak = 0;
  eng->retry_at = 0;
  rc__trace(eng, NULL, "commit: revision %llu with %zu %s",
            (unsigned long long)snap->revision, t->cs.n, t->cs.n == 1 ? "change" : "changes");
  if (rc__trace_ring_on(eng)) rc__trace_ring_commit(eng, snap->revision, &t->cs);
  rc_snapshot_retain(snap);
  rc__emit_commit(eng, snap->revision, t->cs.n, t->id);
  rc__notify_subscribers(eng, snap, t->cs.items, t->cs.n);
  rc__lua_on_change(eng, snap, t->cs.items, t->cs.n);
  emit(eng, t, RC_EVENT_RELOAD_COMPLETED, NULL, 0, us, snap->revision,
       "reload %llu (%s): revision %llu with %zu %s", (unsigned long long)t->id, t->trigger,
       (unsigned long long)snap->revision, t->cs.n, t->cs.n == 1 ? "change" : "changes");
  if (t->flags & RC__TXN_PIN) rc__pin(eng, snap->revision);
  eng->last_txn_id = t->id;
  eng->last_txn_code = 0;
  rc_snapshot_release(snap);
  txn_end(eng);
}

/* Everything the modules said, then the running revision stays. */
static void failed(rc_engine_t *eng) {
  rc__txn *t = eng->txn;
  /* Consecutive failures back off: min, 2*min, ... up to max. */
  uint64_t d = eng->backoff_min_ms;
  for (uint32_t i = 0; i < eng->fail_streak && d < eng->backoff_max_ms; i++) d *= 2;
  if (d > eng->backoff_max_ms) d = eng->backoff_max_ms;
  uint64_t us = reload_ended(eng, t, rc__real_ns(), d);
  if (t->fail_module[0])
    emit(eng, t, RC_EVENT_RELOAD_FAILED, t->fail_module, t->fail_code, us, 0,
         "reload %llu (%s) failed: module '%s' refused it: %s", (unsigned long long)t->id,
         t->trigger, t->fail_module, t->fail_msg);
  else
    emit(eng, t, RC_EVENT_RELOAD_FAILED, NULL, t->fail_code ? t->fail_code : RC_ENOMEM, us,
         0, "reload %llu (%s) failed: %s", (unsigned long long)t->id, t->trigger,
         t->fail_msg);
  size_t applied = 0;
  for (size_t i = 0; i < t->nmods; i++) applied += t->applied[i];
  if (t->rollback_failed[0])
    emit(eng, t, RC_EVENT_RELOAD_ROLLEDBACK, NULL, RC_EREFUSED, us, 0,
         "reload %llu rolled back, but module(s) %s failed their rollback: the application "
         "may not be in the state of the running revision any more, which the engine "
         "cannot vouch for (%s)", (unsigned long long)t->id, t->rollback_failed, t->fail_msg);
  else
    emit(eng, t, RC_EVENT_RELOAD_ROLLEDBACK, NULL, 0, us, 0,
         "reload %llu rolled back (%zu %s had applied it): %s; the running revision stays",
         (unsigned long long)t->id, applied, applied == 1 ? "module" : "modules",
         t->fail_msg);
  /* The components go back to the running revision (a rollback to an older one changed
   * nothing in them). */
  if (!(t->flags & RC__TXN_PIN)) rc__components_revert(eng, t->old_root);
  eng->fail_streak++;
  eng->retry_at = rc__now(eng) + d;
  rc__fail_kind reason = !t->fail_module[0] || t->fail_code == RC_ENOMEM ? RC__FAIL_ERROR
                         : t->fail_code == RC_ETIMEDOUT                ? RC__FAIL_TIMEOUT
                                                                       : RC__FAIL_REFUSED;
  rc__count(&eng->metrics.reload_failures[reason], 1);
  eng->last_txn_id = t->id;
  eng->last_txn_code = t->fail_code ? t->fail_code : RC_EREFUSED;
  if (t->fail_module[0])
    snprintf(eng->last_txn_msg, sizeof eng->last_txn_msg, "module '%.60s' refused: %.400s",
             t->fail_module, t->fail_msg);
  else
    snprintf(eng->last_txn_msg, sizeof eng->last_txn_msg, "%s", t->fail_msg);
  rc__trace(eng, NULL, "reload failed: the next one waits %llu ms", (unsigned long long)d);
  txn_end(eng);
}

/* A refusal: the modules that applied get the reverse changes, last first. */
static void start_rollback(rc_engine_t *eng) {
  rc__txn *t = eng->txn;
  t->rolling_back = true;
  t->reverse = rc__malloc((t->cs.n ? t->cs.n : 1) * sizeof *t->reverse);
  if (!t->reverse) {
    snprintf(t->rollback_failed, sizeof t->rollback_failed, "(all: out of memory)");
    t->next = 0;
    return;
  }
  for (size_t i = 0; i < t->cs.n; i++) {
    rc_change_t c = t->cs.items[i];
    t->reverse[i] = c;
    t->reverse[i].old_value = c.new_value;
    t->reverse[i].new_value = c.old_value;
    if (c.kind == RC_CHANGE_ADDED) t->reverse[i].kind = RC_CHANGE_REMOVED;
    else if (c.kind == RC_CHANGE_REMOVED) t->reverse[i].kind = RC_CHANGE_ADDED;
  }
  t->next = t->nmods;
}

/* Runs modules until one answers later or the reload ends. */
static void step(rc_engine_t *eng) {
  rc__txn *t = eng->txn;
  while (t && !t->waiting) {
    if (!t->rolling_back) {
      if (t->next == t->nmods) {
        commit(eng);
        return;
      }
      size_t i = t->next++;
      int rc = call_module(eng, t, i);
      if (rc == -1 || rc == RC_EPENDING) continue;
      module_answered(eng, t, i, rc, t->fail_msg);
      if (rc != RC_OK) start_rollback(eng);
    } else {
      while (t->next > 0 && !t->applied[t->next - 1]) t->next--;
      if (t->next == 0) {
        failed(eng);
        return;
      }
      size_t i = --t->next;
      int rc = call_module(eng, t, i);
      if (rc == -1 || rc == RC_EPENDING) continue;
      module_answered(eng, t, i, rc, t->fail_msg);
    }
  }
}

/* ---- answers and timeouts ---- */

void rc__txn_module_done(rc_engine_t *eng, rc_reload_t *r) {
  rc__txn *t = eng->txn;
  if (!t || t->waiting != r) { /* the reload is over (timed out, or the engine stopped) */
    handle_release(r);
    return;
  }
  t->waiting = NULL;
  char why[sizeof r->message];
  snprintf(why, sizeof why, "%s", r->message[0] ? r->message : rc_strerror(r->code));
  int code = r->code;
  handle_release(r);
  module_answered(eng, t, t->waiting_index, code, why);
  if (code != RC_OK && !t->rolling_back) start_rollback(eng);
  step(eng);
}

/* The waiting module's time is up (now >= its deadline). */
static void timed_out(rc_engine_t *eng) {
  rc__txn *t = eng->txn;
  rc_reload_t *r = t->waiting;
  int expected = ANSWER_PENDING;
  if (!atomic_compare_exchange_strong(&r->state, &expected, ANSWER_STALE)) {
    t->deadline = UINT64_MAX; /* answered just now: its request is on the way */
    return;
  }
  /* The module's reference stays with the module: its late rc_reload_done drops it. */
  t->waiting = NULL;
  handle_release(r);
  char why[128];
  snprintf(why, sizeof why, "no answer within its timeout of %u ms",
           t->mods[t->waiting_index]->timeout_ms);
  module_answered(eng, t, t->waiting_index, RC_ETIMEDOUT, why);
  if (!t->rolling_back) start_rollback(eng);
  step(eng);
}

static void timer_cb(uv_timer_t *tm) {
  rc_engine_t *eng = tm->data;
  rc__txn_run_due(eng, rc__now(eng));
  rc__txn_arm(eng);
}

void rc__txn_arm(rc_engine_t *eng) {
  if (!eng->handles_init || eng->virtual_clock || eng->state != RC__ST_RUNNING) return;
  uint64_t due = 0;
  if (!rc__txn_next_deadline(eng, &due)) {
    uv_timer_stop(&eng->txn_timer);
    return;
  }
  uint64_t now = rc__now(eng);
  uv_timer_start(&eng->txn_timer, timer_cb, due > now ? due - now : 0, 0);
}

bool rc__txn_next_deadline(const rc_engine_t *eng, uint64_t *due) {
  bool any = false;
  uint64_t d = 0;
  if (eng->txn && eng->txn->waiting) d = eng->txn->deadline, any = true;
  if (!eng->txn && eng->wave_deferred && eng->retry_at && (!any || eng->retry_at < d))
    d = eng->retry_at, any = true;
  if (eng->request_deadline && (!any || eng->request_deadline < d))
    d = eng->request_deadline, any = true;
  *due = d;
  return any;
}

void rc__txn_run_due(rc_engine_t *eng, uint64_t now) {
  if (eng->txn && eng->txn->waiting && now >= eng->txn->deadline) timed_out(eng);
  rc__request_timeout(eng, now);
  /* The backoff after failed reloads is over: the wave that waited runs. */
  if (!eng->txn && eng->wave_deferred && rc__txn_may_start(eng)) rc__wave(eng);
}

uint64_t rc__txn_id(const rc_engine_t *eng) { return eng->txn ? eng->txn->id : 0; }

bool rc__txn_may_start(rc_engine_t *eng) {
  return !eng->txn && (!eng->retry_at || rc__now(eng) >= eng->retry_at);
}

/* ---- beginning ---- */

void rc__txn_begin(rc_engine_t *eng, rc_value_t *root, rc_value_t *old_root,
                   const char *trigger, int flags) {
  rc__txn *t = rc__calloc(1, sizeof *t);
  struct rc_snapshot *cand = t ? rc__snapshot_make(eng, root) : NULL;
  if (!cand) {
    if (t) rc__free(t);
    else rc__value_unref(root);
    rc__value_unref(old_root);
    rc__emit(eng, RC_EVENT_POLICY_ERROR, NULL, NULL, 0, 0, RC_ENOMEM,
             "out of memory starting a reload; the running configuration stays");
    return;
  }
  t->id = ++eng->next_reload_id;
  rc__strcpy_cut(t->trigger, sizeof t->trigger, trigger && *trigger ? trigger : "source");
  t->flags = flags;
  t->old_root = old_root;
  t->candidate = cand;
  t->start_ns = cand->time_ns; /* read by rc__snapshot_make just now */
  rc__count(&eng->metrics.reload_attempts[rc__trigger_kind_of(t->trigger)], 1);
  /* The wave's change list becomes the reload's; the engine gets an empty one. */
  t->cs = eng->cs;
  rc__changeset_init(&eng->cs);
  t->mods = rc__modules_snapshot(eng, &t->nmods, &t->nmods_oom);
  t->applied = t->nmods ? rc__calloc(t->nmods, sizeof *t->applied) : NULL;
  eng->txn = t;
  if (t->nmods_oom || (t->nmods && !t->applied)) {
    rc__emit(eng, RC_EVENT_POLICY_ERROR, NULL, NULL, 0, 0, RC_ENOMEM,
             "out of memory starting a reload; the running configuration stays");
    rc__count(&eng->metrics.reload_failures[RC__FAIL_ERROR], 1);
    reload_ended(eng, t, rc__real_ns(), 0);
    rc__components_revert(eng, t->old_root);
    txn_end(eng);
    return;
  }
  emit(eng, t, RC_EVENT_RELOAD_STARTED, NULL, 0, 0, 0, "reload %llu (%s): %zu %s",
       (unsigned long long)t->id, t->trigger, t->cs.n, t->cs.n == 1 ? "change" : "changes");
  step(eng);
}

void rc__txn_nothing(rc_engine_t *eng, const char *trigger, const char *why) {
  rc__txn t = {.id = ++eng->next_reload_id};
  snprintf(t.trigger, sizeof t.trigger, "%s", trigger);
  rc__count(&eng->metrics.reload_attempts[rc__trigger_kind_of(t.trigger)], 1);
  emit(eng, &t, RC_EVENT_RELOAD_STARTED, NULL, 0, 0, 0, "reload %llu (%s): 0 changes",
       (unsigned long long)t.id, t.trigger);
  emit(eng, &t, RC_EVENT_RELOAD_COMPLETED, NULL, 0, 0, rc_engine_revision(eng),
       "reload %llu (%s): %s", (unsigned long long)t.id, t.trigger, why);
}

void rc__txn_abandon(rc_engine_t *eng) {
  rc__txn *t = eng->txn;
  if (!t) return;
  if (t->waiting) {
    int expected = ANSWER_PENDING;
    atomic_compare_exchange_strong(&t->waiting->state, &expected, ANSWER_STALE);
    handle_release(t->waiting);
    t->waiting = NULL;
  }
  eng->txn = NULL;
  txn_free(eng, t);
}
