/* SPDX-License-Identifier: MIT (see LICENSE) */
/* value.c: the nodes of the value tree: constructors and builders, atomic reference
 * counts (null/true/false are immortal), each object's sorted member index with its
 * O(log n) lookup, rc__object_with, and the public read-only accessors rc_value_*. */
#include "value.h"

#include <assert.h>
#include <string.h>

static_assert(sizeof(struct rc_value) == 24, "nodes stay at 24 bytes (see rc__sorted)");

/* ==== immortal constants ==== */

static struct rc_value const_null = {.refs = RC__IMMORTAL, .type = RC_TYPE_NULL};
static struct rc_value const_true = {.refs = RC__IMMORTAL, .type = RC_TYPE_BOOL, .u.b = true};
static struct rc_value const_false = {.refs = RC__IMMORTAL, .type = RC_TYPE_BOOL,
                                      .u.b = false};

/* ==== references ==== */

rc_value_t *rc__value_ref(const rc_value_t *v) {
  rc_value_t *m = (rc_value_t *)v; /* the count is the one mutable part of a node */
  if (!m) return m;
  uint32_t r = atomic_load_explicit(&m->refs, memory_order_relaxed);
  if (r == RC__ARENA)
    rc__arena_ref(m);
  else if (r != RC__IMMORTAL)
    atomic_fetch_add_explicit(&m->refs, 1, memory_order_relaxed);
  return m;
}

static void value_free(rc_value_t *v);

void rc__value_unref(rc_value_t *v) {
  if (!v) return;
  uint32_t r = atomic_load_explicit(&v->refs, memory_order_acquire);
  if (r == RC__IMMORTAL) return;
  if (r == RC__ARENA) {
    rc__arena_unref(v);
    return;
  }
  /* A count of 1 that we hold cannot be raised by anyone else (they would need a
   * reference to copy), so the last owner skips the atomic read-modify-write: freeing a
   * freshly parsed tree is one plain load per node. The acquire load pairs with the
   * release decrement of whoever dropped the count to 1. */
  if (r != 1 && atomic_fetch_sub_explicit(&v->refs, 1, memory_order_release) != 1) return;
  /* The last owner must see every other owner's reads as done before it frees. An
   * acquire load of the count our own decrement just wrote does that: the value is in
   * the release sequence of every earlier decrement, so it synchronizes with all of them.
   * It does what the usual acquire fence does, in a form ThreadSanitizer understands (it
   * does not model fences; Rust's Arc does the same under TSan). */
  if (r != 1) (void)atomic_load_explicit(&v->refs, memory_order_acquire);
  value_free(v);
}

static void value_free(rc_value_t *v) {
  if (v->type == RC_TYPE_ARRAY) {
    for (uint32_t i = 0; i < v->len; i++) rc__value_unref(v->u.items[i]);
  } else if (v->type == RC_TYPE_OBJECT) {
    for (uint32_t i = 0; i < v->len; i++) rc__value_unref(v->u.members[i].val);
  }
  rc__free(v);
}

/* ==== scalars and strings ==== */

static rc_value_t *node_new(size_t size, rc_type_t type, uint32_t len) {
  rc_value_t *v = rc__malloc(size);
  if (!v) return NULL;
  atomic_init(&v->refs, 1);
  v->type = (uint8_t)type;
  v->len = len;
  v->aoff = 0;
  return v;
}

rc_value_t *rc__value_null(void) { return &const_null; }

rc_value_t *rc__value_bool(bool b) { return b ? &const_true : &const_false; }

rc_value_t *rc__value_int(int64_t i) {
  rc_value_t *v = node_new(sizeof *v, RC_TYPE_INT, 0);
  if (v) v->u.i = i;
  return v;
}

rc_value_t *rc__value_float(double f) {
  rc_value_t *v = node_new(sizeof *v, RC_TYPE_FLOAT, 0);
  if (v) v->u.f = f;
  return v;
}

rc_value_t *rc__value_string(const char *s, size_t len) {
  if (len > UINT32_MAX - 1) return NULL;
  rc_value_t *v = node_new(sizeof *v + len + RC__TAIL, RC_TYPE_STRING, (uint32_t)len);
  if (!v) return NULL;
  v->u.s = (char *)(v + 1);
  if (len) memcpy(v->u.s, s, len);
  memset(v->u.s + len, 0, RC__TAIL); /* the NUL terminator and the tail */
  return v;
}

/* ==== arrays: items live right after the node ==== */

void rc__array_begin(rc__array_builder *b) { memset(b, 0, sizeof *b); }

void rc__array_push(rc__array_builder *b, rc_value_t *child) {
  if (!child) {
    b->oom = 1;
    return;
  }
  if (b->oom) {
    rc__value_unref(child);
    return;
  }
  if (RC__GROW(b->items, b->cap, b->n + 1, 8)) {
    rc__value_unref(child);
    b->oom = 1;
    return;
  }
  b->items[b->n++] = child;
}

void rc__array_abort(rc__array_builder *b) {
  for (size_t i = 0; i < b->n; i++) rc__value_unref(b->items[i]);
  rc__free(b->items);
  rc__array_begin(b);
}

void rc__array_abort_into(rc__array_builder *b, rc__array_builder *junk) {
  for (size_t i = 0; i < b->n; i++) rc__array_push(junk, b->items[i]);
  rc__free(b->items);
  rc__array_begin(b);
}

rc_value_t *rc__array_end(rc__array_builder *b) {
  if (b->oom || b->n > UINT32_MAX) {
    rc__array_abort(b);
    return NULL;
  }
  rc_value_t *v = node_new(sizeof *v + b->n * sizeof(rc_value_t *), RC_TYPE_ARRAY,
                           (uint32_t)b->n);
  if (!v) {
    rc__array_abort(b);
    return NULL;
  }
  v->u.items = (rc_value_t **)(v + 1);
  if (b->n) memcpy(v->u.items, b->items, b->n * sizeof(rc_value_t *));
  rc__free(b->items);
  rc__array_begin(b);
  return v;
}

/* ==== objects ====
 * A finished object is ONE allocation: the node, `len` members (insertion order), the
 * sorted index (`len` uint32) and the key bytes, so the diff's merge walk reads keys
 * that sit next to their members.
 *
 * The builder avoids one allocation per key the same way: its `members` block holds
 * `cap` members followed by a key area whose size is a function of `keybytes` alone
 * (key_area), so no extra field is needed to know it. While building, a member's `key`
 * holds the key's offset in that area, not a pointer: the area moves when it grows. */

static size_t key_area(size_t keybytes) {
  size_t c = 256;
  while (c < keybytes) c *= 2;
  return c;
}

static char *builder_keys(const rc__object_builder *b) { return (char *)(b->members + b->cap); }

void rc__object_begin(rc__object_builder *b) { memset(b, 0, sizeof *b); }

void rc__object_put(rc__object_builder *b, const char *key, size_t klen, rc_value_t *val) {
  if (!val) {
    b->oom = 1;
    return;
  }
  if (b->oom || klen >= UINT32_MAX) {
    rc__value_unref(val);
    b->oom = 1;
    return;
  }
  size_t kb = b->keybytes + klen + 1;
  size_t area = key_area(kb);
  if (!b->members || b->n == b->cap || area != key_area(b->keybytes)) {
    size_t cap = b->n == b->cap ? (b->cap ? b->cap * 2 : 8) : b->cap;
    char *blk = rc__realloc(b->members, cap * sizeof(rc__member) + area);
    if (!blk) {
      rc__value_unref(val);
      b->oom = 1;
      return;
    }
    if (cap != b->cap && b->keybytes) /* the key area starts after the members */
      memmove(blk + cap * sizeof(rc__member), blk + b->cap * sizeof(rc__member),
              b->keybytes);
    b->members = (rc__member *)blk;
    b->cap = cap;
  }
  char *keys = builder_keys(b);
  if (klen) memcpy(keys + b->keybytes, key, klen);
  keys[b->keybytes + klen] = '\0';
  rc__member *m = &b->members[b->n++];
  m->key = (const char *)(uintptr_t)b->keybytes;
  m->klen = (uint32_t)klen;
  m->val = val;
  b->keybytes = kb;
}

void rc__object_abort(rc__object_builder *b) {
  for (size_t i = 0; i < b->n; i++) rc__value_unref(b->members[i].val);
  rc__free(b->members);
  rc__object_begin(b);
}

void rc__object_abort_into(rc__object_builder *b, rc__array_builder *junk) {
  for (size_t i = 0; i < b->n; i++) rc__array_push(junk, b->members[i].val);
  rc__free(b->members);
  rc__object_begin(b);
}

/* Key order: bytes as unsigned (memcmp's order), a prefix before the longer key.
 * Inline and eight bytes at a time, because keys are short and a call to memcmp costs
 * more than the comparison itself. */
static inline uint64_t load_be64(const char *p) {
  uint64_t v;
  memcpy(&v, p, 8);
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
  v = __builtin_bswap64(v);
#endif
  return v; /* as a big-endian number, so the first differing byte decides */
}

static inline int key_cmp(const char *a, uint32_t la, const char *b, uint32_t lb) {
  uint32_t m = la < lb ? la : lb, i = 0;
  for (; i + 8 <= m; i += 8) {
    uint64_t x = load_be64(a + i), y = load_be64(b + i);
    if (x != y) return x < y ? -1 : 1;
  }
  for (; i < m; i++) {
    unsigned char x = (unsigned char)a[i], y = (unsigned char)b[i];
    if (x != y) return x < y ? -1 : 1;
  }
  return la < lb ? -1 : la > lb;
}

/* Sorting the index. Entries carry the key's first eight bytes as a big-endian number,
 * so most comparisons are one integer compare with no pointer chasing; equal prefixes
 * fall back to the whole keys, then to the position, so duplicate keys end up adjacent
 * and in insertion order. The entries live in the builder's block, free by then. */
typedef struct sort_ent {
  uint64_t prefix;
  uint32_t idx;
} sort_ent;

static inline bool ent_less(const rc__member *m, const sort_ent *x, const sort_ent *y) {
  if (x->prefix != y->prefix) return x->prefix < y->prefix;
  int c = key_cmp(m[x->idx].key, m[x->idx].klen, m[y->idx].key, m[y->idx].klen);
  return c < 0 || (c == 0 && x->idx < y->idx);
}

static inline void ent_swap(sort_ent *a, sort_ent *b) {
  sort_ent t = *a;
  *a = *b;
  *b = t;
}

static void insertion_sort(const rc__member *m, sort_ent *e, size_t n) {
  for (size_t i = 1; i < n; i++) {
    sort_ent x = e[i];
    size_t j = i;
    while (j > 0 && ent_less(m, &x, &e[j - 1])) {
      e[j] = e[j - 1];
      j--;
    }
    e[j] = x;
  }
}

static void sift_down(const rc__member *m, sort_ent *e, size_t root, size_t n) {
  for (;;) {
    size_t c = 2 * root + 1;
    if (c >= n) return;
    if (c + 1 < n && ent_less(m, &e[c], &e[c + 1])) c++;
    if (!ent_less(m, &e[root], &e[c])) return;
    ent_swap(&e[root], &e[c]);
    root = c;
  }
}

static void heap_sort(const rc__member *m, sort_ent *e, size_t n) {
  for (size_t i = n / 2; i-- > 0;) sift_down(m, e, i, n);
  for (size_t end = n; end-- > 1;) {
    ent_swap(&e[0], &e[end]);
    sift_down(m, e, 0, end);
  }
}

/* Introsort without allocation: quicksort (median of three), insertion sort for short
 * runs, heap sort when the recursion budget runs out, so hostile key sets stay
 * O(n log n). Entries are all distinct (the position breaks ties). */
static void sort_ents(const rc__member *m, sort_ent *e, size_t n, int budget) {
  while (n > 16) {
    if (budget-- == 0) {
      heap_sort(m, e, n);
      return;
    }
    size_t mid = n / 2;
    if (ent_less(m, &e[mid], &e[0])) ent_swap(&e[mid], &e[0]);
    if (ent_less(m, &e[n - 1], &e[0])) ent_swap(&e[n - 1], &e[0]);
    if (ent_less(m, &e[n - 1], &e[mid])) ent_swap(&e[n - 1], &e[mid]);
    sort_ent pivot = e[mid];
    size_t i = 0, j = n - 1;
    for (;;) { /* Hoare partition; the median of three bounds both scans */
      while (ent_less(m, &e[i], &pivot)) i++;
      while (ent_less(m, &pivot, &e[j])) j--;
      if (i >= j) break;
      ent_swap(&e[i], &e[j]);
      i++;
      j--;
    }
    /* [0, j] and [j+1, n): recurse into the smaller part, loop on the larger */
    size_t left = j + 1;
    if (left < n - left) {
      sort_ents(m, e, left, budget);
      e += left;
      n -= left;
    } else {
      sort_ents(m, e + left, n - left, budget);
      n = left;
    }
  }
  insertion_sort(m, e, n);
}

/* Fills `ix` with the member indices in key order, using `scratch` (room for n entries);
 * returns whether two members have the same key (they are then adjacent in `ix`). Keys
 * are followed by RC__TAIL readable bytes (the object's key area), so each prefix is one
 * eight-byte load, masked to the key's length. */
static bool sort_members(const rc__member *m, uint32_t *ix, size_t n, sort_ent *scratch) {
  if (n < 2) {
    if (n) ix[0] = 0;
    return false;
  }
  sort_ent *e = scratch;
  bool sorted = true;
  for (size_t i = 0; i < n; i++) {
    uint32_t l = m[i].klen < 8 ? m[i].klen : 8;
    e[i].prefix = l ? load_be64(m[i].key) & (~(uint64_t)0 << (64 - 8 * l)) : 0;
    e[i].idx = (uint32_t)i;
    /* hand-written configs are often sorted already */
    if (sorted && i > 0 && !ent_less(m, &e[i - 1], &e[i])) sorted = false;
  }
  if (!sorted) {
    int budget = 0;
    for (size_t k = n; k > 1; k >>= 1) budget += 2;
    sort_ents(m, e, n, budget);
  }
  bool dup = false;
  ix[0] = e[0].idx;
  for (size_t i = 1; i < n; i++) {
    ix[i] = e[i].idx;
    if (e[i].prefix != e[i - 1].prefix) continue;
    const rc__member *x = &m[e[i - 1].idx], *y = &m[e[i].idx];
    if (x->klen == y->klen && (x->klen <= 8 || memcmp(x->key + 8, y->key + 8, x->klen - 8) == 0))
      dup = true;
  }
  return dup;
}

/* Removes duplicate keys from a freshly sorted object: in each run of equal keys (in
 * insertion order, thanks to the tie-break) the first keeps its position and takes the
 * last one's value. `map` has room for `len` entries. Survivors keep their relative
 * order in both orders, so the index is remapped, not sorted again. */
static void dedupe(rc_value_t *v, uint32_t *map, bool release) {
  rc__member *m = v->u.members;
  uint32_t *ix = rc__sorted(v);
  uint32_t n = v->len, out = 0;
  for (uint32_t s = 0; s < n;) {
    uint32_t e = s;
    while (e + 1 < n && m[ix[e + 1]].klen == m[ix[s]].klen &&
           memcmp(m[ix[e + 1]].key, m[ix[s]].key, m[ix[s]].klen) == 0)
      e++;
    if (e > s) {
      rc_value_t *last = m[ix[e]].val;
      if (release) {
        rc__value_unref(m[ix[s]].val);
        for (uint32_t k = s + 1; k < e; k++) rc__value_unref(m[ix[k]].val);
      }
      for (uint32_t k = s + 1; k <= e; k++) m[ix[k]].val = NULL;
      m[ix[s]].val = last;
    }
    ix[out++] = ix[s];
    s = e + 1;
  }
  uint32_t j = 0;
  for (uint32_t i = 0; i < n; i++) {
    if (!m[i].val) continue;
    map[i] = j;
    m[j++] = m[i];
  }
  for (uint32_t k = 0; k < out; k++) ix[k] = map[ix[k]];
  v->len = out;
  memmove(rc__sorted(v), ix, out * sizeof *ix); /* the index follows the last member */
}

/* Offsets inside an object node (see the layout note above). */
static size_t obj_size(size_t n, size_t keybytes) {
  return sizeof(struct rc_value) + n * (sizeof(rc__member) + sizeof(uint32_t)) + keybytes +
         RC__TAIL;
}

rc_value_t *rc__object_end(rc__object_builder *b) {
  if (b->oom || b->n > UINT32_MAX) {
    rc__object_abort(b);
    return NULL;
  }
  size_t n = b->n;
  rc_value_t *v = node_new(obj_size(n, b->keybytes), RC_TYPE_OBJECT, (uint32_t)n);
  if (!v) {
    rc__object_abort(b);
    return NULL;
  }
  rc__member *m = (rc__member *)(v + 1);
  uint32_t *ix = (uint32_t *)(m + n);
  char *keys = (char *)(ix + n);
  if (b->keybytes) memcpy(keys, builder_keys(b), b->keybytes);
  memset(keys + b->keybytes, 0, RC__TAIL);
  for (size_t i = 0; i < n; i++) {
    m[i].key = keys + (uintptr_t)b->members[i].key;
    m[i].klen = b->members[i].klen;
    m[i].val = b->members[i].val;
  }
  v->u.members = m;
  /* the builder's block (24 bytes a member) now serves as the sort's scratch */
  static_assert(sizeof(sort_ent) <= sizeof(rc__member), "sort scratch must fit");
  bool dup = sort_members(m, ix, n, (sort_ent *)b->members);
  rc__free(b->members);
  rc__object_begin(b);
  if (dup) {
    uint32_t *map = rc__malloc(n * sizeof *map);
    if (!map) {
      value_free(v);
      return NULL;
    }
    dedupe(v, map, true);
    rc__free(map);
  }
  return v;
}

void rc__object_seal(rc_value_t *v, void *scratch) {
  static_assert(sizeof(sort_ent) <= 16, "the arena builder's scratch is 16 bytes a member");
  if (sort_members(v->u.members, rc__sorted(v), v->len, (sort_ent *)scratch))
    dedupe(v, (uint32_t *)scratch, false); /* the entries are spent by now */
}

long rc__object_find(const rc_value_t *obj, const char *key, size_t klen) {
  if (!obj || obj->type != RC_TYPE_OBJECT || klen >= UINT32_MAX) return -1;
  const rc__member *m = obj->u.members;
  const uint32_t *ix = rc__sorted(obj);
  size_t lo = 0, hi = obj->len;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    const rc__member *x = &m[ix[mid]];
    int c = key_cmp(x->key, x->klen, key, (uint32_t)klen);
    if (c == 0) return (long)ix[mid];
    if (c < 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  return -1;
}

const rc_value_t *rc__object_get(const rc_value_t *obj, const char *key) {
  if (!obj || obj->type != RC_TYPE_OBJECT) return NULL;
  long i = rc__object_find(obj, key, strlen(key));
  return i >= 0 ? obj->u.members[i].val : NULL;
}

double rc__object_number(const rc_value_t *obj, const char *key, double dflt) {
  const rc_value_t *v = rc__object_get(obj, key);
  if (v && v->type == RC_TYPE_INT) return (double)v->u.i;
  if (v && v->type == RC_TYPE_FLOAT) return v->u.f;
  return dflt;
}

rc_value_t *rc__object_with(const rc_value_t *obj, const char *key, rc_value_t *val) {
  size_t klen = strlen(key);
  rc__object_builder b;
  rc__object_begin(&b);
  bool found = false;
  uint32_t n = obj && obj->type == RC_TYPE_OBJECT ? obj->len : 0;
  for (uint32_t i = 0; i < n; i++) {
    const rc__member *m = &obj->u.members[i];
    if (m->klen == klen && memcmp(m->key, key, klen) == 0) {
      found = true;
      if (val) rc__object_put(&b, key, klen, val);
    } else {
      rc__object_put(&b, m->key, m->klen, rc__value_ref(m->val));
    }
  }
  if (!found && val) rc__object_put(&b, key, klen, val);
  return rc__object_end(&b);
}

/* ==== public accessors ==== */

rc_type_t rc_value_type(const rc_value_t *v) { return v ? (rc_type_t)v->type : RC_TYPE_NULL; }

const char *rc_type_name(rc_type_t t) {
  switch (t) {
  case RC_TYPE_NULL: return "null";
  case RC_TYPE_BOOL: return "boolean";
  case RC_TYPE_INT: return "integer";
  case RC_TYPE_FLOAT: return "float";
  case RC_TYPE_STRING: return "string";
  case RC_TYPE_ARRAY: return "array";
  case RC_TYPE_OBJECT: return "object";
  case RC_TYPE_DATETIME: return "datetime";
  }
  return "unknown";
}

const char *rc_change_kind_name(rc_change_kind_t kind) {
  switch (kind) {
  case RC_CHANGE_ADDED: return "added";
  case RC_CHANGE_REMOVED: return "removed";
  case RC_CHANGE_MODIFIED: return "modified";
  case RC_CHANGE_TOUCHED: return "touched";
  }
  return "unknown";
}

int rc_value_bool(const rc_value_t *v, bool *out) {
  if (!out) return RC_EINVAL;
  if (!v || v->type != RC_TYPE_BOOL) return RC_ETYPE;
  *out = v->u.b;
  return 0;
}

int rc_value_int(const rc_value_t *v, int64_t *out) {
  if (!out) return RC_EINVAL;
  if (!v || v->type != RC_TYPE_INT) return RC_ETYPE;
  *out = v->u.i;
  return 0;
}

int rc_value_number(const rc_value_t *v, double *out) {
  if (!out) return RC_EINVAL;
  if (v && v->type == RC_TYPE_INT) {
    *out = (double)v->u.i;
    return 0;
  }
  if (!v || v->type != RC_TYPE_FLOAT) return RC_ETYPE;
  *out = v->u.f;
  return 0;
}

int rc_value_string(const rc_value_t *v, const char **out, size_t *len) {
  if (!out) return RC_EINVAL;
  if (!v || v->type != RC_TYPE_STRING) return RC_ETYPE;
  *out = v->u.s;
  if (len) *len = v->len;
  return 0;
}

size_t rc_value_len(const rc_value_t *v) {
  return v && (v->type == RC_TYPE_ARRAY || v->type == RC_TYPE_OBJECT) ? v->len : 0;
}

const rc_value_t *rc_value_at(const rc_value_t *v, size_t i) {
  if (!v || i >= v->len) return NULL;
  if (v->type == RC_TYPE_ARRAY) return v->u.items[i];
  if (v->type == RC_TYPE_OBJECT) return v->u.members[i].val;
  return NULL;
}

const char *rc_value_key_at(const rc_value_t *v, size_t i, size_t *len) {
  if (!v || v->type != RC_TYPE_OBJECT || i >= v->len) return NULL;
  if (len) *len = v->u.members[i].klen;
  return v->u.members[i].key;
}

const rc_value_t *rc_value_get(const rc_value_t *v, const char *key) {
  if (!key) return NULL;
  long i = rc__object_find(v, key, strlen(key));
  return i < 0 ? NULL : v->u.members[i].val;
}

/* Objects are equal when they have the same keys with equal values, whatever their
 * insertion order: the same rule the diff applies, so equal values never diff. */
bool rc_value_equal(const rc_value_t *a, const rc_value_t *b) {
  if (a == b) return true;
  if (!a || !b || a->type != b->type) return false;
  switch ((rc_type_t)a->type) {
  case RC_TYPE_NULL: return true;
  case RC_TYPE_BOOL: return a->u.b == b->u.b;
  case RC_TYPE_INT: return a->u.i == b->u.i;
  case RC_TYPE_FLOAT: return memcmp(&a->u.f, &b->u.f, sizeof(double)) == 0;
  case RC_TYPE_STRING: return a->len == b->len && memcmp(a->u.s, b->u.s, a->len) == 0;
  case RC_TYPE_DATETIME: return rc__datetime_equal(a->u.dt, b->u.dt);
  case RC_TYPE_ARRAY:
    if (a->len != b->len) return false;
    for (uint32_t i = 0; i < a->len; i++)
      if (!rc_value_equal(a->u.items[i], b->u.items[i])) return false;
    return true;
  case RC_TYPE_OBJECT:
    if (a->len != b->len) return false;
    for (uint32_t i = 0; i < a->len; i++) {
      const rc__member *x = &a->u.members[rc__sorted(a)[i]];
      const rc__member *y = &b->u.members[rc__sorted(b)[i]];
      if (x->klen != y->klen || memcmp(x->key, y->key, x->klen) != 0) return false;
      if (!rc_value_equal(x->val, y->val)) return false;
    }
    return true;
  }
  return false;
}

char *rc_value_to_json(const rc_value_t *v, bool pretty) {
  rc__buf b;
  rc__buf_init(&b);
  rc__json_write(&b, v, pretty, false);
  return rc__buf_take(&b);
}
