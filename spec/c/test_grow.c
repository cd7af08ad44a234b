/* SPDX-License-Identifier: MIT (see LICENSE) */
/* test_grow.c: rc__grow, the one growable-array step every array in core/ and sources/
 * uses: doubling from the first size, keeping the array on failure, refusing overflow. */
#include "check.h"
#include "failalloc.h"
#include "internal.h"

#include <stdint.h>

static void grows_from_first_by_doubling(void) {
  int *a = NULL;
  size_t cap = 0;
  CHECK_EQ_INT(0, RC__GROW(a, cap, 1, 4));
  CHECK(a != NULL);
  CHECK_EQ_INT(4, (long)cap);
  for (int i = 0; i < 4; i++) a[i] = i;
  CHECK_EQ_INT(0, RC__GROW(a, cap, 4, 4)); /* fits: nothing happens */
  CHECK_EQ_INT(4, (long)cap);
  CHECK_EQ_INT(0, RC__GROW(a, cap, 5, 4));
  CHECK_EQ_INT(8, (long)cap);
  CHECK_EQ_INT(0, RC__GROW(a, cap, 100, 4)); /* doubles until it fits */
  CHECK_EQ_INT(128, (long)cap);
  for (int i = 0; i < 4; i++) CHECK_EQ_INT(i, a[i]); /* contents kept */
  rc__free(a);
}

static void failure_keeps_the_array(void) {
  long *a = NULL;
  size_t cap = 0;
  CHECK_EQ_INT(0, RC__GROW(a, cap, 3, 2));
  a[0] = 42;
  long *before = a;
  fa_install(0); /* the next allocation fails */
  CHECK_EQ_INT(RC_ENOMEM, RC__GROW(a, cap, 5, 2));
  fa_install(-1);
  CHECK(a == before);
  CHECK_EQ_INT(4, (long)cap);
  CHECK_EQ_INT(42, a[0]);
  rc__free(a);
}

static void overflow_is_refused(void) {
  uint64_t *a = NULL;
  size_t cap = 0;
  long allocs = fa_allocs;
  CHECK_EQ_INT(RC_ENOMEM, RC__GROW(a, cap, SIZE_MAX / 4, 8));
  CHECK_EQ_INT(RC_ENOMEM, RC__GROW(a, cap, SIZE_MAX, 8));
  CHECK(a == NULL);
  CHECK_EQ_INT(0, (long)cap);
  CHECK_EQ_INT(allocs, fa_allocs); /* refused before asking for memory */
}

int main(void) {
  fa_install(-1);
  grows_from_first_by_doubling();
  failure_keeps_the_array();
  overflow_is_refused();
  CHECK_EQ_INT(0, fa_live);
  fa_uninstall();
  return check_report("grow");
}
