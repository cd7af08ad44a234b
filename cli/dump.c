/* SPDX-License-Identifier: MIT (see LICENSE) */
/* dump.c: `reactcfg-lua --dump FILE [--format F] [--tagged]`: parses one file with the
 * engine's own parsers and prints the value as JSON, or with --tagged as the type-tagged
 * JSON of the toml-test suite, so a decoder can be checked by that suite's conventions.
 * A parse error is printed as FILE:LINE:COL: message on stderr, with exit status 1. */
#include "cli.h"
#include "internal.h"
#include "toml.h"
#include "parse.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

/* Reads all of `path` with the parsers' padding after it. NULL with errno on failure. */
static char *slurp(const char *path, size_t *len, size_t *cap) {
  FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
  if (!f) return NULL;
  rc__buf b;
  rc__buf_init(&b);
  char chunk[65536];
  size_t n;
  while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) rc__buf_add(&b, chunk, n);
  int bad = ferror(f);
  if (f != stdin) fclose(f);
  if (bad || rc__buf_reserve(&b, RC__PARSE_PADDING)) {
    rc__buf_free(&b);
    errno = bad ? EIO : ENOMEM;
    return NULL;
  }
  memset(b.p + b.n, 0, RC__PARSE_PADDING);
  *len = b.n;
  *cap = b.cap;
  return b.p;
}

int cli_dump(const char *path, const char *format, bool tagged) {
  rc__format fmt = RC__FMT_AUTO;
  if (format) {
    bool known = false;
    fmt = rc__format_from_name(format, &known);
    if (!known || fmt == RC__FMT_AUTO) {
      fprintf(stderr, "reactcfg-lua: unknown format '%s' (expected json, yaml, toml, dotenv, "
                      "text)\n", format);
      return 2;
    }
  } else {
    fmt = rc__format_from_path(path);
  }
  size_t len = 0, cap = 0;
  char *data = slurp(path, &len, &cap);
  if (!data) {
    fprintf(stderr, "%s: cannot read: %s\n", path, strerror(errno));
    return 1;
  }
  rc__parse_limits lim;
  rc__parse_limits_default(&lim);
  rc_value_t *v = NULL;
  rc_error err = {0};
  int rc = rc__parse(fmt, data, len, cap, path, &lim, &v, &err);
  rc__free(data);
  if (rc) {
    if (err.line > 0 && err.column > 0)
      fprintf(stderr, "%s:%d:%d: %s\n", path, err.line, err.column, err.message);
    else if (err.line > 0)
      fprintf(stderr, "%s:%d: %s\n", path, err.line, err.message);
    else
      fprintf(stderr, "%s: %s\n", path, err.message);
    return 1;
  }
  rc__buf out;
  rc__buf_init(&out);
  if (tagged)
    rc__tagged_json_write(&out, v);
  else
    rc__json_write(&out, v, true, false);
  rc__value_unref(v);
  if (out.oom) {
    rc__buf_free(&out);
    fprintf(stderr, "reactcfg-lua: out of memory\n");
    return 1;
  }
  fwrite(out.p, 1, out.n, stdout);
  fputc('\n', stdout);
  rc__buf_free(&out);
  return fflush(stdout) == 0 ? 0 : 1;
}
