/* tagged_json.c: a value as toml-test's type-tagged JSON, where every scalar is an object
 * {"type": ..., "value": "..."} whose value is always a string, so the suite compares
 * decoders without trusting any JSON library's number handling. */
#include "toml.h"

#include <locale.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* printf and strtod follow LC_NUMERIC, which an embedding application may have set to a
 * locale with a decimal comma; floats are formatted under the "C" locale instead. */
static locale_t c_locale;
static pthread_once_t c_locale_once = PTHREAD_ONCE_INIT;
static void c_locale_init(void) { c_locale = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0); }

static void scalar(rc__buf *b, const char *type, const char *text, size_t n) {
  rc__buf_adds(b, "{\"type\":\"");
  rc__buf_adds(b, type);
  rc__buf_adds(b, "\",\"value\":");
  rc__json_write_string(b, text, n);
  rc__buf_addc(b, '}');
}

/* The shortest of %.15g, %.16g, %.17g that reads back to the same double ("-0" for
 * negative zero). */
static size_t float_text(double f, char *out, size_t n) {
  if (isnan(f)) return (size_t)snprintf(out, n, "nan");
  if (isinf(f)) return (size_t)snprintf(out, n, f > 0 ? "inf" : "-inf");
  pthread_once(&c_locale_once, c_locale_init);
  locale_t old = c_locale ? uselocale(c_locale) : (locale_t)0;
  int len = 0;
  for (int prec = 15; prec <= 17; prec++) {
    len = snprintf(out, n, "%.*g", prec, f);
    if (prec == 17 || strtod(out, NULL) == f) break;
  }
  if (old) uselocale(old);
  return len < 0 ? 0 : (size_t)len;
}

static const char *datetime_type(rc_datetime_kind_t k) {
  switch (k) {
  case RC_DATETIME_OFFSET: return "datetime";
  case RC_DATETIME_LOCAL: return "datetime-local";
  case RC_DATE_LOCAL: return "date-local";
  case RC_TIME_LOCAL: return "time-local";
  }
  return "datetime";
}

void rc__tagged_json_write(rc__buf *b, const rc_value_t *v) {
  char tmp[64];
  size_t n;
  if (b->oom) return;
  switch (rc_value_type(v)) {
  case RC_TYPE_NULL: rc__buf_adds(b, "null"); return;
  case RC_TYPE_BOOL:
    scalar(b, "bool", v->u.b ? "true" : "false", v->u.b ? 4 : 5);
    return;
  case RC_TYPE_INT:
    n = (size_t)snprintf(tmp, sizeof tmp, "%lld", (long long)v->u.i);
    scalar(b, "integer", tmp, n);
    return;
  case RC_TYPE_FLOAT:
    n = float_text(v->u.f, tmp, sizeof tmp);
    scalar(b, "float", tmp, n);
    return;
  case RC_TYPE_STRING: scalar(b, "string", v->u.s, v->len); return;
  case RC_TYPE_DATETIME:
    n = rc__datetime_format(v->u.dt, tmp, sizeof tmp);
    scalar(b, datetime_type(v->u.dt->kind), tmp, n);
    return;
  case RC_TYPE_ARRAY:
    rc__buf_addc(b, '[');
    for (uint32_t i = 0; i < v->len; i++) {
      if (i) rc__buf_addc(b, ',');
      rc__tagged_json_write(b, v->u.items[i]);
    }
    rc__buf_addc(b, ']');
    return;
  case RC_TYPE_OBJECT:
    rc__buf_addc(b, '{');
    for (uint32_t i = 0; i < v->len; i++) {
      const rc__member *m = &v->u.members[i];
      if (i) rc__buf_addc(b, ',');
      rc__json_write_string(b, m->key, m->klen);
      rc__buf_addc(b, ':');
      rc__tagged_json_write(b, m->val);
    }
    rc__buf_addc(b, '}');
    return;
  }
}
