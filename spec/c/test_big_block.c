/* SPDX-License-Identifier: MIT (see LICENSE) */
/* test_big_block.c: the big blocks of core/base (rc__big_get/rc__big_put), which a large
 * JSON document's arena chunks are. A freed document's blocks are kept (up to
 * RC__BIG_KEEP) and the next document is built in them: before, every large parse got
 * fresh memory from the kernel and faulted each page of it in again, which was half of
 * its time. Kept blocks go back to their allocator when it is replaced, and threads may
 * take and give them at once. */
#include "check.h"
#include "failalloc.h"
#include "parse.h"

#include <pthread.h>
#include <stdlib.h>

/* Allocations of a big block's size asked of the allocator (fa_fn counts all of them). */
static _Atomic long big_asked;

static void *counting(void *ud, void *ptr, size_t size) {
  if (size == RC__BIG_BLOCK && !ptr) big_asked++;
  return fa_fn(ud, ptr, size);
}

static void test_kept_and_reused(void) {
  rc_set_allocator(counting, NULL);
  void *a = rc__big_get(), *b = rc__big_get();
  CHECK(a && b && a != b);
  CHECK_EQ_INT(big_asked, 2);
  rc__big_put(a);
  rc__big_put(b);
  CHECK_EQ_INT(fa_live, 2); /* kept, not freed */
  void *c = rc__big_get(), *d = rc__big_get();
  CHECK_EQ_INT(big_asked, 2); /* both came from the kept ones */
  CHECK((c == a && d == b) || (c == b && d == a));
  rc__big_put(c);
  rc__big_put(d);
  rc__big_put(NULL);
  /* At most RC__BIG_KEEP are kept: the rest are freed. */
  void *blocks[RC__BIG_KEEP + 3];
  for (int i = 0; i < RC__BIG_KEEP + 3; i++) blocks[i] = rc__big_get();
  for (int i = 0; i < RC__BIG_KEEP + 3; i++) rc__big_put(blocks[i]);
  CHECK_EQ_INT(fa_live, RC__BIG_KEEP);
  /* Replacing the allocator frees the kept blocks with the one that made them. */
  rc_set_allocator(counting, NULL);
  CHECK_EQ_INT(fa_live, 0);
}

/* A document of about 6 MB (50,000 strings of 120 bytes): its arena's chunks are big
 * blocks (the first chunk is sized 1.5 times the text, at most a big block). */
static char *big_document(size_t *len) {
  size_t n = 50000, cap = n * 125 + 16;
  char *s = malloc(cap + RC__PARSE_PADDING);
  size_t k = 0;
  s[k++] = '[';
  for (size_t i = 0; i < n; i++) {
    k += (size_t)snprintf(s + k, cap - k, "%s\"%0118zu\"", i ? "," : "", i);
  }
  s[k++] = ']';
  *len = k;
  return s;
}

static void test_next_document_reuses_blocks(void) {
  rc_set_allocator(counting, NULL);
  size_t len;
  char *doc = big_document(&len);
  rc_value_t *v = NULL;
  rc_error err;
  CHECK_EQ_INT(rc__parse_json(doc, len, len + RC__PARSE_PADDING, NULL, NULL, &v, &err), 0);
  long first = big_asked;
  CHECK(first >= 1);
  rc__value_unref(v);
  for (int round = 0; round < 3; round++) {
    big_asked = 0;
    CHECK_EQ_INT(rc__parse_json(doc, len, len + RC__PARSE_PADDING, NULL, NULL, &v, &err), 0);
    CHECK_EQ_INT(big_asked, 0); /* built in the first document's blocks */
    CHECK(v && rc_value_type(v) == RC_TYPE_ARRAY && rc_value_len(v) == 50000);
    rc__value_unref(v);
  }
  free(doc);
  rc_set_allocator(counting, NULL);
  CHECK_EQ_INT(fa_live, 0);
}

static void *take_and_give(void *arg) {
  (void)arg;
  for (int i = 0; i < 2000; i++) {
    void *p = rc__big_get(), *q = rc__big_get();
    if (p) ((char *)p)[4096] = (char)i; /* the taker owns the block */
    rc__big_put(q);
    rc__big_put(p);
  }
  return NULL;
}

static void test_threads(void) {
  rc_set_allocator(counting, NULL);
  pthread_t t[3];
  for (int i = 0; i < 3; i++) pthread_create(&t[i], NULL, take_and_give, NULL);
  for (int i = 0; i < 3; i++) pthread_join(t[i], NULL);
  CHECK(fa_live <= RC__BIG_KEEP);
  rc_set_allocator(counting, NULL);
  CHECK_EQ_INT(fa_live, 0);
}

int main(void) {
  test_kept_and_reused();
  test_next_document_reuses_blocks();
  test_threads();
  (void)fa_install;
  fa_uninstall();
  return check_report("test_big_block");
}
