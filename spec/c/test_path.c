/* SPDX-License-Identifier: MIT (see LICENSE) */
/* test_path.c: path syntax: formatting bare and quoted keys and indices, parsing every
 * segment form (and the `*`/`**` pattern segments), rejecting malformed paths, round
 * trips of awkward keys, and rc_value_find over nested values. */
#include "check.h"
#include "value.h"

#include <stdlib.h>

/* Formats the segments into a path: keys are strings, indices are given as "#N". */
static void fmt(rc__buf *b, const char *const *segs, size_t n) {
  rc__buf_reset(b);
  for (size_t i = 0; i < n; i++) {
    if (segs[i][0] == '#')
      rc__path_add_index(b, (size_t)atoll(segs[i] + 1));
    else
      rc__path_add_key(b, segs[i], strlen(segs[i]));
  }
}

/* Parses `path` into "k:<key>|i:<n>|..." or "ERR" / "" for the empty path. */
static void parse(const char *path, char *out, size_t outsz) {
  rc__buf scratch, acc;
  rc__buf_init(&scratch);
  rc__buf_init(&acc);
  size_t pos = 0;
  for (;;) {
    const char *key;
    size_t klen, index;
    int r = rc__path_next(path, &pos, &scratch, &key, &klen, &index);
    if (r < 0) {
      rc__buf_reset(&acc);
      rc__buf_adds(&acc, "ERR");
      break;
    }
    if (r == 0) break;
    if (acc.n) rc__buf_addc(&acc, '|');
    if (key) {
      rc__buf_adds(&acc, "k:");
      rc__buf_add(&acc, key, klen);
    } else {
      rc__buf_printf(&acc, "i:%zu", index);
    }
  }
  snprintf(out, outsz, "%s", acc.p ? acc.p : "");
  rc__buf_free(&scratch);
  rc__buf_free(&acc);
}

static void test_format(void) {
  rc__buf b;
  rc__buf_init(&b);
  const char *s1[] = {"db", "pool", "max"};
  fmt(&b, s1, 3);
  CHECK_EQ_STR(b.p, "db.pool.max");
  const char *s2[] = {"rules", "#3", "host"};
  fmt(&b, s2, 3);
  CHECK_EQ_STR(b.p, "rules[3].host");
  const char *s3[] = {"flags", "a.b"};
  fmt(&b, s3, 2);
  CHECK_EQ_STR(b.p, "flags[\"a.b\"]");
  const char *s4[] = {"weird key", "x"};
  fmt(&b, s4, 2);
  CHECK_EQ_STR(b.p, "[\"weird key\"].x");
  const char *s5[] = {"q\"uote", "back\\slash", ""};
  fmt(&b, s5, 3);
  CHECK_EQ_STR(b.p, "[\"q\\\"uote\"][\"back\\\\slash\"][\"\"]");
  const char *s6[] = {"#0", "#12", "A-b_9"};
  fmt(&b, s6, 3);
  CHECK_EQ_STR(b.p, "[0][12].A-b_9");
  const char *s7[] = {"*", "**", "é"};
  fmt(&b, s7, 3);
  CHECK_EQ_STR(b.p, "[\"*\"][\"**\"][\"é\"]");
  rc__buf_free(&b);
}

static void test_parse(void) {
  char out[256];
  struct {
    const char *path, *want;
  } cases[] = {
    {"", ""},
    {"a", "k:a"},
    {"a.b", "k:a|k:b"},
    {"a[3].b", "k:a|i:3|k:b"},
    {"a[\"x.y\"].z", "k:a|k:x.y|k:z"},
    {"[\"weird key\"]", "k:weird key"},
    {"[0][10]", "i:0|i:10"},
    {"a[\"q\\\"b\\\\c\"]", "k:a|k:q\"b\\c"},
    {"a[\"\"]", "k:a|k:"},
    {"a[\"]\"]", "k:a|k:]"},
    {"db.*.host", "k:db|k:*|k:host"},
    {"**", "k:**"},
    {"a.**[2]", "k:a|k:**|i:2"},
    {"A-b_9.0", "k:A-b_9|k:0"},
    {"x[18446744073709551615]", "k:x|i:18446744073709551615"},
    /* malformed */
    {".a", "ERR"},
    {"a.", "ERR"},
    {"a..b", "ERR"},
    {"a[", "ERR"},
    {"a[]", "ERR"},
    {"a[-1]", "ERR"},
    {"a[01]", "ERR"},
    {"a[1", "ERR"},
    {"a[1x]", "ERR"},
    {"a[\"x", "ERR"},
    {"a[\"x\"", "ERR"},
    {"a[\"\\x\"]", "ERR"},
    {"a b", "ERR"},
    {"a]", "ERR"},
    {"a.[1]", "ERR"},
    {"***", "ERR"},
    {"a*", "ERR"},
    {"*a", "ERR"},
    {"a.b c", "ERR"},
    {"x[18446744073709551616]", "ERR"},
    {"é", "ERR"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    parse(cases[i].path, out, sizeof out);
    if (strcmp(out, cases[i].want) != 0) fprintf(stderr, "  path: %s\n", cases[i].path);
    CHECK_EQ_STR(out, cases[i].want);
  }
}

/* Whatever the key bytes, formatting then parsing gives the same segments back. */
static void test_round_trip(void) {
  const char *keys[] = {"plain", "with.dot", "with space", "q\"", "b\\", "\\\"", "",
                        "[0]", "a]b", "x[\"y\"]", "tab\there", "nl\nx", "é", "*", "**",
                        "-", "_", "0", "a.b.c"};
  size_t nk = sizeof keys / sizeof keys[0];
  rc__buf b, scratch;
  rc__buf_init(&b);
  rc__buf_init(&scratch);
  bool all = true;
  for (size_t i = 0; i < nk; i++) {
    for (size_t j = 0; j < nk; j++) {
      rc__buf_reset(&b);
      rc__path_add_key(&b, keys[i], strlen(keys[i]));
      rc__path_add_index(&b, i * 100 + j);
      rc__path_add_key(&b, keys[j], strlen(keys[j]));
      size_t pos = 0, klen, index;
      const char *key;
      bool ok = rc__path_next(b.p, &pos, &scratch, &key, &klen, &index) == 1 && key &&
                klen == strlen(keys[i]) && memcmp(key, keys[i], klen) == 0;
      ok = ok && rc__path_next(b.p, &pos, &scratch, &key, &klen, &index) == 1 && !key &&
           index == i * 100 + j;
      ok = ok && rc__path_next(b.p, &pos, &scratch, &key, &klen, &index) == 1 && key &&
           klen == strlen(keys[j]) && memcmp(key, keys[j], klen) == 0;
      ok = ok && rc__path_next(b.p, &pos, &scratch, &key, &klen, &index) == 0;
      if (!ok) fprintf(stderr, "  round trip failed: %s\n", b.p);
      all = all && ok;
    }
  }
  CHECK(all);
  rc__buf_free(&b);
  rc__buf_free(&scratch);
}

static rc_value_t *s(const char *t) { return rc__value_string(t, strlen(t)); }

static void test_find(void) {
  /* {"db": {"pool": {"max": 10}}, "rules": [{"host": "a"}, {"host": "b"}],
   *  "flags": {"a.b": true, "q\"k": 1, <300 x 'k'>: 2}} */
  rc__object_builder ob, pool, db, flags;
  rc__object_begin(&pool);
  rc__object_put(&pool, "max", 3, rc__value_int(10));
  rc__object_begin(&db);
  rc__object_put(&db, "pool", 4, rc__object_end(&pool));
  rc__array_builder rules;
  rc__array_begin(&rules);
  for (int i = 0; i < 2; i++) {
    rc__object_builder r;
    rc__object_begin(&r);
    rc__object_put(&r, "host", 4, s(i ? "b" : "a"));
    rc__array_push(&rules, rc__object_end(&r));
  }
  char longkey[301];
  memset(longkey, 'k', 299);
  longkey[299] = '"';
  longkey[300] = '\0';
  rc__object_begin(&flags);
  rc__object_put(&flags, "a.b", 3, rc__value_bool(true));
  rc__object_put(&flags, "q\"k", 3, rc__value_int(1));
  rc__object_put(&flags, longkey, 300, rc__value_int(2));
  rc__object_begin(&ob);
  rc__object_put(&ob, "db", 2, rc__object_end(&db));
  rc__object_put(&ob, "rules", 5, rc__array_end(&rules));
  rc__object_put(&ob, "flags", 5, rc__object_end(&flags));
  rc_value_t *root = rc__object_end(&ob);

  int64_t i = 0;
  const char *str = NULL;
  bool b = false;
  CHECK(rc_value_find(root, "") == root);
  CHECK_EQ_INT(rc_value_int(rc_value_find(root, "db.pool.max"), &i), 0);
  CHECK_EQ_INT(i, 10);
  CHECK_EQ_INT(rc_value_string(rc_value_find(root, "rules[1].host"), &str, NULL), 0);
  CHECK_EQ_STR(str, "b");
  CHECK_EQ_INT(rc_value_bool(rc_value_find(root, "flags[\"a.b\"]"), &b), 0);
  CHECK(b);
  CHECK_EQ_INT(rc_value_int(rc_value_find(root, "flags[\"q\\\"k\"]"), &i), 0);
  CHECK_EQ_INT(i, 1);
  /* a long escaped key takes the heap path */
  rc__buf p;
  rc__buf_init(&p);
  rc__buf_adds(&p, "flags");
  rc__path_add_key(&p, longkey, 300);
  CHECK_EQ_INT(rc_value_int(rc_value_find(root, p.p), &i), 0);
  CHECK_EQ_INT(i, 2);
  rc__buf_free(&p);
  CHECK(rc_value_find(root, "[\"db\"].pool") == rc_value_find(root, "db.pool"));
  CHECK(rc_value_find(root, "db.pool.min") == NULL);
  CHECK(rc_value_find(root, "rules[2]") == NULL);     /* out of range */
  CHECK(rc_value_find(root, "rules.host") == NULL);   /* key on an array */
  CHECK(rc_value_find(root, "db[0]") == NULL);        /* index on an object */
  CHECK(rc_value_find(root, "db.pool.max.x") == NULL); /* below a scalar */
  CHECK(rc_value_find(root, "db..pool") == NULL);      /* malformed */
  CHECK(rc_value_find(root, "db.pool]") == NULL);
  CHECK(rc_value_find(root, NULL) == NULL);
  CHECK(rc_value_find(NULL, "db") == NULL);
  rc__value_unref(root);
}

/* Control bytes are written \xHH, so keys differing only after a NUL (JSON's
 * "a\u0000b") give different paths, each one printable line, and read back. */
static void test_control_bytes(void) {
  rc__buf a, b;
  rc__buf_init(&a);
  rc__buf_init(&b);
  rc__path_add_key(&a, "a\0b", 3);
  rc__path_add_key(&b, "a\0c", 3);
  CHECK_EQ_STR(a.p, "[\"a\\x00b\"]");
  CHECK(strcmp(a.p, b.p) != 0);
  CHECK_EQ_INT(strlen(a.p), a.n);
  rc__buf_reset(&a);
  rc__path_add_key(&a, "tab\tnl\ndel\x7f\"q\"\\", 15);
  CHECK_EQ_STR(a.p, "[\"tab\\x09nl\\x0adel\\x7f\\\"q\\\"\\\\\"]");
  char out[256];
  parse(a.p, out, sizeof out);
  CHECK_EQ_STR(out, "k:tab\tnl\ndel\x7f\"q\"\\");
  /* the key with a NUL, read back whole */
  rc__buf scratch;
  rc__buf_init(&scratch);
  size_t pos = 0, klen, index;
  const char *key;
  rc__buf_reset(&a);
  rc__path_add_key(&a, "a\0b", 3);
  CHECK_EQ_INT(rc__path_next(a.p, &pos, &scratch, &key, &klen, &index), 1);
  CHECK_EQ_INT(klen, 3);
  CHECK(memcmp(key, "a\0b", 3) == 0);
  /* malformed escapes */
  parse("[\"a\\x0\"]", out, sizeof out);
  CHECK_EQ_STR(out, "ERR");
  parse("[\"a\\xg0\"]", out, sizeof out);
  CHECK_EQ_STR(out, "ERR");
  /* rc_value_find with the NUL key, through the path the diff would give */
  rc__object_builder ob;
  rc__object_begin(&ob);
  rc__object_put(&ob, "a\0b", 3, rc__value_int(1));
  rc__object_put(&ob, "a\0c", 3, rc__value_int(2));
  rc_value_t *v = rc__object_end(&ob);
  rc__buf_reset(&a);
  rc__path_add_key(&a, "a\0c", 3);
  const rc_value_t *f = rc_value_find(v, a.p);
  CHECK(f && f->type == RC_TYPE_INT && f->u.i == 2);
  rc__value_unref(v);
  rc__buf_free(&scratch);
  rc__buf_free(&a);
  rc__buf_free(&b);
}

int main(void) {
  test_control_bytes();
  test_format();
  test_parse();
  test_round_trip();
  test_find();
  return check_report("path");
}
