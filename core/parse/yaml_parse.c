/* SPDX-License-Identifier: MIT (see LICENSE) */
/* yaml_parse.c: YAML 1.2 bytes -> value tree, built from libfyaml's parse events, with
 * errors that carry file, line, column and a sentence, within the limits of
 * rc__parse_limits.
 *
 * The rules, in the order a reader meets them:
 * - YAML 1.2, as libfyaml reads it (it is built against the YAML test suite). A
 *   `%YAML 1.1` directive is accepted (libfyaml then reads 1.1 syntax) but the schema
 *   stays the 1.2 core schema below; `%YAML 1.3` (libfyaml's experimental mode) and any
 *   other version are errors.
 * - Exactly one document. A stream with no document (empty, or only comments) is null;
 *   a second document is an error naming its line. A configuration file is one value,
 *   and quietly using the first document would hide whatever was edited in the others.
 * - UTF-8 only. The whole input is checked before libfyaml sees it (exact positions,
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
 * - Mapping keys are scalars (a sequence or mapping as a key, YAML's "complex keys", is
 *   an error); a scalar that is not a string becomes its text as written (`1: a` has the
 *   key "1", `0x1F: b` the key "0x1F"). A key written twice, `<<` included, is an error.
 *   An implicit key (no `?`) longer than 1024 characters is an error, as the spec says
 *   (libfyaml does not check it).
 * - Limits: input bytes, nesting depth, scalar bytes, and nodes. Nodes are counted as if
 *   every alias were expanded (an alias counts its target's nodes; the depth of its
 *   target counts where it is used), so a "billion laughs" document, cheap in memory
 *   here, is still stopped before anyone walks or prints it. Each limit is checked as
 *   its event arrives: libfyaml's event parser is iterative (no recursion, whatever the
 *   nesting) and never expands aliases, so nothing runs past a limit.
 * - Errors: libfyaml's diagnostics are collected, never printed. Its common complaints are
 *   rephrased as what was expected and what was found, naming the open collection from
 *   our own stack of frames; the rest keep libfyaml's text.
 * libfyaml 0.7 has no allocator hook: its parser, tokens and diagnostics come from malloc,
 * outside rc_set_allocator (like yajl in json_parse.cpp, a library we call); everything
 * this file allocates goes through rc__malloc. */
#include "yaml_parse.h"

#include <libfyaml.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ==== parser state ==== */

/* A place in the input: 1-based line and column (columns count characters). */
typedef struct ymark {
  int line, col;
} ymark;

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
  bool flow;             /* written [ ] or { } */
  uint8_t want;          /* maps: what the next node is */
  rc__array_builder ab;
  rc__object_builder ob;
  ymark start;
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

/* What libfyaml printed instead of collecting (a few complaints bypass collection). */
typedef struct diag_out {
  char text[200];
  bool have;
} diag_out;

typedef struct yp {
  const char *s;         /* the input, after a UTF-8 byte order mark */
  size_t n;
  const char *file;
  const rc__parse_limits *lim;
  rc_error *err;
  struct fy_parser *parser;
  struct fy_diag *diag;
  rc__buf text;          /* the text of the single-quoted scalar being handled */
  diag_out out;
  ymark mark;            /* start of the event being handled (for OOM messages) */
  ymark last;            /* where the previous event ended: for events without a mark */
  size_t last_pos;       /* ... as a byte offset */
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
  bool doc_pending;      /* a second document began without '---': report at its node */
  bool have_root;
  rc_value_t *root;
} yp;

/* ==== positions and errors ==== */

/* Is s[i] the start of a line break in YAML 1.2 (LF, CR, CRLF; NEL, LS and PS are not
 * breaks in 1.2, and libfyaml does not count them)? Returns its length in bytes, or 0. */
static size_t line_break(const char *s, size_t n, size_t i) {
  if (s[i] == '\n') return 1;
  if (s[i] == '\r') return i + 1 < n && s[i + 1] == '\n' ? 2 : 1;
  return 0;
}

/* 1-based line and column of byte `off`, counted as libfyaml counts its marks (columns
 * in characters, a tab is one), so positions we compute and positions it reports agree. */
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

/* The byte offset of 1-based `line` and `col` (the inverse of position()); n when the
 * place is at or past the end. */
static size_t offset_of(const char *s, size_t n, int line, int col) {
  size_t i = 0;
  for (int l = 1; l < line && i < n;) {
    size_t b = line_break(s, n, i);
    if (b) {
      l++;
      i += b;
    } else {
      i++;
    }
  }
  for (int c = 1; c < col && i < n && !line_break(s, n, i); c++) {
    i++;
    while (i < n && ((unsigned char)s[i] & 0xC0) == 0x80) i++;
  }
  return i;
}

/* The end of the input as a place: after its last character. */
static ymark end_mark(const yp *p) {
  ymark m;
  position(p->s, p->n, p->n, &m.line, &m.col);
  return m;
}

/* libfyaml's marks count from 0; ours from 1. */
static ymark from_fy(const struct fy_mark *fm) {
  ymark m = {fm->line >= INT32_MAX ? INT32_MAX : fm->line + 1,
             fm->column >= INT32_MAX ? INT32_MAX : fm->column + 1};
  return m;
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

#define FAIL_AT(p, code, m, ...) fail(p, code, (m)->line, (m)->col, __VA_ARGS__)

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

static frame *top(yp *p) { return p->nfr ? &p->fr[p->nfr - 1] : NULL; }

/* The innermost open flow collection, or NULL. */
static const frame *innermost_flow(const yp *p) {
  for (size_t k = p->nfr; k > 0; k--)
    if (p->fr[k - 1].flow) return &p->fr[k - 1];
  return NULL;
}

static bool starts(const char *s, const char *prefix) {
  return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* Where a `%YAML` directive is written (libfyaml reports a bad version without a place):
 * the first line that starts with it, else the start of the file. */
static ymark directive_mark(const yp *p) {
  for (size_t i = 0; i + 5 <= p->n; i++) {
    if ((i == 0 || line_break(p->s, p->n, i - 1)) && !memcmp(p->s + i, "%YAML", 5)) {
      ymark m;
      position(p->s, p->n, i, &m.line, &m.col);
      return m;
    }
  }
  return (ymark){1, 1};
}

/* Keeps the first complaint libfyaml prints instead of collecting it, without the
 * "[ERR]: " it puts in front and the line break at the end. */
static void diag_output(struct fy_diag *diag, void *user, const char *buf, size_t len) {
  (void)diag;
  diag_out *o = user;
  if (o->have) return;
  const char *tag = memchr(buf, ']', len < 16 ? len : 16);
  if (buf[0] == '[' && tag && (size_t)(tag - buf) + 2 <= len && tag[1] == ':') {
    len -= (size_t)(tag - buf) + 2;
    buf = tag + 2;
  }
  while (len && (buf[0] == ' ')) buf++, len--;
  while (len && (buf[len - 1] == '\n' || buf[len - 1] == ' ')) len--;
  snprintf(o->text, sizeof o->text, "%.*s", (int)len, buf);
  o->have = true;
}

/* libfyaml's text, with its misspellings corrected. */
static void clean_message(const char *msg, char *out, size_t cap) {
  static const char *const fixes[][2] = {{"indendation", "indentation"},
                                         {"seperator", "separator"},
                                         {"unsupport ", "unsupported "},
                                         {"expresion", "expression"}};
  size_t k = 0;
  while (*msg && k + 1 < cap) {
    bool fixed = false;
    for (size_t f = 0; f < sizeof fixes / sizeof fixes[0] && !fixed; f++) {
      size_t fl = strlen(fixes[f][0]), tl = strlen(fixes[f][1]);
      if (!strncmp(msg, fixes[f][0], fl) && k + tl + 1 < cap) {
        memcpy(out + k, fixes[f][1], tl);
        k += tl;
        msg += fl;
        fixed = true;
      }
    }
    if (!fixed) out[k++] = *msg++;
  }
  out[k] = '\0';
}

/* Turns libfyaml's complaint into our error. The common ones are rephrased as what was
 * expected and what was found, naming the open collection (from our frames) with the line
 * where it started; the rest keep libfyaml's text, with the collection as context. */
static int libfyaml_error(yp *p) {
  const char *msg = NULL;
  int line = 0, col = 0;
  void *it = NULL;
  struct fy_diag_error *de;
  while ((de = fy_diag_errors_iterate(p->diag, &it)) != NULL) {
    if (de->type >= FYET_ERROR && de->msg) {
      msg = de->msg;
      line = de->line;
      col = de->column;
      break;
    }
  }
  if (!msg && p->out.have) msg = p->out.text;
  if (!msg) msg = "malformed YAML";
  if (strstr(msg, "malloc() failed") || strstr(msg, "realloc() failed") ||
      strstr(msg, "strdup() failed"))
    return oom(p);
  /* The place: libfyaml's, but at the end of the input it reports a line after the last
   * one when the file does not end with a line break; a person looks after the last
   * character. Without a place, where we are. */
  size_t off;
  if (line > 0 && col > 0) {
    off = offset_of(p->s, p->n, line, col);
  } else {
    ymark m = starts(msg, "unsupport") ? directive_mark(p) : p->last;
    line = m.line;
    col = m.col;
    off = offset_of(p->s, p->n, line, col);
  }
  if (off >= p->n) {
    ymark e = end_mark(p);
    line = e.line;
    col = e.col;
  }
  char fbuf[32];
  const char *found = show_found(p, off, fbuf);
  const frame *f = top(p);
  const frame *root = p->nfr ? &p->fr[0] : NULL;
  const frame *fl = innermost_flow(p);
  /* the document is complete, or this is left of where its top-level block collection
   * started: a second top-level value */
  bool outdented = off < p->n && ((p->have_root && !p->nfr) ||
                                  (root && !root->flow && !fl && col < root->start.col));
#define AT(...) fail(p, RC_EPARSE, line, col, __VA_ARGS__)
#define END_DOC()                                                                      \
  AT("expected the end of the document, found %s (a YAML file holds one top-level "   \
     "value; check the indentation)", found)
#define MAP_VALUES()                                                                   \
  AT("mapping values are not allowed here (quote a value that contains ': ', or check " \
     "the indentation)")
  if (!strcmp(msg, "invalid nested block mapping on the same line") ||
      starts(msg, "invalid multiline ") ||
      !strcmp(msg, "invalid mapping key (not allowed in this context)"))
    return MAP_VALUES();
  if (outdented) return END_DOC();
  if (!strcmp(msg, "invalid mapping in plain multiline")) return MAP_VALUES();
  if (!strcmp(msg, "invalid indentation in mapping") ||
      !strcmp(msg, "did not find expected key") ||
      starts(msg, "wrong indendation in sequence while in mapping")) {
    if (f && f->map && !f->flow)
      return AT("expected a key aligned with the mapping that started at line %d, column "
                "%d, found %s (check the indentation)", f->start.line, f->start.col, found);
  }
  if (!strcmp(msg, "invalid scalar at the end of block sequence") ||
      !strcmp(msg, "did not find expected '-' indicator")) {
    if (f && !f->map && !f->flow)
      return AT("expected '-' for the next item of the sequence that started at line %d, "
                "column %d, found %s (check the indentation)", f->start.line, f->start.col,
                found);
  }
  if (starts(msg, "flow ") && strstr(msg, "with invalid extra closing")) {
    if (f && f->map && !f->flow && f->want != WANT_KEY)
      return AT("expected a value, found %s", found);
    if (f && f->map && !f->flow)
      return AT("expected a key aligned with the mapping that started at line %d, column "
                "%d, found %s (check the indentation)", f->start.line, f->start.col, found);
    if (f && !f->map && !f->flow)
      return AT("expected '-' for the next item of the sequence that started at line %d, "
                "column %d, found %s (check the indentation)", f->start.line, f->start.col,
                found);
    return AT("found %s, which closes nothing (quote the value)", found);
  }
  if (fl && (!strcmp(msg, "flow sequence without a closing bracket") ||
             starts(msg, "missing comma in flow ") ||
             starts(msg, "flow sequence with invalid"))) {
    bool empty = (fl->map ? fl->ob.n : fl->ab.n) == 0 && fl == f && f->want == WANT_KEY;
    if (off >= p->n && empty)
      return AT("expected a value, found the end of the file");
    return AT("expected ',' or '%c' in the flow %s that started at line %d, column %d, "
              "found %s", fl->map ? '}' : ']', fl->map ? "mapping" : "sequence",
              fl->start.line, fl->start.col, found);
  }
  if (strstr(msg, "scalar without closing quote")) {
    /* libfyaml places it just after the opening quote */
    size_t q = off > p->n ? p->n : off;
    if (q > 0) q--;
    while (q > 0 && p->s[q] != '"' && p->s[q] != '\'' && !line_break(p->s, p->n, q - 1))
      q--;
    int ql, qc;
    position(p->s, p->n, q, &ql, &qc);
    ymark e = end_mark(p);
    return fail(p, RC_EPARSE, e.line, e.col,
                "unterminated quoted string (it opened at line %d, column %d)", ql, qc);
  }
  if (strstr(msg, "tab character may not be used as indentation") ||
      starts(msg, "invalid tab ") || starts(msg, "cannot use tab for indentation"))
    return AT("found a tab where YAML expects indentation or a value: indent with spaces");
  if (starts(msg, "invalid escape '")) {
    const char *q = msg + strlen("invalid escape '");
    if (q[0] > 0x20 && q[0] < 0x7F && q[1] == '\'')
      return AT("unknown escape '\\%c' in a double-quoted string", q[0]);
    return AT("unknown escape in a double-quoted string");
  }
  if (starts(msg, "plain scalar cannot start with '"))
    return AT("found %s, which cannot start a YAML value (quote the value)", found);
  if (starts(msg, "block sequence") ||
      starts(msg, "illegal block sequence on the same line"))
    return AT("a '-' sequence cannot start here (start it on a new line, or quote the "
              "value)");
  if (starts(msg, "invalid comment"))
    return AT("a comment needs a space or tab before its '#' (add one, or quote the "
              "value)");
  if (!strcmp(msg, "invalid anchor detected"))
    return AT("expected an anchor name after '&'");
  if (!strcmp(msg, "invalid alias detected"))
    return AT("expected an alias name after '*'");
  if (starts(msg, "undefined tag prefix")) {
    size_t e = off + 1;
    while (e < p->n && e - off < 40 && p->s[e] != '!' && p->s[e] != ' ' &&
           !line_break(p->s, p->n, e))
      e++;
    if (e < p->n && p->s[e] == '!' && off < p->n && p->s[off] == '!')
      return AT("undefined tag handle '%.*s' (declare it with a %%TAG directive)",
                (int)(e + 1 - off), p->s + off);
    return AT("undefined tag handle (declare it with a %%TAG directive)");
  }
  if (starts(msg, "unsupport version number ")) {
    const char *v = msg + strlen("unsupport version number ");
    size_t vl = strspn(v, "0123456789.");
    return AT("unsupported YAML version %.*s (reactcfg reads YAML 1.2, and 1.1 syntax)",
              (int)(vl < 20 ? vl : 20), v);
  }
  char clean[200];
  clean_message(msg, clean, sizeof clean);
  if (f)
    return AT("%s (in the %s that started at line %d, column %d)", clean,
              f->map ? "mapping" : "sequence", f->start.line, f->start.col);
  return AT("%s", clean);
#undef AT
#undef END_DOC
#undef MAP_VALUES
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

/* Rejects what libfyaml should not see: UTF-16/32, invalid UTF-8, forbidden characters. */
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


/* The core schema's floats, including `[-+]?.inf` and `.nan` in their three spellings.
 * libfyaml's text is not NUL-terminated: strtod reads a copy. False with *nomem set when
 * that copy could not be made. */
static bool float_form(const char *s, size_t n, double *d, bool *nomem) {
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
  *d = rc__strntod_c(s, n, nomem);
  /* beyond the double range: +-inf, as IEEE reading rounds it */
  return !*nomem;
}

/* The scalar kinds worth checking for: anything else in plain style is a string. */
static bool may_be_special(const char *s, size_t n) {
  if (n == 0) return true;
  char c = s[0];
  return is_digit(c) || c == '-' || c == '+' || c == '.' || c == '~' || c == 'n' ||
         c == 'N' || c == 't' || c == 'T' || c == 'f' || c == 'F';
}

/* The value of a scalar with text s[0..n): the core schema for untagged plain scalars,
 * strings for the other styles, and the tag's kind when it has one. NULL with the error
 * filled in (RC_ENOMEM included). `m` is where the node starts. */
static rc_value_t *scalar_value(yp *p, const char *s, size_t n, bool plain,
                                const char *tag, const ymark *m, int *rc) {
  rc_value_t *v = NULL;
  char tb[80], vb[80];
  int64_t i;
  double d;
  bool b, nomem = false;
  if (!tag) {
    if (!plain || !may_be_special(s, n)) {
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
      v = k ? rc__value_int(i) : float_form(s, n, &d, &nomem) ? rc__value_float(d)
                                 : nomem ? NULL : rc__value_string(s, n);
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
    if (float_form(s, n, &d, &nomem)) {
      v = rc__value_float(d);
    } else if (nomem) {
      v = NULL;
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
  if (RC__GROW(p->an, p->capan, p->nan + 1, 16)) return -1;
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

/* Counts `add` more nodes (1 for a node, the target's count for an alias) against
 * max_nodes. The count saturates, so a limit of SIZE_MAX is no limit. */
static int check_nodes(yp *p, size_t add, const ymark *m, bool alias) {
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
static int add_value(yp *p, rc_value_t *v, uint32_t height, const ymark *m) {
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
static int add_key(yp *p, const char *s, size_t n, const ymark *m) {
  frame *f = top(p);
  if (n > p->lim->max_string)
    return FAIL_AT(p, RC_ELIMIT, m, "key longer than the limit of %zu bytes",
                   p->lim->max_string);
  if (RC__GROW(p->kr, p->capkr, p->nkr + 1, 64)) return oom(p);
  /* The builder needs a pointer even for an empty key, so the arena always has a byte. */
  size_t off = p->keys.n;
  rc__buf_add(&p->keys, s, n);
  rc__buf_addc(&p->keys, '\0');
  if (p->keys.oom) return oom(p);
  p->kr[p->nkr++] = (keyrec){off, n, m->line, m->col};
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

/* ==== events ==== */

/* The properties of a node event: its resolved tag and anchor name (NULL when absent;
 * both live as long as the event), and where the node starts (its first property, else
 * its content; an empty node has no place of its own: where the last event ended). */
typedef struct props {
  const char *tag;
  const char *anchor;
  bool placed;           /* false for an empty node without properties */
  size_t pos;            /* byte offset of `m` when placed */
  ymark m;
} props;

/* Where a block scalar starts: its '|' or '>' indicator. libfyaml's token starts at the
 * line after the header, so the header is the line before `pos`: the indicator is the
 * first '|' or '>' on it that follows a blank (or starts the line) and is followed only
 * by indentation and chomping indicators, blanks and perhaps a comment. False when it
 * cannot be found (the token's own place is used then). *col is the indicator's column. */
static bool block_header(const yp *p, size_t pos, size_t *at, int *col) {
  if (pos > p->n) return false;
  size_t le = pos, ls;
  if (le > 0 && p->s[le - 1] == '\n') le--;
  if (le > 0 && p->s[le - 1] == '\r') le--;
  for (ls = le; ls > 0 && p->s[ls - 1] != '\n' && p->s[ls - 1] != '\r'; ls--) {}
  for (size_t i = ls; i < le; i++) {
    char c = p->s[i];
    if ((c != '|' && c != '>') || (i > ls && p->s[i - 1] != ' ' && p->s[i - 1] != '\t'))
      continue;
    size_t k = i + 1;
    while (k < le && k < i + 3 && ((p->s[k] >= '1' && p->s[k] <= '9') || p->s[k] == '+' ||
                                   p->s[k] == '-'))
      k++;
    if (k < le && p->s[k] != ' ' && p->s[k] != '\t') continue;
    while (k < le && (p->s[k] == ' ' || p->s[k] == '\t')) k++;
    if (k < le && p->s[k] != '#') continue;
    *at = i;
    int line;
    position(p->s + ls, le - ls, i - ls, &line, col);
    return true;
  }
  return false;
}

/* Considers token `t` for the start of a node. Alias tokens start at the name, after
 * '*', and quoted scalars after their quote: `indicator` is the character to step back
 * over. */
static void consider(const yp *p, props *pr, struct fy_token *t, char indicator,
                     bool block) {
  const struct fy_mark *fm = t ? fy_token_start_mark(t) : NULL;
  if (!fm) return;
  size_t pos = fm->input_pos;
  ymark m = from_fy(fm);
  if (indicator && pos > 0 && pos <= p->n && p->s[pos - 1] == indicator) {
    pos--;
    m.col--;
  }
  if (block) {
    size_t at;
    int col;
    if (block_header(p, pos, &at, &col)) {
      /* the header is on the line before the content, unless the content is empty and
       * the header ends the file */
      bool before = pos > 0 && (p->s[pos - 1] == '\n' || p->s[pos - 1] == '\r');
      m = (ymark){before ? m.line - 1 : m.line, col};
      pos = at;
    }
  }
  if (!pr->placed || pos < pr->pos) {
    pr->placed = true;
    pr->pos = pos;
    pr->m = m;
  }
}

/* An empty key has no place in libfyaml's events: it is where its ':' is, the first thing
 * after the previous event that is not a blank, a line break, a comment, or in a flow
 * mapping the ',' before it. */
static ymark empty_key_mark(const yp *p, bool flow) {
  ymark m = p->last;
  size_t i = p->last_pos;
  while (i < p->n) {
    size_t b = line_break(p->s, p->n, i);
    if (b) {
      m.line++;
      m.col = 1;
      i += b;
    } else if (p->s[i] == ' ' || p->s[i] == '\t' || (flow && p->s[i] == ',')) {
      m.col++;
      i++;
    } else if (p->s[i] == '#' && (i == 0 || p->s[i - 1] == ' ' || p->s[i - 1] == '\t' ||
                                  line_break(p->s, p->n, i - 1))) {
      while (i < p->n && !line_break(p->s, p->n, i)) i++;
    } else {
      break;
    }
  }
  return m;
}

static int node_props(yp *p, struct fy_event *e, props *pr) {
  struct fy_token *at = fy_event_get_anchor_token(e), *tt = fy_event_get_tag_token(e),
                  *mt = fy_event_get_token(e);
  enum fy_scalar_style style = e->type == FYET_SCALAR && mt ? fy_token_scalar_style(mt)
                                                             : FYSS_PLAIN;
  bool block = style == FYSS_LITERAL || style == FYSS_FOLDED;
  char quote = style == FYSS_SINGLE_QUOTED ? '\'' : style == FYSS_DOUBLE_QUOTED ? '"' : 0;
  *pr = (props){.m = p->last};
  consider(p, pr, at, 0, false);
  consider(p, pr, tt, 0, false);
  consider(p, pr, mt, quote, block);
  const frame *f = p->nfr ? &p->fr[p->nfr - 1] : NULL;
  if (!pr->placed && f && f->map && f->want == WANT_KEY) pr->m = empty_key_mark(p, f->flow);
  p->mark = pr->m;
  pr->tag = tt ? fy_token_get_text0(tt) : NULL;
  pr->anchor = at ? fy_token_get_text0(at) : NULL;
  if ((tt && !pr->tag) || (at && !pr->anchor)) return oom(p);
  return 0;
}

/* YAML allows at most 1024 characters for an implicit key (one without '?'); libfyaml
 * does not check it. `start` is where the key's node starts, `end` where its text ends. */
static int check_key_length(yp *p, const props *pr, const struct fy_mark *end) {
  if (!pr->placed || !end || end->input_pos <= pr->pos ||
      end->input_pos - pr->pos <= 1024 || end->input_pos > p->n)
    return 0;
  size_t chars = 0;
  for (size_t k = pr->pos; k < end->input_pos; k++)
    chars += ((unsigned char)p->s[k] & 0xC0) != 0x80;
  if (chars <= 1024) return 0;
  size_t k = pr->pos;
  while (k > 0 && (p->s[k - 1] == ' ' || p->s[k - 1] == '\t' || p->s[k - 1] == '\n' ||
                   p->s[k - 1] == '\r'))
    k--;
  if (k > 0 && p->s[k - 1] == '?') return 0; /* explicit */
  ymark m = from_fy(end);
  return FAIL_AT(p, RC_EPARSE, &m,
                 "a key longer than 1024 characters must be written as an explicit key "
                 "('? key' on one line, ': value' on the next)");
}

/* The value of a single-quoted scalar whose text starts at byte `pos` (after the opening
 * quote), into p->text: '' is a quote; a line break folds (blanks around it dropped; one
 * break is a space, n breaks are n-1 newlines). libfyaml has already checked the syntax.
 * Ours, not fy_token_get_text(): in libfyaml 0.7.12 that leaks a 4 KiB buffer for a run
 * of five or more '' (found by the fuzzer, kept in fuzz/regressions/yaml/). */
static const char *single_quoted(yp *p, size_t pos, size_t *n) {
  rc__buf *b = &p->text;
  rc__buf_reset(b);
  rc__buf_reserve(b, 64);
  size_t keep = 0; /* output length without the blanks that end the current line */
  for (size_t i = pos; i < p->n;) {
    char c = p->s[i];
    if (c == '\'') {
      if (i + 1 >= p->n || p->s[i + 1] != '\'') break;
      rc__buf_addc(b, '\'');
      keep = b->n;
      i += 2;
    } else if (line_break(p->s, p->n, i)) {
      b->n = keep;
      size_t breaks = 0;
      for (;;) {
        size_t lb = line_break(p->s, p->n, i);
        if (lb) {
          breaks++;
          i += lb;
        } else if (i < p->n && (p->s[i] == ' ' || p->s[i] == '\t')) {
          i++;
        } else {
          break;
        }
      }
      if (breaks == 1) rc__buf_addc(b, ' ');
      for (size_t k = 1; k < breaks; k++) rc__buf_addc(b, '\n');
      keep = b->n;
    } else {
      rc__buf_addc(b, c);
      if (c != ' ' && c != '\t') keep = b->n;
      i++;
    }
  }
  if (b->oom) return NULL;
  *n = b->n;
  return b->p;
}

/* The text of scalar token `t` with style `style`; NULL on OOM. */
static const char *scalar_text(yp *p, struct fy_token *t, enum fy_scalar_style style,
                               size_t *n) {
  const struct fy_mark *fm = fy_token_start_mark(t);
  if (style == FYSS_SINGLE_QUOTED && fm && fm->input_pos <= p->n)
    return single_quoted(p, fm->input_pos, n);
  return fy_token_get_text(t, n);
}

/* A scalar: a key (or the merge key `<<`) when a mapping waits for one, else a value. */
static int on_scalar(yp *p, struct fy_event *e) {
  props pr;
  int rc = node_props(p, e, &pr);
  if (rc) return rc;
  struct fy_token *vt = e->scalar.value;
  size_t n = 0;
  enum fy_scalar_style style = vt ? fy_token_scalar_style(vt) : FYSS_PLAIN;
  const char *s = vt ? scalar_text(p, vt, style, &n) : "";
  if (!s) return oom(p);
  bool plain = style == FYSS_PLAIN;
  const char *tag = pr.tag, *anchor_name = pr.anchor;
  const ymark *m = &pr.m;
  frame *f = top(p);
  if (f && f->map && f->want == WANT_KEY) {
    if ((plain && !tag && n == 2 && !memcmp(s, "<<", 2)) ||
        (tag && !strcmp(tag, YAML_TAG_PREFIX "merge"))) {
      if (f->merge_line)
        return FAIL_AT(p, RC_EPARSE, m, "duplicate key '<<' (first at line %d)",
                       f->merge_line);
      f->merge_line = m->line;
      f->want = WANT_MERGE;
      return 0;
    }
    if ((rc = check_key_length(p, &pr, vt ? fy_token_end_mark(vt) : NULL))) return rc;
    /* Untagged keys need no value; tagged ones are checked, anchored ones kept. */
    if (tag || anchor_name) {
      rc_value_t *v = scalar_value(p, s, n, plain, tag, m, &rc);
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
  rc_value_t *v = scalar_value(p, s, n, plain, tag, m, &rc);
  if (!v) return rc;
  if (anchor_name && (rc = register_scalar_anchor(p, anchor_name, v, s, n))) {
    rc__value_unref(v);
    return rc;
  }
  return add_value(p, v, 0, m);
}

/* An alias: a reference to the anchored value, counted and measured as if expanded; as
 * a key, the anchored scalar's text. */
static int on_alias(yp *p, struct fy_event *e) {
  props pr = {.m = p->last};
  consider(p, &pr, e->alias.anchor, '*', false);
  const ymark *m = &pr.m;
  p->mark = pr.m;
  const char *name = e->alias.anchor ? fy_token_get_text0(e->alias.anchor) : NULL;
  if (!name) return oom(p);
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
static int on_start(yp *p, struct fy_event *e, bool map) {
  props pr;
  int rc = node_props(p, e, &pr);
  if (rc) return rc;
  const char *tag = pr.tag, *anchor_name = pr.anchor;
  const ymark *m = &pr.m;
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
  if ((rc = check_nodes(p, 1, m, false))) return rc;
  if (RC__GROW(p->fr, p->capfr, p->nfr + 1, 16)) return oom(p);
  long a = -1;
  if (anchor_name && (a = anchor_add(p, anchor_name)) < 0) return oom(p);
  f = &p->fr[p->nfr++];
  *f = (frame){.map = map, .flow = fy_event_get_node_style(e) == FYNS_FLOW,
               .want = WANT_KEY, .start = *m, .anchor = a, .nodes0 = nodes0,
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
static int on_end(yp *p) {
  frame *f = top(p);
  if (!f) return FAIL_AT(p, RC_EPARSE, &p->mark, "unbalanced end of a collection");
  rc_value_t *v;
  if (!f->map) {
    v = rc__array_end(&f->ab);
    if (!v) return oom(p);
  } else {
    if (f->want != WANT_KEY)
      return FAIL_AT(p, RC_EPARSE, &p->mark, "mapping ended after a key");
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
  ymark start = f->start;
  p->nfr--;
  return add_value(p, v, height, &start);
}

/* The start of a document: only one, in a version we read. A second one that starts
 * without '---' has no place yet: it is reported at its first node. */
static int on_document(yp *p, struct fy_event *e) {
  const struct fy_mark *fm = fy_event_start_mark(e);
  if (++p->docs > 1) {
    if (!fm) {
      p->doc_pending = true;
      return 0;
    }
    ymark m = from_fy(fm);
    return FAIL_AT(p, RC_EPARSE, &m,
                   "the file has several YAML documents; reactcfg reads exactly one "
                   "(second document at line %d)", m.line);
  }
  const struct fy_version *v = fy_document_start_event_version(e);
  if (v && !(v->major == 1 && (v->minor == 1 || v->minor == 2))) {
    ymark m = directive_mark(p);
    return FAIL_AT(p, RC_EPARSE, &m,
                   "unsupported YAML version %d.%d (reactcfg reads YAML 1.2, and 1.1 "
                   "syntax)", v->major, v->minor);
  }
  return 0;
}

static int on_event(yp *p, struct fy_event *e) {
  const struct fy_mark *fm = fy_event_start_mark(e);
  if (fm) p->mark = from_fy(fm);
  if (p->doc_pending && e->type != FYET_DOCUMENT_START) {
    ymark m = fm ? from_fy(fm) : p->last;
    return FAIL_AT(p, RC_EPARSE, &m,
                   "the file has several YAML documents; reactcfg reads exactly one "
                   "(second document at line %d)", m.line);
  }
  switch (e->type) {
  case FYET_DOCUMENT_START: return on_document(p, e);
  case FYET_SCALAR: return on_scalar(p, e);
  case FYET_ALIAS: return on_alias(p, e);
  case FYET_SEQUENCE_START: return on_start(p, e, false);
  case FYET_MAPPING_START: return on_start(p, e, true);
  case FYET_SEQUENCE_END:
  case FYET_MAPPING_END: return on_end(p);
  case FYET_NONE:
  case FYET_STREAM_START:
  case FYET_STREAM_END:
  case FYET_DOCUMENT_END: break;
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

/* libfyaml 0.7.12 (Debian 12) frees a simple key twice when a tab follows a value
 * indicator inside an explicit key ("? b:\t-": its fy_fetch_value recycles the key, then
 * fails the tab check and recycles it again), and fy_parser_destroy then crashes on the
 * corrupted list (found by scripts/fuzz yaml). A tab after ':' in a document that has an
 * explicit key indicator ('?' after a blank, a line's start or '{[,', and before a
 * blank or the end) is refused here, before libfyaml
 * sees it; spaces there are fine, and so is either feature alone. Deliberately coarse:
 * a '?' or ": <tab>" inside a quoted or block scalar counts too (docs/POLICY.md). */
static bool yaml_blank(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

/* Runs on every YAML parse: memchr for the rare bytes, not a loop over every byte. */
static int check_libfyaml_hazard(yp *p) {
  const char *s = p->s, *end = p->s + p->n, *q = s;
  bool explicit_key = false;
  while (!explicit_key && (q = memchr(q, '?', (size_t)(end - q)))) {
    explicit_key = (q == s || yaml_blank(q[-1]) || q[-1] == '{' || q[-1] == '[' ||
                    q[-1] == ',') &&
                   (q + 1 == end || yaml_blank(q[1]));
    q++;
  }
  if (!explicit_key) return 0;
  for (q = s; (q = memchr(q, ':', (size_t)(end - q))); q++) {
    const char *t = q + 1;
    while (t < end && *t == ' ') t++;
    if (t < end && *t == '\t') {
      int line, col;
      position(s, p->n, (size_t)(t - s), &line, &col);
      return fail(p, RC_EPARSE, line, col,
                  "a tab after ':' in a document with an explicit key ('?') is refused: "
                  "the YAML library mishandles it; use spaces");
    }
  }
  return 0;
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
  yp p = {.s = data + bom, .n = len - bom, .file = file, .lim = lim, .err = err,
          .mark = {1, 1}, .last = {1, 1}};
  if (len > lim->max_bytes) {
    int line, col;
    position(p.s, p.n, lim->max_bytes > bom ? lim->max_bytes - bom : 0, &line, &col);
    return fail(&p, RC_ELIMIT, line, col,
                "input is %zu bytes, more than the limit of %zu bytes", len,
                lim->max_bytes);
  }
  int rc = check_encoding(&p, data, len);
  if (rc) return rc;
  if ((rc = check_libfyaml_hazard(&p))) return rc;
  /* Diagnostics are collected for fy_error and never printed; the few libfyaml prints
   * anyway come to diag_output. */
  struct fy_diag_cfg dc;
  fy_diag_cfg_default(&dc);
  dc.fp = NULL;
  dc.output_fn = diag_output;
  dc.user = &p.out;
  dc.level = FYET_ERROR;
  dc.colorize = false;
  p.diag = fy_diag_create(&dc);
  if (!p.diag) return rc__err(err, RC_ENOMEM, file, 1, 1, "out of memory reading YAML");
  fy_diag_set_collect_errors(p.diag, true);
  struct fy_parse_cfg cfg = {
      .flags = FYPCF_QUIET | FYPCF_DEFAULT_VERSION_1_2 | FYPCF_JSON_NONE, .diag = p.diag};
  p.parser = fy_parser_create(&cfg);
  /* the input after the byte order mark: libfyaml's byte positions are then ours */
  if (!p.parser || fy_parser_set_string(p.parser, p.s, p.n) != 0) {
    fy_parser_destroy(p.parser);
    fy_diag_destroy(p.diag);
    return rc__err(err, RC_ENOMEM, file, 1, 1, "out of memory reading YAML");
  }
  rc__buf_init(&p.keys);
  rc__buf_init(&p.text);
  for (;;) {
    struct fy_event *ev = fy_parser_parse(p.parser);
    if (!ev) {
      rc = libfyaml_error(&p);
      break;
    }
    rc = on_event(&p, ev);
    const struct fy_mark *em = fy_event_end_mark(ev);
    if (em) {
      p.last = from_fy(em);
      p.last_pos = em->input_pos;
    }
    bool end = ev->type == FYET_STREAM_END;
    fy_parser_event_free(p.parser, ev);
    if (rc || end) break;
  }
  fy_parser_destroy(p.parser);
  fy_diag_destroy(p.diag);
  rc__buf_free(&p.text);
  if (!rc) {
    *out = p.have_root ? p.root : rc__value_null();
    p.root = NULL;
  }
  discard(&p);
  return rc;
}
