/* SPDX-License-Identifier: MIT (see LICENSE) */
/* test_toml_suite.c: runs the toml-test conformance data (TOML 1.0.0 list) through the
 * parser: every valid case must decode to its expected tagged JSON, compared the way the
 * upstream runner compares, and every invalid case must be rejected. Prints each failure
 * and "toml-test: N passed, M failed"; exits nonzero when anything failed. */
#include "toml.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

/* Reads a whole file; NULL when it cannot. The caller frees with free(). */
static char *slurp(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  size_t cap = 4096, n = 0;
  char *buf = malloc(cap);
  for (;;) {
    if (!buf) break;
    n += fread(buf + n, 1, cap - n, f);
    if (n < cap) break;
    char *nb = realloc(buf, cap * 2);
    if (!nb) {
      free(buf);
      buf = NULL;
      break;
    }
    buf = nb;
    cap *= 2;
  }
  bool bad = ferror(f) != 0;
  fclose(f);
  if (bad) {
    free(buf);
    return NULL;
  }
  if (buf) *len = n;
  return buf;
}

static bool is_dir_with_list(const char *dir) {
  char path[1024];
  snprintf(path, sizeof path, "%s/files-toml-1.0.0", dir);
  struct stat st;
  return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* ==== comparing tagged trees ==== */

/* A tagged scalar is an object whose keys are exactly "type" and "value", both strings. */
static bool tagged(const rc_value_t *v, const char **type, const char **val, size_t *vlen) {
  if (rc_value_type(v) != RC_TYPE_OBJECT || rc_value_len(v) != 2) return false;
  const rc_value_t *t = rc_value_get(v, "type"), *x = rc_value_get(v, "value");
  if (!t || !x || rc_value_string(t, type, NULL) || rc_value_string(x, val, vlen)) return false;
  return true;
}

/* A date-time in RFC 3339 / TOML text (space or 't' accepted for 'T', 'z' for 'Z'):
 * fields, nanoseconds and offset; false if it does not parse. */
typedef struct when {
  bool date, time, offset;
  int y, mo, d, h, mi, s;
  long ns;
  int off;
} when;

static bool parse_when(const char *s, when *w) {
  memset(w, 0, sizeof *w);
  size_t n = strlen(s), i = 0;
  int used = 0;
  if (n >= 10 && s[4] == '-') {
    if (sscanf(s, "%4d-%2d-%2d%n", &w->y, &w->mo, &w->d, &used) != 3 || used != 10)
      return false;
    w->date = true;
    i = 10;
    if (i == n) return true;
    if (s[i] != 'T' && s[i] != 't' && s[i] != ' ') return false;
    i++;
  }
  if (sscanf(s + i, "%2d:%2d:%2d%n", &w->h, &w->mi, &w->s, &used) != 3 || used != 8)
    return false;
  w->time = true;
  i += 8;
  if (s[i] == '.') {
    long scale = 100000000;
    for (i++; isdigit((unsigned char)s[i]); i++) {
      w->ns += (s[i] - '0') * scale;
      scale /= 10;
    }
  }
  if (s[i] == 'Z' || s[i] == 'z') {
    w->offset = true;
    i++;
  } else if (s[i] == '+' || s[i] == '-') {
    int oh, om;
    if (sscanf(s + i + 1, "%2d:%2d%n", &oh, &om, &used) != 2 || used != 5) return false;
    w->offset = true;
    w->off = (oh * 60 + om) * (s[i] == '-' ? -1 : 1);
    i += 6;
  }
  return i == n;
}

/* Days since 1970-01-01 of a proleptic Gregorian date. */
static long days_from_civil(int y, int m, int d) {
  y -= m <= 2;
  long era = (y >= 0 ? y : y - 399) / 400;
  long yoe = y - era * 400;
  long doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  long doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

/* Same kind of value and the same point in time (offset date-times are compared in UTC). */
static bool same_when(const char *a, const char *b) {
  when x, y;
  if (!parse_when(a, &x) || !parse_when(b, &y)) return false;
  if (x.date != y.date || x.time != y.time || x.offset != y.offset) return false;
  long long sx = 0, sy = 0;
  if (x.date) {
    sx = days_from_civil(x.y, x.mo, x.d) * 86400LL;
    sy = days_from_civil(y.y, y.mo, y.d) * 86400LL;
  }
  sx += x.h * 3600 + x.mi * 60 + x.s - x.off * 60;
  sy += y.h * 3600 + y.mi * 60 + y.s - y.off * 60;
  return sx == sy && x.ns == y.ns;
}

static bool same_float(const char *a, const char *b) {
  double x = strtod(a, NULL), y = strtod(b, NULL);
  if (isnan(x) || isnan(y)) return isnan(x) && isnan(y);
  return x == y && signbit(x) == signbit(y);
}

/* Compares `got` (our tagged JSON, parsed) with `want`; on a difference writes where and
 * why into `why` and returns false. `path` is the position so far. */
static bool same(const rc_value_t *got, const rc_value_t *want, rc__buf *path, char *why,
                 size_t n) {
  const char *wt, *wv, *gt, *gv;
  size_t wl, gl;
  if (tagged(want, &wt, &wv, &wl)) {
    if (!tagged(got, &gt, &gv, &gl)) {
      snprintf(why, n, "%s: expected a %s, got a %s", path->p ? path->p : "(root)", wt,
               rc_type_name(rc_value_type(got)));
      return false;
    }
    bool ok;
    if (strcmp(gt, wt) != 0)
      ok = false;
    else if (strcmp(wt, "float") == 0)
      ok = same_float(gv, wv);
    else if (strcmp(wt, "bool") == 0)
      ok = strcasecmp(gv, wv) == 0;
    else if (strncmp(wt, "date", 4) == 0 || strcmp(wt, "time-local") == 0)
      ok = same_when(gv, wv);
    else
      ok = gl == wl && memcmp(gv, wv, wl) == 0;
    if (!ok)
      snprintf(why, n, "%s: expected %s \"%s\", got %s \"%s\"", path->p ? path->p : "(root)",
               wt, wv, gt, gv);
    return ok;
  }
  rc_type_t t = rc_value_type(want);
  if (rc_value_type(got) != t) {
    snprintf(why, n, "%s: expected a %s, got a %s", path->p ? path->p : "(root)",
             rc_type_name(t), rc_type_name(rc_value_type(got)));
    return false;
  }
  size_t len = rc_value_len(want), mark = path->n;
  if (rc_value_len(got) != len) {
    snprintf(why, n, "%s: expected %zu %s, got %zu", path->p ? path->p : "(root)", len,
             t == RC_TYPE_ARRAY ? "elements" : "keys", rc_value_len(got));
    return false;
  }
  for (size_t i = 0; i < len; i++) {
    const rc_value_t *g, *w = rc_value_at(want, i);
    if (t == RC_TYPE_ARRAY) {
      rc__path_add_index(path, i);
      g = rc_value_at(got, i);
    } else {
      size_t kl;
      const char *k = rc_value_key_at(want, i, &kl);
      rc__path_add_key(path, k, kl);
      long j = rc__object_find(got, k, kl);
      if (j < 0) {
        snprintf(why, n, "%s: missing", path->p);
        return false;
      }
      g = rc_value_at(got, (size_t)j);
    }
    if (!same(g, w, path, why, n)) return false;
    path->n = mark;
    if (path->p) path->p[mark] = '\0';
  }
  return true;
}

/* ==== one case ==== */

static int passed, failed;

static void failure(const char *name, const char *fmt, ...) RC__PRINTF(2, 3);
static void failure(const char *name, const char *fmt, ...) {
  failed++;
  printf("FAIL %s: ", name);
  va_list ap;
  va_start(ap, fmt);
  vprintf(fmt, ap);
  va_end(ap);
  printf("\n");
}

static void run_valid(const char *dir, const char *name) {
  char path[1200];
  size_t tlen, jlen;
  snprintf(path, sizeof path, "%s/%s", dir, name);
  char *toml = slurp(path, &tlen);
  snprintf(path, sizeof path, "%s/%.*s.json", dir, (int)(strlen(name) - 5), name);
  char *json = slurp(path, &jlen);
  if (!toml || !json) {
    failure(name, "cannot read the case or its .json: %s", strerror(errno));
    free(toml);
    free(json);
    return;
  }
  rc_value_t *v = NULL, *want = NULL, *got = NULL;
  rc_error err;
  memset(&err, 0, sizeof err);
  rc__buf tj, path_b;
  rc__buf_init(&tj);
  rc__buf_init(&path_b);
  if (rc__parse_toml(toml, tlen, name, NULL, &v, &err)) {
    failure(name, "rejected: %d:%d: %s", err.line, err.column, err.message);
  } else if (rc__parse_json(json, jlen, jlen, "expected", NULL, &want, &err)) {
    failure(name, "cannot parse the expected JSON: %s", err.message);
  } else {
    rc__tagged_json_write(&tj, v);
    char why[1024];
    if (tj.oom || rc__parse_json(tj.p, tj.n, tj.n, "tagged", NULL, &got, &err)) {
      failure(name, "our tagged JSON does not parse: %s", err.message);
    } else if (!same(got, want, &path_b, why, sizeof why)) {
      failure(name, "%s", why);
    } else {
      passed++;
    }
  }
  rc__value_unref(v);
  rc__value_unref(want);
  rc__value_unref(got);
  rc__buf_free(&tj);
  rc__buf_free(&path_b);
  free(toml);
  free(json);
}

static void run_invalid(const char *dir, const char *name, bool verbose) {
  char path[1200];
  size_t len;
  snprintf(path, sizeof path, "%s/%s", dir, name);
  char *toml = slurp(path, &len);
  if (!toml) {
    failure(name, "cannot read the case: %s", strerror(errno));
    return;
  }
  rc_value_t *v = NULL;
  rc_error err;
  memset(&err, 0, sizeof err);
  int rc = rc__parse_toml(toml, len, name, NULL, &v, &err);
  if (rc == 0) {
    rc__buf tj;
    rc__buf_init(&tj);
    rc__tagged_json_write(&tj, v);
    failure(name, "accepted, decoded as %.200s", tj.p ? tj.p : "");
    rc__buf_free(&tj);
    rc__value_unref(v);
  } else if (rc != RC_EPARSE || err.line < 1 || err.column < 1 || !err.message[0]) {
    failure(name, "rejected without a position or as %s: %d:%d: %s", rc_err_name(rc),
            err.line, err.column, err.message);
  } else {
    passed++;
    if (verbose) printf("ok %s: %d:%d: %s\n", name, err.line, err.column, err.message);
  }
  free(toml);
}

int main(int argc, char **argv) {
  bool verbose = argc > 1 && strcmp(argv[1], "-v") == 0;
  const char *candidates[4];
  int nc = 0;
  /* An explicit RC_TOML_TEST_DIR is the only place looked at, so a wrong one fails
   * loudly; otherwise: next to the source tree (the repository is cloned beside shared/),
   * then relative to the working directory (the repository, or a build tree in it). */
  const char *env = getenv("RC_TOML_TEST_DIR");
  if (env && *env) {
    candidates[nc++] = env;
  } else {
#ifdef RC_SOURCE_DIR
    candidates[nc++] = RC_SOURCE_DIR "/../shared/testdata/toml-test";
#endif
    candidates[nc++] = "../shared/testdata/toml-test";
    candidates[nc++] = "../../shared/testdata/toml-test";
  }
  const char *dir = NULL;
  for (int i = 0; i < nc && !dir; i++)
    if (is_dir_with_list(candidates[i])) dir = candidates[i];
  if (!dir) {
    printf("toml-test: the conformance data was not found (no files-toml-1.0.0 in:");
    for (int i = 0; i < nc; i++) printf(" %s", candidates[i]);
    printf("); set RC_TOML_TEST_DIR to the toml-test folder\n");
    printf("toml-test: 0 passed, 1 failed\n");
    return 1;
  }
  char listpath[1024];
  snprintf(listpath, sizeof listpath, "%s/files-toml-1.0.0", dir);
  size_t len;
  char *list = slurp(listpath, &len);
  if (!list) {
    printf("toml-test: cannot read %s: %s\ntoml-test: 0 passed, 1 failed\n", listpath,
           strerror(errno));
    return 1;
  }
  int nvalid = 0, ninvalid = 0;
  for (size_t i = 0; i < len;) {
    size_t e = i;
    while (e < len && list[e] != '\n') e++;
    size_t n = e;
    while (n > i && (list[n - 1] == '\r' || list[n - 1] == ' ')) n--;
    char name[1024];
    if (n - i > 5 && n - i < sizeof name && memcmp(list + n - 5, ".toml", 5) == 0) {
      memcpy(name, list + i, n - i);
      name[n - i] = '\0';
      if (strncmp(name, "valid/", 6) == 0) {
        nvalid++;
        run_valid(dir, name);
      } else if (strncmp(name, "invalid/", 8) == 0) {
        ninvalid++;
        run_invalid(dir, name, verbose);
      }
    }
    i = e + 1;
  }
  free(list);
  printf("toml-test: %d valid and %d invalid cases from %s\n", nvalid, ninvalid, dir);
  if (nvalid + ninvalid == 0) failure("files-toml-1.0.0", "lists no cases");
  printf("toml-test: %d passed, %d failed\n", passed, failed);
  return failed != 0;
}
