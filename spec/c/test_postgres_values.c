/* SPDX-License-Identifier: MIT (see LICENSE) */
/* test_postgres_values.c: PostgreSQL result text to values (sources/pg_values.c), without
 * a server: every type read (integers, floats with NaN and infinities, numerics by scale
 * and beyond 64 bits, booleans, dates, times and timestamps in the ISO DateStyle,
 * json/jsonb, arrays with quoting, NULLs, nesting and bounds), the texts that stay
 * strings (BC, infinity, five-digit years), the key/value shape (NULL values, a
 * duplicate key, a NULL key) and the row shape (NULL columns, duplicate column names),
 * malformed texts (never quoted in messages), every limit, and allocation failure at
 * every step. The spec against a real server is spec/lua/remote_postgres_spec.lua. */
#include "check.h"
#include "failalloc.h"
#include "pg_values.h"
#include "toml.h"

#include <stdlib.h>

#define TEXT 25
#define UUID 2950
#define INTERVAL 1186
#define TEXT_ARRAY 1009
#define INT4_ARRAY 1007
#define JSONB_ARRAY 3807
#define NUMERIC_ARRAY 1231
#define TIMESTAMPTZ_ARRAY 1185

/* A numeric's type modifier: numeric(p, s). */
static int32_t numeric_mod(int p, int s) { return ((p << 16) | (s & 0x7ff)) + 4; }

/* Tagged JSON of a value (toml-test's form: every scalar with its type); caller frees. */
static char *tagged(const rc_value_t *v) {
  rc__buf b;
  rc__buf_init(&b);
  rc__tagged_json_write(&b, v);
  return rc__buf_take(&b);
}

/* Builds a result of `ncols` columns from `nrows` rows of texts (NULL = SQL NULL). */
static int build(const rc__pg_column *cols, size_t ncols, const char *const *cells,
                 size_t nrows, const rc__parse_limits *lim, size_t max_bytes,
                 rc_value_t **out, rc_error *err) {
  rc__pg_result b;
  memset(err, 0, sizeof *err);
  *out = NULL;
  int rc = rc__pg_result_begin(&b, cols, ncols, lim, max_bytes, "pg://test", err);
  for (size_t r = 0; !rc && r < nrows; r++) {
    size_t lens[8];
    for (size_t c = 0; c < ncols; c++) {
      const char *t = cells[r * ncols + c];
      lens[c] = t ? strlen(t) : 0;
    }
    rc = rc__pg_result_row(&b, cells + r * ncols, lens, err);
  }
  if (rc) {
    rc__pg_result_abort(&b);
    return rc;
  }
  return rc__pg_result_end(&b, out, err);
}

/* The tagged JSON of one field of type `oid` read from `text`, as the row shape reads
 * it (the row's only column, "v"); "absent" for NULL, "error: <message>" on failure. */
static char *one(uint32_t oid, int32_t typmod, const char *text) {
  rc__pg_column col = {"v", oid, typmod};
  rc_value_t *v;
  rc_error err;
  const char *cells[1] = {text};
  if (build(&col, 1, cells, 1, NULL, 0, &v, &err)) {
    char *msg = malloc(strlen(err.message) + 8);
    sprintf(msg, "error: %s", err.message);
    return msg;
  }
  const rc_value_t *f = rc_value_get(rc_value_at(v, 0), "v");
  char *out = f ? tagged(f) : rc__strdup("absent");
  rc__value_unref(v);
  return out;
}

#define ONE(oid, mod, text, want)          \
  do {                                     \
    char *got_ = one(oid, mod, text);      \
    CHECK_EQ_STR(got_, want);              \
    free(got_);                            \
  } while (0)

static void test_scalars(void) {
  ONE(RC__PG_INT4, -1, "42", "{\"type\":\"integer\",\"value\":\"42\"}");
  ONE(RC__PG_INT2, -1, "-7", "{\"type\":\"integer\",\"value\":\"-7\"}");
  ONE(RC__PG_INT8, -1, "-9223372036854775808",
      "{\"type\":\"integer\",\"value\":\"-9223372036854775808\"}");
  ONE(RC__PG_OID, -1, "4294967295", "{\"type\":\"integer\",\"value\":\"4294967295\"}");
  ONE(RC__PG_BOOL, -1, "t", "{\"type\":\"bool\",\"value\":\"true\"}");
  ONE(RC__PG_BOOL, -1, "f", "{\"type\":\"bool\",\"value\":\"false\"}");
  ONE(RC__PG_FLOAT8, -1, "0.1", "{\"type\":\"float\",\"value\":\"0.1\"}");
  ONE(RC__PG_FLOAT4, -1, "1.5e+20", "{\"type\":\"float\",\"value\":\"1.5e+20\"}");
  ONE(RC__PG_FLOAT8, -1, "NaN", "{\"type\":\"float\",\"value\":\"nan\"}");
  ONE(RC__PG_FLOAT8, -1, "-Infinity", "{\"type\":\"float\",\"value\":\"-inf\"}");
  ONE(TEXT, -1, "héllo", "{\"type\":\"string\",\"value\":\"héllo\"}");
  ONE(TEXT, -1, "", "{\"type\":\"string\",\"value\":\"\"}");
  ONE(UUID, -1, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
      "{\"type\":\"string\",\"value\":\"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11\"}");
  ONE(INTERVAL, -1, "P1DT2H", "{\"type\":\"string\",\"value\":\"P1DT2H\"}");
  ONE(TEXT, -1, NULL, "absent");
}

static void test_numerics(void) {
  /* A column with fraction digits: always a float, whole or not. */
  ONE(RC__PG_NUMERIC, numeric_mod(5, 2), "1.50", "{\"type\":\"float\",\"value\":\"1.5\"}");
  ONE(RC__PG_NUMERIC, numeric_mod(5, 2), "2.00", "{\"type\":\"float\",\"value\":\"2\"}");
  /* Without: an integer, also with a negative scale (rounded to hundreds). */
  ONE(RC__PG_NUMERIC, numeric_mod(10, 0), "12", "{\"type\":\"integer\",\"value\":\"12\"}");
  ONE(RC__PG_NUMERIC, numeric_mod(5, -2), "1200",
      "{\"type\":\"integer\",\"value\":\"1200\"}");
  /* Unconstrained: as written. */
  ONE(RC__PG_NUMERIC, -1, "12", "{\"type\":\"integer\",\"value\":\"12\"}");
  ONE(RC__PG_NUMERIC, -1, "-12.25", "{\"type\":\"float\",\"value\":\"-12.25\"}");
  /* Beyond 64 bits, or more digits than a double holds: the nearest double. */
  ONE(RC__PG_NUMERIC, -1, "123456789012345678901234567890",
      "{\"type\":\"float\",\"value\":\"1.2345678901234568e+29\"}");
  ONE(RC__PG_NUMERIC, numeric_mod(30, 0), "123456789012345678901234567890",
      "{\"type\":\"float\",\"value\":\"1.2345678901234568e+29\"}");
  ONE(RC__PG_NUMERIC, -1, "0.12345678901234567890123",
      "{\"type\":\"float\",\"value\":\"0.12345678901234568\"}");
  ONE(RC__PG_NUMERIC, -1, "NaN", "{\"type\":\"float\",\"value\":\"nan\"}");
  ONE(RC__PG_NUMERIC, -1, "Infinity", "{\"type\":\"float\",\"value\":\"inf\"}");
}

static void test_datetimes(void) {
  ONE(RC__PG_DATE, -1, "2024-01-02", "{\"type\":\"date-local\",\"value\":\"2024-01-02\"}");
  ONE(RC__PG_TIME, -1, "03:04:05.123",
      "{\"type\":\"time-local\",\"value\":\"03:04:05.123\"}");
  ONE(RC__PG_TIMESTAMP, -1, "2024-01-02 03:04:05",
      "{\"type\":\"datetime-local\",\"value\":\"2024-01-02T03:04:05\"}");
  ONE(RC__PG_TIMESTAMP, -1, "2024-01-02 03:04:05.000001",
      "{\"type\":\"datetime-local\",\"value\":\"2024-01-02T03:04:05.000001\"}");
  /* The session's TimeZone is UTC: "+00", written as Z. */
  ONE(RC__PG_TIMESTAMPTZ, -1, "2024-01-02 03:04:05.25+00",
      "{\"type\":\"datetime\",\"value\":\"2024-01-02T03:04:05.25Z\"}");
  ONE(RC__PG_TIMESTAMPTZ, -1, "2024-01-02 03:04:05+05:30",
      "{\"type\":\"datetime\",\"value\":\"2024-01-02T03:04:05+05:30\"}");
  ONE(RC__PG_TIMESTAMPTZ, -1, "2024-01-02 03:04:05-08",
      "{\"type\":\"datetime\",\"value\":\"2024-01-02T03:04:05-08:00\"}");
  /* No date-time for these: the text. */
  ONE(RC__PG_DATE, -1, "infinity", "{\"type\":\"string\",\"value\":\"infinity\"}");
  ONE(RC__PG_TIMESTAMP, -1, "-infinity", "{\"type\":\"string\",\"value\":\"-infinity\"}");
  ONE(RC__PG_DATE, -1, "0044-03-15 BC", "{\"type\":\"string\",\"value\":\"0044-03-15 BC\"}");
  ONE(RC__PG_DATE, -1, "10000-01-01", "{\"type\":\"string\",\"value\":\"10000-01-01\"}");
  ONE(RC__PG_TIMESTAMPTZ, -1, "1850-01-01 00:00:00-00:01:15",
      "{\"type\":\"string\",\"value\":\"1850-01-01 00:00:00-00:01:15\"}");
}

static void test_json_and_arrays(void) {
  ONE(RC__PG_JSONB, -1, "{\"a\": [1, \"x\", null]}",
      "{\"a\":[{\"type\":\"integer\",\"value\":\"1\"},{\"type\":\"string\",\"value\":\"x\"},"
      "null]}");
  ONE(RC__PG_JSON, -1, "null", "null");  /* JSON null is a value, not absent */
  ONE(TEXT_ARRAY, -1, "{a,\"b c\",NULL,\"x\\\"y\\\\\",\"NULL\"}",
      "[{\"type\":\"string\",\"value\":\"a\"},{\"type\":\"string\",\"value\":\"b c\"},null,"
      "{\"type\":\"string\",\"value\":\"x\\\"y\\\\\"},"
      "{\"type\":\"string\",\"value\":\"NULL\"}]");
  ONE(INT4_ARRAY, -1, "{{1,2},{3,4}}",
      "[[{\"type\":\"integer\",\"value\":\"1\"},{\"type\":\"integer\",\"value\":\"2\"}],"
      "[{\"type\":\"integer\",\"value\":\"3\"},{\"type\":\"integer\",\"value\":\"4\"}]]");
  ONE(INT4_ARRAY, -1, "[0:1]={5,6}",
      "[{\"type\":\"integer\",\"value\":\"5\"},{\"type\":\"integer\",\"value\":\"6\"}]");
  ONE(INT4_ARRAY, -1, "{}", "[]");
  ONE(NUMERIC_ARRAY, numeric_mod(4, 1), "{1.5,2.0}",
      "[{\"type\":\"float\",\"value\":\"1.5\"},{\"type\":\"float\",\"value\":\"2\"}]");
  ONE(JSONB_ARRAY, -1, "{\"{\\\"a\\\": 1}\"}",
      "[{\"a\":{\"type\":\"integer\",\"value\":\"1\"}}]");
  ONE(TIMESTAMPTZ_ARRAY, -1, "{\"2024-01-02 03:04:05+00\"}",
      "[{\"type\":\"datetime\",\"value\":\"2024-01-02T03:04:05Z\"}]");
}

/* Runs a whole result; returns its compact JSON or "error: ...". */
static char *result(const rc__pg_column *cols, size_t ncols, const char *const *cells,
                    size_t nrows, const rc__parse_limits *lim, size_t max_bytes) {
  rc_value_t *v;
  rc_error err;
  if (build(cols, ncols, cells, nrows, lim, max_bytes, &v, &err)) {
    char *msg = malloc(strlen(err.message) + strlen(err.file) + 16);
    sprintf(msg, "error: %s: %s", err.file, err.message);
    return msg;
  }
  char *j = rc_value_to_json(v, false);
  char *out = strdup(j);
  rc_free(j);
  rc__value_unref(v);
  return out;
}

#define RESULT(cols, cells, lim, max, want)                                             \
  do {                                                                                  \
    char *got_ = result(cols, sizeof cols / sizeof cols[0], cells,                      \
                        sizeof cells / sizeof cells[0] / (sizeof cols / sizeof cols[0]), \
                        lim, max);                                                      \
    CHECK_EQ_STR(got_, want);                                                           \
    free(got_);                                                                         \
  } while (0)

static void test_shapes(void) {
  const rc__pg_column kv[] = {{"key", TEXT, -1}, {"value", RC__PG_JSONB, -1}};
  const char *rows[] = {"limits", "{\"max\": 10}", "off", NULL, "beta", "true"};
  RESULT(kv, rows, NULL, 0, "{\"limits\":{\"max\":10},\"beta\":true}");
  /* Columns the other way round; a value by its type when it is not json. */
  const rc__pg_column vk[] = {{"value", RC__PG_INT4, -1}, {"key", TEXT, -1}};
  const char *rows2[] = {"1", "a", "2", "b"};
  RESULT(vk, rows2, NULL, 0, "{\"a\":1,\"b\":2}");
  /* The value of a plan-dependent winner is refused. */
  const char *dup[] = {"a", "1", "b", "2", "a", "3"};
  RESULT(kv, dup, NULL, 0, "error: pg://test: two rows have the key 'a': the key column "
         "must be unique");
  const char *nullkey[] = {"a", "1", NULL, "2"};
  RESULT(kv, nullkey, NULL, 0, "error: pg://test: row 2, column 'key': the key is NULL");
  /* Any other shape: rows, NULL columns absent. */
  const rc__pg_column three[] = {{"id", RC__PG_INT4, -1}, {"name", TEXT, -1},
                                 {"on", RC__PG_BOOL, -1}};
  const char *rows3[] = {"1", "a", NULL, "2", NULL, "t"};
  RESULT(three, rows3, NULL, 0, "[{\"id\":1,\"name\":\"a\"},{\"id\":2,\"on\":true}]");
  /* Two columns not named key and value are rows too. */
  const rc__pg_column kx[] = {{"key", TEXT, -1}, {"v", TEXT, -1}};
  const char *rows4[] = {"a", "b"};
  RESULT(kx, rows4, NULL, 0, "[{\"key\":\"a\",\"v\":\"b\"}]");
  const rc__pg_column same[] = {{"?column?", RC__PG_INT4, -1}, {"?column?", RC__PG_INT4, -1}};
  const char *rows5[] = {"1", "2"};
  RESULT(same, rows5, NULL, 0, "error: pg://test: the query returns two columns named "
         "'?column?': name them apart with AS");
}

static void test_malformed(void) {
  /* The value's text is never in the message: a column may hold a secret. */
  ONE(RC__PG_INT4, -1, "12secret", "error: row 1, column 'v': the server sent a value "
      "that does not read as its type (oid 23)");
  ONE(RC__PG_INT8, -1, "99999999999999999999", "error: row 1, column 'v': the server sent "
      "a value that does not read as its type (oid 20)");
  ONE(RC__PG_BOOL, -1, "yes", "error: row 1, column 'v': the server sent a value that "
      "does not read as its type (oid 16)");
  ONE(RC__PG_FLOAT8, -1, "", "error: row 1, column 'v': the server sent a value that "
      "does not read as its type (oid 701)");
  ONE(INT4_ARRAY, -1, "{1,2", "error: row 1, column 'v': malformed array");
  ONE(INT4_ARRAY, -1, "{1,2}x", "error: row 1, column 'v': malformed array");
  ONE(TEXT_ARRAY, -1, "{\"abc", "error: row 1, column 'v': malformed array (unterminated "
      "quote)");
  ONE(INT4_ARRAY, -1, "[0:1]{1}", "error: row 1, column 'v': malformed array");
  char *got = one(RC__PG_JSONB, -1, "{\"a\": tru}");
  CHECK(strncmp(got, "error: row 1, column 'v': ", 26) == 0);
  CHECK(strstr(got, "(line 1, column ") != NULL);
  free(got);
}

static void test_limits(void) {
  const rc__pg_column kv[] = {{"key", TEXT, -1}, {"value", TEXT, -1}};
  const char *rows[] = {"a", "0123456789", "b", "0123456789"};
  RESULT(kv, rows, NULL, 22, "{\"a\":\"0123456789\",\"b\":\"0123456789\"}");
  RESULT(kv, rows, NULL, 21, "error: pg://test: the result is larger than max_bytes (21 "
         "bytes) by row 2");
  rc__parse_limits lim;
  rc__parse_limits_default(&lim);
  lim.max_string = 9;
  RESULT(kv, rows, &lim, 0, "error: pg://test: row 1, column 'value': a text of 10 bytes "
         "is longer than limits.max_string (9)");
  rc__parse_limits_default(&lim);
  lim.max_nodes = 3;  /* the object, then a and b; the fourth is one too many */
  RESULT(kv, rows, &lim, 0, "{\"a\":\"0123456789\",\"b\":\"0123456789\"}");
  const char *three[] = {"a", "1", "b", "2", "c", "3"};
  RESULT(kv, three, &lim, 0, "error: pg://test: row 3, column 'value': more than 3 values "
         "in the result (limits.max_nodes)");
  /* Depth counts from the component: rows are 1, their fields 2, arrays below. */
  rc__parse_limits_default(&lim);
  lim.max_depth = 3;
  const rc__pg_column arr[] = {{"grid", INT4_ARRAY, -1}};
  const char *flat[] = {"{1,2}"}, *nested[] = {"{{1},{2}}"};
  RESULT(arr, flat, &lim, 0, "[{\"grid\":[1,2]}]");
  RESULT(arr, nested, &lim, 0, "error: pg://test: row 1, column 'grid': nested deeper than "
         "limits.max_depth (3)");
  const rc__pg_column js[] = {{"key", TEXT, -1}, {"value", RC__PG_JSONB, -1}};
  const char *ok[] = {"a", "{\"b\": {\"c\": 1}}"}, *deep[] = {"a", "{\"b\": {\"c\": {}}}"};
  RESULT(js, ok, &lim, 0, "{\"a\":{\"b\":{\"c\":1}}}");
  char *got = result(js, 2, deep, 1, &lim, 0);
  CHECK(strstr(got, "deeper than") != NULL);
  free(got);
}

/* Every allocation of a mixed result fails in turn: an error each time (never a crash
 * or a leak), then success. */
static void test_alloc_failure(void) {
  const rc__pg_column cols[] = {{"id", RC__PG_INT4, -1}, {"tags", TEXT_ARRAY, -1},
                                {"meta", RC__PG_JSONB, -1}, {"at", RC__PG_TIMESTAMPTZ, -1},
                                {"name", TEXT, -1}};
  const char *cells[] = {"1", "{a,\"b c\",NULL}", "{\"k\": [1, 2]}",
                         "2024-01-02 03:04:05+00", "one", "2", "{}", "null", NULL, "two"};
  const rc__pg_column kv[] = {{"key", TEXT, -1}, {"value", RC__PG_JSONB, -1}};
  const char *kvcells[] = {"a", "{\"x\": 1}", "b", "[true]", "a", "1"};
  for (int which = 0; which < 2; which++) {
    long n;
    int rc = RC_ENOMEM;
    for (n = 0; n < 100000 && rc == RC_ENOMEM; n++) {
      fa_install(n);
      rc_value_t *v = NULL;
      rc_error err;
      rc = which ? build(kv, 2, kvcells, 3, NULL, 0, &v, &err)
                 : build(cols, 5, cells, 2, NULL, 0, &v, &err);
      rc__value_unref(v);
      if (fa_live != 0) {
        CHECK_EQ_INT(fa_live, 0);
        break;
      }
    }
    fa_uninstall();
    CHECK_EQ_INT(rc, which ? RC_EPARSE : 0);  /* the kv case ends at its duplicate key */
    CHECK(n > 5);
  }
}

int main(void) {
  test_scalars();
  test_numerics();
  test_datetimes();
  test_json_and_arrays();
  test_shapes();
  test_malformed();
  test_limits();
  test_alloc_failure();
  return check_report("test_postgres_values");
}
