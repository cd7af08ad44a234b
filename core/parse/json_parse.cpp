// SPDX-License-Identifier: MIT (see LICENSE)
/* json_parse.cpp: JSON bytes -> value tree, through simdjson's DOM (one parser per
 * thread, reused) and a walk that builds our nodes. simdjson says what failed but not
 * where, so a failed document is read again by yajl for the position and the sentence.
 * C++17 behind one C-linkage entry point; no exception leaves this file. */
#include <simdjson.h>
#include <yajl/yajl_parse.h>

#include <cerrno>
#include <cmath>
#include <cstdarg>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <stdatomic.h>

/* value.h is C11. Its one construct C++17 lacks is the `_Atomic` qualifier of a node's
 * reference count, which this file never touches (nodes are made and released through
 * value.c); read as a plain uint32_t the layout is the same. */
#define _Atomic
extern "C" {
#include "parse.h"
}
#undef _Atomic

static_assert(RC__PARSE_PADDING == simdjson::SIMDJSON_PADDING,
              "file readers pad for simdjson: keep the two paddings equal");

/* Big integers: simdjson rejects integers beyond 64 bits; yajl reads those documents
 * instead and builds the tree itself (such integers become floats, as in JSON.parse). */

namespace {

/* ==== positions ==== */

int fail_at(rc_error *err, int code, const char *file, const char *s, size_t off,
            const char *fmt, ...) RC__PRINTF(6, 7);
int fail_at(rc_error *err, int code, const char *file, const char *s, size_t off,
            const char *fmt, ...) {
  int line = 0, col = 0;
  if (off != SIZE_MAX) rc__text_position(s, off, &line, &col);
  va_list ap;
  va_start(ap, fmt);
  rc__verr(err, code, file, line, col, fmt, ap);
  va_end(ap);
  return code;
}

bool json_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }
bool structural(char c) {
  return c == '{' || c == '}' || c == '[' || c == ']' || c == ':' || c == ',';
}

/* ==== a small JSON tokenizer, for placing errors only ====
 * Tokens are strings (escapes honoured, maybe unterminated), single structural
 * characters, and runs of anything else (numbers, literals, garbage). */
struct token {
  size_t start, end;
  bool closed; /* strings: the closing quote was found */
};

size_t token_end(const char *s, size_t n, size_t i, bool *closed) {
  *closed = true;
  if (s[i] == '"') {
    for (i++; i < n; i++) {
      if (s[i] == '\\') {
        i++;
      } else if (s[i] == '"') {
        return i + 1;
      }
    }
    *closed = false;
    return n;
  }
  if (structural(s[i])) return i + 1;
  while (i < n && !json_ws(s[i]) && !structural(s[i]) && s[i] != '"') i++;
  return i;
}

/* The token containing byte `off` (or the last one before it), and the one before that.
 * Returns false when there is no token at or before `off`. */
bool token_at(const char *s, size_t n, size_t off, token *tok, token *prev) {
  token cur{0, 0, true}, last{SIZE_MAX, SIZE_MAX, true}, before{SIZE_MAX, SIZE_MAX, true};
  size_t i = 0;
  while (i < n) {
    while (i < n && json_ws(s[i])) i++;
    if (i >= n || i > off) break;
    cur.start = i;
    cur.end = i = token_end(s, n, i, &cur.closed);
    before = last;
    last = cur;
    if (cur.end > off) break;
  }
  if (last.start == SIZE_MAX) return false;
  *tok = last;
  if (prev) *prev = before;
  return true;
}

/* ==== locating limits in text that simdjson or yajl accepted ==== */

enum class goal { depth, string, nodes, surrogate, range };

unsigned hex4(const char *p) {
  unsigned v = 0;
  for (int k = 0; k < 4; k++) {
    char c = p[k];
    v <<= 4;
    if (c >= '0' && c <= '9') v |= static_cast<unsigned>(c - '0');
    else if (c >= 'a' && c <= 'f') v |= static_cast<unsigned>(c - 'a' + 10);
    else if (c >= 'A' && c <= 'F') v |= static_cast<unsigned>(c - 'A' + 10);
    else return 0x110000; /* not hex */
  }
  return v;
}

/* Scans the string token at s[q] (the quote): its decoded length and the offset of the
 * first unpaired surrogate escape (SIZE_MAX if none). Returns the index after it. */
size_t scan_string(const char *s, size_t n, size_t q, size_t *decoded, size_t *bad_sur) {
  size_t len = 0, i = q + 1;
  *bad_sur = SIZE_MAX;
  while (i < n && s[i] != '"') {
    if (s[i] != '\\') {
      len++;
      i++;
      continue;
    }
    if (i + 1 < n && s[i + 1] == 'u' && i + 6 <= n) {
      unsigned u = hex4(s + i + 2);
      if (u >= 0xD800 && u <= 0xDBFF) {
        unsigned lo = i + 12 <= n && s[i + 6] == '\\' && s[i + 7] == 'u' ? hex4(s + i + 8) : 0;
        if (lo >= 0xDC00 && lo <= 0xDFFF) {
          len += 4;
          i += 12;
          continue;
        }
        if (*bad_sur == SIZE_MAX) *bad_sur = i;
      } else if (u >= 0xDC00 && u <= 0xDFFF && *bad_sur == SIZE_MAX) {
        *bad_sur = i;
      }
      len += u < 0x80 ? 1 : u < 0x800 ? 2 : 3;
      i += 6;
      continue;
    }
    len++;
    i += 2;
  }
  *decoded = len;
  return i + 1;
}

/* Parses a JSON number (`len` bytes at `s`) as a double; *overflow when its magnitude is
 * beyond the largest double. Integers that fit 64 bits are handled by the caller. */
double to_double(const char *s, size_t len, bool *overflow);

bool overflows(const char *s, size_t len) {
  bool over = false;
  (void)to_double(s, len, &over);
  return over;
}

/* Offset where the goal's limit is first exceeded, or SIZE_MAX. Node counting matches
 * the tree walk: every value counts, keys do not. */
size_t locate(const char *s, size_t n, goal g, size_t limit) {
  size_t depth = 0, nodes = 0, i = 0;
  while (i < n) {
    char c = s[i];
    /* yajl, which walks a document simdjson refused, also skips \f and \v as white
     * space: a number after them must still be found (fuzz/regressions/json). */
    if (json_ws(c) || c == '\f' || c == '\v' || c == ':' || c == ',') {
      i++;
      continue;
    }
    if (c == '}' || c == ']') {
      if (depth) depth--;
      i++;
      continue;
    }
    if (c == '"') {
      size_t dec, sur;
      size_t end = scan_string(s, n, i, &dec, &sur);
      size_t k = end;
      while (k < n && json_ws(s[k])) k++;
      bool key = k < n && s[k] == ':';
      if (g == goal::string && dec > limit) return i;
      if (g == goal::surrogate && sur != SIZE_MAX) return sur;
      if (g == goal::nodes && !key && ++nodes > limit) return i;
      i = end;
      continue;
    }
    if (g == goal::nodes && ++nodes > limit) return i;
    if (c == '{' || c == '[') {
      if (g == goal::depth && ++depth > limit) return i;
      i++;
      continue;
    }
    bool closed;
    size_t end = token_end(s, n, i, &closed);
    if (g == goal::range && (c == '-' || (c >= '0' && c <= '9')) && overflows(s + i, end - i))
      return i;
    i = end;
  }
  return SIZE_MAX;
}

/* ==== limits shared by both tree builders ==== */

enum class failure { none, oom, depth, string, nodes, range };

int limit_error(failure f, const rc__parse_limits *lim, const char *s, size_t n,
                const char *file, rc_error *err) {
  switch (f) {
  case failure::depth:
    return fail_at(err, RC_ELIMIT, file, s, locate(s, n, goal::depth, lim->max_depth),
                   "nesting deeper than %u levels", static_cast<unsigned>(lim->max_depth));
  case failure::string:
    return fail_at(err, RC_ELIMIT, file, s, locate(s, n, goal::string, lim->max_string),
                   "string longer than the limit of %zu bytes", lim->max_string);
  case failure::nodes:
    return fail_at(err, RC_ELIMIT, file, s, locate(s, n, goal::nodes, lim->max_nodes),
                   "more than %zu values in the document", lim->max_nodes);
  case failure::range: {
    size_t at = locate(s, n, goal::range, 0);
    bool closed;
    size_t end = at == SIZE_MAX ? at : token_end(s, n, at, &closed);
    return fail_at(err, RC_EPARSE, file, s, at,
                   "number out of range: %.*s is beyond the largest double",
                   at == SIZE_MAX ? 0 : static_cast<int>(end - at > 40 ? 40 : end - at),
                   at == SIZE_MAX ? "" : s + at);
  }
  case failure::oom:
  case failure::none:
    break;
  }
  return rc__err(err, RC_ENOMEM, file, 0, 0, "out of memory reading JSON");
}

/* ==== the simdjson path ==== */

/* The tree is built in one arena per document (value.h): each container's block (node,
 * members or items, sorted index, key bytes) is allocated before its children, so the
 * nodes lie in document order and a walk over them streams through memory. */
struct walker {
  const rc__parse_limits *lim;
  rc__arena *arena;
  size_t nodes;   /* values built so far, for max_nodes */
  failure fail;   /* why build() returned NULL */
  void *scratch;  /* rc__object_seal's, 16 bytes a member of the largest object so far */
  size_t scratch_cap;
  const rc_value_t **last; /* per depth: the object finished last there, or NULL */
  size_t last_cap;
};

/* Remembers `v` as the object finished last at `depth`. */
bool remember(walker &w, const rc_value_t *v, uint32_t depth) {
  if (depth >= w.last_cap) {
    size_t cap = w.last_cap ? w.last_cap * 2 : 16;
    while (cap <= depth) cap *= 2;
    auto *l = static_cast<const rc_value_t **>(rc__realloc(w.last, cap * sizeof *w.last));
    if (!l) return false;
    for (size_t i = w.last_cap; i < cap; i++) l[i] = nullptr;
    w.last = l;
    w.last_cap = cap;
  }
  w.last[depth] = v;
  return true;
}

/* simdjson's size() saturates at 0xFFFFFF elements; count the rest by walking. */
template <typename C> size_t count(const C &c) {
  size_t n = c.size();
  if (n < 0xFFFFFF) return n;
  n = 0;
  for (auto it = c.begin(); it != c.end(); ++it) n++;
  return n;
}

bool reserve_scratch(walker &w, size_t n) {
  if (n <= w.scratch_cap) return true;
  size_t cap = n < 64 ? 64 : n;
  void *p = rc__realloc(w.scratch, cap * 16);
  if (!p) return false;
  w.scratch = p;
  w.scratch_cap = cap;
  return true;
}

rc_value_t *build(const simdjson::dom::element &e, walker &w, uint32_t depth);

/* Arrays of records repeat one set of keys, and between two records only deeper objects
 * are finished. So when the object finished last at the same depth has exactly the same
 * keys in the same order (hence no duplicates), an object points at that object's key
 * bytes and copies its sorted index instead of storing and sorting its own: less to
 * write now and less memory for the diff to read. */
rc_value_t *build_object(const simdjson::dom::object &obj, walker &w, uint32_t depth) {
  const rc_value_t *prev = depth < w.last_cap ? w.last[depth] : nullptr;
  const rc__member *pm = prev ? prev->u.members : nullptr;
  bool same = prev != nullptr;
  /* first the size of the block: members and key bytes */
  size_t n = 0, keybytes = 0;
  for (simdjson::dom::key_value_pair kv : obj) {
    size_t klen = kv.key.size();
    same = same && n < prev->len && pm[n].klen == klen &&
           memcmp(pm[n].key, kv.key.data(), klen) == 0;
    n++;
    keybytes += klen + 1;
  }
  same = same && n == prev->len;
  if (n > UINT32_MAX || (!same && !reserve_scratch(w, n))) {
    w.fail = failure::oom;
    return nullptr;
  }
  size_t size = sizeof(rc_value_t) + n * (sizeof(rc__member) + sizeof(uint32_t)) +
                (same ? 0 : keybytes + RC__TAIL);
  rc_value_t *v = rc__arena_value(w.arena, size, RC_TYPE_OBJECT, static_cast<uint32_t>(n));
  if (!v) {
    w.fail = failure::oom;
    return nullptr;
  }
  auto *m = reinterpret_cast<rc__member *>(v + 1);
  v->u.members = m;
  char *keys = reinterpret_cast<char *>(rc__sorted(v) + n);
  size_t i = 0;
  for (simdjson::dom::key_value_pair kv : obj) {
    size_t klen = kv.key.size();
    if (klen > w.lim->max_string) {
      w.fail = failure::string;
      return nullptr;
    }
    if (same) {
      m[i].key = pm[i].key;
    } else {
      memcpy(keys, kv.key.data(), klen); /* keys may hold NUL: the length is the truth */
      keys[klen] = '\0';
      m[i].key = keys;
      keys += klen + 1;
    }
    m[i].klen = static_cast<uint32_t>(klen);
    m[i].val = build(kv.value, w, depth + 1);
    if (!m[i].val) return nullptr;
    i++;
  }
  if (same) {
    memcpy(rc__sorted(v), rc__sorted(prev), n * sizeof(uint32_t));
  } else {
    memset(keys, 0, RC__TAIL);
    rc__object_seal(v, w.scratch);
  }
  if (!remember(w, v, depth)) {
    w.fail = failure::oom;
    return nullptr;
  }
  return v;
}

rc_value_t *build_array(const simdjson::dom::array &arr, walker &w, uint32_t depth) {
  size_t n = count(arr);
  if (n > UINT32_MAX) {
    w.fail = failure::oom;
    return nullptr;
  }
  rc_value_t *v = rc__arena_value(w.arena, sizeof(rc_value_t) + n * sizeof(rc_value_t *),
                                  RC_TYPE_ARRAY, static_cast<uint32_t>(n));
  if (!v) {
    w.fail = failure::oom;
    return nullptr;
  }
  auto **items = reinterpret_cast<rc_value_t **>(v + 1);
  v->u.items = items;
  size_t i = 0;
  for (simdjson::dom::element item : arr) {
    items[i] = build(item, w, depth + 1);
    if (!items[i]) return nullptr;
    i++;
  }
  return v;
}

/* Builds the value of `e`, a container at nesting `depth` (0 for the root) or a scalar,
 * in w.arena. Returns NULL with w.fail set on a limit or out of memory; the caller then
 * discards the arena. */
rc_value_t *build(const simdjson::dom::element &e, walker &w, uint32_t depth) {
  using simdjson::dom::element_type;
  if (++w.nodes > w.lim->max_nodes) {
    w.fail = failure::nodes;
    return nullptr;
  }
  rc_value_t *v = nullptr;
  switch (e.type()) {
  case element_type::OBJECT:
    if (depth >= w.lim->max_depth) {
      w.fail = failure::depth;
      return nullptr;
    }
    return build_object(e.get_object().value_unsafe(), w, depth); /* type checked above */
  case element_type::ARRAY:
    if (depth >= w.lim->max_depth) {
      w.fail = failure::depth;
      return nullptr;
    }
    return build_array(e.get_array().value_unsafe(), w, depth);
  case element_type::STRING: {
    std::string_view sv = e.get_string().value_unsafe();
    if (sv.size() > w.lim->max_string) {
      w.fail = failure::string;
      return nullptr;
    }
    if (sv.size() > UINT32_MAX - 1) break;
    v = rc__arena_value(w.arena, sizeof(rc_value_t) + sv.size() + RC__TAIL, RC_TYPE_STRING,
                        static_cast<uint32_t>(sv.size()));
    if (!v) break;
    v->u.s = reinterpret_cast<char *>(v + 1);
    memcpy(v->u.s, sv.data(), sv.size());
    memset(v->u.s + sv.size(), 0, RC__TAIL); /* the NUL terminator and the tail */
    return v;
  }
  case element_type::INT64:
    v = rc__arena_value(w.arena, sizeof(rc_value_t), RC_TYPE_INT, 0);
    if (v) v->u.i = e.get_int64().value_unsafe();
    break;
  case element_type::UINT64: /* only above INT64_MAX: a float, like any big number */
    v = rc__arena_value(w.arena, sizeof(rc_value_t), RC_TYPE_FLOAT, 0);
    if (v) v->u.f = static_cast<double>(e.get_uint64().value_unsafe());
    break;
  case element_type::DOUBLE:
    v = rc__arena_value(w.arena, sizeof(rc_value_t), RC_TYPE_FLOAT, 0);
    if (v) v->u.f = e.get_double().value_unsafe();
    break;
  case element_type::BOOL:
    return rc__value_bool(e.get_bool().value_unsafe());
  case element_type::NULL_VALUE:
    return rc__value_null();
  }
  if (!v) w.fail = failure::oom;
  return v;
}

/* Builds the document at `root` into a new arena: *out the root (which then holds the
 * arena's one reference), or NULL with the failure. */
failure build_document(const simdjson::dom::element &root, const rc__parse_limits *lim,
                       size_t len, rc_value_t **out) {
  /* nodes take about 1.5x the text of an indented document; chunks double after that */
  walker w{lim, rc__arena_new(len + len / 2), 0, failure::none, nullptr, 0, nullptr, 0};
  if (!w.arena) return failure::oom;
  rc_value_t *v = build(root, w, 0);
  rc__free(w.scratch);
  rc__free(w.last);
  /* a failure, or a root that is a constant: nothing of the arena is referenced */
  if (!v || v->refs != RC__ARENA) rc__arena_discard(w.arena);
  *out = v;
  return v ? failure::none : w.fail;
}

/* A thread's parser keeps its buffers between documents (most files are re-read many
 * times); after a document above this size they are given back instead. */
constexpr size_t kKeepCapacity = size_t(64) << 20;

simdjson::dom::parser &thread_parser() {
  static thread_local simdjson::dom::parser parser;
  return parser;
}

/* ==== the yajl path: placing errors, and numbers simdjson cannot hold ==== */

/* strtod in the "C" locale (an application may have set a decimal comma); NaN if the
 * copy of a long number could not be allocated. */
double to_double(const char *s, size_t len, bool *overflow) {
  bool nomem = false;
  double d = rc__strntod_c(s, len, &nomem);
  *overflow = std::isinf(d);
  return d;
}

struct yframe {
  bool object;
  rc__array_builder ab;
  rc__object_builder ob;
  size_t keyoff, keylen; /* pending key in ybuild::keys */
};

struct ybuild {
  const rc__parse_limits *lim;
  yframe *stack;
  size_t n, cap;
  rc__buf keys;
  rc_value_t *root;
  size_t nodes;
  failure fail;
};

int y_stop(ybuild *y, failure f) {
  y->fail = f;
  return 0; /* yajl: cancel the parse */
}

/* Places a finished value into its parent (or makes it the root). */
int y_add(ybuild *y, rc_value_t *v, bool counted) {
  if (!v) return y_stop(y, failure::oom);
  if (!counted && ++y->nodes > y->lim->max_nodes) {
    rc__value_unref(v);
    return y_stop(y, failure::nodes);
  }
  if (y->n == 0) {
    y->root = v;
    return 1;
  }
  yframe *f = &y->stack[y->n - 1];
  if (f->object) {
    rc__object_put(&f->ob, y->keys.p + f->keyoff, f->keylen, v);
    y->keys.n = f->keyoff;
    if (f->ob.oom) return y_stop(y, failure::oom);
  } else {
    rc__array_push(&f->ab, v);
    if (f->ab.oom) return y_stop(y, failure::oom);
  }
  return 1;
}

int y_open(ybuild *y, bool object) {
  if (++y->nodes > y->lim->max_nodes) return y_stop(y, failure::nodes);
  if (y->n >= y->lim->max_depth) return y_stop(y, failure::depth);
  if (y->n == y->cap) {
    size_t cap = y->cap ? y->cap * 2 : 16;
    auto *st = static_cast<yframe *>(rc__realloc(y->stack, cap * sizeof(yframe)));
    if (!st) return y_stop(y, failure::oom);
    y->stack = st;
    y->cap = cap;
  }
  yframe *f = &y->stack[y->n++];
  f->object = object;
  rc__array_begin(&f->ab);
  rc__object_begin(&f->ob);
  f->keyoff = y->keys.n;
  f->keylen = 0;
  return 1;
}

int y_close(ybuild *y) {
  yframe *f = &y->stack[--y->n];
  rc_value_t *v = f->object ? rc__object_end(&f->ob) : rc__array_end(&f->ab);
  return y_add(y, v, true);
}

int y_null(void *ctx) { return y_add(static_cast<ybuild *>(ctx), rc__value_null(), false); }
int y_bool(void *ctx, int b) {
  return y_add(static_cast<ybuild *>(ctx), rc__value_bool(b != 0), false);
}

/* Integers that fit int64 stay integers; anything else (fractions, exponents, integers
 * beyond 64 bits) becomes the nearest double, as JSON.parse would read it. A magnitude
 * beyond the largest double is an error rather than an infinity: infinities cannot be
 * written back as JSON, and simdjson rejects them too. */
int y_number(void *ctx, const char *s, size_t len) {
  auto *y = static_cast<ybuild *>(ctx);
  bool integer = !memchr(s, '.', len) && !memchr(s, 'e', len) && !memchr(s, 'E', len);
  if (integer && len < 21) {
    char buf[24];
    memcpy(buf, s, len);
    buf[len] = '\0';
    errno = 0;
    long long i = strtoll(buf, nullptr, 10);
    if (errno != ERANGE) return y_add(y, rc__value_int(i), false);
  }
  bool over = false;
  double d = to_double(s, len, &over);
  if (over) return y_stop(y, failure::range);
  if (std::isnan(d)) return y_stop(y, failure::oom); /* to_double's allocation failed */
  return y_add(y, rc__value_float(d), false);
}

int y_string(void *ctx, const unsigned char *s, size_t len) {
  auto *y = static_cast<ybuild *>(ctx);
  if (len > y->lim->max_string) return y_stop(y, failure::string);
  return y_add(y, rc__value_string(reinterpret_cast<const char *>(s), len), false);
}

int y_start_map(void *ctx) { return y_open(static_cast<ybuild *>(ctx), true); }
int y_start_array(void *ctx) { return y_open(static_cast<ybuild *>(ctx), false); }
int y_end(void *ctx) { return y_close(static_cast<ybuild *>(ctx)); }

int y_key(void *ctx, const unsigned char *s, size_t len) {
  auto *y = static_cast<ybuild *>(ctx);
  if (len > y->lim->max_string) return y_stop(y, failure::string);
  yframe *f = &y->stack[y->n - 1];
  f->keyoff = y->keys.n;
  f->keylen = len;
  rc__buf_add(&y->keys, s, len);
  return y->keys.oom ? y_stop(y, failure::oom) : 1;
}

const yajl_callbacks ycallbacks = {
  y_null, y_bool, nullptr, nullptr, y_number, y_string,
  y_start_map, y_key, y_end, y_start_array, y_end,
};

void y_discard(ybuild *y) {
  while (y->n) {
    yframe *f = &y->stack[--y->n];
    rc__array_abort(&f->ab);
    rc__object_abort(&f->ob);
  }
  rc__free(y->stack);
  rc__buf_free(&y->keys);
  rc__value_unref(y->root);
  y->root = nullptr;
}

/* First byte at or after `from` that does not start valid UTF-8. */
size_t first_bad_utf8(const char *str, size_t n, size_t from) {
  const auto *s = reinterpret_cast<const unsigned char *>(str);
  size_t i = from;
  while (i < n) {
    unsigned c = s[i];
    size_t l = c < 0x80 ? 1 : c < 0xC2 ? 0 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : c < 0xF5 ? 4 : 0;
    if (!l || i + l > n) return i;
    for (size_t k = 1; k < l; k++)
      if ((s[i + k] & 0xC0) != 0x80) return i;
    if ((c == 0xE0 && s[i + 1] < 0xA0) || (c == 0xED && s[i + 1] >= 0xA0) ||
        (c == 0xF0 && s[i + 1] < 0x90) || (c == 0xF4 && s[i + 1] >= 0x90))
      return i;
    i += l;
  }
  return n;
}

int utf8_char_len(unsigned char c) { return c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4; }

/* The description of the token at `start` for a message: "'}'", "a string", ... */
void describe(const char *s, size_t n, const token &t, char *out, size_t outsz) {
  char c = s[t.start];
  if (c == '"')
    snprintf(out, outsz, "a string");
  else if (structural(c))
    snprintf(out, outsz, "'%c'", c);
  else if (c == '-' || (c >= '0' && c <= '9'))
    snprintf(out, outsz, "a number");
  else if (static_cast<unsigned char>(c) >= 0x80 && first_bad_utf8(s, n, t.start) > t.start)
    snprintf(out, outsz, "'%.*s'", utf8_char_len(static_cast<unsigned char>(c)), s + t.start);
  else if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7F)
    snprintf(out, outsz, "byte 0x%02X", static_cast<unsigned char>(c));
  else
    snprintf(out, outsz, "'%.*s'", static_cast<int>(t.end - t.start > 20 ? 20 : t.end - t.start),
             s + t.start);
}

/* Turns yajl's complaint (`text`, at byte `off`, `complete` if it came from
 * yajl_complete_parse) into a position and a sentence. yajl reports lexical errors where
 * its lexer stopped and grammar errors after the token it could not accept, so each
 * kind is moved back to the byte a person should look at. */
int syntax_error(const char *s, size_t n, const char *text, size_t off, bool complete,
                 const char *file, rc_error *err) {
  token tok{0, 0, true}, prev{SIZE_MAX, SIZE_MAX, true};
  char what[48];
  if (strstr(text, "premature EOF")) {
    if (token_at(s, n, n ? n - 1 : 0, &tok, nullptr) && s[tok.start] == '"' && !tok.closed)
      return fail_at(err, RC_EPARSE, file, s, tok.start, "unterminated string");
    return fail_at(err, RC_EPARSE, file, s, n, "unexpected end of input");
  }
  /* yajl_complete_parse reports on the last token, with no useful offset */
  size_t at = complete ? n : off;
  bool have = token_at(s, n, at ? at - 1 : 0, &tok, &prev);
  size_t tstart = have ? tok.start : at;
  if (strstr(text, "lexical error")) {
    if (strstr(text, "invalid bytes in UTF8 string"))
      return fail_at(err, RC_EPARSE, file, s, first_bad_utf8(s, n, tstart),
                     "invalid UTF-8 in string");
    if (strstr(text, "invalid character inside string")) {
      unsigned char c = static_cast<unsigned char>(s[off < n ? off : n - 1]);
      if (c < 0x20)
        return fail_at(err, RC_EPARSE, file, s, off,
                       "control character 0x%02X in string must be escaped (\\u%04X)", c, c);
      return fail_at(err, RC_EPARSE, file, s, off, "invalid character in string");
    }
    if (strstr(text, "before a character which it may not")) {
      size_t b = off > 0 && s[off - 1] == '\\' ? off - 1 : off;
      return fail_at(err, RC_EPARSE, file, s, b, "invalid escape '\\%c' in string",
                     b + 1 < n ? s[b + 1] : '?');
    }
    if (strstr(text, "after '\\u'")) {
      size_t b = off;
      while (b > tstart && !(s[b] == '\\' && s[b + 1] == 'u')) b--;
      return fail_at(err, RC_EPARSE, file, s, b,
                     "invalid \\u escape: expected 4 hexadecimal digits");
    }
    if (const char *m = strstr(text, "malformed number, ")) {
      char why[128];
      snprintf(why, sizeof why, "%s", m + strlen("malformed number, "));
      size_t wl = strlen(why);
      while (wl && (why[wl - 1] == '.' || json_ws(why[wl - 1]))) why[--wl] = '\0';
      return fail_at(err, RC_EPARSE, file, s, tstart, "invalid number: %s", why);
    }
    if (strstr(text, "comment"))
      return fail_at(err, RC_EPARSE, file, s, off, "comments are not allowed in JSON");
    if (strstr(text, "invalid string in json text")) {
      describe(s, n, tok, what, sizeof what);
      return fail_at(err, RC_EPARSE, file, s, tstart,
                     "invalid literal %s (expected true, false or null)", what);
    }
    if (strstr(text, "invalid char in json text")) {
      size_t b = off > 0 ? off - 1 : 0;
      token one{b, b + 1, true};
      describe(s, n, one, what, sizeof what);
      return fail_at(err, RC_EPARSE, file, s, b, "unexpected character %s", what);
    }
    const char *m = strstr(text, "lexical error: ");
    return fail_at(err, RC_EPARSE, file, s, tstart, "%s", m ? m + 15 : text);
  }
  /* grammar errors: the offending token ends at `off` */
  describe(s, n, tok, what, sizeof what);
  char pc = prev.start != SIZE_MAX ? s[prev.start] : '\0';
  /* yajl reads "01" as 0 then 1 and complains about the second number */
  size_t z = tstart + (tstart < n && s[tstart] == '-');
  if (z + 1 < n && s[z] == '0' && s[z + 1] >= '0' && s[z + 1] <= '9')
    return fail_at(err, RC_EPARSE, file, s, tstart,
                   "invalid number: leading zeros are not allowed");
  if (strstr(text, "trailing garbage"))
    return fail_at(err, RC_EPARSE, file, s, tstart, "trailing content after the JSON value");
  if (strstr(text, "separated by a colon"))
    return fail_at(err, RC_EPARSE, file, s, tstart, "expected ':' after object key, found %s",
                   what);
  if (strstr(text, "inside map, I expect"))
    return fail_at(err, RC_EPARSE, file, s, tstart,
                   "expected ',' or '}' after object member, found %s", what);
  if (strstr(text, "after array element"))
    return fail_at(err, RC_EPARSE, file, s, tstart,
                   "expected ',' or ']' after array element, found %s", what);
  if (strstr(text, "invalid object key")) {
    if (s[tstart] == '}' && pc == ',')
      return fail_at(err, RC_EPARSE, file, s, prev.start, "trailing comma before '}'");
    return fail_at(err, RC_EPARSE, file, s, tstart,
                   "expected a string as object key, found %s", what);
  }
  if (strstr(text, "unallowed token")) {
    if (s[tstart] == ']' && pc == ',')
      return fail_at(err, RC_EPARSE, file, s, prev.start, "trailing comma before ']'");
    if (pc == ':')
      return fail_at(err, RC_EPARSE, file, s, tstart, "expected a value after ':', found %s",
                     what);
    return fail_at(err, RC_EPARSE, file, s, tstart, "unexpected %s", what);
  }
  const char *m = strstr(text, "parse error: ");
  return fail_at(err, RC_EPARSE, file, s, tstart, "%s", m ? m + 13 : text);
}

/* The message for a simdjson failure that yajl did not see (yajl is more lenient about
 * \u surrogates, for one). */
int simdjson_only_error(simdjson::error_code code, const char *s, size_t n, const char *file,
                        rc_error *err) {
  if (code == simdjson::STRING_ERROR) {
    size_t at = locate(s, n, goal::surrogate, 0);
    if (at != SIZE_MAX)
      return fail_at(err, RC_EPARSE, file, s, at, "invalid \\u escape: unpaired UTF-16 surrogate");
  }
  /* yajl's UTF-8 check lets overlong forms and encoded surrogates through. */
  size_t bad = first_bad_utf8(s, n, 0);
  if (bad < n)
    return fail_at(err, RC_EPARSE, file, s, bad, "invalid UTF-8 (byte 0x%02X)",
                   static_cast<unsigned char>(s[bad]));
  /* yajl takes a form feed or a vertical tab for whitespace; JSON does not. */
  bool in_string = false;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (in_string) {
      if (c == '\\') i++;
      else if (c == '"') in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c < 0x20 && !json_ws(static_cast<char>(c))) {
      return fail_at(err, RC_EPARSE, file, s, i,
                     "unexpected control character U+%04X (JSON's whitespace is space, tab, "
                     "line feed and carriage return)", c);
    }
  }
  /* Nothing found that explains it: still a position, the start of the document. */
  return fail_at(err, RC_EPARSE, file, s, 0, "invalid JSON: %s",
                 simdjson::error_message(code));
}

/* Parses with yajl, building the tree. Used when simdjson failed: either yajl finds the
 * error and says where, or the document is valid and only simdjson's number range was
 * exceeded, in which case *out receives the tree (if `keep`). */
int yajl_parse_doc(const char *s, size_t n, const rc__parse_limits *lim, const char *file,
                   bool keep, simdjson::error_code sj, rc_value_t **out, rc_error *err) {
  ybuild y{};
  y.lim = lim;
  rc__buf_init(&y.keys);
  /* yajl's own allocations stay on the C library's allocator: yajl does not survive an
   * allocation failure, so it is kept out of the embedder's (possibly failing) one. */
  yajl_handle h = yajl_alloc(&ycallbacks, nullptr, &y);
  if (!h) return rc__err(err, RC_ENOMEM, file, 0, 0, "out of memory reading JSON");
  yajl_status st = yajl_parse(h, reinterpret_cast<const unsigned char *>(s), n);
  bool complete = false;
  size_t off = yajl_get_bytes_consumed(h);
  if (st == yajl_status_ok) {
    complete = true;
    st = yajl_complete_parse(h);
  }
  int rc = 0;
  if (st == yajl_status_client_canceled || y.fail != failure::none) {
    rc = limit_error(y.fail, lim, s, n, file, err);
  } else if (st != yajl_status_ok) {
    unsigned char *text = yajl_get_error(h, 0, nullptr, 0);
    rc = syntax_error(s, n, text ? reinterpret_cast<const char *>(text) : "parse error", off,
                      complete, file, err);
    if (text) yajl_free_error(h, text);
  } else if (!keep || !y.root) {
    rc = simdjson_only_error(sj, s, n, file, err);
  } else if (locate(s, n, goal::surrogate, 0) != SIZE_MAX) {
    rc = simdjson_only_error(simdjson::STRING_ERROR, s, n, file, err);
  }
  yajl_free(h);
  if (rc == 0) {
    *out = y.root;
    y.root = nullptr;
  }
  y_discard(&y);
  return rc;
}

/* rc__parse_json without the exception barrier. */
int parse_json(const char *data, size_t len, size_t cap, const char *file,
               const rc__parse_limits *lim, rc_value_t **out, rc_error *err) {
  if (len > lim->max_bytes)
    return rc__err(err, RC_ELIMIT, file, 0, 0,
                   "input is %zu bytes, more than the limit of %zu bytes", len, lim->max_bytes);
  size_t skip = len >= 3 && memcmp(data, "\xEF\xBB\xBF", 3) == 0 ? 3 : 0; /* a BOM */
  size_t k = skip;
  while (k < len && json_ws(data[k])) k++;
  if (k == len) return fail_at(err, RC_EPARSE, file, data, len, "empty document");

  /* simdjson reads up to SIMDJSON_PADDING bytes past the end: use the caller's padding
   * when there is some, else a padded copy. */
  const char *buf = data;
  char *copy = nullptr;
  if (cap < len + simdjson::SIMDJSON_PADDING) {
    copy = static_cast<char *>(rc__malloc(len + simdjson::SIMDJSON_PADDING));
    if (!copy) return rc__err(err, RC_ENOMEM, file, 0, 0, "out of memory reading JSON");
    memcpy(copy, data, len);
    memset(copy + len, 0, simdjson::SIMDJSON_PADDING);
    buf = copy;
  }
  simdjson::dom::parser &parser = thread_parser();
  size_t want_depth = static_cast<size_t>(lim->max_depth) + 2;
  simdjson::error_code code = simdjson::SUCCESS;
  if (parser.max_depth() != want_depth)
    code = parser.allocate(len - skip > parser.capacity() ? len - skip : parser.capacity(),
                           want_depth);
  simdjson::dom::element root;
  if (!code) code = parser.parse(buf + skip, len - skip, false).get(root);
  /* From here on positions are computed on the text after the BOM. */
  const char *text = data + skip;
  size_t tlen = len - skip;
  int rc = 0;
  if (!code) {
    failure f = build_document(root, lim, tlen, out);
    if (f != failure::none) rc = limit_error(f, lim, text, tlen, file, err);
  } else if (code == simdjson::MEMALLOC) {
    rc = rc__err(err, RC_ENOMEM, file, 0, 0, "out of memory reading JSON");
  } else if (code == simdjson::CAPACITY) {
    rc = rc__err(err, RC_ELIMIT, file, 0, 0, "document too large for the JSON parser");
  } else if (code == simdjson::DEPTH_ERROR) {
    rc = limit_error(failure::depth, lim, text, tlen, file, err);
  } else {
    rc = yajl_parse_doc(text, tlen, lim, file, code == simdjson::NUMBER_ERROR, code, out, err);
  }
  /* the BOM is one character of line 1 */
  if (rc && skip && err && err->line == 1 && err->column > 0) err->column++;
  if (parser.capacity() > kKeepCapacity) parser = simdjson::dom::parser();
  rc__free(copy);
  return rc;
}

} // namespace

extern "C" int rc__parse_json(const char *data, size_t len, size_t cap, const char *file,
                              const rc__parse_limits *lim, rc_value_t **out, rc_error *err) {
  rc__parse_limits def;
  if (!lim) {
    rc__parse_limits_default(&def);
    lim = &def;
  }
  *out = nullptr;
  try {
    return parse_json(data, len, cap, file, lim, out, err);
  } catch (const std::bad_alloc &) {
    return rc__err(err, RC_ENOMEM, file, 0, 0, "out of memory reading JSON");
  } catch (...) {
    return rc__err(err, RC_EPARSE, file, 0, 0, "internal error in the JSON parser");
  }
}
