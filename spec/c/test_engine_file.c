/* SPDX-License-Identifier: MIT (see LICENSE) */
/* test_engine_file.c: the file source end to end. Every way of saving a file must give
 * exactly one commit with the right change list; a broken save keeps the last good value
 * and reports where the file is wrong; deletion falls back to the default. */
#include "harness.h"

#include <time.h>

static void sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

/* One save, then exactly one more commit whose first change is `expect`. */
static void expect_one_commit(harness *h, const char *what, const char *expect) {
  int before = h->commits, first = h->nchanges;
  h_run(h, before + 1, -1, 5000, 300);
  if (h->commits != before + 1)
    fprintf(stderr, "%s: expected 1 commit, got %d\n", what, h->commits - before);
  CHECK_EQ_INT(h->commits, before + 1);
  CHECK(h->nchanges > first);
  if (h->nchanges > first) CHECK_EQ_STR(h->changes[first], expect);
}

static const char POLICY[] =
  "local rc = require 'reactcfg'\n"
  "return rc.policy {\n"
  "  components = {\n"
  "    cfg = { source = rc.file 'config.json' },\n"
  "    later = { source = rc.file 'later.json' },\n"
  "    dflt = { source = rc.file 'dflt.json', default = { x = 1 } },\n"
  "    kept = { source = rc.file 'kept.json', on_missing = 'keep' },\n"
  "    k8s = { source = rc.file 'mount/config.json' },\n"
  "  },\n"
  "}\n";

static void make_k8s(harness *h) {
  char p[1024], q[1024];
  h_path(h, "mount", p, sizeof p);
  mkdir(p, 0755);
  h_path(h, "mount/..v1", p, sizeof p);
  mkdir(p, 0755);
  h_write(h, "mount/..v1/config.json", "{\"v\": 1}");
  h_path(h, "mount/..data", p, sizeof p);
  CHECK(symlink("..v1", p) == 0);
  h_path(h, "mount/config.json", q, sizeof q);
  CHECK(symlink("..data/config.json", q) == 0);
}

/* The kubelet's AtomicWriter: new dir, new ..data_tmp symlink, rename over ..data. */
static void k8s_swap(harness *h, const char *ver, const char *text) {
  char d[1024], rel[256], tmp[1024], data[1024];
  snprintf(rel, sizeof rel, "mount/%s", ver);
  h_path(h, rel, d, sizeof d);
  mkdir(d, 0755);
  snprintf(rel, sizeof rel, "mount/%s/config.json", ver);
  h_write(h, rel, text);
  h_path(h, "mount/..data_tmp", tmp, sizeof tmp);
  h_path(h, "mount/..data", data, sizeof data);
  CHECK(symlink(ver, tmp) == 0);
  CHECK(rename(tmp, data) == 0);
}

int main(void) {
  harness h = {0};
  h_tmpdir(&h, "engine_file");
  h_write(&h, "config.json", "{\"seq\": 1, \"name\": \"a\"}");
  h_write(&h, "kept.json", "{\"k\": true}");
  make_k8s(&h);
  CHECK_EQ_INT(h_start(&h, POLICY), 0);

  /* revision 1: everything present is added at once */
  CHECK_EQ_INT(h.commits, 1);
  CHECK_EQ_INT((int)rc_engine_revision(h.eng), 1);
  CHECK(h_find_change(&h, "added cfg {\"seq\":1,\"name\":\"a\"}") < 0); /* path then values */
  CHECK(h_find_change(&h, "added cfg - {\"seq\":1,\"name\":\"a\"}") >= 0);
  CHECK(h_find_change(&h, "added dflt - {\"x\":1}") >= 0);
  CHECK(h_find_change(&h, "added k8s - {\"v\":1}") >= 0);
  CHECK(h_find_change(&h, "added later") < 0);

  /* in-place write in two parts: never committed half-written */
  {
    char p[1024];
    h_path(&h, "config.json", p, sizeof p);
    int fd = open(p, O_WRONLY | O_TRUNC);
    CHECK(fd >= 0);
    const char *a = "{\"seq\": 2, ", *b = "\"name\": \"a\"}";
    CHECK(write(fd, a, strlen(a)) == (ssize_t)strlen(a));
    h_run(&h, 0, -1, 0, 80); /* longer than the settle time: the writer is still open */
    CHECK(write(fd, b, strlen(b)) == (ssize_t)strlen(b));
    close(fd);
    expect_one_commit(&h, "in-place", "modified cfg.seq 1 2");
    CHECK_EQ_INT(h.errors, 0);
  }

  /* rename over (editors, k8s tools) */
  h_write(&h, "config.json.tmp", "{\"seq\": 3, \"name\": \"a\"}");
  {
    char a[1024], b[1024];
    h_path(&h, "config.json.tmp", a, sizeof a);
    h_path(&h, "config.json", b, sizeof b);
    CHECK(rename(a, b) == 0);
  }
  expect_one_commit(&h, "rename", "modified cfg.seq 2 3");

  /* vim without backupcopy: original renamed away, new file written, backup removed */
  {
    char a[1024], b[1024];
    h_path(&h, "config.json", a, sizeof a);
    h_path(&h, "config.json~", b, sizeof b);
    CHECK(rename(a, b) == 0);
    h_write(&h, "config.json", "{\"seq\": 4, \"name\": \"a\"}");
    unlink(b);
  }
  expect_one_commit(&h, "vim", "modified cfg.seq 3 4");

  /* delete then re-create */
  {
    char a[1024];
    h_path(&h, "config.json", a, sizeof a);
    unlink(a);
    h_write(&h, "config.json", "{\"seq\": 5, \"name\": \"a\"}");
  }
  expect_one_commit(&h, "delete+create", "modified cfg.seq 4 5");

  /* same bytes again: nothing to commit */
  {
    int before = h.commits;
    h_write(&h, "config.json", "{\"seq\": 5, \"name\": \"a\"}");
    h_run(&h, 0, -1, 0, 300);
    CHECK_EQ_INT(h.commits, before);
  }

  /* Kubernetes ConfigMap: ..data symlink swapped atomically */
  k8s_swap(&h, "..v2", "{\"v\": 2}");
  expect_one_commit(&h, "k8s swap", "modified k8s.v 1 2");

  /* a file that did not exist at start */
  h_write(&h, "later.json", "[1, 2]");
  expect_one_commit(&h, "created later", "added later - [1,2]");

  /* malformed JSON: an error with the position, the last good value stays */
  {
    int before = h.commits, errs = h.errors;
    h_write(&h, "config.json", "{\"seq\": 6,\n  \"name\" \"b\"}");
    h_run(&h, 0, errs + 1, 5000, 300);
    CHECK_EQ_INT(h.commits, before);
    CHECK_EQ_INT(h.errors, errs + 1);
    CHECK(strstr(h.last_error, "config.json:2:") != NULL);
    rc_snapshot_t *s = rc_snapshot_acquire(h.eng);
    int64_t seq = 0;
    CHECK_EQ_INT(rc_snapshot_get_int(s, "cfg.seq", &seq), 0);
    CHECK_EQ_INT((int)seq, 5);
    rc_snapshot_release(s);
    /* the next good save recovers */
    h_write(&h, "config.json", "{\"seq\": 7, \"name\": \"a\"}");
    expect_one_commit(&h, "recover", "modified cfg.seq 5 7");
    CHECK_EQ_INT(h.recovered, 1);
  }

  /* deletion: back to the default; on_missing = "keep" keeps the value; else removed */
  {
    char a[1024];
    h_write(&h, "dflt.json", "{\"x\": 2}");
    expect_one_commit(&h, "dflt file", "modified dflt.x 1 2");
    h_path(&h, "dflt.json", a, sizeof a);
    unlink(a);
    expect_one_commit(&h, "dflt delete", "modified dflt.x 2 1");
    int before = h.commits;
    h_path(&h, "kept.json", a, sizeof a);
    unlink(a);
    h_run(&h, 0, -1, 0, 400);
    CHECK_EQ_INT(h.commits, before);
    h_path(&h, "later.json", a, sizeof a);
    unlink(a);
    expect_one_commit(&h, "removed", "removed later [1,2] -");
  }

  /* inotify queue overflow: events are lost, so every file is read again. The test owns
   * the loop, so it can fill the kernel queue before the engine reads a single event. */
  {
    int max_events = 16384;
    FILE *f = fopen("/proc/sys/fs/inotify/max_queued_events", "r");
    if (f) {
      if (fscanf(f, "%d", &max_events) != 1) max_events = 16384;
      fclose(f);
    }
    char p[1024];
    for (int i = 0; i < max_events / 2 + 64; i++) {
      char rel[64];
      snprintf(rel, sizeof rel, "flood-%d", i % 8);
      h_path(&h, rel, p, sizeof p);
      int fd = open(p, O_CREAT | O_WRONLY, 0644);
      if (fd >= 0) close(fd);
      unlink(p);
    }
    /* this save's own events no longer fit in the queue */
    h_write(&h, "config.json", "{\"seq\": 8, \"name\": \"a\"}");
    expect_one_commit(&h, "overflow", "modified cfg.seq 7 8");
  }

  /* a snapshot read by path sees the committed values */
  {
    rc_snapshot_t *s = rc_snapshot_acquire(h.eng);
    const char *name = NULL;
    size_t len = 0;
    bool k = false;
    CHECK_EQ_INT(rc_snapshot_get_string(s, "cfg.name", &name, &len), 0);
    CHECK_EQ_STR(name, "a");
    CHECK_EQ_INT(rc_snapshot_get_bool(s, "kept.k", &k), 0);
    CHECK(k);
    CHECK_EQ_INT(rc_snapshot_get_int(s, "later", &(int64_t){0}), RC_ENOTFOUND);
    CHECK_EQ_INT(rc_snapshot_get_int(s, "cfg.name", &(int64_t){0}), RC_ETYPE);
    rc_snapshot_release(s);
  }
  sleep_ms(1);
  CHECK(h_finish(&h));
  return check_report("engine_file");
}
