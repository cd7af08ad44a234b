/* SPDX-License-Identifier: MIT (see LICENSE) */
/* harness.h: drives a real engine in a test, in embedded mode on a loop the test owns,
 * so that every callback runs on the test's thread and can be counted exactly. Saves
 * are made by the test between loop runs; waits are bounded, never timed assertions. */
#ifndef RC_TEST_HARNESS_H
#define RC_TEST_HARNESS_H

#include "check.h"
#include "reactcfg.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#define H_MAX_LOG 256

typedef struct harness {
  char dir[512];
  uv_loop_t loop;
  rc_engine_t *eng;
  int commits;               /* commit callbacks seen */
  int errors;                /* source.error events seen */
  int recovered;             /* source.recovered events seen */
  char changes[H_MAX_LOG][512]; /* "kind path old new" of every change, in order */
  int nchanges;
  char last_error[1024];     /* "file:line:col: message" of the last source.error */
} harness;

/* A fresh temporary directory for the test. */
static inline void h_tmpdir(harness *h, const char *name) {
  const char *base = getenv("RC_TEST_TMP");
  if (!base || !*base) base = "/tmp";
  mkdir(base, 0755);
  snprintf(h->dir, sizeof h->dir, "%s/%s.XXXXXX", base, name);
  if (!mkdtemp(h->dir)) {
    perror("mkdtemp");
    exit(2);
  }
}

static inline void h_path(const harness *h, const char *rel, char *out, size_t n) {
  snprintf(out, n, "%s/%s", h->dir, rel);
}

/* Writes `text` to `rel` in place (truncate + write + close). */
static inline void h_write(const harness *h, const char *rel, const char *text) {
  char p[1024];
  h_path(h, rel, p, sizeof p);
  FILE *f = fopen(p, "wb");
  if (!f) {
    perror(p);
    exit(2);
  }
  fputs(text, f);
  fclose(f);
}

static inline void h_value_str(const rc_value_t *v, char *out, size_t n) {
  if (!v) {
    snprintf(out, n, "-");
    return;
  }
  char *j = rc_value_to_json(v, false);
  snprintf(out, n, "%s", j ? j : "?");
  rc_free(j);
}

static inline void h_on_commit(void *ud, const rc_snapshot_t *snap, const rc_change_t *ch, size_t n) {
  harness *h = ud;
  (void)snap;
  h->commits++;
  for (size_t i = 0; i < n && h->nchanges < H_MAX_LOG; i++) {
    char o[200], nv[200];
    h_value_str(ch[i].old_value, o, sizeof o);
    h_value_str(ch[i].new_value, nv, sizeof nv);
    snprintf(h->changes[h->nchanges++], sizeof h->changes[0], "%s %s %s %s",
             rc_change_kind_name(ch[i].kind), ch[i].path, o, nv);
  }
}

static inline void h_on_event(void *ud, const rc_event_t *ev) {
  harness *h = ud;
  if (ev->type == RC_EVENT_SOURCE_ERROR) {
    h->errors++;
    snprintf(h->last_error, sizeof h->last_error, "%s:%d:%d: %s", ev->file, ev->line,
             ev->column, ev->message);
  } else if (ev->type == RC_EVENT_SOURCE_RECOVERED) {
    h->recovered++;
  }
}

/* Writes policy.lua with `policy_text`, loads it and attaches the engine to h->loop.
 * Returns the load/attach code (0 on success). */
static inline int h_start(harness *h, const char *policy_text) {
  h_write(h, "policy.lua", policy_text);
  char p[1024];
  h_path(h, "policy.lua", p, sizeof p);
  uv_loop_init(&h->loop);
  rc_error err = {0};
  h->eng = rc_engine_new(&err);
  if (!h->eng) return err.code;
  rc_engine_on_event(h->eng, h_on_event, h);
  rc_subscribe(h->eng, "**", h_on_commit, h, NULL);
  int rc = rc_engine_load_policy(h->eng, p, &err);
  if (rc == 0) rc = rc_engine_attach(h->eng, &h->loop, &err);
  if (rc) fprintf(stderr, "engine start failed: %s:%d: %s\n", err.file, err.line, err.message);
  return rc;
}

/* The wait is over: the flag, and uv_stop so that uv_run returns even when nothing else
 * is due soon (libuv 1.44 runs a due timer and may then still wait for the next). */
static inline void h_timeout(uv_timer_t *t) {
  *(int *)t->data = 1;
  uv_stop(t->loop);
}

/* Runs the loop until `commits` reaches `want` (or errors reach `want_errors` when that
 * is >= 0), at most `limit_ms`; then keeps running `quiet_ms` more so that any extra
 * commit would be counted. */
static inline void h_run(harness *h, int want, int want_errors, int limit_ms, int quiet_ms) {
  int expired = 0;
  uv_timer_t t;
  uv_timer_init(&h->loop, &t);
  t.data = &expired;
  uv_timer_start(&t, h_timeout, (uint64_t)limit_ms, 0);
  while (!expired && (h->commits < want || (want_errors >= 0 && h->errors < want_errors)))
    uv_run(&h->loop, UV_RUN_ONCE);
  expired = 0;
  uv_timer_start(&t, h_timeout, (uint64_t)quiet_ms, 0);
  while (!expired) uv_run(&h->loop, UV_RUN_ONCE);
  uv_close((uv_handle_t *)&t, NULL);
  uv_run(&h->loop, UV_RUN_NOWAIT);
}

/* Runs the loop until *counter reaches `want`, at most `ms`. */
static inline void h_run_until(harness *h, const int *counter, int want, int ms) {
  int expired = 0;
  uv_timer_t t;
  uv_timer_init(&h->loop, &t);
  t.data = &expired;
  uv_timer_start(&t, h_timeout, (uint64_t)ms, 0);
  while (!expired && *counter < want) uv_run(&h->loop, UV_RUN_ONCE);
  uv_close((uv_handle_t *)&t, NULL);
  uv_run(&h->loop, UV_RUN_NOWAIT);
}

/* Runs the loop for `ms`. */
static inline void h_run_for(harness *h, int ms) {
  int never = 0;
  h_run_until(h, &never, 1, ms);
}

/* Replaces `rel` in the test's directory atomically (written beside, then renamed over
 * it: one inotify event, the whole content at once). */
static inline void h_save(const harness *h, const char *rel, const char *text) {
  char p[1024], tmp[1100];
  h_path(h, rel, p, sizeof p);
  snprintf(tmp, sizeof tmp, "%s.tmp", p);
  FILE *f = fopen(tmp, "wb");
  if (!f) exit(2);
  fputs(text, f);
  fclose(f);
  rename(tmp, p);
}

/* Removes the test's directory (a test that made no harness engine). Returns true. */
static inline int h_finish_dir(harness *h) {
  char cmd[700];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", h->dir);
  if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", h->dir);
  return 1;
}

/* Stops and frees the engine, closes the loop, removes the directory. Returns whether the
 * loop closed cleanly (every handle closed). */
static inline int h_finish(harness *h) {
  rc_engine_free(h->eng);
  h->eng = NULL;
  int rc = uv_loop_close(&h->loop);
  char cmd[700];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", h->dir);
  if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", h->dir);
  return rc == 0;
}

/* Index of the first logged change starting with `prefix`, or -1. */
static inline int h_find_change(const harness *h, const char *prefix) {
  for (int i = 0; i < h->nchanges; i++)
    if (strncmp(h->changes[i], prefix, strlen(prefix)) == 0) return i;
  return -1;
}

#endif
