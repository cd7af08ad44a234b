/* SPDX-License-Identifier: MIT (see LICENSE) */
/* alloc.c: the replaceable allocator behind rc__malloc and friends, plus rc_free.
 * The default is the C library's realloc/free. */
#include "internal.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static void *default_fn(void *ud, void *ptr, size_t size) {
  RC__UNUSED(ud);
  if (size == 0) {
    free(ptr);
    return NULL;
  }
  return realloc(ptr, size);
}

static void *(*alloc_fn)(void *, void *, size_t) = default_fn;
static void *alloc_ud;

/* Big blocks kept for reuse (rc__big_get/rc__big_put): a singly linked stack, the link
 * in the block's first bytes. */
static pthread_mutex_t big_mu = PTHREAD_MUTEX_INITIALIZER;
static void *big_free;
static size_t big_count;

static void big_drain(void) {
  pthread_mutex_lock(&big_mu);
  void *p = big_free;
  big_free = NULL;
  big_count = 0;
  pthread_mutex_unlock(&big_mu);
  while (p) {
    void *next;
    memcpy(&next, p, sizeof next);
    alloc_fn(alloc_ud, p, 0);
    p = next;
  }
}

void rc_set_allocator(void *(*fn)(void *ud, void *ptr, size_t size), void *ud) {
  big_drain(); /* kept blocks go back to the allocator that made them */
  alloc_fn = fn ? fn : default_fn;
  alloc_ud = fn ? ud : NULL;
}

void *rc__big_get(void) {
  pthread_mutex_lock(&big_mu);
  void *p = big_free;
  if (p) {
    memcpy(&big_free, p, sizeof big_free);
    big_count--;
  }
  pthread_mutex_unlock(&big_mu);
  return p ? p : rc__malloc(RC__BIG_BLOCK);
}

void rc__big_put(void *p) {
  if (!p) return;
  pthread_mutex_lock(&big_mu);
  bool keep = big_count < RC__BIG_KEEP;
  if (keep) {
    memcpy(p, &big_free, sizeof big_free);
    big_free = p;
    big_count++;
  }
  pthread_mutex_unlock(&big_mu);
  if (!keep) rc__free(p);
}

void *rc__malloc(size_t n) { return alloc_fn(alloc_ud, NULL, n ? n : 1); }

void *rc__calloc(size_t n, size_t size) {
  if (size && n > SIZE_MAX / size) return NULL;
  void *p = rc__malloc(n * size);
  if (p) memset(p, 0, n * size > 0 ? n * size : 1);
  return p;
}

void *rc__realloc(void *p, size_t n) { return alloc_fn(alloc_ud, p, n ? n : 1); }

void rc__free(void *p) {
  if (!p) return;
  int saved = errno;
  alloc_fn(alloc_ud, p, 0);
  errno = saved;
}

void rc_free(void *ptr) { rc__free(ptr); }

int rc__grow(void *items, size_t *cap, size_t need, size_t size, size_t first) {
  if (need <= *cap) return 0;
  size_t n = *cap ? *cap : (first ? first : 1);
  while (n < need) {
    if (n > SIZE_MAX / 2) return RC_ENOMEM;
    n *= 2;
  }
  if (size && n > SIZE_MAX / size) return RC_ENOMEM;
  /* The array pointer is read and written as bytes: `items` points at a T*, not a void*. */
  void *old;
  memcpy(&old, items, sizeof old);
  void *grown = rc__realloc(old, n * size);
  if (!grown) return RC_ENOMEM;
  memcpy(items, &grown, sizeof grown);
  *cap = n;
  return 0;
}

char *rc__strndup(const char *s, size_t n) {
  char *d = rc__malloc(n + 1);
  if (!d) return NULL;
  memcpy(d, s, n);
  d[n] = '\0';
  return d;
}

char *rc__strdup(const char *s) { return rc__strndup(s, strlen(s)); }

size_t rc__strcpy_cut(char *dst, size_t n, const char *src) {
  size_t len = src ? strnlen(src, n - 1) : 0;
  if (len) memcpy(dst, src, len);
  dst[len] = '\0';
  return len;
}
