/* SPDX-License-Identifier: MIT (see LICENSE) */
/* subscribe.c: C subscriptions by path pattern and their delivery after each commit.
 * The list is appended at the tail under a mutex (subscribers are called in the order
 * they subscribed); the loop thread walks it without the lock, and unsubscribing during
 * a walk only marks the entry, which is unlinked when no walk runs. */
#include "engine.h"

#include <string.h>

/* ---- patterns ---- */

enum { SEG_KEY, SEG_INDEX, SEG_STAR, SEG_DSTAR };
typedef struct seg {
  int kind;
  const char *key;  /* into the owning buffer */
  size_t klen;
  size_t index;
} seg;

/* Patterns have at most this many segments; change paths may have more (a config nests
 * up to its parser's depth limit), which then live on the heap. */
#define MAX_SEGS 64

/* A path split into segments: `v` is `stack` or a heap array; `keys` holds the
 * unescaped keys the segments point into. */
typedef struct segs {
  seg stack[MAX_SEGS];
  seg *v;
  int n, cap;
  rc__buf keys;
} segs;

static void segs_init(segs *s) {
  s->v = s->stack;
  s->n = 0;
  s->cap = MAX_SEGS;
  rc__buf_init(&s->keys);
}

static void segs_free(segs *s) {
  if (s->v != s->stack) rc__free(s->v);
  rc__buf_free(&s->keys);
}

/* Splits `path` into `out` (pattern: at most MAX_SEGS segments, and a bare `*` or `**`
 * segment is a wildcard). Returns 0, RC_EINVAL (malformed, or a pattern too long) or
 * RC_ENOMEM. */
static int split(const char *path, bool pattern, segs *out) {
  size_t pos = 0;
  int rc = 0;
  rc__buf scratch;
  rc__buf_init(&scratch);
  rc__buf_reset(&out->keys);
  out->n = 0;
  for (;;) {
    size_t start = pos;
    const char *key;
    size_t klen, index;
    int r = rc__path_next(path, &pos, &scratch, &key, &klen, &index);
    if (r <= 0) {
      if (r < 0) rc = RC_EINVAL;
      else if (out->keys.oom || scratch.oom) rc = RC_ENOMEM;
      break;
    }
    if (out->n == out->cap) {
      if (pattern) {
        rc = RC_EINVAL;
        break;
      }
      int cap = out->cap * 2;
      seg *v = rc__malloc((size_t)cap * sizeof *v);
      if (!v) {
        rc = RC_ENOMEM;
        break;
      }
      memcpy(v, out->v, (size_t)out->n * sizeof *v);
      if (out->v != out->stack) rc__free(out->v);
      out->v = v;
      out->cap = cap;
    }
    const char *raw = path + start + (path[start] == '.');
    size_t rawlen = (size_t)(path + pos - raw);
    seg *sg = &out->v[out->n];
    if (pattern && key && rawlen == 1 && raw[0] == '*') {
      sg->kind = SEG_STAR;
    } else if (pattern && key && rawlen == 2 && raw[0] == '*' && raw[1] == '*') {
      sg->kind = SEG_DSTAR;
    } else if (key) {
      sg->kind = SEG_KEY;
      sg->index = out->keys.n; /* the key's offset until the buffer stops moving */
      sg->klen = klen;
      rc__buf_add(&out->keys, key, klen);
      rc__buf_addc(&out->keys, '\0');
    } else {
      sg->kind = SEG_INDEX;
      sg->index = index;
    }
    out->n++;
  }
  rc__buf_free(&scratch);
  if (rc) return rc;
  for (int i = 0; i < out->n; i++)
    if (out->v[i].kind == SEG_KEY) out->v[i].key = out->keys.p + out->v[i].index;
  return 0;
}

static bool seg_eq(const seg *p, const seg *c) {
  if (p->kind == SEG_STAR) return true;
  if (p->kind != c->kind) return false;
  if (p->kind == SEG_INDEX) return p->index == c->index;
  return p->klen == c->klen && memcmp(p->key, c->key, p->klen) == 0;
}

/* The two agree on every segment they both have. When the change path runs out first,
 * the change is an ancestor of what the pattern names: it matches only if it replaced a
 * container, which could hold the pattern's target. */
static bool match(const seg *p, int np, const seg *c, int nc, bool container) {
  if (np == 0) return true;
  if (nc == 0) {
    if (!container) return np == 1 && p[0].kind == SEG_DSTAR;
    return true;
  }
  if (p[0].kind == SEG_DSTAR)
    return match(p + 1, np - 1, c, nc, container) || match(p, np, c + 1, nc - 1, container);
  return seg_eq(&p[0], &c[0]) && match(p + 1, np - 1, c + 1, nc - 1, container);
}

static bool is_container(const rc_value_t *v) {
  rc_type_t t = rc_value_type(v);
  return v && (t == RC_TYPE_OBJECT || t == RC_TYPE_ARRAY);
}

/* Whether `path` matches `pattern`. Out of memory counts as a match: a subscriber may
 * then get a change beyond its pattern, but never misses one. */
static bool match_paths(const char *pattern, const char *path, bool container) {
  segs p, c;
  segs_init(&p);
  segs_init(&c);
  int rp = split(pattern, true, &p);
  int rcp = rp ? rp : split(path, false, &c);
  bool ok = rp == RC_ENOMEM || rcp == RC_ENOMEM ||
            (rp == 0 && rcp == 0 && match(p.v, p.n, c.v, c.n, container));
  segs_free(&p);
  segs_free(&c);
  return ok;
}

static bool match_change(const char *pattern, const rc_change_t *ch) {
  return match_paths(pattern, ch->path,
                     is_container(ch->old_value) || is_container(ch->new_value));
}

bool rc__pattern_valid(const char *pattern) {
  segs p;
  segs_init(&p);
  int rc = split(pattern, true, &p);
  segs_free(&p);
  return rc == 0;
}

bool rc__change_matches(const char *pattern, const rc_change_t *ch) {
  if (!*pattern || strcmp(pattern, "**") == 0) return true;
  return match_change(pattern, ch);
}

bool rc__pattern_match(const char *pattern, const char *path) {
  return match_paths(pattern, path, false);
}

bool rc__pattern_touches(const char *pattern, const char *path) {
  return match_paths(pattern, path, true);
}

/* ---- subscriptions ---- */

int rc_subscribe(rc_engine_t *eng, const char *pattern, rc_change_fn fn, void *ud,
                 rc_error *err) {
  if (!eng || !pattern || !fn)
    return rc__err(err, RC_EINVAL, NULL, 0, 0, "rc_subscribe: engine, pattern and fn needed");
  segs ps;
  segs_init(&ps);
  int src = *pattern ? split(pattern, true, &ps) : 0;
  segs_free(&ps);
  if (src == RC_ENOMEM) return rc__err(err, RC_ENOMEM, NULL, 0, 0, "out of memory");
  if (src)
    return rc__err(err, RC_EINVAL, NULL, 0, 0,
                   "malformed subscription pattern '%s' (or more than %d segments)",
                   pattern, MAX_SEGS);
  rc__sub *s = rc__calloc(1, sizeof *s);
  char *copy = rc__strdup(pattern);
  if (!s || !copy) {
    rc__free(s);
    rc__free(copy);
    return rc__err(err, RC_ENOMEM, NULL, 0, 0, "out of memory");
  }
  s->pattern = copy;
  s->fn = fn;
  s->ud = ud;
  atomic_init(&s->next, NULL);
  pthread_mutex_lock(&eng->sub_mu);
  s->id = ++eng->next_sub_id;
  _Atomic(rc__sub *) *tail = &eng->subs;
  while (atomic_load(tail)) tail = &atomic_load(tail)->next;
  atomic_store(tail, s);
  pthread_mutex_unlock(&eng->sub_mu);
  return s->id;
}

static void sub_free(rc__sub *s) {
  rc__free(s->pattern);
  rc__free(s);
}

/* Unlinks dead entries; caller holds sub_mu and no walk is running. */
static void sweep(rc_engine_t *eng) {
  _Atomic(rc__sub *) *pp = &eng->subs;
  rc__sub *s;
  while ((s = atomic_load(pp))) {
    if (atomic_load(&s->dead)) {
      atomic_store(pp, atomic_load(&s->next));
      sub_free(s);
    } else {
      pp = &s->next;
    }
  }
}

int rc_unsubscribe(rc_engine_t *eng, int id) {
  if (!eng) return RC_EINVAL;
  int rc = RC_ENOTFOUND;
  pthread_mutex_lock(&eng->sub_mu);
  for (rc__sub *s = atomic_load(&eng->subs); s; s = atomic_load(&s->next)) {
    if (s->id == id && !atomic_load(&s->dead)) {
      atomic_store(&s->dead, true);
      rc = 0;
    }
  }
  if (rc == 0 && eng->notifying == 0) sweep(eng);
  pthread_mutex_unlock(&eng->sub_mu);
  return rc;
}

void rc__notify_subscribers(rc_engine_t *eng, const struct rc_snapshot *snap,
                            const rc_change_t *changes, size_t n) {
  pthread_mutex_lock(&eng->sub_mu);
  rc__sub *head = atomic_load(&eng->subs);
  eng->notifying++;
  pthread_mutex_unlock(&eng->sub_mu);

  /* The changes under each pattern; without memory for that list, a subscriber gets its
   * changes one call each rather than not at all. */
  rc_change_t *subset = n ? rc__malloc(n * sizeof *subset) : NULL;
  for (rc__sub *s = head; s; s = atomic_load(&s->next)) {
    if (atomic_load(&s->dead)) continue;
    size_t k = 0;
    bool all = strcmp(s->pattern, "**") == 0 || s->pattern[0] == '\0';
    if (all) {
      s->fn(s->ud, snap, changes, n);
      continue;
    }
    for (size_t i = 0; i < n; i++) {
      if (!match_change(s->pattern, &changes[i])) continue;
      if (subset)
        subset[k++] = changes[i];
      else
        s->fn(s->ud, snap, &changes[i], 1);
    }
    if (k) s->fn(s->ud, snap, subset, k);
  }
  rc__free(subset);

  pthread_mutex_lock(&eng->sub_mu);
  if (--eng->notifying == 0) sweep(eng);
  pthread_mutex_unlock(&eng->sub_mu);
}

void rc__subs_free(rc_engine_t *eng) {
  rc__sub *s = atomic_load(&eng->subs);
  atomic_store(&eng->subs, NULL);
  while (s) {
    rc__sub *next = atomic_load(&s->next);
    sub_free(s);
    s = next;
  }
}
