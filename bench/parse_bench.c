/* SPDX-License-Identifier: MIT (see LICENSE) */
/* parse_bench.c: `reactcfg-bench parse`, the parse throughput of one file in one format.
 * The file is read once into a padded buffer; after a warm-up the parse into the value
 * tree is repeated N times (each tree freed outside the timed part) and the median is
 * printed as one line (format=, bytes=, parse_ms=, mb_per_s=) that scripts can parse. */
#include "parse.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int rc_bench_parse_main(int argc, char **argv);

enum {
  TARGET_MS = 2000,       /* default N: about this long in total ... */
  MIN_ITERATIONS = 5,     /* ... but at least this many parses ... */
  MAX_ITERATIONS = 10000, /* ... and at most this many */
};

static const char *prog = "reactcfg-bench parse";

static void usage(FILE *to) {
  fprintf(to,
          "usage: reactcfg-bench parse FILE [--format json|yaml|toml|dotenv]"
          " [--iterations N]\n"
          "  Parses FILE N times (default: about 2 s worth, at least 5) after one warm-up\n"
          "  parse and prints\n"
          "    format=<f> bytes=<n> parse_ms=<median ms> mb_per_s=<bytes / 1e6 / median s>\n"
          "  The format defaults to the one the file's extension names.\n");
}

static double now_ms(void) { return (double)rc__mono_ns() / 1e6; }

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

/* Reads all of `path` into a new buffer with RC__PARSE_PADDING zero bytes after the
 * content, as the engine's file reader does. Returns 0, or -1 with a message printed. */
static int slurp(const char *path, char **data, size_t *len, size_t *cap) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    fprintf(stderr, "%s: %s: %s\n", prog, path, strerror(errno));
    return -1;
  }
  size_t n = 0, c = 1 << 16;
  char *p = malloc(c);
  for (;;) {
    if (!p) {
      fclose(f);
      fprintf(stderr, "%s: %s: out of memory\n", prog, path);
      return -1;
    }
    n += fread(p + n, 1, c - n - RC__PARSE_PADDING, f);
    if (n < c - RC__PARSE_PADDING) break;
    char *bigger = realloc(p, c * 2);
    if (!bigger) free(p);
    p = bigger;
    c *= 2;
  }
  int bad = ferror(f);
  fclose(f);
  if (bad) {
    fprintf(stderr, "%s: %s: read error\n", prog, path);
    free(p);
    return -1;
  }
  memset(p + n, 0, RC__PARSE_PADDING);
  *data = p;
  *len = n;
  *cap = c;
  return 0;
}

/* One parse. Returns the tree, or NULL with the error printed as FILE:LINE:COL: msg. */
static rc_value_t *parse_once(rc__format fmt, const char *path, const char *data,
                              size_t len, size_t cap) {
  rc_value_t *v = NULL;
  rc_error err;
  memset(&err, 0, sizeof err);
  int rc = rc__parse(fmt, data, len, cap, path, NULL, &v, &err);
  if (rc) {
    fprintf(stderr, "%s: %s:%d:%d: %s (%s)\n", prog, path, err.line, err.column,
            err.message, rc_err_name(rc));
    return NULL;
  }
  return v;
}

/* `argv` holds the arguments after the subcommand name (reactcfg_bench.c's dispatch
 * table). Returns 0 after printing the result line, or 1 with a message on stderr when
 * the arguments are wrong or the file cannot be read or parsed. */
int rc_bench_parse_main(int argc, char **argv) {
  const char *path = NULL, *fmt_name = NULL;
  long iterations = 0;
  for (int i = 0; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
      usage(stdout);
      return 0;
    } else if (strcmp(a, "--format") == 0 && i + 1 < argc) {
      fmt_name = argv[++i];
    } else if (strcmp(a, "--iterations") == 0 && i + 1 < argc) {
      char *end;
      errno = 0;
      iterations = strtol(argv[++i], &end, 10);
      if (errno || *end || iterations < 1 || iterations > MAX_ITERATIONS) {
        fprintf(stderr, "%s: --iterations wants a number from 1 to %d, not '%s'\n", prog,
                MAX_ITERATIONS, argv[i]);
        return 1;
      }
    } else if (a[0] == '-' || path) {
      fprintf(stderr, "%s: unexpected argument '%s'\n", prog, a);
      usage(stderr);
      return 1;
    } else {
      path = a;
    }
  }
  if (!path) {
    usage(stderr);
    return 1;
  }

  /* Only the four document formats: "text" is not parsed, and AUTO would mean JSON. */
  rc__format fmt;
  if (fmt_name) {
    bool known;
    fmt = rc__format_from_name(fmt_name, &known);
    if (!known || fmt == RC__FMT_AUTO || fmt == RC__FMT_TEXT) {
      fprintf(stderr, "%s: unknown format '%s' (json, yaml, toml or dotenv)\n", prog,
              fmt_name);
      return 1;
    }
  } else {
    fmt = rc__format_from_path(path);
    if (fmt == RC__FMT_AUTO) {
      fprintf(stderr, "%s: %s: cannot tell the format from the name; use --format\n",
              prog, path);
      return 1;
    }
  }

  char *data;
  size_t len, cap;
  if (slurp(path, &data, &len, &cap)) return 1;
  int rc = 1;
  double *ms = NULL;

  /* Warm-up (page faults, allocator arenas), then one timed parse to size N. */
  rc_value_t *v = parse_once(fmt, path, data, len, cap);
  if (!v) goto out;
  rc__value_unref(v);
  double t0 = now_ms();
  v = parse_once(fmt, path, data, len, cap);
  double one_ms = now_ms() - t0;
  if (!v) goto out;
  rc__value_unref(v);
  if (!iterations) {
    iterations = (long)(TARGET_MS / (one_ms > 0.001 ? one_ms : 0.001));
    if (iterations < MIN_ITERATIONS) iterations = MIN_ITERATIONS;
    if (iterations > MAX_ITERATIONS) iterations = MAX_ITERATIONS;
  }
  ms = malloc(sizeof *ms * (size_t)iterations);
  if (!ms) {
    fprintf(stderr, "%s: out of memory\n", prog);
    goto out;
  }
  for (long i = 0; i < iterations; i++) {
    double s = now_ms();
    v = parse_once(fmt, path, data, len, cap);
    ms[i] = now_ms() - s;
    if (!v) goto out;
    rc__value_unref(v); /* outside the timed part, like the peers' garbage */
  }
  qsort(ms, (size_t)iterations, sizeof *ms, cmp_double);
  size_t n = (size_t)iterations;
  double med = n % 2 ? ms[n / 2] : (ms[n / 2 - 1] + ms[n / 2]) / 2;
  printf("format=%s bytes=%zu parse_ms=%.3f mb_per_s=%.3f\n", rc__format_name(fmt), len,
         med, med > 0 ? (double)len / 1e6 / (med / 1e3) : 0.0);
  rc = 0;
out:
  free(ms);
  free(data);
  return rc;
}
