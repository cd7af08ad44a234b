/* SPDX-License-Identifier: MIT (see LICENSE) */
/* path.c: the path syntax shared by changes, lookups and subscription patterns:
 * `db.pool.max`, `rules[3].host`, `flags["a.b"]`, `["weird key"]`. Formatting quotes a key
 * unless it is bare ([A-Za-z0-9_-]+); in a quoted key `"` and `\` are escaped with a
 * backslash and every control byte (0x00-0x1f, 0x7f) is written `\xHH`, so a path is
 * one printable line and two keys never give the same path (a NUL no longer ends it
 * early). Parsing reads the same grammar back, and rc_value_find walks a value with it. */
#include "value.h"

#include <string.h>

/* 1 for the bytes of a bare key. */
static const unsigned char bare[256] = {
  ['-'] = 1, ['_'] = 1,
  ['0'] = 1, ['1'] = 1, ['2'] = 1, ['3'] = 1, ['4'] = 1,
  ['5'] = 1, ['6'] = 1, ['7'] = 1, ['8'] = 1, ['9'] = 1,
  ['A'] = 1, ['B'] = 1, ['C'] = 1, ['D'] = 1, ['E'] = 1, ['F'] = 1, ['G'] = 1,
  ['H'] = 1, ['I'] = 1, ['J'] = 1, ['K'] = 1, ['L'] = 1, ['M'] = 1, ['N'] = 1,
  ['O'] = 1, ['P'] = 1, ['Q'] = 1, ['R'] = 1, ['S'] = 1, ['T'] = 1, ['U'] = 1,
  ['V'] = 1, ['W'] = 1, ['X'] = 1, ['Y'] = 1, ['Z'] = 1,
  ['a'] = 1, ['b'] = 1, ['c'] = 1, ['d'] = 1, ['e'] = 1, ['f'] = 1, ['g'] = 1,
  ['h'] = 1, ['i'] = 1, ['j'] = 1, ['k'] = 1, ['l'] = 1, ['m'] = 1, ['n'] = 1,
  ['o'] = 1, ['p'] = 1, ['q'] = 1, ['r'] = 1, ['s'] = 1, ['t'] = 1, ['u'] = 1,
  ['v'] = 1, ['w'] = 1, ['x'] = 1, ['y'] = 1, ['z'] = 1,
};

/* ==== formatting ==== */

void rc__path_add_key(rc__buf *b, const char *key, size_t klen) {
  const unsigned char *k = (const unsigned char *)key;
  size_t i = 0;
  while (i < klen && bare[k[i]]) i++;
  if (klen > 0 && i == klen) {
    if (rc__buf_reserve(b, klen + 1)) return;
    if (b->n) b->p[b->n++] = '.';
    memcpy(b->p + b->n, key, klen);
    b->n += klen;
    b->p[b->n] = '\0';
    return;
  }
  /* Quoted: '"' and '\' escaped, control bytes as \xHH; the rest stands for itself. */
  static const char hex[] = "0123456789abcdef";
  rc__buf_add(b, "[\"", 2);
  size_t run = 0;
  for (i = 0; i < klen; i++) {
    bool control = k[i] < 0x20 || k[i] == 0x7f;
    if (!control && k[i] != '"' && k[i] != '\\') continue;
    rc__buf_add(b, key + run, i - run);
    if (control) {
      char esc[4] = {'\\', 'x', hex[k[i] >> 4], hex[k[i] & 15]};
      rc__buf_add(b, esc, 4);
      run = i + 1;
    } else {
      rc__buf_addc(b, '\\');
      run = i;
    }
  }
  rc__buf_add(b, key + run, klen - run);
  rc__buf_add(b, "\"]", 2);
}

void rc__path_add_index(rc__buf *b, size_t index) {
  char tmp[24];
  size_t n = sizeof tmp;
  tmp[--n] = ']';
  do {
    tmp[--n] = (char)('0' + index % 10);
    index /= 10;
  } while (index);
  tmp[--n] = '[';
  rc__buf_add(b, tmp + n, sizeof tmp - n);
}

/* ==== parsing ==== */

/* The value of hex digit `c`, or -1. */
static int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* One segment as written. */
typedef struct seg {
  const char *raw;  /* key bytes (still escaped when `escaped`), or NULL for an index */
  size_t rawlen;
  bool escaped;
  size_t index;
} seg;

/* Reads the segment at *pos. A segment after the first starts with '.' (bare key) or
 * '['; the first may be a bare key or '['. A bare segment that is exactly `*` or `**` is
 * also accepted, as a key of that name: subscription patterns (subscribe.c) use this
 * grammar and give those two their wildcard meaning; the formatter always quotes such
 * keys, so formatted paths stay unambiguous. Indices are decimal without leading zeros.
 * Returns 1, 0 at the end, -1 when malformed. */
static int scan(const char *path, size_t *pos, seg *s) {
  const char *p = path + *pos;
  if (*p == '\0') return 0;
  if (*p == '.' && *pos > 0) {
    p++;
    if (*p == '\0' || *p == '.' || *p == '[') return -1;
  } else if (*p != '[' && *pos > 0) {
    return -1;
  }
  if (*p != '[') {
    const char *start = p;
    while (bare[(unsigned char)*p]) p++;
    if (p == start) {
      while (*p == '*' && p - start < 2) p++;
      if (p == start || (*p != '\0' && *p != '.' && *p != '[')) return -1;
    }
    s->raw = start;
    s->rawlen = (size_t)(p - start);
    s->escaped = false;
    *pos = (size_t)(p - path);
    return 1;
  }
  p++;
  if (*p == '"') {
    const char *start = ++p;
    bool esc = false;
    while (*p != '"') {
      if (*p == '\0') return -1;
      if (*p == '\\') {
        if (p[1] == 'x') {
          if (hexval(p[2]) < 0 || hexval(p[3]) < 0) return -1;
          p += 2;
        } else if (p[1] != '"' && p[1] != '\\') {
          return -1;
        }
        esc = true;
        p++;
      }
      p++;
    }
    s->raw = start;
    s->rawlen = (size_t)(p - start);
    s->escaped = esc;
    p++;
  } else {
    if (*p < '0' || *p > '9' || (*p == '0' && p[1] >= '0' && p[1] <= '9')) return -1;
    size_t v = 0;
    for (; *p >= '0' && *p <= '9'; p++) {
      size_t d = (size_t)(*p - '0');
      if (v > (SIZE_MAX - d) / 10) return -1;
      v = v * 10 + d;
    }
    s->raw = NULL;
    s->index = v;
  }
  if (*p != ']') return -1;
  *pos = (size_t)(p + 1 - path);
  return 1;
}

/* Writes the unescaped key of `s` to `out` (room for s->rawlen bytes); returns its length. */
static size_t unescape(const seg *s, char *out) {
  size_t n = 0;
  for (size_t i = 0; i < s->rawlen; i++) {
    if (s->raw[i] == '\\' && s->raw[i + 1] == 'x') {
      out[n++] = (char)(hexval(s->raw[i + 2]) * 16 + hexval(s->raw[i + 3]));
      i += 3;
      continue;
    }
    if (s->raw[i] == '\\') i++;
    out[n++] = s->raw[i];
  }
  return n;
}

int rc__path_next(const char *path, size_t *pos, rc__buf *scratch, const char **key,
                  size_t *klen, size_t *index) {
  seg s;
  int r = scan(path, pos, &s);
  if (r <= 0) return r;
  if (!s.raw) {
    *key = NULL;
    *klen = 0;
    *index = s.index;
    return 1;
  }
  if (!s.escaped) {
    *key = s.raw;
    *klen = s.rawlen;
    return 1;
  }
  rc__buf_reset(scratch);
  if (rc__buf_reserve(scratch, s.rawlen)) return -1;
  scratch->n = unescape(&s, scratch->p);
  scratch->p[scratch->n] = '\0';
  *key = scratch->p;
  *klen = scratch->n;
  return 1;
}

/* Reading a value does not allocate: keys needing unescaping go through a stack buffer,
 * and only a quoted key with escapes longer than it falls back to the heap. */
const rc_value_t *rc_value_find(const rc_value_t *v, const char *path) {
  if (!path) return NULL;
  size_t pos = 0;
  for (;;) {
    seg s;
    int r = scan(path, &pos, &s);
    if (r == 0) return v;
    if (r < 0 || !v) return NULL;
    if (!s.raw) {
      if (v->type != RC_TYPE_ARRAY || s.index >= v->len) return NULL;
      v = v->u.items[s.index];
      continue;
    }
    if (v->type != RC_TYPE_OBJECT) return NULL;
    long i;
    if (!s.escaped) {
      i = rc__object_find(v, s.raw, s.rawlen);
    } else if (s.rawlen <= 256) {
      char tmp[256];
      i = rc__object_find(v, tmp, unescape(&s, tmp));
    } else {
      char *tmp = rc__malloc(s.rawlen);
      if (!tmp) return NULL;
      i = rc__object_find(v, tmp, unescape(&s, tmp));
      rc__free(tmp);
    }
    if (i < 0) return NULL;
    v = v->u.members[i].val;
  }
}

/* ==== compiled paths ==== */

rc_path_t *rc_path_compile(const char *path, rc_error *err) {
  if (!path) {
    rc__err(err, RC_EINVAL, NULL, 0, 0, "no path");
    return NULL;
  }
  /* Count and check first, so that one block holds everything. */
  size_t n = 0, keybytes = 0, pos = 0;
  for (;;) {
    seg s;
    size_t at = pos;
    int r = scan(path, &pos, &s);
    if (r == 0) break;
    if (r < 0 || (s.raw && s.rawlen >= UINT32_MAX)) {
      rc__err(err, RC_EINVAL, NULL, 0, (int)at + 1, "malformed path at byte %zu: %s",
              at + 1, path);
      return NULL;
    }
    n++;
    if (s.raw) keybytes += s.rawlen + 1;
  }
  rc_path_t *p = rc__malloc(sizeof *p + n * sizeof(rc__pseg) + keybytes);
  if (!p) {
    rc__err(err, RC_ENOMEM, NULL, 0, 0, "out of memory");
    return NULL;
  }
  p->n = n;
  char *keys = (char *)&p->seg[n];
  pos = 0;
  for (size_t i = 0; i < n; i++) {
    seg s;
    scan(path, &pos, &s);
    rc__pseg *c = &p->seg[i];
    atomic_init(&c->hint, 0);
    c->index = s.index;
    c->key = NULL;
    c->klen = 0;
    if (!s.raw) continue;
    c->klen = (uint32_t)(s.escaped ? unescape(&s, keys) : s.rawlen);
    if (!s.escaped) memcpy(keys, s.raw, s.rawlen);
    keys[c->klen] = '\0';
    c->key = keys;
    keys += c->klen + 1;
  }
  return p;
}

void rc_path_free(rc_path_t *path) { rc__free(path); }
