/* SPDX-License-Identifier: MIT (see LICENSE) */
/* test_reader.c: readers and compiled paths through the public API. Reader threads with
 * compiled paths never see a mixed or older revision while the engine commits thousands
 * (from this thread, and from the engine's own thread driven by rc_engine_setenv); a
 * reader that stops reading pins at most one old snapshot, and none after rc_reader_idle;
 * compiled-path getters agree with string-path getters on every path of generated trees
 * (quoted keys, escapes, indices, absent and malformed paths) and across revisions whose
 * key order changed; failures of allocation leave nothing behind. */
#include "harness.h"
#include "engine.h"

#include <pthread.h>

/* ==== a counting allocator: how many big blocks (one per revision below) are alive ==== */

#define BIG 65536
static atomic_long big_live;

/* realloc-like, with a header remembering each block's size; thread-safe. */
static void *count_alloc(void *ud, void *ptr, size_t size) {
  (void)ud;
  size_t *h = ptr ? (size_t *)ptr - 2 : NULL;
  if (h && h[0] >= BIG) atomic_fetch_sub(&big_live, 1);
  if (size == 0) {
    free(h);
    return NULL;
  }
  size_t *n = realloc(h, size + 2 * sizeof(size_t));
  if (!n) {
    if (h && h[0] >= BIG) atomic_fetch_add(&big_live, 1);
    return NULL;
  }
  n[0] = size;
  if (size >= BIG) atomic_fetch_add(&big_live, 1);
  return n + 2;
}

/* ==== trees ==== */

/* { a: rev, b: rev, c: { d: [0, rev] }, "x.y": { "q\"k": rev } } */
static rc_value_t *root_for(int64_t rev) {
  rc__object_builder o, c, x;
  rc__array_builder arr;
  rc__array_begin(&arr);
  rc__array_push(&arr, rc__value_int(0));
  rc__array_push(&arr, rc__value_int(rev));
  rc__object_begin(&c);
  rc__object_put(&c, "d", 1, rc__array_end(&arr));
  rc__object_begin(&x);
  rc__object_put(&x, "q\"k", 3, rc__value_int(rev));
  rc__object_begin(&o);
  rc__object_put(&o, "a", 1, rc__value_int(rev));
  rc__object_put(&o, "b", 1, rc__value_int(rev));
  rc__object_put(&o, "c", 1, rc__object_end(&c));
  rc__object_put(&o, "x.y", 3, rc__object_end(&x));
  return rc__object_end(&o);
}

/* ==== readers while this thread commits ==== */

#define COMMITS 20000
#define THREADS 3

static atomic_int done;
static atomic_int mixed, backwards, reads, refreshes;

static void *reader_thread(void *arg) {
  rc_engine_t *eng = arg;
  rc_error err;
  rc_path_t *pa = rc_path_compile("a", &err), *pb = rc_path_compile("b", &err),
            *pd = rc_path_compile("c.d[1]", &err),
            *pq = rc_path_compile("[\"x.y\"][\"q\\\"k\"]", &err);
  rc_reader_t *r = rc_reader_new(eng);
  uint64_t last = 0;
  const rc_snapshot_t *prev = NULL;
  while (!atomic_load_explicit(&done, memory_order_relaxed)) {
    const rc_snapshot_t *s = rc_reader_snapshot(r);
    if (!s) continue;
    uint64_t rev = rc_snapshot_revision(s);
    int64_t a = -1, b = -2, d = -3, q = -4;
    rc_snapshot_get_int_path(s, pa, &a);
    rc_snapshot_get_int_path(s, pb, &b);
    rc_snapshot_get_int_path(s, pd, &d);
    rc_snapshot_get_int_path(s, pq, &q);
    if (a != (int64_t)rev || b != (int64_t)rev || d != (int64_t)rev || q != (int64_t)rev)
      atomic_fetch_add(&mixed, 1);
    if (rev < last) atomic_fetch_add(&backwards, 1);
    if (s != prev) atomic_fetch_add(&refreshes, 1);
    prev = s;
    last = rev;
    atomic_fetch_add_explicit(&reads, 1, memory_order_relaxed);
    /* Now and then go idle, as a thread would before blocking. */
    if ((rev & 1023) == 0) {
      rc_reader_idle(r);
      prev = NULL;
    }
  }
  rc_reader_free(r);
  rc_path_free(pa);
  rc_path_free(pb);
  rc_path_free(pd);
  rc_path_free(pq);
  return NULL;
}

static void test_readers_while_committing(void) {
  rc_engine_t *eng = rc_engine_new(NULL);
  CHECK(eng != NULL);
  rc_reader_t *r = rc_reader_new(eng);
  CHECK(rc_reader_snapshot(r) == NULL); /* nothing committed yet */
  CHECK(rc__publish(eng, root_for(1)) != NULL);
  const rc_snapshot_t *s1 = rc_reader_snapshot(r);
  CHECK(s1 != NULL && rc_snapshot_revision(s1) == 1);
  CHECK(rc_reader_snapshot(r) == s1); /* no commit: the same snapshot */
  atomic_store(&done, 0);
  pthread_t t[THREADS];
  for (int i = 0; i < THREADS; i++) pthread_create(&t[i], NULL, reader_thread, eng);
  for (int64_t rev = 2; rev <= COMMITS; rev++)
    CHECK(rc__publish(eng, root_for(rev)) != NULL);
  atomic_store(&done, 1);
  for (int i = 0; i < THREADS; i++) pthread_join(t[i], NULL);
  CHECK_EQ_INT(atomic_load(&mixed), 0);
  CHECK_EQ_INT(atomic_load(&backwards), 0);
  CHECK(atomic_load(&reads) > 0);
  /* This thread's reader still holds revision 1 and moves to the last one. */
  CHECK_EQ_INT(rc_snapshot_revision(s1), 1);
  CHECK_EQ_INT(rc_snapshot_revision(rc_reader_snapshot(r)), COMMITS);
  CHECK_EQ_INT(rc_engine_revision(eng), COMMITS);
  printf("readers: %d reads, %d refreshes over %d commits\n", atomic_load(&reads),
         atomic_load(&refreshes), COMMITS);
  /* A reader outlives its engine: its snapshot stays readable until it is freed. */
  const rc_snapshot_t *last = rc_reader_snapshot(r);
  rc_engine_free(eng);
  int64_t a = 0;
  CHECK_EQ_INT(rc_snapshot_get_int(last, "a", &a), 0);
  CHECK_EQ_INT(a, COMMITS);
  rc_reader_free(r);
}

/* ==== readers while the engine's own thread commits ==== */

static const char ENV_POLICY[] =
  "local rc = require 'reactcfg'\n"
  "return rc.policy {\n"
  "  components = {\n"
  "    tick = { source = rc.env { prefix = 'RCT_READER_', interval = '1h' } },\n"
  "  },\n"
  "}\n";

#define SETENVS 2000

static void *env_reader_thread(void *arg) {
  rc_engine_t *eng = arg;
  rc_path_t *pn = rc_path_compile("tick.n", NULL), *pm = rc_path_compile("tick.m", NULL);
  rc_reader_t *r = rc_reader_new(eng);
  uint64_t last_rev = 0;
  long last_n = 0;
  while (!atomic_load_explicit(&done, memory_order_relaxed)) {
    const rc_snapshot_t *s = rc_reader_snapshot(r);
    const char *n = NULL, *m = NULL;
    size_t len;
    if (rc_snapshot_get_string_path(s, pn, &n, &len) ||
        rc_snapshot_get_string_path(s, pm, &m, &len)) {
      atomic_fetch_add(&mixed, 1);
      continue;
    }
    long vn = strtol(n, NULL, 10), vm = strtol(m, NULL, 10);
    uint64_t rev = rc_snapshot_revision(s);
    /* N is set before M, one rc_engine_setenv each: a snapshot may hold N one ahead of
     * M (the two calls fell in different waves), never behind and never further. */
    if (vn != vm && vn != vm + 1) atomic_fetch_add(&mixed, 1);
    if (rev < last_rev || vn < last_n) atomic_fetch_add(&backwards, 1);
    last_rev = rev;
    last_n = vn;
    atomic_fetch_add_explicit(&reads, 1, memory_order_relaxed);
  }
  rc_reader_free(r);
  rc_path_free(pn);
  rc_path_free(pm);
  return NULL;
}

static void test_readers_while_engine_thread_commits(void) {
  harness h = {0};
  h_tmpdir(&h, "reader");
  h_write(&h, "policy.lua", ENV_POLICY);
  char path[1024];
  h_path(&h, "policy.lua", path, sizeof path);
  setenv("RCT_READER_N", "0", 1);
  setenv("RCT_READER_M", "0", 1);
  rc_error err;
  rc_engine_t *eng = rc_engine_new(&err);
  CHECK(eng != NULL);
  rc_engine_set_policy_reload(eng, false);
  CHECK_EQ_INT(rc_engine_load_policy(eng, path, &err), 0);
  CHECK_EQ_INT(rc_engine_start(eng, &err), 0);
  atomic_store(&done, 0);
  atomic_store(&mixed, 0);
  atomic_store(&backwards, 0);
  atomic_store(&reads, 0);
  pthread_t t[2];
  for (int i = 0; i < 2; i++) pthread_create(&t[i], NULL, env_reader_thread, eng);
  /* One value at a time, each waited for (bounded) through this thread's own reader, so
   * that the engine commits about once per value instead of coalescing them all. */
  rc_reader_t *mine = rc_reader_new(eng);
  rc_path_t *pm = rc_path_compile("tick.m", NULL);
  char buf[32];
  const char *m = NULL;
  size_t len;
  int late = 0;
  for (int i = 1; i <= SETENVS; i++) {
    snprintf(buf, sizeof buf, "%d", i);
    CHECK_EQ_INT(rc_engine_setenv(eng, "RCT_READER_N", buf), 0);
    CHECK_EQ_INT(rc_engine_setenv(eng, "RCT_READER_M", buf), 0);
    int tries = 0;
    while (!(rc_snapshot_get_string_path(rc_reader_snapshot(mine), pm, &m, &len) == 0 &&
             strcmp(m, buf) == 0) && tries++ < 100000)
      sched_yield();
    late += tries >= 100000;
  }
  for (int i = 0; i < 5000; i++) {
    if (rc_snapshot_get_string_path(rc_reader_snapshot(mine), pm, &m, &len) == 0 &&
        strcmp(m, buf) == 0)
      break;
    usleep(1000);
  }
  CHECK(m && strcmp(m, buf) == 0);
  atomic_store(&done, 1);
  for (int i = 0; i < 2; i++) pthread_join(t[i], NULL);
  CHECK_EQ_INT(atomic_load(&mixed), 0);
  CHECK_EQ_INT(atomic_load(&backwards), 0);
  CHECK(rc_engine_revision(eng) > SETENVS / 2);
  CHECK(rc_snapshot_revision(rc_reader_snapshot(mine)) == rc_engine_revision(eng));
  printf("engine thread: %d reads over %llu revisions (%d not seen within the wait)\n",
         atomic_load(&reads), (unsigned long long)rc_engine_revision(eng), late);
  CHECK_EQ_INT(rc_engine_stop(eng), 0);
  rc_engine_free(eng);
  rc_reader_free(mine);
  rc_path_free(pm);
  unsetenv("RCT_READER_N");
  unsetenv("RCT_READER_M");
}

/* ==== pinning ==== */

/* Each revision holds one big string, so big_live counts the snapshots alive. */
static rc_value_t *big_root(int64_t rev) {
  static char text[BIG];
  memset(text, 'a' + (int)(rev % 26), sizeof text);
  rc__object_builder o;
  rc__object_begin(&o);
  rc__object_put(&o, "rev", 3, rc__value_int(rev));
  rc__object_put(&o, "blob", 4, rc__value_string(text, sizeof text));
  return rc__object_end(&o);
}

static void test_pinning(void) {
  rc_engine_t *eng = rc_engine_new(NULL);
  CHECK(rc__publish(eng, big_root(1)) != NULL);
  rc_reader_t *r = rc_reader_new(eng), *busy = rc_reader_new(eng);
  rc_path_t *rev = rc_path_compile("rev", NULL);
  int64_t v = 0;
  CHECK_EQ_INT(rc_snapshot_get_int_path(rc_reader_snapshot(r), rev, &v), 0);
  CHECK_EQ_INT(v, 1);
  long worst = 0;
  /* `r` stops reading; `busy` reads after every commit. */
  for (int64_t i = 2; i <= 1000; i++) {
    CHECK(rc__publish(eng, big_root(i)) != NULL);
    CHECK_EQ_INT(rc_snapshot_get_int_path(rc_reader_snapshot(busy), rev, &v), 0);
    CHECK_EQ_INT(v, i);
    long live = atomic_load(&big_live);
    if (live > worst) worst = live;
  }
  /* The current one, plus the one `r` last returned: nothing more, at any moment. */
  CHECK_EQ_INT(worst, 2);
  CHECK_EQ_INT(atomic_load(&big_live), 2);
  rc_reader_idle(r);
  CHECK_EQ_INT(atomic_load(&big_live), 1);
  /* Idle, the next read takes the current snapshot again. */
  CHECK_EQ_INT(rc_snapshot_get_int_path(rc_reader_snapshot(r), rev, &v), 0);
  CHECK_EQ_INT(v, 1000);
  CHECK_EQ_INT(atomic_load(&big_live), 1);
  rc_reader_free(r);
  rc_reader_free(busy);
  rc_path_free(rev);
  rc_engine_free(eng);
  CHECK_EQ_INT(atomic_load(&big_live), 0);
}

/* ==== compiled paths agree with string paths ==== */

static uint64_t rng = 88172645463325252ull;
static uint64_t next_rand(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return rng;
}

static const char *const KEYS[] = {
  "a", "port", "db", "x-y", "under_score", "9lives", "a.b", "with space", "q\"uote",
  "back\\slash", "", "*", "**", "[", "]", "é", "a\"\\b", "host", "rules", "Z",
};
#define NKEYS (sizeof KEYS / sizeof KEYS[0])

/* A random tree of depth <= `depth`; `shuffle` picks the members' insertion order. */
static rc_value_t *gen(int depth, uint64_t seed, bool shuffle) {
  uint64_t s = seed * 6364136223846793005ull + 1442695040888963407ull;
  int kind = depth <= 0 ? (int)(s >> 60) % 5 : (int)(s >> 60) % 8;
  switch (kind) {
  case 0: return rc__value_int((int64_t)(s >> 20) % 1000);
  case 1: return rc__value_float((double)(s >> 40) / 7.0);
  case 2: return rc__value_bool(s >> 63);
  case 3: return rc__value_string("text", 4);
  case 4: return rc__value_null();
  case 5: {
    rc__array_builder b;
    rc__array_begin(&b);
    size_t n = (s >> 8) % 4;
    for (size_t i = 0; i < n; i++) rc__array_push(&b, gen(depth - 1, s + i + 1, shuffle));
    return rc__array_end(&b);
  }
  default: {
    /* The same keys and values whatever the order; only insertion order differs. */
    size_t n = 1 + (s >> 8) % 8, first = (s >> 16) % NKEYS;
    size_t idx[8];
    for (size_t i = 0; i < n; i++) idx[i] = (first + i * 7) % NKEYS;
    if (shuffle)
      for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)(next_rand() % i), t = idx[i - 1];
        idx[i - 1] = idx[j];
        idx[j] = t;
      }
    rc__object_builder b;
    rc__object_begin(&b);
    for (size_t i = 0; i < n; i++)
      rc__object_put(&b, KEYS[idx[i]], strlen(KEYS[idx[i]]),
                     gen(depth - 1, s ^ (idx[i] * 0x9E3779B97F4A7C15ull), shuffle));
    return rc__object_end(&b);
  }
  }
}

/* Every path of `v`, formatted as the engine formats them (rc__path_add_*). */
typedef struct paths {
  char **p;
  size_t n, cap;
} paths;

static void add_path(paths *ps, const rc__buf *b) {
  if (ps->n == ps->cap) {
    ps->cap = ps->cap ? ps->cap * 2 : 64;
    ps->p = realloc(ps->p, ps->cap * sizeof *ps->p);
  }
  ps->p[ps->n++] = strdup(b->p ? b->p : "");
}

static void collect(const rc_value_t *v, rc__buf *b, paths *ps) {
  add_path(ps, b);
  size_t mark = b->n;
  for (size_t i = 0; i < rc_value_len(v); i++) {
    if (rc_value_type(v) == RC_TYPE_ARRAY) {
      rc__path_add_index(b, i);
    } else {
      size_t klen;
      const char *k = rc_value_key_at(v, i, &klen);
      rc__path_add_key(b, k, klen);
    }
    collect(rc_value_at(v, i), b, ps);
    b->n = mark;
    if (b->p) b->p[mark] = '\0';
  }
}

/* Checks the compiled path `cp` of `text` against the string getters on `s`. */
static int agree(const rc_snapshot_t *s, const char *text, const rc_path_t *cp) {
  int bad = 0;
  bad += rc_snapshot_get(s, text) != rc_snapshot_get_path(s, cp);
  int64_t i1 = 7, i2 = 7;
  double d1 = 7, d2 = 7;
  bool b1 = false, b2 = false;
  const char *s1 = NULL, *s2 = NULL;
  size_t l1 = 0, l2 = 0;
  bad += rc_snapshot_get_int(s, text, &i1) != rc_snapshot_get_int_path(s, cp, &i2) ||
         i1 != i2;
  bad += rc_snapshot_get_number(s, text, &d1) != rc_snapshot_get_number_path(s, cp, &d2) ||
         memcmp(&d1, &d2, sizeof d1) != 0;
  bad += rc_snapshot_get_bool(s, text, &b1) != rc_snapshot_get_bool_path(s, cp, &b2) ||
         b1 != b2;
  bad += rc_snapshot_get_string(s, text, &s1, &l1) !=
           rc_snapshot_get_string_path(s, cp, &s2, &l2) || s1 != s2 || l1 != l2;
  if (bad) fprintf(stderr, "compiled path disagrees: %s\n", text);
  return bad;
}

static void test_paths_agree(void) {
  rc_engine_t *eng = rc_engine_new(NULL);
  int checked = 0, absent = 0, disagreements = 0;
  for (uint64_t tree = 1; tree <= 40; tree++) {
    /* Two revisions of the same tree, keys inserted in different orders: the compiled
     * paths' position hints from the first are wrong in the second. */
    rc__object_builder o;
    rc__object_begin(&o);
    rc__object_put(&o, "cfg", 3, gen(5, tree, false));
    CHECK(rc__publish(eng, rc__object_end(&o)) != NULL);
    rc_snapshot_t *s1 = rc_snapshot_acquire(eng);
    rc__object_begin(&o);
    rc__object_put(&o, "cfg", 3, gen(5, tree, true));
    CHECK(rc__publish(eng, rc__object_end(&o)) != NULL);
    rc_snapshot_t *s2 = rc_snapshot_acquire(eng);
    paths ps = {0};
    rc__buf b;
    rc__buf_init(&b);
    collect(rc_snapshot_root(s1), &b, &ps);
    rc__buf_free(&b);
    for (size_t i = 0; i < ps.n; i++) {
      /* The path itself, one below it that is absent, and one index past the end. */
      char variants[3][1200];
      snprintf(variants[0], sizeof variants[0], "%s", ps.p[i]);
      snprintf(variants[1], sizeof variants[1], "%s%snope", ps.p[i], *ps.p[i] ? "." : "");
      snprintf(variants[2], sizeof variants[2], "%s[%zu]", ps.p[i],
               (size_t)next_rand() % 5);
      for (int k = 0; k < 3; k++) {
        rc_error err;
        rc_path_t *cp = rc_path_compile(variants[k], &err);
        CHECK(cp != NULL); /* formatted paths always compile */
        if (!cp) continue;
        for (int rep = 0; rep < 2; rep++) {
          disagreements += agree(s1, variants[k], cp);
          disagreements += agree(s2, variants[k], cp);
        }
        absent += rc_snapshot_get_path(s1, cp) == NULL;
        checked++;
        rc_path_free(cp);
      }
      free(ps.p[i]);
    }
    free(ps.p);
    rc_snapshot_release(s1);
    rc_snapshot_release(s2);
  }
  CHECK_EQ_INT(disagreements, 0);
  CHECK(checked > 1000);
  CHECK(absent > 0 && absent < checked);
  printf("paths: %d compiled paths checked on two key orders (%d absent)\n", checked,
         absent);
  rc_engine_free(eng);
}

/* Hand-picked paths: quoted keys with escapes, indices, the root, and malformed ones
 * (which compile to an error at the right byte and which the string getter treats as
 * absent). */
static void test_paths_by_hand(void) {
  rc_engine_t *eng = rc_engine_new(NULL);
  CHECK(rc__publish(eng, root_for(5)) != NULL);
  rc_snapshot_t *s = rc_snapshot_acquire(eng);
  const char *good[] = {"", "a", "c.d[1]", "c.d[0]", "c.d[2]", "c[\"d\"][1]", "[\"c\"].d",
                        "[\"x.y\"][\"q\\\"k\"]", "x.y", "[\"x.y\"]", "c.d", "zz", "a.b"};
  for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
    rc_error err;
    rc_path_t *cp = rc_path_compile(good[i], &err);
    CHECK(cp != NULL);
    if (cp) CHECK_EQ_INT(agree(s, good[i], cp), 0);
    rc_path_free(cp);
  }
  int64_t v = 0;
  rc_path_t *q = rc_path_compile("[\"x.y\"][\"q\\\"k\"]", NULL);
  CHECK_EQ_INT(rc_snapshot_get_int_path(s, q, &v), 0);
  CHECK_EQ_INT(v, 5);
  const char *str;
  CHECK_EQ_INT(rc_snapshot_get_string_path(s, q, &str, NULL), RC_ETYPE);
  rc_path_free(q);
  rc_path_t *root = rc_path_compile("", NULL);
  CHECK(rc_snapshot_get_path(s, root) == rc_snapshot_root(s));
  CHECK(rc_snapshot_get_path(NULL, root) == NULL);
  CHECK(rc_snapshot_get_path(s, NULL) == NULL);
  CHECK_EQ_INT(rc_snapshot_get_int_path(s, NULL, &v), RC_ENOTFOUND);
  rc_path_free(root);
  struct { const char *path; int column; } bad[] = {
    {"a..b", 2}, {"a.", 2}, {"a[01]", 2}, {"a[", 2}, {"a[1", 2}, {"[\"open", 1},
    {"a[\"x\\n\"]", 2}, {".a", 1}, {"a b", 2}, {"a[-1]", 2},
    {"a[99999999999999999999999]", 2},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    rc_error err = {0};
    CHECK(rc_path_compile(bad[i].path, &err) == NULL);
    CHECK_EQ_INT(err.code, RC_EINVAL);
    if (err.column != bad[i].column) fprintf(stderr, "column for %s\n", bad[i].path);
    CHECK_EQ_INT(err.column, bad[i].column);
    CHECK(rc_snapshot_get(s, bad[i].path) == NULL);
  }
  rc_error err = {0};
  CHECK(rc_path_compile(NULL, &err) == NULL);
  CHECK_EQ_INT(err.code, RC_EINVAL);
  CHECK(rc_reader_new(NULL) == NULL);
  rc_reader_free(NULL);
  rc_reader_idle(NULL);
  rc_path_free(NULL);
  rc_snapshot_release(s);
  rc_engine_free(eng);
}

/* Out of memory at every allocation of rc_path_compile and rc_reader_new: an error (or
 * NULL), never a leak or a crash. */
static long oom_live;
static long oom_countdown = -1;
static void *oom_alloc(void *ud, void *ptr, size_t size) {
  (void)ud;
  if (size == 0) {
    if (ptr) oom_live--;
    free(ptr);
    return NULL;
  }
  if (oom_countdown >= 0 && oom_countdown-- == 0) return NULL;
  void *p = realloc(ptr, size);
  if (p && !ptr) oom_live++;
  return p;
}

static void test_out_of_memory(void) {
  rc_set_allocator(oom_alloc, NULL);
  rc_engine_t *eng = rc_engine_new(NULL);
  long base = oom_live;
  for (long n = 0;; n++) {
    oom_countdown = n;
    rc_error err = {0};
    rc_path_t *p = rc_path_compile("a.b[\"c\\\"d\"][3]", &err);
    rc_reader_t *r = p ? rc_reader_new(eng) : NULL;
    oom_countdown = -1;
    if (p && r) {
      rc_reader_free(r);
      rc_path_free(p);
      break;
    }
    if (!p) CHECK_EQ_INT(err.code, RC_ENOMEM);
    rc_path_free(p);
    CHECK_EQ_INT(oom_live, base);
  }
  CHECK_EQ_INT(oom_live, base);
  rc_engine_free(eng);
  CHECK_EQ_INT(oom_live, 0);
  rc_set_allocator(NULL, NULL);
}

int main(void) {
  /* Each allocator only frees what it allocated: the failing one first, on its own. */
  test_out_of_memory();
  rc_set_allocator(count_alloc, NULL);
  test_paths_by_hand();
  test_paths_agree();
  test_pinning();
  test_readers_while_committing();
  test_readers_while_engine_thread_commits();
  return check_report("reader");
}
