/* failalloc.h: an allocator for rc_set_allocator that fails the Nth allocation and counts
 * live blocks, so a test can raise N until an operation succeeds and check that no N
 * leaks or crashes (STYLE.md, "Tests"). Single-threaded tests only. */
#ifndef RC_TEST_FAILALLOC_H
#define RC_TEST_FAILALLOC_H

#include "reactcfg.h"

#include <stdlib.h>

static long fa_countdown = -1; /* allocations left before the failing one; -1: never fail */
static long fa_live;           /* blocks allocated and not yet freed */
static long fa_failures;       /* allocations refused so far */
static long fa_allocs;         /* allocations (and reallocations) asked for so far */

static void *fa_fn(void *ud, void *ptr, size_t size) {
  (void)ud;
  if (size == 0) {
    if (ptr) {
      fa_live--;
      free(ptr);
    }
    return NULL;
  }
  fa_allocs++;
  if (fa_countdown >= 0 && fa_countdown-- == 0) {
    fa_failures++;
    return NULL; /* like realloc: `ptr` stays valid */
  }
  void *p = realloc(ptr, size);
  if (p && !ptr) fa_live++;
  return p;
}

/* Installs the counting allocator; allocation number `n` (0-based) fails, -1 never. */
static void fa_install(long n) {
  fa_countdown = n;
  rc_set_allocator(fa_fn, NULL);
}

static void fa_uninstall(void) {
  fa_countdown = -1;
  rc_set_allocator(NULL, NULL);
}

#endif
