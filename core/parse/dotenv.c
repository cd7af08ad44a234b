/* SPDX-License-Identifier: MIT (see LICENSE) */
/* dotenv.c: `.env` files as an object of strings in file order: `KEY=value` lines, an
 * optional `export `, `#` comments, single quotes (literal) and double quotes (escapes,
 * may span lines); a duplicate key keeps its first position and takes the last value.
 * The file must be UTF-8 without NUL bytes (values are strings: they are not turned into
 * U+FFFD on the way), and keys and values are bounded by the string limit. */
#include "parse.h"

#include <stdio.h>
#include <string.h>

/* There is deliberately no variable expansion: `$HOME` and `${HOME}` stay as written, so
 * a value never depends on the environment of whoever reads the file (the env source is
 * the way to read the environment). Backquotes are not special either. */

typedef struct dp {
  const char *s;
  size_t n;
  const char *file;
  rc_error *err;
} dp;

static int fail(const dp *p, int code, size_t off, const char *fmt, ...) RC__PRINTF(4, 5);
static int fail(const dp *p, int code, size_t off, const char *fmt, ...) {
  int line, col;
  rc__text_position(p->s, off, &line, &col);
  va_list ap;
  va_start(ap, fmt);
  rc__verr(p->err, code, p->file, line, col, fmt, ap);
  va_end(ap);
  return code;
}

/* A character as it should appear in a message. */
static const char *show(unsigned char c, char buf[8]) {
  if (c >= 0x20 && c < 0x7F)
    snprintf(buf, 8, "'%c'", c);
  else
    snprintf(buf, 8, "0x%02X", c);
  return buf;
}

static bool key_start(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
}
static bool key_char(unsigned char c) {
  return key_start(c) || (c >= '0' && c <= '9') || c == '.' || c == '-';
}
static bool blank(char c) { return c == ' ' || c == '\t'; }

/* At a line end (LF, CRLF or end of input)? */
static bool at_eol(const dp *p, size_t i) {
  return i >= p->n || p->s[i] == '\n' || (p->s[i] == '\r' && i + 1 < p->n && p->s[i + 1] == '\n');
}

static size_t skip_blanks(const dp *p, size_t i) {
  while (i < p->n && blank(p->s[i])) i++;
  return i;
}

/* Double-quoted value starting at the quote `q`; appends it to `val`, returns the index
 * after the closing quote or 0 with the error filled. CRLF inside becomes LF, like the
 * line endings themselves. Unknown escapes are kept as written (backslash included). */
static size_t double_quoted(const dp *p, size_t q, rc__buf *val, int *rc) {
  const char *s = p->s;
  size_t i = q + 1, run = i;
  for (;;) {
    if (i >= p->n) {
      int line, col;
      rc__text_position(s, q, &line, &col);
      *rc = fail(p, RC_EPARSE, p->n, "unterminated double-quoted value (opened at line %d)",
                 line);
      return 0;
    }
    char c = s[i];
    if (c == '"') break;
    if (c == '\\' && i + 1 < p->n) {
      char e = s[i + 1], out;
      switch (e) {
      case 'n': out = '\n'; break;
      case 'r': out = '\r'; break;
      case 't': out = '\t'; break;
      case '"': case '\\': case '$': out = e; break;
      default: i += 2; continue; /* kept verbatim by the run */
      }
      rc__buf_add(val, s + run, i - run);
      rc__buf_addc(val, out);
      i += 2;
      run = i;
    } else if (c == '\r' && i + 1 < p->n && s[i + 1] == '\n') {
      rc__buf_add(val, s + run, i - run);
      i++;
      run = i;
    } else {
      i++;
    }
  }
  rc__buf_add(val, s + run, i - run);
  return i + 1;
}

int rc__parse_dotenv(const char *data, size_t len, const char *file,
                     const rc__parse_limits *lim, rc_value_t **out, rc_error *err) {
  rc__parse_limits def;
  if (!lim) {
    rc__parse_limits_default(&def);
    lim = &def;
  }
  *out = NULL;
  dp p = {data, len, file, err};
  if (len > lim->max_bytes)
    return fail(&p, RC_ELIMIT, 0, "input is %zu bytes, more than the limit of %zu bytes",
                len, lim->max_bytes);
  const char *s = data;
  size_t i = 0, entries = 0;
  if (len >= 3 && memcmp(s, "\xEF\xBB\xBF", 3) == 0) i = 3; /* UTF-8 byte order mark */
  const char *nul = memchr(s, '\0', len);
  size_t bad = rc__utf8_invalid(s, nul ? (size_t)(nul - s) : len);
  if (nul && bad == (size_t)(nul - s))
    return fail(&p, RC_EPARSE, bad, "NUL byte (0x00): a dotenv file is text");
  if (bad < len)
    return fail(&p, RC_EPARSE, bad, "invalid UTF-8 (byte 0x%02X); dotenv files must be UTF-8",
                (unsigned char)s[bad]);
  rc__object_builder ob;
  rc__object_begin(&ob);
  rc__buf val;
  rc__buf_init(&val);
  int rc = 0;
  char cb[8];
  while (i < len) {
    i = skip_blanks(&p, i);
    if (at_eol(&p, i) || s[i] == '#') { /* blank line or comment */
      while (i < len && s[i] != '\n') i++;
      i++;
      continue;
    }
    if (len - i > 6 && memcmp(s + i, "export", 6) == 0 && blank(s[i + 6])) {
      size_t k = skip_blanks(&p, i + 6);
      if (k < len && key_start((unsigned char)s[k])) i = k; /* else the key is "export" */
    }
    if (!key_start((unsigned char)s[i])) {
      rc = fail(&p, RC_EPARSE, i, "invalid key: keys start with a letter or '_', not %s",
                show((unsigned char)s[i], cb));
      break;
    }
    size_t k0 = i;
    while (i < len && key_char((unsigned char)s[i])) i++;
    size_t klen = i - k0;
    int kshow = klen > 64 ? 64 : (int)klen;
    if (klen > lim->max_string) {
      rc = fail(&p, RC_ELIMIT, k0, "key '%.*s...' is %zu bytes, more than the limit of %zu "
                "bytes", kshow, s + k0, klen, lim->max_string);
      break;
    }
    if (!at_eol(&p, i) && !blank(s[i]) && s[i] != '=') {
      rc = fail(&p, RC_EPARSE, i, "invalid character %s in key '%.*s'",
                show((unsigned char)s[i], cb), kshow, s + k0);
      break;
    }
    i = skip_blanks(&p, i);
    if (i >= len || s[i] != '=') {
      rc = fail(&p, RC_EPARSE, i, "expected '=' after key '%.*s'", kshow, s + k0);
      break;
    }
    i = skip_blanks(&p, i + 1);
    rc__buf_reset(&val);
    size_t vstart = i;
    if (i < len && (s[i] == '"' || s[i] == '\'')) {
      if (s[i] == '"') {
        i = double_quoted(&p, i, &val, &rc);
        if (!i) break;
      } else {
        size_t q = i++;
        while (i < len && s[i] != '\'' && s[i] != '\n') i++;
        if (i >= len || s[i] != '\'') {
          rc = fail(&p, RC_EPARSE, q,
                    "unterminated single-quoted value (single quotes cannot span lines)");
          break;
        }
        rc__buf_add(&val, s + q + 1, i - q - 1);
        i++;
      }
      i = skip_blanks(&p, i);
      if (i < len && s[i] == '#') {
        while (i < len && s[i] != '\n') i++;
      } else if (!at_eol(&p, i)) {
        rc = fail(&p, RC_EPARSE, i, "unexpected %s after the closing quote of '%.*s'",
                  show((unsigned char)s[i], cb), kshow, s + k0);
        break;
      }
    } else {
      /* Unquoted: up to the line end or a '#' that follows a blank, trimmed. */
      size_t end = i;
      while (end < len && s[end] != '\n') {
        if (s[end] == '#' && blank(s[end - 1])) break;
        end++;
      }
      size_t e = end;
      while (e > i && (blank(s[e - 1]) || s[e - 1] == '\r')) e--;
      rc__buf_add(&val, s + i, e - i);
      i = end;
      while (i < len && s[i] != '\n') i++;
    }
    if (val.n > lim->max_string) {
      rc = fail(&p, RC_ELIMIT, vstart,
                "value of '%.*s' is %zu bytes, more than the limit of %zu bytes", kshow,
                s + k0, val.n, lim->max_string);
      break;
    }
    if (++entries > lim->max_nodes) {
      rc = fail(&p, RC_ELIMIT, k0, "more than %zu entries", lim->max_nodes);
      break;
    }
    rc__object_put(&ob, s + k0, klen, rc__value_string(val.p ? val.p : "", val.n));
    if (ob.oom || val.oom) {
      rc = rc__err(err, RC_ENOMEM, file, 0, 0, "out of memory reading dotenv");
      break;
    }
    i++; /* the newline */
  }
  rc__buf_free(&val);
  if (rc) {
    rc__object_abort(&ob);
    return rc;
  }
  *out = rc__object_end(&ob);
  if (!*out) return rc__err(err, RC_ENOMEM, file, 0, 0, "out of memory reading dotenv");
  return 0;
}
