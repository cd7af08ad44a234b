/* SPDX-License-Identifier: MIT (see LICENSE) */
/* wave.c: one wave: evaluate what is due (evaluate.c), build the new root from every
 * component, diff it against the committed one, and commit and notify only when
 * something changed. */
#include "engine.h"

#include <stdio.h>
#include <string.h>

/* Before the first commit the old root is an empty object, so that revision 1 lists one
 * "added" per component rather than one change for the whole root. */
static rc_value_t *empty_object(void) {
  rc__object_builder b;
  rc__object_begin(&b);
  return rc__object_end(&b);
}

/* The root object: each present component in declaration order, by reference. */
static rc_value_t *build_root(rc_engine_t *eng) {
  rc__object_builder b;
  rc__object_begin(&b);
  for (size_t i = 0; i < eng->ncomps; i++) {
    rc__component *c = eng->comps[i];
    const rc_value_t *v = rc__component_value(c);
    if (v) rc__object_put(&b, c->name, strlen(c->name), rc__value_ref(v));
  }
  return rc__object_end(&b);
}

/* force: a component that delivered an unchanged value is reported as "touched" unless
 * the diff already has changes of it. Returns false on OOM. */
static bool add_touched(rc_engine_t *eng, rc__changeset *cs, const rc_value_t *root) {
  for (size_t i = 0; i < eng->ncomps; i++) {
    rc__component *c = eng->comps[i];
    if (!c->touched) continue;
    c->touched = false;
    size_t nlen = strlen(c->name);
    bool listed = false;
    for (size_t k = 0; k < cs->n && !listed; k++) {
      const char *p = cs->items[k].path;
      listed = strncmp(p, c->name, nlen) == 0 && (p[nlen] == '\0' || p[nlen] == '.' ||
                                                  p[nlen] == '[');
    }
    if (listed) continue;
    const rc_value_t *v = rc_value_get(root, c->name);
    if (!v) continue;
    if (RC__GROW(cs->items, cs->cap, cs->n + 1, 16)) return false;
    /* The path points at the component's own name, which outlives the wave. */
    cs->items[cs->n++] = (rc_change_t){.path = c->name, .kind = RC_CHANGE_TOUCHED,
                                       .old_value = v, .new_value = v};
  }
  return true;
}

static void mark_secrets(rc_engine_t *eng, rc__changeset *cs) {
  for (size_t i = 0; i < cs->n; i++)
    cs->items[i].secret = rc__path_is_secret(eng, cs->items[i].path);
}

/* ---- what the next reload is ---- */

void rc__trigger(rc_engine_t *eng, const char *kind, const char *name) {
  size_t used = strlen(eng->trigger);
  if (used == 0) { /* "kind" or "kind:name", cut to fit; once per delivery: no printf */
    size_t k = rc__strcpy_cut(eng->trigger, sizeof eng->trigger, kind);
    if (name && k + 2 < sizeof eng->trigger) {
      eng->trigger[k] = ':';
      rc__strcpy_cut(eng->trigger + k + 1, sizeof eng->trigger - k - 1, name);
    }
    return;
  }
  /* Sources add their names to a "source:" trigger; the first other trigger stays. */
  if (!name || strncmp(eng->trigger, "source:", 7) != 0 || strcmp(kind, "source") != 0)
    return;
  size_t nlen = strlen(name);
  for (const char *p = eng->trigger + 7; *p;) {
    const char *end = strchr(p, ',');
    size_t len = end ? (size_t)(end - p) : strlen(p);
    if (len == nlen && strncmp(p, name, len) == 0) return;
    p += len + (end != NULL);
  }
  if (used + 1 + nlen < sizeof eng->trigger) {
    eng->trigger[used] = ',';
    memcpy(eng->trigger + used + 1, name, nlen + 1);
  }
}

/* ---- after a commit, and after a refusal ---- */

void rc__commit_done(rc_engine_t *eng, const struct rc_snapshot *snap,
                     const rc__changeset *cs) {
  RC__UNUSED(snap);
  rc__metrics *m = &eng->metrics;
  rc__count(&m->commits, 1);
  uint64_t by_kind[4] = {0};
  for (size_t i = 0; i < cs->n; i++) by_kind[(cs->items[i].kind - 1) & 3]++;
  for (int k = 0; k < 4; k++)
    if (by_kind[k]) rc__count(&m->changes[k], by_kind[k]);
  for (size_t i = 0; i < eng->ncomps; i++) {
    rc__component *c = eng->comps[i];
    c->committed = true;
    c->rejected = false;
  }
  if (eng->cache_dir) rc__cache_store_all(eng);
}

void rc__components_revert(rc_engine_t *eng, const rc_value_t *root) {
  for (size_t i = 0; i < eng->ncomps; i++) {
    rc__component *c = eng->comps[i];
    const rc_value_t *was = rc_value_get(root, c->name);
    const rc_value_t *now = rc__component_value(c);
    if (was == now) continue;
    /* The refused value stays out until its source changes again: the source delivers
     * only what differs from its last delivery. */
    c->rejected = true;
    if (c->processed) {
      c->refused = true;
      rc__value_unref(c->result);
      c->result = rc__value_ref(was);
    } else {
      rc__value_unref(c->value);
      c->value = rc__value_ref(was);
    }
    c->changed_at = ++eng->stamp;
    rc__health_rejected(c);
    rc__trace(eng, c, "refused by a reload module: back to the running value");
  }
}

/* ---- the wave ---- */

/* Revision 1: what the application starts with, committed at once (modules apply the
 * reloads after it). */
static void commit_first(rc_engine_t *eng, rc_value_t *root, rc__changeset *cs) {
  struct rc_snapshot *snap = rc__snapshot_make(eng, root);
  if (!snap) {
    rc__emit(eng, RC_EVENT_POLICY_ERROR, NULL, NULL, 0, 0, RC_ENOMEM,
             "out of memory committing; the last configuration stays");
    return;
  }
  rc__snapshot_publish(eng, snap);
  rc__commit_done(eng, snap, cs);
  rc__history_push(eng, snap, 0, "start", cs->n);
  rc__trace(eng, NULL, "commit: revision %llu with %zu %s",
            (unsigned long long)snap->revision, cs->n, cs->n == 1 ? "change" : "changes");
  if (rc__trace_ring_on(eng)) rc__trace_ring_commit(eng, snap->revision, cs);
  rc_snapshot_retain(snap);
  rc__emit_commit(eng, snap->revision, cs->n, 0);
  rc__notify_subscribers(eng, snap, cs->items, cs->n);
  rc__lua_on_change(eng, snap, cs->items, cs->n);
  rc_snapshot_release(snap);
}

void rc__wave(rc_engine_t *eng) {
  if (eng->state != RC__ST_RUNNING) return;
  /* One reload at a time, and none while failed ones back off: this wave runs when it
   * may (txn.c). */
  if (!rc__txn_may_start(eng)) {
    eng->wave_deferred = true;
    rc__txn_arm(eng);
    return;
  }
  eng->wave_deferred = false;
  rc__evaluate(eng);
  char trigger[sizeof eng->trigger];
  rc__strcpy_cut(trigger, sizeof trigger, eng->trigger);
  eng->trigger[0] = '\0';
  bool requested = eng->requested;
  eng->requested = false;
  struct rc_snapshot *cur = rc__snapshot_current(eng);
  if (eng->pinned && cur) {
    rc__trace(eng, NULL, "pinned: source changes recorded, not applied");
    if (requested) rc__txn_nothing(eng, trigger, "pinned: nothing is applied until unpin");
    return;
  }
  rc_value_t *root = build_root(eng);
  if (!root) {
    rc__emit(eng, RC_EVENT_POLICY_ERROR, NULL, NULL, 0, 0, RC_ENOMEM,
             "out of memory building the new configuration; the last one stays");
    return;
  }
  /* Hold the old root: the diff's old values point into it, and publishing may release
   * the old snapshot before subscribers have seen the changes. */
  rc_value_t *old_root = cur ? rc__value_ref(cur->root) : empty_object();
  rc__changeset *cs = &eng->cs;
  rc__changeset_reset(cs);
  if (!old_root || rc__diff(old_root, root, "", cs)) {
    rc__value_unref(old_root);
    rc__value_unref(root);
    rc__emit(eng, RC_EVENT_POLICY_ERROR, NULL, NULL, 0, 0, RC_ENOMEM,
             "out of memory computing changes; the last configuration stays");
    return;
  }
  rc__diff_finish(cs);
  if (!add_touched(eng, cs, root))
    rc__emit(eng, RC_EVENT_POLICY_ERROR, NULL, NULL, 0, 0, RC_ENOMEM,
             "out of memory listing the components that force a notification; the "
             "changes go on without them");
  mark_secrets(eng, cs);
  if (cs->n == 0 && cur) { /* unchanged input: no commit, no notification */
    rc__trace(eng, NULL, "diff: nothing changed; no commit");
    rc__value_unref(old_root);
    rc__value_unref(root);
    if (requested) rc__txn_nothing(eng, trigger, "nothing changed");
    return;
  }
  if (!cur) {
    commit_first(eng, root, cs);
    rc__value_unref(old_root);
    return;
  }
  rc__txn_begin(eng, root, old_root, trigger, 0);
}
