/* SPDX-License-Identifier: MIT (see LICENSE) */
/* reload.c: hot reload of the policy itself. The policy file is watched like any file
 * source (a private component whose deliveries come here). A new version is compiled
 * into a fresh environment, then evaluated once on trial with the current source values:
 * sources whose description did not change are lent to it, new ones start. Only if the
 * compile and that first evaluation succeed does it replace the running policy (sources
 * of removed or changed components stop) and commit in one wave; otherwise the running
 * policy stays and an error event says why. Loop thread. */
#include "engine.h"
#include "registry.h"

#include <lauxlib.h>
#include <string.h>

/* The engine's evaluation state that a trial swaps out and back: the components, their
 * order and scheduler, and the version's Lua state with its policy-level on_error. */
typedef struct engine_view {
  rc__component **comps;
  size_t ncomps;
  int *order;
  rc__sched sched;
  lua_State *L;
  int on_error_ref;
  rc__on_error on_error;
} engine_view;

static void swap_view(rc_engine_t *eng, engine_view *v) {
  engine_view cur = {eng->comps, eng->ncomps, eng->order, eng->sched, eng->L,
                     eng->on_error_ref, eng->on_error};
  eng->comps = v->comps;
  eng->ncomps = v->ncomps;
  eng->order = v->order;
  eng->sched = v->sched;
  eng->L = v->L;
  eng->on_error_ref = v->on_error_ref;
  eng->on_error = v->on_error;
  *v = cur;
}

/* The running component whose source `nc` may keep: the same name and source identity,
 * and a source that reads nothing from its version's Lua state (a Lua source's function
 * belongs to the old state). */
static rc__component *find_old(const rc__name_index *old, const rc__component *nc) {
  rc__component *oc = rc__name_index_find(old, nc->name, strlen(nc->name));
  if (!oc || !oc->src || strcmp(oc->src_key, nc->src_key) != 0) return NULL;
  return rc__source_uses_lua(oc->src) ? NULL : oc;
}

/* Lends the running source of an unchanged component to its successor, with its latest
 * value (one still waiting for debounce or throttle is taken as delivered). */
static void lend_source(rc__component *oc, rc__component *nc) {
  nc->src = oc->src;
  nc->src_borrowed = true;
  const rc_value_t *v = oc->has_pending ? oc->pending : oc->value;
  if (!oc->has_pending && oc->held) v = oc->held;
  nc->value = rc__value_ref(v);
  nc->in_error = oc->in_error;
  nc->dirty = true;
}

static void configure_sched(rc_engine_t *eng) {
  for (size_t i = 0; i < eng->ncomps; i++) {
    rc__component *c = eng->comps[i];
    rc__sched_config(&eng->sched, i, c->debounce_ms, c->debounce_max_ms);
    rc__sched_throttle_config(&eng->sched, i, c->throttle_ms, c->throttle_burst);
  }
}

/* Counts for the reload message. */
typedef struct reload_stats {
  size_t kept, started, stopped;
} reload_stats;

static void reload_failed(rc_engine_t *eng, rc_error *err) {
  rc__emit(eng, RC_EVENT_POLICY_ERROR, NULL, err->file[0] ? err->file : eng->policy_path,
           err->line, err->column, err->code,
           "policy reload failed, the running policy stays: %s", err->message);
}

static void reload_text(rc_engine_t *eng, const char *text, size_t len) {
  rc__policy p;
  rc_error err = {0};
  if (rc__policy_compile(eng, text, len, &p, &err)) {
    reload_failed(eng, &err);
    return;
  }
  engine_view trial = {p.comps, p.ncomps, p.order, {0}, p.L, p.on_error_ref, p.on_error};
  /* The running components by name, so that matching is linear, not quadratic. */
  rc__name_index old_ix = {0};
  bool *kept = rc__calloc(eng->ncomps ? eng->ncomps : 1, sizeof *kept);
  if (!kept || rc__name_index_build(&old_ix, eng->comps, eng->ncomps) ||
      rc__sched_init(&trial.sched, p.ncomps)) {
    rc__free(kept);
    rc__name_index_free(&old_ix);
    rc__policy_discard(eng, &p);
    rc__err(&err, RC_ENOMEM, eng->policy_path, 0, 0, "out of memory");
    reload_failed(eng, &err);
    return;
  }
  engine_view old = trial;
  swap_view(eng, &old); /* eng now evaluates the new policy; `old` holds the running one */
  configure_sched(eng);
  reload_stats st = {0};
  eng->trial = true;
  struct rc_snapshot *cur = rc__snapshot_current(eng);
  for (size_t i = 0; i < eng->ncomps; i++) {
    rc__component *nc = eng->comps[i];
    /* dynamic = false outlives a policy reload: a component that keeps its name starts
     * from its running value, so the new version holds its static paths as the old one
     * did instead of applying them as a first value. */
    if ((nc->static_all || nc->nstatic) && cur) {
      rc__component *same = rc__name_index_find(&old_ix, nc->name, strlen(nc->name));
      if (same && same->committed) {
        nc->committed = true;
        rc__value_unref(nc->result);
        nc->result = rc__value_ref(rc_value_get(cur->root, nc->name));
      }
    }
    rc__component *oc = find_old(&old_ix, nc);
    if (oc) {
      lend_source(oc, nc);
      kept[oc->index] = true;
    } else if (nc->condition_ref == LUA_NOREF) {
      rc_error serr = {0};
      if (rc__source_start(nc, &serr)) rc__deliver_error(nc, &serr);
    }
  }
  rc__name_index_free(&old_ix);
  int failures = rc__evaluate(eng);
  eng->trial = false;
  if (failures) {
    for (size_t i = 0; i < eng->ncomps; i++) {
      rc__component *nc = eng->comps[i];
      if (nc->src && !nc->src_borrowed) rc__source_retire(eng, nc->src);
      nc->src = NULL;
    }
    rc__free(kept);
    rc__sched_free(&eng->sched);
    swap_view(eng, &old);
    rc__health_install(eng); /* the trial wrote to the records of names it shares */
    rc__policy_discard(eng, &p);
    rc__emit(eng, RC_EVENT_POLICY_ERROR, NULL, eng->policy_path, 0, 0, RC_EPOLICY,
             "policy reload rejected: its first evaluation failed (%d %s above); the "
             "running policy stays", failures, failures == 1 ? "error" : "errors");
    return;
  }
  /* Commit: borrowed sources move to their new component, the rest of the old stop. */
  for (size_t i = 0; i < eng->ncomps; i++) {
    rc__component *nc = eng->comps[i];
    if (nc->src && nc->src_borrowed) {
      rc__source_adopt(nc->src, nc);
      nc->src_borrowed = false;
      st.kept++;
    } else if (nc->src) {
      st.started++;
    }
  }
  for (size_t i = 0; i < old.ncomps; i++) {
    rc__component *oc = old.comps[i];
    if (oc->src && !kept[i]) {
      rc__source_retire(eng, oc->src);
      st.stopped++;
    }
    oc->src = NULL;
  }
  rc__free(kept);
  /* The new scheduler stays; install frees the components in eng and retires the Lua
   * state in eng, so put the old ones back first, and takes p's (the ones just
   * evaluated, with their state). */
  rc__sched_free(&old.sched);
  eng->comps = old.comps;
  eng->ncomps = old.ncomps;
  eng->order = old.order;
  eng->L = old.L;
  rc__policy_install(eng, &p);
  eng->reloads++;
  rc__emit(eng, RC_EVENT_POLICY_RELOADED, NULL, eng->policy_path, 0, 0, 0,
           "policy reloaded: %zu %s (%zu sources kept, %zu started, %zu stopped)",
           eng->ncomps, eng->ncomps == 1 ? "component" : "components", st.kept,
           st.started, st.stopped);
  eng->trigger[0] = '\0';
  rc__trigger(eng, "policy", NULL);
  rc__wave(eng);
  rc__reschedule(eng);
}

/* ---- the policy file's watch ---- */

static void policy_delivered(rc__component *c, rc_value_t *v) {
  rc_engine_t *eng = c->eng;
  const char *text;
  size_t len;
  if (v && rc_value_string(v, &text, &len) == 0 && eng->state == RC__ST_RUNNING) {
    uint8_t d[16];
    rc__digest128(text, len, d);
    if (memcmp(d, eng->policy_digest, sizeof d) != 0) {
      memcpy(eng->policy_digest, d, sizeof d);
      eng->policy_hash = rc__hash64(text, len);
      if (rc__txn_id(eng)) {
        /* One reload at a time: this one waits for the reload in progress to end. */
        char *copy = rc__strndup(text, len);
        if (copy) {
          rc__free(eng->policy_pending);
          eng->policy_pending = copy;
          eng->policy_pending_len = len;
        } else {
          /* out of memory: the next save is read again */
          memset(eng->policy_digest, 0, sizeof eng->policy_digest);
          eng->policy_hash = 0;
        }
      } else {
        reload_text(eng, text, len);
      }
    }
  }
  rc__value_unref(v);
}

void rc__policy_reload_pending(rc_engine_t *eng) {
  char *text = eng->policy_pending;
  size_t len = eng->policy_pending_len;
  eng->policy_pending = NULL;
  if (text && eng->state == RC__ST_RUNNING) reload_text(eng, text, len);
  rc__free(text);
}

/* The policy file's watch: a source of the kind that watches a file (RC__SRC_FILE),
 * reading it as text, with that kind's defaults for the rest. */
int rc__policy_watch_start(rc_engine_t *eng, rc_error *err) {
  if (!eng->policy_real || !eng->watch_policy || eng->no_sources) return 0;
  const rc__source_kind *kind = rc__kind_with(RC__SRC_FILE);
  if (!kind) return 0;
  rc__component *c = rc__calloc(1, sizeof *c);
  if (!c) return rc__err(err, RC_ENOMEM, NULL, 0, 0, "out of memory");
  c->eng = eng;
  c->index = -1;
  c->kind = kind;
  c->update_ref = c->condition_ref = c->validate_ref = c->transform_ref = LUA_NOREF;
  c->filter_ref = c->debounce_ref = c->on_error_ref = c->src_desc_ref = LUA_NOREF;
  c->deliver_hook = policy_delivered;
  eng->policy_watch = c;
  c->name = rc__strdup("(policy)");
  c->src_key = rc__strdup("");
  c->target = rc__strdup(eng->policy_real);
  rc__object_builder b;
  rc__object_begin(&b);
  rc__object_put(&b, "path", 4, rc__value_string(eng->policy_real, strlen(eng->policy_real)));
  rc__object_put(&b, "format", 6, rc__value_string("text", 4));
  /* The policy file's size limit, as at load (a read is never larger). */
  rc__object_builder lim;
  rc__object_begin(&lim);
  rc__object_put(&lim, "max_bytes", 9, rc__value_int((int64_t)RC__POLICY_MAX_BYTES));
  rc__object_put(&b, "limits", 6, rc__object_end(&lim));
  c->src_opts = rc__object_end(&b);
  if (!c->name || !c->src_key || !c->target || !c->src_opts)
    return rc__err(err, RC_ENOMEM, NULL, 0, 0, "out of memory");
  return rc__source_start(c, err);
}

void rc__policy_watch_stop(rc_engine_t *eng) {
  rc__component *c = eng->policy_watch;
  if (c && c->src) {
    rc__source_retire(eng, c->src);
    c->src = NULL;
  }
}

void rc__policy_watch_free(rc_engine_t *eng) {
  rc__component *c = eng->policy_watch;
  if (!c) return;
  rc__source_free(c->src);
  c->src = NULL;
  rc__component_free(c);
  eng->policy_watch = NULL;
}
