/* SPDX-License-Identifier: MIT (see LICENSE) */
/* check.h: the smallest test kit for the C test programs: CHECK macros that print
 * file:line on failure and count, and check_report() that prints "N passed, M failed"
 * and gives main() its exit status. One test program per translation unit. */
#ifndef RC_TEST_CHECK_H
#define RC_TEST_CHECK_H

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static int check_passed, check_failed;

static inline void check_fail_(const char *file, int line) {
  check_failed++;
  fprintf(stderr, "%s:%d: FAILED: ", file, line);
}

#define CHECK(cond)                                   \
  do {                                                \
    if (cond) {                                       \
      check_passed++;                                 \
    } else {                                          \
      check_fail_(__FILE__, __LINE__);                \
      fprintf(stderr, "%s\n", #cond);                 \
    }                                                 \
  } while (0)

#define CHECK_EQ_INT(a, b)                                                           \
  do {                                                                               \
    long long a_ = (long long)(a), b_ = (long long)(b);                              \
    if (a_ == b_) {                                                                  \
      check_passed++;                                                                \
    } else {                                                                         \
      check_fail_(__FILE__, __LINE__);                                               \
      fprintf(stderr, "%s == %s: got %lld, want %lld\n", #a, #b, a_, b_);            \
    }                                                                                \
  } while (0)

#define CHECK_EQ_STR(a, b)                                                           \
  do {                                                                               \
    const char *a_ = (a), *b_ = (b);                                                 \
    if (a_ && b_ && strcmp(a_, b_) == 0) {                                           \
      check_passed++;                                                                \
    } else {                                                                         \
      check_fail_(__FILE__, __LINE__);                                               \
      fprintf(stderr, "%s == %s:\n    got  \"%s\"\n    want \"%s\"\n", #a, #b,       \
              a_ ? a_ : "(null)", b_ ? b_ : "(null)");                               \
    }                                                                                \
  } while (0)

/* Prints the summary line; returns main()'s exit status (nonzero on any failure). */
static inline int check_report(const char *name) {
  printf("%s: %d passed, %d failed\n", name, check_passed, check_failed);
  return check_failed != 0;
}

#endif
