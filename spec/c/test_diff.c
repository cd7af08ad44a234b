/* SPDX-License-Identifier: MIT (see LICENSE) */
/* test_diff.c: the change list: every kind (added, removed, modified) at the root, in
 * objects and arrays, nested; arrays growing and shrinking; type changes; whole
 * subtrees as one change; quoted key paths; the exact output order; prefixes; several
 * diffs into one changeset; shared subtrees skipped (counted, not timed); and allocation
 * failure at every step. */
#include "check.h"
#include "failalloc.h"
#include "parse.h"

#include <math.h>
#include <stdlib.h>

extern _Thread_local size_t rc__diff_walked; /* diff.c: container pairs entered */

static rc_value_t *J(const char *json) {
  rc_value_t *v = NULL;
  rc_error err;
  if (rc__parse_json(json, strlen(json), 0, NULL, NULL, &v, &err)) {
    fprintf(stderr, "bad test JSON: %s: %s\n", json, err.message);
    exit(2);
  }
  return v;
}

/* The changes as "kind path old new" lines joined by '\n'. */
static char *render(const rc__changeset *cs) {
  rc__buf b;
  rc__buf_init(&b);
  for (size_t i = 0; i < cs->n; i++) {
    const rc_change_t *c = &cs->items[i];
    char *o = c->old_value ? rc_value_to_json(c->old_value, false) : NULL;
    char *n = c->new_value ? rc_value_to_json(c->new_value, false) : NULL;
    rc__buf_printf(&b, "%s%s %s %s %s", i ? "\n" : "", rc_change_kind_name(c->kind), c->path,
                   o ? o : "-", n ? n : "-");
    rc_free(o);
    rc_free(n);
  }
  return rc__buf_take(&b);
}

/* Diffs two JSON texts under `prefix` and compares the rendered change list. */
static void expect(const char *a, const char *b, const char *prefix, const char *want,
                   int line) {
  rc_value_t *va = a ? J(a) : NULL, *vb = b ? J(b) : NULL;
  rc__changeset cs;
  rc__changeset_init(&cs);
  CHECK_EQ_INT(rc__diff(va, vb, prefix, &cs), 0);
  rc__diff_finish(&cs);
  char *got = render(&cs);
  if (strcmp(got, want) != 0) fprintf(stderr, "test_diff.c:%d: diff mismatch\n", line);
  CHECK_EQ_STR(got, want);
  rc_free(got);
  rc__changeset_free(&cs);
  rc__value_unref(va);
  rc__value_unref(vb);
}
#define EXPECT(a, b, prefix, want) expect(a, b, prefix, want, __LINE__)

static void test_kinds(void) {
  EXPECT("1", "1", "", "");
  EXPECT("1", "2", "", "modified  1 2");
  EXPECT("{\"a\":1}", "{\"a\":1}", "", "");
  EXPECT(NULL, "{\"a\":1}", "", "added  - {\"a\":1}");
  EXPECT("{\"a\":1}", NULL, "cfg", "removed cfg {\"a\":1} -");
  EXPECT(NULL, NULL, "", "");
  EXPECT("{\"a\":1,\"b\":2}", "{\"a\":1,\"b\":3}", "", "modified b 2 3");
  EXPECT("{\"a\":1,\"b\":2}", "{\"b\":2}", "", "removed a 1 -");
  EXPECT("{\"b\":2}", "{\"a\":1,\"b\":2}", "", "added a - 1");
  /* scalar types and values */
  EXPECT("[null,true,1,1.5,\"s\"]", "[null,true,1,1.5,\"s\"]", "", "");
  EXPECT("[true,1,1.5,\"s\",\"s\"]", "[false,2,2.5,\"t\",\"s2\"]", "",
         "modified [0] true false\nmodified [1] 1 2\nmodified [2] 1.5 2.5\n"
         "modified [3] \"s\" \"t\"\nmodified [4] \"s\" \"s2\"");
  EXPECT("{\"x\":1}", "{\"x\":1.0}", "", "modified x 1 1.0");   /* int -> float */
  EXPECT("{\"x\":0.0}", "{\"x\":-0.0}", "", "modified x 0.0 -0.0"); /* by bits */
  EXPECT("{\"x\":null}", "{\"x\":false}", "", "modified x null false");
}

static void test_nested_and_order(void) {
  /* removed, added and modified interleave in key order; nested paths are complete */
  EXPECT("{\"z\":1,\"m\":{\"k\":[1,2,{\"deep\":true}]},\"a\":0,\"c\":5}",
         "{\"b\":2,\"m\":{\"k\":[1,3,{\"deep\":false}],\"n\":null},\"c\":5,\"zz\":[]}", "",
         "removed a 0 -\n"
         "added b - 2\n"
         "modified m.k[1] 2 3\n"
         "modified m.k[2].deep true false\n"
         "added m.n - null\n"
         "removed z 1 -\n"
         "added zz - []");
  /* prefix becomes the first segment(s), verbatim */
  EXPECT("{\"db\":{\"port\":1}}", "{\"db\":{\"port\":2}}", "settings",
         "modified settings.db.port 1 2");
  EXPECT("{\"a\":1}", "{\"a\":2}", "x[\"y.z\"]", "modified x[\"y.z\"].a 1 2");
}

static void test_arrays(void) {
  EXPECT("[1,2]", "[1,2,3,4]", "", "added [2] - 3\nadded [3] - 4");
  EXPECT("[1,2,3,4]", "[1,9]", "", "modified [1] 2 9\nremoved [2] 3 -\nremoved [3] 4 -");
  EXPECT("[]", "[[]]", "", "added [0] - []");
  EXPECT("{\"l\":[{\"a\":1},{\"a\":2}]}", "{\"l\":[{\"a\":1}]}", "",
         "removed l[1] {\"a\":2} -");
  EXPECT("[[1,[2]]]", "[[1,[3]]]", "", "modified [0][1][0] 2 3");
}

static void test_type_change_and_subtrees(void) {
  /* a type change is one modification, however big either side */
  EXPECT("{\"a\":{\"x\":1,\"y\":2}}", "{\"a\":[1,2]}", "",
         "modified a {\"x\":1,\"y\":2} [1,2]");
  EXPECT("{\"a\":[1]}", "{\"a\":\"1\"}", "", "modified a [1] \"1\"");
  EXPECT("[1]", "{}", "", "modified  [1] {}");
  /* an added or removed subtree is one change at its path */
  EXPECT("{}", "{\"t\":{\"u\":{\"v\":[1,2,3]}}}", "", "added t - {\"u\":{\"v\":[1,2,3]}}");
  EXPECT("{\"t\":{\"u\":{\"v\":[1,2,3]}}}", "{}", "", "removed t {\"u\":{\"v\":[1,2,3]}} -");
}

static void test_quoted_paths(void) {
  EXPECT("{\"flags\":{\"a.b\":true,\"c d\":1,\"q\\\"\":[0]}}",
         "{\"flags\":{\"a.b\":false,\"c d\":2,\"q\\\"\":[1]}}", "",
         "modified flags[\"a.b\"] true false\n"
         "modified flags[\"c d\"] 1 2\n"
         "modified flags[\"q\\\"\"][0] 0 1");
  EXPECT("{\"\":1}", "{\"\":2}", "", "modified [\"\"] 1 2");
  EXPECT("{\"a b\":{\"c\":1}}", "{\"a b\":{\"c\":2}}", "", "modified [\"a b\"].c 1 2");
}

/* Strings and keys are compared a word at a time with the last word masked: for every
 * length up to 40 bytes, equal copies in distinct nodes are no change, one byte changed
 * at any position is one change, and a string one byte shorter (a prefix) is one too. */
static void test_lengths(void) {
  char s[48], t[48], ja[160], jb[160];
  int bad = 0;
  for (int len = 0; len <= 40; len++) {
    for (int i = 0; i < len; i++) s[i] = (char)('a' + i % 26);
    s[len] = '\0';
    /* heap nodes (rc__value_string), not the parser's arena */
    rc_value_t *x = rc__value_string(s, (size_t)len), *y = rc__value_string(s, (size_t)len);
    rc__changeset cs;
    rc__changeset_init(&cs);
    CHECK_EQ_INT(rc__diff(x, y, "", &cs), 0);
    bad += cs.n != 0;
    rc__value_unref(y);
    if (len > 0) {
      y = rc__value_string(s, (size_t)len - 1);
      CHECK_EQ_INT(rc__diff(x, y, "", &cs), 0);
      bad += cs.n != 1;
      rc__value_unref(y);
    }
    rc__value_unref(x);
    rc__changeset_free(&cs);
    for (int i = 0; i < len; i++) {
      memcpy(t, s, (size_t)len + 1);
      t[i] = 'Z';
      /* the string as a value, then as a key (removed and added) */
      snprintf(ja, sizeof ja, "{\"k\":\"%s\",\"%s\":1}", s, s);
      snprintf(jb, sizeof jb, "{\"k\":\"%s\",\"%s\":1}", t, t);
      rc_value_t *a = J(ja), *b = J(jb);
      rc__changeset_init(&cs);
      CHECK_EQ_INT(rc__diff(a, b, "", &cs), 0);
      rc__diff_finish(&cs);
      bad += cs.n != 3;
      for (size_t c = 0; c < cs.n; c++)
        bad += cs.items[c].kind == RC_CHANGE_MODIFIED && strcmp(cs.items[c].path, "k") != 0;
      rc__changeset_reset(&cs);
      rc_value_t *a2 = J(ja);
      CHECK_EQ_INT(rc__diff(a, a2, "", &cs), 0);
      bad += cs.n != 0;
      rc__changeset_free(&cs);
      rc__value_unref(a);
      rc__value_unref(a2);
      rc__value_unref(b);
    }
  }
  CHECK_EQ_INT(bad, 0);
}

/* Objects with the same keys are walked in insertion order and their changes put in key
 * order afterwards: members written out of key order, several of them changed, some with
 * several changes each and nested the same way. */
static void test_order_same_keys(void) {
  EXPECT("{\"z\":1,\"m\":{\"q\":[1,2,3],\"b\":{\"y\":1,\"x\":1}},\"a\":[0,0],\"k\":\"s\","
         "\"c\":true}",
         "{\"z\":2,\"m\":{\"q\":[1,5,6],\"b\":{\"y\":2,\"x\":2}},\"a\":[1,1],\"k\":\"t\","
         "\"c\":true}",
         "",
         "modified a[0] 0 1\nmodified a[1] 0 1\nmodified k \"s\" \"t\"\n"
         "modified m.b.x 1 2\nmodified m.b.y 1 2\nmodified m.q[1] 2 5\n"
         "modified m.q[2] 3 6\nmodified z 1 2");
  /* more changed members than the first block of notes holds, in reverse key order */
  rc__buf ja, jb, want;
  rc__buf_init(&ja);
  rc__buf_init(&jb);
  rc__buf_init(&want);
  rc__buf_adds(&ja, "{");
  rc__buf_adds(&jb, "{");
  for (int i = 39; i >= 0; i--) {
    rc__buf_printf(&ja, "%s\"k%02d\":{\"y\":%d,\"x\":[%d]}", i < 39 ? "," : "", i, i, i);
    rc__buf_printf(&jb, "%s\"k%02d\":{\"y\":%d,\"x\":[%d]}", i < 39 ? "," : "", i, -i - 1,
                   i + 1);
  }
  for (int i = 0; i < 40; i++)
    rc__buf_printf(&want, "%smodified k%02d.x[0] %d %d\nmodified k%02d.y %d %d", i ? "\n" : "",
                   i, i, i + 1, i, i, -i - 1);
  rc__buf_adds(&ja, "}");
  rc__buf_adds(&jb, "}");
  EXPECT(ja.p, jb.p, "", want.p);
  rc__buf_free(&ja);
  rc__buf_free(&jb);
  rc__buf_free(&want);
}

/* ==== against a reference: random trees ==== */

static uint32_t rng_state = 12345;
static uint32_t rnd(uint32_t n) {
  rng_state = rng_state * 1103515245u + 12345u;
  return (rng_state >> 8) % n;
}

/* Appends two related JSON values, a into ja and b into jb: objects with keys in random
 * insertion order (the same order in both, so most take the same-keys walk), sometimes
 * a key added or removed, arrays that sometimes grow or shrink, scalars that sometimes
 * change value or type. */
static void gen_pair(rc__buf *ja, rc__buf *jb, int depth) {
  uint32_t r = rnd(10);
  if (depth < 4 && r < 4) {
    static const char *const pool[] = {"a", "b", "ab", "ba", "c", "key_long_enough_x",
                                       "key_long_enough_y", "z", "", "a b"};
    uint32_t order[10], n = rnd(9);
    for (uint32_t i = 0; i < 10; i++) order[i] = i;
    for (uint32_t i = 9; i > 0; i--) {
      uint32_t j = rnd(i + 1), t = order[i];
      order[i] = order[j];
      order[j] = t;
    }
    bool keys_differ = rnd(5) == 0;
    bool fa = true, fb = true;
    rc__buf_addc(ja, '{');
    rc__buf_addc(jb, '{');
    for (uint32_t i = 0; i < n; i++) {
      uint32_t only = keys_differ ? rnd(4) : 0; /* 1: only in a, 2: only in b */
      const char *k = pool[order[i]];
      if (only != 2) rc__buf_printf(ja, "%s\"%s\":", fa ? "" : ",", k), fa = false;
      if (only != 1) rc__buf_printf(jb, "%s\"%s\":", fb ? "" : ",", k), fb = false;
      rc__buf tmp;
      rc__buf_init(&tmp);
      gen_pair(only == 2 ? &tmp : ja, only == 1 ? &tmp : jb, depth + 1);
      rc__buf_free(&tmp);
    }
    rc__buf_addc(ja, '}');
    rc__buf_addc(jb, '}');
  } else if (depth < 4 && r < 6) {
    uint32_t na = rnd(5), nb = rnd(4) == 0 ? rnd(5) : na;
    rc__buf_addc(ja, '[');
    rc__buf_addc(jb, '[');
    for (uint32_t i = 0; i < na || i < nb; i++) {
      rc__buf tmp;
      rc__buf_init(&tmp);
      if (i < na && i > 0) rc__buf_addc(ja, ',');
      if (i < nb && i > 0) rc__buf_addc(jb, ',');
      gen_pair(i < na ? ja : &tmp, i < nb ? jb : &tmp, depth + 1);
      rc__buf_free(&tmp);
    }
    rc__buf_addc(ja, ']');
    rc__buf_addc(jb, ']');
  } else {
    uint32_t v = rnd(4), w = rnd(4) == 0 ? rnd(4) : v;
    static const char *const scalars[] = {"1", "\"text that is long enough\"", "\"s\"", "true"};
    rc__buf_adds(ja, scalars[v]);
    rc__buf_adds(jb, rnd(20) == 0 ? "{\"t\":1}" : scalars[w]);
  }
}

static void ref_line(rc__buf *out, const char *kind, const rc__buf *path, const rc_value_t *o,
                     const rc_value_t *n) {
  char *so = o ? rc_value_to_json(o, false) : NULL, *sn = n ? rc_value_to_json(n, false) : NULL;
  rc__buf_printf(out, "%s%s %s %s %s", out->n ? "\n" : "", kind, path->p ? path->p : "",
                 so ? so : "-", sn ? sn : "-");
  rc_free(so);
  rc_free(sn);
}

/* The documented order, written plainly: objects by a merge of the two sorted indexes,
 * arrays by index. */
static void ref_diff(rc__buf *out, rc__buf *path, const rc_value_t *a, const rc_value_t *b) {
  size_t base = path->n;
  if (a->type != b->type) {
    ref_line(out, "modified", path, a, b);
  } else if (a->type == RC_TYPE_OBJECT) {
    const uint32_t *sa = rc__sorted(a), *sb = rc__sorted(b);
    uint32_t i = 0, j = 0;
    while (i < a->len || j < b->len) {
      const rc__member *x = i < a->len ? &a->u.members[sa[i]] : NULL;
      const rc__member *y = j < b->len ? &b->u.members[sb[j]] : NULL;
      int c = !x ? 1 : !y ? -1 : 0;
      if (x && y) {
        uint32_t m = x->klen < y->klen ? x->klen : y->klen;
        c = memcmp(x->key, y->key, m);
        if (!c) c = x->klen < y->klen ? -1 : x->klen > y->klen;
      }
      rc__path_add_key(path, c <= 0 ? x->key : y->key, c <= 0 ? x->klen : y->klen);
      if (c == 0)
        ref_diff(out, path, x->val, y->val);
      else if (c < 0)
        ref_line(out, "removed", path, x->val, NULL);
      else
        ref_line(out, "added", path, NULL, y->val);
      path->n = base;
      if (path->p) path->p[base] = '\0';
      i += c <= 0;
      j += c >= 0;
    }
  } else if (a->type == RC_TYPE_ARRAY) {
    for (uint32_t i = 0; i < a->len || i < b->len; i++) {
      rc__path_add_index(path, i);
      if (i < a->len && i < b->len)
        ref_diff(out, path, a->u.items[i], b->u.items[i]);
      else
        ref_line(out, i < a->len ? "removed" : "added", path, i < a->len ? a->u.items[i] : NULL,
                 i < b->len ? b->u.items[i] : NULL);
      path->n = base;
      if (path->p) path->p[base] = '\0';
    }
  } else {
    char *so = rc_value_to_json(a, false), *sn = rc_value_to_json(b, false);
    if (strcmp(so, sn) != 0) ref_line(out, "modified", path, a, b);
    rc_free(so);
    rc_free(sn);
  }
}

static void test_against_reference(void) {
  int bad = 0;
  for (int round = 0; round < 400; round++) {
    rc__buf ja, jb, out, path;
    rc__buf_init(&ja);
    rc__buf_init(&jb);
    rc__buf_init(&out);
    rc__buf_init(&path);
    rc__buf_adds(&ja, "{\"root\":");
    rc__buf_adds(&jb, "{\"root\":");
    gen_pair(&ja, &jb, 0);
    rc__buf_addc(&ja, '}');
    rc__buf_addc(&jb, '}');
    rc_value_t *a = J(ja.p), *b = J(jb.p);
    ref_diff(&out, &path, a, b);
    rc__changeset cs;
    rc__changeset_init(&cs);
    CHECK_EQ_INT(rc__diff(a, b, "", &cs), 0);
    rc__diff_finish(&cs);
    char *got = render(&cs);
    const char *want = out.p ? out.p : "";
    if (strcmp(got, want) != 0 && bad++ == 0)
      fprintf(stderr, "test_diff.c: reference mismatch\n  old %s\n  new %s\n  got:\n%s\n  want:\n%s\n",
              ja.p, jb.p, got, want);
    rc_free(got);
    rc__changeset_free(&cs);
    rc__value_unref(a);
    rc__value_unref(b);
    rc__buf_free(&ja);
    rc__buf_free(&jb);
    rc__buf_free(&out);
    rc__buf_free(&path);
  }
  CHECK_EQ_INT(bad, 0);
}

/* Keys are compared as one area when both objects store them one after the other; a
 * duplicate key left in the builder's area (the earlier position, the later value)
 * breaks that layout, and the keys are then compared one by one. */
static void test_key_layouts(void) {
  rc__object_builder ob;
  rc__object_begin(&ob);
  rc__object_put(&ob, "alpha", 5, rc__value_int(1));
  rc__object_put(&ob, "beta", 4, rc__value_int(0));
  rc__object_put(&ob, "alpha", 5, rc__value_int(1)); /* replaces, bytes stay in the area */
  rc__object_put(&ob, "gamma", 5, rc__value_int(3));
  rc_value_t *dup = rc__object_end(&ob);
  rc_value_t *same = J("{\"alpha\":1,\"beta\":2,\"gamma\":3}");
  rc_value_t *other = J("{\"alpha\":1,\"betb\":2,\"gamma\":3}");
  rc__changeset cs;
  rc__changeset_init(&cs);
  CHECK_EQ_INT(rc__diff(dup, same, "", &cs), 0);
  rc__diff_finish(&cs);
  char *got = render(&cs);
  CHECK_EQ_STR(got, "modified beta 0 2");
  rc_free(got);
  rc__changeset_reset(&cs);
  CHECK_EQ_INT(rc__diff(dup, other, "", &cs), 0);
  rc__diff_finish(&cs);
  got = render(&cs);
  CHECK_EQ_STR(got, "removed beta 0 -\nadded betb - 2");
  rc_free(got);
  rc__changeset_free(&cs);
  rc__value_unref(dup);
  rc__value_unref(same);
  rc__value_unref(other);
  /* records share their key area in each document, and the pair of areas found equal
   * last is not compared again: a record whose keys differ in one document only still
   * shows as a removal and an addition */
  EXPECT("[{\"x\":1,\"y\":2},{\"x\":1,\"y\":2},{\"x\":1,\"y\":2}]",
         "[{\"x\":1,\"y\":2},{\"x\":1,\"z\":2},{\"x\":1,\"y\":3}]", "",
         "removed [1].y 2 -\nadded [1].z - 2\nmodified [2].y 2 3");
  EXPECT("[{\"x\":1,\"y\":2},{\"x\":1,\"z\":2}]",
         "[{\"x\":1,\"y\":2},{\"x\":1,\"y\":2}]", "",
         "added [1].y - 2\nremoved [1].z 2 -");
}

/* Old and new pointers are borrowed from the two trees; NaN equals NaN. */
static void test_pointers(void) {
  rc__array_builder b;
  rc__array_begin(&b);
  rc__array_push(&b, rc__value_float(NAN));
  rc__array_push(&b, rc__value_int(1));
  rc_value_t *a = rc__array_end(&b);
  rc__array_begin(&b);
  rc__array_push(&b, rc__value_float(NAN));
  rc__array_push(&b, rc__value_int(2));
  rc_value_t *c = rc__array_end(&b);
  rc__changeset cs;
  rc__changeset_init(&cs);
  CHECK_EQ_INT(rc__diff(a, c, "", &cs), 0);
  rc__diff_finish(&cs);
  CHECK_EQ_INT(cs.n, 1);
  if (cs.n == 1) {
    CHECK_EQ_STR(cs.items[0].path, "[1]");
    CHECK(cs.items[0].old_value == rc_value_at(a, 1));
    CHECK(cs.items[0].new_value == rc_value_at(c, 1));
    CHECK_EQ_INT(cs.items[0].kind, RC_CHANGE_MODIFIED);
  }
  /* reset keeps the changeset usable */
  rc__changeset_reset(&cs);
  CHECK_EQ_INT(cs.n, 0);
  CHECK_EQ_INT(rc__diff(a, a, "", &cs), 0);
  rc__diff_finish(&cs);
  CHECK_EQ_INT(cs.n, 0);
  rc__changeset_free(&cs);
  rc__value_unref(a);
  rc__value_unref(c);
}

/* Date-times (from TOML or YAML) compare by value, not by node or by how they were
 * written: equal ones in distinct nodes are no change. */
static void test_datetimes(void) {
  rc_datetime_t d1 = {.kind = RC_DATETIME_OFFSET, .year = 1979, .month = 5, .day = 27,
                      .hour = 7, .minute = 32, .offset_z = true};
  rc_datetime_t d2 = d1, d3 = d1;
  d2.offset_z = false; /* "+00:00" instead of "Z": the same instant, written otherwise */
  d3.minute = 33;
  rc__array_builder b;
  rc__array_begin(&b);
  rc__array_push(&b, rc__value_datetime(&d1));
  rc__array_push(&b, rc__value_datetime(&d1));
  rc_value_t *a = rc__array_end(&b);
  rc__array_begin(&b);
  rc__array_push(&b, rc__value_datetime(&d2));
  rc__array_push(&b, rc__value_datetime(&d3));
  rc_value_t *c = rc__array_end(&b);
  rc__changeset cs;
  rc__changeset_init(&cs);
  CHECK_EQ_INT(rc__diff(a, c, "", &cs), 0);
  rc__diff_finish(&cs);
  char *got = render(&cs);
  CHECK_EQ_STR(got, "modified [1] \"1979-05-27T07:32:00Z\" \"1979-05-27T07:33:00Z\"");
  rc_free(got);
  CHECK_EQ_STR(rc_type_name(RC_TYPE_DATETIME), "datetime");
  rc__changeset_free(&cs);
  rc__value_unref(a);
  rc__value_unref(c);
}

/* Several diffs into one changeset (one per component, as a wave does), with enough
 * changes that the path storage moves: every path is still right after finish. */
static void test_accumulate(void) {
  rc__buf ja, jb;
  rc__buf_init(&ja);
  rc__buf_init(&jb);
  rc__buf_adds(&ja, "{");
  rc__buf_adds(&jb, "{");
  for (int i = 0; i < 2000; i++) {
    rc__buf_printf(&ja, "%s\"key_number_%04d\":%d", i ? "," : "", i, i);
    rc__buf_printf(&jb, "%s\"key_number_%04d\":%d", i ? "," : "", i, i + 1);
  }
  rc__buf_adds(&ja, "}");
  rc__buf_adds(&jb, "}");
  rc_value_t *a = J(ja.p), *b = J(jb.p);
  rc__changeset cs;
  rc__changeset_init(&cs);
  CHECK_EQ_INT(rc__diff(a, b, "one", &cs), 0);
  CHECK_EQ_INT(rc__diff(b, a, "two", &cs), 0);
  CHECK_EQ_INT(rc__diff(NULL, a, "three", &cs), 0);
  rc__diff_finish(&cs);
  CHECK_EQ_INT(cs.n, 4001);
  bool ok = true;
  char want[64];
  for (int i = 0; i < 2000 && ok; i++) {
    snprintf(want, sizeof want, "one.key_number_%04d", i);
    ok = strcmp(cs.items[i].path, want) == 0;
    snprintf(want, sizeof want, "two.key_number_%04d", i);
    ok = ok && strcmp(cs.items[2000 + i].path, want) == 0;
  }
  CHECK(ok);
  CHECK_EQ_STR(cs.items[4000].path, "three");
  CHECK_EQ_INT(cs.items[4000].kind, RC_CHANGE_ADDED);
  rc__changeset_free(&cs);
  rc__value_unref(a);
  rc__value_unref(b);
  rc__buf_free(&ja);
  rc__buf_free(&jb);
}

/* Builds {"big": <shared>, "small": {"v": n}} where <shared> is a deep, wide tree. */
static rc_value_t *with_shared(rc_value_t *shared, int n) {
  rc__object_builder ob, small;
  rc__object_begin(&small);
  rc__object_put(&small, "v", 1, rc__value_int(n));
  rc__object_begin(&ob);
  rc__object_put(&ob, "big", 3, rc__value_ref(shared));
  rc__object_put(&ob, "small", 5, rc__object_end(&small));
  return rc__object_end(&ob);
}

static void test_shared_skip(void) {
  rc__buf j;
  rc__buf_init(&j);
  rc__buf_adds(&j, "[");
  for (int i = 0; i < 1000; i++)
    rc__buf_printf(&j, "%s{\"id\":%d,\"tags\":[\"a\",\"b\"],\"o\":{\"x\":{\"y\":%d}}}",
                   i ? "," : "", i, i);
  rc__buf_adds(&j, "]");
  rc_value_t *shared = J(j.p);
  rc__buf_free(&j);
  rc_value_t *a = with_shared(shared, 1), *b = with_shared(shared, 2);
  rc__changeset cs;
  rc__changeset_init(&cs);
  size_t before = rc__diff_walked;
  CHECK_EQ_INT(rc__diff(a, b, "", &cs), 0);
  rc__diff_finish(&cs);
  /* root and "small" only: the 4000 containers under "big" are never entered */
  CHECK_EQ_INT(rc__diff_walked - before, 2);
  CHECK_EQ_INT(cs.n, 1);
  CHECK_EQ_STR(cs.items[0].path, "small.v");
  /* the same content without sharing is walked in full, and still equal */
  rc__changeset_reset(&cs);
  char *text = rc_value_to_json(shared, false);
  rc_value_t *copy = J(text);
  rc_free(text);
  before = rc__diff_walked;
  CHECK_EQ_INT(rc__diff(shared, copy, "", &cs), 0);
  CHECK_EQ_INT(rc__diff_walked - before, 1 + 1000 * 4);
  CHECK_EQ_INT(cs.n, 0);
  rc__changeset_free(&cs);
  rc__value_unref(copy);
  rc__value_unref(a);
  rc__value_unref(b);
  rc__value_unref(shared);
}

/* Allocation failure anywhere in a diff gives RC_ENOMEM and a changeset that can be
 * reset and reused; nothing leaks at any N. */
static void test_alloc_failure(void) {
  rc__buf ja, jb;
  rc__buf_init(&ja);
  rc__buf_init(&jb);
  rc__buf_adds(&ja, "{\"list\":[");
  rc__buf_adds(&jb, "{\"list\":[");
  for (int i = 0; i < 300; i++) {
    rc__buf_printf(&ja, "%s{\"k%d\":%d}", i ? "," : "", i, i);
    rc__buf_printf(&jb, "%s{\"k%d\":%d}", i ? "," : "", i, i % 3 ? i : -i);
  }
  rc__buf_adds(&ja, "],\"gone\":1,\"a long key that needs quoting\":{\"x\":1}}");
  rc__buf_adds(&jb, "],\"new\":2,\"a long key that needs quoting\":{\"x\":2}}");
  rc_value_t *a = J(ja.p), *b = J(jb.p);
  rc__buf_free(&ja);
  rc__buf_free(&jb);
  long n;
  bool ok = false;
  for (n = 0; n < 1000 && !ok; n++) {
    rc__changeset cs;
    fa_install(n);
    long base = fa_live, failures = fa_failures;
    rc__changeset_init(&cs);
    int rc = rc__diff(a, b, "root", &cs);
    if (rc == 0) {
      rc__diff_finish(&cs);
      CHECK_EQ_INT(cs.n, 102);
      CHECK_EQ_STR(cs.items[101].path, "root.new");
      /* done when no allocation failed; the changeset's first one may fail unseen (the
       * diff then allocates that block itself) */
      ok = fa_failures == failures;
    } else {
      CHECK_EQ_INT(rc, RC_ENOMEM);
      rc__changeset_reset(&cs); /* usable again after a failure */
      fa_install(-1);
      CHECK_EQ_INT(rc__diff(a, b, "", &cs), 0);
    }
    rc__changeset_free(&cs);
    CHECK_EQ_INT(fa_live, base);
  }
  CHECK(ok);
  CHECK(n > 3);
  fa_uninstall();
  rc__value_unref(a);
  rc__value_unref(b);
}

int main(void) {
  test_kinds();
  test_nested_and_order();
  test_arrays();
  test_type_change_and_subtrees();
  test_quoted_paths();
  test_lengths();
  test_order_same_keys();
  test_against_reference();
  test_key_layouts();
  test_pointers();
  test_datetimes();
  test_accumulate();
  test_shared_skip();
  test_alloc_failure();
  return check_report("diff");
}
