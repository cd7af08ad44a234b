/* SPDX-License-Identifier: MIT (see LICENSE) */
/* failalloc.h: an allocator for rc_set_allocator that fails the Nth allocation (or, with
 * fa_fail_all, every one from then on) and counts live blocks, so a test can raise N
 * until an operation succeeds and check that no N leaks or crashes (STYLE.md, "Tests").
 * Its counters are atomic: an engine thread may allocate beside the test's. */
#ifndef RC_TEST_FAILALLOC_H
#define RC_TEST_FAILALLOC_H

#include "reactcfg.h"

#include <stdatomic.h>
#include <stdlib.h>

static _Atomic long fa_countdown = -1; /* allocations before the failing one; -1: never */
static _Atomic long fa_live;           /* blocks allocated and not yet freed */
static _Atomic long fa_failures;       /* allocations refused so far */
static _Atomic long fa_allocs;         /* allocations (and reallocations) asked for */
static _Atomic int fa_fail_all;        /* refuse every allocation while set */
static _Atomic int fa_sticky;          /* the countdown's failure sets fa_fail_all */

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
  if (atomic_load(&fa_fail_all) || (fa_countdown >= 0 && fa_countdown-- == 0)) {
    if (fa_sticky) atomic_store(&fa_fail_all, 1);
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
