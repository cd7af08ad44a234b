/* SPDX-License-Identifier: MIT (see LICENSE) */
/* number.c: numbers as text in the "C" locale, whatever LC_NUMERIC an embedding
 * application set (a decimal comma must not turn "1.5" into 1): reading with strtod_l,
 * and writing the shortest %.15g/%.16g/%.17g that reads back to the same double. The one
 * place the "C" locale is made. */
#include "internal.h"

#include <locale.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static locale_t c_locale;
static pthread_once_t c_locale_once = PTHREAD_ONCE_INIT;
static void c_locale_init(void) { c_locale = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0); }

static locale_t numeric_c(void) {
  pthread_once(&c_locale_once, c_locale_init);
  return c_locale;
}

double rc__strtod_c(const char *s, char **end) {
  locale_t loc = numeric_c();
  return loc ? strtod_l(s, end, loc) : strtod(s, end);
}

double rc__strntod_c(const char *s, size_t n, bool *nomem) {
  char small[64];
  char *z = n < sizeof small ? small : rc__malloc(n + 1);
  if (!z) {
    if (nomem) *nomem = true;
    return NAN;
  }
  memcpy(z, s, n);
  z[n] = '\0';
  double d = rc__strtod_c(z, NULL);
  if (z != small) rc__free(z);
  return d;
}

size_t rc__double_text(double f, char *out, size_t n) {
  if (isnan(f)) return (size_t)snprintf(out, n, "nan");
  if (isinf(f)) return (size_t)snprintf(out, n, f > 0 ? "inf" : "-inf");
  locale_t loc = numeric_c();
  locale_t old = loc ? uselocale(loc) : (locale_t)0;
  int len = 0;
  for (int prec = 15; prec <= 17; prec++) {
    len = snprintf(out, n, "%.*g", prec, f);
    if (prec == 17 || rc__strtod_c(out, NULL) == f) break;
  }
  if (old) uselocale(old);
  return len < 0 ? 0 : (size_t)len >= n ? n - 1 : (size_t)len;
}
