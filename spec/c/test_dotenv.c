/* SPDX-License-Identifier: MIT (see LICENSE) */
/* test_dotenv.c: the dotenv format, rule by rule (export, blanks around '=', comments,
 * unquoted trimming, single and double quotes, escapes, multi-line values, empty values,
 * CRLF, no expansion, key syntax, duplicates, order), every error with its position, the
 * limits; then format names and detection by path, and rc__parse's dispatch (text). */
#include "check.h"
#include "failalloc.h"
#include "parse.h"

/* Parses `text`; returns its JSON or "ERR <line>:<col>: <message>" (caller frees). */
static char *dotenv(const char *text, const rc__parse_limits *lim) {
  rc_value_t *v = NULL;
  rc_error err;
  memset(&err, 0, sizeof err);
  int rc = rc__parse_dotenv(text, strlen(text), "app.env", lim, &v, &err);
  rc__buf b;
  rc__buf_init(&b);
  if (rc) {
    rc__buf_printf(&b, "%s %d:%d: %s", rc == RC_ELIMIT ? "LIMIT" : "ERR", err.line,
                   err.column, err.message);
    if (strcmp(err.file, "app.env") != 0) rc__buf_adds(&b, " (file name lost)");
  } else {
    char *j = rc_value_to_json(v, false);
    rc__buf_adds(&b, j);
    rc_free(j);
    rc__value_unref(v);
  }
  return rc__buf_take(&b);
}

#define ENV(text, want)                 \
  do {                                  \
    char *got_ = dotenv(text, NULL);    \
    CHECK_EQ_STR(got_, want);           \
    rc_free(got_);                      \
  } while (0)

static void test_rules(void) {
  ENV("", "{}");
  ENV("\n\n# only a comment\n   \n", "{}");
  ENV("A=1", "{\"A\":\"1\"}");
  ENV("A=1\nB=2\n", "{\"A\":\"1\",\"B\":\"2\"}");
  /* order is kept; a duplicate takes the last value at the first position */
  ENV("Z=1\nA=2\nZ=3\n", "{\"Z\":\"3\",\"A\":\"2\"}");
  /* export prefix; "export" alone is an ordinary key */
  ENV("export A=1\nexport\tB=2", "{\"A\":\"1\",\"B\":\"2\"}");
  ENV("export=1", "{\"export\":\"1\"}");
  ENV("exportX=1", "{\"exportX\":\"1\"}");
  /* blanks around '=' and leading blanks */
  ENV("  A  =  spaced value  \t", "{\"A\":\"spaced value\"}");
  /* comments: full line, and ' #' after unquoted values; '#' inside a word is kept */
  ENV("# c\nA=x # note\nB=x#y\nC=#z\nD= #only", "{\"A\":\"x\",\"B\":\"x#y\",\"C\":\"#z\",\"D\":\"\"}");
  /* empty values */
  ENV("A=\nB=  \nC=\"\"\nD=''", "{\"A\":\"\",\"B\":\"\",\"C\":\"\",\"D\":\"\"}");
  /* single quotes: literal, no escapes */
  ENV("A='$X \\n \"q\"' # c", "{\"A\":\"$X \\\\n \\\"q\\\"\"}");
  /* double quotes: escapes, and unknown escapes kept as written */
  ENV("A=\"l1\\nl2\\tt\\r\\\"q\\\" \\\\ \\$HOME \\a\"",
      "{\"A\":\"l1\\nl2\\tt\\r\\\"q\\\" \\\\ $HOME \\\\a\"}");
  /* double quotes may span lines; a comment may follow */
  ENV("A=\"one\ntwo\"  # c\nB=3", "{\"A\":\"one\\ntwo\",\"B\":\"3\"}");
  /* no variable expansion, backquotes are not special */
  ENV("H=$HOME\nI=${HOME}\nJ=`date`", "{\"H\":\"$HOME\",\"I\":\"${HOME}\",\"J\":\"`date`\"}");
  /* quotes inside an unquoted value are literal */
  ENV("A=a\"b'c", "{\"A\":\"a\\\"b'c\"}");
  /* keys: letters, digits, '_', '.', '-' after the first */
  ENV("_A.b-c_9=v", "{\"_A.b-c_9\":\"v\"}");
  /* CRLF line endings, also inside a double-quoted value */
  ENV("A=1\r\nB=two words \r\nC=\"x\r\ny\"\r\n# c\r\n", "{\"A\":\"1\",\"B\":\"two words\",\"C\":\"x\\ny\"}");
  /* a UTF-8 BOM; UTF-8 values */
  ENV("\xef\xbb\xbf" "A=caf\xc3\xa9", "{\"A\":\"café\"}");
  /* no newline at the end */
  ENV("A=1\nB='x'", "{\"A\":\"1\",\"B\":\"x\"}");
}

static void test_errors(void) {
  ENV("FOO", "ERR 1:4: expected '=' after key 'FOO'");
  ENV("A=1\nFOO BAR=1", "ERR 2:5: expected '=' after key 'FOO'");
  ENV("export FOO", "ERR 1:11: expected '=' after key 'FOO'");
  ENV("1X=2", "ERR 1:1: invalid key: keys start with a letter or '_', not '1'");
  ENV("A=1\n  =2", "ERR 2:3: invalid key: keys start with a letter or '_', not '='");
  ENV("\xc3\xa9=1", "ERR 1:1: invalid key: keys start with a letter or '_', not 0xC3");
  ENV("FO$O=1", "ERR 1:3: invalid character '$' in key 'FO'");
  ENV("A=1\nB=\"x\nC=3\n", "ERR 4:1: unterminated double-quoted value (opened at line 2)");
  ENV("A=1\nB=\"\n\nnever closed", "ERR 4:13: unterminated double-quoted value (opened at line 2)");
  ENV("X='abc", "ERR 1:3: unterminated single-quoted value (single quotes cannot span lines)");
  ENV("X='abc\ndef'", "ERR 1:3: unterminated single-quoted value (single quotes cannot span lines)");
  ENV("X=\"ok\" junk", "ERR 1:8: unexpected 'j' after the closing quote of 'X'");
  ENV("X='ok'x", "ERR 1:7: unexpected 'x' after the closing quote of 'X'");
  ENV("K=\"\xc3\xa9\" x", "ERR 1:7: unexpected 'x' after the closing quote of 'K'");
  /* invalid UTF-8 is an error at its byte (it became U+FFFD on output before) */
  ENV("A=1\nB=x\xc0\xafy", "ERR 2:4: invalid UTF-8 (byte 0xC0); dotenv files must be UTF-8");
  ENV("A=\"\xed\xa0\x80\"", "ERR 1:4: invalid UTF-8 (byte 0xED); dotenv files must be UTF-8");
  ENV("A='\xff'", "ERR 1:4: invalid UTF-8 (byte 0xFF); dotenv files must be UTF-8");
  ENV("A=\xe2\x82", "ERR 1:3: invalid UTF-8 (byte 0xE2); dotenv files must be UTF-8");
  /* a NUL byte is an error at its place (it was kept in the value) */
  rc_value_t *v = NULL;
  rc_error err;
  memset(&err, 0, sizeof err);
  CHECK_EQ_INT(rc__parse_dotenv("A=1\nB=a\0b\n", 11, "app.env", NULL, &v, &err), RC_EPARSE);
  CHECK(v == NULL);
  CHECK_EQ_INT(err.line, 2);
  CHECK_EQ_INT(err.column, 4);
  CHECK_EQ_STR(err.message, "NUL byte (0x00): a dotenv file is text");
}

static void test_limits(void) {
  rc__parse_limits lim;
  rc__parse_limits_default(&lim);
  lim.max_string = 3;
  char *got = dotenv("A=abc\nB=\"abcd\"", &lim);
  CHECK_EQ_STR(got, "LIMIT 2:3: value of 'B' is 4 bytes, more than the limit of 3 bytes");
  rc_free(got);
  /* keys too (they were not bounded) */
  got = dotenv("A=abc\nLONGKEY=1", &lim);
  CHECK_EQ_STR(got, "LIMIT 2:1: key 'LONGKEY...' is 7 bytes, more than the limit of 3 bytes");
  rc_free(got);
  rc__parse_limits_default(&lim);
  lim.max_nodes = 2;
  got = dotenv("A=1\nB=2\nC=3", &lim);
  CHECK_EQ_STR(got, "LIMIT 3:1: more than 2 entries");
  rc_free(got);
  rc__parse_limits_default(&lim);
  lim.max_bytes = 4;
  got = dotenv("A=123", &lim);
  CHECK_EQ_STR(got, "LIMIT 1:1: input is 5 bytes, more than the limit of 4 bytes");
  rc_free(got);
}

static void test_alloc_failure(void) {
  const char *text = "A=1\nexport B=\"two\nlines\"\nC='x'\nA=again\nD=\n";
  long n;
  int rc = RC_ENOMEM;
  for (n = 0; n < 1000 && rc == RC_ENOMEM; n++) {
    fa_install(n);
    rc_value_t *v = NULL;
    rc_error err;
    rc = rc__parse_dotenv(text, strlen(text), NULL, NULL, &v, &err);
    rc__value_unref(v);
    if (fa_live) break;
  }
  fa_uninstall();
  CHECK_EQ_INT(fa_live, 0);
  CHECK_EQ_INT(rc, 0);
  CHECK(n > 3);
}

static void test_formats(void) {
  bool known = false;
  CHECK_EQ_INT(rc__format_from_name("json", &known), RC__FMT_JSON);
  CHECK(known);
  CHECK_EQ_INT(rc__format_from_name("JSON", &known), RC__FMT_JSON);
  CHECK_EQ_INT(rc__format_from_name("dotenv", &known), RC__FMT_DOTENV);
  CHECK_EQ_INT(rc__format_from_name("env", &known), RC__FMT_DOTENV);
  CHECK_EQ_INT(rc__format_from_name("text", &known), RC__FMT_TEXT);
  CHECK(known);
  CHECK_EQ_INT(rc__format_from_name("yaml", &known), RC__FMT_YAML);
  CHECK_EQ_INT(rc__format_from_name("yml", &known), RC__FMT_YAML);
  CHECK_EQ_INT(rc__format_from_name("toml", &known), RC__FMT_TOML);
  CHECK(known);
  CHECK_EQ_INT(rc__format_from_name("xml", &known), RC__FMT_AUTO);
  CHECK(!known);
  CHECK_EQ_INT(rc__format_from_name(NULL, &known), RC__FMT_AUTO);
  CHECK(known);
  CHECK_EQ_INT(rc__format_from_name("json", NULL), RC__FMT_JSON);

  CHECK_EQ_INT(rc__format_from_path("conf/app.json"), RC__FMT_JSON);
  CHECK_EQ_INT(rc__format_from_path("APP.JSON"), RC__FMT_JSON);
  CHECK_EQ_INT(rc__format_from_path("/srv/.env"), RC__FMT_DOTENV);
  CHECK_EQ_INT(rc__format_from_path(".env"), RC__FMT_DOTENV);
  CHECK_EQ_INT(rc__format_from_path("prod.env"), RC__FMT_DOTENV);
  CHECK_EQ_INT(rc__format_from_path("dir/.env.local"), RC__FMT_DOTENV);
  CHECK_EQ_INT(rc__format_from_path("app.toml"), RC__FMT_TOML);
  CHECK_EQ_INT(rc__format_from_path("k8s/app.YML"), RC__FMT_YAML);
  CHECK_EQ_INT(rc__format_from_path("app.ini"), RC__FMT_AUTO);
  CHECK_EQ_INT(rc__format_from_path("Makefile"), RC__FMT_AUTO);
  CHECK_EQ_INT(rc__format_from_path("x.env/file"), RC__FMT_AUTO);
  CHECK_EQ_INT(rc__format_from_path(".json"), RC__FMT_AUTO); /* a hidden file, no extension */
  CHECK_EQ_INT(rc__format_from_path(NULL), RC__FMT_AUTO);

  CHECK_EQ_STR(rc__format_name(RC__FMT_AUTO), "auto");
  CHECK_EQ_STR(rc__format_name(RC__FMT_JSON), "json");
  CHECK_EQ_STR(rc__format_name(RC__FMT_DOTENV), "dotenv");
  CHECK_EQ_STR(rc__format_name(RC__FMT_TEXT), "text");
  CHECK_EQ_STR(rc__format_name(RC__FMT_YAML), "yaml");
  CHECK_EQ_STR(rc__format_name(RC__FMT_TOML), "toml");
}

static void test_dispatch(void) {
  rc_value_t *v;
  rc_error err;
  const char *s;
  size_t len;
  CHECK_EQ_INT(rc__parse(RC__FMT_TEXT, "a\0b\n", 4, 0, "f.txt", NULL, &v, &err), 0);
  CHECK_EQ_INT(rc_value_string(v, &s, &len), 0);
  CHECK_EQ_INT(len, 4);
  CHECK(memcmp(s, "a\0b\n", 4) == 0);
  rc__value_unref(v);
  CHECK_EQ_INT(rc__parse(RC__FMT_DOTENV, "A=1", 3, 0, NULL, NULL, &v, &err), 0);
  CHECK_EQ_INT(rc_value_type(v), RC_TYPE_OBJECT);
  rc__value_unref(v);
  CHECK_EQ_INT(rc__parse(RC__FMT_JSON, "[1]", 3, 0, NULL, NULL, &v, &err), 0);
  CHECK_EQ_INT(rc_value_type(v), RC_TYPE_ARRAY);
  rc__value_unref(v);
  CHECK_EQ_INT(rc__parse(RC__FMT_AUTO, "{}", 2, 0, NULL, NULL, &v, &err), 0); /* JSON */
  CHECK_EQ_INT(rc_value_type(v), RC_TYPE_OBJECT);
  rc__value_unref(v);
  CHECK_EQ_INT(rc__parse(RC__FMT_JSON, "[1", 2, 0, "x.json", NULL, &v, &err), RC_EPARSE);
  CHECK(v == NULL);
  CHECK_EQ_STR(err.file, "x.json");
  CHECK_EQ_INT(err.code, RC_EPARSE);
  rc__parse_limits lim;
  rc__parse_limits_default(&lim);
  lim.max_string = 2;
  CHECK_EQ_INT(rc__parse(RC__FMT_TEXT, "abc", 3, 0, NULL, &lim, &v, &err), RC_ELIMIT);
  lim.max_bytes = 2;
  CHECK_EQ_INT(rc__parse(RC__FMT_DOTENV, "A=1", 3, 0, NULL, &lim, &v, &err), RC_ELIMIT);
  CHECK_EQ_STR(err.message, "input is 3 bytes, more than the limit of 2 bytes");
}

int main(void) {
  test_rules();
  test_errors();
  test_limits();
  test_alloc_failure();
  test_formats();
  test_dispatch();
  return check_report("dotenv");
}
