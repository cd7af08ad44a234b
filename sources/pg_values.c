/* SPDX-License-Identifier: MIT (see LICENSE) */
/* pg_values.c: PostgreSQL result text to values (see pg_values.h). The texts are what
 * the server prints under the session settings the source makes (DateStyle ISO,
 * TimeZone UTC, extra_float_digits 3, IntervalStyle iso_8601); the readers below rely on
 * them, and fall back to the text as a string for what they do not cover (dates BC or
 * beyond year 9999, infinity, an offset with seconds). */
#include "pg_values.h"

#include <errno.h>
#include <locale.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Array type -> element type, for the element types read as something other than text
 * and for the common text-like ones (whose elements are strings). Other arrays (ranges,
 * composites, geometric types with their own delimiter) stay text. */
static const struct {
  uint32_t array, elem;
} ARRAYS[] = {
  {1000, RC__PG_BOOL},   {1005, RC__PG_INT2},    {1007, RC__PG_INT4},
  {1016, RC__PG_INT8},   {1028, RC__PG_OID},     {199, RC__PG_JSON},
  {3807, RC__PG_JSONB},  {1021, RC__PG_FLOAT4},  {1022, RC__PG_FLOAT8},
  {1182, RC__PG_DATE},   {1183, RC__PG_TIME},    {1115, RC__PG_TIMESTAMP},
  {1185, RC__PG_TIMESTAMPTZ}, {1231, RC__PG_NUMERIC},
  {1009, 25 /* text */}, {1015, 1043 /* varchar */}, {1014, 1042 /* bpchar */},
  {1003, 19 /* name */}, {2951, 2950 /* uuid */},
};

/* The element type of an array type read as an array, else 0. */
static uint32_t array_elem(uint32_t oid) {
  for (size_t i = 0; i < sizeof ARRAYS / sizeof ARRAYS[0]; i++)
    if (ARRAYS[i].array == oid) return ARRAYS[i].elem;
  return 0;
}

/* strtod in the "C" locale, whatever LC_NUMERIC the embedding application set. */
static pthread_once_t c_locale_once = PTHREAD_ONCE_INIT;
static locale_t c_locale;
static void c_locale_init(void) { c_locale = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0); }

/* ===================================================================================
 * Errors and counting
 * =================================================================================== */

/* Fills `err` with "row N, column 'c': <message>" at the result's name; returns `code`. */
static int fail(const rc__pg_result *b, rc_error *err, int code, const char *col,
                const char *fmt, ...) RC__PRINTF(5, 6);
static int fail(const rc__pg_result *b, rc_error *err, int code, const char *col,
                const char *fmt, ...) {
  char msg[400];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  if (col)
    return rc__err(err, code, b->where, 0, 0, "row %zu, column '%s': %s", b->nrows + 1, col,
                   msg);
  return rc__err(err, code, b->where, 0, 0, "row %zu: %s", b->nrows + 1, msg);
}

/* Counts `n` more values against max_nodes. */
static int count(rc__pg_result *b, size_t n, const char *col, rc_error *err) {
  b->nodes += n;
  if (b->nodes > b->limits.max_nodes)
    return fail(b, err, RC_ELIMIT, col, "more than %zu values in the result (limits."
                "max_nodes)", b->limits.max_nodes);
  return 0;
}

/* The values in a tree (json parsed here is counted after the fact). */
static size_t tree_nodes(const rc_value_t *v) {
  size_t n = 1;
  if (v && v->type == RC_TYPE_ARRAY)
    for (uint32_t i = 0; i < v->len; i++) n += tree_nodes(v->u.items[i]);
  else if (v && v->type == RC_TYPE_OBJECT)
    for (uint32_t i = 0; i < v->len; i++) n += tree_nodes(v->u.members[i].val);
  return n;
}

static int oom(const rc__pg_result *b, rc_error *err) {
  return rc__err(err, RC_ENOMEM, b->where, 0, 0, "out of memory");
}

/* ===================================================================================
 * Scalars
 * =================================================================================== */

static bool read_int(const char *s, size_t n, int64_t *v) {
  if (n == 0) return false;
  char *end;
  errno = 0;
  long long x = strtoll(s, &end, 10);
  if (errno || end != s + n) return false;
  *v = (int64_t)x;
  return true;
}

/* NaN, Infinity, -Infinity (how floats and numerics print them), or a decimal. */
static bool read_float(const char *s, size_t n, double *v) {
  if (n == 3 && !memcmp(s, "NaN", 3)) *v = NAN;
  else if (n == 8 && !memcmp(s, "Infinity", 8)) *v = INFINITY;
  else if (n == 9 && !memcmp(s, "-Infinity", 9)) *v = -INFINITY;
  else {
    if (n == 0) return false;
    pthread_once(&c_locale_once, c_locale_init);
    char *end;
    *v = c_locale ? strtod_l(s, &end, c_locale) : strtod(s, &end);
    return end == s + n;
  }
  return true;
}

/* A numeric's scale from its type modifier: ((precision << 16) | scale) + 4, the scale
 * an 11-bit two's complement number since PostgreSQL 15 (negative scales round to
 * tens). INT32_MIN when the column is unconstrained. */
static int numeric_scale(int32_t typmod) {
  if (typmod < 4) return INT32_MIN;
  int sc = (int)((uint32_t)(typmod - 4) & 0x7ff);
  return sc & 0x400 ? sc - 0x800 : sc;
}

/* A numeric is an integer when its column has no fraction digits (numeric(p) or
 * numeric(p, s <= 0)), or, unconstrained, when the value is written without one; it is
 * a float otherwise, and also when it is beyond 64 bits. A float is the nearest double:
 * numerics with more than 15 to 17 significant digits are rounded (see docs/POLICY.md). */
static rc_value_t *numeric(int32_t typmod, const char *s, size_t n, bool *bad) {
  int scale = numeric_scale(typmod);
  bool whole = scale == INT32_MIN ? !memchr(s, '.', n) : scale <= 0;
  int64_t i;
  if (whole && read_int(s, n, &i)) return rc__value_int(i);
  double d;
  if (!read_float(s, n, &d)) {
    *bad = true;
    return NULL;
  }
  return rc__value_float(d);
}

/* Exactly `w` digits at *p (advanced). */
static bool fixed(const char **p, const char *end, int w, int *v) {
  if (end - *p < w) return false;
  int x = 0;
  for (int i = 0; i < w; i++) {
    char c = (*p)[i];
    if (c < '0' || c > '9') return false;
    x = x * 10 + (c - '0');
  }
  *p += w;
  *v = x;
  return true;
}

static bool date_part(const char **p, const char *end, rc_datetime_t *dt) {
  const char *q = *p;
  if (!fixed(&q, end, 4, &dt->year) || q >= end || *q++ != '-' ||
      !fixed(&q, end, 2, &dt->month) || q >= end || *q++ != '-' ||
      !fixed(&q, end, 2, &dt->day))
    return false;
  if (dt->year < 1 || dt->month < 1 || dt->month > 12 || dt->day < 1 || dt->day > 31)
    return false;
  *p = q;
  return true;
}

/* HH:MM:SS[.fraction]; 24:00:00 is a valid time in PostgreSQL and kept as it is. */
static bool time_part(const char **p, const char *end, rc_datetime_t *dt) {
  const char *q = *p;
  if (!fixed(&q, end, 2, &dt->hour) || q >= end || *q++ != ':' ||
      !fixed(&q, end, 2, &dt->minute) || q >= end || *q++ != ':' ||
      !fixed(&q, end, 2, &dt->second))
    return false;
  if (dt->hour > 24 || dt->minute > 59 || dt->second > 60) return false;
  if (q < end && *q == '.') {
    q++;
    int digits = 0, ns = 0;
    while (q < end && *q >= '0' && *q <= '9') {
      if (digits < 9) {
        ns = ns * 10 + (*q - '0');
        digits++;
      }
      q++;
    }
    if (digits == 0) return false;
    dt->precision = digits;
    for (int k = digits; k < 9; k++) ns *= 10;
    dt->nanosecond = ns;
  }
  *p = q;
  return true;
}

/* +HH or +HH:MM (an offset with seconds, historical local mean time, is not covered). */
static bool offset_part(const char **p, const char *end, rc_datetime_t *dt) {
  const char *q = *p;
  if (q >= end || (*q != '+' && *q != '-')) return false;
  int sign = *q++ == '-' ? -1 : 1, h, m = 0;
  if (!fixed(&q, end, 2, &h)) return false;
  if (q < end && *q == ':') {
    q++;
    if (!fixed(&q, end, 2, &m)) return false;
  }
  dt->offset_minutes = sign * (h * 60 + m);
  dt->offset_z = dt->offset_minutes == 0;
  *p = q;
  return true;
}

/* A date, time or timestamp as the ISO DateStyle prints it; false for any other text
 * (BC, infinity, a five-digit year), which then stays a string. */
static bool read_datetime(uint32_t oid, const char *s, size_t n, rc_datetime_t *dt) {
  const char *p = s, *end = s + n;
  memset(dt, 0, sizeof *dt);
  switch (oid) {
  case RC__PG_DATE:
    dt->kind = RC_DATE_LOCAL;
    if (!date_part(&p, end, dt)) return false;
    break;
  case RC__PG_TIME:
    dt->kind = RC_TIME_LOCAL;
    if (!time_part(&p, end, dt)) return false;
    break;
  default:
    dt->kind = oid == RC__PG_TIMESTAMPTZ ? RC_DATETIME_OFFSET : RC_DATETIME_LOCAL;
    if (!date_part(&p, end, dt) || p >= end || *p++ != ' ' || !time_part(&p, end, dt))
      return false;
    if (oid == RC__PG_TIMESTAMPTZ && !offset_part(&p, end, dt)) return false;
  }
  return p == end;
}

static int array(rc__pg_result *b, uint32_t elem, int32_t typmod, const char *s, size_t n,
                 uint32_t depth, const char *col, rc_value_t **out, rc_error *err);

/* Hands a new scalar over (counted), or reports that memory ran out. */
static int take(rc__pg_result *b, rc_value_t *v, const char *col, rc_value_t **out,
                rc_error *err) {
  if (!v) return oom(b, err);
  int rc = count(b, 1, col, err);
  if (rc) {
    rc__value_unref(v);
    return rc;
  }
  *out = v;
  return 0;
}

static int text_value(rc__pg_result *b, const char *s, size_t n, const char *col,
                      rc_value_t **out, rc_error *err) {
  if (n > b->limits.max_string)
    return fail(b, err, RC_ELIMIT, col, "a text of %zu bytes is longer than "
                "limits.max_string (%zu)", n, b->limits.max_string);
  return take(b, rc__value_string(s, n), col, out, err);
}

static int json_value(rc__pg_result *b, const char *s, size_t n, uint32_t depth,
                      const char *col, rc_value_t **out, rc_error *err) {
  rc__parse_limits lim = b->limits;
  lim.max_depth = lim.max_depth > depth ? lim.max_depth - depth : 1;
  lim.max_nodes = lim.max_nodes > b->nodes ? lim.max_nodes - b->nodes : 1;
  rc_error e = {0};
  rc_value_t *v = NULL;
  int rc = rc__parse(RC__FMT_JSON, s, n, n, b->where, &lim, &v, &e);
  if (rc) {
    if (e.line)
      return fail(b, err, rc, col, "%s (line %d, column %d of the value)", e.message,
                  e.line, e.column);
    return fail(b, err, rc, col, "%s", e.message);
  }
  rc = count(b, tree_nodes(v), col, err);
  if (rc) {
    rc__value_unref(v);
    return rc;
  }
  *out = v;
  return 0;
}

/* One field's text (NUL-terminated at `n`) as a value of type `oid`, nested in `depth`
 * containers. */
static int field(rc__pg_result *b, uint32_t oid, int32_t typmod, const char *s, size_t n,
                 uint32_t depth, const char *col, rc_value_t **out, rc_error *err) {
  *out = NULL;
  int64_t i;
  double d;
  rc_datetime_t dt;
  bool bad = false;
  rc_value_t *v = NULL;
  uint32_t elem = array_elem(oid);
  if (elem) return array(b, elem, typmod, s, n, depth, col, out, err);
  switch (oid) {
  case RC__PG_BOOL:
    bad = n != 1 || (s[0] != 't' && s[0] != 'f');
    if (!bad) v = rc__value_bool(s[0] == 't');
    break;
  case RC__PG_INT2:
  case RC__PG_INT4:
  case RC__PG_INT8:
  case RC__PG_OID:
    bad = !read_int(s, n, &i);
    if (!bad) v = rc__value_int(i);
    break;
  case RC__PG_FLOAT4:
  case RC__PG_FLOAT8:
    bad = !read_float(s, n, &d);
    if (!bad) v = rc__value_float(d);
    break;
  case RC__PG_NUMERIC:
    v = numeric(typmod, s, n, &bad);
    break;
  case RC__PG_DATE:
  case RC__PG_TIME:
  case RC__PG_TIMESTAMP:
  case RC__PG_TIMESTAMPTZ:
    if (!read_datetime(oid, s, n, &dt)) return text_value(b, s, n, col, out, err);
    v = rc__value_datetime(&dt);
    break;
  case RC__PG_JSON:
  case RC__PG_JSONB:
    return json_value(b, s, n, depth, col, out, err);
  default:
    return text_value(b, s, n, col, out, err);
  }
  /* The text is left out: a column may hold a secret. */
  if (bad)
    return fail(b, err, RC_EPARSE, col, "the server sent a value that does not read as "
                "its type (oid %u)", (unsigned)oid);
  return take(b, v, col, out, err);
}

/* ===================================================================================
 * Arrays: {1,2,3}, {{1,2},{3,4}}, {"a b",NULL,"say \"hi\""}, [0:1]={1,2}
 * =================================================================================== */

/* One level at *p ('{' ... '}'), its elements converted as `elem`. */
static int array_level(rc__pg_result *b, uint32_t elem, int32_t typmod, const char **p,
                       const char *end, uint32_t depth, const char *col, rc_value_t **out,
                       rc_error *err) {
  if (depth + 1 > b->limits.max_depth)
    return fail(b, err, RC_ELIMIT, col, "nested deeper than limits.max_depth (%u)",
                (unsigned)b->limits.max_depth);
  const char *q = *p;
  if (q >= end || *q != '{') return fail(b, err, RC_EPARSE, col, "malformed array");
  q++;
  rc__array_builder ab;
  rc__array_begin(&ab);
  int rc = count(b, 1, col, err);
  bool empty = q < end && *q == '}';
  if (empty) q++;
  while (!rc && !empty) {
    rc_value_t *v = NULL;
    if (q < end && *q == '{') {
      rc = array_level(b, elem, typmod, &q, end, depth + 1, col, &v, err);
    } else {
      rc__buf_reset(&b->scratch);
      bool quoted = q < end && *q == '"';
      if (quoted) {
        q++;
        while (q < end && *q != '"') {
          if (*q == '\\' && q + 1 < end) q++;
          rc__buf_addc(&b->scratch, *q++);
        }
        if (q >= end) {
          rc = fail(b, err, RC_EPARSE, col, "malformed array (unterminated quote)");
          break;
        }
        q++;
      } else {
        while (q < end && *q != ',' && *q != '}') rc__buf_addc(&b->scratch, *q++);
      }
      rc__buf_addc(&b->scratch, '\0');  /* an empty element still gets a buffer */
      if (b->scratch.oom) {
        rc = oom(b, err);
        break;
      }
      const char *t = b->scratch.p;
      size_t tn = b->scratch.n - 1;
      if (!quoted && tn == 4 && !strncasecmp(t, "NULL", 4)) {
        v = rc__value_null();
        rc = count(b, 1, col, err);
      } else {
        rc = field(b, elem, typmod, t, tn, depth + 1, col, &v, err);
      }
    }
    if (rc) break;
    rc__array_push(&ab, v);
    if (q < end && *q == ',') {
      q++;
      continue;
    }
    if (q < end && *q == '}') {
      q++;
      break;
    }
    rc = fail(b, err, RC_EPARSE, col, "malformed array");
  }
  if (rc) {
    rc__array_abort(&ab);
    return rc;
  }
  *out = rc__array_end(&ab);
  if (!*out) return oom(b, err);
  *p = q;
  return 0;
}

static int array(rc__pg_result *b, uint32_t elem, int32_t typmod, const char *s, size_t n,
                 uint32_t depth, const char *col, rc_value_t **out, rc_error *err) {
  const char *p = s, *end = s + n;
  /* Bounds other than 1 come first, "[0:2]={...}": the elements are what counts. */
  if (p < end && *p == '[') {
    const char *eq = memchr(p, '=', n);
    if (!eq) return fail(b, err, RC_EPARSE, col, "malformed array");
    p = eq + 1;
  }
  int rc = array_level(b, elem, typmod, &p, end, depth, col, out, err);
  if (!rc && p != end) {
    rc__value_unref(*out);
    *out = NULL;
    rc = fail(b, err, RC_EPARSE, col, "malformed array");
  }
  return rc;
}

/* ===================================================================================
 * Results
 * =================================================================================== */

int rc__pg_result_begin(rc__pg_result *b, const rc__pg_column *cols, size_t ncols,
                        const rc__parse_limits *limits, size_t max_bytes,
                        const char *where, rc_error *err) {
  memset(b, 0, sizeof *b);
  rc__object_begin(&b->obj);
  rc__array_begin(&b->rows);
  rc__buf_init(&b->keys);
  rc__buf_init(&b->scratch);
  if (limits) b->limits = *limits;
  else rc__parse_limits_default(&b->limits);
  b->max_bytes = max_bytes;
  b->nodes = 1;  /* the object or array the rows make */
  b->where = rc__strdup(where ? where : "");
  b->cols = rc__calloc(ncols ? ncols : 1, sizeof *b->cols);
  if (!b->where || !b->cols) return rc__err(err, RC_ENOMEM, where, 0, 0, "out of memory");
  for (size_t i = 0; i < ncols; i++) {
    b->cols[i] = cols[i];
    b->cols[i].name = rc__strdup(cols[i].name ? cols[i].name : "");
    b->ncols = i + 1;
    if (!b->cols[i].name) return rc__err(err, RC_ENOMEM, where, 0, 0, "out of memory");
  }
  if (ncols == 2) {
    bool k0 = !strcmp(b->cols[0].name, "key"), v1 = !strcmp(b->cols[1].name, "value");
    bool v0 = !strcmp(b->cols[0].name, "value"), k1 = !strcmp(b->cols[1].name, "key");
    b->kv = (k0 && v1) || (v0 && k1);
    b->key_col = k0 ? 0 : 1;
    b->value_col = 1 - b->key_col;
  }
  /* Row objects are keyed by column name: "?column?" twice (SELECT 1, 2) would lose one. */
  for (size_t i = 0; !b->kv && i < ncols; i++)
    for (size_t j = i + 1; j < ncols; j++)
      if (!strcmp(b->cols[i].name, b->cols[j].name))
        return rc__err(err, RC_EPARSE, b->where, 0, 0, "the query returns two columns "
                       "named '%s': name them apart with AS", b->cols[i].name);
  return 0;
}

/* key/value shape: the key's text, the value by its type (json parsed); a NULL value
 * leaves the key out (absent). */
static int kv_row(rc__pg_result *b, const char *const *texts, const size_t *lens,
                  rc_error *err) {
  const char *key = texts[b->key_col];
  size_t klen = lens[b->key_col];
  if (!key) return fail(b, err, RC_EPARSE, "key", "the key is NULL");
  if (klen > b->limits.max_string)
    return fail(b, err, RC_ELIMIT, "key", "a key of %zu bytes is longer than "
                "limits.max_string (%zu)", klen, b->limits.max_string);
  const rc__pg_column *vc = &b->cols[b->value_col];
  if (!texts[b->value_col]) return 0;
  rc_value_t *v = NULL;
  int rc = field(b, vc->oid, vc->typmod, texts[b->value_col], lens[b->value_col], 1,
                 "value", &v, err);
  if (rc) return rc;
  rc__object_put(&b->obj, key, klen, v);
  rc__buf_add(&b->keys, key, klen);
  rc__buf_addc(&b->keys, '\0');
  b->nkeys++;
  return b->obj.oom || b->keys.oom ? oom(b, err) : 0;
}

/* Any other shape: one object per row, column name -> value, NULL columns left out. */
static int object_row(rc__pg_result *b, const char *const *texts, const size_t *lens,
                      rc_error *err) {
  rc__object_builder ob;
  rc__object_begin(&ob);
  int rc = count(b, 1, NULL, err);
  for (size_t i = 0; !rc && i < b->ncols; i++) {
    if (!texts[i]) continue;
    rc_value_t *v = NULL;
    const rc__pg_column *c = &b->cols[i];
    rc = field(b, c->oid, c->typmod, texts[i], lens[i], 2, c->name, &v, err);
    if (!rc) rc__object_put(&ob, c->name, strlen(c->name), v);
  }
  if (rc) {
    rc__object_abort(&ob);
    return rc;
  }
  rc_value_t *row = rc__object_end(&ob);
  if (!row) return oom(b, err);
  rc__array_push(&b->rows, row);
  return b->rows.oom ? oom(b, err) : 0;
}

int rc__pg_result_row(rc__pg_result *b, const char *const *texts, const size_t *lens,
                      rc_error *err) {
  size_t bytes = 0;
  for (size_t i = 0; i < b->ncols; i++) bytes += texts[i] ? lens[i] : 0;
  b->bytes += bytes;
  if (b->max_bytes && b->bytes > b->max_bytes)
    return rc__err(err, RC_ELIMIT, b->where, 0, 0, "the result is larger than max_bytes "
                   "(%zu bytes) by row %zu", b->max_bytes, b->nrows + 1);
  int rc = b->kv ? kv_row(b, texts, lens, err) : object_row(b, texts, lens, err);
  if (!rc) b->nrows++;
  return rc;
}

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The first key (in byte order) that two rows share, for the message; NULL if none
 * could be found (out of memory). */
static const char *duplicate_key(const rc__pg_result *b, const char ***list) {
  const char **k = rc__calloc(b->nkeys ? b->nkeys : 1, sizeof *k);
  *list = k;
  if (!k) return NULL;
  const char *p = b->keys.p;
  for (size_t i = 0; i < b->nkeys; i++, p += strlen(p) + 1) k[i] = p;
  qsort(k, b->nkeys, sizeof *k, cmp_str);
  for (size_t i = 1; i < b->nkeys; i++)
    if (!strcmp(k[i - 1], k[i])) return k[i];
  return NULL;
}

int rc__pg_result_end(rc__pg_result *b, rc_value_t **out, rc_error *err) {
  *out = NULL;
  int rc = 0;
  if (b->kv) {
    rc_value_t *v = rc__object_end(&b->obj);
    if (!v) {
      rc = oom(b, err);
    } else if (v->len < b->nkeys) {
      /* Which row wins would depend on the plan: refuse rather than pick one. */
      rc__value_unref(v);
      const char **list;
      const char *dup = duplicate_key(b, &list);
      rc = rc__err(err, RC_EPARSE, b->where, 0, 0, "two rows have the key '%.200s': the "
                   "key column must be unique", dup ? dup : "?");
      rc__free(list);
    } else {
      *out = v;
    }
  } else {
    *out = rc__array_end(&b->rows);
    if (!*out) rc = oom(b, err);
  }
  rc__pg_result_abort(b);
  return rc;
}

void rc__pg_result_abort(rc__pg_result *b) {
  rc__object_abort(&b->obj);
  rc__array_abort(&b->rows);
  rc__buf_free(&b->keys);
  rc__buf_free(&b->scratch);
  for (size_t i = 0; b->cols && i < b->ncols; i++) rc__free((char *)b->cols[i].name);
  rc__free(b->cols);
  rc__free(b->where);
  b->cols = NULL;
  b->where = NULL;
  b->ncols = b->nkeys = 0;
}
