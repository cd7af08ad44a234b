/* SPDX-License-Identifier: MIT (see LICENSE) */
/* net_fixture.h: what the core/net tests (test_net.c through curl, test_net_h1.c through
 * the own client) share: a network context on a test's loop, running that loop until a
 * callback count is reached (with a safety limit, not a timing assertion), and closing
 * the context with a check that its close callback ran once. */
#ifndef RC_TEST_NET_FIXTURE_H
#define RC_TEST_NET_FIXTURE_H

#include "check.h"
#include "net.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <uv.h>

static bool nf_expired;
static void nf_on_expire(uv_timer_t *t) {
  (void)t;
  nf_expired = true;
}

/* Runs the loop until *count >= want, nothing is left to run, or `limit_ms` passed. */
static void nf_run_until(uv_loop_t *loop, const int *count, int want, uint64_t limit_ms) {
  uv_timer_t guard;
  uv_timer_init(loop, &guard);
  uv_unref((uv_handle_t *)&guard);
  nf_expired = false;
  uv_timer_start(&guard, nf_on_expire, limit_ms, 0);
  while (*count < want && !nf_expired)
    if (!uv_run(loop, UV_RUN_ONCE) && *count < want) break;
  if (nf_expired)
    fprintf(stderr, "run_until: gave up after %llu ms\n", (unsigned long long)limit_ms);
  uv_close((uv_handle_t *)&guard, NULL);
  uv_run(loop, UV_RUN_NOWAIT);
}

static int nf_closed_count;
static void nf_on_closed(void *ud) {
  (void)ud;
  nf_closed_count++;
}

/* Closes `net`, runs the loop dry and checks that its close callback ran once. */
static void nf_close_net(uv_loop_t *loop, rc__net *net) {
  int before = nf_closed_count;
  rc__net_close(net, nf_on_closed, NULL);
  uv_run(loop, UV_RUN_DEFAULT);
  CHECK_EQ_INT(nf_closed_count, before + 1);
}

/* A network context on `loop` (initialised by the caller). */
static rc__net *nf_new_net(uv_loop_t *loop) {
  rc_error err = {0};
  rc__net *net = rc__net_new(loop, &err);
  if (!net) fprintf(stderr, "rc__net_new: %s\n", err.message);
  CHECK(net != NULL);
  return net;
}

static int nf_turns;
static void nf_count_turn(uv_check_t *c) {
  (void)c;
  nf_turns++;
}
static void nf_stop_loop(uv_timer_t *t) { uv_stop(t->loop); }

/* Runs the loop for `ms` and returns how many times it turned: a handle still polling
 * an ended socket makes it turn without end (thousands of turns, not a handful). */
static int nf_turns_for(uv_loop_t *loop, uint64_t ms) {
  uv_check_t check;
  uv_check_init(loop, &check);
  uv_check_start(&check, nf_count_turn);
  uv_timer_t t;
  uv_timer_init(loop, &t);
  nf_turns = 0;
  uv_timer_start(&t, nf_stop_loop, ms, 0);
  uv_run(loop, UV_RUN_DEFAULT); /* until nf_stop_loop */
  uv_close((uv_handle_t *)&check, NULL);
  uv_close((uv_handle_t *)&t, NULL);
  int turns = nf_turns;
  uv_run(loop, UV_RUN_NOWAIT); /* the handles live on this stack: finish closing them */
  return turns;
}

#endif
