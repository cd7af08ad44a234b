/* yaml_parse.c: YAML bytes -> value tree, built from libyaml's parse events, with errors
 * that carry file, line, column and a sentence, within the limits of rc__parse_limits.
 *
 * The rules, in the order a reader meets them:
 * - Exactly one document. A stream with no document (empty, or only comments) is null;
 *   a second document is an error naming its line. A configuration file is one value,
 *   and quietly using the first document would hide whatever was edited in the others.
 * - UTF-8 only. The whole input is checked before libyaml sees it (exact positions,
 *   YAML's printable-character rule); a UTF-16 or UTF-32 byte order mark is rejected
 *   with a message that says so. A UTF-8 byte order mark is skipped.
 * - Plain scalars follow the YAML 1.2 core schema: null (`null`, `Null`, `NULL`, `~`,
 *   empty), booleans (`true`/`false` in three spellings; `yes`, `no`, `on`, `off` are
 *   strings), integers (decimal with a sign, `0x` hex, `0o` octal; beyond int64 is an
 *   error, never a silent float), floats (decimal, exponent, `.inf`, `.nan`), and every
 *   other plain scalar is a string. Quoted and block scalars are strings.
 * - Tags: `!!str`, `!!int`, `!!float`, `!!bool`, `!!null`, `!!map`, `!!seq` and the
 *   non-specific `!` are honoured (content that does not fit is an error); any other
 *   tag (`!foo`, `!!binary`, `!!timestamp`, `!!set`, ...) is an error.
 * - An alias takes a reference to the anchored value (no copy); an alias to a node
 *   still being read is an error. Merge keys `<<` (plain, or tagged `!!merge`) take a
 *   mapping or a sequence of mappings: keys written in the mapping win over merged
 *   ones, earlier mappings of the sequence over later ones; merged keys sit where the
 *   `<<` was written; the merge is one level deep, as the merge-key spec says.
 * - Mapping keys are scalars (a sequence or mapping as a key is an error); a scalar
 *   that is not a string becomes its text as written (`1: a` has the key "1", `0x1F: b`
 *   the key "0x1F"). A key written twice, `<<` included, is an error.
 * - Limits: input bytes, nesting depth, scalar bytes, and nodes. Nodes are counted as if
 *   every alias were expanded (an alias counts its target's nodes; the depth of its
 *   target counts where it is used), so a "billion laughs" document, cheap in memory
 *   here, is still stopped before anyone walks or prints it.
 * libyaml allocates with malloc, outside rc_set_allocator; like yajl in json_parse.cpp
 * it is a library we call, and every failure it reports is turned into an error. */
#include "yaml_parse.h"

#include <locale.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

/* ==== parser state ==== */

/* A key of a mapping being built: its bytes in yp.keys and where it was written. */
typedef struct keyrec {
  size_t off;
  size_t len;
  int line, col;
} keyrec;

enum { WANT_KEY, WANT_VALUE, WANT_MERGE };

/* An open sequence or mapping. */
typedef struct frame {
  bool map;
  uint8_t want;          /* maps: what the next node is */
  rc__array_builder ab;
  rc__object_builder ob;
  yaml_mark_t start;
  long anchor;           /* index in yp.an of its anchor, or -1 */
  size_t nodes0;         /* yp.nodes before this node counted itself */
  uint32_t height;       /* container levels in this subtree so far, itself included */
  size_t kbase;          /* maps: first keyrec of this mapping in yp.kr */
  size_t abase;          /* maps: yp.keys.n when it opened */
  rc_value_t *merge;     /* maps: the value of its `<<` (owned), or NULL */
  size_t merge_at;       /* maps: members written before the `<<` */
  int merge_line;        /* maps: line of the `<<`, 0 if none */
} frame;

/* A named anchor. Redefinition adds an entry; the name's slot points at the newest. */
typedef struct anchor {
  char *name;            /* owned */
  rc_value_t *v;         /* owned reference; NULL while its container is still open */
  size_t nodes;          /* nodes of the subtree, aliases expanded */
  uint32_t height;       /* container levels of the subtree */
  char *text;            /* non-string scalars: the text as written (for use as a key) */
  size_t tlen;
} anchor;

typedef struct yp {
  const char *s;         /* the input, after a UTF-8 byte order mark */
  size_t n;
  const char *file;
  const rc__parse_limits *lim;
  rc_error *err;
  yaml_parser_t parser;
  yaml_mark_t mark;      /* start of the event being handled (for OOM messages) */
  frame *fr;
  size_t nfr, capfr;
  keyrec *kr;
  size_t nkr, capkr;
  rc__buf keys;          /* key bytes of the open mappings, a stack like yp.fr */
  anchor *an;
  size_t nan, capan;
  uint32_t *slots;       /* anchor name hash -> index + 1 in yp.an (0: empty) */
  size_t nslots, nused;
  size_t nodes;          /* nodes so far, aliases expanded */
  int docs;
  bool have_root;
  rc_value_t *root;
} yp;

/* ==== positions and errors ==== */

/* Is s[i] the start of a line break as libyaml counts them (LF, CR, CRLF, and the YAML
 * 1.1 breaks NEL, LS, PS)? Returns its length in bytes, or 0. */
static size_t line_break(const char *str, size_t n, size_t i) {
  const unsigned char *s = (const unsigned char *)str;
  if (s[i] == '\n') return 1;
  if (s[i] == '\r') return i + 1 < n && s[i + 1] == '\n' ? 2 : 1;
  if (s[i] == 0xC2 && i + 1 < n && s[i + 1] == 0x85) return 2;
  if (s[i] == 0xE2 && i + 2 < n && s[i + 1] == 0x80 &&
      (s[i + 2] == 0xA8 || s[i + 2] == 0xA9))
    return 3;
  return 0;
}

/* 1-based line and column of byte `off`, counted as libyaml counts its marks (columns
 * in characters), so positions we compute and positions libyaml reports agree. */
static void position(const char *s, size_t n, size_t off, int *line, int *col) {
  long l = 1, c = 1;
  for (size_t i = 0; i < off && i < n;) {
    size_t b = line_break(s, n, i);
    if (b) {
      l++;
      c = 1;
      i += b;
      continue;
    }
    if (((unsigned char)s[i] & 0xC0) != 0x80) c++;
    i++;
  }
  *line = l > INT32_MAX ? INT32_MAX : (int)l;
  *col = c > INT32_MAX ? INT32_MAX : (int)c;
}

/* Byte offset of a libyaml mark: its `index` counts characters. */
static size_t mark_offset(const yp *p, const yaml_mark_t *m) {
  size_t i = 0;
  for (size_t chars = 0; i < p->n && chars < m->index; chars++) {
    i++;
    while (i < p->n && ((unsigned char)p->s[i] & 0xC0) == 0x80) i++;
  }
  return i;
}

/* libyaml's marks count from 0; ours from 1. */
static int mline(const yaml_mark_t *m) {
  return m->line >= INT32_MAX ? INT32_MAX : (int)m->line + 1;
}
static int mcol(const yaml_mark_t *m) {
  return m->column >= INT32_MAX ? INT32_MAX : (int)m->column + 1;
}

static int fail(yp *p, int code, int line, int col, const char *fmt, ...)
    RC__PRINTF(5, 6);
static int fail(yp *p, int code, int line, int col, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  rc__verr(p->err, code, p->file, line, col, fmt, ap);
  va_end(ap);
  return code;
}

#define FAIL_AT(p, code, mark, ...) fail(p, code, mline(mark), mcol(mark), __VA_ARGS__)

/* Out of memory, placed at the event being handled. */
static int oom(yp *p) {
  return FAIL_AT(p, RC_ENOMEM, &p->mark, "out of memory reading YAML");
}

/* Up to about 60 bytes of `s` for a message: control characters become '?', a cut
 * falls on a character boundary and is marked with "...". Returns `out`. */
static const char *show_text(const char *s, size_t n, char out[80]) {
  size_t k = 0, i = 0;
  for (; i < n && k < 60; i++) {
    unsigned char c = (unsigned char)s[i];
    out[k++] = c < 0x20 || c == 0x7F ? '?' : (char)c;
  }
  if (i < n) {
    size_t lead = k; /* drop the last character if the cut went through it */
    while (lead > 0 && ((unsigned char)out[lead - 1] & 0xC0) == 0x80) lead--;
    if (lead > 0 && (unsigned char)out[lead - 1] >= 0xC0) {
      unsigned char c = (unsigned char)out[lead - 1];
      size_t want = c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
      if (k - (lead - 1) < want) k = lead - 1;
    }
    memcpy(out + k, "...", 3);
    k += 3;
  }
  out[k] = '\0';
  return out;
}

/* What is at byte `off`, for "found ..." in a message. */
static const char *show_found(const yp *p, size_t off, char out[32]) {
  if (off >= p->n) return "the end of the file";
  unsigned char c = (unsigned char)p->s[off];
  if (c == '\t') return "a tab";
  if (line_break(p->s, p->n, off)) return "the end of the line";
  if (c >= 0x20 && c < 0x7F) {
    snprintf(out, 32, "'%c'", c);
  } else {
    size_t l = c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
    if (off + l > p->n) l = p->n - off;
    snprintf(out, 32, "'%.*s'", (int)l, p->s + off);
  }
  return out;
}

/* A tag as the user wrote it: "!!int" for the YAML tags, "!foo" for local ones,
 * "!<uri>" for the rest. */
#define YAML_TAG_PREFIX "tag:yaml.org,2002:"
static const char *show_tag(const char *tag, char out[80]) {
  size_t pl = strlen(YAML_TAG_PREFIX);
  if (strncmp(tag, YAML_TAG_PREFIX, pl) == 0)
    snprintf(out, 80, "!!%.60s", tag + pl);
  else if (tag[0] == '!')
    snprintf(out, 80, "%.60s", tag);
  else
    snprintf(out, 80, "!<%.60s>", tag);
  return out;
}

/* Turns libyaml's complaint into our error. Its problem texts are kept where they read
 * well; the common ones are rephrased as what was expected and what was found, and the
 * construct being parsed is named with the line where it started. */
static int libyaml_error(yp *p) {
  const yaml_parser_t *ps = &p->parser;
  if (ps->error == YAML_MEMORY_ERROR) return oom(p);
  if (ps->error == YAML_READER_ERROR) {
    /* Rare: the input was validated before parsing. The offset counts bytes. */
    int line, col;
    position(p->s, p->n, ps->problem_offset, &line, &col);
    return fail(p, RC_EPARSE, line, col, "%s",
                ps->problem ? ps->problem : "unreadable input");
  }
  const char *prob = ps->problem ? ps->problem : "malformed YAML";
  const char *ctx = ps->context;
  const yaml_mark_t *pm = &ps->problem_mark, *cm = &ps->context_mark;
  int cl = mline(cm), cc = mcol(cm);
  size_t off = mark_offset(p, pm);
  char fbuf[32];
  const char *found = show_found(p, off, fbuf);
  /* libyaml places the end of the stream on a line after the last one when the file does
   * not end with a line break; a person looks for it after the last character. */
  int line = mline(pm), col = mcol(pm);
  if (off >= p->n) position(p->s, p->n, p->n, &line, &col);
#define AT(...) fail(p, RC_EPARSE, line, col, __VA_ARGS__)
  if (!strcmp(prob, "did not find expected key") && ctx && strstr(ctx, "block mapping"))
    return AT("expected a key aligned with the mapping that started at line %d, "
              "column %d, found %s (check the indentation)", cl, cc, found);
  if (strcmp(prob, "did not find expected '-' indicator") == 0)
    return AT("expected '-' for the next item of the sequence that started at line %d, "
              "column %d, found %s (check the indentation)", cl, cc, found);
  if (strcmp(prob, "did not find expected ',' or ']'") == 0)
    return AT("expected ',' or ']' in the flow sequence that started at line %d, "
              "column %d, found %s", cl, cc, found);
  if (strcmp(prob, "did not find expected ',' or '}'") == 0)
    return AT("expected ',' or '}' in the flow mapping that started at line %d, "
              "column %d, found %s", cl, cc, found);
  if (strcmp(prob, "did not find expected node content") == 0)
    return AT("expected a value, found %s", found);
  if (strcmp(prob, "did not find expected <document start>") == 0)
    return AT("expected the end of the document, found %s (a YAML file holds one "
              "top-level value; check the indentation)", found);
  if (strcmp(prob, "mapping values are not allowed in this context") == 0) {
    /* libyaml also says this when an implicit key is over YAML's 1024 characters */
    size_t ls = off;
    while (ls > 0 && !line_break(p->s, p->n, ls - 1)) ls--;
    size_t chars = 0;
    for (size_t k = ls; k < off; k++) chars += ((unsigned char)p->s[k] & 0xC0) != 0x80;
    if (chars > 1024)
      return AT("a key longer than 1024 characters must be written as an explicit key "
                "('? key' on one line, ': value' on the next)");
    return AT("mapping values are not allowed here (quote a value that contains ': ', "
              "or check the indentation)");
  }
  if (strcmp(prob, "block sequence entries are not allowed in this context") == 0)
    return AT("a '-' sequence cannot start here (start it on a new line, or quote the "
              "value)");
  if (strcmp(prob, "found character that cannot start any token") == 0) {
    if (off < p->n && p->s[off] == '\t')
      return AT("found a tab where YAML expects indentation or a value: indent with "
                "spaces");
    return AT("found %s, which cannot start a YAML value (quote the value)", found);
  }
  if (strcmp(prob, "found unexpected end of stream") == 0 && ctx &&
      strstr(ctx, "quoted scalar"))
    return AT("unterminated quoted string (it opened at line %d, column %d)", cl, cc);
  if (!strcmp(prob, "could not find expected ':'") && ctx && strstr(ctx, "simple key"))
    return AT("expected ':' after the key that started at line %d, column %d", cl, cc);
  if (strcmp(prob, "found unknown escape character") == 0) {
    char e = off + 1 < p->n ? p->s[off + 1] : '\0';
    if (e > 0x20 && e < 0x7F)
      return AT("unknown escape '\\%c' in a double-quoted string", e);
    return AT("unknown escape in a double-quoted string");
  }
  if (ctx)
    return AT("%s (%s that started at line %d, column %d)", prob, ctx, cl, cc);
  return AT("%s", prob);
#undef AT
}

/* ==== input checks ==== */

/* First byte at or after 0 that is not valid UTF-8 or is a character YAML does not allow
 * in a stream (C0 and C1 controls other than tab, LF, CR and NEL; DEL; U+FFFE/U+FFFF;
 * surrogates and overlong forms are not UTF-8). Returns n when all is well, and the
 * decoded character (or the bad byte) in *what; *utf8 false for a malformed sequence. */
static size_t first_bad(const char *str, size_t n, unsigned long *what, bool *utf8) {
  const unsigned char *s = (const unsigned char *)str;
  size_t i = 0;
  while (i < n) {
    unsigned c = s[i];
    if (c >= 0x20 && c < 0x7F) {
      i++;
      continue;
    }
    if (c < 0x80) {
      if (c == '\t' || c == '\n' || c == '\r') {
        i++;
        continue;
      }
      *what = c;
      *utf8 = true;
      return i;
    }
    size_t l = c < 0xC2 ? 0 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : c < 0xF5 ? 4 : 0;
    bool ok = l && i + l <= n;
    for (size_t k = 1; ok && k < l; k++) ok = (s[i + k] & 0xC0) == 0x80;
    if (ok && ((c == 0xE0 && s[i + 1] < 0xA0) || (c == 0xED && s[i + 1] >= 0xA0) ||
               (c == 0xF0 && s[i + 1] < 0x90) || (c == 0xF4 && s[i + 1] >= 0x90)))
      ok = false;
    if (!ok) {
      *what = c;
      *utf8 = false;
      return i;
    }
    unsigned long u = c & (0x7F >> l);
    for (size_t k = 1; k < l; k++) u = u << 6 | (s[i + k] & 0x3F);
    if ((u >= 0x80 && u < 0xA0 && u != 0x85) || u == 0xFFFE || u == 0xFFFF) {
      *what = u;
      *utf8 = true;
      return i;
    }
    i += l;
  }
  return n;
}

/* Rejects what libyaml should not see: UTF-16/32, invalid UTF-8, forbidden characters. */
static int check_encoding(yp *p, const char *data, size_t len) {
  const unsigned char *u = (const unsigned char *)data;
  if (len >= 4 && ((u[0] == 0 && u[1] == 0 && u[2] == 0xFE && u[3] == 0xFF) ||
                   (u[0] == 0xFF && u[1] == 0xFE && u[2] == 0 && u[3] == 0)))
    return fail(p, RC_EPARSE, 1, 1,
                "the file is UTF-32 (it starts with a UTF-32 byte order mark); YAML is "
                "read as UTF-8 only: convert the file to UTF-8");
  if (len >= 2 && ((u[0] == 0xFE && u[1] == 0xFF) || (u[0] == 0xFF && u[1] == 0xFE)))
    return fail(p, RC_EPARSE, 1, 1,
                "the file is UTF-16 (it starts with a UTF-16 byte order mark); YAML is "
                "read as UTF-8 only: convert the file to UTF-8");
  if (len >= 2 && (u[0] == 0 || u[1] == 0))
    return fail(p, RC_EPARSE, 1, 1,
                "the file looks like UTF-16 or UTF-32 (it starts with a NUL byte); YAML "
                "is read as UTF-8 only: convert the file to UTF-8");
  unsigned long what = 0;
  bool utf8 = true;
  size_t bad = first_bad(p->s, p->n, &what, &utf8);
  if (bad == p->n) return 0;
  int line, col;
  position(p->s, p->n, bad, &line, &col);
  if (!utf8)
    return fail(p, RC_EPARSE, line, col,
                "invalid UTF-8 (byte 0x%02lX); YAML must be UTF-8", what);
  return fail(p, RC_EPARSE, line, col,
              "control character U+%04lX is not allowed in YAML (write it as an escape "
              "in a double-quoted string)", what);
}

/* ==== scalars: the YAML 1.2 core schema ==== */

static bool is_digit(char c) { return c >= '0' && c <= '9'; }

/* Is s[0..n) `word` in one of the core schema's three spellings: all lower case, an
 * upper-case initial, or all upper case? `word` is lower case. */
static bool spelled(const char *s, size_t n, const char *word) {
  size_t wl = strlen(word);
  if (n != wl) return false;
  bool lower = true, upper = true, initial = s[0] == word[0] - 32 || s[0] == word[0];
  for (size_t k = 0; k < n; k++) {
    char up = word[k] >= 'a' && word[k] <= 'z' ? (char)(word[k] - 32) : word[k];
    lower = lower && s[k] == word[k];
    upper = upper && s[k] == up;
    if (k > 0) initial = initial && s[k] == word[k];
  }
  return lower || upper || initial;
}

static bool null_form(const char *s, size_t n) {
  return n == 0 || (n == 1 && s[0] == '~') || spelled(s, n, "null");
}

static bool bool_form(const char *s, size_t n, bool *b) {
  if (spelled(s, n, "true")) {
    *b = true;
    return true;
  }
  if (spelled(s, n, "false")) {
    *b = false;
    return true;
  }
  return false;
}

static int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return 99;
}

/* `[-+]?[0-9]+`, `0x[0-9a-fA-F]+` or `0o[0-7]+`. Returns 1 with the value, 0 when the
 * text has another shape, -1 when it has this shape but does not fit in int64. */
static int int_form(const char *s, size_t n, int64_t *out) {
  if (n > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'o')) {
    int base = s[1] == 'x' ? 16 : 8;
    uint64_t v = 0;
    bool over = false;
    for (size_t i = 2; i < n; i++) {
      int d = hexval(s[i]);
      if (d >= base) return 0;
      if (v > ((uint64_t)INT64_MAX - (uint64_t)d) / (uint64_t)base) over = true;
      v = v * (uint64_t)base + (uint64_t)d;
    }
    if (over) return -1;
    *out = (int64_t)v;
    return 1;
  }
  size_t i = 0;
  bool neg = false;
  if (n && (s[0] == '-' || s[0] == '+')) {
    neg = s[0] == '-';
    i = 1;
  }
  if (i == n) return 0;
  uint64_t limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX, v = 0;
  bool over = false;
  for (; i < n; i++) {
    if (!is_digit(s[i])) return 0;
    uint64_t d = (uint64_t)(s[i] - '0');
    if (v > (limit - d) / 10) over = true;
    v = v * 10 + d;
  }
  if (over) return -1;
  *out = neg ? (int64_t)(0 - v) : (int64_t)v;
  return 1;
}

/* `[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?` */
static bool float_shape(const char *s, size_t n) {
  size_t i = 0;
  if (i < n && (s[i] == '-' || s[i] == '+')) i++;
  size_t d0 = i;
  while (i < n && is_digit(s[i])) i++;
  size_t idig = i - d0, fdig = 0;
  if (i < n && s[i] == '.') {
    size_t f0 = ++i;
    while (i < n && is_digit(s[i])) i++;
    fdig = i - f0;
  }
  if (idig == 0 && fdig == 0) return false;
  if (i < n && (s[i] == 'e' || s[i] == 'E')) {
    i++;
    if (i < n && (s[i] == '-' || s[i] == '+')) i++;
    size_t e0 = i;
    while (i < n && is_digit(s[i])) i++;
    if (i == e0) return false;
  }
  return i == n;
}

static pthread_once_t c_locale_once = PTHREAD_ONCE_INIT;
static locale_t c_locale;
/* strtod in the C locale whatever the process's locale ("1.5" must not need "1,5"). */
static void c_locale_init(void) {
  c_locale = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0);
}

/* The core schema's floats, including `[-+]?.inf` and `.nan` in their three spellings.
 * `s` is NUL-terminated at n (libyaml's scalars are). */
static bool float_form(const char *s, size_t n, double *d) {
  size_t i = n && (s[0] == '-' || s[0] == '+') ? 1 : 0;
  if (n - i == 4 && s[i] == '.' && spelled(s + i + 1, 3, "inf")) {
    *d = s[0] == '-' ? -INFINITY : INFINITY;
    return true;
  }
  if (n == 4 && (!memcmp(s, ".nan", 4) || !memcmp(s, ".NaN", 4) || !memcmp(s, ".NAN", 4))) {
    *d = NAN;
    return true;
  }
  if (!float_shape(s, n)) return false;
  pthread_once(&c_locale_once, c_locale_init);
  *d = c_locale ? strtod_l(s, NULL, c_locale) : strtod(s, NULL);
  return true; /* beyond the double range: +-inf, as IEEE reading rounds it */
}

/* The scalar kinds worth checking for: anything else in plain style is a string. */
static bool may_be_special(const char *s, size_t n) {
  if (n == 0) return true;
  char c = s[0];
  return is_digit(c) || c == '-' || c == '+' || c == '.' || c == '~' || c == 'n' ||
         c == 'N' || c == 't' || c == 'T' || c == 'f' || c == 'F';
}

/* The value of a scalar event: the core schema for untagged plain scalars, strings for
 * the other styles, and the tag's kind when it has one. NULL with the error filled in
 * (RC_ENOMEM included). */
static rc_value_t *scalar_value(yp *p, const yaml_event_t *e, int *rc) {
  const char *s = (const char *)e->data.scalar.value;
  size_t n = e->data.scalar.length;
  const char *tag = (const char *)e->data.scalar.tag;
  const yaml_mark_t *m = &e->start_mark;
  rc_value_t *v = NULL;
  char tb[80], vb[80];
  int64_t i;
  double d;
  bool b;
  if (!tag) {
    if (e->data.scalar.style != YAML_PLAIN_SCALAR_STYLE || !may_be_special(s, n)) {
      v = rc__value_string(s, n);
    } else if (null_form(s, n)) {
      return rc__value_null();
    } else if (bool_form(s, n, &b)) {
      return rc__value_bool(b);
    } else {
      int k = int_form(s, n, &i);
      if (k < 0) {
        *rc = FAIL_AT(p, RC_EPARSE, m,
                      "integer %s does not fit in 64 bits (quote it to keep it as a "
                      "string)", show_text(s, n, vb));
        return NULL;
      }
      v = k ? rc__value_int(i) : float_form(s, n, &d) ? rc__value_float(d)
                                                      : rc__value_string(s, n);
    }
  } else if (!strcmp(tag, "!") || !strcmp(tag, YAML_TAG_PREFIX "str")) {
    v = rc__value_string(s, n);
  } else if (!strcmp(tag, YAML_TAG_PREFIX "int")) {
    int k = int_form(s, n, &i);
    if (k <= 0) {
      *rc = FAIL_AT(p, RC_EPARSE, m,
                    k ? "integer %s does not fit in 64 bits"
                      : "'%s' is not an integer (tag !!int)", show_text(s, n, vb));
      return NULL;
    }
    v = rc__value_int(i);
  } else if (!strcmp(tag, YAML_TAG_PREFIX "float")) {
    if (float_form(s, n, &d)) {
      v = rc__value_float(d);
    } else if (int_form(s, n, &i) > 0) { /* 0x and 0o forms */
      v = rc__value_float((double)i);
    } else {
      *rc = FAIL_AT(p, RC_EPARSE, m, "'%s' is not a float (tag !!float)",
                    show_text(s, n, vb));
      return NULL;
    }
  } else if (!strcmp(tag, YAML_TAG_PREFIX "bool")) {
    if (!bool_form(s, n, &b)) {
      *rc = FAIL_AT(p, RC_EPARSE, m,
                    "'%s' is not a boolean (tag !!bool; YAML 1.2 booleans are true and "
                    "false)", show_text(s, n, vb));
      return NULL;
    }
    return rc__value_bool(b);
  } else if (!strcmp(tag, YAML_TAG_PREFIX "null")) {
    if (!null_form(s, n)) {
      *rc = FAIL_AT(p, RC_EPARSE, m, "'%s' is not null (tag !!null)",
                    show_text(s, n, vb));
      return NULL;
    }
    return rc__value_null();
  } else if (!strcmp(tag, YAML_TAG_PREFIX "map") || !strcmp(tag, YAML_TAG_PREFIX "seq")) {
    *rc = FAIL_AT(p, RC_EPARSE, m, "tag %s cannot apply to a scalar", show_tag(tag, tb));
    return NULL;
  } else {
    *rc = FAIL_AT(p, RC_EPARSE, m,
                  "unsupported tag '%s' (reactcfg reads !!str, !!int, !!float, !!bool, "
                  "!!null, !!map and !!seq)", show_tag(tag, tb));
    return NULL;
  }
  if (!v) *rc = oom(p);
  return v;
}

/* ==== anchors ==== */

static size_t slot_of(const yp *p, const char *name, size_t len, bool *found) {
  size_t mask = p->nslots - 1, h = (size_t)rc__hash64(name, len) & mask;
  for (;; h = (h + 1) & mask) {
    uint32_t t = p->slots[h];
    if (!t) {
      *found = false;
      return h;
    }
    if (!strcmp(p->an[t - 1].name, name)) {
      *found = true;
      return h;
    }
  }
}

static const anchor *anchor_find(const yp *p, const char *name) {
  if (!p->nslots) return NULL;
  bool found;
  size_t h = slot_of(p, name, strlen(name), &found);
  return found ? &p->an[p->slots[h] - 1] : NULL;
}

/* Adds anchor `name` for the node being read and makes it the one its name refers to.
 * Returns its index, or -1 on OOM. */
static long anchor_add(yp *p, const char *name) {
  if (p->nan >= UINT32_MAX - 1) return -1;
  if (p->nan == p->capan) {
    size_t cap = p->capan ? p->capan * 2 : 16;
    anchor *an = rc__realloc(p->an, cap * sizeof *an);
    if (!an) return -1;
    p->an = an;
    p->capan = cap;
  }
  if ((p->nused + 1) * 2 > p->nslots) {
    size_t ns = p->nslots ? p->nslots * 2 : 32;
    uint32_t *old = p->slots;
    size_t on = p->nslots;
    p->slots = rc__calloc(ns, sizeof *p->slots);
    if (!p->slots) {
      p->slots = old;
      return -1;
    }
    p->nslots = ns;
    for (size_t k = 0; k < on; k++) {
      if (!old[k]) continue;
      bool found;
      const char *nm = p->an[old[k] - 1].name;
      p->slots[slot_of(p, nm, strlen(nm), &found)] = old[k];
    }
    rc__free(old);
  }
  char *copy = rc__strdup(name);
  if (!copy) return -1;
  anchor *a = &p->an[p->nan];
  *a = (anchor){.name = copy};
  bool found;
  size_t h = slot_of(p, name, strlen(name), &found);
  if (!found) p->nused++;
  p->slots[h] = (uint32_t)(p->nan + 1);
  return (long)p->nan++;
}

/* ==== building ==== */

static frame *top(yp *p) { return p->nfr ? &p->fr[p->nfr - 1] : NULL; }

/* Counts `add` more nodes (1 for a node, the target's count for an alias) against
 * max_nodes. The count saturates, so a limit of SIZE_MAX is no limit. */
static int check_nodes(yp *p, size_t add, const yaml_mark_t *m, bool alias) {
  p->nodes = add > SIZE_MAX - p->nodes ? SIZE_MAX : p->nodes + add;
  if (p->nodes <= p->lim->max_nodes) return 0;
  if (alias)
    return FAIL_AT(p, RC_ELIMIT, m, "too many nodes after expanding aliases (limit %zu)",
                   p->lim->max_nodes);
  return FAIL_AT(p, RC_ELIMIT, m, "more than %zu nodes in the document",
                 p->lim->max_nodes);
}

/* Is `v` a mapping, or a sequence of mappings (what a merge key takes)? */
static bool mergeable(const rc_value_t *v) {
  if (v->type == RC_TYPE_OBJECT) return true;
  if (v->type != RC_TYPE_ARRAY) return false;
  for (uint32_t k = 0; k < v->len; k++)
    if (v->u.items[k]->type != RC_TYPE_OBJECT) return false;
  return true;
}

/* Hands a finished node (reference moved in) to its parent, or makes it the root.
 * `height` is its container levels, `m` where it started. */
static int add_value(yp *p, rc_value_t *v, uint32_t height, const yaml_mark_t *m) {
  if (!v) return oom(p);
  frame *f = top(p);
  if (!f) {
    p->root = v;
    p->have_root = true;
    return 0;
  }
  uint32_t h = height + 1;
  if (f->map && f->want == WANT_MERGE) {
    if (!mergeable(v)) {
      rc__value_unref(v);
      return FAIL_AT(p, RC_EPARSE, m,
                     "the value of a merge key '<<' must be a mapping or a sequence of "
                     "mappings");
    }
    /* merged members sit one level below this mapping, whatever carried them */
    h = v->type == RC_TYPE_ARRAY ? height - 1 : height;
    f->merge = v;
    f->merge_at = f->ob.n;
    f->want = WANT_KEY;
  } else if (f->map) {
    const keyrec *k = &p->kr[p->nkr - 1];
    rc__object_put(&f->ob, p->keys.p + k->off, k->len, v);
    f->want = WANT_KEY;
    if (f->ob.oom) return oom(p);
  } else {
    rc__array_push(&f->ab, v);
    if (f->ab.oom) return oom(p);
  }
  if (h > f->height) f->height = h;
  return 0;
}

/* Records the text of a key of the mapping on top. */
static int add_key(yp *p, const char *s, size_t n, const yaml_mark_t *m) {
  frame *f = top(p);
  if (n > p->lim->max_string)
    return FAIL_AT(p, RC_ELIMIT, m, "key longer than the limit of %zu bytes",
                   p->lim->max_string);
  if (p->nkr == p->capkr) {
    size_t cap = p->capkr ? p->capkr * 2 : 64;
    keyrec *kr = rc__realloc(p->kr, cap * sizeof *kr);
    if (!kr) return oom(p);
    p->kr = kr;
    p->capkr = cap;
  }
  /* The builder needs a pointer even for an empty key, so the arena always has a byte. */
  size_t off = p->keys.n;
  rc__buf_add(&p->keys, s, n);
  rc__buf_addc(&p->keys, '\0');
  if (p->keys.oom) return oom(p);
  p->kr[p->nkr++] = (keyrec){off, n, mline(m), mcol(m)};
  f->want = WANT_VALUE;
  return 0;
}

/* Anchors scalar `v` (a reference is taken); keeps the text of a scalar that is not a
 * string, for an alias used as a key. */
static int register_scalar_anchor(yp *p, const char *name, rc_value_t *v, const char *s,
                                  size_t n) {
  long a = anchor_add(p, name);
  if (a < 0) return oom(p);
  anchor *an = &p->an[a];
  an->v = rc__value_ref(v);
  an->nodes = 1;
  if (v->type != RC_TYPE_STRING) {
    an->text = rc__strndup(s, n);
    if (!an->text) return oom(p);
    an->tlen = n;
  }
  return 0;
}

/* A scalar: a key (or the merge key `<<`) when a mapping waits for one, else a value. */
static int on_scalar(yp *p, const yaml_event_t *e) {
  const char *s = (const char *)e->data.scalar.value;
  size_t n = e->data.scalar.length;
  const char *tag = (const char *)e->data.scalar.tag;
  const char *anchor_name = (const char *)e->data.scalar.anchor;
  const yaml_mark_t *m = &e->start_mark;
  frame *f = top(p);
  int rc = 0;
  if (f && f->map && f->want == WANT_KEY) {
    bool plain = e->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
    if ((plain && !tag && n == 2 && !memcmp(s, "<<", 2)) ||
        (tag && !strcmp(tag, YAML_TAG_PREFIX "merge"))) {
      if (f->merge_line)
        return FAIL_AT(p, RC_EPARSE, m, "duplicate key '<<' (first at line %d)",
                       f->merge_line);
      f->merge_line = mline(m);
      f->want = WANT_MERGE;
      return 0;
    }
    /* Untagged keys need no value; tagged ones are checked, anchored ones kept. */
    if (tag || anchor_name) {
      rc_value_t *v = scalar_value(p, e, &rc);
      if (!v) return rc;
      if (anchor_name) rc = register_scalar_anchor(p, anchor_name, v, s, n);
      rc__value_unref(v);
      if (rc) return rc;
    }
    return add_key(p, s, n, m);
  }
  if (n > p->lim->max_string)
    return FAIL_AT(p, RC_ELIMIT, m, "string longer than the limit of %zu bytes",
                   p->lim->max_string);
  if ((rc = check_nodes(p, 1, m, false))) return rc;
  rc_value_t *v = scalar_value(p, e, &rc);
  if (!v) return rc;
  if (anchor_name && (rc = register_scalar_anchor(p, anchor_name, v, s, n))) {
    rc__value_unref(v);
    return rc;
  }
  return add_value(p, v, 0, m);
}

/* An alias: a reference to the anchored value, counted and measured as if expanded; as
 * a key, the anchored scalar's text. */
static int on_alias(yp *p, const yaml_event_t *e) {
  const char *name = (const char *)e->data.alias.anchor;
  const yaml_mark_t *m = &e->start_mark;
  char nb[80];
  const anchor *a = anchor_find(p, name);
  if (!a)
    return FAIL_AT(p, RC_EPARSE, m, "undefined alias '*%s'",
                   show_text(name, strlen(name), nb));
  if (!a->v)
    return FAIL_AT(p, RC_EPARSE, m,
                   "alias '*%s' is used inside the node it names (recursive aliases "
                   "are not supported)", show_text(name, strlen(name), nb));
  frame *f = top(p);
  if (f && f->map && f->want == WANT_KEY) {
    if (a->v->type == RC_TYPE_ARRAY || a->v->type == RC_TYPE_OBJECT)
      return FAIL_AT(p, RC_EPARSE, m,
                     "a mapping key must be a scalar, but alias '*%s' names a %s",
                     show_text(name, strlen(name), nb),
                     a->v->type == RC_TYPE_ARRAY ? "sequence" : "mapping");
    if (a->text) return add_key(p, a->text, a->tlen, m);
    return add_key(p, a->v->u.s, a->v->len, m);
  }
  /* As a merge value, a mapping's members (or a sequence's mappings' members) join the
   * mapping being read: one level (or two) fewer than the alias itself. */
  uint32_t height = a->height, sub = 0;
  if (f && f->map && f->want == WANT_MERGE) sub = a->v->type == RC_TYPE_ARRAY ? 2 : 1;
  if (p->nfr + (size_t)(height > sub ? height - sub : 0) > p->lim->max_depth)
    return FAIL_AT(p, RC_ELIMIT, m,
                   "nesting deeper than %u levels after expanding aliases",
                   (unsigned)p->lim->max_depth);
  int rc = check_nodes(p, a->nodes, m, true);
  if (rc) return rc;
  return add_value(p, rc__value_ref(a->v), a->height, m);
}

/* The start of a sequence or mapping: checks its place, tag and depth, opens a frame. */
static int on_start(yp *p, const yaml_event_t *e, bool map) {
  const yaml_mark_t *m = &e->start_mark;
  const char *tag, *anchor_name;
  if (map) {
    tag = (const char *)e->data.mapping_start.tag;
    anchor_name = (const char *)e->data.mapping_start.anchor;
  } else {
    tag = (const char *)e->data.sequence_start.tag;
    anchor_name = (const char *)e->data.sequence_start.anchor;
  }
  const char *what = map ? "mapping" : "sequence";
  char tb[80];
  frame *f = top(p);
  if (f && f->map && f->want == WANT_KEY)
    return FAIL_AT(p, RC_EPARSE, m,
                   "a mapping key must be a scalar: a %s cannot be a key (complex keys "
                   "are not supported)", what);
  if (tag && strcmp(tag, "!") != 0 &&
      strcmp(tag, map ? YAML_TAG_PREFIX "map" : YAML_TAG_PREFIX "seq") != 0) {
    static const char *const kinds[] = {"str", "int", "float", "bool", "null", "map",
                                        "seq"};
    size_t pl = strlen(YAML_TAG_PREFIX);
    bool known = false;
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++)
      if (!strncmp(tag, YAML_TAG_PREFIX, pl) && !strcmp(tag + pl, kinds[k])) known = true;
    if (known)
      return FAIL_AT(p, RC_EPARSE, m, "tag %s cannot apply to a %s", show_tag(tag, tb),
                     what);
    return FAIL_AT(p, RC_EPARSE, m,
                   "unsupported tag '%s' (reactcfg reads !!str, !!int, !!float, !!bool, "
                   "!!null, !!map and !!seq)", show_tag(tag, tb));
  }
  if (p->nfr + 1 > p->lim->max_depth)
    return FAIL_AT(p, RC_ELIMIT, m, "nesting deeper than %u levels",
                   (unsigned)p->lim->max_depth);
  size_t nodes0 = p->nodes;
  int rc = check_nodes(p, 1, m, false);
  if (rc) return rc;
  if (p->nfr == p->capfr) {
    size_t cap = p->capfr ? p->capfr * 2 : 16;
    frame *fr = rc__realloc(p->fr, cap * sizeof *fr);
    if (!fr) return oom(p);
    p->fr = fr;
    p->capfr = cap;
  }
  long a = -1;
  if (anchor_name && (a = anchor_add(p, anchor_name)) < 0) return oom(p);
  f = &p->fr[p->nfr++];
  *f = (frame){.map = map, .want = WANT_KEY, .start = *m, .anchor = a, .nodes0 = nodes0,
               .height = 1, .kbase = p->nkr, .abase = p->keys.n};
  rc__array_begin(&f->ab);
  rc__object_begin(&f->ob);
  return 0;
}

/* Finds the first key written twice in the mapping `f` (there is one: the builder
 * dropped a member) and reports it where it was written the second time. */
static int duplicate_error(yp *p, const frame *f) {
  size_t n = p->nkr - f->kbase, cap = 16;
  while (cap < 2 * n) cap *= 2;
  uint32_t *tab = rc__calloc(cap, sizeof *tab);
  if (!tab) return oom(p);
  const keyrec *kr = p->kr + f->kbase;
  for (size_t i = 0; i < n; i++) {
    const char *ks = p->keys.p + kr[i].off;
    size_t h = (size_t)rc__hash64(ks, kr[i].len) & (cap - 1);
    for (;; h = (h + 1) & (cap - 1)) {
      if (!tab[h]) {
        tab[h] = (uint32_t)(i + 1);
        break;
      }
      const keyrec *o = &kr[tab[h] - 1];
      if (o->len == kr[i].len && !memcmp(p->keys.p + o->off, ks, o->len)) {
        char kb[80];
        rc__free(tab);
        return fail(p, RC_EPARSE, kr[i].line, kr[i].col,
                    "duplicate key '%s' (first at line %d)", show_text(ks, kr[i].len, kb),
                    o->line);
      }
    }
  }
  rc__free(tab);
  return FAIL_AT(p, RC_EPARSE, &f->start, "duplicate key in this mapping");
}

/* The mapping `obj` (written members) with the members of `merge` added where the `<<`
 * was: a key is skipped when the mapping writes it or an earlier merged mapping had it.
 * Takes the reference to `obj`; NULL on OOM. */
static rc_value_t *apply_merge(rc_value_t *obj, const rc_value_t *merge, size_t at) {
  const rc_value_t *one[1] = {merge};
  const rc_value_t *const *srcs = merge->type == RC_TYPE_OBJECT ? one
                                  : (const rc_value_t *const *)merge->u.items;
  size_t nsrc = merge->type == RC_TYPE_OBJECT ? 1 : merge->len;
  rc__object_builder b;
  rc__object_begin(&b);
  for (size_t i = 0; i <= obj->len; i++) {
    if (i == at) {
      for (size_t s = 0; s < nsrc; s++) {
        for (uint32_t k = 0; k < srcs[s]->len; k++) {
          const rc__member *mm = &srcs[s]->u.members[k];
          bool taken = rc__object_find(obj, mm->key, mm->klen) >= 0;
          for (size_t e = 0; !taken && e < s; e++)
            taken = rc__object_find(srcs[e], mm->key, mm->klen) >= 0;
          if (!taken) rc__object_put(&b, mm->key, mm->klen, rc__value_ref(mm->val));
        }
      }
    }
    if (i < obj->len) {
      const rc__member *mm = &obj->u.members[i];
      rc__object_put(&b, mm->key, mm->klen, rc__value_ref(mm->val));
    }
  }
  rc__value_unref(obj);
  return rc__object_end(&b);
}

/* The container of frame `f` is complete as `v`: its anchor, if any, now names it. */
static void finish_anchor(yp *p, const frame *f, rc_value_t *v) {
  if (f->anchor < 0) return;
  anchor *a = &p->an[f->anchor];
  a->v = rc__value_ref(v);
  a->nodes = p->nodes - f->nodes0;
  a->height = f->height;
}

/* The end of a sequence or mapping: builds it (a mapping: duplicates, then the merge),
 * closes the frame and hands the node to its parent. */
static int on_end(yp *p, const yaml_event_t *e) {
  frame *f = top(p);
  if (!f) return FAIL_AT(p, RC_EPARSE, &e->start_mark, "unbalanced end of a collection");
  rc_value_t *v;
  if (!f->map) {
    v = rc__array_end(&f->ab);
    if (!v) return oom(p);
  } else {
    if (f->want != WANT_KEY)
      return FAIL_AT(p, RC_EPARSE, &e->start_mark, "mapping ended after a key");
    size_t puts = f->ob.n;
    v = rc__object_end(&f->ob);
    if (!v) return oom(p);
    if (v->len != puts) {
      rc__value_unref(v);
      return duplicate_error(p, f);
    }
    if (f->merge) {
      v = apply_merge(v, f->merge, f->merge_at);
      rc__value_unref(f->merge);
      f->merge = NULL;
      if (!v) return oom(p);
    }
    p->nkr = f->kbase;
    p->keys.n = f->abase;
  }
  finish_anchor(p, f, v);
  uint32_t height = f->height;
  yaml_mark_t start = f->start;
  p->nfr--;
  return add_value(p, v, height, &start);
}

static int on_event(yp *p, const yaml_event_t *e) {
  switch (e->type) {
  case YAML_DOCUMENT_START_EVENT:
    if (++p->docs > 1)
      return FAIL_AT(p, RC_EPARSE, &e->start_mark,
                     "the file has several YAML documents; reactcfg reads exactly one "
                     "(second document at line %d)", mline(&e->start_mark));
    return 0;
  case YAML_SCALAR_EVENT: return on_scalar(p, e);
  case YAML_ALIAS_EVENT: return on_alias(p, e);
  case YAML_SEQUENCE_START_EVENT: return on_start(p, e, false);
  case YAML_MAPPING_START_EVENT: return on_start(p, e, true);
  case YAML_SEQUENCE_END_EVENT:
  case YAML_MAPPING_END_EVENT: return on_end(p, e);
  case YAML_NO_EVENT:
  case YAML_STREAM_START_EVENT:
  case YAML_STREAM_END_EVENT:
  case YAML_DOCUMENT_END_EVENT: break;
  }
  return 0;
}

/* Frees everything the parse still owns (the root included). */
static void discard(yp *p) {
  for (size_t k = 0; k < p->nfr; k++) {
    rc__array_abort(&p->fr[k].ab);
    rc__object_abort(&p->fr[k].ob);
    rc__value_unref(p->fr[k].merge);
  }
  rc__free(p->fr);
  rc__free(p->kr);
  rc__buf_free(&p->keys);
  for (size_t k = 0; k < p->nan; k++) {
    rc__free(p->an[k].name);
    rc__value_unref(p->an[k].v);
    rc__free(p->an[k].text);
  }
  rc__free(p->an);
  rc__free(p->slots);
  rc__value_unref(p->root);
  p->root = NULL;
}

int rc__parse_yaml(const char *data, size_t len, const char *file,
                   const rc__parse_limits *lim, rc_value_t **out, rc_error *err) {
  rc__parse_limits def;
  if (!lim) {
    rc__parse_limits_default(&def);
    lim = &def;
  }
  *out = NULL;
  size_t bom = len >= 3 && memcmp(data, "\xEF\xBB\xBF", 3) == 0 ? 3 : 0;
  yp p = {.s = data + bom, .n = len - bom, .file = file, .lim = lim, .err = err};
  if (len > lim->max_bytes) {
    int line, col;
    position(p.s, p.n, lim->max_bytes > bom ? lim->max_bytes - bom : 0, &line, &col);
    return fail(&p, RC_ELIMIT, line, col,
                "input is %zu bytes, more than the limit of %zu bytes", len,
                lim->max_bytes);
  }
  int rc = check_encoding(&p, data, len);
  if (rc) return rc;
  if (!yaml_parser_initialize(&p.parser))
    return rc__err(err, RC_ENOMEM, file, 1, 1, "out of memory reading YAML");
  rc__buf_init(&p.keys);
  /* libyaml sees the byte order mark too, and skips it without counting a column. */
  yaml_parser_set_input_string(&p.parser, (const unsigned char *)data, len);
  for (;;) {
    yaml_event_t ev;
    if (!yaml_parser_parse(&p.parser, &ev)) {
      rc = libyaml_error(&p);
      break;
    }
    p.mark = ev.start_mark;
    rc = on_event(&p, &ev);
    bool end = ev.type == YAML_STREAM_END_EVENT;
    yaml_event_delete(&ev);
    if (rc || end) break;
  }
  yaml_parser_delete(&p.parser);
  if (!rc) {
    *out = p.have_root ? p.root : rc__value_null();
    p.root = NULL;
  }
  discard(&p);
  return rc;
}
