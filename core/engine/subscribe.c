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

#define MAX_SEGS 64

/* Splits `path` into at most MAX_SEGS segments; `keys` receives the unescaped keys.
 * In a pattern, a bare `*` or `**` segment is a wildcard. Returns the count or -1. */
static int split(const char *path, bool pattern, seg *out, rc__buf *keys) {
  size_t pos = 0, offs[MAX_SEGS];
  int n = 0;
  rc__buf scratch;
  rc__buf_init(&scratch);
  rc__buf_reset(keys);
  for (;;) {
    size_t start = pos;
    const char *key;
    size_t klen, index;
    int r = rc__path_next(path, &pos, &scratch, &key, &klen, &index);
    if (r <= 0) {
      rc__buf_free(&scratch);
      if (r < 0 || keys->oom) return -1;
      break;
    }
    if (n == MAX_SEGS) {
      rc__buf_free(&scratch);
      return -1;
    }
    const char *raw = path + start + (path[start] == '.');
    size_t rawlen = (size_t)(path + pos - raw);
    seg *s = &out[n];
    if (pattern && key && rawlen == 1 && raw[0] == '*') {
      s->kind = SEG_STAR;
    } else if (pattern && key && rawlen == 2 && raw[0] == '*' && raw[1] == '*') {
      s->kind = SEG_DSTAR;
    } else if (key) {
      s->kind = SEG_KEY;
      offs[n] = keys->n;
      s->klen = klen;
      rc__buf_add(keys, key, klen);
      rc__buf_addc(keys, '\0');
    } else {
      s->kind = SEG_INDEX;
      s->index = index;
    }
    n++;
  }
  for (int i = 0; i < n; i++)
    if (out[i].kind == SEG_KEY) out[i].key = keys->p + offs[i];
  return n;
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

static bool match_paths(const char *pattern, const char *path, bool container) {
  seg ps[MAX_SEGS], cs[MAX_SEGS];
  rc__buf pk, ck;
  rc__buf_init(&pk);
  rc__buf_init(&ck);
  int np = split(pattern, true, ps, &pk);
  int nc = split(path, false, cs, &ck);
  bool ok = np >= 0 && nc >= 0 && match(ps, np, cs, nc, container);
  rc__buf_free(&pk);
  rc__buf_free(&ck);
  return ok;
}

static bool match_change(const char *pattern, const rc_change_t *ch) {
  return match_paths(pattern, ch->path,
                     is_container(ch->old_value) || is_container(ch->new_value));
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
  seg ps[MAX_SEGS];
  rc__buf keys;
  rc__buf_init(&keys);
  int np = *pattern ? split(pattern, true, ps, &keys) : 0;
  rc__buf_free(&keys);
  if (np < 0)
    return rc__err(err, RC_EINVAL, NULL, 0, 0, "malformed subscription pattern '%s'", pattern);
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

  rc_change_t *subset = NULL;
  for (rc__sub *s = head; s; s = atomic_load(&s->next)) {
    if (atomic_load(&s->dead)) continue;
    size_t k = 0;
    bool all = strcmp(s->pattern, "**") == 0 || s->pattern[0] == '\0';
    if (!all) {
      if (!subset && !(subset = rc__malloc(n * sizeof *subset))) break;
      for (size_t i = 0; i < n; i++)
        if (match_change(s->pattern, &changes[i])) subset[k++] = changes[i];
      if (k == 0) continue;
    }
    s->fn(s->ud, snap, all ? changes : subset, all ? n : k);
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
