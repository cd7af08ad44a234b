/* SPDX-License-Identifier: MIT (see LICENSE) */
/* arena.c: document arenas. A parser builds a whole document's nodes in a few large
 * chunks, in document order, and the document is freed one chunk at a time: no malloc
 * and no free per node, and a walk over the tree reads memory in the order it was
 * written. One reference count, in the arena, stands for all of the document's nodes. */
#include "value.h"

#include <assert.h>

/* A chunk starts with this header; nodes find it `aoff` bytes before themselves. */
typedef struct chunk {
  rc__arena *arena;
  struct chunk *next;
  size_t size;       /* header included */
} chunk;

struct rc__arena {
  _Atomic size_t refs;
  chunk *chunks;     /* every chunk, the newest first */
  chunk *cur;        /* the chunk being filled */
  char *next, *end;  /* its free part */
  size_t grow;       /* size of the next ordinary chunk */
};

/* The largest chunks are the big blocks of core/base (rc__big_get): a large document's
 * chunks are kept when it is freed and the next document is built in them, instead of
 * memory the C library gave back to the kernel and every page of which faults again
 * (glibc trims or unmaps a freed block this big). A node's offset in its chunk must fit
 * 32 bits as well. */
#define CHUNK_MAX RC__BIG_BLOCK
#define CHUNK_MIN ((size_t)1 << 10)

static chunk *chunk_alloc(size_t size) {
  chunk *c = size == CHUNK_MAX ? rc__big_get() : rc__malloc(size);
  if (c) c->size = size;
  return c;
}

static size_t align8(size_t n) { return (n + 7) & ~(size_t)7; }

/* Links a new chunk of `size` bytes (header included); makes it the current one unless
 * `aside` (a chunk for one large node, so the current chunk's free part is kept). */
static chunk *add_chunk(rc__arena *a, size_t size, bool aside) {
  chunk *c = chunk_alloc(size);
  if (!c) return NULL;
  c->arena = a;
  c->next = a->chunks;
  a->chunks = c;
  if (!aside) {
    a->cur = c;
    a->next = (char *)c + align8(sizeof *c);
    a->end = (char *)c + size;
  }
  return c;
}

rc__arena *rc__arena_new(size_t hint) {
  size_t first = align8(sizeof(chunk)) + align8(sizeof(rc__arena)) + hint;
  if (first < CHUNK_MIN) first = CHUNK_MIN;
  if (first > CHUNK_MAX) first = CHUNK_MAX;
  chunk *c = chunk_alloc(first);
  if (!c) return NULL;
  /* the arena lives in its first chunk, after the header */
  rc__arena *a = (rc__arena *)((char *)c + align8(sizeof *c));
  atomic_init(&a->refs, 1);
  c->arena = a;
  c->next = NULL;
  a->chunks = a->cur = c;
  a->next = (char *)a + align8(sizeof *a);
  a->end = (char *)c + first;
  a->grow = first * 2 < CHUNK_MAX ? first * 2 : CHUNK_MAX;
  return a;
}

rc_value_t *rc__arena_value(rc__arena *a, size_t size, rc_type_t type, uint32_t len) {
  size = align8(size);
  chunk *c = a->cur;
  char *p = a->next;
  if (size > (size_t)(a->end - p)) {
    size_t head = align8(sizeof(chunk));
    if (size > UINT32_MAX - head) return NULL; /* its offset would not fit */
    if (size > a->grow / 4) {                  /* a large node gets a chunk of its own */
      c = add_chunk(a, head + size, true);
      if (!c) return NULL;
      p = (char *)c + head;
    } else {
      c = add_chunk(a, a->grow, false);
      if (!c) return NULL;
      if (a->grow < CHUNK_MAX) a->grow *= 2;
      p = a->next;
      a->next += size;
    }
  } else {
    a->next += size;
  }
  rc_value_t *v = (rc_value_t *)p;
  atomic_init(&v->refs, RC__ARENA);
  v->type = (uint8_t)type;
  v->len = len;
  v->aoff = (uint32_t)(p - (char *)c);
  return v;
}

static rc__arena *arena_of(const rc_value_t *v) {
  return ((const chunk *)((const char *)v - v->aoff))->arena;
}

void rc__arena_discard(rc__arena *a) {
  if (!a) return;
  chunk *c = a->chunks; /* the last one holds the arena itself */
  while (c) {
    chunk *next = c->next;
    if (c->size == CHUNK_MAX)
      rc__big_put(c);
    else
      rc__free(c);
    c = next;
  }
}

void rc__arena_ref(const rc_value_t *v) {
  atomic_fetch_add_explicit(&arena_of(v)->refs, 1, memory_order_relaxed);
}

/* The same protocol as rc__value_unref (value.c): the last owner skips the atomic
 * read-modify-write, and an acquire load stands for the fence TSan does not model. */
void rc__arena_unref(const rc_value_t *v) {
  rc__arena *a = arena_of(v);
  size_t r = atomic_load_explicit(&a->refs, memory_order_acquire);
  if (r != 1 && atomic_fetch_sub_explicit(&a->refs, 1, memory_order_release) != 1) return;
  if (r != 1) (void)atomic_load_explicit(&a->refs, memory_order_acquire);
  rc__arena_discard(a);
}
