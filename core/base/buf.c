/* SPDX-License-Identifier: MIT (see LICENSE) */
/* buf.c: a growable byte buffer that remembers an allocation failure, so a long run of
 * appends (JSON output, paths) is checked once at the end. */
#include "internal.h"

#include <stdio.h>
#include <string.h>

void rc__buf_init(rc__buf *b) { memset(b, 0, sizeof *b); }

void rc__buf_free(rc__buf *b) {
  rc__free(b->p);
  rc__buf_init(b);
}

void rc__buf_reset(rc__buf *b) {
  b->n = 0;
  if (b->p) b->p[0] = '\0';
}

int rc__buf_reserve(rc__buf *b, size_t extra) {
  if (b->oom) return RC_ENOMEM;
  if (b->n + extra + 1 <= b->cap) return 0;
  size_t cap = b->cap ? b->cap : 64;
  while (cap < b->n + extra + 1) {
    if (cap > SIZE_MAX / 2) {
      b->oom = 1;
      return RC_ENOMEM;
    }
    cap *= 2;
  }
  char *p = rc__realloc(b->p, cap);
  if (!p) {
    b->oom = 1;
    return RC_ENOMEM;
  }
  b->p = p;
  b->cap = cap;
  return 0;
}

void rc__buf_add(rc__buf *b, const void *data, size_t n) {
  if (rc__buf_reserve(b, n)) return;
  if (n) memcpy(b->p + b->n, data, n);
  b->n += n;
  b->p[b->n] = '\0';
}

void rc__buf_adds(rc__buf *b, const char *s) { rc__buf_add(b, s, strlen(s)); }

void rc__buf_addc(rc__buf *b, char c) {
  if (rc__buf_reserve(b, 1)) return;
  b->p[b->n++] = c;
  b->p[b->n] = '\0';
}

void rc__buf_printf(rc__buf *b, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char small[256];
  int n = vsnprintf(small, sizeof small, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  if ((size_t)n < sizeof small) {
    rc__buf_add(b, small, (size_t)n);
    return;
  }
  if (rc__buf_reserve(b, (size_t)n)) return;
  va_start(ap, fmt);
  vsnprintf(b->p + b->n, (size_t)n + 1, fmt, ap);
  va_end(ap);
  b->n += (size_t)n;
}

char *rc__buf_take(rc__buf *b) {
  char *p = b->p;
  if (b->oom) {
    rc__free(p);
    p = NULL;
  } else if (!p) {
    p = rc__strdup("");
  }
  rc__buf_init(b);
  return p;
}
