/* SPDX-License-Identifier: MIT (see LICENSE) */
/* test_value.c: value nodes: scalar constructors and accessors, immortal constants,
 * array and object builders (insertion order, duplicate keys, key storage growth,
 * sorted index on large and hostile key sets), lookup, rc__object_with sharing,
 * equality (NaN, -0.0, int vs float, member order), names, and allocation failure at
 * every step of building; document arenas (chunks, one count for all nodes, sealing). */
#include "check.h"
#include "failalloc.h"
#include "value.h"

#include <math.h>
#include <stdlib.h>

static rc_value_t *str(const char *s) { return rc__value_string(s, strlen(s)); }

/* Checks that the sorted index of `v` is strictly increasing by key. */
static bool index_sorted(const rc_value_t *v) {
  for (uint32_t i = 1; i < v->len; i++) {
    const rc__member *a = &v->u.members[rc__sorted(v)[i - 1]],
                    *b = &v->u.members[rc__sorted(v)[i]];
    size_t m = a->klen < b->klen ? a->klen : b->klen;
    int c = memcmp(a->key, b->key, m);
    if (c > 0 || (c == 0 && a->klen >= b->klen)) return false;
  }
  return true;
}

static void test_scalars(void) {
  rc_value_t *i = rc__value_int(-42), *f = rc__value_float(2.5), *s = str("hé");
  int64_t iv = 7;
  double dv = 0;
  bool bv = false;
  const char *sv = NULL;
  size_t sl = 0;
  CHECK_EQ_INT(rc_value_type(i), RC_TYPE_INT);
  CHECK_EQ_INT(rc_value_int(i, &iv), 0);
  CHECK_EQ_INT(iv, -42);
  CHECK_EQ_INT(rc_value_number(i, &dv), 0);
  CHECK(dv == -42.0);
  CHECK_EQ_INT(rc_value_number(f, &dv), 0);
  CHECK(dv == 2.5);
  iv = 7;
  CHECK_EQ_INT(rc_value_int(f, &iv), RC_ETYPE);
  CHECK_EQ_INT(iv, 7); /* untouched */
  CHECK_EQ_INT(rc_value_bool(i, &bv), RC_ETYPE);
  CHECK_EQ_INT(rc_value_string(s, &sv, &sl), 0);
  CHECK_EQ_STR(sv, "hé");
  CHECK_EQ_INT(sl, 3);
  CHECK_EQ_INT(rc_value_string(i, &sv, &sl), RC_ETYPE);
  CHECK_EQ_INT(rc_value_len(s), 0);
  CHECK(rc_value_at(s, 0) == NULL);

  /* embedded NUL: length is the truth, and the copy is still NUL-terminated */
  rc_value_t *z = rc__value_string("a\0b", 3);
  CHECK_EQ_INT(rc_value_string(z, &sv, &sl), 0);
  CHECK_EQ_INT(sl, 3);
  CHECK(memcmp(sv, "a\0b", 4) == 0);

  /* immortal constants: same node every time, references are free */
  CHECK(rc__value_null() == rc__value_null());
  CHECK(rc__value_bool(true) == rc__value_bool(true));
  CHECK(rc__value_bool(true) != rc__value_bool(false));
  for (int k = 0; k < 3; k++) rc__value_unref(rc__value_null());
  rc__value_unref(rc__value_ref(rc__value_bool(false)));
  CHECK_EQ_INT(rc_value_bool(rc__value_bool(true), &bv), 0);
  CHECK(bv);
  CHECK_EQ_INT(rc_value_type(rc__value_null()), RC_TYPE_NULL);
  CHECK_EQ_INT(rc_value_type(NULL), RC_TYPE_NULL);

  /* reference counting */
  CHECK(rc__value_ref(i) == i);
  CHECK_EQ_INT(i->refs, 2);
  rc__value_unref(i);
  CHECK_EQ_INT(i->refs, 1);
  CHECK(rc__value_ref(NULL) == NULL);
  rc__value_unref(NULL);

  rc__value_unref(i);
  rc__value_unref(f);
  rc__value_unref(s);
  rc__value_unref(z);
}

static void test_names(void) {
  CHECK_EQ_STR(rc_type_name(RC_TYPE_NULL), "null");
  CHECK_EQ_STR(rc_type_name(RC_TYPE_BOOL), "boolean");
  CHECK_EQ_STR(rc_type_name(RC_TYPE_INT), "integer");
  CHECK_EQ_STR(rc_type_name(RC_TYPE_FLOAT), "float");
  CHECK_EQ_STR(rc_type_name(RC_TYPE_STRING), "string");
  CHECK_EQ_STR(rc_type_name(RC_TYPE_ARRAY), "array");
  CHECK_EQ_STR(rc_type_name(RC_TYPE_OBJECT), "object");
  CHECK_EQ_STR(rc_type_name((rc_type_t)99), "unknown");
  CHECK_EQ_STR(rc_change_kind_name(RC_CHANGE_ADDED), "added");
  CHECK_EQ_STR(rc_change_kind_name(RC_CHANGE_REMOVED), "removed");
  CHECK_EQ_STR(rc_change_kind_name(RC_CHANGE_MODIFIED), "modified");
  CHECK_EQ_STR(rc_change_kind_name((rc_change_kind_t)0), "unknown");
}

static void test_array(void) {
  rc__array_builder b;
  rc__array_begin(&b);
  for (int k = 0; k < 20; k++) rc__array_push(&b, rc__value_int(k));
  rc_value_t *a = rc__array_end(&b);
  CHECK(a != NULL);
  CHECK_EQ_INT(rc_value_type(a), RC_TYPE_ARRAY);
  CHECK_EQ_INT(rc_value_len(a), 20);
  int64_t v = -1;
  CHECK_EQ_INT(rc_value_int(rc_value_at(a, 19), &v), 0);
  CHECK_EQ_INT(v, 19);
  CHECK(rc_value_at(a, 20) == NULL);
  CHECK(rc_value_key_at(a, 0, NULL) == NULL);
  CHECK(b.items == NULL && b.n == 0); /* builder reset */
  rc__value_unref(a);

  rc__array_begin(&b);
  a = rc__array_end(&b);
  CHECK(a && rc_value_len(a) == 0);
  rc__value_unref(a);

  /* a NULL child (its constructor failed) poisons the builder and releases the others */
  fa_install(-1);
  rc__array_begin(&b);
  rc__array_push(&b, str("x"));
  rc__array_push(&b, NULL);
  rc__array_push(&b, str("y"));
  CHECK(rc__array_end(&b) == NULL);
  CHECK_EQ_INT(fa_live, 0);
  fa_uninstall();
}

static void test_object(void) {
  rc__object_builder b;
  rc__object_begin(&b);
  rc__object_put(&b, "zeta", 4, rc__value_int(1));
  rc__object_put(&b, "alpha", 5, rc__value_int(2));
  rc__object_put(&b, "mid", 3, rc__value_int(3));
  rc__object_put(&b, "alpha", 5, rc__value_int(4)); /* duplicate: value 4, position 1 */
  rc__object_put(&b, "", 0, rc__value_int(5));      /* empty key is a key */
  rc__object_put(&b, "zeta", 4, rc__value_int(6));
  rc__object_put(&b, "zeta", 4, rc__value_int(7));
  rc_value_t *o = rc__object_end(&b);
  CHECK(o != NULL);
  CHECK_EQ_INT(rc_value_len(o), 4);
  const char *want_keys[] = {"zeta", "alpha", "mid", ""};
  const int64_t want_vals[] = {7, 4, 3, 5};
  for (size_t i = 0; i < 4; i++) {
    size_t kl = 99;
    CHECK_EQ_STR(rc_value_key_at(o, i, &kl), want_keys[i]);
    CHECK_EQ_INT(kl, strlen(want_keys[i]));
    int64_t v = 0;
    CHECK_EQ_INT(rc_value_int(rc_value_at(o, i), &v), 0);
    CHECK_EQ_INT(v, want_vals[i]);
  }
  CHECK(index_sorted(o));
  CHECK_EQ_INT(rc__object_find(o, "mid", 3), 2);
  CHECK_EQ_INT(rc__object_find(o, "", 0), 3);
  CHECK_EQ_INT(rc__object_find(o, "mi", 2), -1);
  CHECK_EQ_INT(rc__object_find(o, "midd", 4), -1);
  CHECK(rc_value_get(o, "alpha") == rc_value_at(o, 1));
  CHECK(rc_value_get(o, "nope") == NULL);
  CHECK(rc_value_get(o, NULL) == NULL);
  CHECK(rc_value_get(rc_value_at(o, 0), "x") == NULL); /* not an object */
  CHECK(rc_value_key_at(o, 4, NULL) == NULL);
  rc__value_unref(o);

  /* keys that are prefixes of each other and bytes above 0x7F sort bytewise */
  rc__object_begin(&b);
  const char *ks[] = {"ab", "a", "\xc3\xa9", "abc", "b", "a\x01", "A"};
  for (size_t i = 0; i < 7; i++) rc__object_put(&b, ks[i], strlen(ks[i]), rc__value_null());
  o = rc__object_end(&b);
  CHECK(index_sorted(o));
  const char *order[] = {"A", "a", "a\x01", "ab", "abc", "b", "\xc3\xa9"};
  for (size_t i = 0; i < 7; i++) CHECK_EQ_STR(o->u.members[rc__sorted(o)[i]].key, order[i]);
  for (size_t i = 0; i < 7; i++) CHECK_EQ_INT(rc__object_find(o, ks[i], strlen(ks[i])), i);
  rc__value_unref(o);

  /* long keys and many members: the builder's key area and member array both grow */
  rc__object_begin(&b);
  char key[1200];
  for (int k = 0; k < 300; k++) {
    size_t kl = (size_t)snprintf(key, sizeof key, "k%03d-", k);
    size_t extra = (size_t)(k * 7 % 1000);
    memset(key + kl, 'a' + k % 26, extra);
    rc__object_put(&b, key, kl + extra, rc__value_int(k));
  }
  o = rc__object_end(&b);
  CHECK_EQ_INT(rc_value_len(o), 300);
  CHECK(index_sorted(o));
  bool all = true;
  for (int k = 0; k < 300; k++) {
    size_t kl = (size_t)snprintf(key, sizeof key, "k%03d-", k);
    size_t extra = (size_t)(k * 7 % 1000);
    memset(key + kl, 'a' + k % 26, extra);
    key[kl + extra] = '\0';
    size_t got = 0;
    const char *gk = rc_value_key_at(o, (size_t)k, &got);
    all = all && got == kl + extra && memcmp(gk, key, got) == 0 && gk[got] == '\0';
    all = all && rc__object_find(o, key, kl + extra) == k;
  }
  CHECK(all);
  rc__value_unref(o);
}

/* Large objects in reverse, shuffled, and with many duplicates: the index is sorted and
 * every key is found; duplicates keep the first position and the last value. */
static void test_object_sorting(void) {
  srand(7);
  for (int mode = 0; mode < 3; mode++) {
    const int n = 5000;
    int *perm = malloc(sizeof(int) * (size_t)n);
    for (int i = 0; i < n; i++) perm[i] = mode == 0 ? n - 1 - i : i;
    if (mode >= 1)
      for (int i = n - 1; i > 0; i--) {
        int j = rand() % (i + 1), t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
      }
    rc__object_builder b;
    rc__object_begin(&b);
    char key[32];
    for (int i = 0; i < n; i++) {
      int k = mode == 2 ? perm[i] % 1000 : perm[i]; /* mode 2: each key ~5 times */
      snprintf(key, sizeof key, "key%d", k);
      rc__object_put(&b, key, strlen(key), rc__value_int(i));
    }
    rc_value_t *o = rc__object_end(&b);
    CHECK(index_sorted(o));
    CHECK_EQ_INT(rc_value_len(o), mode == 2 ? 1000 : n);
    bool ok = true;
    if (mode == 2) {
      /* expected: position = order of first appearance; value = last index written */
      int first[1000], last[1000], pos = 0;
      for (int k = 0; k < 1000; k++) first[k] = -1;
      for (int i = 0; i < n; i++) {
        int k = perm[i] % 1000;
        if (first[k] < 0) first[k] = pos++;
        last[k] = i;
      }
      for (int k = 0; k < 1000; k++) {
        snprintf(key, sizeof key, "key%d", k);
        long at = rc__object_find(o, key, strlen(key));
        int64_t v = -1;
        rc_value_int(rc_value_at(o, (size_t)at), &v);
        ok = ok && at == first[k] && v == last[k];
      }
    } else {
      for (int i = 0; i < n; i++) {
        snprintf(key, sizeof key, "key%d", perm[i]);
        ok = ok && rc__object_find(o, key, strlen(key)) == i;
      }
    }
    CHECK(ok);
    rc__value_unref(o);
    free(perm);
  }
}

static rc_value_t *obj3(int a, int b, int c) {
  rc__object_builder ob;
  rc__object_begin(&ob);
  rc__object_put(&ob, "a", 1, rc__value_int(a));
  rc__object_put(&ob, "b", 1, rc__value_int(b));
  rc__object_put(&ob, "c", 1, rc__value_int(c));
  return rc__object_end(&ob);
}

static void test_object_with(void) {
  rc_value_t *o = obj3(1, 2, 3);
  rc_value_t *r = rc__object_with(o, "b", rc__value_int(20)); /* replace in place */
  CHECK_EQ_INT(rc_value_len(r), 3);
  CHECK_EQ_STR(rc_value_key_at(r, 1, NULL), "b");
  CHECK(rc_value_at(r, 0) == rc_value_at(o, 0)); /* shared, not copied */
  CHECK(rc_value_at(r, 2) == rc_value_at(o, 2));
  CHECK_EQ_INT(rc_value_at(o, 0)->refs, 2);
  char *j = rc_value_to_json(r, false);
  CHECK_EQ_STR(j, "{\"a\":1,\"b\":20,\"c\":3}");
  rc_free(j);

  rc_value_t *add = rc__object_with(r, "0", str("new")); /* appended at the end */
  j = rc_value_to_json(add, false);
  CHECK_EQ_STR(j, "{\"a\":1,\"b\":20,\"c\":3,\"0\":\"new\"}");
  rc_free(j);
  CHECK(index_sorted(add));

  rc_value_t *del = rc__object_with(add, "a", NULL); /* removed */
  j = rc_value_to_json(del, false);
  CHECK_EQ_STR(j, "{\"b\":20,\"c\":3,\"0\":\"new\"}");
  rc_free(j);
  rc_value_t *same = rc__object_with(del, "absent", NULL);
  CHECK(rc_value_equal(same, del));

  rc_value_t *fresh = rc__object_with(NULL, "x", rc__value_bool(true));
  j = rc_value_to_json(fresh, false);
  CHECK_EQ_STR(j, "{\"x\":true}");
  rc_free(j);

  rc__value_unref(o);
  rc__value_unref(r);
  rc__value_unref(add);
  rc__value_unref(del);
  rc__value_unref(same);
  rc__value_unref(fresh);
}

static void test_equal(void) {
  rc_value_t *n1 = rc__value_float(NAN), *n2 = rc__value_float(NAN);
  rc_value_t *z = rc__value_float(0.0), *nz = rc__value_float(-0.0);
  rc_value_t *i1 = rc__value_int(1), *f1 = rc__value_float(1.0), *i1b = rc__value_int(1);
  CHECK(rc_value_equal(n1, n2)); /* by bits: NaN equals itself */
  CHECK(!rc_value_equal(z, nz));
  CHECK(!rc_value_equal(i1, f1)); /* integer and float are different types */
  CHECK(rc_value_equal(i1, i1b));
  CHECK(rc_value_equal(NULL, NULL));
  CHECK(!rc_value_equal(NULL, rc__value_null()));
  CHECK(rc_value_equal(rc__value_null(), rc__value_null()));
  rc_value_t *s1 = rc__value_string("ab", 2), *s2 = rc__value_string("ab\0", 3);
  CHECK(!rc_value_equal(s1, s2));

  /* objects: same members in another insertion order are equal */
  rc__object_builder b;
  rc__object_begin(&b);
  rc__object_put(&b, "c", 1, rc__value_int(3));
  rc__object_put(&b, "a", 1, rc__value_int(1));
  rc__object_put(&b, "b", 1, rc__value_int(2));
  rc_value_t *o1 = rc__object_end(&b), *o2 = obj3(1, 2, 3), *o3 = obj3(1, 2, 4);
  CHECK(rc_value_equal(o1, o2));
  CHECK(!rc_value_equal(o1, o3));
  /* arrays: order matters */
  rc__array_builder ab;
  rc__array_begin(&ab);
  rc__array_push(&ab, rc__value_ref(i1));
  rc__array_push(&ab, rc__value_ref(z));
  rc_value_t *a1 = rc__array_end(&ab);
  rc__array_begin(&ab);
  rc__array_push(&ab, rc__value_ref(z));
  rc__array_push(&ab, rc__value_ref(i1));
  rc_value_t *a2 = rc__array_end(&ab);
  CHECK(!rc_value_equal(a1, a2));
  CHECK(!rc_value_equal(a1, o1));
  rc_value_t *vals[] = {n1, n2, z, nz, i1, f1, i1b, s1, s2, o1, o2, o3, a1, a2};
  for (size_t k = 0; k < sizeof vals / sizeof vals[0]; k++) rc__value_unref(vals[k]);
}

/* Every allocation of building a nested object may fail: the builder reports NULL and
 * leaves nothing behind, whichever allocation it was. */
static rc_value_t *build_nested(void) {
  rc__object_builder ob;
  rc__object_begin(&ob);
  for (int k = 0; k < 12; k++) {
    char key[16];
    snprintf(key, sizeof key, "key%d", k % 10); /* two duplicates */
    rc__array_builder ab;
    rc__array_begin(&ab);
    rc__array_push(&ab, rc__value_int(k));
    rc__array_push(&ab, str("text"));
    rc__array_push(&ab, rc__value_bool(k & 1));
    rc__object_put(&ob, key, strlen(key), rc__array_end(&ab));
  }
  return rc__object_end(&ob);
}

static void test_alloc_failure(void) {
  long n;
  rc_value_t *v = NULL;
  for (n = 0; n < 10000; n++) {
    fa_install(n);
    v = build_nested();
    if (v) break;
    if (fa_live != 0) {
      CHECK_EQ_INT(fa_live, 0);
      break;
    }
  }
  CHECK(v != NULL);
  CHECK(n > 10); /* it did fail at many points first */
  rc_value_t *w = NULL;
  long base = fa_live;
  for (long m = 0; v && m < 100; m++) {
    fa_install(m);
    w = rc__object_with(v, "key3", NULL);
    if (w) break;
    CHECK_EQ_INT(fa_live, base);
    CHECK_EQ_INT(v->refs, 1); /* references taken for the failed copy were given back */
  }
  CHECK(w != NULL);
  rc__value_unref(w);
  rc__value_unref(v);
  CHECK_EQ_INT(fa_live, 0);
  fa_uninstall();
}

/* A document arena: nodes across many chunks (the first is small, later ones double),
 * a node too large for a chunk's share in a chunk of its own, one count for all nodes:
 * a reference to any node keeps the arena, the last release frees every chunk (the
 * sanitizer build checks for leaks and use after free). An unfinished arena is
 * discarded whole. Sealing an object sorts its index and drops duplicate keys. */
static void test_arena(void) {
  rc__arena *a = rc__arena_new(0);
  CHECK(a != NULL);
  if (!a) return;
  enum { N = 2000 };
  rc_value_t *arr = rc__arena_value(a, sizeof(rc_value_t) + (N + 1) * sizeof(rc_value_t *),
                                    RC_TYPE_ARRAY, N + 1);
  CHECK(arr != NULL && arr->refs == RC__ARENA);
  if (!arr) return;
  arr->u.items = (rc_value_t **)(arr + 1);
  bool ok = true;
  for (int i = 0; i < N && ok; i++) {
    rc_value_t *x = rc__arena_value(a, sizeof(rc_value_t), RC_TYPE_INT, 0);
    ok = x != NULL && ((uintptr_t)x & 7) == 0;
    if (ok) x->u.i = i * 3;
    arr->u.items[i] = x;
  }
  CHECK(ok);
  size_t big = 100000;
  rc_value_t *s = rc__arena_value(a, sizeof(rc_value_t) + big + RC__TAIL, RC_TYPE_STRING,
                                  (uint32_t)big);
  CHECK(s != NULL);
  if (!ok || !s) return;
  s->u.s = (char *)(s + 1);
  memset(s->u.s, 'x', big);
  memset(s->u.s + big, 0, RC__TAIL);
  arr->u.items[N] = s;
  int64_t iv = 0;
  CHECK_EQ_INT(rc_value_int(rc_value_at(arr, N - 1), &iv), 0);
  CHECK_EQ_INT(iv, (N - 1) * 3);

  rc_value_t *mid = rc__value_ref(rc_value_at(arr, N / 2));
  rc_value_t *str_ref = rc__value_ref(s);
  CHECK_EQ_INT(mid->refs, RC__ARENA); /* nodes carry no count of their own */
  rc__value_unref(arr);                /* the root's reference */
  CHECK_EQ_INT(rc_value_int(mid, &iv), 0);
  CHECK_EQ_INT(iv, N / 2 * 3);
  rc__value_unref(mid);
  CHECK_EQ_INT(rc_value_len(str_ref) == 0 && str_ref->len == big, 1);
  CHECK(str_ref->u.s[big - 1] == 'x' && str_ref->u.s[big] == '\0');
  rc__value_unref(str_ref); /* the last reference: every chunk is freed */

  /* an object sealed in an arena, with a duplicate key; then the arena discarded */
  a = rc__arena_new(64);
  CHECK(a != NULL);
  if (!a) return;
  const char *keys = "b\0a\0b\0";
  rc_value_t *o = rc__arena_value(a, sizeof(rc_value_t) + 3 * (sizeof(rc__member) + 4) + 6 +
                                  RC__TAIL, RC_TYPE_OBJECT, 3);
  CHECK(o != NULL);
  if (!o) return;
  rc__member *m = (rc__member *)(o + 1);
  o->u.members = m;
  char *kb = (char *)(rc__sorted(o) + 3);
  memcpy(kb, keys, 6);
  memset(kb + 6, 0, RC__TAIL);
  for (int i = 0; i < 3; i++) {
    m[i].key = kb + 2 * i;
    m[i].klen = 1;
    m[i].val = rc__arena_value(a, sizeof(rc_value_t), RC_TYPE_INT, 0);
    if (m[i].val) m[i].val->u.i = i;
  }
  uint64_t scratch[2 * 3];
  rc__object_seal(o, scratch);
  CHECK_EQ_INT(rc_value_len(o), 2);
  CHECK_EQ_STR(rc_value_key_at(o, 0, NULL), "b");
  CHECK_EQ_INT(rc_value_int(rc_value_get(o, "b"), &iv), 0);
  CHECK_EQ_INT(iv, 2); /* the last value, at the first position */
  CHECK_EQ_INT(rc_value_int(rc_value_get(o, "a"), &iv), 0);
  CHECK_EQ_INT(iv, 1);
  CHECK(index_sorted(o));
  rc__arena_discard(a);
  rc__arena_discard(NULL);
}

int main(void) {
  test_scalars();
  test_names();
  test_array();
  test_object();
  test_object_sorting();
  test_object_with();
  test_equal();
  test_alloc_failure();
  test_arena();
  return check_report("value");
}
