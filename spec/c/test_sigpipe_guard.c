/* SPDX-License-Identifier: MIT (see LICENSE) */
/* test_sigpipe_guard.c: a write to a pipe whose reader has gone, inside
 * rc__sigpipe_block/restore (what rc.redis wraps around hiredis's write()), fails with
 * EPIPE and leaves the process alive with SIGPIPE at its default disposition, nothing
 * pending afterwards and the thread's signal mask as it was. Without the guard the same
 * write would end this program (the last check shows the signal is really raised). */
#include "check.h"
#include "sigpipe.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

static bool pipe_pending(void) {
  sigset_t p;
  return sigpending(&p) == 0 && sigismember(&p, SIGPIPE) == 1;
}

static bool pipe_blocked(void) {
  sigset_t m;
  return pthread_sigmask(SIG_BLOCK, NULL, &m) == 0 && sigismember(&m, SIGPIPE) == 1;
}

/* A pipe whose read end is closed: any write to `fd` raises SIGPIPE. */
static int broken_pipe(void) {
  int fds[2];
  if (pipe(fds) != 0) return -1;
  close(fds[0]);
  return fds[1];
}

static volatile sig_atomic_t caught;
static void on_pipe(int sig) { (void)sig; caught++; }

int main(void) {
  signal(SIGPIPE, SIG_DFL);
  int fd = broken_pipe();
  CHECK(fd >= 0);

  /* In the guard: EPIPE, no signal delivered, nothing left pending, mask restored. */
  rc__sigpipe_guard g;
  rc__sigpipe_block(&g);
  CHECK(pipe_blocked());
  errno = 0;
  CHECK_EQ_INT(write(fd, "x", 1), -1);
  CHECK_EQ_INT(errno, EPIPE);
  rc__sigpipe_restore(&g);
  CHECK(!pipe_pending());
  CHECK(!pipe_blocked());

  /* Twice in a row: the second guard finds nothing left by the first. */
  rc__sigpipe_block(&g);
  CHECK(!g.pending_before);
  CHECK_EQ_INT(write(fd, "x", 1), -1);
  rc__sigpipe_restore(&g);
  CHECK(!pipe_pending());

  /* A thread that blocks SIGPIPE itself keeps it blocked, and a SIGPIPE pending before
   * the guard is the application's: it stays pending. */
  sigset_t only;
  sigemptyset(&only);
  sigaddset(&only, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &only, NULL);
  CHECK_EQ_INT(write(fd, "x", 1), -1); /* pending now, before any guard */
  CHECK(pipe_pending());
  rc__sigpipe_block(&g);
  CHECK(g.pending_before);
  CHECK_EQ_INT(write(fd, "x", 1), -1);
  rc__sigpipe_restore(&g);
  CHECK(pipe_pending());
  CHECK(pipe_blocked());
  /* Hand the pending one to a handler, to show the signal is real. */
  signal(SIGPIPE, on_pipe);
  pthread_sigmask(SIG_UNBLOCK, &only, NULL);
  CHECK_EQ_INT(caught, 1);

  close(fd);
  return check_report("sigpipe_guard");
}
