/* SPDX-License-Identifier: MIT (see LICENSE) */
/* test_json.c: JSON in and out. Parsing: scalars, escapes and unicode, big integers,
 * duplicate keys, a BOM, caller padding; every error message with its exact line and
 * column; every truncation of a document; empty input; the depth, string, value-count
 * and size limits (on both parse paths). Writing: number formats (shortest round-trip
 * floats that stay floats), string escaping, invalid UTF-8, pretty layout, and random
 * round trips. Allocation failure at every step of parsing. The document arena: several
 * chunks, a subtree outliving its root. */
#include "check.h"
#include "failalloc.h"
#include "parse.h"

#include <math.h>
#include <stdlib.h>

static int parse_lim(const char *text, const rc__parse_limits *lim, rc_value_t **out,
                     rc_error *err) {
  memset(err, 0, sizeof *err);
  *out = NULL;
  return rc__parse_json(text, strlen(text), 0, "t.json", lim, out, err);
}

/* Parses `text` and returns its compact JSON (caller frees), or NULL on error. */
static char *roundtrip(const char *text) {
  rc_value_t *v;
  rc_error err;
  if (parse_lim(text, NULL, &v, &err)) {
    fprintf(stderr, "  unexpected error for %s: %d:%d: %s\n", text, err.line, err.column,
            err.message);
    return NULL;
  }
  char *j = rc_value_to_json(v, false);
  rc__value_unref(v);
  return j;
}

#define CHECK_JSON(text, want)        \
  do {                                \
    char *j_ = roundtrip(text);       \
    CHECK_EQ_STR(j_, want);           \
    rc_free(j_);                      \
  } while (0)

/* Expects a parse error with this code, position and message. */
static void expect_error(const char *text, const rc__parse_limits *lim, int code, int line,
                         int col, const char *msg, int at) {
  rc_value_t *v;
  rc_error err;
  int rc = parse_lim(text, lim, &v, &err);
  if (rc != code || err.line != line || err.column != col || strcmp(err.message, msg) != 0)
    fprintf(stderr, "test_json.c:%d: for input <%s>\n  got  %s %d:%d: %s\n  want %s %d:%d: %s\n",
            at, text, rc_err_name(rc), err.line, err.column, err.message, rc_err_name(code),
            line, col, msg);
  CHECK_EQ_INT(rc, code);
  CHECK_EQ_INT(err.line, line);
  CHECK_EQ_INT(err.column, col);
  CHECK_EQ_STR(err.message, msg);
  CHECK(v == NULL);
  if (rc) CHECK_EQ_STR(err.file, "t.json");
  rc__value_unref(v);
}
#define ERR(text, line, col, msg) expect_error(text, NULL, RC_EPARSE, line, col, msg, __LINE__)

static void test_values(void) {
  CHECK_JSON("null", "null");
  CHECK_JSON(" true ", "true");
  CHECK_JSON("false", "false");
  CHECK_JSON("0", "0");
  CHECK_JSON("-0", "0");
  CHECK_JSON("-0.0", "-0.0");
  CHECK_JSON("1.0", "1.0");
  CHECK_JSON("1.5e3", "1500.0");
  CHECK_JSON("1E-2", "0.01");
  CHECK_JSON("[]", "[]");
  CHECK_JSON("{}", "{}");
  CHECK_JSON("{\"a\":[1,{\"b\":null}],\"c\":\"d\"}", "{\"a\":[1,{\"b\":null}],\"c\":\"d\"}");
  /* integers: exact in 64 bits, floats beyond (as JSON.parse reads them) */
  CHECK_JSON("9223372036854775807", "9223372036854775807");
  CHECK_JSON("-9223372036854775808", "-9223372036854775808");
  CHECK_JSON("9223372036854775808", "9.223372036854776e+18");
  CHECK_JSON("18446744073709551615", "1.8446744073709552e+19");
  CHECK_JSON("[-9223372036854775809]", "[-9.223372036854776e+18]");
  CHECK_JSON("{\"big\":123456789012345678901234567890}", "{\"big\":1.2345678901234568e+29}");
  rc_value_t *v;
  rc_error err;
  CHECK_EQ_INT(parse_lim("123456789012345678901234567890", NULL, &v, &err), 0);
  CHECK_EQ_INT(rc_value_type(v), RC_TYPE_FLOAT);
  rc__value_unref(v);
  CHECK_EQ_INT(parse_lim("9223372036854775807", NULL, &v, &err), 0);
  CHECK_EQ_INT(rc_value_type(v), RC_TYPE_INT);
  rc__value_unref(v);

  /* escapes and unicode */
  CHECK_JSON("\"\\n\\t\\r\\b\\f\\\"\\\\\\/\"", "\"\\n\\t\\r\\b\\f\\\"\\\\/\"");
  CHECK_JSON("\"\\u0041\\u00e9\\u20ac\\ud83d\\ude00\"", "\"Aé€😀\"");
  CHECK_JSON("\"é€😀\"", "\"é€😀\"");
  CHECK_JSON("\"\\u0000x\"", "\"\\u0000x\"");
  CHECK_EQ_INT(parse_lim("\"a\\u0000b\"", NULL, &v, &err), 0);
  const char *s;
  size_t len;
  CHECK_EQ_INT(rc_value_string(v, &s, &len), 0);
  CHECK_EQ_INT(len, 3);
  CHECK(memcmp(s, "a\0b", 3) == 0);
  rc__value_unref(v);

  /* duplicate keys: the last value at the first position */
  CHECK_JSON("{\"a\":1,\"b\":2,\"a\":3}", "{\"a\":3,\"b\":2}");
  CHECK_JSON("{\"a\":{\"x\":1},\"a\":[2]}", "{\"a\":[2]}");
  /* a UTF-8 byte order mark is skipped */
  CHECK_JSON("\xef\xbb\xbf{\"a\":1}", "{\"a\":1}");
  /* the same through the yajl path (a big number sends the document there) */
  CHECK_JSON("{\"a\":1,\"n\":1000000000000000000000000000000,\"a\":[\"\\u00e9\"],\"b\":-0,\"c\":1.0}",
             "{\"a\":[\"é\"],\"n\":1e+30,\"b\":0,\"c\":1.0}");
}

/* The caller's buffer may carry padding with any content; it is used in place. */
static void test_padding(void) {
  const char *doc = "{\"k\":[1,2,3],\"s\":\"x\"}";
  size_t len = strlen(doc);
  char *buf = malloc(len + RC__PARSE_PADDING);
  memcpy(buf, doc, len);
  memset(buf + len, ']', RC__PARSE_PADDING); /* garbage after the end */
  rc_value_t *v;
  rc_error err;
  CHECK_EQ_INT(rc__parse_json(buf, len, len + RC__PARSE_PADDING, NULL, NULL, &v, &err), 0);
  char *j = rc_value_to_json(v, false);
  CHECK_EQ_STR(j, doc);
  rc_free(j);
  rc__value_unref(v);
  /* a short document inside a longer buffer without enough padding: copied */
  CHECK_EQ_INT(rc__parse_json(buf, 5, len, NULL, NULL, &v, &err), RC_EPARSE);
  CHECK_EQ_STR(err.message, "unexpected end of input");
  CHECK_EQ_INT(err.column, 6);
  free(buf);
}

static void test_errors(void) {
  /* errors yajl does not see, which had no position: a form feed between tokens (yajl's
   * whitespace, not JSON's), overlong UTF-8, an encoded surrogate */
  ERR("{\"a\":\f1}", 1, 6, "unexpected control character U+000C (JSON's whitespace is "
      "space, tab, line feed and carriage return)");
  ERR("[1,\n\v2]", 2, 1, "unexpected control character U+000B (JSON's whitespace is "
      "space, tab, line feed and carriage return)");
  ERR("{\"a\":\"\xc0\xaf\"}", 1, 7, "invalid UTF-8 (byte 0xC0)");
  ERR("[\"ok\",\n \"\xed\xa0\x80\"]", 2, 3, "invalid UTF-8 (byte 0xED)");
  ERR("[\"\xf4\x90\x80\x80\"]", 1, 3, "invalid UTF-8 (byte 0xF4)");
  ERR("", 1, 1, "empty document");
  ERR("  \n  ", 2, 3, "empty document");
  ERR("[1,2", 1, 5, "unexpected end of input");
  ERR("{\"a\":", 1, 6, "unexpected end of input");
  ERR("{\"a\" 1}", 1, 6, "expected ':' after object key, found a number");
  ERR("{\"a\":1 \"b\":2}", 1, 8, "expected ',' or '}' after object member, found a string");
  ERR("[1 2]", 1, 4, "expected ',' or ']' after array element, found a number");
  ERR("[true false]", 1, 7, "expected ',' or ']' after array element, found 'false'");
  ERR("{\"a\":[1,2}", 1, 10, "expected ',' or ']' after array element, found '}'");
  ERR("{\"a\":1,}", 1, 7, "trailing comma before '}'");
  ERR("[1,]", 1, 3, "trailing comma before ']'");
  ERR("{1:2}", 1, 2, "expected a string as object key, found a number");
  ERR("{\"a\":}", 1, 6, "expected a value after ':', found '}'");
  ERR("[1,,2]", 1, 4, "unexpected ','");
  ERR("}", 1, 1, "unexpected '}'");
  ERR("\"abc", 1, 1, "unterminated string");
  ERR("{\"x\": [1, 2, {\"y\": \"unterminated", 1, 20, "unterminated string");
  ERR("[01]", 1, 2, "invalid number: leading zeros are not allowed");
  ERR("{\"a\":-01}", 1, 6, "invalid number: leading zeros are not allowed");
  ERR("[-]", 1, 2, "invalid number: a digit is required after the minus sign");
  ERR("[1.]", 1, 2, "invalid number: a digit is required after the decimal point");
  ERR("[1e]", 1, 2, "invalid number: a digit is required after the exponent");
  ERR("tru", 1, 1, "invalid literal 'tru' (expected true, false or null)");
  ERR("{\"a\":nul}", 1, 6, "invalid literal 'nul' (expected true, false or null)");
  ERR("[1]x", 1, 4, "trailing content after the JSON value");
  ERR("{\"a\":1}\n{\"b\":2}", 2, 1, "trailing content after the JSON value");
  ERR("\"a\tb\"", 1, 3, "control character 0x09 in string must be escaped (\\u0009)");
  ERR("\"\xff\"", 1, 2, "invalid UTF-8 in string");
  ERR("[\"ok\", \"b\xc3\"]", 1, 10, "invalid UTF-8 in string");
  ERR("\"\\x\"", 1, 2, "invalid escape '\\x' in string");
  ERR("\"ab\\u12g4\"", 1, 4, "invalid \\u escape: expected 4 hexadecimal digits");
  ERR("\"\\ud800\"", 1, 2, "invalid \\u escape: unpaired UTF-16 surrogate");
  ERR("[\"\\udc00x\"]", 1, 3, "invalid \\u escape: unpaired UTF-16 surrogate");
  ERR("// comment\n1", 1, 1, "comments are not allowed in JSON");
  /* beyond the largest double: an error, not an infinity JSON could not write back */
  ERR("[1, -1e400]", 1, 5, "number out of range: -1e400 is beyond the largest double");
  ERR("{\"a\":\n  [12345678901234567890123, 1e999]}", 2, 29,
      "number out of range: 1e999 is beyond the largest double");
  /* lines and columns: columns count characters, not bytes */
  ERR("[1,\n  2,\n  @]", 3, 3, "unexpected character '@'");
  ERR("[1,\n\xc3\xa9]", 2, 1, "unexpected character 'é'");
  ERR("{\n  \"é\": 1,\n  \"ü\": 2\n  \"x\": 3\n}", 4, 3,
      "expected ',' or '}' after object member, found a string");
  ERR("{\"é\": 1 \"x\": 2}", 1, 9, "expected ',' or '}' after object member, found a string");
  ERR("\r\n\r\n  [1,\r\n   ]", 3, 5, "trailing comma before ']'"); /* at the comma */
  ERR("\xef\xbb\xbf{\"a\" 1}", 1, 7, "expected ':' after object key, found a number");
}

/* Every proper prefix of a document fails cleanly with a position. */
static void test_truncation(void) {
  const char *doc = "{\n  \"name\": \"caf\\u00e9 \xc3\xa9\",\n  \"n\": [1, -2.5e3, true, false, "
                    "null],\n  \"o\": {\"k\": \"v\\\"\"}\n}\n";
  size_t len = strlen(doc);
  int bad = 0;
  for (size_t n = 0; n + 1 < len; n++) {
    rc_value_t *v = NULL;
    rc_error err;
    memset(&err, 0, sizeof err);
    int rc = rc__parse_json(doc, n, 0, NULL, NULL, &v, &err);
    if (rc != RC_EPARSE || v || err.line < 1 || err.column < 1) {
      fprintf(stderr, "  prefix %zu: rc %d line %d: %s\n", n, rc, err.line, err.message);
      bad++;
    }
    rc__value_unref(v);
  }
  CHECK_EQ_INT(bad, 0);
  rc_value_t *v;
  rc_error err;
  CHECK_EQ_INT(rc__parse_json(doc, len, 0, NULL, NULL, &v, &err), 0);
  rc__value_unref(v);
}

static void test_limits(void) {
  rc__parse_limits lim;
  rc__parse_limits_default(&lim);
  CHECK_EQ_INT(lim.max_depth, 512);
  CHECK_EQ_INT(lim.max_bytes, 256u << 20);
  CHECK_EQ_INT(lim.max_string, 64u << 20);
  CHECK_EQ_INT(lim.max_nodes, 50000000);

  /* depth: 512 levels pass, 513 fail at the 513th bracket */
  rc_value_t *v;
  rc_error err;
  char ok[1030];
  memset(ok, '[', 512);
  memset(ok + 512, ']', 512);
  ok[1024] = '\0';
  CHECK_EQ_INT(parse_lim(ok, NULL, &v, &err), 0);
  rc__value_unref(v);
  char over[1100];
  memset(over, '[', 513);
  memset(over + 513, ']', 513);
  over[1026] = '\0';
  expect_error(over, NULL, RC_ELIMIT, 1, 513, "nesting deeper than 512 levels", __LINE__);
  /* far deeper than simdjson's own depth setting: the same message */
  char *very = malloc(4002);
  memset(very, '[', 2000);
  memset(very + 2000, ']', 2000);
  very[4000] = '\0';
  expect_error(very, NULL, RC_ELIMIT, 1, 513, "nesting deeper than 512 levels", __LINE__);
  free(very);

  rc__parse_limits small = lim;
  small.max_depth = 3;
  CHECK_EQ_INT(parse_lim("{\"a\":[{\"b\":1}]}", &small, &v, &err), 0);
  rc__value_unref(v);
  expect_error("{\"a\":[{\"b\":[1]}]}", &small, RC_ELIMIT, 1, 12,
               "nesting deeper than 3 levels", __LINE__);
  /* the yajl path (big number) applies the same limit at the same place */
  expect_error("{\"a\":[{\"b\":[123456789012345678901234567890]}]}", &small, RC_ELIMIT, 1, 12,
               "nesting deeper than 3 levels", __LINE__);

  small = lim;
  small.max_string = 5;
  CHECK_EQ_INT(parse_lim("[\"12345\",\"\\u0041\\u0041\\u0041\\u0041\\u0041\"]", &small, &v,
                         &err), 0);
  rc__value_unref(v);
  expect_error("[\"12345\", \"123456\"]", &small, RC_ELIMIT, 1, 11,
               "string longer than the limit of 5 bytes", __LINE__);
  expect_error("{\"abcdef\": 1}", &small, RC_ELIMIT, 1, 2,
               "string longer than the limit of 5 bytes", __LINE__);
  expect_error("[\"\\u00e9\\u00e9\\u00e9\"]", &small, RC_ELIMIT, 1, 2,
               "string longer than the limit of 5 bytes", __LINE__);

  small = lim;
  small.max_nodes = 3;
  CHECK_EQ_INT(parse_lim("[1,2]", &small, &v, &err), 0);
  rc__value_unref(v);
  CHECK_EQ_INT(parse_lim("{\"a\":1,\"b\":[]}", &small, &v, &err), 0);
  rc__value_unref(v);
  expect_error("[1,2,3]", &small, RC_ELIMIT, 1, 6, "more than 3 values in the document",
               __LINE__);
  expect_error("{\"a\":1,\"b\":[2]}", &small, RC_ELIMIT, 1, 13,
               "more than 3 values in the document", __LINE__);
  expect_error("{\"a\":1,\"b\":[123456789012345678901234567890]}", &small, RC_ELIMIT, 1, 13,
               "more than 3 values in the document", __LINE__);

  small = lim;
  small.max_bytes = 10;
  expect_error("[1,2,3,4,5]", &small, RC_ELIMIT, 0, 0,
               "input is 11 bytes, more than the limit of 10 bytes", __LINE__);
}

static char *write(const rc_value_t *v, bool pretty, bool nonfinite) {
  rc__buf b;
  rc__buf_init(&b);
  rc__json_write(&b, v, pretty, nonfinite);
  return rc__buf_take(&b);
}

static void check_float(double d, const char *want, int line) {
  rc_value_t *v = rc__value_float(d);
  char *j = write(v, false, true);
  if (strcmp(j, want) != 0) fprintf(stderr, "test_json.c:%d: float %.17g\n", line, d);
  CHECK_EQ_STR(j, want);
  /* and it reads back as the same float */
  if (isfinite(d)) {
    rc_value_t *back;
    rc_error err;
    CHECK_EQ_INT(parse_lim(j, NULL, &back, &err), 0);
    CHECK(rc_value_equal(v, back));
    rc__value_unref(back);
  }
  rc_free(j);
  rc__value_unref(v);
}
#define FLOAT(d, want) check_float(d, want, __LINE__)

static void test_write_numbers(void) {
  FLOAT(0.1, "0.1");
  FLOAT(1.0, "1.0");
  FLOAT(-0.0, "-0.0");
  FLOAT(100.0, "100.0");
  FLOAT(1e20, "1e+20");
  FLOAT(1.5e-7, "1.5e-07");
  FLOAT(0.1 + 0.2, "0.30000000000000004");
  FLOAT(123456789.123, "123456789.123");
  FLOAT(1.0 / 3.0, "0.3333333333333333");
  FLOAT(5e-324, "4.94065645841247e-324"); /* the smallest: 15 digits read back */
  FLOAT(1.7976931348623157e308, "1.7976931348623157e+308");
  FLOAT(NAN, "nan");
  FLOAT(INFINITY, "inf");
  FLOAT(-INFINITY, "-inf");
  rc_value_t *n = rc__value_float(NAN);
  char *j = write(n, false, false);
  CHECK_EQ_STR(j, "null");
  rc_free(j);
  rc__value_unref(n);
  rc_value_t *i = rc__value_int(INT64_MIN);
  j = write(i, false, false);
  CHECK_EQ_STR(j, "-9223372036854775808");
  rc_free(j);
  rc__value_unref(i);
  i = rc__value_int(INT64_MAX);
  j = write(i, false, false);
  CHECK_EQ_STR(j, "9223372036854775807");
  rc_free(j);
  rc__value_unref(i);
}

static void check_string(const char *s, size_t len, const char *want, int line) {
  rc_value_t *v = rc__value_string(s, len);
  char *j = write(v, false, false);
  if (strcmp(j, want) != 0) fprintf(stderr, "test_json.c:%d: string\n", line);
  CHECK_EQ_STR(j, want);
  rc_free(j);
  rc__value_unref(v);
}
#define STRING(lit, want) check_string(lit, sizeof(lit) - 1, want, __LINE__)

static void test_write_strings(void) {
  STRING("plain", "\"plain\"");
  STRING("q\"b\\s/", "\"q\\\"b\\\\s/\"");
  STRING("\n\r\t", "\"\\n\\r\\t\"");
  STRING("\x01\x1f\b\f\0", "\"\\u0001\\u001f\\b\\f\\u0000\"");
  STRING("\x7f", "\"\\u007f\""); /* DEL is escaped: terminals act on it */
  STRING("é€😀", "\"é€😀\"");
  STRING("a\xff" "b", "\"a\\ufffdb\"");                 /* not UTF-8 */
  STRING("\xc0\x80", "\"\\ufffd\\ufffd\"");             /* overlong */
  STRING("\xed\xa0\x80", "\"\\ufffd\\ufffd\\ufffd\"");  /* a surrogate */
  STRING("\xf4\x90\x80\x80", "\"\\ufffd\\ufffd\\ufffd\\ufffd\""); /* above U+10FFFF */
  STRING("\xe2\x82", "\"\\ufffd\\ufffd\"");             /* cut short */
}

static void test_write_pretty(void) {
  rc_value_t *v;
  rc_error err;
  CHECK_EQ_INT(parse_lim("{\"a\":[1,[],{}],\"b\":{\"c\":\"d\"},\"e\":[]}", NULL, &v, &err), 0);
  char *j = write(v, true, false);
  CHECK_EQ_STR(j, "{\n  \"a\": [\n    1,\n    [],\n    {}\n  ],\n  \"b\": {\n    \"c\": \"d\"\n  },\n"
                  "  \"e\": []\n}");
  rc_free(j);
  j = rc_value_to_json(v, false);
  CHECK_EQ_STR(j, "{\"a\":[1,[],{}],\"b\":{\"c\":\"d\"},\"e\":[]}");
  rc_free(j);
  rc__value_unref(v);
  j = rc_value_to_json(NULL, true);
  CHECK_EQ_STR(j, "null");
  rc_free(j);
}

/* ---- random round trips ---- */

static uint64_t rng = 88172645463325252ull;
static uint64_t next(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return rng;
}

static rc_value_t *random_value(int depth) {
  int kind = (int)(next() % (depth > 4 ? 5 : 7));
  char buf[40];
  switch (kind) {
  case 0: return rc__value_null();
  case 1: return rc__value_bool(next() & 1);
  case 2: return rc__value_int((int64_t)next() >> (next() % 64));
  case 3: {
    double d;
    do {
      uint64_t bits = next();
      memcpy(&d, &bits, sizeof d);
    } while (!isfinite(d));
    return rc__value_float(d);
  }
  case 4: {
    static const char *const parts[] = {"a", "é", "\n", "\"", "\\", "😀", "\x01", " ", "z"};
    size_t n = 0, k = next() % 8;
    buf[0] = '\0';
    for (size_t i = 0; i < k; i++) {
      const char *p = parts[next() % 9];
      memcpy(buf + n, p, strlen(p));
      n += strlen(p);
    }
    return rc__value_string(buf, n);
  }
  case 5: {
    rc__array_builder b;
    rc__array_begin(&b);
    for (int i = (int)(next() % 5); i > 0; i--) rc__array_push(&b, random_value(depth + 1));
    return rc__array_end(&b);
  }
  default: {
    rc__object_builder b;
    rc__object_begin(&b);
    for (int i = (int)(next() % 6); i > 0; i--) {
      int kl = snprintf(buf, sizeof buf, "k%d%s", (int)(next() % 20), next() % 3 ? "" : ".é");
      rc__object_put(&b, buf, (size_t)kl, random_value(depth + 1));
    }
    return rc__object_end(&b);
  }
  }
}

static void test_round_trips(void) {
  int bad = 0;
  for (int i = 0; i < 500; i++) {
    rc_value_t *v = random_value(0);
    for (int pretty = 0; pretty < 2; pretty++) {
      char *j = write(v, pretty, false);
      rc_value_t *back = NULL;
      rc_error err;
      if (parse_lim(j, NULL, &back, &err) || !rc_value_equal(v, back)) {
        if (bad++ < 3) fprintf(stderr, "  round trip failed: %s (%s)\n", j, err.message);
      }
      rc__value_unref(back);
      rc_free(j);
    }
    rc__value_unref(v);
  }
  CHECK_EQ_INT(bad, 0);
}

/* Parsing under an allocator that fails the Nth allocation: an error, never a crash or a
 * leak, until N is large enough. Covers the simdjson path, the yajl path (a big number)
 * and the error path. */
static void alloc_failure(const char *doc, int want_rc) {
  long n;
  int rc = RC_ENOMEM;
  for (n = 0; n < 100000 && rc == RC_ENOMEM; n++) {
    fa_install(n);
    rc_value_t *v = NULL;
    rc_error err;
    rc = rc__parse_json(doc, strlen(doc), 0, NULL, NULL, &v, &err);
    rc__value_unref(v);
    if (fa_live != 0) {
      CHECK_EQ_INT(fa_live, 0);
      break;
    }
  }
  fa_uninstall();
  CHECK_EQ_INT(rc, want_rc);
  CHECK(n > 1);
}

static void test_alloc_failure(void) {
  const char *doc = "{\"list\":[1,2.5,\"three\",{\"four\":[true,null]}],\"k\":{\"a\":\"b\","
                    "\"a\":\"c\"},\"long\":\"" "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
                    "\",\"e\":[],\"o\":{}}";
  alloc_failure(doc, 0);
  alloc_failure("{\"big\":[123456789012345678901234567890,{\"x\":\"y\"}],\"k\":[1]}", 0);
  alloc_failure("{\"a\":[1,2,{\"b\":\"c\"}] \"d\":1}", RC_EPARSE);
}

/* A document big enough to fill more than one arena chunk, with a long string: N records
 * (each with a duplicate key) and the long string last. */
static char *big_doc(int n, size_t longlen) {
  rc__buf b;
  rc__buf_init(&b);
  rc__buf_adds(&b, "{\"items\":[");
  for (int i = 0; i < n; i++) {
    char rec[96];
    snprintf(rec, sizeof rec, "%s{\"k\":%d,\"s\":\"str %d\",\"k\":%d}", i ? "," : "", i, i,
             -i);
    rc__buf_adds(&b, rec);
  }
  rc__buf_adds(&b, "],\"long\":\"");
  for (size_t i = 0; i < longlen; i++) rc__buf_addc(&b, (char)('a' + i % 26));
  rc__buf_adds(&b, "\"}");
  return rc__buf_take(&b);
}

/* The tree of a document lives in one arena (value.h): every node, in whichever chunk,
 * holds its value; a reference to any node keeps the whole document alive after its
 * root is released; a new tree may share the document's nodes. */
static void test_arena(void) {
  char *doc = big_doc(20000, 300000);
  rc_value_t *v;
  rc_error err;
  CHECK_EQ_INT(parse_lim(doc, NULL, &v, &err), 0);
  const rc_value_t *items = rc_value_get(v, "items");
  CHECK_EQ_INT(rc_value_len(items), 20000);
  bool all = true;
  for (int i = 0; i < 20000 && all; i += 997) {
    const rc_value_t *r = rc_value_at(items, (size_t)i);
    int64_t k = 1;
    const char *s = NULL;
    char want[32];
    snprintf(want, sizeof want, "str %d", i);
    all = rc_value_len(r) == 2 && rc_value_int(rc_value_get(r, "k"), &k) == 0 &&
          k == -i && rc_value_string(rc_value_get(r, "s"), &s, NULL) == 0 &&
          strcmp(s, want) == 0;
  }
  CHECK(all); /* the duplicate "k" kept its first place and took its last value */
  const char *ls = NULL;
  size_t ll = 0;
  CHECK_EQ_INT(rc_value_string(rc_value_get(v, "long"), &ls, &ll), 0);
  CHECK_EQ_INT(ll, 300000);
  CHECK(ls && ls[0] == 'a' && ls[299999] == 'a' + 299999 % 26 && ls[300000] == '\0');

  /* a subtree and a new object sharing members outlive the document's root */
  rc_value_t *last = rc__value_ref(rc_value_at(items, 19999));
  rc_value_t *with = rc__object_with(v, "added", rc__value_int(7));
  rc__value_unref(v);
  const char *s = NULL;
  CHECK_EQ_INT(rc_value_string(rc_value_get(last, "s"), &s, NULL), 0);
  CHECK_EQ_STR(s, "str 19999");
  CHECK_EQ_INT(rc_value_len(rc_value_get(with, "items")), 20000);
  rc__value_unref(with);
  CHECK_EQ_STR(rc_value_get(last, "s")->u.s, "str 19999");
  rc__value_unref(last);

  /* records in an array: the same keys (the index is reused from the record before), a
   * new order, a duplicate key after and before a record of the same keys */
  const char *recs = "[{\"b\":1,\"a\":2,\"c\":3},{\"b\":4,\"a\":5,\"c\":6},"
                     "{\"a\":7,\"b\":8,\"c\":9},{\"a\":1,\"a\":2,\"b\":3},"
                     "{\"a\":4,\"b\":5},{\"a\":6,\"b\":7,\"b\":8}]";
  CHECK_JSON(recs, "[{\"b\":1,\"a\":2,\"c\":3},{\"b\":4,\"a\":5,\"c\":6},"
                   "{\"a\":7,\"b\":8,\"c\":9},{\"a\":2,\"b\":3},{\"a\":4,\"b\":5},"
                   "{\"a\":6,\"b\":8}]");
  rc_value_t *rv;
  CHECK_EQ_INT(parse_lim(recs, NULL, &rv, &err), 0);
  static const int64_t want_a[] = {2, 5, 7, 2, 4, 6}, want_b[] = {1, 4, 8, 3, 5, 8};
  bool found = true;
  for (size_t i = 0; i < 6; i++) {
    const rc_value_t *r = rc_value_at(rv, i);
    int64_t a = 0, b = 0;
    found = found && rc_value_int(rc_value_get(r, "a"), &a) == 0 && a == want_a[i] &&
            rc_value_int(rc_value_get(r, "b"), &b) == 0 && b == want_b[i] &&
            (rc_value_get(r, "c") != NULL) == (i < 3) && rc_value_get(r, "d") == NULL;
  }
  CHECK(found);
  rc__value_unref(rv);

  /* failing allocations among the chunks leak nothing */
  alloc_failure(doc, 0);
  rc_free(doc);
}

int main(void) {
  test_values();
  test_padding();
  test_errors();
  test_truncation();
  test_limits();
  test_write_numbers();
  test_write_strings();
  test_write_pretty();
  test_round_trips();
  test_alloc_failure();
  test_arena();
  return check_report("json");
}
