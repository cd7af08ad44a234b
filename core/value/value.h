/* SPDX-License-Identifier: MIT (see LICENSE) */
/* value.h: the core's immutable, reference-counted value tree (private contract).
 * Parsers build it, the diff engine walks it, snapshots hold it, Lua converts to and from
 * it. A published value is never modified; sharing a subtree is taking a reference. */
#ifndef RC_VALUE_H
#define RC_VALUE_H

#include "internal.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>

/* One node. Scalars and strings are leaves; arrays and objects own references to their
 * children. `refs` is atomic because snapshots are released from any thread; the
 * constants null/true/false are immortal (RC__IMMORTAL) and never freed. A node built in
 * a document arena (arena.c) has refs = RC__ARENA: its references are counted once for
 * the whole document, in the arena, found `aoff` bytes before the node. */
struct rc_value {
  _Atomic uint32_t refs;
  uint8_t type;               /* rc_type_t */
  uint32_t len;               /* string bytes, array elements, object members */
  uint32_t aoff;              /* RC__ARENA nodes: offset from their arena chunk's start */
  union {
    bool b;
    int64_t i;
    double f;
    char *s;                  /* RC_TYPE_STRING: points just past the node, NUL-ended */
    struct rc_value **items;  /* RC_TYPE_ARRAY: `len` children */
    struct rc__member *members; /* RC_TYPE_OBJECT: `len` members, insertion order */
    rc_datetime_t *dt;        /* RC_TYPE_DATETIME: points just past the node */
  } u;
};

/* An object member: `key` is NUL-terminated and owned by the object node. */
typedef struct rc__member {
  const char *key;
  uint32_t klen;
  struct rc_value *val;
} rc__member;

/* An object's sorted index: its `len` member indices in key order (memcmp, shorter first
 * on a tie), for lookup and diff. Stored right after the members, not pointed to, which
 * keeps every node at 24 bytes: the diff reads less memory per leaf. */
static inline uint32_t *rc__sorted(const rc_value_t *v) {
  return (uint32_t *)(v->u.members + v->len);
}

#define RC__IMMORTAL UINT32_MAX
#define RC__ARENA (UINT32_MAX - 1)

/* String bytes and object keys are followed by at least RC__TAIL readable (zero) bytes
 * inside their allocation, so that diff.c compares them eight bytes at a time with a
 * mask instead of byte by byte, without ever loading past the block. */
#define RC__TAIL 8

/* ---- document arenas (arena.c) ----
 * A parser may build a whole document in one arena: nodes are bump-allocated in document
 * order from a few large chunks, children point into the same arena (or at the immortal
 * constants), and the document is freed with one free per chunk instead of one per node.
 * The arena's one reference count stands for every reference to any of its nodes, so a
 * reference kept to a small part of a document keeps the whole document's memory.
 * The builder's thread owns an arena until its root is published; from then on its
 * nodes are refcounted like any other (rc__value_ref/unref, any thread). */
typedef struct rc__arena rc__arena;
/* A new arena for a document of about `hint` bytes of nodes; NULL on OOM. Its count is 1:
 * the reference that the root node will stand for. */
rc__arena *rc__arena_new(size_t hint);
/* A node of `size` bytes (at least sizeof(rc_value_t); the rest follows the node) with
 * refs = RC__ARENA, `type` and `len` set; NULL on OOM. 8-byte aligned. */
rc_value_t *rc__arena_value(rc__arena *a, size_t size, rc_type_t type, uint32_t len);
/* Frees an arena whose document was not finished (a failed parse): every chunk at once,
 * whatever its count. NULL ok. */
void rc__arena_discard(rc__arena *a);
void rc__arena_ref(const rc_value_t *v);   /* +1 on the arena of RC__ARENA node v */
void rc__arena_unref(const rc_value_t *v); /* -1; frees every chunk at 0 */

/* Finishes an object node whose members are in place (an arena builder: keys and values
 * already stored, room for the `len` indices of rc__sorted after them): sorts the index and
 * drops duplicate keys as rc__object_end does. `scratch` holds at least 16 * len bytes.
 * Dropped values are not released (they belong to the arena). */
void rc__object_seal(rc_value_t *v, void *scratch);

/* ---- references ---- */
rc_value_t *rc__value_ref(const rc_value_t *v);  /* +1, returns v; NULL ok */
void rc__value_unref(rc_value_t *v);             /* -1, frees at 0; NULL ok */

/* ---- constructors: each returns a new value with refs = 1, or NULL on OOM ---- */
rc_value_t *rc__value_null(void);                /* immortal constant */
rc_value_t *rc__value_bool(bool b);              /* immortal constants */
rc_value_t *rc__value_int(int64_t i);
rc_value_t *rc__value_float(double f);
rc_value_t *rc__value_string(const char *s, size_t len);  /* copies */

/* A date-time (copied into the node, like a string's bytes). datetime.c. */
rc_value_t *rc__value_datetime(const rc_datetime_t *dt);
/* Same kind and same date, time, nanoseconds and offset; the number of fraction digits
 * written and "Z" versus "+00:00" do not count. */
bool rc__datetime_equal(const rc_datetime_t *a, const rc_datetime_t *b);
/* RFC 3339 / TOML text keeping kind and precision ("1979-05-27T00:32:00.999-07:00",
 * "07:32:00", "1979-05-27"). Returns the length written (NUL-terminated, truncated to
 * n - 1 when short; 40 bytes always suffice). */
size_t rc__datetime_format(const rc_datetime_t *dt, char *out, size_t n);

/* Builders for containers. Children are *moved* in (the builder takes the caller's
 * reference); on failure every child added so far is released. */
typedef struct rc__array_builder {
  rc_value_t **items;
  size_t n, cap;
  int oom;
} rc__array_builder;
void rc__array_begin(rc__array_builder *b);
void rc__array_push(rc__array_builder *b, rc_value_t *child); /* child NULL => oom */
rc_value_t *rc__array_end(rc__array_builder *b);   /* NULL on OOM; builder reset */
void rc__array_abort(rc__array_builder *b);        /* releases children */
/* Abandons the array, moving its children into `junk` (to be released in one piece,
 * perhaps on another thread: see rc__reap); a child that does not fit is released. */
void rc__array_abort_into(rc__array_builder *b, rc__array_builder *junk);

typedef struct rc__object_builder {
  rc__member *members;   /* keys here are owned copies until end */
  size_t n, cap;
  size_t keybytes;
  int oom;
} rc__object_builder;
void rc__object_begin(rc__object_builder *b);
/* Adds a member (key copied, value moved in). A later duplicate key replaces the earlier
 * value but keeps the earlier position (JSON.parse semantics). */
void rc__object_put(rc__object_builder *b, const char *key, size_t klen, rc_value_t *val);
rc_value_t *rc__object_end(rc__object_builder *b);  /* NULL on OOM; builder reset */
void rc__object_abort(rc__object_builder *b);
/* Abandons the object, moving its values into `junk` as rc__array_abort_into does. */
void rc__object_abort_into(rc__object_builder *b, rc__array_builder *junk);

/* Object member lookup by key bytes: index into u.members or -1. O(log n). */
long rc__object_find(const rc_value_t *obj, const char *key, size_t klen);
/* Member `key` of `obj` (borrowed), NULL when `obj` is not an object or lacks it. */
const rc_value_t *rc__object_get(const rc_value_t *obj, const char *key);
/* Member `key` as a number (an integer or a float), `dflt` when absent or not a
 * number. */
double rc__object_number(const rc_value_t *obj, const char *key, double dflt);

/* A new object equal to `obj` with `key` set to `val` (moved in; NULL removes the key).
 * Unchanged members are shared by reference. `obj` may be NULL (empty object).
 * Returns NULL on OOM (val is released). Used to build a new snapshot root. */
rc_value_t *rc__object_with(const rc_value_t *obj, const char *key, rc_value_t *val);

/* ---- paths: `a.b[3]["x.y"]` ---- */
/* Appends one key segment to a path buffer, quoting it as ["..."] when it is not a bare
 * key ([A-Za-z0-9_-]+), with a '.' separator when `b` is not empty. */
void rc__path_add_key(rc__buf *b, const char *key, size_t klen);
void rc__path_add_index(rc__buf *b, size_t index);  /* "[3]" */
/* Iterates the segments of `path`: on each call fills *key and *klen (key segment, possibly
 * unescaped into `scratch`) or *index (index segment, *key = NULL). Returns 1 for a
 * segment, 0 at the end, -1 for a malformed path. `*pos` starts at 0. */
int rc__path_next(const char *path, size_t *pos, rc__buf *scratch, const char **key,
                  size_t *klen, size_t *index);

/* ---- compiled paths (rc_path_compile in path.c) ---- */
/* One segment: a key (unescaped, NUL-ended, in the path's own block) or an index.
 * `hint` is the member position where the key was found last; threads sharing the path
 * race on it harmlessly, hence relaxed atomics (it is checked before use). */
typedef struct rc__pseg {
  const char *key;        /* NULL: an index segment */
  uint32_t klen;
  _Atomic uint32_t hint;
  size_t index;
} rc__pseg;

struct rc_path {
  size_t n;
  rc__pseg seg[];         /* then the keys' bytes */
};

#ifndef __cplusplus /* json_parse.cpp includes this header; it has no use for these */
/* Key bytes equal? Configuration keys are short: a loop the compiler keeps inline beats
 * a call to memcmp, which the hot read path would otherwise make once per segment. */
static inline bool rc__key_eq(const char *a, const char *b, uint32_t n) {
  if (n > 16) return memcmp(a, b, n) == 0;
  for (uint32_t i = 0; i < n; i++)
    if (a[i] != b[i]) return false;
  return true;
}

/* The value at compiled path `p` below `v`, or NULL: the same answer as rc_value_find
 * with the path's text. A key tries its remembered position first: the same member sits
 * there in the next revision's object unless keys were added or removed before it. The
 * key bytes are compared before the hint is trusted, so a stale hint falls back to the
 * O(log n) search, whose answer becomes the new hint. Inline: it is the hot read path.
 * Any thread. */
static inline const rc_value_t *rc__path_find(const rc_value_t *v, const rc_path_t *p) {
  for (size_t i = 0; i < p->n; i++) {
    if (!v) return NULL;
    rc__pseg *c = (rc__pseg *)&p->seg[i]; /* the hint is the one mutable part of a path */
    if (!c->key) {
      if (v->type != RC_TYPE_ARRAY || c->index >= v->len) return NULL;
      v = v->u.items[c->index];
      continue;
    }
    if (v->type != RC_TYPE_OBJECT) return NULL;
    uint32_t h = atomic_load_explicit(&c->hint, memory_order_relaxed);
    if (h < v->len) {
      const rc__member *m = &v->u.members[h];
      if (m->klen == c->klen && rc__key_eq(m->key, c->key, c->klen)) {
        v = m->val;
        continue;
      }
    }
    long j = rc__object_find(v, c->key, c->klen);
    if (j < 0) return NULL;
    atomic_store_explicit(&c->hint, (uint32_t)j, memory_order_relaxed);
    v = v->u.members[j].val;
  }
  return v;
}
#endif

/* A new tree equal to `v` with the value at relative `path` ("a.b[2]", "" = the whole)
 * replaced by `sub` (moved in; NULL removes it). Objects along the path are created as
 * needed; an index past an array's end leaves `v` as it is. Returns the new tree (owned;
 * NULL = absent) with *status 0, or NULL with RC_ENOMEM / RC_EINVAL (bad path).
 * path_edit.c. */
rc_value_t *rc__value_with_path(const rc_value_t *v, const char *path, rc_value_t *sub,
                                int *status);

/* ---- diff ---- */
typedef struct rc__changeset {
  rc_change_t *items;     /* after rc__diff_finish: path points into `paths` */
  size_t n, cap;
  rc__buf paths;          /* all paths, NUL-separated */
  rc__buf cur;            /* scratch: the path of the change being recorded */
  size_t root;            /* length of the prefix at the start of `cur` */
  /* diff.c's stack of the object members that recorded changes: pairs {member index,
   * first change}, for putting their changes in key order */
  size_t *runs;
  size_t nruns, runcap;
  /* diff.c: the last two key areas found equal in this diff, and their length */
  const char *keys[2];
  size_t keylen;
  int oom;
} rc__changeset;
void rc__changeset_init(rc__changeset *cs);
void rc__changeset_free(rc__changeset *cs);
void rc__changeset_reset(rc__changeset *cs);   /* keeps capacity */
/* Compares `a` (old) and `b` (new), either may be NULL (absent), and appends the changes
 * below `prefix` ("" for the root; a prefix that is not "" is used verbatim as the first
 * path segment(s)). Shared subtrees (same pointer) are skipped without a walk. Objects are
 * compared by key, arrays by index; a type change is one modification. Old/new pointers
 * in the result are borrowed from `a` and `b`. Returns 0 or RC_ENOMEM. */
int rc__diff(const rc_value_t *a, const rc_value_t *b, const char *prefix,
             rc__changeset *cs);
/* Turns stored path offsets into pointers; call once after the last rc__diff. */
void rc__diff_finish(rc__changeset *cs);

/* ---- JSON text ---- */
/* Appends `n` bytes as a JSON string: escapes quotes, backslashes and control
 * characters, passes valid UTF-8 through, writes U+FFFD for bytes that are not. */
void rc__json_write_string(rc__buf *b, const char *s, size_t n);
/* Appends `v` as JSON (pretty: 2-space indent). Non-finite floats are written as
 * null-free tokens `nan`, `inf`, `-inf` only when `allow_nonfinite`, else as null. */
void rc__json_write(rc__buf *b, const rc_value_t *v, bool pretty, bool allow_nonfinite);

#endif
