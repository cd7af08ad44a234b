/* SPDX-License-Identifier: MIT (see LICENSE) */
/* datetime.c: date-time values (TOML's offset and local date-times, dates and times):
 * the node that holds one, equality as value.h defines it, and RFC 3339 text that keeps
 * the kind and the fraction digits as written. */
#include "value.h"

#include <string.h>

/* One block: the node, then the rc_datetime_t its u.dt points to, so the ordinary node
 * free (one rc__free of the node) releases both. */
rc_value_t *rc__value_datetime(const rc_datetime_t *dt) {
  rc_value_t *v = rc__malloc(sizeof *v + sizeof *dt);
  if (!v) return NULL;
  atomic_init(&v->refs, 1);
  v->type = (uint8_t)RC_TYPE_DATETIME;
  v->len = 0;
  v->aoff = 0;
  v->u.dt = (rc_datetime_t *)(v + 1);
  memcpy(v->u.dt, dt, sizeof *dt);
  return v;
}

static bool has_date(rc_datetime_kind_t k) { return k != RC_TIME_LOCAL; }
static bool has_time(rc_datetime_kind_t k) { return k != RC_DATE_LOCAL; }

bool rc__datetime_equal(const rc_datetime_t *a, const rc_datetime_t *b) {
  if (a->kind != b->kind) return false;
  if (has_date(a->kind) &&
      (a->year != b->year || a->month != b->month || a->day != b->day))
    return false;
  if (has_time(a->kind) &&
      (a->hour != b->hour || a->minute != b->minute || a->second != b->second ||
       a->nanosecond != b->nanosecond))
    return false;
  if (a->kind == RC_DATETIME_OFFSET && a->offset_minutes != b->offset_minutes) return false;
  return true;
}

/* Writes `v` as exactly `w` decimal digits (v is known to fit). */
static char *digits(char *p, int v, int w) {
  for (int i = w - 1; i >= 0; i--) {
    p[i] = (char)('0' + v % 10);
    v /= 10;
  }
  return p + w;
}

size_t rc__datetime_format(const rc_datetime_t *dt, char *out, size_t n) {
  char tmp[48], *p = tmp;
  /* Fields are clamped to what their digits can show, so a hand-made value with
   * out-of-range fields still gives fixed-width text and never overruns `tmp`. */
#define CLAMP(x, lo, hi) ((x) < (lo) ? (lo) : (x) > (hi) ? (hi) : (x))
  if (has_date(dt->kind)) {
    p = digits(p, CLAMP(dt->year, 0, 9999), 4);
    *p++ = '-';
    p = digits(p, CLAMP(dt->month, 0, 99), 2);
    *p++ = '-';
    p = digits(p, CLAMP(dt->day, 0, 99), 2);
    if (has_time(dt->kind)) *p++ = 'T';
  }
  if (has_time(dt->kind)) {
    p = digits(p, CLAMP(dt->hour, 0, 99), 2);
    *p++ = ':';
    p = digits(p, CLAMP(dt->minute, 0, 99), 2);
    *p++ = ':';
    p = digits(p, CLAMP(dt->second, 0, 99), 2);
    int prec = CLAMP(dt->precision, 0, 9);
    if (prec > 0) {
      int ns = CLAMP(dt->nanosecond, 0, 999999999);
      for (int k = prec; k < 9; k++) ns /= 10;
      *p++ = '.';
      p = digits(p, ns, prec);
    }
    if (dt->kind == RC_DATETIME_OFFSET) {
      int off = CLAMP(dt->offset_minutes, -(99 * 60 + 59), 99 * 60 + 59);
      if (off == 0 && dt->offset_z) {
        *p++ = 'Z';
      } else {
        *p++ = off < 0 ? '-' : '+';
        if (off < 0) off = -off;
        p = digits(p, off / 60, 2);
        *p++ = ':';
        p = digits(p, off % 60, 2);
      }
    }
  }
#undef CLAMP
  size_t len = (size_t)(p - tmp);
  if (n == 0) return 0;
  if (len > n - 1) len = n - 1;
  memcpy(out, tmp, len);
  out[len] = '\0';
  return len;
}

int rc_value_datetime(const rc_value_t *v, rc_datetime_t *out) {
  if (!out) return RC_EINVAL;
  if (!v || v->type != RC_TYPE_DATETIME) return RC_ETYPE;
  *out = *v->u.dt;
  return 0;
}
