/* SPDX-License-Identifier: MIT (see LICENSE) */
/* test_yaml.c: YAML in, through libfyaml. One group per rule of yaml_parse.c: the core
 * schema for plain scalars, quoted and block scalars, every tag rule, anchors sharing
 * their value, merge keys, mapping keys and duplicates, the one-document rule, UTF-8 only,
 * the YAML 1.2 syntax libyaml (1.1) got wrong and each 1.2 feature refused on purpose,
 * error messages with their exact line and column, the limits (a billion-laughs document
 * included), every truncation and many corruptions of a document, and an allocator that
 * fails at every step. test_yaml_suite.c runs the whole YAML test suite. */
#include "check.h"
#include "failalloc.h"
#include "parse.h"
#include "yaml_parse.h"

#include <math.h>
#include <stdlib.h>

/* ==== helpers ==== */

static int parse_n(const char *text, size_t len, const rc__parse_limits *lim,
                   rc_value_t **out, rc_error *err) {
  memset(err, 0, sizeof *err);
  *out = NULL;
  return rc__parse_yaml(text, len, "t.yaml", lim, out, err);
}

static int parse(const char *text, const rc__parse_limits *lim, rc_value_t **out,
                 rc_error *err) {
  return parse_n(text, strlen(text), lim, out, err);
}

/* Parses `text` and returns its compact JSON (caller frees), or NULL on error. */
static char *to_json(const char *text, size_t len) {
  rc_value_t *v;
  rc_error err;
  if (parse_n(text, len, NULL, &v, &err)) {
    fprintf(stderr, "  unexpected error for <%s>: %d:%d: %s\n", text, err.line, err.column,
            err.message);
    return NULL;
  }
  char *j = rc_value_to_json(v, false);
  rc__value_unref(v);
  return j;
}

#define CHECK_YAML(text, want)                   \
  do {                                           \
    char *j_ = to_json(text, strlen(text));      \
    CHECK_EQ_STR(j_, want);                      \
    rc_free(j_);                                 \
  } while (0)

/* Expects a failure with this code, position and message; every error names the file
 * and has a position. */
static void expect_error_n(const char *text, size_t len, const rc__parse_limits *lim,
                           int code, int line, int col, const char *msg, int at) {
  rc_value_t *v;
  rc_error err;
  int rc = parse_n(text, len, lim, &v, &err);
  if (rc != code || err.line != line || err.column != col || strcmp(err.message, msg) != 0)
    fprintf(stderr,
            "test_yaml.c:%d: for input <%s>\n  got  %s %d:%d: %s\n  want %s %d:%d: %s\n", at,
            text, rc_err_name(rc), err.line, err.column, err.message, rc_err_name(code), line,
            col, msg);
  CHECK_EQ_INT(rc, code);
  CHECK_EQ_INT(err.line, line);
  CHECK_EQ_INT(err.column, col);
  CHECK_EQ_STR(err.message, msg);
  CHECK(v == NULL);
  if (rc) CHECK_EQ_STR(err.file, "t.yaml");
  rc__value_unref(v);
}
#define ERR(text, line, col, msg) \
  expect_error_n(text, strlen(text), NULL, RC_EPARSE, line, col, msg, __LINE__)
#define ERR_N(text, line, col, msg) \
  expect_error_n(text, sizeof text - 1, NULL, RC_EPARSE, line, col, msg, __LINE__)
#define LIMIT(text, lim, line, col, msg) \
  expect_error_n(text, strlen(text), lim, RC_ELIMIT, line, col, msg, __LINE__)

static const char *const unsupported =
    " (reactcfg reads !!str, !!int, !!float, !!bool, !!null, !!map and !!seq)";

/* The message for an unsupported tag. */
static const char *unsupported_tag(const char *tag, char *buf, size_t n) {
  snprintf(buf, n, "unsupported tag '%s'%s", tag, unsupported);
  return buf;
}

/* The type of the single value of `text`, and the number when it has one. */
static rc_type_t scalar(const char *text, double *num) {
  rc_value_t *v;
  rc_error err;
  if (parse(text, NULL, &v, &err)) return (rc_type_t)-1;
  rc_type_t t = rc_value_type(v);
  if (num) *num = 0;
  if (num && (t == RC_TYPE_INT || t == RC_TYPE_FLOAT)) rc_value_number(v, num);
  rc__value_unref(v);
  return t;
}

/* ==== the YAML 1.2 core schema for plain scalars ==== */

static void test_core_schema(void) {
  /* null */
  CHECK_YAML("[null, Null, NULL, ~, ]", "[null,null,null,null]");
  CHECK_YAML("a:\nb: ~\nc: null", "{\"a\":null,\"b\":null,\"c\":null}");
  CHECK_YAML("[nULL, nil, None, '']", "[\"nULL\",\"nil\",\"None\",\"\"]");
  /* booleans: only true and false; YAML 1.1's yes/no/on/off/y/n are strings in 1.2 */
  CHECK_YAML("[true, True, TRUE, false, False, FALSE]", "[true,true,true,false,false,false]");
  CHECK_YAML("[yes, no, on, off, Yes, NO, On, OFF, y, n, tRUE]",
             "[\"yes\",\"no\",\"on\",\"off\",\"Yes\",\"NO\",\"On\",\"OFF\",\"y\",\"n\","
             "\"tRUE\"]");
  /* integers: decimal with a sign (leading zeros are decimal in 1.2), 0x, 0o */
  CHECK_YAML("[0, -12, +3, 0123, 0x1F, 0xff, 0o17, 0o0]", "[0,-12,3,123,31,255,15,0]");
  CHECK_YAML("[9223372036854775807, -9223372036854775808, 0x7FFFFFFFFFFFFFFF]",
             "[9223372036854775807,-9223372036854775808,9223372036854775807]");
  CHECK_EQ_INT(scalar("42", NULL), RC_TYPE_INT);
  CHECK_EQ_INT(scalar("0o777", NULL), RC_TYPE_INT);
  /* shapes of other schemas stay strings */
  CHECK_YAML("[-0x10, +0o7, 0x, 0o, 0x1G, 0o8, 0b101, 1_000, 12:30:00, 1.2.3, 08e]",
             "[\"-0x10\",\"+0o7\",\"0x\",\"0o\",\"0x1G\",\"0o8\",\"0b101\",\"1_000\","
             "\"12:30:00\",\"1.2.3\",\"08e\"]");
  /* floats */
  CHECK_YAML("[1.5, .5, 5., -1.5E-2, 1e3, +2.5e+2, 0.0, -0.0]",
             "[1.5,0.5,5.0,-0.015,1000.0,250.0,0.0,-0.0]");
  CHECK_EQ_INT(scalar("1e3", NULL), RC_TYPE_FLOAT);
  double d;
  const char *infs[] = {".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF"};
  for (size_t k = 0; k < sizeof infs / sizeof infs[0]; k++) {
    CHECK_EQ_INT(scalar(infs[k], &d), RC_TYPE_FLOAT);
    CHECK(isinf(d) && d > 0);
  }
  const char *ninfs[] = {"-.inf", "-.Inf", "-.INF"};
  for (size_t k = 0; k < sizeof ninfs / sizeof ninfs[0]; k++) {
    CHECK_EQ_INT(scalar(ninfs[k], &d), RC_TYPE_FLOAT);
    CHECK(isinf(d) && d < 0);
  }
  const char *nans[] = {".nan", ".NaN", ".NAN"};
  for (size_t k = 0; k < sizeof nans / sizeof nans[0]; k++) {
    CHECK_EQ_INT(scalar(nans[k], &d), RC_TYPE_FLOAT);
    CHECK(isnan(d));
  }
  /* beyond the double range: infinity, as reading an IEEE double rounds it */
  CHECK_EQ_INT(scalar("1e400", &d), RC_TYPE_FLOAT);
  CHECK(isinf(d));
  CHECK_YAML("[.InF, -.nan, nan, inf, ., e3, 1e, .e1, +, '-']",
             "[\".InF\",\"-.nan\",\"nan\",\"inf\",\".\",\"e3\",\"1e\",\".e1\",\"+\",\"-\"]");
  /* everything else is a string, spaces inside included */
  CHECK_YAML("a: hello world\nb: 1 2\nc: true story", "{\"a\":\"hello world\",\"b\":\"1 2\","
             "\"c\":\"true story\"}");
  CHECK_YAML("x: é€😀", "{\"x\":\"é€😀\"}");
}

/* Integers beyond int64 are errors at the scalar, not floats. */
static void test_int_overflow(void) {
  ERR("a: 9223372036854775808", 1, 4,
      "integer 9223372036854775808 does not fit in 64 bits (quote it to keep it as a "
      "string)");
  ERR("- 1\n- -9223372036854775809", 2, 3,
      "integer -9223372036854775809 does not fit in 64 bits (quote it to keep it as a "
      "string)");
  ERR("x: 0x8000000000000000", 1, 4,
      "integer 0x8000000000000000 does not fit in 64 bits (quote it to keep it as a string)");
  ERR("x: 0o1000000000000000000000", 1, 4,
      "integer 0o1000000000000000000000 does not fit in 64 bits (quote it to keep it as a "
      "string)");
  ERR("n: !!int 99999999999999999999", 1, 4,
      "integer 99999999999999999999 does not fit in 64 bits");
  /* as a key it is only text; quoted it is a string */
  CHECK_YAML("99999999999999999999: a", "{\"99999999999999999999\":\"a\"}");
  CHECK_YAML("a: '99999999999999999999'", "{\"a\":\"99999999999999999999\"}");
}

/* Quoted and block scalars are strings whatever they look like. */
static void test_quoted_and_block(void) {
  CHECK_YAML("['null', \"true\", '12', \"1.5\", '~', '', \"0x10\", \".inf\"]",
             "[\"null\",\"true\",\"12\",\"1.5\",\"~\",\"\",\"0x10\",\".inf\"]");
  CHECK_YAML("a: |\n  12\nb: >-\n  true\nc: |-\n  null\n",
             "{\"a\":\"12\\n\",\"b\":\"true\",\"c\":\"null\"}");
  CHECK_YAML("a: \"tab\\there \\u00e9 \\x41 \\0\"", "{\"a\":\"tab\\there é A \\u0000\"}");
  CHECK_YAML("a: 'it''s'", "{\"a\":\"it's\"}");
  CHECK_YAML("folded: >\n  one\n  two\n\n  three\n",
             "{\"folded\":\"one two\\nthree\\n\"}");
  /* libfyaml 0.7.12 leaks the text it builds for such a scalar if asked through
   * fy_token_get_text (ASan's leak check fails here if it is used again) */
  char q[80] = "'", want[80] = "\"";
  for (int k = 0; k < 30; k++) {
    strcat(q, "''");
    strcat(want, "'");
  }
  strcat(q, "'");
  strcat(want, "\"");
  CHECK_YAML(q, want);
  CHECK_YAML("\"\\t\\u00e9\\x41 a\\\n  b\\\\ \\\" long enough to be built piece by piece\"",
             "\"\\téA ab\\\\ \\\" long enough to be built piece by piece\"");
}

/* ==== tags ==== */

static void test_tags(void) {
  char buf[256];
  /* honoured: content converted to the tag's kind, whatever the style */
  CHECK_YAML("[!!str 12, !!str true, !!str ~, !!str ]", "[\"12\",\"true\",\"~\",\"\"]");
  CHECK_YAML("[!!int 12, !!int \"-3\", !!int 0x10, !!int '0o17']", "[12,-3,16,15]");
  CHECK_YAML("[!!float 1, !!float 2.5, !!float \"1e2\", !!float 0x10]",
             "[1.0,2.5,100.0,16.0]");
  CHECK_EQ_INT(scalar("!!float 99999999999999999999", NULL), RC_TYPE_FLOAT);
  double d;
  CHECK_EQ_INT(scalar("!!float .inf", &d), RC_TYPE_FLOAT);
  CHECK(isinf(d));
  CHECK_YAML("[!!bool true, !!bool 'False']", "[true,false]");
  CHECK_YAML("[!!null null, !!null '', !!null ~, !!null ]", "[null,null,null,null]");
  CHECK_YAML("!!map {a: 1}", "{\"a\":1}");
  CHECK_YAML("!!seq [1]", "[1]");
  CHECK_YAML("a: !!map\n  b: 1\nc: !!seq\n  - 2", "{\"a\":{\"b\":1},\"c\":[2]}");
  /* the non-specific tag '!': a scalar is a string, a collection stays itself */
  CHECK_YAML("[! 12, ! true, ! [1], ! {a: 1}]", "[\"12\",\"true\",[1],{\"a\":1}]");
  /* verbatim and %TAG forms of the same tags */
  CHECK_YAML("!<tag:yaml.org,2002:str> 12", "\"12\"");
  CHECK_YAML("%TAG !y! tag:yaml.org,2002:\n---\n!y!int '7'", "7");
  /* content that does not fit the tag */
  ERR("a: !!int abc", 1, 4, "'abc' is not an integer (tag !!int)");
  ERR("a: !!int 1.5", 1, 4, "'1.5' is not an integer (tag !!int)");
  ERR("a: !!int", 1, 4, "'' is not an integer (tag !!int)");
  ERR("a: !!float abc", 1, 4, "'abc' is not a float (tag !!float)");
  ERR("a: !!bool yes", 1, 4,
      "'yes' is not a boolean (tag !!bool; YAML 1.2 booleans are true and false)");
  ERR("a: !!null 0", 1, 4, "'0' is not null (tag !!null)");
  ERR("- !!map x", 1, 3, "tag !!map cannot apply to a scalar");
  ERR("- !!seq x", 1, 3, "tag !!seq cannot apply to a scalar");
  ERR("- !!map [1]", 1, 3, "tag !!map cannot apply to a sequence");
  ERR("- !!seq {a: 1}", 1, 3, "tag !!seq cannot apply to a mapping");
  ERR("- !!int [1]", 1, 3, "tag !!int cannot apply to a sequence");
  ERR("- !!str {a: 1}", 1, 3, "tag !!str cannot apply to a mapping");
  /* every other tag */
  ERR("a: !foo x", 1, 4, unsupported_tag("!foo", buf, sizeof buf));
  ERR("a: !!binary aGk=", 1, 4, unsupported_tag("!!binary", buf, sizeof buf));
  ERR("a: !!timestamp 2001-12-14", 1, 4, unsupported_tag("!!timestamp", buf, sizeof buf));
  ERR("a: !!set {x, y}", 1, 4, unsupported_tag("!!set", buf, sizeof buf));
  ERR("a: !!omap [x: 1]", 1, 4, unsupported_tag("!!omap", buf, sizeof buf));
  ERR("a: !!pairs [x: 1]", 1, 4, unsupported_tag("!!pairs", buf, sizeof buf));
  ERR("a: !thing [1]", 1, 4, unsupported_tag("!thing", buf, sizeof buf));
  ERR("a: !<tag:example.com,2000:app> x", 1, 4,
      unsupported_tag("!<tag:example.com,2000:app>", buf, sizeof buf));
  ERR("%TAG !e! tag:example.com,2000:\n---\n!e!foo x", 3, 1,
      unsupported_tag("!<tag:example.com,2000:foo>", buf, sizeof buf));
  /* tags on keys are checked too; the key is still the text */
  CHECK_YAML("!!int 0x10: a", "{\"0x10\":\"a\"}");
  ERR("!!int ten: a", 1, 1, "'ten' is not an integer (tag !!int)");
  ERR("!foo k: a", 1, 1, unsupported_tag("!foo", buf, sizeof buf));
}

/* ==== anchors and aliases ==== */

static void test_anchors(void) {
  CHECK_YAML("a: &x {b: [1, 2]}\nc: *x\nd: [*x, *x]",
             "{\"a\":{\"b\":[1,2]},\"c\":{\"b\":[1,2]},\"d\":[{\"b\":[1,2]},{\"b\":[1,2]}]}");
  /* an alias is the same node, not a copy */
  rc_value_t *v;
  rc_error err;
  CHECK_EQ_INT(parse("a: &x {b: [1, 2]}\nc: *x\nd: [*x, *x]\ns: &s hello\nt: *s", NULL, &v,
                     &err), 0);
  const rc_value_t *a = rc_value_get(v, "a");
  CHECK(a != NULL);
  CHECK(rc_value_get(v, "c") == a);
  CHECK(rc_value_at(rc_value_get(v, "d"), 0) == a);
  CHECK(rc_value_at(rc_value_get(v, "d"), 1) == a);
  CHECK(rc_value_get(v, "t") == rc_value_get(v, "s"));
  CHECK_EQ_INT(atomic_load(&a->refs), 4);
  rc__value_unref(v);
  /* scalars keep their resolved type through an alias */
  CHECK_YAML("- &n 12\n- *n\n- &t true\n- *t\n- &z ~\n- *z", "[12,12,true,true,null,null]");
  /* an anchor may be redefined: an alias names the latest one before it */
  CHECK_YAML("- &a 1\n- *a\n- &a 2\n- *a", "[1,1,2,2]");
  CHECK_YAML("- &a [&a x, *a]\n- *a", "[[\"x\",\"x\"],\"x\"]");
  ERR("a: *nope", 1, 4, "undefined alias '*nope'");
  ERR("a: *b\nb: &b 1", 1, 4, "undefined alias '*b'");
  ERR("a: &a [1, *a]", 1, 11,
      "alias '*a' is used inside the node it names (recursive aliases are not supported)");
  ERR("a: &m\n  b: *m", 2, 6,
      "alias '*m' is used inside the node it names (recursive aliases are not supported)");
}

/* ==== merge keys ==== */

static void test_merge(void) {
  /* one mapping: its keys join, keys written in the mapping win */
  CHECK_YAML("base: &b {x: 1, y: 2}\nd:\n  <<: *b\n  y: 3\n  z: 4",
             "{\"base\":{\"x\":1,\"y\":2},\"d\":{\"x\":1,\"y\":3,\"z\":4}}");
  /* ... even when written before the '<<'; merged keys sit where '<<' was */
  CHECK_YAML("b: &b {x: 1, y: 2}\nd: {y: 0, <<: *b, z: 5}",
             "{\"b\":{\"x\":1,\"y\":2},\"d\":{\"y\":0,\"x\":1,\"z\":5}}");
  /* a sequence of mappings: earlier ones win over later ones */
  CHECK_YAML("a: &a {x: 1}\nb: &b {x: 2, y: 2}\nc: &c {y: 3, w: 3}\n"
             "m: {<<: [*a, *b, *c], z: 0}",
             "{\"a\":{\"x\":1},\"b\":{\"x\":2,\"y\":2},\"c\":{\"y\":3,\"w\":3},"
             "\"m\":{\"x\":1,\"y\":2,\"w\":3,\"z\":0}}");
  /* a sequence, overridden by the mapping's own keys */
  CHECK_YAML("a: &a {x: 1, k: a}\nb: &b {y: 2, k: b}\nm:\n  k: mine\n  <<: [*a, *b]",
             "{\"a\":{\"x\":1,\"k\":\"a\"},\"b\":{\"y\":2,\"k\":\"b\"},"
             "\"m\":{\"k\":\"mine\",\"x\":1,\"y\":2}}");
  /* an inline mapping works too, and the merged values are shared */
  CHECK_YAML("m: {<<: {p: 1}, q: 2}", "{\"m\":{\"p\":1,\"q\":2}}");
  rc_value_t *v;
  rc_error err;
  CHECK_EQ_INT(parse("b: &b {x: [1]}\nd: {<<: *b}", NULL, &v, &err), 0);
  CHECK(rc_value_get(rc_value_get(v, "d"), "x") == rc_value_get(rc_value_get(v, "b"), "x"));
  rc__value_unref(v);
  /* !!merge spells it out; a quoted "<<" is an ordinary key */
  CHECK_YAML("{!!merge <<: {a: 1}}", "{\"a\":1}");
  CHECK_YAML("{\"<<\": 1, '<<x': 2}", "{\"<<\":1,\"<<x\":2}");
  /* merging is per mapping: nested mappings are not merged deeply */
  CHECK_YAML("b: &b {o: {x: 1}}\nd:\n  <<: *b\n  o: {y: 2}",
             "{\"b\":{\"o\":{\"x\":1}},\"d\":{\"o\":{\"y\":2}}}");
  ERR("d: {<<: 1}", 1, 9,
      "the value of a merge key '<<' must be a mapping or a sequence of mappings");
  ERR("a: &a {x: 1}\nd:\n  <<: [*a, [2]]", 3, 7,
      "the value of a merge key '<<' must be a mapping or a sequence of mappings");
  ERR("a: &a {x: 1}\nd:\n  <<: *a\n  <<: *a", 4, 3, "duplicate key '<<' (first at line 3)");
}

/* ==== mapping keys ==== */

static void test_keys(void) {
  /* non-string scalar keys become their text, as written */
  CHECK_YAML("1: a\ntrue: b\n~: c\nnull: d\n1.50: e\n0x1F: f\n'': g",
             "{\"1\":\"a\",\"true\":\"b\",\"~\":\"c\",\"null\":\"d\",\"1.50\":\"e\","
             "\"0x1F\":\"f\",\"\":\"g\"}");
  CHECK_YAML("? k\n: v", "{\"k\":\"v\"}");
  CHECK_YAML("{? , x: 1}", "{\"\":null,\"x\":1}");
  /* an alias as a key: the text of the anchored scalar */
  CHECK_YAML("x: &k 0x1F\ny: {*k : v}", "{\"x\":31,\"y\":{\"0x1F\":\"v\"}}");
  CHECK_YAML("&k key: 1\nother: {*k : 2}", "{\"key\":1,\"other\":{\"key\":2}}");
  /* libfyaml 0.7.12 frees a simple key twice on a tab after ':' inside an explicit key
   * and then crashes in fy_parser_destroy (scripts/fuzz yaml): refused before it parses */
  ERR("? b:\t-", 1, 5,
      "a tab after ':' in a document with an explicit key ('?') is refused: the YAML "
      "library mishandles it; use spaces");
  ERR("? ab:\t- \n\n  -\" -\tc\n     -0 d\n-\tb\n ", 1, 6,
      "a tab after ':' in a document with an explicit key ('?') is refused: the YAML "
      "library mishandles it; use spaces");
  ERR("? k\n: v\nx:  \ty", 3, 5,
      "a tab after ':' in a document with an explicit key ('?') is refused: the YAML "
      "library mishandles it; use spaces");
  ERR("{? a: 1, b:\tc}", 1, 12, /* a flow explicit key counts too */
      "a tab after ':' in a document with an explicit key ('?') is refused: the YAML "
      "library mishandles it; use spaces");
  CHECK_YAML("? k\n: v\nx:  y", "{\"k\":\"v\",\"x\":\"y\"}"); /* spaces */
  CHECK_YAML("a:\tb\nc: d?", "{\"a\":\"b\",\"c\":\"d?\"}");  /* no explicit key */
  /* complex keys */
  ERR("[a, b]: c", 1, 1,
      "a mapping key must be a scalar: a sequence cannot be a key (complex keys are not "
      "supported)");
  ERR("? {a: 1}\n: b", 1, 3,
      "a mapping key must be a scalar: a mapping cannot be a key (complex keys are not "
      "supported)");
  ERR("x: &m {a: 1}\ny: {*m : 1}", 2, 5,
      "a mapping key must be a scalar, but alias '*m' names a mapping");
  /* duplicates, reported where the key is written the second time */
  ERR("a: 1\nb: 2\na: 3", 3, 1, "duplicate key 'a' (first at line 1)");
  ERR("x:\n  k: 1\n  j: 2\n  k: 3", 4, 3, "duplicate key 'k' (first at line 2)");
  ERR("{1: a, '1': b}", 1, 8, "duplicate key '1' (first at line 1)");
  ERR("{a: 1, b: 2, c: 3, b: 4, a: 5}", 1, 20, "duplicate key 'b' (first at line 1)");
  ERR("x: &k 1\ny: {1: a, *k : b}", 2, 11, "duplicate key '1' (first at line 2)");
  ERR("'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa': 1\n"
      "'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa': 2",
      2, 1,
      "duplicate key 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa...' "
      "(first at line 1)");
  /* a cut in a message never splits a character */
  ERR("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaéb: 1\n"
      "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaéb: 2",
      2, 1,
      "duplicate key 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa...' "
      "(first at line 1)");
  /* YAML limits implicit keys to 1024 characters; longer ones are explicit ('? key') */
  rc__buf b;
  rc__buf_init(&b);
  for (int k = 0; k < 1100; k++) rc__buf_addc(&b, 'k');
  rc__buf_adds(&b, ": v");
  ERR(b.p, 1, 1101,
      "a key longer than 1024 characters must be written as an explicit key ('? key' on "
      "one line, ': value' on the next)");
  rc__buf_reset(&b);
  rc__buf_adds(&b, "? ");
  for (int k = 0; k < 1100; k++) rc__buf_addc(&b, 'k');
  rc__buf_adds(&b, "\n: v");
  char *j = to_json(b.p, b.n);
  CHECK(j && strlen(j) == 1100 + 8);
  rc_free(j);
  /* the same key in different mappings is fine */
  CHECK_YAML("a: {k: 1}\nb: {k: 2}", "{\"a\":{\"k\":1},\"b\":{\"k\":2}}");
  /* many keys, one duplicate at the end */
  rc__buf_reset(&b);
  for (int k = 0; k < 5000; k++) rc__buf_printf(&b, "key%d: %d\n", k, k);
  rc__buf_adds(&b, "key1234: again\n");
  ERR(b.p, 5001, 1, "duplicate key 'key1234' (first at line 1235)");
  rc__buf_free(&b);
}

/* ==== documents ==== */

static void test_documents(void) {
  CHECK_YAML("", "null");
  CHECK_YAML("# only a comment\n", "null");
  CHECK_YAML("---\n", "null");
  CHECK_YAML("--- 5\n...\n", "5");
  CHECK_YAML("%YAML 1.2\n---\na: 1\n...\n# trailing comment\n", "{\"a\":1}");
  const char *two = "the file has several YAML documents; reactcfg reads exactly one "
                    "(second document at line %d)";
  char msg[200];
  snprintf(msg, sizeof msg, two, 3);
  ERR("a: 1\nb: 2\n---\nc: 3", 3, 1, msg);
  snprintf(msg, sizeof msg, two, 2);
  ERR("--- 1\n--- 2", 2, 1, msg);
  snprintf(msg, sizeof msg, two, 4);
  ERR("---\na: 1\n...\n---\nb: 2\n", 4, 1, msg);
  snprintf(msg, sizeof msg, two, 2);
  ERR("---\n---\n", 2, 1, msg);
}

/* ==== encoding ==== */

static void test_encoding(void) {
  CHECK_YAML("\xEF\xBB\xBF" "a: 1", "{\"a\":1}");
  /* the UTF-8 byte order mark is not a column */
  ERR("\xEF\xBB\xBF" "a: b: c", 1, 5,
      "mapping values are not allowed here (quote a value that contains ': ', or check the "
      "indentation)");
  ERR_N("\xFF\xFE" "a\0:\0 \0" "1\0", 1, 1,
        "the file is UTF-16 (it starts with a UTF-16 byte order mark); YAML is read as UTF-8 "
        "only: convert the file to UTF-8");
  ERR_N("\xFE\xFF\0a\0:\0 \0" "1", 1, 1,
        "the file is UTF-16 (it starts with a UTF-16 byte order mark); YAML is read as UTF-8 "
        "only: convert the file to UTF-8");
  ERR_N("\xFF\xFE\0\0" "a\0\0\0", 1, 1,
        "the file is UTF-32 (it starts with a UTF-32 byte order mark); YAML is read as UTF-8 "
        "only: convert the file to UTF-8");
  ERR_N("\0\0\xFE\xFF\0\0\0a", 1, 1,
        "the file is UTF-32 (it starts with a UTF-32 byte order mark); YAML is read as UTF-8 "
        "only: convert the file to UTF-8");
  ERR_N("a\0:\0 \0" "1\0", 1, 1,
        "the file looks like UTF-16 or UTF-32 (it starts with a NUL byte); YAML is read as "
        "UTF-8 only: convert the file to UTF-8");
  /* invalid UTF-8: a bad lead byte, a cut sequence, overlong, a surrogate, past U+10FFFF */
  ERR("a: b\nc: \xC3(", 2, 4, "invalid UTF-8 (byte 0xC3); YAML must be UTF-8");
  ERR("a: \xFF", 1, 4, "invalid UTF-8 (byte 0xFF); YAML must be UTF-8");
  ERR("a: \xE2\x82", 1, 4, "invalid UTF-8 (byte 0xE2); YAML must be UTF-8");
  ERR("a: \xC0\xAF", 1, 4, "invalid UTF-8 (byte 0xC0); YAML must be UTF-8");
  ERR("a: \xED\xA0\x80", 1, 4, "invalid UTF-8 (byte 0xED); YAML must be UTF-8");
  ERR("a: \xF4\x90\x80\x80", 1, 4, "invalid UTF-8 (byte 0xF4); YAML must be UTF-8");
  ERR("é: 'ü\xFF'", 1, 6, "invalid UTF-8 (byte 0xFF); YAML must be UTF-8");
  ERR("a: 1\r\nb: \x80", 2, 4, "invalid UTF-8 (byte 0x80); YAML must be UTF-8");
  /* characters YAML does not allow */
  ERR("a: \x01", 1, 4,
      "control character U+0001 is not allowed in YAML (write it as an escape in a "
      "double-quoted string)");
  ERR_N("a: 1\n\0", 2, 1,
        "control character U+0000 is not allowed in YAML (write it as an escape in a "
        "double-quoted string)");
  ERR("a: \x7F", 1, 4,
      "control character U+007F is not allowed in YAML (write it as an escape in a "
      "double-quoted string)");
  ERR("a: \xC2\x80", 1, 4,
      "control character U+0080 is not allowed in YAML (write it as an escape in a "
      "double-quoted string)");
  ERR("a: \xEF\xBF\xBF", 1, 4,
      "control character U+FFFF is not allowed in YAML (write it as an escape in a "
      "double-quoted string)");
  CHECK_YAML("a: \"\\x01\"", "{\"a\":\"\\u0001\"}");
}

/* ==== YAML 1.2: what libyaml (a 1.1 parser) got wrong, and what we refuse ==== */

static void test_yaml12(void) {
  /* '?' followed by a non-blank is part of a plain scalar; "? " starts an explicit key */
  CHECK_YAML("{?x: 1, y: 2}", "{\"?x\":1,\"y\":2}");
  CHECK_YAML("[?x]", "[\"?x\"]");
  CHECK_YAML("[? a : b]", "[{\"a\":\"b\"}]");
  CHECK_YAML("{? a, b: c}", "{\"a\":null,\"b\":\"c\"}");
  /* a line of spaces longer than the indentation, kept in a literal block scalar */
  CHECK_YAML("k: |\n  a\n   \n", "{\"k\":\"a\\n \\n\"}");
  /* anchors may contain ':' */
  CHECK_YAML("a: &x:y 1\nb: *x:y", "{\"a\":1,\"b\":1}");
  /* implicit keys: a JSON-like key may be followed by ':' on the next line in flow
   * context, or directly by its value; ':' may start a plain value */
  CHECK_YAML("{\"foo\"\n: \"bar\"}", "{\"foo\":\"bar\"}");
  CHECK_YAML("- { \"key\":value }", "[{\"key\":\"value\"}]");
  CHECK_YAML("{x: :x}", "{\"x\":\":x\"}");
  CHECK_YAML("[a: b, c]", "[{\"a\":\"b\"},\"c\"]");
  /* tabs as separation (not indentation) */
  CHECK_YAML("a:\tb", "{\"a\":\"b\"}");
  CHECK_YAML("- foo:\t bar", "[{\"foo\":\"bar\"}]");
  CHECK_YAML(" \t\nfoo: 1", "{\"foo\":1}");
  CHECK_YAML("? a\n: -\tb", "{\"a\":[\"b\"]}");
  /* block scalars at the top level may have zero indentation */
  CHECK_YAML("--- |\nfoo\nbar\n", "\"foo\\nbar\\n\"");
  CHECK_YAML("--- >\nline1\nline2\n", "\"line1 line2\\n\"");
  /* directives: %YAML 1.2, reserved ones ignored; %YAML 1.1 is read, but the schema
   * stays the 1.2 core schema */
  CHECK_YAML("%YAML 1.2\n---\nv: yes", "{\"v\":\"yes\"}");
  CHECK_YAML("%FOO bar\n---\nx", "\"x\"");
  CHECK_YAML("%YAML 1.1\n---\nv: yes", "{\"v\":\"yes\"}");
  /* NEL, LS and PS are not line breaks in 1.2 */
  CHECK_YAML("a: x\xC2\x85y", "{\"a\":\"x\xC2\x85y\"}");
  /* invalid in 1.2, accepted by libyaml: a comment needs a blank before '#' */
  ERR("a: [x, y]#c", 1, 10,
      "a comment needs a space or tab before its '#' (add one, or quote the value)");
  ERR("k: \"v\"# c", 1, 7,
      "a comment needs a space or tab before its '#' (add one, or quote the value)");
  ERR("- [-, -]", 1, 4, "found '-', which cannot start a YAML value (quote the value)");

  /* refused on purpose (docs/POLICY.md), each with its own message: complex keys, several
   * documents, tags outside the core set, duplicate keys, recursive aliases, implicit keys
   * over 1024 characters (test_keys, test_tags, test_documents, test_anchors), and YAML
   * versions other than 1.2 and 1.1 */
  ERR("%YAML 1.3\n---\nx", 1, 1,
      "unsupported YAML version 1.3 (reactcfg reads YAML 1.2, and 1.1 syntax)");
  ERR("# versions\n%YAML 1.9\n---\nx", 2, 1,
      "unsupported YAML version 1.9 (reactcfg reads YAML 1.2, and 1.1 syntax)");
  ERR("{[a]: 1}", 1, 2,
      "a mapping key must be a scalar: a sequence cannot be a key (complex keys are not "
      "supported)");
  ERR("? - a\n: 1", 1, 3,
      "a mapping key must be a scalar: a sequence cannot be a key (complex keys are not "
      "supported)");
  ERR(": a\n: b", 2, 1, "duplicate key '' (first at line 1)");
}

/* ==== malformed YAML: message, line and column ==== */

static void test_errors(void) {
  ERR("a: b: c", 1, 5,
      "mapping values are not allowed here (quote a value that contains ': ', or check the "
      "indentation)");
  ERR("a:\n  b: 1\n c: 2", 3, 2,
      "expected a key aligned with the mapping that started at line 1, column 1, found 'c' "
      "(check the indentation)");
  ERR("a: 1\n]", 2, 1,
      "expected a key aligned with the mapping that started at line 1, column 1, found ']' "
      "(check the indentation)");
  ERR("- a\nb: 1", 2, 1,
      "expected '-' for the next item of the sequence that started at line 1, column 1, "
      "found 'b' (check the indentation)");
  /* "2\nx" is one plain scalar in YAML 1.2 flow context: the missing ']' is found at the end */
  ERR("k: [1, 2\nx: 1", 2, 5,
      "expected ',' or ']' in the flow sequence that started at line 1, column 4, found the "
      "end of the file");
  ERR("m: {a: 1", 1, 9,
      "expected ',' or '}' in the flow mapping that started at line 1, column 4, found the "
      "end of the file");
  ERR("m: {a: 1\n", 2, 1,
      "expected ',' or '}' in the flow mapping that started at line 1, column 4, found the "
      "end of the file");
  ERR("\"abc", 1, 5, "unterminated quoted string (it opened at line 1, column 1)");
  ERR("a: 1\nb: 'x\n  y", 3, 4, "unterminated quoted string (it opened at line 2, column 4)");
  ERR("a:\n\tb: 1", 2, 1,
      "found a tab where YAML expects indentation or a value: indent with spaces");
  ERR("a: \"\\q\"", 1, 5, "unknown escape '\\q' in a double-quoted string");
  ERR("x: @b", 1, 4, "found '@', which cannot start a YAML value (quote the value)");
  ERR("x: `b", 1, 4, "found '`', which cannot start a YAML value (quote the value)");
  ERR("a: - b", 1, 4,
      "a '-' sequence cannot start here (start it on a new line, or quote the value)");
  ERR("  a: 1\nb: 2", 2, 1,
      "expected the end of the document, found 'b' (a YAML file holds one top-level value; "
      "check the indentation)");
  ERR("[", 1, 2, "expected a value, found the end of the file");
  ERR("a: ]", 1, 4, "expected a value, found ']'");
  ERR("a: |\n\tx", 2, 1,
      "found a tab where YAML expects indentation or a value: indent with spaces");
  ERR("a: &", 1, 5, "expected an anchor name after '&'");
  ERR("a: !x!y b", 1, 4, "undefined tag handle '!x!' (declare it with a %TAG directive)");
  ERR("%YAML 2.0\n---\na", 1, 1,
      "unsupported YAML version 2.0 (reactcfg reads YAML 1.2, and 1.1 syntax)");
}

/* ==== limits ==== */

/* A billion laughs: nine levels of nine aliases each, 9^9 leaves once expanded. */
static const char *const laughs =
    "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n"
    "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
    "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
    "d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
    "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]\n"
    "f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]\n"
    "g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]\n"
    "h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g]\n"
    "i: &i [*h, *h, *h, *h, *h, *h, *h, *h, *h]\n";

static void test_limits(void) {
  rc__parse_limits lim;
  /* the default limit (50 million nodes) stops the billion laughs in line 8: before h,
   * 6053445 nodes; each *g adds 5380840, and the ninth crosses the limit */
  LIMIT(laughs, NULL, 8, 40, "too many nodes after expanding aliases (limit 50000000)");
  rc__parse_limits_default(&lim);
  lim.max_nodes = 1000;
  LIMIT(laughs, &lim, 4, 8, "too many nodes after expanding aliases (limit 1000)");
  /* without a limit it still takes little memory: the aliases share */
  lim.max_nodes = SIZE_MAX;
  rc_value_t *v;
  rc_error err;
  CHECK_EQ_INT(parse(laughs, &lim, &v, &err), 0);
  const rc_value_t *i = rc_value_get(v, "i");
  CHECK_EQ_INT(rc_value_len(i), 9);
  CHECK(rc_value_at(i, 0) == rc_value_get(v, "h"));
  CHECK(rc_value_at(i, 8) == rc_value_get(v, "h"));
  rc__value_unref(v);

  /* nodes without aliases: values count, keys do not */
  rc__parse_limits_default(&lim);
  lim.max_nodes = 3;
  LIMIT("[1, 2, 3]", &lim, 1, 8, "more than 3 nodes in the document");
  CHECK_EQ_INT(parse("[1, 2]", &lim, &v, &err), 0);
  rc__value_unref(v);
  CHECK_EQ_INT(parse("{a: 1, b: 2}", &lim, &v, &err), 0);
  rc__value_unref(v);
  lim.max_nodes = 4;
  LIMIT("- &x [1, 2]\n- *x", &lim, 2, 3, "too many nodes after expanding aliases (limit 4)");

  /* depth */
  rc__parse_limits_default(&lim);
  lim.max_depth = 3;
  CHECK_EQ_INT(parse("[[[1]]]", &lim, &v, &err), 0);
  rc__value_unref(v);
  LIMIT("[[[[1]]]]", &lim, 1, 4, "nesting deeper than 3 levels");
  LIMIT("a:\n  b:\n    c:\n      d: 1", &lim, 4, 7, "nesting deeper than 3 levels");
  /* ... counted with aliases expanded: *a brings two levels into a third */
  LIMIT("a: &a [[1]]\nb: [*a]", &lim, 2, 5,
        "nesting deeper than 3 levels after expanding aliases");
  lim.max_depth = 4;
  CHECK_EQ_INT(parse("a: &a [[1]]\nb: [*a]", &lim, &v, &err), 0);
  rc__value_unref(v);
  /* ... and a merged mapping brings its members only, not an extra level */
  lim.max_depth = 2;
  CHECK_EQ_INT(parse("a: &a {x: 1}\nb: {<<: *a}", &lim, &v, &err), 0);
  rc__value_unref(v);
  lim.max_depth = 3;
  LIMIT("a: &a {x: [1]}\nb:\n  c: {<<: *a}", &lim, 3, 11,
        "nesting deeper than 3 levels after expanding aliases");
  /* deep input stops at the limit, not in libyaml or on the stack */
  rc__parse_limits_default(&lim);
  size_t deep = 100000;
  char *brackets = malloc(deep + 1);
  memset(brackets, '[', deep);
  brackets[deep] = '\0';
  LIMIT(brackets, NULL, 1, 513, "nesting deeper than 512 levels");
  free(brackets);

  /* strings and keys */
  rc__parse_limits_default(&lim);
  lim.max_string = 5;
  CHECK_EQ_INT(parse("abcde: vwxyz", &lim, &v, &err), 0);
  rc__value_unref(v);
  LIMIT("a: abcdef", &lim, 1, 4, "string longer than the limit of 5 bytes");
  LIMIT("a: |\n  abcde\n", &lim, 1, 4, "string longer than the limit of 5 bytes");
  LIMIT("abcdef: 1", &lim, 1, 1, "key longer than the limit of 5 bytes");

  /* input bytes: reported where the limit is crossed */
  rc__parse_limits_default(&lim);
  lim.max_bytes = 10;
  LIMIT("a: 1\nb: 2\nc: 3", &lim, 3, 1, "input is 14 bytes, more than the limit of 10 bytes");
  CHECK_EQ_INT(parse("a: 1\nb: 22", &lim, &v, &err), 0);
  rc__value_unref(v);
}

/* ==== robustness: every truncation and many corruptions of a document ==== */

static const char *const full_doc =
    "# a configuration using most of YAML\n"
    "%YAML 1.2\n"
    "---\n"
    "defaults: &defaults\n"
    "  adapter: postgres\n"
    "  host: \"db.example.com\"\n"
    "  port: 5432\n"
    "  ratio: 0.75\n"
    "  tags: [a, 'b', \"c\\td\"]\n"
    "development:\n"
    "  <<: *defaults\n"
    "  database: dev_db\n"
    "test: {<<: [*defaults], database: test_db, debug: !!bool true}\n"
    "list:\n"
    "  - &item {name: one, size: 0x10}\n"
    "  - *item\n"
    "  - ? complex\n"
    "    : value\n"
    "text: |\n"
    "  line one\n"
    "  line two\n"
    "folded: >-\n"
    "  é ü 😀\n"
    "empty:\n"
    "nothing: ~\n"
    "...\n";

static void expect_sane(const char *text, size_t len, int at) {
  rc_value_t *v;
  rc_error err;
  int rc = parse_n(text, len, NULL, &v, &err);
  if (rc == 0) {
    CHECK(v != NULL);
    rc__value_unref(v);
    return;
  }
  if (rc != RC_EPARSE || err.line < 1 || err.column < 1 || !err.message[0])
    fprintf(stderr, "test_yaml.c:%d: at length %zu: %s %d:%d: %s\n", at, len,
            rc_err_name(rc), err.line, err.column, err.message);
  CHECK(rc == RC_EPARSE);
  CHECK(err.line >= 1 && err.column >= 1 && err.message[0]);
  CHECK(v == NULL);
}

static void test_robustness(void) {
  CHECK_YAML(full_doc,
             "{\"defaults\":{\"adapter\":\"postgres\",\"host\":\"db.example.com\","
             "\"port\":5432,\"ratio\":0.75,\"tags\":[\"a\",\"b\",\"c\\td\"]},"
             "\"development\":{\"adapter\":"
             "\"postgres\",\"host\":\"db.example.com\",\"port\":5432,\"ratio\":0.75,\"tags\":"
             "[\"a\",\"b\",\"c\\td\"],\"database\":\"dev_db\"},\"test\":{\"adapter\":"
             "\"postgres\",\"host\":\"db.example.com\",\"port\":5432,\"ratio\":0.75,\"tags\":"
             "[\"a\",\"b\",\"c\\td\"],\"database\":\"test_db\",\"debug\":true},\"list\":"
             "[{\"name\":\"one\",\"size\":16},{\"name\":\"one\",\"size\":16},{\"complex\":"
             "\"value\"}],\"text\":\"line one\\nline two\\n\",\"folded\":\"é ü 😀\","
             "\"empty\":null,\"nothing\":null}");
  size_t n = strlen(full_doc);
  /* a heap copy of exactly each length, so ASan sees any read past it */
  for (size_t len = 0; len <= n; len++) {
    char *cut = malloc(len ? len : 1);
    memcpy(cut, full_doc, len);
    expect_sane(cut, len, __LINE__);
    free(cut);
  }
  /* corruptions: one or two bytes replaced by bytes YAML cares about */
  static const char specials[] = ":-[]{},&*!|>'\"#%@`?\t\n \xC3\xFF\x01";
  uint32_t seed = 12345;
  char *buf = malloc(n);
  for (int round = 0; round < 4000; round++) {
    memcpy(buf, full_doc, n);
    for (int k = 0; k < 1 + round % 2; k++) {
      seed = seed * 1103515245u + 12345u;
      size_t at = (seed >> 8) % n;
      seed = seed * 1103515245u + 12345u;
      buf[at] = specials[(seed >> 8) % (sizeof specials - 1)];
    }
    expect_sane(buf, n, __LINE__);
  }
  free(buf);
}

/* ==== allocation failure at every step ==== */

static void alloc_failure(const char *doc, int want_rc) {
  long n;
  int rc = RC_ENOMEM;
  for (n = 0; n < 100000 && rc == RC_ENOMEM; n++) {
    fa_install(n);
    rc_value_t *v = NULL;
    rc_error err;
    rc = rc__parse_yaml(doc, strlen(doc), NULL, NULL, &v, &err);
    if (rc == RC_ENOMEM) CHECK(v == NULL && err.line >= 1 && err.column >= 1);
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
  alloc_failure(full_doc, 0);
  alloc_failure("a: &a {x: 1, y: [1, 2.5, \"three\"]}\nb: &b {z: 1}\n"
                "c: {<<: [*a, *b], w: *a}\n&k key: {*k : 1}\nn: &n ~\nm: *n\n", 0);
  alloc_failure(laughs, RC_ELIMIT);
  alloc_failure("a: 1\nb: {x: 1, y: 2, x: 3}\n", RC_EPARSE);
  alloc_failure("a: &a [1, 2]\nb: [*a, *nope]\n", RC_EPARSE);
  alloc_failure("a: {b: [1, 2, {c: d}]\n", RC_EPARSE);
}

int main(void) {
  test_core_schema();
  test_int_overflow();
  test_quoted_and_block();
  test_tags();
  test_anchors();
  test_merge();
  test_keys();
  test_documents();
  test_encoding();
  test_yaml12();
  test_errors();
  test_limits();
  test_robustness();
  test_alloc_failure();
  return check_report("yaml");
}
