/* SPDX-License-Identifier: MIT (see LICENSE) */
/* test_toml.c: the TOML parser rule by rule with expected values (strings and escapes,
 * integers, floats, booleans, the four date-time kinds, arrays, inline tables, tables,
 * arrays of tables, dotted and quoted keys, document order), every redefinition rule,
 * control characters and UTF-8, error positions and messages, the limits, the hash index
 * of big tables, the tagged JSON writer, date-time helpers, and allocation failures. */
#include "check.h"
#include "failalloc.h"
#include "toml.h"

#include <math.h>
#include <stdlib.h>

/* Parses `len` bytes from a block of exactly that size (so ASan sees any read past the
 * end); returns the tagged JSON, or "ERR line:col: message" / "LIMIT ..." / "NOMEM".
 * The caller frees the result with rc_free(). */
static char *parse_n(const char *text, size_t len, const rc__parse_limits *lim, bool tagged) {
  char *exact = malloc(len ? len : 1);
  if (len) memcpy(exact, text, len);
  rc_value_t *v = NULL;
  rc_error err;
  memset(&err, 0, sizeof err);
  int rc = rc__parse_toml(exact, len, "cfg.toml", lim, &v, &err);
  free(exact);
  rc__buf b;
  rc__buf_init(&b);
  if (rc) {
    rc__buf_printf(&b, "%s %d:%d: %s",
                   rc == RC_ELIMIT ? "LIMIT" : rc == RC_ENOMEM ? "NOMEM" : "ERR", err.line,
                   err.column, err.message);
    if (strcmp(err.file, "cfg.toml") != 0) rc__buf_adds(&b, " (file name lost)");
    if (v) rc__buf_adds(&b, " (value set on failure)");
  } else if (tagged) {
    rc__tagged_json_write(&b, v);
    rc__value_unref(v);
  } else {
    char *j = rc_value_to_json(v, false);
    rc__buf_adds(&b, j);
    rc_free(j);
    rc__value_unref(v);
  }
  return rc__buf_take(&b);
}

static char *parse(const char *text, const rc__parse_limits *lim, bool tagged) {
  return parse_n(text, strlen(text), lim, tagged);
}

/* T: tagged JSON; J: plain JSON (structure only, no date-times); E: error text. */
#define T(text, want)                     \
  do {                                    \
    char *got_ = parse(text, NULL, true); \
    CHECK_EQ_STR(got_, want);             \
    rc_free(got_);                        \
  } while (0)
#define J(text, want)                      \
  do {                                     \
    char *got_ = parse(text, NULL, false); \
    CHECK_EQ_STR(got_, want);              \
    rc_free(got_);                         \
  } while (0)
#define E(text, want) J(text, want)
#define LIM(text, lim, want)                \
  do {                                      \
    char *got_ = parse(text, &(lim), false); \
    CHECK_EQ_STR(got_, want);               \
    rc_free(got_);                          \
  } while (0)

/* Only checks that parsing fails with RC_EPARSE (any position and message). */
static bool rejects(const char *text, size_t len) {
  rc_value_t *v = NULL;
  int rc = rc__parse_toml(text, len, NULL, NULL, &v, NULL);
  rc__value_unref(v);
  return rc == RC_EPARSE;
}
#define REJECT(text) CHECK(rejects(text, sizeof(text) - 1))

static void test_strings(void) {
  T("s = \"plain\"", "{\"s\":{\"type\":\"string\",\"value\":\"plain\"}}");
  T("s = \"\"", "{\"s\":{\"type\":\"string\",\"value\":\"\"}}");
  /* every escape */
  T("s = \"b\\b t\\t n\\n f\\f r\\r q\\\" bs\\\\\"",
    "{\"s\":{\"type\":\"string\",\"value\":\"b\\b t\\t n\\n f\\f r\\r q\\\" bs\\\\\"}}");
  T("s = \"\\u00e9\\u20AC\\U0001F600\\u0000\"",
    "{\"s\":{\"type\":\"string\",\"value\":\"é€😀\\u0000\"}}");
  T("s = \"\\U0010FFFF\"", "{\"s\":{\"type\":\"string\",\"value\":\"\xf4\x8f\xbf\xbf\"}}");
  /* tabs and UTF-8 as they are; a '#' inside quotes is not a comment */
  T("s = \"a\tb é # c\" # real", "{\"s\":{\"type\":\"string\",\"value\":\"a\\tb é # c\"}}");
  /* literal strings: no escapes */
  T("s = 'C:\\path\\n \"q\"'",
    "{\"s\":{\"type\":\"string\",\"value\":\"C:\\\\path\\\\n \\\"q\\\"\"}}");
  T("s = ''", "{\"s\":{\"type\":\"string\",\"value\":\"\"}}");
  /* multi-line basic: the first newline is dropped, CRLF becomes LF */
  T("s = \"\"\"\nline1\r\nline2\n\"\"\"",
    "{\"s\":{\"type\":\"string\",\"value\":\"line1\\nline2\\n\"}}");
  T("s = \"\"\"\r\nx\"\"\"", "{\"s\":{\"type\":\"string\",\"value\":\"x\"}}");
  /* line-ending backslash swallows blanks and line ends, also with trailing blanks */
  T("s = \"\"\"one \\\n   \n  two \\  \t\r\n three\"\"\"",
    "{\"s\":{\"type\":\"string\",\"value\":\"one two three\"}}");
  T("s = \"\"\"\\\n\"\"\"", "{\"s\":{\"type\":\"string\",\"value\":\"\"}}");
  /* up to two quotes inside and right before the closing delimiter */
  T("s = \"\"\"a\"b\"\"c\"\"\"\"\"",
    "{\"s\":{\"type\":\"string\",\"value\":\"a\\\"b\\\"\\\"c\\\"\\\"\"}}");
  T("s = \"\"\"\"\"\"\"\"", "{\"s\":{\"type\":\"string\",\"value\":\"\\\"\\\"\"}}");
  T("s = \"\"\"esc \\\"\\\"\\\" \\u0041\"\"\"",
    "{\"s\":{\"type\":\"string\",\"value\":\"esc \\\"\\\"\\\" A\"}}");
  /* multi-line literal */
  T("s = '''\nC:\\n\r\n''x'''''",
    "{\"s\":{\"type\":\"string\",\"value\":\"C:\\\\n\\n''x''\"}}");
  T("s = '''\t'''", "{\"s\":{\"type\":\"string\",\"value\":\"\\t\"}}");
  /* rejected */
  REJECT("s = \"\\x41\"");
  REJECT("s = \"\\uD800\"");
  REJECT("s = \"\\U00110000\"");
  REJECT("s = \"\\u12\"");
  REJECT("s = \"a\nb\"");
  REJECT("s = 'a\nb'");
  REJECT("s = \"\"\"a\"\"\"\"\"\"");
  REJECT("s = '''a''''''");
  REJECT("s = \"\"\"a\\ b\"\"\"");
  REJECT("s = \"a\x01\"");
  REJECT("s = \"\"\"a\x7f\"\"\"");
  REJECT("s = '''a\rb'''");
  REJECT("s = \"bad \xc3\x28\"");
  REJECT("s = \"overlong \xc0\xaf\"");
  REJECT("s = \"surrogate \xed\xa0\x80\"");
  REJECT("s = \"truncated \xe2\x82");
}

static void test_integers(void) {
  T("i = 42", "{\"i\":{\"type\":\"integer\",\"value\":\"42\"}}");
  T("a = +17\nb = -17\nc = 0\nd = +0\ne = -0",
    "{\"a\":{\"type\":\"integer\",\"value\":\"17\"},\"b\":{\"type\":\"integer\",\"value\":\"-17\"},"
    "\"c\":{\"type\":\"integer\",\"value\":\"0\"},\"d\":{\"type\":\"integer\",\"value\":\"0\"},"
    "\"e\":{\"type\":\"integer\",\"value\":\"0\"}}");
  J("a = 1_000\nb = 5_349_221\nc = 1_2_3_4_5", "{\"a\":1000,\"b\":5349221,\"c\":12345}");
  J("a = 0xDEADBEEF\nb = 0xdead_beef\nc = 0o01234567\nd = 0o755\ne = 0b11010110\nf = 0x00",
    "{\"a\":3735928559,\"b\":3735928559,\"c\":342391,\"d\":493,\"e\":214,\"f\":0}");
  J("max = 9223372036854775807\nmin = -9223372036854775808\nhex = 0x7FFFFFFFFFFFFFFF",
    "{\"max\":9223372036854775807,\"min\":-9223372036854775808,\"hex\":9223372036854775807}");
  J("b = 0b111111111111111111111111111111111111111111111111111111111111111",
    "{\"b\":9223372036854775807}");
  E("big = 9223372036854775808",
    "ERR 1:7: integer 9223372036854775808 does not fit in 64 bits (the range is "
    "-9223372036854775808 to 9223372036854775807)");
  E("small = -9223372036854775809",
    "ERR 1:9: integer -9223372036854775809 does not fit in 64 bits (the range is "
    "-9223372036854775808 to 9223372036854775807)");
  E("h = 0x8000000000000000",
    "ERR 1:5: integer 0x8000000000000000 does not fit in 64 bits (the largest is "
    "9223372036854775807)");
  REJECT("i = 99999999999999999999999");
  REJECT("i = 01");
  REJECT("i = 0_1");
  REJECT("i = 1__2");
  REJECT("i = _1");
  REJECT("i = 1_");
  REJECT("i = 0x_1");
  REJECT("i = 0x1_");
  REJECT("i = 0X1");
  REJECT("i = -0x1");
  REJECT("i = +0b1");
  REJECT("i = 0b2");
  REJECT("i = 0o8");
  REJECT("i = 0xg");
  REJECT("i = 1a");
  REJECT("i = ++1");
}

static void test_floats(void) {
  T("f = 3.14", "{\"f\":{\"type\":\"float\",\"value\":\"3.14\"}}");
  T("a = +1.0\nb = -0.01\nc = 5e+22\nd = 1e06\ne = -2E-2\nf = 6.626e-34",
    "{\"a\":{\"type\":\"float\",\"value\":\"1\"},\"b\":{\"type\":\"float\",\"value\":\"-0.01\"},"
    "\"c\":{\"type\":\"float\",\"value\":\"5e+22\"},"
    "\"d\":{\"type\":\"float\",\"value\":\"1000000\"},"
    "\"e\":{\"type\":\"float\",\"value\":\"-0.02\"},"
    "\"f\":{\"type\":\"float\",\"value\":\"6.626e-34\"}}");
  T("a = 224_617.445_991_228\nb = 1e1_0\nc = 0e0\nd = 0.0\ne = 1e007",
    "{\"a\":{\"type\":\"float\",\"value\":\"224617.445991228\"},"
    "\"b\":{\"type\":\"float\",\"value\":\"10000000000\"},"
    "\"c\":{\"type\":\"float\",\"value\":\"0\"},\"d\":{\"type\":\"float\",\"value\":\"0\"},"
    "\"e\":{\"type\":\"float\",\"value\":\"10000000\"}}");
  T("a = inf\nb = +inf\nc = -inf\nd = nan\ne = +nan\nf = -nan\ng = -0.0\nh = +0.0",
    "{\"a\":{\"type\":\"float\",\"value\":\"inf\"},\"b\":{\"type\":\"float\",\"value\":\"inf\"},"
    "\"c\":{\"type\":\"float\",\"value\":\"-inf\"},\"d\":{\"type\":\"float\",\"value\":\"nan\"},"
    "\"e\":{\"type\":\"float\",\"value\":\"nan\"},\"f\":{\"type\":\"float\",\"value\":\"nan\"},"
    "\"g\":{\"type\":\"float\",\"value\":\"-0\"},\"h\":{\"type\":\"float\",\"value\":\"0\"}}");
  /* values off the fast path: correctly rounded all the same */
  T("a = 1e23\nb = 1.7976931348623157e308\nc = 5e-324\nd = 0.1\ne = 3.141592653589793238462643\n"
    "f = 1e400\ng = 123456789012345678901234567890.0\nh = 0.000000000000000000000000001",
    "{\"a\":{\"type\":\"float\",\"value\":\"1e+23\"},"
    "\"b\":{\"type\":\"float\",\"value\":\"1.7976931348623157e+308\"},"
    "\"c\":{\"type\":\"float\",\"value\":\"4.94065645841247e-324\"},"
    "\"d\":{\"type\":\"float\",\"value\":\"0.1\"},"
    "\"e\":{\"type\":\"float\",\"value\":\"3.141592653589793\"},"
    "\"f\":{\"type\":\"float\",\"value\":\"inf\"},"
    "\"g\":{\"type\":\"float\",\"value\":\"1.2345678901234568e+29\"},"
    "\"h\":{\"type\":\"float\",\"value\":\"1e-27\"}}");
  /* exact against strtod for a sample of fast-path values */
  const char *samples[] = {"0.3", "2.5e-5", "9007199254740993.0", "4.35", "1e22", "1e-22",
                           "123.456e7", "0.000123", "8.589973e9", "7.0e-10"};
  for (size_t i = 0; i < sizeof samples / sizeof samples[0]; i++) {
    char doc[64];
    snprintf(doc, sizeof doc, "f = %s", samples[i]);
    rc_value_t *v = NULL;
    CHECK_EQ_INT(rc__parse_toml(doc, strlen(doc), NULL, NULL, &v, NULL), 0);
    double f = 0;
    CHECK_EQ_INT(rc_value_number(rc_value_get(v, "f"), &f), 0);
    CHECK(f == strtod(samples[i], NULL));
    rc__value_unref(v);
  }
  REJECT("f = 1.");
  REJECT("f = .5");
  REJECT("f = 1.e5");
  REJECT("f = 1e");
  REJECT("f = 1e+");
  REJECT("f = 1e_5");
  REJECT("f = 1_.5");
  REJECT("f = 1._5");
  REJECT("f = 1.5_");
  REJECT("f = 01.5");
  REJECT("f = 1.2.3");
  REJECT("f = 1e5e5");
  REJECT("f = Inf");
  REJECT("f = NaN");
  REJECT("f = in");
  REJECT("f = infinity");
  REJECT("f = nan_");
}

static void test_booleans(void) {
  T("t = true\nf = false",
    "{\"t\":{\"type\":\"bool\",\"value\":\"true\"},\"f\":{\"type\":\"bool\",\"value\":\"false\"}}");
  T("a = [true,false]", "{\"a\":[{\"type\":\"bool\",\"value\":\"true\"},"
                        "{\"type\":\"bool\",\"value\":\"false\"}]}");
  REJECT("b = True");
  REJECT("b = truee");
  REJECT("b = fals");
  REJECT("b = yes");
}

static void test_datetimes(void) {
  T("odt = 1979-05-27T07:32:00Z",
    "{\"odt\":{\"type\":\"datetime\",\"value\":\"1979-05-27T07:32:00Z\"}}");
  T("odt = 1979-05-27T00:32:00.999999-07:00",
    "{\"odt\":{\"type\":\"datetime\",\"value\":\"1979-05-27T00:32:00.999999-07:00\"}}");
  T("odt = 1979-05-27 07:32:00+05:30",
    "{\"odt\":{\"type\":\"datetime\",\"value\":\"1979-05-27T07:32:00+05:30\"}}");
  T("odt = 1979-05-27t07:32:00z",
    "{\"odt\":{\"type\":\"datetime\",\"value\":\"1979-05-27T07:32:00Z\"}}");
  T("odt = 1979-05-27T07:32:00+00:00",
    "{\"odt\":{\"type\":\"datetime\",\"value\":\"1979-05-27T07:32:00+00:00\"}}");
  T("ldt = 1979-05-27T07:32:00.5",
    "{\"ldt\":{\"type\":\"datetime-local\",\"value\":\"1979-05-27T07:32:00.5\"}}");
  T("ld = 1979-05-27", "{\"ld\":{\"type\":\"date-local\",\"value\":\"1979-05-27\"}}");
  T("lt = 07:32:00", "{\"lt\":{\"type\":\"time-local\",\"value\":\"07:32:00\"}}");
  /* precision kept, digits beyond nanoseconds truncated (not rounded) */
  T("lt = 00:32:00.100", "{\"lt\":{\"type\":\"time-local\",\"value\":\"00:32:00.100\"}}");
  T("lt = 00:32:00.1234567899999",
    "{\"lt\":{\"type\":\"time-local\",\"value\":\"00:32:00.123456789\"}}");
  /* a date followed by a comment or by a space and no time is a date */
  T("d = 1979-05-27 # note", "{\"d\":{\"type\":\"date-local\",\"value\":\"1979-05-27\"}}");
  T("d = [1979-05-27 , 07:32:00]",
    "{\"d\":[{\"type\":\"date-local\",\"value\":\"1979-05-27\"},"
    "{\"type\":\"time-local\",\"value\":\"07:32:00\"}]}");
  /* leap years and leap seconds */
  T("a = 2000-02-29\nb = 2024-02-29\nc = 1990-12-31T23:59:60Z",
    "{\"a\":{\"type\":\"date-local\",\"value\":\"2000-02-29\"},"
    "\"b\":{\"type\":\"date-local\",\"value\":\"2024-02-29\"},"
    "\"c\":{\"type\":\"datetime\",\"value\":\"1990-12-31T23:59:60Z\"}}");
  E("d = 1900-02-29", "ERR 1:13: day 29 is out of range: 1900-02 has 28 days");
  E("d = 2023-04-31", "ERR 1:13: day 31 is out of range: 2023-04 has 30 days");
  E("d = 2023-13-01", "ERR 1:10: month 13 is out of range (01 to 12)");
  E("t = 24:00:00", "ERR 1:5: hour 24 is out of range (00 to 23)");
  E("t = 12:60:00", "ERR 1:8: minute 60 is out of range (00 to 59)");
  E("t = 12:00:61", "ERR 1:11: second 61 is out of range (00 to 60)");
  E("t = 12:00",
    "ERR 1:5: expected a time as HH:MM:SS (two digits each; seconds are required)");
  E("d = 1979-05-27T07:32:00+24:00",
    "ERR 1:24: UTC offset +24:00 is out of range (hours 00 to 23, minutes 00 to 59)");
  E("d = 1979-05-27T07:32:00Zx",
    "ERR 1:25: expected the end of the date-time '1979-05-27T07:32:00Z', found 'x'");
  E("d = 10000-01-01",
    "ERR 1:5: invalid date: the year must have four digits (YYYY-MM-DD)");
  REJECT("d = 1979-5-27");
  REJECT("d = 1979-05-27T");
  REJECT("d = 1979-05-27T7:32:00");
  REJECT("d = 1979-05-27 07:32");
  REJECT("d = 07:32:00.");
  REJECT("d = 07:32:00Z");
  REJECT("d = 1979-05-27T07:32:00+0700");
  REJECT("d = 1979-05-27T07:32:00+07");

  /* the value: kind, fields, precision, offset */
  rc_value_t *v = NULL;
  const char *doc = "a = 1979-05-27T00:32:00.999-07:30\nb = 07:32:01.5\nc = 1979-05-27T00:32:00Z";
  CHECK_EQ_INT(rc__parse_toml(doc, strlen(doc), NULL, NULL, &v, NULL), 0);
  rc_datetime_t dt;
  CHECK_EQ_INT(rc_value_datetime(rc_value_get(v, "a"), &dt), 0);
  CHECK_EQ_INT(dt.kind, RC_DATETIME_OFFSET);
  CHECK_EQ_INT(dt.year, 1979);
  CHECK_EQ_INT(dt.month, 5);
  CHECK_EQ_INT(dt.day, 27);
  CHECK_EQ_INT(dt.hour, 0);
  CHECK_EQ_INT(dt.minute, 32);
  CHECK_EQ_INT(dt.second, 0);
  CHECK_EQ_INT(dt.nanosecond, 999000000);
  CHECK_EQ_INT(dt.precision, 3);
  CHECK_EQ_INT(dt.offset_minutes, -450);
  CHECK(!dt.offset_z);
  CHECK_EQ_INT(rc_value_datetime(rc_value_get(v, "b"), &dt), 0);
  CHECK_EQ_INT(dt.kind, RC_TIME_LOCAL);
  CHECK_EQ_INT(dt.year, 0);
  CHECK_EQ_INT(dt.nanosecond, 500000000);
  CHECK_EQ_INT(dt.precision, 1);
  CHECK_EQ_INT(rc_value_datetime(rc_value_get(v, "c"), &dt), 0);
  CHECK(dt.offset_z);
  CHECK_EQ_INT(dt.offset_minutes, 0);
  CHECK_EQ_STR(rc_type_name(rc_value_type(rc_value_get(v, "c"))), "datetime");
  /* accessors of other types refuse, and the date-time accessor refuses other types */
  int64_t i;
  CHECK_EQ_INT(rc_value_int(rc_value_get(v, "c"), &i), RC_ETYPE);
  CHECK_EQ_INT(rc_value_datetime(v, &dt), RC_ETYPE);
  CHECK_EQ_INT(rc_value_datetime(NULL, &dt), RC_ETYPE);
  rc__value_unref(v);
}

static void test_datetime_helpers(void) {
  rc_datetime_t a = {.kind = RC_DATETIME_OFFSET, .year = 1979, .month = 5, .day = 27,
                     .hour = 7, .minute = 32, .second = 0, .nanosecond = 500000000,
                     .precision = 1, .offset_minutes = 0, .offset_z = true};
  rc_datetime_t b = a;
  b.precision = 3;
  b.offset_z = false;
  /* precision and "Z" versus "+00:00" do not count */
  CHECK(rc__datetime_equal(&a, &b));
  char out[40];
  CHECK_EQ_INT(rc__datetime_format(&a, out, sizeof out), 22);
  CHECK_EQ_STR(out, "1979-05-27T07:32:00.5Z");
  rc__datetime_format(&b, out, sizeof out);
  CHECK_EQ_STR(out, "1979-05-27T07:32:00.500+00:00");
  b.nanosecond = 500000001;
  CHECK(!rc__datetime_equal(&a, &b));
  b = a;
  b.offset_minutes = 60;
  CHECK(!rc__datetime_equal(&a, &b));
  b = a;
  b.kind = RC_DATETIME_LOCAL;
  CHECK(!rc__datetime_equal(&a, &b));
  rc__datetime_format(&b, out, sizeof out);
  CHECK_EQ_STR(out, "1979-05-27T07:32:00.5");
  /* fields a kind does not have are not compared */
  rc_datetime_t d1 = {.kind = RC_DATE_LOCAL, .year = 2024, .month = 2, .day = 29, .hour = 1};
  rc_datetime_t d2 = {.kind = RC_DATE_LOCAL, .year = 2024, .month = 2, .day = 29, .hour = 2};
  CHECK(rc__datetime_equal(&d1, &d2));
  rc__datetime_format(&d1, out, sizeof out);
  CHECK_EQ_STR(out, "2024-02-29");
  rc_datetime_t t1 = {.kind = RC_TIME_LOCAL, .year = 1, .hour = 23, .minute = 59,
                      .second = 59, .nanosecond = 123456789, .precision = 9};
  rc_datetime_t t2 = t1;
  t2.year = 2;
  CHECK(rc__datetime_equal(&t1, &t2));
  rc__datetime_format(&t1, out, sizeof out);
  CHECK_EQ_STR(out, "23:59:59.123456789");
  /* truncation to the buffer */
  char small[6];
  CHECK_EQ_INT(rc__datetime_format(&t1, small, sizeof small), 5);
  CHECK_EQ_STR(small, "23:59");
  CHECK_EQ_INT(rc__datetime_format(&t1, small, 0), 0);
  /* the node: one block, type, refcount, copy */
  rc_value_t *v = rc__value_datetime(&a);
  CHECK(v != NULL);
  CHECK_EQ_INT(rc_value_type(v), RC_TYPE_DATETIME);
  rc_datetime_t back;
  CHECK_EQ_INT(rc_value_datetime(v, &back), 0);
  CHECK(memcmp(&back, &a, sizeof a) == 0);
  rc_value_t *w = rc__value_datetime(&b);
  CHECK(!rc_value_equal(v, w));
  rc__value_unref(w);
  w = rc__value_datetime(&a);
  CHECK(rc_value_equal(v, w));
  rc__value_unref(w);
  rc__value_unref(v);
}

static void test_arrays(void) {
  J("a = []\nb = [ ]\nc = [1, 2, 3]\nd = [1,2,]\ne = [[1, 2], [\"a\", [true]], []]",
    "{\"a\":[],\"b\":[],\"c\":[1,2,3],\"d\":[1,2],\"e\":[[1,2],[\"a\",[true]],[]]}");
  /* mixed types are allowed in TOML 1.0 */
  J("a = [1, 2.5, \"x\", {k = 1}, [false]]", "{\"a\":[1,2.5,\"x\",{\"k\":1},[false]]}");
  /* newlines and comments between elements, CRLF too */
  J("a = [ # first\n  1, # one\r\n\n  2 # two\n  , 3,\n # end\n]",
    "{\"a\":[1,2,3]}");
  J("a = [{x = 1}, {x = 2, y = [{}]}]", "{\"a\":[{\"x\":1},{\"x\":2,\"y\":[{}]}]}");
  REJECT("a = [1,,2]");
  REJECT("a = [,]");
  REJECT("a = [1 2]");
  REJECT("a = [1");
  REJECT("a = [1,\n");
}

static void test_inline_tables(void) {
  J("t = {}\nu = { }\nv = {a = 1, b = \"x\"}",
    "{\"t\":{},\"u\":{},\"v\":{\"a\":1,\"b\":\"x\"}}");
  J("p = { x = 1, y.z = 2, y.w = 3, \"q.r\" = { s = [] } }",
    "{\"p\":{\"x\":1,\"y\":{\"z\":2,\"w\":3},\"q.r\":{\"s\":[]}}}");
  J("a = {b = {c = {d = 1}}}", "{\"a\":{\"b\":{\"c\":{\"d\":1}}}}");
  E("a = {b = 1,}", "ERR 1:12: an inline table cannot end with ',' (no trailing comma)");
  E("a = {b = 1\n}",
    "ERR 1:11: an inline table must be on one line: expected ',' or '}' before the end "
    "of the line");
  E("a = {b = 1, b = 2}", "ERR 1:13: duplicate key 'b': it is already defined");
  E("a = {b.c = 1, b = 2}",
    "ERR 1:15: duplicate key 'b': it is already defined as a table (defined by dotted keys)");
  E("a = {b = {c = 1}, b.d = 2}",
    "ERR 1:19: cannot add to 'b': it is an inline table, and inline tables cannot be extended");
  REJECT("a = {b = 1 c = 2}");
  REJECT("a = {,}");
  REJECT("a = {b = 1");
  REJECT("a = {\nb = 1}");
}

static void test_tables(void) {
  J("[a]\nx = 1\n[b]\ny = 2", "{\"a\":{\"x\":1},\"b\":{\"y\":2}}");
  /* implicit super-tables, defined later is fine; order is first appearance */
  J("[x.y.z]\nw = 1\n[x]\nv = 2", "{\"x\":{\"y\":{\"z\":{\"w\":1}},\"v\":2}}");
  J("[ a . \"b.c\" . 'd' ]\nk = 1", "{\"a\":{\"b.c\":{\"d\":{\"k\":1}}}}");
  J("[a]\n[a.b]\n[a.c]\n", "{\"a\":{\"b\":{},\"c\":{}}}");
  /* keys keep document order, not sorted */
  J("z = 1\na = 2\nm = 3\n[t]\nc = 1\nb = 2",
    "{\"z\":1,\"a\":2,\"m\":3,\"t\":{\"c\":1,\"b\":2}}");
  /* dotted keys create and extend tables within a section */
  J("a.b.c = 1\na.b.d = 2\na.e = 3", "{\"a\":{\"b\":{\"c\":1,\"d\":2},\"e\":3}}");
  J("[fruit]\napple.color = \"red\"\napple.taste.sweet = true\n"
    "[fruit.apple.texture]\nsmooth = true",
    "{\"fruit\":{\"apple\":{\"color\":\"red\",\"taste\":{\"sweet\":true},"
    "\"texture\":{\"smooth\":true}}}}");
  /* dotted keys may extend a table a header created only implicitly */
  J("[a.b.c]\nz = 1\n[a]\nb.y = 2", "{\"a\":{\"b\":{\"c\":{\"z\":1},\"y\":2}}}");
  /* quoted keys: escapes, empty, dots inside, same as bare when equal */
  J("\"a.b\" = 1\n'c d' = 2\n\"\" = 3\n\"\\u0065\" = 4\n1234 = 5\n- = 6\n_ = 7",
    "{\"a.b\":1,\"c d\":2,\"\":3,\"e\":4,\"1234\":5,\"-\":6,\"_\":7}");
  E("e = 1\n\"\\u0065\" = 2",
    "ERR 2:1: duplicate key '\"\\u0065\"': it is already defined");
  /* blanks around dots and '=' */
  J("a . b\t=\t1", "{\"a\":{\"b\":1}}");
  /* keys that look like numbers or booleans */
  J("true = 1\n3.14 = 2\ninf = 3", "{\"true\":1,\"3\":{\"14\":2},\"inf\":3}");
}

static void test_arrays_of_tables(void) {
  J("[[p]]\nn = 1\n[[p]]\n[[p]]\nn = 3", "{\"p\":[{\"n\":1},{},{\"n\":3}]}");
  /* sub-tables and nested arrays go into the most recent element */
  J("[[fruit]]\nname = \"apple\"\n[fruit.physical]\ncolor = \"red\"\n"
    "[[fruit.variety]]\nname = \"red delicious\"\n[[fruit.variety]]\nname = \"granny\"\n"
    "[[fruit]]\nname = \"banana\"\n[[fruit.variety]]\nname = \"plantain\"",
    "{\"fruit\":[{\"name\":\"apple\",\"physical\":{\"color\":\"red\"},"
    "\"variety\":[{\"name\":\"red delicious\"},{\"name\":\"granny\"}]},"
    "{\"name\":\"banana\",\"variety\":[{\"name\":\"plantain\"}]}]}");
  J("[[a.b]]\nx = 1\n[a]\ny = 2", "{\"a\":{\"b\":[{\"x\":1}],\"y\":2}}");
  J("[fruit]\napple.color = \"red\"\n[[fruit.apple.seeds]]\nsize = 2",
    "{\"fruit\":{\"apple\":{\"color\":\"red\",\"seeds\":[{\"size\":2}]}}}");
  /* dotted keys inside an element */
  J("[[t]]\na.b = 1\n[[t]]\na.b = 2", "{\"t\":[{\"a\":{\"b\":1}},{\"a\":{\"b\":2}}]}");
}

/* Every redefinition rule, with exact positions and messages. */
static void test_redefinition(void) {
  E("a = 1\na = 2", "ERR 2:1: duplicate key 'a': it is already defined");
  E("[a]\nb = 1\n[a]", "ERR 3:2: table [a] is defined twice");
  E("[a.b]\n[a]\n[a]", "ERR 3:2: table [a] is defined twice");
  E("[a]\nb = 1\n[a.b]",
    "ERR 3:4: cannot define table [a.b]: the key is already an integer");
  E("a.b = 1\n[a]",
    "ERR 2:2: table [a] was already defined by dotted keys; a header cannot define it again");
  E("[x]\na.b.c = 1\n[x.a.b]",
    "ERR 3:6: table [x.a.b] was already defined by dotted keys; a header cannot define it again");
  E("a.b.c = 1\na.b = 2",
    "ERR 2:3: duplicate key 'a.b': it is already defined as a table (defined by dotted keys)");
  E("a = 1\na.b = 2", "ERR 2:1: cannot use 'a' as a table: it is already an integer");
  E("[a.b.c]\nz = 9\n[a]\nb.c.t = 1",
    "ERR 4:3: cannot add to table 'b.c' with a dotted key: it is defined by a [table] header, "
    "so keys for it belong under that header");
  E("a = {}\n[a.b]",
    "ERR 2:2: cannot add to 'a': it is an inline table, and inline tables cannot be extended");
  E("a = {b = 1}\na.c = 2",
    "ERR 2:1: cannot add to 'a': it is an inline table, and inline tables cannot be extended");
  E("a = []\n[[a]]",
    "ERR 2:3: cannot append to 'a' with [[a]]: it is an array written with '=', and such "
    "arrays cannot be extended");
  E("[[a]]\n[a]", "ERR 2:2: 'a' is an array of tables: write [[a]] to add an element");
  E("[a]\n[[a]]",
    "ERR 2:3: cannot define array of tables [[a]]: the key is already a table");
  E("[[a.b]]\n[[a]]",
    "ERR 2:3: cannot define array of tables [[a]]: the key is already a table");
  E("[[a.b]]\n[a]\nb.y = 2",
    "ERR 3:1: cannot add to 'b' with a dotted key: it is an array of tables");
  E("[[t]]\n[t]\n", "ERR 2:2: 't' is an array of tables: write [[t]] to add an element");
  E("[a]\nb = [1]\n[a.b.c]",
    "ERR 3:4: cannot use 'a.b' as a table: it is already an array");
  E("[a.b]\nc = 1\n[a]\nb = 2",
    "ERR 4:1: duplicate key 'b': it is already defined as a table");
  E("a = [{b = 1}]\n[a.c]", "ERR 2:2: cannot use 'a' as a table: it is already an array");
}

static void test_document_syntax(void) {
  /* BOM, comments everywhere, CRLF, blank lines, no final newline */
  J("\xef\xbb\xbf# top\r\n\r\n a = 1 # c\r\n\t[t] # c\r\nb = 2",
    "{\"a\":1,\"t\":{\"b\":2}}");
  J("", "{}");
  J("\n\n# only comments\n  \t\n", "{}");
  J("# é UTF-8 and \t tab in comments\na = 1", "{\"a\":1}");
  E("a = 1 b = 2", "ERR 1:7: expected the end of the line after a value, found 'b'");
  E("[t] x = 1", "ERR 1:5: expected the end of the line after a table header, found 'x'");
  E("a = 1\r", "ERR 1:6: expected the end of the line after a value, found a carriage "
                "return without a line feed");
  E("# c\x01", "ERR 1:4: control character U+0001 is not allowed in a comment");
  E("# c\xff", "ERR 1:4: invalid UTF-8 in a comment (byte 0xFF)");
  E("a = \"x\xc3\"", "ERR 1:7: invalid UTF-8 in a string (byte 0xC3)");
  E("\xc3\xa9 = 1",
    "ERR 1:1: expected a key, found 'é' (U+00E9): bare keys may contain only "
                    "A-Z, a-z, 0-9, '_' and '-'; put other keys in quotes");
  E("\xef\xbb\xbf\xef\xbb\xbf" "a = 1",
    "ERR 1:2: expected a key, found the invisible character U+FEFF: bare keys may contain "
    "only A-Z, a-z, 0-9, '_' and '-'; put other keys in quotes");
  /* NUL bytes are control characters, wherever they are */
  char *got = parse_n("a = 1\0b", 7, NULL, false);
  CHECK_EQ_STR(got, "ERR 1:6: expected the end of the line after a value, found the control "
                    "character U+0000");
  rc_free(got);
  got = parse_n("a = \"x\0\"", 8, NULL, false);
  CHECK_EQ_STR(got, "ERR 1:7: control character U+0000 is not allowed in a string");
  rc_free(got);
  /* a NUL right at the end of the given length is outside the input, not part of it */
  got = parse_n("a = 1", 5, NULL, false);
  CHECK_EQ_STR(got, "{\"a\":1}");
  rc_free(got);
}

/* Exact line and column with the message, for malformed input of every kind. */
static void test_error_positions(void) {
  E("name", "ERR 1:5: expected '=' after key 'name'");
  E("a = 1\nname \"x\"", "ERR 2:6: expected '=' after key 'name', found '\"'");
  E("a = 1\n\n  b = ",
    "ERR 3:7: expected a value after '=' for key 'b', found the end of the "
                       "input");
  E("k = \"open",
    "ERR 1:10: unterminated string (opened at line 1, column 5): expected '\"' "
                  "before the end of the line (use triple quotes for a multi-line string)");
  E("k = \"\"\"\nabc\n",
    "ERR 3:1: unterminated multi-line string (opened at line 1, column "
                         "5): expected \"\"\"");
  E("k = [1, 2\nx = 3", "ERR 2:1: expected ',' or ']' after an array element, found 'x'");
  E("k = { a = 1 b = 2 }",
    "ERR 1:13: expected ',' or '}' after a value in an inline table, "
                           "found 'b'");
  E("k = 0x",
    "ERR 1:7: expected a hexadecimal digit after '0x', found the end of the input");
  E("k = 012", "ERR 1:5: leading zeros are not allowed in decimal numbers");
  E("k = 1__0", "ERR 1:6: '_' in a number must be between two digits");
  E("k = 1.e3", "ERR 1:7: a decimal point must be followed by a digit");
  E("k = -0x1", "ERR 1:5: hexadecimal, octal and binary integers cannot have a sign");
  E("k = \"a\\qb\"",
    "ERR 1:7: invalid escape: '\\' followed by 'q' (valid escapes are \\b \\t "
                     "\\n \\f \\r \\\" \\\\ \\uXXXX \\UXXXXXXXX)");
  E("k = \"\\uD83D\"",
    "ERR 1:6: '\\uD83D' is not a Unicode scalar value (surrogates and code "
                       "points above U+10FFFF cannot be written)");
  E("k = \"\\u12G4\"", "ERR 1:6: '\\u' must be followed by exactly 4 hexadecimal digits");
  E("k = hello", "ERR 1:5: invalid value 'hello': expected a string in quotes, a number, "
                 "true, false, a date-time, an array or an inline table");
  E("k = True",
    "ERR 1:5: invalid value 'True': expected a string in quotes, a number, true, "
                "false, a date-time, an array or an inline table");
  E("[a", "ERR 1:3: expected ']' or '.' after key 'a'");
  E("[]", "ERR 1:2: empty table header: expected a table name");
  E("[[a]",
    "ERR 1:5: expected ']]' to close the array-of-tables header [[a]], found the end "
            "of the input");
  E("[a.]", "ERR 1:4: expected a key, found ']'");
  E("a$b = 1", "ERR 1:2: invalid character '$' in key 'a': bare keys may contain only A-Z, "
               "a-z, 0-9, '_' and '-'; put other keys in quotes");
  E("= 1", "ERR 1:1: missing key before '='");
  E("\"\"\"k\"\"\" = 1", "ERR 1:1: a multi-line string cannot be a key");
  E("s = \"\"\"x\\  y\"\"\"",
    "ERR 1:9: a '\\' followed by blanks must be the last character "
                             "on its line (line-ending backslash)");
  E("s = '''a''''''", "ERR 1:14: too many quotes: at most two may come before the closing "
                      "''' of a multi-line literal string; escape the others");
  /* columns count characters, not bytes */
  E("k = \"é\" x", "ERR 1:9: expected the end of the line after a value, found 'x'");
  E("# ééé\nk = \"ü\"\x01",
    "ERR 2:8: expected the end of the line after a value, found the "
                              "control character U+0001");
}

static void test_limits(void) {
  rc__parse_limits lim;
  /* depth: the root is level 0; arrays, inline tables and tables each add one */
  rc__parse_limits_default(&lim);
  lim.max_depth = 3;
  LIM("a = [[1]]", lim, "{\"a\":[[1]]}");
  LIM("a = [[[1]]]", lim, "LIMIT 1:7: nesting deeper than 3 levels");
  LIM("a = {b = {c = 1}}", lim, "{\"a\":{\"b\":{\"c\":1}}}");
  LIM("a = {b = {c = {}}}", lim, "LIMIT 1:15: nesting deeper than 3 levels");
  LIM("[a.b]\nc = [1]", lim, "LIMIT 2:5: nesting deeper than 3 levels");
  LIM("[a.b.c]", lim, "LIMIT 1:6: nesting deeper than 3 levels");
  LIM("a.b.c.d = 1", lim, "LIMIT 1:5: nesting deeper than 3 levels");
  LIM("[[a]]\nb = 1", lim, "{\"a\":[{\"b\":1}]}");
  LIM("[[a]]\nb = []", lim, "LIMIT 2:5: nesting deeper than 3 levels");
  LIM("[a]\n[[a.b]]", lim, "LIMIT 2:5: nesting deeper than 3 levels");
  /* a deep document stops at the limit without exhausting the stack */
  rc__parse_limits_default(&lim);
  size_t deep = 200000;
  char *doc = malloc(deep * 2 + 8);
  memcpy(doc, "a = ", 4);
  memset(doc + 4, '[', deep);
  memset(doc + 4 + deep, ']', deep);
  char *got = parse_n(doc, 4 + 2 * deep, &lim, false);
  CHECK_EQ_STR(got, "LIMIT 1:516: nesting deeper than 512 levels");
  rc_free(got);
  free(doc);

  /* bytes */
  rc__parse_limits_default(&lim);
  lim.max_bytes = 10;
  LIM("a = 123456", lim, "{\"a\":123456}");
  LIM("a = 1234567", lim, "LIMIT 0:0: input is 11 bytes, more than the limit of 10 bytes");

  /* strings and keys, measured decoded */
  rc__parse_limits_default(&lim);
  lim.max_string = 4;
  LIM("a = \"abcd\"\nb = 'a\\b'", lim, "{\"a\":\"abcd\",\"b\":\"a\\\\b\"}");
  LIM("a = \"\\u0041\\u0042\\u0043\\u0044\"", lim, "{\"a\":\"ABCD\"}");
  LIM("a = \"abcde\"", lim, "LIMIT 1:5: string is 5 bytes, more than the limit of 4 bytes");
  LIM("a = '''\nabcde'''", lim, "LIMIT 1:5: string is 5 bytes, more than the limit of 4 bytes");
  LIM("abcde = 1", lim, "LIMIT 1:1: key is 5 bytes, more than the limit of 4 bytes");
  LIM("[t.\"abcde\"]", lim, "LIMIT 1:4: key is 5 bytes, more than the limit of 4 bytes");

  /* nodes: the root, every table, array and scalar */
  rc__parse_limits_default(&lim);
  lim.max_nodes = 5;
  LIM("a = 1\nb = [1, 2]", lim, "{\"a\":1,\"b\":[1,2]}");
  LIM("a = 1\nb = [1, 2, 3]", lim, "LIMIT 2:12: more than 5 values (the node limit)");
  lim.max_nodes = 4;
  LIM("[a.b]\nc = 1", lim, "{\"a\":{\"b\":{\"c\":1}}}");
  LIM("[[a]]\n[[a]]", lim, "{\"a\":[{},{}]}");
  LIM("[[a]]\n[[a]]\n[[a]]", lim, "LIMIT 3:3: more than 4 values (the node limit)");
  LIM("x = {a = 1, b = 2, c = 3}", lim, "LIMIT 1:24: more than 4 values (the node limit)");
}

/* Tables past SMALL_TABLE keys go through the hash index; inline tables drop theirs. */
static void test_big_tables(void) {
  rc__buf doc;
  rc__buf_init(&doc);
  for (int i = 0; i < 3000; i++) rc__buf_printf(&doc, "k%d = %d\n", i, i);
  /* an inline table big enough to be indexed, twice, then more root keys */
  for (int r = 0; r < 2; r++) {
    rc__buf_printf(&doc, "inl%d = {", r);
    for (int i = 0; i < 50; i++) rc__buf_printf(&doc, "%sx%d = %d", i ? ", " : "", i, i);
    rc__buf_adds(&doc, ", sub.a = 1, sub.b = 2, arr = [{q = 1, r = 2}]}\n");
  }
  for (int i = 0; i < 20; i++) rc__buf_printf(&doc, "after%d = %d\n", i, i);
  for (int i = 0; i < 40; i++) rc__buf_printf(&doc, "[t%d]\nv = %d\n", i, i);
  rc_value_t *v = NULL;
  CHECK_EQ_INT(rc__parse_toml(doc.p, doc.n, NULL, NULL, &v, NULL), 0);
  CHECK_EQ_INT(rc_value_len(v), 3000 + 2 + 20 + 40);
  int64_t i;
  CHECK_EQ_INT(rc_value_int(rc_value_get(v, "k2999"), &i), 0);
  CHECK_EQ_INT(i, 2999);
  CHECK_EQ_STR(rc_value_key_at(v, 0, NULL), "k0");
  CHECK_EQ_STR(rc_value_key_at(v, 3000, NULL), "inl0");
  CHECK_EQ_STR(rc_value_key_at(v, 3061, NULL), "t39");
  const rc_value_t *inl = rc_value_get(v, "inl1");
  CHECK_EQ_INT(rc_value_len(inl), 52);
  CHECK_EQ_INT(rc_value_int(rc_value_find(inl, "x49"), &i), 0);
  CHECK_EQ_INT(i, 49);
  CHECK_EQ_INT(rc_value_int(rc_value_find(inl, "arr[0].r"), &i), 0);
  CHECK_EQ_INT(i, 2);
  CHECK_EQ_INT(rc_value_int(rc_value_find(v, "after19"), &i), 0);
  CHECK_EQ_INT(i, 19);
  rc__value_unref(v);
  /* duplicates are found through the index too */
  rc__buf_reset(&doc);
  for (int k = 0; k < 3000; k++) rc__buf_printf(&doc, "k%d = %d\n", k, k);
  rc__buf_printf(&doc, "k1234 = 0\n");
  rc_error err;
  CHECK_EQ_INT(rc__parse_toml(doc.p, doc.n, NULL, NULL, &v, &err), RC_EPARSE);
  CHECK_EQ_STR(err.message, "duplicate key 'k1234': it is already defined");
  rc__buf_reset(&doc);
  rc__buf_adds(&doc, "a = {");
  for (int k = 0; k < 30; k++) rc__buf_printf(&doc, "%sx%d = %d", k ? ", " : "", k, k);
  rc__buf_adds(&doc, ", x17 = 1}");
  CHECK_EQ_INT(rc__parse_toml(doc.p, doc.n, NULL, NULL, &v, &err), RC_EPARSE);
  CHECK_EQ_STR(err.message, "duplicate key 'x17': it is already defined");
  rc__buf_free(&doc);
}

static void test_tagged_writer(void) {
  T("s = \"\\u0001\\u001f\\u007f\\\"\\\\/\"",
    "{\"s\":{\"type\":\"string\",\"value\":\"\\u0001\\u001f\\u007f\\\"\\\\/\"}}");
  T("\"k\\n\\\"\" = 1", "{\"k\\n\\\"\":{\"type\":\"integer\",\"value\":\"1\"}}");
  T("a = [[], [{}]]", "{\"a\":[[],[{}]]}");
  rc__buf b;
  rc__buf_init(&b);
  rc__tagged_json_write(&b, NULL);
  CHECK_EQ_STR(b.p, "null");
  rc__buf_free(&b);
}

/* Every allocation of a parse may fail: the parse reports RC_ENOMEM, leaks nothing and
 * never crashes, for every N until it succeeds. */
static void test_alloc_failures(void) {
  static const char doc[] =
      "title = \"TOML \\u00e9xample\"\n"
      "[owner]\nname = \"Tom\"\ndob = 1979-05-27T07:32:00-08:00\n"
      "[database]\nports = [ 8000, 8001, 8002 ]\ndata = [ [\"delta\", \"phi\"], [3.14] ]\n"
      "temp_targets = { cpu = 79.5, case = 72.0, nested.deep = { x = 1 } }\n"
      "\"quoted \\\"key\\\"\" = '''\nmulti\r\nline'''\n"
      "[servers.alpha]\nip = \"10.0.0.1\"\nrole.kind = \"frontend\"\n"
      "[[products]]\nname = \"Hammer\"\nsku = 738594937\n"
      "[[products]]\n[[products]]\nname = \"Nail\"\ncolor = \"gray\"\n"
      "[big]\na0=0\na1=1\na2=2\na3=3\na4=4\na5=5\na6=6\na7=7\na8=8\na9=9\na10=1e300\n"
      "inl = {b0=0, b1=1, b2=2, b3=3, b4=4, b5=5, b6=6, b7=7, b8=8, b9=9, b10=10}\n";
  bool done = false;
  long n;
  for (n = 0; n < 100000 && !done; n++) {
    fa_failures = 0;
    fa_live = 0;
    fa_install(n);
    rc_value_t *v = NULL;
    rc_error err;
    int rc = rc__parse_toml(doc, sizeof doc - 1, "x.toml", NULL, &v, &err);
    if (rc == 0) {
      CHECK(v != NULL);
      rc__buf b;
      rc__buf_init(&b);
      rc__tagged_json_write(&b, v);
      rc__buf_free(&b);
      rc__value_unref(v);
      done = fa_failures == 0;
    } else {
      if (rc != RC_ENOMEM) {
        CHECK_EQ_INT(rc, RC_ENOMEM);
        break;
      }
      CHECK(v == NULL);
    }
    long live = fa_live;
    fa_uninstall();
    if (live != 0) {
      CHECK_EQ_INT(live, 0);
      fprintf(stderr, "  (leak with allocation %ld failing)\n", n);
      break;
    }
  }
  CHECK(done);
  CHECK(n > 20);
}

int main(void) {
  test_strings();
  test_integers();
  test_floats();
  test_booleans();
  test_datetimes();
  test_datetime_helpers();
  test_arrays();
  test_inline_tables();
  test_tables();
  test_arrays_of_tables();
  test_redefinition();
  test_document_syntax();
  test_error_positions();
  test_limits();
  test_big_tables();
  test_tagged_writer();
  test_alloc_failures();
  return check_report("toml");
}
