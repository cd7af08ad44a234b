/* SPDX-License-Identifier: MIT (see LICENSE) */
/* diff.c: old tree vs new tree -> list of {path, kind, old, new}. The hot path of every
 * commit: children shared by pointer are skipped unwalked, scalars are compared inline,
 * and a path is built only for containers entered and changes emitted. */
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
}

void rc__changeset_free(rc__changeset *cs) {
  rc__free(cs->items);
  rc__buf_free(&cs->paths);
  rc__buf_free(&cs->cur);
  rc__changeset_init(cs);
}

void rc__changeset_reset(rc__changeset *cs) {
  cs->n = 0;
  cs->oom = 0;
  rc__buf_reset(&cs->paths);
  rc__buf_reset(&cs->cur);
  cs->paths.oom = 0; /* a failed growth left the old block valid */
  cs->cur.oom = 0;
}

/* ==== comparing bytes ====
 * value.c keeps at least 8 readable bytes after every string and after an object's key
 * area, so keys and strings are compared a word at a time, the last word masked. A call
 * to memcmp per member cost more than the rest of the comparison. */

static inline uint64_t load64(const char *p) {
  uint64_t v;
  memcpy(&v, p, 8);
  return v;
}

/* Whether a[0..n) equals b[0..n); reads up to 7 bytes past n on both. */
static inline bool padded_eq(const char *a, const char *b, uint32_t n) {
  uint32_t i = 0;
  for (; i + 8 <= n; i += 8)
    if (load64(a + i) != load64(b + i)) return false;
  uint32_t rest = n - i;
  if (!rest) return true;
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
  uint64_t mask = ((uint64_t)1 << (8 * rest)) - 1; /* the first `rest` bytes in memory */
#else
  uint64_t mask = ~(uint64_t)0 << (64 - 8 * rest);
#endif
  return ((load64(a + i) ^ load64(b + i)) & mask) == 0;
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
  if (a->type != b->type) return false;
  if (a->type == RC_TYPE_STRING) return a->len == b->len && padded_eq(a->u.s, b->u.s, a->len);
  if (a->type == RC_TYPE_DATETIME) return rc__datetime_equal(a->u.dt, b->u.dt);
  return a->type < RC_TYPE_STRING && a->u.i == b->u.i;
}

/* ==== recording changes ==== */

/* Records one change at the path in cs->cur. The path is stored as an offset into
 * cs->paths, which may move as it grows; rc__diff_finish makes the pointers. */
static void emit(rc__changeset *cs, rc_change_kind_t kind, const rc_value_t *o,
                 const rc_value_t *n) {
  if (cs->oom) return;
  if (cs->n == cs->cap) {
    size_t cap = cs->cap ? cs->cap * 2 : 64;
    rc_change_t *items = rc__realloc(cs->items, cap * sizeof *items);
    if (!items) {
      cs->oom = 1;
      return;
    }
    cs->items = items;
    cs->cap = cap;
  }
  rc__buf *p = &cs->paths;
  size_t len = cs->cur.n;
  if (rc__buf_reserve(p, len + 1) || cs->cur.oom) {
    cs->oom = 1;
    return;
  }
  size_t off = p->n;
  if (len) memcpy(p->p + off, cs->cur.p, len);
  p->p[off + len] = '\0';
  p->n = off + len + 1;
  p->p[p->n] = '\0';
  rc_change_t *c = &cs->items[cs->n++];
  c->path = (const char *)(uintptr_t)off;
  c->kind = kind;
  c->old_value = o;
  c->new_value = n;
}

static inline void cut(rc__buf *cur, size_t n) {
  cur->n = n;
  if (cur->p) cur->p[n] = '\0';
}

/* ==== walking ==== */

static void diff_object(rc__changeset *cs, const rc_value_t *a, const rc_value_t *b);
static void diff_array(rc__changeset *cs, const rc_value_t *a, const rc_value_t *b);

/* Compares two present, distinct values whose path is cs->cur. */
static void diff_value(rc__changeset *cs, const rc_value_t *a, const rc_value_t *b) {
  if (a->type != b->type)
    emit(cs, RC_CHANGE_MODIFIED, a, b);
  else if (a->type == RC_TYPE_OBJECT)
    diff_object(cs, a, b);
  else if (a->type == RC_TYPE_ARRAY)
    diff_array(cs, a, b);
  else if (!leaf_eq(a, b))
    emit(cs, RC_CHANGE_MODIFIED, a, b);
}

/* A child pair of the container whose path is cs->cur: equal leaves and shared subtrees
 * cost no path work; otherwise the segment is appended for the comparison. */
#define CHILD(cs, va, vb, add_segment)                \
  do {                                                \
    if ((va) == (vb) || leaf_eq((va), (vb))) break;   \
    size_t base_ = (cs)->cur.n;                       \
    add_segment;                                      \
    diff_value((cs), (va), (vb));                     \
    cut(&(cs)->cur, base_);                           \
  } while (0)

/* The walk is bound by memory latency: each child is its own allocation, first touched
 * when its type is read. Asking for the nodes a few members ahead overlaps the misses. */
#define AHEAD 8

/* Members that differ (or are containers to enter), remembered by the in-order pass. */
#define MARKS 32

/* The first pass over two objects of equal size: in insertion order, which is the
 * children's order in memory (parsers allocate them in document order) so the hardware
 * streams them in, it checks that the keys are the same in the same order and notes
 * which members need attention. Returns false when the keys differ (the caller then does
 * the general merge walk); else *nmarks is the number of marked members, or MARKS + 1
 * when there were more than `marks` can hold. */
static bool scan_in_order(const rc_value_t *a, const rc_value_t *b, uint32_t *marks,
                          uint32_t *nmarks) {
  const rc__member *ma = a->u.members, *mb = b->u.members;
  uint32_t n = a->len, nm = 0;
  for (uint32_t i = 0; i < AHEAD && i < n; i++) {
    __builtin_prefetch(ma[i].val);
    __builtin_prefetch(mb[i].val);
  }
  for (uint32_t i = 0; i < n; i++) {
    if (i + AHEAD < n) {
      __builtin_prefetch(ma[i + AHEAD].val);
      __builtin_prefetch(mb[i + AHEAD].val);
    }
    if (!same_key(&ma[i], &mb[i])) return false;
    const rc_value_t *va = ma[i].val, *vb = mb[i].val;
    if (va == vb || leaf_eq(va, vb)) continue;
    if (nm < MARKS) marks[nm] = i;
    if (nm <= MARKS) nm++;
  }
  *nmarks = nm;
  return true;
}

/* Sorts a few member indices into key order (insertion sort: at most MARKS). */
static void sort_marks(const rc__member *m, uint32_t *marks, uint32_t n) {
  for (uint32_t i = 1; i < n; i++) {
    uint32_t x = marks[i], j = i;
    while (j > 0 && key_cmp(m[x].key, m[x].klen, m[marks[j - 1]].key, m[marks[j - 1]].klen) < 0) {
      marks[j] = marks[j - 1];
      j--;
    }
    marks[j] = x;
  }
}

/* The general case: a merge walk over the two sorted indexes. */
static void merge_walk(rc__changeset *cs, const rc_value_t *a, const rc_value_t *b) {
  const rc__member *ma = a->u.members, *mb = b->u.members;
  const uint32_t *sa = rc__sorted(a), *sb = rc__sorted(b);
  uint32_t i = 0, j = 0, na = a->len, nb = b->len;
  rc__buf *cur = &cs->cur;
  size_t base = cur->n;
  for (uint32_t k = 0; k < AHEAD; k++) {
    if (k < na) __builtin_prefetch(ma[sa[k]].val);
    if (k < nb) __builtin_prefetch(mb[sb[k]].val);
  }
  while (i < na && j < nb && !cs->oom) {
    if (i + AHEAD < na) __builtin_prefetch(ma[sa[i + AHEAD]].val);
    if (j + AHEAD < nb) __builtin_prefetch(mb[sb[j + AHEAD]].val);
    const rc__member *x = &ma[sa[i]], *y = &mb[sb[j]];
    int c = same_key(x, y) ? 0 : key_cmp(x->key, x->klen, y->key, y->klen);
    if (c == 0) {
      i++;
      j++;
      CHILD(cs, x->val, y->val, rc__path_add_key(cur, x->key, x->klen));
    } else if (c < 0) {
      i++;
      rc__path_add_key(cur, x->key, x->klen);
      emit(cs, RC_CHANGE_REMOVED, x->val, NULL);
      cut(cur, base);
    } else {
      j++;
      rc__path_add_key(cur, y->key, y->klen);
      emit(cs, RC_CHANGE_ADDED, NULL, y->val);
      cut(cur, base);
    }
  }
  for (; i < na && !cs->oom; i++) {
    const rc__member *x = &ma[sa[i]];
    rc__path_add_key(cur, x->key, x->klen);
    emit(cs, RC_CHANGE_REMOVED, x->val, NULL);
    cut(cur, base);
  }
  for (; j < nb && !cs->oom; j++) {
    const rc__member *y = &mb[sb[j]];
    rc__path_add_key(cur, y->key, y->klen);
    emit(cs, RC_CHANGE_ADDED, NULL, y->val);
    cut(cur, base);
  }
}

static void diff_object(rc__changeset *cs, const rc_value_t *a, const rc_value_t *b) {
  rc__diff_walked++;
  uint32_t marks[MARKS], nm;
  if (a->len != b->len || !scan_in_order(a, b, marks, &nm)) {
    merge_walk(cs, a, b);
    return;
  }
  /* Same keys, same order: member k of one pairs with member k of the other, so only
   * the marked members are visited, in key order. */
  const rc__member *ma = a->u.members, *mb = b->u.members;
  rc__buf *cur = &cs->cur;
  if (nm <= MARKS) {
    sort_marks(ma, marks, nm);
    for (uint32_t i = 0; i < nm && !cs->oom; i++) {
      uint32_t k = marks[i];
      CHILD(cs, ma[k].val, mb[k].val, rc__path_add_key(cur, ma[k].key, ma[k].klen));
    }
    return;
  }
  const uint32_t *sa = rc__sorted(a);
  for (uint32_t i = 0; i < a->len && !cs->oom; i++) {
    uint32_t k = sa[i];
    CHILD(cs, ma[k].val, mb[k].val, rc__path_add_key(cur, ma[k].key, ma[k].klen));
  }
}

static void diff_array(rc__changeset *cs, const rc_value_t *a, const rc_value_t *b) {
  rc__diff_walked++;
  rc_value_t *const *ia = a->u.items, *const *ib = b->u.items;
  uint32_t na = a->len, nb = b->len, common = na < nb ? na : nb, i;
  rc__buf *cur = &cs->cur;
  size_t base = cur->n;
  for (i = 0; i < common && i < AHEAD; i++) {
    __builtin_prefetch(ia[i]);
    __builtin_prefetch(ib[i]);
  }
  for (i = 0; i < common && !cs->oom; i++) {
    if (i + AHEAD < common) {
      __builtin_prefetch(ia[i + AHEAD]);
      __builtin_prefetch(ib[i + AHEAD]);
    }
    CHILD(cs, ia[i], ib[i], rc__path_add_index(cur, i));
  }
  for (i = common; i < na && !cs->oom; i++) {
    rc__path_add_index(cur, i);
    emit(cs, RC_CHANGE_REMOVED, ia[i], NULL);
    cut(cur, base);
  }
  for (i = common; i < nb && !cs->oom; i++) {
    rc__path_add_index(cur, i);
    emit(cs, RC_CHANGE_ADDED, NULL, ib[i]);
    cut(cur, base);
  }
}

int rc__diff(const rc_value_t *a, const rc_value_t *b, const char *prefix,
             rc__changeset *cs) {
  if (cs->oom) return RC_ENOMEM;
  if (a == b) return 0;
  rc__buf_reset(&cs->cur);
  rc__buf_adds(&cs->cur, prefix ? prefix : "");
  if (rc__buf_reserve(&cs->cur, 64)) cs->oom = 1;
  if (!a)
    emit(cs, RC_CHANGE_ADDED, NULL, b);
  else if (!b)
    emit(cs, RC_CHANGE_REMOVED, a, NULL);
  else
    diff_value(cs, a, b);
  return cs->oom ? RC_ENOMEM : 0;
}

void rc__diff_finish(rc__changeset *cs) {
  for (size_t i = 0; i < cs->n; i++)
    cs->items[i].path = cs->paths.p + (uintptr_t)cs->items[i].path;
}
