/* SPDX-License-Identifier: MIT (see LICENSE) */
/* toml.c: TOML 1.0.0 text -> value tree, in one pass over the bytes, with errors that give
 * the line and column of the offending character and say what was expected, and the
 * limits of rc__parse_limits. Tables become objects with their keys in document order. */
#include "toml.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* How it works.
 *
 * The input is copied once into a block followed by PAD zero bytes, so every scanner
 * stops on a NUL without a bounds check and may look a few bytes ahead. A NUL before the
 * end is a control character (an error wherever it appears), the one at the end is the
 * end of the input.
 *
 * Anything TOML lets a document extend later (the root, tables made by [headers], by a
 * header's dotted path or by dotted keys, arrays of tables) lives in a mutable store
 * until the end: `tbl` records, and `ent` records for their keys, chained in document
 * order. Everything TOML freezes as soon as it is written (scalars, arrays written with
 * `=`, inline tables) is built at once as an immutable rc_value_t and held by its key's
 * entry, so "extending an inline table" or "appending to a static array" is simply
 * meeting a finished value where a table was needed. An inline table is parsed into the
 * store like any table (it needs the same duplicate and dotted-key checks), converted as
 * soon as its '}' is read, and its records are then dropped again (see map_truncate).
 *
 * Key lookup: a table with at most SMALL_TABLE keys is searched along its chain; bigger
 * tables are indexed in one open-addressing hash map shared by all tables, keyed by
 * (table, key). At the end the store is converted into objects and arrays; the converted
 * values are moved, never copied.
 *
 * The redefinition rules, as the specification and toml-test state them:
 * - a key is defined once per table; a table header names a table at most once;
 * - a header may name a table that an earlier header created implicitly on its path
 *   ([a.b] then [a]), but not one created by dotted keys ([fruit] apple.color = 1 then
 *   [fruit.apple] is an error), though it may create tables *below* one
 *   ([fruit.apple.texture] is fine);
 * - dotted keys may extend tables they created themselves in the same section (between
 *   two headers, or inside one inline table) and tables that headers created only
 *   implicitly; never a table defined by a header, an array of tables, or an inline table;
 * - [[a]] appends to an array of tables and may not meet a static array or a table;
 *   a header's path through an array of tables goes into its last element;
 * - inline tables and static arrays are immutable once written. */

#define NONE UINT32_MAX
#define PAD 16         /* zero bytes after the input copy, for look-ahead */
#define SMALL_TABLE 8  /* tables with more keys than this are indexed in the hash map */

enum { E_VALUE, E_TABLE, E_AOT };
/* How a table came to be, for the redefinition rules above. */
enum { T_IMPLICIT, T_HEADER, T_DOTTED, T_INLINE };

/* A key of a table in the store. `key` points into the input copy or the key arena. */
typedef struct ent {
  const char *key;
  uint32_t klen;
  uint32_t hash;
  uint32_t owner;       /* the table it belongs to */
  uint32_t next;        /* the owner's next key in document order, or NONE */
  uint32_t kind;        /* E_* */
  union {
    rc_value_t *v;      /* E_VALUE: owned until converted (then NULL) */
    uint32_t t;         /* E_TABLE */
    struct {
      uint32_t first, last; /* E_AOT: element tables, chained by tbl.sib */
    } aot;
  } u;
} ent;

typedef struct tbl {
  uint32_t first, last; /* key chain */
  uint32_t count;
  uint32_t sib;         /* next element of the same array of tables, or NONE */
  uint32_t depth;       /* containers above it; the root is 0 */
  uint32_t section;     /* T_DOTTED: the section whose dotted keys made it */
  uint8_t kind;         /* T_* */
  uint8_t indexed;      /* its keys are in the hash map */
} tbl;

/* Keys that had escapes are decoded into blocks that never move. */
typedef struct chunk {
  struct chunk *next;
  size_t used, cap;
  char data[];
} chunk;

/* One key segment, decoded (pointing into the input copy or the key arena). */
typedef struct keyp {
  const char *s;
  uint32_t len;
  uint32_t hash;
} keyp;

typedef struct tp {
  const char *s, *end;  /* the input copy; *end is the NUL after the last byte */
  const char *file;
  rc_error *err;
  const rc__parse_limits *lim;
  int rc;               /* the first error, once there is one */
  ent *ents;
  uint32_t nents, cents;
  tbl *tbls;
  uint32_t ntbls, ctbls;
  uint32_t *map;        /* entry index + 1, 0 = free */
  uint32_t mcap, mused;
  uint32_t *log;        /* entries in the order they entered the map */
  uint32_t nlog, clog;
  chunk *keys;
  rc__buf sbuf;         /* a string with escapes or CRLFs, decoded */
  size_t nodes;
  uint32_t section, nsections;
  uint64_t seed;
} tp;

/* ==== character classes ==== */

enum {
  C_BARE = 1,   /* may appear in a bare key */
  C_STR = 2,    /* ends a run of plain bytes in a basic string */
  C_LIT = 4,    /* ... in a literal string */
  C_MSTR = 8,   /* ... in a multi-line basic string */
  C_MLIT = 16,  /* ... in a multi-line literal string */
  C_CMT = 32,   /* ... in a comment */
  C_END = 64,   /* may follow a number, boolean or date-time */
};

#define CTRL_(c) ((c) < 0x20 || (c) == 0x7F)
#define CLS_(c)                                                                          \
  (uint8_t)(((((c) >= 'A' && (c) <= 'Z') || ((c) >= 'a' && (c) <= 'z') ||              \
              ((c) >= '0' && (c) <= '9') || (c) == '_' || (c) == '-')                   \
                 ? C_BARE : 0) |                                                         \
            (((c) == '"' || (c) == '\\' || (CTRL_(c) && (c) != '\t') || (c) >= 0x80)     \
                 ? C_STR : 0) |                                                          \
            (((c) == '\'' || (CTRL_(c) && (c) != '\t') || (c) >= 0x80) ? C_LIT : 0) |    \
            (((c) == '"' || (c) == '\\' || (CTRL_(c) && (c) != '\t' && (c) != '\n') ||   \
              (c) >= 0x80) ? C_MSTR : 0) |                                               \
            (((c) == '\'' || (CTRL_(c) && (c) != '\t' && (c) != '\n') || (c) >= 0x80)    \
                 ? C_MLIT : 0) |                                                         \
            (((CTRL_(c) && (c) != '\t') || (c) >= 0x80) ? C_CMT : 0) |                   \
            (((c) == ' ' || (c) == '\t' || (c) == '\n' || (c) == '\r' || (c) == '#' ||   \
              (c) == ',' || (c) == ']' || (c) == '}' || (c) == 0) ? C_END : 0))
#define R4_(i) CLS_(i), CLS_((i) + 1), CLS_((i) + 2), CLS_((i) + 3)
#define R16_(i) R4_(i), R4_((i) + 4), R4_((i) + 8), R4_((i) + 12)
#define R64_(i) R16_(i), R16_((i) + 16), R16_((i) + 32), R16_((i) + 48)
static const uint8_t cls[256] = {R64_(0), R64_(64), R64_(128), R64_(192)};
#undef R64_
#undef R16_
#undef R4_
#undef CLS_
#undef CTRL_

#define CL(c) cls[(unsigned char)(c)]

static inline bool dig(char c) { return (unsigned char)(c - '0') < 10; }

/* Length of the valid UTF-8 sequence at s, or 0 (overlong forms, surrogates and code
 * points above U+10FFFF are invalid). Reads at most 4 bytes; the padding makes that
 * safe. */
static size_t utf8_len(const char *str) {
  const unsigned char *s = (const unsigned char *)str;
  unsigned c = s[0];
  if (c < 0x80) return 1;
  if (c < 0xC2) return 0;
  if (c < 0xE0) return (s[1] & 0xC0) == 0x80 ? 2 : 0;
  if (c < 0xF0) {
    if ((s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80) return 0;
    if (c == 0xE0 && s[1] < 0xA0) return 0;  /* overlong */
    if (c == 0xED && s[1] >= 0xA0) return 0; /* surrogate */
    return 3;
  }
  if (c < 0xF5) {
    if ((s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80 || (s[3] & 0xC0) != 0x80) return 0;
    if (c == 0xF0 && s[1] < 0x90) return 0;  /* overlong */
    if (c == 0xF4 && s[1] >= 0x90) return 0; /* above U+10FFFF */
    return 4;
  }
  return 0;
}

/* ==== errors ==== */

/* Records the first error (later ones are consequences) and returns its code. */
static int fail(tp *p, int code, const char *at, const char *fmt, ...) RC__PRINTF(4, 5);
static int fail(tp *p, int code, const char *at, const char *fmt, ...) {
  if (p->rc) return p->rc;
  int line, col;
  rc__text_position(p->s, (size_t)(at - p->s), &line, &col);
  va_list ap;
  va_start(ap, fmt);
  rc__verr(p->err, code, p->file, line, col, fmt, ap);
  va_end(ap);
  p->rc = code;
  return code;
}

static int oom(tp *p) {
  if (p->rc) return p->rc;
  p->rc = RC_ENOMEM;
  return rc__err(p->err, RC_ENOMEM, p->file, 0, 0, "out of memory reading TOML");
}

/* The character at `c` as a message should name it. */
static const char *what(const tp *p, const char *c, char buf[64]) {
  unsigned char u = (unsigned char)*c;
  if (c >= p->end) return "the end of the input";
  if (u == '\n' || (u == '\r' && c[1] == '\n')) return "the end of the line";
  if (u == '\r') return "a carriage return without a line feed";
  if (u == ' ') return "a space";
  if (u == '\t') return "a tab";
  if (u > 0x20 && u < 0x7F) {
    snprintf(buf, 64, "'%c'", u);
  } else if (u < 0x80) {
    snprintf(buf, 64, "the control character U+%04X", u);
  } else {
    size_t l = utf8_len(c);
    if (!l) {
      snprintf(buf, 64, "the byte 0x%02X, which is not valid UTF-8", u);
    } else {
      unsigned cp = l == 2 ? u & 0x1F : l == 3 ? u & 0x0F : u & 0x07;
      for (size_t k = 1; k < l; k++) cp = cp << 6 | ((unsigned char)c[k] & 0x3F);
      /* Spaces, controls and format characters that would print as nothing. */
      if (cp <= 0xA0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200F) ||
          (cp >= 0x2028 && cp <= 0x202F) || (cp >= 0x205F && cp <= 0x206F) ||
          cp == 0x3000 || cp == 0xFEFF)
        snprintf(buf, 64, "the invisible character U+%04X", cp);
      else
        snprintf(buf, 64, "'%.*s' (U+%04X)", (int)l, c, cp);
    }
  }
  return buf;
}

/* The byte at `c` stopped a scan of `where` (a string, a comment) and is not allowed
 * there: a control character, a lone CR, or invalid UTF-8. */
static int bad_char(tp *p, const char *c, const char *where) {
  unsigned char u = (unsigned char)*c;
  if (u >= 0x80)
    return fail(p, RC_EPARSE, c, "invalid UTF-8 in %s (byte 0x%02X)", where, u);
  if (u == '\r')
    return fail(p, RC_EPARSE, c, "a carriage return in %s must be followed by a line feed",
                where);
  return fail(p, RC_EPARSE, c, "control character U+%04X is not allowed in %s", u, where);
}

/* Source text for messages: at most 60 bytes, cut before a line end. */
#define SHOW(a, b) show_len(a, b), (a)
static int show_len(const char *a, const char *b) {
  int n = 0;
  while (a + n < b && n < 60 && a[n] != '\n' && a[n] != '\r') n++;
  return n;
}

/* ==== the store: tables, keys, the hash map ==== */

static uint32_t key_hash(const tp *p, const char *k, size_t n) {
  uint64_t h = p->seed ^ ((uint64_t)n * 0x9E3779B97F4A7C15ull);
  while (n >= 8) {
    uint64_t w;
    memcpy(&w, k, 8);
    h = (h ^ w) * 0xBF58476D1CE4E5B9ull;
    h ^= h >> 31;
    k += 8;
    n -= 8;
  }
  uint64_t w = 0;
  for (size_t i = 0; i < n; i++) w |= (uint64_t)(unsigned char)k[i] << (8 * i);
  h = (h ^ w) * 0x94D049BB133111EBull;
  h ^= h >> 32;
  return (uint32_t)h;
}

static inline uint32_t slot_of(uint32_t hash, uint32_t owner, uint32_t mask) {
  uint64_t x = ((uint64_t)owner << 32 | hash) * 0x9E3779B97F4A7C15ull;
  return (uint32_t)(x >> 32) & mask;
}

static void map_place(tp *p, uint32_t e) {
  const ent *x = &p->ents[e];
  uint32_t mask = p->mcap - 1, s = slot_of(x->hash, x->owner, mask);
  while (p->map[s]) s = (s + 1) & mask;
  p->map[s] = e + 1;
}

/* Adds entry `e` to the hash map. The map is rebuilt from the log when it grows, in log
 * order, so the log stays the exact insertion order (map_truncate relies on it). */
static int map_put(tp *p, uint32_t e) {
  if (p->nlog == p->clog) {
    uint32_t c = p->clog ? p->clog * 2 : 256;
    uint32_t *l = c > p->clog ? rc__realloc(p->log, (size_t)c * sizeof *l) : NULL;
    if (!l) return oom(p);
    p->log = l;
    p->clog = c;
  }
  if ((uint64_t)(p->mused + 1) * 2 > p->mcap) {
    uint32_t c = p->mcap ? p->mcap * 2 : 512;
    uint32_t *m = c > p->mcap ? rc__calloc(c, sizeof *m) : NULL;
    if (!m) return oom(p);
    rc__free(p->map);
    p->map = m;
    p->mcap = c;
    for (uint32_t i = 0; i < p->nlog; i++) map_place(p, p->log[i]);
  }
  p->log[p->nlog++] = e;
  p->mused++;
  map_place(p, e);
  return 0;
}

/* Removes the entries logged after `nlog`, newest first. With linear probing, taking
 * out the most recent insertion never breaks another key's probe sequence: every key
 * still present went in earlier, when that slot was free, so no probe passed over it. */
static void map_truncate(tp *p, uint32_t nlog) {
  uint32_t mask = p->mcap - 1;
  while (p->nlog > nlog) {
    uint32_t e = p->log[--p->nlog];
    const ent *x = &p->ents[e];
    uint32_t s = slot_of(x->hash, x->owner, mask);
    while (p->map[s] != e + 1) s = (s + 1) & mask;
    p->map[s] = 0;
    p->mused--;
  }
}

static uint32_t lookup(const tp *p, uint32_t t, const keyp *k) {
  const tbl *tb = &p->tbls[t];
  if (!tb->indexed) {
    for (uint32_t e = tb->first; e != NONE; e = p->ents[e].next) {
      const ent *x = &p->ents[e];
      if (x->hash == k->hash && x->klen == k->len && memcmp(x->key, k->s, k->len) == 0)
        return e;
    }
    return NONE;
  }
  uint32_t mask = p->mcap - 1;
  for (uint32_t s = slot_of(k->hash, t, mask);; s = (s + 1) & mask) {
    uint32_t v = p->map[s];
    if (!v) return NONE;
    const ent *x = &p->ents[v - 1];
    if (x->owner == t && x->hash == k->hash && x->klen == k->len &&
        memcmp(x->key, k->s, k->len) == 0)
      return v - 1;
  }
}

static uint32_t new_tbl(tp *p, int kind, uint32_t depth) {
  if (p->ntbls == p->ctbls) {
    uint32_t c = p->ctbls ? p->ctbls * 2 : 64;
    tbl *t = c > p->ctbls ? rc__realloc(p->tbls, (size_t)c * sizeof *t) : NULL;
    if (!t) return oom(p), NONE;
    p->tbls = t;
    p->ctbls = c;
  }
  tbl *t = &p->tbls[p->ntbls];
  t->first = t->last = NONE;
  t->count = 0;
  t->sib = NONE;
  t->depth = depth;
  t->section = p->section;
  t->kind = (uint8_t)kind;
  t->indexed = 0;
  return p->ntbls++;
}

/* Appends key `k` to table `t` (the caller has checked it is new) and returns the new
 * entry with its payload still to be filled, or NONE when out of memory. */
static uint32_t add_ent(tp *p, uint32_t t, const keyp *k, uint32_t kind) {
  if (p->nents == p->cents) {
    uint32_t c = p->cents ? p->cents * 2 : 256;
    ent *e = c > p->cents ? rc__realloc(p->ents, (size_t)c * sizeof *e) : NULL;
    if (!e) return oom(p), NONE;
    p->ents = e;
    p->cents = c;
  }
  uint32_t i = p->nents++;
  ent *x = &p->ents[i];
  x->key = k->s;
  x->klen = k->len;
  x->hash = k->hash;
  x->owner = t;
  x->next = NONE;
  x->kind = kind;
  x->u.v = NULL;
  tbl *tb = &p->tbls[t];
  if (tb->last == NONE)
    tb->first = i;
  else
    p->ents[tb->last].next = i;
  tb->last = i;
  tb->count++;
  if (tb->indexed) {
    if (map_put(p, i)) return NONE;
  } else if (tb->count > SMALL_TABLE) {
    for (uint32_t e = tb->first; e != NONE; e = p->ents[e].next)
      if (map_put(p, e)) return NONE;
    p->tbls[t].indexed = 1;
  }
  return i;
}

static char *key_store(tp *p, const char *s, size_t n) {
  chunk *ch = p->keys;
  if (!ch || ch->cap - ch->used < n) {
    size_t cap = n > 4000 ? n : 4000;
    ch = rc__malloc(sizeof *ch + cap);
    if (!ch) return NULL;
    ch->next = p->keys;
    ch->used = 0;
    ch->cap = cap;
    p->keys = ch;
  }
  char *d = ch->data + ch->used;
  memcpy(d, s, n);
  ch->used += n;
  return d;
}

/* Counts one more node against the limit. */
static int node(tp *p, const char *at) {
  if (++p->nodes <= p->lim->max_nodes) return 0;
  return fail(p, RC_ELIMIT, at, "more than %zu values (the node limit)", p->lim->max_nodes);
}

static int too_deep(tp *p, const char *at) {
  return fail(p, RC_ELIMIT, at, "nesting deeper than %u levels",
              (unsigned)p->lim->max_depth);
}

/* ==== conversion to values ==== */

static rc_value_t *convert(tp *p, uint32_t t);

static rc_value_t *convert_aot(tp *p, uint32_t first) {
  rc__array_builder b;
  rc__array_begin(&b);
  for (uint32_t t = first; t != NONE; t = p->tbls[t].sib) {
    rc_value_t *v = convert(p, t);
    if (!v) {
      rc__array_abort(&b);
      return NULL;
    }
    rc__array_push(&b, v);
  }
  return rc__array_end(&b);
}

/* The object for table `t`; its values are moved out of the store. NULL on OOM (every
 * value moved so far is released, the rest stays in the store for cleanup). */
static rc_value_t *convert(tp *p, uint32_t t) {
  rc__object_builder b;
  rc__object_begin(&b);
  for (uint32_t e = p->tbls[t].first; e != NONE; e = p->ents[e].next) {
    ent *x = &p->ents[e];
    rc_value_t *v;
    if (x->kind == E_VALUE) {
      v = x->u.v;
      x->u.v = NULL;
    } else if (x->kind == E_TABLE) {
      v = convert(p, x->u.t);
    } else {
      v = convert_aot(p, x->u.aot.first);
    }
    if (!v) {
      rc__object_abort(&b);
      return NULL;
    }
    rc__object_put(&b, x->key, x->klen, v);
  }
  return rc__object_end(&b);
}

/* ==== whitespace, comments, line ends ==== */

static inline const char *skip_ws(const char *c) {
  while (*c == ' ' || *c == '\t') c++;
  return c;
}

/* `c` is at '#'. Returns the position of the line end (LF, CRLF or the end of input). */
static const char *comment(tp *p, const char *c) {
  c++;
  for (;;) {
    while (!(CL(*c) & C_CMT)) c++;
    unsigned char u = (unsigned char)*c;
    if (u == '\n' || (u == '\r' && c[1] == '\n') || (u == 0 && c == p->end)) return c;
    if (u >= 0x80) {
      size_t l = utf8_len(c);
      if (l) {
        c += l;
        continue;
      }
    }
    bad_char(p, c, "a comment");
    return NULL;
  }
}

/* Spaces, tabs, line ends and comments, as allowed between array elements. */
static const char *skip_all(tp *p, const char *c) {
  for (;;) {
    c = skip_ws(c);
    if (*c == '\n') {
      c++;
    } else if (*c == '\r' && c[1] == '\n') {
      c += 2;
    } else if (*c == '#') {
      c = comment(p, c);
      if (!c) return NULL;
    } else {
      return c;
    }
  }
}

/* After a key/value pair or a header: blanks, maybe a comment, then a line end. */
static const char *line_end(tp *p, const char *c, const char *after) {
  c = skip_ws(c);
  if (*c == '#') {
    c = comment(p, c);
    if (!c) return NULL;
  }
  if (*c == '\n') return c + 1;
  if (*c == '\r' && c[1] == '\n') return c + 2;
  if (c == p->end) return c;
  char wb[64];
  fail(p, RC_EPARSE, c, "expected the end of the line after %s, found %s", after,
       what(p, c, wb));
  return NULL;
}

/* ==== strings ==== */

static int hexval(char c) {
  if (dig(c)) return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

static void add_utf8(rc__buf *b, uint32_t cp) {
  char u[4];
  size_t n;
  if (cp < 0x80) {
    u[0] = (char)cp;
    n = 1;
  } else if (cp < 0x800) {
    u[0] = (char)(0xC0 | cp >> 6);
    u[1] = (char)(0x80 | (cp & 0x3F));
    n = 2;
  } else if (cp < 0x10000) {
    u[0] = (char)(0xE0 | cp >> 12);
    u[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
    u[2] = (char)(0x80 | (cp & 0x3F));
    n = 3;
  } else {
    u[0] = (char)(0xF0 | cp >> 18);
    u[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    u[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    u[3] = (char)(0x80 | (cp & 0x3F));
    n = 4;
  }
  rc__buf_add(b, u, n);
}

/* `c` is at a backslash in a basic string; appends the escaped character to p->sbuf and
 * returns the position after the escape. */
static const char *escape(tp *p, const char *c) {
  char e;
  switch (c[1]) {
  case 'b': e = '\b'; break;
  case 't': e = '\t'; break;
  case 'n': e = '\n'; break;
  case 'f': e = '\f'; break;
  case 'r': e = '\r'; break;
  case '"': e = '"'; break;
  case '\\': e = '\\'; break;
  case 'u':
  case 'U': {
    int n = c[1] == 'u' ? 4 : 8;
    uint32_t cp = 0;
    for (int k = 0; k < n; k++) {
      int h = hexval(c[2 + k]);
      if (h < 0) {
        fail(p, RC_EPARSE, c, "'\\%c' must be followed by exactly %d hexadecimal digits",
             c[1], n);
        return NULL;
      }
      cp = cp << 4 | (uint32_t)h;
    }
    if ((cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF) {
      fail(p, RC_EPARSE, c, "'\\%.*s' is not a Unicode scalar value (surrogates and "
           "code points above U+10FFFF cannot be written)", n + 1, c + 1);
      return NULL;
    }
    add_utf8(&p->sbuf, cp);
    return c + 2 + n;
  }
  default: {
    char wb[64];
    fail(p, RC_EPARSE, c, "invalid escape: '\\' followed by %s (valid escapes are \\b \\t "
         "\\n \\f \\r \\\" \\\\ \\uXXXX \\UXXXXXXXX)", what(p, c + 1, wb));
    return NULL;
  }
  }
  rc__buf_addc(&p->sbuf, e);
  return c + 2;
}

/* The decoded bytes of a string just scanned: the input itself when nothing needed
 * decoding (`copy` false), else p->sbuf after its last run. */
static int str_result(tp *p, bool copy, const char *run, const char *end, const char **out,
                      size_t *len) {
  if (!copy) {
    *out = run;
    *len = (size_t)(end - run);
    return 0;
  }
  rc__buf_add(&p->sbuf, run, (size_t)(end - run));
  if (p->sbuf.oom) return oom(p);
  *out = p->sbuf.p;
  *len = p->sbuf.n;
  return 0;
}

static int unterminated(tp *p, const char *c, const char *open, const char *kind,
                        const char *close) {
  int line, col;
  rc__text_position(p->s, (size_t)(open - p->s), &line, &col);
  return fail(p, RC_EPARSE, c,
              "unterminated %s (opened at line %d, column %d): expected %s", kind, line,
              col, close);
}

/* A basic string; `c` is just after the opening quote. Returns the position after the
 * closing quote. */
static const char *basic_string(tp *p, const char *c, const char **out, size_t *len) {
  const char *open = c - 1, *run = c;
  bool copy = false;
  for (;;) {
    while (!(CL(*c) & C_STR)) c++;
    unsigned char u = (unsigned char)*c;
    if (u == '"') break;
    if (u == '\\') {
      if (!copy) {
        rc__buf_reset(&p->sbuf);
        copy = true;
      }
      rc__buf_add(&p->sbuf, run, (size_t)(c - run));
      c = escape(p, c);
      if (!c) return NULL;
      run = c;
      continue;
    }
    if (u >= 0x80) {
      size_t l = utf8_len(c);
      if (l) {
        c += l;
        continue;
      }
    }
    if (u == '\n' || (u == '\r' && c[1] == '\n') || c == p->end) {
      unterminated(p, c, open, "string", "'\"' before the end of the line (use triple "
                   "quotes for a multi-line string)");
      return NULL;
    }
    bad_char(p, c, "a string");
    return NULL;
  }
  if (str_result(p, copy, run, c, out, len)) return NULL;
  return c + 1;
}

/* A literal string; `c` is just after the opening quote. */
static const char *literal_string(tp *p, const char *c, const char **out, size_t *len) {
  const char *open = c - 1, *start = c;
  for (;;) {
    while (!(CL(*c) & C_LIT)) c++;
    unsigned char u = (unsigned char)*c;
    if (u == '\'') break;
    if (u >= 0x80) {
      size_t l = utf8_len(c);
      if (l) {
        c += l;
        continue;
      }
    }
    if (u == '\n' || (u == '\r' && c[1] == '\n') || c == p->end) {
      unterminated(p, c, open, "literal string", "\"'\" before the end of the line (use "
                   "''' for a multi-line string)");
      return NULL;
    }
    bad_char(p, c, "a literal string");
    return NULL;
  }
  *out = start;
  *len = (size_t)(c - start);
  return c + 1;
}

/* A multi-line string, basic (`basic`) or literal; `c` is just after the opening three
 * quotes. CRLF inside becomes LF; one line end right after the opening quotes is
 * dropped; in a basic string a backslash at the end of a line swallows the line end and
 * the blanks and line ends that follow. Up to two quotes may precede the closing three. */
static const char *ml_string(tp *p, const char *c, bool basic, const char **out,
                             size_t *len) {
  const char *open = c - 3;
  char q = basic ? '"' : '\'';
  uint8_t stop = basic ? C_MSTR : C_MLIT;
  const char *what_s = basic ? "a multi-line string" : "a multi-line literal string";
  if (*c == '\n')
    c++;
  else if (*c == '\r' && c[1] == '\n')
    c += 2;
  const char *run = c;
  bool copy = false;
  for (;;) {
    while (!(CL(*c) & stop)) c++;
    unsigned char u = (unsigned char)*c;
    if (u == (unsigned char)q) {
      if (c[1] != q || c[2] != q) {
        c++;
        continue;
      }
      size_t n = 3;
      while (c[n] == q) n++;
      if (n > 5) {
        fail(p, RC_EPARSE, c + 5, "too many quotes: at most two may come before the "
             "closing %c%c%c of %s; escape the others", q, q, q, what_s);
        return NULL;
      }
      if (str_result(p, copy, run, c + (n - 3), out, len)) return NULL;
      return c + n;
    }
    if (u == '\r' && c[1] == '\n') { /* CRLF -> LF */
      if (!copy) {
        rc__buf_reset(&p->sbuf);
        copy = true;
      }
      rc__buf_add(&p->sbuf, run, (size_t)(c - run));
      run = ++c;
      c++;
      continue;
    }
    if (u == '\\') { /* only basic strings stop here */
      if (!copy) {
        rc__buf_reset(&p->sbuf);
        copy = true;
      }
      rc__buf_add(&p->sbuf, run, (size_t)(c - run));
      const char *d = skip_ws(c + 1);
      if (*d == '\n' || (*d == '\r' && d[1] == '\n')) { /* line-ending backslash */
        for (;;) {
          d = skip_ws(d);
          if (*d == '\n')
            d++;
          else if (*d == '\r' && d[1] == '\n')
            d += 2;
          else
            break;
        }
        c = run = d;
        continue;
      }
      if (d != c + 1) {
        fail(p, RC_EPARSE, c, "a '\\' followed by blanks must be the last character on "
             "its line (line-ending backslash)");
        return NULL;
      }
      c = escape(p, c);
      if (!c) return NULL;
      run = c;
      continue;
    }
    if (u >= 0x80) {
      size_t l = utf8_len(c);
      if (l) {
        c += l;
        continue;
      }
    }
    if (c == p->end) {
      char close[16];
      snprintf(close, sizeof close, "%c%c%c", q, q, q);
      unterminated(p, c, open, what_s + 2, close);
      return NULL;
    }
    bad_char(p, c, what_s);
    return NULL;
  }
}

/* ==== keys ==== */

/* One key segment (bare, "basic" or 'literal') at `c`; returns the position after it. */
static const char *key_part(tp *p, const char *c, keyp *k) {
  const char *start = c;
  const char *s;
  size_t n;
  if (CL(*c) & C_BARE) {
    s = c;
    while (CL(*c) & C_BARE) c++;
    n = (size_t)(c - s);
  } else if (*c == '"' || *c == '\'') {
    if (c[1] == *c && c[2] == *c) {
      fail(p, RC_EPARSE, c, "a multi-line string cannot be a key");
      return NULL;
    }
    c = *c == '"' ? basic_string(p, c + 1, &s, &n) : literal_string(p, c + 1, &s, &n);
    if (!c) return NULL;
    if (s == p->sbuf.p) { /* decoded: the scratch buffer is reused, keep a copy */
      char *d = n ? key_store(p, s, n) : (char *)"";
      if (!d) return oom(p), NULL;
      s = d;
    }
  } else {
    char wb[64];
    if (*c == '=')
      fail(p, RC_EPARSE, c, "missing key before '='");
    else if ((unsigned char)*c >= 0x80 && utf8_len(c))
      fail(p, RC_EPARSE, c, "expected a key, found %s: bare keys may contain only A-Z, "
           "a-z, 0-9, '_' and '-'; put other keys in quotes", what(p, c, wb));
    else
      fail(p, RC_EPARSE, c, "expected a key, found %s", what(p, c, wb));
    return NULL;
  }
  if (n > p->lim->max_string) {
    fail(p, RC_ELIMIT, start, "key is %zu bytes, more than the limit of %zu bytes", n,
         p->lim->max_string);
    return NULL;
  }
  k->s = s;
  k->len = (uint32_t)n;
  k->hash = key_hash(p, s, n);
  return c;
}

/* The key ended at `kend` (after blanks, `c`) where '=' or '.' (or in a header ']') was
 * due: a message for what came instead. */
static int bad_after_key(tp *p, const char *k0, const char *kend, const char *c,
                         const char *expected) {
  char wb[64];
  if (c == kend && kend > k0 && (CL(kend[-1]) & C_BARE) && *c != '\n' && *c != '\r' &&
      c != p->end && *c != '#')
    return fail(p, RC_EPARSE, c, "invalid character %s in key '%.*s': bare keys may contain "
                "only A-Z, a-z, 0-9, '_' and '-'; put other keys in quotes", what(p, c, wb),
                SHOW(k0, kend));
  if (*c == '\n' || (*c == '\r' && c[1] == '\n') || c == p->end || *c == '#')
    return fail(p, RC_EPARSE, c, "expected %s after key '%.*s'", expected, SHOW(k0, kend));
  return fail(p, RC_EPARSE, c, "expected %s after key '%.*s', found %s", expected,
              SHOW(k0, kend), what(p, c, wb));
}

/* What the entry holds, for messages: "an integer", "a table", ... */
static const char *ent_what(const tp *p, const ent *x) {
  if (x->kind == E_TABLE)
    return p->tbls[x->u.t].kind == T_DOTTED ? "a table (defined by dotted keys)" : "a table";
  if (x->kind == E_AOT) return "an array of tables";
  switch (rc_value_type(x->u.v)) {
  case RC_TYPE_STRING: return "a string";
  case RC_TYPE_INT: return "an integer";
  case RC_TYPE_FLOAT: return "a float";
  case RC_TYPE_BOOL: return "a boolean";
  case RC_TYPE_DATETIME: return "a date-time";
  case RC_TYPE_ARRAY: return "an array";
  case RC_TYPE_OBJECT: return "an inline table";
  default: return "a value";
  }
}

/* ==== key/value pairs ==== */

/* In table `t`, the table `k` that a dotted key goes through: created when absent
 * (rules at the top). `ps` is where the segment was written, k0..kend the key so far. */
static uint32_t dotted(tp *p, uint32_t t, const keyp *k, const char *ps, const char *k0,
                       const char *kend) {
  uint32_t e = lookup(p, t, k);
  if (e == NONE) {
    uint32_t d = p->tbls[t].depth + 1;
    if (d >= p->lim->max_depth) return too_deep(p, ps), NONE;
    if (node(p, ps)) return NONE;
    uint32_t nt = new_tbl(p, T_DOTTED, d);
    if (nt == NONE) return NONE;
    e = add_ent(p, t, k, E_TABLE);
    if (e == NONE) return NONE;
    p->ents[e].u.t = nt;
    return nt;
  }
  const ent *x = &p->ents[e];
  if (x->kind == E_TABLE) {
    tbl *tb = &p->tbls[x->u.t];
    if (tb->kind == T_IMPLICIT) {
      tb->kind = T_DOTTED;
      tb->section = p->section;
      return x->u.t;
    }
    if (tb->kind == T_DOTTED && tb->section == p->section) return x->u.t;
    if (tb->kind == T_HEADER)
      fail(p, RC_EPARSE, ps, "cannot add to table '%.*s' with a dotted key: it is defined "
           "by a [table] header, so keys for it belong under that header", SHOW(k0, kend));
    else
      fail(p, RC_EPARSE, ps, "cannot add to table '%.*s' with a dotted key: it was "
           "defined by dotted keys in another table section", SHOW(k0, kend));
    return NONE;
  }
  if (x->kind == E_AOT)
    fail(p, RC_EPARSE, ps, "cannot add to '%.*s' with a dotted key: it is an array of "
         "tables", SHOW(k0, kend));
  else if (rc_value_type(x->u.v) == RC_TYPE_OBJECT)
    fail(p, RC_EPARSE, ps, "cannot add to '%.*s': it is an inline table, and inline "
         "tables cannot be extended", SHOW(k0, kend));
  else
    fail(p, RC_EPARSE, ps, "cannot use '%.*s' as a table: it is already %s",
         SHOW(k0, kend), ent_what(p, x));
  return NONE;
}

static const char *value(tp *p, const char *c, uint32_t depth, rc_value_t **out);

/* key = value, into table `t`. Returns the position after the value. */
static const char *keyval(tp *p, const char *c, uint32_t t) {
  const char *k0 = c, *kend, *ps;
  keyp k;
  for (;;) {
    ps = c;
    c = key_part(p, c, &k);
    if (!c) return NULL;
    kend = c;
    c = skip_ws(c);
    if (*c != '.') break;
    t = dotted(p, t, &k, ps, k0, kend);
    if (t == NONE) return NULL;
    c = skip_ws(c + 1);
  }
  if (*c != '=') return bad_after_key(p, k0, kend, c, "'='"), NULL;
  uint32_t e = lookup(p, t, &k);
  if (e != NONE) {
    const ent *x = &p->ents[e];
    if (x->kind == E_VALUE && rc_value_type(x->u.v) != RC_TYPE_OBJECT)
      fail(p, RC_EPARSE, ps, "duplicate key '%.*s': it is already defined",
           SHOW(k0, kend));
    else
      fail(p, RC_EPARSE, ps, "duplicate key '%.*s': it is already defined as %s",
           SHOW(k0, kend), ent_what(p, x));
    return NULL;
  }
  c = skip_ws(c + 1);
  if (CL(*c) & C_END) {
    char wb[64];
    fail(p, RC_EPARSE, c, "expected a value after '=' for key '%.*s', found %s",
         SHOW(k0, kend), what(p, c, wb));
    return NULL;
  }
  rc_value_t *v;
  c = value(p, c, p->tbls[t].depth + 1, &v);
  if (!c) return NULL;
  e = add_ent(p, t, &k, E_VALUE);
  if (e == NONE) {
    rc__value_unref(v);
    return NULL;
  }
  p->ents[e].u.v = v;
  return c;
}

/* ==== values ==== */

static const char *new_scalar(tp *p, const char *at, const char *c, rc_value_t *v,
                              rc_value_t **out) {
  if (node(p, at)) {
    rc__value_unref(v);
    return NULL;
  }
  if (!v) return oom(p), NULL;
  *out = v;
  return c;
}

/* A bare token that is not a valid value: name it. */
static const char *bad_value(tp *p, const char *c, const char *why) {
  const char *e = c;
  while (!(CL(*e) & C_END) && e - c < 60) e++;
  if (e == c) e++;
  fail(p, RC_EPARSE, c, "invalid value '%.*s': %s", SHOW(c, e), why);
  return NULL;
}

static const char *string_value(tp *p, const char *at, const char *c, const char *s,
                                size_t n, rc_value_t **out) {
  if (n > p->lim->max_string) {
    fail(p, RC_ELIMIT, at, "string is %zu bytes, more than the limit of %zu bytes", n,
         p->lim->max_string);
    return NULL;
  }
  return new_scalar(p, at, c, rc__value_string(s, n), out);
}


static const double pow10tab[23] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                    1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                    1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

/* The float written from `s` to `e` (already validated), underscores dropped. */
static int slow_float(tp *p, const char *s, const char *e, double *out) {
  rc__buf_reset(&p->sbuf);
  for (const char *c = s; c < e; c++)
    if (*c != '_') rc__buf_addc(&p->sbuf, *c);
  if (p->sbuf.oom) return oom(p);
  *out = rc__strtod_c(p->sbuf.p, NULL);
  return 0;
}

static int digit_in(char c, int base) {
  int v = hexval(c);
  return v >= 0 && v < base ? v : -1;
}

/* 0x, 0o, 0b integers; `c` is at the '0'. */
static const char *radix_int(tp *p, const char *c, rc_value_t **out) {
  const char *start = c;
  int shift = c[1] == 'x' ? 4 : c[1] == 'o' ? 3 : 1, base = 1 << shift;
  const char *name = shift == 4 ? "hexadecimal" : shift == 3 ? "octal" : "binary";
  c += 2;
  if (digit_in(*c, base) < 0) {
    char wb[64];
    fail(p, RC_EPARSE, c, "expected %s %s digit after '%.2s', found %s",
         shift == 3 ? "an" : "a", name, start, what(p, c, wb));
    return NULL;
  }
  uint64_t m = 0;
  for (;; c++) {
    int d = digit_in(*c, base);
    if (d >= 0) {
      if (m > ((uint64_t)INT64_MAX >> shift)) {
        const char *e = c;
        while (!(CL(*e) & C_END)) e++;
        fail(p, RC_EPARSE, start, "integer %.*s does not fit in 64 bits (the largest is "
             "9223372036854775807)", SHOW(start, e));
        return NULL;
      }
      m = m << shift | (uint64_t)d;
    } else if (*c == '_') {
      if (digit_in(c[1], base) < 0) {
        fail(p, RC_EPARSE, c, "'_' in a number must be between two digits");
        return NULL;
      }
    } else {
      break;
    }
  }
  if (!(CL(*c) & C_END)) {
    char wb[64];
    fail(p, RC_EPARSE, c, "%s %s integer cannot contain %s", shift == 3 ? "an" : "a", name,
         what(p, c, wb));
    return NULL;
  }
  return new_scalar(p, start, c, rc__value_int((int64_t)m), out);
}

/* Integers and floats (not date-times); `c` is at a sign, a digit, 'i' or 'n'. */
static const char *number(tp *p, const char *c, rc_value_t **out) {
  const char *start = c;
  bool neg = false, sign = false;
  if (*c == '+' || *c == '-') {
    sign = true;
    neg = *c == '-';
    c++;
  }
  if ((c[0] == 'i' && c[1] == 'n' && c[2] == 'f') ||
      (c[0] == 'n' && c[1] == 'a' && c[2] == 'n')) {
    double f = c[0] == 'i' ? INFINITY : NAN;
    c += 3;
    if (!(CL(*c) & C_END)) return bad_value(p, start, "expected a number");
    return new_scalar(p, start, c, rc__value_float(neg ? -f : f), out);
  }
  if (c[0] == '0' && (c[1] == 'x' || c[1] == 'o' || c[1] == 'b')) {
    if (sign) {
      fail(p, RC_EPARSE, start, "hexadecimal, octal and binary integers cannot have a sign");
      return NULL;
    }
    return radix_int(p, c, out);
  }
  if (!dig(*c))
    return bad_value(p, start, "expected a string in quotes, a number, true, false, a "
                     "date-time, an array or an inline table");
  if (c[0] == '0' && (dig(c[1]) || c[1] == '_')) {
    fail(p, RC_EPARSE, start, "leading zeros are not allowed in decimal numbers");
    return NULL;
  }
  uint64_t m = 0;
  bool big = false; /* m no longer holds every significant digit */
  long long exp10 = 0;
  for (;; c++) {
    if (dig(*c)) {
      unsigned d = (unsigned)(*c - '0');
      if (m > (UINT64_MAX - d) / 10)
        big = true;
      else
        m = m * 10 + d;
    } else if (*c == '_') {
      if (!dig(c[1])) {
        fail(p, RC_EPARSE, c, "'_' in a number must be between two digits");
        return NULL;
      }
    } else {
      break;
    }
  }
  bool isfloat = false;
  if (*c == '.') {
    isfloat = true;
    c++;
    if (!dig(*c)) {
      fail(p, RC_EPARSE, c, "a decimal point must be followed by a digit");
      return NULL;
    }
    for (;; c++) {
      if (dig(*c)) {
        unsigned d = (unsigned)(*c - '0');
        if (big || m > (UINT64_MAX - d) / 10) {
          big = true;
        } else {
          m = m * 10 + d;
          exp10--;
        }
      } else if (*c == '_') {
        if (!dig(c[1])) {
          fail(p, RC_EPARSE, c, "'_' in a number must be between two digits");
          return NULL;
        }
      } else {
        break;
      }
    }
  }
  if (*c == 'e' || *c == 'E') {
    isfloat = true;
    c++;
    bool eneg = *c == '-';
    if (*c == '+' || *c == '-') c++;
    if (!dig(*c)) {
      fail(p, RC_EPARSE, c, "an exponent must have digits");
      return NULL;
    }
    int x = 0;
    for (;; c++) {
      if (dig(*c)) {
        if (x < 100000) x = x * 10 + (*c - '0');
      } else if (*c == '_') {
        if (!dig(c[1])) {
          fail(p, RC_EPARSE, c, "'_' in a number must be between two digits");
          return NULL;
        }
      } else {
        break;
      }
    }
    exp10 += eneg ? -x : x;
  }
  if (!(CL(*c) & C_END)) {
    char wb[64];
    bool digits_only = !sign && !isfloat;
    for (const char *d = start; d < c && digits_only; d++) digits_only = dig(*d);
    if (digits_only && *c == '-')
      fail(p, RC_EPARSE, start, "invalid date: the year must have four digits (YYYY-MM-DD)");
    else if (digits_only && *c == ':')
      fail(p, RC_EPARSE, start, "invalid time: the hour must have two digits (HH:MM:SS)");
    else
      fail(p, RC_EPARSE, c, "a number cannot contain %s", what(p, c, wb));
    return NULL;
  }
  if (!isfloat) {
    if (big || m > (uint64_t)INT64_MAX + (neg ? 1u : 0u)) {
      fail(p, RC_EPARSE, start, "integer %.*s does not fit in 64 bits (the range is "
           "-9223372036854775808 to 9223372036854775807)", SHOW(start, c));
      return NULL;
    }
    int64_t i = neg ? (int64_t)(0 - m) : (int64_t)m;
    return new_scalar(p, start, c, rc__value_int(i), out);
  }
  double f = 0;
  /* Exact: a mantissa below 2^53 and a power of ten up to 1e22 are both doubles, so one
   * IEEE multiplication or division rounds correctly (Clinger's fast path). */
  if (!big && m <= (1ull << 53) && exp10 >= -22 && exp10 <= 22) {
    f = (double)m;
    f = exp10 < 0 ? f / pow10tab[-exp10] : f * pow10tab[exp10];
    if (neg) f = -f;
  } else if (slow_float(p, start, c, &f)) {
    return NULL;
  }
  return new_scalar(p, start, c, rc__value_float(f), out);
}

static int two(const char *c) {
  return dig(c[0]) && dig(c[1]) ? (c[0] - '0') * 10 + (c[1] - '0') : -1;
}

static int days_in(int year, int month) {
  static const int d[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (month == 2 && (year % 4 == 0 && (year % 100 != 0 || year % 400 == 0))) return 29;
  return d[month - 1];
}

/* HH:MM:SS[.fraction] at `c`. */
static const char *time_part(tp *p, const char *c, rc_datetime_t *dt) {
  int h = two(c), mi = h >= 0 && c[2] == ':' ? two(c + 3) : -1;
  int s = mi >= 0 && c[5] == ':' ? two(c + 6) : -1;
  if (s < 0) {
    fail(p, RC_EPARSE, c, "expected a time as HH:MM:SS (two digits each; seconds are "
         "required)");
    return NULL;
  }
  if (h > 23) return fail(p, RC_EPARSE, c, "hour %02d is out of range (00 to 23)", h), NULL;
  if (mi > 59)
    return fail(p, RC_EPARSE, c + 3, "minute %02d is out of range (00 to 59)", mi), NULL;
  if (s > 60)
    return fail(p, RC_EPARSE, c + 6, "second %02d is out of range (00 to 60)", s), NULL;
  dt->hour = h;
  dt->minute = mi;
  dt->second = s;
  c += 8;
  if (*c == '.') {
    c++;
    if (!dig(*c)) {
      fail(p, RC_EPARSE, c, "expected digits after the decimal point of the seconds");
      return NULL;
    }
    int ns = 0, n = 0;
    for (; dig(*c); c++) /* digits past nanoseconds are truncated, as TOML asks */
      if (n < 9) {
        ns = ns * 10 + (*c - '0');
        n++;
      }
    dt->precision = n;
    for (; n < 9; n++) ns *= 10;
    dt->nanosecond = ns;
  }
  return c;
}

/* A date-time, local date or local time; `c` is at "DDDD-" or "DD:". */
static const char *datetime(tp *p, const char *c, rc_value_t **out) {
  const char *start = c;
  rc_datetime_t dt;
  memset(&dt, 0, sizeof dt);
  if (c[2] == ':') {
    dt.kind = RC_TIME_LOCAL;
    c = time_part(p, c, &dt);
    if (!c) return NULL;
  } else {
    int y = (c[0] - '0') * 1000 + (c[1] - '0') * 100 + (c[2] - '0') * 10 + (c[3] - '0');
    int mo = two(c + 5), d = mo >= 0 && c[7] == '-' ? two(c + 8) : -1;
    if (d < 0) {
      fail(p, RC_EPARSE, c, "expected a date as YYYY-MM-DD (two digits for the month and "
           "the day)");
      return NULL;
    }
    if (mo < 1 || mo > 12)
      return fail(p, RC_EPARSE, c + 5, "month %02d is out of range (01 to 12)", mo), NULL;
    if (d < 1 || d > days_in(y, mo)) {
      fail(p, RC_EPARSE, c + 8, "day %02d is out of range: %04d-%02d has %d days", d, y, mo,
           days_in(y, mo));
      return NULL;
    }
    dt.kind = RC_DATE_LOCAL;
    dt.year = y;
    dt.month = mo;
    dt.day = d;
    c += 10;
    if (*c == 'T' || *c == 't' || (*c == ' ' && dig(c[1]) && dig(c[2]) && c[3] == ':')) {
      c = time_part(p, c + 1, &dt);
      if (!c) return NULL;
      dt.kind = RC_DATETIME_LOCAL;
      if (*c == 'Z' || *c == 'z') {
        dt.kind = RC_DATETIME_OFFSET;
        dt.offset_z = true;
        c++;
      } else if (*c == '+' || *c == '-') {
        int oh = two(c + 1), om = oh >= 0 && c[3] == ':' ? two(c + 4) : -1;
        if (om < 0) {
          fail(p, RC_EPARSE, c, "expected a UTC offset as +HH:MM or -HH:MM");
          return NULL;
        }
        if (oh > 23 || om > 59) {
          fail(p, RC_EPARSE, c, "UTC offset %.6s is out of range (hours 00 to 23, minutes "
               "00 to 59)", c);
          return NULL;
        }
        dt.kind = RC_DATETIME_OFFSET;
        dt.offset_minutes = (oh * 60 + om) * (*c == '-' ? -1 : 1);
        c += 6;
      }
    }
  }
  if (!(CL(*c) & C_END)) {
    char wb[64];
    fail(p, RC_EPARSE, c, "expected the end of the %s '%.*s', found %s",
         dt.kind == RC_DATE_LOCAL ? "date" : dt.kind == RC_TIME_LOCAL ? "time" : "date-time",
         SHOW(start, c), what(p, c, wb));
    return NULL;
  }
  return new_scalar(p, start, c, rc__value_datetime(&dt), out);
}

/* [ values ], elements separated by commas with blanks, line ends and comments around
 * them and an optional trailing comma; `c` is at '['. */
static const char *array(tp *p, const char *c, uint32_t depth, rc_value_t **out) {
  const char *open = c;
  if (depth >= p->lim->max_depth) return too_deep(p, c), NULL;
  if (node(p, c)) return NULL;
  rc__array_builder b;
  rc__array_begin(&b);
  c++;
  for (;;) {
    c = skip_all(p, c);
    if (!c) goto fail;
    if (*c == ']') break;
    rc_value_t *v;
    c = value(p, c, depth + 1, &v);
    if (!c) goto fail;
    rc__array_push(&b, v);
    if (b.oom) {
      oom(p);
      goto fail;
    }
    c = skip_all(p, c);
    if (!c) goto fail;
    if (*c == ',') {
      c++;
      continue;
    }
    if (*c == ']') break;
    if (c == p->end) {
      unterminated(p, c, open, "array", "']'");
    } else {
      char wb[64];
      fail(p, RC_EPARSE, c, "expected ',' or ']' after an array element, found %s",
           what(p, c, wb));
    }
    goto fail;
  }
  *out = rc__array_end(&b);
  if (!*out) return oom(p), NULL;
  return c + 1;
fail:
  rc__array_abort(&b);
  return NULL;
}

/* { key = value, ... } on one line, no trailing comma; `c` is at '{'. */
static const char *inline_table(tp *p, const char *c, uint32_t depth, rc_value_t **out) {
  const char *open = c;
  if (depth >= p->lim->max_depth) return too_deep(p, c), NULL;
  if (node(p, c)) return NULL;
  uint32_t nents = p->nents, ntbls = p->ntbls, nlog = p->nlog, saved = p->section;
  p->section = ++p->nsections; /* its dotted keys form a section of their own */
  uint32_t t = new_tbl(p, T_INLINE, depth);
  if (t == NONE) goto fail;
  c = skip_ws(c + 1);
  if (*c != '}') {
    for (;;) {
      if (*c == '\n' || *c == '\r' || *c == '#') {
        fail(p, RC_EPARSE, c, "an inline table must be on one line: expected a key or '}' "
             "before %s", *c == '#' ? "a comment" : "the end of the line");
        goto fail;
      }
      c = keyval(p, c, t);
      if (!c) goto fail;
      c = skip_ws(c);
      if (*c == ',') {
        c = skip_ws(c + 1);
        if (*c == '}') {
          fail(p, RC_EPARSE, c, "an inline table cannot end with ',' (no trailing comma)");
          goto fail;
        }
        continue;
      }
      if (*c == '}') break;
      if (c == p->end) {
        unterminated(p, c, open, "inline table", "'}'");
      } else if (*c == '\n' || *c == '\r' || *c == '#') {
        fail(p, RC_EPARSE, c, "an inline table must be on one line: expected ',' or '}' "
             "before %s", *c == '#' ? "a comment" : "the end of the line");
      } else {
        char wb[64];
        fail(p, RC_EPARSE, c, "expected ',' or '}' after a value in an inline table, "
             "found %s", what(p, c, wb));
      }
      goto fail;
    }
  }
  rc_value_t *v = convert(p, t);
  if (!v) {
    oom(p);
    goto fail;
  }
  /* Every value of its entries has been moved into `v`: drop its records. */
  map_truncate(p, nlog);
  p->nents = nents;
  p->ntbls = ntbls;
  p->section = saved;
  *out = v;
  return c + 1;
fail:
  p->section = saved;
  return NULL;
}

/* Any value at `c` (not at a line end: callers check); `depth` is the nesting level an
 * array or inline table here would have. Stores a new value in *out. */
static const char *value(tp *p, const char *c, uint32_t depth, rc_value_t **out) {
  const char *s;
  size_t n;
  const char *at = c;
  switch (*c) {
  case '"':
    if (c[1] == '"' && c[2] == '"')
      c = ml_string(p, c + 3, true, &s, &n);
    else
      c = basic_string(p, c + 1, &s, &n);
    if (!c) return NULL;
    return string_value(p, at, c, s, n, out);
  case '\'':
    if (c[1] == '\'' && c[2] == '\'')
      c = ml_string(p, c + 3, false, &s, &n);
    else
      c = literal_string(p, c + 1, &s, &n);
    if (!c) return NULL;
    return string_value(p, at, c, s, n, out);
  case 't':
    if (memcmp(c, "true", 4) == 0 && (CL(c[4]) & C_END))
      return new_scalar(p, at, c + 4, rc__value_bool(true), out);
    return bad_value(p, c, "booleans are written true and false (lowercase), strings in "
                     "quotes");
  case 'f':
    if (memcmp(c, "false", 5) == 0 && (CL(c[5]) & C_END))
      return new_scalar(p, at, c + 5, rc__value_bool(false), out);
    return bad_value(p, c, "booleans are written true and false (lowercase), strings in "
                     "quotes");
  case '[': return array(p, c, depth, out);
  case '{': return inline_table(p, c, depth, out);
  case '0': case '1': case '2': case '3': case '4':
  case '5': case '6': case '7': case '8': case '9':
    if (dig(c[1]) && (c[2] == ':' || (dig(c[2]) && dig(c[3]) && c[4] == '-')))
      return datetime(p, c, out);
    return number(p, c, out);
  case '+': case '-': case 'i': case 'n': return number(p, c, out);
  default:
    if (CL(*c) & C_END) {
      char wb[64];
      fail(p, RC_EPARSE, c, "expected a value, found %s", what(p, c, wb));
      return NULL;
    }
    if ((unsigned char)*c >= 0x80 || (unsigned char)*c < 0x20 || *c == 0x7F) {
      char wb[64];
      fail(p, RC_EPARSE, c, "expected a value, found %s", what(p, c, wb));
      return NULL;
    }
    return bad_value(p, c, "expected a string in quotes, a number, true, false, a "
                     "date-time, an array or an inline table");
  }
}

/* ==== table headers ==== */

/* One step along a header's path [a.b.c] (not the last segment). */
static uint32_t header_step(tp *p, uint32_t t, const keyp *k, const char *ps,
                            const char *k0, const char *kend) {
  uint32_t e = lookup(p, t, k);
  if (e == NONE) {
    uint32_t d = p->tbls[t].depth + 1;
    if (d >= p->lim->max_depth) return too_deep(p, ps), NONE;
    if (node(p, ps)) return NONE;
    uint32_t nt = new_tbl(p, T_IMPLICIT, d);
    if (nt == NONE) return NONE;
    e = add_ent(p, t, k, E_TABLE);
    if (e == NONE) return NONE;
    p->ents[e].u.t = nt;
    return nt;
  }
  const ent *x = &p->ents[e];
  if (x->kind == E_TABLE) return x->u.t;
  if (x->kind == E_AOT) return x->u.aot.last; /* the most recent element */
  if (rc_value_type(x->u.v) == RC_TYPE_OBJECT)
    fail(p, RC_EPARSE, ps, "cannot add to '%.*s': it is an inline table, and inline tables "
         "cannot be extended", SHOW(k0, kend));
  else
    fail(p, RC_EPARSE, ps, "cannot use '%.*s' as a table: it is already %s",
         SHOW(k0, kend), ent_what(p, x));
  return NONE;
}

/* The last segment of [a.b.c]: defines the table. */
static uint32_t header_table(tp *p, uint32_t t, const keyp *k, const char *ps,
                             const char *k0, const char *kend) {
  uint32_t e = lookup(p, t, k);
  if (e == NONE) {
    uint32_t d = p->tbls[t].depth + 1;
    if (d >= p->lim->max_depth) return too_deep(p, ps), NONE;
    if (node(p, ps)) return NONE;
    uint32_t nt = new_tbl(p, T_HEADER, d);
    if (nt == NONE) return NONE;
    e = add_ent(p, t, k, E_TABLE);
    if (e == NONE) return NONE;
    p->ents[e].u.t = nt;
    return nt;
  }
  const ent *x = &p->ents[e];
  if (x->kind == E_TABLE) {
    tbl *tb = &p->tbls[x->u.t];
    if (tb->kind == T_IMPLICIT) {
      tb->kind = T_HEADER;
      return x->u.t;
    }
    if (tb->kind == T_HEADER)
      fail(p, RC_EPARSE, ps, "table [%.*s] is defined twice", SHOW(k0, kend));
    else
      fail(p, RC_EPARSE, ps, "table [%.*s] was already defined by dotted keys; a header "
           "cannot define it again", SHOW(k0, kend));
    return NONE;
  }
  if (x->kind == E_AOT)
    fail(p, RC_EPARSE, ps, "'%.*s' is an array of tables: write [[%.*s]] to add an element",
         SHOW(k0, kend), SHOW(k0, kend));
  else
    fail(p, RC_EPARSE, ps, "cannot define table [%.*s]: the key is already %s",
         SHOW(k0, kend), ent_what(p, x));
  return NONE;
}

/* The last segment of [[a.b.c]]: appends an element (a new table) and returns it. */
static uint32_t header_aot(tp *p, uint32_t t, const keyp *k, const char *ps,
                           const char *k0, const char *kend) {
  uint32_t d = p->tbls[t].depth + 2; /* the array, then the element */
  uint32_t e = lookup(p, t, k);
  if (e != NONE && p->ents[e].kind != E_AOT) {
    const ent *x = &p->ents[e];
    if (x->kind == E_VALUE && rc_value_type(x->u.v) == RC_TYPE_ARRAY)
      fail(p, RC_EPARSE, ps, "cannot append to '%.*s' with [[%.*s]]: it is an array "
           "written with '=', and such arrays cannot be extended", SHOW(k0, kend),
           SHOW(k0, kend));
    else
      fail(p, RC_EPARSE, ps, "cannot define array of tables [[%.*s]]: the key is already %s",
           SHOW(k0, kend), ent_what(p, x));
    return NONE;
  }
  if (d >= p->lim->max_depth) return too_deep(p, ps), NONE;
  if (node(p, ps)) return NONE;
  uint32_t nt = new_tbl(p, T_HEADER, d);
  if (nt == NONE) return NONE;
  if (e == NONE) {
    if (node(p, ps)) return NONE; /* the array itself */
    e = add_ent(p, t, k, E_AOT);
    if (e == NONE) return NONE;
    p->ents[e].u.aot.first = p->ents[e].u.aot.last = nt;
  } else {
    p->tbls[p->ents[e].u.aot.last].sib = nt;
    p->ents[e].u.aot.last = nt;
  }
  return nt;
}

/* [a.b] or [[a.b]]; stores the table that following keys go to in *cur. */
static const char *header(tp *p, const char *c, uint32_t *cur) {
  bool aot = c[1] == '[';
  const char *what_s = aot ? "array-of-tables header" : "table header";
  c = skip_ws(c + (aot ? 2 : 1));
  p->section = ++p->nsections;
  uint32_t t = 0;
  const char *k0 = c;
  for (;;) {
    const char *ps = c;
    keyp k;
    if (*c == ']' && c == k0) {
      fail(p, RC_EPARSE, c, "empty %s: expected a table name", what_s);
      return NULL;
    }
    c = key_part(p, c, &k);
    if (!c) return NULL;
    const char *kend = c;
    c = skip_ws(c);
    if (*c == '.') {
      t = header_step(p, t, &k, ps, k0, kend);
      if (t == NONE) return NULL;
      c = skip_ws(c + 1);
      continue;
    }
    if (*c != ']') return bad_after_key(p, k0, kend, c, aot ? "']]' or '.'" : "']' or '.'"),
                          NULL;
    if (aot && c[1] != ']') {
      char wb[64];
      fail(p, RC_EPARSE, c + 1, "expected ']]' to close the array-of-tables header "
           "[[%.*s]], found %s", SHOW(k0, kend), what(p, c + 1, wb));
      return NULL;
    }
    t = aot ? header_aot(p, t, &k, ps, k0, kend) : header_table(p, t, &k, ps, k0, kend);
    if (t == NONE) return NULL;
    *cur = t;
    return c + (aot ? 2 : 1);
  }
}

/* ==== the document ==== */

/* The whole input: key/value lines, headers, comments and blank lines. */
static int document(tp *p) {
  const char *c = p->s;
  if ((unsigned char)c[0] == 0xEF && (unsigned char)c[1] == 0xBB &&
      (unsigned char)c[2] == 0xBF)
    c += 3; /* a UTF-8 byte order mark */
  uint32_t cur = 0;
  for (;;) {
    c = skip_ws(c);
    if (*c == '\n') {
      c++;
      continue;
    }
    if (*c == '\r' && c[1] == '\n') {
      c += 2;
      continue;
    }
    if (*c == '#') {
      c = comment(p, c);
      if (!c) return p->rc;
      continue;
    }
    if (c == p->end) return 0;
    if (*c == '[') {
      c = header(p, c, &cur);
      if (c) c = line_end(p, c, "a table header");
    } else {
      c = keyval(p, c, cur);
      if (c) c = line_end(p, c, "a value");
    }
    if (!c) return p->rc;
  }
}

static void cleanup(tp *p) {
  for (uint32_t i = 0; i < p->nents; i++)
    if (p->ents[i].kind == E_VALUE) rc__value_unref(p->ents[i].u.v);
  rc__free(p->ents);
  rc__free(p->tbls);
  rc__free(p->map);
  rc__free(p->log);
  while (p->keys) {
    chunk *n = p->keys->next;
    rc__free(p->keys);
    p->keys = n;
  }
  rc__buf_free(&p->sbuf);
}

int rc__parse_toml(const char *data, size_t len, const char *file,
                   const rc__parse_limits *lim, rc_value_t **out, rc_error *err) {
  rc__parse_limits def;
  *out = NULL;
  if (!(lim = rc__parse_limits_for(lim, &def, len, file, err))) return RC_ELIMIT;
  if (len > SIZE_MAX - PAD)
    return rc__err(err, RC_ENOMEM, file, 0, 0, "out of memory reading TOML");
  char *copy = rc__malloc(len + PAD);
  if (!copy) return rc__err(err, RC_ENOMEM, file, 0, 0, "out of memory reading TOML");
  if (len) memcpy(copy, data, len);
  memset(copy + len, 0, PAD);
  tp p;
  memset(&p, 0, sizeof p);
  p.s = copy;
  p.end = copy + len;
  p.file = file;
  p.err = err;
  p.lim = lim;
  /* A per-parse seed keeps crafted key sets from colliding on purpose. */
  p.seed = rc__mono_ns() ^ (uint64_t)(uintptr_t)&p;
  rc__buf_init(&p.sbuf);
  int rc;
  if (lim->max_depth == 0)
    rc = too_deep(&p, copy);
  else if (node(&p, copy))
    rc = p.rc;
  else if (new_tbl(&p, T_HEADER, 0) == NONE)
    rc = p.rc;
  else
    rc = document(&p);
  if (!rc) {
    *out = convert(&p, 0);
    if (!*out) rc = oom(&p);
  }
  cleanup(&p);
  rc__free(copy);
  return rc;
}
