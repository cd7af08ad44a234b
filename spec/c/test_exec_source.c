/* SPDX-License-Identifier: MIT (see LICENSE) */
/* test_exec_source.c: rc.exec end to end through the public C API, so that the sanitizer
 * build checks its paths for leaks and memory errors (busted runs without leak checks):
 * output parsed and followed, a non-zero exit, a program that does not exist, output
 * over max_bytes, a timeout, and an engine freed while a child runs (the child killed and
 * reaped: no zombie; every handle closed: uv_loop_close returns 0). Waits are bounded
 * loop runs, never timing assertions. */
#include "harness.h"

#include <signal.h>

/* Whether process `pid` still exists (a zombie counts: it was not reaped). */
static bool alive(long pid) {
  char p[64];
  snprintf(p, sizeof p, "/proc/%ld", pid);
  struct stat st;
  return stat(p, &st) == 0;
}

static long read_pid(const harness *h, const char *rel) {
  char p[1024];
  h_path(h, rel, p, sizeof p);
  FILE *f = fopen(p, "r");
  long pid = 0;
  if (f) {
    if (fscanf(f, "%ld", &pid) != 1) pid = 0;
    fclose(f);
  }
  return pid;
}

static void test_follows_and_fails(void) {
  harness h = {0};
  h_tmpdir(&h, "exec");
  h_write(&h, "value.json", "{\"a\": 1}");
  char policy[4096];
  snprintf(policy, sizeof policy,
           "local rc = require 'reactcfg'\n"
           "local quick = { min = '20ms', max = '50ms' }\n"
           "return rc.policy { components = {\n"
           "  app = { source = rc.exec { command = { 'cat', 'value.json' },\n"
           "          interval = '20ms' } },\n"
           "  bad = { source = rc.exec { command = { 'sh', '-c', 'echo no >&2; exit 4' },\n"
           "          backoff = quick, circuit = false }, startup = 'default' },\n"
           "  missing = { source = rc.exec { command = { 'reactcfg-no-such-program' },\n"
           "          backoff = quick, circuit = false }, startup = 'default' },\n"
           "  big = { source = rc.exec { command = { 'head', '-c', '100000', '/dev/zero' },\n"
           "          max_bytes = 1000, backoff = quick, circuit = false },\n"
           "          startup = 'default' },\n"
           "  slow = { source = rc.exec { command = { 'sleep', '30' }, timeout = '100ms',\n"
           "          backoff = quick, circuit = false }, startup = 'default' },\n"
           "} }\n");
  CHECK_EQ_INT(h_start(&h, policy), 0);
  CHECK(h_find_change(&h, "added app - {\"a\":1}") >= 0);
  /* Each failing component fails at least twice (a retry), and the value of app stays. */
  h_run(&h, 1, 12, 5000, 50);
  CHECK(h.errors >= 8);
  h_write(&h, "value.json", "{\"a\": 2}");
  int before = h.commits;
  h_run(&h, before + 1, -1, 5000, 50);
  CHECK(h_find_change(&h, "modified app.a 1 2") >= 0);
  CHECK(h_finish(&h));
}

static void test_free_while_running(void) {
  harness h = {0};
  h_tmpdir(&h, "exec-free");
  CHECK_EQ_INT(h_start(&h,
                       "local rc = require 'reactcfg'\n"
                       "return rc.policy { components = {\n"
                       "  hang = { source = rc.exec { command = { 'sh', '-c',\n"
                       "    'sleep 30 & echo $! > child.pid; echo $$ > sh.pid; wait' },\n"
                       "    timeout = '60s' }, startup = 'default' },\n"
                       "} }\n"),
               0);
  /* Until the script wrote both pids. */
  for (int i = 0; i < 200 && (!read_pid(&h, "sh.pid") || !read_pid(&h, "child.pid")); i++)
    h_run(&h, 0, -1, 10, 10);
  long sh = read_pid(&h, "sh.pid"), child = read_pid(&h, "child.pid");
  CHECK(sh > 0 && child > 0);
  CHECK(alive(sh));
  CHECK(h_finish(&h));                 /* every handle closed */
  CHECK(!alive(sh));                   /* killed and reaped: no zombie of ours */
  /* The sleep was killed with the group; its adopter reaps it in its own time, and it
   * runs a moment more while it exits: gone or a zombie within 5 s. */
  char state = 'R';
  for (int i = 0; i < 100 && state != 0 && state != 'Z'; i++) {
    char p[64];
    snprintf(p, sizeof p, "/proc/%ld/stat", child);
    FILE *f = fopen(p, "r");
    state = 0;
    if (f) {
      if (fscanf(f, "%*d %*s %c", &state) != 1) state = 0;
      fclose(f);
    }
    if (state != 0 && state != 'Z') usleep(50000);
  }
  CHECK(state == 0 || state == 'Z');
}

int main(void) {
  signal(SIGPIPE, SIG_IGN);
  test_follows_and_fails();
  test_free_while_running();
  return check_report("test_exec_source");
}
