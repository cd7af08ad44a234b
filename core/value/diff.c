/* SPDX-License-Identifier: MIT (see LICENSE) */
/* diff.c: old tree vs new tree -> list of {path, kind, old, new}. The hot path of every
 * commit: children shared by pointer are skipped unwalked, scalars are compared inline,
 * and a path's text is built only for the changes recorded. */
#include "value.h"

#include <string.h>

/* Output order, which callers and tests rely on: depth first; within an object, members
 * in key order (the sorted index: bytewise, a prefix first), additions and removals
 * interleaved at their key's place; within an array, the common prefix by index, then
 * the removed or added tail in index order. An added or removed subtree is one change at
 * its own path; a type change is one "modified". */

/* Container pairs entered by the diff on this thread. Not part of any API: the C test
 * reads it to check that shared subtrees are skipped rather than walked. */
_Thread_local size_t rc__diff_walked;

void rc__changeset_init(rc__changeset *cs) {
  memset(cs, 0, sizeof *cs);
  rc__buf_init(&cs->paths);
  rc__buf_init(&cs->cur);
  /* diff_object's notes are allocated with the changeset rather than by the first diff
   * that needs them (which still does when this fails). Measured in `reactcfg-bench
   * diff`: this one small block, allocated in the middle of the first diff, changed
   * where glibc put the documents parsed after it, and it gave their memory back and
   * faulted it in again every round (123 brk calls instead of 23, 1M-leaf parses 5x
   * slower). */
  cs->runs = rc__malloc(64 * sizeof *cs->runs);
  cs->runcap = cs->runs ? 64 : 0;
}

void rc__changeset_free(rc__changeset *cs) {
  rc__free(cs->items);
  rc__free(cs->runs);
  rc__buf_free(&cs->paths);
  rc__buf_free(&cs->cur);
  memset(cs, 0, sizeof *cs);
  rc__buf_init(&cs->paths);
  rc__buf_init(&cs->cur);
}

void rc__changeset_reset(rc__changeset *cs) {
  cs->n = 0;
  cs->nruns = 0;
  cs->oom = 0;
  rc__buf_reset(&cs->paths);
  rc__buf_reset(&cs->cur);
  cs->paths.oom = 0; /* a failed growth left the old block valid */
  cs->cur.oom = 0;
}

/* ==== comparing bytes ====
 * value.c keeps at least 8 readable bytes after every string and after an object's key
 * area, so a short key or string is compared as one word, masked. */

static inline uint64_t load64(const char *p) {
  uint64_t v;
  memcpy(&v, p, 8);
  return v;
}

/* The first n bytes of a word (in memory order), n < 8. */
static inline uint64_t head_mask(uint32_t n) {
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
  return ((uint64_t)1 << (8 * n)) - 1;
#else
  return n ? ~(uint64_t)0 << (64 - 8 * n) : 0;
#endif
}

/* Whether a[0..n) equals b[0..n). Up to 8 bytes (short keys and strings) one masked word,
 * which may read up to 7 bytes past n; longer, glibc's memcmp, whose vector compares
 * branch on size classes rather than on every word: 12% faster at 100k leaves than a
 * word loop here, mostly on key areas (same_keys) and strings. */
static inline bool padded_eq(const char *a, const char *b, uint32_t n) {
  if (n > 8) return memcmp(a, b, n) == 0;
  uint64_t mask = n == 8 ? ~(uint64_t)0 : head_mask(n);
  return ((load64(a) ^ load64(b)) & mask) == 0;
}

/* Key order of the sorted index (value.c): bytes as unsigned, a prefix first. */
static inline int key_cmp(const char *a, uint32_t la, const char *b, uint32_t lb) {
  uint32_t m = la < lb ? la : lb;
  for (uint32_t i = 0; i < m; i++) {
    unsigned char x = (unsigned char)a[i], y = (unsigned char)b[i];
    if (x != y) return x < y ? -1 : 1;
  }
  return la < lb ? -1 : la > lb;
}

static inline bool same_key(const rc__member *x, const rc__member *y) {
  return x->klen == y->klen && padded_eq(x->key, y->key, x->klen);
}

/* Two distinct nodes hold equal scalars. Null and booleans are singletons, so distinct
 * ones differ; integers and floats compare their 8 payload bytes (floats by bits: NaN
 * equals itself, 0.0 is not -0.0); containers are never "equal" here (they are walked). */
static inline bool leaf_eq(const rc_value_t *a, const rc_value_t *b) {
  uint32_t t = a->type;
  if (t != b->type) return false;
  if (t == RC_TYPE_STRING) return a->len == b->len && padded_eq(a->u.s, b->u.s, a->len);
  if (t < RC_TYPE_STRING) return a->u.i == b->u.i;
  return t == RC_TYPE_DATETIME && rc__datetime_equal(a->u.dt, b->u.dt);
}

/* ==== recording changes ==== */

/* The path being walked: one step per container entered, on the C stack, a key or (key
 * NULL) an index. Its text is written only when a change is recorded: a walk enters a
 * container for each few leaves, while changes are rare. */
typedef struct step {
  const struct step *up;
  const char *key;
  size_t n; /* key length, or the index */
} step;

static void write_path(rc__buf *b, const step *s) {
  if (!s) return;
  write_path(b, s->up);
  if (s->key)
    rc__path_add_key(b, s->key, s->n);
  else
    rc__path_add_index(b, s->n);
}

/* Records one change at path `at` (below the prefix). The path is stored as an offset
 * into cs->paths, which may move as it grows; rc__diff_finish makes the pointers. */
static void emit(rc__changeset *cs, const step *at, rc_change_kind_t kind,
                 const rc_value_t *o, const rc_value_t *n) {
  if (cs->oom) return;
  if (RC__GROW(cs->items, cs->cap, cs->n + 1, 64)) {
    cs->oom = 1;
    return;
  }
  rc__buf *cur = &cs->cur;
  cur->n = cs->root;
  write_path(cur, at);
  rc__buf *p = &cs->paths;
  size_t len = cur->n;
  if (cur->oom || rc__buf_reserve(p, len + 1)) {
    cs->oom = 1;
    return;
  }
  size_t off = p->n;
  if (len) memcpy(p->p + off, cur->p, len);
  p->p[off + len] = '\0';
  p->n = off + len + 1;
  p->p[p->n] = '\0';
  rc_change_t *c = &cs->items[cs->n++];
  c->path = (const char *)(uintptr_t)off;
  c->kind = kind;
  c->old_value = o;
  c->new_value = n;
}

/* ==== walking ==== */

static void diff_object(rc__changeset *cs, const step *at, const rc_value_t *a,
                        const rc_value_t *b);
static void diff_array(rc__changeset *cs, const step *at, const rc_value_t *a,
                       const rc_value_t *b);

/* Compares two present, distinct values at path `at`. */
static void diff_value(rc__changeset *cs, const step *at, const rc_value_t *a,
                       const rc_value_t *b) {
  if (a->type != b->type)
    emit(cs, at, RC_CHANGE_MODIFIED, a, b);
  else if (a->type == RC_TYPE_OBJECT)
    diff_object(cs, at, a, b);
  else if (a->type == RC_TYPE_ARRAY)
    diff_array(cs, at, a, b);
  else if (!leaf_eq(a, b))
    emit(cs, at, RC_CHANGE_MODIFIED, a, b);
}

/* A child pair (key `k` of length `kn`, or index `kn` when `k` is NULL) of the container
 * at `at`: equal leaves and shared subtrees are done here, the rest is compared one step
 * further down. */
#define CHILD(cs, at, va, vb, k, kn)                 \
  do {                                               \
    if ((va) == (vb) || leaf_eq((va), (vb))) break;  \
    const step s_ = {(at), (k), (kn)};               \
    diff_value((cs), &s_, (va), (vb));               \
  } while (0)

/* A change to the member or element `k`/`kn` of the container at `at` (as CHILD). */
static void emit_child(rc__changeset *cs, const step *at, const char *k, size_t kn,
                       rc_change_kind_t kind, const rc_value_t *o, const rc_value_t *n) {
  const step s = {at, k, kn};
  emit(cs, &s, kind, o, n);
}

/* Whether two objects of `n` members have the same keys in the same order (then member
 * k of one pairs with member k of the other). The parsers and rc__object_end store an
 * object's keys one after the other, each after the previous one's NUL: when both
 * objects' keys lie so, with the same lengths, one comparison of the two key areas
 * compares every key, without a loop and its branches per key (5% of the diff at 100k
 * leaves). Records of one array share one key area in each document (the JSON parser
 * points objects of one shape at the first one's keys), so the pair of areas found
 * equal last is remembered and not compared again (7%). Keys laid out otherwise are
 * compared one by one. */
static bool same_keys(rc__changeset *cs, const rc__member *ma, const rc__member *mb,
                      uint32_t n) {
  if (!n) return true;
  uintptr_t ea = (uintptr_t)ma[0].key, eb = (uintptr_t)mb[0].key;
  bool packed = true;
  for (uint32_t i = 0; i < n; i++) {
    packed &= ((uintptr_t)ma[i].key == ea) & ((uintptr_t)mb[i].key == eb) &
              (ma[i].klen == mb[i].klen);
    ea += (uintptr_t)ma[i].klen + 1;
    eb += (uintptr_t)mb[i].klen + 1;
  }
  /* the area: every key and the NULs between them; the last key's tail follows */
  uintptr_t len = ea - (uintptr_t)ma[0].key - 1;
  if (packed && len <= UINT32_MAX) {
    if (ma[0].key == cs->keys[0] && mb[0].key == cs->keys[1] && len == cs->keylen)
      return true;
    if (!padded_eq(ma[0].key, mb[0].key, (uint32_t)len)) return false;
    cs->keys[0] = ma[0].key;
    cs->keys[1] = mb[0].key;
    cs->keylen = len;
    return true;
  }
  for (uint32_t i = 0; i < n; i++)
    if (!same_key(&ma[i], &mb[i])) return false;
  return true;
}

/* The general case: a merge walk over the two sorted indexes. */
static void merge_walk(rc__changeset *cs, const step *at, const rc_value_t *a,
                       const rc_value_t *b) {
  const rc__member *ma = a->u.members, *mb = b->u.members;
  const uint32_t *sa = rc__sorted(a), *sb = rc__sorted(b);
  uint32_t i = 0, j = 0, na = a->len, nb = b->len;
  while (i < na && j < nb && !cs->oom) {
    const rc__member *x = &ma[sa[i]], *y = &mb[sb[j]];
    int c = same_key(x, y) ? 0 : key_cmp(x->key, x->klen, y->key, y->klen);
    if (c == 0) {
      i++;
      j++;
      CHILD(cs, at, x->val, y->val, x->key, x->klen);
    } else if (c < 0) {
      i++;
      emit_child(cs, at, x->key, x->klen, RC_CHANGE_REMOVED, x->val, NULL);
    } else {
      j++;
      emit_child(cs, at, y->key, y->klen, RC_CHANGE_ADDED, NULL, y->val);
    }
  }
  for (; i < na && !cs->oom; i++) {
    const rc__member *x = &ma[sa[i]];
    emit_child(cs, at, x->key, x->klen, RC_CHANGE_REMOVED, x->val, NULL);
  }
  for (; j < nb && !cs->oom; j++) {
    const rc__member *y = &mb[sb[j]];
    emit_child(cs, at, y->key, y->klen, RC_CHANGE_ADDED, NULL, y->val);
  }
}

/* ==== putting an object's changes in key order ==== */

static void reverse(rc_change_t *x, size_t n) {
  for (size_t i = 0, j = n; i + 1 < j; i++, j--) {
    rc_change_t t = x[i];
    x[i] = x[j - 1];
    x[j - 1] = t;
  }
}

/* Notes that member `k` recorded the changes from `first` on. */
static void push_run(rc__changeset *cs, size_t k, size_t first) {
  if (RC__GROW(cs->runs, cs->runcap, cs->nruns + 2, 32)) {
    cs->oom = 1;
    return;
  }
  cs->runs[cs->nruns++] = k;
  cs->runs[cs->nruns++] = first;
}

/* The runs from cs->runs[base] on, one per member of `m` that recorded changes, in the
 * order the members were walked (insertion order): sorts them by key, moving each run's
 * changes as a block (insertion sort by rotations: changes are few, and in place). */
static void order_runs(rc__changeset *cs, const rc__member *m, size_t base) {
  size_t *r = cs->runs + base, nr = (cs->nruns - base) / 2;
  for (size_t j = 1; j < nr; j++) {
    for (size_t i = j; i > 0; i--) {
      const rc__member *x = &m[r[2 * i]], *y = &m[r[2 * i - 2]];
      if (key_cmp(x->key, x->klen, y->key, y->klen) > 0) break;
      /* swap run i - 1 and run i: rotate their changes, then their entries */
      size_t start = r[2 * i - 1], mid = r[2 * i + 1], end = i + 1 < nr ? r[2 * i + 3] : cs->n;
      rc_change_t *c = cs->items + start;
      reverse(c, mid - start);
      reverse(c + (mid - start), end - mid);
      reverse(c, end - start);
      size_t k = r[2 * i];
      r[2 * i] = r[2 * i - 2];
      r[2 * i - 2] = k;
      r[2 * i + 1] = start + (end - mid);
    }
  }
}

static void diff_object(rc__changeset *cs, const step *at, const rc_value_t *a,
                        const rc_value_t *b) {
  rc__diff_walked++;
  const rc__member *ma = a->u.members, *mb = b->u.members;
  if (a->len != b->len || !same_keys(cs, ma, mb, a->len)) {
    merge_walk(cs, at, a, b);
    return;
  }
  /* Same keys, same order: member k of one pairs with member k of the other. They are
   * walked in insertion order, which is their order in memory (the parsers allocate in
   * document order), about 15% faster at 100k leaves than in key order through the
   * sorted index; the few members that record changes are noted, and their changes put
   * in key order at the end. */
  size_t base = cs->nruns;
  for (uint32_t k = 0; k < a->len && !cs->oom; k++) {
    const rc_value_t *va = ma[k].val, *vb = mb[k].val;
    if (va == vb || leaf_eq(va, vb)) continue;
    size_t first = cs->n;
    const step s = {at, ma[k].key, ma[k].klen};
    diff_value(cs, &s, va, vb);
    if (cs->n != first) push_run(cs, k, first);
  }
  if (cs->nruns - base > 2 && !cs->oom) order_runs(cs, ma, base);
  cs->nruns = base;
}

static void diff_array(rc__changeset *cs, const step *at, const rc_value_t *a,
                       const rc_value_t *b) {
  rc__diff_walked++;
  rc_value_t *const *ia = a->u.items, *const *ib = b->u.items;
  uint32_t na = a->len, nb = b->len, common = na < nb ? na : nb, i;
  for (i = 0; i < common && !cs->oom; i++) {
    CHILD(cs, at, ia[i], ib[i], NULL, i);
  }
  for (i = common; i < na && !cs->oom; i++)
    emit_child(cs, at, NULL, i, RC_CHANGE_REMOVED, ia[i], NULL);
  for (i = common; i < nb && !cs->oom; i++)
    emit_child(cs, at, NULL, i, RC_CHANGE_ADDED, NULL, ib[i]);
}

int rc__diff(const rc_value_t *a, const rc_value_t *b, const char *prefix,
             rc__changeset *cs) {
  if (cs->oom) return RC_ENOMEM;
  if (a == b) return 0;
  rc__buf_reset(&cs->cur);
  rc__buf_adds(&cs->cur, prefix ? prefix : "");
  if (rc__buf_reserve(&cs->cur, 64)) cs->oom = 1;
  cs->root = cs->cur.n;
  cs->keys[0] = cs->keys[1] = NULL; /* the last call's trees may be gone */
  if (!a)
    emit(cs, NULL, RC_CHANGE_ADDED, NULL, b);
  else if (!b)
    emit(cs, NULL, RC_CHANGE_REMOVED, a, NULL);
  else
    diff_value(cs, NULL, a, b);
  return cs->oom ? RC_ENOMEM : 0;
}

void rc__diff_finish(rc__changeset *cs) {
  for (size_t i = 0; i < cs->n; i++)
    cs->items[i].path = cs->paths.p + (uintptr_t)cs->items[i].path;
}
