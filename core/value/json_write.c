/* SPDX-License-Identifier: MIT (see LICENSE) */
/* json_write.c: values as JSON text, compact or indented. Strings are escaped so the
 * output is always valid JSON (invalid UTF-8 becomes U+FFFD); integers are exact; floats
 * use the shortest of %.15g/%.16g/%.17g that reads back to the same double and always
 * keep a '.' or an exponent, so they read back as floats. */
#include "value.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


/* Length of the valid UTF-8 sequence at s (n bytes available), or 0 if invalid
 * (overlong forms, surrogates and code points above U+10FFFF are invalid). */
static size_t utf8_len(const unsigned char *s, size_t n) {
  unsigned c = s[0];
  if (c < 0x80) return 1;
  if (c < 0xC2) return 0;
  if (c < 0xE0) return n >= 2 && (s[1] & 0xC0) == 0x80 ? 2 : 0;
  if (c < 0xF0) {
    if (n < 3 || (s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80) return 0;
    if (c == 0xE0 && s[1] < 0xA0) return 0;  /* overlong */
    if (c == 0xED && s[1] >= 0xA0) return 0; /* surrogate */
    return 3;
  }
  if (c < 0xF5) {
    if (n < 4 || (s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80 || (s[3] & 0xC0) != 0x80)
      return 0;
    if (c == 0xF0 && s[1] < 0x90) return 0;  /* overlong */
    if (c == 0xF4 && s[1] >= 0x90) return 0; /* above U+10FFFF */
    return 4;
  }
  return 0;
}

void rc__json_write_string(rc__buf *b, const char *str, size_t n) {
  static const char hex[] = "0123456789abcdef";
  const unsigned char *s = (const unsigned char *)str;
  rc__buf_reserve(b, n + 2);
  rc__buf_addc(b, '"');
  size_t run = 0, i = 0;
  while (i < n) {
    unsigned c = s[i];
    if (c >= 0x20 && c != '"' && c != '\\' && c < 0x7F) {
      i++;
      continue;
    }
    if (c >= 0x80) {
      size_t l = utf8_len(s + i, n - i);
      if (l) {
        i += l;
        continue;
      }
    }
    rc__buf_add(b, str + run, i - run);
    switch (c) {
    case '"': rc__buf_add(b, "\\\"", 2); break;
    case '\\': rc__buf_add(b, "\\\\", 2); break;
    case '\n': rc__buf_add(b, "\\n", 2); break;
    case '\r': rc__buf_add(b, "\\r", 2); break;
    case '\t': rc__buf_add(b, "\\t", 2); break;
    case '\b': rc__buf_add(b, "\\b", 2); break;
    case '\f': rc__buf_add(b, "\\f", 2); break;
    default:
      if (c < 0x20 || c == 0x7F) { /* controls, and DEL, which terminals act on */
        char e[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
        rc__buf_add(b, e, 6);
      } else {
        rc__buf_add(b, "\\ufffd", 6); /* a byte that is not valid UTF-8 */
      }
    }
    run = ++i;
  }
  rc__buf_add(b, str + run, n - run);
  rc__buf_addc(b, '"');
}

static void write_int(rc__buf *b, int64_t i) {
  char tmp[24];
  size_t n = sizeof tmp;
  uint64_t u = i < 0 ? (uint64_t)0 - (uint64_t)i : (uint64_t)i;
  do {
    tmp[--n] = (char)('0' + u % 10);
    u /= 10;
  } while (u);
  if (i < 0) tmp[--n] = '-';
  rc__buf_add(b, tmp + n, sizeof tmp - n);
}

static void write_float(rc__buf *b, double f, bool allow_nonfinite) {
  if (!isfinite(f)) {
    if (!allow_nonfinite)
      rc__buf_add(b, "null", 4);
    else
      rc__buf_adds(b, isnan(f) ? "nan" : f > 0 ? "inf" : "-inf");
    return;
  }
  char tmp[40];
  size_t n = rc__double_text(f, tmp, sizeof tmp - 2);
  if (!strpbrk(tmp, ".e")) {
    tmp[n++] = '.';
    tmp[n++] = '0';
  }
  rc__buf_add(b, tmp, (size_t)n);
}

static void newline(rc__buf *b, int depth) {
  if (rc__buf_reserve(b, 1 + 2 * (size_t)depth)) return;
  b->p[b->n++] = '\n';
  memset(b->p + b->n, ' ', 2 * (size_t)depth);
  b->n += 2 * (size_t)depth;
  b->p[b->n] = '\0';
}

static void write_value(rc__buf *b, const rc_value_t *v, bool pretty, bool nf, int depth) {
  if (b->oom) return;
  switch (rc_value_type(v)) {
  case RC_TYPE_NULL: rc__buf_add(b, "null", 4); return;
  case RC_TYPE_BOOL: rc__buf_adds(b, v->u.b ? "true" : "false"); return;
  case RC_TYPE_INT: write_int(b, v->u.i); return;
  case RC_TYPE_FLOAT: write_float(b, v->u.f, nf); return;
  case RC_TYPE_STRING: rc__json_write_string(b, v->u.s, v->len); return;
  case RC_TYPE_DATETIME: {
    /* JSON has no date-time: its RFC 3339 text, as TOML wrote it */
    char text[48];
    size_t n = rc__datetime_format(v->u.dt, text, sizeof text);
    rc__json_write_string(b, text, n);
    return;
  }
  case RC_TYPE_ARRAY:
    rc__buf_addc(b, '[');
    for (uint32_t i = 0; i < v->len; i++) {
      if (i) rc__buf_addc(b, ',');
      if (pretty) newline(b, depth + 1);
      write_value(b, v->u.items[i], pretty, nf, depth + 1);
    }
    if (pretty && v->len) newline(b, depth);
    rc__buf_addc(b, ']');
    return;
  case RC_TYPE_OBJECT:
    rc__buf_addc(b, '{');
    for (uint32_t i = 0; i < v->len; i++) {
      const rc__member *m = &v->u.members[i];
      if (i) rc__buf_addc(b, ',');
      if (pretty) newline(b, depth + 1);
      rc__json_write_string(b, m->key, m->klen);
      rc__buf_add(b, pretty ? ": " : ":", pretty ? 2 : 1);
      write_value(b, m->val, pretty, nf, depth + 1);
    }
    if (pretty && v->len) newline(b, depth);
    rc__buf_addc(b, '}');
    return;
  }
}

void rc__json_write(rc__buf *b, const rc_value_t *v, bool pretty, bool allow_nonfinite) {
  write_value(b, v, pretty, allow_nonfinite, 0);
}
